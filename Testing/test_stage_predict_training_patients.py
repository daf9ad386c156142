"""``lungai stage predict`` (and ``lungai.fusion.api.predict_stage``) says which patients the locked model was trained
on: their predictions are in-sample (the model was fitted to their stage), not an honest estimate.

QA on NSCLC-Radiogenomics: a model trained on the 162 labelled patients, asked to predict the whole clinical table
(211 patients), gave all 211 predictions alike - "computed", no note - although 162 of them were its own training
patients (stage_model.json records their salted ID hashes; only `stage validate` used them)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.fusion.model_io import IN_SAMPLE_NOTE, LOOSE_MATCH_NOTE
from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 2, "--top-k", 5, "--neighbours", 2, "--inner-folds", 1, "--baselines", "logreg"]


_cli = stage_cli


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A synthetic cohort; the model is trained on all but 4 of its patients (the new ones)."""
    root = tmp_path_factory.mktemp("syn")
    paths = small_stage_cohort(root, 18)
    ehr = pd.read_csv(paths["ehr"])
    new = ehr.patient_id.tolist()[-4:]
    ehr[~ehr.patient_id.isin(new)].to_csv(root / "train.csv", index=False)
    model = root / "model"
    assert _cli(["train", "--ehr", root / "train.csv", "--rna", paths["rna"], "--label", "stage", "-o", model,
                 *FAST]) == 0
    return {"ehr": paths["ehr"], "rna": paths["rna"], "model": model, "new": new,
            "trained": [p for p in ehr.patient_id if p not in new]}


def test_predict_marks_the_models_training_patients_as_in_sample(cohort, tmp_path, capsys):
    assert _cli(["predict", "--model", cohort["model"], "--ehr", cohort["ehr"], "--rna", cohort["rna"],
                 "-o", tmp_path / "p"]) == 0
    err = capsys.readouterr().err
    df = pd.read_csv(tmp_path / "p" / "predictions.csv").set_index("patient_id")
    assert df.loc[cohort["trained"], "training_patient"].all()
    assert not df.loc[cohort["new"], "training_patient"].any()
    assert df.loc[cohort["trained"], "notes"].str.contains(IN_SAMPLE_NOTE, regex=False).all()
    assert not df.loc[cohort["new"], "notes"].fillna("").str.contains("in-sample").any()
    assert (df.status == "computed").all()          # still predicted: said, not refused
    assert (f"warning: 14 of the 18 patients were in the model's training cohort ({cohort['trained'][0]}, "
            in err) and "in-sample" in err


def test_an_id_matching_a_training_patient_only_loosely_is_named(cohort, tmp_path, capsys):
    ehr = pd.read_csv(cohort["ehr"])
    ehr = ehr[ehr.patient_id.isin(cohort["trained"][:2])]
    ehr.loc[ehr.index[0], "patient_id"] = ehr.patient_id.iloc[0].lower()      # 'syn0-00000' for 'SYN0-00000'
    ehr.to_csv(tmp_path / "e.csv", index=False)
    assert _cli(["predict", "--model", cohort["model"], "--ehr", tmp_path / "e.csv", "-o", tmp_path / "p"]) == 0
    capsys.readouterr()
    df = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert df.training_patient.tolist() == [True, False]        # name order: 'SYN0-00001' before 'syn0-00000'
    assert LOOSE_MATCH_NOTE in df.notes.iloc[1] and IN_SAMPLE_NOTE in df.notes.iloc[0]


def test_the_python_api_marks_them_too(cohort):
    from lungai.fusion.api import predict_stage

    with pytest.warns(UserWarning, match="14 of the 18 patients were in the model's training cohort"):
        df = predict_stage(cohort["model"], ehr=cohort["ehr"], rna=cohort["rna"]).set_index("patient_id")
    assert df.loc[cohort["trained"], "training_patient"].all() and not df.loc[cohort["new"], "training_patient"].any()


def test_a_model_without_recorded_training_patients_says_it_cannot_tell(cohort, tmp_path, capsys):
    import shutil

    model = tmp_path / "old_model"
    shutil.copytree(cohort["model"], model)
    meta = json.loads((model / "stage_model.json").read_text())
    del meta["training_patients"]                        # as a model of a lungai before 2026-12
    (model / "stage_model.json").write_text(json.dumps(meta))
    assert _cli(["predict", "--model", model, "--ehr", cohort["ehr"], "-o", tmp_path / "p"]) == 0
    assert "whether a patient was in the model's training cohort" in capsys.readouterr().err
    df = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert df.training_patient.isna().all()


def test_the_slicer_logic_notes_a_training_patient(cohort, mrml_scene):
    """lungai.scene.stage.predict_stage_nodes (the Slicer panel's in-process path): the note for a training patient,
    none for a new one."""
    from lungai.scene.stage import predict_stage_nodes

    seen = predict_stage_nodes(mrml_scene, cohort["model"], cohort["trained"][0], ehr_path=cohort["ehr"],
                               rna_path=cohort["rna"])
    new = predict_stage_nodes(mrml_scene, cohort["model"], cohort["new"][0], ehr_path=cohort["ehr"],
                              rna_path=cohort["rna"])
    assert IN_SAMPLE_NOTE in seen["notes"] and IN_SAMPLE_NOTE not in new["notes"]
