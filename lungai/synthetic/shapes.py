"""Geometric primitives on a voxel grid in mm: capsules, cones, ellipsoids, smooth noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Grid:
    """Voxel-centre coordinates (mm, LPS) of an array indexed [z, y, x]."""

    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    z: np.ndarray  # (nz,)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z.size, self.y.size, self.x.size)

    @property
    def spacing(self) -> tuple[float, float, float]:
        def step(a):
            return float(a[1] - a[0]) if a.size > 1 else 1.0
        return (step(self.x), step(self.y), step(self.z))

    def mesh(self, sl=(slice(None),) * 3):
        return (self.z[sl[0]][:, None, None], self.y[sl[1]][None, :, None], self.x[sl[2]][None, None, :])

    def bbox(self, lo, hi):
        """Index slices (z, y, x) covering the physical box lo..hi (x, y, z order)."""
        sl = []
        for a, l, h in ((self.z, lo[2], hi[2]), (self.y, lo[1], hi[1]), (self.x, lo[0], hi[0])):
            i0 = int(np.searchsorted(a, l, side="left"))
            i1 = int(np.searchsorted(a, h, side="right"))
            sl.append(slice(max(i0, 0), max(min(i1, a.size), 0)))
        return tuple(sl)


def _segment_param(grid: Grid, sl, p0, p1):
    z, y, x = grid.mesh(sl)
    d = np.asarray(p1, float) - np.asarray(p0, float)
    length2 = float(d @ d) or 1e-9
    t = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / length2
    t = np.clip(t, 0.0, 1.0)
    dist2 = (x - (p0[0] + t * d[0])) ** 2 + (y - (p0[1] + t * d[1])) ** 2 + (z - (p0[2] + t * d[2])) ** 2
    return t, dist2


def paint_capsule(mask: np.ndarray, grid: Grid, p0, p1, r0: float, r1: float | None = None) -> None:
    """OR into ``mask`` a tube from p0 to p1 (mm, x/y/z) whose radius goes from r0 to r1."""
    r1 = r0 if r1 is None else r1
    rmax = max(r0, r1)
    lo = np.minimum(p0, p1) - rmax
    hi = np.maximum(p0, p1) + rmax
    sl = grid.bbox(lo, hi)
    if any(s.stop <= s.start for s in sl):
        return
    t, dist2 = _segment_param(grid, sl, p0, p1)
    radius = r0 + (r1 - r0) * t
    mask[sl] |= dist2 <= radius ** 2


def ellipsoid(grid: Grid, centre, radii, rotation=None, sl=(slice(None),) * 3) -> np.ndarray:
    """Boolean ellipsoid (mm) on the grid region ``sl``; ``rotation`` is a 3x3 matrix."""
    z, y, x = grid.mesh(sl)
    rel = [x - centre[0], y - centre[1], z - centre[2]]
    if rotation is not None:
        rel = [rotation[i, 0] * rel[0] + rotation[i, 1] * rel[1] + rotation[i, 2] * rel[2] for i in range(3)]
    return (rel[0] / radii[0]) ** 2 + (rel[1] / radii[1]) ** 2 + (rel[2] / radii[2]) ** 2 <= 1.0


def smooth_noise(rng: np.random.Generator, shape, sigma_vox: float, amplitude: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to standard deviation ``amplitude`` (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    sd = float(field.std()) or 1.0
    return field * np.float32(amplitude / sd)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def random_unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
