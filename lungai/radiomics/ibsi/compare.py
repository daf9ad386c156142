"""Compare computed values with the IBSI reference: rounded to 3 significant digits, within tolerance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # lungai.radiomics.ibsi imports this module: pandas comes with the table
    import pandas as pd


# the steps of :func:`lungai.radiomics.ibsi.run.run_check` said on its ``progress`` (``lungai ibsi-check``'s bar), each
# as it starts; the caller counts the last, the comparison, with its result (here, not in run.py: the command sizes its
# bar before it imports pandas).  QA rad68: ibsi-check was one step, its bar on "0/1" for 4.4 s (an idle machine) to
# 9 s (load 8) on the IBSI-1 CT phantom with configuration E, 2.9 s on the digital phantom
CHECK_READING = "reading the image, the mask and the reference"
CHECK_FEATURES = "computing the features"
CHECK_FEATURES_SETTINGS_ONLY = "computing the features with pyradiomics' settings only"
CHECK_COMPARING = "comparing with the reference"
CHECK_STEPS = 4     # read, interpolated and re-segmented, features computed, compared (the caller's update)
# the status of a row of the check's table whose tag IBSI-1 gives no reference value for (ivh_auc:
# :data:`lungai.radiomics.ibsi.mapping.UNVERIFIED`): computed and listed, not counted among the reference features
NO_REFERENCE_STATUS = "no reference value"


def check_interpolating(config: str) -> str:
    """The message of the IBSI interpolation and re-segmentation step of configuration ``config`` (A-E, DIGITAL)."""
    return ("interpolating to the digital phantom's grid and re-segmenting" if config not in tuple("ABCDE") else
            f"interpolating to configuration {config}'s grid and re-segmenting")


def unverified_note(unverified, verified: int, sidecar: str | None = None) -> str | None:
    """The ``note:`` of an ``ibsi-*`` preset's run whose features include ``unverified`` ones, which IBSI-1 gives no
    reference value for (``ivh_auc``: :data:`lungai.radiomics.ibsi.mapping.UNVERIFIED`), besides ``verified`` with one
    (per segment), else None: which, that ``ibsi-check`` cannot verify them, and what to do where only verified values
    may go (``sidecar``: the name of the settings file that records them, ``ibsi_reference``)."""
    unverified = list(unverified)
    if not unverified:
        return None
    one = len(unverified) == 1
    where = f" ({sidecar}: ibsi_reference)" if sidecar else ""
    return (f"{', '.join(unverified)} {'has' if one else 'have'} no IBSI-1 reference value: computed as IBSI-1 defines "
            f"{'it' if one else 'them'}, but not verified by lungai ibsi-check, unlike the other {verified} features "
            f"of each segment{where}; leave {'it' if one else 'them'} out where only IBSI-1-verified values may be "
            "reported")


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
    table: pd.DataFrame   # tag, source, pyradiomics_feature, value, reference, tolerance, status, note
    warnings: list[str] = field(default_factory=list)   # e.g. the reference is another configuration's

    @property
    def checked(self) -> pd.DataFrame:
        """The rows of the reference features (those with a reference value: not :data:`NO_REFERENCE_STATUS`)."""
        return self.table[self.table.status != NO_REFERENCE_STATUS]

    @property
    def unverified(self) -> list[str]:
        """The tags computed that IBSI-1 gives no reference value for (listed in the table, not checked)."""
        return list(self.table.tag[self.table.status == NO_REFERENCE_STATUS])

    @property
    def computed(self) -> int:
        return int((self.checked.status != "not computed").sum())

    @property
    def matched(self) -> int:
        return int((self.checked.status == "within tolerance").sum())

    @property
    def total(self) -> int:
        return len(self.checked)

    @property
    def passed(self) -> bool:
        """Every reference feature within tolerance and no warning (``lungai ibsi-check`` exits 0)."""
        return 0 < self.matched == self.total and not self.warnings

    def summary(self) -> str:
        checked = self.checked
        n_py = int((checked.source == "pyradiomics").sum())
        text = (f"IBSI-1 configuration {self.config}: {self.matched} of {self.total} reference features within "
                f"tolerance ({100.0 * self.matched / max(self.total, 1):.1f} %; {n_py} from pyradiomics, "
                f"{self.computed - n_py} from lungai, {self.total - self.computed} not computed)")
        if self.unverified:
            text += f"; also computed, with no IBSI-1 reference value (not verified): {', '.join(self.unverified)}"
        for w in self.warnings:
            text += f"\nwarning: {w}"
        bad = checked[checked.status != "within tolerance"]
        for r in bad.head(20).itertuples(index=False):
            text += (f"\n  {r.status}: {r.tag} = {r.value:.4g}, reference {r.reference:.4g} +- {r.tolerance:g}"
                     f" ({r.source or r.note})")
        return text
