"""lungai.io: round trips keep geometry; each bad input gives a clear error."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from io_helpers import nrrd_encoding, oblique_image, write_dicom_series
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


def test_folder_without_dicom_gives_only_our_error_and_keeps_itk_warnings_on(tmp_path, capfd):
    (tmp_path / "notes.txt").write_text("not DICOM", encoding="utf-8")
    with pytest.raises(InputError, match="no DICOM series"):
        read_ct(tmp_path)
    assert "No Series were found" not in capfd.readouterr().err      # ITK's own warning is silenced there ...
    assert sitk.ProcessObject.GetGlobalWarningDisplay()               # ... and only there


def test_case_id_is_the_patient_id_of_a_dicom_ct_else_the_file_name(tmp_path):
    import pydicom

    from lungai.io import input_case_id as case_id

    folder = tmp_path / "CT"
    files = write_dicom_series(oblique_image(shape_kji=(4, 8, 8)), folder, "1.2.826.0.1.3680043.8.498.203")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PatientID = "LUNG1-042"
        ds.save_as(f)
    assert case_id(folder) == "LUNG1-042" and case_id(files[0]) == "LUNG1-042"
    assert case_id(tmp_path / "case_007.nii.gz") == "case_007"


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


def _ct_like(shape=(24, 64, 64)) -> sitk.Image:
    """A CT-like image of random HU values (barely compressible: a cut-off .nii.gz still holds its header)."""
    arr = np.random.default_rng(0).integers(-1000, 400, size=shape).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.5))
    return img


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_a_cut_off_nifti_input_is_refused_not_read_with_missing_slices(tmp_path, suffix):
    """An interrupted copy or download (60 % of the file) was read by ITK without an error, the missing slices
    0 HU; it is refused, saying to check that the copy finished."""
    good = write_image(_ct_like(), tmp_path / f"ct{suffix}")
    cut = tmp_path / f"cut{suffix}"
    data = good.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError, match="unreadable or corrupt.*cut off") as err:
        read_ct(cut)
    assert "download/copy finished" in err.value.fix
    assert read_ct(good).GetSize() == (64, 64, 24)


def test_a_complete_nifti_of_several_gzip_members_is_read(tmp_path):
    """The cheap check (the gzip trailer's length) does not match a file of several gzip members (bgzip's): its
    stream is then read to the end, and the complete file is accepted."""
    import gzip

    img = _ct_like()
    raw = write_image(img, tmp_path / "ct.nii").read_bytes()
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:]))
    assert_same(img, read_ct(multi))


@pytest.mark.parametrize("tail", [b"GARBAGE!", b"\0" * 1000, b"\x1f"])
def test_a_complete_nifti_gz_with_bytes_after_its_gzip_stream_is_read_as_itk_reads_it(tmp_path, tail):
    """Bytes after the last gzip member that are no gzip header (trailing garbage, zero padding) are ignored, as
    zlib / ITK ignore them - also after several members, and with a one-voxel image whose whole stream is shorter
    than the header read; a stream cut inside a member is still cut off."""
    import gzip

    from lungai.io.nifti import nifti_incomplete

    img = _ct_like()
    raw = write_image(img, tmp_path / "ct.nii").read_bytes()
    for i, data in enumerate([gzip.compress(raw), gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:])]):
        padded = tmp_path / f"padded{i}.nii.gz"
        padded.write_bytes(data + tail)
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(padded))).shape == (24, 64, 64)    # ITK reads it
        assert nifti_incomplete(padded, full=False) is None and nifti_incomplete(padded, full=True) is None
        assert_same(img, read_ct(padded))
        cut = tmp_path / f"cut{i}.nii.gz"
        cut.write_bytes(data[:-20] + tail)            # the last member cut: its trailer and some data missing
        assert "cut off" in nifti_incomplete(cut, full=True)
    tiny = sitk.GetImageFromArray(np.full((1, 1, 1), 7, np.int16))
    small = tmp_path / "tiny.nii.gz"
    small.write_bytes(gzip.compress(write_image(tiny, tmp_path / "tiny.nii").read_bytes()) + tail)
    assert nifti_incomplete(small, full=True) is None and nifti_incomplete(small, full=False) is None


_SHORT_WRITE = """
import resource, signal, sys
import numpy as np, SimpleITK as sitk
from lungai.errors import InputError
from lungai.io.write import write_image
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
img = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(40, 200, 200)).astype(np.float32))
resource.setrlimit(resource.RLIMIT_FSIZE, (300 * 1024, resource.RLIM_INFINITY))   # a full disk
try:
    write_image(img, sys.argv[1])
    print("WRITTEN")
except InputError as exc:
    print("REFUSED", exc.problem)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="file size limit (RLIMIT_FSIZE): POSIX")
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_a_nifti_cut_off_by_a_full_disk_is_refused_not_left_as_a_result(tmp_path, suffix):
    """ITK does not raise when a NIfTI write falls short (it prints 'NWAD: wrote only ... bytes'): the file
    written is checked complete before it takes its name; a cut-off one is removed and refused."""
    import subprocess

    out = tmp_path / "out" / f"probability{suffix}"
    run = subprocess.run([sys.executable, "-c", _SHORT_WRITE, str(out)], capture_output=True, text=True, timeout=60)
    assert "REFUSED" in run.stdout, run.stdout + run.stderr
    assert f"cannot write {out}" in run.stdout and "disk may be full" in run.stdout
    assert not out.exists() and not list(out.parent.glob(".partial-*"))


def test_an_upper_case_suffix_is_written_when_readable_else_refused_before_any_work(tmp_path):
    """ITK writes no NIfTI named .NII.GZ (it reads one): the temporary file has the suffix in lower case, the result
    the user's name.  '.Nii.Gz' or '.MHA' cannot be read back: refused by the name check, before any work."""
    from lungai.io.write import check_image_name

    img = oblique_image()
    for name in ("LUNGS.NII.GZ", "LUNGS.NII", "LUNGS.NRRD"):
        path = write_image(img, tmp_path / name)
        assert path.name == name and sorted(f.name for f in tmp_path.iterdir()) == sorted(
            f.name for f in tmp_path.iterdir() if not f.name.startswith("."))
        assert_same(img, read_ct(path))
    for name, fix in (("lungs.Nii.Gz", "'.nii.gz'"), ("lungs.nii.GZ", "'.nii.gz'"), ("lungs.MHA", "'.mha'")):
        with pytest.raises(InputError, match="cannot be read back") as err:
            check_image_name(tmp_path / name)
        assert fix in err.value.fix


def test_a_name_itk_would_shorten_is_written_and_no_partial_file_left(tmp_path):
    """ITK writes 'x.nii.nii.gz' as 'x.nii.gz': the temporary file's name (.partial-<hash><suffix>) has no
    dot in its stem, so the write lands where it is looked for; the result takes the user's name, and nothing else
    is left in the folder (a failed write removes its temporary file too)."""
    img = oblique_image()
    for name in ("lungs.nii.nii.gz", "lungs.nii.nii", "lungs.nrrd.nrrd", "lungs.mha.mha"):
        out = tmp_path / "o" / name
        try:
            assert write_image(img, out) == out and out.exists()
        finally:
            assert [f.name for f in out.parent.iterdir() if f.name != name] == []    # no .partial-* left
        assert_same(img, read_image(out))
        out.unlink()
    from lungai.io.write import temp_image_name

    tmp = temp_image_name(tmp_path / "LUNGS.NII.NII.GZ")
    assert tmp.parent == tmp_path and re.fullmatch(r"\.partial-[0-9a-f]{16}\.nii\.gz", tmp.name)


