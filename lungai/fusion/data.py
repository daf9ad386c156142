"""Read the three modalities and join them by patient ID, with a report of who has what.

- EHR: a table (CSV/TSV), one row per patient; the ID column is found by name or is the first column.
- RNA: a matrix genes x patients or patients x genes; the orientation is detected from which axis
  holds the patient IDs (or the genes of a locked model).
- CT manifest: a table with patient ID, CT image path and tumour-mask path (relative to the manifest).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from lungai.errors import InputCheckNote, InputError, InputNote, agree, counted
from lungai.fusion.labels import DERIVED_ATTR, READ_ATTR, clean_labels, clean_missing, columns_text, derive_stage, \
    stage0 as is_stage0, stage_from_hint, tnm_kind_note
from lungai.io.tables import ID_NAMES, READ_OPTIONS, check_unique_ids, duplicate_ids, id_spelling_hint, id_text, \
    NEVER_SMOKER_ATTR, QUIT_YEARS, is_id_name, is_quit_year_name, match_headers, name_key, name_order, \
    never_smoker_note, never_smoker_pack_years, site_column_text, site_columns, site_kept_text, \
    with_years_since_quitting

# ID_NAMES (lungai.io.tables): the one list of id column names of lungai stage, lungai rp and lungai cohort --clinical
MODALITIES = ("ehr", "rna", "ct")


def read_table(path, id_column: Optional[str] = None, first_id: bool = True, **kw) -> pd.DataFrame:
    """A CSV / TSV table with its patient id column as text ("007" stays "007":
    :func:`lungai.io.tables.read_csv_text_ids`): ``id_column``, the columns named one of :data:`ID_NAMES`, else (with
    ``first_id``) the first column - the one :func:`_id_column` and an RNA matrix's row names take."""
    from lungai.io.tables import id_columns_named, read_table_checked

    p = Path(path)
    sep = _separator(p)
    if kw.get("index_col") == 0:      # row names (an RNA matrix's patients or genes) are ids
        ids = lambda header: header[:1]     # noqa: E731
    else:
        ids = id_columns_named(ID_NAMES, id_column, first=first_id)
    fix = "give a CSV (comma) or TSV (tab) file with a header row"
    try:     # unreadable (not UTF-8, empty, another delimiter - a ';' CSV: whole lines would become patient IDs)
        return read_table_checked(p, ids, sep=sep, fix=fix, **kw)
    except InputError:
        raise
    except Exception as exc:  # pandas raises many kinds
        raise InputError(f"cannot read table {p}: {exc}", fix)


def _id_column(df: pd.DataFrame, id_column: Optional[str], what: str) -> str:
    """The patient id column of ``df``: ``id_column`` (``--id-column``) under its own name, else spelled with another
    case / spacing ('case id' for 'Case ID': :func:`lungai.io.tables.match_headers`, the rule of the automatic
    detection and of ``lungai rp`` too; two such headers refused), else the first column named one of
    :data:`ID_NAMES` (case, spaces and '_' ignored: :func:`lungai.io.tables.is_id_name`), else the first column."""
    if id_column:
        if id_column in df.columns:
            return id_column
        renames = match_headers([id_column], df.columns, f"the {what}", "the column")
        if renames:
            return next(iter(renames))
        raise InputError(f"ID column {id_column!r} is not in the {what}",
                         f"columns are: {', '.join(map(str, df.columns[:30]))}")
    for col in df.columns:
        if is_id_name(col):
            return col
    return df.columns[0]


def column_named(df: pd.DataFrame, name):
    """The column of ``df`` that ``name`` (--label, --drop, --stage-from) means: the exact name, else the one whose
    name equals it with case and spaces ignored ('histology' finds a header 'Histology ', 'pathological t stage'
    'Pathological T stage': :func:`lungai.io.tables.match_headers`, as the ID column is found; two such headers
    refused, naming them); ``name`` itself when none (the caller says it is not there)."""
    if name is None or name in df.columns:
        return name
    renames = match_headers([str(name)], df.columns, "the EHR table", "the column")
    return next(iter(renames)) if renames else name


def unknown_options(ehr_df: pd.DataFrame, ehr, drop_columns, keep_columns) -> None:
    """Refuse (``cv`` / ``train``) a ``--drop`` or ``--keep-column`` that names no column of the EHR table ``ehr``
    (``ehr_df``: as read, with the columns lungai adds - 'Years since quitting smoking'), naming a header that looks
    like it (:func:`lungai.fusion.api.look_alike_headers`).  QA stage70: a typo ('--drop "Pack Yrs"') was said in one
    note among the summary lines and the run went on - the column meant to be left out (an outcome, a leak) trained
    on as a feature; a mistyped '--keep-column' ('Patient Afiliation') was not said at all."""
    from lungai.fusion.api import look_alike_headers

    given = [("--drop", c) for c in drop_columns] + [("--keep-column", c) for c in keep_columns]
    absent = [(opt, c) for opt, c in given if c not in ehr_df.columns]
    if not absent:
        return
    hints = look_alike_headers(list(dict.fromkeys(str(c) for _, c in absent)), list(ehr_df.columns), ehr_df)
    named = "; ".join(f"{opt} {str(c)!r}" + (f" (the table's {hints[str(c)]!r} looks like it)"
                                              if str(c) in hints else "") for opt, c in absent)
    raise InputError(f"{agree(len(absent), 'an option names', 'options name')} no column of the EHR table {ehr}: "
                     f"{named}",
                     "write each as the table's header (case and spaces are ignored), or leave the option out; "
                     + columns_text(ehr_df))


def both_options(drop_columns, keep_columns) -> None:
    """Refuse a column named by both ``--drop`` and ``--keep-column`` (after :func:`column_named`: 'pack years' and
    'Pack Years' are one column): the two ask for opposite things.  QA stagefollow70: the drop silently won - a
    column kept on purpose (a site column, the quit year) was left out of the features without a word."""
    kept = {str(c).strip(): c for c in keep_columns}
    both = list(dict.fromkeys(kept[str(c).strip()] for c in drop_columns if str(c).strip() in kept))
    if not both:
        return
    names = ", ".join(repr(str(c).strip()) for c in both)
    first = str(both[0]).strip()
    raise InputError(f"{agree(len(both), 'a column is', 'columns are')} named by both --drop and --keep-column "
                     f"({names}): --drop leaves it out of the features, --keep-column keeps it as a feature",
                     f"give one of the two for each: --drop {first!r} to leave it out, or --keep-column {first!r} "
                     "to keep it")


def _ids(values) -> list[str]:
    """Patient ids (and gene names) as text compared across the tables (:func:`lungai.io.tables.id_text`: spaces
    around dropped, Unicode composed - NFC)."""
    return [id_text(v) for v in values]


def load_ehr(path, id_column: Optional[str] = None, say_pack_years: bool = True) -> pd.DataFrame:
    """EHR table indexed by patient ID (strings), missing tokens as NaN.  A never-smoker's missing pack-years are 0
    (:func:`lungai.io.tables.never_smoker_pack_years`), said in a note unless ``say_pack_years`` is False: then the
    caller says it (:func:`lungai.io.tables.never_smoker_note` of the table returned) once it knows the columns it
    uses (:func:`load_cohort`: not for a column left out with --drop, QA predictfollow67)."""
    df = read_table(path, id_column, **READ_OPTIONS)     # pandas' own missing words not used: "None" is read below
    from lungai.io.tables import check_unique_columns

    check_unique_columns(path, _separator(path), "EHR table")     # not read as 'NAME' and 'NAME.1'
    col = _id_column(df, id_column, f"EHR table {path}")
    df.index = pd.Index(_ids(df[col]), name="patient_id")
    df = df.drop(columns=[col])
    check_unique_ids(df.index, f"EHR table {path}", col)
    # a never-smoker's 'N/A' pack-years are 0, not imputed (said in a note): the one rule of lungai rp too
    df = never_smoker_pack_years(df, f"EHR table {path}", say=say_pack_years)
    record = df.attrs.get(NEVER_SMOKER_ATTR)
    # read without its attrs, put back below: pandas deep-copies a frame's attrs into each of the ~3800 frames and
    # series the cleaning makes (0.6 s of NSCLC-Radiogenomics' table - the 48 never-smokers' record - QA stagewait72)
    df.attrs = {}
    df = clean_missing(df, categories=True)
    check_numeric_text(df, path)
    df = merge_case_spellings(df, path)
    if record is not None:          # what was read as 0, for the caller's note (never_smoker_note)
        df.attrs[NEVER_SMOKER_ATTR] = record
    return df


