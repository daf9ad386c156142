"""VALIDATION of a choice between two shipped segmentation models (no test case is read).

Both models share their validation patients (the large-tumour model was trained with the default model's
split seed); this runs each model on
  (1) those validation cases (LIDC crops, phantom crops, whole synthetic chests; the whole crop as ROI /
      automatic mode for the chests) - rebuilt from the second model's model.json, and
  (2) tumours implanted, with fresh seeds (VALIDATION_IMPLANT_SEED), into LUNG1-002 - a real planning CT the
      large model saw as an implant background (never LUNG1-003, lung1 or lung2, the test CTs), seed mode,
and prints, per part and size band, the mean Dice of each model and of each selection rule.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_select_validation.py -o OUT [--implants 16]

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
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lungai.seg.evaluate import SIZE_BANDS, evaluate_cases  # noqa: E402
from lungai.seg.model_io import load_model  # noqa: E402
from lungai.seg.resources import DEFAULT_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME, resolve_model_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
NSCLC = DATA / "nsclc_whole_ct" / "nifti"
VALIDATION_IMPLANT_SEED = 700_000      # apart from training (30_000+) and the test report (900_000+)
VALIDATION_BACKGROUND = "LUNG1-002"


def validation_cases(training: dict) -> list:
    import argparse as ap

    from lungai.cli.seg import training_cases

    wanted = set(training["val_cases"])
    src = {**training["case_sources"], "implant": 0}     # implant backgrounds stay in training
    return [c for c in training_cases(ap.Namespace(**src)) if c.case_id in wanted]


def implanted_validation_cases(n: int) -> list:
    from lungai.seg.dataset import Case
    from lungai.synthetic import labels as L
    from lungai.synthetic.implant import implant, prepare_background, random_implant_spec

    ct = sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz"))
    lab = sitk.ReadImage(str(NSCLC / f"{VALIDATION_BACKGROUND}_labels.nii.gz"))
    bg = prepare_background(ct, sitk.Cast(lab == 1, sitk.sitkUInt8), VALIDATION_BACKGROUND)
    out = []
    for i in range(n):
        s = VALIDATION_IMPLANT_SEED + i
        spec = random_implant_spec(s)
        img, labels, meta = implant(bg, spec, s)
        tum = L.tumour_mask(sitk.GetArrayViewFromImage(labels)) & ~bg.tumour
        m = sitk.GetImageFromArray(tum.astype(np.uint8))
        m.CopyInformation(img)
        out.append(Case(f"{VALIDATION_BACKGROUND}_val-implant-{s}", VALIDATION_BACKGROUND, image=img, mask=m,
                        meta={**meta, "atelectasis": spec.atelectasis, "pleural_effusion": spec.effusion}))
    return out


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
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--implants", type=int, default=16)
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = {"default": resolve_model_dir(DEFAULT_MODEL_NAME), "large": resolve_model_dir(LARGE_TUMOUR_MODEL_NAME)}
    models = {k: load_model(d) for k, d in dirs.items()}
    training = models["large"][2]["training"]
    parts = {"validation split": run_part(models, lambda: validation_cases(training), "validation", out,
                                          args.reuse, seeded=False)}
    if (NSCLC / f"{VALIDATION_BACKGROUND}_ct.nii.gz").exists() and args.implants:
        parts["implants into LUNG1-002, seed mode"] = run_part(
            models, lambda: implanted_validation_cases(args.implants), "implants", out, args.reuse, seeded=True)
    lines = []
    for part, frames in parts.items():
        lines += table(frames, part) + [""]
    text = "\n".join(lines)
    (out / "select.md").write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps({k: str(v) for k, v in dirs.items()}))


if __name__ == "__main__":
    main()
