"""A locked stage model's training class balance, from its recorded numbers: ``model_card.md`` and ``lungai stage
predict`` give each class's training patients with the selected model's inner-CV recall, and say in a plain sentence
which classes were rare (a model trained on a mostly stage I cohort, used by a stage III/IV clinic)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.fusion.synthetic import make_cohort

FAST = ["--epochs", 2, "--top-k", 10, "--neighbours", 3, "--inner-folds", 2, "--baselines", "logreg",
        "--modalities", "ehr,rna"]


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A cohort of 10 stage I, 4 stage II and 4 stage III patients, and the model locked on it."""
    root = tmp_path_factory.mktemp("stage_balance")
    paths = make_cohort(root, n=30, seed=5, n_genes=20, module_size=5, ct_shape=(16, 16, 16),
                        ct_spacing=(8.0, 8.0, 5.0))
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    ehr = pd.concat([ehr[ehr["stage"] == "I"], ehr[ehr["stage"] == "II"].head(4), ehr[ehr["stage"] == "III"].head(4)])
    ehr.to_csv(root / "ehr_imbalanced.csv", index=False)
    out = root / "model"
    assert _cli(["train", "--ehr", root / "ehr_imbalanced.csv", "--rna", paths["rna"], "--label", "stage",
                 "-o", out, *FAST]) == 0
    return root, paths, out


def test_card_gives_class_counts_recall_and_names_the_rare_classes(trained):
    _, _, out = trained
    meta = json.loads((out / "stage_model.json").read_text(encoding="utf-8"))
    recall = meta["selection"]["candidates"][meta["selected"]]["inner_recall"]
    assert set(recall) == {"I", "II", "III"} and all(0.0 <= v <= 1.0 for v in recall.values())
    card = (out / "model_card.md").read_text(encoding="utf-8")
    line = next(x for x in card.splitlines() if x.startswith("- Training patients per class"))
    for c, n, share in (("I", 10, 56), ("II", 4, 22), ("III", 4, 22)):
        assert f"{c} {n} ({share} %, recall {recall[c]:.2f})" in line     # the recorded numbers, not a fixed text
    rare = next(x for x in card.splitlines() if x.startswith("- Rare in training"))
    assert "II (4 patients" in rare and "III (4 patients" in rare and "against 10 of I" in rare
    assert "predicted I" in rare and "lungai stage validate" in rare


def test_predict_says_the_training_class_balance(trained, tmp_path, capsys):
    root, paths, out = trained
    capsys.readouterr()
    assert _cli(["predict", "--ehr", paths["ehr"], "--rna", paths["rna"], "--model", out, "-o", tmp_path / "p"]) == 0
    printed = capsys.readouterr().out
    card = (out / "model_card.md").read_text(encoding="utf-8")
    balance = [x[2:] for x in card.splitlines() if x.startswith(("- Training patients per class", "- Rare in"))]
    assert len(balance) == 2
    assert balance[0] in printed and f"note: {balance[1]}" in printed


def test_a_balanced_cohort_names_no_rare_class():
    from lungai.fusion.model_io import class_balance_lines

    meta = {"training_cohort": {"class_counts": {"I": 10, "II": 9, "III": 8}}, "selected": "fusion",
            "selection": {"candidates": {"fusion": {"inner_recall": None}}}}
    lines = class_balance_lines(meta)
    assert len(lines) == 1 and "I 10 (37 %), II 9 (33 %), III 8 (30 %)" in lines[0]
    assert "no inner CV ran" in lines[0]


def _model_two_baselines(trained):
    """The synthetic EHR + RNA model with the logreg and forest baselines (trained once, shared by the tests)."""
    root, paths, _ = trained
    out = root / "model_two_baselines"
    if not out.exists():
        assert _cli(["train", "--ehr", root / "ehr_imbalanced.csv", "--rna", paths["rna"], "--label", "stage",
                     "-o", out, *FAST[:-4], "--baselines", "logreg,forest", "--modalities", "ehr,rna"]) == 0
    return paths, out, json.loads((out / "stage_model.json").read_text(encoding="utf-8"))


