"""The warnings of ``lungai stage`` kept with the saved results: ``validate``'s own warnings (CTs not used, patients
not computed, a class no scored patient has) are :class:`lungai.errors.InputNote`s written in metrics.json, not only
printed; every note naming patient IDs has its ``without_ids`` form, so a locked model's folder (which keeps the
run's warnings in that form) never holds a plain patient ID."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.errors import InputNote
from note_helpers import notes_made
from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 2, "--top-k", 5, "--neighbours", 2, "--inner-folds", 1, "--baselines", "logreg"]
OWN = "--include-training-patients"


_cli = stage_cli


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return small_stage_cohort(tmp_path_factory.mktemp("syn"), 12)


@pytest.fixture(scope="module")
def no_ct_model(syn, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "model"
    assert _cli(["train", "--ehr", syn["ehr"], "--rna", syn["rna"], "--label", "stage", "-o", out, *FAST]) == 0
    return out


def _naming(text, ids) -> list:
    return [i for i in ids if i in str(text)]


def test_validate_keeps_its_own_warnings_in_metrics_json(tmp_path, syn, no_ct_model, capsys):
    """QA stage64: validate printed "the CTs are not used", "no stage for N patients" and "no scored <class>
    patient" with print only: metrics.json's warnings lacked them, so a reader of the saved results did not learn
    that the CTs were ignored or that patients were left out of the scores."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    gone = sorted(ehr.stage.unique())[-1]
    ehr = ehr[ehr.stage != gone].reset_index(drop=True)              # no scored patient of one class
    feats = [c for c in ehr.columns if c not in ("patient_id", "stage")]
    ehr.loc[ehr.index[:2], feats] = ""                               # two patients: label only, no input
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    blank = list(ehr.patient_id[:2])
    assert _cli(["validate", OWN, "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--ct", syn["ct"],
                 "--label", "stage", "-o", tmp_path / "v"]) == 0
    err = capsys.readouterr().err
    warned = json.loads((tmp_path / "v" / "metrics.json").read_text())["warnings"]
    expected = ["the CTs are not used: fusion was trained without a CT manifest",
                "the CTs are not used: logreg was trained without a CT manifest",
                "no stage for 2 patients (", f"no scored {gone} patient for fusion"]
    for text in expected:
        assert any(text in w for w in warned), (text, warned)      # kept in the saved results
        assert f"warning: {text}" in err                             # and said on the console, as before
    notcomputed = next(w for w in warned if w.startswith("no stage for 2 patients"))
    assert all(p in notcomputed for p in blank)                      # a local report: the IDs named


