"""Checks of the tables (CSV / TSV) the commands read.

- :func:`check_delimiter` - a table read as comma- (or tab-) separated whose header row holds more of another
  delimiter (';' from a European spreadsheet, a tab) than of the one it is read with was written with that other
  delimiter: refused, as every line would otherwise become one value (whole lines taken for patient IDs).
- :func:`duplicate_ids` / :func:`check_unique_ids` - patient ids that occur more than once (a patient counted twice
  leaks between cross-validation folds and makes outputs per patient ambiguous): refused, naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from lungai.errors import InputError

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _header_line(path) -> str:
    try:
        with Path(path).open("r", encoding="utf-8-sig", errors="replace") as fh:
            return fh.readline()
    except OSError:
        return ""


def check_delimiter(path, frame=None, sep: str = ",") -> None:
    """Refuse the table ``path`` (read with ``sep`` into ``frame``) when it uses another delimiter: its header row
    holds more of another delimiter than of ``sep``, or ``frame`` came back as one column whose name holds one."""
    header = _header_line(path)
    names = [str(c) for c in frame.columns] if frame is not None else []
    if frame is not None and len(names) == 1:
        header = max(header, names[0], key=len)
    counts = {d: header.count(d) for d in DELIMITER_NAMES if d != sep}
    other, n = max(counts.items(), key=lambda kv: kv[1]) if counts else (None, 0)
    if n and n > header.count(sep):
        what = DELIMITER_NAMES.get(sep, repr(sep))
        raise InputError(f"table {path} is not {what}-separated: its header row holds {n} "
                         f"{DELIMITER_NAMES[other]}(s) and {header.count(sep)} {what}(s) ({header.strip()[:60]!r} ...)",
                         "save it as a comma-separated CSV (spreadsheet: Save As 'CSV (comma delimited)'), or as a "
                         "tab-separated .tsv / .txt file")


def duplicate_ids(values: Iterable) -> list[str]:
    """The ids (as stripped text, sorted) that occur more than once in ``values``; empty cells are not ids."""
    seen, dup = set(), set()
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        key = str(v).strip()
        if not key:
            continue
        (dup if key in seen else seen).add(key)
    return sorted(dup)


def check_unique_ids(values: Iterable, what: str, column=None, fix: str = "keep one row per patient") -> None:
    """Refuse ``values`` (a table's patient id column, named ``column``) holding an id more than once, listing the
    ids (first 10) and how many."""
    dup = duplicate_ids(values)
    if dup:
        where = f" (column {column!r})" if column is not None else ""
        more = f" and {len(dup) - 10} more" if len(dup) > 10 else ""
        raise InputError(f"{what} has duplicate patient IDs{where}: {len(dup)} id(s) occur more than once: "
                         f"{dup[:10]}{more}", fix)
