"""A CT slice exported twice (one SOPInstanceUID on two files) is one slice: the intact copy is kept, a damaged copy
left out and named (lungai.dicom.pixeldata.drop_slice_copies, the rule of the CT reader and of cohort / dicom-scan);
two intact copies that differ fail the patient naming both.  A cohort re-run never removes a patient's earlier result
before its redo has succeeded (QA: a truncated copy of one LUNG1-003 slice added to the export: 108 slices counted,
the earlier result removed "to be redone", then the patient failed - its results gone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from cohort_helpers import PARAMS, export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import RESULT, plan_cohort, run_cohort
from lungai.errors import InputError


def _p1(export, tmp_path) -> Path:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    return root


def _ct_dir(patient: Path) -> Path:
    (folder,) = {p.parent for p in patient.rglob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality
                 == "CT"}
    return folder


def _slice(folder: Path, k: int) -> Path:
    return sorted(folder.glob("*.dcm"))[k]


def damaged_copy(src: Path, dst: Path) -> Path:
    """A copy of ``src`` cut short in its pixel data (an interrupted copy)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) - len(data) // 4])
    return dst


def different_copy(src: Path, dst: Path) -> Path:
    """An intact file with ``src``'s SOPInstanceUID but other pixel values (an edited image kept its UID)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array.copy()
    arr[:4, :4] += 50
    ds.PixelData = arr.tobytes()
    ds.save_as(dst)
    return dst


def _row(root):
    jobs, inv = plan_cohort(root)
    return jobs[0], inv.iloc[0]


# ---- the rule, on a small synthetic series --------------------------------------------------------------------------

def test_a_damaged_copy_of_a_slice_is_left_out_and_named(export, tmp_path):
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    n = len(list(ct.glob("*.dcm")))
    job0, row0 = _row(root)
    original = _slice(ct, 5)
    copy = damaged_copy(original, root / "P1" / "extra" / "slice_copy.dcm")
    job, row = _row(root)
    assert row["ct"] == f"{n} slices" and not job.error, (row["ct"], job.error)
    assert job.inputs == job0.inputs       # the same CT as before the copy: a finished result is not redone
    assert "P1/extra/slice_copy.dcm left out: a damaged copy of CT slice P1/" + f"{ct.name}/{original.name}" in \
        row["notes"], row["notes"]
    # the CT reader, given every file: the same rule, the same image
    from lungai.io.read import read_dicom_ct_files

    files = sorted(ct.glob("*.dcm")) + [copy]
    with pytest.warns(Warning, match="slice_copy.dcm left out: a damaged copy"):
        img = read_dicom_ct_files(files, str(ct))
    ref = read_dicom_ct_files(sorted(ct.glob("*.dcm")), str(ct))
    assert img.GetSize() == ref.GetSize() and np.array_equal(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(ref))


def test_read_ct_of_a_folder_with_a_copy_of_a_slice(export, tmp_path):
    """read_ct of the series' folder: a copy of a slice there (GDCM lists it: before, "duplicate slices") is left
    out with a note; a damaged copy gives the same image, left out with a note too (GDCM passes it over without a
    word: QA, read_ct said nothing of it); a different one is refused."""
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    ref = sitk.GetArrayFromImage(read_ct(ct))
    shutil.copy(_slice(ct, 3), ct / "zz_copy.dcm")
    with pytest.warns(Warning, match="zz_copy.dcm left out: a copy of CT slice"):
        assert np.array_equal(sitk.GetArrayFromImage(read_ct(ct)), ref)
    damaged_copy(_slice(ct, 3), ct / "zz_copy.dcm")
    with pytest.warns(Warning, match="zz_copy.dcm left out: a damaged copy of CT slice"):
        assert np.array_equal(sitk.GetArrayFromImage(read_ct(ct)), ref)
    different_copy(_slice(ct, 3), ct / "zz_copy.dcm")
    with pytest.raises(InputError, match="zz_copy.dcm have the same SOPInstanceUID"):
        read_ct(ct)


def test_read_ct_names_a_truncated_slice_of_its_folder(export, tmp_path):
    """QA: a slice of the CT folder cut to three quarters (an interrupted PACS transfer), which GDCM's series listing
    passes over without a word: read_ct (segment, radiomics --image, lungs ...) said "1 slice missing - no slice
    between z = ..." naming no file, while lungai cohort named it.  Now the damaged file is named, as cohort does,
    and the series is refused (never read without that slice)."""
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    middle = _slice(ct, 17)
    damaged_copy(middle, middle)
    with pytest.raises(InputError, match=rf"CT slice {middle.name} is truncated or corrupt: its pixel data holds") \
            as exc:
        read_ct(ct)
    assert "missing" not in exc.value.problem and "re-export the CT series" in exc.value.fix
    job, row = _row(root)       # cohort: the same file, the same reason
    assert job.error and f"CT slice P1/{ct.name}/{middle.name} is truncated or corrupt" in job.error[0], job.error


def cut_in_header(path: Path) -> Path:
    """``path`` cut short inside its header, before its SeriesInstanceUID (0020,000E) (a transfer interrupted early)."""
    data = path.read_bytes()
    at = data.index(b"\x20\x00\x0e\x00", 132)
    path.write_bytes(data[:at])
    return path


def test_a_slice_cut_in_its_header_is_named_by_read_ct_and_cohort(export, tmp_path, capsys):
    """QA: the last slice of the series cut short before its SeriesInstanceUID: pydicom reads the rest without an
    error, GDCM passes it over - cohort and read_ct built the CT one slice shorter without a word (no note, no
    "unreadable" file).  Now both name it as a file that could not be read: a CT slice cut short."""
    from lungai.cli import main
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    n = len(list(ct.glob("*.dcm")))
    last = max(ct.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).
                                                   ImagePositionPatient[2]))
    cut_in_header(last)
    with pytest.warns(Warning, match=rf"1 file could not be read as DICOM: {last.name} \(truncated: a CT slice cut "
                                     r"short in its header\)"):
        assert read_ct(ct).GetSize()[2] == n - 1
    _, row = _row(root)
    assert row["ct"] == f"{n - 1} slices"
    assert f"could not be read as DICOM: {last.relative_to(root).as_posix()} (truncated: a CT slice cut short" in \
        row["notes"], row["notes"]
    main(["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "0"])
    err = capsys.readouterr().err
    assert f"could not be read as DICOM: {last.name}" in err, err


def test_an_identical_copy_is_one_slice(export, tmp_path):
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    n = len(list(ct.glob("*.dcm")))
    shutil.copy(_slice(ct, 2), root / "P1" / "again.dcm")
    job, row = _row(root)
    assert row["ct"] == f"{n} slices" and not job.error
    assert "CT slice P1/again.dcm left out: a copy of CT slice P1/" in row["notes"], row["notes"]


def test_two_different_intact_copies_fail_the_patient_naming_both(export, tmp_path):
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    original = _slice(ct, 4)
    copy = different_copy(original, root / "P1" / "edited" / "slice.dcm")
    job, row = _row(root)
    assert job.error, row["notes"]
    assert "have the same SOPInstanceUID" in job.error[0] and "P1/edited/slice.dcm" in job.error[0]
    assert original.name in job.error[0] and "move the other out" in job.error[1]
    from lungai.io.read import read_dicom_ct_files

    with pytest.raises(InputError, match="same SOPInstanceUID"):
        read_dicom_ct_files(sorted(ct.glob("*.dcm")) + [copy], str(ct))


# ---- a cohort re-run keeps the earlier result until the redo has succeeded -----------------------------------------

def _results(out: Path) -> dict:
    folder = out / "patients" / "P1"
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_rerun_with_a_damaged_slice_copy_keeps_the_result(export, tmp_path, capsys):
    """The QA case: a truncated copy of one slice added after a finished run: P1 is skipped, its result kept."""
    root = _p1(export, tmp_path)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    before = _results(out)
    damaged_copy(_slice(_ct_dir(root / "P1"), 5), root / "P1" / "extra" / "slice_copy.dcm")
    s = run_cohort(root, out, PARAMS, workers=0)
    assert s.skipped == ["P1"] and not s.failed and not s.done
    assert _results(out) == before
    assert "slice_copy.dcm left out" in pd.read_csv(out / "patients.csv").loc[0, "notes"]


def test_a_failed_redo_keeps_the_earlier_result(export, tmp_path, capsys):
    """Inputs changed (an intact but different copy of a slice): the redo fails; the earlier result stays in place,
    the error says it was kept, it is not in the new table, and the next run redoes it again (not skipped)."""
    root = _p1(export, tmp_path)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    before = _results(out)
    different_copy(_slice(_ct_dir(root / "P1"), 4), root / "P1" / "edited" / "slice.dcm")
    s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done and not s.skipped
    assert _results(out) == before                        # every file of the earlier result, unchanged
    assert not (out / "patients" / "P1" / ".lungai-new").exists()
    error = pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert "same SOPInstanceUID" in error and "earlier result in" in error and "was kept" in error, error
    assert not (out / "rp_table.csv").exists()           # never a row of other inputs than the export's
    s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.skipped
    shutil.rmtree(root / "P1" / "edited")                 # fixed: the inputs are the earlier ones again
    s = run_cohort(root, out, PARAMS, workers=0)
    assert s.skipped == ["P1"] and (out / "rp_table.csv").exists() and not (out / "errors.csv").exists()


def test_a_successful_redo_replaces_the_earlier_result(export, tmp_path):
    """A redo that succeeds replaces cohort's files of the earlier run (none left beside the new ones)."""
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    shutil.copytree(export / "P1" / "RTDOSE", root / "P1" / "RTDOSE", dirs_exist_ok=True)
    s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["P1"]
    doc = json.loads((out / "patients" / "P1" / RESULT).read_text(encoding="utf-8"))
    assert doc["inputs"]["rtdose"] and not (out / "patients" / "P1" / ".lungai-new").exists()
    assert pd.read_csv(out / "rp_table.csv").loc[0, "dose_mld_gy"] > 0


