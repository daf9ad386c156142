"""What a resumed ``lungai train-seg`` run must share with the first one (checkpoints/settings.json), compared and
explained in JSON alone: light (no torch), so the Slicer panel checks a resume before it launches the child."""

from __future__ import annotations

import json
from pathlib import Path

from lungai.errors import InputError, agree, counted


SETTINGS_JSON = "settings.json"
MODEL_JSON = "model.json"                  # a trained model's folder holds it (lungai.seg.model_io)
FORMAT = "lungai-seg-1"                   # its "format"
# the settings a resumed run must share with the first one, and the option that gives each
SETTING_OPTIONS = {"arch": "--arch", "channels": "--channels", "spacing": "--spacing", "patch_size": "--patch",
                   "infer_patch": "--infer-patch", "dropout": "--dropout", "deep_supervision": "--deep-supervision",
                   "tta": "--tta", "hu_window": "hu_window", "roi_margin_mm": "roi_margin_mm",
                   "seed_box_mm": "seed_box_mm", "extra": "extra", "seed": "--seed", "val_fraction": "--val-fraction",
                   "test_fraction": "--test-fraction", "lr": "--lr", "batch_size": "--batch",
                   "lr_schedule": "--lr-schedule", "augment": "--augment", "fg_fraction": "--fg-fraction",
                   "label": "--label", "max_cases": "--max-cases", "synthetic": "--synthetic",
                   "synthetic_chests": "--synthetic-chests", "implant": "--implant", "implant_into": "--implant-into",
                   "patients_sha256": "--patients (the file's content, sha256)"}
# the data's identity: the case ids of each part of the split (sorted), and the options that choose the cases
CASE_PARTS = {"train_cases": "training", "val_cases": "validation", "test_cases": "test"}
# the data's content: {case id: {"image": sha256 of its image file's bytes, "mask": its mask file's}} for the cases
# read from files (synthetic and implanted cases are rebuilt from --seed); the file names and folders are not in it.
# The bytes, not the voxels: a file re-saved in another format (or gzip level) counts as changed (hashing the
# voxels would read every CT in full before any training); the refusal says which file and how to proceed
CASE_CONTENT = "case_sha256"
# the --implant-into background CTs' content: {image file name: {"image": sha256, "mask": sha256 or None}}
IMPLANT_CONTENT = "implant_into_sha256"
DATA_OPTIONS = ("max_cases", "synthetic", "synthetic_chests", "implant", "implant_into", "patients_sha256")
# what data_settings gives (--save-arrays keeps it in its file for the --from-arrays run to record)
DATA_KEYS = DATA_OPTIONS + tuple(CASE_PARTS) + (CASE_CONTENT, IMPLANT_CONTENT)


# the options of the training's length: a resume may change them only where the result stays that of a fresh run of
# the resumed command (:func:`schedule_changes`); the members' states record what each ran with
SCHEDULE_OPTIONS = {"epochs": "--epochs", "iters_per_epoch": "--iters", "patience": "--patience"}


def run_settings(cfg, *, seed, val_fraction, test_fraction, lr, batch_size, recipe, label=None) -> dict:
    """What a resumed run must share with the first one (JSON values; ``label``: --label, the masks' tumour label).
    Not here: --members and --mc-passes (free: members are seeded by their index, the calibration is fitted anew
    by every run that saves the model), --epochs, --iters, --patience (:func:`schedule_settings`) and where it
    runs (device, workers, arrays)."""
    d = {k: v for k, v in cfg.to_dict().items() if k != "members"}
    d.update(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, lr=lr, batch_size=batch_size,
             label=label,
             **{k: (recipe or {}).get(k, default) for k, default in
                (("lr_schedule", "constant"), ("augment", "basic"), ("fg_fraction", None))})
    return json.loads(json.dumps(d))


def schedule_settings(*, epochs: int, iters_per_epoch: int, patience: int) -> dict:
    """The training's length (--epochs, --iters, --patience) for :func:`check_settings`, which allows a resume to
    change it only where that is exact (:func:`schedule_changes`); never in settings.json (the members' states
    record what each ran with)."""
    return {"epochs": int(epochs), "iters_per_epoch": int(iters_per_epoch), "patience": int(patience)}


