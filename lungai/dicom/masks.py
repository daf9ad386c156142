"""Masks for the commands that take one: a file (NIfTI / NRRD / MHA label map or DICOM SEG) or an RTSTRUCT structure.

A structure is given by name (``GTV-1``; case does not matter) or by role (``role:gtv``, ``role:lungs``,
``role:lungs_minus_gtv`` ...; see :mod:`lungai.dicom.roles`).  The CLI options: ``--rtstruct FILE|FOLDER`` (a folder: its RTSTRUCT,
:func:`lungai.dicom.discover.find_rtstruct`) with
``--structure NAME|role:ROLE``, and every mask option (``--tumour``, ``--lungs``, ``--gtv``) takes a file or,
with ``--rtstruct``, a structure.

A file may name the part of it to take after ``#`` (:func:`split_selector`): a segment of a DICOM SEG by label or
role (``results.seg.dcm#Tumour``, ``results.seg.dcm#role:gtv``; for a lung label map ``FILE#RIGHT,LEFT``) or one
label of a label map (``labels.nii.gz#2``; for ``--lungs`` two, right then left: ``labels.nii.gz#3,4``).  Without it, a SEG with several segments gives each mask option the
segments of its role (:data:`OPTION_ROLES`), the same roles as for RTSTRUCT structures, so lungai's own
``results.seg.dcm`` (tumour inside the lungs: overlapping segments) can be read back.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from lungai.errors import InputError

if TYPE_CHECKING:                 # the CLI parser imports this module: SimpleITK only where it is used
    import SimpleITK as sitk

ROLE_PREFIX = "role:"
SELECTOR = "#"
# the role a mask option takes from a SEG with several segments ("lungs" with a label map: right 1, left 2)
OPTION_ROLES = {"tumour": "gtv", "gtv": "gtv", "lungs": "lungs"}


def split_selector(value) -> tuple[Path, str | None]:
    """``"results.seg.dcm#Tumour"`` -> (Path("results.seg.dcm"), "Tumour"); a path that exists as given (or has no
    ``#``) -> (path, None)."""
    text = str(value)
    head, sep, tail = text.rpartition(SELECTOR)
    if not sep or Path(text).exists() or not Path(head).exists():
        return Path(text), None
    return Path(head), tail.strip() or None


def typed_file(value) -> str:
    """The file of a mask value (``FILE`` or ``FILE#PART``, :func:`split_selector`) as the user typed it, for the
    messages that quote it (:func:`as_typed`, :func:`command_word`): ``./seg.dcm#Nodule`` -> ``./seg.dcm``, not the
    ``seg.dcm`` of its :class:`pathlib.Path` (QA seginput64: "seg.dcm has no segment 'Nodule' ... e.g.
    seg.dcm#GTV-1" for a value typed ``./seg.dcm#Nodule``)."""
    text = str(value)
    path = split_selector(text)[0]
    head, sep, _ = text.rpartition(SELECTOR)
    return head if sep and str(path) != str(Path(text)) else text


def parse_spec(spec: str) -> tuple[str | None, str | None]:
    """``"role:gtv"`` -> (None, "gtv"); ``"GTV-1"`` -> ("GTV-1", None)."""
    spec = str(spec).strip()
    if spec.lower().startswith(ROLE_PREFIX):
        return None, spec[len(ROLE_PREFIX):].strip().lower()
    return spec, None


def structure_mask(rtstruct, ct: sitk.Image, spec: str, mapping=None, allow_gaps: bool = False
                   ) -> tuple[sitk.Image, list[str]]:
    """The mask of one structure (by name) or role, and the structure names used."""
    from lungai.dicom.rtstruct import read_rtstruct, read_rtstruct_role

    name, role = parse_spec(spec)
    if role is not None:
        return read_rtstruct_role(rtstruct, ct, role, mapping, allow_gaps=allow_gaps)
    masks = read_rtstruct(rtstruct, ct, names=[name], allow_gaps=allow_gaps, mapping=mapping)
    (found, mask), = masks.items()
    return mask, [found]


def structure_names(used) -> str:
    """The structures a mask was made of, in one text (their union when several): ``GTV-1+gtv-2+gtv-3``, as cohort's
    provenance (``RTSTRUCT GTV-1+gtv-2``) and the ``structures`` column of radiomics' ``_settings.csv`` name them."""
    return "+".join(used)


def lung_labels(rtstruct, ct: sitk.Image, spec: str = "role:lungs", mapping=None, allow_gaps: bool = False,
                sides: list | None = None) -> tuple[sitk.Image, list[str]]:
    """A lung label map (1 = right, 2 = left, as ``lungai lungs`` writes) from the RTSTRUCT's right and left lung.

    ``spec``: ``role:lungs`` (the structures with roles lung_right and lung_left) or ``"RIGHT_NAME,LEFT_NAME"``.
    ``sides``: given a list, the right lung's and the left lung's structure names are appended (two lists).
    """
    from lungai.dicom.rtstruct import list_structures

    right_spec, left_spec = _lung_specs(spec, "--lungs Lung_R,Lung_L", list_structures(rtstruct), mapping,
                                        "role:lungs")
    if right_spec == "role:lung_right":     # two structures of one side: refused naming both lungs to choose
        from lungai.dicom.roles import check_sides
        from lungai.dicom.rtstruct import contoured_structures

        check_sides(contoured_structures(rtstruct)[0], mapping)
    right, rn = structure_mask(rtstruct, ct, right_spec, mapping, allow_gaps)
    left, ln = structure_mask(rtstruct, ct, left_spec, mapping, allow_gaps)
    if sides is not None:
        sides.extend([rn, ln])
    return lung_label_map(right, left), rn + ln


def _lung_specs(spec: str, example: str, names=(), mapping=None, by_role: str = "role:lungs",
                cell: str | None = None) -> tuple[str, str]:
    """The right and left lung specs of a lung label map spec (``role:lungs`` or ``"RIGHT,LEFT"``).

    ``names``: the structure names / segment labels the spec chooses from: a name holding a comma ("Lung, R") named
    in ``spec`` is refused as such - the comma separates the right from the left lung, so the two names cannot be
    told apart - with the route by role (``by_role``: the value choosing the lungs by role, ``role:lungs`` or
    ``SEG#role:lungs``), through a --structure-map line when the name has no lung role of its own (QA: ``--lungs
    'Lung, R,Lung-Left'`` was refused as "needs the right and the left lung").  ``cell``: the value as the user gave
    it (``SEG#RIGHT,LEFT``), for a manifest's problem naming its cell (:func:`value_words`)."""
    name, role = parse_spec(spec)
    if role is not None and role != "lungs":
        raise InputError(f"a lung label map is built from the right and left lung, not from role {role!r}",
                         f"use role:lungs, or name both: {example}")
    if role is not None:
        return "role:lung_right", "role:lung_left"
    commas = [str(n) for n in names if "," in str(n) and str(n).strip().lower() in name.lower()]
    if commas:
        from lungai.dicom.roles import map_line, structure_role

        text = name.strip().lower()
        side = {n: "lung_right" if text.startswith(n.strip().lower()) else "lung_left" for n in commas}
        unmapped = [n for n in commas if structure_role(n, mapping) != side[n]]
        lines = ", ".join(map_line(n, side[n]) for n in unmapped)
        raise InputError(
            f"{value_words('--lungs', spec, cell)}: the name{'s' if len(commas) > 1 else ''} "
            f"{', '.join(repr(n) for n in commas)} "
            f"hold{'' if len(commas) > 1 else 's'} a comma, and here a comma separates the right lung's name from "
            "the left lung's, so the two names cannot be told apart",
            # a manifest's lungs column (radiomics-batch has no --lungs) takes the value alone
            "choose the lungs by role: " + fix_words(f"--lungs {by_role}", f"{by_role} in the lungs column") + (
                f" ({', '.join(repr(n) for n in commas)} "
                + ("have their lung roles" if len(commas) > 1 else "has its lung role")
                + (": by name, or by the SEG's segment terminology" if SELECTOR in by_role else " by name") + ")"
                if not unmapped else
                f" with a --structure-map file giving {', '.join(repr(n) for n in unmapped)} its role ({lines})"
                if SELECTOR not in by_role else
                _lungs_by_number(names, side, by_role, unmapped, lines)))
    parts = [p.strip() for p in name.split(",")]
    if len(parts) != 2:
        raise InputError(f"{value_words('--lungs', spec, cell)} needs the right and the left lung",
                         f"give role:lungs, or both names separated by a comma: {example}")
    return parts[0], parts[1]


def _lungs_by_number(names, side: dict, by_role: str, unmapped: list, lines: str) -> str:
    """The fix of a SEG's lungs named with a comma and no lung role by name: the lungs by their segment numbers,
    right then left (``SEG#2,3``: :func:`segment_by_number`), or a --structure-map line where the command takes one
    (before: "after renaming the segment (no comma) and exporting the SEG again")."""
    numbers = {str(n): i for i, n in enumerate(names, start=1)}
    right = [numbers[n] for n, s in side.items() if s == "lung_right" and n in numbers]
    left = [numbers[n] for n, s in side.items() if s == "lung_left" and n in numbers]
    # by_role: the SEG's value choosing the lungs by role as a command word (``'My scans/x.seg.dcm#role:lungs'``)
    example = (by_role.replace("role:lungs", f"{right[0]},{left[0]}") if len(right) == 1 and len(left) == 1 else
               by_role.replace("role:lungs", "R,L") + f" with R and L the segments' numbers (its segments: "
               f"{segment_list(names)})")
    return (f" with a --structure-map file giving {'them their roles' if len(unmapped) > 1 else 'it its role'} "
            f"({lines}) where the command takes --structure-map; else the lungs by their segment numbers, the right "
            f"lung's then the left lung's: {example}")


def select_segments(masks: dict, spec: str, mapping=None, lungs: bool = False, source: str | None = None,
                    sides: list | None = None) -> tuple[sitk.Image, list[str]]:
    """The mask of ``spec`` (a segment label, case-insensitive, or ``role:ROLE``) from {segment label: mask}, e.g.
    the segments of a DICOM SEG, and the labels used (labels differing only in letter case: refused when the choice
    takes one but not the others, :func:`lungai.dicom.labels.check_case_groups`; role:gtv takes them all);
    ``lungs``: a lung label map (1 right, 2 left) from the right and left lung (``role:lungs`` or ``"RIGHT,LEFT"``), or - ``role:lungs`` with no right / left lung segment
    but one segment of role lungs (the "Lungs" of ``lungai dicom-export``) - that segment as a binary lung map
    (value 1).  ``source``: the SEG file as the user gave it, each fix naming it ``FILE#PART`` as a command word
    (:func:`command_word`); None: "the SEG" (``SEG#PART`` in a fix).  ``sides``: given a list, with ``lungs`` and a
    right and a left lung, the right lung's and the left lung's labels are appended (two lists)."""
    import SimpleITK as sitk

    from lungai.dicom.roles import AmbiguousRole, describe_roles, mask_for_role, required_names

    example = _part_word(source, segment_choice(masks, next(iter(masks), "LABEL")))
    named = as_typed(source) if source else "the SEG"
    if lungs:
        from lungai.dicom.roles import find_role

        sided = find_role(masks, "lung_right", mapping) + find_role(masks, "lung_left", mapping)
        both = find_role(masks, "lungs", mapping)
        if parse_spec(spec)[1] == "lungs" and not sided and len(both) == 1:
            # one segment of both lungs ("Lungs" of a binary lung mask, as dicom-export writes it): a binary lung
            # map, value 1 (as a binary mask file is read)
            return sitk.Cast(masks[both[0]] > 0, sitk.sitkUInt8), both
        right_spec, left_spec = _lung_specs(spec, _part_word(source, "RIGHT,LEFT"), masks, mapping,
                                            _part_word(source, "role:lungs"),
                                            f"{source}{SELECTOR}{spec}" if source else None)
        try:
            right, rn = select_segments(masks, right_spec, mapping, source=source)
            left, ln = select_segments(masks, left_spec, mapping, source=source)
        except AmbiguousRole as exc:   # two segments of one lung: chosen by label, the other lung's named too
            exc.pick = tuple(exc.pick[:1]) + tuple(find_role(masks, "lung_left" if exc.role == "lung_right" else
                                                             "lung_right", mapping)[:1])
            if exc.role == "lung_left":
                exc.pick = exc.pick[::-1]
            raise exc.with_fix("seg", source or "SEG") from None
        except InputError as exc:   # the fix names lung segments, never another segment (the tumour)
            raise InputError(exc.problem + ("" if sided or not both else
                                            f" (and {len(both)} segments of both lungs: {', '.join(both)})"),
                             f"choose the right and the left lung's segments by their labels after '{SELECTOR}': "
                             f"{_part_word(source, 'RIGHT,LEFT')} (a segment of both lungs, role lungs, is taken by "
                             "itself when it is the only lung segment)") from None
        if sides is not None:
            sides.extend([rn, ln])
        return lung_label_map(right, left), rn + ln
    from lungai.dicom.labels import check_case_groups, matching_labels

    name, role = parse_spec(spec)
    if role is not None:
        try:
            mask, used = mask_for_role(masks, role, mapping), required_names(role, masks, mapping)
        except AmbiguousRole as exc:   # chosen by label after '#', wherever a SEG is given (no --structure)
            raise exc.with_fix("seg", source or "SEG") from None
        except InputError:
            from lungai.dicom.roles import structure_role

            # the example a segment of no role, never one of another (QA lungs71: "--gtv lungs.seg.dcm" was told
            # "e.g. 'lungs.seg.dcm#Right lung'", a lung as the GTV)
            free = [label for label in masks if structure_role(label, mapping) is None]
            raise InputError(f"no segment of {named} has role {role!r}; its segments: "
                             f"{describe_roles(masks, mapping)}",
                             f"choose the segment by its label after '{SELECTOR}', e.g. "
                             f"{_part_word(source, segment_choice(masks, free[0]))}" if free else
                             f"give the mask (label map or DICOM SEG) that holds a segment of role {role!r}: each "
                             f"segment of {named} has another role") from None
        check_case_groups(list(masks), used, named, role=role, mapping=mapping)   # one of "Lung_R" / "lung_r"
        return mask, used
    found = matching_labels(masks, name) or segment_by_number(masks, name) or _same_role(masks, name, mapping, source)
    if not found:
        same = _of_role(masks, name, mapping)
        note = (f" ({', '.join(same)} {'has' if len(same) == 1 else 'have'} its role under another name: a structure "
                "of another image, side, lobe, node or number - or one of several - is never taken in its place)"
                if same else "")
        raise InputError(f"{named} has no segment {name!r}; its segments: {segment_list(masks)}{note}",
                         f"choose one of its segment labels after '{SELECTOR}', e.g. "
                         + (_part_word(source, segment_choice(masks, same[0])) if same else example)
                         + _by_number(masks))
    check_case_groups(list(masks), found[:1], named, mapping=mapping)   # "GTV" and "gtv": which one is meant?
    return sitk.Cast(masks[found[0]] > 0, sitk.sitkUInt8), found[:1]


def swapped_seg_fix(source, right: str, left: str) -> str:
    """The fix of a DICOM SEG's lungs whose right lung's segment ``right`` lies on the patient's left of the left
    lung's ``left`` (:func:`lungai.lungs.check.lung_sides_problem`): the two segments taken the other way round, by
    their numbers (:func:`segment_by_number`: a label may hold a comma, which separates the lungs after '#'), as
    ``--lungs SEG#L,R`` - within :func:`manifest_fixes` the lungs column's cell -, or the segments renamed."""
    from lungai.dicom.seg import seg_segment_labels

    labels = seg_segment_labels(source) or []
    numbers = {label: str(i) for i, label in enumerate(labels, start=1)}
    if right in numbers and left in numbers:
        word = command_word(f"{typed_file(source)}{SELECTOR}{numbers[left]},{numbers[right]}")
        take = ("if the segments are named the other way round, take them so, the right lung's first: "
                + fix_words(f"--lungs {word}", f"{word} in the lungs column")
                + f" (segment {numbers[left]} {left!r} as the right lung, {numbers[right]} {right!r} as the left), "
                "or rename the two segments and export the SEG again")
    else:       # a side made of several segments: renamed
        take = "if the segments are named the other way round, rename them and export the SEG again"
    return take + "; if the names are right, the CT's orientation (its header's direction) is wrong"


def segment_by_number(masks: dict, name) -> list[str]:
    """A SEG's segment chosen by its number (1, 2, ... in the SEG's order: its SegmentNumber, as ``lungai radiomics
    --label N`` and radiomics-batch's label column number them) when no segment has ``name`` as its label: the way to
    a segment whose label holds a comma, which separates the right lung from the left one in ``SEG#RIGHT,LEFT`` and
    the values of a manifest's cell (QA demo62: "GTV, primary", "Contour, 7" - only renaming the segments helped)."""
    text = str(name).strip()
    return [list(masks)[int(text) - 1]] if text.isdigit() and 1 <= int(text) <= len(masks) else []


def segment_list(masks: dict) -> str:
    """A SEG's segments for a message: their labels, or - a label holding a comma - each with its number and
    quoted (``1 'GTV, primary', 2 'Contour, 7'``), so that they can be told apart."""
    if not any("," in str(label) for label in masks):
        return ", ".join(masks) or "none"
    return ", ".join(f"{i} {str(label)!r}" for i, label in enumerate(masks, start=1))


def segment_choice(masks: dict, label: str) -> str:
    """How to choose segment ``label`` after '#': its label, or its number when the label holds a comma."""
    return str(list(masks).index(label) + 1) if "," in str(label) and label in masks else str(label)


def _by_number(masks: dict) -> str:
    return ("; a segment whose label holds a comma by its number (1, 2, ... in the SEG's order)"
            if any("," in str(label) for label in masks) else "")


def _same_role(masks: dict, name: str, mapping, source: str | None) -> list[str]:
    """A ``#name`` selector with no segment of that label: the one segment of the same role, with a note naming it
    ("results.seg.dcm#Tumor" - Slicer's name - finds the "Tumour" of ``lungai segment``'s SEG, "#Lung_R" the
    "Lung-Right" of a clinical SEG), only when the selector and that segment are both bare names of the role
    (:func:`lungai.dicom.roles.bare_role`).  None (the caller refuses, naming the segments) when the name has no role
    or a qualifier - an image, side, lobe, station, number ("GTV_CT", "GTV_L", "GTVn2", "GTV-1": never another GTV in
    its place) - or when zero or several segments have its role or the one segment has a qualifier.  A tumour name on
    a SEG with nodal GTVs as well is refused here: role:gtv takes them all."""
    import warnings

    from lungai.dicom.roles import bare_role, role_group, structure_role
    from lungai.errors import InputNote

    role = bare_role(name, mapping)
    if role is None:
        return []   # no role, or a qualified name (GTV_CT, GTV_L, GTVn2, GTV-9): never another segment in its place
    roles = {label: structure_role(label, mapping) for label in masks}
    same = [label for label, r in roles.items() if role_group(r) == role]
    nodes = [label for label, r in roles.items() if r == "gtv_node"]
    if role == "gtv" and nodes:
        raise InputError(f"{source or 'the SEG'} has no segment {name!r}, and its GTV segments are "
                         f"{', '.join(same + nodes)} (nodal GTVs among them): which one {name!r} means is not clear",
                         f"choose a segment by its label after '{SELECTOR}' ({_part_word(source, (same + nodes)[0])}), "
                         f"or take all the GTVs with {_part_word(source, 'role:gtv')}")
    if len(same) != 1 or bare_role(same[0], mapping) != role:
        return []
    warnings.warn(f"{source or 'the SEG'} has no segment {name!r}; using {same[0]!r}, its one segment of the same role "
                  f"({role}) - name it exactly ({_part_word(source, same[0])}) to silence this note",
                  InputNote, stacklevel=3)
    return same


def _of_role(masks: dict, name: str, mapping) -> list[str]:
    """The segments of the role group of ``name`` (:func:`lungai.dicom.roles.role_group`), for the message of a
    refused ``#name``: another name of the role does not stand for them."""
    from lungai.dicom.roles import role_group, structure_role

    role = role_group(structure_role(name, mapping))
    return [label for label in masks if role is not None and role_group(structure_role(label, mapping)) == role]


def lung_label_map(right: sitk.Image, left: sitk.Image) -> sitk.Image:
    """Right and left lung masks as one label map: 1 = right, 2 = left (right wins where they overlap)."""
    import SimpleITK as sitk

    from lungai.io import copy_geometry

    r, l = sitk.GetArrayViewFromImage(right) > 0, sitk.GetArrayViewFromImage(left) > 0
    labels = np.zeros(r.shape, dtype=np.uint8)
    labels[r] = 1
    labels[l & ~r] = 2
    return copy_geometry(labels, right)


def mask_input(value, ct: sitk.Image, rtstruct=None, mapping=None, what: str = "tumour", lungs: bool = False,
               allow_gaps: bool = False, used: list | None = None, parts: dict | None = None,
               option: str | None = None, names: dict | None = None) -> sitk.Image:
    """A mask option's value: a file on the CT grid (label map or DICOM SEG, ``FILE#PART`` to choose a part), or with
    ``rtstruct`` a structure / role.

    ``what``: the option (``tumour``, ``gtv``, ``lungs``): a SEG with several segments gives the segments of its
    role (:data:`OPTION_ROLES`), and a tumour / GTV label map with several labels is refused unless one is chosen.
    ``lungs``: the value is a lung label map (1 right, 2 left); a structure spec then names both lungs.
    ``used``: given a list, the RTSTRUCT structures read are appended (with ``lungs``: the right lung's and the left
    lung's names, two lists); nothing for a file.  ``parts``: given a dict, a DICOM SEG's segments the mask was made
    of are put in it, {SegmentLabel: 0/1 mask} (:func:`lungai.io.read.read_mask`); ``names``: given a dict, a DICOM
    SEG's segment labels by label value (with ``lungs``: {1: the right lung's, 2: the left lung's}, for
    :func:`lungai.radiomics.segments.segments_from_masks`' side check).  ``option``: how messages name
    the input (``--tumour``: ``--{what}`` by default; ``tumour`` for a ``radiomics-batch`` manifest's column, which
    has no such option: its fix is the cell's value alone, as :func:`lung_map_input`'s).
    """
    from lungai.io import read_mask

    if rtstruct is not None:    # a folder given as the structure (its RTSTRUCT's, an output folder): refused as such
        from lungai.paths import check_structure_values

        check_structure_values([(option or ("--lungs" if lungs else f"--{what}"), value)])
    p, part = split_selector(value)
    if p.is_file() or rtstruct is None:
        role = OPTION_ROLES["lungs" if lungs else what] if lungs or what in OPTION_ROLES else None
        mask = read_mask(value, reference=ct, select=f"{ROLE_PREFIX}{role}" if role else None, mapping=mapping,
                         lungs=lungs, parts=parts, names=names)
        if role == "gtv" and part is None:
            option, typed = option or f"--{what}", typed_file(value)
            check_one_label(mask, f"{option} {as_typed(typed)}", what, lambda n: (
                f"choose the {what}'s label after '{SELECTOR}', e.g. "
                + (f"{option} {command_word(f'{typed}{SELECTOR}{n}')}" if option.startswith("--")
                   else f"{command_word(f'{typed}{SELECTOR}{n}')} in the {option} column")))
        return mask
    if lungs:
        return lung_labels(rtstruct, ct, value, mapping, allow_gaps, sides=used)[0]
    mask, names = structure_mask(rtstruct, ct, value, mapping, allow_gaps)
    if used is not None:
        used.extend(names)
    return mask


def command_word(text) -> str:
    """``text`` (a path as the user gave it, ``FILE#PART``) as one word of a command line that works as written, for
    a message's fix: as it is where a shell takes it so (``p1/seg.dcm#2``), else quoted (``'My scans/seg.dcm#2'``).
    Files are named by their path as given, never by their name alone: ``seg.dcm#2`` does not work from the user's
    folder when the SEG is ``p1/seg.dcm``, and tells nothing when every patient's folder holds a ``seg.dcm``.

    While a ``radiomics-batch`` manifest's case is read (:func:`manifest_fixes`) it is that manifest's cell instead
    (:func:`manifest_cell`): no shell quotes, double quotes around a comma, the path as the manifest writes it."""
    import re
    import shlex

    folder = _MANIFEST_FOLDER.get()
    if folder is not None:
        return manifest_cell(_as_in_manifest(str(text), folder))
    text = str(text)
    return text if re.fullmatch(r"[\w@%+=:,./-][\w@%+=:,./#-]*", text) else shlex.quote(text)


def manifest_cell(text) -> str:
    """``text`` as a CSV manifest's cell that reads back as ``text``: in double quotes (a ``"`` doubled) when it
    holds a comma, a double quote or a line break (``"seg.dcm#GTV, primary"``, ``"labels.nii.gz#3,4"``), else as it
    is - never in a shell's single quotes (``My scans/seg.dcm#2``: a CSV cell keeps its spaces)."""
    text = str(text)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


# the folder of the radiomics-batch manifest whose case is being read (None: the fixes are command-line words)
_MANIFEST_FOLDER: "ContextVar[Path | None]" = ContextVar("lungai_manifest_folder", default=None)
# that case's row, as the messages name it: "manifest m.csv line 2"
_MANIFEST_ROW: "ContextVar[str | None]" = ContextVar("lungai_manifest_row", default=None)
# that row's path cells as written, by the path the case reads ({"/abs/sub/../seg.dcm#2": "../seg.dcm#2", and its
# file alone: {"/abs/sub/../seg.dcm": "../seg.dcm"}): :func:`_as_in_manifest`
_MANIFEST_CELLS: "ContextVar[dict]" = ContextVar("lungai_manifest_cells", default={})


@contextmanager
def manifest_fixes(manifest, line: int | None = None, cells: dict | None = None):
    """Within it, the fixes of the messages (:func:`command_word`, :func:`fix_words`) are worded for a cell of the
    CSV manifest ``manifest`` (``lungai radiomics-batch``: the shared readers' messages suggest ``FILE#PART``
    values): one rule for every message, rather than each caller rewording the fixes it catches.  ``line``: the
    line of the case's row in the manifest, named by the problems that quote one of its cells
    (:func:`value_words`).  ``cells``: the row's path cells as written in the manifest ({column: cell}), which the
    messages quote as written - a relative cell never as the path it is read from (QA segquote63: the cell
    ``../seg.dcm#...`` of a manifest given as ``/abs/sub/m.csv`` was quoted ``"/abs/sub/../seg.dcm#..."``)."""
    token = _MANIFEST_FOLDER.set(Path(manifest).parent)
    row = _MANIFEST_ROW.set(f"manifest {Path(manifest).name}" + (f" line {line}" if line else ""))
    written = _MANIFEST_CELLS.set(_cells_by_path(cells or {}, manifest))
    try:
        yield
    finally:
        _MANIFEST_CELLS.reset(written)
        _MANIFEST_ROW.reset(row)
        _MANIFEST_FOLDER.reset(token)


def _cells_by_path(cells: dict, manifest) -> dict:
    """{the path a cell is read from (:func:`lungai.io.tables.listed_path`), whole and its file alone before
    '#': the cell as written, whole and its file alone} for :func:`_as_in_manifest`."""
    from lungai.io.tables import listed_path

    found = {}
    for cell in map(str, filter(None, cells.values())):
        read = str(listed_path(cell, manifest))
        found[read] = cell
        head, sep, _ = cell.rpartition(SELECTOR)
        if sep and head:
            found.setdefault(str(Path(read.rpartition(SELECTOR)[0])), head)
    return found


def value_words(option: str, value, cell=None) -> str:
    """How a problem names the value an option was given: ``--lungs 'Lung_R'`` on the command line (``cell``, the
    whole value with its file, where given: ``--lungs 'seg.dcm#Lung, right,Lung, left'``); within
    :func:`manifest_fixes` the manifest's row and its cell of the column standing for the option, as the cell is
    written (``cell``: the cell's whole value, ``FILE#PART``; by default ``value``): ``manifest m.csv line 2, lungs
    cell "seg.dcm#Lung, right,Lung, left"`` - radiomics-batch has no ``--lungs`` (QA segfollow63: its problem began
    "--lungs 'Lung, right,Lung, left'", naming neither the manifest's cell nor its row)."""
    where = _MANIFEST_ROW.get()
    if _MANIFEST_FOLDER.get() is None or where is None:
        # the whole value as typed, its file with it (QA segquote63: "--lungs 'Lung, right,Lung, left'" named the
        # part after '#' alone)
        return f"{option} {str(value if cell is None else cell)!r}"
    return f"{where}, {option.lstrip('-')} cell {command_word(value if cell is None else cell)}"


def as_typed(text) -> str:
    """A path of the input (``FILE`` or ``FILE#PART``) as a problem names it: as the user typed it - within
    :func:`manifest_fixes` as the manifest's cell writes it, unquoted (:func:`_as_in_manifest`: ``../seg.dcm``, not
    the ``/abs/sub/../seg.dcm`` it is read from); else as it is."""
    folder = _MANIFEST_FOLDER.get()
    return str(text) if folder is None else _as_in_manifest(str(text), folder)


def fix_words(command: str, manifest: str) -> str:
    """A fix's words for the command line (``command``: ``--lungs FILE#R,L``) or, within :func:`manifest_fixes`,
    for a manifest (``manifest``: its columns, which stand for those options)."""
    return command if _MANIFEST_FOLDER.get() is None else manifest


def _as_in_manifest(text: str, folder: Path) -> str:
    """A path of a manifest's row (a relative cell read from the manifest's folder, ``lungai.io.tables.listed_path``)
    as its cell writes it: the row's cell itself, or its file with another part after '#', where
    :func:`manifest_fixes` was given the row's cells (whatever the manifest's path: ``../seg.dcm#2`` of
    ``/abs/sub/m.csv``, never ``/abs/sub/../seg.dcm#2``); else relative to ``folder`` again (``sub/../data/seg.dcm``
    -> ``../data/seg.dcm`` for a manifest ``sub/m.csv``), so that the fix pasted into the manifest names the same
    file, and for a manifest given by its absolute path the path as it is."""
    cells = _MANIFEST_CELLS.get()
    if text in cells:
        return cells[text]
    head, sep, tail = text.rpartition(SELECTOR)
    if sep and head in cells:       # the file of a cell, another part chosen after '#' (a fix's FILE#PART)
        return f"{cells[head]}{sep}{tail}"
    if str(folder) in ("", ".") or folder.is_absolute():
        return text
    try:
        return str(Path(text).relative_to(folder))
    except ValueError:          # an absolute cell elsewhere: as it is
        return text


def _part_word(source, part) -> str:
    """``SOURCE#PART`` (a SEG as the user gave it, a segment or role after '#') as a fix's command word
    (:func:`command_word`); no ``source`` (a SEG's segments given without their file): ``SEG#PART``."""
    return command_word(f"{source}{SELECTOR}{part}") if source else f"SEG{SELECTOR}{part}"


LUNG_LABELS = {1: "right lung", 2: "left lung"}     # a lung label map, as ``lungai lungs`` writes it


def labels_present(arr) -> list[int]:
    """The nonzero values of an integer label array, ascending (``np.unique``'s, 0 left out): of a few values (at
    most 16 between its smallest and largest: a lung map's 0, 1, 2) each looked for in one pass - a lung map of a whole
    CT (28 M voxels) in a sixth of the time of ``np.unique``'s sort (QA exportfollow68: ``lungai dicom-export``'s
    checks sorted LUNG1-003's lung map seven times, ~0.3 s each) -, else by ``np.unique``."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "ui" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo <= 16:
            return [v for v in range(lo, hi + 1) if v and (v in (lo, hi) or (arr == v).any())]
    return [int(v) for v in np.unique(arr) if v]


def check_lung_label_map(labels: sitk.Image, source: str = "the lung label map", example: str | None = None,
                         consequence: str = "its labels 1 and 2 would be exported as the right and the left lung "
                                            "and the others dropped", option: str | None = None) -> None:
    """A lung label map whose lungs are read by label (1 = right, 2 = left: ``lungai dicom-export``'s segments
    "Right lung" / "Left lung") holds no other label: a label map of several structures (GTV 1, other GTVs 2,
    lungs 3 and 4) would export its labels 1 and 2 as the lungs and drop the others without a word.  ``source``: the
    map as the message names it (``--lungs labels.nii.gz``); ``example``: the file for the fix's ``FILE#R,L`` (its
    path as given); ``consequence``: what taking the map whole would do (``lungai dose-features``: its GTVs counted
    as lung); ``option``: the command's option (``--lungs``): the fix is then ``--lungs FILE#R,L`` as command words
    that work as written (:func:`command_word`: a path with a space quoted), else the value alone (a manifest's
    cell)."""
    import SimpleITK as sitk

    found = labels_present(sitk.GetArrayViewFromImage(labels))
    other = [v for v in found if v not in LUNG_LABELS]
    if other:
        name = example or "FILE"

        def value(part):
            word = command_word(f"{name}{SELECTOR}{part}")     # a manifest's cell within manifest_fixes
            return f"{option} {word}" if option else word

        e_g = f" (e.g. {value(f'{other[-2]},{other[-1]}')})" if len(other) > 1 else ""
        raise InputError(f"{source} holds labels {', '.join(map(str, found))}, not only 1 (right lung) and 2 (left "
                         f"lung), so it is not a lung label map: {consequence}",
                         f"choose the right and the left lung's labels after '{SELECTOR}': {value('R,L')}{e_g}, "
                         "or relabel the map to 1 = right lung, 2 = left lung")


def _binary_mask_of_both_lungs(lungs: "sitk.Image") -> "sitk.Image | None":
    """A mask of one label of any value (255: dcmrtstruct2nii's, many tools' foreground) as wide as both lungs
    (:func:`lungai.lungs.check.one_label_is_both_lungs`) as the binary lung mask of label 1 that every command
    reads as both lungs; None for anything else.  Before, radiomics refused a 255 mask of both lungs as "not a lung
    label map" with a fix (``FILE#R,L``) it cannot follow, while dose-features took it."""
    import SimpleITK as sitk

    from lungai.lungs.check import one_label_is_both_lungs

    arr = sitk.GetArrayViewFromImage(lungs)
    values = [v for v in np.unique(arr) if v]
    if len(values) != 1 or values[0] == 1:
        return None
    out = sitk.GetImageFromArray((arr == values[0]).astype(np.uint8))
    out.CopyInformation(lungs)
    return out if one_label_is_both_lungs(out) else None


