"""Classical lung segmentation: threshold, body, airways, left/right split, holes, pleural lesions.

The masks follow the RT lung definition (RTOG 1106 lung atlas): trachea, main bronchi and the
hilar structures out; collapsed, fibrotic and dependent lung in where partly aerated (airless collapsed lung -
atelectasis - is mostly out: its density is that of effusion, docs/lungs.md).  The GTV is not removed here
(there is none in automatic mode); for dose, lungs minus GTV is formed where the GTV is known
(:mod:`lungai.dose`).

Steps (arrays in LPS orientation, [z, y, x] with x towards the patient's left):
0. blank slices at the ends of the scan (no tissue, a single value, or faded into the padding by resampling) are left
   out (:func:`_blank_end_slices`), label 0; the steps below run on the slices left;
1. air = HU < -400; air connected to the in-plane border of the image is outside the body,
   whose outline (without the couch) gives the midline.  When that leaves too little air (a lung
   open to the edge of the field of view - cut by the image border or the scanner's padding
   outside the reconstruction circle - and through the trachea the other lung are then taken as
   outside air; a closed stomach or bowel gas pocket may then be all the air left), or when the air
   so thrown away holds at least ``OPEN_FOV_AIR_ML`` that lies mostly in the body's hull, the body is
   instead the largest soft-tissue/bone region, closed per slice by its convex hull where it meets
   the edge of the field of view (:func:`_body_air_open_fov`); air still taken for outside air that the body
   encloses on each of its slices, in a region of at least ``OPEN_FOV_AIR_ML``, is the lungs reached through a
   tracheostoma, the nose or an open mouth (:func:`_airway_open_to_outside`);
2. the trachea is found below the larynx, the airway tree grown from it and its part at least
   7 mm wide (trachea, main and lobar bronchi) removed (:mod:`lungai.lungs.airways`); when the body is cut by the
   image's right or left border and no trachea is found near the centre of the body in view, it is looked for at
   that border (a CT cropped through the mediastinum: the midline and the trachea lie at the cut), with the bronchi
   the cut parted from it where bronchi can be (:func:`lungai.lungs.airways.airways_at_border`: not a bulla);
3. the two largest remaining air regions are the lungs (eroded apart if they touch, then re-grown only within
   the air regions holding them: gut gas and the larynx stay out), the one further to the patient's right is
   label 1 - a region below the largest's middle slice (gut gas) is no second lung (:func:`_may_be_lung`) and is
   passed over; a second lung whose aerated part is under 0.15 of the other's (a large effusion, a collapse) is found
   across the midline above the diaphragm (:func:`_small_second_lung`, with a warning); a single lung region gets its side from the anatomy (:func:`_one_lung_side`) and a warning that the
   right/left label is uncertain (``LungResult.warnings``);
4. per slice, gaps up to 10 mm wide at the hilum (small vessels and bronchi entering the lung)
   are closed, vessels and free-standing tumours (holes) filled; tumours abutting the chest wall
   are added from the convex-hull notches (see :mod:`lungai.lungs.pleura`), judged from the patient's midline when
   the body is cut by the image's right or left border (:func:`_outline_about_midline`: the centre of the body in
   view is not the patient's, and the mediastinum next to the cut passed for a notch), and from the centre row of the
   ellipse the body in view fits when the body is cut by the image's anterior border (:func:`_outline_cut_in_front`:
   the heart's concavity passed for a notch).

Lungs cut by the scan (touching the in-plane edge of the field of view, or the top or bottom slice)
are reported (:func:`cut_by_scan`): their volumes and features are of the part in view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.errors import InputError
from lungai.io.geometry import float32_spacing, from_lps, to_lps
from lungai.io.validate import check_ct_intensities, constant_fill, region_sizes
from lungai.io.validate import near_padding as padding_margin
from lungai.lungs import LUNG_STEPS  # noqa: F401 - the steps segment_lungs reports (defined there)
from lungai.lungs.airways import AIRWAYS_KEPT_FIX, airways_at_border, find_central_airways
from lungai.lungs.pleura import NOTCH_TICKS, add_pleural_notches, convex_hull_2d
from lungai.progress import Counter, NullProgress, waiting
from lungai.volume import voxel_ml as spacing_voxel_ml

RIGHT, LEFT = 1, 2
AIR_HU = -400.0
DENSE_HU = -500.0
# RT lung (RTOG 1106 atlas): collapsed, fibrotic and dependent lung is lung.  Airless collapsed lung (atelectasis,
# about +20 HU) is as dense as effusion (about +10 HU) and muscle: only its partly aerated part is taken.  Voxels at least
# half partly aerated lung - below -350 HU, half-way between dependent lung (about -700 HU) and
# soft tissue (about 0 HU) - within DENSE_LUNG_MM of the aerated lung join the mask.
PARTLY_AERATED_HU = -350.0
DENSE_LUNG_MM = 5.0
# vessels and bronchi narrower than 2 x HILAR_CLOSING_MM entering the lung are lung (closed over
# per slice); wider hilar structures are not
HILAR_CLOSING_MM = 5.0
# below PADDING_HU is no tissue and no air: the scanner's padding outside the reconstruction circle
# (-2000, -3024 HU ...), i.e. outside the field of view
PADDING_HU = -1100.0
# the field-of-view fallback (:func:`_body_air_open_fov`) replaces the first rule when the first rule leaves less than
# 100 ml of air inside the body, or when it recovers at least OPEN_FOV_AIR_ML of the air the first rule took for
# outside air (a lung open to the edge: both lungs, joined by the trachea); it is tried on a grid of about
# OPEN_FOV_GRID_MM first (its cost on the full grid is about that of the rest of the segmentation)
OPEN_FOV_AIR_ML = 200.0
OPEN_FOV_GRID_MM = 4.0
# a lung counts as cut by the scan when at least CUT_MM2 of it lies on the edge of the field of view
# or on the top / bottom slice (a few voxels there are partial volume, not a cut lung)
CUT_MM2 = 500.0
# an end slice holding less body (voxels above AIR_HU) than FADED_BODY_SHARE of the next slice's is no part of the scan:
# a slice that resampling (scipy zoom / affine_transform, cval -1024) faded into the padding keeps its bone above
# DENSE_HU, but its soft tissue fell below AIR_HU and opened the trachea to the outside air (lung1 cut at 40 slices,
# top slice 0.4 x the last + 0.6 x -1024: 1.8 % of the body of the slice below, "no lungs found"; a real CT's end slice
# holds about as much body as the next one: LUNG1-002 / -003, lung1 / lung2 at least 0.89 of it) - judged only next to
# a slice holding at least FADED_NEXT_BODY_MM2 of body (a chest's cross-section: a small crop inside the lung, e.g. an
# LIDC nodule's, may end on a slice of lung only)
FADED_BODY_SHARE = 0.05
FADED_NEXT_BODY_MM2 = 10000.0
# a CT whose body is cut by the image's right or left border over at least BODY_CUT_MM per slice (median over the
# lung's slices; a body cut through is 150-300 mm deep, the couch or an arm touching the border far less)
BODY_CUT_MM = 50.0
# a single lung region in a CT whose body is cut by both its right and left borders (a small field of view cropped to
# one side): the border cutting at least MIDLINE_CUT_DEPTH x the body (median mm per slice) the other cuts lies at the
# mediastinum, the midline beyond it - a chest is deepest at its midline (sternum to spine) and shallow at its lateral
# walls (pyradiomics lung1 / lung2 cut at x < 240: 184 / 249 mm at the cut, 80 / 139 mm at the field of view's border,
# their right lungs were labelled left; whole lung1: 80 / 86 mm)
MIDLINE_CUT_DEPTH = 1.5
ONE_LUNG_NOTE = ("only one lung region found (single lung, lungs not separable, or a CT cropped through the midline): "
                 "labelled {side} ({value}) because {reason}; the right/left label is uncertain - check it")
# each with what to do for the whole lungs (QA lungs69: pyradiomics lung1 warned of its lungs on the bottom slice and
# said no more), as dose-features' lungs_cut names the CT series to export
FOV_CUT_NOTE = ("the lungs touch the edge of the field of view: they are cut, the volumes are a lower bound "
                "and lung features are of the part in view - for the whole lungs' volumes, features and dose metrics "
                "use a CT reconstructed with a field of view holding the whole chest")
BLANK_SLICES_NOTE = ("{} left out (no tissue - air or padding - or a single value, or a slice faded into padding by "
                     "resampling): the lungs are found on the other slices, label 0 there")
SLICE_CUT_NOTE = ("the lungs touch the {}: the scan does not cover the whole lungs; volumes and lung "
                  "features are of the part in view - for the whole lungs' volumes, features and dose metrics use a "
                  "CT covering both lungs from apex to base (e.g. the planning CT)")
# air the first rule took for outside air that the body encloses on each of its slices, in a 3D region of at least
# OPEN_FOV_AIR_ML: the lungs, reached from the outside air through a narrow opening of the airway - a tracheostoma
# (laryngectomy), the nose or an open mouth in view (QA: LUNG1-003 with a 9 mm stoma on three slices above the lungs:
# "no lungs found", 3538 ml of such air; whole real CTs: at most 8 ml, the armpits)
# a lung whose aerated part is under 0.15 of the other lung's (a large effusion, a collapsed lobe or lung: common in
# stage III NSCLC) is no part of the "two largest regions" rule (_split_two, which needs that share to tell a second lung
# from gut gas or the larynx while eroding touching lungs apart): it is the largest other air region of at least 50 ml
# on the other side of the body's midline (its centre at least SMALL_LUNG_LATERAL_MM from it - the larynx and trachea
# lie on it) reaching above the middle slice of the other lung - gut gas lies below the diaphragm (QA: LUNG1-002 with
# its right lung filled with fluid up to the top 224 ml: right lung 0 ml, "only one lung region found").  Lung holds
# tissue: the median HU of that air region is above SMALL_LUNG_AIR_HU (aerated lung: median -730 to -815 HU on LUNG1-002
# / -003, their apices too; half of the voxels below -950 HU is beyond severe emphysema), while pure air - the air of
# a pneumonectomy space (an air-fluid level weeks after surgery: post-operative radiotherapy), a pneumothorax, gut gas -
# has its median at about -1000 HU
SMALL_LUNG_LATERAL_MM = 30.0
SMALL_LUNG_AIR_HU = -950.0
# a lung under SMALL_LUNG_SHARE of the other (the share the two-largest-regions rule asks of a second region)
SMALL_LUNG_SHARE = 0.15
SMALL_LUNG_NOTE = ("the {side} lung is small ({ml:.0f} ml, under 15 % of the other lung: a large effusion or a collapsed "
                   "lobe / lung?): collapsed lung and fluid denser than -350 HU are not in the mask - the {side} lung's "
                   "volume, lung features and dose metrics are of its aerated part; check the {side} lung on the CT, "
                   "and for metrics of the whole {side} lung add its collapsed part to the mask (e.g. in Slicer's "
                   "Segment Editor) or use the clinician's lung contour (RTSTRUCT)")
# one of the two lung regions holding no lung tissue is no lung: pure air (median below SMALL_LUNG_AIR_HU) with under
# NO_TISSUE_SHARE of its voxels at least NO_TISSUE_CORE_MM inside it above NO_TISSUE_HU - no vessels, no parenchyma.
# The air pocket of a pneumonectomy space (post-operative radiotherapy: fluid below, air in front) is such a region and
# was the removed lung (QA: LUNG1-002 / -003 with one lung's space filled with fluid and a 440-1110 ml air pocket in
# front: that pocket labelled lung, no warning, so the lungs' MLD / V20 counted it).  Lungs hold tissue: 2.2-10 % of the
# voxels of their aerated region 5 mm inside it (2 mm grid) lie above -600 HU (vessels; LUNG1-002 / -003, pyradiomics
# lung1 / lung2), 4.9-5.2 % for LUNG1-003's left lung with its air 240-400 HU darker (severe emphysema: median -994 /
# -1024 HU, its vessels kept), which stays lung; the pockets (air at -1000 +- 15 HU) 0.0-0.1 %
NO_TISSUE_HU = -600.0
NO_TISSUE_CORE_MM = 5.0
NO_TISSUE_SHARE = 0.005
NO_TISSUE_NOTE = ("an air region of {ml:.0f} ml on the {side} side holds no lung tissue (median {median:.0f} HU, "
                  "{share:.1f} % of it above -600 HU, where a lung's vessels give 2-10 %): a pneumonectomy space's air "
                  "pocket, a pneumothorax or a giant bulla? It is left out: the {side} lung is empty (label {value}: "
                  "0 ml) and the lung volumes and dose metrics (MLD, V20 ...) are of the {other} lung alone - if it is "
                  "lung, contour the lungs by hand (e.g. an RTSTRUCT)")
# air in a lung mask as dark as pure air (3x3x3 mean below PURE_AIR_HU) in one 3D region of at least PURE_AIR_ML (on a
# grid of about 2 mm) holding no lung tissue (:func:`_no_lung_tissue` on the region closed over PURE_AIR_CLOSING_MM
# within the lung: the vessels crossing it are in it) is no aerated lung: a pneumothorax joined to the lung, or a giant
# bulla.  Whole real CTs: at most 3.5 ml of such air per lung, its largest region at most 2 ml (LUNG1-002 / -003,
# pyradiomics lung1 / lung2); with one lung's air 240-300 HU darker (severe emphysema, vessels kept) a 619-1341 ml
# region, but 4.0-5.4 % of it above -600 HU (vessels), stays unflagged; a pure-air rim of 15-25 mm over 40 mm of slices
# (LUNG1-002 / -003 right lung): 52-123 ml, 0.0 % above -600 HU
PURE_AIR_HU = -960.0
PURE_AIR_ML = 50.0
PURE_AIR_CLOSING_MM = 6.0
PURE_AIR_NOTE = ("the {side} lung holds {ml:.0f} ml of pure air in one region (below -960 HU, where lung is -700 to "
                 "-870 HU): a pneumothorax or a giant bulla? It is in the {side} lung's mask, volume and dose metrics "
                 "- check it, and contour the lungs by hand (e.g. an RTSTRUCT) if it is no lung")
OPEN_AIRWAY_NOTE = ("the airway is open to the outside air (a tracheostoma, or the nose / an open mouth in view): the "
                    "lungs were found as the air the body encloses on each slice, {ml:.0f} ml")


@dataclass
class LungResult:
    labels: sitk.Image                     # uint8 on the input grid: 1 right lung, 2 left lung
    volumes_ml: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    cut: list = field(default_factory=list)   # the notes saying how the scan cuts the lungs (also in notes)
    side: list = field(default_factory=list)  # the note that the right/left label is uncertain (also in notes)
    small: list = field(default_factory=list)  # the note that one lung's aerated part is small (also in notes)
    air: list = field(default_factory=list)    # the notes on air without lung tissue: a region left out, pure air kept
    airways: list = field(default_factory=list)  # the note that the airways were not removed (also in notes)

    @property
    def warnings(self) -> list:
        """The notes to show as warnings (``lungai lungs`` prints them as ``warning: ...``): the airways not removed
        (the trachea in the lung mask), how the scan cuts the lungs, an uncertain right/left label, a small lung, an air
        region without lung tissue left out and pure air in a lung (a pneumothorax?)."""
        return self.airways + self.side + self.air + self.small + self.cut

    def mask(self, which: str = "both") -> sitk.Image:
        """Binary mask of "right", "left" or "both" lungs."""
        values = {"right": [RIGHT], "left": [LEFT], "both": [RIGHT, LEFT]}[which]
        arr = np.isin(sitk.GetArrayViewFromImage(self.labels), values).astype(np.uint8)
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(self.labels)
        return img


# the sub-steps of the long steps of segment_lungs said on the bar of ``lungai lungs`` (message-only updates counted by
# a :class:`lungai.progress.Counter`: at the step's start, then at most every second - every LOG_INTERVAL in a log):
# the smoothing took 1.4-7.5 s, the outside air 3-8 s, each lung's filling 1.5-6.7 s of a shared machine on LUNG1-002
# with the bar standing on the step before (QA startfollow66); the air in the body and the airway removal: below
SMOOTHING = "smoothing the CT"
# the smoothing's chunks per axis (each a :func:`scipy.ndimage.uniform_filter1d` on whole lines: the same values)
SMOOTH_CHUNKS = 4
FINDING_OUTSIDE_AIR = "finding the outside air"
# its two sub-steps, each one long call (the 3D labelling of the air: 1.2-1.8 s; the resampler's fill,
# :func:`lungai.io.validate.constant_fill`: 1.8-2.6 s on LUNG1-002 - the bar stood still, QA lungsfollow67) said while
# it runs with its seconds (:func:`lungai.progress.waiting`): "finding the outside air 1/2: a resampler's fill at the
# faces (2 s)"
OUTSIDE_AIR_LABELLING = "the air connected to the image's border"
OUTSIDE_AIR_FILL = "a resampler's fill at the faces"
FILLING_LUNG = "filling the {side} lung"
FILLING_DETAIL = "vessels, holes, pleural notches, dense lung"
# the pleural notches count NOTCH_TICKS of them (lungai.lungs.pleura: 1.0-2.1 s of one lung idle, QA lungs67)
FILL_SUBSTEPS = 5 + NOTCH_TICKS
# the air in the body (3.5 s on LUNG1-003's DICOM CT) and the airway removal (2.8 s: the body's outline and the airway
# search the largest parts), single silent steps before (QA lungsfollow66); the airway search itself two sub-steps,
# the tree grown from the trachea and its wide part (2.9 s of one sub-step on LUNG1-003, 4.6 s on a loaded machine:
# QA lungs67)
FINDING_BODY_AIR = "finding the air in the body"
BODY_AIR_SUBSTEPS = 2
# its two sub-steps, each one long call said while it runs with its seconds (:func:`lungai.progress.waiting`), as the
# outside air's: the open-field-of-view check (1.0 s idle on LUNG1-002) and the air reached through an open airway (0.6
# s) - a log (stderr to a file: a Counter's count every 2 s there) showed "finding the air in the body 0/2" alone for
# 2.1-2.3 s idle, ~5 s on a loaded machine (QA lungsfollow68)
BODY_AIR_OPEN_FOV = "air open to the edge of the field of view"
BODY_AIR_OPENING = "air reached through an open airway"
REMOVING_AIRWAYS = "removing the airways"
REMOVING_DETAIL = "body outline, trachea and bronchi"
AIRWAY_SUBSTEPS = 5
# before the smoothing (3.0 s on LUNG1-003's DICOM CT, 6.6 s on LUNG1-002's NIfTI with nothing said after "read") and
# after the last lung's filling (about 4 s to "written": the pure-air and scan-cut checks), silent before (QA lungsgap66)
PREPARING_CT = "preparing the CT"
PREPARING_DETAIL = "HU check, LPS orientation, blank end slices"
PREPARING_SUBSTEPS = 3
# a CT whose HU were checked on reading (``segment_lungs(..., checked=True)``: ``lungai lungs``, the Slicer panel) is
# prepared without that check: its bar names no HU check (QA lungsfollow67: "preparing the CT 0/3 (HU check, ...)")
PREPARING_CHECKED_DETAIL = "LPS orientation, blank end slices"
CHECKING_LUNGS = "checking the lungs"
CHECKING_DETAIL = "pure air, cut by the scan"
CHECKING_SUBSTEPS = 2


def _smooth(hu: np.ndarray, progress=None) -> np.ndarray:
    """``ndimage.uniform_filter(hu, size=3)`` (the same values: the same 1D filters on the same whole lines, axis by
    axis), in :data:`SMOOTH_CHUNKS` chunks per axis counted on ``progress`` (:data:`SMOOTHING`)."""
    out = np.empty(hu.shape, np.float32 if hu.dtype == np.float32 else np.float64)
    counter = Counter(progress, SMOOTHING, hu.ndim * SMOOTH_CHUNKS)
    source = hu
    for axis in range(hu.ndim):
        across = 1 if axis == 0 else 0      # chunked across another axis: each line of ``axis`` whole in one chunk
        edges = np.linspace(0, hu.shape[across], SMOOTH_CHUNKS + 1).astype(int)
        for a, b in zip(edges[:-1], edges[1:]):
            index = tuple(slice(a, b) if d == across else slice(None) for d in range(hu.ndim))
            ndimage.uniform_filter1d(source[index], 3, axis=axis, output=out[index])
            counter.tick()
        source = out
    return out


def _outside_air(air: np.ndarray) -> np.ndarray:
    lab, _ = ndimage.label(air)
    border = np.unique(np.concatenate([lab[:, 0, :].ravel(), lab[:, -1, :].ravel(),
                                       lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    lut = np.zeros(int(lab.max()) + 1, bool)
    lut[border[border > 0]] = True
    return lut[lab]


def _airway_open_to_outside(outside: np.ndarray, voxel_ml: float) -> np.ndarray:
    """The part of ``outside`` (air connected in 3D to the image's in-plane border) that the body encloses on each of
    its slices (air not connected to that border within its slice), in 3D regions of at least ``OPEN_FOV_AIR_ML``:
    lungs reached from the outside air only through a narrow opening of the airway (a tracheostoma, the nose or an
    open mouth), which the first rule took for outside air.  Outside air so enclosed on a slice is small (an armpit,
    a fold of skin: at most 8 ml on the real CTs)."""
    lab, n = ndimage.label(outside, _IN_PLANE)
    if n == 0:
        return np.zeros(outside.shape, bool)
    on_border = np.zeros(n + 1, bool)
    on_border[np.unique(np.concatenate([lab[:, [0, -1], :].ravel(), lab[:, :, [0, -1]].ravel()]))] = True
    on_border[0] = True
    enclosed = ~on_border[lab]
    if enclosed.sum() * voxel_ml < OPEN_FOV_AIR_ML:
        return np.zeros(outside.shape, bool)
    regions, m = ndimage.label(enclosed)
    big = np.flatnonzero(region_sizes(regions, m) * voxel_ml >= OPEN_FOV_AIR_ML)
    return np.isin(regions, big[big > 0])


def _body_air_open_fov(hu: np.ndarray, smooth: np.ndarray, air: np.ndarray,
                       fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(air inside the body, outside) for lungs open to the edge of the field of view.

    The scanner's padding and a resampler's constant ``fill`` (:func:`lungai.io.validate.constant_fill`: the -1024
    wedge a tilted / oblique resampling leaves at the faces), and the voxels whose smoothed value they lower, are
    neither air nor body.
    An air region reaching the edge of the field of view (image border or padding) is outside air
    only when less than half of it lies in the body - the largest soft-tissue/bone region
    (HU > -500), per slice with its holes filled and closed by its convex hull: a lung open to the
    edge lies (nearly) all inside the body's hull, the air around the body mostly outside it."""
    padding = scan_padding(hu, np.zeros(hu.shape, bool) if fill is None else fill)
    near_padding = padding_margin(padding)      # the padding and its neighbours (one rule: lungai.io.validate)
    candidates = air & ~near_padding
    lab, n = ndimage.label(smooth > DENSE_HU)
    if n == 0:
        return np.zeros(air.shape, bool), air | near_padding
    body = lab == (int(np.argmax(region_sizes(lab, n)[1:])) + 1)
    hull = np.zeros(air.shape, bool)
    for k in np.flatnonzero(body.any(axis=(1, 2))):
        hull[k] = convex_hull_2d(ndimage.binary_fill_holes(body[k]))
    lab, n = ndimage.label(candidates)
    edge = near_padding.copy()
    edge[:, [0, -1], :] = edge[:, :, [0, -1]] = True
    edge = ndimage.binary_dilation(edge, _IN_PLANE) if padding.any() else edge
    size = region_sizes(lab, n)
    in_hull = region_sizes(lab[hull], n)
    at_edge = np.zeros(n + 1, bool)
    at_edge[np.unique(lab[edge])] = True
    out_lut = at_edge & (in_hull < 0.5 * size)
    out_lut[0] = False
    outside = out_lut[lab] | near_padding
    return candidates & ~outside, outside


def _open_fov_air_ml(hu: np.ndarray, smooth: np.ndarray, air: np.ndarray, outside: np.ndarray, spacing,
                     fill: np.ndarray | None = None) -> float:
    """Estimate (ml) of the air that :func:`_outside_air` took for outside air but :func:`_body_air_open_fov` keeps
    in the body: worked out on every n-th row and column (a grid of about ``OPEN_FOV_GRID_MM``), which costs a
    fraction of the full-grid fallback."""
    n = max(1, int(OPEN_FOV_GRID_MM // max(float(spacing[0]), float(spacing[1]))))
    grid = (slice(None), slice(None, None, n), slice(None, None, n))
    fov_inside, _ = _body_air_open_fov(hu[grid], smooth[grid], air[grid], None if fill is None else fill[grid])
    return float((fov_inside & outside[grid]).sum()) * n * n * spacing_voxel_ml(spacing)


def scan_padding(hu: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    """The voxels of a CT in HU ([z, y, x]) outside the scan: the scanner's padding (below ``PADDING_HU``, outside the
    reconstruction circle) and a resampler's constant ``fill`` (:func:`lungai.io.validate.constant_fill`, worked out
    when not given: the -1024 wedge a tilted / oblique resampling leaves above the original top face).  The one rule of
    what the lungs cannot reach, for :func:`_body_air_open_fov` and for :func:`cut_by_scan`'s notes (QA: a lung cut by
    such a -1024 wedge got no note while the same wedge at -3024 was counted as padding)."""
    return (hu < PADDING_HU) | (constant_fill(hu) if fill is None else fill)


# a lung cut by a sloping face of padding (a tilted / oblique CT's resampling wedge) ends a slice below it: the
# smoothing and the padding's margin (lungai.io.validate.near_padding, 26-connected) keep it off by one slice
_ACROSS_SLICES = np.zeros((3, 3, 3), bool)
_ACROSS_SLICES[:, 1, 1] = True


def cut_by_scan(lungs: np.ndarray, spacing, padding: np.ndarray | None = None) -> list[str]:
    """Notes on how the scan cuts a lung mask ([z, y, x], z up): lung on the in-plane image border
    or next to ``padding`` (:func:`scan_padding`: outside the reconstruction circle, a resampler's fill) in its slice
    or the next, on the bottom or on the top slice, each over at least ``CUT_MM2``; [] for lungs wholly in view."""
    sx, sy, sz = float32_spacing(spacing)
    if not lungs.any():
        return []
    notes = []
    box = _bbox(lungs, margin=1)
    crop = lungs[box]
    edge = np.zeros(lungs.shape, bool)
    edge[:, [0, -1], :] = edge[:, :, [0, -1]] = True
    edge = edge[box]
    if padding is not None and padding[box].any():
        # the smoothing and partial volume keep the lung a voxel or two off the padding: three count as touching it
        # and a slice off a sloping face of it (_ACROSS_SLICES)
        edge |= ndimage.binary_dilation(ndimage.binary_dilation(padding[box], _ACROSS_SLICES), _IN_PLANE,
                                        iterations=3)
    if (crop & edge).sum() * max(sx, sy) * sz >= CUT_MM2:
        notes.append(FOV_CUT_NOTE)
    faces = scan_cut_faces(lungs, spacing)
    ends = [name for name, face in (("top", "z+"), ("bottom", "z-")) if face in faces]
    if ends:
        notes.append(SLICE_CUT_NOTE.format(" and ".join(ends) + (" slices" if len(ends) == 2 else " slice")))
    return notes


def scan_cut_faces(mask: np.ndarray, spacing) -> list[str]:
    """The image faces ("x-", "x+", "y-", "y+", "z-", "z+"; ``mask`` [z, y, x] in LPS order, z up) a lung mask lies
    on over at least ``CUT_MM2``: the rule of a lung cut by the scan, for :func:`cut_by_scan`'s top / bottom slice and
    for the lung segments' ``cut_by_image_edge`` in ``lungai radiomics`` (QA: LUNG1-003's left lung, 0.48 ml on its
    two bottom slices, was "cut at z-" in radiomics_settings.csv and not cut for lungai lungs).  Fewer voxels on a
    face are partial volume, not a lung cut by the scan."""
    sx, sy, sz = float32_spacing(spacing)
    mask = np.asarray(mask, bool)
    if not mask.any():
        return []
    area = {"x": sy * sz, "y": sx * sz, "z": sx * sy}        # one voxel's face on the plane of each axis, mm2
    planes = {"x": (lambda k: mask[:, :, k]), "y": (lambda k: mask[:, k, :]), "z": (lambda k: mask[k])}
    return [axis + sign for axis in "xyz" for sign, k in (("-", 0), ("+", -1))
            if planes[axis](k).sum() * area[axis] >= CUT_MM2]


def scan_cut_notes(labels: sitk.Image, ct: sitk.Image) -> list[str]:
    """:func:`cut_by_scan`'s notes (``LungResult.cut``) for a lung label map on ``ct``'s grid read back, e.g. the
    file of ``lungai lungs`` that the Slicer panel loads: the same warnings as the command printed."""
    img = to_lps(ct)
    lungs = sitk.GetArrayFromImage(to_lps(labels)) > 0
    hu = sitk.GetArrayViewFromImage(img)
    # as segment_lungs: the scan's ends are its last slices holding the patient
    k0, k1 = _blank_end_slices(hu, img.GetSpacing())
    return cut_by_scan(lungs[k0:k1], img.GetSpacing(), scan_padding(hu[k0:k1]))


def scan_slices(ct: sitk.Image) -> tuple[int, int]:
    """(first, one past the last) LPS axial slice of ``ct`` holding the patient: between its blank end slices
    (:func:`_blank_end_slices`)."""
    img = to_lps(ct)
    return _blank_end_slices(sitk.GetArrayViewFromImage(img), img.GetSpacing())


def _small_lung_notes(right_ml: float, left_ml: float) -> list[str]:
    """[SMALL_LUNG_NOTE] when both lungs are there and one holds under ``SMALL_LUNG_SHARE`` of the other, else []."""
    if min(right_ml, left_ml) <= 0 or min(right_ml, left_ml) >= SMALL_LUNG_SHARE * max(right_ml, left_ml):
        return []
    side = "right" if right_ml < left_ml else "left"
    return [SMALL_LUNG_NOTE.format(side=side, ml=min(right_ml, left_ml))]


def small_lung_notes(labels: sitk.Image) -> list[str]:
    """The warning :func:`segment_lungs` gives (``LungResult.small``) for a lung label map (1 right, 2 left) one of whose
    lungs holds under ``SMALL_LUNG_SHARE`` of the other's volume (its aerated part left by a large effusion or a
    collapse): the same string from the label file ``lungai lungs`` wrote (the LungAISeg panel loads it)."""
    ml = spacing_voxel_ml(float32_spacing(labels.GetSpacing()))      # as segment_lungs counts it
    counts = region_sizes(sitk.GetArrayViewFromImage(labels), 2)
    return _small_lung_notes(counts[RIGHT] * ml, counts[LEFT] * ml)


def lung_cut_faces(mask: sitk.Image, ct: sitk.Image, slices: tuple[int, int] | None = None) -> list[str]:
    """:func:`scan_cut_faces` of a lung mask on ``ct``'s grid, on the slices of ``ct`` between its blank end slices
    (:func:`scan_slices`; ``slices``: those already found, e.g. once for all lung segments of a case), as
    :func:`segment_lungs` and :func:`scan_cut_notes` judge it: a lung on the last slice holding the patient is cut
    there (z- / z+), whatever blank slices resampling added beyond it.  For the lung segments' ``cut_by_image_edge``
    in ``lungai radiomics``."""
    k0, k1 = slices if slices is not None else scan_slices(ct)
    lps = to_lps(mask)
    return scan_cut_faces(sitk.GetArrayViewFromImage(lps)[k0:k1] != 0, lps.GetSpacing())


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    # the first / last index holding the mask along each axis, from its projections: np.argwhere's int64 coordinates
    # (24 bytes a voxel of the mask: 160 MB for both lungs at 0.6 mm slices) set the peak of lungai lungs
    axes = range(mask.ndim)
    held = [np.flatnonzero(mask.any(axis=tuple(b for b in axes if b != a))) for a in axes]
    lo = np.maximum(np.array([h[0] for h in held]) - margin, 0)
    hi = np.minimum(np.array([h[-1] for h in held]) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _body_half(outside: np.ndarray) -> np.ndarray:
    """The body on every second row and column: the largest connected region that is not outside air (the couch and
    cushions, separated from the patient by air, are not part of it)."""
    lab, n = ndimage.label(~outside[:, ::2, ::2])
    if n > 1:
        return lab == (int(np.argmax(region_sizes(lab, n)[1:])) + 1)
    return lab > 0


def body_outline(outside: np.ndarray, body: np.ndarray | None = None) -> dict:
    """Per slice k: (row centre, col centre, row half-axis, col half-axis) of the body - the
    largest connected region that is not outside air, so the couch and cushions (separated from
    the patient by air) do not count; found on every second row and column (it only has to
    give the outline's centre and size; ``body``: :func:`_body_half` of ``outside`` when already at hand)."""
    body = _body_half(outside) if body is None else body
    rows_any = body.any(axis=2)   # [k, j / 2]
    cols_any = body.any(axis=1)   # [k, i / 2]
    out = {}
    for k in range(body.shape[0]):
        rows, cols = 2 * np.flatnonzero(rows_any[k]), 2 * np.flatnonzero(cols_any[k])
        if rows.size and cols.size:
            out[k] = ((rows[0] + rows[-1]) / 2.0, (cols[0] + cols[-1]) / 2.0,
                      max((rows[-1] - rows[0]) / 2.0, 1.0), max((cols[-1] - cols[0]) / 2.0, 1.0))
    return out


def _shift(outline: dict, offset) -> dict:
    """The outline in the coordinates of a crop starting at ``offset`` (k, j, i)."""
    k0, j0, i0 = offset
    return {k - k0: (rc - j0, cc - i0, rh, ch) for k, (rc, cc, rh, ch) in outline.items()}


# the sub-steps of the right / left split (:func:`_split_two`) said on the bar of ``lungai lungs``: eroding touching lungs
# apart and growing them back took 2.7-4.9 s of a shared machine on LUNG1-002 with the bar standing on "airways removed"
# (QA startbar66).  Said when fewer than two lung-sized air regions are found, before it is known whether the one region
# holds both lungs: it said "lungs touch, eroding them apart" for one lung alone too (QA lungs69: LUNG1-002 cropped to
# its right half counted "lungs touch, eroding them apart 12/12", then "only one lung region found"); when the erosions
# part no second lung, SPLIT_NONE is said
SPLIT_ERODING = "right / left split: one large air region, eroding it to part touching lungs"
SPLIT_NONE = "right / left split: eroding parted no second lung (one lung region)"
SPLIT_GROWING = "right / left split: growing the lungs back"
# after the split, which lung is right or left (their centres) and whether one is pure air (:func:`_no_lung_tissue`):
# 0.5 s idle on LUNG1-002 after the growing back, said while it runs - a log showed "growing the lungs back" 2.2-2.4 s,
# up to 4 s on a loaded machine, with no line (QA lungsfollow68)
SPLIT_JUDGING = "right / left split: each lung's side and tissue"


def _split_two(mask: np.ndarray, min_voxels: int, max_iter: int = 12, hu: np.ndarray | None = None, progress=None):
    """The two largest components, eroding (then re-growing inside ``mask``) if they touch.  With ``hu`` (the CT on
    ``mask``'s grid) the second is the largest component that reaches above the largest's middle slice
    (:func:`_may_be_lung` without its tissue check: a lung with over half of its air below -950 HU - severe emphysema -
    stays a lung here): gut gas below the diaphragm is passed over (QA: a 428 ml stomach bubble was the left lung of
    LUNG1-002 with that lung collapsed, its aerated apex dropped; a 925 ml bowel gas pocket below its touching lungs
    was the right lung, both lungs the left).

    ``progress`` (optional, :mod:`lungai.progress`): the erosions (:data:`SPLIT_ERODING`, counted by a
    :class:`lungai.progress.Counter`) and the growing back (:data:`SPLIT_GROWING`, then with the seconds it has run
    while it runs - the seeds' regions, a distance transform, each voxel's nearest seed: :func:`lungai.progress.waiting`)
    are said as message-only updates (``update(0, ...)``: the step is the caller's), and :data:`SPLIT_NONE` when the
    erosions part no second lung.  No region of ``min_voxels``: nothing is eroded (an erosion makes no region larger)
    and nothing said - the largest region is returned, as the erosions ended with before."""
    progress = NullProgress() if progress is None else progress
    eroding = None
    work = mask
    for it in range(max_iter + 1):
        lab, n = ndimage.label(work)
        big = []
        if n:
            sizes = region_sizes(lab, n)[1:]
            order = np.argsort(sizes)[::-1]
            others = [o for o in order[1:] if sizes[o] >= max(min_voxels, SMALL_LUNG_SHARE * sizes[order[0]])]
            if hu is not None and others:
                largest = lab == order[0] + 1
                lung_like = [o for o in others if _may_be_lung(lab == o + 1, largest, hu, tissue_check=False)][:1]
                order = np.array([order[0]] + lung_like + [o for o in order[1:] if o not in others])
            big = [o + 1 for o in order[:2] if sizes[o] >= min_voxels]
            if len(big) == 2 and sizes[order[1]] >= SMALL_LUNG_SHARE * sizes[order[0]]:
                if it == 0:
                    return [lab == big[0], lab == big[1]]
                # seeds 1 and 2: uint8, as is the nearest seed read through the indices below (int32 took 4 bytes a
                # voxel twice more at the peak of ``lungai lungs``)
                markers = np.zeros(mask.shape, np.uint8)
                markers[lab == big[0]] = 1
                markers[lab == big[1]] = 2
                del lab, work
                _close(eroding)     # the erosions made said before the growing back (in a log too: QA smallfix68)
                # the regions holding the seeds (a labelling), one C call of 1.4 s idle, up to 9 s on a loaded machine
                # (LUNG1-002), then each voxel given its nearest seed (0.3 s more, silent after that call before - QA
                # lungsfollow68): the bar says so while they run
                return waiting(progress, SPLIT_GROWING, _grow_back, mask, markers)
            if len(big) == 1 and it == max_iter:
                _close(eroding)
                # one lung: the whole region of ``mask`` holding the eroded core, not the core
                progress.update(0, SPLIT_NONE)
                whole, _ = ndimage.label(mask)
                return [whole == whole[tuple(np.argwhere(lab == big[0])[0])]]
        if not big:
            # no region of min_voxels (left): no erosion makes one - the largest region of ``mask`` is the answer the
            # erosions ended with (QA lungs69: regions under min_voxels were eroded up to 12 times, "lungs touch" said)
            break
        if it == max_iter:
            break
        if eroding is None:
            eroding = Counter(progress, SPLIT_ERODING, max_iter)
        work = ndimage.binary_erosion(work, iterations=1)
        eroding.tick()
        if not work.any():
            break
    _close(eroding)
    if eroding is not None:
        progress.update(0, SPLIT_NONE)
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    return [lab == (int(np.argmax(region_sizes(lab, n)[1:])) + 1)]


def _close(counter) -> None:
    """Close :func:`_split_two`'s erosion :class:`lungai.progress.Counter` (None: no erosion made), so that its last
    count is said - in a log, whose counts come a few seconds apart, it was not: "eroding them apart 0/12", then
    "growing the lungs back" 2.6 s later (QA smallfix68)."""
    if counter is not None:
        counter.close()


def _grow_back(mask: np.ndarray, markers: np.ndarray) -> list[np.ndarray]:
    """[right seed's part, left seed's part] of ``mask``: each voxel of it given to the nearest seed of ``markers``
    (1 or 2, 0 elsewhere), within the regions of ``mask`` that hold a seed - :func:`_split_two`'s growing back of
    lungs eroded apart."""
    # grow the eroded seeds back within the regions of the original mask that hold them (nearest seed wins): other air
    # in the body (stomach / bowel gas, the larynx) stays out
    whole, _ = ndimage.label(mask)
    held = np.unique(whole[markers > 0])
    mask = np.isin(whole, held[held > 0])
    del whole
    # the nearest seed's indices only: the distances (float64, 8 bytes a voxel) are not needed
    iz, iy, ix = ndimage.distance_transform_edt(markers == 0, return_distances=False, return_indices=True)
    nearest = markers[iz, iy, ix]
    del iz, iy, ix
    return [mask & (nearest == 1), mask & (nearest == 2)]


def _centres_and_tissue(parts: list, hu: np.ndarray, spacing) -> tuple[list, list]:
    """(the mean column of each of ``parts``, :func:`_no_lung_tissue` of each): which of two lung regions is the
    right lung, and whether one is pure air (a pneumonectomy space's air pocket)."""
    return [np.argwhere(part)[:, 2].mean() for part in parts], [_no_lung_tissue(part, hu, spacing) for part in parts]


def _body_air(hu: np.ndarray, smooth: np.ndarray, air: np.ndarray, inside: np.ndarray, outside: np.ndarray,
              fill: np.ndarray, spacing, voxel_ml: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """(air inside the body, outside air, whether the lungs are open to the edge of the field of view): ``inside`` /
    ``outside`` (:func:`_outside_air`'s) as they are, or :func:`_body_air_open_fov`'s when the air in the body is under
    100 ml or the air it would keep in the body is lung-sized (:data:`OPEN_FOV_AIR_ML`)."""
    open_fov = inside.sum() * voxel_ml < 100.0
    if open_fov:
        # a lung open to the edge of the field of view was taken for outside air
        inside, outside = _body_air_open_fov(hu, smooth, air, fill)
    elif _open_fov_air_ml(hu, smooth, air, outside, spacing, fill) >= 0.5 * OPEN_FOV_AIR_ML:
        # a closed gas pocket (stomach, bowel) may be all the air left inside the body: the decision rests on the
        # air thrown away, worked out on the full grid once the coarse estimate says it may be lung-sized
        fov_inside, fov_outside = _body_air_open_fov(hu, smooth, air, fill)
        if (fov_inside & outside).sum() * voxel_ml >= OPEN_FOV_AIR_ML:
            inside, outside, open_fov = fov_inside, fov_outside, True
    return inside, outside, open_fov


def _small_second_lung(inside: np.ndarray, lung: np.ndarray, hu: np.ndarray, x_mid: float, min_voxels: int,
                       col_mm: float):
    """The aerated part of a second lung much smaller than ``lung`` (the one region :func:`_split_two` found in the air
    in the body ``inside``; [z, y, x], z up): the largest other air region of at least ``min_voxels`` whose centre lies
    on the other side of the body's midline column ``x_mid`` by at least ``SMALL_LUNG_LATERAL_MM`` (``col_mm``: the
    column spacing), whose slices overlap ``lung``'s, which reaches above ``lung``'s middle slice (gut gas lies
    below the diaphragm) and which holds lung tissue (median of ``hu`` above ``SMALL_LUNG_AIR_HU``: not pure air, such
    as a pneumonectomy space's); None when there is none."""
    ks = np.flatnonzero(lung.any(axis=(1, 2)))
    side = np.sign(np.argwhere(lung[ks[0]:ks[-1] + 1])[:, 2].mean() - x_mid)
    lab, n = ndimage.label(inside & ~lung)
    if n == 0:
        return None
    sizes = region_sizes(lab, n)[1:]
    for i in np.argsort(sizes)[::-1]:
        if sizes[i] < min_voxels:
            break
        region = lab == i + 1
        rz = np.flatnonzero(region.any(axis=(1, 2)))
        offset = (np.argwhere(region[rz[0]:rz[-1] + 1])[:, 2].mean() - x_mid) * col_mm
        if np.sign(offset) == -side and abs(offset) >= SMALL_LUNG_LATERAL_MM and _may_be_lung(region, lung, hu):
            return region
    return None


def _may_be_lung(region: np.ndarray, lung: np.ndarray, hu: np.ndarray, tissue_check: bool = True) -> bool:
    """Whether the air region ``region`` ([z, y, x], z up) may be the lung beside ``lung``: it overlaps ``lung``'s
    slices and reaches above its middle slice (gut gas - the stomach, the colon - lies below the diaphragm) and, with
    ``tissue_check``, holds lung tissue (median of ``hu`` above ``SMALL_LUNG_AIR_HU``: not pure air - a pneumonectomy
    space's air pocket, a pneumothorax, gut gas)."""
    ks = np.flatnonzero(lung.any(axis=(1, 2)))
    rz = np.flatnonzero(region.any(axis=(1, 2)))
    if rz[0] > ks[-1] or rz[-1] < (ks[0] + ks[-1]) / 2.0:
        return False
    return not tissue_check or float(np.median(hu[region])) > SMALL_LUNG_AIR_HU


def _pure_air_notes(labels: np.ndarray, smooth: np.ndarray, hu: np.ndarray, spacing) -> list[str]:
    """The warnings for lungs of ``labels`` ([z, y, x], 1 right, 2 left; ``smooth`` the 3x3x3 mean of ``hu`` on its
    grid, ``spacing`` x, y, z in mm) holding a region of pure air (``smooth`` below ``PURE_AIR_HU``) of at least
    ``PURE_AIR_ML`` without lung tissue (:func:`_no_lung_tissue`, the region closed over ``PURE_AIR_CLOSING_MM``
    within the lung first: emphysema's vessels cross its air), judged on a grid of about 2 mm: a pneumothorax joined to
    the lung or a giant bulla, which the mask keeps."""
    step = tuple(max(1, int(2.0 // float(s))) for s in spacing[::-1])
    sub = tuple(slice(None, None, k) for k in step)
    sub_spacing = tuple(float(s) * k for s, k in zip(spacing, step[::-1]))
    sub_ml = spacing_voxel_ml(sub_spacing)
    pure = smooth[sub] < PURE_AIR_HU
    notes = []
    for value in (RIGHT, LEFT):
        lung = labels[sub] == value
        region = pure & lung
        if region.sum() * sub_ml < PURE_AIR_ML:
            continue
        lab, n = ndimage.label(region)
        sizes = region_sizes(lab, n)
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if sizes[largest] * sub_ml < PURE_AIR_ML:
            continue
        iterations = max(1, int(round(PURE_AIR_CLOSING_MM / min(sub_spacing))))
        box = _bbox(lab == largest, margin=iterations + 1)
        closed = ndimage.binary_closing(lab[box] == largest, iterations=iterations) & lung[box]
        if _no_lung_tissue(closed, hu[sub][box], sub_spacing)[0]:
            notes.append(PURE_AIR_NOTE.format(side="right" if value == RIGHT else "left",
                                              ml=float(sizes[largest]) * sub_ml))
    return notes


def _no_lung_tissue(region: np.ndarray, hu: np.ndarray, spacing) -> tuple[bool, float, float]:
    """(no lung tissue, median HU, % of voxels above ``NO_TISSUE_HU``) of the air region ``region`` ([z, y, x]; ``hu``
    on its grid, ``spacing`` x, y, z in mm), judged on its voxels at least ``NO_TISSUE_CORE_MM`` inside it (all of it
    when none is), on a grid of about 2 mm: no lung tissue is a median below ``SMALL_LUNG_AIR_HU`` and under
    ``NO_TISSUE_SHARE`` of those voxels above ``NO_TISSUE_HU`` (a lung's vessels)."""
    box = _bbox(region, margin=1)
    step = tuple(max(1, int(2.0 // float(s))) for s in spacing[::-1])
    sub = tuple(slice(b.start, b.stop, k) for b, k in zip(box, step))
    part = region[sub]
    core = ndimage.distance_transform_edt(part, sampling=[float(s) * k for s, k in zip(spacing[::-1], step)])
    core = core > NO_TISSUE_CORE_MM
    values = hu[sub][core if core.any() else part]
    median, share = float(np.median(values)), float(np.mean(values > NO_TISSUE_HU))
    return median < SMALL_LUNG_AIR_HU and share < NO_TISSUE_SHARE, median, 100.0 * share


def _median_body_mm(part: np.ndarray, box, edge: np.ndarray) -> float:
    """Median over the slices of the lung region(s) ``part`` (in the ``box`` crop) of ``edge`` (per slice of the whole
    CT, mm of body on one of the image's borders)."""
    return float(np.median(edge[np.flatnonzero(part.any(axis=(1, 2))) + box[0].start]))


def _body_cut_side(part: np.ndarray, box, body_edges: tuple) -> int | None:
    """The image column (0: the first, the patient's right; -1: the last, left) whose border cuts the body over at least
    ``BODY_CUT_MM`` (median over the slices of the lung region(s) ``part``, in the ``box`` crop) while the other border
    does not - or, when both do, the one cutting at least ``MIDLINE_CUT_DEPTH`` x the body the other cuts (the border
    through the mediastinum; the other cuts the lateral chest wall); None when neither, or both about alike.  For a
    single lung region the midline lies beyond that border."""
    low, high = (_median_body_mm(part, box, e) for e in body_edges)
    if high >= BODY_CUT_MM > low:
        return -1
    if low >= BODY_CUT_MM > high:
        return 0
    if min(low, high) >= BODY_CUT_MM and max(low, high) >= MIDLINE_CUT_DEPTH * min(low, high):
        # both borders cut the body (a small field of view cropped to one side): the one through the mediastinum cuts
        # the deeper body (a lung reaching that border lay "against the body's wall" there, QA: lung1 / lung2)
        return -1 if high > low else 0
    return None


# a border cutting the body through the mediastinum holds at most this fraction of lung air on its column (LUNG1-002 /
# -003 at x 256: 0.02-0.05 of the reference lungs); one cutting a lung more (LUNG1-003 x < 150 / x >= 150: 0.39 / 0.26)
BORDER_MEDIASTINUM_AIR = 0.15


def _border_in_mediastinum(inside: np.ndarray, outside: np.ndarray, column: int) -> bool:
    """Whether the image's border ``column`` (of the crop ``inside`` / ``outside``, [z, y, x]; beyond it: none of the
    lungs' air within the crop's margin) cuts the body through the mediastinum, not through a lung: on the slices
    holding air in the body, at most ``BORDER_MEDIASTINUM_AIR`` of the body on that column is that air.  Only there
    may the trachea lie at or beyond the border."""
    if not 0 <= column < inside.shape[2]:
        return True
    ks = np.flatnonzero(inside.any(axis=(1, 2)))
    body = (~outside[ks, :, column]).sum()
    return body == 0 or inside[ks, :, column].sum() <= BORDER_MEDIASTINUM_AIR * body


def _outline_about_midline(outline: dict, body_edges: tuple, cut: int, midline: float) -> dict:
    """``outline`` (:func:`body_outline`) of a body cut by the image's border ``cut`` (0 first column, -1 last), centred
    on the patient's ``midline`` (a column; for one lung in view the border itself, the midline lying beyond it): on
    each slice where the body reaches that border the centre column is put on the midline and the half-width made the
    distance from it to the body's other (lateral) wall, the one in view.  The centre of the body in view is not the
    patient's: the mediastinum next to the cut lies farther out from it than the lung, and the heart's concavity was
    taken for a pleural notch (:func:`lungai.lungs.pleura.add_pleural_notches`: CTs cropped through the mediastinum
    gained 0.4-0.5 L of it in the lung)."""
    edge = body_edges[0 if cut == 0 else 1]
    out = dict(outline)
    for k, (rc, cc, rh, ch) in outline.items():
        if edge[k] > 0:
            lateral = cc + ch if cut == 0 else cc - ch
            out[k] = (rc, midline, rh, max(abs(lateral - midline), 1.0))
    return out


def _outline_cut_in_front(outline: dict, front_edge: np.ndarray, back_edge: np.ndarray, col_mm: float) -> dict:
    """``outline`` (:func:`body_outline`) of a body cut by the image's anterior border (the first row): on each slice
    where the body reaches that border (``front_edge``: per slice, mm of body on the first row; ``col_mm``: the column
    spacing) the centre row and the row half-axis are those of the ellipse through the body's posterior wall (in
    view) with the half-width of the body in view (after :func:`_outline_about_midline`) whose chord on the first row
    is as wide as the body there.  The centre of the body in view lies behind the patient's, and the heart's concavity
    at the left lung's anterior-medial side was taken for a pleural notch
    (:func:`lungai.lungs.pleura.add_pleural_notches`: LUNG1-003 cut at y >= 110, a 19 ml wedge of heart on two
    slices).  A body cut by the posterior border needs none: its centre in view lies in front of the patient's, which
    puts the heart further in, not out (pyradiomics lung1, its back cut by the last row, is left as it was).  Nor does
    a slice where the body reaches the last row as well (``back_edge``: per slice, mm of body there; ``BODY_CUT_MM``
    or more): its last row in view is the image's border, not the posterior wall, and the ellipse through it lay too
    far forward and too deep -
    the hollow beside the spine (right lung) or the descending aorta (left) then lay farther out than the lung and was
    filled as a notch (LUNG1-003 cut to y 130-319: 8 ml and 541 bone voxels more in the right lung); there the
    centre of the body in view, cut at both ends, is left as it is."""
    out = dict(outline)
    for k, (rc, cc, rh, ch) in outline.items():
        if front_edge[k] > 0 and back_edge[k] < BODY_CUT_MM:
            back = rc + rh
            # an ellipse of half-axes (ch, half) centred on row back - half: its chord at depth * half in front of the
            # centre is 2 ch sqrt(1 - depth^2) wide, and on the first row (row 0) back - half = depth * half
            depth = np.sqrt(max(0.0, 1.0 - min(1.0, front_edge[k] / (2.0 * col_mm * ch)) ** 2))
            half = back / (1.0 + depth)
            out[k] = (back - half, cc, max(half, 1.0), ch)
    return out


def _one_lung_side(part: np.ndarray, box, outline: dict, body_edges: tuple) -> tuple[int, str]:
    """(RIGHT or LEFT, why) for a single lung region ``part`` (in the ``box`` crop; LPS, x towards the patient's left).

    A lung lies against the chest wall on its lateral side and against the mediastinum on its medial side.  When the
    body is cut by one of the image's right / left borders (``body_edges``: per slice, mm of body on the first and
    the last column) the midline lies beyond that border: the lung is on the other side of the patient.  Otherwise
    the lung's lateral side is the one nearer to the body's outline (``outline``, :func:`body_outline`)."""
    ks = np.flatnonzero(part.any(axis=(1, 2)))
    full_ks = ks + box[0].start
    beyond = _body_cut_side(part, box, body_edges)
    low, high = (_median_body_mm(part, box, e) for e in body_edges)
    both = " (the deeper cut of the two)" if min(low, high) >= BODY_CUT_MM else ""
    if beyond == -1:
        return RIGHT, f"the body is cut by the image's left border{both} (the midline is beyond it)"
    if beyond == 0:
        return LEFT, f"the body is cut by the image's right border{both} (the midline is beyond it)"
    gaps_low, gaps_high = [], []
    for k, fk in zip(ks, full_ks):
        if int(fk) not in outline:
            continue
        _, cc, _, ch = outline[int(fk)]
        cols = np.flatnonzero(part[k].any(axis=0)) + box[2].start
        gaps_low.append(cols[0] - (cc - ch))
        gaps_high.append((cc + ch) - cols[-1])
    if not gaps_low:
        return RIGHT, "no body outline was found around it"
    near_low = float(np.median(gaps_low)) <= float(np.median(gaps_high))
    return ((RIGHT, "it lies against the body's right wall (the mediastinum on its left)") if near_low else
            (LEFT, "it lies against the body's left wall (the mediastinum on its right)"))


def add_dense_lung(aerated: np.ndarray, partly_aerated: np.ndarray, not_lung: np.ndarray, spacing) -> np.ndarray:
    """``aerated`` grown in-plane into ``partly_aerated`` voxels (not in ``not_lung``) by up to
    ``DENSE_LUNG_MM``: the dependent, collapsed or fibrotic lung and the partial-volume rim at
    the pleura that an RT lung contour includes."""
    steps = int(round(DENSE_LUNG_MM / float(spacing[0])))
    if steps == 0:
        return aerated
    cross = ndimage.generate_binary_structure(3, 1)
    cross[0] = cross[2] = False
    allowed = aerated | (partly_aerated & ~not_lung)
    return ndimage.binary_dilation(aerated, cross, iterations=steps, mask=allowed)


def close_hilar_gaps(lung: np.ndarray, spacing) -> np.ndarray:
    """Per-slice closing with a disk of radius ``HILAR_CLOSING_MM``: the small vessels and
    bronchi that run from the hilum into the lung (open to the mediastinal surface, so hole
    filling misses them) become lung; wider hilar structures stay out.  Computed with two 2D
    distance transforms per slice (same result as the disk, several times faster)."""
    r = int(round(HILAR_CLOSING_MM / float(spacing[0])))
    if r == 0:
        return lung
    m = r + 1
    out = lung.copy()
    for k in np.flatnonzero(lung.any(axis=(1, 2))):
        # the slice's lung box, padded by m (the same closing: the disk reaches r beyond the lung, and the box's padded
        # edge is background nearer than any outside it) - QA startfollow65: the whole slice's transforms took 1.1 s a
        # lung of LUNG1-002, on the apex's and base's small cross-sections too
        rows, cols = np.flatnonzero(lung[k].any(axis=1)), np.flatnonzero(lung[k].any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        padded = np.pad(lung[k, y0:y1, x0:x1], m)
        dilated = ndimage.distance_transform_edt(~padded) <= r
        closed = (ndimage.distance_transform_edt(dilated) > r)
        # the closing within the slice (the disk's reach beyond the lung's box cut at the slice's edge, as before)
        ya, yb, xa, xb = max(y0 - m, 0), min(y1 + m, lung.shape[1]), max(x0 - m, 0), min(x1 + m, lung.shape[2])
        out[k, ya:yb, xa:xb] |= closed[ya - (y0 - m):yb - (y0 - m), xa - (x0 - m):xb - (x0 - m)]
    return out


_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    """Holes filled slice by slice (background regions not reaching the slice's edge, one
    labelling for all slices), then one-voxel gaps closed in-plane."""
    lab, n = ndimage.label(~mask, _IN_PLANE)
    edge = np.unique(np.concatenate([lab[:, 0].ravel(), lab[:, -1].ravel(), lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    hole = np.ones(n + 1, bool)
    hole[edge] = False
    hole[0] = False
    filled = mask | hole[lab]
    return filled | ndimage.binary_closing(filled, structure=np.ones((1, 3, 3), bool))


# a field of view under LUNG_FOV_MM along any axis holds no whole lung (an adult lung is about 100-200 mm across and
# 150-250 mm high): "no lungs found" there is a crop (an LIDC nodule's: 30-60 mm), which the fix says first (QA
# lungsfollow67: LIDC-IDRI-0001_R_1, 37 x 45 x 27.5 mm, was told to resample a tilted CT)
LUNG_FOV_MM = 100.0
SMALL_FOV_FIX = ("the CT's field of view, {extent} mm (x, y, z), is too small to hold a lung (one is about 100-200 mm "
                 "across and 150-250 mm high): a crop, e.g. around a nodule? lungai lungs needs a whole chest CT; "
                 "lungai radiomics (with the nodule's mask) and lungai segment --seed-point work on such a crop; "
                 "else ")


def _small_fov_fix(shape, spacing) -> str:
    """:data:`SMALL_FOV_FIX` (ending "else ", the rest of the fix follows) for a CT ([z, y, x] ``shape``, (x, y, z)
    ``spacing``) under :data:`LUNG_FOV_MM` along any axis, else ""."""
    extent = [n * float(d) for n, d in zip(shape[::-1], spacing)]
    if min(extent) >= LUNG_FOV_MM:
        return ""
    return SMALL_FOV_FIX.format(extent=" x ".join(f"{e:.0f}" for e in extent))


def _blank_end_slices(hu: np.ndarray, spacing) -> tuple[int, int]:
    """(first, one past the last) of the slices of ``hu`` ([z, y, x]) between the blank slices at either end of the
    scan: slices holding no tissue (no voxel above ``DENSE_HU``: all air or scanner padding) or one value only (a
    0 HU fill), which resampling tools (SimpleITK / ITK, e.g. to isotropic slices) add at the ends, and end slices
    holding less than ``FADED_BODY_SHARE`` of the body (voxels above ``AIR_HU``) of the next slice in, itself holding at
    least ``FADED_NEXT_BODY_MM2``: a slice faded into the padding by interpolating resampling.  A real CT's end slice
    holds the patient's body.  The whole range when every slice is blank."""
    blank = ~(hu > DENSE_HU).any(axis=(1, 2)) | (hu.max(axis=(1, 2)) == hu.min(axis=(1, 2)))
    if blank.all():
        return 0, hu.shape[0]
    kept = np.flatnonzero(~blank)
    k0, k1 = int(kept[0]), int(kept[-1]) + 1
    # end slices faded into the padding (FADED_BODY_SHARE): peeled one at a time, each judged against the next one in
    sx, sy, _ = float32_spacing(spacing)
    body = (hu[k0:k1] > AIR_HU).sum(axis=(1, 2)) * (sx * sy)     # mm2 per slice

    def faded(end: int, nxt: int) -> bool:
        return body[nxt] >= FADED_NEXT_BODY_MM2 and body[end] < FADED_BODY_SHARE * body[nxt]

    lo, hi = 0, len(body)
    while hi - lo > 1 and faded(lo, lo + 1):
        lo += 1
    while hi - lo > 1 and faded(hi - 1, hi - 2):
        hi -= 1
    return k0 + lo, k0 + hi


def segment_lungs(ct: sitk.Image, progress=None, checked: bool = False) -> LungResult:
    """Right (1) and left (2) lung masks on the grid of ``ct`` (HU).

    ``ct`` must look like a CT in HU (:func:`lungai.io.validate.check_ct_intensities`, the check ``lungai lungs``
    makes on reading it): an MR, a windowed or rescaled image is an :class:`InputError` saying so.  ``checked``: ``ct``
    is as :func:`lungai.io.read_ct` returned it, which made that check - not made again (QA lungs67: ``lungai lungs``
    checked LUNG1-002 twice, 0.2-0.3 s).
    ``progress`` (optional, :mod:`lungai.progress`): takes ``LUNG_STEPS`` steps, ``update(1, <step done>)`` after
    each of the smoothing, the outside air, the body's air, the airway removal, the right / left split and each lung's filling (a
    single lung region: its one fill step counts twice)."""
    if checked:
        preparing = Counter(progress, PREPARING_CT, PREPARING_SUBSTEPS - 1, detail=PREPARING_CHECKED_DETAIL)
    else:
        preparing = Counter(progress, PREPARING_CT, PREPARING_SUBSTEPS, detail=PREPARING_DETAIL)
        check_ct_intensities(ct, "the CT")
        preparing.tick()
    return _segment_lungs(ct, progress, preparing)


def _segment_lungs(ct: sitk.Image, progress=None, preparing: Counter | None = None) -> LungResult:
    """:func:`segment_lungs` on a CT already checked (``preparing``: its :data:`PREPARING_CT` count, None on the
    CT without its blank end slices)."""
    bar = progress if progress is not None else NullProgress()
    preparing = Counter(None, PREPARING_CT, PREPARING_SUBSTEPS) if preparing is None else preparing
    img = to_lps(ct)
    # DICOMOrient "LPS" gives x -> left, y -> posterior, z -> superior
    hu = sitk.GetArrayFromImage(img).astype(np.float32)
    preparing.tick()
    k0, k1 = _blank_end_slices(hu, img.GetSpacing())
    preparing.tick()
    if (k0, k1) != (0, hu.shape[0]):
        # blank slices added at the ends of the scan (resampling pads with -1024 or 0 HU) are no part of it: an all-air
        # slice on the top took the trachea and, through it, the lungs for outside air ("no lungs found")
        shape = hu.shape
        del hu
        result = _segment_lungs(img[:, :, k0:k1], progress=bar)
        out = np.zeros(shape, np.uint8)
        out[k0:k1] = sitk.GetArrayViewFromImage(result.labels)
        labels = sitk.GetImageFromArray(out)
        labels.CopyInformation(img)
        ends = [f"{n} blank slice{'s' if n > 1 else ''} at the {end} of the scan"
                for n, end in ((shape[0] - k1, "top"), (k0, "bottom")) if n]
        note = BLANK_SLICES_NOTE.format(" and ".join(ends))
        return LungResult(labels=from_lps(labels, ct), volumes_ml=result.volumes_ml, notes=[note] + result.notes,
                          cut=result.cut, side=result.side, small=result.small, air=result.air,
                          airways=result.airways)
    # every threshold below on distances, areas and volumes works with the float32 spacing: the same voxels give the
    # same masks from a DICOM CT (spacing 1.4) and from its NIfTI (1.399999976)
    spacing = float32_spacing(img.GetSpacing())
    voxel_ml = spacing_voxel_ml(spacing)      # the float32 spacing's (above)
    notes: list[str] = []

    smooth = _smooth(hu, bar)
    bar.update(1, "CT smoothed")
    air = smooth < AIR_HU
    # each sub-step one long call, said while it runs (a worker thread: the same result)
    outside = waiting(bar, f"{FINDING_OUTSIDE_AIR} 0/2: {OUTSIDE_AIR_LABELLING}", _outside_air, air)
    inside = air & ~outside
    # a resampler's constant fill at the faces (a tilted / oblique CT resampled with -1024) is padding for the fallback
    fill = waiting(bar, f"{FINDING_OUTSIDE_AIR} 1/2: {OUTSIDE_AIR_FILL}", constant_fill, hu)
    bar.update(1, "outside air found")
    # each sub-step one long call, said while it runs (QA lungsfollow68)
    inside, outside, open_fov = waiting(bar, f"{FINDING_BODY_AIR} 0/{BODY_AIR_SUBSTEPS}: {BODY_AIR_OPEN_FOV}",
                                        _body_air, hu, smooth, air, inside, outside, fill, spacing, voxel_ml)
    # lungs reached from the outside air through a tracheostoma, the nose or an open mouth: both rules above took them
    # for outside air (the second keeps air open to the edge only when it lies mostly in the body's hull)
    opening = waiting(bar, f"{FINDING_BODY_AIR} 1/{BODY_AIR_SUBSTEPS}: {BODY_AIR_OPENING}",
                      _airway_open_to_outside, outside, voxel_ml)
    if opening.any():
        inside, outside = inside | opening, outside & ~opening
        notes.append(OPEN_AIRWAY_NOTE.format(ml=opening.sum() * voxel_ml))
    if inside.sum() * voxel_ml < 100.0:
        raise InputError("no lungs found: less than 100 ml of air found inside the body (counting air open to the edge "
                         "of the field of view): either the field of view misses the lungs, or they were taken for "
                         "outside air through a trachea open to air-valued padding at the image's faces (e.g. a tilted "
                         "/ oblique CT resampled with a fill near -1000 HU that is not one constant value)",
                         _small_fov_fix(hu.shape, spacing) + "resample a tilted / oblique CT with a fill value below "
                         "-1100 HU (e.g. sitk.Resample(..., defaultPixelValue=-3024)), and give a chest CT in HU (not "
                         "rescaled or windowed) whose field of view holds the lungs")
    bar.update(1, "air in the body found")
    removing = Counter(bar, REMOVING_AIRWAYS, AIRWAY_SUBSTEPS, detail=REMOVING_DETAIL)
    body = _body_half(outside)
    outline = body_outline(outside, body)
    # mm of body (not outside air) on the image's first / last column, per slice: a body cut by the image's border
    body_edges = tuple((~outside[:, :, c]).sum(axis=1) * float(spacing[1]) for c in (0, -1))
    # mm of body on the image's first (anterior) / last (posterior) row, per slice: of the body outline's body, so that
    # a couch cut by an image border does not count
    front_edge, back_edge = (body[:, r, :].sum(axis=1) * 2.0 * float(spacing[0]) for r in (0, -1))
    # midline: centre of the body in x
    x_mid = float(np.mean([o[1] for o in outline.values()])) if outline else hu.shape[2] / 2.0
    removing.tick()

    # everything below works inside the box around the air in the body (the lungs' region)
    box = _bbox(inside, margin=3)
    full_shape, full_hu = hu.shape, hu
    hu, smooth, inside, outside = hu[box], smooth[box], inside[box], outside[box]
    x_mid -= box[2].start

    # airways are thin on coarse grids: use the unsmoothed HU when voxels are large
    plane = ndimage.uniform_filter(hu, size=(1, 3, 3))
    airway_hu = plane if spacing[0] < 1.2 else hu
    removing.tick()
    airways, note = find_central_airways(airway_hu, inside, smooth, spacing, x_mid, voxel_ml, tick=removing.tick)
    border_cut = _body_cut_side(inside, box, body_edges)
    if airways is None and border_cut is not None:
        # a CT cropped through the mediastinum: the patient's midline, and the trachea cut with it, lie at the image's
        # border, not near the centre of the body in view
        border = (0 if border_cut == 0 else full_shape[2] - 1) - box[2].start
        at_border, border_note = find_central_airways(airway_hu, inside, smooth, spacing, float(border), voxel_ml)
        side = "right" if border_cut == 0 else "left"
        if at_border is not None:
            airways, note = at_border, border_note + f" (at the image's {side} border)"
            on_border = box[2].start == 0 if border_cut == 0 else box[2].stop == full_shape[2]
            if on_border:
                # a main bronchus parted from the trachea by the cut (the carina beyond it) is open to the lung
                cut_open = airways_at_border(airway_hu, inside, spacing, border_cut, voxel_ml, airways)
                if (cut_open & ~airways).sum() * voxel_ml >= 0.5:
                    note += f"; {(cut_open & ~airways).sum() * voxel_ml:.0f} ml more of airways cut by that border"
                airways = airways | cut_open
        elif _border_in_mediastinum(inside, outside, border):
            note = (f"no trachea found, also not at the image's {side} border that cuts the body: airways not removed "
                    "- the trachea and bronchi cut by that border may be labelled lung; " + AIRWAYS_KEPT_FIX)
    notes.append(note)
    airways_note = [note] if airways is None else []        # the trachea left in the lung mask: a warning
    removing.tick()
    if open_fov and airways is None and (~outside[:, :, [0, -1]]).sum() * spacing[1] * spacing[2] >= CUT_MM2:
        notes.append("the body is cut by the image's right or left border and no trachea was found: the "
                     "midline, and so which lung is right (1) or left (2), is uncertain")
    not_lung = outside.copy()
    if airways is not None and airways.any():
        # the partial-volume rim of the airway wall is removed too (3 voxels, inside air only)
        abox = _bbox(airways, margin=4)
        rim = ndimage.binary_dilation(airways[abox], iterations=3, mask=inside[abox])
        inside[abox] &= ~rim
        not_lung[abox] |= rim
    partly_aerated = plane < PARTLY_AERATED_HU
    removing.tick()
    bar.update(1, "airways removed")

    min_voxels = int(50.0 / voxel_ml)
    # the second lung must reach above the first's middle slice (_may_be_lung): gut gas is passed over, a smaller other
    # lung (a collapse, an effusion) is looked for below
    parts = _split_two(inside, min_voxels, hu=hu, progress=bar)
    if not parts or parts[0].sum() < min_voxels:
        raise InputError("no lungs found: no air region inside the body is larger than 50 ml",
                         _small_fov_fix(full_shape, spacing) + "check that this is a chest CT in HU covering the lungs")
    if len(parts) == 1 and _body_cut_side(parts[0], box, body_edges) is None:
        # a whole chest (not cut through the midline by a side border): the other lung may be there, its aerated part
        # too small for the two-largest-regions rule (a large effusion or collapse)
        second = _small_second_lung(inside, parts[0], hu, x_mid, min_voxels, float(spacing[0]))
        if second is not None:
            # its side from the centres, as two lungs (the warning: small_lung_notes, from the volumes)
            parts = [parts[0], second]
            notes = [n for n in notes if "is uncertain" not in n]
    air_note: list[str] = []
    if len(parts) == 1:
        # this note says why the one lung got its label (instead of the "midline uncertain" note above)
        notes = [n for n in notes if "is uncertain" not in n]
        values = [_one_lung_side(parts[0], box, outline, body_edges)]
        notes.append(ONE_LUNG_NOTE.format(side="right" if values[0][0] == RIGHT else "left", value=values[0][0],
                                          reason=values[0][1]))
        values = [values[0][0]]
    else:
        # the part further to the patient's right (lower x) is the right lung; one of them pure air without vessels (a
        # pneumonectomy space's air pocket): no lung, left out with a warning; the other keeps the side the two
        # centres gave it.  Said while judged (QA lungsfollow68)
        centres, judged = waiting(bar, SPLIT_JUDGING, _centres_and_tissue, parts, hu, spacing)
        values = [RIGHT, LEFT] if centres[0] < centres[1] else [LEFT, RIGHT]
        if [j[0] for j in judged].count(True) == 1:
            k = [j[0] for j in judged].index(True)
            air_note.append(NO_TISSUE_NOTE.format(
                ml=parts[k].sum() * voxel_ml, side="right" if values[k] == RIGHT else "left", median=judged[k][1],
                share=judged[k][2], value=values[k], other="left" if values[k] == RIGHT else "right"))
            parts, values = [parts[1 - k]], [values[1 - k]]
    bar.update(1, "right / left split")

    in_view = parts[0] | parts[1] if len(parts) == 2 else parts[0]
    cut_side = _body_cut_side(in_view, box, body_edges)
    if cut_side is not None:
        # a body cut by one side border: pleural notches are judged from the patient's midline - beyond that border
        # for one lung in view, else between the lungs' medial edges - not from the centre of the body in view
        midline = 0.0 if cut_side == 0 else full_shape[2] - 1.0
        if len(parts) == 2:
            right, left = (parts[0], parts[1]) if values[0] == RIGHT else (parts[1], parts[0])
            medial = [(np.flatnonzero(right[k].any(axis=0))[-1] + np.flatnonzero(left[k].any(axis=0))[0]) / 2.0
                      for k in np.flatnonzero(right.any(axis=(1, 2)) & left.any(axis=(1, 2)))]
            midline = float(np.median(medial)) + box[2].start if medial else float(x_mid + box[2].start)
        outline = _outline_about_midline(outline, body_edges, cut_side, midline)
    if _median_body_mm(in_view, box, front_edge) >= BODY_CUT_MM:
        # a body cut by the anterior border: the notches are judged from the centre row of the ellipse that the body in
        # view fits, not from the centre of the body in view (it lies behind the patient's)
        outline = _outline_cut_in_front(outline, front_edge, back_edge, float(spacing[0]))
    dense = smooth > DENSE_HU
    cropped = np.zeros(hu.shape, np.uint8)
    for part, value in zip(parts, values):
        side = "right" if value == RIGHT else "left"
        filling = Counter(bar, FILLING_LUNG.format(side=side), FILL_SUBSTEPS, detail=FILLING_DETAIL)
        pbox = _bbox(part, margin=2 + int(round(DENSE_LUNG_MM / float(spacing[0]))))
        crop = part[pbox]
        closed = close_hilar_gaps(crop, spacing)
        filling.tick()
        filled = _fill_slices(closed & ~not_lung[pbox])
        filling.tick()
        offset = [b.start + p.start for b, p in zip(box, pbox)]
        # pleural notches are judged on the aerated lung's outline
        notched = add_pleural_notches(filled, dense[pbox], _shift(outline, offset), tick=filling.tick)
        grown = add_dense_lung(crop, partly_aerated[pbox], not_lung[pbox], spacing)
        filling.tick()
        closed = close_hilar_gaps(grown, spacing)
        filling.tick()
        filled = notched | _fill_slices(closed & ~not_lung[pbox])
        filling.tick()
        region = cropped[pbox]
        region[filled & (region == 0)] = value
        bar.update(1 if len(parts) == 2 else 2, f"{side} lung filled")
    checking = Counter(bar, CHECKING_LUNGS, CHECKING_SUBSTEPS, detail=CHECKING_DETAIL)
    air_note += _pure_air_notes(cropped, smooth, hu, spacing)
    checking.tick()
    out = np.zeros(full_shape, np.uint8)
    out[box] = cropped

    labels = sitk.GetImageFromArray(out)
    labels.CopyInformation(img)
    labels = from_lps(labels, ct)
    counts = region_sizes(out, 2)
    volumes = {"right_lung": round(counts[RIGHT] * voxel_ml, 1), "left_lung": round(counts[LEFT] * voxel_ml, 1)}
    small = _small_lung_notes(counts[RIGHT] * voxel_ml, counts[LEFT] * voxel_ml)
    cut = cut_by_scan(out > 0, spacing, scan_padding(full_hu, fill))
    checking.tick()
    side = [n for n in notes if "is uncertain" in n]
    return LungResult(labels=labels, volumes_ml=volumes, notes=notes + air_note + small + cut, cut=cut, side=side,
                      small=small, air=air_note, airways=airways_note)
