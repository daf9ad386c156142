"""Nested stratified cross-validation and the final (locked) fit.

Outer loop: ``StratifiedKFold(outer_folds)`` gives honest out-of-fold risks for every
patient.  Inner loop: ``GridSearchCV`` with ``StratifiedKFold(inner_folds)`` on the outer
training part only picks the hyper-parameters (selection k, C or tree depth/leaf size).
The whole Pipeline (imputation, scaling, selection, model) is refitted in every fold.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from lungai.progress import NullProgress, waiting
from lungai.rp.pipeline import build_pipeline, n_encoded, param_grid

SCORING = "roc_auc"  # inner-CV criterion for the hyper-parameters
GRID_SEARCH = "inner-CV grid search"   # what a fold's (or the refit's) long step is called on the progress bar


@contextlib.contextmanager
def quiet():
    """Silence sklearn's convergence / constant-feature warnings inside CV folds and use one
    BLAS thread (these small problems are several times slower with contended threads)."""
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        for cat in (ConvergenceWarning, RuntimeWarning, UserWarning):
            warnings.simplefilter("ignore", cat)
        yield


def grid_search(X: pd.DataFrame, model: str, categorical: list[str], inner_folds: int, seed: int,
                fast: bool) -> GridSearchCV:
    numeric = [c for c in X.columns if c not in categorical]
    cats = [c for c in X.columns if c in categorical]
    pipe = build_pipeline(model, numeric, cats, seed=seed, n_trees=50 if fast else 200)
    grid = param_grid(model, n_encoded(X, numeric, cats), fast=fast)
    return GridSearchCV(pipe, grid, scoring=SCORING, refit=True, n_jobs=1,
                        cv=StratifiedKFold(inner_folds, shuffle=True, random_state=seed))


def outer_splits(y: np.ndarray, outer_folds: int, seed: int) -> list:
    """The outer folds (train, test indices); the same for every feature set x model of one run."""
    outer = StratifiedKFold(outer_folds, shuffle=True, random_state=seed)
    return list(outer.split(np.zeros((len(y), 1)), y))


def nested_cv(X: pd.DataFrame, y: np.ndarray, model: str, categorical: list[str], outer_folds: int = 5,
              inner_folds: int = 3, seed: int = 0, fast: bool = False, progress=None, label: str = "") -> dict:
    """Out-of-fold risks (``oof``), the hyper-parameters chosen in each outer fold (``params``) and
    the inner-CV AUC of that choice (``inner_auc``, what the selection across models compares)."""
    progress = progress or NullProgress()
    oof = np.zeros(len(y))
    chosen, inner_auc = [], []
    with quiet():
        for fold, (train, test) in enumerate(outer_splits(y, outer_folds, seed)):
            gs = grid_search(X.iloc[train], model, categorical, inner_folds, (seed + fold) % 2 ** 32, fast)
            # shown while it runs, its seconds counted: one fold of a random forest's grid took 11-14 s (QA rp68)
            waiting(progress, f"{label or model} fold {fold + 1}/{outer_folds}: {GRID_SEARCH}", gs.fit,
                    X.iloc[train], y[train])
            oof[test] = gs.predict_proba(X.iloc[test])[:, 1]
            chosen.append({k: v for k, v in gs.best_params_.items()})
            inner_auc.append(float(gs.best_score_))
            progress.update(1, f"{label or model} fold {fold + 1}/{outer_folds}")
    return {"oof": oof, "params": chosen, "inner_auc": inner_auc}


def select_best(inner_auc: dict) -> str:
    """THE selection rule, used inside every outer fold and for the locked model: the feature set x
    model with the highest inner-CV AUC (the first listed on a tie)."""
    return max(inner_auc, key=lambda k: (inner_auc[k], -list(inner_auc).index(k)))


def nested_selection(cv: dict, y: np.ndarray, outer_folds: int, seed: int) -> dict:
    """Out-of-fold risks of the *whole procedure* "pick the feature set x model by :func:`select_best`,
    then fit it": in each outer fold the choice is made from inner-CV AUCs on that fold's training
    part only, and the held-out patients get the risks of the combination chosen there.  The AUC of
    these risks includes the choice, unlike the best of the per-combination AUCs (optimistic)."""
    oof = np.zeros(len(y))
    picks = []
    for fold, (_, test) in enumerate(outer_splits(y, outer_folds, seed)):
        key = select_best({k: r["inner_auc"][fold] for k, r in cv.items()})
        oof[test] = cv[key]["oof"][test]
        picks.append(key)
    return {"oof": oof, "chosen_per_fold": picks}


def fit_final(X: pd.DataFrame, y: np.ndarray, model: str, categorical: list[str], inner_folds: int = 3,
              seed: int = 0, fast: bool = False, progress=None, label: str = ""):
    """The locked model: hyper-parameters by CV on all patients, then refitted on all of them.
    Returns (pipeline, hyper-parameters, inner-CV AUC of the choice).  ``progress``: the grid search is shown on it
    while it runs (``"<label>: inner-CV grid search"``, its seconds counted; no step counted)."""
    with quiet():
        gs = grid_search(X, model, categorical, inner_folds, seed, fast)
        waiting(progress, f"{label or model}: {GRID_SEARCH}", gs.fit, X, y)
    return gs.best_estimator_, dict(gs.best_params_), float(gs.best_score_)


def bootstrap_ensemble(pipe, X: pd.DataFrame, y: np.ndarray, n_boot: int, seed: int = 0, progress=None) -> list:
    """``n_boot`` copies of the locked pipeline refitted on stratified bootstrap resamples."""
    progress = progress or NullProgress()
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    members = []
    with quiet():
        for b in range(n_boot):
            idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
            member = clone(pipe)
            if "random_state" in member.named_steps["clf"].get_params():
                member.set_params(clf__random_state=(seed + 1000 + b) % 2 ** 32)  # the largest seed, 2**32 - 1, wrapped
            members.append(member.fit(X.iloc[idx], y[idx]))
            progress.update(1, f"bootstrap {b + 1}/{n_boot}")
    return members


def leaky_selection_auc(X: np.ndarray, y: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """The WRONG way, kept only to demonstrate leakage: select the k best features on *all*
    patients, then cross-validate a model on them.  On pure noise this looks predictive."""
    top = SelectKBest(f_classif, k=k).fit(X, y).get_support()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    p = cross_val_predict(pipe, X[:, top], y, method="predict_proba",
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed))[:, 1]
    return float(roc_auc_score(y, p))
