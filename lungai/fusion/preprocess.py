"""Per-fold preprocessing: EHR encoding and top-k variance gene selection.

Both are fitted on the training patients of a fold only, then applied to its test patients.

- :class:`EHREncoder` - numeric columns: median imputation (a smoker's missing pack-years: the median of the
  training smokers' pack-years, :class:`lungai.io.impute.SmokersMedianImputer`) + missing indicator + standard scaling;
  categorical columns: one-hot with "missing" as its own level (scikit-learn ColumnTransformer,
  saved with skops).  Date-like / free-text columns (too many levels) are left out and reported.
- :class:`GeneSelector` - top-k variance genes in the training fold, standardised with the training
  mean/SD; a missing value (or a gene missing from a new cohort) becomes 0 = the training mean.
  On a per-gene standardised matrix (every gene's variance the same, e.g. a z-score file) the
  variance ranks nothing: the selection then uses raw variances the user supplies
  (``--gene-variances FILE``), or else keeps **all** genes and says so (never name order / noise).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from lungai.errors import InputError, InputNote, PatientsText, agree, counted
from lungai.io.tables import check_thousands, match_headers, name_key

MAX_LEVELS = 20
MISSING_LEVEL = "__missing__"
NUMERIC_SHARE = 0.9     # a column with at least this share of numbers (among its values) is numeric


def _numeric_share(s: pd.Series) -> float:
    present = s.dropna()
    if present.empty:
        return 0.0
    return float(pd.to_numeric(present, errors="coerce").notna().mean())


def left_out_text(left_out: dict) -> str:
    """:attr:`EHREncoder.left_out` in words, for the console, comparison.md and model_card.md ('' when none)."""
    if not left_out:
        return ""
    return "EHR columns left out of the features: " + "; ".join(f"{c!r} ({why})" for c, why in left_out.items())


def _number(text) -> Optional[float]:
    """``text`` as a number ('1', '1.0', ' 2 ' -> 1.0, 1.0, 2.0), None when it is not one."""
    try:
        x = float(str(text).strip())
    except ValueError:
        return None
    return x if np.isfinite(x) else None


NUMERIC_TEXT_FIX = ("correct the value in the EHR table (a number, with a decimal point), or leave the cell empty "
                    "to have it imputed")


def numeric_text_problem(items) -> str:
    """``EHR 'Age' = '12,8' is not a number (type 12.8: a decimal point, not a comma)``: a patient's text values in the
    model's numeric columns (``items``: [(column, value)], :meth:`EHREncoder.numeric_text`)."""
    from lungai.io.tables import number_hint

    return "; ".join(f"EHR {c!r} = {v!r} is not a number{number_hint(v)}" for c, v in items)


def numeric_text_status(items) -> str:
    """The ``status`` of a patient given no stage for text in a numeric EHR column of the model (``items``)."""
    return f"not computed: {numeric_text_problem(items)} - {NUMERIC_TEXT_FIX}"


class UnseenLevelWarning(InputNote):
    """An EHR value the encoder cannot use as written: not a level it was trained with (:meth:`EHREncoder.match_levels`),
    or text in one of its numeric columns (:meth:`EHREncoder._frame`); ``by_patient``: {patient id: [what was done
    with its value]} for the per-patient output (the predictions' ``notes``)."""

    def __init__(self, message: str, by_patient: Optional[dict] = None):
        super().__init__(message)
        self.by_patient = by_patient or {}


