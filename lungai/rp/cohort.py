"""Synthetic RP cohort with a *known* risk model (for tests, benchmarks and the demo).

Each patient's probability of grade >= 2 radiation pneumonitis is

    logit p = INTERCEPT + sum_k  b_k * (x_k - centre_k) / scale_k

with the coefficients in :data:`RISK_MODEL` (log-odds per ``scale_k`` units of the column).
They encode the seed study's risk factors (Evin et al., Clin Lung Cancer 2024): higher
haemoglobin, older age, low Tiffeneau ratio (FEV1/VC), lower platelets, mean lung dose,
V20, V13, adjuvant durvalumab and seven lung intensity/texture features.  The effect sizes
are illustrative, not the study's estimates.  Every other column (sex, histology, pack-years,
V5, V30, tumour radiomics "noise" features) has no effect.  The outcome is drawn as
Bernoulli(p), so the best achievable AUC (the *oracle AUC*) is the AUC of ``p`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

INTERCEPT = -1.25
# column: (centre, scale, log-odds per scale unit)
RISK_MODEL = {
    "clin_age_years": (66.0, 10.0, 0.35),
    "clin_hb_g_dl": (13.0, 1.5, 0.30),
    "clin_tiffeneau_pct": (68.0, 10.0, -0.35),
    "clin_platelets_10e9_l": (260.0, 80.0, -0.25),
    "clin_durvalumab": (0.0, 1.0, 0.50),
    "dose_mld_gy": (14.0, 3.5, 0.40),
    "dose_v20_pct": (26.0, 7.0, 0.25),
    "dose_v13_pct": (36.0, 9.0, 0.20),
    "rad_lungs_original_firstorder_Mean": (-830.0, 40.0, 0.30),
    "rad_lungs_original_firstorder_Skewness": (3.0, 0.8, -0.25),
    "rad_lungs_original_firstorder_Kurtosis": (14.0, 5.0, -0.20),
    "rad_lungs_original_glcm_Contrast": (40.0, 12.0, 0.25),
    # default preset (bin width 25 HU): real planning CT lungs 8.2 / 8.5 (NSCLC-Radiomics LUNG1-002 / -003, expert
    # lung contours), the built-in sample's lungs 5.3 (lungai demo) - both well inside the drawn range (was 9 +- 1)
    "rad_lungs_original_glcm_JointEntropy": (7.5, 1.5, 0.25),
    "rad_lungs_original_glrlm_RunLengthNonUniformity": (5.0e5, 1.5e5, 0.20),
    "rad_lungs_original_glszm_ZoneEntropy": (7.0, 0.6, 0.20),
}
# (segment, feature): (centre, scale) of the radiomic features without effect, on the scale real planning CTs give
# (default preset; a feature of patient k is drawn for the tumour when k is even, else for the lungs minus tumour).
# QA: all were drawn as 50 +- 10, so a real CT's lung Energy (2.2e11) lay 1e10 training ranges out and a model of
# this cohort gave LUNG1-003 a risk of 100 % from +4.8e8 log-odds of one feature.  The centres and scales are round
# figures around the values of NSCLC-Radiomics LUNG1-003 (GTV 82 ml, expert contours; `lungai radiomics`, default
# preset): each of its values lies within 2 scales of the centre.  Only the location and scale changed (the same
# standard normal draws), so a model trained on the cohort standardised is the same.
_NOISE_FEATURES = {
    ("tumour", "original_shape_MeshVolume"): (60000.0, 15000.0),               # mm3: 60 +- 15 ml
    ("lungs_minus_tumour", "original_shape_Sphericity"): (0.40, 0.03),
    ("tumour", "original_shape_Elongation"): (0.65, 0.10),
    ("lungs_minus_tumour", "original_firstorder_Energy"): (2.0e11, 4.0e10),
    ("tumour", "original_firstorder_Entropy"): (4.0, 0.4),
    ("lungs_minus_tumour", "original_firstorder_Median"): (-780.0, 40.0),      # HU
    ("tumour", "original_firstorder_Range"): (1800.0, 400.0),                  # HU
    ("lungs_minus_tumour", "original_glcm_Correlation"): (0.72, 0.05),
    ("tumour", "original_glcm_Idm"): (0.45, 0.05),
    ("lungs_minus_tumour", "original_glcm_ClusterShade"): (3000.0, 1000.0),
    ("tumour", "original_gldm_DependenceEntropy"): (7.0, 0.4),
    ("lungs_minus_tumour", "original_gldm_LargeDependenceEmphasis"): (35.0, 8.0),
    ("tumour", "original_glrlm_RunEntropy"): (4.8, 0.3),
    ("lungs_minus_tumour", "original_glszm_SmallAreaEmphasis"): (0.70, 0.03),
    ("tumour", "original_ngtdm_Coarseness"): (5.0e-4, 1.2e-4),
    ("lungs_minus_tumour", "original_ngtdm_Busyness"): (25.0, 6.0),
}


@dataclass
class Cohort:
    table: pd.DataFrame          # one row per patient: case, features, outcome column
    risk: np.ndarray             # true probability of each patient (the oracle)
    outcome: str = "rp_grade2"


def linear_predictor(table: pd.DataFrame) -> np.ndarray:
    """The true log-odds of RP for each row (needs the RISK_MODEL columns, no missing values)."""
    lp = np.full(len(table), INTERCEPT)
    for col, (centre, scale, beta) in RISK_MODEL.items():
        lp += beta * (table[col].to_numpy(float) - centre) / scale
    return lp


def _non_increasing(values: np.ndarray) -> np.ndarray:
    """Each row of ``values`` (columns in rising dose) made non-increasing: its least-squares nearest non-increasing
    row (isotonic regression; a row already in order is unchanged), by the min-max formula
    ``y_i = min over s <= i of max over t >= i of mean(values[s..t])`` - a few columns, so every block at once."""
    k = values.shape[1]
    cumsum = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values, axis=1)], axis=1)
    mean = {(s, t): (cumsum[:, t + 1] - cumsum[:, s]) / (t - s + 1) for s in range(k) for t in range(s, k)}
    out = np.empty_like(values, dtype=float)
    for i in range(k):
        out[:, i] = np.min([np.max([mean[s, t] for t in range(i, k)], axis=0) for s in range(i + 1)], axis=0)
    return out


def make_cohort(n: int = 300, seed: int = 0, n_noise: int = 16, missing_rate: float = 0.02,
                outcome: str = "rp_grade2") -> Cohort:
    """``n`` synthetic patients; ``n_noise`` radiomic features without effect; a fraction
    ``missing_rate`` of clinical/radiomic values blanked *after* the outcome is drawn."""
    rng = np.random.default_rng(seed)
    from lungai.synthetic.tables import synthetic_patient_ids

    d = {"case": synthetic_patient_ids(n, seed)}
    d["clin_age_years"] = np.clip(rng.normal(66, 9, n), 35, 90).round(0)
    d["clin_sex_cat"] = rng.choice(["male", "female"], n, p=[0.6, 0.4])
    d["clin_histology_cat"] = rng.choice(["adenocarcinoma", "squamous", "other"], n, p=[0.5, 0.4, 0.1])
    d["clin_pack_years"] = np.clip(rng.normal(40, 15, n), 0, None).round(0)
    d["clin_hb_g_dl"] = rng.normal(13.0, 1.5, n).round(1)
    d["clin_tiffeneau_pct"] = np.clip(rng.normal(68, 10, n), 30, 95).round(1)
    d["clin_platelets_10e9_l"] = np.clip(rng.normal(260, 80, n), 50, None).round(0)
    d["clin_durvalumab"] = rng.binomial(1, 0.5, n)
    mld = np.clip(rng.normal(14.0, 3.5, n), 3.0, 25.0)
    d["dose_mld_gy"] = mld.round(2)
    # V5, V13, V20, V30: each around its share of the MLD with its own noise, then made a DVH (non-increasing in
    # dose) row by row (:func:`_non_increasing`: the nearest such values; QA rpfollow68: drawn independently, 328 of
    # 1500 rows (seed 21) rose with dose, V5 0.4 beside V13 14.4 %).  The same draws as before, so every other column
    # is unchanged.
    dvh = np.column_stack([np.clip(3.5 * mld + rng.normal(0, 8, n), 0, 100),
                           np.clip(2.55 * mld + rng.normal(0, 5, n), 0, 100),
                           np.clip(1.85 * mld + rng.normal(0, 4, n), 0, 100),
                           np.clip(1.2 * mld + rng.normal(0, 3, n), 0, 100)])
    dvh = _non_increasing(dvh).round(1)       # rounding keeps the order
    for j, level in enumerate((5, 13, 20, 30)):
        d[f"dose_v{level}_pct"] = dvh[:, j]
    for col, (centre, scale, _) in RISK_MODEL.items():
        if col.startswith("rad_"):
            d[col] = centre + scale * rng.normal(0, 1, n)
    noise = list(_NOISE_FEATURES.items())
    for k in range(n_noise):
        (segment, name), (centre, scale) = noise[k % len(noise)]
        suffix = "" if k < len(noise) else f"_{k}"
        d[f"rad_{segment}_{name}{suffix}"] = centre + scale * rng.normal(0, 1, n)
    table = pd.DataFrame(d)
    risk = 1.0 / (1.0 + np.exp(-linear_predictor(table)))
    table[outcome] = rng.binomial(1, risk)
    if missing_rate > 0:
        for col in table.columns:
            if col.startswith(("clin_", "rad_")):
                blank = rng.random(n) < missing_rate
                table[col] = table[col].where(~blank, other=np.nan) if table[col].dtype.kind in "fiu" \
                    else table[col].where(~blank, other=None)
    table.attrs[SYNTHETIC_ATTR] = True      # train_rp records it in the model card (training_data.synthetic)
    return Cohort(table=table, risk=risk, outcome=outcome)


SYNTHETIC_ATTR = "lungai_synthetic_cohort"
SYNTHETIC_SOURCE = "synthetic cohort (lungai.rp.make_cohort) - illustrative"
SYNTHETIC_NOTE = ("ILLUSTRATIVE: the model was trained on a synthetic cohort (lungai.rp.make_cohort), not on "
                  "patients - not a result for a patient")


def is_synthetic_cohort(table, paths=()) -> bool:
    """Whether a training table is a synthetic cohort of :func:`make_cohort`: the DataFrame it returned (its
    ``attrs``), or CSV file(s) ``paths`` lungai wrote as synthetic and unchanged since - ``lungai rp synth``'s, or
    the demo's ``rp_training_cohort.csv`` (:func:`lungai.synthetic.tables.all_synthetic`, as ``stage train``).  A copy,
    an edited file or a merge with other tables is not known as synthetic."""
    from lungai.synthetic.tables import all_synthetic

    if isinstance(table, pd.DataFrame):
        return bool(table.attrs.get(SYNTHETIC_ATTR))
    return all_synthetic(paths)


def oracle_auc(cohort: Cohort) -> float:
    """AUC of the true risk: the best any model can reach on this cohort."""
    return float(roc_auc_score(cohort.table[cohort.outcome], cohort.risk))


def make_noise_cohort(n: int = 60, n_features: int = 500, seed: int = 0, outcome: str = "rp_grade2",
                      prefixes=("rad_",)) -> pd.DataFrame:
    """Pure noise: ``n_features`` columns unrelated to a random outcome (half events), spread over
    ``prefixes`` in turn (e.g. clin_, dose_, rad_ to give every feature set columns) - leakage and
    selection-bias tests."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    table = pd.DataFrame(X, columns=[f"{prefixes[j % len(prefixes)]}noise_{j:04d}" for j in range(n_features)])
    y = np.zeros(n, int)
    y[rng.permutation(n)[: n // 2]] = 1
    table[outcome] = y
    return table
