"""lungai.segment_roles: segments are picked by exact role, never by substring."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.segment_roles import (describe_tumour_choice, dose_lung_segments, find_role, primary_tumour, segment_role,
                                  tumour_segments)


def test_roles_are_exact():
    assert [segment_role(n) for n in ("Tumor", "tumour", "GTV", "GTV-1", "gtv_2", "Right lung", "RIGHT-LUNG",
                                      "Left lung", "lung_left", "Lungs", "Lungs minus tumour")] == \
        ["tumour"] * 5 + ["right_lung"] * 2 + ["left_lung"] * 2 + ["lungs", "lungs_minus_tumour"]
    for other in ("Lung tumour", "Tumour of left lung", "Right lung nodule", "lung_tumor", "Heart", "GTV lung"):
        assert segment_role(other) is None, other


def test_dose_lung_segments_skip_tumours_and_derived_masks():
    names = ["Tumor", "Lung tumour", "Right lung", "Left lung", "Lungs minus tumour", "lung_upper_lobe_left",
             "Right lung nodule"]
    assert dose_lung_segments(names) == ["Right lung", "Left lung", "lung_upper_lobe_left"]
    assert find_role(names, "tumour") == "Tumor" and find_role(["Lung tumour"], "tumour") is None


def test_dose_lung_segments_take_a_lungs_gtv_segment_as_dose_lungs_role():
    """QA: a 'Lungs-GTV' segment (an RTSTRUCT's only lung structure, TG-263 style) gave no dose lungs in the panel
    while lungai dose-features --rtstruct takes it; one rule now (lungai.dicom.roles.dose_lungs_role): the whole lungs
    ('Lungs', or a right and a left lung) first, else a lungs-minus-GTV segment, else the lung segments there are."""
    from lungai.dicom.roles import dose_lungs_role

    for names in (["Lungs-GTV"], ["Lung_Total-GTV", "GTV-1"], ["Lungs minus GTV", "GTV"], ["Lung_R", "Lungs-GTV"]):
        assert dose_lungs_role(names) == "lungs_minus_gtv"
        assert dose_lung_segments(names) == [next(n for n in names if segment_role(n) == "lungs_minus_tumour")]
    assert dose_lung_segments(["Lung_R", "Lung_L", "Lungs-GTV"]) == ["Lung_R", "Lung_L"]       # whole lungs first
    assert dose_lung_segments(["Lungs", "Lungs-GTV"]) == ["Lungs"]
    assert dose_lung_segments(["lung_upper_lobe_left", "Lungs-GTV"]) == ["lung_upper_lobe_left"]
    assert dose_lung_segments(["Right lung"]) == ["Right lung"] and dose_lung_segments(["GTV", "Heart"]) == []


def test_real_rtstruct_roi_names():
    """The ROI names of the NSCLC-Radiomics RTSTRUCT in ../shared/data (LUNG1-003), as exported."""
    names = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]
    assert [segment_role(n) for n in names] == ["right_lung", "left_lung", None, None, None] + ["tumour"] * 3
    assert dose_lung_segments(names) == ["Lung-Right", "Lung-Left"]


def test_derived_lungs_ignore_a_lung_tumour_segment(small_phantom):
    from lungai.scene.nodes import derived_lung_masks

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    img = lambda m: sitk.Cast(sitk.GetImageFromArray(m.astype(np.uint8)), sitk.sitkUInt8)  # noqa: E731
    masks = {"Lung tumour": img(arr == 9), "Right lung": img(arr == 2), "Left lung": img(arr == 3)}
    for m in masks.values():
        m.CopyInformation(small_phantom.labels)
    out = derived_lung_masks(masks)
    assert set(out) == {"Lungs"}                      # no tumour role -> no "Lungs minus tumour"
    assert (sitk.GetArrayFromImage(out["Lungs"]) > 0).sum() == ((arr == 2) | (arr == 3)).sum()


def test_primary_tumour_is_not_the_first_tumour_segment():
    """QA: one tumour needed (stage CT branch) -> the primary GTV (lungai.dicom.roles' gtv_primary names), then a
    plain GTV / Tumor, then the lowest GTV number, nodes last; never the segment order (LUNG1-003: gtv-3 first)."""
    names = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]
    assert find_role(names, "tumour") == "gtv-3"            # the first one, as before
    assert primary_tumour(names) == "GTV-1" and tumour_segments(names) == ["GTV-1", "gtv-2", "gtv-3"]
    assert describe_tumour_choice(names) == "tumour: GTV-1 (primary of 3 GTVs: GTV-1, gtv-2, gtv-3)"
    assert primary_tumour(["GTVn", "GTVp"]) == "GTVp" and primary_tumour(["GTV 2", "GTV 1"]) == "GTV 1"
    assert primary_tumour(["gtv-3", "gtv-2"]) == "gtv-2" and primary_tumour(["GTV_10", "GTV_9"]) == "GTV_9"
    assert primary_tumour(["GTV_node", "gtv-2", "Tumor"]) == "Tumor" and primary_tumour(["GTVn2", "GTVn1"]) == "GTVn1"
    assert primary_tumour(["Heart", "Lung tumour"]) is None and describe_tumour_choice(["Tumor"]) == "tumour: Tumor"
