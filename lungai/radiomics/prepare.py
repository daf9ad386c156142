"""What each segment's features are computed on: a crop of the CT around the segment, and for the
lungs (default settings) an IBSI-style isotropic resampling done once for all lung segments.

Why: on a whole 512 x 512 x 300 CT pyradiomics spent most of its time on work that does not change
the result (statistics over the whole image per segment) or on lung masks at native resolution
(the surface mesh of a 2-litre lung has hundreds of thousands of vertices, and pyradiomics' maximum
diameters compare every pair of them).  Three standard steps remove that:

0. **LPS axial order first** (:func:`in_lps`): the image and every mask are reoriented to LPS
   (:func:`lungai.io.geometry.to_lps`, voxels flipped / permuted only) - pyradiomics works on the
   stored array (2D / 2.5D texture in its slices, ``Maximum2DDiameterSlice`` / ``Row`` / ``Column``
   along its axes, the mesh's winding), so a CT stored sagittal or RAS gave other values.  An image
   stored in LPS order is used as it is (the same values as before).
1. **Crop** every segment to its bounding box plus a margin before any filtering or resampling.
   For the Original image this is lossless (pyradiomics crops to the mask itself after
   filtering); with LoG / Wavelet the margin covers the filter support (:func:`margin_voxels`).
2. **Lung texture on an isotropic grid** (``params["lungai"]["lung_spacing_mm"]``, 2 mm in the
   ``default`` preset): the right lung, left lung, lungs and lungs minus tumour are resampled the
   IBSI way (:mod:`lungai.radiomics.ibsi.preprocess`: grid centred on the CT's, linear image
   interpolation with rounded intensities, linear mask interpolation kept at >= 0.5).  The grid is
   the whole CT's IBSI grid restricted to the box of all lung segments (so cropping does not move
   it), and the CT is resampled onto it once; every lung mask is resampled onto the same grid.
   The tumour keeps the CT's own grid (``tumour`` is not a lung segment).  Lung segments are recognised by role
   (:func:`is_lung_segment`: ``Lung_R`` as ``right_lung``), never by substring.
3. Every segment is computed once (:func:`lungai.radiomics.extract.extract` may run them in
   parallel processes).

Each :class:`Prepared` carries a ``settings`` dict that the outputs record per segment.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lungai.io.geometry import bounding_box
from lungai.radiomics.ibsi.preprocess import (centre_aligned_grid, grid_image, interpolated_voxels, resample_image,
                                              resample_mask)

SETTINGS_COLUMNS = ["case", "segment", "grid", "spacing_mm", "interpolation", "crop", "grid_size", "voxels",
                    "discretisation", "image_types", "cut_by_image_edge", "structures", "orientation", "versions",
                    "notes"]   # notes: why some of the segment's values are NaN (an IBSI preset's nan_notes)
# the orientation features are computed in (settings column "orientation"; radiomics-batch resumes parts with it)
COMPUTED_ORIENTATION = "LPS (axial slices)"
LOG_MARGIN_SIGMAS = 8   # LoG crop margin in sigmas (equal to pyradiomics on the whole CT to ~1e-5)
IBSI_INTERPOLATION = "IBSI: centre-aligned grid, linear image (rounded HU), linear mask >= 0.5"


def is_lung_segment(name: str, lung_names=()) -> bool:
    """A lung segment for radiomics (its lung grid, the lungs' rule of a cut by the scan; the one decision of
    :mod:`lungai.radiomics`): by its role (:func:`lungai.segment_roles.is_lung`, the table of names also used for the
    Slicer panel's derived lungs and RTSTRUCT structures): ``right_lung``, ``Left lung``, ``Lung_R``, ``RT LUNG``,
    ``Lungs minus tumour``, ``Lungs-GTV`` ...; or listed in ``lung_names``, the segments that are lungs by a role given
    to them rather than by their name (:func:`lungai.segment_roles.lungs_by_role`: a ``--structure-map`` role, a DICOM
    SEG's code, a Slicer segment's terminology).  A tumour (``GTV-1``, ``Lung tumour``) never is by its name."""
    from lungai.segment_roles import is_lung

    return str(name) in {str(n) for n in lung_names} or is_lung(name)


def lung_spacing(params: dict) -> float | None:
    """The isotropic lung spacing (mm) of a parameter set; None = lungs on the CT's own grid."""
    value = (params.get("lungai") or {}).get("lung_spacing_mm")
    return float(value) if value else None


def pyradiomics_params(params: dict) -> dict:
    """The parameter set without lungai's own block (what pyradiomics is given).  Without ``normalize`` too:
    :func:`prepare` normalises the image with the whole CT's statistics (:func:`normalisation`) before the crop, so
    pyradiomics must not normalise the crop again."""
    out = {k: v for k, v in params.items() if k != "lungai"}
    if (out.get("setting") or {}).get("normalize"):
        out["setting"] = {k: v for k, v in out["setting"].items() if k != "normalize"}
    return out


def normalisation(image: sitk.Image, params: dict) -> tuple | None:
    """pyradiomics' ``normalize`` of a parameter set as (mean, standard deviation, ``normalizeScale``,
    ``removeOutliers``), the statistics of the **whole** image as pyradiomics' ``imageoperations.normalizeImage``
    takes them (``sitk.Normalize``: every voxel, not only the segment's); None without ``normalize``.  Taken before
    any crop: the statistics of a segment's box (what pyradiomics saw of a cropped CT) differ from the CT's (QA:
    pyradiomics' lung2, 40 of 42 values off, GLCM JointEnergy 0.62 instead of 0.32)."""
    setting = params.get("setting") or {}
    if not setting.get("normalize"):
        return None
    stats = sitk.StatisticsImageFilter()
    stats.Execute(image)
    return stats.GetMean(), stats.GetSigma(), float(setting.get("normalizeScale", 1)), setting.get("removeOutliers")


def normalised(image: sitk.Image, norm: tuple | None) -> sitk.Image:
    """``image`` normalised as pyradiomics' ``normalizeImage`` does, with the statistics ``norm`` of
    :func:`normalisation`: (x - mean) / sd, clipped to +-``removeOutliers``, times ``normalizeScale``; ``image`` itself
    when ``norm`` is None."""
    if norm is None:
        return image
    mean, sd, scale, outliers = norm
    out = sitk.ShiftScale(sitk.Cast(image, sitk.sitkFloat64), -mean, 1.0 / sd)
    if outliers is not None:
        out = sitk.Clamp(out, sitk.sitkFloat64, -float(outliers), float(outliers))
    return out * scale


# pyradiomics image types whose filter scales by the largest |value| of the image it is given (getSquareImage ...):
# computed on a crop, that is the crop's, not the CT's (QA: pyradiomics' lung2, 63 of 90 values off, exit 0)
WHOLE_IMAGE_TYPES = ("Square", "SquareRoot", "Logarithm", "Exponential")


def whole_image_types(params: dict) -> list[str]:
    """The image types of ``params`` that need the whole image (:data:`WHOLE_IMAGE_TYPES`): no crop for them."""
    return [t for t in (params.get("imageType") or {}) if t in WHOLE_IMAGE_TYPES]


def margin_voxels(params: dict, spacing) -> int:
    """Voxels kept around a segment's box: pyradiomics' ``padDistance`` (5); more for filters.

    LoG: :data:`LOG_MARGIN_SIGMAS` (8) sigma: with 4 sigma, sigma 3 mm features on pyradiomics' lung1 CT
    differed from pyradiomics on the whole CT by up to 0.4-0.8 % (the filter sees the crop's edge);
    8 sigma: < 3e-5 relative.  Wavelet: 8 voxels (coif1 at level 1 spans 6).
    """
    margin = int(params.get("setting", {}).get("padDistance", 5))
    types = params.get("imageType") or {}
    if "LoG" in types:
        sigmas = (types["LoG"] or {}).get("sigma") or params.get("setting", {}).get("sigma") or [3.0]
        margin = max(margin, math.ceil(LOG_MARGIN_SIGMAS * max(sigmas) / min(spacing)))
    if "Wavelet" in types:
        # each level filters the previous level's approximation again (pyradiomics' _swt3): 8 voxels per level
        wavelet = {**params.get("setting", {}), **(types["Wavelet"] or {})}
        margin = max(margin, 8 * (int(wavelet.get("start_level", 0)) + int(wavelet.get("level", 1))))
    return margin


def wavelet_whole_axes(params: dict, lo, hi, size) -> tuple[np.ndarray, np.ndarray]:
    """The crop ``lo``..``hi`` (already clamped to the image of ``size``) with, for a Wavelet image, every axis on
    which it reaches a face of the image taken whole: pyradiomics' stationary wavelet transform is periodic (it
    wraps round the image), so at a face it wraps round to the opposite face of the CT - on a crop it wrapped round
    to the crop's (QA: LUNG1-002's GTV cut at x- / z-, 125 of 162 values off, up to 59 %).  Unchanged otherwise."""
    lo, hi, size = np.array(lo, int), np.array(hi, int), np.asarray(size, int)
    if "Wavelet" in (params.get("imageType") or {}):
        face = (lo <= 0) | (hi >= size - 1)
        lo[face], hi[face] = 0, size[face] - 1
    return lo, hi


@dataclass
class Prepared:
    """One segment ready for pyradiomics: image and mask on the same (cropped) grid."""

    name: str
    image: sitk.Image
    mask: sitk.Image
    settings: dict


def crop(image: sitk.Image, lo, hi) -> sitk.Image:
    """``image`` restricted to voxels lo..hi (x, y, z, inclusive); geometry kept (a numpy copy: faster than sitk slicing)."""
    arr = sitk.GetArrayViewFromImage(image)[int(lo[2]):int(hi[2]) + 1, int(lo[1]):int(hi[1]) + 1,
                                            int(lo[0]):int(hi[0]) + 1]
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint(tuple(int(i) for i in lo)))
    return out


