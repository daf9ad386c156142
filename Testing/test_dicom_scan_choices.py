"""``lungai dicom-scan`` says of a patient's several RTSTRUCTs / RTDOSEs what ``lungai cohort`` does with them.

QA cohort67 on LUNG1-003's real export (CT + RTSTRUCT + an RTDOSE on its grid) with its RTSTRUCT and RTDOSE exported
twice (byte-identical copies in a second folder, as a re-export beside the first): ``dicom-scan`` said "2 RTSTRUCTs
reference this CT: ...; choose one - ... lungai cohort: keep one RTSTRUCT per CT series in the export (move the other
out of the folder)" and "2 RTDOSEs share this frame of reference (several plans or beams?)" - a question without a
fix - while ``lungai cohort`` on the same folder used one of each and said of the other "left out: a copy of ...
(same SOPInstanceUID, same content; the RTSTRUCT was exported twice)".  Two different plan doses were "several plans
or beams?" too, where cohort fails the patient with why and the fix."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from cohort_helpers import export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import plan_cohort


def _p1(export, tmp_path) -> Path:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    return root


def _scan_notes(root, capsys) -> list[str]:
    from lungai.cli import main

    assert main(["dicom-scan", str(root)]) == 0
    return [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  note:")]


def test_dicom_scan_names_an_rtstruct_and_an_rtdose_exported_twice_as_copies(export, tmp_path, capsys):
    root = _p1(export, tmp_path)
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    again = root / "P1" / "reexport"
    again.mkdir()
    shutil.copy(rs, again / "RS_copy.dcm")
    shutil.copy(rd, again / "RD_copy.dcm")
    notes = _scan_notes(root, capsys)
    text = "\n".join(notes)
    assert "choose one" not in text and "keep one RTSTRUCT per CT series" not in text, text
    assert "several plans or beams?" not in text, text
    _, inv = plan_cohort(root)
    cohort_notes = inv.iloc[0]["notes"]
    # what cohort says it did with each copy, dicom-scan says too
    said = [n.strip() for n in re.findall(r"[^;]+ left out: a copy of [^(]+\([^)]+\)", cohort_notes)]
    assert len(said) == 2 and any("RTSTRUCT was exported twice" in n for n in said) and \
        any("RTDOSE was exported twice" in n for n in said), cohort_notes
    for n in said:
        assert n in text, (n, text)


def test_dicom_scan_says_why_two_plan_doses_are_ambiguous_and_the_fix(export, tmp_path, capsys):
    from dose_helpers import with_summation_type

    root = _p1(export, tmp_path)
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    with_summation_type(rd, rd.parent / "rd_boost.dcm", "PLAN", factor=0.3)    # another plan's dose, same frame
    notes = _scan_notes(root, capsys)
    text = "\n".join(notes)
    assert "several plans or beams?" not in text, text
    jobs, _ = plan_cohort(root)
    problem, fix = jobs[0].error
    assert problem in text and fix in text, (problem, fix, text)


def test_dicom_scan_says_the_ct_of_two_rtstructs_is_missing_naming_each(export, tmp_path, capsys):
    """QA dicomfollow71 (two RTSTRUCTs of LUNG1-003 without its CT): dicom-scan said "2 RTSTRUCTs reference this CT"
    though no CT was there, and its note on the missing CT named one of the two RTSTRUCTs only.  Now: the CT they
    reference is said missing, each RTSTRUCT named (in both notes), with the fix (export that CT series with them)."""
    import pydicom
    from pydicom.uid import generate_uid

    rs = next(p for p in sorted((export / "P1" / "RTSTRUCT").glob("*.dcm")) if "someone" not in p.name)
    root = tmp_path / "no_ct"
    root.mkdir()
    shutil.copy(rs, root / "RS_a.dcm")
    ds = pydicom.dcmread(rs)             # a second structure set of the same CT (another SOPInstanceUID)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StructureSetLabel = "replan"
    ds.save_as(root / "RS_b.dcm")
    ct_series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0] \
        .RTReferencedSeriesSequence[0].SeriesInstanceUID
    text = "\n".join(_scan_notes(root, capsys))
    assert "reference this CT" not in text and "the CT given is series" not in text, text
    said = f"RS_a.dcm, RS_b.dcm reference CT series {ct_series} - export that CT series with the RTSTRUCTs"
    assert said in text, text
    assert "2 RTSTRUCTs and not the CT they were drawn on (no CT series found for them): RS_a.dcm (" in text, text
    assert "RS_b.dcm (label 'replan'" in text and "export the CT series they reference with them" in text, text
