"""Fit the confidence score of a model on validation cases, for the ensemble and for MC dropout.

For each method: run inference on every validation case (on its input grid), fit the linear map
features -> Dice (:func:`lungai.seg.confidence.fit_calibration`), choose the review threshold,
and record both, with Pearson r(confidence, Dice), in model.json; the per-case table is written
as ``validation_<method>.csv`` next to it.

The confidence estimates the Dice of the tumour found, so it is fitted on the validation cases
that hold a tumour; tumour-free validation crops (``dataset.synthetic_cases`` adds some) are
reported apart, as the share in which the model still finds a tumour.
"""

from __future__ import annotations

import numpy as np

from lungai.errors import InputError, agree, counted
from lungai.seg.config import MC_PASSES
from lungai.seg.confidence import (FEATURES, KEPT_REGION_FEATURES, MODE_FEATURE, SIGN_OF, choose_review_threshold,
                                   confidence, fit_calibration)
from lungai.seg.evaluate import evaluate_cases, has_tumour, summarize
from lungai.seg.model_io import MODEL_JSON, write_json

METHODS = {"ensemble": "deep ensemble", "mc-dropout": "MC dropout (member 0)"}


def table_file(method: str) -> str:
    """The per-case validation table of ``method`` in a model folder (written by :func:`fit_tables`)."""
    return f"validation_{method}.csv"


# model.json's record of the validation tables its calibration wrote (:func:`table_file` names): only these are ever
# removed or replaced (QA trainfollow67: a --resume replacing a 1-member model deleted a validation_ensemble.csv of
# the user's that the model never wrote)
TABLES_KEY = "validation_tables"


def written_tables(doc) -> set:
    """The validation tables (file names) that the model of model.json ``doc`` records as written: its
    :data:`TABLES_KEY` list, else (a model.json from before the record) one per method of its calibration
    (:func:`fit_tables` writes the table of each method it fits)."""
    if not isinstance(doc, dict):
        return set()
    listed = doc.get(TABLES_KEY)
    if isinstance(listed, list):
        return {name for name in listed if name in {table_file(m) for m in METHODS}}
    calibration = doc.get("calibration")
    return {table_file(m) for m in METHODS if isinstance(calibration, dict) and m in calibration}


def remove_stale_tables(model_dir, methods, written) -> None:
    """Removes the validation tables (:func:`table_file`) of the methods of :data:`METHODS` not in ``methods`` (those
    the model in ``model_dir`` was calibrated with) that the earlier model there wrote (``written``: file names, its
    :func:`written_tables`): e.g. the deep ensemble's of a 2-member model resumed with --members 1, which has no
    ensemble (QA: its validation_ensemble.csv stayed beside the one-member model, and ``tools/recalibrate_seg.py
    --from-tables`` fitted an ensemble calibration from it).  A file of that name that no model record lists is the
    user's: kept as it is."""
    from pathlib import Path

    for method in METHODS:
        path = Path(model_dir) / table_file(method)
        if method not in methods and path.name in written and (path.is_file() or path.is_symlink()):
            path.unlink()


FEATURE_SETS = {"box": FEATURES, "kept-region": KEPT_REGION_FEATURES}


def calibrate_model(model_dir, model, val_cases, *, mc_passes: int = MC_PASSES, seed: int = 0, progress=None,
                    seeded_cases=(), features: str = "box") -> dict:
    """Updates model.json (calibration, review, validation) and the in-memory meta; returns the tables.
    ``seeded_cases``: more validation cases run in seed mode (a seed at the tumour's centre: tumours implanted
    into a real CT), fitted together with ``val_cases``; ``features``: a key of ``FEATURE_SETS``."""
    import pandas as pd

    cfg, nets, meta = model
    written = written_tables(meta)       # what the model.json it was saved over recorded (train-seg carries it over)
    tables = {}
    for method in METHODS:
        if method == "ensemble" and len(nets) < 2:
            continue
        parts = [evaluate_cases(model, val_cases, method, mc_passes, seed, progress, flip_check=True,
                                keep_going=False)]
        if seeded_cases:
            parts.append(evaluate_cases(model, seeded_cases, method, mc_passes, seed, progress, seeded=True,
                                        flip_check=True, keep_going=False))
        tables[method] = pd.concat(parts, ignore_index=True)
    remove_stale_tables(model_dir, tables, written)
    return fit_tables(model_dir, meta, tables, mc_passes=mc_passes, n_members=len(nets), seed=seed,
                      features=features)


