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
    from lungai.fusion.metrics import majority_reference

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
    from lungai.fusion.metrics import majority_reference, majority_warning

    ref = majority_reference(np.array([0] * 6 + [1] * 2 + [2] * 2), ["I", "II", "III"])
    assert majority_warning("logreg", _summary(0.7, 0.5), ref) is None
    both = majority_warning("logreg", _summary(0.5, 0.33), ref)
    assert "does not beat always answering the most common class 'I' (6 of 10)" in both
    assert "accuracy 0.500 vs 0.600" in both and "do not use its stage calls" in both
    acc = majority_warning("logreg", _summary(0.5, 0.45), ref)
    assert "accuracy is below" in acc and "judge it by balanced accuracy" in acc
    bal = majority_warning("logreg", _summary(0.65, 0.3), ref, "validation")
    assert "balanced accuracy is not above chance" in bal and "train again" in bal


def test_majority_warning_never_says_below_of_an_equal_accuracy():
    """QA stagefollow71 (NSCLC-Radiogenomics, stage validate): "logreg's accuracy is below always answering the most
    common class 'I' (26 of 54) ... accuracy 0.481 vs 0.481" of a model that answered as many patients right as the
    constant answer: an equal accuracy is said to equal it, one below by less than the figures show not to be above
    it; "below" only where the figures differ."""
    from lungai.fusion.metrics import majority_reference, majority_warning

    ref = majority_reference(np.array([0] * 26 + [1] * 16 + [2] * 12), ["I", "II", "III"])
    assert f"{ref['accuracy']:.3f}" == "0.481"
    same = majority_warning("logreg", _summary(26 / 54, 0.45), ref)
    assert "logreg's accuracy equals that of always answering the most common class 'I' (26 of 54)" in same, same
    assert "below" not in same and "accuracy 0.481 vs 0.481" in same and "judge it by balanced accuracy" in same
    close = majority_warning("logreg", _summary(26 / 54 - 1e-4, 0.45), ref)
    assert "logreg's accuracy is not above that of always answering" in close and "below" not in close, close
    assert "accuracy 0.481 vs 0.481" in close
    low = majority_warning("logreg", _summary(0.4, 0.45), ref)
    assert "logreg's accuracy is below always answering" in low and "accuracy 0.400 vs 0.481" in low


def test_comparison_table_has_the_reference_row():
    from lungai.fusion.metrics import comparison_table, majority_reference

    ref = majority_reference(np.array([0, 0, 0, 1]), ["I", "II"])
    s = {m: {"mean": 0.5, "sd": None, "ci95": [None, None]}
         for m in ("macro_f1", "balanced_accuracy", "macro_auc", "accuracy")}
    table = comparison_table({"logreg": s}, reference=ref)
    assert table.splitlines()[-1] == ("| reference: always the most common class 'I' (3 of 4) | 0.429 | 0.500 | 0.500 "
                                      "| 0.750 |")


def test_comparison_table_shows_each_subsets_own_reference():
    """QA predictlast66: a `stage cv --single-modality` `<m>_only` row, scored on the patients with its modality
    only, is warned against that subset's own majority-class reference (metrics.json too), but comparison.md's table
    showed only the whole cohort's: its own reference row now follows it, so the table reads on its own."""
    from lungai.fusion.metrics import comparison_table, majority_reference

    classes = ["I", "II"]
    y = np.array([0] * 12 + [1] * 8)
    s = {m: {"mean": 0.7, "sd": None, "ci95": [None, None]}
         for m in ("macro_f1", "balanced_accuracy", "macro_auc", "accuracy")}
    sub = majority_reference(y[10:], classes)      # 'II' 8 of 10
    lines = comparison_table({"logreg": s, "rna_only": s}, {"rna_only": "RNA only (GAT)"},
                             majority_reference(y, classes), {"rna_only": sub}).splitlines()
    assert lines[2].startswith("| logreg |") and lines[3].startswith("| RNA only (GAT) |")
    assert lines[4] == ("| reference for RNA only (GAT) (its 10 patients): always the most common class 'II' (8 of 10) "
                        "| 0.444 | 0.500 | 0.500 | 0.800 |")
    assert lines[5].startswith("| reference: always the most common class 'I' (12 of 20) |") and len(lines) == 6


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


