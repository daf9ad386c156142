"""Baseline: an MLP (scikit-learn) on tumour image features + clinical (EHR) columns.

Image features are SimpleITK shape/intensity statistics of the tumour (``ct_crop.image_features``);
patients without CT get them imputed (median + missing indicator), like any missing EHR value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.fusion import ct_crop
from lungai.fusion.data import Cohort
from lungai.fusion.preprocess import EHREncoder

_FEATURES: dict = {}


def image_feature_frame(cohort: Cohort) -> pd.DataFrame:
    rows = []
    for pid in cohort.ids:
        if pid in cohort.ct and isinstance(cohort.ct[pid][0], sitk.Image):
            rows.append(ct_crop.image_features(*ct_crop.load_ct_pair(*cohort.ct[pid])))
        elif pid in cohort.ct:
            key = tuple(map(str, cohort.ct[pid]))
            if key not in _FEATURES:
                _FEATURES[key] = ct_crop.image_features(*ct_crop.load_ct_pair(*cohort.ct[pid]))
            rows.append(_FEATURES[key])
        else:
            rows.append({k: np.nan for k in ct_crop.IMAGE_FEATURES})
    return pd.DataFrame(rows, index=pd.Index(cohort.ids, name="patient_id"), columns=list(ct_crop.IMAGE_FEATURES))


class BaselinePipeline:
    def __init__(self, classes, hidden: int = 32, alpha: float = 1e-2, seed: int = 0, use_image: bool = True):
        self.classes, self.hidden, self.alpha, self.seed, self.use_image = list(classes), hidden, alpha, seed, use_image
        self.encoder: EHREncoder | None = None
        self.mlp = None

    def frame(self, cohort: Cohort) -> pd.DataFrame:
        df = cohort.ehr.reindex(cohort.ids)
        if self.use_image and cohort.ct:
            df = pd.concat([df, image_feature_frame(cohort)], axis=1)
        return df

    def fit(self, cohort: Cohort) -> "BaselinePipeline":
        from sklearn.neural_network import MLPClassifier

        y = cohort.y(self.classes)
        df = self.frame(cohort)
        self.encoder = EHREncoder().fit(df)
        x = self.encoder.transform(df)
        counts = np.bincount(y, minlength=len(self.classes)).astype(float)
        weight = (len(y) / (len(self.classes) * np.maximum(counts, 1)))[y]
        self.mlp = MLPClassifier(hidden_layer_sizes=(self.hidden,), alpha=self.alpha, max_iter=600,
                                 learning_rate_init=3e-3, random_state=self.seed)
        if x.shape[1] == 0:
            x = np.zeros((len(y), 1), np.float32)
        self.mlp.fit(x, y, sample_weight=weight)
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        df = self.frame(cohort)
        for c in self.encoder.numeric + self.encoder.categorical:
            if c not in df.columns:
                df[c] = np.nan
        x = self.encoder.transform(df)
        if x.shape[1] == 0:
            x = np.zeros((len(df), 1), np.float32)
        p = np.zeros((len(df), len(self.classes)))
        p[:, self.mlp.classes_] = self.mlp.predict_proba(x)
        return p
