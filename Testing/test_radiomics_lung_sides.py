"""Right / left lung segments on the wrong sides (QA rad53): a lung label map of 1 = left, 2 = right (or
``labels.nii.gz#4,3`` for LUNG1-002's 3 = right, 4 = left lung, or swapped ``--label`` names) gave ``right_lung``
features computed on the patient's left lung and ``left_lung`` on the right one, exit 0 without a word.  Now the two
segments fail naming the swap and the fix (``lungai.lungs.check.lung_sides_problem``); both lungs, the lungs minus
the tumour and the tumour go on."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.radiomics import segments as S

SWAPPED = "so right and left are swapped"


def _ct_and_map(right_value: int = 1, left_value: int = 2):
    """A CT (40 x 20 x 10 voxels, 5 mm, LPS) with two air boxes: the patient's right lung at small x (LPS), the left
    lung at large x, labelled ``right_value`` / ``left_value``; a 'tumour' (label 5) inside the right lung."""
    ct_arr = np.full((10, 20, 40), 40, np.int16)
    lab = np.zeros((10, 20, 40), np.uint8)
    lab[2:8, 3:17, 2:16] = right_value          # x index 2..15: x = -97 .. -32 mm, the patient's right
    lab[2:8, 3:17, 24:38] = left_value          # x index 24..37: x = +23 .. +88 mm, the patient's left
    ct_arr[lab > 0] = -800
    lab[4:6, 8:11, 6:9] = 5
    ct = sitk.GetImageFromArray(ct_arr)
    ct.SetSpacing((5.0, 5.0, 5.0))
    ct.SetOrigin((-97.5, -50.0, 0.0))
    labels = sitk.GetImageFromArray(lab)
    labels.CopyInformation(ct)
    return ct, labels


def _lung_map(labels: sitk.Image, right: int, left: int) -> sitk.Image:
    """``labels``' lungs as a lung map 1 = (label ``right``), 2 = (label ``left``), as FILE#R,L reads them."""
    arr = sitk.GetArrayFromImage(labels)
    out = sitk.GetImageFromArray(((arr == right) * 1 + (arr == left) * 2).astype(np.uint8))
    out.CopyInformation(labels)
    return out


def test_swapped_lung_map_fails_the_side_segments_only():
    ct, labels = _ct_and_map()
    tumour = sitk.Cast(labels == 5, sitk.sitkUInt8)
    errors: dict = {}
    segs = S.segments_from_masks(ct, tumour=tumour, lungs=_lung_map(labels, 1, 2), errors=errors)
    assert errors == {} and set(segs) == set(S.STANDARD_SEGMENTS)
    right = sitk.GetArrayFromImage(segs["right_lung"]) > 0
    assert np.array_equal(right, sitk.GetArrayFromImage(labels) == 1)

    errors = {}
    segs = S.segments_from_masks(ct, tumour=tumour, lungs=_lung_map(labels, 2, 1), errors=errors)   # 1 = left
    assert set(segs) == {"tumour", "lungs", "lungs_minus_tumour"}
    assert set(errors) == {"right_lung", "left_lung"}
    assert SWAPPED in errors["right_lung"] and "x = 55 mm and -5" in errors["right_lung"]
    assert "FILE#R,L: swap the two numbers" in errors["right_lung"]
    # only the lungs asked for: the sides do not matter, nothing fails
    errors = {}
    segs = S.segments_from_masks(ct, lungs=_lung_map(labels, 2, 1), names=["lungs"], errors=errors)
    assert errors == {} and set(segs) == {"lungs"}


def test_sides_are_read_in_patient_coordinates_not_storage_order():
    """A CT stored RAS (x index towards the patient's right) with its map: the same lungs, no false alarm; the
    swapped map on it is still refused."""
    ct, labels = _ct_and_map()
    ct_ras, labels_ras = sitk.DICOMOrient(ct, "RAS"), sitk.DICOMOrient(labels, "RAS")
    errors: dict = {}
    segs = S.segments_from_masks(ct_ras, lungs=_lung_map(labels_ras, 1, 2), errors=errors)
    assert errors == {} and {"right_lung", "left_lung"} <= set(segs)
    S.segments_from_masks(ct_ras, lungs=_lung_map(labels_ras, 2, 1), errors=errors)
    assert SWAPPED in errors["right_lung"]


@pytest.mark.parametrize("right,left", [("right_lung", "left_lung"), ("Right lung", "Left lung"), ("Lung_R", "Lung_L")])
def test_swapped_label_names_fail_the_side_segments(right, left):
    ct, labels = _ct_and_map(right_value=3, left_value=4)
    errors: dict = {}
    segs = S.segments_from_labels(labels, ct, [f"{right}=3", f"{left}=4", "gtv=5"], errors=errors)
    assert errors == {} and set(segs) == {right, left, "gtv"}
    segs = S.segments_from_labels(labels, ct, [f"{right}=4", f"{left}=3", "gtv=5"], errors=errors)
    assert set(segs) == {"gtv"} and set(errors) == {right, left}
    assert f"(segment {right!r}, label 4) lies on the patient's left" in errors[right] and SWAPPED in errors[left]