def lung_map_input(value, ct, rtstruct=None, option: str = "--lungs", binary: bool = False,
                   consequence: str | None = None, **kw) -> "sitk.Image":
    """A lung option's value read as :func:`mask_input` reads it (``lungs=True``; ``rtstruct``, ``mapping``,
    ``allow_gaps``, ``used`` passed on), and, when it was a file, checked to be a lung label map
    (:func:`check_lung_label_map`: 1 right, 2 left and nothing else; ``FILE#R,L`` chooses the lungs of another map).
    One rule for every command taking ``--lungs FILE`` (dicom-export, dose-features, radiomics, the lungs column of
    radiomics-batch): a map of other structures (NSCLC-Radiomics' 1 GTV-1, 2 other GTVs, 3 / 4 lungs) is never read
    as right = 1, left = 2.  ``option``: how the message names the input (``--lungs``; ``lungs`` for a manifest's
    column); ``binary``: a mask of one label (any value) is a binary lung mask and accepted (dose-features).  A mask
    of one label of any value as wide as both lungs is the binary mask of both lungs for every command (returned as
    label 1: :func:`_binary_mask_of_both_lungs`)."""
    import SimpleITK as sitk

    lungs = mask_input(value, ct, rtstruct, lungs=True, **kw)
    p, selector = split_selector(value)
    if p.is_file() and not selector:
        both = _binary_mask_of_both_lungs(lungs)
        if both is not None:
            return both
    if p.is_file() or rtstruct is None:     # a file (an RTSTRUCT structure spec names the lungs themselves)
        if not binary or len([v for v in np.unique(sitk.GetArrayViewFromImage(lungs)) if v]) > 1:
            typed = typed_file(value)
            check_lung_label_map(lungs, f"{option} {as_typed(typed)}", typed,
                                 option=option if option.startswith("--") else None,
                                 **({"consequence": consequence} if consequence else {}))
    return lungs


