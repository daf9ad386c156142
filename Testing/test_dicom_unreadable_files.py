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

import re
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
    SOPClassUID and Modality - before, passed over without any word): the refusal names the file and the fix - a CT
    slice either way, its file meta's MediaStorageSOPClassUID saying so when its data set no longer does (QA cohort67:
    "truncated or damaged")."""
    from lungai.io import read_ct

    root = _p1(export, tmp_path)
    middle = cut_before(_ct_slices(root / "P1")[10], tag)
    ct = middle.parent
    with pytest.raises(InputError) as exc:
        read_ct(ct)
    assert "1 slice missing" in exc.value.problem
    said = "truncated: a CT slice cut short in its header"
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


# where an RTSTRUCT is cut within its first bytes: inside its file meta before MediaStorageSOPClassUID (what it is not
# known), after the file meta (its SOP class there), before its Modality (its data set's SOPClassUID there too)
BEFORE_META_CLASS, AFTER_META, BEFORE_MODALITY = 150, 300, 500


@pytest.mark.parametrize("at", [BEFORE_META_CLASS, AFTER_META, BEFORE_MODALITY],
                         ids=["no-sop-class", "empty-header", "before-modality"])
def test_an_rtstruct_cut_before_its_modality_is_an_unreadable_file(export, tmp_path, at, capsys):
    """An RTSTRUCT cut within its first bytes: pydicom reads a header without Modality, no error.  Before, dicom-scan
    said "missing RTSTRUCT" and cohort took the automatic lungs and tumour without a note of an unreadable file.  Its
    SOP class read (the file meta's, the data set's): the RTSTRUCT is said truncated (QA cohort67), else an unreadable
    file may be it."""
    from lungai.cli import main

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    rs.write_bytes(rs.read_bytes()[:at])
    jobs, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert f"could not be read as DICOM: {rs.relative_to(root).as_posix()}" in row["notes"], row["notes"]
    why = "unreadable file may be its RTSTRUCT" if at == BEFORE_META_CLASS else "its RTSTRUCT is truncated"
    assert "WARNING: no readable RTSTRUCT" in row["notes"] and why in row["tumour_from"], (row["notes"],
                                                                                          row["tumour_from"])
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
    """What the file is is not known (cut before its Modality and its file meta's MediaStorageSOPClassUID): the
    summary still says "missing RTSTRUCT"."""
    from lungai.cli import main

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    data = rs.read_bytes()
    assert data.index(b"\x02\x00\x02\x00", 132) >= BEFORE_META_CLASS       # (0002,0002) MediaStorageSOPClassUID
    rs.write_bytes(data[:BEFORE_META_CLASS])
    main(["dicom-scan", str(root)])
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("P1:")]
    assert "missing RTSTRUCT" in summary and "RTSTRUCT there but unreadable" not in summary, summary


# an RTSTRUCT cut inside one of its sequences (any interrupted copy of a structure set past its first ~1 kB): the
# element it ends in, found by its tag (group, element little endian) and cut a few bytes into its value
REFERENCES = b"\x06\x30\x10\x00"      # (3006,0010) ReferencedFrameOfReferenceSequence
CONTOURS = b"\x06\x30\x39\x00"        # (3006,0039) ROIContourSequence
INSIDE = pytest.mark.parametrize("tag", [REFERENCES, CONTOURS], ids=["inside-references", "inside-contours"])


def _cut_inside(export, tmp_path, tag: bytes) -> tuple[Path, Path]:
    """P1 with its RTSTRUCT cut 40 bytes into the value of its top-level element ``tag`` (a sequence)."""
    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    data = rs.read_bytes()
    rs.write_bytes(data[:data.index(tag, 132) + 12 + 40])     # tag, explicit VR SQ header (12 bytes), 40 bytes
    return root, rs


@pytest.mark.parametrize("cut", ["before-frame", "inside-references", "inside-contours"])
def test_a_truncated_rtstruct_is_not_missing_in_the_json_nor_in_patients_csv(export, tmp_path, capsys, cut):
    """An RTSTRUCT there but cut short is named truncated, with its file and the fix, not listed as missing.  QA
    dicommiss64 on LUNG1-003 (its RTSTRUCT cut short): ``dicom-scan --json``'s "missing" and cohort's patients.csv
    ``missing`` column said RTSTRUCT (the patients.csv ``rtstruct`` cell empty) although the summary line said it
    "there but unreadable (truncated)"; cut inside its ReferencedFrameOfReferenceSequence or its contours the
    summary said "missing RTSTRUCT" too."""
    import json

    from lungai.cli import main

    root, rs = (_cut_after_modality(export, tmp_path, b"\x06\x30\x10\x00") if cut == "before-frame"
                else _cut_inside(export, tmp_path, REFERENCES if cut == "inside-references" else CONTOURS))
    under = rs.relative_to(root).as_posix()
    out = tmp_path / "scan.json"
    main(["dicom-scan", str(root), "--json", str(out)])
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("P1:")]
    assert "missing RTSTRUCT" not in summary and "RTSTRUCT there but unreadable (truncated)" in summary, summary
    (entry,) = json.loads(out.read_text())
    assert "RTSTRUCT" not in entry["missing"], entry
    assert entry["truncated"] == {"RTSTRUCT": [str(rs)]}, entry
    _, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert "RTSTRUCT" not in row["missing"], row["missing"]
    assert row["rtstruct"] == f"{under} (truncated: re-export it)", row["rtstruct"]
    assert f"WARNING: no readable RTSTRUCT: its RTSTRUCT {under} could not be read as DICOM (truncated)" \
        in row["notes"], row["notes"]
    assert "its RTSTRUCT is truncated" in row["tumour_from"], row["tumour_from"]


def test_another_patients_truncated_rtstruct_leaves_this_one_missing(export, tmp_path):
    """A flat folder of two patients (the cut file attached to both, either may own it): the PatientID in the cut
    file's header tells whose RTSTRUCT it is - the other patient's RTSTRUCT stays missing."""
    root, rs = _cut_inside(export, tmp_path, CONTOURS)
    ds = pydicom.dcmread(_ct_slices(root / "P1")[0], stop_before_pixels=True)
    assert ds.PatientID == "P1"
    from lungai.dicom.discover import Study

    other = Study(patient_id="P2", study_uid="", frame_of_reference_uid=None, unreadable=[rs])
    mine = Study(patient_id="P1", study_uid="", frame_of_reference_uid=None, unreadable=[rs])
    assert "RTSTRUCT" in other.missing and other.truncated == {}
    assert "RTSTRUCT" not in mine.missing and mine.truncated == {"RTSTRUCT": [rs]}


@INSIDE
def test_an_rtstruct_cut_inside_a_sequence_is_named_with_where_it_ends(export, tmp_path, capsys, tag):
    """Cut inside its ReferencedFrameOfReferenceSequence (QA dicommiss64: LUNG1-003's RTSTRUCT cut at 1300 or 5000
    bytes) or its contours: pydicom's header read fails, so the file was of no known kind - "truncated or damaged;
    it may be this patient's RTSTRUCT, RTDOSE or CT slice".  Now: an RTSTRUCT, where it ends, and the fix."""
    from lungai.cli import main

    root, rs = _cut_inside(export, tmp_path, tag)
    under = rs.relative_to(root).as_posix()
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    where = ("inside its ReferencedFrameOfReferenceSequence (the frame of reference and CT series its contours are "
             "drawn on)" if tag == REFERENCES else "inside its ROIContourSequence (its contours)")
    assert (f"1 file could not be read as DICOM: {under} (truncated: an RTSTRUCT cut short {where}, so none of its "
            "structures can be read); re-export it from the planning system or PACS") in out, out


@INSIDE
def test_reading_an_rtstruct_cut_inside_a_sequence_says_it_is_truncated(export, tmp_path, tag):
    """``--rtstruct FILE`` of such a file (the fix of the folder's refusal: give it alone): before, "is not a readable
    DICOM file (No tag to read at file position 514)", fix "give the RTSTRUCT .dcm file" - the file given."""
    from lungai.dicom.rtstruct import list_structures

    _, rs = _cut_inside(export, tmp_path, tag)
    with pytest.raises(InputError) as exc:
        list_structures(rs)
    assert f"the RTSTRUCT {rs} is truncated: it ends after {rs.stat().st_size} bytes, inside its " \
        f"{'ReferencedFrameOfReferenceSequence' if tag == REFERENCES else 'ROIContourSequence'}" in exc.value.problem, \
        exc.value.problem
    assert exc.value.fix.startswith("re-export the RTSTRUCT from the planning system"), exc.value.fix


def test_an_explicit_vr_rtstruct_cut_between_its_contour_items_is_truncated_not_one_structure_less(export, tmp_path,
                                                                                                     capsys):
    """An explicit VR RTSTRUCT (sequences of defined length, as pydicom and many planning systems write them) cut
    after its second ROIContourSequence item: pydicom reads it without an error, its last structure's contours gone.
    QA dicommiss64: before, dicom-scan listed "1 RTSTRUCT" and read_structures gave Lung_L without contours (cut
    inside an item: an AttributeError traceback); now the file is named truncated, where it ends and the fix."""
    import struct

    from lungai.cli import main
    from lungai.dicom.rtstruct import contoured_structures

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    data = rs.read_bytes()
    assert pydicom.dcmread(rs).file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    at = data.index(CONTOURS, 132) + 12             # the first item: tag, explicit VR SQ header (12 bytes)
    for _ in range(2):                              # past the first two items (GTV, Lung_R): tag, length, value
        assert data[at:at + 4] == b"\xfe\xff\x00\xe0"
        at += 8 + struct.unpack("<I", data[at + 4:at + 8])[0]
    rs.write_bytes(data[:at])
    with pytest.raises(InputError) as exc:
        contoured_structures(rs)
    assert f"is truncated: it ends after {at} bytes, inside its ROIContourSequence (its contours)" in \
        exc.value.problem, exc.value.problem
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if line.startswith("P1:")]
    assert "0 RTSTRUCT" in summary and "RTSTRUCT there but unreadable (truncated)" in summary, summary
    assert "an RTSTRUCT cut short inside its ROIContourSequence (its contours)" in out, out