def _clamp(lo, hi, size) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(lo, 0), np.minimum(hi, np.asarray(size) - 1)


def _fmt_spacing(spacing) -> str:
    return " x ".join(f"{s:g}" for s in np.round(spacing, 3))


def _describe(params: dict) -> tuple[str, str]:
    s = params.get("setting", {})
    disc = f"{s['binCount']} bins" if "binCount" in s else f"bin width {s.get('binWidth', 25):g}"
    return disc, ", ".join(params.get("imageType") or {"Original": {}})


def _grid_phrase(row) -> str:
    """How one settings row's segment was put on its grid, in words (the ``grid``, ``spacing_mm`` and
    ``interpolation`` columns :func:`prepare` writes)."""
    grid, spacing, interp = str(row["grid"]), str(row["spacing_mm"]), str(row["interpolation"])
    if grid.startswith("native"):
        return f"on the CT's grid ({spacing} mm)"
    if grid == "resampled":                      # lungai's isotropic lung grid (IBSI_INTERPOLATION)
        return f"resampled to {spacing} mm (IBSI-style)"
    if grid.startswith("resampled by pyradiomics"):
        return f"resampled by pyradiomics to {spacing} mm ({interp})"
    return f"{grid} ({spacing} mm)"


def settings_text(settings) -> str:
    """The grid and discretisation each segment's features were computed with, from the settings table
    :func:`prepare` records (``radiomics_settings.csv``): segments that share them named together, e.g.
    "tumour: on the CT's grid (0.977 x 0.977 x 3 mm), bin width 25; right lung, left lung: resampled to 2 x 2 x 2 mm
    (IBSI-style), bin width 25" - what was done, whichever preset or parameter file gave the settings."""
    groups: dict[str, list[str]] = {}
    for _, row in settings.iterrows():
        groups.setdefault(f"{_grid_phrase(row)}, {row['discretisation']}", []).append(
            str(row["segment"]).replace("_", " "))
    return "; ".join(f"{', '.join(names)}: {how}" for how, names in groups.items()) or "no segment computed"