def test_the_partial_file_of_a_killed_write_is_replaced_by_the_next_write_not_piled_up(tmp_path):
    """A write killed before its rename (SIGKILL, power loss: no clean-up runs) leaves its .partial-* file; its name
    is the same on every run (a hash of the output's name, no dot in the stem), so the next write of that output
    replaces it - one stale file at most, never a new one (tens of MB) per killed run.  Other outputs of the folder
    have other names (written side by side)."""
    from lungai.io.write import temp_image_name

    out = tmp_path / "lungs.nii.gz"
    assert temp_image_name(out) == temp_image_name(tmp_path / "lungs.nii.gz")
    assert temp_image_name(out) != temp_image_name(tmp_path / "tumour.nii.gz")
    assert "." not in temp_image_name(out).name[1:-len(".nii.gz")]
    img = oblique_image()
    for _ in range(3):          # killed runs: each left its (incomplete) temporary file
        temp_image_name(out).write_bytes(b"\x1f\x8b cut off")
    write_image(img, out)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["lungs.nii.gz"]
    assert_same(img, read_image(out))


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
    shifted.SetOrigin(tuple(np.add(img.GetOrigin(), (1.3, -0.4, 0.7))))    # overlaps the image: resampling is the fix
    write_image(shifted, tmp_path / "shifted.nrrd")
    with pytest.raises(GeometryError, match="sitk.Resample"):
        read_mask(tmp_path / "shifted.nrrd", reference=img)


