"""lungai cohort: DICOM RT exports -> per-patient lungs, tumour, radiomics, dose -> RP table (Dask, resumable)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from cohort_helpers import PARAMS, export, said_notes  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import RESULT, STAGING, plan_cohort, run_cohort
from lungai.radiomics import load_params


def _mapping(tmp_path: Path) -> Path:
    p = tmp_path / "map.yaml"
    p.write_text("Tumour_big: gtv_primary\n", encoding="utf-8")
    return p


def _clinical(tmp_path: Path) -> Path:
    p = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P9"], "clin_age_years": [61, 70, 55, 80],
                  "rp_grade2": [1, 0, 0, 1]}).to_csv(p, index=False)
    return p


def _centre_tumour(ct):
    """(mask, its array) of a small box tumour (6 x 8 x 8 voxels) at the centre of ``ct``: a stand-in segmentation."""
    arr = np.zeros(sitk.GetArrayFromImage(ct).shape, np.uint8)
    z, y, x = (s // 2 for s in arr.shape)
    arr[z - 3:z + 3, y - 4:y + 4, x - 4:x + 4] = 1
    tumour = sitk.GetImageFromArray(arr)
    tumour.CopyInformation(ct)
    return tumour, arr


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


def test_inventory_names_the_rtstruct_and_rtdose_by_their_path_under_the_root(export):
    """Feature: patients.csv's rtstruct / rtdose cells gave bare file names (every patient folder of an export has
    an RS.dcm / RD.dcm: which file was used could not be told).  They are the paths relative to DICOM_ROOT - P2's
    RTSTRUCT, lying in P1's folder, is found there."""
    jobs, inv = plan_cohort(export)
    inv = inv.set_index("patient_id")
    p2 = next(j for j in jobs if j.case == "P2")
    assert inv.loc["P2", "rtstruct"] == Path(p2.rtstruct).relative_to(export).as_posix()
    assert inv.loc["P2", "rtstruct"].startswith("P1/")
    for pid in ("P1", "P3"):
        job = next(j for j in jobs if j.case == pid)
        assert inv.loc[pid, "rtstruct"] == Path(job.rtstruct).relative_to(export).as_posix()
        assert inv.loc[pid, "rtdose"] == Path(job.rtdose).relative_to(export).as_posix()
        assert (export / inv.loc[pid, "rtdose"]).is_file() and (export / inv.loc[pid, "rtstruct"]).is_file()


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
    # QA: the dose said "(lungs minus GTV)" of the automatic tumour; its dose_gtv_* are that tumour's, said so
    assert "(lungs minus the automatic tumour" in doc["provenance"]["dose"]
    assert "dose_gtv_*: the automatic tumour's dose" in doc["provenance"]["dose"]
    assert ("needs review" in doc["provenance"]["dose"]) == bool(doc["tumour_review"])
    assert not np.isnan(row["dose_gtv_mean_gy"])


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
    assert not (tmp_path / "out").exists()      # no folder, settings.key or marker left by a refused run


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


def test_a_bad_scheduler_address_is_refused_before_any_work(export, tmp_path, capsys):
    """QA: `lungai cohort --scheduler localhost` crashed with a traceback (ValueError: missing port number) after
    writing the inventory; now an InputError naming the address and its form, no output folder made."""
    from lungai.cli import main

    out = tmp_path / "o"
    assert main(["cohort", str(export), "-o", str(out), "--scheduler", "localhost"]) == 2
    err = capsys.readouterr().err
    assert "'localhost' is not a Dask scheduler address" in err and "tcp://host:8786" in err
    assert not out.exists()


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
    assert not (out / "patients").exists()          # refused before any patient was processed


def test_an_input_file_option_given_no_regular_file_says_what_it_is(export, tmp_path, capsys):
    """QA cohortfollow65: ``--structure-map /dev/null`` (or a folder) said "structure mapping file /dev/null does not
    exist" - it exists, it is no file.  Each of cohort's file options (--structure-map, --clinical) says what the
    path is: a device, a folder, a link to nothing, or nothing."""
    import os

    from lungai.cli import main

    broken = tmp_path / "map.yaml"
    os.symlink(tmp_path / "gone.yaml", broken)
    cases = [(os.devnull, "is a device, not"), (str(tmp_path), "is a folder, not"),
             (str(broken), f"is a link to {tmp_path / 'gone.yaml'}, which does not exist"),
             (str(tmp_path / "none.yaml"), "does not exist")]
    for option, what in (("--structure-map", "structure mapping file"), ("--clinical", "clinical CSV")):
        for path, said in cases:
            out = tmp_path / "o"
            assert main(["cohort", str(export), "-o", str(out), "--workers", "0", option, path]) == 2
            err = capsys.readouterr().err
            assert f"{what} {path} {said}" in err, (option, path, err)
            assert "does not exist" in said or "does not exist" not in err, err
            assert not (out / "patients").exists()


