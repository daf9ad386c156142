"""IBSI-style image processing before pyradiomics: interpolation and re-segmentation.

pyradiomics resamples on a corner-aligned grid with a nearest-neighbour mask and does not round
the interpolated intensities; IBSI aligns the grid centres, rounds intensities, interpolates the
mask linearly and keeps voxels >= 0.5.  Re-segmentation (range, then 3-sigma) only narrows the
intensity mask; morphological features keep the interpolated mask.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from lungai.radiomics.ibsi.configs import IBSIConfig

_INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline}


def centre_aligned_grid(img: sitk.Image, spacing) -> tuple[tuple, tuple, tuple]:
    """(size, origin, spacing) of a grid with ``spacing`` whose centre coincides with ``img``'s (size rounded up)."""
    old_sp, old_size = np.asarray(img.GetSpacing()), np.asarray(img.GetSize())
    new_sp = np.array([o if s is None else s for s, o in zip(spacing, old_sp)], float)
    size = [int(math.ceil(n * o / s - 1e-9)) for n, o, s in zip(old_size, old_sp, new_sp)]
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    old_centre = np.asarray(img.GetOrigin()) + direction @ ((old_size - 1) / 2.0 * old_sp)
    origin = old_centre - direction @ ((np.asarray(size) - 1) / 2.0 * new_sp)
    return tuple(size), tuple(origin), tuple(new_sp)


def grid_image(size, origin, spacing, direction) -> sitk.Image:
    """An empty float32 image that defines a resampling grid."""
    ref = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(s) for s in spacing))
    ref.SetOrigin(tuple(float(o) for o in origin))
    ref.SetDirection(direction)
    return ref


def two_sample_axes(image: sitk.Image) -> list:
    """The axes (x, y, z numbers) along which ``image`` has exactly 2 samples: ITK's cubic B-spline reads outside the
    image there (its mirror boundary maps index 2 to -2) and gives random values, up to 3.4e38 (QA: 20 identical
    resamplings of a 2-slice LIDC crop, 14 different results)."""
    return [d for d, n in enumerate(image.GetSize()) if n == 2]


def _bspline_two_samples(image: sitk.Image, ref: sitk.Image, axes: list) -> sitk.Image:
    """What ITK's B-spline resampling of ``image`` onto ``ref`` (nearest-neighbour extrapolation) gives where ITK
    works: each 2-sample axis is repeated to 4 samples (a, b, a, b), whose mirror extension is the 2-sample axis's
    own (..a, b, a, b..), so the spline coefficients and every value inside the image are those of the exact
    cubic B-spline; points outside the image keep the nearest-neighbour extrapolation of ``image`` itself."""
    arr = sitk.GetArrayViewFromImage(image)
    for d in axes:
        arr = np.concatenate([arr, arr], axis=2 - d)
    padded = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    padded.SetOrigin(image.GetOrigin())
    padded.SetSpacing(image.GetSpacing())
    padded.SetDirection(image.GetDirection())
    inner = sitk.Resample(padded, ref, sitk.Transform(), sitk.sitkBSpline, 0.0, sitk.sitkFloat32, True)
    outer = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0, sitk.sitkFloat32, True)
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    inside = sitk.Resample(ones, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8, False)
    out = sitk.GetImageFromArray(np.where(sitk.GetArrayViewFromImage(inside) > 0, sitk.GetArrayViewFromImage(inner),
                                          sitk.GetArrayViewFromImage(outer)).astype(np.float32))
    out.CopyInformation(ref)
    return out