def test_a_mask_that_does_not_overlap_the_image_is_not_told_to_be_resampled(tmp_path):
    """QA (radiomics-batch, a manifest row pairing LIDC-IDRI-0001_R_1's CT with LIDC-IDRI-0003_R_2's mask, 49 mm
    apart): the fix said "resample the mask onto the image" - which gives an all-0 mask.  A mask whose grid does not
    overlap the image at all is said to be another scan's, its distance named; the fix is the right mask."""
    from lungai.io.geometry import assert_same_geometry

    img = oblique_image()
    mask = sitk.Cast(img > 0, sitk.sitkUInt8)
    far = sitk.Image(mask)
    far.SetOrigin((0.0, 0.0, 0.0))                    # the image lies round z = -401 mm, ~30 mm deep
    write_image(far, tmp_path / "far.nrrd")
    resampled = sitk.Resample(far, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert not sitk.GetArrayViewFromImage(resampled).any()          # what the old fix gave: nothing left
    for check in (lambda: read_mask(tmp_path / "far.nrrd", reference=img), lambda: assert_same_geometry(img, far)):
        with pytest.raises(GeometryError) as exc:
            check()
        assert "does not lie on the image grid" in exc.value.problem
        assert "does not overlap the image at all (their extents are" in exc.value.problem
        assert "sitk.Resample" not in exc.value.fix and "drawn on this image" in exc.value.fix
    from lungai.io.geometry import separation_mm

    assert separation_mm(img, far) > 300 and separation_mm(img, mask) == 0


def _chest(size_z: int, origin_z: float) -> sitk.Image:
    """A whole-chest-like grid as NSCLC-Radiomics' planning CTs (0.977 x 0.977 x 3 mm), small in x / y."""
    img = sitk.Image((40, 40, size_z), sitk.sitkUInt8)
    img.SetSpacing((0.977, 0.977, 3.0))
    img.SetOrigin((-19.5, -19.5, origin_z))
    return img


def test_another_patients_mask_partly_overlapping_the_image_is_not_told_to_be_resampled(tmp_path):
    """QA maskinput64 (radiomics-batch row image = LUNG1-003's CT, tumour = LUNG1-002_labels.nii.gz#1: the same x / y
    grid, 111 slices from z = -133.4 mm against 107 from z = -305.9 mm, overlapping over 146 mm): the fix said
    "resample the mask onto the image", which gives features of wherever the other patient's tumour falls on this
    CT.  A mask whose grid reaches well beyond the image says its grid / extent do not match this image (another
    patient's or series' mask) and asks for the right pairing; a mask of the same field of view on another grid
    (exported at another resolution) or merely shifted still gets the resampling fix."""
    from lungai.io.geometry import assert_same_geometry, beyond_extent

    image = _chest(107, -305.9)
    other = _chest(111, -133.4)
    arr = np.zeros((111, 40, 40), np.uint8)
    arr[5:20, 10:30, 10:30] = 1                         # the other patient's tumour, inside the overlap
    other_mask = sitk.GetImageFromArray(arr)
    other_mask.CopyInformation(other)
    write_image(other_mask, tmp_path / "other.nii.gz")
    for check in (lambda: read_mask(tmp_path / "other.nii.gz", reference=image),
                  lambda: assert_same_geometry(image, other)):
        with pytest.raises(GeometryError) as exc:
            check()
        assert "does not lie on the image grid" in exc.value.problem
        assert re.search(r"its grid reaches 18[45] mm beyond the image along z \(z -134\.9 to 198\.1 mm against the "
                         r"image's -307\.4 to 13\.6 mm\): its grid and extent do not match this image, so it was most "
                         r"likely drawn on another scan \(another patient's or another series' mask\)",
                         exc.value.problem), exc.value.problem
        assert exc.value.fix.startswith("pair each image with the mask drawn on it")
        assert "sitk.Resample" not in exc.value.fix
    # the same field of view on another grid: 1 mm voxels over LUNG1-003's box (a mask exported at 1 mm)
    fine = sitk.Image((39, 39, 321), sitk.sitkUInt8)
    fine.SetSpacing((1.0, 1.0, 1.0))
    fine.SetOrigin((-19.5, -19.5, -306.9))
    shifted = _chest(107, -305.9 + 7.0)                 # shifted by 7 mm (a wrong origin): overlaps nearly all
    for same_view in (fine, shifted):
        assert beyond_extent(image, same_view) is None
        with pytest.raises(GeometryError, match="sitk.Resample"):
            assert_same_geometry(image, same_view)


@pytest.mark.shared_data
def test_lung1_002s_labels_beside_lung1_003s_ct_are_said_to_be_another_scans(shared_data, tmp_path):
    """The QA case itself, on the real files, through radiomics-batch: the case fails naming another scan's mask."""
    import pandas as pd

    from lungai.cli import main

    d = shared_data / "nsclc_whole_ct" / "nifti"
    (tmp_path / "m.csv").write_text(f"case,image,tumour\nP3,{d / 'LUNG1-003_ct.nii.gz'},"
                                    f"{d / 'LUNG1-002_labels.nii.gz'}#1\n")
    main(["radiomics-batch", str(tmp_path / "m.csv"), "--workers", "0", "--feature-classes", "shape",
          "-o", str(tmp_path / "out.csv")])
    errors = pd.read_csv(tmp_path / "out_errors.csv")
    (error,) = errors.error
    assert "its grid reaches 184 mm beyond the image along z" in error and "drawn on another scan" in error
    assert "pair each image with the mask drawn on it" in error and "sitk.Resample" not in error


@pytest.mark.parametrize("oblique", [False, True])
def test_read_mask_takes_the_ct_voxels_stored_in_another_order(tmp_path, oblique):
    """QA: a mask on exactly the CT's voxels stored in another order (x / y flipped: RAS, as nibabel / nnU-Net write
    it; permuted) was refused with 'origin y ... apart' and 'resample'; it is read reoriented onto the CT's order
    (lossless, the CT's exact geometry).  A mask truly off the grid is still refused, the directions and orders
    said and the largest difference compared in LPS order; grids differing only in order say so."""
    from lungai.io.geometry import assert_same_geometry, on_grid

    img = oblique_image()
    if not oblique:
        img.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    mask = sitk.Cast(img > 0, sitk.sitkUInt8)
    for name, stored in (("ras", sitk.Flip(mask, [True, True, False])),
                         ("sar", sitk.PermuteAxes(sitk.Flip(mask, [False, False, True]), [2, 1, 0]))):
        write_image(stored, tmp_path / f"{name}.nii.gz")
        got = read_mask(tmp_path / f"{name}.nii.gz", reference=img)
        assert got.GetSize() == img.GetSize() and same_geometry(got, img), name
        assert (sitk.GetArrayFromImage(got) == sitk.GetArrayFromImage(mask)).all(), name
    ras = sitk.Flip(mask, [True, True, False])
    with pytest.raises(GeometryError) as exc:
        assert_same_geometry(img, ras)                      # the strict check says what differs: the order only
    assert "lies on the image's voxels but stores them in another order" in exc.value.problem
    assert "direction (" in exc.value.problem and "sitk.DICOMOrient" in exc.value.fix
    off = sitk.Image(ras)
    off.SetOrigin(tuple(np.add(ras.GetOrigin(), (0.0, 0.3, 0.0))))
    write_image(off, tmp_path / "off.nii.gz")
    with pytest.raises(GeometryError, match="sitk.Resample") as exc:
        read_mask(tmp_path / "off.nii.gz", reference=img)
    assert "does not lie on the image grid" in exc.value.problem and "order); mask" in exc.value.problem
    assert "largest difference (both in LPS order): origin" in exc.value.problem and "0.3 mm apart" in \
        exc.value.problem
    with pytest.raises(GeometryError):
        on_grid(img, off)


def test_grid_mismatch_names_the_largest_difference_with_its_digits():
    """A grid just over the tolerance (origin 2e-3 mm off; 1e-3 allowed) shows two origins that differ, not the
    same rounded ones."""
    from lungai.io.geometry import assert_same_geometry

    img = sitk.Image(8, 8, 4, sitk.sitkUInt8)
    img.SetOrigin((0.5, -1.0, 0.25))
    off = sitk.Image(img)
    off.SetOrigin((0.5, -1.0, 0.252))
    with pytest.raises(GeometryError) as exc:
        assert_same_geometry(img, off)
    assert "largest difference: origin z 0.2500 vs 0.2520 mm (0.002 mm apart" in exc.value.problem
    off = sitk.Image(img)
    off.SetSpacing((1.0, 1.0, 1.0005))
    off.SetOrigin((0.5, -1.0, 0.2505))                      # within its tolerance: the spacing is named
    with pytest.raises(GeometryError, match=r"largest difference: spacing z 1.00000 vs 1.00050 mm"):
        assert_same_geometry(img, off)



def test_mask_header_rounded_to_3_decimals_is_refused_and_the_fix_resample_keeps_its_voxels():
    """A mask whose header rounds the CT's spacing to 3 decimals (0.703125 -> 0.703 mm, as some tools write) is
    refused by the one grid check, as ITK's own filters refuse it (coordinate tolerance 1e-6 x spacing): no
    tolerance accepts every 3-decimal rounding losslessly (0.0005 mm x 511 voxels = 0.26 mm at a 512-grid's edge,
    half a 0.5 mm voxel).  The resample the error names puts the mask back on the CT's voxels unchanged (the
    rounding moves each voxel centre < 0.1 voxel here), so the refusal costs the user one documented step."""
    from lungai.io.geometry import assert_same_geometry

    img = sitk.Image(53, 64, 11, sitk.sitkInt16)             # an LIDC crop's grid (LIDC-IDRI-0001_R_1)
    img.SetSpacing((0.703125, 0.703125, 2.5))
    img.SetOrigin((39.3125, 63.14375305175781, -127.5))
    arr = (np.random.default_rng(3).random((11, 64, 53)) > 0.7).astype(np.uint8)
    mask = sitk.GetImageFromArray(arr)
    mask.SetSpacing(tuple(round(v, 3) for v in img.GetSpacing()))
    mask.SetOrigin(tuple(round(v, 3) for v in img.GetOrigin()))
    with pytest.raises(GeometryError, match=r"largest difference: spacing x 0.70312 vs 0.70300 mm") as exc:
        assert_same_geometry(img, mask)
    assert "sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)" in exc.value.fix
    with pytest.raises(RuntimeError):                        # ITK's own check refuses the pair too
        sitk.Add(sitk.Cast(img, sitk.sitkUInt8), mask)
    fixed = sitk.Resample(mask, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert same_geometry(fixed, img) and np.array_equal(sitk.GetArrayFromImage(fixed), arr)

# ------------------------------------------------------------------ slice positions of a DICOM series

@pytest.fixture(scope="module")
def ct_series(tmp_path_factory):
    """A synthetic CT series (lungai.dicom.synthetic): 36 axial slices, 5 mm apart."""
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import write_ct_series

    folder = tmp_path_factory.mktemp("series") / "ct"
    write_ct_series(small_phantom(7).ct, folder)
    return folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "ct")


def _z(path) -> float:
    import pydicom

    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


def test_full_series_reads(ct_series):
    img = read_ct(ct_series)
    assert img.GetSize()[2] == 36 and abs(img.GetSpacing()[2] - 5.0) < 1e-6


def test_missing_middle_slice_is_an_error_naming_the_gap(ct_series, tmp_path):
    """ITK reads a series with a missing slice onto a wrong, uniform grid with only a warning."""
    folder = _copy(ct_series, tmp_path)
    above, gone, below = (folder / f"ct_{k:04d}.dcm" for k in (17, 18, 19))
    z0, z1 = _z(above), _z(below)
    gone.unlink()
    with pytest.raises(InputError, match="1 slice missing") as err:
        read_ct(folder)
    text = str(err.value)
    assert f"between z = {z0:.2f} and {z1:.2f} mm" in text and "slice spacing 5.00 mm" in text
    assert "re-export the full series" in text
    # the first or last slice gone is not a gap: the series is just shorter
    edge = _copy(ct_series, tmp_path / "edge")
    (edge / "ct_0036.dcm").unlink()
    assert read_ct(edge).GetSize()[2] == 35


def test_duplicate_slice_position_is_an_error(ct_series, tmp_path):
    """Two slices (two SOPInstanceUIDs) at one position; a file copied twice (one SOPInstanceUID) is one slice:
    lungai.dicom.pixeldata.drop_slice_copies, Testing/test_cohort_slice_copies.py."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = _copy(ct_series, tmp_path)
    ds = pydicom.dcmread(folder / "ct_0010.dcm")
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(folder / "ct_0010_again.dcm")
    with pytest.raises(InputError, match=f"position of another slice .z = {_z(folder / 'ct_0010.dcm'):.2f} mm"):
        read_ct(folder)


def test_irregular_slice_step_is_an_error(ct_series, tmp_path):
    import pydicom

    folder = _copy(ct_series, tmp_path)
    path = folder / "ct_0020.dcm"
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient[2] = f"{float(ds.ImagePositionPatient[2]) + 1.5:.4f}"
    ds.save_as(path)
    with pytest.raises(InputError, match=r"not equally spaced \(5.000 mm mostly, but 6.500 mm"):
        read_ct(folder)


def test_gantry_tilted_series_is_refused_not_misplaced(ct_series, tmp_path):
    """Slices stepping along z with a tilted ImageOrientationPatient (gantry tilt): ITK stacked them along the
    normal and put the last slice tens of mm off; now an error (read_ct and the scan's notes) naming the tilt."""
    import math

    import pydicom

    from lungai.dicom.discover import scan

    folder = _copy(ct_series, tmp_path)
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, f"{c:.6f}", f"{s:.6f}"]
        ds.GantryDetectorTilt = 15
        ds.save_as(path)
    with pytest.raises(InputError, match=r"gantry-tilted or sheared: its slices step 15.0 degrees off the slice "
                                         r"normal") as err:
        read_ct(folder)
    assert "Acquisition geometry regularization" in err.value.fix
    (study,) = scan(folder)
    assert any("gantry-tilted" in n for n in study.notes)


def test_steps_along_the_normal_tolerate_rounding():
    from lungai.io.validate import check_steps_along_normal

    rng = np.random.default_rng(0)
    z = np.arange(60) * 2.5
    positions = np.column_stack([np.full(60, -250.0), np.full(60, -180.0), z]) + rng.uniform(-0.005, 0.005, (60, 3))
    check_steps_along_normal(positions, [1, 0, 0, 0, 1, 0], "s")        # 2-decimal rounding passes
    c, s = np.cos(0.3), np.sin(0.3)                                       # an oblique series stepping along its normal
    check_steps_along_normal([[0, 0, 0], [0, -s * 2, c * 2], [0, -s * 4, c * 4]], [1, 0, 0, 0, c, s], "s")
    with pytest.raises(InputError, match="gantry-tilted"):
        check_steps_along_normal([[0, 0, 0], [0, 0, 2], [0, 0, 4]], [1, 0, 0, 0, c, s], "s")


def test_slice_position_check_tolerates_rounding_and_names_oblique_axes():
    from lungai.io.validate import check_slice_positions, slice_offsets

    z = np.arange(40) * 2.5 + np.tile([0.0, 0.004, -0.003, 0.002], 10)   # positions written to 2 decimals
    assert abs(check_slice_positions(z, "s") - 2.5) < 0.01
    with pytest.raises(InputError, match="2 slices missing .* and 10.00 mm"):
        check_slice_positions([0.0, 2.5, 10.0, 12.5, 15.0], "s")
    c, s = np.cos(0.3), np.sin(0.3)
    offsets, axis = slice_offsets([[0, 0, 0], [0, -s * 2, c * 2]], [1, 0, 0, 0, c, s])
    assert axis == "position along the slice normal" and np.allclose(offsets, [0, 2])


@pytest.mark.parametrize("factor, cause", [(0.1, "in cm or m"), (0.001, "in cm or m"), (10.0, "units or slice spacing")])
def test_ct_spacing_outside_mm_range_is_refused(tmp_path, factor, cause):
    """A CT whose header is in cm (0.07 x 0.14 x 0.33 'mm' voxels) or m, or with 33 mm slices of 7 mm pixels, is
    refused by read_ct (and by segment_tumour / the Slicer lungs, which share lungai.io.check_ct), naming the spacing
    and the likely cause."""
    from lungai.io import check_ct

    img = oblique_image()
    img.SetSpacing([s * factor for s in img.GetSpacing()])
    img.SetOrigin([o * factor for o in img.GetOrigin()])
    path = write_image(img, tmp_path / "ct.nrrd")
    with pytest.raises(InputError, match="voxel spacing") as err:
        read_ct(path)
    assert cause in err.value.problem and f"{img.GetSpacing()[0]:.4g}" in err.value.problem
    assert "in mm" in err.value.fix
    with pytest.raises(InputError, match="voxel spacing"):
        check_ct(img, "ct")


def test_ct_spacing_of_test_images_and_the_sample_pass(sample_dir, small_phantom):
    from lungai.io import check_ct

    assert read_ct(sample_dir / "ct.nii.gz").GetSize()
    check_ct(small_phantom.ct, "phantom")
    check_ct(oblique_image(), "oblique")


@pytest.mark.shared_data
def test_ct_spacing_of_every_real_image_passes(shared_data):
    """Every image in ../shared/data (LIDC crops, pyradiomics_lung, nsclc_whole_ct, IBSI phantoms): 0.45-5 mm."""
    from lungai.io.validate import CT_SPACING_MM

    files = [p for p in shared_data.rglob("*") if p.name.endswith((".nii.gz", ".nrrd"))]
    assert len(files) > 100
    for p in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.ReadImageInformation()
        assert CT_SPACING_MM[0] <= min(reader.GetSpacing()) and max(reader.GetSpacing()) <= CT_SPACING_MM[1], p
    ct = read_ct(shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT")     # a DICOM series
    assert ct.GetSize()


def test_every_command_reading_a_dicom_ct_takes_series():
    """The two-series error points to --series UID: every command that reads a CT (DICOM folder) has it."""
    from lungai.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("segment", "lungs", "demo", "radiomics", "dose-features", "dicom-export"):
        assert "--series" in sub.choices[command]._option_string_actions, command


def test_radiomics_and_demo_read_the_chosen_series(tmp_path, capsys):
    from lungai.cli import main

    folder = tmp_path / "mixed"
    write_dicom_series(oblique_image(shape_kji=(4, 12, 12)), folder, "1.2.826.0.1.3680043.8.498.201")
    write_dicom_series(oblique_image(shape_kji=(6, 12, 12), seed=1), folder, "1.2.826.0.1.3680043.8.498.202")
    ct = read_ct(folder, series_uid="1.2.826.0.1.3680043.8.498.202")
    arr = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
    arr[1:5, 3:9, 3:9] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(ct)
    write_image(mask, tmp_path / "mask.nii.gz")
    args = ["radiomics", "--image", str(folder), "--mask", str(tmp_path / "mask.nii.gz"), "--label", "1",
            "--feature-classes", "firstorder", "-o", str(tmp_path / "r.csv")]
    assert main(args) == 2 and "--series UID" in capsys.readouterr().err
    assert main(args + ["--series", "1.2.826.0.1.3680043.8.498.202"]) == 0
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "r.csv")["case"]) == {"LUNGAI-TEST"}
    assert main(["demo", "-o", str(tmp_path / "demo"), "--series", "1.2.3"]) == 2       # --series without --ct
    assert "--series chooses a series of --ct" in capsys.readouterr().err
    from lungai.demo.pipeline import _read_input

    assert _read_input(folder, False, "1.2.826.0.1.3680043.8.498.201")[0].GetDepth() == 4