def _ran_states(ckpt_dir) -> list:
    """(member, state) of every member that finished an epoch in ``ckpt_dir``, by member; a state of a run begun
    before the states recorded the training's length gets it from the model.json beside (a finished model)."""
    d = Path(ckpt_dir)
    training = (_read_json(d.parent / MODEL_JSON) or {}).get("training") or {}
    ran = []
    for path in d.glob(STATE_GLOB):
        state = _read_json(path) or {}
        try:
            k = int(path.name.split("_")[1].split(".")[0])
        except ValueError:
            continue
        if isinstance(state.get("epoch"), int) and state["epoch"] > 0:
            ran.append((k, {**{o: training[o] for o in SCHEDULE_OPTIONS if o in training}, **state}))
    return sorted(ran, key=lambda ks: ks[0])


def schedule_changes(ckpt_dir, schedule: dict, lr_schedule: str = "constant") -> list:
    """What in ``schedule`` (:func:`schedule_settings`) would make a resume of the run in ``ckpt_dir`` differ from
    a fresh run of the resumed command (the command model.json records): (what changed, the value to give
    instead) per option; empty when it is exact.  Once a member has finished an epoch: --iters and --patience as
    it ran with them (another epoch length draws other batches; another patience would have stopped, or not
    stopped, other epochs); with --lr-schedule poly --epochs too (the learning rate decays over all the run's
    steps); with a constant learning rate --epochs may grow, or shrink down to the epochs every member has run
    (the epochs' seeds do not depend on it)."""
    changes = []
    ran = _ran_states(ckpt_dir)

    def first_other(key):
        return next(((k, st) for k, st in ran if key in st and st[key] != schedule[key]), None)

    keys = ["iters_per_epoch", "patience"] + (["epochs"] if lr_schedule == "poly" else [])
    split = {key: _disagreement(ran, key, " (--lr-schedule poly)" if key == "epochs" else "")
             for key in keys if key in schedule}
    for key in ("iters_per_epoch", "patience"):
        if split.get(key):
            changes.append((split[key], None))
            continue
        other = key in schedule and first_other(key)
        if other:
            k, st = other
            changes.append((f"{SCHEDULE_OPTIONS[key]} {st[key]} then (member {k} ran {_epochs(st['epoch'])} "
                            f"with it), {schedule[key]} now", f"{SCHEDULE_OPTIONS[key]} {st[key]}"))
    if "epochs" in schedule:
        other = first_other("epochs") if lr_schedule == "poly" else None
        if split.get("epochs"):
            changes.append((split["epochs"], None))
        elif other:
            k, st = other
            changes.append((f"--epochs {st['epochs']} then with --lr-schedule poly (its learning rate decays over "
                            f"the whole run; member {k} ran {_epochs(st['epoch'])} of it), {schedule['epochs']} now",
                            f"--epochs {st['epochs']}"))
        else:
            beyond = [(k, st) for k, st in ran if st["epoch"] > schedule["epochs"]]
            if beyond:
                k, st = max(beyond, key=lambda ks: ks[1]["epoch"])
                changes.append((f"--epochs {schedule['epochs']} now, but member {k} has run {_epochs(st['epoch'])}",
                                f"--epochs {st['epoch']} or more"))
    return changes


# the members ran with different lengths (member processes started apart with other options): no one command
MEMBERS_DISAGREE = "no single --resume can assemble them"
DISAGREE_FIX = ("retrain the members that differ with the options of the others (delete their checkpoints/member_K.* "
                "files and rerun each with --member K), or choose a new -o folder to start anew")


def _disagreement(ran: list, key: str, note: str = "") -> str | None:
    """E.g. "--iters: member 0 ran with 4, member 1 with 8; no single --resume can assemble them" when the members
    that ran recorded different values of ``key``, else None (``note`` follows the option's name)."""
    values = [(k, st[key]) for k, st in ran if key in st]
    if len({json.dumps(v) for _, v in values}) < 2:
        return None
    each = ", ".join(f"member {k}{' ran' if i == 0 else ''} with {v}" for i, (k, v) in enumerate(values))
    return f"{SCHEDULE_OPTIONS[key]}{note}: {each}; {MEMBERS_DISAGREE}"


def _epochs(n: int) -> str:
    return counted(n, "epoch")