def rtstruct_dose_masks(rtstruct, ct: "sitk.Image", lungs=None, gtv=None, mapping=None,
                        allow_gaps: bool = False) -> dict:
    """The lungs and GTV of the dose metrics from a plan's RTSTRUCT (``lungai dose-features --rtstruct``,
    ``lungai demo --rtstruct``): ``lungs`` / ``gtv`` a structure name, ``role:ROLE`` or a mask file; by default the
    lungs by role (:func:`lungai.dicom.roles.dose_lungs_role`: right + left lung, else a 'Lungs-GTV' structure)
    and the GTV by role when the RTSTRUCT has one.  ``lungs`` may be a list (``--structure`` given several times:
    ``--structure Lung_R --structure Lung_L``): the lungs are their union.  A GTV as the lungs (``role:gtv``,
    ``role:gtv_node``, a structure whose name is a GTV's) is refused (:func:`check_dose_lung_spec`).

    Without a GTV (none contoured, none given) but with the GTV's motion envelope (an iGTV / ITV, a GTV_MIP / GTV_4D:
    :func:`lungai.dicom.roles.motion_envelopes`), the lungs are the lungs minus that envelope ("Lungs - iGTV", as
    clinics compute the MLD of a 4D-CT plan; the GTV metrics stay empty): ``envelope_source`` names it and
    ``envelope_note`` says so.  The envelope is read with gaps allowed (primary + node: :func:`motion_envelope_mask`);
    one that still cannot be read leaves the whole lungs, with a warning naming why.  With a GTV the envelope is not
    used (the GTV is subtracted; the envelope warned).

    Without a GTV (none contoured under a GTV's name, none given) but with a 'Lungs-GTV' structure (role
    ``lungs_minus_gtv``) and no lungs given, the lungs are that structure - the clinic's lungs minus the GTV - not the
    right + left lung with the tumour in them (``lungs_minus_gtv`` True).

    Returns {"lungs", "lung_source", "gtv" (None without a GTV), "gtv_source", "envelope_source" / "envelope_note"
    (None without an envelope subtracted), "envelope_problem" (why an envelope could not be read, else None), "empty" (empty template structures, for
    :func:`lungai.dicom.roles.empty_note`), "lungs_minus_gtv" (the lungs are 'Lungs-GTV' structures:
    :func:`lungs_minus_gtv_structures`)}; the sources say which structure was used."""
    from lungai.dicom.roles import dose_lungs_role, find_role, motion_envelopes
    from lungai.dicom.rtstruct import contoured_structures, warn_role_notes

    names, empty = contoured_structures(rtstruct)   # an empty template structure has no role
    given = [s for s in ([lungs] if isinstance(lungs, (str, Path)) else lungs or []) if s]
    gtv_spec = gtv or ("role:gtv" if find_role(names, "gtv", mapping) else None)
    # no GTV to subtract, but the clinic's 'Lungs-GTV' (QUANTEC's lungs minus the GTV): that, not the right + left
    # lung with the tumour in them (dose_lungs_role's gtv: the one rule, the panel's and cohort's too)
    lung_specs = given or ["role:" + dose_lungs_role(names, mapping, empty, gtv=gtv_spec is not None)]
    for spec in lung_specs:
        check_dose_lung_spec(spec, mapping)
    envelopes = motion_envelopes(names, mapping) if gtv_spec is None else []
    # read first, so that an envelope that cannot be read is never said to be subtracted
    envelope, envelopes, problem = motion_envelope_mask(rtstruct, ct, envelopes)
    # a GTV by its RT ROI type, an iGTV or GTV-like name left out, an envelope subtracted (not one unread)
    warn_role_notes(names, mapping, unread=envelopes if problem else ())
    if problem:
        import warnings

        from lungai.errors import InputNote

        warnings.warn(f"{problem}: the lung dose metrics are of the whole lungs, the tumour included (the RTSTRUCT has "
                      "no GTV)", InputNote, stacklevel=2)

    lung_structures: list = []     # the RTSTRUCT structures the lungs are read from (None for a mask file)

    def mask_and_part(spec, what):
        """(mask, what it is: a file name, or (structure names as said, e.g. "Lung_R + Lung_L minus GTV"))."""
        if split_selector(spec)[0].is_file():
            if what == "lungs":
                lung_structures.append(None)
            return mask_input(spec, ct, mapping=mapping, what=what), str(spec)
        mask, used = structure_mask(rtstruct, ct, spec, mapping, allow_gaps)
        if what == "lungs":
            lung_structures.extend(used)
        return mask, (_structures_text(spec, used, mapping),)

    def source_of(parts):
        structures = [p[0] for p in parts if isinstance(p, tuple)]
        said = [p for p in parts if not isinstance(p, tuple)]
        if structures:
            said.append(f"RTSTRUCT structure {' + '.join(structures)} ({rtstruct}, as contoured)")
        return " + ".join(said)

    import SimpleITK as sitk

    read = [mask_and_part(spec, "lungs") for spec in lung_specs]
    lung_mask = read[0][0]
    for mask, _ in read[1:]:        # several --structure: the union of the lung structures
        lung_mask = sitk.Or(sitk.Cast(lung_mask > 0, sitk.sitkUInt8), sitk.Cast(mask > 0, sitk.sitkUInt8))
    lung_source = source_of([part for _, part in read])
    gtv_mask, gtv_source = (None, None)
    if gtv_spec:
        gtv_mask, gtv_part = mask_and_part(gtv_spec, "gtv")
        gtv_source = source_of([gtv_part])
    envelope_source = envelope_note = None
    if envelope is not None:
        from lungai.dose.features import lungs_minus_envelope

        lung_mask = lungs_minus_envelope(lung_mask, [envelope])
        envelope_source = f"RTSTRUCT structure {' + '.join(envelopes)} ({rtstruct}, as contoured)"
        envelope_note = (f"the RTSTRUCT has no GTV: the lung dose metrics are of the lungs minus the tumour's motion "
                         f"envelope {' + '.join(repr(str(n)) for n in envelopes)} (Lungs - iGTV, as for a 4D-CT plan); "
                         "no GTV dose (to use a structure as the GTV, give --gtv NAME or map it with --structure-map)")
    return {"lungs": lung_mask, "lung_source": lung_source, "gtv": gtv_mask, "gtv_source": gtv_source,
            "envelope_source": envelope_source, "envelope_note": envelope_note, "envelope_problem": problem,
            "empty": empty, "one_lung_note": one_lung_note(lung_structures, mapping),
            "lungs_minus_gtv": lungs_minus_gtv_structures(lung_structures, mapping)}


