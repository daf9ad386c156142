"""Voxel-grid comparisons between images."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import GeometryError


def same_geometry(a, b, tol: float = 1e-4) -> bool:
    """True when both images (or headers) have the same size, spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol * 10)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def describe(img) -> str:
    """Size, spacing, origin and direction (with its orientation code: the order the voxels are stored in) of an
    image (or of a header: anything with GetSize / GetSpacing / GetOrigin / GetDirection)."""
    sp = ", ".join(f"{v:g}" for v in img.GetSpacing())
    org = ", ".join(f"{v:.2f}" for v in img.GetOrigin())
    direction = ", ".join(f"{v + 0.0:.6g}" for v in img.GetDirection())      # + 0.0: no "-0"
    code = f"; {orientation_of(img)} order" if len(img.GetSize()) == 3 else ""
    return f"size {img.GetSize()}, spacing ({sp}) mm, origin ({org}), direction ({direction}{code})"


def lps_grid(img) -> tuple:
    """(size, spacing, origin, direction) of ``img``'s grid with its voxels stored in LPS order (as :func:`to_lps`
    stores them: flips / permutations of the index axes only), from the header alone (an image or an
    ``sitk.ImageFileReader`` that read the information): two grids with the same voxel centres stored in other
    orders (an LPS DICOM CT and the RAS NIfTI of its mask, as nibabel / nnU-Net write it) give the same values."""
    n = len(img.GetSize())
    d = np.asarray(img.GetDirection(), dtype=float).reshape(n, n)
    origin = np.asarray(img.GetOrigin(), dtype=float)
    axes = []
    for i, (size, spacing) in enumerate(zip(img.GetSize(), img.GetSpacing())):
        col = d[:, i].copy()
        j = int(np.argmax(np.abs(col)))          # the patient axis this index axis runs along most
        if col[j] < 0:                           # runs against it: start from the last voxel instead
            origin = origin + col * spacing * (size - 1)
            col = -col
        axes.append((j, size, spacing, col))
    axes.sort(key=lambda a: a[0])
    return (tuple(a[1] for a in axes), tuple(a[2] for a in axes), tuple(origin),
            tuple(np.stack([a[3] for a in axes], axis=1).flatten()))


class _Grid:
    """A grid given by its values (for :func:`same_geometry` / :func:`largest_difference`; :func:`grid`)."""

    def __init__(self, size, spacing, origin, direction):
        self.values = size, spacing, origin, direction

    def GetSize(self): return self.values[0]          # noqa: E704
    def GetSpacing(self): return self.values[1]       # noqa: E704
    def GetOrigin(self): return self.values[2]        # noqa: E704
    def GetDirection(self): return self.values[3]     # noqa: E704


def same_voxels(a, b, tol: float = 1e-4) -> bool:
    """True when both grids have the same voxel centres (:func:`same_geometry` once both are stored in LPS order,
    :func:`lps_grid`), whatever order each stores them in: one is the other flipped / permuted, losslessly."""
    if len(a.GetSize()) != 3 or len(b.GetSize()) != 3:
        return same_geometry(a, b, tol)
    return same_geometry(_Grid(*lps_grid(a)), _Grid(*lps_grid(b)), tol)


def largest_difference(a, b, tol: float = 1e-4) -> str:
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


