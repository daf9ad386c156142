"""Training a whole model: split by patient, load arrays, train K members, save, calibrate."""

from __future__ import annotations

from collections import Counter

import torch

from lungai.progress import task
from lungai.seg import dataset
from lungai.seg.calibrate import calibrate_model
from lungai.seg.config import SegConfig
from lungai.seg.model_io import load_model, save_model
from lungai.seg.train import recipe_of, train_member


def train_ensemble(cfg: SegConfig, cases: list, out_dir, *, seed: int = 0, val_fraction: float = 0.2,
                   test_fraction: float = 0.0, case_sources: dict | None = None,
                   epochs: int = 20, iters_per_epoch: int = 50, batch_size: int = 8, lr: float = 2e-3,
                   patience: int = 5, mc_passes: int = 10, command: str = "", recipe: dict | None = None,
                   only_member: int | None = None) -> dict | None:
    """Train ``cfg.members`` members, save the model and calibrate its confidence.  ``only_member`` k trains
    member k alone into the checkpoints and returns None (members in parallel processes); the same call
    without it (resuming) then finds every member finished, saves and calibrates."""
    from pathlib import Path

    torch.use_deterministic_algorithms(True, warn_only=True)
    out_dir = Path(out_dir)
    train_cases, val_cases, *rest = dataset.split_patients(cases, val_fraction, seed, test_fraction)
    test_cases = rest[0] if rest else []          # never loaded here: only `eval-seg --split test` reads them
    with task("load training data", len(train_cases) + len(val_cases)) as bar:
        train_data, val_data = [], []
        for c in train_cases:
            train_data.append(dataset.to_arrays(c, cfg))
            bar.update(1, c.case_id)
        for c in val_cases:
            val_data.append(dataset.to_arrays(c, cfg))
            bar.update(1, c.case_id)
    states, records = [], []
    with task("train-seg", cfg.members * epochs * iters_per_epoch) as bar:
        for k in range(cfg.members) if only_member is None else [only_member]:
            sd, rec = train_member(k, cfg, train_data, val_data, seed=seed, epochs=epochs,
                                   iters_per_epoch=iters_per_epoch, batch_size=batch_size, lr=lr,
                                   patience=patience, ckpt_dir=out_dir / "checkpoints", progress=bar,
                                   recipe=recipe)
            states.append(sd)
            records.append(rec)
            if rec["epochs_run"] < epochs:   # early stop: count the skipped iterations as done
                bar.update((epochs - rec["epochs_run"]) * iters_per_epoch, f"member {k} stopped early")
    if only_member is not None:
        return None

    def source(c):
        if c.meta.get("implant_background"):
            return "real CT (implant background)"
        if c.meta.get("implanted"):
            return "implanted into a real CT"
        if c.patient.startswith("chest-"):
            return "synthetic whole chest"
        return "synthetic phantom" if c.patient.startswith("phantom-") else "user images"

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
            "val_cases": [c.case_id for c in val_cases],
            "test_fraction": test_fraction, "n_test_cases": len(test_cases),
            "n_test_patients": len({c.patient for c in test_cases}),
            "test_sources": dict(Counter(source(c) for c in test_cases)),
            "test_cases": [c.case_id for c in test_cases],
            "case_sources": case_sources or {},
        },
        "members": records,
    }
    save_model(out_dir, cfg, states, meta)
    model = load_model(out_dir)
    with task("calibrate confidence", 2 * len(val_cases)) as bar:
        calibrate_model(out_dir, model, val_cases, mc_passes=mc_passes, seed=seed, progress=bar)
    return model[2]
