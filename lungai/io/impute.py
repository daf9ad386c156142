"""The median imputation of ``lungai stage`` and ``lungai rp``, with a smoker's missing pack-years (and a former
smoker's missing years since quitting) imputed from the smokers only.

A never-smoker's missing pack-years are 0, not imputed (:func:`lungai.io.tables.never_smoker_pack_years`, applied
when a table is read).  A pack-years value still missing after that rule is a smoker's (or a patient's of unknown
smoking status), yet a plain training median counts the never-smokers' zeros: on NSCLC-Radiogenomics (48 of its
211 patients never smoked) it gave such a smoker 27 pack-years instead of the smokers' 37.
:class:`SmokersMedianImputer` is scikit-learn's ``SimpleImputer(strategy="median")`` whose statistic for a
pack-years column (:func:`lungai.io.tables.is_pack_years_name`) is the median of the training values above 0 - the
pack-years of the patients who smoked; likewise the feature :data:`lungai.io.tables.QUIT_YEARS` (years since
quitting smoking, 0 for current and never-smokers: :func:`lungai.io.tables.with_years_since_quitting`), whose
values above 0 are the former smokers'.  Every other column keeps its plain median.  It is a step of the fitted
pipelines (``lungai.fusion.preprocess.EHREncoder``, ``lungai.rp.pipeline.build_pipeline``), so cross-validation
fits it on each training fold only, and it is saved in the model (skops; trusted by exact name).

Imports scikit-learn: import this module where the pipeline is built, not at a command's start.
"""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer

from lungai.io.tables import QUIT_YEARS, is_pack_years_name

# its name in a skops file (the trusted-type lists of lungai.fusion.model_io and lungai.rp.model_io)
TYPE_NAME = f"{__name__}.SmokersMedianImputer"


def is_smokers_column(name) -> bool:
    """A column whose missing values are imputed from its values above 0 (:func:`smokers_values`): pack-years
    (:func:`lungai.io.tables.is_pack_years_name`) or the years since quitting (:data:`lungai.io.tables.QUIT_YEARS`)."""
    return is_pack_years_name(name) or str(name) == QUIT_YEARS


def smokers_values(values) -> np.ndarray:
    """The values of ``values`` (numbers; NaN missing) that are a smoker's: finite and above 0 (a never-smoker's
    pack-years are 0; a current or never-smoker's years since quitting 0)."""
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v) & (v > 0)]


class SmokersMedianImputer(SimpleImputer):
    """``SimpleImputer(strategy="median")`` (same parameters) whose statistic for each pack-years or years-since-
    quitting column (:func:`is_smokers_column`) - found by its name among the columns it is fitted on (a DataFrame's
    ``feature_names_in_``) - is the median of that column's training values above 0, the smokers'
    (:func:`smokers_values`); a column without such a value keeps its plain median.  Fitted without column names
    (an array) it is a plain median imputer."""

    def fit(self, X, y=None):
        super().fit(X, y)
        names = getattr(self, "feature_names_in_", None)
        if names is None or self.strategy != "median":
            return self
        columns = [j for j, name in enumerate(names) if is_smokers_column(name)]
        if columns:
            values = np.asarray(X, dtype=float)
            statistics = np.array(self.statistics_, dtype=float)
            for j in columns:
                smoked = smokers_values(values[:, j])
                if smoked.size:
                    statistics[j] = float(np.median(smoked))
            self.statistics_ = statistics
        return self

    def smokers_statistics(self) -> dict:
        """{pack-years or years-since-quitting column: the value a missing one is imputed with} (fitted on named
        columns; else {})."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return {}
        return {str(name): float(self.statistics_[j]) for j, name in enumerate(names)
                if is_smokers_column(name) and np.isfinite(self.statistics_[j])}