def test_stage_train_shows_the_majority_reference_and_warns_in_the_card(tmp_path, capsys, monkeypatch):
    """QA stagefollow66: `stage train`'s comparison and model card did not show the majority-class reference, nor warn
    of a candidate whose inner CV does not beat it."""
    from lungai.fusion import cv

    real = cv.select_model

    def no_better_than_chance(*args, **kwargs):   # noise data lands either side of chance: fix the logreg's side
        sel = real(*args, **kwargs)
        sel["inner_recall"]["logreg"] = {"I": 0.4, "II": 0.3, "III": 0.2}      # balanced accuracy 0.300 < 0.333
        return sel

    monkeypatch.setattr(cv, "select_model", no_better_than_chance)
    ehr = _noise_ehr(tmp_path / "ehr.csv")
    assert stage_cli(["train", "--ehr", ehr, "--label", "stage", "--epochs", 2, "--inner-folds", 2, "--baselines",
                      "logreg", "-o", tmp_path / "model"]) == 0
    cap = capsys.readouterr()
    meta = json.loads((tmp_path / "model" / "stage_model.json").read_text(encoding="utf-8"))
    ref = meta["selection"]["majority_reference"]
    assert (ref["class"], ref["n"], ref["of"]) == ("I", 40, 60)
    card = (tmp_path / "model" / "model_card.md").read_text(encoding="utf-8")
    assert "| reference: always the most common class 'I' (40 of 60) | - | 0.267 | 0.333 | 0.667 |" in card
    assert "reference: always the most common class 'I' (40 of 60): macro-F1 0.267, balanced accuracy 0.333, " \
           "accuracy 0.667 - every model must beat it" in cap.out
    from lungai.fusion.metrics import class_counts, inner_majority_warning, inner_scores

    # the warnings, as computed from the recorded inner-CV scores: in stage_model.json, the card and on the console
    counts = {"I": 40, "II": 10, "III": 10}
    assert class_counts(np.array([0] * 40 + [1] * 10 + [2] * 10), ["I", "II", "III"]) == counts
    expected = []
    for name, c in meta["selection"]["candidates"].items():
        scores = inner_scores(c["inner_recall"], counts)
        assert scores["balanced_accuracy"] == pytest.approx(np.mean(list(c["inner_recall"].values())))
        assert scores["accuracy"] == pytest.approx(sum(c["inner_recall"][k] * v for k, v in counts.items()) / 60)
        assert (c["inner_balanced_accuracy"], c["inner_accuracy"]) == (scores["balanced_accuracy"], scores["accuracy"])
        low = not scores["accuracy"] > ref["accuracy"] or not scores["balanced_accuracy"] > ref["balanced_accuracy"]
        assert (inner_majority_warning(name, scores, ref) is not None) == low
        expected += [name] if low else []
    said = meta["selection"]["majority_warnings"]
    assert len(said) == len(expected), (said, meta["selection"]["candidates"])
    assert any(w.startswith("logistic regression (L2, multinomial) (inner CV of the training cohort) does not beat "
                            "always answering the most common class 'I' (40 of 60): accuracy 0.350 vs 0.667, "
                            "balanced accuracy 0.300 vs 0.333 (chance)") and "`lungai stage cv`" in w
               for w in said), said
    assert "| logistic regression (L2, multinomial)" in card and "| 0.300 | 0.350 |" in card
    assert all(f"- Warning: {w}" in card and f"warning: {w}" in cap.err for w in said)


def test_stage_train_without_inner_cv_says_the_reference_is_not_compared(tmp_path, capsys):
    ehr = _noise_ehr(tmp_path / "ehr.csv")
    assert stage_cli(["train", "--ehr", ehr, "--label", "stage", "--epochs", 2, "--inner-folds", 1, "--baselines",
                      "logreg", "-o", tmp_path / "model"]) == 0
    card = (tmp_path / "model" / "model_card.md").read_text(encoding="utf-8")
    assert "| reference: always the most common class 'I' (40 of 60) | - | 0.267 | 0.333 | 0.667 |" in card
    assert "whether the locked model beats the reference is not measured - run `lungai stage cv`" in card
    assert "whether the locked model beats the reference is not measured" in capsys.readouterr().out


def test_single_modality_rows_are_warned_against_their_own_subsets_reference():
    """QA stagefollow66: `stage cv --single-modality`'s `<m>_only` rows, scored on the patients with the modality,
    were never compared with always answering the most common class."""
    import warnings

    from lungai.fusion.metrics import majority_reference
    from lungai.fusion.workflows import say_majority_warnings

    classes = ["I", "II"]
    y = np.array([0] * 12 + [1] * 8)              # all: 'I' 12 of 20 (0.6)
    have = np.array([False] * 10 + [True] * 10)   # with RNA: 'I' 2, 'II' 8 -> 'II' 8 of 10 (0.8)
    models = {"logreg": {"summary": _summary(0.7, 0.6)}, "rna_only": {"summary": _summary(0.7, 0.6)}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        say_majority_warnings(models, {}, majority_reference(y, classes), y, classes, {"rna_only": have})
    said = [str(w.message) for w in caught]
    assert len(said) == 1, said                  # logreg beats 0.6; rna_only does not beat its subset's 0.8
    assert said[0].startswith("rna_only (scored on the 10 patients with its modality)'s accuracy is below always "
                              "answering the most common class 'II' (8 of 10)"), said


def test_stage_cv_single_modality_row_gets_its_subsets_reference(tmp_path, capsys):
    ehr = _noise_ehr(tmp_path / "ehr.csv", n=36)
    df = pd.read_csv(ehr)
    rng = np.random.default_rng(3)
    ids = df.patient_id[:18].tolist()          # RNA for half the patients
    pd.DataFrame(rng.normal(size=(18, 12)), index=pd.Index(ids, name="patient_id"),
                 columns=[f"G{i}" for i in range(12)]).to_csv(tmp_path / "rna.csv")
    assert stage_cli(["cv", "--ehr", ehr, "--rna", tmp_path / "rna.csv", "--label", "stage", "--epochs", 2,
                      "--inner-folds", 1, "--baselines", "logreg", "--folds", 2, "--single-modality",
                      "--modalities", "ehr,rna", "-o", tmp_path / "cv"]) == 0
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))
    sub = df.stage[:18].value_counts()
    ref = metrics["models"]["rna_only"]["majority_reference"]
    assert (ref["class"], ref["n"], ref["of"]) == (sub.idxmax(), int(sub.max()), 18)
    r = metrics["models"]["rna_only"]
    low = not r["accuracy"]["mean"] > ref["accuracy"] or not r["balanced_accuracy"]["mean"] > ref["balanced_accuracy"]
    warned = [w for w in metrics["warnings"] if w.startswith("RNA only")]
    assert bool(warned) == low and low, (r, ref)    # noise genes: the RNA-only network does not beat it
    assert f"({ref['n']} of 18)" in warned[0]
    table = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")   # the table reads on its own
    assert (f"| reference for RNA only (GAT) (its 18 patients): always the most common class {ref['class']!r} "
            f"({ref['n']} of 18) | ") in table
