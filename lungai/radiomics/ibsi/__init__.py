"""IBSI-1: the IBSI pipeline (every IBSI-1 feature) and its check against the reference values.

``compute_ibsi(image, mask, CONFIGS["C"])`` -> ``{IBSI tag: value}`` (also behind the ``ibsi-a`` ..
``ibsi-e`` presets); ``run_check(image, mask, reference_csv, "C")`` -> :class:`Report` with a
per-tag table and ``summary()`` ("N of M reference features within tolerance").  Configurations
A-E of the CT phantom and ``digital`` (the digital phantom).  See docs/radiomics.md.
"""

from lungai.lazy import lazy_names
from lungai.radiomics.ibsi.compare import Report, within
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig

# The names below come from modules importing pandas (0.2-1.1 s): imported on first use (PEP 562), so that
# lungai.radiomics.prepare (which needs lungai.radiomics.ibsi.preprocess, loading this package) leaves pandas to the
# table, after lungai radiomics' first bar.  ``compare`` is the function of run.py, as it always was here, not the
# submodule imported above: its name is taken back from the package (the submodule is loaded now, so a later import
# of it does not bind it here again).
globals().pop("compare", None)

_LAZY = {"load_mapping": "mapping", "tags_for": "mapping", "target": "mapping", "read_reference": "reference",
         "compare": "run", "compute_ibsi": "run", "compute_settings_only": "run", "run_check": "run",
         "select_tags": "run"}


__getattr__, __dir__ = lazy_names(__name__, {k: f"{__name__}.{v}" for k, v in _LAZY.items()}, globals())


__all__ = ["Report", "within", "CONFIGS", "IBSIConfig", "load_mapping", "tags_for", "target", "read_reference",
           "compare", "compute_ibsi", "compute_settings_only", "run_check", "select_tags"]
