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


def test_an_empty_segment_is_left_out_of_the_dicom_export_with_a_note(mrml_scene, study, tmp_path):
    """QA: the panel's "Export as DICOM SEG + RTSTRUCT" wrote an empty segment (an erased "Tumor", a "Left lung" never
    painted) as an empty SEG segment and an RTSTRUCT structure without contours, without a word (`lungai dicom-export`
    leaves an empty tumour out with a note).  It is now left out, said in an InputNote; all segments empty: refused."""
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.errors import InputError, InputNote
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    seg.GetSegmentation().AddEmptySegment("", "Left lung")
    with pytest.warns(InputNote, match=r"^empty segment 'Left lung' not written"):
        seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "a", segments=["GTV", "Left lung"],
                                                  ct_source=study["ct"], name="result")
    for back in (read_seg(seg_path, ct), read_rtstruct(rt_path, ct)):
        assert list(back) == ["GTV"]
        assert np.array_equal(array(back["GTV"]), array(study["masks"]["GTV"]))
    with pytest.raises(InputError, match="every segment chosen for the DICOM export is empty"):
        export_segments_dicom(mrml_scene, vol, seg, tmp_path / "b", segments=["Left lung"], ct_source=study["ct"])
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


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


def test_dose_node_of_an_rtdose_without_frame_of_reference_or_summation_type_says_it_unchecked(tmp_path, monkeypatch):
    """QA (dose60): the Lung Radiomics panel's RTDOSE node whose file carries no FrameOfReferenceUID (or no
    DoseSummationType), with a CT loaded from DICOM, was taken with no word (as lungai dose-features did): the notes of
    dose-features now."""
    from types import SimpleNamespace

    import pydicom

    import lungai.scene.dicom as scene_dicom

    study = rt_export(tmp_path)["P1"]
    ct_file = sorted(study["ct"].glob("*.dcm"))[0]
    ds = pydicom.dcmread(study["dose"])
    del ds.FrameOfReferenceUID
    ds.save_as(tmp_path / "no_frame.dcm")
    files = {"dose": [study["dose"]], "no frame": [tmp_path / "no_frame.dcm"], "ct": [ct_file]}
    monkeypatch.setattr(scene_dicom, "dicom_files_of_volume", lambda node: files[node.GetName()])
    monkeypatch.setattr(scene_dicom, "_patient_id", lambda node: "P1")
    node = lambda name: SimpleNamespace(GetName=lambda: name)  # noqa: E731
    assert scene_dicom.check_dose_node_matches_ct(node("dose"), node("ct")) == []
    notes = scene_dicom.check_dose_node_matches_ct(node("no frame"), node("ct"))
    assert len(notes) == 1 and notes[0].startswith(
        "the RTDOSE no frame could not be checked against the frame of reference of the CT ct: the RTDOSE carries no "
        "FrameOfReferenceUID"), notes
    ds = pydicom.dcmread(study["dose"])              # no DoseSummationType: read, said (dose-features' note)
    del ds.DoseSummationType
    ds.save_as(tmp_path / "no_sum.dcm")
    files["no sum"] = [tmp_path / "no_sum.dcm"]
    assert scene_dicom.check_dose_node_matches_ct(node("no sum"), node("ct")) == [
        "no sum has no DoseSummationType (a mandatory tag), so that it is the plan's total dose - not the dose of one "
        "fraction or of some beams, whose MLD, V20 ... are a part of it - could not be checked; make sure it is the "
        "plan dose (export it with DoseSummationType PLAN from the planning system)"]


