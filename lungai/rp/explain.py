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
* Random forest: Shapley value sampling (captum ``ShapleyValueSampling``, permutations of the
  original columns via ``feature_mask``) of logit(predict_proba), seeded so results repeat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

_CLIP = 1e-3


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


def _logit_forward(clf):
    def forward(z: torch.Tensor) -> torch.Tensor:
        p = clf.predict_proba(z.detach().numpy())[:, 1]
        p = np.clip(p, _CLIP, 1 - _CLIP)
        return torch.from_numpy(np.log(p / (1 - p)))
    return forward


def baseline_risk(pipe, baseline: np.ndarray) -> float:
    """The risk of the reference patient the contributions are measured against (the training mean of every
    model input): contributions add up to logit(risk) - logit(baseline risk)."""
    return float(pipe.named_steps["clf"].predict_proba(np.asarray(baseline, float)[None, :])[0, 1])


def shapley_values(pipe, X: pd.DataFrame, baseline: np.ndarray, seed: int = 0, n_samples: int = 25) -> pd.DataFrame:
    """Contributions (log-odds) of each original column of ``X`` for each row."""
    columns = list(X.columns)
    origin = input_origin(pipe, columns)
    Z = model_inputs(pipe, X)
    clf = pipe.named_steps["clf"]
    out = np.zeros((len(X), len(columns)))
    if hasattr(clf, "coef_"):
        phi = clf.coef_[0][None, :] * (Z - baseline[None, :])
        for j, col in enumerate(origin):
            out[:, col] += phi[:, j]
    elif Z.shape[1] > 0:
        from captum.attr import ShapleyValueSampling  # noqa: PLC0415

        torch.manual_seed(seed)
        groups = np.unique(origin, return_inverse=True)[1]
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
