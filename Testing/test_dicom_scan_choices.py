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
