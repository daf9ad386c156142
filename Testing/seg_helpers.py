"""Tiny synthetic cohorts and a tiny trained model for the segmentation tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

TINY_SHAPE, TINY_SPACING = (96, 96, 40), (3.5, 3.5, 5.0)
TINY_CLI = ["--spacing", "3.5,3.5,5", "--channels", "4,8,16", "--patch", "16,16,8", "--batch", "4",
            "--iters", "4", "--epochs", "2", "--members", "2", "--mc-passes", "3", "--val-fraction", "0.34"]


def tiny_cases(n: int, seed: int):
    from lungai.seg.dataset import synthetic_cases

    return synthetic_cases(n, seed, shape=TINY_SHAPE, spacing=TINY_SPACING, lung_crops=False)


def write_cases(cases, root: Path) -> tuple:
    """images/ and masks/ folders with <patient>_<n>.nii.gz files (two crops per patient name)."""
    img_dir, mask_dir = root / "images", root / "masks"
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(cases):
        name = f"P{i // 2:02d}_{i % 2}.nii.gz"
        sitk.WriteImage(c.image, str(img_dir / name))
        sitk.WriteImage(c.mask, str(mask_dir / name))
    return img_dir, mask_dir


def tiny_config(**kw):
    from lungai.seg.config import SegConfig

    base = dict(arch="unet", spacing=TINY_SPACING, channels=(4, 8, 16), patch_size=(16, 16, 8),
                infer_patch=(32, 32, 16), members=2, dropout=0.1)
    base.update(kw)
    return SegConfig(**base)
