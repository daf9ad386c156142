"""From an input CT to the model grid and back.

The region of interest (ROI) is a box of voxel indices on the *input* grid, chosen from the
lungs (automatic mode), a user box or a seed point (physical LPS mm, as in ITK), or the
whole image when the image is itself a small crop (as the LIDC nodule crops).  The crop is
resampled to the model spacing and HU-windowed; outputs on the model grid are resampled
back onto the crop and pasted into an array of the input's size, so every result shares
the input's geometry exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError

# scipy.ndimage (0.3-1.3 s of a shared machine) is imported in the two functions using it: imported here it came
# before the first bar of lungai radiomics, radiomics-batch and eval-seg (QA startbar66)

CROP_EXTENT_MM = 150.0     # smaller in-plane field of view = the image is a crop, use it whole
# mm; lungs are found on a coarser copy.  1.5 mm, not coarser: the same mask decides which components
# lie "in the lungs" in automatic mode, and at 2.5 mm the two lungs' masks bleed over the thin
# mediastinal junctions (a paravertebral false mark on real CT lung1 was 54 % "inside" at 2.5 mm,
# 23 % at 1.5 mm, 4 % at full resolution); costs ~0.8 s more on a 512 x 512 x 130 CT.
LUNG_FIND_SPACING = 1.5


@dataclass
class Box:
    """Voxel index box [lo, hi) on the input grid, (x, y, z)."""
    lo: tuple
    hi: tuple
    mode: str = "whole"
    region: object = None      # optional sitk mask (any grid): tumour allowed only inside it
    lungs: object = None       # automatic mode: the lungs themselves (sitk mask, any grid)

    @property
    def size(self) -> tuple:
        return tuple(int(h - l) for l, h in zip(self.lo, self.hi))


def whole_box(img: sitk.Image, mode: str = "whole") -> Box:
    return Box((0, 0, 0), tuple(img.GetSize()), mode)


FACES = ("x-", "x+", "y-", "y+", "z-", "z+")


def touched_faces(mask_zyx: np.ndarray, spacing_xyz, margin_mm: float = 0.0) -> list:
    """Faces ("x-", "x+", ...) of the array that ``mask_zyx`` comes within ``margin_mm`` of (0: lies on)."""
    if not mask_zyx.any():
        return []
    idx = np.argwhere(mask_zyx)
    lo, hi = idx.min(0)[::-1], idx.max(0)[::-1]            # (x, y, z)
    size = np.array(mask_zyx.shape[::-1])
    faces = []
    for a, axis in enumerate("xyz"):
        m = max(0, int(np.ceil(margin_mm / float(spacing_xyz[a]))) - 1)
        if lo[a] <= m:
            faces.append(axis + "-")
        if hi[a] >= size[a] - 1 - m:
            faces.append(axis + "+")
    return faces


def cut_by_image_edge(mask: sitk.Image) -> list:
    """The image's faces a mask on the whole image grid lies on: the region may be cut by the scan there (the
    concept of ``cut_by_image_edge`` in ``lungai segment``'s result.json, which also counts the faces
    :func:`cut_on_model_grid` finds; also warned by ``lungai radiomics``)."""
    return touched_faces(sitk.GetArrayViewFromImage(mask) != 0, mask.GetSpacing(), 0.0)


def cut_on_model_grid(binary: np.ndarray, mean_model: np.ndarray, model_img: sitk.Image, crop_img: sitk.Image,
                      faces) -> list:
    """The crop's ``faces`` (image edges of the CT) that the tumour lies on as the model saw it: the model-grid
    tumour (mean probability ``mean_model`` > 0.5) where the kept mask ``binary`` (z, y, x on ``crop_img``) is - its
    samples with a kept voxel within one model voxel (the mask resampled linearly onto the model grid, > 0) - reaches
    the model grid's outermost sample plane there.  The model grid spans the crop's extent on a coarser, rounded
    grid, so its outer samples may lie inside the crop's outer voxels, which get probability 0 (:func:`to_input`):
    a tumour the scan ends through then stops one slice short of the scan's end on the input grid, and is reported
    cut by this.  Model-grid tumour not in the kept mask (another region, one joined to it only on the coarser
    grid) does not count."""
    faces = set(faces)
    mb = mean_model > 0.5
    if not faces or not binary.any() or not faces & set(touched_faces(mb, model_img.GetSpacing(), 0.0)):
        return []
    kept = sitk.GetImageFromArray(binary.astype(np.float32))
    kept.CopyInformation(crop_img)
    near = sitk.GetArrayFromImage(resample_like(kept, model_img)) > 0      # a copy: the resampled image is a temporary
    return [f for f in touched_faces(mb & near, model_img.GetSpacing(), 0.0) if f in faces]


def edge_probability(binary: np.ndarray, mean_p: np.ndarray, faces) -> dict:
    """{face: the mean tumour probability ``mean_p`` on the array's outermost plane at ``face``, under the footprint
    of the mask ``binary`` there - its own plane nearest that face (its outermost column / row / slice on that
    side)} for each of ``faces`` (image edges of the CT; both z, y, x on the crop's input grid): whether the tumour
    the model saw still reaches the edge where the mask ends short of it.  A plane beyond the model grid's outer
    sample gets probability 0 (:func:`to_input`) - a tumour reaching that sample is :func:`cut_on_model_grid`'s.
    QA: LIDC crops whose nodule ends one 2.5 mm slice before the crop's first / last slice were said "possibly cut"
    (the mask within 3 mm of the edge) with the probability there near 0; a CT cut through a tumour (lung1 cut at
    column 215: the mask starting 2.3 mm in, p up to 0.47 in the columns before) keeps it.  The footprint was the
    mask projected along the whole axis: a tumour wide inside and tapering to the edge pulled the mean down (lung1
    cut at column 206 / 212, 16 reference voxels on the edge column: 0.06 / 0.19, not flagged; its outer plane:
    0.25 / 0.35)."""
    out = {}
    for f in faces:
        ax = 2 - "xyz".index(f[0])              # the (z, y, x) axis of the face
        planes = np.flatnonzero(binary.any(axis=tuple(a for a in range(3) if a != ax)))
        if not planes.size:
            out[f] = 0.0
            continue
        foot = np.take(binary, planes[0] if f[1] == "-" else planes[-1], axis=ax)
        plane = np.take(mean_p, 0 if f[1] == "-" else -1, axis=ax)
        out[f] = round(float(plane[foot].mean()), 3)
    return out


# a z face named by anatomy, not by slice order: the faces are those of the LPS-reordered CT (z- inferior), while the
# file's own first slice may be the top (feet-first storage, a DICOM series numbered from the head) - QA: a tumour cut
# at the bottom of a CT stored top slice first was said cut "at its first slice"
SCAN_END = {"z-": "bottom (inferior)", "z+": "top (superior)"}


def edge_words(faces) -> str:
    """The faces of :func:`cut_by_image_edge` in words, a z face as where the scan ends (its bottom / top slice; an
    x / y face is the edge of the field of view): "x-, z+: the scan ends through it at its top (superior) slice"."""
    ends = [SCAN_END[f] for f in faces if f in SCAN_END]
    return ", ".join(faces) + (f": the scan ends through it at its {' and '.join(ends)} slice{'s' if len(ends) > 1 else ''}"
                               if ends else "")


def cut_note(segment: str, faces) -> str:
    """The warning for a segment on the image edge ``faces`` (:func:`cut_by_image_edge`); ``fov`` among them: the
    segment reached past the scanner's field of view, its padding voxels were left out
    (:func:`lungai.radiomics.extract.without_padding_voxels`)."""
    edges = [f for f in faces if f != "fov"]
    where = []
    if edges:
        where.append(f"touches the image's {', '.join(edges)} edge{'s' if len(edges) > 1 else ''}")
    if len(edges) < len(faces):
        where.append("reaches past the scanner's field of view (its padding voxels, no tissue, were left out)")
    return (f"segment {segment!r} {' and '.join(where)}: it may be cut by the scan; shape and volume features are of "
            "the part inside")


def slab_axes(img: sitk.Image) -> tuple:
    """(thickness axis, its extent mm, the other two axes' extents mm): the thickness is the smallest physical extent
    (size x spacing) over the three index axes - the slice axis of a CT stored in any order (for a whole CT, and for
    a nodule crop thinner than it is wide, the z axis); the other two are its in-plane field of view."""
    ext = [n * s for n, s in zip(img.GetSize(), img.GetSpacing())]
    a = int(np.argmin(ext))
    return a, ext[a], [e for k, e in enumerate(ext) if k != a]


def is_crop(img: sitk.Image) -> bool:
    """The image is a small crop (use it whole as the ROI): its in-plane field of view (:func:`slab_axes`) is under
    ``CROP_EXTENT_MM``."""
    return max(slab_axes(img)[2]) < CROP_EXTENT_MM


# A whole-chest field of view (not a crop, :func:`is_crop`) only a few slices thick: the model sees the tumour in a
# slab (2-5 slices of a whole CT) and nothing says so.  LIDC nodule crops are thin too (88 % under 20 mm) but small
# in-plane, so the in-plane rule of is_crop keeps them out.  The slice axis is the thinnest (:func:`slab_axes`), so
# a slab stored with its slices along another index axis is one too.
THIN_SLAB_MM = 20.0
THIN_SLAB_REASON = "the CT is a thin slab (a few slices of a chest scan)"


def thin_slab_note(img: sitk.Image):
    """A note when ``img`` is a whole-chest field of view (in-plane >= ``CROP_EXTENT_MM``) less than
    ``THIN_SLAB_MM`` thick (slices x slice spacing along its thinnest axis, :func:`slab_axes`); None otherwise."""
    a, thick_mm, in_plane = slab_axes(img)
    if max(in_plane) < CROP_EXTENT_MM or thick_mm >= THIN_SLAB_MM:
        return None
    n = img.GetSize()[a]
    return (f"the CT is only {n} slice{'s' if n > 1 else ''} ({thick_mm:.0f} mm) thick for a "
            f"{max(in_plane):.0f} mm field of view: a slab of a "
            "chest scan - the tumour is most likely cut by the scan's ends, and the model (trained on whole tumours) "
            "is less reliable on so few slices; check the result, or give the whole CT")


SNAP_MM = 0.005     # a box edge this close (mm) to a whole voxel index is on it (see snap_whole)


def snap_whole(index, spacing) -> np.ndarray:
    """Continuous voxel indices (x, y, z) with those within ``SNAP_MM`` of a whole number set to it, before a
    box edge is floored / ceiled to whole voxels.  A box edge on a voxel centre (a seed clicked on a slice, a
    box a whole number of voxels wide, a corner copied from the CT's grid) otherwise falls either side of it with
    the float rounding of the physical -> index conversion (a translated origin) or a seed typed a micron off,
    and the box grows or shifts by a voxel.  Used wherever physical positions become a box of whole voxels."""
    x = np.asarray(index, dtype=float)
    whole = np.round(x)
    tol = SNAP_MM / np.asarray(spacing, dtype=float)
    return np.where(np.abs(x - whole) <= tol, whole, x)


def _index_of(img: sitk.Image, point_lps) -> np.ndarray:
    return np.array(img.TransformPhysicalPointToContinuousIndex([float(v) for v in point_lps]))


def _inside(img: sitk.Image, point_lps) -> bool:
    """True when ``point_lps`` lies in the image's voxels (continuous index -0.5 .. size - 0.5 on each axis)."""
    idx = _index_of(img, point_lps)
    return bool(np.all(idx >= -0.5) and np.all(idx <= np.array(img.GetSize()) - 0.5))


def _index_reading(img: sitk.Image, values):
    """The numbers of a seed point / ROI (``values``: x, y, z or x0, y0, z0, x1, y1, z1) read as voxel indices (i, j,
    k): their voxel centres in LPS mm when every number is a whole one on ``img``'s grid (0 .. size - 1), else
    None."""
    v = [float(x) for x in values]
    points = [v[i:i + 3] for i in range(0, len(v), 3)]
    size = np.array(img.GetSize())
    if not (all(c == round(c) for c in v) and all(np.all((np.array(p) >= 0) & (np.array(p) < size)) for p in points)):
        return None
    return [img.TransformIndexToPhysicalPoint([int(round(c)) for c in p]) for p in points]


def _fmt_option(points) -> str:
    """LPS points as an option's value: ``-21.67,-120.26,-612.5``."""
    return ",".join(f"{c:.2f}".rstrip("0").rstrip(".") for p in points for c in p)


def _readings(img: sitk.Image, values, option: str, fits, where: str) -> list:
    """The other readings of a seed point / ROI's numbers (``values``) that lie ``where`` ("in the CT", "in the
    body": ``fits(numbers)`` of the reading's LPS numbers): as voxel indices (:func:`_index_reading`) and as Slicer's
    RAS (x and y negated), each with the LPS numbers to give ``option``."""
    v = [float(x) for x in values]
    hints = []
    lps = _index_reading(img, v)
    if lps is not None and fits([c for p in lps for c in p]):
        hints.append(f"the numbers look like voxel indices (i, j, k): in LPS mm that is {option}={_fmt_option(lps)}")
    ras = [[-v[i], -v[i + 1], v[i + 2]] for i in range(0, len(v), 3)]
    if fits([c for p in ras for c in p]):
        hints.append(f"read as Slicer's RAS they lie {where}: in LPS mm that is {option}={_fmt_option(ras)}")
    return hints


def outside_image_fix(img: sitk.Image, values, option: str) -> str:
    """The fix of a seed point / ROI (``values``: x, y, z or x0, y0, z0, x1, y1, z1; ``option``: "--seed-point" /
    "--roi") lying outside ``img``: the CT's extent in LPS mm (its voxel centres), and, when the numbers read as
    voxel indices (whole numbers on the grid) or as Slicer's RAS (x and y negated) lie in the CT, that reading and
    the LPS numbers to give.  QA: lung1's tumour given as its voxel index, ``--seed-point=218,359,33``, got "Slicer
    shows RAS: negate x and y" only - negated it lies outside too."""
    size = np.array(img.GetSize())
    corners = np.array([img.TransformIndexToPhysicalPoint([int(i), int(j), int(k)])
                        for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    extent = ", ".join(f"{a} {lo:.1f} .. {hi:.1f}" for a, lo, hi in zip("xyz", corners.min(0), corners.max(0)))
    hints = _readings(img, values, option, lambda v: all(_inside(img, v[i:i + 3]) for i in range(0, len(v), 3)),
                      "in the CT")
    return (f"give physical LPS millimetres inside the CT ({extent} mm LPS; Slicer shows RAS: negate x and y)"
            + ("; " + "; ".join(hints) if hints else ""))


def _clip_box(img: sitk.Image, lo, hi, mode: str) -> Box:
    size = np.array(img.GetSize())
    lo = np.clip(np.floor(snap_whole(lo, img.GetSpacing())).astype(int), 0, size)
    hi = np.clip(np.ceil(snap_whole(hi, img.GetSpacing())).astype(int), 0, size)
    if np.any(hi - lo < 1):
        raise InputError("the region of interest lies outside the image",
                         "give ROI / seed coordinates in physical LPS millimetres inside the CT "
                         "(as shown by ITK/SimpleITK; Slicer shows RAS: negate x and y)")
    return Box(tuple(int(v) for v in lo), tuple(int(v) for v in hi), mode)


def box_from_physical(img: sitk.Image, p0_lps, p1_lps, margin_mm: float = 0.0, mode: str = "roi") -> Box:
    """Box spanning two opposite corners given in LPS mm (plus a margin): the index-space bounding box of the
    LPS-aligned box (a user's ``--roi``, a Slicer ROI, is axis-aligned in RAS / LPS); on an oblique CT it is larger
    than the ROI (up to cos + sin of the tilt per tilted axis).  A seed's cube and the lungs' box are built in index
    space instead (:func:`box_from_seed`, :func:`box_from_lungs`)."""
    corners = []
    for x in (p0_lps[0], p1_lps[0]):
        for y in (p0_lps[1], p1_lps[1]):
            for z in (p0_lps[2], p1_lps[2]):
                corners.append(_index_of(img, (x, y, z)))
    corners = np.array(corners)
    m = margin_mm / np.array(img.GetSpacing())
    return _clip_box(img, corners.min(0) - m, corners.max(0) + 1 + m, mode)


OUTSIDE_AIR_HU = -975.0     # outside air (about -1000 HU, padding lower); aerated lung, even emphysematous, is above


def _outside_air(ct: sitk.Image, k: int) -> np.ndarray:
    """Bool (y, x): slice ``k``'s outside air - a region below -500 HU reaching the image border (or the scanner's
    padding) that lies mostly outside the body's hull (the lungs' field-of-view rule,
    :func:`lungai.lungs.segment._body_air_open_fov`); in a crop (:func:`is_crop`) one reaching the border whose
    median is below ``OUTSIDE_AIR_HU``."""
    sl = sitk.GetArrayViewFromImage(ct)[k]
    air = sl < -500
    out = np.zeros(air.shape, bool)
    if not air.any():
        return out
    if not is_crop(ct):
        # a whole CT: the air beside the patient (with the table / blanket in it: a median of -960..-900 HU on real
        # CTs) is outside the body, but a lung the field of view cuts (a targeted reconstruction of one lung, a large
        # patient) reaches the border too and lies in the body's hull.  QA: LUNG1-003 cut through its right lung at
        # x index 160 refused a seed at -597 HU in that lung (a ground-glass density) as "outside the body"
        from scipy import ndimage

        from lungai.lungs.segment import _body_air_open_fov

        hu = np.asarray(sl, dtype=np.float32)[None]
        return _body_air_open_fov(hu, ndimage.uniform_filter(hu, size=3), air[None],
                                  np.zeros(hu.shape, bool))[1][0] & air
    # in a crop (in-plane field of view under CROP_EXTENT_MM) only air reaching the border (median below
    # OUTSIDE_AIR_HU): inside the lung the aerated lung reaches the crop's border, and a ground-glass nodule's centre
    # (-800..-300 HU) lies in it - QA: 42 of the 779 LIDC crops seeded at their nodule's centre were refused as
    # "outside the body"
    from scipy import ndimage

    lab, _ = ndimage.label(air)
    for here in set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))) - {0}:
        if float(np.median(sl[lab == here])) < OUTSIDE_AIR_HU:
            out |= lab == here
    return out


def check_seed_inside_body(ct: sitk.Image, seed_lps) -> np.ndarray:
    """The seed's voxel index (x, y, z); InputError if outside the image or in outside air (:func:`_outside_air`)."""
    idx = np.round(_index_of(ct, seed_lps)).astype(int)
    size = np.array(ct.GetSize())
    if np.any(idx < 0) or np.any(idx >= size):
        raise InputError(f"the seed point {tuple(round(float(v), 1) for v in seed_lps)} mm (LPS) is outside the image",
                         outside_image_fix(ct, seed_lps, "--seed-point"))
    if not _in_body(ct, seed_lps):
        # the numbers read as voxel indices / as Slicer's RAS in the body: that reading's LPS numbers (QA: LUNG1-002's
        # tumour given as voxel indices, --seed-point=150,200,58, lies in the CT's extent, in the air behind the
        # patient: "place the seed on the tumour" only - 66 of 400 of its GTV's voxel indices were refused so)
        hints = _readings(ct, seed_lps, "--seed-point", lambda v: _in_body(ct, v), "in the body")
        raise InputError(f"the seed point {tuple(round(float(v), 1) for v in seed_lps)} mm (LPS) is outside the body",
                         "place the seed on the tumour (LPS mm; Slicer shows RAS: negate x and y)"
                         + ("; " + "; ".join(hints) if hints else ""))
    return idx


def _in_body(ct: sitk.Image, point_lps) -> bool:
    """True when ``point_lps`` lies in ``ct`` and not in the air around the patient (below -500 HU and
    :func:`_outside_air`)."""
    idx = np.round(_index_of(ct, point_lps)).astype(int)
    if np.any(idx < 0) or np.any(idx >= np.array(ct.GetSize())):
        return False
    return not (sitk.GetArrayViewFromImage(ct)[idx[2], idx[1], idx[0]] < -500
                and _outside_air(ct, idx[2])[idx[1], idx[0]])


def roi_box(ct: sitk.Image, roi_lps, margin_mm: float) -> Box:
    """The box of an ROI ``roi_lps`` (x0, y0, z0, x1, y1, z1 LPS mm) on ``ct`` with ``margin_mm``, checked: 6 numbers
    with extent, not wholly in the air round the patient nor beside the image (:class:`~lungai.errors.InputError`
    naming where the CT is).  Light (no torch): ``lungai demo`` checks an ROI with it before its heavy imports."""
    p = [float(v) for v in roi_lps]
    if len(p) != 6:
        raise InputError(f"--roi needs 6 numbers x0,y0,z0,x1,y1,z1 (got {len(p)})",
                         "give two opposite corners in LPS mm")
    check_roi_extent(p)
    check_roi_inside_body(ct, p)
    try:
        return box_from_physical(ct, p[:3], p[3:], margin_mm)
    except InputError as err:           # wholly beside the CT: where the CT is, the voxel-index / RAS reading
        raise InputError(f"the ROI {tuple(round(v, 1) for v in p)} mm (LPS) lies outside the image",
                         outside_image_fix(ct, p, "--roi")) from err


def check_placement(ct: sitk.Image, seed_lps, roi_lps, margin_mm: float) -> None:
    """The checks :func:`lungai.seg.infer.segment_tumour` makes of a seed point (:func:`check_seed_inside_body`: off the
    image, in outside air) and an ROI (:func:`roi_box` with the model's ``margin_mm``: no extent, beside the image, in
    the air) on the CT alone - light (no torch), so that a command refuses them before it imports torch / MONAI and
    loads its model: ``lungai demo`` (QA demo67: a seed off the CT refused after 30 s) and ``lungai segment`` (QA
    seg72: pyradiomics lung1 with ``--seed-point=1e4,1e4,1e4`` / ``--roi`` beside the CT refused 15-16 s after the
    command, once the model was loaded).  InputError naming the problem and its fix."""
    if seed_lps is not None:
        check_seed_inside_body(ct, seed_lps)
    if roi_lps is not None:
        roi_box(ct, roi_lps, margin_mm)


def check_roi_extent(roi_lps) -> list:
    """The ROI's 6 numbers (x0, y0, z0, x1, y1, z1 LPS mm) as floats; InputError when the box has no extent along an
    axis (x0 == x1, y0 == y1 or z0 == z1: ``--roi 0,0,0,0,0,0``, an ROI never drawn), which would segment the empty
    region its margin makes round a point or a plane - checked before any work."""
    p = [float(v) for v in roi_lps]
    flat = [axis for k, axis in enumerate("xyz") if p[k] == p[k + 3]]
    if flat:
        raise InputError(f"the ROI {tuple(round(v, 1) for v in p)} mm (LPS) has no extent along "
                         f"{' and '.join(flat)} ({', '.join(f'{a}0 == {a}1' for a in flat)}): it is no box",
                         "give two opposite corners of a box round the tumour, x0,y0,z0,x1,y1,z1 in LPS mm, e.g. "
                         "--roi -12.5,40,-150,20,80,-110 (Slicer shows RAS: negate x and y)")
    return p


def _roi_outside(img: sitk.Image, roi_lps) -> tuple[float, dict]:
    """How much of the ROI (x0, y0, z0, x1, y1, z1 LPS mm, no margin) lies outside ``img``: (the fraction of the box
    outside it, {face: mm the box reaches beyond the image's outer voxel faces there}), measured on the index-space
    bounding box of its 8 corners (as :func:`box_from_physical` builds the box) against the image's extent, voxel
    centres -0.5 .. size - 0.5."""
    p = [float(v) for v in roi_lps]
    corners = np.array([_index_of(img, (x, y, z)) for x in (p[0], p[3]) for y in (p[1], p[4]) for z in (p[2], p[5])])
    lo, hi = corners.min(0), corners.max(0)
    edge_lo, edge_hi = np.full(3, -0.5), np.array(img.GetSize(), float) - 0.5
    spacing = np.array(img.GetSpacing())
    beyond = {}
    for a, axis in enumerate("xyz"):
        for face, mm in ((f"{axis}-", (edge_lo[a] - lo[a]) * spacing[a]),
                         (f"{axis}+", (hi[a] - edge_hi[a]) * spacing[a])):
            if mm > 0.5 * spacing[a]:            # under half a voxel: on the image's edge (a box drawn to it)
                beyond[face] = float(mm)
    size = np.maximum(hi - lo, 1e-9)
    inside = np.clip(np.minimum(hi, edge_hi) - np.maximum(lo, edge_lo), 0, None)
    return float(1.0 - np.prod(inside / size)), beyond


# the words after a fix naming where to put a seed / ROI box: lungai's numbers are LPS, Slicer shows RAS; the Lung AI
# Segmentation panel leaves them out (its seed / ROI come from its nodes, never typed: LungAISeg.panelSegmentWords)
LPS_MM_RAS = "(LPS mm; Slicer shows RAS: negate x and y)"


def roi_outside_note(img: sitk.Image, roi_lps):
    """A note when the ROI (x0, y0, z0, x1, y1, z1 LPS mm) reaches beyond ``img`` by more than half a voxel: which
    faces, how far, how much of the box lies outside - it is cut to the image (:func:`box_from_physical`); None
    otherwise.  A box wholly outside is refused there."""
    fraction, beyond = _roi_outside(img, roi_lps)
    if not beyond:
        return None
    faces = "; ".join(f"{f}: {mm:.0f} mm beyond the image"
                      + (f" (past its {SCAN_END[f]} slice)" if f in SCAN_END else "")
                      for f, mm in sorted(beyond.items(), key=lambda kv: FACES.index(kv[0])))
    return (f"the ROI reaches outside the CT ({faces}): {fraction:.0%} of the box lies outside the image, so it was "
            f"cut to the image - check that the ROI is the box you meant {LPS_MM_RAS}")


# An ROI typed in Slicer's bounds order (xmin, xmax, ymin, ymax, zmin, zmax) instead of two opposite corners (x0, y0,
# z0, x1, y1, z1) is read as corners - a box mixing the axes.  Noted (never changed: the numbers may be meant) when
# each pair (v0, v1), (v2, v3), (v4, v5) is ordered min <= max, the numbers read as bounds give a compact box (longest
# side at most ROI_BOUNDS_COMPACT x its shortest) wholly inside the CT, and read as corners a box reaching outside the
# CT or elongated (longest side above ROI_CORNERS_ELONGATED x its shortest, and above twice the bounds box's ratio).
# QA: LUNG1-003's GTV-1 box as bounds, 18.4,71.4,-41.1,39.2,-157.9,-99.9: a 21 x 229 x 59 mm box as corners (11:1),
# "no tumour found" without a word; as bounds 53 x 80 x 58 mm (1.5:1).  Chosen on LUNG1-003's grid with 20,000 boxes
# of 20-120 mm per side (up to 6:1) round points of the CT: given as corners - in the panel's order (x0 > x1,
# y0 > y1) and in min / max order - none is noted (with 3 / 3 instead of 4 / 6: 16 of the 40,000; with 4 / 5: 6);
# typed as bounds, 57 % are (the others read as corners give a box that fits: nothing tells them apart).
ROI_BOUNDS_COMPACT = 4.0
ROI_CORNERS_ELONGATED = 6.0
ROI_ORDER_REASON = "the ROI's numbers may be bounds (xmin,xmax,ymin,ymax,zmin,zmax), not two corners"


def _sides(roi_lps) -> np.ndarray:
    p = np.array([float(v) for v in roi_lps])
    return np.abs(p[3:] - p[:3])


def roi_order_note(img: sitk.Image, roi_lps):
    """A note when the ROI's 6 numbers look like bounds in Slicer's order rather than two opposite corners (see
    :data:`ROI_BOUNDS_COMPACT`): both readings' sizes and the numbers reordered as corners; None otherwise."""
    p = [float(v) for v in roi_lps]
    if not (p[0] <= p[1] and p[2] <= p[3] and p[4] <= p[5]):
        return None
    bounds = [p[0], p[2], p[4], p[1], p[3], p[5]]          # the same numbers as corners of the bounds box
    sb, sc = _sides(bounds), _sides(p)
    if sb.min() <= 0 or sc.min() <= 0 or sb.max() > ROI_BOUNDS_COMPACT * sb.min():
        return None
    if _roi_outside(img, bounds)[1]:                       # as bounds not inside the CT (roi_outside_note's rule)
        return None
    outside = bool(_roi_outside(img, p)[1])
    elongated = sc.max() / sc.min() > max(ROI_CORNERS_ELONGATED, 2 * sb.max() / sb.min())
    if not (outside or elongated):
        return None

    def size(sides) -> str:
        return " x ".join(f"{v:.0f}" for v in sides) + " mm"

    how = "reaching outside the CT" if outside else f"{sc.max() / sc.min():.0f} times longer than wide"
    return (f"the ROI's numbers may be bounds in Slicer's order (xmin,xmax,ymin,ymax,zmin,zmax): --roi takes two "
            f"opposite corners, x0,y0,z0,x1,y1,z1, and read so they make a {size(sc)} box ({how}); read as bounds, a "
            f"{size(sb)} box inside the CT - if you meant bounds, give them as corners: --roi={_fmt_point(bounds)} "
            f"{LPS_MM_RAS}")


# an ROI box drawn loosely round the tumour: on average LOOSE_ROI_MM or more beyond the tumour found on each side,
# measured from a ball of the written mask's volume (a mask that leaks into the box's surroundings is larger, so the
# excess is measured short: a lower limit than the 30-40 mm margins it is meant for).  A box no larger than a seed's
# cube on any side is never loose (seed mode segments that box round a small nodule).  Measured (DynUNet; boxes round
# the GTV / lesion of LUNG1-002, LUNG1-003's GTV-1, lung1, lung2 with 0 / 20 / 30 / 40 mm beyond it; docs/segmentation.md
# "A loose ROI box"): 0 mm -2..7 mm, 20 mm 17-23 mm (never noted), 30 mm 26-31 mm, 40 mm 28-38 mm (noted).  QA on
# LUNG1-003's GTV-1 (next to the spine and mediastinum): its own box Dice 0.62, 30 mm beyond it 0.38, 40 mm beyond it
# 0.36 (104 ml marked for a 35 ml GTV) - with no word that the box was loose.
LOOSE_ROI_MM = 25.0
LOOSE_ROI_REASON = "the ROI box is much larger than the tumour found"


def loose_roi_note(box_size_mm, volume_ml: float, seed_box_mm: float = 60.0, margin_mm: float = 10.0):
    """A note when the user's ROI box (``box_size_mm``: its extent in the CT along x, y, z, mm) reaches on average
    :data:`LOOSE_ROI_MM` or more beyond the tumour found (``volume_ml``: the written mask; a ball of that volume)
    on each side and is larger than a seed's cube (``seed_box_mm``) on some side; None otherwise (and for an empty
    result).  ``margin_mm``: the margin segmentation adds round the box itself (named in the note)."""
    size = np.asarray(box_size_mm, float)
    if not volume_ml or volume_ml <= 0 or (size <= seed_box_mm).all():
        return None
    across = float((6.0 * volume_ml * 1000.0 / np.pi) ** (1.0 / 3.0))
    beyond = (size - across) / 2.0
    if beyond.mean() < LOOSE_ROI_MM:
        return None
    sides = ", ".join(f"{a} {v:.0f}" for a, v in zip("xyz", beyond))
    return (f"the ROI box is much larger than the tumour found: {' x '.join(f'{v:.0f}' for v in size)} mm for a "
            f"{volume_ml:.1f} ml tumour (about {across:.0f} mm across), about {beyond.mean():.0f} mm beyond it on each "
            f"side ({sides} mm); either the box is loose - it takes in what lies round the tumour (spine, mediastinum, "
            "vessels, chest wall), which the model may mark too: draw the box round the tumour, up to about 10 mm "
            f"beyond it (segmentation adds {margin_mm:.0f} mm round it itself), and run again - or the tumour fills "
            "the box and the mask misses part of it: check it against the CT and complete it (docs/segmentation.md, "
            "\"A loose ROI box\")")


def _box_in_outside_air(ct: sitk.Image, box: Box) -> bool:
    """True when every voxel of ``box`` lies in the air around the patient (:func:`_outside_air`)."""
    arr = sitk.GetArrayViewFromImage(ct)[box.lo[2]:box.hi[2], box.lo[1]:box.hi[1], box.lo[0]:box.hi[0]]
    if (arr >= -500).any():                      # soft tissue in it: not all outside air (quick)
        return False
    return all(_outside_air(ct, k)[box.lo[1]:box.hi[1], box.lo[0]:box.hi[0]].all() for k in range(box.lo[2], box.hi[2]))


def _roi_reaches_body(ct: sitk.Image, roi_lps) -> bool:
    """True when the ROI (x0, y0, z0, x1, y1, z1 LPS mm) lies in the CT, not wholly in the air around the patient."""
    try:
        box = box_from_physical(ct, roi_lps[:3], roi_lps[3:])
    except InputError:
        return False
    return not _box_in_outside_air(ct, box)


def check_roi_inside_body(ct: sitk.Image, roi_lps) -> None:
    """InputError when the ROI (x0, y0, z0, x1, y1, z1 LPS mm, no margin) lies wholly in outside air - the seed's rule
    (:func:`check_seed_inside_body`) on every voxel of the box; the fix names the numbers' voxel-index / RAS reading
    reaching the body (QA: LUNG1-002's GTV box in voxel indices, ``--roi 129,226,28,228,324,53``: "draw the ROI round
    the tumour" only)."""
    p = [float(v) for v in roi_lps]
    try:
        box = box_from_physical(ct, p[:3], p[3:])
    except InputError:                           # beside the image: the box with its margin decides (choose_box)
        return
    if not _box_in_outside_air(ct, box):
        return
    hints = _readings(ct, p, "--roi", lambda v: _roi_reaches_body(ct, v), "in the body")
    raise InputError(f"the ROI {tuple(round(v, 1) for v in p)} mm (LPS) is outside the body (all of it in the air "
                     "around the patient)", "draw the ROI round the tumour (LPS mm; Slicer shows RAS: negate x and y)"
                     + ("; " + "; ".join(hints) if hints else ""))


# A seed / ROI in aerated lung is no tumour.  Seed: the median HU within SEED_HU_RADIUS_MM of it below AERATED_HU
# (well-aerated lung or air), or below SUSPECT_HU and not denser than its SURROUND_MM surroundings while the same point
# read as RAS (x and y negated) lies in soft tissue (median above SOFT_TISSUE_HU), adds a note and a review reason
# (never a refusal: ground-glass nodules are -800..-300 HU).  ROI: the same on the median of its central third (and
# of the negated box's).  Chosen on the 779 LIDC nodule crops, a seed at each nodule's centre (its mask's centre of
# mass): ground-glass centres (texture 1-2) lie at -800..-180 HU and are denser than their 10 mm surroundings (the
# lowest, -798 HU, against -867 HU around it), so none gets the note except 2 nodules with air at the centre of mass
# (-1001 and -909 HU: a cavity); a seed in dependent lung of LUNG1-003 given in RAS lies at -686 HU, less dense than
# its surroundings (-650 HU), and the same point read as RAS in the tumour (47 HU).
SEED_HU_RADIUS_MM = 3.0
SURROUND_MM = 10.0
AERATED_HU = -800.0
SUSPECT_HU = -500.0
SOFT_TISSUE_HU = -300.0
AERATED_REASON = "the seed point / ROI lies in aerated lung"
# a seed / ROI whose numbers may be voxel indices (i, j, k) rather than LPS mm (voxel_index_hint,
# roi_voxel_index_hint): the location segmented may not be the one meant - a review reason, not only a note
VOXEL_INDEX_REASON = "the numbers of the seed point / ROI may be voxel indices (i, j, k), not LPS millimetres"


def median_hu_near(ct: sitk.Image, point_lps, radius_mm: float = SEED_HU_RADIUS_MM):
    """Median intensity of ``ct`` within ``radius_mm`` of ``point_lps`` (LPS mm); None when the point lies outside
    the image."""
    idx = np.round(_index_of(ct, point_lps)).astype(int)
    size = np.array(ct.GetSize())
    if np.any(idx < 0) or np.any(idx >= size):
        return None
    sp = np.array(ct.GetSpacing())
    r = np.ceil(radius_mm / sp).astype(int)
    lo, hi = np.maximum(idx - r, 0), np.minimum(idx + r + 1, size)
    zz, yy, xx = np.mgrid[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
    ball = (((xx - idx[0]) * sp[0]) ** 2 + ((yy - idx[1]) * sp[1]) ** 2 + ((zz - idx[2]) * sp[2]) ** 2
            <= radius_mm ** 2)
    sub = sitk.GetArrayViewFromImage(ct)[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
    return float(np.median(sub[ball]))


def _central_hu(ct: sitk.Image, roi_lps):
    """Median intensity of the central third of an ROI (x0, y0, z0, x1, y1, z1 LPS mm); None outside the image."""
    p0, p1 = np.array(roi_lps[:3], float), np.array(roi_lps[3:], float)
    c, half = np.array(roi_centre(roi_lps)), np.abs(p1 - p0) / 6
    try:
        box = box_from_physical(ct, c - half, c + half)
    except InputError:
        return None
    return float(np.median(sitk.GetArrayFromImage(crop(ct, box))))


def _fmt_point(p) -> str:
    return ",".join(f"{float(v):.1f}" for v in p)


def _ras_question(shown: str, hu: float) -> str:
    """The RAS <-> LPS hint: ``shown`` (the same point / box read as RAS) lies in soft tissue of ``hu`` HU."""
    return (f"{shown} lies in soft tissue ({hu:.0f} HU): were Slicer's RAS coordinates given? lungai takes LPS "
            "(negate x and y)")


def ras_seed_hint(ct: sitk.Image, seed_lps):
    """The RAS <-> LPS hint for a seed point whose mask lies away from it (or that found no tumour): the same point
    with x and y negated lies in the CT, in soft tissue (median above :data:`SOFT_TISSUE_HU`, not above
    :data:`DENSE_HU`: bone is no soft tissue - QA: a seed in LUNG1-003's spine was told "the seed lies in soft tissue
    (522 HU)") and more than :data:`SURROUND_MM` from the seed (a seed near the LPS origin reads nearly alike both
    ways); None otherwise.  QA:
    LUNG1-002's GTV centre given as Slicer shows it (RAS 74.5,-16.4,-18.7: mediastinum, 147 HU, as LPS) got only
    "the tumour mask does not hold the seed point"; the seed in aerated lung has it in :func:`aerated_seed_note`.
    When the seed itself lies in soft tissue too, the hint names both readings and asks to negate only a seed copied
    from Slicer: the same GTV centre given correctly in LPS (tumour, 32 HU; the default model kept a region 31 mm
    away) was asked "were Slicer's RAS coordinates given? ... (negate x and y)", which sends the seed into the
    mediastinum, whose run asked the same question back."""
    if seed_lps is None:
        return None
    flipped = [-float(seed_lps[0]), -float(seed_lps[1]), float(seed_lps[2])]
    if np.hypot(2 * flipped[0], 2 * flipped[1]) <= SURROUND_MM:
        return None
    other = median_hu_near(ct, flipped)
    if other is None or not SOFT_TISSUE_HU < other <= DENSE_HU:
        return None
    own = median_hu_near(ct, seed_lps)
    if own is not None and SOFT_TISSUE_HU < own <= DENSE_HU:
        # both readings in soft tissue: the HU cannot tell a seed given in LPS from one copied from Slicer's RAS
        return (f"the seed lies in soft tissue ({own:.0f} HU) and the same point read as RAS "
                f"({_fmt_point(flipped)}) lies in soft tissue ({other:.0f} HU) too, so the CT cannot tell which reading "
                "was meant: negate x and y only if the seed was copied from Slicer's RAS display (lungai takes LPS); "
                "a seed given in LPS stays as it is")
    return _ras_question(f"the same point read as RAS ({_fmt_point(flipped)})", other)


def _voxel_reading(ct: sitk.Image, values, in_body, hu_of):
    """The numbers of a seed point / ROI (``values``) read as voxel indices (i, j, k) when that reading is worth
    naming: the numbers are whole ones on the CT's grid (:func:`_index_reading`), the reading lies more than
    :data:`SURROUND_MM` from the numbers read as mm (some point / corner), ``in_body(reading)`` and not in aerated lung
    (``hu_of(reading)`` above :data:`AERATED_HU`): (its LPS numbers, that HU); None otherwise."""
    v = [float(x) for x in values]
    lps = _index_reading(ct, v)
    if lps is None:
        return None
    flat = [c for p in lps for c in p]
    if max(np.linalg.norm(np.subtract(flat[i:i + 3], v[i:i + 3])) for i in range(0, len(v), 3)) <= SURROUND_MM:
        return None
    if not in_body(flat):
        return None
    hu = hu_of(flat)
    if hu is None or hu <= AERATED_HU:
        return None
    return lps, hu


def voxel_index_hint(ct: sitk.Image, seed_lps):
    """The voxel-index hint for a seed point in the body that found no tumour at it (or lies in aerated lung): its
    numbers are whole ones on the CT's grid (:func:`_index_reading`), and read as voxel indices (i, j, k) they lie in
    the body, more than :data:`SURROUND_MM` from the seed, not in aerated lung (median above :data:`AERATED_HU`):
    that reading's LPS numbers; None otherwise (:func:`_voxel_reading`; an ROI's: :func:`roi_voxel_index_hint`).  QA:
    LUNG1-003 with its origin at (0, 0, 0) (a NIfTI written without its geometry) and its GTV's voxel index given,
    ``--seed-point 305,253,60``: read as mm the point lies in the lung (-663 HU), the mask kept a 0.10 ml region 12 mm
    away, and no note said the numbers may be voxel indices (a seed
    given so outside the CT's extent or in the air is told: :func:`outside_image_fix`,
    :func:`check_seed_inside_body`)."""
    if seed_lps is None:
        return None
    reading = _voxel_reading(ct, seed_lps, lambda v: _in_body(ct, v), lambda v: median_hu_near(ct, v))
    if reading is None:
        return None
    lps, hu = reading
    return (f"the seed's numbers are whole and lie on the CT's voxel grid: if they are voxel indices (i, j, k), as "
            f"some viewers show them, the point in LPS mm is --seed-point={_fmt_option(lps)} ({hu:.0f} HU there); "
            "lungai takes LPS millimetres")


def roi_voxel_index_hint(ct: sitk.Image, roi_lps, outside: bool = False):
    """The voxel-index hint of an ROI (x0, y0, z0, x1, y1, z1) segmented as given: its numbers read as voxel indices
    (:func:`_voxel_reading`: whole numbers on the grid, a corner moved more than :data:`SURROUND_MM`) give a box
    reaching the body whose central third is not aerated lung - and either the ROI reaches outside the CT
    (``outside``: :func:`roi_outside_note` said so) or its own central third lies in lung / air (median below
    :data:`SUSPECT_HU`) while the voxel reading's is soft tissue (above :data:`SOFT_TISSUE_HU`): that reading's LPS
    numbers; None otherwise (an ROI so wholly outside the CT or the body is refused naming it:
    :func:`outside_image_fix`, :func:`check_roi_inside_body`).  QA: LUNG1-003 with its origin at (0, 0, 0) and its
    GTV's box in voxel indices, ``--roi 280,219,51,324,291,67``: read as mm the box's centre lies in the lung
    (-680 HU; as voxels 53 HU), 0.62 ml elsewhere was segmented without a word."""
    if roi_lps is None:
        return None
    p = [float(v) for v in roi_lps]
    reading = _voxel_reading(ct, p, lambda v: _roi_reaches_body(ct, v), lambda v: _central_hu(ct, v))
    if reading is None:
        return None
    lps, hu = reading
    if not outside:
        own = _central_hu(ct, p)
        if own is None or own >= SUSPECT_HU or hu <= SOFT_TISSUE_HU:
            return None
        why = f"the box's centre lies in lung / air ({own:.0f} HU) and "
    else:
        why = "the box reaches outside the CT and "
    return (f"{why}the ROI's numbers are whole and lie on the CT's voxel grid: if they are voxel indices (i, j, k), "
            f"as some viewers show them, the box in LPS mm is --roi={_fmt_option(lps)} (its centre {hu:.0f} HU); "
            "lungai takes LPS millimetres")


# What a note of where the seed point / ROI box lies (aerated_seed_note, dense_seed_note, far_seed_note) tells the user
# to do with it, worded for the one given (result.json's roi_mode, as :func:`reason_in_mode` words the review reasons).
# QA aeratednote64: lung2 with --seed-point=52.6,-125.9,-256.5 (aerated lung, -860 HU) was told "check the seed / ROI
# (LPS mm)" - a box the user never drew, while its review reason and action named the seed.
PLACED_FIX = {"seed": "move the seed onto the tumour", "roi": "draw the box round the tumour"}


def aerated_seed_note(ct: sitk.Image, seed_lps=None, roi_lps=None, ras_hint: bool = True):
    """A note when the seed point or the ROI lies in aerated lung (see :data:`AERATED_HU`), naming the RAS <-> LPS
    mix-up when the same point / box with x and y negated lies in soft tissue; None otherwise (also without a seed
    or ROI).  ``ras_hint`` False: numbers converted from a Slicer scene by lungai itself (the Lung AI Segmentation
    panel, the console API: ``scene_coordinates``), never in the wrong convention - no mix-up named, the note as
    when the point read as RAS is no soft tissue either."""
    if seed_lps is not None:
        hu = median_hu_near(ct, seed_lps)
        flipped = [-float(seed_lps[0]), -float(seed_lps[1]), float(seed_lps[2])]
        other = median_hu_near(ct, flipped)
        what, shown = "the seed lies", f"the same point read as RAS ({_fmt_point(flipped)})"
    elif roi_lps is not None:
        hu = _central_hu(ct, roi_lps)
        r = [float(v) for v in roi_lps]
        flipped = [-r[0], -r[1], r[2], -r[3], -r[4], r[5]]
        other = _central_hu(ct, flipped)
        what, shown = "the ROI's centre lies", f"the same box read as RAS ({_fmt_point(flipped)})"
    else:
        return None
    if hu is None or hu >= SUSPECT_HU:
        return None
    ras = ras_hint and other is not None and other > SOFT_TISSUE_HU
    if roi_lps is not None and not ras:      # a loose box around a small nodule has lung at its centre: only the
        return None                          # RAS mix-up is worth a note for a box
    if hu >= AERATED_HU:     # -800..-500: ground glass possible; only with a soft-tissue RAS point and no density bump
        if not ras or (seed_lps is not None and hu > median_hu_near(ct, seed_lps, SURROUND_MM)):
            return None
    note = f"{what} in aerated lung ({hu:.0f} HU), not on a tumour"
    if ras:
        return f"{note}; {_ras_question(shown, other)}"
    # (no "negate x and y": the point read as RAS was looked at and is no soft tissue either)
    return f"{note}: {PLACED_FIX['seed' if seed_lps is not None else 'roi']} (LPS mm)"


# A seed in bone, a calcification or contrast: the median HU within SEED_HU_RADIUS_MM of it above DENSE_HU adds a note
# and a review reason (never a refusal).  Measured: the real GTVs' voxels (LUNG1-002, LUNG1-003's three GTVs / nodes,
# lung1, lung2; 400 voxels each) lie at -88..149 HU by this median; bone at a vertebral body's centre at 312 HU
# (LUNG1-002) and 522 HU (LUNG1-003), cortical bone up to 2803 HU; of the 779 LIDC nodule centres 30 lie above 300 HU
# (27 with solid calcification, 27 rated benign) and none of the others above 264 HU.  Before, such a seed got "the
# seed lies in soft tissue (522 HU)" at most.
DENSE_HU = 300.0
DENSE_REASON = "the seed point / ROI lies in bone, a calcification or contrast"
# A seed far from the lungs (a whole CT, not a crop; the lungs found on a FAR_LUNGS_SPACING grid, about 1 s): the
# nearest lung voxel more than FAR_FROM_LUNGS_MM from the seed adds a note and a review reason (never a refusal).
# Measured on the lungs found so: real GTV voxels lie up to 56 mm from the lungs (LUNG1-003's gtv-2, a node above the
# lung apex; LUNG1-002's 360 ml GTV abutting the mediastinum up to 46 mm, LUNG1-003's mediastinal nodes up to 35 mm,
# lung2's GTV 23 mm), the heart's centre 56-64 mm - none is noted; a seed in the arm lies 145 mm away, in the back
# muscles below the lungs 111 mm (LUNG1-003 / LUNG1-002), where before nothing said the seed was off the chest.
FAR_FROM_LUNGS_MM = 75.0
GTV_FROM_LUNGS_MM = 56.0        # the farthest real GTV voxel measured (said in the note)
FAR_LUNGS_SPACING = 5.0
FAR_REASON = "the seed point / ROI lies far from the lungs"
# The reasons of where the seed point / ROI box lies (and what its numbers may be), worded in a result for the one the
# user gave (:func:`reason_in_mode`; QA segnotes64: an ROI box in the vertebral body was flagged "the seed point / ROI
# lies in bone ...").  The constants, worded for either, are their keys (lungai.seg.infer.REVIEW_ACTIONS; a result's
# reason reads back as its key by :func:`reason_key`).
PLACED = "the seed point / ROI"
PLACED_WORDS = {"seed": "the seed point", "roi": "the ROI box"}
PLACED_REASONS = (AERATED_REASON, VOXEL_INDEX_REASON, DENSE_REASON, FAR_REASON)


def reason_in_mode(reason: str, mode) -> str:
    """``reason`` as a result of ``mode`` (result.json's ``roi_mode``) says it: one of :data:`PLACED_REASONS` names the
    seed point or the ROI box given; any other reason, or another mode, as it is."""
    if reason in PLACED_REASONS and mode in PLACED_WORDS:
        return reason.replace(PLACED, PLACED_WORDS[mode], 1)
    return reason


_REASON_KEYS = {reason_in_mode(r, m): r for r in PLACED_REASONS for m in PLACED_WORDS}


def reason_key(reason: str) -> str:
    """The constant a result's review reason is worded from (:func:`reason_in_mode`'s inverse): ``reason`` itself for
    any other."""
    return _REASON_KEYS.get(reason, reason)


def dense_seed_note(ct: sitk.Image, seed_lps=None, roi_lps=None):
    """A note when the seed lies in bone, a calcification or contrast (see :data:`DENSE_HU`) - or, given an ROI
    instead, when the box is mostly bone: the median of its central third (:func:`_central_hu`, the rule
    :func:`aerated_seed_note` reads a box by) above :data:`DENSE_HU`; None otherwise.  Measured for the ROI: boxes
    round the real GTVs / nodes (LUNG1-002, LUNG1-003, lung1, lung2; 0-20 mm margins) have their central third at
    -790..81 HU; a 20 / 30 mm box on LUNG1-003's vertebral body 449 / 301 HU (looser boxes there fall below 300 as
    they take in the soft tissue round the spine: not noted)."""
    if seed_lps is not None:
        hu, what = median_hu_near(ct, seed_lps), "the seed lies"
        within, move = f"within {SEED_HU_RADIUS_MM:.0f} mm", PLACED_FIX["seed"]
    elif roi_lps is not None:
        hu, what = _central_hu(ct, roi_lps), "the ROI box lies mostly"
        within, move = "at the box's central third", PLACED_FIX["roi"]
    else:
        return None
    if hu is None or hu <= DENSE_HU:
        return None
    return (f"{what} in bone, a calcification or contrast ({hu:.0f} HU {within}; the lung tumours measured lie below "
            f"150 HU), not on a soft-tissue tumour: {move} (a calcified nodule is usually benign)")


def seed_to_lungs_mm(ct: sitk.Image, seed_lps):
    """Distance (mm) from the seed to the nearest voxel of the lungs found on a :data:`FAR_LUNGS_SPACING` grid; None
    without a seed, on a crop (:func:`is_crop`: it holds no whole lungs) or when no lungs are found (a thin slab above
    or below them, an image that is no CT in HU)."""
    if seed_lps is None or is_crop(ct):
        return None
    try:
        coarse, lung_img = find_lungs(ct, FAR_LUNGS_SPACING)
    except InputError:          # not a CT in HU (segment_tumour's own checks say so): no lungs to measure from
        return None
    kji = np.argwhere(sitk.GetArrayViewFromImage(lung_img))
    if not kji.size:
        return None
    direction = np.array(coarse.GetDirection(), float).reshape(3, 3)
    pts = np.array(coarse.GetOrigin()) + (kji[:, ::-1] * np.array(coarse.GetSpacing())) @ direction.T
    return float(np.sqrt(((pts - np.asarray(seed_lps, float)) ** 2).sum(1)).min())


def roi_centre(roi_lps):
    """The centre (LPS mm) of an ROI given as two opposite corners x0, y0, z0, x1, y1, z1."""
    r = np.asarray([float(v) for v in roi_lps])
    return tuple((r[:3] + r[3:]) / 2)


def far_seed_note(ct: sitk.Image, seed_lps=None, roi_lps=None):
    """A note when the seed - or, given an ROI instead, the box's centre - lies more than :data:`FAR_FROM_LUNGS_MM`
    from the lungs (:func:`seed_to_lungs_mm`); None otherwise.  Measured for the ROI: the centres of boxes round the
    real GTVs / nodes (LUNG1-002, LUNG1-003, lung1, lung2) lie 2-41 mm from the lungs; a box round the seed in
    LUNG1-003's arm 145 mm, which before got no word."""
    if seed_lps is None and roi_lps is not None:
        point, what, mode = roi_centre(roi_lps), "the ROI box's centre lies", "roi"
    else:
        point, what, mode = seed_lps, "the seed lies", "seed"
    mm = seed_to_lungs_mm(ct, point)
    if mm is None or mm <= FAR_FROM_LUNGS_MM:
        return None
    return (f"{what} {mm:.0f} mm from the nearest lung (lung tumours and the nodes measured lie within "
            f"{GTV_FROM_LUNGS_MM:.0f} mm of it): it is most likely not on a lung tumour (the models learned lung "
            f"tumours) - {PLACED_FIX[mode]} {LPS_MM_RAS}")


def box_from_seed(ct: sitk.Image, seed_lps, box_mm: float) -> Box:
    """A cube of ``box_mm`` round the seed, built in index space: the seed's continuous voxel index +- half of
    ``box_mm`` / spacing along each voxel axis (then rounded out to whole voxels, :func:`_clip_box`).  On a CT
    whose axes follow LPS (identity or an axis permutation / flip) that is the LPS-aligned cube; on an oblique
    (gantry-tilted) CT the cube follows the CT's own axes.  The index-space bounding box of an LPS-aligned cube
    (:func:`box_from_physical`) grew there by up to cos + sin of the tilt per tilted axis: a 15 degree tilt about x
    gave a 61 x 74 x 85 mm first box for a 61 x 62 x 70 mm one on the same voxels, and another result (2.34 ml,
    confidence 0.64 against 1.41 ml, 0.37 on lung1).  The growing box's larger seed boxes use it too."""
    check_seed_inside_body(ct, seed_lps)
    centre = _index_of(ct, seed_lps)
    half = (box_mm / 2.0) / np.array(ct.GetSpacing())
    return _clip_box(ct, centre - half, centre + half + 1, "seed")


def find_lungs(ct: sitk.Image, spacing_mm: float, progress=None) -> tuple:
    """(the CT resampled to no finer than ``spacing_mm`` per axis, its lungs' mask there - :mod:`lungai.lungs`).
    ``progress``: the lung segmentation's steps (``LUNG_STEPS``) are reported to it."""
    from lungai.lungs import segment_lungs

    sp = [max(s, spacing_mm) for s in ct.GetSpacing()]
    coarse = resample_to_spacing(ct, sp, sitk.sitkLinear, -1024.0)
    return coarse, segment_lungs(coarse, progress=progress).labels > 0


# what the bar says while automatic mode finds its lungs' box (box_from_lungs): the lung segmentation's own steps
# counted after it
LUNGS_BOX_STEP = "automatic mode: finding the lungs"
# then, after the lung segmentation's last step, the lungs' box (their first and last voxels) and the region round them
# (a dilation by the margin) - said as they start, the region with its seconds while it runs
# (:func:`lungai.progress.waiting`): 1.4-2 s after "checking the lungs 2/2" with nothing said on LUNG1-003 (QA
# lungsfollow68)
LUNGS_BOX = "the lungs' box"
LUNGS_REGION = "the region {margin:g} mm round the lungs"


def box_from_lungs(ct: sitk.Image, margin_mm: float, progress=None, step: str = LUNGS_BOX_STEP) -> Box:
    """Bounding box of both lungs (found on a coarser copy of the CT) plus a margin; ``region`` = lungs +
    margin (where a tumour may be), ``lungs`` = the lungs themselves.

    Built in index space: the lung mask's first and last voxel indices (the coarse copy shares the CT's direction,
    so its index maps onto the CT's index axis by axis) +- (margin + the coarse spacing) / spacing per voxel axis,
    as :func:`box_from_seed`.  On a CT whose axes follow LPS that is the box of the LPS-aligned corners, as before;
    on an oblique (gantry-tilted) CT the box follows the CT's own axes - the index-space bounding box of the
    8 LPS corners (:func:`box_from_physical`) grew there by up to cos + sin of the tilt per tilted axis.

    ``progress``: the lung segmentation's steps shown as message-only updates (:data:`LUNGS_BOX_STEP` "3/7: airways
    removed"; the caller's steps unchanged) - QA seg67 on LUNG1-003: the bar stood 11.5 s on the step before's
    message ("read") while the lungs were found -, then :data:`LUNGS_BOX` and :data:`LUNGS_REGION` (with its seconds
    while it runs).  ``step``: the prefix said instead (train-seg: "finding the lungs",
    no automatic mode there)."""
    from lungai.lungs import LUNG_STEPS
    from lungai.progress import SubProgress, waiting

    sub = SubProgress(progress, step, total=LUNG_STEPS) if progress is not None else None
    coarse, lung_img = find_lungs(ct, LUNG_FIND_SPACING, sub)
    if sub is not None:
        sub.update(0, LUNGS_BOX)
    lungs = sitk.GetArrayViewFromImage(lung_img)
    zz, yy, xx = np.nonzero(lungs)
    if zz.size == 0:
        raise InputError("no lungs found in the CT", "give a chest CT covering the lungs, or a --roi / --seed-point")
    ends = []
    for k, j, i in ((zz.min(), yy.min(), xx.min()), (zz.max(), yy.max(), xx.max())):
        ends.append(_index_of(ct, coarse.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k)))))
    m = (margin_mm + LUNG_FIND_SPACING) / np.array(ct.GetSpacing())
    box = _clip_box(ct, np.minimum(*ends) - m, np.maximum(*ends) + 1 + m, "lungs")
    radius = [max(1, int(round(margin_mm / s))) for s in coarse.GetSpacing()]
    box.lungs = sitk.Cast(lung_img, sitk.sitkUInt8)
    # lungs + margin
    box.region = waiting(sub, LUNGS_REGION.format(margin=margin_mm), sitk.BinaryDilate, box.lungs, radius)
    return box


def mask_on(mask, grid: sitk.Image):
    """A sitk mask (any grid) resampled (nearest) onto ``grid`` as a bool array; None stays None."""
    if mask is None:
        return None
    r = sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayViewFromImage(r) > 0


def region_on(box: Box, grid: sitk.Image):
    """The box's allowed region resampled (nearest) onto ``grid`` as a bool array, or None."""
    return mask_on(box.region, grid)


def crop(img: sitk.Image, box: Box) -> sitk.Image:
    return sitk.RegionOfInterest(img, [int(v) for v in box.size], [int(v) for v in box.lo])


def model_grid(img: sitk.Image, spacing) -> tuple:
    """(size, origin) of a grid with ``spacing`` covering the same physical extent as ``img``."""
    old = np.array(img.GetSpacing())
    new = np.array(spacing, dtype=float)
    extent = old * np.array(img.GetSize())
    size = np.maximum(1, np.round(extent / new)).astype(int)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    corner = np.array(img.GetOrigin()) - direction @ (old / 2)
    origin = corner + direction @ ((extent - new * size) / 2 + new / 2)   # same centre as the input
    return [int(v) for v in size], [float(v) for v in origin]


def resample_to_spacing(img: sitk.Image, spacing, interpolator=sitk.sitkLinear, default: float = 0.0) -> sitk.Image:
    size, origin = model_grid(img, spacing)
    return sitk.Resample(img, size, sitk.Transform(), interpolator, origin, [float(s) for s in spacing],
                         img.GetDirection(), float(default), sitk.sitkFloat32)


def resample_like(img: sitk.Image, reference: sitk.Image, interpolator=sitk.sitkLinear, default=0.0) -> sitk.Image:
    return sitk.Resample(img, reference, sitk.Transform(), interpolator, float(default), sitk.sitkFloat32)


def window(arr: np.ndarray, hu_window) -> np.ndarray:
    lo, hi = hu_window
    return ((np.clip(arr.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def to_model(img_crop: sitk.Image, cfg) -> tuple:
    """(windowed array (z, y, x) float32 on the model grid, the model-grid image)."""
    model_img = resample_to_spacing(sitk.Cast(img_crop, sitk.sitkFloat32), cfg.spacing, sitk.sitkLinear, -1024.0)
    return window(sitk.GetArrayViewFromImage(model_img), cfg.hu_window), model_img


def mask_to_model(mask_crop: sitk.Image, model_img: sitk.Image) -> np.ndarray:
    """Binary mask on the model grid (linear interpolation of the 0/1 mask, >= 0.5)."""
    m = resample_like(sitk.Cast(mask_crop > 0, sitk.sitkFloat32), model_img)
    return (sitk.GetArrayViewFromImage(m) >= 0.5).astype(np.uint8)


def to_input(arr_model: np.ndarray, model_img: sitk.Image, crop_img: sitk.Image, out: np.ndarray = None) -> np.ndarray:
    """A (z, y, x) float map on the model grid resampled (linear) onto the crop's grid (into ``out``); 0 where the
    crop's voxels lie more than half a model voxel beyond the model grid's outer samples (:func:`resample_like`)."""
    src = sitk.GetImageFromArray(arr_model.astype(np.float32))
    src.CopyInformation(model_img)
    # 0 beyond the model grid's outer samples (no extrapolation): the crop's outer voxels there get no tumour.  A
    # tumour the scan ends through is reported cut on the model grid instead (:func:`cut_on_model_grid`) -
    # extrapolating copied the value one sample in onto thin-sliced crops' empty outer slices (QA: LIDC)
    res = resample_like(src, crop_img)
    if out is None:
        return sitk.GetArrayFromImage(res)
    out[...] = sitk.GetArrayViewFromImage(res)
    return out


def paste(full_img: sitk.Image, box: Box, arr_crop: np.ndarray, dtype=np.float32) -> np.ndarray:
    """An array of the full input's size, zero outside the box, ``arr_crop`` inside."""
    out = np.zeros(full_img.GetSize()[::-1], dtype=dtype)
    out[box.lo[2]:box.hi[2], box.lo[1]:box.hi[1], box.lo[0]:box.hi[0]] = arr_crop
    return out


def paste_image(full_img: sitk.Image, box: Box, arr_crop: np.ndarray, dtype=np.float32) -> sitk.Image:
    """:func:`paste` as an image on ``full_img``'s grid, without a full-size numpy array copied into it: a zero image
    of the input's size, ``arr_crop`` pasted into it in place (QA: ``lungai segment``'s three float32 maps - each a
    full-grid numpy array, then ``GetImageFromArray``'s copy of it - on a 512 x 512 x 333 CT).  The same voxels as
    ``GetImageFromArray(paste(...))``."""
    crop = sitk.GetImageFromArray(np.ascontiguousarray(arr_crop, dtype=dtype))     # the box's size only
    img = sitk.Image(full_img.GetSize(), crop.GetPixelID())                         # zeros
    img.CopyInformation(full_img)
    img[tuple(slice(int(l), int(h)) for l, h in zip(box.lo, box.hi))] = crop         # PasteImageFilter, in place
    return img