def _chest_like(hu_offset=0, pad=None, size=64):
    """A small chest-like volume in HU (air outside the body, lungs, soft tissue), + ``hu_offset`` (1024: stored
    values without RescaleIntercept), padded with ``pad`` outside the reconstruction circle."""
    rng = np.random.default_rng(1)
    arr = np.full((10, size, size), -1000.0) + rng.normal(0, 15, (10, size, size))
    y, x = np.ogrid[:size, :size]
    c = (size - 1) / 2
    arr[:, (y - c) ** 2 / 0.6 + (x - c) ** 2 < (0.4 * size) ** 2] = 40          # body
    for dx in (-0.17, 0.17):
        arr[:, (y - c) ** 2 + (x - c - dx * size) ** 2 < (0.12 * size) ** 2] = -850   # lungs
    arr = arr + hu_offset
    if pad is not None:
        arr[:, (y - c) ** 2 + (x - c) ** 2 > (0.45 * size) ** 2] = pad           # 36 % of the voxels
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing((0.8, 0.8, 2.5))
    return img


@pytest.mark.parametrize("pad", [None, -2000, -3024, -1024, -32768])
def test_ct_not_in_hu_is_refused_also_with_padding_outside_the_field_of_view(pad):
    """Stored values (air near 0) padded with -2000 / -3024 outside the reconstruction circle used to pass: the
    padding held the 1st percentile below -500.  The check now looks inside the field of view."""
    from lungai.io.validate import check_ct_intensities

    if pad != -32768:
        with pytest.raises(InputError, match="does not look like a CT in Hounsfield units"):
            check_ct_intensities(_chest_like(1024, pad), "raw")
    check_ct_intensities(_chest_like(0, pad), "in HU")       # the same CT in HU passes with any padding


