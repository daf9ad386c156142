"""The IBSI-1 pipeline: IBSI image processing, then every IBSI-1 feature, compared with the reference.

:func:`compute_ibsi` (:func:`ibsi_images` then :func:`ibsi_features`) is the one code path behind
``lungai ibsi-check`` (which also measures the processed ROI's diagnostics, :mod:`.diagnostics`) and the
``ibsi-a`` .. ``ibsi-e`` presets of ``lungai radiomics`` / ``radiomics-batch`` / the Slicer panel / the demo:

1. interpolation to the configuration's grid (around the ROI) and re-segmentation (:mod:`.preprocess`);
2. pyradiomics for every tag it computes correctly (mapping.csv), with the IBSI bin origin
   (:mod:`.binning`): its shape class on the morphological mask, its first-order and texture
   classes on the intensity mask,
   once per aggregation (``force2D`` for 2.5D, ``weightingNorm='no_weighting'`` for ``_comb``);
3. :mod:`lungai.radiomics.features` for every other tag (2D per-slice texture, GLDZM, intensity
   histogram, IVH, local intensity peaks, the morphological extras, ``stat_medad/cov/qcod``,
   ``ngl_dc_energy``).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.errors import InputError, agree, counted
from lungai.io import on_grid, read_image, read_mask
from lungai.io.validate import check_finite
from lungai.io.geometry import to_lps
from lungai.radiomics.features import CLASS_FAMILY, compute_extras, family, prepare, pyradiomics_shape
from lungai.radiomics.ibsi.binning import fixed_bin_origin
from lungai.radiomics.ibsi.compare import (CHECK_COMPARING, CHECK_FEATURES, CHECK_FEATURES_SETTINGS_ONLY,
                                           CHECK_READING, NO_REFERENCE_STATUS, Report, check_interpolating,
                                           within)
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig
from lungai.radiomics.ibsi.diagnostics import measure, mismatch
from lungai.radiomics.ibsi.mapping import UNVERIFIED, dimension, tags_for, target
from lungai.radiomics.ibsi.preprocess import interpolate_roi, resegment
from lungai.radiomics.ibsi.reference import read_reference

TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
# pyradiomics' PCA axis lengths use the population covariance (divide by N); IBSI uses the sample
# covariance (N - 1): the lengths differ by sqrt(N / (N - 1)) (0.7 % on the 74-voxel digital phantom).
PCA_AXES = ("shape_MajorAxisLength", "shape_MinorAxisLength", "shape_LeastAxisLength")


def _all_features(classes) -> dict:
    """Every feature of the classes by name, deprecated ones included (IBSI maps some of them)."""
    from radiomics import getFeatureClasses

    fc = getFeatureClasses()
    return {c: sorted(fc[c].getFeatureNames()) for c in classes}


def _execute(image, mask, classes, settings, name: str = "ROI") -> dict[str, float]:
    from radiomics import featureextractor

    if not classes:
        return {}
    from lungai.radiomics.extract import quiet_pyradiomics

    try:
        # pyradiomics' log (its "FAILED: Traceback" of a NaN value: nan_notes says why) is not printed
        with quiet_pyradiomics():
            # Settings as keyword arguments: the same extractor as from a parameter dict, without pykwalify's
            # schema validation (0.5 s per extractor, more than most feature classes take on a tumour).
            ex = featureextractor.RadiomicsFeatureExtractor(**settings)
            ex.disableAllFeatures()
            ex.enableFeaturesByName(**_all_features(classes))
            res = ex.execute(image, mask, label=1)
    except IndexError as exc:    # pyradiomics' C code: "Calculation of GLCM Failed." (grey levels out of range)
        raise InputError(f"pyradiomics could not compute the {', '.join(classes)} features: {exc}",
                         "check that the image suits the configuration: a CT in HU for A-E, integer grey levels "
                         "1, 2, 3 ... (the IBSI digital phantom) for digital") from exc
    except ValueError as exc:    # pyradiomics' checkMask: "mask only contains 1 segmented voxel!" after its resampling
        if "mask" not in str(exc).lower() and "label" not in str(exc).lower():
            raise
        raise InputError(f"pyradiomics refused segment {name!r} on its grid (spacing "
                         f"{settings.get('resampledPixelSpacing') or 'of the image'}): "
                         f"{str(exc).strip().splitlines()[-1]}",
                         "use a larger segment (texture and shape features need at least 2 voxels on the "
                         "configuration's grid), or leave out --settings-only (lungai's IBSI interpolation)") from exc
    return {k[len("original_"):]: float(v) for k, v in res.items() if k.startswith("original_")}


def _base_settings(cfg: IBSIConfig) -> dict:
    s = {"label": 1, "voxelArrayShift": 0, "symmetricalGLCM": True, "distances": [1], "gldm_a": 0,
         "additionalInfo": False, "resegmentShape": False, "minimumROIDimensions": 1}
    if cfg.force2d:
        s.update(force2D=True, force2Ddimension=0)
    s.update({"binCount": int(cfg.bins)} if cfg.discretisation == "fbn" else {"binWidth": cfg.bins})
    return s


def _bin_origin(cfg: IBSIConfig) -> float | None:
    if cfg.discretisation == "none":
        return 0.5      # width 1 from 0.5: bin = the integer grey level itself
    if cfg.discretisation == "fbs" and cfg.resegment_range:
        return float(cfg.resegment_range[0])
    return None


def select_tags(cfg: IBSIConfig, classes=None) -> list[str]:
    """The configuration's IBSI tags, restricted to the feature ``classes`` (names of CLASS_FAMILY)."""
    tags = tags_for(cfg.dims)
    if classes is None:
        return tags
    unknown = [c for c in classes if c not in CLASS_FAMILY]
    if unknown:
        raise InputError(f"unknown feature {agree(len(unknown), 'class', 'classes')} {unknown}",
                         f"choose from {', '.join(CLASS_FAMILY)}")
    fams = {CLASS_FAMILY[c] for c in classes}
    return [t for t in tags if family(t) in fams]


