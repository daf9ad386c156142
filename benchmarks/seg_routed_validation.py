"""VALIDATION of a routed model choice (``lungai-seg-routed``: the default U-Net, then the DynUNet when the U-Net's
tumour is larger than ``route_volume_ml``), run for real; no test case is read.

Parts: (1) the shipped models' validation split (the large model's training record; crops whole, whole chests in
automatic mode), (2) tumours implanted into LUNG1-002 with the validation seeds (700000+, seed mode; the DynUNet
trained with LUNG1-002 as an implant background, so its Dice there is flattered).  Prints per part and method the
mean Dice (all, >= 30 mm), r(confidence, Dice), the failures (Dice < 0.5) flagged, how many cases the second model
kept, and writes ``<part>_<method>.csv`` (the first model alone on the same cases: its validation tables from
``tools/recalibrate_seg.py``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_routed_validation.py -o OUT [--model lungai-seg-routed]
        [--methods ensemble,mc-dropout] [--implants 40]
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

from lungai.seg.choice import ROUTE_RULE, ModelChoice  # noqa: E402
from lungai.seg.evaluate import evaluate_cases, is_large  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import LARGE_TUMOUR_MODEL_NAME, resolve_model_dir  # noqa: E402


def summary(df: pd.DataFrame, second: str) -> dict:
    """Mean Dice (all / >= 30 mm), r(confidence, Dice), failures flagged, second model kept - cases with a tumour."""
    t = df[df["volume_true_ml"] > 0]
    big = t[is_large(t["size_mm"])]
    fail = t[t["dice"] < 0.5]
    r = float(np.corrcoef(t["confidence"], t["dice"])[0, 1]) if len(t) > 2 else float("nan")
    kept = int((t.get("model_kept", pd.Series(dtype=str)) == second).sum())
    return {"n": len(t), "dice": t["dice"].mean(), "dice_gt30": big["dice"].mean() if len(big) else float("nan"),
            "n_gt30": len(big), "r": r, "failures_flagged": f"{int(fail['needs_review'].sum())} of {len(fail)}",
            "second_kept": kept}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--model", default="lungai-seg-routed")
    ap.add_argument("--methods", default="ensemble,mc-dropout")
    ap.add_argument("--implants", type=int, default=40)
    ap.add_argument("--mc-passes", type=int, default=8)
    args = ap.parse_args(argv)
    from seg_select_validation import (NSCLC, VALIDATION_BACKGROUND, implanted_validation_cases,
                                       validation_cases)
    choice = load_model(resolve_model_dir(args.model))
    if not isinstance(choice, ModelChoice) or choice.meta.get("rule") != ROUTE_RULE:
        raise SystemExit(f"{args.model} is not a routed model choice (rule {ROUTE_RULE!r})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    training = load_model(resolve_model_dir(LARGE_TUMOUR_MODEL_NAME))[2]["training"]
    parts = {"validation": lambda: validation_cases(training)}
    if (NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz").exists() and args.implants:
        parts["implants"] = lambda: implanted_validation_cases(args.implants)
    elif args.implants:
        print(f"({NSCLC / VALIDATION_BACKGROUND}_ct.nii.gz not found: the implants part is skipped; it needs ../shared/data)")
    print("| part | method | model | n | mean Dice | >= 30 mm (n) | r(conf, Dice) | failures flagged | second model kept |")
    print("|---|---|---|---|---|---|---|---|---|")
    for part, cases_fn in parts.items():
        cases = cases_fn()
        for method in [m for m in args.methods.split(",") if m]:
            t0 = time.perf_counter()
            df = evaluate_cases(choice, cases, method, args.mc_passes, 0, seeded=part == "implants")
            df.to_csv(out / f"{part}_{method}.csv", index=False)
            wall = time.perf_counter() - t0
            s = summary(df, choice.names[1])
            print(f"| {part} | {method} | {args.model} | {s['n']} | {s['dice']:.3f} | {s['dice_gt30']:.3f} "
                  f"({s['n_gt30']}) | {s['r']:.3f} | {s['failures_flagged']} | {s['second_kept']} | ({wall:.0f} s)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
