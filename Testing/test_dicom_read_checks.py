"""Reading a DICOM CT series whose slice headers cannot make one volume (QA on LUNG1-003 variants): a slice without
ImagePositionPatient, none at all, no PixelSpacing, an odd image size, a tilted slice; an Enhanced (multi-frame) CT
alone in a folder; several CT series of one study told apart; a series spread over two folders in a cohort; an
RTSTRUCT drawn on another series of the CT's frame of reference.  All on small synthetic series (pydicom)."""

from __future__ import annotations

import shutil
import warnings

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
    cap = capsys.readouterr()
    out = cap.out
    for name, kernel in (("soft", "B31f"), ("lung", "B70f")):     # the patient's 2 series: named as cohort's rows
        line = next(line for line in out.splitlines() if f"CT series {derived_uid(study, name)}: " in line)
        assert f"#1 'Thorax {name}', kernel {kernel} (lungai cohort row RC1_" in line, line
    assert "warning: RC1 has 2 CT series: lungai cohort rows RC1_1, RC1_2 - keep one per patient" in cap.err, cap.err
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


def _enhanced(tmp_path, folder="MF", files=None, name="enhanced.dcm", series_uid=None, instance=1):
    hd = pytest.importorskip("highdicom")
    if files is None:
        _, files = _series(tmp_path / "classic")
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(f) for f in files], series_instance_uid=series_uid or hd.UID(), series_number=9,
        sop_instance_uid=hd.UID(), instance_number=instance)
    (tmp_path / folder).mkdir(exist_ok=True)
    enhanced.save_as(tmp_path / folder / name)
    return tmp_path / folder


def _frames(path, order=None, positions=None):
    """Edit the Enhanced CT file ``path``: its frames (pixels and per-frame groups) in ``order`` (indices), and
    ``positions(i, ImagePositionPatient) -> new one`` per frame."""
    ds = pydicom.dcmread(path)
    if order is not None:
        ds.PixelData = ds.pixel_array[order].copy().tobytes()
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence([ds.PerFrameFunctionalGroupsSequence[i] for i in order])
        ds.NumberOfFrames = len(order)
    if positions is not None:
        for i, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
            plane = group.PlanePositionSequence[0]
            plane.ImagePositionPatient = positions(i, [float(v) for v in plane.ImagePositionPatient])
    ds.save_as(path)
    return path


def test_an_enhanced_ct_whose_frames_are_no_regular_volume_is_refused(tmp_path):
    """QA on LUNG1-003 as an Enhanced (multi-frame) CT: GDCM stacks the frames as they come and, when their
    positions are not equally spaced (a frame missing, frames not in slice order), reads the image with a 1 mm voxel
    in every direction (0.977 x 0.977 x 3 mm read as 1 x 1 x 1: every volume 2.9 times too small), and reads a
    tilted one as if not tilted - without a word.  Now refused as a classic series is (missing slice, tilt), or as
    frames out of slice order (by read_ct, and in scan's notes); frames stored against the slice normal still read
    (ITK turns the slice axis)."""
    _, files = _series(tmp_path / "classic")
    classic = read_ct(tmp_path / "classic")
    gap = _enhanced(tmp_path, "gap", files=files[:2] + files[3:])
    with pytest.raises(InputError, match=r"Enhanced \(multi-frame\) CT enhanced.dcm: 1 slice missing") as err:
        read_ct(gap)
    assert "re-export the full CT (every frame)" in err.value.fix
    (study,) = scan(gap)                                        # dicom-scan / cohort's inventory say it too
    assert any("1 slice missing" in note for note in study.notes), study.notes
    shuffled = _enhanced(tmp_path, "shuffled", files=files)
    _frames(shuffled / "enhanced.dcm", order=[0, 1, 3, 2, 4, 5])
    with pytest.raises(InputError, match="its frames are not stored in slice order") as err:
        read_ct(shuffled)
    assert "classic series of one file per slice" in err.value.fix
    tilted = _enhanced(tmp_path, "tilted", files=files)
    _frames(tilted / "enhanced.dcm", positions=lambda i, q: [q[0], q[1] + 0.5 * i, q[2]])
    with pytest.raises(InputError, match="enhanced.dcm is gantry-tilted or sheared"):
        read_ct(tilted / "enhanced.dcm")
    backwards = _enhanced(tmp_path, "backwards", files=files)
    _frames(backwards / "enhanced.dcm", order=[5, 4, 3, 2, 1, 0])
    for path in (backwards, _enhanced(tmp_path, "MF", files=files)):
        ct = read_ct(path)
        assert not scan(path)[0].notes
        assert ct.GetSpacing() == pytest.approx(classic.GetSpacing())
        resampled = sitk.Resample(ct, classic, sitk.Transform(), sitk.sitkNearestNeighbor)
        assert np.array_equal(sitk.GetArrayFromImage(resampled), sitk.GetArrayFromImage(classic))
    from lungai.io.read import check_frame_geometry

    misread = sitk.Image(ct)                                 # an image read with GDCM's fallback 1 mm voxel
    misread.SetSpacing((1.0, 1.0, 1.0))
    with pytest.raises(InputError, match=r"was read by the DICOM reader \(ITK / GDCM\) with spacing \(1.0, 1.0, 1.0\)"):
        check_frame_geometry(path / "enhanced.dcm", misread)


