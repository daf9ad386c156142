"""Case-level confidence: features of the member maps -> calibrated expected Dice.

Features (all from the M member / MC-pass probability maps on the model grid):

- ``agreement``: mean pairwise Dice of the members' binary masks; two empty masks agree on no
  tumour, which counts 0: the confidence estimates the Dice of the tumour found, and on
  validation cases (all with a tumour) an empty result has Dice 0, so "no tumour found" gets a
  low confidence and is flagged for review - a reader confirms that there is no tumour;
- ``mean_entropy``: mean predictive entropy over voxels any member calls tumour;
- ``uncertain_ratio``: volume with 0.2 < mean p < 0.8 relative to that plus the volume p >= 0.8;
- ``log_volume``: log10 of the predicted volume in ml (+0.01);
- ``flip_consistency``: the box run again mirrored along z, along y and along x (each window flipped, predicted,
  flipped back): mean Dice between those three masks and the unflipped one (two empty masks count 0).  A
  result the network reproduces on the mirror image is a stable one.  On the 173 validation crops with a
  tumour (5-fold CV, monotone fit) it lifts r(confidence, Dice) from 0.80 to 0.85 for the default model and from
  0.68 to 0.82 for the DynUNet (``benchmarks/seg_flip_validation.py``); the 7 flips of TTA, or one axis, do
  less.  It costs 3 more passes over the box (none more with ``--tta``); in automatic mode it runs on a box
  round the kept region only.  Computed when the model's calibration uses it (older calibrations have the
  first four features and stay valid);
- ``kept_agreement``, ``kept_mean_entropy``, ``kept_uncertain_ratio``, ``kept_log_volume``: the first four
  features computed on the kept region only - in seed / ROI mode the tumour the box must hold (the seed's
  component / the largest one in the user's box, on the model grid; a whole image: every region kept) dilated
  by ``KEPT_MARGIN_VOXELS``; in automatic mode the box's values.  The box's features describe everything the
  model marked in the box: a small tumour kept next to a large region the members agree on gets that region's
  agreement.  A calibration uses
  either the box's four or the kept region's four (``uses_kept_region``; ``tools/recalibrate_seg.py --features
  kept-region``).  On validation implants into LUNG1-002 they lifted r(confidence, Dice) of the DynUNet and the
  large U-Net, on the test implants into LUNG1-003 not, so no shipped model uses them (docs/segmentation.md);
- ``automatic_mode``: 1 for a result of automatic mode (the lungs' box), else 0.  There the question is
  whether the kept region is the tumour at all, which no feature of the maps answers (a false region can be
  as stable under flips as a tumour): on the 9 validation chests the confidence without it was 0.42-0.54 for
  Dice 0-0.73.  The fit gives automatic-mode results a lower confidence (validation Dice there: mean 0.30).

A monotone linear model (coefficients stored as plain numbers in model.json, one per method) maps them
to an expected Dice, clipped to [0, 1].  It is fitted on validation cases by
:mod:`lungai.seg.calibrate`; its reported Pearson r uses cross-validated predictions.
"""

from __future__ import annotations

import itertools

import numpy as np

from lungai.errors import counted
from lungai.overlap import dice
from lungai.seg.uncertainty import predictive_entropy

FEATURES = ["agreement", "mean_entropy", "uncertain_ratio", "log_volume", "flip_consistency", "automatic_mode"]
SIGNS = [1, -1, -1, 1, 1, -1]   # direction in which each feature may move the confidence
FLIP_FEATURE = "flip_consistency"
MODE_FEATURE = "automatic_mode"
MAP_FEATURES = FEATURES[:4]                                  # computed from the maps (box or kept region)
KEPT_PREFIX = "kept_"
KEPT_FEATURES = [KEPT_PREFIX + f for f in MAP_FEATURES]
KEPT_MARGIN_VOXELS = 3
KEPT_REGION_FEATURES = KEPT_FEATURES + FEATURES[4:]          # a calibration on the kept region's maps
SIGN_OF = dict(zip(FEATURES, SIGNS)) | {KEPT_PREFIX + f: s for f, s in zip(MAP_FEATURES, SIGNS)}

# Before calibration: confidence = member agreement.
UNCALIBRATED = {"features": FEATURES[:4], "coef": [1.0, 0.0, 0.0, 0.0], "intercept": 0.0,
                "fitted": False, "how": "not calibrated: confidence = member agreement"}


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two members' masks, but 0 when both are empty (no tumour to agree on)."""
    return dice(a, b) if (a.any() or b.any()) else 0.0


# the map features of maps that mark nothing (:func:`case_features` of an empty map)
EMPTY_MAP = {"agreement": 0.0, "mean_entropy": 0.0, "uncertain_ratio": 0.0, "log_volume": float(np.log10(0.01))}


