"""What each segment's features are computed on: a crop of the CT around the segment, and for the
lungs (default settings) an IBSI-style isotropic resampling done once for all lung segments.

Why: on a whole 512 x 512 x 300 CT pyradiomics spent most of its time on work that does not change
the result (statistics over the whole image per segment) or on lung masks at native resolution
(the surface mesh of a 2-litre lung has hundreds of thousands of vertices, and pyradiomics' maximum
diameters compare every pair of them).  Three standard steps remove that:

1. **Crop** every segment to its bounding box plus a margin before any filtering or resampling.
   For the Original image this is lossless (pyradiomics crops to the mask itself after
   filtering); with LoG / Wavelet the margin covers the filter support (:func:`margin_voxels`).
2. **Lung texture on an isotropic grid** (``params["lungai"]["lung_spacing_mm"]``, 2 mm in the
   ``default`` preset): the right lung, left lung, lungs and lungs minus tumour are resampled the
   IBSI way (:mod:`lungai.radiomics.ibsi.preprocess`: grid centred on the CT's, linear image
   interpolation with rounded intensities, linear mask interpolation kept at >= 0.5).  The grid is
   the whole CT's IBSI grid restricted to the box of all lung segments (so cropping does not move
   it), and the CT is resampled onto it once; every lung mask is resampled onto the same grid.
   The tumour keeps the CT's own grid (``tumour`` is not a lung segment).
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

from lungai.radiomics.ibsi.preprocess import centre_aligned_grid, grid_image, resample_image, resample_mask

LUNG_SEGMENTS = ("right_lung", "left_lung", "lungs", "lungs_minus_tumour")
SETTINGS_COLUMNS = ["case", "segment", "grid", "spacing_mm", "interpolation", "crop", "grid_size", "voxels",
                    "discretisation", "image_types"]
IBSI_INTERPOLATION = "IBSI: centre-aligned grid, linear image (rounded HU), linear mask >= 0.5"


def is_lung_segment(name: str) -> bool:
    """``right_lung``, ``Left lung``, ``Lungs minus tumour`` ... (case and spaces ignored)."""
    return str(name).strip().lower().replace(" ", "_") in LUNG_SEGMENTS


def lung_spacing(params: dict) -> float | None:
    """The isotropic lung spacing (mm) of a parameter set; None = lungs on the CT's own grid."""
    value = (params.get("lungai") or {}).get("lung_spacing_mm")
    return float(value) if value else None


def pyradiomics_params(params: dict) -> dict:
    """The parameter set without lungai's own block (what pyradiomics is given)."""
    return {k: v for k, v in params.items() if k != "lungai"}


def margin_voxels(params: dict, spacing) -> int:
    """Voxels kept around a segment's box: pyradiomics' ``padDistance`` (5); more for filters.

    LoG: 4 sigma (the Gaussian's support to < 0.1 %); Wavelet: 8 voxels (coif1 at level 1 spans 6).
    """
    margin = int(params.get("setting", {}).get("padDistance", 5))
    types = params.get("imageType") or {}
    if "LoG" in types:
        sigmas = (types["LoG"] or {}).get("sigma") or params.get("setting", {}).get("sigma") or [3.0]
        margin = max(margin, math.ceil(4 * max(sigmas) / min(spacing)))
    if "Wavelet" in types:
        margin = max(margin, 8)
    return margin


@dataclass
class Prepared:
    """One segment ready for pyradiomics: image and mask on the same (cropped) grid."""

    name: str
    image: sitk.Image
    mask: sitk.Image
    settings: dict


def bounding_box(mask_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) voxel indices in (x, y, z) order of the nonzero voxels, inclusive; None if empty."""
    lo, hi = [], []
    for axis in (2, 1, 0):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask_kji.any(axis=other))
        if idx.size == 0:
            return None
        lo.append(idx[0])
        hi.append(idx[-1])
    return np.array(lo), np.array(hi)


def crop(image: sitk.Image, lo, hi) -> sitk.Image:
    """``image`` restricted to voxels lo..hi (x, y, z, inclusive); geometry kept."""
    return image[int(lo[0]):int(hi[0]) + 1, int(lo[1]):int(hi[1]) + 1, int(lo[2]):int(hi[2]) + 1]


def _clamp(lo, hi, size) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(lo, 0), np.minimum(hi, np.asarray(size) - 1)


def _fmt_spacing(spacing) -> str:
    return " x ".join(f"{s:g}" for s in np.round(spacing, 3))


def _describe(params: dict) -> tuple[str, str]:
    s = params.get("setting", {})
    disc = f"{s['binCount']} bins" if "binCount" in s else f"bin width {s.get('binWidth', 25):g}"
    return disc, ", ".join(params.get("imageType") or {"Original": {}})


def _index_box_of(points_lps: np.ndarray, image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-index bounding box (x, y, z) of physical points on ``image``'s grid."""
    idx = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(map(float, p))) for p in points_lps])
    return idx.min(axis=0), idx.max(axis=0)


