"""Tumour segmentation on whole CTs: seed-point mode (first box only / growing box) and automatic mode.

Cases: the built-in sample, the 512 x 512 x 130 benchmark phantom (as ``bench_segment.py``), a phantom
with a 100 mm tumour that does not fit the first 60 mm seed box, and - when ``../shared/data`` exists -
the real CTs: ``pyradiomics_lung/lung1`` and ``lung2`` (test cases, never trained on) and
``nsclc_whole_ct`` LUNG1-002 (GTV 360 ml) and LUNG1-003 (GTV-1 and the two other GTVs, each seeded
apart; LUNG1-003 is kept away from every training run).  The seed is the centre of mass of the reference
lesion (the voxel of the lesion nearest to it when the centre falls outside).  Prints Dice against the
reference, volume, false volume, confidence, the review flag, the passes (box size and model grid of the
kept pass; automatic mode: the lesion's candidate rank) and the wall time of each run (docs/segmentation.md).
ROI modes use the reference lesion's bounding box as the user's box.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_whole_ct.py [--model DIR] [--threads 1]
        [--modes seed-first-box,seed,roi-first-box,roi,automatic] [--cases lung1,lung2,...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from lungai.seg.evaluate import dice, seed_point_of
from lungai.seg.infer import segment_tumour
from lungai.seg.model_io import load_model
from lungai.seg.resources import resolve_model_dir
from lungai.synthetic import PhantomSpec, TumourSpec, labels, make_phantom
from lungai.synthetic.sample import SAMPLE_SEED, sample_spec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = DATA / "pyradiomics_lung"
NSCLC = DATA / "nsclc_whole_ct" / "nifti"
MODES = ("seed-first-box", "seed", "roi-first-box", "roi", "automatic")


def _phantom(spec, seed):
    ph = make_phantom(spec, seed=seed)
    return ph.ct, labels.tumour_mask(sitk.GetArrayViewFromImage(ph.labels))


def cases():
    yield "built-in sample", lambda: _phantom(sample_spec(), SAMPLE_SEED)
    yield "benchmark phantom 512", lambda: _phantom(PhantomSpec(
        shape=(512, 512, 130), spacing=(0.7, 0.7, 2.5), noise_hu=20.0,
        tumour=TumourSpec(diameter_mm=35.0, location="free", shape="lobulated", side="right")), 3)
    yield "phantom 100 mm tumour", lambda: _phantom(PhantomSpec(
        tumour=TumourSpec(diameter_mm=100.0, location="free", shape="lobulated")), 5)
    if REAL.is_dir():
        for name in ("lung1", "lung2"):
            yield f"real CT {name}", lambda name=name: (
                sitk.ReadImage(str(REAL / f"{name}_image.nrrd")),
                sitk.GetArrayFromImage(sitk.ReadImage(str(REAL / f"{name}_label.nrrd"))) > 0)
    else:
        print(f"({REAL} not found: lung1 / lung2 skipped)")
    if NSCLC.is_dir():
        for case in ("LUNG1-002", "LUNG1-003"):
            def load(case=case):
                ct = sitk.ReadImage(str(NSCLC / f"{case}_ct.nii.gz"))
                return ct, sitk.GetArrayFromImage(sitk.ReadImage(str(NSCLC / f"{case}_labels.nii.gz")))
            yield f"{case} GTV-1", lambda load=load: (lambda c, lab: (c, lab == 1))(*load())
            if case == "LUNG1-003":     # label 2 = gtv-2 and gtv-3, seeded one by one
                for k in (1, 2):
                    def other(k=k, load=load):
                        ct, lab = load()
                        comp, _ = ndimage.label(lab == 2)
                        sizes = ndimage.sum_labels(lab == 2, comp, range(1, comp.max() + 1))
                        order = np.argsort(-sizes) + 1
                        return ct, comp == order[k - 1]
                    yield f"{case} GTV {1 + k} ({'larger' if k == 1 else 'smaller'} other)", other
    else:
        print(f"({NSCLC} not found: NSCLC whole CTs skipped)")


def roi_of(ct, ref) -> list:
    """The reference lesion's bounding box (two LPS corners): a user's box drawn round the whole tumour
    (segment adds its 10 mm margin)."""
    idx = np.argwhere(ref)
    lo, hi = idx.min(0)[::-1], idx.max(0)[::-1]
    return list(ct.TransformIndexToPhysicalPoint([int(v) for v in lo])) + \
        list(ct.TransformIndexToPhysicalPoint([int(v) for v in hi]))


def lesion_rank(ct, ref, candidates) -> str:
    """Rank of the first listed candidate whose centre lies in the reference lesion (dilated 5 voxels)."""
    near = ndimage.binary_dilation(ref, iterations=5)
    for c in candidates:
        k = np.round(ct.TransformPhysicalPointToContinuousIndex(c["centre_lps_mm"])).astype(int)[::-1]
        if np.all(k >= 0) and np.all(k < ref.shape) and near[tuple(k)]:
            return str(c["rank"])
    return "none"


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--cases", default="", help="only cases whose name contains one of these (comma-separated)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(resolve_model_dir(args.model))
    modes = [m for m in args.modes.split(",") if m]
    wanted = [w for w in args.cases.split(",") if w]
    print("| CT | reference (ml) | mode | Dice | volume (ml) | false volume (ml) | confidence | review | "
          "passes: kept box (mm), grid | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, load in cases():
        if wanted and not any(w in name for w in wanted):
            continue
        ct, ref = load()
        seed = seed_point_of(ct, ref)
        vox_ml = float(np.prod(ct.GetSpacing())) / 1000.0
        for mode in modes:
            t0 = time.perf_counter()
            res = segment_tumour(ct, model, seed_lps=seed if mode.startswith("seed") else None,
                                 roi_lps=roi_of(ct, ref) if mode.startswith("roi") else None, whole=False,
                                 grow=not mode.endswith("first-box"))
            wall = time.perf_counter() - t0
            i = res.info
            pred = sitk.GetArrayFromImage(res.tumour) > 0
            false_ml = float(np.logical_and(pred, ~ref).sum()) * vox_ml
            kept = next((p for p in i["roi_passes"] if p["kept"]), None)
            passes = (f"{len(i['roi_passes'])}: {' x '.join(f'{v:.0f}' for v in kept['roi_size_mm'])}, x{kept['scale']}"
                      if kept else f"lesion = candidate {lesion_rank(ct, ref, i['candidates'])} of {i['n_candidates']}")
            print(f"| {name} | {float(ref.sum()) * vox_ml:.1f} | {mode} | {dice(pred, ref):.3f} | "
                  f"{i['tumour_volume_ml']:.1f} | {false_ml:.1f} | {i['confidence']:.2f} | {i['needs_review']} | "
                  f"{passes} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
