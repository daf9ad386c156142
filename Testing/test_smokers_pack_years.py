"""A smoker's missing pack-years are imputed with the training smokers' median, not a median counting the
never-smokers' 0 (lungai.io.impute.SmokersMedianImputer, one imputer of lungai stage's EHR encoder and lungai rp's
pipeline).  NSCLC-Radiogenomics: its 48 'Nonsmoker' patients read 0 pack-years (lungai.io.tables.
never_smoker_pack_years); the median of all 211 patients is then 27 pack-years, the smokers' 37 - before, a smoker
whose 'Pack Years' is 'Not Collected' (8 patients) got 27."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
# the --drop columns of docs/stage.md's real-data commands: outcomes, treatment after staging, T-defining items, dates
DROP = ["Recurrence", "Recurrence Location", "Date of Recurrence", "Date of Last Known Alive", "Survival Status",
        "Date of Death", "Time to Death (days)", "Adjuvant Treatment", "Chemotherapy", "Radiation",
        "Lymphovascular invasion", "Pleural invasion (elastic, visceral, or parietal)", "CT Date", "PET Date"]


def test_the_imputer_takes_the_smokers_median_for_pack_years_only():
    """Pack-years: the median of the training values above 0 (a never-smoker's 0 left out); any other column: its
    plain median; fitted on an array (no column names): a plain median imputer."""
    from lungai.io.impute import SmokersMedianImputer

    X = pd.DataFrame({"Pack Years": [0, 0, 0, 0, 10, 20, 30, np.nan], "Age": [0, 0, 0, 0, 10, 20, 30, np.nan]})
    imp = SmokersMedianImputer(strategy="median").fit(X)
    assert imp.statistics_.tolist() == [20.0, 0.0]
    assert imp.transform(X)[-1].tolist() == [20.0, 0.0]
    assert imp.smokers_statistics() == {"Pack Years": 20.0}
    assert SmokersMedianImputer(strategy="median").fit(X.to_numpy()).statistics_.tolist() == [0.0, 0.0]
    only_zero = pd.DataFrame({"clin_pack_years": [0.0, 0.0, np.nan]})           # no smoker: the plain median
    assert SmokersMedianImputer(strategy="median").fit(only_zero).statistics_.tolist() == [0.0]


def _real_ehr(shared_data):
    from lungai.fusion.data import load_ehr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_ehr(shared_data / "nsclc_radiogenomics" / CLINICAL)


@pytest.mark.shared_data
def test_stage_imputes_a_smokers_missing_pack_years_with_the_training_folds_smokers_median(shared_data):
    """lungai stage's EHR encoder on the real CSV, fitted on a training fold (every other patient): a smoker whose
    'Pack Years' is 'Not Collected' is transformed as the smokers' median of that fold (not the fold's median of all
    patients, never-smokers' 0 included) - and the patients outside the fold do not move it (no leakage)."""
    from lungai.fusion.preprocess import EHREncoder

    ehr = _real_ehr(shared_data)
    cols = ["Pack Years", "Smoking status", "Age at Histological Diagnosis"]
    packs = pd.to_numeric(ehr["Pack Years"])
    smoker = ehr["Smoking status"] != "Nonsmoker"
    missing = ehr.index[packs.isna()]
    assert len(missing) == 8 and smoker[missing].all()
    train = ehr.index[::2]
    test = ehr.index[1::2]
    enc = EHREncoder().fit(ehr.loc[train, cols])
    smokers_median = float(packs[train][smoker[train]].median())
    all_median = float(packs[train].median())
    assert smokers_median - all_median > 5            # the fold's never-smokers' 0 pull the plain median down
    scaler = enc.transformer.named_transformers_["num"][-1]
    col = enc.feature_names().index("num__Pack Years")
    j = enc.numeric.index("Pack Years")
    x = enc.transform(ehr.loc[missing, cols])
    assert np.allclose(x[:, col] * scaler.scale_[j] + scaler.mean_[j], smokers_median, atol=1e-4)
    assert "num__missingindicator_Pack Years" in enc.feature_names()     # still flagged as imputed
    # the other fold's values do not enter the statistic: a copy with the test patients' pack-years changed fits the same
    moved = ehr.copy()
    moved.loc[test, "Pack Years"] = "500"
    again = EHREncoder().fit(moved.loc[train, cols])
    assert np.allclose(again.transform(ehr.loc[missing, cols]), x)
    # the whole table: 37 pack-years, not 27
    whole = EHREncoder().fit(ehr[cols]).transformer.named_transformers_["num"][0]
    assert whole.smokers_statistics() == {"Pack Years": 37.0}
    assert float(packs.median()) == 27.0


@pytest.mark.shared_data
def test_stage_says_how_a_smokers_missing_pack_years_are_imputed(shared_data):
    """The cohort's missing-values line (cv / train / validate, comparison.md, model_card.md) says the rule."""
    from lungai.fusion.data import ehr_missing_text, load_cohort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = load_cohort(shared_data / "nsclc_radiogenomics" / CLINICAL,
                             stage_from=["Pathological T stage", "Pathological N stage", "Pathological M stage"],
                             label="stage_group", drop_columns=DROP, check_leaks=False)
    text = ehr_missing_text(cohort.report)
    assert "Pack Years 5" in text
    assert ("a missing 'Pack Years' (a smoker's: a never-smoker's reads 0) with the median of the training patients' "
            "pack-years above 0 - the smokers', not one counting the never-smokers' 0") in text
    assert ("Years since quitting smoking 22" in text and "a missing 'Years since quitting smoking' (a former smoker's: "
            "a current or never-smoker's is 0) with the median of the training values above 0 - the former smokers'"
            in text)
    nopacks = dict(cohort.report)
    nopacks["ehr_missing_values"] = {**cohort.report["ehr_missing_values"],
                                     "columns": {"Weight (lbs)": 11}}
    assert "pack-years above 0" not in ehr_missing_text(nopacks)


@pytest.mark.shared_data
def test_rp_imputes_a_smokers_missing_pack_years_with_the_smokers_median(shared_data):
    """lungai rp's pipeline (lungai.rp.pipeline.build_pipeline) on the real CSV as rp reads it: the same imputer - a
    smoker's missing 'Pack Years' gets the training smokers' median (37), the never-smokers read 0."""
    from lungai.rp.checks import patients_table
    from lungai.rp.pipeline import build_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = patients_table(shared_data / "nsclc_radiogenomics" / CLINICAL, "Case ID", "the training table")
    X = pd.DataFrame({"Pack Years": pd.to_numeric(df["Pack Years"], errors="coerce"),
                      "Age at Histological Diagnosis": pd.to_numeric(df["Age at Histological Diagnosis"])})
    y = (df["Recurrence"].astype(str).str.lower() == "yes").astype(int).to_numpy()
    pipe = build_pipeline("lr", list(X.columns), []).fit(X, y)
    imputer = pipe.named_steps["pre"].named_transformers_["num"].named_steps["impute"]
    gaps = X["Pack Years"].isna().to_numpy()
    assert gaps.sum() == 8
    assert np.allclose(imputer.transform(X[gaps])[:, 0], 37.0)      # before: 27, never-smokers' 0 counted
    assert imputer.smokers_statistics() == {"Pack Years": 37.0}


def test_an_old_stage_model_still_predicts_and_says_its_pack_years_imputation(tmp_path, monkeypatch, capsys):
    """A model trained by an earlier lungai (its EHR encoder's median imputer a plain SimpleImputer, counting the
    never-smokers' 0) still loads and predicts as it did; ``stage predict`` says, for the patients whose pack-years
    are missing, the value it imputes and how to fix it (retrain), in the console and each patient's notes."""
    import sklearn.impute

    import lungai.io.impute as impute
    from stage_helpers import small_stage_cohort, stage_cli, stage_predict

    paths = small_stage_cohort(tmp_path / "c", 16)
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    ehr.loc[ehr["smoking"] == "Never", "pack_years"] = "N/A"         # read as 0
    smokers = ehr.index[ehr["smoking"] != "Never"]
    ehr.loc[smokers[:2], "pack_years"] = "Not Collected"             # a smoker's missing value: imputed
    ehr.to_csv(paths["ehr"], index=False)
    fast = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr"]
    for name, imputer in (("old", sklearn.impute.SimpleImputer), ("new", impute.SmokersMedianImputer)):
        monkeypatch.setattr(impute, "SmokersMedianImputer", imputer)     # "old": the imputer of an earlier lungai
        assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / name, *fast]) == 0
    monkeypatch.undo()
    gaps = (ehr["smoking"] != "Never") & ehr["pack_years"].isin(["Not Collected", "N/A", ""])
    missing = sorted(ehr.loc[gaps, "patient_id"])          # the 2 above and the cohort's own 'Not Collected' smokers
    assert len(missing) >= 2
    for name, said in (("old", True), ("new", False)):
        err, pred = stage_predict(tmp_path / name, paths["ehr"], tmp_path / f"p_{name}", capsys)
        notes = dict(zip(pred["patient_id"], pred["notes"]))
        assert ("never-smokers' 0 included" in err) is said, err
        for pid in missing:
            assert ("retrain it with lungai stage train" in notes[pid]) is said, notes[pid]
        if said:
            assert (f"{len(missing)} patients without 'pack_years' ({', '.join(missing)}): EHR 'pack_years' missing: "
                    "imputed with") in err, err
