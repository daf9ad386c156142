"""A segmentation model folder's ``model.json`` read and checked in JSON alone: light (no torch), so that the Slicer
panel says before it launches ``lungai segment`` what the command would refuse (no model.json, a model whose
calibration did not finish).  :func:`lungai.seg.model_io.load_model` uses the same checks."""

from __future__ import annotations

from pathlib import Path

from lungai.errors import InputError, counted
from lungai.model_files import read_json
from lungai.seg.config import SegConfig
from lungai.seg.settings import FORMAT, MODEL_JSON, content_sha256

CHOICE_FORMAT = "lungai-seg-choice-1"
# model.json's "status" while train-seg has saved the members but not yet calibrated them (a run killed then
# leaves it: load_model refuses such a model); a model.json without "status" is complete (e.g. shipped models)
CALIBRATING = "calibrating"
REWRITE_FIX = "train the model again (`lungai train-seg`), or restore the model folder as lungai wrote it"
# what `lungai train-seg` writes into -o while it trains: a folder with it and no model.json holds a training stopped
# (cancelled, killed) before it saved a model (the panel's LungAICommon.commands.TRAIN_CHECKPOINTS too)
TRAIN_CHECKPOINTS = "checkpoints"

# the rules of a model choice (lungai.seg.choice: what they do)
RULE = "highest calibrated confidence"
ROUTE_RULE = "second model when the first finds a large tumour"
RULES = (RULE, ROUTE_RULE)
CHOICE_MODELS_FIX = ('list under "models" two or more shipped model names or names of model folders next to the '
                     "choice's folder (plain folder names: no path, no '.' or '..')")

# InputError.key of the problems a caller words its own fix for (the Slicer panel names its own controls): a
# stable name, not the problem's text (which names the folder, a choice's model)
STOPPED_TRAINING = "stopped training"           # checkpoints/ and no model.json
INCOMPLETE = "incomplete"                       # model.json "status": "calibrating"
IN_TRAINING = "in training"                     # checkpoints/ or "calibrating": its train-seg still runs
TRAINING_WAIT = "wait until it ends"            # the fix of IN_TRAINING
ONE_MEMBER_ENSEMBLE_KEY = "one member ensemble"
ONE_MEMBER_NO_DROPOUT_KEY = "one member no dropout"


def keyed(exc: InputError, key: str) -> InputError:
    """``exc`` with ``exc.key = key``: which of the problems above it is."""
    exc.key = key
    return exc


def resume_fix(model_dir) -> str:
    """The CLI's fix for a training that stopped before it finished (the panel says its own: Start training)."""
    return (f"finish it: run the same `lungai train-seg ... -o {model_dir}` command again with --resume "
            "(the same options as the first run)")


def plain_name(name) -> bool:
    """``name`` is a plain file or folder name: text naming one entry inside a folder (no '.', '..', no path
    separator, not absolute) - model.json's member files and a model choice's models are read only there."""
    return (isinstance(name, str) and bool(name.strip()) and name == Path(name).name
            and name not in (".", "..") and "\\" not in name and "/" not in name)


def member_lock_folder(out, member: int) -> Path:
    """The folder of the lock of a ``train-seg --member K`` run: ``OUT/.member_K.lock`` (hidden, outside checkpoints/,
    whose entries train-seg checks)."""
    return Path(out) / f".member_{member}.lock"


def members_in(out) -> list:
    """[(member, its lock folder)] of the ``.member_K.lock`` folders (:func:`member_lock_folder`) in ``out``."""
    found = []
    for folder in sorted(Path(out).glob(".member_*.lock")):
        member = folder.name[len(".member_"):-len(".lock")]
        if member.isdigit() and folder.is_dir():
            found.append((int(member), folder))
    return found


