"""Input checks for RP tables: outcome, numbers, constant features, categories, events."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lungai.errors import InputError, agree, counted
from lungai.io.tables import DECIMAL_COMMA_FIX, PERCENT_FIX, check_unique_ids, decimal_comma_hint, id_name_key, \
    id_text, is_id_name, match_headers, number_hint, percent_number
from lungai.rp.columns import CATEGORY_RULES, DOSE_GY_MAX, DOSE_GY_MAX_DEFAULT, DOSE_PCT_RANGE, DOSE_PREFIX, \
    FRACTION_LEVEL_MAX, pct_dose_level, \
    FALSE_WORDS, GY_SUFFIX, ID_NAMES, PCT_SUFFIX, READ_OPTIONS, TRUE_WORDS, ColumnRoles, canonical_order, \
    PREFIXES, category_spellings, close_names, is_missing_word, suggest
from lungai.rp.card import PERCENT_HINT_RANGE, check_card_threshold, check_threshold  # noqa: F401  (light: the
# Slicer panel's model line checks a card's threshold before the prediction packages are installed)
from lungai.rp.inputs import check_tables_given


def read_table(path, id_column: str | None = None) -> pd.DataFrame:
    """Read a CSV table (one row per patient), its patient id column(s) as text ("007" stays "007"): ``id_column``
    (the role file's id) and the columns named one of :data:`~lungai.rp.columns.ID_NAMES`.  Only empty cells are
    read as missing here, not pandas' list of words ("None", "NULL", "NA" ...): which words are missing is decided
    by the column's type (:func:`~lungai.rp.columns.is_missing_word`; "None" is a category of a categorical column),
    and reported by ``rp train``."""
    from lungai.io.tables import check_unique_columns, id_columns_named, read_table_checked
    from lungai.rp.inputs import TABLE_FIX     # (checked by the CLI before pandas is imported: the same words)

    path = Path(path)
    df = read_table_checked(path, id_columns_named(ID_NAMES, id_column), rows=True, fix=TABLE_FIX, **READ_OPTIONS)
    check_unique_columns(path)          # pandas would read a repeated name as 'NAME.1', a column of its own
    check_not_long_radiomics(df, path)
    return df


LONG_FIX = ("write the features one row per patient: run the same lungai radiomics-batch command again with --wide "
            "(it resumes: the cases done are not computed again), or lungai radiomics with --wide "
            "(rad_<segment>_<image type>_<class>_<feature> columns, as lungai cohort's rp_table.csv has them)")


def check_not_long_radiomics(df: pd.DataFrame, path) -> None:
    """Refuse a radiomics table in long format (``lungai radiomics`` / ``radiomics-batch`` without ``--wide``: one row
    per feature, :data:`lungai.radiomics.extract.LONG_COLUMNS`) given as a patients table: QA, it was refused as
    "duplicate patient IDs ... keep one row per patient" (every patient holds a row per feature)."""
    columns = {str(c).strip().lower() for c in df.columns}
    if not {"feature", "value"} <= columns or any(str(c).startswith("rad_") for c in df.columns):
        return
    from lungai.radiomics.extract import LONG_COLUMNS

    if set(LONG_COLUMNS[1:]) <= columns:
        raise InputError(f"{path} is a radiomics table in long format (one row per feature: columns "
                         f"{', '.join(LONG_COLUMNS)}; {len(df)} rows), not one row per patient with rad_* columns",
                         LONG_FIX)


def table_paths(table) -> list[Path]:
    """The file path(s) behind a table argument (none for a DataFrame)."""
    if isinstance(table, pd.DataFrame):
        return []
    return [Path(table)] if isinstance(table, (str, Path)) else [Path(t) for t in table]


def id_column_of(df: pd.DataFrame, id_column: str | None = None) -> str | None:
    """The patient id column of ``df``: ``id_column`` (e.g. the role file's ``id``) when the table has it - under its
    own name, else with another case / spacing (' Patient ID ', 'case id' for 'Case ID':
    :func:`lungai.io.tables.match_headers`, the rule of the features too; two such headers refused) -, else the first
    column named one of :data:`~lungai.io.tables.ID_NAMES` (case, patient_id, id, 'Patient ID', PatientID, 'Case ID'
    ...: :func:`~lungai.io.tables.is_id_name`, as lungai cohort --clinical and lungai stage read them), else None."""
    if id_column is not None:
        if id_column in df.columns:
            return id_column
        renames = match_headers([id_column], df.columns, "the table", "the column")
        if renames:
            return next(iter(renames))
    return next((c for c in df.columns if is_id_name(c)), None)


def id_columns_of(df: pd.DataFrame, id_column: str | None = None) -> list:
    """Every patient ID column of ``df``: :func:`id_column_of` first, then the other columns named one of
    :data:`~lungai.io.tables.ID_NAMES` (a lungai cohort table: the per-series ``case`` P_1 and the ``patient_id`` P
    of the same patient)."""
    first = id_column_of(df, id_column)
    return ([first] if first is not None else []) + [c for c in df.columns if is_id_name(c) and c != first]


def patient_id_rows(df: pd.DataFrame, id_column: str | None = None) -> list | None:
    """One tuple per row of its IDs in every ID column (:func:`id_columns_of`; blank cells dropped) - what the
    training-patient hashes record and check (:mod:`lungai.model_files`); None without an ID column."""
    cols = id_columns_of(df, id_column)
    if not cols:
        return None
    values = [df[c].where(df[c].notna(), "").astype(str).str.strip().tolist() for c in cols]
    return [tuple(v for v in row if v) for row in zip(*values)]


def id_order(df: pd.DataFrame, id_column: str | None = None) -> np.ndarray:
    """The row positions of ``df`` ordered by its patient id (:func:`id_column_of`) as text, stably: cross-validation
    folds then depend on the patients, not on the order of the tables joined (:func:`read_tables`) or of their rows.
    A table without an id column keeps its order."""
    col = id_column_of(df, id_column)
    if col is None:
        return np.arange(len(df))
    return np.argsort(df[col].astype(str).to_numpy(), kind="stable")


def check_one_row_per_patient(df: pd.DataFrame, id_column: str | None, what: str, why: str,
                              every_id: bool = False, columns=None) -> str | None:
    """Refuse a table whose id column (:func:`id_column_of`) holds a patient more than once, listing the ids
    (:func:`lungai.io.tables.check_unique_ids`).  ``every_id`` (training, validation): every id column is checked -
    ``lungai cohort`` writes a row per CT series with its own ``case`` (P_1, P_2) and the same ``patient_id``: one
    patient in the training and the test folds.  A table without an id column cannot be checked by ids: with
    ``columns`` (the features and the outcome), rows identical in all of them are refused
    (:func:`check_repeated_rows`), and the note on rows that agree to within :data:`NEAR_TOLERANCE` is returned
    (None: nothing to say) - the caller records it with its other warnings (``rp train``: metrics.json and the
    model card; ``rp validate``: external_metrics.json), so the model's reviewer sees it later too."""
    cols = [c for c in (id_columns_of(df, id_column) if every_id else [id_column_of(df, id_column)]) if c is not None]
    if cols:
        check_no_blank_ids(df, cols[0], what)
    for col in cols:
        check_unique_ids(df[col], what, col, f"keep one row per patient ({why})")
    if not cols and columns is not None:
        return check_repeated_rows(df, columns, what, why)
    return None


BLANK_ID_FIX = ("fill in each row's patient id (or remove the rows): the id names the patient in the outputs, keeps "
                "one row per patient and orders the cross-validation folds")


def check_no_blank_ids(df: pd.DataFrame, col, what: str) -> None:
    """Refuse rows whose patient id (``col``, the id column the outputs name the patients by) is blank - an empty or
    whitespace-only cell: QA rp70, ``rp train`` of a table with an empty ``case`` cell stopped with a TypeError
    traceback, ``rp predict`` / ``rp validate`` named the patient "nan" (two such rows too, never said to be
    ambiguous)."""
    blank = np.array([v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())
                      or (v is pd.NA) for v in df[col]], dtype=bool)
    if blank.any():
        raise InputError(f"{what} has {counted(int(blank.sum()), 'row')} without a patient id (column {col!r} empty: "
                         f"{where_in_files(df, col, np.flatnonzero(blank)[:10])})", BLANK_ID_FIX)


NEAR_TOLERANCE = 0.005   # numbers of two rows that differ by at most 0.5 % (about 3 significant digits) agree
NEAR_CHANCE = 0.01       # at most this many pairs of different patients expected to agree so by chance


def _repeat_text(values: pd.Series) -> pd.Series:
    """A column's cells as compared for repeated rows: stripped text in any letter case (categories in any case are
    one category, :data:`CATEGORY_RULES`), an empty cell or a word for "no value" as empty."""
    text = values.astype("string").str.strip()
    return text.mask(values.map(is_missing_word), "").fillna("").str.casefold()


def check_repeated_rows(df: pd.DataFrame, columns, what: str, why: str) -> str | None:
    """Refuse rows of a table WITHOUT a patient id column that are identical in every one of ``columns`` (features
    and outcome; text in any letter case, as training reads it): one patient listed twice, whom no id tells apart
    (QA: an id column named ``record_id`` is no id column lungai knows; with every row twice a permuted outcome gave
    nested-CV AUC 0.84).  Rows that agree in every one of them only to within :data:`NEAR_TOLERANCE` (the numbers of
    one row rounded, or one value retyped) are returned, as a warning to record (:func:`near_repeated_rows`; None:
    nothing to say).  Rows are numbered from 1 (the first row under the header)."""
    cols = [c for c in dict.fromkeys(columns) if c in df.columns]
    if not cols or len(df) < 2:
        return None
    texts = pd.DataFrame({c: _repeat_text(df[c]) for c in cols})
    groups: dict = {}
    for row, key in enumerate(map(tuple, texts.to_numpy())):
        groups.setdefault(key, []).append(row + 1)
    rows = [g for g in groups.values() if len(g) > 1]       # in the order of their first row
    if not rows:
        return near_repeated_rows(df, cols, what)
    extra = sum(len(g) - 1 for g in rows)          # rows beyond the first of each group
    shown = "; ".join("rows " + ", ".join(map(str, g)) for g in rows[:5]) + (f"; and {len(rows) - 5} more groups"
                                                                             if len(rows) > 5 else "")
    raise InputError(f"{what} has no patient id column and {counted(len(rows), 'row')} repeated "
                     f"({counted(extra, 'copy', 'copies')}), identical in every feature and the outcome ({shown}): one "
                     "patient in several rows?",
                     f"keep one row per patient ({why}); add a patient id column (named one of "
                     f"{', '.join(ID_NAMES)}, or declared with role id in a role file): with ids, different patients "
                     "with the same values are told apart by their ids")


def near_repeated_rows(df: pd.DataFrame, cols: list, what: str) -> str | None:
    """The note on pairs of rows (a table without ids, none identical) whose every one of ``cols`` agrees: text in any
    letter case, numbers to within :data:`NEAR_TOLERANCE` of the larger (both empty agree) - one patient twice, its
    values rounded (an export at other precision) or one retyped.  Only said where different patients agree so by
    chance rarely: the expected number of such pairs among the table's patients, from how often two rows agree in
    each column (columns taken as independent), is at most :data:`NEAR_CHANCE` - a table of a few coarse columns
    (age, sex, stage) is not searched.  None when there is nothing to say."""
    n = len(df)
    if n < 2:
        return None
    numeric, text = {}, {}
    for c in cols:
        raw = df[c].mask(df[c].map(is_missing_word))
        values = pd.to_numeric(raw, errors="coerce")
        if (values.notna() == raw.notna()).all() and np.isfinite(values.dropna().to_numpy(float)).all():
            numeric[c] = values.to_numpy(float)
        else:
            text[c] = _repeat_text(df[c]).to_numpy()
    pairs_total = n * (n - 1) / 2
    chance, near = pairs_total, {}
    for c, v in text.items():
        counts = pd.Series(v).value_counts().to_numpy(float)
        chance *= float((counts * (counts - 1)).sum()) / (n * (n - 1))
    for c, v in numeric.items():
        seen = np.sort(v[~np.isnan(v)])
        lo = np.searchsorted(seen, seen - NEAR_TOLERANCE * np.abs(seen), side="left")
        hi = np.searchsorted(seen, seen + NEAR_TOLERANCE * np.abs(seen), side="right")
        empty = n - len(seen)
        near[c] = (float((hi - lo - 1).sum()) + empty * (empty - 1)) / (n * (n - 1))
        chance *= near[c]
    if chance > NEAR_CHANCE or not numeric:
        return None
    # candidates: rows of the same text values whose most telling number agrees; then every number checked
    first = min(near, key=near.get)
    keys = pd.DataFrame(text).apply(tuple, axis=1) if text else pd.Series([()] * n)
    found = []
    for _, members in pd.Series(range(n)).groupby(keys.to_numpy()):
        idx = members.to_numpy()
        if len(idx) < 2:
            continue
        values = numeric[first][idx]
        order = np.argsort(values, kind="stable")           # empty cells last
        idx, values = idx[order], values[order]
        seen = int((~np.isnan(values)).sum())
        for a_pos, a in enumerate(idx):
            x = values[a_pos]         # the rows after it whose first number can agree: up to x + its tolerance
            end = len(idx) if np.isnan(x) else int(np.searchsorted(
                values[:seen], x + NEAR_TOLERANCE * abs(x) / (1 - NEAR_TOLERANCE), side="right"))
            rest = idx[a_pos + 1:end]
            agree_all = np.ones(len(rest), bool)
            for c in [first] + [c for c in numeric if c != first]:
                x, ys = numeric[c][a], numeric[c][rest]
                both_empty = np.isnan(x) & np.isnan(ys)
                close = np.abs(ys - x) <= NEAR_TOLERANCE * np.maximum(np.abs(ys), abs(x))
                agree_all &= both_empty | close
                if not agree_all.any():
                    break
            found += [tuple(sorted((int(a), int(b)))) for b in rest[agree_all]]
    if not found:
        return None
    found.sort()

    def differ(a, b):
        cs = [c for c in numeric if not (numeric[c][a] == numeric[c][b] or np.isnan(numeric[c][a])
                                         and np.isnan(numeric[c][b]))]
        cs += [c for c in text if str(df[c].iloc[a]) != str(df[c].iloc[b])]     # 'Male' / 'male ' 
        shown = ", ".join(f"{c} {' / '.join(as_written(df, c, [a, b]))}" for c in cs[:3])
        return shown + (f" and {len(cs) - 3} more" if len(cs) > 3 else "")

    listed = "; ".join(f"rows {a + 1} and {b + 1}: {differ(a, b)}" for a, b in found[:5]) \
        + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
    return (f"{what} has no patient id column and {counted(len(found), 'pair')} of rows "
            f"{agree(len(found), 'agrees', 'agree')} in every feature and the outcome, numbers to within "
            f"{NEAR_TOLERANCE:.1%} ({listed}): one patient in two rows, its values rounded or retyped? Different "
            f"patients agree so closely by chance in fewer than 1 in {round(1 / NEAR_CHANCE)} tables of this size "
            "and these columns; if they are one patient, keep one row per patient, or add a patient id "
            "column")


def read_tables(paths, id_column: str | None = None) -> pd.DataFrame:
    """One table from one CSV, or several CSVs (e.g. clinical, dose, radiomics) joined on their
    patient id column (``id_column``, e.g. the role file's ``id``, else one named case / patient_id / id / 'Patient ID'
    ... :data:`~lungai.io.tables.ID_NAMES`);
    every patient must be in every table, once.  The joined table's columns: the id, then each table's columns,
    the tables ordered by their sorted column names (not as given); its rows: the first table's order (``rp train``
    orders them by the id, :func:`id_order`)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    check_tables_given(paths)       # a table given twice, a role file as a table: said so (the CLI's check)
    tables = [read_table(p, id_column) for p in paths]
    if len(tables) == 1:
        tables[0].attrs["sources"] = TableSources(None, [(paths[0], set(tables[0].columns), None)])
        return tables[0]
    ids = []
    for path, df in zip(paths, tables):
        col = id_column_of(df, id_column)
        if col is None:
            raise InputError(f"{path} has no patient id column, so it cannot be joined with the other tables",
                             f"add a column named one of {', '.join(ID_NAMES)} to every table"
                             + (f" (or {id_column!r}, the role file's id)" if id_column else "")
                             + ", or declare the id column in a role file (role id)")
        ids.append(col)
    key = str(id_column).strip() if id_column is not None else "case"
    shared = _shared_id_column(tables, ids, id_column)
    if shared is not None:   # e.g. cohort's rp_table (case P_1, patient_id P) and a clinical CSV (patient_id P)
        ids, key = shared, str(shared[0])
    for path, df, col in zip(paths, tables, ids):
        check_no_blank_ids(df, col, f"{path}")      # before the join: a blank id is no patient to join on
        check_unique_ids(df[col], f"{path}", col, "keep one row per patient")
    # joined as id_text: 'R01-001 ' is R01-001, a decomposed (NFD) 'Müller' the precomposed one (as lungai cohort)
    merged = tables[0].rename(columns={ids[0]: key})
    merged[key] = merged[key].map(id_text)
    for k, (path, df, col) in enumerate(zip(paths[1:], tables[1:], ids[1:]), start=1):
        df = df.rename(columns={col: key})
        df[key] = df[key].map(id_text)
        shared = sorted((set(merged.columns) & set(df.columns)) - {key})
        if shared:
            raise InputError(f"{path} repeats {agree(len(shared), 'column', 'columns')} {shared[:10]} of an earlier table",
                             "keep each column in one table only")
        left, right = set(merged[key]), set(df[key])
        if left != right:
            only = sorted(left ^ right)
            from lungai.io.tables import id_spelling_hint

            zeros = id_spelling_hint(left, right)
            # which table lacks which ids (QA: the ids of both were listed as one, e.g. ['AMC-003', 'AMC_003', ...])
            earlier = ", ".join(map(str, paths[:k]))
            where = "; ".join(f"{len(ids_)} of {a} not in {b} (e.g. {sorted(ids_)[:5]})"
                              for ids_, a, b in ((left - right, earlier, path), (right - left, path, earlier)) if ids_)
            raise InputError(f"the tables do not hold the same patients: {counted(len(only), 'id')} "
                             f"{agree(len(only), 'is', 'are')} missing from "
                             f"one of them: {where}" + zeros,
                             ("write the ids the same way in every table (e.g. 007 everywhere, as text)" if zeros else
                              "give every patient a row in every table, or remove the patient everywhere"))
        merged = merged.merge(df, on=key, how="inner", validate="one_to_one")
    # the tables' columns in an order that does not depend on the order the tables were given in: table by table,
    # ordered by their column names (:func:`~lungai.rp.columns.canonical_order`, the order rp train gives the features)
    blocks = sorted(([c for c in df.columns if c != col] for df, col in zip(tables, ids)),
                    key=lambda cols: [str(c) for c in canonical_order(cols)])
    merged = merged[[key] + [c for cols in blocks for c in cols]]
    merged.attrs["sources"] = TableSources(key, [(path, set(df.columns) - {col}, {id_text(i): k for k, i in
                                                                                   enumerate(df[col])})
                                                 for path, df, col in zip(paths, tables, ids)])
    return merged


def patients_table(table, id_column: str | None, what: str, used=None, say: bool = True) -> pd.DataFrame:
    """The patients of ``rp train`` / ``rp validate`` / ``rp predict`` (``what``: "the training table" ...): ``table``
    itself (a DataFrame) or the CSV(s) read and joined (:func:`read_tables`), with a never-smoker's missing pack-years
    ('N/A') read as 0, not imputed, said in a note (:func:`lungai.io.tables.never_smoker_pack_years`, the rule of
    ``lungai stage``'s EHR reader too; QA predict67) when a pack-years column is among ``used`` (the model's features;
    None: every column) - ``say`` False: not said here (``rp train`` says it once its features are known:
    :func:`lungai.io.tables.never_smoker_note`; QA predictfollow67: said for a column the run does not use)."""
    from lungai.io.tables import never_smoker_pack_years

    if isinstance(table, pd.DataFrame):
        df = never_smoker_pack_years(table, what, used=used, say=say)
    else:
        what = f"{what} {', '.join(map(str, table_paths(table)))}"
        df = never_smoker_pack_years(read_tables(table, id_column), what, used=used, say=say)
    return model_quit_years(df, what, used)


# The fix rp gives to leave a feature out - the quit year, a site column (its columns are chosen by prefix or role file:
# no --drop / --keep-column as in lungai stage)
ROLE_IGNORE_FIX = "the role ignore for {} in a role file, --roles"


def _quit_years(df: pd.DataFrame, what: str, **kw):
    """:func:`lungai.io.tables.with_years_since_quitting` of an rp table, whose missing cells are words or empty
    text (read as text): a smoking status 'Not collected' / '' is no status (not a former smoker's); the table's own
    cells are kept as they are."""
    from lungai.io.tables import QUIT_YEARS, is_missing_cell, is_smoking_status_name, with_years_since_quitting

    status = [c for c in df.columns if is_smoking_status_name(c)]
    clean = df.copy()
    for c in status:
        clean[c] = df[c].map(lambda v: np.nan if isinstance(v, str) and is_missing_cell(v) else v)
    out, text = with_years_since_quitting(clean, what, **kw)
    if QUIT_YEARS not in out.columns or QUIT_YEARS in df.columns:
        return df, text
    for c in status:
        out[c] = df[c]
    return out, text


def years_since_quitting_features(df: pd.DataFrame, roles: ColumnRoles, what: str):
    """(``df``, ``roles``, the text to say or None) for ``rp train``: a quit-year feature (``Quit Smoking Year``,
    ``clin_quit_year`` ...: :func:`lungai.io.tables.is_quit_year_name`; empty for a current smoker as for a
    never-smoker, so the training median gave a current smoker a quit year he never had) is replaced by the feature
    :data:`lungai.io.tables.QUIT_YEARS` with its role (numeric; 0 for current and never-smokers, a former smoker's
    missing value imputed from the former smokers: :class:`lungai.io.impute.SmokersMedianImputer`) - the rule of
    ``lungai stage`` (:func:`lungai.io.tables.with_years_since_quitting`), said as it says it.  A table without a
    smoking-status or date column keeps the quit year (with a note where a date column is what it lacks); a quit
    year that is no feature (no clin_ prefix, role ignore) is left as it is."""
    from lungai.io.tables import QUIT_YEARS, is_quit_year_name

    quits = [c for c in roles.roles if is_quit_year_name(c)]
    if len(quits) != 1:
        return df, roles, None
    quit = quits[0]
    out, text = _quit_years(df, what, keep_quit_year=False, drop_fix=ROLE_IGNORE_FIX.format(repr(str(quit).strip())),
                            keep_fix=f"to leave both out: {ROLE_IGNORE_FIX.format(repr(str(quit).strip()))}")
    if QUIT_YEARS in df.columns or QUIT_YEARS not in out.columns:     # not derived: the quit year stays
        return df, roles, text
    features = {(QUIT_YEARS if c == quit else c): r for c, r in roles.roles.items()}
    how = {(QUIT_YEARS if c == quit else c): h for c, h in roles.how.items()}
    how[QUIT_YEARS] = f"numbers: years since quitting smoking, derived from {quit!r}"
    order = canonical_order(features, features)
    return out, ColumnRoles(roles={c: features[c] for c in order}, id_column=roles.id_column, ignored=roles.ignored,
                            categorical=[c for c in roles.categorical if c != quit],
                            binary=[c for c in roles.binary if c != quit], how=how), text


def model_quit_years(df: pd.DataFrame, what: str, used=None) -> pd.DataFrame:
    """``df`` for ``rp validate`` / ``rp predict`` of a model whose features (``used``; None: ``rp train``, nothing
    done here) are ``used``: with the column :data:`lungai.io.tables.QUIT_YEARS` computed as ``rp train`` computed it
    (:func:`years_since_quitting_features`) where the model has it, the quit year kept; a model with a quit-year
    feature (trained by an earlier lungai, or on a table without a date column) gets its column as before, and a
    note says how many current and never-smokers it imputes a quit year for, and to retrain it."""
    import warnings

    from lungai.errors import InputCheckNote
    from lungai.io.tables import QUIT_YEARS, is_current_smoker, is_missing_cell, is_never_smoker, \
        is_quit_year_name, is_smoking_status_name

    if used is None:
        return df
    used = {str(c) for c in used}
    if QUIT_YEARS in used:
        return _quit_years(df, what, keep_quit_year=True)[0]
    quits = [c for c in df.columns if str(c) in used and is_quit_year_name(c)]
    status = [c for c in df.columns if is_smoking_status_name(c)]
    if len(quits) != 1 or len(status) != 1:
        return df
    gap = df[quits[0]].map(lambda v: v is None or (isinstance(v, float) and v != v) or is_missing_cell(v))
    current = int((gap & df[status[0]].map(is_current_smoker)).sum())
    never = int((gap & df[status[0]].map(is_never_smoker)).sum())
    if current or never:
        said = " and ".join(counted(n, word) for n, word in ((current, "current smoker"), (never, "never-smoker")) if n)
        warnings.warn(InputCheckNote(
            f"{what}: the model's feature {quits[0]!r} is empty for {said}: imputed with the model's training median, a "
            f"quit year {'a current smoker' if current else 'a never-smoker'} never had (a model trained by an "
            f"earlier lungai, or on a table without a date column): retrain it with lungai rp train on a table with "
            f"{quits[0]!r}, {status[0]!r} and a date column ('CT Date' or 'Date of Diagnosis') - it then uses "
            f"{QUIT_YEARS!r} instead, 0 for current and never-smokers"))
    return df


def _shared_id_column(tables, ids, id_column=None) -> list | None:
    """The id column to join ``tables`` on when their first id columns (``ids``, :func:`id_column_of`) differ in
    name but every table has an id column of one name (:func:`id_columns_of`; spelled any way
    :func:`~lungai.io.tables.id_name_key` ignores - 'Patient ID', PatientID and patient_id are one name -, as
    :func:`id_column_of` reads them): lungai cohort's rp_table.csv has the per-series ``case`` (P_1) and the
    patient's ``patient_id`` (P), a clinical CSV ``patient_id`` (or 'Patient ID') only - joined on it, not ``case``
    against ``patient_id``.  That column of each table, or None (the first id columns share a name, or
    no name is in every table: each table's first id column is joined, as before)."""
    if len({id_name_key(c) for c in ids}) == 1:
        return None
    columns = [id_columns_of(df, id_column) for df in tables]
    common = [c for c in columns[0] if all(id_name_key(c) in {id_name_key(o) for o in cols} for cols in columns[1:])]
    if not common:
        return None
    name = id_name_key(common[0])
    return [next(c for c in cols if id_name_key(c) == name) for cols in columns]


class TableSources:
    """Where the cells of a table read by :func:`read_tables` come from, kept in its ``attrs["sources"]``: the joined
    table's id column ``key`` (None: one table) and, per table, (path, its columns, {id: its row} - None: one
    table, the rows as read).  pandas copies ``attrs`` on every operation: this is shared, not copied."""

    def __init__(self, key, tables):
        self.key, self.tables = key, tables

    def __deepcopy__(self, memo):
        return self

    def rows(self, df: pd.DataFrame, column, positions) -> tuple[Path, list[int]] | None:
        """(file, its data rows - 0 the first after the header) of the cells of ``column`` at the row ``positions``
        of ``df``, or None when not known."""
        table = next((t for t in self.tables if column in t[1]), None)
        if table is None or (self.key is not None and self.key not in df.columns):
            return None
        path, _, where = table
        if where is None:
            return Path(path), list(positions)
        ids = df[self.key].map(id_text).to_numpy()
        return (Path(path), [where[ids[p]] for p in positions]) if all(ids[p] in where for p in positions) else None


def where_in_files(df: pd.DataFrame, column, positions) -> str:
    """Where the cells of ``column`` at the row ``positions`` of ``df`` are, for an error message: "CSV lines [3, 5]"
    (the line of the header 1; a table joined of several CSVs: "lines [3, 5] of b.csv", or its rows)."""
    positions = [int(p) for p in positions]
    sources = df.attrs.get("sources")
    from lungai.io.tables import row_lines

    if sources is None:
        return f"CSV lines {[p + 2 for p in positions]}"
    if len(sources.tables) == 1:
        return f"CSV lines {row_lines(sources.tables[0][0], positions)}"
    found = sources.rows(df, column, positions)
    if found is None:
        return f"rows {[p + 1 for p in positions]} of the joined table"
    return f"lines {sorted(row_lines(found[0], found[1]))} of {found[0]}"


def as_written(df: pd.DataFrame, column, positions) -> list[str]:
    """The cells of ``column`` at the row ``positions`` of ``df`` as written in its CSV file ("1e999", read by
    pandas as inf), or as read where the file is not known (a DataFrame given) or cannot be read again."""
    values = [str(v) for v in df[column].iloc[list(positions)]]
    sources = df.attrs.get("sources")
    found = sources.rows(df, column, positions) if sources is not None else None
    if found is None:
        return values
    try:
        text = pd.read_csv(found[0], usecols=[column], dtype=str, keep_default_na=False)[column]
        written = [str(text.iloc[r]).strip() for r in found[1]]
    except Exception:     # noqa: BLE001 (changed or unreadable since: show the values as read)
        return values

    def same(w, v):       # the cell written is the one read (not a row of a table changed since)
        return w == v or pd.to_numeric(pd.Series([w, v]), errors="coerce").pipe(lambda n: n.notna().all() and
                                                                               n.iloc[0] == n.iloc[1])

    return [w if same(w, v) else v for w, v in zip(written, values)]


def outcome_like_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` that may be its 0/1 outcome: every value given reads as 0/1 (:data:`TRUE_WORDS` /
    :data:`FALSE_WORDS`, as :func:`outcome_vector` reads them; a missing word aside), at least one given; not a feature
    by its prefix (clin_ / dose_ / rad_: a 0/1 treatment such as clin_durvalumab) nor a patient ID column."""
    found = []
    for c in df.columns:
        if str(c).startswith(tuple(PREFIXES)) or is_id_name(c):
            continue
        raw = df[c]
        given = raw[~raw.map(is_missing_word).to_numpy(dtype=bool)]
        if len(given) and given.astype(str).str.strip().str.lower().isin(TRUE_WORDS | FALSE_WORDS).all():
            found.append(str(c))
    return found


def outcome_not_in_table(df: pd.DataFrame, outcome: str) -> InputError:
    """The outcome column ``outcome`` is not in ``df``: said with the columns that look like it - a close name
    (:func:`lungai.rp.columns.suggest`) and the 0/1 columns (:func:`outcome_like_columns`; QA rpfollow71: ``rp
    validate`` of a table whose outcome is ``RP2``, the model's ``rp_grade2``, named none) -, the fix the ``--outcome``
    to pass, e.g. ``--outcome RP2``; without a look-alike, the table's columns."""
    import shlex

    from lungai.fusion.labels import columns_text

    close = close_names(outcome, df.columns)
    binary = [c for c in outcome_like_columns(df) if c not in close]
    example = next(iter(close + binary), None)
    shown = ", ".join(map(repr, binary[:8])) + (" ..." if len(binary) > 8 else "")
    return InputError(f"outcome column {outcome!r} is not in the table{suggest(outcome, df.columns)}"
                      + (f"; its 0/1 {agree(len(binary), 'column', 'columns')} (no clin_ / dose_ / rad_ feature, no "
                         f"patient ID): {shown}" if binary else ""),
                      "pass the exact name of the 0/1 outcome column with --outcome"
                      + (f", e.g. --outcome {shlex.quote(example)} if that is the outcome (1 = event)" if example
                         else f" (the table's {columns_text(df)})"))


def outcome_vector(df: pd.DataFrame, outcome: str) -> np.ndarray:
    """The outcome column as 0/1 (accepts 0/1, yes/no, true/false)."""
    if outcome not in df.columns:
        raise outcome_not_in_table(df, outcome)
    raw = df[outcome]
    empty = raw.map(is_missing_word).to_numpy(dtype=bool)       # an empty cell, or "NA", "unknown" ...
    # the values given first (QA rpfollow70: --outcome clin_age_years said "empty or missing in 7 rows ... fill in
    # the outcome", not that the column is no 0/1 outcome), then the blanks
    given = raw[~empty]
    text = given.astype(str).str.strip().str.lower()
    bad = sorted(set(text) - TRUE_WORDS - FALSE_WORDS)
    if bad and all(_GRADE.fullmatch(t) for t in text):
        raise InputError(graded_outcome_problem(given, outcome), GRADED_OUTCOME_FIX)
    if bad:
        raise InputError(f"outcome {outcome!r} has values other than 0/1: {bad[:10]}",
                         "code the outcome as 1 (event, e.g. grade >= 2 pneumonitis) and 0 (no event), or pass the "
                         "0/1 outcome column with --outcome")
    if empty.any():
        rows = where_in_files(df, outcome, np.flatnonzero(empty)[:10])
        raise InputError(f"outcome {outcome!r} is empty or missing in {counted(int(empty.sum()), 'row')} ({rows})",
                         "fill in the outcome or remove these patients")
    return text.isin(TRUE_WORDS).to_numpy().astype(int)


# a CTCAE grade as hospitals record radiation pneumonitis: 2, 2.0, "Grade 2", "G2", "gr. 2", "CTCAE grade 2" (0-5),
# "Grade II" (roman numerals only after the word: a lone "I" is no grade)
_GRADE = re.compile(r"(?:ctcae\s*)?(?:(?:grade|gr\.?|g)?\s*([0-5])(?:\.0*)?|(?:grade|gr\.?|g)\s*(i{1,3}|iv|v))",
                    re.IGNORECASE)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5}
# never binarised here (which grade is the event is the study's choice): the fix names the column to make
GRADED_OUTCOME_FIX = ("make a 0/1 outcome column - 1 where the grade is 2 or more (the usual endpoint, grade >= 2 "
                      "pneumonitis), 0 where it is 0 or 1 - e.g. rp_grade2, and pass it with --outcome rp_grade2 "
                      "(lungai rp train has no grade cut-off option: its --threshold is the risk threshold, "
                      "not a grade)")


def graded_outcome_problem(values: pd.Series, outcome: str) -> str:
    """What is wrong with an outcome column holding grades (0-5, 'Grade 2' ...: :data:`_GRADE`) rather than 0/1, with
    the patients per grade as written."""
    def grade(text):
        arabic, roman = _GRADE.fullmatch(text).groups()
        return int(arabic) if arabic is not None else _ROMAN[roman.lower()]

    grades = values.astype(str).str.strip().map(grade)
    counts = ", ".join(f"grade {g}: {n}" for g, n in sorted(grades.value_counts().items()))
    return (f"outcome {outcome!r} holds grades ({counts} patients), not 0/1 - CTCAE grades of radiation "
            "pneumonitis? lungai does not choose which grade is the event")


def outcome_words(df: pd.DataFrame, outcome: str) -> str:
    """How :func:`outcome_vector` read an outcome written in words, to be said back ('' for 0/1 numbers): e.g.
    "outcome 'rp_grade2': 'Yes' read as 1 (event), 'no', 'No' as 0 (no event)" - the spellings as the table has
    them, so a user sees which word counted as the event."""
    if outcome not in df.columns:
        return ""
    written = sorted({str(v).strip() for v in df[outcome] if not is_missing_word(v)})
    if all(w in ("0", "1", "0.0", "1.0") for w in written):
        return ""
    event = [w for w in written if w.lower() in TRUE_WORDS]
    none = [w for w in written if w.lower() in FALSE_WORDS]
    return (f"outcome {outcome!r}: {', '.join(map(repr, event)) or 'nothing'} read as 1 (event), "
            f"{', '.join(map(repr, none)) or 'nothing'} as 0 (no event)")


_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)")


def category_text(value, rules: dict | None = None):
    """A categorical value as text (2, 2.0, "2", "2.0" and "+2.00" are the same category, "2"; "2.50" is 2.5, "2.5",
    as the number read from a column without text would be); missing (an empty cell or "Not collected", "unknown" ...;
    "None" is a category, unless the ``rules`` - a model card's ``category_rules`` - say otherwise) stays missing."""
    if is_missing_word(value, categorical=True, rules=rules):
        return np.nan  # what SimpleImputer recognises as missing in object columns
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value)        # a column with a text cell ("NA", "None") is read as text: "1.0" is 1.0
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _binary(value) -> float:
    """yes/no, 1/0, true/false ... -> 1.0/0.0; anything else -> NaN (reported as a bad value)."""
    word = str(value).strip().lower()
    return 1.0 if word in TRUE_WORDS else 0.0 if word in FALSE_WORDS else np.nan


def categories_as_read(texts: pd.Series, categories: list | None, rules: dict) -> pd.Series:
    """The categories of the texts (:func:`category_text`) of a categorical column by the ``rules``
    (:data:`~lungai.rp.columns.CATEGORY_RULES`, or a model card's ``category_rules``): with case merged, spellings
    that differ only in case are one category - the training table's most frequent spelling
    (:func:`~lungai.rp.columns.category_spellings`; ``categories`` None), or the model's category of that spelling
    (``categories``: the card's; a spelling the model does not know stays as it is, refused by
    :func:`check_categories`)."""
    merged = rules.get("case") == "merged"
    if categories is None:
        if not merged:
            return texts
        spellings = category_spellings(texts)
    else:
        # a model category matched as a cell of it is read ("1.0" of a card that kept it as written is 1)
        def key(t):
            text = str(category_text(t, rules))
            return text.casefold() if merged else text

        exact = {str(c) for c in categories}
        known = {key(c): str(c) for c in categories}
        spellings = {t: known[key(t)] for t in texts.dropna().unique() if t not in exact and key(t) in known}
    return texts.map(lambda t: spellings.get(t, t) if isinstance(t, str) else t)


def numeric_features(df: pd.DataFrame, roles: ColumnRoles, columns, categories: dict | None = None,
                     rules: dict | None = None, trained: dict | None = None) -> pd.DataFrame:
    """The feature columns as the model reads them: numeric and binary (yes/no ... -> 1/0) as float,
    categorical as text (:func:`categories_as_read`: training, ``categories`` None, or the model's ``categories``
    and ``rules`` - its card's ``category_rules``, default the current :data:`~lungai.rp.columns.CATEGORY_RULES`);
    missing cells and missing-value words become NaN.  Values that do not fit the column's type (text in a numeric
    column, infinity) raise, naming the column, the values and the CSV lines."""
    rules = rules or CATEGORY_RULES
    out = df[list(columns)].copy()
    for col in columns:
        kind = roles.type_of(col)
        if kind == "categorical":
            texts = out[col].map(lambda v: category_text(v, rules)).astype(object)
            known = None if categories is None else categories.get(col, [])
            out[col] = categories_as_read(texts, known, rules).astype(object)
            continue
        raw = out[col].mask(out[col].map(is_missing_word))
        values = raw.map(_binary).astype(float) if kind == "binary" else pd.to_numeric(raw, errors="coerce")
        infinite = np.isinf(values.to_numpy(float))
        bad = (values.isna() | infinite) & raw.notna()
        if bad.any():
            positions = np.flatnonzero(bad.to_numpy())
            rows = where_in_files(df, col, positions[:5])
            examples = sorted(set(as_written(df, col, positions[:50])))[:5]
            one = len(examples) == 1
            expected = "yes/no (or 1/0, true/false ...)" if kind == "binary" else \
                f"{'a finite number' if one else 'finite numbers'} (infinity is no measurement: a division by zero?)" \
                if infinite.any() else "a number" if one else "numbers"
            comma = next((decimal_comma_hint(e) for e in examples if decimal_comma_hint(e)), "")
            if comma:       # '2,35': a spreadsheet's decimal comma, never a category or a missing value
                raise InputError(f"column {col!r} ({kind}) has {agree(len(examples), 'value', 'values')} {examples} "
                                 f"written with a decimal comma{comma} ({rows})",
                                 DECIMAL_COMMA_FIX + "; if the column is categorical (codes, not numbers), declare it "
                                 "categorical in a role file (type categorical) or end its name with _cat")
            if any(percent_number(e) is not None for e in examples):    # '45%': a cell formatted as a percentage
                raise InputError(f"column {col!r} ({kind}) has {agree(len(examples), 'value', 'values')} {examples} "
                                 "written with a percent sign"
                                 f"{next(number_hint(e) for e in examples if percent_number(e) is not None)} "
                                 f"({rows})", PERCENT_FIX)
            raise InputError(f"column {col!r} ({kind}) has {agree(len(examples), 'a value', 'values')} {examples} "
                             f"{agree(len(examples), 'that is', 'that are')} not {expected} "
                             f"({rows})",
                             f"correct {agree(len(examples), 'this value', 'these values')} (leave a cell empty, "
                             "or write 'Not collected', for a missing value); if the column is categorical, declare it categorical in a role file "
                             "(type categorical) or end its name with _cat")
        out[col] = values.astype(float)
    check_units(df, out, [c for c in columns if roles.type_of(c) == "numeric"], trained)
    return out


def _fmt(value: float) -> str:
    return f"{value:.4g}"


FRACTION_ROWS_MIN = 2   # rp train: rows of a percentage column that look like fractions beside the others to refuse it


def _fractions(values: np.ndarray, small: np.ndarray, low: float, high: float) -> np.ndarray:
    """The ``small`` values (percentages at most 1) that are fractions beside percentages ``low``-``high`` (a model's
    training range, or a training table's other values): well below them (under half ``low``) and x 100 inside them
    - V20 0.3 beside 7-45 % is one; V30 0.8 beside 0-27 %, V20 0.3 beside 0.5-40 % are not."""
    return small & (values < low / 2) & (values * 100 >= low) & (values * 100 <= high)


def _fraction_fix(name: str, n_values: int, example: float) -> str:
    return (agree(n_values, f"this value of {name} looks like a fraction (0-1): multiply it by 100",
                  f"these values of {name} look like fractions (0-1): multiply them by 100")
            + f" (e.g. {_fmt(example)} -> {_fmt(example * 100)} %)")


ROW_FRACTION_LEVEL_MAX = 10.0   # a row whose V_x are all at most 1, one of them V10 or lower: fractions (see below)


def _dvh_rows(X: pd.DataFrame, columns) -> dict:
    """What the order of each row's lung DVH (its ``dose_v<x>_pct`` columns: V5 >= V13 >= V20 >= V30 ..., a volume
    receiving at least x Gy never grows with x) says of a value at most 1: {column: (percent, fraction)}, boolean
    rows.  ``percent``: the value fits its row as a percentage - no lower level's value below it, no higher level's
    above it, and another V_x of the row above 1 (V30 0.3 beside V5 25.6, V20 17.5 %).  ``fraction``: the row's
    V_x are all at most 1 (some above 0, two or more given, one of them V10 or lower - a lung V5 of at most 1 % is
    no lung RT plan; V20 0.8 and V30 0.2 % of a small target can be).  Empty with fewer than two such columns."""
    cols = sorted((pct_dose_level(str(c)), c) for c in columns
                  if c in X and str(c).startswith(DOSE_PREFIX) and pct_dose_level(str(c)) is not None)
    if len(cols) < 2:
        return {}
    levels = np.array([lv for lv, _ in cols])
    M = X[[c for _, c in cols]].to_numpy(float)
    seen = ~np.isnan(M)
    row_fraction = ((seen.sum(axis=1) >= 2) & (np.where(seen, M, 0) <= 1).all(axis=1)
                    & (np.where(seen, M, 0) > 0).any(axis=1)
                    & (seen & (levels <= ROW_FRACTION_LEVEL_MAX)).any(axis=1))
    out = {}
    with np.errstate(invalid="ignore"):
        for j, (level, col) in enumerate(cols):
            v = M[:, [j]]
            lower, higher = levels < level, levels > level
            fits = (~seen | (lower & (M >= v)) | (higher & (M <= v)) | (levels == level)).all(axis=1)
            other_above_1 = (seen & (M > 1) & (levels != level)).any(axis=1)
            out[col] = (fits & other_above_1, row_fraction)
    return out


def check_units(df: pd.DataFrame, X: pd.DataFrame, columns, trained: dict | None = None) -> None:
    """Refuse dosimetric columns whose values cannot be in the unit their name gives (the rules of
    :mod:`lungai.rp.columns`: ``dose_*_gy`` in Gy, ``dose_*_pct`` in percent), naming the column, the values, the CSV
    lines and the fix: a dose above :data:`~lungai.rp.columns.DOSE_GY_MAX` (mean lung dose 60 Gy, another dose
    150 Gy) "looks like cGy: divide by 100"; a percentage outside 0-100 is refused; one whose values are all at
    most 1 (some above 0) "looks like a fraction: multiply by 100", and one holding percentages with several rows of
    fractions beside them (:func:`_fractions`, its values above 1 the reference; :data:`FRACTION_ROWS_MIN`) too.  ``trained`` (a model card's
    ``training_data.features``, for predict / validate): a percentage at most 1 where the model's training values
    were above 1 and the value x 100 lies in the training range is a fraction too (one patient's V20 0.3 among
    training V20 7-45 %); a model trained on fractions (its training maximum at most 1) is not checked for them.
    The one unit check of train, validate, predict and the Slicer panel (via :func:`numeric_features`); ``X``: the
    columns as numbers."""
    problems, fixes = [], []
    dvh_rows = _dvh_rows(X, columns)
    for col in columns:
        name = str(col)
        if not name.startswith(DOSE_PREFIX) or col not in X:
            continue
        values = X[col].to_numpy(float)
        seen = ~np.isnan(values)
        if not seen.any():
            continue
        summary = (trained or {}).get(col) or {}

        def report(mask, text, fix):
            positions = np.flatnonzero(mask)
            shown = sorted(set(as_written(df, col, positions[:50])))[:5]
            # 'value' / 'values' (and the callers' 'a value' / 'these values') by the rows to correct, not the
            # distinct values: three rows of V13 0.3 are values ['0.3'] (QA smallfix68: "holds a value ... (CSV lines
            # [44, 45, 46])", "multiply it by 100")
            problems.append(f"column {name!r} {text}: {agree(len(positions), 'value', 'values')} {shown} ({where_in_files(df, col, positions[:5])}"
                            f"{f', {len(positions)} rows in all' if len(positions) > 5 else ''})")
            fixes.append(fix)

        if name.endswith(GY_SUFFIX):
            limit = DOSE_GY_MAX.get(name, DOSE_GY_MAX_DEFAULT)
            what = "a mean lung dose" if name in DOSE_GY_MAX else "a dose"
            high, negative = seen & (values > limit), seen & (values < 0)
            if high.any():
                every = " (all its values)" if high.sum() == seen.sum() else ""
                report(high, f"(a dose in Gy, by its name) holds values above {limit:g} Gy, more than {what} in Gy "
                       "can be", f"{name} looks like cGy{every}: divide by 100 (e.g. "
                       f"{_fmt(values[high][0])} -> {_fmt(values[high][0] / 100)} Gy)")
            if negative.any():
                report(negative, "(a dose in Gy) holds negative values", f"correct the negative doses in {name}")
        elif name.endswith(PCT_SUFFIX):
            lo, hi = DOSE_PCT_RANGE
            outside = seen & ((values < lo) | (values > hi))
            if outside.any():
                n_values = int(outside.sum())      # the rows (report)
                report(outside, f"(a percentage of a volume, by its name) holds "
                       f"{agree(n_values, 'a value', 'values')} outside {lo:g}-{hi:g}",
                       f"correct {agree(n_values, 'this value', 'these values')} of {name} (give the volume in "
                       "percent, 0-100)")
                continue
            small = seen & (values > 0) & (values <= 1)
            trained_max, trained_min = summary.get("max"), summary.get("min")
            if trained_max is not None and trained_max <= 1:
                continue          # a model trained on fractions (an older lungai): its own scale
            # the row's DVH order (QA rpfollow68: V30 0.3 % beside V5 25.6 %, V20 17.5 % refused the whole table as
            # a fraction): a small value that fits its row's percentages is one; a row of V_x all at most 1 is fractions
            no_rows = np.zeros(len(values), bool)
            fits_percent, row_fraction = dvh_rows.get(col, (no_rows, no_rows))
            row_fraction = small & row_fraction
            rows_text = (", or in a row whose every V_x is at most 1 (a row of fractions)" if row_fraction.any()
                         else "")
            if trained is None:   # a cohort (rp train): all at most 1 only where that cannot be a real cohort
                level = pct_dose_level(name)
                if level is None or not small.any():
                    continue
                if level > FRACTION_LEVEL_MAX:      # V30 and above: small values are real, but not in a row of fractions
                    if row_fraction.any():
                        n_values = int(row_fraction.sum())      # the rows (report)
                        report(row_fraction, "(a percentage, by its name) holds "
                               f"{agree(n_values, 'a value', 'values')} at most 1 in rows whose every V_x is at most "
                               "1 (a row of fractions: V5 >= V13 >= V20 >= V30 ... in percent)",
                               _fraction_fix(name, n_values, values[row_fraction][0])
                               + "; a table joined from several exports: give every row the same unit")
                    continue
                if (values[seen] <= 1).all():
                    report(small, "(a percentage, by its name) holds no value above 1 %",
                           f"{name} looks like a fraction (0-1): multiply by 100 (e.g. {_fmt(values[small][0])} -> "
                           f"{_fmt(values[small][0] * 100)} %); a lung V{_fmt(level)} all under 1 % is no plausible "
                           "cohort")
                    continue
                # some rows in percent, others at most 1 (two centres' exports joined, one writing fractions): a
                # value is a fraction by the rule of one patient's below, the column's values above 1 its reference;
                # refused where several are (FRACTION_ROWS_MIN) and they are most of the values at most 1 - not one
                # real small V20 (a small peripheral target) or a tail of them (0.3, 0.5, 0.8 beside 1.2-40 %)
                # (QA rpcard64: V5-V20 of 40 of 160 patients as fractions were trained on without a word)
                rest = values[seen & (values > 1)]
                fraction = _fractions(values, small, rest.min(), rest.max()) & ~fits_percent
                several = fraction.sum() >= FRACTION_ROWS_MIN and 2 * fraction.sum() >= (small & ~fits_percent).sum()
                if several or row_fraction.any():
                    # a column so refused: every value at most 1 well below its percentages (under half their
                    # minimum) is named a fraction, its x 100 in their range or not - the rows of that export are
                    # not only those whose x 100 the other rows' range holds (QA rpfollow64: V5 0.2 beside 24.7-94.6 %
                    # was not named, 39 of 40; once the 39 fixed, it was trained on as 0.2 %: a lone value is
                    # no longer refused); values at most 1 nearer the percentages are named to check (either unit)
                    fraction = (small & (values < rest.min() / 2) & ~fits_percent) | row_fraction
                    n_values = int(fraction.sum())      # the rows (report)
                    unsure = np.flatnonzero(small & ~fraction & ~fits_percent)
                    check = (f"; check {agree(len(unsure), 'its value', 'its values')} at most 1 not under half its "
                             f"other values' minimum too ({where_in_files(df, col, unsure[:5])}"
                             f"{f', {len(unsure)} rows in all' if len(unsure) > 5 else ''}): a fraction or a "
                             "percentage?") if len(unsure) else ""
                    report(fraction, f"(a percentage, by its name; its other values {_fmt(rest.min())}-"
                           f"{_fmt(rest.max())} %) holds {agree(n_values, 'a value', 'values')} at most 1"
                           + (", under half their minimum, that look like fractions (several x 100 in their range)"
                              + rows_text if several else
                              " in a row whose every V_x is at most 1 (a row of fractions: V5 >= V13 >= V20 >= V30 "
                              "... in percent)"),
                           _fraction_fix(name, n_values, values[fraction][0])
                           + "; a table joined from several exports: give every row the same unit" + check)
            elif small.any() and trained_min is not None and trained_max is not None:
                # one patient / an external cohort: a value is a fraction only when it lies well below the model's
                # training range (under half its minimum) and x 100 inside it: V20 0.3 with training 7-45 % is;
                # V30 0.8 with training 0-27 %, V20 0.3 with training 0.5-40 % are not (said as out of range only)
                fraction = (_fractions(values, small, trained_min, trained_max) & ~fits_percent) | row_fraction
                if fraction.any():
                    n_values = int(fraction.sum())      # the rows (report)
                    report(fraction, f"(a percentage, by its name; the model's training values {_fmt(trained_min)}"
                           f"-{_fmt(trained_max)} %) holds {agree(n_values, 'a value', 'values')} at most 1 that x 100 "
                           f"{agree(n_values, 'lies', 'lie')} in the training range{rows_text}",
                           _fraction_fix(name, n_values, values[fraction][0]))
    if problems:
        raise InputError("wrong units: " + "; ".join(problems),
                         "; ".join(fixes) + " (dose_*_gy columns are in Gy, dose_*_pct columns in percent 0-100, as "
                         "lungai dose-features writes them)")


def check_not_constant(X: pd.DataFrame) -> None:
    """Raise for features with fewer than two distinct non-missing values."""
    constant = [c for c in X.columns if X[c].dropna().nunique() < 2]
    if constant:
        more = f" and {len(constant) - 20} more" if len(constant) > 20 else ""
        raise InputError(f"{counted(len(constant), 'constant or empty feature column')}: {constant[:20]}{more}",
                         "drop these columns (they carry no information) or mark them 'ignore' in a role file")


SMALLEST_FOLDS = 2   # the fewest outer (and inner) folds of a nested cross-validation


def largest_design(smallest: int, outer_folds: int, inner_folds: int) -> tuple[int, int] | None:
    """The largest outer x inner design (at most the requested folds, at least 2 x 2) that ``smallest`` events
    (or non-events) allow under the rule of :func:`check_events` (outer x inner <= smallest); None below 4."""
    fits = [(o, i) for o in range(2, max(outer_folds, 2) + 1) for i in range(2, max(inner_folds, 2) + 1)
            if o * i <= smallest]
    return max(fits, key=lambda d: (d[0] * d[1], min(d), d[0])) if fits else None


def check_events(y: np.ndarray, outer_folds: int, inner_folds: int) -> None:
    """Nested stratified CV needs enough events and non-events in every fold."""
    if outer_folds < 2 or inner_folds < 2:
        raise InputError(f"nested CV needs at least 2 outer and 2 inner folds (got {outer_folds} x {inner_folds})",
                         "use e.g. --outer-folds 5 --inner-folds 3")
    minimum = outer_folds * inner_folds
    events, non_events = int(y.sum()), int(len(y) - y.sum())
    smallest = min(events, non_events)
    least = SMALLEST_FOLDS ** 2   # events and non-events the smallest nested CV (2 x 2 folds) needs
    if len(y) < 2 * least:
        # a table of one patient (a cohort of one, a few rows): the patients are the cause, said before any other
        # check of the table - with one row every feature column is constant, and dropping them cannot help
        # (QA rpsmall65: "36 constant or empty feature columns ... drop these columns")
        raise InputError(
            f"too few patients to train a model: {counted(len(y), 'patient')} (events {events}, non-events "
            f"{non_events}); nested cross-validation needs at least {least} events and {least} non-events "
            f"({SMALLEST_FOLDS} x {SMALLEST_FOLDS} folds, {2 * least} patients), {minimum} of each for the "
            f"{outer_folds}x{inner_folds} folds asked",
            f"collect more patients: at least {least} with the outcome (1) and {least} without (0) for the smallest "
            f"design (--outer-folds {SMALLEST_FOLDS} --inner-folds {SMALLEST_FOLDS}); {minimum} of each for "
            f"{outer_folds} x {inner_folds} folds")
    if smallest < minimum:
        which = "event" if events < non_events else "non-event"
        design = largest_design(smallest, outer_folds, inner_folds)
        fix = (f"collect more patients or use fewer folds (--outer-folds {design[0]} --inner-folds {design[1]} "
               f"needs at least {counted(design[0] * design[1], which)}, the largest design "
               f"{counted(smallest, which)} {agree(smallest, 'allows', 'allow')})" if design else
               f"collect more patients: 2 x 2 folds (at least 4 events and 4 non-events) is the smallest nested CV, "
               f"and {counted(smallest, which)} {agree(smallest, 'is', 'are')} too few for any")
        raise InputError(
            f"too few {which}s for {outer_folds}x{inner_folds} nested cross-validation: "
            f"{counted(smallest, which)} (events {events}, non-events {non_events}); "
            f"the minimum is {minimum}", fix)


MIN_EVENTS_PER_FEATURE = 10   # the usual rule of thumb for events per candidate feature


def small_cohort_warnings(y: np.ndarray, n_features: int) -> list[str]:
    """Warnings for a cohort too small for stable estimates: fewer than :data:`lungai.rp.metrics.MIN_EVENTS`
    events or non-events, or fewer than :data:`MIN_EVENTS_PER_FEATURE` of the rarer class per candidate feature."""
    from lungai.rp.metrics import small_sample_warnings  # noqa: PLC0415

    out = small_sample_warnings(y, "nested-CV AUC / calibration")
    events, non_events = int(y.sum()), int(len(y) - y.sum())
    smallest = min(events, non_events)
    if n_features and smallest / n_features < MIN_EVENTS_PER_FEATURE:
        which = "events" if events <= non_events else "non-events"
        out.append(f"{smallest / n_features:.2g} {which} per candidate feature ({smallest} {which}, {n_features} "
                   f"candidate features; at least {MIN_EVENTS_PER_FEATURE} are advised): the model and its estimates "
                   "are unstable and likely overfitted - retrain with fewer features (lungai rp train --feature-sets, "
                   "or a role file: --roles) or more patients")
    return out


def check_categories(X: pd.DataFrame, categories: dict[str, list[str]], what: str) -> None:
    """Raise when categorical columns hold values unseen in training, naming every such column at once."""
    found, n_unknown = [], 0
    for col, known in categories.items():
        seen = set(X[col].dropna().astype(str))
        unknown = sorted(seen - set(known))
        if unknown:
            n_unknown += len(unknown)
            hint = "; ".join(f"{u!r}{suggest(u, known)}" for u in unknown[:5])
            found.append(f"column {col!r} has {agree(len(unknown), 'an unknown category', 'unknown categories')} {hint}; "
                         f"the model knows {known}")
    if found:
        raise InputError(f"{what}: {counted(len(found), 'column')} with unknown categories: " + " | ".join(found),
                         agree(n_unknown, "recode this value to one of the known categories (or leave it empty)",
                               "recode these values to one of the known categories (or leave them empty)"))
