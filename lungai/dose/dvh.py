"""Dose-volume metrics: mean dose, Vx (% volume receiving >= x Gy), Dx (dose to the hottest x %)."""

from __future__ import annotations

import numpy as np


def mean_dose(doses: np.ndarray) -> float:
    return float(np.mean(doses))


def v_percent(doses: np.ndarray, threshold_gy: float) -> float:
    """Percentage of the volume that receives at least ``threshold_gy``."""
    return 100.0 * float(np.count_nonzero(doses >= threshold_gy)) / doses.size


def d_gy(doses: np.ndarray, percent: float) -> float:
    """Minimum dose received by the hottest ``percent`` % of the volume (D2 near-max, D98 near-min)."""
    return float(np.percentile(doses, 100.0 - percent))


def cumulative_dvh(doses: np.ndarray, bin_gy: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(dose levels, % volume receiving >= each level)."""
    levels = np.arange(0.0, float(doses.max()) + bin_gy, bin_gy)
    sorted_d = np.sort(doses)
    at_least = doses.size - np.searchsorted(sorted_d, levels, side="left")
    return levels, 100.0 * at_least / doses.size