def test_dicom_outputs_of_an_enhanced_ct_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """Review: `lungai lungs MF -o l.nii.gz` failed after segmenting ("no CT slices found in MF"), dicom-export
    failed the same way: SEG / RTSTRUCT reference classic slices.  lungs writes the NIfTI and says why no DICOM;
    dicom-export refuses before reading anything; lungai segment skips its DICOM outputs the same way."""
    from lungai.cli import main
    import lungai.dicom.reference as reference

    from types import SimpleNamespace

    mf = _enhanced(tmp_path)
    labels = sitk.Cast(read_ct(mf) > 0, sitk.sitkUInt8)    # the segmentation itself is not the matter here
    monkeypatch.setattr("lungai.lungs.segment_lungs", lambda ct, progress=None, **_: SimpleNamespace(
        labels=labels, volumes_ml={"right_lung": 1.0, "left_lung": 0.0}, notes=[], warnings=[]))
    assert main(["lungs", str(mf), "-o", str(tmp_path / "l.nii.gz")]) == 0
    out = capsys.readouterr().out
    assert "is an Enhanced (multi-frame) CT: DICOM SEG / RTSTRUCT outputs need a classic CT series" in out
    assert (tmp_path / "l.nii.gz").exists() and not list(tmp_path.glob("l*.dcm"))
    sitk.WriteImage(sitk.Image(16, 16, 6, sitk.sitkUInt8), str(tmp_path / "t.nii.gz"))
    read = []
    monkeypatch.setattr("lungai.io.read_ct", lambda *a, **k: read.append(a))
    assert main(["dicom-export", "--ct", str(mf), "--tumour", str(tmp_path / "t.nii.gz"), "-o",
                 str(tmp_path / "e")]) == 2
    assert "Enhanced (multi-frame) CT" in capsys.readouterr().err and not read and not (tmp_path / "e").exists()
    assert reference.multiframe_ct(mf) and not reference.multiframe_ct(tmp_path / "classic")
    with pytest.raises(InputError, match="Enhanced"):      # any other caller: the reason, not "no CT slices"
        reference.ct_reference(mf)
    import inspect

    import lungai.cli.seg as seg_cli                      # segment (not run here: a model) checks it the same way
    assert "multiframe_ct(args.ct, args.series)" in inspect.getsource(seg_cli.run_segment if hasattr(
        seg_cli, "run_segment") else seg_cli)


def test_an_odd_first_slice_is_the_one_named(tmp_path):
    """Review: the first file was the reference orientation, so a tilted first slice named another (good) slice."""
    _, files = _series(tmp_path / "P" / "CT")
    a = np.deg2rad(5)
    _edit(files[0], lambda ds: setattr(ds, "ImageOrientationPatient",
                                       [1, 0, 0, 0, f"{np.cos(a):.6f}", f"{np.sin(a):.6f}"]))
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "P" / "CT")
    assert f"slice {files[0].name} has ImageOrientationPatient" in exc.value.problem
    assert "the others 1/0/0/0/1/0" in exc.value.problem
    (study,) = scan(tmp_path / "P")
    assert any(f"slice {files[0].name} has" in n for n in study.notes)
    _edit(files[3], lambda ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 0, 0, -1]))
    with pytest.raises(InputError) as exc:      # every odd file listed
        read_ct(tmp_path / "P" / "CT")
    assert "2 slices differ" in exc.value.problem and files[0].name in exc.value.problem \
        and files[3].name in exc.value.problem


def test_a_multiframe_series_in_several_files_is_refused(tmp_path):
    """Review: read_ct gave ITK's raw 'Size: [512, 512, 53, 1]', dicom-scan 'CT 2 slices' and '2 of its 2 slices
    have no ImagePositionPatient'."""
    from lungai.dicom.reference import derived_uid

    _, files = _series(tmp_path / "classic")
    uid = derived_uid("mf", "series")
    _enhanced(tmp_path, files=files[:3], name="a.dcm", series_uid=uid, instance=1)
    _enhanced(tmp_path, files=files[3:], name="b.dcm", series_uid=uid, instance=2)
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "MF")
    assert "a multi-frame CT series in several files is not supported" in exc.value.problem
    (study,) = scan(tmp_path / "MF")
    assert study.ct.n_slices == 6
    assert any("multi-frame CT series in several files" in n for n in study.notes)
    assert not any("ImagePositionPatient" in n for n in study.notes)


