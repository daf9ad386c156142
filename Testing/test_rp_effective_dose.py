"""Rows whose dose table recorded an RTDOSE of DoseType EFFECTIVE (dose.csv's ``rtdose_notes``) are said by
``lungai rp train`` / ``validate``, and the whole-table warnings of ``lungai rp predict`` are kept in its CSV.

QA (rpnotes58): on the NSCLC-Radiogenomics clinical rows with dose columns, two of them noted EFFECTIVE,
``lungai rp train`` listed ``rtdose_notes`` under "ignored columns" only and ``rp validate`` said nothing - a
biologically weighted dose mixed with physical doses without a word; ``rp predict`` printed the notes (and the
lungs cut by the scan) but its predictions CSV did not keep them, while Multimodal Predict's risk table does."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

CLINICAL = ["Gender", "Smoking status", "Pack Years", "Age at Histological Diagnosis"]


@pytest.fixture(scope="module")
def tables(shared_data, tmp_path_factory):
    """Real clinical rows (Recurrence yes/no as the outcome) with dose columns; the first training and the first
    two held-out rows noted EFFECTIVE (as dose-features records it), one held-out row's lungs cut, one without dose."""
    from lungai.dose.features import NOTES_COLUMN
    from lungai.dose.read import effective_dose_note, unchecked_dose_note

    out = tmp_path_factory.mktemp("rp_effective")
    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    df = pd.read_csv(path)
    df = df[df["Recurrence"].isin(["yes", "no"])][["Case ID", "Recurrence", *CLINICAL]].reset_index(drop=True)
    rng = np.random.default_rng(0)
    df["dose_mld_gy"] = rng.uniform(5, 20, len(df)).round(2)
    df["dose_v20_pct"] = rng.uniform(10, 35, len(df)).round(1)
    df[NOTES_COLUMN] = ""
    df["lungs_cut"] = ""
    effective = effective_dose_note(SimpleNamespace(DoseType="EFFECTIVE"), "rd.dcm")
    train, test = df.iloc[:90].copy(), df.iloc[90:].reset_index(drop=True)
    train.loc[[0, 1], NOTES_COLUMN] = effective
    test.loc[[0, 1], NOTES_COLUMN] = [effective, f"{unchecked_dose_note('rd.dcm', 'ct.nii.gz')} | {effective}"]
    test.loc[2, "lungs_cut"] = "the scan's last slice cuts the lungs (40 cm² of lung on it)"
    test.loc[3, ["dose_mld_gy", "dose_v20_pct"]] = np.nan      # no RTDOSE found for this patient
    lines = ["column,role,type", "Case ID,id,", "Recurrence,ignore,"] + [f'"{c}",clinical,' for c in CLINICAL]
    (out / "roles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train.to_csv(out / "train.csv", index=False)
    train.drop(columns=NOTES_COLUMN).to_csv(out / "train_plain.csv", index=False)
    test.to_csv(out / "test.csv", index=False)
    return {"out": out, "train": train, "test": test, "effective": effective}


def _train(tables, name, capsys):
    """``lungai rp train`` on the table ``name`` (once: a model trained before is reused): (its warnings' lines on
    stderr - InputNotes, QA rpfollow65 -, model)."""
    from lungai.cli import main

    out = tables["out"]
    if (out / f"model_{name}").is_dir():
        return [], out / f"model_{name}"
    capsys.readouterr()
    assert main(["rp", "train", str(out / name), "--outcome", "Recurrence", "--roles", str(out / "roles.csv"),
                 "--models", "lr", "--fast", "--outer-folds", "3", "--inner-folds", "3", "--bootstrap", "2",
                 "-o", str(out / f"model_{name}")]) == 0
    cap = capsys.readouterr()
    assert "warning:" not in cap.out, cap.out
    return cap.err.splitlines(), out / f"model_{name}"


def _effective_warnings(lines):
    return [w for w in lines if "DoseType EFFECTIVE" in w]


@pytest.mark.shared_data
def test_train_and_validate_warn_of_effective_dose_rows(tables, capsys):
    from lungai.cli import main

    ids = tables["train"]["Case ID"].tolist()
    printed, model = _train(tables, "train.csv", capsys)
    said = _effective_warnings(printed)
    assert len(said) == 1, printed
    assert said[0].startswith(f"warning: training table: the RTDOSE of 2 patients has DoseType EFFECTIVE "
                              f"(rtdose_notes, e.g. {ids[0]}, {ids[1]}): "), said
    assert "not of the physical dose of the other 88 patients" in said[0]
    assert "and the model is trained on them as they are" in said[0] and "PHYSICAL RTDOSE" in said[0]
    # the same table without the notes: no such warning
    printed, plain = _train(tables, "train_plain.csv", capsys)
    assert not _effective_warnings(printed), printed

    test = tables["test"]
    out = tables["out"] / "validation"
    assert main(["rp", "validate", str(plain), str(tables["out"] / "test.csv"), "-o", str(out)]) == 0
    said = _effective_warnings(capsys.readouterr().err.splitlines())   # an InputNote on stderr (QA rpvalidate65)
    assert len(said) == 1 and said[0].startswith(
        f"warning: validation table: the RTDOSE of 2 patients has DoseType EFFECTIVE (rtdose_notes, e.g. "
        f"{test['Case ID'][0]}, {test['Case ID'][1]}): "), said
    assert "and the metrics count them as they are" in said[0]
    import json

    assert any(w in said[0] for w in json.loads((out / "external_metrics.json").read_text())["warnings"])


@pytest.mark.shared_data
def test_predictions_csv_keeps_the_whole_table_warnings(tables, capsys):
    """The predictions CSV's ``warnings`` keeps what rp predict prints of the whole table, in the rows concerned:
    the dose notes (each row its own), the lungs cut by the scan; other rows unchanged; the risks unchanged."""
    from lungai.cli import main
    from lungai.dose.features import notes_of
    from lungai.rp import predict_rp

    _, model = _train(tables, "train_plain.csv", capsys)
    test, out = tables["test"], tables["out"]
    capsys.readouterr()
    assert main(["rp", "predict", str(model), str(out / "test.csv"), "-o", str(out / "pred.csv")]) == 0
    cap = capsys.readouterr()                    # InputNotes on stderr (QA rpfollow65)
    printed = [w[len("warning: "):] for w in cap.err.splitlines() if w.startswith("warning: ")]
    assert not [w for w in cap.out.splitlines() if w.startswith("warning: ")], cap.out   # (rows: "  warning: ...")
    pred = pd.read_csv(out / "pred.csv", keep_default_na=False)
    from rp_helpers import without_widened     # an interval widened to hold the risk: its own note, not these

    pred["warnings"] = pred["warnings"].map(without_widened)
    assert any("lungs of 1 patient are cut" in w for w in printed)
    assert any("1 patient has no dose" in w for w in printed)
    assert pred["case"][:4].tolist() == test["Case ID"][:4].tolist()
    for i in (0, 1):   # each row its own notes, as printed ("<id>: <note>")
        notes = notes_of(test["rtdose_notes"][i])
        assert all(f"{test['Case ID'][i]}: {n}" in printed for n in notes), printed
        assert pred["warnings"][i] == "; ".join(notes), pred["warnings"][i]
    assert pred["warnings"][2] == f"lungs cut by the scan ({test['lungs_cut'][2]}): dose metrics of a partial lung"
    assert pred["warnings"][3] == "no dose (every dosimetric feature empty): dose features imputed"
    assert (pred["warnings"][4:] == "").all()
    plain, _ = predict_rp(model, test.drop(columns=["rtdose_notes", "lungs_cut"]))
    assert np.allclose(plain["risk"], pred["risk"], atol=1e-4)
    # Multimodal Predict adds the warnings of the whole table to its row's: a note the row says is not said twice
    from lungai.scene.rp import add_warnings

    row = add_warnings(pred.iloc[[0]], [test["rtdose_notes"][0], "another warning"])
    assert row["warnings"].iloc[0] == f"{test['rtdose_notes'][0]}; another warning"