# ---- the real planning CT (LUNG1-003) --------------------------------------------------------------------------------

def _real_export(shared_data, tmp_path) -> tuple[Path, Path]:
    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    root = tmp_path / "export"
    (root / "LUNG1-003").mkdir(parents=True)
    for sub in ("CT", "RTSTRUCT"):
        (root / "LUNG1-003" / sub).symlink_to(src / sub, target_is_directory=True)
    return root, src / "CT"


@pytest.mark.shared_data
def test_real_ct_a_truncated_slice_copy_is_left_out(shared_data, patient_scratch):
    root, ct = _real_export(shared_data, patient_scratch)
    job0, _ = _row(root)
    original = sorted(ct.glob("*.dcm"))[50]
    damaged_copy(original, root / "LUNG1-003" / "extra" / "slice_copy.dcm")
    job, row = _row(root)
    assert row["ct"] == "107 slices" and not job.error, (row["ct"], job.error)
    assert job.inputs == job0.inputs and not job.ct_files     # one folder again: read_ct reads it as before
    assert (f"CT slice LUNG1-003/extra/slice_copy.dcm left out: a damaged copy of CT slice LUNG1-003/CT/"
            f"{original.name}") in row["notes"], row["notes"]


@pytest.mark.shared_data
def test_real_ct_a_truncated_slice_is_named_by_read_ct(shared_data, patient_scratch):
    """LUNG1-003 with one slice cut to 75 %: before, read_ct said "1 slice missing - no slice between z = -242.90
    and -236.90 mm", naming no file; a truncated copy beside the intact slice was left out without a word."""
    from lungai.io import read_ct

    _, src = _real_export(shared_data, patient_scratch)
    ct = patient_scratch / "CT"
    ct.mkdir()
    for f in sorted(src.glob("*.dcm")):
        (ct / f.name).symlink_to(f)
    bad = sorted(ct.glob("*.dcm"))[50]
    bad.unlink()
    damaged_copy(src / bad.name, bad)
    with pytest.raises(InputError, match=rf"CT slice {bad.name} is truncated or corrupt: its pixel data holds "
                                         r"\d+ of the 524288 bytes"):
        read_ct(ct)
    bad.unlink()
    bad.symlink_to(src / bad.name)
    damaged_copy(src / bad.name, ct / "zz_copy.dcm")
    with pytest.warns(Warning, match=rf"zz_copy.dcm left out: a damaged copy of CT slice .*{bad.name}"):
        assert read_ct(ct).GetSize()[2] == 107


