"""RP risk benchmark: how close the pipeline gets to the known (oracle) risk, how large the
leakage of out-of-CV feature selection would be, and how long training takes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rp_oracle.py [--quick]

Prints, per model, nested-CV AUC and external AUC (independent cohort) against the oracle AUC of
the same cohort (ratio and gap), the pure-noise AUC with selection inside vs outside CV, and the
run time of ``--fast`` training relative to the full grids (measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import sys
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LUNGAI_PROGRESS", "off")

from lungai.seg.evaluate import fmt_num, sample_sd  # noqa: E402
from lungai.rp import make_cohort, oracle_auc, train_rp, validate_rp  # noqa: E402
from lungai.rp.cohort import make_noise_cohort  # noqa: E402
from lungai.rp.validation import leaky_selection_auc, nested_cv  # noqa: E402
from lungai.rp.metrics import fmt_calibration  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--quick", action="store_true", help="smaller cohorts")
    args = ap.parse_args()
    n_large = 1500 if args.quick else 3000
    tmp = Path(tempfile.mkdtemp(prefix="rp-bench-"))
    try:     # the models written are deleted afterwards
        print(f"== oracle gap: train n={n_large}, external n={n_large}, all features ==")
        train, test = make_cohort(n_large, seed=101), make_cohort(n_large, seed=102)
        for model in ("lr", "rf"):
            t0 = time.perf_counter()
            res = train_rp(train.table, train.outcome, tmp / f"large_{model}", models=model, feature_sets="all",
                           fast=True, n_boot=2, make_plots=False)
            secs = time.perf_counter() - t0
            cv_auc = res.metrics["results"][f"all/{model}"]["auc"]
            ext = validate_rp(tmp / f"large_{model}", test.table)
            print(f"{model}: nested-CV AUC {cv_auc:.3f} vs oracle {oracle_auc(train):.3f} "
                  f"(gap {oracle_auc(train) - cv_auc:+.3f}, ratio {cv_auc / oracle_auc(train):.3f}); external AUC "
                  f"{ext['auc']:.3f} vs oracle {oracle_auc(test):.3f} (gap {oracle_auc(test) - ext['auc']:+.3f}); "
                  f"calibration slope {fmt_calibration(ext['calibration_slope'])}; {secs:.1f} s")

        print("== leakage: 60 patients, 500 pure-noise features, 5 seeds ==")
        honest, leaky = [], []
        for seed in range(5):
            table = make_noise_cohort(60, 500, seed=seed)
            y = table.pop("rp_grade2").to_numpy()
            honest.append(roc_auc_score(y, nested_cv(table, y, "lr", [], 5, 3, seed, fast=True)["oof"]))
            leaky.append(leaky_selection_auc(table.to_numpy(), y, k=10, seed=seed))
        print(f"selection inside CV (lungai): AUC {np.mean(honest):.3f} +- {fmt_num(sample_sd(honest))}")
        print(f"selection outside CV (wrong): AUC {np.mean(leaky):.3f} +- {fmt_num(sample_sd(leaky))}")

        print("== feature-set comparison and training time (n=300, LR + RF, 5x3 nested CV) ==")
        cohort = make_cohort(300, seed=1)
        times = {}
        for fast in (True, False):
            t0 = time.perf_counter()
            res = train_rp(cohort.table, cohort.outcome, tmp / f"cmp_{fast}", fast=fast, make_plots=False)
            times[fast] = time.perf_counter() - t0
            print(f"--fast={fast}: {times[fast]:.1f} s, oracle AUC {oracle_auc(cohort):.3f}")
            print("\n".join(res.lines))
        print(f"fast / full training time ratio: {times[True] / times[False]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
