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
        assert info["in_sample"] == {"model": "lungai-seg-dynunet", "patient": ids[0], "part": "training"}


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
