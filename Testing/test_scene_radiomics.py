"""Slicer logic on real MRML: volume + segmentation (+ dose) -> radiomics table node, CSV export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from lungai.synthetic import labels as L


def _mask(arr, ref):
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.CopyInformation(ref)
    return img


@pytest.fixture
def scene_nodes(mrml_scene, small_phantom):
    from lungai import mrml

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")
    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, _mask(L.tumour_mask(arr), ct), "Tumor", reference_volume_node=vol)
    mrml.mask_to_segment(mrml_scene, _mask(lungs["right"], ct), "Right lung", seg_node=seg)
    mrml.mask_to_segment(mrml_scene, _mask(lungs["left"], ct), "Left lung", seg_node=seg)
    dot = np.zeros_like(arr)
    dot[20, 48, 48] = 1
    mrml.mask_to_segment(mrml_scene, _mask(dot, ct), "Dot", seg_node=seg)
    return vol, seg


def test_table_node_features_by_segment_with_dose(mrml_scene, small_phantom, scene_nodes, tmp_path):
    from lungai import mrml
    from lungai.dose import treatment_dose
    from lungai.radiomics import extract, load_params
    from lungai.scene.radiomics import export_table_csv, radiomics_table

    vol, seg = scene_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    dose_node = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60), "Dose")
    table, errors = radiomics_table(mrml_scene, vol, seg, segments=["Tumor", "Right lung", "Left lung", "Dot"],
                                    feature_classes=["firstorder", "shape"], dose_node=dose_node)
    assert table.IsA("vtkMRMLTableNode")
    assert set(errors) == {"Dot"} and "voxel" in errors["Dot"]
    df = mrml.dataframe_from_table_node(table)
    assert list(df.columns[:4]) == ["feature", "image_type", "feature_class", "name"]
    assert list(df.columns[4:]) == ["Tumor", "Right lung", "Left lung", "Dot", "Lungs", "Lungs minus tumour"]
    rows = df.set_index("feature")
    direct = extract(small_phantom.ct, {"t": tumour}, load_params("default", feature_classes=["firstorder", "shape"]))
    mean = direct.features.query("feature == 'Mean'").value.item()
    assert rows.loc["original_firstorder_Mean", "Tumor"] == pytest.approx(mean, rel=1e-9)
    assert np.isnan(rows.loc["original_firstorder_Mean", "Dot"])
    vv = rows.loc["original_shape_VoxelVolume"]  # lung columns on the default 2 mm grid: sums hold to ~1 %
    assert vv["Lungs"] == pytest.approx(vv["Right lung"] + vv["Left lung"], rel=0.01)
    assert vv["Lungs minus tumour"] == pytest.approx(vv["Lungs"] - vv["Tumor"], rel=0.01)
    assert rows.loc["dose_min_gy", "Tumor"] == pytest.approx(60.0, abs=1e-3)
    assert rows.loc["dose_mean_gy", "Lungs minus tumour"] < rows.loc["dose_mean_gy", "Tumor"]
    out = export_table_csv(table, tmp_path / "radiomics.csv")
    back = pd.read_csv(out)
    assert back.shape == df.shape and back.loc[0, "feature"] == df.loc[0, "feature"]


def test_no_segments_is_an_error(mrml_scene, small_phantom):
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene.radiomics import radiomics_table

    vol = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    with pytest.raises(InputError, match="no segments"):
        radiomics_table(mrml_scene, vol, seg)


def test_a_volume_node_with_nan_voxels_is_refused_by_its_name(mrml_scene, small_phantom, scene_nodes):
    """Review: the console API took a volume node with NaN in the GTV without read_ct's check, and its features were
    those of the finite voxels only (a Mean, silently).  Refused naming the node, as read_ct does for a file; a dose
    node with NaN voxels too."""
    from lungai import mrml
    from lungai.dose import treatment_dose
    from lungai.errors import InputError
    from lungai.scene.radiomics import radiomics_table

    vol, seg = scene_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    arr = sitk.GetArrayFromImage(sitk.Cast(small_phantom.ct, sitk.sitkFloat32))
    inside = np.flatnonzero(sitk.GetArrayViewFromImage(tumour))
    arr.flat[inside[::10]] = np.nan
    nan_ct = sitk.GetImageFromArray(arr)
    nan_ct.CopyInformation(small_phantom.ct)
    bad = mrml.volume_node_from_image(mrml_scene, nan_ct, "CT with NaN")
    with pytest.raises(InputError, match=rf"CT with NaN holds {inside[::10].size} of \d+ voxels that are not numbers"):
        radiomics_table(mrml_scene, bad, seg, segments=["Tumor"], feature_classes=["firstorder"])
    dose = sitk.Cast(treatment_dose(tumour, prescription_gy=60), sitk.sitkFloat32)
    dose_arr = sitk.GetArrayFromImage(dose)
    dose_arr[0, 0, 0] = np.inf
    dose_nan = sitk.GetImageFromArray(dose_arr)
    dose_nan.CopyInformation(dose)
    dose_node = mrml.volume_node_from_image(mrml_scene, dose_nan, "Dose with inf")
    with pytest.raises(InputError, match=r"Dose with inf holds 1 of \d+ voxels that are not numbers \(1 infinite\)"):
        radiomics_table(mrml_scene, vol, seg, segments=["Tumor"], feature_classes=["firstorder"], dose_node=dose_node)


def test_slicerrt_dose_in_cgy_gives_rows_in_gy(mrml_scene, small_phantom, scene_nodes):
    """Review: SlicerRT keeps an RTDOSE's voxels in its DoseUnits (CGY: cGy values) and records the unit on the
    study item (DicomRtImport.DoseUnitName); the dose rows were those values taken as Gy (100x).  Read by
    lungai.scene.dicom.dose_node_unit, the rows are in Gy; an unknown unit is refused."""
    from dicom_helpers import as_slicerrt_dose
    from lungai import mrml
    from lungai.dose import treatment_dose
    from lungai.errors import InputError
    from lungai.scene.dicom import dose_node_unit
    from lungai.scene.radiomics import radiomics_table

    vol, seg = scene_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    dose_node = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60) * 100.0, "Dose")
    assert dose_node_unit(dose_node) == "Gy"                      # no SlicerRT attribute: Gy
    as_slicerrt_dose(mrml_scene, dose_node, "CGY")
    assert dose_node_unit(dose_node) == "cGy"
    table, _ = radiomics_table(mrml_scene, vol, seg, segments=["Tumor"], feature_classes=["firstorder"],
                               dose_node=dose_node)
    rows = mrml.dataframe_from_table_node(table).set_index("feature")
    assert rows.loc["dose_min_gy", "Tumor"] == pytest.approx(60.0, abs=1e-3)
    as_slicerrt_dose(mrml_scene, dose_node, "%")
    with pytest.raises(InputError, match="dose unit '%'"):
        dose_node_unit(dose_node)


def test_two_segments_of_one_name_are_refused_not_one_dropped(mrml_scene, small_phantom, scene_nodes):
    """Two segments named "Tumor" (an RTSTRUCT's two ROIs of one name, a copied segment): the table was keyed by
    name, so one column silently replaced the other; now the table asks to rename one of them."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene.radiomics import radiomics_table

    vol, seg = scene_nodes
    arr = np.zeros(sitk.GetArrayViewFromImage(small_phantom.ct).shape, np.uint8)
    arr[30:34, 60:66, 60:66] = 1
    _, second = mrml.mask_to_segment(mrml_scene, _mask(arr, small_phantom.ct), "Node", seg_node=seg)
    seg.GetSegmentation().GetSegment(second).SetName("Tumor")
    for segments in (None, ["Tumor", "Right lung"]):
        with pytest.raises(InputError, match="2 segments of .* have the name 'Tumor'"):
            radiomics_table(mrml_scene, vol, seg, segments=segments, feature_classes=["firstorder"])
    table, errors = radiomics_table(mrml_scene, vol, seg, segments=["Right lung"], feature_classes=["firstorder"])
    assert not errors   # segments of other names are still measured


def test_tg263_lung_names_are_on_the_lung_grid_like_the_derived_lungs(mrml_scene, small_phantom):
    """QA: segments named GTV-1 / Lung_R / Lung_L (as SlicerRT names RTSTRUCT structures) put Lung_R / Lung_L on the
    CT's grid while the derived Lungs / Lungs minus tumour were on 2 mm (not comparable, and nothing showed it)."""
    from lungai import mrml
    from lungai.scene.radiomics import GRID_ATTRIBUTE, radiomics_table

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")
    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, _mask(L.tumour_mask(arr), ct), "GTV-1", reference_volume_node=vol)
    mrml.mask_to_segment(mrml_scene, _mask(lungs["right"], ct), "Lung_R", seg_node=seg)
    mrml.mask_to_segment(mrml_scene, _mask(lungs["left"], ct), "Lung_L", seg_node=seg)
    table, errors = radiomics_table(mrml_scene, vol, seg, feature_classes=["shape"])
    assert not errors
    vv = mrml.dataframe_from_table_node(table).set_index("feature").loc["original_shape_VoxelVolume"]
    assert vv["Lungs"] == pytest.approx(vv["Lung_R"] + vv["Lung_L"], rel=1e-9)     # one grid: the voxels add up
    for name in ("Lung_R", "Lung_L", "Lungs"):
        assert vv[name] / 8.0 == pytest.approx(round(vv[name] / 8.0), abs=1e-6)   # 2 mm voxels
    grid = table.GetAttribute(GRID_ATTRIBUTE)
    assert "Lung_R: resampled, 2 x 2 x 2 mm" in grid and "GTV-1: native, 3.5 x 3.5 x 5 mm" in grid
    assert "Lungs minus tumour: resampled, 2 x 2 x 2 mm" in grid


