"""Read an IBSI-1 reference value table (``value;tolerance;tag``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lungai.errors import InputError

DIAGNOSTIC_PREFIXES = ("img_dim", "vox_dim", "mean_int", "min_int", "max_int", "int_mask", "morph_mask")


def read_reference(path: str | Path, diagnostics: bool = False) -> pd.DataFrame:
    """DataFrame(tag, reference, tolerance) of the feature rows that have a value (diagnostics dropped), or of
    the diagnostic rows only (``diagnostics=True``: the processed image and ROI, see :mod:`.diagnostics`)."""
    from lungai.io.tables import read_table_checked

    p = Path(path)
    # the one table reader: a missing, empty, binary (an image given for it) or unreadable file refused in words (QA
    # inputs70: the phantom's mask.nii.gz given as --reference ended in a UnicodeDecodeError traceback, an empty file
    # in pandas' EmptyDataError one)
    raw = read_table_checked(p, sep=";", what="IBSI-1 reference table",
                             fix="give an IBSI-1 reference CSV (ibsi_1_chest_config_<x>.csv, ';'-separated)")
    cols = {c.strip().lower(): c for c in raw.columns}
    need = {"reference value", "tolerance", "tag"}
    if not need <= set(cols):
        raise InputError(f"{p.name} has columns {list(raw.columns)}, expected value;tolerance;tag",
                         "give an IBSI-1 reference CSV with the header 'reference value;tolerance;tag'")
    df = pd.DataFrame({"tag": raw[cols["tag"]].astype(str).str.strip(),
                       "reference": pd.to_numeric(raw[cols["reference value"]], errors="coerce"),
                       "tolerance": pd.to_numeric(raw[cols["tolerance"]], errors="coerce")})
    is_diagnostic = df.tag.str.startswith(DIAGNOSTIC_PREFIXES)
    df = df[is_diagnostic if diagnostics else ~is_diagnostic]
    return df.dropna(subset=["reference"]).reset_index(drop=True)
