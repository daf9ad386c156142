"""Performance of risk predictions: discrimination, calibration, classification.

* AUC with a 95 % CI by DeLong's method (fast, exact variance of the Mann-Whitney AUC);
* Brier score (mean squared error of the risk) with a stratified-bootstrap 95 % CI;
* calibration slope (logistic regression of the outcome on logit(risk); 1 = ideal,
  < 1 = predictions too extreme) and calibration intercept ("calibration in the large":
  intercept with logit(risk) as an offset; 0 = ideal, > 0 = risks too low on average);
* sensitivity and specificity at a chosen risk threshold.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x)


def delong_auc_ci(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """AUC and its DeLong confidence interval (clipped to [0, 1])."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n           # structural components of the positives
    v01 = 1.0 - (tz[m:] - ty) / m     # ... and of the negatives
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * np.sqrt(max(var, 0.0))
    return float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half))


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of logistic recalibration of ``p`` against ``y``."""
    y, lp = np.asarray(y, float), _logit(p)
    slope = float(LogisticRegression(C=np.inf, max_iter=1000).fit(lp[:, None], y).coef_[0, 0])
    a = 0.0  # intercept with offset lp: Newton-Raphson on one parameter
    for _ in range(50):
        q = 1.0 / (1.0 + np.exp(-(a + lp)))
        step = (y - q).sum() / max((q * (1 - q)).sum(), 1e-12)
        a += step
        if abs(step) < 1e-10:
            break
    return slope, float(a)


def sens_spec(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when risk >= ``threshold`` is called positive."""
    y, call = np.asarray(y).astype(bool), np.asarray(p) >= threshold
    sens = float((call & y).sum() / max(y.sum(), 1))
    spec = float((~call & ~y).sum() / max((~y).sum(), 1))
    return sens, spec


def brier_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 500, seed: int = 0) -> tuple[float, float, float]:
    """Brier score with a stratified-bootstrap 95 % CI."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    scores = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        scores[b] = np.mean((p[idx] - y[idx]) ** 2)
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return float(brier_score_loss(y, p)), float(lo), float(hi)


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, seed: int = 0) -> dict:
    """All metrics of one set of predictions, as a JSON-ready dict."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    if y.min() == y.max():
        from lungai.errors import InputError  # noqa: PLC0415

        raise InputError("the outcome has only one class, so AUC and calibration are undefined",
                         "validate on a table with both events (1) and non-events (0)")
    auc, lo, hi = delong_auc_ci(y, p)
    brier, blo, bhi = brier_ci(y, p, seed=seed)
    slope, intercept = calibration(y, p)
    sens, spec = sens_spec(y, p, threshold)
    return {"n": int(len(y)), "events": int(y.sum()), "auc": auc, "auc_ci95": [lo, hi],
            "brier": brier, "brier_ci95": [blo, bhi], "calibration_slope": slope,
            "calibration_intercept": intercept, "threshold": float(threshold),
            "sensitivity": sens, "specificity": spec}
