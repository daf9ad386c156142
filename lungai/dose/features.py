"""Dosimetric features of one case (the column names are a contract, see docs/radiomics.md).

Lung metrics use the lungs minus the GTV, as in radiation-pneumonitis studies, with the lungs as
RT defines them (``lungai.lungs.RT_LUNG_DEFINITION``: the RTSTRUCT lungs or ``lungai lungs``):
``dose_mld_gy`` (mean lung dose), ``dose_v5_pct`` .. ``dose_v30_pct`` (% of lung volume receiving
>= 5/13/20/30 Gy), ``dose_d2_gy``/``dose_d50_gy``/``dose_d98_gy`` (dose to the hottest 2/50/98 % of
the lungs); GTV: ``dose_gtv_mean_gy``/``_min_gy``/``_max_gy`` (NaN without a GTV).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.dose.dvh import d_gy, mean_dose, v_percent
from lungai.dose.resample import check_coverage, dose_on_grid
from lungai.errors import InputError
from lungai.io import assert_same_geometry

V_LEVELS = (5, 13, 20, 30)
D_LEVELS = (2, 50, 98)
COLUMNS = (["case", "dose_mld_gy"] + [f"dose_v{v}_pct" for v in V_LEVELS] + [f"dose_d{d}_gy" for d in D_LEVELS]
           + ["dose_gtv_mean_gy", "dose_gtv_min_gy", "dose_gtv_max_gy"])


def features_from_arrays(dose_kji: np.ndarray, lungs: np.ndarray, gtv: np.ndarray | None = None,
                         case: str = "case") -> dict:
    """The feature row from a dose array on the mask grid and boolean masks."""
    lungs = lungs.astype(bool)
    gtv = None if gtv is None else gtv.astype(bool)
    region = lungs & ~gtv if gtv is not None else lungs
    if not region.any():
        raise InputError("the lung mask minus the GTV is empty", "give a lung mask (label > 0) on the CT grid")
    check_coverage(dose_kji, region, "lungs")
    d = dose_kji[region]
    row = {"case": case, "dose_mld_gy": mean_dose(d)}
    row.update({f"dose_v{v}_pct": v_percent(d, v) for v in V_LEVELS})
    row.update({f"dose_d{p}_gy": d_gy(d, p) for p in D_LEVELS})
    if gtv is not None and gtv.any():
        check_coverage(dose_kji, gtv, "GTV")
        g = dose_kji[gtv]
        row.update(dose_gtv_mean_gy=float(g.mean()), dose_gtv_min_gy=float(g.min()), dose_gtv_max_gy=float(g.max()))
    elif gtv is not None:
        raise InputError("the GTV mask is empty", "give a GTV mask with the tumour voxels > 0, or leave --gtv out")
    else:
        row.update(dose_gtv_mean_gy=np.nan, dose_gtv_min_gy=np.nan, dose_gtv_max_gy=np.nan)
    return row


def dose_features(dose: sitk.Image, ct: sitk.Image, lungs: sitk.Image, gtv: sitk.Image | None = None,
                  case: str = "case") -> dict:
    """Resample ``dose`` onto the CT grid and compute the features (lungs = any label > 0)."""
    assert_same_geometry(ct, lungs, "lung mask")
    if gtv is not None:
        assert_same_geometry(ct, gtv, "GTV mask")
    dose_kji = dose_on_grid(dose, ct)
    lung_arr = sitk.GetArrayViewFromImage(lungs) > 0
    gtv_arr = None if gtv is None else sitk.GetArrayViewFromImage(gtv) > 0
    return features_from_arrays(dose_kji, lung_arr, gtv_arr, case)
