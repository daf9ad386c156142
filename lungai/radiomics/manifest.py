"""Cohort manifests for ``lungai radiomics-batch``.

A manifest is a CSV with one row per case: ``case``, ``image`` and either ``mask`` (label map; optional
``label`` "1;2" or "tumour=1;lungs=2", optional ``phantom`` = 1 for a lungai synthetic label map) or
``tumour`` and/or ``lungs`` (lungai lung label map).  Relative paths are relative to the manifest.  A cell holding a
comma (``"tumour=1,tumour=2"``, ``"labels.nii.gz#1,2"``) is in double quotes (:func:`_check_split_cells`).
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # pandas where a table is read or written: `lungai cohort` draws its first bar before it
    import pandas as pd

from lungai.errors import InputError

PATH_COLUMNS = ("image", "mask", "tumour", "lungs")
# the key of a row's line in the manifest file (:func:`read_manifest`), for the messages naming the row's cells
# (:func:`lungai.dicom.masks.manifest_fixes`); not a column (a CSV header names no such column)
ROW_LINE = "(line)"
# the key of a row's path cells as written ({column: cell}), which its messages quote as written (a relative cell
# is read from the manifest's folder): not a column either
ROW_CELLS = "(cells)"
# the ``phantom`` cell (surrounding spaces aside): a lungai synthetic label map, or not.  The yes values are those read
# as yes before; another value (``TRUE``, ``Yes``, a typo), once read as no, is refused - not read as yes now, which
# would keep a resumed case's values of the other reading (its recorded phantom cell unchanged)
PHANTOM_YES, PHANTOM_NO = ("1", "true", "True", "yes"), ("", "0", "false", "False", "no")


def is_phantom(cell) -> bool:
    """A manifest ``phantom`` cell saying yes (:data:`PHANTOM_YES`); other values are checked by
    :func:`read_manifest`."""
    return str(cell if cell is not None else "").strip() in PHANTOM_YES


# what makes two ids' file names differ (the fix named when :func:`name_clashes` finds a clash)
NAME_RULE = ("letters, digits, '-', '_' or '.' (other characters and trailing dots become '_'; letter case is "
             "ignored)")
# names Windows keeps for devices, also with an extension (con.txt): a file or folder cannot have them
RESERVED = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                      *(f"LPT{i}" for i in range(1, 10))])


def safe_name(case: str) -> str:
    """The file (or folder) name of a case id: characters other than letters, digits, ``-``, ``_`` and ``.`` become
    ``_``, so do trailing dots (``.`` and ``..`` would name the folder itself and its parent, ``a.`` is ``a`` on
    Windows); an empty id becomes ``_``, a name Windows keeps for a device (``CON``, ``nul.txt``, ``COM1`` ...,
    letter case ignored) gets a ``_`` in front."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(case))
    stripped = name.rstrip(".")
    name = stripped + "_" * (len(name) - len(stripped)) or "_"
    if name.split(".")[0].upper() in RESERVED:
        name = "_" + name
    return name


def name_clashes(items, key=str) -> list[list]:
    """Groups of ``items`` whose ids (``key(item)``) :func:`safe_name` turns into the same file name, letter
    case ignored as on Windows and macOS (e.g. ``pat/1`` and ``pat_1``): their output files would overwrite
    each other, so callers refuse them."""
    groups: dict[str, list] = defaultdict(list)
    for item in items:
        groups[safe_name(key(item)).lower()].append(item)
    return [g for g in groups.values() if len(g) > 1]


