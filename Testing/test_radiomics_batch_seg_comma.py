"""A DICOM SEG whose segment labels hold a comma ("GTV, primary", "Contour, 7"), in ``lungai radiomics-batch``.

QA demo62: a SEG of a GTV "GTV, primary" and lungs "Contour, 7" / "Contour, 8" (no lung role by name; the GTV
overlapping the lungs, as in every clinical SEG) could not be computed in a batch without renaming the segments and
exporting the SEG again: the mask column refused the overlapping segments, the lungs column ``SEG#RIGHT,LEFT`` cannot
tell the names apart (the comma separates the lungs), role:lungs found no lung, radiomics-batch has no
--structure-map, and ``SEG#1`` was "no segment '1'" while the label column numbers a SEG's segments 1, 2, ...  A
segment is now chosen after '#' by its number too (when no segment has that label), and the messages say so."""

from __future__ import annotations

import pandas as pd
import pytest
from dicom_helpers import rt_export

from lungai.cli import main

FEW = ["--image-types", "Original", "--feature-classes", "shape", "--workers", "0"]


@pytest.fixture(scope="module")
def comma_seg(tmp_path_factory):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.io import read_ct

    root = tmp_path_factory.mktemp("comma_seg")
    st = rt_export(root)["P1"]
    ct = read_ct(st["ct"])
    m = st["masks"]
    # the lungs without a lung code either (Tissue): no role by their labels nor by their terminology
    # (a SEG whose lung segments are coded as lungs takes them by role: Testing/test_seg_input_roles.py)
    seg = write_seg({"GTV, primary": m["GTV"], "Contour, 7": m["Lung_R"], "Contour, 8": m["Lung_L"]},
                    ct_reference(st["ct"], image=ct), root / "comma.seg.dcm",
                    roles={"GTV, primary": "gtv_primary", "Contour, 7": None, "Contour, 8": None})
    return st["ct"], seg


def _batch(tmp_path, capsys, ct, **columns):
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(ct)], **{k: [v] for k, v in columns.items()}}).to_csv(manifest,
                                                                                                       index=False)
    out = tmp_path / "features.csv"
    rc = main(["radiomics-batch", str(manifest), "-o", str(out), *FEW])
    said = capsys.readouterr()
    return rc, said.out + said.err, out


def test_segments_with_a_comma_in_their_label_are_chosen_by_number(comma_seg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    ct, seg = comma_seg
    rc, text, out = _batch(tmp_path, capsys, ct, tumour=f"{seg}#1", lungs=f"{seg}#2,3")
    assert rc == 0 and "1 case extracted" in text and " 0 failed" in text, text
    segments = set(pd.read_csv(out)["segment"])
    assert segments == {"tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour"}, segments


def test_the_messages_name_the_segment_numbers_not_a_renaming(comma_seg, tmp_path, capsys, monkeypatch):
    """The lungs by their labels (the comma separates them): the fix gives the segment numbers, right then left, and
    no longer says to rename the segments and export the SEG again."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    ct, seg = comma_seg
    rc, text, _ = _batch(tmp_path, capsys, ct, tumour=f"{seg}#1", lungs=f"{seg}#Contour, 7,Contour, 8")
    assert rc != 0 and "hold a comma" in text, text
    fix = text.split("how to fix (P1):")[1]
    assert f"{seg}#2,3" in fix and "renaming" not in fix, fix
    # a label that is in no segment: the segments listed with their numbers (their labels hold commas)
    rc, text, _ = _batch(tmp_path, capsys, ct, tumour=f"{seg}#Heart")
    assert rc != 0 and "1 'GTV, primary', 2 'Contour, 7', 3 'Contour, 8'" in text, text
    assert f"{seg}#1" in text.split("how to fix (P1):")[1], text


def test_a_segment_labelled_with_a_number_is_chosen_by_its_label_first(comma_seg, tmp_path):
    """'#2' takes the segment labelled "2" when there is one, never segment number 2 in its place."""
    import SimpleITK as sitk

    from lungai.dicom.masks import select_segments

    one = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    two = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    two[1, 1, 1] = 1
    masks = {"2": one, "lungs": two}
    assert select_segments(masks, "2")[1] == ["2"]
    assert select_segments(masks, "1")[1] == ["2"]      # segment number 1 is the segment labelled "2"
    with pytest.raises(Exception, match="no segment '3'"):
        select_segments(masks, "3")


def test_a_segment_name_with_a_comma_in_the_label_column_is_refused_with_the_way_that_works(comma_seg, tmp_path,
                                                                                              capsys, monkeypatch):
    """QA demo62: label cell "GTV, primary=1" computed a segment 'primary' and failed a segment 'GTV' with "label
    'GTV' is not an integer (use N or name=N)" - not that the comma split the name.  Now the case is refused saying
    so, with the two ways that work: a name without a comma, or the number alone (the SEG's segment label kept)."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    ct, seg = comma_seg
    mask = {"mask": f"{seg}#1"}
    rc, text, out = _batch(tmp_path, capsys, ct, **mask, label="GTV, primary=1")
    assert rc != 0 and "a segment name cannot hold a comma" in text and "is not an integer" not in text, text
    fix = text.split("to fix:")[1] if "to fix:" in text else text.split("How to fix:")[1]
    assert "(GTV_primary=1)" in fix and "label alone (1)" in fix, fix
    for label, segment in (("1", "GTV, primary"), ("GTV_primary=1", "GTV_primary")):   # the two ways, followed
        (tmp_path / label).mkdir()
        rc, text, out = _batch(tmp_path / label, capsys, ct, **mask, label=label)
        assert rc == 0 and set(pd.read_csv(out)["segment"]) == {segment}, text
