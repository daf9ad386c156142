"""``lungai stage cv / train / validate / predict`` output folders: a re-run replaces its own outputs (marker
``.lungai-stage-<command>``, lungai.io.outputs), a file of the user's of an output name is refused before any work."""

from __future__ import annotations

import pandas as pd
import pytest

from lungai.fusion.synthetic import make_cohort

# these tests validate on the model's own training patients: scored only with this flag (in-sample, not external)
OWN = "--include-training-patients"

FAST = ["--epochs", 2, "--top-k", 10, "--neighbours", 3, "--inner-folds", 1, "--baselines", "logreg",
        "--modalities", "ehr,rna"]


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    out = tmp_path_factory.mktemp("stage_outputs")
    return make_cohort(out, n=18, seed=5, n_genes=20, module_size=5, ct_shape=(16, 16, 16), ct_spacing=(8.0, 8.0, 5.0))


@pytest.fixture(scope="module")
def model(paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage_model") / "model"
    assert _cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "-o", out, *FAST]) == 0
    return out


def _user_file(folder, name, text="mine"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


@pytest.mark.parametrize("name", ["comparison.md", "oof_predictions.csv", "confusion_logreg.png"])
def test_cv_refuses_a_users_file_and_replaces_its_own(tmp_path, paths, capsys, name):
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "--folds", 2, *FAST]
    mine = _user_file(tmp_path / "cv", name)
    _user_file(tmp_path / "cv", "notes.txt")
    assert _cli(["cv", *data, "-o", tmp_path / "cv"]) == 2
    err = capsys.readouterr().err
    assert name in err and "not written by lungai stage cv" in err and mine.read_text() == "mine"
    mine.unlink()
    assert _cli(["cv", *data, "-o", tmp_path / "cv"]) == 0
    assert _cli(["cv", *data, "-o", tmp_path / "cv"]) == 0          # a re-run replaces its own outputs
    assert (tmp_path / "cv" / "comparison.md").stat().st_size > 100
    assert (tmp_path / "cv" / "notes.txt").read_text() == "mine"    # other files are left alone


@pytest.mark.parametrize("name", ["model_card.md", "tsne.png", "stage_model.json"])
def test_train_refuses_a_users_file_and_replaces_its_own(tmp_path, paths, capsys, name):
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", *FAST]
    mine = _user_file(tmp_path / "m", name)
    assert _cli(["train", *data, "-o", tmp_path / "m"]) == 2
    err = capsys.readouterr().err
    assert name in err and "not written by lungai stage train" in err and mine.read_text() == "mine"
    assert "older" in err                     # a folder of an older lungai (no marker): refused, and said how to fix
    mine.unlink()
    assert _cli(["train", *data, "-o", tmp_path / "m"]) == 0
    assert _cli(["train", *data, "-o", tmp_path / "m"]) == 0        # a re-run replaces its own model
    assert (tmp_path / "m" / "model_card.md").read_text().startswith("# Stage model")


def test_validate_and_predict_refuse_a_users_file(tmp_path, paths, model, capsys):
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"]]
    mine = _user_file(tmp_path / "val", "predictions.csv", "patient,my_column\n")
    assert _cli(["validate", OWN, "--model", model, *data, "--label", "stage", "-o", tmp_path / "val"]) == 2
    assert "predictions.csv" in capsys.readouterr().err and mine.read_text() == "patient,my_column\n"
    mine.unlink()
    for _ in range(2):
        assert _cli(["validate", OWN, "--model", model, *data, "--label", "stage", "-o", tmp_path / "val"]) == 0
    mine = _user_file(tmp_path / "pred", "top_genes_per_patient.csv")
    assert _cli(["predict", "--model", model, *data, "-o", tmp_path / "pred", "--explain", "--use", "fusion"]) == 2
    err = capsys.readouterr().err
    assert "top_genes_per_patient.csv" in err and mine.read_text() == "mine"
    assert not (tmp_path / "pred" / "predictions.csv").exists()     # refused before any work
    mine.unlink()
    for _ in range(2):
        assert _cli(["predict", "--model", model, *data, "-o", tmp_path / "pred", "--explain", "--use", "fusion"]) == 0
    assert len(pd.read_csv(tmp_path / "pred" / "top_genes_per_patient.csv")) > 0


