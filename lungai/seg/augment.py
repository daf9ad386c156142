"""Training patches with MONAI dictionary transforms: pad, tumour/background-balanced random crop,
flips and in-plane 90-degree rotations, intensity scale/shift and Gaussian noise.

Images are padded (edge values repeated) to the patch plus ``OFFSET_VOXELS`` before cropping, so a
small crop centred on its nodule (as the LIDC crops) lands at a random position inside the patch:
the network cannot learn "the tumour is always in the middle".

Whole CTs (``dataset._whole_ct_arrays``) are too large for MONAI's label-driven sampler to be useful
(almost every background voxel is plain lung or air); :func:`context_patch` centres their patches on
a tumour voxel (``CONTEXT_POSITIVE`` of the time, when there is a tumour) or on a hard negative -
a bright non-tumour voxel (vessel, hilum, chest wall, mediastinal border) - and then applies the same
flips and intensity changes.
"""

from __future__ import annotations

import numpy as np
from monai.transforms import (Compose, RandAdjustContrastd, RandAffined, RandCropByPosNegLabeld, RandFlipd,
                              RandGaussianNoised, RandGaussianSmoothd, RandRotate90d, RandScaleIntensityd,
                              RandShiftIntensityd, SpatialPadd)

OFFSET_VOXELS = (4, 16, 16)      # (z, y, x) extra padding that lets the crop position vary
CONTEXT_POSITIVE = 1.0 / 3.0     # whole CTs: share of patches centred on the tumour


AUGMENTS = ("basic", "strong")


def _augment(keys, patch_zyx, augment: str = "basic") -> list:
    """``basic``: flips, 90-degree in-plane turns, intensity scale / shift, noise.  ``strong`` adds the
    nnU-Net spatial and intensity set at CPU-budget probabilities: rotation (+-30 deg in-plane, +-10 deg
    out of plane) and scaling (0.7-1.4) in one affine (p 0.2), gamma (0.7-1.5, p 0.3), blur (p 0.1)."""
    out = []
    if augment == "strong":
        out.append(RandAffined(keys, prob=0.2, rotate_range=(np.pi / 6, np.pi / 18, np.pi / 18),
                               scale_range=(0.3, 0.3, 0.3), mode=("bilinear", "nearest"), padding_mode="border"))
    out += [
        RandFlipd(keys, prob=0.5, spatial_axis=2),
        RandFlipd(keys, prob=0.5, spatial_axis=1),
        *([RandRotate90d(keys, prob=0.5, spatial_axes=(1, 2))] if patch_zyx[1] == patch_zyx[2] else []),
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.05, prob=0.5),
        RandGaussianNoised("image", prob=0.3, std=0.02),
    ]
    if augment == "strong":
        out += [RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5)),
                RandGaussianSmoothd("image", prob=0.1, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0))]
    return out


def training_transform(patch_zyx, seed: int, augment: str = "basic", fg_fraction: float | None = None) -> Compose:
    """Crop cases: pad, pick a tumour / background-centred patch (``fg_fraction`` of them on the tumour;
    default 2 / 3), augment (MONAI, seeded)."""
    keys = ["image", "label"]
    padded = tuple(p + o for p, o in zip(patch_zyx, OFFSET_VOXELS))
    pos, neg = (2.0, 1.0) if fg_fraction is None else (float(fg_fraction), 1.0 - float(fg_fraction))
    t = Compose([
        SpatialPadd(keys, spatial_size=padded, mode="replicate"),   # crops smaller than a patch + offset
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=patch_zyx, pos=pos, neg=neg, num_samples=1,
                               allow_smaller=False),
        *_augment(keys, patch_zyx, augment),
    ])
    t.set_random_state(seed=seed)
    return t


def augment_transform(patch_zyx, seed: int, augment: str = "basic") -> Compose:
    """The augmentation alone (for patches cut by :func:`context_patch`)."""
    t = Compose(_augment(["image", "label"], patch_zyx, augment))
    t.set_random_state(seed=seed)
    return t


def context_patch(sample: dict, patch_zyx, rng: np.random.Generator, positive: float = CONTEXT_POSITIVE) -> dict:
    """A patch of a whole CT centred (+- a quarter patch) on a tumour voxel (``positive`` of the time)
    or a hard negative."""
    tumour, hard = sample["tumour_idx"], sample["hard_idx"]
    use_tumour = len(tumour) and (not len(hard) or rng.random() < positive)
    pool = tumour if use_tumour else hard
    shape = np.array(sample["image"].shape[1:])
    patch = np.array(patch_zyx)
    if len(pool):
        centre = pool[rng.integers(len(pool))] + rng.integers(-(patch // 4), patch // 4 + 1)
    else:
        centre = rng.integers(0, shape)
    lo = np.clip(centre - patch // 2, 0, np.maximum(shape - patch, 0))
    sl = (slice(None),) + tuple(slice(int(a), int(a) + int(p)) for a, p in zip(lo, patch))
    img, lab = sample["image"][sl], sample["label"][sl]
    short = [(0, 0)] + [(0, int(p) - s) for p, s in zip(patch, img.shape[1:])]
    if any(b for _, b in short):
        img, lab = np.pad(img, short, mode="edge"), np.pad(lab, short, mode="constant")
    return {"image": np.ascontiguousarray(img), "label": np.ascontiguousarray(lab)}