def test_a_cgy_dose_node_is_refused_not_read_as_gy(mrml_scene, small_phantom, scene_nodes):
    """QA (slicer53): the console API took a dose volume node in cGy that no SlicerRT attribute marks (an NRRD dose, a
    resampled node) as Gy: dose rows of 6000 "Gy", V5 / V20 100 %, without a word - where the Lung Radiomics panel
    and ``lungai dose-features`` refuse a maximum above 150 Gy.  Now refused by the same rule
    (lungai.dose.read.check_image_dose_values), in the console's terms; ``dose_unit='cGy'`` reads it right; a Gy dose
    given as cGy and a negative dose are refused too."""
    from lungai import mrml
    from lungai.dose import treatment_dose
    from lungai.errors import InputError
    from lungai.scene.radiomics import radiomics_table

    vol, seg = scene_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    gy = sitk.Cast(treatment_dose(tumour, prescription_gy=60), sitk.sitkFloat32)
    cgy_node = mrml.volume_node_from_image(mrml_scene, gy * 100.0, "Dose cGy")
    run = dict(segments=["Tumor"], feature_classes=["firstorder"])
    with pytest.raises(InputError, match=r"Dose cGy: the maximum 6\d{3} Gy is above 150 Gy") as err:
        radiomics_table(mrml_scene, vol, seg, dose_node=cgy_node, **run)
    assert "pass dose_unit='cGy'" in err.value.fix and "--" not in err.value.fix
    table, _ = radiomics_table(mrml_scene, vol, seg, dose_node=cgy_node, dose_unit="cGy", **run)
    rows = mrml.dataframe_from_table_node(table).set_index("feature")
    assert rows.loc["dose_min_gy", "Tumor"] == pytest.approx(60.0, abs=1e-3)
    gy_node = mrml.volume_node_from_image(mrml_scene, gy, "Dose Gy")
    with pytest.raises(InputError, match="too low for a treatment dose") as err:
        radiomics_table(mrml_scene, vol, seg, dose_node=gy_node, dose_unit="cGy", **run)
    assert "pass dose_unit='Gy'" in err.value.fix
    negative = mrml.volume_node_from_image(mrml_scene, gy - 5.0, "Dose minus 5")
    with pytest.raises(InputError, match="Dose minus 5 holds negative values"):
        radiomics_table(mrml_scene, vol, seg, dose_node=negative, **run)
    with pytest.raises(InputError, match="dose unit 'Sv' is not known"):
        radiomics_table(mrml_scene, vol, seg, dose_node=gy_node, dose_unit="Sv", **run)


