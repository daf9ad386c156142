"""``lungai rp``'s progress through its long steps (QA rp68, a random-forest model of 200 training patients - the
default 200 trees, 30 bootstrap copies - on a loaded machine): ``rp train``'s bar stood 11-14 s on each outer fold's
inner-CV grid search and then ~195 s on "37/37 plots" while model.skops was written (35 s of CPU: 6,200 trees in
the skops format); ``rp predict`` / ``rp validate`` said nothing for 49 s while they loaded that model (13 s of CPU),
and ``rp predict`` stood 11 s on its Shapley values.  Each such step is now shown while it runs, its seconds counted
(:func:`lungai.progress.waiting`).  The slow steps are simulated here: the test checks what is shown while they run."""

from __future__ import annotations

import re
import time

import pytest

from lungai.cli import main

from rp_helpers import rp_cohort, rp_model_dir  # noqa: F401  (fixtures)

SLOW = 1.6     # seconds a simulated slow step takes: more than the 1 s between two lines of a running step


def _progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("LUNGAI_PROGRESS ")]


def _slowed(monkeypatch, owner, name: str):
    real = getattr(owner, name)

    def slow(*args, **kwargs):
        time.sleep(SLOW)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)


def _timed(lines: list[str], pattern: str) -> list[str]:
    """The lines of a running step matching ``pattern`` that count its seconds: "<message> (<n> s)"."""
    return [line for line in lines if re.search(pattern, line) and re.search(r"\(\d+ s\)$", line)]


def test_rp_train_shows_each_fold_refit_and_the_model_file_while_they_run(tmp_path, capsys, monkeypatch):
    from sklearn.model_selection import GridSearchCV

    from lungai.rp import model_io
    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    make_cohort(60, seed=3, n_noise=0).table.to_csv(tmp_path / "t.csv", index=False)
    _slowed(monkeypatch, GridSearchCV, "fit")          # an outer fold's (and the refit's) inner-CV grid search
    _slowed(monkeypatch, model_io, "dump_skops")       # writing model.skops
    model = tmp_path / "model"
    assert main(["rp", "train", str(tmp_path / "t.csv"), "--outcome", "rp_grade2", "-o", str(model), "--models",
                 "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2", "--inner-folds", "2", "--fast",
                 "--bootstrap", "2"]) == 0
    lines = _progress_lines(capsys.readouterr().err)
    assert (model / "model.skops").is_file()
    for fold in (1, 2):
        assert _timed(lines, rf"rp train: clinical_dosimetric/lr fold {fold}/2: inner-CV grid search"), lines
    assert _timed(lines, r"rp train: refit clinical_dosimetric/lr on all patients: inner-CV grid search"), lines
    writing = _timed(lines, r"rp train: writing the model file model\.skops")
    assert writing, lines
    # the bar is not full before the model is written: its last step comes after the model file's lines
    last = lines[-1]
    total = re.match(r"LUNGAI_PROGRESS (\d+)/(\d+) ", last).groups()
    assert total[0] == total[1] and lines.index(writing[-1]) < len(lines) - 1, lines
    steps = [re.match(r"LUNGAI_PROGRESS (\d+)/", line).group(1) for line in lines[:lines.index(writing[0])]]
    assert int(steps[-1]) < int(total[1]), lines


def test_rp_predict_shows_the_model_loading_and_the_shapley_values_while_they_run(tmp_path, capsys, monkeypatch,
                                                                                 rp_model_dir, rp_cohort):
    import lungai.rp.predict as predict
    from lungai.rp import model_io

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    rp_cohort.table.head(4).to_csv(tmp_path / "p.csv", index=False)
    _slowed(monkeypatch, model_io, "load_skops")
    _slowed(monkeypatch, predict, "shapley_values")
    assert main(["rp", "predict", str(rp_model_dir), str(tmp_path / "p.csv"), "-o", str(tmp_path / "pred.csv")]) == 0
    lines = _progress_lines(capsys.readouterr().err)
    loading = _timed(lines, r"loading the model .*model\.skops")
    assert loading and lines.index(loading[0]) < min(i for i, s in enumerate(lines) if "Shapley" in s), lines
    assert _timed(lines, r"rp predict: Shapley values"), lines


def test_rp_validate_shows_the_model_loading_while_it_runs(tmp_path, capsys, monkeypatch, rp_model_dir):
    from lungai.rp import model_io
    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    make_cohort(60, seed=21).table.to_csv(tmp_path / "ext.csv", index=False)
    _slowed(monkeypatch, model_io, "load_skops")
    assert main(["rp", "validate", str(rp_model_dir), str(tmp_path / "ext.csv"), "-o", str(tmp_path / "val"),
                 "--include-training-patients"]) == 0
    lines = _progress_lines(capsys.readouterr().err)
    assert _timed(lines, r"rp validate: loading the model .*model\.skops"), lines
    done, total = re.match(r"LUNGAI_PROGRESS (\d+)/(\d+) ", lines[-1]).groups()
    assert done == total, lines


@pytest.mark.parametrize("clash", ["output", "contributions"])
def test_rp_predict_refuses_one_path_for_two_of_its_outputs(clash, tmp_path, capsys, monkeypatch, rp_model_dir,
                                                           rp_cohort):
    """QA rp68: ``rp predict -o risk.png --importance-png risk.png`` wrote the predictions, then the figure over them
    (exit 0, "-> risk.png": the predictions lost); ``--contributions c.png --importance-png c.png`` the figure, then
    the contributions over it.  Refused before any work, naming both options."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rp_cohort.table.head(4).to_csv(tmp_path / "p.csv", index=False)
    same = tmp_path / "same.png"
    pred = same if clash == "output" else tmp_path / "pred.csv"
    args = ["rp", "predict", str(rp_model_dir), str(tmp_path / "p.csv"), "-o", str(pred),
            "--importance-png", str(same)]
    if clash == "contributions":
        args += ["--contributions", str(same)]
    assert main(args) == 2
    err = capsys.readouterr().err
    option = "-o" if clash == "output" else "--contributions"
    assert f"--importance-png {same} is also the {option} file" in err and "Traceback" not in err, err
    assert "choose another path for one of them" in err, err
    assert not same.exists() and not pred.exists()