def review_reasons_with(df, low: np.ndarray, uncalibrated: bool = False) -> list:
    """Per row the review reasons of a validation table with the low-confidence reason recomputed (``low``: the
    confidence is below the new threshold), the uncalibrated one said again only when the new calibration is not
    fitted either (``uncalibrated``; the table's cases ran before it was fitted), and the others (image edge, box,
    seed, candidates) kept as recorded in its ``review_reasons`` column ("; "-joined, as
    :func:`lungai.seg.evaluate.evaluate_case` writes it)."""
    from lungai.seg.infer import LOW_CONFIDENCE, UNCALIBRATED_REASON

    recorded = df["review_reasons"] if "review_reasons" in df else [""] * len(df)
    out = []
    for text, is_low in zip(recorded, low):
        others = [r for r in (text.split("; ") if isinstance(text, str) and text else [])
                  if r not in (LOW_CONFIDENCE, UNCALIBRATED_REASON)]
        out.append(([LOW_CONFIDENCE] if is_low else []) + ([UNCALIBRATED_REASON] if uncalibrated else []) + others)
    return out


def fit_tables(model_dir, meta: dict, tables: dict, *, mc_passes: int, n_members: int, seed: int = 0,
               features: str = "box") -> dict:
    """The fit of :func:`calibrate_model` from its per-case validation tables ({method: DataFrame of
    :func:`lungai.seg.evaluate.evaluate_cases` rows}); also refits from the ``validation_<method>.csv`` tables
    of an earlier calibration (``tools/recalibrate_seg.py --from-tables``).  A table from before the feature
    ``automatic_mode`` existed gets it from its ``roi_mode`` column (``lungs`` = automatic mode).  ``features``:
    the box's map features or the kept region's (``FEATURE_SETS``).  The review threshold is chosen on
    confidence < t alone; the tables' ``needs_review`` is then any review reason (:func:`review_reasons_with`), as
    ``lungai segment`` flags."""
    from pathlib import Path

    if features not in FEATURE_SETS:
        raise InputError(f"unknown confidence feature set {features!r}", f"use one of {', '.join(FEATURE_SETS)}")
    names = FEATURE_SETS[features]
    for method, df in tables.items():
        if f"f_{MODE_FEATURE}" not in df:
            df[f"f_{MODE_FEATURE}"] = (df["roi_mode"] == "lungs").astype(float)
        missing = [f for f in names if f"f_{f}" not in df]
        if missing:
            raise InputError(f"the {method} validation table has no {agree(len(missing), 'feature', 'features')} "
                             f"{', '.join(missing)}",
                             "run the calibration on the validation cases again (it computes every feature)")
        fit = has_tumour(df)
        if not fit.any():          # no validation case with a tumour: fit on what there is
            fit[:] = True
        X = df[[f"f_{f}" for f in names]].to_numpy(float)
        cal = fit_calibration(X[fit], df["dice"].to_numpy(float)[fit], seed, features=names,
                              signs=[SIGN_OF[f] for f in names])
        cal["feature_set"] = features
        if method == "mc-dropout":
            cal["mc_passes"] = int(mc_passes)     # lungai segment warns when run with other passes
        seeded = df["roi_mode"].eq("seed").to_numpy() & fit if "roi_mode" in df else np.zeros(len(df), bool)
        cal["n_seeded_cases"] = int(seeded.sum())      # e.g. tumours implanted into a real CT, seed mode
        cal["how"] += (f"; features: the {'kept region' if features == 'kept-region' else 'box'}'s maps"
                       + (f"; the {int(fit.sum())} validation cases include {int(seeded.sum())} in seed mode (tumours "
                          "implanted into a real CT)" if seeded.any() else ""))
        conf = np.array([confidence(dict(zip(names, x)), cal) for x in X])
        thr, how = choose_review_threshold(conf[fit], df["dice"].to_numpy(float)[fit])
        df["confidence"] = conf
        # the threshold was chosen on conf < t alone (above)
        reasons = review_reasons_with(df, conf < thr, uncalibrated=not cal.get("fitted"))
        df["review_reasons"] = ["; ".join(r) for r in reasons]
        df["needs_review"] = [bool(r) for r in reasons]
        df.to_csv(Path(model_dir) / table_file(method), index=False)
        meta.setdefault("calibration", {})[method] = cal
        meta.setdefault("review", {})[method] = {"threshold": round(thr, 4), "how": how}
        s = summarize(df)
        s["pearson_r_confidence_dice_cv"] = cal["pearson_r_cv"]
        s["description"] = METHODS[method] + (f", {counted(mc_passes, 'pass', 'passes')}" if method == "mc-dropout"
                                              else f", {counted(n_members, 'member')}")
        meta.setdefault("validation", {})[method] = s
    meta[TABLES_KEY] = sorted(table_file(m) for m in METHODS if m in meta.get("calibration", {}))
    write_json(Path(model_dir) / MODEL_JSON, meta)
    return tables