def test_a_truncated_rtdose_is_named_not_missing_in_patients_csv(export, tmp_path):
    """An RTDOSE cut short in its header (after its Modality): patients.csv's rtdose cell names it with the fix,
    ``missing`` does not list it and dose_features says why there are none (before: "missing RTDOSE", "no")."""
    root = _p1(export, tmp_path)
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    rd.write_bytes(rd.read_bytes()[:rd.read_bytes().index(SERIES_UID, 132)])
    _, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert row["missing"] == "" and row["rtdose"] == f"{rd.relative_to(root).as_posix()} (truncated: re-export it)", \
        (row["missing"], row["rtdose"])
    assert row["dose_features"] == "no (RTDOSE truncated: re-export it)", row["dose_features"]


def test_an_rtdose_cut_inside_its_pixel_data_is_named_truncated_by_the_scan(export, tmp_path, capsys):
    """P1's RTDOSE less its last 5000 bytes (cut inside its pixel data, its header whole; QA dosecut64):
    ``dicom-scan`` listed "1 RTDOSE" without a word, the dose reading refusing it only later (cohort: "(refused)").
    Now the scan names it truncated - from the pixel data's declared length against the file's size, not reading
    it - and cohort's patients.csv says to re-export it, as for an RTDOSE cut in its header."""
    import json

    from lungai.cli import main
    from lungai.dicom.cohort import inventory_warnings
    from lungai.dicom.discover import read_to_end, scan

    root = _p1(export, tmp_path)
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    head, cut = read_to_end(rd, pixels=False)
    assert cut is None and "PixelData" not in head and "DoseGridScaling" in head    # whole: up to its pixel data
    assert [st.rtdose for st in scan(root)] == [[rd]]
    rd.write_bytes(rd.read_bytes()[:-5000])
    assert read_to_end(rd, pixels=False)[1] == "PixelData"
    (st,) = scan(root)
    assert st.rtdose == [] and st.unreadable == [rd] and st.truncated == {"RTDOSE": [rd]}, st.summary()
    assert "RTDOSE" not in st.missing, st.summary()
    main(["dicom-scan", str(root), "--json", str(tmp_path / "scan.json")])
    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if line.startswith("P1:")]
    assert "0 RTDOSE" in summary and "RTDOSE there but unreadable (truncated)" in summary, summary
    assert ("1 file could not be read as DICOM: P1/RTDOSE/rtdose.dcm (truncated: an RTDOSE cut short inside its "
            "PixelData); re-export it") in out, out
    (doc,) = json.loads((tmp_path / "scan.json").read_text())
    assert doc["truncated"] == {"RTDOSE": [str(rd)]} and doc["missing"] == [], doc
    jobs, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert row["missing"] == "" and row["rtdose"] == "P1/RTDOSE/rtdose.dcm (truncated: re-export it)", row["rtdose"]
    assert row["dose_features"] == "no (RTDOSE truncated: re-export it)", row["dose_features"]
    assert ("P1: no dose features - its RTDOSE P1/RTDOSE/rtdose.dcm is truncated; re-export it from the planning "
            "system and run again") in inventory_warnings(jobs, inv)                   # said on the terminal too