@pytest.mark.parametrize("fault", ["no_units", "beam", "error_type"])
def test_dose_node_of_another_patient_is_said_so_before_its_rtdose_header_faults(tmp_path, monkeypatch, fault):
    """QA dose66: the Lung Radiomics panel's RTDOSE node of another patient (or frame of reference) whose header also
    lacks DoseUnits (or is a BEAM / ERROR dose) was refused as "has no DoseUnits ... re-export the RTDOSE" - a fix that
    re-exports the wrong patient's dose - while lungai dose-features on the same files says first that the RTDOSE does
    not belong to the CT.  The patient / frame of reference is now checked first, in the panel as on the command line;
    the header's own fault is still said for this patient's RTDOSE, each message with its fix."""
    from types import SimpleNamespace

    import pydicom

    import lungai.scene.dicom as scene_dicom
    from lungai.errors import InputError

    study = rt_export(tmp_path)["P1"]
    ct_file = sorted(study["ct"].glob("*.dcm"))[0]

    def broken(name, patient=None, frame=None):
        ds = pydicom.dcmread(study["dose"])
        if fault == "no_units":
            del ds.DoseUnits
        else:
            setattr(ds, "DoseSummationType" if fault == "beam" else "DoseType", "BEAM" if fault == "beam" else "ERROR")
        if patient:
            ds.PatientID = patient
        if frame:
            ds.FrameOfReferenceUID = frame
        ds.save_as(tmp_path / name)
        return tmp_path / name

    files = {"own": [broken("own.dcm")], "other patient": [broken("other.dcm", patient="P2")],
             "other frame": [broken("frame.dcm", frame="1.2.3.999")], "ct": [ct_file]}
    monkeypatch.setattr(scene_dicom, "dicom_files_of_volume", lambda node: files[node.GetName()])
    monkeypatch.setattr(scene_dicom, "_patient_id", lambda node: "P1")
    node = lambda name: SimpleNamespace(GetName=lambda: name)  # noqa: E731
    header_fault = {"no_units": "has no DoseUnits", "beam": "has DoseSummationType BEAM",
                    "error_type": "has DoseType ERROR"}[fault]
    with pytest.raises(InputError, match=f"^own {header_fault}") as err:
        scene_dicom.check_dose_node_matches_ct(node("own"), node("ct"))
    assert err.value.fix
    for name, what in (("other patient", "PatientID"), ("other frame", "FrameOfReferenceUID")):
        with pytest.raises(InputError) as err:
            scene_dicom.check_dose_node_matches_ct(node(name), node("ct"))
        assert err.value.problem.startswith(f"the RTDOSE {name} does not belong to the CT ct: "), (name, str(err.value))
        assert what in err.value.problem, err.value.problem
        assert "give the RTDOSE exported with this CT for this patient" in err.value.fix, err.value.fix


def _two_gtv_segments(scene, study, second: str):
    """SlicerRT's segmentation of ``study`` with the GTV split in two: "GTV" (its lower slices) and ``second`` (its
    upper ones), named as a user's rename leaves them."""
    from lungai import mrml
    from lungai.io import copy_geometry

    ct, vol, seg = slicerrt_segmentation(scene, study)
    gtv = array(study["masks"]["GTV"]) > 0
    zs = np.nonzero(gtv.any(axis=(1, 2)))[0]
    upper = gtv.copy()
    upper[: (zs[0] + zs[-1]) // 2 + 1] = False
    segmentation = seg.GetSegmentation()
    first = segmentation.GetSegmentIdBySegmentName("GTV")
    mrml.mask_to_segment(scene, copy_geometry((gtv & ~upper).astype(np.uint8), ct), "GTV", seg_node=seg,
                         replace_segment=first, reference_volume_node=vol)
    _, added = mrml.mask_to_segment(scene, copy_geometry(upper.astype(np.uint8), ct), "other", seg_node=seg,
                                    reference_volume_node=vol)
    segmentation.GetSegment(added).SetName(second)
    return ct, vol, seg, gtv, upper


def test_exported_segments_differing_only_in_case_are_read_back(mrml_scene, study, tmp_path, capsys):
    """Review of dd1aef0: segments "GTV" and "gtv" exported by export_segments_dicom (LungAISeg's Export DICOM) gave a
    SEG / RTSTRUCT our own readers refused ("holds 2 segments labelled 'GTV'"); both are read back, the tumour by role
    is their union (dicom-export --tumour case.seg.dcm, as before dd1aef0)."""
    from lungai.cli import main
    from lungai.dicom.rtstruct import read_rtstruct, read_rtstruct_role
    from lungai.dicom.seg import read_seg
    from lungai.io import read_mask
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg, gtv, upper = _two_gtv_segments(mrml_scene, study, "gtv")
    seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "out_case", ct_source=study["ct"],
                                              name="case")
    back = read_seg(seg_path, ct)
    assert [n for n in back if n.lower() == "gtv"] == ["GTV", "gtv"]
    assert np.array_equal(array(back["gtv"]) > 0, upper) and np.array_equal(array(back["GTV"]) > 0, gtv & ~upper)
    assert np.array_equal(array(read_mask(seg_path, reference=ct, select="role:gtv")) > 0, gtv)
    mask, used = read_rtstruct_role(rt_path, ct, "gtv")
    assert used == ["GTV", "gtv"] and np.array_equal(array(mask) > 0, gtv)
    assert "gtv" in read_rtstruct(rt_path, ct)
    out = tmp_path / "ex"
    assert main(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(seg_path), "-o", str(out)]) == 0, \
        capsys.readouterr().err
    tumour = read_mask(out / "results.seg.dcm", reference=ct, select="role:gtv")
    assert np.array_equal(array(tumour) > 0, gtv)        # the union, as before dd1aef0


