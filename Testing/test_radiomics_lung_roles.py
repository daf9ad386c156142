"""Review of d2f4d33 (lung segments recognised by role for radiomics' 2 mm lung grid): the settings id / resume key
carry a lung grid revision when a lung segment moved from the CT's grid (Lung_R ...), and a --structure-map role
counts for the grid."""

from __future__ import annotations

import pandas as pd
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.radiomics import extract, load_params
from lungai.radiomics.settings import (SETTINGS_COLUMN, LUNG_GRID_REVISION, settings_id, value_settings,
                                       with_lung_grid_revision)
from lungai.synthetic import labels as L


def _lung(phantom, name="Lung_R"):
    return {name: sitk.Cast(phantom.labels == L.RIGHT_LUNG, sitk.sitkUInt8)}


def test_the_id_of_lung_segments_moved_to_the_lung_grid_carries_the_revision(small_phantom):
    """Lung_R was on the CT's grid before d2f4d33, on the 2 mm lung grid since: its values changed, so its id does
    (an rp model trained on the old Lung_R values refuses the new ones); right_lung's values and id are unchanged."""
    params = load_params("default")
    old_id = settings_id(params)
    assert settings_id(with_lung_grid_revision(params, ["right_lung", "Left lung", "GTV-1"])) == old_id
    for names in (["Lung_R", "GTV-1"], ["RT LUNG"], ["Lung (R)"], ["Lungs-GTV"], ["lung_r"]):
        revised = with_lung_grid_revision(params, names)
        assert settings_id(revised) != old_id, names
        assert value_settings(revised)["lungai"]["lung_grid_revision"] == LUNG_GRID_REVISION
    # no lung grid (IBSI configuration, lung spacing 0, pyradiomics' resampling): nothing moved, the id is kept
    for p in (load_params("ibsi-c"), load_params("default", lung_spacing_mm=0)):
        assert settings_id(with_lung_grid_revision(p, ["Lung_R"])) == settings_id(p)
    new = extract(small_phantom.ct, _lung(small_phantom), params, case="p1")
    assert set(new.features[SETTINGS_COLUMN]) == {settings_id(with_lung_grid_revision(params, ["Lung_R"]))}
    assert new.settings.grid.tolist()[0].startswith("resampled")
    same = extract(small_phantom.ct, _lung(small_phantom, "right_lung"), params, case="p1")
    assert set(same.features[SETTINGS_COLUMN]) == {old_id}


def test_an_rp_model_of_old_lung_r_values_refuses_the_new_ones(small_phantom):
    from lungai.rp.prepare import settings_warnings

    params = load_params("default")
    card = {"radiomics_settings": {"id": settings_id(params), "settings": value_settings(params)},
            "roles": {"id_column": "case"}}
    table = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [settings_id(with_lung_grid_revision(params, ["Lung_R"]))]})
    with pytest.raises(InputError, match="not comparable"):
        settings_warnings(table, card, "patients table")


def test_batch_redoes_the_lung_r_cases_of_an_older_run(small_phantom, tmp_path, capsys):
    from lungai.radiomics.batch import _params_key, run_batch

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(small_phantom.labels, sitk.sitkUInt8), str(tmp_path / "labels.nii.gz"))
    (tmp_path / "m.csv").write_text(f"case,image,mask,label\np1,{tmp_path / 'ct.nii.gz'},{tmp_path / 'labels.nii.gz'},"
                                    f"Lung_R={L.RIGHT_LUNG}\n", encoding="utf-8")
    params = load_params("default", feature_classes=["firstorder"])
    out = tmp_path / "f.csv"
    run_batch(tmp_path / "m.csv", out, params, workers=0)
    new = pd.read_csv(out)
    assert set(new[SETTINGS_COLUMN]) == {settings_id(with_lung_grid_revision(params, ["Lung_R"]))}
    # an older lungai's run: its key without the revision, its part with Lung_R on the CT's grid and the old id
    parts = tmp_path / "f.csv.parts"
    (parts / "params.key").write_text(_params_key(params, None), encoding="utf-8")
    old = new.copy()
    old["value"] = -1.0
    old[SETTINGS_COLUMN] = settings_id(params)
    old.to_csv(parts / "p1.csv", index=False)
    summary = run_batch(tmp_path / "m.csv", out, params, workers=0)
    assert "redone" in (summary.redone or "") and "lung grid" in summary.redone
    again = pd.read_csv(out)
    assert (again["value"] != -1.0).all() and set(again[SETTINGS_COLUMN]) == set(new[SETTINGS_COLUMN])
    # and a run of the current key resumes without redoing
    assert not (run_batch(tmp_path / "m.csv", out, params, workers=0).redone or "")


