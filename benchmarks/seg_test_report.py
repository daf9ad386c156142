"""The final TEST report of a segmentation model (issue #13 point 4): run once, after every choice was made.

Three parts, each with the deep ensemble and MC dropout:

1. the model's held-out **test split** (``train-seg --test-fraction``: LIDC crops and phantoms of patients
   no training step saw), as ``lungai eval-seg --split test`` (whole crop as ROI);
2. **tumours implanted into a real CT no model saw** (LUNG1-003; implant backgrounds of training are other
   CTs), seed-point mode with the click at the tumour's centre - size bands and hard cases (atelectasis,
   effusion, mediastinal contact) with real anatomy around them;
3. the **real lesions**, seed-point mode: ``lung1``, ``lung2`` (pyradiomics test CTs, never trained on) and
   LUNG1-003's three GTVs (never trained on); LUNG1-002's GTV is listed apart (an implant background:
   seen in training).

Prints mean +- SD / median Dice, HD95, r(confidence, Dice), flags, per size band and hard case, and writes
``OUT/report.md``, ``OUT/report.json`` and the per-case CSVs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_test_report.py --model DIR -o OUT [--implants 24]
        [--parts split,implants,real] [--split-from OTHER_MODEL] [--methods ensemble,mc-dropout] [--mc-passes 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from lungai.seg.dataset import Case
from lungai.seg.evaluate import evaluate_cases, model_seen_patients, report_text, summarize, test_report
from lungai.seg.model_io import load_model
from lungai.seg.model_meta import model_identity
from lungai.seg.resources import resolve_model_dir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = DATA / "pyradiomics_lung"
NSCLC = DATA / "nsclc_whole_ct" / "nifti"
IMPLANT_SEED = 900_000          # far from training's implant seeds (30_000 + seed + i)
TEST_BACKGROUND = "LUNG1-003"


def _mask_image(arr: np.ndarray, ref: sitk.Image) -> sitk.Image:
    m = sitk.GetImageFromArray(arr.astype(np.uint8))
    m.CopyInformation(ref)
    return m


def real_cases(model) -> tuple[list, bool]:
    """(cases, checked): the real lesions, each ``meta["seen_in_training"]`` from the recorded training / validation
    patients of ``model`` (loaded model, model choice - each of its models - or model.json dict;
    :func:`lungai.seg.evaluate.model_seen_patients`, eval-seg's check); ``checked`` False when a model records none
    (the shipped ones): then the documented provenance (LUNG1-002 an implant background of the
    shipped models, the others never trained on) stands, and the report says the overlap could not be checked."""
    out = []
    for name in ("lung1", "lung2"):
        if (REAL / f"{name}_image.nrrd").exists():
            ct = sitk.ReadImage(str(REAL / f"{name}_image.nrrd"))
            lab = sitk.GetArrayFromImage(sitk.ReadImage(str(REAL / f"{name}_label.nrrd"))) > 0
            out.append(Case(name, name, image=ct, mask=_mask_image(lab, ct), meta={"seen_in_training": False}))
    for case in ("LUNG1-003", "LUNG1-002"):
        f = NSCLC / f"{case}_ct.nii.gz"
        if not f.exists():
            continue
        ct = sitk.ReadImage(str(f))
        lab = sitk.GetArrayFromImage(sitk.ReadImage(str(NSCLC / f"{case}_labels.nii.gz")))
        gtvs = [lab == 1]
        comp, n = ndimage.label(lab == 2)
        sizes = ndimage.sum_labels(lab == 2, comp, range(1, n + 1))
        gtvs += [comp == k for k in np.argsort(-sizes) + 1]
        for i, g in enumerate(gtvs):
            out.append(Case(f"{case}_GTV-{i + 1}", case, image=ct, mask=_mask_image(g, ct),
                            meta={"seen_in_training": case == "LUNG1-002", "mediastinal_contact": None}))
    seen, unrecorded = model_seen_patients(model, out)      # a model choice: each of its models' records
    checked = not unrecorded
    for c, part in zip(out, seen):
        if checked or part:
            c.meta["seen_in_training"] = bool(part)
        c.meta["seen_checked"] = checked
    return out, checked


def implanted_test_cases(n: int) -> list:
    """``n`` tumours implanted into LUNG1-003 (its three GTVs kept as tumour, implants placed apart from
    them); the reference of each case is the implanted tumour alone (seed mode keeps the component at the
    click)."""
    return implanted_eval_cases(TEST_BACKGROUND, (1, 2), n, IMPLANT_SEED, "test-implant")


def implanted_eval_cases(background: str, own_labels: tuple, n: int, first_seed: int, tag: str) -> list:
    """``n`` tumours implanted (seeds ``first_seed`` + i) into the nsclc_whole_ct CT ``background``, whose
    labels ``own_labels`` stay tumour; each case's reference is the implanted tumour alone."""
    from lungai.synthetic import labels as L
    from lungai.synthetic.implant import implant, prepare_background, random_implant_spec

    ct = sitk.ReadImage(str(NSCLC / f"{background}_ct.nii.gz"))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(NSCLC / f"{background}_labels.nii.gz")))
    bg = prepare_background(ct, _mask_image(np.isin(lab, own_labels), ct), background)
    out = []
    for i in range(n):
        s = first_seed + i
        spec = random_implant_spec(s)
        img, labels, meta = implant(bg, spec, s)
        tum = L.tumour_mask(sitk.GetArrayViewFromImage(labels)) & ~bg.tumour
        meta = {**meta, "atelectasis": spec.atelectasis, "pleural_effusion": spec.effusion,
                "mediastinal_contact": meta["contact"] == "mediastinum",
                "small_tumour": spec.diameter_mm < 10.0}
        out.append(Case(f"{background}_{tag}-{s}", background, image=img, mask=_mask_image(tum, img), meta=meta))
    return out