def _geometry_error(image, mask, what: str) -> GeometryError:
    """Why ``mask`` is not on ``image``'s grid: both grids, their largest difference - compared in LPS order when
    they differ in more than the order their voxels are stored in - and how to resample."""
    if same_voxels(image, mask):
        return GeometryError(
            f"the {what} lies on the image's voxels but stores them in another order ({orientation_of(mask)} "
            f"against the image's {orientation_of(image)}): image {describe(image)}; {what} {describe(mask)}",
            f"reorient the {what} to the image's order (flips / permutations only, no resampling), e.g. in "
            f"Python: sitk.DICOMOrient(mask, '{orientation_of(image)}')")
    a, b, order = image, mask, ""
    if len(image.GetSize()) == 3 == len(mask.GetSize()) and orientation_of(image) != orientation_of(mask):
        a, b, order = _Grid(*lps_grid(image)), _Grid(*lps_grid(mask)), " (both in LPS order)"
    problem = (f"the {what} does not lie on the image grid: image {describe(image)}; {what} {describe(mask)}"
               + (f"; largest difference{order}: {diff}" if (diff := largest_difference(a, b)) else ""))
    gap = separation_mm(image, mask)
    if gap > 0:         # resampling it would give an empty mask: another scan's (or patient's) mask, not a grid fix
        return GeometryError(
            f"{problem}; the {what} does not overlap the image at all (their extents are {gap:.3g} mm apart), so "
            f"it was not drawn on this image",
            f"give the {what} drawn on this image (check that the image and the mask named together belong to the "
            "same scan); resampling it onto the image would leave it empty")
    reach = beyond_extent(image, mask)
    if reach is not None:   # partly overlapping: another scan's mask, resampling would give features of wrong voxels
        axis, mm, (lo_i, hi_i), (lo_m, hi_m) = reach
        return GeometryError(
            f"{problem}; its grid reaches {mm:.3g} mm beyond the image along {axis} ({axis} {lo_m:.1f} to "
            f"{hi_m:.1f} mm against the image's {lo_i:.1f} to {hi_i:.1f} mm): its grid and extent do not match this "
            f"image, so it was most likely drawn on another scan (another patient's or another series' mask)",
            "pair each image with the mask drawn on it (check that the image and the mask named together are the "
            "same patient's and the same series'); resampling this one onto the image would give features of "
            "wherever another scan's segment falls, not of this patient's structure (only a mask of this same scan "
            "on another grid, e.g. exported at another resolution, is resampled onto it)")
    return GeometryError(
        problem,
        f"resample the {what} onto the image (nearest neighbour for labels), e.g. in Slicer with "
        "'Resample Image (BRAINS)' / Segmentations > 'Export to labelmap' with the CT as reference, or "
        "in Python: sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)")


def physical_extent(img) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the axis-aligned box, in physical (LPS) mm, of an image's (or header's) voxels, half a voxel round
    their centres."""
    n = len(img.GetSize())
    d = np.asarray(img.GetDirection(), dtype=float).reshape(n, n) * np.asarray(img.GetSpacing(), dtype=float)
    corners = np.array(np.meshgrid(*[(-0.5, size - 0.5) for size in img.GetSize()], indexing="ij")).reshape(n, -1)
    points = np.asarray(img.GetOrigin(), dtype=float)[:, None] + d @ corners
    return points.min(axis=1), points.max(axis=1)


def separation_mm(a, b) -> float:
    """How far apart (mm) the physical boxes of two grids (:func:`physical_extent`) are: 0 when they overlap or
    touch, so a grid with no voxel near the other's is told apart from one merely shifted or resampled."""
    (lo_a, hi_a), (lo_b, hi_b) = physical_extent(a), physical_extent(b)
    gaps = np.maximum(0.0, np.maximum(lo_a - hi_b, lo_b - hi_a))
    return float(np.sqrt(np.sum(gaps ** 2)))


# How far (mm) a mask's grid may reach beyond its image's box and still be the same scan's mask on another grid: two
# voxels of the coarser grid (a mask exported at another resolution over the same field of view), or 1 cm if more.
def _reach_tolerance(a, b) -> float:
    return max(10.0, 2.0 * max(*a.GetSpacing(), *b.GetSpacing()))


def beyond_extent(image, mask) -> tuple | None:
    """Where ``mask``'s grid reaches beyond ``image``'s physical box (:func:`physical_extent`) by more than a mask of
    the same scan resampled onto another grid would (:func:`_reach_tolerance`): (axis "x" / "y" / "z" in LPS, mm,
    (image lo, hi), (mask lo, hi)) along the axis where it reaches furthest, or None.  Tells another scan's mask that
    partly overlaps the image (LUNG1-002's label map, 330 mm of chest from z = -134 mm, beside LUNG1-003's CT ending
    at z = 14 mm) from one of the same field of view on another grid, the only one that resampling fixes."""
    (lo_i, hi_i), (lo_m, hi_m) = physical_extent(image), physical_extent(mask)
    reach = np.maximum(lo_i - lo_m, hi_m - hi_i)
    i = int(np.argmax(reach))
    if len(reach) != 3 or reach[i] <= _reach_tolerance(image, mask):
        return None
    return "xyz"[i], float(reach[i]), (float(lo_i[i]), float(hi_i[i])), (float(lo_m[i]), float(hi_m[i]))


def assert_same_geometry(image, mask, what: str = "mask", any_order: bool = False) -> None:
    """Raise a :class:`GeometryError` explaining how to resample when the grids differ (images or headers).
    ``any_order``: grids with the same voxels stored in another order (:func:`same_voxels`), or on the same lattice
    with another extent (:func:`lattice_offset`), pass too - for a check of headers whose masks are read with
    :func:`on_grid` (``lungai.io.read_mask(path, reference=...)``)."""
    if not (same_geometry(image, mask) or (any_order and (same_voxels(image, mask)
                                                          or lattice_offset(image, mask) is not None))):
        raise _geometry_error(image, mask, what)


