"""Column roles of a radiation-pneumonitis (RP) table: which column is what.

Naming scheme (one row per patient)::

    clin_*   clinical features      e.g. clin_age_years, clin_hb_g_dl, clin_durvalumab
    dose_*   dosimetric features    e.g. dose_mld_gy, dose_v20_pct, dose_v13_pct
    rad_*    radiomic features      e.g. rad_tumour_original_firstorder_Mean
    case / patient_id / id          patient identifier (kept in outputs, never a feature)

Everything else (except the outcome) is ignored and listed as such.  A *role file*
(CSV with columns ``column,role[,type]``; role in clinical|dosimetric|radiomic|id|ignore,
type in numeric|binary|categorical) overrides the scheme, e.g. for tables whose columns
cannot be renamed.

The *type* of a feature is taken from its values, as the table is (:func:`infer_type`): numbers ->
numeric (only 0/1 -> binary); yes/no, true/false, y/n, checked/unchecked, present/absent,
positive/negative -> binary (1/0); other text (e.g. M/F, histology) -> categorical, spellings that differ only in
case one category (:func:`category_spellings`).  Cells such as "Not collected", "unknown", "n/a" count as missing
(:data:`MISSING_WORDS`; "None" only in a numeric or binary column).  A ``_cat`` suffix or the
role file's type overrides the inference.  The types, and how each was decided, are printed by
``rp train`` and saved in the model card.

Units of the dosimetric columns (as ``lungai dose-features`` writes them): ``dose_*_gy`` in Gy, ``dose_*_pct`` in
percent of the volume (0-100).  A column whose values cannot be in that unit is refused by
:func:`lungai.rp.checks.check_units` (:data:`DOSE_GY_MAX`, :data:`DOSE_PCT_RANGE`): doses in cGy, volumes as
fractions (0-1).

Feature sets compared (as in Evin et al. 2024): ``clinical_dosimetric``, ``radiomic``, ``all``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lungai.errors import InputError, agree, counted
from lungai.io.tables import (CATEGORY_WORDS, MISSING_WORDS, READ_OPTIONS,  # noqa: F401 (imported from here)
                              decimal_comma_number, is_missing_cell, match_headers, name_order, percent_number)
from lungai.radiomics.settings import SETTINGS_COLUMN

PREFIXES = {"clin_": "clinical", "dose_": "dosimetric", "rad_": "radiomic"}
ROLES = ("clinical", "dosimetric", "radiomic", "id", "ignore")
TYPES = ("numeric", "binary", "categorical")
TRUE_WORDS = frozenset({"1", "1.0", "yes", "y", "true", "t", "checked", "present", "positive", "pos"})
FALSE_WORDS = frozenset({"0", "0.0", "no", "n", "false", "f", "unchecked", "absent", "negative", "neg"})
# Words (any case, spaces around ignored) read as a missing value: lungai.io.tables.MISSING_WORDS, the one list of
# lungai rp and lungai stage.  RP tables are read without pandas' own list of missing-value strings
# (:func:`lungai.rp.checks.read_table`): its spreadsheet / database ones are in that list, so that every word read as
# missing is one of these, and reported (:func:`value_notes`).
# How RP tables are read (:func:`lungai.rp.checks.read_table`, and the clinical CSV of ``lungai cohort --clinical``):
# only an empty cell is missing, not pandas' own list of words - "None" stays a word (a category, or missing by
# :func:`is_missing_word`), as any other.
# (READ_OPTIONS: lungai.io.tables.READ_OPTIONS, the reading of lungai stage's EHR table too.)
# Missing in a numeric or binary column, but a category of a categorical one ("None": no comorbidity, never smoked):
# lungai.io.tables.CATEGORY_WORDS, the rule of lungai stage's EHR features too.
# How categorical values are read (saved in the model card as ``category_rules``, applied again by rp predict /
# validate): spellings that differ only in case are one category, written as the most frequent spelling
# (:func:`category_spellings`); "None" is a category.  A card without ``category_rules`` (an older lungai) was
# trained with LEGACY_CATEGORY_RULES: every spelling its own category, "None" missing.
CATEGORY_RULES = {"case": "merged", "none": "category"}
LEGACY_CATEGORY_RULES = {"case": "exact", "none": "missing"}
MAX_INFERRED_LEVELS = 20  # more distinct texts than this (and than half the rows): free text or dates, not categories
# the patient id column's names (case, patient_id, id, 'Patient ID', PatientID, 'Case ID' ... any case / spacing /
# '_'): lungai.io.tables.ID_NAMES and is_id_name, the one list of lungai rp, lungai stage and lungai cohort --clinical
from lungai.io.tables import ID_NAMES, is_id_name  # noqa: E402,F401  (re-exported)
# Unit rules of the dosimetric columns, keyed on their names (dose_ prefix; :func:`lungai.rp.checks.check_units`):
# a dose_*_gy value above its limit is no dose in Gy (a plan in cGy: 6000 for 60 Gy); the mean lung dose above 60 Gy
# is none a lung survives (MLD is typically 5-25 Gy); any other dose (tumour max, D2 ...) above 150 Gy is none a
# plan delivers.  A dose_*_pct value is a percentage of a volume (0-100); all at most 1 (some above 0): fractions.
DOSE_PREFIX, GY_SUFFIX, PCT_SUFFIX = "dose_", "_gy", "_pct"
DOSE_GY_MAX = {"dose_mld_gy": 60.0}
DOSE_GY_MAX_DEFAULT = 150.0
DOSE_PCT_RANGE = (0.0, 100.0)
# a cohort's lung V_x all at most 1 % is a fraction only for low dose levels (V5-V20 of lung RT are never all under
# 1 %); a high level (V60: 0-1 % for conventional stage III plans) can be, so it is not checked that way
FRACTION_LEVEL_MAX = 20.0


def pct_dose_level(name: str):
    """The dose level in Gy of a ``dose_v<level>_pct`` column (``dose_v20_pct`` -> 20.0; ``dose_v2p5_pct``, as
    ``lungai dose-features --v-levels 2.5`` names it (:func:`lungai.dose.features.v_column`), or ``dose_v2.5_pct``
    -> 2.5), else None.  (QA rpvalidate65: the ``p`` form was read as no level, so such a column of fractions - V2.5
    0.2-0.9 for 20-90 % - was trained on without the fraction check of V5-V20.)"""
    import re  # noqa: PLC0415

    found = re.fullmatch(r"dose_v(\d+(?:[.p]\d+)?)_pct", name)
    return float(found.group(1).replace("p", ".")) if found else None


from lungai.rp.card import FEATURE_SETS  # noqa: E402,F401  (the feature sets: in the light module, for the card checks)


@dataclass
class ColumnRoles:
    """Roles of the columns of one table."""

    roles: dict[str, str]                       # column -> clinical|dosimetric|radiomic
    categorical: list[str] = field(default_factory=list)
    id_column: str | None = None
    ignored: list[str] = field(default_factory=list)
    binary: list[str] = field(default_factory=list)      # yes/no, 0/1 ... read as 1/0
    how: dict[str, str] = field(default_factory=dict)    # column -> how its type was decided

    def type_of(self, column: str) -> str:
        return "categorical" if column in self.categorical else "binary" if column in self.binary else "numeric"

    def describe(self) -> list[str]:
        """One line per feature: role, type and how the type was decided (printed by ``rp train``)."""
        return [f"  {c}: {r}, {self.type_of(c)} ({self.how.get(c, 'declared')})" for c, r in self.roles.items()]

    def features(self, feature_set: str = "all") -> list[str]:
        if feature_set not in FEATURE_SETS:
            raise InputError(f"unknown feature set {feature_set!r}",
                             f"use one of {', '.join(FEATURE_SETS)}{suggest(feature_set, FEATURE_SETS)}")
        wanted = FEATURE_SETS[feature_set]
        return [c for c, r in self.roles.items() if r in wanted]

    def absent_parts(self, feature_set: str) -> list[str]:
        """The roles of ``feature_set`` (:data:`FEATURE_SETS`) without a column in this table: ``all`` of a table
        without rad_ columns is ['radiomic'] - the model named ``all`` is then the clinical + dosimetric one."""
        return [r for r in FEATURE_SETS[feature_set] if r not in self.roles.values()]

    def to_json(self) -> dict:
        return {"roles": self.roles, "categorical": self.categorical, "binary": self.binary,
                "types": {c: self.type_of(c) for c in self.roles}, "how": self.how, "id_column": self.id_column}

    @classmethod
    def from_json(cls, d: dict) -> "ColumnRoles":
        return cls(roles=dict(d["roles"]), categorical=list(d["categorical"]), id_column=d.get("id_column"),
                   binary=list(d.get("binary", [])), how=dict(d.get("how", {})))


def canonical_order(columns, roles: dict | None = None) -> list:
    """``columns`` in the order lungai gives them to a model: by role (clinical, dosimetric, radiomic, then any other;
    ``roles``: column -> role, none: one group), then by name as text.  A random forest draws features by position,
    so this order - not the order of a table's columns, or of the tables joined (:func:`lungai.rp.checks.read_tables`)
    - is what a training run depends on."""
    rank = {r: i for i, r in enumerate(ROLES)}
    roles = roles or {}
    # a stable sort of the name order: by name within a role
    return sorted(name_order(columns), key=lambda c: rank.get(roles.get(c), len(rank)))


def name_key(name) -> str:
    """``name`` compared loosely: in any case, without separators (_ - . space brackets) and without its role
    prefix (clin_ / dose_ / rad_): 'MLD_Gy', 'Dose MLD (Gy)' and 'dose_mld_gy' are one key."""
    import re  # noqa: PLC0415

    text = re.sub(r"[\s_\-.()\[\]/]+", "_", str(name).casefold()).strip("_")
    prefix = next((p for p in PREFIXES if text.startswith(p)), "")
    return text[len(prefix):].replace("_", "")


def close_names(name: str, candidates, n: int = 3) -> list[str]:
    """The candidates close to ``name``: first those of the same :func:`name_key` (a column renamed: 'MLD_Gy' for
    dose_mld_gy - QA rpfollow68: three closer dose names crowded it out), then difflib's close matches in any case
    ('FEMALE' finds 'Female' and 'female', not 'MALE'), at most ``n`` keys."""
    spellings: dict[str, list[str]] = {}
    for c in candidates:
        spellings.setdefault(str(c).casefold(), []).append(str(c))
    key = name_key(name)
    same = sorted((k for k in spellings if name_key(k) == key), key=lambda k: k != str(name).casefold())
    close = same + [k for k in difflib.get_close_matches(str(name).casefold(), list(spellings), n=n, cutoff=0.6)
                    if k not in same]
    return [c for k in close[:max(n, len(same))] for c in spellings[k]]


def suggest(name: str, candidates, n: int = 3) -> str:
    """' (did you mean a, b?)' for close matches of ``name`` (:func:`close_names`), or ''."""
    shown = close_names(name, candidates, n)
    return f" (did you mean {', '.join(repr(c) for c in shown)}?)" if shown else ""


def cgy_form(name: str, candidates) -> str | None:
    """The candidate that is the dose column ``name`` (``dose_*_gy``) in cGy ('dose_mld_cgy', 'MLD_cGy'), or None."""
    if not str(name).endswith(GY_SUFFIX):
        return None
    key = name_key(str(name)[: -len(GY_SUFFIX)] + "_cgy")
    return next((str(c) for c in candidates if name_key(c) == key), None)


def category_spellings(texts) -> dict[str, str]:
    """{spelling: category} for the categorical ``texts`` (missing ones skipped) that differ only in case: each
    group becomes its most frequent spelling (a tie: the first in sorted order), e.g. male / Male / MALE -> Male.
    Spellings alone in their group are not listed."""
    counts = pd.Series([str(t) for t in texts if not (t is None or (isinstance(t, float) and np.isnan(t)))],
                       dtype=object).value_counts()
    groups: dict[str, list[str]] = {}
    for text in sorted(counts.index):
        groups.setdefault(text.casefold(), []).append(text)
    out = {}
    for group in groups.values():
        if len(group) > 1:
            canonical = min(group, key=lambda t: (-counts[t], t))
            out.update({t: canonical for t in group})
    return out


def abbreviation_warnings(X: pd.DataFrame, categorical) -> list[str]:
    """A warning per categorical column of ``X`` holding a one-letter category and a word starting with that letter
    ('M' and 'Male', 'f' and 'Female'): likely one value written two ways in a hospital export, which the model
    takes as two categories (only letter case is merged, :func:`category_spellings`).  Never changes the data."""
    out = []
    for col in categorical:
        values = sorted({str(v).strip() for v in X[col].dropna()})
        letters = [v for v in values if len(v) == 1 and v.isalpha()]
        pairs = [(a, w) for a in letters for w in values
                 if len(w) > 1 and w[0].isalpha() and w.casefold().startswith(a.casefold())]
        if pairs:
            said = ", ".join(f"{a!r} and {w!r}" for a, w in pairs)
            out.append(f"{col}: the categories {said} look like one value written two ways (a letter and a word "
                       "starting with it); the model takes them as different categories, each learnt from part of "
                       "the patients - recode them in the table if they mean the same (e.g. every "
                       f"{pairs[0][0]!r} as {pairs[0][1]!r}) and train again")
    return out


def merge_note(spellings: dict[str, str]) -> str:
    """The spellings :func:`category_spellings` merged, as text ("'MALE', 'male' -> 'Male'; ..."), or ''."""
    merged = {}
    for text, canonical in sorted(spellings.items()):
        if text != canonical:
            merged.setdefault(canonical, []).append(text)
    return "; ".join(f"{', '.join(map(repr, texts))} -> {canonical!r}"
                     for canonical, texts in sorted(merged.items()))


def read_role_file(path) -> dict[str, tuple[str, str | None]]:
    """Read a role file -> {column: (role, type or None)}."""
    from lungai.io.tables import read_table_checked
    from lungai.rp.inputs import ROLE_FILE_FIX     # (checked by the CLI before pandas is imported: the same words)

    path = Path(path)     # missing, a folder, not UTF-8, another delimiter: refused, saying how to fix it
    df = read_table_checked(path, what="role file", fix=ROLE_FILE_FIX,
                            dtype=str, keep_default_na=False)
    missing = [c for c in ("column", "role") if c not in df.columns]
    if missing:
        raise InputError(f"role file {path} lacks {agree(len(missing), 'column', 'columns')} {missing}{suggest(missing[0], df.columns)}",
                         "the role file needs a header line 'column,role' (optional third column 'type')")
    out = {}
    for _, row in df.iterrows():
        role = row["role"].strip().lower()
        if role not in ROLES:
            raise InputError(f"role file {path}: unknown role {row['role']!r} for column {row['column']!r}"
                             f"{suggest(role, ROLES)}", f"use one of {', '.join(ROLES)}")
        kind = row.get("type", "").strip().lower() or None
        if kind not in (None, *TYPES):
            raise InputError(f"role file {path}: unknown type {kind!r} for column {row['column']!r}"
                             f"{suggest(kind, TYPES)}", "use numeric, binary or categorical (or leave it empty: "
                             "the type is then taken from the values)")
        out[row["column"].strip()] = (role, kind)
    return out


def role_file_id(role_file) -> str | None:
    """The column a role file declares as the patient id (role ``id``), or None (also without a role file)."""
    if not role_file:
        return None
    return next((c for c, (role, _) in read_role_file(role_file).items() if role == "id"), None)


def infer_roles(df: pd.DataFrame, outcome: str | None, role_file=None) -> ColumnRoles:
    """Roles of ``df``'s columns from the naming scheme, overridden by ``role_file``."""
    overrides = read_role_file(role_file) if role_file else {}
    # a role file's column spelled with another case / spacing than the table's header ('case id' for 'Case ID'):
    # that header (lungai.io.tables.match_headers, the rule of the automatic id detection and of the features too)
    for header, name in match_headers(overrides, df.columns, "the table", "the role file's column").items():
        overrides[str(header).strip()] = overrides.pop(name)
    stripped = {str(c).strip() for c in df.columns}        # exports often carry stray spaces ("Histology ")
    absent = [c for c in overrides if c not in stripped]
    if absent:
        hints = "; ".join(f"{c!r}{suggest(c, df.columns)}" for c in absent)
        raise InputError(f"the role file names {agree(len(absent), 'a column that is', 'columns that are')} not in the table: {hints}",
                         "fix the spelling in the role file or the table header")
    roles, categorical, binary, how, ignored, id_column = {}, [], [], {}, [], None
    for col in df.columns:
        if col in (outcome, SETTINGS_COLUMN):  # the radiomics settings id is checked, never a feature
            continue
        role, kind = overrides.get(str(col).strip(), (None, None))
        if role is None:
            role = next((r for p, r in PREFIXES.items() if col.startswith(p)), None)
            if role is None and is_id_name(col) and id_column is None:
                role = "id"
        if role == "id":
            id_column = col
        elif role in ("clinical", "dosimetric", "radiomic"):
            roles[col] = role
            if kind is not None:
                kind_how = "role file"
            elif col.endswith("_cat"):
                kind, kind_how = "categorical", "_cat suffix"
            else:
                kind, kind_how = _infer_type(df[col], col)
            how[col] = kind_how + value_notes(df[col], kind)
            if kind == "categorical":
                categorical.append(col)
            elif kind == "binary":
                binary.append(col)
        else:
            ignored.append(col)
    if not roles:
        raise InputError("the table has no feature columns (none starts with clin_, dose_ or rad_)",
                         "rename the feature columns with these prefixes or give a role file (--roles)")
    order = canonical_order(roles, roles)   # the features in one order, whatever the order of the table's columns
    roles = {c: roles[c] for c in order}
    categorical, binary = [c for c in order if c in categorical], [c for c in order if c in binary]
    return ColumnRoles(roles=roles, categorical=categorical, id_column=id_column, ignored=canonical_order(ignored),
                       binary=binary, how=how)


