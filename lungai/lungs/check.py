"""Plausibility of lung masks - the one place for it: :func:`lung_map_notes` (a lung map before lung metrics: MLD,
V20 ...; ``lungai dose-features``, ``lungai cohort``, the Slicer panel's lung loading) and
:func:`lung_segment_notes` (lung segments before radiomics: ``lungai radiomics --phantom-labels``; the lungs of
``lungai dicom-export``).

- a ``lungai lungs``-style label map (1 right, 2 left) with one lung label missing: the metrics are then of one lung
  (a CT showing one lung, a lung lost by the segmentation, a map cut to one side), not of both lungs.  A map holding
  only label 2 is the left lung alone.  A map holding only label 1 is, as ``--lungs`` documents, most often a binary
  mask of both lungs (any label > 0 is lung; real lungs often touch, so the two lungs may be one connected region):
  it is judged from the anatomy - it counts as one lung only when it spans less than ``ONE_LUNG_MAX_WIDTH_MM``
  across the patient (right-left: one adult lung 130-150 mm, both lungs about 270 mm on the project's real CTs);
  a mask of one label of another value (255: dcmrtstruct2nii's mask of one structure, which ``dose-features --lungs``
  reads as a binary mask) is judged by the same width (QA: LUNG1-003's left lung as a 255 mask gave MLD 10.20 Gy
  instead of the lungs' 5.65 Gy without a word);
- the lungs' total volume below ``MIN_LUNGS_ML``: an adult's lungs on a planning CT hold about 2.5-6 L (the real CTs
  of this project 2.9-4.0 L, one lung 1.1-2.4 L), so less than 1 L is a lung map cut by the scan or by its maker, or
  not a lung map at all; one lung segment below ``MIN_LUNG_ML`` (half of it) or with a mean above
  ``MAX_LUNG_MEAN_HU`` (mostly soft tissue) is not a lung.

``lungai lungs`` (:func:`lungai.lungs.segment_lungs`) says itself when it found one lung region only
(``ONE_LUNG_NOTE`` of :mod:`lungai.lungs.segment`): its callers do not repeat the one-label check.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.volume import voxel_ml

MIN_LUNGS_ML = 1000.0
MIN_LUNG_ML = MIN_LUNGS_ML / 2          # one lung
MAX_LUNG_MEAN_HU = -500.0               # a lung is mostly air
# a map holding only label 1 narrower than this across the patient (right-left) is one lung, not a binary mask of both
ONE_LUNG_MAX_WIDTH_MM = 200.0
ONE_LABEL_NOTE = ("the lung map holds only the {have} lung (label {value}), no {missing} lung (label {other}): lung "
                  "volumes and dose metrics (MLD, V20 ...) are of one lung, not of both; if the CT shows one lung "
                  "only, its right/left label may be wrong; give a map of both lungs (a label map 1 = right, 2 = left, "
                  "as `lungai lungs` or Slicer's Segment lungs makes it from the CT, or the right and left lung masks "
                  "joined into one)")
ONE_LUNG_MASK_NOTE = ("the lung mask holds one label ({value}) spanning {width:.0f} mm right-left, less than the "
                      "{limit:.0f} mm of both lungs (one adult lung is 130-150 mm wide): it is one lung, so lung "
                      "volumes and dose metrics (MLD, V20 ...) are of one lung, not of both; give a mask of both lungs "
                      "(join the right and left lung masks into one, e.g. a label map 1 = right, 2 = left)")
SMALL_NOTE = ("the lungs total {ml:.0f} ml, less than {limit:.0f} ml (an adult's lungs hold about 2.5-6 L): the lung "
              "map is incomplete (cut by the scan or to a part), so lung volumes and dose metrics (MLD, V20 ...) are not "
              "those of the whole lungs; give a map of both whole lungs on a CT covering them from the apices to the "
              "diaphragm (e.g. `lungai lungs` or Slicer's Segment lungs on the planning CT)")


def lung_map_notes(lungs: sitk.Image, check_volume: bool = True, label_map: bool = True) -> list[str]:
    """Warnings for a lung map (label map 1 right / 2 left, or a binary mask: any label > 0 is lung) whose lung
    metrics would not be those of both whole lungs; [] for a plausible map.  ``check_volume=False``: the one-label
    check only (the Slicer panel, which shows the volumes and the scan's cut); ``label_map=False``: a binary mask
    (an RTSTRUCT 'Lungs' structure), the volume check only."""
    arr = sitk.GetArrayViewFromImage(lungs)
    ml = voxel_ml(lungs.GetSpacing())
    value = one_label(arr) if label_map else None
    notes = []
    if value in (1, 2):
        if not _both_lungs(lungs, arr, value):
            notes.append(ONE_LABEL_NOTE.format(have="right" if value == 1 else "left", value=value,
                                               missing="left" if value == 1 else "right", other=3 - value))
    elif value is not None:
        # one label of another value (255: dcmrtstruct2nii's per-structure mask, read by dose-features as a binary
        # mask): one lung when narrower than both lungs (a mask as wide as both is read as both lungs)
        width = _width_mm(lungs, arr)
        if width < ONE_LUNG_MAX_WIDTH_MM:
            notes.append(ONE_LUNG_MASK_NOTE.format(value=value, width=width, limit=ONE_LUNG_MAX_WIDTH_MM))
    total = float(np.count_nonzero(arr)) * ml
    if check_volume and 0 < total < MIN_LUNGS_ML:
        notes.append(SMALL_NOTE.format(ml=total, limit=MIN_LUNGS_ML))
    return notes


def one_label_is_both_lungs(lungs: sitk.Image) -> bool:
    """A lung map holding label 1 only that spans at least ``ONE_LUNG_MAX_WIDTH_MM`` right-left: both lungs in one
    label (a binary lung mask), not the right lung of a label map (1 right, 2 left)."""
    arr = sitk.GetArrayViewFromImage(lungs)
    return _both_lungs(lungs, arr, one_label(arr))


def _both_lungs(lungs: sitk.Image, arr: np.ndarray, value: int | None) -> bool:
    """:func:`one_label_is_both_lungs` of ``lungs`` (``arr`` its array) whose :func:`one_label` is ``value``."""
    return value == 1 and _width_mm(lungs, arr) >= ONE_LUNG_MAX_WIDTH_MM


def one_label(arr: np.ndarray) -> int | None:
    """The label of a map holding one only: the value ``int(v)`` of its voxels ``v`` other than 0, when they all give
    one (as ``set(int(v) for v in np.unique(arr)) - {0}`` holds one value), else None - no label, or several.  Found
    from the map's minimum and maximum and at most one comparison more, not by sorting it: ``np.unique`` sorted the
    whole map, 0.35-0.8 s for a label map of LUNG1-002 / -003 (512 x 512 x 107-111) and 1.7 s for a float one, twice
    per check (QA lungs69).  A map holding NaN or an infinite value is left to ``np.unique`` (``int`` fails on it, as
    before)."""
    arr = np.asarray(arr)
    if arr.size == 0:
        return None
    lo, hi = arr.min(), arr.max()
    if arr.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        present = set(int(v) for v in np.unique(arr)) - {0}
        return present.pop() if len(present) == 1 else None
    # int() cuts a float towards 0, in step with its value: the voxels' labels lie between those of lo and hi
    top, bottom = int(hi), int(lo)
    if top >= 1 and bottom <= -1:
        return None                                     # a label above 0 and one below
    if top >= 1:
        # the labels 1 .. top - 1 are held by the voxels in [1, top): none there, top is the only label
        return top if top == 1 or not ((arr >= 1) & (arr < top)).any() else None
    if bottom <= -1:
        return bottom if bottom == -1 or not ((arr <= -1) & (arr > bottom)).any() else None
    return None


def _width_mm(image: sitk.Image, arr) -> float:
    """The right-left (physical x, LPS) extent of the nonzero voxels, in mm (from their bounding box's corners)."""
    idx = [np.nonzero(arr.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in (2, 1, 0)]   # x, y, z
    xs = [image.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k)))[0]
          for i in (idx[0][0] - 0.5, idx[0][-1] + 0.5) for j in (idx[1][0], idx[1][-1]) for k in (idx[2][0], idx[2][-1])]
    return max(xs) - min(xs)


