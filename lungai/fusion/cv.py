"""Stratified k-fold cross-validation, nested for hyper-parameters, of the baseline and fusion models.

Outer folds estimate performance; inside each outer training set an inner stratified k-fold picks
the hyper-parameters from a small grid (by macro-F1), then the model is refitted on the whole outer
training set and scored on the outer test fold.  All preprocessing is fitted inside the folds.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

import numpy as np

from lungai.errors import InputError
from lungai.fusion.baseline import BaselinePipeline
from lungai.fusion.data import Cohort
from lungai.fusion.metrics import scores, summarise
from lungai.fusion.pipeline import FusionConfig, FusionPipeline

FUSION_GRID = {"fusion": ["concat", "weighted"]}
BASELINE_GRID = {"hidden": [16, 64], "alpha": [1e-3, 1e-1]}


def check_labels(cohort: Cohort, folds: int) -> list:
    """Classes (sorted); raises InputError for one class or too few patients per class."""
    counts = cohort.labels.value_counts().sort_index()
    if len(counts) < 2:
        raise InputError(f"the label has only one class ({', '.join(map(str, counts.index))}) "
                         f"among {int(counts.sum())} labelled patients",
                         "choose a label column with at least two classes")
    small = {str(k): int(v) for k, v in counts.items() if v < folds}
    if small:
        raise InputError(f"too few patients per class for {folds}-fold CV: {small} (each class needs >= {folds})",
                         f"use fewer folds (--folds {max(2, int(counts.min()))}), merge rare classes "
                         "(--label-groups) or add patients")
    return [str(c) for c in counts.index]


def grid_points(grid: Optional[dict]) -> list:
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _make(kind: str, classes, params: dict, config: FusionConfig, seed: int):
    if kind == "baseline":
        return BaselinePipeline(classes, seed=seed, **params)
    return FusionPipeline(config.replace(seed=seed, **params), classes)


def _split(y: np.ndarray, k: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def select_params(kind, cohort: Cohort, classes, grid, config, inner_folds: int, seed: int) -> dict:
    points = grid_points(grid)
    if len(points) == 1:
        return points[0]
    y = cohort.y(classes)
    if np.bincount(y, minlength=len(classes)).min() < inner_folds:
        return points[0]
    splits = _split(y, inner_folds, seed + 1)
    best, best_f1 = points[0], -1.0
    for p in points:
        f1s = []
        for tr, te in splits:
            model = _make(kind, classes, p, config, seed).fit(cohort.subset([cohort.ids[i] for i in tr]))
            f1s.append(scores(y[te], model.predict_proba(cohort.subset([cohort.ids[i] for i in te])),
                              len(classes))["macro_f1"])
        if np.mean(f1s) > best_f1 + 1e-9:
            best, best_f1 = p, float(np.mean(f1s))
    return best


def cross_validate(cohort: Cohort, models: dict, folds: int = 5, inner_folds: int = 3, seed: int = 0,
                   progress=None, on_fold: Optional[Callable] = None) -> dict:
    """``models``: name -> (kind "baseline"|"fusion", FusionConfig or None, grid or None).

    Returns {"classes", "folds", "models": {name: {"summary", "params", "oof"}}}.
    """
    classes = check_labels(cohort, folds)
    y = cohort.y(classes)
    splits = _split(y, folds, seed)
    result = {"classes": classes, "folds": folds, "inner_folds": inner_folds, "seed": seed, "models": {}}
    for name, (kind, config, grid) in models.items():
        oof = np.zeros((len(y), len(classes)))
        fold_scores, chosen = [], []
        for f, (tr, te) in enumerate(splits):
            train = cohort.subset([cohort.ids[i] for i in tr])
            test = cohort.subset([cohort.ids[i] for i in te])
            params = select_params(kind, train, classes, grid, config, inner_folds, seed) if inner_folds > 1 else \
                grid_points(grid)[0]
            model = _make(kind, classes, params, config, seed).fit(train)
            oof[te] = model.predict_proba(test)
            fold_scores.append(scores(y[te], oof[te], len(classes)))
            chosen.append(params)
            if progress is not None:
                progress.update(1, f"{name} fold {f + 1}/{folds} acc {fold_scores[-1]['accuracy']:.2f}")
            if on_fold is not None:
                on_fold(name, f, model)
        result["models"][name] = {"summary": summarise(fold_scores, y, oof, len(classes), seed=seed),
                                  "params": chosen, "oof": oof}
    result["y"] = y
    return result