@pytest.mark.shared_data
def test_real_ct_two_different_copies_of_a_slice_fail_the_patient(shared_data, patient_scratch):
    root, ct = _real_export(shared_data, patient_scratch)
    original = sorted(ct.glob("*.dcm"))[50]
    different_copy(original, root / "LUNG1-003" / "edited" / "slice.dcm")
    job, _ = _row(root)
    assert job.error and "LUNG1-003/edited/slice.dcm" in job.error[0] and original.name in job.error[0], job.error


# ---- one series under two PatientIDs, a copy under another rescale: never "the same slice" --------------------------

def _with(src: Path, dst: Path, **attributes) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(src)
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.save_as(dst)
    return dst


def test_a_ct_series_under_two_patient_ids_fails_naming_both(export, tmp_path):
    """QA (LUNG1-003 exported as 'PAT A/01' and again, with the same UIDs, as 'Z999', 30 HU higher): the second
    export's slices were "copies" of the first's ("same pixels"), the patient of the first folder by path was
    processed with the other patient's RTSTRUCT, and the other PatientID vanished from the inventory.  Which patient
    the series is cannot be told: the patient fails before any work, naming both PatientIDs and their folders."""
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    for f in sorted(ct.glob("*.dcm")):        # the same series exported again under another PatientID
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        _with(f, root / "0_Z9" / "CT" / f.name, PatientID="Z9",
              RescaleIntercept=str(float(ds.get("RescaleIntercept", 0)) + 30))
    jobs, inv = plan_cohort(root)
    assert len(jobs) == 1
    job, row = jobs[0], inv.iloc[0]
    assert job.error, row["notes"]
    assert "holds slices of 2 PatientIDs" in job.error[0], job.error
    assert "'P1': " in job.error[0] and "'Z9': " in job.error[0] and "0_Z9/CT" in job.error[0], job.error
    assert "one PatientID" in job.error[1]
    assert "has PatientID 'P1', this CT 'Z9'" in row["notes"] or row["patient_id"] == "P1", row["notes"]


