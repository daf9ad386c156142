"""Label and missing-value handling: tokens that mean "missing", class grouping, stage from T/N/M."""

from __future__ import annotations

import re
import warnings
from typing import Optional

import numpy as np
import pandas as pd

from lungai.errors import InputError, InputNote, agree
from lungai.io.tables import MISSING_WORDS, is_missing_cell

# Values that clinical exports use for "no value" (compared case-insensitively, stripped): the one list of lungai rp and lungai stage (lungai.io.tables.MISSING_WORDS).
MISSING_TOKENS = MISSING_WORDS


def clean_missing(df: pd.DataFrame, categories: bool = False) -> pd.DataFrame:
    """Replace missing-value words ("Not Collected", "N/A", "Unknown", "not recorded", "." ... any case:
    :func:`lungai.io.tables.is_missing_cell`, the rule of ``lungai rp`` too) by NaN.  With ``categories`` (EHR
    features) "None" stays a category of a categorical column - one whose other values are not numbers
    (:data:`lungai.fusion.preprocess.NUMERIC_SHARE`) - as ``lungai rp`` reads it; it is missing in a numeric column,
    and always without ``categories`` (labels, T / N / M)."""
    from lungai.fusion.preprocess import NUMERIC_SHARE, _numeric_share

    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col].astype("object")
            categorical = categories and _numeric_share(
                s.where(~s.map(lambda v: isinstance(v, str) and is_missing_cell(v)), np.nan)) < NUMERIC_SHARE
            s = s.where(~s.map(lambda v: isinstance(v, str) and is_missing_cell(v, categorical)), np.nan)
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


# AJCC prefixes before T / N / M: c (clinical), p (pathological), yc / yp (after neoadjuvant therapy),
# r / rc / rp (recurrence), a (autopsy), u (ultrasound); case-insensitive, optional spaces ("p T2a", "ypT1")
_PREFIX = r"^\s*(?:yc|yp|rc|rp|c|p|y|r|a|u)?\s*"
# "cannot be assessed" values: known, not a number - a missing T / N, never "not understood"
_UNASSESSED = re.compile(_PREFIX + r"[TNM]\s*X\s*$", re.I)


# the values each category can take (AJCC 7th / 8th edition, lung; the union), each number with its own sub-letters
# only: T1a-c / T1mi, T2a-b (T0, T3, T4, Tis none); N1a-b, N2a / N2a1 / N2a2 / N2b (the IASLC N descriptors; N0, N3
# none); M1a-c (M0 none).  The whole value is read (anchored): T5, T2c, T4a, N4, M2, T12 are "not understood", never
# read as T1 / N... / M...; a space may follow the letter ("T 2a", "p N1").
_T_VALUES = r"(is|1(?:mi|[a-c])?|2[ab]?|[034])"
_N_VALUES = r"(1[ab]?|2(?:a[12]?|b)?|[03])"
_M_VALUES = r"(1[a-c]?|0)"


def _tnm(value, letter: str, values: str):
    """The value after the prefix and letter ('2b' of 'pT2b', 'T 2b'), lower case; None when ``value`` is not one."""
    m = re.match(_PREFIX + letter + r"\s*" + values + r"\s*$", str(value), re.I)
    return m.group(1).lower() if m else None


def _t_num(t) -> Optional[int]:
    g = _tnm(t, "T", _T_VALUES)
    if g is None:
        return None
    return 0 if g == "is" else int(g[0])


def _tis(t) -> bool:
    return _tnm(t, "T", _T_VALUES) == "is"


def _t2b(t) -> bool:
    return _tnm(t, "T", _T_VALUES) == "2b"


def _n_num(n) -> Optional[int]:
    g = _tnm(n, "N", _N_VALUES)
    return int(g[0]) if g is not None else None


def _m_num(m) -> Optional[int]:
    g = _tnm(m, "M", _M_VALUES)
    return int(g[0]) if g is not None else None


# the stage group of --stage-from holding stage III and stage IV alike (:func:`stage_group`)
LATE_GROUP = "III-IV"