def _corners(image: sitk.Image, lo, hi) -> np.ndarray:
    """Physical points of the 8 corners of the (continuous) index box lo..hi of ``image``."""
    return np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in corner))
                     for corner in itertools.product(*zip(lo, hi))])


def _index_box(points: np.ndarray, origin, spacing, direction) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-index bounding box (x, y, z) of physical points on a grid."""
    d = np.asarray(direction, float).reshape(3, 3)
    idx = (points - np.asarray(origin)) @ d / np.asarray(spacing)
    return idx.min(axis=0), idx.max(axis=0)


def lung_grid(image: sitk.Image, lo, hi, spacing_mm: float, margin: int, params: dict | None = None):
    """The CT's IBSI grid at ``spacing_mm``, restricted to the box ``lo``..``hi`` (CT voxels, x y z)
    plus ``margin`` grid voxels (whole along a face it reaches with a Wavelet image of ``params``:
    :func:`wavelet_whole_axes`), and the CT voxels needed to resample onto it: (reference grid image, CT lo, CT hi)."""
    size, origin, sp = centre_aligned_grid(image, (spacing_mm,) * 3)
    direction = image.GetDirection()
    out_lo, out_hi = _index_box(_corners(image, lo - 1, hi + 1), origin, sp, direction)
    out_lo, out_hi = _clamp(np.floor(out_lo).astype(int) - margin, np.ceil(out_hi).astype(int) + margin, size)
    out_lo, out_hi = wavelet_whole_axes(params or {}, out_lo, out_hi, size)
    sub_origin = np.asarray(origin) + np.asarray(direction).reshape(3, 3) @ (out_lo * np.asarray(sp))
    ref = grid_image(out_hi - out_lo + 1, sub_origin, sp, direction)
    # the CT voxels around every grid point (linear interpolation reads the neighbours on each side)
    n_lo, n_hi = _index_box(_corners(ref, (0, 0, 0), np.asarray(ref.GetSize()) - 1), image.GetOrigin(),
                            image.GetSpacing(), direction)
    n_lo, n_hi = _clamp(np.floor(n_lo).astype(int) - 1, np.ceil(n_hi).astype(int) + 1, image.GetSize())
    return ref, n_lo, n_hi


TEXTURE_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "gldzm")
SPACING_TOLERANCE = 0.01      # relative: spacings closer than this count as equal


def mixed_spacing_note(settings, params: dict) -> str | None:
    """The warning for a cohort whose texture features are not comparable across cases (None when they are):
    segments computed on each CT's own grid (``grid`` native, or an IBSI configuration A / B that keeps the CT's
    spacing, in the ``_settings.csv`` records ``settings``: rows with
    ``case``, ``segment``, ``grid``, ``spacing_mm``) whose voxel spacing differs across cases - compared over all
    such segments, whatever their names (a tumour named ``label_1`` in one case and ``tumour`` in another) -, with
    texture classes in ``params``.  Texture values depend on the voxel spacing (one tumour at two spacings: 30-200 %)."""
    import pandas as pd

    from lungai.radiomics.params import ibsi_config

    classes = set(params.get("featureClass") or {})
    cfg = ibsi_config(params)
    # an IBSI configuration with its whole spacing set (C-E) gives every case one grid; A (no interpolation) and B
    # (2 x 2 mm in plane, the CT's own z) keep spacings of the CT: their rows are compared (full spacing: for B the
    # in-plane part is the same everywhere, so it is z)
    if (cfg is not None and cfg.spacing is not None and None not in cfg.spacing) or not classes & set(TEXTURE_CLASSES):
        return None
    df = pd.DataFrame(settings)
    if df.empty or not {"case", "segment", "grid", "spacing_mm"} <= set(df.columns):
        return None
    df = df[df["grid"].fillna("").astype(str).str.startswith("IBSI" if cfg is not None else "native")]

    def spacing_groups(rows) -> list[list]:
        groups: list[list] = []          # [spacing, cases]
        for case, text in zip(rows["case"], rows["spacing_mm"].astype(str)):
            sp = np.array([float(v) for v in text.split(" x ")])
            for g in groups:
                if np.allclose(g[0], sp, rtol=SPACING_TOLERANCE, atol=0):
                    g[1].add(case)
                    break
            else:
                groups.append([sp, {case}])
        return groups

    # every segment on its CT's grid is compared with every case's, whatever its name (QA: lung1 / lung2's label_1
    # and LUNG1-003's tumour, one cohort, were compared only within each name); each segment's spacings listed
    if len(spacing_groups(df)) < 2:
        return None
    from lungai.errors import counted

    found = []
    for seg, rows in df.groupby("segment", sort=False):
        groups = spacing_groups(rows)
        found.append(f"{seg}: " + ", ".join(f"{_fmt_spacing(sp)} mm in {counted(len(cases), 'case')}"
                                            for sp, cases in groups[:4]) + (" ..." if len(groups) > 4 else ""))
    return ("the voxel spacing differs across cases (" + "; ".join(found) + ") and texture features were computed on "
            "each CT's own grid: texture values depend on the spacing (one tumour at two spacings differs by 30-200 %), "
            "so they are not comparable across these cases; use --params ibsi-c (2 mm isotropic grid) or a parameter "
            "file with resampledPixelSpacing (grid and spacing per segment: _settings.csv)")


def pyradiomics_resampling(params: dict) -> list | None:
    """pyradiomics' ``resampledPixelSpacing`` when the parameter set resamples (any spacing not 0), else None."""
    spacing = (params.get("setting") or {}).get("resampledPixelSpacing")
    return list(spacing) if spacing and any(float(v) for v in spacing) else None


