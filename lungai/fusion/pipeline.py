"""One fusion model together with its fold-fitted preprocessing (EHR encoder, genes, gene graph).

:meth:`FusionPipeline.fit` fits everything on the given (training) patients only, so using it
inside cross-validation never lets test patients influence gene selection, the graph or imputation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk
import torch

from lungai.errors import InputError
from lungai.fusion import CT_NOT_GIVEN_NOTE, NOT_GIVEN, ct_crop  # noqa: F401  (NOT_GIVEN: as before)
from lungai.fusion.data import Cohort
from lungai.fusion.graph import coexpression_edges, edges_from_list
from lungai.fusion.models.fusion import ORDER, FusionModel
from lungai.fusion.preprocess import EHREncoder, GeneSelector, gene_selector
from lungai.fusion.train import deterministic, fit

_CROPS: dict = {}
_CUT: dict = {}        # (ct, mask, label) -> share of the tumour outside the crop (crop_outside_share)
# the note a fit records when no training patient had a CT: the CT branch stays in the network but never
# learnt anything, so a new patient's CT must not be fed to it (lungai.fusion.api.model_inputs)
CT_UNTRAINED_NOTE = "CT: no training patient has it, branch masked"
# a modality whose table the run was not given (lungai.fusion.data.load_cohort's report["given"]): said so, never
# as if the table's patients lacked it (QA stagefollow65: "RNA: fewer than 2 training patients have it" without --rna).
# NOT_GIVEN and CT_NOT_GIVEN_NOTE live in lungai.fusion (light: the Slicer panel words an unused CT with them)
RNA_NOT_GIVEN_NOTE = f"{NOT_GIVEN['rna']}: RNA branch left out"


def table_not_given(cohort, modality: str) -> bool:
    """Whether the run that loaded ``cohort`` was given no table of ``modality`` (False where that is unknown: a
    cohort not from :func:`lungai.fusion.data.load_cohort`)."""
    given = cohort.report.get("given")
    return given is not None and modality not in given


def ct_untrained(notes) -> bool:
    """Whether a fitted fusion network's ``notes`` say its CT branch never learnt (no training patient had a CT,
    or no CT manifest was given): the branch is then masked for every patient."""
    return any(n in (CT_UNTRAINED_NOTE, CT_NOT_GIVEN_NOTE) for n in list(notes or ()))


@dataclass
class FusionConfig:
    modalities: tuple = ORDER
    fusion: str = "concat"          # concat | simple | weighted
    emb: int = 32
    top_k: int = 2000               # genes kept (highest variance in the training fold)
    gene_variances: Optional[str] = None    # raw per-gene variances to rank by (for a standardised matrix)
    neighbours: int = 8             # co-expression graph degree
    edges: Optional[str] = None     # user edge list (gene_a, gene_b) instead of co-expression
    dropout: float = 0.2
    lr: float = 3e-3
    weight_decay: float = 1e-3
    epochs: int = 80
    patience: int = 20
    min_epochs: int = 20            # no early stop / best-epoch choice before this
    stop_on: str = "loss"           # early-stopping criterion: validation loss or macro-F1 ("f1")
    batch_size: int = 32
    gamma: float = 2.0
    val_fraction: float = 0.0       # > 0: early stopping on a stratified validation part (see docs)
    seed: int = 0

    def replace(self, **kw) -> "FusionConfig":
        return dataclasses.replace(self, **kw)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["modalities"] = list(self.modalities)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FusionConfig":
        d = dict(d)
        d["modalities"] = tuple(d["modalities"])
        return cls(**d)


def crop_for(ct_path, mask_path, label=None):
    """(crop array, reference grid) for one patient, cached per file pair (and tumour label)."""
    if isinstance(ct_path, sitk.Image):
        return ct_crop.tumour_crop(*ct_crop.load_ct_pair(ct_path, mask_path, label))
    key = (str(ct_path), str(mask_path), label)
    if key not in _CROPS:
        ct, mask = ct_crop.load_ct_pair(ct_path, mask_path, label)
        _CROPS[key] = ct_crop.tumour_crop(ct, mask)
    return _CROPS[key]


def crop_outside_share(ct_path, mask_path, label=None) -> float:
    """The share of the patient's tumour outside the crop (:func:`lungai.fusion.ct_crop.outside_crop_share`), cached
    per file pair (and tumour label) as :func:`crop_for`."""
    if isinstance(ct_path, sitk.Image):
        return ct_crop.outside_crop_share(ct_crop.load_ct_pair(ct_path, mask_path, label)[1])
    key = (str(ct_path), str(mask_path), label)
    if key not in _CUT:
        _CUT[key] = ct_crop.outside_crop_share(ct_crop.load_ct_pair(ct_path, mask_path, label)[1])
    return _CUT[key]


def _stratified_holdout(y: np.ndarray, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    n_val = int(round(len(y) * fraction))
    if fraction <= 0 or counts[counts > 0].min() < 2 or n_val < len(counts):
        return np.arange(len(y)), None
    tr, va = train_test_split(np.arange(len(y)), test_size=n_val, stratify=y, random_state=seed)
    return np.sort(tr), np.sort(va)


class FusionPipeline:
    def __init__(self, config: FusionConfig, classes):
        self.config, self.classes = config, list(classes)
        self.ehr_encoder: Optional[EHREncoder] = None
        self.genes: Optional[GeneSelector] = None
        self.edges = np.zeros((2, 0), np.int64)
        self.modalities: list = []
        self.model: Optional[FusionModel] = None
        self.history: dict = {}
        self.notes: list = []

    # ------------------------------------------------------------ arrays
    def arrays(self, cohort: Cohort) -> dict:
        ids = cohort.ids
        av = cohort.availability()
        n = len(ids)
        ehr = self.ehr_encoder.transform(cohort.ehr.reindex(ids)) if "ehr" in self.modalities \
            else np.zeros((n, 0), np.float32)
        genes = self.genes.transform(cohort.rna, ids) if "rna" in self.modalities else np.zeros((n, 0), np.float32)
        v = ct_crop.CROP_VOXELS
        ct = np.zeros((n, 2, v, v, v), np.float32) if "ct" in self.modalities else np.zeros((n, 0), np.float32)
        if "ct" in self.modalities:
            for i, pid in enumerate(ids):
                if pid in cohort.ct:
                    ct[i] = crop_for(*cohort.ct[pid])[0]
        avail = av[list(ORDER)].to_numpy(np.float32).copy()
        for k, m in enumerate(ORDER):
            if m not in self.modalities:
                avail[:, k] = 0.0
        return {"ehr": torch.as_tensor(ehr), "genes": torch.as_tensor(genes), "ct": torch.as_tensor(ct),
                "avail": torch.as_tensor(avail)}

    # ------------------------------------------------------------ fit / predict
    def fit(self, cohort: Cohort, progress=None) -> "FusionPipeline":
        cfg = self.config
        y = cohort.y(self.classes)
        av = cohort.availability()
        self.modalities = [m for m in ORDER if m in cfg.modalities]
        if "ehr" in self.modalities:
            self.ehr_encoder = EHREncoder().fit(cohort.ehr.reindex(cohort.ids))
            if self.ehr_encoder.n_features == 0:
                self.modalities.remove("ehr")
                self.notes.append("EHR: no usable column, branch left out")
        if "rna" in self.modalities:
            if cohort.rna is None or int(av["rna"].sum()) < 2:
                self.modalities.remove("rna")
                self.notes.append(RNA_NOT_GIVEN_NOTE if cohort.rna is None
                                  else "RNA: fewer than 2 training patients have it, branch left out")
            else:
                self.genes = gene_selector(cfg.top_k, cfg.gene_variances, cohort.report).fit(cohort.rna)
                if self.genes.note:
                    self.notes.append(self.genes.note)
                if cfg.edges:
                    self.edges = edges_from_list(cfg.edges, self.genes.genes)
                else:
                    x = self.genes.transform(cohort.rna, list(cohort.rna.index))
                    self.edges = coexpression_edges(x, cfg.neighbours)
        if "ct" in self.modalities and int(av["ct"].sum()) == 0:
            self.notes.append(CT_NOT_GIVEN_NOTE if table_not_given(cohort, "ct") else CT_UNTRAINED_NOTE)
        if not self.modalities:
            raise InputError("no modality is usable for training", "give EHR columns, RNA or CT for the patients")
        arrays = self.arrays(cohort)
        tr, va = _stratified_holdout(y, cfg.val_fraction, cfg.seed)
        with deterministic(cfg.seed):
            self.model = FusionModel(len(self.classes), self.modalities,
                                     ehr_dim=self.ehr_encoder.n_features if self.ehr_encoder else 0,
                                     n_genes=len(self.genes.genes) if self.genes else 0,
                                     edge_index=self.edges, emb=cfg.emb, fusion=cfg.fusion, dropout=cfg.dropout)
            sub = lambda idx: {k: v[torch.as_tensor(idx)] for k, v in arrays.items()}  # noqa: E731
            self.history = fit(self.model, sub(tr), y[tr], sub(va) if va is not None else None,
                               y[va] if va is not None else None, n_classes=len(self.classes),
                               epochs=cfg.epochs, patience=cfg.patience, lr=cfg.lr,
                               weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, gamma=cfg.gamma,
                               min_epochs=cfg.min_epochs, stop_on=cfg.stop_on,
                               seed=cfg.seed, progress=progress)
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        a = self.arrays(cohort)
        self.model.eval()
        with torch.no_grad():
            return torch.softmax(self.model(a["ehr"], a["genes"], a["ct"], a["avail"]), dim=1).numpy()

    def embed(self, cohort: Cohort) -> np.ndarray:
        a = self.arrays(cohort)
        self.model.eval()
        with torch.no_grad():
            return self.model.fused(a["ehr"], a["genes"], a["ct"], a["avail"]).numpy()
