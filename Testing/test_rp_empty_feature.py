"""QA rpfollow70: what rp validate / predict / train say of a model feature empty in every row, of a column that is
no outcome, and of a model folder that is no model folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rp_helpers import rp_small_model  # noqa: F401 - fixture

from lungai.errors import InputError
from lungai.rp import make_cohort, predict_rp, validate_rp
from lungai.rp.checks import outcome_vector


def _without(table: pd.DataFrame, column: str) -> pd.DataFrame:
    return table.assign(**{column: np.nan})


def test_validate_names_a_model_feature_empty_in_every_row_and_keeps_it(rp_small_model, tmp_path, capsys):
    """dose_mld_gy empty in every row: rp validate reported the AUC with only "N patients with imputed features"
    (rp train refuses the same column); now a warning names it, with the fix, kept in external_metrics.json."""
    table = make_cohort(40, seed=5, n_noise=0).table
    path = tmp_path / "no_mld.csv"
    _without(table, "dose_mld_gy").to_csv(path, index=False)
    r = validate_rp(rp_small_model, path, tmp_path / "val")
    said = [w for w in r["warnings"] if "empty in every row" in w]
    assert len(said) == 1 and "['dose_mld_gy']" in said[0] and "provide this column" in said[0]
    assert "the metrics are those of the model without it" in said[0] and "(40 patients)" in said[0]
    saved = json.loads((tmp_path / "val" / "external_metrics.json").read_text(encoding="utf-8"))
    assert said[0] in saved["warnings"] and saved["features_empty_in_every_row"] == ["dose_mld_gy"]
    plain = validate_rp(rp_small_model, table)
    assert plain["features_empty_in_every_row"] == [] and not any("empty in every row" in w for w in plain["warnings"])
    # two columns: both named, in the plural
    both = validate_rp(rp_small_model, _without(_without(table, "dose_mld_gy"), "clin_age_years"))
    assert sorted(both["features_empty_in_every_row"]) == ["clin_age_years", "dose_mld_gy"]
    assert any("2 model features" in w and "are empty in every row" in w and "without them" in w
               for w in both["warnings"])
    # ... and on the console
    from lungai.cli import main

    capsys.readouterr()
    assert main(["rp", "validate", str(rp_small_model), str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning: validation table: 1 model feature ['dose_mld_gy'] is empty in every row" in err
    assert "40 patients with imputed features (['dose_mld_gy'] empty in every row)" in out


def test_predict_names_a_model_feature_empty_in_every_row(rp_small_model):
    table = make_cohort(12, seed=6, n_noise=0).table
    pred, _ = predict_rp(rp_small_model, _without(table, "dose_mld_gy"))
    said = [w for w in pred.attrs["warnings"] if "empty in every row" in w]
    assert len(said) == 1 and "['dose_mld_gy']" in said[0] and said[0].startswith("patients table:")
    assert "the risks are those of the model without it" in said[0]
    ref, _ = predict_rp(rp_small_model, table)
    assert not any("empty in every row" in w for w in ref.attrs["warnings"])
    # one patient: its own imputed cell names the feature, no table warning
    one, _ = predict_rp(rp_small_model, _without(table.head(1), "dose_mld_gy"))
    assert "dose_mld_gy" in one.loc[0, "imputed"]
    assert not any("empty in every row" in w for w in one.attrs["warnings"])


def test_an_outcome_column_of_other_values_is_refused_as_such_before_its_blanks():
    """--outcome clin_age_years (with blank ages) said "empty or missing in 7 rows ... fill in the outcome"."""
    table = make_cohort(60, seed=3, n_noise=0).table
    table.loc[[2, 5], "clin_age_years"] = np.nan
    with pytest.raises(InputError, match="'clin_age_years' has values other than 0/1") as err:
        outcome_vector(table, "clin_age_years")
    assert "empty" not in err.value.problem
    grades = table.assign(rp_grade=pd.Series(["Grade 2", "Grade 0"] * 30, dtype=object))
    grades.loc[4, "rp_grade"] = ""
    with pytest.raises(InputError, match="holds grades"):
        outcome_vector(grades, "rp_grade")
    blank = table.assign(rp_grade2=table["rp_grade2"].astype(object))
    blank.loc[3, "rp_grade2"] = ""
    with pytest.raises(InputError, match=r"empty or missing in 1 row \(CSV lines \[5\]\)"):
        outcome_vector(blank, "rp_grade2")


def test_a_model_folder_that_does_not_exist_or_holds_a_pickle_says_so(rp_small_model, tmp_path):
    table = make_cohort(12, seed=6, n_noise=0).table
    with pytest.raises(InputError, match="does not exist") as err:
        validate_rp(tmp_path / "no_such_model", table)
    assert "missing" not in err.value.problem
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "model.pkl").write_bytes(b"not loaded")
    with pytest.raises(InputError, match=r"pickle file \['model.pkl'\] is never loaded.*only model.skops"):
        predict_rp(tmp_path / "pickled", table)
    with pytest.raises(InputError, match="is a file, not an RP model folder") as err:
        predict_rp(rp_small_model / "model.skops", table)
    assert str(rp_small_model) in err.value.fix
