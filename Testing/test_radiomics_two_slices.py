"""QA: a 2-slice CT (30 of the 779 LIDC crops) resampled with a cubic B-spline gave different features on every run
(ITK's B-spline reads outside an axis of 2 samples: 20 identical resamplings, 14 results, up to 3.4e38).  lungai's
own IBSI resampling (ibsi-e) now computes the exact B-spline there; pyradiomics' own B-spline resampling (a settings
file) of such an image is refused with the fix."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.cli import main
from lungai.radiomics.ibsi.preprocess import centre_aligned_grid, grid_image, resample_image


def _image(slices) -> sitk.Image:
    img = sitk.GetImageFromArray(np.asarray(slices, np.float32))
    img.SetSpacing((0.78, 0.78, 2.5))
    img.SetOrigin((-120.0, 10.0, -170.0))
    return img


def _slices(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    zz, yy, xx = np.mgrid[0:n, 0:40, 0:40]
    return (-700 + 900 * np.exp(-((yy - 20) ** 2 + (xx - 19) ** 2) / 60.0) * (1 - 0.2 * zz)
            + rng.normal(0, 30, (n, 40, 40))).astype(np.float32)


def _digest(img: sitk.Image) -> str:
    return hashlib.md5(sitk.GetArrayViewFromImage(img).tobytes()).hexdigest()


def test_bspline_on_two_slices_is_the_exact_spline_every_time():
    two = _image(_slices(2))
    ref = grid_image(*centre_aligned_grid(two, (2.0, 2.0, 2.0)), two.GetDirection())
    runs = {_digest(resample_image(two, ref, "bspline")) for _ in range(12)}
    assert len(runs) == 1
    out = sitk.GetArrayFromImage(resample_image(two, ref, "bspline"))
    assert np.isfinite(out).all() and np.abs(out).max() < 2000
    # independent reference: two equal slices are constant along z, as a stack of 5 equal slices is (ITK handles 5)
    flat = _slices(1)
    same2 = resample_image(_image(np.repeat(flat, 2, 0)), ref, "bspline")
    same5 = _image(np.repeat(flat, 5, 0))
    same5.SetOrigin(two.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(same2), sitk.GetArrayFromImage(resample_image(same5, ref, "bspline")))
    # 3 slices and more: ITK's own resampling, unchanged
    three = _image(_slices(3))
    ref3 = grid_image(*centre_aligned_grid(three, (2.0, 2.0, 2.0)), three.GetDirection())
    plain = sitk.Round(sitk.Resample(three, ref3, sitk.Transform(), sitk.sitkBSpline, 0.0, sitk.sitkFloat32, True))
    assert np.array_equal(sitk.GetArrayFromImage(resample_image(three, ref3, "bspline")), sitk.GetArrayFromImage(plain))


def _case(tmp_path):
    img = _image(_slices(2))
    mask = sitk.GetImageFromArray((np.abs(np.mgrid[0:2, 0:40, 0:40][1] - 20) < 6).astype(np.uint8)
                                  * (np.abs(np.mgrid[0:2, 0:40, 0:40][2] - 19) < 6))
    mask.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    return ["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"),
            "--label", "tumour=1", "--feature-classes", "firstorder"]


def test_ibsi_e_on_a_two_slice_ct_gives_the_same_features_every_run(tmp_path):
    args = _case(tmp_path)
    tables = []
    for i in range(4):
        assert main(args + ["--params", "ibsi-e", "-o", str(tmp_path / f"e{i}.csv")]) == 0
        tables.append(pd.read_csv(tmp_path / f"e{i}.csv"))
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t, tables[0])


def test_pyradiomics_bspline_resampling_of_a_two_slice_ct_is_refused_with_the_fix(tmp_path, capsys):
    args = _case(tmp_path)
    for interpolator, expected in (("", 2), ("interpolator: sitkBSpline, ", 2), ("interpolator: sitkLinear, ", 0)):
        params = tmp_path / "p.yaml"
        params.write_text(f"setting: {{binWidth: 25, {interpolator}resampledPixelSpacing: [1, 1, 1]}}\n"
                          "imageType: {Original: {}}\nfeatureClass: {firstorder: []}\n", encoding="utf-8")
        out = tmp_path / f"p{len(interpolator)}.csv"
        assert main(args + ["--params", str(params), "-o", str(out)]) == expected
        err = capsys.readouterr().err
        if expected:
            assert "only 2 slices along z" in err and "sitkBSpline" in err and "sitkLinear" in err, err
            assert not out.exists()
        else:
            assert out.exists()
