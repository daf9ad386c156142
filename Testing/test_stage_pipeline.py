"""lungai.fusion end to end on a tiny synthetic multimodal cohort: models, training, locked models,
explanations, the ``lungai stage`` CLI and the Slicer logic on real MRML."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from lungai.errors import InputCheckNote, InputError, InputNote
from lungai.fusion import explain, model_io
from lungai.fusion.baseline import KINDS, BaselinePipeline
from lungai.fusion.data import load_cohort
from lungai.fusion.models.fusion import FusionModel
from lungai.fusion.pipeline import FusionConfig, FusionPipeline
from lungai.fusion.synthetic import make_cohort

# these tests validate on the model's own training patients: scored only with this flag (in-sample, not external)
OWN = "--include-training-patients"

CLASSES = ["I", "II", "III"]
FAST = dict(epochs=20, patience=100, top_k=40, neighbours=4, seed=0, lr=1e-2)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    out = tmp_path_factory.mktemp("stage_cohort")
    return make_cohort(out, n=24, seed=3, n_genes=40, module_size=8, ct_shape=(48, 48, 24), ct_spacing=(6.0, 6.0, 5.0),
                       rna_shift=3.0)


@pytest.fixture(scope="module")
def cohort(paths):
    return load_cohort(paths["ehr"], paths["rna"], paths["ct"], label="stage")


@pytest.fixture(scope="module")
def trained(cohort):
    return FusionPipeline(FusionConfig(**FAST), CLASSES).fit(cohort)


def test_masking_token_replaces_a_missing_modality():
    torch.manual_seed(0)
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    for fusion in ("concat", "simple", "weighted"):
        model = FusionModel(3, ehr_dim=4, n_genes=3, edge_index=edges, emb=8, fusion=fusion).eval()
        ehr, genes, ct = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 2, 24, 24, 24)
        avail = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
        out = model(ehr, genes, ct, avail)
        ct2 = ct.clone()
        ct2[0] += 5.0                       # patient 0 has no CT: its CT input must not matter
        ct2[1] += 5.0                       # patient 1 has CT: it must
        out2 = model(ehr, genes, ct2, avail)
        assert torch.allclose(out[0], out2[0]) and not torch.allclose(out[1], out2[1])
        w = model.attention(model.embeddings(ehr, genes, ct, avail), avail)
        assert w[0, 2] == 0 and torch.allclose(w.sum(1), torch.ones(2))


def test_fit_is_seeded_and_learns_the_training_cohort(cohort, trained):
    again = FusionPipeline(FusionConfig(**FAST), CLASSES).fit(cohort)
    p1, p2 = trained.predict_proba(cohort), again.predict_proba(cohort)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert (p1.argmax(1) == cohort.y(CLASSES)).mean() > 0.6          # chance is 1/3
    assert trained.modalities == ["ehr", "rna", "ct"]
    assert len(trained.genes.genes) == 40 and trained.edges.shape[0] == 2


def test_locked_model_round_trip_and_missing_genes(tmp_path, cohort, trained):
    bases = {k: BaselinePipeline(CLASSES, k, top_k=20).fit(cohort) for k in KINDS}
    model_io.save(tmp_path / "m", trained, bases, selected="forest")
    assert not list((tmp_path / "m").glob("*.pkl"))
    pipe, bases2, meta = model_io.load(tmp_path / "m")
    np.testing.assert_allclose(pipe.predict_proba(cohort), trained.predict_proba(cohort), atol=1e-6)
    assert set(bases2) == set(KINDS) and meta["selected"] == "forest"
    for k in KINDS:       # every baseline, with its genes, encoder and estimator, comes back identical
        assert bases2[k].genes.genes == bases[k].genes.genes and bases2[k].params == bases[k].params
        np.testing.assert_allclose(bases2[k].predict_proba(cohort), bases[k].predict_proba(cohort), atol=1e-9)
    assert model_io.chosen(pipe, bases2, meta)[0] == "forest"
    assert model_io.chosen(pipe, bases2, meta, use="fusion")[1] is pipe
    with pytest.raises(InputError, match="not written by lungai stage train"):
        model_io.save(tmp_path / "m", trained)
    genes = pipe.genes.genes
    some = cohort.rna.drop(columns=genes[:5])
    assert model_io.rna_gene_check(pipe, some)["missing"] == genes[:5]
    with pytest.raises(InputError, match=f"{len(genes) - 3} of the model's {len(genes)} genes are missing"):
        model_io.rna_gene_check(pipe, cohort.rna[genes[:3]])


def test_shapley_values_find_the_planted_gene_module(paths, cohort):
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    rna_only = FusionPipeline(FusionConfig(**{**FAST, "modalities": ("rna",)}), CLASSES).fit(cohort)
    shap = explain.gene_shapley(rna_only, cohort, n_samples=16)
    assert shap.shape == (int(cohort.availability()["rna"].sum()), 40)
    top = explain.top_genes_cohort(shap, 10)
    assert len(top) == 10 and (np.diff(top.mean_abs_shapley) <= 0).all()
    module = truth["module_genes"]                  # 8 of 40 genes: 2 expected in a random top 10
    assert len(set(top.gene) & set(module)) >= 4, (list(top.gene), module)
    mean_abs = shap.abs().mean()
    assert mean_abs[module].mean() > 1.3 * mean_abs.drop(module).mean()
    per = explain.top_genes_per_patient(shap, 10)
    assert set(per.columns) == {"patient_id", "class", "rank", "gene", "shapley_value"}
    assert len(per) == 10 * len(shap)


def test_gene_shapley_values_are_reproducible_and_leave_the_callers_rng_alone(cohort, trained):
    # captum's GradientShap draws with np.random: unseeded, two explanations of one model differed
    sub = cohort.subset(cohort.ids[:4])
    np.random.seed(123)
    first = explain.gene_shapley(trained, sub, n_samples=8)
    after = np.random.random()                       # the caller's numpy stream is as if nothing had run
    np.random.seed(123)
    assert np.random.random() == after
    np.random.seed(999)                              # a disturbed global RNG between the two runs
    np.random.random(17)
    torch.rand(5)
    second = explain.gene_shapley(trained, sub, n_samples=8)
    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first.to_numpy(), explain.gene_shapley(trained, sub, n_samples=8, seed=7).to_numpy())


def test_grad_cam_is_a_volume_on_the_input_ct_grid(cohort, trained):
    pid = next(i for i in cohort.ids if i in cohort.ct)
    cam, cls = explain.grad_cam(trained, cohort, pid)
    ct = sitk.ReadImage(str(cohort.ct[pid][0]))
    assert cam.GetSize() == ct.GetSize() and cam.GetOrigin() == ct.GetOrigin()
    assert cam.GetSpacing() == ct.GetSpacing() and cls in CLASSES
    arr = sitk.GetArrayFromImage(cam)
    # normalised on the CT grid the user sees (it was on the crop grid, then resampled: maxima 0.81-0.98)
    assert arr.min() >= 0 and arr.max() == 1.0
    points = explain.tsne_points(trained, cohort)
    assert points.shape == (len(cohort.ids), 2) and np.isfinite(points).all()


def test_grad_cam_of_a_confident_prediction_explains_the_class_logit_and_a_blank_map_is_said(cohort, trained):
    import copy

    confident = copy.deepcopy(trained)
    with torch.no_grad():                       # a saturated softmax (p = 1.0): its gradient is exactly 0
        confident.model.head[-1].weight.mul_(1e4)
        confident.model.head[-1].bias.mul_(1e4)
    with_ct = [i for i in cohort.ids if i in cohort.ct][:6]
    assert (confident.predict_proba(cohort.subset(with_ct)).max(1) == 1.0).all()
    maxima = [sitk.GetArrayFromImage(explain.grad_cam(confident, cohort, pid)[0]).max() for pid in with_ct]
    assert sum(m > 0.5 for m in maxima) >= 3    # Grad-CAM of the logit: not blank because the model is sure
    assert max(maxima) <= 1.0 + 1e-6
    blank = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    assert explain.empty_cam_note(blank, "II").startswith("Grad-CAM: no positive CT evidence for class II")
    blank[1, 1, 1] = 0.5
    assert explain.empty_cam_note(blank, "II") is None


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


def test_cli_cv_train_validate_predict(tmp_path, paths, capsys, monkeypatch):
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--ct", paths["ct"]]
    fast = ["--epochs", 5, "--top-k", 20, "--neighbours", 3]
    assert _cli(["cv", *data, "--label", "stage", "-o", tmp_path / "cv", "--folds", 2, "--inner-folds", 1, *fast]) == 0
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["classes"] == CLASSES and set(metrics["models"]) == {"logreg", "forest", "mlp", "fusion"}
    for m in ("accuracy", "macro_f1", "macro_auc"):
        s = metrics["models"]["fusion"][m]
        assert s["mean"] == pytest.approx(np.mean(s["folds"])) and 0 <= min(s["folds"]) and max(s["folds"]) <= 1
        assert len(s["folds"]) == 2 and s["ci95"][0] <= s["pooled"] <= s["ci95"][1]
    assert (tmp_path / "cv" / "confusion_fusion.png").stat().st_size > 1000
    # each patient's outer fold is in the out-of-fold table: the fold that held it out, by the same split
    oof = pd.read_csv(tmp_path / "cv" / "oof_predictions.csv")
    from lungai.fusion.cv import _split
    expected = np.zeros(len(oof), dtype=int)
    for f, (_, te) in enumerate(_split(np.array([CLASSES.index(v) for v in oof.label]), 2, 0)):
        expected[te] = f + 1
    assert oof.fold.tolist() == expected.tolist() and set(oof.fold) == {1, 2}
    assert _cli(["train", *data, "--label", "stage", "-o", tmp_path / "model", *fast, "--inner-folds", 1]) == 0
    assert (tmp_path / "model" / "tsne.png").exists()
    points = pd.read_csv(tmp_path / "model" / "tsne_points.csv")      # the plot's points, one row per patient
    assert list(points.columns) == ["patient_id", "label", "tsne_1", "tsne_2"]
    assert points.patient_id.tolist() == oof.patient_id.tolist() and points.label.tolist() == oof.label.tolist()
    assert np.isfinite(points[["tsne_1", "tsne_2"]].to_numpy()).all() and points.tsne_1.std() > 0
    assert len(pd.read_csv(tmp_path / "model" / "top_genes_cohort.csv")) == 10
    assert _cli(["validate", OWN, "--model", tmp_path / "model", *data, "-o", tmp_path / "val"]) == 0
    val = json.loads((tmp_path / "val" / "metrics.json").read_text(encoding="utf-8"))
    assert set(val["models"]) == {"fusion", "logreg", "forest", "mlp"} and val["n_patients"] == 24
    # predict for two patients: one with all modalities, one with EHR only
    ehr = pd.read_csv(paths["ehr"]).drop(columns=["stage"])
    ehr.iloc[:2].to_csv(tmp_path / "new_ehr.csv", index=False)
    manifest = pd.read_csv(paths["ct"])
    first = ehr.patient_id.iloc[0]
    m = manifest[manifest.patient_id == first].copy()
    m["image"] = [str(paths["ct"].parent / v) for v in m.image]
    m["mask"] = [str(paths["ct"].parent / v) for v in m["mask"]]
    m.to_csv(tmp_path / "new_manifest.csv", index=False)
    capsys.readouterr()
    assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new_ehr.csv", "--ct",
                 tmp_path / "new_manifest.csv", "-o", tmp_path / "pred", "--explain"]) == 0
    pred = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert list(pred.patient_id) == list(ehr.patient_id.iloc[:2])
    np.testing.assert_allclose(pred[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1.0, atol=1e-5)
    assert pred.ct.tolist() == [bool(len(m)), False] and set(pred.predicted) <= set(CLASSES)
    if len(m):
        assert (tmp_path / "pred" / "gradcam" / f"{first}_gradcam.nii.gz").exists()
    capsys.readouterr()
    assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new_ehr.csv", "-o", tmp_path / "pred2",
                 "--explain"]) == 0                 # no CT given: no empty gradcam/ folder, a note instead
    assert not (tmp_path / "pred2" / "gradcam").exists()
    assert "no Grad-CAM written: no patient was given a CT" in capsys.readouterr().err
    if len(m):                                      # an all-zero map is said: console and the patient's notes
        real = explain.grad_cam
        monkeypatch.setattr(explain, "grad_cam", lambda *a, **k: (real(*a, **k)[0] * 0.0, "II"))
        assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new_ehr.csv", "--ct",
                     tmp_path / "new_manifest.csv", "-o", tmp_path / "pred3", "--explain"]) == 0
        assert "note: the 1 Grad-CAM map is 0 everywhere" in capsys.readouterr().err
        pred = pd.read_csv(tmp_path / "pred3" / "predictions.csv", keep_default_na=False)
        # these are training patients of the model: their in-sample note comes first (model_io.IN_SAMPLE_NOTE)
        notes = [n.removeprefix(model_io.IN_SAMPLE_NOTE).removeprefix("; ") if t == "True" else n
                 for n, t in zip(pred.notes, pred.training_patient.astype(str))]
        assert notes[0].startswith("Grad-CAM: no positive CT evidence for class II") and notes[1] == ""


def test_cli_bad_inputs_exit_2_with_a_fix(tmp_path, paths, capsys):
    ehr = pd.read_csv(paths["ehr"])
    ehr.assign(stage="I").to_csv(tmp_path / "one.csv", index=False)
    assert _cli(["cv", "--ehr", tmp_path / "one.csv", "--label", "stage", "-o", tmp_path / "o1"]) == 2
    assert "only one class" in capsys.readouterr().err
    assert _cli(["cv", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "o2", "--folds", 20]) == 2
    err = capsys.readouterr().err
    assert "too few patients per class for 20-fold CV" in err and "How to fix" in err
    pd.DataFrame({"g": ["a", "b"], "ZZ-1": [1.0, 2.0]}).to_csv(tmp_path / "rna.csv", index=False)
    assert _cli(["cv", "--ehr", paths["ehr"], "--rna", tmp_path / "rna.csv", "--label", "stage",
                 "-o", tmp_path / "o3"]) == 2
    assert "no RNA sample ID joins" in capsys.readouterr().err
    assert _cli(["cv", "--ehr", paths["ehr"], "--label", "nope", "-o", tmp_path / "o4"]) == 2
    assert "label column 'nope'" in capsys.readouterr().err
    (tmp_path / "latin.csv").write_bytes("patient_id,site,stage\nP1,Gen\xe8ve,I\n".encode("latin-1"))
    assert _cli(["cv", "--ehr", tmp_path / "latin.csv", "--label", "stage", "-o", tmp_path / "o5"]) == 2
    assert "save it as UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "o5").exists()        # a run refused for its inputs leaves no empty folder


def test_scene_logic_on_real_mrml(mrml_scene, paths, cohort, trained):
    from lungai import mrml
    from lungai.scene.stage import predict_stage_nodes

    pid = next(i for i in cohort.ids if i in cohort.ct and cohort.availability().loc[i, "rna"])
    ct_path, mask_path = cohort.ct[pid]
    ct = sitk.ReadImage(str(ct_path))
    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, sitk.ReadImage(str(mask_path)), "Tumor", reference_volume_node=vol)
    out = predict_stage_nodes(mrml_scene, trained, pid, vol, seg, ehr_path=paths["ehr"], rna_path=paths["rna"])
    probs = mrml.dataframe_from_table_node(out["probabilities"])
    assert list(probs["class"]) == CLASSES and probs.probability.sum() == pytest.approx(1.0, abs=1e-5)
    expected = trained.predict_proba(cohort.subset([pid]))[0]
    np.testing.assert_allclose(probs.probability.to_numpy(), expected, atol=1e-4)
    genes = mrml.dataframe_from_table_node(out["top_genes"])
    assert len(genes) == 10 and set(genes.gene) <= set(trained.genes.genes)
    cam = mrml.image_from_volume_node(out["gradcam"])
    assert cam.GetSize() == ct.GetSize()
    np.testing.assert_allclose(cam.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    with pytest.raises(InputError, match="not in the EHR table"):
        predict_stage_nodes(mrml_scene, trained, "NOBODY", ehr_path=paths["ehr"])


def test_scene_logic_files_its_nodes_in_the_cts_study_as_the_panel(mrml_scene, paths, cohort, trained):
    """QA stageapi64: the console API (predict_stage_nodes) left its "<patient> stage probabilities" and top genes
    tables and its Grad-CAM at the top level of the subject hierarchy with the CT under a DICOM study, while the panel
    files them in the CT's study.  Now the same helpers file them: the patient's tables when the CT is that patient's
    (lungai.scene.stage.link_patient_table: DICOM patient id case aside, as link_stage_table), the Grad-CAM (on the
    CT's grid) beside its CT (lungai.scene.nodes.place_beside_ct); a CT of another DICOM patient keeps the tables at
    the top level, linked to no CT (no item there: a scene without the application makes none)."""
    import slicer
    from slicer_module_helpers import sh_parent, under_dicom_patient

    from lungai import mrml
    from lungai.scene import nodes
    from lungai.scene.stage import predict_stage_nodes

    pid = next(i for i in cohort.ids if i in cohort.ct and cohort.availability().loc[i, "rna"])
    ct_path, mask_path = cohort.ct[pid]
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    top = sh.GetSceneItemID()
    for dicom_patient in (pid.lower(), "SOMEONE-ELSE"):
        vol = mrml.volume_node_from_image(mrml_scene, sitk.ReadImage(str(ct_path)), f"CT {dicom_patient}")
        under_dicom_patient(mrml_scene, vol, dicom_patient)
        study = sh_parent(mrml_scene, vol)
        assert study and sh.GetItemLevel(study) == "Study"
        seg, _ = mrml.mask_to_segment(mrml_scene, sitk.ReadImage(str(mask_path)), "Tumor", reference_volume_node=vol)
        out = predict_stage_nodes(mrml_scene, trained, pid, vol, seg, ehr_path=paths["ehr"], rna_path=paths["rna"])
        assert out["gradcam"] is not None and sh_parent(mrml_scene, out["gradcam"]) == study
        ours = dicom_patient != "SOMEONE-ELSE"
        for table in (out["probabilities"], out["top_genes"]):
            assert table is not None
            assert sh_parent(mrml_scene, table) in ((study,) if ours else (0, top)), (dicom_patient, table.GetName())
            assert nodes.source_volume_id(table) == (vol.GetID() if ours else "")


def test_python_api_predicts_one_patient_from_images(cohort, trained):
    from lungai.fusion.api import predict_stage

    pid = next(i for i in cohort.ids if i in cohort.ct)
    ct, mask = (sitk.ReadImage(str(p)) for p in cohort.ct[pid])
    ehr_row = cohort.ehr.loc[pid].to_dict()
    df = predict_stage(trained, patient_id=pid, ehr_row=ehr_row, ct_image=ct, mask_image=mask)
    assert df.patient_id.tolist() == [pid] and bool(df.ct[0]) and not bool(df.rna[0])
    sub = cohort.subset([pid])
    sub.rna = None                                   # the same patient without RNA, from files
    np.testing.assert_allclose(df[[f"p_{c}" for c in CLASSES]].to_numpy()[0], trained.predict_proba(sub)[0],
                               atol=1e-5)


def _label_map(mask: sitk.Image) -> sitk.Image:
    """The tumour mask as label 1 of a label map that also holds a 'lung' (label 3) in a corner."""
    arr = sitk.GetArrayFromImage(mask).astype(np.uint8)
    arr[arr > 0] = 1
    arr[:4, :10, :10] = 3
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(mask)
    return out


def test_a_multi_label_tumour_mask_is_refused_unless_its_label_is_chosen(tmp_path, paths, cohort, trained):
    from lungai.fusion import ct_crop
    from lungai.fusion.api import predict_stage
    from lungai.fusion.pipeline import crop_for

    pid = next(i for i in cohort.ids if i in cohort.ct)
    ct_path, mask_path = cohort.ct[pid]
    ct, mask = sitk.ReadImage(str(ct_path)), sitk.ReadImage(str(mask_path))
    multi = _label_map(mask)
    sitk.WriteImage(multi, str(tmp_path / "labels.nii.gz"))
    row = f"{pid},{Path(ct_path).resolve()},{tmp_path / 'labels.nii.gz'}"
    (tmp_path / "multi.csv").write_text("patient_id,image,mask\n" + row + "\n", encoding="utf-8")
    (tmp_path / "lab.csv").write_text("patient_id,image,mask,label\n" + row + ",1\n", encoding="utf-8")
    # before: every label > 0 was the tumour (crop centred between tumour and 'lung', lung in the volume)
    with pytest.raises(InputError, match=r"labels.nii.gz of .* holds 2 labels \(1, 3\)") as err:
        load_cohort(paths["ehr"], ct=tmp_path / "multi.csv", label="stage")
    assert "--ct-label" in err.value.fix and "'label' column" in err.value.fix
    with pytest.raises(InputError, match="holds 2 labels"):
        ct_crop.binary_mask(multi)
    for c in (load_cohort(paths["ehr"], ct=tmp_path / "lab.csv", label="stage"),
              load_cohort(paths["ehr"], ct=tmp_path / "multi.csv", label="stage", ct_label=1)):
        assert c.ct[pid][2] == 1
        np.testing.assert_allclose(crop_for(*c.ct[pid])[0], crop_for(ct_path, mask_path)[0], atol=1e-6)
    with pytest.raises(InputError, match=r"has no label 2 \(its labels: 1, 3\)"):
        load_cohort(paths["ehr"], ct=tmp_path / "multi.csv", label="stage", ct_label=2)
    with pytest.raises(InputError, match="holds 2 labels"):          # the Python API, images in memory
        predict_stage(trained, patient_id=pid, ct_image=ct, mask_image=multi)
    one = predict_stage(trained, patient_id=pid, ct_image=ct, mask_image=mask)
    chosen = predict_stage(trained, patient_id=pid, ct_image=ct, mask_image=multi, mask_label=1)
    cols = [f"p_{c}" for c in CLASSES]
    np.testing.assert_allclose(chosen[cols].to_numpy(), one[cols].to_numpy(), atol=1e-6)
    assert ct_crop.image_features(ct, ct_crop.binary_mask(multi, label=1)) == ct_crop.image_features(ct, mask)


def test_early_stopping_keeps_the_best_validation_epoch():
    from lungai.fusion.losses import ClassBalancedFocalLoss
    from lungai.fusion.train import fit

    rng = np.random.default_rng(0)
    def arrays(n):
        return {"ehr": torch.as_tensor(rng.normal(size=(n, 6)), dtype=torch.float32),
                "genes": torch.zeros(n, 0), "ct": torch.zeros(n, 0), "avail": torch.tensor([[1.0, 0, 0]] * n)}
    train, val = arrays(40), arrays(20)
    y, y_val = rng.integers(0, 2, 40), rng.integers(0, 2, 20)      # pure noise: validation loss rises
    torch.manual_seed(0)
    model = FusionModel(2, ("ehr",), ehr_dim=6, emb=16, dropout=0.0)
    h = fit(model, train, y, val, y_val, n_classes=2, epochs=300, patience=10, lr=3e-2, min_epochs=5)
    assert h["epochs_run"] < 300                      # stopped early
    best = min(h["val_loss"][4:])
    loss_fn = ClassBalancedFocalLoss(np.bincount(y, minlength=2))
    with torch.no_grad():
        kept = float(loss_fn(model(val["ehr"], val["genes"], val["ct"], val["avail"]), torch.as_tensor(y_val)))
    assert kept == pytest.approx(best, rel=1e-5)      # the best epoch's weights were restored


def test_a_fusion_grid_without_an_inner_cv_is_said_to_be_unused(capsys):
    """--fusion-grid is the inner CV's choice; with --inner-folds 1 the network is trained with --fusion, so a grid
    the user gave there is named as unused (it used to be dropped silently)."""
    from argparse import Namespace

    from lungai.errors import InputError
    from lungai.fusion.workflows import fusion_grid

    assert fusion_grid(Namespace(fusion_grid=None, inner_folds=1, fusion="concat")) == ["concat", "weighted"]
    assert capsys.readouterr().err == ""
    assert fusion_grid(Namespace(fusion_grid="weighted", inner_folds=3, fusion="concat")) == ["weighted"]
    assert capsys.readouterr().err == ""
    fusion_grid(Namespace(fusion_grid="weighted", inner_folds=1, fusion="concat"))
    err = capsys.readouterr().err
    assert "--fusion-grid weighted is not used" in err and "--fusion concat" in err
    with pytest.raises(InputError, match="not a list of fusion types"):
        fusion_grid(Namespace(fusion_grid="attention", inner_folds=3, fusion="concat"))


def test_gene_gnn_leaves_no_generated_sources_in_the_temporary_folder(tmp_path):
    """torch-geometric writes the source of each conv class it builds to the temporary folder and never deletes it
    (dozens of GATConv_*.py per stage run): the GNN removes them once loaded, and still runs."""
    import os
    import subprocess
    import sys

    code = ("import torch\n"
            "from lungai.fusion.models.gene_gnn import GeneGNN\n"
            "m = GeneGNN(5, torch.tensor([[0, 1], [1, 2]]))\n"
            "print(tuple(m(torch.zeros(2, 5)).shape))\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["(2,", "32)"]
    assert not list(tmp_path.glob("torch_geometric*")), sorted(p.name for p in tmp_path.iterdir())


def test_a_patient_id_that_differs_only_by_leading_zeros_is_named(tmp_path):
    """The stage panel's patient 7 against an EHR table holding 007 (ids read as text): the not-found error says the
    ids differ only by leading zeros; a CT manifest whose ids join none of the EHR's for that reason says so too."""
    from lungai.fusion.data import load_cohort
    from lungai.scene.stage import _ehr_row

    (tmp_path / "ehr.csv").write_text("patient_id,age,stage\n007,70,I\n012,65,II\n")
    with pytest.raises(InputError, match="not in the EHR table") as err:
        _ehr_row(tmp_path / "ehr.csv", "7")
    assert "leading zeros" in err.value.problem and "7 vs 007" in err.value.problem
    (tmp_path / "ct.csv").write_text("id,image,mask\n7,a.nii.gz,a.nii.gz\n12,b.nii.gz,b.nii.gz\n")
    for name in ("a.nii.gz", "b.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError) as err:
        load_cohort(ehr=tmp_path / "ehr.csv", ct=tmp_path / "ct.csv", label="stage")
    assert "leading zeros" in err.value.problem, err.value.problem


def _ct_and_sphere(direction=None, permute=None, size=(40, 44, 36), spacing=(1.5, 1.25, 2.0), centre_ijk=(17, 23, 15),
                   radius_mm=7.0):
    """A CT (a tumour sphere of +40 HU in -800 HU lung, a soft gradient so the crop is not symmetric) and its mask,
    stored LPS; ``direction`` "RAS" / ``permute`` axes re-store the same physical images."""
    img = sitk.Image(list(size), sitk.sitkInt16)
    img.SetSpacing(spacing)
    img.SetOrigin((-30.0, 12.5, -101.0))
    k, j, i = np.indices(size[::-1], dtype=float)
    pts = np.stack([i, j, k], -1) * np.array(spacing)
    c = np.array(centre_ijk) * np.array(spacing)
    inside = np.linalg.norm(pts - c, axis=-1) <= radius_mm
    arr = np.where(inside, 40, -800 + 3 * i + 2 * j - k).astype(np.int16)
    ct = sitk.GetImageFromArray(arr)
    ct.CopyInformation(img)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(img)
    if direction is not None:
        ct, mask = sitk.DICOMOrient(ct, direction), sitk.DICOMOrient(mask, direction)
    if permute is not None:
        ct, mask = sitk.PermuteAxes(ct, permute), sitk.PermuteAxes(mask, permute)
    return ct, mask


def test_the_ct_crop_does_not_depend_on_how_the_ct_is_stored():
    from lungai.fusion import ct_crop

    # before: the crop grid took the mask's direction: the same CT stored RAS / with permuted axes gave a mirrored /
    # transposed 24^3 crop (and another prediction)
    crops = [ct_crop.tumour_crop(*ct_crop.load_ct_pair(*_ct_and_sphere(**kw)))
             for kw in ({}, {"direction": "RAS"}, {"permute": [1, 0, 2]}, {"direction": "RAS", "permute": [2, 0, 1]})]
    for arr, ref in crops[1:]:
        np.testing.assert_allclose(arr, crops[0][0], atol=1e-5)
        assert ref.GetOrigin() == pytest.approx(crops[0][1].GetOrigin())
    assert {ref.GetDirection() for _, ref in crops} == {(1, 0, 0, 0, 1, 0, 0, 0, 1)}       # the patient's axes


def test_grad_cam_maps_each_feature_voxel_to_the_centre_of_its_receptive_field():
    from captum.attr import LayerGradCam

    from lungai.fusion.models.ct_cnn import CTEncoder

    enc = CTEncoder()
    stride, offset = enc.feature_grid()
    assert list(stride) == [4, 4, 4] and list(offset) == [0, 0, 0]   # strides 2, 1, 2, kernel 3, padding 1
    with torch.no_grad():
        for p in enc.features.parameters():
            p.fill_(0.05) if p.dim() > 1 else p.zero_()
    score = lambda x: enc.features(x).mean(dim=(2, 3, 4)).sum(1, keepdim=True)
    ref = sitk.Image([24] * 3, sitk.sitkFloat32)
    ref.SetSpacing([3.0] * 3)
    for at in ((12, 12, 12), (8, 12, 14)):
        x = torch.zeros(1, 2, 24, 24, 24)
        x[(0, slice(None)) + at] = 1.0
        attr = LayerGradCam(score, enc.last_conv).attribute(x, target=0, relu_attributions=True)
        vol = explain.cam_on_crop(attr, ref, enc)
        assert vol.shape == (24, 24, 24)
        idx = np.argwhere(vol > 0)
        w = vol[vol > 0]
        # before: an align_corners=False upsampling put feature voxel n on crop voxel 4n + 1.5 (centroid 13.5)
        np.testing.assert_allclose((idx * w[:, None]).sum(0) / w.sum(), at, atol=0.5)


def test_grad_cam_on_the_ct_grid_is_centred_on_the_tumour():
    """End to end: a CT-only model whose CT branch sees the mask channel only (positive weights): its Grad-CAM is
    the blurred tumour, centred on the mask's centroid in mm, whatever the CT's storage."""
    from lungai.fusion.data import Cohort

    model = FusionModel(3, modalities=("ct",), fusion="concat").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.05) if p.dim() > 1 else p.zero_()
        model.encoders["ct"].features[0].conv.weight[:, 0] = 0.0       # no CT channel: the map is the mask's
    pipe = FusionPipeline(FusionConfig(modalities=("ct",)), CLASSES)
    pipe.model, pipe.modalities = model, ["ct"]
    for kw in ({}, {"direction": "RAS", "permute": [1, 0, 2]}):
        ct, mask = _ct_and_sphere(**kw)
        c = Cohort(["P"], pd.DataFrame(index=pd.Index(["P"])), None, {"P": (ct, mask)})
        cam, _ = explain.grad_cam(pipe, c, "P")
        arr = sitk.GetArrayFromImage(cam).astype(float)
        assert 0.5 < arr.max() <= 1.0
        pts = np.array([cam.TransformIndexToPhysicalPoint(tuple(int(v) for v in ijk[::-1]))
                        for ijk in np.argwhere(arr > 0)])
        w = arr[arr > 0]
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(mask)
        # before: 4.5 mm off along each crop axis
        np.testing.assert_allclose((pts * w[:, None]).sum(0) / w.sum(), stats.GetCentroid(1), atol=1.0)


def test_the_model_does_not_depend_on_the_order_of_the_tables_rows_and_columns(tmp_path, paths, cohort):
    # the patients kept the EHR file's row order and the features its column order: CV folds, batch order and the
    # network's inputs followed them, so a shuffled copy of the same table gave another model, metrics and top genes
    from lungai.fusion.cv import candidates, cross_validate

    def shuffled(frame, seed):
        rows = frame.sample(frac=1, random_state=seed)
        return rows[list(rows.columns[:1]) + list(rows.columns[1:].to_series().sample(frac=1, random_state=seed))]

    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    ehr = ehr[list(ehr.columns[::-1])].sample(frac=1, random_state=1)          # the ID column last, too
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    shuffled(pd.read_csv(paths["rna"], dtype=str), 2).to_csv(tmp_path / "rna.csv", index=False)   # genes and patients
    manifest = pd.read_csv(paths["ct"], dtype=str)
    for c in ("image", "mask"):
        manifest[c] = [str(paths["ct"].parent / v) for v in manifest[c]]
    manifest[list(manifest.columns[::-1])].sample(frac=1, random_state=3).to_csv(tmp_path / "ct.csv", index=False)
    other = load_cohort(tmp_path / "ehr.csv", tmp_path / "rna.csv", tmp_path / "ct.csv", label="stage")
    assert other.ids == cohort.ids == sorted(cohort.ids)
    assert list(other.ehr.columns) == list(cohort.ehr.columns) == sorted(cohort.ehr.columns)
    assert list(other.rna.columns) == list(cohort.rna.columns) and list(other.ct) == list(cohort.ct)

    config = FusionConfig(**{**FAST, "epochs": 4})
    fits = [FusionPipeline(config, CLASSES).fit(c) for c in (cohort, other)]
    np.testing.assert_array_equal(fits[0].predict_proba(cohort), fits[1].predict_proba(other))
    assert fits[0].ehr_encoder.feature_names() == fits[1].ehr_encoder.feature_names()
    top = [explain.top_genes_cohort(explain.gene_shapley(p, c, n_samples=4), 10) for p, c in zip(fits, (cohort, other))]
    pd.testing.assert_frame_equal(top[0], top[1])
    cv = [cross_validate(c, candidates(config, baselines=("logreg",), nested=False), folds=2, inner_folds=1)
          for c in (cohort, other)]
    for name in ("logreg", "fusion"):
        np.testing.assert_array_equal(cv[0]["models"][name]["oof"], cv[1]["models"][name]["oof"])
        assert cv[0]["models"][name]["summary"] == cv[1]["models"][name]["summary"]


def test_train_says_why_it_writes_no_tsne_plot_for_a_tiny_cohort(tmp_path, paths, capsys):
    ehr = pd.read_csv(paths["ehr"], dtype={"patient_id": str})
    tiny = pd.concat([ehr[ehr.stage == c].head(2) for c in ("I", "II")])           # 4 patients, 2 per class
    tiny.to_csv(tmp_path / "ehr.csv", index=False)
    capsys.readouterr()
    assert _cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "-o", tmp_path / "model", "--epochs", 2,
                 "--inner-folds", 1]) == 0
    assert not (tmp_path / "model" / "tsne.png").exists() and not (tmp_path / "model" / "tsne_points.csv").exists()
    assert "no tsne.png written: t-SNE needs at least 5 patients, the training cohort has 4" in capsys.readouterr().out
    assert "in-sample" in (tmp_path / "model" / "model_card.md").read_text(encoding="utf-8")


