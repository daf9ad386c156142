"""Reading a DICOM CT series whose slice headers cannot make one volume (QA on LUNG1-003 variants): a slice without
ImagePositionPatient, none at all, no PixelSpacing, an odd image size, a tilted slice; an Enhanced (multi-frame) CT
alone in a folder; several CT series of one study told apart; a series spread over two folders in a cohort; an
RTSTRUCT drawn on another series of the CT's frame of reference.  All on small synthetic series (pydicom)."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from lungai.dicom.discover import scan
from lungai.errors import InputError
from lungai.io import read_ct

SHAPE = (6, 16, 16)          # slices, rows, columns
SPACING = (0.8, 0.8, 3.0)    # x, y, z in mm


def _ct_image() -> sitk.Image:
    arr = np.full(SHAPE, -1000, np.int16)
    arr[:, 4:12, 4:12] = 40
    arr[:, 6:10, 2:6] = -850
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin((-6.0, -6.0, -100.0))
    return img


def _series(folder, patient_id="RC1", **kw):
    from lungai.dicom.synthetic import write_ct_series

    ref = write_ct_series(_ct_image(), folder, patient_id=patient_id, **kw)
    return ref, sorted(folder.iterdir())


def _edit(path, fn):
    ds = pydicom.dcmread(path)
    fn(ds)
    ds.save_as(path)


def test_the_synthetic_series_reads(tmp_path):
    _series(tmp_path / "CT")
    ct = read_ct(tmp_path / "CT")
    assert ct.GetSize() == (16, 16, 6) and ct.GetSpacing()[2] == pytest.approx(3.0)


def test_a_slice_without_position_is_refused_by_read_and_scan(tmp_path):
    """It was sorted last (the slices after it shifted) without a word; dicom-scan noted nothing."""
    _, files = _series(tmp_path / "P" / "CT")
    _edit(files[2], lambda ds: delattr(ds, "ImagePositionPatient"))
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "P" / "CT")
    assert "ImagePositionPatient" in exc.value.problem and files[2].name in exc.value.problem
    assert "1 of its 6 slices" in exc.value.problem
    (study,) = scan(tmp_path / "P")
    assert any("ImagePositionPatient" in n and files[2].name in n for n in study.notes)


def test_a_series_without_any_position_is_refused(tmp_path):
    """Its slice spacing was taken as 1 mm (3 mm true) and its origin as 0: volumes off by 3x."""
    _, files = _series(tmp_path / "CT")
    for f in files:
        _edit(f, lambda ds: delattr(ds, "ImagePositionPatient"))
    with pytest.raises(InputError, match="slice spacing and the position of the CT are unknown"):
        read_ct(tmp_path / "CT")


def test_a_series_without_pixel_spacing_is_refused(tmp_path):
    """An ImagerPixelSpacing only was read as 1 mm in-plane without a word."""
    _, files = _series(tmp_path / "CT")

    def imager(ds):
        ds.ImagerPixelSpacing = ds.PixelSpacing
        del ds.PixelSpacing

    for f in files:
        _edit(f, imager)
    with pytest.raises(InputError, match=r"PixelSpacing \(0028,0030\), mandatory for CT"):
        read_ct(tmp_path / "CT")


def test_a_slice_of_another_size_is_named(tmp_path):
    _, files = _series(tmp_path / "CT")

    def smaller(ds):
        ds.Rows, ds.Columns = 8, 8
        ds.PixelData = np.zeros((8, 8), np.int16).tobytes()

    _edit(files[3], smaller)
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "CT")
    assert f"slice {files[3].name} is 8 x 8 pixels (Rows x Columns), the others 16 x 16" in exc.value.problem


def test_a_tilted_slice_is_refused(tmp_path):
    """A slice 5 degrees off the others' orientation was read as axial without a word."""
    _, files = _series(tmp_path / "CT")
    a = np.deg2rad(5)
    _edit(files[4], lambda ds: setattr(ds, "ImageOrientationPatient",
                                       [1, 0, 0, 0, f"{np.cos(a):.6f}", f"{np.sin(a):.6f}"]))
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "CT")
    assert f"slice {files[4].name} has ImageOrientationPatient" in exc.value.problem


def test_an_enhanced_multiframe_ct_alone_in_a_folder_is_read(tmp_path):
    """It was refused as 'only 1 slice, not a CT volume'; given as the .dcm file it read."""
    hd = pytest.importorskip("highdicom")
    _, files = _series(tmp_path / "classic")
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(f) for f in files], series_instance_uid=hd.UID(), series_number=9,
        sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "MF").mkdir()
    enhanced.save_as(tmp_path / "MF" / "enhanced.dcm")
    by_file = read_ct(tmp_path / "MF" / "enhanced.dcm")
    by_folder = read_ct(tmp_path / "MF")
    assert by_folder.GetSize() == by_file.GetSize() == (16, 16, 6)
    assert by_folder.GetSpacing() == pytest.approx(by_file.GetSpacing())
    assert np.array_equal(sitk.GetArrayFromImage(by_folder), sitk.GetArrayFromImage(read_ct(tmp_path / "classic")))
    (study,) = scan(tmp_path / "MF")
    assert study.ct is not None and study.ct.n_slices == 6 and not study.notes