def is_missing_word(value, categorical: bool = False, rules: dict | None = None) -> bool:
    """An empty cell or a word meaning "no value" ("Not collected", "unknown", "n/a" ...
    :data:`lungai.io.tables.MISSING_WORDS`, the list of lungai stage too: :func:`lungai.io.tables.is_missing_cell`); in a
    ``categorical`` column "None" is a category (:data:`CATEGORY_WORDS`), unless the ``rules`` (a model card's
    ``category_rules``, default :data:`CATEGORY_RULES`) say otherwise."""
    return is_missing_cell(value, categorical and (rules or CATEGORY_RULES).get("none") == "category")


def value_notes(values: pd.Series, kind: str) -> str:
    """What ``rp train`` says of a feature's values beside its type: the words read as missing ("; 'None', 'NA' read
    as missing" - "None" not in a categorical column) and, for a categorical one, the spellings merged."""
    categorical = kind == "categorical"
    words = sorted({str(v).strip() for v in values.dropna() if is_missing_word(v, categorical) and str(v).strip()})
    note = f"; {', '.join(repr(w) for w in words)} read as missing" if words else ""
    if categorical:
        from lungai.rp.checks import category_text   # noqa: PLC0415 (checks imports this module)

        merged = merge_note(category_spellings(values.map(category_text)))
        note += f"; spellings differing only in case are one category: {merged}" if merged else ""
    return note


