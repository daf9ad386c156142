"""RP tables with patients that have no dose at all (``lungai cohort`` found no RTDOSE for them, or one in another
frame of reference: every dose_* cell empty): their dose features are imputed with the training median, so ``rp
train``, ``rp validate`` and ``rp predict`` warn, naming the count, the first patients and the fix; the numbers
are unchanged (QA: a patient without an RTDOSE was trained and predicted on imputed doses with no word)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rp_helpers import recorded_warning, rp_small_model  # noqa: F401 - fixture

from lungai.rp import make_cohort, predict_rp, train_rp, validate_rp


def _no_dose(table: pd.DataFrame, rows) -> pd.DataFrame:
    """``table`` with every dose_* cell of ``rows`` empty (as lungai cohort writes a patient without an RTDOSE)."""
    out = table.copy()
    dose = [c for c in out.columns if c.startswith("dose_")]
    out.loc[list(rows), dose] = np.nan
    return out


def _train(table, out):
    return train_rp(table, "rp_grade2", out, models="lr", feature_sets="clinical_dosimetric", outer_folds=2,
                    inner_folds=2, fast=True, n_boot=2, make_plots=False)


def test_train_warns_about_and_records_patients_without_a_dose(tmp_path):
    table = make_cohort(80, seed=3, n_noise=0).table
    path = tmp_path / "rp_table.csv"
    _no_dose(table, range(6)).to_csv(path, index=False)     # empty cells, as lungai cohort writes them
    r = _train(path, tmp_path / "model")
    ids = sorted(table["case"].iloc[:6])
    warning = recorded_warning(r, tmp_path / "model", "no dose", "n_no_dose", 6, "6 patients with no dose")
    assert warning.startswith("training table: 6 patients have no dose")
    assert ", ".join(ids[:5]) in warning and "and 1 more" in warning and "imputed" in warning
    assert "RTDOSE" in warning and "re-run lungai cohort" in warning and "drop these rows" in warning

    # one dose value of a patient missing is no "no dose" (its imputed column says it)
    partial = table.copy()
    partial.loc[[0, 1], "dose_mld_gy"] = np.nan
    r = _train(partial, tmp_path / "partial")
    assert not any("no dose" in w for w in r.metrics["warnings"])
    assert json.loads((tmp_path / "partial" / "model_card.json").read_text())["training_data"]["n_no_dose"] == 0


@pytest.fixture
def model(rp_small_model):
    return rp_small_model


def test_validate_and_predict_warn_and_leave_the_numbers(model, tmp_path):
    table = make_cohort(40, seed=5, n_noise=0).table
    missing = _no_dose(table, [2, 7])
    r = validate_rp(model, missing, tmp_path / "val")
    plain = validate_rp(model, table)
    assert r["n_patients_no_dose"] == 2 and plain["n_patients_no_dose"] == 0
    warning = next(w for w in r["warnings"] if "no dose" in w)
    assert warning.startswith("validation table: 2 patients have no dose")
    assert table["case"].iloc[2] in warning and table["case"].iloc[7] in warning
    assert warning in json.loads((tmp_path / "val" / "external_metrics.json").read_text())["warnings"]
    assert not any("no dose" in w for w in plain["warnings"])

    pred, _ = predict_rp(model, missing)
    ref, _ = predict_rp(model, table)
    assert any(w.startswith("patients table: 2 patients have no dose") for w in pred.attrs["warnings"])
    assert not ref.attrs["warnings"]
    assert "dose_mld_gy" in pred.loc[2, "imputed"]          # the row's own column still names them
    same = [i for i in range(len(table)) if i not in (2, 7)]
    assert pred["risk"].iloc[same].tolist() == ref["risk"].iloc[same].tolist()


def test_rp_predict_cli_prints_the_warning(model, tmp_path, capsys):
    from lungai.cli import main

    patients = tmp_path / "patients.csv"
    _no_dose(make_cohort(12, seed=5, n_noise=0).table, [0]).to_csv(patients, index=False)
    assert main(["rp", "predict", str(model), str(patients), "-o", str(tmp_path / "pred.csv")]) == 0
    cap = capsys.readouterr()                    # an InputNote on stderr (QA rpfollow65)
    assert "warning: patients table: 1 patient has no dose" in cap.err and "re-run lungai cohort" in cap.err
    assert "warning: patients table" not in cap.out      # (each row's own: "  warning: ..." under its risk)


def test_an_outcome_in_words_is_said_back(tmp_path):
    """QA: an outcome of Yes / no words was read silently; train and validate now say which word counted as the
    event (the spellings as the table has them), the model card records it; a 0/1 outcome says nothing."""
    from lungai.rp.checks import outcome_words

    table = make_cohort(80, seed=3, n_noise=0).table
    words = table.assign(rp_grade2=["Yes" if v else ("no" if i % 2 else "No") for i, v in
                                    enumerate(table["rp_grade2"])])
    expected = "outcome 'rp_grade2': 'Yes' read as 1 (event), 'No', 'no' as 0 (no event)"
    assert outcome_words(words, "rp_grade2") == expected and outcome_words(table, "rp_grade2") == ""
    r = _train(words, tmp_path / "model")
    assert r.lines[0] == expected
    card = json.loads((tmp_path / "model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["outcome_read_as"] == expected
    assert "(`rp_grade2`: 'Yes' read as 1" not in (tmp_path / "model" / "model_card.md").read_text() and \
        "'Yes' read as 1 (event)" in (tmp_path / "model" / "model_card.md").read_text()
    plain = _train(table, tmp_path / "plain")
    assert not any("read as" in line for line in plain.lines)
    assert json.loads((tmp_path / "plain" / "model_card.json").read_text())["outcome_read_as"] == "0/1"
    assert r.metrics["results"] == plain.metrics["results"]      # the same 0/1 outcome
    other = make_cohort(40, seed=5, n_noise=0).table
    other["rp_grade2"] = ["positive" if v else "negative" for v in other["rp_grade2"]]
    v = validate_rp(tmp_path / "model", other)
    assert v["outcome_read_as"] == "outcome 'rp_grade2': 'positive' read as 1 (event), 'negative' as 0 (no event)"
    assert validate_rp(tmp_path / "model", make_cohort(40, seed=5, n_noise=0).table)["outcome_read_as"] == "0/1"


def test_the_card_says_the_outcome_words_of_a_name_with_a_colon(tmp_path):
    """Review: the model card cut the outcome text at its first ": ", so a column named "RP: grade>=2" came out as
    "(grade>=2': 'Yes' ...)"; the mapping alone is shown."""
    from lungai.rp.model_io import card_markdown

    table = make_cohort(80, seed=3, n_noise=0).table
    words = table.assign(**{"RP: grade>=2": ["Yes" if v else "no" for v in table["rp_grade2"]]}).drop(
        columns="rp_grade2")
    train_rp(words, "RP: grade>=2", tmp_path / "m", models="lr", feature_sets="clinical_dosimetric", outer_folds=2,
             inner_folds=2, fast=True, n_boot=2, make_plots=False)
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    assert "- Outcome: `RP: grade>=2` ('Yes' read as 1 (event), 'no' as 0 (no event))" in card_markdown(card)
