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


def stubbed_segment(tmp_path, monkeypatch, **info):
    """A tiny model (``tmp_path / "m"``) and CT, and ``segment_tumour`` stubbed to give fixed maps of the CT's grid
    and a result record updated with ``info`` (no network run): the CT's path and the maps."""
    import numpy as np

    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    rng = np.random.default_rng(1)
    ct = sitk.GetImageFromArray(rng.normal(-700.0, 50.0, (24, 40, 40)).astype(np.int16))
    ct.SetSpacing((0.9, 0.9, 3.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    gtv = np.zeros((24, 40, 40), np.uint8)
    gtv[8:16, 15:25, 15:25] = 1

    def image(arr):
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(ct)
        return img

    noise = rng.random((24, 40, 40)).astype(np.float32)
    maps = {"probability": image(np.clip(gtv * 0.8 + noise * 0.2, 0, 1).astype(np.float32)),
            "uncertainty": image(noise * 0.9), "mutual_information": image(noise * 0.1)}
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumor_volume_ml": float(gtv.sum()) / 1000, "n_components": 1, "method": "mc-dropout", "members": 1,
            "mc_passes": 2, "calibrated": False, "notes": [], **info}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour", lambda *a, **k: SegResult(
        image(gtv), maps["probability"], maps["uncertainty"], maps["mutual_information"], info))
    return tmp_path / "ct.nii.gz", maps


def stub_segment_on_input(monkeypatch, **info):
    """``segment_tumour`` stubbed (no network run) to give, on the grid of whatever CT it gets, a 3-voxel cube of
    tumour at its centre, probability / uncertainty maps of it and a result record updated with ``info``; for tests
    of what is said of a result (its model's notes) on a real CT read by lungai segment, the panel or the console."""
    from lungai.seg.infer import SegResult

    def segment(ct, model, **kwargs):
        tumour = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
        tumour.CopyInformation(ct)
        c = [n // 2 for n in ct.GetSize()]
        tumour[c[0] - 1:c[0] + 2, c[1] - 1:c[1] + 2, c[2] - 1:c[2] + 2] = 1
        probability = sitk.Cast(tumour, sitk.sitkFloat32)
        record = {"confidence": 0.8, "needs_review": False, "review_reasons": [], "review_threshold": 0.64,
                  "tumour_volume_ml": 0.027, "tumor_volume_ml": 0.027, "n_components": 1, "notes": [],
                  "method": "ensemble", "members": 3, "mc_passes": 0, **info}
        return SegResult(tumour=tumour, probability=probability, entropy=probability * 0.1,
                         mutual_information=probability * 0.01, info=record)

    monkeypatch.setattr("lungai.seg.infer.segment_tumour", segment)
    return segment


class ProgressRecorder:
    """A progress object recording its updates ``(n, message)``; every count shown (tick_interval 0)."""

    tick_interval = 0.0

    def __init__(self):
        self.updates = []

    def update(self, n=1, message=None):
        self.updates.append((n, message))
