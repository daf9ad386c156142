"""dicom-export inputs and read-back (QA on LUNG1-003): lungai's own multi-segment SEG as a mask input, units of the
SR's radiomic features, a NIfTI CT, a multi-label tumour mask, a radiomics table of another mask.

All on a synthetic DICOM RT export (Testing/dicom_helpers.py)."""

from __future__ import annotations

import re
from pathlib import Path

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
    with pytest.raises(InputError, match="(?s)overlap .*How to fix: choose what to use after '#': "
                                         "a segment by label .*results.seg.dcm#Tumour"):
        read_mask(seg, ct)
    with pytest.raises(InputError, match="has no segment 'GTV-9'; its segments: Tumour, Right lung, Left lung"):
        read_mask(f"{seg}#GTV-9", ct)


def test_seg_without_the_role_is_an_error_naming_the_segment_choice(case, tmp_path):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    st, ct = case["st"], case["ct"]
    masks = {"Segment_1": st["masks"]["GTV"], "Segment_2": st["masks"]["Lung_R"]}
    # no role by label nor by terminology code (Tissue): a SEG coded as a neoplasm / lung takes its role from the
    # code (Testing/test_seg_input_roles.py)
    path = write_seg(masks, ct_reference(st["ct"], image=ct), tmp_path / "s.seg.dcm",
                     roles={"Segment_1": None, "Segment_2": None})
    assert _cli("radiomics", "--image", st["ct"], "--tumour", path, *SHAPE, "-o", tmp_path / "x.csv") == 2
    assert _cli("radiomics", "--image", st["ct"], "--tumour", f"{path}#Segment_1", "--segments", "tumour", *SHAPE,
                "-o", tmp_path / "y.csv") == 0
    with pytest.raises(InputError, match="(?s)no segment of .*s.seg.dcm has role 'gtv'.*How to fix: choose the segment "
                                         "by its label after '#', e.g. .*s.seg.dcm#Segment_1"):
        read_mask(path, ct, select="role:gtv")


def test_selector_with_slicers_tumour_name_takes_the_one_tumour_segment(case, tmp_path):
    """QA: lungai's SEG names the tumour 'Tumour', Slicer 'Tumor'; `--tumour "results.seg.dcm#Tumor"` failed ("has no
    segment 'Tumor'").  A '#name' with no segment of that label takes the one segment of the same role, with a note
    naming it when both names are bare names of the role (Tumor / GTV / GTVp -> Tumour, Lung_R -> Right lung); a name
    with no role or a qualifier (GTV-9) or a role of several segments stays an error."""
    from lungai.dicom.masks import select_segments
    from lungai.errors import InputNote

    st, seg, ct = case["st"], case["seg"], case["ct"]
    for name in ("Tumor", "GTV", "GTVp"):
        with pytest.warns(InputNote, match=f"has no segment '{name}'; using 'Tumour', its one segment of the same role"):
            assert np.array_equal(array(read_mask(f"{seg}#{name}", ct)) > 0, case["gtv"])
    with pytest.warns(InputNote, match="using 'Right lung'"):
        assert np.array_equal(array(read_mask(f"{seg}#Lung_R", ct)) > 0, case["lab"] == 1)
    assert _cli("radiomics", "--image", st["ct"], "--tumour", f"{seg}#Tumor", "--segments", "tumour", *SHAPE,
                "-o", tmp_path / "r.csv") == 0
    vv = pd.read_csv(tmp_path / "r.csv").query("feature == 'VoxelVolume'").set_index("segment").value
    assert vv["tumour"] == pytest.approx(case["gtv"].sum() * np.prod(ct.GetSpacing()))
    masks = {"GTV-1": 1, "GTV-2": 2, "Lung_R": 3}
    for name in ("Tumor", "Heart"):   # two tumour segments / no role: still the error naming the segments
        with pytest.raises(InputError, match=f"has no segment '{name}'; its segments: GTV-1, GTV-2, Lung_R"):
            select_segments(masks, name)


def _segments(names):
    """{label: a one-voxel mask} of distinct voxels, as select_segments takes a SEG's segments."""
    out = {}
    for i, name in enumerate(names):
        a = np.zeros((4, 4, 4), np.uint8)
        a.flat[i] = 1
        out[name] = sitk.GetImageFromArray(a)
    return out


# QA: a '#name' with no exact match took the one segment of the same role - a DIFFERENT GTV (another image, side,
# lobe, node, station, number) with only a note, exit 0: '#GTV_CT' used GTV_PET (35 ml instead of 12.9 ml)
@pytest.mark.parametrize("segments, name", [
    (["GTV_PET", "Lung_R"], "GTV_CT"),
    (["GTV_PET", "CT"], "GTV_CT"),
    (["GTV_L", "Lung_R"], "GTV_R"),
    (["GTV_R", "Lung_R"], "GTV_L"),
    (["GTV_rul", "Lung_R"], "GTV_lll"),
    (["GTVp", "GTVn1"], "GTVn2"),
    (["GTVp", "GTV_4R"], "GTV_10L"),
    (["GTV-1", "GTVn"], "GTVp2"),
    (["GTVp1", "Lung_R"], "GTVp2"),
    (["GTVp_PET", "Lung_R"], "GTVp_CT"),
    (["GTV_MRI", "Lung_R"], "GTV_PET"),
    (["GTV_PET", "Lung_R"], "Tumor"),        # a bare name never takes a qualified GTV either
    (["Tumour", "Lung_R"], "GTV-1"),         # nor a numbered name the bare one
])
def test_a_selector_never_takes_another_gtv_of_its_role(segments, name):
    from lungai.dicom.masks import select_segments

    with pytest.raises(InputError, match=f"(?s)has no segment '{name}'; its segments: {', '.join(segments)}.*"
                                         "never taken in its place.*How to fix: choose one of its segment labels"):
        select_segments(_segments(segments), name, source="x.seg.dcm")


def test_a_refused_selector_suggests_the_segment_of_its_role():
    from lungai.dicom.masks import select_segments

    with pytest.raises(InputError) as info:
        select_segments(_segments(["Lung_R", "GTV_PET"]), "GTV_CT", source="x.seg.dcm")
    assert info.value.fix.endswith("e.g. x.seg.dcm#GTV_PET")


@pytest.mark.parametrize("name", ["GTV", "Tumor", "GTVp"])
def test_a_tumour_selector_is_refused_beside_nodal_gtvs_saying_role_gtv_takes_them_all(name):
    """QA: '#GTV' on a SEG of GTVp and GTVn took the primary alone while role:gtv takes both."""
    from lungai.dicom.masks import select_segments

    masks = _segments(["GTVp", "GTVn", "Lung_R"] if name != "GTVp" else ["GTV", "GTVn", "Lung_R"])
    with pytest.raises(InputError, match="(?s)nodal GTVs among them.*take all the GTVs with x.seg.dcm#role:gtv"):
        select_segments(masks, name, source="x.seg.dcm")
    assert len(select_segments(masks, "role:gtv", source="x.seg.dcm")[1]) == 2


@pytest.mark.parametrize("segments, spec, lungs, used", [
    (["Tumour", "Right lung", "Left lung"], "Tumor", False, ["Tumour"]),
    (["Lung-Right", "Lung-Left", "GTV-1", "gtv-2"], "Lung_L", False, ["Lung-Left"]),
    (["Lung-Right", "Lung-Left", "GTV-1", "gtv-2"], "left lung", False, ["Lung-Left"]),
    (["Lung-Right", "Lung-Left", "GTV-1", "gtv-2"], "Lung_R", False, ["Lung-Right"]),
    (["Lung-Right", "Lung-Left", "GTV-1", "gtv-2"], "Lung_R,Lung_L", True, ["Lung-Right", "Lung-Left"]),
    (["Lungs", "GTV"], "Lungs_total", False, ["Lungs"]),
])
def test_a_bare_selector_takes_the_bare_segment_of_its_role(segments, spec, lungs, used):
    from lungai.dicom.masks import select_segments
    from lungai.errors import InputNote

    with pytest.warns(InputNote, match="its one segment of the same role"):
        assert select_segments(_segments(segments), spec, lungs=lungs, source="x.seg.dcm")[1] == used


@pytest.mark.parametrize("segments, name", [(["Tumor (2)"], "Tumor"), (["GTV (1)", "Lung_R"], "GTV")])
def test_a_selector_never_takes_a_copy(segments, name):
    from lungai.dicom.masks import select_segments

    with pytest.raises(InputError, match=f"has no segment '{name}'; its segments: {re.escape(', '.join(segments))}"):
        select_segments(_segments(segments), name, source="x.seg.dcm")


def test_the_bare_names_have_their_role():
    from lungai.dicom.roles import BARE_NAMES, role_group, structure_role

    for group, names in BARE_NAMES.items():
        for name in names:   # a lungs-minus-GTV name needs its raw '-' ("Lungs-GTV"): written with dashes
            raw = name.replace(" ", "-") if group == "lungs_minus_gtv" else name
            assert role_group(structure_role(raw)) == group, (group, name)


def test_sr_ibsi_named_features_have_their_units(case, tmp_path):
    """`lungai radiomics --params ibsi-*` names its features by IBSI tag, the family as the class (``morph``,
    ``volume``).  QA on LUNG1-003: the SR gave every one of them the unit "1" (morph_volume 1226, stat_mean -36,
    morph_diam 34: no mm3, HU, mm) - the units were looked up by the feature part only, not by the tag."""
    from lungai.dicom.sr import read_sr

    st, root = case["st"], case["root"]
    assert _cli("radiomics", "--image", st["ct"], "--tumour", root / "gtv.nii.gz", "--segments", "tumour",
                "--params", "ibsi-a", "--feature-classes", "shape", "firstorder", "-o", tmp_path / "r.csv") == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert {"morph", "stat"} <= set(table.feature_class) and "volume" in set(table.feature)   # as the SR reads them
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 0
    units = {k: u for k, (_, u) in read_sr(tmp_path / "e" / "measurements.sr.dcm")["Tumour"].items()}
    assert units["original_morph_volume"] == units["original_morph_vol_approx"] == "mm3"
    assert units["original_morph_area_mesh"] == "mm2" and units["original_morph_av"] == "/mm"
    assert units["original_morph_diam"] == units["original_morph_pca_maj_axis"] == "mm"
    for hu in ("mean", "median", "min", "max", "p10", "p90", "range", "iqr", "mad", "rmad", "rms"):
        assert units[f"original_stat_{hu}"] == "[hnsf'U]", hu
    for no_unit in ("var", "skew", "kurt", "energy"):
        assert units[f"original_stat_{no_unit}"] == "1", no_unit
    assert units["original_morph_sphericity"] == "1"


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
    path = tmp_path / "labels.nii.gz"
    assert f"--tumour {path} holds 3 labels (1, 2, 3)" in err and f"--tumour {path}#1" in err
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


def test_dicom_export_refuses_ibsi_radiomics_of_another_tumour_mask(case, tmp_path, capsys):
    """`lungai radiomics --params ibsi-*` names the tumour's volumes morph_vol_approx / morph_volume (class "morph"):
    the check that the table's tumour is the exported one looked for pyradiomics' shape VoxelVolume / MeshVolume only,
    so IBSI features of the left lung went into the SR's Tumour group without a word."""
    st, root = case["st"], case["root"]
    assert _cli("radiomics", "--image", st["ct"], "--tumour", root / "lungs.nii.gz#2", "--segments", "tumour",
                "--params", "ibsi-a", "--feature-classes", "shape", "-o", tmp_path / "r.csv") == 0
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    voxel_ml = np.prod(case["ct"].GetSpacing()) / 1000
    assert re.search(r"was computed on another tumour mask: its tumour morph_vol_approx is [0-9.]+ ml, the exported "
                     rf"tumour's volume {case['gtv'].sum() * voxel_ml:.2f} ml", err), err
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


def test_dicom_export_refuses_radiomics_of_other_lungs(case, tmp_path, capsys):
    """The radiomics table's right / left lung features go into the SR group of the exported lung segment, so they
    must be of that lung.  QA on LUNG1-003: radiomics of the RTSTRUCT's lungs (right lung VoxelVolume 2187 ml)
    exported with another lung map went into the SR's "Right lung" group of a 213 ml segment, without a word (only
    the tumour's volume was checked)."""
    st, root, lab = case["st"], case["root"], case["lab"]
    assert _cli("radiomics", "--image", st["ct"], "--lungs", root / "lungs.nii.gz", "--segments", "right_lung",
                "left_lung", *SHAPE, "-o", tmp_path / "r.csv") == 0
    cut = lab.copy()
    slices = np.flatnonzero((lab == 1).any(axis=(1, 2)))
    cut[slices[len(slices) // 2:]] = np.where(cut[slices[len(slices) // 2:]] == 1, 0, cut[slices[len(slices) // 2:]])
    sitk.WriteImage(image_like(cut, case["ct"]), str(tmp_path / "cut.nii.gz"))    # the upper half of the right lung
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", tmp_path / "cut.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    voxel_ml = np.prod(case["ct"].GetSpacing()) / 1000
    assert re.search(r"the radiomics table was computed on another right lung mask: its right_lung VoxelVolume is "
                     rf"[0-9.]+ ml, the exported right lung's volume {(cut == 1).sum() * voxel_ml:.2f} ml", err), err
    assert "lungai radiomics --lungs with the same mask" in err
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
    # the radiomics of the exported lungs go into the groups of their segments
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", root / "lungs.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 0
    from lungai.dicom.sr import read_sr

    sr = read_sr(tmp_path / "e" / "measurements.sr.dcm")
    assert "original_shape_VoxelVolume" in sr["Right lung"] and "original_shape_VoxelVolume" in sr["Left lung"]


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
                                             f"lung's: --lungs {re.escape(str(path))}#R,L .*its labels: 1, 3, 4"):
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
    assert f"--lungs {path}#R,L" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#3,4",
                "-o", tmp_path / "e") == 0
    seg = read_seg(tmp_path / "e" / "results.seg.dcm", ct)
    assert np.array_equal(array(seg["Right lung"]) > 0, labels == 3)
    assert np.array_equal(array(seg["Left lung"]) > 0, labels == 4)


def test_dicom_export_refuses_a_lung_map_of_other_labels_and_warns_on_labels_that_are_no_lungs(case, tmp_path, capsys):
    """QA on LUNG1-003: --lungs labels.nii.gz (1 GTV-1, 2 other GTVs, 3 / 4 lungs) was exported as "Right lung" =
    GTV-1, "Left lung" = the other GTVs, without a word.  A map with labels other than 1 and 2 is refused (the labels
    found and FILE#R,L named; no output folder left); labels chosen that are not lungs are exported with warnings
    (lungai.lungs.check)."""
    ct, lab, gtv = case["ct"], case["lab"], case["gtv"]
    labels = np.zeros(lab.shape, np.uint8)
    labels[lab == 1] = 3
    labels[lab == 2] = 4
    labels[gtv] = 1
    labels[np.roll(gtv, 6, axis=2) & ~gtv] = 2                  # "other GTVs"
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(image_like(labels, ct), str(path))
    out = tmp_path / "e"
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{path}#1", "--lungs", path, "-o", out) == 2
    err = capsys.readouterr().err
    assert f"--lungs {path} holds labels 1, 2, 3, 4, not only 1 (right lung) and 2 (left lung)" in err
    assert f"--lungs {path}#R,L (e.g. --lungs {path}#3,4)" in err and not out.exists()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#1,2",
                "-o", out) == 0
    printed = capsys.readouterr().out
    assert "warning: the lungs total" in printed and "less than 1000 ml" in printed
    assert "warning: segment 'right_lung' does not look like a lung" in printed
    assert "are labels 1 and 2 of --lungs (labels.nii.gz#1,2) really the right and the left lung?" in printed
    # the hint names the labels the user chose (it said "labels 1 and 2" of --lungs FILE#2,3)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{path}#1", "--lungs", f"{path}#2,3",
                "-o", tmp_path / "e23") == 0
    printed = capsys.readouterr().out
    assert "are labels 2 and 3 of --lungs (labels.nii.gz#2,3) really the right and the left lung?" in printed
    assert "labels 1 and 2" not in printed
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", f"{path}#3,4", "-o", tmp_path / "ok") == 0
    assert "warning" not in capsys.readouterr().out


