"""RP tables of ``lungai cohort`` whose automatic tumour needs review (its ``tumour_review`` column): ``rp train``,
``rp validate`` and ``rp predict`` warn, naming the count, the first patients and the fix; the numbers are unchanged."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from rp_helpers import recorded_warning, rp_small_model  # noqa: F401 - fixture

from lungai.rp import make_cohort, predict_rp, train_rp, validate_rp

REASON = "low confidence; several candidate regions (automatic mode)"


def _flagged(table: pd.DataFrame, rows) -> pd.DataFrame:
    """``table`` with lungai cohort's ``tumour_review`` column: ``REASON`` on ``rows``, empty elsewhere."""
    review = [""] * len(table)
    for i in rows:
        review[i] = REASON
    return table.assign(tumour_review=review)


def _train(table, out):
    return train_rp(table, "rp_grade2", out, models="lr", feature_sets="clinical_dosimetric", outer_folds=2,
                    inner_folds=2, fast=True, n_boot=2, make_plots=False)


def test_train_warns_and_records_rows_whose_tumour_needs_review(tmp_path):
    table = make_cohort(80, seed=3, n_noise=0).table
    flagged = _flagged(table, range(7))
    path = tmp_path / "rp_table.csv"
    flagged.to_csv(path, index=False)             # as lungai cohort writes it: empty cells for no review
    r = _train(path, tmp_path / "model")
    plain = _train(table, tmp_path / "plain")
    ids = sorted(table["case"].iloc[:7])
    warning = recorded_warning(r, tmp_path / "model", "needs review", "n_tumour_review", 7,
                               "7 patients whose automatic tumour needs review")
    assert "7 patients" in warning and ", ".join(ids[:5]) in warning and "and 2 more" in warning
    assert "Slicer" in warning and "re-run lungai cohort" in warning and "drop these rows" in warning
    # the numbers are never changed: the same model and figures as without the column
    assert r.metrics["results"] == plain.metrics["results"] and r.chosen == plain.chosen
    assert not any("needs review" in w for w in plain.metrics["warnings"])
    assert json.loads((tmp_path / "plain" / "model_card.json").read_text())["training_data"]["n_tumour_review"] == 0


@pytest.fixture
def model(rp_small_model):
    return rp_small_model


def test_validate_and_predict_warn_with_the_same_helper(model, tmp_path):
    table = make_cohort(40, seed=5, n_noise=0).table
    flagged = _flagged(table, [3])
    r = validate_rp(model, flagged, tmp_path / "val")
    plain = validate_rp(model, table)
    assert r["n_patients_tumour_review"] == 1 and plain["n_patients_tumour_review"] == 0
    warning = next(w for w in r["warnings"] if "needs review" in w)
    assert "1 patient " in warning and table["case"].iloc[3] in warning and "re-run lungai cohort" in warning
    assert r["auc"] == plain["auc"] and r["brier"] == plain["brier"]
    assert warning in json.loads((tmp_path / "val" / "external_metrics.json").read_text())["warnings"]

    pred, _ = predict_rp(model, flagged)
    ref, _ = predict_rp(model, table)
    assert pred.attrs["warnings"] and "1 patient " in pred.attrs["warnings"][0] and not ref.attrs["warnings"]
    assert pred.loc[3, "warnings"].endswith(f"automatic tumour needs review ({REASON})")
    assert (pred.drop(index=3)["warnings"] == ref.drop(index=3)["warnings"]).all()
    assert pred["risk"].tolist() == ref["risk"].tolist()


def test_rp_predict_cli_prints_the_warning(model, tmp_path, capsys):
    from lungai.cli import main

    patients = tmp_path / "patients.csv"
    _flagged(make_cohort(12, seed=5, n_noise=0).table, [0, 1]).to_csv(patients, index=False)
    assert main(["rp", "predict", str(model), str(patients), "-o", str(tmp_path / "pred.csv")]) == 0
    cap = capsys.readouterr()                    # an InputNote on stderr (QA rpfollow65)
    assert "warning: patients table: the automatic tumour of 2 patients needs review" in cap.err
    assert "warning: patients table" not in cap.out      # (each row's own: "  warning: ..." under its risk)