def lattice_offset(image, mask, tol: float = 1e-4) -> tuple | None:
    """The index (x, y, z, in LPS order: :func:`lps_grid`) of ``mask``'s first voxel on ``image``'s grid when
    ``mask``'s voxels are voxels of ``image``'s lattice - same spacing and direction, its origin a whole number of
    voxels away (:func:`same_geometry`'s tolerances), whatever its size and the order it stores them in: a mask
    cropped to its segment's extent (Slicer's "Export to files" of a segmentation without reference geometry writes
    one), or larger than the image; None when it is not (headers will do).  A mask of the image's own size is never
    moved by whole voxels (a shifted origin there is an error of the file, not a crop: refused as off the grid)."""
    if len(image.GetSize()) != 3 or len(mask.GetSize()) != 3:
        return None
    size_i, sp_i, org_i, dir_i = lps_grid(image)
    size_m, sp_m, org_m, dir_m = lps_grid(mask)
    if size_i == size_m or not (np.allclose(sp_i, sp_m, atol=tol) and np.allclose(dir_i, dir_m, atol=tol)):
        return None
    d = np.asarray(dir_i, dtype=float).reshape(3, 3) * np.asarray(sp_i, dtype=float)
    index = np.linalg.solve(d, np.subtract(org_m, org_i))
    whole = np.round(index)
    if not np.all(np.abs(index - whole) * np.asarray(sp_i) <= tol * 10):     # the origin tolerance, in mm
        return None
    return tuple(int(v) for v in whole)


def _onto_lattice(image: sitk.Image, mask: sitk.Image, offset: tuple, what: str) -> sitk.Image:
    """``mask`` (:func:`lattice_offset` ``offset``) placed onto ``image``'s grid: each of its voxels copied to the image
    voxel it is, the others 0 - lossless.  A mask with a labelled voxel outside the image is refused (that part of the
    segment would be lost), naming how many."""
    m = sitk.DICOMOrient(mask, LPS)
    ref = sitk.DICOMOrient(image, LPS) if orientation_of(image) != LPS else image
    arr = sitk.GetArrayViewFromImage(m)                  # [z, y, x]
    size = ref.GetSize()
    src, dst = [], []
    for axis in (2, 1, 0):                               # array axis z, y, x <-> index axis 2, 1, 0
        lo, hi = max(0, -offset[axis]), min(m.GetSize()[axis], size[axis] - offset[axis])
        src.append(slice(lo, max(lo, hi)))
        dst.append(slice(lo + offset[axis], max(lo, hi) + offset[axis]))
    inside = int(np.count_nonzero(arr[tuple(src)])) if all(s.stop > s.start for s in src) else 0
    outside = int(np.count_nonzero(arr)) - inside
    if outside and not inside:
        # none inside (QA radbatch65: two LIDC crops of one CT, 90 mm apart, said "330 of its labelled voxels lie
        # outside", all of them, with the fix of a segment cut by the scan): another scan's or lesion's mask
        gap = separation_mm(image, mask)
        apart = (f"; the {what} does not overlap the image at all (their extents are {gap:.3g} mm apart), so it was "
                 "not drawn on this image") if gap > 0 else ": the whole segment lies outside the image"
        raise GeometryError(
            f"the {what} lies on the image's voxel grid but none of its {outside} labelled voxels lies in the image"
            f"{apart}: image {describe(image)}; {what} {describe(mask)}",
            f"give the {what} drawn on this image (check that the image and the mask named together belong to the "
            "same scan), or the image the mask was drawn on")
    if outside:
        raise GeometryError(
            f"the {what} lies on the image's voxel grid but {outside} of its labelled voxels lie outside the image: "
            f"image {describe(image)}; {what} {describe(mask)}",
            f"give the {what} drawn on this image (that part of the segment is outside its field of view), or the "
            "image the mask was drawn on")
    out = np.zeros(tuple(reversed(size)), dtype=arr.dtype)
    if all(s.stop > s.start for s in src):
        out[tuple(dst)] = arr[tuple(src)]
    placed = sitk.GetImageFromArray(out)
    placed.CopyInformation(ref)
    if ref is not image:
        placed = sitk.DICOMOrient(placed, orientation_of(image))
    if not same_geometry(image, placed):    # DICOMOrient of an oblique grid: never a mask on the wrong voxels
        raise _geometry_error(image, mask, what)
    placed.CopyInformation(image)
    return placed


