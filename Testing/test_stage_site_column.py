"""A site / hospital column among the EHR features (stagefollow68): NSCLC-Radiogenomics' 'Patient affiliation'
(Stanford / VA; 28 % vs 6 % never-smokers among the 162 staged patients) stayed a feature of the documented real-data
command without a word - a model can learn the site instead of the stage.  ``stage cv`` / ``train`` now warn, with the
--drop that leaves it out."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from lungai.errors import InputNote

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
TNM = ["Pathological T stage", "Pathological N stage", "Pathological M stage"]


def _site_notes(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputNote) and "site / hospital" in str(w.message)]


def test_site_names():
    from lungai.io.tables import is_site_name

    for name in ("Patient affiliation", "PatientAffiliation", "Hospital", "hospital_name", "Study site", "site",
                 "Treating institution", "Center", "centre_id", "clin_site_cat", "Enrolling clinic"):
        assert is_site_name(name), name
    for name in ("Primary tumor site", "Biopsy site", "Metastasis site", "Tumor Location (choice=RUL)", "Clinical T",
                 "Histology ", "Smoking status", "Pack Years", "Radiation", "Gender", "Ethnicity"):
        assert not is_site_name(name), name


@pytest.mark.shared_data
def test_training_on_the_real_csv_warns_of_the_site_column_with_its_drop(shared_data):
    """load_cohort as stage cv / train call it on the real CSV: one note naming 'Patient affiliation' (its values
    Stanford, VA) and the --drop that leaves it out; none with that --drop, none for validate / predict (a locked
    model's features are its own), none where the EHR is no model input."""
    from lungai.fusion.data import load_cohort

    path = shared_data / "nsclc_radiogenomics" / CLINICAL
    runs = {"train": {}, "dropped": {"drop_columns": ["Patient affiliation"]}, "validate": {"check_leaks": False},
            "rna only": {"ehr_used": ()}}
    said = {}
    for name, kw in runs.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_cohort(path, stage_from=TNM, label="stage_group", **kw)
        said[name] = _site_notes(caught)
    assert len(said["train"]) == 1, said
    note = said["train"][0]
    assert "'Patient affiliation'" in note and "'Stanford', 'VA'" in note
    assert "--drop 'Patient affiliation'" in note and "instead of the stage" in note
    assert said["dropped"] == said["validate"] == said["rna only"] == []


def test_a_single_site_or_a_body_site_column_is_not_warned_of(tmp_path):
    from lungai.fusion.data import load_cohort

    ehr = pd.DataFrame({"Case ID": [f"P{i}" for i in range(8)], "stage": ["I", "II"] * 4,
                        "Age": [60, 61, 62, 63, 64, 65, 66, 67],
                        "Primary tumor site": ["RUL", "LUL", "LUL", "RUL"] * 2, "Hospital": ["A"] * 8})
    ehr.to_csv(tmp_path / "one.csv", index=False)
    ehr.assign(Hospital=["A", "A", "B", "B"] * 2).to_csv(tmp_path / "two.csv", index=False)
    said = {}
    for name in ("one", "two"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_cohort(tmp_path / f"{name}.csv", label="stage")
        said[name] = _site_notes(caught)
    assert said["one"] == []                                      # one hospital: nothing to learn from it
    assert len(said["two"]) == 1 and "column 'Hospital' names the site" in said["two"][0]
    assert "--drop 'Hospital'" in said["two"][0] and "tumor site" not in said["two"][0]
