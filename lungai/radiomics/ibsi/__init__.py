"""IBSI-1 compliance check of pyradiomics on the IBSI CT phantom (configurations A-E).

``run_check(image, mask, reference_csv, "C")`` -> :class:`Report` with a per-tag table and
``summary()`` ("N of M mapped features within tolerance").  See docs/radiomics.md for the
known deviations of pyradiomics and what lungai does about them.
"""

from lungai.radiomics.ibsi.compare import Report, within
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig
from lungai.radiomics.ibsi.mapping import load_mapping, tags_for, target
from lungai.radiomics.ibsi.reference import read_reference
from lungai.radiomics.ibsi.run import compare, compute_ibsi, compute_settings_only, run_check, select_tags

__all__ = ["Report", "within", "CONFIGS", "IBSIConfig", "load_mapping", "tags_for", "target", "read_reference", "compare",
           "compute_ibsi", "compute_settings_only", "run_check", "select_tags"]
