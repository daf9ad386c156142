"""Keeping tumours that touch the pleura inside the lung mask (per-slice convex-hull notches)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image


def add_pleural_notches(lung: np.ndarray, dense: np.ndarray, x_mid: float, max_fraction: float = 0.12) -> np.ndarray:
    """Fill notches in one lung's outline that hold dense tissue on the lateral (chest-wall) side.

    Per axial slice the convex hull of the lung is taken; each component of
    ``hull - lung`` that is mostly ``dense`` (soft tissue), smaller than ``max_fraction`` of
    the lung slice and lying no closer to the midline than the lung itself is a lesion
    abutting the pleura and joins the lung.  Concavities at the heart, hilum and spine lie
    medially and are left out.
    """
    out = lung.copy()
    for k in np.flatnonzero(lung.any(axis=(1, 2))):
        sl2 = lung[k]
        area = int(sl2.sum())
        if area < 30:
            continue
        jj, ii = np.nonzero(sl2)
        j0, j1, i0, i1 = jj.min(), jj.max() + 1, ii.min(), ii.max() + 1
        crop = sl2[j0:j1, i0:i1]
        hull = convex_hull_image(crop)
        notch = hull & ~crop
        if not notch.any():
            continue
        lab, n = ndimage.label(notch)
        lung_lateral = abs(ii.mean() - x_mid)
        for idx in range(1, n + 1):
            comp = lab == idx
            size = int(comp.sum())
            if size > max_fraction * area or size < 2:
                continue
            cj, ci = np.argwhere(comp).mean(axis=0)
            if abs(ci + i0 - x_mid) < lung_lateral:
                continue
            if dense[k, j0:j1, i0:i1][comp].mean() < 0.6:
                continue
            out[k, j0:j1, i0:i1] |= comp
    return out