def test_intensity_check_keeps_air_at_minus_1024_and_crops_with_little_air():
    from lungai.io.validate import check_ct_intensities, without_padding

    img = _chest_like(0, -1024)                 # padding at -1024 (air's own value) is not a gap: kept
    v = sitk.GetArrayFromImage(img).ravel().astype(float)
    assert without_padding(v).size == v.size
    arr = np.full((8, 32, 32), 30.0)
    arr[:, :, :2] = -870                         # a nodule crop: soft tissue, 6 % lung at one side
    check_ct_intensities(sitk.GetImageFromArray(arr.astype(np.int16)), "crop")
    with pytest.raises(InputError, match="only padding"):
        check_ct_intensities(sitk.GetImageFromArray(np.full((4, 8, 8), -3024, np.int16)), "empty")


@pytest.mark.parametrize("pad", [None, -2000, -3024])
def test_ct_stored_at_hu_minus_1024_is_refused(pad):
    """QA: LUNG1-003 stored at HU - 1024 (rescale intercept applied twice) passed, radiomics gave a tumour mean of
    -1126 HU: every value <= -1100 counted as padding, so shifted air, lung and fat vanished and shifted soft tissue
    (~ -1000) passed as air.  Values below -1100 are padding only as a plateau (a few values); a broad spread of them
    over a large share of the field of view is refused."""
    from lungai.io.validate import below_padding_spread, check_ct_intensities

    with pytest.raises(InputError, match="does not look like a CT in Hounsfield units.*intercept applied twice"):
        check_ct_intensities(_chest_like(-1024, pad), "shifted")
    inside_hu = sitk.GetArrayFromImage(_chest_like(0, pad)).astype(np.float32)
    assert below_padding_spread(inside_hu) < 0.001                  # the same CT in HU: padding is a plateau
    two_pads = inside_hu.copy()
    two_pads[:, :, :3] = -3024                                       # -2000 in the circle's corners, -3024 beyond
    assert below_padding_spread(two_pads) < 0.001
    check_ct_intensities(sitk.GetImageFromArray(two_pads.astype(np.int16)), "two paddings")


def test_a_ct_whose_padding_was_smeared_by_resampling_is_accepted():
    """Review: a real CT in HU with -2048 / -3024 padding, resampled with B-spline in float (as Slicer's Resample
    Scalar Volume does), holds thousands of values near the padding (16 % of the voxels): it was refused as 'rescale
    intercept applied twice' with the fix 'add 1024', which would have corrupted it.  A spread below -1100 is refused
    only when the other voxels' median lies there too (air, lung and fat shifted), not at air / lung / tissue."""
    from lungai.io.validate import check_ct_intensities

    arr = sitk.GetArrayFromImage(_chest_like(0, -2048)).astype(np.float32)
    rng = np.random.default_rng(0)
    pad = arr <= -2000
    arr[pad] = -2048 + rng.uniform(-400, 400, pad.sum())                         # smeared padding, many values
    smeared = np.zeros(arr.shape, bool)
    smeared[:, :, :max(1, arr.shape[2] // 6)] = True
    arr[smeared] = -3024 + rng.uniform(-600, 600, smeared.sum())
    assert (arr < -1100).mean() > 0.10
    check_ct_intensities(sitk.GetImageFromArray(arr), "resampled")
    with pytest.raises(InputError, match="intercept applied twice"):
        check_ct_intensities(sitk.GetImageFromArray(arr - 1024), "resampled, shifted")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("bad", ["nan_patch", "inf_patch", "one_nan_in_a_corner", "nan_outside_the_circle"])
def test_a_ct_with_nan_or_infinite_voxels_is_refused_naming_count_and_place(tmp_path, suffix, bad):
    """QA: NaN / +Inf voxels passed the intensity check (percentiles of NaN compare False) and gave wrong lungs (a
    NaN patch: 1312 / 527 ml instead of 1801 / 1116), a tumour of 0 ml (NaN at the seed), changed radiomics, or a
    misleading "no lungs found"; a NIfTI's NaN, which SimpleITK reads as 0 HU (soft tissue), made the air outside a
    resampled CT's reconstruction circle a "left lung".  Refused in every format, counted and placed; read_image
    gives a NIfTI's NaN back as NaN."""
    from lungai.io.validate import check_ct_intensities

    arr = sitk.GetArrayFromImage(_chest_like(0, -1024)).astype(np.float32)
    y, x = np.ogrid[:arr.shape[1], :arr.shape[2]]
    where = np.zeros(arr.shape, bool)
    if bad == "one_nan_in_a_corner":
        where[0, 0, 0] = True
    elif bad == "nan_outside_the_circle":
        where[:, (y - 31.5) ** 2 + (x - 31.5) ** 2 > 32 ** 2] = True
    else:
        where[4, 20:30, 10:25] = True
    arr[where] = np.inf if bad == "inf_patch" else np.nan
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.5))
    path = write_image(img, tmp_path / f"ct{suffix}")
    read = sitk.GetArrayFromImage(read_image(path))
    assert np.array_equal(~np.isfinite(read), where)                    # a NIfTI's NaN not read as 0
    k, j, i = np.nonzero(where)
    span = f"i {i.min()}" + (f"-{i.max()}" if i.max() > i.min() else "")
    with pytest.raises(InputError, match=f"holds {where.sum()} of {arr.size} voxels that are not numbers "
                                         f"\\({where.sum()} {'infinite' if 'inf' in bad else 'NaN'}\\) at voxel "
                                         f"index {span}, ") as err:
        read_ct(path)
    assert "-1024" in err.value.fix
    with pytest.raises(InputError, match="not numbers"):          # an image in memory (a Slicer volume) too
        check_ct_intensities(img, "volume")


@pytest.mark.parametrize("shape", [(24, 64, 64), (24, 128, 128)])
def test_a_nifti_gz_whose_compressed_data_are_damaged_is_refused(tmp_path, monkeypatch, shape):
    """QA: 5 bytes flipped in the middle of a .nii.gz (its gzip CRC fails) were read silently, garbage slices up to
    30587 HU.  The gzip CRC is checked: against the voxels ITK read (no second decompression: an intact file is
    never read through by scan_nifti), else by reading the stream through - also where ITK reads the damaged file
    without an error (the larger image) and where the damage lies within the first block (the smaller one)."""
    import lungai.io.nifti

    img = _ct_like(shape)
    good = write_image(img, tmp_path / "ct.nii.gz")
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 5] = bytes(b ^ 0xFF for b in data[middle:middle + 5])
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(bytes(data))
    if shape[1] == 128:
        assert sitk.ReadImage(str(bad)).GetSize() == img.GetSize()          # ITK reads it silently
    with pytest.raises(InputError, match="unreadable or corrupt.*damaged") as err:
        read_ct(bad)
    assert "re-export" in err.value.fix
    monkeypatch.setattr(lungai.io.nifti, "scan_nifti", lambda path: pytest.fail("intact file read through"))
    assert_same(img, read_ct(good))


