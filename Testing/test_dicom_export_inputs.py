"""dicom-export inputs and read-back (QA on LUNG1-003): lungai's own multi-segment SEG as a mask input, units of the
SR's radiomic features, a NIfTI CT, a multi-label tumour mask, a radiomics table of another mask.

All on a synthetic DICOM RT export (Testing/dicom_helpers.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from dicom_helpers import array, image_like, rt_export

from lungai.errors import InputError
from lungai.io import read_ct, read_mask

SHAPE = ["--image-types", "Original", "--feature-classes", "shape", "firstorder"]


def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """P1 of a synthetic export, a tumour mask and a lung label map whose right lung holds the tumour (lungai's
    convention), written as NIfTI, and their dicom-export (results.seg.dcm: overlapping segments)."""
    root = tmp_path_factory.mktemp("export")
    st = rt_export(root / "rt")["P1"]
    ct = read_ct(st["ct"])
    gtv = array(st["masks"]["GTV"]) > 0
    lab = np.zeros(gtv.shape, np.uint8)
    lab[array(st["masks"]["Lung_R"]) > 0] = 1
    lab[array(st["masks"]["Lung_L"]) > 0] = 2
    lab[gtv & (lab == 0)] = 1
    sitk.WriteImage(image_like(gtv, ct), str(root / "gtv.nii.gz"))
    sitk.WriteImage(image_like(lab, ct), str(root / "lungs.nii.gz"))
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--lungs", root / "lungs.nii.gz",
                "-o", root / "exp") == 0
    return dict(st=st, ct=ct, gtv=gtv, lab=lab, root=root, seg=root / "exp" / "results.seg.dcm")


def test_own_combined_seg_is_a_mask_input_by_role(case, tmp_path):
    st, seg = case["st"], case["seg"]
    # --tumour takes the SEG's tumour segment, --lungs its right and left lung (they overlap the tumour)
    assert _cli("radiomics", "--image", st["ct"], "--tumour", seg, "--lungs", seg, "--segments", "tumour",
                "right_lung", "left_lung", "--lung-spacing", "0", *SHAPE, "-o", tmp_path / "r.csv") == 0
    r = pd.read_csv(tmp_path / "r.csv")
    voxel = np.prod(case["ct"].GetSpacing())
    vv = r[(r.feature == "VoxelVolume")].set_index("segment").value
    assert vv["tumour"] == pytest.approx(case["gtv"].sum() * voxel)
    assert vv["right_lung"] == pytest.approx((case["lab"] == 1).sum() * voxel)
    assert vv["left_lung"] == pytest.approx((case["lab"] == 2).sum() * voxel)
    # a segment chosen by label or role after '#'
    ct = case["ct"]
    assert np.array_equal(array(read_mask(f"{seg}#tumour", ct)) > 0, case["gtv"])
    assert np.array_equal(array(read_mask(f"{seg}#role:lung_left", ct)) > 0, case["lab"] == 2)
    # the plain label map of overlapping segments: the error names the '#' choice, which works
    with pytest.raises(InputError, match="(?s)overlap .*How to fix: choose the segment\\(s\\) after '#'.*results.seg.dcm#Tumour"):
        read_mask(seg, ct)
    with pytest.raises(InputError, match="has no segment 'GTV-9'; its segments: Tumour, Right lung, Left lung"):
        read_mask(f"{seg}#GTV-9", ct)


def test_seg_without_the_role_is_an_error_naming_the_segment_choice(case, tmp_path):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    st, ct = case["st"], case["ct"]
    masks = {"Segment_1": st["masks"]["GTV"], "Segment_2": st["masks"]["Lung_R"]}
    path = write_seg(masks, ct_reference(st["ct"], image=ct), tmp_path / "s.seg.dcm",
                     roles={"Segment_1": "gtv", "Segment_2": "lung_right"})
    assert _cli("radiomics", "--image", st["ct"], "--tumour", path, *SHAPE, "-o", tmp_path / "x.csv") == 2
    assert _cli("radiomics", "--image", st["ct"], "--tumour", f"{path}#Segment_1", "--segments", "tumour", *SHAPE,
                "-o", tmp_path / "y.csv") == 0
    with pytest.raises(InputError, match="(?s)no segment of s.seg.dcm has role 'gtv'.*How to fix: choose the segment by "
                                         "its label after '#', e.g. s.seg.dcm#Segment_1"):
        read_mask(path, ct, select="role:gtv")


def test_sr_radiomic_features_have_ucum_units(case, tmp_path):
    from lungai.dicom.sr import feature_unit, read_sr

    st, root = case["st"], case["root"]
    assert _cli("radiomics", "--image", st["ct"], "--tumour", root / "gtv.nii.gz", "--segments", "tumour", *SHAPE,
                "-o", tmp_path / "r.csv") == 0
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 0
    t = read_sr(tmp_path / "e" / "measurements.sr.dcm")["Tumour"]
    units = {k.split("_", 2)[-1]: u for k, (_, u) in t.items()}
    assert units["MeshVolume"] == units["VoxelVolume"] == "mm3" and units["SurfaceArea"] == "mm2"
    assert units["Maximum3DDiameter"] == units["MajorAxisLength"] == "mm" and units["SurfaceVolumeRatio"] == "/mm"
    assert units["Sphericity"] == units["Elongation"] == "1"
    for hu in ("Mean", "Median", "Minimum", "Maximum", "10Percentile", "90Percentile", "Range", "InterquartileRange",
               "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation", "RootMeanSquared"):
        assert units[hu] == "[hnsf'U]", hu
    for no_unit in ("Energy", "TotalEnergy", "Entropy", "Skewness", "Kurtosis", "Uniformity", "Variance"):
        assert units[no_unit] == "1", no_unit
    assert feature_unit("log-sigma-2-0-mm-3D", "firstorder", "Mean") == "1"     # a filtered image is not in HU
    assert feature_unit("original", "glcm", "JointAverage") == "1"
    assert feature_unit("original", "firstorder", "stat_mean") == "HU" and feature_unit("original", "shape", "morph_volume") == "mm3"


def test_dicom_export_refuses_a_nifti_ct(case, tmp_path, capsys):
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case["ct"], str(nifti))
    assert _cli("dicom-export", "--ct", nifti, "--tumour", case["root"] / "gtv.nii.gz", "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "ct.nii.gz is not a DICOM series folder" in err and "a NIfTI / NRRD / MHA CT has none" in err
    assert "How to fix: give the folder of the CT's DICOM series" in err


def test_dicom_export_refuses_a_multi_label_tumour_mask(case, tmp_path, capsys):
    from lungai.dicom.seg import read_seg

    labels = case["lab"].copy()
    labels[case["gtv"]] = 3                      # GTV + lungs in one map, like LUNG1-003_labels.nii.gz
    sitk.WriteImage(image_like(labels, case["ct"]), str(tmp_path / "labels.nii.gz"))
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", tmp_path / "labels.nii.gz",
                "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "--tumour labels.nii.gz holds 3 labels (1, 2, 3)" in err and "--tumour labels.nii.gz#1" in err
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{tmp_path / 'labels.nii.gz'}#3",
                "-o", tmp_path / "e") == 0
    assert np.array_equal(array(read_seg(tmp_path / "e" / "results.seg.dcm", case["ct"])["Tumour"]) > 0, case["gtv"])


def test_dicom_export_refuses_radiomics_of_another_mask(case, tmp_path, capsys):
    st, root = case["st"], case["root"]
    assert _cli("radiomics", "--image", st["ct"], "--tumour", root / "lungs.nii.gz#2", "--segments", "tumour",
                "--image-types", "Original", "--feature-classes", "shape", "-o", tmp_path / "r.csv") == 0
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    voxel_ml = np.prod(case["ct"].GetSpacing()) / 1000
    assert "was computed on another tumour mask: its tumour VoxelVolume is " \
           f"{(case['lab'] == 2).sum() * voxel_ml:.2f} ml, the exported tumour's volume " \
           f"{case['gtv'].sum() * voxel_ml:.2f} ml" in err
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


def test_lungs_of_a_label_map_take_the_right_and_the_left_label(case, tmp_path, capsys):
    """--lungs FILE#R,L: a label map of GTV 1, right lung 3, left lung 4 gives right = 3, left = 4 (1 / 2 of a lung
    label map); one label (#4, the left lung) is refused, it would be taken as the right lung."""
    from lungai.dicom.masks import mask_input
    from lungai.dicom.seg import read_seg

    st, ct, lab, gtv = case["st"], case["ct"], case["lab"], case["gtv"]
    labels = np.zeros(lab.shape, np.uint8)
    labels[lab == 1] = 3
    labels[lab == 2] = 4
    labels[gtv] = 1
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(image_like(labels, ct), str(path))
    lungs = array(mask_input(f"{path}#3,4", ct, lungs=True))
    assert np.array_equal(lungs == 1, labels == 3) and np.array_equal(lungs == 2, labels == 4)
    assert np.array_equal(array(mask_input(f"{path}#4, 3", ct, lungs=True)) == 1, labels == 4)   # as given
    for bad, why in (("4", "needs the right and the left lung"), ("3,4,1", "needs the right and the left lung"),
                     ("3,9", "has no label '9'"), ("4,4", "the same label")):
        with pytest.raises(InputError, match=f"(?s){why}.*How to fix: give the right lung's label, then the left "
                                             f"lung's: --lungs labels.nii.gz#R,L .*its labels: 1, 3, 4"):
            mask_input(f"{path}#{bad}", ct, lungs=True)
    assert np.array_equal(array(mask_input(f"{path}#4", ct, what="tumour")) > 0, labels == 4)   # a 0/1 mask still

    voxel = np.prod(ct.GetSpacing())
    assert _cli("radiomics", "--image", st["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#3,4", "--segments",
                "right_lung", "left_lung", "--lung-spacing", "0", *SHAPE, "-o", tmp_path / "r.csv") == 0
    vv = pd.read_csv(tmp_path / "r.csv").query("feature == 'VoxelVolume'").set_index("segment").value
    assert vv["right_lung"] == pytest.approx((labels == 3).sum() * voxel)
    assert vv["left_lung"] == pytest.approx((labels == 4).sum() * voxel)
    assert _cli("radiomics", "--image", st["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#4", "--segments",
                "right_lung", *SHAPE, "-o", tmp_path / "x.csv") == 2
    assert "--lungs labels.nii.gz#R,L" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#3,4",
                "-o", tmp_path / "e") == 0
    seg = read_seg(tmp_path / "e" / "results.seg.dcm", ct)
    assert np.array_equal(array(seg["Right lung"]) > 0, labels == 3)
    assert np.array_equal(array(seg["Left lung"]) > 0, labels == 4)
