"""A CT series whose slice spacing changes partway, and an RTSTRUCT cut short before its frame of reference.

QA spacing63 on LUNG1-003 (real DICOM CT + RTSTRUCT):
- the 3 mm series with every other slice above its 60th left out (3 mm, then 6 mm: a planning CT reconstructed fine
  through the tumour and coarse elsewhere looks the same) was refused as "23 slices missing - no slice between
  z = -125.90 and -119.90 mm; ...", never saying that the spacing changes, where, or how to resample it;
- its RTSTRUCT cut at 700 bytes (after its Modality, before its SeriesInstanceUID and frame of reference) was said by
  ``dicom-scan`` / ``cohort`` to carry "no FrameOfReferenceUID: matched ... by its PatientID and folder", and cohort
  took the automatic lungs and tumour ("no contoured lung structures in the RTSTRUCT") - the file is truncated."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from cohort_helpers import export  # noqa: F401 - export: the module's fixture
from lungai.errors import InputError
from lungai.io.validate import MissingSlicesError, SpacingChangeError, check_slice_positions


def _raised(z, **kw) -> InputError:
    with pytest.raises(InputError) as err:
        check_slice_positions(z, "CT x", **kw)
    return err.value


def test_a_spacing_that_doubles_partway_is_named_a_change_with_its_one_ambiguity():
    """3 mm for 60 steps, then 6 mm for 23: where, from what to what; that it may instead be every other slice
    missing (the positions cannot tell); both fixes.  Before: "23 slices missing" (a MissingSlicesError)."""
    z = np.concatenate([np.arange(61) * 3.0, 180.0 + np.arange(1, 24) * 6.0])
    err = _raised(z)
    assert isinstance(err, SpacingChangeError) and not isinstance(err, MissingSlicesError), err
    assert "missing - no slice" not in err.problem, err.problem
    assert "the slice spacing changes from 3.000 to 6.000 mm at z = 180.00 mm" in err.problem, err.problem
    assert "3.000 mm from z = 0.00 to 180.00 mm, 60 steps; 6.000 mm from z = 180.00 to 318.00 mm, 23 steps" \
        in err.problem, err.problem
    assert "are 2 x 3.000 mm: the same positions as every other slice missing there (23 slices" in err.problem
    assert "cannot tell the two apart" in err.problem
    assert err.could_be_missing == 23
    assert err.fix.startswith("if the series was acquired with these spacings, resample it to one slice spacing: ")
    assert "'harden regularization transform'" in err.fix and "save the volume as .nrrd" in err.fix, err.fix
    assert err.fix.endswith("if slices are missing, re-export the full series (every slice) from the PACS or "
                            "planning system"), err.fix


def test_a_spacing_change_that_is_no_multiple_is_no_missing_slice_and_fine_runs_are_each_named():
    err = _raised(np.concatenate([np.arange(30) * 3.0, 87.0 + np.arange(1, 20) * 5.0]))      # 3 mm, then 5 mm
    assert isinstance(err, SpacingChangeError) and err.could_be_missing == 0
    assert "changes from 3.000 to 5.000 mm at z = 87.00 mm" in err.problem and "missing" not in err.problem
    assert err.fix.startswith("resample it to one slice spacing: have the scanner / planning system export"), err.fix
    # fine through the tumour, coarse elsewhere: 5 mm, 2.5 mm, 5 mm - both changes named
    err = _raised(np.concatenate([np.arange(20) * 5.0, 95.0 + np.arange(1, 30) * 2.5, 167.5 + np.arange(1, 20) * 5.0]))
    assert "changes from 5.000 to 2.500 mm at z = 95.00 mm; from 2.500 to 5.000 mm at z = 167.50 mm" in err.problem
    assert err.could_be_missing == 38, err.could_be_missing
    # an RTDOSE passes its own way to resample, and no frame can be missing from its grid: a doubled step is a change
    err = _raised(np.concatenate([np.arange(30) * 3.0, 87.0 + np.arange(1, 20) * 5.0]), resample="export the dose X")
    assert err.fix == "resample it to one slice spacing: export the dose X"
    err = _raised(np.concatenate([np.arange(61) * 2.5, 150.0 + np.arange(1, 24) * 5.0]), resample="export the dose X",
                  may_miss=False)
    assert err.fix == "resample it to one slice spacing: export the dose X" and "missing" not in err.problem, err


def test_a_gap_inside_a_changed_spacing_is_counted_at_the_spacing_around_it():
    """3 mm, then 5 mm with one 10 mm step: the change named, and 1 slice missing at 5 mm - not a "5 mm mostly"
    series or slices missing at 3 mm."""
    err = _raised(np.concatenate([np.arange(30) * 3.0, 87.0 + np.arange(1, 10) * 5.0, 142.0 + np.arange(10) * 5.0]))
    assert isinstance(err, SpacingChangeError) and err.could_be_missing == 1, err
    assert "changes from 3.000 to 5.000 mm at z = 87.00 mm" in err.problem, err.problem
    assert "besides, 1 slice missing at the spacing around it - no slice between z = 132.00 and 142.00 mm" \
        in err.problem, err.problem
    assert err.fix.startswith("re-export the full series (every slice) from the PACS or planning system, then "
                              "resample it to one slice spacing: "), err.fix


def test_a_few_gaps_are_still_missing_slices():
    """Two alternating gaps (2 doubled steps: a run too short to be a spacing) and single gaps: missing slices."""
    err = _raised(np.concatenate([np.arange(30) * 3.0, 87.0 + np.arange(1, 3) * 6.0, 99.0 + np.arange(1, 30) * 3.0]))
    assert isinstance(err, MissingSlicesError) and err.problem.startswith("CT x: 2 slices missing - no slice between")
    err = _raised(np.concatenate([np.arange(30) * 3.0, 90.0 + np.arange(1, 30) * 3.0]))
    assert isinstance(err, MissingSlicesError) and "1 slice missing" in err.problem


def _spaced_series(folder: Path) -> list[Path]:
    """A 20-slice synthetic CT series at 3 mm, every other slice from the 9th on left out: 3 mm, then 6 mm."""
    from lungai.dicom.synthetic import write_ct_series

    arr = np.full((20, 16, 16), -1000, np.int16)
    arr[:, 4:12, 4:12] = 40
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 3.0))
    img.SetOrigin((-6.0, -6.0, -100.0))
    write_ct_series(img, folder, patient_id="SP1")
    files = sorted(folder.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True)
                                                             .ImagePositionPatient[2]))
    for f in files[9::2]:
        f.unlink()
    return [f for f in files if f.exists()]


def test_read_ct_and_dicom_scan_name_a_change_of_slice_spacing(tmp_path, capsys):
    from lungai.cli import main
    from lungai.io import read_ct

    files = _spaced_series(tmp_path / "CT")
    with pytest.raises(SpacingChangeError) as err:
        read_ct(tmp_path / "CT")
    assert "changes from 3.000 to 6.000 mm at z = -76.00 mm" in err.value.problem, err.value.problem
    assert "every other slice missing there (5 slices" in err.value.problem, err.value.problem
    main(["dicom-scan", str(tmp_path)])
    out = capsys.readouterr().out
    assert "the slice spacing changes from 3.000 to 6.000 mm at z = -76.00 mm" in out and "missing - no slice" \
        not in out, out
    # a file cut in its header beside it (a slice copied half way): named, as maybe one of the slices missing
    data = files[-2].read_bytes()
    (tmp_path / "CT" / "cut.dcm").write_bytes(data[:data.index(b"\x20\x00\x0e\x00", 132)])   # before its series UID
    with pytest.raises(SpacingChangeError) as err:
        read_ct(tmp_path / "CT")
    assert ("1 file could not be read as DICOM: cut.dcm (truncated: a CT slice cut short in its header): if slices "
            "are missing, it is most likely among them") in err.value.problem, err.value.problem
    assert err.value.fix.endswith("re-export that file and replace it"), err.value.fix


SERIES_UID = b"\x20\x00\x0e\x00"         # (0020,000E) SeriesInstanceUID
REFERENCED_FRAME = b"\x06\x30\x10\x00"   # (3006,0010) ReferencedFrameOfReferenceSequence


def _cut_rtstruct(export, tmp_path, tag: bytes) -> tuple[Path, Path]:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    data = rs.read_bytes()
    assert data.index(b"\x08\x00\x60\x00", 132) < data.index(SERIES_UID, 132) < data.index(REFERENCED_FRAME, 132)
    rs.write_bytes(data[:data.index(tag, 132)])    # after its Modality, before the tag
    return root, rs


@pytest.mark.parametrize("tag", [SERIES_UID, REFERENCED_FRAME], ids=["before-series-uid", "before-frame"])
def test_an_rtstruct_cut_after_its_modality_is_a_file_cut_short_not_frameless(export, tmp_path, capsys, tag):
    from lungai.cli import main
    from lungai.dicom.cohort import plan_cohort

    root, rs = _cut_rtstruct(export, tmp_path, tag)
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    assert f"1 file could not be read as DICOM: {rs.relative_to(root).as_posix()} (truncated: an RTSTRUCT cut short in its header)" in out, out
    assert "FrameOfReferenceUID" not in out, out
    _, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert "WARNING: no readable RTSTRUCT" in row["notes"] and "FrameOfReferenceUID" not in row["notes"], row["notes"]
    assert "its RTSTRUCT is truncated" in row["tumour_from"], row["tumour_from"]
    # given by name (--rtstruct FILE): refused as truncated - before, "carries no FrameOfReferenceUID", then "holds: no
    # structures"
    from lungai.dicom.rtstruct import read_structures

    with pytest.raises(InputError, match=r"the RTSTRUCT .* is truncated: it ends after \d+ bytes, before its "
                                         r"StructureSetROISequence") as err:
        read_structures(rs)
    assert err.value.fix.startswith("re-export the RTSTRUCT"), err.value.fix


@pytest.mark.shared_data
def test_real_lung1_003_spacing_change_and_cut_rtstruct(shared_data, patient_scratch, capsys):
    from lungai.cli import main
    from lungai.io import read_ct
    from patient_scratch import link_files

    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    ct = sorted((src / "CT").glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True)
                                                                .ImagePositionPatient[2]))
    link_files([f for i, f in enumerate(ct) if i <= 60 or (i - 60) % 2 == 0], patient_scratch / "P" / "CT")
    with pytest.raises(SpacingChangeError) as err:
        read_ct(patient_scratch / "P" / "CT")
    assert "the slice spacing changes from 3.000 to 6.000 mm at z = -125.90 mm" in err.value.problem
    assert "every other slice missing there (23 slices" in err.value.problem, err.value.problem
    # the RTSTRUCT cut at 700 bytes, beside the full CT
    shutil.rmtree(patient_scratch / "P" / "CT")
    link_files(ct, patient_scratch / "P" / "CT")
    (rs,) = (src / "RTSTRUCT").glob("*.dcm")
    (patient_scratch / "P" / "RTSTRUCT").mkdir()
    for at in (700, 1100):      # before its SeriesInstanceUID (at 988); after it, before its frame of reference
        (patient_scratch / "P" / "RTSTRUCT" / "rs.dcm").write_bytes(rs.read_bytes()[:at])
        main(["dicom-scan", str(patient_scratch / "P")])
        out = capsys.readouterr().out
        assert "rs.dcm (truncated: an RTSTRUCT cut short in its header)" in out and "FrameOfReferenceUID" not in out, \
            (at, out)


def test_an_rtdose_whose_frame_spacing_doubles_is_a_change_only(tmp_path):
    """An RTDOSE's GridFrameOffsetVector is its grid as planned (no frame can be lost from one file): 2.5 mm frames,
    then 5 mm, are a change of spacing with the dose's own fix - no "slices missing"."""
    from dose_helpers import write_rtdose
    from lungai.dose.read import read_dose

    grid = sitk.Image(8, 8, 12, sitk.sitkFloat32)
    grid.SetSpacing((3.0, 3.0, 2.5))
    grid.SetOrigin((-12.0, -12.0, -6.0))
    f = write_rtdose(grid + 2.0, tmp_path / "rd.dcm")
    ds = pydicom.dcmread(f)
    ds.GridFrameOffsetVector = [2.5 * k for k in range(6)] + [12.5 + 5.0 * k for k in range(1, 7)]
    ds.save_as(str(f))
    with pytest.raises(SpacingChangeError) as err:
        read_dose(f)
    assert "the slice spacing changes from 2.500 to 5.000 mm at offset = 12.50 mm" in err.value.problem, err.value
    assert "missing" not in err.value.problem and err.value.could_be_missing == 0, err.value.problem
    assert err.value.fix == ("resample it to one slice spacing: export the dose from the planning system on a regular "
                             "grid (one frame spacing)"), err.value.fix