def _nifti_with_pixdim(tmp_path, value: float):
    """_ct_like as a .nii whose header's pixdim[3] (byte 88) is ``value``; its sform still steps 2.5 mm."""
    import struct

    path = write_image(_ct_like(), tmp_path / "ct.nii")
    data = bytearray(path.read_bytes())
    assert struct.unpack("<f", data[88:92])[0] == 2.5 and struct.unpack("<h", data[254:256])[0] > 0
    data[88:92] = struct.pack("<f", value)
    out = tmp_path / f"pixdim_{value}.nii"
    out.write_bytes(bytes(data))
    return out


def test_an_intact_nifti_with_a_sheared_sform_is_said_to_be_sheared_not_corrupt(tmp_path):
    """Review: an intact .nii.gz whose sform is sheared (qform_code 0; the slice axis tilted 0.5 mm towards x, its
    length still 2.5 mm) was called "unreadable or corrupt ... check the download"; ITK refuses it as not
    orthonormal.  Said as a sheared geometry, with what to do."""
    import gzip
    import struct

    data = bytearray(write_image(_ct_like(), tmp_path / "ct.nii").read_bytes())
    data[252:254] = struct.pack("<h", 0)                                   # qform_code 0: the sform is used
    data[288:292] = struct.pack("<f", 0.5)                                 # srow_x[2]
    data[320:324] = struct.pack("<f", (2.5 ** 2 - 0.5 ** 2) ** 0.5)         # srow_z[2]: the column still 2.5 mm
    sheared = tmp_path / "sheared.nii.gz"
    sheared.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(RuntimeError, match="orthonormal"):
        sitk.ReadImage(str(sheared))
    with pytest.raises(InputError, match="cannot be placed in space: its geometry is sheared") as err:
        read_ct(sheared)
    assert "corrupt" not in str(err.value) and "orthogonal grid" in err.value.fix


def test_a_float_label_map_with_nan_is_said_to_hold_nan(tmp_path):
    """Review: a float64 label map with NaN was refused as "holds non-integer values"; NaN are said as NaN."""
    arr = np.zeros((6, 8, 8))
    arr[2:4, 2:5, 2:5] = 1
    arr[3, 3, 3] = np.nan
    path = write_image(sitk.GetImageFromArray(arr), tmp_path / "mask.nrrd")
    with pytest.raises(InputError, match=r"holds 1 of 384 voxels that are not numbers \(1 NaN\).*no usable label mask"):
        read_mask(path)
    arr[3, 3, 3] = 0.5
    with pytest.raises(InputError, match="non-integer values"):
        read_mask(write_image(sitk.GetImageFromArray(arr), tmp_path / "half.nrrd"))


@pytest.mark.parametrize("value, match", [(0.0, "pixdim\\[3\\] is 0"), (float("nan"), "pixdim\\[3\\] is nan"),
                                          (1.0, "pixdim\\[3\\] = 1 mm, but the sform .* steps 2.5 mm")])
def test_a_nifti_whose_voxel_size_is_zero_or_contradicts_its_sform_is_refused(tmp_path, value, match):
    """QA: lung1 as .nii with pixdim[3] = 0 (sform: 5 mm) was read with 1 mm slices (ITK only warns "unexpected
    scales in sform"): lungs 5x too small, rc 0."""
    with pytest.raises(InputError, match=f"cannot be placed in space: .*{match}") as err:
        read_ct(_nifti_with_pixdim(tmp_path, value))
    assert "pixdim" in err.value.fix
    assert read_ct(_nifti_with_pixdim(tmp_path, 2.5)).GetSpacing()[2] == pytest.approx(2.5)


def test_a_ct_stored_as_hu_plus_1024_is_told_to_subtract_1024():
    """QA: an unsigned 16-bit CT at HU + 1024 was refused as "an MR or a CT without rescale slope/intercept"
    without saying what to do with it."""
    from lungai.io.validate import check_ct_intensities

    arr = sitk.GetArrayFromImage(_chest_like(0, -1024)).astype(np.int32) + 1024
    img = sitk.GetImageFromArray(np.clip(arr, 0, None).astype(np.uint16))
    with pytest.raises(InputError, match="looks like a CT stored as HU \\+ 1024") as err:
        check_ct_intensities(img, "u16")
    assert "subtract 1024" in err.value.fix
    mr = sitk.GetImageFromArray(np.random.default_rng(0).integers(300, 1500, (8, 16, 16)).astype(np.int16))
    with pytest.raises(InputError, match="an MR or a CT without rescale") as err:
        check_ct_intensities(mr, "mr")
    assert "1024" not in err.value.fix


def _plus_1024(img: sitk.Image) -> sitk.Image:
    """``img`` (HU) stored as HU + 1024 in unsigned 16-bit, the rescale intercept -1024 left off."""
    arr = sitk.GetArrayFromImage(img).astype(np.int32) + 1024
    out = sitk.GetImageFromArray(np.clip(arr, 0, 65535).astype(np.uint16))
    out.CopyInformation(img)
    return out


