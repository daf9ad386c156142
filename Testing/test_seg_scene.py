"""Slicer logic on real MRML (slicer-core): volume node (+ markups point / ROI) -> "Tumor" segment,
uncertainty volume node and confidence table; existing segments are never overwritten."""

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.seg.model_io import load_model
from lungai.seg.resources import default_model_dir


@pytest.fixture(scope="module")
def default_model():
    return load_model(default_model_dir())


def _crop_node(scene, phantom):
    from lungai import mrml
    from lungai.seg import preprocess as pp

    centre = phantom.meta["tumour"]["centre_mm"]
    box = pp.box_from_seed(phantom.ct, centre, 70.0)
    return mrml.volume_node_from_image(scene, pp.crop(phantom.ct, box), "CT"), centre


def test_segment_tumour_node_with_seed_point(mrml_scene, small_phantom, default_model):
    from lungai import mrml
    from lungai.scene.segment import TABLE_FIELDS, segment_tumour_node

    vol, centre = _crop_node(mrml_scene, small_phantom)
    point = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
    point.AddControlPoint(-centre[0], -centre[1], centre[2])          # RAS in the scene
    out = segment_tumour_node(mrml_scene, vol, point_node=point, loaded_model=default_model)
    seg = out["segmentation"]
    assert mrml.segment_names(seg) == ["Tumor"]
    import vtk

    segment = seg.GetSegmentation().GetSegment(out["segment_id"])
    s = vtk.reference("")
    assert segment.GetTag("TerminologyEntry", s)
    tag = str(s)
    from lungai.terminology import TERMINOLOGY, slicer_terminology_entry

    assert slicer_terminology_entry("Tumor") == tag == TERMINOLOGY["gtv"].slicer_entry()
    assert out["result"]["roi_mode"] == "seed"
    ref = mrml.image_from_volume_node(vol)
    unc = mrml.image_from_volume_node(out["uncertainty"])
    assert unc.GetSize() == ref.GetSize() and np.allclose(unc.GetOrigin(), ref.GetOrigin())
    u = sitk.GetArrayFromImage(unc)
    assert u.min() >= 0 and u.max() <= 1.0001
    df = mrml.dataframe_from_table_node(out["table"])
    assert len(df) == 1 and set(TABLE_FIELDS) <= set(df.columns)
    assert float(df["confidence"][0]) == pytest.approx(out["result"]["confidence"], abs=1e-6)
    assert 0 < out["result"]["confidence"] <= 1
    mask = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol))
    assert int(mask.sum()) == round(out["result"]["tumor_volume_ml"] / (np.prod(ref.GetSpacing()) / 1000))


def test_existing_segments_are_kept_unless_chosen(mrml_scene, small_phantom, default_model):
    from lungai import mrml
    from lungai.scene.segment import segment_tumour_node

    vol, centre = _crop_node(mrml_scene, small_phantom)
    ref = mrml.image_from_volume_node(vol)
    manual = np.zeros(ref.GetSize()[::-1], np.uint8)
    manual[2:4, 2:5, 2:5] = 1
    manual_img = sitk.GetImageFromArray(manual)
    manual_img.CopyInformation(ref)
    seg, _ = mrml.mask_to_segment(mrml_scene, manual_img, "Tumor", reference_volume_node=vol)
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(-centre[0], -centre[1], centre[2])
    roi.SetSize(50, 50, 40)
    out = segment_tumour_node(mrml_scene, vol, roi_node=roi, seg_node=seg, loaded_model=default_model)
    assert out["result"]["roi_mode"] == "roi"
    assert mrml.segment_names(seg) == ["Tumor", "Tumor (2)"]
    kept = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol))
    assert np.array_equal(kept, manual)                              # the user's segment is untouched
    segment_tumour_node(mrml_scene, vol, roi_node=roi, seg_node=seg, replace_segment="Tumor",
                        loaded_model=default_model)
    assert mrml.segment_names(seg) == ["Tumor", "Tumor (2)"]
    replaced = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol))
    assert not np.array_equal(replaced, manual)


def test_the_confidence_table_records_the_box_its_passes_and_why_it_stopped(mrml_scene, small_phantom,
                                                                           default_model):
    """QA segoutputs66 (lung2, a seed at its lesion, Segment in Slicer): lungai segment's result.json records the seed
    point, the box finally used, the passes of the growing box and why it stopped, but the panel deletes its work
    folder with result.json, and the scene kept none of them (the box only as an attribute of the uncertainty map):
    a saved scene could not say which box a tumour was segmented in nor why the box stopped growing ("looked 2
    times ... kept pass 2: box 121 x 122 x 130 mm" was in the panel's log only).  The confidence table now holds them,
    the point and box as lungai segment's --seed-point / --roi take them."""
    from lungai import mrml
    from lungai.cli.seg import roi_value, seed_point_value
    from lungai.scene.segment import segment_tumour_node

    vol, centre = _crop_node(mrml_scene, small_phantom)
    point = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
    point.AddControlPoint(-centre[0], -centre[1], centre[2])
    out = segment_tumour_node(mrml_scene, vol, point_node=point, loaded_model=default_model)
    result = out["result"]
    assert result["roi_passes"] and result["roi_stop_reason"]
    row = mrml.dataframe_from_table_node(out["table"]).iloc[0]
    assert int(row["roi_pass_count"]) == len(result["roi_passes"])
    assert row["roi_stop_reason"] == result["roi_stop_reason"]
    np.testing.assert_allclose(seed_point_value(row["seed_point_lps_mm"]), result["seed_point_lps_mm"], atol=0.01)
    np.testing.assert_allclose(roi_value(row["roi_lps_mm"]), np.ravel(result["roi_lps_mm"]), atol=0.01)
    # automatic mode: no seed, no growing box - empty cells, no pass
    auto = segment_tumour_node(mrml_scene, vol, loaded_model=default_model)
    row = mrml.dataframe_from_table_node(auto["table"]).iloc[0]
    assert (row["seed_point_lps_mm"], row["roi_stop_reason"], int(row["roi_pass_count"])) == ("", "", 0)
    np.testing.assert_allclose(roi_value(row["roi_lps_mm"]), np.ravel(auto["result"]["roi_lps_mm"]), atol=0.01)