def late_group_note(classes) -> Optional[str]:
    """What to say when the one class of a label is :data:`LATE_GROUP`: the group holds stage III and IV alike, so
    a stage III/IV cohort - the patients of a radiotherapy clinic - has that one class; None for other classes."""
    if [str(c) for c in classes] != [LATE_GROUP]:
        return None
    return (f"the stage group {LATE_GROUP} (--stage-from) holds stage III and stage IV alike, so a stage III/IV "
            "cohort has this one class")


def stage_groups_hint(values, classes) -> Optional[str]:
    """The ``--label-groups`` value that reads a cohort's overall stages (``values``: IIIA, IIIB, IV, Stage I ...)
    as the stage groups ``classes`` of a model trained with --stage-from (I / II / :data:`LATE_GROUP`); None when
    the classes are not those groups or a value is not an overall stage."""
    if sorted(map(str, classes)) != ["I", "II", LATE_GROUP]:
        return None
    groups: dict = {}
    for v in sorted({str(v) for v in values}):
        spelt = stage_spelling(v)
        if spelt is None and v not in classes:
            return None
        base = v if spelt is None else re.match(r"IV|I{1,3}", spelt).group()
        groups.setdefault(LATE_GROUP if base in ("III", "IV") else base, []).append(v)
    return ";".join(f"{c}={','.join(groups[c])}" for c in ("I", "II", LATE_GROUP) if c in groups)


def stage_group(t, n, m) -> Optional[str]:
    """AJCC 7th-edition overall stage collapsed to "I", "II", "III-IV" (None when T or N is unknown, or for a
    combination the AJCC table does not stage).  I and II need M0: with M unknown (MX, missing - it may be M1) a
    combination that would be I or II has no stage (it was read as M0).

    I: T1-T2a N0 and Tis N0; II: T2b N0, T1-T2 N1, T3 N0; III-IV: T3 N1, T4, N2-N3, or M1 (N2-N3 and M1 with any
    T - T0, Tis and an unknown T (TX) included - and T4 with any N, NX included: every AJCC group they could fall in
    is III or IV).  T0 (no evidence of a primary tumour) with N0 or N1 and no M1 has no stage group: None, as
    TX N0-N1 / NX (it was "I" / "II"); so has Tis N1 (AJCC stages Tis only as Tis N0 M0).
    T2a vs T2b needs the letter; plain "T2" counts as T2a.  The AJCC prefixes (c, p, yc, yp, r, a, u: pT2a, cN0,
    ypT1) are read as the plain value.
    """
    tn, nn, mn = _t_num(t), _n_num(n), _m_num(m)
    if mn == 1 or (nn is not None and nn >= 2) or tn == 4:
        return LATE_GROUP
    if tn is None or nn is None:
        return None
    t2b = _t2b(t)
    if tn == 3 and nn >= 1:
        return LATE_GROUP          # IIIA with M0, IV with M1: decided with M unknown too
    if mn is None:
        return None              # I / II only with M0: an unknown M (MX, missing) may be M1 (IV)
    if tn == 0 and (not _tis(t) or nn >= 1):
        return None
    if nn == 1 or tn == 3 or t2b:
        return "II"
    return "I"


# A header that names a T, N or M category (:func:`tnm_header`): its letter alone as a word, bare or with an AJCC
# prefix of a kind - p / yp pathological, c / yc clinical ('pT', 'ypN', 'cM') - or a word saying the kind
# ('Pathological T stage', 'AJCC Pathologic T', 'ajcc_clinical_n', 'Clinical M').  A letter among other words counts
# only beside a staging word or a kind ('T stage', 'N category'): 'Tumor size (cm)', 'Days between CT and surgery'
# name no category.
_TNM_HEADER_PREFIX = {"": "", "p": "pathological", "yp": "pathological", "c": "clinical", "yc": "clinical"}
_TNM_KIND_WORDS = {"pathological": "pathological", "pathologic": "pathological", "pathology": "pathological",
                   "path": "pathological", "clinical": "clinical", "clin": "clinical"}
_TNM_STAGE_WORDS = {"stage", "staging", "category", "classification", "descriptor", "ajcc", "tnm", "uicc"}


