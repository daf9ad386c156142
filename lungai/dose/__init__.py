"""Dosimetric features from an RT dose: mean lung dose, V5/V13/V20/V30, D2/D50/D98, GTV dose.

- :mod:`~lungai.dose.read` - RTDOSE DICOM (DoseGridScaling) or NIfTI/NRRD/MHA in Gy.
- :mod:`~lungai.dose.resample` - dose onto the CT grid, coverage check.
- :mod:`~lungai.dose.dvh` - mean, Vx, Dx, cumulative DVH.
- :mod:`~lungai.dose.features` - the per-case feature row (fixed column names).
- :mod:`~lungai.dose.synthetic` - analytic test doses and a synthetic treatment dose for phantoms.
"""

from lungai.dose.features import COLUMNS, dose_features, features_from_arrays
from lungai.dose.read import check_dose_matches_ct, read_dose, read_rtdose
from lungai.dose.synthetic import radial_dose, radial_dvh_expected, sphere_mask, treatment_dose

__all__ = ["COLUMNS", "dose_features", "features_from_arrays", "check_dose_matches_ct", "read_dose", "read_rtdose", "radial_dose",
           "radial_dvh_expected", "sphere_mask", "treatment_dose"]
