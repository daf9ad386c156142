"""Training patches with MONAI dictionary transforms: pad, tumour/background-balanced random crop,
flips and in-plane 90-degree rotations, intensity scale/shift and Gaussian noise.

Images are padded (edge values repeated) to the patch plus ``OFFSET_VOXELS`` before cropping, so a
small crop centred on its nodule (as the LIDC crops) lands at a random position inside the patch:
the network cannot learn "the tumour is always in the middle".
"""

from __future__ import annotations

from monai.transforms import (Compose, RandCropByPosNegLabeld, RandFlipd, RandGaussianNoised,
                              RandRotate90d, RandScaleIntensityd, RandShiftIntensityd, SpatialPadd)


OFFSET_VOXELS = (4, 16, 16)      # (z, y, x) extra padding that lets the crop position vary


def training_transform(patch_zyx, seed: int) -> Compose:
    keys = ["image", "label"]
    padded = tuple(p + o for p, o in zip(patch_zyx, OFFSET_VOXELS))
    t = Compose([
        SpatialPadd(keys, spatial_size=padded, mode="replicate"),   # crops smaller than a patch + offset
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=patch_zyx, pos=2, neg=1, num_samples=1,
                               allow_smaller=False),
        RandFlipd(keys, prob=0.5, spatial_axis=2),
        RandFlipd(keys, prob=0.5, spatial_axis=1),
        *([RandRotate90d(keys, prob=0.5, spatial_axes=(1, 2))] if patch_zyx[1] == patch_zyx[2] else []),
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.05, prob=0.5),
        RandGaussianNoised("image", prob=0.3, std=0.02),
    ])
    t.set_random_state(seed=seed)
    return t