# an RTDOSE cut cleanly between two elements of its header, after its SeriesInstanceUID: just before its
# FrameOfReferenceUID, just before its ReferencedRTPlanSequence, just before its PixelData
DOSE_CUTS = {"before-frame": b"\x20\x00\x52\x00", "before-plan-sequence": b"\x0c\x30\x02\x00",
             "before-pixel-data": b"\xe0\x7f\x10\x00"}


@pytest.mark.parametrize("cut", list(DOSE_CUTS))
def test_an_rtdose_cut_between_its_header_elements_is_truncated_not_a_dose(export, tmp_path, capsys, cut):
    """QA dose65: P1's RTDOSE (with a ReferencedRTPlanSequence) cut between two elements after its SeriesInstanceUID -
    pydicom reads what is there without an error, no element cut in two - was "1 RTDOSE" in ``dicom-scan``; cut
    before its FrameOfReferenceUID it was noted to "carry no FrameOfReferenceUID: matched ... by its PatientID P1
    and its folder only" and cohort failed P1 "has no DoseUnits ... (DoseUnits is a mandatory tag)"; cut before its
    pixel data, "(refused)".  Now the scan names it truncated (an RTDOSE ends with its pixel data), as an RTDOSE
    cut inside its pixel data, and cohort says to re-export it."""
    from pydicom.dataset import Dataset

    from lungai.cli import main
    from lungai.dicom.discover import scan

    root = _p1(export, tmp_path)
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    ds = pydicom.dcmread(rd)
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.5", "1.2.3.4"
    ds.ReferencedRTPlanSequence = [ref]
    ds.save_as(rd)
    data = rd.read_bytes()
    assert data.index(SERIES_UID, 132) < data.index(DOSE_CUTS[cut], 132)
    rd.write_bytes(data[:data.index(DOSE_CUTS[cut], 132)])
    (st,) = scan(root)
    assert st.rtdose == [] and st.unreadable == [rd] and st.truncated == {"RTDOSE": [rd]}, st.summary()
    assert not any("FrameOfReferenceUID" in n for n in st.notes), st.notes
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if line.startswith("P1:")]
    assert "0 RTDOSE" in summary and "RTDOSE there but unreadable (truncated)" in summary, summary
    assert ("1 file could not be read as DICOM: P1/RTDOSE/rtdose.dcm (truncated: an RTDOSE cut short in its "
            "header); re-export it") in out, out
    _, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert row["missing"] == "" and row["rtdose"] == "P1/RTDOSE/rtdose.dcm (truncated: re-export it)", row["rtdose"]
    assert row["dose_features"] == "no (RTDOSE truncated: re-export it)", row["dose_features"]
    assert "DoseUnits" not in row["notes"] and "FrameOfReferenceUID" not in row["notes"], row["notes"]


