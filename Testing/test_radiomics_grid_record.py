"""What radiomics values were computed on, and said: pyradiomics' own resampling (equal to pyradiomics on the whole CT),
the grid / spacing / interpolator / versions recorded per segment, the IBSI configuration's grid, the RTSTRUCT
structures merged into a segment, and the warning for texture features of mixed voxel spacings in a cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

import lungai
from lungai.radiomics import extract, load_params
from lungai.synthetic import labels as L


def _tumour(phantom) -> sitk.Image:
    return sitk.Cast(phantom.labels == L.TUMOUR, sitk.sitkUInt8)


@pytest.mark.parametrize("interpolator", ["sitkLinear", "sitkBSpline"])
def test_a_resampling_parameter_file_gives_pyradiomics_values_on_the_whole_ct(small_phantom, tmp_path, interpolator):
    """QA: the segment was cropped (box + 5 voxels) before pyradiomics resampled it, and pyradiomics aligns its
    resampled grid with the input's origin: 104 of 107 values differed from pyradiomics on the whole CT (Mean 3.7 %,
    up to 36 % with B-splines), and _settings.csv said grid=native, interpolation=none."""
    from radiomics import featureextractor

    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "resampledPixelSpacing": [2, 2, 2], "label": 1,
                                               "interpolator": interpolator, "resegmentRange": [-1000, 400]},
                                   "featureClass": {"shape": [], "firstorder": [], "glcm": [], "glszm": []}}),
                   encoding="utf-8")
    ct, tumour = small_phantom.ct, _tumour(small_phantom)
    ref = featureextractor.RadiomicsFeatureExtractor(str(yml)).execute(ct, tumour)
    ref = {k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")}
    result = extract(ct, {"tumour": tumour}, load_params(str(yml)), case="c")
    got = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in result.features.itertuples()}
    assert set(got) == set(ref) and len(ref) > 50
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key
    row = result.settings.iloc[0]
    assert row.grid.startswith("resampled by pyradiomics") and row.spacing_mm == "2 x 2 x 2"
    assert row.interpolation == interpolator
    assert "pyradiomics" in row.versions and "SimpleITK" in row.versions and "numpy" in row.versions
    # a lung segment too: pyradiomics' grid, not lungai's 2 mm lung grid first (two resamplings)
    with_spacing = {**load_params(str(yml)), "lungai": {"lung_spacing_mm": 3.0}}   # (load_params refuses it: below)
    lung = extract(ct, {"lungs": tumour}, with_spacing, case="c")
    assert lung.features.value.tolist() == result.features.value.tolist()
    assert lung.settings.iloc[0].grid.startswith("resampled by pyradiomics")


def test_a_lung_spacing_with_pyradiomics_resampling_is_refused_not_ignored(small_phantom, tmp_path, capsys):
    """Session 32: --lung-spacing (or lung_spacing_mm in the file's lungai block) with a parameter file setting
    resampledPixelSpacing was ignored without a word (pyradiomics' grid holds every segment); now refused before any
    work, as a 'setting' block beside an IBSI configuration is."""
    from lungai.cli import main
    from lungai.errors import InputError

    yml = tmp_path / "p.yaml"
    setting = {"binWidth": 25, "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear"}
    yml.write_text(yaml.safe_dump({"setting": setting}), encoding="utf-8")
    with pytest.raises(InputError, match="--lung-spacing 3 would be ignored") as exc:
        load_params(str(yml), lung_spacing_mm=3.0)
    assert "resampledPixelSpacing [2, 2, 2]" in exc.value.problem and "leave out --lung-spacing" in exc.value.fix
    assert load_params(str(yml))["setting"]["resampledPixelSpacing"] == [2, 2, 2]          # without it: as before
    in_file = tmp_path / "q.yaml"
    in_file.write_text(yaml.safe_dump({"setting": setting, "lungai": {"lung_spacing_mm": 2.0}}), encoding="utf-8")
    with pytest.raises(InputError, match="lung_spacing_mm: 2.0.* would be ignored"):
        load_params(str(in_file))
    # no pyradiomics resampling (none, or all 0): the lung spacing is used, nothing refused
    yml.write_text(yaml.safe_dump({"setting": {**setting, "resampledPixelSpacing": [0, 0, 0]}}), encoding="utf-8")
    assert load_params(str(yml), lung_spacing_mm=3.0)["lungai"]["lung_spacing_mm"] == 3.0
    assert load_params("default", lung_spacing_mm=3.0)["lungai"]["lung_spacing_mm"] == 3.0
    # the command: refused before reading the CT, nothing written
    yml.write_text(yaml.safe_dump({"setting": setting}), encoding="utf-8")
    out = tmp_path / "out" / "f.csv"
    for never_read in ("missing.nii.gz", "t.nii.gz"):    # there (the input paths are checked first), never read
        (tmp_path / never_read).write_bytes(b"")
    assert main(["radiomics", "--image", str(tmp_path / "missing.nii.gz"), "--tumour", str(tmp_path / "t.nii.gz"),
                 "--params", str(yml), "--lung-spacing", "2", "-o", str(out)]) != 0
    assert "--lung-spacing 2 would be ignored" in capsys.readouterr().err and not out.exists()


def test_a_lung_spacing_of_0_is_accepted_beside_pyradiomics_resampling_as_in_the_file(tmp_path):
    """Review of 8b25950: --lung-spacing 0 was refused with a resampling parameter file while the file's
    'lungai: {lung_spacing_mm: 0}' was accepted; 0 asks for no lung resampling, so both are accepted (same id)."""
    from lungai.radiomics.settings import settings_id

    setting = {"binWidth": 25, "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear"}
    yml, in_file = tmp_path / "p.yaml", tmp_path / "q.yaml"
    yml.write_text(yaml.safe_dump({"setting": setting}), encoding="utf-8")
    in_file.write_text(yaml.safe_dump({"setting": setting, "lungai": {"lung_spacing_mm": 0}}), encoding="utf-8")
    ids = {settings_id(load_params(str(yml), lung_spacing_mm=0)), settings_id(load_params(str(in_file))),
           settings_id(load_params(str(yml)))}
    assert len(ids) == 1


@pytest.mark.parametrize("spacing", [2, "2", [2, 2], [2, -1, 2], [2, "x", 2], [True, 1, 1], {"x": 2}])
def test_a_resampled_pixel_spacing_that_is_not_3_numbers_is_refused(tmp_path, capsys, spacing):
    """Review of 8b25950: 'resampledPixelSpacing: 2' (a scalar) gave a TypeError traceback; now an input error."""
    from lungai.cli import main
    from lungai.errors import InputError

    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "resampledPixelSpacing": spacing}}), encoding="utf-8")
    with pytest.raises(InputError, match="is not a list of 3 non-negative numbers") as exc:
        load_params(str(yml))
    assert "resampledPixelSpacing: [2, 2, 2]" in exc.value.fix
    for never_read in ("missing.nii.gz", "t.nii.gz"):    # there (the input paths are checked first), never read
        (tmp_path / never_read).write_bytes(b"")
    assert main(["radiomics", "--image", str(tmp_path / "missing.nii.gz"), "--tumour", str(tmp_path / "t.nii.gz"),
                 "--params", str(yml), "-o", str(tmp_path / "out" / "f.csv")]) != 0
    err = capsys.readouterr().err
    assert "not a list of 3 non-negative numbers" in err and "Traceback" not in err and "TypeError" not in err


def test_a_resampled_pixel_spacing_of_3_numbers_is_kept(tmp_path):
    yml = tmp_path / "p.yaml"
    for spacing in ([2, 2, 2], [0, 0, 0], [1.5, 1.5, 0]):
        yml.write_text(yaml.safe_dump({"setting": {"resampledPixelSpacing": spacing}}), encoding="utf-8")
        assert load_params(str(yml))["setting"]["resampledPixelSpacing"] == spacing


def test_ibsi_presets_record_their_grid_their_configuration_and_the_versions(small_phantom, tmp_path):
    """QA: an IBSI preset's settings JSON held only {"lungai": {"ibsi": "C"}}, and _settings.csv the CT's grid
    (3.5 x 3.5 x 5) although the values are computed on IBSI's 2 mm grid; no versions anywhere."""
    from lungai.radiomics.prepare import prepare
    from lungai.radiomics.settings import read_sidecars, settings_id, write_sidecar

    params = load_params("ibsi-c")
    (p,) = prepare(small_phantom.ct, {"tumour": _tumour(small_phantom)}, params)
    assert p.settings["spacing_mm"] == "2 x 2 x 2" and "linear image" in p.settings["interpolation"]
    assert p.settings["grid_size"] == "168x168x100"                 # 96 x 96 x 40 at 3.5 / 5 mm -> 2 mm
    assert f"lungai {lungai.__version__}" in p.settings["versions"]
    doc = json.loads(write_sidecar(tmp_path / "f.csv", params).read_text(encoding="utf-8"))
    assert doc["ibsi_configuration"]["spacing_mm"] == [2.0, 2.0, 2.0]
    assert doc["ibsi_configuration"]["resegment_range"] == [-1000, 400] and doc["ibsi_configuration"]["bins"] == 25
    assert set(doc["versions"]) == {"lungai", "pyradiomics", "pyradiomics_distribution", "SimpleITK", "numpy"}
    assert read_sidecars([tmp_path / "f.csv"]) == {settings_id(params): doc["settings"]}   # the id is unchanged
    b = prepare(small_phantom.ct, {"tumour": _tumour(small_phantom)}, load_params("ibsi-b"))[0].settings
    assert b["spacing_mm"] == "2 x 2 x 5"                            # B: in-plane only


def _resampled(image: sitk.Image, spacing, nearest=False) -> sitk.Image:
    size = [int(round(n * s / t)) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing)]
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
                         image.GetOrigin(), spacing, image.GetDirection(), 0.0 if nearest else -1000.0,
                         image.GetPixelID())