def _centre_x_mm(image: sitk.Image, arr: np.ndarray) -> float:
    """The physical x (LPS: growing towards the patient's left) of the centroid of the nonzero voxels of ``arr``
    ([z, y, x] on ``image``'s grid): the mean index per axis from the projections, mapped to the patient (linear, so
    the centroid's image is the centroid)."""
    idx = []
    for axis in (2, 1, 0):                                                    # x, y, z index
        counts = np.count_nonzero(arr, axis=tuple(a for a in range(3) if a != axis))
        idx.append(float(np.dot(np.arange(counts.size), counts) / counts.sum()))
    return image.TransformContinuousIndexToPhysicalPoint(tuple(idx))[0]


# a lung given alone (the other side empty) whose centre lies more than this on the other side of the body's centre
# is the other side's lung; the body is the CT's voxels above BODY_MIN_HU.  On LUNG1-002 / LUNG1-003 the lungs' centres
# lie 60-85 mm either side of the body's centre; a remaining lung after a pneumonectomy shifts towards the midline but
# stays on its side
ONE_LUNG_SIDE_MARGIN_MM = 20.0
BODY_MIN_HU = -300.0


def _body_centre_x_mm(image: sitk.Image, lung: np.ndarray) -> float | None:
    """The physical x (LPS) of the centroid of the CT ``image``'s voxels above :data:`BODY_MIN_HU` (the body, the
    couch beneath it) on the slices holding ``lung`` ([z, y, x] on its grid); None when there is none, or when the
    body reaches one right-left edge of the image only: a CT cut through the body (at the midline, a field of view off
    the patient), whose centre is not the patient's."""
    ct = sitk.GetArrayViewFromImage(image)
    slices = np.nonzero(lung.any(axis=(1, 2)))[0]
    body = np.zeros(ct.shape, bool)
    body[slices] = ct[slices] > BODY_MIN_HU
    if not body.any():
        return None
    # the array axis along the patient's right-left (x), and whether the body reaches its first / last index
    axis = 2 - int(np.argmax(np.abs(np.asarray(image.GetDirection()).reshape(3, 3)[0])))
    reach = body.any(axis=tuple(a for a in range(3) if a != axis))
    return None if reach[0] != reach[-1] else _centre_x_mm(image, body)


