"""Ablation of the train-seg recipe pieces on a CPU budget (NOT the shipped model's schedule).

Every run: all LIDC crops of ../shared/data/lidc_nodules (patient-level split, seed 0), synthetic phantom
crops and whole chests, and tumours implanted into the real CT LUNG1-002 (never LUNG1-003, lung1 or lung2);
1 member, a short schedule.  Each row changes ONE thing against the baseline (the shipped default recipe);
the metric is the run's own VALIDATION split (the same 193 cases for every row), never a test case.
Rows 1 and 11 are the baseline with other initialisations (members 1 and 2 of the ensemble row, each
validated alone; same data, same split): the run-to-run spread that a difference must exceed.  The TTA row
re-validates the baseline's weights with mirrored test-time augmentation; the ensemble row trains members 1
and 2 and reuses the baseline as member 0.  Runs go --jobs at a time (1 thread each).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_ablation.py --out /tmp/ablation --jobs 2

Prints a markdown table (also written to OUT/table.md); model folders and logs stay in OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# name -> extra train-seg arguments (one change each against the baseline)
VARIANTS = {
    "baseline: U-Net 8-16-32-64, patch 48x48x16, constant lr, basic aug., 1 member": [],
    "baseline, another initialisation (ensemble member 1 alone)": [],
    "+ poly lr decay": ["--lr-schedule", "poly"],
    "DynUNet + deep supervision": ["--arch", "dynunet", "--deep-supervision"],
    "+ strong augmentation (rotation, scaling, gamma, blur)": ["--augment", "strong"],
    "+ foreground oversampling 0.33 (nnU-Net)": ["--fg-fraction", "0.33"],
    "+ mirrored TTA (inference only, baseline weights)": ["--tta"],
    "+ larger patch 64x64x24 (field of view)": ["--patch", "64,64,24"],
    "+ wider network 16-32-64-128": ["--channels", "16,32,64,128"],
    "+ 3 members (deep ensemble; member 0 = baseline)": ["--members", "3"],
    "- implants (LIDC + synthetic only)": ["--implant", "0"],
    "baseline, another initialisation (ensemble member 2 alone)": [],
}
TTA, ENSEMBLE = 6, 9
SPREAD = {1: 1, 11: 2}      # row -> ensemble member validated alone


def base_command(args) -> list:
    return [sys.executable, "-m", "lungai", "train-seg", "--images", str(DATA / "lidc_nodules" / "image"),
            "--masks", str(DATA / "lidc_nodules" / "mask"), "--max-cases", str(args.max_cases),
            "--synthetic", str(args.synthetic), "--synthetic-chests", str(args.chests),
            "--implant", str(args.implant), "--implant-into", str(ROOT / "tools" / "seg_implant_backgrounds.csv"),
            "--members", "1", "--epochs", str(args.epochs), "--iters", str(args.iters), "--patience", "100",
            "--mc-passes", str(args.mc_passes), "--seed", "0"]


def with_options(cmd: list, extra: list) -> list:
    """``cmd`` with ``extra``'s options replacing the same options already there."""
    out = list(cmd)
    i = 0
    while i < len(extra):
        opt = extra[i]
        has_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        if opt in out:
            j = out.index(opt)
            if has_value:
                out[j + 1] = extra[i + 1]
        else:
            out += extra[i:i + 2] if has_value else [opt]
        i += 2 if has_value else 1
    return out


