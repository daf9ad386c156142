"""Radiation-pneumonitis (RP) risk from clinical + dosimetric + radiomic features.

Python API (the CLI ``lungai rp ...`` and the Slicer logic call these):

* :func:`make_cohort` / :func:`oracle_auc` - synthetic cohort with a known risk model;
* :func:`train_rp` - nested-CV comparison of feature sets x models, locked model in a directory;
* :func:`validate_rp` - external validation of a locked model;
* :func:`predict_rp` - risk, uncertainty interval and Shapley contributions for new patients.

See docs/rp.md.
"""

from lungai.rp.cohort import RISK_MODEL, Cohort, make_cohort, oracle_auc
from lungai.rp.external import validate_rp
from lungai.rp.predict import predict_rp
from lungai.rp.training import train_rp

__all__ = ["RISK_MODEL", "Cohort", "make_cohort", "oracle_auc", "train_rp", "validate_rp", "predict_rp"]
