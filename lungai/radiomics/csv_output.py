"""Write result tables atomically (temp file, then rename) and never onto an input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from lungai.errors import InputError
from lungai.paths import check_csv_name

if TYPE_CHECKING:       # the commands import this module before their first bar: pandas comes with the table
    import pandas as pd


def write_csv(df: pd.DataFrame, path: str | Path, protect: Iterable[str | Path] = (), any_suffix: bool = False,
              **to_csv) -> Path:
    """Write ``df`` to ``path`` (.csv; ``any_suffix``: whatever name it is given) so that a crash or a full disk
    never leaves a half-written file (the error says "cannot write PATH: ...", :func:`lungai.io.outputs.writing`).
    ``to_csv``: passed to :meth:`pandas.DataFrame.to_csv` (default ``index=False``)."""
    p = Path(path)
    if not any_suffix:
        check_csv_name(p)
    for other in protect:
        if Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output name")
    from lungai.io.outputs import writing

    tmp = p.with_name(f".{p.name}.{os.getpid()}.part")
    with writing(p):
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(tmp, **({"index": False} | to_csv))
            tmp.replace(p)
        finally:
            if tmp.exists():
                tmp.unlink()
    return p
