"""Compare computed values with the IBSI reference: rounded to 3 significant digits, within tolerance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


def round_sig(x: float, digits: int = 3) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def within(value: float, reference: float, tolerance: float) -> bool:
    """IBSI-test convention (as in MIRP's test): the value rounded to 3 significant digits."""
    if value is None or not math.isfinite(value):
        return False
    slack = 1e-9 * max(1.0, abs(reference))
    return abs(value - reference) <= tolerance + slack or abs(round_sig(value) - reference) <= tolerance + slack


@dataclass
class Report:
    config: str
    table: pd.DataFrame   # tag, pyradiomics_feature, value, reference, tolerance, status, note

    @property
    def mapped(self) -> int:
        return int((self.table.status != "not mapped").sum())

    @property
    def matched(self) -> int:
        return int((self.table.status == "within tolerance").sum())

    def summary(self) -> str:
        n_ref = len(self.table)
        text = (f"IBSI-1 configuration {self.config}: {self.matched} of {self.mapped} mapped features within "
                f"tolerance ({n_ref - self.mapped} of {n_ref} reference features not mapped to pyradiomics)")
        bad = self.table[self.table.status == "outside tolerance"]
        for r in bad.head(10).itertuples(index=False):
            text += (f"\n  outside: {r.tag} ({r.pyradiomics_feature}) = {r.value:.4g}, "
                     f"reference {r.reference:.4g} +- {r.tolerance:g}")
        return text