def say_pack_years_note(ehr, patient_id, used=None) -> None:
    """The never-smoker pack-years note (:func:`lungai.io.tables.never_smoker_note`) of one patient's row of the EHR
    table ``ehr`` (:func:`load_ehr` with ``say_pack_years`` False; or its record, the table's ``attrs`` entry), said
    for that patient only - not for the table's other patients (``lungai demo``, the Slicer stage panel; QA
    predictfollow67: "48 patients ... read as 0" for a smoker's row) - and only where ``used``, the features of the
    model the row goes to (None: every column), holds the pack-years column (QA stagenote67: said for a locked stage
    model without a pack-years feature)."""
    if (text := never_smoker_note(ehr, used, rows=[patient_id])) is not None:
        warnings.warn(InputCheckNote(text))


def merge_case_spellings(df: pd.DataFrame, path) -> pd.DataFrame:
    """``df`` with the values of each categorical (text) column that differ only in letter case ('Former', 'former',
    'FORMER') made one category, its most frequent spelling - the rule of ``lungai rp``
    (:func:`lungai.rp.columns.category_spellings`) - said in one note; before, each spelling was a level of its own
    (patients with one smoking status encoded as different ones)."""
    from lungai.fusion.preprocess import NUMERIC_SHARE, _numeric_share
    from lungai.rp.columns import category_spellings, merge_note

    out, notes = df.copy(), []
    for col in df.columns:
        s = df[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s)) or _numeric_share(s) >= NUMERIC_SHARE:
            continue
        spellings = category_spellings(s)
        if spellings:
            out[col] = s.map(lambda v: spellings.get(v, v) if isinstance(v, str) else v)
            notes.append(f"{col!r}: {merge_note(spellings)}")
    if notes:
        warnings.warn(InputNote(f"EHR table {path}: values differing only in letter case are one category (as lungai "
                                f"rp reads them): " + "; ".join(notes)))
    return out


INFINITE_FIX = ("replace each infinite value by a finite one (an infinite value is often a log of 0: use log(x + 1) "
                "or a small pseudo-count), or leave the cell empty: a missing value is imputed")


def check_finite_values(values: pd.DataFrame, what: str) -> None:
    """Refuse infinite values (inf / -inf: e.g. a log of 0 expression) in ``values`` (patients x columns, numbers;
    ``what``: the table, e.g. "the RNA matrix rna.csv"), naming column, patient and value - the one check of the RNA
    loader (:func:`orient_rna`), the EHR loader (:func:`check_numeric_text`), the gene selector and the EHR encoder:
    an infinite value would otherwise give NaN probabilities (written as a prediction) or crash a CV fold."""
    found = infinite_values(values)
    if found:
        raise infinite_error(found, what)


def infinite_error(found: dict, what: str) -> InputError:
    """The refusal of :func:`check_finite_values` for ``found`` ({patient: values}, :func:`infinite_values`)."""
    bad = [f"{text} for patient {pid}" for pid, texts in found.items() for text in texts]
    return InputError(f"{what} has {counted(len(bad), 'infinite value')}: " + "; ".join(bad[:10])
                      + (f"; and {len(bad) - 10} more" if len(bad) > 10 else ""), INFINITE_FIX)


def infinite_values(values: pd.DataFrame) -> dict:
    """{patient: ["'TP53' = -inf", ...]} for the rows of ``values`` (patients x columns, numbers) that hold an
    infinite value, in row order; {} when none does (:func:`check_finite_values` refuses them)."""
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    rows, cols = np.nonzero(np.isinf(arr))
    out: dict = {}
    for r, c in zip(rows, cols):
        out.setdefault(values.index[r], []).append(f"{values.columns[c]!r} = {arr[r, c]:g}")
    return out


def infinite_status(texts) -> str:
    """The ``status`` of a patient predicted without a stage because its RNA profile holds infinite values
    (``texts``: :func:`infinite_values`' of the patient)."""
    shown = "; ".join(list(texts)[:5]) + (" ..." if len(texts) > 5 else "")
    return f"not computed: infinite RNA {agree(len(texts), 'value', 'values')} ({shown}) - {INFINITE_FIX}"


def leave_out_infinite_rows(rna: pd.DataFrame, used, what: str, warn: bool = True) -> tuple[pd.DataFrame, dict]:
    """(``rna`` without the rows of patients not in ``used`` that hold an infinite value, {patient: values} of the
    rows left out), with a warning naming them (:func:`warn_unused_infinite`; ``warn`` False: the caller says it):
    a row no patient of the run uses never refuses the file.  The rows of ``used`` are refused as
    :func:`check_finite_values` does (naming gene, patient, value and the fix)."""
    used = set(used)
    check_finite_values(rna.loc[[i for i in rna.index if i in used]], what)
    left = {pid: texts for pid, texts in infinite_values(rna).items() if pid not in used}
    if left:
        if warn:
            warn_unused_infinite(left, what)
        rna = rna.drop(index=list(left))
    return rna, left


def _patients_text(found: dict) -> str:
    return ("; ".join(f"{pid} ({', '.join(t[:3])}{' ...' if len(t) > 3 else ''})"
                      for pid, t in list(found.items())[:10])
            + (" ..." if len(found) > 10 else ""))


def warn_unused_infinite(found: dict, what: str) -> None:
    """Warn of the rows with infinite values (``found``: {patient: values}) left out as no patient of the run's."""
    if found:
        n, values = len(found), sum(len(t) for t in found.values())
        text = (f"{counted(n, 'patient')} of {what} not used here {agree(n, 'has', 'have')} "
                f"{agree(values, 'an infinite value', 'infinite values')} and {agree(n, 'is', 'are')} left out")
        warnings.warn(InputNote(f"{text}: {_patients_text(found)}", without_ids=text))


def check_numeric_text(df: pd.DataFrame, path, decimal_commas: bool = False) -> None:
    """A numeric EHR column (one the encoder takes as numbers, :data:`~lungai.fusion.preprocess.NUMERIC_SHARE`)
    with text in it (Age '7O', a typo for 70) is refused, naming column, patient, value and CSV line - as
    ``lungai rp`` refuses it: the value would otherwise silently become missing and be imputed.  Missing-value
    words ("Not Collected", "N/A", :data:`~lungai.fusion.labels.MISSING_TOKENS`) are missing, not text.  An infinite
    number (Age 'inf') is refused too (:func:`check_finite_values`).  ``decimal_commas`` (training: the columns'
    types are decided from these values): numbers written with a decimal comma ('2,35',
    :func:`lungai.io.tables.decimal_comma_number`) count as numbers in that decision, so a column written so is
    refused as numeric with text - before, it became categories (<= 20 values: dose per fraction '1,8' / '2,0') or
    was left out as "date or free text" (FEV1 '2,35'), its numbers lost."""
    from lungai.fusion.preprocess import NUMERIC_SHARE, _numeric_share
    from lungai.io.tables import (DECIMAL_COMMA_FIX, PERCENT_FIX, decimal_comma_number, number_hint, percent_number,
                                  row_lines)

    def share(s: pd.Series) -> float:
        if not decimal_commas:
            return _numeric_share(s)
        present = s.dropna()
        return float((pd.to_numeric(present, errors="coerce").notna() | present.map(decimal_comma_number).notna()
                      | present.map(percent_number).notna()).mean())

    bad, numeric, texts, textual = [], [], [], []
    for col in df.columns:
        s = df[col]
        if not s.notna().any() or share(s) < NUMERIC_SHARE:
            continue
        numeric.append(col)
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        text = s.notna() & pd.to_numeric(s, errors="coerce").isna()
        rows = np.flatnonzero(text.to_numpy())
        bad += [f"{col!r} = {s.iloc[r]!r}{number_hint(s.iloc[r])} for patient {df.index[r]} (CSV line {line})"
                for r, line in zip(rows[:3], row_lines(path, [int(r) for r in rows[:3]], _separator(path)))]
        bad += [f"{len(rows) - 3} more in {col!r}"] if len(rows) > 3 else []
        texts += [s.iloc[r] for r in rows]
        textual += [col] if len(rows) else []
    if bad:
        commas = all(decimal_comma_number(t) is not None for t in texts)
        percents = all(percent_number(t) is not None for t in texts)
        raise InputError(f"EHR table {path} has text in numeric {agree(len(textual), 'column', 'columns')}: "
                         + "; ".join(bad[:10])
                         + (f"; and {len(bad) - 10} more" if len(bad) > 10 else ""),
                         DECIMAL_COMMA_FIX + " (or --drop a column of codes, not numbers)" if commas else
                         PERCENT_FIX if percents else
                         f"correct {agree(len(texts), 'the value', 'the values')} (e.g. the letter O typed for the "
                         "digit 0, a decimal comma for the decimal point), or leave the cell empty for a missing value")
    check_finite_values(df[numeric].apply(pd.to_numeric, errors="coerce"), f"EHR table {path}")