def test_grad_cam_files_are_named_safely_after_the_patient_id(tmp_path, paths, capsys):
    """An ID such as `H/2019/001` wrote nested folders and `../escape` a file outside gradcam/ (over a user's
    file): each patient's Grad-CAM has its ID's safe file name, listed in predictions.csv; IDs of one name refused."""
    assert _cli(["train", "--ehr", paths["ehr"], "--ct", paths["ct"], "--label", "stage", "-o", tmp_path / "model",
                 "--epochs", 2, "--top-k", 20, "--neighbours", 3, "--inner-folds", 1, "--baselines", "none",
                 "--modalities", "ehr,ct"]) == 0
    manifest = pd.read_csv(paths["ct"])
    two = list(manifest.patient_id.iloc[:2])
    ehr = pd.read_csv(paths["ehr"]).drop(columns=["stage"])
    ehr = ehr[ehr.patient_id.isin(two)].set_index("patient_id").loc[two].reset_index()
    m = manifest[manifest.patient_id.isin(two)].set_index("patient_id").loc[two].reset_index()
    for col in ("image", "mask"):
        m[col] = [str(paths["ct"].parent / v) for v in m[col]]
    out = tmp_path / "pred"
    mine = out / "escape_gradcam.nii.gz"          # a user's file beside the output folder's gradcam/
    out.mkdir()
    mine.write_bytes(b"mine")

    def predict(ids, folder):
        ehr.assign(patient_id=ids).to_csv(tmp_path / "ehr.csv", index=False)
        m.assign(patient_id=ids).to_csv(tmp_path / "ct.csv", index=False)
        return _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "ehr.csv", "--ct",
                     tmp_path / "ct.csv", "-o", folder, "--explain", "--use", "fusion"])

    assert predict(["H/2019/001", "../escape"], out) == 0
    assert mine.read_bytes() == b"mine" and not (out / "gradcam" / "H").exists()
    assert sorted(p.name for p in (out / "gradcam").iterdir()) == [".._escape_gradcam.nii.gz",
                                                                   "H_2019_001_gradcam.nii.gz"]
    pred = pd.read_csv(out / "predictions.csv")
    assert dict(zip(pred.patient_id, pred.gradcam)) == {"H/2019/001": "gradcam/H_2019_001_gradcam.nii.gz",
                                                        "../escape": "gradcam/.._escape_gradcam.nii.gz"}
    capsys.readouterr()
    assert predict(["a/1", "A_1"], tmp_path / "clash") == 2      # one file name: refused before any output
    err = capsys.readouterr().err
    assert "'A_1' and 'a/1' (both gradcam/A_1_gradcam.nii.gz)" in err and "letter case is ignored" in err
    assert not (tmp_path / "clash" / "predictions.csv").exists()


