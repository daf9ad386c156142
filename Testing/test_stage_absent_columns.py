"""A model's EHR column the new table lacks (`stage predict` / `stage validate`): stage69 found, on NSCLC-Radiogenomics'
clinical CSV with 'Pack Years' renamed 'pack_years' (as an export from another database writes it), only "warning: EHR
column of the model not in the EHR table: 'Pack Years' - treated as missing (imputed) for every patient" - no fix, and
the table's own 'pack_years' not named: every patient's pack-years imputed without the user learning why.  The warning
now says what to do and names a header of the table that looks like the model's column (punctuation, case and spaces
aside, or nearly the same letters)."""

from __future__ import annotations

import pandas as pd

from stage_helpers import small_stage_cohort, stage_cli, stage_predict

FAST = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr"]


def test_absent_text_names_the_fix_and_a_look_alike_header():
    from lungai.fusion.api import absent_ehr_text, look_alike_headers

    hints = look_alike_headers(["Pack Years", "Smoking status", "Weight (lbs)"],
                               ["Case ID", "pack_years", "Weight lbs", "Gender", "Age"])
    assert hints == {"Pack Years": "pack_years", "Weight (lbs)": "Weight lbs"}     # no header for 'Smoking status'
    text = absent_ehr_text(["Pack Years", "Smoking status"], hints)
    assert text.startswith("EHR columns of the model not in the EHR table: 'Pack Years', 'Smoking status' - treated "
                           "as missing (imputed) for every patient")
    assert "the table's 'pack_years' looks like 'Pack Years': rename it 'Pack Years' if it is that column" in text
    assert "give the table these columns under the model's names (as at training)" in text
    assert "looks like" not in absent_ehr_text(["Smoking status"], {})
    assert "give the table this column under the model's name" in absent_ehr_text(["Smoking status"], {})


def test_predict_names_the_renamed_column_and_the_fix(tmp_path, capsys):
    paths = small_stage_cohort(tmp_path / "c", 12)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m", *FAST]) == 0
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    ehr.rename(columns={"pack_years": "Pack-Years"}).drop(columns=["ldh"]).to_csv(tmp_path / "new.csv", index=False)
    err, pred = stage_predict(tmp_path / "m", tmp_path / "new.csv", tmp_path / "p", capsys)
    said = [ln for ln in err.splitlines() if "of the model not in the EHR table" in ln]
    assert len(said) == 1, err
    assert "'ldh', 'pack_years'" in said[0]
    assert "the table's 'Pack-Years' looks like 'pack_years': rename it 'pack_years' if it is that column" in said[0]
    assert "give the table these columns under the model's names" in said[0]
    assert pred["notes"].str.contains("rename it 'pack_years'", regex=False).all()