# Gene-annotation columns that expression exports hold beside the expression values (cBioPortal: Hugo_Symbol,
# Entrez_Gene_Id; GDC / TCGA: gene_id, gene_name, gene_type; GEO series matrices: ID_REF, IDENTIFIER, Gene Symbol;
# Ensembl / biomart: Ensembl_Gene_ID, gene_biotype, Description, Chromosome, Length), compared after
# :func:`_annotation_key`.  In a genes x patients matrix such a column is no patient: QA, a cBioPortal matrix's
# Entrez_Gene_Id (numbers 100 ...) was read as a patient and ``stage predict`` gave it a stage from RNA alone.
RNA_ANNOTATION_NAMES = frozenset({
    "hugo_symbol", "entrez_gene_id", "entrez_id", "entrezid", "entrez", "gene_id", "geneid", "gene_name", "gene_type",
    "gene_biotype", "gene_symbol", "symbol", "gene", "gene_description", "description", "id_ref", "identifier",
    "ensembl_id", "ensembl_gene_id", "ensembl", "chromosome", "chr", "cytoband", "locus", "length", "gene_length"})


def _annotation_key(name) -> str:
    """'Entrez Gene ID' / 'Entrez-Gene-Id' / ' entrez_gene_id ' -> 'entrez_gene_id'."""
    return re.sub(r"[\s\-.]+", "_", str(name).strip().casefold()).strip("_")


def drop_annotation_columns(out: pd.DataFrame, what: str) -> pd.DataFrame:
    """``out`` (patients x genes) without the rows / columns named as gene annotations
    (:data:`RNA_ANNOTATION_NAMES`: a genes x patients export's Entrez_Gene_Id column read as a patient, or a patients x
    genes export's as a gene), with a warning naming them - never a patient or a gene of the matrix."""
    rows = [i for i in out.index if _annotation_key(i) in RNA_ANNOTATION_NAMES]
    cols = [c for c in out.columns if _annotation_key(c) in RNA_ANNOTATION_NAMES]
    if rows or cols:
        warnings.warn(InputNote(f"{what}: {', '.join(map(repr, rows + cols))} left out: gene annotation, not "
                                f"{'a patient' if rows else 'a gene'} (expression values only are read)"))
        out = out.drop(index=rows, columns=cols)
    return out


# a gene symbol a spreadsheet (Excel) read as a date: MARCH3 -> '3-Mar', SEPT7 -> '7-Sep', DEC1 -> '1-Dec'
# (NSCLC-Radiogenomics' df_zscore.csv has 3-Mar, its gene_variances.csv 1-Mar ... 9-Mar); today's symbols MARCHF3, SEPTIN7, DELEC1 (HGNC 2020)
_DATE_GENE = re.compile(r"^(?:0?(\d{1,2})-(mar|sep|dec)|(mar|sep|dec)-0?(\d{1,2}))$", re.IGNORECASE)
_DATE_GENE_NAMES = {"mar": ("MARCHF", "MARCH"), "sep": ("SEPTIN", "SEPT"), "dec": ("DELEC", "DEC")}


def _date_gene(name):
    """(today's symbol, former symbol, the name renamed) of a gene name that a spreadsheet made into a date - written
    alone ('3-Mar') or as the symbol of a TCGA-style 'SYMBOL|Entrez' name ('3-Mar|10299': the symbol is the part
    before '|', :func:`lungai.fusion.preprocess.gene_symbol`) -; None for any other name."""
    from lungai.fusion.preprocess import gene_symbol

    text = str(name).strip()
    symbol = gene_symbol(text)
    m = _DATE_GENE.match(text if symbol is None else symbol)
    if not m:
        return None
    number, month = int(m.group(1) or m.group(4)), (m.group(2) or m.group(3)).casefold()
    if month == "dec" and number != 1:       # DEC1 is the only such symbol
        return None
    now, before = (f"{n}{number}" for n in _DATE_GENE_NAMES[month])
    return now, before, (now if symbol is None else f"{now}|{text.split('|', 1)[1].strip()}")


def date_damaged_genes(genes) -> dict:
    """{gene name: 'MARCHF3, formerly MARCH3'} for the names of ``genes`` that are dates a spreadsheet made of gene
    symbols ('3-Mar', 'Sep-07', '1-Dec'; also as the symbol of a TCGA-style name, '3-Mar|10299'); {} when none."""
    found = {}
    for g in genes:
        if (dated := _date_gene(g)) is not None:
            found[str(g)] = f"{dated[0]}, formerly {dated[1]}"
    return found


def say_date_damaged_genes(genes, what: str, variances: bool = False) -> None:
    """A note naming the gene names of the RNA matrix (``variances``: of the ``--gene-variances`` file) that a
    spreadsheet turned into dates (:func:`date_damaged_genes`), with the fix.  QA stagefollow70: NSCLC-Radiogenomics'
    df_zscore.csv has 1 (3-Mar = MARCH3), unsaid; matched as written, a matrix that names it properly does not find
    it (or the reverse).  QA stage71: its gene_variances.csv has 8 (1-Mar ... 9-Mar), unsaid - a matrix renamed as the
    note said found no variance for MARCHF3 (never selected by --top-k) - and '3-Mar|10299' of a TCGA-style matrix
    was not found."""
    found = date_damaged_genes(genes)
    if not found:
        return
    shown = "; ".join(f"{g} = {s}" for g, s in list(found.items())[:4]) + (" ..." if len(found) > 4 else "")
    first = next(iter(found))
    it = agree(len(found), "it", "them")
    effect = (f"an RNA matrix that writes the symbol finds no variance for {it} here (never selected by --top-k)"
              if variances else
              f"a matrix (or model) that writes the symbol does not find {it}")
    warnings.warn(InputNote(
        f"{what}: {len(found)} {agree(len(found), 'gene name is a date', 'gene names are dates')} that a spreadsheet (Excel) made "
        f"of a gene symbol ({shown}); gene names are matched as written, so {effect} - rename {it} alike in every "
        f"file of the study - the RNA matrices, training and new, and the gene variances (--gene-variances): "
        f"{first} -> {_date_gene(first)[2]} -, or export the {'file' if variances else 'matrix'} again with the gene "
        "column as text"))


def orient_rna(df: pd.DataFrame, ids: Optional[Sequence[str]] = None,
               genes: Optional[Sequence[str]] = None, what: str = "the RNA matrix",
               used: Optional[Sequence[str]] = None, warn: bool = True, path=None) -> pd.DataFrame:
    """Return the matrix as patients x genes, detecting the orientation from IDs or known genes (``path``: the file
    ``df`` was read from, its rows as read - a non-numeric value is refused naming its line there).  An infinite value
    is refused (:func:`check_finite_values`) - with ``used`` (the patients the caller uses), only in their rows:
    another patient's row with one is left out, with a warning (:func:`leave_out_infinite_rows`; kept in
    ``attrs["infinite_rows"]``; ``warn`` False: the caller says it); a patient whose profile is entirely empty
    (every value missing) is
    left out, with a warning: the patient has no RNA (its RNA branch is masked, :meth:`Cohort.availability`), never
    a profile of training means (z = 0) predicted as if measured."""
    rows, cols = set(_ids(df.index)), set(_ids(df.columns))
    if ids is not None:
        ids = set(ids)
        r, c = len(rows & ids), len(cols & ids)
        if r == 0 and c == 0:
            raise InputError(
                "no RNA sample ID joins a patient ID: rows look like "
                f"{sorted(rows)[:3]}, columns like {sorted(cols)[:3]}, patients like {sorted(ids)[:3]}"
                + id_spelling_hint(rows | cols, ids),
                "use the same patient IDs in the RNA matrix (as row or column names) and the EHR table")
        transpose = c > r
    elif genes is not None:     # a locked model's genes; an Ensembl ID also under another version (another release)
        from lungai.fusion.preprocess import unversioned

        g = {unversioned(x) for x in genes}
        transpose = len({unversioned(x) for x in rows} & g) > len({unversioned(x) for x in cols} & g)
    else:
        transpose = df.shape[0] > df.shape[1]   # more genes than patients is the usual case
    out = df.T if transpose else df
    out = out.copy()
    out.index = pd.Index(_ids(out.index), name="patient_id")
    out.columns = _ids(out.columns)
    check_unique_genes(out.columns, "the RNA matrix (genes as " + ("rows)" if transpose else "columns)"))
    out = drop_annotation_columns(out, what)
    say_date_damaged_genes(out.columns, what)
    out = numeric_rna(out, what, _file_lines(df.index, path), genes_in_rows=transpose)
    check_unique_ids(out.index, "the RNA matrix", fix="keep one expression profile per patient")
    left = {}
    if used is None:
        check_finite_values(out, what)
    else:
        out, left = leave_out_infinite_rows(out, used, what, warn=warn)
    empty = out.index[out.isna().all(axis=1)] if out.shape[1] else []
    if len(empty):
        head = (f"{counted(len(empty), 'patient')} of {what} {agree(len(empty), 'has', 'have')} an empty RNA profile "
                "(every value missing)")
        tail = " - treated as without RNA (the RNA branch is masked)"
        warnings.warn(InputNote(f"{head}: {', '.join(map(str, list(empty)[:20]))}{' ...' if len(empty) > 20 else ''}"
                                + tail, without_ids=head + tail))
        out = out.drop(index=empty)
    out.attrs["infinite_rows"] = left
    return out


