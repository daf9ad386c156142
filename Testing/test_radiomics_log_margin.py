"""LoG features of a cropped segment equal pyradiomics on the whole image: the crop margin covers
the Laplacian-of-Gaussian's support (lungai.radiomics.prepare.margin_voxels)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.radiomics import extract, load_params
from lungai.radiomics.prepare import pyradiomics_params


def test_log_sigma3_equals_pyradiomics_on_the_whole_image():
    from radiomics import featureextractor

    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:40, :90, :90]
    arr = -800 + 150 * np.sin(x / 7.0) * np.cos(y / 9.0) + rng.normal(0, 60, x.shape)   # textured "lung"
    blob = (x - 45) ** 2 + (y - 45) ** 2 + ((z - 20) * 1.5) ** 2 < 8 ** 2
    arr[blob] = 40 + rng.normal(0, 20, blob.sum())
    image = sitk.GetImageFromArray(arr.astype(np.int16))
    image.SetSpacing((1.0, 1.0, 1.5))
    mask = sitk.GetImageFromArray(blob.astype(np.uint8))
    mask.CopyInformation(image)
    params = load_params("default", image_types=["LoG"], log_sigma=[3.0], feature_classes=["firstorder"])
    ours = extract(image, {"tumour": mask}, params, case="c").features
    direct = featureextractor.RadiomicsFeatureExtractor(pyradiomics_params(params)).execute(image, mask)
    direct = {k: float(v) for k, v in direct.items() if not k.startswith("diagnostics_")}
    got = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in ours.itertuples()}
    assert got.keys() == direct.keys() and len(direct) > 15
    for key, value in direct.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
