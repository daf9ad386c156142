"""Facts about the reference tumour masks behind two choices in ``lungai.seg`` (docs/segmentation.md):

- elongation of the LIDC-IDRI nodule masks and of synthetic phantom tumours: the basis of
  ``lungai.seg.postprocess.MAX_ELONGATION`` (automatic mode drops more elongated components);
- the Dice ceiling of the model grid: each validation nodule mask resampled to the model spacing
  and back (as inference does), against itself, for several spacings.

Needs ../shared/data/lidc_nodules (real data, not in the repository).

    .venv/bin/python benchmarks/seg_reference_masks.py [--model DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.seg import preprocess as pp
from lungai.seg.config import SegConfig
from lungai.seg.dataset import synthetic_cases
from lungai.seg.evaluate import dice
from lungai.seg.postprocess import MAX_ELONGATION, elongation
from lungai.seg.resources import resolve_model_dir

LIDC = Path(__file__).resolve().parents[2] / "shared" / "data" / "lidc_nodules"


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    return lab == (np.argmax(ndimage.sum_labels(mask, lab, range(1, n + 1))) + 1) if n else mask


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--model", default=None, help="model whose validation cases are used (default: shipped)")
    args = ap.parse_args()
    if not LIDC.is_dir():
        raise SystemExit(f"{LIDC} not found: this script needs the shared LIDC crops")
    lidc = []
    for f in sorted((LIDC / "mask").glob("*.nii.gz")):
        m = sitk.ReadImage(str(f))
        arr = sitk.GetArrayFromImage(m) > 0
        if arr.any():
            lidc.append(elongation(_largest(arr), m.GetSpacing()[::-1]))
    lidc = np.array(lidc)
    ph = np.array([elongation(sitk.GetArrayFromImage(c.mask) > 0, c.mask.GetSpacing()[::-1])
                   for c in synthetic_cases(60, 10_000, lung_crops=False)])
    for name, e in (("LIDC-IDRI nodules", lidc), ("phantom tumours", ph)):
        print(f"elongation of {len(e)} {name}: median {np.median(e):.2f}, 99th percentile "
              f"{np.percentile(e, 99):.2f}, max {e.max():.2f}; <= {MAX_ELONGATION}: {100 * np.mean(e <= MAX_ELONGATION):.1f} %")

    doc = json.loads((resolve_model_dir(args.model) / "model.json").read_text(encoding="utf-8"))
    val = [c for c in doc["training"]["val_cases"] if (LIDC / "image" / f"{c}.nii.gz").exists()]
    for spacing in ((1.5, 1.5, 2.5), (1.0, 1.0, 2.0), (0.75, 0.75, 1.25)):
        cfg, scores = SegConfig(spacing=spacing), []
        for c in val:
            img = sitk.ReadImage(str(LIDC / "image" / f"{c}.nii.gz"))
            mask = sitk.ReadImage(str(LIDC / "mask" / f"{c}.nii.gz"))
            _, model_img = pp.to_model(img, cfg)
            back = pp.to_input(pp.mask_to_model(mask, model_img).astype(np.float32), model_img, img) > 0.5
            scores.append(dice(back, sitk.GetArrayViewFromImage(mask) > 0))
        print(f"Dice ceiling of the model grid {spacing} mm over {len(val)} validation LIDC crops: "
              f"mean {np.mean(scores):.3f}, median {np.median(scores):.3f}")


if __name__ == "__main__":
    main()