def lungs_minus_gtv_structures(used, mapping=None) -> bool:
    """Whether the lung structures ``used`` (RTSTRUCT structure names; None for a mask file) are all the lungs minus
    the GTV as contoured ('Lungs-GTV', role ``lungs_minus_gtv``): the lungs then exclude the tumour without a GTV
    subtracted (:func:`lungai.dose.features.masks_text`'s ``lungs_minus_gtv``)."""
    from lungai.dicom.roles import structure_role

    used = list(used)
    return bool(used) and all(n is not None and structure_role(n, mapping) == "lungs_minus_gtv" for n in used)


def one_lung_note(used, mapping=None) -> str | None:
    """The note of dose metrics computed on one lung only: the lung structures ``used`` (RTSTRUCT structure names;
    None for a mask file) are all of one side by role (``--structure role:lung_right``, ``--structure Lung_L``) -
    the MLD and V20 are then of that lung, not of both lungs as the RP models expect.  None otherwise (a structure of
    no role, a mask file, both sides, a Lungs structure: the user's choice, or both lungs)."""
    from lungai.dicom.roles import structure_role

    used = list(used)
    found = {structure_role(n, mapping) if n is not None else None for n in used}
    if not used or len(found) != 1 or found <= {None} or not found <= {"lung_right", "lung_left"}:
        return None
    side = "right" if found == {"lung_right"} else "left"
    return (f"the lung dose metrics (MLD, V20 ...) are of the {side} lung only ({' + '.join(map(str, used))}), not "
            "of both lungs: the MLD of the radiation-pneumonitis models is of both lungs (give both lungs: "
            "--structure role:lungs, the default, or --structure RIGHT --structure LEFT)")


