"""``lungai cohort`` on a patient with several CT series (one PatientID exported twice): the rows P_1, P_2 follow the
export's folders, and each inventory line on stdout names its row and its CT folder (QA cohortfollow71)."""

from __future__ import annotations

import pandas as pd


def test_rows_of_one_patient_follow_the_folders_and_each_inventory_line_names_its_row_and_folder(tmp_path, capsys,
                                                                                                  monkeypatch):
    """QA cohortfollow71: LUNG1-003 beside a re-export under new UIDs (same PatientID) - stdout showed two lines
    "LUNG1-003: CT 107 slices, ..." alike, the rows LUNG1-003_1 / _2 were named in a warning alone, and LUNG1-003_1
    was the re-export (numbered by StudyInstanceUID: the new UID sorted first).  Now the rows follow the folders
    (``orig/`` is _1 although its StudyInstanceUID sorts after ``reexport/``'s) and each line starts with its row,
    the PatientID and the CT folder.  The patients' processing is stubbed: the plan is under test."""
    from dicom_helpers import small_phantom
    from lungai.cli import main
    from lungai.dicom import cohort
    from lungai.dicom.synthetic import write_ct_series

    ct = small_phantom(7).ct
    root = tmp_path / "export"
    # the original's StudyInstanceUID sorts after the re-export's (a re-export's new UIDs: any order)
    write_ct_series(ct, root / "orig" / "CT", patient_id="QA-DUP", study_uid="1.2.826.0.1.3680043.99.9")
    write_ct_series(ct, root / "reexport" / "CT", patient_id="QA-DUP", study_uid="1.2.826.0.1.3680043.99.1")
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "error": job.ct_folder, "seconds": 0})
    assert main(["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "0"]) == 1
    out = capsys.readouterr().out
    n = ct.GetSize()[2]
    lines = [line for line in out.splitlines() if "RTSTRUCT" in line and "RTDOSE" in line]
    assert [line.split(", RTSTRUCT")[0] for line in lines] == [
        f"QA-DUP_1 (PatientID QA-DUP): CT {n} slices in orig/CT",
        f"QA-DUP_2 (PatientID QA-DUP): CT {n} slices in reexport/CT"], out
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    folder_of = dict(zip(errors["case"], errors["error"].str.extract(r"(\w+)/CT$")[0]))
    assert folder_of == {"QA-DUP_1": "orig", "QA-DUP_2": "reexport"}, errors
    inventory = pd.read_csv(tmp_path / "out" / "patients.csv")
    assert list(inventory["case"]) == ["QA-DUP_1", "QA-DUP_2"]


def test_a_patient_of_one_ct_series_is_named_as_before_with_its_folder(tmp_path, capsys, monkeypatch):
    """One CT series per patient: the line is named by the PatientID (its case) alone, with the CT folder; a flat
    export (slices in DICOM_ROOT itself) names no folder."""
    from dicom_helpers import small_phantom
    from lungai.cli import main
    from lungai.dicom import cohort
    from lungai.dicom.synthetic import write_ct_series

    ct = small_phantom(7).ct
    write_ct_series(ct, tmp_path / "export" / "P9" / "CT", patient_id="P9")
    write_ct_series(ct, tmp_path / "flat", patient_id="P8")
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "error": "stub", "seconds": 0})
    n = ct.GetSize()[2]
    assert main(["cohort", str(tmp_path / "export"), "-o", str(tmp_path / "out"), "--workers", "0"]) == 1
    assert f"P9: CT {n} slices in P9/CT, RTSTRUCT -, RTDOSE -; missing RTSTRUCT, RTDOSE" in capsys.readouterr().out
    assert main(["cohort", str(tmp_path / "flat"), "-o", str(tmp_path / "out2"), "--workers", "0"]) == 1
    assert f"P8: CT {n} slices, RTSTRUCT -, RTDOSE -; missing RTSTRUCT, RTDOSE" in capsys.readouterr().out
