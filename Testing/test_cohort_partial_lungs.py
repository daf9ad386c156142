"""Dose metrics of a partial lung (QA cohort walk: a second, 40-slice CT series of LUNG1-003 on the plan's frame of
reference got MLD 15.2 Gy / V20 29.7 % vs 11.6 Gy / 20.2 % of the whole lungs, presented as ordinary values): the
lungs cut by the scan's first / last slice are flagged (``lungs_cut``) by one rule (:func:`lungai.dose.features.
lungs_cut`) in ``lungai dose-features`` and ``lungai cohort``, and ``rp train / validate / predict`` warn about such
rows; with the other cohort notes of the same walk (Lungs-GTV radiomics, a missing CT named, the dose provenance's
path)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from cohort_helpers import PARAMS, export, scan_and_stubbed_cohort  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import plan_cohort, process_patient, run_cohort


def _mask(shape=(20, 40, 40), spacing=(1.0, 1.0, 3.0), z_down=False, **slices) -> sitk.Image:
    arr = np.zeros(shape, np.uint8)
    arr[3:-3, 10:30, 10:30] = 1
    for k, n in slices.items():       # first= / last=: an n x n mm square of lung on that end slice
        arr[0 if k == "first" else -1, :n, :n] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    if z_down:                        # slices stored head first (z decreasing with k)
        img.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    return img


def test_lungs_cut_rule_flag_note_and_which_end():
    from lungai.dose.features import lungs_cut

    assert lungs_cut(_mask()) == ("", "")
    # a few voxels on an end slice (under 1 cm²): nothing said
    assert lungs_cut(_mask(last=5)) == ("", "")
    # 4 cm² on the end slice of lungs no wider (a box): cut mid-lung, flagged (the small apex cut that is only a note:
    # test_lungs_cut_followup.test_the_flag_rests_on_the_volume_left_off)
    flag, note = lungs_cut(_mask(last=20))
    assert flag == note and flag.startswith("lungs cut at the top of the scan: 4 cm² of lung on the last slice")
    # a series that stops mid-lung: flagged, with the area and which end (z increases with k: the last is the top)
    flag, note = lungs_cut(_mask(first=40))
    assert flag == note and flag.startswith("lungs cut at the bottom of the scan: 16 cm² of lung on the first slice")
    assert "MLD / Vx / Dx of the part in view" in flag and "export the CT series that covers both lungs" in flag
    flag, _ = lungs_cut(_mask(z_down=True, first=40, last=40))
    assert flag.startswith("lungs cut at the top and bottom of the scan: 16 cm² of lung on the first slice, 16 cm² "
                           "of lung on the last slice")
    flag, _ = lungs_cut(_mask(first=40, last=30))      # z up: the last slice is the top
    assert flag.startswith("lungs cut at the top and bottom of the scan: 9 cm² of lung on the last slice, 16 cm² "
                           "of lung on the first slice")


def _short_series(root: Path, patient: str, keep: slice) -> Path:
    """A second CT series of ``patient`` on the same frame of reference, of the slices ``keep`` (QA: 40 slices)."""
    from lungai.dicom.reference import derived_uid
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct
    import pydicom

    ct = read_ct(root / patient / "CT")
    first = pydicom.dcmread(next((root / patient / "CT").glob("*.dcm")), stop_before_pixels=True)
    folder = root / patient / "CT_short"
    write_ct_series(ct[:, :, keep], folder, patient_id=patient, study_uid=derived_uid(patient, "short"),
                    frame_of_reference_uid=str(first.FrameOfReferenceUID))
    return folder


def test_a_short_series_of_the_plans_frame_gets_its_dose_flagged_and_rp_warns(export, tmp_path, capsys):
    """QA #1: the RTDOSE is attached to both series (same frame of reference); the short one's automatic lungs are
    cut by its end slices: lungs_cut in features.csv / rp_table.csv, the dose provenance and the notes, a warning on
    the terminal; the plan note says the dose is matched only by frame of reference while the other series has the
    RTSTRUCT; rp warns about the row."""
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    n = len(list((root / "P1" / "CT").glob("*.dcm")))
    _short_series(root, "P1", slice(n // 2 - 4, n // 2 + 4))
    jobs, inv = plan_cohort(root)
    assert len(jobs) == 2
    short = next(j for j in jobs if j.rtstruct is None)
    full = next(j for j in jobs if j.rtstruct is not None)
    assert short.rtdose and full.rtdose
    row = inv.set_index("case").loc[short.case]
    assert "is matched to this CT series only by its frame of reference" in row["notes"]
    assert f"CT series {full.ct_series_uid}" in row["notes"] and "rtstruct.dcm" in row["notes"]
    assert "only by its frame of reference" not in inv.set_index("case").loc[full.case]["notes"]

    from lungai.errors import InputNote

    with pytest.warns(InputNote) as said:   # the CLI says it on stderr (QA cohortstd67: printed on stdout)
        summary = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert not summary.failed, summary.failed
    assert "lungs cut" not in capsys.readouterr().out
    out = "\n".join(f"warning: {w.message}" for w in said)
    (told,) = [w.message for w in said if str(w.message).startswith(f"{short.case}: lungs cut")]
    assert told.without_ids.startswith("a patient: lungs cut at the top and bottom") and "P1" not in told.without_ids
    table = pd.read_csv(tmp_path / "out" / "rp_table.csv", keep_default_na=False).set_index("case")
    cut = table.loc[short.case, "lungs_cut"]
    assert cut.startswith("lungs cut at the top and bottom of the scan") and "part in view" in cut
    assert table.loc[full.case, "lungs_cut"] == ""
    assert "lungs cut at the top and bottom" in table.loc[short.case, "provenance"]
    assert f"warning: {short.case}: lungs cut at the top and bottom" in out
    doc = json.loads((tmp_path / "out" / "patients" / short.case / "result.json").read_text())
    assert any(n.startswith("lungs cut at the top and bottom") for n in doc["notes"])
    # QA #4: the dose named by its path under the DICOM root, as patients.csv
    assert "RTDOSE P1/RTDOSE/rtdose.dcm" in table.loc[full.case, "provenance"]

    from lungai.rp.prepare import lungs_cut_warning

    n_cut, text = lungs_cut_warning(table.reset_index(), "patient_id", "training table", "x")
    assert n_cut == 1 and "the lungs of 1 patient are cut by the scan" in text and "P1" in text
    assert "export the CT series that covers both lungs" in text


def test_dose_features_cli_says_the_lungs_are_cut(export, tmp_path, capsys):
    from lungai.cli import main

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1")
    n = len(list((root / "P1" / "CT").glob("*.dcm")))
    short = _short_series(root, "P1", slice(n // 2 - 4, n // 2 + 4))
    from lungai.io import read_ct

    from lungai.dicom.rtstruct import read_rtstruct

    masks = read_rtstruct(root / "P1" / "RTSTRUCT" / "rtstruct.dcm", read_ct(root / "P1" / "CT"))
    lungs = sitk.Resample(sitk.Or(masks["Lung_R"], masks["Lung_L"]), read_ct(short), sitk.Transform(),
                          sitk.sitkNearestNeighbor, 0)      # the contoured lungs on the short series: cut at both ends
    sitk.WriteImage(lungs, str(tmp_path / "lungs.nii.gz"))
    assert main(["dose-features", "--ct", str(short), "--dose", str(root / "P1" / "RTDOSE" / "rtdose.dcm"),
                 "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "dose.csv")]) == 0
    out = capsys.readouterr().out
    assert "warning: lungs cut at the top and bottom of the scan" in out
    row = pd.read_csv(tmp_path / "dose.csv", keep_default_na=False).iloc[0]
    assert row["lungs_cut"].startswith("lungs cut at the top and bottom of the scan")


def test_rp_train_validate_predict_warn_about_cut_lungs(tmp_path):
    from lungai.rp import make_cohort, predict_rp, train_rp, validate_rp

    table = make_cohort(60, seed=3, n_noise=0).table
    cut = [""] * len(table)
    cut[2] = "lungs cut at the bottom of the scan: 85 cm² of lung on the last slice"
    flagged = table.assign(lungs_cut=cut)
    r = train_rp(flagged, "rp_grade2", tmp_path / "m", models="lr", feature_sets="clinical_dosimetric",
                 outer_folds=2, inner_folds=2, fast=True, n_boot=2, make_plots=False)
    assert any("are cut by the scan" in w and table["case"].iloc[2] in w for w in r.metrics["warnings"])
    assert "lungs_cut" not in json.dumps(r.metrics.get("features", ""))
    v = validate_rp(tmp_path / "m", flagged, include_training_patients=True)
    assert any("are cut by the scan" in w for w in v["warnings"])
    pred, _ = predict_rp(tmp_path / "m", flagged)
    assert any("are cut by the scan" in w for w in pred.attrs["warnings"])


def test_a_lungs_gtv_structure_gives_the_lungs_minus_tumour_radiomics(export, tmp_path):
    """QA #2: an RTSTRUCT with GTV and only 'Lungs-GTV' (both lungs minus the GTV): patients.csv said "(no per-side
    lung radiomics)" but no lung radiomics at all were computed (~430 lung columns NaN).  Lungs-GTV is the
    lungs_minus_tumour segment: its radiomics are computed, and said so."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    lmg = sitk.And(sitk.Or(masks["Lung_R"], masks["Lung_L"]), sitk.Not(masks["GTV"]))
    write_rtstruct({"GTV": masks["GTV"], "Lungs-GTV": lmg}, ct_reference(root / "P1" / "CT"), tmp_path / "rs.dcm",
                   label="synthetic")
    rs.unlink()
    (tmp_path / "rs.dcm").replace(rs)
    jobs, inv = plan_cohort(root)
    assert "lungs_minus_tumour radiomics" in inv.set_index("patient_id").loc["P1", "lungs_from"]
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    row = pd.read_csv(tmp_path / "out" / "patients" / "P1" / "features.csv").iloc[0]
    volume = row["rad_lungs_minus_tumour_original_shape_VoxelVolume"]
    expected = float(sitk.GetArrayViewFromImage(lmg).sum()) * np.prod(lmg.GetSpacing())
    assert volume == pytest.approx(expected, rel=0.03)    # re-read from its contours, on the radiomics grid
    assert "lungs_minus_tumour radiomics" in doc["provenance"]["lungs"]
    assert not any("lungs_minus_tumour" in n for n in doc["notes"] if n.startswith("radiomics"))