def test_ensembl_ids_of_another_gencode_release_are_found_without_the_version(cohort, trained):
    """A model trained on ENSG...16 IDs given a matrix of another GENCODE release (ENSG....17, or unversioned): the
    genes counted as missing (imputed as the training mean, or the matrix refused); now found, with a note."""
    import copy

    pipe = copy.deepcopy(trained)
    names = {g: f"ENSG{i:011d}" for i, g in enumerate(cohort.rna.columns)}
    pipe.genes.genes = [names[g] + ".16" for g in trained.genes.genes]
    expected = trained.predict_proba(cohort)
    for suffix in (".17", ""):
        new = copy.copy(cohort)
        new.rna = cohort.rna.rename(columns={g: n + suffix for g, n in names.items()})
        check = model_io.rna_gene_check(pipe, new.rna)
        assert check["missing"] == [] and len(check["version_matched"]) == len(pipe.genes.genes)
        assert check["version_matched"][pipe.genes.genes[0]] == pipe.genes.genes[0][:-3] + suffix
        with pytest.warns(InputCheckNote, match="^[0-9]+ of the model's [0-9]+ genes were found by their Ensembl ID "
                          "without the version"):     # a note (no "note: " in its text: the CLI prints the label)
            model_io.check_new_rna(pipe, new.rna)
        np.testing.assert_allclose(pipe.predict_proba(new), expected, atol=1e-6)
    first = pipe.genes.genes[0][:-3]
    both = new.rna.assign(**{first + ".17": 1.0})         # ENSG...0 and ENSG....17: which one is the gene?
    with pytest.raises(InputError, match=f"two or more Ensembl versions.*{first}.16: {first}, {first}.17"):
        model_io.rna_gene_check(pipe, both)
    exact = both.rename(columns={first + ".17": first + ".16"})   # the model's own version wins
    assert model_io.rna_gene_check(pipe, exact)["version_matched"].get(first + ".16") is None


