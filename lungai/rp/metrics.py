"""Performance of risk predictions: discrimination, calibration, classification.

* AUC with a 95 % CI by DeLong's method (fast, exact variance of the Mann-Whitney AUC);
* Brier score (mean squared error of the risk) with a bootstrap 95 % CI (patients resampled, events not fixed);
* calibration slope (logistic regression of the outcome on logit(risk); 1 = ideal,
  < 1 = predictions too extreme) and calibration intercept ("calibration in the large":
  intercept with logit(risk) as an offset; 0 = ideal, > 0 = risks too low on average);
* sensitivity and specificity at a chosen risk threshold.

With few events or non-events these figures are not interpretable: the DeLong CI is undefined with
fewer than 2 of either class and with a DeLong variance of 0 (complete separation, AUC 1 or 0) (``None``,
written as null / "CI undefined"), and :func:`evaluate` adds
``warnings`` below :data:`MIN_EVENTS` of either class and when the risks separate the classes
completely (the calibration slope's maximum-likelihood estimate is then infinite: the fitted number
is arbitrary, ``calibration_separable`` is true).  With constant risks (all equal, or all saturated at 0 or 1: their
logits clipped to one value) the slope and intercept are undefined: ``None`` (null, "undefined" in the reports), with
``calibration_note`` saying why; risks all equal never "separate" the classes.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from lungai.rp.card import ci_text  # noqa: F401  (light: the Slicer panel's model line says a card's CI)

_EPS = 1e-6
MIN_EVENTS = 10   # fewer events (or non-events) than this: AUC and calibration are not interpretable


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x)


def delong_auc_ci(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> tuple[float, float | None, float | None]:
    """AUC and its DeLong confidence interval (clipped to [0, 1]); the interval is (None, None) - undefined -
    with fewer than 2 events or non-events (the variance of one value does not exist) and when the DeLong variance
    is 0 (the risks separate the classes completely: AUC 1 or 0, where a zero-width interval would claim
    certainty that a small sample does not give)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        auc = float(np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])) if m and n else float("nan")
        return auc, None, None
    tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n           # structural components of the positives
    v01 = 1.0 - (tz[m:] - ty) / m     # ... and of the negatives
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    if not np.isfinite(var) or var <= 0:   # var 0: perfect separation (AUC 0 or 1) - no interval, not a 0-width one
        return float(auc), None, None
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * np.sqrt(max(var, 0.0))
    return float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half))


def separable(y: np.ndarray, p: np.ndarray) -> bool:
    """True when the risks separate events from non-events (completely or with ties at the border): the
    logistic recalibration then has no finite maximum-likelihood slope.  Risks all equal (all tied) separate
    nothing: False (their calibration is undefined, :func:`calibration`)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    pos, neg = p[y == 1], p[y == 0]
    if not (len(pos) and len(neg)) or p.min() == p.max():
        return False
    return bool(pos.min() >= neg.max() or pos.max() <= neg.min())


CONSTANT_NOTE = ("calibration undefined: the risks are saturated/constant (all equal, or all at 0 or 1 - their logits "
                 "clipped to one value), so no slope or intercept can be fitted")


def small_sample_warnings(y: np.ndarray, what: str = "AUC / calibration") -> list[str]:
    """A warning when the events or the non-events are fewer than :data:`MIN_EVENTS`."""
    y = np.asarray(y).astype(int)
    events, non_events = int(y.sum()), int(len(y) - y.sum())
    few = [f"{count} {name}{'s' if count != 1 else ''}" for count, name in ((events, "event"), (non_events, "non-event"))
           if count < MIN_EVENTS]
    if not few:
        return []
    return [f"{what} not interpretable with {' and '.join(few)} (events {events}, non-events {non_events} of "
            f"{len(y)} patients; at least {MIN_EVENTS} of each are needed, many more for calibration): the estimates "
            "are unstable"]


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None, str]:
    """(slope, intercept, note) of logistic recalibration of ``p`` against ``y``; (None, None, why) - undefined -
    when the risks are constant (all equal, or all saturated: logits clipped to one value) or a fit does not
    converge to a finite number.  ``note`` is '' when both are defined."""
    from scipy.optimize import brentq
    from scipy.special import expit

    y, lp = np.asarray(y, float), _logit(p)
    events = y.sum()
    if len(y) == 0 or np.ptp(lp) < 1e-9:
        return None, None, CONSTANT_NOTE
    if not 0 < events < len(y):
        return None, None, "calibration undefined: the outcome has only one class"
    slope = float(LogisticRegression(C=np.inf, max_iter=1000).fit(lp[:, None], y).coef_[0, 0])
    # intercept with offset lp: the root of sum(expit(a + lp)) = events, increasing in a - bracketed, so it converges
    # (Newton from 0 overshot to +-1e12 when all logits were clipped)
    def excess(a):
        return float(expit(a + lp).sum() - events)

    lo, hi = -1.0, 1.0
    while excess(lo) > 0 and lo > -1e3:
        lo *= 2
    while excess(hi) < 0 and hi < 1e3:
        hi *= 2
    if excess(lo) > 0 or excess(hi) < 0 or not np.isfinite(slope):
        return None, None, "calibration undefined: the recalibration fit did not converge (risks saturated/constant)"
    return slope, float(brentq(excess, lo, hi, xtol=1e-12)), ""


def fmt_calibration(value, spec: str = ".2f") -> str:
    """A calibration slope / intercept as text; 'undefined' for None (:func:`calibration`)."""
    return "undefined" if value is None else format(value, spec)


def sens_spec(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when risk >= ``threshold`` is called positive."""
    y, call = np.asarray(y).astype(bool), np.asarray(p) >= threshold
    sens = float((call & y).sum() / max(y.sum(), 1))
    spec = float((~call & ~y).sum() / max((~y).sum(), 1))
    return sens, spec


