"""DICOM files that could not be read (cut short in their header: an interrupted copy or PACS transfer) are named by
every reader of an export - never a bare "1 slice missing", never dropped without a word - and ``lungai cohort``
names the export's files by their path under DICOM_ROOT in every message, its terminal notes included.

QA readct63 on LUNG1-003 (real DICOM CT + RTSTRUCT):
- a middle CT slice cut inside its header: "1 slice missing - no slice between z = -158.90 and -152.90 mm",
  naming no file (a warning before it did, from the CT folder only; given the export folder, none at all);
- ``read_ct`` of the export folder (the CT found below it by scanning) with the last slice cut so: a CT one slice
  shorter, without a word;
- an RTSTRUCT cut within its first 550 bytes (before its Modality): ``dicom-scan`` "missing RTSTRUCT", no unreadable
  file, and cohort took the automatic lungs and tumour silently;
- ``lungai cohort``'s notes said on the terminal named the RTSTRUCT by its full path
  ("note: LUNG1-003: the RTSTRUCT /tmp/.../RTSTRUCT/1.3...dcm ..."), its inventory by its path under DICOM_ROOT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from cohort_helpers import export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import plan_cohort
from lungai.errors import InputError


def _p1(export, tmp_path) -> Path:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    return root


def _ct_slices(patient: Path) -> list[Path]:
    """The CT slice files of the patient's folder, sorted along z."""
    heads = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in patient.rglob("*.dcm")}
    return sorted((p for p, d in heads.items() if d.Modality == "CT"), key=lambda p: float(
        heads[p].ImagePositionPatient[2]))


def cut_before(path: Path, tag: bytes) -> Path:
    """``path`` cut short inside its header, just before the element ``tag`` (group, element little endian)."""
    data = path.read_bytes()
    path.write_bytes(data[:data.index(tag, 132)])
    return path


SERIES_UID = b"\x20\x00\x0e\x00"     # (0020,000E) SeriesInstanceUID
MODALITY = b"\x08\x00\x60\x00"       # (0008,0060) Modality
SOP_CLASS = b"\x08\x00\x16\x00"      # (0008,0016) SOPClassUID


@pytest.mark.parametrize("tag", [SERIES_UID, SOP_CLASS], ids=["before-series-uid", "before-sop-class"])
def test_a_missing_slice_error_names_the_slice_cut_in_its_header(export, tmp_path, tag):
    """A middle slice cut in its header (before its SeriesInstanceUID; or within its first bytes, before its
    SOPClassUID and Modality - before, passed over without any word): the refusal names the file and the fix."""
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    middle = cut_before(_ct_slices(root / "P1")[10], tag)
    ct = middle.parent
    with pytest.raises(InputError) as exc:
        read_ct(ct)
    assert "1 slice missing" in exc.value.problem
    said = "truncated: a CT slice cut short in its header" if tag == SERIES_UID else "truncated or damaged"
    assert f"1 file could not be read as DICOM: {middle.name} ({said}" in exc.value.problem, exc.value.problem
    assert "most likely the missing slice" in exc.value.problem
    assert exc.value.fix.startswith("re-export that file"), exc.value.fix
    # the export folder given (the CT found below it): the same refusal, the file named by its path under it
    with pytest.raises(InputError) as exc:
        read_ct(root / "P1")
    assert f"could not be read as DICOM: {ct.name}/{middle.name} (truncated" in exc.value.problem, exc.value.problem


def test_read_ct_of_an_export_folder_warns_of_its_unreadable_files(export, tmp_path):
    """The last slice cut in its header, the export folder given: the CT is one slice shorter - said, naming it."""
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    slices = _ct_slices(root / "P1")
    last = cut_before(slices[-1], SERIES_UID)
    with pytest.warns(Warning, match=rf"1 file could not be read as DICOM: {last.parent.name}/{last.name} "
                                     r"\(truncated: a CT slice cut short in its header\); re-export it"):
        assert read_ct(root / "P1").GetSize()[2] == len(slices) - 1


@pytest.mark.parametrize("at", [300, 500], ids=["empty-header", "before-modality"])
def test_an_rtstruct_cut_before_its_modality_is_an_unreadable_file(export, tmp_path, at, capsys):
    """An RTSTRUCT cut within its first bytes: pydicom reads a header without Modality, no error.  Before, dicom-scan
    said "missing RTSTRUCT" and cohort took the automatic lungs and tumour without a note of an unreadable file."""
    from lungai.cli import main

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    rs.write_bytes(rs.read_bytes()[:at])
    jobs, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert f"could not be read as DICOM: {rs.relative_to(root).as_posix()}" in row["notes"], row["notes"]
    assert "WARNING: no readable RTSTRUCT" in row["notes"] and "unreadable file may be its RTSTRUCT" in \
        row["tumour_from"], (row["notes"], row["tumour_from"])
    main(["dicom-scan", str(root)])
    out = capsys.readouterr()
    assert f"could not be read as DICOM: {rs.relative_to(root).as_posix()}" in out.out + out.err


