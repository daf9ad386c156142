"""A segmentation model folder's ``model.json`` read and checked in JSON alone: light (no torch), so that the Slicer
panel says before it launches ``lungai segment`` what the command would refuse (no model.json, a model whose
calibration did not finish).  :func:`lungai.seg.model_io.load_model` uses the same checks."""

from __future__ import annotations

from pathlib import Path

from lungai.errors import InputError
from lungai.model_files import read_json
from lungai.seg.config import SegConfig
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


def member_paths(model_dir, doc: dict) -> list:
    """The member weight files of model.json ``doc``: ``member_files`` must be a non-empty list of plain file
    names ending in .safetensors, inside ``model_dir`` (no path elsewhere, no pickle)."""
    files = doc.get("member_files")
    where = Path(model_dir) / MODEL_JSON
    if not isinstance(files, list) or not files:
        raise InputError(f"{where}: member_files is {files!r}, not a list of the members' weight files", REWRITE_FIX)
    out = []
    for name in files:       # a plain name is inside the folder (the file itself may be a link: annex / DVC caches)
        ok = plain_name(name) and name.endswith(".safetensors")
        if not ok:
            raise InputError(f"{where}: member file {name!r} is not a .safetensors file name inside {model_dir} "
                             "(lungai reads members only from the model folder, never pickled weights)", REWRITE_FIX)
        out.append(Path(model_dir) / name)
    return out


# the problems of a 1-member model (the Slicer panel gives its own fix for them: its Method choice, its options)
ONE_MEMBER_ENSEMBLE = ("the model has 1 member, so the ensemble method gives no meaningful confidence (one member "
                       "always agrees with itself)")
ONE_MEMBER_NO_DROPOUT = ("the model has 1 member and no dropout, so neither the ensemble nor MC dropout can measure "
                         "its uncertainty (one member always agrees with itself)")
ENSEMBLE_NEEDS = 2          # members: one member always agrees with itself, so its "ensemble" confidence is meaningless


def resolve_method(n_members: int, method: str | None, dropout: float = 0.1) -> tuple:
    """(method, note or None): the uncertainty method for a model of ``n_members`` members (``dropout``: its
    config's rate).  ``method`` None (the user did not choose): the ensemble, or MC dropout for a 1-member model
    (with a note saying so); "ensemble" asked for explicitly with one member stops with an :class:`InputError`,
    as does a 1-member model without dropout (neither method can measure its uncertainty)."""
    if n_members >= ENSEMBLE_NEEDS:
        return method or "ensemble", None
    if not dropout:
        raise InputError(ONE_MEMBER_NO_DROPOUT,
                         "train the model with --members 2 or more, or with --dropout > 0")
    if method is None:
        return "mc-dropout", ("the model has 1 member, so an ensemble cannot measure agreement: MC dropout was used "
                              "for the uncertainty and confidence (--method mc-dropout)")
    if method == "ensemble":
        raise InputError(ONE_MEMBER_ENSEMBLE,
                         "use --method mc-dropout (or leave --method out), or train with --members 2 or more")
    return method, None


def check_model_folder(model_dir, method: str | None = None) -> dict:
    """model.json of a model (or model-choice) folder that ``lungai segment --model DIR [--method M]`` can run, checked
    without loading any weights: a lungai model.json (:func:`read_meta`), its training finished
    (:func:`check_complete`), its member weight files named (:func:`member_paths`) and present, and ``method`` usable
    with its members (:func:`resolve_method`); a model choice's models each so.  InputError naming the problem and
    its fix otherwise.  The one check of ``lungai segment`` (before it reads the CT) and the Slicer panel (before
    Apply is enabled); :func:`lungai.seg.model_io.load_model` then reads the weights."""
    doc = read_meta(model_dir)
    if doc["format"] == CHOICE_FORMAT:
        from lungai.seg.choice import member_model_dir

        names = doc.get("models")
        for name in names if isinstance(names, list) else []:     # other faults of the choice: said by load_model
            check_model_folder(member_model_dir(model_dir, name), method)
        return doc
    check_complete(model_dir, doc)
    paths = member_paths(model_dir, doc)
    for path in paths:     # the wording of load_model's read of the file (lungai.model_files.load_safetensors)
        if not path.is_file():
            raise InputError(f"segmentation member weights {path} is missing", "copy the whole model folder")
    config = doc.get("config")                  # a config that is not usable: said by load_model
    dropout = config.get("dropout", SegConfig.dropout) if isinstance(config, dict) else SegConfig.dropout
    resolve_method(len(paths), method, dropout if isinstance(dropout, (int, float)) else SegConfig.dropout)
    return doc