def check_bspline_axes(image: sitk.Image, interpolator: str) -> None:
    """Refuse pyradiomics' B-spline resampling (``interpolator: sitkBSpline``, its default, or another B-spline) of
    an image with an axis of exactly 2 samples: ITK's B-spline reads outside the image there and the features come
    out different on every run (:func:`lungai.radiomics.ibsi.preprocess.two_sample_axes`; lungai's own IBSI
    presets resample such an image exactly).  pyradiomics resamples inside its own code, so it is refused here."""
    from lungai.errors import InputError
    from lungai.radiomics.ibsi.preprocess import two_sample_axes

    axes = two_sample_axes(image)
    if "BSpline" in interpolator and axes:
        named = " and ".join("xyz"[d] for d in axes)
        raise InputError(f"the image has only 2 {'slices' if axes == [2] else 'samples'} along {named} "
                         f"({'x'.join(map(str, image.GetSize()))} voxels) and the settings resample it with "
                         f"{interpolator} (pyradiomics' default when none is set): ITK's B-spline reads outside an "
                         "axis of 2 samples and gives different values on every run",
                         "set 'interpolator: sitkLinear' under 'setting' in the parameter file, use --params "
                         "ibsi-e (lungai resamples such an image exactly), or give the CT with more slices")


def pyradiomics_grid(image: sitk.Image, mask: sitk.Image, lo, hi, params: dict) -> dict:
    """The grid pyradiomics' ``resampleImage`` computes a segment on (box ``lo``..``hi`` of ``mask``, x y z), given
    the whole image: the grid is aligned with the image's origin, so it is the whole image's resampled grid cut to
    the box + ``padDistance``.  Settings columns (spacing, interpolation, grid size, voxels of the resampled mask)."""
    from radiomics import imageoperations

    setting = params.get("setting") or {}
    native = np.asarray(mask.GetSpacing(), float)
    new = np.asarray(pyradiomics_resampling(params), float)
    new = np.where(new == 0, native, new)
    bb_size = np.asarray(hi) - np.asarray(lo) + 1
    new = np.where(bb_size != 1, new, native)          # a box one slice thick is not resampled in that direction
    interp = setting.get("interpolator", "sitkBSpline")
    interp = interp if isinstance(interp, str) else {v: k for k, v in vars(sitk).items()
                                                      if k.startswith("sitk") and isinstance(v, int)}.get(interp, interp)
    if np.allclose(np.asarray(image.GetSpacing()), new):     # pyradiomics then only crops (no interpolation)
        return {"grid": "native (resampledPixelSpacing equals the CT's)", "spacing_mm": _fmt_spacing(native),
                "interpolation": "none", "grid_size": "x".join(str(int(v)) for v in bb_size)}
    check_bspline_axes(image, str(interp))
    label = int(setting.get("label", 1))
    ref_mask = sitk.Cast(mask > 0, sitk.sitkUInt8) * label if label != 1 else mask
    # the grid does not depend on the interpolator: the mask alone, nearest neighbour (no pass over the CT)
    _, resampled = imageoperations.resampleImage(ref_mask, ref_mask, resampledPixelSpacing=list(new),
                                                 interpolator=sitk.sitkNearestNeighbor, label=label,
                                                 padDistance=int(setting.get("padDistance", 5)))
    return {"grid": "resampled by pyradiomics (grid aligned with the whole CT's origin)",
            "spacing_mm": _fmt_spacing(resampled.GetSpacing()), "interpolation": str(interp),
            "grid_size": "x".join(map(str, resampled.GetSize())),
            "voxels": int(np.count_nonzero(sitk.GetArrayViewFromImage(resampled) == label))}


