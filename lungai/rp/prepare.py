"""Turn a user table into the model's feature matrix (shared by train, validate, predict)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lungai.rp.checks import check_categories, numeric_features
from lungai.rp.columns import ID_NAMES, ColumnRoles, require_columns


def feature_summary(X: pd.DataFrame, categorical: list[str]) -> dict:
    """Per-feature summary for the model card (median/IQR or category counts, missing %)."""
    out = {}
    for col in X.columns:
        s = X[col]
        entry = {"missing_pct": round(float(s.isna().mean() * 100), 2)}
        if col in categorical:
            entry["counts"] = {str(k): int(v) for k, v in s.value_counts().items()}
        else:
            q1, med, q3 = np.nanpercentile(s.to_numpy(float), [25, 50, 75])
            entry.update(median=float(med), q1=float(q1), q3=float(q3))
        out[col] = entry
    return out


def model_features(df: pd.DataFrame, card: dict, what: str) -> pd.DataFrame:
    """The columns the locked model needs, checked (present, numeric, known categories)."""
    roles = ColumnRoles.from_json(card["roles"])
    features = card["features"]
    require_columns(df, features, what)
    X = numeric_features(df, roles, features)
    check_categories(X, {c: card["categories"][c] for c in features if c in card["categories"]}, what)
    return X


def case_ids(df: pd.DataFrame, id_column: str | None) -> list[str]:
    """Patient identifiers: the id column if present, else the row numbers."""
    for col in [id_column] + [c for c in df.columns if str(c).lower() in ID_NAMES]:
        if col and col in df.columns:
            return df[col].astype(str).tolist()
    return [f"row{i + 1}" for i in range(len(df))]
