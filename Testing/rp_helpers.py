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


@pytest.fixture(scope="session")
def rp_rf_model_dir(tmp_path_factory, rp_cohort):
    """A random-forest model (clinical + dosimetric features only) for the captum path."""
    return _trained(tmp_path_factory, "rf", rp_cohort, models="rf", feature_sets="clinical_dosimetric",
                    n_boot=4, make_plots=False)
