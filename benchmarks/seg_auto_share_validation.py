"""Automatic mode on a real CT, VALIDATION: would keeping candidates mostly outside the lungs find the tumour?

Automatic mode drops a candidate region with less than ``MIN_IN_LUNGS`` (0.5) of its voxels inside the lungs
(``lungai.seg.postprocess.keep_components``), so a tumour that abuts the mediastinum or the spine, mostly outside
the lung mask, is never a candidate (``lung2``; docs/segmentation.md, "Known limitations").  This runs automatic
mode as shipped on the validation tumours implanted into LUNG1-002 (seeds 700000+, as
``seg_auto_rank_validation.py``) and on LUNG1-002 itself (its own GTV the target), keeps the inputs of the
post-processing (the thresholded mean probability, the lungs, the mean probability; one ``.npz`` per case in
``--cache``, reused on a second run) and then applies the post-processing again with other shares, printing per
share how often the tumour is the top candidate, among the top 10 / 20, never a candidate, and the false volume
the kept regions hold.  A candidate "is the tumour" when its centre lies within 5 voxels of the reference or 30 %
of its voxels are tumour.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_auto_share_validation.py --cache DIR [--model M]
        [--first 0] [--n 20] [--whole]          # two halves side by side: --first 0 --n 10 --whole, --first 10
    .venv/bin/python benchmarks/seg_auto_share_validation.py --cache DIR --table      # the table only
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import lungai.seg.infer as infer  # noqa: E402
import lungai.seg.postprocess as pp  # noqa: E402
from lungai.seg.evaluate import dice  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402

SHARES = (0.5, 0.3, 0.2, 0.1, 0.05, 0.0)


def capture(model, ct):
    """Automatic mode on ``ct``; returns (the box, the post-processing's inputs) - read by wrapping the
    functions ``segment_tumour`` calls, so the run is the shipped one."""
    cap = {}
    kc, cb, sm = infer.keep_components, infer.choose_box, infer.summarize_maps

    def keep(binary, spacing, seed_idx=None, max_elongation=None, lungs=None):
        if lungs is not None:
            cap.update(binary=binary.copy(), lungs=lungs.copy(), spacing=np.asarray(spacing, float))
        return kc(binary, spacing, seed_idx, max_elongation, lungs)

    def box(*a, **k):
        cap["box"] = cb(*a, **k)
        return cap["box"]

    def maps(p):
        r = sm(p)
        cap["mean_p"] = r[0].astype(np.float16)
        return r

    infer.keep_components, infer.choose_box, infer.summarize_maps = keep, box, maps
    try:
        infer.segment_tumour(ct, model, whole=False)
    finally:
        infer.keep_components, infer.choose_box, infer.summarize_maps = kc, cb, sm
    return cap


def run(args) -> None:
    from seg_select_validation import NSCLC, VALIDATION_BACKGROUND, VALIDATION_IMPLANT_SEED
    from seg_test_report import implanted_eval_cases
    torch.set_num_threads(1)
    model = load_model(resolve_model_dir(args.model))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_labels.nii.gz")))
    own = np.isin(lab, (1, 2))
    jobs = []
    if args.whole:
        jobs.append((VALIDATION_BACKGROUND, lambda: (sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz")),
                                                     np.zeros_like(own)), -1.0))
    for c in implanted_eval_cases(VALIDATION_BACKGROUND, (1,), args.first + args.n, VALIDATION_IMPLANT_SEED,
                                  "val-implant")[args.first:]:
        jobs.append((c.case_id, lambda c=c: (c.image, sitk.GetArrayFromImage(c.mask) > 0),
                     float(c.meta.get("diameter_mm") or -1)))
    for name, load, size in jobs:
        f = args.cache / f"{name}.npz"
        if f.exists():
            continue
        t0 = time.perf_counter()
        ct, imp = load()
        cap = capture(model, ct)
        lo, hi = cap["box"].lo, cap["box"].hi
        sl = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        np.savez_compressed(f, binary=cap["binary"], lungs=cap["lungs"], mean_p=cap["mean_p"], spacing=cap["spacing"],
                            implant=imp[sl], own=(own & ~imp)[sl], size_mm=size)
        print(name, f"{time.perf_counter() - t0:.0f} s", flush=True)


def table(cache: Path) -> str:
    files = sorted(cache.glob("*.npz"))
    if not files:
        raise SystemExit(f"no cases in {cache}: run without --table first")
    rows = {s: [] for s in SHARES}
    shipped = pp.MIN_IN_LUNGS
    for f in files:
        d = np.load(f)
        binary, lungs, sp = d["binary"], d["lungs"].astype(bool), tuple(float(v) for v in d["spacing"])
        mean_p = d["mean_p"].astype(np.float32)
        target = d["implant"] if d["implant"].any() else d["own"]      # LUNG1-002 itself: its own GTV
        other = d["own"] if d["implant"].any() else np.zeros_like(target)
        near = ndimage.binary_dilation(target, iterations=5)
        real = ndimage.binary_dilation(target | other, iterations=2)
        voxel_ml = float(np.prod(sp)) / 1000.0
        for s in SHARES:
            pp.MIN_IN_LUNGS = s          # read by keep_components at each call
            try:
                kept, _ = pp.keep_components(binary, sp, None, pp.MAX_ELONGATION, lungs)
            finally:
                pp.MIN_IN_LUNGS = shipped
            lab, ranked = pp.rank_components(kept, mean_p, sp)
            rank = next((r for r, c in enumerate(ranked, 1)
                         if near[tuple(np.round(c["centre_zyx"]).astype(int))] or target[lab == c["label"]].mean() > 0.3),
                        None)
            top = lab == ranked[0]["label"] if ranked else np.zeros_like(target)
            rows[s].append({"size": float(d["size_mm"]), "rank": rank, "n": len(ranked), "top_dice": dice(top, target),
                            "false_ml": float((kept & ~real).sum()) * voxel_ml,
                            "top_false_ml": float((top & ~real).sum()) * voxel_ml})
    n = len(files)
    big = [i for i, r in enumerate(rows[SHARES[0]]) if r["size"] >= 30 or r["size"] < 0]
    lines = [f"{n} cases ({len(big)} tumours >= 30 mm, LUNG1-002's own GTV counted among them)", "",
             "| share of a candidate inside the lungs kept | tumour top candidate | among top 10 (>= 30 mm) | among top 20 "
             "| not a candidate | candidates | false ml kept / in the top candidate (mean per case) |",
             "|---|---|---|---|---|---|---|"]
    for s in SHARES:
        R = rows[s]
        top10 = [i for i, r in enumerate(R) if r["rank"] and r["rank"] <= 10]
        lines.append(f"| >= {s:g}{' (shipped)' if s == shipped else ''} | {sum(r['rank'] == 1 for r in R)} | "
                     f"{len(top10)} ({len(set(top10) & set(big))} of {len(big)}) | "
                     f"{sum(1 for r in R if r['rank'] and r['rank'] <= 20)} | {sum(r['rank'] is None for r in R)} | "
                     f"{np.mean([r['n'] for r in R]):.0f} | {np.mean([r['false_ml'] for r in R]):.1f} / "
                     f"{np.mean([r['top_false_ml'] for r in R]):.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--cache", type=Path, required=True, help="folder of the per-case .npz files")
    ap.add_argument("--table", action="store_true", help="only print the table of the cached cases")
    ap.add_argument("--model", default=None)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--whole", action="store_true", help="also LUNG1-002 itself (its own GTV the target)")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.table:
        run(args)
    print(table(args.cache))


if __name__ == "__main__":
    main()
