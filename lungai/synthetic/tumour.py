"""Planting a tumour (and its hard-case companions) into the phantom anatomy."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lungai.synthetic import labels as L
from lungai.synthetic.anatomy import Anatomy
from lungai.synthetic.shapes import Grid, ellipsoid, paint_capsule, random_rotation, random_unit, smooth_noise
from lungai.synthetic.spec import TumourSpec
from lungai.volume import mask_volume_ml
from lungai.volume import voxel_ml as one_voxel_ml


def _coarse_distance(mask: np.ndarray, grid: Grid, step: int = 2):
    """Distance (mm) from each voxel of ``mask`` to its outside, on a grid subsampled by ``step``."""
    sub = mask[::step, ::step, ::step]
    sx, sy, sz = grid.spacing
    return ndimage.distance_transform_edt(sub, sampling=(sz * step, sy * step, sx * step)), step


def _point(grid: Grid, idx_coarse, step) -> np.ndarray:
    k, j, i = (int(v) * step for v in idx_coarse)
    return np.array([grid.x[min(i, grid.x.size - 1)], grid.y[min(j, grid.y.size - 1)],
                     grid.z[min(k, grid.z.size - 1)]])


def choose_centre(spec: TumourSpec, anat: Anatomy, grid: Grid, rng: np.random.Generator,
                  allowed: np.ndarray) -> np.ndarray:
    """Tumour centre (mm) for the requested location type, inside ``allowed`` lung."""
    radius = spec.diameter_mm / 2.0
    dist, step = _coarse_distance(allowed, grid)
    hilum = anat.hilum[spec.side]
    if spec.location == "juxta_vascular":
        segs = [sg for sg in anat.vessel_segments[spec.side] if 1 <= sg[3] <= 2]
        for _ in range(40):
            p0, p1, r, _gen = segs[rng.integers(len(segs))]
            on = p0 + rng.uniform(0.3, 0.9) * (p1 - p0)
            axis = (p1 - p0) / np.linalg.norm(p1 - p0)
            perp = np.cross(axis, random_unit(rng)[0])
            perp /= np.linalg.norm(perp)
            c = on + perp * (radius + 0.5 * r)
            idx = np.round([(c[2] - grid.z[0]) / grid.spacing[2] / step, (c[1] - grid.y[0]) / grid.spacing[1] / step,
                            (c[0] - grid.x[0]) / grid.spacing[0] / step]).astype(int)
            if np.all(idx >= 0) and np.all(idx < dist.shape) and dist[tuple(idx)] > 0.5 * radius:
                return c
        # fall through to a free-standing position next to the deepest point
    zz, yy, xx = np.nonzero(dist > 0)
    if zz.size == 0:
        raise RuntimeError("the lung envelope is empty; the phantom grid is too small")
    d = dist[zz, yy, xx]
    if spec.location == "juxta_pleural":
        # against the costal pleura: near the outer wall of the thoracic cavity, away from the hilum
        ok = (d >= 0.55 * radius) & (d <= 0.8 * radius + 2.0 * step)
        pts = np.stack([xx, yy, zz], 1) * step * np.array(grid.spacing) + [grid.x[0], grid.y[0], grid.z[0]]
        axc, ayc = anat.cavity_radii
        rho = np.sqrt((pts[:, 0] / axc) ** 2 + (pts[:, 1] / ayc) ** 2)
        ok &= (np.linalg.norm(pts - hilum, axis=1) > radius + 25.0) & (rho > 1.0 - (radius + 10.0) / min(axc, ayc))
        # off the diaphragm dome: above the lowest third of the lung
        z_lo, z_hi = pts[:, 2].min(), pts[:, 2].max()
        ok &= pts[:, 2] > z_lo + max(0.3 * (z_hi - z_lo), radius)
    elif spec.location == "central":
        pts = np.stack([xx, yy, zz], 1) * step * np.array(grid.spacing) + [grid.x[0], grid.y[0], grid.z[0]]
        near = np.linalg.norm(pts - hilum, axis=1)
        ok = (near < radius + 18.0) & (d >= 0.5 * radius)
    else:
        ok = d >= radius + 6.0
    if not ok.any():
        ok = d >= 0.8 * d.max()
    choice = rng.choice(np.flatnonzero(ok))
    return _point(grid, (zz[choice], yy[choice], xx[choice]), step)


def tumour_shape(spec: TumourSpec, centre: np.ndarray, grid: Grid, rng: np.random.Generator):
    """(mask, bbox slices) of the solid tumour around ``centre``; lobulated / spiculated / round."""
    R = spec.diameter_mm / 2.0
    reach = R * (2.0 if spec.shape == "spiculated" else 1.5) + 3.0
    sl = grid.bbox(centre - reach, centre + reach)
    local = Grid(grid.x[sl[2]], grid.y[sl[1]], grid.z[sl[0]])
    if spec.shape == "round":
        mask = ellipsoid(local, centre, R * rng.uniform(0.85, 1.0, 3) * np.array([1.05, 1.0, 1.0]),
                         random_rotation(rng))
    else:
        mask = ellipsoid(local, centre, [R * 0.85] * 3)
        if spec.shape == "lobulated":
            for d in random_unit(rng, int(rng.integers(4, 7))):
                mask |= ellipsoid(local, centre + d * R * 0.5, [R * rng.uniform(0.35, 0.55)] * 3)
        else:
            for d in random_unit(rng, int(rng.integers(8, 15))):
                tip = centre + d * R * rng.uniform(1.3, 1.9)
                paint_capsule(mask, local, centre + d * R * 0.6, tip, max(0.14 * R, 1.0), 0.3)
    if not mask.any():  # a tumour smaller than a voxel still occupies its centre voxel
        idx = tuple(int(np.argmin(np.abs(a - c))) for a, c in ((local.z, centre[2]), (local.y, centre[1]), (local.x, centre[0])))
        mask[idx] = True
    return mask, sl


# half-angle of the atelectasis wedge; the free lung a direction's wedge must hold to be used: this share of the
# tumour's (sphere) volume, at least ATELECTASIS_MIN_ML
ATELECTASIS_HALF_ANGLE_DEG = 30.0
ATELECTASIS_MIN_TUMOUR_SHARE = 0.25
ATELECTASIS_MIN_ML = 1.0
# a wedge reaches at most this many tumour radii from the tumour's centre (2 diameters beyond its edge):
# post-obstructive collapse comes from a tumour blocking a bronchus, so a small peripheral nodule gets at most a
# small subsegmental wedge, not the 35-60 mm of a central mass (a 5 mm nodule: 12.5 mm, < 1 ml; 30 mm and over:
# unchanged, the drawn length is always shorter)
ATELECTASIS_MAX_RADII = 5.0


def atelectasis_length(radius: float, drawn_mm: float) -> float:
    """The wedge's length from the tumour centre: ``radius + drawn_mm``, at most ``ATELECTASIS_MAX_RADII`` radii."""
    return min(radius + drawn_mm, ATELECTASIS_MAX_RADII * radius)