@pytest.mark.shared_data
def test_a_lung_crop_stored_as_hu_plus_1024_is_told_to_subtract_1024(shared_data):
    """QA lungsfollow68: an LIDC nodule's crop stored as HU + 1024 (1st percentile 51-99, median 145-254: mostly lung,
    little soft tissue) was told "it looks like an MR or a CT without rescale slope/intercept" with a fix naming DICOM
    only - the "subtract 1024" diagnosis needed 5 % of soft tissue, a whole chest's.  Such a crop is told to subtract
    1024 now; the real CTs and crops in HU (pyradiomics lung1 / lung2, LUNG1-002 / -003, 50 LIDC crops) all pass."""
    from lungai.io.validate import check_ct_intensities

    images = shared_data / "lidc_nodules" / "image"
    # LIDC-IDRI-0006_R_4 + 1024: 1st percentile 57, median 144, 3 % soft tissue; 0542_R_3: 1st percentile 139
    for name in ("LIDC-IDRI-0006_R_4", "LIDC-IDRI-0542_R_3"):
        crop = sitk.ReadImage(str(images / f"{name}.nii.gz"))
        with pytest.raises(InputError, match="looks like a CT stored as HU \\+ 1024") as err:
            check_ct_intensities(_plus_1024(crop), name)
        assert "subtract 1024" in err.value.fix and "sitk.Cast" in err.value.fix, err.value.fix
    crops = sorted(images.glob("*.nii.gz"))
    assert len(crops) >= 50
    whole = [shared_data / "pyradiomics_lung" / f"lung{k}_image.nrrd" for k in (1, 2)] + \
        [shared_data / "nsclc_whole_ct" / "nifti" / f"LUNG1-00{k}_ct.nii.gz" for k in (2, 3)]
    for path in whole + crops[::len(crops) // 50][:50]:
        check_ct_intensities(sitk.ReadImage(str(path)), path.name)       # in HU: no error


def test_a_synthetic_lung_crop_stored_as_hu_plus_1024_is_told_to_subtract_1024(small_phantom):
    """QA lungsfollow68: a crop inside the lung stored as HU + 1024 (no soft tissue to speak of) is told to subtract
    1024, as a whole chest so stored is; in HU it passes; an MR-like image spread over 300..1500 is still told it
    looks like an MR, with no word of 1024."""
    from lungai.io.validate import check_ct_intensities

    z, y, x = np.ogrid[:12, :16, :16]
    arr = np.random.default_rng(0).normal(-860.0, 40.0, (12, 16, 16))      # lung parenchyma
    arr[(z - 6) ** 2 + (y - 8) ** 2 + (x - 8) ** 2 <= 4] = 30.0            # a small nodule: 1.6 % soft tissue
    crop = sitk.GetImageFromArray(arr.round().astype(np.int16))
    crop.SetSpacing((0.7, 0.7, 1.25))
    check_ct_intensities(crop, "crop")
    with pytest.raises(InputError, match="looks like a CT stored as HU \\+ 1024") as err:
        check_ct_intensities(_plus_1024(crop), "crop")
    assert "subtract 1024" in err.value.fix
    with pytest.raises(InputError, match="looks like a CT stored as HU \\+ 1024"):
        check_ct_intensities(_plus_1024(small_phantom.ct), "chest")
    mr = sitk.GetImageFromArray(np.random.default_rng(1).integers(300, 1500, (8, 40, 40)).astype(np.uint16))
    with pytest.raises(InputError, match="an MR or a CT without rescale") as err:
        check_ct_intensities(mr, "mr")
    assert "1024" not in err.value.fix


def _nifti_with_sform(tmp_path, name, flip_x=False, shift_z=0.0, sform_code=1):
    """_ct_like as a .nii (ITK writes qform and sform, codes 1, agreeing) whose sform is mirrored in x about the
    image's centre and / or shifted ``shift_z`` mm, with ``sform_code``."""
    import struct

    img = _ct_like()
    path = write_image(img, tmp_path / "ct.nii")
    data = bytearray(path.read_bytes())
    assert struct.unpack("<2h", data[252:256]) == (1, 1)
    srow = list(struct.unpack("<12f", data[280:328]))
    if flip_x:
        srow[0], srow[3] = -srow[0], srow[3] + srow[0] * (img.GetSize()[0] - 1)
    srow[11] += shift_z
    data[280:328] = struct.pack("<12f", *srow)
    data[254:256] = struct.pack("<h", sform_code)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("flip_x, shift_z, sform_code", [(True, 0.0, 2), (False, 50.0, 2), (True, 0.0, 1),
                                                       (False, 50.0, 1)])
def test_a_nifti_whose_qform_and_sform_disagree_is_refused(tmp_path, flip_x, shift_z, sform_code):
    """QA: a NIfTI whose sform mirrored its qform in x was read silently; with sform code 2 ITK takes the qform,
    nibabel-based tools (nnU-Net, TotalSegmentator) always the sform.  Refused, naming both placements, how far
    apart (origins in mm, axes in degrees) and which one ITK read; also as a mask.  Lead: with both codes 1 ITK
    reads the sform, as nibabel does, but the QA's mirrored case (a mask made on the qform's placement) gave the
    healthy side's features: refused too, unless the qform is a placeholder (next test)."""
    path = _nifti_with_sform(tmp_path, "qs.nii", flip_x, shift_z, sform_code=sform_code)
    read = sitk.ReadImage(str(path))
    if sform_code == 2:                                                     # ITK reads the qform silently
        assert read.GetOrigin() == _ct_like().GetOrigin() and read.GetDirection() == _ct_like().GetDirection()
    apart = r"origins 50.00 mm apart, axes differ by up to 0.00 degrees\)" if shift_z else \
        r"axes differ by up to 180.00 degrees, the qform mirrored\)"
    itk = "reads the qform, nibabel" if sform_code == 2 else "and nibabel-based tools .* read the sform, tools that"
    with pytest.raises(InputError, match=f"qform .* sform .*{apart}. ITK .* {itk}") as err:
        read_ct(path)
    assert "set_qform(img.get_sform())" in err.value.fix and "re-export" in err.value.fix
    with pytest.raises(InputError, match="two different placements"):
        read_mask(path)


@pytest.mark.parametrize("flip_x, shift_z, placeholder", [(False, 0.0, True)])
def test_a_nifti_whose_sform_itk_and_nibabel_both_read_is_read_with_a_warning(tmp_path, flip_x, shift_z,
                                                                              placeholder):
    """Review: with both codes 1 ITK reads the sform, as nibabel-based tools do; a placeholder qform (quaternion
    and offset 0, as some writers leave it) was refused ("439.7 mm apart ... ITK reads the sform, nibabel-based
    tools the sform, other tools may take the other one").  Read as both place it, with a warning saying how far
    tools preferring the qform would place it and how to make the header agree."""
    import struct

    from lungai.errors import InputNote

    path = _nifti_with_sform(tmp_path, "qs.nii", flip_x, shift_z, sform_code=1)
    if placeholder:
        data = bytearray(path.read_bytes())
        data[256:280] = struct.pack("<6f", *[0.0] * 6)                       # quatern_b..d, qoffset_x..z
        path.write_bytes(bytes(data))
    with pytest.warns(InputNote, match="ITK .* and nibabel-based tools .* read the sform, and so it is read; tools "
                                       "that prefer the qform would place it") as rec:
        img = read_ct(path)
    assert img.GetOrigin() == sitk.ReadImage(str(path)).GetOrigin()         # the sform's placement
    assert "img.set_qform(img.get_sform())" in str(rec[0].message)
    assert "other tools may take" not in str(rec[0].message)


def test_a_nifti_with_a_sheared_sform_and_a_qform_is_said_to_be_sheared(tmp_path):
    """Review: an oblique CT whose sform (codes 1 and 1) holds a 0.5 degree gantry tilt: ITK falls back on the
    qform, and it was refused as a qform / sform mismatch with axes printed alike, "0.0 mm apart", and the fix
    set_qform(get_sform()), which cannot hold a shear.  Refused as sheared, with the resampling fix."""
    import struct

    img = _ct_like()
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    img.SetDirection((1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c))                 # oblique: tilted 20 degrees about x
    path = write_image(img, tmp_path / "ct.nii")
    data = bytearray(path.read_bytes())
    srow = np.reshape(struct.unpack("<12f", data[280:328]), (3, 4))
    srow[:, 2] += srow[:, 1] / np.linalg.norm(srow[:, 1]) * img.GetSpacing()[2] * np.tan(np.radians(0.5))
    data[280:328] = struct.pack("<12f", *srow.ravel())
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="its geometry is sheared .*0.50 degrees off right angles") as err:
        read_ct(path)
    assert "orthogonal grid" in err.value.fix and "set_qform" not in err.value.fix


def test_a_nifti_whose_qform_and_sform_agree_is_read(tmp_path):
    """No false alarm from float32 header rounding: oblique grids as ITK writes them (qform and sform both set),
    and the unpatched file."""
    rng = np.random.default_rng(1)
    for i in range(20):
        rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        rot[:, 2] *= np.sign(np.linalg.det(rot))
        img = _ct_like((4, 6, 5))
        img.SetDirection(rot.ravel().tolist())
        img.SetSpacing(tuple(rng.uniform(0.3, 5, 3)))
        img.SetOrigin(tuple(rng.uniform(-500, 500, 3)))
        read = read_image(write_image(img, tmp_path / f"oblique{i}.nii.gz"))
        assert np.allclose(read.GetDirection(), img.GetDirection(), atol=1e-5)
    assert read_ct(_nifti_with_sform(tmp_path, "same.nii")).GetSize() == _ct_like().GetSize()