def check_dose_lung_spec(spec, mapping=None) -> None:
    """Refuse a GTV as the lungs of the dose metrics: ``role:gtv`` / ``role:gtv_primary`` / ``role:gtv_node``, or a
    structure whose name is a GTV's (:func:`lungai.dicom.roles.structure_role`, the ``--structure-map`` first).  Before,
    ``dose-features --rtstruct RS --structure role:gtv_node`` failed with "the lung mask minus the GTV is empty - give a
    lung mask (label > 0) on the CT grid", naming neither the option nor the lung roles.  A file, a name of no role
    ("Lunge_neu") or of another role is the user's choice."""
    from lungai.dicom.roles import GTV_ROLES, structure_role

    if split_selector(spec)[0].is_file():
        return
    name, role = parse_spec(spec)
    role = role if role is not None else structure_role(name, mapping)
    if role in GTV_ROLES + ("gtv",):
        raise InputError(
            f"the lung structure {str(spec)!r} is a GTV (role {role}), not the lungs the dose metrics (MLD, V20 ...) are "
            "computed on",
            "give the lungs: role:lungs (the default: a Lungs structure, the right + left lung, else a "
            "Lungs-GTV structure), or each lung by name (--structure Lung_R --structure Lung_L: their union); the "
            "GTVs are subtracted from the lungs by role, or give the GTV with --gtv NAME")


