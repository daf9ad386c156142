"""Radiation-pneumonitis (RP) risk from clinical + dosimetric + radiomic features.

Python API (the CLI ``lungai rp ...`` and the Slicer logic call these):

* :func:`make_cohort` / :func:`oracle_auc` - synthetic cohort with a known risk model;
* :func:`train_rp` - nested-CV comparison of feature sets x models, locked model in a directory;
* :func:`validate_rp` - external validation of a locked model;
* :func:`predict_rp` - risk, uncertainty interval and Shapley contributions for new patients.

See docs/rp.md.
"""

# loaded on first use (PEP 562): ``lungai.rp.uncertainty`` (the interval's meaning, for dicom-export's SR) must not
# load scikit-learn and torch with the package
_API = {"RISK_MODEL": "cohort", "Cohort": "cohort", "make_cohort": "cohort", "oracle_auc": "cohort",
        "validate_rp": "external", "predict_rp": "predict", "train_rp": "training"}

__all__ = ["RISK_MODEL", "Cohort", "make_cohort", "oracle_auc", "train_rp", "validate_rp", "predict_rp"]


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"lungai.rp.{_API[name]}"), name)
    raise AttributeError(f"module 'lungai.rp' has no attribute {name!r}")