def run(cmd: list, log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT,
                       env=dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1"))
    return time.perf_counter() - t0


def copy_member0(src: Path, dst: Path, k: int = 0) -> None:
    """``src``'s checkpoint of member ``k`` as ``dst``'s member 0."""
    (dst / "checkpoints").mkdir(parents=True, exist_ok=True)
    for f in (src / "checkpoints").glob(f"member_{k}.*"):
        shutil.copy2(f, dst / "checkpoints" / f.name.replace(f"member_{k}.", "member_0."))


def row_of(name: str, d: Path, wall: float) -> str:
    sys.path.insert(0, str(ROOT))
    from lungai.seg.evaluate import fmt_num

    meta = json.loads((d / "model.json").read_text(encoding="utf-8"))
    method = "ensemble" if "ensemble" in meta["validation"] else "mc-dropout"
    v = meta["validation"][method]
    df = pd.read_csv(d / f"validation_{method}.csv")
    df = df[df["volume_true_ml"] > 0]
    synthetic = df["patient"].astype(str).str.startswith(("phantom-", "chest-"))
    lidc = df[~synthetic]
    large = df[synthetic & (df["size_mm"] >= 30)]
    auto = v.get("automatic_mode", {})
    free = v.get("tumour_free", {})
    best = ", ".join(str(m["best_epoch"]) for m in meta["members"])
    return (f"| {name} | {'ens.' if method == 'ensemble' else 'MC'} | {v['mean_dice']:.3f} +- {fmt_num(v['std_dice'])} | "
            f"{v['median_dice']:.3f} | {lidc['dice'].mean():.3f} ({len(lidc)}) | {large['dice'].mean():.3f} ({len(large)}) | "
            f"{auto.get('mean_dice', float('nan')):.3f} | {free.get('false_positive_rate', float('nan')):.2f} | "
            f"{v['mean_hd95_mm']:.1f} | {v['pearson_r_confidence_dice_cv']:.3f} | {best} | {wall / 60:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-cases", type=int, default=0, help="first N LIDC crops (0: all)")
    ap.add_argument("--synthetic", type=int, default=20)
    ap.add_argument("--chests", type=int, default=10)
    ap.add_argument("--implant", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--mc-passes", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated row numbers (0-based); the baseline always runs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = base_command(args)
    names = list(VARIANTS)
    only = {int(v) for v in args.only.split(",") if v} or set(range(len(names)))
    only.add(0)
    wall_file = out / "walls.json"      # wall times survive a re-run that skips finished rows
    walls: dict = {tuple(json.loads(k)) if k.startswith("[") else int(k): v
                   for k, v in (json.loads(wall_file.read_text()) if wall_file.exists() else {}).items()}

    def folder(i):
        return out / f"v{i}"

    def train(i, extra_args=(), key=None):
        d = folder(i)
        cmd = with_options(base, VARIANTS[names[i]]) + list(extra_args) + ["-o", str(d)]
        if (d / "model.json").exists():
            return
        if (d / "checkpoints").exists():
            cmd.append("--resume")
        walls[key or i] = walls.get(key or i, 0.0) + run(cmd, out / f"v{i}.log")
        wall_file.write_text(json.dumps({json.dumps(list(k)) if isinstance(k, tuple) else str(k): v
                                         for k, v in walls.items()}), encoding="utf-8")

    if any(i in only for i in SPREAD):
        only.add(ENSEMBLE)
    independent = [i for i in sorted(only) if i != TTA and i not in SPREAD]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = []
        for i in independent:
            if i == ENSEMBLE:
                for k in (1, 2):
                    futures.append(pool.submit(train, i, ["--member", str(k)], (i, k)))
            else:
                futures.append(pool.submit(train, i))
        for f in futures:
            f.result()
    if TTA in only and not (folder(TTA) / "model.json").exists():
        copy_member0(folder(0), folder(TTA))
        train(TTA)
    if ENSEMBLE in only and not (folder(ENSEMBLE) / "model.json").exists():
        copy_member0(folder(0), folder(ENSEMBLE))
        train(ENSEMBLE)            # members 1, 2 and 0 done: save + calibrate
    for i, k in SPREAD.items():
        if i in only and not (folder(i) / "model.json").exists():
            copy_member0(folder(ENSEMBLE), folder(i), k)
            train(i)               # validate + calibrate member k alone
    lines = ["| variant (one change against the baseline) | validated | mean Dice +- SD | median | LIDC crops (n) | "
             "phantom tumours >= 30 mm (n) | whole chests, automatic | tumour-free crops with a false tumour | "
             "HD95 (mm) | r(conf, Dice) CV | best epoch(s) | wall (min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i in sorted(only):
        wall = walls.get(i, 0.0) + sum(w for k, w in walls.items() if isinstance(k, tuple) and k[0] == i)
        if i in SPREAD:
            wall += walls.get((ENSEMBLE, SPREAD[i]), 0.0)
        if i == ENSEMBLE:
            wall += walls.get(0, 0.0)
        if (folder(i) / "model.json").exists():
            lines.append(row_of(names[i], folder(i), wall))
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
