"""The IBSI tag <-> pyradiomics feature mapping shipped in ``mapping.csv``.

Columns: ``ibsi_tag``, ``pyradiomics_feature`` (``<class>_<Feature>``, empty when pyradiomics has no
such feature), ``offset`` (added to the pyradiomics value: -3 for kurtosis, -1 for asphericity)
and ``notes``.  A tag's suffix says how texture matrices are aggregated: ``_3D_avg`` /
``_2_5D_avg`` (per direction, averaged: pyradiomics default), ``_3D_comb`` / ``_2_5D_comb``
(merged: ``weightingNorm='no_weighting'``), ``_3D`` / ``_2_5D`` (no directions).  ``_2D`` tags
(per-slice averaging) cannot be produced by pyradiomics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

MAPPING_CSV = Path(__file__).with_name("mapping.csv")


@dataclass(frozen=True)
class TagTarget:
    """Where the value for an IBSI tag comes from in the pyradiomics runs of a configuration."""

    feature: str          # "glcm_JointAverage"
    run: str              # "avg", "comb" or "shape"
    offset: float


@lru_cache(maxsize=1)
def load_mapping() -> pd.DataFrame:
    return pd.read_csv(MAPPING_CSV, keep_default_na=False, dtype={"offset": float})


def dimension(tag: str) -> str | None:
    """'2D', '2_5D', '3D' or None (no suffix: morphology, statistics, histogram)."""
    for dim in ("2_5D", "2D", "3D"):
        if tag.endswith(f"_{dim}") or f"_{dim}_" in tag:
            return dim
    return None


def target(tag: str, force2d: bool) -> tuple[TagTarget | None, str]:
    """(target, reason): target None when the tag cannot be mapped for this configuration."""
    m = load_mapping().set_index("ibsi_tag")
    if tag not in m.index:
        return None, "diagnostic or unknown tag"
    row = m.loc[tag]
    if not row["pyradiomics_feature"]:
        return None, row["notes"] or "not implemented in pyradiomics"
    dim = dimension(tag)
    if dim == "2D":
        return None, "2D (per-slice averaged) aggregation: pyradiomics has no per-slice feature averaging"
    if dim is not None and (dim == "2_5D") != force2d:
        return None, f"{dim} tag not computed in a {'2D' if force2d else '3D'} configuration"
    feature = row["pyradiomics_feature"]
    run = "shape" if feature.startswith("shape_") else "comb" if tag.endswith("_comb") else "avg"
    return TagTarget(feature, run, float(row["offset"])), ""