def test_a_model_that_cannot_run_is_refused_before_any_patient(export, tmp_path, capsys):
    """QA cohortfollow65: ``--model`` naming a folder without model.json (or /dev/null) was found out only when a
    patient without a GTV was processed - after the other patients' work, that patient failed with the model's fix.
    It is checked (no weights read) before any work: no output folder made, no patient processed."""
    from lungai.cli import main

    (tmp_path / "no_model").mkdir()          # a folder without model.json (one that is not there: the test below)
    for model in (tmp_path / "no_model", "/dev/null"):
        out = tmp_path / "o"
        assert main(["cohort", str(export), "-o", str(out), "--workers", "0", "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert f"{model} is not a LungAI segmentation model (no model.json)" in err, err
        assert "leave --model out" in err and not out.exists()


def test_a_model_folder_that_does_not_exist_is_said_so(export, tmp_path, capsys):
    """QA inputfollow65: ``--model /nonexistent`` (a mistyped path or shipped model's name) said "is not a LungAI
    segmentation model (no model.json)", as of a folder that is there: it says the folder does not exist (a bare name:
    nor a shipped model's name), with the shipped models' names; an existing folder keeps the no-model.json words."""
    from lungai.cli import main
    from lungai.errors import InputError
    from lungai.seg.model_meta import read_meta
    from lungai.seg.resources import DYNUNET_MODEL_NAME

    out = tmp_path / "o"
    missing = tmp_path / "no_such_model"
    assert main(["cohort", str(export), "-o", str(out), "--workers", "0", "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"the model folder {missing} does not exist" in err and "no model.json" not in err, err
    assert "check the path" in err and DYNUNET_MODEL_NAME in err and not out.exists(), err
    with pytest.raises(InputError, match="lungai-seg-dynunt is neither a model folder .* nor the name of a shipped"):
        read_meta("lungai-seg-dynunt")
    link = tmp_path / "link"
    link.symlink_to(missing)
    with pytest.raises(InputError, match=f"the model folder {link} is a link to {missing}, which does not exist"):
        read_meta(link)
    with pytest.raises(InputError, match=r"is not a LungAI segmentation model \(no model.json\)"):
        read_meta(tmp_path)


def test_a_root_that_is_no_folder_draws_no_scan_bar(tmp_path, capsys):
    """QA inputfollow65: ``lungai cohort /nonexistent`` (and ``dicom-scan``) drew "cohort: scanning DICOM: 0it" before
    the "is not a folder" error: the root is checked before the bar."""
    from lungai.cli import main

    missing = tmp_path / "no_export"
    for argv in (["cohort", str(missing), "-o", str(tmp_path / "o")], ["dicom-scan", str(missing)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{missing} is not a folder" in err, err
        assert "scanning DICOM" not in err and "it/s" not in err and "0%" not in err, err


def test_a_bad_clinical_csv_is_refused_before_any_patient(export, tmp_path):
    """Not UTF-8, ';'-separated with commas in its header, no id column, a patient twice, a column the cohort
    computes: refused before any
    patient is processed (nothing written)."""
    from lungai.errors import InputError

    bad = {"latin.csv": ("patient_id,clin_site\nP1,Gen\xe8ve\n".encode("latin-1"), "not UTF-8"),
           # ';' with commas in the header: a comma reading is possible too (a clean ';' table is read)
           "semi.csv": (b"patient_id;clin_age (years, at diagnosis);clin_weight\nP1;61,5;70\nP2;70;71\n",
                        "could be comma- or semicolon-separated"),
           "noid.csv": (b"name,clin_age\nP1,61\n", "no patient_id"),
           "dup.csv": (b"patient_id,clin_age\nP1,61\nP1,62\n", "more than once"),
           "clash.csv": (b"patient_id,dose_mld_gy\nP1,12\n", r"a column \['dose_mld_gy'\] of a name the cohort computes")}
    for name, (data, problem) in bad.items():
        (tmp_path / name).write_bytes(data)
        out = tmp_path / f"out_{name}"
        with pytest.raises(InputError, match=problem):
            run_cohort(export, out, PARAMS, clinical=tmp_path / name, workers=0)
        assert not out.exists()


@pytest.fixture(scope="module")
def p1_baseline(export, tmp_path_factory):
    """P1 as exported (one PLAN RTDOSE, GTV, Lung_R, Lung_L): the reference result."""
    from lungai.dicom.cohort import process_patient

    jobs, _ = plan_cohort(export)
    out = tmp_path_factory.mktemp("p1_baseline")
    doc = process_patient(next(j for j in jobs if j.case == "P1"), PARAMS, str(out))
    assert doc["status"] == "done", doc
    return pd.read_csv(out / "patients" / "P1" / "features.csv").iloc[0]


def _p1_copy(export, tmp_path) -> Path:
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    return root


def _p1_job(root, mapping=None):
    jobs, inv = plan_cohort(root, mapping)
    return next(j for j in jobs if j.case == "P1"), inv.set_index("patient_id").loc["P1"]


def _p1_done(job, out, baseline, columns, **tolerance):
    """Process P1's job into ``out``: done, and its features row equal to the baseline's in ``columns``."""
    from lungai.dicom.cohort import process_patient

    doc = process_patient(job, PARAMS, str(out))
    assert doc["status"] == "done", doc
    row = pd.read_csv(out / "patients" / "P1" / "features.csv").iloc[0]
    for col in columns:
        assert row[col] == pytest.approx(baseline[col], **tolerance), col
    return doc, row


def test_beam_doses_of_one_plan_summed_other_several_rtdoses_fail_the_patient(export, p1_baseline, tmp_path):
    """Three BEAM RTDOSEs of one plan (QA: only beam0 was used, MLD 9.3 instead of 27.8 Gy): summed, said in the
    inventory and provenance, the same dose features as the plan dose; a second plan's dose next to them makes the
    RTDOSE ambiguous: the patient fails with the problem and fix, nothing computed from one of them."""
    from dose_helpers import with_summation_type
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    for i, f in enumerate((0.2, 0.3, 0.5)):
        with_summation_type(plan, root / "P1" / "RTDOSE" / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    plan.unlink()
    job, inv = _p1_job(root)
    assert len(job.rtdose_files) == 3 and "3 BEAM doses of one plan summed" in inv["notes"]
    assert "several plans or beams?" not in inv["notes"]                    # scan's question answered
    doc, _ = _p1_done(job, tmp_path / "out", p1_baseline, ("dose_mld_gy", "dose_v20_pct", "dose_gtv_mean_gy"), abs=1e-3)
    assert doc["provenance"]["dose"].startswith("sum of 3 BEAM RTDOSEs of one plan")
    assert "[that every beam of the plan has its dose could not be checked (no RTPLAN in the export)]" in \
        doc["provenance"]["dose"]

    with_summation_type(root / "P1" / "RTDOSE" / "beam0.dcm", root / "P1" / "RTDOSE" / "plan2.dcm", "PLAN",
                        plan="1.2.3.2", factor=5.0)
    out = tmp_path / "out2"
    s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done
    error = pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert "4 RTDOSEs share this CT's frame of reference" in error and "keep only the plan dose" in error
    assert pd.read_csv(out / "patients.csv").loc[0, "dose_features"].startswith("no (ambiguous")


def test_a_beam_dose_exported_twice_is_summed_once(export, tmp_path):
    """QA: BEAM doses B0, B1, B2 of one plan and B1_copy.dcm (the same SOPInstanceUID, exported twice): "sum of 4
    BEAM RTDOSEs", MLD 45.6 instead of 35.8 Gy.  The copy is left out, named in the inventory."""
    import shutil

    from dose_helpers import with_summation_type

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    for i, f in enumerate((0.2, 0.3, 0.5)):
        with_summation_type(plan, root / "P1" / "RTDOSE" / f"B{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    plan.unlink()
    shutil.copy(root / "P1" / "RTDOSE" / "B1.dcm", root / "P1" / "RTDOSE" / "B1_copy.dcm")
    job, inv = _p1_job(root)
    assert [Path(f).name for f in job.rtdose_files] == ["B0.dcm", "B1.dcm", "B2.dcm"]
    assert "P1/RTDOSE/B1_copy.dcm left out: a copy of P1/RTDOSE/B1.dcm" in inv["notes"]    # named under the root
    assert "3 BEAM doses of one plan summed" in inv["notes"]


def test_beam_doses_are_checked_against_the_rtplan_of_the_export(export, tmp_path):
    """QA: 2 BEAM doses of a plan whose RTPLAN (in the export) lists 3 beams were summed (MLD 6.93 instead of 8.66
    Gy).  cohort's scan finds the patient's RTPLAN; the missing beam fails the patient at planning, named in the
    inventory (not "ambiguous"); all beams there: checked, said for the provenance."""
    import pydicom

    from dose_helpers import with_summation_type, write_rtplan

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    for i, f in enumerate((0.2, 0.3, 0.5)):
        with_summation_type(plan, root / "P1" / "RTDOSE" / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    patient = str(pydicom.dcmread(plan, stop_before_pixels=True).PatientID)
    plan.unlink()
    (root / "P1" / "RTPLAN").mkdir()
    write_rtplan(root / "P1" / "RTPLAN" / "RP.dcm", "1.2.3.1", [1, 2, 3, 4], patient_id=patient)
    job, inv = _p1_job(root)          # the beam doses say no beam number: counted against the plan's 4 beams
    assert job.error and "RTPLAN P1/RTPLAN/RP.dcm lists 4 treatment beams (1, 2, 3, 4) but there are only 3" in \
        job.error[0]
    assert inv["dose_features"].startswith("no (RTPLAN P1/RTPLAN/RP.dcm lists 4")
    # a refusal that is no ambiguity is not called one, and scan's question "several plans or beams?" is answered
    assert inv["rtdose"] == "3 RTDOSEs (refused: see dose_features)" and "several plans or beams?" not in inv["notes"]
    # the RTPLAN anonymised separately (another PatientID): found by its SOPInstanceUID, the difference said
    write_rtplan(root / "P1" / "RTPLAN" / "RP.dcm", "1.2.3.1", [1, 2, 3, 4], patient_id="ANON-2")
    job, inv = _p1_job(root)
    assert job.error and (f"RTPLAN P1/RTPLAN/RP.dcm (its PatientID 'ANON-2' is not the doses' {patient}: anonymised "
                          "separately? it was found by its SOPInstanceUID) lists 4 treatment beams") in job.error[0]
    write_rtplan(root / "P1" / "RTPLAN" / "RP.dcm", "1.2.3.1", [1, 2, 3], patient_id=patient)
    job, inv = _p1_job(root)
    assert not job.error and len(job.rtdose_files) == 3 and inv["dose_features"] == "yes"
    assert job.rtdose_check.startswith("as many BEAM doses as treatment beams of RTPLAN P1/RTPLAN/RP.dcm (3")
    # an RTPLAN cut short (pydicom reads its sequences lazily): the patient is not failed, the sum said unchecked
    data = (root / "P1" / "RTPLAN" / "RP.dcm").read_bytes()
    (root / "P1" / "RTPLAN" / "RP.dcm").write_bytes(data[:-30])
    job, inv = _p1_job(root)
    assert not job.error and len(job.rtdose_files) == 3 and inv["dose_features"] == "yes"
    assert job.rtdose_check.startswith("that every beam of the plan has its dose could not be checked (RTPLAN "
                                       "P1/RTPLAN/RP.dcm could not be read (")


def test_a_beam_sum_done_before_its_rtplan_was_exported_is_redone_and_refused(export, tmp_path, capsys):
    """A patient whose BEAM doses were summed (no RTPLAN then, or an older lungai) is not kept as done once the
    export's RTPLAN shows a beam without its dose: refused at planning; its old result stays in place (a failed redo
    never removes it: QA cohortdup), out of the table, and is redone by the next run."""
    import pydicom

    from dose_helpers import with_summation_type, write_rtplan

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    for i, f in enumerate((0.2, 0.3)):
        with_summation_type(plan, root / "P1" / "RTDOSE" / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    patient = str(pydicom.dcmread(plan, stop_before_pixels=True).PatientID)
    plan.unlink()
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    write_rtplan(root / "P1" / "RP.dcm", "1.2.3.1", [1, 2, 3], patient_id=patient)
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done and not s.skipped
    assert "lists 3 treatment beams (1, 2, 3) but there are only 2" in pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert (out / "patients" / "P1" / RESULT).exists()            # its old result kept in place ...
    assert "earlier result in" in pd.read_csv(out / "errors.csv").loc[0, "error"]
    # ... but no patient finished: the earlier run's table (P1's row) and its settings sidecar are not left behind
    assert not (out / "rp_table.csv").exists() and not (out / "rp_table.settings.json").exists()
    printed = "\n".join(said)
    assert "of an earlier run was removed (P1 is redone (inputs changed; " in printed and "P1 failed (see" in printed
    s = run_cohort(root, out, PARAMS, workers=0)                  # not kept as done: redone (and refused) again
    assert [c for c, _ in s.failed] == ["P1"] and not s.skipped


def test_an_earlier_table_is_kept_when_no_result_was_removed(export, tmp_path, capsys):
    """QA: the CT removed from the export: "0 processed, 0 skipped, 0 failed", yet rp_table.csv and its sidecar
    were removed, the note saying "its patients were redone or failed: see errors.csv" (no errors.csv; the
    patient's finished result still in patients/).  The table is removed only when a result was removed or a
    patient failed in this run; else kept, the note saying why."""
    import shutil

    root = _p1_copy(export, tmp_path)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    table = (out / "rp_table.csv").read_bytes()
    shutil.rmtree(root / "P1" / "CT")
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0)
    assert not s.done and not s.failed and not s.skipped
    assert (out / "rp_table.csv").read_bytes() == table and (out / "rp_table.settings.json").exists()
    assert (out / "patients" / "P1" / RESULT).exists() and not (out / "errors.csv").exists()
    printed = "\n".join(said)
    assert "note: no patient finished in this run (no patient with a CT series in the export), so " in printed, \
        printed
    assert "of an earlier run was kept as it is: no result in" in printed and "see errors.csv" not in printed


def test_a_patient_planned_with_dose_features_that_fails_is_not_left_saying_yes(export, tmp_path, monkeypatch):
    """QA: patients.csv said dose_features = yes for a patient whose dose then failed (the grid not covering the
    lungs, in errors.csv).  Once the run is over the inventory says it failed."""
    from lungai.dicom import cohort

    root = _p1_copy(export, tmp_path)
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "seconds": 0,
        "error": "the dose grid does not cover the lungs"})
    s = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"]
    inv = pd.read_csv(tmp_path / "out" / "patients.csv").set_index("patient_id").loc["P1"]
    assert inv["dose_features"] == "no (planned, but the patient failed: see errors.csv)"


def test_two_rtstructs_of_one_ct_fail_the_patient_naming_both(export, tmp_path, capsys):
    """QA: a revised RTSTRUCT (new UIDs, the GTV removed) beside the original: the cohort used the first by file
    name (renaming a file changed the MLD, rc 0), only a note 'choose one' in patients.csv.  As ambiguous RTDOSEs:
    the patient fails before any work, warned on the terminal, both files and the fix named."""
    import pydicom
    from pydicom.uid import generate_uid

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    ds = pydicom.dcmread(rs)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(root / "P1" / "RTSTRUCT" / "0_revised.dcm")
    job, inv = _p1_job(root)
    assert job.rtstruct is None and job.error and job.inputs["rtstruct"] is None
    assert "2 RTSTRUCTs reference this CT" in job.error[0] and "0_revised.dcm" in job.error[0]
    assert "rtstruct.dcm" in job.error[0] and "keep one RTSTRUCT per CT series" in job.error[1]
    assert inv["rtstruct"] == "2 RTSTRUCTs (ambiguous)" and "choose one" not in inv["notes"]
    assert inv["dose_features"] == "no (ambiguous RTSTRUCTs: fails)" and "fails" in inv["lungs_from"]
    out = tmp_path / "out"
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:      # the CLI says it on stderr: "warning: P1 will fail: ..."
        s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done
    assert any(str(w.message).startswith("P1 will fail: 2 RTSTRUCTs reference this CT") for w in said)
    error = pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert "0_revised.dcm" in error and "keep one RTSTRUCT per CT series" in error
    assert not (out / "patients" / "P1" / "features.csv").exists()                  # nothing computed


def test_several_rtdoses_of_one_name_are_told_apart_by_their_folders(export, tmp_path):
    """QA: two plans' RD.dcm in plan1/ and plan2/ failed the patient as "... RD.dcm (PLAN), RD.dcm (PLAN)": the
    files are named relative to the folder given (patients.csv, errors.csv)."""
    from dose_helpers import with_summation_type

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    for i in (1, 2):
        (root / "P1" / "RTDOSE" / f"plan{i}").mkdir()
        with_summation_type(plan, root / "P1" / "RTDOSE" / f"plan{i}" / "RD.dcm", "PLAN", plan=f"1.2.3.{i}")
    plan.unlink()
    job, inv = _p1_job(root)
    assert "P1/RTDOSE/plan1/RD.dcm (PLAN), P1/RTDOSE/plan2/RD.dcm (PLAN)" in job.error[0]


def _rtstruct_variant(src, dst, series_uid=None, sop_uid=None, label=None):
    """A copy of the RTSTRUCT ``src`` written to ``dst``: a new SOPInstanceUID (``sop_uid``, default new), drawn on
    the series ``series_uid`` (its RTReferencedSeriesSequence; default unchanged), a structure renamed to ``label``."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    if series_uid:
        for fr in ds.ReferencedFrameOfReferenceSequence:
            for st in fr.RTReferencedStudySequence:
                for se in st.RTReferencedSeriesSequence:
                    se.SeriesInstanceUID = series_uid
    if label:
        ds.StructureSetLabel = label
    ds.save_as(dst)
    return dst


def test_an_exact_copy_of_the_rtstruct_is_left_out_not_ambiguous(export, tmp_path):
    """QA (regression of the ambiguous-RTSTRUCT rule): RS_copy.dcm, byte-identical to the RTSTRUCT (one
    SOPInstanceUID), failed the patient as "2 RTSTRUCTs reference this CT".  As a copied RTDOSE: left out, named
    in the notes.  One SOPInstanceUID on files of different content is ambiguous, said so."""
    import shutil

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    shutil.copy(rs, root / "P1" / "RTSTRUCT" / "RS_copy.dcm")
    job, inv = _p1_job(root)
    assert not job.error and Path(job.rtstruct).name == "RS_copy.dcm"       # the first by path; the same content
    assert "P1/RTSTRUCT/rtstruct.dcm left out: a copy of P1/RTSTRUCT/RS_copy.dcm" in inv["notes"]
    assert inv["rtstruct"] == "P1/RTSTRUCT/RS_copy.dcm" and "choose one" not in inv["notes"]
    assert inv["lungs_from"].startswith("RTSTRUCT") and inv["dose_features"] == "yes"

    import pydicom
    _rtstruct_variant(rs, root / "P1" / "RTSTRUCT" / "RS_copy.dcm", sop_uid=pydicom.dcmread(rs).SOPInstanceUID,
                      label="revised")
    job, inv = _p1_job(root)
    assert job.rtstruct is None and job.error
    assert "same SOPInstanceUID" in job.error[0] and "different contents" in job.error[0]
    assert "RS_copy.dcm" in job.error[0] and "rtstruct.dcm" in job.error[0]
    assert inv["rtstruct"] == "2 RTSTRUCTs (ambiguous)"


def test_an_rtstruct_of_another_series_of_the_frame_is_left_out(export, tmp_path):
    """QA: an RTSTRUCT drawn on another series of the CT's frame of reference (the PET of an RT PET/CT, a 4D-CT
    phase not exported) failed a patient whose planning RTSTRUCT references the CT series itself, as "2 RTSTRUCTs
    reference this CT".  The one referencing the CT is used, the other named as left out; two drawn on other
    series (none on the CT) are ambiguous, worded so."""
    from pydicom.uid import generate_uid

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    pet = generate_uid()
    _rtstruct_variant(rs, root / "P1" / "RTSTRUCT" / "0_pet.dcm", series_uid=pet)
    job, inv = _p1_job(root)
    assert not job.error and Path(job.rtstruct).name == "rtstruct.dcm"
    assert "RTSTRUCT P1/RTSTRUCT/rtstruct.dcm used (it references this CT series)" in inv["notes"]
    assert f"P1/RTSTRUCT/0_pet.dcm (series {pet})" in inv["notes"]
    assert "drawn on series" not in inv["notes"] and "choose one" not in inv["notes"]
    assert inv["dose_features"] == "yes"

    _rtstruct_variant(rs, rs, series_uid=generate_uid())       # now neither references the CT series
    job, inv = _p1_job(root)
    assert job.rtstruct is None and job.error
    assert "2 RTSTRUCTs share this CT's frame of reference" in job.error[0]
    assert "none references this CT series" in job.error[0] and "reference this CT (" not in job.error[0]


def test_an_rtstruct_drawn_on_a_ct_series_not_exported_fails_the_patient_at_planning(export, tmp_path):
    """QA: the export held a 2x thicker reconstruction of the planning CT (another SeriesInstanceUID, same frame of
    reference), the RTSTRUCT drawn on the planning series, not exported: the patient was planned as fine and failed
    only when processed ("a contour does not lie in a CT slice plane"), after the other patients' work.  Now found
    at planning, naming the patient, the RTSTRUCT file and the missing series; an RTSTRUCT of a missing series that
    fits the CT's slices is still used (placed by the frame of reference, with a note)."""
    import pydicom
    from pydicom.uid import generate_uid

    from lungai.dicom.cohort import inventory_warnings

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    planning = generate_uid()
    _rtstruct_variant(rs, rs, series_uid=planning)            # fits: the same slices under another series UID
    job, inv = _p1_job(root)
    assert not job.error and job.rtstruct and f"drawn on series {planning}" in inv["notes"]

    thick = generate_uid()
    slices = sorted((f for f in root.rglob("*.dcm") if pydicom.dcmread(f, stop_before_pixels=True).Modality == "CT"),
                    key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    for i, f in enumerate(slices):          # the export's CT: every 2nd slice, a series of its own
        if i % 2:
            f.unlink()
            continue
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = thick
        ds.save_as(f)
    jobs, table = plan_cohort(root)
    job, inv = jobs[0], table.set_index("patient_id").loc["P1"]
    assert job.error, inv["notes"]
    assert ("RTSTRUCT P1/RTSTRUCT/rtstruct.dcm was drawn on CT series " + planning + ", which is not in the "
            "export") in job.error[0]
    assert "between two of this CT's slices" in job.error[0] and f"export CT series {planning}" in job.error[1]
    assert job.error[0] in inv["notes"] and "drawn on series" not in inv["notes"]
    assert any(w.startswith("P1 will fail: RTSTRUCT P1/RTSTRUCT/rtstruct.dcm was drawn on CT series " + planning)
               for w in inventory_warnings(jobs, table))


def test_empty_template_structure_does_not_replace_the_contoured_gtv(export, p1_baseline, tmp_path):
    """An empty 'GTVn' from a template next to the contoured GTV (QA: the patient got the automatic segmentation,
    7.5 ml instead of the contoured 82 ml): the contoured GTV is used and the empty one named; a contoured GTV
    that cannot be read fails the patient instead of being silently replaced by the automatic segmentation."""
    from dicom_helpers import with_empty_structures
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    with_empty_structures(rs, ["GTVn", "Lungs"], rs)
    job, inv = _p1_job(root)
    assert inv["tumour_from"] == "RTSTRUCT GTV" and "without contours left out: GTVn, Lungs" in inv["notes"]
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    assert doc["provenance"]["tumour"] == "RTSTRUCT GTV" and doc["provenance"]["lungs"] == "RTSTRUCT Lung_R+Lung_L"
    row = pd.read_csv(tmp_path / "out" / "patients" / "P1" / "features.csv").iloc[0]
    assert np.isnan(row["tumour_confidence"])
    for col in ("dose_mld_gy", "dose_gtv_mean_gy", "rad_tumour_original_shape_MeshVolume"):
        assert row[col] == pytest.approx(p1_baseline[col], rel=1e-6), col

    import pydicom                     # a slice of the GTV's contours left out: a gap, so it cannot be read
    ds = pydicom.dcmread(rs)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    item = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number)
    zs = sorted({float(c.ContourData[2]) for c in item.ContourSequence})
    item.ContourSequence = [c for c in item.ContourSequence if float(c.ContourData[2]) != zs[len(zs) // 2]]
    ds.save_as(rs)
    job, _ = _p1_job(root)
    doc = process_patient(job, PARAMS, str(tmp_path / "out_gap"))
    assert doc["status"] == "failed" and "the RTSTRUCT's GTV cannot be read" in doc["error"], doc
    assert "map the GTV structures to null" in doc["error"]


def test_a_gtv_of_two_separate_parts_is_read_with_allow_gaps(export, tmp_path, capsys):
    """A GTV structure of two parts with CT slices between them (two lesions, nodes at several levels in one ROI: QA
    on LUNG1-003 with gtv-2 and gtv-3 in one 'GTVn') failed the patient with "accept the gaps with --allow-gaps",
    an option cohort did not have: the patient could only be run with the automatic segmentation.  Now
    ``--allow-gaps`` (``allow_gaps=True``) reads it: the tumour is exactly the two parts."""
    import pydicom

    from lungai.cli import main
    from lungai.dicom.cohort import TUMOUR, process_patient
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.io import read_ct

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    ct = read_ct(root / "P1" / "CT")
    whole = sitk.GetArrayFromImage(read_rtstruct(rs, ct, names=["GTV"])["GTV"]).astype(bool)
    ds = pydicom.dcmread(rs)            # the GTV's two middle contour planes left out: two parts, 2 slices apart
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    item = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number)
    zs = sorted({float(c.ContourData[2]) for c in item.ContourSequence})
    gone = set(zs[len(zs) // 2 - 1: len(zs) // 2 + 1])
    item.ContourSequence = [c for c in item.ContourSequence if float(c.ContourData[2]) not in gone]
    ds.save_as(rs)
    expected = whole.copy()
    for z in gone:
        expected[int(round(ct.TransformPhysicalPointToContinuousIndex((0.0, 0.0, z))[2]))] = False
    assert 0 < expected.sum() < whole.sum()

    job, _ = _p1_job(root)
    doc = process_patient(job, PARAMS, str(tmp_path / "out_gap"))
    assert doc["status"] == "failed" and "--allow-gaps" in doc["error"], doc
    doc = process_patient(job, PARAMS, str(tmp_path / "out"), allow_gaps=True)
    assert doc["status"] == "done", doc
    assert doc["provenance"]["tumour"] == "RTSTRUCT GTV"
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "patients" / "P1" / TUMOUR))).astype(bool)
    assert np.array_equal(tumour, expected)
    # the patient's record says which structure was read with gaps (the flag applies to all; the lungs had none)
    gaps = [n for n in doc["notes"] if "read as separate parts" in n]
    assert gaps == ["structure 'GTV' has no contour on 2 CT slices between its first and last (z = "
                    + ", ".join(f"{z:.1f}" for z in sorted(gone)) + f" mm; contoured on {len(zs) - 2} of {len(zs)} "
                    "slices): read as separate parts (gaps between slices allowed)"], doc["notes"]
    saved = json.loads((tmp_path / "out" / "patients" / "P1" / "result.json").read_text(encoding="utf-8"))
    assert gaps[0] in saved["notes"]

    out = tmp_path / "cli"             # the option the error names is the cohort command's
    assert main(["cohort", str(root), "-o", str(out), "--workers", "0", "--allow-gaps"]) == 0, capsys.readouterr().err
    table = pd.read_csv(out / "rp_table.csv")
    assert list(table["patient_id"]) == ["P1"] and table["provenance"].str.contains("tumour: RTSTRUCT GTV").all()


def test_only_a_combined_lungs_structure_gives_the_dose_lungs(export, p1_baseline, tmp_path):
    """An RTSTRUCT with GTV and one 'Lungs' structure (QA: the automatic lungs were used while dose-features used the
    contoured Lungs): the dose features come from it, as dose-features; whole-lung radiomics, no per-side ones."""
    from lungai.dicom.cohort import process_patient
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    write_rtstruct({"GTV": masks["GTV"], "Lungs": sitk.Or(masks["Lung_R"], masks["Lung_L"])},
                   ct_reference(root / "P1" / "CT"), tmp_path / "rs_lungs.dcm", label="synthetic")
    rs.unlink()
    (tmp_path / "rs_lungs.dcm").replace(rs)
    job, inv = _p1_job(root)
    assert inv["lungs_from"].startswith("RTSTRUCT Lungs")
    doc, row = _p1_done(job, tmp_path / "out", p1_baseline,
                        ("dose_mld_gy", "dose_v20_pct", "rad_lungs_original_shape_MeshVolume"), rel=1e-3)
    assert doc["provenance"]["lungs"].startswith("RTSTRUCT structure Lungs")
    assert not any(c.startswith(("rad_right_lung_", "rad_left_lung_")) for c in row.index)


def test_lungs_named_in_another_language_are_the_rtstructs_lungs(export, p1_baseline, tmp_path):
    """An RTSTRUCT from a planning system set up in French ('Poumon D' / 'Poumon G'; QA on LUNG1-003): the patient
    got the automatic lungs ("no contoured lung structures in the RTSTRUCT"), its MLD 14.37 instead of the plan's
    14.23 Gy.  Now the contoured lungs are used, and the results are those of the English names."""
    import pydicom

    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    ds = pydicom.dcmread(rs)
    for item in ds.StructureSetROISequence:
        item.ROIName = {"Lung_R": "Poumon D", "Lung_L": "Poumon G"}.get(str(item.ROIName), item.ROIName)
    ds.save_as(rs)
    job, inv = _p1_job(root)
    assert inv["lungs_from"] == "RTSTRUCT Poumon D+Poumon G", inv["lungs_from"]
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    assert doc["provenance"]["lungs"] == "RTSTRUCT Poumon D+Poumon G"
    row = pd.read_csv(tmp_path / "out" / "patients" / "P1" / "features.csv").iloc[0]
    for col in ("dose_mld_gy", "dose_v20_pct", "rad_right_lung_original_shape_MeshVolume",
                "rad_left_lung_original_shape_MeshVolume"):
        assert row[col] == pytest.approx(p1_baseline[col], rel=1e-9), col


def test_table_keeps_the_radiomics_settings_and_rp_train_records_them(export, tmp_path):
    """QA: rp_table.csv lost the radiomics_settings column (each features.csv has it), so a model trained on it
    recorded no settings.  The table keeps it, with the sidecar rp_table.settings.json as radiomics writes; rp train
    records the id and the settings.  A file of the user's in the output folder (not of cohort's names) is kept."""
    from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id, value_settings
    from lungai.rp.prepare import training_radiomics_settings

    root = _p1_copy(export, tmp_path)
    out = tmp_path / "study"
    out.mkdir()
    (out / "mine.txt").write_text("mine", encoding="utf-8")
    s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["P1"] and not s.failed
    assert (out / "mine.txt").read_text(encoding="utf-8") == "mine"
    table = pd.read_csv(out / "rp_table.csv", dtype={"case": str, "patient_id": str})
    assert table[SETTINGS_COLUMN].tolist() == [settings_id(PARAMS)]
    side = json.loads((out / "rp_table.settings.json").read_text(encoding="utf-8"))
    assert side["id"] == settings_id(PARAMS)
    rad = [c for c in table.columns if c.startswith("rad_")]
    card = training_radiomics_settings(table, rad, [out / "rp_table.csv"])
    assert card["id"] == settings_id(PARAMS)
    assert card["settings"] == json.loads(json.dumps(value_settings(PARAMS), default=str))


def test_a_folder_with_the_users_files_of_cohorts_names_is_refused(export, tmp_path):
    """QA: -o study/ holding the user's patients.csv, rp_table.csv, errors.csv: they were replaced (errors.csv
    deleted).  A folder cohort did not write (no settings.key) that holds any of its output names is refused before
    any work, naming them; nothing is changed."""
    from lungai.errors import InputError

    for name in ("patients.csv", "rp_table.csv", "errors.csv", "patients"):
        out = tmp_path / f"study_{name}"
        out.mkdir()
        if name == "patients":
            (out / name).mkdir()
        else:
            (out / name).write_text("mine\n", encoding="utf-8")
        with pytest.raises(InputError, match=f"holds {name}, not written by lungai cohort"):
            run_cohort(export, out, PARAMS, workers=0)
        assert sorted(p.name for p in out.iterdir()) == [name]          # no settings.key, no inventory
        if name != "patients":
            assert (out / name).read_text(encoding="utf-8") == "mine\n"


def test_a_fraction_rtdose_fails_the_patient_at_planning(export, tmp_path, capsys):
    """QA: a FRACTION RTDOSE was listed dose_features=yes and failed only after the radiomics.  Its summation type is
    checked when planning: the inventory says why, the patient fails before any work (printed on the terminal)."""
    from dose_helpers import with_summation_type

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    with_summation_type(plan, root / "P1" / "RTDOSE" / "fraction.dcm", "FRACTION", factor=1 / 30)
    plan.unlink()
    job, inv = _p1_job(root)
    assert job.error and "DoseSummationType FRACTION" in job.error[0] and job.rtdose is None
    assert inv["dose_features"].startswith("no (") and inv["dose_features"] != "no"
    assert "DoseSummationType FRACTION" in inv["notes"] and inv["rtdose"] == "P1/RTDOSE/fraction.dcm (not a plan dose)"
    out = tmp_path / "out"
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:      # the CLI says it on stderr: "warning: P1 will fail: ..."
        s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done
    assert any(str(w.message).startswith("P1 will fail: P1/RTDOSE/fraction.dcm has DoseSummationType FRACTION")
               for w in said)
    assert "DoseSummationType FRACTION" in pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert not (out / "patients" / "P1" / "features.csv").exists()                  # nothing computed


def test_several_ct_series_of_one_patient_are_warned_on_the_terminal(tmp_path, capsys, monkeypatch):
    """QA: a patient with 2 CT series gets rows QA-TWOCT_1 / _2 with one patient_id; the 'keep one' note was only in
    patients.csv.  It is printed as a warning (the patients' processing is stubbed: the plan is under test)."""
    from dicom_helpers import small_phantom
    from lungai.dicom import cohort
    from lungai.dicom.synthetic import write_ct_series

    ct = small_phantom(7).ct
    for i in (1, 2):
        write_ct_series(ct, tmp_path / "export" / f"ct{i}", patient_id="QA-TWOCT",
                        study_uid=f"1.2.826.0.1.3680043.99.{i}")
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "error": "stub", "seconds": 0})
    from lungai.cli import main

    assert main(["cohort", str(tmp_path / "export"), "-o", str(tmp_path / "out"), "--workers", "0"]) == 1
    table = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert sorted(table["case"]) == ["QA-TWOCT_1", "QA-TWOCT_2"]
    out = capsys.readouterr().err       # an InputNote: on stderr, as dicom-scan says it
    assert ("warning: QA-TWOCT has 2 CT series: lungai cohort rows QA-TWOCT_1, QA-TWOCT_2 - keep one per patient "
            "before training" in out), out
    assert "to keep one, move the other series' files out of the export folder and run again" in out, out


def test_several_ct_series_of_one_patient_say_which_row_is_which_series(tmp_path, capsys, monkeypatch):
    """QA (LUNG1-003 as a planning CT 2014-01-01 with RTSTRUCT + RTDOSE and a follow-up CT 2015-06-01 of 40 slices):
    the rows B002_1 / B002_2 are numbered by StudyInstanceUID - the follow-up was _1 - and 'keep one per patient'
    did not say which row is which series.  The warning and each row's note name the series: slices, study date,
    number and description, and whether it has the RTSTRUCT / RTDOSE."""
    import pydicom

    from dicom_helpers import small_phantom
    from lungai.dicom import cohort
    from lungai.dicom.synthetic import write_ct_series

    ct = small_phantom(7).ct
    for i, (date, desc) in enumerate((("20140101", "Thorax planning 3mm"), ("20150601", "follow-up")), start=1):
        folder = tmp_path / "export" / f"ct{i}"
        write_ct_series(ct, folder, patient_id="QA-TWOCT", study_uid=f"1.2.826.0.1.3680043.99.{i}")
        for f in folder.glob("*.dcm"):
            ds = pydicom.dcmread(f)
            ds.StudyDate, ds.SeriesDescription, ds.SeriesNumber = date, desc, i + 1
            ds.save_as(f)
    jobs, inv = plan_cohort(tmp_path / "export")
    n = ct.GetSize()[2]
    notes = dict(zip(inv["case"], inv["notes"]))
    assert f"this row: {n} slices, study 2014-01-01, #2 'Thorax planning 3mm'" in notes["QA-TWOCT_1"], notes
    assert f"this row: {n} slices, study 2015-06-01, #3 'follow-up'" in notes["QA-TWOCT_2"], notes
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "error": "stub", "seconds": 0})
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:      # the CLI says it on stderr: "warning: QA-TWOCT has 2 CT series ..."
        run_cohort(tmp_path / "export", tmp_path / "out", PARAMS, workers=0)
    out = "\n".join(str(w.message) for w in said)
    assert (f"keep one per patient before training (QA-TWOCT_1: {n} slices, study 2014-01-01, #2 'Thorax planning "
            f"3mm', no RTSTRUCT, no RTDOSE; QA-TWOCT_2: {n} slices, study 2015-06-01, #3 'follow-up', no RTSTRUCT, "
            "no RTDOSE)") in out, out


def test_automatic_lungs_every_note_and_a_one_lung_map_warned(export, tmp_path, monkeypatch):
    """Automatic lungs: every note of segment_lungs reaches the patient's notes (not only the scan's cut: an uncertain
    right/left label too); a map with one lung label missing is warned once, by segment_lungs' note (the lung-map
    check of lungai.lungs.check, as dose-features, is not repeated for automatic lungs)."""
    import lungai.lungs as lungs_pkg
    from lungai.dicom.cohort import process_patient
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    write_rtstruct({"GTV": masks["GTV"]}, ct_reference(root / "P1" / "CT"), tmp_path / "rs_gtv.dcm", label="synthetic")
    rs.unlink()
    (tmp_path / "rs_gtv.dcm").replace(rs)
    real = lungs_pkg.segment_lungs

    def right_only(ct, progress=None):
        result = real(ct)
        arr = sitk.GetArrayFromImage(result.labels)
        arr[arr == 2] = 0
        labels = sitk.GetImageFromArray(arr)
        labels.CopyInformation(result.labels)
        result.labels = labels
        result.notes.append("only one lung region found ...: the right/left label is uncertain - check it")
        return result

    monkeypatch.setattr(lungs_pkg, "segment_lungs", right_only)
    job, _ = _p1_job(root)
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    assert any("trachea" in n or "airways not removed" in n for n in doc["notes"]), doc["notes"]
    assert any("right/left label is uncertain" in n for n in doc["notes"]), doc["notes"]
    # said once: segment_lungs' own one-lung note, not again by the lung-map check (lungai.lungs.check)
    assert not any("the lung map holds only" in n for n in doc["notes"]), doc["notes"]


def test_a_rerun_redoes_a_patient_whose_rtdose_was_added(export, tmp_path, capsys):
    """QA: run without the RTDOSE, the RTDOSE added to the export, re-run: '0 processed, 1 already done (skipped)',
    the table without dose features.  result.json records the inputs (CT series, RTSTRUCT, RTDOSE files); a patient
    whose inputs changed is redone with a note (cohort's own files of the old run removed first), one whose inputs
    are the same is skipped."""
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["P1"]
    assert np.isnan(pd.read_csv(out / "rp_table.csv").loc[0, "dose_mld_gy"])
    shutil.copytree(export / "P1" / "RTDOSE", root / "P1" / "RTDOSE", dirs_exist_ok=True)
    # review: cohort's own files of the old run went only with result.json; the other lungs file name stood for an
    # old run's mask that this run does not write (lungs.nii.gz vs dose_lungs.nii.gz); a user's file stays
    patient = out / "patients" / "P1"
    stale = patient / ("dose_lungs.nii.gz" if (patient / "lungs.nii.gz").is_file() else "lungs.nii.gz")
    stale.write_bytes(b"old run")
    (patient / "my_notes.txt").write_text("mine", encoding="utf-8")
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s2 = run_cohort(root, out, PARAMS, workers=0)
    assert s2.done == ["P1"] and not s2.skipped
    assert not stale.exists() and (patient / "my_notes.txt").read_text(encoding="utf-8") == "mine"
    assert "note: P1: inputs changed since the last run (RTDOSE added): redone" in said, said
    table = pd.read_csv(out / "rp_table.csv")
    assert table.loc[0, "dose_mld_gy"] > 0 and "dose: RTDOSE" in table.loc[0, "provenance"]
    doc = json.loads((out / "patients" / "P1" / RESULT).read_text(encoding="utf-8"))
    assert doc["inputs"]["rtdose"][0]["file"] == "rtdose.dcm" and doc["inputs"]["ct"]["series_uid"]
    assert any("RTDOSE added" in n for n in doc["notes"])
    s3 = run_cohort(root, out, PARAMS, workers=0)          # nothing changed: skipped
    assert s3.skipped == ["P1"] and not s3.done


def test_a_rerun_redoes_a_patient_whose_ct_was_re_exported_with_the_same_file_names_and_sizes(export, tmp_path,
                                                                                                capsys):
    """QA: result.json recorded the CT by its slices' names and sizes only.  A corrected CT series exported again
    under the same file names (an uncompressed slice's size never changes) - here every slice 100 HU higher, its
    UIDs kept - was taken as done: the old radiomics stayed in rp_table.csv silently.  The CT's slices are recorded
    by their contents too (one hash of the series); a result of an older lungai (no hash) is compared as it was."""
    import pydicom

    root = tmp_path / "export"
    import shutil

    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    mean = "rad_tumour_original_firstorder_Mean"
    before = pd.read_csv(out / "rp_table.csv").loc[0, mean]
    slices = [f for f in sorted(root.rglob("*.dcm")) if pydicom.dcmread(f, stop_before_pixels=True).Modality == "CT"]
    sizes = {f: f.stat().st_size for f in slices}
    for f in slices:     # the corrected series: other pixel values, same files
        ds = pydicom.dcmread(f)
        ds.PixelData = (ds.pixel_array + 100).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(f)
    assert {f: f.stat().st_size for f in slices} == sizes
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s2 = run_cohort(root, out, PARAMS, workers=0)
    assert s2.done == ["P1"] and not s2.skipped
    assert "note: P1: inputs changed since the last run (CT series changed (the same slice files and sizes, other " \
           "contents: a re-exported series)): redone" in said, said
    assert pd.read_csv(out / "rp_table.csv").loc[0, mean] == pytest.approx(before + 100, abs=1e-6)
    # a result of an older lungai (its CT recorded by names and sizes only) is kept when they match
    from lungai.dicom.cohort import inputs_change

    recorded = json.loads((out / "patients" / "P1" / RESULT).read_text(encoding="utf-8"))["inputs"]
    assert recorded["ct"]["sha256"] and inputs_change(recorded, recorded) is None
    older = {**recorded, "ct": {k: v for k, v in recorded["ct"].items() if k != "sha256"}}
    assert inputs_change(older, recorded) is None
    older["ct"]["files"] = older["ct"]["files"][1:]
    assert inputs_change(older, recorded) == "CT series changed"
    assert run_cohort(root, out, PARAMS, workers=0).skipped == ["P1"]


def test_settings_key_is_the_mapping_and_model_contents_not_their_paths(export, tmp_path, monkeypatch):
    """QA: an edited structure-map file was not noticed (a table mixing mappings), while `./map.yaml` vs `map.yaml`
    or naming the default model explicitly was refused as 'other settings'.  The key hashes the parsed mapping and
    the resolved model's contents."""
    from lungai.errors import InputError
    from lungai.seg.resources import DEFAULT_MODEL_NAME, default_model_dir

    root = _p1_copy(export, tmp_path)
    out = tmp_path / "out"
    mapping = _mapping(tmp_path)
    assert run_cohort(root, out, PARAMS, workers=0, mapping=mapping).done == ["P1"]
    monkeypatch.chdir(tmp_path)
    s = run_cohort(root, out, PARAMS, workers=0, mapping="./map.yaml", model_dir=DEFAULT_MODEL_NAME)
    assert s.skipped == ["P1"]
    s = run_cohort(root, out, PARAMS, workers=0, mapping={"tumour_big": "gtv_primary"},
                   model_dir=str(default_model_dir()))
    assert s.skipped == ["P1"]
    mapping.write_text("Tumour_big: gtv_primary\ngtv-3: gtv\n", encoding="utf-8")
    with pytest.raises(InputError, match="other radiomics parameters, structure mapping or model"):
        run_cohort(root, out, PARAMS, workers=0, mapping=mapping)


def test_automatic_tumour_notes_fit_cohort_and_a_review_flag_is_in_the_table(export, tmp_path, monkeypatch, capsys):
    """QA: the automatic tumour's notes named probability.nii.gz, a 'candidates' list and --seed-point, which cohort
    neither writes nor takes; a tumour flagged for review was only in the provenance text.  The notes say what holds
    in a cohort folder (candidates in result.json, contour a GTV / lungai segment --seed-point), the review reasons
    are a table column (ignored as a feature) and a terminal warning.  (The segmentation is stubbed: its notes are
    built from lungai.seg.infer's own note parts.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    tumour, arr = _centre_tumour(ct)
    notes = [f"2 elongated (vessel-like) regions, 1.0 ml, left out of the tumour mask{infer.KEPT_IN_PROBABILITY}",
             f"1 region lying mostly outside the lungs, 2.0 ml, left out (chest wall); {infer.OUTSIDE_LUNGS_HINT}",
             f"automatic mode found 2 candidate regions; ...; the other 1 (3.0 ml) are listed {infer.CANDIDATES_LISTED}"
             f" - check them; {infer.ANOTHER_CANDIDATE_HINT}"]
    info = {"confidence": 0.31, "needs_review": True, "notes": notes,
            "review_reasons": ["low confidence", "several candidate regions (automatic mode)"],
            "candidates": [{"rank": 1, "centre_lps_mm": [1.0, 2.0, 3.0], "volume_ml": 3.0}]}
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info=info))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    out = tmp_path / "out"
    from lungai.errors import InputNote
    from note_helpers import notes_made

    made = notes_made(monkeypatch)
    with pytest.warns(InputNote) as said:   # the CLI says it on stderr (QA cohortstd67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["P3"], s.failed
    doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    text = "\n".join(doc["notes"])
    assert "probability.nii.gz" not in text and "'candidates'" not in text and "run again" not in text
    assert "in result.json under 'tumour_candidates'" in text and "contour it as a GTV in the RTSTRUCT" in text
    assert "needs a GTV contoured in the RTSTRUCT" in text
    assert doc["tumour_candidates"][0]["volume_ml"] == 3.0
    table = pd.read_csv(out / "rp_table.csv", dtype={"case": str})
    assert table.loc[0, "tumour_review"] == "low confidence; several candidate regions (automatic mode)"
    assert "needs review" not in capsys.readouterr().out
    (review,) = [str(w.message) for w in said if "needs review" in str(w.message)]
    assert review.startswith("P3: the automatic tumour needs review (low confidence"), review
    (note,) = [n for n in made if str(n) == review]      # with its form naming no patient
    assert note.without_ids.startswith("a patient: the automatic tumour needs review (low confidence"), note
    assert "P3" not in note.without_ids and "<patient>" in note.without_ids, note.without_ids
    from lungai.rp.columns import infer_roles

    assert "tumour_review" in infer_roles(table.assign(rp=[1]), "rp").ignored


def test_the_automatic_tumours_provenance_shows_its_confidence_apart_from_the_review_threshold(export, tmp_path,
                                                                                              monkeypatch):
    """QA segfollow69: the provenance printed the confidence with 2 decimals - 0.6402 against a review threshold of
    0.644 read "confidence 0.64, needs review", the threshold's own value; it uses lungai segment's wording
    (lungai.scene.results.confidence_text: the decimals that show them apart, "uncalibrated" where it is).  (The
    segmentation is stubbed.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.errors import InputNote
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    tumour = _centre_tumour(read_ct(root / "P3" / "CT"))[0]
    for n, (extra, shown) in enumerate([({}, "confidence 0.640, needs review)"),
                                        ({"calibrated": False}, "uncalibrated confidence 0.640, needs review)")]):
        info = {"confidence": 0.6402, "review_threshold": 0.644, "needs_review": True,
                "review_reasons": ["low confidence"], "notes": [], **extra}
        monkeypatch.setattr(infer, "segment_tumour", lambda *a, _i=info, **k: SimpleNamespace(tumour=tumour, info=_i))
        monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
        out = tmp_path / f"out{n}"
        with pytest.warns(InputNote):
            s = run_cohort(root, out, PARAMS, workers=0)
        assert s.done == ["P3"], s.failed
        doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
        assert doc["provenance"]["tumour"].endswith(shown), doc["provenance"]["tumour"]


def test_the_automatic_tumour_is_named_so_outside_the_lungs_and_empty(export, tmp_path, monkeypatch):
    """QA emptysel65 / idforms66: a patient without a GTV (P3's tumour structure 'Tumour_big' has no GTV role) gets
    the automatic tumour, and its radiomics' notes and errors name it so (cohort passes ``tumour_named`` only then):
    lying outside the lungs, "the automatic tumour does not overlap the lungs", not "the tumour mask" cohort was
    never given; empty, segment 'tumour' fails as "the automatic tumour is empty" with a fix a cohort user can take
    (contour a GTV), not "segment 'tumour' is empty (0 voxels)", fix "check the mask/label value".  (The
    segmentation is stubbed.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    masks = read_rtstruct(next((root / "P3" / "RTSTRUCT").glob("*.dcm")), ct)
    lungs = sitk.GetArrayFromImage(masks["Lung_R"]) + sitk.GetArrayFromImage(masks["Lung_L"]) > 0
    box = _centre_tumour(ct)[1].astype(bool)
    outside = box & ~lungs
    assert outside.sum() >= 8 and lungs.any()
    info = {"confidence": 0.9, "needs_review": False, "notes": [], "review_reasons": [], "candidates": []}
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    runs = {}
    nodose = tmp_path / "nodose"
    shutil.copytree(root / "P3", nodose / "P3", ignore=shutil.ignore_patterns("RTDOSE"))
    for name, arr, folder in (("outside", outside, root), ("empty", np.zeros_like(box), root),
                              ("empty_nodose", np.zeros_like(box), nodose)):
        tumour = sitk.GetImageFromArray(arr.astype(np.uint8))
        tumour.CopyInformation(ct)
        monkeypatch.setattr(infer, "segment_tumour", lambda *a, _t=tumour, **k: SimpleNamespace(tumour=_t, info=info))
        runs[name] = run_cohort(folder, tmp_path / name, PARAMS, workers=0)
    assert runs["outside"].done == ["P3"], runs["outside"].failed
    doc = json.loads((tmp_path / "outside" / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    said = [n for n in doc["notes"] if n.startswith("radiomics lungs_minus_tumour: ")]
    assert len(said) == 1 and said[0].startswith(
        "radiomics lungs_minus_tumour: the automatic tumour does not overlap the lungs (no voxel of it in segment "
        "'lungs'), so segment 'lungs_minus_tumour' equals the lungs"), doc["notes"]
    # empty, with an RTDOSE: the patient fails naming the automatic tumour (not "the GTV mask", "leave --gtv out")
    (case, error), = runs["empty"].failed
    assert case == "P3" and error.startswith("the automatic tumour is empty (no voxel), so the dose metrics"), error
    assert "--gtv" not in error and "contour the tumour as a GTV in the patient's RTSTRUCT" in error, error
    # without one: its segments of the tumour fail (named so), the lungs' are computed; said in the patient's notes
    assert runs["empty_nodose"].done == ["P3"], runs["empty_nodose"].failed
    notes = json.loads((tmp_path / "empty_nodose" / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))["notes"]
    text = "\n".join(notes)
    assert ("radiomics tumour: the automatic tumour is empty (no voxel), so segment 'tumour' is empty" in text
            and "contour the tumour as a GTV in the patient's RTSTRUCT" in text), notes
    assert "(0 voxels)" not in text and "check the mask/label value" not in text, notes


def test_inventory_names_the_rtdose_refusals_own_reason(export, tmp_path):
    """QA: an RTDOSE with DoseType ERROR, or without DoseUnits, was listed as 'not a plan dose (DoseSummationType)'.
    The inventory gives the refusal's own reason."""
    import pydicom

    root = _p1_copy(export, tmp_path)
    rd = root / "P1" / "RTDOSE" / "rtdose.dcm"
    ds = pydicom.dcmread(rd)
    ds.DoseType = "ERROR"
    ds.save_as(rd)
    job, inv = _p1_job(root)
    assert "DoseType ERROR" in inv["dose_features"] and "DoseSummationType" not in inv["dose_features"]
    assert inv["rtdose"] == "P1/RTDOSE/rtdose.dcm (refused)" and "DoseType ERROR" in job.error[0]
    ds.DoseType = "PHYSICAL"
    del ds.DoseUnits
    ds.save_as(rd)
    _, inv = _p1_job(root)
    assert "has no DoseUnits" in inv["dose_features"] and "DoseSummationType" not in inv["dose_features"]


def test_an_effective_dose_is_said_in_the_patients_notes(export, tmp_path):
    """An RTDOSE of DoseType EFFECTIVE (RBE-weighted / EQD2) gave the patient's MLD, V20 ... among the physical doses
    of the others without a word; the inventory's notes (and so the patient's result.json notes) say it is not
    physical dose."""
    import pydicom

    root = _p1_copy(export, tmp_path)
    rd = root / "P1" / "RTDOSE" / "rtdose.dcm"
    job, inv = _p1_job(root)
    assert "DoseType EFFECTIVE" not in inv["notes"] and not any("DoseType EFFECTIVE" in n for n in job.notes)
    ds = pydicom.dcmread(rd)
    ds.DoseType = "EFFECTIVE"
    ds.save_as(rd)
    job, inv = _p1_job(root)
    assert "P1/RTDOSE/rtdose.dcm has DoseType EFFECTIVE: a biologically weighted dose" in inv["notes"]
    assert any("not the physical dose" in n for n in job.notes) and not job.error


def test_an_effective_dose_is_recorded_in_the_rp_table_and_said_by_rp_predict(export, tmp_path):
    """QA (clidose58): the note of an EFFECTIVE RTDOSE was in the patient's notes (patients.csv, result.json) but not
    in rp_table.csv, so lungai rp predict on the table said nothing of it (Multimodal Predict says it under the risk
    of a dose table Lung Radiomics made of such a dose).  The table's rtdose_notes column records it, as dose.csv
    does (lungai.dose.features.NOTES_COLUMN), and table_warnings repeats it naming the patient; a PHYSICAL dose's
    row has none."""
    import pydicom

    from lungai.dicom.cohort import _written
    from lungai.io.outputs import record_outputs
    from lungai.rp.prepare import recorded_notes_warnings

    root = _p1_copy(export, tmp_path)
    run_cohort(root, tmp_path / "physical", PARAMS, workers=0, mapping=_mapping(tmp_path))
    table = pd.read_csv(tmp_path / "physical" / "rp_table.csv", dtype=str, keep_default_na=False)
    assert table["rtdose_notes"].tolist() == [""] and not recorded_notes_warnings(table, None)
    rd = root / "P1" / "RTDOSE" / "rtdose.dcm"
    ds = pydicom.dcmread(rd)
    ds.DoseType = "EFFECTIVE"
    ds.save_as(rd)
    run_cohort(root, tmp_path / "effective", PARAMS, workers=0, mapping=_mapping(tmp_path))
    table = pd.read_csv(tmp_path / "effective" / "rp_table.csv", dtype=str, keep_default_na=False)
    said = "P1/RTDOSE/rtdose.dcm has DoseType EFFECTIVE: a biologically weighted dose"
    assert table["rtdose_notes"].iloc[0].startswith(said), table["rtdose_notes"].iloc[0]
    two = pd.concat([table, table.assign(case="P1b", patient_id="P1b", rtdose_notes="")])
    assert [w[:len("P1: ") + len(said)] for w in recorded_notes_warnings(two, None)] == [f"P1: {said}"]
    # the result of an older lungai (no rtdose_notes): redone, not left without its note
    folder = tmp_path / "effective" / "patients" / "P1"
    doc = json.loads((folder / "result.json").read_text())
    del doc["inputs"]["rtdose_notes"]
    (folder / "result.json").write_text(json.dumps(doc))
    pd.read_csv(folder / "features.csv").drop(columns="rtdose_notes").to_csv(folder / "features.csv", index=False)
    record_outputs(tmp_path / "effective", "cohort", _written(tmp_path / "effective"))     # as it wrote them
    assert run_cohort(root, tmp_path / "effective", PARAMS, workers=0, mapping=_mapping(tmp_path)).done == ["P1"]
    table = pd.read_csv(tmp_path / "effective" / "rp_table.csv", dtype=str, keep_default_na=False)
    assert table["rtdose_notes"].iloc[0].startswith(said)
    assert not run_cohort(root, tmp_path / "effective", PARAMS, workers=0, mapping=_mapping(tmp_path)).done   # once


def test_a_dvh_only_rtdose_beside_the_dose_grid_does_not_fail_the_patient(export, tmp_path):
    """A planning system's DVH-only RTDOSE (no pixel data) beside the plan's dose grid failed the patient ("has no
    ImagePositionPatient ..."); it is left out, the inventory's notes say so."""
    from test_dose import _dvh_only

    root = _p1_copy(export, tmp_path)
    _dvh_only(root / "P1" / "RTDOSE" / "rtdose.dcm", root / "P1" / "RTDOSE" / "rd_dvh.dcm")
    job, inv = _p1_job(root)
    assert not job.error, job.error
    assert [Path(f).name for f in job.rtdose_files or [job.rtdose]] == ["rtdose.dcm"]
    assert "P1/RTDOSE/rd_dvh.dcm holds no dose grid" in inv["notes"] and "left out" in inv["notes"]


def test_a_users_file_in_a_cohort_folder_is_never_deleted(export, tmp_path):
    """QA: in a folder cohort already owned (settings.key), a user's errors.csv was deleted on a re-run without
    failures.  cohort records what it wrote (lungai.io.outputs marker .lungai-cohort): a file of its output names
    it did not write is refused, untouched; its own errors.csv is removed once the failure is gone; a folder of an
    older cohort (settings.key, no marker) is still re-runnable."""
    from lungai.errors import InputError

    root = _p1_copy(export, tmp_path)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    assert "settings.key" in (out / ".lungai-cohort").read_text(encoding="utf-8")
    (out / "errors.csv").write_text("mine\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds errors.csv, not written by lungai cohort"):
        run_cohort(root, out, PARAMS, workers=0)
    assert (out / "errors.csv").read_text(encoding="utf-8") == "mine\n"
    (out / "errors.csv").unlink()
    (out / ".lungai-cohort").unlink()                    # a folder of an older cohort version
    assert run_cohort(root, out, PARAMS, workers=0).skipped == ["P1"]
    assert "rp_table.csv" in (out / ".lungai-cohort").read_text(encoding="utf-8")


def test_one_contoured_lung_is_named_when_the_automatic_lungs_are_used(export, tmp_path):
    """QA: an RTSTRUCT with only one lung (Lung_L mapped to null) got 'no contoured lung structures in the RTSTRUCT;
    automatic lungs' although Lung_R is contoured.  The note names what was found and what is missing."""
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    job, inv = _p1_job(root, mapping={"Lung_L": None})
    assert "right lung Lung_R but no contoured left lung" in inv["lungs_from"], inv["lungs_from"]
    doc = process_patient(job, PARAMS, str(tmp_path / "out"), mapping={"Lung_L": None})
    assert doc["status"] == "done", doc
    assert ("the RTSTRUCT has a contoured right lung Lung_R but no contoured left lung; automatic lungs"
            in doc["notes"]), doc["notes"]
    assert not any("no contoured lung structures" in n for n in doc["notes"])


def test_clinical_id_column_and_ids_are_matched_without_spaces_and_case(tmp_path):
    """' Patient_ID ' is the patient_id column; '007 ' is patient 007 (joins the DICOM PatientID 007), and
    '007' / '007 ' are one patient twice; a trailing comma on each row shifts no column."""
    from lungai.dicom.cohort import read_clinical
    from lungai.errors import InputError

    (tmp_path / "c.csv").write_text(" Patient_ID ,clin_age\n007 ,61\nP2,70\n", encoding="utf-8")
    clin = read_clinical(tmp_path / "c.csv")
    assert list(clin.patient_id) == ["007", "P2"] and list(clin.clin_age) == [61, 70]
    (tmp_path / "d.csv").write_text("patient_id,clin_age\n007,61\n007 ,62\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"more than once: \['007'\]"):
        read_clinical(tmp_path / "d.csv")
    (tmp_path / "t.csv").write_text("patient_id,clin_age,clin_sex\nP1,61,F,\nP2,70,M,\n", encoding="utf-8")
    clin = read_clinical(tmp_path / "t.csv")
    assert list(clin.patient_id) == ["P1", "P2"] and list(clin.clin_sex) == ["F", "M"]


def test_a_clinical_csv_with_an_id_column_lungai_stage_reads_is_read(tmp_path):
    """QA: NSCLC-Radiogenomics' clinical CSV (id column 'Case ID'), which `lungai stage` reads, was refused by `lungai
    cohort --clinical` ("has no patient_id ... column"); any id column of lungai rp's or stage's tables is the
    patient_id column now (after patient_id / PatientID), its ids read as text."""
    from lungai.dicom.cohort import read_clinical

    for header in ("Case ID", "case_id", "Subject_ID"):
        (tmp_path / "c.csv").write_text(f"{header},clin_age\nR01-007,61\n007,70\n", encoding="utf-8")
        clin = read_clinical(tmp_path / "c.csv")
        assert list(clin.columns) == ["patient_id", "clin_age"] and list(clin.patient_id) == ["R01-007", "007"], header
    (tmp_path / "both.csv").write_text("Case ID,PatientID,clin_age\nA,P1,61\n", encoding="utf-8")
    assert list(read_clinical(tmp_path / "both.csv").patient_id) == ["P1"]       # the DICOM name first


def test_a_clinical_csv_headed_with_the_dicom_tags_name_is_read(tmp_path):
    """QA: a clinical CSV whose id column is headed `PatientID` or `Patient ID` (the DICOM tag's name, the commonest
    header) was refused ("has no patient_id column"); it is the patient_id column now, its ids read as text (007
    keeps its zeros); two such columns are refused, naming both."""
    from lungai.dicom.cohort import read_clinical
    from lungai.errors import InputError

    for header in ("PatientID", "Patient ID", " patientid "):
        (tmp_path / "c.csv").write_text(f"{header},clin_age\n007,61\nP2,70\n", encoding="utf-8")
        clin = read_clinical(tmp_path / "c.csv")
        assert list(clin.columns) == ["patient_id", "clin_age"] and list(clin.patient_id) == ["007", "P2"], header
    (tmp_path / "two.csv").write_text("PatientID,patient_id,clin_age\n007,7,61\n", encoding="utf-8")
    with pytest.raises(InputError, match="2 patient id columns: 'patient_id', 'PatientID'"):
        read_clinical(tmp_path / "two.csv")


def test_a_clinical_csv_with_an_id_column_rp_reads_is_read_as_rp_reads_it(tmp_path):
    """QA: `lungai cohort --clinical` matched the id column by its name lower-cased, not as lungai rp / stage match
    it (lungai.io.tables.is_id_name): a REDCap export's 'Record ID', 'Subject ID', R's 'Patient.ID' or
    'Patient-ID' were refused ("has no patient_id column") though rp train reads them as the id column."""
    from lungai.dicom.cohort import read_clinical
    from lungai.errors import InputError
    from lungai.io.tables import is_id_name

    for header in ("Record ID", "Subject ID", "Patient.ID", "Patient-ID", "RecordID"):
        assert is_id_name(header), header          # rp's and stage's rule
        (tmp_path / "c.csv").write_text(f"{header},clin_age\nR01-007,61\n007,70\n", encoding="utf-8")
        clin = read_clinical(tmp_path / "c.csv")
        assert list(clin.columns) == ["patient_id", "clin_age"] and list(clin.patient_id) == ["R01-007", "007"], header
    (tmp_path / "two.csv").write_text("Patient-ID,patient_id,clin_age\n007,7,61\n", encoding="utf-8")
    with pytest.raises(InputError, match="2 patient id columns: 'patient_id', 'Patient-ID'"):
        read_clinical(tmp_path / "two.csv")
    (tmp_path / "none.csv").write_text("Name,clin_age\nR01-007,61\n", encoding="utf-8")
    with pytest.raises(InputError, match="its columns are 'Name', 'clin_age'"):
        read_clinical(tmp_path / "none.csv")


def test_clinical_none_is_kept_in_the_rp_table_as_rp_reads_it(tmp_path):
    """Review: the clinical CSV was read with pandas' missing words: a clinical "None" (no comorbidity) became an
    empty cell in rp_table.csv while "none" stayed a category.  It is read as ``lungai rp`` reads tables (only an
    empty cell missing), so rp train sees the words as written ("None" a category, "NA" reported as missing)."""
    from lungai.dicom.cohort import _join_clinical, read_clinical
    from lungai.radiomics.csv_output import write_csv
    from lungai.rp.checks import numeric_features, read_table
    from lungai.rp.columns import infer_roles

    (tmp_path / "c.csv").write_text("patient_id,clin_comorb_cat,clin_weight_kg\nP1,None,NA\nP2,none,70\n"
                                    "P3,COPD,\nP4,NULL,80\n", encoding="utf-8")
    clin = read_clinical(tmp_path / "c.csv")
    assert list(clin.clin_comorb_cat) == ["None", "none", "COPD", "NULL"]
    table = pd.DataFrame({"case": ["P1", "P2", "P3", "P4"], "patient_id": ["P1", "P2", "P3", "P4"]})
    write_csv(_join_clinical(table, clin, []), tmp_path / "rp_table.csv")
    rp = read_table(tmp_path / "rp_table.csv")
    assert list(rp.clin_comorb_cat) == ["None", "none", "COPD", "NULL"]
    X = numeric_features(rp, infer_roles(rp, None), ["clin_comorb_cat", "clin_weight_kg"])
    assert list(X.clin_comorb_cat.fillna("-")) == ["None", "None", "COPD", "-"]
    assert list(X.clin_weight_kg.fillna(-1)) == [-1, 70, -1, 80]


def test_a_killed_run_still_resumes(export, tmp_path, monkeypatch):
    """Review: markers stamp each recorded file; cohort rewrites patients.csv / settings.key / a redone patient's
    files in place and records them only when the run ends, so a run killed on the way (SIGKILL, a cluster's time
    limit: no `finally`) left files not matching their stamps and every resume was refused ('changed since lungai
    cohort wrote them').  The run drops the stamps once it owns the folder; a user's file is still refused."""
    import shutil

    import lungai.dicom.cohort as cohort
    import lungai.radiomics.csv_output as csv_output
    from lungai.errors import InputError

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    assert "stamps" in (out / ".lungai-cohort").read_text(encoding="utf-8")
    shutil.copytree(export / "P1" / "RTDOSE", root / "P1" / "RTDOSE", dirs_exist_ok=True)   # P1 is redone

    def killed(*args, **kwargs):
        raise SystemExit(137)

    monkeypatch.setattr(cohort, "record_outputs", lambda *a, **k: None)     # killed: nothing recorded at the end
    monkeypatch.setattr(csv_output, "write_csv", killed)                     # ... while writing the table
    with pytest.raises(SystemExit):
        run_cohort(root, out, PARAMS, workers=0)
    monkeypatch.undo()
    s = run_cohort(root, out, PARAMS, workers=0)                             # the resume
    assert "P1" in s.done + s.skipped and pd.read_csv(out / "rp_table.csv").loc[0, "dose_mld_gy"] > 0
    (out / "patients.csv").write_text("mine\n", encoding="utf-8")            # the user's, saved over it
    with pytest.raises(InputError, match="patients.csv, changed since lungai cohort wrote it"):
        run_cohort(root, out, PARAMS, workers=0)


def test_a_segment_on_the_image_edge_is_warned_once_per_case_and_in_the_notes(export, tmp_path, monkeypatch, capsys):
    """QA: lungai radiomics / radiomics-batch warn of a segment on the CT's image edge (it may be cut by the scan);
    cohort recorded it nowhere but its radiomics settings.  It is now in the patient's notes (result.json) and said
    on the terminal once per case, each run.  (The automatic tumour is stubbed: a block on the CT's first slices.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    arr = np.zeros(sitk.GetArrayFromImage(ct).shape, np.uint8)
    y, x = (s // 2 for s in arr.shape[1:])
    arr[0:4, y - 4:y + 4, x - 4:x + 4] = 1           # on the scan's first slice (z-)
    tumour = sitk.GetImageFromArray(arr)
    tumour.CopyInformation(ct)
    info = {"confidence": 0.9, "needs_review": False, "notes": [], "review_reasons": [], "candidates": []}
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info=info))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    out = tmp_path / "out"
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:   # the CLI says it on stderr (QA cohortstd67: printed on stdout)
        assert run_cohort(root, out, PARAMS, workers=0).done == ["P3"]
    doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    cut = "segment 'tumour' touches the image's z- edge: it may be cut by the scan"
    assert any(n.startswith(cut) for n in doc["notes"]) and doc["edge_warnings"][0].startswith(cut)
    assert "touches the image's" not in capsys.readouterr().out
    lines = [w.message for w in said if "touches the image's" in str(w.message)]
    assert len(lines) == 1 and str(lines[0]).startswith("P3: " + cut)
    assert lines[0].without_ids.startswith("a patient: " + cut) and "P3" not in lines[0].without_ids
    with pytest.warns(InputNote) as said:
        assert run_cohort(root, out, PARAMS, workers=0).skipped == ["P3"]      # a resumed run says it again, once
    assert [str(w.message) for w in said if "touches the image's" in str(w.message)] == [str(lines[0])]


def test_an_ibsi_presets_notes_on_nan_values_are_in_the_patients_notes(export, tmp_path, monkeypatch):
    """QA: `lungai cohort --params ibsi-...` recorded a segment's errors and edge warnings in the patient's notes but
    not why values are NaN (Extraction.notes, which `lungai radiomics` prints and radiomics-batch records): a flat
    tumour's NaN ellipsoid densities were unexplained.  They are in result.json's notes ("radiomics <segment>: ...").
    (The automatic tumour is stubbed: a flat L of 3 voxels in soft tissue.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    hu = sitk.GetArrayFromImage(ct)
    z, y, x = (int(v[0]) for v in np.nonzero((hu > -100) & (hu < 100)))     # soft tissue: IBSI's -500..400 HU
    arr = np.zeros(hu.shape, np.uint8)
    arr[z, y, x] = arr[z, y, x + 1] = arr[z, y + 1, x] = 1
    assert ((hu[arr > 0] > -500) & (hu[arr > 0] < 400)).all()
    tumour = sitk.GetImageFromArray(arr)
    tumour.CopyInformation(ct)
    info = {"confidence": 0.9, "needs_review": False, "notes": [], "review_reasons": [], "candidates": []}
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info=info))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    out = tmp_path / "out"
    assert run_cohort(root, out, load_params("ibsi-a", feature_classes=["shape"]), workers=0).done == ["P3"]
    doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    assert ("radiomics tumour: morph_vol_dens_aee and morph_area_dens_aee are NaN: the ROI lies in one plane (flat, "
            "or a line), so its approximate enclosing ellipsoid has a zero-length axis") in doc["notes"]


def test_an_automatic_tumours_record_has_its_confidence_and_method_and_dicom_export_takes_it(export, tmp_path,
                                                                                              monkeypatch):
    """QA: a patient's result.json lacked the automatic tumour's confidence / review flag / method, so `dicom-export
    --tumour patients/P/tumour.nii.gz --result patients/P/result.json` refused the cohort's own tumour; and the
    provenance said 'ensemble' although a 1-member model uses MC dropout.  (The segmentation is stubbed.)"""
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.cli import main
    from lungai.dicom.cohort import process_patient
    from lungai.dicom.sr import read_sr, read_sr_comments
    from lungai.io import read_ct

    ct = read_ct(export / "P3" / "CT")
    tumour, arr = _centre_tumour(ct)
    volume = float(arr.sum() * np.prod(ct.GetSpacing()) / 1000.0)
    info = {"confidence": 0.31, "needs_review": True, "review_reasons": ["low confidence"], "review_threshold": 0.5,
            "tumor_volume_ml": volume, "method": "mc-dropout", "members": 1, "mc_passes": 10, "notes": [],
            "candidates": []}
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info=info))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    job = next(j for j in plan_cohort(export)[0] if j.case == "P3")
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    assert ", MC dropout, 10 passes, confidence 0.31, needs review)" in doc["provenance"]["tumour"]
    assert ", ensemble," not in doc["provenance"]["tumour"]
    folder = tmp_path / "out" / "patients" / "P3"
    record = json.loads((folder / RESULT).read_text(encoding="utf-8"))
    assert {k: record[k] for k in ("confidence", "needs_review", "review_reasons", "review_threshold", "method",
                                   "mc_passes")} == {"confidence": 0.31, "needs_review": True,
                                                     "review_reasons": ["low confidence"], "review_threshold": 0.5,
                                                     "method": "mc-dropout", "mc_passes": 10}
    assert record["model"] and record["model_identity"]["folder"] == record["model"]
    assert record["model_identity"]["member_sha256"] or record["model_identity"]["models"]
    assert main(["dicom-export", "--ct", str(export / "P3" / "CT"), "--tumour", str(folder / "tumour.nii.gz"),
                 "--result", str(folder / RESULT), "-o", str(tmp_path / "dicom")]) == 0
    sr = read_sr(tmp_path / "dicom" / "measurements.sr.dcm")
    assert sr["Case"]["confidence"][0] == pytest.approx(0.31) and sr["Case"]["mc_dropout_passes"][0] == 10
    assert read_sr_comments(tmp_path / "dicom" / "measurements.sr.dcm")["Case"].startswith(
        "Confidence from MC dropout, 10 passes, model ")
    # review: --results on the patient folder found no tumor.nii.gz (cohort writes tumour.nii.gz), exported the
    # lungs only and the SR still carried this tumour's confidence; now the folder's tumour is exported with it
    from dicom_helpers import provenance
    from lungai.dicom.seg import read_seg

    assert main(["dicom-export", "--ct", str(export / "P3" / "CT"), "--results", str(folder), "-o",
                 str(tmp_path / "folder")]) == 0
    assert "Tumour" in read_seg(tmp_path / "folder" / "results.seg.dcm", ct)
    assert provenance(tmp_path / "folder" / "results.seg.dcm", tmp_path / "folder" / "rtstruct.dcm")[0]["Tumour"] == \
        ("AUTOMATIC", "SlicerLungAI")
    assert read_sr(tmp_path / "folder" / "measurements.sr.dcm")["Case"]["confidence"][0] == pytest.approx(0.31)


def test_dicom_export_results_of_a_patient_folder_with_an_rtstruct_gtv(export, tmp_path, capsys):
    """Session 32 leftover: `dicom-export --results OUT/patients/P1` of a patient whose GTV came from the RTSTRUCT was
    refused ("result.json is a `lungai cohort` patient record, not the record of a lungai tumour segmentation"),
    its fix to respell the folder's masks with --tumour / --lungs.  --results takes a cohort patient folder: the
    record holds no lungai confidence, so the folder's tumour is exported as the user's contour (MANUAL, no SR
    confidence) and the record left out, with a note; --result naming the record is still refused."""
    from dicom_helpers import provenance
    from lungai.cli import main
    from lungai.dicom.cohort import process_patient
    from lungai.dicom.seg import read_seg
    from lungai.dicom.sr import read_sr
    from lungai.io import read_ct

    job = next(j for j in plan_cohort(export)[0] if j.case == "P1")
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done" and doc["provenance"]["tumour"] == "RTSTRUCT GTV", doc
    folder = tmp_path / "out" / "patients" / "P1"
    capsys.readouterr()
    assert main(["dicom-export", "--ct", str(export / "P1" / "CT"), "--results", str(folder), "-o",
                 str(tmp_path / "dicom")]) == 0
    out = capsys.readouterr().out
    assert f"note: {folder / RESULT} is a lungai cohort patient record whose tumour is RTSTRUCT GTV, not a lungai " \
           "segmentation: the tumour is exported as the user's contour (MANUAL, no confidence)" in out
    seg = tmp_path / "dicom" / "results.seg.dcm"
    assert {"Tumour", "Right lung", "Left lung"} <= set(read_seg(seg, read_ct(export / "P1" / "CT")))
    assert provenance(seg, tmp_path / "dicom" / "rtstruct.dcm")[0]["Tumour"][0] == "MANUAL"
    assert "Case" not in read_sr(tmp_path / "dicom" / "measurements.sr.dcm")      # no lungai confidence
    # --result naming the record is still refused (test_dicom_export_inputs), its advice that of --results DIR alone
    assert main(["dicom-export", "--ct", str(export / "P1" / "CT"), "--results", str(folder), "--result",
                 str(folder / RESULT), "-o", str(tmp_path / "e2")]) == 2
    err = capsys.readouterr().err
    assert "drop --result: --results DIR alone exports the folder's tumour as the user's contour (MANUAL" in err
    assert "instead of --results DIR" not in err and not (tmp_path / "e2").exists()


def test_no_gtv_but_an_igtv_the_dose_is_of_the_lungs_minus_it_as_dose_features(small_phantom, tmp_path, capsys,
                                                                                monkeypatch):
    """Review of 8b25950: with an RTSTRUCT holding an iGTV (with a gap: primary + node) and no GTV, cohort's
    dose_mld_gy was of the lungs minus the automatic tumour (9.57 Gy) while dose-features gave the lungs minus the
    iGTV (9.03 Gy), and the notes said the iGTV 'is not used as the tumour'.  Now the same rule: the dose's lungs are
    the lungs minus the iGTV, no GTV dose; the automatic tumour serves the radiomics only, as the provenance says."""
    import warnings

    from dicom_helpers import envelope_study
    from lungai.cli import main
    from lungai.dicom.cohort import process_patient

    from types import SimpleNamespace

    from lungai.dicom.synthetic import rt_structures
    from lungai.seg import infer, model_io, resources

    st, _ = envelope_study(small_phantom, tmp_path / "export")
    truth = sitk.GetArrayFromImage(rt_structures(small_phantom)["gtv"])

    def segment(ct, model, seed=0, progress=None):       # the automatic tumour, quick: the phantom's (the model is not under test)
        tumour = sitk.GetImageFromArray(truth)
        tumour.CopyInformation(ct)
        return SimpleNamespace(tumour=tumour, info={"confidence": 0.4, "needs_review": True,
                                                    "review_reasons": ["low confidence"], "method": "ensemble"})

    monkeypatch.setattr(infer, "segment_tumour", segment)
    monkeypatch.setattr(model_io, "load_model", lambda mdir: None)
    monkeypatch.setattr(resources, "resolve_model_dir", lambda d: tmp_path)
    monkeypatch.setattr("lungai.seg.model_meta.model_identity", lambda d: {"folder": str(d)})   # no files to hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                     str(st["rtstruct"]), "-o", str(tmp_path / "dose.csv")]) == 0
    capsys.readouterr()
    expected = pd.read_csv(tmp_path / "dose.csv").iloc[0]
    jobs, inv = plan_cohort(tmp_path / "export")
    notes = inv.set_index("patient_id").loc["ENV", "notes"]
    assert "subtracted from the lungs for the dose metrics (Lungs - iGTV; no GTV dose)" in notes
    assert "not used as the tumour" not in notes
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "out"))
    # the iGTV (primary + node, slices between) is read with gaps: the patient's record names it
    assert any(n.startswith("structure 'iGTV' has no contour on") for n in doc["notes"]), doc["notes"]
    assert doc["status"] == "done", doc
    row = pd.read_csv(tmp_path / "out" / "patients" / "ENV" / "features.csv").iloc[0]
    for col in ("dose_mld_gy", "dose_v20_pct", "dose_v5_pct", "dose_d50_gy"):
        assert row[col] == pytest.approx(expected[col], rel=1e-9), col
    assert np.isnan(row["dose_gtv_mean_gy"])                            # as dose-features: no GTV dose
    assert "lungs minus the tumour's motion envelope RTSTRUCT iGTV" in doc["provenance"]["dose"]
    assert doc["provenance"]["tumour"].startswith("automatic segmentation")
    assert "radiomics only: the dose metrics subtract the RTSTRUCT's motion envelope iGTV" in doc["provenance"]["tumour"]
    assert "rad_tumour_original_shape_MeshVolume" in row.index                  # tumour radiomics: automatic tumour


