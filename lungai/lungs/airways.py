"""The central airways (trachea, main and lobar bronchi), which RT lung contours leave out.

RTOG 1106 lung atlas: the trachea, the main bronchi and the hilar structures are not lung; the
small intrapulmonary bronchi and vessels are.  Here the airway tree is grown from the trachea
and only its wide part - calibre of at least ``CENTRAL_AIRWAY_MM`` (7 mm: trachea 15-25 mm,
main bronchi 10-16 mm, lobar bronchi 7-12 mm; segmental bronchi are narrower) - is removed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import flood

from lungai.io.geometry import float32_spacing

CENTRAL_AIRWAY_MM = 7.0
TRACHEA_MIN_MM = 40.0   # the trachea runs 10-12 cm down to the carina; larynx air ends at the glottis
MAX_SEED_SLICES = 5
# distances equal to a threshold (e.g. 2 voxels of 1.4 mm = 3.5 - 0.7 mm) count as on it whatever the rounding
DISTANCE_TOLERANCE_MM = 1e-6
THRESHOLDS_HU = (-1000.0, -975.0, -950.0, -925.0, -900.0, -875.0, -850.0)


# what to do when the airways were not removed: the trachea and main bronchi then stay in the lung mask (a warning, not
# a note: ``LungResult.airways``); the one wording of every "airways not removed" message (``lungai lungs``, the cohort,
# the demo's report, the Segment lungs panel)
AIRWAYS_KEPT_FIX = ("the trachea and main bronchi stay in the lung mask, its volume, lung features"
                    " and dose metrics - give a CT covering the trachea above the carina (at least "
                    "40 mm of it, as a planning CT does), or check the mask and erase the airways from it (e.g. in "
                    "Slicer's Segment Editor)")
NO_TRACHEA_NOTE = "no trachea found in the upper slices; airways not removed: " + AIRWAYS_KEPT_FIX
LEAKED_NOTE = "airways not removed: region growing leaked into the lungs; " + AIRWAYS_KEPT_FIX


def trachea_candidates(inside_air: np.ndarray, smooth_hu: np.ndarray, spacing_xyz, x_mid: float,
                       top: int | None = None) -> list[tuple]:
    """Voxels (k, j, i) that may lie in the trachea: on the topmost slice at or below ``top``
    that has any, every small (50-900 mm2) air region within 40 mm of the midline, largest first.

    Arrays are [z, y, x] with z increasing superiorly (LPS-oriented).  Air in the larynx, the
    oesophagus or the lung apices looks the same on one slice: the caller keeps the candidate
    whose connected airway runs down to the carina (:func:`find_central_airways`).
    """
    sx, sy, _ = spacing_xyz
    px_area = sx * sy
    nz = inside_air.shape[0]
    start = nz - 1 if top is None else min(top, nz - 1)
    for k in range(start, max(nz // 3, 0) - 1, -1):
        lab, n = ndimage.label(inside_air[k])
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        areas = ndimage.sum_labels(np.ones_like(lab), lab, index=index) * px_area
        centres = ndimage.center_of_mass(np.ones_like(lab), lab, index=index)
        found = []
        for idx, area, (_, ci) in zip(index, areas, centres):
            if 50.0 <= area <= 900.0 and abs(ci - x_mid) * sx < 40.0:
                values = np.where(lab == idx, smooth_hu[k], np.inf)
                jj, ii = np.unravel_index(int(np.argmin(values)), values.shape)
                found.append((area, (k, int(jj), int(ii))))
        if found:
            return [seed for _, seed in sorted(found, key=lambda f: -f[0])]
    return []


def grow_airways(hu: np.ndarray, inside_air: np.ndarray, seed, voxel_ml: float,
                 max_ml: float = 250.0) -> tuple[np.ndarray | None, float | None]:
    """The connected dark region from ``seed`` at the highest threshold in ``THRESHOLDS_HU``
    that does not leak into the lungs (leak = more than ``max_ml``); (mask, threshold) or
    (None, None) when even -1000 HU leaks or the seed is not that dark.

    Raising the threshold step by step (explosion control) follows narrowings and partial-volume
    walls that a single fixed threshold stops at; lung parenchyma (about -850 HU and above)
    joins only at the last steps and is caught by the volume limit.

    The region is the seed's face-connected component of the dark voxels (``ndimage.label``'s connectivity), flood
    filled from the seed: the same voxels as labelling the whole crop, at the cost of the region (QA lungs67: seven
    labellings of the lungs' box took 0.4-0.5 s idle, 2-4 s of a loaded machine, of LUNG1-002 / -003's airway search).
    """
    best = (None, None)
    seed = tuple(int(s) for s in seed)
    for threshold in THRESHOLDS_HU:
        dark = (hu < threshold) & inside_air
        if not dark[seed]:
            continue
        region = flood(dark, seed, connectivity=1)
        if region.sum() * voxel_ml > max_ml:
            break
        best = (region, threshold)
    return best


def central_airways(airways: np.ndarray, spacing_xyz, min_diameter_mm: float = CENTRAL_AIRWAY_MM) -> np.ndarray:
    """The part of the airway tree at least ``min_diameter_mm`` wide (union of the balls of that
    diameter that fit inside it: a morphological opening computed with distance transforms)."""
    if not airways.any():
        return airways.copy()
    box = tuple(slice(max(int(a) - 2, 0), int(b) + 3) for a, b in
                zip(np.argwhere(airways).min(axis=0), np.argwhere(airways).max(axis=0)))
    crop = airways[box]
    sampling = float32_spacing(spacing_xyz)[::-1]
    radius = min_diameter_mm / 2.0
    # a voxel counts as "inside" half a voxel beyond its centre: compare with radius - half the in-plane size
    core = (ndimage.distance_transform_edt(crop, sampling=sampling)
            >= radius - 0.5 * min(sampling[1:]) - DISTANCE_TOLERANCE_MM)
    wide = np.zeros_like(crop)
    if core.any():
        wide = (ndimage.distance_transform_edt(~core, sampling=sampling) <= radius + DISTANCE_TOLERANCE_MM) & crop
    out = np.zeros_like(airways)
    out[box] = wide
    return out


def find_central_airways(hu: np.ndarray, inside_air: np.ndarray, smooth_hu: np.ndarray, spacing_xyz,
                         x_mid: float, voxel_ml: float, tick=None) -> tuple[np.ndarray | None, str]:
    """(mask of the trachea, main and lobar bronchi or None, a note for the user).

    ``tick`` (optional, e.g. a :class:`lungai.progress.Counter`'s): called once, when the airway tree has been grown
    from the trachea's candidates, before its wide part is worked out (two distance transforms of its box: 0.6 s idle,
    2-3 s of a loaded machine on LUNG1-003).

    The kept candidate must run at least ``TRACHEA_MIN_MM`` down (or on out of the scan's bottom slice) and hold at
    least 1 ml of airway ``CENTRAL_AIRWAY_MM`` wide: a shorter or thinner one (larynx, oesophagus, a lung's apex in a
    CT cropped through the midline) is no trachea - None, "no trachea found"."""
    best, leaked, top = None, False, None
    for _ in range(MAX_SEED_SLICES):
        seeds = trachea_candidates(inside_air, smooth_hu, spacing_xyz, x_mid, top)
        if not seeds:
            break
        lowest = seeds[0][0]
        for seed in seeds:
            region, threshold = grow_airways(hu, inside_air, seed, voxel_ml)
            if region is None:
                leaked = True
                continue
            z = np.flatnonzero(region.any(axis=(1, 2)))
            lowest = min(lowest, int(z[0]))
            extent_mm = (seed[0] - z[0]) * spacing_xyz[2]
            if best is None or extent_mm > best[0]:
                best = (extent_mm, region, threshold)
        if best is not None and best[0] >= TRACHEA_MIN_MM:
            break
        # larynx or oesophagus: look again below where that air ended
        top = lowest - 1
    if tick is not None:
        tick()
    wide = None
    if best is not None and (best[0] >= TRACHEA_MIN_MM or best[1][0].any()):
        wide = central_airways(best[1], spacing_xyz)
    if wide is None or wide.sum() * voxel_ml < 1.0:
        # shorter than a trachea (and not running on out of the scan's bottom slice), or nothing trachea-wide: the
        # larynx, the oesophagus or a lung's apex, not the trachea
        return None, (LEAKED_NOTE if leaked and best is None else NO_TRACHEA_NOTE)
    _, region, threshold = best
    return wide, (f"trachea, main and lobar bronchi removed ({wide.sum() * voxel_ml:.0f} ml of airways "
                  f"at least {CENTRAL_AIRWAY_MM:.0f} mm wide, < {threshold:.0f} HU)")


# an airway cut open by the image's border shows at least this much air (darker than ``THRESHOLDS_HU[2]``) on it
CUT_AIRWAY_MM2 = 20.0
# a main bronchus cut by the border holds, with its lobar and segmental bronchi, well under this (the whole tree from
# the trachea: 16-52 ml on LUNG1-002 / -003 and pyradiomics lung1 / lung2)
CUT_AIRWAY_ML = 50.0
# a main bronchus meets the border no further than this below the lowest slice of the airways found from the trachea
# (LUNG1-002 / -003 halves: 3-18 mm); a bulla at the lung's base (LUNG1-003 x < 256: 66-81 mm below) does not
CUT_AIRWAY_BELOW_MM = 45.0
# ... and is a tube: its longest extent at least this many times the diameter of a ball of its volume (bronchi cut by
# the border of the LUNG1-002 / -003 halves: 1.9-4.2; a round bulla cut by the border: 1.1-1.3)
CUT_AIRWAY_ELONGATION = 1.5


def _bronchus_shaped(region: np.ndarray, spacing_xyz, voxel_ml: float) -> bool:
    """Whether ``region`` is elongated like a bronchial tree (``CUT_AIRWAY_ELONGATION``), not round like a bulla."""
    points = np.argwhere(region)
    extent_mm = float(((points.max(axis=0) - points.min(axis=0) + 1) * np.array(spacing_xyz[::-1])).max())
    ball_mm = (6.0 * region.sum() * voxel_ml * 1000.0 / np.pi) ** (1.0 / 3.0)
    return extent_mm >= CUT_AIRWAY_ELONGATION * ball_mm


def airways_at_border(hu: np.ndarray, inside_air: np.ndarray, spacing_xyz, column: int, voxel_ml: float,
                      trachea: np.ndarray) -> np.ndarray:
    """The airways open to the image's border ``column`` (0 or -1) of a CT cropped through the mediastinum, besides the
    ``trachea`` (the airways found from it): each air region on that column darker than ``THRESHOLDS_HU[2]`` over at
    least ``CUT_AIRWAY_MM2``, grown like the trachea (:func:`grow_airways`), that stays under ``CUT_AIRWAY_ML`` up to
    the last threshold (-850 HU); their part at least ``CENTRAL_AIRWAY_MM`` wide.  The cut parts the trachea from a
    main bronchus (the carina beyond the cut, or the bronchus crossing the cut plane): growing from the trachea misses
    it, and the bronchus, open to the lung, was labelled lung (LUNG1-003 / LUNG1-002 cut at x >= 256: 15 / 24 ml).
    Lung touching the border (the lungs' anterior junction, the other lung's medial edge) is no airway: at -850 HU,
    about the density of lung, it grows into the lung (over the limit).  Nor is a walled air space (a bulla) the cut
    opened: a region counts only where bronchi can be - its face on the border reaching up to within
    ``CUT_AIRWAY_BELOW_MM`` of the ``trachea``'s lowest slice - and tube-shaped (``CUT_AIRWAY_ELONGATION``); a 2-13 ml
    bulla at the base of LUNG1-003's right lung, cut at x < 256, was removed as an airway."""
    _, sy, sz = float32_spacing(spacing_xyz)
    levels = np.flatnonzero(trachea.any(axis=(1, 2)))
    if levels.size == 0:
        return np.zeros(inside_air.shape, bool)
    lowest = int(levels[0]) - CUT_AIRWAY_BELOW_MM / sz     # slices increase superiorly
    col = column if column >= 0 else inside_air.shape[2] + column
    cut = trachea[:, :, col]
    face = inside_air[:, :, col] & (hu[:, :, col] < THRESHOLDS_HU[2]) & ~cut
    grown = np.zeros(inside_air.shape, bool)
    lab, n = ndimage.label(face)
    areas = np.bincount(lab.ravel(), minlength=n + 1) * sy * sz   # the face is [z, y]
    for idx in range(1, n + 1):
        if areas[idx] < CUT_AIRWAY_MM2 or np.flatnonzero((lab == idx).any(axis=1))[-1] < lowest - 1e-6:
            continue
        values = np.where(lab == idx, hu[:, :, col], np.inf)
        k, j = np.unravel_index(int(np.argmin(values)), values.shape)
        if grown[k, j, col]:
            continue
        region, threshold = grow_airways(hu, inside_air, (int(k), int(j), col), voxel_ml, max_ml=CUT_AIRWAY_ML)
        if region is not None and threshold == THRESHOLDS_HU[-1] and _bronchus_shaped(region, spacing_xyz, voxel_ml):
            grown |= region
    return central_airways(grown, spacing_xyz)
