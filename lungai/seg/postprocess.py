"""Tumour components from the mean probability: small specks dropped, the seed's component kept, and
in automatic (whole-lung) mode tube-like components and components lying mostly outside the lungs
dropped.

Elongation of a component = sqrt(largest / smallest eigenvalue) of the covariance of its voxel
positions in mm (each voxel counted as a box: spacing^2 / 12 is added, so one-slice components stay
finite); a sphere gives 1, a vessel segment many times more.  Lung tumours are compact: of the 779
LIDC-IDRI reference nodule masks, 99 % have an elongation <= 3.05 (max 4.7); of 60 synthetic
phantom tumours (incl. atelectasis), max 4.07.  ``MAX_ELONGATION`` = 4.0 keeps 99.7 % of the LIDC
nodules.  In automatic mode the model, trained on nodule-centred crops, also marks vessels and hilar
structures; most of them are more elongated than that and are dropped from the tumour mask (they stay
visible in the probability map).  The threshold was set from the reference masks, not from the
automatic-mode results it is evaluated on (docs/segmentation.md).

Outside the lungs: automatic mode looks for tumours *of the lung*; the lung mask of
:mod:`lungai.lungs` keeps tumours inside the lung they grow in (on the phantoms: juxta-pleural and
juxta-vascular tumours 96-100 % inside, a 60 mm tumour abutting the mediastinum 66 %), while the
model's false marks on the mediastinal border and chest wall lie outside it.  A component needs at
least ``MIN_IN_LUNGS`` of its volume inside the lungs to stay.  A tumour invading the mediastinum or
chest wall that lies mostly outside the lung mask is therefore not found automatically: use a seed
point (docs/segmentation.md).

What is left are *candidates*, ranked by probability mass (:func:`rank_components`).  Automatic mode
segments the top candidate and lists the others (centre, volume, mean probability) so a reader can
check them or segment one with a seed point; ``--all-regions`` keeps them all in the mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lungai.volume import voxel_ml as one_voxel_ml

MIN_COMPONENT_ML = 0.01
MAX_ELONGATION = 4.0
MIN_IN_LUNGS = 0.5


def elongation(mask: np.ndarray, spacing_zyx) -> float:
    """sqrt(largest / smallest principal variance) of a (z, y, x) mask's voxel positions in mm."""
    sp = np.asarray(spacing_zyx, dtype=float)
    pts = np.argwhere(mask) * sp
    if len(pts) < 2:
        return 1.0
    ev = np.linalg.eigvalsh(np.cov(pts.T) + np.diag(sp ** 2 / 12.0))
    return float(np.sqrt(ev[-1] / ev[0]))


def seed_inside(seed_idx, shape) -> np.ndarray:
    """The seed point (continuous z, y, x index) moved to the nearest point inside an array of ``shape``."""
    return np.array([np.clip(float(v), 0, n - 1) for v, n in zip(seed_idx, shape)])


def seed_voxel(point) -> tuple:
    """The voxel (z, y, x index) holding the seed point ``point`` (a continuous index inside the array)."""
    return tuple(int(v) for v in np.round(point))


def seed_distance_mm(binary: np.ndarray, seed_idx, spacing_zyx) -> float | None:
    """Distance (mm) from the seed point (its continuous z, y, x index into ``binary``: the point clicked, not the
    centre of the voxel holding it) to the nearest voxel centre of the mask: 0 when the mask holds the seed's voxel;
    None without a seed or with an empty mask.  A seed outside the array is measured from the nearest point inside
    it.  Before, the distance was measured from the centre of the seed's voxel, up to half a voxel off the point
    (QA on LUNG1-003, 3 mm slices: 9.9 mm reported for 8.8 mm; on 5 mm slices up to 2.5 mm against the 10 mm
    ``SEED_REACH_MM``)."""
    if seed_idx is None or not binary.any():
        return None
    point = seed_inside(seed_idx, binary.shape)
    if binary[seed_voxel(point)]:                            # the voxel holding it
        return 0.0
    pts = np.argwhere(binary).astype(float)
    d = np.sqrt((((pts - point) * np.asarray(spacing_zyx, float)) ** 2).sum(1)).min()
    return float(d)