def test_dicom_scan_tells_the_ct_series_of_a_study_apart(tmp_path, capsys):
    """Two CT series of one study gave two identical lines (no UID for --series); a scout's note was repeated."""
    from lungai.cli import main
    from lungai.dicom.reference import derived_uid

    study = derived_uid("RC1", "study")
    for name, kernel in (("soft", "B31f"), ("lung", "B70f")):
        _, files = _series(tmp_path / "P" / name, study_uid=study)
        uid = derived_uid(study, name)
        for k, f in enumerate(files):
            def edit(ds, k=k):
                ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, derived_uid(uid, k)
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.SeriesDescription, ds.ConvolutionKernel = f"Thorax {name}", kernel
            _edit(f, edit)
    scout = pydicom.dcmread(files[0])
    scout.SeriesInstanceUID, scout.SOPInstanceUID = derived_uid(study, "scout"), derived_uid(study, "scout", 1)
    scout.file_meta.MediaStorageSOPInstanceUID = scout.SOPInstanceUID
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.save_as(tmp_path / "P" / "scout.dcm")
    assert main(["dicom-scan", str(tmp_path / "P")]) == 0
    out = capsys.readouterr().out
    for name, kernel in (("soft", "B31f"), ("lung", "B70f")):
        assert f"CT series {derived_uid(study, name)}: #1 'Thorax {name}', kernel {kernel}" in out
    assert out.count("skipped CT series") == 1
    for f in (tmp_path / "P" / "lung").iterdir():   # both series in one folder: read_ct lists them
        shutil.copy(f, tmp_path / "P" / "soft" / f"lung_{f.name}")
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "P" / "soft")
    assert "'Thorax lung', kernel B70f" in exc.value.problem and "'Thorax soft', kernel B31f" in exc.value.problem


def test_cohort_reads_a_ct_series_spread_over_two_folders(tmp_path):
    """Only the first folder was read: the patient failed ('structure lies partly off the CT')."""
    from lungai.dicom.cohort import plan_cohort, process_patient

    ref, files = _series(tmp_path / "P" / "CT1")
    (tmp_path / "P" / "CT2").mkdir()
    for f in files[3:]:
        shutil.move(f, tmp_path / "P" / "CT2" / f.name)
    jobs, _ = plan_cohort(tmp_path / "P")
    (job,) = jobs
    calls = []
    import lungai.dicom.cohort as cohort

    def lungs(job, ct, *a):     # the CT the patient's work is done on
        calls.append(ct.GetSize())
        raise InputError("stop here", "test")

    original, cohort._lungs = cohort._lungs, lungs
    try:
        result = process_patient(job, {}, str(tmp_path / "out"))
    finally:
        cohort._lungs = original
    assert calls == [(16, 16, 6)], result


def test_an_rtstruct_drawn_on_another_series_is_noted(tmp_path):
    """Same frame of reference, another SeriesInstanceUID: accepted without a word."""
    from lungai.dicom.reference import derived_uid

    ref, files = _series(tmp_path / "P" / "CT")
    other = derived_uid("another", "series")
    rs = pydicom.Dataset()
    rs.file_meta = pydicom.dataset.FileMetaDataset()
    rs.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    rs.file_meta.MediaStorageSOPInstanceUID = derived_uid("rs", 1)
    rs.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    rs.SOPClassUID, rs.SOPInstanceUID = rs.file_meta.MediaStorageSOPClassUID, rs.file_meta.MediaStorageSOPInstanceUID
    rs.Modality, rs.PatientID = "RTSTRUCT", "RC1"
    rs.StudyInstanceUID, rs.SeriesInstanceUID = ref.study_uid, derived_uid("rs", "series")
    se = pydicom.Dataset()
    se.SeriesInstanceUID = other
    st = pydicom.Dataset()
    st.RTReferencedSeriesSequence = [se]
    fr = pydicom.Dataset()
    fr.FrameOfReferenceUID = ref.frame_of_reference_uid
    fr.RTReferencedStudySequence = [st]
    rs.ReferencedFrameOfReferenceSequence = [fr]
    rs.save_as(tmp_path / "P" / "rs.dcm", enforce_file_format=True)
    (study,) = scan(tmp_path / "P")
    assert study.rtstruct
    (note,) = [n for n in study.notes if "drawn on" in n]
    assert other in note and ref.series_uid in note


def test_read_rtstruct_warns_of_another_series(tmp_path):
    """read_rtstruct matches an RTSTRUCT to the CT by frame of reference; another series of it is warned of."""
    import warnings

    from dicom_helpers import small_phantom

    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.synthetic import write_rt_study

    st = write_rt_study(tmp_path, small_phantom(7), "P1", dose=None)
    ct = read_ct(st["ct"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_rtstruct(st["rtstruct"], ct, names=["GTV"])       # its own series: no warning
    ct.SetMetaData("0020|000e", "1.2.3.4")
    with pytest.warns(UserWarning, match="the CT given is series 1.2.3.4"):
        read_rtstruct(st["rtstruct"], ct, names=["GTV"])
