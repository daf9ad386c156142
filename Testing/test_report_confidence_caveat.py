"""A shipped model's known confidence caveat is said where the confidence is read (QA on LUNG1-003, seed on GTV-1,
``--model lungai-seg-dynunet``: "confidence 0.70 (expected Dice), no review flag" while the Dice was 0.58 - the
docs say this model's confidence tracks the Dice less well and passed failed segmentations; the report, the
console and result.json did not)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _seg(**extra) -> dict:
    return {"confidence": 0.70, "review_threshold": 0.64, "needs_review": False, "tumor_volume_ml": 16.9,
            "n_components": 1, "members": 3, "method": "ensemble", "mc_passes": 8, "roi_mode": "seed",
            "notes": [], **extra}


def test_the_caveat_comes_from_the_models_table_for_the_shipped_dynunet_only(tmp_path):
    from lungai.seg.choice import add_model_notes
    from lungai.seg.resources import (CONFIDENCE_CAVEATS, DEFAULT_MODEL_NAME, DYNUNET_MODEL_NAME,
                                      ROUTED_MODEL_NAME, models_root, shipped_models)

    if DYNUNET_MODEL_NAME not in shipped_models():
        pytest.skip("the shipped models are not installed")
    info = _seg()
    add_model_notes(models_root() / DYNUNET_MODEL_NAME, info)
    assert info["confidence_caveat"] == CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    for other in (models_root() / DEFAULT_MODEL_NAME, models_root() / ROUTED_MODEL_NAME, tmp_path / DYNUNET_MODEL_NAME):
        info = _seg()
        add_model_notes(other, info)              # a user's folder named like the shipped model is not it
        assert "confidence_caveat" not in info, other


def test_a_shipped_models_name_is_the_shipped_model(tmp_path, monkeypatch):
    """QA newfollow66: add_model_notes("lungai-seg-dynunet", info) - the name as --model takes it - called the shipped
    DynUNet "a model of your own, not one shipped" (is_shipped_model was given the bare name) and gave no caveat."""
    from lungai.seg.choice import add_model_notes
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME, shipped_models

    if DYNUNET_MODEL_NAME not in shipped_models():
        pytest.skip("the shipped models are not installed")
    monkeypatch.chdir(tmp_path)                  # no folder of that name here: the name is the shipped model
    info = _seg()
    add_model_notes(DYNUNET_MODEL_NAME, info)
    assert info["model_shipped"] is True, info
    assert not any("not one shipped" in n or "of your own" in n for n in info["notes"]), info["notes"]
    assert info["confidence_caveat"] == CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]


def test_the_caveats_figures_are_the_docs():
    """The caveat quotes docs/segmentation.md's test table of the retrained DynUNet."""
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME

    doc = (Path(__file__).resolve().parents[1] / "docs" / "segmentation.md").read_text(encoding="utf-8")
    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    assert "| (1) r(confidence, Dice) | **0.770** | 0.721 |" in doc and "r 0.721 against 0.770" in caveat
    assert "a 57 mm implant at Dice 0.34, confidence 0.87, not flagged" in doc and "Dice 0.34 with confidence 0.87" in caveat
    assert "0.044 (conf. 0.65, not flagged)" in doc and "Dice 0.04 with 0.65" in caveat
    assert '"The DynUNet retrained"' in caveat and "The DynUNet retrained" in doc


def test_the_report_console_and_banner_say_the_caveat():
    from lungai.cli.demo import result_lines
    from lungai.report.html import _segmentation
    from lungai.scene.results import describe_segment_result
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME

    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    s = {"segmentation": _seg(confidence_caveat=caveat), "seg_model": {"name": DYNUNET_MODEL_NAME}}
    page = _segmentation(s, {})
    assert 'id="confidence-caveat"' in page
    # beside the confidence: before the paragraph on what the confidence means
    assert page.index('id="confidence-caveat"') < page.index("What the confidence means")
    assert "tracks the Dice less well than the default model" in page
    summary = {"segmentation": s["segmentation"], "rp": {"message": "x"}, "stage": {"message": "x"}, "dose": None,
               "dose_source": "none", "lungs": {}}
    assert f"confidence caveat: {caveat}" in result_lines(summary)
    assert f"confidence caveat: {caveat}" in describe_segment_result(s["segmentation"])[1]
    # a model without a caveat: nothing said
    plain = _seg()
    assert 'id="confidence-caveat"' not in _segmentation({"segmentation": plain}, {})
    assert not [line for line in result_lines(dict(summary, segmentation=plain)) if "caveat" in line]
    assert "caveat" not in describe_segment_result(plain)[1]


def test_a_result_of_a_users_own_model_says_it_is_not_a_shipped_validated_model(tmp_path):
    """QA: `lungai segment --model MY_MODEL` (a train-seg model of 12 LIDC crops, validation Dice 0.12 on 3 cases)
    on lung2: neither the console nor result.json said the model was the user's own, not one of the shipped models
    validated on lungai's test sets - a calibrated user model's result read like a shipped model's.  Now
    result.json's ``model_shipped`` says which, and a note names the user's model, its own validation Dice and
    how to test it (its held-out test split when it has one); the shipped models and choices get no such note."""
    import json
    import shutil

    from lungai.seg.choice import add_model_notes
    from lungai.seg.resources import models_root, shipped_models

    if not shipped_models():
        pytest.skip("the shipped models are not installed")
    for name in shipped_models():                         # the models (and model choices) shipped with lungai
        info = _seg()
        add_model_notes(models_root() / name, info)
        assert info["model_shipped"] is True and not any("of your own" in n for n in info["notes"]), name
    own = tmp_path / "my_model"
    shutil.copytree(models_root() / shipped_models()[0], own)   # a copy is not the shipped model
    doc = json.loads((own / "model.json").read_text(encoding="utf-8"))
    doc["validation"] = {"ensemble": {"n_cases": 3, "mean_dice": 0.1146}}
    doc.setdefault("training", {})["n_test_cases"] = 0
    (own / "model.json").write_text(json.dumps(doc), encoding="utf-8")
    info = _seg()
    add_model_notes(own, info)
    assert info["model_shipped"] is False
    note = info["notes"][-1]
    assert note.startswith(f"the model {own} is a model of your own, not one shipped with lungai")
    assert "ensemble Dice mean 0.115 on 3 cases" in note
    assert f"lungai eval-seg --model {own} --images IMGS --masks MASKS" in note
    doc["training"]["n_test_cases"] = 4                  # trained with --test-fraction: its own test split
    (own / "model.json").write_text(json.dumps(doc), encoding="utf-8")
    info = _seg()
    add_model_notes(own, info)
    assert f"lungai eval-seg --model {own} --split test" in info["notes"][-1]


@pytest.mark.parametrize("n_cases, text", [(1, "ensemble Dice mean 0.900 on 1 case, model.json"),
                                           (15, "ensemble Dice mean 0.900 on 15 cases, model.json")])
def test_own_model_note_counts_its_validation_cases_in_words(tmp_path, n_cases, text):
    """QA plural61: "Dice mean 0.812 on 15 case(s)" (and "on 1 case(s)") - the count takes its number."""
    import json

    from lungai.seg.resources import own_model_note

    (tmp_path / "model.json").write_text(json.dumps({"validation": {"ensemble": {"n_cases": n_cases,
                                                                                 "mean_dice": 0.9}}}), encoding="utf-8")
    note = own_model_note(tmp_path)
    assert text in note and "(s)" not in note, note
