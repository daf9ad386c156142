"""Deterministic synthetic chest CT with a known ground truth: :func:`make_phantom`."""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.synthetic import labels as L
from lungai.synthetic.anatomy import build_anatomy
from lungai.synthetic.shapes import Grid
from lungai.volume import voxel_ml as one_voxel_ml
from lungai.synthetic.spec import PhantomSpec
from lungai.synthetic.tumour import add_effusion, plant_tumour

# the steps make_phantom reports to its ``progress``: the anatomy built, the tumour / effusion planted, the slices
# averaged with noise (QA firstbar64: `lungai sample` stood 5-9 s at 0/2 while the built-in sample was made)
PHANTOM_STEPS = 3
SUBSLICE_MM = 1.25  # anatomy is drawn at this z resolution, then averaged over the slice thickness


@dataclass
class Phantom:
    ct: sitk.Image        # int16 HU
    labels: sitk.Image    # uint8, values in lungai.synthetic.labels
    meta: dict            # what was planted, label names, volumes, hard-case flags


def _grid(spec: PhantomSpec, n_sub: int) -> Grid:
    nx, ny, nz = spec.shape
    sx, sy, sz = spec.spacing
    x = (np.arange(nx) - (nx - 1) / 2.0) * sx
    y = (np.arange(ny) - (ny - 1) / 2.0) * sy
    centres = np.arange(nz) * sz
    offsets = (np.arange(n_sub) + 0.5) / n_sub * sz - sz / 2.0
    z = (centres[:, None] + offsets[None, :]).ravel()
    return Grid(x=x, y=y, z=z)


