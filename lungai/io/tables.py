"""Checks of the tables (CSV / TSV) the commands read.

- :func:`check_delimiter` - a table read as comma- (or tab-) separated whose header row holds more of another
  delimiter (';' from a European spreadsheet, a tab) than of the one it is read with was written with that other
  delimiter: refused, as every line would otherwise become one value (whole lines taken for patient IDs).
"""

from __future__ import annotations

from pathlib import Path

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