def _atelectasis_wedge(outward: np.ndarray, rel: np.ndarray, dist: np.ndarray, length: float, free: np.ndarray,
                       grid: Grid, radius: float,
                       half_angle_deg: float = ATELECTASIS_HALF_ANGLE_DEG) -> tuple[np.ndarray, str, np.ndarray]:
    """The collapsed-lung wedge (mask) next to the tumour, which way it points (words) and its direction.

    ``outward``, ``rel`` (voxel offsets from the tumour centre, mm) and the returned direction are (x, y, z)
    (``outward`` itself when the distal wedge is used, else a unit vector);
    the phantom and the implants into real CT (:mod:`lungai.synthetic.implant`) both use this one rule.

    Atelectasis lies distal to the tumour, away from the hilum (``outward``).  For a tumour against the chest wall
    that cone lies in the wall, outside the lung, and would plant nothing (session QA: ``lungai sample --atelectasis``
    recorded atelectasis but had no label-5 voxel).  The distal cone is kept when its free lung holds at least
    ``ATELECTASIS_MIN_TUMOUR_SHARE`` of the tumour's volume (``radius``: a sphere), ``ATELECTASIS_MIN_ML`` or more
    (but never more than half the whole cone, so that a short wedge of a small nodule lying in the lung is kept);
    otherwise the wedge turns towards the centre of the free lung, then round it in the axial
    plane and up or down, and the direction with the most free lung is used.  No random draw here: a phantom whose
    distal wedge fits is unchanged.
    """
    cos_min = np.cos(np.deg2rad(half_angle_deg))
    near = dist < length
    voxel_ml = one_voxel_ml(grid.spacing)
    cone_ml = 2.0 / 3.0 * np.pi * (1.0 - cos_min) * length ** 3 / 1000.0
    enough = min(max(ATELECTASIS_MIN_TUMOUR_SHARE * 4.0 / 3.0 * np.pi * radius ** 3 / 1000.0, ATELECTASIS_MIN_ML),
                 0.5 * cone_ml) / voxel_ml

    def wedge(direction):
        direction = direction / (np.linalg.norm(direction) or 1.0)
        cos = (rel[0] * direction[0] + rel[1] * direction[1] + rel[2] * direction[2]) / dist
        return (cos > cos_min) & near & free

    best, best_dir = wedge(outward), outward
    if best.sum() >= enough:
        return best, "distal (away from the hilum)", best_dir
    towards = "distal (away from the hilum)"
    pts = free & near
    if pts.any():
        kk, jj, ii = np.nonzero(pts[:, ::2, ::2])
        inward = np.array([rel[0][kk, 2 * jj, 2 * ii].mean(), rel[1][kk, 2 * jj, 2 * ii].mean(),
                           rel[2][kk, 2 * jj, 2 * ii].mean()])
        flat = np.array([inward[0], inward[1], 0.0])
        if not np.linalg.norm(flat):
            flat = np.array([1.0, 0.0, 0.0])
        candidates = [(inward, "towards the lung (too little free lung distal to the tumour)")]
        for angle in (45, -45, 90, -90, 135, -135, 180):
            a = np.deg2rad(angle)
            candidates.append((np.array([flat[0] * np.cos(a) - flat[1] * np.sin(a),
                                         flat[0] * np.sin(a) + flat[1] * np.cos(a), 0.0]),
                               "along the lung (too little free lung distal to the tumour)"))
        candidates += [(np.array([0.0, 0.0, 1.0]), "up along the lung (too little free lung distal to the tumour)"),
                       (np.array([0.0, 0.0, -1.0]), "down along the lung (too little free lung distal to the tumour)")]
        for direction, label in candidates:
            m = wedge(direction)
            if m.sum() > best.sum():
                best, towards, best_dir = m, label, direction
            if best.sum() >= enough:
                break
    if best_dir is not outward:
        best_dir = best_dir / (np.linalg.norm(best_dir) or 1.0)
    return best, towards, best_dir


