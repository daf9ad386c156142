"""A model directory: ``model.json`` (config, members, training summary, metrics, calibration)
plus one ``member_<k>.safetensors`` per ensemble member.  No pickle.

A *model choice* directory holds only a ``model.json`` of format ``lungai-seg-choice-1`` that names two or
more models (shipped names or folders relative to it): each segments the case and the result with the
highest calibrated confidence is kept (:mod:`lungai.seg.choice`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from lungai.errors import InputError
from lungai.model_files import load_safetensors
from lungai.seg.config import SegConfig
from lungai.seg.networks import build_network, load_own_state, own_state

MODEL_JSON = "model.json"
FORMAT = "lungai-seg-1"
CHOICE_FORMAT = "lungai-seg-choice-1"


def member_file(k: int) -> str:
    return f"member_{k}.safetensors"


def save_model(model_dir, cfg: SegConfig, state_dicts: list, meta: dict) -> Path:
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for k, sd in enumerate(state_dicts):
        save_file({n: t.detach().contiguous().cpu() for n, t in sd.items()}, str(out / member_file(k)))
        files.append(member_file(k))
    doc = {"format": FORMAT, "config": cfg.to_dict(), "member_files": files, **meta}
    write_json(out / MODEL_JSON, doc)
    return out


def finite_json(obj):
    """``obj`` with every non-finite float (NaN, +-inf; numpy floats too) replaced by None, so that the JSON
    written is strict (``NaN`` is not JSON); readers take null as "not available"."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None
    return obj


def write_json(path, doc: dict) -> None:
    """Write ``doc`` as strict JSON (non-finite floats as null, :func:`finite_json`), atomically: model.json,
    result.json, reports."""
    from lungai.io.outputs import writing

    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(finite_json(doc), indent=2, default=float, allow_nan=False) + "\n"
    with writing(path):
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


def is_number(value) -> bool:
    """A finite number (not None / null, not NaN): e.g. an r that model.json may record as null."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(float(value))


def read_meta(model_dir) -> dict:
    path = Path(model_dir) / MODEL_JSON
    if not path.is_file():
        from lungai.seg.resources import shipped_models

        raise InputError(f"{model_dir} is not a LungAI segmentation model (no {MODEL_JSON})",
                         "give a folder written by `lungai train-seg`, the name of a shipped model "
                         f"({', '.join(shipped_models()) or 'none installed'}), or leave --model out for the default model")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") not in (FORMAT, CHOICE_FORMAT):
        raise InputError(f"{path} has format {doc.get('format')!r}, expected {FORMAT!r} or {CHOICE_FORMAT!r}",
                         "retrain the model with this version of `lungai train-seg`")
    return doc


def load_model(model_dir):
    """(config, list of eval-mode networks, model.json dict); for a model-choice folder a
    :class:`lungai.seg.choice.ModelChoice` of such models."""
    doc = read_meta(model_dir)
    if doc["format"] == CHOICE_FORMAT:
        from lungai.seg.choice import load_choice

        return load_choice(model_dir, doc)
    cfg = SegConfig.from_dict(doc["config"])
    nets = []
    for name in doc["member_files"]:
        net = build_network(cfg)
        load_own_state(net, load_safetensors(Path(model_dir) / name, "segmentation member weights"))
        net.eval()
        nets.append(net)
    return cfg, nets, doc


def clone_state(model: torch.nn.Module) -> dict:
    return {n: t.detach().to("cpu", copy=True) for n, t in own_state(model).items()}