def test_no_patient_id_reaches_a_locked_model_and_each_id_note_has_a_form_without(tmp_path, syn, monkeypatch):
    """The automatic check of the rule "a warning naming patient IDs gives ``without_ids``": train, validate and
    predict on a cohort whose tables give the ID-naming warnings (RNA IDs not in the EHR table, an empty RNA
    profile, an infinite value in a row no patient uses, CT files missing, patients with none of the model's
    inputs, CTs a model does not use, the model's own training patients predicted); every InputNote made that names
    an ID must have a ``without_ids`` form naming none, and the locked model's record (stage_model.json,
    model_card.md) names no ID."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    rna = pd.read_csv(syn["rna"], dtype=str)
    man = pd.read_csv(syn["ct"], dtype=str)
    ids = list(ehr.patient_id)
    rna["ZZ-0901"] = "0.5"                                           # an RNA patient not in the EHR table
    rna["ZZ-0902"] = ["inf"] + ["0.1"] * (len(rna) - 1)              # ... and one with an infinite value
    rna[ids[3]] = ""                                                 # an empty RNA profile
    rna.to_csv(tmp_path / "rna.csv", index=False)
    man.loc[len(man)] = ["ZZ-0903", "ct/gone.nii.gz", "ct/gone_mask.nii.gz"]
    man.loc[man.patient_id == ids[4], "image"] = "ct/missing.nii.gz"  # CT files missing for a patient
    for c in man.columns[1:]:
        man[c] = [str(syn["ct"].parent / v) for v in man[c]]
    man.to_csv(tmp_path / "manifest.csv", index=False)
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    all_ids = ids + ["ZZ-0901", "ZZ-0902", "ZZ-0903"]
    made = notes_made(monkeypatch)
    data = ["--ehr", tmp_path / "ehr.csv", "--rna", tmp_path / "rna.csv", "--label", "stage"]
    model = tmp_path / "model"
    assert _cli(["train", *data, "--modalities", "ehr,rna", "-o", model, *FAST]) == 0
    record = (model / "stage_model.json").read_text() + (model / "model_card.md").read_text()
    assert not _naming(record, all_ids), _naming(record, all_ids)
    assert json.loads((model / "stage_model.json").read_text())["warnings"]      # the warnings are kept, counted
    # validate / predict: patients with none of the model's inputs, CTs the model does not use, CT files missing
    blank = ehr.copy()
    blank.loc[blank.index[:2], [c for c in blank.columns if c not in ("patient_id", "stage")]] = ""
    blank.to_csv(tmp_path / "ehr_blank.csv", index=False)
    new = ["--ehr", tmp_path / "ehr_blank.csv", "--ct", tmp_path / "manifest.csv"]
    assert _cli(["validate", OWN, "--model", model, *new, "--label", "stage", "-o", tmp_path / "v"]) == 0
    assert _cli(["predict", "--model", model, *new, "-o", tmp_path / "p"]) == 0
    texts = [str(n) for n in made]
    for wanted in ("join the EHR table", "empty RNA profile", "infinite value", "files missing",
                   "no stage for 2 patients", "the CTs are not used", "in the model's training cohort (",
                   "are scored as asked (--include-training-patients)"):
        assert any(wanted in t for t in texts), (wanted, texts)      # the check saw each kind of note
    # every note, the in-sample one of predict (lungai.model_files.in_sample_patients, shared with lungai rp) too:
    # QA stagefollow64, before it named the training patients with no form without them (and was skipped here)
    for note in made:
        named = _naming(note, all_ids)
        if named:
            assert note.without_ids, f"an InputNote names patient IDs {named} without a without_ids form: {note}"
            assert not _naming(note.without_ids, all_ids), note.without_ids


def test_predict_explain_says_each_warning_once(tmp_path, syn, no_ct_model, capsys):
    """QA stagefollow64: ``stage predict --explain`` said an EHR value that is not a trained level twice - once when
    predicting, once when explaining (the same forward pass run again for the Shapley values).  Each warning once."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    ehr.loc[ehr.index[:2], "smoking"] = "Heavy"                       # not a trained level of 'smoking'
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["predict", "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--rna", syn["rna"],
                 "--use", "fusion", "--explain", "-o", tmp_path / "p"]) == 0
    assert (tmp_path / "p" / "top_genes_per_patient.csv").is_file()  # it explained
    err = capsys.readouterr().err
    assert err.count("not a trained level") == 1, err
    assert err.count("were in the model's training cohort (") == 1, err


