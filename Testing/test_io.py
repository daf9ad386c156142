"""lungai.io: round trips keep geometry; each bad input gives a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from io_helpers import oblique_image, write_dicom_series
from lungai.errors import GeometryError, InputError
from lungai.io import read_ct, read_image, read_mask, same_geometry, write_image


def assert_same(a: sitk.Image, b: sitk.Image):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_values_and_geometry(tmp_path, suffix):
    img = oblique_image()
    path = write_image(img, tmp_path / f"ct{suffix}")
    assert_same(img, read_ct(path))


def test_dicom_series_folder(tmp_path):
    img = oblique_image(shape_kji=(6, 16, 12))
    write_dicom_series(img, tmp_path / "series", "1.2.826.0.1.3680043.8.498.100")
    back = read_ct(tmp_path / "series")
    assert back.GetSize() == img.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-4)
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back).astype(np.int16), sitk.GetArrayFromImage(img))


def test_mixed_dicom_series_is_refused_then_selectable(tmp_path):
    folder = tmp_path / "mixed"
    write_dicom_series(oblique_image(shape_kji=(4, 8, 8)), folder, "1.2.826.0.1.3680043.8.498.201")
    write_dicom_series(oblique_image(shape_kji=(5, 8, 8), seed=1), folder, "1.2.826.0.1.3680043.8.498.202")
    with pytest.raises(InputError, match="2 different DICOM series") as err:
        read_ct(folder)
    assert "--series" in str(err.value)
    assert read_ct(folder, series_uid="1.2.826.0.1.3680043.8.498.202").GetDepth() == 5


def test_empty_folder_is_not_dicom(tmp_path):
    with pytest.raises(InputError, match="no DICOM series"):
        read_ct(tmp_path)


def test_not_3d(tmp_path):
    img2d = sitk.GetImageFromArray(np.full((20, 20), -1000, np.int16))
    sitk.WriteImage(img2d, str(tmp_path / "slice.nrrd"))
    with pytest.raises(InputError, match="not a 3D volume"):
        read_ct(tmp_path / "slice.nrrd")


def test_mr_like_intensities_are_not_ct(tmp_path):
    mr = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 1500, (8, 16, 16)).astype(np.int16))
    write_image(mr, tmp_path / "mr.nii.gz")
    with pytest.raises(InputError, match="does not look like a CT in Hounsfield units"):
        read_ct(tmp_path / "mr.nii.gz")
    read_image(tmp_path / "mr.nii.gz")  # read_image does not check intensities


def test_corrupt_file(tmp_path):
    good = write_image(oblique_image(), tmp_path / "ct.nii.gz")
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="unreadable or corrupt"):
        read_ct(bad)


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_ct(tmp_path / "nope.nii.gz")
    (tmp_path / "scan.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unsupported file type"):
        read_ct(tmp_path / "scan.png")


def test_write_refuses_to_overwrite_an_input(tmp_path):
    img = oblique_image()
    path = write_image(img, tmp_path / "ct.nii.gz")
    before = path.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_image(img * 0, path, protect=[path])
    assert path.read_bytes() == before
    with pytest.raises(InputError, match="unknown image format"):
        write_image(img, tmp_path / "ct.png")


def test_read_mask_checks_grid(tmp_path):
    img = oblique_image()
    mask = sitk.Cast(img > 0, sitk.sitkUInt8)
    write_image(mask, tmp_path / "mask.nrrd")
    assert same_geometry(read_mask(tmp_path / "mask.nrrd", reference=img), img)
    shifted = sitk.Image(mask)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    write_image(shifted, tmp_path / "shifted.nrrd")
    with pytest.raises(GeometryError, match="sitk.Resample"):
        read_mask(tmp_path / "shifted.nrrd", reference=img)