def test_a_localizer_inside_the_ct_series_is_left_out_not_the_series(tmp_path, capsys):
    """Review: a LOCALIZER image in the CT's own series (sorting first) made dicom-scan drop the whole series as a
    scout (cohort: no CT); read_ct failed on its size.  The localizer file is left out, with a note."""
    from lungai.cli import main

    _, files = _series(tmp_path / "P" / "CT")
    loc = pydicom.dcmread(files[0])
    loc.SOPInstanceUID = loc.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    loc.Rows, loc.Columns = 8, 16
    loc.PixelData = np.zeros((8, 16), np.int16).tobytes()
    loc.ImagePositionPatient, loc.ImageOrientationPatient = [-6, 0, -120], [1, 0, 0, 0, 0, -1]
    loc.save_as(tmp_path / "P" / "CT" / "0loc.dcm")
    (study,) = scan(tmp_path / "P")
    assert study.ct is not None and study.ct.n_slices == 6 and "0loc.dcm" not in [f.name for f in study.ct.files]
    (note,) = study.notes
    assert "left out 1 scout / LOCALIZER image of the series (0loc.dcm)" in note
    with pytest.warns(UserWarning, match="0loc.dcm"):
        ct = read_ct(tmp_path / "P" / "CT")
    assert ct.GetSize() == (16, 16, 6)
    main(["lungs", str(tmp_path / "P" / "CT"), "--no-dicom", "-o", str(tmp_path / "l.nii.gz")])   # (no lungs in it)
    err = capsys.readouterr().err
    assert err.count("warning: the DICOM series in") == 1 and "0loc.dcm" in err and "UserWarning" not in err



def test_a_scout_series_beside_the_ct_is_said_as_left_out(tmp_path, capsys):
    """QA: a scout / LOCALIZER in its own series in the CT's folder was left out by read_ct without a word (dicom-scan
    notes it: "skipped CT series UID ..."); the user was not told what was not read.  One note, naming the series."""
    from lungai.cli import main
    from lungai.dicom.reference import derived_uid

    ref, files = _series(tmp_path / "P" / "CT")
    scout = pydicom.dcmread(files[0])
    scout.SeriesInstanceUID, scout.SOPInstanceUID = derived_uid("RC1", "scout"), derived_uid("RC1", "scout", 1)
    scout.file_meta.MediaStorageSOPInstanceUID = scout.SOPInstanceUID
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.save_as(tmp_path / "P" / "CT" / "scout.dcm")
    with pytest.warns(UserWarning, match=f"skipped CT series {derived_uid('RC1', 'scout')} .*a scout / LOCALIZER"):
        ct = read_ct(tmp_path / "P" / "CT")
    assert ct.GetSize() == (16, 16, 6)
    main(["lungs", str(tmp_path / "P" / "CT"), "--no-dicom", "-o", str(tmp_path / "l.nii.gz")])   # (no lungs in it)
    err = capsys.readouterr().err
    assert err.count(f"skipped CT series {derived_uid('RC1', 'scout')}") == 1, err
    assert "UserWarning" not in err
    with warnings.catch_warnings():     # the series chosen by --series: nothing to say
        warnings.simplefilter("error")
        read_ct(tmp_path / "P" / "CT", series_uid=str(pydicom.dcmread(files[0]).SeriesInstanceUID))


def test_dicom_scan_notes_a_slice_without_pixel_spacing(tmp_path):
    """Review: read_ct refuses a slice without PixelSpacing, dicom-scan said nothing (cohort planned the patient)."""
    _, files = _series(tmp_path / "P" / "CT")
    _edit(files[2], lambda ds: delattr(ds, "PixelSpacing"))
    (study,) = scan(tmp_path / "P")
    assert any("PixelSpacing (0028,0030)" in n and files[2].name in n for n in study.notes)
    with pytest.raises(InputError, match=files[2].name):
        read_ct(tmp_path / "P" / "CT")


def test_an_rtstruct_of_another_series_is_one_cli_warning(tmp_path, capsys):
    """Review: read_rtstruct's 'other series' note reached the CLI as a raw Python UserWarning with a source path,
    printed twice (two call sites)."""
    import warnings

    from lungai.cli import _input_notes
    from lungai.errors import InputNote

    with _input_notes():
        for _ in range(2):
            warnings.warn("the structures were drawn on series 1.2", InputNote, stacklevel=1)
        warnings.warn("the structures were drawn on series 1.2", InputNote, stacklevel=2)
    err = capsys.readouterr().err
    assert err == "warning: the structures were drawn on series 1.2\n"


def _monochrome1(ds):
    ds.PhotometricInterpretation = "MONOCHROME1"