def test_segments_of_one_name_are_refused_at_export(mrml_scene, study, tmp_path):
    """Two segments named "GTV": the export wrote the first one only (segment_to_mask by name), the second dropped
    from SEG and RTSTRUCT without a word.  Refused before anything is written, with the Segment Editor fix; also when
    only that name is chosen."""
    from lungai.errors import InputError
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg, gtv, upper = _two_gtv_segments(mrml_scene, study, "GTV")
    for segments in (None, ["GTV"], ["GTV", "Lung_R"]):
        with pytest.raises(InputError, match=r"2 segments of RTSTRUCT have the name 'GTV'.*one would replace the other") \
                as info:
            export_segments_dicom(mrml_scene, vol, seg, tmp_path / "out", segments=segments, ct_source=study["ct"])
        assert "rename one of the segments in the Segment Editor" in info.value.fix
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # spaces around a name are no other name either (the readers strip them)
    seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetNthSegmentID(seg.GetSegmentation()
                                                                           .GetNumberOfSegments() - 1)).SetName("GTV ")
    with pytest.raises(InputError, match=r"have the name 'GTV' \('GTV', 'GTV '\)"):
        export_segments_dicom(mrml_scene, vol, seg, tmp_path / "out", ct_source=study["ct"])


def _registration(scene, *nodes):
    """A linear transform node (a 7 degree turn about S and a (12.5, -8, 4) mm shift, as a registration leaves it)
    with ``nodes`` under it."""
    import math

    import vtk

    matrix = vtk.vtkMatrix4x4()
    c, s = math.cos(math.radians(7.0)), math.sin(math.radians(7.0))
    for r, row in enumerate(((c, -s, 0.0, 12.5), (s, c, 0.0, -8.0), (0.0, 0.0, 1.0, 4.0))):
        for k, value in enumerate(row):
            matrix.SetElement(r, k, value)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    transform.SetMatrixTransformToParent(matrix)
    for node in nodes:
        node.SetAndObserveTransformNodeID(transform.GetID())
    return transform


@pytest.mark.parametrize("segmentation_moved", [True, False], ids=["both-under-it", "drawn-on-the-moved-ct"])
def test_export_of_a_ct_under_a_registration_transform(mrml_scene, study, tmp_path, segmentation_moved):
    """QA (slicer53): a CT loaded from DICOM and put under a registration transform (with its segmentation, or with
    segments drawn where the moved CT is shown) could not be exported: its world origin was compared with the
    series and refused as "the CT image's origin ... is not the first slice of <its own DICOM folder>: write DICOM
    results only for a CT read from this very series folder".  Now the segments are written on the CT's voxels
    where Slicer shows them over it, in the series' coordinates: read back on the DICOM CT, they are the masks."""
    from lungai import mrml
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.io import copy_geometry

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    if segmentation_moved:
        _registration(mrml_scene, vol, seg)
    else:                   # the user's segment drawn on the moved CT: in world coordinates, no transform
        _registration(mrml_scene, vol)
        seg = None
        shown = mrml.image_from_volume_node(vol)            # the CT where Slicer shows it
        for name in ("GTV", "Lung_R"):
            seg, _ = mrml.mask_to_segment(mrml_scene, copy_geometry(array(study["masks"][name]), shown), name,
                                          seg_node=seg)
    seg_path, rt_path = export_segments_dicom_of(mrml_scene, vol, seg, tmp_path / "out", study)
    for back in (read_seg(seg_path, ct), read_rtstruct(rt_path, ct)):
        assert list(back) == ["GTV", "Lung_R"]
        for name, mask in back.items():
            assert np.array_equal(array(mask), array(study["masks"][name])), name


def export_segments_dicom_of(scene, vol, seg, out, study):
    from lungai.scene.dicom import export_segments_dicom

    return export_segments_dicom(scene, vol, seg, out, segments=["GTV", "Lung_R"], ct_source=study["ct"],
                                 name="result")