def tnm_header(name) -> Optional[tuple]:
    """(letter 'T' / 'N' / 'M', kind 'pathological' / 'clinical' / '' when not said) of a header that names a T, N or M
    category ('Pathological T stage', 'pT', 'cN', 'AJCC Pathologic M', 'T stage'), else None (no category, or one
    of several letters or kinds: 'TNM stage', 'T N M')."""
    words = [w for w in re.split(r"[\W_]+", str(name).casefold()) if w]
    letters, kinds = set(), {_TNM_KIND_WORDS[w] for w in words if w in _TNM_KIND_WORDS}
    said = bool(kinds) or bool(set(words) & _TNM_STAGE_WORDS)
    for w in words:
        m = re.fullmatch(r"(yp|yc|p|c)?([tnm])", w)
        if m:
            letters.add(m.group(2).upper())
            if m.group(1):
                kinds.add(_TNM_HEADER_PREFIX[m.group(1)])
    if len(letters) != 1 or len(kinds) > 1 or not (said or len(words) == 1):
        return None
    return letters.pop(), next(iter(kinds), "")


def stage_from_hint(df: pd.DataFrame) -> Optional[str]:
    """"--stage-from 'T col,N col,M col'" of the EHR table's T, N and M columns (:func:`tnm_header`; the pathological
    ones where the table has both kinds), or None when it has not one of each: the option that derives the stage group
    a ``--label`` absent from the table may have meant (``--label stage_group`` without ``--stage-from``, QA stage72:
    refused listing the 40 columns of NSCLC-Radiogenomics, the option that makes the label not named)."""
    found: dict = {}
    for c in df.attrs.get(READ_ATTR, df.columns):
        tnm = tnm_header(c)
        if tnm:
            found.setdefault(tnm, []).append(str(c))
    for kind in ("pathological", "clinical", ""):
        cols = [found.get((letter, kind), []) for letter in "TNM"]
        if all(len(c) == 1 for c in cols):
            return f"--stage-from {','.join(c[0].strip() for c in cols)!r}"
    return None


def reads_as_tnm(values, letter: str) -> bool:
    """Whether the values of a column (``values``) read as the T / N / M category ``letter`` ('T2a', 'pN0', 'MX'):
    half of its non-missing values at least; True for a column without a value (nothing says otherwise)."""
    parse = {"T": _t_num, "N": _n_num, "M": _m_num}[letter]
    s = clean_missing(pd.DataFrame({"v": list(values)}))["v"].dropna()
    if s.empty:
        return True
    read = sum(parse(v) is not None or bool(re.match(_PREFIX + letter + r"\s*X\s*$", str(v), re.I)) for v in s)
    return 2 * read >= len(s)


def tnm_kind_note(column, header) -> str:
    """' (a clinical category, 'Pathological T stage' a pathological one)' when ``header`` and ``column`` name T / N /
    M categories of different kinds (:func:`tnm_header`) - a look-alike of another kind is named with it; else ''."""
    a, b = tnm_header(column), tnm_header(header)
    if not a or not b or not a[1] or not b[1] or a[1] == b[1]:
        return ""
    return f" (a {b[1]} {b[0]} category, {column!r} a {a[1]} one)"


def stage0(t, n, m) -> bool:
    """Whether T / N / M is Tis N0 M0: AJCC stage 0 (carcinoma in situ), which :func:`stage_group` counts as "I"."""
    return _tis(t) and _n_num(n) == 0 and _m_num(m) == 0


DERIVED_ATTR = "lungai_derived_columns"    # df.attrs: {column lungai added: the column of the table it is from}
READ_ATTR = "lungai_read_columns"          # df.attrs: the EHR table's columns as read (before lungai added any)


def columns_text(df: pd.DataFrame, limit: int = 40) -> str:
    """'columns are: A, B, ...' for a refusal's fix: the EHR table's columns as read (``df.attrs`` :data:`READ_ATTR`,
    else ``df``'s), then the columns lungai derived named apart ('; lungai derives 'Years since quitting smoking' (from
    'Quit Smoking Year')').  QA stagefollow70: the lists gave the derived column as the table's, and not the quit year
    that the table has (cv / train replace it)."""
    read = list(df.attrs.get(READ_ATTR, df.columns))
    derived = {c: src for c, src in df.attrs.get(DERIVED_ATTR, {}).items() if c in df.columns}
    text = f"columns are: {', '.join(map(str, read[:limit]))}" + (" ..." if len(read) > limit else "")
    if derived:
        text += "; lungai derives " + ", ".join(f"{str(c)!r} (from {str(src)!r})" for c, src in derived.items())
    return text