def test_a_monochrome1_slice_is_refused_by_read_and_scan(tmp_path):
    """QA: ITK / GDCM invert MONOCHROME1 pixels, so such a slice of LUNG1-003 read +942 HU instead of -943 without a
    word, and a whole series so marked was refused as "not a CT in Hounsfield units"."""
    _, files = _series(tmp_path / "P" / "CT")
    _edit(files[2], _monochrome1)
    with pytest.raises(InputError, match=r"1 of its 6 slices \(" + files[2].name + r"\) has PhotometricInterpretation "
                                         r"\(0028,0004\) MONOCHROME1") as exc:
        read_ct(tmp_path / "P" / "CT")
    assert "MONOCHROME2" in exc.value.fix
    (study,) = scan(tmp_path / "P")
    assert any("MONOCHROME1" in n and files[2].name in n for n in study.notes)
    for f in files:
        _edit(f, _monochrome1)
    with pytest.raises(InputError, match=r"6 of its 6 slices .* have PhotometricInterpretation \(0028,0004\) "
                                         "MONOCHROME1, which the DICOM reader inverts"):
        read_ct(tmp_path / "P" / "CT")


def test_a_monochrome1_enhanced_ct_is_refused(tmp_path):
    folder = _enhanced(tmp_path)
    _edit(folder / "enhanced.dcm", _monochrome1)
    with pytest.raises(InputError, match=r"enhanced.dcm.*MONOCHROME1"):
        read_ct(folder / "enhanced.dcm")
    (study,) = scan(folder)
    assert any("MONOCHROME1" in n for n in study.notes)


