"""Checks that an image is a usable 3D CT: voxel spacing in mm, intensities in Hounsfield units."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError, agree, counted


def check_3d(img: sitk.Image, source: str) -> None:
    """A single-channel 3D volume of at least 2 voxels along each axis; a 4D image (several volumes: the phases
    of a 4D-CT, a time series) is said as such."""
    size = img.GetSize()
    if img.GetDimension() == 4 and size[3] > 1 and min(size[:3]) >= 2:
        raise InputError(
            f"{source} holds {size[3]} volumes of {size[0]} x {size[1]} x {size[2]} voxels (a 4D image, e.g. the "
            "respiratory phases of a 4D-CT), not one 3D CT",
            "pick one volume and save it as a 3D image: in SimpleITK img[:, :, :, 0] (the first; choose the "
            "phase you want, e.g. end-exhale or the average), or load the 4D-CT in 3D Slicer (Sequences) and "
            "save the chosen phase")
    if img.GetDimension() != 3 or min(img.GetSize()) < 2:
        raise InputError(
            f"{source} is not a 3D volume (size {img.GetSize()})",
            "give the whole CT series (a folder of DICOM slices or one 3D NIfTI/NRRD/MHA file), "
            "not a single slice or a 2D image")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{source} has {img.GetNumberOfComponentsPerPixel()} components per voxel",
                         "give a single-channel (greyscale) CT, not an RGB or vector image")


# Voxel spacing of a CT in mm: clinical CTs have 0.3-1 mm pixels and 0.5-10 mm slices (every image of the project's
# real data: 0.45-5 mm).  Below CT_SPACING_MM[0] the header is almost surely in cm (0.07 "mm") or m; above
# CT_SPACING_MM[1] it is not a usable CT grid (a wrong unit or a broken slice spacing).
CT_SPACING_MM = (0.2, 20.0)


def check_ct(img: sitk.Image, source: str) -> None:
    """The one check of a CT before any computation: voxel spacing in mm and intensities in HU."""
    check_ct_spacing(img, source)
    check_ct_intensities(img, source)


def check_ct_spacing(img: sitk.Image, source: str) -> None:
    """A CT's voxel spacing must be plausible in millimetres (:data:`CT_SPACING_MM`): a header in cm or m would
    make every volume, distance and seed point wrong by a factor 10-1000."""
    spacing = img.GetSpacing()
    lo, hi = CT_SPACING_MM
    if lo <= min(spacing) and max(spacing) <= hi:
        return
    shown = " x ".join(f"{s:.4g}" for s in spacing)
    cause = ("its header is probably in cm or m, not mm (a CT voxel is 0.3-10 mm)" if min(spacing) < lo else
             "a CT voxel is 0.3-10 mm: the header's units or slice spacing are wrong")
    raise InputError(f"{source} has voxel spacing {shown} mm, outside {lo:g}-{hi:g} mm: {cause}",
                     "write the image with spacing and origin in mm (e.g. both x 10 for a header in cm), or re-export "
                     "it from the scanner / PACS; every lungai input is in mm")


# Padding outside a CT's field of view (-2000, -3024, -32768 ...) is no tissue: below PADDING_HU (air is about
# -1000 HU, its noise rarely reaches -1100) values are padding, as is a minimum value below -1000 when it is a
# plateau (> PLATEAU_FRACTION of the voxels) with a gap of PLATEAU_GAP above it (no value within it: e.g. stored
# values padded with -1024 whose air sits near 0; in HU, air's noise fills the gap above a -1024 padding).  A
# minimum at -1000 or above is never padding: a noise-free crop's lung plateau is air, not padding.  The intensity check looks at the voxels inside the field of view only,
# or a CT not in HU with padding over > 1 % of the voxels would pass as "holding air".
PADDING_HU = -1100.0
PLATEAU_FRACTION = 0.005
PLATEAU_GAP = 300.0
# Padding is a plateau: one value, or a few (PADDING_VALUES, e.g. -2000 outside the reconstruction circle and -3024
# beyond the table), with most of the voxels below PADDING_HU.  A broad spread of values below PADDING_HU over more
# than SPREAD_FRACTION of the field of view is no padding but tissue shifted down: a CT stored at HU - 1024 (the
# rescale intercept applied twice) has its air near -2048, lung near -1900 and fat near -1100 (QA on LUNG1-003:
# 51 % of the voxels below -1100 off the three most common values; real CTs in HU: 0 %).
PADDING_VALUES = 3
SPREAD_FRACTION = 0.10


def below_padding_spread(values: np.ndarray) -> float:
    """Share of ``values`` (flattened) below :data:`PADDING_HU` that is no plateau: not one of its
    :data:`PADDING_VALUES` most common values there."""
    return _spread_and_soft_tissue(values)[0]


SOFT_TISSUE_SHARE = 0.05     # a CT in HU: muscle / organs / blood (-150..150 HU) are a large share of the voxels


def _spread_and_soft_tissue(values: np.ndarray) -> tuple[float, float]:
    """(:func:`below_padding_spread`, the share of the values at soft tissue, -150..150).  A CT at HU - 1024 has a
    wide spread below :data:`PADDING_HU` (air, lung, fat shifted) and its soft tissue near -1000, none at 0..60; a
    CT in HU whose padding was smeared by resampling (B-spline in float: thousands of values near -2048 / -3024) or
    whose air is noisy has a spread but its soft tissue where it belongs."""
    v = values.ravel()
    if not v.size:
        return 0.0, 0.0
    sub = v[v <= PADDING_HU]
    soft = float(np.count_nonzero((v >= -150) & (v <= 150))) / v.size
    if not sub.size:
        return 0.0, soft
    counts = np.unique(sub, return_counts=True)[1]
    return float(sub.size - np.sort(counts)[::-1][:PADDING_VALUES].sum()) / v.size, soft


def padding_mask(values: np.ndarray) -> np.ndarray:
    """Which voxels of a CT in HU (an array of any shape; a boolean array of its shape) are padding outside the
    scanner's field of view: at or below :data:`PADDING_HU`, and the minimum of the others when it is a plateau below
    -1000 (over > :data:`PLATEAU_FRACTION` of them, nothing within :data:`PLATEAU_GAP` above it).  The one rule of
    what is padding: :func:`without_padding` (the intensity check), ``lungai radiomics`` (padding voxels left out of
    every segment, :func:`lungai.radiomics.extract.extract`)."""
    v = np.asarray(values)
    pad = ~(v > PADDING_HU)        # NaN too (none in a checked CT: check_finite)
    rest = v[~pad]
    if rest.size:
        lo = rest.min()
        if lo < -1000:
            at_lo = rest == lo
            if at_lo.mean() > PLATEAU_FRACTION and not np.any((rest > lo) & (rest <= lo + PLATEAU_GAP)):
                pad |= v == lo
    return pad


def reaching_border(padding: np.ndarray) -> np.ndarray:
    """The padding voxels ``padding`` (a boolean 3D array [z, y, x], :func:`padding_mask`) connected, within their
    slice (8-connected in-plane), to the slice's border: the scanner's padding outside the reconstruction circle fills
    the corners of every slice it is in, while a value at or below :data:`PADDING_HU` inside the body (an
    interpolating resampling's overshoot at the -1024 air floor: B-spline, Lanczos; noise) is an isolated voxel or a
    few, no padding.  What ``lungai radiomics`` leaves out of the segments
    (:func:`lungai.radiomics.extract.without_padding_voxels`)."""
    from scipy import ndimage

    if padding.ndim != 3 or not padding.any():
        return padding
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True                      # in-plane only: each slice on its own
    lab, n = ndimage.label(padding, structure)
    border = np.unique(np.concatenate([lab[:, 0, :].ravel(), lab[:, -1, :].ravel(),
                                       lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    lut = np.zeros(n + 1, bool)
    lut[border[border > 0]] = True
    return lut[lab]


def near_padding(padding: np.ndarray) -> np.ndarray:
    """The padding voxels ``padding`` (a boolean 3D array, :func:`padding_mask`) and their 26 neighbours: a voxel next
    to the padding is blended with it by any smoothing or interpolation (``lungai lungs``' smoothing, the lung
    segments' resampling in ``lungai radiomics``), so it is left out with it."""
    from scipy import ndimage

    return ndimage.binary_dilation(padding, np.ones((3, 3, 3), bool)) if padding.any() else padding


# A resampler's fill value (sitk.Resample's defaultPixelValue, scipy's cval) outside the input's extent: one exact value,
# no noise, over a region reaching the volume's faces.  At -1024 (the fill docs/dicom.md gives for a gantry-tilted
# series) it is above PADDING_HU, so no padding by value alone: the wedge a tilted / oblique resampling leaves above the
# original top face took the trachea cut there, and through it the lungs, for outside air (QA: LUNG1-003 tilted 10 or
# 25 degrees about x, "no lungs found").  The fill is the value most common on the six faces when it covers at least
# FILL_FACE_SHARE of them (the air of a CT's noise spreads over tens of values: at most 5 % each on the real CTs) and
# lies at or below FILL_MAX_HU (air or below: a fill at 0 HU opens no airway), kept where it is a solid plateau (the
# voxels of a 3 x 3 x 3 block all of that value, with the blocks' own voxels: a binary opening) whose 6-connected region
# touching a face holds at least FILL_MIN_VOXELS.  A CT clipped at its fill value (a windowed export, a scanner's clip
# floor at -1000) has about half of its noisy air on exactly that value: those voxels percolate through the trachea
# into 6-connected regions touching the top face (QA: LUNG1-003 clipped at -1000 lost its airway removal, right lung
# 2242.4 ml with trachea and bronchi for 2148.8), but a 3 x 3 x 3 block of them all on the value is rare; the wedge of a
# resampling, and the -1024 outside a reconstruction circle, are solid (docs/lungs.md gives the figures).
FILL_FACE_SHARE = 0.10
FILL_MAX_HU = -1000.0
FILL_MIN_VOXELS = 1000


# voxels per chunk that region_sizes counts at a time
REGION_SIZES_CHUNK = 1 << 20


def region_sizes(lab: np.ndarray, n: int | None = None) -> np.ndarray:
    """Voxels per label of a label array (``ndimage.label``'s int32 output; labels 0 ... ``n``, ``n`` found when not
    given): ``np.bincount(lab.ravel(), minlength=n + 1)``, counted ``REGION_SIZES_CHUNK`` voxels at a time.  One
    ``np.bincount`` over the whole array casts it to int64 first - a copy of 8 bytes a voxel on top of the labels' 4
    (1.2 GB for a 512 x 512 x 551 CT at 0.6 mm slices, at the peak of ``lungai lungs``)."""
    flat = lab.reshape(-1)                          # a view of a contiguous array
    counts = np.zeros((0 if n is None else int(n)) + 1, np.int64)
    for start in range(0, flat.size, REGION_SIZES_CHUNK):
        part = np.bincount(flat[start:start + REGION_SIZES_CHUNK], minlength=counts.size)
        if part.size > counts.size:
            counts = np.concatenate([counts, np.zeros(part.size - counts.size, np.int64)])
        counts += part
    return counts


def _cube_step(mask: np.ndarray, erode: bool) -> np.ndarray:
    """``mask`` (3D boolean) eroded (``erode``) or dilated by a 3 x 3 x 3 cube, one axis after the other (a fraction of
    ndimage's cost); outside the volume counts as in the mask when eroding, so that a plateau at a face stays whole."""
    out = mask.copy()
    for axis in range(3):
        prev = out.copy()
        lo = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        hi = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        if erode:
            out[lo] &= prev[hi]
            out[hi] &= prev[lo]
        else:
            out[lo] |= prev[hi]
            out[hi] |= prev[lo]
    return out


def _cube_opening(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` (3D boolean) in a 3 x 3 x 3 block wholly in it: its binary opening by that cube."""
    return _cube_step(_cube_step(mask, True), False)


def constant_fill(hu: np.ndarray) -> np.ndarray:
    """Which voxels of a 3D CT in HU ([z, y, x]) are a resampler's constant fill touching the volume's faces
    (:data:`FILL_FACE_SHARE`): padding like :func:`padding_mask`'s, whatever its value; a solid plateau of it, not
    noisy air clipped at that value.  All False when there is none."""
    from scipy import ndimage

    out = np.zeros(hu.shape, bool)
    if hu.ndim != 3 or min(hu.shape) < 2:
        return out
    faces = np.concatenate([hu[0].ravel(), hu[-1].ravel(), hu[:, 0].ravel(), hu[:, -1].ravel(),
                            hu[:, :, 0].ravel(), hu[:, :, -1].ravel()])
    values, counts = np.unique(faces, return_counts=True)
    top = int(np.argmax(counts))
    fill = values[top]
    if counts[top] < FILL_FACE_SHARE * faces.size or not fill <= FILL_MAX_HU:
        return out
    lab, n = ndimage.label(_cube_opening(hu == fill))
    size = region_sizes(lab, n)
    touching = np.unique(np.concatenate([lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(), lab[:, -1].ravel(),
                                         lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    lut = np.zeros(n + 1, bool)
    lut[touching] = True
    lut &= size >= FILL_MIN_VOXELS
    lut[0] = False
    return lut[lab]


def without_padding(values: np.ndarray) -> np.ndarray:
    """The values of a CT (any shape, flattened) without its padding (:func:`padding_mask`)."""
    v = values.ravel()
    return v[~padding_mask(v)]


NONFINITE_FIX = ("replace them with a value in HU - e.g. -1024 (air) where they lie outside the reconstruction "
                 "circle (SimpleITK / numpy: arr[~np.isfinite(arr)] = -1024) - or re-export the CT from the scanner "
                 "/ PACS; lungai does not guess what they stand for")


def check_finite(img: sitk.Image, source: str, what: str = "image", fix: str = NONFINITE_FIX) -> None:
    """Every voxel of a float image must be a number: NaN / infinite values (a resampling tool's fill value
    outside the field of view, a broken conversion) are an :class:`InputError` counting them and saying where (the
    index ranges they span).  Integer images pass at no cost; a float one costs one pass (~30 ms for
    512 x 512 x 130 voxels).  A NIfTI's NaN, which ITK reads as 0, are put back by :func:`lungai.io.read.read_image`."""
    if img.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64, sitk.sitkVectorFloat32, sitk.sitkVectorFloat64):
        return
    arr = sitk.GetArrayViewFromImage(img)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    if bad.ndim > img.GetDimension():               # vector voxels: a voxel with any bad component
        bad = bad.any(axis=-1)
    nan = int(np.count_nonzero(np.isnan(arr)))
    n = int(np.count_nonzero(bad))
    where = np.nonzero(bad)[::-1]                   # (i, j, k): ITK's index order
    spans = ", ".join(f"{axis} {int(w.min())}" + (f"-{int(w.max())}" if w.max() > w.min() else "")
                      for axis, w in zip("ijk", where))
    point = img.TransformIndexToPhysicalPoint([int(w[0]) for w in where])
    kinds = " and ".join(k for k, c in ((f"{nan} NaN", nan), (f"{n - nan} infinite", n - nan)) if c)
    raise InputError(f"{source} holds {n} of {bad.size} voxels that are not numbers ({kinds}) at voxel index "
                     f"{spans} (the first at {', '.join(f'{c:.1f}' for c in point)} mm, LPS), so it is no usable "
                     f"{what}", fix)


# A CT stored as HU + 1024 (unsigned 16-bit, the rescale intercept -1024 left off): air near 0 (1st percentile in
# HU_PLUS_1024_P01) and soft tissue (SOFT_TISSUE_SHARE of the voxels) at 874..1174
HU_PLUS_1024_P01 = (0.0, 100.0)
# ... or a crop inside the lung (a nodule's: little soft tissue - QA lungsfollow68, an LIDC crop + 1024, 1st percentile
# 57, median 144, was told "an MR or a CT without rescale slope/intercept" with a fix naming DICOM only): its 1st
# percentile at air or lung + 1024 (HU_PLUS_1024_LUNG_P01: -1024..-700 HU), at least HU_PLUS_1024_LUNG_SHARE of the
# voxels at lung + 1024 (-1000..-500 HU) and at least HU_PLUS_1024_LUNG_SOFT_SHARE at lung or soft tissue + 1024
# (-150..150 HU): a CT's values cluster there, little lies between (partial volume) or above (bone).  Of the 779 LIDC
# crops + 1024 in the shared data 777 are so told (the other two: under 70 % of lung or soft tissue); an image spread
# evenly over 300..1500 (an MR) holds 44 % there and is not.  A CT in HU never reaches this check (its 1st percentile
# lies below -500).
HU_PLUS_1024_LUNG_P01 = (0.0, 324.0)
HU_PLUS_1024_LUNG_SHARE = 0.15
HU_PLUS_1024_LUNG_SOFT_SHARE = 0.6


def _looks_hu_plus_1024(inside: np.ndarray, p01: float) -> bool:
    """Whether the values ``inside`` the field of view (their 1st percentile ``p01``) look like a CT stored as HU +
    1024: a whole chest's (:data:`HU_PLUS_1024_P01`, soft tissue) or a crop inside the lung's
    (:data:`HU_PLUS_1024_LUNG_P01`, lung and soft tissue)."""
    hu = inside - 1024.0
    if HU_PLUS_1024_P01[0] <= p01 <= HU_PLUS_1024_P01[1] and _spread_and_soft_tissue(hu)[1] >= SOFT_TISSUE_SHARE:
        return True
    if not HU_PLUS_1024_LUNG_P01[0] <= p01 <= HU_PLUS_1024_LUNG_P01[1] or not hu.size:
        return False
    lung = float(np.count_nonzero((hu >= -1000) & (hu <= -500))) / hu.size
    soft = float(np.count_nonzero((hu >= -150) & (hu <= 150))) / hu.size
    return lung >= HU_PLUS_1024_LUNG_SHARE and lung + soft >= HU_PLUS_1024_LUNG_SOFT_SHARE


def check_ct_intensities(img: sitk.Image, source: str) -> None:
    """A chest CT in HU holds numbers only (:func:`check_finite`), air (about -1000) and nothing far beyond the HU
    range; the last two are judged on the voxels inside the field of view (:func:`without_padding`)."""
    check_finite(img, source, "CT")
    arr = sitk.GetArrayViewFromImage(img)
    step = max(1, int(round((arr.size / 2e6) ** (1 / 3))))
    sample = np.asarray(arr[::step, ::step, ::step], dtype=np.float32)
    spread, soft = _spread_and_soft_tissue(sample)
    if spread > SPREAD_FRACTION and soft < SOFT_TISSUE_SHARE:
        p01, p50 = np.percentile(sample, [1, 50])
        raise InputError(
            f"{source} does not look like a CT in Hounsfield units ({100 * spread:.0f} % of the voxels spread over "
            f"values below {PADDING_HU:.0f}, which is no padding plateau: 1st percentile {p01:.0f}, median {p50:.0f}; "
            "air, lung and fat lie about 1024 below their HU - rescale intercept applied twice?)",
            "give a chest CT in HU: apply RescaleSlope/RescaleIntercept once (add 1024 to an image stored at HU - 1024)")
    inside = without_padding(sample)
    if inside.size == 0:
        raise InputError(f"{source} holds only padding values (all <= {PADDING_HU:.0f} or one constant value)",
                         "give a chest CT in HU: for DICOM keep RescaleSlope/RescaleIntercept")
    p01, p50, p999 = np.percentile(inside, [1, 50, 99.9])
    padded = f"; {100 * (1 - inside.size / sample.size):.0f} % padding left out" if inside.size < sample.size else ""
    if p01 > -500:
        shifted = _looks_hu_plus_1024(inside, p01)
        hint = ("it looks like a CT stored as HU + 1024 (air and lung at 0-500 instead of -1024..-500: the rescale "
                "intercept -1024 not applied), or an MR" if shifted else
                "it looks like an MR or a CT without rescale slope/intercept" if p01 >= 0 else
                "it has no air, which every chest CT contains")
        raise InputError(
            f"{source} does not look like a CT in Hounsfield units (inside the field of view: 1st percentile "
            f"{p01:.0f}, median {p50:.0f}{padded}; {hint})",
            "give a chest CT in HU: " + ("subtract 1024 from a CT stored as HU + 1024 (e.g. unsigned 16-bit; "
                                         "SimpleITK: sitk.Cast(img, sitk.sitkInt16) - 1024, then write it again); " if
                                         shifted else "")
            + "for DICOM keep RescaleSlope/RescaleIntercept; MR images cannot be used")
    if p999 > 32000:
        raise InputError(
            f"{source} has intensities outside the Hounsfield range (1st pct {p01:.0f}, 99.9th pct {p999:.0f})",
            "convert the image to HU (value * RescaleSlope + RescaleIntercept) before using it; if those values "
            "are the scanner's padding outside the field of view (e.g. 63536 stored), a DICOM series names it in "
            "PixelPaddingValue (0028,0120) / PixelPaddingRangeLimit (0028,0121) and lungai reads it as padding - set "
            "them, or in a NIfTI/NRRD set those voxels to -3024")


# Slice positions of one series: neighbours closer than SLICE_POSITION_TOL_MM are the same
# position; a step differing from the series' spacing by more than SLICE_SPACING_TOL of it (or
# SLICE_POSITION_TOL_MM, whichever is larger) is a gap or an irregular step.  DICOM positions are
# often written to 2 decimals (neighbours off by up to 0.01 mm); 1 % of the spacing (0.025 mm at
# 2.5 mm) is well above that rounding and far below a tenth of a slice.
SLICE_POSITION_TOL_MM = 0.01
SLICE_SPACING_TOL = 0.01
_LISTED = 4   # at most this many positions named in an error


def slice_offsets(positions, orientation) -> tuple[np.ndarray, str]:
    """(offsets of the slices along the slice normal in mm, the axis' name for messages) from
    their ImagePositionPatient values and the series' ImageOrientationPatient (6 numbers)."""
    iop = np.asarray([float(v) for v in orientation], float)
    normal = np.cross(iop[:3], iop[3:])
    offsets = np.asarray([[float(v) for v in p] for p in positions], float) @ normal
    axial = abs(abs(normal[2]) - 1.0) < 1e-3
    return offsets, ("z" if axial else "position along the slice normal")


def step_runs(z, tol: float) -> list[tuple[float, float, float]]:
    """The runs of one step in sorted positions ``z``: (step, first position, last position) for each stretch whose
    steps differ from its first by at most ``tol``."""
    runs: list[list[float]] = []
    for a, b in zip(z[:-1], z[1:]):
        if runs and abs((b - a) - runs[-1][0]) <= tol:
            runs[-1][2] = float(b)
        else:
            runs.append([float(b - a), float(a), float(b)])
    return [tuple(r) for r in runs]


class MissingSlicesError(InputError):
    """:func:`check_slice_positions`' refusal of a series with slices missing (gaps of whole steps): the CT reader
    names the files near the series that could not be read, the likely missing slices."""


class SpacingChangeError(InputError):
    """:func:`check_slice_positions`' refusal of a series whose slice spacing changes partway (runs of
    :data:`SPACING_RUN_MIN` or more steps of another size: a planning CT reconstructed fine through the tumour and
    coarse elsewhere), which no regular 3D grid holds.  ``could_be_missing``: the slices that would be missing were
    a run of a whole multiple of its neighbour's step (3 mm, then 6 mm) every k-th slice kept of the finer spacing -
    the positions alone cannot tell the two apart - and those missing in a gap besides (0 when none)."""

    def __init__(self, problem: str, fix: str, could_be_missing: int = 0):
        super().__init__(problem, fix)
        self.could_be_missing = could_be_missing


# A step off the series' spacing repeated over at least SPACING_RUN_MIN steps in a row is a change of slice spacing,
# not slices missing: a lost file leaves one gap (a step of k x the spacing), never a regular run of them; a planning
# CT reconstructed with two spacings (fine through the tumour, coarse elsewhere) has runs of tens of steps.
SPACING_RUN_MIN = 5
# Resampling a series acquired with several slice spacings onto one regular grid: what a CT's refusal says to do
# (:func:`check_slice_positions`; an RTDOSE's passes its own).  Slicer's DICOM reader loads such a series with a
# regularization transform; hardened, it resamples the volume onto a regular grid.
RESAMPLE_FIX = ("have the scanner / planning system export the series reconstructed at one slice spacing (keeps its "
                "RTSTRUCT and dose aligned), or in 3D Slicer set Edit > Application Settings > DICOM > Acquisition "
                "geometry regularization to 'harden regularization transform', load the series, and save the volume "
                "as .nrrd for lungai")


def _spacing_change(z, spacing: float, tol: float, source: str, axis: str, fix: str,
                    resample: str, may_miss: bool = True) -> SpacingChangeError | None:
    """The refusal of sorted slice positions ``z`` holding a run of :data:`SPACING_RUN_MIN` or more equal steps
    off ``spacing`` (a change of slice spacing), the steps of no such run (a gap, a stray step) named besides
    against the spacing around them; None when there is no such run (the caller says what is wrong).  ``may_miss``
    False: positions no slice can be missing from (an RTDOSE's GridFrameOffsetVector: its grid as planned), so a run
    of a multiple step is said as a change of spacing only."""
    runs = [(step, a, b, int(round((b - a) / step))) for step, a, b in step_runs(z, tol)]
    regular = [i for i, r in enumerate(runs) if r[3] >= SPACING_RUN_MIN or abs(r[0] - spacing) <= tol]
    if not any(abs(runs[i][0] - spacing) > tol for i in regular):
        return None
    merged: list[list] = []          # the regular runs, one per stretch of one step (a stray step inside kept in it)
    for i in regular:
        step, a, b, n = runs[i]
        if merged and abs(step - merged[-1][0]) <= max(SLICE_POSITION_TOL_MM, SLICE_SPACING_TOL * step):
            merged[-1][2], merged[-1][3] = b, merged[-1][3] + n
        else:
            merged.append([step, a, b, n])
    if len(merged) < 2:
        return None
    changes = "; ".join(f"from {r0[0]:.3f} to {r1[0]:.3f} mm at {axis} = {r1[1]:.2f} mm"
                        for r0, r1 in list(zip(merged[:-1], merged[1:]))[:_LISTED])
    where = "; ".join(f"{step:.3f} mm from {axis} = {a:.2f} to {b:.2f} mm, {counted(n, 'step')}"
                      for step, a, b, n in merged[:_LISTED])
    problem = (f"{source}: the slice spacing changes {changes}{' ...' if len(merged) > _LISTED + 1 else ''} ({where}"
               f"{' ...' if len(merged) > _LISTED else ''}) - a series acquired or reconstructed with more than one "
               "slice spacing, which no regular 3D grid holds")
    # a run whose step is a whole multiple k of a neighbouring run's: every k-th slice of the finer spacing kept
    doubled, could_be = [], 0
    for i, (step, a, b, n) in enumerate(merged if may_miss else []):
        finer = [r[0] for r in (merged[i - 1] if i else None, merged[i + 1] if i + 1 < len(merged) else None)
                 if r is not None and r[0] < step]
        for fine in finer:
            k = int(round(step / fine))
            if k >= 2 and abs(step - k * fine) <= k * max(SLICE_POSITION_TOL_MM, SLICE_SPACING_TOL * fine):
                doubled.append(f"the {step:.3f} mm steps from {axis} = {a:.2f} to {b:.2f} mm are {k} x {fine:.3f} mm")
                could_be += (k - 1) * n
                break
    # the steps in no regular run: a gap (a whole multiple of the spacing around it) or a stray step
    gaps, odd, missing = [], [], 0
    for i, (step, a, b, n) in enumerate(runs):
        if i in regular:
            continue
        local = runs[max((j for j in regular if j < i), default=min(j for j in regular if j > i))][0]
        k = int(round(step / local))
        if k >= 2 and abs(step - k * local) <= k * max(SLICE_POSITION_TOL_MM, SLICE_SPACING_TOL * local):
            gaps.append(f"between {axis} = {a:.2f} and {b:.2f} mm")
            missing += (k - 1) * n
        else:
            odd.append(f"{step:.3f} mm between {axis} = {a:.2f} and {b:.2f} mm")
    if gaps:
        problem += (f"; besides, {counted(missing, 'slice')} missing at the spacing around "
                    f"{agree(len(gaps), 'it', 'them')} - no slice {'; '.join(gaps[:_LISTED])}"
                    f"{' ...' if len(gaps) > _LISTED else ''}")
    if odd:
        problem += f"; besides, an irregular step: {'; '.join(odd[:_LISTED])}{' ...' if len(odd) > _LISTED else ''}"
    if doubled:
        problem += (f"; but {'; '.join(doubled[:_LISTED])}: the same positions as "
                    f"{'every other slice' if all(' 2 x ' in d for d in doubled) else 'slices'} missing there "
                    f"({counted(could_be, 'slice')} of the finer spacing), and the slice positions cannot tell the two "
                    "apart")
    if gaps:
        then = "then, if it was acquired with these spacings, " if doubled else "then "
        return SpacingChangeError(problem, f"{fix}, {then}resample it to one slice spacing: {resample}",
                                  could_be + missing)
    if not doubled:
        return SpacingChangeError(problem, f"resample it to one slice spacing: {resample}")
    return SpacingChangeError(problem, f"if the series was acquired with these spacings, resample it to one slice "
                                       f"spacing: {resample}; if slices are missing, {fix}", could_be + missing)


def check_slice_positions(offsets, source: str, axis: str = "z",
                          fix: str = "re-export the full series (every slice) from the PACS or planning system",
                          resample: str = RESAMPLE_FIX, may_miss: bool = True) -> float:
    """The slices of one series (``offsets``: positions along the slice normal in mm, any order)
    must be distinct and equally spaced: a missing slice, two slices at one position or an
    irregular step is an :class:`InputError` naming the positions (ITK only warns and reads such
    a series onto a wrong grid); a slice spacing that changes partway (runs of another step) a
    :class:`SpacingChangeError` naming where, from what to what, with ``resample`` (how to resample
    it to one spacing) as the fix (``may_miss``: :func:`_spacing_change`).  Returns the slice spacing (0.0 for a
    single slice)."""
    z = np.sort(np.asarray(offsets, float))
    if z.size < 2:
        return 0.0
    steps = np.diff(z)
    dup = np.flatnonzero(steps < SLICE_POSITION_TOL_MM)
    if dup.size:
        where = ", ".join(f"{z[i]:.2f}" for i in dup[:_LISTED]) + (" ..." if dup.size > _LISTED else "")
        raise InputError(f"{source}: {counted(int(dup.size), 'slice')} {agree(int(dup.size), 'lies', 'lie')} at the "
                         f"position of another slice ({axis} = {where} mm): "
                         "the series holds duplicate slices (copied twice, or two series sharing one UID)",
                         f"remove the duplicate files, or {fix}")
    spacing = float(np.median(steps))
    tol = max(SLICE_POSITION_TOL_MM, SLICE_SPACING_TOL * spacing)
    bad = np.flatnonzero(np.abs(steps - spacing) > tol)
    if not bad.size:
        return spacing
    change = _spacing_change(z, spacing, tol, source, axis, fix, resample, may_miss)
    if change is not None:
        # QA: LUNG1-003 at 3 mm with every other slice above its 60th left out was refused as "23 slices missing"
        raise change
    gaps, odd = [], []
    for i in bad:
        k = int(round(steps[i] / spacing))
        (gaps if k >= 2 and abs(steps[i] - k * spacing) <= k * tol else odd).append((i, k))
    if gaps and not odd:
        missing = sum(k - 1 for _, k in gaps)
        where = "; ".join(f"between {axis} = {z[i]:.2f} and {z[i + 1]:.2f} mm" for i, _ in gaps[:_LISTED])
        raise MissingSlicesError(f"{source}: {counted(missing, 'slice')} missing - no slice {where}"
                         f"{' ...' if len(gaps) > _LISTED else ''} (slice spacing {spacing:.2f} mm elsewhere)",
                         f"{fix}; a series acquired with varying slice spacing must be resampled to one spacing first")
    if not np.any(np.abs(steps - spacing) <= tol):
        # no step is the median (a series whose step changes partway, half the steps each): its runs, not "X mostly"
        # (QA: an RTDOSE of 2.5 mm then 5 mm frames was told "3.750 mm mostly", a step it does not have)
        runs = step_runs(z, tol)
        where = "; ".join(f"{step:.3f} mm from {axis} = {a:.2f} to {b:.2f} mm" for step, a, b in runs[:_LISTED])
        raise InputError(f"{source}: the slices are not equally spaced (the step changes: {where}"
                         f"{' ...' if len(runs) > _LISTED else ''})",
                         f"{fix}; a series with varying slice spacing must be resampled to one spacing first")
    where = "; ".join(f"{steps[i]:.3f} mm between {axis} = {z[i]:.2f} and {z[i + 1]:.2f} mm" for i, _ in odd[:_LISTED])
    raise InputError(f"{source}: the slices are not equally spaced ({spacing:.3f} mm mostly, but {where}"
                     f"{' ...' if len(odd) > _LISTED else ''})",
                     f"{fix}; a series with varying slice spacing must be resampled to one spacing first")


# The step between slice positions must run along the slice normal: a gantry-tilted (or sheared) series has its
# positions offset in the slice plane as well, which a 3D grid (origin, spacing, direction) cannot hold - ITK reads
# it as if stacked along the normal, misplacing every slice by its in-plane offset.  Allowed: STEP_OFF_NORMAL_TOL of
# the distance along the normal (0.57 degrees, the limit of 3D Slicer's DICOM reader) plus the rounding of positions
# written to 2 decimals.
STEP_OFF_NORMAL_TOL = 0.01
STEP_OFF_NORMAL_MM = 0.02


def check_steps_along_normal(positions, orientation, source: str) -> None:
    """The slices' ImagePositionPatient values must lie on a line along the slice normal (from the series'
    ImageOrientationPatient): else an :class:`InputError` saying the series is gantry-tilted / sheared."""
    iop = np.asarray([float(v) for v in orientation], float)
    normal = np.cross(iop[:3], iop[3:])
    normal /= np.linalg.norm(normal) or 1.0
    p = np.asarray([[float(v) for v in q] for q in positions], float)
    if len(p) < 2:
        return
    d = p - p[np.argmin(p @ normal)]
    along = d @ normal
    lateral = np.linalg.norm(d - np.outer(along, normal), axis=1)
    bad = lateral > STEP_OFF_NORMAL_TOL * np.abs(along) + STEP_OFF_NORMAL_MM
    if not bad.any():
        return
    far = int(np.argmax(np.abs(along)))
    angle = float(np.degrees(np.arctan2(lateral[far], abs(along[far]))))
    raise InputError(
        f"{source} is gantry-tilted or sheared: its slices step {angle:.1f} degrees off the slice normal (the last "
        f"slice lies {lateral[far]:.1f} mm beside the normal through the first), so no regular 3D grid holds it",
        "resample the series onto a regular grid first: in 3D Slicer load it with 'Acquisition geometry "
        "regularization' (DICOM module, advanced options) and save the volume, or re-export it from the scanner / "
        "PACS without gantry tilt")
