"""Plain tabular baselines (scikit-learn) on the same inputs as the fusion model.

Every baseline sees one table per patient: the EHR columns (``EHREncoder``: median imputation +
missing indicators + scaling, one-hot categories), simple tumour image features (SimpleITK
shape/intensity statistics, ``ct_crop.image_features``; imputed for patients without CT) and the
top-k variance genes of the training fold z-scored with the training mean/SD (``GeneSelector``; 0
for patients without RNA, plus an ``rna_available`` indicator).  All of it is fitted on the training
patients only.

Kinds (:data:`KINDS`):

- ``logreg``  L2-regularised multinomial logistic regression, class-balanced weights;
- ``forest``  random forest (500 trees, class-balanced bootstrap weights);
- ``mlp``     one-hidden-layer MLP, class-balanced sample weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.fusion import ct_crop
from lungai.fusion.data import Cohort
from lungai.fusion.outputs import KINDS  # noqa: F401 - the one list, light: the output names of stage need it
from lungai.fusion.preprocess import EHREncoder, GeneSelector, gene_selector

BRANCHES = {"ehr": "EHR MLP", "rna": "RNA GAT", "ct": "CT CNN"}


def fusion_label(trained, configured=tuple(BRANCHES)) -> str:
    """The fusion row's name from the branches that were actually trained, e.g. ``fusion network (EHR MLP +
    RNA GAT, CT masked)`` for a cohort without CT; a configured branch with no training data is named as
    masked (CT: in the network, never trained) or left out."""
    on = [BRANCHES[m] for m in BRANCHES if m in trained]
    off = [f"{m.upper()} {'masked' if m == 'ct' else 'left out'}" for m in BRANCHES
           if m in configured and m not in trained]
    return f"fusion network ({' + '.join(on) or 'no branch'}{''.join(', ' + o for o in off)})"


def pipeline_branches(modalities, notes=()) -> list:
    """Branches a fitted fusion network trained: its modalities less a CT branch no training patient fed."""
    from lungai.fusion.pipeline import ct_untrained

    return [m for m in modalities if not (m == "ct" and ct_untrained(notes))]


def cohort_branches(modalities, cohort: Cohort) -> list:
    """Branches a fusion network configured with ``modalities`` trains on ``cohort`` (as ``FusionPipeline.fit``
    decides: EHR with any value, RNA of >= 2 patients, CT of >= 1 patient)."""
    av = cohort.availability()
    have = {"ehr": cohort.ehr.shape[1] > 0 and bool(cohort.ehr.notna().any().any()),
            "rna": cohort.rna is not None and int(av["rna"].sum()) >= 2, "ct": int(av["ct"].sum()) > 0}
    return [m for m in BRANCHES if m in modalities and have[m]]


LABELS = {"logreg": "logistic regression (L2, multinomial)", "forest": "random forest",
          "mlp": "MLP (one hidden layer)", "fusion": fusion_label(tuple(BRANCHES)),
          # `stage cv --single-modality`: the fusion network with one branch alone (its rows `<m>_only`)
          "ehr_only": "EHR only (MLP)", "rna_only": "RNA only (GAT)", "ct_only": "CT only (3D CNN)"}


def model_labels(pipe) -> dict:
    """{model name: its public name} of a locked model whose fusion network is ``pipe`` (the names of ``stage train``'s
    comparison and of ``stage validate``'s confusion plots): :data:`LABELS`, the fusion row named by the branches it
    trained (:func:`fusion_label`)."""
    return {**LABELS, "fusion": fusion_label(pipeline_branches(pipe.modalities, pipe.notes), pipe.config.modalities)}


DEFAULTS = {"logreg": {"C": 0.1}, "forest": {"min_leaf": 3}, "mlp": {"hidden": 32, "alpha": 1e-2}}
N_TREES = 500

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


def _estimator(kind: str, params: dict, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind == "logreg":        # lbfgs on >2 classes is the multinomial (softmax) model
        return LogisticRegression(C=params["C"], class_weight="balanced", max_iter=5000)
    if kind == "forest":
        return RandomForestClassifier(n_estimators=N_TREES, min_samples_leaf=params["min_leaf"],
                                      class_weight="balanced_subsample", random_state=seed, n_jobs=1)
    if kind == "mlp":
        return MLPClassifier(hidden_layer_sizes=(params["hidden"],), alpha=params["alpha"], max_iter=600,
                             learning_rate_init=3e-3, random_state=seed)
    raise ValueError(f"unknown baseline kind {kind!r} (one of {', '.join(KINDS)})")


class BaselinePipeline:
    """One tabular baseline with its fold-fitted preprocessing; ``params`` as in :data:`DEFAULTS`."""

    def __init__(self, classes, kind: str = "logreg", seed: int = 0, use_image: bool = True,
                 top_k: int = 2000, gene_variances=None, use_ehr: bool = True, use_rna: bool = True, **params):
        if kind not in KINDS:
            raise ValueError(f"unknown baseline kind {kind!r} (one of {', '.join(KINDS)})")
        self.classes, self.kind, self.seed, self.use_image, self.top_k = list(classes), kind, seed, use_image, top_k
        self.gene_variances = gene_variances
        # the modalities it may use (--modalities, as the fusion network: lungai.fusion.cv.make_model); before, a
        # baseline used EHR, RNA and CT whatever --modalities left out of the network it is compared with
        self.use_ehr, self.use_rna = use_ehr, use_rna
        self.params = {**DEFAULTS[kind], **params}
        self.encoder: EHREncoder | None = None
        self.genes: GeneSelector | None = None
        self.model = None

    def frame(self, cohort: Cohort) -> pd.DataFrame:
        df = cohort.ehr.reindex(cohort.ids) if self.use_ehr else pd.DataFrame(index=pd.Index(cohort.ids))
        if self.use_image and cohort.ct:
            df = pd.concat([df, image_feature_frame(cohort)], axis=1)
        return df

    def matrix(self, cohort: Cohort) -> np.ndarray:
        df = self.frame(cohort)
        for c in self.encoder.numeric + self.encoder.categorical:
            if c not in df.columns:
                df[c] = np.nan
        parts = [self.encoder.transform(df)]
        if self.genes is not None:
            has = np.array([cohort.rna is not None and i in cohort.rna.index for i in cohort.ids], np.float32)
            parts += [self.genes.transform(cohort.rna, cohort.ids), has[:, None]]
        x = np.concatenate(parts, axis=1)
        return x if x.shape[1] else np.zeros((len(cohort.ids), 1), np.float32)

    def fit(self, cohort: Cohort) -> "BaselinePipeline":
        y = cohort.y(self.classes)
        self.encoder = EHREncoder().fit(self.frame(cohort))
        self.genes = gene_selector(self.top_k, self.gene_variances, cohort.report).fit(cohort.rna) \
            if self.use_rna and cohort.rna is not None and len(cohort.rna) >= 2 else None
        x = self.matrix(cohort)
        self.model = _estimator(self.kind, self.params, self.seed)
        if self.kind == "mlp":          # MLPClassifier has no class_weight
            counts = np.bincount(y, minlength=len(self.classes)).astype(float)
            self.model.fit(x, y, sample_weight=(len(y) / (len(self.classes) * np.maximum(counts, 1)))[y])
        else:
            self.model.fit(x, y)
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        p = np.zeros((len(cohort.ids), len(self.classes)))
        p[:, self.model.classes_] = self.model.predict_proba(self.matrix(cohort))
        return p

    # ------------------------------------------------------------ locked-model files (model_io)
    def to_json(self) -> dict:
        return {"kind": self.kind, "params": self.params, "seed": self.seed, "use_image": self.use_image,
                "use_ehr": self.use_ehr, "use_rna": self.use_rna, "top_k": self.top_k,
                "encoder": self.encoder.to_json(),
                "genes": self.genes.to_json() if self.genes is not None else None}

    def parts(self) -> dict:
        """The fitted objects saved with skops (scikit-learn estimators and numpy arrays only)."""
        out = {"encoder": self.encoder.transformer, "model": self.model}
        if self.genes is not None:
            out.update(self.genes.tensors())
        return out

    @classmethod
    def from_saved(cls, classes, meta: dict, parts: dict) -> "BaselinePipeline":
        b = cls(classes, meta["kind"], seed=meta["seed"], use_image=meta["use_image"], top_k=meta["top_k"],
                use_ehr=meta.get("use_ehr", True), use_rna=meta.get("use_rna", True), **meta["params"])
        b.encoder = EHREncoder.from_json(meta["encoder"], parts["encoder"])
        b.model = parts["model"]
        if meta.get("genes"):
            b.genes = GeneSelector.from_saved(meta["genes"], parts)
        return b