def plant_tumour(spec: TumourSpec, anat: Anatomy, grid: Grid, rng: np.random.Generator) -> dict:
    """Insert the tumour (+ ground glass, atelectasis) into ``anat``; returns what was planted."""
    allowed = anat.envelope[spec.side] & (anat.labels != L.EFFUSION)
    centre = choose_centre(spec, anat, grid, rng, allowed)
    local_mask, sl = tumour_shape(spec, centre, grid, rng)
    solid = np.zeros(grid.shape, bool)
    solid[sl] = local_mask
    solid &= allowed
    R = spec.diameter_mm / 2.0
    z, y, x = grid.mesh()
    hu = 38.0 + smooth_noise(rng, grid.shape, 1.5, 10.0)
    if R > 22.0:  # necrotic core in large tumours
        core = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 < (0.4 * R) ** 2
        hu = np.where(core, hu - 22.0, hu)
    planted = {"side": spec.side, "location": spec.location, "shape": spec.shape,
               "diameter_mm": spec.diameter_mm, "centre_mm": [float(v) for v in centre]}

    if spec.atelectasis:
        outward = centre - anat.hilum[spec.side]
        outward[2] *= 0.3
        rel = np.stack(np.broadcast_arrays(x - centre[0], y - centre[1], z - centre[2]), 0)
        dist = np.sqrt((rel ** 2).sum(0)) + 1e-6
        length = atelectasis_length(R, rng.uniform(35.0, 60.0))
        atel, towards, _ = _atelectasis_wedge(outward, rel, dist, length, allowed & ~solid, grid, R)
        anat.ct[atel] = 30.0 + smooth_noise(rng, grid.shape, 1.5, 6.0)[atel]
        anat.labels[atel] = L.ATELECTASIS
        planted["atelectasis_ml"] = mask_volume_ml(atel, grid.spacing)
        planted["atelectasis_towards"] = towards

    if spec.ground_glass:
        sx, sy, sz = grid.spacing
        halo_mm = max(0.35 * R, 3.0)
        d_out = ndimage.distance_transform_edt(~solid[sl], sampling=(sz, sy, sx))
        patchy = smooth_noise(rng, d_out.shape, 2.0, 1.0) > -0.3
        halo = np.zeros(grid.shape, bool)
        halo[sl] = (d_out > 0) & (d_out <= halo_mm) & patchy
        halo &= allowed & (anat.labels != L.ATELECTASIS)
        anat.ct[halo] = -600.0 + smooth_noise(rng, grid.shape, 1.0, 40.0)[halo]
        anat.labels[halo] = L.GROUND_GLASS
        planted["ground_glass_ml"] = mask_volume_ml(halo, grid.spacing)

    anat.ct[solid] = hu[solid]
    anat.labels[solid] = L.TUMOUR
    return planted


def add_effusion(anat: Anatomy, grid: Grid, side: str, rng: np.random.Generator) -> dict:
    """Dependent pleural effusion: a posterior crescent of fluid at the lung base."""
    z, y, x = grid.mesh()
    z0, z1 = grid.z[0], grid.z[-1]
    t = (z - z0) / max(z1 - z0, 1e-6)
    ayc = anat.cavity_radii[1]
    depth = rng.uniform(0.35, 0.6) * ayc
    level = ayc - depth * np.clip(1.0 - t / 0.7, 0.0, 1.0)
    fluid = anat.envelope[side] & (y > level)
    anat.ct[fluid] = 12.0 + smooth_noise(rng, grid.shape, 1.5, 5.0)[fluid]
    anat.labels[fluid] = L.EFFUSION
    return {"side": side, "volume_ml": mask_volume_ml(fluid, grid.spacing)}