def bounding_box(mask_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) voxel indices in (x, y, z) order of the nonzero voxels of a [z, y, x] mask, inclusive; None if empty
    (the crop of radiomics segments, of the dose resampled for the dose features)."""
    z = np.flatnonzero(mask_kji.any(axis=(1, 2)))  # one pass over the whole mask, then only its slices
    if z.size == 0:
        return None
    slab = mask_kji[z[0]:z[-1] + 1]
    y, x = np.flatnonzero(slab.any(axis=(0, 2))), np.flatnonzero(slab.any(axis=(0, 1)))
    return np.array([x[0], y[0], z[0]]), np.array([x[-1], y[-1], z[-1]])


def grid(size, spacing, origin, direction):
    """A grid header (size, spacing, origin, direction in LPS) without voxels, for the comparisons here: e.g. a Slicer
    volume node's grid (:func:`lungai.mrml.geometry_from_ijk_to_ras`)."""
    return _Grid(tuple(int(n) for n in size), tuple(spacing), tuple(origin), tuple(direction))


def orthonormal_direction(direction) -> tuple:
    """The rotation nearest to ``direction`` (its polar factor, by SVD): what ITK's NIfTI writer stores for a direction
    whose axes are not exactly perpendicular ("Non-orthogonal direction matrix coerced to orthogonal"), e.g. a CT whose
    ImageOrientationPatient the scanner wrote with a skew of ~5e-4."""
    n = int(round(len(direction) ** 0.5))
    u, _, vt = np.linalg.svd(np.asarray(direction, dtype=float).reshape(n, n))
    return tuple((u @ vt).ravel())


def same_voxels_but_skew(a, b) -> bool:
    """True when two grids differ only in a direction that is not exactly orthonormal - the same size, spacing and
    origin, directions with the same nearest rotation (:func:`orthonormal_direction`): a CT with slightly skewed axes
    and a mask of it written as NIfTI, which stores the rotation - and no voxel centre of one grid lies half a voxel
    or more from the same voxel of the other (nearest-neighbour resampling would give back the same mask)."""
    if a.GetSize() != b.GetSize() or np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-12):
        return False
    if not same_geometry(_Grid(a.GetSize(), a.GetSpacing(), a.GetOrigin(), orthonormal_direction(a.GetDirection())),
                         _Grid(b.GetSize(), b.GetSpacing(), b.GetOrigin(), orthonormal_direction(b.GetDirection()))):
        return False
    n = len(a.GetSize())
    corners = np.array(np.meshgrid(*[(0, s - 1) for s in a.GetSize()], indexing="ij")).reshape(n, -1)

    def points(img):
        d = np.asarray(img.GetDirection(), dtype=float).reshape(n, n) * np.asarray(img.GetSpacing(), dtype=float)
        return np.asarray(img.GetOrigin(), dtype=float)[:, None] + d @ corners

    moved = np.linalg.norm(points(a) - points(b), axis=0).max()    # the grids differ linearly: largest at a corner
    return bool(moved < 0.5 * min(a.GetSpacing()))


def on_grid(image: sitk.Image, mask: sitk.Image, what: str = "mask") -> sitk.Image:
    """``mask`` on ``image``'s grid, in the order ``image`` stores its voxels: ``mask`` itself when the grids are
    the same; reoriented (flips / permutations only: lossless) when it lies on the same voxels stored in another
    order (a RAS NIfTI mask of an LPS DICOM CT, as nibabel / nnU-Net write it), with exactly ``image``'s geometry;
    with ``image``'s geometry too when the two differ only by a slightly skewed direction (:func:`same_voxels_but_skew`:
    a CT whose axes are not exactly perpendicular and its mask written as NIfTI, e.g. ``lungai segment``'s tumor.nii.gz
    read back by the Slicer panel);
    placed onto the image's grid (lossless) when its voxels are voxels of the image's lattice but it covers another
    extent - a mask cropped to its segment (:func:`lattice_offset`; a labelled voxel outside the image is refused).
    The one grid check of a mask against its image (``lungai.io.read_mask``, radiomics segments, dose features):
    a mask truly off the grid raises a :class:`GeometryError` that says how to resample it."""
    if same_geometry(image, mask):
        return mask
    if same_voxels_but_skew(image, mask):
        out = sitk.Image(mask)
        out.CopyInformation(image)
        return out
    if same_voxels(image, mask):
        out = sitk.DICOMOrient(mask, orientation_of(image))
        if same_geometry(image, out):
            out.CopyInformation(image)
            return out
    offset = lattice_offset(image, mask)
    if offset is not None:
        return _onto_lattice(image, mask, offset, what)
    raise _geometry_error(image, mask, what)


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


def orientation_of(img) -> str:
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
