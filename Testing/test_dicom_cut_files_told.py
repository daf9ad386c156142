"""What ``lungai dicom-scan`` / ``lungai cohort`` tell of files cut short and of a patient's CT series alike.

QA cohortfollow67 on copies of LUNG1-003's real export (CT + RTSTRUCT):
- two RTSTRUCTs cut short in its folder: cohort's warning named the first alone ("its RTSTRUCT
  LUNG1-003/RTSTRUCT/1.3...dcm could not be read as DICOM (truncated) ... re-export it");
- a middle CT slice cut short: ``dicom-scan`` said "1 slice missing - no slice between z = -158.90 and -152.90 mm
  ... re-export the full series" and, apart, "1 file could not be read", never that the file is most likely that
  slice (as ``read_ct`` says);
- LUNG1-003's CT exported twice (new UIDs, the same study date and series number): both patients.csv rows said
  "this row: 107 slices, study 2014-01-01, #1"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from cohort_helpers import export, scan_and_stubbed_cohort  # noqa: F401 - export: the module's fixture
from dicom_helpers import with_new_uids
from lungai.dicom.cohort import inventory_warnings, plan_cohort

SERIES_UID = b"\x20\x00\x0e\x00"     # (0020,000E) SeriesInstanceUID: after Modality - a file of known kind, cut short


def _cut_before_series_uid(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:data.index(SERIES_UID, 132)])
    return path


def _lung1_003(shared_data, root: Path) -> Path:
    patient = root / "LUNG1-003"
    shutil.copytree(shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003", patient)
    return patient


def _by_z(folder: Path) -> list[Path]:
    heads = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm")}
    return sorted(heads, key=lambda p: float(heads[p].ImagePositionPatient[2]))


@pytest.mark.shared_data
def test_each_truncated_rtstruct_of_a_patient_is_named(shared_data, patient_scratch):
    """Two RTSTRUCTs of LUNG1-003 cut short: the warning, the ``rtstruct`` cell and the terminal name both, with
    the fix for them (the first alone was named, "re-export it")."""
    root = patient_scratch / "export"
    patient = _lung1_003(shared_data, root)
    (first,) = (patient / "RTSTRUCT").glob("*.dcm")
    second = patient / "RTSTRUCT" / "RS_second.dcm"
    shutil.copy(first, second)
    cut = sorted([_cut_before_series_uid(first), _cut_before_series_uid(second)])
    shown = ", ".join(p.relative_to(root).as_posix() for p in cut)
    jobs, inv = plan_cohort(root)
    (row,) = inv.to_dict("records")
    assert row["notes"].startswith(f"WARNING: no readable RTSTRUCT: its 2 RTSTRUCTs {shown} could not be read as "
                                   "DICOM (truncated): the lungs / tumour are automatic"), row["notes"]
    assert "re-export them (or only the one to use) from the planning system or PACS" in row["notes"], row["notes"]
    assert row["rtstruct"] == f"{shown} (truncated: re-export them)", row["rtstruct"]
    said = [line for line in inventory_warnings(jobs, inv) if "no readable RTSTRUCT" in line]
    assert len(said) == 1 and all(p.relative_to(root).as_posix() in said[0] for p in cut), said


@pytest.mark.shared_data
def test_dicom_scan_says_a_cut_ct_slice_is_most_likely_the_missing_one(shared_data, patient_scratch, capsys):
    """A middle CT slice of LUNG1-003 cut short: the gap's note names the file as most likely the missing slice,
    with the fix to re-export it - as ``read_ct`` refuses the series."""
    from lungai.cli import main
    from lungai.dicom.discover import scan

    root = patient_scratch / "export"
    patient = _lung1_003(shared_data, root)
    victim = _cut_before_series_uid(_by_z(patient / "CT")[50])
    under = victim.relative_to(root).as_posix()
    told = (f"1 slice missing - no slice between z = -158.90 and -152.90 mm (slice spacing 3.00 mm elsewhere); "
            f"1 file could not be read as DICOM: {under} (truncated: a CT slice cut short in its header): most "
            "likely the missing slice - re-export that file (or the full series) from the PACS or planning system "
            "and replace it")
    (st,) = scan(root)
    assert any(told in n for n in st.notes), st.notes
    assert main(["dicom-scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert told in out, out
    _, inv = plan_cohort(root)      # cohort's row: the same, the patient failed naming the slice
    assert told in inv.loc[0, "notes"], inv.loc[0, "notes"]


def test_a_cut_rtstruct_is_not_said_to_be_a_missing_ct_slice(export, tmp_path):
    """A CT slice deleted and the RTSTRUCT cut short: the gap is not put on the RTSTRUCT (nor the fix to re-export
    it as the slice); the gap's own fix stays."""
    from lungai.dicom.discover import scan

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*", "RTDOSE"))
    _by_z(root / "P1" / "CT")[10].unlink()
    (rs,) = (root / "P1" / "RTSTRUCT").glob("*.dcm")
    _cut_before_series_uid(rs)
    (st,) = scan(root)
    gap = next(n for n in st.notes if "1 slice missing" in n)
    assert "most likely" not in gap and "could not be read" not in gap, gap
    assert "re-export the full series" in gap, gap


