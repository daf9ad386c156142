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


def largest_difference(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> str:
    """The grids' largest difference (against :func:`same_geometry`'s tolerances), with the digits that show it:
    e.g. "origin z -120.0000 vs -120.0020 mm (0.002 mm apart; tolerance 0.001 mm)"; "" when the grids agree."""
    if a.GetSize() != b.GetSize():
        return f"size {a.GetSize()} vs {b.GetSize()}"
    worst = None
    for name, va, vb, atol, unit in (("origin", a.GetOrigin(), b.GetOrigin(), tol * 10, " mm"),
                                     ("spacing", a.GetSpacing(), b.GetSpacing(), tol, " mm"),
                                     ("direction", a.GetDirection(), b.GetDirection(), tol, "")):
        diff = np.abs(np.subtract(va, vb))
        allowed = atol + 1e-5 * np.abs(vb)             # np.allclose's rule (its rtol 1e-5)
        i = int(np.argmax(diff / allowed))
        if diff[i] > allowed[i] and (worst is None or diff[i] / allowed[i] > worst[0]):
            worst = (diff[i] / allowed[i], name, i, va[i], vb[i], diff[i], allowed[i], unit, len(va))
    if worst is None:
        return ""
    _, name, i, x, y, d, allowed, unit, n = worst
    where = "xyz"[i] if n == 3 else f"[{i // 3},{i % 3}]"
    digits = max(2, int(-np.floor(np.log10(d))) + 1)
    return f"{name} {where} {x:.{digits}f} vs {y:.{digits}f}{unit} ({d:.2g}{unit} apart; tolerance {allowed:.2g}{unit})"


def assert_same_geometry(image: sitk.Image, mask: sitk.Image, what: str = "mask") -> None:
    """Raise a :class:`GeometryError` explaining how to resample when the grids differ."""
    if not same_geometry(image, mask):
        raise GeometryError(
            f"the {what} does not lie on the image grid: image {describe(image)}; {what} {describe(mask)}"
            + (f"; largest difference: {diff}" if (diff := largest_difference(image, mask)) else ""),
            f"resample the {what} onto the image (nearest neighbour for labels), e.g. in Slicer with "
            "'Resample Image (BRAINS)' / Segmentations > 'Export to labelmap' with the CT as reference, or "
            "in Python: sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)")


def float32_spacing(spacing) -> tuple[float, ...]:
    """``spacing`` rounded to float32, as NIfTI stores it (1.4 -> 1.399999976): the spacing a computation that
    compares distances or counts with thresholds works with, so that the same voxels give the same result whether
    the spacing came from DICOM text (1.4) or from the NIfTI written from it (the rounding moved voxels exactly on a
    threshold, e.g. a distance of 2 x 1.4 mm against 3.5 - 0.7 mm, to the other side)."""
    return tuple(float(np.float32(s)) for s in spacing)


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