def test_a_slice_copy_under_another_rescale_is_not_the_same_slice(export, tmp_path):
    """The same stored pixels with another RescaleIntercept are other Hounsfield units: two different copies (the
    patient fails naming both), not "a copy ... same pixels" with the first by path kept."""
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    original = _slice(ct, 4)
    ds = pydicom.dcmread(original, stop_before_pixels=True)
    _with(original, root / "P1" / "again" / "slice.dcm",
          RescaleIntercept=str(float(ds.get("RescaleIntercept", 0)) + 30))
    job, row = _row(root)
    assert job.error and "have the same SOPInstanceUID" in job.error[0], row["notes"]
    assert "P1/again/slice.dcm" in job.error[0] and "RescaleIntercept" in job.error[0], job.error


def test_a_note_raised_in_a_dask_worker_is_said_with_its_patient(export, tmp_path, capfd, monkeypatch):
    """QA batchnotes62: `lungai cohort --workers 1` printed the CT reader's note on a copy of a slice, raised in the
    Dask worker, as a raw Python warning ("read.py:906: InputNote: CT slice ... left out", its source line), naming
    no patient.  Now "warning: P1: CT slice P1/CT/... left out ..." as the plain loop says it (one rule,
    lungai.dask_workers.with_case_notes in run_tasks, shared with radiomics-batch)."""
    from lungai.cli import main

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    shutil.copy(_slice(ct, 3), ct / "zz_copy.dcm")
    capfd.readouterr()
    assert main(["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "1"]) == 0
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if "zz_copy.dcm left out" in line]
    # the slice named by its path under DICOM_ROOT, as cohort's inventory names it (QA readct63: by its full path)
    assert len(said) == 1 and said[0].startswith(f"warning: P1: CT slice P1/{ct.name}/zz_copy.dcm left out: a copy"), \
        err
    assert "InputNote" not in err, err


def test_a_copy_of_a_slice_among_slices_named_out_of_order_reads_the_same_ct(export, tmp_path, capsys):
    """A copy of a slice in a series folder whose file names are not in slice order (an export naming its files by
    SOPInstanceUID, as LUNG1-003's): GDCM lists such a folder by file name, so the CT was read with its slices
    scrambled (QA export69: LUNG1-003 with "copy of slice.dcm" beside its slices - 107 slices 0.71 mm apart in file
    name order, only a note of the copy said), and the DICOM objects of the results were refused ("holds 108 CT
    slices, the image has 107": lungai lungs / segment / dicom-export wrote no DICOM).  The same CT is read now, and
    its results written as DICOM referencing its 107 slices."""
    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    ct = _ct_dir(root / "P1")
    slices = sorted(ct.glob("*.dcm"))
    order = np.random.default_rng(4).permutation(len(slices))
    for k, f in enumerate(slices):          # file names out of the slices' order
        f.rename(ct / f"{order[k]:03d}.dcm")
    first = read_ct(ct)
    ref = sitk.GetArrayFromImage(first)
    shutil.copy(ct / f"{order[len(slices) // 2]:03d}.dcm", ct / "copy of slice.dcm")
    with pytest.warns(Warning, match="copy of slice.dcm left out: a copy of CT slice"):
        img = read_ct(ct)
    assert np.array_equal(sitk.GetArrayFromImage(img), ref)
    assert (img.GetOrigin(), img.GetSpacing(), img.GetDirection()) == \
        (first.GetOrigin(), first.GetSpacing(), first.GetDirection())
    reference = ct_reference(ct, image=img)
    assert len(reference.datasets) == len(slices) == img.GetSize()[2]
    tumour = sitk.Cast(img > 100, sitk.sitkUInt8)
    sitk.WriteImage(tumour, str(tmp_path / "gtv.nii.gz"))
    assert main(["dicom-export", "--ct", str(ct), "--tumour", str(tmp_path / "gtv.nii.gz"),
                 "-o", str(tmp_path / "out")]) == 0
    assert "copy of slice.dcm left out: a copy of CT slice" in capsys.readouterr().err
    seg = pydicom.dcmread(tmp_path / "out" / "results.seg.dcm", stop_before_pixels=True)
    (series,) = seg.ReferencedSeriesSequence
    assert len(series.ReferencedInstanceSequence) == len(slices)