def test_a_lung_by_its_terminology_is_on_the_lung_grid(mrml_scene, small_phantom):
    """QA slicer68 (LUNG1-003, the right lung renamed "Segment_1" with the Segment Editor's right-lung terminology): the
    segment was a lung for the derived "Lungs" (by its terminology) but measured on the CT's grid (0.977 x 0.977 x
    3 mm), while "Left lung" and "Lungs" were on the 2 mm lung grid - its values not comparable to a right lung's, and
    "Lungs" not the sum of its parts.  A lung by its terminology is on the lung grid as a lung by its name."""
    from lungai import mrml
    from lungai.scene.nodes import terminology_roles
    from lungai.scene.radiomics import GRID_ATTRIBUTE, radiomics_table

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")
    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, _mask(L.tumour_mask(arr), ct), "GTV-1", reference_volume_node=vol)
    _, right = mrml.mask_to_segment(mrml_scene, _mask(lungs["right"], ct), "Right lung", seg_node=seg)
    mrml.mask_to_segment(mrml_scene, _mask(lungs["left"], ct), "Left lung", seg_node=seg)
    seg.GetSegmentation().GetSegment(right).SetName("Segment_1")      # renamed: the lung terminology stays
    assert terminology_roles(seg) == {"Segment_1": "lung_right"}
    table, errors = radiomics_table(mrml_scene, vol, seg, feature_classes=["shape"])
    assert not errors
    grid = table.GetAttribute(GRID_ATTRIBUTE)
    assert "Segment_1: resampled, 2 x 2 x 2 mm" in grid and "GTV-1: native, 3.5 x 3.5 x 5 mm" in grid, grid
    vv = mrml.dataframe_from_table_node(table).set_index("feature").loc["original_shape_VoxelVolume"]
    assert vv["Lungs"] == pytest.approx(vv["Segment_1"] + vv["Left lung"], rel=1e-9)     # one grid: they add up
    # the same values as the lung named so
    seg.GetSegmentation().GetSegment(right).SetName("Right lung")
    named, _ = radiomics_table(mrml_scene, vol, seg, segments=["Right lung"], feature_classes=["shape"])
    assert mrml.dataframe_from_table_node(named).set_index("feature").loc[
        "original_shape_VoxelVolume", "Right lung"] == pytest.approx(vv["Segment_1"], rel=1e-12)