def test_export_of_a_ct_under_a_non_linear_transform_asks_to_harden(mrml_scene, study, tmp_path):
    from lungai.errors import InputError

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    grid = mrml_scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "warp")
    vol.SetAndObserveTransformNodeID(grid.GetID())
    with pytest.raises(InputError, match="harden the transform"):
        export_segments_dicom_of(mrml_scene, vol, seg, tmp_path / "out", study)


def test_export_file_names_of_a_dicom_loaded_ct_have_no_colon(mrml_scene, study, tmp_path):
    """QA defect (slicer56): Slicer names a volume loaded through its DICOM module "<series number>: <series
    description>" (SlicerRT an RTSTRUCT's segmentation "RTSTRUCT: ..."), so the panel's output segmentation was
    "2: CT Thorax tumour" and the export wrote "2: CT Thorax tumour.seg.dcm": on Windows a ':' in a file name is
    refused or names an NTFS alternate stream (a 0-byte file "2", no .dcm to be seen), and '<>"/\\|?*' are refused
    too.  The files are named by the segmentation's name as a file name (lungai.radiomics.manifest.safe_name, the
    cohort's rule for a case's folder); the segments inside keep their names."""
    from lungai.dicom.seg import read_seg
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    seg.SetName('2: CT Thorax <lung> "a|b"? tumour')
    paths = export_segments_dicom(mrml_scene, vol, seg, tmp_path, segments=["GTV", "Lung_R"], ct_source=study["ct"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in paths) and len(names) == 2
    assert not any(c in name for name in names for c in '<>:"/\\|?*'), names
    assert names == ["2__CT_Thorax__lung___a_b___tumour.rtstruct.dcm", "2__CT_Thorax__lung___a_b___tumour.seg.dcm"]
    assert list(read_seg(next(p for p in paths if p.name.endswith(".seg.dcm")), ct)) == ["GTV", "Lung_R"]


def test_a_flagged_tumour_says_why_in_the_exported_seg_and_rtstruct(mrml_scene, study, tmp_path):
    """The panel's "Export as DICOM SEG + RTSTRUCT" of a tumour Lung AI Segmentation flagged for review: the SEG
    segment and the RTSTRUCT ROI say "needs review: REASON" (before: nothing - the planning system showed a flagged
    automatic contour like any other); the user's GTV says nothing."""
    from lungai.scene import nodes
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    reasons = ["confidence below the review threshold", "several candidate regions (automatic mode)"]
    nodes.add_tumour_outputs(mrml_scene, vol, study["masks"]["GTV"], study["masks"]["GTV"],
                             {"confidence": 0.3, "needs_review": True, "review_reasons": reasons}, seg_node=seg)
    seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path, segments=["GTV", "Tumor"],
                                              ct_source=study["ct"])
    import pydicom

    described = {str(s.SegmentLabel): s.get("SegmentDescription") for s in pydicom.dcmread(seg_path).SegmentSequence}
    assert described["GTV"] is None and described["Tumor"].startswith("needs review: " + reasons[0]), described
    rt = pydicom.dcmread(rt_path)
    names = {int(r.ROINumber): str(r.ROIName) for r in rt.StructureSetROISequence}
    observed = {names[int(o.ReferencedROINumber)]: o.get("ROIObservationDescription")
                for o in rt.RTROIObservationsSequence}
    assert observed == {"GTV": None, "Tumor": "needs review: " + "; ".join(reasons)}


def edit_segment(scene, seg, ct, name, mask):
    """The user's edit in the Segment Editor: segment ``name`` of ``seg`` replaced in place by ``mask`` ([z, y, x] on
    ``ct``'s grid), its tags kept."""
    import SimpleITK as sitk
    import slicer

    from lungai import mrml

    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.CopyInformation(ct)
    label = mrml.volume_node_from_image(scene, image, "__edit", labelmap=True, display=False)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    logic.SetBinaryLabelmapToSegment(logic.CreateOrientedImageDataFromVolumeNode(label), seg,
                                     seg.GetSegmentation().GetSegmentIdBySegmentName(name), logic.MODE_REPLACE)
    scene.RemoveNode(label)