def read_manifest(path: str | Path) -> list[dict]:
    """The manifest rows as dicts with absolute paths (and each row's line in the file, :data:`ROW_LINE`, and its
    path cells as written, :data:`ROW_CELLS`); checks
    columns and unique case ids (and file names)."""
    from lungai.io.tables import read_table_checked

    p = Path(path)
    df = read_table_checked(p, what="manifest", fix="give a CSV with columns case, image, mask (or tumour/lungs)",
                            rows=True, dtype=str, keep_default_na=False)
    # a header written `Case,Image` or `case , image`: the columns read, spaces and letter case aside
    known = {"case", "label", "phantom", *PATH_COLUMNS}
    names = [str(c).strip().lower() if str(c).strip().lower() in known else c for c in df.columns]
    same = defaultdict(list)
    for original, name in zip(df.columns, names):
        same[name].append(str(original))
    twice = [headers for headers in same.values() if len(headers) > 1]
    if twice:
        listed = "; ".join(" and ".join(repr(h) for h in headers) for headers in twice)
        raise InputError(f"manifest {p.name} has columns that name the same thing (letter case and spaces aside): "
                         f"{listed}", "keep one column of each name (case, image, mask, label, phantom, tumour, "
                         "lungs) and delete or rename the other")
    df.columns = names
    missing = {"case", "image"} - set(df.columns)
    if missing:
        raise InputError(f"manifest {p.name} lacks the column(s) {sorted(missing)} (its columns: "
                         f"{', '.join(map(str, df.columns)) or 'none'})",
                         "columns: case, image, and mask (+ label / phantom) or tumour and/or lungs")
    if not ({"mask", "tumour", "lungs"} & set(df.columns)):
        raise InputError(f"manifest {p.name} has no mask column", "add a mask column, or tumour and/or lungs columns")
    blank = [i for i, case in enumerate(df["case"]) if not str(case).strip()]
    if blank:
        lines = _data_lines(p)
        where = ", ".join(f"line {lines[i]}" if i < len(lines) else f"row {i + 1}" for i in blank[:5])
        raise InputError(f"manifest {p.name} has rows without a case id ({where}{' ...' if len(blank) > 5 else ''})",
                         f"give every row of {p.name} a case id in its case column (it names the case's output "
                         "files and rows), or delete the row")
    dup = list(dict.fromkeys(df["case"][df["case"].duplicated()]))
    if dup:
        # each with its lines (QA: a 40-row manifest said only "repeats case id(s) ['A']": which rows, not said)
        lines = _data_lines(p)
        at = {case: [lines[i] if i < len(lines) else i + 2 for i, c in enumerate(df["case"]) if c == case]
              for case in dup[:5]}
        listed = "; ".join(f"{case!r} on lines {', '.join(map(str, n[:-1]))} and {n[-1]}" for case, n in at.items())
        raise InputError(f"manifest {p.name} repeats case id(s): {listed}{' ...' if len(dup) > 5 else ''}",
                         "give every row a unique case id (or delete the repeated row)")
    clashes = name_clashes(df["case"])
    if clashes:
        listed = "; ".join(" and ".join(map(repr, g)) + f" (both {safe_name(g[0])}.csv)" for g in clashes[:5])
        raise InputError(f"manifest {p.name} has case ids that give the same output file name: {listed}",
                         "rename these cases so that they differ in " + NAME_RULE)
    _check_split_cells(df, p)
    from lungai.io.tables import check_listed_files, listed_path

    rows = []
    lines = _data_lines(p)
    for i, rec in enumerate(df.to_dict("records")):
        rec[ROW_CELLS] = {col: rec[col] for col in PATH_COLUMNS if rec.get(col)}
        for col in PATH_COLUMNS:
            if rec.get(col):
                rec[col] = str(listed_path(rec[col], p))
        if i < len(lines):
            rec[ROW_LINE] = lines[i]
        rows.append(rec)
    # a moved data folder (absolute paths of the old place, the files under the manifest's folder now): refused now,
    # with the fix - not each case failing with a bare "does not exist"; files merely offline are left to the batch
    # (its finished cases are kept)
    # ... and relative paths written from the current folder, not the manifest's (QA radbatch65): refused, not each
    # case failing with "sub/data/ct.nii.gz does not exist", fix "check the path (and that the drive is mounted)"
    check_listed_files([r[c] for r in rows for c in PATH_COLUMNS if r.get(c)], p, what="manifest",
                       refuse_all_missing=False,
                       written=[r[ROW_CELLS][c] for r in rows for c in PATH_COLUMNS if r.get(c)])
    return rows


# a bare label list (``2``, ``2,3``) or a ``name=N`` item: the rest of a cell cut at an unquoted comma
_LABEL_REST = re.compile(r"^\s*(?:[^=,;#]+=\s*)?\d+(?:\s*[,;]\s*\d+)*\s*$")


