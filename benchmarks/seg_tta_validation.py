"""VALIDATION of mirrored test-time augmentation (``segment --tta``) for one model: the model's validation crops
(LIDC and phantom crops, the whole crop as ROI; no test case is read, the whole synthetic chests are left out -
automatic mode x 8 flips is too slow to be a choice here) with TTA off and on, mean Dice per part and size band
and r(confidence, Dice) (the calibration stays the one fitted without TTA).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_tta_validation.py [--model lungai-seg-dynunet] [-o OUT]
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

from lungai.seg.evaluate import SIZE_BANDS, evaluate_cases, has_tumour  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402


def table(frames: dict) -> str:
    lines = ["| validation crops | n | " + " | ".join(frames) + " |", "|---|---|" + "---|" * len(frames)]

    def row(name, pick):
        parts = [f[pick(f)] for f in frames.values()]
        lines.append(f"| {name} | {len(parts[0])} | " + " | ".join(f"{p['dice'].mean():.3f}" if len(p) else "-"
                                                                  for p in parts) + " |")

    row("all with a tumour", lambda f: has_tumour(f))
    row("LIDC crops", lambda f: has_tumour(f) & f["case"].str.startswith("LIDC").to_numpy())
    row("phantom crops", lambda f: has_tumour(f) & ~f["case"].str.startswith("LIDC").to_numpy())
    for _, _, band in SIZE_BANDS:
        row(band, lambda f, band=band: has_tumour(f) & (f["size_band"] == band).to_numpy())
    rs = []
    for f in frames.values():
        t = f[has_tumour(f)]
        rs.append(f"{np.corrcoef(t['confidence'], t['dice'])[0, 1]:.3f}")
    lines.append("| r(confidence, Dice) | | " + " | ".join(rs) + " |")
    return "\n".join(lines)


def main():
    from seg_select_validation import validation_cases

    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lungai-seg-dynunet")
    ap.add_argument("-o", "--out", default=None, help="folder for the per-case CSVs")
    args = ap.parse_args()
    model = load_model(resolve_model_dir(args.model))
    cases = [c for c in validation_cases(model[2]["training"]) if not c.meta.get("whole_chest")]
    frames = {}
    for tta in (False, True):
        t0 = time.perf_counter()
        frames[f"TTA {'on' if tta else 'off'}"] = df = evaluate_cases(model, cases, "ensemble", tta=tta)
        print(f"TTA {'on' if tta else 'off'}: {len(cases)} cases in {time.perf_counter() - t0:.0f} s", flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            df.to_csv(Path(args.out) / f"validation_tta_{'on' if tta else 'off'}.csv", index=False)
    print(f"\nmodel {args.model}, ensemble\n" + table(frames))


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
