"""Synthetic tumours implanted into REAL chest CTs (lesion insertion), deterministic from a seed.

Real whole-CT NSCLC data with contours is scarce; the phantom's anatomy is a cartoon.  This module
takes a real CT (its lungs found by :mod:`lungai.lungs`) and inserts a tumour that looks like the users'
stage III/IV tumours:

- **size** 10-120 mm (log-uniform unless given), round / lobulated / **spiculated** shapes
  (:func:`lungai.synthetic.tumour.tumour_shape`, the phantom's shape generator);
- **contact**: free-standing, or pressed against the **chest wall**, the **mediastinum** or the
  **diaphragm** (centre chosen where the lung's distance map puts the pleura 0.55-0.85 radii away, in
  the requested direction); the tumour is clipped to the lung, so it abuts the wall with no visible
  border - the hard case of real GTVs;
- **partial-volume edges**: the shape is drawn on a grid 2x finer in-plane and 3x finer across slices
  and averaged back, so each edge voxel mixes tumour and background in proportion to its occupancy;
- **heterogeneous solid tissue** (smooth random texture, 25-50 HU, scanner-like noise matched to the
  background), **necrosis** (a darker irregular core), **cavitation** (an air cavity), a
  **ground-glass** halo (part of the lesion, -650 to -450 HU);
- **hard negatives next to the tumour, labelled NOT tumour**: **atelectasis** (a consolidated wedge
  distal to the tumour, turned into the lung against the chest wall - the phantom's rule - with air
  bronchograms) and **pleural effusion** (a dependent fluid
  crescent at the lung base).

Label map values follow :mod:`lungai.synthetic.labels` (1 tumour, 11 ground glass, 5 atelectasis,
4 effusion; 0 elsewhere); a tumour already in the background (its mask given) stays tumour (label 1).
The CT is returned oriented LPS.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.synthetic import labels as L
from lungai.synthetic.shapes import Grid, paint_capsule, random_unit, smooth_noise
from lungai.synthetic.spec import TumourSpec
from lungai.synthetic.tumour import _atelectasis_wedge, atelectasis_length, tumour_shape
from lungai.volume import mask_volume_ml

CONTACTS = ("free", "chest_wall", "mediastinum", "diaphragm")
SUPERSAMPLE = (3, 2, 2)          # (z, y, x) sub-voxels per voxel for partial-volume edges
DIAMETER_RANGE = (10.0, 120.0)
COARSE_MM = 4.0                  # the lung distance map is computed on this grid (speed)


@dataclass
class ImplantSpec:
    diameter_mm: float = 40.0
    contact: str = "free"            # one of CONTACTS
    shape: str = "lobulated"         # round / lobulated / spiculated
    side: str = "right"
    necrosis: bool = False
    cavitation: bool = False
    ground_glass: bool = False
    atelectasis: bool = False        # hard negative: label 5, not tumour
    effusion: bool = False           # hard negative: label 4, not tumour
    extra: dict = field(default_factory=dict)


def random_implant_spec(seed: int, diameter_range=DIAMETER_RANGE) -> ImplantSpec:
    """A varied implant drawn from ``seed``: size, contact, shape, side, texture and hard negatives."""
    rng = np.random.default_rng(seed)
    lo, hi = diameter_range
    d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return ImplantSpec(
        diameter_mm=round(d, 1), contact=str(rng.choice(CONTACTS, p=[0.3, 0.25, 0.3, 0.15])),
        shape=str(rng.choice(["round", "lobulated", "spiculated"], p=[0.2, 0.45, 0.35])),
        side=str(rng.choice(["right", "left"])), necrosis=bool(d > 30 and rng.random() < 0.6),
        cavitation=bool(d > 25 and rng.random() < 0.15), ground_glass=bool(rng.random() < 0.2),
        atelectasis=bool(rng.random() < 0.3), effusion=bool(rng.random() < 0.2))


@dataclass
class Background:
    """A real CT oriented LPS, its lungs (1 right, 2 left) and an existing tumour mask (bool or None)."""
    ct: sitk.Image
    lungs: np.ndarray
    tumour: np.ndarray | None = None
    name: str = "background"


def prepare_background(ct: sitk.Image, tumour_mask: sitk.Image | None = None, name: str = "background") -> Background:
    """Orient ``ct`` (and its tumour mask) to LPS and find its lungs (once per background)."""
    from lungai.lungs import segment_lungs

    ct = sitk.DICOMOrient(ct, "LPS")
    lungs = sitk.GetArrayFromImage(segment_lungs(ct).labels).astype(np.uint8)
    tum = None
    if tumour_mask is not None:
        tum = sitk.GetArrayFromImage(sitk.DICOMOrient(tumour_mask, "LPS")) > 0
        lungs[tum] = 0
    return Background(ct, lungs, tum, name)


def _noise_sd(arr: np.ndarray) -> float:
    """The scanner noise of the background (HU): robust SD of the high-pass residual in soft tissue
    (-150..150 HU, away from edges by the median's robustness)."""
    sample = arr[::2, ::2, ::2].astype(np.float32)
    resid = sample - ndimage.uniform_filter(sample, 3)
    soft = (sample > -150) & (sample < 150)
    r = resid[soft] if soft.sum() > 100 else resid.ravel()
    # a 3x3x3 mean removes 1/27 of the noise variance from the residual: scale back
    return float(np.clip(1.4826 * np.median(np.abs(r - np.median(r))) / np.sqrt(26 / 27), 3.0, 60.0))


def _choose_centre(bg: Background, spec: ImplantSpec, rng) -> tuple:
    """(centre in index-mm (x, y, z), contact actually achieved) inside the requested lung."""
    sp = np.array(bg.ct.GetSpacing())
    step = np.maximum(1, np.round(COARSE_MM / sp).astype(int))[::-1]          # (z, y, x)
    side = 1 if spec.side == "right" else 2
    lung = bg.lungs[::step[0], ::step[1], ::step[2]] == side
    if lung.sum() < 10:                                                         # no such lung: the other one
        side = 3 - side
        lung = bg.lungs[::step[0], ::step[1], ::step[2]] == side
    csp = sp[::-1] * step
    dist = ndimage.distance_transform_edt(lung, sampling=csp)
    R = spec.diameter_mm / 2.0
    ok = lung.copy()
    if bg.tumour is not None and bg.tumour.any():                              # keep away from a real tumour
        t = bg.tumour[::step[0], ::step[1], ::step[2]]
        ok &= ndimage.distance_transform_edt(~t, sampling=csp) > R + 10.0
    pts = np.argwhere(ok)
    d = dist[ok]
    contact = spec.contact
    if contact == "free":
        sel = d >= min(R + 5.0, 0.9 * d.max())
    else:
        g = np.stack(np.gradient(dist, *csp), -1)[ok]                          # points away from the wall
        wall = -g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-6)          # (z, y, x) towards the wall
        mid_x = np.argwhere(bg.lungs[::step[0], ::step[1], ::step[2]] > 0)[:, 2].mean()
        medial = np.sign(mid_x - pts[:, 2])
        kind = np.where(wall[:, 0] < -0.7, "diaphragm",
                        np.where(wall[:, 2] * medial > 0.6, "mediastinum", "chest_wall"))
        depth = (d >= 0.55 * R) & (d <= 0.85 * R + csp.max())
        sel = depth & (kind == contact)
        if not sel.any():
            sel = depth
            contact = "chest_wall" if sel.any() else "free"
    if not sel.any():
        sel = d >= 0.8 * d.max()
        contact = "free"
    k = rng.choice(np.flatnonzero(sel))
    centre_zyx = (pts[k] * step + rng.uniform(0, 1, 3) * step) * sp[::-1]
    return centre_zyx[::-1].astype(float), contact, side


