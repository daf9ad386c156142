"""The real DICOM RT export (../shared/data/nsclc_whole_ct/dicom, LUNG1-003): RTSTRUCT read onto the CT grid
gives the same masks as the NIfTI label map made from the same contours; our writers round-trip on it."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.overlap import dice

pytestmark = pytest.mark.shared_data

STRUCTURES = ["GTV-1", "gtv-2", "gtv-3", "Lung-Right", "Lung-Left"]


@pytest.fixture
def tmp_path(patient_scratch):
    """Each test here writes the real patient's data (its CT as NRRD, SEGs, RTSTRUCTs, RTDOSEs of LUNG1-003): in a
    folder removed after the test (``patient_scratch``), not pytest's ``tmp_path`` kept for the last 3 runs."""
    return patient_scratch


@pytest.fixture(scope="module")
def real(shared_data):
    from lungai.dicom.discover import scan
    from lungai.io import read_ct

    root = shared_data / "nsclc_whole_ct"
    (study,) = scan(root / "dicom")
    ct = read_ct(study.ct.folder)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "nifti" / "LUNG1-003_labels.nii.gz")))
    return study, ct, labels


def test_real_ct_series_passes_the_slice_position_check(real):
    """The full real planning CT reads (the missing-slice / duplicate / irregular-step check does not
    fire on a real export's rounding)."""
    study, ct, _ = real
    assert ct.GetSize()[2] == len(study.ct.files) == 107 and not any("slice" in n for n in study.notes)