def _file_lines(names, path) -> dict:
    """{row name: its line in the file ``path``} for the rows ``names`` of the table as read
    (:func:`lungai.io.tables.row_lines`: blank lines and quoted line breaks counted); {} without a path.  A name that
    occurs twice is left out (its line would be a guess; the repeat is refused on its own)."""
    if path is None:
        return {}
    from lungai.io.tables import row_lines

    names = _ids(names)
    twice = set(duplicate_ids(names))
    return {n: line for n, line in zip(names, row_lines(path, range(len(names)), _separator(path))) if n not in twice}


def numeric_rna(values: pd.DataFrame, what: str, lines: Optional[dict] = None,
                genes_in_rows: bool = False) -> pd.DataFrame:
    """``values`` (patients x genes) as float32: a missing-value word ("-", "NA", "not available" ...:
    :func:`lungai.io.tables.is_missing_cell`, the rule of the EHR table and ``lungai rp``) is a missing value (NaN,
    imputed and counted as an empty cell); other text is refused naming gene, patient, value and - with ``lines``
    ({file row name: line}, :func:`_file_lines`; ``genes_in_rows``: the file's rows are the genes) - its line, as the
    gene variances' reader does (before: pandas' 'Unable to parse string "x" at position 3', naming neither), a
    decimal comma ('2,35') with its fix."""
    from lungai.io.tables import DECIMAL_COMMA_FIX, decimal_comma_hint, decimal_comma_number, is_missing_cell

    num = values.apply(pd.to_numeric, errors="coerce")
    rows, cols = np.nonzero((num.isna() & values.notna()).to_numpy())
    raw = values.to_numpy(dtype=object)
    bad = [(r, c) for r, c in zip(rows, cols) if not is_missing_cell(raw[r, c])]
    if bad:
        lines = lines or {}

        def where(r, c):
            line = lines.get(values.columns[c] if genes_in_rows else values.index[r])
            return f" (line {line})" if line else ""

        listed = [f"gene {values.columns[c]!r} = {raw[r, c]!r}{decimal_comma_hint(raw[r, c])} for patient "
                  f"{values.index[r]}{where(r, c)}" for r, c in bad[:10]]
        commas = all(decimal_comma_number(raw[r, c]) is not None for r, c in bad)
        n = len(bad)
        raise InputError(f"{what} has {counted(n, 'non-numeric value')}: " + "; ".join(listed)
                         + (f"; and {n - 10} more" if n > 10 else ""),
                         DECIMAL_COMMA_FIX if commas else
                         f"correct {agree(n, 'the value to a number', 'the values to numbers')}, or leave "
                         f"{agree(n, 'the cell', 'the cells')} empty for a missing value; give expression values "
                         "only, with gene and patient names as header / first column")
    return num.astype(np.float32)


def check_unique_genes(names, what: str) -> None:
    """Refuse gene names that occur more than once (``what``: where they are), naming them: two profiles of one
    gene cannot be told apart (pandas would rename a repeated header name 'TP53' to 'TP53.1', and a repeated row
    name breaks every lookup by gene)."""
    dup = duplicate_ids(names)
    if dup:
        more = f" and {len(dup) - 10} more" if len(dup) > 10 else ""
        raise InputError(f"{what} has duplicate gene names: {counted(len(dup), 'gene')} "
                         f"{agree(len(dup), 'occurs', 'occur')} more than once: {dup[:10]}{more}",
                         "keep one row (or column) per gene: merge or remove the repeated genes (e.g. average the "
                         "probes of one gene, or keep one)")


def _separator(path) -> str:
    """The delimiter of a table of lungai stage: a tab for .tsv / .txt, else a comma."""
    return "\t" if Path(path).suffix.lower() in (".tsv", ".txt") else ","


def _header(path) -> list[str]:
    """The header row of a CSV / TSV as written (pandas renames a repeated name 'R01-023' to 'R01-023.1')."""
    from lungai.io.tables import header_names

    return header_names(path, _separator(path))


def load_rna(path, ids=None, genes=None, used=None, warn: bool = True) -> pd.DataFrame:
    """The RNA matrix as patients x genes (:func:`orient_rna`; ``used``: the patients whose rows must be finite,
    None: every row); a patient column that occurs twice in a genes x
    patients matrix is refused (:func:`lungai.io.tables.check_unique_ids`), never silently renamed by pandas."""
    raw = read_table(path, index_col=0)
    out = orient_rna(raw, ids=ids, genes=genes, what=f"the RNA matrix {path}", used=used, warn=warn, path=path)
    if list(out.columns) == _ids(raw.index):               # the header holds the patients (genes are the rows)
        check_unique_ids(_header(path)[1:], f"the header row of the RNA matrix {path}",
                         fix="keep one expression profile (one column) per patient")
    else:                                                  # the header holds the genes
        check_unique_genes(_header(path)[1:], f"the header row of the RNA matrix {path}")
    return out


LABEL_COLUMNS = ("label", "mask_label", "tumour_label", "tumor_label")


def _manifest_label(value, pid, path):
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = None
    if number is None or not number.is_integer() or number <= 0:
        raise InputError(f"CT manifest {path}: label {value!r} of patient {pid} is not a positive whole number",
                         "give the tumour's label in the mask (e.g. 1), or leave the cell empty for a one-label mask")
    return int(number)


def load_ct_manifest(path, id_column: Optional[str] = None, label: Optional[int] = None) -> dict:
    """{patient_id: (ct_path, mask_path)} from a manifest with columns id, image (or ct), mask - and
    (ct_path, mask_path, label) for a patient whose tumour is one label of a label map: the manifest's optional
    ``label`` column, else ``label`` (``--ct-label``).  Every mask is checked here, before any work: without a label
    it must hold one label (:func:`lungai.fusion.ct_crop.binary_mask`); one InputError names every refused mask."""
    from lungai.fusion.ct_crop import binary_mask, choose_ct_label, mask_labels
    from lungai.io import read_mask

    df = read_table(path, id_column)
    col = _id_column(df, id_column, f"CT manifest {path}")
    check_unique_ids(_ids(df[col]), f"CT manifest {path}", col,
                     fix="keep one row (one CT and tumour mask) per patient")
    lower = {str(c).strip().lower(): c for c in df.columns}
    img = next((lower[k] for k in ("image", "ct", "ct_path", "image_path") if k in lower), None)
    msk = next((lower[k] for k in ("mask", "tumour_mask", "tumor_mask", "mask_path", "segmentation") if k in lower), None)
    lab = next((lower[k] for k in LABEL_COLUMNS if k in lower), None)
    if img is None or msk is None:
        raise InputError(f"CT manifest {path} needs an 'image' and a 'mask' column (has {list(df.columns)})",
                         "write a CSV with columns id,image,mask (paths relative to the manifest; optional label: "
                         "the tumour's label in a label-map mask)")
    base = Path(path).parent
    labels = df[lab] if lab is not None else [None] * len(df)
    out, missing, refused, first = {}, [], [], None
    for pid, i, m, tl in zip(_ids(df[col]), df[img], df[msk], labels):
        ip, mp = base / str(i), base / str(m)
        if not ip.exists() or not mp.exists():
            missing.append(pid)
            continue
        tl = _manifest_label(tl, pid, path)
        tl = label if tl is None else tl
        try:
            mask = read_mask(str(mp))
        except InputError:      # e.g. a DICOM SEG, read onto its CT's grid only: checked when the crop is made
            mask = None
        try:
            if mask is not None:
                binary_mask(mask, f"tumour mask {mp.name} of {pid}", tl)
        except InputError as exc:
            refused.append(exc.problem)
            first = first if first is not None else next(iter(mask_labels(mask)), None)
            continue
        out[pid] = (ip, mp) if tl is None else (ip, mp, tl)
    if refused:
        more = f"; and {len(refused) - 10} more" if len(refused) > 10 else ""
        raise InputError(f"CT manifest {path}: {counted(len(refused), 'tumour mask')} cannot be used - "
                         + "; ".join(refused[:10]) + more, choose_ct_label(first or 1))
    if missing:
        text = f"CT manifest: files missing for {counted(len(missing), 'patient')}"
        warnings.warn(InputNote(f"{text} {missing[:10]}; CT treated as missing",
                                without_ids=f"{text}; CT treated as missing"))
    return out


