"""The RTDOSE's notes that qualify its dose metrics (DoseType EFFECTIVE; an RTDOSE that could not be checked against a
CT that is not DICOM) are recorded in dose.csv (``rtdose_notes``) and repeated by the RP risk computed from it.

QA (clidose58): on LUNG1-003 (NIfTI CT and DICOM CT + RTSTRUCT) with an RTDOSE of DoseType EFFECTIVE, ``lungai
dose-features`` printed the note, but its dose.csv had no trace of it, and ``lungai rp predict`` on that CSV gave the
risk without a word - while Multimodal Predict's risk from Lung Radiomics' dose table of the same dose says it
(the notes recorded on the table node: ``lungai.scene.nodes.record_review_notes``)."""

from __future__ import annotations

import pandas as pd
import pytest
import SimpleITK as sitk

from dose_helpers import write_rtdose
from rp_helpers import rp_small_model  # noqa: F401 - fixture


def _effective(src, dst):
    import pydicom

    ds = pydicom.dcmread(src)
    ds.DoseType = "EFFECTIVE"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A NIfTI CT and lung mask, an EFFECTIVE and a PHYSICAL RTDOSE and a NIfTI dose (in Gy) on them."""
    from lungai.dose import radial_dose

    out = tmp_path_factory.mktemp("dose_notes")
    ct = sitk.Image((10, 10, 6), sitk.sitkInt16) - 800
    ct.SetOrigin((-5.0, -5.0, -3.0))
    sitk.WriteImage(ct, str(out / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct * 0 + 1, sitk.sitkUInt8), str(out / "lungs.nii.gz"))
    dose = radial_dose(ct, (0.3, -0.2, 0.1), 25.0, 60.0)
    sitk.WriteImage(dose, str(out / "dose.nii.gz"))
    physical = write_rtdose(dose, out / "rd.dcm")
    (out / "folder").mkdir()
    return {"out": out, "physical": physical, "effective": _effective(physical, out / "rd_eff.dcm"),
            "folder": _effective(physical, out / "folder" / "eff.dcm").parent, "image": out / "dose.nii.gz"}


def _dose_csv(case, dose, name):
    from lungai.cli import main

    out = case["out"] / name / "dose.csv"
    assert main(["dose-features", "--dose", str(dose), "--ct", str(case["out"] / "ct.nii.gz"), "--lungs",
                 str(case["out"] / "lungs.nii.gz"), "--case", name, "-o", str(out)]) == 0
    return out


def test_dose_csv_records_the_notes_of_the_rtdose(case, capsys):
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.dose.read import unchecked_dose_note

    effective = "rd_eff.dcm has DoseType EFFECTIVE: a biologically weighted dose"
    unchecked = unchecked_dose_note("rd_eff.dcm", str(case["out"] / "ct.nii.gz"))
    row = pd.read_csv(_dose_csv(case, case["effective"], "P1"), keep_default_na=False).iloc[0]
    printed = capsys.readouterr().out
    notes = notes_of(row[NOTES_COLUMN])
    assert len(notes) == 2 and notes[0] == unchecked and notes[1].startswith(effective), notes
    assert all(f"note: {n}" in printed for n in notes)           # as printed
    # a folder: its EFFECTIVE note alone (not "--dose FOLDER: ..." which says which RTDOSE too)
    row = pd.read_csv(_dose_csv(case, case["folder"], "P2"), keep_default_na=False).iloc[0]
    assert notes_of(row[NOTES_COLUMN])[-1].startswith("eff.dcm has DoseType EFFECTIVE"), row[NOTES_COLUMN]
    # the PHYSICAL RTDOSE: only that it could not be checked; a dose image: nothing (the column is there, empty)
    row = pd.read_csv(_dose_csv(case, case["physical"], "P3"), keep_default_na=False).iloc[0]
    assert notes_of(row[NOTES_COLUMN]) == [unchecked_dose_note("rd.dcm", str(case["out"] / "ct.nii.gz"))]
    row = pd.read_csv(_dose_csv(case, case["image"], "P4"), keep_default_na=False).iloc[0]
    assert row[NOTES_COLUMN] == ""


@pytest.fixture
def model(rp_small_model):
    return rp_small_model


def _clinical(path, cases):
    from lungai.rp import make_cohort

    clinical = make_cohort(len(cases), seed=1, n_noise=0).table.filter(like="clin_").assign(case=cases)
    clinical.to_csv(path, index=False)
    return path


def test_rp_predict_repeats_the_notes_of_the_dose_csv(case, model, capsys):
    """``lungai rp predict`` on the dose.csv says its notes (the warnings of the whole table,
    ``lungai.rp.prepare.table_warnings``, which Multimodal Predict says under a patient's risk too); the risk is
    unchanged.  Several patients: each note names its patient."""
    from lungai.cli import main
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.rp import predict_rp

    dose_csv = _dose_csv(case, case["effective"], "P1")
    notes = notes_of(pd.read_csv(dose_csv, keep_default_na=False)[NOTES_COLUMN].iloc[0])
    clinical = _clinical(case["out"] / "clinical.csv", ["P1"])
    capsys.readouterr()
    assert main(["rp", "predict", str(model), str(dose_csv), str(clinical), "-o",
                 str(case["out"] / "pred.csv")]) == 0
    cap = capsys.readouterr()                    # InputNotes on stderr (QA rpfollow65)
    printed = cap.err.splitlines()
    assert all(f"warning: {n}" in printed for n in notes), printed
    assert not [line for line in cap.out.splitlines() if line.startswith("warning: ")], cap.out
    # the same metrics without the column: the same risk, no such warning
    plain = pd.read_csv(dose_csv).drop(columns=NOTES_COLUMN)
    joined = plain.merge(pd.read_csv(clinical), on="case")
    pred, _ = predict_rp(model, joined)
    assert not any("EFFECTIVE" in w for w in pred.attrs["warnings"])
    assert pred["risk"].iloc[0] == pytest.approx(pd.read_csv(case["out"] / "pred.csv")["risk"].iloc[0], abs=1e-4)

    # a table of several patients (dose.csv rows concatenated): each note with its patient, each once
    other = _dose_csv(case, case["image"], "P4")
    both = pd.concat([pd.read_csv(dose_csv, keep_default_na=False), pd.read_csv(other, keep_default_na=False)])
    both = both.merge(pd.read_csv(_clinical(case["out"] / "clinical2.csv", ["P1", "P4"])), on="case")
    pred, _ = predict_rp(model, both)
    said = [w for w in pred.attrs["warnings"] if "rd_eff.dcm" in w]
    assert said == [f"P1: {n}" for n in notes]
    # each with a form without the patient's ID (rp predict says them as InputNotes: QA rpfollow65)
    assert [w.without_ids for w in said] == [f"1 patient (rtdose_notes): {n}" for n in notes]


def test_multimodal_predict_row_carries_the_notes_of_a_cli_dose_csv(case, model):
    """The dose.csv as Multimodal Predict's dose table (the console API's DataFrame, a table node read from it): its
    notes are no feature (not 'dose_rtdose_notes'), carried as they are, and said with the patient's risk as the
    panel says them (table_warnings with the patient's context; predict_rp_node's warnings)."""
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.rp.model_io import load_model
    from lungai.rp.prepare import table_warnings
    from lungai.scene.rp import assemble_patient_row

    dose = pd.read_csv(_dose_csv(case, case["effective"], "P1"), keep_default_na=False)
    notes = notes_of(dose[NOTES_COLUMN].iloc[0])
    _, card = load_model(model)
    clinical = _clinical(case["out"] / "clinical1.csv", ["P1"])
    row = assemble_patient_row(None, dose, clinical, case="P1", card=card)
    assert "dose_rtdose_notes" not in row.columns and notes_of(row[NOTES_COLUMN].iloc[0]) == notes
    said = table_warnings(row, card, context="patient")
    assert all(n in said for n in notes), said


def test_demo_risk_says_the_notes_and_the_cut_lungs_of_its_dose(case, model, tmp_path):
    """``lungai demo``'s dose.csv has the columns of ``lungai dose-features``' (lungs_cut too), and its RP risk says
    what ``rp predict`` says of that row: each RTDOSE note whole (the EFFECTIVE note holds "; " itself) and the
    whole-table warnings (lungs cut by the scan) with a fix for the demo's user - in the summary, on the console
    and in the report.  QA (demorisk58): dose.csv had no lungs_cut column, the risk's patient row neither it nor the
    rtdose_notes, so an EFFECTIVE RTDOSE's risk came without a word; and the demo split the warnings cell on ";"."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _dose, _rp
    from lungai.dose import read_dose
    from lungai.dose.features import LUNGS_CUT_COLUMN, NOTES_COLUMN, notes_of, output_columns
    from lungai.report.html import _rp_warnings
    from lungai.rp import make_cohort

    ct = sitk.ReadImage(str(case["out"] / "ct.nii.gz"))
    lungs = sitk.ReadImage(str(case["out"] / "lungs.nii.gz"))     # the whole CT: cut by its first and last slice
    recorded: list = []
    given = read_dose(case["effective"], record=recorded)
    _, row, _ = _dose(tmp_path, ct, lungs * 0, lungs, case["effective"], False, "P1", given=given, masks="m",
                      notes=recorded)
    written = pd.read_csv(tmp_path / "dose.csv", keep_default_na=False)
    assert list(written.columns) == output_columns()
    assert written[LUNGS_CUT_COLUMN].iloc[0].startswith("lungs cut at the"), written[LUNGS_CUT_COLUMN].iloc[0]
    notes = notes_of(written[NOTES_COLUMN].iloc[0])
    effective = [n for n in notes if "DoseType EFFECTIVE" in n]
    assert effective and ";" in effective[0]         # the note holds "; " itself

    clinical = make_cohort(1, seed=1, n_noise=0).table.filter(like="clin_").iloc[0].to_dict()
    rp = _rp(tmp_path, pd.DataFrame({"case": ["P1"]}), row, True, {"patient_id": "P1", **clinical}, model,
             sample=False, case="P1")
    assert "risk" in rp, rp.get("message")
    assert effective[0] in rp["warnings"], rp["warnings"]          # whole, not cut at its "; "
    cut = [w for w in rp["table_warnings"] if "are cut by the scan" in w]
    assert len(cut) == 1 and "run lungai demo again" in cut[0] and "lungai cohort" not in cut[0], cut
    console = result_lines({"segmentation": {"tumour_volume_ml": 1.0, "confidence": 0.9, "needs_review": False},
                            "rp": rp, "stage": {"message": "not computed"}, "dose": row, "dose_status": "computed",
                            "dose_source": "x", "lungs": {}})
    assert f"  RP warning: {effective[0]}" in console and f"  RP warning: {cut[0]}" in console, console
    import html
    page = _rp_warnings(rp)
    assert html.escape(effective[0]) in page and html.escape(cut[0]) in page