def check_gtv_spec(spec, mapping=None, option: str = "--gtv") -> None:
    """Refuse a lung as a GTV to subtract from the lungs (``lungai lungs --rtstruct RS --gtv Lung-Right``): role
    ``lung_right`` / ``lung_left`` / ``lungs`` / ``lungs_minus_gtv``, or a structure whose name is a lung's
    (:func:`lungai.dicom.roles.structure_role`, the ``--structure-map`` first: a structure mapped to a GTV role is
    taken) - the mirror of :func:`check_dose_lung_spec`.  Checked with the arguments, before any input is read.  QA
    lungs71: LUNG1-003's ``--gtv Lung-Right`` was subtracted from the lungs with a note only, right lung 2149 -> 37 ml.
    A file, a name of no role or of a GTV role is the user's choice."""
    from lungai.dicom.roles import LUNG_ROLES, structure_role

    if split_selector(spec)[0].is_file():
        return
    name, role = parse_spec(spec)
    role = role if role is not None else structure_role(name, mapping)
    if role in LUNG_ROLES:
        mapped = "" if name is None else (f"; a structure that is a GTV although its name is a lung's: map it with "
                                          f"--structure-map ('{name}: gtv')")
        raise InputError(
            f"{option} {str(spec)!r} is a lung (role {role}), not a GTV: subtracted from the lungs, it would take "
            "the lung out of the lung masks",
            f"give the GTV: role:gtv (the default: every GTV contoured, each subtracted) or its structure name "
            f"({option} GTV-1){mapped}")


