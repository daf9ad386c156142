"""'Quit Smoking Year' is empty ('N/A') for current smokers and never-smokers alike (NSCLC-Radiogenomics: 103 of 211
patients, 80 of the 162 with a stage); lungai stage imputed it with the training median, so a current smoker got a
quit year he never had.  cv / train now replace it by 'Years since quitting smoking' (the year of the CT / diagnosis
date minus the quit year for a former smoker, 0 for current and never-smokers; a former smoker's missing value
imputed from the training former smokers), and a model trained before still predicts, saying what it imputes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputNote

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
TNM = ["Pathological T stage", "Pathological N stage", "Pathological M stage"]
DROP = ["Recurrence", "Recurrence Location", "Date of Recurrence", "Date of Last Known Alive", "Survival Status",
        "Date of Death", "Time to Death (days)", "Adjuvant Treatment", "Chemotherapy", "Radiation",
        "Lymphovascular invasion", "Pleural invasion (elastic, visceral, or parietal)", "CT Date", "PET Date"]


def _notes(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputNote)]


def _real_cohort(shared_data, **kw):
    from lungai.fusion.data import load_cohort

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = load_cohort(shared_data / "nsclc_radiogenomics" / CLINICAL, stage_from=TNM, label="stage_group",
                             **{"drop_columns": DROP, **kw})
    return cohort, _notes(caught)


@pytest.mark.shared_data
def test_training_replaces_the_quit_year_by_the_years_since_quitting_on_the_real_csv(shared_data):
    """stage cv / train on the real CSV (with the docs' --drop list, 'CT Date' among it): no 'Quit Smoking Year'
    feature any more; 'Years since quitting smoking' is 0 for every current smoker and never-smoker, the 'CT Date'
    year minus the quit year for a former smoker, missing only for a former smoker without a quit year - said once."""
    table = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    table = table.set_index("Case ID")
    cohort, notes = _real_cohort(shared_data)
    ehr = cohort.ehr
    assert "Quit Smoking Year" not in ehr.columns         # before: a feature, its 'N/A' imputed for current smokers
    from lungai.io.tables import QUIT_YEARS

    years = pd.to_numeric(ehr[QUIT_YEARS])
    status = table.loc[ehr.index, "Smoking status"]
    assert set(status) == {"Current", "Former", "Nonsmoker"}
    assert (years[status != "Former"] == 0).all()
    former = ehr.index[status == "Former"]
    quit = pd.to_numeric(table.loc[former, "Quit Smoking Year"], errors="coerce")
    ct_year = pd.to_datetime(table.loc[former, "CT Date"], format="%m/%d/%Y").dt.year
    expected = (ct_year - quit).clip(lower=0)
    assert np.allclose(years[former].dropna(), expected.dropna())
    assert years[former].isna().sum() == quit.isna().sum() > 0          # a former smoker without a quit year: imputed
    assert int(years.isna().sum()) == int(quit.isna().sum())          # nobody else is missing
    said = [n for n in notes if f"is replaced by the feature {QUIT_YEARS!r}" in n]
    assert len(said) == 1 and "the year of 'CT Date' minus the quit year" in said[0]
    assert "0 for the 33 current smokers and the 48 never-smokers" in said[0]
    assert "--keep-column 'Quit Smoking Year'" in said[0]


@pytest.mark.shared_data
def test_a_current_smoker_is_encoded_as_zero_years_and_a_former_smoker_imputed_from_former_smokers(shared_data):
    """The EHR encoder fitted on a training fold of the real cohort: a current smoker's value is 0 years (before: the
    fold's median quit year, 1975 or so), a former smoker without a quit year gets the fold's median of the values
    above 0 (the former smokers'), not a median pulled down by the current and never-smokers' 0."""
    from lungai.fusion.preprocess import EHREncoder
    from lungai.io.tables import QUIT_YEARS

    cohort, _ = _real_cohort(shared_data)
    table = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    status = table.set_index("Case ID").loc[cohort.ehr.index, "Smoking status"]
    cols = [QUIT_YEARS, "Smoking status", "Pack Years"]
    train = cohort.ehr.index[::2]
    enc = EHREncoder().fit(cohort.ehr.loc[train, cols])
    j = enc.numeric.index(QUIT_YEARS)
    col = enc.feature_names().index(f"num__{QUIT_YEARS}")
    scaler = enc.transformer.named_transformers_["num"][-1]
    x = enc.transform(cohort.ehr[cols])[:, col] * scaler.scale_[j] + scaler.mean_[j]
    values = pd.Series(x, index=cohort.ehr.index)
    assert np.allclose(values[status == "Current"], 0, atol=1e-4)
    fold = pd.to_numeric(cohort.ehr.loc[train, QUIT_YEARS])
    gaps = cohort.ehr.index[pd.to_numeric(cohort.ehr[QUIT_YEARS]).isna()]
    assert len(gaps) > 0 and (status[gaps] == "Former").all()
    assert np.allclose(values[gaps], fold[fold > 0].median(), atol=1e-4)
    assert fold[fold > 0].median() > fold.median()


def test_drop_keep_and_tables_without_a_date_or_status(tmp_path):
    """--drop 'Quit Smoking Year': no smoking-time feature at all, nothing said; --keep-column 'Quit Smoking Year': both
    (unsaid: kept deliberately); validate / predict (check_leaks False): both, unsaid (a model trained before uses the quit year); a table
    without a date column keeps the quit year, saying why and what to do; a table without a smoking status is as it is.
    Any date format gives its year."""
    from lungai.fusion.data import load_cohort
    from lungai.io.tables import QUIT_YEARS, with_years_since_quitting

    rows = {"Case ID": ["A", "B", "C", "D", "E", "F"],
            "Smoking status": ["Current", "Former", "Nonsmoker", "Former", "former", "Former"],
            "Quit Smoking Year": ["N/A", "1980", "N/A", "N/A", "2001", "1990"],
            "Date of Diagnosis": ["3/4/2005", "2010-06-01", "01.02.2008", "2009", "12/12/2000", "Not Collected"],
            "Age": ["60", "61", "62", "63", "64", "65"], "stage": ["I", "II", "I", "II", "I", "II"]}
    pd.DataFrame(rows).to_csv(tmp_path / "ehr.csv", index=False)
    runs = {}
    for name, kw in (("train", {}), ("drop", {"drop_columns": ["quit smoking year"]}),
                     ("keep", {"keep_columns": ["Quit Smoking Year"]}), ("predict", {"check_leaks": False})):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cohort = load_cohort(tmp_path / "ehr.csv", label="stage", **kw)
        runs[name] = (cohort.ehr, [n for n in _notes(caught) if "Quit Smoking Year" in n])
    ehr, said = runs["train"]
    assert "Quit Smoking Year" not in ehr.columns and len(said) == 1
    # A current, B 2010 - 1980, C never, D former without a quit year, E quit after the diagnosis year: 0, F no date
    assert np.allclose(pd.to_numeric(ehr[QUIT_YEARS]).to_numpy(), [0, 30, 0, np.nan, 0, np.nan], equal_nan=True)
    ehr, said = runs["drop"]
    assert "Quit Smoking Year" not in ehr.columns and QUIT_YEARS not in ehr.columns and said == []
    ehr, said = runs["keep"]
    assert {"Quit Smoking Year", QUIT_YEARS} <= set(ehr.columns) and said == []
    ehr, said = runs["predict"]
    assert {"Quit Smoking Year", QUIT_YEARS} <= set(ehr.columns) and said == []
    # no date column: the quit year kept, said for training with the fix
    table = pd.DataFrame(rows).drop(columns=["Date of Diagnosis"])
    out, text = with_years_since_quitting(table, "t", keep_quit_year=False)
    assert out is table and "give the table a date column" in text and "--drop 'Quit Smoking Year'" in text
    assert with_years_since_quitting(table, "t", keep_quit_year=True) == (table, None)
    # no smoking status: as it is
    bare = pd.DataFrame(rows).drop(columns=["Smoking status"])
    assert with_years_since_quitting(bare, "t", keep_quit_year=False) == (bare, None)


def test_a_model_trained_before_still_predicts_and_says_the_quit_year_it_imputes(tmp_path, monkeypatch, capsys):
    """A locked model trained on 'Quit Smoking Year' (before this rule: emulated by training without it) still loads
    and predicts, its predictions unchanged by the new column; ``stage predict`` names the patients whose quit year
    it imputes (with the training median, current smokers too) and says to retrain; a model trained now uses the
    years since quitting and says nothing of it.  The one-patient path (Slicer panel, demo) computes the feature too."""
    import lungai.fusion.data as data
    from stage_helpers import small_stage_cohort, stage_cli, stage_predict

    from lungai.fusion.api import single_patient_cohort
    from lungai.io.tables import QUIT_YEARS

    paths = small_stage_cohort(tmp_path / "c", 16)
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    former = ehr["smoking"] == "Former"
    ehr["Quit Smoking Year"] = np.where(former, [str(1980 + i) for i in range(len(ehr))], "N/A")
    ehr["CT Date"] = [f"5/{1 + i}/2010" for i in range(len(ehr))]
    ehr.to_csv(paths["ehr"], index=False)
    fast = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr", "--drop", "CT Date"]
    monkeypatch.setattr(data, "with_years_since_quitting", lambda df, what, keep_quit_year=True: (df, None))
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "old", *fast]) == 0
    monkeypatch.undo()
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "new", *fast]) == 0
    import json

    numeric = {name: json.loads((tmp_path / name / "stage_model.json").read_text())["ehr"]["numeric"]
               for name in ("old", "new")}
    assert "Quit Smoking Year" in numeric["old"] and QUIT_YEARS not in numeric["old"]
    assert QUIT_YEARS in numeric["new"] and "Quit Smoking Year" not in numeric["new"]
    empty = sorted(ehr.loc[ehr["Quit Smoking Year"] == "N/A", "patient_id"])
    for name, said in (("old", True), ("new", False)):
        err, pred = stage_predict(tmp_path / name, paths["ehr"], tmp_path / f"p{name}", capsys)
        assert (f"{len(empty)} patients without 'Quit Smoking Year'" in err) is said, err
        notes = dict(zip(pred["patient_id"], pred["notes"]))
        assert all(("also for a current smoker" in notes[p]) is said for p in empty)
    # the old model's predictions are those of the table without the new column (it ignores it)
    ehr.drop(columns=["CT Date"]).to_csv(tmp_path / "nodate.csv", index=False)
    assert stage_cli(["predict", "--model", tmp_path / "old", "--ehr", tmp_path / "nodate.csv",
                      "-o", tmp_path / "pnodate"]) == 0
    a = pd.read_csv(tmp_path / "pold" / "predictions.csv")
    b = pd.read_csv(tmp_path / "pnodate" / "predictions.csv")
    assert np.allclose(a.filter(like="p_").to_numpy(), b.filter(like="p_").to_numpy())
    current = ehr.loc[ehr["smoking"] == "Current"].iloc[0].to_dict()
    one = single_patient_cohort(current["patient_id"], current)
    assert float(one.ehr.loc[current["patient_id"], QUIT_YEARS]) == 0.0


def test_one_former_smokers_row_gets_the_years_since_quitting(tmp_path):
    """QA stage70: one patient's row (the Slicer stage panel's, `lungai demo --clinical`'s, predict_stage(ehr_row=))
    of a former smoker got no 'Years since quitting smoking': the smoking-status column was recognised only by a never-
    or current smoker's value, which such a row does not have.  The model's feature was imputed with the training
    median and the note asked for the columns the row had; on NSCLC-Radiogenomics (a model of its 162 staged
    patients, logistic regression) 5 of 40 former smokers got another stage than from the whole table, probabilities
    up to 0.25 apart."""
    from lungai.fusion.api import single_patient_cohort
    from lungai.io.tables import QUIT_YEARS, with_years_since_quitting

    row = {"Smoking status": "Former", "Quit Smoking Year": "1985", "CT Date": "4/20/1991", "Age": "70"}
    cohort = single_patient_cohort("R01-023", ehr_row=row)
    assert cohort.ehr.loc["R01-023", QUIT_YEARS] == 6.0
    for status in ("former smoker", "Ex-smoker", "EX_SMOKER"):
        out, _ = with_years_since_quitting(pd.DataFrame([{**row, "Smoking status": status}]), "a row")
        assert out[QUIT_YEARS].tolist() == [6.0], status
    # a status column whose values are no smoking words is still no status column: nothing computed
    out, _ = with_years_since_quitting(pd.DataFrame([{**row, "Smoking status": "Yes"}]), "a row")
    assert QUIT_YEARS not in out.columns


def test_a_former_smokers_row_predicts_as_in_the_whole_table(tmp_path):
    """The same, end to end: a model trained on a table with the feature; a former smoker's row given alone
    (predict_stage(ehr_row=)) is predicted as in the table, without the note on a column the table lacks."""
    from stage_helpers import stage_cli

    from lungai.fusion.api import predict_stage

    rng = np.random.default_rng(0)
    n = 30
    status = np.array(["Former", "Current", "Nonsmoker"] * (n // 3))
    quit_year = np.where(status == "Former", rng.integers(1960, 2000, n).astype(str), "N/A")
    ehr = pd.DataFrame({"Case ID": [f"P{i:02d}" for i in range(n)], "Smoking status": status,
                        "Quit Smoking Year": quit_year, "CT Date": [f"1/2/{2000 + i % 5}" for i in range(n)],
                        "Age": rng.integers(50, 80, n), "stage": ["I", "II"] * (n // 2)})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    assert stage_cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr", "--drop",
                      "CT Date", "--epochs", 1, "--inner-folds", 1, "--baselines", "logreg",
                      "-o", tmp_path / "m"]) == 0
    table = predict_stage(tmp_path / "m", ehr=tmp_path / "ehr.csv", use="logreg").set_index("patient_id")
    row = ehr.drop(columns="stage").iloc[0].astype(str).to_dict()       # P00, a former smoker
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one = predict_stage(tmp_path / "m", patient_id="P00", ehr_row=row, use="logreg").iloc[0]
    assert not any("not in the EHR table" in t for t in _notes(caught))
    assert "not in the EHR table" not in one["notes"]
    assert np.allclose([one[f"p_{c}"] for c in ("I", "II")], [table.loc["P00", f"p_{c}"] for c in ("I", "II")])