@dataclass
class Cohort:
    """Joined modalities for a set of patients (``ids``); any modality may be missing per patient."""

    ids: list
    ehr: pd.DataFrame                  # patients x EHR columns (label/ID removed), NaN = missing
    rna: Optional[pd.DataFrame]        # patients x genes (only patients with RNA)
    ct: dict                           # id -> (ct path, mask path[, tumour label in the mask])
    labels: Optional[pd.Series] = None
    report: dict = field(default_factory=dict)

    def availability(self) -> pd.DataFrame:
        ehr_ok = self.ehr.reindex(self.ids).notna().any(axis=1) if self.ehr.shape[1] else pd.Series(False, index=self.ids)
        rna_ids = set(self.rna.index) if self.rna is not None else set()
        return pd.DataFrame({"ehr": ehr_ok.values, "rna": [i in rna_ids for i in self.ids],
                             "ct": [i in self.ct for i in self.ids]}, index=pd.Index(self.ids, name="patient_id"))

    def subset(self, ids) -> "Cohort":
        ids = list(ids)
        rna = self.rna.loc[[i for i in ids if i in self.rna.index]] if self.rna is not None else None
        return Cohort(ids, self.ehr.reindex(ids), rna, {i: self.ct[i] for i in ids if i in self.ct},
                      self.labels.reindex(ids) if self.labels is not None else None, dict(self.report))

    def y(self, classes) -> np.ndarray:
        lookup = {c: k for k, c in enumerate(classes)}
        return np.array([lookup[v] for v in self.labels.reindex(self.ids)], dtype=np.int64)