def test_an_edited_lungai_tumour_is_exported_semiautomatic(mrml_scene, study, tmp_path):
    """QA (slicerdcm58): a tumour Lung AI Segmentation made (flagged for review), then corrected by the expert in the
    Segment Editor (half of it erased), was exported AUTOMATIC / SlicerLungAI - a planning system showed the
    expert's contour as an untouched automatic one.  Now SEMIAUTOMATIC ("calculated segmentation with user
    assistance"), still naming SlicerLungAI (SEG algorithm identification, as DICOM requires), in the SEG and the
    RTSTRUCT; not flagged (the correction is the review); the untouched one stays AUTOMATIC, the user's GTV MANUAL."""
    import pydicom
    from dicom_helpers import provenance

    from lungai.dicom.seg import read_seg
    from lungai.scene import nodes
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    nodes.add_tumour_outputs(mrml_scene, vol, study["masks"]["GTV"], study["masks"]["GTV"],
                             {"confidence": 0.3, "needs_review": True, "review_reasons": ["low confidence"]},
                             seg_node=seg)
    untouched = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "a", segments=["GTV", "Tumor"],
                                      ct_source=study["ct"])
    assert provenance(*untouched) == ({"GTV": ("MANUAL", None), "Tumor": ("AUTOMATIC", "SlicerLungAI")},
                                      {"GTV": "MANUAL", "Tumor": "AUTOMATIC"})
    edited = array(study["masks"]["GTV"]).astype(bool)            # the expert erases the upper half (Segment Editor:
    slices = np.flatnonzero(edited.any(axis=(1, 2)))             # the labelmap replaced in place, its tags kept)
    edited[slices[len(slices) // 2:]] = False
    edit_segment(mrml_scene, seg, ct, "Tumor", edited)
    assert nodes.tumour_result(seg, "Tumor")["edited"] is True
    seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "b", segments=["GTV", "Tumor"],
                                              ct_source=study["ct"])
    assert provenance(seg_path, rt_path) == ({"GTV": ("MANUAL", None), "Tumor": ("SEMIAUTOMATIC", "SlicerLungAI")},
                                             {"GTV": "MANUAL", "Tumor": "SEMIAUTOMATIC"})
    tumour = next(s for s in pydicom.dcmread(seg_path).SegmentSequence if s.SegmentLabel == "Tumor")
    assert "SegmentDescription" not in tumour                     # no "needs review": the expert's correction
    assert np.array_equal(array(read_seg(seg_path, ct)["Tumor"]).astype(bool), edited)


def _with_lungai_lungs_and_tumour(scene, study):
    """(ct, volume node, segmentation node): the SlicerRT study's segmentation with lungai's lungs (its Lung_R /
    Lung_L) and tumour (its GTV, confidence 0.7) added to it, as the Lung AI Segmentation runs add them."""
    import SimpleITK as sitk

    from lungai.scene import nodes

    ct, vol, seg = slicerrt_segmentation(scene, study)
    right, left = (array(study["masks"][n]) > 0 for n in ("Lung_R", "Lung_L"))
    for name in ("Lung_R", "Lung_L"):   # replaced by lungai's: Segment lungs refuses a second right / left lung
        seg.GetSegmentation().RemoveSegment(seg.GetSegmentation().GetSegmentIdBySegmentName(name))
    labels = sitk.GetImageFromArray((right * 1 + (left & ~right) * 2).astype(np.uint8))
    labels.CopyInformation(ct)
    nodes.add_lung_outputs(scene, vol, labels, seg_node=seg)
    nodes.add_tumour_outputs(scene, vol, study["masks"]["GTV"], study["masks"]["GTV"], {"confidence": 0.7},
                             seg_node=seg)
    return ct, vol, seg


def test_an_edited_lungai_lung_is_exported_semiautomatic(mrml_scene, study, tmp_path):
    """QA (lungedit58): lungs Lung AI Segmentation made ("Segment lungs"), then corrected in the Segment Editor (part
    of the left lung erased), were exported AUTOMATIC / SlicerLungAI: only a tumour recorded the outline it was made
    with.  Every segment lungai makes now does (nodes.mark_made_by): the edited lung is SEMIAUTOMATIC, the untouched
    one AUTOMATIC - also after a tumour run added its segment to the same node."""
    from dicom_helpers import provenance

    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = _with_lungai_lungs_and_tumour(mrml_scene, study)
    right, left = (array(study["masks"][n]) > 0 for n in ("Lung_R", "Lung_L"))
    lungs = ["Right lung", "Left lung"]
    untouched = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "a", segments=["GTV", *lungs],
                                      ct_source=study["ct"])
    assert provenance(*untouched) == ({"GTV": ("MANUAL", None), "Right lung": ("AUTOMATIC", "SlicerLungAI"),
                                       "Left lung": ("AUTOMATIC", "SlicerLungAI")},
                                      {"GTV": "MANUAL", "Right lung": "AUTOMATIC", "Left lung": "AUTOMATIC"})
    edited = left & ~right                                        # the user erases the left lung's lower half
    slices = np.flatnonzero(edited.any(axis=(1, 2)))
    edited[slices[:len(slices) // 2]] = False
    edit_segment(mrml_scene, seg, ct, "Left lung", edited)
    seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "b", segments=["GTV", *lungs, "Tumor"],
                                              ct_source=study["ct"])
    assert provenance(seg_path, rt_path) == (
        {"GTV": ("MANUAL", None), "Right lung": ("AUTOMATIC", "SlicerLungAI"),
         "Left lung": ("SEMIAUTOMATIC", "SlicerLungAI"), "Tumor": ("AUTOMATIC", "SlicerLungAI")},
        {"GTV": "MANUAL", "Right lung": "AUTOMATIC", "Left lung": "SEMIAUTOMATIC", "Tumor": "AUTOMATIC"})


def _as_an_older_version_saved_it(seg, name, **attributes):
    """Segment ``name`` of ``seg`` as a scene of an older SlicerLungAI holds it: its LungAI.madeBy tag, but neither
    the outline it was made with (lungs before 6be80cf, a tumour before c6fde56) nor a tumour's result tags; the
    node attributes ``attributes`` (LungAI.<key>: the tumour's result, before the tags)."""
    from lungai.scene import nodes

    segment = seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName(name))
    for tag in (nodes.OUTLINE_TAG, *nodes.RESULT_TAGS.values()):
        segment.RemoveTag(tag)
    for key, value in attributes.items():
        seg.SetAttribute(f"LungAI.{key}", value)