def _grid(shape_zyx, sp_xyz, lo_zyx, hi_zyx, ss=SUPERSAMPLE) -> Grid:
    axes = []
    for a, (lo, hi, s, n) in enumerate(zip(lo_zyx, hi_zyx, sp_xyz[::-1], ss)):
        axes.append(((np.arange((hi - lo) * n) + 0.5) / n - 0.5 + lo) * s)
    return Grid(x=axes[2], y=axes[1], z=axes[0])


def implant(bg: Background, spec: ImplantSpec, seed: int) -> tuple:
    """(CT with the tumour, label map (sitk uint8), meta) - deterministic for (background, spec, seed)."""
    rng = np.random.default_rng(seed)
    arr = sitk.GetArrayFromImage(bg.ct).astype(np.float32)
    sp = np.array(bg.ct.GetSpacing())
    lab = np.zeros(arr.shape, np.uint8)
    if bg.tumour is not None:
        lab[bg.tumour] = L.TUMOUR
    centre, contact, side = _choose_centre(bg, spec, rng)
    lung = bg.lungs == side
    R = spec.diameter_mm / 2.0
    reach = R * (2.0 if spec.shape == "spiculated" else 1.5) + 6.0
    lo = np.maximum(0, np.floor((centre - reach) / sp).astype(int))[::-1]
    hi = np.minimum(np.array(arr.shape), (np.ceil((centre + reach) / sp).astype(int) + 1)[::-1])
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    fine = _grid(arr.shape, sp, lo, hi)
    tspec = TumourSpec(diameter_mm=spec.diameter_mm, shape=spec.shape, side=spec.side)
    shape_mask, sl = tumour_shape(tspec, centre, fine, rng)
    full_fine = np.zeros(fine.shape, bool)
    full_fine[sl] = shape_mask
    n = [h - l for l, h in zip(lo, hi)]
    occ = full_fine.reshape(n[0], SUPERSAMPLE[0], n[1], SUPERSAMPLE[1], n[2], SUPERSAMPLE[2]).mean((1, 3, 5))
    room = ndimage.binary_dilation(lung[box], iterations=1)              # clipped to the lung (+1 voxel)
    occ = (occ * room).astype(np.float32)
    solid = occ >= 0.5
    if not solid.any():                                                  # smaller than a voxel: its centre voxel
        c = tuple(int(v) for v in np.clip(np.round(centre / sp).astype(int)[::-1] - lo, 0, np.array(n) - 1))
        solid[c], occ[c] = True, 1.0
    noise_sd = _noise_sd(arr)
    local = arr[box]
    hu = rng.uniform(25.0, 50.0) + smooth_noise(rng, local.shape, 1.5, rng.uniform(6.0, 14.0))
    inner = ndimage.distance_transform_edt(solid, sampling=sp[::-1])
    meta = {"diameter_mm": spec.diameter_mm, "contact_requested": spec.contact, "contact": contact,
            "side": "right" if side == 1 else "left", "shape": spec.shape, "centre_index_mm": [round(float(v), 1) for v in centre],
            "noise_sd_hu": round(noise_sd, 1)}
    if spec.necrosis and inner.max() > 6.0:
        core = (inner > 0.45 * inner.max()) & (smooth_noise(rng, local.shape, 2.0, 1.0) > -0.5)
        hu = np.where(core, rng.uniform(5.0, 20.0) + smooth_noise(rng, local.shape, 1.0, 5.0), hu)
        meta["necrosis_ml"] = mask_volume_ml(core, sp)
    if spec.cavitation and inner.max() > 5.0:
        cav = (inner > 0.6 * inner.max()) & (smooth_noise(rng, local.shape, 2.5, 1.0) > -0.2)
        hu = np.where(cav, -950.0, hu)
        meta["cavity_ml"] = mask_volume_ml(cav, sp)
    new = local * (1.0 - occ) + hu * occ
    new += occ * rng.standard_normal(local.shape).astype(np.float32) * noise_sd
    local_lab = lab[box]
    local_lab[solid] = L.TUMOUR
    if spec.ground_glass:
        out = ndimage.distance_transform_edt(~solid, sampling=sp[::-1])
        halo = (out > 0) & (out <= min(max(0.2 * R, 3.0), 8.0)) & room & (smooth_noise(rng, local.shape, 2.0, 1.0) > -0.3)
        gg = rng.uniform(-650.0, -450.0) + smooth_noise(rng, local.shape, 1.0, 40.0)
        w = ndimage.gaussian_filter(halo.astype(np.float32), 0.7)
        new = np.where(halo | (w > 0), new * (1 - w) + np.maximum(new, gg) * w, new)
        local_lab[halo] = L.GROUND_GLASS
        meta["ground_glass_ml"] = mask_volume_ml(halo, sp)
    arr[box] = new
    if spec.atelectasis:
        meta["atelectasis_ml"], meta["atelectasis_towards"] = _atelectasis(arr, lab, lung, centre, _hilum(bg, side),
                                                                           R, sp, rng, noise_sd)
    if spec.effusion:
        meta["effusion_ml"] = _effusion(arr, lab, lung, sp, rng, noise_sd)
    # like the phantom: a requested hard negative that found no room (no free lung near the tumour, no lung
    # slice for the fluid) is named in "warnings" and warned about; callers flag it only from the ml planted
    warnings = [f"{name} was requested but could not be planted (no {name} voxel in the label map; it is not "
                "flagged as a hard case): choose another contact, side, diameter or seed"
                for name, key, wanted in (("atelectasis", "atelectasis_ml", spec.atelectasis),
                                          ("pleural effusion", "effusion_ml", spec.effusion))
                if wanted and not meta.get(key, 0.0) > 0.0]
    if warnings:
        meta["warnings"] = warnings
        from lungai.errors import InputNote

        for text in warnings:
            _warnings.warn(text, InputNote, stacklevel=2)
    meta["implanted_ml"] = mask_volume_ml(((lab == L.TUMOUR) | (lab == L.GROUND_GLASS))[box], sp)
    meta["tumour_ml"] = mask_volume_ml(L.tumour_mask(lab), sp)
    out_ct = sitk.GetImageFromArray(np.clip(np.rint(arr), -1024, 3071).astype(np.int16))
    out_lab = sitk.GetImageFromArray(lab)
    for img in (out_ct, out_lab):
        img.CopyInformation(bg.ct)
    return out_ct, out_lab, meta


