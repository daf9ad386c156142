"""Plain tabular baselines next to the fusion network: same inputs, same outer folds, nested model
choice, and a locked model that is the inner-CV winner (a baseline when it beats the fusion)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.fusion import cv as cvmod
from lungai.fusion import model_io
from lungai.fusion.baseline import KINDS, BaselinePipeline
from lungai.fusion.data import load_cohort
from lungai.fusion.pipeline import FusionConfig
from lungai.fusion.synthetic import make_cohort

# these tests validate on the model's own training patients: scored only with this flag (in-sample, not external)
OWN = "--include-training-patients"

CLASSES = ["I", "II", "III"]
FAST = FusionConfig(epochs=4, top_k=20, neighbours=3, seed=0, lr=1e-2)


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    out = tmp_path_factory.mktemp("stage_baselines")
    return make_cohort(out, n=30, seed=5, n_genes=30, module_size=6, ct_shape=(48, 48, 24),
                       ct_spacing=(6.0, 6.0, 5.0), rna_shift=3.0)


@pytest.fixture(scope="module")
def cohort(paths):
    return load_cohort(paths["ehr"], paths["rna"], None, label="stage")


@pytest.fixture(scope="module")
def linear_ehr(tmp_path_factory):
    """EHR only; the class is a linear function of two lab values: a plain logistic regression wins."""
    rng = np.random.default_rng(0)
    n = 90
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    score = x1 + 0.7 * x2 + rng.normal(0, 0.25, n)
    stage = np.where(score < np.quantile(score, 1 / 3), "I", np.where(score < np.quantile(score, 2 / 3), "II", "III"))
    df = pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "lab_a": x1, "lab_b": x2,
                       "noise": rng.normal(size=n), "sex": rng.choice(["F", "M"], n), "stage": stage})
    path = tmp_path_factory.mktemp("linear") / "ehr.csv"
    df.to_csv(path, index=False)
    return path


def test_every_baseline_uses_ehr_and_genes_fitted_on_the_training_patients(cohort):
    train = cohort.subset(cohort.ids[:20])
    for kind in KINDS:
        b = BaselinePipeline(CLASSES, kind, top_k=10).fit(train)
        assert b.genes is not None and len(b.genes.genes) == 10
        # gene selection saw only the training patients' expression
        var = train.rna.var(axis=0).sort_values(ascending=False)
        assert set(b.genes.genes) == set(var.index[:10])
        x = b.matrix(cohort)
        assert x.shape == (len(cohort.ids), b.encoder.n_features + 10 + 1)      # EHR + genes + RNA indicator
        p = b.predict_proba(cohort)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)     # logreg / MLP on the float32 matrix: float32 sums
    lr = BaselinePipeline(CLASSES, "logreg", top_k=10).fit(train)
    assert lr.model.coef_.shape[0] == 3                                      # multinomial: one row per class


def test_baselines_appear_side_by_side_and_the_selected_row_is_nested(cohort):
    models = cvmod.candidates(FAST, KINDS, nested=True)
    assert list(models) == ["logreg", "forest", "mlp", "fusion"]
    res = cvmod.cross_validate(cohort, models, folds=2, inner_folds=2, seed=0, select=tuple(models))
    assert set(res["models"]) == {"logreg", "forest", "mlp", "fusion", "selected"}
    y = res["y"]
    splits = cvmod._split(y, 2, 0)
    for f, (_, te) in enumerate(splits):
        inner = {n: res["models"][n]["inner_macro_f1"][f] for n in models}
        assert all(v is not None for v in inner.values())
        best = max(inner, key=lambda n: (inner[n], -list(models).index(n)))
        picked = res["models"]["selected"]["params"][f]
        assert picked["model"] == best
        # the selected row scores the inner-CV winner on the outer test fold, nothing else
        np.testing.assert_array_equal(res["models"]["selected"]["oof"][te], res["models"][best]["oof"][te])
        assert res["models"]["selected"]["summary"]["macro_f1"]["folds"][f] == \
            res["models"][best]["summary"]["macro_f1"]["folds"][f]
    for name in models:   # same outer folds for every row
        assert len(res["models"][name]["summary"]["balanced_accuracy"]["folds"]) == 2


def test_selection_follows_the_inner_cv_not_the_outer_folds(cohort, monkeypatch):
    """If the inner CV prefers the forest, the reported figure is the forest's outer score even where
    another model scores better on the outer folds (no maximum over candidates on the test folds)."""
    real = cvmod.select_params

    def rigged(kind, *a, **kw):
        params, score = real(kind, *a, **kw)
        return params, (score + 10.0 if kind == "forest" and score is not None else score)

    monkeypatch.setattr(cvmod, "select_params", rigged)
    models = cvmod.candidates(FAST, ("logreg", "forest"), nested=True)
    models["logreg"] = ("logreg", FAST, {"C": [1.0]})
    res = cvmod.cross_validate(cohort, models, folds=3, inner_folds=2, seed=1, select=("logreg", "forest"))
    sel = res["models"]["selected"]
    assert [p["model"] for p in sel["params"]] == ["forest"] * 3
    assert sel["summary"]["macro_f1"]["folds"] == res["models"]["forest"]["summary"]["macro_f1"]["folds"]
    assert "fusion" in res["models"]          # candidates() always brings the fusion network
    assert "fusion" not in [p["model"] for p in sel["params"]]


def test_a_baseline_that_wins_is_locked_and_said(tmp_path, linear_ehr, capsys):
    common = ["--ehr", linear_ehr, "--label", "stage", "--epochs", 3, "--inner-folds", 3]
    assert _cli(["cv", *common, "-o", tmp_path / "cv", "--folds", 3, "--baselines", "logreg,forest"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["models"]) == {"logreg", "forest", "fusion", "selected"}
    assert metrics["models"]["logreg"]["macro_f1"]["mean"] > metrics["models"]["fusion"]["macro_f1"]["mean"] + 0.2
    assert "a plain baseline beats the fusion network" in out
    table = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")
    assert "logistic regression" in table and "balanced accuracy" in table and "selected by nested CV" in table

    assert _cli(["train", *common, "-o", tmp_path / "model", "--baselines", "logreg,forest"]) == 0
    out = capsys.readouterr().out
    meta = json.loads((tmp_path / "model" / "stage_model.json").read_text(encoding="utf-8"))
    assert meta["selected"] == "logreg", meta["selection"]
    assert "a plain baseline beat the fusion network" in meta["selection"]["verdict"]
    assert "selected: logreg" in out and "beat the fusion network" in out
    # QA fusion62: "locked model (ehr, rna, ct; fusion concat)" named the fusion's configured branches (no RNA or CT
    # given) as the locked model's, after "selected: logreg"
    assert (f"locked model: logistic regression (L2, multinomial), saved with the fusion network (EHR MLP, RNA left "
            f"out, CT masked; fusion concat) -> {tmp_path / 'model'}") in out, out
    assert "**logistic regression" in (tmp_path / "model" / "model_card.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "model").glob("*.skops")) == \
        ["baseline_forest.skops", "baseline_logreg.skops", "ehr_encoder.skops"]

    # predict uses the locked (selected) model; the fusion only on request
    new = pd.read_csv(linear_ehr).drop(columns=["stage"]).iloc[:5]
    new.to_csv(tmp_path / "new.csv", index=False)
    assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "p"]) == 0
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv")
    pipe, bases, meta = model_io.load(tmp_path / "model")
    cohort = load_cohort(tmp_path / "new.csv", require_label=False)
    np.testing.assert_allclose(pred[[f"p_{c}" for c in CLASSES]].to_numpy(), bases["logreg"].predict_proba(cohort),
                               atol=1e-6)
    assert set(pred.model) == {"logreg"}
    capsys.readouterr()
    assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "p2",
                 "--explain"]) == 0                  # as the Slicer panel calls it
    assert "--use fusion" in capsys.readouterr().err
    assert set(pd.read_csv(tmp_path / "p2" / "predictions.csv").model) == {"logreg"}
    assert _cli(["predict", "--model", tmp_path / "model", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "p3",
                 "--use", "fusion"]) == 0
    assert set(pd.read_csv(tmp_path / "p3" / "predictions.csv").model) == {"fusion"}
    # validate reports every locked model
    assert _cli(["validate", OWN, "--model", tmp_path / "model", "--ehr", linear_ehr, "-o", tmp_path / "v"]) == 0
    val = json.loads((tmp_path / "v" / "metrics.json").read_text(encoding="utf-8"))
    assert set(val["models"]) == {"fusion", "logreg", "forest"} and val["selected"] == "logreg"


def test_without_comparison_the_model_card_says_so(tmp_path, linear_ehr, capsys):
    assert _cli(["train", "--ehr", linear_ehr, "--label", "stage", "--epochs", 2, "--baselines", "none",
                 "-o", tmp_path / "m"]) == 0
    meta = json.loads((tmp_path / "m" / "stage_model.json").read_text(encoding="utf-8"))
    assert meta["selected"] == "fusion" and "WITHOUT comparison" in meta["selection"]["verdict"]
    assert f"locked model: fusion network (EHR MLP, RNA left out, CT masked; fusion concat) -> {tmp_path / 'm'}" in \
        capsys.readouterr().out
    # QA: the card showed "with EHR/RNA/CT {'ehr': 90, 'rna': 0, 'ct': 0}" (a raw dict), as class_counts_text
    card = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    assert "with EHR 90, RNA 0, CT 0" in card and "{" not in card.split("Training cohort:")[1].splitlines()[0]


def test_baseline_files_load_only_allow_listed_types(tmp_path, cohort):
    import skops.io as sio

    from lungai.fusion.pipeline import FusionPipeline

    pipe = FusionPipeline(FAST.replace(modalities=("ehr",)), CLASSES).fit(cohort)
    b = BaselinePipeline(CLASSES, "forest", top_k=10).fit(cohort)
    model_io.save(tmp_path / "m", pipe, {"forest": b}, selected="forest")
    assert model_io.load(tmp_path / "m")[2]["selected"] == "forest"
    import builtins
    import os

    sio.dump({"encoder": None, "model": builtins.eval, "x": os.system}, tmp_path / "m" / "baseline_forest.skops")
    with pytest.raises(InputError, match="never needs"):
        model_io.load(tmp_path / "m")


def test_too_few_patients_per_class_for_the_inner_cv_is_refused_before_training(paths, tmp_path, capsys):
    """A class rarer than --inner-folds in an outer training fold: no silent first grid point, no 'selected' row
    claiming an inner-CV choice (it used to say "fusion 2x": the fallback, not a choice)."""
    ehr = pd.read_csv(paths["ehr"])
    ehr["lab"] = ["C"] * 2 + ["B"] * 12 + ["A"] * (len(ehr) - 14)
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    cohort = load_cohort(tmp_path / "ehr.csv", paths["rna"], None, label="lab")
    models = cvmod.candidates(FAST, ("logreg",), nested=True)
    with pytest.raises(InputError, match=r"class 'C' has 1 patient in the training part of outer fold") as err:
        cvmod.cross_validate(cohort, models, folds=2, inner_folds=3, seed=0, select=tuple(models))
    assert "--inner-folds 1" in err.value.fix and "--inner-folds 2" not in err.value.fix
    assert _cli(["cv", "--ehr", tmp_path / "ehr.csv", "--rna", paths["rna"], "--label", "lab", "--modalities",
                 "ehr,rna", "--baselines", "logreg", "--epochs", 2, "--folds", 2, "--inner-folds", 3,
                 "-o", tmp_path / "cv"]) != 0
    assert "class 'C'" in capsys.readouterr().err and not (tmp_path / "cv" / "metrics.json").exists()
    ehr["lab"] = ["C"] * 5 + ["B"] * 12 + ["A"] * (len(ehr) - 17)   # 2-3 C per training part: 2 inner folds fit
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    cohort = load_cohort(tmp_path / "ehr.csv", paths["rna"], None, label="lab")
    with pytest.raises(InputError, match="class 'C' has 2 patient") as err:
        cvmod.cross_validate(cohort, models, folds=2, inner_folds=3, seed=0, select=tuple(models))
    assert "use --inner-folds 2 (the largest that fits)" in err.value.fix
    with pytest.raises(InputError, match="smallest class has 2"):     # the backstop: no silent first grid point
        rare = [i for i in cohort.ids if cohort.labels[i] == "C"][2:]
        cvmod.select_params("logreg", cohort.subset([i for i in cohort.ids if i not in rare]), ["A", "B", "C"],
                            cvmod.BASELINE_GRIDS["logreg"], FAST, 3, 0)


def test_no_inner_cv_check_when_nothing_is_chosen(paths, tmp_path, capsys):
    """Review: one model with one grid point (--baselines none --fusion-grid weighted) runs no inner CV, yet a class
    rarer than --inner-folds in an outer training fold was refused ("too few patients per class for the 3-fold
    inner CV").  It runs now; with something to choose (a grid of several points) it is still refused."""
    ehr = pd.read_csv(paths["ehr"])
    ehr["lab"] = ["C"] * 3 + ["B"] * 12 + ["A"] * (len(ehr) - 15)   # 2 C per outer training part of 3 folds
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    cohort = load_cohort(tmp_path / "ehr.csv", paths["rna"], None, label="lab")
    one = cvmod.candidates(FAST, (), nested=True, fusion_grid=["weighted"])
    result = cvmod.cross_validate(cohort, one, folds=3, inner_folds=3, seed=0, select=tuple(one))
    assert result["models"]["fusion"]["inner_macro_f1"] == [None] * 3
    with pytest.raises(InputError, match="3-fold inner CV"):
        cvmod.cross_validate(cohort, cvmod.candidates(FAST, (), nested=True, fusion_grid=["weighted", "concat"]),
                             folds=3, inner_folds=3, seed=0)
    assert _cli(["cv", "--ehr", tmp_path / "ehr.csv", "--rna", paths["rna"], "--label", "lab", "--drop", "stage",
                 "--modalities", "ehr,rna", "--baselines", "none", "--fusion-grid", "weighted", "--epochs", 2,
                 "--folds", 3, "--inner-folds", 3, "-o", tmp_path / "cvn"]) == 0, capsys.readouterr().err
    assert (tmp_path / "cvn" / "metrics.json").exists()