def test_lungai_segments_of_an_older_scene_are_not_exported_as_untouched(mrml_scene, study, tmp_path):
    """QA (slicerdose59): a scene saved by an older version holds lungai's "Right lung" / "Left lung" (and tumour)
    tagged LungAI.madeBy but without the outline they were made with, so an edit in the Segment Editor could not be
    told (nodes.segment_edited: False) and the expert-corrected left lung was exported AUTOMATIC / SlicerLungAI, as
    if untouched.  A segment lungai made whose outline is not recorded (nodes.outline_unknown) is now exported
    SEMIAUTOMATIC (SlicerLungAI's, edits not told apart), said in an InputNote naming it - unless the older scene's
    node attributes still vouch for it (the tumour's volume is still their tumor_volume_ml): AUTOMATIC as before."""
    from dicom_helpers import provenance

    from lungai.errors import InputNote
    from lungai.scene import nodes
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = _with_lungai_lungs_and_tumour(mrml_scene, study)
    right, left = (array(study["masks"][n]) > 0 for n in ("Lung_R", "Lung_L"))
    tumour_ml = nodes._segment_outline(seg, seg.GetSegmentation().GetSegmentIdBySegmentName("Tumor"))[1]
    for name in ("Right lung", "Left lung"):
        _as_an_older_version_saved_it(seg, name)
    _as_an_older_version_saved_it(seg, "Tumor", confidence="0.7", tumor_volume_ml=f"{tumour_ml:.6g}")
    edited = left & ~right                                        # the user erased the left lung's lower half
    slices = np.flatnonzero(edited.any(axis=(1, 2)))
    edited[slices[:len(slices) // 2]] = False
    edit_segment(mrml_scene, seg, ct, "Left lung", edited)
    assert not nodes.segment_edited(seg, seg.GetSegmentation().GetSegmentIdBySegmentName("Left lung"))  # not told
    segments = ["GTV", "Right lung", "Left lung", "Tumor"]
    with pytest.warns(InputNote) as caught:
        written = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "a", segments=segments, ct_source=study["ct"])
    assert provenance(*written) == (
        {"GTV": ("MANUAL", None), "Right lung": ("SEMIAUTOMATIC", "SlicerLungAI"),
         "Left lung": ("SEMIAUTOMATIC", "SlicerLungAI"), "Tumor": ("AUTOMATIC", "SlicerLungAI")},
        {"GTV": "MANUAL", "Right lung": "SEMIAUTOMATIC", "Left lung": "SEMIAUTOMATIC", "Tumor": "AUTOMATIC"})
    said = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
    assert said == [nodes.outline_unknown_note(["Right lung", "Left lung"])], said
    assert said[0].startswith("segments 'Right lung', 'Left lung' made by SlicerLungAI") and "make them again" in said[0]
    one = nodes.outline_unknown_note(["Tumour"])
    assert one.startswith("segment 'Tumour' made by") and "so it is written SEMIAUTOMATIC" in one and "make it again" in one
    assert "older version" in said[0] and "SEMIAUTOMATIC" in said[0]
    # the old tumour edited too: its node attributes no longer describe it - SEMIAUTOMATIC, named with the lungs
    gtv = array(study["masks"]["GTV"]).astype(bool)
    gtv[np.flatnonzero(gtv.any(axis=(1, 2)))[0]] = False
    edit_segment(mrml_scene, seg, ct, "Tumor", gtv)
    with pytest.warns(InputNote, match="'Right lung', 'Left lung', 'Tumor'"):
        written = export_segments_dicom(mrml_scene, vol, seg, tmp_path / "b", segments=segments, ct_source=study["ct"])
    assert provenance(*written)[1]["Tumor"] == "SEMIAUTOMATIC"


def test_an_older_scene_tumour_with_result_tags_but_no_outline_is_not_reported_as_untouched(mrml_scene, study,
                                                                                          tmp_path):
    """QA (tumourflag59): a tumour of a scene saved between the result tags and the recorded outline (its
    LungAI.confidence / needsReview tags, no LungAI.outline) is exported SEMIAUTOMATIC (nodes.outline_unknown: an
    edit cannot be told), yet tumour_result / review_note still said "flagged for expert review (..., confidence
    0.30): check and correct it" and the SEG / RTSTRUCT "needs review: low confidence" as if the contour were the
    model's untouched output - after the expert had erased half of it.  Now tumour_result says ``outline_unknown``,
    the review note says the flag and confidence describe the outline Lung AI Segmentation made (edits not
    recorded), and so does the exported review text; a tumour of a current scene is unchanged."""
    import pydicom
    from dicom_helpers import provenance

    from lungai.scene import nodes
    from lungai.scene.dicom import export_segments_dicom

    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    nodes.add_tumour_outputs(mrml_scene, vol, study["masks"]["GTV"], study["masks"]["GTV"],
                             {"confidence": 0.3, "needs_review": True, "review_reasons": ["low confidence"]},
                             seg_node=seg)
    tumour_id = seg.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    current = nodes.review_note(seg, "Tumor")
    assert "outline_unknown" not in nodes.tumour_result(seg, "Tumor") and "check and correct it" in current
    seg.GetSegmentation().GetSegment(tumour_id).RemoveTag(nodes.OUTLINE_TAG)   # as the older version saved it
    edited = array(study["masks"]["GTV"]).astype(bool)                        # the expert erases half of it
    slices = np.flatnonzero(edited.any(axis=(1, 2)))
    edited[slices[len(slices) // 2:]] = False
    edit_segment(mrml_scene, seg, ct, "Tumor", edited)
    assert nodes.outline_unknown(seg, tumour_id)
    result = nodes.tumour_result(seg, "Tumor")
    assert result["outline_unknown"] is True and result["confidence"] == pytest.approx(0.3)
    note = nodes.review_note(seg, "Tumor")
    assert note != current and "outline Lung AI Segmentation made" in note and "older version" in note, note
    assert nodes.review_notes(seg, ["Tumor"]) == [note]           # the radiomics table / RP risk row repeat it
    with pytest.warns(Warning):
        seg_path, rt_path = export_segments_dicom(mrml_scene, vol, seg, tmp_path, segments=["GTV", "Tumor"],
                                                  ct_source=study["ct"])
    assert provenance(seg_path, rt_path)[1]["Tumor"] == "SEMIAUTOMATIC"
    rt = pydicom.dcmread(rt_path)
    names = {int(r.ROINumber): str(r.ROIName) for r in rt.StructureSetROISequence}
    observed = {names[int(o.ReferencedROINumber)]: o.get("ROIObservationDescription")
                for o in rt.RTROIObservationsSequence}
    assert observed["Tumor"] != "needs review: low confidence", observed
    assert "SlicerLungAI's outline" in observed["Tumor"] and "low confidence" in observed["Tumor"], observed