def empty_result_features(features: dict) -> dict:
    """The confidence features of a result whose written mask is empty although the model's maps mark a region
    (``features``: the maps' own): those of an empty map - every map feature, of the box and of the kept region
    (:data:`EMPTY_MAP`), and the flip consistency 0 (two empty masks count 0) - the mode kept.  So the confidence
    describes what is written, as any "no tumour found" result's does (low by design: on validation an empty result
    has Dice 0).  QA on LUNG1-003: a seed in the vertebral body, its mask emptied (the region the model found lay 29
    mm away, :func:`lungai.seg.infer.off_seed_region`), reported the maps' confidence 0.67, above the review
    threshold, for an empty tumor.nii.gz."""
    out = dict(features)
    for f, v in EMPTY_MAP.items():
        for key in (f, KEPT_PREFIX + f):
            if key in out:
                out[key] = v
    if FLIP_FEATURE in out:
        out[FLIP_FEATURE] = 0.0
    return out


def uses_flip_check(calibration: dict | None) -> bool:
    """Whether a calibration's confidence needs ``flip_consistency`` (the 3 mirrored passes)."""
    return bool(calibration) and FLIP_FEATURE in calibration.get("features", [])


def uses_kept_region(calibration: dict | None) -> bool:
    """Whether a calibration's confidence uses the kept region's map features (``kept_*``)."""
    return bool(calibration) and any(f in KEPT_FEATURES for f in calibration.get("features", []))