def test_validate_keeps_its_training_overlap_notes_with_a_form_without_ids(tmp_path, syn, no_ct_model, capsys,
                                                                            monkeypatch):
    """QA stageoverlap64: validate's notes on the model's own training patients (left out; IDs matching a training
    patient's only ignoring case) were printed strings: not InputNotes (the automatic ID check above did not see
    them, and they had no ``without_ids`` form), and not in metrics.json's ``warnings`` with the run's others."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    train_ids = list(ehr.patient_id)
    loose = ehr.iloc[:2].copy()
    loose["patient_id"] = loose.patient_id.str.lower()              # a training patient's ID, another case
    new = ehr.iloc[2:8].copy()
    new["patient_id"] = [f"EXT-{k:02d}" for k in range(6)]
    pd.concat([ehr.iloc[2:], loose, new]).to_csv(tmp_path / "ehr.csv", index=False)
    all_ids = train_ids + list(loose.patient_id) + list(new.patient_id)
    made = notes_made(monkeypatch)
    assert _cli(["validate", "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--label", "stage",
                 "-o", tmp_path / "v"]) == 0
    err = capsys.readouterr().err
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    for text in ("10 of the 18 patients were in the model's training cohort (",
                 "2 patients match a training patient ignoring case"):
        assert f"note: {text}" in err                                # said, as before
        kept = [w for w in m["warnings"] if w.startswith(text)]
        assert kept and _naming(kept[0], all_ids), m["warnings"]     # kept in the local report, the IDs named
        note = next(n for n in made if str(n).startswith(text))      # an InputNote, with a form without the IDs
        assert note.without_ids and not _naming(note.without_ids, all_ids), note.without_ids
        assert note.without_ids.startswith(text.removesuffix(" (")), note.without_ids
    assert len(m["overlap_notes"]) == 2 and all(n in m["warnings"] for n in m["overlap_notes"])


def test_predict_says_a_warning_of_loading_and_predicting_once(tmp_path, syn, no_ct_model, capsys, monkeypatch):
    """QA stageoverlap64: ``stage predict`` said the warnings of loading the cohort in a block of their own, not
    de-duplicated against the later blocks (which share the texts said): one raised both when loading and when
    predicting was said twice."""
    import warnings

    from lungai.fusion import api, model_io

    text = "the same note on loading and predicting"
    check, frame = model_io.check_new_rna, api.predict_frame

    def check_and_warn(*args, **kwargs):
        warnings.warn(InputNote(text))
        return check(*args, **kwargs)

    def frame_and_warn(*args, **kwargs):
        warnings.warn(InputNote(text))
        return frame(*args, **kwargs)

    monkeypatch.setattr(model_io, "check_new_rna", check_and_warn)
    monkeypatch.setattr(api, "predict_frame", frame_and_warn)
    assert _cli(["predict", "--model", no_ct_model, "--ehr", syn["ehr"], "--rna", syn["rna"], "--use", "fusion",
                 "-o", tmp_path / "p"]) == 0
    err = capsys.readouterr().err
    assert err.count(text) == 1, err


def test_predicts_id_naming_notes_on_numeric_text_and_cut_tumours_have_a_form_without_ids(tmp_path, syn,
                                                                                          monkeypatch):
    """QA ids65: two notes of stage predict / validate named patient IDs with no ``without_ids`` form - "2 patients
    get no stage: text in a numeric EHR column of the model: SYN...: EHR 'ldh' = '1,5' ..." and "2 patients' tumours
    lie partly outside the CT crop the network sees (share outside): SYN... 40 %" - outside the automatic check above
    (its cohort raised neither).  Now each counts the patients in its form without them, the rest of the text kept."""
    from lungai.fusion import pipeline

    ehr = pd.read_csv(syn["ehr"], dtype=str)
    ids = list(ehr.patient_id)
    model = tmp_path / "ct_model"
    assert _cli(["train", "--ehr", syn["ehr"], "--rna", syn["rna"], "--ct", syn["ct"], "--label", "stage",
                 "-o", model, *FAST]) == 0
    ehr.loc[ehr.index[:2], "ldh"] = "1,5"                                # a decimal comma: no stage for these two
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    monkeypatch.setattr(pipeline, "crop_outside_share", lambda *entry: 0.4)   # every tumour larger than the crop
    made = notes_made(monkeypatch)
    assert _cli(["predict", "--model", model, "--ehr", tmp_path / "ehr.csv", "--rna", syn["rna"], "--ct", syn["ct"],
                 "--use", "fusion", "-o", tmp_path / "p"]) == 0
    wanted = {"get no stage: text in a numeric EHR column": "EHR 'ldh' = '1,5' is not a number",
              "partly outside the CT crop the network sees": "CT input and Grad-CAM cover only part of the tumour"}
    for head, kept in wanted.items():
        note = next((n for n in made if head in str(n)), None)
        assert note is not None, (head, [str(n) for n in made])
        assert _naming(note, ids)                                          # the console names them, as before
        assert note.without_ids and not _naming(note.without_ids, ids), (str(note), note.without_ids)
        assert head in note.without_ids and kept in note.without_ids, note.without_ids