def test_radiomics_batch_warns_once_of_texture_features_on_mixed_voxel_spacings(small_phantom, tmp_path, capsys):
    """QA: one tumour at two voxel spacings gives texture features 30-200 % apart; the default preset computes the
    tumour on each CT's own grid and radiomics-batch said nothing."""
    from lungai.cli import main

    ct, tumour = small_phantom.ct, _tumour(small_phantom)
    sitk.WriteImage(ct, str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(tumour, str(tmp_path / "ta.nii.gz"))
    sitk.WriteImage(_resampled(ct, (2.5, 2.5, 3.0)), str(tmp_path / "b.nii.gz"))
    sitk.WriteImage(_resampled(tumour, (2.5, 2.5, 3.0), nearest=True), str(tmp_path / "tb.nii.gz"))
    rows = "".join(f"{c},{tmp_path / (c + '.nii.gz')},{tmp_path / ('t' + c + '.nii.gz')}\n" for c in ("a", "b"))
    (tmp_path / "m.csv").write_text("case,image,tumour\n" + rows, encoding="utf-8")
    common = ["--workers", "0", "--segments", "tumour"]
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), *common, "--feature-classes", "glcm",
                 "-o", str(tmp_path / "f.csv")]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: the voxel spacing differs across cases (tumour: 3.5 x 3.5 x 5 mm in 1 case, "
                     "2.5 x 2.5 x 3 mm in 1 case)") == 1
    assert "use --params ibsi-c" in out and "resampledPixelSpacing" in out
    # no texture class, or one grid for every case: nothing to say
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), *common, "--feature-classes", "shape",
                 "-o", str(tmp_path / "s.csv")]) == 0
    assert "voxel spacing differs" not in capsys.readouterr().out
    from lungai.radiomics.prepare import mixed_spacing_note

    same = pd.DataFrame({"case": ["a", "b"], "segment": "tumour", "grid": "native", "spacing_mm": "0.977 x 0.977 x 3"})
    assert mixed_spacing_note(same, load_params("default")) is None
    grid = same.assign(spacing_mm=["2 x 2 x 2", "2 x 2 x 2"], grid="resampled")
    assert mixed_spacing_note(grid, load_params("default")) is None
    assert mixed_spacing_note(same.assign(spacing_mm=["0.977 x 0.977 x 3", "0.7 x 0.7 x 2.5"]),
                              load_params("default")) is not None