def load_cohort(ehr=None, rna=None, ct=None, label: Optional[str] = None, id_column: Optional[str] = None,
                drop_columns: Sequence[str] = (), label_groups: Optional[dict] = None,
                stage_from: Optional[Sequence[str]] = None, require_label: bool = True,
                ct_label: Optional[int] = None, check_leaks: bool = True,
                keep_columns: Sequence[str] = (), stage0: str = "I",
                ehr_used: Optional[Sequence[str]] = None) -> Cohort:
    """Load and join by patient ID.  With labels, the cohort is the EHR patients with a label.  ``ct_label``: the
    tumour's label in the CT manifest's masks where its ``label`` column does not give one.  ``check_leaks`` (for
    training: cv / train): a copy of the label among the EHR columns is refused (:func:`check_label_leaks`); a
    locked model's features are its own, so validate / predict pass False; ``keep_columns`` (--keep-column): flagged
    columns kept deliberately (warned about); ``stage0`` (--stage0, with ``stage_from``): Tis N0 M0 (AJCC stage 0)
    is class "I", or with "exclude" gets no label (left out).  ``ehr_used``: the EHR columns the run's models use
    (None: every column kept; ``()`` where the EHR is no model input - ``--modalities rna,ct``), for the never-smoker
    pack-years note, said only for a pack-years column among them (QA stagenote67: said for a run without the EHR)."""
    # a never-smoker's pack-years read as 0 are said below, once the columns used are known (not one --dropped)
    ehr_df = load_ehr(ehr, id_column, say_pack_years=False) if ehr else None
    pack_years = ehr_df.attrs.get(NEVER_SMOKER_ATTR) if ehr_df is not None else None
    ct_map = load_ct_manifest(ct, label=ct_label) if ct else {}
    known = set(ehr_df.index) if ehr_df is not None else set(ct_map)
    # infinite values: only the rows the run uses must be finite (decided below, once its patients are known)
    rna_df = load_rna(rna, ids=known if known else None, used=(), warn=False) if rna else None
    infinite = dict(rna_df.attrs.get("infinite_rows", {})) if rna_df is not None else {}
    rna_what = f"the RNA matrix {rna}"
    if ehr_df is None:
        if require_label:
            raise InputError("a label needs the EHR table", "pass --ehr with the label column")
        ehr_df = pd.DataFrame(index=pd.Index(sorted(set(ct_map) | set(rna_df.index if rna_df is not None else [])),
                                             name="patient_id"))
    labels = raw_labels = label_cells = None
    label = column_named(ehr_df, label)
    drop_columns = [column_named(ehr_df, c) for c in drop_columns]
    keep_columns = [column_named(ehr_df, c) for c in keep_columns]    # as --drop: case and spaces ignored
    both_options(drop_columns, keep_columns)
    quit_text = None
    if ehr and not any(is_quit_year_name(c) for c in drop_columns):
        # the quit year (empty for current and never-smokers alike) -> the years since quitting; cv / train train on
        # it instead (said), validate / predict keep both: a model trained before has the quit year as its feature
        read = list(ehr_df.columns)
        quit = next((c for c in read if is_quit_year_name(c)), None)
        ehr_df, quit_text = with_years_since_quitting(
            ehr_df, f"EHR table {ehr}",
            keep_quit_year=not check_leaks or any(is_quit_year_name(c) for c in keep_columns))
        if QUIT_YEARS in ehr_df.columns and QUIT_YEARS not in read:
            # a refusal's "columns are:" lists the table's columns as read, the derived one apart (columns_text)
            ehr_df.attrs[READ_ATTR], ehr_df.attrs[DERIVED_ATTR] = read, {QUIT_YEARS: quit}
    table_columns = set(ehr_df.columns)    # before the label and the T / N / M columns leave (a --drop of one: there)
    if ehr and check_leaks:
        unknown_options(ehr_df, ehr, drop_columns, keep_columns)
    if stage_from:
        stage_from = [column_named(ehr_df, c) for c in stage_from]
        derived = derive_stage(ehr_df, *stage_from)
        # Tis N0 M0 (stage 0, carcinoma in situ) is class I: its patients are counted in the class summary
        stage0_ids = [i for i, t, n, m in zip(ehr_df.index, *(ehr_df[c] for c in stage_from)) if is_stage0(t, n, m)]
        if stage0 not in ("I", "exclude"):
            raise InputError(f"--stage0 {stage0!r} is not a choice", "use --stage0 I (default) or --stage0 exclude")
        if stage0 == "exclude":         # no label: left out, counted with the unlabelled patients
            derived = derived.where(~derived.index.isin(stage0_ids), None)
        name = label or "stage_group"
        if check_leaks and label is not None and label in ehr_df.columns and label not in drop_columns:
            raise InputError(f"with --stage-from the label is derived (from {', '.join(map(repr, stage_from))}); "
                             f"{label!r} is a column of the EHR table: it would stay a feature, and a stage column "
                             "leaks the answer",
                             f"drop it (--drop {str(label).strip()!r}) or choose another --label name (e.g. "
                             "stage_group) for the derived stage")
        label_cells = ehr_df[list(stage_from)]
        ehr_df = ehr_df.drop(columns=list(stage_from))
        labels = clean_labels(derived.rename(name))
    elif label:
        if label not in ehr_df.columns:
            from lungai.fusion.api import look_alike_headers

            # a header that looks like it ('pT' for 'Pathological T stage'): named, as for --stage-from
            hint = look_alike_headers([label], list(ehr_df.columns), ehr_df).get(label)
            # a stage label the table does not hold (--label stage_group): derived from its T, N, M columns
            derive = stage_from_hint(ehr_df) if not hint and "stage" in str(label).casefold() else None
            raise InputError(f"label column {label!r} is not in the EHR table"
                             + (f"; the table's {hint!r} looks like it{tnm_kind_note(label, hint)}" if hint else ""),
                             (f"if it is that column, pass --label {str(hint).strip()!r}; otherwise " if hint else "")
                             + (f"to derive the AJCC stage group (I / II / III-IV) from the table's T, N and M "
                                f"columns as {label!r}, add {derive}; otherwise " if derive else "")
                             + columns_text(ehr_df))
        labels = clean_labels(ehr_df[label].rename(label), label_groups)
        label_cells = ehr_df[[label]]
        if label_groups:        # a copy of the column as given (before the groups) leaks the grouped label too
            raw_labels = clean_missing(ehr_df[[label]])[label]
        ehr_df = ehr_df.drop(columns=[label])
    elif require_label:
        raise InputError("no label given", "pass --label COLUMN (or --stage-from T,N,M)")
    if labels is not None and len(labels) and not labels.notna().any():
        # no class at all: said as such, not as a label of "only one class ()" after the model's training / loading
        raise no_label_error(ehr, label_cells, stage_from, label_groups)
    drop = [c for c in drop_columns if c in ehr_df.columns]
    unknown_drop = [c for c in drop_columns if c not in table_columns]
    ehr_df = ehr_df.drop(columns=drop)
    id_like = []
    if check_leaks:     # training: a second patient-id column ('Record ID' 1..N beside 'Case ID') is no feature
        keep = {str(c).strip() for c in keep_columns}
        id_like = [c for c in ehr_df.columns if is_id_name(c) and str(c).strip() not in keep]
        if id_like:
            warnings.warn(InputNote(
                f"EHR table {ehr}: {agree(len(id_like), 'column', 'columns')} {', '.join(map(repr, id_like))} named "
                "as a patient id, beside the id column the patients are read by, "
                f"{agree(len(id_like), 'is', 'are')} left out of the features: an identifier is no model input "
                "(to use one deliberately: "
                f"--keep-column {str(id_like[0]).strip()!r}; to pick the id column: --id-column)"))
            ehr_df = ehr_df.drop(columns=id_like)
    used = ehr_df.columns if ehr_used is None else [c for c in ehr_df.columns if str(c) in set(map(str, ehr_used))]
    if check_leaks and labels is not None:      # training: a site / hospital column among the features
        sites = site_columns(ehr_df, used)
        # one the user keeps on purpose (--keep-column, matched as --drop is) is said once as kept on request
        kept_names = {str(c).strip() for c in keep_columns}
        kept = {c: v for c, v in sites.items() if str(c).strip() in kept_names}
        sites = {c: v for c, v in sites.items() if c not in kept}
        if sites:
            warnings.warn(InputNote(site_column_text(
                f"EHR table {ehr}", sites, "the stage",
                " ".join(f"--drop {str(c).strip()!r}" for c in sites) + "; docs/stage.md, 'site confounding', "
                "compares both; to keep one knowingly: --keep-column NAME")))
        if kept:
            warnings.warn(InputNote(site_kept_text(f"EHR table {ehr}", kept, "the stage")))
    if (text := never_smoker_note(pack_years, used)) is not None:   # a pack-years column in use
        warnings.warn(InputCheckNote(text))
    if quit_text is not None and (ehr_used is None or len(ehr_used)):     # the EHR is a model input
        warnings.warn(InputCheckNote(quit_text))
    if check_leaks and labels is not None:     # training (cv / train): the columns' types are decided here
        check_numeric_text(ehr_df, ehr, decimal_commas=True)
        check_label_leaks(ehr_df, labels, "the derived stage" if stage_from else f"the label {labels.name!r}",
                          raw=raw_labels, keep=keep_columns)

    report = {"dropped_columns": drop, "unknown_drop_columns": unknown_drop, "id_columns_left_out": id_like,
              # the tables given (--ehr / --rna / --ct): a branch without data is said as "no table given" where
              # none was, never as if the table's patients lacked it (FusionPipeline.fit)
              "given": [m for m, path in (("ehr", ehr), ("rna", rna), ("ct", ct)) if path]}
    if not check_leaks and ehr_used is not None:
        # validate / predict: the locked models' EHR columns - the only ones whose missing values are imputed, so the
        # only ones counted (recount; stage69: validate counted the quit year a new model does not use)
        report["ehr_model_columns"] = sorted({str(c) for c in ehr_used})
    if stage_from and stage0 == "exclude":
        report["stage0_excluded"] = len(stage0_ids)
    elif stage_from:
        report["stage0_ids"] = stage0_ids
    if labels is not None:
        unlabelled = sorted(labels.index[labels.isna()])
        ids = [i for i in name_order(ehr_df.index) if isinstance(labels.get(i), str)]
        report["unlabelled"] = unlabelled
        labels = labels.reindex(ids)
    else:
        ids = name_order(set(ehr_df.index) | set(ct_map) | set(rna_df.index if rna_df is not None else [])
                         | (set() if ehr else set(infinite)))
    if labels is not None:      # cv / train / validate: a used patient's infinite value is refused (docs/stage.md)
        used_bad = {p: t for p, t in infinite.items() if p in set(ids)}
        if used_bad:
            raise infinite_error(used_bad, rna_what)
    else:                       # predict: those patients get no stage (status), the others theirs
        report["rna_infinite"] = {p: t for p, t in infinite.items() if p in set(ids)}
        if report["rna_infinite"]:
            n = len(report["rna_infinite"])
            values = sum(len(t) for t in report["rna_infinite"].values())
            text = (f"{counted(n, 'patient')} of {rna_what} {agree(n, 'has', 'have')} "
                    f"{agree(values, 'an infinite value', 'infinite values')} and {agree(n, 'gets', 'get')} no stage")
            warnings.warn(InputNote(f"{text}: {_patients_text(report['rna_infinite'])} - {INFINITE_FIX}",
                                    without_ids=f"{text} - {INFINITE_FIX}"))
    warn_unused_infinite({p: t for p, t in infinite.items() if p not in set(ids)}, rna_what)
    # with labels the cohort is the labelled EHR patients; without, every patient of any modality
    base = set(ehr_df.index) if (labels is not None and len(ehr_df.index)) else set(ids)
    report["rna_not_joined"] = sorted(set(rna_df.index) - base) if rna_df is not None else []
    report["ct_not_joined"] = sorted(set(ct_map) - base)
    for what in ("rna", "ct"):
        lost = report[f"{what}_not_joined"]
        if lost:
            zeros = id_spelling_hint(lost, base)
            if zeros:
                report[f"{what}_zeros"] = zeros
            text = (f"{counted(len(lost), what.upper() + ' patient ID')} {agree(len(lost), 'does', 'do')} not join "
                    f"the EHR table and {agree(len(lost), 'is', 'are')} ignored")
            warnings.warn(InputNote(f"{text}: {lost[:20]}" + zeros, without_ids=text))
    if ehr and labels is None:      # predict: kept, but never silently predicted without their EHR row
        for what, have in (("rna", rna_df.index if rna_df is not None else []), ("ct", ct_map)):
            alone = sorted(set(have) - set(ehr_df.index))
            if alone:
                report[f"{what}_not_in_ehr"] = alone
                zeros = id_spelling_hint(alone, set(ehr_df.index))
                n = len(alone)
                head = f"{counted(n, what.upper() + ' patient ID')} {agree(n, 'is', 'are')} not in the EHR table {ehr}"
                tail = (f" - predicted without EHR, from what {agree(n, 'it has', 'they have')} where the model uses "
                        f"it; check {agree(n, 'the id', 'the ids')}")
                warnings.warn(InputNote(f"{head}: {alone[:20]}{' ...' if n > 20 else ''}{tail}" + zeros,
                                        without_ids=head + tail))
    if ehr and ct and not ct_map.keys() & base and ct_map:
        raise InputError(f"no CT manifest ID joins the EHR IDs (CT: {sorted(ct_map)[:5]}, EHR: {sorted(base)[:5]})"
                         + id_spelling_hint(ct_map, base),
                         "use the same patient IDs in the CT manifest and the EHR table")
    if rna_df is not None:
        from lungai.fusion.preprocess import looks_standardised
        # decided on the whole matrix as given: a training fold of a z-scored matrix has unequal variances
        report["rna_standardised"] = looks_standardised(rna_df)
        have = set(rna_df.index)
        rna_df = rna_df.loc[[i for i in ids if i in have], name_order(rna_df.columns)]
        if check_leaks and labels is not None:      # training (cv / train): the scale the model will learn
            warn_linear_scale(rna_df, rna_what, report)
    # patients, EHR columns and genes in one order (name_order: by text), whatever the order of the files' rows and
    # columns: CV folds, batch order and the features' order follow it, so a shuffled copy gives the same model
    ehr_df = ehr_df.reindex(index=ids, columns=name_order(ehr_df.columns))
    return recount(Cohort(ids, ehr_df, rna_df, {i: ct_map[i] for i in ids if i in ct_map}, labels, report))