def check_names_need_rtstruct(named) -> None:
    """Without ``--rtstruct``: each ``(option, value, alone, what)`` of ``named`` (a value None or '' skipped) that is
    no file but reads as a structure's name or a role (:func:`lungai.paths.named_like_structure`: ``GTV-1``,
    ``role:gtv``, ``Lung-Right,Lung-Left``) is refused saying that it needs ``--rtstruct`` - ``alone``: what
    ``--rtstruct`` alone takes instead (by role), ``what``: the mask file the option otherwise takes ("GTV").  Checked
    with the arguments, before any input is read: the one rule of ``lungai lungs --gtv``, ``radiomics --tumour /
    --lungs`` and ``dose-features --gtv / --lungs`` (QA radiomicsfollow71: ``radiomics --tumour GTV-1`` said "--tumour
    GTV-1 does not exist", fix "check the path", nothing of --rtstruct)."""
    from lungai.paths import named_like_structure

    for option, value, alone, what in named:
        if value and named_like_structure(value):
            raise InputError(f"{option} {str(value)!r} is not a file, and a structure's name (or role:ROLE) needs "
                             "--rtstruct",
                             f"give the RTSTRUCT that holds it: --rtstruct FILE|FOLDER {option} {command_word(value)} "
                             f"(or --rtstruct alone: {alone}); or give the {what} mask file's path")