def test_a_dvh_only_rtdose_is_not_taken_for_a_truncated_one(export, tmp_path):
    """An RTDOSE holding DVHs only (no grid, no pixel data: DICOM PS3.3 A.18.3) is whole: listed as an RTDOSE (the
    dose reading then leaves it out beside a grid, or refuses it alone naming it DVH-only), not named truncated."""
    from pydicom.dataset import Dataset

    from lungai.dicom.discover import scan

    root = _p1(export, tmp_path)
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    ds = pydicom.dcmread(rd)
    for keyword in ("PixelData", "Rows", "Columns", "NumberOfFrames", "FrameIncrementPointer", "GridFrameOffsetVector",
                    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "DoseGridScaling"):
        delattr(ds, keyword)
    dvh = Dataset()
    dvh.DVHType, dvh.DoseUnits, dvh.DoseType, dvh.DVHDoseScaling = "CUMULATIVE", "GY", "PHYSICAL", 1.0
    dvh.DVHVolumeUnits, dvh.DVHNumberOfBins, dvh.DVHData = "PERCENT", 2, [1.0, 100.0, 1.0, 50.0]
    ds.DVHSequence = [dvh]
    ds.save_as(rd)
    (st,) = scan(root)
    assert st.rtdose == [rd] and st.unreadable == [] and st.truncated == {}, st.summary()


