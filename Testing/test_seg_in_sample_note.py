"""A segmentation of a patient the model was trained on says so (QA newuser66).

QA on the real data: ``lungai demo --ct ../shared/data/nsclc_whole_ct/nifti/LUNG1-002_ct.nii.gz
--seed-point=-74.5,16.4,-18.7 --model lungai-seg-dynunet`` (and ``lungai segment`` alike) gave a 263.8 ml tumour with
confidence 0.80, "no review flag", and nothing said that LUNG1-002 is the real CT the DynUNet's 150 training tumours
were implanted into (model.json ``training.implant_background_patients``, its whole CT and a crop of its own tumour
trained on): an oncologist trying the model on it read an in-sample result as one on a new patient.  ``eval-seg``
already marks such cases (``lungai.seg.evaluate.seen_patients``); ``add_model_notes`` - the one place lungai segment,
lungai demo, the panel and cohort add what a result says of its model - now says it too."""

from __future__ import annotations

import json

from lungai.seg.choice import add_model_notes


def _in_sample(info: dict) -> list[str]:
    return [n for n in info.get("notes", []) if "in-sample" in n]


def test_a_patient_the_dynunet_was_trained_on_is_said_in_sample():
    for ids in (["LUNG1-002"], ["LUNG1-002_ct"], ["lung1-002_ct"]):   # a DICOM PatientID, a NIfTI file's name
        info = {"notes": []}
        add_model_notes("lungai-seg-dynunet", info, patients=ids)
        said = _in_sample(info)
        assert len(said) == 1, (ids, info["notes"])
        assert ids[0] in said[0] and "lungai-seg-dynunet" in said[0] and "training" in said[0], said[0]
        # the patient, not the file name (QA trainfollow71); the shipped model's cases are not known
        assert info["in_sample"] == {"model": "lungai-seg-dynunet", "patient": ids[0].split("_")[0], "cases": [],
                                     "part": "training"}


def _model_of(folder, train: dict, val: dict, checkpoints: bool = True):
    """A model folder of train-seg's records only: model.json's salted patient hashes (patient and case names, as
    lungai.seg.ensemble.patient_record writes them) and ``training.val_cases``, checkpoints/settings.json's
    ``train_cases``.  ``train`` / ``val``: {patient: [cases]}."""
    from lungai.model_files import training_patients

    def record(parts):
        return training_patients([tuple(sorted({p, *cs})) for p, cs in sorted(parts.items())])

    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({
        "training": {"val_cases": sorted(c for cs in val.values() for c in cs)},
        "training_patients": record(train), "validation_patients": record(val)}), encoding="utf-8")
    if checkpoints:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "settings.json").write_text(json.dumps(
            {"train_cases": sorted(c for cs in train.values() for c in cs)}), encoding="utf-8")
    return folder