class EHREncoder:
    def __init__(self, max_levels: int = MAX_LEVELS):
        self.max_levels = max_levels
        self.numeric: list = []
        self.categorical: list = []
        self.left_out: dict = {}
        self.transformer = None

    def match_columns(self, df: pd.DataFrame) -> dict:
        """{table header: the model's EHR column} for each model column absent from ``df`` under its own name but
        present with another case / spacing ('Histology' or 'HISTOLOGY' for the model's 'Histology '); two headers
        matching one model column are refused, naming them (:func:`lungai.io.tables.match_headers`, the rule of
        ``lungai rp`` too)."""
        return match_headers(self.numeric + self.categorical, df.columns, "the EHR table")

    def numeric_text(self, df: pd.DataFrame) -> dict:
        """{patient id: [(column, value as written)]}: the values of ``df`` in the model's numeric columns that are
        text, not numbers ('12,8' with a decimal comma, '7O'); missing cells are not text.  ``lungai stage predict``
        and the Slicer panel give such a patient no stage (:func:`numeric_text_status`) - a table of a few patients
        has too few values for the loader's column rule (:func:`lungai.fusion.data.check_numeric_text`)."""
        found: dict = {}
        for c in self.numeric:
            if c not in df:
                continue
            text = df[c].notna() & pd.to_numeric(df[c], errors="coerce").isna()
            for pid, v in df[c][text].items():
                found.setdefault(str(pid), []).append((c, v))
        return found

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=df.index)
        for c in self.numeric:
            out[c] = pd.to_numeric(df[c], errors="coerce") if c in df else np.nan
            if c in df:         # text in a numeric column of a new table (its own table had it categorical);
                text = df[c].notna() & out[c].isna()    # predict refuses it first (numeric_text): here CV / validate
                if text.any():  # said per patient too (UnseenLevelWarning.by_patient): the predictions' notes
                    what = "is text in a numeric column of the model: treated as missing (imputed)"
                    warnings.warn(UnseenLevelWarning(
                        f"EHR column {c!r} is numeric in the model, but has text: "
                        + ", ".join(f"{pid} {v!r}" for pid, v in df[c][text].head(10).items())
                        + " - treated as missing (imputed)",
                        {str(pid): [f"EHR {c!r} = {v!r} {what}"] for pid, v in df[c][text].items()}))
        if self.numeric:        # an infinite number (Age inf) is refused, naming it: sklearn's "contains infinity"
            from lungai.fusion.data import check_finite_values

            check_finite_values(out[self.numeric], "the EHR table")
        for c in self.categorical:
            col = df[c] if c in df else pd.Series(np.nan, index=df.index)
            out[c] = col.map(lambda v: MISSING_LEVEL if v is None or (isinstance(v, float) and np.isnan(v))
                             else str(v)).astype(object)
        return out

    def fit(self, df: pd.DataFrame) -> "EHREncoder":
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        from lungai.io.impute import SmokersMedianImputer

        self.numeric, self.categorical, self.left_out = [], [], {}
        for c in df.columns:
            s = df[c]
            if s.notna().sum() == 0:
                self.left_out[str(c)] = "no value in the training patients"
            elif _numeric_share(s) >= NUMERIC_SHARE:
                self.numeric.append(str(c))
            elif s.dropna().astype(str).nunique() > self.max_levels:
                self.left_out[str(c)] = f"more than {self.max_levels} distinct values (date or free text?)"
            else:
                self.categorical.append(str(c))
        parts = []
        if self.numeric:
            # a smoker's missing pack-years: the training smokers' median, not one counting never-smokers' 0
            parts.append(("num", make_pipeline(SmokersMedianImputer(strategy="median", add_indicator=True),
                                               StandardScaler()), self.numeric))
        if self.categorical:
            parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
                          self.categorical))
        if parts:
            self.transformer = ColumnTransformer(parts, sparse_threshold=0.0).fit(self._frame(df))
        return self

    @property
    def n_features(self) -> int:
        if self.transformer is None:
            return 0
        return len(self.transformer.get_feature_names_out())

    def feature_names(self) -> list:
        return [] if self.transformer is None else [str(n) for n in self.transformer.get_feature_names_out()]

    def levels(self) -> dict:
        """{categorical column: its trained levels (text; :data:`MISSING_LEVEL` among them when the training
        patients had a missing value)}."""
        if self.transformer is None or not self.categorical:
            return {}
        cats = self.transformer.named_transformers_["cat"].categories_
        return {c: [str(v) for v in levels] for c, levels in zip(self.categorical, cats)}

    def missing_word_levels(self) -> dict:
        """{categorical column: its trained levels that are missing-value words} ('.', 'Not known', 'not recorded' -
        :data:`lungai.io.tables.MISSING_WORDS`): only a model trained by an earlier lungai, which read these words as
        text, has them; a table's such word is read as missing now (:func:`lungai.fusion.labels.clean_missing`), so
        that level is never given again."""
        from lungai.io.tables import is_missing_cell

        found = {}
        for col, levels in self.levels().items():
            words = [v for v in levels if v != MISSING_LEVEL and is_missing_cell(v, categorical=True)]
            if words:
                found[col] = words
        return found

    def warn_missing_word_levels(self) -> None:
        """Say (once per use, an :class:`~lungai.errors.InputNote`) which of the model's levels are missing-value words
        (:meth:`missing_word_levels`): its patients' such values are missing now, not that level."""
        found = self.missing_word_levels()
        if found:
            n = sum(len(words) for words in found.values())
            warnings.warn(InputNote(
                "the model was trained by an earlier lungai that read missing-value words as text: its EHR "
                + agree(n, "level ", "levels ")
                + "; ".join(f"{', '.join(map(repr, words))} of {col!r}" for col, words in found.items())
                + f" {agree(n, 'is', 'are')} read as missing now (lungai.io.tables.MISSING_WORDS, as lungai rp reads "
                "them), so a patient with such a value may get another probability than before - retrain the model on "
                "the table"))

    def match_levels(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (:meth:`_frame`) with each categorical value that is not a trained level (:meth:`levels`)
        replaced - never silently one-hot encoded as all zeros (neither a level nor missing): a value differing from
        a trained level only by case / spaces ('current', ' Current ') or a number written differently ('1.0' of a table
        read as floats, trained '1') is read as that level; any other unseen value
        ('Heavy') is treated as missing.  Each column with such values gets one :class:`UnseenLevelWarning` naming
        them, the trained levels and what was done, with the patients concerned."""
        frame = frame.copy()
        self.warn_missing_word_levels()
        for col, levels in self.levels().items():
            known = set(levels)
            by_key = {name_key(v): v for v in levels if v != MISSING_LEVEL}
            s = frame[col]
            unseen = sorted({v for v in s if v not in known and v != MISSING_LEVEL})
            if not unseen:
                continue
            by_number = {}          # '1.0' of a table read as floats is the trained level '1'
            for v in levels:
                if v != MISSING_LEVEL and _number(v) is not None:
                    by_number.setdefault(_number(v), v)
            mapped, how = {}, {}
            for v in unseen:
                to = by_key.get(name_key(v))
                how[v] = "case / spaces differ"
                if to is None and _number(v) is not None and _number(v) in by_number:
                    to, how[v] = by_number[_number(v)], "the same number written differently"
                mapped[v] = MISSING_LEVEL if to is None else to
            frame[col] = s.map(lambda v: mapped.get(v, v))
            named = [v for v in levels if v != MISSING_LEVEL]
            trained = ", ".join(map(repr, named[:MAX_LEVELS])) + (" ..." if len(named) > MAX_LEVELS else "")
            # one value in training (NSCLC-Radiogenomics' 'Tumor Location (choice=L Lingula)': 'Unchecked' for every
            # training patient): the model learnt nothing of the column - said, and the value is not to be "corrected"
            # (QA stagefollow71: "(no training patient lacked it: no level is set)" alone, and that fix)
            constant = len(named) == 1
            parts, by_patient = [], {}
            for v, to in mapped.items():
                pids = [str(p) for p in s.index[s == v]]
                what = (f"read as the trained level {to!r} ({how[v]})" if to != MISSING_LEVEL
                        else "not a trained level: treated as missing" + (
                            "" if MISSING_LEVEL in known else " (no training patient lacked it: no level is set)"))
                if to == MISSING_LEVEL and constant:
                    what = ("not a trained level: " + ("treated as missing" if MISSING_LEVEL in known else
                                                       "no level is set") +
                            f" - the column was constant in training (every training patient"
                            f"{' with a value' if MISSING_LEVEL in known else ''} had {named[0]!r}), so the model "
                            f"learnt nothing from it and cannot weigh {v!r}")
                parts.append(f"{v!r} ({counted(len(pids), 'patient')}) {what}")
                for pid in pids:
                    by_patient.setdefault(pid, []).append(f"EHR {col!r} = {v!r} {what}")
            more = f"; and {counted(len(parts) - 10, 'more value', 'more values')}" if len(parts) > 10 else ""
            fix = ("" if all(to != MISSING_LEVEL for to in mapped.values()) else
                   f" - to have it weighed, retrain the model on a cohort whose training patients have other values "
                   f"than {named[0]!r} in {col!r}; to leave the column out, retrain with --drop {col!r}"
                   if constant else
                   " - correct the value to one of the trained levels, or retrain the model on a table with it")
            warnings.warn(UnseenLevelWarning(f"EHR column {col!r}: " + "; ".join(parts[:10]) + more
                                             + f" (trained levels: {trained}){fix}", by_patient))
        return frame

    def old_smoking_imputation(self) -> dict:
        """{column: (the value it imputes, why that is wrong)} of the model's numeric smoking columns imputed so that
        a patient gets a value he cannot have: a pack-years column of a model trained by an earlier lungai, whose
        median imputer counted the never-smokers' 0 (a plain ``SimpleImputer``, not
        :class:`lungai.io.impute.SmokersMedianImputer`), and a quit-year column (:func:`lungai.io.tables.
        is_quit_year_name`: a model trained before the years since quitting replaced it, or with --keep-column),
        whose median is given to current and never-smokers too; {} for none."""
        from lungai.io.tables import QUIT_YEARS, is_pack_years_name, is_quit_year_name

        if self.transformer is None or not self.numeric:
            return {}
        imputer = self.transformer.named_transformers_["num"][0]
        old = type(imputer).__name__ != "SmokersMedianImputer"
        found = {}
        for c, v in zip(self.numeric, imputer.statistics_):
            if old and is_pack_years_name(c):
                found[c] = (float(v), "the median of all the model's training patients, never-smokers' 0 included (a "
                                      "model trained by an earlier lungai; retrain it with lungai stage train to have "
                                      "a smoker's missing pack-years imputed with the smokers' median)")
            elif is_quit_year_name(c):
                found[c] = (float(v), "the training median, also for a current smoker, who never quit (retrain the "
                                      f"model with lungai stage train: it uses {QUIT_YEARS!r} instead, 0 for a current "
                                      "smoker)")
        return found

    def warn_old_smoking_imputation(self, frame: pd.DataFrame) -> None:
        """Say (an :class:`UnseenLevelWarning`, with the patients: the predictions' notes) which of ``frame``'s patients
        (:meth:`_frame`) get such a value (:meth:`old_smoking_imputation`) - with the fix."""
        for col, (value, why) in self.old_smoking_imputation().items():
            gap = frame[col].isna()
            if not gap.any():
                continue
            pids = [str(p) for p in frame.index[gap]]
            what = f"EHR {col!r} missing: imputed with {value:g}, {why}"
            head = f"{counted(len(pids), 'patient')} without {col!r}"
            text = PatientsText(f"{head} ({', '.join(pids[:10])}{' ...' if len(pids) > 10 else ''}): {what}",
                                f"{head}: {what}")
            warnings.warn(UnseenLevelWarning(text, {pid: [what] for pid in pids}))

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        if self.transformer is None:
            return np.zeros((len(df), 0), np.float32)
        frame = self.match_levels(self._frame(df))   # their warnings (text in a numeric column, unseen levels)
        self.warn_old_smoking_imputation(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # sklearn's unknown-category warning: handled by match_levels
            return np.asarray(self.transformer.transform(frame), dtype=np.float32)

    def to_json(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "left_out": self.left_out,
                "max_levels": self.max_levels}

    @classmethod
    def from_json(cls, meta: dict, transformer) -> "EHREncoder":
        enc = cls(meta.get("max_levels", MAX_LEVELS))
        enc.numeric, enc.categorical, enc.left_out = meta["numeric"], meta["categorical"], meta["left_out"]
        enc.transformer = transformer
        return enc


STANDARDISED_TOL = 1e-3     # relative spread of the per-gene variances below which a matrix is "standardised"


def looks_standardised(rna: Optional[pd.DataFrame], tol: float = STANDARDISED_TOL) -> bool:
    """True when every gene has the same variance (within ``tol``, relative): a per-gene standardised
    (z-scored) matrix, on which "top-k by variance" is meaningless."""
    if rna is None or rna.shape[0] < 3 or rna.shape[1] < 2:
        return False
    var = rna.var(axis=0, skipna=True).dropna()
    var = var[var > 0]
    if len(var) < 2:
        return False
    return float(var.max() - var.min()) <= tol * float(var.mean())


# an expression value above this in a matrix without a negative value: not on a log scale (raw counts, TPM / FPKM,
# microarray intensities reach 10^3-10^6; log2 expression stays below ~25, per-gene z-scores within ~±10)
LINEAR_SCALE_MAX = 1000.0


def linear_scale(rna: Optional[pd.DataFrame]) -> Optional[float]:
    """The largest value of an RNA matrix that looks not log-transformed - no negative value and one above
    :data:`LINEAR_SCALE_MAX` (raw counts, TPM) - else None.  Top-k by variance on such a matrix keeps the most
    highly expressed genes, and a few very large values dominate each gene's z-scores."""
    if rna is None or not rna.size:
        return None
    values = rna.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not values.size or values.min() < 0 or values.max() <= LINEAR_SCALE_MAX:
        return None
    return float(values.max())


_VARIANCES: dict = {}

# the delimiters a table without a fixed one is sniffed among: never a letter or digit of the values (pandas'
# sep=None lets csv.Sniffer pick any character: "TP53\nEGFR" came out as two columns split at 'P', "11\n22" at '1')
SNIFFED_DELIMITERS = ",;\t|"


def table_separator(path) -> str:
    """The delimiter of a small table read without a fixed one (:func:`read_gene_variances`): the one of
    :data:`SNIFFED_DELIMITERS` that splits its first lines alike (';' where ';' and ',' both do), else - a one-column file, or no clear sniff - the
    one of its extension (tab for .tsv / .txt, else comma: :func:`lungai.fusion.data._separator`)."""
    import csv

    from lungai.fusion.data import _separator

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        sample = f.read(65536)
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        return _separator(path)
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if sep == "," and lines and len({line.count(";") for line in lines}) == 1 and ";" in lines[0]:
        # every line split alike by ';' too: a decimal-comma spreadsheet's file without a header ('TP53;0,5') - the
        # sniffer prefers ',' and made 'TP53;0' a gene of variance 5; no gene name holds a ';'
        return ";"
    return sep


VARIANCES_FIX = "give a CSV with two columns: gene, raw variance"


def _variance_header(gene: str, value: str) -> bool:
    """Whether the first row (gene, value) of a gene-variances file is a header: no gene name (pandas' ',0' of a
    Series written with its index), or a word as value ('variance') - not a number, not a missing-value word
    (a gene with 'n/a') and not a spreadsheet error ('#DIV/0!'), which are values of a gene."""
    from lungai.io.tables import is_missing_cell

    if not gene:
        return True
    try:
        float(value.replace(",", "."))
        return False
    except ValueError:
        return not is_missing_cell(value) and not value.startswith("#")


def read_gene_variances(path) -> pd.Series:
    """Raw per-gene variances from a two-column table (gene, variance; a header row is optional).  Every value is
    a variance or said: an empty cell or a missing-value word ('n/a', 'NA', '-': :func:`lungai.io.tables.is_missing_cell`,
    the rule of the RNA matrix) leaves its gene without a variance - never selected - named in a warning; other text
    ('#DIV/0!'), a decimal comma in a ',' / tab file, a negative or infinite variance and a gene named twice are
    refused, naming gene, value and line (before, such a gene was dropped from the ranking without a word, and a
    second row of a gene ignored)."""
    from lungai.fusion.data import check_unique_genes, say_date_damaged_genes
    from lungai.io.tables import DECIMAL_COMMA_FIX, data_lines, decimal_comma_hint, decimal_comma_number, id_text, \
        is_missing_cell

    try:
        # a file edited in a long Slicer session is re-read; the file by its resolved path: `stage cv / train` read it
        # as typed (../v.csv), each fold by the resolved path - read (and its notes said) twice before (QA stage71)
        key = (str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    except OSError as e:
        raise InputError(f"cannot read the gene variances {path}: {e}", "give an existing CSV: gene, raw variance") from e
    if key not in _VARIANCES:
        try:
            sep = table_separator(path)
            df = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False, skip_blank_lines=True)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the gene variances {path}: {e}", VARIANCES_FIX) from e
        if df.shape[1] < 2:
            raise InputError(f"{path} has {counted(df.shape[1], 'column')}", VARIANCES_FIX)
        df = df.fillna("")
        df = df[[any(str(c).strip() for c in row) for row in df.itertuples(index=False)]]    # as data_lines counts
        lines = data_lines(path, sep, header=False)
        lines += [None] * (len(df) - len(lines))
        if df.shape[1] > 2 and any(str(c).strip() for c in df.iloc[:, 2:].to_numpy().ravel()):
            raise InputError(f"the gene variances {path} have {df.shape[1]} columns (first row: "
                             f"{', '.join(map(repr, df.iloc[0].tolist()[:6]))}): which one holds the variance?",
                             VARIANCES_FIX + " (the gene name first; no row-number column)")
        genes = [id_text(g) for g in df.iloc[:, 0]]     # as the RNA matrix's gene names (lungai.fusion.data._ids)
        cells = [str(v).strip() for v in df.iloc[:, 1]]
        first = 1 if cells and _variance_header(genes[0], cells[0]) else 0
        if sep == ";":     # a decimal-comma spreadsheet's CSV: 1,5 = 1.5 (as lungai.io.tables.read_table_checked)
            # its one rule: '1.234,5' (a thousands separator or a decimal point?) refused, naming value and line
            check_thousands(pd.DataFrame({"variance": cells[first:]}), path, what="gene variances", header=first == 1)
        rows, missing, bad, nameless = [], [], [], 0
        for gene, cell, line in list(zip(genes, cells, lines))[first:]:
            where = f" (line {line})" if line else ""
            if not gene:
                nameless += 1
                continue
            if is_missing_cell(cell):
                missing.append(f"{gene!r}" + (f" = {cell!r}" if cell else " (empty)") + where)
                continue
            try:
                value = float(cell.replace(",", ".") if sep == ";" else cell)
            except ValueError:
                bad.append((f"gene {gene!r} = {cell!r}{'' if sep == ';' else decimal_comma_hint(cell)}{where}", cell))
                continue
            if not np.isfinite(value) or value < 0:
                bad.append((f"gene {gene!r} = {cell!r}{where}: a variance is a finite number >= 0", None))
                continue
            rows.append((gene, value))
        if bad:
            commas = sep != ";" and all(t is not None and decimal_comma_number(t) is not None for _, t in bad)
            raise InputError(f"the gene variances {path} have {counted(len(bad), 'value')} that "
                             f"{agree(len(bad), 'is not a variance', 'are not variances')}: "
                             + "; ".join(b for b, _ in bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else ""),
                             DECIMAL_COMMA_FIX if commas else
                             f"correct {agree(len(bad), 'the value', 'the values')} to the raw variance of the gene (a "
                             "number >= 0), or leave the cell empty for a gene without a variance (never selected)")
        check_unique_genes(genes[first:], f"the gene variances {path}")
        say_date_damaged_genes([g for g, _ in rows], f"the gene variances {path}", variances=True)
        if missing or nameless:
            said = [f"{counted(len(missing), 'gene')} without a variance (never selected by --top-k): "
                    + ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")] \
                if missing else []
            said += [f"{counted(nameless, 'row')} without a gene name left out"] if nameless else []
            warnings.warn(InputNote(f"the gene variances {path}: " + "; ".join(said)))
        if not rows:
            raise InputError(f"{path} holds no numeric gene variance", VARIANCES_FIX)
        _VARIANCES[key] = pd.Series([v for _, v in rows], index=[g for g, _ in rows], name="variance", dtype=float)
    return _VARIANCES[key]


# an Ensembl ID with its version (ENSG00000141510.16, GENCODE's ENSG00000182378.14_PAR_Y): the version changes
# with the annotation release, the gene does not
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GT]\d+)\.\d+(_PAR_Y)?$", re.IGNORECASE)


