"""Tumour segmentation on whole CTs: seed-point mode and automatic (whole-lung) mode, per CT.

Cases: the built-in sample, the 512 x 512 x 130 benchmark phantom (as ``bench_segment.py``), and
- when ``../shared/data/pyradiomics_lung`` exists - the two real chest CTs with their lesion labels.
The seed is the centre of mass of the reference lesion.  Prints Dice against the reference,
volume, false volume (predicted outside the reference), components, confidence, the review flag and
the wall time of each run (docs/segmentation.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seg_whole_ct.py [--model DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from lungai.seg.evaluate import dice
from lungai.seg.infer import segment_tumour
from lungai.seg.model_io import load_model
from lungai.seg.resources import resolve_model_dir
from lungai.synthetic import PhantomSpec, TumourSpec, labels, make_phantom
from lungai.synthetic.sample import SAMPLE_SEED, sample_spec

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pyradiomics_lung"


def cases():
    ph = make_phantom(sample_spec(), seed=SAMPLE_SEED)
    yield "built-in sample", ph.ct, labels.tumour_mask(sitk.GetArrayViewFromImage(ph.labels))
    spec = PhantomSpec(shape=(512, 512, 130), spacing=(0.7, 0.7, 2.5), noise_hu=20.0,
                       tumour=TumourSpec(diameter_mm=35.0, location="free", shape="lobulated", side="right"))
    ph = make_phantom(spec, seed=3)
    yield "benchmark phantom 512", ph.ct, labels.tumour_mask(sitk.GetArrayViewFromImage(ph.labels))
    if not REAL.is_dir():
        print(f"({REAL} not found: real CTs skipped)")
        return
    for name in ("lung1", "lung2"):
        ct = sitk.ReadImage(str(REAL / f"{name}_image.nrrd"))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(REAL / f"{name}_label.nrrd"))) > 0
        yield f"real CT {name}", ct, ref


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(resolve_model_dir(args.model))
    print("| CT | reference (ml) | mode | Dice | volume (ml) | false volume (ml) | components | confidence | review | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, ct, ref in cases():
        com = ndimage.center_of_mass(ref)
        seed = ct.TransformContinuousIndexToPhysicalPoint([float(com[2]), float(com[1]), float(com[0])])
        ref_ml = float(ref.sum()) * float(np.prod(ct.GetSpacing())) / 1000.0
        for mode in ("seed", "automatic"):
            t0 = time.perf_counter()
            res = segment_tumour(ct, model, seed_lps=seed if mode == "seed" else None, whole=False)
            wall = time.perf_counter() - t0
            i = res.info
            pred = sitk.GetArrayFromImage(res.tumour) > 0
            d = dice(pred, ref)
            false_ml = float(np.logical_and(pred, ~ref).sum()) * float(np.prod(ct.GetSpacing())) / 1000.0
            print(f"| {name} | {ref_ml:.1f} | {mode} | {d:.3f} | {i['tumor_volume_ml']:.1f} | {false_ml:.1f} | {i['n_components']} | "
                  f"{i['confidence']:.2f} | {i['needs_review']} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