def _lone_lung_problem(lung, side: str, what: str, image: sitk.Image) -> str | None:
    """Why the only lung of a pair (``side`` "right" / "left": what it was given as, ``what`` where from) is not on
    that side of the body's centre, or None (:func:`lung_sides_problem`)."""
    body = _body_centre_x_mm(image, lung)
    if body is None:
        return None
    x = _centre_x_mm(image, lung)
    off = x - body                                  # > 0: towards the patient's left
    if (off if side == "right" else -off) <= ONE_LUNG_SIDE_MARGIN_MM:
        return None
    other = "left" if side == "right" else "right"
    return (f"the {side} lung ({what}) is the only lung given and lies on the patient's {other}: its centre is at "
            f"x = {x:.0f} mm, {abs(off):.0f} mm to the patient's {other} of the body's centre (x = {body:.0f} mm; "
            f"patient coordinates, LPS: x grows towards the patient's left), so it is the {other} lung; computed as "
            f"given, the {side}_lung features would be the {other} lung's")


def lung_sides_problem(right, left, image: sitk.Image, right_what: str = "label 1",
                       left_what: str = "label 2") -> str | None:
    """Why a right / left lung pair (boolean [z, y, x] arrays on ``image``'s grid) is not on its sides, or None: the
    right lung's centre must lie on the patient's right of the left lung's (LPS: a smaller x).  Real lungs lie 100 mm
    or more apart; a pair the other way round is a swapped label map (1 = left, 2 = right), swapped ``--label`` names
    or a CT whose orientation header is wrong - computed as it is, every ``right_lung`` feature would be the left
    lung's, without a word.  ``right_what`` / ``left_what`` say where each came from (``label 1``).  One rule for
    every radiomics route that names the lungs' sides (:mod:`lungai.radiomics.segments`).

    One lung alone (the other empty; ``image`` the CT) must lie on its side of the body's centre (more than
    :data:`ONE_LUNG_SIDE_MARGIN_MM` on the other side: the other lung).  QA radiomics71: LUNG1-003's left lung as a
    mask of label 1 (one structure exported alone) was computed as ``right_lung`` (1722 ml, x = 77 mm, the body's
    centre at 8 mm), with only an error that ``left_lung`` was empty."""
    right, left = np.asarray(right), np.asarray(left)
    if right.any() != left.any():
        return (_lone_lung_problem(right, "right", right_what, image) if right.any() else
                _lone_lung_problem(left, "left", left_what, image))
    if not right.any():
        return None
    x_right, x_left = _centre_x_mm(image, right), _centre_x_mm(image, left)
    if x_right < x_left:
        return None
    return (f"the right lung ({right_what}) lies on the patient's left of the left lung ({left_what}): their centres "
            f"are at x = {x_right:.0f} mm and {x_left:.0f} mm (patient coordinates, LPS: x grows towards the patient's "
            "left), so right and left are swapped; computed as given, the right_lung features would be the left "
            "lung's")