def _three_igtvs(rtstruct) -> None:
    """The RTSTRUCT's 'iGTV' ROI copied twice under new ROI numbers (three ROIs named 'iGTV': none can be read)."""
    import copy

    import pydicom

    ds = pydicom.dcmread(rtstruct)
    roi = next(r for r in ds.StructureSetROISequence if r.ROIName == "iGTV")
    contour = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == roi.ROINumber)
    top = max(int(r.ROINumber) for r in ds.StructureSetROISequence)
    for k in (1, 2):
        r, c = copy.deepcopy(roi), copy.deepcopy(contour)
        r.ROINumber = c.ReferencedROINumber = top + k
        ds.StructureSetROISequence.append(r)
        ds.ROIContourSequence.append(c)
    ds.save_as(rtstruct)


def _phantom_tumour_model(monkeypatch, truth, model_dir):
    """The cohort's automatic tumour, quick: the phantom's own ``truth`` array on the CT (the model is not under
    test), confidence 0.9, not flagged."""
    from types import SimpleNamespace

    from lungai.seg import infer, model_io, model_meta, resources

    def segment(ct, model, seed=0, progress=None):
        tumour = sitk.GetImageFromArray(truth)
        tumour.CopyInformation(ct)
        return SimpleNamespace(tumour=tumour, info={"confidence": 0.9, "needs_review": False, "method": "ensemble"})

    monkeypatch.setattr(infer, "segment_tumour", segment)
    monkeypatch.setattr(model_io, "load_model", lambda mdir: None)
    monkeypatch.setattr(resources, "resolve_model_dir", lambda d: model_dir)
    # no model files to hash here (model_identity itself: test_seg_recipe, test_seg_train)
    monkeypatch.setattr(model_meta, "model_identity", lambda d: {"folder": str(d)})