def test_real_ct_series_with_a_missing_slice_is_refused(real, patient_scratch):
    """The series without one slice: links to the 106 others, in a folder removed after the test (copies of them
    stayed in pytest's kept tmp_path)."""
    import pydicom

    from lungai.errors import InputError
    from lungai.io import read_ct
    from patient_scratch import link_files

    study, ct, _ = real
    files = sorted(study.ct.files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    folder = link_files(files[:50] + files[51:], patient_scratch / "CT")
    with pytest.raises(InputError, match="1 slice missing"):
        read_ct(folder)


def test_real_rtstruct_matches_the_nifti_labels(real):
    from lungai.dicom.roles import mask_for_role
    from lungai.dicom.rtstruct import read_rtstruct

    study, ct, labels = real
    assert study.patient_id == "LUNG1-003" and study.missing == ["RTDOSE"] and study.ct.n_slices == 107
    masks = read_rtstruct(study.rtstruct[0], ct, names=STRUCTURES)
    m = {k: sitk.GetArrayFromImage(v) > 0 for k, v in masks.items()}
    gtv = sitk.GetArrayFromImage(mask_for_role(masks, "gtv")) > 0
    # the label map: 1 = GTV-1, 2 = other GTVs, 3 / 4 = right / left lung minus the GTVs
    assert dice(m["GTV-1"], labels == 1) == 1.0
    assert dice(m["gtv-2"] | m["gtv-3"], labels == 2) == 1.0
    assert dice(m["Lung-Right"] & ~gtv, labels == 3) > 0.99999     # one voxel centre exactly on a contour edge
    assert dice(m["Lung-Left"] & ~gtv, labels == 4) == 1.0


def test_real_rtstruct_gap_in_a_structure_is_reported(real):
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.errors import InputError

    study, ct, _ = real
    with pytest.raises(InputError, match="'Heart' has no contour on 1 CT slice"):
        read_rtstruct(study.rtstruct[0], ct, names=["Heart"])
    assert sitk.GetArrayFromImage(read_rtstruct(study.rtstruct[0], ct, names=["Heart"],
                                                allow_gaps=True)["Heart"]).sum() > 0


def test_real_roles_and_writers_round_trip(real, tmp_path):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.roles import find_role
    from lungai.dicom.rtstruct import list_structures, read_rtstruct, write_rtstruct
    from lungai.dicom.seg import read_seg, write_seg

    study, ct, labels = real
    names = list_structures(study.rtstruct[0])
    assert find_role(names, "gtv_primary") == ["GTV-1"] and find_role(names, "gtv") == ["GTV-1", "gtv-3", "gtv-2"]
    assert find_role(names, "lung_right") == ["Lung-Right"] and find_role(names, "lung_left") == ["Lung-Left"]
    ref = ct_reference(study.ct.folder, image=ct)
    masks = {}
    for value, name in ((1, "GTVp"), (3, "Lung_R"), (4, "Lung_L")):
        img = sitk.GetImageFromArray((labels == value).astype(np.uint8))
        img.CopyInformation(ct)
        masks[name] = img
    back = read_rtstruct(write_rtstruct(masks, ref, tmp_path / "rt.dcm"), ct)
    seg = read_seg(write_seg(masks, ref, tmp_path / "x.seg.dcm"), ct)
    for name, img in masks.items():
        truth = sitk.GetArrayFromImage(img)
        assert np.array_equal(sitk.GetArrayFromImage(back[name]), truth), name
        assert np.array_equal(sitk.GetArrayFromImage(seg[name]), truth), name


def test_real_seg_segments_are_read_without_a_second_threshold(real, tmp_path, monkeypatch):
    """QA dicom72: ``read_seg`` of LUNG1-003's tumour and lungs as one 3-segment SEG (107 frames a segment) took
    3.2-3.7 s on a shared machine; its profile: 0.4-0.8 s thresholding each segment again as a SimpleITK image
    (``img > 0``, then a cast) after its voxels were already made 0 / 1 in uint8.  They are taken as they are: no
    SimpleITK threshold, the same uint8 0 / 1 masks on the CT's grid."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import read_seg, write_seg

    study, ct, labels = real
    ref = ct_reference(study.ct.folder, image=ct)
    masks = {}
    for value, name in ((1, "Tumour"), (3, "Right lung"), (4, "Left lung")):
        img = sitk.GetImageFromArray((labels == value).astype(np.uint8))
        img.CopyInformation(ct)
        masks[name] = img
    path = write_seg(masks, ref, tmp_path / "results.seg.dcm")
    thresholds = []
    greater = sitk.Image.__gt__

    def counted(self, other):
        thresholds.append(other)
        return greater(self, other)

    monkeypatch.setattr(sitk.Image, "__gt__", counted)
    try:
        seg = read_seg(path, ct)
    finally:
        path.unlink()       # a copy of the patient's data: not left in pytest's kept temporary folders
    assert thresholds == [], thresholds
    assert list(seg) == list(masks)
    for name, img in masks.items():
        assert seg[name].GetPixelID() == sitk.sitkUInt8, name
        assert seg[name].GetOrigin() == ct.GetOrigin() and seg[name].GetDirection() == ct.GetDirection(), name
        assert np.array_equal(sitk.GetArrayFromImage(seg[name]), sitk.GetArrayFromImage(img)), name


def test_real_ct_refuses_an_rtdose_of_another_patient(shared_data, tmp_path, capsys):
    """An RTDOSE that covers LUNG1-003's CT but is another patient's (PatientID SYNTH, its own frame of reference)
    stops dose-features; the case id of the DICOM CT is its PatientID, not the folder name "CT"."""
    from lungai.cli import main
    from lungai.dicom.synthetic import dose_grid, write_rtdose
    from lungai.io import read_ct

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    ct = read_ct(patient / "CT")
    dose = write_rtdose(dose_grid(ct, factor=(4, 4, 2)) + 20.0, tmp_path / "rtdose.dcm")   # 20 Gy everywhere
    (rtstruct,) = sorted((patient / "RTSTRUCT").glob("*.dcm"))
    out = tmp_path / "out" / "d.csv"      # not beside the RTDOSE: a folder of DICOM files only is an input folder
    assert main(["dose-features", "--dose", str(dose), "--ct", str(patient / "CT"), "--rtstruct", str(rtstruct),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "PatientID SYNTH (RTDOSE) is not the CT's LUNG1-003" in err and "FrameOfReferenceUID" in err
    assert not out.exists()
    from lungai.io import input_case_id

    assert input_case_id(patient / "CT") == "LUNG1-003"


def _other_patients_rtstruct(rtstruct, path):
    """A copy of ``rtstruct`` as another patient's: PatientID edited, new study and frame-of-reference UIDs."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(rtstruct)
    frame, study = generate_uid(), generate_uid()
    ds.PatientID, ds.StudyInstanceUID = "OTHER-7", study
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = frame
    for ref in ds.ReferencedFrameOfReferenceSequence:
        ref.FrameOfReferenceUID = frame
        for st in getattr(ref, "RTReferencedStudySequence", []):
            st.ReferencedSOPInstanceUID = study
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = frame
    ds.save_as(path)
    return path


def test_real_ct_refuses_an_rtstruct_of_another_patient_naming_the_patient_ids(shared_data, tmp_path, capsys):
    """QA (LUNG1-003): an RTSTRUCT of another patient was refused naming only the two frame-of-reference UIDs; the
    message also says its PatientID is not the CT's (as the RTDOSE check words it)."""
    from lungai.cli import main

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    (rtstruct,) = sorted((patient / "RTSTRUCT").glob("*.dcm"))
    other = _other_patients_rtstruct(rtstruct, tmp_path / "RS_other.dcm")
    out = tmp_path / "out" / "f.csv"
    assert main(["radiomics", "--image", str(patient / "CT"), "--rtstruct", str(other), "--tumour", "GTV-1",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "PatientID OTHER-7 (RTSTRUCT) is not the CT's LUNG1-003" in err and "frame of reference" in err, err
    assert not out.exists()


def test_readme_says_what_the_rtstruct_masks_were_compared_with(real):
    """QA: README said the RTSTRUCT's masks equal the NIfTI label map "(Dice ... 1.0 for ... left lung)"; the whole
    Lung-Left against the NIfTI's left lung is 0.9963 (the NIfTI lungs exclude the GTVs) - bench_dicom.py compares
    "Lung-Left minus GTVs".  README names what was compared, with both figures."""
    from pathlib import Path

    from lungai.dicom.rtstruct import read_rtstruct

    study, ct, labels = real
    m = {k: sitk.GetArrayFromImage(v) > 0 for k, v in read_rtstruct(study.rtstruct[0], ct, names=STRUCTURES).items()}
    whole_left = dice(m["Lung-Left"], labels == 4)
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert "Lung-Left minus the GTVs" in text and "Lung-Right minus the GTVs" in text
    assert f"{whole_left:.4f}" in text and "the NIfTI lungs exclude the GTVs" in text, whole_left


def test_real_radiomics_records_the_rtstruct_lungs_of_lungs_minus_a_seg_tumour(real, tmp_path):
    """QA (LUNG1-003): --tumour from a DICOM SEG file, the lungs from the RTSTRUCT: the _settings.csv column
    ``structures`` was blank for lungs_minus_tumour although its lungs are Lung-Right+Lung-Left of the RTSTRUCT."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    study, ct, labels = real
    tumour = sitk.GetImageFromArray((labels == 1).astype(np.uint8))
    tumour.CopyInformation(ct)
    seg = write_seg({"GTV-1": tumour}, ct_reference(study.ct.folder, image=ct), tmp_path / "seg" / "tumor.seg.dcm")
    out = tmp_path / "out" / "f.csv"
    assert main(["radiomics", "--image", str(study.ct.folder), "--rtstruct", str(study.rtstruct[0]), "--tumour",
                 str(seg), "--segments", "tumour", "lungs_minus_tumour", "--feature-classes", "firstorder",
                 "--image-types", "Original", "-o", str(out)]) == 0
    s = pd.read_csv(out.with_name("f_settings.csv"), keep_default_na=False).set_index("segment")["structures"]
    assert s["lungs_minus_tumour"] == "Lung-Right+Lung-Left minus tumor.seg.dcm", s.to_dict()
    assert s["tumour"] == ""                                           # from a file, not the RTSTRUCT


def test_real_seg_of_the_three_gtvs_is_exported_gtv_by_gtv(real, tmp_path, capsys):
    """QA on LUNG1-003: `dicom-export --tumour` of a SEG of GTV-1 (primary), gtv-2 and gtv-3 wrote one RTSTRUCT ROI
    "GTVp" of 82.4 ml (their union) without a word; each GTV is now its own ROI / segment under its name."""
    import pydicom

    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import read_sr

    study, ct, _ = real
    gtvs = read_rtstruct(study.rtstruct[0], ct, names=["GTV-1", "gtv-2", "gtv-3"])
    seg = write_seg(gtvs, ct_reference(study.ct.folder, image=ct), tmp_path / "g.seg.dcm")
    capsys.readouterr()
    assert main(["dicom-export", "--ct", str(study.ct.folder), "--tumour", str(seg), "-o", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    rt = pydicom.dcmread(tmp_path / "e" / "rtstruct.dcm")
    assert sorted(r.ROIName for r in rt.StructureSetROISequence) == ["GTV-1", "gtv-2", "gtv-3"]
    sr = read_sr(tmp_path / "e" / "measurements.sr.dcm")
    voxel_ml = np.prod(ct.GetSpacing()) / 1000.0
    for name, mask in gtvs.items():
        assert sr[name]["Volume"][0] == pytest.approx(sitk.GetArrayViewFromImage(mask).sum() * voxel_ml), name
    assert "the tumour is 3 GTVs" in out and "GTV-1 (34.8 ml, gtv_primary)" in out and "(82.4 ml)" in out, out


def _with_only_patient_id(image_path, patient_id, path):
    """The CT of ``image_path`` as an NRRD that carries only the DICOM PatientID key (no FrameOfReferenceUID)."""
    img = sitk.ReadImage(str(image_path))
    for key in img.GetMetaDataKeys():
        img.EraseMetaData(key)
    img.SetMetaData("0010|0020", patient_id)
    sitk.WriteImage(img, str(path))
    return path


def test_real_rtstruct_on_a_ct_carrying_only_another_patient_id_is_refused(shared_data, tmp_path, capsys):
    """QA (fornotes58): an NRRD CT that carries LUNG1-002's PatientID but no FrameOfReferenceUID, with LUNG1-003's
    RTSTRUCT, got the generic note saying the CT "carries no PatientID", and the other patient was never named: it is
    refused naming both PatientIDs, as with a DICOM CT.  LUNG1-003's own CT carrying its PatientID: a note that says
    what the CT carries (the same PatientID, no FrameOfReferenceUID)."""
    from lungai.cli import main
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.errors import InputNote
    from lungai.io import read_ct

    root = shared_data / "nsclc_whole_ct"
    (rtstruct,) = sorted((root / "dicom" / "LUNG1-003" / "RTSTRUCT").glob("*.dcm"))
    other = _with_only_patient_id(root / "nifti" / "LUNG1-002_ct.nii.gz", "LUNG1-002", tmp_path / "ct002.nrrd")
    out = tmp_path / "out" / "r.csv"
    assert main(["radiomics", "--image", str(other), "--rtstruct", str(rtstruct), "--structure", "GTV-1",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another patient's structure set: PatientID LUNG1-003 (RTSTRUCT) is not the CT's LUNG1-002" in err, err
    assert "carries no PatientID" not in err and not out.exists()
    own = _with_only_patient_id(root / "nifti" / "LUNG1-003_ct.nii.gz", "LUNG1-003", tmp_path / "ct003.nrrd")
    with pytest.warns(InputNote) as caught:
        masks = read_rtstruct(rtstruct, read_ct(own), names=["GTV-1"])
    said = [str(w.message) for w in caught if "could not be checked" in str(w.message)]
    assert len(said) == 1 and "the CT carries PatientID LUNG1-003 (the same) but no FrameOfReferenceUID" in said[0]
    assert "carries no PatientID" not in said[0] and sitk.GetArrayViewFromImage(masks["GTV-1"]).any()


def test_real_nifti_dose_with_the_dicom_ct_is_noted_unchecked(shared_data, tmp_path, capsys):
    """QA (fornotes58): a NIfTI dose with LUNG1-003's DICOM CT was used without a word (nothing to compare with the
    CT's PatientID / FrameOfReferenceUID); dose-features notes it, in the words of the reverse case (an RTDOSE with a
    NIfTI CT, lungai.dose.read.unchecked_dose_note)."""
    from lungai.cli import main
    from lungai.io import read_ct

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    (rtstruct,) = sorted((patient / "RTSTRUCT").glob("*.dcm"))
    dose = sitk.Cast(read_ct(patient / "CT") * 0, sitk.sitkFloat32) + 20.0          # 20 Gy everywhere
    for key in dose.GetMetaDataKeys():
        dose.EraseMetaData(key)
    sitk.WriteImage(dose, str(tmp_path / "dose.nii.gz"))
    out = tmp_path / "out" / "d.csv"
    assert main(["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(patient / "CT"),
                 "--rtstruct", str(rtstruct), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert ("note: the dose dose.nii.gz could not be checked against the CT " + str(patient / "CT")
            + ": the dose is not DICOM, so it carries no PatientID / FrameOfReferenceUID") in said, said
    assert out.exists()



def test_real_seg_of_another_patient_on_a_dicom_ct_names_the_patient_ids(real, tmp_path, capsys):
    """QA (fornotes2_58): another patient's DICOM SEG read with LUNG1-003's DICOM CT was refused naming only the two
    FrameOfReferenceUIDs, where another patient's RTSTRUCT on that CT also names both PatientIDs: one text for both
    (lungai.dicom.rtstruct.other_ct_error)."""
    import pydicom
    from pydicom.uid import generate_uid

    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    study, ct, labels = real
    tumour = sitk.GetImageFromArray((labels == 1).astype(np.uint8))
    tumour.CopyInformation(ct)
    seg = write_seg({"GTV-1": tumour}, ct_reference(study.ct.folder, image=ct), tmp_path / "seg" / "t.seg.dcm")
    ds = pydicom.dcmread(seg)                                   # the same SEG as another patient's
    ds.PatientID, ds.FrameOfReferenceUID = "OTHER-7", generate_uid()
    ds.save_as(seg)
    (tmp_path / "rs").mkdir()
    rtstruct = _other_patients_rtstruct(study.rtstruct[0], tmp_path / "rs" / "t.seg.dcm")
    said = []
    for option, path in (("--mask", seg), ("--rtstruct", rtstruct)):
        out = tmp_path / "out" / f"{option[2:]}.csv"
        assert main(["radiomics", "--image", str(study.ct.folder), option, str(path), "-o", str(out)]
                    + (["--tumour", "GTV-1"] if option == "--rtstruct" else [])) == 2
        said.append(capsys.readouterr().err)
        assert not out.exists()
    for err, kind in zip(said, ("SEG", "RTSTRUCT")):
        assert "t.seg.dcm is drawn in frame of reference " in err and ", the CT is in " in err, err
        assert f"PatientID OTHER-7 ({kind}) is not the CT's LUNG1-003" in err, err
    seg_err, rt_err = (e.split("error: ")[-1].split("\n")[0] for e in said)
    frame = str(ds.FrameOfReferenceUID)
    rt_frame = str(pydicom.dcmread(rtstruct).ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
    assert seg_err.replace(frame, "F").replace(str(seg), "P").replace("SEG", "X").replace(
        "segmentation", "set") == rt_err.replace(
        rt_frame, "F").replace(str(rtstruct), "P").replace("RTSTRUCT", "X").replace("structure set", "set"), said


def test_real_nrrd_dose_carrying_another_patient_id_is_refused(shared_data, tmp_path, capsys):
    """QA (fornotes2_58): an NRRD dose carrying the DICOM PatientID key (0010|0020, as SimpleITK writes a dose read
    from DICOM) of another patient was used with LUNG1-003's DICOM CT, noted only as "carries no PatientID": it is
    refused as an RTDOSE of another patient is; the dose carrying LUNG1-003's PatientID is noted as compared by
    PatientID, its frame of reference unchecked."""
    from lungai.cli import main
    from lungai.io import read_ct

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    (rtstruct,) = sorted((patient / "RTSTRUCT").glob("*.dcm"))
    dose = sitk.Cast(read_ct(patient / "CT") * 0, sitk.sitkFloat32) + 20.0          # 20 Gy everywhere
    for key in dose.GetMetaDataKeys():
        dose.EraseMetaData(key)
    for who in ("OTHER-7", "LUNG1-003"):
        dose.SetMetaData("0010|0020", who)
        sitk.WriteImage(dose, str(tmp_path / f"{who}.nrrd"))
    out = tmp_path / "out" / "d.csv"
    args = ["--ct", str(patient / "CT"), "--rtstruct", str(rtstruct), "-o", str(out)]
    assert main(["dose-features", "--dose", str(tmp_path / "OTHER-7.nrrd")] + args) == 2
    err = capsys.readouterr().err
    assert ("the dose OTHER-7.nrrd does not belong to the CT " + str(patient / "CT")
            + ": PatientID OTHER-7 (dose) is not the CT's LUNG1-003") in err, err
    assert not out.exists()
    assert main(["dose-features", "--dose", str(tmp_path / "LUNG1-003.nrrd")] + args) == 0
    said = capsys.readouterr().out
    assert ("the dose LUNG1-003.nrrd could not be checked against the CT " + str(patient / "CT") + ": the dose is "
            "not DICOM: its PatientID is LUNG1-003 (the CT's) but it carries no FrameOfReferenceUID") in said, said
    assert "carries no PatientID" not in said and out.exists()


def test_real_dose_of_another_patient_beside_an_nrrd_ct_carrying_its_patient_is_refused(real, shared_data, tmp_path,
                                                                                         capsys):
    """QA (ids59): LUNG1-003's CT saved as NRRD (read_ct keeps its PatientID and FrameOfReferenceUID, which SimpleITK
    writes into the NRRD) with an NRRD dose carrying LUNG1-002's PatientID was used without a word by dose-features
    and demo (only a DICOM CT was compared with the dose), and an RTDOSE of LUNG1-002 was only noted "the CT is not
    DICOM, so it carries no PatientID / FrameOfReferenceUID".  Now what the CT image carries is compared: another
    patient's dose is refused naming both PatientIDs; this patient's is used (no note when both frames matched)."""
    import pydicom

    from lungai.cli import main
    from lungai.dicom.synthetic import write_rtdose

    study, ct, _ = real
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    frame = ct.GetMetaData("0020|0052")
    assert ct.GetMetaData("0010|0020") == "LUNG1-003" and frame
    dose = sitk.Cast(ct * 0, sitk.sitkFloat32) + 20.0          # 20 Gy everywhere
    for key in dose.GetMetaDataKeys():
        dose.EraseMetaData(key)
    for who in ("LUNG1-002", "LUNG1-003"):
        dose.SetMetaData("0010|0020", who)
        sitk.WriteImage(dose, str(tmp_path / f"{who}.nrrd"))
    coarse = sitk.Resample(dose, [128, 128, 54], sitk.Transform(), sitk.sitkLinear, dose.GetOrigin(),
                           [dose.GetSpacing()[0] * 4, dose.GetSpacing()[1] * 4, dose.GetSpacing()[2] * 2],
                           dose.GetDirection())
    write_rtdose(coarse, tmp_path / "rd.dcm")
    for who, uid in (("LUNG1-002", None), ("LUNG1-003", frame)):
        ds = pydicom.dcmread(tmp_path / "rd.dcm")
        ds.PatientID = who
        if uid:
            ds.FrameOfReferenceUID = uid
        ds.save_as(tmp_path / f"rd_{who}.dcm")
    labels = shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-003_labels.nii.gz"
    out = tmp_path / "out" / "d.csv"
    args = ["--ct", str(tmp_path / "ct.nrrd"), "--lungs", f"{labels}#3,4", "--gtv", f"{labels}#1", "-o", str(out)]

    assert main(["dose-features", "--dose", str(tmp_path / "LUNG1-002.nrrd")] + args) == 2
    err = capsys.readouterr().err
    assert ("the dose LUNG1-002.nrrd does not belong to the CT " + str(tmp_path / "ct.nrrd")
            + ": PatientID LUNG1-002 (dose) is not the CT's LUNG1-003") in err, err
    assert main(["dose-features", "--dose", str(tmp_path / "rd_LUNG1-002.dcm")] + args) == 2
    err = capsys.readouterr().err
    assert "the RTDOSE rd_LUNG1-002.dcm does not belong to the CT" in err, err
    assert "PatientID LUNG1-002 (RTDOSE) is not the CT's LUNG1-003; FrameOfReferenceUID " in err, err
    assert not out.exists()
    demo = tmp_path / "demo"
    assert main(["demo", "--ct", str(tmp_path / "ct.nrrd"), "--dose", str(tmp_path / "LUNG1-002.nrrd"),
                 "-o", str(demo)]) == 2
    assert "PatientID LUNG1-002 (dose) is not the CT's LUNG1-003" in capsys.readouterr().err
    assert not demo.exists()

    for given in ("LUNG1-003.nrrd", "rd_LUNG1-003.dcm"):       # this patient's: used, nothing left unchecked
        assert main(["dose-features", "--dose", str(tmp_path / given)] + args) == 0
        said = capsys.readouterr().out
        assert "could not be checked" not in said and out.exists(), said
        out.unlink()
    # a --dose folder holding both patients' RTDOSEs: the CT's keys choose (before: refused, "the CT is not DICOM")
    import shutil

    for who in ("LUNG1-002", "LUNG1-003"):
        (tmp_path / "doses" / who).mkdir(parents=True)
        shutil.copy(tmp_path / f"rd_{who}.dcm", tmp_path / "doses" / who / "RD.dcm")
        ds = pydicom.dcmread(tmp_path / "doses" / who / "RD.dcm")
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(tmp_path / "doses" / who / "RD.dcm")
    assert main(["dose-features", "--dose", str(tmp_path / "doses")] + args) == 0
    said = capsys.readouterr().out
    assert "LUNG1-002/RD.dcm left out: PatientID LUNG1-002 is not the CT's LUNG1-003" in said, said
    assert "could not be checked" not in said and out.exists(), said
    out.unlink()
    # a CT image carrying the PatientID only: compared, the note says the frame of reference was not
    bare = sitk.ReadImage(str(tmp_path / "ct.nrrd"))            # the module's CT left as it is
    for key in bare.GetMetaDataKeys():
        if key != "0010|0020":
            bare.EraseMetaData(key)
    sitk.WriteImage(bare, str(tmp_path / "ct.nrrd"))
    assert main(["dose-features", "--dose", str(tmp_path / "rd_LUNG1-003.dcm")] + args) == 0
    said = capsys.readouterr().out
    assert ("the RTDOSE rd_LUNG1-003.dcm could not be checked against the CT " + str(tmp_path / "ct.nrrd") + ": the "
            "CT is not DICOM: its PatientID is LUNG1-003 (the RTDOSE's) but it carries no FrameOfReferenceUID") \
        in said, said


def test_real_mask_of_another_patient_on_an_nrrd_ct_carrying_its_patient_is_refused(real, shared_data, tmp_path,
                                                                                     capsys):
    """QA (maskpid59): LUNG1-003's CT saved as NRRD (carrying its PatientID / FrameOfReferenceUID, as the dose check
    of ids59 uses them) with an NRRD mask of its GTV carrying LUNG1-002's PatientID: ``lungai radiomics --mask`` /
    ``--tumour``, ``dose-features --gtv`` / ``--lungs``, a radiomics-batch manifest row and ``dicom-export --tumour``
    (the DICOM CT: another patient's tumour written as LUNG1-003's SEG / RTSTRUCT) all used it without a word.  Now
    the mask's keys are compared with the CT's: refused naming both PatientIDs; this patient's mask, and one carrying
    no key, are used."""
    from lungai.cli import main

    _, ct, _ = real
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    labels = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-003_labels.nii.gz"))
    from lungai.io.geometry import on_grid

    labels = on_grid(ct, sitk.Cast(labels, sitk.sitkUInt8))
    for key in labels.GetMetaDataKeys():
        labels.EraseMetaData(key)
    gtv = sitk.Cast(labels == 1, sitk.sitkUInt8)
    lungs = sitk.Cast(labels == 3, sitk.sitkUInt8) + sitk.Cast(labels == 4, sitk.sitkUInt8) * 2
    for name, img in (("gtv", gtv), ("lungs", lungs)):
        sitk.WriteImage(img, str(tmp_path / f"{name}_plain.nrrd"))
        for who in ("LUNG1-002", "LUNG1-003"):
            img.SetMetaData("0010|0020", who)
            sitk.WriteImage(img, str(tmp_path / f"{name}_{who}.nrrd"))
    dose = sitk.Cast(ct * 0, sitk.sitkFloat32) + 20.0
    for key in dose.GetMetaDataKeys():
        dose.EraseMetaData(key)
    sitk.WriteImage(dose, str(tmp_path / "dose.nrrd"))
    other = "is another patient's: PatientID LUNG1-002 (mask) is not the CT's LUNG1-003"
    ct_nrrd, out = str(tmp_path / "ct.nrrd"), tmp_path / "out" / "r.csv"
    for args in (["radiomics", "--image", ct_nrrd, "--mask", str(tmp_path / "gtv_LUNG1-002.nrrd")],
                 ["radiomics", "--image", ct_nrrd, "--tumour", str(tmp_path / "gtv_LUNG1-002.nrrd"),
                  "--lungs", str(tmp_path / "lungs_plain.nrrd")],
                 ["dose-features", "--dose", str(tmp_path / "dose.nrrd"), "--ct", ct_nrrd,
                  "--lungs", str(tmp_path / "lungs_plain.nrrd"), "--gtv", str(tmp_path / "gtv_LUNG1-002.nrrd")],
                 ["dose-features", "--dose", str(tmp_path / "dose.nrrd"), "--ct", ct_nrrd,
                  "--lungs", str(tmp_path / "lungs_LUNG1-002.nrrd"), "--gtv", str(tmp_path / "gtv_plain.nrrd")]):
        assert main(args + ["-o", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert other in err and "this patient's mask" in err, err
        assert not out.exists()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"case,image,mask\nc1,{ct_nrrd},{tmp_path / 'gtv_LUNG1-002.nrrd'}\n")
    assert main(["radiomics-batch", str(manifest), "--workers", "0", "--feature-classes", "shape",
                 "-o", str(tmp_path / "batch.csv")]) == 1
    said = capsys.readouterr()
    assert f"the mask {tmp_path / 'gtv_LUNG1-002.nrrd'} " + other in said.out + said.err, said
    assert other in (tmp_path / "batch_errors.csv").read_text()
    study_ct = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    assert main(["dicom-export", "--ct", str(study_ct), "--tumour", str(tmp_path / "gtv_LUNG1-002.nrrd"),
                 "-o", str(tmp_path / "export")]) == 2
    assert other in capsys.readouterr().err
    assert not list((tmp_path / "export").glob("*.dcm"))
    for mask in ("gtv_LUNG1-003.nrrd", "gtv_plain.nrrd"):          # this patient's, or carrying no PatientID: used
        assert main(["radiomics", "--image", ct_nrrd, "--mask", str(tmp_path / mask), "--feature-classes", "shape",
                     "-o", str(out)]) == 0
        said = capsys.readouterr()
        assert "another patient" not in said.err + said.out and out.exists(), said
        out.unlink()


def _lung1_003_rtstruct_without_frame_of_reference(shared_data, tmp_path):
    """LUNG1-003 under ``tmp_path``: its CT (a link) and its RTSTRUCT written again with no frame of reference
    (neither the structure set's nor its ROIs'), as RS.dcm beside the CT folder; that file."""
    import pydicom

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    (tmp_path / "LUNG1-003").mkdir()
    (tmp_path / "LUNG1-003" / "CT").symlink_to(patient / "CT", target_is_directory=True)
    [original] = list((patient / "RTSTRUCT").glob("*.dcm"))
    ds = pydicom.dcmread(original)
    del ds.ReferencedFrameOfReferenceSequence
    for roi in ds.StructureSetROISequence:
        del roi.ReferencedFrameOfReferenceUID
    rs = tmp_path / "LUNG1-003" / "RS.dcm"
    ds.save_as(rs)
    return rs


def test_real_rtstruct_without_frame_of_reference_is_matched_to_its_ct(shared_data, tmp_path):
    """QA dicomframe61: LUNG1-003's RTSTRUCT exported without ReferencedFrameOfReferenceSequence (and ROI frames),
    beside its CT, was a CT-less study "no CT series with this frame of reference (none in the file) was found -
    export that CT series" (lungai cohort: "lies in another frame of reference", automatic lungs and tumour).  It is
    matched to the CT by the slices its contours reference, and read onto it with a note."""
    import warnings

    from lungai.dicom.discover import scan
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.errors import InputCheckNote
    from lungai.io import read_ct

    rs = _lung1_003_rtstruct_without_frame_of_reference(shared_data, tmp_path)
    (study,) = scan(tmp_path)
    assert study.ct.n_slices == 107 and study.rtstruct == [rs] and study.rtstruct_direct == [rs]
    assert any(n.startswith("RTSTRUCT LUNG1-003/RS.dcm carries no FrameOfReferenceUID (nor a reference to this CT "
                            "series): matched to it by the CT slices its contours reference") for n in study.notes)
    ct = read_ct(study.ct.folder)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        gtv = read_rtstruct(rs, ct, names=["GTV-1"])["GTV-1"]
    assert sitk.GetArrayViewFromImage(gtv).sum() > 0
    # its contours reference this CT's slices: nothing left unchecked (QA dicomnote61: it was said unchecked)
    assert not [w for w in said if issubclass(w.category, InputCheckNote)], [str(w.message) for w in said]


def test_real_rtstruct_without_frame_of_reference_is_read_once(shared_data, tmp_path, monkeypatch):
    """QA cohortfollow66: LUNG1-003's RTSTRUCT without frame of reference, in a read_once block (lungai cohort's
    patient, its planning): the scan read the whole file once (kept) and again for the CT slices its contours
    reference (lungai.dicom.discover.contour_images), and read_rtstruct's check of those slices read it once more -
    4 reads of a 1.5 MB structure set, 2 of them parsing every contour again.  contour_images takes the whole read
    the block keeps and is kept itself: its header and its whole file read once each, the same match."""
    import warnings

    from test_dose_read_once import _reads

    from lungai.dicom.discover import scan
    from lungai.dicom.once import read_once
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.io import read_ct

    rs = _lung1_003_rtstruct_without_frame_of_reference(shared_data, tmp_path)
    found = {}

    def run():
        with read_once():
            (found["study"],) = scan(tmp_path)
            ct = read_ct(found["study"].ct.folder)
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                found["gtv"] = read_rtstruct(rs, ct, names=["GTV-1"])["GTV-1"]

    reads = _reads(monkeypatch, run)
    assert any(n.startswith("RTSTRUCT LUNG1-003/RS.dcm carries no FrameOfReferenceUID (nor a reference to this CT "
                            "series): matched to it by the CT slices its contours reference (107 of this series' "
                            "slices)") for n in found["study"].notes), found["study"].notes
    assert sitk.GetArrayFromImage(found["gtv"]).sum() > 0
    assert reads["RS.dcm"] <= 2, dict(reads)


def test_real_structure_radiomics_go_into_the_exported_tumours_sr_group(shared_data, tmp_path, capsys):
    """QA on LUNG1-003: `lungai radiomics --rtstruct RTSTRUCT --structure GTV-1` exported with `dicom-export --tumour
    labels.nii.gz#1` (the same GTV-1) put the features into an SR group "GTV-1" of their own, linked to no SEG
    segment, and the Tumour group held the volume alone.  They now go into the Tumour group, which references the
    SEG's segment (and shares its TrackingUID); gtv-2, another region, keeps its own group with a note."""
    import highdicom as hd

    from lungai.cli import main

    data = shared_data / "nsclc_whole_ct"
    patient = data / "dicom" / "LUNG1-003"
    labels = data / "nifti" / "LUNG1-003_labels.nii.gz"
    assert main(["radiomics", "--image", str(patient / "CT"), "--rtstruct", str(patient / "RTSTRUCT"),
                 "--structure", "GTV-1", "--structure", "gtv-2", "--image-types", "Original", "--feature-classes",
                 "shape", "-o", str(tmp_path / "f.csv")]) == 0
    capsys.readouterr()
    assert main(["dicom-export", "--ct", str(patient / "CT"), "--tumour", f"{labels}#1", "--radiomics",
                 str(tmp_path / "f.csv"), "-o", str(tmp_path / "dicom")]) == 0
    out = capsys.readouterr().out
    sr = hd.sr.srread(str(tmp_path / "dicom" / "measurements.sr.dcm"))
    seg = hd.seg.segread(str(tmp_path / "dicom" / "results.seg.dcm"))
    (tumour,) = sr.content.get_volumetric_roi_measurement_groups()
    assert tumour.tracking_identifier == "Tumour"
    assert tumour.referenced_segment.referenced_segment_numbers == [1]
    assert tumour.tracking_uid == seg.SegmentSequence[0].TrackingUID
    names = [m.name.meaning for m in tumour.get_measurements()]
    assert "Volume" in names and len(names) == 15, names          # volume_ml + GTV-1's 14 shape features
    assert [g.tracking_identifier for g in sr.content.get_image_measurement_groups()] == ["gtv-2"]
    assert "the radiomics table's GTV-1 (VoxelVolume 34.8 ml) is the exported Tumour (34.8 ml)" in out, out
    # and the SR says it too, in the Tumour group's Comment (QA cohortprov62: the console only)
    comments = [str(i.TextValue) for i in tumour[0].ContentSequence if i.ValueType == "TEXT"
                and i.ConceptNameCodeSequence[0].CodeValue == "121106"]
    assert len(comments) == 1 and "the radiomics table's segment GTV-1, taken as the exported Tumour" in comments[0]
    assert "the radiomics table's gtv-2 is not the exported Tumour (its VoxelVolume 38.8 ml" in out, out
