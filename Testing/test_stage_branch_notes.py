"""`lungai stage train`'s notes on a fusion branch left out or masked name why: no table given, or too few of the
table's training patients having it.

QA stagefollow65: `lungai stage train --ehr ehr.csv --label stage` (no --rna, no --ct) printed
"note: RNA: fewer than 2 training patients have it, branch left out" and "note: CT: no training patient has it,
branch masked" - as if the RNA / CT tables given lacked those patients, when none was given at all."""

from __future__ import annotations

from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg"]
RNA_NOT_GIVEN = "no RNA table given (--rna): RNA branch left out"
CT_NOT_GIVEN = "no CT manifest given (--ct): CT branch masked"
CT_UNTRAINED = "CT: no training patient has it, branch masked"


def test_train_without_rna_or_ct_says_no_table_was_given(tmp_path, capsys):
    from lungai.fusion import model_io
    from lungai.fusion.api import model_inputs
    from lungai.fusion.baseline import model_labels

    paths = small_stage_cohort(tmp_path / "c", 12)
    capsys.readouterr()
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m", *FAST]) == 0
    out = capsys.readouterr().out
    assert f"note: {RNA_NOT_GIVEN}" in out and f"note: {CT_NOT_GIVEN}" in out
    assert "fewer than 2 training patients" not in out and "no training patient has it" not in out
    # the saved model: its CT branch still counts as never trained (masked for every patient, named so)
    pipe, _, _ = model_io.load(tmp_path / "m")
    assert pipe.notes == [RNA_NOT_GIVEN, CT_NOT_GIVEN]
    assert model_inputs(pipe)["ct"] is False and model_inputs(pipe)["rna"] is False
    assert "CT masked" in model_labels(pipe)["fusion"] and "CT CNN" not in model_labels(pipe)["fusion"]


def test_a_ct_manifest_whose_patients_lack_the_training_cohort_keeps_the_patients_wording(tmp_path):
    """A CT manifest given, none of its patients among the training patients: the old note (the table was given)."""
    import numpy as np
    import pandas as pd

    from lungai.fusion.data import Cohort
    from lungai.fusion.pipeline import FusionConfig, FusionPipeline

    ids = [f"P{i:02d}" for i in range(12)]
    ehr = pd.DataFrame({"age": np.arange(12.0)}, index=pd.Index(ids, name="patient_id"))
    labels = pd.Series(["I", "II", "III"] * 4, index=ids)
    cfg = FusionConfig(modalities=("ehr", "ct"), epochs=1, min_epochs=1)
    given = FusionPipeline(cfg, ["I", "II", "III"]).fit(Cohort(ids, ehr, None, {}, labels, {"given": ["ehr", "ct"]}))
    assert given.notes == [CT_UNTRAINED]
    not_given = FusionPipeline(cfg, ["I", "II", "III"]).fit(Cohort(ids, ehr, None, {}, labels, {"given": ["ehr"]}))
    assert not_given.notes == [CT_NOT_GIVEN]


def test_cv_single_modality_says_which_table_was_not_given(tmp_path):
    """`stage cv --single-modality` without --rna / --ct said "no patient has RNA" / "no patient has CT"."""
    import numpy as np
    import pandas as pd

    from lungai.fusion.data import Cohort, load_cohort
    from lungai.fusion.pipeline import FusionConfig
    from lungai.fusion.workflows import single_modality_rows

    paths = small_stage_cohort(tmp_path / "c", 12)
    models = {}
    _, notes = single_modality_rows(load_cohort(paths["ehr"], label="stage"), FusionConfig(), models)
    assert "--single-modality: no RNA table given (--rna): no RNA only (GAT) row (a network without input answers " \
           "one constant)" in notes
    assert "--single-modality: no CT manifest given (--ct): no CT only (3D CNN) row (a network without input " \
           "answers one constant)" in notes
    assert not any("no patient has" in n for n in notes) and sorted(models) == ["ehr_only"]
    # tables given, none of the cohort's patients in them: the patients' wording
    ids = [f"P{i:02d}" for i in range(6)]
    ehr = pd.DataFrame({"age": np.arange(6.0)}, index=pd.Index(ids, name="patient_id"))
    given = Cohort(ids, ehr, None, {}, pd.Series(["I", "II"] * 3, index=ids), {"given": ["ehr", "rna", "ct"]})
    _, notes = single_modality_rows(given, FusionConfig(), {})
    assert any(n.startswith("--single-modality: no patient has CT: no CT only") for n in notes), notes