def test_another_crop_of_a_training_patient_names_the_patient_and_the_matched_cases(tmp_path):
    """QA trainfollow71: ``lungai segment LIDC-IDRI-0012_R_2.nii.gz --model M`` (M trained on LIDC-IDRI-0012_R_1) said
    "this CT's patient (LIDC-IDRI-0012_R_2) was in the training data" and recorded ``in_sample.patient`` =
    "LIDC-IDRI-0012_R_2": the match was on the patient LIDC-IDRI-0012, through the model's crop R_1.  The note and
    the record name the patient and the model's case(s) of that patient."""
    from lungai.seg.choice import in_sample_note

    model = _model_of(tmp_path / "m", {"LIDC-IDRI-0012": ["LIDC-IDRI-0012_R_1", "LIDC-IDRI-0012_R_3"],
                                       "LIDC-IDRI-0001": ["LIDC-IDRI-0001_R_1"]},
                      {"LIDC-IDRI-0003": ["LIDC-IDRI-0003_R_2"]})
    note, rec = in_sample_note(model, {}, ["LIDC-IDRI-0012_R_2"])
    assert rec == {"model": "m", "patient": "LIDC-IDRI-0012", "cases": ["LIDC-IDRI-0012_R_1", "LIDC-IDRI-0012_R_3"],
                   "part": "training"}, rec
    assert "this CT's patient (LIDC-IDRI-0012 of LIDC-IDRI-0012_R_2) was in the training data" in note, note
    assert "cases LIDC-IDRI-0012_R_1, LIDC-IDRI-0012_R_3 of that patient" in note, note
    # a validation patient's crop: its cases from model.json's training.val_cases
    note, rec = in_sample_note(model, {}, ["LIDC-IDRI-0003_R_4"])
    assert (rec["patient"], rec["cases"], rec["part"]) == ("LIDC-IDRI-0003", ["LIDC-IDRI-0003_R_2"], "validation")
    # the model's own case: said as this very CT
    note, rec = in_sample_note(model, {}, ["LIDC-IDRI-0001_R_1"])
    assert rec["cases"] == ["LIDC-IDRI-0001_R_1"] and "this very CT" in note, note
    # without checkpoints/ (training cases only hashed): the patient, and this CT when its own name was a case
    bare = _model_of(tmp_path / "b", {"LIDC-IDRI-0012": ["LIDC-IDRI-0012_R_1"]}, {"LIDC-IDRI-0003": ["X_1"]},
                     checkpoints=False)
    assert in_sample_note(bare, {}, ["LIDC-IDRI-0012_R_2"])[1]["cases"] == []
    assert in_sample_note(bare, {}, ["LIDC-IDRI-0012_R_1"])[1]["cases"] == ["LIDC-IDRI-0012_R_1"]


def test_a_patient_no_model_saw_gets_no_such_note():
    for model, ids in (("lungai-seg-dynunet", ["LUNG1-003"]), ("lungai-seg-dynunet", ["LUNG1-0021"]),
                       ("lungai-seg-dynunet", []), ("lungai-seg-unet-ensemble", ["LUNG1-002"])):
        info = {"notes": []}
        add_model_notes(model, info, patients=ids)
        assert not _in_sample(info) and "in_sample" not in info, (model, ids, info["notes"])


def test_a_routed_choice_names_the_kept_model_only():
    """The routed choice's note follows the model whose result was kept: the DynUNet's on LUNG1-002 is in-sample, the
    default's (which records no training patient) is not said to be."""
    kept_dynunet = {"notes": [], "model_choice": {"kept": "lungai-seg-dynunet"}}
    add_model_notes("lungai-seg-routed", kept_dynunet, patients=["LUNG1-002"])
    assert _in_sample(kept_dynunet) and "lungai-seg-dynunet" in _in_sample(kept_dynunet)[0]
    kept_default = {"notes": [], "model_choice": {"kept": "lungai-seg-unet-ensemble"}}
    add_model_notes("lungai-seg-routed", kept_default, patients=["LUNG1-002"])
    assert not _in_sample(kept_default), kept_default["notes"]


def test_the_note_is_json_and_said_by_segment(tmp_path, monkeypatch, capsys):
    """``lungai segment`` passes the CT's names (its file name for a NIfTI) and prints the note (result.json too)."""
    import SimpleITK as sitk
    import numpy as np

    from lungai.cli import main
    from lungai.io.write import write_image
    from seg_helpers import stub_segment_on_input

    ct = sitk.GetImageFromArray(np.full((24, 40, 40), -800, np.int16))
    ct.SetSpacing((2.0, 2.0, 3.0))
    path = write_image(ct, tmp_path / "LUNG1-002_ct.nii.gz")
    stub_segment_on_input(monkeypatch)
    out = tmp_path / "out"
    main(["segment", str(path), "-o", str(out), "--model", "lungai-seg-dynunet", "--seed-point=0,0,0"])
    err = capsys.readouterr()
    notes = json.loads((out / "result.json").read_text())["notes"]
    assert [n for n in notes if "in-sample" in n], notes
    assert "in-sample" in err.out + err.err
