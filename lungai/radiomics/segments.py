"""Segment masks for radiomics: tumour, right lung, left lung, both lungs, lungs minus tumour.

Masks come from (a) a tumour mask and a lung label map (``lungai lungs`` output: 1 = right,
2 = left), (b) the synthetic phantom's label map, or (c) chosen labels of any label map.
Each function returns ``{segment name: uint8 sitk mask}`` on the reference grid; a segment that
cannot be built is reported in ``errors`` instead (the others go on).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.io import copy_geometry, on_grid

STANDARD_SEGMENTS = ("tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour")
# why a lung label map of other structures is refused (``lungai.dicom.masks.lung_map_input``)
LUNG_MAP_CONSEQUENCE = "its label 1 would be computed as the right lung, its label 2 as the left lung, and the others dropped"


def _to_mask(arr: np.ndarray, reference: sitk.Image) -> sitk.Image:
    return copy_geometry(arr.astype(np.uint8), reference)


def _select(masks: dict[str, np.ndarray], names, reference: sitk.Image, errors: dict) -> dict[str, sitk.Image]:
    out = {}
    # no names: every standard segment the given masks can build (nothing else is an error)
    for name in names or [n for n in STANDARD_SEGMENTS if n in masks]:
        if name not in STANDARD_SEGMENTS:
            errors[name] = f"unknown segment {name!r}; choose from {', '.join(STANDARD_SEGMENTS)}"
        elif name not in masks:
            errors[name] = f"segment {name!r} needs a mask that was not given (tumour and/or lungs)"
        else:
            out[name] = _to_mask(masks[name], reference)
    return out


def standard_masks(tumour: np.ndarray | None, right: np.ndarray | None, left: np.ndarray | None,
                   both: np.ndarray | None = None) -> dict:
    """The five standard segments as boolean arrays from whatever is available; ``both``: a mask of both lungs
    with no right / left (a binary lung mask) gives lungs and lungs minus tumour only."""
    masks: dict[str, np.ndarray] = {}
    if tumour is not None:
        masks["tumour"] = tumour.astype(bool)
    if right is not None and left is not None:
        masks["right_lung"], masks["left_lung"] = right.astype(bool), left.astype(bool)
        masks["lungs"] = masks["right_lung"] | masks["left_lung"]
    elif both is not None:
        masks["lungs"] = both.astype(bool)
    if tumour is not None and "lungs" in masks:
        masks["lungs_minus_tumour"] = masks["lungs"] & ~masks["tumour"]
    return masks


def segments_from_masks(reference: sitk.Image, tumour: sitk.Image | None = None, lungs: sitk.Image | None = None,
                        names=None, tumour_label: int | None = None, errors: dict | None = None,
                        lung_segments: dict | None = None, lung_file=None, tumour_segments: dict | None = None,
                        tumour_file=None, notes: list | None = None, tumour_structures=None,
                        tumour_named: str | None = None, lung_notes: list | None = None,
                        requested: bool | None = None) -> dict:
    """Standard segments from a tumour mask (nonzero, or ``tumour_label``) and a lung label map (1 right, 2 left).

    ``tumour_segments`` / ``tumour_file``: the tumour came from the segments ``tumour_segments`` (their labels: the
    ``parts`` of :func:`lungai.dicom.masks.mask_input`) of the DICOM SEG ``tumour_file`` (as the user gave it): an
    empty tumour then fails segment 'tumour' naming those segments of that SEG (:func:`_empty_segments`), not as an
    anonymous "segment 'tumour' is empty (0 voxels)" (QA segcut64: ``--tumour seg.dcm#Empty``).

    ``lung_segments`` / ``lung_file``: the lung map came from the DICOM SEG ``lung_file`` (as the user gave it), its
    right lung from segment ``lung_segments[1]``, its left from ``lung_segments[2]``
    (:func:`lungai.dicom.masks.mask_input`'s ``names``): a right lung lying on the patient's left is then said by
    those segments, with the fix that takes them the other way round (:func:`lungai.dicom.masks.swapped_seg_fix`),
    not by the labels of a lung map the user never gave (QA seglungs63: "label 1 of the lung map, or R of
    FILE#R,L").

    ``notes`` (a list, when given) gets :func:`tumour_outside_lungs_note` when the tumour holds voxels but none in the
    lungs (a nodal / mediastinal GTV, or lung contours drawn around the tumour): lungs_minus_tumour, still computed,
    equals the lungs (QA outsidelungs65).  ``tumour_structures``: the RTSTRUCT structures the tumour is (the union
    of), named in that note (``radiomics --rtstruct``, ``cohort``) rather than "the tumour mask"; ``tumour_named``: the
    tumour's words otherwise ("the automatic tumour": ``cohort``'s segmentation).  An empty tumour and one outside the
    lungs are named alike (:func:`tumour_words`: ``labels.nii.gz#1``, its label too - QA emptysel65).

    A lung map holding **one lung** (a pneumonectomy, one lung exported alone): the absent side's segment is not one
    the masks can build - left out with a note naming the absent lung (:func:`absent_lung_note`) when the segments are
    the default ones, an error naming it when ``names`` were the user's (``requested``: whether they were; default:
    ``names`` given; ``radiomics --rtstruct`` passes the buildable segments as ``names``).  QA radiomicsfollow71:
    LUNG1-003's right lung alone failed the run, "segment 'left_lung' is empty (0 voxels)", fix "check the mask/label
    value".  Every lung segment built is checked for looking like a lung (:func:`lungai.lungs.check.
    lung_segment_notes`: under 500 ml, or mostly soft tissue - a tumour given as the lungs; QA radiomicsfollow71:
    pyradiomics' lung2 lesion, 48 ml at -7 HU, computed as ``lungs`` without a word).  Both kinds of note go to
    ``lung_notes`` (a list, when given)."""
    errors = {} if errors is None else errors
    t = r = l = None
    if tumour is not None:
        tumour = on_grid(reference, tumour, "tumour mask")
        arr = sitk.GetArrayFromImage(tumour)
        t = arr == tumour_label if tumour_label is not None else arr > 0
    both = None
    if lungs is not None:
        from lungai.lungs.check import one_label_is_both_lungs

        lungs = on_grid(reference, lungs, "lung mask")
        arr = sitk.GetArrayFromImage(lungs)
        # label 1 as wide as both lungs: a binary mask of both lungs (dicom-export's rule), never the right lung
        if one_label_is_both_lungs(lungs):
            both = arr == 1
        else:
            r, l = arr == 1, arr == 2
    out = _select(standard_masks(t, r, l, both), names, reference, errors)
    empty = None        # why the tumour mask given is empty, as its segment's error says it
    give = EMPTY_TUMOUR_GIVE    # ... and how to give one that holds the tumour, in the words of its input
    if t is not None and not t.any():
        from lungai.dicom.masks import as_typed, typed_file

        if tumour_segments:
            empty = _empty_segments(list(tumour_segments), as_typed(typed_file(tumour_file)) if tumour_file else None)
        else:
            what, several = tumour_words(tumour_file, tumour_structures, tumour_named)
            empty = f"{what} {'are' if several else 'is'} empty (no voxel)"
            give = empty_tumour_give(tumour_structures, tumour_named)
    # segment 'tumour' named by the input it is empty of, as lungs_minus_tumour (QA idforms66: a plain mask's said
    # "segment 'tumour' is empty (0 voxels)", fix "check the mask/label value, or leave this segment out")
    if empty and out.pop("tumour", None) is not None:
        errors["tumour"] = str(InputError(empty + ", so segment 'tumour' is empty",
                                          EMPTY_SEG_FIX if tumour_segments else give))
    if empty and out.pop("lungs_minus_tumour", None) is not None:     # the lungs under another name: not computed
        errors["lungs_minus_tumour"] = empty_tumour_lungs_error(empty, give=give)
    if notes is not None and "lungs_minus_tumour" in out and t is not None and t.any():
        in_lungs = both if both is not None else (r | l)
        if not (t & in_lungs).any():       # nothing of the tumour in the lungs: the lungs, said so
            what, several = tumour_words(tumour_file, tumour_structures, tumour_named)
            notes.append(tumour_outside_lungs_note(what, several=several))
    if r is not None:      # 1 right / 2 left is the map's convention, not seen in it: a swapped map is refused
        seg = lung_segments or {}
        if lung_file is not None and seg.get(1) and seg.get(2):     # a SEG's two lung segments: named as such
            from lungai.dicom.masks import split_selector, swapped_seg_fix

            where = f" of {split_selector(lung_file)[0]}"
            _check_sides(out, "right_lung", "left_lung", r, l, reference, errors, f"segment {seg[1]!r}{where}",
                         f"segment {seg[2]!r}", swapped_seg_fix(lung_file, seg[1], seg[2]))
        else:
            _check_sides(out, "right_lung", "left_lung", r, l, reference, errors, MAP_RIGHT, MAP_LEFT,
                         SWAPPED_MAP_FIX, ONE_LUNG_MAP_FIX)
    if r is not None and r.any() != l.any():    # one lung: the other side absent, not an empty segment to fix
        present, absent = ("right_lung", "left_lung") if r.any() else ("left_lung", "right_lung")
        asked = (names is not None) if requested is None else requested
        failed = present in errors and present not in out     # the lone lung on the other side: that error says it
        popped = out.pop(absent, None) is not None
        shown = _lung_map_shown(lung_file)
        # the whole-lung segments built: one lung, whatever segments were asked (QA notesfollow71: --segments lungs
        # of a one-lung map computed 'lungs' as the right lung alone without a word)
        whole = [n for n in WHOLE_LUNG_SEGMENTS if n in out]
        if popped and asked:
            errors[absent] = str(InputError(
                absent_lung_text(absent, shown, lung_segments) + f", so segment {absent!r} is empty",
                f"give a lung map that holds the {absent.split('_')[0]} lung too (1 = right lung, 2 = left lung, "
                f"as `lungai lungs` writes it), or leave {absent} out of --segments (a patient with one lung)"))
        elif lung_notes is not None and not failed and (popped or whole):
            lung_notes.append(absent_lung_note(absent, shown, lung_segments, left_out=popped, whole=whole))
    if lung_notes is not None:
        from lungai.lungs.check import lung_segment_notes

        lung_notes.extend(lung_segment_notes(out, reference, hint=lung_map_hint(lung_file)))
    if both is not None:
        for side in ("right_lung", "left_lung"):
            if side in errors:
                errors[side] = (f"segment {side!r} needs a lung label map (1 = right lung, 2 = left lung): the lung "
                                "mask is one label as wide as both lungs, a binary mask of both lungs (segments "
                                "'lungs' and 'lungs_minus_tumour' are computed from it); give a label map, e.g. "
                                "`lungai lungs`'s, or leave this segment out")
    return out


def _lung_map_shown(lung_file) -> str:
    """The lung map as the user gave it ("the lung map right_only.nii.gz"), or "the lung map"."""
    from lungai.dicom.masks import as_typed, typed_file

    return f"the lung map {as_typed(typed_file(lung_file))}" if lung_file else "the lung map"


def absent_lung_text(absent: str, shown: str = "the lung map", lung_segments: dict | None = None) -> str:
    """What a lung map holding one lung lacks (``absent``: "left_lung"): "the lung map X holds no left lung (label 2
    has no voxel)", a DICOM SEG's lung by its segment."""
    side = absent.split("_")[0]
    label = 1 if side == "right" else 2
    where = (f"segment {lung_segments[label]!r} has no voxel" if (lung_segments or {}).get(label)
             else f"label {label} has no voxel")
    return f"{shown} holds no {side} lung ({where})"


# the segments of both lungs (less the tumour): one lung alone when the lung map holds one
WHOLE_LUNG_SEGMENTS = ("lungs", "lungs_minus_tumour")


def absent_lung_note(absent: str, shown: str = "the lung map", lung_segments: dict | None = None,
                     left_out: bool = True, whole=("lungs",)) -> str:
    """The note of a lung map holding one lung (:func:`segments_from_masks`): a pneumonectomy, or one lung exported
    alone.  ``left_out``: the ``absent`` side's segment was left out of the default segments; ``whole``: the
    whole-lung segments built (:data:`WHOLE_LUNG_SEGMENTS`), each the lung present alone."""
    present = "right" if absent == "left_lung" else "left"
    said = [f"segment {absent!r} is not computed"] if left_out else []
    said += [f"segment {name!r} is the {present} lung alone" + (", less the tumour" if name != "lungs" else "")
             for name in whole]
    return (absent_lung_text(absent, shown, lung_segments) + ": " + " and ".join([", ".join(said[:-1])] + said[-1:]
                                                                               if len(said) > 1 else said)
            + " (a patient with one lung, or one lung exported alone); if the patient has both lungs, give them in "
            "one map (1 = right lung, 2 = left lung, as `lungai lungs` writes it)")


def lung_map_hint(lung_file=None) -> str:
    """The question / fix ending a note of a lung segment that does not look like a lung
    (:func:`lungai.lungs.check.lung_segment_notes`), built from a lung map (``lung_file`` as given)."""
    if not lung_file:      # cohort's: the RTSTRUCT's lung structures or its automatic lungs
        return ("are the lungs given really the lungs, not a tumour or another structure? Check the lung structures "
                "(or masks), or make the lungs with `lungai lungs`")
    return (f"is {_lung_map_shown(lung_file)} really of the lungs (1 = right lung, 2 = left lung, as `lungai lungs` "
            "writes it), not of a tumour or another structure? Give the lungs of another label map as FILE#R,L, or "
            "make a lung map with `lungai lungs`")


AUTOMATIC_TUMOUR = "the automatic tumour"     # a segmented tumour (cohort's, the demo's), as their notes name it


def tumour_words(tumour_file=None, tumour_structures=None, named: str | None = None) -> tuple[str, bool]:
    """The tumour as :func:`segments_from_masks`' problems and notes name it, and whether in the plural: its RTSTRUCT
    structures (``tumour_structures``: "the tumour structures 'GTV-1' + 'GTV-2'"), else ``named`` ("the automatic
    tumour"), else its mask as the user gave it, label / segments too ("the tumour mask labels.nii.gz#1": QA
    outsidefollow65, LUNG1-003's label map, its lungs labels 3,4 of the same file, was "the tumour mask
    LUNG1-003_labels.nii.gz"; QA emptysel65: its empty label 1 was too), else "the tumour mask"."""
    from lungai.dicom.masks import as_typed

    several = len(tumour_structures or ()) > 1
    if tumour_structures:
        return (f"the tumour structure{'s' if several else ''} " + " + ".join(repr(n) for n in tumour_structures),
                several)
    if named:
        return named, False
    return (f"the tumour mask {as_typed(tumour_file)}" if tumour_file else "the tumour mask"), False


# an empty tumour mask leaves nothing out of the lungs: segment 'lungs_minus_tumour' would be segment 'lungs' under
# another name (QA segmsg65: LUNG1-003 with an empty --tumour gave lungs_minus_tumour's 18 first-order values, equal to
# the lungs', without a word - only segment 'tumour' failed)
# (the Lung Radiomics panel's derived "Lungs minus tumour" says it in its words: lungai.scene.nodes.derived_lung_masks)
EMPTY_TUMOUR_LUNGS = (", so segment {derived!r} would be the lungs themselves (segment {lungs!r}), no tumour left out: "
                      "not computed")
EMPTY_TUMOUR_LUNGS_FIX = "{give}; for the whole lungs, segment {lungs!r}"
EMPTY_TUMOUR_GIVE = "give the mask that holds the tumour (or the segment / label of it that holds voxels)"


def empty_tumour_give(tumour_structures=None, named: str | None = None) -> str:
    """How to give a tumour that holds voxels, in the words of the empty one's input (:func:`tumour_words`): its
    RTSTRUCT structures, lungai's automatic tumour (``named``: ``cohort``'s segmentation), else a mask
    (:data:`EMPTY_TUMOUR_GIVE`)."""
    if tumour_structures:
        listed = " + ".join(repr(n) for n in tumour_structures)
        return (f"contour the tumour in {listed} in the RTSTRUCT (or export the RTSTRUCT again), or choose the "
                "structure that holds it")
    if named:
        return ("contour the tumour as a GTV in the patient's RTSTRUCT (used in place of the automatic tumour), or "
                "segment it with `lungai segment --seed-point` and check the result")
    return EMPTY_TUMOUR_GIVE


def empty_tumour_lungs_error(empty: str, derived: str = "lungs_minus_tumour", lungs: str = "lungs",
                             give: str = EMPTY_TUMOUR_GIVE) -> str:
    """Why the lungs minus an empty tumour (``empty``: "the tumour mask t.nii.gz is empty (no voxel)") are not computed:
    segment ``derived`` would be segment ``lungs`` under another name (:data:`EMPTY_TUMOUR_LUNGS`); ``give``: how to
    give the tumour, in the words of its input."""
    return str(InputError(empty + EMPTY_TUMOUR_LUNGS.format(derived=derived, lungs=lungs),
                          EMPTY_TUMOUR_LUNGS_FIX.format(give=give, lungs=lungs)))


# a tumour lying wholly outside the lungs (a nodal / mediastinal GTV; lung contours drawn to exclude the GTV, as
# LUNG1-003's) leaves nothing out of them: segment 'lungs_minus_tumour' equals the lungs - computed, but said (QA
# outsidelungs65: no word).  The Lung Radiomics panel / console say it in their words (nodes.derived_lung_masks).
TUMOUR_OUTSIDE_LUNGS = ("{tumour} {does} not overlap the lungs (no voxel of {it} in {lungs}), so segment {derived!r} "
                        "equals the lungs: nothing is left out of them (a nodal / mediastinal tumour, or lung "
                        "contours drawn to exclude it)")


def tumour_outside_lungs_note(tumour: str, derived: str = "lungs_minus_tumour", lungs=("lungs",),
                              several: bool = False) -> str:
    """The note of a tumour (``tumour``: "the tumour mask t.nii.gz"; ``several``: the tumour segments ... named in the
    plural) with no voxel in the lungs (the segments ``lungs``, joined): segment ``derived`` equals them
    (:data:`TUMOUR_OUTSIDE_LUNGS`)."""
    lungs = list(lungs)
    named = f"segment{'s' if len(lungs) > 1 else ''} " + " + ".join(repr(n) for n in lungs)
    return TUMOUR_OUTSIDE_LUNGS.format(tumour=tumour, derived=derived, lungs=named, does="do" if several else "does",
                                       it="them" if several else "it")


MAP_RIGHT, MAP_LEFT = "label 1 of the lung map, or R of FILE#R,L", "label 2, or L of FILE#R,L"
SWAPPED_MAP_FIX = ("relabel the lung map as `lungai lungs` writes it (1 = right lung, 2 = left lung); for the lungs of "
                   "another map give its labels right then left (FILE#R,L: swap the two numbers); if the labels are "
                   "right, the CT's orientation (its header's direction) is wrong")
# one lung alone in a lung map, on the other side (lungai.lungs.check.lung_sides_problem): a mask of one lung exported
# alone as label 1 is read as the right lung (QA radiomics71: LUNG1-003's left lung computed as right_lung)
ONE_LUNG_MAP_FIX = ("a lung label map is 1 = right lung, 2 = left lung: relabel this lung to its side's label (a mask "
                    "of the left lung alone as label 2), or give both lungs in one map (their masks joined, or "
                    "`lungai lungs`'s); if the label is right, the CT's orientation (its header's direction) is wrong")
SWAPPED_NAMES_FIX = ("give each lung its side's name (swap the labels of --label right_lung=N / left_lung=N, or of "
                     "the manifest's label column; a DICOM SEG: rename its segments); if the names are right, the "
                     "CT's orientation (its header's direction) is wrong")


def _check_sides(out: dict, right_name: str, left_name: str, right, left, reference: sitk.Image, errors: dict,
                 right_what: str, left_what: str, fix: str, one_fix: str | None = None) -> None:
    """Fail the segments ``right_name`` / ``left_name`` (those of ``out``) when the right lung lies on the patient's
    left of the left lung (:func:`lungai.lungs.check.lung_sides_problem`): their features would be of the other lung.
    The other segments (both lungs, the tumour) do not depend on the sides and go on.  One lung alone on the other
    side of the body's centre fails its own segment (the other is empty), with ``one_fix`` (default ``fix``)."""
    from lungai.lungs.check import lung_sides_problem

    if right_name not in out and left_name not in out:
        return
    problem = lung_sides_problem(right, left, reference, right_what, left_what)
    if problem:
        lone = np.asarray(right).any() != np.asarray(left).any()
        names = ((right_name if np.asarray(right).any() else left_name,) if lone else (right_name, left_name))
        for name in names:
            if out.pop(name, None) is not None:
                errors[name] = str(InputError(problem, (one_fix or fix) if lone else fix))


def segments_from_phantom_labels(labels_img: sitk.Image, reference: sitk.Image, tumour_side: str | None = None,
                                 names=None, errors: dict | None = None) -> dict:
    """Standard segments from a :mod:`lungai.synthetic` label map (tumour kept inside its lung)."""
    from lungai.synthetic import labels as L

    errors = {} if errors is None else errors
    labels_img = on_grid(reference, labels_img, "label map")
    arr = sitk.GetArrayFromImage(labels_img)
    tumour = L.tumour_mask(arr)
    if tumour_side is None and tumour.any():
        # The side whose lung label borders the tumour most (tumour shifted by up to 2 voxels in x).
        near = np.zeros_like(tumour)
        for shift in (-2, -1, 1, 2):
            near |= np.roll(tumour, shift, axis=2)
        side_votes = {s: int((arr[near] == v).sum()) for s, v in (("right", L.RIGHT_LUNG), ("left", L.LEFT_LUNG))}
        tumour_side = max(side_votes, key=side_votes.get)
    lungs = L.lung_truth(arr, tumour_side)
    return _select(standard_masks(tumour, lungs["right"], lungs["left"]), names, reference, errors)


def named_labels(labels, seg_names: dict) -> list | None:
    """The label items of a mask whose labels have names (a DICOM SEG's SegmentLabels, :func:`lungai.io.read_mask`'s
    ``names``): none given -> every named label as ``name=N``; a bare ``N`` -> ``name=N`` with label N's name;
    ``name=N`` (the user's name) kept.  Without names: ``labels`` as given."""
    if not seg_names:
        return list(labels) if labels else None
    if not labels:
        return [f"{n}={v}" for v, n in seg_names.items()]
    return [f"{seg_names[int(str(item).strip())]}={int(str(item).strip())}"
            if str(item).strip().isdigit() and int(str(item).strip()) in seg_names else item for item in labels]


def segments_from_mask_file(path, reference: sitk.Image, labels=None, errors: dict | None = None,
                            absent: set | None = None, lung_names: list | None = None,
                            one_lesion: dict | None = None) -> dict:
    """The segments of a mask file (``lungai radiomics --mask``, ``radiomics-batch``'s ``mask`` column: one rule for
    both): read onto ``reference``'s grid (:func:`lungai.io.read_mask`), one segment per label
    (:func:`segments_from_labels`).  A DICOM SEG's segments are named by their SegmentLabel ("Right lung", "Tumour";
    :func:`named_labels`), so a lung segment is recognised as a lung by its name and computed on lungai's lung grid
    (:func:`lungai.segment_roles.is_lung`), by either command; a segment whose label names no role ("Segment_2") by
    its terminology code (:func:`coded_lungs`, the rule of ``--lungs`` / ``--tumour``, said in a note): ``lung_names``
    gets those segments (for :func:`lungai.radiomics.extract.extract`'s lung grid), and their sides are checked as
    a named right / left lung's (QA segfollow63: a SEG's "Segment_2" / "Segment_3" coded as the right / left lung was
    computed on the CT's grid, "Lung_R" / "Lung_L" on the 2 mm lung grid)."""
    from lungai.dicom.masks import as_typed, typed_file
    from lungai.io import read_mask

    seg_names: dict = {}
    mask = read_mask(path, reference=reference, names=seg_names)
    mapping = _code_mapping(path, seg_names.values(), note=True) if seg_names else None
    # the file as typed, a manifest's cell as written (QA seginput64: "mask /abs/sub/../zero.nrrd has no labelled ...")
    shown = as_typed(typed_file(path))
    out = segments_from_labels(mask, reference, named_labels(labels, seg_names), errors=errors, what=f"mask {shown}",
                               absent=absent, mapping=mapping, seg_names=seg_names, seg_file=shown,
                               one_lesion=one_lesion)
    if lung_names is not None and mapping:
        lung_names.extend(coded_lungs(path, out, mapping))
    return out


def mask_segments_named(segs: dict, errors: dict, names, mask, case: str | None = None,
                        absent: set | None = None) -> dict:
    """The segments of a mask file that ``--segments`` names (``errors`` kept for those only) - the one rule of
    ``lungai radiomics --mask`` and of radiomics-batch's ``mask`` rows.  A name the mask does not give is refused,
    naming those it gives and how to name a label (QA radfind66: ``--mask lung1_label.nrrd --segments tumor``
    computed label_1, exit 0).  In a batch (``case`` given) the names apply to every row: a row's mask lacking some
    of them has those in ``errors`` and ``absent`` (noted, as a label the patient's mask lacks), a row's mask giving
    none of them is refused, naming the case (QA radfollow66: ``radiomics-batch m.csv --segments tumor`` computed
    every mask row's label_1, exit 0)."""
    given = [*segs, *(n for n in errors if n not in segs)]
    unknown = [n for n in names if n not in given]
    shown = " ".join(unknown)
    if unknown and (case is None or len(unknown) == len(list(names))):
        where = f"--mask {mask}" if case is None else f"case {case}'s mask {mask}"
        label_fix = (f"name a label with --label {unknown[0]}=N" if case is None
                     else f"name a label in the row's label cell as {unknown[0]}=N")
        raise InputError(f"--segments {shown}: no such segment of {where} (its segments: {', '.join(given)})",
                         f"name segments of the mask, or {label_fix} (N: its label value), or leave --segments out "
                         "for all of them" + ("" if case is None else ", or remove the row"))
    for n in [n for n in errors if n not in names]:
        del errors[n]
    for n in unknown:
        errors[n] = f"{n} is not a segment of the mask {mask} (its segments: {', '.join(given)})"
        if absent is not None:
            absent.add(n)
    if absent is not None:
        absent.intersection_update(errors)
    return {n: segs[n] for n in names if n in segs}


def _code_mapping(path, labels, note: bool = False):
    """The roles of the DICOM SEG ``path``'s segments ``labels`` that name none by their label, from their
    terminology codes (:func:`lungai.dicom.seg.with_code_roles`; ``note``: said), or None."""
    from lungai.dicom.seg import with_code_roles

    return with_code_roles(path, [str(n) for n in labels], None, note=note)


def coded_lungs(path, names, mapping=None) -> list[str]:
    """The segments ``names`` (of the DICOM SEG ``path``, by their SegmentLabel) that are lung tissue by their
    terminology codes only (:func:`lungai.dicom.seg.with_code_roles`: "Segment_2" coded as the right lung), not by
    their label: computed on lungai's lung grid as a "Lung_R" is (``lung_names`` of
    :func:`lungai.radiomics.extract.extract` and :func:`lungai.radiomics.settings.with_lung_grid_revision`).  [] for a
    file that is not a SEG.  ``mapping``: the roles already read (:func:`_code_mapping`)."""
    from lungai.segment_roles import lungs_by_role

    names = [str(n) for n in names]
    return lungs_by_role(names, mapping if mapping is not None else _code_mapping(path, names))


def segments_from_labels(mask: sitk.Image, reference: sitk.Image, labels=None, errors: dict | None = None,
                         what: str = "the mask", absent: set | None = None, mapping=None,
                         seg_names: dict | None = None, seg_file: str | None = None,
                         one_lesion: dict | None = None) -> dict:
    """One segment per label value: ``labels`` items are ``N`` or ``name=N``; default every nonzero label.

    A name given with several labels (``gtv=1``, ``gtv=2``) is one segment, the union of its labels
    (e.g. all GTVs); label 0 (the background) and ``=N`` (an empty name) fail their segment with the fix; a label
    missing from the mask fails its segment (its name is also added to ``absent``, for
    ``radiomics-batch``, which notes it rather than counting it as a failure; there, with ``absent`` given, a union
    of which the mask has some labels is the union of those, each label it lacks listed in ``errors`` and ``absent``
    as ``<name> (label N)``).  A mask without any labelled
    voxel (all 0) is refused (``what`` names it in the message).  ``mapping``: segment roles beyond their names (a
    DICOM SEG's terminology codes, :func:`segments_from_mask_file`), for the right / left lung's side check.
    ``seg_names`` / ``seg_file``: the mask is the DICOM SEG ``seg_file`` (as the user gave it), label N its segment
    ``seg_names[N]``: a label missing from it is that segment, empty in the SEG - said so, not as a label to change
    (QA maskinput64: "label 2 is not in the mask (labels present: 1) - use --label 1" for a SEG's empty segment).
    ``one_lesion``: given a dict, filled with {segment: how to give one lesion of it} in the words of ``--label`` /
    the manifest's label column (:func:`lungai.radiomics.extract.parts_note`)."""
    errors = {} if errors is None else errors
    mask = on_grid(reference, mask, "mask")
    arr = sitk.GetArrayFromImage(mask)
    present = [int(v) for v in np.unique(arr) if v != 0]
    seg_names = seg_names or {}
    if not present and seg_names:
        raise InputError(_empty_segments(list(seg_names.values()), seg_file), EMPTY_SEG_FIX)
    if not present:
        raise InputError(f"{what} has no labelled voxel (all 0)",
                         "give the label map of the structures (0 = background, 1, 2, ... = structures)")
    if not labels:
        labels = [str(v) for v in present]
    wanted: dict[str, list[int]] = {}
    background: set = set()
    for item in labels:
        name, _, value = str(item).rpartition("=")
        name = name.strip()         # "tumour = 1" (a manifest cell, a shell quote): segment "tumour", not " tumour "
        try:
            value = int(value)
        except ValueError:
            errors[str(item)] = f"label {item!r} is not an integer (use N or name=N)"
            continue
        if _ and not name.strip():
            errors[str(item)] = (f"label {item!r} has an empty segment name before '='; give the name (name={value}), "
                                 f"or {value} alone for segment label_{value}")
            continue
        if value == 0:
            errors[name or "label_0"] = (f"label 0 is the background (0 = outside every structure), not a segment; "
                                         f"use the structures' labels (present: {', '.join(map(str, present))})")
            background.add(name or "label_0")      # its other labels too: not a segment without its label 0
            continue
        wanted.setdefault(name or f"label_{value}", []).append(value)
    out = {}
    for name, values in wanted.items():
        if name in background:
            continue
        missing = [v for v in dict.fromkeys(values) if v not in present]
        kept = [v for v in dict.fromkeys(values) if v in present]
        if missing and all(v in seg_names for v in missing):     # a SEG's segments that have no voxel
            full = [seg_names.get(v, f"label {v}") for v in present]
            errors[name] = str(InputError(
                _empty_segments([seg_names[v] for v in missing], seg_file)
                + ("" if not kept and [name] == [seg_names[v] for v in missing] else
                   f", so segment {name!r} is empty" if not kept else
                   f", so segment {name!r} would be only {_segment_words(kept, seg_names)}"),
                f"draw the segment in the SEG, or leave it out: choose the segments that hold voxels "
                f"(--label {present[0]} for {full[0]!r}, or the manifest's label column)"))
            if absent is not None:
                absent.add(name)
            continue
        if missing and kept and absent is not None:
            # radiomics-batch: a union ("all GTVs", gtv=1;gtv=2) of which this patient lacks a label is the union of
            # the labels it has (QA radiomics64: LUNG1-002, one GTV, lost its tumour features - the case failed -
            # with the manifest label gtv=1;gtv=2 that LUNG1-003's three GTVs need); the label left out is listed
            # as absent under its own name, so that a label absent from every case is still a wrong label
            for v in missing:
                part = f"{name} (label {v})"
                errors[part] = (f"label {v} is not in the mask (labels present: {', '.join(map(str, present))}): "
                                f"segment {name!r} is the union of label{'s' if len(kept) > 1 else ''} "
                                f"{', '.join(map(str, kept))} only")
                absent.add(part)
            values = kept
        elif missing:
            errors[name] = str(InputError(
                f"label {', '.join(map(str, missing))} {'is' if len(missing) == 1 else 'are'} not in the "
                f"mask (labels present: {', '.join(map(str, present))})",
                f"use a label present in the mask (--label {present[0]}, or the manifest's label column)" if present
                else "give a mask that holds the segment"))
            if absent is not None:
                absent.add(name)
            continue
        out[name] = _to_mask(np.isin(arr, values), reference)
        if one_lesion is not None:
            one_lesion[name] = _one_lesion_of_labels(name, values, seg_names)
    _check_named_sides(out, wanted, arr, reference, errors, mapping)
    return out


def _one_lesion_of_labels(name: str, values: list, seg_names: dict) -> str:
    """How to give one lesion of segment ``name``, the union of the mask's labels ``values`` (``seg_names``: a DICOM
    SEG's segment labels by value), as ``--label`` / the manifest's label column words it."""
    from lungai.dicom.masks import fix_words

    if len(values) > 1:
        each = [f"{name}_{i}={v}" for i, v in enumerate(values, start=1)]
        return ("name each of its labels on its own ("
                + fix_words(" ".join(f"--label {e}" for e in each), f"the label cell {';'.join(each)}") + ")")
    if values[0] in seg_names:
        return f"draw each as its own segment of the SEG (segment {seg_names[values[0]]!r} holds them all)"
    # (the Slicer panel's segments reach here as label 1 of a label map it writes: its notes say it in the words of
    # the user's segment, lungai.scene.results.run_settings_notes)
    return ONE_LABEL_LESIONS.format(label=values[0])


# how to give one lesion of a mask's label holding several (:func:`_one_lesion_of_labels`); the Lung Radiomics panel
# exports each segment as label 1 of a temporary label map and says it of the user's segment instead
# (:data:`SEGMENT_LESIONS`, lungai.scene.results.run_settings_notes; QA segmsg65: the panel said "(label 1 holds them
# all)" of a label map the user never saw - they gave a segmentation node's segment)
ONE_LABEL_LESIONS = "give each its own segment or label in the mask (label {label} holds them all)"
SEGMENT_LESIONS = "draw each as its own segment of the segmentation (segment {name!r} holds them all)"


def tumour_one_lesion(value, parts: dict | None = None, option: str = "--tumour") -> str:
    """How to give one lesion of the tumour read from ``value`` (``--tumour`` / a manifest's tumour cell: ``option``,
    ``tumour`` for the cell) - ``FILE``, ``FILE#N,M`` or a SEG (``parts``: its segments the mask was made of,
    :func:`lungai.dicom.masks.mask_input`'s) - for :func:`lungai.radiomics.extract.parts_note`: the option and file
    the user gave, never a placeholder (QA maskinput64: "e.g. --tumour labels.nii.gz#1" for a SEG's GTV-1 + gtv-2)."""
    from lungai.dicom.masks import SELECTOR, command_word, fix_words, split_selector, typed_file

    file, part = typed_file(value), split_selector(value)[1]

    def word(chosen):
        w = command_word(f"{file}{SELECTOR}{chosen}")
        return fix_words(f"{option} {w}", f"{w} in the {option.lstrip('-')} column")

    if parts:
        labels = list(parts)
        if len(labels) > 1:
            return f"choose one of its segments ({word(labels[0])})"
        return f"draw each as its own segment of the SEG (segment {labels[0]!r} holds them all)"
    labels = [v.strip() for v in part.split(",")] if part else []
    if len(labels) > 1:
        return f"choose one of its labels ({word(labels[0])})"
    if labels:
        return f"give each its own label in the mask (label {labels[0]} holds them all)"
    return f"give each its own label in the mask and choose it after '{SELECTOR}' ({word(1)})"


def structures_one_lesion(option: str, used: list) -> str:
    """How to give one lesion of a segment made of the RTSTRUCT structures ``used`` (``--tumour`` or ``--structure``
    with ``--rtstruct``: ``option``), for :func:`lungai.radiomics.extract.parts_note`."""
    from lungai.dicom.masks import command_word

    if len(used) > 1:
        return f"name one structure ({option} {command_word(used[0])})"
    return f"draw each as its own structure (structure {used[0]!r} holds them all)"


def _segment_words(values, seg_names: dict) -> str:
    return ", ".join(repr(seg_names[v]) if v in seg_names else f"label {v}" for v in values)


EMPTY_SEG_FIX = "draw the segment in the SEG (or export the SEG again), or choose another of its segments"


def _empty_segments(labels, seg_file) -> str:
    """"segment 'Empty' of the SEG seg.dcm is empty (no voxel)": a DICOM SEG's segments that hold nothing."""
    where = f" of the SEG {seg_file}" if seg_file else " of the SEG"
    listed = ", ".join(repr(str(n)) for n in labels)
    return (f"segment {listed}{where} is empty (no voxel)" if len(labels) == 1
            else f"segments {listed}{where} are empty (no voxel)")


def _check_named_sides(out: dict, wanted: dict, arr: np.ndarray, reference: sitk.Image, errors: dict,
                       mapping=None) -> None:
    """The right / left lung segments named by the user or a DICOM SEG (by role: ``right_lung``, ``Lung_R``, ``Right
    lung`` ...; or by a SEG segment's terminology code, ``mapping``; one of each) must lie on their sides
    (:func:`_check_sides`)."""
    from lungai.segment_roles import segment_role

    sides = {role: [n for n in out if segment_role(n, mapping) == role] for role in ("right_lung", "left_lung")}
    if len(sides["right_lung"]) != 1 or len(sides["left_lung"]) != 1:
        return
    (right,), (left,) = sides["right_lung"], sides["left_lung"]

    def what(name):
        values = wanted[name]
        return f"segment {name!r}, label{'s' if len(values) > 1 else ''} {', '.join(map(str, values))}"

    _check_sides(out, right, left, np.isin(arr, wanted[right]), np.isin(arr, wanted[left]), reference, errors,
                 what(right), what(left), SWAPPED_NAMES_FIX)