def test_check_new_rna_says_missing_sparse_and_off_scale_genes_as_input_notes(cohort, trained, capsys):
    """Every warning of check_new_rna (the genes missing, the patients lacking most genes, those on another scale) is an
    :class:`lungai.errors.InputNote` as every CLI warning must be - before, plain UserWarnings: a caller collecting
    InputNotes (lungai.errors.warnings_as_notes) lost them - and ``stage predict``'s console prints each with its
    label (an Ensembl-version note ``note: ...``, before ``warning: note: ...``)."""
    import copy
    import warnings

    from lungai.fusion.workflows import _print_warnings

    genes = list(trained.genes.genes)
    rna = cohort.rna.drop(columns=genes[:1])                      # one gene missing for every patient
    sparse = rna.index[0]
    rna.loc[sparse, [g for g in genes[1:] if g in rna.columns]] = np.nan   # a patient lacking most genes
    off = rna.index[1]
    rna.loc[off] = rna.loc[off] * 40 + 200                        # a patient on another scale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check = model_io.check_new_rna(trained, rna)
    assert check["missing"] and check["sparse"] and check["off_scale"]
    texts = {str(w.message): w.category for w in caught if "gene" in str(w.message) or "scale" in str(w.message)}
    assert len(texts) == 3 and all(issubclass(c, InputNote) for c in texts.values()), texts
    pipe = copy.deepcopy(trained)
    names = {g: f"ENSG{i:011d}" for i, g in enumerate(cohort.rna.columns)}
    pipe.genes.genes = [names[g] + ".16" for g in trained.genes.genes]
    with _print_warnings():
        model_io.check_new_rna(pipe, cohort.rna.rename(columns={g: n + ".17" for g, n in names.items()}))
    err = capsys.readouterr().err
    assert "note: " in err and "were found by their Ensembl ID" in err and "warning: note:" not in err


