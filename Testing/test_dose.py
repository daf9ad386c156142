"""Dosimetric features: analytic DVH, RTDOSE reading, resampling, coverage, CLI."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dose_helpers import phantom_lungs_and_gtv, with_summation_type, write_rtdose
from lungai.dose import (COLUMNS, dose_features, features_from_arrays, radial_dose, radial_dvh_expected, read_dose,
                         sphere_mask, treatment_dose)
from lungai.dose.dvh import cumulative_dvh
from lungai.errors import GeometryError, InputError


def _grid(size=(60, 60, 60), spacing=(1.0, 1.0, 1.0), origin=(-30.0, -30.0, -30.0)):
    img = sitk.Image(size, sitk.sitkInt16)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


CENTRE = (0.3, -0.2, 0.1)


def test_radial_dose_matches_analytic_dvh():
    ref = _grid()
    dose = sitk.GetArrayFromImage(radial_dose(ref, CENTRE, 25.0, 60.0)).astype(float)
    mask = sitk.GetArrayFromImage(sphere_mask(ref, CENTRE, 25.0)) > 0
    got = features_from_arrays(dose, mask, case="s")
    for key, value in radial_dvh_expected(60.0).items():
        assert got[key] == pytest.approx(value, abs=0.15), key
    levels, vol = cumulative_dvh(dose[mask], bin_gy=1.0)
    assert vol[0] == 100.0 and np.all(np.diff(vol) <= 0)
    assert vol[30] == pytest.approx(100 * (1 - 30 / 60) ** 3, abs=0.2)


def test_gtv_excluded_from_lung_metrics():
    ref = _grid()
    dose = sitk.GetArrayFromImage(radial_dose(ref, CENTRE, 25.0, 60.0)).astype(float)
    lungs = sitk.GetArrayFromImage(sphere_mask(ref, CENTRE, 25.0)) > 0
    gtv = sitk.GetArrayFromImage(sphere_mask(ref, CENTRE, 5.0)) > 0
    row = features_from_arrays(dose, lungs, gtv)
    # Shell 5..25 mm: D = 60 (1 - r/25); r^2 density on [5, 25].
    r = np.linspace(5, 25, 200001)
    w = r ** 2
    assert row["dose_mld_gy"] == pytest.approx(np.sum(60 * (1 - r / 25) * w) / w.sum(), abs=0.15)
    assert row["dose_gtv_max_gy"] == pytest.approx(60 * (1 - 0.0 / 25), abs=1.0)
    assert row["dose_gtv_min_gy"] == pytest.approx(60 * (1 - 5 / 25), abs=1.5)
    assert row["dose_gtv_min_gy"] <= row["dose_gtv_mean_gy"] <= row["dose_gtv_max_gy"]
    assert list(row) == COLUMNS


@pytest.mark.parametrize("reverse", [False, True])
def test_rtdose_dicom_read_and_resampled_to_ct(tmp_path, reverse):
    # Coarse dose grid (3 mm) shifted against the 1 mm CT grid.
    dose_grid = _grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0), origin=(-34.5, -34.5, -34.5))
    dose = radial_dose(dose_grid, CENTRE, 25.0, 60.0)
    f = write_rtdose(dose, tmp_path / "rd.dcm", reverse_frames=reverse)
    back = read_dose(f)
    assert np.allclose(back.GetOrigin(), dose.GetOrigin()) and np.allclose(back.GetSpacing(), dose.GetSpacing())
    assert np.allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(dose), atol=1e-3)
    ct = _grid()
    lungs = sphere_mask(ct, CENTRE, 25.0)
    row = dose_features(back, ct, lungs, case="rt")
    exp = radial_dvh_expected(60.0)
    assert row["dose_mld_gy"] == pytest.approx(exp["dose_mld_gy"], abs=0.5)  # linear interpolation of a cone
    assert row["dose_v20_pct"] == pytest.approx(exp["dose_v20_pct"], abs=1.5)


@pytest.mark.parametrize("reverse", [False, True])
def test_rtdose_relative_and_absolute_frame_offsets_give_the_same_z(tmp_path, reverse):
    """DICOM PS3.3 C.8.8.3.2: GridFrameOffsetVector relative (first 0) or absolute (first = IPP z)."""
    import pydicom

    dose_grid = _grid(size=(8, 8, 6), spacing=(3.0, 3.0, 2.5), origin=(-12.0, -12.0, -120.0))
    dose = radial_dose(dose_grid, (0.0, 0.0, -114.0), 10.0, 60.0)
    rel = write_rtdose(dose, tmp_path / "rel.dcm", reverse_frames=reverse)
    absolute = write_rtdose(dose, tmp_path / "abs.dcm", reverse_frames=reverse, offsets="absolute")
    assert pydicom.dcmread(rel).GridFrameOffsetVector[0] == 0
    ds = pydicom.dcmread(absolute)
    assert ds.GridFrameOffsetVector[0] == ds.ImagePositionPatient[2] == (-107.5 if reverse else -120.0)
    for f in (rel, absolute):
        back = read_dose(f)
        assert np.allclose(back.GetOrigin(), (-12.0, -12.0, -120.0)), back.GetOrigin()   # not -240
        assert np.allclose(back.GetSpacing(), (3.0, 3.0, 2.5))
        np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(dose), atol=1e-3)
        # the hottest voxel lies at the planted centre's z
        k = np.unravel_index(np.argmax(sitk.GetArrayFromImage(back)), back.GetSize()[::-1])[0]
        assert back.TransformIndexToPhysicalPoint((0, 0, int(k)))[2] == pytest.approx(-115.0)


@pytest.mark.parametrize("reverse", [False, True])
def test_feet_first_rtdose_offsets_lie_along_the_plane_normal(tmp_path, reverse):
    """QA rad53: a feet-first grid (ImageOrientationPatient [-1,0,0,0,1,0], normal row x column = -z) was written
    with its frames' z differences as GridFrameOffsetVector (0, -2.5, ...), which PS3.3 C.8.8.3.2 reads along the
    normal: the dose read back lay mirrored about its first frame (origin z 42.5 instead of 20, the hottest voxel
    moved).  Relative offsets are along the normal: (0, 2.5, ...) for frames going down; read back on the same voxels."""
    import pydicom

    grid = _grid(size=(8, 8, 10), spacing=(3.0, 3.0, 2.5), origin=(12.0, -12.0, 20.0))
    grid.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))            # feet first supine: x and z flipped
    dose = radial_dose(grid, (0.0, 0.0, 12.5), 8.0, 60.0)
    f = write_rtdose(dose, tmp_path / "ffs.dcm", reverse_frames=reverse)
    ds = pydicom.dcmread(f)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    assert offsets[0] == 0 and offsets[1] == (-2.5 if reverse else 2.5)
    back = read_dose(f)
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.Resample(back, dose)), sitk.GetArrayFromImage(dose),
                               atol=1e-3)
    k = np.unravel_index(np.argmax(sitk.GetArrayFromImage(back)), back.GetSize()[::-1])[0]
    assert back.TransformIndexToPhysicalPoint((0, 0, int(k)))[2] == pytest.approx(12.5)


def test_rtdose_ambiguous_frame_offsets_are_refused(tmp_path):
    import pydicom

    dose = radial_dose(_grid(size=(8, 8, 6), spacing=(3.0, 3.0, 2.5), origin=(-12.0, -12.0, -6.0)), CENTRE, 10.0, 60.0)
    f = write_rtdose(dose, tmp_path / "bad.dcm")
    ds = pydicom.dcmread(f)
    ds.GridFrameOffsetVector = [v + 7.0 for v in ds.GridFrameOffsetVector]   # neither relative nor absolute
    ds.save_as(str(f))
    with pytest.raises(InputError, match="neither 0 .*nor the z of ImagePositionPatient"):
        read_dose(f)


def test_cgy_units_and_non_rtdose(tmp_path):
    dose = radial_dose(_grid(size=(10, 10, 10), origin=(-5.0, -5.0, -5.0)), CENTRE, 25.0, 60.0)
    back = read_dose(write_rtdose(dose, tmp_path / "c.dcm", units="CGY", scaling=0.1))
    assert float(sitk.GetArrayFromImage(back).max()) == pytest.approx(float(sitk.GetArrayFromImage(dose).max()), abs=1e-3)
    neg = sitk.Image(dose) * -1.0 - 1.0
    sitk.WriteImage(neg, str(tmp_path / "neg.nii.gz"))
    with pytest.raises(InputError, match="negative"):
        read_dose(tmp_path / "neg.nii.gz")


def test_dose_grid_not_covering_lungs():
    ct = _grid()
    small = radial_dose(_grid(size=(20, 20, 20)), CENTRE, 25.0, 60.0)  # covers only -30..-10 mm
    with pytest.raises(InputError, match="does not cover the lungs"):
        dose_features(small, ct, sphere_mask(ct, CENTRE, 25.0))
    with pytest.raises(InputError, match="empty"):
        dose_features(radial_dose(ct, CENTRE, 25, 60), ct, _zero(ct))
    moved = sphere_mask(ct, CENTRE, 25.0)
    moved.SetOrigin((0, 0, 0))
    with pytest.raises(GeometryError):
        dose_features(radial_dose(ct, CENTRE, 25, 60), ct, moved)


def test_dose_features_of_masks_stored_in_another_order_than_the_ct(tmp_path):
    """QA: lung / GTV masks on exactly the CT's voxels but stored x / y flipped (RAS, as nibabel / nnU-Net write
    them) were refused ('does not lie on the image grid ... resample'); they give the features of the masks stored
    as the CT (dose_features, dose-features --lungs / --gtv), one off the grid is still refused."""
    from lungai.cli import main

    ct = _grid(size=(30, 32, 28), origin=(-15.0, -16.0, -14.0))
    dose = radial_dose(ct, CENTRE, 25, 60)
    lungs, gtv = sphere_mask(ct, (5.0, -3.0, 1.0), 11.0), sphere_mask(ct, (8.0, -1.0, 2.0), 4.0)
    ras = {k: sitk.Flip(m, [True, True, False]) for k, m in (("lungs", lungs), ("gtv", gtv))}
    ref = dose_features(dose, ct, lungs, gtv, case="c")
    assert dose_features(dose, ct, ras["lungs"], ras["gtv"], case="c") == ref
    moved = sitk.Image(ras["lungs"])
    moved.SetOrigin(tuple(np.add(moved.GetOrigin(), (0.0, 1.0, 0.0))))
    with pytest.raises(GeometryError, match="both in LPS order"):
        dose_features(dose, ct, moved)
    hu = np.full(sitk.GetArrayFromImage(ct).shape, -1000, np.int16)      # air, a body, the lungs in it
    hu[3:-3, 3:-3, 3:-3] = 40
    hu[sitk.GetArrayFromImage(lungs) > 0] = -850
    ct_hu = sitk.GetImageFromArray(hu)
    ct_hu.CopyInformation(ct)
    for name, img in (("ct", ct_hu), ("dose", dose), ("lungs", lungs), ("gtv", gtv), ("lungs_ras", ras["lungs"]),
                      ("gtv_ras", ras["gtv"])):
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    rows = []
    for suffix in ("", "_ras"):
        out = tmp_path / f"dose{suffix}.csv"
        assert main(["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
                     "--lungs", str(tmp_path / f"lungs{suffix}.nii.gz"), "--gtv", str(tmp_path / f"gtv{suffix}.nii.gz"),
                     "--case", "c", "-o", str(out)]) == 0
        rows.append(pd.read_csv(out).drop(columns="masks"))
    pd.testing.assert_frame_equal(rows[0], rows[1])


def _same_features(got: dict, expected: dict) -> bool:
    """The same columns, case and values (to ~1e-12 relative; NaN where NaN)."""
    return (list(got) == list(expected) and got["case"] == expected["case"]
            and {k: v for k, v in got.items() if k != "case"} == pytest.approx(
                {k: v for k, v in expected.items() if k != "case"}, rel=1e-12, nan_ok=True))


@pytest.mark.parametrize("turn_deg", [0.0, 20.0])
def test_dose_features_resample_only_the_box_of_the_lungs_and_gtv(monkeypatch, turn_deg):
    """QA (thin-slice planning CTs): dose_features resampled the dose onto the whole CT grid as float64 - 840 MB and a
    copy of it for a 512 x 512 x 401 CT - though the features read only the lungs' and the GTV's voxels (a fifth of
    the grid).  Now only the box round them is resampled (an oblique CT too), with the same features (the box's
    origin rounds the voxel centres' coordinates differently: values equal to ~1e-15, not always bit for bit)."""
    import lungai.dose.features as features_module
    from lungai.dose.resample import dose_on_grid

    ct = _grid(size=(40, 36, 30), spacing=(1.0, 1.2, 1.5), origin=(-20.0, -21.0, -22.0))
    a = np.radians(turn_deg)
    ct.SetDirection((np.cos(a), -np.sin(a), 0.0, np.sin(a), np.cos(a), 0.0, 0.0, 0.0, 1.0))
    dose = radial_dose(_grid(size=(30, 30, 30), spacing=(3.0, 3.0, 3.0), origin=(-45.0, -45.0, -45.0)),
                       CENTRE, 30.0, 60.0)                # a coarse dose grid, not the CT's, covering it
    lungs, gtv = sphere_mask(ct, (-6.0, -3.0, 1.0), 8.0), sphere_mask(ct, (-2.0, -1.0, 2.0), 3.0)
    lung_arr, gtv_arr = (sitk.GetArrayFromImage(m) > 0 for m in (lungs, gtv))
    whole = dose_on_grid(dose, ct)                        # the dose on the whole CT grid, as before
    resampled = []
    monkeypatch.setattr(features_module, "dose_on_grid",
                        lambda *args: resampled.append(dose_on_grid(*args)) or resampled[-1])
    assert _same_features(dose_features(dose, ct, lungs, gtv, case="c"),
                          features_from_arrays(whole, lung_arr, gtv_arr, case="c"))
    z, y, x = np.nonzero(lung_arr | gtv_arr)
    box = (slice(z.min(), z.max() + 1), slice(y.min(), y.max() + 1), slice(x.min(), x.max() + 1))
    assert [r.shape for r in resampled] == [whole[box].shape]      # not the whole grid's 30 x 36 x 40
    np.testing.assert_allclose(resampled[0], whole[box], rtol=1e-12, atol=1e-12)
    assert _same_features(dose_features(dose, ct, lungs, case="c"),             # no GTV: the lungs' box
                          features_from_arrays(whole, lung_arr, case="c"))
    assert resampled[1].shape == whole[box].shape        # (the GTV lies in the lungs)


def _zero(ct):
    z = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    z.CopyInformation(ct)
    return z


def test_treatment_dose_is_function_of_distance(small_phantom):
    from lungai.synthetic import labels as L

    tumour = sitk.GetImageFromArray(L.tumour_mask(sitk.GetArrayFromImage(small_phantom.labels)).astype(np.uint8))
    tumour.CopyInformation(small_phantom.ct)
    d = sitk.GetArrayFromImage(treatment_dose(tumour, prescription_gy=60, margin_mm=5, falloff_mm=20))
    t = sitk.GetArrayFromImage(tumour) > 0
    assert np.allclose(d[t], 60.0)
    assert d.min() < 1.0 and d.max() == pytest.approx(60.0)


def test_cli_dose_features(small_phantom, tmp_path, capsys):
    from lungai.cli import main

    lung_img, gtv_img = phantom_lungs_and_gtv(small_phantom, sides=True)
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("ct", "lungs", "gtv", "dose")}
    sitk.WriteImage(small_phantom.ct, str(paths["ct"]))
    sitk.WriteImage(lung_img, str(paths["lungs"]))
    sitk.WriteImage(gtv_img, str(paths["gtv"]))
    sitk.WriteImage(treatment_dose(gtv_img), str(paths["dose"]))
    out = tmp_path / "dose.csv"
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs",
                 str(paths["lungs"]), "--gtv", str(paths["gtv"]), "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS + ["masks", "lungs_cut", "rtdose_notes"] and len(df) == 1
    # the masks the metrics were computed on (QA defect: dose.csv did not say), last and not a dose_ feature
    from lungai.lungs import RT_LUNG_DEFINITION

    # a lung mask of the user's is not lungai's RT lung definition (QA: every --lungs file was described as it)
    assert df.loc[0, "masks"] == ("lungs: lungs.nii.gz (lung mask given with --lungs, not made by lungai lungs: its "
                                  "own lung definition); minus GTV: gtv.nii.gz")
    assert RT_LUNG_DEFINITION not in df.loc[0, "masks"]
    from lungai.io.outputs import record_output_file

    record_output_file(paths["lungs"], "lungs")      # as `lungai lungs -o lungs.nii.gz` records what it wrote
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs",
                 str(paths["lungs"]), "--gtv", str(paths["gtv"]), "-o", str(out)]) == 0
    assert pd.read_csv(out).loc[0, "masks"] == (f"lungs: lungs.nii.gz ({RT_LUNG_DEFINITION}; made by lungai lungs); "
                                                "minus GTV: gtv.nii.gz")
    sitk.WriteImage(lung_img, str(paths["lungs"]))    # changed since (written again): the user's file
    st = paths["lungs"].stat()
    os.utime(paths["lungs"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))     # saved anew a second later
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs",
                 str(paths["lungs"]), "--gtv", str(paths["gtv"]), "-o", str(out)]) == 0
    assert RT_LUNG_DEFINITION not in pd.read_csv(out).loc[0, "masks"]
    df = pd.read_csv(out)
    assert df.loc[0, "dose_gtv_min_gy"] == pytest.approx(60.0, abs=1e-3)
    assert 0 < df.loc[0, "dose_v30_pct"] < df.loc[0, "dose_v20_pct"] < df.loc[0, "dose_v5_pct"] <= 100
    assert df.loc[0, "dose_d98_gy"] < df.loc[0, "dose_d50_gy"] < df.loc[0, "dose_d2_gy"]
    assert "RTOG 1106" in capsys.readouterr().out  # the lung definition is said in the output
    # what the masks are, given by a caller that wrote them (the Slicer panel: the segments), not the file names
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs",
                 str(paths["lungs"]), "--gtv", str(paths["gtv"]), "--lungs-name", "Slicer segments Right lung + "
                 "Left lung", "--gtv-name", "Slicer segment Tumor", "-o", str(out)]) == 0
    assert pd.read_csv(out).loc[0, "masks"] == ("lungs: Slicer segments Right lung + Left lung; "
                                                "minus GTV: Slicer segment Tumor")
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--rtstruct",
                 str(tmp_path / "RS.dcm"), "--lungs-name", "mine", "-o", str(tmp_path / "rs.csv")]) == 2
    assert "with --rtstruct the masks column names its structures" in capsys.readouterr().err


