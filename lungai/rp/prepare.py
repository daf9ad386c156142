"""Turn a user table into the model's feature matrix (shared by train, validate, predict)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lungai.errors import InputError
from lungai.radiomics.settings import SETTINGS_COLUMN, is_legacy_settings, read_sidecars
from lungai.rp.checks import check_categories, numeric_features
from lungai.rp.columns import ID_NAMES, ColumnRoles, require_columns


def feature_summary(X: pd.DataFrame, categorical: list[str]) -> dict:
    """Per-feature summary for the model card (median/IQR and range, or category counts; missing %)."""
    out = {}
    for col in X.columns:
        s = X[col]
        entry = {"missing_pct": round(float(s.isna().mean() * 100), 2)}
        if col in categorical:
            entry["counts"] = {str(k): int(v) for k, v in s.value_counts().items()}
        else:
            q1, med, q3 = np.nanpercentile(s.to_numpy(float), [25, 50, 75])
            entry.update(median=float(med), q1=float(q1), q3=float(q3), min=float(np.nanmin(s)),
                         max=float(np.nanmax(s)))
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


def training_radiomics_settings(df: pd.DataFrame, features, sources=()) -> dict:
    """The radiomics settings of a training table (model card entry ``radiomics_settings``): the id
    the table carries (column ``radiomics_settings``) and, from the CSVs' sidecar files, the settings
    in full.  A table mixing settings is refused."""
    if not any(str(f).startswith("rad_") for f in features):
        return {"id": None, "note": "the model uses no radiomic features"}
    if SETTINGS_COLUMN not in df:
        return {"id": None, "note": "not recorded: the table has no radiomics_settings column (features not written "
                                    "by lungai radiomics), so prediction cannot check them"}
    ids = sorted({i for v in df[SETTINGS_COLUMN].dropna().astype(str) for i in v.split(";") if i})
    if len(ids) != 1:
        raise InputError(f"the training table mixes radiomic features computed with {len(ids)} different settings "
                         f"({', '.join(ids) or 'none recorded'}; column {SETTINGS_COLUMN})",
                         "recompute every patient's radiomics with the same --params (a model cannot learn from "
                         "features whose meaning differs between patients)")
    return {"id": ids[0], "settings": read_sidecars(sources).get(ids[0]),
            "note": "features of new patients must be computed with these settings"}


def settings_warnings(df: pd.DataFrame, card: dict, what: str, allow_other: bool = False) -> list[str]:
    """Per patient: '' or why its radiomic features may not match the model's (other or unknown
    settings).  Other settings raise unless ``allow_other``."""
    expected = (card.get("radiomics_settings") or {}).get("id")
    if expected is None:
        return [""] * len(df)
    if SETTINGS_COLUMN not in df:
        return [f"radiomics settings unknown (the model's: {expected})"] * len(df)
    given = df[SETTINGS_COLUMN].astype(object).where(df[SETTINGS_COLUMN].notna(), None)
    other = [g is not None and str(g) != expected for g in given]
    if any(other) and not allow_other:
        cases = case_ids(df, card["roles"].get("id_column"))
        bad = sorted({str(g) for g, o in zip(given, other) if o})
        fix = ("recompute the features with the model's settings (the --params used for training), "
               "or pass --allow-other-radiomics-settings to predict anyway with a warning per patient")
        if is_legacy_settings((card.get("radiomics_settings") or {}).get("settings")):
            fix = ("the model's id was written by an older lungai, whose ids left out the IBSI configuration and "
                   "the lung grid spacing (so no current table carries it): recompute the training patients' "
                   "features with the same --params and retrain (rp train), or pass "
                   "--allow-other-radiomics-settings to predict anyway with a warning per patient")
        raise InputError(f"{what}: radiomic features of {sum(other)} patient(s) (e.g. {[c for c, o in zip(cases, other) if o][:3]}) "
                         f"were computed with radiomics settings {bad}, the model with {expected} "
                         f"(model_card.json 'radiomics_settings'); their values are not comparable", fix)
    return [f"radiomics settings {g} differ from the model's {expected}" if o else
            ("" if g is not None else f"radiomics settings unknown (the model's: {expected})")
            for g, o in zip(given, other)]


def imputed_and_out_of_range(X: pd.DataFrame, card: dict) -> tuple[list[str], list[str]]:
    """Per patient: the features that were missing (imputed with the training median / most frequent
    category) and the numeric ones outside the training range, as '; '-separated text."""
    summary = card["training_data"]["features"]
    imputed, outside = [], []
    for _, row in X.iterrows():
        imputed.append("; ".join(c for c in X.columns if pd.isna(row[c])))
        out = []
        for c in X.columns:
            s = summary.get(c, {})
            if "min" in s and not pd.isna(row[c]) and not (s["min"] <= float(row[c]) <= s["max"]):
                out.append(f"{c}={float(row[c]):.4g} (training {s['min']:.4g} to {s['max']:.4g})")
        outside.append("; ".join(out))
    return imputed, outside


def case_ids(df: pd.DataFrame, id_column: str | None) -> list[str]:
    """Patient identifiers: the id column if present, else the row numbers."""
    for col in [id_column] + [c for c in df.columns if str(c).lower() in ID_NAMES]:
        if col and col in df.columns:
            return df[col].astype(str).tolist()
    return [f"row{i + 1}" for i in range(len(df))]