def test_cohort_records_grid_and_versions_and_warns_of_mixed_voxel_spacings(tmp_path, capsys):
    """The same rule in lungai cohort (per patient: result.json records the grid and the versions)."""
    from dicom_helpers import SMALL, small_phantom
    from lungai.dicom.cohort import RESULT, run_cohort
    from lungai.dicom.synthetic import write_rt_study
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    root = tmp_path / "export"
    write_rt_study(root, small_phantom(7), "P1", dose=None)
    spec = PhantomSpec(**{**SMALL, "shape": (80, 80, 45), "spacing": (4.0, 4.0, 4.0)},
                       tumour=TumourSpec(diameter_mm=40.0, location="free", shape="round", side="right"))
    write_rt_study(root, make_phantom(spec, seed=8), "P2", dose=None)
    params = load_params("default", feature_classes=["shape", "glcm"])
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:   # the CLI says it on stderr (QA cohortstd67: printed on stdout)
        s = run_cohort(root, tmp_path / "out", params, workers=0)
    assert not s.failed, s.failed
    assert "voxel spacing differs" not in capsys.readouterr().out
    out = "\n".join(f"warning: {w.message}" for w in said)
    assert out.count("warning: the voxel spacing differs across cases (tumour: 4.5 x 4.5 x 5 mm in 1 case, "
                     "4 x 4 x 4 mm in 1 case)") == 1
    doc = json.loads((tmp_path / "out" / "patients" / "P1" / RESULT).read_text(encoding="utf-8"))
    assert set(doc["versions"]) == {"lungai", "pyradiomics", "pyradiomics_distribution", "SimpleITK", "numpy"}
    grid = {g["segment"]: g for g in doc["radiomics_grid"]}
    assert grid["tumour"]["spacing_mm"] == "4.5 x 4.5 x 5" and grid["lungs"]["spacing_mm"] == "2 x 2 x 2"


