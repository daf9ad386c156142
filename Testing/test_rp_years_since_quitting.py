"""``lungai rp`` and the quit year (stagefollow68): 'Quit Smoking Year' is empty ('N/A') for current smokers and
never-smokers alike (NSCLC-Radiogenomics: 33 current, 48 never and 22 former smokers of 210 with a recurrence
outcome); ``rp train`` imputed it with the training median, so every current smoker got a quit year he never had
(``rp predict`` listed 'Quit Smoking Year' as imputed for all 33).  ``rp train`` now replaces a quit-year feature by
'Years since quitting smoking' (the rule of ``lungai stage``: 0 for current and never-smokers), said on the console
and in the model card; a model trained before still predicts on its quit year, with a note to retrain it."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputNote

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
FAST = dict(models="lr", feature_sets="clinical_dosimetric", outer_folds=2, inner_folds=2, fast=True, n_boot=2,
            make_plots=False)


def _notes(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputNote)]


@pytest.mark.shared_data
def test_rp_train_on_the_real_csv_gives_no_current_smoker_a_quit_year(shared_data, tmp_path):
    """The real clinical CSV with a role file naming 'Quit Smoking Year' a clinical feature: the model's feature is
    the years since quitting (0 for the current and never-smokers, not imputed), said once with rp's fix (a role
    file); rp predict imputes it only for the former smokers without a quit year."""
    from lungai.io.tables import QUIT_YEARS
    from lungai.rp.predict import predict_rp
    from lungai.rp.training import train_rp

    table = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    table = table[table["Recurrence"].isin(["yes", "no"])]
    table.to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "roles.csv").write_text("column,role,type\nCase ID,id,\nRecurrence,ignore,\nSmoking status,clinical,\n"
                                        "Pack Years,clinical,\nQuit Smoking Year,clinical,\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_rp(tmp_path / "clinical.csv", "Recurrence", tmp_path / "m", role_file=tmp_path / "roles.csv", **FAST)
    said = [n for n in _notes(caught) if "is replaced by the feature" in n]
    assert len(said) == 1, _notes(caught)
    assert "0 for the 33 current smokers and the 48 never-smokers" in said[0]
    assert "the role ignore for 'Quit Smoking Year' in a role file, --roles" in said[0]
    assert "--keep-column" not in said[0]                       # a lungai stage option: rp has none
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    assert QUIT_YEARS in card["features"] and "Quit Smoking Year" not in card["features"]
    assert card["roles"]["roles"][QUIT_YEARS] == "clinical" and card["roles"]["types"][QUIT_YEARS] == "numeric"
    assert said[0] in card["warnings"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred, _ = predict_rp(tmp_path / "m", tmp_path / "clinical.csv")
    status = dict(zip(table["Case ID"], table["Smoking status"]))
    quit = dict(zip(table["Case ID"], table["Quit Smoking Year"]))
    imputed = {c: str(i) for c, i in zip(pred["case"], pred["imputed"])}
    assert not [c for c in imputed if "Quit Smoking Year" in imputed[c]]     # before: all 33 current smokers ...
    years = [c for c in imputed if QUIT_YEARS in imputed[c]]
    assert years and all(status[c] == "Former" and quit[c] == "N/A" for c in years)
    assert len(years) == sum(status[c] == "Former" and quit[c] == "N/A" for c in status)


def _smoking_table(root, n: int = 60):
    """A small rp table with a smoking status, a quit year ('N/A' for current and never-smokers) and a CT date."""
    from lungai.rp.cohort import make_cohort

    df = make_cohort(n, seed=5, n_noise=0).table[["case", "rp_grade2", "clin_age_years", "dose_mld_gy"]]
    status = np.array(["Current", "Former", "Nonsmoker"])[np.arange(n) % 3]
    df["clin_smoking_cat"] = status
    df["clin_quit_year"] = np.where(status == "Former", [str(1970 + i % 35) for i in range(n)], "N/A")
    df["ct_date"] = [f"3/{1 + i % 28}/2012" for i in range(n)]
    path = root / "table.csv"
    df.to_csv(path, index=False)
    return path, df


def test_a_model_trained_on_the_quit_year_still_predicts_and_says_to_retrain(tmp_path, monkeypatch):
    """Prefixed columns (clin_quit_year, clin_smoking_cat, ct_date): a new model uses the years since quitting; an
    old one (its feature clin_quit_year: emulated by training without the rule) still predicts on the table, its
    risks those of the table without a date column, and says how many current / never-smokers it imputes a quit
    year for, with the retraining fix - the new model says nothing of it."""
    import lungai.rp.training as training
    from lungai.io.tables import QUIT_YEARS
    from lungai.rp.predict import predict_rp

    path, df = _smoking_table(tmp_path)
    monkeypatch.setattr(training, "years_since_quitting_features", lambda d, roles, what: (d, roles, None),
                        raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.train_rp(path, "rp_grade2", tmp_path / "old", **FAST)
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training.train_rp(path, "rp_grade2", tmp_path / "new", **FAST)
    assert sum("'clin_quit_year' is replaced by the feature" in n for n in _notes(caught)) == 1
    features = {name: json.loads((tmp_path / name / "model_card.json").read_text())["features"]
                for name in ("old", "new")}
    assert "clin_quit_year" in features["old"] and QUIT_YEARS not in features["old"]
    assert QUIT_YEARS in features["new"] and "clin_quit_year" not in features["new"]
    df.drop(columns=["ct_date"]).to_csv(tmp_path / "nodate.csv", index=False)
    risks = {}
    for name, table, said in (("old", path, True), ("old", tmp_path / "nodate.csv", True), ("new", path, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred, _ = predict_rp(tmp_path / name, table)
        notes = [n for n in _notes(caught) if "retrain it with lungai rp train" in n]
        assert len(notes) == int(said), (name, _notes(caught))
        if said:
            assert "'clin_quit_year' is empty for 20 current smokers and 20 never-smokers" in notes[0]
        risks[(name, str(table))] = pred["risk"].to_numpy()
        imputed = dict(zip(pred["case"], pred["imputed"].astype(str)))
        current = df.loc[df["clin_smoking_cat"] == "Current", "case"]
        assert all((("clin_quit_year" in imputed[c]) is (name == "old")) for c in current)
    assert np.allclose(risks[("old", str(path))], risks[("old", str(tmp_path / "nodate.csv"))])
    from lungai.errors import InputError

    with pytest.raises(InputError) as err:           # the new model without the date: what the feature needs
        predict_rp(tmp_path / "new", tmp_path / "nodate.csv")
    assert f"{QUIT_YEARS!r} is computed from the table's quit-year column, smoking status and a date column" \
        in str(err.value)


def test_a_missing_smoking_status_is_no_former_smoker_and_a_table_without_a_date_keeps_the_quit_year():
    """An rp table's missing words ('Not collected', '') in the status column: the patient's years since quitting
    are missing (imputed), not computed as a former smoker's; without a date column the quit year stays a feature,
    with a note giving rp's fixes (a date column, or the role ignore)."""
    from lungai.io.tables import QUIT_YEARS
    from lungai.rp.checks import years_since_quitting_features
    from lungai.rp.columns import infer_roles

    df = pd.DataFrame({"case": ["a", "b", "c", "d", "e"], "y": ["0", "1", "0", "1", "0"],
                       "clin_smoking": ["Current", "Former", "Not collected", "", "Never"],
                       "clin_quit_year": ["N/A", "2000", "1990", "N/A", "N/A"],
                       "ct_date": ["2010-01-01"] * 5})
    roles = infer_roles(df, "y")
    out, new, text = years_since_quitting_features(df, roles, "t")
    assert sorted(new.roles) == sorted(["clin_smoking", QUIT_YEARS]) and "clin_quit_year" not in out.columns
    assert list(out["clin_smoking"]) == list(df["clin_smoking"])            # the table's own cells kept
    years = out[QUIT_YEARS].tolist()
    assert years[0] == 0 and years[1] == 10 and np.isnan(years[2]) and np.isnan(years[3]) and years[4] == 0
    assert "for the 1 former smoker" in text
    out, same, text = years_since_quitting_features(df.drop(columns=["ct_date"]), roles, "t")
    assert same is roles and "clin_quit_year" in out.columns
    assert "give the table a date column" in text and "the role ignore for 'clin_quit_year' in a role file" in text
    ignored = infer_roles(df.rename(columns={"clin_quit_year": "quit_year"}), "y")     # no feature: untouched
    out, same, text = years_since_quitting_features(df.rename(columns={"clin_quit_year": "quit_year"}), ignored, "t")
    assert same is ignored and text is None and QUIT_YEARS not in out.columns
