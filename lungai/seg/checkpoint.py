"""Resumable training state of one member, without pickle: weights, best weights and Adam state
in one .safetensors file, epoch counters and history in a JSON file next to it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lungai.errors import InputError
from lungai.model_files import load_safetensors, safetensors_metadata, save_safetensors

from lungai.seg.networks import load_own_state, own_state


def paths(ckpt_dir, k: int) -> tuple:
    d = Path(ckpt_dir)
    return d / f"member_{k}.last.safetensors", d / f"member_{k}.state.json"


def save(ckpt_dir, k: int, net, best_state: dict, opt, state: dict) -> None:
    tensors_path, json_path = paths(ckpt_dir, k)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    t = {f"net::{n}": v.detach().cpu().contiguous() for n, v in own_state(net).items()}
    t.update({f"best::{n}": v.cpu().contiguous() for n, v in best_state.items()})
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for name, v in st.items():
            t[f"opt::{idx}::{name}"] = torch.as_tensor(v).detach().cpu().contiguous().clone()
    doc = dict(state, param_groups=osd["param_groups"])
    text = json.dumps(doc, indent=1)
    tmp = tensors_path.with_suffix(".tmp")
    # the state goes into the weights' file too: the two files cannot be replaced at once, and a run killed between
    # them left new weights beside the state of the epoch before (:func:`load` takes the weights' own)
    save_safetensors(t, tmp, metadata={STATE_KEY: text})
    tmp.replace(tensors_path)
    _write_state(json_path, text)


STATE_KEY = "lungai_member_state"      # the member's state (JSON) in its checkpoint's safetensors header


def _write_state(json_path: Path, text: str) -> None:
    tmp = json_path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(json_path)


def repair_state(ckpt_dir, k: int) -> None:
    """Rewrites member ``k``'s state.json from the state its weights' file holds when the two differ (a run killed
    between replacing the weights and the state of an epoch): the readers of the state alone (the resume's checks,
    the notes) then see the epoch the weights are at.  Checkpoints written before the state was kept with the
    weights are left as they are."""
    tensors_path, json_path = paths(ckpt_dir, k)
    if not (tensors_path.is_file() and json_path.is_file()):
        return
    try:
        text = safetensors_metadata(tensors_path, "training checkpoint").get(STATE_KEY)
        if text is None or text == json_path.read_text(encoding="utf-8"):
            return
    except (InputError, OSError, UnicodeDecodeError):
        return                         # not a checkpoint of train-seg's: refused, named, where the folder is checked
    _write_state(json_path, text)


def load(ckpt_dir, k: int, net, opt):
    """Restores net and optimiser; returns (best_state, state dict) or None when there is no checkpoint."""
    tensors_path, json_path = paths(ckpt_dir, k)
    if not (tensors_path.is_file() and json_path.is_file()):
        return None
    t = load_safetensors(tensors_path, "training checkpoint")
    repair_state(ckpt_dir, k)         # the state saved with these weights (the state.json may be an epoch behind)
    state = json.loads(json_path.read_text(encoding="utf-8"))
    try:
        load_own_state(net, {n[5:]: v for n, v in t.items() if n.startswith("net::")})
        best = {n[6:]: v for n, v in t.items() if n.startswith("best::")}
        opt_state: dict = {}
        for n, v in t.items():
            if n.startswith("opt::"):
                _, idx, name = n.split("::")
                opt_state.setdefault(int(idx), {})[name] = v
        opt.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    except (RuntimeError, ValueError, KeyError) as e:     # e.g. "size mismatch": other network settings
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"the checkpoint {tensors_path} does not fit this network ({first[:200]}): it was "
                         "trained with other settings (e.g. --arch, --channels, --deep-supervision)",
                         "--resume with the same options as the first run, or choose a new -o folder") from None
    return best, state


# the recorded settings of a run (light, JSON only; here for the callers of this module)
from lungai.seg.settings import (CASE_PARTS, DATA_KEYS, DATA_OPTIONS, SETTING_OPTIONS, SETTINGS_JSON,  # noqa: E402,F401
                                 check_settings, data_settings, record_settings, run_settings,
                                 schedule_settings)
