"""Explanations of a fitted fusion model.

- :func:`gene_shapley` - Shapley values of the gene inputs (captum ``GradientShap``, an expected-
  gradients approximation of SHAP values; exact sampling over thousands of genes is too slow on a CPU),
  per patient and summarised over the cohort (mean |value|): the top genes with their values.
- :func:`grad_cam` - 3D Grad-CAM (captum ``LayerGradCam``) of the class logit on the CT branch's deepest
  convolution, placed on the crop at its receptive-field centres (:func:`cam_on_crop`) and resampled onto the
  input CT grid: a volume aligned with the CT
  (an all-zero map is said, :func:`empty_cam_note`).
- :func:`tsne_points` - t-SNE (scikit-learn) of the fused embeddings.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import torch

from lungai.errors import InputError
from lungai.fusion import ct_crop
from lungai.fusion.data import Cohort
from lungai.fusion.pipeline import FusionPipeline


def _probs(model):
    def by_genes(genes, ehr, ct, avail):
        return torch.softmax(model(ehr, genes, ct, avail), dim=1)

    def by_ct(ct, ehr, genes, avail):
        return torch.softmax(model(ehr, genes, ct, avail), dim=1)

    return by_genes, by_ct


def _logits_by_ct(model):
    """The network's class scores before the softmax, as a function of the CT input (Grad-CAM's target, as in
    Selvaraju et al.): the softmax of a confident prediction saturates, its gradient vanishes and the map is 0."""
    def by_ct(ct, ehr, genes, avail):
        return model(ehr, genes, ct, avail)

    return by_ct


@contextlib.contextmanager
def seeded_rngs(seed: int):
    """numpy's and torch's global random generators seeded with ``seed`` inside, restored on leaving: captum's
    ``GradientShap`` draws its interpolation points with ``np.random`` and its noise with torch, so an attribution
    is reproducible only with both seeded - and the caller's own random streams are left as they were."""
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            np.random.seed(seed % (2 ** 32))
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)


def patient_seed(seed: int, patient_id) -> int:
    """The random seed of one patient's attribution: ``seed`` plus a stable hash (CRC-32) of the id, so a patient's
    values do not depend on the other patients of the cohort or on its place among them."""
    import zlib

    return (int(seed) + zlib.crc32(str(patient_id).encode("utf-8"))) % (2 ** 32)


def gene_shapley(pipe: FusionPipeline, cohort: Cohort, n_samples: int = 32, seed: int = 0,
                 target: str = "predicted") -> pd.DataFrame:
    """Patients (with RNA) x genes Shapley values for the predicted class (or ``target="label"``); each patient's
    random draws are seeded by :func:`patient_seed`: the same values alone as in a cohort."""
    from captum.attr import GradientShap

    if "rna" not in pipe.modalities or pipe.genes is None:
        raise InputError("the model has no RNA branch", "train with RNA data to rank genes")
    av = cohort.availability()
    ids = [i for i in cohort.ids if av.loc[i, "rna"]]
    if not ids:
        raise InputError("no patient has RNA data", "give an RNA matrix that joins the patient IDs")
    sub = cohort.subset(ids)
    a = pipe.arrays(sub)
    model = pipe.model.eval()
    with torch.no_grad():
        pred = model(a["ehr"], a["genes"], a["ct"], a["avail"]).argmax(1)
    if target == "label" and sub.labels is not None:
        pred = torch.as_tensor(sub.y(pipe.classes))
    by_genes, _ = _probs(model)
    gs = GradientShap(by_genes)
    baseline = torch.zeros(1, a["genes"].shape[1])        # training mean expression (z = 0)
    rows = []
    for i in range(len(ids)):
        sl = slice(i, i + 1)
        with seeded_rngs(patient_seed(seed, ids[i])):     # the same values on every run (:func:`seeded_rngs`)
            attr = gs.attribute(a["genes"][sl], baselines=baseline, target=int(pred[i]), n_samples=n_samples,
                                stdevs=0.1, additional_forward_args=(a["ehr"][sl], a["ct"][sl], a["avail"][sl]))
        rows.append(attr.detach().numpy()[0])
    df = pd.DataFrame(np.array(rows), index=pd.Index(ids, name="patient_id"), columns=pipe.genes.genes)
    df.attrs["explained_class"] = [pipe.classes[int(k)] for k in pred]
    return df


