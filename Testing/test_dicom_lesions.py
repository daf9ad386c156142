"""DICOM outputs of a CT with several lesions and of flagged results, as PACS / the planning system gets them.

- every lesion has its own TrackingUID: two `lungai segment` runs on one CT (two seeds, two lesions, both segments
  labelled "Tumour") gave both lesions one TrackingUID, so a PACS / viewer took them for one finding;
- the review reasons of a flagged result reach the SR, the RTSTRUCT and the SEG (before: only needs_review = 1 in
  the SR, nothing in the RTSTRUCT - a physician in PACS / the planning system could not see why it was flagged).

On the synthetic DICOM RT export (Testing/dicom_helpers.py): no ../shared data needed.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import rt_export

from lungai.io import read_ct


@pytest.fixture(scope="module")
def p1(tmp_path_factory):
    st = rt_export(tmp_path_factory.mktemp("rt_export"))["P1"]
    return st, read_ct(st["ct"])


REASONS = ["confidence below the review threshold", "several candidate regions (automatic mode)"]


def _info(st, tumour, needs_review=True):
    """A `lungai segment` result.json of ``tumour`` (what export_results checks it against)."""
    from lungai.dicom.export import result_record

    ml = float(sitk.GetArrayViewFromImage(tumour).astype(bool).sum() * np.prod(tumour.GetSpacing()) / 1000)
    return {"confidence": 0.4 if needs_review else 0.9, "needs_review": needs_review,
            "review_reasons": REASONS if needs_review else [], "review_threshold": 0.6, "tumour_volume_ml": ml,
            "tumor_volume_ml": ml, "method": "ensemble", "members": 3, **result_record(st["ct"], None, tumour)}


def _export(st, ct, out, tumour, info):
    from lungai.dicom.export import export_results, reference_for
    from lungai.dicom.seg import AUTOMATIC

    return export_results(reference_for(st["ct"], ct), out, tumour=tumour, info=info, seg_name="tumor.seg.dcm",
                          generation={"tumour": AUTOMATIC}, series="segment")


def _texts(items):
    for it in items:
        if it.ValueType == "TEXT":
            yield str(it.TextValue)
        yield from _texts(it.get("ContentSequence", []))


def _group_uids(sr) -> dict:
    """{tracking identifier: tracking UID} of the SR's measurement groups."""
    out = {}

    def walk(items):
        for it in items:
            if it.ValueType == "CONTAINER":
                ident = [c for c in it.get("ContentSequence", []) if c.ValueType == "TEXT"
                         and c.ConceptNameCodeSequence[0].CodeValue == "112039"]
                uid = [c for c in it.get("ContentSequence", []) if c.ValueType == "UIDREF"
                       and c.ConceptNameCodeSequence[0].CodeValue == "112040"]
                if ident and uid:
                    out[str(ident[0].TextValue)] = str(uid[0].UID)
            walk(it.get("ContentSequence", []))

    walk(sr.ContentSequence)
    return out


def test_two_lesions_of_one_ct_get_two_tracking_uids(p1, tmp_path):
    """Two runs on one CT, two lesions, both exported as segment "Tumour": the TrackingUIDs differ (they were one,
    derived from the CT series and the label only); each SR group still carries its own SEG segment's UID, and a
    re-export of the same mask keeps its UIDs."""
    st, ct = p1
    first, second = st["masks"]["GTV"], st["masks"]["Lung_L"]      # two different regions, one label "Tumour"
    a = _export(st, ct, tmp_path / "a", first, _info(st, first))
    b = _export(st, ct, tmp_path / "b", second, _info(st, second))
    again = _export(st, ct, tmp_path / "again", first, _info(st, first))

    def seg_uid(paths):
        return {str(s.SegmentLabel): str(s.TrackingUID) for s in pydicom.dcmread(paths[0]).SegmentSequence}["Tumour"]

    assert seg_uid(a) != seg_uid(b)
    assert seg_uid(a) == seg_uid(again)
    sr_a, sr_b = (_group_uids(pydicom.dcmread(p[-1])) for p in (a, b))
    assert sr_a["Tumour"] == seg_uid(a) and sr_b["Tumour"] == seg_uid(b)
    assert sr_a["Case"] != sr_b["Case"]          # the case results of two segmentations are two findings
    assert sr_a == _group_uids(pydicom.dcmread(again[-1]))


