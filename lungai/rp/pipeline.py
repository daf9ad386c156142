"""The scikit-learn pipeline fitted *inside* every cross-validation fold.

    ColumnTransformer(numeric: median imputation (a smoker's missing pack-years: the training smokers' median,
                               lungai.io.impute.SmokersMedianImputer, as in lungai stage) -> standard scaling;
                      categorical: most-frequent imputation -> one-hot)
    -> SelectKBest(ANOVA F, k)              (feature selection, k tuned in the inner CV)
    -> LogisticRegression (L2, C tuned)  |  RandomForestClassifier (depth / leaf size tuned)

Because imputation statistics, scaling, selection and the classifier are all steps of one
Pipeline, cross-validation refits each of them on the training part of every fold only:
the held-out patients never influence any of them (no leakage).
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lungai.io.impute import SmokersMedianImputer
from lungai.rp.card import MODEL_NAMES, MODELS  # noqa: F401  (in the light module: rp train checks --models first)


def build_pipeline(model: str, numeric: list[str], categorical: list[str], seed: int = 0,
                   n_trees: int = 200) -> Pipeline:
    """An unfitted pipeline for ``model`` in MODELS."""
    transformers = []
    if numeric:
        transformers.append(("num", Pipeline([("impute", SmokersMedianImputer(strategy="median")),
                                              ("scale", StandardScaler())]), list(numeric)))
    if categorical:
        transformers.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), list(categorical)))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    if model == "lr":
        clf = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200, random_state=seed)
    elif model == "rf":
        clf = RandomForestClassifier(n_estimators=n_trees, min_samples_leaf=5, max_features="sqrt",
                                     random_state=seed, n_jobs=1)
    else:
        raise ValueError(f"unknown model {model!r}")
    return Pipeline([("pre", pre), ("select", SelectKBest(f_classif, k="all")), ("clf", clf)])


def n_encoded(X, numeric: list[str], categorical: list[str]) -> int:
    """Number of columns after preprocessing (numeric + one-hot levels)."""
    levels = sum(max(X[c].dropna().nunique(), 1) for c in categorical)
    return len(numeric) + levels


def param_grid(model: str, n_features: int, fast: bool = False) -> dict:
    """Hyper-parameter grid for the inner CV (smaller with ``fast``)."""
    ks = sorted({k for k in (5, 10, 20) if k < n_features} | {"all"}, key=lambda v: (v == "all", v))
    if fast:
        ks = [k for k in ks if k in (10, "all")] or ["all"]
    if model == "lr":
        cs = [0.03, 0.3] if fast else [0.01, 0.1, 1.0, 10.0]
        return {"select__k": ks, "clf__C": cs}
    ks = [k for k in ks if k in (10, "all")] or ["all"]
    leaves = [5] if fast else [3, 10, 30]
    return {"select__k": ks, "clf__min_samples_leaf": leaves}


def feature_names_out(pipe: Pipeline) -> np.ndarray:
    """Names of the features that reach the classifier (after selection)."""
    names = pipe.named_steps["pre"].get_feature_names_out()
    return names[pipe.named_steps["select"].get_support()]