def test_an_rtstruct_without_its_ct_names_the_series_and_the_fix(export, tmp_path, capsys):
    """QA #3: "no CT series with this frame of reference was found" named neither the CT nor the fix."""
    import pydicom
    from lungai.cli import main

    root = tmp_path / "export"
    shutil.copytree(export / "P1" / "RTSTRUCT", root / "P1" / "RTSTRUCT",
                    ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    ct = pydicom.dcmread(next((export / "P1" / "CT").glob("*.dcm")), stop_before_pixels=True)
    _, inv = plan_cohort(root)
    note = inv.set_index("patient_id").loc["P1", "notes"]
    assert f"no CT series with this frame of reference ({ct.FrameOfReferenceUID}) was found" in note
    assert f"rtstruct.dcm references CT series {ct.SeriesInstanceUID}" in note
    assert "export that CT series with the RTSTRUCT" in note
    assert main(["dicom-scan", str(root)]) == 0
    assert f"references CT series {ct.SeriesInstanceUID}" in capsys.readouterr().out


def test_a_dask_workers_progress_bars_make_no_multiprocessing_semaphore():
    """QA #5: after Ctrl-C with 2 Dask workers the terminal printed "resource_tracker: There appear to be 1 leaked
    semaphore objects to clean up at shutdown": tqdm's bar in a worker process (a patient's steps) made a
    multiprocessing RLock (a semaphore the resource tracker follows) that a worker ended by the cluster's close never
    released.  The worker's preload (quiet_worker) gives tqdm a thread lock: no semaphore is made."""
    import subprocess
    import sys

    code = ("from lungai.dask_workers import quiet_worker\nquiet_worker()\nfrom lungai.progress import task\n"
            "with task('x', 2) as bar:\n    bar.update(1, 'a')\n"
            "from tqdm.std import TqdmDefaultWriteLock as L\nprint('mp_lock' in vars(L))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False", res.stdout


def test_a_gtv_outside_the_rtstruct_lungs_is_in_the_patients_notes(export, tmp_path):
    """QA outsidefollow65: LUNG1-003's lung contours exclude every GTV, so lungai cohort's lungs_minus_tumour equals
    the lungs - said by `radiomics --tumour --lungs`, not by cohort.  Now in the patient's notes (result.json) as its
    other radiomics notes, and in its radiomics_grid notes."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    outside = sitk.Not(masks["GTV"])
    write_rtstruct({"GTV": masks["GTV"], "Lung_R": sitk.And(masks["Lung_R"], outside),
                    "Lung_L": sitk.And(masks["Lung_L"], outside)}, ct_reference(root / "P1" / "CT"),
                   tmp_path / "rs.dcm", label="synthetic")
    rs.unlink()
    (tmp_path / "rs.dcm").replace(rs)
    jobs, _ = plan_cohort(root)
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    said = [n for n in doc["notes"] if n.startswith("radiomics lungs_minus_tumour: ")]
    # the GTV structure named, not "the tumour mask" cohort was never given (QA emptysel65)
    assert len(said) == 1 and said[0].startswith(
        "radiomics lungs_minus_tumour: the tumour structure 'GTV' does not overlap the lungs (no voxel of it in "
        "segment 'lungs'), so segment 'lungs_minus_tumour' equals the lungs"), doc["notes"]
    grid = {g["segment"]: g["notes"] for g in doc["radiomics_grid"]}
    assert "does not overlap the lungs" in grid["lungs_minus_tumour"], grid
    row = pd.read_csv(tmp_path / "out" / "patients" / "P1" / "features.csv").iloc[0]
    assert row["rad_lungs_minus_tumour_original_shape_VoxelVolume"] == row["rad_lungs_original_shape_VoxelVolume"]


def test_a_refused_rtdose_is_told_rtdose_in_cohorts_and_dicom_scans_several_ct_warning(export, tmp_path, capsys,
                                                                                       monkeypatch):
    """QA cohortstd67: a refused RTDOSE (a FRACTION dose: the patient fails, ``job.rtdose`` None) was "no RTDOSE" in
    cohort's several-CT-series warning and "RTDOSE" in dicom-scan's: now "RTDOSE" in both (the refusal is said in
    its own "will fail" warning)."""
    from dose_helpers import with_summation_type
    from lungai.dicom.cohort import inventory_warnings

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    plan = root / "P1" / "RTDOSE" / "rtdose.dcm"
    with_summation_type(plan, root / "P1" / "RTDOSE" / "fraction.dcm", "FRACTION", factor=1 / 30)
    plan.unlink()
    n = len(list((root / "P1" / "CT").glob("*.dcm")))
    _short_series(root, "P1", slice(n // 2 - 4, n // 2 + 4))
    jobs, inv = plan_cohort(root)
    assert len(jobs) == 2 and all(j.rtdose is None and "FRACTION" in j.error[0] for j in jobs), jobs
    (several,) = [line for line in inventory_warnings(jobs, inv) if "has 2 CT series" in line]
    assert "no RTDOSE" not in several and several.count(", RTDOSE") == 2, several
    scan_and_stubbed_cohort(root, tmp_path / "out", several, monkeypatch, capsys)
