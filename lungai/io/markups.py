"""Read Slicer markups files without Slicer: a point list (``.mrk.json``, ``.fcsv``: its placed points in LPS mm,
:func:`read_point_list`) and an ROI box (``.mrk.json`` of type ROI: two opposite corners in LPS mm, :func:`read_roi`).

``lungai segment --seed-point F.mrk.json`` takes the point a user placed in Slicer and saved.  The file says which
coordinate system its numbers are in (``coordinateSystem`` of a ``.mrk.json``, ``# CoordinateSystem =`` of a
``.fcsv``: ``LPS`` or ``RAS``, in old ``.fcsv`` files ``1`` / ``0``): RAS numbers are negated in x and y.  Only
placed points count (position status "defined"; not a point still being placed, nor one marked missing), as in the
Slicer panel (:func:`lungai.scene.nodes.defined_points`).  A transform the point list was under in Slicer is not in
the file: the points are in the list's own coordinates.

An ROI's ``center`` (else its control point) is read as a point is; its ``orientation`` (3 x 3, row by row, the box's
axes in the columns) and ``size`` give its axis-aligned bounding box in LPS, as the Slicer panel takes a drawn ROI
(:func:`lungai.scene.nodes.roi_to_lps`): for a box rotated against the LPS axes larger than the drawn one (said:
:func:`rotation_note`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lungai.errors import InputError

MARKUPS_SUFFIXES = (".mrk.json", ".json", ".fcsv")

# position status of a .fcsv row (vtkMRMLMarkupsNode: undefined 0, preview 1, defined 2, missing 3)
_FCSV_DEFINED = "2"


def is_markups_path(text: str) -> bool:
    """True when an option's value names a markups file (by its suffix)."""
    return str(text).lower().endswith(MARKUPS_SUFFIXES)


def _to_lps(xyz, system: str) -> list:
    x, y, z = (float(v) for v in xyz)
    return [-x, -y, z] if system == "RAS" else [x, y, z]


def _system(value, path) -> str:
    text = str(value).strip().upper()
    system = {"0": "RAS", "1": "LPS"}.get(text, text)
    if system not in ("RAS", "LPS"):
        raise InputError(f"{path}: unknown coordinate system {value!r}", "save the point list again in Slicer "
                         "(its coordinate system is LPS or RAS)")
    return system


_WHAT = {"Fiducial": ("point list", "--seed-point", "give the point's numbers"),
         "ROI": ("ROI", "--roi", "give the box's corners x0,y0,z0,x1,y1,z1 in LPS mm")}


def ras_reading(values) -> list:
    """``values`` (one or more x, y, z triples in a row) read the other way between LPS and RAS: x and y negated (no
    ``-0``)."""
    return [c + 0.0 for i in range(0, len(values), 3) for c in _to_lps(values[i:i + 3], "RAS")]


def _numbers(doc) -> list | None:
    """The numbers of a JSON document that is a plain (nested) list of numbers, e.g. ``[-12.3, 45.0, -130.2]``;
    None for anything else."""
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        return [float(doc)]
    if not isinstance(doc, list) or not doc:
        return None
    parts = [_numbers(v) for v in doc]
    return None if any(p is None for p in parts) else [v for p in parts for v in p]


def _plain_numbers_error(path: Path, kind: str, values: list) -> InputError:
    """A .json holding only the numbers of a point / box (no coordinate system): refused naming both readings to
    give.  QA (points61): ``--seed-point p.json`` holding ``[-12.3, 45.0, -130.2]`` was refused "is not a Slicer
    markups file" with "give the point's numbers" - not which numbers, nor that the file cannot say LPS or RAS."""
    what, option, _ = _WHAT[kind]

    def shown(v):
        return ",".join(f"{c:g}" for c in v)
    return InputError(f"{path} holds only numbers ({shown(values)}), not a Slicer markups file: it does not say their "
                      "coordinate system (LPS or RAS)",
                      f"give them as {option}={shown(values)} if they are LPS mm (ITK / SimpleITK), or "
                      f"{option}={shown(ras_reading(values))} if they are Slicer's RAS (x and y negated); or save the "
                      f"{what} from Slicer (Save: .mrk.json)")


