"""IBSI-1: the IBSI pipeline (every IBSI-1 feature) and its check against the reference values.

``compute_ibsi(image, mask, CONFIGS["C"])`` -> ``{IBSI tag: value}`` (also behind the ``ibsi-a`` ..
``ibsi-e`` presets); ``run_check(image, mask, reference_csv, "C")`` -> :class:`Report` with a
per-tag table and ``summary()`` ("N of M reference features within tolerance").  Configurations
A-E of the CT phantom and ``digital`` (the digital phantom).  See docs/radiomics.md.
"""

from lungai.radiomics.ibsi.compare import Report, within
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig
from lungai.radiomics.ibsi.mapping import load_mapping, tags_for, target
from lungai.radiomics.ibsi.reference import read_reference
from lungai.radiomics.ibsi.run import compare, compute_ibsi, compute_settings_only, run_check, select_tags

__all__ = ["Report", "within", "CONFIGS", "IBSIConfig", "load_mapping", "tags_for", "target", "read_reference",
           "compare", "compute_ibsi", "compute_settings_only", "run_check", "select_tags"]
