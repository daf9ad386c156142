"""``stage cv`` / ``stage validate`` say what they do after the last fold: each model's bootstrap CI and each
confusion-matrix PNG is a step of a bar, said as it starts.

QA stage72: ``stage cv --single-modality`` on NSCLC-Radiogenomics (logreg, fusion, selected, ehr_only, rna_only) went
silent for 4.8 s after "rna_only fold 3/3 macro-F1 0.30" - the bootstrap CIs of the last model and of the selected
row (~1.3 s each), then the five PNGs (5.9 s of a shared machine, matplotlib imported by the first) - before its
table; ``stage validate`` wrote its PNGs without a line too.
"""

from __future__ import annotations

from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 2, "--top-k", 10, "--neighbours", 2, "--baselines", "logreg"]


def test_cv_and_validate_say_the_bootstrap_and_each_png_as_they_start(tmp_path, capsys, monkeypatch):
    from lungai.fusion import cv, plots

    paths = small_stage_cohort(tmp_path / "c", 12)
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage"]
    shown = {}          # the console's last line when each step began its work
    draw, summarise = plots.confusion_png, cv.summarise

    def said_png(y, pred, classes, path, title):
        shown[path.name] = (capsys.readouterr().err.splitlines() or ["(nothing said)"])[-1]
        return draw(y, pred, classes, path, title)

    def said_summary(*args, **kwargs):
        shown.setdefault("ci", []).append((capsys.readouterr().err.splitlines() or ["(nothing said)"])[-1])
        return summarise(*args, **kwargs)

    monkeypatch.setattr(plots, "confusion_png", said_png)
    monkeypatch.setattr(cv, "summarise", said_summary)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    capsys.readouterr()
    assert stage_cli(["cv", *data, *FAST, "--folds", 2, "--inner-folds", 2, "-o", tmp_path / "cv"]) == 0
    ci = shown.pop("ci")
    assert len(ci) == 3 and all(line.endswith(f"stage cv: {name}: bootstrap 95 % CI")
                                for line, name in zip(ci, ("logreg", "fusion", "selected"))), ci
    for name in ("logreg", "fusion", "selected"):
        assert shown[f"confusion_{name}.png"].endswith(
            f"stage cv: writing the confusion matrices: confusion_{name}.png"), shown
    shown.clear()
    assert stage_cli(["train", *data, *FAST, "--inner-folds", 1, "-o", tmp_path / "model"]) == 0
    capsys.readouterr()
    assert stage_cli(["validate", "--include-training-patients", "--model", tmp_path / "model", *data,
                      "-o", tmp_path / "val"]) == 0
    assert set(shown) == {"confusion_logreg.png", "confusion_fusion.png"}, shown
    for name, line in shown.items():
        assert line.endswith(f"stage validate: writing the confusion matrices: {name}"), shown