def _markups(path: Path, kind: str) -> list:
    """The markups of a .mrk.json; InputError naming what to save for ``kind`` ("Fiducial" / "ROI") - and, for a file
    holding only a point's / box's numbers, those numbers in both readings (:func:`_plain_numbers_error`)."""
    what, _, numbers = _WHAT[kind]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path} is not a Slicer markups file (.mrk.json)",
                         f"save the {what} from Slicer (Save: .mrk.json), or {numbers}") from exc
    values = _numbers(doc)
    if values is not None and len(values) == {"Fiducial": 3, "ROI": 6}[kind]:
        raise _plain_numbers_error(path, kind, values)
    try:
        return [m for m in doc["markups"]]
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a Slicer markups file (.mrk.json)",
                         f"save the {what} from Slicer (Save: .mrk.json), or {numbers}") from exc


def _one_markup(path: Path, lists: list, kind: str) -> dict:
    """The one markup of ``kind`` a file holds; InputError naming the option that reads another kind's file."""
    what, option, _ = _WHAT[kind]
    kinds = sorted({str(m.get("type", "")) for m in lists})
    if len(lists) == 1 and kinds == [kind]:
        return lists[0]
    other = [_WHAT[k][1] for k in kinds if k in _WHAT and k != kind]
    raise InputError(f"{path} holds {len(lists)} markups ({', '.join(kinds) or 'none'}), not one {what}",
                     f"save the {what} placed on the tumour on its own"
                     + (f" ({_WHAT[kinds[0]][0]} files are given as {other[0]} FILE)"
                        if len(kinds) == 1 and other else ""))


def _read_json(path: Path) -> tuple[list, str]:
    lists = _markups(path, "Fiducial")
    m = _one_markup(path, lists, "Fiducial")
    system = _system(m.get("coordinateSystem", "LPS"), path)
    points = []
    for i, p in enumerate(m.get("controlPoints", [])):
        if str(p.get("positionStatus", "defined")) != "defined":
            continue
        points.append((str(p.get("label", i + 1)), _to_lps(p["position"], system)))
    return points, system


def _read_fcsv(path: Path) -> tuple[list, str]:
    system, columns, points = "RAS", None, []        # a .fcsv without the header is an old one: RAS
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            if row[0].startswith("#"):
                key, _, value = ",".join(row).lstrip("#").partition("=")
                if key.strip().lower() == "coordinatesystem":
                    system = _system(value, path)
                elif key.strip().lower() == "columns":
                    columns = [c.strip() for c in value.split(",")]
                continue
            names = columns or ["id", "x", "y", "z"]
            try:
                xyz = [row[names.index(a)] for a in "xyz"]
                lps = _to_lps(xyz, system)
            except (ValueError, IndexError) as exc:
                raise InputError(f"{path}: the row {','.join(row)!r} is no point (id,x,y,z,...)",
                                 "save the point list from Slicer (Save: .fcsv or .mrk.json)") from exc
            if len(row) > len(names) and row[len(names)].strip() != _FCSV_DEFINED:
                continue                              # Slicer 5's position status after the named columns
            label = row[names.index("label")] if "label" in names and names.index("label") < len(row) else row[0]
            points.append((label, lps))
    return points, system