def data_settings(case_sources: dict | None, parts: dict, fingerprints: bool = True) -> dict:
    """What a resumed run must share with the first one about its data: the options that choose the cases
    (``case_sources`` of train-seg: --max-cases, --synthetic, ..., the --patients file's content) and the case ids
    of each part of the split (``parts``: {"train_cases" / "val_cases" / "test_cases": cases or ids}).  Folder
    paths are not compared (the data may move); its cases are.  With cases in ``parts`` and ``fingerprints``, also
    the fingerprints of the files read (:data:`CASE_CONTENT`, :data:`IMPLANT_CONTENT`: every file read in full,
    under a progress bar)."""
    import hashlib

    src = case_sources or {}
    d = {k: src.get(k) for k in DATA_OPTIONS[:4]}
    d["implant_into"] = Path(src["implant_into"]).name if src.get("implant_into") else None
    patients = src.get("patients")
    d["patients_sha256"] = (hashlib.sha256(Path(patients).read_bytes()).hexdigest()
                            if patients and Path(patients).is_file() else None)
    for k, cases in parts.items():
        d[k] = sorted(getattr(c, "case_id", c) for c in cases)
    files = sorted((c for cases in parts.values() for c in cases
                    if getattr(c, "image_path", None) is not None and getattr(c, "mask_path", None) is not None),
                   key=lambda c: c.case_id)
    backgrounds = []
    if fingerprints and any(parts.values()):     # (not for the Slicer panel's check of the options alone)
        if src.get("implant") and src.get("implant_into") and Path(src["implant_into"]).is_file():
            from lungai.seg.dataset import read_backgrounds       # (SimpleITK: only where cases are read)

            backgrounds = read_backgrounds(src["implant_into"])
    if fingerprints and (files or backgrounds):
        from lungai.io.read import image_files          # an .mhd / .nhdr with its pixel data file
        from lungai.progress import task

        with task("fingerprint the training data", len(files) + len(backgrounds)) as bar:
            if files:
                d[CASE_CONTENT] = {}
                for c in files:
                    d[CASE_CONTENT][c.case_id] = {"image": content_sha256(*image_files(c.image_path)),
                                                  "mask": content_sha256(*image_files(c.mask_path))}
                    bar.update(1, c.case_id)
            if backgrounds:
                d[IMPLANT_CONTENT] = {}
                for b in backgrounds:
                    d[IMPLANT_CONTENT][Path(b["image"]).name] = {
                        "image": content_sha256(*image_files(b["image"])),
                        "mask": content_sha256(*image_files(b["mask"])) if b.get("mask") is not None else None}
                    bar.update(1, Path(b["image"]).name)
    return json.loads(json.dumps(d))


