"""Small-run ablation of the train-seg recipe pieces (CPU budget; NOT the shipped model's schedule).

Every run: the first N LIDC crops of ../shared/data/lidc_nodules (patient-level split, seed 0), phantom
crops, and tumours implanted into the real CT LUNG1-002 (never LUNG1-003, lung1 or lung2); 1 member,
few epochs.  Each row changes one thing against the baseline; the metric is the run's own VALIDATION
split (model.json), never a test case.  Prints a markdown table; model folders go to --out.

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/seg_ablation.py --out /tmp/ablation
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

VARIANTS = {
    "baseline (U-Net, constant lr, basic aug)": [],
    "+ poly lr": ["--lr-schedule", "poly"],
    "DynUNet + deep supervision": ["--arch", "dynunet", "--deep-supervision"],
    "+ strong augmentation": ["--augment", "strong"],
    "+ fg-fraction 0.33": ["--fg-fraction", "0.33"],
    "+ mirrored TTA (inference)": ["--tta"],
    "no implants (LIDC + phantoms only)": ["--implant", "0"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-cases", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--implant", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated row numbers (0-based)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "lungai", "train-seg", "--images", str(DATA / "lidc_nodules" / "image"),
            "--masks", str(DATA / "lidc_nodules" / "mask"), "--max-cases", str(args.max_cases), "--synthetic", "6",
            "--implant", str(args.implant), "--implant-into", str(DATA / "nsclc_whole_ct" / "nifti" / "LUNG1-002_ct.nii.gz"),
            "--members", "1", "--epochs", str(args.epochs), "--iters", str(args.iters), "--patience", "100",
            "--mc-passes", "4", "--seed", "0"]
    only = {int(v) for v in args.only.split(",") if v}
    print("| variant | val mean Dice +- SD | median | HD95 (mm) | r(conf, Dice) CV | train wall (s) |")
    print("|---|---|---|---|---|---|")
    for i, (name, extra) in enumerate(VARIANTS.items()):
        if only and i not in only:
            continue
        d = out / f"v{i}"
        cmd = base + extra + ["-o", str(d)] + (["--resume"] if d.exists() else [])
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        val = json.loads((d / "model.json").read_text(encoding="utf-8"))["validation"]
        v = val.get("ensemble") or val["mc-dropout"]         # one member: only MC dropout is validated
        print(f"| {name} | {v['mean_dice']:.3f} +- {v['std_dice']:.3f} | {v['median_dice']:.3f} | "
              f"{v['mean_hd95_mm']:.1f} | {v['pearson_r_confidence_dice_cv']:.3f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