def _ibsi_grid(image: sitk.Image, cfg) -> dict:
    """The grid an IBSI configuration computes on: its spacing (z None = the CT's) centred on the whole CT's."""
    if cfg.spacing is None:
        return {"spacing_mm": _fmt_spacing(image.GetSpacing()), "interpolation": "none (IBSI configuration "
                f"{cfg.name})", "grid_size": "x".join(map(str, image.GetSize()))}
    size, _, spacing = centre_aligned_grid(image, cfg.spacing)
    return {"spacing_mm": _fmt_spacing(spacing), "grid_size": "x".join(map(str, size)),
            "interpolation": f"IBSI configuration {cfg.name}: centre-aligned grid, {cfg.interpolator} image (rounded "
                             "HU), linear mask >= 0.5"}


def in_lps(image: sitk.Image, segments: dict[str, sitk.Image]) -> tuple[sitk.Image, dict[str, sitk.Image], str]:
    """(the image and masks in LPS order (:func:`lungai.io.geometry.to_lps`: themselves when stored so), the
    ``orientation`` settings entry: ``LPS (axial slices)``, plus ``; stored SAR, reoriented`` for another order).
    Features are always computed on these (see the module)."""
    from lungai.io.geometry import LPS, orientation_of, to_lps

    stored = orientation_of(image)
    note = COMPUTED_ORIENTATION + ("" if stored == LPS else f"; stored {stored}, reoriented")
    return to_lps(image), {n: to_lps(m) for n, m in segments.items()}, note