def content_sha256(*paths) -> str:
    """sha256 of the files' bytes, one after the other (read in 1 MiB blocks: a CT of 100 MB is about 0.2 s)."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _content_changes(then: dict, now: dict) -> tuple:
    """(changed, unknown): the ids in both ``then`` and ``now`` (:data:`CASE_CONTENT` / :data:`IMPLANT_CONTENT`)
    whose image or mask bytes differ, as "ID (image)", "ID (mask)" or "ID (image and mask)"; and the ids recorded
    in the older form (one hash of both files, lungai before the per-file fingerprints), which cannot be compared
    (cases added or removed are named by the split's case lists)."""
    changed, unknown = [], []
    for c in sorted(set(then) & set(now)):
        a, b = then[c], now[c]
        if not isinstance(a, dict) or not isinstance(b, dict):
            unknown.append(c)
            continue
        which = [k for k in ("image", "mask") if a.get(k) != b.get(k)]
        if which:
            changed.append((c, " and ".join(which)))
    return changed, unknown


def _few(items: list, n: int = 10) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


RESAVED = ("a file re-saved or converted (e.g. .nrrd to .nii.gz, another compression) counts as changed: the "
           "fingerprint is of the file's bytes")


def _check_content(ckpt_dir, recorded: dict, settings: dict) -> None:
    """The content part of :func:`check_settings`: a changed image or mask of a training or validation case (or of
    an --implant-into background CT) is an InputError; of a held-out test case, a note (training never reads them)."""
    import warnings

    from lungai.errors import InputCheckNote

    run = Path(ckpt_dir).parent
    if CASE_CONTENT in settings and CASE_CONTENT not in recorded:
        kept = (Path(ckpt_dir) / SETTINGS_JSON).is_file()        # (record_settings adds them there)
        warnings.warn(NO_FINGERPRINT.format(run=run, recorded=" and records their fingerprints for later resumes"
                                            if kept else ""), InputCheckNote)
    changed, unknown = _content_changes(recorded.get(CASE_CONTENT) or {}, settings.get(CASE_CONTENT) or {})
    if unknown:
        k = len(unknown)
        warnings.warn(f"{run} records the fingerprints of {counted(k, 'case')} in an older form (one hash of image "
                      "and mask, by a lungai before this one): this --resume cannot tell whether "
                      f"{agree(k, 'it', 'they')} changed since; it uses the files as they are now and records "
                      f"{agree(k, 'its fingerprint', 'their fingerprints')} anew", InputCheckNote)
    bg, _ = _content_changes(recorded.get(IMPLANT_CONTENT) or {}, settings.get(IMPLANT_CONTENT) or {})
    test = set(settings.get("test_cases", recorded.get("test_cases")) or [])
    trained = [f"{c}: {which}" for c, which in changed if c not in test]
    held_out = [f"{c}: {which}" for c, which in changed if c in test]
    keys = [CASE_CONTENT] * bool(trained) + [IMPLANT_CONTENT] * bool(bg)
    trained += [f"--implant-into {c}: {which}" for c, which in bg]
    if trained:
        n = len(trained)
        raise InputError(f"{run} was trained on other data than this --resume: the image or mask file of {n} "
                         f"training / validation case{'s' * (n != 1)} changed since the first run "
                         f"({_few(trained)}); resuming would mix the two in one model (and refit the calibration "
                         f"on the new data); {RESAVED}",
                         "restore the original images / masks and --resume, or train on the changed data into a "
                         "new -o folder; if only the file format changed (the same voxels), and you are sure, remove "
                         + " and ".join(f'"{k}"' for k in keys) + f" from {Path(ckpt_dir) / SETTINGS_JSON} and "
                         "--resume (it then records the files as they are now)")
    if held_out:
        n = len(held_out)
        warnings.warn(f"the image or mask file of {n} held-out test case{'s' * (n != 1)} changed since the first run "
                      f"({_few(held_out)}): training never reads them, so the resume goes on; `lungai eval-seg "
                      "--split test` reads the files as they are now", InputCheckNote)


NO_FINGERPRINT = ("{run} records no fingerprint of the images' and masks' contents (a run begun by an older lungai, "
                  "or with --from-arrays from an older arrays file, or its fingerprints removed): this --resume "
                  "cannot tell whether they changed since; it uses the files as they are now{recorded}")


STATE_GLOB = "member_*.state.json"            # a member's epoch counters and history (lungai.seg.checkpoint)
RUN_KEYS = ("arch", "channels", "patch_size", "seed")   # in every settings.json train-seg writes (run_settings)


def _read_json(path):
    """The JSON object in ``path``, or None when it is not readable as one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):               # (UnicodeDecodeError is a ValueError)
        return None
    return doc if isinstance(doc, dict) else None


def member_state(ckpt_dir, k: int) -> dict | None:
    """Member ``k``'s state in ``ckpt_dir`` (member_K.state.json: its "epoch" counter, "done" when it stopped
    early), or None when it has none readable."""
    state = _read_json(Path(ckpt_dir) / STATE_GLOB.replace("*", str(k)))
    return state if state is not None and isinstance(state.get("epoch"), int) else None


def _member_state(path) -> bool:
    """``path`` (member_K.state.json) is a member state train-seg wrote: JSON with its "epoch"."""
    return "epoch" in (_read_json(path) or {})


def foreign_checkpoints(ckpt_dir) -> str | None:
    """Why the folder ``ckpt_dir`` (OUT/checkpoints) is not the checkpoint folder of a train-seg run, or None when
    it is, or when there is no run yet (no such folder; or one holding nothing but train-seg's unfinished *.tmp
    files: a run stopped as it began).  train-seg's own holds a readable settings.json of train-seg, or lies beside a
    lungai-seg model.json, or (a run started before settings.json was recorded) holds a member_K.state.json with
    its member_K.last.safetensors; and every member_K.state.json in it is a readable state.  --resume continues
    (and overwrites) only such a folder."""
    d = Path(ckpt_dir)
    if not d.exists():
        return None
    if not d.is_dir():
        return f"{d.name} is a file"
    if all(p.suffix == ".tmp" and p.is_file() for p in d.iterdir()):
        return None                              # no run yet
    settings = d / SETTINGS_JSON
    if settings.exists():
        doc = _read_json(settings)
        if doc is None or not all(k in doc for k in RUN_KEYS):
            return f"{d.name}/{SETTINGS_JSON} is not the settings file of a train-seg run"
    elif not any(_member_state(p) and p.with_name(p.name.replace(".state.json", ".last.safetensors")).is_file()
                 for p in d.glob(STATE_GLOB)):          # an older run's checkpoints: its members' states
        model = _read_json(d.parent / MODEL_JSON)
        if model is None or model.get("format") != FORMAT:
            return f"{d.name}/ holds no {SETTINGS_JSON} of a train-seg run"
    bad = sorted(p.name for p in d.glob(STATE_GLOB) if not _member_state(p))
    if bad:
        return f"{d.name}/{bad[0]} is not the state file of a train-seg member"
    return None


def untrained_run(ckpt_dir) -> bool:
    """``ckpt_dir`` (OUT/checkpoints) is a run stopped before any member finished an epoch (e.g. Ctrl-C during the
    first epoch): it holds train-seg's settings.json and nothing else but unfinished ``*.tmp`` files - no member
    state or weights -, no model.json lies beside it and no ``--member K`` process left its lock there (members in
    parallel compare their options with the first one's).  Nothing was trained: a new run into it, with or without
    --resume and with any options, starts anew and records its own settings (QA: such a folder refused other
    options both ways, "add --resume" and "was trained with other settings")."""
    d = Path(ckpt_dir)
    if not (d / SETTINGS_JSON).is_file() or (d.parent / MODEL_JSON).exists() or foreign_checkpoints(d):
        return False
    from lungai.seg.model_meta import members_in

    return not members_in(d.parent) and all(p.name == SETTINGS_JSON or p.suffix == ".tmp" for p in d.iterdir())


def _recorded(ckpt_dir) -> dict | None:
    """The settings recorded for a run: checkpoints/settings.json, else those of the model.json next to it; None
    when there is no run there.  A checkpoints/ folder that is not train-seg's (:func:`foreign_checkpoints`) is an
    InputError: a resume would train over files train-seg did not write."""
    why = foreign_checkpoints(ckpt_dir)
    if why:
        raise InputError(f"-o {Path(ckpt_dir).parent} holds a {Path(ckpt_dir).name}/ folder that train-seg did not "
                         f"write ({why}); it is left as it is",
                         "give a new (or empty) folder for the model, e.g. -o my_model")
    if untrained_run(ckpt_dir):                 # nothing trained: nothing a new run's options must agree with
        return None
    path = Path(ckpt_dir) / SETTINGS_JSON
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    model_json = Path(ckpt_dir).parent / MODEL_JSON
    if Path(ckpt_dir).is_dir() and model_json.is_file():
        doc = json.loads(model_json.read_text(encoding="utf-8"))
        t = doc.get("training", {})
        rec = {k: v for k, v in (doc.get("config") or {}).items() if k != "members"}
        rec.update({k: t[k2] for k, k2 in (("seed", "seed"), ("lr", "lr"), ("batch_size", "batch_size"),
                                            ("test_fraction", "test_fraction")) if k2 in t})
        if "label" in t.get("case_sources", {}):
            rec["label"] = t["case_sources"]["label"]
        rec.update({k: sorted(t[k]) for k in ("val_cases", "test_cases") if isinstance(t.get(k), list)})
        return json.loads(json.dumps(rec))
    return None


def check_settings(ckpt_dir, settings: dict) -> None:
    """InputError naming the settings that differ from those recorded for the run in ``ckpt_dir`` (if any) and
    the changes of the training's length that a resume cannot make exactly (``settings``' --epochs / --iters /
    --patience, :func:`schedule_changes`), or when ``ckpt_dir`` is not the checkpoint folder of a train-seg run
    (:func:`foreign_checkpoints`).  The one rule of ``train-seg --resume`` and of the Slicer panel's resume."""
    recorded = _recorded(ckpt_dir)
    if recorded is None:
        return
    _check_content(ckpt_dir, recorded, settings)
    diff = [k for k in settings if k in recorded and recorded[k] != settings[k] and k not in SCHEDULE_OPTIONS
            and k not in (CASE_CONTENT, IMPLANT_CONTENT)]
    schedule = {k: settings[k] for k in SCHEDULE_OPTIONS if k in settings}
    length = schedule_changes(ckpt_dir, schedule, settings.get("lr_schedule", recorded.get("lr_schedule")))
    if diff or length:
        shown = "; ".join([f"{SETTING_OPTIONS.get(k, k)} {_show(recorded[k], k)} then, {_show(settings[k], k)} now"
                           for k in diff if k not in CASE_PARTS] +
                          _case_changes(recorded, settings, [k for k in diff if k in CASE_PARTS], diff) +
                          [text for text, _ in length])
        given = "; ".join(value for _, value in length if value)
        same = "--resume with the same options as the first run" + (f" ({given})" if given else "")
        if any(value is None for _, value in length):        # the members disagree: no one value to give
            raise InputError(f"{Path(ckpt_dir).parent} holds members trained with different settings: {shown}",
                             DISAGREE_FIX + (f"; and {same}" if diff or given else ""))
        raise InputError(f"{Path(ckpt_dir).parent} was trained with other settings than this --resume: {shown}",
                         f"{same}, or choose a new -o folder to start anew")


