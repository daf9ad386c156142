"""Checks of the tables (CSV / TSV) the commands read.

- :func:`check_delimiter` - a table read as comma- (or tab-) separated whose lines that delimiter does not split into
  a constant number of columns while another one (';' from a European spreadsheet, a tab) does was written with that
  other delimiter: refused, as every line would otherwise become one value (whole lines taken for patient IDs).
- :func:`table_delimiter` - a table asked for as comma-separated that is clearly ';'-separated (its header without a
  comma: Excel's 'CSV (comma delimited)' in a German / French / Dutch locale) is read so, its decimal commas as
  decimals, said once; a '.' between groups of three digits there ('1.234,5') is refused (:func:`check_thousands`),
  and so is a ';' file that could be read with commas too, naming both readings.
- :func:`data_lines` / :func:`row_lines` - the file line of each data row (a quoted cell over several lines, blank
  lines and rows of empty cells counted as the readers count them): the line every table error names.
- :func:`id_text` - a patient id as every join compares it: text, spaces around dropped, Unicode composed (NFC:
  'Müller' typed as 'u' + combining diaeresis, as macOS writes it, is the same patient as the precomposed 'Müller').
- :func:`duplicate_ids` / :func:`check_unique_ids` - patient ids that occur more than once, or that differ only in
  letter case, separators or invisible characters (:func:`ids_spelt_alike`: R01-023 / r01-023) (a patient counted twice leaks between
  cross-validation folds and makes outputs per patient ambiguous): refused, naming them.
- :func:`read_csv_text_ids` - a table read with its patient id column(s) as text: "007" stays "007" (pandas would
  read 7, which joins neither "007" of another table nor a DICOM PatientID).
- a table whose data rows end with an extra empty field (a trailing comma) is read with every column in place, not
  shifted under pandas' first-column row names; a value beyond the header's columns is refused, naming its line, and
  so is a row longer than the others (an unquoted comma in a value of a row ending empty) and a data row repeating
  the header; rows of empty cells only (',,,,') are left out (:func:`without_empty_rows`).
- :func:`read_table_checked` - the one reader of the commands' input tables: a missing path, a folder, an empty file,
  a file that is not UTF-8, one written with another delimiter or not parseable, a header without rows: refused
  (:func:`check_table_path`, :func:`table_read_error`), saying how to fix it.
- :func:`never_smoker_pack_years` - a never-smoker's missing pack-years ('N/A') are 0, not imputed: the one rule of
  ``lungai stage`` and ``lungai rp``.
- :data:`MISSING_WORDS` / :func:`is_missing_cell` - the words (any case, spaces around ignored) that mean "no value" in
  a cell: the one list of ``lungai rp`` and ``lungai stage``.
- :func:`name_key` / :func:`match_headers` - a table's header that is a model's column spelled with another case /
  spacing ('Histology' for 'Histology ', 'case id' for 'Case ID'): the one rule of ``lungai rp`` and ``lungai stage``.
- :func:`listed_path` / :func:`check_listed_files` - a file path written in a table (a manifest's image / mask): a
  relative one read from the table's folder; absolute ones that are missing because the data folder was moved are
  refused up front, naming where the file is now and the fix (relative paths); so are relative paths written from
  the current folder rather than the table's (the file found there, not beside the table).
  :func:`missing_listed_file`: a row's missing file named by its column and its cell as written.
"""

from __future__ import annotations

import contextlib
import csv
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable

from lungai.dicom.roles import DASHES
from lungai.errors import InputError, agree, check_input_file, counted, counted_of

# Words (any case, spaces around ignored) read as a missing value by lungai rp (:func:`lungai.rp.columns.is_missing_word`,
# where "None" is a category of a categorical column) and lungai stage (:func:`lungai.fusion.labels.clean_missing`):
# what registries and spreadsheets write for "no value" (NSCLC-Radiogenomics: 'Not Collected', 'N/A', 'Unknown',
# 'Not Recorded In Database', 'Not Assessed') and pandas' own list of missing-value strings.
MISSING_WORDS = frozenset({"", "na", "n/a", "#n/a", "#n/a n/a", "#na", "<na>", "nan", "-nan", "1.#ind", "-1.#ind",
                           "1.#qnan", "-1.#qnan", "none", "null", "missing", "unknown", "not known", "not collected",
                           "not recorded", "not recorded in database", "not assessed", "not available", "?", "-",
                           "."})


# Words of MISSING_WORDS that are a category of a categorical (text) column - "None": no comorbidity, never smoked,
# no adjuvant treatment - and missing in a numeric or binary column, an outcome or a label: the rule of lungai rp
# (:func:`lungai.rp.columns.is_missing_word`) and lungai stage's EHR features (:func:`lungai.fusion.labels.clean_missing`).
CATEGORY_WORDS = frozenset({"none"})
# How lungai rp and lungai stage read a table: only an empty cell is missing on reading, not pandas' own list of
# missing-value strings (which holds "None", "NULL", "NA" - case-sensitively: "None" but not "none"); each word of
# MISSING_WORDS is then missing by :func:`is_missing_cell`, by one rule for every spelling.
READ_OPTIONS = {"keep_default_na": False, "na_values": [""]}