def make_phantom(spec: PhantomSpec | None = None, seed: int = 0, progress=None) -> Phantom:
    """Build the phantom described by ``spec``; the same spec and seed give the same voxels.  ``progress``
    (optional, :mod:`lungai.progress`): :data:`PHANTOM_STEPS` steps."""
    from lungai.progress import NullProgress, waiting

    progress = progress or NullProgress()
    spec = spec or PhantomSpec()
    spec.validate()
    rng = np.random.default_rng(seed)
    nz = spec.shape[2]
    n_sub = max(1, math.ceil(spec.spacing[2] / SUBSLICE_MM - 1e-6))
    grid = _grid(spec, n_sub)
    anat = build_anatomy(grid, rng)
    progress.update(1, "anatomy built")

    # the steps after the anatomy each say what they do as they start, then their seconds while they run
    # (:func:`lungai.progress.waiting`; QA demofollow68: in the demo's log "anatomy built" stood 2-3 s until "tumour
    # planted" - a caller's timer_running repeats only the message shown as it starts).  The same calls in the same
    # order on the same generator: the same voxels.
    planting = [k for k, given in (("tumour", spec.tumour is not None), ("effusion", spec.effusion)) if given]

    def plant() -> dict:
        planted: dict = {"tumour": None, "effusion": None}
        if spec.effusion:
            planted["effusion"] = add_effusion(anat, grid, spec.effusion_side, rng)
        if spec.tumour is not None:
            planted["tumour"] = plant_tumour(spec.tumour, anat, grid, rng)
        return planted

    planted = waiting(progress, "planting the " + " and ".join(planting), plant) if planting else plant()
    progress.update(1, " and ".join(k for k in ("tumour", "effusion") if planted[k] is not None) + " planted"
                    if any(v is not None for v in planted.values()) else "no tumour")

    def finish() -> tuple:
        # Partial volume: average the sub-slices of each slice; labels from the central sub-slice.
        ny, nx = grid.y.size, grid.x.size
        ct = anat.ct.reshape(nz, n_sub, ny, nx).mean(axis=1)
        labels = anat.labels.reshape(nz, n_sub, ny, nx)[:, n_sub // 2].copy()
        ct = ndimage.gaussian_filter(ct, sigma=(0.0, 0.5, 0.5))
        noise = ndimage.gaussian_filter(rng.standard_normal(ct.shape).astype(np.float32), 0.6)
        noise *= np.float32(spec.noise_hu / (float(noise.std()) or 1.0))
        ct = np.clip(np.rint(ct + noise), -1024, 3071).astype(np.int16)

        origin = (float(grid.x[0]), float(grid.y[0]), 0.0)
        ct_img = sitk.GetImageFromArray(ct)
        lab_img = sitk.GetImageFromArray(labels.astype(np.uint8))
        for img in (ct_img, lab_img):
            img.SetSpacing(tuple(float(v) for v in spec.spacing))
            img.SetOrigin(origin)
        return ct_img, lab_img, _describe(spec, seed, labels, planted)

    ct_img, lab_img, meta = waiting(progress, "averaging the slices, adding noise", finish)
    progress.update(1, "slices averaged, noise added")
    return Phantom(ct=ct_img, labels=lab_img, meta=meta)


def _describe(spec: PhantomSpec, seed: int, labels: np.ndarray, planted: dict) -> dict:
    voxel_ml = one_voxel_ml(spec.spacing)
    counts = np.bincount(labels.ravel(), minlength=len(L.NAMES))
    volumes = {L.NAMES[v]: round(float(counts[v]) * voxel_ml, 3) for v in L.NAMES if v != L.OUTSIDE}
    tumour = planted["tumour"]
    if tumour is not None:
        # the wedge and halo were measured on the sub-slice grid; the label map keeps each slice's central
        # sub-slice, so record the label map's volumes (what a user measures in meta.json's volumes_ml too)
        for key, label in (("atelectasis_ml", L.ATELECTASIS), ("ground_glass_ml", L.GROUND_GLASS)):
            if key in tumour:
                tumour[key] = volumes[L.NAMES[label]]
        mask = L.tumour_mask(labels)
        tumour["volume_ml"] = round(float(mask.sum()) * voxel_ml, 3)
        tumour["n_voxels"] = int(mask.sum())
        if mask.any():
            kji = np.argwhere(mask).mean(axis=0)
            tumour["centroid_index_xyz"] = [float(kji[2]), float(kji[1]), float(kji[0])]
    if planted["effusion"] is not None:
        planted["effusion"]["volume_ml"] = volumes[L.NAMES[L.EFFUSION]]
    # a hard case is flagged only when the label map holds it: a requested feature that found no room (an
    # atelectasis wedge with no free lung, an effusion outside the grid) is named in "warnings", not claimed
    requested = {
        "atelectasis": bool(spec.tumour is not None and spec.tumour.atelectasis),
        "pleural_effusion": bool(spec.effusion),
        "ground_glass": bool(spec.tumour is not None and spec.tumour.ground_glass),
    }
    label_of = {"atelectasis": L.ATELECTASIS, "pleural_effusion": L.EFFUSION, "ground_glass": L.GROUND_GLASS}
    hard = {"small_tumour": bool(tumour is not None and tumour["diameter_mm"] < 10.0)}
    warnings = []
    for key, wanted in requested.items():
        hard[key] = bool(wanted and counts[label_of[key]] > 0)
        if wanted and not hard[key]:
            warnings.append(f"{key.replace('_', ' ')} was requested but could not be planted (no "
                            f"{L.NAMES[label_of[key]]} voxel in the label map; it is not flagged as a hard case): "
                            "choose another location, side, diameter or seed")
    meta = {
        "generator": "lungai.synthetic.make_phantom",
        "seed": int(seed),
        "spec": spec.to_dict(),
        "coordinates": "LPS mm; CT int16 HU; image axes x=patient left, y=posterior, z=superior",
        "label_values": {str(k): v for k, v in L.NAMES.items()},
        "tumour": tumour,
        "effusion": planted["effusion"],
        "hard_case": hard,
        "is_hard_case": any(hard[k] for k in ("small_tumour", "atelectasis", "pleural_effusion")),
        "volumes_ml": volumes,
    }
    if warnings:
        meta["warnings"] = warnings
        from lungai.errors import InputNote

        for text in warnings:  # the CLI prints each as "warning: ..."; other callers get a UserWarning
            _warnings.warn(text, InputNote, stacklevel=3)
    return meta
