"""lungai.segment_roles: segments are picked by exact role, never by substring."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.segment_roles import dose_lung_segments, find_role, segment_role


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