def _progress_case(tmp_path) -> list[str]:
    """A small CT, dose, lungs and GTV as NIfTI in ``tmp_path``: the ``dose-features`` arguments."""
    ct = _grid(size=(30, 32, 28), origin=(-15.0, -16.0, -14.0))
    hu = np.full(sitk.GetArrayFromImage(ct).shape, 40, np.int16)
    lungs, gtv = sphere_mask(ct, (5.0, -3.0, 1.0), 11.0), sphere_mask(ct, (8.0, -1.0, 2.0), 4.0)
    hu[sitk.GetArrayFromImage(lungs) > 0] = -850
    ct_hu = sitk.GetImageFromArray(hu)
    ct_hu.CopyInformation(ct)
    for name, img in (("ct", ct_hu), ("dose", radial_dose(ct, CENTRE, 25, 60)), ("lungs", lungs), ("gtv", gtv)):
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    return ["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
            "--lungs", str(tmp_path / "lungs.nii.gz"), "--gtv", str(tmp_path / "gtv.nii.gz"),
            "-o", str(tmp_path / "dose.csv")]


def test_cli_dose_features_shows_its_progress(tmp_path, monkeypatch, capsys):
    """QA (thin-slice planning CTs): dose-features ran 10-25 s on a 512 x 512 x 401 CT with nothing shown - no bar in
    a terminal, no LUNGAI_PROGRESS line for the Lung Radiomics panel's progress bar - until the result.  Now each step
    (CT, masks, dose read, features, lung checks) is counted, and said as it starts (QA rad68: the bar stood on "CT
    read" while the masks were read)."""
    from lungai.cli import main
    from lungai.progress import parse_line

    steps = ["CT read", "masks read", "dose read", "features computed", "lungs checked"]
    doing = ["reading the CT", "reading the masks", "reading the dose", "computing the features", "checking the lungs"]
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(_progress_case(tmp_path)) == 0
    lines = [parse_line(line) for line in capsys.readouterr().err.splitlines() if parse_line(line)]
    lines = [(f, t) for f, t in lines if not re.search(r" \(\d+ s\)$", t)]     # a slow step's seconds (loaded)
    said = [text for _, text in lines]
    assert said == ["dose-features: start", "dose-features: loading pandas and SimpleITK",
                    "dose-features: checking that the dose belongs to the CT"] + [
        f"dose-features: {t}" for pair in zip(doing, steps) for t in pair]
    counted = [fraction for fraction, text in lines if text.split(": ", 1)[1] in steps]
    assert counted == pytest.approx([i / len(steps) for i in range(1, len(steps) + 1)])
    assert len(pd.read_csv(tmp_path / "dose.csv")) == 1


def test_cli_dose_features_says_a_long_step_with_its_seconds(tmp_path, monkeypatch, capsys):
    """QA rad68: on LUNG1-003's DICOM CT + RTSTRUCT (load 10) the bar stood 7.3 s on "CT read" while the RTSTRUCT's
    structures were drawn onto the CT grid (and 3.4 s before it, 4.3 s on "start" while the RTSTRUCT was looked for):
    the Lung Radiomics panel's bar idle as long.  Now each step says what it is doing, then its seconds
    (lungai.progress.waiting) - here the masks' reading made 2.4 s slow."""
    import time

    import lungai.dicom.masks
    from lungai.cli import main
    from lungai.progress import parse_line

    real = lungai.dicom.masks.lung_map_input

    def slow(*args, **kwargs):
        time.sleep(2.4)
        return real(*args, **kwargs)

    monkeypatch.setattr(lungai.dicom.masks, "lung_map_input", slow)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(_progress_case(tmp_path)) == 0
    lines = [parse_line(line) for line in capsys.readouterr().err.splitlines() if parse_line(line)]
    for seconds in (1, 2):
        assert (pytest.approx(1 / 5), f"dose-features: reading the masks ({seconds} s)") in lines, lines
    assert len(pd.read_csv(tmp_path / "dose.csv")) == 1


# a fresh interpreter running ``lungai ARGS``: "MARK importing pandas" on stderr as pandas starts to be imported
MARK_PANDAS = """
import sys


class Mark:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            print("MARK importing pandas", file=sys.stderr, flush=True)
            sys.meta_path.remove(self)
        return None


sys.meta_path.insert(0, Mark())
from lungai.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_cli_dose_features_says_what_it_loads_before_its_imports(tmp_path):
    """QA radfollow68: ``lungai dose-features`` on LUNG1-003 (NIfTI CT, lungs and GTV labels, LUNGAI_PROGRESS=lines)
    stood 4.7 s on "start" while pandas, SimpleITK and lungai's dose modules were imported (1-3 s unloaded): now
    "loading pandas and SimpleITK" is said before them (then with its seconds, lungai.progress.timer_running)."""
    import subprocess
    import sys
    from pathlib import Path

    from lungai.progress import PREFIX

    root = Path(__file__).resolve().parents[1]
    env = {"LUNGAI_PROGRESS": "lines", "PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MARK_PANDAS, *_progress_case(tmp_path)], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    mark = lines.index("MARK importing pandas")
    before = [line for line in lines[:mark] if line.startswith(PREFIX)]
    assert before == [f"{PREFIX} 0/5 dose-features: start", f"{PREFIX} 0/5 dose-features: loading pandas and SimpleITK"
                      ], lines


def test_rtdose_folder_and_wrong_dicom(tmp_path):
    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    folder = tmp_path / "plan"
    folder.mkdir()
    write_rtdose(dose, folder / "RD.dcm")
    (folder / "notes.txt").write_text("not dicom", encoding="utf-8")
    assert read_dose(folder).GetSize() == (10, 10, 6)
    write_rtdose(dose, folder / "RD2.dcm")           # the same RTDOSE again (same SOPInstanceUID): a copy, left out
    notes = []
    assert read_dose(folder, notes=notes).GetSize() == (10, 10, 6)
    assert "RD2.dcm left out: a copy of RD.dcm" in notes[0]
    with_summation_type(folder / "RD.dcm", folder / "RD3.dcm", "PLAN")    # another plan dose: which one?
    with pytest.raises(InputError, match="2 RTDOSEs share .*RD.dcm .*RD3.dcm") as err:
        read_dose(folder)
    assert "RD2.dcm" not in err.value.problem
    import pydicom

    ds = pydicom.dcmread(folder / "RD2.dcm")
    ds.Modality = "CT"
    ds.save_as(tmp_path / "ct.dcm")
    with pytest.raises(InputError, match="not an RTDOSE"):
        read_dose(tmp_path / "ct.dcm")


def test_rtdose_not_a_total_dose_is_refused(tmp_path):
    """A FRACTION / BEAM / CONTROL_POINT dose is a part of the treatment dose: MLD, V20 of it would be silently
    wrong (QA: a FRACTION dose gave MLD 0.93 Gy instead of 27.8), so it is refused; PLAN / MULTI_PLAN are read."""
    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    for kind in ("FRACTION", "BEAM", "CONTROL_POINT", "RECORD"):
        with pytest.raises(InputError, match=f"DoseSummationType {kind}") as err:
            read_dose(with_summation_type(src, tmp_path / f"{kind}.dcm", kind))
        assert "PLAN" in err.value.fix
    for kind in ("PLAN", "MULTI_PLAN"):
        assert read_dose(with_summation_type(src, tmp_path / f"{kind}.dcm", kind)).GetSize() == (10, 10, 6)


def test_several_rtdoses_beams_of_one_plan_summed_else_refused(tmp_path):
    """plan_dose_files: the BEAM doses of one plan on one grid are summed (read_dose_sum = the plan dose); a plan
    dose with its own beams gives the plan dose; beams of two plans, two plans, fractions: refused, naming them."""
    from lungai.dose.read import plan_dose_files, read_dose_sum

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    plan = with_summation_type(src, tmp_path / "plan.dcm", "PLAN", plan="1.2.3.1")
    beams = [with_summation_type(src, tmp_path / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f) for i, f in
             enumerate((0.2, 0.3, 0.5))]
    files, note = plan_dose_files(beams)
    assert files == beams and "3 BEAM doses of one plan summed" in note
    total = sitk.GetArrayFromImage(read_dose_sum(files))
    assert np.allclose(total, sitk.GetArrayFromImage(read_dose(plan)), atol=1e-3)
    files, note = plan_dose_files([beams[0], plan, beams[1]])
    assert files == [plan] and "plan dose plan.dcm used" in note
    other = with_summation_type(src, tmp_path / "other_beam.dcm", "BEAM", plan="1.2.3.2", factor=0.5)
    plan2 = with_summation_type(src, tmp_path / "plan2.dcm", "PLAN", plan="1.2.3.2")
    fraction = with_summation_type(src, tmp_path / "fx.dcm", "FRACTION", plan="1.2.3.1", factor=1 / 30)
    # a plan dose beside the dose of one of its fractions (a planning system's export of both): the plan dose (QA:
    # refused as ambiguous, the patient failed)
    files, note = plan_dose_files([fraction, plan])
    assert files == [plan] and "plan dose plan.dcm used; the FRACTION doses of the same plan (fx.dcm) left out" in note
    fraction2 = with_summation_type(src, tmp_path / "fx2.dcm", "FRACTION", plan="1.2.3.2", factor=1 / 30)
    for group in ([beams[0], other], [plan, plan2], [plan, fraction2], [plan, other], [fraction, beams[0]]):
        with pytest.raises(InputError, match="RTDOSEs share this CT's frame of reference") as err:
            plan_dose_files(group)
        assert all(p.name in err.value.problem for p in group) and "keep only the plan dose" in err.value.fix


def test_a_plan_sum_beside_the_doses_of_its_plans_is_the_treatment_dose(tmp_path):
    """An export of initial plan + boost with the planning system's plan sum (DoseSummationType MULTI_PLAN,
    referencing both plans): the plan sum is the treatment dose, its plans' PLAN / BEAM doses are left out with a
    note (QA: refused as "ambiguous", so a cohort patient failed). A plan sum that does not reference a plan of the
    folder, or references none, stays ambiguous: it may be another course's."""
    import pydicom
    from pydicom.dataset import Dataset

    from lungai.dose.read import plan_dose_files, read_dose_sum

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    initial = with_summation_type(src, tmp_path / "initial.dcm", "PLAN", plan="1.2.3.1", factor=0.75)
    boost_beams = [with_summation_type(src, tmp_path / f"boost_beam{i}.dcm", "BEAM", plan="1.2.3.2", factor=0.125)
                   for i in range(2)]
    for i, beam in enumerate(boost_beams):           # two different beams of the boost plan
        ds = pydicom.dcmread(beam)
        ref = Dataset()
        ref.ReferencedBeamNumber = i + 1
        group = Dataset()
        group.ReferencedBeamSequence = [ref]
        ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = [group]
        ds.save_as(beam)
    boost = with_summation_type(src, tmp_path / "boost.dcm", "PLAN", plan="1.2.3.2", factor=0.25)

    def plan_sum(name, refs):
        path = with_summation_type(src, tmp_path / name, "MULTI_PLAN")
        ds = pydicom.dcmread(path)
        items = []
        for uid in refs:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.5", uid
            items.append(item)
        ds.ReferencedRTPlanSequence = items
        ds.save_as(path)
        return path

    total = plan_sum("sum.dcm", ["1.2.3.1", "1.2.3.2"])
    for group in ([initial, boost, total], [total, initial, *boost_beams], [initial, boost, total, *boost_beams]):
        files, note = plan_dose_files(group)
        assert files == [total], group
        assert "plan sum sum.dcm (MULTI_PLAN) used" in note and "initial.dcm (PLAN)" in note
        assert np.allclose(sitk.GetArrayFromImage(read_dose_sum(group)), sitk.GetArrayFromImage(dose), atol=1e-3)
    other_course = plan_sum("other_sum.dcm", ["1.2.3.1", "1.2.3.9"])
    unreferenced = plan_sum("bare_sum.dcm", [])
    for group in ([initial, boost, other_course], [initial, boost, unreferenced], [total, other_course, initial]):
        with pytest.raises(InputError, match="RTDOSEs share this CT's frame of reference"):
            plan_dose_files(group)