def test_dicom_export_refuses_a_result_json_of_another_mask(case, tmp_path, capsys):
    """QA: --tumour HAND.nii.gz --result result.json of a segment run on another mask exported the hand contour as
    SlicerLungAI's (AUTOMATIC) with that mask's confidence.  result.json's tumor_volume_ml must be the mask's (5 %,
    as a radiomics table's VoxelVolume); else the export is refused (an edited mask: export it without --result)."""
    import json

    from dicom_helpers import provenance

    volume = case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000
    args = ["dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz"]
    for name, ml in (("other", volume * 0.56), ("same", volume * 1.02)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"confidence": 0.71, "needs_review": False,
                                                           "tumor_volume_ml": ml}))
    assert _cli(*args, "--result", tmp_path / "other.json", "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert f"other.json describes another tumour mask: its tumour_volume_ml is {volume * 0.56:.2f} ml, the " \
           f"exported tumour's volume {volume:.2f} ml" in err
    assert "export it without --result (as MANUAL" in err and not (tmp_path / "e").exists()
    assert _cli(*args, "--result", tmp_path / "same.json", "-o", tmp_path / "e") == 0
    assert provenance(tmp_path / "e" / "results.seg.dcm", tmp_path / "e" / "rtstruct.dcm")[0]["Tumour"] == \
        ("AUTOMATIC", "SlicerLungAI")


def test_dicom_export_of_an_empty_tumour_says_so(case, tmp_path, capsys):
    """QA: an empty tumour mask gave rc 0, nothing written, no message and an empty output folder.  Now: alone, an
    error (no folder left behind); with other results, a note that no tumour segment was written."""
    from lungai.dicom.seg import read_seg

    empty = tmp_path / "empty.nii.gz"
    sitk.WriteImage(image_like(np.zeros(case["gtv"].shape, np.uint8), case["ct"]), str(empty))
    out = tmp_path / "e"
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", empty, "-o", out) == 2
    assert "nothing to export: the tumour mask is empty" in capsys.readouterr().err and not out.exists()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", empty, "--lungs", case["root"] / "lungs.nii.gz",
                "-o", out) == 0
    assert "note: the tumour mask is empty: no SEG / RTSTRUCT segment is written for it" in capsys.readouterr().out
    assert set(read_seg(out / "results.seg.dcm", case["ct"])) == {"Right lung", "Left lung"}


def test_dicom_export_of_a_folder_without_a_dicom_ct_asks_for_the_dicom_series(case, tmp_path, capsys):
    """QA: --ct FOLDER of NIfTI files said "... or to a NIfTI/NRRD/MHA file", which dicom-export refuses."""
    folder = tmp_path / "nifti"
    folder.mkdir()
    sitk.WriteImage(case["ct"], str(folder / "ct.nii.gz"))
    assert _cli("dicom-export", "--ct", folder, "--tumour", case["root"] / "gtv.nii.gz", "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "no DICOM series found in" in err and "NIfTI/NRRD/MHA file" not in err
    assert "How to fix: point --ct to the folder that holds the CT's DICOM slices" in err
    assert not (tmp_path / "e").exists()


def test_a_binary_lung_mask_is_exported_as_both_lungs_not_the_right_lung(tmp_path, capsys):
    """Review: a binary lung mask (both lungs labelled 1) given as --lungs was exported as one segment 'Right lung' /
    RTSTRUCT 'Lung_R' (ORGAN) holding both lungs, without a word.  A map of label 1 only as wide as both lungs is one
    segment 'Lungs'; a map of the right lung alone (label 1, one lung wide) stays 'Right lung', with the warning."""
    from lungai.dicom.rtstruct import list_structures
    from lungai.dicom.seg import read_seg
    from lungai.dicom.sr import read_sr

    st = rt_export(tmp_path / "rt")["P1"]
    ct = read_ct(st["ct"])
    both = (array(st["masks"]["Lung_R"]) > 0) | (array(st["masks"]["Lung_L"]) > 0)
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    from lungai.lungs.check import ONE_LUNG_MAX_WIDTH_MM
    xs = np.nonzero(both.any(axis=(0, 1)))[0]
    assert (xs[-1] - xs[0] + 1) * ct.GetSpacing()[0] > ONE_LUNG_MAX_WIDTH_MM      # as wide as both lungs of a chest
    sitk.WriteImage(image_like(both.astype(np.uint8), ct), str(tmp_path / "binary.nii.gz"))
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", tmp_path / "binary.nii.gz", "-o", tmp_path / "e") == 0
    segs = read_seg(tmp_path / "e" / "results.seg.dcm", ct)
    assert list(segs) == ["Lungs"] and np.array_equal(array(segs["Lungs"]) > 0, both)
    assert list_structures(tmp_path / "e" / "rtstruct.dcm") == ["Lungs"]
    assert read_sr(tmp_path / "e" / "measurements.sr.dcm")["Lungs"]["Volume"][0] == pytest.approx(both.sum() * voxel_ml)
    assert "holds only the right lung" not in "".join(capsys.readouterr())
    right = array(st["masks"]["Lung_R"]) > 0
    sitk.WriteImage(image_like(right.astype(np.uint8), ct), str(tmp_path / "right.nii.gz"))
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", tmp_path / "right.nii.gz", "-o", tmp_path / "r") == 0
    assert list(read_seg(tmp_path / "r" / "results.seg.dcm", ct)) == ["Right lung"]
    assert "holds only the right lung" in "".join(capsys.readouterr())


def _binary_lungs(case, tmp_path):
    st = case["st"]
    both = (array(st["masks"]["Lung_R"]) > 0) | (array(st["masks"]["Lung_L"]) > 0)
    sitk.WriteImage(image_like(both.astype(np.uint8), case["ct"]), str(tmp_path / "binary.nii.gz"))
    return both


def test_a_body_mask_given_as_the_lungs_is_warned_of(case, tmp_path, capsys):
    """Review: a binary mask that is not lungs (a body mask: 21.7 L, mean 38 HU) went out as SEG / RTSTRUCT 'Lungs'
    without a word: only right_lung / left_lung segments were checked, the binary mask's 'lungs' segment not."""
    ct = case["ct"]
    body = array(ct) > -500
    body |= _binary_lungs(case, tmp_path)
    sitk.WriteImage(image_like(body.astype(np.uint8), ct), str(tmp_path / "body.nii.gz"))
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", tmp_path / "body.nii.gz", "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    assert "warning: segment 'lungs' does not look like the lungs" in out and "is --lungs really a mask of the lungs" in out
    # the lungs themselves: no such warning
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", tmp_path / "binary.nii.gz", "-o", tmp_path / "l") == 0
    assert "does not look like" not in capsys.readouterr().out


def test_dicom_export_refuses_a_result_json_that_is_no_lungai_segmentation(case, tmp_path, capsys):
    """Review: --tumour cohort/patients/X/tumour.nii.gz --result cohort/patients/X/result.json (the oncologist's GTV;
    no tumor_volume_ml) exported the GTV as AUTOMATIC / SlicerLungAI: the volume check returned early."""
    import json

    cohort = {"case": "P1", "patient_id": "P1", "status": "done", "notes": [],
              "provenance": {"ct": "DICOM series 1.2", "tumour": "RTSTRUCT GTV", "lungs": "RTSTRUCT Lung_R+Lung_L"}}
    (tmp_path / "cohort.json").write_text(json.dumps(cohort))
    (tmp_path / "bare.json").write_text(json.dumps({"confidence": 0.7, "needs_review": False}))
    args = ["dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz"]
    assert _cli(*args, "--result", tmp_path / "cohort.json", "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "cohort.json is a `lungai cohort` patient record" in err and "its tumour is RTSTRUCT GTV" in err
    # review: not the advice of before 4c4038e ("instead of --results DIR, give the folder's masks with --tumour")
    assert "drop --result: --results DIR alone exports the folder's tumour as the user's contour (MANUAL" in err
    assert "instead of --results DIR" not in err and not (tmp_path / "e").exists()
    assert _cli(*args, "--result", tmp_path / "bare.json", "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "it has no tumour_volume_ml" in err and not (tmp_path / "e").exists()
    assert "export the tumour without --result" in err and "drop --result: --results DIR alone" not in err


def test_a_binary_lung_seg_of_dicom_export_reads_back_as_lungs(case, tmp_path, capsys):
    """Review: dicom-export's SEG of a binary lung mask (segments Tumour, Lungs) given back as --lungs was refused
    ("no segment has role 'lung_right'"), the fix suggesting the tumour segment."""
    from lungai.dicom.masks import mask_input
    from lungai.dicom.seg import read_seg

    both = _binary_lungs(case, tmp_path)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz", "--lungs",
                tmp_path / "binary.nii.gz", "-o", tmp_path / "e") == 0
    seg = tmp_path / "e" / "results.seg.dcm"
    assert list(read_seg(seg, case["ct"])) == ["Tumour", "Lungs"]
    lungs = array(mask_input(str(seg), case["ct"], lungs=True))
    assert set(np.unique(lungs)) == {0, 1} and np.array_equal(lungs > 0, both)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", seg, "-o", tmp_path / "again") == 0
    assert list(read_seg(tmp_path / "again" / "results.seg.dcm", case["ct"])) == ["Lungs"]
    # a SEG with the tumour and the right lung only: the fix names lung segments, not the tumour
    from lungai.dicom.seg import write_seg
    from lungai.dicom.reference import ct_reference

    ref = ct_reference(case["st"]["ct"], image=case["ct"])
    one = write_seg({"Tumour": image_like(case["gtv"].astype(np.uint8), case["ct"]),
                     "Right lung": image_like((case["lab"] == 1).astype(np.uint8), case["ct"])}, ref,
                    tmp_path / "one.seg.dcm", roles={"Tumour": "gtv", "Right lung": "lung_right"})
    with pytest.raises(InputError) as exc:
        mask_input(str(one), case["ct"], lungs=True)
    assert "lung_left" in exc.value.problem and "Tumour" not in exc.value.fix and "RIGHT,LEFT" in exc.value.fix


def test_dicom_export_refuses_a_dose_csv_not_utf8_saying_how_to_fix(case, tmp_path, capsys):
    (tmp_path / "dose.csv").write_bytes("dose_mld_gy,note\n12.5,r\xe9vis\xe9\n".encode("latin-1"))
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz",
                "--dose-features", tmp_path / "dose.csv", "-o", tmp_path / "exp") == 2
    err = capsys.readouterr().err
    assert "dose CSV" in err and "is not UTF-8" in err and "Traceback" not in err


def test_dicom_export_refuses_a_result_csv_of_another_patient(case, tmp_path, capsys):
    """QA: `dicom-export --ct LUNG1-003 --dose-features other.csv` with other.csv of LUNG1-002 wrote that dose
    into LUNG1-003's SR silently.  The case of the dose, RP and radiomics CSVs must be the CT's PatientID (the
    default case of radiomics / dose-features / demo on a DICOM CT), PatientID_... (cohort's PATIENT_1), or the
    name given with dicom-export --case."""
    from lungai.dicom.sr import read_sr

    tumour = ["--tumour", case["root"] / "gtv.nii.gz"]
    csv = tmp_path / "dose.csv"
    for name, ok in (("P2", False), ("mine", False), (" p1 ", True), ("P1_1", True)):
        pd.DataFrame([{"case": name, "dose_mld_gy": 12.5}]).to_csv(csv, index=False)
        out = tmp_path / f"exp_{name.strip()}"
        assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--dose-features", csv, "-o", out) == \
            (0 if ok else 2), name
        err = capsys.readouterr().err
        if not ok:
            assert f"case '{name}', not of this CT's patient (PatientID 'P1')" in err and f"--case '{name}'" in err
            assert not out.exists()
    # the user's own case name, said to dicom-export
    assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--dose-features", csv, "--case", "P1_1",
                "-o", tmp_path / "named") == 0
    pd.DataFrame([{"case": "mine", "dose_mld_gy": 12.5}]).to_csv(csv, index=False)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--dose-features", csv, "--case", "mine",
                "-o", tmp_path / "mine") == 0
    sr = read_sr(tmp_path / "mine" / "measurements.sr.dcm")
    assert [m["dose_mld_gy"][0] for m in sr.values() if "dose_mld_gy" in m] == [pytest.approx(12.5)]
    # the RP prediction and the radiomics table the same way
    rp = tmp_path / "rp.csv"
    pd.DataFrame([{"case": "P2", "risk": 0.3, "risk_low": 0.2, "risk_high": 0.4}]).to_csv(rp, index=False)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--rp", rp, "-o", tmp_path / "rp") == 2
    assert "RP prediction CSV" in capsys.readouterr().err
    rad = tmp_path / "rad.csv"
    pd.DataFrame([{"case": "P2", "segment": "tumour", "image_type": "original", "feature_class": "shape",
                   "feature": "VoxelVolume", "value": 1.0}]).to_csv(rad, index=False)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--radiomics", rad, "-o", tmp_path / "rad") == 2
    assert "radiomics table" in capsys.readouterr().err


def test_the_srs_case_group_names_the_method_and_model_of_the_confidence(case, tmp_path):
    """QA: the SR gave the confidence without the method (ensemble / MC dropout, members or passes) or the model
    that produced it: the Case group now records them (a count and a TEXT comment)."""
    import json

    from lungai.dicom.export import measurement_groups
    from lungai.dicom.sr import read_sr, read_sr_comments

    gtv = array(read_mask(case["root"] / "gtv.nii.gz")) > 0
    volume = float(gtv.sum() * np.prod(case["ct"].GetSpacing()) / 1000.0)
    info = {"tumor_volume_ml": volume, "confidence": 0.71, "needs_review": False, "review_threshold": 0.59,
            "method": "ensemble", "members": 5, "mc_passes": 0, "model": "/models/lidc_seg"}
    (tmp_path / "result.json").write_text(json.dumps(info))
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz", "--result",
                tmp_path / "result.json", "-o", tmp_path / "e") == 0
    sr = tmp_path / "e" / "measurements.sr.dcm"
    assert read_sr(sr)["Case"]["ensemble_members"] == (5.0, "1") and "mc_dropout_passes" not in read_sr(sr)["Case"]
    assert read_sr_comments(sr)["Case"] == "Confidence from ensemble of 5, model lidc_seg"
    mc = dict(info, method="mc-dropout", members=1, mc_passes=10, model="m1",
              model_choice={"kept": "m1"})
    case_group = next(g for g in measurement_groups({}, mc) if g.label == "Case")
    assert case_group.measurements["mc_dropout_passes"] == (10.0, "1") and "ensemble_members" not in \
        case_group.measurements
    assert case_group.comment == "Confidence from MC dropout, 10 passes, model m1"
    old = {k: v for k, v in info.items() if k not in ("method", "members", "mc_passes", "model")}   # an older lungai's
    assert next(g for g in measurement_groups({}, old) if g.label == "Case").comment is None


