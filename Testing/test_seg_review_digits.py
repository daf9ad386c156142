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