def infer_type(values: pd.Series, column: str = "") -> tuple[str, str]:
    """(type, how) of a feature column from its values: numeric, binary or categorical."""
    kind, how = _infer_type(values, column)
    return kind, how + value_notes(values, kind)


def _infer_type(values: pd.Series, column: str) -> tuple[str, str]:
    text = values[~values.map(is_missing_word)].map(lambda v: str(v).strip())
    if text.empty:
        return "numeric", "no values"
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        if set(numbers.unique()) <= {0.0, 1.0}:
            return "binary", "values 0/1"
        return "numeric", "numbers"
    words = set(text.str.lower())
    if words <= TRUE_WORDS | FALSE_WORDS:
        return "binary", f"values read as {binary_mapping(text)}"
    if numbers.notna().any():
        return "numeric", "mostly numbers"        # the text values are reported by numeric_features
    if text.map(decimal_comma_number).notna().all():
        # every value a number written with a decimal comma ('2,35'; a spreadsheet's export in a decimal-comma
        # locale): numbers, refused by numeric_features naming them (before: categories, or refused as free text)
        return "numeric", "numbers written with a decimal comma"
    if text.map(percent_number).notna().all():
        # every value a number written with a percent sign ('45%': a spreadsheet's cells formatted as percentages):
        # numbers, refused by numeric_features naming them (QA: before, categories - one per value)
        return "numeric", "numbers written with a percent sign"
    text = values[~values.map(lambda v: is_missing_word(v, categorical=True))].map(lambda v: str(v).strip())
    spellings = category_spellings(text)           # "None" a category; male / Male one category
    levels = sorted(set(text.map(lambda t: spellings.get(t, t))))
    if len(levels) > MAX_INFERRED_LEVELS and len(levels) > len(text) / 2:
        raise InputError(f"column {column!r} has {len(levels)} different texts in {len(text)} rows (e.g. "
                         f"{levels[:3]}): free text, dates or identifiers, not categories",
                         "mark it 'ignore' in a role file (--roles), or, if it really is categorical, declare it "
                         "(type categorical in the role file, or end its name with _cat)")
    shown = ", ".join(levels[:6]) + (", ..." if len(levels) > 6 else "")
    return "categorical", f"text values: {shown}"


