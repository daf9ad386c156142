"""Dosimetric features from an RT dose: mean lung dose, V5/V13/V20/V30, D2/D50/D98, GTV dose.

- :mod:`~lungai.dose.read` - RTDOSE DICOM (DoseGridScaling) or NIfTI/NRRD/MHA in Gy.
- :mod:`~lungai.dose.resample` - dose onto the CT grid, coverage check.
- :mod:`~lungai.dose.dvh` - mean, Vx, Dx, cumulative DVH.
- :mod:`~lungai.dose.features` - the per-case feature row (fixed column names).
- :mod:`~lungai.dose.levels` - the V levels and the largest plausible dose of the arguments (no numpy / SimpleITK).
- :mod:`~lungai.dose.synthetic` - analytic test doses and a synthetic treatment dose for phantoms.

The names below are imported on first use (PEP 562): their modules import SimpleITK and numpy, which
``lungai dose-features`` loads behind its first bar; :mod:`~lungai.dose.levels` checks the arguments before that
(QA radiomics71).
"""

from lungai.lazy import lazy_names

# name -> the module defining it, imported on first use
_LAZY = {"COLUMNS": "lungai.dose.features", "dose_features": "lungai.dose.features",
         "features_from_arrays": "lungai.dose.features", "check_dose_matches_ct": "lungai.dose.read",
         "read_dose": "lungai.dose.read", "read_rtdose": "lungai.dose.read", "radial_dose": "lungai.dose.synthetic",
         "radial_dvh_expected": "lungai.dose.synthetic", "sphere_mask": "lungai.dose.synthetic",
         "treatment_dose": "lungai.dose.synthetic"}

__all__ = ["COLUMNS", "dose_features", "features_from_arrays", "check_dose_matches_ct", "read_dose", "read_rtdose", "radial_dose",
           "radial_dvh_expected", "sphere_mask", "treatment_dose"]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
