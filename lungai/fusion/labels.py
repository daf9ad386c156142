"""Label and missing-value handling: tokens that mean "missing", class grouping, stage from T/N/M."""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pandas as pd

from lungai.errors import InputError

# Values that clinical exports use for "no value" (compared case-insensitively, stripped).
MISSING_TOKENS = {"", "na", "n/a", "nan", "none", "null", "not collected", "not recorded in database",
                  "not assessed", "unknown", "not available", "missing", "?", "-"}


def clean_missing(df: pd.DataFrame) -> pd.DataFrame:
    """Replace missing-value tokens ("Not Collected", "N/A", "Unknown", ...) by NaN."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col].astype("object")
            low = s.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
            s = s.where(~low.isin(MISSING_TOKENS), np.nan)
            s = s.map(lambda v: v.strip() if isinstance(v, str) else v)
            out[col] = s
    return out


def parse_groups(text: Optional[str]) -> Optional[dict]:
    """``"T1=Tis,T1a,T1b;T2=T2a,T2b"`` -> {"Tis": "T1", "T1a": "T1", ...}."""
    if not text:
        return None
    mapping = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(f"label group {part!r} has no '='",
                             'write groups as "NAME=value,value;NAME2=value" e.g. "T1=T1a,T1b;T2=T2a,T2b"')
        name, values = part.split("=", 1)
        for v in values.split(","):
            mapping[v.strip()] = name.strip()
    return mapping


def _t_num(t) -> Optional[int]:
    m = re.match(r"^\s*T(is|\d)", str(t), re.I)
    if not m:
        return None
    return 0 if m.group(1).lower() == "is" else int(m.group(1))


def _n_num(n) -> Optional[int]:
    m = re.match(r"^\s*N(\d)", str(n), re.I)
    return int(m.group(1)) if m else None


def _m_num(m) -> Optional[int]:
    mm = re.match(r"^\s*M(\d)", str(m), re.I)
    return int(mm.group(1)) if mm else None


def stage_group(t, n, m) -> Optional[str]:
    """AJCC 7th-edition overall stage collapsed to "I", "II", "III-IV" (None when T or N is unknown).

    I: T1-T2a N0 (and Tis); II: T2b N0, T1-T2 N1, T3 N0; III-IV: T3 N1, T4, N2-N3, or M1.
    T2a vs T2b needs the letter; plain "T2" counts as T2a.
    """
    tn, nn, mn = _t_num(t), _n_num(n), _m_num(m)
    if mn == 1:
        return "III-IV"
    if tn is None or nn is None:
        return None
    t2b = str(t).strip().lower().startswith("t2b")
    if nn >= 2 or tn == 4 or (tn == 3 and nn >= 1):
        return "III-IV"
    if nn == 1 or tn == 3 or t2b:
        return "II"
    return "I"


def derive_stage(df: pd.DataFrame, t_col: str, n_col: str, m_col: str) -> pd.Series:
    for col in (t_col, n_col, m_col):
        if col not in df.columns:
            raise InputError(f"stage column {col!r} is not in the EHR table",
                             f"pass the T, N and M column names; columns are: {', '.join(map(str, df.columns[:40]))}")
    values = [stage_group(t, n, m) for t, n, m in zip(df[t_col], df[n_col], df[m_col])]
    return pd.Series(values, index=df.index, dtype="object")


def clean_labels(labels: pd.Series, groups: Optional[dict] = None) -> pd.Series:
    """Labels as strings with missing tokens dropped to NaN and optional grouping applied."""
    s = clean_missing(labels.to_frame())[labels.name] if labels.name is not None else labels
    s = s.map(lambda v: np.nan if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v).strip())
    if groups:
        unknown = sorted(set(s.dropna()) - set(groups))
        if unknown:
            raise InputError(f"label values {unknown} are not in any label group",
                             "add them to --label-groups or map them to a group")
        s = s.map(lambda v: groups.get(v, np.nan) if isinstance(v, str) else np.nan)
    return s
