"""Per-patient feature contributions (Shapley values) in log-odds of RP.

The pipeline's preprocessing (imputation, scaling, one-hot) and selection are applied first;
contributions are computed for the classifier on these model inputs against the **background**: the model inputs
of :data:`BACKGROUND_ROWS` training patients, one drawn at random (the training seed) from each of as many
equal-size strata of the training patients' predicted log-odds (:func:`background_rows`, saved in the model file)
- a small sample that stands for the training population.  A patient's value of column j is its Shapley value
against each background patient, averaged over them; they are summed back onto the original table columns (the
one-hot levels of a categorical column form one player).  Features dropped by the selection step contribute 0.
The contributions add up to the patient's log-odds minus the background's mean log-odds
(:func:`baseline_log_odds`); ``baseline_risk`` (:func:`baseline_risk`) is the risk at that mean log-odds, written
next to the contributions: "raises the risk" means "above the baseline risk", which lies near the training
patients' mean predicted risk (a little below it: a mean of log-odds, not of risks).  (Before: the baseline was
one patient, the training mean of every model input - for a random forest a near-impossible patient: risk 0.018
against a mean predicted risk of 0.302 of the training patients of an illustrative cohort, so a patient at
0.17 had only "raises the risk" contributions.)  A model file of an older lungai holds that one patient (a 1-D
baseline): it is used as a background of one row (:func:`old_baseline_note` says so for a random forest).

* Logistic regression: exact.  For a linear model in log-odds, the Shapley value of input j against the
  background is ``coef_j * (z_j - mean of the background's z_j)``.
* Random forest, on logit(predict_proba): exact when the model has at most :data:`EXACT_MAX_PLAYERS` players
  (original columns reaching the classifier): the Shapley formula over all 2^players coalitions, each coalition's
  value the mean over the background rows, one forest call per patient (:func:`exact_group_shapley`); with more
  players, Shapley value sampling (captum ``ShapleyValueSampling``, :data:`N_PERMUTATIONS` permutations of the
  original columns via ``feature_mask`` in all, shared equally by the background rows), seeded so results repeat.
  Either way they add up to logit(risk) - the background's mean log-odds.  (Before: 25 sampled permutations for
  every model - a patient's values were off by up to 0.19 log-odds on a 10-player model and 0.36 on a 36-player
  one, whose top feature changed with ``--seed`` for about half of the patients.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

_CLIP = 1e-3
EXACT_MAX_PLAYERS = 10   # up to this many players (original columns): exact Shapley values (2^players forest inputs)
N_PERMUTATIONS = 200     # more players: sampled permutations in all (25 left errors of up to 0.36 log-odds, 36 players)
BACKGROUND_ROWS = 20     # training patients in the background (one per stratum of their predicted log-odds)


def input_origin(pipe, columns: list[str]) -> np.ndarray:
    """For every classifier input (after selection), the index of its original column."""
    pre = pipe.named_steps["pre"]
    origin = []
    for name, trans, cols in pre.transformers_:
        if name == "num":
            origin += [columns.index(c) for c in cols]
        elif name == "cat":
            cats = trans.named_steps["onehot"].categories_
            for c, levels in zip(cols, cats):
                origin += [columns.index(c)] * len(levels)
    return np.asarray(origin)[pipe.named_steps["select"].get_support()]


def model_inputs(pipe, X: pd.DataFrame) -> np.ndarray:
    """The classifier's inputs for ``X`` (preprocessed and selected)."""
    return np.asarray(pipe.named_steps["select"].transform(pipe.named_steps["pre"].transform(X)), float)


