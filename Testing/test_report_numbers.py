"""The report's numbers read as numbers: no powers of ten for a tumour's mesh volume, no "nan", no "-0"."""

from __future__ import annotations

import re

import pytest


def _features_page(values: dict) -> str:
    from lungai.report.html import _lungs_and_features

    key = [{"segment": seg, "feature": name, "label": name, "value": v} for (seg, name), v in values.items()]
    s = {"lungs": {"right_lung": 2148.8, "left_lung": 1720.5, "notes": [], "warnings": []},
         "radiomics": {"key_features": key, "params": "default", "n_features": len(key)}}
    return _lungs_and_features(s)


def _shown(page: str, ident: str) -> str:
    return re.search(rf'<span id="{re.escape(ident)}" data-value="[^"]*">([^<]*)</span>', page).group(1)


def test_key_features_are_plain_decimals():
    """QA (lungai demo, built-in sample): the tumour's mesh volume 11985.2 mm3 read "1.199e+04" in the key features
    (format .4g); every value of the table is now plain decimals with 4 significant digits, the integer part whole."""
    page = _features_page({("tumour", "original_shape_MeshVolume"): 11985.195833333333,
                           ("tumour", "original_shape_Maximum3DDiameter"): 35.192044555552606,
                           ("tumour", "original_shape_Sphericity"): 0.8701913727488431,
                           ("lungs", "original_firstorder_Mean"): -816.0267919563992,
                           ("lungs", "original_shape_VoxelVolume"): 3826764.0,
                           ("tumour", "original_firstorder_Skewness"): -0.0})
    assert _shown(page, "feature-tumour-original_shape_MeshVolume") == "11985"
    assert _shown(page, "feature-lungs-original_shape_VoxelVolume") == "3826764"
    assert _shown(page, "feature-tumour-original_shape_Maximum3DDiameter") == "35.19"
    assert _shown(page, "feature-tumour-original_shape_Sphericity") == "0.8702"
    assert _shown(page, "feature-lungs-original_firstorder_Mean") == "-816"
    assert _shown(page, "feature-tumour-original_firstorder_Skewness") == "0"
    assert "e+0" not in page
    # the exact value stays in data-value for scripts
    assert 'data-value="11985.195833333333"' in page


def test_a_nan_feature_reads_n_a_not_nan():
    page = _features_page({("tumour", "original_glcm_Correlation"): float("nan")})
    assert _shown(page, "feature-tumour-original_glcm_Correlation") == "n/a"
    assert ">nan<" not in page


@pytest.mark.parametrize("value, text", [(1.2e-05, "1.2e-05"), (2.3e9, "2.3e+09"), (999.96, "1000"), (-1.0, "-1"), (55.0, "55"), (5.92, "5.92")])
def test_readable_extremes(value, text):
    from lungai.report.html import readable

    assert readable(value) == text


def test_out_of_range_features_read_in_plain_decimals():
    """QA: the illustrative RP model (the demo's rp_model, trained mesh volumes 16238 to 100220 mm3) on LUNG1-003's
    1.2 ml automatic tumour: the report's "Read this risk with care" banner (and rp_prediction.csv, lungai rp
    predict) said "rad_tumour_original_shape_MeshVolume=1226 (training 1.624e+04 to 1.002e+05)"."""
    import pandas as pd

    from lungai.report.html import _rp_warnings
    from lungai.rp.prepare import imputed_and_out_of_range

    card = {"training_data": {"features": {
        "rad_tumour_original_shape_MeshVolume": {"min": 16237.811056088663, "max": 100220.3412397419},
        "rad_tumour_original_ngtdm_Coarseness": {"min": 6.820720268772151e-05, "max": 0.0008533573245942304},
        "dose_mld_gy": {"min": 5.0, "max": 22.5}}}}
    X = pd.DataFrame({"rad_tumour_original_shape_MeshVolume": [1225.8538682500002],
                      "rad_tumour_original_ngtdm_Coarseness": [0.0021], "dose_mld_gy": [float("nan")]})
    imputed, outside = imputed_and_out_of_range(X, card)
    assert imputed == ["dose_mld_gy"]
    assert outside == ["rad_tumour_original_shape_MeshVolume=1226 (training 16238 to 100220); "
                       "rad_tumour_original_ngtdm_Coarseness=0.0021 (training 6.821e-05 to 0.0008534)"]
    banner = _rp_warnings({"out_of_range": outside, "imputed": imputed})
    assert "e+0" not in banner and "=1226 (training 16238 to 100220)" in banner