def test_predict_says_why_a_baseline_has_no_explanations_and_never_that_a_chosen_one_beat_the_fusion(trained,
                                                                                                    tmp_path, capsys):
    """QA balance63: `stage predict --explain --use forest` said "the predictions come from forest (it beat the fusion
    in the inner CV)" of a forest whose inner macro-F1 was below the fusion's (NSCLC-Radiogenomics: 0.303 vs 0.371);
    only the locked model's selected model beat it.  The Slicer panel said nothing at all: no top genes, no Grad-CAM,
    no word why (its result text now says it, lungai.fusion.no_explanation_text)."""
    paths, out, meta = _model_two_baselines(trained)
    f1 = {k: c["inner_macro_f1"] for k, c in meta["selection"]["candidates"].items()}
    for use in ("logreg", "forest"):
        capsys.readouterr()
        assert _cli(["predict", "--ehr", paths["ehr"], "--rna", paths["rna"], "--model", out, "--use", use,
                     "--explain", "-o", tmp_path / use]) == 0
        note = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("note: no explanations written"))
        assert f"the predictions come from {use}" in note and "--use fusion" in note
        if use == meta["selected"]:
            assert "it beat the fusion in the inner CV" in note and f1[use] >= f1["fusion"]
        else:
            assert "beat the fusion" not in note, (note, f1)


def test_predict_gives_the_recall_of_the_model_it_used(trained, tmp_path, capsys):
    """QA stageuse63: `stage predict --use fusion` printed the selected model's inner-CV recall per class beside the
    fusion network's predictions (synthetic cohort: forest selected, I/II/III recall 0.50/0.80/0.50, while the
    fusion's own recorded recall was 0.80/0.10/0.00).  The line gives the recall of the model that predicted, named,
    from its own record in the model card; the selected model keeps the card's line."""
    paths, out, meta = _model_two_baselines(trained)
    recalls = {k: c["inner_recall"] for k, c in meta["selection"]["candidates"].items()}
    card = (out / "model_card.md").read_text(encoding="utf-8")
    card_line = next(x[2:] for x in card.splitlines() if x.startswith("- Training patients per class"))
    for use in ("fusion", "logreg", "forest"):
        capsys.readouterr()
        assert _cli(["predict", "--ehr", paths["ehr"], "--rna", paths["rna"], "--model", out, "--use", use,
                     "-o", tmp_path / use]) == 0
        printed = capsys.readouterr().out
        line = next(x for x in printed.splitlines() if x.startswith("Training patients per class"))
        for c, n in (("I", 10), ("II", 4), ("III", 4)):
            assert f"{c} {n} ({round(100 * n / 18)} %, recall {recalls[use][c]:.2f})" in line, (use, line)
        rare = next(x for x in printed.splitlines() if x.startswith("note: Rare in training"))
        assert f"II (4 patients, recall {recalls[use]['II']:.2f})" in rare, (use, rare)
        if use == meta["selected"]:
            assert line == card_line
        else:
            assert f"the inner-CV recall of {use}, the model used here" in line, line
            assert "the selected model's recall" not in line, line


def test_a_used_model_without_its_own_recall_shows_none_of_another():
    """A card recording the selected model's recall but not that of the model used (`--use`) says so and gives no
    recall at all - never the selected model's numbers beside another model's predictions."""
    meta = {"training_cohort": {"class_counts": {"I": 10, "II": 4}}, "selected": "forest",
            "selection": {"candidates": {"forest": {"inner_recall": {"I": 0.9, "II": 0.5}},
                                         "fusion": {"inner_recall": None}}}}
    own = class_balance_lines_of(meta, None)
    assert "recall 0.90" in own[0] and "the selected model's recall" in own[0]
    used = class_balance_lines_of(meta, "fusion")
    assert "recall 0.9" not in " ".join(used) and "recall 0.5" not in " ".join(used), used
    assert "recall per class of fusion, the model that predicted here, not recorded" in used[0], used
    assert "II (4 patients)" in used[1]


def class_balance_lines_of(meta, model):
    from lungai.fusion.balance import class_balance_lines

    return class_balance_lines(meta, model) if model else class_balance_lines(meta)


def test_predict_explain_says_why_no_gene_shapley_values_were_written(trained, tmp_path, capsys):
    """QA stageuse63: `stage predict --explain --use fusion` of an EHR + RNA model given only --ehr wrote no
    top_genes_per_patient.csv and said nothing (the missing Grad-CAM had its note); now a note says why, and with
    --rna the file is written without it."""
    root, paths, out = trained
    capsys.readouterr()
    assert _cli(["predict", "--ehr", paths["ehr"], "--model", out, "--use", "fusion", "--explain",
                 "-o", tmp_path / "ehr_only"]) == 0
    err = capsys.readouterr().err
    assert not (tmp_path / "ehr_only" / "top_genes_per_patient.csv").exists()
    assert "note: no gene Shapley values written (top_genes_per_patient.csv): no patient was given RNA-seq" in err
    assert "--rna" in err
    assert _cli(["predict", "--ehr", paths["ehr"], "--rna", paths["rna"], "--model", out, "--use", "fusion",
                 "--explain", "-o", tmp_path / "with_rna"]) == 0
    assert "no gene Shapley values written" not in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "with_rna" / "top_genes_per_patient.csv")) > 0