def _atelectasis(arr, lab, lung, centre, hilum, R, sp, rng, noise_sd) -> tuple[float, str]:
    """A consolidated wedge next to the tumour (with air bronchograms): NOT tumour; (ml planted, which way).

    The wedge follows the phantom's rule (:func:`lungai.synthetic.tumour._atelectasis_wedge`): distal to the
    tumour, away from the hilum, unless too little free lung lies there (a tumour against the chest wall), then
    turned into the lung.  Its length is capped for small tumours (:func:`~lungai.synthetic.tumour.atelectasis_length`).
    """
    c_zyx = centre[::-1] / sp[::-1]
    length = atelectasis_length(R, rng.uniform(30.0, 55.0))
    half = np.ceil(length / sp[::-1]).astype(int) + 1
    lo = np.maximum(0, np.floor(c_zyx - half).astype(int))
    hi = np.minimum(arr.shape, np.ceil(c_zyx + half).astype(int) + 1)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    lu = lung[box]
    if not lu.any():
        return 0.0, "none (no lung near the tumour)"
    direction = (centre - hilum)[::-1] * np.array([0.3, 1.0, 1.0])      # distal from the hilum, mostly in-plane
    direction = direction / (np.linalg.norm(direction) or 1.0)
    zz, yy, xx = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij")
    rel = np.stack([(zz - c_zyx[0]) * sp[2], (yy - c_zyx[1]) * sp[1], (xx - c_zyx[2]) * sp[0]], 0)
    dist = np.sqrt((rel ** 2).sum(0)) + 1e-6
    grid = Grid(x=np.arange(lo[2], hi[2]) * sp[0], y=np.arange(lo[1], hi[1]) * sp[1], z=np.arange(lo[0], hi[0]) * sp[2])
    half_angle = rng.uniform(25.0, 40.0)
    outward = direction[::-1]
    atel, towards, chosen = _atelectasis_wedge(outward, rel[::-1], dist, length, lu & (lab[box] == 0), grid, R,
                                               half_angle_deg=half_angle)
    if chosen is not outward:
        direction = np.asarray(chosen)[::-1]
    if not atel.any():
        return 0.0, towards
    hu = rng.uniform(10.0, 35.0) + smooth_noise(rng, atel.shape, 1.5, 6.0)
    bronch = np.zeros(atel.shape, bool)
    for d in random_unit(rng, int(rng.integers(2, 5))):                  # air bronchograms
        dd = direction[::-1] * 0.8 + d * 0.4
        p0 = centre + direction[::-1] * (R + 3.0)
        paint_capsule(bronch, grid, p0, p0 + dd / (np.linalg.norm(dd) or 1.0) * (length - R), 1.2, 0.8)
    hu = np.where(bronch, -800.0, hu) + rng.standard_normal(atel.shape).astype(np.float32) * noise_sd
    local = arr[box]
    local[atel] = hu[atel]
    lab[box][atel] = L.ATELECTASIS
    return mask_volume_ml(atel, sp), towards


