"""``lungai rp train`` and a site / hospital column among the features (smallfix68): a role file naming
NSCLC-Radiogenomics' 'Patient affiliation' (Stanford / VA) a clinical feature trained on it without a word, while
``lungai stage cv`` / ``train`` warn of such a column.  rp train now says the same warning (one message builder:
:func:`lungai.io.tables.site_column_text`), with rp's fix - the role ignore in the role file - and keeps it in the
model card where the locked model uses the column."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from lungai.errors import InputNote

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
FAST = dict(models="lr", feature_sets="clinical_dosimetric", outer_folds=2, inner_folds=2, fast=True, n_boot=2,
            make_plots=False)


def _site_notes(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputNote) and "site / hospital" in str(w.message)]


@pytest.mark.shared_data
def test_rp_train_on_the_real_csv_warns_of_the_site_column_with_the_role_file_fix(shared_data, tmp_path):
    """The real clinical CSV (Recurrence yes / no) with a role file naming 'Patient affiliation' clinical: one warning
    naming it, its values (Stanford, VA) and rp's fix (the role ignore in a role file; no --drop, a lungai stage
    option), kept in the model card; none when the role file ignores the column."""
    from lungai.rp.training import train_rp

    table = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    table = table[table["Recurrence"].isin(["yes", "no"])]
    table.to_csv(tmp_path / "clinical.csv", index=False)
    said, cards = {}, {}
    for name, role in (("site", "clinical"), ("ignored", "ignore")):
        (tmp_path / f"{name}.csv").write_text(
            "column,role,type\nCase ID,id,\nRecurrence,ignore,\nAge at Histological Diagnosis,clinical,\n"
            f"Gender,clinical,\nPatient affiliation,{role},\n", encoding="utf-8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_rp(tmp_path / "clinical.csv", "Recurrence", tmp_path / name, role_file=tmp_path / f"{name}.csv",
                     **FAST)
        said[name] = _site_notes(caught)
        cards[name] = json.loads((tmp_path / name / "model_card.json").read_text(encoding="utf-8"))
    assert len(said["site"]) == 1, said
    note = said["site"][0]
    assert "column 'Patient affiliation' names the site / hospital a patient was treated at ('Stanford', 'VA')" in note
    assert "instead of the outcome 'Recurrence'" in note
    assert "the role ignore for 'Patient affiliation' in a role file, --roles" in note
    assert "--drop" not in note and "docs/stage.md" not in note           # lungai stage's fix: rp has no --drop
    assert "Patient affiliation" in cards["site"]["features"]
    assert note in cards["site"]["warnings"]
    assert said["ignored"] == [] and not [w for w in cards["ignored"]["warnings"] if "site / hospital" in w]


def test_stage_and_rp_say_the_site_column_with_one_message_builder(tmp_path):
    """A small table with a two-hospital column: lungai stage's load_cohort and rp train say the same sentence (one
    builder), each with its own fix."""
    from lungai.fusion.data import load_cohort
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    df = make_cohort(60, seed=3, n_noise=0).table[["case", "rp_grade2", "clin_age_years", "dose_mld_gy"]]
    df["clin_hospital_cat"] = ["A", "B", "N/A"] * 20          # a missing word is no third hospital
    df.to_csv(tmp_path / "rp.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_rp(tmp_path / "rp.csv", "rp_grade2", tmp_path / "m", **FAST)
    rp_notes = _site_notes(caught)
    ehr = df.rename(columns={"case": "Case ID"})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_cohort(tmp_path / "ehr.csv", label="rp_grade2")
    stage_notes = _site_notes(caught)
    assert len(rp_notes) == 1 and len(stage_notes) == 1, (rp_notes, stage_notes)
    common = "column 'clin_hospital_cat' names the site / hospital a patient was treated at ('A', 'B') and is a feature"
    assert common in rp_notes[0] and common in stage_notes[0]
    assert "the role ignore for 'clin_hospital_cat' in a role file, --roles" in rp_notes[0]
    assert "--drop 'clin_hospital_cat'" in stage_notes[0] and "--roles" not in stage_notes[0]
