"""Shared helpers for the RP tests: small trained models, trained once per test session.

The fixtures are imported by several test modules (pytest would then run a session fixture once
per module), so the trained model directories are cached under the session's base temp folder.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rp_cohort():
    from lungai.rp.cohort import make_cohort

    return make_cohort(240, seed=11)


def _trained(tmp_path_factory, name: str, cohort, **kwargs):
    from lungai.rp.training import train_rp

    out = tmp_path_factory.getbasetemp() / "rp_models" / name
    if not (out / "model.skops").exists():
        train_rp(cohort.table, cohort.outcome, out, fast=True, outer_folds=3, inner_folds=3, **kwargs)
    return out


@pytest.fixture(scope="session")
def rp_model_dir(tmp_path_factory, rp_cohort):
    """A logistic model trained (fast grids, all three feature sets compared) on 240 synthetic patients."""
    return _trained(tmp_path_factory, "lr", rp_cohort, models="lr", n_boot=8, final="all/lr")


RF_COHORT_SEED = 12   # make_cohort(240, seed) the random forest is trained on (see rp_rf_model_dir)


@pytest.fixture(scope="session")
def rp_rf_model_dir(tmp_path_factory):
    """A random-forest model (clinical + dosimetric features only) for the captum path, whose selection step keeps
    10 of its 16 encoded columns: the exact Shapley values need at most EXACT_MAX_PLAYERS (10) players, and the
    panel's contributions table is checked to leave out the columns it drops.  Trained on make_cohort(240,
    RF_COHORT_SEED): since the synthetic DVH is non-increasing in dose (QA rpfollow68), the forest of rp_cohort (seed
    11) keeps all its columns (select__k 'all', for every training seed 0-3); seed 12's keeps 10."""
    from lungai.rp.cohort import make_cohort
    from lungai.rp.model_io import load_model

    out = _trained(tmp_path_factory, "rf", make_cohort(240, seed=RF_COHORT_SEED), models="rf",
                   feature_sets="clinical_dosimetric", n_boot=4, make_plots=False)
    chosen = load_model(out)[1]["hyperparameters"]["select__k"]
    assert chosen == 10, f"the fixture's forest keeps select__k={chosen!r} columns, not 10: choose another cohort seed"
    return out


@pytest.fixture(scope="session")
def rp_small_model(tmp_path_factory):
    """A small logistic model (clinical + dosimetric features, 2x2 folds) trained on 80 synthetic patients (seed 3):
    the model the no-dose, tumour-review and dose-notes tests predict and validate with (never written to)."""
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    out = tmp_path_factory.getbasetemp() / "rp_models" / "small"
    if not (out / "model.skops").exists():
        train_rp(make_cohort(80, seed=3, n_noise=0).table, "rp_grade2", out, models="lr",
                 feature_sets="clinical_dosimetric", outer_folds=2, inner_folds=2, fast=True, n_boot=2,
                 make_plots=False)
    return out


ROLE_NAMES = {"case": "Patient ID", "clin_age_years": "Age at diagnosis", "clin_sex_cat": "Sex ",
              "clin_pack_years": "Pack Years", "dose_mld_gy": "MLD"}
ROLE_FILE = ("column,role,type\nPatient ID,id,\nAge at diagnosis,clinical,\nSex,clinical,\nPack Years,clinical,\n"
             "MLD,dosimetric,\n")


@pytest.fixture(scope="session")
def rp_roles_model(tmp_path_factory):
    """(table CSV, model dir) of a model trained with a role file on a table whose columns are not renamed
    (``Patient ID``, ``Age at diagnosis``, ``Sex `` with its trailing space, ``MLD``; the other columns keep their
    prefixes): the model's features carry these names."""
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    out = tmp_path_factory.getbasetemp() / "rp_models" / "roles"
    table, model = out / "table.csv", out / "model"
    if not (model / "model.skops").exists():
        out.mkdir(parents=True, exist_ok=True)
        make_cohort(80, seed=3, n_noise=0).table.rename(columns=ROLE_NAMES).to_csv(table, index=False)
        (out / "roles.csv").write_text(ROLE_FILE, encoding="utf-8")
        train_rp(table, "rp_grade2", model, models="lr", feature_sets="clinical_dosimetric",
                 role_file=out / "roles.csv", outer_folds=2, inner_folds=2, fast=True, n_boot=2, make_plots=False, seed=0)
    return table, model