def unverified_tags(tags) -> list[str]:
    """The tags among ``tags`` (IBSI tags written: ``feature_class + "_" + feature`` of an ``ibsi-*`` preset's table)
    that IBSI-1 gives no reference value for (:data:`~lungai.radiomics.ibsi.mapping.UNVERIFIED`): computed as IBSI-1
    defines them, but no ``ibsi-check`` verifies them."""
    return [t for t in dict.fromkeys(tags) if t in UNVERIFIED]


def reference_record(tags) -> dict:
    """The ``ibsi_reference`` entry of an ``ibsi-*`` preset's ``<output>.settings.json``: which of the IBSI ``tags``
    written (per segment) have an IBSI-1 reference value (verified by ``lungai ibsi-check`` on the IBSI-1 phantom) and
    which have none (:func:`unverified_tags`)."""
    tags = list(dict.fromkeys(tags))
    unverified = unverified_tags(tags)
    return {"with_reference_value": len(tags) - len(unverified), "without_reference_value": unverified,
            "meaning": "IBSI-1 gives reference values for every feature written but those without_reference_value, and "
                       "lungai ibsi-check matches them on the IBSI-1 phantom; those without one are computed as IBSI-1 "
                       "defines them, but not verified"}


def pyradiomics_values(img: sitk.Image, morph: sitk.Image, intensity: sitk.Image, cfg: IBSIConfig,
                       tags) -> dict[str, dict[str, float]]:
    """pyradiomics values per run ('shape', 'first', '3D_avg', '2_5D_comb' ...) needed for ``tags``."""
    runs: dict[str, set] = {}
    for tag in tags:
        tgt, _ = target(tag)
        if tgt is not None:
            runs.setdefault(tgt.run, set()).add(tgt.feature.split("_", 1)[0])
    settings = _base_settings(cfg)
    origin = _bin_origin(cfg)
    out: dict[str, dict[str, float]] = {"shape": pyradiomics_shape(img, morph, settings) if "shape" in runs
                                        else {}}
    texture_dims = sorted({run.rsplit("_", 1)[0] for run in runs if run.endswith(("_avg", "_comb"))})
    if "first" in runs and not texture_dims:
        texture_dims = ["2_5D" if cfg.force2d else "3D"]
    with fixed_bin_origin(origin) if origin is not None else contextlib.nullcontext():
        for dim in texture_dims:
            s = {**settings, "force2D": dim == "2_5D", "force2Ddimension": 0}
            avg = runs.get(f"{dim}_avg", set()) | ({"firstorder"} if "first" in runs else set())
            out[f"{dim}_avg"] = _execute(img, intensity, tuple(c for c in ("firstorder",) + TEXTURE if c in avg), s)
            out["first"] = out[f"{dim}_avg"]
            comb = runs.get(f"{dim}_comb", set())
            out[f"{dim}_comb"] = _execute(img, intensity, tuple(c for c in TEXTURE if c in comb),
                                          {**s, "weightingNorm": "no_weighting"})
    return out


