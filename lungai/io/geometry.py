"""Voxel-grid comparisons between images."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import GeometryError


def same_geometry(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> bool:
    """True when both images have the same size, spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol * 10)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def describe(img: sitk.Image) -> str:
    sp = ", ".join(f"{v:g}" for v in img.GetSpacing())
    org = ", ".join(f"{v:.2f}" for v in img.GetOrigin())
    return f"size {img.GetSize()}, spacing ({sp}) mm, origin ({org})"


def assert_same_geometry(image: sitk.Image, mask: sitk.Image, what: str = "mask") -> None:
    """Raise a :class:`GeometryError` explaining how to resample when the grids differ."""
    if not same_geometry(image, mask):
        raise GeometryError(
            f"the {what} does not lie on the image grid: image {describe(image)}; {what} {describe(mask)}",
            f"resample the {what} onto the image (nearest neighbour for labels), e.g. in Slicer with "
            "'Resample Image (BRAINS)' / Segmentations > 'Export to labelmap' with the CT as reference, or "
            "in Python: sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)")


def copy_geometry(array_kji: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A SimpleITK image from a [z, y, x] array on the grid of ``reference``."""
    img = sitk.GetImageFromArray(array_kji)
    img.CopyInformation(reference)
    return img


LPS = "LPS"


def orientation_of(img: sitk.Image) -> str:
    """The image's DICOM orientation code ("LPS", "RAS", "SPL", ...: where its x, y, z index axes point)."""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(img.GetDirection())


def to_lps(img: sitk.Image) -> sitk.Image:
    """``img`` with its array stored in LPS order (index x -> patient's left, y -> posterior, z -> superior: an
    identity direction for an axis-aligned image), voxels flipped / permuted only, no resampling; ``img`` itself
    when it already is.  Models and rules that read arrays (the lungs, the tumour network) work on this."""
    return img if orientation_of(img) == LPS else sitk.DICOMOrient(img, LPS)


def from_lps(img: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """An image on ``to_lps(reference)``'s grid mapped back onto ``reference``'s grid (flips / permutations only),
    with exactly its geometry; ``img`` itself when ``reference`` is stored in LPS order."""
    orientation = orientation_of(reference)
    if orientation == LPS:
        return img
    out = sitk.DICOMOrient(img, orientation)
    out.CopyInformation(reference)
    return out
