"""Checks that an image is a usable 3D CT in Hounsfield units."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError


def check_3d(img: sitk.Image, source: str) -> None:
    if img.GetDimension() != 3 or min(img.GetSize()) < 2:
        raise InputError(
            f"{source} is not a 3D volume (size {img.GetSize()})",
            "give the whole CT series (a folder of DICOM slices or one 3D NIfTI/NRRD/MHA file), "
            "not a single slice or a 2D image")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{source} has {img.GetNumberOfComponentsPerPixel()} components per voxel",
                         "give a single-channel (greyscale) CT, not an RGB or vector image")


def check_ct_intensities(img: sitk.Image, source: str) -> None:
    """A chest CT in HU holds air (about -1000) and nothing far beyond the HU range."""
    arr = sitk.GetArrayViewFromImage(img)
    step = max(1, int(round((arr.size / 2e6) ** (1 / 3))))
    sample = np.asarray(arr[::step, ::step, ::step], dtype=np.float32)
    p01, p50, p999 = np.percentile(sample, [1, 50, 99.9])
    if p01 > -500:
        hint = ("it looks like an MR or a CT without rescale slope/intercept"
                if p01 >= 0 else "it has no air, which every chest CT contains")
        raise InputError(
            f"{source} does not look like a CT in Hounsfield units (1st percentile {p01:.0f}, median {p50:.0f}; "
            f"{hint})",
            "give a chest CT in HU: for DICOM keep RescaleSlope/RescaleIntercept; MR images cannot be used")
    if p01 < -3100 or p999 > 32000:
        raise InputError(
            f"{source} has intensities outside the Hounsfield range (1st pct {p01:.0f}, 99.9th pct {p999:.0f})",
            "convert the image to HU (value * RescaleSlope + RescaleIntercept) before using it")
