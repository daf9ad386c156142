"""Keeping tumours that touch the pleura inside the lung mask (per-slice convex-hull notches)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from skimage.draw import polygon


def convex_hull_2d(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a 2D mask (pixel centres), by scan-line polygon filling."""
    pts = np.argwhere(mask)
    if len(pts) < 3:
        return mask.copy()
    try:
        hull = ConvexHull(pts)
    except QhullError:  # all points on a line
        return mask.copy()
    v = pts[hull.vertices]
    rr, cc = polygon(v[:, 0], v[:, 1], shape=mask.shape)
    out = mask.copy()
    out[rr, cc] = True
    return out


def _radial(rows: np.ndarray, cols: np.ndarray, centre, half_axes) -> np.ndarray:
    """Elliptic distance from the body centre (1.0 = body outline)."""
    return np.sqrt(((cols - centre[1]) / half_axes[1]) ** 2 + ((rows - centre[0]) / half_axes[0]) ** 2)


# the slices of a lung are worked in this many groups, ``tick`` called after each (the filling's sub-steps on the bar of
# ``lungai lungs``: the notches of one lung took 1.0-2.1 s idle - pyradiomics lung2's right lung, LUNG1-003 - and up to
# three times that on a loaded machine, one silent sub-step: QA lungs67)
NOTCH_TICKS = 4


def add_pleural_notches(lung: np.ndarray, dense: np.ndarray, body_shape: dict,
                        max_fraction: float = 0.6, tick=None) -> np.ndarray:
    """Fill notches in one lung's outline that hold dense tissue against the chest wall.

    Per axial slice the convex hull of the lung is taken; each component of ``hull - lung``
    that is mostly ``dense`` (soft tissue), smaller than ``max_fraction`` of the lung slice
    and lies farther out from the body centre than the lung's own centre (elliptic distance,
    normalised by the body outline given per slice in ``body_shape``: k -> (row centre, col
    centre, row half-axis, col half-axis)) is a lesion abutting the costal pleura and joins the lung.
    Concavities at the heart, hilum and mediastinum lie inwards and are left out - so are
    tumours that abut only the mediastinum (documented limitation).

    ``tick`` (optional, e.g. a :class:`lungai.progress.Counter`'s): called ``NOTCH_TICKS`` times, after each group of
    the lung's slices (the same count for any lung); the result is the same.
    """
    out = lung.copy()
    slices = np.flatnonzero(lung.any(axis=(1, 2)))
    for group in np.array_split(slices, NOTCH_TICKS):
        for k in group:
            _notches_of_slice(out, lung, dense, body_shape, max_fraction, int(k))
        if tick is not None:
            tick()
    return out


def _notches_of_slice(out: np.ndarray, lung: np.ndarray, dense: np.ndarray, body_shape: dict, max_fraction: float,
                      k: int) -> None:
    """:func:`add_pleural_notches` on slice ``k``: its notches added to ``out``."""
    sl2 = lung[k]
    area = int(sl2.sum())
    if area < 30 or k not in body_shape:
        return
    rc, cc, rh, ch = body_shape[k]
    centre, half_axes = (rc, cc), (rh, ch)
    jj, ii = np.nonzero(sl2)
    lung_r = _radial(jj, ii, centre, half_axes).mean()
    j0, j1, i0, i1 = jj.min(), jj.max() + 1, ii.min(), ii.max() + 1
    crop = sl2[j0:j1, i0:i1]
    notch = convex_hull_2d(crop) & ~crop
    if not notch.any():
        return
    lab, n = ndimage.label(notch)
    for idx in range(1, n + 1):
        comp = lab == idx
        size = int(comp.sum())
        if size > max_fraction * area or size < 2:
            continue
        cj, ci = np.nonzero(comp)
        if _radial(cj + j0, ci + i0, centre, half_axes).mean() < lung_r:
            continue
        if dense[k, j0:j1, i0:i1][comp].mean() < 0.6:
            continue
        out[k, j0:j1, i0:i1] |= comp
