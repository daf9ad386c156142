"""Chest anatomy of the phantom: body wall, ribs, spine, mediastinum, aorta, airways, lungs.

Coordinates are mm in LPS (x: patient left, y: posterior, z: superior), the body centred on
x = y = 0.  Sizes scale with the field of view so that small test grids still hold a chest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lungai.synthetic import labels as L
from lungai.synthetic.shapes import Grid, paint_capsule, smooth_noise

HU = {
    "air": -1000.0, "fat": -90.0, "muscle": 45.0, "bone": 500.0, "marrow": 250.0,
    "soft": 40.0, "blood": 42.0, "liver": 55.0, "lung": -860.0, "vessel": 38.0,
}


@dataclass
class Anatomy:
    ct: np.ndarray                      # float32 HU, [z, y, x]
    labels: np.ndarray                  # uint8 label map
    envelope: dict                      # side -> lung envelope (lung incl. what may replace it)
    hilum: dict                         # side -> hilum point (x, y, z) mm
    vessel_segments: dict = field(default_factory=dict)  # side -> [(p0, p1, radius, generation)]
    cavity_radii: tuple = (0.0, 0.0)    # thoracic cavity half-axes (x, y) mm


def _scale(grid: Grid) -> float:
    fov_x = grid.x[-1] - grid.x[0]
    fov_y = grid.y[-1] - grid.y[0]
    return float(min(0.45 * fov_x / 160.0, 0.45 * fov_y / 115.0, 1.0))


def build_anatomy(grid: Grid, rng: np.random.Generator) -> Anatomy:
    s = _scale(grid)
    z, y, x = grid.mesh()
    z0, z1 = float(grid.z[0]), float(grid.z[-1])
    t = (z - z0) / max(z1 - z0, 1e-6)                      # 0 = diaphragm level, 1 = apex
    shape = grid.shape
    ct = np.full(shape, HU["air"], np.float32)
    lab = np.zeros(shape, np.uint8)

    ax, ay = 160.0 * s, 115.0 * s                          # body half-axes
    taper = 1.0 - 0.12 * t ** 2
    rho_body = np.sqrt((x / (ax * taper)) ** 2 + (y / (ay * taper)) ** 2)
    body = rho_body <= 1.0
    ct[body] = HU["fat"]
    lab[body] = L.BODY
    wall = 22.0 * s
    axc, ayc = ax - wall, ay - wall
    rho_musc = np.sqrt((x / ((ax - 9 * s) * taper)) ** 2 + (y / ((ay - 9 * s) * taper)) ** 2)
    ct[rho_musc <= 1.0] = HU["muscle"]
    rho_cav = np.sqrt((x / (axc * taper)) ** 2 + (y / (ayc * taper)) ** 2)
    cavity = rho_cav <= 1.0
    ct[cavity] = HU["soft"]
    lab[cavity] = L.MEDIASTINUM

    # Ribs: slanted bands just outside the cavity; sternum anteriorly.
    ribs = np.zeros(shape, bool)
    rib_band = (rho_cav > 1.0) & (rho_cav <= 1.0 + 10.0 * s / axc)
    for zc in np.arange(z0 + 8.0, z1 + 30.0, 24.0 * max(s, 0.6)):
        zr = zc - 18.0 * s * (1.0 - y / ayc) / 2.0
        ribs |= rib_band & (np.abs(z - zr) <= 4.5 * s + 0.5) & ~((y < 0) & (np.abs(x) < 30 * s))
    sternum = (np.abs(x) < 14 * s) & (y < -ayc + 2 * s) & (y > -ayc - 12 * s) & body
    spine_c = (0.0, ayc - 4.0 * s)
    r_spine = np.sqrt((x - spine_c[0]) ** 2 + (y - spine_c[1]) ** 2)
    vertebra = r_spine <= 16.0 * s
    canal = np.sqrt(x ** 2 + (y - spine_c[1] - 26.0 * s) ** 2) <= 7.0 * s
    bone = np.broadcast_to(ribs | sternum | vertebra, shape)
    ct[bone] = HU["bone"]
    ct[np.broadcast_to(r_spine <= 12.0 * s, shape)] = HU["marrow"]
    lab[bone] = L.BONE
    ct[np.broadcast_to(canal, shape)] = 20.0

    # Abdomen below the diaphragm domes: liver-like soft tissue.
    def dome(xc, t0):
        r2 = ((x - xc) / (axc * 0.55)) ** 2 + (y / (ayc * 0.9)) ** 2
        return t0 + 0.2 * np.clip(1.0 - r2, 0.0, 1.0)

    below = np.where(x < 0, t < dome(-axc * 0.5, 0.14), t < dome(axc * 0.5, 0.10)) & cavity
    ct[below] = HU["liver"]
    lab[below] = L.BODY

    # Lung envelopes: cavity minus mediastinum, paravertebral gutter, domes, apex.
    mw = 28.0 * s
    apex = 1.0 - np.clip((t - 0.55) / 0.42, 0.0, 1.0) ** 2   # shrinks the cross-section upwards
    lung_zone = (rho_cav <= np.sqrt(np.clip(apex, 0, 1)) * 0.97) & ~below & (t < 0.97)
    paravert = (np.abs(x) < 40.0 * s) & (y > ayc - 44.0 * s)
    heart_c = (16.0 * s, -12.0 * s, z0 + 0.30 * (z1 - z0))
    heart = ((x - heart_c[0]) / (58 * s)) ** 2 + ((y - heart_c[1]) / (48 * s)) ** 2 \
        + ((z - heart_c[2]) / max(0.24 * (z1 - z0), 20.0)) ** 2 <= 1.0
    right_env = lung_zone & (x < -mw) & ~paravert & ~heart
    left_env = lung_zone & (x > mw) & ~paravert & ~heart
    right_env = np.broadcast_to(right_env, shape) & ~bone
    left_env = np.broadcast_to(left_env, shape) & ~bone

    parenchyma = HU["lung"] + 35.0 * (y / ayc) + smooth_noise(rng, shape, 2.0, 22.0)
    for env, value in ((right_env, L.RIGHT_LUNG), (left_env, L.LEFT_LUNG)):
        ct[env] = parenchyma[env]
        lab[env] = value
    heart_b = np.broadcast_to(heart, shape) & cavity & ~below
    ct[heart_b] = HU["blood"]

    # Aorta: ascending from the heart, arch, descending beside the spine.
    aorta = np.zeros(shape, bool)
    zt = lambda f: z0 + f * (z1 - z0)  # noqa: E731
    asc = np.array([6.0 * s, -22.0 * s, zt(0.42)])
    desc_top = np.array([20.0 * s, ayc - 40.0 * s, zt(0.80)])
    arch_r = (desc_top[1] - asc[1]) / 2.0
    arch = [np.array([12.0 * s, asc[1] + arch_r - arch_r * np.cos(a), zt(0.80) + 0.6 * arch_r * np.sin(a)])
            for a in np.linspace(0, np.pi, 9)]
    path = [asc] + arch + [np.array([desc_top[0], desc_top[1], zt(-0.05)])]
    for p0, p1 in zip(path[:-1], path[1:]):
        paint_capsule(aorta, grid, p0, p1, 11.0 * s)
    ct[aorta] = HU["blood"]
    lab[aorta] = L.AORTA
    right_env &= ~aorta
    left_env &= ~aorta

    # Trachea and main bronchi: air lumen with a thin soft-tissue wall.
    y_tr = 0.15 * ayc
    carina = np.array([0.0, y_tr, zt(0.62)])
    hilum = {"right": np.array([-mw - 22.0 * s, y_tr + 6 * s, carina[2] - 22.0 * s]),
             "left": np.array([mw + 26.0 * s, y_tr + 6 * s, carina[2] - 32.0 * s])}
    airway_wall = np.zeros(shape, bool)
    lumen = np.zeros(shape, bool)
    segments = [(np.array([0.0, y_tr, zt(1.05)]), carina, 8.5 * s)]
    segments += [(carina, hilum[side], 5.5 * s) for side in ("right", "left")]
    for p0, p1, r in segments:
        paint_capsule(airway_wall, grid, p0, p1, r + 1.8)
        paint_capsule(lumen, grid, p0, p1, r)
    airway_wall &= ~lumen
    ct[airway_wall & ~right_env & ~left_env] = HU["soft"]
    ct[lumen] = HU["air"]
    lab[lumen] = L.AIRWAYS
    right_env &= ~lumen
    left_env &= ~lumen

    anatomy = Anatomy(ct=ct, labels=lab, envelope={"right": right_env, "left": left_env},
                      hilum={k: v for k, v in hilum.items()}, cavity_radii=(axc, ayc))
    _add_vessels(anatomy, grid, rng, s)
    return anatomy


def _add_vessels(anatomy: Anatomy, grid: Grid, rng: np.random.Generator, s: float) -> None:
    """Branching pulmonary vessels from each hilum, drawn only inside the lung."""
    for side, sign in (("right", -1.0), ("left", 1.0)):
        vessels = np.zeros(grid.shape, bool)
        segs = []
        stack = []
        for d in ((sign, 0.25, 0.6), (sign, -0.35, 0.1), (sign, 0.3, -0.7), (sign * 0.6, -0.2, -0.5)):
            d = np.asarray(d) / np.linalg.norm(d)
            stack.append((anatomy.hilum[side], d, 6.0 * s, 0))
        while stack:
            p0, d, r, gen = stack.pop()
            length = (52.0 - 7.0 * gen) * s * rng.uniform(0.8, 1.2)
            p1 = p0 + d * length
            paint_capsule(vessels, grid, p0, p1, max(r, 0.8), max(r * 0.8, 0.7))
            segs.append((p0, p1, r, gen))
            if gen < 4:
                for _ in range(2):
                    nd = d + rng.normal(0, 0.55, 3)
                    nd[0] = sign * abs(nd[0]) if gen < 2 else nd[0]
                    nd /= np.linalg.norm(nd)
                    stack.append((p1, nd, r * 0.72, gen + 1))
        inside = vessels & anatomy.envelope[side]
        anatomy.ct[inside] = HU["vessel"]
        anatomy.vessel_segments[side] = segs