def busy_refusal(model_dir, holder, member=None) -> InputError:
    """The refusal (key :data:`IN_TRAINING`) of the model folder ``model_dir`` whose lock - or member ``member``'s
    (:func:`member_lock_folder`) - is held by ``holder`` (:func:`lungai.io.outputs.lock_holder`): "MODEL is being
    trained by process N on HOST (started ...)", fix :data:`TRAINING_WAIT` (a caller naming its own controls replaces
    that part); a run of another computer (its liveness cannot be checked from here) adds how to clear its lock
    (:func:`lungai.io.outputs.lock_elsewhere_fix`), the lock file named in full."""
    command, pid, host, started, here = holder
    folder = Path(model_dir).absolute()          # named in full: "oh is being trained" says not where
    who = f"{folder}" if member is None else f"{folder}: member {member}"
    if not pid:
        return keyed(InputError(f"{who} is in use by a lungai run that is starting now (its lock is being written)",
                                TRAINING_WAIT), IN_TRAINING)
    doing = "being trained" if command == "train-seg" else f"in use by a lungai {command} run"
    fix = TRAINING_WAIT
    if not here:
        from lungai.io.outputs import lock_elsewhere_fix

        fix += "; " + lock_elsewhere_fix(model_dir if member is None else member_lock_folder(model_dir, member), host)
    return keyed(InputError(f"{who} is {doing} by process {pid} on {host} (started {started})", fix), IN_TRAINING)


def training_busy(model_dir) -> InputError | None:
    """The refusal (:func:`busy_refusal`) while a live run holds the folder's lock (train-seg holds it while it
    trains, saves and calibrates) or a ``train-seg --member K`` process holds its member's
    (:func:`member_lock_folder`), else None: its checkpoints or a "calibrating" model.json are then those of a
    training still running, not an interrupted one.  None where lungai.io cannot be imported (an accelerator without
    SimpleITK)."""
    try:
        from lungai.io.outputs import lock_holder
    except ImportError:
        return None
    holder = lock_holder(model_dir)
    if holder is not None:
        return busy_refusal(model_dir, holder)
    for member, folder in members_in(model_dir):
        holder = lock_holder(folder)
        if holder is not None:
            return busy_refusal(model_dir, holder, member)
    return None


def training_in_progress(model_dir) -> str | None:
    """"MODEL is being trained by process N on HOST (started ...)" (:func:`training_busy`'s problem), else None."""
    exc = training_busy(model_dir)
    return exc.problem if exc else None


def _check_not_training(model_dir) -> None:
    """InputError (key :data:`IN_TRAINING`) while a train-seg run still writes the model folder."""
    exc = training_busy(model_dir)
    if exc:
        raise exc


def read_meta(model_dir) -> dict:
    """model.json of a model or model-choice folder; InputError when there is none (key :data:`STOPPED_TRAINING`
    when a train-seg run stopped there before it saved one: its checkpoints/ folder), it is not JSON or not of a
    lungai format."""
    path = Path(model_dir) / MODEL_JSON
    if not path.is_file() and (Path(model_dir) / TRAIN_CHECKPOINTS).is_dir():
        _check_not_training(model_dir)
        raise keyed(InputError(f"{model_dir} holds a training that was stopped (cancelled or killed) before it saved a "
                               "model", resume_fix(model_dir)),
                    STOPPED_TRAINING)
    if not path.is_file():
        import os

        from lungai.seg.resources import missing_models_fix, shipped_models

        missing = missing_models_fix()
        fix = (f"{missing}give --model DIR (a folder written by `lungai train-seg`)" if missing else
               "give a folder written by `lungai train-seg`, the name of a shipped model "
               f"({', '.join(shipped_models()) or 'none installed'}), or leave --model out for the default model")
        if not os.path.exists(model_dir):   # nothing there (QA inputfollow65: it said "no model.json" of it)
            if os.path.islink(model_dir):
                raise InputError(f"the model folder {model_dir} is a link to {os.readlink(model_dir)}, which does "
                                 "not exist", fix)
            given = Path(model_dir)
            if len(given.parts) == 1:       # a bare name: a misspelt shipped model's name as much as a folder
                raise InputError(f"{model_dir} is neither a model folder (none there) nor the name of a shipped model",
                                 fix)
            where = "" if given.is_absolute() else f" (here: {given.absolute()})"
            raise InputError(f"the model folder {model_dir} does not exist", f"check the path{where}; or {fix}")
        holder = Path(model_dir).parent
        if (holder / MODEL_JSON).is_file():   # its model.json, a member or checkpoints/ (QA train71: "no model.json")
            from lungai.dicom.masks import command_word

            what = "a file" if Path(model_dir).is_file() else "a folder"
            raise InputError(f"{model_dir} is {what} inside the model folder {holder}, not the model folder itself",
                             f"give the folder that holds model.json: --model {command_word(holder)}")
        raise InputError(f"{model_dir} is not a LungAI segmentation model (no {MODEL_JSON})", fix)
    doc = read_json(path, REWRITE_FIX)               # truncated or edited: an InputError naming the file
    if doc.get("format") not in (FORMAT, CHOICE_FORMAT):
        raise InputError(f"{path} has format {doc.get('format')!r}, expected {FORMAT!r} or {CHOICE_FORMAT!r}",
                         "retrain the model with this version of `lungai train-seg`")
    return doc