def read_point_list(path) -> tuple[list, str]:
    """The placed points of a Slicer point list file as ([(label, [x, y, z] LPS mm), ...], the file's coordinate
    system "LPS" / "RAS"); InputError for a file that cannot be read as one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"the markups file {path} does not exist", "give the path of the saved point list")
    return (_read_fcsv if path.name.lower().endswith(".fcsv") else _read_json)(path)


def is_axis_aligned(axes) -> bool:
    """True when the box axes (the columns of ``axes``, 3 x 3) follow the coordinate axes, swapped or flipped at
    most (the one rule of a rotated ROI: here and :func:`lungai.scene.nodes.roi_rotation_note`)."""
    axes = np.asarray(axes, dtype=float)
    columns = np.abs(axes) / np.maximum(np.linalg.norm(axes, axis=0), 1e-12)
    return bool(np.all((columns < 1e-6) | (columns > 1 - 1e-6)))


def rotation_note(name: str, used_ml: float, drawn_ml: float, fix: str) -> str:
    """What a rotated ROI box is told: its axis-aligned bounding box is used, larger than the drawn box."""
    return (f"The ROI '{name}' is rotated: a rotated ROI is used as its axis-aligned bounding box, {used_ml:.1f} ml "
            f"instead of {drawn_ml:.1f} ml ({fix})")


def read_roi(path) -> tuple[list, str]:
    """The box of a Slicer markups ROI file (.mrk.json of type ROI) as (two opposite corners x0, y0, z0, x1, y1, z1
    in LPS mm: its axis-aligned bounding box, a note when the box is rotated against the LPS axes (else None));
    InputError for a file that is no single placed ROI box."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"the markups file {path} does not exist", "give the path of the saved ROI")
    if path.name.lower().endswith(".fcsv"):
        raise InputError(f"{path} is a point list (.fcsv), not an ROI", "give a point list as --seed-point FILE; "
                         "save the ROI from Slicer as .mrk.json, or give --roi x0,y0,z0,x1,y1,z1 in LPS mm")
    m = _one_markup(path, _markups(path, "ROI"), "ROI")
    system = _system(m.get("coordinateSystem", "LPS"), path)
    placed = [p for p in m.get("controlPoints", []) if str(p.get("positionStatus", "defined")) == "defined"]
    name = str(m.get("name") or (placed[0].get("label") if placed else "") or path.name)
    try:
        if m.get("center") is None and not placed:
            raise ValueError("no centre")
        center = np.array(_to_lps(m["center"] if m.get("center") is not None else placed[0]["position"], system))
        size = np.array([float(v) for v in m["size"]], dtype=float)
        axes = np.array([float(v) for v in m.get("orientation", np.eye(3).ravel())], dtype=float).reshape(3, 3)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: the ROI '{name}' has no centre, size and orientation (3 x 3) to read",
                         "save the ROI from Slicer again (Save: .mrk.json), or give --roi x0,y0,z0,x1,y1,z1 in LPS "
                         "mm") from exc
    if not (np.all(np.isfinite(center)) and np.all(np.isfinite(size)) and np.all(np.isfinite(axes))
            and size.shape == (3,) and np.all(size > 0)):
        raise InputError(f"{path}: the ROI '{name}' is not placed (it has no box with a size yet: size "
                         f"{', '.join(f'{v:g}' for v in np.ravel(size))})",
                         "place the ROI box on the tumour in Slicer and save it again")
    if m.get("insideOut"):
        raise InputError(f"{path}: the ROI '{name}' is inside-out (it selects what lies outside the box)",
                         "turn Inside out off in Slicer's Markups module and save the ROI again")
    if system == "RAS":                   # the axes too: x and y negated (a sign flip only changes no extent)
        axes = axes * np.array([[-1.0], [-1.0], [1.0]])
    half = np.abs(axes) @ (size / 2.0)    # the bounding box's half extent along L, P, S
    corners = [float(v) for v in np.concatenate([center - half, center + half])]
    note = None
    if not is_axis_aligned(axes):
        drawn = float(np.prod(size)) * abs(float(np.linalg.det(axes))) / 1000.0
        note = rotation_note(name, float(np.prod(2 * half)) / 1000.0, drawn,
                             "reset the ROI's rotation in Slicer and save it again to segment in the drawn box")
    return corners, note