def test_a_truncated_slice_is_refused_by_the_ct_reader(tmp_path):
    """QA: `lungai segment` read a LUNG1-003 series with one slice's PixelData cut to a third (pydicom) without a
    word - made-up HU in that slice, tumour, SEG, RTSTRUCT and SR written, rc 0 - while `lungai cohort` refused it.
    The CT reader (every command reading a DICOM CT: segment, lungs, radiomics, demo, dicom-export, cohort) checks
    each file's pixel data; an Enhanced CT file's too, given itself or its folder.  (A file cut short, an
    interrupted copy, which GDCM's series listing passes over, is put back and named too:
    test_cohort_slice_copies.py::test_read_ct_names_a_truncated_slice_of_its_folder.)"""
    _, files = _series(tmp_path / "P" / "CT")
    _edit(files[3], lambda ds: setattr(ds, "PixelData", ds.PixelData[:len(ds.PixelData) // 3]))
    with pytest.raises(InputError, match=rf"CT slice {files[3].name} is truncated or corrupt: its pixel data holds "
                                         r"170 of the 512 bytes") as exc:
        read_ct(tmp_path / "P")
    assert "re-export the CT series" in exc.value.fix
    mf = _enhanced(tmp_path) / "enhanced.dcm"
    _edit(mf, lambda ds: setattr(ds, "PixelData", ds.PixelData[:len(ds.PixelData) // 3]))
    for path in (mf, mf.parent):
        with pytest.raises(InputError, match=r"enhanced.dcm is truncated or corrupt"):
            read_ct(path)


def _bare(path):
    """The file as a bare data set (no 128-byte preamble, "DICM" or file meta; implicit VR little endian)."""
    ds = pydicom.dcmread(path)
    ds.preamble = None
    del ds.file_meta
    ds.save_as(path, implicit_vr=True, little_endian=True)


def test_ct_slices_without_the_part10_header_are_read_and_scanned(tmp_path):
    """QA: LUNG1-003's slices saved without the Part-10 header (GDCM / ITK read them; read_ct gave the identical
    volume before the pixel data check) were refused as "could not be read as DICOM (InvalidDicomError ...); it is
    truncated or corrupt", and dicom-scan / cohort called them truncated or damaged.  Read as bare data sets: the same
    volume, one CT series found by dicom-scan; a bare slice cut short is still refused as truncated, a file that is
    no DICOM at all is never called truncated."""
    from lungai.dicom.pixeldata import check_ct_files

    _, files = _series(tmp_path / "P" / "CT")
    before = sitk.GetArrayFromImage(read_ct(tmp_path / "P" / "CT"))
    for f in files:
        _bare(f)
    assert pydicom.dcmread(files[0], force=True).preamble is None
    assert np.array_equal(sitk.GetArrayFromImage(read_ct(tmp_path / "P" / "CT")), before)
    (study,) = scan(tmp_path / "P")
    assert study.ct is not None and len(study.ct.files) == 6 and not study.unreadable and not study.notes
    check_ct_files(study.ct.files)       # cohort planning's check
    ds = pydicom.dcmread(files[3], force=True)
    ds.PixelData = ds.PixelData[:len(ds.PixelData) // 3]
    ds.save_as(files[3], implicit_vr=True, little_endian=True)
    with pytest.raises(InputError, match=rf"CT slice {files[3].name} is truncated or corrupt"):
        check_ct_files(files)
    (tmp_path / "text.dcm").write_text("not a DICOM file at all\n" * 20)
    with pytest.raises(InputError) as exc:
        check_ct_files([tmp_path / "text.dcm"])
    assert "is not DICOM" in exc.value.problem and "truncated" not in exc.value.problem


def test_a_file_that_is_no_dicom_is_passed_over_without_pydicoms_warnings(tmp_path, capsys):
    """QA: dicom-scan of a folder holding a file that is no DICOM printed pydicom's "UserWarning: Expected implicit
    VR, but found explicit VR" from the forced read that looks for a bare data set (dcmread_lenient): that read is
    quiet now; the file is still not DICOM."""
    import warnings

    from lungai.cli import main
    from lungai.dicom.pixeldata import dcmread_lenient

    _series(tmp_path / "P" / "CT")
    notes = tmp_path / "P" / "notes.csv"
    notes.write_bytes(b"id;NAME;value\n1;a;2\n" * 5)       # bytes 4-5 "NA": pydicom guesses explicit VR
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(pydicom.errors.InvalidDicomError):
            dcmread_lenient(notes)
        (study,) = scan(tmp_path / "P")
    assert study.ct is not None and len(study.ct.files) == 6
    assert not [str(w.message) for w in caught if "VR" in str(w.message)]
    assert main(["dicom-scan", str(tmp_path / "P")]) == 0
    assert "Expected implicit VR" not in capsys.readouterr().err


def test_a_float_pixel_data_ct_is_refused_as_not_supported(tmp_path):
    """QA: a CT of FloatPixelData (BitsAllocated 32, no PixelData; ITK cannot read it either) was refused as
    "holds no pixel data (PixelData); it is truncated or incomplete" -> "re-export".  Named as float pixel data,
    not supported, with how to convert it."""
    _, files = _series(tmp_path / "P" / "CT")
    for f in files:
        def floats(ds):
            values = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            del ds.PixelData
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
            for kw in ("PixelRepresentation", "RescaleSlope", "RescaleIntercept"):
                if kw in ds:
                    delattr(ds, kw)
            ds.FloatPixelData = values.tobytes()
        _edit(f, floats)
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "P" / "CT")
    assert "float pixel data (FloatPixelData, BitsAllocated 32)" in exc.value.problem, exc.value.problem
    assert "not supported" in exc.value.problem and "truncated" not in exc.value.problem
    assert "integer pixel data" in exc.value.fix and "NIfTI" in exc.value.fix


def _stored_u1024(ds):
    """The slice stored as HU + 1024 (unsigned) with RescaleIntercept -1024, as many scanners export."""
    hu = ds.pixel_array.astype(np.int32) * int(float(ds.RescaleSlope)) + int(float(ds.RescaleIntercept))
    ds.PixelRepresentation = 0
    ds.PixelData = (hu + 1024).clip(0, 4095).astype("<u2").tobytes()
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1


def _without_rescale(ds):
    """The slice stored as HU + 1024 (unsigned) without RescaleIntercept / RescaleSlope, as QA's LUNG1-003 slice."""
    _stored_u1024(ds)
    del ds.RescaleIntercept
    del ds.RescaleSlope


def _empty_rescale(ds):
    """The slice stored as HU + 1024 with RescaleIntercept / RescaleSlope present but empty (GDCM lists them, with
    value '', ITK reads the slice with intercept 0 / slope 1)."""
    _stored_u1024(ds)
    ds.RescaleIntercept, ds.RescaleSlope = None, None


def _empty_intercept(ds):
    _stored_u1024(ds)
    ds.RescaleIntercept = None


def _rescaled_series(folder, odd: dict):
    """The synthetic series stored as HU + 1024 with intercept -1024, slice i edited by ``odd[i]``."""
    _, files = _series(folder)
    for i, f in enumerate(files):
        _edit(f, odd.get(i, _stored_u1024))
    return files


@pytest.mark.parametrize("odd", [_without_rescale, _empty_rescale, _empty_intercept])
def test_a_slice_without_usable_rescale_tags_is_refused_by_read_and_scan(tmp_path, odd):
    """QA: the middle slice of LUNG1-003 stored as HU + 1024 without RescaleIntercept / RescaleSlope was read 1024 HU
    too high without a word (`lungai radiomics`: GTV mean -102 -> -49 HU, maximum 230 -> 1220); so was one with the
    tags present but empty (GDCM lists them with value '', pydicom has them "in" the data set: they passed).
    Refused by the CT reader and noted by dicom-scan (so cohort's errors.csv), naming the slice (its path under the
    folder given) and its z; a series without the tags on every slice, its values in HU, still reads."""
    files = _rescaled_series(tmp_path / "P" / "CT", {2: odd})
    z = float(pydicom.dcmread(files[2]).ImagePositionPatient[2])
    with pytest.raises(InputError, match=rf"1 of its 6 slices \({files[2].name} at z = {z:.1f} mm\) has no usable "
                                         r"RescaleIntercept \(0028,1052\) \(absent or empty\), so it is read with "
                                         r"intercept 0, while other slices have RescaleIntercept -1024") as exc:
        read_ct(tmp_path / "P" / "CT")
    assert "1024 HU too high" in exc.value.problem
    assert "re-export" in exc.value.fix and "RescaleIntercept" in exc.value.fix and "remove the odd" in exc.value.fix
    (study,) = scan(tmp_path / "P")
    assert any("RescaleIntercept (0028,1052)" in n and f"CT/{files[2].name} at z = {z:.1f} mm" in n
               for n in study.notes)
    _, files = _series(tmp_path / "Q" / "CT")
    for f in files:
        _edit(f, lambda ds: (delattr(ds, "RescaleIntercept"), delattr(ds, "RescaleSlope")))
    assert sitk.GetArrayFromImage(read_ct(tmp_path / "Q" / "CT")).min() == -1000
    (study,) = scan(tmp_path / "Q")
    assert not study.notes


def test_a_slice_without_rescale_tags_among_identity_ones_reads_the_same(tmp_path):
    """QA: LUNG1-003 has intercept 0 / slope 1 on every slice (signed HU); the tags deleted from one slice (or kept on
    one slice only) read the same voxels, yet were refused ("which the other slices have ... remove the odd slice").
    Accepted now: a slice without usable tags is read with intercept 0 / slope 1, the rescale of the others; so is a
    slice without only RescaleSlope among slices of slope 1, or one of a different explicit rescale."""
    _series(tmp_path / "REF" / "CT")
    ref = sitk.GetArrayFromImage(read_ct(tmp_path / "REF" / "CT"))
    no_tags = lambda ds: (delattr(ds, "RescaleIntercept"), delattr(ds, "RescaleSlope"))
    cases = {"one_missing": {2: no_tags}, "one_empty": {3: lambda ds: setattr(ds, "RescaleIntercept", None)},
             "one_tagged": {i: no_tags for i in (0, 1, 2, 4, 5)}}
    for name, odd in cases.items():
        _, files = _series(tmp_path / name / "CT")
        for i, fn in odd.items():
            _edit(files[i], fn)
        assert np.array_equal(sitk.GetArrayFromImage(read_ct(tmp_path / name / "CT")), ref), name
        (study,) = scan(tmp_path / name)
        assert not study.notes, (name, study.notes)
    files = _rescaled_series(tmp_path / "S" / "CT", {1: lambda ds: (_stored_u1024(ds), delattr(ds, "RescaleSlope"))})
    assert np.array_equal(sitk.GetArrayFromImage(read_ct(tmp_path / "S" / "CT")), ref)
    assert not scan(tmp_path / "S")[0].notes


def test_the_slices_without_rescale_are_listed_alike_in_z_order_by_read_and_scan(tmp_path):
    """QA: read_ct (files sorted along the normal) and dicom-scan (files in path order) named different slices first
    for the same series.  Both list them along the slice normal now; where they are most of the series the fix says
    to re-export, not to remove "the odd slice(s)"."""
    files = _rescaled_series(tmp_path / "P" / "CT", {i: _without_rescale for i in (0, 1, 3, 5)})
    zs = sorted(float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files)
    # the file names against z order: scan reads them in path order
    renamed = []
    for k, f in enumerate(sorted(files, key=lambda f: -float(pydicom.dcmread(f).ImagePositionPatient[2]))):
        renamed.append(f.rename(f.with_name(f"tmp_{k:02d}.dcm")))
    for f in renamed:
        f.rename(f.with_name(f.name.replace("tmp_", "ct_")))
    by_z = {float(pydicom.dcmread(f).ImagePositionPatient[2]): f.name for f in (tmp_path / "P" / "CT").iterdir()}
    odd = [by_z[zs[i]] for i in (0, 1, 3, 5)]
    assert odd != sorted(odd)
    listed = ", ".join(f"{name} at z = {z:.1f} mm" for name, z in zip(odd, [zs[i] for i in (0, 1, 3, 5)]))
    with pytest.raises(InputError) as exc:
        read_ct(tmp_path / "P" / "CT")
    assert f"4 of its 6 slices ({listed}) have no usable" in exc.value.problem, exc.value.problem
    assert "re-export" in exc.value.fix and "remove" not in exc.value.fix
    (study,) = scan(tmp_path / "P")
    assert any(f"4 of its 6 slices ({listed.replace('ct_', 'CT/ct_')}) have" in n for n in study.notes), study.notes


def test_an_undecodable_compressed_slice_is_named_with_its_transfer_syntax(tmp_path):
    """QA: JPEG 2000 data labelled JPEG-LS Lossless gave GDCM's raw "Failed to change to Implicit Transfer Syntax"
    and a generic fix.  The slice(s) that cannot be decoded are named with their transfer syntax, the fix is to
    re-export uncompressed."""
    from pydicom.uid import JPEGLSLossless, RLELossless

    def mislabelled(ds):
        ds.compress(RLELossless)
        ds.file_meta.TransferSyntaxUID = JPEGLSLossless

    _, files = _series(tmp_path / "P" / "CT")
    _edit(files[2], mislabelled)
    with pytest.raises(InputError, match=rf"slice {files[2].name} \(JPEG-LS Lossless Image Compression\) could not "
                                         "be decoded") as exc:
        read_ct(tmp_path / "P" / "CT")
    assert "Implicit Transfer Syntax" not in exc.value.problem
    assert "uncompressed (Explicit VR Little Endian)" in exc.value.fix


def _padded_u1024(value, limit=None, vr="US"):
    """The slice stored as HU + 1024 (unsigned, intercept -1024) with the corners beyond 6 px of the centre set to the
    stored padding ``value`` (alternating with ``limit`` when given), named in PixelPaddingValue (and
    PixelPaddingRangeLimit)."""
    yy, xx = np.mgrid[:SHAPE[1], :SHAPE[2]]
    corners = np.hypot(yy - 7.5, xx - 7.5) > 6

    def edit(ds):
        _stored_u1024(ds)
        s = np.frombuffer(ds.PixelData, "<u2").reshape(SHAPE[1:]).copy()
        s[corners] = value
        if limit is not None:
            s[corners & (xx % 2 == 0)] = limit
            ds.add_new(0x00280121, vr, limit)
        ds.add_new(0x00280120, vr, value)
        ds.PixelData = s.astype("<u2").tobytes()
    return edit, corners


@pytest.mark.parametrize("value,limit", [(63536, None), (60000, 65535), (65535, 60000)])
def test_dicom_pixel_padding_above_the_ct_scale_is_read_as_padding(tmp_path, value, limit):
    """QA: LUNG1-003 stored unsigned (HU + 1024, intercept -1024) with the area beyond the reconstruction circle at
    63536 and PixelPaddingValue (0028,0120) 63536 was refused by `lungai lungs`: "intensities outside the Hounsfield
    range (... 99.9th pct 62512) - convert the image to HU" (the wrong fix: it was in HU).  The slices'
    PixelPaddingValue / PixelPaddingRangeLimit (0028,0121) are read with the headers ITK reads anyway; the voxels of
    the padding value (range) above the CT scale read -3024 (padding for every padding rule), the others unchanged."""
    _, files = _series(tmp_path / "REF" / "CT")
    ref = sitk.GetArrayFromImage(read_ct(tmp_path / "REF" / "CT"))
    edit, corners = _padded_u1024(value, limit)
    _, files = _series(tmp_path / "P" / "CT")
    for f in files:
        _edit(f, edit)
    got = sitk.GetArrayFromImage(read_ct(tmp_path / "P" / "CT"))
    assert (got[:, corners] == -3024).all()
    assert np.array_equal(got[:, ~corners], ref[:, ~corners])
    (study,) = scan(tmp_path / "P")
    assert not study.notes


def test_dicom_pixel_padding_at_air_is_kept_and_the_hu_range_error_names_the_tags(tmp_path):
    """A padding value that reads as air (stored 0 with intercept -1024: -1024 HU) is left as it is (the air voxels
    share it); an image with values far above the HU range names PixelPaddingValue in its fix."""
    _, files = _series(tmp_path / "REF" / "CT")
    ref = sitk.GetArrayFromImage(read_ct(tmp_path / "REF" / "CT"))
    edit, corners = _padded_u1024(0)
    _, files = _series(tmp_path / "P" / "CT")
    for f in files:
        _edit(f, edit)
    got = sitk.GetArrayFromImage(read_ct(tmp_path / "P" / "CT"))
    assert (got[:, corners] == -1024).all() and np.array_equal(got[:, ~corners], ref[:, ~corners])
    arr = ref.astype(np.int32)
    arr[:, corners] = 62512
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    sitk.WriteImage(img, str(tmp_path / "pad.nii.gz"))
    with pytest.raises(InputError, match="outside the Hounsfield range") as exc:
        read_ct(tmp_path / "pad.nii.gz")
    assert "PixelPaddingValue (0028,0120)" in exc.value.fix and "-3024" in exc.value.fix


def _patient_in(charset):
    def edit(ds):
        ds.SpecificCharacterSet = charset
        ds.PatientID = "Müller^Zoë 7"
        ds.PatientName = "Müller^Zoë"
    return edit


# ISO_IR 100 (Latin-1): what most planning systems export; ISO_IR 192: UTF-8
@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192"])
@pytest.mark.parametrize("enhanced", [False, True])
def test_a_latin1_patient_id_is_read_and_kept_as_written(tmp_path, enhanced, charset):
    """QA (cohort of real exports): a CT series of SpecificCharacterSet ISO_IR 100 whose PatientID holds a non-ASCII
    letter ('Zoë/1') could not be read at all - "TypeError: in method 'Image_SetMetaData', argument 3 of type
    'std::string const &'" from every command (ITK hands the Latin-1 byte over as a surrogate escape); in a cohort
    the patient failed with that message.  The PatientID kept on the CT is the text pydicom reads."""
    _, files = _series(tmp_path / "classic", patient_id="RC1")
    for f in files:
        _edit(f, _patient_in(charset))
    folder = _enhanced(tmp_path, files=files) if enhanced else tmp_path / "classic"
    ct = read_ct(folder)
    from lungai.io.read import PATIENT_ID_TAG

    assert ct.GetMetaData(PATIENT_ID_TAG) == str(pydicom.dcmread(files[0]).PatientID) == "Müller^Zoë 7"
    assert np.array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(_ct_image()))


def test_a_series_uid_given_with_an_image_file_is_refused_not_ignored(tmp_path):
    """QA: ``lungai segment lung1_image.nrrd --series UID`` (or lungs / radiomics / dose ...) read the file and ignored
    the UID without a word - a user meaning one DICOM series got the results of another image.  A NIfTI / NRRD / MHA
    file holds no series: refused, naming the fix; an Enhanced CT file is read when the UID is its own series'."""
    nii = tmp_path / "ct.nii.gz"
    sitk.WriteImage(_ct_image(), str(nii))
    with pytest.raises(InputError, match=r"--series 1\.2\.3: ct\.nii\.gz is an image file, not a DICOM folder") as e:
        read_ct(nii, series_uid="1.2.3")
    assert "leave --series out" in e.value.fix
    read_ct(nii)
    folder = _enhanced(tmp_path, series_uid="1.2.826.0.1.3680043.8.498.77")
    ct_file = folder / "enhanced.dcm"
    assert read_ct(ct_file, series_uid="1.2.826.0.1.3680043.8.498.77").GetSize()[2] > 1      # its own series
    with pytest.raises(InputError, match=r"enhanced\.dcm is the DICOM series 1\.2\.826\.0\.1\.3680043\.8\.498\.77, "
                                         r"not that one"):
        read_ct(ct_file, series_uid="1.2.3")


def test_segment_on_an_enhanced_ct_writes_no_dicom_and_counts_their_steps(tmp_path, capsys, monkeypatch):
    """lungai segment on an Enhanced (multi-frame) CT: the series check runs on the bar now (QA segfollow68), whose
    total counted the DICOM objects' steps before it: the NIfTI results are written, no DICOM object, the note says
    why, and the bar ends at its total."""
    from seg_helpers import stubbed_segment

    from lungai.cli import main
    from lungai.progress import parse_line
    from lungai.seg.infer import SegResult

    mf = _enhanced(tmp_path)
    stubbed_segment(tmp_path, monkeypatch)          # the tiny model tmp_path / "m"
    tumour = sitk.Cast(read_ct(mf) > 0, sitk.sitkUInt8)
    maps = sitk.Cast(tumour, sitk.sitkFloat32) * 0.5
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumour_volume_ml": 1.0, "n_components": 1, "method": "mc-dropout", "members": 1, "mc_passes": 2,
            "calibrated": False, "notes": []}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour",
                        lambda *a, **k: SegResult(tumour, maps, maps, None, dict(info)))
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    out = tmp_path / "out"
    assert main(["segment", str(mf), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]) == 0
    captured = capsys.readouterr()
    assert "is an Enhanced (multi-frame) CT: DICOM SEG / RTSTRUCT outputs need a classic CT series" in captured.out
    assert (out / "tumor.nii.gz").exists() and not list(out.glob("*.dcm"))
    shown = [parse_line(line) for line in captured.err.splitlines() if parse_line(line)]
    assert "segment: checking the CT series: its files' headers" in [t for _, t in shown]
    # the DICOM objects' steps counted after "written" (segment_tumour's own steps are the stub's: not counted here)
    from lungai.dicom.export import RESULTS_STEPS

    counts = {line.split(": ", 1)[1]: int(line.split()[1].split("/")[0]) for line in captured.err.splitlines()
              if line.startswith("LUNGAI_PROGRESS ")}
    assert counts["no DICOM objects of an Enhanced (multi-frame) CT"] == counts["written"] + RESULTS_STEPS, counts