def is_missing_cell(value, categorical: bool = False) -> bool:
    """An empty cell (None, NaN) or a word of :data:`MISSING_WORDS` ("Not collected", "unknown", " N/A ", "."); in a
    ``categorical`` column a word of :data:`CATEGORY_WORDS` ("None") is a category, not missing."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    word = str(value).strip().lower()
    return word in MISSING_WORDS and not (categorical and word in CATEGORY_WORDS)


# A never-smoker's pack-years are 0, not unknown: clinical exports leave them "N/A" (NSCLC-Radiogenomics: all 48
# "Nonsmoker" patients), which would be imputed with the training median - a smoker's ~40 pack-years (QA predict67).
# The smoking-status values (any case, runs of spaces / '_' / '-' as one space) that say a patient never smoked:
NEVER_SMOKER_WORDS = frozenset({"nonsmoker", "non smoker", "never", "never smoker", "never smoked", "never smoking",
                                "lifelong non smoker", "lifelong nonsmoker", "lifetime non smoker", "no smoking history"})


def _smoking_key(text) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", str(text)).split()).casefold()


def is_pack_years_name(name) -> bool:
    """A pack-years column ('Pack Years', 'pack_years', 'clin_pack_years', 'PackYrs', 'pack-year history')."""
    key = re.sub(r"[^a-z]", "", str(name).casefold())
    return "pack" in key and ("year" in key or "yr" in key)


def is_smoking_status_name(name) -> bool:
    """A smoking-status column ('Smoking status', 'smoking', 'clin_smoking_cat', 'Smoker') - not the pack-years or a
    quit year / age / date of smoking."""
    key = re.sub(r"[^a-z]", "", str(name).casefold())
    return "smok" in key and not is_pack_years_name(name) and not any(w in key for w in ("quit", "year", "age", "date",
                                                                                         "stop", "start", "duration"))


def is_never_smoker(value) -> bool:
    """A smoking-status value that says the patient never smoked (:data:`NEVER_SMOKER_WORDS`: 'Nonsmoker',
    'non-smoker', 'Never smoker' ...)."""
    return isinstance(value, str) and _smoking_key(value) in NEVER_SMOKER_WORDS


# The key of a table's ``attrs`` where :func:`never_smoker_pack_years` records what it read as 0 (for the caller's
# note once it knows the columns it uses: :func:`never_smoker_note`).
NEVER_SMOKER_ATTR = "never_smoker_pack_years"


def never_smoker_pack_years(df, what: str, used=None, say: bool = True):
    """``df`` (a table as read: one row per patient, cells as written) with the missing pack-years (an empty cell or a
    word of :data:`MISSING_WORDS`: 'N/A', 'Not Collected' ...) of the patients whose smoking status says they never
    smoked (:func:`is_never_smoker`) set to 0 - a never-smoker's pack-years are 0, not a value to impute: the training
    median would give them a smoker's pack-years (NSCLC-Radiogenomics: 37 for its 48 'Nonsmoker' patients, whose
    'Pack Years' are all 'N/A').  Said once in a note (``what``: the table) naming the columns, the status values and
    how many patients (:func:`never_smoker_note`) - only for the pack-years columns in ``used``, the columns the run
    uses (None: every column; a pack-years column left out - ``--drop``, a role file without it - is read as 0 all
    the same, but not said: QA predictfollow67).  ``say`` False: nothing said here - the caller, which learns its
    columns later, says :func:`never_smoker_note` of the table returned (its ``attrs`` record what was read as 0).
    A pack-years value that is written is never changed; a table without one pack-years column
    (:func:`is_pack_years_name`) and one smoking-status column holding a never-smoker value is returned as it is.
    The one rule of ``lungai stage`` (:func:`lungai.fusion.data.load_ehr`) and ``lungai rp``
    (:func:`lungai.rp.checks.patients_table`)."""
    import warnings

    import pandas as pd

    from lungai.errors import InputCheckNote

    packs = [c for c in df.columns if is_pack_years_name(c)]
    status = [c for c in df.columns if is_smoking_status_name(c) and df[c].map(is_never_smoker).any()]
    if not packs or len(status) != 1:
        return df
    never = df[status[0]].map(is_never_smoker).to_numpy(dtype=bool)
    out, counts = df, []
    for col in packs:
        gap = never & df[col].map(is_missing_cell).to_numpy(dtype=bool)
        if not gap.any():
            continue
        if out is df:
            out = df.copy()
        numeric = pd.api.types.is_numeric_dtype(out[col])
        out.loc[gap, col] = 0.0 if numeric else "0"
        counts.append((col, [(row, str(word).strip()) for row, word in zip(out.index[gap], df[status[0]][gap])]))
    if counts:
        out.attrs[NEVER_SMOKER_ATTR] = {"what": what, "status": status[0], "counts": counts}
        text = never_smoker_note(out, used)
        if say and text:
            warnings.warn(InputCheckNote(text))
    return out


def never_smoker_note(record, used=None, rows=None) -> str | None:
    """The note of :func:`never_smoker_pack_years` on the pack-years columns among ``used`` (the columns the run
    uses; None: all) that it read as 0, or None (none read so, or none of them used).  ``rows``: the patients (the
    table's index labels) the run uses, None: all - one patient's row of a table (``lungai demo``, the Slicer stage
    panel) is said as that patient's, not the table's (QA predictfollow67: "48 patients ..." for a smoker's row).
    ``record``: the table it returned (its ``attrs``) or that record itself."""
    if record is None:
        return None
    if not isinstance(record, dict):
        record = getattr(record, "attrs", {}).get(NEVER_SMOKER_ATTR)
        if record is None:
            return None
    wanted = None if used is None else {str(c) for c in used}
    chosen = None if rows is None else set(rows)
    counts = [(c, [(r, w) for r, w in filled if chosen is None or r in chosen]) for c, filled in record["counts"]
              if wanted is None or str(c) in wanted]
    counts = [(c, filled) for c, filled in counts if filled]
    if not counts:
        return None
    said = [f"{counted(len(filled), 'patient')} without {col!r}" for col, filled in counts]
    total = sum(len(filled) for _, filled in counts)
    words = sorted({w for _, filled in counts for _, w in filled})
    return (f"{record['what']}: {', '.join(said)} whose {record['status']!r} is "
            f"{' / '.join(map(repr, words))} {agree(total, 'is', 'are')} read as 0 pack-years - a "
            "never-smoker's pack-years are 0, not a missing value to impute (the training median would give them a "
            "smoker's pack-years); if such a patient did smoke, correct the smoking status or write the pack-years")


# A current smoker's quit year is empty, as a never-smoker's is (NSCLC-Radiogenomics' 'Quit Smoking Year': 'N/A' for
# its 33 current smokers, 48 never-smokers and 22 former smokers alike); imputed with the training median, a current
# smoker got a quit year he never had (stageqa68).  The feature that replaces it (:func:`with_years_since_quitting`):
QUIT_YEARS = "Years since quitting smoking"
# smoking-status values (as :func:`_smoking_key` writes them) that say the patient smokes now
CURRENT_SMOKER_WORDS = frozenset({"current", "current smoker", "active smoker", "currently smoking",
                                  "current every day smoker", "current everyday smoker", "current some day smoker",
                                  "current someday smoker", "current some days smoker"})


def is_current_smoker(value) -> bool:
    """A smoking-status value that says the patient smokes now ('Current', 'current smoker', 'Active smoker' ...) - not
    'Smoker', which may mean an ever-smoker."""
    return isinstance(value, str) and _smoking_key(value) in CURRENT_SMOKER_WORDS


# smoking-status values (as :func:`_smoking_key` writes them) that say the patient smoked and quit: they mark a column
# as the smoking status as the never- and current-smoker words do (:func:`with_years_since_quitting`; a former smoker
# is any other status there)
FORMER_SMOKER_WORDS = frozenset({"former", "former smoker", "formerly smoked", "ex smoker", "exsmoker", "past smoker",
                                 "previous smoker", "quit", "quit smoking", "quitter"})


def is_former_smoker(value) -> bool:
    """A smoking-status value that says the patient smoked and quit ('Former', 'former smoker', 'Ex-smoker' ...)."""
    return isinstance(value, str) and _smoking_key(value) in FORMER_SMOKER_WORDS


def is_quit_year_name(name) -> bool:
    """A column of the year the patient quit smoking ('Quit Smoking Year', 'quit_year', 'Year quit smoking') - not
    :data:`QUIT_YEARS` (years since quitting)."""
    key = re.sub(r"[^a-z]", "", str(name).casefold())
    return "quit" in key and ("year" in key or "yr" in key) and "since" not in key


def _reference_date_column(columns):
    """The column of the date the years since quitting are counted to: a diagnosis date ('Date of Diagnosis'), else
    the CT's ('CT Date', 'ct_date'); None without one."""
    words = {c: set(re.findall(r"[a-z]+", str(c).casefold().replace("_", " "))) for c in columns}
    for wanted in ({"diagnosis", "date"}, {"ct", "date"}):
        found = [c for c, w in words.items() if wanted <= w]
        if found:
            return found[0]
    return None


def _year(value) -> float:
    """The year of a date as written ('8/10/1994', '1994-08-10', '10.08.1994', 1994): its 4-digit year, else NaN."""
    import math

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and 1800 <= value <= 2100 else math.nan
    m = re.search(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", str(value)) if isinstance(value, str) else None
    return float(m.group(1)) if m else math.nan


def with_years_since_quitting(df, what: str, keep_quit_year: bool = True, keep_fix: str | None = None,
                              drop_fix: str | None = None):
    """(``df`` with the column :data:`QUIT_YEARS`, the text to say or None).  For a table with one quit-year column
    (:func:`is_quit_year_name`), one smoking-status column (:func:`is_smoking_status_name`) with a never-, current or
    former smoker's value (:func:`is_former_smoker`: one patient's row of a former smoker - the Slicer panel's, ``lungai
    demo --clinical``'s, ``predict_stage(ehr_row=...)`` - has no other; QA stage70: before, such a row got no feature,
    imputed with the training median, and a note asking for the columns it had) and a date column
    (:func:`_reference_date_column`; missing cells NaN, as
    :func:`lungai.fusion.labels.clean_missing` leaves them): a former smoker's years since quitting are the date's
    year minus the quit year (at least 0; missing where either is: imputed, from the training former smokers:
    :class:`lungai.io.impute.SmokersMedianImputer`), a current smoker's 0, a never-smoker's 0 too - the status
    column tells the two apart (one-hot) - and a patient's without a status missing.  ``keep_quit_year`` False
    (``lungai stage cv`` / ``train``: the feature replaces it) drops the quit-year column and says so; True
    (validate / predict: a model trained before this rule has the quit year as its feature) keeps it, unsaid.
    Without a date column the table is returned as it is, with a text for training (``keep_quit_year`` False) saying
    why and what to do; a table without the quit-year or the status column (or already with :data:`QUIT_YEARS`)
    is returned as it is, nothing said.  ``keep_fix`` / ``drop_fix``: the fix the text gives to keep the quit year
    as a feature too / to leave it out (default ``lungai stage``'s --keep-column / --drop; ``lungai rp``, whose
    columns are chosen by name or role file, gives its own: :func:`lungai.rp.checks.years_since_quitting_features`)."""
    import numpy as np
    import pandas as pd

    quits = [c for c in df.columns if is_quit_year_name(c)]
    status = [c for c in df.columns if is_smoking_status_name(c)
              and df[c].map(lambda v: is_never_smoker(v) or is_current_smoker(v) or is_former_smoker(v)).any()]
    if len(quits) != 1 or len(status) != 1 or QUIT_YEARS in df.columns:
        return df, None
    quit, smoking = quits[0], status[0]
    if keep_fix is None:
        keep_fix = f"to keep it as a feature too: --keep-column {str(quit).strip()!r}"
    if drop_fix is None:
        drop_fix = f"--drop {str(quit).strip()!r}"
    date = _reference_date_column([c for c in df.columns if c not in (quit, smoking)])
    if date is None:
        return df, None if keep_quit_year else (
            f"{what}: {quit!r} is empty for current smokers and never-smokers alike - imputed with the training "
            "median, it gives a current smoker a quit year he never had; give the table a date column ('CT Date' or "
            f"'Date of Diagnosis') to have it replaced by the feature {QUIT_YEARS!r}, or leave it out ({drop_fix})")
    never = df[smoking].map(is_never_smoker).to_numpy(bool)
    current = df[smoking].map(is_current_smoker).to_numpy(bool)
    former = df[smoking].notna().to_numpy(bool) & ~never & ~current
    elapsed = (df[date].map(_year).astype(float) - pd.to_numeric(df[quit], errors="coerce")).clip(lower=0)
    years = np.where(never | current, 0.0, np.where(former, elapsed.to_numpy(float), np.nan))
    out = df.copy()
    out[QUIT_YEARS] = years
    if keep_quit_year:
        return out, None
    out = out.drop(columns=[quit])
    gap = int(np.isnan(years[former]).sum())
    return out, (f"{what}: {quit!r} is replaced by the feature {QUIT_YEARS!r}: the year of {date!r} minus the quit year "
                 f"for the {counted(int(former.sum()), 'former smoker')}"
                 + (f" ({gap} without a quit year or date: imputed with the training median of the values above 0, "
                    "the former smokers')" if gap else "")
                 + f", 0 for the {counted(int(current.sum()), 'current smoker')} and the "
                 f"{counted(int(never.sum()), 'never-smoker')} ({smoking!r} tells them apart) - the quit year, empty "
                 "for a current smoker as for a never-smoker, was imputed with the training median: a quit year a "
                 f"current smoker never had ({keep_fix})")


def decimal_comma_number(text) -> float | None:
    """The number a value written with one decimal comma means ("12,8" -> 12.8, "-0,5" -> -0.5), else None (a value
    without a comma, or not a number with its comma read as a point).  The one reading of a decimal comma: the hint
    below and the type decision of a column (``lungai rp``'s :func:`lungai.rp.columns.infer_type`, ``lungai
    stage``'s :func:`lungai.fusion.data.check_numeric_text`), where such a column is refused, never read as text."""
    written = "" if text is None else str(text).strip()
    if written.count(",") != 1:
        return None
    try:
        value = float(written.replace(",", "."))
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


# The fix for numbers written with a decimal comma in a comma-separated table (a spreadsheet in a decimal-comma locale
# saved with ',' as the field separator quotes them: "2,35"): the one wording of lungai rp and lungai stage.
DECIMAL_COMMA_FIX = ("write the numbers with a decimal point (2.35, not 2,35): set the spreadsheet's decimal separator "
                     "to '.' (or replace ',' by '.' in this column) and save the CSV again; leave a cell empty for a "
                     "missing value")


def decimal_comma_hint(text) -> str:
    """`` (type 12.8: a decimal point, not a comma)`` for a value written with a decimal comma ("12,8"), else ''.
    The one wording of this hint (the clinical form of ``lungai rp``, ``lungai stage predict``'s EHR values)."""
    if decimal_comma_number(text) is None:
        return ""
    example = str(text).strip().replace(",", ".", 1)
    if re.fullmatch(r"[+-]?\d{1,3}\.\d{3}", example):      # '1,234': a thousands separator, or a decimal comma
        return f" (type {example} for a decimal comma, {example.replace('.', '')} for a thousands separator)"
    return f" (type {example}: a decimal point, not a comma)"


_PERCENT = re.compile(r"([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*%")


def percent_number(text) -> float | None:
    """The number a value written with a percent sign means, as written ("45%" -> 45.0, "12.5 %" -> 12.5, a decimal
    comma too: "12,5%" -> 12.5), else None: what a spreadsheet writes for a cell formatted as a percentage (its value
    0.45 shown as 45%).  Such a column is refused, never read as text (QA: ``rp train`` took FEV1 '45%' ... as a
    categorical column, one category per value; ``lungai stage`` left it out or made it categories), as which number
    is meant - 45 or 0.45 - is the user's choice (:data:`PERCENT_FIX`)."""
    match = _PERCENT.fullmatch("" if text is None else str(text).strip())
    if match is None:
        return None
    try:
        return float(match.group(1).replace(",", "."))
    except ValueError:
        return None


# The fix for numbers written with a percent sign (a spreadsheet's cells formatted as Percentage): the one wording
# of lungai rp and lungai stage.
PERCENT_FIX = ("write the numbers without the percent sign (45 for 45 %, or 0.45 if the column holds fractions): format "
               "the spreadsheet's cells as Number, not Percentage, and save the CSV again; leave a cell empty for a "
               "missing value")


def number_hint(text) -> str:
    """The hint for a number that is not read as one because a spreadsheet formatted it: a decimal comma
    (:func:`decimal_comma_hint`) or a percent sign (`` (type 45: a number without the percent sign)``); else ''."""
    hint = decimal_comma_hint(text)
    if hint or percent_number(text) is None:
        return hint
    return f" (type {percent_number(text):g}: a number without the percent sign)"


def name_key(text) -> str:
    """``text`` with case and runs of spaces ignored ('Histology ', ' HISTOLOGY' -> 'histology'): how a table's value
    or header is matched to a model's level or column."""
    return " ".join(str(text).split()).casefold()


# The names of the patient id column of every table lungai reads, in order of preference (``lungai cohort
# --clinical`` takes the first it finds): lungai rp's and lungai cohort's (case - a CT series, P_1 -, patient_id, id),
# a research group's or lungai stage's ('Case ID' of NSCLC-Radiogenomics' clinical CSV, subject ...) and the DICOM
# tag's (PatientID, 'Patient ID'); any letter case, spacing or '_' (:func:`id_name_key`).  The one list of lungai rp,
# lungai stage and lungai cohort --clinical (a 'Patient ID' header was the id for cohort and stage, not for rp).
# A hospital's medical record number (MRN: what the DICOM PatientID of its CTs holds, so cohort prefers it) and
# REDCap's record_id (the first column of every REDCap export) last: QA - an rp table keyed by record_id had no id
# column, so a patient listed twice went unchecked and sat in both cross-validation folds.
ID_NAMES = ("case", "patient_id", "id", "case id", "patient id", "patientid", "case_id", "subject", "subject_id",
            "mrn", "record_id")
_JOINED_ID_NAMES = {"patientid": "patient id", "caseid": "case id", "subjectid": "subject id",
                    "recordid": "record id"}


def id_name_key(name) -> str:
    """``name`` as an id column's name is compared: case, spaces, '_', '-' and '.' ignored, the words written together
    too ('Patient ID', 'PatientID', ' patient_id ', 'Patient-ID', R's 'Patient.ID' -> 'patient id'; 'Case_ID' ->
    'case id')."""
    key = name_key(re.sub(r"[_.\-]", " ", str(name)))
    return _JOINED_ID_NAMES.get(key, key)


def is_id_name(name, names: Iterable[str] = ID_NAMES) -> bool:
    """Whether a column's ``name`` is one of the id ``names`` (default :data:`ID_NAMES`), spelled any way
    :func:`id_name_key` ignores."""
    return id_name_key(name) in {id_name_key(n) for n in names}


# A column naming the site / hospital a patient was treated at ('Patient affiliation' of NSCLC-Radiogenomics: Stanford
# / VA, whose patients differ in smoking - 28 % vs 6 % never-smokers among the 162 staged patients): a model may learn
# the site instead of the outcome, and it does not carry to another site (:func:`is_site_name`; lungai stage cv / train
# warn of it)
SITE_WORDS = ("affiliation", "hospital", "institution", "institute")     # anywhere in the name ('PatientAffiliation')
SITE_WHOLE_WORDS = frozenset({"site", "center", "centre", "clinic", "facility"})    # a word of the name ('Study site')
# a 'site' of the body, not of care ('Primary tumor site', 'Biopsy site', 'Metastasis site')
BODY_SITE_WORDS = frozenset({"tumor", "tumour", "primary", "biopsy", "metastasis", "metastatic", "metastases",
                             "recurrence", "lesion", "nodule", "cancer", "disease", "anatomic", "anatomical", "body",
                             "sample", "specimen", "radiation", "surgery", "surgical", "injection"})


def is_site_name(name) -> bool:
    """A column named as the site / hospital / institution a patient was treated at ('Patient affiliation',
    'Hospital', 'Study site', 'Treating institution', 'center') - not a body site ('Primary tumor site')."""
    text = str(name).casefold()
    words = set(re.findall(r"[a-z]+", text.replace("_", " ")))
    if words & BODY_SITE_WORDS:
        return False
    return any(w in re.sub(r"[^a-z]", "", text) for w in SITE_WORDS) or bool(words & SITE_WHOLE_WORDS)


def site_columns(df, columns) -> dict:
    """{column: its values, sorted} for each of ``columns`` (of the DataFrame ``df``) named as a site / hospital
    (:func:`is_site_name`) that holds more than one value - missing cells (empty, NaN, 'N/A': :func:`is_missing_cell`)
    aside: one hospital gives a model nothing to learn."""
    found = {}
    for c in columns:
        if is_site_name(c):
            values = sorted({str(v).strip() for v in df[c] if not is_missing_cell(v)})
            if len(values) > 1:
                found[c] = values
    return found


def _site_columns_named(what: str, sites: dict) -> str:
    """The start of :func:`site_column_text` and :func:`site_kept_text`: the table, its site columns and their first
    values."""
    names = list(sites)
    values = sites[names[0]]
    n = len(names)
    return (f"{what}: {agree(n, 'column', 'columns')} {', '.join(map(repr, names))} "
            f"{agree(n, 'names', 'name')} the site / hospital a patient was treated at ("
            f"{', '.join(map(repr, values[:4]))}{' ...' if len(values) > 4 else ''})")


def site_column_text(what: str, sites: dict, instead_of: str, fix: str) -> str:
    """The warning of a site / hospital column among the features (``sites``: :func:`site_columns`) - the one text of
    ``lungai stage cv`` / ``train`` and ``lungai rp train``: ``what`` the table, ``instead_of`` what the model is to
    learn ('the stage', "the outcome 'Recurrence'"), ``fix`` how to leave the columns out (each command's own)."""
    names = list(sites)
    n = len(names)
    return (f"{_site_columns_named(what, sites)} and "
            f"{agree(n, 'is a feature', 'are features')}: sites differ in case mix (smoking, stage, scanners), so the "
            f"model can learn the site instead of {instead_of}, and it does not carry to another site - leave "
            f"{agree(n, 'it', 'them')} out ({fix})")


def site_kept_text(what: str, sites: dict, instead_of: str, option: str = "--keep-column") -> str:
    """The note of site / hospital columns (``sites``: :func:`site_columns`) the user keeps as features on purpose
    (``option``, e.g. lungai stage's --keep-column): said once in place of :func:`site_column_text`'s warning - kept on
    request, with what that risks, and no --drop asked for."""
    names = list(sites)
    n = len(names)
    return (f"{_site_columns_named(what, sites)} and "
            f"{agree(n, 'is', 'are')} kept as {agree(n, 'a feature', 'features')} on request ("
            + " ".join(f"{option} {str(c).strip()!r}" for c in names)
            + f"): the model can learn the site instead of {instead_of}; check that it carries to another site "
            "before using it there")


def match_headers(wanted: Iterable, columns: Iterable, what: str = "the table", kind: str = "the model's column"
                  ) -> dict:
    """{header of ``columns``: the name of ``wanted`` it is} for each wanted name (a model's column) absent from
    ``columns`` under its own name but present with another case / spacing (:func:`name_key`: 'Histology' or
    'HISTOLOGY' for the model's 'Histology ', 'case id' for 'Case ID'); a header that is itself a wanted name is never
    taken for another.  Two headers matching one wanted name are refused, naming them.  The one header rule of
    ``lungai stage`` (EHR columns) and ``lungai rp`` (features, the id column)."""
    wanted = [str(w) for w in wanted]
    columns = list(columns)
    there, names = {str(c) for c in columns}, set(wanted)
    renames = {}
    for name in wanted:
        if name in there:
            continue
        hits = [c for c in columns if name_key(c) == name_key(name) and str(c) not in names]
        if len(hits) > 1:
            raise InputError(f"{what} has {len(hits)} columns that are {kind} {name!r} spelled "
                             f"differently: {', '.join(map(repr, hits))}",
                             f"keep one of them (or give it {kind}'s name exactly)")
        if hits:
            renames[hits[0]] = name
    return renames

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


SAMPLE_LINES = 50          # the lines (records) of a table that decide its delimiter


def _field_counts(path, delimiter: str) -> list[int]:
    """Fields per record of the first :data:`SAMPLE_LINES` non-empty records of ``path`` read with ``delimiter``
    (quotes respected); [] when the file cannot be read."""
    counts = []
    try:
        with Path(path).open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            for row in csv.reader(fh, delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    counts.append(len(row))
                if len(counts) >= SAMPLE_LINES:
                    break
    except (OSError, csv.Error):
        return []
    return counts


def _splits(counts: list[int]) -> bool:
    """The delimiter splits every record into the same number (>= 2) of fields."""
    return bool(counts) and counts[0] >= 2 and all(n == counts[0] for n in counts)


def check_delimiter(path, frame=None, sep: str = ",", what: str = "table") -> None:
    """Refuse the table ``path`` (read with ``sep`` into ``frame``) when it was written with another delimiter: ``sep``
    does not split its lines into a constant number (>= 2) of columns and another delimiter does (a ';' CSV from a
    European spreadsheet read as comma-separated: every line one value, or a few where names hold commas).  A
    column name holding commas or semicolons, quoted or in a tab-separated file, is just a name."""
    name = DELIMITER_NAMES.get(sep, repr(sep))
    mine = _field_counts(path, sep)
    if not mine:                                   # not readable here: judge the parsed header
        names = [str(c) for c in frame.columns] if frame is not None else []
        other = next((d for d in DELIMITER_NAMES if d != sep and len(names) == 1 and d in names[0]), None)
        if other is not None:
            raise InputError(f"{what} {path} is not {name}-separated: its one column {names[0][:60]!r} holds "
                             f"{DELIMITER_NAMES[other]}s",
                             "save it as a comma-separated CSV (spreadsheet: Save As 'CSV (comma delimited)')")
        return
    if _splits(mine):
        return
    for other in DELIMITER_NAMES:
        if other == sep:
            continue
        theirs = _field_counts(path, other)
        if _splits(theirs):
            counts = sorted(set(mine))
            fields = counted(counts[0], "field") if len(counts) == 1 else f"{counts[:5]} fields"
            raise InputError(f"{what} {path} is not {name}-separated: read with {name}s its lines have "
                             f"{fields}, with {DELIMITER_NAMES[other]}s {theirs[0]} each",
                             "save it as a comma-separated CSV (spreadsheet: Save As 'CSV (comma delimited)')")


UTF8_FIX = "save it as UTF-8 (Excel: 'CSV UTF-8 (comma delimited)')"


def table_delimiter(path, sep: str = ",", what: str = "table") -> str:
    """The delimiter the table ``path`` is read with: ``sep``, or ';' for a table asked for as comma-separated that is
    clearly semicolon-separated - what Excel writes as 'CSV (comma delimited)' in a decimal-comma locale (German,
    French, Dutch ...), where that fix cannot be followed: ';' splits every line into the same number (>= 2) of
    fields, ',' does not, and the header holds no comma (a clear sniff).  A header holding commas too - both readings
    possible - is refused, naming both."""
    if sep != ",":
        return sep
    mine = _field_counts(path, ",")
    if not mine or _splits(mine):
        return sep
    theirs = _field_counts(path, ";")
    if not _splits(theirs):
        return sep
    if mine[0] >= 2:                       # the header holds commas: ',' could be meant as well
        raise InputError(f"{what} {path} could be comma- or semicolon-separated: read with commas its header has "
                         f"{mine[0]} columns and its lines {sorted(set(mine))[:5]} fields, with semicolons "
                         f"{theirs[0]} columns on every line",
                         "save it as a comma-separated CSV (spreadsheet: Save As 'CSV UTF-8 (comma delimited)'), or "
                         "with ';' as separator and no ',' in the header row")
    return ";"


# a number written with '.' between groups of three digits ('1.234', '1.234,5'): in a decimal-comma table a
# thousands separator, or a decimal point - which, cannot be told
# '1,5', '-0,25', ',5', '-7,8E-05' (a small number as a spreadsheet / R's write.csv2 writes it): a number in a
# decimal-comma table
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d*)?")


def check_thousands(df, path, id_columns=(), what: str = "table", header: bool = True) -> None:
    """Refuse a value of the semicolon-separated (decimal-comma) table ``path`` written with a '.' between groups of
    three digits ('1.234,5', '1.234'): a thousands separator (1234.5) or a decimal point (1.234) - read as text,
    the column would become categories or be refused far from the cause.  Id columns are left as written.
    ``header``: False for a table read without a header row (its first line is ``df``'s first row)."""
    lines = None
    for col in df.columns:
        if col in id_columns or not (df[col].dtype == object or str(df[col].dtype) in ("str", "string")):
            continue
        cells = [v.strip() if isinstance(v, str) else "" for v in df[col]]
        hits = [k for k, v in enumerate(cells) if _THOUSANDS.fullmatch(v)]
        if hits:
            lines = lines or data_lines(path, ";", header)
            k = hits[0]
            line = lines[k] if k < len(lines) else k + 2
            value = cells[k]
            raise InputError(f"{what} {path} (read as semicolon-separated, decimal commas) has {value!r} in column "
                             f"{col!r} (line {line}{f' and {len(hits) - 1} more' if len(hits) > 1 else ''}): a "
                             "'.' between groups of three digits - a thousands separator or a decimal point?",
                             f"write the numbers without thousands separators ({value.replace('.', '')} if the '.' "
                             "separates thousands) and with a decimal comma (1,5)")


def row_lines(path, positions, sep: str = ",") -> list[int]:
    """The file lines (:func:`data_lines`) of the rows at ``positions`` of the table ``path`` as read (its delimiter
    as :func:`table_delimiter` finds it); position + 2 where the file cannot be read again."""
    try:
        lines = data_lines(path, table_delimiter(path, sep))
    except InputError:
        lines = []
    return [lines[p] if 0 <= p < len(lines) else p + 2 for p in positions]


def data_lines(path, sep: str = ",", header: bool = True) -> list[int]:
    """The line number (in the file, the header's line 1) of each data row of the table ``path``, as the readers keep
    them: a quoted cell over several lines counts its lines, blank lines and rows of empty cells (',,,',
    :func:`without_empty_rows`) are left out.  For errors naming a row's line; [] when unreadable.  ``header``:
    False for a table read without a header row (every line a row)."""
    lines = []
    try:
        with Path(path).open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            start = 1
            for row in reader:
                if any(cell.strip() for cell in row):
                    lines.append(start)
                start = reader.line_num + 1
    except (OSError, csv.Error):
        return []
    return lines[1:] if header else lines


def check_table_path(path, what: str = "table", fix: str = "give the path of a CSV file") -> Path:
    """Refuse a table path that is not a regular file - missing, a folder, a device ... (``what``: how the error
    names the table; :func:`lungai.errors.check_input_file`)."""
    return check_input_file(path, what, fix, "a CSV file")


# a table compressed as pandas reads it by its name (a .csv.gz): gzip data there is the table, not an image
COMPRESSED_TABLE_SUFFIXES = (".csv.gz", ".tsv.gz", ".txt.gz")


def binary_kind(path) -> str | None:
    """What the file ``path`` is when it is no text table, by its first bytes: gzip data (a ``.nii.gz`` image; a
    ``.csv.gz`` is a table), a DICOM file, other binary data (NUL bytes; UTF-16 text, which has them too, is said by
    :func:`table_read_error`); None for text or a file that cannot be read (its reading says why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b":
        return None if Path(path).name.lower().endswith(COMPRESSED_TABLE_SUFFIXES) else \
            "gzip-compressed binary data (an image such as .nii.gz?)"
    if head[128:132] == b"DICM":
        return "a DICOM file"
    if head[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"\x00" in head:
        return "binary data (an image or another file that is no text?)"
    return None


def check_text_table(path, what: str = "table", fix: str = "give a CSV file with a header row") -> None:
    """Refuse the table ``path`` that is no text (:func:`binary_kind`): an image or a DICOM file given where a table is
    read (QA inputs70: LUNG1-003_ct.nii.gz as ``rp train``'s / ``stage cv --ehr``'s / ``demo --clinical``'s table was
    "line 7 has 2 fields, the header 1: a value without a column", fix "give every value a column name"; as ``ibsi-check
    --reference`` a UnicodeDecodeError traceback)."""
    kind = binary_kind(path)
    if kind:
        raise InputError(f"{what} {path} is {kind}, not a text table",
                         f"give the path of the CSV table itself (images and DICOM files go to the command's image "
                         f"options); {fix}")


def table_read_error(path, exc: Exception, what: str = "table", sep: str = ",",
                     fix: str = "give a CSV file with a header row") -> InputError:
    """The :class:`InputError` for the table ``path`` that pandas could not read (``exc``): not UTF-8 text, empty,
    written with another delimiter (a European spreadsheet's ';' with decimal commas: refused by
    :func:`check_delimiter`), else not parseable.  The one place that words these errors."""
    import pandas as pd

    if isinstance(exc, UnicodeDecodeError):
        with contextlib.suppress(OSError):
            if Path(path).read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff"):      # Excel's 'Unicode Text'
                return InputError(f"{what} {path} is UTF-16 text (as Excel's 'Unicode Text' saves a table), not "
                                  "UTF-8", UTF8_FIX)
        return InputError(f"{what} {path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r}: another "
                          "encoding, e.g. Latin-1 / Windows-1252)", UTF8_FIX)
    if isinstance(exc, pd.errors.EmptyDataError):
        return InputError(f"{what} {path} is empty (no header row)", fix)
    try:
        check_delimiter(path, None, sep, what)
    except InputError as delimiter_error:
        return delimiter_error
    return InputError(f"{what} {path} is not a readable "
                      f"{'CSV' if sep == ',' else DELIMITER_NAMES.get(sep, repr(sep)) + '-separated table'} "
                      f"({str(exc).strip()})", fix)


READ_ERRORS = (UnicodeDecodeError, ValueError, csv.Error)   # pandas' ParserError / EmptyDataError are ValueErrors


def read_table_checked(path, id_columns=(), sep: str = ",", what: str = "table",
                       fix: str = "give a CSV file with a header row", rows: bool = False, **kw):
    """Read the table ``path`` (:func:`read_csv_text_ids`: its id columns ``id_columns`` as text) or refuse it,
    naming it ``what`` and saying ``fix``: missing or a folder (:func:`check_table_path`), unreadable
    (:func:`table_read_error`), written with another delimiter (:func:`check_delimiter`), and - with ``rows`` - a
    header without rows."""
    p = check_table_path(path, what, fix)
    check_text_table(p, what, fix)
    asked, sep = sep, table_delimiter(p, sep, what)
    if sep != asked:          # a decimal-comma spreadsheet's 'CSV': ';' between fields, '1,5' for 1.5
        import warnings

        from lungai.errors import InputNote

        kw.setdefault("decimal", ",")
        warnings.warn(InputNote(f"{what} {p.name} is read as semicolon-separated with decimal commas (1,5 = 1.5), as "
                                "a spreadsheet in a decimal-comma locale writes it"))
    df = read_csv_text_ids(p, id_columns, sep=sep, what=what, fix=fix, **kw)
    check_delimiter(p, df, sep, what)
    if sep != asked:
        names = [str(c) for c in df.columns]
        if kw.get("index_col") is not None and kw.get("index_col") is not False:
            # the row names (an RNA matrix's genes or patients) are the header's first name, no column: else the
            # first data column (a patient's profile) was taken for the id column, its decimal commas left as text
            names = [str(n) if n is not None else "" for n in df.index.names] + names
        ids = id_columns(names) if callable(id_columns) else list(id_columns)
        check_thousands(df, p, ids, what)
        if not isinstance(kw.get("dtype", {}), (dict, type(None))):
            return df                     # every column text (a manifest): its cells as written
        import pandas as pd

        for col in df.columns:            # a column of numbers and words ('Not Collected'): text, as in a CSV
            if col not in ids and df[col].dtype.kind not in "biufcmM":
                df[col] = df[col].map(lambda v: v.strip().replace(",", ".") if isinstance(v, str)
                                      and _DECIMAL_COMMA.fullmatch(v.strip()) else v)
                numbers = pd.to_numeric(df[col], errors="coerce")
                if numbers.notna().any() and numbers.notna().sum() == df[col].notna().sum():
                    df[col] = numbers     # numbers only ('1,5' and '0.25' mixed): a numeric column
    if rows and df.empty:
        raise InputError(f"{what} {p} has no rows (only a header)", fix)
    return df


def header_names(path, sep: str = ",") -> list[str]:
    """The header row of the table ``path`` as written, spaces around each name dropped (pandas renames a repeated
    name: 'clin_age', 'clin_age.1'); [] when it cannot be read."""
    try:
        sep = table_delimiter(path, sep)
        with Path(path).open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            return [c.strip() for c in next(csv.reader(fh, delimiter=sep), [])]
    except (OSError, csv.Error, InputError):
        return []


def check_unique_columns(path, sep: str = ",", what: str = "table") -> None:
    """Refuse the table ``path`` whose header names a column more than once (two exports joined side by side, a column
    copied): pandas would read the second as 'NAME.1', a column of its own - QA: ``rp train`` trained on both
    'clin_age' and 'clin_age.1' without a word, and ``lungai stage`` took both as EHR features."""
    names = header_names(path, sep)
    seen: dict = {}
    for k, name in enumerate(names, start=1):
        if name:
            seen.setdefault(name, []).append(k)
    twice = {name: at for name, at in seen.items() if len(at) > 1}
    if twice:
        listed = "; ".join(f"{name!r} (columns {', '.join(map(str, at))})" for name, at in list(twice.items())[:10])
        raise InputError(f"{what} {path} names a column more than once: {listed}",
                         "give each column a unique name (rename or delete the copy)")


def read_csv_text_ids(path, id_columns, sep: str = ",", *, what: str = "table",
                      fix: str = "give a CSV file with a header row", **kw):
    """``pandas.read_csv(path, sep=sep, **kw)`` with the patient id column(s) read as text, so ids that look like
    numbers keep their form ("007", "0012", "1e3" - not 7, 12, 1000.0).  ``id_columns``: the id column names, or a
    function of the header's column names giving them (e.g. "the column named id, else the first one").  The other
    columns are read as pandas reads them (numbers stay numbers).  A file pandas cannot read (not UTF-8, empty, not
    parseable) is refused (:func:`table_read_error`, naming the table ``what`` and saying ``fix``), as is a file that
    is no text (:func:`check_text_table`)."""
    check_text_table(path, what, fix)
    try:
        return _read_csv_text_ids(path, id_columns, sep, what=what, **kw)
    except READ_ERRORS as exc:
        import pandas as pd

        if isinstance(exc, ValueError) and not isinstance(exc, (pd.errors.ParserError, pd.errors.EmptyDataError,
                                                                 UnicodeDecodeError)):
            raise                       # a caller's wrong argument (dtype, index_col ...), not the file
        raise table_read_error(path, exc, what, sep, fix) from exc


def _extra_fields(path, sep: str, what: str, encoding=None, nrows=None) -> bool:
    """Whether data rows of ``path`` have more fields than its header that are all empty (a trailing comma on every
    line: pandas would take the first column for row names and shift every column by one - read with
    ``index_col=False`` they are dropped).  Every data row one field longer than the header, its first field the row
    number 1..n, is R's ``write.table`` layout (row names without a header field): pandas' implicit index, as
    before.  Otherwise a
    row with a value beyond the header's columns is refused, naming its line: the value has no column (the
    delimiter inside an unquoted value?), and which column is shifted cannot be told.  So is a row longer than the
    table's other rows whose extra fields are empty (:func:`_longer_row_error`: an unquoted comma in a value of a row
    whose last cell is empty - QA: 'grade 2, treated' in the first row was read as 'grade 2', ' treated' moved into
    the next column, silently), and a data row that repeats the header (:func:`_repeated_header_error`)."""
    header, rows, first_extra = None, 0, None
    extra_counts, extra_values, firsts = set(), False, []
    names, lengths, longest, repeated, short = [], Counter(), None, None, []
    try:
        with Path(path).open("r", encoding=encoding or "utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            for k, row in enumerate(reader):
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header, names = len(row), [cell.strip() for cell in row]
                    continue
                if nrows is not None and k > nrows:
                    break
                rows += 1
                firsts.append(row[0].strip())
                extra_counts.add(max(len(row) - header, 0))
                lengths[len(row)] += 1
                if longest is None or len(row) > longest[1]:
                    longest = (reader.line_num, len(row), row[0].strip())
                if len(row) < header and any(names[len(row):]):
                    short.append((reader.line_num, len(row), row[0].strip()))
                if repeated is None and _repeats_header(row, names):
                    repeated = reader.line_num
                if len(row) > header and any(cell.strip() for cell in row[header:]):
                    extra_values = True
                    if first_extra is None:
                        first_extra = (reader.line_num, len(row))
    except (OSError, csv.Error):
        return False                      # unreadable: pandas says why
    name = DELIMITER_NAMES.get(sep, repr(sep))
    if not extra_values:
        if repeated is not None:
            raise _repeated_header_error(path, what, repeated)
        # the rows' usual length (a tie: the shorter); a row longer than it and than the header holds an unquoted
        # delimiter, its extra fields empty because its last cells are
        usual = max(lengths.items(), key=lambda item: (item[1], -item[0]))[0] if lengths else 0
        if longest is not None and longest[1] > max(header, usual):
            check_delimiter(path, None, sep, what)    # a ';' table read with commas: said so first
            raise _longer_row_error(path, what, sep, longest, max(header, usual), header)
        _short_rows_note(path, what, sep, short if len(short) < rows else [], header)   # all: the delimiter's
        return extra_counts != {0} and bool(extra_counts)       # only empty extra fields: trailing delimiters
    if extra_counts == {1} and firsts == [str(i) for i in range(1, rows + 1)]:
        _short_rows_note(path, what, sep, short if len(short) < rows else [], header)
        return False                      # R's write.table: row names 1..n without a header field, as pandas reads
    check_delimiter(path, None, sep, what)    # a ';' table read with commas: said so first
    if repeated is not None:
        raise _repeated_header_error(path, what, repeated)
    line, n = first_extra
    raise InputError(f"{what} {path}: line {line} has {n} fields, the header {header}: a value without a column (a "
                     f"{name} inside a value that is not in quotes, or a column name missing in the header?)",
                     f"give every value a column name in the header row (values holding a {name} in double quotes)")


def _short_rows_note(path, what: str, sep: str, short: list, header: int) -> None:
    """Say the data rows with fewer fields than the header (``short``: line, fields, first cell): their last columns
    are read empty - QA: a row missing one delimiter ('P2,14,0' under 'case,dose_mld_gy,clin_age,outcome') was read
    with its outcome as clin_age and no outcome, silently; which value is missing cannot be told, so it is named."""
    if not short:        # (every row short is the table's layout - another delimiter, check_delimiter -, not a slip)
        return
    import warnings

    from lungai.errors import InputNote

    name = DELIMITER_NAMES.get(sep, repr(sep))
    listed = ", ".join(f"line {line} ({first[:40]!r}: {counted(n, 'field')})" for line, n, first in short[:10])
    one = len(short) == 1
    lacking = {header - n for _, n, _ in short}       # how many columns each row lacks
    last = ("last column is" if lacking == {1} else f"last {lacking.pop()} columns are" if len(lacking) == 1
            else "last columns are")
    warnings.warn(InputNote(f"{what} {path}: {counted(len(short), 'row')} with fewer fields than the header's "
                            f"{header}: {listed}{' ...' if len(short) > 10 else ''} - {'its' if one else 'their'} "
                            f"{last} read as empty; if a {name} is missing inside the row, its values after it sit "
                            f"in the wrong columns: check the {agree(len(short), 'row', 'rows')}, an empty cell keeps "
                            f"its {name}"))


def _repeats_header(row: list, names: list) -> bool:
    """A data ``row`` whose cells are the header's ``names`` (spaces around aside; at least two named columns)."""
    if not row or not names or row[0].strip() != names[0]:
        return False                      # (the first cell decides for nearly every row: big tables stay fast)
    cells = [cell.strip() for cell in row]
    named = [n for n in names if n]
    return len(named) >= 2 and cells[:len(names)] == names and not any(cells[len(names):])


def _repeated_header_error(path, what: str, line: int) -> InputError:
    """QA: two exports pasted into one file, the second with its header: that line was read as a patient named by
    the id column's header ('Case ID'), its label the label column's header (a class 'Histology' of one patient)."""
    return InputError(f"{what} {path}: line {line} repeats the header row (two exports pasted into one file?); it "
                      "would be read as a patient whose values are the column names",
                      f"delete line {line} (only the first line of the table is its header)")


def _longer_row_error(path, what: str, sep: str, longest: tuple, usual: int, header: int) -> InputError:
    """The refusal of the data row ``longest`` (line, fields, first cell) with more fields than the table's other
    rows, its extra fields empty: a value holding the delimiter ``sep`` without quotes ('grade 2, treated': the values
    after it one column on, its last value in a column of its own) or a delimiter too many at the line's end."""
    line, n, first = longest
    name = DELIMITER_NAMES.get(sep, repr(sep))
    example = f"grade 2{sep if sep != chr(9) else '<tab>'} treated"
    row = f" (the row of {first!r})" if first else ""
    others = f"the header {header}" if usual == header else f"the header {header}, the other rows {usual}"
    return InputError(f"{what} {path}: line {line}{row} has {n} fields, {others}: a {name} inside a value that is "
                      f"not in quotes (e.g. {example}) moves the values after it {counted(n - usual, 'column')} on, "
                      f"or the line ends with a {name} too many",
                      f"put each value holding a {name} in double quotes (\"{example}\"), or delete the extra {name} "
                      f"at the end of line {line}")


def _read_csv_text_ids(path, id_columns, sep: str = ",", *, what: str = "table", **kw):
    import pandas as pd

    if not {"index_col", "header", "names", "skiprows", "usecols"} & set(kw) and \
            _extra_fields(path, sep, what, kw.get("encoding"), kw.get("nrows")):
        kw["index_col"] = False       # trailing commas: not the row names (pandas' implicit index), every column kept

    if callable(id_columns):
        head = {k: kw[k] for k in ("encoding", "header", "skipinitialspace") if k in kw}
        try:
            names = [str(c) for c in pd.read_csv(path, sep=sep, nrows=0, **head).columns]
        except (ValueError, OSError, UnicodeDecodeError, csv.Error):
            names = []                       # unreadable: the full read below says why
        id_columns = id_columns(names) if names else []
    wanted = [c for c in dict.fromkeys(id_columns) if c is not None]
    dtype = kw.pop("dtype", None)
    if dtype is not None and not isinstance(dtype, dict):      # one type for every column (str: ids already text)
        return without_empty_rows(pd.read_csv(path, sep=sep, dtype=dtype, **kw))
    dtype = dict(dtype or {})
    dtype.update({c: str for c in wanted})
    return without_empty_rows(pd.read_csv(path, sep=sep, dtype=dtype or None, **kw))


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def without_empty_rows(df):
    """``df`` without its rows whose every cell is empty (and row name, if any): the lines of delimiters only
    (``,,,,``) a spreadsheet writes for rows it once formatted below the data - left out, as pandas leaves out a blank
    line.  QA: each became a patient named 'nan' (``lungai stage``: one read as a patient, several refused as
    "duplicate patient IDs ['nan'] - keep one row per patient"; ``lungai rp``: "outcome ... missing in 2 rows")."""
    import numpy as np
    import pandas as pd

    if df.empty or not len(df.columns):
        return df
    numbers = df.select_dtypes(include="number")      # a number is never empty: only rows without one are looked at
    empty = numbers.isna().all(axis=1).to_numpy(copy=True) if len(numbers.columns) else np.ones(len(df), bool)
    plain = isinstance(df.index, pd.RangeIndex)
    if not plain:
        empty &= np.array([_blank(v) for v in df.index])
    if empty.any():
        rows = df[empty]
        empty[empty] = (rows.isna() | rows.astype(str).apply(lambda column: column.str.strip().eq(""))).all(
            axis=1).to_numpy()
    if not empty.any():
        return df
    out = df[~empty]
    return out.reset_index(drop=True) if plain else out


def id_text(value) -> str:
    """``value`` (a patient id of a table or a DICOM PatientID) as lungai joins and compares ids: text, spaces
    around it dropped ('R01-001 ' is R01-001), Unicode composed (NFC): 'Müller' written as 'u' + a combining
    diaeresis (NFD, as macOS file names and some exports write it) is the precomposed 'Müller' - the two look
    identical, so no hint could tell a user which to change (the rule of structure names,
    :func:`lungai.dicom.roles.normalise`).  Otherwise ids are compared as written (case, separators and
    leading zeros are named by :func:`id_spelling_hint`, never joined)."""
    return unicodedata.normalize("NFC", str(value)).strip()


def _without_leading_zeros(value: str) -> str:
    text = str(value).strip()
    return text.lstrip("0") or ("0" if text else "")


def without_padding_zeros(value) -> str:
    """``value`` (an id, spaces around it dropped) with the leading zeros of every run of digits in it dropped:
    'R01-001' -> 'R1-1', 'P07-1' -> 'P7-1', 'LUNG1-002' -> 'LUNG1-2' (the padding of the numbers in an id, which a
    typist or another system leaves out); letter case kept (:func:`lungai.model_files.loose_id` folds it too)."""
    return re.sub(r"\d+", lambda m: m.group().lstrip("0") or "0", str(value).strip())


def _pairs_alike(ids_a: Iterable, ids_b: Iterable, key, skip=None, show=str) -> tuple[int, str]:
    """(how many, "x vs y, ...") of the ids of one set that are not in the other but have the same ``key`` as one
    of its ids (an id set each; the hints below); ``skip(x, y)``: pairs left out (those another hint names);
    ``show(id)``: how an id is written in the hint."""
    a, b = {str(v) for v in ids_a}, {str(v) for v in ids_b}
    only_b = {}
    for v in sorted(b - a):
        only_b.setdefault(key(v), v)
    pairs = [(v, only_b[key(v)]) for v in sorted(a - b) if key(v) in only_b]
    if skip is not None:
        pairs = [(x, y) for x, y in pairs if not skip(x, y)]
    shown = ", ".join(f"{show(x)} vs {show(y)}" for x, y in pairs[:5])
    shown += f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    return len(pairs), shown


def _ids_differ(n: int) -> str:
    """'1 id differs' / '3 ids differ': the start of the hints below."""
    return f"{counted(n, 'id')} {agree(n, 'differs', 'differ')}"


def leading_zero_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """For an error on two id sets that should match (read as text by :func:`read_csv_text_ids`): when ids of one
    differ from ids of the other only by leading zeros ("007" vs "7": a spreadsheet dropped them), a sentence saying
    so ("" otherwise), to append to the problem."""
    n, shown = _pairs_alike(ids_a, ids_b, _without_leading_zeros)
    if not n:
        return ""
    return (f"; {_ids_differ(n)} only by leading zeros ({shown}): leading zeros dropped by a spreadsheet? "
            "make the ids the same in both tables (ids are compared as text)")


def case_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """As :func:`leading_zero_hint`, for ids of one set that differ from ids of the other only in letter case
    ("r01-023" vs "R01-023"): a sentence saying so ("" otherwise).  Ids are compared as written; ``lungai stage
    validate`` matches a training patient ignoring case the same way (:func:`lungai.model_files.loose_id`)."""
    n, shown = _pairs_alike(ids_a, ids_b, str.casefold)
    if not n:
        return ""
    return (f"; {_ids_differ(n)} only in letter case ({shown}): make the ids the same in both tables (ids "
            "are compared as written, case included)")


def padding_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """As :func:`leading_zero_hint`, for ids that differ only in the zeros padding a number inside them ("R01-001"
    vs "R01-1", "P07-1" vs "P7-1", "LUNG1-002" vs "LUNG1-2": :func:`without_padding_zeros`); pairs
    :func:`leading_zero_hint` names are left out.  "" when none."""
    def named(x, y):
        return _without_leading_zeros(x) == _without_leading_zeros(y)

    n, shown = _pairs_alike(ids_a, ids_b, without_padding_zeros, skip=named)
    if not n:
        return ""
    return (f"; {_ids_differ(n)} only in the zeros padding their numbers ({shown}): make the ids the same in both "
            "tables (ids are compared as text)")


_LOOK_ALIKE_DASHES = re.compile("[" + re.escape(DASHES.replace("-", "")) + "]")
# separators of an id: white space, "-", "_", "." and the look-alikes of "-" (:data:`lungai.dicom.roles.DASHES`)
_SEPARATORS = re.compile(r"[\s_." + re.escape(DASHES) + "]+")


def plain_dashes(value) -> str:
    """``value`` with each Unicode look-alike of "-" (:data:`lungai.dicom.roles.DASHES`: hyphen U+2010,
    non-breaking hyphen U+2011, en / em dash, minus sign U+2212, the small and fullwidth hyphen-minus U+FE63 / U+FF0D
    - what a spreadsheet's or word processor's autocorrect, or a copy from a PDF, writes for "-") written "-":
    'AMC\u2013001' (en dash) -> 'AMC-001'.  The two look identical, so :func:`dash_hint` names the character."""
    return _LOOK_ALIKE_DASHES.sub("-", str(value))


def _is_invisible(c: str) -> bool:
    """An invisible character (a Unicode format character, category Cf: soft hyphen U+00AD, zero-width space
    U+200B, zero-width (non-)joiner, word joiner U+2060, left-to-right / right-to-left mark U+200E / U+200F, byte
    order mark U+FEFF): what a copy from a web page, a PDF or a word processor leaves in an id."""
    return unicodedata.category(c) == "Cf"


def without_invisible(value) -> str:
    """``value`` without its invisible characters (:func:`_is_invisible`): 'AMC-0\u00ad01' -> 'AMC-001'."""
    return "".join(c for c in str(value) if not _is_invisible(c))


def _dashes_named(value: str) -> str:
    """``value`` followed by the code points of its look-alike dashes and invisible characters, which a reader cannot
    tell from "-" or see: 'AMC\u2013001 (U+2013)', 'R01-0\u00ad01 (U+00AD)'."""
    odd = sorted(set(_LOOK_ALIKE_DASHES.findall(value)) | {c for c in value if _is_invisible(c)})
    return f"{value} ({', '.join(f'U+{ord(c):04X}' for c in odd)})" if odd else value


def dash_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """As :func:`leading_zero_hint`, for ids that differ only in which dash they use ("AMC\u2013001" with an en
    dash vs "AMC-001": :func:`plain_dashes`); the look-alike is named by its code point, as the two look the same.
    "" when none."""
    n, shown = _pairs_alike(ids_a, ids_b, plain_dashes, show=_dashes_named)
    if not n:
        return ""
    return (f"; {_ids_differ(n)} only in {agree(n, 'its', 'their')} dash ({shown}): a look-alike of '-' (an en "
            "dash, a Unicode hyphen or minus, as autocorrect in a spreadsheet or word processor writes it)? write '-' "
            "in both tables (ids are compared as text)")


def invisible_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """As :func:`leading_zero_hint`, for ids that differ only by invisible characters ("R01-0\u00ad01" with a soft
    hyphen, "\u200bR01-001" with a zero-width space vs "R01-001": :func:`without_invisible`), named by their code
    points, as the two look the same.  "" when none."""
    n, shown = _pairs_alike(ids_a, ids_b, lambda v: without_invisible(v).strip(), show=_dashes_named)
    if not n:
        return ""
    return (f"; {_ids_differ(n)} only by invisible characters ({shown}): a soft hyphen, zero-width space or direction "
            "mark copied with the id from a web page, PDF or word processor? type the id again in that table (ids "
            "are compared as text)")


# a run of separators between two digits: kept as a boundary by :func:`_without_separators`
_DIGIT_GAP = re.compile(r"(?<=\d)" + _SEPARATORS.pattern + r"(?=\d)")


def _without_separators(value: str) -> tuple:
    """``value`` case folded without its separators (:data:`_SEPARATORS`), except that a separator between two digits
    stays a boundary: "LUNG1_010" and "lung1-010" give one key, "AMC-001" and "amc001" one - but "LUNG1-12" and
    "LUNG11-2", or "R01-011" and "R01011", not (moving or dropping it there changes the numbers: another patient)."""
    return tuple(_SEPARATORS.sub("", part).casefold() for part in _DIGIT_GAP.split(without_invisible(value).strip()))


def _id_words(value) -> tuple:
    """``value``'s runs of letters (case folded) and of digits (their padding zeros dropped), in order: what is left
    of an id when its separators, letter case and padding zeros do not matter - ('lung', '1', '2') for 'LUNG1_002'
    and 'lung1-2'; the runs stay apart ('LUNG1-12' is ('lung', '1', '12'), 'LUNG11-2' ('lung', '11', '2'))."""
    return tuple(w.lstrip("0") or "0" if w[0].isdigit() else w.casefold()
                 for w in re.findall(r"\d+|[^\W\d_]+", plain_dashes(without_invisible(value))))


def separator_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """As :func:`case_hint`, for ids that differ in their separators ("-", "_", ".", spaces, the look-alikes of
    "-"), letter case aside ("LUNG1_010" vs "lung1-010": a DICOM PatientID and a hand-typed table) - and then for
    ids that differ in their separators, letter case and the zeros padding their numbers at once ("LUNG1_002" vs
    "lung1-2": :func:`_id_words`); pairs :func:`case_hint`, :func:`leading_zero_hint`, :func:`padding_hint` or
    :func:`dash_hint` names are left out.  A separator between two digits is never dropped or moved ("LUNG1-12" /
    "LUNG11-2", "R01-011" / "R01011": other numbers, other patients - not paired).  "" when none."""
    def named(x, y):
        return (x.casefold() == y.casefold() or without_padding_zeros(x) == without_padding_zeros(y)
                or plain_dashes(x) == plain_dashes(y) or without_invisible(x).strip() == without_invisible(y).strip())

    n, shown = _pairs_alike(ids_a, ids_b, _without_separators, skip=named, show=_dashes_named)
    out = (f"; {_ids_differ(n)} only in letter case or separators ({shown}): make the ids the same in both tables "
           "(ids are compared as written)") if n else ""

    def said(x, y):
        return named(x, y) or _without_separators(x) == _without_separators(y)

    n, shown = _pairs_alike(ids_a, ids_b, _id_words, skip=said, show=_dashes_named)
    if n:
        out += (f"; {_ids_differ(n)} only in separators, letter case or the zeros padding their numbers ({shown}): "
                "make the ids the same in both tables (ids are compared as written)")
    return out


def id_spelling_hint(ids_a: Iterable, ids_b: Iterable) -> str:
    """The hints of two id sets that should match: ids differing only by leading zeros (:func:`leading_zero_hint`),
    in the zeros padding a number inside them (:func:`padding_hint`), only in letter case (:func:`case_hint`), only
    in which dash they use (:func:`dash_hint`), by invisible characters (:func:`invisible_hint`) or in their
    separators, letter case and padding together (:func:`separator_hint`); "" when none.  Each pair is named once; ids are still compared as written."""
    return (leading_zero_hint(ids_a, ids_b) + padding_hint(ids_a, ids_b) + case_hint(ids_a, ids_b)
            + dash_hint(ids_a, ids_b) + invisible_hint(ids_a, ids_b) + separator_hint(ids_a, ids_b))


def id_columns_named(names: Iterable[str], id_column=None, first: bool = False):
    """For :func:`read_csv_text_ids`: a function of a header giving ``id_column`` (when the header has it; case and
    spaces ignored, :func:`name_key`) and the columns named one of ``names`` (any case), else - with ``first`` - the first
    column.  The names are compared as :func:`is_id_name` compares them ('Patient ID' is 'patient_id')."""
    names = tuple(names)

    def choose(header: list[str]) -> list[str]:
        out = [c for c in header if id_column is not None and name_key(c) == name_key(id_column)]
        out += [c for c in header if is_id_name(c, names) and c not in out]
        return out or (header[:1] if first else [])
    return choose


def duplicate_ids(values: Iterable) -> list[str]:
    """The ids (as :func:`id_text`, sorted) that occur more than once in ``values``; empty cells are not ids."""
    seen, dup = set(), set()
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        key = id_text(v)
        if not key:
            continue
        (dup if key in seen else seen).add(key)
    return sorted(dup)


def _spelling_key(value) -> str:
    """``value`` in lower case without invisible characters (:func:`without_invisible`), each run of separators ("-",
    "_", ".", spaces, the look-alikes of "-") one "-":
    "R01_024", "r01-024" and "R01\u2013024" (en dash) give one key, "P1_1" (lungai cohort's first CT series of
    patient P1) and "P11" two - a separator is kept as a boundary, unlike :func:`_without_separators` (which names
    near-misses between two tables and drops a separator next to a letter: "P-11" / "P11")."""
    return _SEPARATORS.sub("-", id_text(without_invisible(value))).casefold()


def ids_spelt_alike(values: Iterable) -> list[list[str]]:
    """The groups (sorted) of different ids of ``values`` that differ only in letter case, in which separators they
    use or by invisible characters ("R01-023" / "r01-023", "R01-024" / "R01_024", "R01-0\u00ad25" / "R01-025":
    :func:`_spelling_key`): one patient written two ways in one table.  Ids as stripped text; empty cells are not ids."""
    groups: dict = {}
    for v in values:
        if v is None or (isinstance(v, float) and v != v) or not str(v).strip():
            continue
        groups.setdefault(_spelling_key(v), set()).add(id_text(v))
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def check_unique_ids(values: Iterable, what: str, column=None, fix: str = "keep one row per patient") -> None:
    """Refuse ``values`` (a table's patient id column, named ``column``) holding an id more than once, listing the
    ids (first 10) and how many - or two ids that differ only in letter case or separators (:func:`ids_spelt_alike`:
    QA, a REDCap export holding R01-023 and r01-023 was taken as two patients, one in a training and one in a test
    fold of the cross-validation)."""
    values = list(values)
    where = f" (column {column!r})" if column is not None else ""
    dup = duplicate_ids(values)
    if dup:
        more = f" and {len(dup) - 10} more" if len(dup) > 10 else ""
        raise InputError(f"{what} has duplicate patient IDs{where}: {counted(len(dup), 'id')} "
                         f"{agree(len(dup), 'occurs', 'occur')} more than once: "
                         f"{dup[:10]}{more}", fix)
    alike = ids_spelt_alike(values)
    if alike:
        shown = ", ".join(" / ".join(map(_dashes_named, g)) for g in alike[:10])   # look-alikes: code points named
        shown += f" and {len(alike) - 10} more" if len(alike) > 10 else ""
        raise InputError(f"{what} has patient IDs{where} that differ only in letter case or separators: "
                         f"{counted(len(alike), 'patient')} written more than one way ({shown}): one patient in two "
                         "rows?",
                         f"{fix}: write each patient's id one way (ids differing only in letter case or in which "
                         "separator ('-', '_', '.', space) they use are taken as one patient; give different patients "
                         "ids that differ in more)")


def name_order(values: Iterable) -> list:
    """``values`` (patient ids, column or gene names) sorted by their text: the one order lungai gives patients and
    features to a model, whatever the order of a table's rows and columns.  Cross-validation folds, batch order and
    a network's input order follow it, so a shuffled copy of a table gives the same model (``lungai stage``:
    :func:`lungai.fusion.data.load_cohort`; ``lungai rp``: :func:`lungai.rp.columns.canonical_order`)."""
    return sorted(values, key=str)


def listed_path(value, table) -> Path:
    """A file path written in the table ``table``: an absolute one as it is, a relative one from the table's folder
    (so a data folder moved with its table still reads)."""
    q = Path(str(value))
    return q if q.is_absolute() else Path(table).parent / q


def _moved_to(missing: Path, table: Path, bare: bool = False) -> Path | None:
    """Where the missing absolute path ``missing`` is now if its data folder was moved: the shortest tail of it
    (``case/ct.nii.gz``, ``data/case/ct.nii.gz`` ...) that exists under the table's folder, else None.  The bare
    file name only when ``bare`` (a name no other listed file has: ``P7_ct.nii.gz``, never every case's ``ct.nii.gz``)."""
    parts = missing.parts[1:]
    for k in range(1 if bare else 2, len(parts) + 1):
        found = Path(table).parent.joinpath(*parts[-k:])
        if found.exists():
            return found
    return None


def _file_of(cell: str, folders=()) -> str:
    """The file of a cell (``FILE`` or ``FILE#PART``, a mask's selector), as written: the whole cell where a file of
    that name is in one of ``folders`` (the table's, the current one: a relative cell is not read from the current
    folder alone - QA idforms66), else the cell less its ``#PART``."""
    head, sep, _ = cell.rpartition("#")
    if not (sep and head) or any((Path(f) / cell).exists() for f in folders):
        return cell
    return head


def _listed_file(q: Path) -> Path:
    """The file of a listed path ``q`` (:func:`listed_path` of a cell ``FILE`` or ``FILE#PART``): ``q`` where it
    exists, else ``q`` less its ``#PART`` (a mask's selector: ``labels.nii.gz#1``, ``"labels.nii.gz#3,4"``)."""
    head, sep, _ = str(q).rpartition("#")
    return Path(head) if sep and head and not q.exists() else q


def missing_listed_file(cell, table, named: str, what: str = "table") -> InputError | None:
    """The error of a table's cell (``FILE`` or ``FILE#PART``, a mask's selector) whose file does not exist, else
    None: named by ``named`` (the cell's row, column and the cell as written, as the caller words them: ``manifest
    m.csv line 3, image cell data/ct.nii.gz``), then where the file was looked for (a relative cell: the table's
    folder).  Not
    the path it is read from alone (QA radfollow65: "rb/proj/data/nothere.nii.gz does not exist" for the image cell
    ``data/nothere.nii.gz`` of ``rb/proj/m.csv``; a mask cell ``data/x.nii.gz#1`` said "rb/proj/data/x.nii.gz#1 does
    not exist")."""
    cell = str(cell)
    if listed_path(cell, table).exists():
        return None
    head, sep, _ = cell.rpartition("#")
    file = head if sep and head else cell
    read = listed_path(file, table)
    if read.exists():
        return None
    said = "the file" if file == cell else f"its file {file}"
    where = "" if Path(file).is_absolute() else \
        f" (looked for at {read}: relative paths are read from the {what}'s folder, {Path(table).parent.absolute()})"
    return InputError(f"{named}: {said} does not exist{where}",
                      f"correct the path in {Path(table).name} (and check that the drive is mounted)")


def _check_from_current_folder(written: list, table: Path, what: str) -> None:
    """Refuse relative cells (``written``, as in ``table``) whose file is not in the table's folder but is in the
    current folder: the table was written from the folder the command is run in, while its relative paths are read
    from its own folder (QA radbatch65: ``lungai radiomics-batch sub/m.csv`` with cells ``data/ct.nii.gz`` failed
    every case with "sub/data/ct.nii.gz does not exist", fix "check the path (and that the drive is mounted)")."""
    import os

    here, folder = Path.cwd(), table.parent.absolute()
    found = []
    for cell in map(str, written):
        file = _file_of(cell, (folder, here))
        if not Path(file).is_absolute() and not (folder / file).exists() and (here / file).exists():
            found.append((cell, file))
    if not found or here.resolve() == folder.resolve():
        return
    cell, file = found[0]
    rel = Path(os.path.relpath(here / file, folder)).as_posix() + cell[len(file):]
    shown = ", ".join(c for c, _ in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    raise InputError(f"{counted_of(len(found), len(written), 'path')} in the {what} {table} "
                     f"{agree(len(found), 'names a file', 'name files')} of the current folder ({here}), not of the "
                     f"{what}'s folder ({folder}), where relative paths are read from: {shown}",
                     f"write the paths relative to the {what}'s folder ({rel} for {cell}), so that they move with it, "
                     "or as absolute paths (running the command from another folder changes nothing)")


def check_listed_files(paths: Iterable, table, what: str = "table", refuse_all_missing: bool = True,
                       written: Iterable | None = None) -> None:
    """Refuse, before any work, absolute file paths written in ``table`` that do not exist when their data folder
    looks moved (the file is found under the table's folder by a tail of its path), or when none of the paths exists
    (``refuse_all_missing``): the error names the files, where they are now, and the fix - paths relative to the
    table's folder, which move with it.  ``written``: the cells as written in the table (``paths`` read from them by
    :func:`listed_path`): relative ones naming files of the current folder, not of the table's, are refused too
    (:func:`_check_from_current_folder`).  Otherwise a missing file is left to its row's own error."""
    table = Path(table)
    if written is not None:
        written = list(map(str, written))
        _check_from_current_folder(written, table, what)
    paths = [Path(str(q)) for q in paths]
    files = [_listed_file(q) for q in paths]        # a mask cell's FILE#PART: its FILE (QA idforms66)
    missing = [k for k, f in enumerate(files) if not f.exists()]
    if not missing:
        return
    cells = written if written is not None and len(written) == len(paths) else None

    def said(k: int) -> str:
        """A missing file as the user wrote it (a relative cell with where it was looked for: QA idforms66, it was
        the path read alone, ``sub/data/ct.nii.gz`` for the cell ``data/ct.nii.gz``)."""
        if cells is None or Path(cells[k]).is_absolute():
            return cells[k] if cells is not None else str(paths[k])
        return f"{cells[k]} (looked for at {files[k]})"

    names = Counter(f.name for f in files)
    moved = [(files[k], _moved_to(files[k], table, bare=names[files[k].name] == 1)) for k in missing
             if files[k].is_absolute()]
    moved = [(q, now) for q, now in moved if now is not None]
    if not moved and not (refuse_all_missing and len(missing) == len(paths)):
        return
    shown = ", ".join(map(said, missing[:3])) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    if moved:
        q, now = moved[0]
        rel = now.relative_to(table.parent).as_posix()
        raise InputError(f"{counted_of(len(missing), len(paths), 'file')} listed in the {what} {table} "
                         f"{agree(len(missing), 'does', 'do')} not exist: "
                         f"{shown}; the data folder looks moved ({q} is now {now})",
                         f"write the paths relative to the {what}'s folder ({rel} for {q.name}), so that they move "
                         f"with it, or correct the absolute paths in {table.name}")
    raise InputError(("the file" if len(paths) == 1 else f"none of the {len(paths)} files") + f" listed in the {what} "
                     f"{table} {agree(len(paths), 'does not exist', 'exists')}: {shown}",
                     f"correct the paths in {table.name} (relative paths are read from its folder, "
                     f"{table.parent.absolute()}, and move with it; was the data folder moved or the drive unmounted?)")