@pytest.mark.parametrize("layout", ["alone", "beside-other-patients"])
def test_a_truncated_rtstruct_in_no_patients_folder_is_its_patients(export, tmp_path, capsys, layout):
    """A folder holding only a truncated RTSTRUCT (QA dicomfollow64: LUNG1-003's RTSTRUCT alone, cut at 5000 bytes):
    ``dicom-scan`` and ``--rtstruct FOLDER`` put it under patient "unknown" ("no CT ... missing CT, RTDOSE") although
    the cut file's header still holds its PatientID, and ``--rtstruct FOLDER`` said "no DICOM RTSTRUCT" with the fix
    "give the RTSTRUCT file ... re-export ... if it is missing".  Now it is that patient's (alone: a study of that
    patient without CT; in an export of several patients, no folder shared: that patient's CT study), named
    truncated, the fix to re-export it."""
    from lungai.cli import main
    from lungai.dicom.discover import find_rtstruct, scan

    _, rs = _cut_inside(export, tmp_path, REFERENCES)
    if layout == "alone":
        root = tmp_path / "only"
        root.mkdir()
    else:     # P1 and P3 under the root, the cut RTSTRUCT in a folder of its own
        root = tmp_path / "many"
        for p in ("P1", "P3"):
            shutil.copytree(export / p, root / p, ignore=shutil.ignore_patterns("RTSTRUCT"))
        (root / "incoming").mkdir()
    cut = shutil.copy(rs, (root if layout == "alone" else root / "incoming") / "rs.dcm")
    studies = scan(root)
    assert "unknown" not in [st.patient_id for st in studies], [st.summary() for st in studies]
    (mine,) = [st for st in studies if st.patient_id == "P1"]
    assert mine.unreadable == [Path(cut)] and mine.truncated == {"RTSTRUCT": [Path(cut)]}, mine.summary()
    assert "RTSTRUCT" not in mine.missing, mine.summary()
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    assert "unknown:" not in out and "RTSTRUCT there but unreadable (truncated)" in out, out
    if layout == "alone":
        with pytest.raises(InputError) as exc:
            find_rtstruct(root)
        assert ("no readable DICOM RTSTRUCT in this folder or its subfolders: its RTSTRUCT (patient P1) is "
                "truncated - 1 file could not be read as DICOM: rs.dcm (truncated: an RTSTRUCT cut short inside its "
                "ReferencedFrameOfReferenceSequence") in exc.value.problem, exc.value.problem
        assert "unknown" not in exc.value.problem, exc.value.problem
        assert exc.value.fix.startswith("re-export the RTSTRUCT from the planning system"), exc.value.fix


