"""Stratified k-fold cross-validation, nested for hyper-parameters and for the choice of model.

Outer folds estimate performance; inside each outer training set an inner stratified k-fold picks
each candidate's hyper-parameters from a small grid (by macro-F1), and the candidate with the best
inner macro-F1 is the fold's **selected** model.  Every candidate is refitted on the whole outer
training set and scored on the outer test fold, so the report shows all candidates side by side on
the same outer folds, plus the ``selected`` row: the outer-fold score of whichever candidate the
inner CV chose in that fold - an estimate of the whole "pick the best model" procedure that is
not the maximum over candidates measured on the folds used to pick.  ``lungai stage train`` locks
a model by the same rule on the whole cohort (:func:`select_model`).  All preprocessing is fitted
inside the folds.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from typing import Callable, Optional

import numpy as np

from lungai.errors import InputError
from lungai.fusion.baseline import KINDS, BaselinePipeline
from lungai.fusion.data import Cohort
from lungai.fusion.folds import check_inner_labels, check_labels  # noqa: F401 - light (lungai.fusion.folds)
from lungai.fusion.folds import split as _split
from lungai.fusion.metrics import scores, summarise
from lungai.fusion.pipeline import FusionConfig, FusionPipeline
from lungai.fusion.preprocess import UnseenLevelWarning
from lungai.progress import SubProgress

FUSION_GRID = {"fusion": ["concat", "weighted"]}
BASELINE_GRIDS = {"logreg": {"C": [0.01, 0.1, 1.0]}, "forest": {"min_leaf": [1, 5]},
                  "mlp": {"hidden": [16, 64], "alpha": [1e-3, 1e-1]}}
SELECTED = "selected"


def candidates(config: FusionConfig, baselines=KINDS, nested: bool = True, fusion_grid=None) -> dict:
    """The compared models: name -> (kind, FusionConfig, grid or None).  Baselines first: on a tie of
    the inner macro-F1 the simpler model is chosen.  ``fusion_grid``: fusion types to choose from
    (default :data:`FUSION_GRID`)."""
    models = {k: (k, config, BASELINE_GRIDS[k] if nested else None) for k in baselines}
    grid = {"fusion": list(fusion_grid)} if fusion_grid else FUSION_GRID
    models["fusion"] = ("fusion", config, grid if nested else None)
    return models


def grid_points(grid: Optional[dict]) -> list:
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def make_model(kind: str, classes, params: dict, config: FusionConfig, seed: int):
    if kind == "fusion":
        return FusionPipeline(config.replace(seed=seed, **params), classes)
    # the baselines see the modalities the network is given (--modalities), so the comparison is on the same inputs
    return BaselinePipeline(classes, kind, seed=seed, top_k=config.top_k, gene_variances=config.gene_variances,
                            use_ehr="ehr" in config.modalities, use_rna="rna" in config.modalities,
                            use_image="ct" in config.modalities, **params)


def _fit(model, cohort: Cohort, progress=None):
    """``model.fit(cohort)``, a fusion network's with ``progress`` (a :class:`lungai.progress.SubProgress`: its
    epochs are posted, "... epoch 40/80"); ``progress`` first shows what is being fitted."""
    if progress is not None:
        progress.update(0)
    if isinstance(model, FusionPipeline):
        return model.fit(cohort, progress=progress)
    return model.fit(cohort)


def _grid_text(point: dict) -> str:
    """A grid point in a progress message: "weighted" (a fusion type), "C=0.1"."""
    return " ".join(str(v) if k == "fusion" else f"{k}={v}" for k, v in point.items())


def _fold_levels_quiet(fn):
    """Inside CV a text level of a rare value is often absent from a training fold: expected, not a new cohort's
    surprise, so :class:`UnseenLevelWarning` is not shown there (the value is treated as missing all the same)."""
    @functools.wraps(fn)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UnseenLevelWarning)
            return fn(*args, **kwargs)
    return quiet


@_fold_levels_quiet
def select_params(kind, cohort: Cohort, classes, grid, config, inner_folds: int, seed: int,
                  need_score: bool = False, progress=None, recall: Optional[dict] = None) -> tuple:
    """(best grid point, its mean inner macro-F1 or None).  The inner CV runs when the grid has more
    than one point, or when ``need_score`` (the score takes part in choosing among models).  ``progress``: a
    :class:`lungai.progress.SubProgress` ("fusion fold 1/5"), each fit posted ("... inner 2/3 grid weighted").
    ``recall``: a dict filled, when the inner CV ran, with the best grid point's recall per class over the pooled
    inner test folds ({class: share of its patients predicted as it}: :func:`class_recall`)."""
    points = grid_points(grid)
    if len(points) == 1 and not need_score:
        return points[0], None
    y = cohort.y(classes)
    if inner_folds < 2:
        return points[0], None
    smallest = int(np.bincount(y, minlength=len(classes)).min())
    if smallest < inner_folds:   # never a silent "choice" of the first grid point (callers check beforehand)
        raise InputError(f"too few patients per class for the {inner_folds}-fold inner CV (the smallest class has "
                         f"{smallest})", f"use --inner-folds {smallest if smallest >= 2 else 1}, merge rare classes "
                         "(--label-groups) or add patients")
    splits = _split(y, inner_folds, seed + 1)
    best, best_f1, best_pred = points[0], -1.0, None
    sub = progress if progress is not None else SubProgress(None)
    for p in points:
        f1s, pred = [], np.zeros(len(y), int)
        for k, (tr, te) in enumerate(splits):
            where = sub.sub(f"inner {k + 1}/{inner_folds}" + (f" grid {_grid_text(p)}" if p else ""))
            model = _fit(make_model(kind, classes, p, config, seed), cohort.subset([cohort.ids[i] for i in tr]), where)
            proba = model.predict_proba(cohort.subset([cohort.ids[i] for i in te]))
            f1s.append(scores(y[te], proba, len(classes))["macro_f1"])
            pred[te] = proba.argmax(axis=1)
        if np.mean(f1s) > best_f1 + 1e-9:
            best, best_f1, best_pred = p, float(np.mean(f1s)), pred
    if recall is not None:
        recall.update(class_recall(y, best_pred, classes))
    return best, best_f1


def class_recall(y: np.ndarray, pred: np.ndarray, classes) -> dict:
    """{class: the share of its patients predicted as it (recall), None for a class no patient has}."""
    return {str(c): (float(np.mean(pred[y == k] == k)) if (y == k).any() else None) for k, c in enumerate(classes)}


def pick(inner: dict) -> Optional[str]:
    """The model with the best inner macro-F1 (the first one on a tie); None without scores."""
    scored = [(v, k) for k, v in inner.items() if v is not None]
    if not scored:
        return None
    best = max(v for v, _ in scored)
    return next(k for v, k in scored if v >= best - 1e-9)


def select_model(cohort: Cohort, classes, models: dict, inner_folds: int = 3, seed: int = 0,
                 progress=None) -> dict:
    """The rule ``stage train`` locks a model by (the same as inside each outer fold of the CV):
    per candidate the best grid point by inner CV, then the candidate with the best inner macro-F1.

    Returns {"selected": name or None, "params": {name: params}, "inner_macro_f1": {name: score},
    "inner_recall": {name: {class: recall} or {} when no inner CV ran}}."""
    params, inner, recall = {}, {}, {}
    for name, (kind, config, grid) in models.items():
        recall[name] = {}
        params[name], inner[name] = select_params(kind, cohort, classes, grid, config, inner_folds, seed,
                                                  need_score=len(models) > 1, progress=SubProgress(progress, name),
                                                  recall=recall[name])
        if progress is not None:
            progress.update(1, f"{name}: inner macro-F1 "
                               f"{'n/a' if inner[name] is None else format(inner[name], '.3f')}")
    return {"selected": pick(inner) if len(models) > 1 else next(iter(models)), "params": params,
            "inner_macro_f1": inner, "inner_recall": recall}


@_fold_levels_quiet
def cross_validate(cohort: Cohort, models: dict, folds: int = 5, inner_folds: int = 3, seed: int = 0,
                   progress=None, on_fold: Optional[Callable] = None, select: tuple = (),
                   scored: Optional[dict] = None) -> dict:
    """``models``: name -> (kind "fusion" or a baseline kind, FusionConfig, grid or None).
    ``select``: the names the nested model choice picks from (needs ``inner_folds`` >= 2); the
    result then has a ``selected`` entry whose fold scores are those of the chosen model.
    ``scored``: name -> a boolean per patient of ``cohort.ids``: that model is scored on those patients only (a
    single-modality network on the patients with its modality), the others' ``oof`` rows NaN.

    Returns {"classes", "folds", "models": {name: {"summary", "params", "inner_macro_f1", "oof", "n_scored"}}, "y",
    "fold_of" (each patient's outer test fold, 1-based)}.
    """
    classes = check_labels(cohort, folds)
    select = tuple(select) if inner_folds > 1 and len(select) > 1 else ()
    # the inner CV runs only where something is chosen (a grid of several points, a model choice): only then
    # must every outer training fold hold inner_folds patients of each class
    if select or any(len(grid_points(grid)) > 1 for _, _, grid in models.values()):
        check_inner_labels(cohort, classes, folds, inner_folds, seed)
    y = cohort.y(classes)
    splits = _split(y, folds, seed)
    result = {"classes": classes, "folds": folds, "inner_folds": inner_folds, "seed": seed, "models": {}}
    fold_scores: dict = {}
    for name, (kind, config, grid) in models.items():
        oof = np.zeros((len(y), len(classes)))
        mask = np.ones(len(y), dtype=bool) if (scored or {}).get(name) is None else np.asarray(scored[name], bool)
        fold_scores[name], chosen, inner = [], [], []
        for f, (tr, te) in enumerate(splits):
            train = cohort.subset([cohort.ids[i] for i in tr])
            test = cohort.subset([cohort.ids[i] for i in te])
            where = SubProgress(progress, f"{name} fold {f + 1}/{folds}")
            if inner_folds > 1:
                params, score = select_params(kind, train, classes, grid, config, inner_folds, seed,
                                              need_score=name in select, progress=where)
            else:
                params, score = grid_points(grid)[0], None
            model = _fit(make_model(kind, classes, params, config, seed), train,
                         where.sub("refit" + (f" {_grid_text(params)}" if params else "")))
            oof[te] = model.predict_proba(test)
            ts = te[mask[te]]                       # the fold's patients this model is scored on
            if len(ts):
                fold_scores[name].append(scores(y[ts], oof[ts], len(classes)))
            chosen.append(params)
            inner.append(score)
            if progress is not None:
                progress.update(1, f"{name} fold {f + 1}/{folds} macro-F1 "
                                   + (f"{fold_scores[name][-1]['macro_f1']:.2f}" if len(ts) else "n/a"))
            if on_fold is not None:
                on_fold(name, f, model)
        oof[~mask] = np.nan
        if progress is not None:     # ~1 s of a shared machine per model after its last fold (QA stage72)
            progress.update(0, f"{name}: bootstrap 95 % CI")
        result["models"][name] = {"summary": summarise(fold_scores[name], y[mask], oof[mask], len(classes), seed=seed),
                                  "params": chosen, "inner_macro_f1": inner, "oof": oof, "n_scored": int(mask.sum())}
    if select:
        oof = np.zeros((len(y), len(classes)))
        picked, sel_scores = [], []
        for f, (_, te) in enumerate(splits):
            name = pick({n: result["models"][n]["inner_macro_f1"][f] for n in select})
            if name is None:   # check_inner_labels makes this unreachable: never a choice that did not happen
                raise RuntimeError(f"outer fold {f + 1}: no inner-CV score to choose a model by")
            oof[te] = result["models"][name]["oof"][te]
            sel_scores.append(fold_scores[name][f])
            picked.append({"model": name, **result["models"][name]["params"][f]})
        if progress is not None:
            progress.update(0, f"{SELECTED}: bootstrap 95 % CI")
        result["models"][SELECTED] = {"summary": summarise(sel_scores, y, oof, len(classes), seed=seed),
                                      "params": picked, "inner_macro_f1": [None] * folds, "oof": oof, "n_scored": len(y)}
    result["y"] = y
    fold_of = np.zeros(len(y), dtype=int)
    for f, (_, te) in enumerate(splits):
        fold_of[te] = f + 1
    result["fold_of"] = fold_of          # each patient's outer test fold (1-based), the same for every model
    return result


def fit_selected(cohort: Cohort, classes, models: dict, inner_folds: int = 3, seed: int = 0,
                 progress=None) -> tuple:
    """``stage train``: choose by :func:`select_model` on the whole cohort (when ``inner_folds`` >= 2
    and there is more than one candidate), then fit every candidate with its chosen parameters.

    Returns (fitted {name: model}, selection record for the model card)."""
    compare = inner_folds > 1 and len(models) > 1
    if compare:
        sel = select_model(cohort, classes, models, inner_folds, seed, progress)
    else:
        sel = {"selected": "fusion" if "fusion" in models else next(iter(models)),
               "params": {n: grid_points(g)[0] for n, (_, _, g) in models.items()},
               "inner_macro_f1": {n: None for n in models}, "inner_recall": {n: {} for n in models}}
    fitted = {}
    for name, (kind, config, _) in models.items():
        fitted[name] = _fit(make_model(kind, classes, sel["params"][name], config, seed), cohort,
                            SubProgress(progress, f"{name} on all {len(cohort.ids)} patients"))
        if progress is not None:
            progress.update(1, f"{name} fitted on all {len(cohort.ids)} patients")
    record = {"selected": sel["selected"], "inner_folds": inner_folds if compare else None,
              "rule": (f"each model's hyper-parameters and then the model itself chosen by the best mean macro-F1 "
                       f"of a stratified {inner_folds}-fold CV on the training cohort (as inside each outer fold "
                       "of `lungai stage cv`); on a tie the simpler model") if compare else
                      "no comparison (--inner-folds 1 or no baselines): the fusion network is locked as given",
              "candidates": {n: {"params": sel["params"][n], "inner_macro_f1": sel["inner_macro_f1"][n],
                                 "inner_recall": sel["inner_recall"][n] or None} for n in models}}
    record["verdict"] = verdict(record)
    return fitted, record


def verdict(record: dict) -> str:
    """One sentence on what was locked and whether a plain baseline beat the fusion network."""
    from lungai.fusion.baseline import LABELS

    sel, cands = record["selected"], record["candidates"]
    if record.get("inner_folds") is None:
        return ("the fusion network is locked WITHOUT comparison with plain baselines "
                "(run `lungai stage cv` to see whether a baseline does better)")
    f1 = {n: c["inner_macro_f1"] for n, c in cands.items()}
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    if sel == "fusion":
        best_base = max((n for n in f1 if n != "fusion" and f1[n] is not None), key=lambda n: f1[n], default=None)
        return (f"the fusion network won the inner CV (macro-F1 {fmt(f1['fusion'])}"
                + (f" vs {fmt(f1[best_base])} for the best baseline, {LABELS.get(best_base, best_base)})"
                   if best_base else ")") + " and is locked as the selected model")
    return (f"a plain baseline beat the fusion network: {LABELS.get(sel, sel)} (inner CV macro-F1 {fmt(f1[sel])} "
            f"vs {fmt(f1.get('fusion'))} for the fusion) is locked as the selected model; `lungai stage predict` "
            "uses it (--use fusion for the fusion network)")