def test_one_lung_or_too_small_lung_map_is_warned(small_phantom, tmp_path, capsys):
    """A lungai lungs map with one lung label missing (or lungs far too small for an adult) gives MLD / V20 of one lung:
    dose-features warns (lungai.lungs.check.lung_map_notes, also used by cohort and the Slicer panel)."""
    from scipy import ndimage

    from lungai.lungs.check import lung_map_notes
    from lungai.synthetic import labels as L

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")
    both = (lungs["right"] * 1 + lungs["left"] * 2).astype(np.uint8)

    def image(a, spacing=None):
        im = sitk.GetImageFromArray(a.astype(np.uint8))
        im.CopyInformation(small_phantom.ct)
        if spacing:
            im.SetSpacing(spacing)
        return im

    big = (4.0, 4.0, 15.0)   # the phantom's lungs at an adult's volume (> 1 L each)
    assert lung_map_notes(image(both, big)) == []
    assert lung_map_notes(image(both > 0, big)) == []                 # binary mask of both lungs
    touching = ndimage.binary_closing(both > 0, np.ones((1, 1, 25), bool))    # real lungs touch: one region
    assert ndimage.label(touching)[1] == 1 and lung_map_notes(image(touching, big)) == []
    right_only = lung_map_notes(image(np.where(both == 1, 1, 0), big))
    assert len(right_only) == 1 and "only the right lung (label 1), no left lung" in right_only[0]
    assert "only the left lung (label 2)" in lung_map_notes(image(np.where(both == 2, 2, 0), big))[0]
    assert lung_map_notes(image(np.where(both == 1, 1, 0), big), label_map=False) == []   # an RTSTRUCT structure
    small = lung_map_notes(image(both, (1.0, 1.0, 1.0)))
    assert len(small) == 1 and "less than 1000 ml" in small[0]
    # dose-features says it on the terminal
    _dose_features_of_lungs(small_phantom.ct, big, image(np.where(both == 1, 1, 0), big), tmp_path)
    assert "warning: the lung map holds only the right lung (label 1)" in capsys.readouterr().out


def _dose_features_of_lungs(ct, spacing, lungs, tmp_path) -> None:
    """``lungai dose-features --lungs`` of the mask ``lungs`` on ``ct`` (at ``spacing``) with a uniform 20 Gy dose;
    it must succeed (its notes go to the terminal)."""
    from lungai.cli import main

    ct = sitk.Image(ct)
    ct.SetSpacing(spacing)
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("ct", "lungs", "dose")}
    sitk.WriteImage(ct, str(paths["ct"]))
    sitk.WriteImage(lungs, str(paths["lungs"]))
    dose = sitk.GetImageFromArray(np.full(sitk.GetArrayViewFromImage(ct).shape, 20.0, np.float32))
    dose.CopyInformation(ct)
    sitk.WriteImage(dose, str(paths["dose"]))
    assert main(["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs",
                 str(paths["lungs"]), "-o", str(tmp_path / "dose.csv")]) == 0


def _image_dose(tmp_path, name, arr_gy, values=None):
    """A NIfTI / NRRD dose of ``arr_gy`` (or ``values``) on a 3 mm grid; returns the path."""
    img = sitk.GetImageFromArray(np.asarray(arr_gy if values is None else values, dtype=np.float32))
    img.SetSpacing((3.0, 3.0, 3.0))
    img.SetOrigin((-34.5, -34.5, -34.5))
    sitk.WriteImage(img, str(tmp_path / name))
    return tmp_path / name


def test_image_dose_in_cgy_refused_unless_said(tmp_path):
    """A NIfTI/NRRD dose carries no unit: cGy values read as Gy gave MLD 3888 Gy, V20 100 % (QA); a maximum above
    150 Gy is refused naming --dose-unit cGy, which reads the values / 100."""
    gy = sitk.GetArrayFromImage(radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0),
                                                  origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0, 60.0))
    for name in ("d.nii.gz", "d.nrrd"):
        f = _image_dose(tmp_path, name, gy * 100)
        with pytest.raises(InputError, match="the maximum [0-9]{4} Gy is above 150 Gy, implausible") as err:
            read_dose(f)
        assert "if the values are cGy (maximum" in err.value.fix and "--dose-unit cGy" in err.value.fix
        np.testing.assert_allclose(sitk.GetArrayFromImage(read_dose(f, unit="cGy")), gy, atol=1e-3)
        np.testing.assert_allclose(sitk.GetArrayFromImage(read_dose(_image_dose(tmp_path, "g" + name, gy))), gy)
    with pytest.raises(InputError, match="implausible"):
        read_dose(_image_dose(tmp_path, "huge.nii.gz", gy * 1e4), unit="cGy")


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.nrrd", "inf.mha"])
def test_image_dose_with_nan_refused_with_its_count(tmp_path, name):
    """NaN voxels: SimpleITK reads a NIfTI's NaN as 0 (QA: MLD 34.13 Gy instead of 38.89, no error), an NRRD's as
    NaN ("does not cover the lungs", misleading): both refused, counting them from the file's own data."""
    ct = _grid()
    dose_grid = _grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0), origin=(-34.5, -34.5, -34.5))
    arr = sitk.GetArrayFromImage(radial_dose(dose_grid, CENTRE, 25.0, 60.0))
    arr[:, :, 15:] = np.inf if name.startswith("inf") else np.nan
    f = _image_dose(tmp_path, name, arr)
    with pytest.raises(InputError, match=f"holds {24 * 24 * 9} voxels that are not numbers \\(NaN / infinite\\) "
                                         f"of {24 ** 3}"):
        dose_features(read_dose(f), ct, sphere_mask(ct, CENTRE, 25.0))


def test_rtdose_error_type_and_missing_units_refused(tmp_path):
    """DoseType ERROR is a dose difference, not a dose (QA: its MLD was printed); DoseUnits is mandatory (Gy or cGy
    cannot be told apart without it).  PHYSICAL and EFFECTIVE are doses."""
    import pydicom

    from lungai.dose.read import plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    for kind, message in (("ERROR", "DoseType ERROR \\(a dose error / difference grid\\), not a dose"),
                          ("EFFECTIVE", None), ("PHYSICAL", None)):
        ds = pydicom.dcmread(src)
        ds.DoseType = kind
        ds.save_as(tmp_path / f"{kind}.dcm")
        if message is None:     # EFFECTIVE: read, with a note (test_an_effective_dose_is_read_with_a_note_...)
            notes: list = []
            assert read_dose(tmp_path / f"{kind}.dcm", notes=notes).GetSize() == (10, 10, 6)
            assert bool(notes) == (kind == "EFFECTIVE")
            continue
        with pytest.raises(InputError, match=message) as err:
            read_dose(tmp_path / f"{kind}.dcm")
        assert "PHYSICAL or EFFECTIVE" in err.value.fix
        with pytest.raises(InputError, match=message):
            plan_dose_files([tmp_path / f"{kind}.dcm"])                 # refused on the header, before any work
    ds = pydicom.dcmread(src)
    del ds.DoseUnits
    ds.save_as(tmp_path / "no_units.dcm")
    with pytest.raises(InputError, match="has no DoseUnits, so Gy and cGy cannot be told apart"):
        read_dose(tmp_path / "no_units.dcm")


def _with_dose_type(src, dst, kind):
    import pydicom

    ds = pydicom.dcmread(src)
    ds.DoseType = kind
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