# a DICOM SEG's top-level elements a copy may end inside (tag, group and element little endian), 40 bytes into
# its value: its segments, its frames' positions, its pixel data
SEG_PARTS = {"SegmentSequence": b"\x62\x00\x02\x00", "PerFrameFunctionalGroupsSequence": b"\x00\x52\x30\x92",
             "PixelData": b"\xe0\x7f\x10\x00"}


@pytest.mark.parametrize("element", list(SEG_PARTS))
def test_a_seg_cut_inside_its_sequences_or_pixels_is_named_truncated(export, tmp_path, capsys, element):
    """A DICOM SEG cut short inside its segments, frames or pixel data (QA dicomfollow64: LUNG1-003's SEG written by
    highdicom and cut at 26500 to 3,000,000 bytes): ``dicom-scan`` listed it as "1 SEG" without a word (RTSTRUCTs
    were checked, SEGs not), its reader then failing with "could not be read as a volume (cannot reshape ...)" or a
    traceback.  Now: not listed, named truncated with where it ends, the fix to re-export it."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.dicom.discover import scan
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.io import copy_geometry, read_ct

    root = _p1(export, tmp_path)
    ct = read_ct(root / "P1" / "CT")
    box = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
    box[10:20, 30:40, 30:40] = 1
    seg = write_seg({"GTV": copy_geometry(box, ct)}, ct_reference(root / "P1" / "CT", image=ct),
                    root / "P1" / "SEG" / "seg.dcm")
    assert [st.seg for st in scan(root)] == [[seg]]         # whole: listed
    data = seg.read_bytes()
    seg.write_bytes(data[:data.index(SEG_PARTS[element], 132) + 12 + 40])
    (st,) = scan(root)
    assert st.seg == [] and st.unreadable == [seg] and st.truncated == {"SEG": [seg]}, st.summary()
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if line.startswith("P1:")]
    assert "0 SEG" in summary and "SEG there but unreadable (truncated)" in summary, summary
    assert (f"1 file could not be read as DICOM: P1/SEG/seg.dcm (truncated: an SEG cut short inside its {element}); "
            "re-export it from the planning system or PACS") in out, out


def test_an_rtstruct_cut_in_its_last_element_is_not_cut_in_its_header(export, tmp_path, capsys):
    """An RTSTRUCT cut inside its ApprovalStatus, its last element after its structures and contours (QA
    dicomfollow64 on LUNG1-003's RTSTRUCT cut 4 bytes into it): ``dicom-scan`` said "an RTSTRUCT cut short in its
    header", and given by name (``--rtstruct FILE``) it was read without a word while ``dicom-scan`` and cohort left
    it out as truncated.  Now where it ends is said, and its reader refuses it as they do."""
    from lungai.cli import main
    from lungai.dicom.rtstruct import list_structures

    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    assert [e.keyword for e in pydicom.dcmread(rs)][-1] == "ApprovalStatus"
    data = rs.read_bytes()
    at = data.rindex(b"\x0e\x30\x02\x00") + 8 + 4         # (300E,0002): tag, explicit VR CS header, 4 bytes in
    assert at < len(data)
    rs.write_bytes(data[:at])
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    assert ("(truncated: an RTSTRUCT cut short at its end, inside its ApprovalStatus, after its structures and "
            "contours)") in out, out
    assert "cut short in its header" not in out, out
    with pytest.raises(InputError) as exc:
        list_structures(rs)
    assert f"the RTSTRUCT {rs} is truncated: it ends after {at} bytes, at its end, inside its ApprovalStatus" \
        in exc.value.problem, exc.value.problem
    assert exc.value.fix.startswith("re-export the RTSTRUCT from the planning system"), exc.value.fix


def test_cohort_row_of_a_patient_known_by_its_cut_rtstruct_alone_names_it(export, tmp_path):
    """lungai cohort of a folder holding only P1's RTSTRUCT cut short: the row is P1's (not "unknown"), its rtstruct
    cell names the file truncated, and its warning does not say "no patient is told" - its header names P1."""
    from lungai.dicom.cohort import inventory_warnings

    _, rs = _cut_inside(export, tmp_path, REFERENCES)
    root = tmp_path / "only"
    root.mkdir()
    shutil.copy(rs, root / "rs.dcm")
    jobs, inv = plan_cohort(root)
    (row,) = inv.itertuples(index=False)
    assert row.patient_id == "P1" and row.rtstruct == "rs.dcm (truncated: re-export it)", row
    assert "no patient is told" not in row.notes and "its header names P1, of whom no CT series was found" in \
        row.notes, row.notes
    assert any(w.startswith("P1: 1 file that could not be read as DICOM") for w in inventory_warnings(jobs, inv))


@pytest.mark.shared_data
def test_a_real_rtdose_cut_before_its_sop_instance_uid_is_an_rtdose_to_the_scan(shared_data, patient_scratch, capsys):
    """QA cohortfollow66: LUNG1-003's real CT + RTSTRUCT with an RTDOSE cut 2 bytes into its SOPInstanceUID (an
    interrupted copy: no Modality yet, its SOPClassUID and file meta there) - ``dicom-scan`` said "truncated or
    damaged; it may be this patient's RTSTRUCT, RTDOSE or CT slice", and alone in the patient's folder "0 RTDOSE;
    missing ... RTDOSE", while ``--dose FOLDER`` (lungai.dose.read, QA dose66) knew it an RTDOSE from its SOP class.
    The scan reads its SOP class the same way (one test, :func:`lungai.dicom.discover.rtdose_class`): an RTDOSE cut
    short in its header, re-export it, the patient's RTDOSE there but unreadable - not missing."""
    from dose_helpers import lung1_003_plan_dose, write_rtdose
    from lungai.cli import main
    from lungai.dicom.discover import scan

    ct, rs, reference, dose = lung1_003_plan_dose(shared_data)
    whole = write_rtdose(dose, patient_scratch / "RD.dcm", reference=reference)
    data = whole.read_bytes()
    cut = data[:data.index(b"\x08\x00\x18\x00", 132) + 2]        # 2 bytes into (0008,0018) SOPInstanceUID
    assert b"\x08\x00\x60\x00" not in cut                        # no Modality left
    for name, parts in (("with-ct", True), ("alone", False)):
        patient = patient_scratch / name / "LUNG1-003"
        if parts:
            shutil.copytree(ct, patient / "CT")
            shutil.copytree(rs, patient / "RTSTRUCT")
        (patient / "RTDOSE").mkdir(parents=True)
        rd = patient / "RTDOSE" / "RD.dcm"
        rd.write_bytes(cut)
        (st,) = scan(patient_scratch / name)
        assert st.rtdose == [] and st.unreadable == [rd] and st.truncated == {"RTDOSE": [rd]}, st.summary()
        assert "RTDOSE" not in st.missing, st.summary()
        main(["dicom-scan", str(patient_scratch / name)])
        out = capsys.readouterr().out
        assert "may be this patient's RTSTRUCT, RTDOSE or CT slice" not in out, out
        assert ("1 file could not be read as DICOM: LUNG1-003/RTDOSE/RD.dcm (truncated: an RTDOSE cut short in its "
                "header); re-export it from the planning system or PACS (or copy it again)") in out, out
        (summary,) = [line for line in out.splitlines() if "0 RTDOSE" in line]
        missing = re.search(r"missing ([^;]*)", summary)
        assert "RTDOSE there but unreadable (truncated)" in summary, summary
        assert missing is None or "RTDOSE" not in missing.group(1), summary
        if parts:
            assert summary.startswith("LUNG1-003: CT 107 slices, 1 RTSTRUCT, 0 RTDOSE"), summary
            assert "missing" not in summary, summary


