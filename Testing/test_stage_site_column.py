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


def test_a_site_column_kept_on_purpose_is_said_once_as_kept_on_request(shared_data):
    """stage69: a user who keeps 'Patient affiliation' knowingly had no way to say so - the warning told them to
    --drop it on every run.  --keep-column names it (matched as --drop is, case and spaces ignored): the one note says
    it was kept on request, with what that risks, and no longer asks for the --drop."""
    from lungai.fusion.data import load_cohort

    path = shared_data / "nsclc_radiogenomics" / CLINICAL
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = load_cohort(path, stage_from=TNM, label="stage_group", keep_columns=["patient affiliation"])
    said = _site_notes(caught)
    assert len(said) == 1, said
    assert "'Patient affiliation'" in said[0] and "'Stanford', 'VA'" in said[0]
    assert "kept as a feature on request (--keep-column 'Patient affiliation')" in said[0]
    assert "instead of the stage" in said[0] and "--drop" not in said[0]
    assert "Patient affiliation" in cohort.ehr.columns          # still a feature


def test_keep_column_keeps_one_site_column_the_other_is_still_warned_of(tmp_path, capsys):
    """Two site columns, one kept with --keep-column: `stage train` says the kept one once as kept on request and
    the other with its --drop; the model card keeps both warnings."""
    from stage_helpers import stage_cli

    ehr = pd.DataFrame({"Case ID": [f"P{i:02d}" for i in range(16)], "stage": ["I", "II"] * 8,
                        "Age": [55 + (i * 7) % 23 for i in range(16)],
                        "Hospital": ["A", "A", "B", "B"] * 4, "Study site": ["X", "Y"] * 4 + ["Y", "X"] * 4})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    capsys.readouterr()
    assert stage_cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr",
                      "--keep-column", "hospital", "--epochs", 1, "--inner-folds", 1, "--baselines", "logreg",
                      "-o", tmp_path / "m"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "site / hospital" in ln]
    assert len(lines) == 2, lines
    kept = [ln for ln in lines if "'Hospital'" in ln]
    other = [ln for ln in lines if "'Study site'" in ln]
    assert len(kept) == len(other) == 1
    assert "kept as a feature on request (--keep-column 'Hospital')" in kept[0] and "--drop" not in kept[0]
    assert "--drop 'Study site'" in other[0] and "'Hospital'" not in other[0]
    card = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    assert "kept as a feature on request (--keep-column 'Hospital')" in card and "--drop 'Study site'" in card