def _corners(image_or_grid: sitk.Image, lo, hi) -> np.ndarray:
    return np.array([image_or_grid.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in corner))
                     for corner in itertools.product(*zip(lo, hi))])


def lung_grid(image: sitk.Image, union_kji: np.ndarray, spacing_mm: float, margin: int):
    """The CT's IBSI grid at ``spacing_mm``, restricted to the lungs' box (+ ``margin`` voxels),
    and the CT voxels needed to resample onto it: (reference grid image, native lo, native hi)."""
    size, origin, sp = centre_aligned_grid(image, (spacing_mm,) * 3)
    full = grid_image(size, origin, sp, image.GetDirection())
    lo, hi = bounding_box(union_kji)
    out_lo, out_hi = _index_box_of(_corners(image, lo - 1, hi + 1), full)
    out_lo, out_hi = _clamp(np.floor(out_lo).astype(int) - margin, np.ceil(out_hi).astype(int) + margin, size)
    sub_origin = full.TransformIndexToPhysicalPoint(tuple(int(i) for i in out_lo))
    ref = grid_image(out_hi - out_lo + 1, sub_origin, sp, image.GetDirection())
    # the CT voxels around every grid point (linear interpolation reads the neighbours on each side)
    n_lo, n_hi = _index_box_of(_corners(ref, (0, 0, 0), np.asarray(ref.GetSize()) - 1), image)
    n_lo, n_hi = _clamp(np.floor(n_lo).astype(int) - 1, np.ceil(n_hi).astype(int) + 1, image.GetSize())
    return ref, n_lo, n_hi


def prepare(image: sitk.Image, segments: dict[str, sitk.Image], params: dict) -> list[Prepared]:
    """Crop (and for lung segments, resample) every segment; segments must be non-empty."""
    disc, types = _describe(params)
    spacing = lung_spacing(params)
    out: dict[str, Prepared] = {}
    lungs = [n for n in segments if spacing and is_lung_segment(n)]
    if lungs:
        arrays = {n: sitk.GetArrayViewFromImage(segments[n]) > 0 for n in lungs}
        union = np.logical_or.reduce(list(arrays.values()))
        margin = margin_voxels(params, (spacing,) * 3)
        ref, n_lo, n_hi = lung_grid(image, union, spacing, margin)
        grid_ct = resample_image(crop(image, n_lo, n_hi), ref, "linear")  # once for every lung segment
        for n in lungs:
            mask = resample_mask(crop(segments[n], n_lo, n_hi), ref)
            out[n] = Prepared(n, grid_ct, mask, {
                "grid": "resampled", "spacing_mm": _fmt_spacing(ref.GetSpacing()),
                "interpolation": IBSI_INTERPOLATION, "crop": f"box of all lung segments + {margin} voxels",
                "grid_size": "x".join(map(str, ref.GetSize())),
                "voxels": int(np.count_nonzero(sitk.GetArrayViewFromImage(mask))),
                "discretisation": disc, "image_types": types})
    for n, mask in segments.items():
        if n in out:
            continue
        arr = sitk.GetArrayViewFromImage(mask)
        margin = margin_voxels(params, image.GetSpacing())
        lo, hi = bounding_box(arr)
        lo, hi = _clamp(lo - margin, hi + margin, image.GetSize())
        out[n] = Prepared(n, crop(image, lo, hi), crop(mask, lo, hi), {
            "grid": "native", "spacing_mm": _fmt_spacing(image.GetSpacing()), "interpolation": "none",
            "crop": f"segment box + {margin} voxels", "grid_size": "x".join(str(int(v)) for v in hi - lo + 1),
            "voxels": int(np.count_nonzero(arr)), "discretisation": disc, "image_types": types})
    return [out[n] for n in segments]