@pytest.mark.parametrize("counts,text", [
    ({"n_features": 107, "n_segments": 5, "n_values": 535},
     "107 pyradiomics features of each of 5 segments (535 values) were computed"),
    ({"n_features": 107, "n_segments": 1, "n_values": 107}, "107 pyradiomics features of 1 segment were computed"),
    ({"n_features": 107, "n_segments": 2, "n_values": 200},
     "200 values of 107 pyradiomics features over 2 segments (not every feature of every segment) were computed"),
    ({"n_features": 535}, "535 pyradiomics feature values were computed"),     # a summary.json of an older lungai
])
def test_the_feature_count_says_features_per_segment_and_segments(counts, text):
    """QA wording61: "535 pyradiomics features were computed" counted 107 features of each of 5 segments."""
    from lungai.report.html import _lungs_and_features, features_step_text

    s = {"lungs": {"right_lung": 2148.8, "left_lung": 1720.5, "notes": [], "warnings": []},
         "radiomics": {"key_features": [], "params": "default", **counts}}
    assert text in _lungs_and_features(s)
    assert features_step_text(s["radiomics"]) == {5: "107 features x 5 segments", 1: "107 features x 1 segment",
                                                  2: "107 features x 2 segments"}.get(counts.get("n_segments"),
                                                                                        "535 feature values")


def test_failed_segments_banner_counts_in_words():
    from lungai.report.html import _failed_segments

    one = _failed_segments({"failed_segments": [{"segment": "tumour", "error": "one voxel"}]})
    assert "Radiomics not computed for 1 segment</b>" in one
    two = _failed_segments({"failed_segments": [{"segment": "tumour", "error": "x"}, {"segment": "lungs", "error": "y"}]})
    assert "Radiomics not computed for 2 segments</b>" in two


def test_the_components_card_agrees_with_its_number():
    """QA wording61 (lungai demo report): "1 connected components"."""
    from lungai.report.html import _segmentation

    seg = {"needs_review": False, "review_reasons": [], "confidence": 0.8, "review_threshold": 0.6,
           "tumor_volume_ml": 12.1, "n_components": 1, "members": 3, "method": "ensemble", "mc_passes": 0,
           "roi_mode": "seed", "notes": []}
    s = {"segmentation": seg, "seg_model": {"name": "m", "training": "t"}}
    page = _segmentation(s, {})
    assert '<div class="l">connected component</div>' in page, page
    seg["n_components"] = 2
    assert '<div class="l">connected components</div>' in _segmentation(s, {})


@pytest.mark.parametrize("imputed, text", [(["clin_pack_years"], "<b>1 feature missing, imputed by the model:</b>"),
                                           (["clin_pack_years", "clin_hb_g_dl"],
                                            "<b>2 features missing, imputed by the model:</b>")])
def test_the_rp_risk_is_written_as_the_doses_percent_and_its_banner_counts_in_words(imputed, text):
    """QA plural61 (lungai demo report): the risk read "25.0%" (and its interval "18.2% - 31.0%") beside the dose's
    "72.4 %": one spacing for every percentage; the banner read "1 feature(s) missing"."""
    from lungai.report.html import _rp

    r = {"risk": 0.25, "risk_low": 0.182, "risk_high": 0.31, "status": "ok", "model_description": "Model.",
         "imputed": imputed, "out_of_range": [], "top_features": []}
    page = _rp({"rp": r, "segmentation": {"needs_review": False}}, {})
    assert _shown(page, "rp-risk") == "25.0 %" and "18.2 % - 31.0 %" in page, page
    assert not re.search(r"\d%", page), page
    assert text in page, page
