"""stage cv / validate compare every model with the trivial answer: always the most common class (QA
predictfollow66: on NSCLC-Radiogenomics the logistic regression's accuracy 0.499 and the fusion's 0.463 lay below
always answering 'I', 0.611, and nothing said so)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stage_helpers import stage_cli


def _noise_ehr(path, n=60, seed=0):
    """EHR only, the label unrelated to the columns and imbalanced: I 2/3, II 1/6, III 1/6."""
    rng = np.random.default_rng(seed)
    stage = np.array(["I"] * (4 * n // 6) + ["II"] * (n // 6) + ["III"] * (n - 4 * n // 6 - n // 6))
    rng.shuffle(stage)
    df = pd.DataFrame({"patient_id": [f"P{seed}_{i:03d}" for i in range(n)], "lab_a": rng.normal(size=n),
                       "lab_b": rng.normal(size=n), "sex": rng.choice(["F", "M"], n), "stage": stage})
    df.to_csv(path, index=False)
    return path


def _summary(acc, bal):
    return {"accuracy": {"mean": acc}, "balanced_accuracy": {"mean": bal}}


def test_majority_reference_scores_the_constant_answer():
    from lungai.fusion.metrics import comparison_table, majority_reference, majority_warning  # noqa: F401

    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    ref = majority_reference(y, ["I", "II", "III"])
    assert ref["class"] == "I" and (ref["n"], ref["of"]) == (6, 10)
    assert ref["accuracy"] == pytest.approx(0.6)
    assert ref["balanced_accuracy"] == pytest.approx(1 / 3)
    assert ref["macro_f1"] == pytest.approx(2 * 0.6 / 1.6 / 3)       # F1 of 'I' (precision 0.6, recall 1), 0, 0
    assert ref["macro_auc"] == 0.5
    # what scikit-learn gives the constant prediction
    from lungai.fusion.metrics import scores
    proba = np.tile([1.0, 0.0, 0.0], (10, 1))
    s = scores(y, proba, 3)
    for m in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc"):
        assert s[m] == pytest.approx(ref[m]), m


def test_majority_warning_says_which_figure_and_what_to_do():
    from lungai.fusion.metrics import comparison_table, majority_reference, majority_warning  # noqa: F401

    ref = majority_reference(np.array([0] * 6 + [1] * 2 + [2] * 2), ["I", "II", "III"])
    assert majority_warning("logreg", _summary(0.7, 0.5), ref) is None
    both = majority_warning("logreg", _summary(0.5, 0.33), ref)
    assert "does not beat always answering the most common class 'I' (6 of 10)" in both
    assert "accuracy 0.500 vs 0.600" in both and "do not use its stage calls" in both
    acc = majority_warning("logreg", _summary(0.5, 0.45), ref)
    assert "accuracy is below" in acc and "judge it by balanced accuracy" in acc
    bal = majority_warning("logreg", _summary(0.65, 0.3), ref, "validation")
    assert "balanced accuracy is not above chance" in bal and "train again" in bal


def test_comparison_table_has_the_reference_row():
    from lungai.fusion.metrics import comparison_table, majority_reference, majority_warning  # noqa: F401

    ref = majority_reference(np.array([0, 0, 0, 1]), ["I", "II"])
    s = {m: {"mean": 0.5, "sd": None, "ci95": [None, None]}
         for m in ("macro_f1", "balanced_accuracy", "macro_auc", "accuracy")}
    table = comparison_table({"logreg": s}, reference=ref)
    assert table.splitlines()[-1] == ("| reference: always the most common class 'I' (3 of 4) | 0.429 | 0.500 | 0.500 "
                                      "| 0.750 |")


def test_stage_cv_and_validate_warn_of_a_model_below_the_majority_class(tmp_path, capsys):
    ehr = _noise_ehr(tmp_path / "ehr.csv")
    common = ["--ehr", ehr, "--label", "stage", "--epochs", 2, "--inner-folds", 1, "--baselines", "logreg"]
    assert stage_cli(["cv", *common, "--folds", 3, "-o", tmp_path / "cv"]) == 0
    err = capsys.readouterr().err
    md = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")
    assert "| reference: always the most common class 'I' (40 of 60) | 0.267 | 0.333 | 0.500 | 0.667 |" in md
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["majority_reference"]["class"] == "I"
    warned = [w for w in metrics["warnings"] if "always answering the most common class 'I'" in w]
    assert warned and any(w.startswith("logistic regression") for w in warned), metrics["warnings"]
    assert all(f"- warning: {w}" in md and f"warning: {w}" in err for w in warned)

    assert stage_cli(["train", *common, "-o", tmp_path / "model"]) == 0
    other = _noise_ehr(tmp_path / "ehr2.csv", n=30, seed=1)
    capsys.readouterr()
    assert stage_cli(["validate", "--ehr", other, "--label", "stage", "--model", tmp_path / "model",
                      "-o", tmp_path / "val"]) == 0
    cap = capsys.readouterr()
    assert "reference  always the most common class 'I' (20 of 30): accuracy 0.667" in cap.out
    vm = json.loads((tmp_path / "val" / "metrics.json").read_text(encoding="utf-8"))
    assert vm["majority_reference"]["accuracy"] == pytest.approx(20 / 30)
    below = [w for w in vm["warnings"] if "always answering the most common class 'I'" in w]
    assert below and all(f"warning: {w}" in cap.err for w in below)