# the options the split by patient is drawn from (lungai.seg.dataset.split_patients): the same cases split otherwise
SPLIT_OPTIONS = ("seed", "val_fraction", "test_fraction")


def _case_changes(recorded: dict, settings: dict, parts: list, diff: list) -> list:
    """The changed case lists ``parts`` (keys of CASE_PARTS), each as :func:`_case_change` says it, the last one
    followed by their cause, said once: the split options in ``diff`` when the run holds the same cases as before
    (QA: a --resume with another --seed blamed "other data, or other --images / --masks ..." for the split that
    --seed alone changed), else other data."""
    if not parts:
        return []
    texts = [_case_change(CASE_PARTS[k], recorded[k], settings[k]) for k in parts]
    cases = [{c for k in CASE_PARTS if isinstance(d.get(k), list) for c in d[k]} for d in (recorded, settings)]
    split = [SETTING_OPTIONS[k] for k in SPLIT_OPTIONS if k in diff]
    if split and cases[0] == cases[1]:
        why = (f"the same cases, split otherwise: {' and '.join(split)} "
               f"{'changes' if len(split) == 1 else 'change'} which patients are training / validation / test cases")
    else:
        why = "other data, or other --images / --masks / --patients / --max-cases / --synthetic ..."
    return texts[:-1] + [f"{texts[-1]} ({why})"]


