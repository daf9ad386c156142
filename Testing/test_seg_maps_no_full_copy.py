"""``lungai segment``'s maps (tumour, probability, uncertainty, mutual information) are images of the whole CT that are
0 outside the evaluated box.  Each was built as a full-grid numpy array and then copied by ``GetImageFromArray``: two
full-size float32 copies at once, on a thin-slice CT the command's peak memory (QA: LUNG1-002 resampled to 1 mm
slices, 512 x 512 x 333).  They are made as zero images with the box's values pasted in place
(:func:`lungai.seg.preprocess.paste_image`), with the same voxels and geometry."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from seg_helpers import tiny_config

from lungai.seg import preprocess as pp


def _oblique(size=(30, 34, 12)):
    img = sitk.Image(size, sitk.sitkInt16)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((-10.0, 4.0, 100.0))
    c, s = np.cos(0.3), np.sin(0.3)
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return img


def test_paste_image_is_the_pasted_array_on_the_input_grid():
    img = _oblique()
    rng = np.random.default_rng(3)
    for box in (pp.Box((5, 6, 2), (25, 30, 10)), pp.Box((0, 0, 0), img.GetSize()), pp.Box((29, 33, 11), (30, 34, 12))):
        for dtype in (np.float32, np.uint8):
            crop = (rng.random(box.size[::-1]) * 200).astype(np.float64)     # converted as paste converts it
            out = pp.paste_image(img, box, crop, dtype)
            assert out.GetSize() == img.GetSize() and out.GetPixelID() == sitk.GetImageFromArray(
                np.zeros((1, 1, 1), dtype)).GetPixelID()
            assert out.GetOrigin() == img.GetOrigin() and out.GetSpacing() == img.GetSpacing()
            assert out.GetDirection() == img.GetDirection()
            assert np.array_equal(sitk.GetArrayViewFromImage(out), pp.paste(img, box, crop, dtype))


def test_segment_builds_its_maps_without_a_full_size_array(monkeypatch):
    from lungai.seg.infer import segment_tumour
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=1, dropout=0.1)
    model = (cfg, [build_network(cfg).eval()], {})
    rng = np.random.default_rng(0)
    hu = rng.normal(-700.0, 50.0, (40, 100, 100)).astype(np.int16)
    hu[16:24, 44:56, 44:56] = 30
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((1.0, 1.0, 1.0))
    full = []
    real = sitk.GetImageFromArray

    def from_array(arr, *a, **k):
        if np.asarray(arr).size == hu.size:
            full.append(np.asarray(arr).dtype)
        return real(arr, *a, **k)

    monkeypatch.setattr(sitk, "GetImageFromArray", from_array)
    res = segment_tumour(ct, model, roi_lps=(40.0, 40.0, 15.0, 60.0, 60.0, 25.0), method="mc-dropout", mc_passes=2,
                         grow=False)
    assert full == [], f"full-size arrays copied into images: {full}"
    for img in (res.tumour, res.probability, res.entropy, res.mutual_information):
        assert img.GetSize() == ct.GetSize()
    prob = sitk.GetArrayViewFromImage(res.probability)
    assert prob.max() > 0 and prob.max() <= 1
    z, y, x = np.nonzero(prob)
    assert x.min() > 0 and x.max() < 99 and z.min() > 0 and z.max() < 39    # 0 outside the box