@pytest.mark.shared_data
def test_two_ct_series_of_one_patient_alike_are_told_apart(shared_data, patient_scratch):
    """LUNG1-003's CT + RTSTRUCT exported twice (new UIDs, one PatientID, the same study date and series number):
    each row's label tells its series apart (its folder and the end of its SeriesInstanceUID)."""
    root = patient_scratch / "export"
    patient = _lung1_003(shared_data, root)
    with_new_uids(patient, root / "LUNG1-003b", "7")
    jobs, inv = plan_cohort(root)
    assert sorted(inv["case"]) == ["LUNG1-003_1", "LUNG1-003_2"], inv["case"]
    labels = {j.case: j.ct_label for j in jobs}
    assert len(set(labels.values())) == 2, labels
    for job in jobs:
        folder = Path(job.ct_folder).relative_to(root).as_posix()
        label = job.ct_label
        assert label.startswith("107 slices, study 2014-01-01, #1, folder ") and f"folder {folder}," in label, label
        tail = label.rsplit(", series ...", 1)[1]
        assert job.ct_series_uid.endswith(tail) and len(tail) >= 8, (label, job.ct_series_uid)
        notes = inv.set_index("case").loc[job.case, "notes"]
        assert f"this row: {label}" in notes, notes


def test_two_truncated_rtdoses_are_each_named_with_them_to_re_export(export, tmp_path):
    """Two RTDOSEs of P1 cut short: the ``rtdose`` cell says "re-export them", and the terminal names both as its
    RTDOSEs (never "its RTDOSE a, b (truncated: ...) is truncated")."""
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    (rd,) = (root / "P1" / "RTDOSE").glob("*.dcm")
    second = root / "P1" / "RTDOSE" / "rd_second.dcm"
    shutil.copy(rd, second)
    cut = sorted([_cut_before_series_uid(rd), _cut_before_series_uid(second)])
    shown = ", ".join(p.relative_to(root).as_posix() for p in cut)
    jobs, inv = plan_cohort(root)
    row = inv.iloc[0]
    assert row["rtdose"] == f"{shown} (truncated: re-export them)", row["rtdose"]
    said = [line for line in inventory_warnings(jobs, inv) if "no dose features" in line]
    assert said == [f"P1: no dose features - its RTDOSEs {shown} are truncated; re-export them from the planning "
                    "system and run again"], said


@pytest.mark.shared_data
def test_two_truncated_rtstructs_are_said_so_in_lungs_from_and_tumour_from(shared_data, patient_scratch):
    """QA scanfollow67: two RTSTRUCTs of LUNG1-003 cut short - the note names both, but ``lungs_from`` /
    ``tumour_from`` said "its RTSTRUCT is truncated (notes)", one file.  Of several: "its 2 RTSTRUCTs are
    truncated (notes)"; of one, the words stay."""
    from lungai.dicom.cohort import TRUNCATED_RTSTRUCT

    root = patient_scratch / "export"
    patient = _lung1_003(shared_data, root)
    (first,) = (patient / "RTSTRUCT").glob("*.dcm")
    second = patient / "RTSTRUCT" / "RS_second.dcm"
    shutil.copy(first, second)
    _cut_before_series_uid(first)
    _cut_before_series_uid(second)
    _, inv = plan_cohort(root)
    (row,) = inv.to_dict("records")
    for column in ("lungs_from", "tumour_from"):
        assert row[column].startswith("automatic"), row[column]
        assert row[column].endswith(" - its 2 RTSTRUCTs are truncated (notes)"), (column, row[column])
        assert TRUNCATED_RTSTRUCT not in row[column], row[column]
    from lungai.dicom.cohort import truncated_rtstruct_why

    assert truncated_rtstruct_why(1) == TRUNCATED_RTSTRUCT == "its RTSTRUCT is truncated (notes)"