def test_the_srs_case_comment_says_the_models_confidence_caveat():
    """QA: the SR's Case group gave a lungai-seg-dynunet result's confidence without the model's known confidence
    caveat (result.json, console, panel and report say it): the Case comment says it, from the result.json's
    confidence_caveat or, for one written before it was recorded, from the shipped model it names."""
    from lungai.dicom.export import measurement_groups
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME, models_root

    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    info = {"tumor_volume_ml": 20.0, "confidence": 0.87, "needs_review": False, "review_threshold": 0.64,
            "method": "ensemble", "members": 3, "model": str(models_root() / DYNUNET_MODEL_NAME)}

    def comment(i):
        return next(g for g in measurement_groups({}, i) if g.label == "Case").comment

    for recorded in (dict(info, confidence_caveat=caveat), info):
        assert comment(recorded) == (f"Confidence from ensemble of 3, model {DYNUNET_MODEL_NAME}; "
                                     f"Confidence caveat: {caveat}")
    assert "caveat" not in comment(dict(info, model="/models/lidc_seg"))
    assert "caveat" not in comment(dict(info, model="/home/me/" + DYNUNET_MODEL_NAME))    # not the shipped one



def test_a_segments_radiomic_volume_is_said_to_be_of_its_radiomics_grid(tmp_path):
    """QA: the SR's right lung group held volume_ml 1596 ml (the mask on the CT's grid) beside
    original_shape_VoxelVolume 1.604e6 mm3 (its mask resampled to the 2 mm radiomics lung grid) without saying so:
    the group's comment now says which grid each is of (from the radiomics settings CSV beside the radiomics CSV)."""
    from lungai.cli.dicom import radiomics_settings_beside
    from lungai.demo.patient import KEY_FEATURES
    from lungai.dicom.export import measurement_groups

    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 1:4, 1:5] = 1
    img = sitk.GetImageFromArray(mask)
    rad = pd.DataFrame([{"case": "P", "segment": s, "image_type": "original", "feature_class": "shape",
                         "feature": "VoxelVolume", "value": 24.5} for s in ("right_lung", "tumour")])
    rad.to_csv(tmp_path / "radiomics_long.csv", index=False)
    assert radiomics_settings_beside(tmp_path / "radiomics_long.csv") is None
    pd.DataFrame([{"case": "P", "segment": "right_lung", "grid": "resampled", "spacing_mm": "2 x 2 x 2"},
                  {"case": "P", "segment": "tumour", "grid": "native", "spacing_mm": "1 x 1 x 1"}]
                 ).to_csv(tmp_path / "radiomics_settings.csv", index=False)       # as the demo writes them
    settings = radiomics_settings_beside(tmp_path / "radiomics_long.csv")
    segments = {"Right lung": (2, "lung_right", "right_lung", img), "Tumour": (1, "gtv", "tumour", img)}
    groups = {g.label: g for g in measurement_groups(segments, radiomics=rad, radiomics_settings=settings)}
    assert "on the 2 x 2 x 2 mm grid it was resampled to" in groups["Right lung"].comment
    assert groups["Right lung"].comment.startswith("volume_ml: the exported mask on the CT's grid")
    assert groups["Tumour"].comment.endswith("computed on the CT's grid")
    unknown = {g.label: g for g in measurement_groups(segments, radiomics=rad)}
    assert "not given" in unknown["Right lung"].comment
    assert measurement_groups(segments)[0].comment is None                      # no radiomics: nothing to tell apart
    # lungai radiomics' own <name>_settings.csv is found too
    settings.to_csv(tmp_path / "f_settings.csv", index=False)
    assert radiomics_settings_beside(tmp_path / "f.csv") is not None
    # the report's key features leave the lungs' resampled-grid volume out: its lung volumes (ml) are the masks'
    assert not [k for k in KEY_FEATURES if "lung" in k[0] and "Volume" in k[1]]


def test_a_features_only_groups_radiomic_volume_is_said_to_be_of_its_radiomics_grid():
    """QA (e2e): the SR's "lungs" / "lungs_minus_tumour" groups (radiomic features, no exported mask) had no grid
    comment, so their VoxelVolume on the 2 mm resampled lung grid read like a CT-grid value: they get the same
    comment (features-only wording), from the same case-matched settings rows."""
    from lungai.dicom.export import measurement_groups

    rad = pd.DataFrame([{"case": "P", "segment": s, "image_type": "original", "feature_class": "shape",
                         "feature": "VoxelVolume", "value": 24.5} for s in ("lungs", "lungs_minus_tumour")])
    settings = pd.DataFrame([{"case": "P", "segment": "lungs", "grid": "resampled", "spacing_mm": "2 x 2 x 2"},
                             {"case": "Q", "segment": "lungs_minus_tumour", "grid": "resampled",
                              "spacing_mm": "2 x 2 x 2"}])
    groups = {g.label: g for g in measurement_groups({}, radiomics=rad, radiomics_settings=settings)}
    assert groups["lungs"].comment == ("radiomic features (shape volume included) computed on the 2 x 2 x 2 mm grid "
                                       "it was resampled to")
    assert "volume_ml" not in groups["lungs"].comment                     # no exported mask: no volume_ml to name
    assert groups["lungs_minus_tumour"].comment.endswith("(not given)")   # only another patient's (Q) row
    assert all(g.comment.endswith("(not given)") for g in measurement_groups({}, radiomics=rad))


def test_the_grid_comment_is_never_from_another_patients_or_runs_settings(tmp_path):
    """Review of b32d194: the SR's grid comment could come from another patient's / run's settings: any
    radiomics_settings.csv in the radiomics CSV's folder was taken, and its rows matched by segment only.  Now only
    the radiomics CSV's own <name>_settings.csv, or radiomics_settings.csv beside the demo's radiomics_long.csv, and
    only its rows of the radiomics CSV's case; else "(not given)"."""
    from lungai.cli.dicom import radiomics_settings_beside
    from lungai.dicom.export import measurement_groups, radiomics_grid_comment

    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 1:4, 1:5] = 1
    img = sitk.GetImageFromArray(mask)
    segments = {"Right lung": (1, "lung_right", "right_lung", img)}
    rad = pd.DataFrame([{"case": "P", "segment": "right_lung", "image_type": "original", "feature_class": "shape",
                         "feature": "VoxelVolume", "value": 24.5}])
    other = pd.DataFrame([{"case": "Q", "segment": "right_lung", "grid": "resampled", "spacing_mm": "2 x 2 x 2"}])
    # another run's radiomics_settings.csv beside a user's radiomics CSV of another name: not this CSV's
    rad.to_csv(tmp_path / "mine.csv", index=False)
    other.to_csv(tmp_path / "radiomics_settings.csv", index=False)
    assert radiomics_settings_beside(tmp_path / "mine.csv") is None
    # the demo's pair, but of another patient (Q): its rows are not P's
    rad.to_csv(tmp_path / "radiomics_long.csv", index=False)
    settings = radiomics_settings_beside(tmp_path / "radiomics_long.csv")
    assert settings is not None
    comment = measurement_groups(segments, radiomics=rad, radiomics_settings=settings)[0].comment
    assert comment.endswith("(not given)") and "2 x 2 x 2" not in comment
    # rows of both patients: P's own (native) is said, not Q's (resampled) listed first
    both = pd.concat([other, pd.DataFrame([{"case": " p ", "segment": "right_lung", "grid": "native",
                                            "spacing_mm": "1 x 1 x 1"}])], ignore_index=True)
    comment = measurement_groups(segments, radiomics=rad, radiomics_settings=both)[0].comment
    assert comment.endswith("computed on the CT's grid")
    # no case to compare (a settings table without case, or a segment with no case): not given
    assert radiomics_grid_comment("right_lung", other.drop(columns="case"), {"Q"}).endswith("(not given)")
    assert radiomics_grid_comment("right_lung", other).endswith("(not given)")
    assert radiomics_grid_comment("right_lung", other, {"Q"}).endswith("2 x 2 x 2 mm grid it was resampled to")


def test_a_result_json_without_its_tumour_is_left_out_or_refused(case, tmp_path, capsys):
    """Review: `--results coh/patients/P` (a cohort patient folder: tumour.nii.gz, not tumor.nii.gz) exported the
    lungs only, but the SR's Case group carried the tumour's confidence / review flag / method.  A folder's
    result.json without a tumour mask is now left out with a note; --result given without a tumour is refused."""
    import json
    import shutil

    from lungai.dicom.sr import read_sr

    volume = float(case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000.0)
    res = tmp_path / "res"
    res.mkdir()
    shutil.copy(case["root"] / "lungs.nii.gz", res / "lungs.nii.gz")
    (res / "result.json").write_text(json.dumps({"confidence": 0.71, "needs_review": False, "tumor_volume_ml": volume,
                                                 "method": "ensemble", "members": 3, "model": "m"}))
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", res, "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    assert f"note: {res / 'result.json'} was not exported: its confidence and review flag describe lungai's " \
           "tumour" in out and "tumor.nii.gz / tumour.nii.gz" in out
    sr = tmp_path / "e" / "measurements.sr.dcm"
    assert not sr.exists() or "Case" not in read_sr(sr)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", res / "lungs.nii.gz", "--result",
                res / "result.json", "-o", tmp_path / "f") == 2
    err = capsys.readouterr().err
    assert "result.json holds the confidence and review flag of a lungai tumour segmentation, but no tumour is " \
           "exported" in err and "give its tumour mask with --tumour" in err and not (tmp_path / "f").exists()
    # the tumour in the folder, under the cohort's name: exported, AUTOMATIC, with its confidence; both names: which?
    shutil.copy(case["root"] / "gtv.nii.gz", res / "tumour.nii.gz")
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", res, "-o", tmp_path / "g") == 0
    assert read_sr(tmp_path / "g" / "measurements.sr.dcm")["Case"]["confidence"][0] == pytest.approx(0.71)
    from dicom_helpers import provenance

    assert provenance(tmp_path / "g" / "results.seg.dcm", tmp_path / "g" / "rtstruct.dcm")[0]["Tumour"] == \
        ("AUTOMATIC", "SlicerLungAI")
    shutil.copy(case["root"] / "gtv.nii.gz", res / "tumor.nii.gz")
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", res, "-o", tmp_path / "h") == 2
    assert "holds tumor.nii.gz and tumour.nii.gz: which one is the tumour?" in capsys.readouterr().err


def _results_folder(case, folder, record):
    """A results folder: P1's tumour and a result.json of it (its volume) plus ``record`` (the CT it records)."""
    import json
    import shutil

    folder.mkdir()
    shutil.copy(case["root"] / "gtv.nii.gz", folder / "tumor.nii.gz")
    volume = case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000
    (folder / "result.json").write_text(json.dumps({"confidence": 0.8, "needs_review": False,
                                                    "tumor_volume_ml": volume, **record}))
    return folder