def check_complete(model_dir, doc: dict) -> None:
    """InputError when model.json ``doc`` records an unfinished training ("status": :data:`CALIBRATING`: train-seg
    stopped before its confidence calibration finished); the fix is a resume."""
    if doc.get("format") != CHOICE_FORMAT and doc.get("status") is not None:
        _check_not_training(model_dir)
        raise keyed(InputError(f"the model in {model_dir} is incomplete (model.json status {doc['status']!r}): "
                               "train-seg stopped before its confidence calibration finished", resume_fix(model_dir)),
                    INCOMPLETE)


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
        raise keyed(InputError(ONE_MEMBER_NO_DROPOUT, "train the model with --members 2 or more, or with --dropout > 0"),
                    ONE_MEMBER_NO_DROPOUT_KEY)
    if method is None:
        return "mc-dropout", ("the model has 1 member, so an ensemble cannot measure agreement: MC dropout was used "
                              "for the uncertainty and confidence (--method mc-dropout)")
    if method == "ensemble":
        raise keyed(InputError(ONE_MEMBER_ENSEMBLE,
                               "use --method mc-dropout (or leave --method out), or train with --members 2 or more"),
                    ONE_MEMBER_ENSEMBLE_KEY)
    return method, None


def check_model_folder(model_dir, method: str | None = None) -> dict:
    """model.json of a model (or model-choice) folder that ``lungai segment --model DIR [--method M]`` can run, checked
    without loading any weights: a lungai model.json (:func:`read_meta`), its training finished
    (:func:`check_complete`), its member weight files named (:func:`member_paths`) and present, and ``method`` usable
    with its members (:func:`resolve_method`); a model choice's own entries (:func:`check_choice_doc`) and its models
    each so (the problem then names the model).  InputError naming the problem and
    its fix otherwise.  The one check of ``lungai segment`` (before it reads the CT) and the Slicer panel (before
    Apply is enabled); :func:`lungai.seg.model_io.load_model` then reads the weights."""
    doc = read_meta(model_dir)
    if doc["format"] == CHOICE_FORMAT:
        names = check_choice_doc(model_dir, doc)
        for name in names:
            path = member_model_dir(model_dir, name)
            try:
                check_model_folder(path, method)
            except InputError as exc:   # which model of the choice (a 1-member model's problem does not say)
                named = InputError(f"the model {name!r} of the model choice in {model_dir} ({path}): {exc.problem}",
                                   exc.fix)
                if getattr(exc, "key", None) in (ONE_MEMBER_ENSEMBLE_KEY, ONE_MEMBER_NO_DROPOUT_KEY):
                    named.key = exc.key     # a resume's fix stays the CLI's: it names the model's folder, not the choice
                raise named from exc
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


def roi_margin_mm(model_dir, doc: dict) -> float:
    """The margin (mm) a model's ROI box gets round the user's ROI (``config.roi_margin_mm`` of model.json ``doc``, of
    the model in ``model_dir``; a model choice: the largest of its models'), read without loading any weights -
    ``lungai segment`` checks an ROI on the CT with it before the model is loaded
    (:func:`lungai.seg.preprocess.check_placement`).  A config without a usable value: :class:`SegConfig`'s (its
    problem is said by :func:`lungai.seg.model_io.load_model`)."""
    docs = ([read_meta(member_model_dir(model_dir, name)) for name in check_choice_doc(model_dir, doc)]
            if doc.get("format") == CHOICE_FORMAT else [doc])
    margins = []
    for d in docs:
        config = d.get("config")
        value = config.get("roi_margin_mm") if isinstance(config, dict) else None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        margins.append(float(value) if ok else SegConfig.roi_margin_mm)
    return max(margins)