def test_a_4d_nifti_is_said_to_hold_several_volumes(tmp_path):
    """QA: a 4D-CT NIfTI with 2 phases was refused as "not a 3D volume ... not a single slice or a 2D image"."""
    img = sitk.JoinSeries([_ct_like(), _ct_like()])
    path = tmp_path / "4dct.nii.gz"
    sitk.WriteImage(img, str(path))
    with pytest.raises(InputError, match=r"holds 2 volumes of 64 x 64 x 24 voxels \(a 4D image") as err:
        read_ct(path)
    assert "img[:, :, :, 0]" in err.value.fix and "single slice" not in err.value.fix


def test_a_signed_8_bit_mask_with_wrapped_labels_is_said_to_wrap(tmp_path):
    """QA: a mask written as signed 8-bit with label 200 read -56: "is it an image rather than a label map?".
    Said as labels above 127 wrapped around, with the fix (unsigned 8-bit)."""
    arr = np.zeros((6, 8, 8), np.int16)
    arr[2:4, 2:5, 2:5] = 200
    path = tmp_path / "mask_i8.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.int8)), str(path))
    with pytest.raises(InputError, match="-56 .. 0 stored as signed 8-bit.*wrapped around") as err:
        read_mask(path)
    assert "uint8" in err.value.fix
    arr[3, 3, 3] = -1
    with pytest.raises(InputError, match="image rather than a label map"):                 # not int8: as before
        read_mask(write_image(sitk.GetImageFromArray(arr), tmp_path / "mask_i16.nrrd"))


def test_a_step_that_changes_partway_is_named_by_its_runs_not_a_median_step():
    """An RTDOSE / CT of 2.5 mm frames then 5 mm frames (half the steps each): the error named "3.750 mm mostly", a
    step the series does not have; now the runs of each step."""
    from lungai.io.validate import check_slice_positions

    z = np.concatenate([np.arange(60) * 2.5, 147.5 + np.arange(1, 60) * 5.0])
    with pytest.raises(InputError) as err:
        check_slice_positions(z, "RD.dcm")
    text = str(err.value)
    assert "3.750" not in text
    assert "2.500 mm from z = 0.00 to 147.50 mm" in text and "5.000 mm from z = 147.50 to 442.50 mm" in text
    # one odd step among equal ones keeps the "mostly" wording
    with pytest.raises(InputError, match=r"not equally spaced \(2.500 mm mostly, but 4.000 mm"):
        check_slice_positions(np.concatenate([np.arange(10) * 2.5, [26.5]]), "RD.dcm")


def test_read_mask_refuses_a_mask_carrying_another_patient_id(tmp_path):
    """QA (maskpid59): an NRRD / MHA mask carrying another patient's PatientID key (``0010|0020``: SimpleITK writes
    it for an image read from DICOM, as lungai's CT keeps it) was read onto a CT carrying its own without a word -
    another patient's tumour measured on this CT.  Now the keys the mask file carries are compared with the CT's
    (:func:`lungai.dose.read.image_header`, the dose check's): another PatientID is refused naming both (a different
    FrameOfReferenceUID said with it), before the grid; the same patient in another frame of reference is a warning;
    a mask carrying no key (a NIfTI), or a CT carrying none, is read as before."""
    import warnings

    from lungai.errors import InputNote

    ct = oblique_image()
    ct.SetMetaData("0010|0020", "P1")
    ct.SetMetaData("0020|0052", "1.2.3")
    mask = sitk.Cast(ct > 0, sitk.sitkUInt8)
    for key in mask.GetMetaDataKeys():
        mask.EraseMetaData(key)
    write_image(mask, tmp_path / "plain.nrrd")
    write_image(mask, tmp_path / "plain.nii.gz")
    for name, patient, frame in (("other.nrrd", "P3", None), ("other.mha", "P3", "1.2.9"),
                                 ("same.nrrd", "P1", "1.2.3"), ("replan.nrrd", "P1", "1.2.9")):
        keyed = sitk.Image(mask)
        keyed.SetMetaData("0010|0020", patient)
        if frame:
            keyed.SetMetaData("0020|0052", frame)
        write_image(keyed, tmp_path / name)
    shifted = sitk.ReadImage(str(tmp_path / "other.nrrd"))
    shifted.SetOrigin(tuple(np.add(ct.GetOrigin(), (1.3, -0.4, 0.7))))
    write_image(shifted, tmp_path / "other_shifted.nrrd")

    with pytest.raises(InputError) as exc:
        read_mask(tmp_path / "other.nrrd", reference=ct)
    assert exc.value.problem == (f"the mask {tmp_path / 'other.nrrd'} is another patient's: PatientID P3 (mask) is "
                                 "not the CT's P1")
    assert "this patient's mask" in exc.value.fix and "0010|0020" in exc.value.fix
    with pytest.raises(InputError) as exc:           # FILE#LABEL too, and the frame of reference said with it
        read_mask(f"{tmp_path / 'other.mha'}#1", reference=ct)
    assert exc.value.problem == (f"the mask {tmp_path / 'other.mha'} is another patient's: PatientID P3 (mask) is "
                                 "not the CT's P1; "
                                 "FrameOfReferenceUID 1.2.9 (mask) is not the CT's 1.2.3")
    with pytest.raises(InputError, match="another patient's"):    # said before the grid
        read_mask(tmp_path / "other_shifted.nrrd", reference=ct)
    with pytest.warns(InputNote) as said:
        assert same_geometry(read_mask(tmp_path / "replan.nrrd", reference=ct), ct)
    assert [str(w.message) for w in said] == [
        f"the mask {tmp_path / 'replan.nrrd'} is the CT's patient's (P1) but carries another frame of reference: "
        "FrameOfReferenceUID "
        "1.2.9 (mask) is not the CT's 1.2.3 - it was saved from another scan of this patient (a replan, another "
        "series) or re-anonymised; make sure it was drawn on this CT"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("same.nrrd", "plain.nrrd", "plain.nii.gz"):
            assert same_geometry(read_mask(tmp_path / name, reference=ct), ct)
        bare = sitk.Image(ct)
        for key in bare.GetMetaDataKeys():
            bare.EraseMetaData(key)
        assert same_geometry(read_mask(tmp_path / "other.nrrd", reference=bare), bare)   # a CT carrying no key
        read_mask(tmp_path / "other.nrrd")                                              # no CT to compare with


def test_write_image_uncompressed_for_work_files(tmp_path):
    """``compress=False`` (a Slicer panel's work files for its child processes, lungai.scene.nodes.export_volume:
    QA slicer67) writes a raw NRRD with the same voxels and geometry; a ``.nii.gz`` stays gzipped (its name)."""
    image = oblique_image()
    plain = write_image(image, tmp_path / "ct.nrrd", compress=False)
    packed = write_image(image, tmp_path / "packed.nrrd")
    assert (nrrd_encoding(plain), nrrd_encoding(packed)) == ("raw", "gzip")
    for path in (plain, write_image(image, tmp_path / "ct.nii.gz", compress=False)):
        back = sitk.ReadImage(str(path))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
        assert same_geometry(back, image)
    assert open(tmp_path / "ct.nii.gz", "rb").read(2) == b"\x1f\x8b"