def _check_split_cells(df: pd.DataFrame, path: Path) -> None:
    """Refuse, naming the line and the quoting, a row whose cells were shifted by a comma not in quotes - a
    ``label`` ``tumour=1,tumour=2`` or a mask ``labels.nii.gz#1,2`` (the FILE#LABELS selector) written without
    double quotes, where a column after it was free to take the rest: ``case,image,mask,label,phantom`` /
    ``p,ct.nii.gz,lab.nii.gz,tumour=1,tumour=2`` read ``tumour`` as label 1 alone and ``phantom`` as "tumour=2"
    (LUNG1-003: the 35 ml GTV-1 instead of the 82 ml of its GTVs, exit 0); ``case,image,tumour,lungs`` /
    ``p,ct.nii.gz,lab.nii.gz#1,2`` failed its case with "2 does not exist".  Also a ``phantom`` cell that says
    neither yes nor no (:data:`PHANTOM_YES`, :data:`PHANTOM_NO`): before, any other value silently read as no.  (A
    row with more cells than the header is refused when the manifest is read.)"""
    from lungai.dicom.masks import manifest_cell
    from lungai.io.tables import listed_path

    columns = list(df.columns)
    lines = _data_lines(path)
    for i, rec in enumerate(df.to_dict("records")):
        where = f"manifest {path.name} line {lines[i] if i < len(lines) else i + 2}"
        for k, col in enumerate(columns):
            cell = str(rec.get(col) or "").strip()
            before = columns[k - 1] if k > 0 else None
            cut = str(rec.get(before) or "").strip() if before else ""
            # the cell before a label list (or name=N) could hold it: a label cell, or a mask with a FILE#LABEL
            # selector (a path cell "12345" after a plain path is a folder's name, perhaps offline: left to its case)
            shifted = (_LABEL_REST.match(cell) is not None and bool(cut)
                       and (before == "label" or (before in PATH_COLUMNS and "#" in cut)))
            if col in PATH_COLUMNS and shifted and not listed_path(cell, path).exists():
                problem = f"its {col} cell is {cell!r}, a label value, not a file"
            elif col == "phantom" and cell not in PHANTOM_YES + PHANTOM_NO:
                problem = (f"its phantom cell is {cell!r}: phantom is 1 (true, yes) for a lungai synthetic label map, "
                           "else 0 (false, no) or empty")
            else:
                continue
            if shifted:
                whole = f"{cut},{cell}"
                raise InputError(f"{where}: {problem} - it looks like the rest of the {before} cell {whole!r}, cut "
                                 "at a comma that is not in double quotes (a CSV cell holding a comma must be quoted)",
                                 f"write that cell in double quotes: {manifest_cell(whole)}")
            raise InputError(f"{where}: {problem}", "write 1 in the phantom cell for a lungai synthetic label map, "
                             "else 0 or nothing")


def _data_lines(path: Path) -> list[int]:
    """The line number of each data row of the manifest ``path`` (:func:`lungai.io.tables.data_lines`), for errors."""
    from lungai.io.tables import data_lines, table_delimiter

    try:
        return data_lines(path, table_delimiter(path))
    except InputError:
        return []


def write_synthetic_cohort(folder: str | Path, n: int, seed: int = 0, shape=(96, 96, 40),
                           spacing=(3.5, 3.5, 5.0)) -> Path:
    """``n`` synthetic phantoms (varied tumours) and their manifest; returns the manifest path."""
    import pandas as pd
    from lungai.synthetic import make_phantom, random_spec, write_phantom

    folder = Path(folder)
    rows = []
    for i in range(n):
        case = f"synth{seed:03d}_{i:03d}"
        spec = random_spec(seed * 1000 + i, shape=shape, spacing=spacing)
        write_phantom(make_phantom(spec, seed=seed * 1000 + i), folder / case)
        rows.append({"case": case, "image": f"{case}/ct.nii.gz", "mask": f"{case}/labels.nii.gz", "phantom": "1"})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def write_batch_manifest(output, write, elsewhere: str | None = None) -> Path:
    """The manifest of a batch that makes it (the LungRadiomics panel's "folder" mode): ``<stem>_manifest.csv``
    beside the table ``output`` (so that a re-run resumes), written by ``write(path)`` (into a temporary folder
    first) and put in place while this process holds the lock of the table's folder (:func:`lungai.io.outputs.
    locked_output_folder`, released before ``lungai radiomics-batch`` takes it).  Refused, nothing written or
    created: while another lungai run writes into that folder (a batch going on there: its manifest is never
    rewritten under it), and when a file of that name is not one an earlier batch wrote (the user's) or changed
    since (:func:`lungai.io.outputs.check_output_file_owner`) - unless it holds the very same text.  Recorded in the
    ``radiomics-batch`` marker of the folder: the next run may replace it.  ``elsewhere``: how the caller's user
    writes the table into another folder (the panel: its output field), in place of the CLI's "-o OTHER_FOLDER/..."
    in the refusal of a folder in use."""
    import tempfile

    from lungai.io.outputs import (check_output_file_owner, locked_output_folder, record_output_file,
                                   write_elsewhere, writing)

    output = Path(output).absolute()
    path = output.with_name(output.stem + "_manifest.csv")
    with tempfile.TemporaryDirectory(prefix="lungai-manifest-") as tmp:
        data = Path(write(Path(tmp) / path.name)).read_bytes()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked_output_folder(output.parent, "radiomics-batch"))
        except InputError as exc:     # in use: the fix in the caller's words
            if not elsewhere or write_elsewhere("radiomics-batch") not in exc.fix:
                raise
            raise InputError(exc.problem, exc.fix.replace(write_elsewhere("radiomics-batch"), elsewhere)) from None
        if not (path.is_file() and not path.is_symlink() and path.read_bytes() == data):
            try:
                check_output_file_owner(path, "radiomics-batch")
            except InputError as exc:
                raise InputError(f"the batch writes its manifest {path.name} beside the table {output.name}: "
                                 f"{exc.problem}", "choose another table name (the manifest is named after it), or "
                                 f"move {path} away") from None
            with writing(path):
                path.write_bytes(data)
        record_output_file(path, "radiomics-batch")
    return path