def no_label_error(ehr, cells: pd.DataFrame, stage_from, label_groups) -> InputError:
    """The refusal of an EHR table none of whose patients has a label (``stage cv / train / validate``): the label's
    columns ``cells`` (the T / N / M of ``stage_from``, or the ``--label`` column), their commonest values, and how to
    give labels.  QA docs71: NSCLC-Radiogenomics' 49 AMC patients, whose T / N / M are all 'Not Collected', were
    refused by ``stage validate`` as "the external cohort's label has only one class ()" (``stage cv``: "... ()
    among 0 labelled patients", fix "choose a label column with at least two classes") - after the imports, the
    model's loading and the tables' reading (48 s on a shared machine)."""
    from collections import Counter

    n = len(cells)
    # the values as read: a missing-value word ('Not Collected', 'N/A') or an empty cell is "missing"
    rows = Counter(" / ".join("missing" if not isinstance(v, str) and pd.isna(v) else repr(str(v).strip()) for v in row)
                   for row in cells.itertuples(index=False))
    seen = ", ".join(f"{v} for {k}" for v, k in rows.most_common(3)) + (" ..." if len(rows) > 3 else "")
    if stage_from:
        what = (f"no stage group can be derived for any of its {counted(n, 'patient')} from their T / N / M "
                f"({', '.join(map(repr, map(str, cells.columns)))}: {seen}); a group needs a known T and N (not "
                "missing, nor TX / NX), and M0 for stage I and II")
        fix = ("give a table whose patients have their T, N and M recorded, or pass --stage-from the table's T, N "
               "and M columns, or --label a column of their stage")
    else:
        column = str(cells.columns[0])
        what = (f"its label column {column!r} is empty or a missing-value word for all {counted(n, 'patient')} "
                f"({seen})" + (" or in a --label-groups group named as missing" if label_groups else ""))
        fix = ("pass --label a column that holds the patients' stage (or --stage-from T,N,M to derive it from their "
               "T, N and M), or give a table of labelled patients")
    return InputError(f"no patient of EHR table {ehr} has a label: {what}", fix)


def warn_linear_scale(rna: pd.DataFrame, what: str, report: dict) -> None:
    """Say (a warning; ``report["rna_linear_scale"]``: its largest value) that the training RNA matrix looks not
    log-transformed (:func:`lungai.fusion.preprocess.linear_scale`: raw counts or TPM) - trained on as given, but
    top-k by variance then keeps the most highly expressed genes; before, nothing was said."""
    from lungai.fusion.preprocess import LINEAR_SCALE_MAX, linear_scale

    top = linear_scale(rna)
    if top is None:
        return
    report["rna_linear_scale"] = top
    warnings.warn(InputNote(f"{what} looks not log-transformed (raw counts or TPM?): no value is negative and the "
                            f"largest is {top:g} (log2 expression stays below ~25; the limit here {LINEAR_SCALE_MAX:g}) "
                            "- top-k by variance then keeps the most highly expressed genes and a few very large "
                            "values dominate each gene's z-scores; give log expression (log2(x + 1) of counts or "
                            "TPM), as usual for RNA-seq, and the same scale at predict"))


def recount(cohort: Cohort) -> Cohort:
    """Set the cohort report's counts (patients, with each modality, per class) to the cohort's patients (after
    :func:`load_cohort`, or a :meth:`Cohort.subset` that is the cohort from then on)."""
    report, av = cohort.report, cohort.availability()
    report["n_patients"] = len(cohort.ids)
    report["with"] = {m: int(av[m].sum()) for m in MODALITIES}
    report["all_three"] = int(av.all(axis=1).sum())
    if cohort.rna is not None:
        # missing values of the cohort's profiles (a gene not measured for a patient): imputed as the gene's training
        # mean; counted over the cohort's patients (before, validate counted the training patients it leaves out)
        gaps = cohort.rna.loc[[i for i in cohort.ids if i in cohort.rna.index]].isna()
        report["rna_missing_values"] = {"values": int(gaps.to_numpy().sum()), "of": int(gaps.size),
                                        "patients": int(gaps.any(axis=1).sum())}
    # missing values of the EHR columns (empty cells, 'Not Collected', 'N/A', 'Unknown' ...: MISSING_WORDS) over the
    # patients with EHR data, per column with any value (a column without any is left out of the features, said so):
    # imputed in each training fold (EHREncoder), said by availability_text (QA predict66: only the RNA's were said)
    rows = cohort.ehr.reindex(cohort.ids)[av["ehr"].to_numpy()]
    valued = [c for c in rows.columns if rows[c].notna().any()]
    if report.get("ehr_model_columns") is not None:
        # validate / predict: the locked models' columns found in the table (as written, else case / spaces aside:
        # read as the model's), each counted - one empty for every patient is imputed for every patient; the model's
        # columns the table lacks are said by their own warning (lungai.fusion.api.absent_ehr_text)
        model_columns = set(report["ehr_model_columns"])
        keys = {name_key(c) for c in model_columns}
        valued = [c for c in rows.columns if str(c) in model_columns or name_key(c) in keys]
    gaps = rows[valued].isna()
    counts = sorted(((str(c), int(n)) for c, n in gaps.sum().items() if n), key=lambda cn: (-cn[1], cn[0]))
    report["ehr_missing_values"] = {"columns": dict(counts), "patients": int(gaps.any(axis=1).sum()),
                                    "of": int(len(rows)), "n_columns": len(valued)}
    if cohort.labels is not None:
        labels = cohort.labels.reindex(cohort.ids)
        report["class_counts"] = {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}
        if "stage0_ids" in report:      # --stage-from: Tis N0 M0 (stage 0) patients counted as class I
            stage0_ids = set(report["stage0_ids"])
            report["stage0_in_I"] = sum(1 for i in cohort.ids if i in stage0_ids)
    return cohort


LEAK_SHARE = 0.95     # an EHR column that gives the label for at least this share of the patients is a copy of it
LEAK_KAPPA = 0.8      # ... and beyond chance (Cohen's kappa): two rare yes/no columns agree mostly by chance
LEAK_MIN_N = 50       # below this many patients with both, only an exact copy is refused; a near copy is warned about


def _leak_norm(v) -> str:
    """A value as the leak check compares it: stages as :func:`~lungai.fusion.labels.stage_spelling` spells them
    ("Stage IIIA" = "3A" = "IIIA"; "Stage III-IV" = "III-IV"), whole numbers as integers ("1.0" = "1"), other text
    case- and space-insensitively ("Yes" = "yes")."""
    from lungai.fusion.labels import stage_spelling

    text = " ".join(str(v).split())
    try:
        x = float(text)
        if np.isfinite(x) and x.is_integer():
            return str(int(x))
    except ValueError:
        pass
    return stage_spelling(v) or re.sub(r"^STAGE\s*", "", text.upper())


def label_copies(ehr: pd.DataFrame, labels: pd.Series) -> dict:
    """{column: share} of the label's copies among the EHR columns (:func:`label_copy_counts`)."""
    return {c: v[0] for c, v in label_copy_counts(ehr, labels).items()}


_NO_GUESS = "\x00no guess"


def _finer_guess(mine: pd.Series, theirs: pd.Series) -> pd.Series:
    """For a column with more distinct values than the label (a finer copy: sub-stages IA / IB / IIA ... of the
    stage group I / II / III-IV): each patient's label guessed, leave-one-out, from the *other* patients with the
    same column value (their most frequent label; no guess for a value the patient alone has, or a tie) - so a
    column of (nearly) one value per patient (dates, ids, ages in a small cohort) guesses nothing, however pure its
    values are by construction.  In numpy: the counts per (value, label) less the patient's own one, their largest
    and whether it is the only one (a gene-like column of 300 patients: ~0.2 ms, was ~40 ms row by row)."""
    value_codes, values = pd.factorize(mine)
    class_codes, classes = pd.factorize(theirs)
    counts = np.zeros((len(values), len(classes)), dtype=np.int64)
    np.add.at(counts, (value_codes, class_codes), 1)
    others = counts[value_codes]                               # per patient: the counts of its value ...
    others[np.arange(len(mine)), class_codes] -= 1             # ... less the patient itself
    top = others.max(axis=1, initial=0)
    sure = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)   # a single most frequent label
    guess = np.full(len(mine), _NO_GUESS, dtype=object)
    guess[sure] = np.asarray(classes, dtype=object)[others[sure].argmax(axis=1)]
    return pd.Series(guess, index=mine.index)