def test_dicom_export_refuses_the_results_of_another_patients_ct(case, tmp_path, capsys):
    """QA: `dicom-export --ct <another patient's CT> --results <cohort_out>/patients/LUNG1-003` wrote RTSTRUCT / SEG
    with the other CT's PatientID and LUNG1-003's GTV and lungs, rc 0.  A result.json recording its CT (a cohort
    patient record: patient_id, inputs.ct.series_uid; lungai segment's / demo's now too: ct_record) must be the
    CT's given: else refused before anything is written, naming both.  One recording nothing is exported with a
    note that it could not be checked."""
    import pydicom

    from lungai.dicom.export import ct_record

    p1, p2 = case["st"]["ct"], case["root"] / "rt" / "P2" / "CT"
    series = str(pydicom.dcmread(sorted(p1.glob("*.dcm"))[0], stop_before_pixels=True).SeriesInstanceUID)
    assert ct_record(p1) == {"patient_id": "P1", "inputs": {"ct": {"series_uid": series}}}
    assert ct_record(case["root"] / "gtv.nii.gz") == {}
    mine = _results_folder(case, tmp_path / "mine", ct_record(p1))
    assert _cli("dicom-export", "--ct", p2, "--results", mine, "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "result.json is of patient 'P1', the CT given (--ct) of patient 'P2'" in err
    assert "results folder of this CT" in err and not (tmp_path / "e").exists()
    other = _results_folder(case, tmp_path / "other", {"patient_id": "P1", "inputs": {"ct": {"series_uid": "1.2.3"}}})
    assert _cli("dicom-export", "--ct", p1, "--results", other, "-o", tmp_path / "e") == 2
    assert f"is of CT series 1.2.3, the CT given (--ct) is series {series}" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
    assert _cli("dicom-export", "--ct", p1, "--results", mine, "-o", tmp_path / "ok") == 0
    assert "could not be checked" not in capsys.readouterr().out
    old = _results_folder(case, tmp_path / "old", {})
    assert _cli("dicom-export", "--ct", p1, "--results", old, "-o", tmp_path / "ok2") == 0
    assert "result.json records no CT (PatientID, series UID" in capsys.readouterr().out


def test_the_results_of_an_anonymised_copy_of_the_ct_say_the_ways_forward(case, tmp_path, capsys):
    """QA: an anonymised re-export of the CT (PatientID changed) was refused with --results, and with --tumour and
    --result of that folder, the fix only saying "give the results folder of this CT".  It names the ways that work:
    the mask files alone (without lungai's confidence; MANUAL unless lungai's unchanged file), or lungai segment
    re-run on this CT - and the first does."""
    import shutil

    import pydicom

    from lungai.dicom.export import ct_record

    anon = tmp_path / "anon"
    shutil.copytree(case["st"]["ct"], anon)
    for f in sorted(anon.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.PatientID = "ANON01"
        ds.save_as(f)
    segd = _results_folder(case, tmp_path / "segd", ct_record(case["st"]["ct"]))
    for extra in (["--results", segd], ["--results", segd, "--tumour", segd / "tumor.nii.gz"],
                  ["--tumour", segd / "tumor.nii.gz", "--result", segd / "result.json"]):
        assert _cli("dicom-export", "--ct", anon, *extra, "-o", tmp_path / "e") == 2, extra
        err = capsys.readouterr().err
        assert "is of patient 'P1', the CT given (--ct) of patient 'ANON01'" in err
        assert "without --results / --result" in err and "without lungai's confidence" in err \
            and "re-run `lungai segment`" in err, err
        assert not (tmp_path / "e").exists()
    assert _cli("dicom-export", "--ct", anon, "--tumour", segd / "tumor.nii.gz", "-o", tmp_path / "ok") == 0


def test_a_ct_with_slices_without_the_part10_header_is_one_series_for_the_results(case, tmp_path, capsys):
    """QA (LUNG1-003, every second slice saved without the Part-10 header - no preamble, "DICM" or file meta - as
    read_ct reads it): the CT's reference left those slices out, so `dicom-export --results` (and `lungs` /
    `segment`, after the work) failed with "holds 53 CT slices, the image has 107", result.json recorded no
    patient_id / series UID and the input's case id was the folder name "CT".  One reading rule everywhere
    (lungai.dicom.reference.read_ct_header): the reference holds every slice, the ids are read, a file that is no
    DICOM is still left out."""
    import shutil

    import pydicom
    from pydicom.dataset import FileMetaDataset

    from lungai.dicom.export import ct_record
    from lungai.dicom.reference import ct_reference, dicom_ct_header, is_dicom_folder
    from lungai.io.read import input_case_id

    ct_dir = tmp_path / "hl" / "CT"
    shutil.copytree(case["st"]["ct"], ct_dir)
    files = sorted(ct_dir.glob("*.dcm"))
    for f in files[::2]:        # the first slice among them
        ds = pydicom.dcmread(f)
        ds.file_meta, ds.preamble = FileMetaDataset(), None
        pydicom.dcmwrite(f, ds, enforce_file_format=False)
    assert pydicom.dcmread(files[0], force=True).preamble is None
    (ct_dir / "notes").write_text("not a DICOM file\n" * 20)        # no suffix: read, found no DICOM, left out
    ct = read_ct(ct_dir)
    ref = ct_reference(ct_dir, image=ct)
    assert len(ref.datasets) == len(files) == ct.GetSize()[2]
    assert len(ct_reference(sorted(ct_dir.iterdir())).datasets) == len(files)       # the files given: notes left out
    record = ct_record(case["st"]["ct"])
    assert ct_record(ct_dir) == record and record["patient_id"] == "P1"
    assert dicom_ct_header(ct_dir).PatientID == "P1" and input_case_id(ct_dir) == "P1"
    segd = _results_folder(case, tmp_path / "segd", record)
    assert _cli("dicom-export", "--ct", ct_dir, "--results", segd, "-o", tmp_path / "e") == 0, capsys.readouterr().err
    assert (tmp_path / "e" / "results.seg.dcm").exists()
    for f in files[1::2]:       # every slice without the header: still a DICOM series folder (DICOM outputs)
        ds = pydicom.dcmread(f)
        ds.file_meta, ds.preamble = FileMetaDataset(), None
        pydicom.dcmwrite(f, ds, enforce_file_format=False)
    assert is_dicom_folder(ct_dir) and input_case_id(ct_dir) == "P1"
    assert len(ct_reference(ct_dir, image=ct).datasets) == len(files)


def test_lungs_and_segment_check_the_cts_reference_before_the_work(case, tmp_path, capsys, monkeypatch):
    """QA: a CT series whose reference does not match the image read (there: slices without the Part-10 header left
    out) was refused by `lungai lungs` / `segment` only after segmenting, leaving lungs.nii.gz, or tumor.nii.gz and
    result.json, half-written.  The reference is checked right after reading the CT: refused before any work."""
    import lungai.dicom.export as export
    import lungai.lungs as lungs
    import lungai.seg.infer as infer

    def mismatch(*_a, **_k):
        raise InputError("CT holds 3 CT slices, the image has 6", "write DICOM results only for a CT read from it")

    def never(*_a, **_k):
        raise AssertionError("segmented before the CT's reference was checked")

    monkeypatch.setattr(export, "reference_for", mismatch)
    monkeypatch.setattr(lungs, "segment_lungs", never)
    monkeypatch.setattr(infer, "segment_tumour", never)
    assert _cli("lungs", case["st"]["ct"], "-o", tmp_path / "l" / "lungs.nii.gz") == 2
    assert "holds 3 CT slices" in capsys.readouterr().err
    assert not (tmp_path / "l" / "lungs.nii.gz").exists()
    assert _cli("segment", case["st"]["ct"], "-o", tmp_path / "s", "--seed-point=0,0,0") == 2
    assert "holds 3 CT slices" in capsys.readouterr().err
    assert not (tmp_path / "s" / "tumor.nii.gz").exists() and not (tmp_path / "s" / "result.json").exists()


def test_dicom_export_refuses_a_table_value_that_is_no_number_before_writing(case, tmp_path, capsys):
    """QA: `dicom-export --rp rp_bad.csv` (risk "abc") failed with "ValueError: could not convert string to float"
    after results.seg.dcm and rtstruct.dcm were written.  The RP, dose and radiomics values the SR reports are
    checked before anything is written (the file, column and value named); a whole-number dose metric (read as an
    integer) is reported, not dropped."""
    from lungai.dicom.sr import read_sr

    args = ["dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz"]
    bad = {"--rp": ({"case": "P1", "risk": "abc", "risk_low": 0.1, "risk_high": 0.5}, "'abc' in its column 'risk'"),
           "--dose-features": ({"case": "P1", "dose_mld_gy": "12,5 Gy"}, "'12,5 Gy' in its column 'dose_mld_gy'"),
           "--radiomics": ({"case": "P1", "segment": "tumour", "image_type": "original", "feature_class": "shape",
                            "feature": "VoxelVolume", "value": "x"}, "'x' in its column 'value'")}
    for option, (row, said) in bad.items():
        csv = tmp_path / "bad.csv"
        pd.DataFrame([row]).to_csv(csv, index=False)
        assert _cli(*args, option, csv, "-o", tmp_path / "e") == 2, option
        err = capsys.readouterr().err
        assert f"bad.csv holds {said}, which is not a finite number" in err, err
        assert not (tmp_path / "e").exists()
    dose = tmp_path / "dose.csv"
    pd.DataFrame([{"case": "P1", "dose_mld_gy": 12.5, "dose_v20_pct": 30, "dose_gtv_mean_gy": None}]).to_csv(
        dose, index=False)
    assert _cli(*args, "--dose-features", dose, "-o", tmp_path / "ok") == 0
    sr = read_sr(tmp_path / "ok" / "measurements.sr.dcm")
    (group,) = [m for m in sr.values() if "dose_mld_gy" in m]
    assert group["dose_v20_pct"][0] == pytest.approx(30) and "dose_gtv_mean_gy" not in group


def test_dicom_export_refuses_an_infinite_table_value_before_writing(case, tmp_path, capsys):
    """QA: a dose metric `inf` (or risk 1e400, radiomics value inf) passed the number check, then the SR failed with
    pydicom's "Cannot encode non-finite floats as DICOM decimal strings" after results.seg.dcm, rtstruct.dcm and
    uncertainty.pm.dcm were written.  Refused before anything is written, the file, column and value named; an
    empty cell or nan stays "not measured"."""
    args = ["dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz"]
    bad = {"--dose-features": ("case,dose_mld_gy,dose_v20_pct\nP1,inf,30\n", "column 'dose_mld_gy'"),
           "--rp": ("case,risk,risk_low,risk_high\nP1,1e400,0.1,0.5\n", "column 'risk'"),
           "--radiomics": ("case,segment,image_type,feature_class,feature,value\n"
                           "P1,tumour,original,shape,VoxelVolume,-inf\n", "column 'value'")}
    for option, (text, said) in bad.items():
        csv = tmp_path / "bad.csv"
        csv.write_text(text)
        assert _cli(*args, option, csv, "-o", tmp_path / "e") == 2, option
        err = capsys.readouterr().err
        assert "bad.csv holds" in err and said in err and "not a finite number" in err, err
        assert "Traceback" not in err and not (tmp_path / "e").exists()
    dose = tmp_path / "dose.csv"
    dose.write_text("case,dose_mld_gy,dose_v20_pct,dose_gtv_mean_gy\nP1,12.5,nan,\n")
    assert _cli(*args, "--dose-features", dose, "-o", tmp_path / "ok") == 0


def test_every_dicom_output_keeps_the_cts_deidentification_record(case, tmp_path, capsys):
    """QA: the RTSTRUCT dropped PatientIdentityRemoved; no output kept LongitudinalTemporalInformationModified,
    DeidentificationMethod or its code sequence.  SEG, RTSTRUCT, Parametric Map and SR copy them (one list)."""
    import shutil

    import pydicom
    from pydicom.dataset import Dataset

    keywords = ("PatientIdentityRemoved", "LongitudinalTemporalInformationModified", "DeidentificationMethod",
                "DeidentificationMethodCodeSequence")
    ct = tmp_path / "CT"
    shutil.copytree(case["st"]["ct"], ct)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic Application " \
        "Confidentiality Profile"
    for f in ct.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.PatientIdentityRemoved, ds.LongitudinalTemporalInformationModified = "YES", "MODIFIED"
        ds.DeidentificationMethod = "CTP Default"
        ds.DeidentificationMethodCodeSequence = [code]
        ds.save_as(f)
    unc = sitk.Cast(image_like(case["gtv"], case["ct"]), sitk.sitkFloat32) * 0.5
    sitk.WriteImage(unc, str(tmp_path / "u.nii.gz"))
    assert _cli("dicom-export", "--ct", ct, "--tumour", case["root"] / "gtv.nii.gz", "--lungs",
                case["root"] / "lungs.nii.gz", "--uncertainty", tmp_path / "u.nii.gz", "-o", tmp_path / "e") == 0
    written = sorted((tmp_path / "e").glob("*.dcm"))
    assert {p.name for p in written} == {"results.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm",
                                         "measurements.sr.dcm"}
    for p in written:
        ds = pydicom.dcmread(p)
        assert all(kw in ds for kw in keywords), (p.name, [k for k in keywords if k not in ds])
        assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert ds.DeidentificationMethod == "CTP Default"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_segments_result_json_records_its_ct_for_dicom_export(case, tmp_path, capsys, monkeypatch):
    """lungai segment's result.json records its DICOM CT (PatientID, series UID: as a cohort patient record), so
    `dicom-export --results` of its folder with another patient's CT is refused before anything is written.
    (The network's work is not the matter: its result is the P1 GTV.)"""
    import json

    from seg_helpers import tiny_config

    from lungai.dicom.export import ct_record
    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    volume = case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000
    gtv = image_like(case["gtv"], case["ct"])
    zero = sitk.Cast(gtv, sitk.sitkFloat32) * 0.0
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumor_volume_ml": volume, "n_components": 1, "method": "mc-dropout", "members": 1, "mc_passes": 2,
            "calibrated": False, "notes": []}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour", lambda *a, **k: SegResult(gtv, zero, zero, None, info))
    p1 = case["st"]["ct"]
    assert _cli("segment", p1, "-o", tmp_path / "out", "--model", tmp_path / "m", "--whole") == 0
    doc = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert doc["patient_id"] == "P1" and doc["inputs"] == ct_record(p1)["inputs"]
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", case["root"] / "rt" / "P2" / "CT", "--results", tmp_path / "out", "-o",
                tmp_path / "e") == 2
    assert "is of patient 'P1', the CT given (--ct) of patient 'P2'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def _columns_map(ct):
    """A map that grows along the CT's columns (x) only: 0 in the first column, 1 in the last."""
    x = np.indices(array(ct).shape)[2].astype(np.float32)
    img = sitk.GetImageFromArray(x / x.max())
    img.CopyInformation(ct)
    return img


def test_an_uncertainty_map_stored_in_another_order_is_exported_in_the_cts_order(case, tmp_path, capsys):
    """QA: `dicom-export --uncertainty` read the map as stored and checked only size, pixel spacing and origin: a map
    stored PLS (x and y swapped, same corner) was written transposed without a word, a RAS one refused with a wrong
    fix.  The map is read onto the CT's grid in the CT's order (lungai.io.on_grid, as --tumour / --lungs), so both
    are written as the CT's rows and columns."""
    import pydicom

    unc = _columns_map(case["ct"])
    assert case["ct"].GetSize()[0] == case["ct"].GetSize()[1]     # a PLS copy has the CT's size, spacing and origin
    for order in ("PLS", "RAS"):
        sitk.WriteImage(sitk.DICOMOrient(unc, order), str(tmp_path / f"u_{order}.nii.gz"))
        assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["root"] / "gtv.nii.gz",
                    "--uncertainty", tmp_path / f"u_{order}.nii.gz", "-o", tmp_path / order) == 0, \
            capsys.readouterr().err
        frames = pydicom.dcmread(tmp_path / order / "uncertainty.pm.dcm").pixel_array.astype(float)
        assert frames.shape == array(case["ct"]).shape
        assert np.ptp(frames[0][0, :]) > 0.99 and np.ptp(frames[0][:, 0]) == 0, order      # along the rows, as the CT


def test_only_the_predictive_entropy_is_exported_as_the_uncertainty_map(case, tmp_path, capsys, monkeypatch):
    """QA: `dicom-export --uncertainty` took any float map (lungai segment's probability.nii.gz) and labelled it the
    predictive entropy, in bit.  lungai's maps say what they hold (the NIfTI description; probability.nii.gz now too):
    another map is refused before anything is written, with the fix; a map with no description is refused under the
    name of lungai's other maps or with values outside 0..1 bit, else exported with a note."""
    from seg_helpers import tiny_config

    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network
    from lungai.seg.uncertainty import description

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    gtv = image_like(case["gtv"], case["ct"])
    probability = sitk.Cast(gtv, sitk.sitkFloat32) * 0.9
    entropy = sitk.Cast(gtv, sitk.sitkFloat32) * 0.4
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumor_volume_ml": case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000, "n_components": 1,
            "method": "mc-dropout", "members": 1, "mc_passes": 2, "calibrated": False, "notes": []}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour",
                        lambda *a, **k: SegResult(gtv, probability, entropy, None, info))
    out = tmp_path / "out"
    assert _cli("segment", case["st"]["ct"], "-o", out, "--model", tmp_path / "m", "--whole") == 0
    assert description(sitk.ReadImage(str(out / "probability.nii.gz"))) == "tumour probability, 1"
    capsys.readouterr()

    def refused(path, said):
        assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", out, "--uncertainty", path, "-o",
                    tmp_path / "e") == 2
        err = capsys.readouterr().err
        assert said in err and "give lungai segment's uncertainty.nii.gz with --uncertainty" in err, err
        assert not (tmp_path / "e").exists()

    refused(out / "probability.nii.gz", 'the uncertainty map probability.nii.gz holds "tumour probability, 1", '
                                        'not lungai\'s "predictive entropy of the tumour probability, bit"')
    mi = sitk.Cast(gtv, sitk.sitkFloat32) * 0.1
    mi.SetMetaData("ITK_FileNotes", "mutual information (model disagreement) of the tumour probability, bit")
    sitk.WriteImage(mi, str(tmp_path / "mi.nii.gz"))
    refused(tmp_path / "mi.nii.gz", 'holds "mutual information (model disagreement) of the tumour probability, bit"')
    (tmp_path / "old").mkdir()
    sitk.WriteImage(probability, str(tmp_path / "old" / "probability.nii.gz"))     # an older lungai's: no description
    refused(tmp_path / "old" / "probability.nii.gz", "probability.nii.gz is lungai segment's the tumour probability")
    sitk.WriteImage(sitk.Cast(gtv, sitk.sitkFloat32) * 37.0, str(tmp_path / "percent.nii.gz"))
    refused(tmp_path / "percent.nii.gz", "has values from 0 to 37, outside the 0 to 1 bit")

    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", out, "-o", tmp_path / "e") == 0
    assert "uncertainty" not in capsys.readouterr().out.replace("uncertainty.pm.dcm", "")   # its own map: no note
    sitk.WriteImage(entropy, str(tmp_path / "plain.nii.gz"))                               # no description, 0..0.4
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", out, "--uncertainty", tmp_path / "plain.nii.gz",
                "-o", tmp_path / "e2") == 0
    assert "note: the uncertainty map plain.nii.gz carries no description" in capsys.readouterr().out
    assert (tmp_path / "e2" / "uncertainty.pm.dcm").is_file()


