"""Column roles of a radiation-pneumonitis (RP) table: which column is what.

Naming scheme (one row per patient)::

    clin_*   clinical features      e.g. clin_age_years, clin_hb_g_dl, clin_durvalumab
    dose_*   dosimetric features    e.g. dose_mld_gy, dose_v20_pct, dose_v13_pct
    rad_*    radiomic features      e.g. rad_tumour_original_firstorder_Mean
    *_cat    (suffix) a categorical feature, e.g. clin_histology_cat (text values)
    case / patient_id / id          patient identifier (kept in outputs, never a feature)

Everything else (except the outcome) is ignored and listed as such.  A *role file*
(CSV with columns ``column,role[,type]``; role in clinical|dosimetric|radiomic|id|ignore,
type in numeric|categorical) overrides the scheme, e.g. for tables whose columns
cannot be renamed.

Feature sets compared (as in Evin et al. 2024): ``clinical_dosimetric``, ``radiomic``, ``all``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lungai.errors import InputError

PREFIXES = {"clin_": "clinical", "dose_": "dosimetric", "rad_": "radiomic"}
ROLES = ("clinical", "dosimetric", "radiomic", "id", "ignore")
ID_NAMES = ("case", "patient_id", "id")
FEATURE_SETS = {
    "clinical_dosimetric": ("clinical", "dosimetric"),
    "radiomic": ("radiomic",),
    "all": ("clinical", "dosimetric", "radiomic"),
}


@dataclass
class ColumnRoles:
    """Roles of the columns of one table."""

    roles: dict[str, str]                       # column -> clinical|dosimetric|radiomic
    categorical: list[str] = field(default_factory=list)
    id_column: str | None = None
    ignored: list[str] = field(default_factory=list)

    def features(self, feature_set: str = "all") -> list[str]:
        if feature_set not in FEATURE_SETS:
            raise InputError(f"unknown feature set {feature_set!r}",
                             f"use one of {', '.join(FEATURE_SETS)}{suggest(feature_set, FEATURE_SETS)}")
        wanted = FEATURE_SETS[feature_set]
        return [c for c, r in self.roles.items() if r in wanted]

    def to_json(self) -> dict:
        return {"roles": self.roles, "categorical": self.categorical, "id_column": self.id_column}

    @classmethod
    def from_json(cls, d: dict) -> "ColumnRoles":
        return cls(roles=dict(d["roles"]), categorical=list(d["categorical"]), id_column=d.get("id_column"))


def suggest(name: str, candidates, n: int = 3) -> str:
    """' (did you mean a, b?)' for close matches of ``name``, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def read_role_file(path) -> dict[str, tuple[str, str | None]]:
    """Read a role file -> {column: (role, type or None)}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"role file {path} does not exist", "give the path of a CSV with columns column,role[,type]")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("column", "role") if c not in df.columns]
    if missing:
        raise InputError(f"role file {path} lacks column(s) {missing}{suggest(missing[0], df.columns)}",
                         "the role file needs a header line 'column,role' (optional third column 'type')")
    out = {}
    for _, row in df.iterrows():
        role = row["role"].strip().lower()
        if role not in ROLES:
            raise InputError(f"role file {path}: unknown role {row['role']!r} for column {row['column']!r}"
                             f"{suggest(role, ROLES)}", f"use one of {', '.join(ROLES)}")
        kind = row.get("type", "").strip().lower() or None
        if kind not in (None, "numeric", "categorical"):
            raise InputError(f"role file {path}: unknown type {kind!r} for column {row['column']!r}",
                             "use numeric or categorical (or leave empty)")
        out[row["column"].strip()] = (role, kind)
    return out


def infer_roles(df: pd.DataFrame, outcome: str | None, role_file=None) -> ColumnRoles:
    """Roles of ``df``'s columns from the naming scheme, overridden by ``role_file``."""
    overrides = read_role_file(role_file) if role_file else {}
    absent = [c for c in overrides if c not in df.columns]
    if absent:
        hints = "; ".join(f"{c!r}{suggest(c, df.columns)}" for c in absent)
        raise InputError(f"the role file names column(s) that are not in the table: {hints}",
                         "fix the spelling in the role file or the table header")
    roles, categorical, ignored, id_column = {}, [], [], None
    for col in df.columns:
        if col == outcome:
            continue
        role, kind = overrides.get(col, (None, None))
        if role is None:
            role = next((r for p, r in PREFIXES.items() if col.startswith(p)), None)
            if role is None and col.lower() in ID_NAMES and id_column is None:
                role = "id"
        if role == "id":
            id_column = col
        elif role in ("clinical", "dosimetric", "radiomic"):
            roles[col] = role
            if kind == "categorical" or (kind is None and col.endswith("_cat")):
                categorical.append(col)
        else:
            ignored.append(col)
    if not roles:
        raise InputError("the table has no feature columns (none starts with clin_, dose_ or rad_)",
                         "rename the feature columns with these prefixes or give a role file (--roles)")
    return ColumnRoles(roles=roles, categorical=categorical, id_column=id_column, ignored=ignored)


def require_columns(df: pd.DataFrame, columns, what: str) -> None:
    """Raise naming every column of ``columns`` that ``df`` lacks, with close matches."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        unused = [c for c in df.columns if c not in set(columns)]  # likely misspellings
        hints = "; ".join(f"{c!r}{suggest(c, unused) or suggest(c, df.columns)}" for c in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(f"{what}: {len(missing)} required column(s) missing: {hints}{more}",
                         "add the columns (or fix their spelling) so the table matches the model's features")