def test_an_effective_dose_is_read_with_a_note_that_it_is_not_physical_dose(tmp_path, capsys):
    """QA: an RTDOSE of DoseType EFFECTIVE (an RBE-weighted proton dose, an EQD2 / BED map) on LUNG1-003 gave MLD
    5.95 Gy, V20 9.3 % with no word that they are not of physical dose, which lung-toxicity limits (V20, MLD) and RP
    models are defined on.  The dose is read, and a note says so: a file or a folder (dose-features, demo) and a
    cohort's plan_dose_files (the patient's notes); a PHYSICAL dose has no such note."""
    import shutil

    from lungai.cli import main
    from lungai.dose.read import plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    physical = write_rtdose(dose, tmp_path / "rd.dcm")
    (tmp_path / "folder").mkdir()
    effective = _with_dose_type(physical, tmp_path / "folder" / "eff.dcm", "EFFECTIVE")
    said = "eff.dcm has DoseType EFFECTIVE: a biologically weighted dose"
    for path in (effective, tmp_path / "folder"):
        notes: list = []
        img = read_dose(path, notes=notes)
        assert np.allclose(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(read_dose(physical)))   # read as is
        assert len([n for n in notes if said in n]) == 1, notes
        assert "not the physical dose" in notes[-1] and "export the PHYSICAL dose" in notes[-1]
    with pytest.warns(UserWarning, match=said):                 # no notes list: warned
        read_dose(effective)
    assert said in plan_dose_files([effective])[1]
    assert plan_dose_files([physical])[1] is None
    notes = []
    read_dose(physical, notes=notes)
    assert not notes
    # the command line says it beside the MLD
    ct = sitk.Image((10, 10, 6), sitk.sitkInt16) - 800
    ct.SetOrigin((-5.0, -5.0, -3.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct * 0 + 1, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    shutil.copy(effective, tmp_path / "rd_eff.dcm")
    assert main(["dose-features", "--dose", str(tmp_path / "rd_eff.dcm"), "--ct", str(tmp_path / "ct.nii.gz"),
                 "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "out" / "dose.csv")]) == 0
    assert "note: rd_eff.dcm has DoseType EFFECTIVE" in capsys.readouterr().out


def test_beam_doses_of_different_dose_types_are_not_summed(tmp_path):
    """A BEAM dose of DoseType PHYSICAL and one of EFFECTIVE (an RBE-weighted / EQD2 beam dose exported beside the
    physical ones) of one plan were summed into a dose that is neither; refused naming each file's DoseType.  BEAM
    doses all EFFECTIVE are summed, with one note naming them."""
    from lungai.dose.read import plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    beams = [with_summation_type(src, tmp_path / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f) for i, f in
             enumerate((0.4, 0.6))]
    mixed = [beams[0], _with_dose_type(beams[1], tmp_path / "beam1_eff.dcm", "EFFECTIVE")]
    with pytest.raises(InputError, match=r"different DoseTypes \(beam0.dcm \(PHYSICAL\), beam1_eff.dcm "
                                         r"\(EFFECTIVE\)\): a physical dose and a biologically weighted") as err:
        plan_dose_files(mixed)
    assert "of one DoseType" in err.value.fix
    both = [_with_dose_type(b, tmp_path / f"eff{i}.dcm", "EFFECTIVE") for i, b in enumerate(beams)]
    files, note = plan_dose_files(both)
    assert files == both and "the BEAM RTDOSEs eff0.dcm, eff1.dcm have DoseType EFFECTIVE" in note


def _dvh_only(src, dst):
    """A copy of the RTDOSE ``src`` holding DVHs only (no Image Pixel / Multi-frame module, a DVHSequence), as a
    planning system's DVH export beside the dose grid."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(src)
    for tag in ("PixelData", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "GridFrameOffsetVector",
                "NumberOfFrames", "FrameIncrementPointer", "Rows", "Columns", "SamplesPerPixel",
                "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                "DoseGridScaling", "SliceThickness"):
        if tag in ds:
            delattr(ds, tag)
    dvh = Dataset()
    dvh.DVHType, dvh.DoseUnits, dvh.DoseType, dvh.DVHDoseScaling = "CUMULATIVE", "GY", "PHYSICAL", 1.0
    dvh.DVHVolumeUnits, dvh.DVHNumberOfBins, dvh.DVHData = "CM3", 2, [1, 100, 1, 50]
    ds.DVHSequence = [dvh]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


def test_a_dvh_only_rtdose_is_left_out_beside_the_dose_grid_and_refused_alone(tmp_path):
    """An RTDOSE may hold DVHs only (no pixel data; DICOM PS3.3 A.18.3), exported beside the plan's dose grid: the
    folder (dose-features --dose FOLDER, a cohort patient) was refused as "RD_dvh.dcm has no ImagePositionPatient
    ... (the tag is mandatory)" - no MLD at all for a complete export.  Now the DVH-only file is left out with a note;
    given alone it is refused as holding no dose grid (not as a broken file)."""
    from lungai.dose.read import plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    (tmp_path / "export").mkdir()
    grid = write_rtdose(dose, tmp_path / "export" / "RD_grid.dcm")
    dvh = _dvh_only(grid, tmp_path / "export" / "RD_dvh.dcm")
    files, note = plan_dose_files([dvh, grid])
    assert files == [grid] and "RD_dvh.dcm holds no dose grid" in note and "left out" in note
    notes: list = []
    img = read_dose(tmp_path / "export", notes=notes)
    assert np.allclose(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(read_dose(grid)))
    assert any("a DVH-only RTDOSE: 1 DVH in its DVHSequence" in n for n in notes), notes
    # the DVH-only file beside the BEAM doses of one plan: the beams are summed
    beams = [with_summation_type(grid, tmp_path / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f) for i, f in
             enumerate((0.4, 0.6))]
    assert plan_dose_files([*beams, dvh])[0] == beams
    for given in ([dvh], [_dvh_only(grid, tmp_path / "dvh2.dcm"), dvh]):
        with pytest.raises(InputError, match="dcm holds no dose grid .*, so MLD, V20 ... cannot be computed") as err:
            plan_dose_files(given)
        assert "3D dose grid" in err.value.fix
    with pytest.raises(InputError, match="RD_dvh.dcm holds no dose grid"):
        read_dose(dvh)
    # no grid and no DVHs either (not a DVH export: a header cut short) is not left out, it is refused - as cut short,
    # beside another RTDOSE as alone (check_not_cut_short; QA dose66: beside one it was "holds no dose grid")
    import pydicom

    ds = pydicom.dcmread(dvh)
    del ds.DVHSequence
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "empty.dcm")
    for given in ([grid, tmp_path / "empty.dcm"], [tmp_path / "empty.dcm"]):
        with pytest.raises(InputError, match=r"^empty.dcm holds no pixel data \(PixelData\); it is truncated") as err:
            plan_dose_files(given)
        assert err.value.fix == "re-export the RTDOSE from the planning system"


def test_cli_dose_features_never_overwrites_a_users_file(small_phantom, tmp_path, capsys):
    """-o replaced any existing file (QA: a user's notes.csv); now only a file an earlier dose-features wrote is
    replaced.  --dose-unit cGy reads a cGy dose image."""
    from lungai.cli import main

    lung_img, gtv_img = phantom_lungs_and_gtv(small_phantom)
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("ct", "lungs", "dose", "dose_cgy")}
    sitk.WriteImage(small_phantom.ct, str(paths["ct"]))
    sitk.WriteImage(lung_img, str(paths["lungs"]))
    sitk.WriteImage(treatment_dose(gtv_img), str(paths["dose"]))
    sitk.WriteImage(treatment_dose(gtv_img) * 100.0, str(paths["dose_cgy"]))
    notes = tmp_path / "notes.csv"
    notes.write_text("my notes\n", encoding="utf-8")
    args = ["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs", str(paths["lungs"])]
    assert main(args + ["-o", str(notes)]) == 2
    assert notes.read_text(encoding="utf-8") == "my notes\n"
    assert "notes.csv already exists and was not written by lungai" in capsys.readouterr().err
    out = tmp_path / "dose.csv"
    assert main(args + ["-o", str(out)]) == 0
    first = pd.read_csv(out)
    assert main(args + ["-o", str(out)]) == 0                          # its own output of an earlier run: replaced
    cgy = ["dose-features", "--dose", str(paths["dose_cgy"]), "--ct", str(paths["ct"]), "--lungs",
           str(paths["lungs"]), "-o", str(out)]
    assert main(cgy) == 2 and "--dose-unit cGy" in capsys.readouterr().err
    assert main(cgy + ["--dose-unit", "cGy"]) == 0
    assert pd.read_csv(out).loc[0, "dose_mld_gy"] == pytest.approx(first.loc[0, "dose_mld_gy"], abs=1e-3)


def test_cli_dose_features_custom_v_levels(small_phantom, tmp_path, capsys):
    """--v-levels 5,10,13,20,30,40 gives those V columns (default 5/13/20/30 unchanged); bad lists are refused."""
    from lungai.cli import main
    from lungai.dose.features import parse_v_levels

    lung_img, gtv_img = phantom_lungs_and_gtv(small_phantom)
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("ct", "lungs", "dose")}
    sitk.WriteImage(small_phantom.ct, str(paths["ct"]))
    sitk.WriteImage(lung_img, str(paths["lungs"]))
    sitk.WriteImage(treatment_dose(gtv_img), str(paths["dose"]))
    args = ["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs", str(paths["lungs"])]
    assert main(args + ["-o", str(tmp_path / "a.csv")]) == 0
    assert main(args + ["--v-levels", "40,5,10,13,20,30,2.5", "-o", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert list(a.columns) == COLUMNS + ["masks", "lungs_cut", "rtdose_notes"]
    assert a.loc[0, "masks"].endswith("no GTV (the lungs include the tumour)")
    v = ["dose_v2p5_pct", "dose_v5_pct", "dose_v10_pct", "dose_v13_pct", "dose_v20_pct", "dose_v30_pct", "dose_v40_pct"]
    assert [c for c in b.columns if c.startswith("dose_v")] == v
    pd.testing.assert_frame_equal(b[COLUMNS + ["masks", "lungs_cut", "rtdose_notes"]], a)   # the default columns unchanged
    assert list(b.loc[0, v]) == sorted(b.loc[0, v], reverse=True)
    for bad in ("", "5,x", "5,5", "-5,10", "nan"):
        with pytest.raises(InputError, match="is not a list of different positive doses"):
            parse_v_levels(bad)
    assert main(args + ["--v-levels", "20,20", "-o", str(tmp_path / "c.csv")]) == 2
    assert not (tmp_path / "c.csv").exists()


def test_v_levels_in_cgy_refused(small_phantom, tmp_path, capsys):
    """QA radiomics64: --v-levels 500,1300,2000 (V5 / V13 / V20 written in cGy, as V2000cGy) gave dose_v500_pct,
    dose_v1300_pct, dose_v2000_pct all 0 %, exit 0, no word.  A level above the largest plausible dose (150 Gy, or
    --max-dose-gy) is refused before any work, the levels in Gy suggested; a level below it stays a level (V60 of a
    50 Gy plan is 0 %)."""
    from lungai.cli import main
    from lungai.dose.features import parse_v_levels

    with pytest.raises(InputError, match=r"500, 1300, 2000 Gy are above 150 Gy, the largest plausible dose") as err:
        parse_v_levels("500,1300,2000")
    assert "the levels look like cGy (5,13,20 Gy?)" in str(err.value)
    assert "--v-levels 5,13,20" in err.value.fix and "--max-dose-gy" in err.value.fix
    with pytest.raises(InputError, match=r"2000 Gy is above 150 Gy") as err:
        parse_v_levels("5,13,2000")
    assert "--v-levels 5,13,20" in err.value.fix
    assert parse_v_levels("5,20,150") == (5.0, 20.0, 150.0)
    assert parse_v_levels("5,200", max_gy=250) == (5.0, 200.0)          # an EQD2 map's levels with --max-dose-gy

    lungs, gtv = phantom_lungs_and_gtv(small_phantom)
    for name, img in (("ct", small_phantom.ct), ("lungs", lungs), ("dose", treatment_dose(gtv))):
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    out = tmp_path / "d.csv"
    args = ["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
            "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(out)]
    assert main(args + ["--v-levels", "500,1300,2000"]) == 2
    assert "the levels look like cGy" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--v-levels", "5,13,20"]) == 0                   # in Gy: computed
    assert pd.read_csv(out).loc[0, "dose_v5_pct"] > 0


def test_image_dose_above_150_gy_hint_offers_both_units_and_max_dose_override(tmp_path):
    """Review: an EQD2 / BED map or a re-irradiation sum above 150 Gy was refused as 'looks like cGy ... pass
    --dose-unit cGy' only, and that advice gave a silent x0.01 (MLD 0.12 Gy instead of ~11).  The hint now
    names both readings, and max_gy (--max-dose-gy) accepts the map in Gy, unchanged."""
    gy = sitk.GetArrayFromImage(radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0),
                                                  origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0, 180.0))
    f = _image_dose(tmp_path, "eqd2.nii.gz", gy)
    with pytest.raises(InputError) as err:
        read_dose(f)
    fix = err.value.fix
    top = float(gy.max())
    assert f"if the values are cGy (maximum {top:.4g} cGy = {top / 100:.4g} Gy) pass --dose-unit cGy" in fix
    assert "if they really are Gy (an EQD2 / BED map, summed courses) pass --max-dose-gy 170" in fix
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_dose(f, max_gy=170)), gy)
    with pytest.raises(InputError, match="not a positive dose"):
        read_dose(f, max_gy=0)


def test_image_dose_in_gy_read_as_cgy_refused(tmp_path):
    """Review: a 60 Gy map given with --dose-unit cGy (maximum 0.6 Gy) was accepted silently (MLD 0.04 Gy)."""
    gy = sitk.GetArrayFromImage(radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0),
                                                  origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0, 60.0))
    f = _image_dose(tmp_path, "gy.nii.gz", gy)
    with pytest.raises(InputError, match="look like Gy already") as err:
        read_dose(f, unit="cGy")
    assert "leave --dose-unit out" in err.value.fix
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_dose(f)), gy)


def test_dose_features_cli_max_dose_gy(tmp_path, capsys):
    """lungai dose-features: a 180 Gy EQD2 map is refused by default (exit 2, both readings in the hint) and read
    in Gy, unchanged, with --max-dose-gy 200."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dose import sphere_mask

    ct = _grid()
    lungs = sphere_mask(ct, CENTRE, 25.0)
    hu = np.where(sitk.GetArrayFromImage(lungs) > 0, -800, 40).astype(np.int16)   # a CT in HU
    hu[:, :3] = -1000
    image = sitk.GetImageFromArray(hu)
    image.CopyInformation(ct)
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(lungs, str(tmp_path / "lungs.nii.gz"))
    sitk.WriteImage(radial_dose(ct, CENTRE, 25.0, 180.0), str(tmp_path / "eqd2.nii.gz"))
    base = ["dose-features", "--dose", str(tmp_path / "eqd2.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
            "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "d.csv")]
    assert main(base) == 2
    assert "--max-dose-gy" in capsys.readouterr().err
    assert main(base + ["--max-dose-gy", "200"]) == 0
    assert pd.read_csv(tmp_path / "d.csv")["dose_mld_gy"].iloc[0] > 30


def test_v_levels_whose_columns_collide_refused():
    """Review: --v-levels 20,20.0000001 gave two dose_v20_pct columns."""
    from lungai.dose.features import parse_v_levels

    with pytest.raises(InputError, match="dose_v20_pct"):
        parse_v_levels("20,20.0000001")
    assert parse_v_levels("2.5,20") == (2.5, 20.0)


def test_rtdose_units_plausibility_names_the_dose_units_tag(tmp_path):
    """QA: an RTDOSE with DoseUnits GY holding cGy values gave MLD 3285 Gy, V20 100 %; Gy values labelled CGY gave
    MLD 0.33 Gy - no check, while a NIfTI dose is refused in both cases.  The same rule (check_dose_plausible) now
    applies to an RTDOSE once converted to Gy (the BEAM sum too), naming the DoseUnits tag; --max-dose-gy (max_gy)
    accepts a real high dose."""
    from lungai.dose.read import read_dose_sum, read_rtdose

    dose = radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0), origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0,
                       60.0)
    top = float(sitk.GetArrayFromImage(dose).max())
    cgy_as_gy = write_rtdose(dose * 100.0, tmp_path / "gy.dcm", units="GY")
    for read in (read_dose, read_rtdose, lambda f: read_dose_sum([f])):
        with pytest.raises(InputError, match="above 150 Gy, implausible .*its DoseUnits tag says GY") as err:
            read(cgy_as_gy)
        assert "right DoseUnits (CGY" in err.value.fix and "--max-dose-gy" in err.value.fix
    back = read_dose(cgy_as_gy, max_gy=10000)
    assert float(sitk.GetArrayFromImage(back).max()) == pytest.approx(top * 100, rel=1e-4)
    gy_as_cgy = write_rtdose(dose / 100.0, tmp_path / "cgy.dcm", units="CGY", scaling=1e-3)
    with pytest.raises(InputError, match="DoseUnits tag says CGY.*look like Gy already") as err:
        read_dose(gy_as_cgy)
    assert "right DoseUnits (GY" in err.value.fix
    # three BEAM doses of one plan: checked once summed (each beam alone may be small)
    plan = write_rtdose(dose * 100.0 / 3, tmp_path / "plan.dcm", units="GY")
    beams = [with_summation_type(plan, tmp_path / f"beam{i}.dcm", "BEAM", plan="1.2.3", factor=f)
             for i, f in enumerate((0.99, 1.0, 1.01))]      # distinct beams (the same dose would be a copy)
    with pytest.raises(InputError, match="the sum of the BEAM RTDOSEs beam0.dcm.*DoseUnits tag says GY"):
        read_dose_sum(beams)
    ok = [with_summation_type(plan, tmp_path / f"ok{i}.dcm", "BEAM", plan="1.2.3", factor=f / 100)
          for i, f in enumerate((0.99, 1.0, 1.01))]
    assert float(sitk.GetArrayFromImage(read_dose_sum(ok)).max()) == pytest.approx(top, rel=1e-3)


def _pixels_16bit(src, dst, signed: bool, scaling: float = 1e-3):
    """A copy of the RTDOSE ``src`` with its dose stored as 16-bit unsigned pixel values (x ``scaling``) and
    PixelRepresentation ``signed`` (1: unsigned data mislabelled signed, values above 32767 read as negative)."""
    import pydicom

    ds = pydicom.dcmread(src)
    gy = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, int(signed)
    ds.DoseGridScaling = f"{scaling:g}"
    ds.PixelData = np.round(gy / scaling).astype(np.uint16).tobytes()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


def test_an_rtdose_holding_negative_doses_is_refused_as_images_are(tmp_path, capsys):
    """QA (dose60): an RTDOSE whose unsigned 16-bit pixels were labelled signed (PixelRepresentation 1) read its doses
    above 32.767 Gy (DoseGridScaling 0.001) as negative: on LUNG1-003 MLD 1.63 Gy, V20 3.8 % instead of 3.94 Gy,
    7.6 %, exit 0 and no word (its maximum passed the plausibility check), while a dose image with negative values
    is refused.  Refused, naming the signed pixels; a BEAM dose of a sum too; the same data unsigned reads right."""
    from lungai.cli import main
    from lungai.dose.read import read_dose_sum, read_rtdose

    dose = radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0), origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0,
                       60.0)
    top = float(sitk.GetArrayFromImage(dose).max())
    plan = write_rtdose(dose, tmp_path / "plan.dcm")
    unsigned = _pixels_16bit(plan, tmp_path / "u16.dcm", signed=False)
    assert float(sitk.GetArrayFromImage(read_dose(unsigned)).max()) == pytest.approx(top, abs=1e-3)
    mislabelled = _pixels_16bit(plan, tmp_path / "s16.dcm", signed=True)
    for read in (read_dose, read_rtdose, lambda f: read_dose_sum([f])):
        with pytest.raises(InputError, match=r"s16.dcm holds negative doses \(\d+ of 13824 voxels, min -3\d\.\d+ Gy\)"
                                             r".*stored signed \(PixelRepresentation 1\).*above 32767") as err:
            read(mislabelled)
        assert "unsigned pixels, PixelRepresentation 0" in err.value.fix
    # a BEAM dose of a sum: its negative voxels would lower the sum as well
    beams = [with_summation_type(mislabelled if i == 0 else unsigned, tmp_path / f"beam{i}.dcm", "BEAM", plan="1.2.3",
                                 factor=f) for i, f in enumerate((0.5, 0.49))]
    with pytest.raises(InputError, match="beam0.dcm holds negative doses"):
        read_dose_sum(beams)
    # the command: refused, no dose.csv
    ct = _grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0), origin=(-34.5, -34.5, -34.5)) - 800     # lung HU
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct * 0 + 1, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    args = ["dose-features", "--dose", str(mislabelled), "--ct", str(tmp_path / "ct.nii.gz"), "--lungs",
            str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "dose.csv")]
    assert main(args) == 2
    assert "holds negative doses" in capsys.readouterr().err and not (tmp_path / "dose.csv").exists()