def test_the_baselines_see_the_modalities_the_network_is_given(tmp_path):
    """QA stagefollow65: `stage train --ehr --rna --ct --modalities ehr` compared the EHR-only fusion network with
    baselines fitted on EHR + the top genes + the tumour's CT features ("the same inputs", --baselines' help says),
    and a baseline so chosen would use inputs the user left out.  Now each baseline uses the --modalities only."""
    from lungai.fusion import model_io
    from lungai.fusion.api import model_inputs

    paths = small_stage_cohort(tmp_path / "c", 12)
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--ct", paths["ct"], "--label", "stage"]
    assert stage_cli(["train", *data, "--modalities", "ehr", "-o", tmp_path / "m", *FAST]) == 0
    _, baselines, _ = model_io.load(tmp_path / "m")
    used = model_inputs(baselines["logreg"])
    assert used["rna"] is False and used["ct"] is False and used["ehr"], used
    assert stage_cli(["train", *data, "--modalities", "rna,ct", "-o", tmp_path / "m2", *FAST]) == 0
    _, baselines, _ = model_io.load(tmp_path / "m2")
    used = model_inputs(baselines["logreg"])
    assert used["ehr"] == [] and used["rna"] is True and used["ct"] is True, used


def test_a_ct_given_to_a_model_trained_without_a_ct_manifest_says_so(tmp_path, capsys):
    """QA stage3_65: `stage predict` / `validate --ct` with a model trained with no --ct said "the CTs are not used:
    fusion was not trained with CT (no training patient had one)", and the Multimodal Predict panel the same - as if
    the training CT manifest lacked the patients.  Now the model's note (no CT manifest given) is said, with the fix
    (retrain with --ct); the old words stay for a model whose training patients had no CT, and an older card."""
    import pandas as pd

    from lungai.scene import results

    paths = small_stage_cohort(tmp_path / "c", 12)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m", *FAST]) == 0
    capsys.readouterr()
    data = ["--ehr", paths["ehr"], "--ct", paths["ct"]]
    assert stage_cli(["predict", "--model", tmp_path / "m", *data, "-o", tmp_path / "p"]) == 0
    said = "was trained without a CT manifest (`lungai stage train` was given no --ct); retrain it with --ct to use CTs"
    err = capsys.readouterr().err
    assert f"warning: the CTs are not used: fusion {said}" in err and "no training patient had one" not in err
    assert stage_cli(["validate", "--include-training-patients", "--model", tmp_path / "m", *data, "--label", "stage",
                      "-o", tmp_path / "v"]) == 0
    err = capsys.readouterr().err
    assert f"the CTs are not used: fusion {said}" in err and f"the CTs are not used: logreg {said}" in err
    assert "no training patient had one" not in err
    # the panel: the same words, from the model folder's card
    from lungai.fusion import ct_unused_text
    from lungai.fusion.balance import read_card

    row = pd.read_csv(tmp_path / "p" / "predictions.csv", dtype=str).iloc[0].to_dict()
    assert row["ct"].lower() == "false"
    text = results.describe_unused_stage_inputs(row, row["patient_id"], ["ehr", "ct"], card=read_card(tmp_path / "m"))
    assert f"Warning: the CT is not used: {row['model']} {said}" in text, text
    # training patients without a CT (a manifest given), and a card without notes: the old words
    old = "fusion was not trained with CT (no training patient had one)"
    assert ct_unused_text("fusion", [CT_UNTRAINED], ["ehr", "ct"]) == old and ct_unused_text("fusion") == old
    assert "not trained with CT (no training patient had one)" in results.describe_unused_stage_inputs(
        row, row["patient_id"], ["ehr", "ct"])
    # a model trained with --modalities leaving CT out: that is said, not the patients
    assert "--modalities left ct out" in ct_unused_text("fusion", [], ["ehr", "rna"])


def test_the_console_api_says_why_a_ct_is_not_used_on_real_mrml(tmp_path, mrml_scene):
    """QA demostage65: the console path (lungai.scene.stage.predict_stage_nodes) given a CT volume and tumour segment
    with a model trained with no --ct: its notes say the CLI's words (lungai.fusion.ct_unused_text) - the model was
    trained without a CT manifest and the fix - not that no training patient had a CT."""
    import pandas as pd
    import SimpleITK as sitk

    from lungai import mrml
    from lungai.fusion import model_io
    from lungai.scene.stage import predict_stage_nodes

    paths = small_stage_cohort(tmp_path / "c", 12)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m", *FAST]) == 0
    name = model_io.chosen(*model_io.load(tmp_path / "m"))[0]
    row = pd.read_csv(paths["ct"], dtype=str).iloc[0]
    ct = sitk.ReadImage(str(paths["ct"].parent / row["image"]))
    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    mask = sitk.ReadImage(str(paths["ct"].parent / row["mask"]))
    seg, _ = mrml.mask_to_segment(mrml_scene, mask, "Tumor", reference_volume_node=vol)
    out = predict_stage_nodes(mrml_scene, tmp_path / "m", row["patient_id"], vol, seg, ehr_path=paths["ehr"])
    said = (f"the CT is not used: {name} was trained without a CT manifest (`lungai stage train` was given no --ct); "
            "retrain it with --ct to use CTs")
    assert said in out["notes"], out["notes"]
    assert not any("no training patient had one" in n for n in out["notes"])
    assert out["probabilities"] is not None and out["gradcam"] is None
