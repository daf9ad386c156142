"""Slicer side of DICOM RT (real MRML, slicer-core): an RTSTRUCT segmentation (as SlicerRT loads it, segments named
like the ROIs) as tumour / lungs input by role, and export of segments as DICOM SEG / RTSTRUCT."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_helpers import array, rt_export, slicerrt_segmentation


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt"))["P1"]


def test_rtstruct_segmentation_as_tumour_and_lungs_input(mrml_scene, study):
    from lungai.scene.dicom import lung_label_image, role_mask, role_segments

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    assert role_segments(seg, "gtv") == ["GTV"] and role_segments(seg, "lung_left") == ["Lung_L"]
    assert np.array_equal(array(role_mask(mrml_scene, seg, "gtv", vol)), array(study["masks"]["GTV"]))
    labels = array(lung_label_image(mrml_scene, seg, vol))
    assert np.array_equal(labels == 1, array(study["masks"]["Lung_R"]) > 0)
    assert np.array_equal(labels == 2, array(study["masks"]["Lung_L"]) > 0)
    minus = array(role_mask(mrml_scene, seg, "lungs_minus_gtv", vol))
    assert minus.sum() == ((labels > 0) & (array(study["masks"]["GTV"]) == 0)).sum()


def test_export_segments_as_dicom_seg_and_rtstruct(mrml_scene, study, tmp_path):
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.errors import InputError
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    with pytest.raises(InputError, match="was not loaded from DICOM"):
        export_segments_dicom(mrml_scene, vol, seg, tmp_path)
    seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path, segments=["GTV", "Lung_R"],
                                              ct_source=study["ct"], name="result")
    assert (seg_path.name, rt_path.name) == ("result.seg.dcm", "result.rtstruct.dcm")
    for back in (read_seg(seg_path, ct), read_rtstruct(rt_path, ct)):
        assert list(back) == ["GTV", "Lung_R"]
        for name, mask in back.items():
            assert np.array_equal(array(mask), array(study["masks"][name])), name


def test_exported_segments_are_the_users_unless_lungai_made_them(mrml_scene, study, tmp_path):
    """The user's segments (SlicerRT's RTSTRUCT) are exported MANUAL; a tumour lungai segmented (LungAISeg's
    nodes.add_tumour_outputs) AUTOMATIC, SlicerLungAI."""
    from dicom_helpers import provenance

    from lungai.scene import nodes
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    nodes.add_tumour_outputs(mrml_scene, vol, study["masks"]["GTV"], study["masks"]["GTV"], {"confidence": 0.7},
                             seg_node=seg)
    paths = export_segments_dicom(mrml_scene, vol, seg, tmp_path, segments=["GTV", "Tumor"], ct_source=study["ct"])
    assert provenance(*paths) == ({"GTV": ("MANUAL", None), "Tumor": ("AUTOMATIC", "SlicerLungAI")},
                                  {"GTV": "MANUAL", "Tumor": "AUTOMATIC"})


def test_dose_node_of_one_beam_is_refused(tmp_path, monkeypatch):
    """The Lung Radiomics panel's dose volume loaded from an RTDOSE (SlicerRT) must be the plan's total dose:
    a BEAM / FRACTION RTDOSE is refused as in lungai dose-features (DoseSummationType)."""
    from types import SimpleNamespace

    import lungai.scene.dicom as scene_dicom
    from dose_helpers import with_summation_type
    from lungai.errors import InputError

    study = rt_export(tmp_path)["P1"]
    ct_file = sorted(study["ct"].glob("*.dcm"))[0]
    beam = with_summation_type(study["dose"], tmp_path / "beam.dcm", "BEAM", plan="1.2.3.1", factor=0.5)
    files = {"dose": [study["dose"]], "beam": [beam], "ct": [ct_file]}
    monkeypatch.setattr(scene_dicom, "dicom_files_of_volume", lambda node: files[node.GetName()])
    monkeypatch.setattr(scene_dicom, "_patient_id", lambda node: "P1")
    node = lambda name: SimpleNamespace(GetName=lambda: name)  # noqa: E731
    scene_dicom.check_dose_node_matches_ct(node("dose"), node("ct"))
    with pytest.raises(InputError, match="beam has DoseSummationType BEAM"):
        scene_dicom.check_dose_node_matches_ct(node("beam"), node("ct"))
