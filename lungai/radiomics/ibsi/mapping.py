"""The IBSI tag <-> pyradiomics feature mapping shipped in ``mapping.csv``.

Columns: ``ibsi_tag``, ``pyradiomics_feature`` (``<class>_<Feature>``, empty when pyradiomics has no
such feature), ``offset`` (added to the pyradiomics value: -3 for kurtosis, -1 for asphericity),
``notes``, and the IBSI-1 permanent identifier of the tag's feature with its IBSI name (``ibsi_code``
``RNU0``, ``ibsi_name`` "Volume": the same for every aggregation of a texture feature; the code a DICOM
SR names the feature by, scheme ``IBSI``: :func:`ibsi_code`).  The 487 rows are every IBSI-1 feature tag.  A tag's suffix says how texture
matrices are aggregated: ``_3D_avg`` / ``_2_5D_avg`` (per direction, averaged: pyradiomics
default), ``_3D_comb`` / ``_2_5D_comb`` (merged: ``weightingNorm='no_weighting'``), ``_3D`` /
``_2_5D`` (no directions; ``2_5D`` = pyradiomics ``force2D``).  ``_2D`` tags (per-slice averaging)
are not in pyradiomics: :mod:`lungai.radiomics.features.texture` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

MAPPING_CSV = Path(__file__).with_name("mapping.csv")
# IBSI-1 tags without a reference value (MIRP marks them not IBSI-compliant); not computed.
NO_REFERENCE = ("morph_vol_dens_ombb", "morph_area_dens_ombb", "morph_vol_dens_mvee", "morph_area_dens_mvee")
# IBSI-1 tags computed as IBSI-1 defines them, but with no reference value (a blank row of every IBSI-1 reference
# table, A-E and the digital phantom): no ``ibsi-check`` verifies them, unlike every other tag the ``ibsi-*`` presets
# write.  The output says which (``<output>.settings.json``'s ``ibsi_reference``, a ``note:``, ibsi-check's rows with
# status :data:`lungai.radiomics.ibsi.compare.NO_REFERENCE_STATUS`; QA radiomics72: ivh_auc was written among them
# without a word).
UNVERIFIED = ("ivh_auc",)


@dataclass(frozen=True)
class TagTarget:
    """Where the value for an IBSI tag comes from in the pyradiomics runs of a configuration."""

    feature: str          # "glcm_JointAverage"
    run: str              # "shape", "first" (firstorder), "3D_avg", "3D_comb", "2_5D_avg" or "2_5D_comb"
    offset: float


@lru_cache(maxsize=1)
def load_mapping() -> pd.DataFrame:
    """The shipped mapping (cached: do not modify the returned frame)."""
    return pd.read_csv(MAPPING_CSV, keep_default_na=False, dtype={"offset": float})


@lru_cache(maxsize=1)
def _indexed() -> pd.DataFrame:
    return load_mapping().set_index("ibsi_tag")


def dimension(tag: str) -> str | None:
    """'2D', '2_5D', '3D' or None (no suffix: morphology, statistics, histogram)."""
    for dim in ("2_5D", "2D", "3D"):
        if tag.endswith(f"_{dim}") or f"_{dim}_" in tag:
            return dim
    return None


def tags_for(dims) -> list[str]:
    """Every IBSI-1 feature tag of a configuration with texture dimensions ``dims``."""
    return [t for t in load_mapping().ibsi_tag if t not in NO_REFERENCE and dimension(t) in (None, *dims)]


@lru_cache(maxsize=None)
def target(tag: str) -> tuple[TagTarget | None, str]:
    """(target, reason): target None when pyradiomics does not compute the tag."""
    m = _indexed()
    if tag not in m.index:
        return None, "diagnostic or unknown tag"
    row = m.loc[tag]
    if not row["pyradiomics_feature"]:
        return None, row["notes"] or "not implemented in pyradiomics"
    dim = dimension(tag)
    if dim == "2D":
        return None, "2D (per-slice averaged) aggregation: pyradiomics has no per-slice feature averaging"
    feature = row["pyradiomics_feature"]
    if feature.startswith("shape_"):
        run = "shape"
    elif feature.startswith("firstorder_"):
        run = "first"
    else:
        run = f"{dim}_{'comb' if tag.endswith('_comb') else 'avg'}"
    return TagTarget(feature, run, float(row["offset"])), ""


@lru_cache(maxsize=1)
def _codes() -> dict:
    """{IBSI tag or pyradiomics ``<class>_<Feature>``: (IBSI code, IBSI name)}.  A pyradiomics feature gets the code
    only where its value is the IBSI feature's (offset 0: not pyradiomics' Kurtosis, 3 more than IBSI's); of two
    IBSI features with its value (``DifferenceAverage``: difference average and dissimilarity), the one that the
    notes do not call a deprecated alias."""
    m = load_mapping()
    out = {tag: (code, name) for tag, code, name in zip(m.ibsi_tag, m.ibsi_code, m.ibsi_name) if code}
    rows = m[(m.pyradiomics_feature != "") & (m.offset == 0) & (m.ibsi_code != "")]
    rows = rows.assign(alias=rows.notes.str.contains("deprecated")).sort_values("alias", kind="stable")
    for feature, code, name in zip(rows.pyradiomics_feature, rows.ibsi_code, rows.ibsi_name):
        out.setdefault(feature, (code, name))
    return out


def ibsi_code(image_type: str, feature_class: str, feature: str) -> tuple[str, str] | None:
    """(IBSI code, IBSI name) of a feature of ``lungai radiomics``' long table: an IBSI tag (``--params ibsi-*``:
    class ``cm``, feature ``joint_avg_3D_avg``) or a pyradiomics feature (``glcm``, ``JointAverage``) of the original
    image; None for a filtered image (LoG, wavelet: the IBSI-1 code names the feature of the image it was computed
    on, which a reader could not tell apart) or a feature IBSI-1 does not define (pyradiomics' TotalEnergy ...)."""
    if str(image_type).lower() != "original":
        return None
    return _codes().get(f"{feature_class}_{feature}")
