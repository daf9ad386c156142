"""The CT reader builds the image from its slices in order along the slice normal, whatever order the files were
listed in, and refuses an image whose slices it read out of that order (QA exportfollow69: the reader checked the
gaps between the slices, never their order; a folder holding a copied slice was read in file-name order - GDCM's
fallback when it cannot sort by position - LUNG1-003 scrambled, 0.71 mm apart instead of 3 mm).  The real series reads
as its slices stacked by position, renamed and renumbered files alike."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_helpers import oblique_image, write_dicom_series

from lungai.errors import InputError
from lungai.io import read_ct

UID = "1.2.826.0.1.3680043.8.498.4711"


def _arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img)


def _same(a: sitk.Image, b: sitk.Image, atol: float = 1e-8) -> None:
    """The same voxels on the same grid (``atol``: of the geometry; the DICOM tags hold 6 decimals)."""
    assert np.array_equal(_arr(a), _arr(b))
    assert a.GetSize() == b.GetSize() and a.GetPixelID() == b.GetPixelID()
    for x, y in ((a.GetSpacing(), b.GetSpacing()), (a.GetOrigin(), b.GetOrigin()),
                 (a.GetDirection(), b.GetDirection())):
        assert np.allclose(x, y, rtol=0, atol=atol), (x, y)


@pytest.fixture()
def shuffled(tmp_path):
    """An oblique CT written as a DICOM series, then its files renamed so that their names sort in no slice order:
    (the image written, the folder)."""
    img = oblique_image(shape_kji=(12, 16, 14), seed=4)
    files = write_dicom_series(img, tmp_path / "ct", UID)
    order = list(range(len(files)))
    random.Random(5).shuffle(order)
    for f, k in zip(files, order):
        f.rename(f.with_name(f"IMG{k:04d}.dcm"))
    return img, tmp_path / "ct"


def _listing(monkeypatch, order):
    """GDCM's listing of the folder replaced by ``order(files)``: the order GDCM falls back to when it cannot sort a
    folder by position (InstanceNumber, then file name)."""
    real = sitk.ImageSeriesReader.GetGDCMSeriesFileNames

    def listed(folder, *args, **kwargs):
        return order(list(real(folder, *args, **kwargs)))
    monkeypatch.setattr(sitk.ImageSeriesReader, "GetGDCMSeriesFileNames", staticmethod(listed))


@pytest.mark.parametrize("order", [sorted, lambda files: files[::-1]], ids=["file-names", "head-down"])
def test_slices_listed_out_of_order_are_read_in_order_along_the_normal(shuffled, monkeypatch, order):
    """Before, the image was built in the order listed: by file name, the slices scrambled (the spacing taken from the
    first and the last file); listed head-down, the image stored in reverse."""
    img, folder = shuffled
    expected = read_ct(folder)
    _same(expected, img, atol=1e-5)                 # GDCM sorts such a folder by position itself
    _listing(monkeypatch, order)
    _same(read_ct(folder), expected)


def test_an_image_read_out_of_order_is_refused_naming_the_slices(shuffled, monkeypatch):
    """The check of the image read: slices whose positions do not increase are refused, never read scrambled."""
    import lungai.io.read as R

    _, folder = shuffled
    _listing(monkeypatch, sorted)
    monkeypatch.setattr(R, "_in_slice_order", lambda files: files, raising=False)   # as listed
    with pytest.raises(InputError, match=r"its slices were read out of order along the slice normal - slice "
                                         r"IMG\d{4}\.dcm \(position along the slice normal = -?\d+\.\d\d mm\) "
                                         r"follows IMG\d{4}\.dcm") as exc:
        read_ct(folder)
    assert "ImagePositionPatient" in exc.value.fix and "lungai dicom-scan" in exc.value.fix


def test_check_slice_order():
    from lungai.io.read import check_slice_order

    files = [f"s{k}.dcm" for k in range(5)]
    check_slice_order([0.0, 3.0, 6.0, 9.0, 12.0], files, "the series")
    with pytest.raises(InputError, match=r"the series: its slices were read out of order along the slice normal - "
                                         r"slice s3\.dcm \(z = 6\.00 mm\) follows s2\.dcm \(z = 9\.00 mm\), so the "
                                         r"image would hold its slices scrambled"):
        check_slice_order([0.0, 3.0, 9.0, 6.0, 12.0], files, "the series")
    with pytest.raises(InputError, match=r"follows s0\.dcm \(z = 12\.00 mm\) \(and 3 more places like it\)"):
        check_slice_order([12.0, 9.0, 6.0, 3.0, 0.0], files, "the series")     # head-down: the image stored reversed
    with pytest.raises(InputError, match="s1.dcm"):
        check_slice_order([0.0, 0.0, 3.0, 6.0, 9.0], files, "the series")      # two slices at one place


# ---- the real planning CT (LUNG1-003) --------------------------------------------------------------------------------

def _stacked_by_position(folder: Path) -> tuple[np.ndarray, float, tuple]:
    """LUNG1-003 read without ITK: each slice's HU (pydicom), stacked by position along the normal; its slice
    spacing and first position."""
    slices = [pydicom.dcmread(f) for f in folder.glob("*.dcm")]
    iop = np.asarray(slices[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda ds: float(np.asarray(ds.ImagePositionPatient, float) @ normal))
    arr = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    z = [float(np.asarray(ds.ImagePositionPatient, float) @ normal) for ds in slices]
    return arr, float(np.median(np.diff(z))), tuple(float(v) for v in slices[0].ImagePositionPatient)


@pytest.mark.shared_data
def test_real_ct_reads_as_its_slices_stacked_by_position_renamed_and_renumbered_alike(shared_data, tmp_path):
    """LUNG1-003: the image is its slices stacked by position (3 mm); its files renamed and renumbered
    (InstanceNumber) in a shuffled order read identically (GDCM sorts a folder by position: this worked before)."""
    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT"
    ct = read_ct(src)
    arr, step, first = _stacked_by_position(src)
    assert np.array_equal(_arr(ct), arr) and ct.GetSize()[2] == 107
    assert ct.GetSpacing()[2] == pytest.approx(step) == pytest.approx(3.0)
    assert np.allclose(ct.GetOrigin(), first)
    files = sorted(src.glob("*.dcm"))
    order = list(range(len(files)))
    random.Random(3).shuffle(order)
    dst = tmp_path / "CT"
    dst.mkdir()
    for f, k in zip(files, order):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = k + 1
        ds.save_as(dst / f"IMG{k:04d}.dcm")
    _same(read_ct(dst), ct)
    shutil.rmtree(dst)      # a copy of patient data


@pytest.mark.shared_data
def test_real_ct_listed_by_file_name_reads_as_its_slices_stacked_by_position(shared_data, monkeypatch):
    """LUNG1-003's files (named by UID, in no slice order) listed by name, as GDCM lists a folder it cannot sort by
    position: before, read scrambled (the slices ~0.71 mm apart, the check of the gaps passed); now as it is."""
    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT"
    ct = read_ct(src)
    _listing(monkeypatch, sorted)
    _same(read_ct(src), ct)
    assert ct.GetSpacing()[2] == pytest.approx(3.0)