def _case_change(part: str, then: list, now: list) -> str:
    """E.g. "the test cases: 2 not there then (A_1, B_2), 1 not there now (C_1)"."""
    def few(ids):
        return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    added, gone = sorted(set(now) - set(then)), sorted(set(then) - set(now))
    return f"the {part} cases: " + ", ".join(([f"{len(added)} not there then ({few(added)})"] if added else []) +
                                             ([f"{len(gone)} not there now ({few(gone)})"] if gone else []))


# a recorded setting that was not given (None), said as what it then means (QA: "--label None then, 1 now",
# "--fg-fraction None then, 0.5 now")
NOT_GIVEN = {"label": "not given (any nonzero voxel)", "fg_fraction": "not given (2/3 for crops, 1/3 for whole CTs)"}
FLAGS = ("tta", "deep_supervision")        # on / off options: "given" / "not given" (QA: "--tta False then, True now")


def _show(v, key: str = "") -> str:
    """A recorded or given setting ``key`` as the refusal of a resume says it: lists comma-separated, a flag given
    or not, a setting not given as what it then means."""
    if key in FLAGS and isinstance(v, bool):
        return "given" if v else "not given"
    if v is None:
        return NOT_GIVEN.get(key, "not given")
    return ",".join(str(x) for x in v) if isinstance(v, list) else str(v)


def record_settings(ckpt_dir, settings: dict) -> None:
    """Writes checkpoints/settings.json for a run that has none yet (not over checkpoints of unknown settings);
    to one that has, adds the settings it lacks (e.g. the data options after a --from-arrays run)."""
    d = Path(ckpt_dir)
    path = d / SETTINGS_JSON
    settings = {k: v for k, v in settings.items() if k not in SCHEDULE_OPTIONS}   # (the members' states hold them)
    if path.is_file() and not untrained_run(d):      # (a run stopped before its first epoch: its settings replaced)
        recorded = json.loads(path.read_text(encoding="utf-8"))
        older = recorded.get(CASE_CONTENT)        # one hash per case (lungai before the per-file fingerprints)
        if (CASE_CONTENT in settings and isinstance(older, dict)
                and any(not isinstance(v, dict) for v in older.values())):
            recorded.pop(CASE_CONTENT)
        if set(settings) <= set(recorded):
            return
        settings = {**settings, **recorded}
    elif list(d.glob(STATE_GLOB)):
        return
    d.mkdir(parents=True, exist_ok=True)
    import os

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    tmp.replace(path)