def _logit_risk(clf, z: np.ndarray) -> np.ndarray:
    """The log-odds the contributions explain, of the classifier's inputs ``z``: a linear model's own
    (``decision_function``), else logit(predict_proba), the risk clipped to [_CLIP, 1 - _CLIP]."""
    z = np.asarray(z, float)
    if hasattr(clf, "coef_"):
        return np.asarray(clf.decision_function(z), float)
    p = np.clip(clf.predict_proba(z)[:, 1], _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


def background_rows(pipe, X: pd.DataFrame, seed: int = 0, n: int = BACKGROUND_ROWS) -> np.ndarray:
    """The explanation's background (rows x model inputs; saved in the model file): the model inputs of ``n``
    training patients (rows of ``X``, in their order), one drawn at random (``seed``) from each of ``n`` strata of
    equal size of their predicted log-odds, so the background's mean log-odds is close to the training patients'
    (a plain random sample of 20 or 50 patients missed it by up to 0.06 in risk); every patient when there are no
    more than ``n``."""
    Z = model_inputs(pipe, X)
    if len(Z) <= n:
        return Z
    order = np.argsort(_logit_risk(pipe.named_steps["clf"], Z), kind="stable")
    rng = np.random.default_rng(seed)
    chosen = [int(rng.choice(stratum)) for stratum in np.array_split(order, n)]
    return Z[np.sort(chosen)]


def as_background(baseline) -> np.ndarray:
    """The model file's ``baseline`` as background rows: a 2-D array as it is, an older file's one reference patient
    (1-D: the training mean of every model input) as one row."""
    return np.atleast_2d(np.asarray(baseline, float))


def old_baseline(pipe, baseline) -> bool:
    """Whether ``baseline`` is an older model file's one reference patient (the training mean of every model input)
    for a model it misleads: a random forest (for a logistic regression the training mean's log-odds is the training
    patients' mean log-odds - the same baseline)."""
    return np.ndim(baseline) == 1 and not hasattr(pipe.named_steps["clf"], "coef_")


def old_baseline_note(path, base_risk: float) -> str:
    """What ``rp predict`` says of an older random-forest model file (:func:`old_baseline`), with the fix."""
    return (f"the model file {path} is of an older lungai: its contributions are measured against one reference "
            f"patient, the training mean of every model input (risk {base_risk:.3f}), which for a random forest can "
            "lie far from the training patients' risks (then most contributions read as 'raises the risk', or most "
            "as 'lowers it', whatever the patient's risk) - retrain "
            "the model with `lungai rp train` (the same table and options) for contributions measured against the "
            "training patients")


def _logit_forward(clf):
    def forward(z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(_logit_risk(clf, z.detach().numpy()))
    return forward


def exact_group_shapley(f, Z: np.ndarray, baseline: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Exact Shapley values (rows of ``Z`` x players) of ``f`` (a function of an array of inputs, one value per row)
    against ``baseline`` (one row, or background rows): player ``g`` is the inputs with ``groups == g`` (0 .. n-1),
    taken from the patient in a coalition and from the baseline row outside it; v(S) is the mean of ``f`` over the
    baseline rows; phi_g = sum over coalitions S without g of |S|! (n - |S| - 1)! / n! (v(S + g) - v(S)).
    2^n x (baseline rows) evaluations per row of ``Z``, in one call of ``f``."""
    from math import factorial  # noqa: PLC0415

    n = int(groups.max()) + 1 if groups.size else 0
    coalitions = np.arange(2 ** n)
    members = ((coalitions[:, None] >> np.arange(n)) & 1).astype(bool)          # coalition x player
    size = members.sum(axis=1)
    weight = np.array([factorial(k) * factorial(max(n - k - 1, 0)) / factorial(n) for k in range(n + 1)])[size]
    base = as_background(baseline)
    out = np.zeros((len(Z), n))
    for r in range(len(Z)):
        rows = np.where(members[:, groups][:, None, :], Z[r][None, None, :], base[None, :, :])
        value = np.asarray(f(rows.reshape(-1, base.shape[1])), float).reshape(len(coalitions), len(base)).mean(axis=1)
        for g in range(n):
            without = coalitions[~members[:, g]]
            out[r, g] = np.sum(weight[without] * (value[without | (1 << g)] - value[without]))
    return out


def baseline_log_odds(pipe, baseline) -> float:
    """The log-odds the contributions are measured from: the mean over the background rows (``baseline``, the model
    file's) of the log-odds the contributions explain (:func:`_logit_risk`); contributions add up to the patient's
    log-odds minus it."""
    return float(np.mean(_logit_risk(pipe.named_steps["clf"], as_background(baseline))))


def baseline_risk(pipe, baseline) -> float:
    """The risk at :func:`baseline_log_odds` - the baseline risk the contributions are measured against ("+": raises
    the risk above it): near the training patients' mean predicted risk (a mean of log-odds, so a little below)."""
    return float(1 / (1 + np.exp(-baseline_log_odds(pipe, baseline))))


def shapley_values(pipe, X: pd.DataFrame, baseline: np.ndarray, seed: int = 0,
                   n_samples: int = N_PERMUTATIONS) -> pd.DataFrame:
    """Contributions (log-odds) of each original column of ``X`` for each row against the background rows
    ``baseline`` (the model file's; an older file's 1-D reference patient: one row) - a random forest's exact up to
    :data:`EXACT_MAX_PLAYERS` players, else ``n_samples`` sampled permutations in all, as many against each
    background row.  A row's values do not depend on the other rows of ``X``."""
    baseline = as_background(baseline)
    columns = list(X.columns)
    origin = input_origin(pipe, columns)
    Z = model_inputs(pipe, X)
    clf = pipe.named_steps["clf"]
    out = np.zeros((len(X), len(columns)))
    if hasattr(clf, "coef_"):
        phi = clf.coef_[0][None, :] * (Z - baseline.mean(axis=0)[None, :])
        for j, col in enumerate(origin):
            out[:, col] += phi[:, j]
    elif Z.shape[1] > 0 and len(np.unique(origin)) <= EXACT_MAX_PLAYERS:
        groups = np.unique(origin, return_inverse=True)[1]
        phi = exact_group_shapley(lambda z: _logit_risk(clf, z), Z, baseline, groups)
        for g, col in enumerate(np.unique(origin)):
            out[:, col] = phi[:, g]
    elif Z.shape[1] > 0:
        from captum.attr import ShapleyValueSampling  # noqa: PLC0415

        groups = np.unique(origin, return_inverse=True)[1]
        per_row = max(1, -(-int(n_samples) // len(baseline)))   # the permutations, shared equally by the rows
        sampler = ShapleyValueSampling(_logit_forward(clf))
        attr = np.zeros_like(Z)
        with torch.random.fork_rng(devices=[]):   # seeded here, the caller's torch random stream left as it was
            torch.manual_seed(seed)
            for row in baseline:   # each against one background row (its values add up to f(z) - f(row)), averaged
                attr += sampler.attribute(
                    torch.from_numpy(Z), baselines=torch.from_numpy(row[None, :]),
                    feature_mask=torch.from_numpy(groups[None, :]), n_samples=per_row,
                    perturbations_per_eval=int(groups.max()) + 1).numpy()
        attr /= len(baseline)
        first = {g: j for j, g in reversed(list(enumerate(groups)))}  # one value per group
        for g, j in first.items():
            out[:, origin[j]] = attr[:, j]
    return pd.DataFrame(out, columns=columns, index=X.index)


def top_contributions(contrib: pd.DataFrame, k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``k`` columns with the largest |contribution| of each row, largest first."""
    result = []
    for _, row in contrib.iterrows():
        order = np.argsort(-np.abs(row.to_numpy()), kind="stable")[:k]
        result.append([(contrib.columns[i], float(row.iloc[i])) for i in order if row.iloc[i] != 0])
    return result
