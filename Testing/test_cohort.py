"""lungai cohort: DICOM RT exports -> per-patient lungs, tumour, radiomics, dose -> RP table (Dask, resumable)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dicom_helpers import rt_export
from lungai.dicom.cohort import RESULT, plan_cohort, run_cohort
from lungai.radiomics import load_params

# small feature set: the cohort logic is under test here, not pyradiomics
PARAMS = load_params("default", feature_classes=["shape", "firstorder"])


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    rt_export(root)
    return root


def _mapping(tmp_path: Path) -> Path:
    p = tmp_path / "map.yaml"
    p.write_text("Tumour_big: gtv_primary\n", encoding="utf-8")
    return p


def _clinical(tmp_path: Path) -> Path:
    p = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P9"], "clin_age_years": [61, 70, 55, 80],
                  "rp_grade2": [1, 0, 0, 1]}).to_csv(p, index=False)
    return p


def test_inventory_by_uids_says_what_each_patient_lacks(export):
    jobs, inv = plan_cohort(export)
    inv = inv.set_index("patient_id")
    assert [j.case for j in jobs] == ["P1", "P2", "P3"]
    # P2's RTSTRUCT lies in P1's folder: found by the referenced CT series, not the folder
    p2 = next(j for j in jobs if j.case == "P2")
    assert p2.rtstruct and Path(p2.rtstruct).parent.parent.name == "P1" and p2.rtdose is None
    assert inv.loc["P2", "missing"] == "RTDOSE" and inv.loc["P2", "dose_features"] == "no"
    assert inv.loc["P1", "missing"] == "" and inv.loc["P1", "tumour_from"] == "RTSTRUCT GTV"
    # the misnamed tumour has no role: reported, and the plan falls back to segmentation
    assert "Tumour_big" in inv.loc["P3", "notes"]
    assert inv.loc["P3", "tumour_from"].startswith("automatic segmentation")
    _, mapped = plan_cohort(export, mapping={"Tumour_big": "gtv_primary"})
    assert mapped.set_index("patient_id").loc["P3", "tumour_from"] == "RTSTRUCT Tumour_big"


def test_loop_table_joins_clinical_with_provenance_and_resumes(export, tmp_path):
    out = tmp_path / "out"
    s = run_cohort(export, out, PARAMS, clinical=_clinical(tmp_path), workers=0, mapping=_mapping(tmp_path))
    assert sorted(s.done) == ["P1", "P2", "P3"] and not s.failed
    table = pd.read_csv(out / "rp_table.csv", dtype={"case": str, "patient_id": str}).set_index("case")
    assert list(table.index) == ["P1", "P2", "P3"]           # P9 has no imaging: not a row
    assert table.loc["P1", "dose_mld_gy"] > 0 and np.isnan(table.loc["P2", "dose_mld_gy"])
    assert "dose: no RTDOSE" in table.loc["P2", "provenance"]
    assert "tumour: RTSTRUCT Tumour_big" in table.loc["P3", "provenance"]
    assert "lungs: RTSTRUCT Lung_R+Lung_L" in table.loc["P1", "provenance"]
    assert table.loc["P2", "clin_age_years"] == 70 and table.loc["P1", "rp_grade2"] == 1
    assert any(c.startswith("rad_tumour_") for c in table.columns)
    assert any(c.startswith("rad_lungs_minus_tumour_") for c in table.columns)
    # the GTV read from the RTSTRUCT is the one written (same voxels as the phantom's tumour)
    from lungai.rp.columns import infer_roles

    roles = infer_roles(table.reset_index(), "rp_grade2")
    assert roles.id_column == "case" and "provenance" in roles.ignored
    assert {"clinical", "dosimetric", "radiomic"} <= set(roles.roles.values())

    # resume after a partial run: P2's result is lost; the re-run redoes only P2
    (out / "patients" / "P2" / RESULT).unlink()
    s2 = run_cohort(export, out, PARAMS, clinical=_clinical(tmp_path), workers=0, mapping=_mapping(tmp_path))
    assert s2.done == ["P2"] and sorted(s2.skipped) == ["P1", "P3"]
    again = pd.read_csv(out / "rp_table.csv", dtype={"case": str}).set_index("case")
    pd.testing.assert_frame_equal(again, table)                # same inputs -> same table
    # other radiomics settings in the same folder: refused, nothing mixed
    from lungai.errors import InputError

    with pytest.raises(InputError, match="other radiomics parameters"):
        run_cohort(export, out, load_params("default", feature_classes=["shape"]), workers=0, mapping=_mapping(tmp_path))


def test_dask_failing_patient_recorded_others_go_on(export, tmp_path):
    """2 local Dask workers; P1's CT pixel data is cut off (headers intact, so it is planned): P1 fails
    with its error, P2 and P3 finish; after the CT is repaired the re-run does P1 only."""
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export, root)
    slices = sorted((root / "P1" / "CT").glob("*.dcm"))
    good = {p: p.read_bytes() for p in slices}
    for p, data in good.items():
        p.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    s = run_cohort(root, out, PARAMS, workers=2, mapping=_mapping(tmp_path))
    assert [c for c, _ in s.failed] == ["P1"] and sorted(s.done) == ["P2", "P3"]
    errors = pd.read_csv(out / "errors.csv")
    assert errors.loc[0, "case"] == "P1" and errors.loc[0, "error"]
    assert sorted(pd.read_csv(out / "rp_table.csv", dtype={"case": str})["case"]) == ["P2", "P3"]
    for p, data in good.items():
        p.write_bytes(data)
    s2 = run_cohort(root, out, PARAMS, workers=2, mapping=_mapping(tmp_path))
    assert s2.done == ["P1"] and not s2.failed and not (out / "errors.csv").exists()


def test_no_gtv_uses_segmentation_with_confidence(export, tmp_path):
    """Without a GTV role (misnamed structure, no mapping) the tumour comes from the shipped
    ensemble and its confidence is in the table."""
    from lungai.dicom.cohort import process_patient

    jobs, _ = plan_cohort(export)
    job = next(j for j in jobs if j.case == "P3")
    doc = process_patient(job, PARAMS, str(tmp_path))
    assert doc["status"] == "done", doc
    assert doc["provenance"]["tumour"].startswith("automatic segmentation")
    row = pd.read_csv(tmp_path / "patients" / "P3" / "features.csv").iloc[0]
    assert 0.0 <= row["tumour_confidence"] <= 1.0
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "patients" / "P3" / "tumour.nii.gz"))).any()
    assert any("Tumour_big" in n for n in doc["notes"])


def _set_patient_id(folder: Path, patient_id: str) -> None:
    import pydicom

    for f in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.PatientID = patient_id
        ds.save_as(f)


def test_patient_ids_with_the_same_folder_name_are_refused(export, tmp_path):
    """PatientIDs 'A/1' and 'A_1' would both write OUT/patients/A_1/: refused, naming both, before any work."""
    import shutil

    from lungai.errors import InputError

    root = tmp_path / "export"
    for pid, new in (("P1", "A/1"), ("P3", "A_1")):
        shutil.copytree(export / pid / "CT", root / pid / "CT")
        _set_patient_id(root / pid, new)
    with pytest.raises(InputError, match=r"same output folder: 'A/1' and 'A_1' \(both patients/A_1\)") as err:
        run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert "PatientIDs that differ" in err.value.fix
    assert not (tmp_path / "out" / "patients").exists()


def test_table_has_dose_columns_without_any_rtdose(export, tmp_path):
    """No patient has an RTDOSE: the dose_* columns are still there (NaN), so the schema does not depend on the data."""
    import shutil

    from lungai.dose import COLUMNS

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    s = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert s.done == ["P1"] and not s.failed
    table = pd.read_csv(tmp_path / "out" / "rp_table.csv")
    dose = [c for c in table.columns if c.startswith("dose_")]
    assert dose == [c for c in COLUMNS if c != "case"] and table[dose].isna().all().all()
    assert "dose: no RTDOSE" in table.loc[0, "provenance"]


def test_cli_and_bad_input(export, tmp_path, capsys):
    from lungai.cli import main

    assert main(["cohort", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["cohort", str(export), "-o", str(export / "inside")]) == 2
    assert "inside the DICOM export" in capsys.readouterr().err
    bad = tmp_path / "clin.csv"
    pd.DataFrame({"name": ["P1"], "clin_x": [1]}).to_csv(bad, index=False)
    out = tmp_path / "o2"
    rc = main(["cohort", str(export), "-o", str(out), "--workers", "0", "--clinical", str(bad),
               "--structure-map", str(_mapping(tmp_path))])
    assert rc == 2 and "no patient_id" in capsys.readouterr().err
    assert json.loads((out / "patients" / "P1" / RESULT).read_text(encoding="utf-8"))["status"] == "done"