def lungs_minus_gtv_parts(spec, used, mapping=None) -> tuple | None:
    """(lung structures, GTV structures) of a ``role:lungs_minus_gtv`` mask built from the lungs and the GTVs (no
    'Lungs-GTV' structure: :func:`lungai.dicom.roles.mask_for_role`, the lungs minus every GTV), from the structure
    names it was read from (``used``, :func:`structure_mask`); None for any other spec, or a 'Lungs-GTV' structure.
    What dose.csv's ``masks`` column ("Lung_R + Lung_L minus GTV-1 + gtv-2") and radiomics' ``structures`` column
    ("Lung_R+Lung_L minus GTV-1+gtv-2") say; before, both listed the GTVs as part of the lungs ("Lung_R + Lung_L +
    GTV-1 + gtv-2")."""
    from lungai.dicom.roles import find_role

    if parse_spec(spec)[1] != "lungs_minus_gtv" or find_role(used, "lungs_minus_gtv", mapping):
        return None
    gtvs = find_role(used, "gtv", mapping)
    return ([n for n in used if n not in gtvs], gtvs) if gtvs else None


def _structures_text(spec, used, mapping=None) -> str:
    """The structures a dose mask was read from, as dose.csv's ``masks`` column says them: "Lung_R + Lung_L", or
    "Lung_R + Lung_L minus GTV-1 + gtv-2" (:func:`lungs_minus_gtv_parts`)."""
    parts = lungs_minus_gtv_parts(spec, used, mapping)
    return f"{' + '.join(parts[0])} minus {' + '.join(parts[1])}" if parts else " + ".join(used)


def motion_envelope_mask(rtstruct, ct: "sitk.Image", envelopes) -> tuple:
    """(mask or None, names, problem or None): the union of the RTSTRUCT structures ``envelopes`` (the tumour's motion
    envelopes, :func:`lungai.dicom.roles.motion_envelopes`) on ``ct``'s grid, read with gaps allowed (an iGTV of a
    primary and a node at another level leaves slices out by nature).  One that still cannot be read gives no mask and
    ``problem``: "the tumour's motion envelope 'iGTV' cannot be read (why)", for the caller's warning."""
    import SimpleITK as sitk

    from lungai.dicom.rtstruct import read_rtstruct

    envelopes = [str(n) for n in envelopes]
    if not envelopes:
        return None, [], None
    shown = " + ".join(repr(n) for n in dict.fromkeys(envelopes))    # three ROIs named 'iGTV': 'iGTV' once
    try:
        masks = read_rtstruct(rtstruct, ct, names=envelopes, allow_gaps=True)
    except InputError as exc:
        return None, envelopes, f"the tumour's motion envelope {shown} cannot be read ({exc.problem})"
    inside = np.zeros(sitk.GetArrayViewFromImage(ct).shape, bool)
    for mask in masks.values():
        inside |= sitk.GetArrayViewFromImage(mask) > 0
    if not inside.any():     # contoured outside this CT's grid: nothing to subtract (never said as subtracted)
        return None, envelopes, f"the tumour's motion envelope {shown} is empty on this CT's grid"
    union = sitk.GetImageFromArray(inside.astype(np.uint8))
    union.CopyInformation(ct)
    return union, envelopes, None


RTSTRUCT_USE = "mask options then take structure names or role:ROLE"   # what --rtstruct does, by default


def add_rtstruct_options(parser, structure_help: str, rtstruct_use: str = RTSTRUCT_USE) -> None:
    """The shared CLI options: --rtstruct, --structure, --structure-map, --allow-gaps.  ``rtstruct_use``: what the
    command does with the RTSTRUCT (the demo has no mask options: its --rtstruct gives the dose metrics' masks)."""
    parser.add_argument("--rtstruct", default=None, metavar="FILE|FOLDER",
                        help=f"DICOM RTSTRUCT of the CT: {rtstruct_use}.  A "
                             "folder (the export's RTSTRUCT/ or the patient's folder, subfolders too) is searched "
                             "for its RTSTRUCT: one is used and named; of several, the one referencing the CT "
                             "series (or its frame of reference) when only one does, else they are listed")
    parser.add_argument("--structure", action="append", default=None, metavar="NAME|role:ROLE", help=structure_help)
    parser.add_argument("--structure-map", default=None, metavar="FILE",
                        help="YAML/JSON 'structure name: role' lines overriding the built-in TG-263 name matching "
                             "(roles: gtv, gtv_primary, gtv_node, lung_right, lung_left, lungs, lungs_minus_gtv)")
    parser.add_argument("--allow-gaps", action="store_true",
                        help="accept RTSTRUCT structures with slices left out between their first and last slice "
                             "(structures made of separate parts); by default such a structure is an error")


def check_one_label(mask: sitk.Image, source: str, what: str, choose) -> None:
    """A tumour / GTV mask has one label (nonzero = tumour): a label map of several structures (GTV 1, lungs 3 and 4)
    is refused.  ``source``: the mask as the message names it (``--tumour labels.nii.gz``); ``choose(label)``: the
    fix, how to choose one label (the command's selector), with the mask's first label as the example."""
    import SimpleITK as sitk

    labels = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(mask)) if v]
    if len(labels) > 1:
        raise InputError(f"{source} holds {len(labels)} labels ({', '.join(map(str, labels))}), so it is "
                         f"not one {what} mask (taking every label would make them all the {what})", choose(labels[0]))