def test_no_dicom_writer_writes_an_array_stored_in_another_order_than_the_ct(case, tmp_path):
    """The last guard before a SEG / RTSTRUCT / Parametric Map is written (reference.check_on_grid) compares the
    direction with the CT series' ImageOrientationPatient and slice order, not only size, spacing and origin: an
    image of another order (PLS: the same corner, x and y swapped; slices reversed) is refused, naming both orders."""
    from lungai.dicom.export import reference_for
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.reference import check_on_grid
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import write_seg

    ct = case["ct"]
    reference = reference_for(case["st"]["ct"], ct)
    check_on_grid(ct, reference)                                   # the CT itself passes
    gtv = image_like(case["gtv"], ct)
    pls = sitk.DICOMOrient(gtv, "PLS")
    assert pls.GetSize() == gtv.GetSize() and pls.GetOrigin() == gtv.GetOrigin()
    writers = {"SEG": lambda m: write_seg({"Tumour": m}, reference, tmp_path / "t.seg.dcm"),
               "RTSTRUCT": lambda m: write_rtstruct({"GTVp": m}, reference, tmp_path / "rt.dcm"),
               "PM": lambda m: write_parametric_map(sitk.Cast(m, sitk.sitkFloat32), reference, tmp_path / "u.pm.dcm")}
    for name, write in writers.items():
        with pytest.raises(InputError, match=r"another order than CT series .*PLS order.*LPS order"):
            write(pls)
        assert not list(tmp_path.glob("*.dcm")), name
    flipped = sitk.Flip(gtv, [False, False, True])                 # slices the other way round, origin kept
    flipped.SetOrigin(gtv.GetOrigin())
    flipped.SetDirection(np.diag([1.0, 1.0, -1.0]).flatten().tolist())
    with pytest.raises(InputError, match="another order"):
        check_on_grid(flipped, reference)
    tilted = sitk.Image(gtv)                         # rotated a little, same order: not the CT's direction either
    c, s = np.cos(0.1), np.sin(0.1)
    tilted.SetDirection([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0])
    with pytest.raises(InputError, match=r"CT series .* axes are turned 5.7 degrees against the series' "
                                         r"\(direction \(.*\) against \(1, 0, 0, 0, 1, 0, 0, 0, 1\)"):
        check_on_grid(tilted, reference)


@pytest.mark.parametrize("iop", [
    ["1.002", "0", "0", "0", "1", "0"],                 # row not of unit length
    ["0.9985", "0", "0", "0", "0.9985", "0"],           # both a little short
    ["1", "0", "0", "0.0015", "0.9999989", "0"],        # not quite perpendicular (GDCM reads the identity)
    ["0.98", "0.17", "0", "-0.17", "0.98", "0"],        # 10 degrees, rounded to 2 decimals
    ["1.0004", "0", "0", "0.0008", "0.9997", "0.0005"],  # within GDCM's tolerance: ITK orthogonalises only
    ["1.0004", "0", "0", "0", "1", "0"],                # within GDCM's tolerance, normal not of unit length
])
def test_every_dicom_writer_takes_the_ct_series_own_mask_when_its_orientation_is_not_orthonormal(tmp_path, iop):
    """QA: a CT whose ImageOrientationPatient is a little off unit length or perpendicular (rounded to 2 decimals,
    1.002) is read by ITK / GDCM onto a normalised, orthogonalised direction; check_on_grid compared its own tumour
    mask with the raw IOP and every writer refused it ("is not on the grid ... computed on this very CT series").
    The series' direction is now the one ITK reads (to 1e-9); another order or a rotation is still refused."""
    import pydicom

    from lungai.dicom.export import reference_for
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.reference import check_on_grid, series_direction
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import write_seg
    from lungai.dicom.synthetic import write_ct_series

    hu = np.full((4, 16, 16), -800, np.int16)
    hu[1:3, 5:11, 4:10] = 40
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing((2.0, 2.0, 3.0))
    img.SetOrigin((-16.0, -16.0, -50.0))
    folder = tmp_path / "ct"
    write_ct_series(img, folder)
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = iop
        ds.save_as(f)
    ct = read_ct(folder)
    reference = reference_for(folder, ct)
    assert np.allclose(series_direction(reference), np.reshape(ct.GetDirection(), (3, 3)), atol=1e-9)
    check_on_grid(ct, reference)
    mask = image_like(hu > 0, ct)
    write_seg({"Tumour": mask}, reference, tmp_path / "t.seg.dcm")
    write_rtstruct({"GTVp": mask}, reference, tmp_path / "rt.dcm")
    write_parametric_map(sitk.Cast(mask, sitk.sitkFloat32), reference, tmp_path / "u.pm.dcm")
    assert len(list(tmp_path.glob("*.dcm"))) == 3
    # QA: the SEG and the map read back onto the CT voxel for voxel (they had highdicom's copy of the raw IOP and the
    # spacing along its non-unit normal: "Frame positions do not form a regularly-spaced volume", "Non-integer scale
    # factor required"); written with the direction and spacing ITK reads the CT on
    from lungai.dicom.pmap import read_parametric_map
    from lungai.dicom.seg import read_seg

    if not np.allclose(np.reshape(ct.GetDirection(), (3, 3))[:, 2], [0, 0, 1], atol=1e-9):
        return      # slices not stacked along the normal (0.0005 rad off): read back onto the CT grid, not tested here
    for name in ("t.seg.dcm", "u.pm.dcm"):
        shared = pydicom.dcmread(tmp_path / name).SharedFunctionalGroupsSequence[0]
        assert np.allclose([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
                           np.reshape(ct.GetDirection(), (3, 3))[:, :2].T.flatten(), atol=1e-9)
        assert float(shared.PixelMeasuresSequence[0].SpacingBetweenSlices) == pytest.approx(ct.GetSpacing()[2], abs=1e-5)
    assert np.array_equal(array(read_seg(tmp_path / "t.seg.dcm", ct)["Tumour"]), hu > 0)
    assert np.array_equal(array(read_parametric_map(tmp_path / "u.pm.dcm", ct)), (hu > 0).astype(np.float32))
    seg = pydicom.dcmread(tmp_path / "t.seg.dcm")               # as another highdicom-based tool writes it: raw IOP
    shared = seg.SharedFunctionalGroupsSequence[0]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = iop
    normal = np.cross([float(v) for v in iop[:3]], [float(v) for v in iop[3:]])
    shared.PixelMeasuresSequence[0].SpacingBetweenSlices = f"{3.0 * np.linalg.norm(normal):.6g}"
    seg.save_as(tmp_path / "raw.seg.dcm")
    assert np.array_equal(array(read_seg(tmp_path / "raw.seg.dcm", ct)["Tumour"]), hu > 0)
    with pytest.raises(InputError, match="another order than CT series"):
        check_on_grid(sitk.DICOMOrient(mask, "PLS"), reference)
    tilted = sitk.Image(mask)                                      # the series' voxels, axes turned 5.7 degrees
    d = np.reshape(ct.GetDirection(), (3, 3))
    c, s = np.cos(0.1), np.sin(0.1)
    tilted.SetDirection((d @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])).flatten().tolist())
    with pytest.raises(InputError, match=r"has the size, spacing and first position of CT series .* axes are turned "
                                         r"5\.7 degrees") as exc:
        check_on_grid(tilted, reference)
    assert "this very CT series" not in exc.value.problem + exc.value.fix


def _fake_tumour_and_lungs(case, tmp_path, monkeypatch) -> list:
    """A one-member model in ``tmp_path / "m"`` and stand-ins for the networks' work: the tumour is the case's GTV,
    the lungs its lung map.  Returns the list each stand-in appends to when it runs (nothing ran: empty)."""
    from types import SimpleNamespace

    from seg_helpers import tiny_config

    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    gtv = image_like(case["gtv"], case["ct"])
    zero = sitk.Cast(gtv, sitk.sitkFloat32) * 0.0
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumor_volume_ml": case["gtv"].sum() * np.prod(case["ct"].GetSpacing()) / 1000, "n_components": 1,
            "method": "mc-dropout", "members": 1, "mc_passes": 2, "calibrated": False, "notes": []}
    ran = []
    monkeypatch.setattr("lungai.seg.infer.segment_tumour",
                        lambda *a, **k: ran.append(1) or SegResult(gtv, zero, zero, None, info))
    labels = sitk.ReadImage(str(case["root"] / "lungs.nii.gz"))
    monkeypatch.setattr("lungai.lungs.segment_lungs", lambda ct, progress=None, **_: ran.append(1) or SimpleNamespace(
        labels=labels, volumes_ml={"right_lung": 1.0, "left_lung": 1.0}, notes=[], warnings=[]))
    return ran


def test_a_patient_or_export_folder_gets_the_dicom_outputs_of_the_ct_read_below_it(case, tmp_path, capsys,
                                                                                  monkeypatch):
    """QA (LUNG1-003): `lungai segment` / `lungai lungs` of a patient folder (CT/ beside RTSTRUCT/, RTDOSE/) or of a
    DICOMDIR-style export (PT*/ST*/SE*) read the CT from its subfolder and recorded its UIDs, but wrote no SEG /
    RTSTRUCT / map / SR and said nothing: "DICOM CT" was decided by the folder's own top files.  It is decided by
    what the CT reader reads, so these get the DICOM outputs as the CT/ folder itself does.  (The networks' work is
    not the matter: the results are the P1 GTV and lung map.)"""
    import shutil

    from lungai.dicom.reference import reads_dicom_ct

    patient = case["root"] / "rt" / "P1"          # CT/, RTSTRUCT/ (two), RTDOSE/
    nested = tmp_path / "export"                  # as a DICOMDIR export lays it out
    shutil.copytree(patient / "CT", nested / "PT000000" / "ST000000" / "SE000000")
    shutil.copytree(patient / "RTSTRUCT", nested / "PT000000" / "ST000000" / "SE000001")
    assert reads_dicom_ct(patient) and reads_dicom_ct(nested) and reads_dicom_ct(patient / "CT")
    assert not reads_dicom_ct(case["root"] / "gtv.nii.gz")

    _fake_tumour_and_lungs(case, tmp_path, monkeypatch)
    out = tmp_path / "seg"
    assert _cli("segment", patient, "-o", out, "--model", tmp_path / "m", "--whole") == 0
    printed = capsys.readouterr().out
    for f in ("tumor.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm", "measurements.sr.dcm"):
        assert (out / f).is_file() and f"DICOM: {out / f}" in printed, f
    lungs_out = tmp_path / "lungs" / "lungs.nii.gz"
    assert _cli("lungs", nested, "-o", lungs_out) == 0
    printed = capsys.readouterr().out
    for f in ("lungs.seg.dcm", "lungs.rtstruct.dcm"):
        assert (lungs_out.parent / f).is_file() and f"DICOM: {lungs_out.parent / f}" in printed, f


def test_an_export_folder_as_output_and_its_series_folder_are_refused_before_any_work(case, tmp_path, capsys,
                                                                                    monkeypatch):
    """QA (LUNG1-003 as PT000000/ST000000/SE000000 in ex2): `lungai segment ex2 -o ex2` ran the model, wrote the
    NIfTI outputs and result.json, then failed "refusing to write DICOM results into the CT series folder ex2" (the
    reference's folder was the folder given, not the one holding the slices), and `-o ex2/PT000000/ST000000/
    SE000000` - the real series folder - was accepted, the DICOM files landing among the CT slices.  The reference's
    folder is the series files' folder, and it is checked before any work.  The export's top folder as -o is refused
    too (QA, later: lungai's SEG / RTSTRUCT there made `lungai cohort` refuse the patient as ambiguous)."""
    import shutil

    from lungai.dicom.reference import ct_reference

    ex = tmp_path / "ex2"
    series = ex / "PT000000" / "ST000000" / "SE000000"
    shutil.copytree(case["root"] / "rt" / "P1" / "CT", series)
    assert ct_reference(ex, image=case["ct"]).folder == series

    ran = _fake_tumour_and_lungs(case, tmp_path, monkeypatch)
    n_slices = len(list(series.iterdir()))
    assert _cli("segment", ex, "-o", ex, "--model", tmp_path / "m", "--whole") == 2
    assert f"the output folder {ex.resolve()} lies inside the DICOM export {ex.resolve()}" in capsys.readouterr().err
    assert _cli("lungs", ex, "-o", ex / "lungs.nii.gz") == 2
    assert "lies inside the DICOM export" in capsys.readouterr().err
    assert sorted(f.name for f in ex.iterdir()) == ["PT000000"]
    capsys.readouterr()
    ran.clear()
    # the series folder itself: refused before any work, nothing written there
    assert _cli("segment", ex, "-o", series, "--model", tmp_path / "m", "--whole") == 2
    assert "refusing to write DICOM results into the CT series folder" in capsys.readouterr().err
    assert _cli("lungs", ex, "-o", series / "lungs.nii.gz") == 2
    assert "refusing to write DICOM results into the CT series folder" in capsys.readouterr().err
    assert not ran and len(list(series.iterdir())) == n_slices


def test_a_folder_of_yours_as_ct_and_output_takes_a_rerun_its_own_dicom_outputs_are_no_input(case, tmp_path,
                                                                                             capsys, monkeypatch):
    """QA: `lungai segment p5 -o p5` (p5: a folder with CT/ inside and a file of the user's) worked once, then the
    same command was refused "refusing to write results into the OT/RTSTRUCT/SEG/SR folder p5 (an input: DICOM files
    of the export)": lungai's own DICOM outputs of the first run (tumor.seg.dcm, rtstruct.dcm ...) made p5 an input
    export.  Files lungai recorded as its outputs there do not count; a DICOM file of the user's there still does.
    (A p5 holding nothing but DICOM folders is an export: refused, test_the_dicom_export_keeps_only_its_files.)"""
    import shutil

    p5 = tmp_path / "p5"
    shutil.copytree(case["root"] / "rt" / "P1" / "CT", p5 / "CT")
    (p5 / "notes.txt").write_text("my notes\n", encoding="utf-8")
    # another patient's DICOM there: a folder of yours, not the CT's DICOM export (notes.txt alone would not say so)
    (p5 / "other").mkdir()
    shutil.copy(case["st"]["rtstruct"].parent / "rtstruct_of_someone.dcm", p5 / "other")
    _fake_tumour_and_lungs(case, tmp_path, monkeypatch)
    for _ in range(2):
        assert _cli("segment", p5, "-o", p5, "--model", tmp_path / "m", "--whole") == 0, capsys.readouterr().err
        assert (p5 / "tumor.seg.dcm").is_file() and (p5 / "rtstruct.dcm").is_file()
    assert _cli("lungs", p5, "-o", p5 / "lungs.nii.gz") == 0, capsys.readouterr().err
    assert _cli("lungs", p5, "-o", p5 / "lungs.nii.gz") == 0, capsys.readouterr().err
    assert _cli("segment", p5, "-o", p5, "--model", tmp_path / "m", "--whole") == 0, capsys.readouterr().err
    capsys.readouterr()
    rs = next((case["root"] / "rt" / "P1" / "RTSTRUCT").iterdir())
    shutil.copy(rs, p5 / "RS_mine.dcm")                 # the user's own DICOM file: p5 holds an input again
    assert _cli("segment", p5, "-o", p5, "--model", tmp_path / "m", "--whole") == 2
    assert "refusing to write results into the RTSTRUCT folder" in capsys.readouterr().err


def test_lungais_own_dicom_outputs_are_never_inputs(case, tmp_path, capsys):
    """QA: -o into a folder of several patients (or a patient's second study, past the climb's cap) is not refused,
    and lungai's RTSTRUCT / SEG written there made `lungai dicom-scan` list 2 RTSTRUCTs for the CT and `lungai
    cohort` refuse the patient as ambiguous.  The files a .lungai-* marker records as lungai's own outputs are left
    out by dicom-scan / cohort wherever they lie, with a note saying so."""
    import shutil

    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.discover import scan

    multi = tmp_path / "multi"
    for name in ("P1", "P2"):
        shutil.copytree(case["root"] / "rt" / name, multi / name)
    (multi / "P1" / "notes.txt").write_text("my notes\n", encoding="utf-8")

    def p1(studies):
        return next(st for st in studies if st.patient_id == "P1" and st.ct is not None)

    before = [p.name for p in p1(scan(multi)).rtstruct]
    assert _cli("dicom-export", "--ct", multi / "P1" / "CT", "--tumour", case["root"] / "gtv.nii.gz",
                "-o", multi / "out") == 0, capsys.readouterr().err
    assert (multi / "out" / ".lungai-dicom-export").is_file()
    # the same outputs in the patient's own folder (as an older lungai let it write them): left out too
    for f in (multi / "out").iterdir():
        shutil.copy2(f, multi / "P1" / f.name)
    st = p1(scan(multi))
    assert [p.name for p in st.rtstruct] == before and not st.seg
    left = [n for n in st.notes if n.startswith("left out")]
    assert len(left) == 2 and all(".lungai-dicom-export" in n and "copy one elsewhere" in n for n in left), st.notes
    capsys.readouterr()
    assert _cli("dicom-scan", multi) == 0
    out = capsys.readouterr().out
    assert "left out" in out and "RTSTRUCTs reference" not in out, out
    _, inventory = plan_cohort(multi)
    row = inventory[inventory["patient_id"].astype(str).str.startswith("P1")].iloc[0]
    assert "ambiguous" not in str(row.to_dict()), row.to_dict()