def keep_components(binary: np.ndarray, spacing_zyx, seed_idx=None, max_elongation: float | None = None,
                    lungs: np.ndarray | None = None) -> tuple:
    """(kept mask, {"n_small": .., "n_elongated": .., "elongated_ml": .., "n_outside_lungs": .., "outside_lungs_ml": ..}).

    Drops components < ``MIN_COMPONENT_ML``; with ``max_elongation`` those more elongated; with
    ``lungs`` (bool mask like ``binary``) those less than ``MIN_IN_LUNGS`` inside it; with a seed
    (z, y, x index; continuous: the point given) keeps only the component at, or nearest to (in mm, ``spacing_zyx``:
    :func:`seed_distance_mm`), the seed point.
    """
    voxel_ml = one_voxel_ml(spacing_zyx[::-1])     # x, y, z: the one voxel volume (lungai.volume)
    dropped = {"n_small": 0, "n_elongated": 0, "elongated_ml": 0.0, "n_outside_lungs": 0, "outside_lungs_ml": 0.0}
    lab, n = ndimage.label(binary)
    if n == 0:
        return binary.astype(bool), dropped
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(binary, lab, idx) * voxel_ml
    keep = [int(i) for i, s in zip(idx, sizes) if s >= MIN_COMPONENT_ML]
    dropped["n_small"] = n - len(keep)

    def drop_unless(passes, kind: str) -> list:
        """The kept labels that pass; the others counted in ``dropped`` as n_<kind> / <kind>_ml."""
        out = []
        for i in keep:
            if passes(i):
                out.append(i)
            else:
                dropped[f"n_{kind}"] += 1
                dropped[f"{kind}_ml"] += float(sizes[i - 1])
        return out

    if max_elongation is not None and keep:
        objects = ndimage.find_objects(lab)
        keep = drop_unless(lambda i: elongation(lab[objects[i - 1]] == i, spacing_zyx) <= max_elongation, "elongated")
    if lungs is not None and keep:
        inside = ndimage.sum_labels(lungs, lab, idx)
        keep = drop_unless(lambda i: inside[i - 1] >= MIN_IN_LUNGS * sizes[i - 1] / voxel_ml, "outside_lungs")
    if seed_idx is not None and keep:
        at = int(lab[seed_voxel(seed_inside(seed_idx, lab.shape))])
        if at in keep:
            keep = [at]
        else:      # nearest to the seed point in mm, as seed_distance_mm measures it (one rule)
            keep = [min(keep, key=lambda c: seed_distance_mm(lab == c, seed_idx, spacing_zyx))]
    dropped["elongated_ml"] = round(dropped["elongated_ml"], 4)
    dropped["outside_lungs_ml"] = round(dropped["outside_lungs_ml"], 4)
    return np.isin(lab, keep), dropped


def rank_components(binary: np.ndarray, mean_p: np.ndarray, spacing_zyx) -> tuple:
    """(label array, candidates) - the components of ``binary`` ranked by probability mass.

    Probability mass = sum of the mean probability over the component's voxels, in ml: large regions
    the members agree on come first, small or doubtful ones last.  Each candidate: {"label",
    "volume_ml", "probability_mass_ml", "mean_probability", "centre_zyx"} (centre = voxel index).
    """
    voxel_ml = one_voxel_ml(spacing_zyx[::-1])     # x, y, z: the one voxel volume (lungai.volume)
    lab, n = ndimage.label(binary)
    if n == 0:
        return lab, []
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(binary, lab, idx)
    mass = ndimage.sum_labels(mean_p, lab, idx)
    centres = ndimage.center_of_mass(binary, lab, idx)
    cands = [{"label": int(i), "volume_ml": float(s) * voxel_ml, "probability_mass_ml": float(m) * voxel_ml,
              "mean_probability": float(m / s), "centre_zyx": tuple(float(c) for c in ctr)}
             for i, s, m, ctr in zip(idx, sizes, mass, centres)]
    cands.sort(key=lambda c: -c["probability_mass_ml"])
    return lab, cands
