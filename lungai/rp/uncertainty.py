"""Risk and its uncertainty interval per patient.

The locked pipeline gives the risk.  The interval is the 2.5-97.5 percentile range of the
risks predicted by the bootstrap ensemble (the same pipeline and hyper-parameters refitted on
stratified bootstrap resamples of the training cohort, stored in the model file).  It shows
how much the estimate depends on the particular training patients: wide intervals mean the
training data say little about patients like this one.
"""

from __future__ import annotations

import numpy as np

# what the interval is, in words: the model card's ``uncertainty`` ({n}: the number of bootstrap members; {outcome}:
# what the risk is the chance of), the header of ``rp predict`` and the comment of the DICOM SR's rp_risk_low /
# rp_risk_high (lungai.dicom.export.rp_comment; a light module, so dicom-export need not load the RP models'
# libraries to say it) - said by :func:`uncertainty_text`
UNCERTAINTY = ("95 % percentile interval of the risks predicted by {n} copies of the locked pipeline "
               "(same hyper-parameters) refitted on stratified bootstrap resamples of the training cohort: "
               "it reflects how much the model itself is uncertain because the cohort is finite, "
               "not the patient's chance of {outcome} (that is the risk).")
# the short endpoint of a model of a synthetic cohort (lungai.rp.predict.rp_endpoint; rp_prediction.csv's endpoint)
RP_ENDPOINT = "grade >= 2 radiation pneumonitis"


# the fewest bootstrap members a model is trained with, and what to give instead: with 0 or 1 the interval has no
# width ("0.37 (0.37-0.37)"), as if the risk were certain.  One rule for ``rp train --bootstrap``
# (lungai.cli.rp._bootstrap_count) and the Python API (lungai.rp.training.train_rp: :func:`check_bootstrap_count`)
MIN_BOOTSTRAP = 2
BOOTSTRAP_FIX = ("give at least 2 bootstrap models for the risk interval (default 30; 10 with --fast): with fewer "
                 "the interval has no width, as if the risk were certain")


# said (rp predict's console, its CSV's warnings, the HTML report) for a model without bootstrap members, whose risks
# have no interval (empty risk_low / risk_high): :func:`risk_with_interval`
NO_INTERVAL = ("no risk interval: the model was saved without bootstrap members (before `rp train` required "
               "--bootstrap >= 2), so risk_low and risk_high are left empty - retrain it with `lungai rp train "
               "--bootstrap 30` (or more) for the interval")


def has_interval(bundle: dict) -> bool:
    """Whether the model ``bundle`` has the bootstrap members its risk interval comes from."""
    return bool(bundle.get("bootstrap"))


def check_bootstrap_count(n_boot, option: str = "n_boot") -> None:
    """Refuse a bootstrap count that is not a whole number >= :data:`MIN_BOOTSTRAP` (None: the default, passes).
    QA predictfollow66: ``train_rp(..., n_boot=0)`` saved a model whose every risk interval had no width."""
    from lungai.errors import InputError

    if n_boot is None:
        return
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise InputError(f"{option} {n_boot!r} is not a whole number", BOOTSTRAP_FIX)
    if n_boot < MIN_BOOTSTRAP:
        raise InputError(f"{option} {n_boot} is below {MIN_BOOTSTRAP}", BOOTSTRAP_FIX)


def uncertainty_text(n="the", endpoint: str | None = None) -> str:
    """:data:`UNCERTAINTY` for a model of ``n`` bootstrap members whose risk is of ``endpoint`` (the short endpoint of
    :func:`lungai.rp.predict.rp_endpoint`, rp_prediction.csv's ``endpoint`` column): "not the patient's chance of RP"
    for grade >= 2 radiation pneumonitis (:data:`RP_ENDPOINT`), "... of the outcome" for any other (a model of
    ``rp train --outcome Recurrence``) or an endpoint not recorded - never RP said of another outcome (QA srhigh62)."""
    return UNCERTAINTY.format(n=n, outcome="RP" if str(endpoint or "").strip() == RP_ENDPOINT else "the outcome")


# a row's warning (rp predict's warnings column; the console marks the interval "widened") where the full model's risk
# lies outside the bootstrap members' central 95 % and the interval was widened to hold it (:func:`widened_rows`;
# QA rpfollow69: "risk 0.09 (0.09-0.28)" said nothing of it); {low}-{high}: the members' own range
WIDENED_INTERVAL = ("interval widened to hold the risk: the locked model's risk lies outside the bootstrap models' "
                    "95 % range ({low:.2f}-{high:.2f}), so one bound equals the risk - the risk is less settled than "
                    "the interval alone suggests; read it with that range, or retrain with more bootstrap models "
                    "(`lungai rp train --bootstrap 100`)")
WIDENED_MARK = "widened"   # after the interval on rp predict's console: "risk 0.09 (0.09-0.28 widened)"


def risk_with_interval(bundle: dict, X, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(risk, low, high) for each row of ``X``: the bootstrap members' central ``level`` percentiles, widened where
    needed to hold ``risk`` (the full model's), so the interval never excludes the risk it is shown with."""
    return risk_with_interval_and_members(bundle, X, level)[:3]


def risk_with_interval_and_members(bundle: dict, X, level: float = 0.95):
    """(risk, low, high, members_low, members_high): :func:`risk_with_interval` and the bootstrap members' own central
    ``level`` percentiles (NaN without members), for :func:`widened_rows`."""
    risk = bundle["pipeline"].predict_proba(X)[:, 1]
    members = bundle.get("bootstrap") or []
    if not members:     # a model saved before train_rp refused n_boot < 2: no interval (NaN), never a zero-width one
        nan = np.full_like(risk, np.nan)                                      # (QA stagefollow66; NO_INTERVAL says why)
        return risk, nan, nan.copy(), nan.copy(), nan.copy()
    boot = np.array([m.predict_proba(X)[:, 1] for m in members])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return risk, np.minimum(low, risk), np.maximum(high, risk), low, high


def widened_rows(risk, members_low, members_high) -> list[str]:
    """Per row, :data:`WIDENED_INTERVAL` (with the members' range) where ``risk`` lies outside the bootstrap members'
    range ``members_low``-``members_high`` (the interval was widened to hold it), else ""."""
    return [WIDENED_INTERVAL.format(low=lo, high=hi) if (r < lo or r > hi) else ""
            for r, lo, hi in zip(np.asarray(risk, float), np.asarray(members_low, float),
                                 np.asarray(members_high, float))]
