"""Put the dose onto the CT grid and check that it covers the structures."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError


def dose_on_grid(dose: sitk.Image, reference: sitk.Image, box=None) -> np.ndarray:
    """Dose [z, y, x] on ``reference``'s grid (linear interpolation, float64); NaN outside the dose grid.
    ``box`` = (lo, hi), voxel indices (x, y, z, inclusive; :func:`lungai.io.geometry.bounding_box`): only those voxels
    of the grid, the array [z, y, x] of the box: the whole grid's values there (to ~1e-15: the box's origin rounds the
    voxel centres' coordinates differently).  QA: the whole float64 grid of a 512 x 512 x 401 CT was 840 MB, and a copy
    of it, for lungs and GTV in a fifth of it (benchmarks/bench_dose_features.py)."""
    if box is None:
        out = sitk.Resample(dose, reference, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat64)
    else:
        lo, hi = (tuple(int(v) for v in b) for b in box)
        out = sitk.Resample(dose, [b - a + 1 for a, b in zip(lo, hi)], sitk.Transform(), sitk.sitkLinear,
                            reference.TransformIndexToPhysicalPoint(lo), reference.GetSpacing(),
                            reference.GetDirection(), float("nan"), sitk.sitkFloat64)
    return sitk.GetArrayFromImage(out)


def percent_text(pct: float) -> str:
    """A percentage with one decimal, a small one (below 1 %) with two significant digits: 0.012, never 0.0."""
    if pct <= 0 or pct >= 1:
        return f"{pct:.1f}"
    return f"{pct:.{max(1, 1 - int(np.floor(np.log10(pct))))}f}"


def check_coverage(dose_kji: np.ndarray, mask: np.ndarray, what: str) -> None:
    """Every voxel of ``mask`` must lie inside the dose grid."""
    outside = int(np.isnan(dose_kji[mask]).sum())
    if outside:
        total = int(mask.sum())
        raise InputError(
            f"the dose grid does not cover the {what}: {outside} of {total} voxels "
            f"({percent_text(100.0 * outside / total)} %) lie outside it",
            f"export the dose on a grid that covers the {what} completely (e.g. the whole external contour) "
            "from the planning system, and check that dose and CT belong to the same patient/frame of reference")
