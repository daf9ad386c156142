"""VALIDATION of a choice between two shipped segmentation models (no test case is read).

Both models share their validation patients (the large-tumour model was trained with the default model's
split seed); this runs each model on
  (1) those validation cases (LIDC crops, phantom crops, whole synthetic chests; the whole crop as ROI /
      automatic mode for the chests) - rebuilt from the second model's model.json, and
  (2) tumours implanted, with fresh seeds (VALIDATION_IMPLANT_SEED), into LUNG1-002 - a real planning CT the
      large model saw as an implant background (never LUNG1-003, lung1 or lung2, the test CTs), seed mode,
and prints, per part and size band, the mean Dice of each model, of each selection rule and of the shipped
choice run for real (``lungai-seg-choice``; it must equal the "higher confidence" row).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_select_validation.py -o OUT [--implants 16]
        [--candidate MODEL_DIR]

``--candidate``: a new model (trained with the same data and split seed, so with the same validation patients)
is run on the same cases and compared with the shipped ones per size band, with r(confidence, Dice) - the
validation step before a new default model (its test report comes after, once). ``--models`` picks the shipped
models to run (default ``default,large,choice``; ``dynunet`` adds ``lungai-seg-dynunet``), e.g. ``--models dynunet
--candidate MODEL`` for a new DynUNet against the shipped one; the rule table needs ``default`` and ``large``.

Per-case CSVs go to OUT (``--reuse`` reads them back instead of running the models again).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lungai.seg.evaluate import SIZE_BANDS, evaluate_cases  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import (CHOICE_MODEL_NAME, DEFAULT_MODEL_NAME, DYNUNET_MODEL_NAME,  # noqa: E402
                                  LARGE_TUMOUR_MODEL_NAME, resolve_model_dir)

SHIPPED = {"default": DEFAULT_MODEL_NAME, "large": LARGE_TUMOUR_MODEL_NAME, "choice": CHOICE_MODEL_NAME,
           "dynunet": DYNUNET_MODEL_NAME}

DATA = ROOT.parent / "shared" / "data"
NSCLC = DATA / "nsclc_whole_ct" / "nifti"
VALIDATION_IMPLANT_SEED = 700_000      # apart from training (30_000+) and the test report (900_000+)
VALIDATION_BACKGROUND = "LUNG1-002"


def validation_cases(training: dict) -> list:
    import argparse as ap

    from lungai.cli.seg import training_cases

    wanted = set(training["val_cases"])
    src = {**training["case_sources"], "implant": 0}     # implant backgrounds stay in training
    return [c for c in training_cases(ap.Namespace(**src, allow_unpaired=True)) if c.case_id in wanted]


def implanted_validation_cases(n: int) -> list:
    from seg_test_report import implanted_eval_cases

    return implanted_eval_cases(VALIDATION_BACKGROUND, (1,), n, VALIDATION_IMPLANT_SEED, "val-implant")


def run_part(models: dict, cases_fn, name: str, out: Path, reuse: bool, seeded: bool) -> dict:
    frames, cases = {}, None
    for key, model in models.items():
        f = out / f"{name}_{key}.csv"
        if reuse and f.exists():
            frames[key] = pd.read_csv(f)
            continue
        cases = cases if cases is not None else cases_fn()
        t0 = time.perf_counter()
        frames[key] = evaluate_cases(model, cases, "ensemble", 8, 0, seeded=seeded)
        frames[key].to_csv(f, index=False)
        print(f"  {name}, {key}: {len(cases)} cases in {time.perf_counter() - t0:.0f} s", flush=True)
    return frames


RULES = {
    "default model": lambda a, b: np.zeros(len(a), bool),
    "large-tumour model": lambda a, b: np.ones(len(a), bool),
    "higher confidence": lambda a, b: b["confidence"].to_numpy(float) > a["confidence"].to_numpy(float),
    "large if the default's kept grid is coarser (x2/x3)": lambda a, b: a["grid_scale"].to_numpy(int) > 1,
}


def table(frames: dict, part: str) -> list:
    a, b = frames["default"], frames["large"]
    assert list(a["case"]) == list(b["case"])
    keep = a["volume_true_ml"].to_numpy(float) > 0
    a, b = a[keep].reset_index(drop=True), b[keep].reset_index(drop=True)
    bands = [("all", np.ones(len(a), bool))] + [(n, (a["size_band"] == n).to_numpy()) for *_, n in SIZE_BANDS]
    lines = [f"| {part}: rule | " + " | ".join(f"{n} ({int(m.sum())})" for n, m in bands) + " | picks large |",
             "|---|" + "---|" * (len(bands) + 1)]
    for rule, fn in RULES.items():
        pick = fn(a, b)
        d = np.where(pick, b["dice"].to_numpy(float), a["dice"].to_numpy(float))
        cells = [f"{d[m].mean():.3f}" if m.any() else "-" for _, m in bands]
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {int(pick.sum())} |")
    if "choice" in frames:                   # the shipped choice itself, run (automatic mode: first model only)
        c = frames["choice"][keep].reset_index(drop=True)
        cells = [f"{c['dice'][m].mean():.3f}" if m.any() else "-" for _, m in bands]
        n = int((c["model_kept"] == LARGE_TUMOUR_MODEL_NAME).sum()) if "model_kept" in c else 0
        lines.append("| the shipped choice, run | " + " | ".join(cells) + f" | {n} |")
    return lines


def model_table(frames: dict, part: str) -> list:
    """Each model on its own: mean Dice per size band, r(confidence, Dice), flagged failures / good results."""
    keys = [k for k in (*SHIPPED, "candidate") if k in frames]
    ref = frames[keys[0]]
    keep = ref["volume_true_ml"].to_numpy(float) > 0
    bands = [("all", np.ones(int(keep.sum()), bool))] + [
        (n, (ref[keep]["size_band"] == n).to_numpy()) for *_, n in SIZE_BANDS]
    lines = [f"| {part}: model | " + " | ".join(f"{n} ({int(m.sum())})" for n, m in bands) +
             " | r(conf, Dice) | failures (Dice < 0.5) flagged | good flagged |", "|---|" + "---|" * (len(bands) + 3)]
    for k in keys:
        f = frames[k]
        assert list(f["case"]) == list(ref["case"])
        f = f[keep].reset_index(drop=True)
        d, c = f["dice"].to_numpy(float), f["confidence"].to_numpy(float)
        flag, bad = f["needs_review"].to_numpy(bool), d < 0.5
        cells = [f"{d[m].mean():.3f}" if m.any() else "-" for _, m in bands]
        lines.append(f"| {k} | " + " | ".join(cells) + f" | {np.corrcoef(c, d)[0, 1]:.3f} | "
                     f"{int((flag & bad).sum())} of {int(bad.sum())} | {int((flag & ~bad).sum())} of {int((~bad).sum())} |")
    return lines


def calibrate_choice(choice_dir: Path, parts: dict) -> None:
    """The choice's calibration (ensemble) from its own validation results; automatic-mode rows left out (there
    the choice runs the first model only)."""
    from lungai.seg.choice import fit_choice_calibration
    from lungai.seg.evaluate import summarize
    from lungai.seg.model_io import MODEL_JSON, write_json

    df = pd.concat([f["choice"] for f in parts.values()], ignore_index=True)
    df = df[(df["volume_true_ml"] > 0) & (df["roi_mode"] != "lungs")].reset_index(drop=True)
    kept = df["model_kept_confidence"] if "model_kept_confidence" in df else df["confidence"]
    cal, thr, how = fit_choice_calibration(kept, df["model_agreement_dice"], df["dice"].to_numpy(float))
    doc = json.loads((Path(choice_dir) / MODEL_JSON).read_text(encoding="utf-8"))
    doc.setdefault("calibration", {})["ensemble"] = cal
    doc.setdefault("review", {})["ensemble"] = {"threshold": round(thr, 4), "how": how}
    from lungai.seg.choice import choice_confidence

    df["confidence"] = [choice_confidence(k, a, cal) for k, a in zip(kept, df["model_agreement_dice"])]
    df["needs_review"] = df["confidence"] < thr
    s = summarize(df)
    s["pearson_r_confidence_dice_cv"] = cal["pearson_r_cv"]
    s["description"] = (f"the choice on {len(df)} validation cases with a tumour (" +
                        ", ".join(f"{k}: {len(f['choice'])}" for k, f in parts.items()) + "); automatic mode left out")
    doc.setdefault("validation", {})["ensemble"] = s
    write_json(Path(choice_dir) / MODEL_JSON, doc)
    print(f"calibration written to {choice_dir}: r CV {cal['pearson_r_cv']:.3f}, review threshold {thr:.3f} ({how})")


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--implants", type=int, default=16)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--calibrate", action="store_true",
                    help="fit the choice's confidence (kept model's confidence + the models' agreement) and review "
                         "threshold on these validation results and write them into the choice's model.json")
    ap.add_argument("--candidate", default=None, help="a new model folder to compare with the shipped ones")
    ap.add_argument("--models", default="default,large,choice",
                    help=f"the shipped models to run, comma-separated, of {', '.join(SHIPPED)}")
    args = ap.parse_args()
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if not keys or set(keys) - set(SHIPPED):
        raise SystemExit(f"--models: give some of {', '.join(SHIPPED)}, not {args.models!r}")
    if args.calibrate and not {"default", "large", "choice"} <= set(keys):
        raise SystemExit("--calibrate fits the choice: give --models default,large,choice")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = {k: resolve_model_dir(SHIPPED[k]) for k in keys}
    if args.candidate:
        dirs["candidate"] = Path(args.candidate).resolve()
    models = {k: load_model(d) for k, d in dirs.items()}
    # the shipped models share their validation patients (the large model's split); the record of any of them
    training = load_model(resolve_model_dir(LARGE_TUMOUR_MODEL_NAME))[2]["training"]
    if args.candidate and set(models["candidate"][2]["training"]["val_cases"]) != set(training["val_cases"]):
        raise SystemExit("the candidate's validation cases differ from the shipped models': not comparable here")
    parts = {"validation split": run_part(models, lambda: validation_cases(training), "validation", out,
                                          args.reuse, seeded=False)}
    if (NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz").exists() and args.implants:
        parts["implants into LUNG1-002, seed mode"] = run_part(
            models, lambda: implanted_validation_cases(args.implants), "implants", out, args.reuse, seeded=True)
    if args.calibrate:
        calibrate_choice(dirs["choice"], parts)
    lines = []
    for part, frames in parts.items():
        rules = table(frames, part) + [""] if {"default", "large"} <= set(frames) else []
        lines += rules + model_table(frames, part) + [""]
    text = "\n".join(lines)
    (out / "select.md").write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps({k: str(v) for k, v in dirs.items()}))


if __name__ == "__main__":
    main()
