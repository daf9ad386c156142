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

from lungai.seg.confidence import FEATURES, choose_review_threshold, confidence, fit_calibration
from lungai.seg.evaluate import evaluate_cases, has_tumour, summarize
from lungai.seg.model_io import MODEL_JSON, write_json

METHODS = {"ensemble": "deep ensemble", "mc-dropout": "MC dropout (member 0)"}


def calibrate_model(model_dir, model, val_cases, *, mc_passes: int = 10, seed: int = 0, progress=None) -> dict:
    """Updates model.json (calibration, review, validation) and the in-memory meta; returns the tables."""
    from pathlib import Path

    cfg, nets, meta = model
    tables = {}
    for method in METHODS:
        if method == "ensemble" and len(nets) < 2:
            continue
        df = evaluate_cases(model, val_cases, method, mc_passes, seed, progress)
        fit = has_tumour(df)
        if not fit.any():          # no validation case with a tumour: fit on what there is
            fit[:] = True
        X = df[[f"f_{f}" for f in FEATURES]].to_numpy(float)
        cal = fit_calibration(X[fit], df["dice"].to_numpy(float)[fit], seed)
        conf = np.array([confidence(dict(zip(FEATURES, x)), cal) for x in X])
        thr, how = choose_review_threshold(conf[fit], df["dice"].to_numpy(float)[fit])
        df["confidence"] = conf
        df["needs_review"] = conf < thr
        df.to_csv(Path(model_dir) / f"validation_{method}.csv", index=False)
        meta.setdefault("calibration", {})[method] = cal
        meta.setdefault("review", {})[method] = {"threshold": round(thr, 4), "how": how}
        s = summarize(df)
        s["pearson_r_confidence_dice_cv"] = cal["pearson_r_cv"]
        s["description"] = METHODS[method] + (f", {mc_passes} passes" if method == "mc-dropout" else
                                              f", {len(nets)} members")
        meta.setdefault("validation", {})[method] = s
        tables[method] = df
    write_json(Path(model_dir) / MODEL_JSON, meta)
    return tables