def test_cli_swapped_lungs_exit_1_with_the_errors_table(tmp_path):
    from lungai.cli import main

    ct, labels = _ct_and_map(right_value=3, left_value=4)
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(labels, str(tmp_path / "labels.nrrd"))
    out = tmp_path / "f.csv"
    base = ["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--feature-classes", "firstorder", "-o", str(out),
            "--lung-spacing", "0"]
    assert main(base + ["--lungs", str(tmp_path / "labels.nrrd") + "#3,4"]) == 0
    assert main(base + ["--lungs", str(tmp_path / "labels.nrrd") + "#4,3"]) == 1
    table = (tmp_path / "f_errors.csv").read_text(encoding="utf-8")
    assert "right_lung" in table and SWAPPED in table
    import pandas as pd

    assert set(pd.read_csv(out)["segment"]) == {"lungs"}        # never a right_lung of the left lung's voxels


@pytest.mark.shared_data
def test_lung1_002_lungs_given_left_then_right_are_refused(shared_data):
    """LUNG1-002's map: 3 = right lung (1832 ml), 4 = left lung (1966 ml).  ``#4,3`` made right_lung 1966 ml."""
    from lungai.dicom.masks import lung_map_input

    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / "LUNG1-002_ct.nii.gz"))
    errors: dict = {}
    segs = S.segments_from_masks(ct, lungs=lung_map_input(f"{d / 'LUNG1-002_labels.nii.gz'}#3,4", ct), errors=errors)
    assert errors == {} and {"right_lung", "left_lung"} <= set(segs)
    segs = S.segments_from_masks(ct, lungs=lung_map_input(f"{d / 'LUNG1-002_labels.nii.gz'}#4,3", ct), errors=errors)
    assert "right_lung" not in segs and SWAPPED in errors["right_lung"] and SWAPPED in errors["left_lung"]


def test_one_lung_alone_on_the_other_side_of_the_body_fails_its_segment():
    """QA radiomics71 (LUNG1-003): the left lung alone as a mask of label 1 (one structure exported alone) was read as
    a lung map's right lung: ``right_lung`` written with the left lung's features (1722 ml, its centre 69 mm to the
    patient's left of the body's), exit 1 only for the empty ``left_lung``, no word of the side.  A lone lung lying
    on the other side of the body's centre fails its segment, naming the side and the fix; one on its own side is
    computed as before, and both lungs ('lungs') go on."""
    ct, labels = _ct_and_map()
    arr = sitk.GetArrayFromImage(labels)
    for lung, value, fails in ((2, 1, "right_lung"), (1, 1, None), (2, 2, None), (1, 2, "left_lung")):
        one = sitk.GetImageFromArray(((arr == lung) * value).astype(np.uint8))   # the patient's right (1) / left (2)
        one.CopyInformation(labels)
        errors: dict = {}
        segs = S.segments_from_masks(ct, lungs=one, errors=errors)
        side = "right_lung" if value == 1 else "left_lung"
        assert "lungs" in segs, (lung, value, errors)
        if fails is None:
            assert side in segs and errors == {}, (lung, value, errors)
        else:
            other = "left" if value == 1 else "right"
            assert fails not in segs and set(errors) == {fails}, (lung, value, errors)
            assert f"is the only lung given and lies on the patient's {other}" in errors[fails], errors[fails]
            assert f"so it is the {other} lung" in errors[fails] and "relabel this lung to its side's label" in \
                errors[fails], errors[fails]


def test_one_lung_on_a_ct_cut_through_the_body_is_not_judged():
    """A CT whose body reaches one right-left edge only (cut at the midline, a field of view off the patient): the
    body's centre is not the patient's, so a lone lung's side is not judged (computed as given, as before)."""
    ct, labels = _ct_and_map()
    arr = sitk.GetArrayFromImage(ct)
    arr[:, :, 30:] = -1000                        # no body beyond x index 30: the CT cut off on the patient's left
    cut = sitk.GetImageFromArray(arr)
    cut.CopyInformation(ct)
    one = sitk.GetImageFromArray((sitk.GetArrayFromImage(labels) == 2).astype(np.uint8))   # the left lung as label 1
    one.CopyInformation(labels)
    errors: dict = {}
    segs = S.segments_from_masks(cut, lungs=one, errors=errors)
    assert errors == {} and "right_lung" in segs