def test_the_dicom_export_keeps_only_its_files(case, tmp_path, capsys, monkeypatch):
    """QA (LUNG1-003 as E/CT + E/RTSTRUCT): `dicom-export --ct E/CT ... -o E` (or -o E/RTSTRUCT), `lungs E/CT -o
    E/lungs.nii.gz` and `segment E/CT -o E` wrote lungai's RTSTRUCT / SEG into the export; `dicom-scan E` then listed
    3 RTSTRUCTs and `lungai cohort E` refused the patient as ambiguous.  An -o inside the export (its top folder: the
    highest folder holding only DICOM files and folders of them) is refused before any work, as cohort refuses its
    own; a folder of the user's holding the export beside other files is no part of it."""
    import shutil

    from lungai.dicom.discover import scan
    from lungai.io.outputs import dicom_export_root

    user = tmp_path / "study"
    e = user / "E"
    for name in ("CT", "RTSTRUCT"):
        shutil.copytree(case["root"] / "rt" / "P1" / name, e / name)
    (user / "notes.txt").write_text("my notes\n", encoding="utf-8")
    shutil.copytree(case["root"] / "rt" / "P3", user / "P3")       # another patient's study beside E: not the export
    (e / "notes.txt").write_text("my notes\n", encoding="utf-8")    # files that are no DICOM: still the export (QA)
    (e / "Thumbs.db").write_bytes(b"\0" * 64)
    assert dicom_export_root(e / "CT") == e.resolve() and dicom_export_root(e / "RTSTRUCT") == e.resolve()
    rtstructs = sum(len(st.rtstruct) for st in scan(e))
    ran = _fake_tumour_and_lungs(case, tmp_path, monkeypatch)
    (e / "new").mkdir()                                 # an empty folder made in the export: still the export
    for args in (("segment", e / "CT", "-o", e, "--model", tmp_path / "m", "--whole"),
                 ("segment", e, "-o", e / "RTSTRUCT", "--model", tmp_path / "m", "--whole"),
                 ("segment", e / "CT", "-o", e / "new", "--model", tmp_path / "m", "--whole"),
                 ("lungs", e / "CT", "-o", e / "lungs.nii.gz"),
                 ("lungs", e, "-o", e / "new" / "lungs.nii.gz"),
                 ("dicom-export", "--ct", e / "CT", "--tumour", case["root"] / "gtv.nii.gz", "-o", e),
                 ("dicom-export", "--ct", e / "CT", "--tumour", case["root"] / "gtv.nii.gz", "-o", e / "RTSTRUCT")):
        assert _cli(*args) == 2, args
        err = capsys.readouterr().err
        assert "lies inside the DICOM export" in err and "write the results outside the export" in err, (args, err)
        assert "it holds only DICOM files of this CT's study" in err, (args, err)      # why E is taken as the export
    assert not ran and sum(len(st.rtstruct) for st in scan(e)) == rtstructs
    assert sorted(f.name for f in e.iterdir()) == ["CT", "RTSTRUCT", "Thumbs.db", "new", "notes.txt"]
    assert not any((e / "new").iterdir())
    # beside the export, in the user's folder: fine
    assert _cli("segment", e / "CT", "-o", user / "seg", "--model", tmp_path / "m", "--whole") == 0, \
        capsys.readouterr().err
    assert (user / "seg" / "rtstruct.dcm").is_file()
    assert _cli("dicom-export", "--ct", e / "CT", "--tumour", case["root"] / "gtv.nii.gz", "-o", user / "dx") == 0, \
        capsys.readouterr().err


def test_only_lungais_derived_dicom_results_are_left_out_of_a_scan(tmp_path, capsys):
    """Review of the own-outputs rule: it hid the built-in `lungai sample -o S --dicom` export (documented as an input:
    `dicom-scan S`, `cohort S`, `--dose S` found nothing), a user's DICOM copied into a folder a marker lists, and a
    corrupt .lungai-* file gave a traceback.  Only the SEG / RTSTRUCT / SR files that segment / lungs / dicom-export /
    demo recorded in their folder, still as written, are left out; a file replaced since is the user's again."""
    import shutil

    from lungai.dicom.discover import scan

    s = tmp_path / "S"
    assert _cli("sample", "-o", s, "--dicom") == 0, capsys.readouterr().err
    studies = scan(s)
    assert len(studies) == 1 and studies[0].ct is not None and len(studies[0].rtstruct) == 1
    assert len(studies[0].rtdose) == 1 and not any(n.startswith("left out") for n in studies[0].notes)
    # a user's DICOM put inside the sample's recorded dicom/ folder is seen too (a copy of the same slices: one series,
    # each copy seen and named as left out - lungai.dicom.pixeldata.drop_slice_copies)
    shutil.copytree(studies[0].ct.files[0].parent, s / "dicom" / "mine" / "CT")
    again = [st for st in scan(s) if st.ct is not None]
    assert sum(len(st.ct.files) for st in again) == len(studies[0].ct.files)
    copies = [n for st in again for n in st.notes if "left out: a copy of" in n]
    assert len(copies) == len(studies[0].ct.files) and all("mine" in n.split(" left out")[0] for n in copies)
    # a corrupt marker anywhere in the tree: no traceback, the files there are read
    (s / "dicom" / ".lungai-dicom-export").write_bytes(b"\xff\xfe\x00garbage\n")
    assert _cli("dicom-scan", s) == 0
    # lungai's RTSTRUCT recorded by dicom-export beside the patient's files is left out while as written ...
    ct = studies[0].ct.files[0].parent
    (tmp_path / "mine.csv").write_text("a table of the user's\n", encoding="utf-8")   # tmp_path: no export
    out = tmp_path / "out"
    assert _cli("dicom-export", "--ct", ct, "--tumour", f"{s / 'labels.nii.gz'}#1", "-o", out) == 0, \
        capsys.readouterr().err
    p = tmp_path / "P"
    shutil.copytree(ct, p / "CT")
    shutil.copy2(studies[0].rtstruct[0], p / "plan.dcm")
    for f in out.iterdir():
        shutil.copy2(f, p / f.name)
    st = scan(p)[0]
    assert [f.name for f in st.rtstruct] == ["plan.dcm"] and any(n.startswith("left out") for n in st.notes)
    # ... and the user's again once replaced (an RTSTRUCT of the user's saved under that name)
    shutil.copyfile(p / "plan.dcm", p / "rtstruct.dcm")
    assert sorted(f.name for f in scan(p)[0].rtstruct) == ["plan.dcm", "rtstruct.dcm"]


def test_a_segment_tumour_edited_with_its_volume_kept_is_not_exported_as_lungais(case, tmp_path, capsys):
    """QA: a `lungai segment` folder whose tumor.nii.gz was edited afterwards (trimmed 4 %, or moved 24 mm with the
    same voxel count) was exported by `dicom-export --results` as SlicerLungAI's (AUTOMATIC) with lungai's
    confidence: only the volume was compared.  result.json now records the mask's voxels (tumour_mask_digest): an
    edited mask is refused with the fix; a copied, unedited folder is still lungai's."""
    import json
    import shutil

    from dicom_helpers import provenance

    ct = case["ct"]
    centre = np.argwhere(case["gtv"]).mean(0)[::-1]                      # (x, y, z) index
    seed = ",".join(f"{v:.2f}" for v in ct.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre]))
    run = tmp_path / "seg"
    assert _cli("segment", case["st"]["ct"], "-o", run, f"--seed-point={seed}") == 0
    mask = sitk.ReadImage(str(run / "tumor.nii.gz"))
    assert sitk.GetArrayViewFromImage(mask).any()
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, copy_function=shutil.copy)                 # a plain copy: new modification times
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", copy, "-o", tmp_path / "ok") == 0
    assert provenance(tmp_path / "ok" / "results.seg.dcm", tmp_path / "ok" / "rtstruct.dcm")[0]["Tumour"] == \
        ("AUTOMATIC", "SlicerLungAI")
    moved = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(mask), 1, axis=2))   # same voxel count
    moved.CopyInformation(mask)
    sitk.WriteImage(moved, str(copy / "tumor.nii.gz"))
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--results", copy, "-o", tmp_path / "edited") == 2
    err = capsys.readouterr().err
    assert "describes another tumour mask" in err and "not, voxel for voxel, the mask" in err, err
    assert "export it without --result (as MANUAL" in err and not (tmp_path / "edited").exists()
    assert json.loads((run / "result.json").read_text(encoding="utf-8"))["tumour_mask_digest"]


def _gtvs_seg(case, tmp_path, names=("GTV-1", "GTVn4R")):
    """The case's GTV cut in two along z, written as a SEG of two GTV segments (a primary and a node)."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    gtv, ct = case["gtv"], case["ct"]
    z = np.nonzero(gtv.any(axis=(1, 2)))[0]
    cut = (z[0] + z[-1] + 1) // 2
    first, second = gtv.copy(), gtv.copy()
    first[cut:], second[:cut] = False, False
    assert first.any() and second.any()
    parts = dict(zip(names, (first, second)))
    path = write_seg({n: image_like(a, ct) for n, a in parts.items()}, ct_reference(case["st"]["ct"], image=ct),
                     tmp_path / "gtvs.seg.dcm")
    return path, parts


def test_a_seg_of_several_gtvs_is_exported_gtv_by_gtv_under_their_names(case, tmp_path, capsys):
    """QA on LUNG1-003: --tumour given a SEG of GTV-1 (primary) and gtv-2, gtv-3 (nodes) wrote ONE segment "Tumour"
    and ONE RTSTRUCT ROI "GTVp" (their union, 82.4 ml) without a word: nodes named the primary in a file sent back to
    the planning system.  Each GTV keeps its name, its role's terminology and its own SR volume."""
    import pydicom

    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.dicom.sr import read_sr

    path, parts = _gtvs_seg(case, tmp_path)
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", path, "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    rt = pydicom.dcmread(tmp_path / "e" / "rtstruct.dcm")
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["GTV-1", "GTVn4R"]
    seg = pydicom.dcmread(tmp_path / "e" / "results.seg.dcm")
    assert [(s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning) for s in seg.SegmentSequence] == \
        [("GTV-1", "Neoplasm, Primary"), ("GTVn4R", "Lymph node")]
    masks, contours = read_seg(tmp_path / "e" / "results.seg.dcm", case["ct"]), \
        read_rtstruct(tmp_path / "e" / "rtstruct.dcm", case["ct"])
    voxel_ml = np.prod(case["ct"].GetSpacing()) / 1000.0
    sr = read_sr(tmp_path / "e" / "measurements.sr.dcm")
    for name, truth in parts.items():
        assert np.array_equal(array(masks[name]) > 0, truth), name
        assert np.array_equal(array(contours[name]) > 0, truth), name
        assert sr[name]["Volume"][0] == pytest.approx(truth.sum() * voxel_ml), name
    assert "Tumour" not in sr and "GTVp" not in contours
    assert "the tumour is 2 GTVs, each exported as its own SEG segment / RTSTRUCT ROI" in out, out
    # one node chosen from the SEG is exported as that node, never as the primary "GTVp"
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{path}#GTVn4R", "-o", tmp_path / "n") == 0
    rt = pydicom.dcmread(tmp_path / "n" / "rtstruct.dcm")
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["GTVn4R"]


def test_a_seg_of_one_bare_tumour_segment_is_still_the_tumour(case, tmp_path):
    """lungai's own SEG read back (its one "Tumour" segment; or a "GTV") stays one segment "Tumour", RTSTRUCT GTVp."""
    import pydicom

    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["seg"], "-o", tmp_path / "e") == 0
    assert [r.ROIName for r in pydicom.dcmread(tmp_path / "e" / "rtstruct.dcm").StructureSetROISequence] == ["GTVp"]
    assert [s.SegmentLabel for s in pydicom.dcmread(tmp_path / "e" / "results.seg.dcm").SegmentSequence] == ["Tumour"]


def test_labels_joined_as_the_tumour_are_not_exported_as_the_primary(case, tmp_path, capsys):
    """One rule with the SEG: several GTVs are never written as "GTVp" (a primary).  A label map's labels have no
    names: several are refused unless chosen, and labels joined (FILE#1,2: e.g. a primary and a node) are one
    structure "GTV_union" (role gtv), said in a note."""
    import pydicom

    _, parts = _gtvs_seg(case, tmp_path)
    labels = np.zeros(case["gtv"].shape, np.uint8)
    for value, mask in enumerate(parts.values(), start=1):
        labels[mask] = value
    sitk.WriteImage(image_like(labels, case["ct"]), str(tmp_path / "gtvs.nii.gz"))
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{tmp_path / 'gtvs.nii.gz'}#1,2",
                "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    rt = pydicom.dcmread(tmp_path / "e" / "rtstruct.dcm")
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["GTV_union"]
    seg = pydicom.dcmread(tmp_path / "e" / "results.seg.dcm")
    assert [(s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning) for s in seg.SegmentSequence] == \
        [("GTV_union", "Neoplasm")]
    assert "exported as one structure GTV_union" in out and "not as GTVp" in out, out
    # the radiomics of that tumour (segment "tumour") go into the GTV_union segment's group, with its volume and the
    # segment it measures - before, a group "tumour" of their own beside it, linked to no segment
    from lungai.dicom.sr import read_sr

    assert _cli("radiomics", "--image", case["st"]["ct"], "--tumour", f"{tmp_path / 'gtvs.nii.gz'}#1,2", "--segments",
                "tumour", *SHAPE, "-o", tmp_path / "r.csv") == 0
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{tmp_path / 'gtvs.nii.gz'}#1,2",
                "--radiomics", tmp_path / "r.csv", "-o", tmp_path / "rad") == 0
    got = read_sr(tmp_path / "rad" / "measurements.sr.dcm")
    assert set(got) == {"GTV_union"} and "Volume" in got["GTV_union"], set(got)
    voxel = pd.read_csv(tmp_path / "r.csv").set_index("feature").value["VoxelVolume"]
    assert got["GTV_union"]["original_shape_VoxelVolume"][0] == pytest.approx(voxel)
    # one label chosen is the tumour as before
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", f"{tmp_path / 'gtvs.nii.gz'}#1",
                "-o", tmp_path / "one") == 0
    assert [r.ROIName for r in pydicom.dcmread(tmp_path / "one" / "rtstruct.dcm").StructureSetROISequence] == ["GTVp"]