def test_a_structure_mapped_to_a_lung_goes_on_the_lung_grid(tmp_path, capsys):
    """`--structure Rt_Lung_Contour` with `Rt_Lung_Contour: lung_right` in --structure-map was computed on the CT's
    grid, `--structure role:lung_right` (the same structure) on the 2 mm lung grid."""
    from dicom_helpers import small_phantom
    from lungai.cli import main
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.synthetic import write_rt_study

    st = write_rt_study(tmp_path / "export", small_phantom(7), "P1", dose=None)
    rs = write_rtstruct({"Rt_Lung_Contour": st["masks"]["Lung_R"], "GTV-1": st["masks"]["GTV"]},
                        st["reference"], tmp_path / "export" / "rs.dcm")
    (tmp_path / "map.yaml").write_text("Rt_Lung_Contour: lung_right\n", encoding="utf-8")
    common = ["--image", str(st["ct"]), "--rtstruct", str(rs), "--structure-map", str(tmp_path / "map.yaml"),
              "--feature-classes", "firstorder"]
    grids = {}
    for spec, name in (("Rt_Lung_Contour", "mapped"), ("role:lung_right", "role")):
        assert main(["radiomics", *common, "--structure", spec, "-o", str(tmp_path / f"{name}.csv")]) == 0
        s = pd.read_csv(tmp_path / f"{name}_settings.csv")
        grids[name] = (s.grid[0], s.spacing_mm[0], s.voxels[0])
        f = pd.read_csv(tmp_path / f"{name}.csv")
        grids[name + "_mean"] = f.loc[f.feature == "Mean", "value"].iloc[0]
        grids[name + "_id"] = f[SETTINGS_COLUMN].iloc[0]
    assert grids["mapped"] == grids["role"] and grids["mapped"][0].startswith("resampled")
    assert grids["mapped_mean"] == pytest.approx(grids["role_mean"])
    assert grids["mapped_id"] == grids["role_id"] != settings_id(load_params("default", feature_classes=["firstorder"]))


def test_a_lung_by_a_given_role_is_judged_cut_by_the_lungs_rule(small_phantom):
    """QA slicer68: a segment that is a lung by a role given to it (``lung_names``: a --structure-map role, a DICOM SEG
    code, a Slicer segment's terminology) was put on the lung grid, but its ``cut_by_image_edge`` was judged by the
    tumour's rule - a thin line of voxels reaching the first slice said the lung was cut by the scan at z- (the
    warning of a cut lung), where the same lung named right_lung is not.  One decision of what is a lung now."""
    import numpy as np

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    right = (arr == L.RIGHT_LUNG).astype(np.uint8)
    first = int(np.flatnonzero(right.any(axis=(1, 2)))[0])
    j, i = np.argwhere(right[first])[0]
    right[:first, j, i] = 1             # partial volume down to the CT's first slice: no cut lung
    mask = sitk.GetImageFromArray(right)
    mask.CopyInformation(small_phantom.ct)
    params = load_params("default", feature_classes=["shape"])
    named = extract(small_phantom.ct, {"right_lung": mask}, params).settings.iloc[0]
    given = extract(small_phantom.ct, {"Segment_1": mask}, params, lung_names=["Segment_1"]).settings.iloc[0]
    assert named.grid == given.grid == "resampled"
    assert given.cut_by_image_edge == named.cut_by_image_edge == ""
    tumour = extract(small_phantom.ct, {"Segment_1": mask}, params).settings.iloc[0]     # no role: the tumour's rule
    assert tumour.grid == "native" and tumour.cut_by_image_edge == "z-"
