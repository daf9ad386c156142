"""A model directory: ``model.json`` (config, members, training summary, metrics, calibration)
plus one ``member_<k>.safetensors`` per ensemble member.  No pickle.

A *model choice* directory holds only a ``model.json`` of format ``lungai-seg-choice-1`` that names two or
more models (folder names: inside or next to it, or shipped models): each segments the case and the result with the
highest calibrated confidence is kept (:mod:`lungai.seg.choice`)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from lungai.errors import InputError
from lungai.progress import Counter
from lungai.model_files import finite_json, load_safetensors, read_json, save_safetensors, write_json  # noqa: F401
from lungai.seg.config import SegConfig
from lungai.seg.networks import build_network, load_own_state, own_state

from lungai.seg.settings import FORMAT, MODEL_JSON  # noqa: F401  (defined there: light, for the -o checks)
from lungai.seg.settings import content_sha256
# model.json read and checked in JSON alone (light: the Slicer panel's checks use them too)
from lungai.seg.model_meta import (CALIBRATING, CHOICE_FORMAT, REWRITE_FIX, check_complete,  # noqa: F401
                                   member_paths, plain_name, read_meta)


def member_file(k: int) -> str:
    return f"member_{k}.safetensors"


MEMBER_FILE = re.compile(r"member_(0|[1-9][0-9]*)\.safetensors")     # the names member_file gives


def save_model(model_dir, cfg: SegConfig, state_dicts: list, meta: dict, complete: bool = True,
               journal=None) -> Path:
    """Members and model.json; ``complete`` False marks model.json ``"status": "calibrating"`` (train-seg: the
    calibration that follows removes it).  A member file of the earlier save that model.json no longer lists (a
    resume with fewer --members) is removed, after model.json is written: the folder is what a fresh run makes.
    Only the member files the earlier model.json in the folder lists go (:func:`written_members`), or those an
    earlier save stopped before its model.json wrote (:func:`unfinished_members`); a file of such a name that
    neither lists is not this product's: kept as it is, and said (:func:`_remove_unlisted_members`).

    ``journal`` (train-seg saving in its -o folder: :func:`saving_journal`): the sha256 of each member file is
    recorded there before the first is written, each member is written whole (a temporary file beside the journal,
    then renamed), and the record goes once model.json lists them - a stop in between leaves member files that a
    --resume knows as its own (QA train69: refused as "no model saved there wrote it")."""
    import hashlib

    from safetensors.torch import save as safetensors_bytes

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    # read before any member of the new model is written: the earlier model.json's and a stopped save's members
    stopped = unfinished_members(out, journal)
    earlier = written_members(_read_model_json(out)) | set(stopped)
    blobs = {member_file(k): safetensors_bytes({n: t.detach().contiguous().cpu() for n, t in sd.items()})
             for k, sd in enumerate(state_dicts)}
    shas = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    if journal is not None:        # (a stopped save's members not saved over stay recorded until they are removed)
        journal = Path(journal)
        journal.parent.mkdir(parents=True, exist_ok=True)
        write_json(journal, {"folder": str(out), JOURNAL_KEY: {**{n: stopped[n] for n in stopped if n not in blobs},
                                                               **shas}})
    for name, blob in blobs.items():
        _write_member(blob, out / name, (journal.parent if journal is not None else out) / f"{name}.tmp")
    files = list(blobs)
    doc = {"format": FORMAT, "config": cfg.to_dict(), "member_files": files, **meta,
           "member_sha256": shas}     # checked on load (check_members)
    if not complete:
        doc["status"] = CALIBRATING
    write_json(out / MODEL_JSON, doc)
    _remove_unlisted_members(out, files, earlier)
    if journal is not None:
        journal.unlink(missing_ok=True)      # model.json lists every member file this save wrote
    return out


# train-seg's record of the member files a save in its -o folder is about to write (OUT/checkpoints/), kept until
# model.json lists them: {"folder": OUT, "member_sha256": {member file: sha256 of the bytes it writes}}
SAVING_JSON = "saving_members.json"
JOURNAL_KEY = "member_sha256"


def saving_journal(model_dir) -> Path:
    """Where train-seg records the members a save in ``model_dir`` writes before its model.json (:func:`save_model`)."""
    from lungai.seg.model_meta import TRAIN_CHECKPOINTS

    return Path(model_dir) / TRAIN_CHECKPOINTS / SAVING_JSON


def unfinished_members(model_dir, journal=None) -> dict:
    """{member file: sha256} of the member files in ``model_dir`` that a save stopped before its model.json wrote
    (QA train69): named in the ``journal`` (:func:`saving_journal`) and holding exactly the bytes recorded there.  A
    file of such a name with other bytes (e.g. the user's, put there since) is not one of them; no journal, or one
    that cannot be read, names none."""
    import json

    if journal is None:
        return {}
    try:
        doc = json.loads(Path(journal).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    recorded = doc.get(JOURNAL_KEY) if isinstance(doc, dict) else None
    if not isinstance(recorded, dict):
        return {}
    own = {}
    for name, sha in recorded.items():
        path = Path(model_dir) / str(name)
        if (isinstance(sha, str) and MEMBER_FILE.fullmatch(str(name)) and path.is_file() and not path.is_symlink()
                and content_sha256(path) == sha):
            own[name] = sha
    return own


def _write_member(blob: bytes, path: Path, tmp: Path) -> None:
    """``blob`` (a safetensors file's bytes) written as ``path`` whole: into ``tmp`` first, then renamed (a stop
    never leaves a member cut short), with the mode of lungai's other files (0666 less the umask)."""
    import os

    tmp.write_bytes(blob)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def _read_model_json(folder: Path):
    """The model.json in ``folder`` as a dict, or None (none there, or not readable JSON)."""
    import json

    try:
        return json.loads((Path(folder) / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def written_members(doc) -> set:
    """The member files (names :func:`member_file` gives) that the model of model.json ``doc`` lists as its own
    (``member_files``): the only member files a later save or --resume in its folder may remove."""
    files = doc.get("member_files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and MEMBER_FILE.fullmatch(f)}


def check_member_names(model_dir, members: int) -> None:
    """Refuses (:class:`InputError`, before any training) a train-seg run whose model of ``members`` members would
    be saved over a ``member_<K>.safetensors`` in ``model_dir`` that the model.json there does not list: a file no
    model saved there wrote (e.g. the user's, a member kept from another run), which the save would overwrite
    (QA train68).  A member file a save stopped before its model.json wrote (:func:`unfinished_members`) is the
    run's own, not refused (QA train69).  Nothing to check without a readable model.json (a new folder, an interrupted run's checkpoints:
    the -o checks of train-seg allow no other files there)."""
    out = Path(model_dir)
    doc = _read_model_json(out)
    if not isinstance(doc, dict):
        return
    listed = written_members(doc) | set(unfinished_members(out, saving_journal(out)))     # + a stopped save's own
    foreign = [name for name in map(member_file, range(members))
               if name not in listed and ((out / name).exists() or (out / name).is_symlink())]
    if foreign:
        names = ", ".join(foreign)
        raise InputError(f"{out} holds {names}, which its model.json does not list (no model saved there wrote "
                         f"{'them' if len(foreign) > 1 else 'it'}); the model of {members} members this run saves "
                         f"would write over {'them' if len(foreign) > 1 else 'it'}",
                         f"move {names} out of {out} (or rename {'them' if len(foreign) > 1 else 'it'}), then run "
                         "the same command again (nothing was trained)")


def _remove_unlisted_members(out: Path, files: list, written: set) -> None:
    """Removes the member files in ``out`` that the new model.json (``files``) no longer lists and the model it
    replaced listed (``written``: :func:`written_members` of its model.json).  A file of such a name that neither
    lists is not one this product wrote (a user's file, e.g. a member kept from another run - QA train68: it was
    deleted): kept as it is, and a note says so, naming it and what to do."""
    from lungai.errors import say_notes

    kept = []
    for path in sorted(out.iterdir(), key=lambda p: p.name):
        if MEMBER_FILE.fullmatch(path.name) and path.name not in files and (path.is_file() or path.is_symlink()):
            if path.name in written:
                path.unlink()
            else:
                kept.append(path.name)
    if kept:
        names = ", ".join(kept)
        say_notes([f"{out} holds {names}, which no model saved there listed: kept as it is, but it is not part of "
                   f"the model (its model.json lists {', '.join(files)}; lungai never loads another member file) - "
                   f"move {'them' if len(kept) > 1 else 'it'} out of the model folder before sharing the model "
                   "if it is not meant to go with it"])


# Where train-seg saves and calibrates a model that is to replace a finished model in its -o folder (a --resume with a
# larger --epochs, other --members or --mc-passes): inside the run's checkpoints/, so that the model there stays whole
# and usable until the new one is calibrated (QA: Ctrl-C during that calibration left the old model "incomplete").
NEXT_MODEL = "next_model"


def replaces_model(model_dir) -> bool:
    """``model_dir`` holds a finished train-seg model (model.json of :data:`FORMAT` without a "status"): a new save
    must not touch it until the new model is calibrated (:func:`staging_folder`, :func:`install_model`)."""
    import json

    try:
        doc = json.loads((Path(model_dir) / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT and "status" not in doc


def staging_folder(model_dir) -> Path:
    """Where a model that replaces ``model_dir``'s finished one is saved and calibrated first: an empty
    ``checkpoints/next_model/`` (a staging folder left by a run stopped earlier is train-seg's own: removed)."""
    import shutil

    from lungai.seg.model_meta import TRAIN_CHECKPOINTS

    staged = Path(model_dir) / TRAIN_CHECKPOINTS / NEXT_MODEL
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged)
    return staged


def install_model(staged, model_dir) -> None:
    """Moves the saved and calibrated model of ``staged`` (:func:`staging_folder`) into ``model_dir`` in place of
    its model.  model.json is first rewritten as the new one marked "calibrating": a stop while the files move leaves
    a model that segment refuses naming the --resume that finishes it (never old members checked against a new
    model.json, or the reverse, as "changed or damaged"); the complete model.json comes last."""
    import os

    from lungai.seg.calibrate import remove_stale_tables, written_tables

    staged, out = Path(staged), Path(model_dir)
    doc = read_json(staged / MODEL_JSON, REWRITE_FIX)
    try:          # the tables and members the replaced model wrote: only these may go (a user's file of that name stays)
        replaced = read_json(out / MODEL_JSON, REWRITE_FIX)
    except InputError:
        replaced = None
    written, members = written_tables(replaced), written_members(replaced)
    write_json(out / MODEL_JSON, {**doc, "status": CALIBRATING})
    for path in sorted(staged.iterdir()):
        if path.name != MODEL_JSON:
            os.replace(path, out / path.name)
    os.replace(staged / MODEL_JSON, out / MODEL_JSON)
    _remove_unlisted_members(out, doc["member_files"], members)
    remove_stale_tables(out, doc.get("calibration") or {}, written)     # (the replaced model's, e.g. its ensemble's)
    staged.rmdir()




MEMBER_CHANGED_FIX = ("copy the model folder again from where it was written (or from its archive), or retrain; "
                      "lungai never loads weights other than the ones the model was saved with")


def check_member(model_dir, doc: dict, path) -> None:
    """A member file's bytes against the sha256 model.json records (``member_sha256``, written by
    :func:`save_model`): a file changed since (a bit flipped in a copy, a member of another model put in its place)
    raises :class:`InputError` naming it.  A model.json without the record (written before 2026-12) is not checked;
    the shipped models' model.json carry it."""
    recorded = doc.get("member_sha256")
    want = recorded.get(Path(path).name) if isinstance(recorded, dict) else None
    if isinstance(want, str) and content_sha256(path) != want:
        raise InputError(f"the member file {Path(path).name} of the model in {model_dir} is not the one its "
                         f"model.json was written with (sha256 {content_sha256(path)[:12]}..., recorded "
                         f"{want[:12]}...): the file was changed or damaged", MEMBER_CHANGED_FIX)


def is_number(value) -> bool:
    """A finite number (not None / null, not NaN): e.g. an r that model.json may record as null."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(float(value))


def load_model(model_dir, allow_incomplete: bool = False, progress=None, what: str = "loading the model"):
    """(config, list of eval-mode networks, model.json dict); for a model-choice folder a
    :class:`lungai.seg.choice.ModelChoice` of such models.  A model whose calibration did not finish is refused
    (``allow_incomplete``: train-seg, which calibrates it).  ``progress``: each member counted on it as it is loaded
    ("<what>: member 2/5", message-only updates; QA segfollow67: "loading the model" stood with its timer at 00:00
    for 4-27 s on a shared machine)."""
    doc = read_meta(model_dir)
    if doc["format"] == CHOICE_FORMAT:
        from lungai.seg.choice import load_choice

        return load_choice(model_dir, doc, progress=progress, what=what)
    if not allow_incomplete:
        check_complete(model_dir, doc)
    paths = member_paths(model_dir, doc)
    try:
        cfg = SegConfig.from_dict(doc["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{Path(model_dir) / MODEL_JSON}: its config is not usable ({type(exc).__name__}: {exc})",
                         REWRITE_FIX) from None
    nets = []
    shown = Counter(progress, f"{what}: member", len(paths)) if progress is not None else None
    for path in paths:
        try:
            net = build_network(cfg)
            weights = load_safetensors(path, "segmentation member weights", REWRITE_FIX)   # NaN / inf refused
            check_member(model_dir, doc, path)       # then any other change of its bytes
            load_own_state(net, weights)
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:      # e.g. config.channels edited
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"the weights {path.name} of the model in {model_dir} do not fit the network its "
                             f"model.json describes ({first[:200]})", REWRITE_FIX) from None
        net.eval()
        nets.append(net)
        if shown is not None:
            shown.tick()
    return cfg, nets, doc


def clone_state(model: torch.nn.Module) -> dict:
    return {n: t.detach().to("cpu", copy=True) for n, t in own_state(model).items()}
