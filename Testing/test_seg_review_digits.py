"""QA seg68: ``lungai segment`` on LUNG1-003 (DynUNet, a click 12 mm off GTV-1's centre; a seed on GTV-3) printed
"confidence 0.64 (review below 0.64: NEEDS REVIEW - confidence below the review threshold)": the confidence 0.6402
(0.6377) and the threshold 0.644, both shown with two decimals, read as equal while the flag said one was below the
other - and a confidence of 0.6444 read the same with "ok".  The confidence and threshold are shown with as many
decimals as it takes to show them apart, on the command's summary line and the panel's banner alike."""

from __future__ import annotations

import pytest
from seg_helpers import stubbed_segment

from lungai.cli import main
from lungai.scene.results import confidence_text, describe_segment_result, review_digits, threshold_text

LOW = "confidence below the review threshold"


@pytest.mark.parametrize("confidence, threshold, digits, shown, limit", [
    (0.6402, 0.644, 3, "0.640", "0.644"),       # LUNG1-003, a click 12 mm off GTV-1's centre
    (0.6377, 0.644, 3, "0.638", "0.644"),       # LUNG1-003, a seed on GTV-3
    (0.6444, 0.644, 4, "0.6444", "0.6440"),
    (0.6436, 0.644, 4, "0.6436", "0.6440"),
    (0.7033, 0.644, 2, "0.70", "0.64"),         # apart at two decimals: as before
    (0.35, 0.6064, 2, "0.35", "0.61"),
])
def test_confidence_and_threshold_are_shown_apart(confidence, threshold, digits, shown, limit):
    result = {"confidence": confidence, "review_threshold": threshold, "calibrated": True}
    assert review_digits(result) == digits
    assert confidence_text(result) == f"confidence {shown}" and threshold_text(result) == limit
    flagged = confidence < threshold
    headline = describe_segment_result(dict(result, needs_review=flagged, review_reasons=[LOW] if flagged else [],
                                            tumour_volume_ml=16.9, method="ensemble"))[0]
    assert (f"confidence {shown}" in headline or f"Confidence {shown}" in headline) and limit in headline, headline
    assert float(shown) < float(limit) if flagged else float(shown) >= float(limit)


def test_segment_summary_shows_a_flagged_confidence_below_its_threshold(tmp_path, monkeypatch, capsys):
    ct, _ = stubbed_segment(tmp_path, monkeypatch, confidence=0.6402, review_threshold=0.644, needs_review=True,
                            review_reasons=[LOW], review_actions=["check the outline slice by slice"],
                            calibrated=True)
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m"), "--whole"]) == 0
    out = capsys.readouterr().out
    assert f"confidence 0.640 (review below 0.644: NEEDS REVIEW - {LOW})" in out, out


def _seg(confidence: float, threshold: float = 0.644) -> dict:
    """result.json of ``lungai segment`` (the keys the report, the review note and the demo's console read)."""
    flagged = confidence < threshold
    return {"confidence": confidence, "review_threshold": threshold, "needs_review": flagged,
            "review_reasons": [LOW] if flagged else [], "review_actions": ["check the outline"] if flagged else [],
            "tumour_volume_ml": 16.9, "n_components": 1, "method": "ensemble", "members": 3, "mc_passes": 0,
            "roi_mode": "seed", "calibrated": True, "notes": []}


@pytest.mark.parametrize("confidence, shown, limit", [(0.6402, "0.640", "0.644"), (0.6444, "0.6444", "0.6440"),
                                                      (0.7033, "0.70", "0.64")])
def test_the_report_card_shows_the_confidence_apart_from_its_threshold(confidence, shown, limit):
    """QA segfollow68: the demo report's cards (lungai.report.html) still showed the threshold with two decimals -
    "0.64" and "review threshold 0.64 / needs expert review" for a confidence of 0.6402 against 0.644 - while
    lungai segment's summary and the panel's banner showed them apart (review_digits): one wording everywhere."""
    import re

    from lungai.report.html import _segmentation

    page = _segmentation({"segmentation": _seg(confidence), "seg_model": {"name": "m", "training": "t"}}, {})
    assert re.search(rf'<span id="confidence" data-value="{confidence!r}">{re.escape(shown)}</span>', page), page
    assert f'<div class="l">review threshold {limit}</div>' in page, page
    assert f"Cases below the review threshold ({limit}) are flagged" in page


@pytest.mark.parametrize("edited", [False, True])
def test_the_scene_review_note_shows_the_confidence_apart_from_its_threshold(edited, monkeypatch):
    """QA segfollow68: the panels' review note of a flagged tumour segment (lungai.scene.nodes.review_note) said
    "(confidence below the review threshold, confidence 0.64)" of 0.6402 against a threshold of 0.644."""
    from lungai.scene import nodes

    class Seg:
        def GetName(self):
            return "CT segmentation"

    result = dict(_seg(0.6402), edited=edited)
    monkeypatch.setattr(nodes, "tumour_result", lambda seg_node, segment, by_id=False: result)
    note = nodes.review_note(Seg(), "Tumor")
    assert ("its confidence 0.640 " if edited else f"({LOW}, confidence 0.640)") in note, note
    result.update(confidence=0.35)          # apart at two decimals: as before
    assert "confidence 0.35" in nodes.review_note(Seg(), "Tumor")


def test_the_demo_console_shows_the_confidence_apart_from_its_threshold():
    """QA segfollow68: ``lungai demo``'s console summary said "confidence 0.64 - NEEDS REVIEW (confidence below the
    review threshold)" of 0.6402 against 0.644."""
    from lungai.cli.demo import result_lines

    summary = {"segmentation": _seg(0.6402), "rp": {"message": "x"}, "stage": {"message": "x"}, "dose": None,
               "dose_source": "none", "lungs": {}}
    first = result_lines(summary)[0]
    assert "confidence 0.640 - NEEDS REVIEW" in first, first


@pytest.mark.parametrize("confidence, calibrated, shown", [(0.6402, True, "confidence 0.640"),
                                                           (0.7033, True, "confidence 0.70"),
                                                           (0.6444, False, "uncalibrated confidence 0.6444")])
def test_the_demo_bars_tumour_step_shows_the_confidence_as_the_summary_line(confidence, calibrated, shown):
    """QA seg69: the demo bar's tumour step said "tumour 16.9 ml, confidence 0.64" of 0.6402 against a review
    threshold of 0.644 (two decimals), where lungai segment's summary line says 0.640."""
    from lungai.demo import pipeline

    seg = dict(_seg(confidence), calibrated=calibrated)
    assert pipeline.tumour_step_text(seg) == f"tumour 16.9 ml, {shown}"
