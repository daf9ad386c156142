"""The tumour segmentation does not depend on how the CT's array is stored: the same physical CT stored with
flipped or swapped axes is reoriented to LPS (as the training data) before anything, and every output image is
mapped back onto the input's own grid.  The oracle network here marks bright voxels whose neighbours a few voxels
back along each array axis are bright too - a one-sided erosion, so a mirrored or transposed array changes its
answer unless the CT is reoriented first.  Also: no NumPy view of a temporary SimpleITK image (it is freed at once,
the view reads freed memory)."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from lungai.io.geometry import from_lps, to_lps
from lungai.seg import infer
from lungai.seg.choice import ModelChoice
from lungai.seg.config import SegConfig

REPO = Path(__file__).resolve().parents[1]
SPACING = (1.0, 1.25, 2.0)


class OneSidedOracle(torch.nn.Module):
    """Tumour where the windowed CT is brighter than -300 HU here AND 1, 2, 4 voxels back along array z, y, x."""

    def forward(self, x):
        d, h, w = x.shape[2:]
        back = torch.nn.functional.pad(x, (4, 0, 2, 0, 1, 0))[..., :d, :h, :w]
        z = (torch.minimum(x, back) - (-300.0 + 1000.0) / 1400.0) * 200.0
        return torch.cat([-z, z], dim=1)


def _model():
    cfg = SegConfig(arch="unet", channels=(8, 16, 32, 64), spacing=(1.0, 1.0, 2.0), members=2)
    return cfg, [OneSidedOracle(), OneSidedOracle()], {}


def _ct(shape=(110, 96, 50)):
    """Lung-like field (-850 HU) in a body, a 24 mm ellipsoid tumour (40 HU) off-centre; identity direction."""
    nx, ny, nz = shape
    z, y, x = np.meshgrid(*(np.arange(n) * s - (n - 1) * s / 2 for n, s in zip((nz, ny, nx), SPACING[::-1])),
                          indexing="ij")
    arr = np.full((nz, ny, nx), -850, np.int16)
    arr[(x / 54) ** 2 + (y / 59) ** 2 > 1] = 0
    arr[((x - 8) / 12) ** 2 + ((y + 6) / 9) ** 2 + ((z - 5) / 14) ** 2 <= 1] = 40
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin([-(n - 1) * s / 2 + 3.0 for n, s in zip(shape, SPACING)])
    return img


STORED = ["RPS", "LPI", "LAS", "SPL", "PIL"]      # x / z / y flipped, axes swapped (and flipped)


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
            and a.GetDirection() == b.GetDirection())


def _images(res) -> list:
    return [res.tumour, res.probability, res.entropy, res.mutual_information]


def _check_same(res, ref, stored):
    """``res`` (computed on ``stored``) equals ``ref`` (on the LPS original) in physical space, on ``stored``'s grid."""
    for img, want in zip(_images(res), _images(ref)):
        assert _same_grid(img, stored)
        back = to_lps(img)                           # flips / permutations only: voxel for voxel
        assert np.allclose(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(want), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(to_lps(res.tumour)), sitk.GetArrayViewFromImage(ref.tumour))
    for key in ("tumor_volume_ml", "confidence", "needs_review", "review_reasons", "roi_lps_mm", "roi_passes",
                "cut_by_image_edge", "seed_to_tumour_mm", "features", "n_candidates", "candidates"):
        assert res.info[key] == ref.info[key], key


@pytest.mark.parametrize("code", STORED)
def test_the_same_ct_stored_flipped_or_transposed_gives_the_same_result(code):
    ct = _ct()
    stored = sitk.DICOMOrient(ct, code)
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(stored.GetDirection()) == code
    seed = (8.0, -6.0, 5.0)
    ref = infer.segment_tumour(ct, _model(), seed_lps=seed, mc_passes=2)
    assert ref.info["tumor_volume_ml"] > 1.0
    _check_same(infer.segment_tumour(stored, _model(), seed_lps=seed, mc_passes=2), ref, stored)
    roi = (-10.0, -20.0, -12.0, 25.0, 8.0, 22.0)
    _check_same(infer.segment_tumour(stored, _model(), roi_lps=roi), infer.segment_tumour(ct, _model(), roi_lps=roi),
                stored)


def test_model_choice_and_whole_crop_mode_map_back_too():
    ct = _ct()
    stored = sitk.DICOMOrient(ct, "SPL")
    choice = ModelChoice(["a", "b"], [_model(), _model()], {})
    ref = infer.segment_tumour(ct, choice, seed_lps=(8.0, -6.0, 5.0))
    res = infer.segment_tumour(stored, choice, seed_lps=(8.0, -6.0, 5.0))
    _check_same(res, ref, stored)
    assert res.info["model_choice"] == ref.info["model_choice"]
    _check_same(infer.segment_tumour(stored, _model()), infer.segment_tumour(ct, _model()), stored)   # whole crop


def test_to_lps_and_back():
    ct = _ct((7, 5, 3))
    assert to_lps(ct) is ct and from_lps(ct, ct) is ct              # LPS already: untouched
    stored = sitk.DICOMOrient(ct, "SAR")
    lps = to_lps(stored)
    assert lps.GetDirection() == ct.GetDirection()
    assert np.array_equal(sitk.GetArrayViewFromImage(lps), sitk.GetArrayViewFromImage(ct))
    back = from_lps(lps, stored)
    assert _same_grid(back, stored) and np.array_equal(sitk.GetArrayViewFromImage(back),
                                                       sitk.GetArrayViewFromImage(stored))


def _views_of_temporaries(root: Path) -> list:
    """``GetArrayViewFromImage(<expression with a call>)``: the image is a temporary, freed at once, and the view
    reads freed memory."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                    == "GetArrayViewFromImage" and node.args
                    and any(isinstance(n, ast.Call) for n in ast.walk(node.args[0]))):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_array_view_of_a_temporary_image():
    assert [p for d in ("lungai", "Testing", "LungAICommon", "LungAISeg") for p in _views_of_temporaries(REPO / d)] == []


def test_the_dense_region_check_reads_a_live_crop():
    """Seed mode's "seed in a large dense region" check on a crop large enough to be freed to the system at once:
    a view of the freed crop crashed (segfault) or read garbage; run in a subprocess so a crash fails this test."""
    code = ("import numpy as np, SimpleITK as sitk\n"
            "from lungai.seg import infer, preprocess as pp\n"
            "arr = np.full((60, 256, 256), -850, np.int16); arr[:, 100:, :] = 40\n"
            "ct = sitk.GetImageFromArray(arr)\n"
            "big = pp.Box((0, 0, 0), (256, 256, 60), 'seed')\n"
            "small = pp.Box((0, 0, 0), (256, 90, 60), 'seed')\n"
            "print(infer._seed_in_large_dense_region(ct, big, (128.0, 200.0, 30.0)),\n"
            "      infer._seed_in_large_dense_region(ct, big, (128.0, 50.0, 30.0)),\n"
            "      infer._seed_in_large_dense_region(ct, small, (128.0, 50.0, 30.0)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False"]