PHANTOM_LABELS_HINT = ("is the mask really a lungai phantom label map (1 tumour, 2 right lung, 3 left lung)? For "
                       "another label map use --label NAME=N")


# the smallest plausible volume of each lung segment: one lung, or both lungs in one segment ("lungs": a binary lung
# mask exported by ``lungai dicom-export`` as "Lungs")
SEGMENT_MIN_ML = {"right_lung": MIN_LUNG_ML, "left_lung": MIN_LUNG_ML, "lungs": MIN_LUNGS_ML}


def lung_segment_notes(segments: dict, image: sitk.Image, hint: str = PHANTOM_LABELS_HINT,
                       shown: dict | None = None) -> list[str]:
    """Notes for lung segments (``right_lung`` / ``left_lung`` of a radiomics segment dict, or ``lungs``: both lungs
    in one segment, checked when no right / left lung segment is given) that do not look like a lung (under ``MIN_LUNG_ML`` - ``MIN_LUNGS_ML`` for ``lungs`` -, or a mean
    above ``MAX_LUNG_MEAN_HU``: mostly soft tissue), e.g. the labels of another label map taken as lungai's phantom
    labels (``lungai radiomics --phantom-labels``) or a body mask given as the lungs of ``lungai dicom-export
    --lungs``, the lungs of a lung map or an RTSTRUCT (:func:`lungai.radiomics.segments.segments_from_masks`), a
    Slicer segment of a lung role (:mod:`lungai.scene.radiomics`); ``hint``: the question / fix ending each note (the
    command's option); ``shown``: {segment: its name as the user knows it} ("Right lung" for ``right_lung``)."""
    notes = []
    ml_per_voxel = voxel_ml(image.GetSpacing())
    ct = sitk.GetArrayViewFromImage(image)
    for name, min_ml in SEGMENT_MIN_ML.items():
        if name not in segments or (name == "lungs" and {"right_lung", "left_lung"} & set(segments)):
            continue    # "lungs" beside the right / left lung is their union (radiomics): they are checked
        sel = sitk.GetArrayViewFromImage(segments[name]) > 0
        if not sel.any():
            continue
        ml, mean = float(sel.sum()) * ml_per_voxel, float(ct[sel].mean())
        if ml < min_ml or mean > MAX_LUNG_MEAN_HU:
            what = "the lungs" if name == "lungs" else "a lung"
            notes.append(f"segment {(shown or {}).get(name, name)!r} does not look like {what} ({ml:.0f} ml, "
                         f"mean {mean:.0f} HU; "
                         f"{'both lungs are' if name == 'lungs' else 'a lung is'} over {min_ml:.0f} ml and mostly "
                         f"air, below {MAX_LUNG_MEAN_HU:.0f} HU): {hint}")
    return notes


MASK_LUNG_HINT = ("is it really a lung, not a tumour or another structure? Give a lung's name to the lung labels only "
                  "(--label right_lung=N, left_lung=N or lungs=N)")


def lung_role_notes(masks: dict, image: sitk.Image, mapping=None, hint: str = MASK_LUNG_HINT) -> list[str]:
    """:func:`lung_segment_notes` for the segments of ``masks`` (named as the user named them: ``Lung_R``, "Right
    lung", ``--label right_lung=3``) that are a right / left lung or both lungs by their name, or by ``mapping`` (a
    Slicer segmentation's terminology, :func:`lungai.scene.nodes.terminology_roles`): one rule for ``lungai radiomics
    --mask --label`` (what the Lung Radiomics panel runs) and the console's ``radiomics_table``; the notes name each
    segment as given."""
    from lungai.segment_roles import segment_role

    by_role: dict = {}
    for name in masks:
        role = segment_role(name, mapping) or segment_role(name)
        if role in SEGMENT_MIN_ML and role not in by_role:
            by_role[role] = name
    return lung_segment_notes({role: masks[name] for role, name in by_role.items()}, image, hint=hint, shown=by_role)


