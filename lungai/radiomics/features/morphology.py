"""IBSI-1 morphological features pyradiomics lacks (IBSI 3.1), exact, vectorised.

The mesh volume and area come from pyradiomics' shape class (``MeshVolume``, ``SurfaceArea``), so
the densities use the same mesh as ``morph_volume``.  The mesh vertices (for the convex hull and
the bounding box) are the marching-cubes vertices of the morphological mask at level 0.5, i.e.
the midpoints between an ROI voxel and an outside 6-neighbour.

Moran's I and Geary's C (inverse-distance weights over all voxel pairs of the intensity mask) are
computed exactly with FFT convolutions of the ROI with the 1/distance kernel instead of the O(N^2)
pair loop (MIRP approximates them by default):
``sum_{i!=j} w_ij a_i a_j = a . (K * a)``, ``sum_{i!=j} w_ij = m . (K * m)`` and
``sum_{i!=j} w_ij (x_i - x_j)^2 = 2 a^2 . (K * m) - 2 a . (K * a)`` with ``a = (x - mean) m``.
OMBB and MVEE densities are not computed: IBSI-1 gives no reference value for them.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.legendre import legval

MORPH_EXTRAS = ("morph_asphericity", "morph_com", "morph_vol_dens_aabb", "morph_area_dens_aabb",
                "morph_vol_dens_aee", "morph_area_dens_aee", "morph_vol_dens_conv_hull",
                "morph_area_dens_conv_hull", "morph_integ_int", "morph_moran_i", "morph_geary_c")
# Above this many FFT grid points (the ROI's bounding box doubled per axis) Moran's I and Geary's C
# are computed on the ROI resampled to a coarser grid (see :func:`spatial_autocorrelation`).
MAX_FFT_POINTS = 2 ** 24
# scipy.fft and scipy.spatial (ConvexHull) are imported in the functions using them: imported with this module they
# took 0.2-0.6 s of a shared machine before the first bar of every command importing lungai.radiomics (QA startbar66)


def mesh_vertices(mask: np.ndarray, spacing_zyx) -> np.ndarray:
    """Marching-cubes vertices (level 0.5) of a binary mask, in mm (z, y, x)."""
    m = np.pad(mask.astype(bool), 1)
    pts = []
    for axis in range(3):
        a = np.swapaxes(m, 0, axis)
        edge = a[:-1] != a[1:]
        idx = np.argwhere(edge).astype(float)
        idx[:, 0] += 0.5
        idx[:, [0, axis]] = idx[:, [axis, 0]]
        pts.append(idx)
    return (np.concatenate(pts) - 1.0) * np.asarray(spacing_zyx, float)


def ellipsoid_area(semi_axes) -> float:
    """Surface area of an ellipsoid (semi-axes a >= b >= c), IBSI's Legendre series of degree 20."""
    c, b, a = np.sort(semi_axes)
    if a == b == c:
        return float(4 * np.pi * a ** 2)
    alpha = np.sqrt(1 - b ** 2 / a ** 2)
    beta = np.sqrt(1 - c ** 2 / a ** 2)
    if alpha == 0 or beta == 0:
        alpha, beta = max(alpha, 1e-12), max(beta, 1e-12)
    nu = np.arange(21, dtype=float)
    coef = (alpha * beta) ** nu / (1 - 4 * nu ** 2)
    return float(4 * np.pi * a * b * legval((alpha ** 2 + beta ** 2) / (2 * alpha * beta), coef))


def _box(mask: np.ndarray):
    idx = np.argwhere(mask)
    return tuple(slice(a, b + 1) for a, b in zip(idx.min(0), idx.max(0)))