# Configuration 'digital' does not discretise: its grey levels are the image's values, small integers from 1.
MAX_GREY_LEVEL = 1000


def _check_grey_levels(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> None:
    """A configuration without discretisation needs integer grey levels 1 .. MAX_GREY_LEVEL in the mask."""
    if cfg.discretisation != "none":
        return
    v = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
    if v.size and (v.min() < 1 or v.max() > MAX_GREY_LEVEL or not np.all(v == np.round(v))):
        raise InputError(f"configuration 'digital' is for the IBSI digital phantom (integer grey levels 1, 2, 3 ...,"
                         f" no discretisation); this image holds values {v.min():g} .. {v.max():g} in the mask",
                         "use --config a .. e for the IBSI CT phantom (HU), or give the digital phantom "
                         "(digital_phantom/nifti/image/phantom.nii.gz)")


def _grid_text(image: sitk.Image) -> str:
    return " x ".join(f"{v:g}" for v in np.round(image.GetSpacing(), 3))


def ibsi_images(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig,
                name: str = "ROI") -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """Configuration ``cfg``'s image processing: (interpolated image, morphological mask, intensity mask), in LPS
    order (:func:`lungai.io.geometry.to_lps`: the 2D / 2.5D texture's slices are axial whatever the stored order).

    An empty or one-voxel mask (``name`` in the message) is refused first, by the check of ``lungai radiomics``
    (:func:`lungai.radiomics.extract.check_segment`); so is one with fewer voxels left on the configuration's grid
    or in its re-segmentation range than that check asks for (pyradiomics' classes need two)."""
    from lungai.radiomics.extract import MIN_VOXELS, check_segment

    image, mask = to_lps(image), to_lps(mask)
    check_segment(mask, name)
    _check_grey_levels(image, mask, cfg)
    img, morph = interpolate_roi(image, mask, cfg)
    n_morph = int(np.count_nonzero(sitk.GetArrayViewFromImage(morph)))
    if n_morph < MIN_VOXELS:       # only a configuration that interpolates (B-E) can lose voxels
        n = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        raise InputError(f"segment {name!r} has {counted(n_morph, 'voxel')} left on configuration {cfg.name}'s "
                         f"{_grid_text(morph)} mm grid (of {n} on the image's grid): it is smaller than about half "
                         f"a voxel of that grid; texture and shape features need at least {MIN_VOXELS}",
                         "use a larger segment, or configuration A (ibsi-a: no interpolation)")
    intensity = resegment(img, morph, cfg)
    n_int = int(np.count_nonzero(sitk.GetArrayViewFromImage(intensity)))
    if n_int < MIN_VOXELS:
        what = "no voxel" if n_int == 0 else f"only {n_int} voxel"
        raise InputError(f"{what} of segment {name!r} lies within configuration {cfg.name}'s "
                         f"{_resegmentation_text(cfg)} (the ROI's {n_morph} voxels: "
                         f"{_roi_intensities(img, morph, cfg)}); texture and first-order features need at least "
                         f"{MIN_VOXELS}", _resegmentation_fix(img, morph, cfg))
    return img, morph, intensity


# IBSI-1's re-segmentation ranges were chosen for its phantom's solid GTV: -500..400 HU (A, B) leaves out most of a
# ground-glass nodule (LIDC-IDRI-0120_R_3 in A: 44 of 1909 voxels kept) and 80 % of a lung (LUNG1-003).  Below this part
# of the ROI kept, a note says that the intensity and texture features describe the part kept only.
RESEGMENT_NOTE_FRACTION = 0.5


def _resegmentation_text(cfg: IBSIConfig) -> str:
    rng = cfg.resegment_range
    parts = ([f"re-segmentation range {rng[0]:g}..{rng[1]:g} HU"] if rng else []) + \
        (["mean +- 3 SD filter"] if cfg.sigma_filter else [])
    return " and ".join(parts) or "grid"


def _roi_intensities(img: sitk.Image, morph: sitk.Image, cfg: IBSIConfig) -> str:
    """The ROI's intensities in words, against the configuration's range: its median and the parts below / above."""
    x = sitk.GetArrayViewFromImage(img)[sitk.GetArrayViewFromImage(morph) > 0]
    text = f"median {float(np.median(x)):g} HU"
    if cfg.resegment_range:
        lo, hi = cfg.resegment_range
        below, above = float(np.mean(x < lo)), float(np.mean(x > hi))
        text += "".join(f", {100 * f:.0f} % {side} {v:g}" for f, side, v in ((below, "below", lo), (above, "above", hi))
                        if round(100 * f) > 0)
    return text


def _resegmentation_fix(img: sitk.Image, morph: sitk.Image, cfg: IBSIConfig) -> str:
    """What to do when configuration ``cfg``'s range leaves out much of the ROI: a wider range for an ROI below it
    (ground-glass, lung); for an ROI above it (a calcified nodule, bone or contrast in the mask) the configuration
    without an upper bound (D) or a mask without them; else check the image and mask.  QA radiomics64: a calcified
    LIDC nodule (LIDC-IDRI-0321_R_2, Calcification "Solid": median 1236 HU, 80 % above 400 HU) was told to "check that
    the image is a CT in HU"; with ibsi-a, 29 of the 89 calcified LIDC nodules keep less than half of their ROI, and 24
    of them got that fix (23 of them mostly above 400 HU)."""
    rng = cfg.resegment_range
    if rng:
        x = sitk.GetArrayViewFromImage(img)[sitk.GetArrayViewFromImage(morph) > 0]
        below, above = float(np.mean(x < rng[0])), float(np.mean(x > rng[1]))
        if below > above and rng[0] > -1000:
            return (f"configuration {cfg.name}'s range {rng[0]:g}..{rng[1]:g} HU is for solid tumour; for a "
                    "ground-glass or part-solid nodule, or lung tissue, use configuration C or E (ibsi-c / ibsi-e: "
                    "-1000..400 HU) or D (ibsi-d: mean +- 3 SD, no fixed range)")
        if above > below:
            return (f"configuration {cfg.name}'s range {rng[0]:g}..{rng[1]:g} HU leaves out the ROI's voxels above "
                    f"{rng[1]:g} HU: calcification (a calcified nodule), bone or contrast; for a calcified nodule use "
                    "configuration D (ibsi-d: mean +- 3 SD, no fixed range); if the mask takes in bone or contrast-"
                    "filled vessels, draw it on the lesion only")
    return "check that the image is a CT in HU and the mask covers the region"


def resegment_note(img: sitk.Image, morph: sitk.Image, intensity: sitk.Image, cfg: IBSIConfig) -> str | None:
    """A note when configuration ``cfg``'s re-segmentation keeps less than :data:`RESEGMENT_NOTE_FRACTION` of the
    ROI (the morphological mask): its intensity, histogram and texture features describe the part kept only."""
    n_morph = int(np.count_nonzero(sitk.GetArrayViewFromImage(morph)))
    n_int = int(np.count_nonzero(sitk.GetArrayViewFromImage(intensity)))
    if n_morph == 0 or n_int >= RESEGMENT_NOTE_FRACTION * n_morph:
        return None
    return (f"only {n_int} of the ROI's {n_morph} voxels ({100 * n_int / n_morph:.0f} %) lie within configuration "
            f"{cfg.name}'s {_resegmentation_text(cfg)} ({_roi_intensities(img, morph, cfg)}): its intensity, "
            "intensity-histogram and texture features describe that part only (morphology the whole ROI); "
            f"{_resegmentation_fix(img, morph, cfg)}")


def compute_ibsi(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig, classes=None,
                 name: str = "ROI") -> dict[str, float]:
    """``{IBSI tag: value}`` for every IBSI-1 feature of configuration ``cfg`` (or of ``classes`` only); ``name``:
    the segment's, in the messages of :func:`ibsi_images`."""
    return ibsi_features(*ibsi_images(image, mask, cfg, name=name), cfg, classes)


# pyradiomics' texture classes pair voxels along the directions that fit in the ROI's bounding box; a 2.5D run
# (force2D: in-plane directions only) of an ROI 1 x 1 voxel in the axial plane (a column along z) has none and fails
# ("Error getting angle count.").  Those runs' texture features are NaN there (:func:`column_note` says why); every
# other value (pyradiomics' first order, lungai's 2D per-slice texture and dzm, morphology ...) is computed.
TEXTURE_2_5D_RUNS = ("2_5D_avg", "2_5D_comb")


def in_plane_column(intensity: sitk.Image, cfg: IBSIConfig) -> bool:
    """True when a 2D / 2.5D configuration's intensity mask is 1 x 1 voxel in the axial plane (LPS (z, y, x) arrays:
    :func:`ibsi_images`): pyradiomics' 2.5D texture classes have no in-plane direction there."""
    if not cfg.force2d:
        return False
    a = sitk.GetArrayViewFromImage(intensity) > 0
    return bool(a.any()) and int(a.any(axis=(0, 2)).sum()) == 1 and int(a.any(axis=(0, 1)).sum()) == 1


def pyradiomics_2_5d_texture(tags) -> list[str]:
    """The tags among ``tags`` that pyradiomics' 2.5D texture runs compute (not its first order)."""
    out = []
    for tag in tags:
        tgt, _ = target(tag)
        if tgt is not None and tgt.run in TEXTURE_2_5D_RUNS and tgt.feature.split("_", 1)[0] in TEXTURE:
            out.append(tag)
    return out


def column_note(values: dict[str, float], intensity: sitk.Image, cfg: IBSIConfig) -> str | None:
    """Why pyradiomics' 2.5D texture features of ``values`` are NaN: the intensity mask is a column along z
    (:func:`in_plane_column`); None otherwise."""
    if not in_plane_column(intensity, cfg):
        return None
    gone = [t for t in pyradiomics_2_5d_texture(values) if values[t] != values[t]]
    if not gone:
        return None
    n = int(np.count_nonzero(sitk.GetArrayViewFromImage(intensity)))
    rng = cfg.resegment_range
    where = (f"within configuration {cfg.name}'s re-segmentation {rng[0]:g}..{rng[1]:g} HU" if rng
             else f"on configuration {cfg.name}'s grid")
    fams = ", ".join(dict.fromkeys(family(t) for t in gone))
    return (f"the ROI's {n} voxels {where} lie in one column along z (1 x 1 voxel in the axial plane), so pyradiomics' "
            f"2.5D texture has no in-plane direction to pair voxels (\"Error getting angle count\"): its {len(gone)} "
            f"{fams} _2_5D features are NaN (lungai's 2D per-slice texture, dzm, morphology, statistics and intensity "
            f"histogram are computed); use a 3D configuration (ibsi-c .. ibsi-e) for texture of so thin an ROI")


def nan_notes(values: dict[str, float], intensity: sitk.Image, cfg: IBSIConfig) -> list[str]:
    """Why values of :func:`ibsi_features` are NaN, one note per reason naming the features: pyradiomics' 2.5D
    texture of a column along z (:func:`column_note`), a flat ROI's approximate-enclosing-ellipsoid densities (a zero-length
    axis), any other NaN (undefined on this ROI: e.g. no voxel between the 10th and 90th percentiles of 2 voxels)."""
    nan = [t for t, v in values.items() if v != v]
    notes = []
    column = column_note(values, intensity, cfg)
    if column:
        notes.append(column)
        gone = set(pyradiomics_2_5d_texture(nan))
        nan = [t for t in nan if t not in gone]
    aee = [t for t in nan if t in ("morph_vol_dens_aee", "morph_area_dens_aee")]
    if aee:
        notes.append(f"{' and '.join(aee)} are NaN: the ROI lies in one plane (flat, or a line), so its approximate "
                     "enclosing ellipsoid has a zero-length axis")
        nan = [t for t in nan if t not in aee]
    if nan:
        n = int(np.count_nonzero(sitk.GetArrayViewFromImage(intensity)))
        notes.append(f"{_listed(nan)} {'is' if len(nan) == 1 else 'are'} NaN: undefined on this ROI's {n} "
                     "voxels within the re-segmentation range (too few or too uniform: e.g. no two voxels neighbours "
                     "in an axial slice for 2D texture)")
    return notes


def _listed(tags) -> str:
    """The tags by name, a family's many of one dimension counted (``50 cm 2D features (cm_joint_max_2D_avg ...)``)."""
    groups: dict[tuple, list] = {}
    for t in tags:
        groups.setdefault((family(t), dimension(t)), []).append(t)
    return ", ".join(f"{len(ts)} {fam} {dim} features ({ts[0]} ...)" if dim and len(ts) > 3 else ", ".join(ts)
                     for (fam, dim), ts in groups.items())


def ibsi_features(img: sitk.Image, morph: sitk.Image, intensity: sitk.Image, cfg: IBSIConfig,
                  classes=None) -> dict[str, float]:
    """:func:`compute_ibsi` on the images :func:`ibsi_images` made.  A 2D / 2.5D configuration whose intensity mask
    is a column along z gives NaN for pyradiomics' 2.5D texture features (:func:`column_note` says why).
    numpy's warnings on undefined values (NaN, :func:`nan_notes` says why) are not printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # "Mean of empty slice" ...: the value is NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            return _ibsi_features(img, morph, intensity, cfg, classes)


def _ibsi_features(img, morph, intensity, cfg, classes) -> dict[str, float]:
    tags = select_tags(cfg, classes)
    no_texture = pyradiomics_2_5d_texture(tags) if in_plane_column(intensity, cfg) else []
    tags = [t for t in tags if t not in no_texture]     # pyradiomics would fail on them ("Error getting angle count")
    py = pyradiomics_values(img, morph, intensity, cfg, tags)
    values: dict[str, float] = {}
    n_morph = int(sitk.GetArrayViewFromImage(morph).sum())
    for tag in tags:
        tgt, _ = target(tag)
        if tgt is not None and tgt.feature in py.get(tgt.run, {}):
            values[tag] = py[tgt.run][tgt.feature] + tgt.offset
            if tgt.feature in PCA_AXES and n_morph > 1:
                values[tag] *= np.sqrt(n_morph / (n_morph - 1))
    rest = [t for t in tags if t not in values]
    if rest:
        arr = sitk.GetArrayFromImage(img).astype(float)
        m = sitk.GetArrayFromImage(morph) > 0
        i = sitk.GetArrayFromImage(intensity) > 0
        lower = _bin_origin(cfg) if cfg.discretisation != "none" else None
        prep = prepare(arr, m, i, img.GetSpacing()[::-1], cfg.discretisation, cfg.bins, lower, cfg.ivh,
                       cfg.resegment_range)
        values.update(compute_extras(prep, rest, py["shape"] or None))
    values.update(dict.fromkeys(no_texture, float("nan")))
    return {t: values[t] for t in select_tags(cfg, classes) if t in values}


def compute_settings_only(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig, name: str = "ROI") -> dict[str, float]:
    """pyradiomics with its own resampling and re-segmentation (what the ``ibsi-<x>`` presets did before), for
    comparison (``ibsi-check --settings-only``); a mask pyradiomics refuses on its grid (one voxel left) is an
    :class:`InputError` naming ``name``."""
    from lungai.radiomics.params import PYRADIOMICS_SETTINGS

    settings = {**_base_settings(cfg), **PYRADIOMICS_SETTINGS[cfg.name]}
    image, mask = to_lps(image), to_lps(mask)       # axial slices, as ibsi_images
    image = sitk.Round(sitk.Cast(image, sitk.sitkFloat32))
    runs = {"shape": _execute(image, mask, ("shape",), settings, name)}
    dim = "2_5D" if cfg.force2d else "3D"
    runs[f"{dim}_avg"] = runs["first"] = _execute(image, mask, ("firstorder",) + TEXTURE, settings, name)
    runs[f"{dim}_comb"] = _execute(image, mask, ("glcm", "glrlm"), {**settings, "weightingNorm": "no_weighting"},
                                   name)
    values = {}
    for tag in tags_for(cfg.dims):
        tgt, _ = target(tag)
        if tgt is not None and tgt.feature in runs.get(tgt.run, {}):
            values[tag] = runs[tgt.run][tgt.feature] + tgt.offset
    return values


def compare(values: dict[str, float], reference: pd.DataFrame, cfg: IBSIConfig) -> Report:
    """One row per reference tag: where the value comes from, value, reference, tolerance, status."""
    rows = []
    for r in reference.itertuples(index=False):
        tgt, reason = target(r.tag)
        feature = tgt.feature if tgt is not None and dimension(r.tag) != "2D" else ""
        if r.tag not in values:
            rows.append((r.tag, "", feature, float("nan"), r.reference, r.tolerance, "not computed",
                         reason or "not computed"))
            continue
        value = values[r.tag]
        ok = within(value, r.reference, r.tolerance)
        note = ""
        if feature and tgt.offset:
            note = f"offset {tgt.offset:+g} applied"
        elif feature in PCA_AXES:
            note = "scaled by sqrt(N/(N-1)) (sample covariance)"
        rows.append((r.tag, "pyradiomics" if feature else "lungai", feature, value, r.reference, r.tolerance,
                     "within tolerance" if ok else "outside tolerance", note))
    # the tags computed that IBSI-1 gives no reference value for (ivh_auc): listed, as the presets write them, with
    # their status - not counted among the reference features (QA radiomics72: left out of the table without a word)
    referenced = set(reference.tag)
    for tag in unverified_tags(t for t in values if t not in referenced):
        rows.append((tag, "lungai", "", values[tag], float("nan"), float("nan"), NO_REFERENCE_STATUS,
                     "IBSI-1 gives no reference value: computed as IBSI-1 defines it, not verified"))
    table = pd.DataFrame(rows, columns=["tag", "source", "pyradiomics_feature", "value", "reference", "tolerance",
                                       "status", "note"])
    return Report(cfg.name, table)


def run_check(image_path, mask_path, reference_path, config: str, ibsi_preprocessing: bool = True,
              progress=None) -> Report:
    """Read the phantom and reference, compute configuration ``config`` (A-E or digital), compare.  ``progress``
    (``update(n, message)``, :func:`lungai.progress.task`): the steps said as they start, the long ones with their
    seconds (:func:`lungai.progress.waiting`), :data:`~lungai.radiomics.ibsi.compare.CHECK_STEPS` - 1 of them
    counted; the caller counts the last (the comparison's result)."""
    from lungai.progress import NullProgress, waiting

    progress = progress if progress is not None else NullProgress()
    cfg = CONFIGS.get(config.upper())
    if cfg is None:
        raise InputError(f"unknown IBSI configuration {config!r}", "choose A, B, C, D, E or digital")
    if not ibsi_preprocessing and cfg.name not in "ABCDE":
        raise InputError("--settings-only applies to configurations A-E", "leave it out for the digital phantom")

    def read():
        reference = read_reference(reference_path)
        image = read_image(image_path)
        check_finite(image, Path(image_path).name)      # NaN / infinite voxels refused as for every CT
        mask = on_grid(image, read_mask(mask_path), "IBSI mask")
        return reference, image, mask

    reference, image, mask = waiting(progress, CHECK_READING, read)
    progress.update(1, f"{Path(image_path).name}, {Path(mask_path).name} and the reference read")
    measured = {}
    if ibsi_preprocessing:
        images = waiting(progress, check_interpolating(cfg.name), ibsi_images, image, mask, cfg,
                         name=Path(mask_path).name)
        measured = measure(*images)
        progress.update(1, f"interpolated and re-segmented: {measured['int_mask_vox_count_reseg_roi']:.0f} voxels "
                           "in the intensity mask")
        values = waiting(progress, CHECK_FEATURES, ibsi_features, *images, cfg)
    else:
        from lungai.radiomics.extract import check_segment

        check_segment(mask, Path(mask_path).name)       # as ibsi_images: an empty / one-voxel mask said in words
        values = waiting(progress, CHECK_FEATURES_SETTINGS_ONLY, compute_settings_only, image, mask, cfg,
                         name=Path(mask_path).name)
    # (settings only: no IBSI interpolation, its step counted with the features)
    progress.update(1 if ibsi_preprocessing else 2, f"{counted(len(values), 'feature')} computed; {CHECK_COMPARING}")
    report = compare(values, reference, cfg)
    # the spacing of the image the features were computed on: LPS order (a phantom stored LSP lists it in other order)
    why = mismatch(cfg, reference, read_reference(reference_path, diagnostics=True), measured,
                   to_lps(image).GetSpacing())
    if why:
        report.warnings.append(why)
    return report
