"""Training a whole model: split by patient, load arrays, train K members, save, calibrate."""

from __future__ import annotations

from collections import Counter

import torch

from lungai.progress import task
from lungai.seg.config import MC_PASSES, SegConfig
from lungai.seg.model_io import MODEL_JSON, install_model, load_model, replaces_model, save_model, staging_folder
from lungai.seg.train import recipe_of, train_member


def train_ensemble(cfg: SegConfig, cases: list, out_dir, *, seed: int = 0, val_fraction: float = 0.2,
                   test_fraction: float = 0.0, case_sources: dict | None = None,
                   epochs: int = 20, iters_per_epoch: int = 50, batch_size: int = 8, lr: float = 2e-3,
                   patience: int = 5, mc_passes: int = MC_PASSES, command: str = "", recipe: dict | None = None,
                   only_member: int | None = None, save_arrays_to=None, arrays_from=None,
                   device: str = "cpu", workers: int = 0, max_whole: int | None = None) -> dict | None:
    """Train ``cfg.members`` members, save the model and calibrate its confidence.  ``only_member`` k trains
    member k alone into the checkpoints and returns None (members in parallel processes); the same call
    without it (resuming) then finds every member finished, saves and calibrates.

    ``save_arrays_to``: only write the split's training arrays to that file (:mod:`lungai.seg.packed`) and return
    None (``max_whole``: see :func:`lungai.seg.packed.save_arrays`).  ``arrays_from``: train the members'
    checkpoints from such a file (``cases`` unused; on a machine without the source data, e.g. an accelerator)
    and return None; the same call without it, with the source data, then saves and calibrates."""
    from pathlib import Path

    from lungai.seg import packed

    torch.use_deterministic_algorithms(True, warn_only=True)
    out_dir = Path(out_dir)
    if only_member is None and save_arrays_to is None and arrays_from is None:     # a run that saves the model
        from lungai.seg.model_io import check_member_names

        check_member_names(out_dir, cfg.members)     # a user's member_<K> file it would write over: refused first
    split = {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    from lungai.seg import checkpoint

    ckpt_dir = out_dir / "checkpoints"
    settings = checkpoint.run_settings(cfg, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                       lr=lr, batch_size=batch_size, recipe=recipe,
                                       label=(case_sources or {}).get("label"))
    settings.update(checkpoint.schedule_settings(epochs=epochs, iters_per_epoch=iters_per_epoch, patience=patience))
    for k in range(cfg.members):      # a member killed between its two checkpoint files: its state.json caught up
        checkpoint.repair_state(ckpt_dir, k)
    if arrays_from is None:           # the split (cheap) first: a resumed run must have the first run's cases
        from lungai.seg import dataset                  # SimpleITK: not needed to train from arrays

        train_cases, val_cases, *rest = dataset.split_patients(cases, val_fraction, seed, test_fraction)
        test_cases = rest[0] if rest else []      # never trained on: only `eval-seg --split test` evaluates them
        print(dataset.split_summary(train_cases, val_cases, test_cases))
        parts = {"train_cases": train_cases, "val_cases": val_cases, "test_cases": test_cases}
        if save_arrays_to is None:    # the case lists and options first: a resume they refuse hashes no file
            checkpoint.check_settings(ckpt_dir, {**settings, **checkpoint.data_settings(
                case_sources, parts, fingerprints=False)})
        # after a resume's settings (another --label is named as such): early stopping and calibration use it
        dataset.check_validation_has_tumour(val_cases)
        settings.update(checkpoint.data_settings(case_sources, parts))     # the files' fingerprints too
    if save_arrays_to is None:        # before minutes of loading: a resumed run has the first run's settings
        checkpoint.check_settings(ckpt_dir, settings)
    if arrays_from is not None:
        train_data, val_data, saved = packed.load_arrays(arrays_from, cfg)
        # the file's split cases, and (files of this lungai) the data settings of the --save-arrays run: case
        # lists, options and fingerprints (the source data may be elsewhere)
        settings.update({k: sorted(saved[k]) for k in ("train_cases", "val_cases") if k in saved})
        settings.update(saved.get("data") or {})
        checkpoint.check_settings(ckpt_dir, settings)
        if {k: saved.get(k) for k in split} != split:
            from lungai.errors import InputError

            raise InputError(f"{arrays_from} was split with {({k: saved.get(k) for k in split})}, not {split}",
                             "give the same --seed / --val-fraction / --test-fraction as --save-arrays")
        # whole CTs left out of the file: the kept ones get the share of the draws they had among all of them
        from lungai.seg.train import WHOLE_CT_FRACTION

        left = saved.get("left_out", [])
        left_train = len(set(left) & set(saved.get("train_cases", [])))
        kept = sum("hard_idx" in d for d in train_data)
        whole_fraction = WHOLE_CT_FRACTION * kept / (kept + left_train) if left_train else WHOLE_CT_FRACTION
        recipe = dict(recipe or {}, whole_fraction=whole_fraction)
        source = {"arrays": Path(arrays_from).name, "left_out": left, "whole_ct_fraction": round(whole_fraction, 4)}
        checkpoint.record_settings(ckpt_dir, settings)
        _train_members(cfg, train_data, val_data, out_dir, seed, epochs, iters_per_epoch, batch_size, lr,
                       patience, recipe, only_member, device, workers, source)
        return None
    from lungai.seg.calibrate import calibrate_model

    with task("load training data", len(train_cases) + len(val_cases) + len(test_cases)) as bar:
        # every case whose image cannot be used named at once; the test cases' CTs are only read (checked as
        # eval-seg --split test reads them, so that it does not fail after the training)
        train_data, val_data = dataset.load_checked([train_cases, val_cases, test_cases], cfg, bar)
    if save_arrays_to is not None:
        split.update(train_cases=[c.case_id for c in train_cases], val_cases=[c.case_id for c in val_cases],
                     data={k: v for k, v in settings.items() if k in checkpoint.DATA_KEYS})
        kept = packed.kept_case_count(train_data, val_data, max_whole)
        with task("write training arrays", kept) as bar:
            packed.save_arrays(save_arrays_to, train_data, val_data, cfg, split, max_whole, progress=bar)
        return None
    checkpoint.record_settings(ckpt_dir, settings)
    states, records = _train_members(cfg, train_data, val_data, out_dir, seed, epochs, iters_per_epoch,
                                     batch_size, lr, patience, recipe, only_member, device, workers)
    if only_member is not None:
        return None

    def source(c):
        if c.meta.get("implant_background"):
            return "real CT (implant background)"
        if c.meta.get("implanted"):
            return "implanted into a real CT"
        if c.patient.startswith("chest-"):
            return "synthetic whole chest"
        if c.patient.startswith("phantom-"):
            return "synthetic phantom"
        return "user whole CT" if dataset.is_whole_ct(c) else "user images"     # "user images": the crops

    meta = {
        "training": {
            "command": command, "seed": seed, "epochs": epochs, "iters_per_epoch": iters_per_epoch,
            "batch_size": batch_size, "lr": lr, "patience": patience, "loss": "Dice + cross-entropy (MONAI DiceCELoss)",
            "optimizer": "Adam (weight decay 1e-5)", "recipe": recipe_of(recipe),
            "deep_supervision": cfg.deep_supervision, "split": "patient-level, no patient in both sets",
            "n_train_cases": len(train_cases), "n_val_cases": len(val_cases),
            "n_train_patients": len({c.patient for c in train_cases}),
            "n_val_patients": len({c.patient for c in val_cases}),
            "train_sources": dict(Counter(source(c) for c in train_cases)),
            "val_sources": dict(Counter(source(c) for c in val_cases)),
            # the user's mask files without a tumour voxel (of the --label): trained on as tumour-free cases
            **{f"n_{part}_tumour_free_masks": sum(bool(c.meta.get("tumour_free")) for c in part_cases)
               for part, part_cases in (("train", train_cases), ("val", val_cases), ("test", test_cases))},
            "val_cases": [c.case_id for c in val_cases],
            "test_fraction": test_fraction, "n_test_cases": len(test_cases),
            "n_test_patients": len({c.patient for c in test_cases}),
            "test_sources": dict(Counter(source(c) for c in test_cases)),
            "test_cases": [c.case_id for c in test_cases],
            "case_sources": case_sources or {},
            # the background CTs' patients: a report names them, and says when the segmented CT is one of them
            "implant_background_patients": sorted({c.patient for c in train_cases if c.meta.get("implant_background")}),
        },
        "members": records,
        # the salted hashes of the training / validation patients (each with its case names), no plain ID: eval-seg
        # leaves their cases out (lungai.seg.evaluate.seen_patients)
        "training_patients": patient_record(train_cases), "validation_patients": patient_record(val_cases),
    }
    notes = [n for n in (dataset.patient_names_note(cases, (case_sources or {}).get("patients")),
                         dataset.unmasked_backgrounds_note(cases), dataset.repository_test_cases_note(cases)) if n]
    if notes:
        meta["training"]["notes"] = notes
    where = [r["trained_on"] for r in records if "trained_on" in r]
    if where:     # e.g. on an accelerator from an arrays file that left whole CTs out: say so next to the sources
        meta["training"]["trained_on"] = where[0] if all(w == where[0] for w in where) else where
    # a finished model in out_dir (a --resume with more epochs, other members or MC passes) stays whole and usable
    # until the new one is calibrated: saved and calibrated beside its checkpoints, then moved in
    replacing = replaces_model(out_dir)
    target = staging_folder(out_dir) if replacing else out_dir
    # the validation tables this calibration writes, and (saved over in place) those the model.json it replaces
    # recorded, listed before they are written: a stop during the calibration leaves none unrecorded, and only
    # recorded ones are ever removed (a user's file of that name is kept)
    from lungai.seg.calibrate import METHODS, TABLES_KEY, table_file, written_tables

    earlier = set() if replacing else written_tables(_read_earlier(f"{target}/{MODEL_JSON}"))
    meta[TABLES_KEY] = sorted(earlier | {table_file(m) for m in METHODS if m != "ensemble" or len(states) > 1})
    from lungai.seg.model_io import saving_journal

    # "status": "calibrating" until calibrated; saved in place, the members are recorded before they are written
    save_model(target, cfg, states, meta, complete=False, journal=None if replacing else saving_journal(out_dir))
    model = load_model(target, allow_incomplete=True)
    model[2].pop("status", None)                 # the calibration writes model.json complete when it has finished
    with task("calibrate confidence", 2 * len(val_cases)) as bar:
        calibrate_model(target, model, val_cases, mc_passes=mc_passes, seed=seed, progress=bar)
    if replacing:
        install_model(target, out_dir)
    return model[2]


def _read_earlier(path):
    """The model.json in ``path`` as a dict (None when there is none or it is not readable JSON)."""
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def patient_record(cases: list) -> dict:
    """The ``training_patients`` record (:func:`lungai.model_files.training_patients`: salted SHA-256 hashes) of the
    patients of ``cases``, each patient with its ID and its cases' names as its IDs."""
    from lungai.model_files import training_patients

    ids: dict = {}
    for c in cases:
        ids.setdefault(str(c.patient), {str(c.patient)}).add(str(c.case_id))
    return training_patients([tuple(sorted(v)) for _, v in sorted(ids.items())])


def _train_members(cfg, train_data, val_data, out_dir, seed, epochs, iters_per_epoch, batch_size, lr, patience,
                   recipe, only_member, device, workers, source: dict | None = None) -> tuple:
    states, records = [], []
    with task("train-seg", cfg.members * epochs * iters_per_epoch) as bar:
        for k in range(cfg.members) if only_member is None else [only_member]:
            sd, rec = train_member(k, cfg, train_data, val_data, seed=seed, epochs=epochs,
                                   iters_per_epoch=iters_per_epoch, batch_size=batch_size, lr=lr,
                                   patience=patience, ckpt_dir=out_dir / "checkpoints", progress=bar,
                                   recipe=recipe, device=device, workers=workers, data_source=source)
            states.append(sd)
            records.append(rec)
            if rec["epochs_run"] < epochs:   # early stop: count the skipped iterations as done
                bar.update((epochs - rec["epochs_run"]) * iters_per_epoch, f"member {k} stopped early")
    return states, records