def test_an_unreadable_igtv_is_not_said_subtracted_in_the_cohorts_notes(small_phantom, tmp_path, monkeypatch):
    """QA: with three ROIs named 'iGTV' (none can be read) and no GTV, the cohort's dose fell back to the lungs minus
    the automatic tumour, but patients.csv and result.json still said the iGTV "is subtracted from the lungs for the
    dose metrics" and the dose provenance "(lungs minus GTV)".  Now they say what dose-features says of an envelope
    not read ("not used as the tumour"), why, and that the automatic tumour was subtracted instead."""
    from dicom_helpers import envelope_study
    from lungai.dicom.synthetic import rt_structures

    st, _ = envelope_study(small_phantom, tmp_path / "export")
    _three_igtvs(st["rtstruct"])
    truth = sitk.GetArrayFromImage(rt_structures(small_phantom)["gtv"])

    _phantom_tumour_model(monkeypatch, truth, tmp_path)
    summary = run_cohort(tmp_path / "export", tmp_path / "out", PARAMS, workers=0)
    assert not summary.failed
    doc = json.loads((tmp_path / "out" / "patients" / "ENV" / RESULT).read_text(encoding="utf-8"))
    inventory = pd.read_csv(tmp_path / "out" / "patients.csv").set_index("patient_id").loc["ENV", "notes"]
    table = pd.read_csv(tmp_path / "out" / "rp_table.csv").iloc[0]
    why = f"the tumour's motion envelope 'iGTV' cannot be read ({st['rtstruct']} holds 3 structures named 'iGTV'"
    for notes in ("; ".join(doc["notes"]), inventory):
        assert "subtracted from the lungs for the dose metrics" not in notes
        assert "structure 'iGTV' is an internal target volume (the GTV's motion envelope), not a GTV: it is not " \
               "used as the tumour" in notes
        assert why in notes and "the dose metrics subtract the automatic tumour from the lungs instead" in notes
    assert f"(lungs minus the automatic tumour: {why}" in doc["provenance"]["dose"]
    # the automatic tumour stands for the GTV (dose_gtv_* are its dose): said as without any envelope
    from lungai.dicom.cohort import AUTO_GTV_DOSE

    dose = doc["provenance"]["dose"]
    assert f"{why}" in dose and dose.endswith(
        f", not subtracted{', needs review' if doc['tumour_review'] else ''}; {AUTO_GTV_DOSE})")
    assert dose in table["provenance"]
    assert not np.isnan(table["dose_gtv_mean_gy"])           # the automatic tumour is the GTV of the dose