SOP_INSTANCE_UID = b"\x08\x00\x18\x00"      # (0008,0018) SOPInstanceUID: after SOPClassUID, before Modality


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["rtstruct", "ct-slice"])
def test_a_real_rtstruct_or_ct_slice_cut_before_its_modality_is_named_by_its_sop_class(shared_data, patient_scratch,
                                                                                       capsys, kind):
    """QA cohort67: LUNG1-003's real RTSTRUCT, or one of its CT slices, cut 2 bytes into its SOPInstanceUID (an
    interrupted copy: no Modality yet, its SOPClassUID and file meta there) - ``dicom-scan`` said "truncated or
    damaged; it may be this patient's RTSTRUCT, RTDOSE or CT slice" (an RTDOSE cut so was named an RTDOSE, QA
    cohortfollow66) and, for the RTSTRUCT, "missing RTSTRUCT"; cohort's inventory "an unreadable file may be its
    RTSTRUCT".  Its SOP class says what it is: an RTSTRUCT / a CT slice cut short in its header, re-export it - the
    patient's RTSTRUCT there but unreadable, not missing."""
    from lungai.cli import main
    from lungai.dicom.cohort import TRUNCATED_RTSTRUCT
    from lungai.dicom.discover import scan

    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    root = patient_scratch / "export"
    shutil.copytree(src, root / "LUNG1-003")
    folder = root / "LUNG1-003" / ("RTSTRUCT" if kind == "rtstruct" else "CT")
    victim = sorted(folder.glob("*.dcm"))[-1]
    data = victim.read_bytes()
    cut = data[:data.index(SOP_INSTANCE_UID, 132) + 2]
    assert MODALITY not in cut[132:]
    victim.write_bytes(cut)
    under = victim.relative_to(root).as_posix()
    what = "an RTSTRUCT" if kind == "rtstruct" else "a CT slice"
    (st,) = [s for s in scan(root) if s.ct is not None]
    assert st.unreadable == [victim], st.summary()
    main(["dicom-scan", str(root)])
    out = capsys.readouterr().out
    assert "may be this patient's RTSTRUCT, RTDOSE or CT slice" not in out, out
    assert (f"1 file could not be read as DICOM: {under} (truncated: {what} cut short in its header); re-export it"
            in out), out
    (summary,) = [line for line in out.splitlines() if line.startswith("LUNG1-003:")]
    if kind == "rtstruct":
        assert st.truncated == {"RTSTRUCT": [victim]} and "RTSTRUCT" not in st.missing, st.summary()
        assert "from the planning system or PACS" in out, out
        assert "RTSTRUCT there but unreadable (truncated)" in summary and "missing RTDOSE;" in summary, summary
        _, inv = plan_cohort(root)
        row = inv.iloc[0]
        assert row["rtstruct"] == f"{under} (truncated: re-export it)", row["rtstruct"]
        assert TRUNCATED_RTSTRUCT in row["tumour_from"], row["tumour_from"]
        assert f"its RTSTRUCT {under} could not be read as DICOM (truncated)" in row["notes"], row["notes"]
    else:
        assert st.truncated == {} and st.missing == ["RTDOSE"], st.summary()
        assert summary.startswith("LUNG1-003: CT 106 slices, 1 RTSTRUCT"), summary