@pytest.mark.shared_data
def test_dicom_scan_warns_of_two_ct_series_of_one_patient_as_cohort_does(shared_data, patient_scratch, tmp_path, capsys,
                                                                        monkeypatch):
    """QA scanfollow67: LUNG1-003 exported twice under one PatientID - ``dicom-scan`` listed two "LUNG1-003: CT 107
    slices ..." blocks, each "#1", told apart only by the full series UID, and nothing said the patient has two CT
    series (``cohort`` warns).  Now dicom-scan says cohort's warning, word for word (one function), with the fix, and
    labels each block with cohort's distinct label and row."""
    import json

    from lungai.cli import main

    root = patient_scratch / "export"
    patient = _lung1_003(shared_data, root)
    with_new_uids(patient, root / "LUNG1-003b", "7")
    jobs, inv = plan_cohort(root)
    (cohort_says,) = [line for line in inventory_warnings(jobs, inv) if "CT series" in line]
    from note_helpers import notes_made

    made = notes_made(monkeypatch)
    assert main(["dicom-scan", str(root), "--json", str(tmp_path / "scan.json")]) == 0
    cap = capsys.readouterr()
    said = [line for line in cap.err.splitlines() if "CT series" in line]
    assert said == [f"warning: {cohort_says}"], cap.err
    (note,) = [n for n in made if str(n) == cohort_says]       # an InputNote, with a form naming no patient
    assert note.without_ids and "LUNG1-003" not in note.without_ids, note.without_ids
    listed = json.loads((tmp_path / "scan.json").read_text(encoding="utf-8"))
    for job in jobs:
        assert f"  CT series {job.ct_series_uid}: {job.ct_label} (lungai cohort row {job.case})" in cap.out, cap.out
        (entry,) = [e for e in listed if e["ct"]["series_uid"] == job.ct_series_uid]
        assert (entry["ct"]["label"], entry["ct"]["cohort_case"]) == (job.ct_label, job.case), entry["ct"]
    assert len({job.ct_label for job in jobs}) == 2
    assert cohort_says.startswith("LUNG1-003 has 2 CT series: lungai cohort rows LUNG1-003_1, LUNG1-003_2 - keep one "
                                  "per patient before training ("), cohort_says
    assert "move the other series' files out of the export folder and run again" in cohort_says, cohort_says


@pytest.mark.shared_data
def test_cohort_and_dicom_scan_say_a_ct_series_of_two_rtstructs_alike_on_stderr(shared_data, patient_scratch, tmp_path,
                                                                                capsys, monkeypatch):
    """QA cohortwarn67: LUNG1-003 exported twice, the second export (LUNG1-003b) with an original and a revised
    RTSTRUCT (not copies) of its CT - ``lungai cohort`` printed its warnings on stdout ("print"), and its several-CT
    warning said "LUNG1-003_1: ..., no RTSTRUCT" of that series (none chosen: ``job.rtstruct`` None) where
    ``dicom-scan`` said "RTSTRUCT".  Now both say, as InputNotes on stderr with a form naming no patient, "2
    RTSTRUCTs, none chosen: keep one RTSTRUCT per CT series"; patients.csv is as before."""
    from pydicom.uid import generate_uid

    from note_helpers import notes_made

    root = patient_scratch / "export"
    second = with_new_uids(_lung1_003(shared_data, root), root / "LUNG1-003b", "7")
    (rs,) = (second / "RTSTRUCT").glob("*.dcm")
    ds = pydicom.dcmread(rs)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(second / "RTSTRUCT" / "0_revised.dcm")
    jobs, inv = plan_cohort(root)
    (ambiguous,) = [j for j in jobs if j.ct_folder.startswith(str(second))]
    told = "2 RTSTRUCTs, none chosen: keep one RTSTRUCT per CT series"
    (several,) = [line for line in inventory_warnings(jobs, inv) if "has 2 CT series" in line]
    assert f"{ambiguous.case}: {ambiguous.ct_label}, {told}, no RTDOSE" in several, several
    assert several.count(told) == 1 and "LUNG1-003" not in several.without_ids, several

    made = notes_made(monkeypatch)
    run = scan_and_stubbed_cohort(root, tmp_path / "out", several, monkeypatch, capsys)
    said = [line for line in run.err.splitlines() if line.startswith("warning: ")]
    fails = f"warning: {ambiguous.case} will fail: 2 RTSTRUCTs reference this CT ("
    assert any(line.startswith(fails) for line in said), run.err
    assert "warning:" not in run.out, run.out          # stdout: the inventory's lines and the summary only
    for note in [n for n in made if str(n).startswith(f"{ambiguous.case} will fail: ")]:
        assert note.without_ids.startswith("a patient will fail: 2 RTSTRUCTs reference this CT (")
        assert "LUNG1-003" not in note.without_ids, note.without_ids
    written = pd_read(tmp_path / "out" / "patients.csv")
    assert list(written["rtstruct"]).count("2 RTSTRUCTs (ambiguous)") == 1, written["rtstruct"]


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False)