def test_review_reasons_reach_the_sr_rtstruct_and_seg(p1, tmp_path):
    """A flagged result (needs_review, with its reasons): the SR's Case group says each reason, the RTSTRUCT's GTVp
    observation and the SEG's tumour segment say it needs review and why; an unflagged result says nothing."""
    st, ct = p1
    tumour = st["masks"]["GTV"]
    seg, rt, *_, sr = _export(st, ct, tmp_path / "flagged", tumour, _info(st, tumour))
    texts = list(_texts(pydicom.dcmread(sr).ContentSequence))
    for reason in REASONS:
        assert any(reason in t for t in texts), texts
    from lungai.dicom.sr import read_sr_review_reasons

    assert read_sr_review_reasons(sr) == {"Case": REASONS}
    obs = {int(o.ReferencedROINumber): o for o in pydicom.dcmread(rt).RTROIObservationsSequence}
    gtv = obs[1].get("ROIObservationDescription", "")
    assert gtv.startswith("needs review") and all(r in gtv for r in REASONS), gtv
    desc = str(pydicom.dcmread(seg).SegmentSequence[0].get("SegmentDescription", ""))
    assert desc.lower().startswith("needs review") and len(desc) <= 64, desc

    seg, rt, *_, sr = _export(st, ct, tmp_path / "fine", tumour, _info(st, tumour, needs_review=False))
    assert not any("review" in t for t in _texts(pydicom.dcmread(sr).ContentSequence))
    assert read_sr_review_reasons(sr) == {}
    assert "ROIObservationDescription" not in pydicom.dcmread(rt).RTROIObservationsSequence[0]
    assert "SegmentDescription" not in pydicom.dcmread(seg).SegmentSequence[0]


def test_long_review_reasons_cut_visibly_in_the_seg(p1, tmp_path):
    """SegmentDescription is LO (64 characters): two review reasons do not fit.  QA on LUNG1-003 (seed point off the
    tumour): the SEG said "needs review: confidence below the review threshold; the tumo..." - cut mid-word, the
    second reason lost without a sign of where it was.  Now the cut is at a reason / word boundary, ends with "..."
    and names the SR, which (like the RTSTRUCT) keeps every reason whole."""
    from lungai.dicom.sr import read_sr_review_reasons
    from lungai.seg.infer import LOW_CONFIDENCE, SEED_AWAY

    st, ct = p1
    tumour = st["masks"]["GTV"]
    reasons = [LOW_CONFIDENCE, SEED_AWAY]
    seg, rt, *_, sr = _export(st, ct, tmp_path / "out", tumour, {**_info(st, tumour), "review_reasons": reasons})
    full = "needs review: " + "; ".join(reasons)
    desc = str(pydicom.dcmread(seg).SegmentSequence[0].SegmentDescription)
    assert len(desc) <= 64 and desc.endswith("... (see SR)"), desc
    kept = desc[:-len("... (see SR)")].rstrip()
    assert full.startswith(kept) and full[len(kept)] in " ;", (desc, full)      # no word cut in two
    assert read_sr_review_reasons(sr) == {"Case": reasons}                      # the whole reasons, where it points
    assert pydicom.dcmread(rt).RTROIObservationsSequence[0].ROIObservationDescription == full
    # a Slicer export (SEG + RTSTRUCT, no SR) points to the RTSTRUCT, unless the pointer would cut the first reason
    # (then "..." alone); one that fits is kept as it is
    from lungai.dicom.seg import short_description
    from lungai.seg.infer import CUT_REASON, SEVERAL_REASON

    assert short_description(full, "RTSTRUCT") == f"needs review: {LOW_CONFIDENCE} ..."
    other = f"needs review: {CUT_REASON}; {SEVERAL_REASON}"
    assert short_description(other, "RTSTRUCT") == f"needs review: {CUT_REASON} ... (see RTSTRUCT)"
    assert short_description("needs review: " + LOW_CONFIDENCE) == "needs review: " + LOW_CONFIDENCE
