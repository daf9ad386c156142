"""VALIDATION of seed mode with clicks off the tumour's centre (a user clicks anywhere on the tumour, not at its
centre of mass): the growing box with and without moving the box onto the tumour found (``lungai.seg.infer.
RECENTRE``); no test case is read.

Parts: (1) tumours implanted into LUNG1-002 with the validation seeds (700000+; an implant background of the
shipped models' training, so their Dice there is flattered), (2) the shipped model's validation LIDC crops with a
tumour.  Each case is clicked at its centre of mass (:func:`lungai.seg.evaluate.seed_point_of`) and at
``--clicks`` voxels of the reference drawn at random (seeded) among those at least ``MIN_DEPTH_MM`` inside its
edge.  Prints per part, rule and click kind the mean / median Dice, r(confidence, Dice), failures (Dice < 0.5)
flagged, passes and seconds per case, and writes ``<part>.csv``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_seed_offset_validation.py -o OUT
        [--model lungai-seg-dynunet] [--implants 10] [--crops 40] [--clicks 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import lungai.seg.infer as infer  # noqa: E402
from lungai.seg.dataset import load_images  # noqa: E402
from lungai.seg.evaluate import evaluate_case, reference_tumour, seed_point_of  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402

MIN_DEPTH_MM = 3.0


def clicks(case, n: int, seed: int) -> list:
    """[(kind, LPS point, depth mm)]: the centre of mass, then ``n`` random voxels >= MIN_DEPTH_MM inside."""
    img, mask = load_images(case)
    ref = reference_tumour(mask)
    depth = ndimage.distance_transform_edt(ref, sampling=img.GetSpacing()[::-1])
    com = seed_point_of(img, ref)
    idx = np.round(img.TransformPhysicalPointToContinuousIndex(com)).astype(int)[::-1]
    out = [("centre", com, float(depth[tuple(idx)]))]
    inner = np.argwhere(depth >= MIN_DEPTH_MM)
    if not len(inner):
        inner = np.argwhere(depth >= depth.max())
    rng = np.random.default_rng(seed)
    for k in rng.choice(len(inner), size=min(n, len(inner)), replace=False):
        z, y, x = (int(v) for v in inner[k])
        out.append(("off-centre", list(img.TransformIndexToPhysicalPoint([x, y, z])), float(depth[z, y, x])))
    return out


def summary(df: pd.DataFrame) -> dict:
    fail = df[df["dice"] < 0.5]
    r = float(np.corrcoef(df["confidence"], df["dice"])[0, 1]) if len(df) > 2 and df["dice"].std() > 0 else float("nan")
    return {"n": len(df), "mean": df["dice"].mean(), "median": df["dice"].median(), "r": r,
            "flagged": f"{int(fail['needs_review'].sum())} of {len(fail)}",
            "good_flagged": f"{int(df[df['dice'] >= 0.5]['needs_review'].sum())} of {int((df['dice'] >= 0.5).sum())}",
            "passes": df["passes"].mean(), "seconds": df["seconds"].mean()}


def main(argv=None) -> int:
    first_line = __doc__.split("\n")[0]
    ap = argparse.ArgumentParser(description=first_line, allow_abbrev=False)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--model", default="lungai-seg-dynunet")
    ap.add_argument("--implants", type=int, default=10)
    ap.add_argument("--crops", type=int, default=40)
    ap.add_argument("--clicks", type=int, default=1)
    ap.add_argument("--rules", default="off,on", help="RECENTRE off / on")
    ap.add_argument("--from-implant", type=int, default=0, help="leave out the first K implants (run before)")
    ap.add_argument("--off-centre-only", action="store_true", help="no click at the centre of mass")
    args = ap.parse_args(argv)
    from seg_select_validation import NSCLC, VALIDATION_BACKGROUND, implanted_validation_cases, validation_cases

    model = load_model(resolve_model_dir(args.model))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {}
    if args.implants and (NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz").exists():
        parts["implants"] = lambda: implanted_validation_cases(args.from_implant + args.implants)[args.from_implant:]
    if args.crops:
        def crops():
            training = load_model(resolve_model_dir(args.model))[2]["training"]
            cases = [c for c in validation_cases(training) if "lidc" in c.case_id.lower() or c.image is None]
            cases = [c for c in cases if reference_tumour(load_images(c)[1]).any()]
            pick = np.random.default_rng(0).choice(len(cases), size=min(args.crops, len(cases)), replace=False)
            return [cases[i] for i in sorted(pick)]
        parts["crops"] = crops
    print("| part | clicks | RECENTRE | n | mean Dice | median | r(conf, Dice) | failures flagged | good flagged | "
          "passes | s / case |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for part, cases_fn in parts.items():
        cases = cases_fn()
        rows = []
        for i, case in enumerate(cases):
            for kind, point, depth in clicks(case, args.clicks, 1000 + i + args.from_implant * (part == "implants")):
                if args.off_centre_only and kind == "centre":
                    continue
                for rule in args.rules.split(","):
                    infer.RECENTRE = rule == "on"
                    t0 = time.perf_counter()
                    row = evaluate_case(model, case, point=point)
                    rows.append({**row, "click": kind, "depth_mm": round(depth, 1), "recentre": rule,
                                 "passes": row["n_passes"], "seconds": round(time.perf_counter() - t0, 1)})
            print(f"  {part} {i + 1}/{len(cases)} {case.case_id}: " + "; ".join(
                f"{r['click']} {r['recentre']} {r['dice']:.3f}" for r in rows[-2 * (args.clicks + 1):] if r["case"] == case.case_id), flush=True)
        df = pd.DataFrame(rows)
        df.to_csv(out / f"{part}.csv", index=False)
        for kind in ("off-centre",) if args.off_centre_only else ("centre", "off-centre"):
            for rule in args.rules.split(","):
                s = summary(df[(df["click"] == kind) & (df["recentre"] == rule)])
                print(f"| {part} | {kind} | {rule} | {s['n']} | {s['mean']:.3f} | {s['median']:.3f} | {s['r']:.3f} | "
                      f"{s['flagged']} | {s['good_flagged']} | {s['passes']:.1f} | {s['seconds']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
