"""Shared helpers for the RP tests: one small trained model per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rp_cohort():
    from lungai.rp.cohort import make_cohort

    return make_cohort(240, seed=11)


@pytest.fixture(scope="session")
def rp_model_dir(tmp_path_factory, rp_cohort):
    """A logistic model trained (fast grids, all three feature sets compared) on 240 synthetic patients."""
    from lungai.rp.training import train_rp

    out = tmp_path_factory.mktemp("rp") / "model"
    train_rp(rp_cohort.table, rp_cohort.outcome, out, models="lr", fast=True, n_boot=8, outer_folds=3,
             inner_folds=3, final="all/lr")
    return out


@pytest.fixture(scope="session")
def rp_rf_model_dir(tmp_path_factory, rp_cohort):
    """A random-forest model (clinical + dosimetric features only) for the captum path."""
    from lungai.rp.training import train_rp

    out = tmp_path_factory.mktemp("rp_rf") / "model"
    train_rp(rp_cohort.table, rp_cohort.outcome, out, models="rf", feature_sets="clinical_dosimetric",
             fast=True, n_boot=4, outer_folds=3, inner_folds=3, make_plots=False)
    return out
