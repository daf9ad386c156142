"""Checks of patient tables (CSV, one row per patient) shared by the table-reading commands (``rp``, ``stage``).

- :func:`check_delimiter` - a table read as comma-separated whose header names came out holding ``;`` or tabs (one
  column "a;b;c"): the file is not comma-separated; said so, with the fix (instead of "column X is not in the
  table").
- :func:`duplicate_ids` / :func:`check_unique_ids` - patient ids that occur more than once (a patient counted twice
  leaks between cross-validation folds and makes outputs per patient ambiguous): refused, naming them.
"""

from __future__ import annotations

from typing import Iterable

from lungai.errors import InputError

OTHER_DELIMITERS = {";": "semicolons (;)", "\t": "tabs"}


def check_delimiter(columns: Iterable, path) -> None:
    """Refuse a table read as comma-separated whose header names hold ``;`` or tabs at least as often as there are
    columns (one column "a;b;c", or a few when some names contain commas): the file uses another separator."""
    columns = [str(c) for c in columns]
    if not columns:
        return
    for sep, name in OTHER_DELIMITERS.items():
        if sum(c.count(sep) for c in columns) >= len(columns):
            header = sep.join(columns) if len(columns) == 1 else ",".join(columns)
            raise InputError(f"table {path} is not comma-separated: its header line has {name} between the column "
                             f"names ({header[:60]!r}{'...' if len(header) > 60 else ''}), so it was read as "
                             f"{len(columns)} column(s)",
                             "save the table as CSV with commas between the columns (e.g. in a spreadsheet: "
                             "Save as > CSV, comma-separated), or replace the separators with commas")


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
