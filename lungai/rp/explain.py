"""Per-patient feature contributions (Shapley values) in log-odds of RP.

The pipeline's preprocessing (imputation, scaling, one-hot) and selection are applied first;
contributions are computed for the classifier on these model inputs against a baseline patient
(the training mean of every model input), then summed back onto the original table columns
(the one-hot levels of a categorical column form one player).  Features dropped by the
selection step contribute 0.

* Logistic regression: exact.  For a linear model in log-odds, the Shapley value of input j is
  ``coef_j * (z_j - baseline_j)``; they add up to logit(risk) - logit(baseline risk).
  ``baseline_risk`` (:func:`baseline_risk`) is that reference patient's risk: it is written next to the
  contributions, because "raises the risk" means "above the baseline risk", which for a random forest
  may lie far from the cohort's mean risk.
* Random forest, on logit(predict_proba): exact when the model has at most :data:`EXACT_MAX_PLAYERS` players
  (original columns reaching the classifier): the Shapley formula over all 2^players coalitions, one forest call per
  patient (:func:`exact_group_shapley`); with more players, Shapley value sampling (captum ``ShapleyValueSampling``,
  :data:`N_PERMUTATIONS` permutations of the original columns via ``feature_mask``), seeded so results repeat.
  Either way they add up to logit(risk) - logit(baseline risk).  (Before: 25 sampled permutations for every model -
  a patient's values were off by up to 0.19 log-odds on a 10-player model and 0.36 on a 36-player one, whose top
  feature changed with ``--seed`` for about half of the patients.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

_CLIP = 1e-3
EXACT_MAX_PLAYERS = 10   # up to this many players (original columns): exact Shapley values (2^players forest inputs)
N_PERMUTATIONS = 200     # more players: sampled permutations (25 left errors of up to 0.36 log-odds, 36 players)


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
    """logit(predict_proba) of the classifier's inputs ``z``, the risk clipped to [_CLIP, 1 - _CLIP]."""
    p = np.clip(clf.predict_proba(np.asarray(z, float))[:, 1], _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


def _logit_forward(clf):
    def forward(z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(_logit_risk(clf, z.detach().numpy()))
    return forward


def exact_group_shapley(f, Z: np.ndarray, baseline: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Exact Shapley values (rows of ``Z`` x players) of ``f`` (a function of an array of inputs, one value per row)
    against ``baseline``: player ``g`` is the inputs with ``groups == g`` (0 .. n-1), taken from the patient in a
    coalition and from the baseline outside it; phi_g = sum over coalitions S without g of
    |S|! (n - |S| - 1)! / n! (f(S + g) - f(S)).  2^n evaluations per row, in one call of ``f``."""
    from math import factorial  # noqa: PLC0415

    n = int(groups.max()) + 1 if groups.size else 0
    coalitions = np.arange(2 ** n)
    members = ((coalitions[:, None] >> np.arange(n)) & 1).astype(bool)          # coalition x player
    size = members.sum(axis=1)
    weight = np.array([factorial(k) * factorial(max(n - k - 1, 0)) / factorial(n) for k in range(n + 1)])[size]
    out = np.zeros((len(Z), n))
    for r in range(len(Z)):
        value = f(np.where(members[:, groups], Z[r][None, :], baseline[None, :]))
        for g in range(n):
            without = coalitions[~members[:, g]]
            out[r, g] = np.sum(weight[without] * (value[without | (1 << g)] - value[without]))
    return out


def baseline_risk(pipe, baseline: np.ndarray) -> float:
    """The risk of the reference patient the contributions are measured against (the training mean of every
    model input): contributions add up to logit(risk) - logit(baseline risk)."""
    return float(pipe.named_steps["clf"].predict_proba(np.asarray(baseline, float)[None, :])[0, 1])


def shapley_values(pipe, X: pd.DataFrame, baseline: np.ndarray, seed: int = 0,
                   n_samples: int = N_PERMUTATIONS) -> pd.DataFrame:
    """Contributions (log-odds) of each original column of ``X`` for each row (a random forest's: exact up to
    :data:`EXACT_MAX_PLAYERS` players, else ``n_samples`` sampled permutations)."""
    columns = list(X.columns)
    origin = input_origin(pipe, columns)
    Z = model_inputs(pipe, X)
    clf = pipe.named_steps["clf"]
    out = np.zeros((len(X), len(columns)))
    if hasattr(clf, "coef_"):
        phi = clf.coef_[0][None, :] * (Z - baseline[None, :])
        for j, col in enumerate(origin):
            out[:, col] += phi[:, j]
    elif Z.shape[1] > 0 and len(np.unique(origin)) <= EXACT_MAX_PLAYERS:
        groups = np.unique(origin, return_inverse=True)[1]
        phi = exact_group_shapley(lambda z: _logit_risk(clf, z), Z, np.asarray(baseline, float), groups)
        for g, col in enumerate(np.unique(origin)):
            out[:, col] = phi[:, g]
    elif Z.shape[1] > 0:
        from captum.attr import ShapleyValueSampling  # noqa: PLC0415

        groups = np.unique(origin, return_inverse=True)[1]
        with torch.random.fork_rng(devices=[]):   # seeded here, the caller's torch random stream left as it was
            torch.manual_seed(seed)
            attr = ShapleyValueSampling(_logit_forward(clf)).attribute(
                torch.from_numpy(Z), baselines=torch.from_numpy(baseline[None, :]),
                feature_mask=torch.from_numpy(groups[None, :]), n_samples=n_samples,
                perturbations_per_eval=int(groups.max()) + 1).numpy()
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