def brier_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 500, seed: int = 0) -> tuple[float, float, float]:
    """Brier score with a bootstrap 95 % CI (percentiles of ``n_boot`` resamples of the patients).

    The patients are resampled as a whole, not events and non-events separately: a cohort's number of events is
    random, and it is most of the Brier score's variance (an event's squared error is several times a non-event's).
    A stratified resampling kept it fixed and gave an interval about 3 times too narrow (QA: 211 patients, 43
    events: 0.145-0.163 against 0.124-0.185), which covered the expected Brier score in about 70-80 % of cohorts."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    rng = np.random.default_rng(seed)
    err = (p - y) ** 2
    scores = np.array([err[rng.integers(0, len(err), len(err))].mean() for _ in range(n_boot)])
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return float(brier_score_loss(y, p)), float(lo), float(hi)


# what to do about an AUC not above chance (:func:`chance_warning`): the risks of a model in training (nested CV), or
# of a locked model on a validation cohort
CHANCE_FIXES = {
    "training": "do not use its risks or HIGH RISK calls: train it again with more patients or more informative "
                "features (e.g. dose_ columns), or report it as not predictive",
    "validation": "the model does not discriminate in this cohort: do not use its risks or HIGH RISK calls for such "
                  "patients (another population, outcome definition or feature coding than at training?)",
}


def chance_warning(auc: float, lo, hi, fix: str = "training") -> str | None:
    """A warning when the AUC's 95 % CI does not lie above 0.5 - no evidence that the risks rank the patients with
    the outcome above those without better than chance (a CI lying below 0.5: they rank them below, worse than
    chance); None otherwise or when the CI is undefined (said by :func:`evaluate` already).  ``fix``: a key of
    :data:`CHANCE_FIXES`.  QA predict66: a model of nested-CV AUC 0.48 (0.34-0.61) was locked and applied, and a
    validation at AUC 0.32 (0.21-0.43) reported, without a word."""
    if lo is None or hi is None or lo > 0.5:
        return None
    what = ("lies below 0.5: the risks rank the patients with the outcome BELOW those without (worse than chance)"
            if hi < 0.5 else "does not exclude 0.5: no evidence that the risks rank the patients with the outcome "
                             "above those without better than chance")
    label = "nested-CV AUC" if fix == "training" else "AUC on this cohort"
    return f"{label} {auc:.2f} (95 % CI {lo:.2f}-{hi:.2f}) {what} - {CHANCE_FIXES[fix]}"


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, seed: int = 0, chance_fix: str = "training") -> dict:
    """All metrics of one set of predictions, as a JSON-ready dict.  ``chance_fix``: what its warning of an AUC not
    above chance says to do (:func:`chance_warning`: "training" for nested-CV risks, "validation" for a locked
    model's on another cohort)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    if y.min() == y.max():
        from lungai.errors import InputError  # noqa: PLC0415

        raise InputError("the outcome has only one class, so AUC and calibration are undefined",
                         "validate on a table with both events (1) and non-events (0)")
    auc, lo, hi = delong_auc_ci(y, p)
    brier, blo, bhi = brier_ci(y, p, seed=seed)
    slope, intercept, note = calibration(y, p)
    sens, spec = sens_spec(y, p, threshold)
    warnings = small_sample_warnings(y)
    if lo is None:
        few = min(int(y.sum()), int(len(y) - y.sum())) < 2
        warnings.append("the AUC's 95 % CI is undefined (" + ("DeLong needs at least 2 events and 2 non-events)"
                        if few else "the risks separate events from non-events completely, so DeLong's variance "
                        "is 0; a 0-width interval would be false certainty)"))
    chance = chance_warning(auc, lo, hi, chance_fix)
    if chance:
        warnings.append(chance)
    if note:
        warnings.append(note)
    split = separable(y, p)
    if split and slope is not None:
        # the fitted number not said (QA rpfollow70: "-279.07 (not estimable ...)" read as a figure)
        warnings.append("the risks separate events from non-events completely: the calibration slope has no "
                        "finite estimate (the fitted number, calibration_slope, is arbitrary: do not read it) - "
                        "validate on more patients, with events and non-events whose risks overlap")
    return {"n": int(len(y)), "events": int(y.sum()), "auc": auc, "auc_ci95": [lo, hi],
            "brier": brier, "brier_ci95": [blo, bhi], "calibration_slope": slope,
            "calibration_intercept": intercept, "calibration_separable": split,
            "calibration_note": note or None, "threshold": float(threshold),
            "sensitivity": sens, "specificity": spec, "warnings": warnings}


OE_PLAUSIBLE = (0.8, 1.25)   # observed / expected events inside this range: risks right on average, for the warning


def calibration_in_the_large(y: np.ndarray, p: np.ndarray, threshold_text: str = "") -> tuple[dict, str | None]:
    """(figures, warning) of how the risks fit a cohort's event rate on average: ``mean_predicted_risk``,
    ``observed_event_rate``, ``observed_expected_ratio`` (events / sum of the risks) and ``observed_expected_p`` (a
    two-sided z-test of the events against the sum of the risks, variance sum p(1-p)); the warning when the ratio
    lies outside :data:`OE_PLAUSIBLE` and p < 0.05 - a cohort with another outcome rate than the training cohort's
    (another centre, another grading or follow-up): the AUC says how the model ranks these patients, not that its
    risks are their chances (QA rpcard62: a validation table at 7.5 % events, the model trained at 29 %, printed
    only "intercept -1.53").  ``threshold_text``: the model's high-risk threshold and its rule, named in the
    warning (it was set at the training cohort's rate)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    observed, expected = float(y.sum()), float(p.sum())
    ratio = observed / expected if expected > 0 else None
    var = float((p * (1 - p)).sum())
    p_value = float(2 * stats.norm.sf(abs(observed - expected) / np.sqrt(var))) if var > 0 else None
    figures = {"mean_predicted_risk": float(p.mean()), "observed_event_rate": float(y.mean()),
               "observed_expected_ratio": ratio, "observed_expected_p": p_value}
    if ratio is None or p_value is None or p_value >= 0.05 or OE_PLAUSIBLE[0] <= ratio <= OE_PLAUSIBLE[1]:
        return figures, None
    high = ratio < 1
    p_text = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
    return figures, (
        f"the model's risks are too {'high' if high else 'low'} on average for this cohort: mean predicted risk "
        f"{100 * p.mean():.1f} %, observed event rate {100 * y.mean():.1f} % ({int(observed)} of {len(y)}; "
        f"observed/expected {ratio:.2f}, {p_text}) - its outcome rate differs from the training cohort's (another "
        "centre, grading or follow-up?). The AUC says how the model ranks these patients, not that its risks are "
        "their chances: do not read its risks" + (f" or its high-risk threshold {threshold_text}" if threshold_text
                                                   else "")
        + " as such here; recalibrate the model to this population first (at least its intercept) and validate again")
