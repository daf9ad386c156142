"""VALIDATION: would a model's confidence track the Dice of tumours in a whole CT better if its calibration also saw
tumours implanted into a real CT?  (No test case is read.)

Runs the model on ``--implants`` tumours implanted into LUNG1-002 with the validation seeds of
``seg_select_validation.py`` (seed mode, flip check on, ensemble and MC dropout), then compares, for each method:

  A. the shipped fit (the model's own validation cases): 5-fold CV r on them, r on the implants;
  B. the same features fitted on validation cases + implants: 5-fold CV r (10 fold seeds), on each part and on all;
  B + share: B with one more feature, the share of the box's tumour (the ``log_volume`` feature) that the kept region
     holds (a region kept from a box where the model marked far more).

The model's validation tables (``validation_<method>.csv``) come from ``tools/recalibrate_seg.py --model M`` (written
next to its model.json) or ``--tables DIR``.

    OMP_NUM_THREADS=1 .venv/bin/python tools/recalibrate_seg.py --model lungai-seg-dynunet      # once: the tables
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_implant_calibration.py --model lungai-seg-dynunet -o OUT
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

from lungai.seg.calibrate import METHODS  # noqa: E402
from lungai.seg.confidence import FEATURES, MODE_FEATURE, SIGNS  # noqa: E402
from lungai.seg.evaluate import evaluate_cases  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["volume_true_ml"] > 0].reset_index(drop=True)
    if f"f_{MODE_FEATURE}" not in df:
        df[f"f_{MODE_FEATURE}"] = (df["roi_mode"] == "lungs").astype(float)
    box_ml = 10 ** df["f_log_volume"] - 0.01
    df["f_kept_share"] = np.where(box_ml > 1e-4, np.clip(df["volume_pred_ml"] / np.maximum(box_ml, 1e-6), 0, 1), 0.0)
    return df


def cv_predict(X, y, seed):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    p = np.zeros(len(y))
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(X):
        p[te] = Ridge(alpha=1e-2, positive=True).fit(X[tr], y[tr]).predict(X[te])
    return np.clip(p, 0, 1)


def pearson_r(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def compare(val: pd.DataFrame, imp: pd.DataFrame, seeds: int = 10) -> list:
    from sklearn.linear_model import Ridge

    val, imp = _prepare(val), _prepare(imp)
    yv, yi = val["dice"].to_numpy(float), imp["dice"].to_numpy(float)
    rows = []
    for name, feats, signs in (("B", FEATURES, SIGNS), ("B + share", FEATURES + ["kept_share"], SIGNS + [1])):
        s = np.array(signs, float)
        Xv, Xi = val[[f"f_{f}" for f in feats]].to_numpy(float) * s, imp[[f"f_{f}" for f in feats]].to_numpy(float) * s
        if name == "B":                      # A: fitted on the validation cases alone (as shipped)
            a = np.clip(Ridge(alpha=1e-2, positive=True).fit(Xv, yv).predict(Xi), 0, 1)
            rows.append(("A (shipped fit)", np.mean([pearson_r(cv_predict(Xv, yv, k), yv) for k in range(seeds)]), pearson_r(a, yi), np.nan))
        X, y = np.r_[Xv, Xi], np.r_[yv, yi]
        part = np.r_[np.zeros(len(yv), bool), np.ones(len(yi), bool)]
        cv = [cv_predict(X, y, k) for k in range(seeds)]
        rows.append((name, np.mean([pearson_r(p[~part], yv) for p in cv]), np.mean([pearson_r(p[part], yi) for p in cv]),
                     np.mean([pearson_r(p, y) for p in cv])))
    return rows


def main() -> None:
    from seg_select_validation import NSCLC, VALIDATION_BACKGROUND, implanted_validation_cases

    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--model", required=True)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--implants", type=int, default=40)
    ap.add_argument("--tables", default=None, help="folder with the model's validation_<method>.csv")
    ap.add_argument("--reuse", action="store_true", help="read OUT/implants_<method>.csv instead of running again")
    args = ap.parse_args()
    model_dir = resolve_model_dir(args.model)
    tables = Path(args.tables) if args.tables else Path(model_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, cases = load_model(model_dir), None
    lines = ["| method | fit | r on the validation cases (CV) | r on the implants | r on all (CV) |", "|---|---|---|---|---|"]
    for method in METHODS:
        if not (tables / f"validation_{method}.csv").is_file():
            raise SystemExit(f"no {tables / f'validation_{method}.csv'}: run tools/recalibrate_seg.py --model "
                             f"{args.model} first, or give --tables")
        f = out / f"implants_{method}.csv"
        if not (args.reuse and f.is_file()):
            ct = NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz"
            if not ct.is_file():
                raise SystemExit(f"no {ct}: the implants need the real CT {VALIDATION_BACKGROUND} from "
                                 "../shared/data/nsclc_whole_ct (or run with --reuse on earlier OUT/implants_<method>.csv)")
            cases = cases if cases is not None else implanted_validation_cases(args.implants)
            t0 = time.perf_counter()
            evaluate_cases(model, cases, method, 8, 0, seeded=True, flip_check=True).to_csv(f, index=False)
            print(f"{method}: {len(cases)} implants in {time.perf_counter() - t0:.0f} s", flush=True)
        imp = pd.read_csv(f)
        print(f"{method}: implants mean Dice {imp['dice'].mean():.3f}", flush=True)
        for name, rv, ri, ra in compare(pd.read_csv(tables / f"validation_{method}.csv"), imp):
            lines.append(f"| {method} | {name} | {rv:.3f} | {ri:.3f} | " + ("-" if np.isnan(ra) else f"{ra:.3f}") + " |")
    text = "\n".join(lines)
    (out / "implant_calibration.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
