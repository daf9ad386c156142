"""Finding the trachea and main bronchi so they can be removed from the lung mask."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def find_trachea_seed(inside_air: np.ndarray, smooth_hu: np.ndarray, spacing_xyz, x_mid: float) -> tuple | None:
    """A voxel (k, j, i) in the trachea: a small, round air region near the midline, top slices first.

    Arrays are [z, y, x] with z increasing superiorly (LPS-oriented).
    """
    sx, sy, _ = spacing_xyz
    px_area = sx * sy
    nz = inside_air.shape[0]
    for k in range(nz - 1, max(nz // 3, 0) - 1, -1):
        lab, n = ndimage.label(inside_air[k])
        if n == 0:
            continue
        areas = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1)) * px_area
        centres = ndimage.center_of_mass(np.ones_like(lab), lab, index=np.arange(1, n + 1))
        best = None
        for idx, (area, (cj, ci)) in enumerate(zip(areas, centres), start=1):
            if 50.0 <= area <= 900.0 and abs(ci - x_mid) * sx < 40.0:
                if best is None or area > best[0]:
                    best = (area, idx)
        if best is not None:
            region = lab == best[1]
            values = np.where(region, smooth_hu[k], np.inf)
            jj, ii = np.unravel_index(int(np.argmin(values)), values.shape)
            return (k, int(jj), int(ii))
    return None


def grow_airways(smooth_hu: np.ndarray, inside_air: np.ndarray, seed, voxel_ml: float,
                 max_ml: float = 250.0) -> tuple[np.ndarray | None, float | None]:
    """Connected very dark region (trachea, main bronchi) from ``seed``; (mask, threshold used).

    Lung parenchyma (about -850 HU) stays above the threshold; if the growth leaks into the
    lungs (emphysema), a stricter threshold is tried, then None is returned.
    """
    for threshold in (-950.0, -975.0, -990.0):
        dark = (smooth_hu < threshold) & inside_air
        if not dark[seed]:
            continue
        lab, _ = ndimage.label(dark)
        region = lab == lab[seed]
        if region.sum() * voxel_ml <= max_ml:
            return region, threshold
    return None, None