def check_choice_doc(model_dir, doc: dict) -> list:
    """The model names of model-choice model.json ``doc`` (in ``model_dir``), its entries checked in JSON alone:
    ``models`` a list of two or more, a known ``rule``, the routing rule's two models, ``route_volume_ml`` and
    ``route_unsure_max_ml``.  InputError otherwise.  The one check of :func:`lungai.seg.choice.load_choice` and
    :func:`check_model_folder` (the Slicer panel's, before Apply is enabled)."""
    where = Path(model_dir) / MODEL_JSON
    names = doc.get("models") or []
    if not isinstance(names, list):
        raise InputError(f"{where}: \"models\" is {names!r}, not a list of model names", CHOICE_MODELS_FIX)
    rule = doc.get("rule", RULE)
    if rule not in RULES:
        raise InputError(f"{where}: unknown rule {rule!r}", "use one of: " + "; ".join(repr(r) for r in RULES))
    volume = doc.get("route_volume_ml")
    if rule == ROUTE_RULE and (len(names) != 2 or not isinstance(volume, (int, float)) or isinstance(volume, bool)):
        raise InputError(f"{where}: the rule {ROUTE_RULE!r} needs exactly two models and a "
                         '"route_volume_ml" number', 'name the first and the second model and the volume (ml) above '
                         'which the second one segments the case')
    cap = doc.get("route_unsure_max_ml")
    if rule == ROUTE_RULE and cap is not None and not (isinstance(cap, (int, float)) and not isinstance(cap, bool)
                                                       and cap > volume):
        raise InputError(f"{where}: \"route_unsure_max_ml\" must be a number (ml) larger than "
                         f"\"route_volume_ml\", not {cap!r}",
                         'give the largest tumour (ml) the second model may find when the first is unsure, or leave '
                         'the key out')
    if len(names) < 2:
        raise InputError(f"{where} names {counted(len(names), 'model')}; a model choice needs two or more",
                         CHOICE_MODELS_FIX)
    for name in names:              # all checked before any is loaded
        member_model_dir(model_dir, name)
    return names


def member_model_dir(model_dir, name) -> Path:
    """The folder of a model named by a model choice in ``model_dir``: a plain folder name (no path, '.', '..'),
    looked up next to the choice's folder (in its parent: a user's choice beside its models; inside the choice's
    folder too, as before), else a shipped model of that name.  InputError for any other entry, a model not found,
    or one that is itself a model choice (checked on its model.json before anything is loaded: a choice naming
    itself would load itself without end)."""
    from lungai.seg.resources import models_root, shipped_models

    where = Path(model_dir) / MODEL_JSON
    if not plain_name(name):
        raise InputError(f"{where}: the model entry {name!r} is not a model folder's name (a choice reads its models "
                         "only next to its own folder or from the shipped models)", CHOICE_MODELS_FIX)
    here = Path(model_dir)
    candidates = [here / name, here.resolve().parent / name, models_root() / name]
    path = next((p for p in candidates if (p / MODEL_JSON).is_file()), None)
    if path is None:
        raise InputError(f"{where}: the model {name!r} is neither a folder with a {MODEL_JSON} next to the choice "
                         f"({here.resolve().parent}) nor a shipped model ({', '.join(shipped_models()) or 'none'})",
                         CHOICE_MODELS_FIX)
    if path.resolve() == here.resolve() or read_meta(path).get("format") == CHOICE_FORMAT:
        raise InputError(f"{where}: the model {name!r} ({path}) is itself a model choice",
                         "name segmentation models, not choices: " + CHOICE_MODELS_FIX)
    return path


def model_identity(model_dir) -> dict:
    """What ties a result or a report to the model that made it, beyond its folder's name (a model retrained or
    recalibrated in the same folder, a copy of another model under that name): the folder, the sha256 of its
    model.json (calibration, review threshold, training record) and of each member's weights; a model choice: its
    model.json's and those of each model it names (``models``).  ``lungai segment``'s result.json, the demo's and the
    Slicer panel's results, ``lungai cohort``'s per-patient record and ``eval-seg --split test``'s report hold it."""
    here = Path(model_dir)
    doc = read_meta(here)
    out = {"folder": str(here.resolve()), "model_json_sha256": content_sha256(here / MODEL_JSON)}
    if doc.get("format") == CHOICE_FORMAT:
        out["models"] = {name: model_identity(member_model_dir(here, name)) for name in check_choice_doc(here, doc)}
    else:
        out["member_sha256"] = {p.name: content_sha256(p) for p in member_paths(here, doc)}
    return out