def _hilum(bg: Background, side: int) -> np.ndarray:
    """Index-mm (x, y, z) of a lung's hilum, roughly: its medial edge at its centre's height and depth."""
    pts = np.argwhere(bg.lungs[::2, ::4, ::4] == side) * [2, 4, 4]
    if not len(pts):
        return np.zeros(3)
    mid_x = np.argwhere(bg.lungs[::2, ::4, ::4] > 0)[:, 2].mean() * 4
    c = pts.mean(0)
    return np.array([mid_x, c[1], c[0]]) * np.array(bg.ct.GetSpacing())


def _effusion(arr, lab, lung, sp, rng, noise_sd) -> float:
    """A dependent (posterior, basal) pleural fluid crescent in the tumour's lung: NOT tumour."""
    zz = np.flatnonzero(lung.any((1, 2)))
    if zz.size == 0:
        return 0.0
    z0, z1 = zz.min(), zz.max()
    fluid = np.zeros(lung.shape, bool)
    top = z0 + rng.uniform(0.35, 0.6) * (z1 - z0)
    depth_mm = rng.uniform(15.0, 45.0)
    for k in range(z0, int(top) + 1):
        sl = lung[k]
        if not sl.any():
            continue
        ys = np.flatnonzero(sl.any(1))
        back = ys.max()                                                  # LPS: larger y = posterior
        d = depth_mm * (1.0 - (k - z0) / max(top - z0, 1.0))
        fluid[k] = sl & (np.arange(sl.shape[0])[:, None] > back - d / sp[1])
    fluid &= lab == 0
    hu = rng.uniform(0.0, 15.0)
    arr[fluid] = hu + rng.standard_normal(int(fluid.sum())).astype(np.float32) * noise_sd
    lab[fluid] = L.EFFUSION
    return mask_volume_ml(fluid, sp)
