"""VALIDATION: the box's or the kept region's map features for a model's confidence (docs/segmentation.md, "Explored,
not adopted: the confidence on the kept region").  No test case is read.

Reads the ``validation_<method>.csv`` tables that ``tools/recalibrate_seg.py --model M --implants 40`` writes next to
the model's model.json (the validation split + 40 implants into LUNG1-002 in seed mode; both feature sets are in every
row) and prints, per feature set, the 5-fold CV r(confidence, Dice) averaged over 10 fold seeds - fitted on both parts,
scored on the split, the implants and all - and r on the implants of a fit on the split alone.

    .venv/bin/python benchmarks/seg_kept_region_validation.py MODEL_DIR/validation_ensemble.csv [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lungai.seg.confidence import FEATURES, KEPT_REGION_FEATURES, SIGN_OF  # noqa: E402
from seg_implant_calibration import cv_predict, pearson_r  # noqa: E402


def compare(df: pd.DataFrame, seeds: int = 10) -> dict:
    """{feature set: {"split", "implants", "all": CV r of the fit on both parts; "implants_from_split": r on the
    implants of the fit on the split alone}}; implants = the seed-mode rows."""
    from sklearn.linear_model import Ridge

    missing = [f"f_{f}" for f in KEPT_REGION_FEATURES + FEATURES if f"f_{f}" not in df]
    if missing:
        raise SystemExit(f"the table has no {', '.join(missing)}: write it again with tools/recalibrate_seg.py "
                         "--implants N (the code since the kept-region features computes both sets)")
    df = df[df["volume_true_ml"] > 0].reset_index(drop=True)
    imp, y = df["roi_mode"].eq("seed").to_numpy(), df["dice"].to_numpy(float)
    if not imp.any() or imp.all():
        raise SystemExit("the table needs both parts: run tools/recalibrate_seg.py with --implants N")
    out = {}
    for name, feats in (("box", FEATURES), ("kept-region", KEPT_REGION_FEATURES)):
        X = df[[f"f_{f}" for f in feats]].to_numpy(float) * np.array([SIGN_OF[f] for f in feats])
        cv = [cv_predict(X, y, k) for k in range(seeds)]
        alone = np.clip(Ridge(alpha=1e-2, positive=True).fit(X[~imp], y[~imp]).predict(X[imp]), 0, 1)
        out[name] = {"split": np.mean([pearson_r(p[~imp], y[~imp]) for p in cv]),
                     "implants": np.mean([pearson_r(p[imp], y[imp]) for p in cv]),
                     "all": np.mean([pearson_r(p, y) for p in cv]), "implants_from_split": pearson_r(alone, y[imp])}
    return out


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        raise SystemExit(__doc__)
    print("| table | features | split / implants / all (CV) | fitted on the split alone: implants |")
    print("|---|---|---|---|")
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"no {path}: give the validation_<method>.csv that tools/recalibrate_seg.py --implants N "
                             "wrote next to the model's model.json")
        for name, r in compare(pd.read_csv(path)).items():
            print(f"| {path} | {name} | {r['split']:.3f} / {r['implants']:.3f} / {r['all']:.3f} | "
                  f"{r['implants_from_split']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