def resample_image(image: sitk.Image, ref: sitk.Image, interpolator: str = "linear") -> sitk.Image:
    """``image`` on the grid of ``ref``, intensities rounded (float32); nearest-neighbour extrapolation at the edges.
    A cubic B-spline along an axis of 2 samples: :func:`_bspline_two_samples` (ITK's own reads outside the image)."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    if interpolator == "bspline" and two_sample_axes(image):
        return sitk.Round(_bspline_two_samples(image, ref, two_sample_axes(image)))
    img = sitk.Resample(image, ref, sitk.Transform(), _INTERPOLATORS[interpolator], 0.0, sitk.sitkFloat32, True)
    return sitk.Round(img)


def resample_mask(mask: sitk.Image, ref: sitk.Image) -> sitk.Image:
    """``mask`` (nonzero = in) on the grid of ``ref``: linear interpolation, kept where >= 0.5 (uint8)."""
    msk = sitk.Resample(sitk.Cast(mask > 0, sitk.sitkFloat32), ref, sitk.Transform(), sitk.sitkLinear, 0.0,
                        sitk.sitkFloat32, True)
    return sitk.Cast(msk >= 0.5, sitk.sitkUInt8)


def interpolate(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> tuple[sitk.Image, sitk.Image]:
    """Image (rounded, float32) and morphological mask (uint8) on the IBSI grid of ``cfg``."""
    if cfg.spacing is None:
        return sitk.Round(sitk.Cast(image, sitk.sitkFloat32)), sitk.Cast(mask > 0, sitk.sitkUInt8)
    ref = grid_image(*centre_aligned_grid(image, cfg.spacing), image.GetDirection())
    return resample_image(image, ref, cfg.interpolator), resample_mask(mask, ref)


# What :func:`interpolate_roi` keeps around the ROI: on the new grid, more than the 6.2 mm radius
# of the local intensity peak sphere; of the input image around that box, enough voxels for the
# interpolator (linear: its 2 neighbours; cubic B-spline: 16 voxels, over which the influence of
# its recursive prefilter decays below 0.27^16 ~ 1e-9 of an edge step).
ROI_CONTEXT_MM = 10.0
INPUT_MARGIN_VOXELS = {"linear": 2, "bspline": 16}


def _box(img: sitk.Image, lo, hi) -> tuple:
    lo = np.maximum(np.asarray(lo, int), 0)
    hi = np.minimum(np.asarray(hi, int), np.array(img.GetSize()) - 1)
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))


def _index_range(src: sitk.Image, lo, hi, dst: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-index bounds in ``dst`` of the box ``lo..hi`` (indices) of ``src``."""
    corners = [src.TransformContinuousIndexToPhysicalPoint([float(c) for c in (x, y, z)])
               for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    cont = np.array([dst.TransformPhysicalPointToContinuousIndex(c) for c in corners])
    return cont.min(0), cont.max(0)


def _roi_grid(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig):
    """(reference grid, box of ``image``) of :func:`interpolate_roi`: the configuration's grid (aligned with the whole
    image) cut to the ROI's box plus :data:`ROI_CONTEXT_MM`, and the part of the image the interpolator needs; the
    reference grid is None for a configuration without interpolation (the box is then the ROI's + context); None
    for an empty mask."""
    roi = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    if len(roi) == 0:
        return None
    lo, hi = roi.min(0)[::-1], roi.max(0)[::-1]               # x, y, z
    if cfg.spacing is None:
        m = np.ceil(ROI_CONTEXT_MM / np.array(image.GetSpacing())).astype(int)
        return None, _box(image, lo - m, hi + m)
    full = grid_image(*centre_aligned_grid(image, cfg.spacing), image.GetDirection())
    m_out = np.ceil(ROI_CONTEXT_MM / np.array(full.GetSpacing())).astype(int)
    c_lo, c_hi = _index_range(image, lo, hi, full)
    out_lo = np.maximum(np.floor(c_lo).astype(int) - m_out, 0)
    out_hi = np.minimum(np.ceil(c_hi).astype(int) + m_out, np.array(full.GetSize()) - 1)
    ref = grid_image(out_hi - out_lo + 1, full.TransformIndexToPhysicalPoint([int(v) for v in out_lo]),
                     full.GetSpacing(), full.GetDirection())
    i_lo, i_hi = _index_range(full, out_lo, out_hi, image)
    m_in = INPUT_MARGIN_VOXELS[cfg.interpolator]
    return ref, _box(image, np.floor(i_lo) - m_in, np.ceil(i_hi) + m_in)


def interpolate_roi(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> tuple[sitk.Image, sitk.Image]:
    """:func:`interpolate`, computed only around the ROI: the same grid (aligned with the whole image)
    cropped to the ROI's bounding box plus :data:`ROI_CONTEXT_MM`, from the part of the image the
    interpolator needs; every value the features use is the same (test).

    IBSI aligns the new grid with the whole image, so the crop is taken from the full grid rather than
    by interpolating a cropped image (whose own centre-aligned grid would be shifted).
    """
    grid = _roi_grid(image, mask, cfg)
    if grid is None:
        return interpolate(image, mask, cfg)
    ref, box = grid
    if ref is None:
        return interpolate(image[box], mask[box], cfg)
    return resample_image(image[box], ref, cfg.interpolator), resample_mask(mask[box], ref)


def interpolated_voxels(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> int:
    """The voxels of the morphological mask :func:`interpolate_roi` gives (IBSI's ``morph_mask_vox_count``), without
    interpolating the image: what a segment is computed on with configuration ``cfg``."""
    grid = _roi_grid(image, mask, cfg)
    if grid is None:
        return 0
    ref, box = grid
    if ref is None:
        return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    morph = resample_mask(mask[box], ref)       # kept: an array view of a temporary image reads freed memory
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(morph)))


def resegment(image: sitk.Image, morph_mask: sitk.Image, cfg: IBSIConfig) -> sitk.Image:
    """The intensity mask: ``morph_mask`` restricted to the range, then to mean +- 3 SD."""
    x = sitk.GetArrayViewFromImage(image)
    keep = sitk.GetArrayFromImage(morph_mask) > 0
    if cfg.resegment_range is not None:
        lo, hi = cfg.resegment_range
        keep &= (x >= lo) & (x <= hi)
    if cfg.sigma_filter:
        v = x[keep]
        mu, sd = float(v.mean()), float(v.std())
        keep &= (x >= mu - 3 * sd) & (x <= mu + 3 * sd)
    out = sitk.GetImageFromArray(keep.astype(np.uint8))
    out.CopyInformation(morph_mask)
    return out