def kept_region_features(probs: np.ndarray, kept: np.ndarray | None, voxel_ml: float, box: dict | None = None) -> dict:
    """The ``kept_*`` features: :func:`case_features`' first four on ``kept`` (bool (z, y, x) mask on the grid of
    ``probs``) dilated by ``KEPT_MARGIN_VOXELS`` - the maps elsewhere in the box are left out.  ``kept`` None
    (automatic mode): the box's features ``box`` are used.  An empty ``kept`` gives the values of an empty map."""
    if kept is None:
        return {KEPT_PREFIX + f: box[f] for f in MAP_FEATURES}
    if not kept.any():
        return {KEPT_PREFIX + f: v for f, v in EMPTY_MAP.items()}
    from scipy import ndimage

    m = KEPT_MARGIN_VOXELS
    idx = np.argwhere(kept)
    lo, hi = np.maximum(idx.min(0) - m, 0), np.minimum(idx.max(0) + m + 1, kept.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    near = ndimage.binary_dilation(kept[sl], iterations=m) if m else kept[sl]
    f = case_features(probs[(slice(None),) + sl] * near[None], voxel_ml)
    return {KEPT_PREFIX + k: f[k] for k in MAP_FEATURES}


def calibration_mc_passes(meta: dict) -> int | None:
    """The MC-dropout passes a model's MC-dropout calibration (confidence and review threshold) was fitted with:
    ``calibration["mc-dropout"]["mc_passes"]`` (:func:`lungai.seg.calibrate.fit_tables` records it), else the
    "N passes" of its validation description (models calibrated before it was recorded); None when there is no
    MC-dropout calibration.  The same confidence from fewer or more passes is not the one the threshold was chosen
    on: fewer passes, a noisier mean and entropy (QA: shipped models fitted at 8 passes, run at 10 by default)."""
    import re

    calib = (meta.get("calibration") or {}).get("mc-dropout") or {}
    if not calib.get("fitted"):          # too few validation cases: no calibration, whatever passes it ran
        return None
    if calib.get("mc_passes"):
        return int(calib["mc_passes"])
    text = str(((meta.get("validation") or {}).get("mc-dropout") or {}).get("description", ""))
    m = re.search(r"(\d+) passes", text)
    return int(m.group(1)) if m else None


def model_mc_passes(meta: dict, mc_passes: int | None = None) -> int:
    """The MC-dropout passes a run uses: ``mc_passes`` when given, else (None) those the model's MC-dropout calibration
    was fitted with (:func:`calibration_mc_passes`), :data:`lungai.seg.config.MC_PASSES` for a model without one.
    The one rule of ``lungai segment`` / ``eval-seg``, segment_tumour and the panels (QA: the default was a constant
    10 against the shipped calibration's 8)."""
    from lungai.seg.config import MC_PASSES

    if mc_passes is not None:
        return int(mc_passes)
    return calibration_mc_passes(meta) or MC_PASSES


def case_features(probs: np.ndarray, voxel_ml: float, flip_consistency: float | None = None,
                  automatic: bool = False) -> dict:
    """``probs``: (M, z, y, x) foreground probabilities of M members / passes; ``flip_consistency`` from
    :func:`lungai.seg.predict.flip_consistency` when the flip check ran (else the key is left out);
    ``automatic``: the result of automatic mode."""
    masks = probs > 0.5
    pairs = list(itertools.combinations(range(len(masks)), 2))
    agreement = float(np.mean([_agreement(masks[i], masks[j]) for i, j in pairs])) if pairs else float(masks.any())
    union = masks.any(axis=0)
    mean_p = probs.mean(axis=0)
    mean_entropy = float(predictive_entropy(probs)[union].mean()) if union.any() else 0.0
    sure = int((mean_p >= 0.8).sum())
    unsure = int(((mean_p > 0.2) & (mean_p < 0.8)).sum())
    uncertain_ratio = unsure / (sure + unsure) if sure + unsure else 0.0
    volume = float((mean_p > 0.5).sum()) * voxel_ml
    out = {"agreement": agreement, "mean_entropy": mean_entropy, "uncertain_ratio": float(uncertain_ratio),
           "log_volume": float(np.log10(volume + 0.01))}
    if flip_consistency is not None:
        out[FLIP_FEATURE] = float(flip_consistency)
    out[MODE_FEATURE] = float(bool(automatic))
    return out


def confidence(features: dict, calibration: dict | None) -> float:
    cal = calibration or UNCALIBRATED
    x = np.array([features[name] for name in cal["features"]], dtype=float)
    value = float(cal["intercept"] + np.dot(cal["coef"], x))
    return float(np.clip(value, 0.0, 1.0))


# validation cases (with a tumour) a calibration is fitted on, at least: a fit of up to 6 features on fewer is noise
# (QA: 3 cases gave cross-validated r 0.74, then -0.20 one epoch later, and a 0.22-Dice result confidence 1.00)
MIN_CALIBRATION_CASES = 10


def fit_calibration(X: np.ndarray, dice: np.ndarray, seed: int = 0, features: list = FEATURES,
                    signs: list = SIGNS) -> dict:
    """Monotone least-squares fit of Dice on the features; r from 5-fold cross-validated predictions.  Fewer than
    :data:`MIN_CALIBRATION_CASES` cases: not calibrated (confidence = member agreement; ``fitted`` False).

    The fit is constrained so that confidence never rises with entropy or uncertain share and never
    falls with agreement, volume or flip consistency, and is never higher in automatic mode (``SIGNS``): it
    then extrapolates sensibly to unusual inputs.
    """
    from scipy.stats import pearsonr
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    signs = np.array(signs, dtype=float)
    X = np.asarray(X, dtype=float) * signs
    dice = np.asarray(dice, dtype=float)
    if len(dice) < MIN_CALIBRATION_CASES:  # too few validation cases to fit (or cross-validate) anything
        return dict(UNCALIBRATED, features=list(features), coef=[1.0] + [0.0] * (len(features) - 1),
                    n_cases=int(len(dice)), pearson_r_cv=float("nan"),
                    pearson_r_agreement_only=float("nan"),
                    how=f"not calibrated: only {counted(len(dice), 'validation case')}, at least "
                        f"{MIN_CALIBRATION_CASES} are needed; confidence = member agreement")

    def make():
        return Ridge(alpha=1e-2, positive=True)

    model = make().fit(X, dice)
    folds = min(5, len(dice))
    cv = cross_val_predict(make(), X, dice, cv=KFold(folds, shuffle=True, random_state=seed))
    cv = np.clip(cv, 0, 1)
    r = float(pearsonr(cv, dice)[0]) if np.std(cv) > 0 and np.std(dice) > 0 else float("nan")
    r_agree = (float(pearsonr(X[:, 0], dice)[0]) if np.std(X[:, 0]) > 0 and np.std(dice) > 0 else float("nan"))
    return {"features": list(features), "coef": [float(c) for c in model.coef_ * signs], "intercept": float(model.intercept_),
            "fitted": True, "n_cases": int(len(dice)), "pearson_r_cv": r, "pearson_r_agreement_only": r_agree,
            "how": "ridge regression (alpha 0.01) of validation Dice on the features, monotone (confidence "
                   "rises with agreement, volume and flip consistency, falls with entropy, uncertain share and in "
                   f"automatic mode); r from {folds}-fold cross-validated predictions"}


def choose_review_threshold(conf: np.ndarray, dice: np.ndarray, fail_dice: float = 0.5) -> tuple:
    """Threshold on confidence flagging cases with Dice < ``fail_dice`` (Youden's J on validation).

    Falls back to the 25th percentile of confidence when validation has < 3 failures or successes.
    """
    conf = np.asarray(conf, dtype=float)
    fail = np.asarray(dice, dtype=float) < fail_dice
    if fail.sum() >= 3 and (~fail).sum() >= 3:
        best, best_t = -1.0, 0.5
        for t in np.unique(conf):
            flagged = conf < t
            j = flagged[fail].mean() + (~flagged[~fail]).mean() - 1
            if j > best:
                best, best_t = j, float(t)
        how = (f"Youden's J on validation: flag when confidence < t, failures = Dice < {fail_dice} "
               f"({int(fail.sum())} of {len(fail)}); sensitivity {float((conf < best_t)[fail].mean()):.2f}, "
               f"specificity {float((conf >= best_t)[~fail].mean()):.2f}")
        return best_t, how
    t = float(np.percentile(conf, 25))
    return t, f"25th percentile of validation confidence (too few cases with Dice < {fail_dice} for Youden's J)"
