"""The one rule for the names of a DICOM SEG's segments (SegmentLabel) and an RTSTRUCT's structures (ROIName),
shared by the readers (:func:`lungai.dicom.seg.read_seg`, :func:`lungai.dicom.rtstruct.read_rtstruct`, the choice of
segments :func:`lungai.dicom.masks.select_segments`) and the writers (:func:`lungai.dicom.seg.write_seg`,
:func:`lungai.dicom.rtstruct.write_rtstruct`, Slicer's :func:`lungai.scene.dicom.export_segments_dicom`):

- two names that are equal once the spaces around them are stripped (:func:`label_key`: "GTV" and "GTV ") are **one
  name**: the segments are read into {name: mask}, so one would replace the other.  A reader refuses them
  (:func:`repeated_labels`), and no writer writes them (:func:`check_export_labels`: "rename one of the segments in
  the Segment Editor") - a SEG / RTSTRUCT lungai writes is always one its reader takes;
- names that differ only in letter case ("GTV" and "gtv", a user's rename, SlicerRT) are two names: read whole, and a
  choice by role takes all of them (role:gtv: their union).  A choice by name ignores letter case
  (:func:`name_key`), so a choice that takes some of them but not all (by name "GTV", or a role that takes one
  structure of its kind: the right lung, the lungs minus the GTV) cannot tell which was meant and is refused
  (:func:`check_case_groups`).  A structure without contours (a planning-system template's) is none of them: no
  role takes it, so it is no partner of a contoured one (:func:`lungai.dicom.rtstruct.read_rtstruct`).
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Iterable

from lungai.errors import InputError

# the fix of a name written twice (Slicer's segments, lungai's writers)
RENAME_FIX = ("rename one of the segments in the Segment Editor (e.g. GTV-1, GTV-2: every segment needs its own "
              "name), then export again")


# SegmentLabel and ROIName are LO (Long String, DICOM PS3.5 6.2): at most 64 characters, no backslash (the separator
# of a multi-valued element: "GTV\\node" is read back as two values) and no control characters
MAX_NAME_CHARS = 64


def dicom_name(value) -> str:
    """A SegmentLabel / ROIName as text: several values (a name written with a backslash, which pydicom reads as a
    multi-valued element) joined back by it - not their Python list, "['GTV', 'node']".  pydicom's MultiValue is a
    MutableSequence (pydicom 2 and 3), so pydicom is not imported here: every check of a segment name (Slicer's panels
    refresh their buttons with it, QA slicer71: 0.6 s on the GUI thread) would import it for a plain text."""
    if isinstance(value, (tuple, MutableSequence)):
        return "\\".join(str(v) for v in value)
    return str(value)


def name_problem(label) -> str | None:
    """Why ``label`` cannot be written as a SegmentLabel / ROIName (:data:`MAX_NAME_CHARS`), None when it can."""
    text = str(label)
    if "\\" in text:
        return "it holds a backslash '\\', which DICOM reads as the separator of two names"
    if any(ord(c) < 32 and c != "\x1b" for c in text):
        return "it holds a control character (a line break or tab)"
    if len(text.strip()) > MAX_NAME_CHARS:
        return f"it has {len(text.strip())} characters, more than DICOM's {MAX_NAME_CHARS} for a name"
    return None


def label_key(label) -> str:
    """The name as read: the spaces around it stripped (equal keys: one name)."""
    return dicom_name(label).strip()


def name_key(label) -> str:
    """The name as a choice by name compares it: stripped, letter case ignored."""
    return label_key(label).lower()


def repeated_labels(labels: Iterable) -> list[list[int]]:
    """The positions of the names that are one name (:func:`label_key`), groups of two or more, in order."""
    groups: dict = {}
    for i, label in enumerate(labels):
        groups.setdefault(label_key(label), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def check_export_labels(labels: Iterable, what: str = "segments") -> None:
    """Refuse to write two segments / structures of one name (:func:`label_key`): its reader would refuse the file
    (a SEG), or read one of them only; before, Slicer's export kept the first of two "GTV" segments and dropped the
    other without a word.  Refuse a name DICOM cannot hold (:func:`name_problem`: a backslash, a control character,
    more than 64 characters): before, "GTV\\node" was written as two values and read back as "['GTV', 'node']", and
    a longer name was written invalid (readers may cut it short)."""
    labels = [str(label) for label in labels]
    for label in labels:    # a name DICOM cannot hold: written anyway, it read back as another name (or is cut short)
        problem = name_problem(label)
        if problem:
            raise InputError(f"the name {label!r} of {what} cannot be written into a DICOM SEG / RTSTRUCT: {problem}",
                             f"rename it (at most {MAX_NAME_CHARS} characters, without '\\' or line breaks; 3D Slicer: "
                             "in the Segment Editor), then export again")
    for group in repeated_labels(labels):
        shown = ", ".join(repr(labels[i]) for i in group)
        raise InputError(f"{len(group)} {what} have the name {label_key(labels[group[0]])!r} ({shown}): a DICOM SEG / "
                         "RTSTRUCT is read by name, so one would replace the other", RENAME_FIX)


def matching_labels(labels: Iterable, name) -> list:
    """The names a choice by ``name`` matches (:func:`name_key`: letter case ignored), in order."""
    key = name_key(name)
    return [label for label in labels if name_key(label) == key]


def case_pairs(labels: Iterable) -> list[list[str]]:
    """The groups of names (two or more) that differ only in letter case ("GTV", "gtv"), in order: no name chooses
    one of them alone (:func:`check_case_groups`)."""
    groups: dict = {}
    for label in labels:
        groups.setdefault(name_key(label), []).append(str(label))
    return [g for g in groups.values() if len({label_key(x) for x in g}) > 1]


def check_case_groups(labels: list, used: Iterable, source: str, numbers: list | None = None,
                      what: str = "segment", rename: str | None = None, role: str | None = None,
                      mapping=None) -> None:
    """Refuse a choice (``used``: the names it takes) that takes some but not all of the names differing only in
    letter case: a name chooses ignoring case, so which one was meant is unclear.  A choice by role that takes all of
    them (their union) passes.  ``numbers``: the segment / ROI numbers of ``labels`` (named in the message).

    The message follows the choice: ``role`` (a role read, e.g. the default role:lungs of ``--lungs seg.dcm``) says
    the role found them and to rename one (another choice cannot tell them apart either); a choice by name suggests
    a role only when the names have a role that takes a union (a GTV: role:gtv takes them all), else to rename one.
    ``rename``: where to rename (default: the Segment Editor, then export again)."""
    from lungai.dicom.roles import GTV_ROLES, structure_role

    used_keys = {label_key(u) for u in used}
    groups: dict = {}
    for i, label in enumerate(labels):
        groups.setdefault(name_key(label), []).append(i)
    for group in groups.values():
        taken = [i for i in group if label_key(labels[i]) in used_keys]
        if len(group) < 2 or not taken or len(taken) == len(group):
            continue
        kind = "ROI" if what == "structure" else "segment"
        nums = f" ({kind} numbers {', '.join(str(numbers[i]) for i in group)})" if numbers else ""
        shown = ", ".join(repr(str(labels[i])) for i in group)
        taken_text = ", ".join(repr(str(labels[i])) for i in taken)
        where = rename or "3D Slicer: rename one in the Segment Editor, then export again"
        first = label_key(labels[group[0]])
        own_name = f"give each {what} a name of its own (e.g. {first} and {first}-2; {where})"
        if role is not None:
            raise InputError(
                f"role:{role} found {len(group)} {what}s of {source} named {first!r}{nums} apart from letter case "
                f"({shown}): it takes one {what} of that kind, so taking {taken_text} alone could be the wrong one",
                f"rename one of them: {own_name}; names differing only in letter case cannot be told apart by a "
                "role or a name")
        union = any(structure_role(labels[i], mapping) in GTV_ROLES for i in group)
        raise InputError(
            f"{source} holds {len(group)} {what}s named {first!r}{nums} apart from letter case ({shown}): a name "
            f"chooses a {what} ignoring letter case, so taking {taken_text} alone could be the wrong one",
            ("choose them all by role (role:gtv takes every GTV, their union), or " if union else "") + own_name)