def lungs_minus(lungs: sitk.Image, masks, names=None, what: str = "GTV", empty_fix: str = "",
                emptied_fix: str = "") -> sitk.Image:
    """The lungs (any label > 0; a label map keeps its labels) minus the union of ``masks`` (on the lungs' grid, label
    > 0): the one subtraction from a lung mask of what is no lung - a GTV (``lungai lungs --gtv``), the tumour's motion
    envelope (:func:`lungai.dose.features.lungs_minus_envelope`).  ``what`` names the masks in the messages, ``names``
    each one (what it is, for a refusal).  An empty mask (no voxel > 0) is refused (``empty_fix``) rather than taken
    as subtracted, and so are lungs it empties (``emptied_fix``)."""
    from lungai.errors import InputError
    from lungai.io import on_grid

    masks = list(masks)
    names = list(names) if names is not None else [None] * len(masks)
    arr = sitk.GetArrayFromImage(lungs)
    for mask, name in zip(masks, names):
        mask = on_grid(lungs, mask, f"{what} mask")
        inside = sitk.GetArrayViewFromImage(mask) > 0
        check_not_empty(inside, what, name, empty_fix)
        arr[inside] = 0
    if not (arr > 0).any():
        raise InputError(f"the lung mask minus the {what} is empty", emptied_fix)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(lungs)
    return out


def check_not_empty(mask, what: str = "GTV", name: str | None = None, fix: str = "") -> None:
    """Refuse a mask to subtract from the lungs (:func:`lungs_minus`) with no voxel > 0 (``mask``: an image or array;
    ``what`` / ``name``: what it is and which one): before the work it is given for (``lungai lungs --gtv``: before the
    segmentation)."""
    from lungai.errors import InputError

    arr = sitk.GetArrayViewFromImage(mask) if isinstance(mask, sitk.Image) else np.asarray(mask)
    if not (arr > 0).any():
        raise InputError(f"the {what} mask{f' {name}' if name else ''} is empty (no voxel > 0)", fix)


GTV_EMPTY_FIX = ("give the GTV mask with the tumour's voxels > 0 on the CT grid (FILE#N: the label that holds it), or "
                 "leave --gtv out")
GTV_EMPTIED_FIX = "check the GTV mask: it must be the tumour, not the lungs (FILE#N: the GTV's label of a label map)"
# a GTV's part outside lungai lungs' masks: the tumour at the hilum / mediastinum / chest wall (the masks follow the
# aerated lung), or a nodal GTV (QA lungs70: LUNG1-003's GTV-1 66 % outside, its nodes 100 %; no word of it before)
GTV_OUTSIDE_NOTE = ("GTV {name}: {ml:.1f} ml, {outside:.1f} ml ({share:.0f} %) of it outside the lung masks (hilum, "
                    "mediastinum, chest wall or nodes: not lung), {inside:.1f} ml inside them subtracted from the "
                    "lungs")
GTV_ALL_OUTSIDE_NOTE = ("GTV {name}: {ml:.1f} ml, all of it outside the lung masks (a nodal / mediastinal GTV, or a "
                        "tumour at the hilum or chest wall): nothing of it subtracted from the lungs")


def gtv_outside_lungs(lungs: sitk.Image, gtvs: dict) -> list[dict]:
    """How much of each GTV (``gtvs``: {name: mask on the lungs' grid, label > 0}) lies outside the lung mask
    ``lungs`` (any label > 0): [{"name", "ml", "outside_ml", "inside_ml", "note"}] in the order given, ``note``
    :data:`GTV_OUTSIDE_NOTE` (or :data:`GTV_ALL_OUTSIDE_NOTE`).  Volumes: :func:`lungai.volume.mask_volume_ml`'s."""
    from lungai.io import on_grid

    lung = sitk.GetArrayViewFromImage(lungs) > 0
    ml = voxel_ml(lungs.GetSpacing())
    out = []
    for name, mask in gtvs.items():
        gtv = sitk.GetArrayFromImage(on_grid(lungs, mask, "GTV mask")) > 0    # a copy: the resampled image is temporary
        total, inside = int(gtv.sum()), int(np.count_nonzero(gtv & lung))
        row = {"name": name, "ml": total * ml, "outside_ml": (total - inside) * ml, "inside_ml": inside * ml}
        text = GTV_ALL_OUTSIDE_NOTE if total and not inside else GTV_OUTSIDE_NOTE
        row["note"] = text.format(name=name, ml=row["ml"], outside=row["outside_ml"], inside=row["inside_ml"],
                                  share=100.0 * (total - inside) / total if total else 0.0)
        out.append(row)
    return out