def prepare(image: sitk.Image, segments: dict[str, sitk.Image], params: dict, lung_names=()) -> list[Prepared]:
    """Crop (and for lung segments, resample) every segment; segments must be non-empty.  The image and masks are
    first put in LPS order (:func:`in_lps`).  Lung segments: :func:`is_lung_segment` (a lung role by name, or listed in
    ``lung_names``: a structure mapped to a lung role with ``--structure-map``, a Slicer segment's lung terminology).

    IBSI presets (``lungai: {ibsi: A..E}``) get the whole image: their configuration fixes the grid,
    which IBSI aligns with the whole image (:func:`lungai.radiomics.ibsi.preprocess.interpolate_roi`
    then works around each ROI on that grid itself)."""
    from lungai.radiomics.params import ibsi_config

    image, segments, orientation = in_lps(image, segments)
    cfg = ibsi_config(params)
    if cfg is not None:
        grid = _ibsi_grid(image, cfg)       # the grid used (the configuration's), not the CT's
        return _with_versions([Prepared(n, image, mask, {
            "grid": f"IBSI-1 configuration {cfg.name}", **grid, "crop": "none (IBSI grid of the whole image)",
            # the voxels of the ROI on the configuration's grid (IBSI's morph_mask_vox_count_interp_roi)
            "voxels": interpolated_voxels(image, mask, cfg),
            "discretisation": f"IBSI configuration {cfg.name}", "image_types": "Original"})
            for n, mask in segments.items()], orientation)
    disc, types = _describe(params)
    spacing = lung_spacing(params)
    norm = normalisation(image, params)     # pyradiomics' normalize: the whole CT's statistics, before any crop
    out: dict[str, Prepared] = {}
    # pyradiomics' own resampling (resampledPixelSpacing) puts every segment on its grid: no lungai lung grid first
    lungs = [n for n in segments if spacing and is_lung_segment(n, lung_names) and not pyradiomics_resampling(params)]
    if lungs:
        boxes = [bounding_box(sitk.GetArrayViewFromImage(segments[n])) for n in lungs]
        lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
        margin = margin_voxels(params, (spacing,) * 3)
        if whole_image_types(params):       # the whole CT's lung grid: the filters scale by its largest |value|
            lo, hi = np.zeros(3, int), np.asarray(image.GetSize()) - 1
        ref, n_lo, n_hi = lung_grid(image, lo, hi, spacing, margin, params)
        # once for every lung segment; normalised after the IBSI resampling, whose intensities are rounded HU
        grid_ct = normalised(resample_image(crop(image, n_lo, n_hi), ref, "linear"), norm)
        for n, (m_lo, m_hi) in zip(lungs, boxes):
            # the mask's own box + 1 zero voxel: outside it the mask is 0 on any grid
            mask = resample_mask(crop(segments[n], *_clamp(m_lo - 1, m_hi + 1, image.GetSize())), ref)
            out[n] = Prepared(n, grid_ct, mask, {
                "grid": "resampled", "spacing_mm": _fmt_spacing(ref.GetSpacing()),
                "interpolation": IBSI_INTERPOLATION,
                "crop": (f"none ({', '.join(whole_image_types(params))}: the whole CT)" if whole_image_types(params)
                         else f"box of all lung segments + {margin} voxels"),
                "grid_size": "x".join(map(str, ref.GetSize())),
                "voxels": int(np.count_nonzero(sitk.GetArrayViewFromImage(mask))),
                "discretisation": disc, "image_types": types})
    whole = None        # the whole CT normalised (pyradiomics' resampling only)
    for n, mask in segments.items():
        if n in out:
            continue
        arr = sitk.GetArrayViewFromImage(mask)
        if pyradiomics_resampling(params):
            # pyradiomics aligns its resampled grid with the input's origin: a crop would move that grid (values
            # 4-36 % off).  It resamples only the segment's box itself, so the whole CT costs little.
            whole = whole if whole is not None else normalised(image, norm)      # once for every segment
            out[n] = Prepared(n, whole, mask, {
                "crop": "none (pyradiomics resamples the whole CT's grid around the segment)",
                "voxels": int(np.count_nonzero(arr)), **pyradiomics_grid(image, mask, *bounding_box(arr), params),
                "discretisation": disc, "image_types": types})
            continue
        margin = margin_voxels(params, image.GetSpacing())
        lo, hi = bounding_box(arr)
        box = _clamp(lo - margin, hi + margin, image.GetSize())
        lo, hi = wavelet_whole_axes(params, *box, image.GetSize())
        whole_axes = [a for a, b, c, d in zip("xyz", box[0], box[1], zip(lo, hi)) if (b, c) != d]
        what = f"segment box + {margin} voxels" + (f" (whole along {', '.join(whole_axes)}: the Wavelet wraps round "
                                                   "the image's faces)" if whole_axes else "")
        if whole_image_types(params):       # the filters scale by the CT's largest |value|: the whole CT
            lo, hi, what = np.zeros(3, int), np.asarray(image.GetSize()) - 1, \
                f"none ({', '.join(whole_image_types(params))}: the whole CT)"
        out[n] = Prepared(n, normalised(crop(image, lo, hi), norm), crop(mask, lo, hi), {
            "grid": "native", "spacing_mm": _fmt_spacing(image.GetSpacing()), "interpolation": "none",
            "crop": what, "grid_size": "x".join(str(int(v)) for v in hi - lo + 1),
            "voxels": int(np.count_nonzero(arr)), "discretisation": disc, "image_types": types})
    return _with_versions([out[n] for n in segments], orientation)


def _with_versions(prepared: list, orientation: str = COMPUTED_ORIENTATION) -> list:
    """Every segment's settings record the orientation computed in and the versions of the software."""
    from lungai.radiomics.settings import versions_text

    for p in prepared:
        p.settings["orientation"] = orientation
        p.settings["versions"] = versions_text()
    return prepared
