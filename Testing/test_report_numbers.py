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
    assert _shown(page, "feature-lungs-original_firstorder_Mean") == "-816.0"
    assert _shown(page, "feature-tumour-original_firstorder_Skewness") == "0"
    assert "e+0" not in page
    # the exact value stays in data-value for scripts
    assert 'data-value="11985.195833333333"' in page


def test_a_nan_feature_reads_n_a_not_nan():
    page = _features_page({("tumour", "original_glcm_Correlation"): float("nan")})
    assert _shown(page, "feature-tumour-original_glcm_Correlation") == "n/a"
    assert ">nan<" not in page


@pytest.mark.parametrize("value, text", [(1.2e-05, "1.2e-05"), (2.3e9, "2.3e+09"), (999.96, "1000.0"), (-1.0, "-1.000")])
def test_readable_extremes(value, text):
    from lungai.report.html import readable

    assert readable(value) == text
