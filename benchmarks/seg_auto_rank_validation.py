"""Automatic mode on a real CT, VALIDATION: is the tumour the top candidate, and would re-ranking the candidates help?

Runs automatic mode as shipped on tumours implanted into LUNG1-002 (validation seeds 700000+; the default model
never saw LUNG1-002 - the DynUNet and the large U-Net did) and, with ``--whole``, on LUNG1-002 itself; then a
seeded segmentation at each of the top K candidates' centres (``--verifier``, default the same model).  Writes one
row per candidate (automatic-mode rank, volume, mean probability, mass, the seeded result's confidence, volume,
review flag and features, whether its centre lies in the implant / the CT's own GTVs, dilated 5 voxels) and prints,
per ranking rule, how often the top candidate is the implanted tumour and how often it is among the top K.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_auto_rank_validation.py -o OUT.csv [--model M] [--first 0]
        [--n 20] [--whole] [--k 10]
    .venv/bin/python benchmarks/seg_auto_rank_validation.py --table OUT1.csv OUT2.csv     # the table only
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lungai.seg.evaluate import dice, is_large  # noqa: E402
from lungai.seg.infer import segment_tumour  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402


def hit(ct, cand, ref_near) -> bool:
    k = np.round(ct.TransformPhysicalPointToContinuousIndex(cand["centre_lps_mm"])).astype(int)[::-1]
    return bool(np.all(k >= 0) and np.all(k < ref_near.shape) and ref_near[tuple(k)])


def run_case(name, ct, refs, model, k_top, verifier) -> list:
    t0 = time.perf_counter()
    res = segment_tumour(ct, model, whole=False)
    near = {k: ndimage.binary_dilation(r, iterations=5) for k, r in refs.items()}
    rows = []
    for c in res.info["candidates"][:k_top]:
        r = {"case": name, "rank": c["rank"], "n_cand": res.info["n_candidates"], "volume_ml": c["volume_ml"],
             "mean_p": c["mean_probability"], "mass": c["probability_mass_ml"],
             "auto_conf": res.info["confidence"]}
        for k in refs:
            r[f"hit_{k}"] = hit(ct, c, near[k])
        s = segment_tumour(ct, verifier, seed_lps=c["centre_lps_mm"], whole=False)
        pred = sitk.GetArrayFromImage(s.tumour) > 0
        r.update({"seed_conf": s.info["confidence"], "seed_volume_ml": s.info["tumour_volume_ml"],
                  "seed_review": s.info["needs_review"], "seed_passes": len(s.info.get("roi_passes", [])),
                  "seed_stop": s.info.get("roi_stop_reason", "")})
        for f, v in (s.info.get("features") or {}).items():
            if isinstance(v, (int, float)):
                r[f"f_{f}"] = v
        for k, ref in refs.items():
            r[f"seed_dice_{k}"] = dice(pred, ref)
        rows.append(r)
    print(name, f"{len(rows)} candidates verified, {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


# ranking rules compared (higher first); "mass" is automatic mode's own order (probability mass)
RULES = {
    "probability mass (shipped)": lambda g: -g["rank"],
    "mean probability": lambda g: g["mean_p"],
    "seeded confidence": lambda g: g["seed_conf"],
    "seeded confidence, unflagged first": lambda g: g["seed_conf"] + (~g["seed_review"].astype(bool)),
    "seeded flip consistency": lambda g: g.get("f_flip_consistency", 0.0),
    "seeded agreement": lambda g: g.get("f_agreement", 0.0),
}


def table(df: pd.DataFrame) -> str:
    imp = df[df["case"].str.contains("implant")].copy()
    imp["hit_implant"] = imp["hit_implant"].astype(bool)
    k = int(imp.groupby("case").size().max())
    lines = [f"| rule ({imp['case'].nunique()} implanted tumours, top {k} candidates verified) | top candidate = "
             f"the tumour | of them >= 30 mm | < 30 mm | tumour among the top {k} |", "|---|---|---|---|---|"]
    for name, key in RULES.items():
        rows = []
        for _, g in imp.groupby("case"):
            g = g.assign(score=key(g)).sort_values("score", ascending=False, kind="stable")
            rows.append({"size": g["size_mm"].iloc[0], "top": bool(g["hit_implant"].iloc[0]),
                         "in_k": bool(g["hit_implant"].any())})
        t = pd.DataFrame(rows)
        big = is_large(t["size"])
        lines.append(f"| {name} | {int(t['top'].sum())} of {len(t)} | {int(t.loc[big, 'top'].sum())} of {int(big.sum())} | "
                     f"{int(t.loc[~big, 'top'].sum())} of {int((~big).sum())} | {int(t['in_k'].sum())} of {len(t)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--table", nargs="+", default=None, help="only print the table of written CSVs")
    ap.add_argument("--model", default=None)
    ap.add_argument("--verifier", default=None, help="model for the seeded runs (default: --model)")
    ap.add_argument("-o", "--out", default=None)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--whole", action="store_true")
    args = ap.parse_args()
    if args.table:
        print(table(pd.concat([pd.read_csv(f) for f in args.table], ignore_index=True)))
        return
    if not args.out:
        ap.error("-o OUT.csv is needed (or --table CSV...)")
    torch.set_num_threads(1)
    model = load_model(resolve_model_dir(args.model))
    verifier = load_model(resolve_model_dir(args.verifier)) if args.verifier else model
    from seg_select_validation import NSCLC, VALIDATION_BACKGROUND, VALIDATION_IMPLANT_SEED
    from seg_test_report import implanted_eval_cases
    if not (NSCLC / f"{VALIDATION_BACKGROUND}_labels.nii.gz").is_file():
        raise SystemExit(f"{NSCLC / VALIDATION_BACKGROUND}_ct / _labels.nii.gz not found: this benchmark needs "
                         "../shared/data/nsclc_whole_ct beside the repository")
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_labels.nii.gz")))
    own = np.isin(lab, (1, 2))
    rows = []
    if args.whole:
        ct = sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz"))
        rows += run_case(VALIDATION_BACKGROUND, ct, {"own": own}, model, args.k, verifier)
    cases = implanted_eval_cases(VALIDATION_BACKGROUND, (1,), args.first + args.n, VALIDATION_IMPLANT_SEED, "val-implant")
    for c in cases[args.first:]:
        imp = sitk.GetArrayFromImage(c.mask) > 0
        rr = run_case(c.case_id, c.image, {"implant": imp, "own": own & ~imp}, model, args.k, verifier)
        for r in rr:
            r.update({"size_mm": c.meta.get("diameter_mm"), "contact": c.meta.get("contact")})
        rows += rr
        pd.DataFrame(rows).to_csv(args.out, index=False)
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    if "hit_implant" in df:
        print(table(df))


if __name__ == "__main__":
    main()
