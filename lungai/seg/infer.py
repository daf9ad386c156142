"""Inference: ensemble members (or MC-dropout passes) over the ROI, mapped onto the input grid.

All members run as one batch inside a single MONAI ``sliding_window_inference`` that only
covers the cropped, resampled ROI; their foreground probabilities give the mean probability,
the voxel uncertainty and the case features behind the calibrated confidence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.errors import counted
from lungai.io.geometry import from_lps, to_lps
from lungai.io.validate import check_ct
from lungai.progress import Counter, NullProgress, SubProgress, waiting
from lungai.seg import preprocess as pp
from lungai.seg.choice import DISAGREE, ModelChoice, segment_with_choice
from lungai.seg.config import MC_PASSES_UNUSED_NOTE, check_mc_passes, with_result_aliases
from lungai.seg.confidence import (MIN_CALIBRATION_CASES, calibration_mc_passes, case_features, confidence,
                                   empty_result_features, kept_region_features, model_mc_passes, uses_flip_check)
from lungai.seg.postprocess import MAX_ELONGATION, keep_components, rank_components, seed_distance_mm  # noqa: F401
from lungai.seg.predict import flip_consistency, predict_probs
from lungai.seg.resources import DEFAULT_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME
from lungai.seg.uncertainty import summarize_maps
from lungai.volume import mask_volume_ml, voxel_ml

MAX_CANDIDATES_LISTED = 20     # automatic mode: candidate regions written to result.json
RANKING = "tumour regions: ranking the candidates"     # automatic mode: the bar's message while they are ranked
MAPS_FEATURES = "confidence features of the maps"      # a whole image / the lungs' box: the bar's message meanwhile
# the bar's message while a seed's / an ROI box's distance to the lungs is measured (pp.far_seed_note)
SEED_TO_LUNGS = {"seed": "the seed's distance to the lungs", "roi": "the ROI box's distance to the lungs"}
# Seed / ROI mode: the box grows until the tumour no longer touches its edge.  A face is "touched" when
# the tumour comes within EDGE_MM of it; each touched face moves out by GROW_FRACTION of the box's extent
# on that axis (at least GROW_MIN_MM), up to MAX_BOX_MM per axis (a 150 mm tumour + margins) and
# MAX_PASSES inference passes.  Faces on the image edge cannot move: a tumour touching one is cut by the
# image and flagged.
EDGE_MM = 3.0
GROW_FRACTION = 0.5
GROW_MIN_MM = 20.0
MAX_BOX_MM = 240.0
MAX_PASSES = 5
MAX_SCALE = 3            # coarsest model grid: 3x the model spacing (3 x 3 x 6 mm for the default model)
FINE_BOX_FACTOR = 1.5    # ROI mode: the grid is coarsened when the ROI exceeds 1.5 seed boxes per step
TINY_ML = 1.0            # seed mode: a first-pass tumour this small with the seed in a large dense region
SEED_REACH_MM = 10.0     # seed mode: the tumour the box must hold comes this close to the seed
NOT_HELD_RULE = "first"  # no pass's box held the tumour: keep the "first" pass that found one ("most confident": before)
RECENTRE = True          # seed mode: a tumour cut by one face per axis is looked at again on the same grid with the box
                         # moved onto it, before a coarser grid (a click off the tumour's centre; chosen on validation)
RECENTRE_MARGIN_MM = 10.0   # ... the moved box keeps this much room on the sides where the tumour was not cut
RECENTRE_MIN_CUT = 0.25     # ... and only when the tumour itself is cut: its cross-section within RECENTRE_BAND_MM of
RECENTRE_BAND_MM = 10.0     # its end towards a touched face is >= this fraction of its largest cross-section along
                            # that axis (not a thin strand the region runs on to the face; chosen on validation)
GREW_TO_EDGE = "the region grew to the image edge"      # stop reason: see grow_and_predict
NO_LONGER_TOUCHES = "the tumour no longer touches the box edge"   # ... after an earlier pass's tumour touched it
DOES_NOT_TOUCH = "the tumour does not touch the box edge"         # ... no pass's tumour touched it
RAN_ON_STOPS = ("stopped after", "the box reached", GREW_TO_EDGE)   # stop reasons of a box that never held the tumour
RAN_ON = "no box held the tumour (it may run on into a neighbouring organ)"
SEED_AWAY = "the tumour mask lies away from the seed point"
DENSE_HU = -300.0        # ... (soft tissue reaching the box edge) is checked on a coarser grid
FACES = pp.FACES


@dataclass
class SegResult:
    tumour: sitk.Image               # uint8 0/1 on the input grid
    probability: sitk.Image          # float32 mean foreground probability
    entropy: sitk.Image              # float32 predictive entropy (bits)
    mutual_information: object       # float32 image or None (single member, no MC)
    info: dict


def choose_box(ct, cfg, roi_lps=None, seed_lps=None, whole=None, progress=None) -> pp.Box:
    """The box segmented: a cube round the seed, the user's ROI (+ margin), the whole image (a crop) or the lungs'
    box (automatic mode; ``progress``: the lungs' search shown on it, :func:`lungai.seg.preprocess.box_from_lungs`)."""
    if seed_lps is not None:
        return pp.box_from_seed(ct, seed_lps, cfg.seed_box_mm)
    if roi_lps is not None:
        return pp.roi_box(ct, roi_lps, cfg.roi_margin_mm)
    if whole or (whole is None and pp.is_crop(ct)):
        return pp.whole_box(ct, "whole image (crop)")
    return pp.box_from_lungs(ct, cfg.roi_margin_mm, progress=progress)


def touched_faces(mask_zyx: np.ndarray, spacing_xyz, margin_mm: float = EDGE_MM) -> list:
    """Faces ("x-", "x+", ...) of the array that ``mask_zyx`` comes within ``margin_mm`` of."""
    return pp.touched_faces(mask_zyx, spacing_xyz, margin_mm)


def tumour_touches(target: np.ndarray, mean_model: np.ndarray, model_img: sitk.Image, crop_img: sitk.Image,
                   spacing_xyz=None) -> list:
    """Faces of the box that a pass's tumour comes within ``EDGE_MM`` of, on either grid: the model grid's
    ``target`` (z, y, x; ``spacing_xyz``: its spacing, default ``model_img``'s) or, on the crop's input grid the mask
    is written on, the regions of the mean probability there (``mean_model`` resampled as :func:`lungai.seg.preprocess.
    to_input`) > 0.5 that hold target voxels - the mask ``describe_written_mask``'s ``mask_touches`` measures.  QA: the
    coarser model grid's samples stop short of the box's faces, so a pass said it touched nothing (and held the
    tumour) while its mask on the CT touched the box's x- face."""
    faces = set(touched_faces(target, spacing_xyz if spacing_xyz is not None else model_img.GetSpacing()))
    if target.any():
        written = pp.to_input(mean_model, model_img, crop_img) > 0.5
        lab, n = ndimage.label(written)
        if n:
            t = sitk.GetImageFromArray(target.astype(np.uint8))
            t.CopyInformation(model_img)
            ids = np.unique(lab[pp.mask_on(t, crop_img) & written])
            faces |= set(touched_faces(np.isin(lab, ids[ids > 0]), crop_img.GetSpacing()))
    return sorted(faces, key=FACES.index)


EDGE_ONLY = "the tumour touches the image edge only"    # the growth's stop reason (segment_tumour says when the
                                                        # probability fades before that edge: not counted as cut)
EDGE_PROBABILITY = 0.2   # a face the mask only comes near is "possibly cut" where the mean probability on the edge
                         # plane under the mask is above this (pp.edge_probability)


def edge_gaps_mm(binary: np.ndarray, spacing_xyz, faces) -> dict:
    """{face: mm between the mask ``binary`` (z, y, x) and its array's ``face`` (the voxels between them)}."""
    if not binary.any():
        return {}
    idx = np.argwhere(binary)
    lo, hi = idx.min(0)[::-1], idx.max(0)[::-1]            # (x, y, z)
    size = np.array(binary.shape[::-1])
    out = {}
    for f in faces:
        a = "xyz".index(f[0])
        out[f] = float((lo[a] if f[1] == "-" else size[a] - 1 - hi[a]) * float(spacing_xyz[a]))
    return out


def image_edge_faces(box: pp.Box, ct: sitk.Image) -> set:
    """The box's faces that lie on the image's edge (they cannot move outwards)."""
    size = ct.GetSize()
    out = set()
    for a, axis in enumerate("xyz"):
        if box.lo[a] <= 0:
            out.add(axis + "-")
        if box.hi[a] >= size[a]:
            out.add(axis + "+")
    return out


def grown_box(box: pp.Box, ct: sitk.Image, faces) -> pp.Box:
    """``box`` with each face in ``faces`` moved out (GROW_FRACTION of the extent, >= GROW_MIN_MM), clipped
    to the image and to MAX_BOX_MM per axis; the same box when nothing can move."""
    sp, size = np.array(ct.GetSpacing()), np.array(ct.GetSize())
    lo, hi = np.array(box.lo), np.array(box.hi)
    for a, axis in enumerate("xyz"):
        room = int(MAX_BOX_MM / sp[a]) - (hi[a] - lo[a])
        if room <= 0:
            continue
        step = int(np.ceil(max(GROW_MIN_MM, GROW_FRACTION * (hi[a] - lo[a]) * sp[a]) / sp[a]))
        want = [f for f in (axis + "-", axis + "+") if f in faces]
        step = min(step, room // max(1, len(want)))
        if axis + "-" in want:
            lo[a] = max(0, lo[a] - step)
        if axis + "+" in want:
            hi[a] = min(size[a], hi[a] + step)
    return pp.Box(tuple(int(v) for v in lo), tuple(int(v) for v in hi), box.mode, box.region, box.lungs)


def cut_fractions(target: np.ndarray, spacing_xyz, faces) -> dict:
    """{face: the tumour ``target``'s (z, y, x) largest cross-section within RECENTRE_BAND_MM of its end towards
    ``face``, as a fraction of its largest cross-section perpendicular to that axis}: near 1 where a face cuts the
    tumour itself, small where only a thin strand of the region runs on to the face (real CT lung1: a 1.4 ml nodule's
    region ran on as a 20-40 voxel strand to the first box's inferior face, the box was moved onto the strand and
    0.9 ml of it was kept)."""
    out = {}
    if not target.any():
        return out
    for f in faces:
        a = "xyz".index(f[0])
        areas = target.sum(axis=tuple(k for k in range(3) if k != 2 - a)).astype(float)
        nz = np.flatnonzero(areas)
        band = max(1, int(np.ceil(RECENTRE_BAND_MM / float(spacing_xyz[a]))))
        end = areas[nz[0]:nz[0] + band] if f[1] == "-" else areas[max(0, nz[-1] + 1 - band):nz[-1] + 1]
        out[f] = float(end.max() / areas.max())
    return out


def recentred_box(box: pp.Box, ct: sitk.Image, target: np.ndarray, model_img: sitk.Image, touched) -> pp.Box | None:
    """Seed mode: ``box`` (same size) moved onto the pass's tumour ``target`` (z, y, x on ``model_img``) that it cuts
    (``touched``: the faces the tumour comes near): on an axis with one face touched, the box starts
    RECENTRE_MARGIN_MM before the tumour's other side (as much room as the box has towards the cut); on an axis with
    none, centred on it; clipped to the image.  None when the tumour touches both faces of an axis (larger than the
    box there: a coarser grid must look), when it is empty, or when the box would move by less than the margin (the
    same look again).  A click off the tumour's centre puts it at the box's edge; the coarser grid the growth goes to
    next sees the neighbouring organs as well and ran on into them (QA: a 48 ml paravertebral tumour clicked 14 mm
    off its centre came back as 287 ml)."""
    if not target.any():
        return None
    idx = np.argwhere(target)
    lo_m, hi_m = idx.min(0)[::-1], idx.max(0)[::-1]        # (x, y, z) on the model grid
    corners = [[float(c[a]) for a, c in enumerate(sel)] for sel in
               [(x, y, z) for x in (lo_m, hi_m) for y in (lo_m, hi_m) for z in (lo_m, hi_m)]]
    pts = np.array([ct.TransformPhysicalPointToContinuousIndex(model_img.TransformContinuousIndexToPhysicalPoint(c))
                    for c in corners])
    t_lo, t_hi = pts.min(0), pts.max(0)                      # the tumour's extent in CT voxel indices (x, y, z)
    sp, size = np.array(ct.GetSpacing()), np.array(ct.GetSize())
    lo, hi = np.array(box.lo), np.array(box.hi)
    new_lo = lo.copy()
    for a, axis in enumerate("xyz"):
        n, m = hi[a] - lo[a], RECENTRE_MARGIN_MM / sp[a]
        minus, plus = axis + "-" in touched, axis + "+" in touched
        if minus and plus:
            return None
        start = (t_lo[a] - m if plus else t_hi[a] + m - n if minus else (t_lo[a] + t_hi[a]) / 2.0 - n / 2.0)
        new_lo[a] = int(np.clip(np.round(start), 0, max(0, size[a] - n)))
    if np.all(np.abs(new_lo - lo) * sp < RECENTRE_MARGIN_MM):
        return None
    return pp.Box(tuple(int(v) for v in new_lo), tuple(int(v) for v in new_lo + (hi - lo)), box.mode, box.region,
                  box.lungs)


# result.json's millimetres - LPS coordinates (box corners, seed point, candidate centres), box sizes, model spacings -
# to 0.01 mm, all through :func:`mm` (QA: roi_lps_mm held -319.9999999999999 next to the passes' rounded -320.0)
MM_DECIMALS = 2


def mm(values):
    """``values`` (a number, or nested sequences of them) as result.json records millimetres: plain floats rounded
    to :data:`MM_DECIMALS` (no float noise, no -0.0).  For the record only: the box the model uses is not rounded."""
    if isinstance(values, (list, tuple, np.ndarray)):
        return [mm(v) for v in values]
    return round(float(values), MM_DECIMALS) + 0.0


def _box_size_mm(ct: sitk.Image, box: pp.Box) -> list:
    """The box's extent (mm) along the CT's voxel axes: voxels x spacing (result.json's ``roi_size_mm``)."""
    return mm([n * s for n, s in zip(box.size, ct.GetSpacing())])


def _box_lps(ct: sitk.Image, box: pp.Box) -> list:
    """The box's corner voxels' centres (LPS mm; result.json's ``roi_lps_mm``)."""
    c0 = ct.TransformIndexToPhysicalPoint([int(v) for v in box.lo])
    c1 = ct.TransformIndexToPhysicalPoint([int(v) - 1 for v in box.hi])
    return mm([c0, c1])


# automatic mode looks only inside the lungs' box (the lungs + roi_margin_mm,
# :func:`lungai.seg.preprocess.box_from_lungs`; inside it only at the lungs + that margin): result.json's
# ``unsearched_ct_mm`` gives the CT beyond each face of the box, named by anatomy (the faces of the LPS-reordered CT:
# x- the patient's right, y- anterior, z- inferior).  QA autofollow70 on LUNG1-003: its gtv-2, a 39 ml node wholly
# above the lung apex, lay in 78 mm of CT above the box that was never looked at, and only roi_lps_mm recorded the box.
UNSEARCHED_FACES = {"z+": "superior", "z-": "inferior", "x-": "right", "x+": "left", "y-": "anterior",
                    "y+": "posterior"}
UNSEARCHED_WORDS = {"superior": "above", "inferior": "below"}
# the note names a superior / inferior face leaving more than this much CT unsearched: room for a whole enlarged
# lymph node (short axis >= 10 mm, RECIST 1.1) with a 5 mm slice on each side of it, so the slice or two a CT runs
# past the box at the lung apex or base is not said.  Only the z faces: in-plane the box spans the thorax rib to rib
# and the CT always runs on tens of mm into chest wall, arms, table and air (LUNG1-002 / LUNG1-003: 86-166 mm on each
# x / y face) - a note there would stand on every CT and say nothing; the field still records them
UNSEARCHED_NOTE_MM = 20.0
# the note's fix, in lungai segment's words (lungai cohort, which takes no seed point, replaces it: cohort_seg_note)
UNSEARCHED_HINT = ("fix: give a seed point or an ROI box on it (lungai segment --seed-point / --roi; panel: Mode "
                   "seed / roi)")


def unsearched_ct_mm(box: pp.Box, ct: sitk.Image) -> dict:
    """The CT (mm: voxels x spacing along its axes) beyond each face of ``box``, by anatomical face name
    (:data:`UNSEARCHED_FACES`; ``ct`` in LPS order, as :func:`segment_tumour` reorders it)."""
    sp, size = ct.GetSpacing(), ct.GetSize()
    out = {}
    for f, name in UNSEARCHED_FACES.items():
        a = "xyz".index(f[0])
        out[name] = mm((box.lo[a] if f[1] == "-" else size[a] - box.hi[a]) * sp[a])
    return out


def unsearched_note(unsearched: dict, margin_mm: float) -> str | None:
    """The note for a lungs' box whose superior / inferior face leaves more than :data:`UNSEARCHED_NOTE_MM` of CT
    unsearched (``margin_mm``: the box's margin round the lungs), or None."""
    far = [f"{unsearched[f]:.0f} mm {UNSEARCHED_WORDS[f]}" for f in UNSEARCHED_WORDS
           if unsearched[f] > UNSEARCHED_NOTE_MM]
    if not far:
        return None
    return (f"automatic mode searched the lungs and {margin_mm:g} mm round them; the CT reaches {' and '.join(far)} "
            f"that box (a tumour or node there is not looked for) - {UNSEARCHED_HINT}")


def _model_pass(ct, box, cfg, nets, method, mc_passes, seed, flip_check: bool = False, progress=None) -> tuple:
    """(crop image, model-grid image, (M, z, y, x) probabilities on the model grid, flip consistency or None)
    for one box; ``flip_check``: the box is also run mirrored along z, y and x (3 more passes) and the mean
    Dice between those masks and the unflipped one is returned (:func:`lungai.seg.predict.flip_consistency`).
    ``progress``: the network runs counted on it (message-only updates, :func:`predict_probs`)."""
    crop_img = pp.crop(ct, box)
    arr, model_img = pp.to_model(crop_img, cfg)
    region = pp.region_on(box, model_img)       # automatic mode: lungs + margin only
    flip = None
    if flip_check:
        probs, plain, flipped = predict_probs(nets, arr, cfg, method, mc_passes, seed, flip_check=True,
                                              progress=progress)
        flip = flip_consistency(plain, flipped, region)
    else:
        probs = predict_probs(nets, arr, cfg, method, mc_passes, seed, progress=progress)
    if region is not None:
        probs *= region[None]
    return crop_img, model_img, probs, flip


def _target_on_model(probs, model_img, cfg, seed_lps, inside_roi) -> np.ndarray:
    """The tumour the box must hold, on the model grid: the seed's component (seed mode) or the largest
    component overlapping the user's ROI (ROI mode)."""
    binary = probs.mean(0) > 0.5
    seed_idx = None
    if seed_lps is not None:
        ijk = np.round(model_img.TransformPhysicalPointToContinuousIndex([float(v) for v in seed_lps])).astype(int)
        ijk = np.clip(ijk, 0, np.array(model_img.GetSize()) - 1)
        seed_idx = (ijk[2], ijk[1], ijk[0])
    kept, _ = keep_components(binary, cfg.spacing[::-1], seed_idx)
    if seed_idx is not None and kept.any():       # a component far from the seed is not the seeded tumour
        dist = ndimage.distance_transform_edt(~kept, sampling=cfg.spacing[::-1])[seed_idx]
        if dist > SEED_REACH_MM:
            kept = np.zeros_like(kept)
    if seed_idx is None and kept.any():
        lab, n = ndimage.label(kept)
        sizes = ndimage.sum_labels(kept, lab, np.arange(1, n + 1))
        over = ndimage.sum_labels(inside_roi, lab, np.arange(1, n + 1)) if inside_roi is not None else sizes
        sizes = np.where(over > 0, sizes, 0)
        kept = lab == int(np.argmax(sizes)) + 1 if sizes.max() > 0 else np.zeros_like(kept)
    return kept


def grid_scale_for(extent_mm: float, seed_box_mm: float) -> int:
    """The model grid (1, 2 or 3 x the model spacing) on which seed mode's growing box ends for a tumour of
    this largest extent: the first whose seed cube holds it with ``EDGE_MM`` to spare on both sides.  Training
    shows large tumours on that grid (``lungai.seg.dataset.implanted_cases``)."""
    for s in range(1, MAX_SCALE + 1):
        if extent_mm + 2.0 * EDGE_MM <= seed_box_mm * s:
            return s
    return MAX_SCALE


def scaled(cfg, scale: int):
    """``cfg`` with the model grid ``scale`` times coarser (the tumour looks ``scale`` times smaller)."""
    return cfg if scale == 1 else dataclasses.replace(cfg, spacing=tuple(float(v) * scale for v in cfg.spacing))


def _seed_in_large_dense_region(ct, box, seed_lps) -> bool:
    """True when the seed lies in soft tissue (> DENSE_HU) that reaches the box edge: a tumour too large
    for the box, or one fused with the mediastinum / chest wall - worth a coarser look."""
    arr = sitk.GetArrayFromImage(pp.crop(ct, box))     # a copy: a view of the temporary crop would outlive it
    ijk = np.round(ct.TransformPhysicalPointToContinuousIndex([float(v) for v in seed_lps])).astype(int)
    k, j, i = (int(c) for c in np.clip(ijk[::-1] - np.array(box.lo[::-1]), 0, np.array(arr.shape) - 1))
    dense = ndimage.binary_opening(arr > DENSE_HU, iterations=1)
    if not dense[k, j, i]:
        return False
    lab, _ = ndimage.label(dense)
    return bool(touched_faces(lab == lab[k, j, i], ct.GetSpacing(), 0.0))


def map_features(probs, cfg, flip, kept=None, automatic: bool = False) -> dict:
    """The confidence features of one pass (model grid ``cfg``): the box's maps, the kept region's (``kept``: the
    tumour the box must hold, model grid - the seed's component / the largest one in the user's box; a whole image:
    every region the post-processing keeps; None in automatic mode) and the flip consistency when it ran."""
    ml = voxel_ml(cfg.spacing)
    feats = case_features(probs, ml, flip, automatic=automatic)
    feats.update(kept_region_features(probs, kept, ml, feats))
    return feats


def grow_and_predict(ct, box, cfg, nets, meta, method, mc_passes, seed, seed_lps=None, roi_mask=None,
                     grow: bool = True, bar=None, flip_check: bool = False) -> tuple:
    """Seed / ROI mode: run the model on ``box``; while the tumour touches a face of the box that can move
    (or, seeded, the model finds next to nothing although the seed lies in soft tissue reaching the box
    edge), look again on a coarser model grid (``scale`` 2, 3: a large tumour then looks as small as the
    ones the model learned from) and a larger box, then grow the box itself.  Of the passes with a tumour,
    the one with the highest confidence is kept.  Returns (box, crop image, model image, probabilities,
    config of the kept pass, its confidence features (:func:`map_features`), growth record)."""
    passes, runs, reason = [], [], "growth off"
    scale, recentred = 1, set()     # the grids on which the box was moved onto the tumour (once per grid)
    before_move = None              # (box, faces it could grow) of the pass before a move
    first_edges = image_edge_faces(box, ct)     # image-edge faces of the first box (a tumour there is cut by the scan)
    grew_out = False                            # an earlier pass's region touched a face that could move
    if box.mode == "roi" and grow:          # the user's box says how large the tumour is
        scale = int(min(MAX_SCALE, max(1, np.ceil(max(n * s for n, s in zip(box.size, ct.GetSpacing()))
                                                  / (FINE_BOX_FACTOR * cfg.seed_box_mm)))))
    while True:
        c = scaled(cfg, scale)
        crop_img, model_img, probs, flip = _model_pass(ct, box, c, nets, method, mc_passes, seed, flip_check,
                                                       SubProgress(bar, f"pass {len(passes) + 1} (grid x{scale}):"))
        target = _target_on_model(probs, model_img, c, seed_lps, mask_for_roi(roi_mask, model_img, ct))
        touched = tumour_touches(target, probs.mean(0), model_img, crop_img, c.spacing)
        edges = image_edge_faces(box, ct)
        movable = [f for f in touched if f not in edges]
        # grown out to an image edge the first box did not reach: the region ran on until the scan ended (on a CT
        # cropped round the tumour, into the mediastinum / diaphragm) - treated like a region that runs on into a
        # neighbouring organ on a whole CT, not as a box that holds the tumour
        # (also a pass that still touches a face that can move: its region goes on growing there - its touching
        # the image edge is no sign of a tumour cut by the scan)
        reached = [f for f in touched if f in edges and f not in first_edges] if grew_out or movable else []
        ml = mask_volume_ml(target, c.spacing)
        feats = map_features(probs, c, flip, target)
        conf = confidence(feats, meta.get("calibration", {}).get(method))
        passes.append({"pass": len(passes) + 1, "scale": scale, "model_spacing_mm": mm(c.spacing),
                       "roi_lps_mm": _box_lps(ct, box),
                       "roi_size_mm": _box_size_mm(ct, box),
                       "tumour_ml": round(ml, 3), "touches": touched, "confidence": round(conf, 4), "kept": False})
        runs.append((box, crop_img, model_img, probs, c, feats))
        if bar is not None:
            bar.update(0, f"pass {len(passes)} (grid x{scale}): box {passes[-1]['roi_size_mm']} mm, "
                          f"tumour {ml:.1f} ml, touches {touched or 'nothing'}")
        if not grow:
            break
        too_small = (len(passes) == 1 and seed_lps is not None and ml < TINY_ML
                     and _seed_in_large_dense_region(ct, box, seed_lps))
        passes[-1]["holds_tumour"] = bool(target.any() and not movable and not too_small and not reached)
        if reached:
            passes[-1]["grew_to_image_edge"] = reached
        moved_from, before_move = before_move, None
        if moved_from is not None and not passes[-1]["holds_tumour"]:
            # the moved box did not hold the tumour either (nothing there, or cut again): go on from the box before
            # the move, as without it
            box, movable = moved_from
        elif not movable and not too_small:
            # "no longer" only after an earlier pass's tumour touched a face (QA: a single pass that never touched
            # the box said "the tumour no longer touches the box edge")
            reason = (NO_TUMOUR_FOUND if not target.any() else
                      (NO_LONGER_TOUCHES if any(q["touches"] for q in passes[:-1]) else DOES_NOT_TOUCH)
                      if not touched else
                      f"{GREW_TO_EDGE} ({', '.join(reached)}) after the box grew: it may run on into a neighbouring "
                      "organ (or be cut by the scan)" if reached else
                      EDGE_ONLY)
            break
        grew_out = grew_out or bool(movable)
        if len(passes) >= MAX_PASSES + len(recentred):
            reason = f"stopped after {len(passes)} passes; the tumour still touches the box edge"
            break
        try_move = RECENTRE and seed_lps is not None and scale not in recentred and movable and not too_small
        if try_move:
            cut = cut_fractions(target, c.spacing, movable)
            passes[-1]["cut_fraction"] = {f: round(v, 3) for f, v in cut.items()}
        moved = (recentred_box(box, ct, target, model_img, touched)
                 if try_move and any(v >= RECENTRE_MIN_CUT for v in cut.values()) else None)
        if moved is not None:       # the same grid again, the box on the tumour found (a click off its centre)
            recentred.add(scale)
            passes[-1]["next"] = "box moved onto the tumour found (same grid)"
            before_move, box = (box, movable), moved
            continue
        if scale < MAX_SCALE:
            scale += 1
            new = grown_box(box, ct, movable)
            if seed_lps is not None:
                big = pp.box_from_seed(ct, seed_lps, cfg.seed_box_mm * scale)
                new = pp.Box(tuple(min(a, b) for a, b in zip(big.lo, new.lo)),
                             tuple(max(a, b) for a, b in zip(big.hi, new.hi)), box.mode)
        else:
            new = grown_box(box, ct, movable)
            if new.lo == box.lo and new.hi == box.hi:
                reason = (f"the box reached its maximum size ({MAX_BOX_MM:.0f} mm per axis); "
                          "the tumour still touches it")
                break
        box = new
    # a pass whose box holds the tumour wins (the most confident of them).  When no box held it, the region
    # reached the edge of every box however large: on validation (implants into LUNG1-002) that was a small
    # tumour whose region ran on into a neighbouring organ (diaphragm, mediastinum), and the most confident
    # pass was the largest (members agree more on a large region): a 2 ml tumour came back as 2,000 ml.  So
    # the first pass that found a tumour - the region round the seed / in the user's box - is kept.
    k, ran_on = kept_pass_index(passes, reason)
    passes[k]["kept"] = True
    reason = kept_stop_reason(passes, k, reason, image_edge_faces(runs[k][0], ct), box.mode)
    return (*runs[k], {"passes": passes, "stop_reason": reason, "ran_on": ran_on})


def kept_pass_index(passes: list, end_reason: str) -> tuple:
    """(index of the pass to keep, ran_on) - see the comment in :func:`grow_and_predict`; ``end_reason``: the last
    pass's stop reason (ran_on: no box held the region found, and the growth ended in a stop of ``RAN_ON_STOPS``)."""
    held = [k for k, q in enumerate(passes) if q.get("holds_tumour")]
    found = [k for k, q in enumerate(passes) if q["tumour_ml"] > 0]
    if held:
        k = max(held, key=lambda i: passes[i]["confidence"])
    elif found and NOT_HELD_RULE == "first":
        k = found[0]
    elif found:
        k = max(found, key=lambda i: passes[i]["confidence"])
    else:
        k = len(passes) - 1
    return k, bool(not held and found and NOT_HELD_RULE == "first" and end_reason.startswith(RAN_ON_STOPS))


# what the growth started from, by the box's mode (a kept pass "closest to" it; a region found "at" it).  Only seed
# and ROI mode grow a box (grow_and_predict), so the mode is always one of these: no wording for "either" (QA segmsg65:
# a "the seed / ROI" fallback, for a call without the mode, named neither the seed nor the box the user gave)
GROWN_FROM = {"seed": ("the seed", "at the seed"), "roi": ("your ROI box", "in your ROI box")}


def kept_stop_reason(passes: list, k: int, end_reason: str, kept_edges, mode: str) -> str:
    """``roi_stop_reason``: the last pass's ``end_reason`` when it is the kept one (``k``); else the kept pass first -
    why it was kept, the faces of its box that could move (not in ``kept_edges``, its image-edge faces) that its
    tumour touches - then where the growth ended.  ``mode``: the box's ("seed", "roi": the kept pass is said to be the
    one closest to the seed / to your ROI box, :data:`GROWN_FROM`).  QA: "no tumour found in the box; pass 1 kept" was
    the last pass's (0 ml) while the mask held pass 1's 7.6 ml, touching the box's z- face."""
    if k == len(passes) - 1:
        return end_reason
    free = free_faces(passes[k]["touches"], kept_edges)
    touching = (f"; its tumour ({passes[k]['tumour_ml']:.2f} ml) touches the box's {', '.join(free)} "
                f"face{'s' if len(free) > 1 else ''}" if free else "")
    return f"{_kept_words(passes, k, mode)}{touching}{_growth_end(passes)}{end_reason}"


def _kept_words(passes: list, k: int, mode: str) -> str:
    """"pass <k> kept (why)": the start of :func:`kept_stop_reason`."""
    why = ("its box holds the tumour" if passes[k].get("holds_tumour") else
           f"no box held the tumour: {FIRST_FOUND}, the one closest to {GROWN_FROM[mode][0]}"
           if NOT_HELD_RULE == "first" else "no box held the tumour; the most confident pass")
    return f"pass {k + 1} kept ({why})"


def _growth_end(passes: list) -> str:
    return f"; the growth ended at pass {len(passes)}: "


def written_mask_words(kept: dict, kept_edges) -> str:
    """The clause of ``roi_stop_reason`` on the kept pass's mask as written (``mask_ml``, ``mask_touches``: the faces
    of its box within ``EDGE_MM``; those in ``kept_edges`` lie on the image edge and cannot move) - not the model
    grid's region the growth measured (``tumour_ml``, ``touches``), named beside it where its faces differ.  QA on
    LUNG1-003 (seed on GTV-3): "its tumour (2.52 ml) touches the box's z+ face" while the written 2.28 ml mask touched
    no face (and was rightly not flagged as possibly larger than the box)."""
    free = free_faces(kept.get("mask_touches"), kept_edges)
    grid = free_faces(kept.get("touches"), kept_edges)
    if free:
        words = (f"; its mask ({kept['mask_ml']:.2f} ml) touches the box's {', '.join(free)} "
                 f"face{'s' if len(free) > 1 else ''}")
    else:
        words = (f"; its mask ({kept['mask_ml']:.2f} ml) touches no face of the box"
                 + (" that could move (only image-edge ones)" if kept.get("mask_touches") else ""))
    if grid != free:
        words += (f" (on the model grid its region, {kept['tumour_ml']:.2f} ml, came within {EDGE_MM:.0f} mm of "
                  + (f"the {', '.join(grid)} face{'s' if len(grid) > 1 else ''})" if grid else "no face)"))
    return words


def ran_on_note(passes: list, mode: str) -> str:
    """The note of a growth that ran on (no box held the region found at the seed / in the ROI box - ``mode``,
    :data:`GROWN_FROM`): where it went, and which pass is kept - the first that found a region, not necessarily pass 1
    (QA: "the first pass's result is kept" while pass 1 found 0 ml and pass 2 was kept)."""
    largest = max(passes, key=lambda q: np.prod(q["roi_size_mm"]))["roi_size_mm"]
    edge = next((q["grew_to_image_edge"] for q in passes if q.get("grew_to_image_edge")), None)
    where = (f"as the box grew it reached the image edge ({', '.join(edge)}), so it most likely runs on into a "
             "neighbouring organ (mediastinum, diaphragm, chest wall) cut off by the scan" if edge else
             f"it reached the edge of every box up to {' x '.join(f'{v:.0f}' for v in largest)} mm, so it most "
             "likely runs on into a neighbouring organ (mediastinum, diaphragm, chest wall)")
    kept = next(q["pass"] for q in passes if q.get("kept"))
    return (f"no box held the region found {GROWN_FROM[mode][1]}: {where}; pass {kept} "
            f"({FIRST_FOUND}) is kept - "
            "check its outline")


FIRST_FOUND = "the first that found a region"


def passes_words(passes: list) -> str:
    """What the passes after the first were, in order, for the note "looked <n> times (...)": "box moved onto the
    tumour found" (:func:`recentred_box`, same grid), "coarser grid x<s>" (a larger box with it), "larger box" (same
    grid, :func:`grown_box`) - the same one running on said once with its passes' count ("larger box (2 passes)").
    QA on LUNG1-003 (DynUNet, a click 12 mm off the tumour's centre): a growth that only moved the box said "looked 2
    times (growing box, coarser grids)"."""
    words = []      # [what, passes]
    for before, q in zip(passes, passes[1:]):
        w = ("box moved onto the tumour found" if before.get("next") else
             f"coarser grid x{q['scale']}, larger box" if q["scale"] > before["scale"] else "larger box")
        if words and words[-1][0] == w:
            words[-1][1] += 1
        else:
            words.append([w, 1])
    return ", then ".join(w if n == 1 else f"{w} ({n} passes)" for w, n in words)


def free_faces(touches, edges) -> list:
    """The faces of ``touches`` that could move (not image-edge faces, ``edges``), in FACES order."""
    return sorted(set(touches or ()) - set(edges), key=FACES.index)


NO_TUMOUR_FOUND = "no tumour found in the box"


def off_seed_region(binary: np.ndarray, seed_point, spacing_zyx):
    """(volume ml, distance mm) of the mask kept for a seed point (:func:`keep_components`: the component at or
    nearest to it) when it lies more than :data:`SEED_REACH_MM` from the seed (:func:`seed_distance_mm`); None when
    it holds the seed, there is none or no seed.  :func:`segment_tumour` asks only for a seed in bone or far from the
    lungs (:func:`lungai.seg.preprocess.dense_seed_note` / ``far_seed_note``): there the model found nothing at the
    seed and the seed is on no tumour, so that region is not written as the tumour (:func:`off_seed_note`)."""
    mm = seed_distance_mm(binary, seed_point, spacing_zyx)
    if mm is None or mm <= SEED_REACH_MM:
        return None
    return mask_volume_ml(binary, spacing_zyx[::-1]), mm


def off_seed_note(ml: float, mm: float) -> str:
    """The note of an empty result whose seed lies in bone / far from the lungs (:func:`off_seed_region`)."""
    return ("no tumour found at the seed point, and the seed lies off any tumour (the note above): the region the "
            f"model found nearest to it ({ml:.2f} ml, {mm:.0f} mm away) is not the seed's region, so no tumour mask is "
            "written (it remains in probability.nii.gz)")


def describe_written_mask(growth: dict | None, binary: np.ndarray, spacing_xyz, seed_mm: float | None = None,
                          kept_edges=(), mode: str = "seed") -> dict | None:
    """Seed / ROI mode: make the growth record (:func:`grow_and_predict`) describe the mask that is written.

    The passes measure the tumour the box must hold on the model grid (``tumour_ml``, ``touches``: the seed's
    component, the one reaching into the user's box); the post-processing on the input grid keeps a component too
    - with a seed the one at or nearest to it, which may lie far from the seed when the model found nothing there.
    The kept pass gets ``mask_ml`` and ``mask_touches`` (the written mask's volume, and the faces of the kept box
    it comes within ``EDGE_MM`` of), and a stop reason that says no tumour was found when a mask is written
    anyway says what was kept.  A stop reason naming a kept pass before the last (:func:`kept_stop_reason`) says
    which faces the mask written touches (:func:`written_mask_words`; ``kept_edges``: the kept box's image-edge faces,
    ``mode``: the box's, "seed" / "roi").  ``binary``: the written mask on the kept box's crop (z, y, x);
    ``spacing_xyz``: the input grid's spacing; ``seed_mm``: :func:`seed_distance_mm` of the mask.  Returns ``growth``
    (updated)."""
    if not growth or not growth.get("passes"):
        return growth
    passes = growth["passes"]
    kept = next((q for q in passes if q.get("kept")), passes[-1])
    ml = mask_volume_ml(binary, spacing_xyz)
    faces = touched_faces(binary, spacing_xyz) if binary.any() else []
    kept["mask_ml"], kept["mask_touches"] = round(ml, 3), faces
    k, reason = passes.index(kept), growth["stop_reason"]
    start, end = _kept_words(passes, k, mode), _growth_end(passes)
    if binary.any() and kept["tumour_ml"] and reason.startswith(start) and end in reason:
        # kept_stop_reason's clause on the model grid's region replaced by one on the mask written
        growth["stop_reason"] = start + written_mask_words(kept, kept_edges) + reason[reason.index(end):]
    if not binary.any() and kept["tumour_ml"]:      # QA: "no longer touches the box edge" over an empty mask
        growth["stop_reason"] += (f"; the {kept['tumour_ml']:.2f} ml region found was then left out by the "
                                  "post-processing (dropped_components), so no tumour is written")
    if binary.any() and not kept["tumour_ml"]:
        where = (f"no tumour at the seed point (within {SEED_REACH_MM:.0f} mm); the mask keeps a {ml:.2f} ml component "
                 f"{seed_mm:.0f} mm away" if seed_mm is not None else
                 f"no tumour reaching into the box; the mask keeps a {ml:.2f} ml component")
        touching = f", touching the box's {', '.join(faces)} face{'s' if len(faces) > 1 else ''}" if faces else ""
        reason = growth["stop_reason"]
        growth["stop_reason"] = (where + touching + reason[len(NO_TUMOUR_FOUND):] if reason.startswith(NO_TUMOUR_FOUND)
                                 else f"{reason}; {where}{touching}")
    return growth


def mask_for_roi(roi_box, grid: sitk.Image, ct: sitk.Image = None):
    """Bool (z, y, x) array on ``grid``: the voxels whose centres lie inside the input-grid box ``roi_box`` (same
    direction; its faces are the outer voxel faces, ``lo - 0.5`` and ``hi - 0.5`` in continuous index; a centre on
    a face counts as inside, :func:`lungai.seg.preprocess.snap_whole`); None stays None."""
    if roi_box is None:
        return None
    ref = ct if ct is not None else grid
    lo = ref.TransformContinuousIndexToPhysicalPoint([v - 0.5 for v in roi_box.lo])
    hi = ref.TransformContinuousIndexToPhysicalPoint([v - 0.5 for v in roi_box.hi])
    a = np.array(grid.TransformPhysicalPointToContinuousIndex(lo))
    b = np.array(grid.TransformPhysicalPointToContinuousIndex(hi))
    i0 = np.clip(np.ceil(pp.snap_whole(np.minimum(a, b), grid.GetSpacing())), 0, None).astype(int)
    i1 = np.floor(pp.snap_whole(np.maximum(a, b), grid.GetSpacing())).astype(int) + 1
    out = np.zeros(grid.GetSize()[::-1], bool)
    out[i0[2]:i1[2], i0[1]:i1[1], i0[0]:i1[0]] = True
    return out


def _within(inner: pp.Box, box: pp.Box) -> tuple:
    """Slices (z, y, x) of ``inner`` on an array of ``box`` (clipped to it)."""
    return tuple(slice(max(0, u - b), max(0, min(n, u - b + n_))) for u, b, n_, n in
                 zip(inner.lo[::-1], box.lo[::-1], inner.size[::-1], box.size[::-1]))


INSIDE_SHARE = 0.5      # a region with at least this share of its voxels inside the user's own corners is kept


def largest_in_box(binary: np.ndarray, box: pp.Box, user_box: pp.Box, ml_per_voxel: float,
                   corners: pp.Box | None = None) -> tuple:
    """ROI mode's tumour mask: (the largest region of ``binary`` (on ``box``, the kept pass's box) that reaches into
    ``user_box`` - the box the growth started from, the user's corners plus ``roi_margin_mm``, in which
    :func:`_target_on_model` picks the tumour each pass tracks the same way - , and every region with at least
    :data:`INSIDE_SHARE` of its voxels inside ``corners`` (the user's own box, no margin); {"n_other_roi_regions",
    "other_roi_regions_ml"}: the regions left out - those reaching the box only through its margin or from outside).
    QA: every region in the (grown) box was written, specks beside the tumour too (LUNG1 lung1 --roi: 5 components,
    1.58 ml for a 1.07 ml tumour; one speck outside the user's box made the review say the mask touched the box's
    z- face while the growth said the tumour did not); and the largest region alone dropped true tumour wholly
    inside the user's box (pyradiomics lung2 --roi: a 0.60 ml region, 95 % reference tumour)."""
    lab, n = ndimage.label(binary)
    if not n:
        return binary, {"n_other_roi_regions": 0, "other_roi_regions_ml": 0.0}
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(binary, lab, idx)
    reaching = [int(v) for v in np.unique(lab[_within(user_box, box)]) if v]
    keep = {max(reaching, key=lambda v: sizes[v - 1])} if reaching else set()
    if corners is not None:
        inside = np.zeros_like(binary, bool)
        inside[_within(corners, box)] = True
        share = ndimage.sum_labels(inside & binary, lab, idx) / np.maximum(sizes, 1)
        keep |= {int(v) for v in idx[share >= INSIDE_SHARE]}
    kept = np.isin(lab, sorted(keep)) if keep else np.zeros_like(binary, bool)
    left = [v for v in idx if v not in keep]
    return kept, {"n_other_roi_regions": len(left),
                  "other_roi_regions_ml": round(float(sum(sizes[v - 1] for v in left)) * ml_per_voxel, 4)}


# ROI mode: how far (mm) the written mask may reach beyond the user's own box (its corners, no margin) before a note
# says so.  The box grows for a tumour larger than the box (by design); from a box drawn tight round or inside the
# tumour it can run on into the neighbouring organs - QA seg67 on LUNG1-003 (DynUNet, a box 5 mm inside GTV-1): the
# mask ran 72 mm beyond the box (z-), 57.9 ml at Dice 0.17 (--no-grow 0.62), and nothing said so
BEYOND_ROI_NOTE_MM = 20.0


def mask_beyond_box_mm(binary: np.ndarray, box: pp.Box, corners: pp.Box, spacing_xyz) -> dict:
    """{face: mm} how far the mask ``binary`` (z, y, x on ``box``) reaches beyond the input-grid box ``corners`` at
    each of its faces (voxel centres; only faces it reaches beyond, in FACES order); {} for an empty mask."""
    if not binary.any():
        return {}
    idx = np.argwhere(binary)
    lo = idx.min(0)[::-1] + np.array(box.lo)             # x, y, z on the input grid
    hi = idx.max(0)[::-1] + np.array(box.lo)
    out = {}
    for a, axis in enumerate("xyz"):
        sp = float(spacing_xyz[a])
        if lo[a] < corners.lo[a]:
            out[f"{axis}-"] = round(float(corners.lo[a] - lo[a]) * sp, 1)
        if hi[a] > corners.hi[a] - 1:
            out[f"{axis}+"] = round(float(hi[a] - (corners.hi[a] - 1)) * sp, 1)
    return {f: out[f] for f in FACES if f in out}


def mask_at_box_faces(binary: np.ndarray, box: pp.Box, corners: pp.Box) -> list:
    """The faces of the input-grid box ``corners`` (the user's own ROI box) that the mask ``binary`` (z, y, x on
    ``box``) reaches - its outer voxel layer there, or beyond it - in FACES order; [] for an empty mask."""
    if not binary.any():
        return []
    idx = np.argwhere(binary)
    lo = idx.min(0)[::-1] + np.array(box.lo)             # x, y, z on the input grid
    hi = idx.max(0)[::-1] + np.array(box.lo)
    out = [f"{axis}-" for a, axis in enumerate("xyz") if lo[a] <= corners.lo[a]] + \
        [f"{axis}+" for a, axis in enumerate("xyz") if hi[a] >= corners.hi[a] - 1]
    return [f for f in FACES if f in out]


def small_roi_note(faces: list, beyond: dict) -> str:
    """The note of a low-confidence mask that reaches the user's own ROI box's ``faces`` (within the box's margin, so
    the box did not grow): the tumour may be larger than the box, and the fix."""
    far = max([v for f, v in (beyond or {}).items() if f in faces] or [0.0])
    named = f"{', '.join(faces)} face{'s' if len(faces) > 1 else ''}"
    return (f"the tumour may be larger than your ROI box: the mask reaches its {named}"
            + (f" (up to {far:.0f} mm beyond {'them' if len(faces) > 1 else 'it'})" if far >= 0.5 else "")
            + " and the confidence is below the review threshold - the model may have seen only part of the tumour: "
            "redraw your ROI box round the whole tumour, about 10 mm beyond it on every side (--roi; Segmentation "
            "panel: mode ROI), and run again")


def beyond_roi_note(beyond: dict) -> str | None:
    """The note of a mask that reaches more than :data:`BEYOND_ROI_NOTE_MM` beyond the user's ROI box
    (:func:`mask_beyond_box_mm`), or None."""
    if not beyond_roi(beyond):
        return None
    far = {f: v for f, v in beyond.items() if v > BEYOND_ROI_NOTE_MM}
    return (f"the mask reaches up to {max(far.values()):.0f} mm beyond your ROI box ("
            + ", ".join(f"{f} {v:.0f} mm" for f, v in far.items())
            + "): the box grew while the region found touched its faces - check the outline there: if the tumour is "
            "larger than your box, keep it; if your box held the whole tumour, what lies beyond it is its surroundings "
            "(mediastinum, diaphragm, chest wall): cut it off, or run again with --no-grow (the mask then stays within "
            "your box and its 10 mm margin)")


# ... and flagged for review: QA segfollow68 on LUNG1-003 (DynUNet, a box drawn inside GTV-1, --roi
# 33.2,-20.5,-140.9,56.7,18.6,-116.9): the box grew over 4 passes, the mask 161.7 ml (Dice 0.24, 133 ml outside any
# contour) reaching 45 mm beyond the box, confidence 0.73 - "needs_review": false, the summary "ok", only the note
BEYOND_ROI_REASON = f"the mask reaches more than {BEYOND_ROI_NOTE_MM:.0f} mm beyond the ROI box"


def beyond_roi(beyond: dict) -> bool:
    """Whether the mask reaches more than :data:`BEYOND_ROI_NOTE_MM` beyond the user's ROI box at any face
    (:func:`mask_beyond_box_mm`): the note (:func:`beyond_roi_note`) and the review reason
    (:data:`BEYOND_ROI_REASON`)."""
    return any(v > BEYOND_ROI_NOTE_MM for v in (beyond or {}).values())


LOW_CONFIDENCE = "confidence below the review threshold"


def _flip_check_round(ct, box, binary, cfg, nets, method, mc_passes, seed, progress=None) -> float:
    """Automatic mode's flip consistency: the kept region's bounding box (+ ``roi_margin_mm``, on the CT) run
    plain and mirrored; 0 when no region was kept (as two empty masks)."""
    if not binary.any():
        return 0.0
    idx = np.argwhere(binary)
    sp = np.array(ct.GetSpacing()[::-1])
    pad = np.ceil(cfg.roi_margin_mm / sp).astype(int)
    lo = np.maximum(idx.min(0) + np.array(box.lo[::-1]) - pad, 0)
    hi = np.minimum(idx.max(0) + 1 + np.array(box.lo[::-1]) + pad, np.array(ct.GetSize()[::-1]))
    sub = pp.Box(tuple(int(v) for v in lo[::-1]), tuple(int(v) for v in hi[::-1]), "roi")
    return _model_pass(ct, sub, cfg, nets, method, mc_passes, seed, True, SubProgress(progress, "flip check:"))[3]


# parts of the notes that name what `lungai segment` writes / takes: a caller that writes other files (lungai cohort)
# replaces them (lungai.dicom.cohort._tumour)
KEPT_IN_PROBABILITY = "; they remain in probability.nii.gz"
OUTSIDE_LUNGS_HINT = "a tumour there needs a seed point"
CANDIDATES_LISTED = "under 'candidates' with their centres"
ANOTHER_CANDIDATE_HINT = "to segment another one, run again with --seed-point at its centre"


MC_PASSES_NOTE = ("this model's MC-dropout confidence and review threshold were fitted with {cal} passes and this run "
                  "used {n}: the confidence is less comparable with the threshold - leave --mc-passes out, or give "
                  "--mc-passes {cal} (Segmentation panel: MC dropout passes \"model's calibration\" or {cal}) for a "
                  "calibrated confidence")


CUT_REASON = "tumour cut by the image edge"
INCOMPLETE_REASON = "the tumour may be larger than the box"
SEVERAL_REASON = "several candidate regions (automatic mode)"
# the mask at the faces of the box of a seed / ROI box flagged as lying off the tumour (in bone, a calcification or
# contrast, far from the lungs, in aerated lung): what it found there is most likely no tumour, so it is not said to
# be a tumour larger than the box - worded by result.json's roi_mode, read back as INCOMPLETE_REASON (reason_key).
# QA segmsg65 on LUNG1-003, an ROI box in the vertebral body (--roi=-11,8.6,-201.9,9,28.6,-181.9): "the tumour may be
# larger than the box" in the summary, the reasons and a note, beside "the ROI box lies in bone" and the action "a
# larger box round it would not help".
OFF_TUMOUR_FACES = {"roi": "the mask reaches the faces of the ROI box, which lies off the tumour",
                    "seed": "the mask reaches the faces of the box round the seed point, which lies off the tumour"}
# a model whose confidence was never calibrated (fewer than MIN_CALIBRATION_CASES validation cases with a tumour):
# its confidence is the members' agreement, not an expected Dice, so no threshold on it can clear a result
UNCALIBRATED_REASON = "the model's confidence is not calibrated"


def review_reasons(conf: float, threshold: float, *, uncalibrated: bool = False, cut: bool = False,
                   incomplete: bool = False, ran_on: bool = False, several: bool = False, seed_away: bool = False,
                   aerated: bool = False, thin_slab: bool = False, roi_order: bool = False,
                   voxel_index: bool = False, dense: bool = False, far: bool = False, loose: bool = False,
                   beyond: bool = False, mode: str | None = None) -> list:
    """Why a result needs an expert's review (empty: it does not); what to do about each: :func:`review_actions`.
    ``mode``: the result's ``roi_mode`` - a reason of where the seed point / ROI box lies names the one given
    (:func:`lungai.seg.preprocess.reason_in_mode`); None: the constants as they are."""
    off = (dense or far or aerated) and mode in OFF_TUMOUR_FACES      # the seed / box itself flagged off the tumour
    return [OFF_TUMOUR_FACES[mode] if off and r == INCOMPLETE_REASON else pp.reason_in_mode(r, mode)
            for r in _review_reasons(
        conf, threshold, uncalibrated=uncalibrated, cut=cut, incomplete=incomplete, ran_on=ran_on, several=several,
        seed_away=seed_away, aerated=aerated, thin_slab=thin_slab, roi_order=roi_order, voxel_index=voxel_index,
        dense=dense, far=far, loose=loose, beyond=beyond)]


def reason_key(reason: str) -> str:
    """The constant a result's review reason is worded from: :data:`INCOMPLETE_REASON` for its words when the seed /
    box lies off the tumour (:data:`OFF_TUMOUR_FACES`), else :func:`lungai.seg.preprocess.reason_key`."""
    return INCOMPLETE_REASON if reason in OFF_TUMOUR_FACES.values() else pp.reason_key(reason)


def _review_reasons(conf: float, threshold: float, *, uncalibrated, cut, incomplete, ran_on, several, seed_away,
                    aerated, thin_slab, roi_order, voxel_index, dense, far, loose, beyond) -> list:
    return ([LOW_CONFIDENCE] if conf < threshold else []) + ([UNCALIBRATED_REASON] if uncalibrated else []) + \
        ([CUT_REASON] if cut else []) + \
        ([INCOMPLETE_REASON] if incomplete else []) + \
        ([RAN_ON] if ran_on else []) + ([SEVERAL_REASON] if several else []) + \
        ([SEED_AWAY] if seed_away else []) + ([pp.AERATED_REASON] if aerated else []) + \
        ([pp.THIN_SLAB_REASON] if thin_slab else []) + ([pp.ROI_ORDER_REASON] if roi_order else []) + \
        ([pp.VOXEL_INDEX_REASON] if voxel_index else []) + ([pp.DENSE_REASON] if dense else []) + \
        ([pp.FAR_REASON] if far else []) + ([pp.LOOSE_ROI_REASON] if loose else []) + \
        ([BEYOND_ROI_REASON] if beyond else [])


CHECK_OUTLINE = "check the outline slice by slice and correct it (Segment Editor)"
ANOTHER_MODEL = "try another model (--model, e.g. the DynUNet for a large tumour; panel: Model)"
# ... of a DynUNet's result (result.json "architecture"): the other shipped models - QA seg67 on LUNG1-003 with --model
# lungai-seg-dynunet, the low confidence's action advised "the DynUNet for a large tumour", the model that had just run
ANOTHER_MODEL_AFTER_DYNUNET = (f"try another model (--model, e.g. the default {DEFAULT_MODEL_NAME} or "
                               f"{LARGE_TUMOUR_MODEL_NAME}: this result is a DynUNet's; panel: Model)")
# where on the tumour a seed / ROI box flagged in aerated lung goes: a ground-glass nodule has no solid part to move
# it onto (before: "onto the solid tumour"); its centre is denser than the lung round it, and is not flagged
# (preprocess.aerated_seed_note)
AERATED_ONTO = "its solid part, or a ground-glass nodule's densest part - not the aerated lung round it"
# what the user should do about each review reason (result.json "review_actions", one per reason; the panel's banner
# and lungai segment's summary show them).  QA: only the default model's low confidence said what to do.
REVIEW_ACTIONS = {
    LOW_CONFIDENCE: (f"{CHECK_OUTLINE}; if it misses or leaks into the tumour's surroundings, move the seed to the "
                     "tumour's centre or draw an ROI box round the tumour (--roi; Segmentation panel: mode ROI) and "
                     f"run again, or {ANOTHER_MODEL}"),
    UNCALIBRATED_REASON: (f"{CHECK_OUTLINE}: this model's confidence is its members' agreement, not an expected "
                          f"Dice - calibrate it on at least {MIN_CALIBRATION_CASES} validation cases with a tumour "
                          "(train-seg again with more patients or a larger --val-fraction) or use a shipped model "
                          "(--model; panel: Model)"),
    CUT_REASON: ("check that the scan covers the whole tumour (load the full series / a larger field of view): the "
                 "volume and features are of the part inside the scan only"),
    INCOMPLETE_REASON: (f"{CHECK_OUTLINE} at the box's faces; move the seed to the tumour's centre or draw an ROI box "
                        "round the whole tumour (--roi) and run again"),
    RAN_ON: (f"{CHECK_OUTLINE}: cut off what runs into the neighbouring organ, or draw an ROI box tight round the "
             "tumour (--roi) and run again"),
    SEVERAL_REASON: ("check the candidate regions (listed under 'candidates'; in Slicer the point list '<CT> tumour "
                     "candidates'); run again with a seed point at the tumour's centre (--seed-point; panel: mode "
                     "seed)"),
    SEED_AWAY: ("the mask is most likely not the tumour you clicked: move the seed onto the tumour's centre or draw "
                "an ROI box round it (--roi) and run again"),
    pp.AERATED_REASON: (f"move the seed onto the tumour ({AERATED_ONTO}), or draw an ROI box round the tumour "
                        "(--roi), and run again"),
    pp.THIN_SLAB_REASON: (f"{CHECK_OUTLINE}; run on the full chest series if you have it (the models were trained "
                          "on whole scans)"),
    pp.ROI_ORDER_REASON: ("if the ROI's numbers are bounds (xmin,xmax,ymin,ymax,zmin,zmax), give them as two opposite "
                          "corners x0,y0,z0,x1,y1,z1 in LPS mm (the note shows them reordered) and run again; the "
                          "Slicer panel passes its ROI box as corners itself"),
    pp.VOXEL_INDEX_REASON: ("if the numbers you gave are voxel indices (i, j, k), as some viewers show them, run again "
                            "with the LPS millimetres the note gives (--seed-point / --roi take LPS mm; the Slicer "
                            "panel passes its own points and ROI in mm itself); if they are millimetres, "
                            f"{CHECK_OUTLINE}"),
    pp.DENSE_REASON: ("move the seed onto the tumour's soft tissue (bone, calcium and contrast are no tumour; a "
                      "calcified nodule is usually benign), or draw an ROI box round the tumour (--roi), and run "
                      "again"),
    pp.FAR_REASON: (f"move the seed onto the lung tumour or the node {pp.LPS_MM_RAS}, or draw an ROI box round it "
                    "(--roi), and run again"),
    DISAGREE: f"{CHECK_OUTLINE}: the models' masks differ - compare them with the CT (run each with --model)",
    pp.LOOSE_ROI_REASON: (f"{CHECK_OUTLINE}: if the box is loose, cut off what the mask takes in round the tumour "
                          "(spine, mediastinum, vessels, chest wall), or draw the ROI box round the tumour, up to about "
                          "10 mm beyond it (--roi; Segmentation panel: mode ROI), and run again; if the tumour fills "
                          "the box, the mask misses part of it: complete it"),
    # ROI mode only (the user's box): REVIEW_ACTIONS' own words are those of the box
    BEYOND_ROI_REASON: (f"{CHECK_OUTLINE} where the mask reaches beyond your ROI box (the note gives the faces and "
                        "how far): if the tumour really is larger than your box, keep it; if your box held the whole "
                        "tumour, what lies beyond it is its surroundings (mediastinum, diaphragm, chest wall): cut it "
                        "off, or run again with the box kept as drawn (lungai segment --no-grow: the mask then stays "
                        "within your box and its 10 mm margin) or with your ROI box redrawn round the whole tumour "
                        "with a margin (--roi)"),
}
# the actions of REVIEW_ACTIONS that depend on how the user marked the tumour, by result.json's roi_mode (the other
# reasons' actions hold in every mode; REVIEW_ACTIONS' own are seed mode's).  QA on lung2 with an ROI box: the user
# who had drawn a box was told to "draw an ROI box round the tumour" and to "place the seed at the tumour's centre".
_AUTOMATIC_ACTIONS = {
    LOW_CONFIDENCE: (f"{CHECK_OUTLINE}; if it misses or leaks into the tumour's surroundings, place a seed point at "
                     "the tumour's centre (--seed-point; Segmentation panel: mode seed) or draw an ROI box round it "
                     f"(--roi; panel: mode ROI) and run again, or {ANOTHER_MODEL}"),
    INCOMPLETE_REASON: (f"{CHECK_OUTLINE} at the box's faces; place a seed point at the tumour's centre (--seed-point) "
                        "or draw an ROI box round the whole tumour (--roi) and run again"),
}
MODE_ACTIONS = {
    "roi": {
        LOW_CONFIDENCE: (f"{CHECK_OUTLINE}; if it misses part of the tumour or leaks into its surroundings, redraw "
                         "your ROI box round the whole tumour, up to about 10 mm beyond it (--roi; Segmentation "
                         f"panel: mode ROI), and run again, or {ANOTHER_MODEL}"),
        INCOMPLETE_REASON: (f"{CHECK_OUTLINE} at the box's faces; where the tumour goes on beyond them, enlarge your "
                            "ROI box round the whole tumour with a margin (--roi) and run again"),
        RAN_ON: (f"{CHECK_OUTLINE}: cut off what runs into the neighbouring organ, or redraw your ROI box tight round "
                 "the tumour (--roi) and run again"),
        pp.AERATED_REASON: f"move your ROI box onto the tumour ({AERATED_ONTO}) and run again (--roi)",
        pp.DENSE_REASON: ("move your ROI box onto the tumour's soft tissue (bone, calcium and contrast are no "
                          "tumour; a calcified nodule is usually benign) and run again (--roi)"),
        pp.FAR_REASON: f"move your ROI box onto the lung tumour or the node {pp.LPS_MM_RAS} and run again (--roi)",
    },
    "lungs": _AUTOMATIC_ACTIONS,
    "whole": _AUTOMATIC_ACTIONS,      # a crop segmented whole: no seed or box given either
}
# an empty result: nothing found where the user looked (by mode)
EMPTY_ACTIONS = {
    "seed": ("nothing was found at the seed: confirm there is no tumour at the seed, or move the seed onto the "
             "tumour's centre (or draw an ROI box round it) and run again"),
    "roi": ("nothing was found in the box: confirm there is no tumour in it, or draw the box round the tumour "
            "and run again"),
    "lungs": ("nothing was found: confirm there is no tumour, or place a seed point on it (--seed-point; panel: "
              "mode seed) and run again"),
    # an image that is itself a small crop (as the LIDC nodule crops), segmented whole
    "whole": ("nothing was found in the image (a crop, segmented whole): confirm there is no tumour in it, or place "
              "a seed point on the tumour (--seed-point; panel: mode seed) and run again"),
}


# low confidence of a seed / ROI box itself flagged in bone, far from the lungs or in aerated lung: move it first - no
# other model (QA on LUNG1-003: a box in the arm, 0.7 ml found, was told to try the DynUNet; QA segaerated64 on lung2: a
# seed 10 mm off its tumour in aerated lung (-860 HU) was told to "move the seed to the tumour's centre ... or try
# another model" - the seed was the problem, not the model; ground-glass nodules' centres are not flagged aerated,
# preprocess.aerated_seed_note); {where}: where it was flagged (:func:`misplaced_where`)
MISPLACED_LOW_ACTION = f"{CHECK_OUTLINE}; first move {{what}} onto the tumour ({{where}}) and run again"
# a mask at the box's faces (larger than the box, running on) when the seed / ROI box itself is flagged so: what the
# box found there is most likely no tumour, so the one fix is to move the seed / box - not to grow a box round it.  QA
# segnotes64 on LUNG1-003, an ROI box in the vertebral body (--roi=-11,8.6,-201.9,9,28.6,-181.9): "move your ROI box
# onto the tumour's soft tissue" and, for the 0.3 ml at its z- face, "enlarge your ROI box round the whole tumour".
MISPLACED_REASONS = (pp.DENSE_REASON, pp.FAR_REASON, pp.AERATED_REASON)
MISPLACED_GROWTH_ACTION = ("first move {what} onto the tumour and run again ({where}): what reaches the box's faces "
                           "there is most likely no tumour, and a larger box round it would not help; if the mask "
                           f"then reaches the box's faces, {CHECK_OUTLINE} there")
GROWTH_REASONS = (INCOMPLETE_REASON, RAN_ON, BEYOND_ROI_REASON)


def off_tumour_words(mode: str) -> str:
    """A note's words for a mask at the box's faces when the seed / ROI box (``mode``) was flagged as lying off the
    tumour (its own note says where): what to do, :data:`lungai.seg.preprocess.PLACED_FIX`, not a larger box."""
    return (f"{pp.PLACED_WORDS[mode]} lies off the tumour (see its note), so what reaches the box's faces there is most "
            f"likely no tumour: {pp.PLACED_FIX[mode]} (LPS mm) - a larger box round what it found would not help")


def misplaced_where(reasons) -> str:
    """Where the seed / ROI box was flagged, from the review reasons (keys) of :data:`MISPLACED_REASONS` in
    ``reasons``: "it lies in bone, a calcification or contrast", "it lies far from the lungs" ..., joined by "and"."""
    said = [r.replace(pp.PLACED + " lies ", "", 1) for r in MISPLACED_REASONS if r in reasons]
    return "it lies " + " and ".join(said)


# the seed's / ROI's numbers themselves flagged (bounds order, voxel indices): the review of what was segmented comes
# after running again with the numbers the note gives - no other model (QA on lung2: its lesion's bounds in Slicer's
# order found 106 ml, and the low confidence's action said to try the DynUNet)
WRONG_NUMBERS_REASONS = (pp.ROI_ORDER_REASON, pp.VOXEL_INDEX_REASON)
WRONG_NUMBERS_LOW_ACTION = ("first check {whose} numbers (see the note): if they are {what}, not {meant}, run again "
                            f"with the numbers the note gives; if they are right, {CHECK_OUTLINE}")
# what the flagged numbers may be, by reason, and what the option takes (by roi_mode): only what was flagged and what
# applies to the mode - QA segprog64: a seed given as voxel indices was told "if they are voxel indices or Slicer's
# bounds order, not LPS mm (an ROI: two corners)"; a seed has no bounds order and no corners
WRONG_NUMBERS_WHAT = {pp.VOXEL_INDEX_REASON: "voxel indices (i, j, k)",
                      pp.ROI_ORDER_REASON: "bounds in Slicer's order (xmin,xmax,ymin,ymax,zmin,zmax)"}
WRONG_NUMBERS_MEANT = {"seed": "LPS mm (--seed-point x,y,z)", "roi": "two corners in LPS mm (--roi x0,y0,z0,x1,y1,z1)"}


def wrong_numbers_low_action(reasons, mode: str | None, whose: str) -> str:
    """The low confidence's action of a seed / ROI whose numbers were flagged (``reasons``: those of
    :data:`WRONG_NUMBERS_REASONS` flagged): :data:`WRONG_NUMBERS_LOW_ACTION` naming only what was flagged and what
    the mode's option takes."""
    what = " or ".join(WRONG_NUMBERS_WHAT[r] for r in WRONG_NUMBERS_REASONS if r in reasons)
    meant = WRONG_NUMBERS_MEANT.get(mode, "LPS mm (--seed-point x,y,z; --roi: two corners x0,y0,z0,x1,y1,z1)")
    return WRONG_NUMBERS_LOW_ACTION.format(whose=whose, what=what, meant=meant)


def ran_on_cut_faces(info: dict) -> list:
    """The faces of the kept pass's box (``roi_passes``) that its written mask touches and that are not at the image
    edge (the kept pass's ``box_at_image_edge``, as the note takes them): where a mask that no box held is cut flat by
    the box - the tumour may go on there."""
    kept = next((q for q in info.get("roi_passes") or [] if q.get("kept")), {})
    # the kept box's faces at the image edge, as the note takes them (an older result.json: the mask's own)
    edge = kept["box_at_image_edge"] if "box_at_image_edge" in kept else info.get("cut_by_image_edge") or []
    return free_faces(kept.get("mask_touches"), edge if isinstance(edge, (list, tuple)) else [])


def ran_on_action(faces: list, mode: str | None = None) -> str:
    """:data:`RAN_ON`'s action when the kept mask is cut flat at its box's ``faces`` (:func:`ran_on_cut_faces`): a
    tumour larger than the user's box looks the same as one running on into an organ, so both are said.  QA: a box
    10 mm inside a 360 ml GTV kept 244 ml cut flat at its faces, and the advice to draw the box "tight" round the
    tumour would have made it worse."""
    named = f"{', '.join(faces)} face{'s' if len(faces) > 1 else ''}"
    box = "enlarge your ROI box" if mode == "roi" else "draw an ROI box"
    return (f"{CHECK_OUTLINE}: the mask is cut flat at its box's {named} - where the tumour goes on beyond them, {box} "
            "round the whole tumour with a margin (--roi) and run again; where it runs into a neighbouring organ, cut "
            "that off")


def review_actions(info: dict) -> list:
    """What to do about each of ``info["review_reasons"]`` (in their order; :data:`REVIEW_ACTIONS`, those of the mode
    the user ran - ``roi_mode`` - from :data:`MODE_ACTIONS`): an empty result's
    low confidence says to confirm there is no tumour where the user looked, or to move the seed / box
    (:data:`EMPTY_ACTIONS`), a seed / box in bone, far from the lungs or in aerated lung to move it first
    (:data:`MISPLACED_LOW_ACTION`, no other model), its mask larger than the box / running on to move it first too
    (:data:`MISPLACED_GROWTH_ACTION`: no larger box round what it found), one whose numbers may be bounds / voxel
    indices to run again with the note's numbers first
    (:func:`wrong_numbers_low_action`, no other model); a mask no box held that is cut flat at its box's faces gets :func:`ran_on_action`; a
    reason without its own action says to check the outline.  The reasons are read as their constants
    (:func:`reason_key`: a result's name the seed point / ROI box given)."""
    empty = info.get("n_components") == 0
    keys = [reason_key(r) for r in info.get("review_reasons") or []]     # the constants, whatever the mode's words
    misplaced = set(MISPLACED_REASONS) & set(keys)
    wrong_numbers = set(WRONG_NUMBERS_REASONS) & set(keys)
    mode = info.get("roi_mode")
    by_mode = MODE_ACTIONS.get(mode, {})
    # what the user marked the tumour with
    marked = {"roi": "your ROI box", "seed": "the seed"}.get(mode, "the seed / ROI box")
    out = []
    for reason in keys:
        if reason == LOW_CONFIDENCE and empty:
            out.append(EMPTY_ACTIONS.get(mode, EMPTY_ACTIONS["lungs"]))
        elif reason == LOW_CONFIDENCE and misplaced:
            out.append(MISPLACED_LOW_ACTION.format(what=marked, where=misplaced_where(misplaced)))
        elif reason in GROWTH_REASONS and misplaced:
            out.append(MISPLACED_GROWTH_ACTION.format(what=marked, where=misplaced_where(misplaced)))
        elif reason == LOW_CONFIDENCE and wrong_numbers:
            out.append(wrong_numbers_low_action(wrong_numbers, mode, f"{marked}'s".replace(" / ", "'s / ")))
        elif reason == RAN_ON and ran_on_cut_faces(info):
            out.append(ran_on_action(ran_on_cut_faces(info), mode))
        else:
            out.append(by_mode.get(reason, REVIEW_ACTIONS.get(reason, CHECK_OUTLINE)))
    if info.get("architecture") == "dynunet":       # not the model that has just run (ANOTHER_MODEL_AFTER_DYNUNET)
        out = [a.replace(ANOTHER_MODEL, ANOTHER_MODEL_AFTER_DYNUNET) for a in out]
    return out


# the choice of the uncertainty method: lungai.seg.model_meta (light: the panel checks a model folder with it)
from lungai.seg.model_meta import ENSEMBLE_NEEDS, resolve_method  # noqa: E402,F401


def kept_candidate_text(c: dict) -> str:
    """Which automatic-mode candidate the tumour mask holds: the first by probability mass (the sum of its voxels'
    probabilities, its expected tumour volume: lungai.seg.postprocess.rank_components) - not the one of the highest
    mean probability (QA: LUNG1's kept candidate had mean probability 0.71, another 0.85)."""
    return (f"the tumour mask holds the one with the largest expected tumour volume (probability mass "
            f"{c['probability_mass_ml']:.1f} ml; {c['volume_ml']:.1f} ml at LPS "
            f"{', '.join(f'{v:.0f}' for v in c['centre_lps_mm'])} mm, mean probability {c['mean_probability']:.2f})")


def segment_tumour(ct: sitk.Image, model, *, roi_lps=None, seed_lps=None, method: str | None = None,
                   mc_passes: int | None = None, seed: int = 0, whole=None, progress=None,
                   source: str = "the CT", all_regions: bool = False, grow: bool = True,
                   tta: bool | None = None, flip_check: bool | None = None,
                   scene_coordinates: bool = False) -> SegResult:
    """Segment the tumour of ``ct``. ``model`` = (config, nets, model.json dict) from ``load_model``, or a
    :class:`lungai.seg.choice.ModelChoice` (every model runs, the most confident result is kept).

    ROI: ``seed_lps`` (x, y, z) mm -> a cube of ``seed_box_mm``; ``roi_lps`` (x0, y0, z0, x1, y1, z1)
    mm; otherwise the whole image when it is a small crop, else the lungs' bounding box.  In seed and
    ROI mode the box grows (``grow``) until the tumour no longer touches its edge (:func:`grow_and_predict`).
    ``tta``: mirrored test-time augmentation (None: as the model was trained, ``model.json`` config).
    ``flip_check``: the confidence feature ``flip_consistency`` (3 more passes over the box; in automatic mode
    over a box round the kept region) - always when the model's calibration uses it; True: also otherwise
    (calibration turns it on to fit it).
    ``scene_coordinates``: the seed / ROI numbers were converted from a Slicer scene's nodes (RAS) by lungai itself
    (the Lung AI Segmentation panel - ``lungai segment --scene-coordinates`` - and the console API): they are never
    in the wrong convention, so no note asks whether Slicer's RAS numbers were given (:func:`lungai.seg.preprocess.
    ras_seed_hint`, the aerated seed's question).  QA slicerfollow72: the panel's seed at LUNG1-002's GTV centroid
    (default model, 4.7 ml 31 mm away, confidence 0.22) was told "negate x and y only if the seed was copied from
    Slicer's RAS display".  Nor are they voxel indices: no voxel-index reading (:func:`lungai.seg.preprocess.
    voxel_index_hint` / ``roi_voxel_index_hint``; QA notesfollow72).  ``lungai segment --seed-point / --roi`` of a
    Slicer markups file (.mrk.json / .fcsv, converted by lungai itself) passes it too.
    ``method``: "ensemble" or "mc-dropout"; None: the ensemble, MC dropout for a 1-member model
    (:func:`resolve_method`).  ``mc_passes``: MC-dropout passes; None: those the model's MC-dropout calibration was
    fitted with (:func:`lungai.seg.confidence.model_mc_passes`; other passes given are kept and noted).

    A CT stored in another order than LPS (flipped or swapped axes) is first reoriented to LPS (:func:`to_lps`, as
    the training data and the lungs' rules see it) and every output image mapped back onto its grid: the result
    does not depend on how the array is stored.  Seeds and ROIs are physical LPS mm, so they do not change.
    """
    lps = to_lps(ct)
    if lps is not ct:
        res = segment_tumour(lps, model, roi_lps=roi_lps, seed_lps=seed_lps, method=method, mc_passes=mc_passes,
                             seed=seed, whole=whole, progress=progress, source=source, all_regions=all_regions,
                             grow=grow, tta=tta, flip_check=flip_check, scene_coordinates=scene_coordinates)
        mi = res.mutual_information
        return SegResult(from_lps(res.tumour, ct), from_lps(res.probability, ct), from_lps(res.entropy, ct),
                         from_lps(mi, ct) if mi is not None else None, res.info)
    if isinstance(model, ModelChoice):
        res = segment_with_choice(ct, model, segment_tumour, roi_lps=roi_lps, seed_lps=seed_lps, method=method,
                                  mc_passes=mc_passes, seed=seed, whole=whole, progress=progress, source=source,
                                  all_regions=all_regions, grow=grow, tta=tta, flip_check=flip_check,
                                  scene_coordinates=scene_coordinates)
        res.info["review_actions"] = review_actions(res.info)      # the choice's own reasons
        return res
    cfg, nets, meta = model
    method, method_note = resolve_method(len(nets), method, getattr(cfg, "dropout", 0.1))
    if method == "mc-dropout":
        check_mc_passes(mc_passes)
    unused_passes = mc_passes if method == "ensemble" else None     # given, but the ensemble runs: noted below
    mc_passes = model_mc_passes(meta, mc_passes)       # not given: the passes the model's calibration was fitted with
    if tta is not None and bool(tta) != cfg.tta:
        cfg = dataclasses.replace(cfg, tta=bool(tta))
    calib = meta.get("calibration", {}).get(method)
    flip_check = bool(flip_check) or uses_flip_check(calib)
    bar = progress or NullProgress()
    check_ct(ct, source)
    box = choose_box(ct, cfg, roi_lps, seed_lps, whole, progress=bar)
    aerated = pp.aerated_seed_note(ct, seed_lps, roi_lps, ras_hint=not scene_coordinates)
    # a seed / ROI box in bone / calcium / contrast, or far from the lungs (the arm, the abdomen): said, never refused
    dense = pp.dense_seed_note(ct, seed_lps, roi_lps)
    # the lungs found on a coarse grid to measure from: said with its seconds while it runs (QA segfollow69: 2.4-3.1 s
    # of lung2's / LUNG1-003's seed mode on a loaded machine, the bar standing on "read")
    far = (waiting(bar, SEED_TO_LUNGS["seed" if seed_lps is not None else "roi"], pp.far_seed_note, ct, seed_lps,
                   roi_lps) if seed_lps is not None or roi_lps is not None else None)
    # an ROI in Slicer's bounds order / partly outside the CT: said, never changed (the box is read as given)
    roi_order = pp.roi_order_note(ct, roi_lps) if roi_lps is not None else None
    roi_outside = pp.roi_outside_note(ct, roi_lps) if roi_lps is not None else None
    # ... or given as voxel indices (i, j, k): their LPS numbers named (a seed's: voxel_index_hint below); not of
    # numbers converted from a Slicer scene / point list by lungai itself (scene_coordinates: physical positions)
    roi_voxels = (pp.roi_voxel_index_hint(ct, roi_lps, outside=bool(roi_outside))
                  if roi_lps is not None and not scene_coordinates else None)
    slab = pp.thin_slab_note(ct)
    bar.update(1, f"ROI {box.mode} {box.size}")
    user_box, growth = box, None
    if box.mode in ("seed", "roi"):
        box, crop_img, model_img, probs, cfg, feats, growth = grow_and_predict(
            ct, box, cfg, nets, meta, method, mc_passes, seed, seed_lps=seed_lps,
            roi_mask=box if box.mode == "roi" else None, grow=grow, bar=bar, flip_check=flip_check)
    else:      # automatic mode: the flip check runs on the kept region's box below (the lungs' box x4 is minutes)
        crop_img, model_img, probs, flip = _model_pass(ct, box, cfg, nets, method, mc_passes, seed,
                                                       flip_check and box.mode != "lungs", bar)
        kept = None if box.mode == "lungs" else keep_components(probs.mean(0) > 0.5, cfg.spacing[::-1])[0]
        # dense sums over the lungs' box with nothing to count: said with its seconds while they run (QA segwait67:
        # ~2.2 s on LUNG1-003's lungs' box behind "network run 239/240" on a loaded machine)
        feats = waiting(bar, MAPS_FEATURES, map_features, probs, cfg, flip, kept, automatic=box.mode == "lungs")
    bar.update(1, f"{method}: {probs.shape[0]} maps")
    automatic = box.mode == "lungs"
    review = meta.get("review", {}).get(method, {})
    threshold = float(review.get("threshold", 0.5))

    # counted on the bar (message-only updates: the steps stay STEPS_PER_RUN): the maps' resampling and the summary
    # ran 3-5 s behind the step's message on a CT's lungs (QA segprog64: lung1's lungs' box, 8 MC-dropout maps: 3.2 s
    # resampling, 1.5 s entropy / mutual information, 0.8 s the tumour's regions)
    crop_probs = np.empty((len(probs),) + tuple(crop_img.GetSize()[::-1]), np.float32)
    to_grid = Counter(bar, "resampling to the input grid: map", len(probs))
    for m, p in enumerate(probs):
        pp.to_input(p, model_img, crop_img, out=crop_probs[m])
        to_grid.tick()
    # sub-steps named while they run (QA segfollow67: "uncertainty maps and tumour regions" stood 5.5 s on LUNG1-003
    # in automatic mode, 10.2 s with the DynUNet): the maps' z slices counted, then each part of the regions' work
    mean_p, entropy, mi_arr = summarize_maps(crop_probs, counter=Counter(bar, "uncertainty maps: slice",
                                                                        crop_probs.shape[1]))
    del crop_probs
    one_voxel_ml = voxel_ml(ct.GetSpacing())
    seed_point = None
    if seed_lps is not None:
        cijk = np.asarray(ct.TransformPhysicalPointToContinuousIndex([float(v) for v in seed_lps]))
        seed_point = (cijk[2] - box.lo[2], cijk[1] - box.lo[1], cijk[0] - box.lo[0])    # the point: distances from it

    def regions():      # the lungs' mask on the input grid, then the regions kept
        lungs = pp.mask_on(box.lungs, crop_img) if automatic else None
        return (lungs,) + keep_components(mean_p > 0.5, ct.GetSpacing()[::-1], seed_point,
                                          MAX_ELONGATION if automatic else None, lungs)

    # a labelling pass and each region's shape, nothing counted: said with its seconds while it runs (QA segwait67:
    # 1.4-2.4 s on LUNG1-003's lungs in automatic mode on a loaded machine)
    lungs, binary, dropped = waiting(bar, "tumour regions: connected regions" + (" in the lungs" if automatic else ""),
                                     regions)
    # a seed in bone / far from the lungs with nothing of the model's at it: the region nearest it (the seed's
    # component rule) is another place, not the seed's - not written as the tumour (QA on LUNG1-003: a seed in the
    # vertebral body got 33.9 ml of right lung 29 mm away, one in the arm 8.2 ml of the arm 30 mm away, as tumor.nii.gz)
    off_seed = off_seed_region(binary, seed_point, ct.GetSpacing()[::-1]) if (dense or far) else None
    if off_seed:        # the confidence of what is written: an empty result's
        binary, feats = np.zeros_like(binary), empty_result_features(feats)
    if box.mode == "roi":       # the largest region reaching into the user's box, as the growing box tracks it,
        corners = pp.box_from_physical(ct, roi_lps[:3], roi_lps[3:])   # and every region mostly inside the corners
        binary, others = largest_in_box(binary, box, user_box, one_voxel_ml, corners)
        dropped.update(others)
    candidates, n_candidates, others_ml = [], 0, 0.0
    if automatic:
        # one labelling pass with nothing to count: said with its seconds while it runs (QA segwait67: on LUNG1-003 the
        # bar stood 4.4 s on this message on a loaded machine)
        lab, ranked = waiting(bar, RANKING, rank_components, binary, mean_p, ct.GetSpacing()[::-1])
        if ranked and not all_regions:
            binary = lab == ranked[0]["label"]
        top_region = lab == ranked[0]["label"] if ranked else binary
        n_candidates, others_ml = len(ranked), sum(c["volume_ml"] for c in ranked[1:])
        for rank, c in enumerate(ranked[:MAX_CANDIDATES_LISTED], start=1):
            k, j, i = c["centre_zyx"]
            centre = ct.TransformContinuousIndexToPhysicalPoint([i + box.lo[0], j + box.lo[1], k + box.lo[2]])
            candidates.append(with_result_aliases({
                "rank": rank, "centre_lps_mm": mm(centre),
                "volume_ml": round(c["volume_ml"], 4), "mean_probability": round(c["mean_probability"], 4),
                "probability_mass_ml": round(c["probability_mass_ml"], 4),
                "in_tumour_mask": bool(all_regions or rank == 1)}))
    kept_pass = next((q for q in growth["passes"] if q.get("kept")), {}) if growth else {}
    # cut by the scan: the kept region touches an image edge - on the input grid, or on the model grid's outermost
    # sample plane (pp.cut_on_model_grid: the crop's outer slices beyond it get probability 0) - unless the box grew
    # out to that edge (then the region ran on to it - reported as such, not as a tumour cut by the image).  Kept =
    # written to the mask: in automatic mode the top candidate (all with --all-regions), not every candidate (QA)
    # - or the kept pass's tumour comes within EDGE_MM of an image edge, as the growth measures "touches" (it stopped
    # there: "the tumour touches the image edge only"; QA: a mask starting 2.3 mm from the x- edge, where the model's
    # probability faded, was said to touch the edge by the growth and not cut by this)
    bar.update(0, "tumour regions: image edges")
    edges = image_edge_faces(box, ct) - set(kept_pass.get("grew_to_image_edge", ()))
    on_edge = (set(touched_faces(binary, ct.GetSpacing(), 0.0))
               | set(pp.cut_on_model_grid(binary, probs.mean(0), model_img, crop_img, edges))) & edges
    # - only where the model's probability still reaches the edge plane under the mask (pp.edge_probability >
    # EDGE_PROBABILITY; QA: LIDC nodules ending one 2.5 mm slice before the crop's end, probability ~0 there, were
    # flagged "possibly cut": 39 of 40 crops)
    near = sorted(set(kept_pass.get("touches", ())) & edges - on_edge, key=FACES.index) if binary.any() else []
    edge_p = pp.edge_probability(binary, mean_p, near)
    near_edge = {f for f in near if edge_p[f] > EDGE_PROBABILITY}
    faded = [f for f in near if f not in near_edge]
    if growth and faded and EDGE_ONLY in growth["stop_reason"]:   # QA: "touches the image edge only", yet not cut
        growth["stop_reason"] = growth["stop_reason"].replace(EDGE_ONLY, EDGE_ONLY + " (" + "; ".join(
            f"{f}: within {EDGE_MM:.0f} mm of it, but the model's probability fades before the edge, mean "
            f"{edge_p[f]:.2f} on the edge plane - not counted as cut" for f in faded) + ")")
    cut = sorted(on_edge | near_edge, key=FACES.index)
    if flip_check and automatic:
        feats["flip_consistency"] = _flip_check_round(ct, box, top_region, cfg, nets, method, mc_passes, seed, bar)
    conf = confidence(feats, calib)
    if off_seed and kept_pass:      # the kept pass's confidence is that of what is written (QA: the maps' 0.67 over
        kept_pass["maps_confidence"] = kept_pass.get("confidence")      # an empty mask of confidence 0.08)
        kept_pass["confidence"] = round(conf, 4)
    n_comp = int(ndimage.label(binary)[1])
    bar.update(1, "mapped to input grid")
    # the model grid's maps and the crop's labels are not used below: freed before the full-grid images are made,
    # which set the command's peak memory on a thin-slice CT (QA: 512 x 512 x 333, lungs' box: 2.83 -> 2.3 GB)
    probs = lab = top_region = lungs = p = None

    def image(arr_crop, dtype):     # no full-grid numpy array copied into the image
        return pp.paste_image(ct, box, arr_crop, dtype)

    mi = image(mi_arr, np.float32) if mi_arr is not None else None
    mi_arr = None
    volume = mask_volume_ml(binary, ct.GetSpacing())     # the one volume of a mask (lungai.volume)
    # a user's box much larger than the tumour found (its part in the CT): said and flagged, never changed
    # (not when its numbers are flagged as bounds / voxel indices: running again with the note's numbers comes first)
    loose = (pp.loose_roi_note(_box_size_mm(ct, corners), volume, cfg.seed_box_mm, cfg.roi_margin_mm)
             if box.mode == "roi" and not (roi_order or roi_voxels) else None)
    notes = ([method_note] if method_note else []) + ([] if n_comp or off_seed else [
        "no tumour found in the region of interest"])
    cal_passes = calibration_mc_passes(meta) if method == "mc-dropout" else None
    if cal_passes and cal_passes != int(mc_passes):
        notes.append(MC_PASSES_NOTE.format(cal=cal_passes, n=int(mc_passes)))
    if unused_passes is not None:
        notes.append(MC_PASSES_UNUSED_NOTE.format(n=unused_passes))
    notes += [n for n in (aerated, dense, far) if n]
    if off_seed:
        notes.append(off_seed_note(*off_seed))
    notes += [n for n in (roi_order, roi_outside, roi_voxels, loose) if n]
    # ROI mode: a mask the growing box took far beyond the user's own box - said, never cut
    beyond = mask_beyond_box_mm(binary, box, corners, ct.GetSpacing()) if box.mode == "roi" else None
    if beyond_roi(beyond):
        notes.append(beyond_roi_note(beyond))
    # ROI mode: a low-confidence mask at the faces of the user's own box (within its margin: the box did not grow) -
    # the box may be smaller than the tumour: said, with the fix (QA seg70: boxes drawn inside LUNG1-003's GTV-1,
    # LUNG1-002's and lung2's tumours, the default model's masks 1-5 mm beyond their faces, Dice 0.02-0.14 - the low
    # confidence was the only sign).  Not when the mask already grew beyond it or ran on (their own reasons), nor for
    # a box flagged off the tumour, loose, or with numbers that may be bounds / voxel indices (their own fixes first)
    at_faces = (sorted(set(mask_at_box_faces(binary, box, corners)) - image_edge_faces(corners, ct), key=FACES.index)
                if box.mode == "roi" and conf < threshold and not (
                    beyond_roi(beyond) or loose or roi_order or roi_voxels or dense or far or aerated or off_seed)
                else [])
    if slab:
        notes.append(slab)
    # automatic mode: the CT beyond the lungs' box, never looked at - said where a face leaves much of it
    unsearched = unsearched_ct_mm(box, ct) if automatic else None
    far_ct = unsearched_note(unsearched, cfg.roi_margin_mm) if automatic else None
    if far_ct:
        notes.append(far_ct)
    seed_mm = seed_distance_mm(binary, seed_point, ct.GetSpacing()[::-1])
    seed_away = seed_mm is not None and seed_mm > SEED_REACH_MM
    growth = describe_written_mask(growth, binary, ct.GetSpacing(), seed_mm,     # the passes measured the target
                                   image_edge_faces(box, ct), box.mode)
    # a seed point that found no tumour at it: was it given in Slicer's RAS? (a seed in aerated lung: said above)
    # (not of numbers converted from a Slicer scene by lungai itself: scene_coordinates)
    ras = (pp.ras_seed_hint(ct, seed_lps) if (seed_away or not n_comp) and not aerated and not scene_coordinates
           else None)
    if seed_away:
        notes.append(f"the tumour mask does not hold the seed point: its nearest voxel is {seed_mm:.0f} mm from it, so "
                     "it is most likely not the tumour you clicked (the model found little or nothing there) - check "
                     "it, or draw an ROI box round the tumour" + (f"; {ras}" if ras else ""))
    elif ras:
        notes.append(f"no tumour found at the seed point: {ras}")
    # ... or as voxel indices (i, j, k) whose numbers read as mm lie in the CT too
    voxels = (pp.voxel_index_hint(ct, seed_lps) if (seed_away or not n_comp or aerated) and not scene_coordinates
              else None)
    if voxels:
        notes.append(voxels)
    if cut:
        on = [f for f in cut if f in on_edge]
        gaps = edge_gaps_mm(binary, ct.GetSpacing(), near_edge)
        parts = ([pp.edge_words(on)] if on else []) + [
            f"{f}: the mask ends {gaps[f]:.1f} mm from the image edge where the model's probability still reaches it, "
            f"mean {edge_p[f]:.2f} on the edge plane - possibly cut" for f in cut if f in near_edge]
        notes.append(f"the tumour is cut by the image edge ({'; '.join(parts)}): part of it may lie outside the "
                     "scan, so its volume and features are incomplete")
    if growth and len(growth["passes"]) > 1:
        k = next(q for q in growth["passes"] if q["kept"])
        notes.append(f"looked {len(growth['passes'])} times ({passes_words(growth['passes'])}); kept pass "
                     f"{k['pass']}: box {' x '.join(f'{v:.0f}' for v in k['roi_size_mm'])} mm, model grid x{k['scale']}: "
                     f"{growth['stop_reason']}")
    ran_on = bool(growth and growth.get("ran_on"))
    # the kept pass's mask (as written) still touches a face of its box that could move: the tumour may go on beyond
    # it (not said of a mask away from the seed - not the clicked tumour - nor of one running on, its own reason)
    free = free_faces(kept_pass.get("mask_touches"), image_edge_faces(box, ct))
    if kept_pass:       # the faces of the kept box at the image edge (they cannot move): review_actions reads them
        kept_pass["box_at_image_edge"] = sorted(image_edge_faces(box, ct), key=FACES.index)
    incomplete = bool(free) and not seed_away
    small_roi = bool(at_faces) and not incomplete and not ran_on
    # a seed / box flagged in bone, far from the lungs or in aerated lung: what reaches the box's faces is most likely
    # no tumour - no word of a tumour larger than the box, nor of a larger box round it (OFF_TUMOUR_FACES; the action,
    # review_actions' MISPLACED_GROWTH_ACTION, says to move it first)
    off = bool(dense or far or aerated)
    faces = f"face{'s' if len(free) > 1 else ''}"
    if ran_on:
        notes.append(ran_on_note(growth["passes"], box.mode) + (
            f"; the mask touches the kept box's {', '.join(free)} {faces}" + (
                f" - {off_tumour_words(box.mode)}" if off else ": the tumour may also be larger than the box (then "
                + ("enlarge your ROI box" if box.mode == "roi" else "draw an ROI box") + " round the whole tumour)")
            if free else ""))
    elif incomplete and off:
        notes.append(f"the mask touches the box's {', '.join(free)} {faces} ({growth['stop_reason']}) - "
                     + off_tumour_words(box.mode))
    elif incomplete:
        # faces only another region kept in the mask reaches (not the one the box grew for, whose touches the growth
        # measured): said so - QA: "the mask touches the box's z+ face (the tumour no longer touches the box edge)"
        others = [f for f in free if f not in (kept_pass.get("touches") or ())]
        notes.append(f"the tumour may be larger than the box: the mask touches the box's {', '.join(free)} {faces} "
                     + (f"({growth['stop_reason']})" if not others else
                        f"- another region of the mask than the one the box grew for reaches {', '.join(others)}: "
                        "check whether it belongs to the tumour (the box grows for one region only: the seed's, or "
                        "the largest reaching into your box)"))
    if small_roi:
        notes.append(small_roi_note(at_faces, beyond))
    if dropped.get("n_other_roi_regions"):
        notes.append(f"{counted(dropped['n_other_roi_regions'], 'other region')}, "
                     f"{dropped['other_roi_regions_ml']:.2f} ml, "
                     "left out of the tumour mask (ROI mode keeps the largest region reaching into your box and "
                     "those mostly inside your corners)"
                     + KEPT_IN_PROBABILITY)
    if dropped["n_elongated"]:
        notes.append(f"{counted(dropped['n_elongated'], 'elongated (vessel-like) region')}, "
                     f"{dropped['elongated_ml']:.1f} ml, "
                     "left out of the tumour mask" + KEPT_IN_PROBABILITY)
    if dropped["n_outside_lungs"]:
        notes.append(f"{counted(dropped['n_outside_lungs'], 'region')} lying mostly outside the lungs, "
                     f"{dropped['outside_lungs_ml']:.1f} ml, left out of the tumour mask (mediastinal border / "
                     "chest wall); " + OUTSIDE_LUNGS_HINT)
    reasons = review_reasons(conf, threshold, uncalibrated=not (calib and calib.get("fitted")), cut=bool(cut),
                             incomplete=(incomplete and not ran_on) or small_roi, ran_on=ran_on,
                             several=n_candidates > 1, seed_away=seed_away, aerated=bool(aerated),
                             thin_slab=bool(slab), roi_order=bool(roi_order),
                             voxel_index=bool(voxels or roi_voxels), dense=bool(dense), far=bool(far),
                             loose=bool(loose), beyond=beyond_roi(beyond), mode=box.mode)
    if n_candidates > 1:
        kept = ("all are in the tumour mask" if all_regions else
                kept_candidate_text(candidates[0]))
        listed = ("are listed" if n_candidates <= MAX_CANDIDATES_LISTED
                  else f"- the first {MAX_CANDIDATES_LISTED - 1} of them are listed -")
        notes.append(f"automatic mode found {n_candidates} candidate regions; {kept}; the other "
                     f"{n_candidates - 1} ({others_ml:.1f} ml) {listed} {CANDIDATES_LISTED} - "
                     f"check them (vessels and hilar structures can be marked too); {ANOTHER_CANDIDATE_HINT}")
    info = with_result_aliases({      # + the old "tumor" spellings, for one release (RESULT_KEY_ALIASES)
        "confidence": round(conf, 4), "needs_review": bool(reasons), "review_reasons": reasons,
        "review_threshold": threshold,
        "tumour_volume_ml": round(volume, 4), "n_components": n_comp, "method": method,
        "members": len(nets) if method == "ensemble" else 1,
        "mc_passes": int(mc_passes) if method == "mc-dropout" else 0,
        # the dropout masks' seed (--seed): it sets an MC-dropout result, which a re-run reproduces with it; the
        # ensemble is deterministic (null)
        "random_seed": int(seed) if method == "mc-dropout" else None,
        "calibration_mc_passes": cal_passes,       # the passes the MC-dropout confidence was fitted with
        "dropped_components": dropped, "n_candidates": n_candidates, "candidates": candidates,
        "roi_mode": box.mode, "roi_lps_mm": _box_lps(ct, box),
        "roi_size_mm": _box_size_mm(ct, box),      # the final box's extent (roi_lps_mm are its corner voxels' centres)
        "unsearched_ct_mm": unsearched,     # automatic mode: the CT beyond each face of the lungs' box, not looked at
        "roi_passes": growth["passes"] if growth else [], "roi_stop_reason": growth["stop_reason"] if growth else None,
        "cut_by_image_edge": cut, "edge_probability": edge_p,
        "mask_beyond_roi_mm": beyond,       # ROI mode: how far the mask reaches beyond the user's box, by face
        "seed_point_lps_mm": mm(seed_lps) if seed_lps is not None else None,
        "seed_to_tumour_mm": round(seed_mm, 1) if seed_mm is not None else None,
        "features": {k: round(v, 5) for k, v in feats.items()},
        "calibrated": bool(calib and calib.get("fitted")), "architecture": cfg.arch, "tta": bool(cfg.tta),
        "coordinates": "LPS millimetres (ITK); Slicer RAS = (-x, -y, z)", "notes": notes,
    })
    info["review_actions"] = review_actions(info)       # what to do about each review reason
    return SegResult(image(binary.astype(np.uint8), np.uint8), image(mean_p, np.float32),
                     image(entropy, np.float32), mi, info)