def unversioned(gene) -> str:
    """The Ensembl ID without its version (``ENSG00000141510.16`` -> ``ENSG00000141510``; ``_PAR_Y`` is kept: the
    copy on chromosome Y is another row); any other name as it is."""
    m = _ENSEMBL_VERSION.match(str(gene).strip())
    return m.group(1) + (m.group(2) or "") if m else str(gene)


# a TCGA-style gene name 'SYMBOL|Entrez' (TOR1AIP1|26092; TCGA's RNA-seq matrices, cBioPortal exports): the symbol
# is the part before '|' ('?|100130426': no symbol)
_SYMBOL_ENTREZ = re.compile(r"^\s*([^|?\s][^|]*?)\s*\|\s*\d+\s*$")


def gene_symbol(gene) -> Optional[str]:
    """The symbol of a TCGA-style ``SYMBOL|Entrez`` gene name (``TOR1AIP1|26092`` -> ``TOR1AIP1``); None for any
    other name (and for ``?|100130426``, which has no symbol)."""
    m = _SYMBOL_ENTREZ.match(str(gene))
    return m.group(1) if m else None


class GeneSelector:
    """``variances``: raw per-gene variances to rank by (``--gene-variances``); ``standardised``: whether the
    whole RNA matrix is per-gene standardised (decided on the full cohort, :func:`looks_standardised`;
    None = decide on the matrix given to :meth:`fit`)."""

    def __init__(self, top_k: int = 2000, variances: Optional[pd.Series] = None, variances_source=None,
                 standardised: Optional[bool] = None):
        self.top_k = top_k
        self.variances, self.variances_source, self.standardised = variances, variances_source, standardised
        self.genes: list = []
        self.ranking = "training-fold variance"
        self.note: Optional[str] = None
        self.mean = self.sd = None

    def fit(self, rna: pd.DataFrame) -> "GeneSelector":
        if rna is None or rna.shape[0] < 2:
            raise InputError("fewer than 2 training patients have RNA data", "add RNA profiles or leave out --rna")
        self.note = None
        standardised = self.standardised if self.standardised is not None else looks_standardised(rna)
        if self.variances is not None:
            cols = [str(c) for c in rna.columns]
            known = [c for c in cols if c in self.variances.index]
            if not known:
                raise InputError(f"no gene of the RNA matrix is in the gene variances {self.variances_source}",
                                 "use the same gene symbols in --rna and --gene-variances")
            var = self.variances.reindex(known)
            order = np.lexsort((np.array(var.index), -var.to_numpy()))    # by raw variance, ties by name
            self.genes = [known[i] for i in order[: self.top_k]]
            self.ranking = f"raw variance from {self.variances_source}"
            absent = len(cols) - len(known)
            if absent:
                missing = [c for c in cols if c not in self.variances.index]
                self.note = (f"RNA: {absent} of {len(cols)} genes have no variance in {self.variances_source} "
                             f"and are never selected: {', '.join(missing[:10])}"
                             + (f" and {absent - 10} more" if absent > 10 else ""))
                warnings.warn(InputNote(self.note))
        elif standardised and self.top_k < rna.shape[1]:
            self.genes = [str(c) for c in rna.columns]
            self.ranking = "all genes (per-gene standardised matrix)"
            self.note = (f"RNA: the matrix is per-gene standardised (every gene has the same variance), so top-"
                         f"{self.top_k} by variance would be arbitrary (name order / sampling noise): all "
                         f"{len(self.genes)} genes are kept; give --gene-variances FILE (raw per-gene variances) to "
                         f"keep the top {self.top_k} by raw variance")
            warnings.warn(InputNote(self.note))
        else:
            var = rna.var(axis=0, skipna=True).fillna(0.0)
            order = np.lexsort((np.array(var.index), -var.values))      # by variance, ties by name
            self.genes = [str(var.index[i]) for i in order[: self.top_k]]
            self.ranking = "training-fold variance"
        sub = rna[self.genes]
        self.mean = sub.mean(axis=0).fillna(0.0).to_numpy(np.float32)
        sd = sub.std(axis=0).fillna(0.0).to_numpy(np.float32)
        self.sd = np.where(sd > 1e-6, sd, 1.0).astype(np.float32)
        return self

    def gene_columns(self, rna: pd.DataFrame) -> dict:
        """{model gene: the column of ``rna`` that holds it}: the column of its name, else the one column with its
        Ensembl ID without the version (:func:`unversioned`: ``ENSG...510.16`` of the model in a matrix of another
        GENCODE release, ``ENSG...510.17`` or ``ENSG...510``), else the one column of its symbol in TCGA's
        ``SYMBOL|Entrez`` form (:func:`gene_symbol`: ``TOR1AIP1|26092`` for the model's ``TOR1AIP1``, or the plain
        symbol for a model trained on that form; QA stagefollow70: such a matrix was refused as "200 of the model's 200
        genes are missing"); a gene absent in every way is not a key.  Two columns of one unversioned ID or of one
        symbol for a model gene are refused: which one holds the gene cannot be told."""
        have = set(rna.columns)
        by_id, by_symbol = defaultdict(list), defaultdict(list)
        for c in rna.columns:
            by_id[unversioned(c)].append(c)
            if (symbol := gene_symbol(c)) is not None:
                by_symbol[symbol].append(c)
        found, twice, twice_symbol = {}, {}, {}
        for g in self.genes:
            if g in have:
                found[g] = g
                continue
            columns = by_id.get(unversioned(g), [])
            if not columns:
                symbol = gene_symbol(g)
                columns = by_symbol.get(str(g), []) if symbol is None else ([symbol] if symbol in have else [])
                if len(columns) > 1:
                    twice_symbol[g] = columns
                    continue
            if len(columns) == 1:
                found[g] = columns[0]
            elif columns:
                twice[g] = columns
        if twice:
            listed = "; ".join(f"{g}: {', '.join(map(str, c))}" for g, c in list(twice.items())[:5])
            raise InputError(f"the RNA matrix has {len(twice)} of the model's genes under two or more Ensembl versions "
                             f"and not under the model's ({listed})",
                             "keep one row (or column) per gene: one version of each Ensembl ID")
        if twice_symbol:
            listed = "; ".join(f"{g}: {', '.join(map(str, c))}" for g, c in list(twice_symbol.items())[:5])
            raise InputError(f"the RNA matrix has {len(twice_symbol)} of the model's genes only as 'SYMBOL|Entrez' "
                             f"names, each under two or more Entrez IDs ({listed}): which one holds the gene cannot be "
                             "told",
                             f"rename the row (or column) that holds {next(iter(twice_symbol))} to the plain symbol "
                             f"{next(iter(twice_symbol))!r}, as the model names it (likewise for the others)")
        return found

    def model_columns(self, rna: pd.DataFrame) -> pd.DataFrame:
        """``rna`` with the model's genes as columns, in its order (:meth:`gene_columns`; a missing gene: NaN)."""
        found = self.gene_columns(rna)
        sub = rna.reindex(columns=[found.get(g, g) for g in self.genes])
        sub.columns = list(self.genes)
        return sub

    def version_matched(self, rna: pd.DataFrame) -> dict:
        """{model gene: column} of the genes found only by the Ensembl ID without the version or by the symbol of a
        ``SYMBOL|Entrez`` name (:meth:`gene_columns`)."""
        return {g: c for g, c in self.gene_columns(rna).items() if g != c}

    def missing_genes(self, rna: pd.DataFrame) -> list:
        found = self.gene_columns(rna)
        return [g for g in self.genes if g not in found]

    def transform(self, rna: Optional[pd.DataFrame], ids) -> np.ndarray:
        """(len(ids), n_genes) standardised; rows of patients without RNA are 0 (they are masked), a missing value is 0
        (the training mean); an infinite value is refused (:func:`lungai.fusion.data.check_finite_values`)."""
        out = np.zeros((len(ids), len(self.genes)), np.float32)
        if rna is None:
            return out
        from lungai.fusion.data import check_finite_values

        sub = self.model_columns(rna).reindex(index=list(ids))
        check_finite_values(sub, "the RNA matrix")     # never nan_to_num's +-3.4e38 for an inf (a log of 0)
        vals = (sub.to_numpy(np.float32) - self.mean) / self.sd
        return np.where(np.isnan(vals), 0.0, vals).astype(np.float32)

    def to_json(self) -> dict:
        return {"top_k": self.top_k, "genes": self.genes, "ranking": self.ranking, "note": self.note,
                "variances_source": None if self.variances_source is None else str(self.variances_source),
                "standardised_input": self.standardised}

    def tensors(self) -> dict:
        return {"gene_mean": self.mean, "gene_sd": self.sd}

    @classmethod
    def from_saved(cls, meta: dict, tensors: dict) -> "GeneSelector":
        sel = cls(meta["top_k"])
        sel.genes = list(meta["genes"])
        sel.ranking = meta.get("ranking", sel.ranking)
        sel.note, sel.variances_source = meta.get("note"), meta.get("variances_source")
        sel.standardised = meta.get("standardised_input")
        sel.mean, sel.sd = np.asarray(tensors["gene_mean"]), np.asarray(tensors["gene_sd"])
        return sel


def gene_selector(top_k: int, gene_variances=None, report: Optional[dict] = None) -> GeneSelector:
    """The selector a pipeline fits in a training fold: ``gene_variances`` a file path (or None);
    ``report`` the cohort report, whose ``rna_standardised`` was decided on the whole RNA matrix (a
    training fold of a z-scored matrix no longer has equal variances, so it cannot tell)."""
    var = read_gene_variances(gene_variances) if gene_variances else None
    return GeneSelector(top_k, var, gene_variances, (report or {}).get("rna_standardised"))