def derive_stage(df: pd.DataFrame, t_col: str, n_col: str, m_col: str) -> pd.Series:
    absent = [col for col in (t_col, n_col, m_col) if col not in df.columns]
    if absent:
        from lungai.fusion.api import look_alike_headers

        # a header that looks like the absent column ('pathological_t_stage' for 'Pathological T stage', 'pT', 'AJCC
        # Pathologic T' - its values read as T values): named, with the --stage-from that uses it
        hints = look_alike_headers(absent, [h for h in df.columns if h not in (t_col, n_col, m_col)], df)
        columns = columns_text(df)      # the table's as read, a derived column apart
        if len(absent) == 1 or not hints:
            col = absent[0]
            hint = hints.get(col)
            raise InputError(f"stage column {col!r} is not in the EHR table"
                             + (f"; the table's {hint!r} looks like it{tnm_kind_note(col, hint)}" if hint else ""),
                             (f"if it is that column, pass --stage-from with {hint!r} in place of {col!r} or rename "
                              f"the header {hint!r} to {col!r}; otherwise " if hint else "")
                             + f"pass the T, N and M column names; {columns}")
        # several absent (a table of other headers: 'pT', 'pN', 'pM'): each look-alike named, and the whole
        # --stage-from with them in place of the absent names
        named = ", ".join(map(repr, absent))
        looks = "; ".join(f"the table's {hints[c]!r} looks like {c!r}{tnm_kind_note(c, hints[c])}"
                          for c in absent if c in hints)
        stage_from = ",".join(str(hints.get(c, c)) for c in (t_col, n_col, m_col))
        rest = [c for c in absent if c not in hints]
        raise InputError(f"stage columns {named} are not in the EHR table; {looks}",
                         f"if {agree(len(hints), 'it is that column', 'they are those columns')}, pass --stage-from "
                         f"{stage_from!r}" + (f" (with the table's name of {', '.join(map(repr, rest))} in its place)"
                                              if rest else "")
                         + f"; otherwise pass the T, N and M column names; {columns}")
    parsers = {t_col: _t_num, n_col: _n_num, m_col: _m_num}
    not_understood = {}
    for col, parse in parsers.items():
        s = clean_missing(df[[col]])[col]
        bad = sorted({str(v).strip() for v in s.dropna() if parse(v) is None and not _UNASSESSED.match(str(v))})
        if bad:
            not_understood[col] = bad
    values = [stage_group(t, n, m) for t, n, m in zip(df[t_col], df[n_col], df[m_col])]
    out = pd.Series(values, index=df.index, dtype="object")
    if not_understood:
        text = "; ".join(f"{col!r}: {', '.join(map(repr, v[:10]))}{' ...' if len(v) > 10 else ''}"
                         for col, v in not_understood.items())
        fix = ("write T / N / M as AJCC values (T1a, pT2b, Tis, TX; N0, cN1; M0, M1a), with an optional c / p / yc / "
               "yp / r / a / u prefix; mark unknown values empty or 'Not Collected'")
        if out.notna().sum() == 0:
            raise InputError(f"no patient's stage can be derived from --stage-from: values not understood: {text}", fix)
        warnings.warn(InputNote(f"--stage-from values not understood (those patients get no stage): {text} - {fix}"))
    return out


_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV"}


def stage_spelling(value) -> Optional[str]:
    """The stage a label value names, spelled one way ("Stage I", "1", "i" -> "I"; "3A", "Stage IIIa" -> "IIIA"):
    a leading "Stage" dropped (case-insensitive), Arabic 1-4 as Roman I-IV, sub-stage letters kept; None for a
    value that is not an overall stage (T1a, N0, ...)."""
    text = re.sub(r"^\s*stage\s*", "", str(value), flags=re.I).strip().upper()
    m = re.fullmatch(r"(IV|I{1,3}|[1-4])\s*([A-C][1-3]?)?", text)
    return _ROMAN.get(m.group(1), m.group(1)) + (m.group(2) or "") if m else None


