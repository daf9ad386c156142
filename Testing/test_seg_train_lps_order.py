"""train-seg gives the network its training CTs in LPS order, as ``lungai segment`` gives it every CT
(``lungai.io.geometry.to_lps``).  QA train71: a crop stored z from head to feet (LPI) or x / y reversed (RAS, as
nibabel / some converters write NIfTI) was trained on as stored - its model-grid arrays were the LPS copy's mirrored
(upside down for LPI: the training's flips are in-plane only) - while segment runs the model on the LPS order."""

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.seg.dataset import Case, to_arrays
from seg_helpers import tiny_config


def _crop() -> tuple:
    """A chest-crop-like CT (lung at -800 HU, an asymmetric nodule and a wall at one end of z) and its mask, LPS."""
    rng = np.random.default_rng(0)
    ct = rng.normal(-800, 40, (12, 40, 36)).astype(np.int16)
    ct[:3] = 30                                            # soft tissue at the inferior end only
    ct[4:9, 10:22, 14:30] = 40
    mask = np.zeros(ct.shape, np.uint8)
    mask[4:9, 10:22, 14:30] = 1
    mask[8, 10:14, 14:18] = 0                              # no symmetry along any axis
    out = []
    for arr in (ct, mask):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((0.7, 0.8, 2.5))
        img.SetOrigin((-40.0, 12.5, -130.0))
        out.append(img)
    return tuple(out)


@pytest.mark.parametrize("order", ["LPI", "RAS", "PLS"])
def test_a_crop_stored_in_another_order_gives_the_lps_arrays(tmp_path, order):
    ct, mask = _crop()
    cfg = tiny_config(spacing=(1.0, 1.0, 2.0))
    arrays = {}
    stored = {"LPS": (ct, mask), order: (sitk.DICOMOrient(ct, order), sitk.DICOMOrient(mask, order))}
    for name, (img, lab) in stored.items():
        folder = tmp_path / name
        folder.mkdir()
        sitk.WriteImage(img, str(folder / "P01_ct.nii.gz"))
        sitk.WriteImage(lab, str(folder / "P01_mask.nii.gz"))
        arrays[name] = to_arrays(Case("P01_1", "P01", folder / "P01_ct.nii.gz", folder / "P01_mask.nii.gz"), cfg)
    assert arrays[order]["label"].sum() > 0
    assert arrays[order]["image"].shape == arrays["LPS"]["image"].shape
    np.testing.assert_allclose(arrays[order]["image"], arrays["LPS"]["image"], atol=1e-5)
    assert np.array_equal(arrays[order]["label"], arrays["LPS"]["label"])
