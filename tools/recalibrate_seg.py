"""Re-fit a segmentation model's confidence (calibration + review threshold, ensemble and MC dropout) on its own
validation cases, without retraining: for a model calibrated before a new confidence feature
(``flip_consistency``) was added, or after a change to inference.  Rewrites ``model.json`` (calibration, review,
validation) and the ``validation_<method>.csv`` tables next to it; the weights are not touched, and the model.json
it replaces is kept as ``model.before-recalibration.json`` (the first time only).

    OMP_NUM_THREADS=1 .venv/bin/python tools/recalibrate_seg.py --model lungai-seg-dynunet
    # the default model's record predates "case_sources": take the cases from a model with the same split
    OMP_NUM_THREADS=1 .venv/bin/python tools/recalibrate_seg.py --model lungai-seg-unet-ensemble \
        --cases-from lungai-seg-unet-large

``--features kept-region`` fits the confidence on the kept region's map features instead of the box's
(:mod:`lungai.seg.confidence`); ``--implants N`` also runs N validation tumours implanted into the real CT LUNG1-002
(seeds 700000+, seed mode; ../shared/data) and fits on both parts - explored for the DynUNet and the large U-Net,
not shipped (docs/segmentation.md, "the confidence on the kept region"); 1 h 20 min for the DynUNet on 1 thread:

    OMP_NUM_THREADS=1 .venv/bin/python tools/recalibrate_seg.py --model lungai-seg-dynunet --features kept-region \
        --implants 40

Both default to what the model's current calibration used.  ``--from-tables`` refits from the
``validation_<method>.csv`` tables an earlier run wrote next to model.json (seconds, no inference): after a change
to the fit alone.  The validation cases are rebuilt from the training record (``training.case_sources`` +
``val_cases``: LIDC crops from ../shared/data/lidc_nodules, synthetic phantoms and chests from their seeds) and
must be exactly the model's own validation cases, else it stops.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lungai.errors import InputError  # noqa: E402
from lungai.progress import task  # noqa: E402
from lungai.seg.calibrate import FEATURE_SETS, METHODS, calibrate_model, fit_tables  # noqa: E402
from lungai.seg.evaluate import fmt_num  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import resolve_model_dir  # noqa: E402


def current_settings(meta: dict) -> tuple:
    """(feature set, number of seeded validation implants) of a model's current calibration."""
    cals = [c for c in meta.get("calibration", {}).values() if c.get("fitted")]
    features = next((c["feature_set"] for c in cals if "feature_set" in c), "box")
    return features, max([int(c.get("n_seeded_cases", 0)) for c in cals] + [0])


def main(argv=None) -> int:
    from seg_select_validation import NSCLC, VALIDATION_BACKGROUND, implanted_validation_cases, validation_cases

    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="shipped model name or model folder")
    ap.add_argument("--cases-from", default=None, help="model whose training record lists the same validation cases")
    ap.add_argument("--mc-passes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-tables", action="store_true", help="refit from the validation_<method>.csv tables")
    ap.add_argument("--features", choices=list(FEATURE_SETS), default=None,
                    help="the box's or the kept region's map features (default: as the current calibration)")
    ap.add_argument("--implants", type=int, default=None,
                    help="validation tumours implanted into LUNG1-002, fitted too (default: as the current calibration)")
    args = ap.parse_args(argv)
    model_dir = resolve_model_dir(args.model)
    model = load_model(model_dir)
    features, implants = current_settings(model[2])
    features = args.features or features
    implants = implants if args.implants is None else args.implants
    background = NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz"
    if implants and not args.from_tables and not background.is_file():
        raise InputError(f"--implants {implants} needs the real CT {background} (../shared/data/nsclc_whole_ct)",
                         "put ../shared/data beside the repository, or run with --implants 0")
    backup = Path(model_dir) / "model.before-recalibration.json"   # the calibration it replaces is kept
    if not backup.exists():
        shutil.copy2(Path(model_dir) / "model.json", backup)
    if args.from_tables:
        import pandas as pd

        paths = {m: Path(model_dir) / f"validation_{m}.csv" for m in METHODS}
        tables = {m: pd.read_csv(p) for m, p in paths.items() if p.is_file()}
        if not tables:
            raise InputError(f"no validation_<method>.csv in {model_dir}", "run without --from-tables first")
        fit_tables(model_dir, model[2], tables, mc_passes=args.mc_passes, n_members=len(model[1]), seed=args.seed,
                   features=features)
        report(model, tables, model_dir)
        return 0
    own = model[2].get("training", {})
    record = load_model(resolve_model_dir(args.cases_from))[2]["training"] if args.cases_from else own
    if "case_sources" not in record:
        raise InputError(f"the training record of {args.cases_from or args.model} has no 'case_sources'",
                         "pass --cases-from with a model trained on the same split")
    cases = validation_cases(record)
    if set(own.get("val_cases", [])) != {c.case_id for c in cases}:
        raise InputError(f"the rebuilt validation cases ({len(cases)}) are not {args.model}'s own "
                         f"({len(own.get('val_cases', []))})", "use --cases-from with a model of the same split")
    seeded = implanted_validation_cases(implants) if implants else []
    t0 = time.perf_counter()
    with task("calibrate confidence", 2 * (len(cases) + len(seeded))) as bar:
        tables = calibrate_model(model_dir, model, cases, mc_passes=args.mc_passes, seed=args.seed, progress=bar,
                                 seeded_cases=seeded, features=features)
    report(model, tables, model_dir)
    print(f"{len(cases)} validation cases + {len(seeded)} implants, {time.perf_counter() - t0:.0f} s")
    return 0


def report(model, tables, model_dir) -> None:
    cal = model[2]["calibration"]
    for method in tables:
        print(f"{method}: features {cal[method]['features']}, r(confidence, Dice) CV {fmt_num(cal[method].get('pearson_r_cv'))}, "
              f"review threshold {model[2]['review'][method]['threshold']}")
    print(f"written to {Path(model_dir) / 'model.json'}")


if __name__ == "__main__":
    sys.exit(main())