def test_a_no_value_word_in_the_review_column_is_no_review():
    """Review: a table written by R (``NA``) or pandas after ``astype(str)`` (``nan``) gave "the automatic tumour of
    2 patient(s) needs review" and "needs review (nan)": a word for "no value" (lungai.rp.columns.is_missing_word) is
    no review, as an empty cell is."""
    from lungai.rp.prepare import tumour_review_rows, tumour_review_warning

    table = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4", "P5"],
                          "tumour_review": ["NA", "nan", "None", " ", REASON]})
    assert tumour_review_rows(table) == ["", "", "", "", REASON]
    n, text = tumour_review_warning(table, "patient_id", "training table", "x")
    assert n == 1 and "e.g. P5)" in text


def test_rows_of_a_model_with_a_confidence_caveat_are_warned_of_unless_flagged(model, tmp_path, capsys):
    """QA demorisk59: lungai cohort --model lungai-seg-dynunet said the model's confidence caveat on the terminal and
    in result.json, but its rp_table.csv kept no trace of it: rp train / validate / predict took the unflagged
    automatic tumours (tumour_review empty) as if an empty review meant the tumour was found whole.  The table's
    tumour_confidence_caveat column is now warned of (rows flagged for review are said as such, once)."""
    from lungai.cli import main
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME

    CAVEAT_COLUMN = "tumour_confidence_caveat"         # as lungai cohort writes it (lungai.seg.resources.CAVEAT_COLUMN)
    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    table = make_cohort(40, seed=5, n_noise=0).table
    marked = _flagged(table, [3]).assign(**{CAVEAT_COLUMN: [caveat if i in (2, 3, 7) else "" for i in range(40)]})
    ids = table["case"].iloc[[2, 7]].tolist()
    # train: in metrics.json / the model card's warnings; the numbers unchanged
    train_table = make_cohort(80, seed=3, n_noise=0).table
    train_marked = train_table.assign(**{CAVEAT_COLUMN: [caveat] * 4 + [""] * 76})
    r = _train(train_marked, tmp_path / "model")
    plain = _train(train_table, tmp_path / "plain")
    warning = next(w for w in r.metrics["warnings"] if "known caveat" in w)
    assert warning.startswith("training table: the automatic tumour of 4 patients is not flagged for review")
    assert CAVEAT_COLUMN in warning and "re-run lungai cohort" in warning
    # the card: its form without the IDs (QA rpvalidate65)
    assert warning.without_ids in json.loads((tmp_path / "model" / "model_card.json").read_text())["warnings"]
    assert f"({CAVEAT_COLUMN}): " in warning.without_ids
    assert r.metrics["results"] == plain.metrics["results"]
    # validate: the two unflagged rows (row 3 is said by the review warning)
    v = validate_rp(model, marked)
    warning = next(w for w in v["warnings"] if "known caveat" in w)
    assert "of 2 patients" in warning and all(i in warning for i in ids)
    assert v["auc"] == validate_rp(model, table)["auc"]
    # predict: the table's warning and each unflagged row's warnings cell
    pred, _ = predict_rp(model, marked)
    ref, _ = predict_rp(model, table)
    assert any("known caveat" in w and "of 2 patients" in w for w in pred.attrs["warnings"])
    assert [i for i in range(40) if "known caveat" in str(pred.loc[i, "warnings"])] == [2, 7]
    assert pred.loc[3, "warnings"].endswith(f"automatic tumour needs review ({REASON})")
    assert pred["risk"].tolist() == ref["risk"].tolist()
    patients = tmp_path / "patients.csv"
    marked.to_csv(patients, index=False)
    capsys.readouterr()
    assert main(["rp", "predict", str(model), str(patients), "-o", str(tmp_path / "pred.csv")]) == 0
    cap = capsys.readouterr()                    # an InputNote on stderr (QA rpfollow65)
    assert "warning: patients table: the automatic tumour of 2 patients is not flagged" in cap.err
    assert "warning: patients table" not in cap.out