def binary_mapping(texts) -> str:
    """How the words of a binary column are read, explicitly: "Yes -> 1, No -> 0" (the words read as 1 first)."""
    words = sorted({str(t).strip() for t in texts})
    ones = [w for w in words if w.lower() in TRUE_WORDS]
    zeros = [w for w in words if w.lower() in FALSE_WORDS]
    return ", ".join([f"{w} -> 1" for w in ones] + [f"{w} -> 0" for w in zeros])


def require_columns(df: pd.DataFrame, columns, what: str) -> None:
    """Raise naming every column of ``columns`` that ``df`` lacks, with close matches among the columns ``df`` holds
    that are not in ``columns`` (never another of ``columns``, there and right: QA rp68, "'clin_histology_cat' (did
    you mean 'clin_sex_cat'?)"); the fix says that a value not known may be left empty (imputed)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        unused = [c for c in df.columns if c not in set(columns)]  # likely misspellings
        # a dose column given in cGy (dose_mld_cgy for dose_mld_gy): named, and how to convert it (QA rpfollow68)
        cgy = {c: cgy_form(c, unused) for c in missing[:20] if cgy_form(c, unused)}
        hints = "; ".join(f"{c!r}{suggest(c, unused)}" + (f" ({cgy[c]} is in cGy: divide its values by 100 and name "
                                                           f"it {c})" if c in cgy else "") for c in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(f"{what}: {counted(len(missing), 'required column')} missing: {hints}{more}",
                         "add the columns (or fix their spelling) so the table matches the model's features"
                         + "".join(f"; {g} is in cGy: divide its values by 100 and name it {c}" for c, g in cgy.items())
                         + "; a feature not known for the patients: add its column and leave its cells empty "
                         "(imputed as the model was trained to, and named in each row's 'imputed')")