MESSY_SEX = ["M", "male", "Male", "MALE", "Male", "F", "female", "Female", "Female", "FEMALE"]


@pytest.fixture(scope="session")
def rp_messy_model(tmp_path_factory):
    """(table CSV, model dir) of a model trained on a CSV as exports have it: ``clin_sex`` spelled in several cases
    (M, male, Male, MALE ... F, female, Female), ``clin_comorb`` with the category "None" (no comorbidity) and
    ``clin_weight_kg`` with NA / None / #N/A for missing values."""
    import numpy as np

    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    out = tmp_path_factory.getbasetemp() / "rp_models" / "messy"
    table, model = out / "table.csv", out / "model"
    if not (model / "model.skops").exists():
        out.mkdir(parents=True, exist_ok=True)
        df = make_cohort(60, seed=3, n_noise=0).table
        df = df[["case", "rp_grade2", "clin_age_years", "clin_sex_cat", "dose_mld_gy"]]
        male = df.pop("clin_sex_cat").eq("male").to_numpy()
        df["clin_sex"] = [MESSY_SEX[k % 5] if m else MESSY_SEX[5 + k % 5] for k, m in enumerate(male)]
        df["clin_comorb"] = (["None", "COPD", "ILD"] * 20)[:len(df)]
        weight = np.round(np.random.default_rng(1).normal(75, 10, len(df)), 1).astype(object)
        weight[:3] = ["NA", "None", "#N/A"]
        df["clin_weight_kg"] = weight
        df.to_csv(table, index=False)
        train_rp(table, "rp_grade2", model, models="lr", feature_sets="all", fast=True, outer_folds=2, inner_folds=2,
                 n_boot=2, make_plots=False)
    return table, model


def recorded_warning(result, model_dir, word: str, count_key: str, count: int, md_text: str) -> str:
    """The warning of ``rp train``'s ``result`` holding ``word``, checked where it is recorded: in ``metrics`` (the
    CLI says them as InputNotes on stderr, not among its printed lines: QA rpfollow65), in the model
    card's warnings with its count (``training_data[count_key]``) - in its form without the patients' IDs
    (``without_ids``: the card keeps no plain ID) - and, with ``md_text``, in model_card.md."""
    import json

    warning = next((w for w in result.metrics["warnings"] if word in w), None)
    assert warning is not None, result.metrics["warnings"]
    assert not [line for line in result.lines if word in line], result.lines
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    kept = [w for w in card["warnings"] if word in w]
    assert card["training_data"][count_key] == count and kept == [warning.without_ids], (kept, warning)
    assert md_text in (model_dir / "model_card.md").read_text(encoding="utf-8")
    return warning


def model_without_hashes(model_dir, tmp_path):
    """A copy of the RP model folder ``model_dir`` whose model card records no training patients' hashes (a model of
    a lungai before them), in ``tmp_path``/old."""
    import json

    old = tmp_path / "old"
    old.mkdir()
    for f in model_dir.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    card = json.loads((old / "model_card.json").read_text())
    del card["training_patients"]
    (old / "model_card.json").write_text(json.dumps(card))
    return old


def without_widened(cell) -> str:
    """A predictions row's ``warnings`` cell without the note of an interval widened to hold the risk
    (lungai.rp.uncertainty.WIDENED_INTERVAL, always the row's last item): frequent for the fixtures' models of 2-4
    bootstrap members, and not what a test of the other warnings is about."""
    from lungai.rp.uncertainty import WIDENED_INTERVAL

    cell = str(cell)
    at = cell.find(WIDENED_INTERVAL.split(":", 1)[0])
    return cell if at < 0 else cell[:at].removesuffix("; ")


def cli_train_fast_lr(table, out) -> int:
    """``lungai rp train TABLE --outcome rp_grade2 -o OUT`` as the notes tests run it: a fast logistic model on every
    feature, 3 x 2 nested CV, 2 bootstrap draws - the exit code."""
    from lungai.cli import main

    return main(["rp", "train", str(table), "--outcome", "rp_grade2", "-o", str(out), "--fast", "--models", "lr",
                 "--feature-sets", "all", "--outer-folds", "3", "--inner-folds", "2", "--bootstrap", "2"])
