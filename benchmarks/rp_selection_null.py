"""Does `lungai rp train` report an honest AUC for the model it locks?  Outcome unrelated to every
feature (pure noise, clinical + dosimetric + radiomic columns): the AUC reported for the locked model
(feature set x model chosen inside every outer CV fold, lungai) must be chance, 0.5; the best of the
per-combination nested-CV AUCs (choosing after looking, what `rp train` reported before) is optimistic.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rp_selection_null.py --n 300 --seeds 20

Prints, over the seeds, mean +- SD of both figures and the run time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LUNGAI_PROGRESS", "off")

from lungai.seg.evaluate import fmt_num, sample_sd  # noqa: E402
from lungai.rp import train_rp  # noqa: E402
from lungai.rp.cohort import make_noise_cohort  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="patients per cohort")
    ap.add_argument("--features", type=int, default=12, help="noise columns (spread over clin_/dose_/rad_)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--outer-folds", type=int, default=5)
    args = ap.parse_args()
    reported, best_single = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            table = make_noise_cohort(args.n, args.features, seed=seed, prefixes=("clin_", "dose_", "rad_"))
            r = train_rp(table, "rp_grade2", Path(tmp) / f"m{seed}", models=args.models, fast=True,
                         outer_folds=args.outer_folds, inner_folds=3, n_boot=2, make_plots=False, seed=seed)
            reported.append(r.metrics["chosen_auc"])
            best_single.append(max(v["auc"] for v in r.metrics["results"].values()))
            print(f"seed {seed:2d}: reported (nested selection) {reported[-1]:.3f}   best single {best_single[-1]:.3f}"
                  f"   locked {r.chosen}", flush=True)
    print(f"n = {args.n}, {args.features} noise features, models {args.models}, {args.outer_folds} x 3 nested CV, "
          f"{args.seeds} seeds, {time.perf_counter() - start:.0f} s")
    print(f"reported AUC of the locked model (choice inside CV): {np.mean(reported):.3f} +- {fmt_num(sample_sd(reported))}")
    print(f"best of the per-combination AUCs (choice after CV):  {np.mean(best_single):.3f} +- {fmt_num(sample_sd(best_single))}")


if __name__ == "__main__":
    main()