def _inverse_distance_spectrum(shape, spacing_zyx, fft_shape) -> np.ndarray:
    """rfft of the 1/distance kernel (0 at distance 0) on a periodic grid of ``fft_shape`` (>= 2n - 1 per axis).

    On such a grid a circular convolution equals the linear one at every ROI position.
    """
    axes = [np.where(np.arange(n) <= n // 2, np.arange(n), np.arange(n) - n) * s
            for n, s in zip(fft_shape, spacing_zyx)]
    d2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    with np.errstate(divide="ignore"):
        k = 1.0 / np.sqrt(d2)
    k[0, 0, 0] = 0.0
    from scipy import fft as sfft

    return sfft.rfftn(k, workers=1)


def spatial_autocorrelation(image: np.ndarray, roi: np.ndarray, spacing_zyx) -> dict[str, float]:
    """Moran's I and Geary's C with weights 1/distance (mm) over every pair of ROI voxels."""
    box = _box(roi)
    m = roi[box].astype(float)
    x = image[box].astype(float)
    sp = np.asarray(spacing_zyx, float)
    factor = np.ones(3, int)
    while np.prod([2 * n - 1 for n in np.ceil(np.array(m.shape) / factor)]) > MAX_FFT_POINTS:
        factor[np.argmax(np.array(m.shape) / factor)] += 1
    if (factor > 1).any():   # a very large ROI (e.g. a whole lung): block-average onto a coarser grid
        pad = [(0, (-n) % f) for n, f in zip(m.shape, factor)]
        mp, xp = np.pad(m, pad), np.pad(x * m, pad)
        shp = [s // f for s, f in zip(mp.shape, factor)]

        def blocks(a):
            return a.reshape(shp[0], factor[0], shp[1], factor[1], shp[2], factor[2]).sum((1, 3, 5))

        cnt = blocks(mp)
        x = np.where(cnt > 0, blocks(xp) / np.maximum(cnt, 1), 0.0)
        m = (cnt > 0).astype(float)
        sp = sp * factor
    n = m.sum()
    vals = x[m > 0]
    a = (x - vals.mean()) * m
    ssq = float((a ** 2).sum())
    if n < 2 or ssq == 0:
        return {"morph_moran_i": 1.0, "morph_geary_c": 1.0}
    from scipy import fft as sfft

    fft_shape = [sfft.next_fast_len(2 * n - 1, real=True) for n in m.shape]
    spec = _inverse_distance_spectrum(m.shape, sp, fft_shape)
    crop = tuple(slice(0, n) for n in m.shape)
    ka = sfft.irfftn(sfft.rfftn(a, fft_shape, workers=1) * spec, fft_shape, workers=1)[crop]
    km = sfft.irfftn(sfft.rfftn(m, fft_shape, workers=1) * spec, fft_shape, workers=1)[crop]
    w_total = float((m * km).sum())
    cross = float((a * ka).sum())
    geary_num = 2 * float((a ** 2 * km).sum()) - 2 * cross
    return {"morph_moran_i": n * cross / (w_total * ssq), "morph_geary_c": (n - 1) * geary_num / (2 * w_total * ssq)}


def morphology_extras(image: np.ndarray, morph: np.ndarray, intensity: np.ndarray, spacing_zyx,
                      volume: float, area: float) -> dict[str, float]:
    """The morphological features of :data:`MORPH_EXTRAS` (``volume``/``area``: pyradiomics' mesh).

    Undefined values (e.g. the centre-of-mass shift of an image of zeros) are NaN, without warnings.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _morphology_extras(image, morph, intensity, np.asarray(spacing_zyx, float), volume, area)


def _morphology_extras(image, morph, intensity, sp, volume, area) -> dict[str, float]:
    out = {"morph_asphericity": float((area ** 3 / (36 * np.pi * volume ** 2)) ** (1 / 3) - 1)}
    pos = np.argwhere(morph) * sp
    ipos = np.argwhere(intensity) * sp
    w = image[intensity].astype(float)
    out["morph_com"] = float(np.linalg.norm(pos.mean(0) - (ipos * w[:, None]).sum(0) / w.sum()))
    verts = mesh_vertices(morph, sp)
    ext = verts.max(0) - verts.min(0)
    out["morph_vol_dens_aabb"] = float(volume / np.prod(ext))
    out["morph_area_dens_aabb"] = float(area / (2 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2])))
    semi = 2.0 * np.sqrt(np.clip(np.linalg.eigvalsh(np.cov(pos, rowvar=False)), 0, None))
    out["morph_vol_dens_aee"] = float(3 * volume / (4 * np.pi * np.prod(semi))) if semi.all() else float("nan")
    out["morph_area_dens_aee"] = float(area / ellipsoid_area(semi)) if semi.all() else float("nan")
    from scipy.spatial import ConvexHull

    hull = ConvexHull(verts)
    out["morph_vol_dens_conv_hull"] = float(volume / hull.volume)
    out["morph_area_dens_conv_hull"] = float(area / hull.area)
    out["morph_integ_int"] = float(volume * w.mean())
    out.update(spatial_autocorrelation(image, intensity, sp))
    return out