@pytest.mark.shared_data
def test_cohort_and_dicom_scan_say_a_ct_series_of_two_plan_doses_alike(shared_data, patient_scratch, tmp_path, capsys,
                                                                      monkeypatch):
    """QA cohortstd67: LUNG1-003 exported twice, the second export (LUNG1-003b) with two plan doses of two plans on
    its CT (ambiguous: none used, the patient fails) - ``lungai cohort``'s several-CT warning said "no RTDOSE" of that
    series (``job.rtdose`` None) where ``dicom-scan`` said "RTDOSE".  Now both say "2 RTDOSEs, none chosen: ..." with
    the fix; patients.csv is as before."""
    import SimpleITK as sitk

    from dose_helpers import with_summation_type, write_rtdose
    from lungai.dicom.reference import ct_reference

    root = patient_scratch / "export"
    second = with_new_uids(_lung1_003(shared_data, root), root / "LUNG1-003b", "8")
    ct = sitk.ReadImage(str(sorted((second / "CT").glob("*.dcm"))[0]))
    dose = sitk.Image([8, 8, 4], sitk.sitkFloat32) + 2.0
    dose.SetSpacing((10.0, 10.0, 10.0))
    dose.SetOrigin(ct.GetOrigin())
    (second / "RTDOSE").mkdir()
    first = write_rtdose(dose, second / "RTDOSE" / "plan_a.dcm", reference=ct_reference(second / "CT"))
    with_summation_type(first, second / "RTDOSE" / "plan_a.dcm", "PLAN", plan="1.2.826.0.1.3680043.99.71")
    with_summation_type(first, second / "RTDOSE" / "plan_b.dcm", "PLAN", plan="1.2.826.0.1.3680043.99.72")
    jobs, inv = plan_cohort(root)
    (ambiguous,) = [j for j in jobs if j.ct_folder.startswith(str(second))]
    assert ambiguous.rtdose is None and ambiguous.error and "ambiguous" in ambiguous.error[0], ambiguous.error
    told = "2 RTDOSEs, none chosen: keep only the plan dose (or the BEAM doses of one plan) per CT series"
    (several,) = [line for line in inventory_warnings(jobs, inv) if "has 2 CT series" in line]
    assert f"{ambiguous.case}: {ambiguous.ct_label}, RTSTRUCT, {told}" in several, several
    # the second folder's series is the last row (rows in folder order: QA cohortfollow71), not "no RTDOSE"
    assert ambiguous.case == "LUNG1-003_2" and several.count(told) == 1 and f"{told}): " in several, several
    assert "LUNG1-003" not in several.without_ids, several.without_ids

    scan_and_stubbed_cohort(root, tmp_path / "out", several, monkeypatch, capsys)
    written = pd_read(tmp_path / "out" / "patients.csv").set_index("case")
    assert written.loc[ambiguous.case, "rtdose"] == "2 RTDOSEs (ambiguous)", written["rtdose"]
