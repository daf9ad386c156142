"""The report says how the confidence was measured as it was: MC dropout (a one-member model) is not "an ensemble
of 1", an uncalibrated confidence is not "calibrated on validation cases", the ROI mode in words.

QA: ``lungai demo --small --model ONE`` (the shipped default model cut to its member 0: MC dropout runs, "the model
has 1 member ... MC dropout was used") reported "computed from how much the 1 ensemble members (mc-dropout)
disagree", the ensemble's validation r (0.84, not MC dropout's 0.85), "Method: mc-dropout, members 1, MC passes 8",
and in Methods "a deep ensemble of 1 MONAI unet networks"; "region of interest: seed" (a raw key)."""

from __future__ import annotations

import pytest


def _seg(**extra) -> dict:
    """result.json of ``lungai segment`` (lungai.seg.infer), the keys the report reads."""
    return {"confidence": 0.454, "review_threshold": 0.6261, "needs_review": True,
            "review_reasons": ["confidence below the review threshold"], "review_actions": ["check the outline"],
            "tumour_volume_ml": 5.92, "n_components": 1, "method": "mc-dropout", "members": 1, "mc_passes": 8,
            "roi_mode": "seed", "roi_size_mm": [64.4, 64.4, 70.0], "seed_point_lps_mm": [1.0, 2.0, 3.0],
            "calibrated": True, "architecture": "unet", "notes": [], **extra}


def _page(seg: dict, r: str = "0.85") -> str:
    from lungai.report.html import _segmentation

    return _segmentation({"segmentation": seg, "seg_model": {"name": "one", "validation_r": r}}, {})


def test_mc_dropout_is_not_called_an_ensemble_of_one():
    page = _page(_seg())
    assert "ensemble members" not in page and "members 1" not in page
    assert "computed from how much 8 Monte Carlo dropout passes of the network disagree" in page
    assert "Method: MC dropout, 8 passes;" in page
    assert "calibrated on validation cases" in page and "0.85" in page
    assert "region of interest: seed point (a" in page


def test_the_ensemble_says_its_members_and_no_mc_passes():
    page = _page(_seg(method="ensemble", members=3, mc_passes=0), r="0.84")
    assert "how much the 3 ensemble members disagree" in page
    assert "Method: ensemble of 3;" in page and "MC passes" not in page


def test_an_uncalibrated_confidence_is_not_said_calibrated():
    page = _page(_seg(method="ensemble", members=3, mc_passes=0, calibrated=False,
                      review_reasons=["the model's confidence is not calibrated"]))
    assert "calibrated on validation cases" not in page and "expected Dice, 0-1" not in page
    assert "<b>not calibrated</b>" in page and "uncalibrated confidence (0-1, not the expected Dice)" in page


@pytest.mark.parametrize("mode, words", [("lungs", "automatic (the tumour searched in the whole lungs)"),
                                         ("roi", "the box given")])
def test_the_roi_mode_in_words(mode, words):
    page = _page(_seg(roi_mode=mode, seed_point_lps_mm=None))
    assert f"region of interest: {words} (a" in page


def test_the_validation_r_is_of_the_method_that_ran():
    from lungai.demo.pipeline import _fmt_r

    meta = {"validation": {"ensemble": {"pearson_r_confidence_dice_cv": 0.8384},
                           "mc-dropout": {"pearson_r_confidence_dice_cv": 0.8462}}}
    assert _fmt_r(meta, "mc-dropout") == "0.85" and _fmt_r(meta, "ensemble") == "0.84"
    assert _fmt_r({"validation": {"ensemble": {"pearson_r_confidence_dice_cv": 0.8}}}, "mc-dropout") == "not recorded"


def test_the_methods_name_mc_dropout():
    from lungai.demo.pipeline import _methods

    s = {"segmentation": _seg(), "seg_model": {"name": "one", "training": "trained on x"},
         "radiomics": {"params": "default"}, "dose": None, "rp": {"status": "not computed", "message": "m"},
         "stage": {"status": "not computed", "message": "m"}, "inputs": {"ct": "/ct.nii.gz"}}
    methods, _ = _methods(s)
    tumour = next(m for m in methods if m.startswith("Tumour:"))
    assert "one MONAI unet network with Monte Carlo dropout (8 passes)" in tumour and "ensemble" not in tumour
    s["segmentation"] = _seg(method="ensemble", members=3, mc_passes=0, calibrated=False)
    tumour = next(m for m in _methods(s)[0] if m.startswith("Tumour:"))
    assert "a deep ensemble of 3 MONAI unet networks" in tumour and "not calibrated" in tumour


def test_a_real_mc_dropout_result_reads_right(small_phantom):
    """The shipped default model run with MC dropout (as a one-member model runs) on a small phantom: its real
    result.json in the report."""
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import DEFAULT_MODEL_NAME, models_root, shipped_models

    if DEFAULT_MODEL_NAME not in shipped_models():
        pytest.skip("the shipped models are not installed")
    import numpy as np
    import SimpleITK as sitk

    from lungai.synthetic import labels as L

    tm = L.tumour_mask(sitk.GetArrayFromImage(small_phantom.labels))
    k, j, i = np.argwhere(tm).mean(axis=0)
    seed = small_phantom.ct.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)])
    res = segment_tumour(small_phantom.ct, load_model(models_root() / DEFAULT_MODEL_NAME), seed_lps=seed, method="mc-dropout",
                         mc_passes=4, seed=0)
    page = _page(res.info)
    assert res.info["method"] == "mc-dropout" and "ensemble members" not in page
    assert "computed from how much 4 Monte Carlo dropout passes of the network disagree" in page
    assert "Method: MC dropout, 4 passes;" in page