# a T, N (and M) category written as one value: "T2N1M0", "pT1a N0 M0", "T3N2" - a TNM combination, not a stage
_AXIS_PREFIX = r"(?:yc|yp|rc|rp|c|p|y|r|a|u)?\s*"
# each category written as any number with sub-letters (T2c, T5, M2 are then "not understood" by stage_group's own
# reading, _T_VALUES / _N_VALUES / _M_VALUES, never a class of their own); a space may follow the letter, as there
_CAT = r"\s*(?:is|X|\d(?:mi|[a-d][12]?)?)"
_TNM_COMBINED = re.compile(_PREFIX + r"(T" + _CAT + r")\s*[,/;]?\s*(" + _AXIS_PREFIX + r"N" + _CAT + r")"
                           r"\s*[,/;]?\s*(" + _AXIS_PREFIX + r"M" + _CAT + r")?\s*$", re.I)


def tnm_combination(value) -> Optional[tuple]:
    """(T, N, M) of a label value that writes a whole TNM combination ("T2N1M0" -> ("T2", "N1", "M0"); M None when
    absent), else None."""
    m = _TNM_COMBINED.match(str(value))
    return (m.group(1), m.group(2), m.group(3)) if m else None


def check_tnm_combinations(values, column=None) -> None:
    """Refuse label values that are TNM combinations ("T2N1M0"): each combination would silently be a class of its
    own.  The error points to --stage-from (T, N and M in three columns) and gives the ``--label-groups`` value that
    merges them into the AJCC stage groups of :func:`stage_group`."""
    tnm = {v: tnm_combination(v) for v in values}
    tnm = {v: p for v, p in tnm.items() if p is not None}
    if not tnm:
        return
    groups: dict = {}
    ungrouped: dict = {"bad": [], "unknown": [], "m": [], "t0": []}    # no stage group - no label, never a class
    for v, (t, n, m) in tnm.items():
        bad = any(x is not None and parse(x) is None and not _UNASSESSED.match(x)
                  for x, parse in ((t, _t_num), (n, _n_num), (m, _m_num)))
        g = stage_group(t, n, m)     # as derive_stage: N2-N3 / M1 / T4 decide with the other value not understood
        if g:
            groups.setdefault(g, []).append(v)
        else:           # a value not understood (T5, M2), T or N unknown (TX, NX), M unknown, or T0 / Tis with
            # N0 / N1 and no M1 (not staged by AJCC)
            ungrouped["bad" if bad else "unknown" if _t_num(t) is None or _n_num(n) is None else
                      "m" if m is None or _m_num(m) is None else "t0"].append(v)
    merge = ";".join(f"{k}={','.join(vs)}" for k, vs in sorted(groups.items()))
    left_out = ungrouped["bad"] + ungrouped["unknown"] + ungrouped["m"] + ungrouped["t0"]
    if left_out:        # a group named "unknown" (a missing-value word) gives no label: clean_labels
        merge += ";unknown=" + ",".join(left_out)
    reasons = {"bad": "have a T, N or M value not understood (AJCC: T0-T4, Tis, TX with T1a-c / T1mi / T2a-b; N0-N3, NX; "
                      "M0, M1a-c, MX)",
               "unknown": "have T or N unknown", "m": "have M unknown or not given (I / II need M0)",
               "t0": "are T0 with N0 / N1 or Tis with N1, and no M1 (not staged by AJCC)"}
    left = "; ".join(f"{', '.join(map(repr, vs[:10]))}{' ...' if len(vs) > 10 else ''} {reasons[k]}"
                     for k, vs in ungrouped.items() if vs)
    left = (f" ({left}: no stage group - in the group 'unknown' those patients get no label and are left out, never "
            "a class)") if left else ""
    where = f" of column {column!r}" if column is not None else ""
    shown = ", ".join(map(repr, list(tnm)[:10])) + (" ..." if len(tnm) > 10 else "")
    raise InputError(f"label values{where} are TNM combinations ({shown}): each combination would be a class of its "
                     "own, not a stage",
                     "give T, N and M as three columns and derive the stage group with --stage-from 'T col,N col,M "
                     f"col', or merge the combinations into stage groups with --label-groups \"{merge}\"" + left)