def test_a_dicomdir_is_no_unreadable_file(tmp_path):
    """A DICOMDIR (no Modality: a media directory) stays no unreadable file."""
    from pydicom.fileset import FileSet

    from lungai.dicom.discover import _header, cut_short_header

    FileSet().write(tmp_path)
    ds = _header(tmp_path / "DICOMDIR")
    assert ds is not None and not cut_short_header(ds)


def test_cohort_terminal_notes_name_the_rtstruct_under_dicom_root(export, tmp_path, capsys):
    """An RTSTRUCT drawn on another series of the CT's frame of reference: the planning note names it under
    DICOM_ROOT (P1/RTSTRUCT/...), and so does the note read_rtstruct raises while the patient is processed (before,
    by its full path); so does the error of a failing patient."""
    from pydicom.uid import generate_uid

    from lungai.cli import main

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    ds = pydicom.dcmread(rs)
    for frame in ds.ReferencedFrameOfReferenceSequence:
        for study in frame.RTReferencedStudySequence:
            for series in study.RTReferencedSeriesSequence:
                series.SeriesInstanceUID = generate_uid()
    ds.save_as(rs)
    main(["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "0"])
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "the structures were drawn on series" in line]
    assert said and all(f"P1/RTSTRUCT/{rs.name}" in line for line in said), err
    assert str(root) + "/" not in err, err


def test_shown_paths_in_names_paths_under_the_root():
    from lungai.dicom.discover import shown_paths_in

    text = "the RTSTRUCT /x/exp/P1/RS.dcm (/x/exp/P2/a.dcm); in /x/exp; /x/export/P3/b.dcm; y/x/exp/P1"
    assert shown_paths_in(text, "/x/exp") == ("the RTSTRUCT P1/RS.dcm (P2/a.dcm); in /x/exp; /x/export/P3/b.dcm; "
                                              "y/x/exp/P1")
    assert shown_paths_in("/x/exp/P1/RS.dcm", "/x/exp/") == "P1/RS.dcm"
    assert shown_paths_in(text, "") == text



def _cut_after_modality(export, tmp_path, tag: bytes) -> tuple[Path, Path]:
    """P1 with its RTSTRUCT cut after its Modality, before ``tag``: a file known to be an RTSTRUCT, cut short."""
    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    data = rs.read_bytes()
    rs.write_bytes(data[:data.index(tag, 132)])
    return root, rs


AFTER_MODALITY = pytest.mark.parametrize("tag", [b"\x20\x00\x0e\x00", b"\x06\x30\x10\x00"],
                                         ids=["before-series-uid", "before-frame"])


@AFTER_MODALITY
def test_an_rtstruct_cut_short_is_not_missing_in_the_summary(export, tmp_path, capsys, tag):
    """An RTSTRUCT cut after its Modality (before its SeriesInstanceUID / frame of reference) is known to be an
    RTSTRUCT.  QA scansum63 on LUNG1-003 (its RTSTRUCT cut at 700 bytes): dicom-scan's summary said "missing
    RTSTRUCT" above the warning that named the file an RTSTRUCT cut short."""
    from lungai.cli import main

    root, _ = _cut_after_modality(export, tmp_path, tag)
    main(["dicom-scan", str(root)])
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("P1:")]
    assert "missing RTSTRUCT" not in summary and "RTSTRUCT there but unreadable (truncated)" in summary, summary
    assert "1 unreadable DICOM file" in summary, summary


@AFTER_MODALITY
def test_an_unreadable_file_is_named_by_its_path_under_the_root(export, tmp_path, capsys, tag):
    """dicom-scan's and cohort's note of an unreadable file names it by its path under DICOM_ROOT, as every other
    note names a file (QA scansum63: by its file name alone, a bare 1.3...dcm / RS.dcm of which every patient folder
    may have one)."""
    from lungai.cli import main

    root, rs = _cut_after_modality(export, tmp_path, tag)
    under = rs.relative_to(root).as_posix()
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    assert f"1 file could not be read as DICOM: {under} (truncated: an RTSTRUCT cut short" in out, out
    _, inv = plan_cohort(root)
    assert f"could not be read as DICOM: {under} (truncated" in inv.iloc[0]["notes"], inv.iloc[0]["notes"]


def test_an_rtstruct_cut_before_its_modality_stays_missing(export, tmp_path, capsys):
    """What the file is is not known (cut before its Modality): the summary still says "missing RTSTRUCT"."""
    from lungai.cli import main

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    rs.write_bytes(rs.read_bytes()[:300])
    main(["dicom-scan", str(root)])
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("P1:")]
    assert "missing RTSTRUCT" in summary and "RTSTRUCT there but unreadable" not in summary, summary
