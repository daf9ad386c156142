"""A segmentation model folder's ``model.json`` read and checked in JSON alone: light (no torch), so that the Slicer
panel says before it launches ``lungai segment`` what the command would refuse (no model.json, a model whose
calibration did not finish).  :func:`lungai.seg.model_io.load_model` uses the same checks."""

from __future__ import annotations

from pathlib import Path

from lungai.errors import InputError
from lungai.model_files import read_json
from lungai.seg.settings import FORMAT, MODEL_JSON

CHOICE_FORMAT = "lungai-seg-choice-1"
# model.json's "status" while train-seg has saved the members but not yet calibrated them (a run killed then
# leaves it: load_model refuses such a model); a model.json without "status" is complete (e.g. shipped models)
CALIBRATING = "calibrating"
REWRITE_FIX = "train the model again (`lungai train-seg`), or restore the model folder as lungai wrote it"


def plain_name(name) -> bool:
    """``name`` is a plain file or folder name: text naming one entry inside a folder (no '.', '..', no path
    separator, not absolute) - model.json's member files and a model choice's models are read only there."""
    return (isinstance(name, str) and bool(name.strip()) and name == Path(name).name
            and name not in (".", "..") and "\\" not in name and "/" not in name)


def read_meta(model_dir) -> dict:
    """model.json of a model or model-choice folder; InputError when there is none, it is not JSON or not of a
    lungai format."""
    path = Path(model_dir) / MODEL_JSON
    if not path.is_file():
        from lungai.seg.resources import shipped_models

        raise InputError(f"{model_dir} is not a LungAI segmentation model (no {MODEL_JSON})",
                         "give a folder written by `lungai train-seg`, the name of a shipped model "
                         f"({', '.join(shipped_models()) or 'none installed'}), or leave --model out for the default model")
    doc = read_json(path, REWRITE_FIX)               # truncated or edited: an InputError naming the file
    if doc.get("format") not in (FORMAT, CHOICE_FORMAT):
        raise InputError(f"{path} has format {doc.get('format')!r}, expected {FORMAT!r} or {CHOICE_FORMAT!r}",
                         "retrain the model with this version of `lungai train-seg`")
    return doc


def check_complete(model_dir, doc: dict) -> None:
    """InputError when model.json ``doc`` records an unfinished training ("status": :data:`CALIBRATING`: train-seg
    stopped before its confidence calibration finished); the fix is a resume."""
    if doc.get("format") != CHOICE_FORMAT and doc.get("status") is not None:
        raise InputError(f"the model in {model_dir} is incomplete (model.json status {doc['status']!r}): train-seg "
                         "stopped before its confidence calibration finished",
                         f"finish it: run the same `lungai train-seg ... -o {model_dir}` command again with --resume "
                         "(the same options as the first run)")
