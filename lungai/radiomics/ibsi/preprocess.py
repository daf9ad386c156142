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


def resample_image(image: sitk.Image, ref: sitk.Image, interpolator: str = "linear") -> sitk.Image:
    """``image`` on the grid of ``ref``, intensities rounded (float32); nearest-neighbour extrapolation at the edges."""
    img = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), ref, sitk.Transform(), _INTERPOLATORS[interpolator],
                        0.0, sitk.sitkFloat32, True)
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