def _with_beam_number(path, number):
    """The RTDOSE ``path`` (a BEAM dose with a referenced plan) saying it is the dose of beam ``number``."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(path)
    beam, group = Dataset(), Dataset()
    beam.ReferencedBeamNumber = number
    group.ReferencedFractionGroupNumber = 1
    group.ReferencedBeamSequence = [beam]
    ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = [group]
    ds.save_as(path)
    return path


def test_a_copy_of_a_beam_dose_is_summed_once_and_a_beam_twice_refused(tmp_path):
    """QA: BEAM doses B0, B1, B2 of one plan and B1_copy.dcm (the same SOPInstanceUID: exported twice) gave "sum of
    4 BEAM RTDOSEs", MLD 45.6 instead of 35.8 Gy.  The copy is left out with a note naming it; two different BEAM
    doses of one beam number (ReferencedBeamNumber) are refused naming both; one SOPInstanceUID holding two
    different doses is refused too."""
    import shutil

    from lungai.dose.read import plan_dose_files, read_dose_sum

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    beams = [_with_beam_number(with_summation_type(src, tmp_path / f"B{i}.dcm", "BEAM", plan="1.2.3.1", factor=f),
                               i + 1) for i, f in enumerate((0.2, 0.3, 0.5))]
    copy = shutil.copy(beams[1], tmp_path / "B1_copy.dcm")
    files, note = plan_dose_files([*beams, copy])
    assert files == beams and "B1_copy.dcm left out: a copy of B1.dcm" in note and "3 BEAM doses" in note
    total = sitk.GetArrayFromImage(read_dose_sum([*beams, copy]))      # the copy read once
    assert np.allclose(total, sitk.GetArrayFromImage(read_dose(src)), atol=1e-3)
    # a second calculation of beam 2 (its own SOPInstanceUID) beside the first: which one?
    again = _with_beam_number(with_summation_type(src, tmp_path / "B1_new.dcm", "BEAM", plan="1.2.3.1", factor=0.3), 2)
    for read in (plan_dose_files, read_dose_sum):
        with pytest.raises(InputError, match="B1.dcm and B1_new.dcm are both the dose of beam 2") as err:
            read([*beams, again])
        assert "one RTDOSE per beam" in err.value.fix
    # one SOPInstanceUID, two doses
    import pydicom

    other = with_summation_type(src, tmp_path / "B1_other.dcm", "BEAM", plan="1.2.3.1", factor=0.9,
                                uid=str(pydicom.dcmread(beams[1], stop_before_pixels=True).SOPInstanceUID))
    with pytest.raises(InputError, match="B1.dcm and B1_other.dcm have the same SOPInstanceUID .* different doses"):
        plan_dose_files([*beams, other])


def test_a_reexported_beam_dose_without_beam_numbers_is_refused_not_summed_twice(tmp_path):
    """QA: BEAM doses without ReferencedBeamNumber (not conformant, but seen) and a re-export of one of them (a new
    SOPInstanceUID, the same dose, here also stored with another DoseGridScaling) gave "3 BEAM doses of one plan
    summed", MLD 16.69 instead of 11.12 Gy, exit 0.  Two BEAM doses holding the same dose, either without a beam
    number, are refused naming both; distinct beams without numbers are still summed."""
    import pydicom

    from lungai.dose.read import plan_dose_files, read_dose_sum

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    b1, b2 = (with_summation_type(src, tmp_path / f"b{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
              for i, f in ((1, 0.4), (2, 0.6)))
    files, note = plan_dose_files([b1, b2])
    assert files == [b1, b2] and "2 BEAM doses of one plan summed" in note
    again = with_summation_type(b1, tmp_path / "b1_reexport.dcm", "BEAM", plan="1.2.3.1")
    ds = pydicom.dcmread(again)          # the same dose stored as pixels x 2 with half the scaling
    ds.PixelData = (ds.pixel_array.astype(np.uint32) * 2).astype(ds.pixel_array.dtype).tobytes()
    ds.DoseGridScaling = f"{float(ds.DoseGridScaling) / 2:.10g}"
    ds.save_as(again)
    for read in (plan_dose_files, read_dose_sum):
        with pytest.raises(InputError, match="b1.dcm and b1_reexport.dcm hold the same dose .*no ReferencedBeamNumber"
                           ) as err:
            read([b1, again, b2])
        assert "one RTDOSE per beam" in err.value.fix
    numbered = _with_beam_number(with_summation_type(b1, tmp_path / "b1_numbered.dcm", "BEAM", plan="1.2.3.1"), 1)
    with pytest.raises(InputError, match="b1.dcm and b1_numbered.dcm hold the same dose"):
        plan_dose_files([b1, numbered, b2])       # one of the two without a beam number: still a copy


@pytest.mark.parametrize("how", ["pixels", "scaling"])
def test_an_rtdose_or_image_without_dose_is_refused(tmp_path, how):
    """QA: an RTDOSE exported before the dose was calculated (every pixel 0), or with DoseGridScaling 0, gave MLD
    0 Gy, exit 0 (cohort put MLD 0.0 into rp_table.csv); refused, saying to re-export the calculated plan dose -
    a single RTDOSE, a BEAM dose of a sum, and a dose image."""
    import pydicom

    from lungai.dose.read import read_dose_sum

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    ds = pydicom.dcmread(src)
    if how == "pixels":
        ds.PixelData = np.zeros(ds.pixel_array.shape, np.uint32).tobytes()
    else:
        ds.DoseGridScaling = "0"
    ds.save_as(tmp_path / "empty.dcm")
    with pytest.raises(InputError, match="holds no dose|DoseGridScaling 0") as err:
        read_dose(tmp_path / "empty.dcm")
    assert "not calculated or not exported" in err.value.problem and "export it again" in err.value.fix
    b0 = with_summation_type(src, tmp_path / "b0.dcm", "BEAM", plan="1.2.3.1")
    b1 = with_summation_type(tmp_path / "empty.dcm", tmp_path / "b1.dcm", "BEAM", plan="1.2.3.1")
    with pytest.raises(InputError, match="b1.dcm .*not calculated"):
        read_dose_sum([b0, b1])                       # a beam without dose: the sum would miss that beam
    if how == "pixels":
        sitk.WriteImage(dose * 0.0, str(tmp_path / "zero.nii.gz"))
        with pytest.raises(InputError, match="zero.nii.gz holds no dose"):
            read_dose(tmp_path / "zero.nii.gz")


def test_absolute_offsets_of_a_non_axial_grid_are_named_as_such(tmp_path):
    """QA: absolute offsets (first = IPP z) on a non-axial grid were refused as "neither 0 nor the z of
    ImagePositionPatient (30 mm ...)" while they were equal; the message says what is wrong."""
    import pydicom

    dose = radial_dose(_grid(size=(8, 8, 6), spacing=(3.0, 3.0, 2.5), origin=(-12.0, -12.0, -6.0)), CENTRE, 10.0, 60.0)
    f = write_rtdose(dose, tmp_path / "abs.dcm", offsets="absolute")
    ds = pydicom.dcmread(f)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]          # coronal
    ds.save_as(f)
    with pytest.raises(InputError, match="the z of ImagePositionPatient .*only defined for the orientation "
                                         r"\[1,0,0,0,1,0\]; this grid's ImageOrientationPatient is \[1,0,0,0,0,-1\]"
                       ) as err:
        read_dose(f)
    assert "neither" not in err.value.problem and "relative offsets" in err.value.fix