def top_genes_per_patient(shap: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    rows = []
    classes = shap.attrs.get("explained_class", [None] * len(shap))
    for (pid, row), cls in zip(shap.iterrows(), classes):
        order = np.argsort(-row.abs().to_numpy(), kind="stable")[:k]
        for rank, j in enumerate(order, 1):
            rows.append({"patient_id": pid, "class": cls, "rank": rank, "gene": shap.columns[j],
                         "shapley_value": float(row.iloc[j])})
    return pd.DataFrame(rows)


def top_genes_cohort(shap: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    mean_abs = shap.abs().mean(axis=0)
    order = np.argsort(-mean_abs.to_numpy(), kind="stable")[:k]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "gene": shap.columns[order],
                         "mean_abs_shapley": mean_abs.iloc[order].to_numpy(),
                         "mean_shapley": shap.mean(axis=0).iloc[order].to_numpy()})


def grad_cam(pipe: FusionPipeline, cohort: Cohort, patient_id: str, target=None) -> tuple:
    """(Grad-CAM image on the patient's CT grid, normalised there to [0, 1] (maximum 1), explained class name).  The
    map explains the class logit (standard Grad-CAM); it is all 0 where no CT region speaks for the class
    (:func:`empty_cam_note`)."""
    import SimpleITK as sitk
    from captum.attr import LayerGradCam

    if "ct" not in pipe.modalities:
        raise InputError("the model has no CT branch", "train with CT data for Grad-CAM")
    if patient_id not in cohort.ct:
        raise InputError(f"patient {patient_id} has no CT", "give a CT and tumour mask for this patient")
    ct, mask = ct_crop.load_ct_pair(*cohort.ct[patient_id])
    _, ref = ct_crop.tumour_crop(ct, mask)
    a = pipe.arrays(cohort.subset([patient_id]))
    model = pipe.model.eval()
    with torch.no_grad():
        logits = model(a["ehr"], a["genes"], a["ct"], a["avail"])
    cls = int(logits.argmax(1)) if target is None else pipe.classes.index(target)
    cam = LayerGradCam(_logits_by_ct(model), model.encoders["ct"].last_conv)
    attr = cam.attribute(a["ct"], target=cls, additional_forward_args=(a["ehr"], a["genes"], a["avail"]),
                         relu_attributions=True)
    # scaled on the crop first (float64: a tiny, float32-denormal maximum divides exactly), then resampled onto the
    # CT grid and normalised there: the written volume's maximum is 1 (linear resampling lowers a crop-grid peak)
    on_ct = ct_crop.crop_to_ct_grid(unit_max(cam_on_crop(attr, ref, model.encoders["ct"])), ref, ct)
    out = sitk.GetImageFromArray(unit_max(sitk.GetArrayViewFromImage(on_ct)))
    out.CopyInformation(on_ct)
    return out, pipe.classes[cls]


def unit_max(values) -> np.ndarray:
    """``values`` / their maximum, clipped to [0, 1] (float32); all 0 when the maximum is not positive (a blank
    map: :func:`empty_cam_note`)."""
    vol = np.asarray(values, dtype=np.float64)
    top = float(vol.max(initial=0.0))
    vol = np.clip(vol / top, 0.0, 1.0) if np.isfinite(top) and top > 0 else np.zeros_like(vol)
    return vol.astype(np.float32)


def cam_on_crop(attr, ref, encoder) -> np.ndarray:
    """A Grad-CAM map of ``encoder``'s deepest convolution (tensor (1, 1, k, j, i)) on the crop grid ``ref``: each
    feature voxel at the centre of its receptive field (:meth:`CTEncoder.feature_grid`,
    :func:`ct_crop.feature_map_to_crop`)."""
    stride, offset = encoder.feature_grid()
    return ct_crop.feature_map_to_crop(attr.detach().numpy()[0, 0], ref, stride, offset)


def empty_cam_note(cam, explained_class: str):
    """The note for a Grad-CAM map that is 0 everywhere (None for any other): no CT region raises the class's
    score (the positive part of the map is kept), so the volume is blank by the method, not by an error."""
    import SimpleITK as sitk

    if float(np.max(sitk.GetArrayViewFromImage(cam), initial=0.0)) > 0:
        return None
    return (f"Grad-CAM: no positive CT evidence for class {explained_class} (the map is 0 everywhere: no region of "
            "the CT crop - its image or tumour-mask channel - raises the score of this class)")


TSNE_MIN_PATIENTS = 5     # t-SNE (perplexity (n - 1) / 3) of fewer patients is not drawn


def tsne_points(pipe: FusionPipeline, cohort: Cohort, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    emb = pipe.embed(cohort)
    if len(emb) < TSNE_MIN_PATIENTS:
        raise InputError(f"t-SNE needs at least {TSNE_MIN_PATIENTS} patients (got {len(emb)})",
                         "explain a larger cohort")
    perplexity = float(min(30.0, (len(emb) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(emb)