def check_stage_spellings(labels: pd.Series, column=None) -> None:
    """Refuse label values that name the same stage spelled differently ('I', 'Stage I', '1'; 'IIIA', '3A'): each
    would be a class of its own.  They are never merged silently: the error names the groups and the
    ``--label-groups`` value that merges them.  TNM combinations ('T2N1M0') are refused too
    (:func:`check_tnm_combinations`)."""
    values = sorted({v for v in labels.dropna()}, key=str)
    check_tnm_combinations(values, column)
    groups: dict = {}
    for v in values:
        groups.setdefault(stage_spelling(v) or v, []).append(v)
    same = {k: vs for k, vs in groups.items() if len(vs) > 1}
    if same:
        where = f" of column {column!r}" if column is not None else ""
        text = "; ".join(f"{k}: {', '.join(map(repr, vs))}" for k, vs in same.items())
        merge = ";".join(f"{k}={','.join(vs)}" for k, vs in groups.items())
        raise InputError(f"label values{where} name the same stage spelled differently ({text}); each spelling "
                         f"would be a class of its own ({len(values)} classes instead of {len(groups)})",
                         f'merge them with --label-groups "{merge}", or correct the spellings in the table')


_WHOLE_TEXT = re.compile(r"\s*[+-]?\d+\.0*\s*$")


def label_text(value):
    """A label value as text, a whole number as written without a decimal part: a stage column of numbers with one
    empty cell is read by pandas as floats (1.0, NaN) - its classes are '1', '2', '3' as in the same column without
    a gap, never '1.0' (which no ``--label-groups "early=1,2"`` and no model trained on a gap-free table knows).
    Text '2.0' is 2 too; other values stripped text; a missing value (None, NaN) stays NaN."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return np.nan
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text.split(".")[0].strip().lstrip("+") if _WHOLE_TEXT.match(text) else text


def _class_key(value) -> str:
    """A label value as :func:`match_classes` compares it: the stage it names (:func:`stage_spelling`: 'Stage IIIA',
    '3A' -> 'IIIA'), else its :func:`label_text` ('1.0' -> '1')."""
    text = label_text(value)
    return stage_spelling(text) or text


def match_classes(labels: pd.Series, classes) -> pd.Series:
    """``labels`` with each value that is a model class written another way replaced by that class: the same stage
    spelled otherwise ('Stage IIIA' or '3A' for a class 'IIIA', '1' for 'I': :func:`stage_spelling`, as
    :func:`check_stage_spellings` compares them) or the same whole number ('1' for a class '1.0' of a model trained
    before whole numbers were written so, :func:`label_text`).  Other values as given (another stage - 'III' for
    'III-IV', 'IIIB' - is never guessed)."""
    by_key = {_class_key(c): c for c in classes}
    return labels.map(lambda v: v if v in classes else by_key.get(_class_key(v), v)
                      if isinstance(v, str) else v)


def clean_labels(labels: pd.Series, groups: Optional[dict] = None) -> pd.Series:
    """Labels as strings with missing tokens dropped to NaN and optional grouping applied (a group named by a
    missing-value word, "unknown=TXN0M0", gives its patients no label).  Whole numbers are written without a
    decimal part (:func:`label_text`), in the values and in the groups.  Without ``groups``,
    stages spelled differently are refused (:func:`check_stage_spellings`)."""
    s = clean_missing(labels.to_frame())[labels.name] if labels.name is not None else labels
    s = s.map(label_text)
    if not groups:
        check_stage_spellings(s, labels.name)
    if groups:
        groups = {label_text(k): v for k, v in groups.items()}
        unknown = sorted(set(s.dropna()) - set(groups))
        if unknown:
            raise InputError(f"label values {unknown} are not in any label group",
                             "add them to --label-groups or map them to a group")
        # a group named by a missing-value word ("unknown", "NA", empty): its patients get no label, not a class
        none = {k for k in set(groups.values()) if is_missing_cell(k)}
        s = s.map(lambda v: groups.get(v, np.nan) if isinstance(v, str) and groups.get(v) not in none else np.nan)
    return s