def test_cli_dose_features_reads_an_rtdose_folder_as_cohort_does(small_phantom, tmp_path, capsys):
    """QA: `dose-features --dose FOLDER` refused a plan + beams export folder (and a folder of BEAM doses of one
    plan) that cohort accepts: the plan dose is used, else the beams summed, and a note says which; -o inside
    the RTDOSE folder is refused naming the RTDOSE folder (not "the CT's folder"); --max-dose-gy applies to an
    RTDOSE (its help says so)."""
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rtdose as write

    lung_img, gtv_img = phantom_lungs_and_gtv(small_phantom, sides=True)
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(lung_img, str(tmp_path / "lungs.nii.gz"))
    dose = treatment_dose(gtv_img)
    folder = tmp_path / "RTDOSE"
    folder.mkdir()
    plan = write(dose, folder / "plan.dcm")
    for i, f in enumerate((0.2, 0.3, 0.5)):
        with_summation_type(plan, folder / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    base = ["dose-features", "--ct", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz")]
    with_summation_type(plan, folder / "plan.dcm", "PLAN", plan="1.2.3.1", uid="1.2.3.9")   # the beams' plan
    assert main(base + ["--dose", str(folder), "-o", str(tmp_path / "a.csv")]) == 0
    out = capsys.readouterr().out
    assert "plan dose plan.dcm used" in out
    (folder / "plan.dcm").unlink()
    assert main(base + ["--dose", str(folder), "-o", str(tmp_path / "b.csv")]) == 0
    assert "3 BEAM doses of one plan summed" in capsys.readouterr().out
    a, b = pd.read_csv(tmp_path / "a.csv").iloc[0], pd.read_csv(tmp_path / "b.csv").iloc[0]
    assert b["dose_mld_gy"] == pytest.approx(a["dose_mld_gy"], abs=1e-3) and a["dose_mld_gy"] > 1


def test_cli_dose_features_output_in_the_rtdose_folder_names_it_and_max_dose_gy_applies_to_an_rtdose(tmp_path,
                                                                                                        capsys):
    """QA: `--dose RTDOSE/ -o RTDOSE/out.csv` was refused as "the DICOM series folder ... outside the CT's
    folder": it names the RTDOSE folder now; `--max-dose-gy` said it was for a NIfTI/NRRD/MHA dose while it
    applies to an RTDOSE too (the RTDOSE error tells users to pass it)."""
    from lungai.cli import build_parser, main

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    folder = tmp_path / "RTDOSE"
    folder.mkdir()
    write_rtdose(dose, folder / "rd.dcm")
    sitk.WriteImage(sitk.Cast(dose * 0.0 - 800.0, sitk.sitkInt16), str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(dose * 0.0 + 1.0, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    base = ["dose-features", "--ct", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz")]
    assert main(base + ["--dose", str(folder), "-o", str(folder / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "RTDOSE folder" in err and "CT's folder" not in err and "series folder" not in err
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["dose-features"].format_help().split())
    assert "an RTDOSE (once its DoseUnits applied) or a NIfTI/NRRD/MHA dose" in help_text
    assert main(base + ["--dose", str(folder / "rd.dcm"), "--max-dose-gy", "5", "-o", str(tmp_path / "a.csv")]) == 2
    assert "above 5 Gy" in capsys.readouterr().err                  # passed on to the RTDOSE's check
    assert main(base + ["--dose", str(folder / "rd.dcm"), "--max-dose-gy", "80", "-o", str(tmp_path / "a.csv")]) == 0


def _dicom_ct_and_dose(tmp_path):
    """A small DICOM CT series (CT/), lungs (lungs.nii.gz) and a PLAN RTDOSE on its frame of reference."""
    from lungai.dicom.synthetic import write_ct_series, write_rtdose as write

    ct = sitk.Image((12, 12, 6), sitk.sitkInt16) - 800
    ct.SetOrigin((-6.0, -6.0, -3.0))
    reference = write_ct_series(ct, tmp_path / "CT", patient_id="P1")
    sitk.WriteImage(sitk.Cast(ct * 0 + 1, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    dose = radial_dose(_grid(size=(12, 12, 6), origin=(-6.0, -6.0, -3.0)), CENTRE, 25.0, 60.0)
    return reference, dose, write


def _other_frame(src, dst, frame="1.2.3.4.5"):
    import pydicom

    ds = pydicom.dcmread(src)
    ds.FrameOfReferenceUID = frame
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


def test_cli_dose_folder_keeps_the_rtdoses_of_the_cts_frame_of_reference(tmp_path, capsys):
    """Review of 3b2eaff: `--dose FOLDER` holding the plan dose and a replan's dose on another frame of reference
    was refused as "2 RTDOSEs share this CT's frame of reference"; as cohort (RTDOSEs grouped by
    FrameOfReferenceUID) the CT's is taken, a note names the one left out; none of the CT's: refused as another
    CT's dose."""
    from lungai.cli import main

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    folder = tmp_path / "RTDOSE"
    folder.mkdir()
    write(dose, folder / "plan.dcm", reference=reference)
    _other_frame(folder / "plan.dcm", folder / "replan.dcm")
    base = ["dose-features", "--ct", str(tmp_path / "CT"), "--lungs", str(tmp_path / "lungs.nii.gz"),
            "--dose", str(folder)]
    assert main(base + ["-o", str(tmp_path / "a.csv")]) == 0
    out = capsys.readouterr().out
    assert "replan.dcm left out: FrameOfReferenceUID 1.2.3.4.5 is not the CT's" in out
    assert pd.read_csv(tmp_path / "a.csv").loc[0, "dose_mld_gy"] > 1
    _other_frame(folder / "plan.dcm", folder / "plan.dcm", "1.2.3.4.6")      # no RTDOSE of the CT's frame
    assert main(base + ["-o", str(tmp_path / "b.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not belong to the CT" in err and "share this CT's frame" not in err
    assert not (tmp_path / "b.csv").exists()


def _without(src, dst, *keywords):
    import pydicom

    ds = pydicom.dcmread(src)
    for keyword in keywords:
        delattr(ds, keyword)
    ds.save_as(dst)
    return dst


def test_an_rtdose_without_frame_of_reference_is_said_unchecked_not_passed_silently(tmp_path, capsys):
    """QA (dose60): an RTDOSE without FrameOfReferenceUID (a mandatory tag an anonymiser or converter removed) on
    LUNG1-003's DICOM CT was used with exit 0 and no word - only what both sides carry is compared, so the dose of a
    replan on another CT of the patient would pass - while a NIfTI CT gets "could not be checked".  The note says it
    (printed and in dose.csv's rtdose_notes), with what was compared; the plan's RTDOSE gets none."""
    from lungai.cli import main

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    plan = write(dose, tmp_path / "plan.dcm", reference=reference)
    base = ["dose-features", "--ct", str(tmp_path / "CT"), "--lungs", str(tmp_path / "lungs.nii.gz")]
    for name, keywords, said in (("plan.dcm", (), None),
                                 ("no_frame.dcm", ("FrameOfReferenceUID",), "only its PatientID P1 was compared (the "
                                                                            "CT's)"),
                                 ("no_ids.dcm", ("FrameOfReferenceUID", "PatientID"),
                                  "nor could its PatientID be compared (it carries none): nothing was compared")):
        path = _without(plan, tmp_path / name, *keywords) if keywords else plan
        out = tmp_path / f"{name}.csv"
        assert main(base + ["--dose", str(path), "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        recorded = str(pd.read_csv(out, keep_default_na=False).loc[0, "rtdose_notes"])
        if said is None:
            assert "could not be checked" not in printed and recorded == ""
            continue
        note = (f"the RTDOSE {name} could not be checked against the frame of reference of the CT {tmp_path / 'CT'}: "
                "the RTDOSE carries no FrameOfReferenceUID (a mandatory tag: removed by an anonymiser or a converter?)"
                f"; {said}; make sure the dose was planned on this CT")
        assert f"note: {note}" in printed, printed
        assert recorded.startswith(note), recorded
    # a --dose folder holding it: the same note, naming the file under the folder
    (tmp_path / "RTDOSE").mkdir()
    _without(plan, tmp_path / "RTDOSE" / "RD.dcm", "FrameOfReferenceUID")
    assert main(base + ["--dose", str(tmp_path / "RTDOSE"), "-o", str(tmp_path / "folder.csv")]) == 0
    assert "note: the RTDOSE RTDOSE/RD.dcm could not be checked against the frame of reference" in \
        capsys.readouterr().out


def test_an_rtdose_without_dose_summation_type_is_read_with_a_note(tmp_path, capsys):
    """QA (dose60): an RTDOSE without DoseSummationType (a mandatory tag) on LUNG1-003 was used with no word, while one
    saying FRACTION or BEAM is refused: it may be one fraction's dose (MLD a thirtieth).  Read, with a note printed and
    recorded in dose.csv's rtdose_notes (a file or a folder's one RTDOSE); the plan dose gets none."""
    from lungai.cli import main

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    plan = write(dose, tmp_path / "plan.dcm", reference=reference)
    (tmp_path / "RTDOSE").mkdir()
    _without(plan, tmp_path / "RTDOSE" / "RD.dcm", "DoseSummationType")
    base = ["dose-features", "--ct", str(tmp_path / "CT"), "--lungs", str(tmp_path / "lungs.nii.gz")]
    note = ("RD.dcm has no DoseSummationType (a mandatory tag), so that it is the plan's total dose - not the dose of "
            "one fraction or of some beams, whose MLD, V20 ... are a part of it - could not be checked; make sure it "
            "is the plan dose")
    for given, name in ((plan, "plan"), (tmp_path / "RTDOSE" / "RD.dcm", "file"), (tmp_path / "RTDOSE", "folder")):
        out = tmp_path / f"{name}.csv"
        assert main(base + ["--dose", str(given), "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        recorded = str(pd.read_csv(out, keep_default_na=False).loc[0, "rtdose_notes"])
        if name == "plan":
            assert "DoseSummationType" not in printed and recorded == ""
            continue
        assert note in printed, printed
        assert recorded.startswith(note), recorded
    notes: list = []
    read_dose(tmp_path / "RTDOSE" / "RD.dcm", notes=notes)                 # the Python API: in its notes
    assert len(notes) == 1 and notes[0].startswith(note)


def test_cli_dose_folder_searches_subfolders_and_keeps_the_cts_patient(tmp_path, capsys):
    """QA: `--dose P1` for P1/RTDOSE/RD.dcm said "P1 holds no RTDOSE file" (only the folder itself was listed).
    Subfolders are searched; another patient's RTDOSE under the same root is left out by PatientID / frame of
    reference (a DICOM CT), and refused as ambiguous when the CT is not DICOM (nothing tells which is its)."""
    from lungai.cli import main

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    root = tmp_path / "export"
    (root / "P1" / "RTDOSE").mkdir(parents=True)
    (root / "P2" / "RTDOSE").mkdir(parents=True)
    write(dose, root / "P1" / "RTDOSE" / "RD.dcm", reference=reference)
    import pydicom

    ds = pydicom.dcmread(_other_frame(root / "P1" / "RTDOSE" / "RD.dcm", root / "P2" / "RTDOSE" / "RD.dcm"))
    ds.PatientID = "P2"
    ds.save_as(root / "P2" / "RTDOSE" / "RD.dcm")
    base = ["dose-features", "--lungs", str(tmp_path / "lungs.nii.gz")]
    assert main(base + ["--ct", str(tmp_path / "CT"), "--dose", str(root / "P1"), "-o", str(tmp_path / "a.csv")]) == 0
    # the folder's one RTDOSE is named (QA: the demo's report said "RT dose P1 (given with --dose)", no file)
    assert f"--dose {root / 'P1'}: RTDOSE RTDOSE/RD.dcm used" in capsys.readouterr().out
    assert main(base + ["--ct", str(tmp_path / "CT"), "--dose", str(root), "-o", str(tmp_path / "b.csv")]) == 0
    out = capsys.readouterr().out
    assert "P2/RTDOSE/RD.dcm left out: PatientID P2 is not the CT's P1" in out
    a, b = pd.read_csv(tmp_path / "a.csv").iloc[0], pd.read_csv(tmp_path / "b.csv").iloc[0]
    assert a["dose_mld_gy"] > 1 and b["dose_mld_gy"] == pytest.approx(a["dose_mld_gy"])
    from lungai.io import read_ct

    sitk.WriteImage(read_ct(tmp_path / "CT"), str(tmp_path / "ct.nii.gz"))      # the same CT, not DICOM
    assert main(base + ["--ct", str(tmp_path / "ct.nii.gz"), "--dose", str(root), "-o", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "belong to 2 patients or frames of reference" in err and "P2/RTDOSE/RD.dcm" in err
    assert not (tmp_path / "c.csv").exists()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(base + ["--ct", str(tmp_path / "CT"), "--dose", str(tmp_path / "empty"), "-o",
                        str(tmp_path / "d.csv")]) == 2
    assert "holds no RTDOSE file (its subfolders searched too)" in capsys.readouterr().err


def test_dose_folder_messages_name_files_relative_to_the_folder(tmp_path):
    """QA: `--dose FOLDER` with plan1/RD.dcm and plan2/RD.dcm said "2 RTDOSEs share this CT's frame of reference
    ...: RD.dcm (PLAN), RD.dcm (PLAN)" and "2 BEAM doses of one plan summed: RD.dcm, RD.dcm"; the note on a dose
    not checked against a NIfTI CT named X/RD_plan.dcm for X/RTDOSE/RD_plan.dcm.  Files are named relative to the
    folder given."""
    from dose_helpers import with_summation_type
    from lungai.dose.read import check_dose_matches_ct, dose_folder_files, dose_reference

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    root = tmp_path / "X"
    for sub in ("plan1", "plan2", "RTDOSE"):
        (root / sub).mkdir(parents=True)
    src = write(dose, tmp_path / "src.dcm", reference=reference)
    for i, sub in enumerate(("plan1", "plan2")):
        with_summation_type(src, root / sub / "RD.dcm", "PLAN", plan=f"1.2.3.{i}")
    ref = dose_reference(tmp_path / "CT")
    with pytest.raises(InputError, match=r"plan1/RD\.dcm \(PLAN\), plan2/RD\.dcm \(PLAN\)"):
        dose_folder_files(root, ref)
    for i, (sub, f) in enumerate((("plan1", 0.4), ("plan2", 0.6))):
        with_summation_type(src, root / sub / "RD.dcm", "BEAM", plan="1.2.3.9", factor=f)
    files, note = dose_folder_files(root, ref)
    assert len(files) == 2 and "2 BEAM doses of one plan summed: plan1/RD.dcm, plan2/RD.dcm" in note
    for sub in ("plan1", "plan2"):
        (root / sub / "RD.dcm").unlink()
    write(dose, root / "RTDOSE" / "RD_plan.dcm", reference=reference)
    sitk.WriteImage(sitk.ReadImage(str(tmp_path / "lungs.nii.gz")), str(tmp_path / "ct.nii.gz"))
    note = check_dose_matches_ct(root, tmp_path / "ct.nii.gz")
    assert "the RTDOSE X/RTDOSE/RD_plan.dcm could not be checked" in note


def test_dose_folder_search_reads_headers_up_to_the_modality_and_shows_progress(tmp_path, monkeypatch, capsys):
    """QA: `--dose FOLDER` read the whole header of every DICOM file below it (~1.5 ms a file: minutes for a whole
    export, nothing shown).  Each file is read up to its Modality only, and a large tree shows its progress."""
    import lungai.dose.read as read

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    write(dose, tmp_path / "CT" / "RD.dcm", reference=reference)      # beside the CT slices

    def full_read(*args, **kwargs):
        raise AssertionError("a whole header read to find the Modality")

    monkeypatch.setattr(read, "read_dicom", full_read)
    monkeypatch.setattr(read, "MANY_FILES", 3)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert read.rtdose_files(tmp_path / "CT") == [tmp_path / "CT" / "RD.dcm"]
    assert "LUNGAI_PROGRESS 7/7 dose: looking for RTDOSE files under" in capsys.readouterr().err


def test_a_small_share_of_voxels_outside_the_dose_grid_is_shown_with_its_digits():
    """QA: "167 of 1348719 voxels (0.0 %) lie outside it": a small percentage keeps two significant digits."""
    from lungai.dose.resample import check_coverage

    dose = np.zeros((10, 100, 100))
    dose[0, 0, :17] = np.nan
    with pytest.raises(InputError, match=r"17 of 100000 voxels \(0\.017 %\) lie outside it"):
        check_coverage(dose, np.ones(dose.shape, bool), "lungs")
    dose[:5] = np.nan
    with pytest.raises(InputError, match=r"\(50\.0 %\)"):
        check_coverage(dose, np.ones(dose.shape, bool), "lungs")


@pytest.mark.parametrize("flip_z", [False, True])
def test_a_dose_grid_short_at_the_base_is_refused_naming_the_side_and_the_mm(flip_z):
    """QA radfollow67: a dose grid cut 40 mm short at LUNG1-003's lung base was refused with "61053 of 1363865 voxels
    (4.5 %) lie outside it" - not where: the refusal names the patient side the structure leaves the grid on, by how
    many mm, the grid's and the structure's extents, and a fix (the full calculation grid, down to where).  A grid
    stored head first (z index growing towards the feet) names the same side."""
    ct = _grid()
    short = _grid(size=(60, 60, 40), origin=(-30.0, -30.0, -10.0))          # z -10 .. 29: the base cut off
    if flip_z:
        short.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
        short.SetOrigin((-30.0, -30.0, 29.0))                                # the same voxels, stored head first
    dose = radial_dose(short, CENTRE, 25.0, 60.0)
    lungs = sphere_mask(ct, (0.0, 0.0, 0.0), 20.0)                           # z -20 .. 20
    with pytest.raises(InputError) as info:
        dose_features(dose, ct, lungs)
    problem, fix = info.value.problem, info.value.fix
    assert problem.startswith("the dose grid does not cover the lungs: ") and "lie outside it" in problem
    # the grid's edge is that of its lowest voxel (-10 - 0.5 mm); the lungs' lowest voxel is at z = -20
    assert ("beyond its edge on the inferior side (towards the feet) by up to 9.5 mm (farthest voxel of the lungs at "
            "z = -20.0 mm, the dose grid's edge at z = -10.5 mm)") in problem, problem
    assert not any(side in problem for side in ("superior side", "right side", "left side", "anterior side",
                                                "posterior side")), problem
    assert "dose grid x -30.5 .. 29.5, y -30.5 .. 29.5, z -10.5 .. 29.5 mm" in problem, problem
    assert "the lungs x -20.0 .. 20.0, y -20.0 .. 20.0, z -20.0 .. 20.0 mm" in problem, problem
    assert "full calculation grid" in fix and "covers the lungs completely (at least to z = -20.0 mm inferiorly" in fix


def test_a_gtv_beyond_two_sides_of_the_dose_grid_names_both():
    """A grid short on the patient's left (high LPS x) and at the front (low y): both sides named, each with its mm."""
    ct = _grid()
    dose = radial_dose(_grid(size=(45, 50, 60), origin=(-30.0, -20.0, -30.0)), CENTRE, 25.0, 60.0)  # x ..14, y -20..
    lungs = sphere_mask(ct, (-10.0, 5.0, 0.0), 6.0)                          # inside
    gtv = sphere_mask(ct, (10.0, -18.0, 0.0), 8.0)                           # x 2 .. 18, y -26 .. -10
    with pytest.raises(InputError, match="does not cover the GTV") as info:
        dose_features(dose, ct, lungs, gtv)
    problem, fix = info.value.problem, info.value.fix
    assert "the patient's left side by up to 3.5 mm (farthest voxel of the GTV at x = 18.0 mm" in problem, problem
    assert "the anterior side by up to 5.5 mm (farthest voxel of the GTV at y = -26.0 mm" in problem, problem
    assert "y = -26.0 mm anteriorly" in fix and "x = 18.0 mm to the left" in fix and "lungs" not in fix


def test_a_slicer_segment_outside_the_dose_grid_is_said_where_in_its_error():
    """The Lung Radiomics panel's dose rows (``lungai.scene.radiomics``): a segment the dose grid does not reach is
    that segment's error, saying where (here above the grid's superior edge), the other segments computed."""
    from lungai.dose.resample import dose_on_grid
    from lungai.scene.radiomics import _dose_rows

    ct = _grid()
    dose = radial_dose(_grid(size=(60, 60, 40)), CENTRE, 25.0, 60.0)           # z -30 .. 9 mm
    masks = {"Lungs": sphere_mask(ct, (0.0, 0.0, -10.0), 15.0), "Node": sphere_mask(ct, (0.0, 0.0, 15.0), 6.0)}
    errors: dict = {}
    frame = _dose_rows(dose_on_grid(dose, ct), masks, errors, (dose, ct))
    assert list(errors) == ["Node"] and np.isfinite(frame["Lungs"]).all(), errors
    assert ("the superior side (towards the head) by up to 11.5 mm (farthest voxel of the segment 'Node' at "
            "z = 21.0 mm, the dose grid's edge at z = 9.5 mm)") in errors["Node"], errors
    assert frame["Node"].isna().all()


def test_a_copy_of_an_rtdose_in_another_encoding_is_a_copy(tmp_path):
    """Review of 3b2eaff: a copy of an RTDOSE differing only in encoding (DoseGridScaling "5.9e-05" vs
    "0.000059", another transfer syntax) was refused as "same SOPInstanceUID ... but hold different doses"."""
    import pydicom
    from pydicom.uid import RLELossless

    from lungai.dose.read import plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    src = write_rtdose(dose, tmp_path / "rd.dcm", scaling=5.916678619e-05)
    ds = pydicom.dcmread(src)
    ds.DoseGridScaling = "0.00005916678619"                            # the same number, other text
    ds.save_as(tmp_path / "rd_copy.dcm")
    files, note = plan_dose_files([src, tmp_path / "rd_copy.dcm"])
    assert files == [src] and "rd_copy.dcm left out: a copy of rd.dcm" in note
    ds.DoseGridScaling = "0.00006"                                     # another dose: still refused
    ds.save_as(tmp_path / "rd_other.dcm")
    with pytest.raises(InputError, match="same SOPInstanceUID .* different doses"):
        plan_dose_files([src, tmp_path / "rd_other.dcm"])
    src = write_rtdose(dose, tmp_path / "rd16.dcm", scaling=1e-3)      # pixels < 65536
    ds = pydicom.dcmread(src)
    pixels = ds.pixel_array.astype(np.uint16)                          # 16-bit pixels, RLE Lossless
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = pixels.tobytes()
    ds.compress(RLELossless, pixels, generate_instance_uid=False)
    ds.save_as(tmp_path / "rd16_rle.dcm")
    assert pydicom.dcmread(tmp_path / "rd16_rle.dcm").file_meta.TransferSyntaxUID == RLELossless
    files, note = plan_dose_files([src, tmp_path / "rd16_rle.dcm"])
    assert files == [src] and "rd16_rle.dcm left out: a copy of rd16.dcm" in note


def test_output_beside_a_dicom_file_input_is_refused(tmp_path, capsys):
    """Review of 3b2eaff: `--dose RTDOSE/RD.dcm -o RTDOSE/x.csv` (and an RTSTRUCT file's folder) wrote into the
    DICOM export; the folder of a DICOM file input is an input folder, named by what the file is.  A mixed folder
    (CT slices + RTDOSE) given as --dose beside another --ct is not called "the input CT's"."""
    import shutil
    from pathlib import Path

    import pydicom

    from lungai.cli import main
    from lungai.io.outputs import prepare_output_file, prepare_output_folder

    reference, dose, write = _dicom_ct_and_dose(tmp_path)
    (tmp_path / "RTDOSE").mkdir()
    rd = write(dose, tmp_path / "RTDOSE" / "RD.dcm", reference=reference)
    base = ["dose-features", "--ct", str(tmp_path / "CT"), "--lungs", str(tmp_path / "lungs.nii.gz")]
    assert main(base + ["--dose", str(rd), "-o", str(tmp_path / "RTDOSE" / "x.csv")]) == 2
    assert "refusing to write results into the RTDOSE folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "RTDOSE").iterdir()) == ["RD.dcm"]
    (tmp_path / "RTSTRUCT").mkdir()
    ds = pydicom.dcmread(rd, stop_before_pixels=True)
    ds.Modality = "RTSTRUCT"
    ds.save_as(tmp_path / "RTSTRUCT" / "RS.dcm")
    for prepare in (prepare_output_file, lambda p, inputs: prepare_output_folder(Path(p).parent, inputs)):
        with pytest.raises(InputError, match="RTSTRUCT folder"):
            prepare(tmp_path / "RTSTRUCT" / "x.csv", inputs=[tmp_path / "CT", tmp_path / "RTSTRUCT" / "RS.dcm"])
    (tmp_path / "work").mkdir()              # a working folder holding other files too: not an export's folder
    rs = Path(shutil.copy(tmp_path / "RTSTRUCT" / "RS.dcm", tmp_path / "work" / "RS.dcm"))
    (tmp_path / "work" / "notes.txt").write_text("mine", encoding="utf-8")
    assert prepare_output_file(tmp_path / "work" / "x.csv", inputs=[tmp_path / "CT", rs])
    with pytest.raises(InputError, match="the DICOM series folder .*the input CT's"):    # the CT's own folder
        prepare_output_file(tmp_path / "CT" / "x.csv", inputs=[tmp_path / "CT", rd])
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "CT", mixed)
    shutil.copy(rd, mixed / "RD.dcm")
    other_ct = tmp_path / "OTHER"
    shutil.copytree(tmp_path / "CT", other_ct)
    with pytest.raises(InputError) as err:
        prepare_output_file(mixed / "dose.csv", inputs=[mixed, other_ct])
    assert "the input CT's" not in err.value.problem and "DICOM folder" in err.value.problem


def test_cli_a_beam_without_dose_in_a_folder_sum_says_a_setup_field_may_be_removed(tmp_path, capsys):
    """Review of 3b2eaff: a BEAM dose of 0 (a setup field, 0 MU) in a folder sum was refused as "not calculated"
    after a note saying the beams were summed: the note comes only once the dose is read, the fix says to remove
    a setup field's RTDOSE."""
    import pydicom

    from lungai.cli import main

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    sitk.WriteImage(sitk.Cast(dose * 0.0 - 800.0, sitk.sitkInt16), str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(dose * 0.0 + 1.0, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    src = write_rtdose(dose, tmp_path / "rd.dcm")
    folder = tmp_path / "RTDOSE"
    folder.mkdir()
    with_summation_type(src, folder / "b0.dcm", "BEAM", plan="1.2.3.1")
    ds = pydicom.dcmread(with_summation_type(src, folder / "b1.dcm", "BEAM", plan="1.2.3.1"))
    ds.PixelData = np.zeros(ds.pixel_array.shape, np.uint32).tobytes()
    ds.save_as(folder / "b1.dcm")
    assert main(["dose-features", "--ct", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz"),
                 "--dose", str(folder), "-o", str(tmp_path / "a.csv")]) == 2
    captured = capsys.readouterr()
    assert "b1.dcm holds no dose" in captured.err and "setup field, 0 MU" in captured.err
    assert "summed" not in captured.out


@pytest.mark.parametrize("cut", ["half", "header", "short_element", "before_frame"])
def test_a_truncated_rtdose_is_refused_from_its_header_naming_the_file(tmp_path, cut):
    """QA: an RTDOSE cut to half its size passed the header-only planning (dose_features: yes) and failed after all
    the patient's work with pydicom's bare 'The number of bytes of pixel data is less than expected'.  Its pixel
    data is checked from the header (length and file size, nothing decoded) when the dose files are chosen, and
    again around the decoding: an InputError naming the file, the fix 're-export the RTDOSE'.  QA dose65: one cut
    between its header's elements after its SeriesInstanceUID, before its FrameOfReferenceUID, was refused as "has no
    DoseUnits ... (DoseUnits is a mandatory tag)", after dose-features' note (check_dose_matches_ct) that it "carries
    no FrameOfReferenceUID (a mandatory tag: removed by an anonymiser or a converter?)": now truncated, first."""
    import pydicom

    from lungai.dose.read import check_dose_matches_ct, dose_folder_files, plan_dose_files, read_rtdose

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    good = write_rtdose(dose, tmp_path / "good.dcm")
    assert plan_dose_files([good])[0] == [good] and read_rtdose(good).GetSize() == (10, 10, 6)
    folder = tmp_path / "plan"
    folder.mkdir()
    bad = folder / "RD.cut.dcm"
    data = good.read_bytes()
    if cut == "half":
        bad.write_bytes(data[:len(data) // 2])
    elif cut == "header":                                   # cut before the PixelData element: no pixel data at all
        bad.write_bytes(data[:data.index(b"\xe0\x7f\x10\x00")])
    elif cut == "before_frame":                             # between its SeriesInstanceUID and FrameOfReferenceUID
        bad.write_bytes(data[:data.index(b"\x20\x00\x52\x00", data.index(b"\x20\x00\x0e\x00", 132))])
    else:                                                   # a whole file whose PixelData is short of the header's
        ds = pydicom.dcmread(good)
        ds.PixelData = ds.PixelData[:len(ds.PixelData) // 3 * 2]
        ds.save_as(bad)
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), str(ct))
    for check in (lambda: plan_dose_files([bad]), lambda: dose_folder_files(folder), lambda: read_dose(bad),
                  lambda: read_rtdose(bad), lambda: check_dose_matches_ct(bad, ct)):
        with pytest.raises(InputError, match=r"RD\.cut\.dcm (is truncated|holds no pixel data)") as err:
            check()
        assert err.value.fix == "re-export the RTDOSE from the planning system"


@pytest.mark.parametrize("cut", ["pixel_data", "before_frame"])
def test_a_truncated_copy_of_an_rtdose_beside_the_intact_one_is_left_out(tmp_path, cut):
    """QA dose65: an RTDOSE folder holding the plan's RTDOSE and a copy of it cut short (an interrupted copy: inside
    its pixel data, or between its header's elements before its FrameOfReferenceUID) was refused by dose-features
    --dose FOLDER as "the RTDOSEs a.dcm and b_copy.dcm have the same SOPInstanceUID ... but hold different doses",
    fix "keep the RTDOSE of the current plan only" - which of the two is not said (lungai cohort's scan leaves the cut
    file out and uses the intact one).  Now the intact copy is used, the damaged one left out with a note naming it
    (as a CT slice's damaged copy), whichever comes first."""
    from lungai.dose.read import dose_folder_files, plan_dose_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    folder = tmp_path / "plan"
    folder.mkdir()
    good = write_rtdose(dose, folder / "a.dcm")
    data = good.read_bytes()
    bad = folder / "b_copy.dcm"
    bad.write_bytes(data[:-500] if cut == "pixel_data" else
                    data[:data.index(b"\x20\x00\x52\x00", data.index(b"\x20\x00\x0e\x00", 132))])
    for order in ([good, bad], [bad, good]):
        files, note = plan_dose_files(order)
        assert files == [good], (order, files)
        assert "b_copy.dcm left out: a damaged copy of a.dcm (same SOPInstanceUID" in note, note
        assert "is truncated" in note or "holds no pixel data" in note, note
        assert "delete the damaged one from the export" in note, note
    files, note = dose_folder_files(folder)
    assert files == [good] and "b_copy.dcm left out: a damaged copy of a.dcm" in note, note
    assert np.allclose(sitk.GetArrayFromImage(read_dose(folder)), sitk.GetArrayFromImage(dose), atol=1e-3)
    other = folder / "c_other.dcm"               # a whole copy holding another dose: still refused, naming both
    with_summation_type(good, other, "PLAN", factor=0.5, uid=pydicom_uid(good))
    with pytest.raises(InputError, match=r"a\.dcm and c_other\.dcm have the same SOPInstanceUID .* hold different"):
        plan_dose_files([good, bad, other])


@pytest.mark.parametrize("reference", [False, True])
def test_an_rtdose_cut_short_before_its_sop_instance_uid_is_named(tmp_path, reference):
    """QA dose66: an RTDOSE cut short in its header before its SOPInstanceUID (an interrupted copy: no Modality either)
    was no RTDOSE to --dose FOLDER: beside the intact copy it was left out without a word, beside another RTDOSE too
    (the dose of a beam or plan lost without a word), and alone "FOLDER holds no RTDOSE file" - the broken file never
    named.  Its SOPClassUID / file meta say RT Dose Storage: a copy of the intact RTDOSE (the file meta's
    SOPInstanceUID) is left out with the damaged-copy note, any other is refused as cut short, naming it, fix
    re-export - as is an RTDOSE beside the plan dose cut after its Modality, which was "has no DoseUnits"."""
    from pathlib import Path
    from types import SimpleNamespace

    import pydicom

    from lungai.dose.read import dose_folder_files

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    good = write_rtdose(dose, tmp_path / "a.dcm")
    header = pydicom.dcmread(good, stop_before_pixels=True)
    ref = (SimpleNamespace(PatientID=header.PatientID, FrameOfReferenceUID=header.FrameOfReferenceUID, name="CT",
                           other="CT") if reference else None)
    other = with_summation_type(good, tmp_path / "other.dcm", "PLAN", factor=0.5)   # another RTDOSE (its own UID)

    def cut(src, tag: bytes, keep: int = 2) -> bytes:           # the file ends just inside the element ``tag``
        data = Path(src).read_bytes()
        return data[:data.index(tag, 132 + 12) + keep]

    sop, units = b"\x08\x00\x18\x00", b"\x04\x30\x02\x00"      # (0008,0018) SOPInstanceUID, (3004,0002) DoseUnits

    def folder(name, files: dict):
        f = tmp_path / name
        f.mkdir()
        for file_name, data in files.items():
            (f / file_name).write_bytes(data)
        return f

    copy = folder("copy", {"a.dcm": good.read_bytes(), "b_copy.dcm": cut(good, sop)})
    files, note = dose_folder_files(copy, ref)
    assert [f.name for f in files] == ["a.dcm"], files
    assert note and "b_copy.dcm left out: a damaged copy of a.dcm (same SOPInstanceUID" in note, note
    assert "delete the damaged one from the export" in note, note
    for name, files in (("alone", {"b.dcm": cut(good, sop)}),
                        ("beside", {"a.dcm": good.read_bytes(), "c.dcm": cut(other, sop)}),
                        ("units", {"a.dcm": good.read_bytes(), "c.dcm": cut(other, units, keep=0)})):
        broken = next(n for n in files if n != "a.dcm")
        with pytest.raises(InputError) as err:
            dose_folder_files(folder(name, files), ref)
        assert f"{broken} holds no pixel data (PixelData); it is truncated" in err.value.problem, (name, str(err.value))
        assert err.value.fix == "re-export the RTDOSE from the planning system", (name, err.value.fix)


def pydicom_uid(path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.mark.parametrize("broken, message", [
    ("no_iop", r"has no ImageOrientationPatient \(0020,0037\)"),
    ("zero_iop", r"has ImageOrientationPatient \(0020,0037\) 0/0/0/0/0/0: not two orthogonal unit"),
    ("skew_iop", r"has ImageOrientationPatient \(0020,0037\) 1/0/0/1/0/0: not two orthogonal unit"),
    ("short_iop", r"has ImageOrientationPatient \(0020,0037\) .*, not 6 numbers"),
    ("no_spacing", r"has no PixelSpacing \(0028,0030\)"),
    ("zero_spacing", r"has PixelSpacing \(0028,0030\) 0/2: a spacing that is not positive"),
    ("no_ipp", r"has no ImagePositionPatient \(0020,0032\)")])
def test_an_rtdose_with_a_broken_grid_header_is_refused_naming_the_tag(tmp_path, capsys, broken, message):
    """QA: an RTDOSE without ImageOrientationPatient / PixelSpacing / ImagePositionPatient, or with an
    ImageOrientationPatient of zeros, gave a Python AttributeError or SimpleITK's "Bad direction, determinant is 0"
    from lungai dose-features.  The grid header is checked (tags present, two orthogonal unit direction cosines, a
    positive spacing) when the dose is read and, from the header alone, when the dose files are chosen (lungai
    cohort's planning): an InputError naming the file and the tag, the fix 're-export the RTDOSE'."""
    import pydicom

    from lungai.cli import main
    from lungai.dose.read import dose_folder_files, plan_dose_files, read_rtdose

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    good = write_rtdose(dose, tmp_path / "good.dcm")
    folder = tmp_path / "plan"
    folder.mkdir()
    ds = pydicom.dcmread(good)
    if broken == "no_iop":
        del ds.ImageOrientationPatient
    elif broken == "zero_iop":
        ds.ImageOrientationPatient = [0] * 6
    elif broken == "skew_iop":
        ds.ImageOrientationPatient = [1, 0, 0, 1, 0, 0]
    elif broken == "short_iop":
        ds.ImageOrientationPatient = [1, 0, 0, 0]
    elif broken == "no_spacing":
        del ds.PixelSpacing
    elif broken == "zero_spacing":
        ds.PixelSpacing = [0, 2]
    else:
        del ds.ImagePositionPatient
    bad = folder / "RD.bad.dcm"
    ds.save_as(bad)
    beam = with_summation_type(good, tmp_path / "beam.dcm", "BEAM")
    beam_bad = with_summation_type(bad, tmp_path / "beam_bad.dcm", "BEAM")
    for check in (lambda: plan_dose_files([bad]), lambda: plan_dose_files([beam, beam_bad]),
                  lambda: dose_folder_files(folder), lambda: read_dose(bad), lambda: read_rtdose(bad)):
        with pytest.raises(InputError, match=r"(RD\.bad|beam_bad)\.dcm " + message) as err:
            check()
        assert err.value.fix.startswith("re-export the RTDOSE")
    ct = sitk.Cast(_grid(size=(12, 12, 8), origin=(-6.0, -6.0, -4.0)), sitk.sitkInt16) - 1000
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct < 0, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    capsys.readouterr()
    assert main(["dose-features", "--dose", str(bad), "--ct", str(tmp_path / "ct.nii.gz"), "--lungs",
                 str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "out" / "x.csv")]) != 0
    err = capsys.readouterr().err
    assert "RD.bad.dcm" in err and "re-export the RTDOSE" in err and "Traceback" not in err, err


def _deflated(src, dst, pixel_data: bytes | None = None):
    """A copy of the DICOM file ``src`` in Deflated Explicit VR Little Endian (optionally with other PixelData)."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    if pixel_data is not None:
        ds.PixelData = pixel_data
    ds.save_as(dst, enforce_file_format=True)
    return dst


@pytest.mark.parametrize("cut", ["stream", "short_element"])
def test_a_deflated_rtdose_is_read_and_a_truncated_one_refused_naming_it(tmp_path, cut):
    """Review: a valid Deflated Explicit VR Little Endian RTDOSE was refused as 'truncated or corrupt': the pixel data
    check compared the PixelData's offset in the inflated data set with the (smaller) compressed file's size.  It is
    read as any RTDOSE by every route (file, folder, dose planning); a deflated one cut short (the deflate stream
    cut: zlib's bare 'Error -5 while decompressing data' before) or whose inflated PixelData is short of its header
    is refused with an InputError naming the file and the fix."""
    import pydicom

    from lungai.dose.read import dose_folder_files, plan_dose_files, read_rtdose

    dose = radial_dose(_grid(size=(10, 10, 6), origin=(-5.0, -5.0, -3.0)), CENTRE, 25.0, 60.0)
    plain = write_rtdose(dose, tmp_path / "plain.dcm")
    folder = tmp_path / "plan"
    folder.mkdir()
    good = _deflated(plain, folder / "RD.deflated.dcm")
    assert good.stat().st_size < plain.stat().st_size                  # really compressed
    want = sitk.GetArrayFromImage(read_rtdose(plain))
    assert plan_dose_files([good]) == ([good], None) and dose_folder_files(folder) == ([good], None)
    for read in (lambda: read_rtdose(good), lambda: read_dose(good), lambda: read_dose(folder)):
        assert np.array_equal(sitk.GetArrayFromImage(read()), want)

    bad_folder = tmp_path / "cut"
    bad_folder.mkdir()
    bad = bad_folder / "RD.cut.dcm"
    if cut == "stream":
        data = good.read_bytes()
        bad.write_bytes(data[:len(data) * 2 // 3])
    else:
        pixels = pydicom.dcmread(plain).PixelData
        _deflated(plain, bad, pixels[:len(pixels) // 3 * 2])
    for check in (lambda: plan_dose_files([bad]), lambda: dose_folder_files(bad_folder), lambda: read_dose(bad),
                  lambda: read_dose(bad_folder), lambda: read_rtdose(bad)):
        with pytest.raises(InputError, match=r"RD\.cut\.dcm is truncated or corrupt") as err:
            check()
        assert err.value.fix == "re-export the RTDOSE from the planning system"


def test_a_gtv_outside_the_dose_grid_is_named_in_the_fix_too():
    """QA: a GTV (a node above the lungs) outside the dose grid was refused with the fix "export the dose on a grid
    that covers both lungs completely" - the lungs were covered; the fix names what is not covered."""
    ct = _grid()
    dose = radial_dose(_grid(size=(60, 60, 40)), CENTRE, 25.0, 60.0)          # z -30 .. 9 mm
    lungs = sphere_mask(ct, (0.0, 0.0, -10.0), 15.0)                       # inside the dose grid
    gtv = sphere_mask(ct, (0.0, 0.0, 15.0), 6.0)                           # above it
    with pytest.raises(InputError, match="does not cover the GTV") as info:
        dose_features(dose, ct, lungs, gtv)
    assert "covers the GTV completely" in info.value.fix and "lungs" not in info.value.fix


def test_dose_unit_given_with_an_rtdose_is_said_not_silently_ignored(tmp_path, capsys):
    """QA: `dose-features --dose RD.dcm --dose-unit cGy` read the RTDOSE's own unit (right) without a word, while the
    user believed the file to be in cGy."""
    import warnings

    from lungai.errors import InputCheckNote

    dose = radial_dose(_grid(size=(10, 10, 10), origin=(-5.0, -5.0, -5.0)), CENTRE, 25.0, 60.0)
    f = write_rtdose(dose, tmp_path / "rd.dcm")
    notes: list = []
    back = read_dose(f, unit="cGy", notes=notes)
    assert len(notes) == 1 and "--dose-unit cGy is not used for an RTDOSE" in notes[0] and "DoseUnits" in notes[0]
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(read_dose(f)))   # read as before
    with pytest.warns(InputCheckNote, match="--dose-unit cGy is not used"):
        read_dose(f, unit="cGy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_dose(f)                                                        # the default: nothing said
        read_dose(tmp_path, unit="Gy")


def test_image_dose_of_raw_rtdose_pixels_names_dose_grid_scaling(tmp_path):
    """QA: a dose volume of raw RTDOSE pixel values (DoseGridScaling not applied: a 63 Gy plan stored with scaling
    0.001 holds ~63000) got the fix "pass --dose-unit cGy" (the panel's "choose Dose unit: cGy") although read as cGy
    it is 629 Gy, implausible too.  The fix now names DoseGridScaling and loading the RTDOSE itself (lungai reads the
    file with its scaling; in Slicer through the DICOM module with SlicerRT), in either unit."""
    gy = sitk.GetArrayFromImage(radial_dose(_grid(size=(24, 24, 24), spacing=(3.0, 3.0, 3.0),
                                                  origin=(-34.5, -34.5, -34.5)), CENTRE, 25.0, 62.87))
    f = _image_dose(tmp_path, "raw.nii.gz", np.round(gy / 1e-3))
    for unit in ("Gy", "cGy"):
        with pytest.raises(InputError) as err:
            read_dose(f, unit=unit)
        text = str(err.value)
        assert "DoseGridScaling" in text and "SlicerRT" in text, text
        assert "pass --dose-unit cGy" not in text
    # a cGy dose read as Gy keeps its hint (600 Gy read as Gy is 6 Gy in cGy: plausible)
    f = _image_dose(tmp_path, "cgy.nii.gz", gy * 100.0)
    with pytest.raises(InputError) as err:
        read_dose(f)
    assert "pass --dose-unit cGy" in err.value.fix and "DoseGridScaling" not in str(err.value)


@pytest.mark.shared_data
def test_real_gtv_and_lung_label_map_as_lungs_is_refused_and_its_lung_labels_give_the_numpy_mld(shared_data, tmp_path,
                                                                                                capsys):
    """LUNG1-003's label map (1 GTV-1, 2 other GTVs, 3 / 4 lungs) given whole as --lungs counted its GTVs as lung
    (MLD 8.11 instead of 8.07 Gy on a plan-like dose); it is refused, and ``#3,4`` (as docs/dicom.md) reads its lungs:
    MLD / V20 equal an independent numpy computation (linear interpolation of a dose on a coarser, shifted grid)."""
    from scipy.ndimage import map_coordinates

    from lungai.cli import main

    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct_path, labels_path = nifti / "LUNG1-003_ct.nii.gz", nifti / "LUNG1-003_labels.nii.gz"
    ct = sitk.ReadImage(str(ct_path))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    grid = sitk.Image([150, 150, 80], sitk.sitkFloat32)          # a dose grid: 3 x 3 x 3.5 mm, not the CT's voxels
    grid.SetSpacing((3.0, 3.0, 3.5))
    grid.SetOrigin(tuple(np.asarray(ct.GetOrigin()) + (20.3, 25.1, 1.7)))
    centre = ct.TransformContinuousIndexToPhysicalPoint(np.argwhere(labels == 1).mean(0)[::-1].tolist())
    dose = radial_dose(grid, centre, 120.0, 66.0)
    sitk.WriteImage(dose, str(tmp_path / "dose.nii.gz"))
    base = ["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(ct_path)]
    assert main(base + ["--lungs", str(labels_path), "--gtv", f"{labels_path}#1", "-o", str(tmp_path / "a.csv")]) == 2
    assert "holds labels 1, 2, 3, 4" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()
    assert main(base + ["--lungs", f"{labels_path}#3,4", "--gtv", f"{labels_path}#1", "-o",
                        str(tmp_path / "b.csv")]) == 0
    row = pd.read_csv(tmp_path / "b.csv").iloc[0]
    region = np.isin(labels, (3, 4)) & (labels != 1)
    k, j, i = np.nonzero(region)
    mm = np.asarray(ct.GetOrigin()) + np.stack([i, j, k], 1) * np.asarray(ct.GetSpacing())
    idx = (mm - np.asarray(grid.GetOrigin())) / np.asarray(grid.GetSpacing())
    d = map_coordinates(sitk.GetArrayFromImage(dose).astype(float), idx[:, ::-1].T, order=1)
    assert row["dose_mld_gy"] == pytest.approx(d.mean(), rel=1e-5)
    assert row["dose_v20_pct"] == pytest.approx(100.0 * np.mean(d >= 20.0), abs=1e-3)



@pytest.mark.parametrize("cmd, required", [
    ("dose-features", ["--dose", "d.nii.gz", "--ct", "ct.nii.gz"]),
    ("radiomics", ["--image", "ct.nii.gz"]),
    ("dicom-export", ["--ct", "ct_dicom"])])
def test_two_lungs_options_are_refused_not_the_last_one_taken(cmd, required, tmp_path, capsys):
    """QA (rad53): ``dose-features --lungs right_only.nii.gz --lungs left_only.nii.gz`` used the left lung alone
    (argparse keeps the last value): MLD 0.82 Gy instead of 3.81 Gy on LUNG1-002, exit 0.  A second --lungs is
    refused, naming the fix (one mask holding both lungs), before anything is read or written."""
    from lungai.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main([cmd, *required, "--lungs", "right_only.nii.gz", "--lungs", "left_only.nii.gz", "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --lungs: given more than once" in err and "one mask holding both lungs" in err, err
    assert not out.exists()


def test_one_lung_mask_of_another_label_value_is_warned(small_phantom, tmp_path, capsys):
    """QA: a mask of one lung with label 255 (dcmrtstruct2nii writes each structure so: mask_Lung-Left.nii.gz) given
    as dose-features --lungs was read as a binary lung mask and gave the MLD / V20 of that one lung without a word
    (LUNG1-003's left lung: MLD 10.20 Gy instead of 5.65 Gy for both lungs); label 1 / 2 were warned.  It is one lung
    when it spans less than both lungs' width (lungai.lungs.check.lung_map_notes), warned as such."""
    from lungai.lungs.check import lung_map_notes
    from lungai.synthetic import labels as L

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")
    big = (4.0, 4.0, 15.0)   # the phantom's lungs at an adult's size

    def image(a):
        im = sitk.GetImageFromArray(a.astype(np.uint8))
        im.CopyInformation(small_phantom.ct)
        im.SetSpacing(big)
        return im

    left_255 = image(np.where(lungs["left"], 255, 0))
    notes = lung_map_notes(left_255)
    assert len(notes) == 1 and "holds one label (255)" in notes[0] and "of one lung, not of both" in notes[0]
    assert lung_map_notes(image(np.where(lungs["left"] | lungs["right"], 255, 0))) == []   # both lungs: no note
    assert lung_map_notes(left_255, label_map=False) == []                                  # an RTSTRUCT structure
    # dose-features says it on the terminal (the metrics are still written)
    _dose_features_of_lungs(small_phantom.ct, big, left_255, tmp_path)
    assert "warning: the lung mask holds one label (255)" in capsys.readouterr().out


def test_dose_features_says_the_gtv_is_lungais_automatic_tumour(small_phantom, tmp_path):
    """dose.csv's ``masks`` says a --lungs file lungai made is lungai's ("made by lungai lungs"), and the demo's
    dose.csv says its GTV is "lungai automatic tumour (lungai segment)"; `--gtv out/tumor.nii.gz` (lungai segment's
    tumour, unchanged) was said "minus GTV: tumor.nii.gz" alone - in dose.csv and the SR's Dose comment, a clinician's
    GTV and an automatic tumour (perhaps flagged for review) read the same.  A tumour file of the user's, or lungai's
    edited since, stays named by its file alone."""
    from lungai.cli import main
    from lungai.dose.features import AUTOMATIC_TUMOUR
    from lungai.io.outputs import record_output_file

    lung_img, gtv_img = phantom_lungs_and_gtv(small_phantom, sides=True)
    seg_out = tmp_path / "seg"
    seg_out.mkdir()
    paths = {"ct": tmp_path / "ct.nii.gz", "lungs": tmp_path / "lungs.nii.gz", "gtv": seg_out / "tumor.nii.gz",
             "dose": tmp_path / "dose.nii.gz"}
    sitk.WriteImage(small_phantom.ct, str(paths["ct"]))
    sitk.WriteImage(lung_img, str(paths["lungs"]))
    sitk.WriteImage(gtv_img, str(paths["gtv"]))
    sitk.WriteImage(treatment_dose(gtv_img), str(paths["dose"]))
    out = tmp_path / "dose.csv"
    args = ["dose-features", "--dose", str(paths["dose"]), "--ct", str(paths["ct"]), "--lungs", str(paths["lungs"]),
            "--gtv", str(paths["gtv"]), "-o", str(out)]
    assert main(args) == 0
    assert pd.read_csv(out).loc[0, "masks"].endswith("; minus GTV: tumor.nii.gz")      # the user's file
    record_output_file(paths["gtv"], "segment")          # as `lungai segment -o seg/` records what it wrote
    assert main(args) == 0
    masks = pd.read_csv(out).loc[0, "masks"]
    assert masks.endswith(f"; minus GTV: tumor.nii.gz ({AUTOMATIC_TUMOUR.split(' (')[0]}; made by lungai segment)"), \
        masks
    assert main([*args[:-2], "--gtv", f"{paths['gtv']}#1", "-o", str(out)]) == 0    # a label chosen: the same file
    assert "made by lungai segment" in pd.read_csv(out).loc[0, "masks"]
    sitk.WriteImage(gtv_img, str(paths["gtv"]))         # saved anew (edited): the user's
    st = paths["gtv"].stat()
    os.utime(paths["gtv"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert main(args) == 0
    assert pd.read_csv(out).loc[0, "masks"].endswith("; minus GTV: tumor.nii.gz")


def test_a_dose_path_that_does_not_exist_is_refused_before_any_input_is_read(small_phantom, tmp_path, monkeypatch,
                                                                             capsys):
    """QA rad69 (LUNG1-003's DICOM CT + RTSTRUCT, `--dose RD_gyX.dcm`, a typo): dose-features first printed "note: the
    dose RD_gyX.dcm could not be checked against the CT ...: the dose is not DICOM, so it carries no PatientID ...",
    then read the CT and the masks (9.9 s) and only then said "RD_gyX.dcm does not exist".  A --dose that is not
    there is refused first, as any argument, before any input is read and with no note about the dose."""
    import lungai.dose
    import lungai.io
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "export", small_phantom, dose=None)

    def not_now(*args, **kwargs):
        raise AssertionError("an input read before the --dose path was checked")

    monkeypatch.setattr(lungai.io, "read_ct", not_now)
    monkeypatch.setattr(lungai.dose, "check_dose_matches_ct", not_now)
    out = tmp_path / "out" / "dose.csv"
    for dose in (tmp_path / "RD_typo.dcm", tmp_path / "no_such_folder"):
        assert main(["dose-features", "--dose", str(dose), "--ct", str(study["ct"]), "--rtstruct",
                     str(study["rtstruct"]), "-o", str(out)]) == 2
        said = capsys.readouterr()
        assert f"--dose {dose} does not exist" in said.err and "check the --dose path" in said.err, said.err
        assert "could not be checked" not in said.out + said.err and "not DICOM" not in said.out + said.err
        assert not out.parent.exists()      # nothing made
