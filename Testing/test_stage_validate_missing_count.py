"""`stage validate`'s EHR missing-values line counts the locked models' EHR columns only.  stage69: a model trained on
NSCLC-Radiogenomics (its feature 'Years since quitting smoking', not the quit year) validated on the same CSV said
"EHR: missing values in 8 of 23 columns (109 of 162 patients): Quit Smoking Year 80, ..." - training had said "7 of 22
columns (76 of 162 patients)": the quit year, which validate keeps only for a model trained before, is no input of this
model and nothing of it is imputed; a header the model does not know ('pack_years' for its 'Pack Years') was counted
too.  Said on the console and in metrics.json's ``cohort``."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from stage_helpers import stage_cli

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
STAGE = ["--stage-from", "Pathological T stage,Pathological N stage,Pathological M stage", "--label", "stage_group"]
DROPS = ["Recurrence", "Recurrence Location", "Date of Recurrence", "Date of Last Known Alive", "Survival Status",
         "Date of Death", "Time to Death (days)", "Adjuvant Treatment", "Chemotherapy", "Radiation",
         "Lymphovascular invasion", "Pleural invasion (elastic, visceral, or parietal)", "CT Date", "PET Date",
         "Patient affiliation"]


@pytest.mark.shared_data
def test_validate_counts_missing_values_of_the_models_ehr_columns_only(shared_data, tmp_path, capsys):
    from lungai.fusion import model_io
    from lungai.fusion.api import model_inputs

    csv = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    csv[csv["Patient affiliation"] == "VA"].to_csv(tmp_path / "va.csv", index=False)
    stanford = csv[csv["Patient affiliation"] == "Stanford"]
    stanford.to_csv(tmp_path / "stanford.csv", index=False)
    stanford.rename(columns={"Pack Years": "pack_years"}).to_csv(tmp_path / "renamed.csv", index=False)
    drops = [a for c in DROPS for a in ("--drop", c)]
    assert stage_cli(["train", "--ehr", tmp_path / "va.csv", *STAGE, *drops, "--modalities", "ehr", "--epochs", 1,
                      "--inner-folds", 1, "--baselines", "logreg", "-o", tmp_path / "m"]) == 0
    pipe, baselines, _ = model_io.load(tmp_path / "m")
    used = set(model_inputs(pipe)["ehr"]) | {c for b in baselines.values() for c in model_inputs(b)["ehr"]}
    assert "Years since quitting smoking" in used and "Quit Smoking Year" not in used
    for name in ("stanford", "renamed"):
        capsys.readouterr()
        assert stage_cli(["validate", "--model", tmp_path / "m", "--ehr", tmp_path / f"{name}.csv",
                          "-o", tmp_path / f"v_{name}"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("EHR: missing values"))
        gaps = json.loads((tmp_path / f"v_{name}" / "metrics.json").read_text())["cohort"]["ehr_missing_values"]
        assert "Quit Smoking Year" not in line and "Quit Smoking Year" not in gaps["columns"], line
        assert "pack_years" not in line and "pack_years" not in gaps["columns"], line
        assert set(gaps["columns"]) <= used and gaps["columns"].get("Years since quitting smoking"), gaps
        assert gaps["n_columns"] == len(used) - (name == "renamed"), (gaps, sorted(used))
