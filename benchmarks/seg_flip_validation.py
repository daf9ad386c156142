"""VALIDATION of the confidence feature ``flip_consistency`` for one model: the model's validation crops (LIDC and
phantom crops, the whole crop as ROI; no test case is read, the whole synthetic chests are left out) run with
the flip check, then r(confidence, Dice) of the monotone calibration (5-fold CV, mean over 10 fold seeds) with the
four map features, with the flip consistency alone and with both - for each set of check flips asked for.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_flip_validation.py --model lungai-seg-dynunet \
        [--flips zyx,z,y,x,all] [-o OUT]

``zyx`` (mirrored along z, along y and along x: 3 more passes) is what the product runs
(``lungai.seg.predict.CHECK_FLIPS``); ``z`` / ``y`` / ``x`` one axis (1 more pass); ``all`` the 7 flips of TTA.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lungai.seg import predict  # noqa: E402
from lungai.seg.confidence import FEATURES, SIGNS, fit_calibration  # noqa: E402
from lungai.seg.evaluate import evaluate_cases, has_tumour  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402

FLIP_SETS = {"zyx": ((2,), (3,), (4,)), "z": ((2,),), "y": ((3,),), "x": ((4,),),
             "all": tuple(f for f in predict.Mirrored.FLIPS if f)}
MAP_FEATURES = FEATURES[:4]


def r_cv(df, features, signs, seeds=10) -> float:
    X, y = df[[f"f_{f}" for f in features]].to_numpy(float), df["dice"].to_numpy(float)
    return float(np.mean([fit_calibration(X, y, seed=s, features=features, signs=signs)["pearson_r_cv"]
                          for s in range(seeds)]))


def main():
    from seg_select_validation import validation_cases

    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lungai-seg-dynunet")
    ap.add_argument("--cases-from", default="lungai-seg-unet-large",
                    help="model whose training record lists the validation cases (the shipped models share them)")
    ap.add_argument("--flips", default="zyx", help=f"comma-separated, of {', '.join(FLIP_SETS)}")
    ap.add_argument("-o", "--out", default=None, help="folder for the per-case CSVs")
    args = ap.parse_args()
    model = load_model(resolve_model_dir(args.model))
    cases = [c for c in validation_cases(load_model(resolve_model_dir(args.cases_from))[2]["training"])
             if not c.meta.get("whole_chest")]
    lines = [f"model {args.model}, ensemble, {len(cases)} validation crops",
             "| check flips | more passes | r: 4 map features | r: flip consistency alone | r: both |",
             "|---|---|---|---|---|"]
    shipped = predict.CHECK_FLIPS
    for name in args.flips.split(","):
        predict.CHECK_FLIPS = FLIP_SETS[name]
        t0 = time.perf_counter()
        df = evaluate_cases(model, cases, "ensemble", flip_check=True)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            df.to_csv(Path(args.out) / f"flip_{name}.csv", index=False)
        t = df[has_tumour(df)]
        lines.append(f"| {name} | {len(FLIP_SETS[name])} | {r_cv(t, MAP_FEATURES, SIGNS[:4]):.3f} | "
                     f"{r_cv(t, ['flip_consistency'], [1]):.3f} | {r_cv(t, FEATURES[:5], SIGNS[:5]):.3f} |")
    predict.CHECK_FLIPS = shipped
    print("\n".join(lines))


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
