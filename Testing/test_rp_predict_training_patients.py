"""``rp predict`` marks the locked model's own training patients (as ``stage predict``): their risk is in-sample (the
model was fitted to their outcome) - a ``training_patient`` column, a note in each such row's ``warnings`` and one
warning counting them (``lungai.model_files.in_sample_patients``, the rule of stage predict too).  Before, predicting
the training table gave 80 risks read like new patients' without a word."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from lungai.cli import main
from lungai.errors import InputNote
from lungai.model_files import LOOSE_MATCH_NOTE
from lungai.rp import make_cohort, predict_rp, train_rp
from rp_helpers import model_without_hashes

FAST = dict(models="lr", feature_sets="clinical_dosimetric", fast=True, outer_folds=2, inner_folds=2, n_boot=2,
            make_plots=False)
IN_SAMPLE = ("a training patient of this model: the prediction is in-sample (the model was fitted to this patient's "
             "outcome)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(training table CSV, model dir): 40 synthetic patients."""
    d = tmp_path_factory.mktemp("rp_in_sample")
    cohort = make_cohort(40, seed=23, n_noise=0)
    cohort.table.to_csv(d / "train.csv", index=False)
    train_rp(d / "train.csv", cohort.outcome, d / "m", **FAST)
    return d / "train.csv", d / "m"


def test_cli_predict_of_the_training_table_marks_every_patient_in_sample(trained, tmp_path, capsys):
    table, model = trained
    assert main(["rp", "predict", str(model), str(table), "-o", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("all 40 patients were in the model's training cohort") == 1
    assert "in-sample" in err and "cv_predictions.csv" in err
    pred = pd.read_csv(tmp_path / "p.csv")
    assert pred["training_patient"].tolist() == [True] * 40
    assert pred["warnings"].str.contains(IN_SAMPLE, regex=False).all()


def test_only_the_training_patients_of_a_mixed_table_are_marked(trained, tmp_path):
    table, model = trained
    new = make_cohort(10, seed=24, n_noise=0).table
    mixed = pd.concat([pd.read_csv(table).head(5), new], ignore_index=True)
    with pytest.warns(InputNote, match=r"5 of the 15 patients were in the model's training cohort"):
        pred, _ = predict_rp(model, mixed)
    assert pred["training_patient"].tolist() == [True] * 5 + [False] * 10
    assert all(IN_SAMPLE in w for w in pred["warnings"][:5])
    assert not any(IN_SAMPLE in str(w) for w in pred["warnings"][5:])
    assert all(IN_SAMPLE in " ".join(items) for items in pred.attrs["row_warnings"][:5])


def test_an_id_matching_only_ignoring_case_gets_its_own_note(trained):
    table, model = trained
    t = pd.read_csv(table).head(3)
    t.loc[1, "case"] = t.loc[1, "case"].lower()
    with pytest.warns(InputNote, match="1 patient matches a training patient's ID only ignoring case"):
        pred, _ = predict_rp(model, t)
    assert pred["training_patient"].tolist() == [True, False, True]
    assert LOOSE_MATCH_NOTE in pred["warnings"][1] and IN_SAMPLE not in pred["warnings"][1]


def test_new_patients_get_no_mark_and_no_warning(trained):
    _, model = trained
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputNote)     # nothing to say
        pred, _ = predict_rp(model, make_cohort(6, seed=25, n_noise=0).table)
    assert pred["training_patient"].tolist() == [False] * 6


def test_a_model_without_hashes_says_it_cannot_tell(trained, tmp_path):
    table, model = trained
    old = model_without_hashes(model, tmp_path)        # a model card of a lungai before the hashes
    with pytest.warns(InputNote, match="cannot be said: the model records no training patients"):
        pred, _ = predict_rp(old, table)
    assert pred["training_patient"].isna().all()
    with pytest.warns(InputNote, match="cannot be said: the patients table has no patient ID column"):
        pred, _ = predict_rp(model, pd.read_csv(table).drop(columns="case"))
    assert pred["training_patient"].isna().all()