def test_radiomics_rtstruct_names_the_structures_merged_into_a_segment(tmp_path, capsys):
    """QA: LUNG1-003's GTV-1 + gtv-2 + gtv-3 (primary and nodes) became one 'tumour' (82 ml, shape features of three
    objects) without a word; cohort names them.  Now a note, and a structures column in _settings.csv."""
    from dicom_helpers import small_phantom
    from lungai.cli import main
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import copy_geometry, read_ct

    st = write_rt_study(tmp_path / "export", small_phantom(7), "P1", dose=None)
    ct = read_ct(st["ct"])
    gtv = sitk.GetArrayFromImage(st["masks"]["GTV"])
    node = np.zeros_like(gtv)
    node[14:17, 30:34, 46:50] = 1            # a nodal GTV away from the primary
    node[gtv > 0] = 0
    rs = write_rtstruct({"GTV-1": st["masks"]["GTV"], "GTV-2": copy_geometry(node, st["masks"]["GTV"]),
                         "Lung_R": st["masks"]["Lung_R"], "Lung_L": st["masks"]["Lung_L"]},
                        st["reference"], tmp_path / "export" / "rs.dcm")   # (not beside the -o files)
    common = ["--image", str(st["ct"]), "--rtstruct", str(rs), "--feature-classes", "shape"]
    assert main(["radiomics", *common, "-o", str(tmp_path / "f.csv")]) == 0
    err = capsys.readouterr().err
    assert ("note: tumour = union of GTV-1, GTV-2; use --tumour role:gtv_primary (GTV-1) for the primary GTV only, "
            "or --tumour NAME for one structure") in err
    assert err.count("union of") == 1                      # not for the lungs (right + left by definition)
    settings = pd.read_csv(tmp_path / "f_settings.csv", keep_default_na=False).set_index("segment")
    assert settings.loc["tumour", "structures"] == "GTV-1+GTV-2"
    assert settings.loc["right_lung", "structures"] == "Lung_R"
    assert settings.loc["lungs_minus_tumour", "structures"] == "Lung_R+Lung_L minus GTV-1+GTV-2"
    # the primary alone: no note
    assert main(["radiomics", *common, "--tumour", "role:gtv_primary", "--segments", "tumour",
                 "-o", str(tmp_path / "p.csv")]) == 0
    assert "union of" not in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "p_settings.csv").structures.tolist() == ["GTV-1"]
    assert ct.GetSize() == st["masks"]["GTV"].GetSize()


def test_mixed_spacings_are_said_for_ibsi_a_and_b_not_c():
    """Review of cfd30f1: any IBSI configuration was skipped; A (no interpolation) and B (the CT's own z) keep the
    CT's spacing, so texture features of mixed spacings are not comparable there either."""
    from lungai.radiomics.prepare import mixed_spacing_note

    def rows(grid, a, b):
        return pd.DataFrame({"case": ["a", "b"], "segment": "tumour", "grid": f"IBSI-1 configuration {grid}",
                             "spacing_mm": [a, b]})

    assert mixed_spacing_note(rows("A", "0.977 x 0.977 x 3", "0.7 x 0.7 x 2.5"), load_params("ibsi-a")) is not None
    assert mixed_spacing_note(rows("A", "0.977 x 0.977 x 3", "0.977 x 0.977 x 3"), load_params("ibsi-a")) is None
    assert mixed_spacing_note(rows("B", "2 x 2 x 3", "2 x 2 x 2.5"), load_params("ibsi-b")) is not None
    assert mixed_spacing_note(rows("B", "2 x 2 x 3", "2 x 2 x 3"), load_params("ibsi-b")) is None
    assert mixed_spacing_note(rows("C", "2 x 2 x 2", "2 x 2 x 2"), load_params("ibsi-c")) is None