@pytest.mark.parametrize("copies", [False, True])
def test_an_igtvs_role_note_is_said_once_and_it_is_not_listed_without_a_role(small_phantom, tmp_path, copies):
    """Review: with three ROIs named 'iGTV' the cohort's notes said the iGTV's role note three times (role_notes looped
    over the names); and "structures without a role (see --structure-map): ..., iGTV" listed the iGTV the note before
    gave a part in the dose metrics (subtracted from the lungs: lungai.dicom.roles.dose_envelopes)."""
    from dicom_helpers import envelope_study
    from lungai.dicom.roles import role_notes

    st, _ = envelope_study(small_phantom, tmp_path / "export")
    if copies:
        _three_igtvs(st["rtstruct"])
    notes = plan_cohort(tmp_path / "export")[1].set_index("patient_id").loc["ENV", "notes"]
    assert notes.count("structure 'iGTV' is an internal target volume") == 1, notes
    assert "subtracted from the lungs for the dose metrics" in notes
    unnamed = [n for n in notes.split("; ") if n.startswith("structures without a role")]
    assert all("iGTV" not in n for n in unnamed), unnamed
    assert role_notes(["iGTV", "Heart", "iGTV", "iGTV"]) == role_notes(["iGTV", "Heart"])
    assert len(role_notes(["iGTV", "iGTV"], unread=["iGTV"])) == 1
    # with a GTV the iGTV has no part in the dose: still listed without a role
    assert role_notes(["GTV", "iGTV", "iGTV"]) == role_notes(["GTV", "iGTV"])


def test_a_resume_redoes_an_igtv_only_patient_made_with_the_old_dose_rule_only(small_phantom, tmp_path, capsys,
                                                                              monkeypatch):
    """Review of 02138d6: a patient with no GTV but an iGTV whose result an older lungai made (dose of the lungs minus
    the automatic tumour, a GTV dose) was kept by a resume: its inputs did not change.  Its inputs now record the
    envelope (``dose_envelope``): such an old result is redone; a patient with a GTV keeps its inputs (skipped)."""
    from dicom_helpers import envelope_study
    from lungai.dicom import cohort
    from lungai.dicom.synthetic import rt_structures, write_rt_study

    root = tmp_path / "export"
    envelope_study(small_phantom, root)
    write_rt_study(root, small_phantom, patient_id="WITHGTV")
    truth = sitk.GetArrayFromImage(rt_structures(small_phantom)["gtv"])

    _phantom_tumour_model(monkeypatch, truth, tmp_path)
    out = tmp_path / "out"
    with monkeypatch.context() as old:                  # an older lungai: no envelope (lungs minus the tumour)
        old.setattr(cohort, "dose_envelope_names", lambda *a, **k: [], raising=False)
        assert sorted(run_cohort(root, out, PARAMS, workers=0).done) == ["ENV", "WITHGTV"]
    docs = {p: out / "patients" / p / RESULT for p in ("ENV", "WITHGTV")}
    assert "dose_envelope" not in json.loads(docs["ENV"].read_text(encoding="utf-8"))["inputs"]
    gtv_doc = docs["WITHGTV"].read_text(encoding="utf-8")
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["ENV"] and s.skipped == ["WITHGTV"]
    printed = "\n".join(said)
    assert "ENV: inputs changed since the last run (an RTSTRUCT without a GTV but with a motion envelope (iGTV)" \
        in printed and ": redone" in printed
    env = json.loads(docs["ENV"].read_text(encoding="utf-8"))
    assert env["inputs"]["dose_envelope"] == ["iGTV"]
    assert "lungs minus the tumour's motion envelope" in env["provenance"]["dose"]
    assert docs["WITHGTV"].read_text(encoding="utf-8") == gtv_doc       # kept, inputs as they were
    assert "dose_envelope" not in json.loads(gtv_doc)["inputs"]
    s = run_cohort(root, out, PARAMS, workers=0)         # nothing changed since: both skipped
    assert sorted(s.skipped) == ["ENV", "WITHGTV"] and not s.done


def test_a_cohort_made_with_the_ignored_lung_spacing_resumes_without_it(export, tmp_path, capsys):
    """Review of 02138d6: a cohort made with a params file holding `lungai: {lung_spacing_mm: 2}` beside
    resampledPixelSpacing (accepted then, ignored: pyradiomics' grid holds every segment) could not be resumed after
    removing the line as the new refusal advises ('holds results made with other radiomics parameters').  Its
    stamp is the key of these parameters with that spacing (lungai.radiomics.settings.ignored_lung_spacing_key, as
    radiomics-batch): resumed, its patients kept with the current settings id."""
    import shutil

    from lungai.dicom.cohort import STAMP, _settings_key, _written
    from lungai.errors import InputError
    from lungai.io.outputs import record_outputs
    from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    yaml = tmp_path / "resampled.yaml"
    yaml.write_text("setting: {binWidth: 25, resampledPixelSpacing: [2, 2, 2]}\nimageType: {Original: {}}\n"
                    "featureClass: {shape: [], firstorder: []}\n", encoding="utf-8")
    params = load_params(str(yaml))
    out = tmp_path / "out"
    assert run_cohort(root, out, params, workers=0).done == ["P1"]
    # as the older lungai left it: its stamp of the parameters with the file's lung_spacing_mm: 2, another id
    (out / STAMP).write_text(_settings_key({**params, "lungai": {"lung_spacing_mm": 2}}, None, None), encoding="utf-8")
    features = out / "patients" / "P1" / "features.csv"
    frame = pd.read_csv(features, dtype={"case": str, "patient_id": str})
    frame[SETTINGS_COLUMN] = "sha256:8b9ec2611923"
    frame.to_csv(features, index=False)
    record_outputs(out, "cohort", _written(out))
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, params, workers=0)
    assert s.skipped == ["P1"] and not s.done
    assert any(n.startswith("note: resumed a cohort run made with a lung spacing beside resampledPixelSpacing")
               for n in said), said
    assert pd.read_csv(out / "rp_table.csv")[SETTINGS_COLUMN].tolist() == [settings_id(params)]
    assert run_cohort(root, out, params, workers=0).skipped == ["P1"]           # re-stamped: resumed as usual
    (out / STAMP).write_text(_settings_key({**params, "setting": {"binWidth": 5}}, None, None), encoding="utf-8")
    record_outputs(out, "cohort", _written(out))
    with pytest.raises(InputError, match="other radiomics parameters"):          # other parameters: still refused
        run_cohort(root, out, params, workers=0)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _short_pixels(path: Path) -> None:
    """The RTDOSE ``path`` rewritten with half its pixel data, the file whole (its PixelData's length says so): a
    file cut short inside its pixel data is named truncated by the scan already (QA dosecut64)."""
    import pydicom

    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:len(ds.PixelData) // 4 * 2]
    ds.save_as(path)


def test_a_truncated_rtdose_fails_the_patient_at_planning_and_leaves_no_masks(export, tmp_path, capsys):
    """QA: an RTDOSE cut to half its size was planned 'dose_features: yes', failed the patient only after the lungs,
    tumour and radiomics with pydicom's bare 'The number of bytes of pixel data is less than expected', and left
    lungs.nii.gz / tumour.nii.gz without result.json.  Its pixel data is checked when planning (the inventory says
    why, the patient fails before any work, the file named with the fix).  (A file cut short inside its pixel data
    is no RTDOSE of the scan: test_dicom_unreadable_files; here its pixel data is short, the file whole.)"""
    root = _p1_copy(export, tmp_path)
    _short_pixels(root / "P1" / "RTDOSE" / "rtdose.dcm")
    job, inv = _p1_job(root)
    assert job.error and "rtdose.dcm is truncated or corrupt" in job.error[0] and job.rtdose is None
    assert job.error[1] == "re-export the RTDOSE from the planning system"
    assert inv["dose_features"].startswith("no (P1/RTDOSE/rtdose.dcm is truncated")   # its path (cohort.md)
    assert inv["rtdose"] == "P1/RTDOSE/rtdose.dcm (refused)"
    out = tmp_path / "out"
    s = run_cohort(root, out, PARAMS, workers=0)
    assert [c for c, _ in s.failed] == ["P1"] and not s.done
    error = pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert "rtdose.dcm is truncated or corrupt" in error and "re-export the RTDOSE" in error
    assert "number of bytes of pixel data" not in error
    assert not (out / "patients" / "P1").exists()                          # nothing written, no empty folder


def test_the_dose_is_read_before_the_patients_work_and_a_failure_leaves_no_masks(export, tmp_path, monkeypatch):
    """An RTDOSE that passed planning but cannot be read (cut short afterwards) fails the patient before the lungs
    and tumour are made; a patient failing later (in the radiomics) has the masks this run wrote removed (no
    lungs.nii.gz / tumour.nii.gz without result.json; a masks-only leftover of an unfinished earlier run too), a
    user's file in its folder kept."""
    import lungai.dicom.cohort as cohort
    import lungai.radiomics as radiomics
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    job, _ = _p1_job(root)
    assert job.rtdose and not job.error
    _truncate(Path(job.rtdose))
    monkeypatch.setattr(cohort, "_lungs", lambda *a, **k: pytest.fail("lungs made before the dose was read"))
    out = tmp_path / "out"
    doc = process_patient(job, PARAMS, str(out))
    assert doc["status"] == "failed" and "rtdose.dcm is truncated or corrupt" in doc["error"], doc
    assert not (out / "patients" / "P1").exists()
    monkeypatch.undo()

    root = _p1_copy(export, tmp_path / "again")
    job, _ = _p1_job(root)
    folder = out / "patients" / "P1"
    folder.mkdir(parents=True)
    (folder / "my_notes.txt").write_text("mine\n", encoding="utf-8")
    (folder / "lungs.nii.gz").write_bytes(b"an unfinished earlier run's mask")

    def broken(*args, **kwargs):     # the masks written (into the staging folder, moved into place on success)
        stage = folder / STAGING
        assert (stage / "lungs.nii.gz").stat().st_size > 100 and (stage / "tumour.nii.gz").is_file()
        assert not (folder / "lungs.nii.gz").exists()       # the unfinished earlier run's mask: removed
        raise RuntimeError("radiomics broke")

    monkeypatch.setattr(radiomics, "extract", broken)
    doc = process_patient(job, PARAMS, str(out))
    assert doc["status"] == "failed" and "radiomics broke" in doc["error"], doc
    assert sorted(p.name for p in folder.iterdir()) == ["my_notes.txt"]


def test_a_dose_that_does_not_cover_the_lungs_fails_the_patient_before_the_radiomics(export, tmp_path, monkeypatch):
    """QA: an RTDOSE whose grid covers only part of the lungs failed the patient only after its radiomics were
    computed (about a minute per patient of a real CT, wasted).  The dose features are computed once the lungs and
    tumour are made, before the radiomics: the patient fails with the coverage error and the radiomics never run
    (its masks removed)."""
    import pydicom

    import lungai.radiomics as radiomics
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    job, _ = _p1_job(root)
    ds = pydicom.dcmread(job.rtdose)                  # the first half of the dose frames only
    frames = int(ds.NumberOfFrames) // 2
    ds.PixelData = ds.pixel_array[:frames].tobytes()
    ds.NumberOfFrames, ds.GridFrameOffsetVector = frames, list(ds.GridFrameOffsetVector)[:frames]
    ds.save_as(job.rtdose)
    job, _ = _p1_job(root)
    assert job.rtdose and not job.error
    monkeypatch.setattr(radiomics, "extract", lambda *a, **k: pytest.fail("radiomics computed before the dose"))
    out = tmp_path / "out"
    doc = process_patient(job, PARAMS, str(out))
    assert doc["status"] == "failed" and "the dose grid does not cover the lungs" in doc["error"], doc
    assert not (out / "patients" / "P1").exists()


def test_a_truncated_ct_slice_is_named_at_planning(export, tmp_path):
    """A CT slice cut short was taken by the CT reading for a missing slice ('1 slice(s) missing ... z = ...'); its
    pixel data is checked when planning: the patient fails before any work, the slice file named with the fix - by
    its path under DICOM_ROOT, as docs/cohort.md promises (QA: it was named by its file name only)."""
    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    _truncate(sorted((root / "P1" / "CT").glob("*.dcm"))[10])
    job, inv = _p1_job(root)
    assert job.error and "CT slice P1/CT/ct_0011.dcm is truncated or corrupt" in job.error[0], job.error
    assert "re-export the CT series" in job.error[1] and "P1/CT/ct_0011.dcm is truncated" in inv["notes"]
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "failed" and "CT slice P1/CT/ct_0011.dcm is truncated" in doc["error"]
    assert not (tmp_path / "out" / "patients" / "P1").exists()


def test_several_truncated_ct_slices_are_counted_at_planning(export, tmp_path, capsys):
    """QA cohortfollow65: with 10 CT slices cut short (ct_0011 ... ct_0020), the planning note and errors.csv named
    only the first: the user re-exported it and met the next.  The refusal counts them and names the first and the
    last, so the user knows how much to re-export."""
    root = _p1_copy(export, tmp_path)
    slices = sorted((root / "P1" / "CT").glob("*.dcm"))
    for f in slices[10:20]:
        _truncate(f)
    job, inv = _p1_job(root)
    assert job.error and job.error[0].startswith(f"10 of the {len(slices)} CT slices are truncated or corrupt"), \
        job.error
    for name in ("P1/CT/ct_0011.dcm", "P1/CT/ct_0020.dcm"):
        assert name in job.error[0] and name in inv["notes"], (name, job.error)
    assert "re-export the CT series" in job.error[1]
    out = tmp_path / "out"
    run_cohort(root, out, PARAMS, workers=0)
    error = pd.read_csv(out / "errors.csv").loc[0, "error"]
    assert "10 of the" in error and "P1/CT/ct_0011.dcm" in error and "P1/CT/ct_0020.dcm" in error, error