def label_copy_counts(ehr: pd.DataFrame, labels: pd.Series) -> dict:
    """{column: (share, patients compared, finer)} of the EHR columns that give the label away for at least
    :data:`LEAK_SHARE` of the patients having both - beyond chance (Cohen's kappa >= :data:`LEAK_KAPPA`) and for at
    least 5 patients: values equal to the label (compared as :func:`_leak_norm` writes them), or a column that
    determines it - each of its values maps to one label value (its most frequent: 'dead_num' 1/0 for
    'Dead'/'Alive'; 'Yes'/'No' for 'treated'/'untreated') when it has no more distinct values than the label; or
    (``finer`` True) a column with more distinct values each of which falls in one label class (sub-stages IA / IB
    / IIA ... of I / II / III-IV), judged leave-one-out (:func:`_finer_guess`).  The share is the patients whose
    label is the mapped (guessed) one."""
    from sklearn.metrics import cohen_kappa_score

    lab = labels.dropna().map(_leak_norm)
    out = {}
    for col in ehr.columns:
        s = ehr[col].reindex(lab.index).dropna()
        if len(s) < max(5, len(lab) // 2):
            continue
        mine, theirs = s.map(_leak_norm), lab.reindex(s.index)
        if theirs.nunique() < 2:
            continue
        finer = mine.nunique() > theirs.nunique()
        if finer:                                    # each value -> the label of the others with it (leave-one-out)
            mine = _finer_guess(mine, theirs)
        else:                                        # each column value -> its most frequent label value
            lookup = pd.crosstab(mine, theirs).idxmax(axis=1)
            mapped = mine.map(lookup)
            if float((mapped == theirs).mean()) > float((mine == theirs).mean()):
                mine = mapped
        share = float((mine == theirs).mean())
        if share >= LEAK_SHARE and cohen_kappa_score(mine, theirs) >= LEAK_KAPPA:
            out[col] = (share, len(s), finer)
    return out


def check_label_leaks(ehr: pd.DataFrame, labels: pd.Series, what: str = "the label",
                      raw: Optional[pd.Series] = None, keep: Sequence[str] = ()) -> None:
    """Refuse EHR columns that are copies of the label (:func:`label_copies`) - of ``labels``, or of ``raw`` (the
    label column before --label-groups) - naming them and the --drop that leaves them out: as features they give the
    answer away (CV macro-F1 / AUC near 1.0).  A near copy (not every patient) among fewer than :data:`LEAK_MIN_N`
    patients may be coincidence: it is warned about, not refused - so is a finer copy (more values than the label,
    each in one class) among fewer than :data:`LEAK_MIN_N`, even for every patient: a few patients per value agree
    with one class by chance; ``keep`` (--keep-column) columns are only warned about."""
    found = {}
    for lab in ([labels] if raw is None else [labels, raw]):
        for c, (share, n, finer) in label_copy_counts(ehr, lab).items():
            if c not in found or share > found[c][0]:
                found[c] = (share, n, finer)
    if not found:
        return
    keep = {str(k).strip() for k in keep}
    sure = {c: v for c, v in found.items()
            if ((v[0] >= 1.0 and not v[2]) or v[1] >= LEAK_MIN_N) and str(c).strip() not in keep}
    maybe = {c: v for c, v in found.items() if c not in sure}
    text = lambda d: ", ".join(f"{c!r} ({'each of its values in one class: ' if v[2] else ''}"   # noqa: E731
                               f"{100 * v[0]:.0f} % of {v[1]} patients)" for c, v in d.items())
    if maybe:
        warnings.warn(InputNote(
            f"EHR {agree(len(maybe), 'column', 'columns')} nearly equal to {what}: {text(maybe)}; kept as "
            f"{agree(len(maybe), 'a feature', 'features')} ("
            + ("--keep-column" if all(str(c).strip() in keep for c in maybe) else
               (f"fewer than {LEAK_MIN_N} patients: may be coincidence" if any(v[2] for v in maybe.values()) else
                f"not every patient, and fewer than {LEAK_MIN_N}: may be coincidence"))
            + f"); if {agree(len(maybe), 'it', 'one')} is a copy of the label, leave it out: "
            + " ".join(f"--drop {str(c).strip()!r}" for c in maybe)))
    if sure:
        raise InputError(f"EHR {agree(len(sure), 'column', 'columns')} equal to {what}: {text(sure)}; as "
                         f"{agree(len(sure), 'a feature it', 'features they')} would leak the answer (scores near 1.0)",
                         f"leave {agree(len(sure), 'it', 'them')} out: "
                         + " ".join(f"--drop {str(c).strip()!r}" for c in sure)
                         + f" (or keep {agree(len(sure), 'it', 'one')} deliberately: --keep-column NAME)")


EHR_IMPUTED = ("imputed from the training patients (of each CV fold; a locked model's own): a numeric column with "
               "its training median (plus a missing indicator), a categorical one as a level 'missing' of its own")
# (lungai.fusion.preprocess.EHREncoder); a smoker's missing pack-years (lungai.io.impute.SmokersMedianImputer):
PACK_YEARS_IMPUTED = ("the median of the training patients' pack-years above 0 - the smokers', not one counting the "
                      "never-smokers' 0")
QUIT_YEARS_IMPUTED = "the median of the training values above 0 - the former smokers'"
SHOWN_COLUMNS = 10    # columns named in ehr_missing_text, the most missing first


def ehr_missing_text(report: dict, modalities=None) -> str:
    """The EHR table's missing values of a cohort report (``ehr_missing_values``, :func:`recount`) in words: the
    columns with any, the most missing first, with their counts and how they are imputed; '' when none (or not
    recorded: a model of an earlier lungai), or when ``modalities`` (the models' inputs, None: all) leave the EHR out
    - nothing of it is imputed then (QA predictfollow66: said with --modalities rna)."""
    if modalities is not None and "ehr" not in modalities:
        return ""
    gaps = report.get("ehr_missing_values") or {}
    columns = gaps.get("columns") or {}
    if not columns:
        return ""
    named = ", ".join(f"{c} {n}" for c, n in list(columns.items())[:SHOWN_COLUMNS])
    more = len(columns) - SHOWN_COLUMNS
    from lungai.io.tables import is_pack_years_name

    packs = [c for c in columns if is_pack_years_name(c)]
    return (f"EHR: missing values in {len(columns)} of {counted(gaps.get('n_columns', len(columns)), 'column')} "
            f"({gaps.get('patients')} of {counted(gaps.get('of'), 'patient')}): {named}"
            + (f" and {more} more" if more > 0 else "") + f" - {EHR_IMPUTED}"
            + (f"; a missing {' / '.join(map(repr, packs))} (a smoker's: a never-smoker's reads 0) with "
               f"{PACK_YEARS_IMPUTED}" if packs else "")
            + (f"; a missing {QUIT_YEARS!r} (a former smoker's: a current or never-smoker's is 0) with "
               f"{QUIT_YEARS_IMPUTED}" if QUIT_YEARS in columns else ""))


def availability_text(cohort: Cohort, modalities=None) -> str:
    """The cohort in words: patients, inputs, classes, what is left out or imputed.  ``modalities``: the inputs the
    models use (None: all) - the EHR's missing values are said only when the EHR is one (:func:`ehr_missing_text`)."""
    r = cohort.report
    lines = [f"{r['n_patients']} patients; with EHR {r['with']['ehr']}, RNA {r['with']['rna']}, "
             f"CT {r['with']['ct']}; all three {r['all_three']}"]
    if r.get("class_counts"):
        lines.append("classes: " + ", ".join(
            f"{k} {v}" + (f" ({r['stage0_in_I']} of them stage 0, Tis N0 M0)" if k == "I" and r.get("stage0_in_I")
                          else "") for k, v in r["class_counts"].items()))
    if r.get("unlabelled"):
        lines.append(f"{counted(len(r['unlabelled']), 'patient')} without a label left out"
                     + (f" ({r['stage0_excluded']} of them stage 0, Tis N0 M0: --stage0 exclude)"
                        if r.get("stage0_excluded") else ""))
    for what in ("rna", "ct"):
        if r.get(f"{what}_not_joined"):
            ids = r[f"{what}_not_joined"]
            lines.append(f"{counted(len(ids), what.upper() + ' ID')} not in the EHR table: {', '.join(ids[:20])}"
                         + (" ..." if len(ids) > 20 else "") + r.get(f"{what}_zeros", ""))
    gaps = r.get("rna_missing_values") or {}
    if gaps.get("values"):
        lines.append(f"RNA: {counted(gaps['values'], 'missing value')} in {counted(gaps['patients'], 'patient')} "
                     f"({100 * gaps['values'] / gaps['of']:.1f} % of {gaps['of']}), each imputed as its gene's "
                     "training mean (z = 0)")
    if ehr_missing_text(r, modalities):
        lines.append(ehr_missing_text(r, modalities))
    if r.get("dropped_columns"):
        lines.append(f"EHR columns left out: {', '.join(r['dropped_columns'])}")
    if r.get("unknown_drop_columns"):
        lines.append(f"note: --drop columns not found: {', '.join(r['unknown_drop_columns'])}")
    return "\n".join(lines)