def test_the_srs_case_group_says_what_rp_predict_said_with_the_risk():
    """QA (e2e57): `lungai demo --ct DICOM --rp-model M` with an `rp synth` model, then `dicom-export --results`: the
    SR carried rp_risk 0.0084 as a plain number - rp_prediction.csv's ILLUSTRATIVE label and its 6 features outside
    the model's training range were lost on the way into PACS.  The Case group's comment now says them."""
    from lungai.dicom.export import measurement_groups

    info = {"confidence": 0.77, "needs_review": False, "review_threshold": 0.6, "method": "ensemble", "members": 3,
            "mc_passes": 0, "model": "/models/unet"}
    rp = {"case": "P1", "illustrative": "ILLUSTRATIVE: the model was trained on a synthetic cohort", "risk": 0.0084,
          "risk_low": 0.0015, "risk_high": 0.045, "imputed": "clin_pack_years",
          "out_of_range": "rad_tumour_original_shape_MeshVolume=1.2e+04 (training 1.5e+04 to 1e+05)",
          "warnings": float("nan")}
    case = next(g for g in measurement_groups({}, info, rp=rp) if g.label == "Case")
    assert case.measurements["rp_risk"] == (0.0084, "1")
    assert case.comment.startswith("Confidence from ensemble of 3, model unet; ")
    assert "RP risk ILLUSTRATIVE: the model was trained on a synthetic cohort" in case.comment
    assert "RP features outside the model's training range: rad_tumour_original_shape_MeshVolume=1.2e+04" \
        in case.comment
    assert "RP features missing, imputed by the model: clin_pack_years" in case.comment
    assert "nan" not in case.comment
    plain = {"case": "P1", "illustrative": float("nan"), "risk": 0.3, "risk_low": 0.2, "risk_high": 0.4,
             "imputed": "", "out_of_range": float("nan")}     # a model trained on patients, nothing to say
    case = next(g for g in measurement_groups({}, None, rp=plain) if g.label == "Case")
    # a model trained on patients: no label or warning, only what the risk and its interval are (no endpoint column)
    assert case.comment.startswith("rp_risk: risk of an endpoint not recorded in the RP prediction CSV")
    assert "RP risk" not in case.comment and "RP features" not in case.comment


def test_the_srs_rp_risk_names_its_endpoint_and_what_its_interval_is(case, tmp_path, capsys):
    """QA srrp62: `rp predict` (and the demo's rp_prediction.csv) names the endpoint of the risk in its `endpoint`
    column (lungai.rp.predict.rp_endpoint: grade >= 2 radiation pneumonitis of a synthetic model, a user's model's
    outcome column) and the console / panel say "Risk of <endpoint>: 47 % (uncertainty interval ...)", but the SR
    written by `dicom-export --rp` gave rp_risk / rp_risk_low / rp_risk_high with no word of what they are the risk
    of, nor what the interval is.  Read back with highdicom: the Case group's Comment (DCM 121106) says both; a CSV
    without the column (an older lungai's) says the endpoint is not recorded, never a guessed one."""
    import highdicom as hd

    from lungai.rp.uncertainty import uncertainty_text     # the model card's words

    def case_comment(path):
        sr = hd.sr.srread(str(path))
        (group,) = [g for g in sr.content.get_image_measurement_groups() if g.tracking_identifier == "Case"]
        ms = {m.name.meaning: m.value for m in group.get_measurements()}
        comments = [str(i.TextValue) for i in group[0].ContentSequence if i.ValueType == "TEXT"
                    and i.ConceptNameCodeSequence[0].CodeValue == "121106"]
        assert len(comments) == 1, comments
        return ms, comments[0]

    tumour = ["--tumour", case["root"] / "gtv.nii.gz"]
    rows = {"synthetic": "grade >= 2 radiation pneumonitis", "user": "model outcome 'Recurrence'"}
    for name, endpoint in rows.items():
        rp = tmp_path / f"{name}.csv"
        pd.DataFrame([{"case": "P1", "risk": 0.47, "risk_low": 0.29, "risk_high": 0.67, "high_risk": 1,
                       "endpoint": endpoint}]).to_csv(rp, index=False)
        assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--rp", rp, "-o", tmp_path / name) == 0
        ms, comment = case_comment(tmp_path / name / "measurements.sr.dcm")
        assert float(ms["rp_risk"]) == pytest.approx(0.47) and float(ms["rp_risk_high"]) == pytest.approx(0.67)
        assert comment.startswith(f"rp_risk: risk of {endpoint} (the RP prediction CSV's endpoint); "), comment
        assert "the interval rp_risk_low to rp_risk_high: " + uncertainty_text("the", endpoint).rstrip(".") in comment
        # the chance the interval is not: RP for the synthetic model's endpoint, the outcome for a user's (QA srhigh62)
        chance = "RP" if name == "synthetic" else "the outcome"
        assert f"not the patient's chance of {chance} (that is the risk)" in comment
        assert "endpoint not recorded" not in comment
    # an older rp_prediction.csv (no endpoint column): not recorded, said, and no endpoint guessed
    old = tmp_path / "old.csv"
    pd.DataFrame([{"case": "P1", "risk": 0.47, "risk_low": 0.29, "risk_high": 0.67}]).to_csv(old, index=False)
    assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--rp", old, "-o", tmp_path / "old") == 0
    ms, comment = case_comment(tmp_path / "old" / "measurements.sr.dcm")
    assert float(ms["rp_risk"]) == pytest.approx(0.47)
    assert comment.startswith("rp_risk: risk of an endpoint not recorded in the RP prediction CSV (no endpoint "
                              "column"), comment
    assert "radiation pneumonitis" not in comment.split("; ")[0] and "model_card.md" in comment
    assert "the interval rp_risk_low to rp_risk_high: 95 % percentile interval" in comment
    assert "chance of RP" not in comment and "not the patient's chance of the outcome" in comment


def test_the_srs_rp_risk_carries_high_risk_and_its_threshold(case, tmp_path, capsys):
    """QA srhigh62: `rp predict` marks a patient HIGH RISK (rp_prediction.csv's high_risk = 1: risk >= the model's
    threshold) and the console and the Slicer panel say it, but the SR of `dicom-export --rp` carried only rp_risk,
    rp_risk_low and rp_risk_high: a PACS reader could not see it.  Read back with highdicom: the Case group has
    rp_high_risk (1 / 0), rp_threshold where the CSV records the threshold (the Slicer panel's table), and its
    Comment says the rule; read_sr gives them back; a CSV without high_risk (an older one) gets none invented."""
    import highdicom as hd

    from lungai.dicom.sr import read_sr, read_sr_comments

    def case_group(path):
        sr = hd.sr.srread(str(path))
        (group,) = [g for g in sr.content.get_image_measurement_groups() if g.tracking_identifier == "Case"]
        return {m.name.meaning: float(m.value) for m in group.get_measurements()}

    tumour = ["--tumour", case["root"] / "gtv.nii.gz"]
    base = {"case": "P1", "risk": 0.47, "risk_low": 0.29, "risk_high": 0.67, "endpoint": "model outcome 'Recurrence'"}
    rows = {"predict": {"high_risk": 1}, "low": {"high_risk": 0}, "panel": {"threshold": 0.387, "high_risk": 1},
            "old": {}}
    for name, extra in rows.items():
        rp = tmp_path / f"{name}.csv"
        pd.DataFrame([{**base, **extra}]).to_csv(rp, index=False)
        assert _cli("dicom-export", "--ct", case["st"]["ct"], *tumour, "--rp", rp, "-o", tmp_path / name) == 0
        path = tmp_path / name / "measurements.sr.dcm"
        ms, back, comment = case_group(path), read_sr(path)["Case"], read_sr_comments(path)["Case"]
        assert ms["rp_risk"] == pytest.approx(0.47) and back["rp_risk"] == (pytest.approx(0.47), "1")
        if "high_risk" in extra:
            assert ms["rp_high_risk"] == extra["high_risk"] and back["rp_high_risk"] == (extra["high_risk"], "1")
            assert "rp_high_risk: 1 = HIGH RISK, rp_risk >= " in comment, comment
        else:      # an older CSV: no high-risk flag, rule or threshold invented
            assert "rp_high_risk" not in ms and "rp_high_risk" not in back and "HIGH RISK" not in comment
        if "threshold" in extra:
            assert ms["rp_threshold"] == pytest.approx(0.387) and back["rp_threshold"] == (pytest.approx(0.387), "1")
            assert "rp_risk >= rp_threshold 0.387, the model's threshold" in comment, comment
        else:       # rp_prediction.csv does not record the threshold: said, never guessed
            assert "rp_threshold" not in ms
            if "high_risk" in extra:
                assert "the model's threshold (not recorded in the RP prediction CSV; the model card names it)" \
                    in comment, comment


def test_a_cohort_patient_folders_radiomics_and_dose_reach_the_sr(tmp_path, capsys):
    """QA on LUNG1-003: `dicom-export --results OUT/patients/P` of a `lungai cohort` folder exported the masks only -
    its features.csv (535 radiomic features; the dose metrics with an RTDOSE) went nowhere, without a word.  Now its
    radiomics reach the SR per segment (the values of features.csv, the grid of the record's radiomics_grid), its
    dose metrics the Dose group (naming the cohort's masks and RTDOSE), with a note; with --tumour they are left
    out (of the folder's tumour), said."""
    from dicom_helpers import small_phantom

    from lungai.dicom.cohort import run_cohort
    from lungai.dicom.synthetic import write_rt_study
    from lungai.dicom.sr import read_sr, read_sr_comments
    from lungai.radiomics import load_params

    st = write_rt_study(tmp_path / "rt", small_phantom(7), "P1", dose="relative")
    (tmp_path / "work.csv").write_text("a,b\n1,2\n")     # a working folder of the user's, not a DICOM export
    assert run_cohort(tmp_path / "rt", tmp_path / "coh", load_params("default", feature_classes=["shape"]),
                      workers=0).done == ["P1"]
    folder = tmp_path / "coh" / "patients" / "P1"
    assert _cli("dicom-export", "--ct", st["ct"], "--results", folder, "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    assert f"note: {folder / 'features.csv'}: the lungai cohort patient's radiomics (" in out
    assert "and dose metrics exported in the SR" in out
    sr = tmp_path / "e" / "measurements.sr.dcm"
    got, comments = read_sr(sr), read_sr_comments(sr)
    wide = pd.read_csv(folder / "features.csv").iloc[0]
    groups = {"Right lung": "right_lung", "Left lung": "left_lung", "Tumour": "tumour", "lungs": "lungs",
              "lungs_minus_tumour": "lungs_minus_tumour"}      # RTSTRUCT "GTV": the segment Tumour, with its features
    assert set(got) == {*groups, "Dose"}, set(got)
    n = 0
    for group, segment in groups.items():
        for name, (value, _) in got[group].items():
            if name != "Volume":
                n += 1
                assert value == pytest.approx(wide[f"rad_{segment}_{name}"], rel=1e-9), (group, name)
    assert n == sum(c.startswith("rad_") for c in wide.index) > 0
    assert got["Dose"]["dose_mld_gy"][0] == pytest.approx(wide["dose_mld_gy"]) and wide["dose_mld_gy"] > 0
    assert "RTDOSE" in comments["Dose"] and "(lungai cohort)" in comments["Dose"]
    assert "computed on the 2 x 2 x 2 mm grid" in comments["Right lung"]
    # --tumour replaces the folder's tumour: its features (of that tumour) are left out, said
    assert _cli("dicom-export", "--ct", st["ct"], "--results", folder, "--tumour", folder / "tumour.nii.gz",
                "-o", tmp_path / "t") == 0
    assert "so its features.csv (the cohort's radiomics and dose metrics of its own tumour) was not exported" in \
        capsys.readouterr().out
    assert set(read_sr(tmp_path / "t" / "measurements.sr.dcm")) == {"Tumour", "Right lung", "Left lung"}
def test_a_cohort_features_csv_given_as_radiomics_exports_its_dose_metrics_too(tmp_path, capsys):
    """QA: ``dicom-export --radiomics OUT/patients/P/features.csv`` (a cohort patient's wide table, with dose_*
    columns) exported its radiomics and left its dose metrics out without a word (only --results took them).  Now
    they reach the Dose group as --results takes them (the masks of the cohort record beside it); a copy of the
    table without its record: its dose metrics too, said to be of masks not recorded; --dose-features overrides."""
    import shutil

    from dicom_helpers import small_phantom

    from lungai.dicom.cohort import run_cohort
    from lungai.dicom.synthetic import write_rt_study
    from lungai.dicom.sr import read_sr, read_sr_comments
    from lungai.radiomics import load_params

    st = write_rt_study(tmp_path / "rt", small_phantom(7), "P1", dose="relative")
    assert run_cohort(tmp_path / "rt", tmp_path / "coh", load_params("default", feature_classes=["shape"]),
                      workers=0).done == ["P1"]
    folder = tmp_path / "coh" / "patients" / "P1"
    wide = pd.read_csv(folder / "features.csv").iloc[0]
    assert wide["dose_mld_gy"] > 0
    shutil.copy(folder / "features.csv", tmp_path / "copy.csv")
    for name, table in (("beside", folder / "features.csv"), ("copy", tmp_path / "copy.csv")):
        assert _cli("dicom-export", "--ct", st["ct"], "--tumour", folder / "tumour.nii.gz", "--radiomics", table,
                    "-o", tmp_path / name) == 0, capsys.readouterr().err
        sr = tmp_path / name / "measurements.sr.dcm"
        got, comments = read_sr(sr), read_sr_comments(sr)
        assert got["Dose"]["dose_mld_gy"][0] == pytest.approx(wide["dose_mld_gy"]), name
        assert len(got["Tumour"]) > 1
        if name == "beside":
            assert "RTDOSE" in comments["Dose"] and "(lungai cohort)" in comments["Dose"]
        else:
            assert "masks not recorded" in comments["Dose"]
    pd.DataFrame([{"case": wide["case"], "dose_mld_gy": 1.5}]).to_csv(tmp_path / "dose.csv", index=False)
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", folder / "tumour.nii.gz", "--radiomics",
                folder / "features.csv", "--dose-features", tmp_path / "dose.csv", "-o", tmp_path / "given") == 0
    assert read_sr(tmp_path / "given" / "measurements.sr.dcm")["Dose"]["dose_mld_gy"][0] == pytest.approx(1.5)


def test_a_results_folders_radiomics_table_of_another_name_is_named_not_silently_left_out(case, tmp_path, capsys):
    """QA (LUNG1-003, the README's steps: ``segment CT -o out/``, ``radiomics --image CT --tumour out/tumor.nii.gz
    --lungs out/lungs.nii.gz -o out/features.csv``, ``dicom-export --ct CT --results out/ -o dcm/``): the SR held the
    volumes only - ``--results`` takes the radiomics table only as ``radiomics_long.csv`` (the demo's name) - and not
    a word said so.  A lungai radiomics table of another name in the folder is now named with the option that
    exports it; the export itself is unchanged (the folder's table is not guessed)."""
    import shutil

    from lungai.dicom.sr import read_sr

    st, root = case["st"], case["root"]
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(root / "gtv.nii.gz", out / "tumor.nii.gz")
    assert _cli("radiomics", "--image", st["ct"], "--tumour", out / "tumor.nii.gz", "--segments", "tumour", *SHAPE,
                "-o", out / "features.csv") == 0
    (out / "notes.csv").write_text("what,when\nCT reviewed,today\n")      # not a radiomics table: not named
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", st["ct"], "--results", out, "-o", tmp_path / "dcm") == 0
    text = capsys.readouterr().out
    assert re.search(r"note: .*features\.csv.*--radiomics", text), text
    assert "notes.csv" not in text, text
    assert set(read_sr(tmp_path / "dcm" / "measurements.sr.dcm")["Tumour"]) == {"Volume"}    # nothing guessed
    # given with --radiomics, or under the demo's name: exported, no note
    assert _cli("dicom-export", "--ct", st["ct"], "--results", out, "--radiomics", out / "features.csv",
                "-o", tmp_path / "dcm2") == 0
    text = capsys.readouterr().out
    assert "features.csv" not in text and len(read_sr(tmp_path / "dcm2" / "measurements.sr.dcm")["Tumour"]) > 1