def test_deflated_ct_slices_and_rtdose_are_planned_as_any_other(export, tmp_path):
    """Review: valid Deflated Explicit VR Little Endian CT slices and RTDOSEs were refused at planning as 'truncated
    or corrupt' (the PixelData's offset in the inflated data set compared with the compressed file's size).  They
    are planned as the plain files (no error, dose features yes); a deflated CT slice whose inflated pixel data is
    short of its header is still named."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    root = _p1_copy(export, tmp_path)
    files = sorted((root / "P1" / "CT").glob("*.dcm")) + sorted((root / "P1" / "RTDOSE").glob("*.dcm"))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(f, enforce_file_format=True)
        assert pydicom.dcmread(f).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    job, inv = _p1_job(root)
    assert not job.error, job.error
    assert job.rtdose and inv["dose_features"] == "yes" and "truncated" not in inv["notes"]

    ds = pydicom.dcmread(files[10])
    ds.PixelData = ds.PixelData[:len(ds.PixelData) // 2]
    ds.save_as(files[10], enforce_file_format=True)
    job, inv = _p1_job(root)
    assert job.error and "CT slice P1/CT/ct_0011.dcm is truncated or corrupt" in job.error[0], job.error
    assert "re-export the CT series" in job.error[1]


def test_a_script_without_its_main_guard_is_refused_before_any_work(tmp_path):
    """QA: docs/cohort.md's run_cohort example run as a script (no ``if __name__ == "__main__":``) started a local
    Dask cluster whose spawned workers re-ran the script: six "... before the current process has finished its
    bootstrapping phase" tracebacks, "RuntimeError: Nanny failed to start" and a partial out/ folder.  Now an
    InputError saying to add the guard or use workers=0, before any work: no folder made."""
    import os
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text("from lungai.dicom.cohort import run_cohort\nfrom lungai.radiomics import load_params\n"
                      "summary = run_cohort('export', 'out/', load_params('default'))\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "InputError" in res.stderr, res.stderr[-3000:]
    assert "(line 3), outside 'if __name__ == \"__main__\":'" in res.stderr and "workers=0" in res.stderr
    assert "bootstrapping" not in res.stderr and "RuntimeError" not in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("code, refused", [
    ("check_main_guard(2)\n", True),
    ("if __name__ != '__main__':\n    pass\nelse:\n    check_main_guard(2)\n", True),   # run by the workers too
    ("import sys\nif __name__ == '__main__' and len(sys.argv) >= 0:\n    x = 1\n    check_main_guard(2)\n", False),
    ("def main():\n    check_main_guard(2)\n\nif __name__ == '__main__':\n    main()\n", False),
    ("def main():\n    check_main_guard(2)\n\nmain()\n", True),
    ("check_main_guard(0)\n", False),                                  # no Dask
    ("check_main_guard(2, 'tcp://host:8786')\n", False),               # an existing cluster: no worker started here
    # a guard nested in a top-level try / with block; such a block without a guard is run on import
    ("try:\n    if __name__ == '__main__':\n        check_main_guard(2)\nexcept KeyboardInterrupt:\n    pass\n", False),
    ("try:\n    check_main_guard(2)\nexcept KeyboardInterrupt:\n    pass\n", True),
    ("import contextlib\nwith contextlib.suppress(KeyboardInterrupt):\n    if __name__ == '__main__':\n"
     "        check_main_guard(2)\n", False),
])
def test_main_guard_check_reads_where_the_script_starts_the_cluster(tmp_path, monkeypatch, code, refused):
    import sys
    import types

    from lungai.errors import InputError
    from lungai.radiomics.cluster import check_main_guard

    path = tmp_path / "script.py"
    path.write_text(code, encoding="utf-8")
    main = types.ModuleType("__main__")
    main.__file__, main.check_main_guard = str(path), check_main_guard
    monkeypatch.setitem(sys.modules, "__main__", main)
    run = lambda: exec(compile(code, str(path), "exec"), main.__dict__)  # noqa: E731 - as python script.py runs it
    if refused:
        with pytest.raises(InputError, match="outside 'if __name__"):
            run()
    else:
        run()
    # an interactive session (no script file: Slicer's Python console) is not concerned, nor a console's input in the
    # globals of a script run before (Slicer runs a script in the console's globals, with its __file__)
    exec(compile(code, "<console>", "exec"), main.__dict__)      # noqa: S102
    del main.__file__
    run()


def test_main_guard_check_leaves_python_m_package_alone(tmp_path):
    """python -m lungai cohort / python -m <package> (a __main__ module, guarded or not): spawned worker processes
    never run a module named '<package>.__main__' again (multiprocessing's own rule), so it is not refused."""
    import os
    import subprocess
    import sys

    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "__main__.py").write_text("from lungai.radiomics.cluster import check_main_guard\n"
                                         "check_main_guard(2)\nprint('not refused')\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(tmp_path)]))
    res = subprocess.run([sys.executable, "-m", "mypkg"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "not refused" in res.stdout, res.stderr[-2000:]
    res = subprocess.run([sys.executable, "-m", "lungai", "cohort", str(tmp_path / "empty"), "-o",
                          str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "__name__" not in res.stderr, res.stderr[-2000:]


def test_cancel_with_dask_workers_leaves_no_unfinished_patient_files(export, tmp_path, monkeypatch):
    """Ctrl-C / SIGTERM with Dask workers: the worker processes are ended while the cluster closes, so
    process_patient's own cleanup never runs there; run_cohort removes cohort's files of every patient without its
    result.json in the main process (the folder too when this run made it) - a finished patient and any other
    file are kept."""
    import lungai.radiomics.cluster as cluster

    out = tmp_path / "out"

    def killed_workers(desc, fn, items, names, args, is_done, summary, workers, scheduler):
        user = out / "patients" / "P3" / "my_notes.txt"     # not a file cohort writes: never removed
        user.parent.mkdir(parents=True)
        user.write_text("mine", encoding="utf-8")
        for case, finished in (("P1", False), ("P2", True), ("P3", False)):
            folder = out / "patients" / case     # what a worker wrote before it was ended
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("lungs.nii.gz", "tumour.nii.gz") + (("features.csv", RESULT) if finished else ()):
                (folder / name).write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "run_tasks", killed_workers)
    with pytest.raises(KeyboardInterrupt):
        run_cohort(export, out, PARAMS, workers=2, mapping=_mapping(tmp_path))
    assert not (out / "patients" / "P1").exists()                 # made by this run, unfinished: gone
    assert sorted(p.name for p in (out / "patients" / "P2").iterdir()) == sorted(
        ["features.csv", "lungs.nii.gz", RESULT, "tumour.nii.gz"])    # finished: kept
    assert [p.name for p in (out / "patients" / "P3").iterdir()] == ["my_notes.txt"]


def test_cancel_with_an_external_scheduler_keeps_the_patients_files(export, tmp_path, monkeypatch):
    """Review: with --scheduler the cancel removed the masks of a patient whose task the external worker (not stopped
    by a cancel) then finished: result.json without its masks, counted done.  Nothing is removed then: a half-written
    patient is redone on the next run (test_a_half_written_patient_is_redone_on_the_next_run)."""
    import lungai.radiomics.cluster as cluster

    out = tmp_path / "out"

    def cancelled(desc, fn, items, names, args, is_done, summary, workers, scheduler):
        folder = out / "patients" / "P1"     # what the external worker has written so far (it goes on)
        folder.mkdir(parents=True)
        for name in ("lungs.nii.gz", "tumour.nii.gz"):
            (folder / name).write_bytes(b"x")
        raise KeyboardInterrupt

    class Client:     # the scheduler is reached before the run writes anything (QA cohort71): a stand-in
        def close(self, timeout=None):
            pass

    monkeypatch.setattr(cluster, "connect_scheduler", lambda address: Client())
    monkeypatch.setattr(cluster, "run_tasks", cancelled)
    with pytest.raises(KeyboardInterrupt):
        run_cohort(export, out, PARAMS, scheduler="tcp://127.0.0.1:8786", mapping=_mapping(tmp_path))
    assert sorted(p.name for p in (out / "patients" / "P1").iterdir()) == ["lungs.nii.gz", "tumour.nii.gz"]


@pytest.mark.parametrize("lost", ["features.csv", "lungs.nii.gz", "tumour.nii.gz"])
def test_a_half_written_patient_is_redone_on_the_next_run(export, tmp_path, capsys, lost):
    """Review: a result.json without its features.csv (or a mask) - an external worker finishing a patient whose
    files a cancel removed - was taken as finished: skipped on every later run, and without features.csv every run
    failed at the table ("cannot access .../features.csv").  It is redone, said on the terminal."""
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    table = run_cohort(root, out, PARAMS, workers=0)
    assert table.done == ["P1"]
    first = pd.read_csv(out / "rp_table.csv")
    (out / "patients" / "P1" / lost).unlink()
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0)
    assert s.done == ["P1"] and not s.skipped and not s.failed
    assert f"note: P1: result.json without {lost} (a cancelled run left it half-written): redone" in said, said
    assert (out / "patients" / "P1" / lost).is_file()
    pd.testing.assert_frame_equal(pd.read_csv(out / "rp_table.csv"), first)


def test_the_inventory_names_the_gtvs_in_the_provenances_order(export, tmp_path):
    """QA: patients.csv said "RTSTRUCT gtv-3+gtv-2+GTV-1" (the RTSTRUCT's order) and the provenance / result.json
    "RTSTRUCT GTV-1+gtv-3+gtv-2" (the tumour mask's: primary, other GTVs, nodes): one order now."""
    import copy

    import pydicom

    from lungai.dicom.cohort import process_patient

    root = _p1_copy(export, tmp_path)
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    ds = pydicom.dcmread(rs)
    gtv = next(r for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    number = max(r.ROINumber for r in ds.StructureSetROISequence) + 1
    node = copy.deepcopy(gtv)
    node.ROINumber, node.ROIName = number, "GTVn"         # a nodal GTV listed before the GTV
    ds.StructureSetROISequence.insert(0, node)
    for seq, tag in ((ds.ROIContourSequence, "ReferencedROINumber"), (ds.RTROIObservationsSequence,
                                                                      "ReferencedROINumber")):
        item = copy.deepcopy(next(x for x in seq if getattr(x, tag) == gtv.ROINumber))
        setattr(item, tag, number)
        if "ObservationNumber" in item:
            item.ObservationNumber = number
        seq.insert(0, item)
    ds.save_as(rs)
    job, inv = _p1_job(root)
    doc = process_patient(job, PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    assert doc["provenance"]["tumour"] == "RTSTRUCT GTV+GTVn" == inv["tumour_from"]


def test_cohort_takes_the_folders_lock_a_live_one_refused_a_stale_one_taken_over(export, tmp_path):
    """Feature: lungai cohort took no lock of its output folder: two runs there at once interleaved patients and
    tables.  It holds the folder's .lungai.lock for the whole run (lungai.io.outputs.locked_output_folder): a live
    lock (another process's) is refused naming that process and what to do - nothing written, a new folder not left
    behind -; a killed run's (stale) lock is taken over and the run resumes its finished patients."""
    import subprocess
    import sys
    import time

    from lungai.errors import InputError
    from lungai.io.outputs import _host, _process_started

    out = tmp_path / "out"
    lock = out / ".lungai.lock"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out.mkdir()
        lock.write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} cohort\n", encoding="utf-8")
        with pytest.raises(InputError, match=f"in use by another lungai cohort run \\(process {other.pid} on ") \
                as refused:
            run_cohort(export, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
        assert "wait until that run has ended, or choose another folder with -o" in refused.value.fix
        assert [p.name for p in out.iterdir()] == [".lungai.lock"]                       # nothing written
    finally:
        other.kill()
        other.wait()
    lock.write_text(f"{other.pid} {_host()} {time.time() - 60:.2f} cohort\n", encoding="utf-8")   # its run killed
    s = run_cohort(export, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
    assert sorted(s.done) == ["P1", "P2", "P3"] and not lock.exists()                  # taken over, released
    lock.write_text(f"{other.pid} {_host()} {time.time() - 60:.2f} cohort\n", encoding="utf-8")
    again = run_cohort(export, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
    assert sorted(again.skipped) == ["P1", "P2", "P3"] and not again.done and not lock.exists()   # resumed
    # a run refused after taking the lock of a new folder (the plan: no DICOM there) leaves no folder behind
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no DICOM CT"):
        run_cohort(empty, tmp_path / "new" / "out", PARAMS, workers=0)
    assert not (tmp_path / "new").exists()


def test_a_cancel_after_a_result_was_removed_leaves_no_table_row_without_its_result(export, tmp_path, monkeypatch,
                                                                                    capsys):
    """Review: a patient's earlier result removed to be redone (half-written here; inputs changed alike), then the
    run cancelled (Ctrl-C / SIGTERM) before it wrote the table: rp_table.csv kept P1's row with patients/P1/ empty.
    The table and its sidecar are removed with the first result removed, said on the terminal."""
    import shutil

    import lungai.radiomics.cluster as cluster

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    assert (out / "rp_table.csv").is_file() and (out / "rp_table.settings.json").is_file()
    (out / "patients" / "P1" / "lungs.nii.gz").unlink()     # half-written: its result is removed to be redone

    def cancelled(desc, fn, items, names, args, is_done, summary, workers, scheduler):
        assert not (out / "rp_table.csv").exists()      # already gone while the patients run (a kill -9 too)
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "run_tasks", cancelled)
    with said_notes() as said, pytest.raises(KeyboardInterrupt):   # the notes: on stderr (QA cohortnotes67)
        run_cohort(root, out, PARAMS, workers=0)
    assert not (out / "patients" / "P1" / RESULT).exists()
    assert not (out / "rp_table.csv").exists() and not (out / "rp_table.settings.json").exists()
    assert (f"note: cancelled: {out / 'rp_table.csv'} of an earlier run was removed (the earlier result of P1 was "
            "removed to be redone); run the same command again to write it") in said, said


def test_an_rtdose_in_another_frame_of_reference_is_named_on_the_patients_ct_row(export, tmp_path):
    """QA: P1's RTDOSE exported in another frame of reference (re-planned on another CT) ended as "dose: no RTDOSE"
    on P1's row, the RTDOSE only on a separate CT-less patients.csv row: the patient's own row, its notes and its
    provenance now say which RTDOSE was not used and why, with the fix."""
    import shutil

    import pydicom

    root = _p1_copy(export, tmp_path)
    [dose] = list((root / "P1").rglob("rtdose*.dcm"))
    ds = pydicom.dcmread(dose)
    ds.FrameOfReferenceUID = "1.2.3.4.5"
    ds.save_as(dose)
    jobs, inv = plan_cohort(root)
    job = next(j for j in jobs if j.case == "P1")
    rows = inv[inv.patient_id == "P1"]
    ct_row = rows[rows.case == "P1"].iloc[0]
    shown = dose.relative_to(root).as_posix()
    assert job.rtdose is None and ct_row.dose_features == "no (RTDOSE in another frame of reference)"
    assert f"RTDOSE {shown} (1.2.3.4.5) lies in another frame of reference than this CT" in ct_row.notes
    assert "re-export the dose planned on this CT" in ct_row.notes
    assert (rows.case == "").sum() == 1                  # the CT-less row of the RTDOSE is still listed
    s = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert s.done == ["P1"] and not s.failed
    table = pd.read_csv(tmp_path / "out" / "rp_table.csv", dtype={"case": str}).set_index("case")
    assert np.isnan(table.loc["P1", "dose_mld_gy"])
    assert (f"dose: no RTDOSE in this CT's frame of reference (another frame's: RTDOSE {shown} (1.2.3.4.5))"
            in table.loc["P1", "provenance"])
    shutil.rmtree(tmp_path / "out")


def test_an_rtdose_without_frame_of_reference_beside_its_patients_ct_is_used_with_its_note(export, tmp_path):
    """QA cohortframe60: an RTDOSE whose FrameOfReferenceUID was removed (an anonymiser), in its patient's folder with
    its PatientID, was said to lie "in another frame of reference ... computed on another CT" and the patient got no
    dose features, while lungai dose-features uses the same file with a note (uncompared_frame_note).  Cohort now
    matches it to the patient's CT by PatientID and folder, uses it, says so at planning and records the check's
    note (check_dose_matches_ct's return, ignored before) in rtdose_notes and the patient's notes."""
    import shutil

    import pydicom

    root = _p1_copy(export, tmp_path)
    [dose] = list((root / "P1").rglob("rtdose*.dcm"))
    ds = pydicom.dcmread(dose)
    del ds.FrameOfReferenceUID
    ds.save_as(dose)
    shown = dose.relative_to(root).as_posix()
    job, row = _p1_job(root)
    assert job.rtdose == str(dose) and row.dose_features == "yes", row.notes
    assert "another frame of reference" not in row.notes
    assert (f"RTDOSE {shown} carries no FrameOfReferenceUID: matched to this CT series by its PatientID P1 and its "
            "folder only") in row.notes
    s = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert s.done == ["P1"] and not s.failed
    table = pd.read_csv(tmp_path / "out" / "rp_table.csv", dtype={"case": str}, keep_default_na=False)
    table = table.set_index("case")
    assert float(table.loc["P1", "dose_mld_gy"]) > 0
    said = (f"the RTDOSE {shown} could not be checked against the frame of reference of the CT series "
            f"{job.ct_series_uid}: the RTDOSE carries no FrameOfReferenceUID")
    assert table.loc["P1", "rtdose_notes"].startswith(said), table.loc["P1", "rtdose_notes"]
    doc = json.loads((tmp_path / "out" / "patients" / "P1" / "result.json").read_text())
    assert any(n.startswith(said) for n in doc["notes"]), doc["notes"]
    shutil.rmtree(tmp_path / "out")


def test_an_rtdose_without_frame_of_reference_matched_to_no_ct_says_so(export, tmp_path):
    """QA cohortframe60: an RTDOSE without FrameOfReferenceUID that cannot be matched to its patient's CT (outside
    the patient's folder; of a PatientID without a CT) is said as such, with the fix - not "lies in another frame of
    reference ... computed on another CT", which its unknown frame does not tell."""
    import pydicom

    from lungai.dicom.discover import FRAMELESS_DOSE, FRAMELESS_DOSE_FIX

    root = _p1_copy(export, tmp_path)
    [dose] = list((root / "P1").rglob("rtdose*.dcm"))
    ds = pydicom.dcmread(dose)
    del ds.FrameOfReferenceUID
    (root / "elsewhere").mkdir()
    dose.unlink()
    moved = root / "elsewhere" / "rd.dcm"
    ds.save_as(moved)
    job, _ = _p1_job(root)
    jobs, inv = plan_cohort(root)
    ct_row = inv[(inv.patient_id == "P1") & (inv.case == "P1")].iloc[0]
    assert job.rtdose is None and "another frame of reference" not in ct_row.notes
    assert ct_row.dose_features == "no (RTDOSE without FrameOfReferenceUID, matched to no CT: notes)"
    assert (f"RTDOSE elsewhere/rd.dcm {FRAMELESS_DOSE}, and it does not lie in the folder of a CT series of its "
            f"PatientID P1 (P1) - {FRAMELESS_DOSE_FIX} (the patient gets no dose features)") in ct_row.notes
    ds.PatientID = "P9"
    ds.save_as(moved)
    jobs, inv = plan_cohort(root)
    dose_row = inv[inv.patient_id == "P9"].iloc[0]
    assert (f"RTDOSE elsewhere/rd.dcm {FRAMELESS_DOSE}, and no CT series of its PatientID P9 was found - "
            f"{FRAMELESS_DOSE_FIX}") in dose_row.notes


def test_an_rtdose_without_frame_of_reference_between_two_ct_series_of_its_patient_is_used_for_neither(export,
                                                                                                        tmp_path):
    """cohortframe60's rule "two CT series as near" (frameless_ct), untested before (QA dicomframe61): P1 with a
    second CT series beside the planning CT (P1/CT, P1/CT2) and its RTDOSE, without FrameOfReferenceUID, in P1/RTDOSE:
    it is matched to neither - each CT row says why (both series named) with the fix, dose_features says so - and no
    dose feature is computed on either CT (no job carries the dose; the processed planning CT has no dose metrics and
    its provenance says why)."""
    import shutil

    import pydicom

    from dicom_helpers import small_phantom
    from lungai.dicom.cohort import process_patient
    from lungai.dicom.discover import FRAMELESS_DOSE, FRAMELESS_DOSE_FIX
    from lungai.dicom.synthetic import write_ct_series

    root = _p1_copy(export, tmp_path)
    [dose] = list((root / "P1").rglob("rtdose*.dcm"))
    ds = pydicom.dcmread(dose)
    del ds.FrameOfReferenceUID
    ds.save_as(dose)
    second = write_ct_series(small_phantom(7).ct, root / "P1" / "CT2", patient_id="P1",
                             study_uid="1.2.826.0.1.3680043.99.61").series_uid
    jobs, inv = plan_cohort(root)
    ct_rows = inv[(inv.patient_id == "P1") & (inv.case != "")]
    assert sorted(ct_rows.case) == ["P1_1", "P1_2"] and len(jobs) == 2
    planning = next(j for j in jobs if j.rtstruct)
    assert {j.ct_series_uid for j in jobs} == {planning.ct_series_uid, second}
    for r in ct_rows.itertuples():
        assert r.dose_features == "no (RTDOSE without FrameOfReferenceUID, matched to no CT: notes)", r.notes
        assert r.rtdose == "" and "another frame of reference" not in r.notes
        said = r.notes[r.notes.index("RTDOSE P1/RTDOSE/"):]
        assert said.startswith(f"RTDOSE P1/RTDOSE/{dose.name} {FRAMELESS_DOSE}, and 2 CT series of its PatientID P1 "
                               "lie as near to it (series "), said
        assert planning.ct_series_uid in said and second in said
        assert f") - {FRAMELESS_DOSE_FIX} (the patient gets no dose features)" in said
    assert all(j.rtdose is None and not j.rtdose_files and not j.dose_names for j in jobs)
    out = tmp_path / "out"
    doc = process_patient(planning, PARAMS, str(out))
    assert doc["status"] == "done", doc
    features = pd.read_csv(out / "patients" / planning.case / "features.csv").iloc[0]
    assert not [c for c in features.index if c.startswith("dose_") and pd.notna(features[c])]
    assert doc["provenance"]["dose"] == (f"no RTDOSE matched to this CT (RTDOSE P1/RTDOSE/{dose.name} carries no "
                                         "FrameOfReferenceUID: notes)")
    shutil.rmtree(out)


def test_an_rtstruct_without_frame_of_reference_beside_its_ct_is_used_not_said_of_another_frame(export, tmp_path):
    """QA dicomframe61 (LUNG1-003 with its RTSTRUCT exported without ReferencedFrameOfReferenceSequence): the CT row
    said "RTSTRUCT ... (no FrameOfReferenceUID) lies in another frame of reference than this CT: it was drawn on
    another CT ... export the CT series it was drawn on" and took automatic lungs and tumour instead of the
    clinician's contours.  It is matched (by the CT slices its contours reference, else by PatientID and folder) and
    used; one matched to no CT says why on the CT row and the terminal, with the fix."""
    import pydicom

    from lungai.dicom.cohort import inventory_warnings

    root = _p1_copy(export, tmp_path)
    [rtstruct] = list((root / "P1").rglob("rtstruct*.dcm"))
    ds = pydicom.dcmread(rtstruct)
    del ds.ReferencedFrameOfReferenceSequence
    for roi in ds.StructureSetROISequence:
        del roi.ReferencedFrameOfReferenceUID
    ds.save_as(rtstruct)
    shown = rtstruct.relative_to(root).as_posix()
    job, row = _p1_job(root)
    assert job.rtstruct == str(rtstruct) and row.lungs_from.startswith("RTSTRUCT"), row.notes
    assert row.tumour_from.startswith("RTSTRUCT") and row.dose_features == "yes"
    assert "another frame of reference" not in row.notes
    assert f"RTSTRUCT {shown} carries no FrameOfReferenceUID (nor a reference to this CT series): matched" in row.notes
    for roi in ds.ROIContourSequence:      # nothing left to tie it to its CT: its PatientID and folder
        for c in roi.ContourSequence:
            del c.ContourImageSequence
    ds.save_as(rtstruct)
    job, row = _p1_job(root)
    assert job.rtstruct == str(rtstruct) and row.lungs_from.startswith("RTSTRUCT"), row.notes
    assert (f"RTSTRUCT {shown} carries no FrameOfReferenceUID: matched to this CT series by its PatientID P1 and its "
            "folder only") in row.notes
    from lungai.dicom.discover import FRAMELESS, frameless_fix

    (root / "elsewhere").mkdir()
    rtstruct.rename(root / "elsewhere" / "rs.dcm")
    jobs, inv = plan_cohort(root)
    job = next(j for j in jobs if j.case == "P1")
    ct_row = inv[(inv.patient_id == "P1") & (inv.case == "P1")].iloc[0]
    assert job.rtstruct is None and "another frame of reference" not in ct_row.notes + ct_row.lungs_from
    warning = (f"the lungs / tumour are automatic, not the clinician's contours: RTSTRUCT elsewhere/rs.dcm "
               f"{FRAMELESS}, nor by a CT series or slice it references (it references none), and it does not lie in "
               f"the folder of a CT series of its PatientID P1 (P1) - {frameless_fix('RTSTRUCT')}")
    assert f"WARNING: {warning}" in ct_row.notes and any(warning in n for n in job.notes)
    assert ct_row.tumour_from.endswith("the patient's RTSTRUCT without FrameOfReferenceUID matched to no CT (notes)")
    assert f"P1: {warning}" in inventory_warnings(jobs, inv)


def test_an_rtstruct_without_frame_of_reference_beside_the_one_of_the_ct_is_said_frameless(export, tmp_path):
    """QA dicomnote61: beside P1's RTSTRUCT (it references the CT series) a copy without FrameOfReferenceUID nor any
    reference (matched by PatientID and folder) was left out as "drawn on another series of its frame of reference"
    - it has no frame of reference.  The one referencing the CT is used; the other is named as what it is."""
    import pydicom

    root = _p1_copy(export, tmp_path)
    [rtstruct] = list((root / "P1").rglob("rtstruct*.dcm"))
    ds = pydicom.dcmread(rtstruct)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    del ds.ReferencedFrameOfReferenceSequence
    for roi in ds.StructureSetROISequence:
        del roi.ReferencedFrameOfReferenceUID
    for roi in ds.ROIContourSequence:
        for c in roi.ContourSequence:
            if "ContourImageSequence" in c:
                del c.ContourImageSequence
    bare = rtstruct.parent / "rs_bare.dcm"
    ds.save_as(bare)
    job, row = _p1_job(root)
    assert job.rtstruct == str(rtstruct), row.notes
    shown = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    assert (f"RTSTRUCT {shown(rtstruct)} used (it references this CT series); left out, carrying no "
            f"FrameOfReferenceUID (matched by PatientID and folder only): {shown(bare)}") in row.notes, row.notes
    assert "drawn on another series" not in row.notes and "share its frame of reference" not in row.notes


def test_an_rtstruct_in_another_frame_of_reference_is_named_on_the_patients_ct_row(export, tmp_path):
    """QA: P1's RTSTRUCT drawn on a planning CT that was not exported (another frame of reference; only a diagnostic
    CT exported): P1's CT row got automatic lungs and tumour with no note of the patient's own RTSTRUCT - only a
    separate CT-less row named it -, unlike an RTDOSE in the same situation.  The CT row, its job's notes (the table's
    notes) and the terminal now say that the clinician's contours were not used, why, and the fix."""
    import pydicom

    from lungai.dicom.cohort import inventory_warnings

    root = _p1_copy(export, tmp_path)
    [rtstruct] = list((root / "P1").rglob("rtstruct*.dcm"))
    ds = pydicom.dcmread(rtstruct)
    for frame in ds.ReferencedFrameOfReferenceSequence:       # drawn on another CT: its frame and series
        frame.FrameOfReferenceUID = "1.2.3.4.5"
        for study in frame.RTReferencedStudySequence:
            for series in study.RTReferencedSeriesSequence:
                series.SeriesInstanceUID = "1.2.3.4.6"
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.3.4.5"
    ds.save_as(rtstruct)
    jobs, inv = plan_cohort(root)
    job = next(j for j in jobs if j.case == "P1")
    rows = inv[inv.patient_id == "P1"]
    ct_row = rows[rows.case == "P1"].iloc[0]
    shown = rtstruct.relative_to(root).as_posix()
    assert job.rtstruct is None and ct_row.rtstruct == ""            # not used: it cannot be placed on this CT
    warning = f"RTSTRUCT {shown} (1.2.3.4.5) lies in another frame of reference than this CT"
    assert warning in ct_row.notes and any(warning in n for n in job.notes)
    assert "automatic, not the clinician's contours" in ct_row.notes
    assert "export the CT series it was drawn on" in ct_row.notes
    assert "another frame of reference" in ct_row.tumour_from and "another frame of reference" in ct_row.lungs_from
    assert any(line.startswith(f"P1: {warning}") for line in inventory_warnings(jobs, inv))
    assert (rows.case == "").sum() == 1                  # the CT-less row of the RTSTRUCT is still listed


def test_a_clinical_csv_with_one_patient_written_two_ways_is_refused(tmp_path):
    """QA: a clinical CSV holding R01-023 (rp_grade2 1) and a corrected row r01-023 (rp_grade2 0) was read: the
    PatientID R01-023 took the first row's outcome, the other was said to be a patient 'not in the export'.  Refused
    now, naming the pair, as lungai rp and stage refuse such a table (lungai.io.tables.check_unique_ids); cohort
    refuses such PatientIDs as one output folder too."""
    from lungai.dicom.cohort import read_clinical
    from lungai.errors import InputError

    (tmp_path / "c.csv").write_text("patient_id,rp_grade2\nR01-023,1\nR01-024,0\nr01-023,0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"differ only in letter case or separators.*R01-023 / r01-023") as err:
        read_clinical(tmp_path / "c.csv")
    assert "give one row per patient" in err.value.fix


def test_clinical_ids_that_lost_their_leading_zeros_are_named_with_the_fix():
    """QA: PatientIDs 001-004 and a clinical CSV with 1-4 (a spreadsheet dropped the zeros) joined nothing: cohort
    said only 'no clinical row for ...', and rp train then asked to fill in the outcome.  The note now names the
    pairs and the fix, as rp does for its own tables."""
    from lungai.dicom.cohort import _join_clinical

    table = pd.DataFrame({"case": ["001", "002", "013"], "patient_id": ["001", "002", "013"]})
    clin = pd.DataFrame({"patient_id": ["1", "2", "13"], "rp_grade2": [1, 0, 1]})
    notes: list = []
    joined = _join_clinical(table, clin, notes)
    assert joined["rp_grade2"].isna().all()
    said = " ".join(notes)
    assert "3 ids differ only by leading zeros (001 vs 1, 002 vs 2, 013 vs 13)" in said, said
    assert "make the ids the same in both tables" in said


def test_clinical_ids_written_in_another_case_or_with_other_separators_are_named_with_the_fix():
    """QA (LUNG1-003 copied as patients LUNG1-003 and LUNG1_010, clinical CSV with 'lung1-003' / 'lung1-010'): cohort
    said only 'no clinical row for ...' - its hint named leading zeros only, not ids that differ in letter case or in
    their separators ('-' / '_' / ' ' / '.'), as the DICOM PatientID and a hand-typed clinical table often do."""
    from lungai.dicom.cohort import _join_clinical

    table = pd.DataFrame({"case": ["LUNG1-003", "LUNG1_010", "007"], "patient_id": ["LUNG1-003", "LUNG1_010", "007"]})
    clin = pd.DataFrame({"patient_id": ["lung1-003", "lung1-010", "7"], "rp_grade2": [1, 0, 1]})
    notes: list = []
    joined = _join_clinical(table, clin, notes)
    assert joined["rp_grade2"].isna().all()        # still compared as written: named, never joined silently
    said = " ".join(notes)
    assert "1 id differs only by leading zeros (007 vs 7)" in said, said
    assert "1 id differs only in letter case (LUNG1-003 vs lung1-003)" in said, said
    assert "1 id differs only in letter case or separators (LUNG1_010 vs lung1-010)" in said, said
    assert "make the ids the same in both tables" in said


def test_rp_tables_whose_ids_differ_in_case_or_separators_say_so(tmp_path):
    """The same hint when `lungai rp train` joins several tables (cohort's rp_table.csv and a clinical CSV typed by
    hand): before, it said only 'the tables do not hold the same patients'."""
    from lungai.errors import InputError
    from lungai.rp.checks import read_tables

    pd.DataFrame({"case": ["LUNG1_010", "LUNG1-003", "A 1"], "dose_mld_gy": [10.0, 12.0, 9.0]}).to_csv(
        tmp_path / "rp_table.csv", index=False)
    pd.DataFrame({"case": ["lung1-010", "LUNG1-003", "a.1"], "rp_grade2": [1, 0, 1]}).to_csv(
        tmp_path / "clinical.csv", index=False)
    with pytest.raises(InputError) as err:
        read_tables([tmp_path / "rp_table.csv", tmp_path / "clinical.csv"])
    assert "2 ids differ only in letter case or separators (A 1 vs a.1, LUNG1_010 vs lung1-010)" in str(err.value)


def test_a_refused_rtdose_is_named_by_its_path_under_the_export(export, tmp_path):
    """QA (LUNG1-003 copies, each patient's RTDOSE named RD.dcm): an RTDOSE whose DoseUnits did not fit its values
    failed the patient as 'RD.dcm: its DoseUnits tag says CGY ...' - the bare file name, the same in every patient
    folder - while patients.csv and the provenance name it by its path under DICOM_ROOT.  errors.csv now does too."""
    import pydicom

    root = _p1_copy(export, tmp_path)
    rd = root / "P1" / "RTDOSE" / "rtdose.dcm"
    ds = pydicom.dcmread(rd)
    ds.DoseUnits = "CGY"           # Gy values labelled cGy: a maximum under 1 Gy, refused when the dose is read
    ds.save_as(rd)
    out = tmp_path / "out"
    s = run_cohort(root, out, PARAMS, workers=0)
    assert not s.done
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    error = errors.loc[errors["case"] == "P1", "error"].iloc[0]
    assert error.startswith("P1/RTDOSE/rtdose.dcm: its DoseUnits tag says CGY"), error


def test_clinical_rows_of_failed_patients_are_not_said_to_lack_imaging(export, tmp_path, capsys):
    """QA: a patient present in the export whose run failed (its error said above) was listed with the clinical rows
    "without imaging results", as if the export held no DICOM of that patient - a user looked for missing files.
    The rows left without a table row are said by why: failed, in the export but not computed, not in the export."""
    import shutil

    import pydicom

    root = tmp_path / "export"
    shutil.copytree(export, root)
    rd = next(f for f in (root / "P3").rglob("*.dcm") if pydicom.dcmread(f, stop_before_pixels=True).Modality == "RTDOSE")
    ds = pydicom.dcmread(rd)
    ds.DoseUnits = "CGY"           # Gy values labelled cGy: refused when the dose is read, P3 fails
    ds.save_as(rd)
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, tmp_path / "out", PARAMS, clinical=_clinical(tmp_path), workers=0,
                       mapping=_mapping(tmp_path))
    assert sorted(s.done) == ["P1", "P2"] and [c for c, _ in s.failed] == ["P3"]
    printed = "\n".join(said)
    errors = tmp_path / "out" / "errors.csv"
    assert f"note: clinical rows of patients that failed (not in the table; the reason in {errors}): P3" in printed, \
        printed
    assert "note: clinical rows of patients not in the export (no imaging): P9" in printed
    assert "without imaging" not in printed


def test_clinical_rows_of_failed_patients_are_not_said_to_have_no_imaging():
    """QA (LUNG1-003 copied as three patients, one with a RELATIVE-unit RTDOSE that failed, a clinical CSV with a
    fourth id): the note said 'clinical rows without imaging results: P_FAIL, P_GONE' - the failed patient, whose
    CT, RTSTRUCT and RTDOSE were in the export and whose error was already reported, listed as one without imaging.
    Failed, in-the-export-but-unprocessed and not-in-the-export patients are now said apart, with where to look."""
    from lungai.dicom.cohort import _join_clinical

    table = pd.DataFrame({"case": ["P_OK"], "patient_id": ["P_OK"]})
    clin = pd.DataFrame({"patient_id": ["P_OK", "P_FAIL", "P_NOCT", "P_GONE"], "rp_grade2": [1, 0, 1, 0]})
    notes: list = []
    joined = _join_clinical(table, clin, notes, failed={"P_FAIL"}, unprocessed={"P_NOCT", "P_OK"},
                            errors="out/errors.csv", inventory="out/patients.csv")
    assert joined["rp_grade2"].tolist() == [1]
    said = "\n".join(notes)
    assert "clinical rows of patients that failed (not in the table; the reason in out/errors.csv): P_FAIL" in said
    assert "in the export without a result (no CT series, or not finished: see out/patients.csv): P_NOCT" in said
    assert "clinical rows of patients not in the export (no imaging): P_GONE" in said
    assert "without imaging results" not in said and said.count("P_FAIL") == 1, said


def test_an_rtdose_of_unusable_dose_units_is_said_before_any_work_with_its_fix(export, tmp_path):
    """QA (an export whose RTDOSE has DoseUnits RELATIVE - a normalised dose - or none at all): the terminal's
    up-front 'P1 will fail: ... has DoseUnits 'RELATIVE'' named the problem but not the fix, which was said only in
    errors.csv after every other patient's work.  The plan's warning now names the fix too."""
    import pydicom

    from lungai.dicom.cohort import inventory_warnings

    for units, fix in (("RELATIVE", "export the physical dose in GY"),
                       (None, "re-export the RTDOSE from the planning system (DoseUnits is a mandatory tag)")):
        root = _p1_copy(export, tmp_path / str(units))
        dose = root / "P1" / "RTDOSE" / "rtdose.dcm"
        ds = pydicom.dcmread(dose)
        if units:
            ds.DoseUnits = units
        else:
            del ds.DoseUnits
        ds.save_as(dose)
        jobs, inv = plan_cohort(root)
        said = inventory_warnings(jobs, inv)
        assert len(said) == 1 and said[0].startswith("P1 will fail: P1/RTDOSE/rtdose.dcm ha"), said
        assert ("DoseUnits 'RELATIVE'" if units else "no DoseUnits") in said[0]
        assert said[0].endswith(" - fix: " + fix), said


def test_dicom_export_of_a_patient_folder_of_several_rtstruct_gtvs_never_names_them_the_primary(export, tmp_path,
                                                                                                 capsys):
    """QA on LUNG1-003: a cohort patient folder whose tumour is the union of the RTSTRUCT's GTV-1, gtv-2, gtv-3
    (provenance "RTSTRUCT GTV-1+gtv-2+gtv-3") was exported as one RTSTRUCT ROI "GTVp" (a primary GTV).  Several
    GTVs joined are one structure "GTV_union" with a note; one structure keeps its name."""
    import json
    import shutil

    import pydicom

    from lungai.cli import main
    from lungai.dicom.cohort import process_patient

    job = next(j for j in plan_cohort(export)[0] if j.case == "P1")
    assert process_patient(job, PARAMS, str(tmp_path / "out"))["status"] == "done"
    for provenance, names in (("RTSTRUCT GTV-1+GTVn4R", ["GTV_union"]), ("RTSTRUCT GTVn4R", ["GTVn4R"])):
        folder = tmp_path / names[0] / "P1"
        shutil.copytree(tmp_path / "out" / "patients" / "P1", folder)
        record = json.loads((folder / RESULT).read_text())
        record["provenance"]["tumour"] = provenance     # as cohort records several GTVs / a node alone
        (folder / RESULT).write_text(json.dumps(record))
        capsys.readouterr()
        assert main(["dicom-export", "--ct", str(export / "P1" / "CT"), "--results", str(folder), "-o",
                     str(tmp_path / names[0] / "dicom")]) == 0
        out = capsys.readouterr().out
        rois = [r.ROIName for r in pydicom.dcmread(tmp_path / names[0] / "dicom" / "rtstruct.dcm").StructureSetROISequence]
        assert [r for r in rois if r not in ("Lung_R", "Lung_L", "Lungs")] == names, rois
        assert ("exported as one structure GTV_union" in out) == (names == ["GTV_union"]), out


def test_a_cohort_patients_review_actions_name_what_the_user_can_run(export, tmp_path, monkeypatch):
    """QA: an automatic tumour of lungai cohort flagged for review (low confidence, several candidates) had the
    review actions of lungai segment in its result.json: "draw an ROI box round the tumour (--roi ...)", "run again
    with a seed point at the tumour's centre (--seed-point ...)" - ``lungai cohort --roi`` is refused by argparse.
    The actions name lungai segment on this patient's CT series (its folder and --series) for a seed point or ROI;
    every other option named is the cohort's own.  (The automatic tumour is stubbed.)"""
    import re
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.cli import build_parser
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    arr = np.zeros(sitk.GetArrayFromImage(ct).shape, np.uint8)
    arr[2:4, 6:9, 6:9] = 1
    tumour = sitk.GetImageFromArray(arr)
    tumour.CopyInformation(ct)
    info = {"confidence": 0.3, "needs_review": True, "notes": [], "candidates": [], "n_components": 2,
            "roi_mode": "lungs", "review_reasons": [infer.LOW_CONFIDENCE, infer.SEVERAL_REASON, infer.CUT_REASON]}
    info["review_actions"] = infer.review_actions(info)
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info=info))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P3"]
    doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    actions = doc["review_actions"]
    assert len(actions) == 3 and actions[2] == infer.REVIEW_ACTIONS[infer.CUT_REASON]    # no option: as segment's
    commands = build_parser()._subparsers._group_actions[0].choices
    cohort = {s for a in commands["cohort"]._actions for s in a.option_strings}
    segment = {s for a in commands["segment"]._actions for s in a.option_strings}
    uid = plan_cohort(root)[0][0].ct_series_uid
    for action in actions[:2]:
        assert f"run lungai segment {root / 'P3' / 'CT'} --series {uid} with it" in action, action
        beside = re.findall(r"lungai segment (--[a-z-]+)", action)
        assert beside and set(beside) <= {"--roi", "--seed-point"} <= segment
        bare = re.sub(r"lungai segment [^;()]*", "", action)
        assert set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", bare)) <= cohort, action


def test_a_shipped_models_confidence_caveat_is_in_the_patients_record_and_on_the_terminal(export, tmp_path,
                                                                                         monkeypatch, capsys):
    """QA: ``lungai cohort --model lungai-seg-dynunet`` wrote the automatic tumour's tumour_confidence without the
    model's known confidence caveat (lungai segment's result.json, console, the panel and report say it).  Now the
    patient's result.json holds it (confidence_caveat: dicom-export --result takes it, and its notes), and the
    terminal says it once beside the table, from lungai.seg.resources.CONFIDENCE_CAVEATS.  (Stubbed segmentation.)"""
    import shutil
    from types import SimpleNamespace

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai.io import read_ct
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME, shipped_models

    if DYNUNET_MODEL_NAME not in shipped_models():
        pytest.skip("the shipped models are not installed")
    root = tmp_path / "export"
    shutil.copytree(export / "P3", root / "P3")
    ct = read_ct(root / "P3" / "CT")
    tumour, arr = _centre_tumour(ct)
    monkeypatch.setattr(infer, "segment_tumour", lambda *a, **k: SimpleNamespace(tumour=tumour, info={
        "confidence": 0.87, "needs_review": False, "review_threshold": 0.64, "method": "ensemble", "members": 3,
        "roi_mode": "auto", "notes": [], "tumor_volume_ml": float(arr.sum() * np.prod(ct.GetSpacing()) / 1000.0)}))
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    monkeypatch.setattr("lungai.seg.model_meta.model_identity", lambda d: {"folder": str(d)})   # no weights hashed
    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    out = tmp_path / "out"
    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:   # the CLI says it on stderr (QA cohortstd67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0, model_dir=DYNUNET_MODEL_NAME)
    assert s.done == ["P3"], s.failed
    doc = json.loads((out / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    assert doc["confidence_caveat"] == caveat
    assert f"confidence caveat: {caveat}" in doc["notes"]
    assert caveat not in capsys.readouterr().out
    (printed,) = [w.message for w in said if caveat in str(w.message)]
    assert "tumour_confidence (P3)" in str(printed) and "tumour_confidence (1 patient)" in printed.without_ids
    # ... and rp_table.csv beside tumour_confidence: rp train / validate / predict say it of the row (QA demorisk59)
    table = pd.read_csv(out / "rp_table.csv", keep_default_na=False)
    assert table["tumour_confidence_caveat"].tolist() == [caveat] and table["tumour_review"].tolist() == [""]
    # ... and patients.csv beside tumour_from (QA conftable59: written as planned, it kept no trace of it)
    inventory = pd.read_csv(out / "patients.csv", keep_default_na=False)
    assert inventory["tumour_confidence_caveat"].tolist() == [caveat], inventory.columns
    assert list(inventory.columns).index("tumour_confidence_caveat") == list(inventory.columns).index("tumour_from") + 1
    # dicom-export of the patient's folder: the SR's Case comment says it beside the confidence
    from lungai.cli import main
    from lungai.dicom.sr import read_sr_comments

    assert main(["dicom-export", "--ct", str(export / "P3" / "CT"), "--results", str(out / "patients" / "P3"), "-o",
                 str(tmp_path / "dicom")]) == 0
    assert f"Confidence caveat: {caveat}" in read_sr_comments(tmp_path / "dicom" / "measurements.sr.dcm")["Case"]
    # the default model has none: nothing said
    out2 = tmp_path / "out2"
    assert run_cohort(root, out2, PARAMS, workers=0).done == ["P3"]
    doc = json.loads((out2 / "patients" / "P3" / RESULT).read_text(encoding="utf-8"))
    assert "confidence_caveat" not in doc and not [n for n in doc["notes"] if "caveat" in n]
    assert "caveat" not in capsys.readouterr().out
    assert pd.read_csv(out2 / "rp_table.csv", keep_default_na=False)["tumour_confidence_caveat"].tolist() == [""]
    assert pd.read_csv(out2 / "patients.csv", keep_default_na=False)["tumour_confidence_caveat"].tolist() == [""]


def test_a_cohort_keyed_with_decimals_or_a_dropped_revision_resumes(export, tmp_path, capsys):
    """QA (radset60): a cohort run with `binWidth: 25` was refused when re-run with the same settings written
    `binWidth: 25.0` ('holds results made with other radiomics parameters'), and the key of a file written with
    decimals by an older lungai is still taken; a patient of a Wavelet image with preCrop recorded with the whole-CT
    revision (which changed none of its values) is not redone.  Resumed, the patient kept with the current id."""
    import json
    import shutil

    from lungai.dicom.cohort import STAMP, _settings_key_of, _written
    from lungai.io.outputs import record_outputs
    from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    files = {}
    for name, width in (("int", "25"), ("decimal", "25.0")):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(f"setting: {{binWidth: {width}, preCrop: true}}\nimageType: {{Original: {{}}, Wavelet: {{}}}}"
                               "\nfeatureClass: {firstorder: []}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run_cohort(root, out, load_params(str(files["int"])), workers=0).done == ["P1"]
    # as the lungai before it left it: the revision in the patient's inputs, its id then
    result = out / "patients" / "P1" / "result.json"
    doc = json.loads(result.read_text(encoding="utf-8"))
    doc["inputs"]["whole_ct_revision"] = 2
    result.write_text(json.dumps(doc), encoding="utf-8")
    features = out / "patients" / "P1" / "features.csv"
    frame = pd.read_csv(features, dtype={"case": str, "patient_id": str})
    frame[SETTINGS_COLUMN] = "sha256:0123456789ab"
    frame.to_csv(features, index=False)
    record_outputs(out, "cohort", _written(out))
    params = load_params(str(files["decimal"]))
    with said_notes() as said:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, params, workers=0)
    assert s.skipped == ["P1"] and not s.done
    assert any(n.startswith("note: ") and "keyed otherwise by an older lungai" in n for n in said), said
    assert set(pd.read_csv(out / "rp_table.csv")[SETTINGS_COLUMN]) == {settings_id(params)}
    # the stamp an older lungai wrote of the decimals as written, resumed with the file of integers
    (out / STAMP).write_text(_settings_key_of(None, None)(params, canonical=False), encoding="utf-8")
    record_outputs(out, "cohort", _written(out))
    assert run_cohort(root, out, load_params(str(files["int"])), workers=0).skipped == ["P1"]


def test_the_notes_on_the_dose_values_are_recorded_in_the_rp_table_as_in_dose_csv(export, tmp_path):
    """QA (dosenotes60): on LUNG1-003, an RTDOSE without DoseSummationType and a sum of 2 of 3 BEAM doses with no
    RTPLAN in the export (MLD 3.15 Gy, the plan's 3.94) had their notes in patients.csv's notes only: rp_table.csv's
    rtdose_notes - which dose-features' dose.csv fills with them and lungai rp repeats - took the EFFECTIVE note
    alone.  The same rule fills both (lungai.dose.read.value_notes); an older result without them is redone once."""
    import pydicom

    from dose_helpers import with_summation_type
    from lungai.dicom.cohort import _written
    from lungai.io.outputs import record_outputs

    def table(root, out):
        run_cohort(root, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
        return pd.read_csv(out / "rp_table.csv", dtype=str, keep_default_na=False)["rtdose_notes"].iloc[0]

    root = _p1_copy(export, tmp_path)
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    ds = pydicom.dcmread(plan)
    del ds.DoseSummationType
    ds.save_as(root / "P1" / "RTDOSE" / "no_type.dcm")
    plan.rename(tmp_path / "plan.dcm")
    said = "P1/RTDOSE/no_type.dcm has no DoseSummationType (a mandatory tag), so that it is the plan's total dose"
    assert table(root, tmp_path / "no_type").startswith(said)
    # its result from before (no rtdose_notes key in its inputs): redone, its note recorded
    folder = tmp_path / "no_type" / "patients" / "P1"
    doc = json.loads((folder / "result.json").read_text())
    del doc["inputs"]["rtdose_notes"]
    (folder / "result.json").write_text(json.dumps(doc))
    pd.read_csv(folder / "features.csv").drop(columns="rtdose_notes").to_csv(folder / "features.csv", index=False)
    record_outputs(tmp_path / "no_type", "cohort", _written(tmp_path / "no_type"))     # as it wrote them
    assert run_cohort(root, tmp_path / "no_type", PARAMS, workers=0, mapping=_mapping(tmp_path)).done == ["P1"]
    assert pd.read_csv(tmp_path / "no_type" / "rp_table.csv", dtype=str,
                       keep_default_na=False)["rtdose_notes"].iloc[0].startswith(said)
    # 2 BEAM doses of one plan, no RTPLAN in the export: the sum said unchecked in the table
    (root / "P1" / "RTDOSE" / "no_type.dcm").unlink()
    for i, f in enumerate((0.3, 0.5)):
        with_summation_type(tmp_path / "plan.dcm", root / "P1" / "RTDOSE" / f"beam{i}.dcm", "BEAM", plan="1.2.3.1",
                            factor=f)
    assert table(root, tmp_path / "beams") == (
        "the dose is the sum of the 2 BEAM RTDOSEs P1/RTDOSE/beam0.dcm, P1/RTDOSE/beam1.dcm; that every beam of the "
        "plan has its dose could not be checked (no RTPLAN in the export): if a beam's dose is not among them, the "
        "MLD, V20 ... are too low")


def test_a_patients_automatic_tumour_and_radiomics_show_their_steps(export, tmp_path, monkeypatch, capfd):
    """QA progwarn63: a patient's automatic tumour segmentation (minutes on a whole CT) and its radiomics ran under
    the cohort bar's one step ("cohort: 0/1", 20-50 s for LUNG1-003's radiomics with --workers 0 / 2) without a word;
    the automatic lungs alone had steps.  Each now has the patient's bar of steps."""
    from lungai.dicom.cohort import process_patient
    from lungai.progress import parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")      # as the Slicer panel reads them
    jobs, _ = plan_cohort(export)
    job = next(j for j in jobs if j.case == "P3")       # no GTV structure: the automatic segmentation
    capfd.readouterr()
    doc = process_patient(job, PARAMS, str(tmp_path))
    assert doc["status"] == "done", doc
    shown = [parse_line(line) for line in capfd.readouterr().err.splitlines()]
    for step in ("cohort P3: tumour", "cohort P3: radiomics"):
        fractions = [f for f, text in filter(None, shown) if text.startswith(step + ":")]
        assert fractions and fractions[0] == 0.0 and fractions[-1] == 1.0, (step, shown)
        assert len(fractions) >= 3, (step, fractions)       # steps, not only a start and an end


def _bar_lines(err: str, desc: str) -> list:
    """[(done, total, message)] of the ``LUNGAI_PROGRESS`` lines of the bar ``desc`` in ``err``; every such line
    parses (:func:`lungai.progress.parse_line`, as the Slicer panel reads them)."""
    from lungai.progress import PREFIX, parse_line

    out = []
    for line in err.splitlines():
        if line.startswith(PREFIX + " "):
            assert parse_line(line) is not None, line
            counts, text = line[len(PREFIX) + 1:].split(" ", 1)
            if text.startswith(desc + ": "):
                done, total = (int(v) for v in counts.split("/"))
                out.append((done, total, text[len(desc) + 2:]))
    return out


def test_a_patients_inputs_show_their_steps_before_its_radiomics(export, tmp_path, monkeypatch, capfd):
    """QA firstbar64: LUNG1-003 stood 10-11 s (``--workers 0``; ~15 s on Dask) at "cohort 0/1" before its radiomics
    bar moved: its CT read, RTSTRUCT lungs and GTV (and, with an RTDOSE, the dose read and features) said nothing.
    They are a bar of their own, a step each, ending at its total before the radiomics start."""
    from lungai.dicom.cohort import process_patient

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")      # as the Slicer panel reads them
    jobs, _ = plan_cohort(export)
    for case, steps in (("P1", ["RTDOSE read", "CT read", "lungs", "tumour", "dose features"]),   # with its RTDOSE
                        ("P2", ["CT read", "lungs", "tumour"])):                                  # no RTDOSE
        job = next(j for j in jobs if j.case == case)
        capfd.readouterr()
        doc = process_patient(job, PARAMS, str(tmp_path / case))
        assert doc["status"] == "done", doc
        err = capfd.readouterr().err
        shown = _bar_lines(err, f"cohort {case}: inputs")
        total = len(steps)
        assert shown == [(0, total, "start")] + [(i, total, s) for i, s in enumerate(steps, 1)], (case, shown)
        radiomics = _bar_lines(err, f"cohort {case}: radiomics")
        assert radiomics and radiomics[-1][0] == radiomics[-1][1]
        lines = err.splitlines()
        last_input = max(i for i, line in enumerate(lines) if f"cohort {case}: inputs:" in line)
        first_radiomics = min(i for i, line in enumerate(lines) if f"cohort {case}: radiomics:" in line)
        assert last_input < first_radiomics


def test_a_patients_rtstruct_is_read_once(export, tmp_path, monkeypatch):
    """QA cohortbar64: LUNG1-003's RTSTRUCT was read and its contours parsed 10 times in its work (P1's: 12; each
    structure / role looked up read the file again: ~3 s of the 10 s before its radiomics).  Once now."""
    import lungai.dicom.discover as discover
    from lungai.dicom.cohort import process_patient

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    jobs, _ = plan_cohort(export)
    job = next(j for j in jobs if j.case == "P1")       # RTSTRUCT lungs and GTV, an RTDOSE
    reads = []
    read_to_end = discover.read_to_end

    def counted_read(path, *args, **kwargs):
        reads.append(Path(path).resolve())
        return read_to_end(path, *args, **kwargs)

    monkeypatch.setattr(discover, "read_to_end", counted_read)
    doc = process_patient(job, PARAMS, str(tmp_path))
    assert doc["status"] == "done", doc
    assert reads.count(Path(job.rtstruct).resolve()) == 1, reads
    assert doc["provenance"]["lungs"].startswith("RTSTRUCT") and doc["provenance"]["tumour"].startswith("RTSTRUCT")


def test_read_once_gives_each_call_its_own_structures_and_reads_a_changed_file_again(export, tmp_path,
                                                                                     monkeypatch):
    """:func:`lungai.dicom.rtstruct.read_once`: one read per file as it is on disk; a caller's change to a structure
    (read_rtstruct sets ``error``) is not seen by the next call; outside the block every call reads the file."""
    import shutil

    import pydicom

    import lungai.dicom.rtstruct as rtstruct
    from lungai.errors import InputError

    jobs, _ = plan_cohort(export)
    rs = tmp_path / "rs.dcm"
    shutil.copy(next(j for j in jobs if j.case == "P1").rtstruct, rs)
    reads = []
    read_file = rtstruct._read_file

    def counted(path):
        reads.append(path)
        return read_file(path)

    monkeypatch.setattr(rtstruct, "_read_file", counted)
    with rtstruct.read_once():
        first, ds = rtstruct.read_structures(rs)
        first[0].error = InputError("set by a caller", "-")
        first[0].contours.clear()
        again, ds_again = rtstruct.read_structures(rs)
        assert ds_again is ds and again[0].error is None and again[0].contours
        assert rtstruct.list_structures(rs) == [s.name for s in again]
        assert rtstruct.contoured_structures(rs)[0]
        assert len(reads) == 1
        changed = pydicom.dcmread(rs)
        changed.StructureSetName = "a name longer than it was before"     # rewritten, another size: read again
        changed.save_as(rs)
        rtstruct.read_structures(rs)
        assert len(reads) == 2
    rtstruct.read_structures(rs)
    rtstruct.list_structures(rs)
    assert len(reads) == 4


def test_planning_reads_each_rtstruct_once(export, tmp_path, monkeypatch):
    """QA planonce64: planning read and parsed each patient's RTSTRUCT 4 times in the main process (its roles, the
    series check, the dose envelope / Lungs-GTV names its inputs record; LUNG1-003: 4 x ~0.3 s).  Once now, before
    any patient is sent to work (which reads it once more, in its own process)."""
    import lungai.dicom.rtstruct as rtstruct
    import lungai.radiomics.cluster as cluster

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rtstructs = {Path(j.rtstruct).resolve() for j in plan_cohort(export)[0] if j.rtstruct}
    reads = []
    read_file = rtstruct._read_file

    def counted_read(path):
        reads.append(Path(path).resolve())
        return read_file(path)

    class Planned(Exception):
        pass

    def no_work(*args, **kwargs):
        raise Planned

    monkeypatch.setattr(rtstruct, "_read_file", counted_read)
    monkeypatch.setattr(cluster, "run_tasks", no_work)
    with pytest.raises(Planned):
        run_cohort(export, tmp_path / "out", PARAMS, workers=0, mapping=_mapping(tmp_path))
    assert len(rtstructs) == 3
    assert {p: reads.count(p) for p in rtstructs} == {p: 1 for p in rtstructs}, reads


def test_read_once_keeps_the_contours_of_the_files_it_is_told_and_the_names_of_all(export, tmp_path, monkeypatch):
    """``read_once(files=1)`` (cohort's planning): a second file's read drops the first's dataset and contours (read
    again when asked), its contoured names kept (not read again)."""
    import shutil

    import lungai.dicom.rtstruct as rtstruct

    jobs, _ = plan_cohort(export)
    a, b = tmp_path / "a.dcm", tmp_path / "b.dcm"
    shutil.copy(next(j for j in jobs if j.case == "P1").rtstruct, a)
    shutil.copy(next(j for j in jobs if j.case == "P3").rtstruct, b)
    reads = []
    read_file = rtstruct._read_file

    def counted(path):
        reads.append(Path(path).name)
        return read_file(path)

    monkeypatch.setattr(rtstruct, "_read_file", counted)
    with rtstruct.read_once(files=1):
        names_a = rtstruct.contoured_structures(a)
        rtstruct.read_structures(a)
        assert reads == ["a.dcm"]
        names_b = rtstruct.contoured_structures(b)
        with rtstruct.read_once():          # reads through the enclosing block
            assert rtstruct.contoured_structures(a) == names_a and rtstruct.contoured_structures(b) == names_b
        assert reads == ["a.dcm", "b.dcm"]
        names_a[0].clear()
        assert rtstruct.contoured_structures(a)[0]          # each call its own lists
        rtstruct.read_structures(a)                         # its contours were dropped for b's: read again
        assert reads == ["a.dcm", "b.dcm", "a.dcm"]


def test_a_finished_patient_no_longer_in_the_export_is_said_out_of_the_table(export, tmp_path, capsys):
    """QA cohortbar65: P3 removed from the export after a finished run (its folder moved, a share not mounted): the
    re-run's rp_table.csv held the other patients only, without a word, P3's result still under OUT/patients.  A note
    names it with what to do; its result is kept and resumed (not redone) once its DICOM is back."""
    import shutil

    root = tmp_path / "export"
    for case in ("P1", "P3"):
        shutil.copytree(export / case, root / case)
    out = tmp_path / "out"
    s = run_cohort(root, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
    assert sorted(s.done) == ["P1", "P3"], s.failed
    shutil.move(root / "P3", tmp_path / "P3_elsewhere")
    with said_notes() as notes:      # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        s = run_cohort(root, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
    said = "\n".join(notes)
    assert s.skipped == ["P1"] and not s.done and not s.failed
    assert list(pd.read_csv(out / "rp_table.csv", dtype={"case": str})["case"]) == ["P1"]
    assert f"note: {out / 'patients'} holds the finished results of 1 patient not in {root} now (P3): not in " \
           "rp_table.csv - put its DICOM back" in said, said
    assert (out / "patients" / "P3" / RESULT).is_file()
    shutil.move(tmp_path / "P3_elsewhere", root / "P3")
    s = run_cohort(root, out, PARAMS, workers=0, mapping=_mapping(tmp_path))
    assert sorted(s.skipped) == ["P1", "P3"] and not s.done           # back: resumed, not redone
    assert sorted(pd.read_csv(out / "rp_table.csv", dtype={"case": str})["case"]) == ["P1", "P3"]
    assert "not in rp_table.csv" not in capsys.readouterr().out


def test_a_patients_rtdose_is_read_once_in_its_work(export, tmp_path, monkeypatch):
    """QA cohortfollow66: a patient's work read its RTDOSE 7 times - its header and whole file (the check of its
    pixel data) by the check against the CT, then again by read_dose_sum's choice among the patient's RTDOSEs
    (plan_dose_files: header, pixel check, once more by the plan dose's rule), then the dose itself; a 5 MB RTDOSE of
    LUNG1-003 read in full three times.  In a dose_read_once block (lungai.dose.read) its header is read once, its
    pixel data checked once, the dose read once: 3 reads, the same metrics."""
    from test_dose_read_once import _reads

    from lungai.dicom.cohort import process_patient

    jobs, _ = plan_cohort(export)
    (job,) = [j for j in jobs if j.case == "P1"]
    (rd,) = (export / "P1" / "RTDOSE").glob("*.dcm")
    results = []
    reads = _reads(monkeypatch, lambda: results.append(process_patient(job, PARAMS, str(tmp_path / "out"))))
    (result,) = results
    assert result.get("status") == "done" and not result.get("error"), result
    assert reads[rd.name] <= 3, dict(reads)
    assert reads[rd.name] >= 1, dict(reads)             # read at all (the count is of this file)


def test_cohort_says_its_inventory_warnings_on_stderr_as_input_notes(export, tmp_path, capsys, monkeypatch):
    """QA cohortwarn67: ``lungai cohort`` printed its inventory warnings ("P1 will fail: ...") with print on stdout,
    among the inventory's lines, while ``dicom-scan`` says the same texts as InputNotes on stderr (the CLI rule:
    warnings through lungai.errors, a form naming no patient where they name one).  Now on stderr, each once, as an
    InputNote whose ``without_ids`` names no patient; patients.csv keeps the reason."""
    import pydicom
    from pydicom.uid import generate_uid

    from lungai.cli import main
    from note_helpers import notes_made

    root = _p1_copy(export, tmp_path)
    ds = pydicom.dcmread(root / "P1" / "RTSTRUCT" / "rtstruct.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(root / "P1" / "RTSTRUCT" / "0_revised.dcm")
    made = notes_made(monkeypatch)
    assert main(["cohort", str(root), "-o", str(tmp_path / "out"), "--workers", "0"]) == 1
    cap = capsys.readouterr()
    said = [line for line in cap.err.splitlines() if line.startswith("warning: P1 will fail: ")]
    assert len(said) == 1 and "2 RTSTRUCTs reference this CT (P1/RTSTRUCT/0_revised.dcm, " in said[0], cap.err
    assert "keep one RTSTRUCT per CT series" in said[0], said
    assert "warning:" not in cap.out, cap.out
    (note,) = [n for n in made if str(n) == said[0][len("warning: "):]]
    assert note.without_ids.startswith("a patient will fail: 2 RTSTRUCTs reference this CT ("), note.without_ids
    assert "P1" not in note.without_ids and "<patient>/RTSTRUCT/0_revised.dcm" in note.without_ids, note.without_ids
    inv = pd.read_csv(tmp_path / "out" / "patients.csv", keep_default_na=False)
    assert "2 RTSTRUCTs reference this CT" in inv.loc[0, "notes"]


def test_cohort_says_its_notes_on_stderr_as_input_notes_naming_no_patient(export, tmp_path, capsys, monkeypatch):
    """QA cohortnotes67: ``lungai cohort`` printed its ``note:`` lines ("P1: inputs changed since the last run (...):
    redone", the finished results not in the export ...) with print on stdout, among the inventory's lines and the
    summary, with no form naming no patient.  Now each is an InputCheckNote said once on stderr as ``note: ...`` (a
    line of its own beside the bar), whose ``without_ids`` names no patient; stdout keeps the inventory and summary."""
    import shutil

    from lungai.cli import main
    from lungai.errors import InputCheckNote
    from note_helpers import notes_made

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    out = tmp_path / "out"
    assert main(["cohort", str(root), "-o", str(out), "--workers", "0"]) == 0
    shutil.copytree(export / "P1" / "RTDOSE", root / "P1" / "RTDOSE", dirs_exist_ok=True)     # inputs changed
    shutil.copytree(out / "patients" / "P1", out / "patients" / "P9")     # a finished result not in the export
    capsys.readouterr()
    made = notes_made(monkeypatch)
    assert main(["cohort", str(root), "-o", str(out), "--workers", "0"]) == 0
    cap = capsys.readouterr()
    assert "note:" not in cap.out, cap.out
    assert any(line.startswith("P1: CT ") for line in cap.out.splitlines()), cap.out     # the inventory's line
    said = [line[len("note: "):] for line in cap.err.splitlines() if line.startswith("note: ")]
    changed = [s for s in said if s.startswith("P1: inputs changed since the last run (RTDOSE added): redone")]
    gone = [s for s in said if f"holds the finished results of 1 patient not in {root} now (P9)" in s]
    assert len(changed) == 1 and len(gone) == 1, cap.err
    notes = {str(n): n for n in made if isinstance(n, InputCheckNote)}
    assert notes[changed[0]].without_ids == "a patient: inputs changed since the last run (RTDOSE added): redone"
    assert notes[gone[0]].without_ids and "P9" not in notes[gone[0]].without_ids, notes[gone[0]].without_ids
    assert "holds the finished results of 1 patient not in" in notes[gone[0]].without_ids
    assert pd.read_csv(out / "rp_table.csv").loc[0, "dose_mld_gy"] > 0      # the files written as before