def split_overlap_warning(evaluated: dict, split: dict, name: str = "the evaluated model") -> str | None:
    """A warning when ``name`` (its model.json ``training``: ``evaluated``) may have trained on the test cases of
    ``split`` (another model's ``training``, ``--split-from``): its listed training cases meet them, or - when it
    lists none - some of them are in neither its validation nor its own test split (the rest of a shared case
    pool is training).  None when every test case is known to be held out from it."""
    test = set(split.get("test_cases") or [])
    if not test:
        return None
    if evaluated.get("train_cases"):
        seen = test & set(evaluated["train_cases"])
        how = "are in its training cases"
    else:
        seen = test - set(evaluated.get("val_cases") or []) - set(evaluated.get("test_cases") or [])
        how = ("are in neither its validation nor its test split (its model.json does not list its training "
               "cases: with the same case sources they were in its training pool)")
    if not seen:
        return None
    return (f"WARNING: {len(seen)} of {len(test)} test cases {how}, e.g. {sorted(seen)[0]}: {name} may have been "
            "trained on them - its figures on this split are not an unbiased test")


def split_warning(model_dir: Path, split_training: dict) -> str | None:
    """:func:`split_overlap_warning` for the model in ``model_dir`` - for a model choice, for each of its models."""
    from lungai.seg.choice import member_model_dir
    from lungai.seg.model_io import CHOICE_FORMAT, read_meta

    doc = read_meta(model_dir)
    dirs = [member_model_dir(model_dir, m) for m in doc.get("models", [])] if doc["format"] == CHOICE_FORMAT \
        else [model_dir]
    found = [split_overlap_warning(read_meta(d).get("training") or {}, split_training, d.name) for d in dirs]
    return " ".join(w for w in found if w) or None


