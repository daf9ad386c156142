"""Every ``--seed`` of the CLI takes 0 .. 2**32 - 1 (``lungai.cli.radiomics.seed_number``) and the whole range works.

QA: `lungai stage train --seed 5000000000` crashed with scikit-learn's "The 'random_state' parameter of TSNE must be
an int in the range [0, 4294967295]" traceback after the whole training; `lungai rp train`, `rp synth`, `sample`
(and `train-seg`, `eval-seg`) took any int (`--seed -1`: numpy's "expected non-negative integer" traceback); and
the largest seed stage's own message offered, 2**32 - 1, crashed `stage cv` / `rp train` ("Seed must be between 0
and 2**32 - 1": the inner folds' seed + 1)."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from lungai.cli import build_parser, main
from lungai.cli.radiomics import SEED_MAX, seed_number


def _seed_options(parser, path=()):
    """(command path, option) of every option named like a seed ('--seed', '--biology-seed'; not '--seed-point')."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _seed_options(sub, path + (name,))
        else:
            for opt in action.option_strings:
                if opt.startswith("--") and opt.endswith("seed"):
                    yield path, opt, action


SEED_OPTIONS = list(_seed_options(build_parser()))


def test_the_seed_options_are_found():
    commands = {" ".join(p) for p, _, _ in SEED_OPTIONS}
    assert {"stage train", "stage cv", "stage synth", "rp train", "rp synth", "rp predict", "train-seg",
            "segment", "eval-seg", "sample"} <= commands
    assert ("stage", "synth") in {p for p, o, _ in SEED_OPTIONS if o == "--biology-seed"}


@pytest.mark.parametrize("path,option,action", SEED_OPTIONS,
                         ids=[f"{' '.join(p)} {o}" for p, o, _ in SEED_OPTIONS])
def test_every_seed_option_takes_the_one_seed_range(path, option, action):
    assert action.type is seed_number, f"lungai {' '.join(path)} {option} is not read by seed_number"


@pytest.mark.parametrize("value,message", [("5000000000", "5000000000 is above 4294967295: give a seed from 0 to "
                                                          "2**32 - 1"),
                                           ("-1", "-1 is below 0: give a seed from 0 to 2**32 - 1")])
@pytest.mark.parametrize("argv", [["stage", "train", "--ehr", "e.csv", "--label", "stage", "-o", "o"],
                                  ["rp", "train", "t.csv", "--outcome", "y", "-o", "o"],
                                  ["rp", "synth", "-o", "o.csv"], ["sample", "-o", "o"],
                                  ["train-seg", "-o", "o"], ["eval-seg", "-o", "o.csv"]],
                         ids=lambda a: " ".join(a[:2] if a[0] in ("stage", "rp") else a[:1]))
def test_a_seed_out_of_range_is_refused_when_the_command_line_is_read(tmp_path, monkeypatch, capsys, argv, value,
                                                                     message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv + ["--seed", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seed: {message}" in err
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_seed_number_takes_both_ends():
    assert seed_number("0") == 0 and seed_number(str(SEED_MAX)) == SEED_MAX == 2 ** 32 - 1


def test_the_largest_seed_runs_the_stage_cv_and_the_rp_nested_cv(tmp_path):
    """seed + 1 (stage's inner folds) and seed + fold / + 1000 + b (rp) of 2**32 - 1 are wrapped, not refused."""
    from lungai.fusion import cv as cvmod
    from lungai.fusion.data import load_cohort
    from lungai.fusion.pipeline import FusionConfig
    from lungai.rp.pipeline import build_pipeline
    from lungai.rp.validation import bootstrap_ensemble, nested_cv

    rng = np.random.default_rng(0)
    n = 36
    x = rng.normal(size=n)
    stage = np.where(x < -0.4, "I", np.where(x < 0.4, "II", "III"))
    ehr = pd.DataFrame({"patient_id": [f"P{i:02d}" for i in range(n)], "lab": x + rng.normal(0, 0.3, n),
                        "sex": rng.choice(["F", "M"], n), "stage": stage})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    cohort = load_cohort(tmp_path / "ehr.csv", None, None, label="stage")
    models = {"logreg": cvmod.candidates(FusionConfig(epochs=1), ("logreg",), nested=True)["logreg"]}
    res = cvmod.cross_validate(cohort, models, folds=2, inner_folds=2, seed=SEED_MAX)
    assert res["seed"] == SEED_MAX and np.isfinite(res["models"]["logreg"]["oof"]).all()

    X = pd.DataFrame({"a": x, "b": rng.normal(size=n)})
    y = (x + rng.normal(0, 0.5, n) > 0).astype(int)
    out = nested_cv(X, y, "rf", [], 3, 2, seed=SEED_MAX, fast=True)
    assert np.isfinite(out["oof"]).all()
    rf = build_pipeline("rf", ["a", "b"], [], seed=0, n_trees=5)
    assert len(bootstrap_ensemble(rf, X, y, 2, seed=SEED_MAX)) == 2