def test_a_slice_cut_inside_its_sop_class_uid_gives_no_pydicom_warning(export, tmp_path, capsys):
    """QA cohort67: a CT slice of LUNG1-003B cut 22 bytes into its SOPClassUID (an interrupted copy) made
    ``dicom-scan`` print pydicom's own "UserWarning: Invalid value for VR UI: '1.2.840.10008.5.1.4.1.'. Please see
    <https://dicom.nema.org/...> for allowed values for each VR." (a library warning with a source line, no file named,
    no fix) before the scan's own note, which names the file, what it is (a CT slice, by its file meta's SOP class) and
    the fix."""
    import warnings

    from lungai.cli import main

    root = _p1(export, tmp_path)
    victim = _ct_slices(root / "P1")[-1]
    data = victim.read_bytes()
    at = data.index(SOP_CLASS, 132) + 8 + 22         # tag, explicit VR UI header (8 bytes), 22 bytes of its value
    victim.write_bytes(data[:at])
    under = victim.relative_to(root).as_posix()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["dicom-scan", str(root)]) == 0
    out = capsys.readouterr()
    said = [str(w.message) for w in caught if "Invalid value for VR" in str(w.message)]
    assert not said and "Invalid value for VR" not in out.err, (said, out.err)
    assert f"1 file could not be read as DICOM: {under} (truncated: a CT slice cut short in its header)" in out.out, \
        out.out
