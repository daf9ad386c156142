"""Read a Slicer markups point list file (``.mrk.json``, ``.fcsv``) without Slicer: its placed points in LPS mm.

``lungai segment --seed-point F.mrk.json`` takes the point a user placed in Slicer and saved.  The file says which
coordinate system its numbers are in (``coordinateSystem`` of a ``.mrk.json``, ``# CoordinateSystem =`` of a
``.fcsv``: ``LPS`` or ``RAS``, in old ``.fcsv`` files ``1`` / ``0``): RAS numbers are negated in x and y.  Only
placed points count (position status "defined"; not a point still being placed, nor one marked missing), as in the
Slicer panel (:func:`lungai.scene.nodes.defined_points`).  A transform the point list was under in Slicer is not in
the file: the points are in the list's own coordinates.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

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


def _read_json(path: Path) -> tuple[list, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        lists = [m for m in doc["markups"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a Slicer markups file (.mrk.json)",
                         "save the point list from Slicer (Save: .mrk.json), or give the point's numbers") from exc
    kinds = sorted({str(m.get("type", "")) for m in lists})
    if len(lists) != 1 or kinds != ["Fiducial"]:
        raise InputError(f"{path} holds {len(lists)} markups ({', '.join(kinds) or 'none'}), not one point list",
                         "save the point list placed on the tumour on its own (a markups ROI is not read: give "
                         "--roi x0,y0,z0,x1,y1,z1 in LPS mm)")
    m = lists[0]
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
