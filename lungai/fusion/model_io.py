"""Locked models on disk, no pickle: safetensors (torch weights, gene statistics, graph),
skops (scikit-learn EHR encoders and the baseline MLP) and JSON (everything else).

A model folder holds ``stage_model.json``, ``fusion.safetensors``, ``ehr_encoder.skops`` (when the
EHR branch is used) and ``baseline.skops`` (when a baseline was locked too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lungai.errors import InputError
from lungai.model_files import SKLEARN_EXTRA_TYPES, load_safetensors, load_skops
from lungai.fusion.baseline import BaselinePipeline
from lungai.fusion.models.fusion import FusionModel
from lungai.fusion.pipeline import FusionConfig, FusionPipeline
from lungai.fusion.preprocess import EHREncoder, GeneSelector

FORMAT = "lungai-stage-model"
VERSION = 1
META = "stage_model.json"
# Types outside skops' default trusted set that a stage model legitimately contains (exact names,
# never prefixes: "builtins." would let builtins.exec through).
TRUSTED_TYPES = SKLEARN_EXTRA_TYPES


def _skops_dump(obj, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path)


def _skops_load(path: Path):
    return load_skops(path, TRUSTED_TYPES, "stage model file", "only load model folders written by `lungai stage train`")


def check_output_dir(out: Path, marker: str, inputs=()) -> Path:
    out = Path(out)
    for p in inputs:
        if p and Path(p).resolve() == out.resolve():
            raise InputError(f"the output folder {out} is one of the inputs", "choose a new output folder")
    if (out / marker).exists():
        raise InputError(f"{out / marker} already exists", "choose a new output folder (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def save(out_dir, pipeline: FusionPipeline, baseline: Optional[BaselinePipeline] = None,
         extra: Optional[dict] = None) -> Path:
    from safetensors.torch import save_file

    out = check_output_dir(Path(out_dir), META)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in pipeline.model.state_dict().items()}
    tensors["graph.edge_index"] = torch.as_tensor(pipeline.edges, dtype=torch.long).contiguous()
    if pipeline.genes is not None:
        for k, v in pipeline.genes.tensors().items():
            tensors[f"genes.{k}"] = torch.tensor(np.array(v, np.float32))
    save_file(tensors, str(out / "fusion.safetensors"))
    if pipeline.ehr_encoder is not None and pipeline.ehr_encoder.transformer is not None:
        _skops_dump(pipeline.ehr_encoder.transformer, out / "ehr_encoder.skops")
    meta = {"format": FORMAT, "version": VERSION, "classes": pipeline.classes,
            "config": pipeline.config.to_json(), "modalities": pipeline.modalities,
            "ehr": pipeline.ehr_encoder.to_json() if pipeline.ehr_encoder else None,
            "genes": pipeline.genes.to_json() if pipeline.genes else None,
            "notes": pipeline.notes, "history": {k: v for k, v in pipeline.history.items() if k != "train_loss"},
            "baseline": None}
    if baseline is not None:
        _skops_dump({"encoder": baseline.encoder.transformer, "mlp": baseline.mlp}, out / "baseline.skops")
        meta["baseline"] = {"encoder": baseline.encoder.to_json(), "hidden": baseline.hidden,
                            "alpha": baseline.alpha, "use_image": baseline.use_image, "seed": baseline.seed}
    meta.update(extra or {})
    (out / META).write_text(json.dumps(meta, indent=2, default=str))
    return out


def load(model_dir):
    """(FusionPipeline, BaselinePipeline or None, metadata dict)."""
    d = Path(model_dir)
    if not (d / META).is_file():
        raise InputError(f"{d} is not a locked stage model (no {META})", "pass the folder written by `lungai stage train`")
    meta = json.loads((d / META).read_text())
    if meta.get("format") != FORMAT or meta.get("version", 0) > VERSION:
        raise InputError(f"{d / META} is not a stage model this version can read", "retrain with `lungai stage train`")
    tensors = load_safetensors(d / "fusion.safetensors", "stage model weights")
    pipe = FusionPipeline(FusionConfig.from_json(meta["config"]), meta["classes"])
    pipe.modalities, pipe.notes = list(meta["modalities"]), list(meta.get("notes", []))
    pipe.edges = tensors["graph.edge_index"].numpy()
    if meta.get("ehr"):
        pipe.ehr_encoder = EHREncoder.from_json(meta["ehr"], _skops_load(d / "ehr_encoder.skops"))
    if meta.get("genes"):
        pipe.genes = GeneSelector.from_saved(meta["genes"], {k: tensors[f"genes.{k}"].numpy()
                                                             for k in ("gene_mean", "gene_sd")})
    cfg = pipe.config
    pipe.model = FusionModel(len(pipe.classes), pipe.modalities,
                             ehr_dim=pipe.ehr_encoder.n_features if pipe.ehr_encoder else 0,
                             n_genes=len(pipe.genes.genes) if pipe.genes else 0, edge_index=pipe.edges,
                             emb=cfg.emb, fusion=cfg.fusion, dropout=cfg.dropout)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    pipe.model.load_state_dict(state)
    pipe.model.eval()
    baseline = None
    if meta.get("baseline"):
        b = meta["baseline"]
        parts = _skops_load(d / "baseline.skops")
        baseline = BaselinePipeline(meta["classes"], hidden=b["hidden"], alpha=b["alpha"], seed=b["seed"],
                                    use_image=b["use_image"])
        baseline.encoder = EHREncoder.from_json(b["encoder"], parts["encoder"])
        baseline.mlp = parts["mlp"]
    return pipe, baseline, meta


def rna_gene_check(pipe: FusionPipeline, rna, max_missing: float = 0.5) -> dict:
    """How many of the locked model's genes the new RNA matrix lacks; they are imputed as 0
    (= the training mean z-score).  Raises when more than ``max_missing`` of them are missing."""
    if pipe.genes is None or rna is None:
        return {"n_model_genes": len(pipe.genes.genes) if pipe.genes else 0, "missing": []}
    missing = pipe.genes.missing_genes(rna)
    n = len(pipe.genes.genes)
    if len(missing) > max_missing * n:
        raise InputError(f"{len(missing)} of the model's {n} genes are missing from the RNA matrix "
                         f"(e.g. {', '.join(missing[:5])})",
                         "check that gene identifiers match the training cohort (same symbols), "
                         f"or allow more with --max-missing-genes (now {max_missing:g})")
    return {"n_model_genes": n, "missing": missing}