def _run(model, cases, methods, mc_passes, name, out_dir, seeded: bool = True) -> dict:
    frames = {}
    for m in methods:
        t0 = time.perf_counter()
        frames[m] = evaluate_cases(model, cases, m, mc_passes, 0, seeded=seeded)
        print(f"  {name}, {m}: {len(cases)} cases in {time.perf_counter() - t0:.0f} s", flush=True)
    pd.concat(frames.values()).to_csv(out_dir / f"{name}.csv", index=False)
    return frames


def _table(frames: dict) -> str:
    rows = ["| case | size (mm) | " + " | ".join(f"{m}: Dice / conf. / review" for m in frames) + " |",
            "|---|---|" + "---|" * len(frames)]
    first = next(iter(frames.values()))
    for i, r in first.iterrows():
        cells = [f"{f.loc[i, 'dice']:.3f} / {f.loc[i, 'confidence']:.2f} / {'yes' if f.loc[i, 'needs_review'] else 'no'}"
                 for f in frames.values()]
        rows.append(f"| {r['case']} | {r['size_mm']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--model", default=None)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--implants", type=int, default=24)
    ap.add_argument("--methods", default="ensemble,mc-dropout")
    ap.add_argument("--mc-passes", type=int, default=8)
    ap.add_argument("--parts", default="split,implants,real", help="which parts: split, implants, real")
    ap.add_argument("--split-from", default=None,
                    help="take part 1's cases from this model's test split (compare another model on the same cases)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model_dir(args.model)
    model = load_model(model_dir)
    methods = [m for m in args.methods.split(",") if m]
    report, md = {"model": str(model_dir), "model_identity": model_identity(model_dir)}, [f"# Test report: {model_dir}\n"]

    parts = set(args.parts.split(","))
    if "split" in parts:
        from lungai.cli.seg import test_split_cases

        split_dir = resolve_model_dir(args.split_from or args.model)
        split_training = load_model(split_dir)[2]["training"]
        warning = split_warning(model_dir, split_training) if args.split_from else None
        if warning:
            print(warning, flush=True)
            report["test_split_warning"] = warning
        print(f"1. the test split of {split_dir} (as lungai eval-seg --split test)", flush=True)
        frames = _run(model, test_split_cases(split_training), methods, args.mc_passes,
                      "test_split", out, seeded=False)
        rep = test_report(frames)
        report["test_split"] = rep
        md += [f"## 1. Test split of {split_dir.name} (LIDC crops + phantoms of held-out patients)\n",
               *([f"**{warning}**\n"] if warning else []), "```", report_text(rep), "```\n"]

    if "implants" in parts and NSCLC.is_dir():
        print(f"2. {args.implants} tumours implanted into {TEST_BACKGROUND} (seed mode)", flush=True)
        frames = _run(model, implanted_test_cases(args.implants), methods, args.mc_passes, "implanted_test", out)
        rep = test_report(frames)
        report["implanted_test"] = rep
        md += [f"## 2. Tumours implanted into {TEST_BACKGROUND} (never a training background), seed mode\n",
               "```", report_text(rep), "```\n", _table(frames), ""]
    cases, checked = real_cases(model) if "real" in parts else ([], True)
    if cases and not checked:
        note = ("overlap with the model's training patients cannot be checked (it records no patient hashes): "
                "seen_in_training is the documented provenance")
        print(f"note: {note}", flush=True)
        report["real_lesions_overlap_note"] = note
        md += [f"*{note}*\n"]
    if cases:
        print("3. real lesions (seed mode)", flush=True)
        frames = _run(model, cases, methods, args.mc_passes, "real_lesions", out)
        unseen = {m: f[~f["meta_seen_in_training"].astype(bool)] for m, f in frames.items()}
        report["real_lesions"] = {m: {"per_case": f[["case", "dice", "hd95_mm", "confidence", "needs_review",
                                                     "size_mm", "grid_scale"]].to_dict("records"),
                                      "unseen_summary": summarize(unseen[m])} for m, f in frames.items()}
        md += ["## 3. Real lesions, seed mode (LUNG1-002 = an implant background, seen in training)\n",
               _table(frames), ""]
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