def test_console_grad_cam_is_shown_as_the_panels_heat_map(mrml_scene, paths, cohort, trained, tmp_path):
    """QA stagefollow65: the console API's Grad-CAM (predict_stage_nodes) kept the default grey display, auto
    window-level, no threshold, while the panel's (patient_grad_cam, the same map read from its NIfTI) is the heat
    map: one display (lungai.scene.stage.show_grad_cam) for both."""
    from lungai import mrml
    from lungai.scene.nodes import HEAT_COLOR_NODE_ID
    from lungai.scene.stage import patient_grad_cam, predict_stage_nodes

    pid = next(i for i in cohort.ids if i in cohort.ct and cohort.availability().loc[i, "rna"])
    ct_path, mask_path = cohort.ct[pid]
    vol = mrml.volume_node_from_image(mrml_scene, sitk.ReadImage(str(ct_path)), "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, sitk.ReadImage(str(mask_path)), "Tumor", reference_volume_node=vol)
    console = predict_stage_nodes(mrml_scene, trained, pid, vol, seg, ehr_path=paths["ehr"],
                                  rna_path=paths["rna"])["gradcam"]
    cam = mrml.image_from_volume_node(console)
    values = sitk.GetArrayFromImage(cam)
    assert values.max() > values.min()                  # a map with a range: its window is not the fallback's
    sitk.WriteImage(cam, str(tmp_path / "cam.nii.gz"))
    panel = patient_grad_cam(mrml_scene, tmp_path / "cam.nii.gz", pid, ct_volume_node=vol)
    shown, want = console.GetDisplayNode(), panel.GetDisplayNode()
    assert shown is not None and shown.GetColorNodeID() == want.GetColorNodeID() == HEAT_COLOR_NODE_ID
    assert not shown.GetAutoWindowLevel() and shown.GetApplyThreshold() and want.GetApplyThreshold()
    for get in ("GetWindow", "GetLevel", "GetLowerThreshold", "GetUpperThreshold"):
        assert getattr(shown, get)() == pytest.approx(getattr(want, get)(), rel=1e-5), get
    assert shown.GetLowerThreshold() > float(values.min())   # the values near zero left out, as the panel's


def test_scene_logic_tags_its_nodes_as_the_panels(mrml_scene, paths, cohort, trained):
    """QA ids65: the console API (predict_stage_nodes) made its probabilities and top genes tables and its Grad-CAM
    without the tag the panel's stage nodes get (lungai.scene.stage.mark_stage_node): they read as the user's own, so
    the panel, given one as its Grad-CAM output, never removed it (an earlier patient's Grad-CAM left shown beside
    the next result) and never reused its tables.  Now tagged; a node the user renames is theirs again."""
    from lungai import mrml
    from lungai.scene.nodes import node_made_by
    from lungai.scene.stage import STAGE_MADE_BY, made_node_or_none, patient_grad_cam, predict_stage_nodes

    pid = next(i for i in cohort.ids if i in cohort.ct and cohort.availability().loc[i, "rna"])
    ct_path, mask_path = cohort.ct[pid]
    vol = mrml.volume_node_from_image(mrml_scene, sitk.ReadImage(str(ct_path)), "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, sitk.ReadImage(str(mask_path)), "Tumor", reference_volume_node=vol)
    out = predict_stage_nodes(mrml_scene, trained, pid, vol, seg, ehr_path=paths["ehr"], rna_path=paths["rna"])
    made = [out["probabilities"], out["top_genes"], out["gradcam"]]
    assert all(n is not None for n in made)
    for node in made:
        assert node_made_by(node) == STAGE_MADE_BY, node.GetName()
        assert made_node_or_none(node) is node, node.GetName()              # as the run left it
    for node in (vol, seg):
        assert node_made_by(node) == ""                                     # the user's nodes: untagged
    out["top_genes"].SetName("kept by the user")
    assert made_node_or_none(out["top_genes"]) is None                      # renamed: the user's
    cam = out["gradcam"]
    assert patient_grad_cam(mrml_scene, None, "", node=cam) is None         # the panel's clearGradCam
    assert cam.GetScene() is None                                           # removed, not left shown
    assert vol.GetScene() is mrml_scene and seg.GetScene() is mrml_scene