def test_union_note_offers_no_name_for_a_case_pair():
    """Review (fix_casepair 2): 'tumour = union of gtv-3, gtv, GTV; use --tumour NAME for one structure', though
    --tumour GTV is then refused (names differing only in letter case: check_case_groups).  The hint names the pair
    and says to rename one; without a pair it is as before."""
    from lungai.cli.radiomics import union_notes

    note, = union_notes({"tumour": ["gtv-3", "gtv", "GTV"]}, {"tumour"})
    assert "gtv / GTV differ only in letter case" in note and "rename one" in note
    note, = union_notes({"tumour": ["GTV", "gtv"]}, {"tumour"})
    assert "--tumour NAME" not in note and "rename one to take it by name" in note
    assert union_notes({"tumour": ["GTV-1", "GTV-2"]}, {"tumour"}) == [
        "tumour = union of GTV-1, GTV-2; use --tumour role:gtv_primary (GTV-1) for the primary GTV only, or --tumour "
        "NAME for one structure"]


def test_ibsi_presets_record_the_voxels_of_the_roi_on_their_grid():
    """QA: `voxels` of an IBSI preset counted the CT's own grid (phantom, ibsi-b: 125256 against IBSI's
    morph_mask_vox_count_interp_roi 29842); it is the interpolated morphological mask's count, as for 2 mm lungs.
    (A spacing with no grid point of B / C halfway between two CT voxels: such ties (mask value 0.5) are not
    counted reproducibly by ITK's linear resampling.)"""
    from lungai.radiomics.ibsi import CONFIGS
    from lungai.radiomics.ibsi.diagnostics import measure
    from lungai.radiomics.ibsi.run import ibsi_images
    from lungai.radiomics.prepare import prepare

    z, y, x = np.mgrid[:24, :40, :44]
    spacing = (0.83, 0.91, 2.7)
    ct = sitk.GetImageFromArray((40 * np.sin(x / 3.0) + 30 * np.cos(y / 4.0) - 20 * z).astype(np.int16))
    ct.SetSpacing(spacing)
    inside = ((x - 21.3) * spacing[0]) ** 2 + ((y - 19.6) * spacing[1]) ** 2 + ((z - 11.2) * spacing[2]) ** 2 < 12.4 ** 2
    tumour = sitk.GetImageFromArray(inside.astype(np.uint8))
    tumour.CopyInformation(ct)
    for preset in ("ibsi-a", "ibsi-b", "ibsi-c"):
        (p,) = prepare(ct, {"tumour": tumour}, load_params(preset))
        morph = measure(*ibsi_images(ct, tumour, CONFIGS[preset[-1].upper()]))["morph_mask_vox_count_reseg_roi"]
        assert p.settings["voxels"] == morph, preset
        assert (p.settings["voxels"] == int(inside.sum())) == (preset == "ibsi-a"), preset


def test_mixed_spacing_is_warned_across_segments_of_other_names():
    """QA: a manifest of pyradiomics' lung1 / lung2 (`label` 1: segment label_1, 0.57 / 0.627 mm) and LUNG1-003
    (`tumour=1;tumour=2`, 0.977 x 0.977 x 3 mm) warned of label_1 only: the tumour's spacing was compared with no
    other case, so a cohort whose tumours carry different names per case (label_1, tumour, GTV) - one texture
    feature table - was never warned.  Every segment on its CT's own grid is compared with every case's."""
    from lungai.radiomics.prepare import mixed_spacing_note

    rows = pd.DataFrame({"case": ["lung1", "lung2", "L3", "L3"], "segment": ["label_1", "label_1", "tumour", "node"],
                         "grid": "native",
                         "spacing_mm": ["0.57 x 0.57 x 5", "0.57 x 0.57 x 5", "0.977 x 0.977 x 3", "0.977 x 0.977 x 3"]})
    note = mixed_spacing_note(rows, load_params("default"))
    assert note is not None and note.startswith(
        "the voxel spacing differs across cases (label_1: 0.57 x 0.57 x 5 mm in 2 cases; tumour: 0.977 x 0.977 x 3 "
        "mm in 1 case; node: 0.977 x 0.977 x 3 mm in 1 case)"), note
    # one spacing throughout (whatever the names): nothing to say; lung segments on the 2 mm grid are not compared
    same = rows.assign(spacing_mm="0.977 x 0.977 x 3")
    assert mixed_spacing_note(same, load_params("default")) is None
    lungs = pd.DataFrame({"case": ["a", "b"], "segment": ["right_lung", "tumour"], "grid": ["resampled", "native"],
                          "spacing_mm": ["2 x 2 x 2", "0.977 x 0.977 x 3"]})
    assert mixed_spacing_note(lungs, load_params("default")) is None
