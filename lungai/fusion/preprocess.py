"""Per-fold preprocessing: EHR encoding and top-k variance gene selection.

Both are fitted on the training patients of a fold only, then applied to its test patients.

- :class:`EHREncoder` - numeric columns: median imputation + missing indicator + standard scaling;
  categorical columns: one-hot with "missing" as its own level (scikit-learn ColumnTransformer,
  saved with skops).  Date-like / free-text columns (too many levels) are left out and reported.
- :class:`GeneSelector` - top-k variance genes in the training fold, standardised with the training
  mean/SD; a missing value (or a gene missing from a new cohort) becomes 0 = the training mean.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import pandas as pd

from lungai.errors import InputError

MAX_LEVELS = 20
MISSING_LEVEL = "__missing__"


def _numeric_share(s: pd.Series) -> float:
    present = s.dropna()
    if present.empty:
        return 0.0
    return float(pd.to_numeric(present, errors="coerce").notna().mean())


class EHREncoder:
    def __init__(self, max_levels: int = MAX_LEVELS):
        self.max_levels = max_levels
        self.numeric: list = []
        self.categorical: list = []
        self.left_out: dict = {}
        self.transformer = None

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=df.index)
        for c in self.numeric:
            out[c] = pd.to_numeric(df[c], errors="coerce") if c in df else np.nan
        for c in self.categorical:
            col = df[c] if c in df else pd.Series(np.nan, index=df.index)
            out[c] = col.map(lambda v: MISSING_LEVEL if v is None or (isinstance(v, float) and np.isnan(v))
                             else str(v)).astype(object)
        return out

    def fit(self, df: pd.DataFrame) -> "EHREncoder":
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        self.numeric, self.categorical, self.left_out = [], [], {}
        for c in df.columns:
            s = df[c]
            if s.notna().sum() == 0:
                self.left_out[str(c)] = "no value in the training patients"
            elif _numeric_share(s) >= 0.9:
                self.numeric.append(str(c))
            elif s.dropna().astype(str).nunique() > self.max_levels:
                self.left_out[str(c)] = f"more than {self.max_levels} distinct values (date or free text?)"
            else:
                self.categorical.append(str(c))
        parts = []
        if self.numeric:
            parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
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

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        if self.transformer is None:
            return np.zeros((len(df), 0), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # unknown categories are expected in new cohorts
            return np.asarray(self.transformer.transform(self._frame(df)), dtype=np.float32)

    def to_json(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "left_out": self.left_out,
                "max_levels": self.max_levels}

    @classmethod
    def from_json(cls, meta: dict, transformer) -> "EHREncoder":
        enc = cls(meta.get("max_levels", MAX_LEVELS))
        enc.numeric, enc.categorical, enc.left_out = meta["numeric"], meta["categorical"], meta["left_out"]
        enc.transformer = transformer
        return enc


class GeneSelector:
    def __init__(self, top_k: int = 2000):
        self.top_k = top_k
        self.genes: list = []
        self.mean = self.sd = None

    def fit(self, rna: pd.DataFrame) -> "GeneSelector":
        if rna is None or rna.shape[0] < 2:
            raise InputError("fewer than 2 training patients have RNA data", "add RNA profiles or leave out --rna")
        var = rna.var(axis=0, skipna=True).fillna(0.0)
        order = np.lexsort((np.array(var.index), -var.values))      # by variance, ties by name
        self.genes = [str(var.index[i]) for i in order[: self.top_k]]
        sub = rna[self.genes]
        self.mean = sub.mean(axis=0).fillna(0.0).to_numpy(np.float32)
        sd = sub.std(axis=0).fillna(0.0).to_numpy(np.float32)
        self.sd = np.where(sd > 1e-6, sd, 1.0).astype(np.float32)
        return self

    def missing_genes(self, rna: pd.DataFrame) -> list:
        have = set(rna.columns)
        return [g for g in self.genes if g not in have]

    def transform(self, rna: Optional[pd.DataFrame], ids) -> np.ndarray:
        """(len(ids), n_genes) standardised; rows of patients without RNA are 0 (they are masked)."""
        out = np.zeros((len(ids), len(self.genes)), np.float32)
        if rna is None:
            return out
        sub = rna.reindex(index=list(ids), columns=self.genes)
        vals = (sub.to_numpy(np.float32) - self.mean) / self.sd
        return np.nan_to_num(vals, nan=0.0).astype(np.float32)

    def to_json(self) -> dict:
        return {"top_k": self.top_k, "genes": self.genes}

    def tensors(self) -> dict:
        return {"gene_mean": self.mean, "gene_sd": self.sd}

    @classmethod
    def from_saved(cls, meta: dict, tensors: dict) -> "GeneSelector":
        sel = cls(meta["top_k"])
        sel.genes = list(meta["genes"])
        sel.mean, sel.sd = np.asarray(tensors["gene_mean"]), np.asarray(tensors["gene_sd"])
        return sel
