"""Synthetic dose grids with a known dose-volume histogram (tests) or a plausible plan (demo).

:func:`radial_dose`: ``D(r) = d_max * max(0, 1 - r / R)`` around a centre.  Inside a sphere of radius
``R`` the distance r has density 3r^2/R^3, hence analytically (:func:`radial_dvh_expected`)
V(d) = (1 - d/d_max)^3, mean = d_max/4, and D_x = d_max * (1 - (x/100)^(1/3)).

:func:`treatment_dose`: a "synthetic treatment dose" for a phantom, a known function of the distance
to the tumour: the prescription inside the tumour plus a margin, then an exponential fall-off.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.io import copy_geometry


def _physical_points(reference: sitk.Image) -> np.ndarray:
    """LPS coordinates [z, y, x, 3] of every voxel centre."""
    size = reference.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in size[::-1]), indexing="ij")
    idx = np.stack([i, j, k], axis=-1)
    m = np.asarray(reference.GetDirection()).reshape(3, 3) * np.asarray(reference.GetSpacing())
    return idx @ m.T + np.asarray(reference.GetOrigin())


def radial_dose(reference: sitk.Image, centre_mm, radius_mm: float, d_max: float) -> sitk.Image:
    """Float32 dose on ``reference``'s grid falling linearly from ``d_max`` at the centre to 0 at ``radius_mm``."""
    r = np.linalg.norm(_physical_points(reference) - np.asarray(centre_mm, float), axis=-1)
    return copy_geometry(np.clip(d_max * (1.0 - r / radius_mm), 0.0, None).astype(np.float32), reference)


def sphere_mask(reference: sitk.Image, centre_mm, radius_mm: float) -> sitk.Image:
    r = np.linalg.norm(_physical_points(reference) - np.asarray(centre_mm, float), axis=-1)
    return copy_geometry((r <= radius_mm).astype(np.uint8), reference)


def radial_dvh_expected(d_max: float) -> dict:
    """Exact metrics of :func:`radial_dose` over the sphere of radius R (same names as the feature columns)."""
    out = {"dose_mld_gy": d_max / 4.0}
    for v in (5, 13, 20, 30):
        out[f"dose_v{v}_pct"] = 100.0 * max(0.0, 1.0 - v / d_max) ** 3
    for x in (2, 50, 98):
        out[f"dose_d{x}_gy"] = d_max * (1.0 - (x / 100.0) ** (1.0 / 3.0))
    return out


def treatment_dose(tumour: sitk.Image, prescription_gy: float = 60.0, margin_mm: float = 5.0,
                   falloff_mm: float = 25.0) -> sitk.Image:
    """``prescription`` within ``margin_mm`` of the tumour, ``prescription * exp(-(dist - margin)/falloff)`` beyond."""
    dist = sitk.SignedMaurerDistanceMap(sitk.Cast(tumour > 0, sitk.sitkUInt8), insideIsPositive=False,
                                        squaredDistance=False, useImageSpacing=True)
    d = np.clip(sitk.GetArrayFromImage(dist), 0.0, None)
    dose = prescription_gy * np.exp(-np.clip(d - margin_mm, 0.0, None) / falloff_mm)
    return copy_geometry(dose.astype(np.float32), tumour)