def test_dicom_export_takes_a_wide_radiomics_table(case, tmp_path, capsys):
    """QA: ``lungai dicom-export --radiomics`` refused the table of ``lungai radiomics --wide`` (and a cohort
    patient's features.csv) as "not a long radiomics table", though --results reads a cohort's wide table
    (lungai.radiomics.extract.from_wide).  A wide lungai table is taken as the long one: the SR holds the same
    features and values as from the long CSV; a wide column that names no lungai segment is refused, naming it."""
    from lungai.dicom.sr import read_sr

    st, root = case["st"], case["root"]
    for name, wide in (("long.csv", []), ("wide.csv", ["--wide"])):
        assert _cli("radiomics", "--image", st["ct"], "--tumour", root / "gtv.nii.gz", "--segments", "tumour",
                    *SHAPE, *wide, "-o", tmp_path / name) == 0
    assert "segment" not in pd.read_csv(tmp_path / "wide.csv")
    for name in ("long", "wide"):
        assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics",
                    tmp_path / f"{name}.csv", "-o", tmp_path / f"e_{name}") == 0, capsys.readouterr().err
    srs = [read_sr(tmp_path / f"e_{name}" / "measurements.sr.dcm")["Tumour"] for name in ("long", "wide")]
    assert len(srs[0]) > 5 and srs[1] == srs[0]
    odd = pd.read_csv(tmp_path / "wide.csv").rename(columns=lambda c: c.replace("rad_tumour_", "rad_node_"))
    odd.to_csv(tmp_path / "odd.csv", index=False)
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "odd.csv",
                "-o", tmp_path / "e_odd") == 2
    err = capsys.readouterr().err
    assert "radiomics columns that name no lungai segment: rad_node_original_" in err and "without --wide" in err


def test_dicom_export_into_a_segment_folder_names_segments_results(case, tmp_path, capsys):
    """QA: ``lungai dicom-export -o OUT`` into a ``lungai segment ... -o OUT`` folder (its rtstruct.dcm,
    uncertainty.pm.dcm, measurements.sr.dcm) was refused as holding files "not written by lungai dicom-export", with
    the fix to move them away - lungai segment's own results.  The refusal says whose results they are and to choose
    another -o (a subfolder); nothing of segment's is touched.  (The segment run is simulated: its claim and files.)"""
    from lungai.cli.seg import SEGMENT_OUTPUTS
    from lungai.io.outputs import claimed_output_folder

    st, root = case["st"], case["root"]
    out = tmp_path / "seg"
    with claimed_output_folder(out, "segment", SEGMENT_OUTPUTS, inputs=[st["ct"]]):
        for name in ("tumor.nii.gz", "result.json", "tumor.seg.dcm", "rtstruct.dcm", "measurements.sr.dcm"):
            (out / name).write_bytes(b"segment's " + name.encode())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "-o", out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "measurements.sr.dcm, rtstruct.dcm: lungai segment's results" in err, err
    assert f"-o {out / 'dicom-export'}" in err and "move" not in err and "not written by" not in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "-o", out / "dicom-export") == 0


def _sr_groups(path):
    """{tracking identifier: (referenced SEG segment numbers or None, measurement names)} of an SR, read back by
    highdicom (the link OHIF / dcmqi follow)."""
    import highdicom as hd

    sr = hd.sr.srread(str(path))
    groups = {g.tracking_identifier: (g.referenced_segment.referenced_segment_numbers, [m.name.meaning for m in
                                                                                        g.get_measurements()])
              for g in sr.content.get_volumetric_roi_measurement_groups()}
    groups.update({g.tracking_identifier: (None, [m.name.meaning for m in g.get_measurements()])
                   for g in sr.content.get_image_measurement_groups()})      # TID 1501: no segment
    return groups


def test_radiomics_of_an_rtstruct_structure_go_into_the_group_of_the_exported_tumour(case, tmp_path, capsys):
    """`lungai radiomics --rtstruct RS --structure GTV` names the segment "GTV", `dicom-export --tumour gtv.nii.gz`
    exports the same region as segment "Tumour": its features belong in the Tumour group, which references the SEG
    segment (QA on LUNG1-003 with GTV-1 and `--tumour labels.nii.gz#1`: 107 features in a group "GTV-1" of their own,
    linked to no segment, beside a Tumour group of its volume alone).  A structure that is not the exported tumour
    keeps its own group, with a note saying so."""
    from lungai.dicom.sr import read_sr, read_sr_comments

    st, root = case["st"], case["root"]
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--structure", "GTV",
                *SHAPE, "-o", tmp_path / "r.csv") == 0
    rad = pd.read_csv(tmp_path / "r.csv")
    assert set(rad.segment) == {"GTV"}
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "gtv.nii.gz", "--radiomics", tmp_path / "r.csv",
                "-o", tmp_path / "e") == 0
    out = capsys.readouterr().out
    groups = _sr_groups(tmp_path / "e" / "measurements.sr.dcm")
    assert set(groups) == {"Tumour"}, groups
    segments, names = groups["Tumour"]
    assert segments == [1] and len(names) == len(rad) + 1, groups      # the volume and every feature
    got = read_sr(tmp_path / "e" / "measurements.sr.dcm")["Tumour"]
    voxel = rad.set_index("feature").value["VoxelVolume"]
    assert got["original_shape_VoxelVolume"][0] == pytest.approx(voxel)
    assert "the radiomics table's GTV (VoxelVolume" in out and "reported in the SR group of the SEG segment Tumour" \
        in out, out
    # the settings of the structure give the group's grid comment (not "(not given)")
    import pydicom

    texts = [i.TextValue for g in pydicom.dcmread(tmp_path / "e" / "measurements.sr.dcm").ContentSequence
             if "ContentSequence" in g for grp in g.ContentSequence if "ContentSequence" in grp
             for i in grp.ContentSequence if i.ValueType == "TEXT"]
    assert any("computed on the CT's grid" in t for t in texts), texts
    # the SR itself says whose features the Tumour group holds (QA cohortprov62: only the console said it), read
    # back with highdicom: the group's Comment (DCM 121106)
    import highdicom as hd

    sr = hd.sr.srread(str(tmp_path / "e" / "measurements.sr.dcm"))
    (tumour,) = sr.content.get_volumetric_roi_measurement_groups()
    comments = [str(item.TextValue) for item in tumour[0].ContentSequence if item.ValueType == "TEXT"
                and item.ConceptNameCodeSequence[0].CodeValue == "121106"]
    assert tumour.tracking_identifier == "Tumour" and len(comments) == 1, comments
    assert comments[0].endswith("the radiomic features are the radiomics table's segment GTV, taken as the exported "
                                "Tumour (its name or volume)"), comments
    # another region exported as the tumour (the left lung): the GTV's features stay in their own group, said
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", root / "lungs.nii.gz#2", "--radiomics",
                tmp_path / "r.csv", "-o", tmp_path / "other") == 0
    out = capsys.readouterr().out
    groups = _sr_groups(tmp_path / "other" / "measurements.sr.dcm")
    assert groups["Tumour"] == ([1], ["Volume"]) and groups["GTV"][0] is None, groups
    assert "radiomics table's segment" not in " ".join(read_sr_comments(tmp_path / "other" / "measurements.sr.dcm")
                                                       .values())      # its own group: nothing taken as another
    assert re.search(r"the radiomics table's GTV is not the exported Tumour \(its VoxelVolume [0-9.]+ ml, the "
                     r"Tumour's [0-9.]+ ml\): its features are reported in an SR group of their own, GTV, linked to "
                     "no SEG segment", out), out


def test_radiomics_of_a_seg_segment_named_so_go_into_the_group_of_that_segment(case, tmp_path, capsys):
    """`lungai radiomics --mask results.seg.dcm` names its segments by their SegmentLabel ("Tumour", "Right lung"):
    exported again, they are the segments of those names, whose groups take their features (their volumes checked)."""
    st = case["st"]
    for n, label in enumerate(("Tumour", "Right lung", "Left lung")):   # they overlap: one at a time
        assert _cli("radiomics", "--image", st["ct"], "--mask", f"{case['seg']}#{label}", "--lung-spacing", "0",
                    *SHAPE, "-o", tmp_path / f"r{n}.csv") == 0
    rad = pd.concat([pd.read_csv(tmp_path / f"r{n}.csv") for n in range(3)])
    rad.to_csv(tmp_path / "r.csv", index=False)
    assert set(rad.segment) == {"Tumour", "Right lung", "Left lung"}, set(rad.segment)
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", case["root"] / "gtv.nii.gz", "--lungs",
                case["root"] / "lungs.nii.gz", "--radiomics", tmp_path / "r.csv", "-o", tmp_path / "e") == 0
    groups = _sr_groups(tmp_path / "e" / "measurements.sr.dcm")
    assert set(groups) == {"Tumour", "Right lung", "Left lung"}, groups
    for number, label in enumerate(("Tumour", "Right lung", "Left lung"), start=1):
        assert groups[label][0] == [number]
        assert len(groups[label][1]) == (rad.segment == label).sum() + 1, (label, groups[label])


def test_a_ct_given_as_a_mask_is_said_to_be_no_mask_file(case, tmp_path, capsys):
    """QA exportfollow69: `lungai dicom-export --tumour` given LUNG1-003's CT folder said "holds values -1024 .. 3071;
    label values must be 0 .. 65535" - not that a folder / CT was given where a mask file was expected, nor the fix.
    Said so by the one mask reader (read_mask) of every command: dicom-export, radiomics; a slice of the CT and a CT
    NIfTI alike; a folder holding the mask names it."""
    st = case["st"]
    folder = st["ct"]
    slices = sorted(p for p in folder.iterdir() if p.is_file())
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(case["ct"], str(nifti))
    for command in (["dicom-export", "--ct", folder, "-o", tmp_path / "e"],
                    ["radiomics", "--image", folder, *SHAPE, "-o", tmp_path / "r.csv"]):
        assert _cli(*command, "--tumour", folder) == 2
        err = capsys.readouterr().err
        assert f"{folder} is a folder where a mask file was expected" in err, err
        assert f"it holds {len(slices)} DICOM files (CT: an image series" in err
        assert "label values must be" not in err
        assert ("How to fix: give the mask's own file: a NIfTI / NRRD / MHA label map on the CT's grid" in err
                and "the CT itself is given as the command's CT (--ct, --image), not as a mask" in err)
        assert not (tmp_path / "e").exists() and not (tmp_path / "r.csv").exists()
    assert _cli("dicom-export", "--ct", folder, "--tumour", slices[0], "-o", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert f"{slices[0]} is a DICOM CT image file (a slice of a series), not a mask" in err
    assert "not a single slice" not in err and "How to fix: give the mask's own file" in err
    with pytest.raises(InputError, match=r"holds values -\d+ \.\. \d+, as a CT in Hounsfield units does .*: it is an "
                                         r"image, not a mask") as exc:
        read_mask(nifti, case["ct"])
    assert "the CT itself is given as the command's CT" in exc.value.fix
    # an output folder given instead of its mask: the mask in it is named, with the command word to give
    out = tmp_path / "results"
    out.mkdir()
    sitk.WriteImage(case["ct"], str(out / "ct.nii.gz"))
    sitk.WriteImage(image_like(case["gtv"], case["ct"]), str(out / "tumor.nii.gz"))
    with pytest.raises(InputError, match="is a folder where a mask file was expected .* it holds image files: "
                                         "ct.nii.gz, tumor.nii.gz") as exc:
        read_mask(out, case["ct"])
    assert exc.value.fix.startswith(f"if tumor.nii.gz in it is the mask, give it: {out / 'tumor.nii.gz'}; else ")


def test_dicom_export_says_its_mask_reads_again_with_their_seconds(case, tmp_path, capsys, monkeypatch):
    """QA dicom72 (LUNG1-003's 3-segment SEG given as ``dicom-export --tumour SEG --lungs SEG``): "reading the tumour
    mask" and "reading the lung mask" stood 3-4 s each with no line (read_seg of 107 frames a segment), "reading
    the CT" ~2 s.  Each is said again with its seconds while it runs (lungai.progress.timer_running): each slow read
    here waits until its message was said again with its seconds."""
    import threading

    import lungai.cli.dicom as cli_dicom
    import lungai.dicom.masks as masks
    from lungai import progress

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.02)
    said = {m: threading.Event() for m in ("reading the CT", "reading the tumour mask", "reading the lung mask")}
    timed_real = progress._LineProgress._timed

    def timed(self, message, seconds):
        timed_real(self, message, seconds)
        if message in said and self.desc == "dicom-export":
            said[message].set()

    monkeypatch.setattr(progress._LineProgress, "_timed", timed)
    waited = {}

    def slow(message, real):
        def wait_then(*args, **kwargs):
            waited[message] = said[message].wait(5)
            return real(*args, **kwargs)
        return wait_then

    monkeypatch.setattr(cli_dicom, "_read_dicom_ct", slow("reading the CT", cli_dicom._read_dicom_ct))
    monkeypatch.setattr(masks, "mask_input", slow("reading the tumour mask", masks.mask_input))
    monkeypatch.setattr(masks, "lung_map_input", slow("reading the lung mask", masks.lung_map_input))
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--tumour", case["seg"], "--lungs", case["seg"],
                "-o", tmp_path / "exp") == 0
    err = capsys.readouterr().err
    assert waited == {m: True for m in said}, err
    for message in said:
        assert re.search(rf"dicom-export: .*{message} \(\d+ s\)", err), (message, err)


def test_one_seg_given_to_several_mask_options_is_read_once(case, tmp_path, monkeypatch):
    """QA dicom72 (LUNG1-003's 3-segment SEG as ``dicom-export --tumour SEG --lungs SEG``): the SEG was read and
    decoded for each option (3-4 s, then 2 s on a shared machine; 13.9 s -> 10.9 s in all).  In a command (its
    read_once block) it is read once for the CT; each option still gets its own segments, the export the same."""
    import lungai.dicom.discover as discover

    reads = []
    real = discover.read_to_end

    def counted(path, *args, **kwargs):
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(discover, "read_to_end", counted)
    seg, st = case["seg"], case["st"]
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", seg, "--lungs", seg, "-o", tmp_path / "exp") == 0
    assert reads == ["results.seg.dcm"], reads
    back = read_seg_masks(tmp_path / "exp" / "results.seg.dcm", case["ct"])
    assert np.array_equal(back["Tumour"], case["gtv"])
    assert np.array_equal(back["Right lung"], case["lab"] == 1) and np.array_equal(back["Left lung"], case["lab"] == 2)
    reads.clear()
    assert _cli("radiomics", "--image", st["ct"], "--tumour", seg, "--lungs", seg, "--segments", "tumour",
                "right_lung", "--lung-spacing", "0", *SHAPE, "-o", tmp_path / "r.csv") == 0
    assert reads == ["results.seg.dcm"], reads
    # outside a command's block each read reads the file (and a file changed on disk is read again in one)
    from lungai.dicom.once import read_once
    from lungai.dicom.seg import read_seg

    reads.clear()
    first, second = read_seg(seg, case["ct"]), read_seg(seg, case["ct"])
    assert len(reads) == 2 and first is not second and list(first) == list(second)
    reads.clear()
    with read_once(files=1):
        one, two = read_seg(seg, case["ct"]), read_seg(seg, case["ct"])
        assert one is not two and list(one) == list(two) and len(reads) == 1
        other = tmp_path / "copy.seg.dcm"
        other.write_bytes(seg.read_bytes())
        read_seg(other, case["ct"])
        assert len(reads) == 2


def read_seg_masks(path, ct) -> dict:
    """{label: bool array} of a SEG read onto ``ct``."""
    from lungai.dicom.seg import read_seg

    return {k: array(v) > 0 for k, v in read_seg(path, ct).items()}