def test_another_stage_commands_folder_is_named_not_taken_for_an_older_lungais(tmp_path):
    from lungai.errors import InputError
    from lungai.fusion.model_io import check_output_dir

    val = tmp_path / "val1"
    val.mkdir()
    (val / "predictions.csv").write_text("patient_id,label\n", encoding="utf-8")
    (val / ".lungai-stage-validate").write_text("predictions.csv\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        check_output_dir(val, "predict")
    assert f"{val} is the output of lungai stage validate; choose another folder" in err.value.fix
    assert "a lungai older than" not in err.value.fix
    (tmp_path / "old").mkdir()                      # no marker at all: a folder of an older lungai, said so
    (tmp_path / "old" / "predictions.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        check_output_dir(tmp_path / "old", "predict")
    assert "older than the marker file .lungai-stage-predict" in err.value.fix


def test_the_same_seed_gives_byte_identical_model_files(paths, model, tmp_path):
    """skops files too (baselines, EHR encoder): written with lungai.model_files.dump_skops, not skops' own dump,
    whose zip members are named after Python id()s and stamped with the time."""
    import time

    time.sleep(2.1)                                                  # another zip timestamp, had it been kept
    again = tmp_path / "again"
    assert _cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "-o", again, *FAST]) == 0
    skops = sorted(p.name for p in model.glob("*.skops"))
    assert "ehr_encoder.skops" in skops and "baseline_logreg.skops" in skops
    for name in skops + ["fusion.safetensors", "stage_model.json"]:
        assert (model / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.parametrize("figure", ["tsne", "confusion"])
def test_figure_titles_are_not_cut_off(figure, tmp_path, monkeypatch):
    """QA balance63: tsne.png of `stage train` on NSCLC-Radiogenomics read "of fused embeddings (fusion network),
    training patients (in-sa": its title, wider than the figure, was cut at both sides - the in-sample caveat lost;
    `stage validate`'s "fusion (NOT external: includes training patients)" the same.  Every title fits its figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    from lungai.fusion import plots

    kept = []
    monkeypatch.setattr(plt, "close", kept.append)       # the figure, to measure its title once drawn
    y = np.array([0, 1, 2, 0, 1, 2])
    if figure == "tsne":
        plots.tsne_png(np.random.default_rng(0).normal(size=(6, 2)), y, ["I", "II", "III-IV"], tmp_path / "t.png",
                       "t-SNE of fused embeddings (fusion network), training patients (in-sample)")
    else:
        plots.confusion_png(y, y[::-1], ["I", "II", "III-IV"], tmp_path / "c.png",
                            "fusion (NOT external: includes training patients)")
    fig = kept[0]
    title = fig.axes[0].title
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height, (box, fig.bbox)
    said = " ".join(title.get_text().split())           # wrapped onto lines, every word kept
    assert said in ("t-SNE of fused embeddings (fusion network), training patients (in-sample)",
                    "fusion (NOT external: includes training patients)")


def test_confusion_plot_titles_name_the_models_as_the_tables_do(tmp_path, paths, model, monkeypatch):
    """QA stage64: the confusion plots of `stage cv` and `stage validate` were titled with the internal names
    ("rna_only (2-fold CV)", "logreg (NOT external: ...)") while comparison.md, the console and the model card say
    "RNA only (GAT)", "logistic regression (L2, multinomial)"; each title now names its model as they do."""
    import json

    from lungai.fusion import plots

    titles = {}
    draw = plots.confusion_png

    def record(y, pred, classes, path, title):
        titles[path.name] = title
        return draw(y, pred, classes, path, title)

    monkeypatch.setattr(plots, "confusion_png", record)
    assert _cli(["cv", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "--folds", 2, *FAST,
                 "--single-modality", "-o", tmp_path / "cv"]) == 0
    labels = json.loads((tmp_path / "cv" / "metrics.json").read_text())["labels"]   # comparison.md's row names
    assert titles["confusion_rna_only.png"] == "RNA only (GAT) (2-fold CV)"
    assert titles["confusion_logreg.png"] == "logistic regression (L2, multinomial) (2-fold CV)"
    assert titles["confusion_fusion.png"] == f"{labels['fusion']} (2-fold CV)" and "fusion network (" in labels["fusion"]
    titles.clear()
    assert _cli(["validate", OWN, "--model", model, "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage",
                 "-o", tmp_path / "v"]) == 0
    card = (model / "model_card.md").read_text()
    assert titles["confusion_logreg.png"] == ("logistic regression (L2, multinomial) (NOT external: includes "
                                              "training patients)")
    fusion = titles["confusion_fusion.png"].removesuffix(" (NOT external: includes training patients)")
    assert fusion.startswith("fusion network (EHR MLP + RNA GAT") and fusion in card
