"""The demo's inputs, step by step (no full run): which stage-model inputs count, the radiomic segments an
RP model trained the documented way needs, the case name, the seed check and the one run time."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def phantom():
    """A small synthetic CT with its tumour and lung label map (lungai lungs convention: 1 right, 2 left)."""
    from io_helpers import sample_phantom_images

    ct, tumour, lungs, meta = sample_phantom_images((96, 96, 40))
    return ct, tumour, lungs, meta["tumour"]["centre_mm"]


@pytest.fixture(scope="module")
def ehr_rna_stage_model(tmp_path_factory):
    """A locked stage model trained on EHR + RNA only (no training patient has a CT), as on NSCLC-Radiogenomics."""
    from lungai.fusion.api import train_stage_model
    from lungai.fusion.pipeline import FusionConfig
    from lungai.fusion.synthetic import make_cohort

    d = tmp_path_factory.mktemp("stage_no_ct")
    paths = make_cohort(d / "cohort", n=30, seed=0, n_genes=30, module_size=6, ct_shape=(32, 32, 16),
                        ct_spacing=(6.0, 6.0, 5.0))
    train_stage_model(paths["ehr"], paths["rna"], None, label="stage", out_dir=d / "model",
                      config=FusionConfig(epochs=3, top_k=20, neighbours=3, seed=0), baselines=("logreg",),
                      inner_folds=2)
    ehr = pd.read_csv(paths["ehr"])
    return {"model": d / "model", "ehr": ehr, "dir": d}


def test_stage_model_inputs_count_only_when_trained_and_given(ehr_rna_stage_model, phantom):
    """The CT of a model whose CT branch never trained is not used; EHR counts only with one of the
    model's own columns; with neither the stage is not computed (no probabilities)."""
    from lungai.fusion import model_io
    from lungai.fusion.api import model_inputs, predict_stage

    ct, tumour, _, _ = phantom
    pipe, baselines, meta = model_io.load(ehr_rna_stage_model["model"])
    for model in [pipe, *baselines.values()]:
        needs = model_inputs(model)
        assert not needs["ct"] and needs["rna"] and needs["ehr"]
    for use in ("fusion", "logreg"):
        df = predict_stage(ehr_rna_stage_model["model"], patient_id="x", ehr_row={"not_a_model_column": 1.0},
                           ct_image=ct, mask_image=tumour, use=use)
        assert df.status.iloc[0].startswith("not computed"), df
        assert df.filter(like="p_").isna().all(axis=None) and pd.isna(df.predicted.iloc[0])
        assert not df[["ehr", "rna", "ct"]].any(axis=None)
        col = model_inputs(pipe if use == "fusion" else baselines[use])["ehr"][0]
        value = ehr_rna_stage_model["ehr"][col].dropna().iloc[0]
        df = predict_stage(ehr_rna_stage_model["model"], patient_id="x", ehr_row={col: value},
                           ct_image=ct, mask_image=tumour, use=use)
        assert df.status.iloc[0] == "computed" and bool(df.ehr.iloc[0]) and not df.ct.iloc[0]
        assert df.filter(like="p_").sum(axis=1).iloc[0] == pytest.approx(1.0, abs=1e-5)


def test_stage_predict_cli_leaves_patients_without_model_inputs_uncomputed(ehr_rna_stage_model, tmp_path, capsys):
    from lungai.cli import main

    ehr = ehr_rna_stage_model["ehr"].drop(columns=["stage"]).iloc[:2].copy()
    ehr.loc[ehr.index[1], [c for c in ehr.columns if c != "patient_id"]] = np.nan
    ehr["unrelated"] = 1.0
    ehr.to_csv(tmp_path / "new.csv", index=False)
    assert main(["stage", "predict", "--model", str(ehr_rna_stage_model["model"]), "--ehr", str(tmp_path / "new.csv"),
                 "-o", str(tmp_path / "p")]) == 0
    assert "no stage for 1 patient" in capsys.readouterr().err
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert pred.status.tolist()[0] == "computed" and pred.status.tolist()[1].startswith("not computed")
    assert pred.filter(like="p_").iloc[1].isna().all() and pred.filter(like="p_").iloc[0].notna().all()


def test_demo_stage_not_computed_without_the_models_inputs(ehr_rna_stage_model, phantom, tmp_path):
    """None of the model's EHR columns in --clinical and an untrained CT branch -> not computed, saying
    what the model needs; with one EHR column -> computed from EHR alone, and only EHR is named."""
    from lungai.demo.pipeline import _stage

    ct, tumour, _, _ = phantom
    clinical = {"patient_id": "P1", "clin_age_years": 60.0, "clin_sex_cat": "male"}
    st = _stage(tmp_path, ct, tumour, clinical, ehr_rna_stage_model["model"], sample=False, case="P1")
    assert st["status"] == "not computed" and "predicted" not in st and "probabilities" not in st
    assert [m["input"] for m in st["missing"]] == ["stage_inputs"]
    what = st["missing"][0]["what"]
    assert "EHR (at least one of" in what and "clin_age_years" in what and "the CT is not used: " in what
    assert "--clinical" in st["missing"][0]["how"]
    assert not (tmp_path / "stage_probabilities.csv").exists()

    col = next(c for c in ("age", "ldh", "sex") if c in ehr_rna_stage_model["ehr"].columns)
    clinical[col] = ehr_rna_stage_model["ehr"][col].dropna().iloc[0]
    st = _stage(tmp_path, ct, tumour, clinical, ehr_rna_stage_model["model"], sample=False, case="P1")
    assert st["status"] == "computed" and st["modalities_used"] == ["EHR"]
    assert "CT" not in st["modalities"] and "The CT is not used" in st["model_description"]


def test_demo_says_why_the_ct_is_not_used_in_the_words_of_stage_predict(ehr_rna_stage_model, phantom, tmp_path):
    """QA demostage65: `lungai demo --stage-model M` with a model trained with no CT manifest (no --ct) said "The CT is
    not used: the model was not trained with CT." (and "the model was not trained with CT" when the stage was not
    computed) while `lungai stage predict` and the panel say why and the fix (retrain with --ct).  Now the demo says
    the same words (lungai.fusion.ct_unused_text), naming the model that predicts."""
    from lungai.demo.pipeline import _stage
    from lungai.fusion import ct_unused_text, model_io

    ct, tumour, _, _ = phantom
    model = ehr_rna_stage_model["model"]
    pipe, baselines, meta = model_io.load(model)
    said = "was trained without a CT manifest (`lungai stage train` was given no --ct); retrain it with --ct to use CTs"
    col = next(c for c in ("age", "ldh", "sex") if c in ehr_rna_stage_model["ehr"].columns)
    for selected in ("fusion", "logreg"):
        loaded = (pipe, baselines, {**meta, "selected": selected})
        st = _stage(tmp_path, ct, tumour, {"patient_id": "P1", col: ehr_rna_stage_model["ehr"][col].dropna().iloc[0]},
                    model, sample=False, case="P1", loaded=loaded)
        assert st["status"] == "computed" and st["modalities_used"] == ["EHR"]
        note = f"The CT is not used: {selected} {said}."
        assert note == f"The CT is not used: {ct_unused_text(selected, pipe.notes, pipe.modalities)}."
        assert note in st["inputs_not_used"] and note in st["model_description"], st["inputs_not_used"]
        assert "the model was not trained with CT" not in st["model_description"]
        # not computed (no model EHR column given): the missing input says the same
        st = _stage(tmp_path, ct, tumour, {"patient_id": "P1", "clin_age_years": 60.0}, model, sample=False,
                    case="P1", loaded=loaded)
        assert st["status"] == "not computed"
        what = st["missing"][0]["what"]
        assert f"(the CT is not used: {selected} {said})" in what and "the model was not trained" not in what, what


@pytest.mark.parametrize("selected", ["logreg", "fusion"])
def test_demo_says_how_the_selected_model_stood_in_for_an_input_it_lacked(ehr_rna_stage_model, phantom, tmp_path,
                                                                          selected):
    """QA stage64: the demo's report said "Inputs used for this patient: EHR (the other branches masked)" also when a
    plain baseline (logistic regression: one table, no branches) made the prediction; it imputes the RNA input. Now
    the text names the model's input the patient lacked and what stood in for it (the CT, which the model never
    learnt, is no input of it)."""
    from lungai.demo.pipeline import _stage
    from lungai.fusion import model_io

    ct, tumour, _, _ = phantom
    pipe, baselines, meta = model_io.load(ehr_rna_stage_model["model"])
    col = next(c for c in ("age", "ldh", "sex") if c in ehr_rna_stage_model["ehr"].columns)
    clinical = {"patient_id": "P1", col: ehr_rna_stage_model["ehr"][col].dropna().iloc[0]}
    st = _stage(tmp_path, ct, tumour, clinical, ehr_rna_stage_model["model"], sample=False, case="P1",
                loaded=(pipe, baselines, {**meta, "selected": selected}))
    assert st["status"] == "computed" and st["modalities_used"] == ["EHR"]
    assert st["modalities"] == {"logreg": "EHR (the model's RNA input imputed, as for its training patients without it)",
                                "fusion": "EHR (the model's RNA branch masked)"}[selected]


def test_demo_says_plainly_that_rna_seq_is_not_used(ehr_rna_stage_model, phantom, tmp_path):
    """QA stageuse63: `lungai demo --stage-model M --clinical row.csv` with a model trained on EHR + RNA-seq (as on
    NSCLC-Radiogenomics) predicted from EHR alone and said "Modalities available for this patient: EHR": that the
    demo takes no RNA-seq - the model's RNA branch masked, whatever RNA the patient has - was said only when the stage
    could not be computed at all.  Now the stage section, summary.json and the console say it whenever the model was
    trained with RNA-seq, with the command that predicts with it (`lungai stage predict --rna`)."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _stage
    from lungai.report.html import _stage as stage_html

    ct, tumour, _, _ = phantom
    model = ehr_rna_stage_model["model"]
    col = next(c for c in ("age", "ldh", "sex") if c in ehr_rna_stage_model["ehr"].columns)
    clinical = {"patient_id": "P1", col: ehr_rna_stage_model["ehr"][col].dropna().iloc[0]}
    st = _stage(tmp_path, ct, tumour, clinical, model, sample=False, case="P1")
    assert st["status"] == "computed" and st["modalities_used"] == ["EHR"]
    said = [n for n in st["inputs_not_used"] if n.startswith("RNA-seq is not used")]
    assert len(said) == 1 and "the demo takes no RNA-seq" in said[0], st["inputs_not_used"]
    assert f"lungai stage predict --model {model}" in said[0] and "--rna" in said[0]
    assert said[0] in st["model_description"]
    page = stage_html({"stage": st, "segmentation": {"needs_review": False}}, {})
    assert "RNA-seq is not used" in page and "Modalities available" not in page
    summary = {"segmentation": {"tumor_volume_ml": 1.0, "confidence": 0.9, "needs_review": False},
               "rp": {"status": "not computed", "message": "not computed"}, "stage": st, "dose": None,
               "dose_source": "no dose", "dose_status": "computed", "inputs": {"ct": "x"}}
    assert f"  stage note: {said[0]}" in result_lines(summary)
    # not computed (no model EHR column given): the missing input's fix says the same
    st = _stage(tmp_path, ct, tumour, {"patient_id": "P1", "unrelated": 1.0}, model, sample=False, case="P1")
    assert st["status"] == "not computed" and said[0] in st["missing"][0]["how"]


def test_demo_applies_an_rp_model_trained_as_documented(phantom, tmp_path):
    """`lungai rp synth` + `lungai rp train` (its features include rad_lungs_minus_tumour_*) -> the demo's
    radiomics give every feature the model needs, and the risk is computed."""
    from lungai.cli import main
    from lungai.demo.patient import EXAMPLE_CLINICAL
    from lungai.demo.pipeline import _radiomics, _rp
    from lungai.rp.model_io import load_model

    cohort, model = tmp_path / "cohort.csv", tmp_path / "rp_model"
    assert main(["rp", "synth", "-o", str(cohort), "-n", "120", "--seed", "1"]) == 0
    assert main(["rp", "train", str(cohort), "--outcome", "rp_grade2", "-o", str(model), "--fast", "--models", "lr",
                 "--feature-sets", "all", "--outer-folds", "3", "--bootstrap", "4", "--final", "all/lr"]) == 0
    features = load_model(model)[1]["features"]
    assert any(f.startswith("rad_lungs_minus_tumour_") for f in features)
    ct, tumour, lungs, _ = phantom
    out = tmp_path / "demo"
    out.mkdir()
    wide, info = _radiomics(out, ct, tumour, lungs, case="P1")
    assert not [f for f in features if f.startswith("rad_") and f not in wide.columns]
    table = pd.read_csv(cohort)
    dose_row = table[[c for c in table.columns if c.startswith("dose_")]].iloc[0].to_dict()
    rp = _rp(out, wide, dose_row, True, {"patient_id": "P1", **EXAMPLE_CLINICAL}, model, sample=False, case="P1")
    # computed - and illustrative: the model's card says it was trained on rp synth's synthetic cohort
    assert rp["status"] == "illustrative" and rp["synthetic_model"], rp.get("message")
    assert 0.0 <= rp["risk"] <= 1.0
    assert pd.read_csv(out / "rp_prediction.csv")["case"].tolist() == ["P1"]


def test_the_demo_notes_a_tumour_outside_the_lungs(phantom, tmp_path):
    """QA emptysel65: the demo's radiomics built lungs_minus_tumour without the note `lungai radiomics` / cohort give
    of a tumour wholly outside the lungs (the segment then equals the lungs): noted in the automatic tumour's words,
    in radiomics_settings.csv, summary.json's radiomics.notes and the report / console from them."""
    from lungai.demo.pipeline import _radiomics
    from lungai.report.html import radiomics_notes

    ct, tumour, lungs, _ = phantom
    out = tmp_path / "demo"
    out.mkdir()
    info = _radiomics(out, ct, tumour, lungs, case="P1")[1]       # the phantom's lung labels never hold the tumour
    text = ("lungs_minus_tumour: the automatic tumour does not overlap the lungs (no voxel of it in segment 'lungs'), "
            "so segment 'lungs_minus_tumour' equals the lungs")
    assert len(radiomics_notes(info)) == 1 and radiomics_notes(info)[0].startswith(text), info.get("notes")
    settings = pd.read_csv(out / "radiomics_settings.csv").set_index("segment")["notes"].fillna("")
    assert "does not overlap the lungs" in settings["lungs_minus_tumour"], settings
    # the tumour in its (right) lung, as the automatic lungs hold it: no such note
    inside = sitk.Mask(lungs, sitk.Not(sitk.Cast(tumour > 0, sitk.sitkUInt8)), outsideValue=1, maskingValue=0)
    assert not radiomics_notes(_radiomics(tmp_path, ct, tumour, inside, case="P1")[1])


def test_case_id_from_dicom_patient_id_else_file_stem(tmp_path):
    """lungai.io.input_case_id and the demo's case name (a DICOM CT's PatientID wins; --patient-id names a
    NIfTI / NRRD / MHA CT's case)."""
    from lungai.demo.pipeline import demo_case_id
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import input_case_id as case_id

    img = sitk.Image(8, 8, 4, sitk.sitkInt16)
    img.SetSpacing((2.0, 2.0, 3.0))
    folder = tmp_path / "CT"
    write_ct_series(img, folder, patient_id="LUNG1-099")
    assert case_id(folder) == "LUNG1-099"
    assert demo_case_id(folder) == "LUNG1-099" and demo_case_id(folder, "P7") == "LUNG1-099"
    assert case_id(tmp_path / "LUNG1-003_ct.nii.gz") == "LUNG1-003_ct"
    assert demo_case_id(tmp_path / "scan.nrrd") == "scan" and demo_case_id(None) == "demo"
    assert demo_case_id(tmp_path / "scan.nrrd", "P7") == "P7"


def test_bad_seed_point_writes_nothing(phantom, tmp_path):
    """Minor (a): a seed point outside the body is refused before any output file is written."""
    from lungai.demo import run_demo
    from lungai.errors import InputError

    ct, _, _, _ = phantom
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="seed point"):
        run_demo(out, ct_path=tmp_path / "ct.nii.gz", seed_lps=[1e4, 1e4, 1e4])
    assert not out.exists() or not any(out.iterdir())


def _dicom_ct(folder, patient_id):
    from lungai.dicom.synthetic import write_ct_series

    img = sitk.Image(8, 8, 4, sitk.sitkInt16)
    img.SetSpacing((2.0, 2.0, 3.0))
    write_ct_series(img, folder, patient_id=patient_id)
    return folder


def test_clinical_row_and_patient_id_must_be_the_dicom_ct_patient(tmp_path):
    """QA defect: a clinical row / --patient-id of another patient than the DICOM CT's PatientID was reported under
    that CT (risk from the other patient's row).  Now refused, naming both ids; --patient-id selects the row; the
    case is named by the DICOM PatientID."""
    from lungai.demo import run_demo
    from lungai.demo.pipeline import ct_patient_id, demo_case_id, read_clinical
    from lungai.demo.patient import EXAMPLE_CLINICAL
    from lungai.errors import InputError

    ct = _dicom_ct(tmp_path / "CT", "LUNG1-003")
    assert ct_patient_id(ct) == "LUNG1-003" and ct_patient_id(tmp_path / "x.nii.gz") is None
    cohort = tmp_path / "cohort.csv"
    pd.DataFrame([{"case": "LUNG1-002", **EXAMPLE_CLINICAL, "clin_age_years": 81.0},
                  {"case": "LUNG1-003", **EXAMPLE_CLINICAL, "clin_age_years": 59.0}]).to_csv(cohort, index=False)
    other = tmp_path / "other.csv"
    pd.DataFrame([{"case": "LUNG1-002", **EXAMPLE_CLINICAL}]).to_csv(other, index=False)
    with pytest.raises(InputError, match="LUNG1-002.*LUNG1-003"):
        read_clinical(cohort, "LUNG1-002", "LUNG1-003")
    with pytest.raises(InputError, match="LUNG1-002.*LUNG1-003"):
        read_clinical(other, None, "LUNG1-003")
    # the CT's row is taken from a cohort table (no --patient-id needed); ids match ignoring case and spaces
    assert read_clinical(cohort, None, "LUNG1-003")["clin_age_years"] == 59.0
    assert read_clinical(cohort, " lung1-003", "LUNG1-003")["patient_id"] == "LUNG1-003"
    assert read_clinical(other, None, None)["patient_id"] == "LUNG1-002"     # a NIfTI CT: nothing to compare
    assert demo_case_id(ct, "lung1-003") == "LUNG1-003"
    out = tmp_path / "out"
    for kwargs in ({"clinical": cohort, "patient_id": "LUNG1-002"}, {"clinical": other}, {"patient_id": "LUNG1-002"}):
        with pytest.raises(InputError, match="LUNG1-002.*LUNG1-003"):
            run_demo(out, ct_path=ct, **kwargs)
        assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def clinical_dose_rp_model(tmp_path_factory):
    """A small RP model on clinical + dose features only (no radiomics)."""
    from lungai.rp import train_rp

    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"case": [f"P{i}" for i in range(n)], "clin_age_years": rng.normal(65, 8, n),
                       "clin_hb_g_dl": rng.normal(13, 1.5, n), "dose_mld_gy": rng.uniform(5, 20, n)})
    df["rp_grade2"] = (rng.random(n) < 1 / (1 + np.exp(-(df.dose_mld_gy - 12) / 3))).astype(int)
    d = tmp_path_factory.mktemp("rp_clin_dose")
    train_rp(df, "rp_grade2", d / "model", models="lr", fast=True, seed=0, make_plots=False)
    return d / "model"


def _preset_id(name: str) -> str:
    from lungai.radiomics import load_params
    from lungai.radiomics.settings import settings_id

    return settings_id(load_params(name, image_types=["Original"]))


@pytest.fixture(scope="module")
def ibsi_b_rp_model(tmp_path_factory):
    """A small RP model on clinical, dose and lung radiomic features computed with --params ibsi-b (its table's
    radiomics_settings); its training patients T0..T119, not the demo's P1 nor a patient N1 (rp predict would mark
    them in-sample)."""
    from lungai.rp import train_rp

    rng = np.random.default_rng(1)
    n = 120
    df = pd.DataFrame({"case": [f"T{i}" for i in range(n)], "clin_age_years": rng.normal(65, 8, n),
                       "dose_mld_gy": rng.uniform(5, 20, n),
                       "rad_lungs_original_firstorder_Mean": rng.normal(-830, 40, n),
                       "radiomics_settings": _preset_id("ibsi-b")})
    df["rp_grade2"] = (rng.random(n) < 1 / (1 + np.exp(-(df.dose_mld_gy - 12) / 3))).astype(int)
    d = tmp_path_factory.mktemp("rp_ibsi_b")
    train_rp(df, "rp_grade2", d / "model", models="lr", feature_sets="all", fast=True, seed=0, make_plots=False)
    return d / "model"


def test_demo_rp_checks_the_settings_of_the_radiomics_it_computed(ibsi_b_rp_model, tmp_path):
    """QA demorisk59 (LUNG1-003, lungai demo --ct --seed-point --clinical --rp-model): the demo's patient row dropped
    the radiomics_settings of the features it computed (radiomics_wide.csv), so a model trained with --params ibsi-b
    took the demo's --params default values with only "radiomics settings unknown" - the warning a model of the
    demo's own settings got too; with a --clinical cohort rp_table.csv row, that table's id was checked instead (its
    ibsi-b id passed the default values without a word); and the refusal's fix named --allow-other-radiomics-settings,
    which lungai demo has not.  Now the demo's own id is checked, and the fix names the demo's --params (the risk is
    then not computed, with that reason and fix: QA demoseq59, test_demo_rp_refused_inputs_leave_the_report)."""
    from lungai.demo.pipeline import _rp

    clinical = {"patient_id": "N1", "clin_age_years": 70.0, "dose_mld_gy": 12.0}
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("default")}])
    for given in (None, _preset_id("ibsi-b")):      # no id in --clinical, or the id of a cohort table's rad_* columns
        row = {**clinical, **({"radiomics_settings": given} if given else {})}
        rp = _rp(tmp_path, wide, None, False, row, ibsi_b_rp_model, sample=False, case="N1")
        assert rp["status"] == "not computed" and "risk" not in rp, rp
        assert _preset_id("default") in rp["refused"]["what"]
        assert "run lungai demo again with --params ibsi-b" in rp["refused"]["how"]
        assert "--allow-other-radiomics-settings" not in rp["refused"]["how"]
    # computed with the model's settings: no "settings unknown"
    rp = _rp(tmp_path, wide.assign(radiomics_settings=_preset_id("ibsi-b")), None, False, clinical, ibsi_b_rp_model,
             sample=False, case="N1")
    assert rp["status"] == "computed" and rp["warnings"] == [], rp["warnings"]
    # the model's radiomic features not computed here (other settings): the fix names the model's --params
    rp = _rp(tmp_path, wide.drop(columns="rad_lungs_original_firstorder_Mean").assign(rad_tumour_x=1.0), None, False,
             clinical, ibsi_b_rp_model, sample=False, case="N1")
    assert rp["status"] == "not computed" and "--params ibsi-b" in rp["message"], rp["message"]


def test_demo_rp_refused_inputs_leave_the_report(ibsi_b_rp_model, tmp_path):
    """QA demoseq59 (LUNG1-003, lungai demo --ct --seed-point --clinical --rp-model of a model trained with --params
    ibsi-b): the RP model's refusal of the demo's inputs (radiomics of other settings) ended the whole demo with an
    error after ~50 s of work: no report.html, summary.json nor scene.mrb - the segmentation, radiomics and dose the
    user waited for were in no report.  Now the risk is not computed, as for a missing input: the report, summary and
    console say why and the fix, and the demo goes on (exit status 0, as for any step not computed)."""
    from lungai.cli.demo import result_lines
    from lungai.demo import run_demo

    out = tmp_path / "demo"
    summary = run_demo(out, small=True, rp_model=ibsi_b_rp_model)     # the sample's radiomics: --params default
    rp = summary["rp"]
    assert rp["status"] == "not computed" and "risk" not in rp, rp
    assert _preset_id("default") in rp["refused"]["what"] and "--params ibsi-b" in rp["refused"]["how"]
    for name in ("report.html", "summary.json", "scene.mrb", "radiomics_wide.csv", "tumor.nii.gz"):
        assert (out / name).exists(), name
    page = (out / "report.html").read_text()
    assert 'id="rp-refused"' in page and "run lungai demo again with --params ibsi-b" in page
    assert json.loads((out / "summary.json").read_text())["rp"]["refused"] == rp["refused"]
    assert rp["refused"]["how"] in pd.read_csv(out / "missing_inputs.csv")["how"].tolist()   # the scene's table
    line = next(li for li in result_lines(summary) if li.startswith("RP risk"))
    assert line.startswith("RP risk not computed: the RP model refused") and "--params ibsi-b" in line, line
    assert summary["stage"]["status"] == "illustrative"      # the steps after it still ran


def test_demo_rp_carries_its_own_tumours_confidence_caveat(ibsi_b_rp_model, tmp_path):
    """QA demoseq59 (LUNG1-003, lungai demo --model lungai-seg-dynunet --seed-point, no review flag): the demo printed
    the segmentation's confidence caveat, but its RP risk - from the dose metrics of that automatic tumour - said
    nothing of it, while `rp predict` warns of such a row (tumour_confidence_caveat).  Now the demo's row carries it:
    rp_prediction.csv's warnings, the risk's warnings and the table warning with the demo's fix."""
    from lungai.demo.pipeline import _rp
    from lungai.rp.predict import CAVEAT_ROW
    from lungai.rp.prepare import CAVEAT_FIX_DEMO
    from lungai.seg.resources import CONFIDENCE_CAVEATS, DYNUNET_MODEL_NAME

    caveat = CONFIDENCE_CAVEATS[DYNUNET_MODEL_NAME]
    clinical = {"patient_id": "N1", "clin_age_years": 70.0}
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("ibsi-b")}])
    dose = {"dose_mld_gy": 12.0}
    tumour = {"caveat": caveat, "needs_review": False, "dose": True}
    rp = _rp(tmp_path, wide, dose, True, clinical, ibsi_b_rp_model, sample=False, case="N1", tumour=tumour)
    assert rp["status"] == "computed" and CAVEAT_ROW in rp["warnings"], rp["warnings"]
    assert any(w.endswith(CAVEAT_FIX_DEMO) for w in rp["table_warnings"]), rp["table_warnings"]
    assert not any("re-run lungai cohort" in w for w in rp["table_warnings"])
    assert CAVEAT_ROW in pd.read_csv(tmp_path / "rp_prediction.csv")["warnings"].iloc[0]
    # flagged for review (said by the demo's review note), or a dose on the RTSTRUCT's GTV and no tumour radiomics
    # used: no caveat
    for other in ({**tumour, "needs_review": True}, {**tumour, "dose": False}, {**tumour, "caveat": ""}):
        rp = _rp(tmp_path, wide, dose, True, clinical, ibsi_b_rp_model, sample=False, case="N1", tumour=other)
        assert rp["warnings"] == [] and rp["table_warnings"] == [], (other, rp)


def test_demo_rp_says_which_values_came_from_a_cohort_row_and_which_it_replaced(ibsi_b_rp_model, tmp_path):
    """QA demoseq59 (LUNG1-003, lungai demo --seed-point --clinical rp_table.csv --patient-id LUNG1-003 --rp-model, no
    --dose): the demo's own radiomics replaced the cohort row's (of its GTV) without a word, and the risk's inputs
    said "dose metrics from --dose" of the row's dose metrics (no --dose was given).  Now the risk names the rad_* /
    dose_* values taken from the row and those of the row that this run's replaced (summary, report, console)."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _rp

    clinical = {"patient_id": "N1", "clin_age_years": 70.0, "dose_mld_gy": 14.0,
                "rad_lungs_original_firstorder_Mean": -700.0}
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("ibsi-b")}])
    rp = _rp(tmp_path, wide, None, False, clinical, ibsi_b_rp_model, sample=False, case="N1")
    assert rp["sources"] == {"this_run": ["rad_lungs_original_firstorder_Mean"], "clinical_row": ["dose_mld_gy"],
                             "replaced": ["rad_lungs_original_firstorder_Mean"]}, rp["sources"]
    assert "from --dose" not in rp["model_description"], rp["model_description"]
    assert "1 dose metrics from the --clinical row (dose_mld_gy)" in rp["inputs"]
    assert "row's own values of 1 feature replaced by this run's (rad_lungs_original_firstorder_Mean)" in rp["inputs"]
    assert rp["inputs"] in rp["model_description"]     # the report's RP section
    summary = {"segmentation": {"tumour_volume_ml": 1.0, "confidence": 0.9, "needs_review": False}, "rp": rp,
               "stage": {"status": "not computed", "message": "not computed"}, "dose": None,
               "dose_source": "no dose", "dose_status": "not computed", "inputs": {"ct": "ct.nii.gz"}}
    assert f"  RP inputs: {rp['inputs']}" in result_lines(summary)
    # all of the model's rad_* / dose_* values this run's (its --dose): no "RP inputs" line
    rp = _rp(tmp_path, wide, {"dose_mld_gy": 12.0}, True, {k: v for k, v in clinical.items() if k.startswith(
        ("patient", "clin_"))}, ibsi_b_rp_model, sample=False, case="N1")
    assert rp["sources"]["clinical_row"] == rp["sources"]["replaced"] == [] and "from --dose" in rp["inputs"]
    assert not any(line.startswith("  RP inputs") for line in result_lines({**summary, "rp": rp}))


def test_demo_rp_drops_a_cohort_rows_notes_of_a_tumour_it_replaced(ibsi_b_rp_model, tmp_path):
    """QA demorisk59: with a cohort's rp_table.csv row as --clinical (its tumour_review / tumour_confidence_caveat of
    the cohort's automatic tumour), the demo's risk - from the radiomics and dose of the demo's own tumour - said
    "automatic tumour needs review" of the cohort's tumour with the fix "re-run lungai cohort".  Those notes are left
    out when the model's rad_* / dose_* values are all the demo's, and kept when some come from the row."""
    from lungai.demo.pipeline import _rp

    review = "low confidence; several candidate regions (automatic mode)"
    clinical = {"patient_id": "N1", "clin_age_years": 70.0, "dose_mld_gy": 14.0, "tumour_review": review,
                "Tumour_Confidence_Caveat ": "this model's confidence tracks the Dice less well",
                # the cohort's tumour left out a renamed GTV (QA cohortfollow72): of that tumour, not the demo's
                "tumour_notes": "structure 'Tumour_main' is named like a tumour but its name has no role"}
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("ibsi-b")}])
    rp = _rp(tmp_path, wide, {"dose_mld_gy": 12.0}, True, clinical, ibsi_b_rp_model, sample=False, case="N1")
    assert rp["status"] == "computed" and rp["warnings"] == [] and rp["table_warnings"] == [], rp
    # the row's dose (of the cohort's tumour's lungs) is used: its notes are said
    rp = _rp(tmp_path, wide, None, False, clinical, ibsi_b_rp_model, sample=False, case="N1")
    assert f"automatic tumour needs review ({review})" in rp["warnings"]
    assert any("may leave out a GTV" in w for w in rp["warnings"]), rp["warnings"]
    assert not any("not flagged" in w for w in rp["warnings"])     # flagged: said by the review warning only


def test_demo_rp_drops_a_cohort_rows_lung_notes_of_lungs_it_replaced(ibsi_b_rp_model, tmp_path):
    """QA notesfollow72: with a cohort's rp_table.csv row as --clinical, its lung_notes (of the cohort's lungs: a GTV
    exported as 'Lungs', one lung absent) were said of the demo's risk ("the lungs ... may not be the whole lungs",
    in its warnings and rp_prediction.csv) although the demo's own lungs gave every lung radiomic / dose value.  Left
    out then, kept when the row's own lung dose is used."""
    from lungai.demo.pipeline import _rp

    clinical = {"patient_id": "N1", "clin_age_years": 70.0, "dose_mld_gy": 14.0,
                "Lung_Notes ": "structure 'Lungs' does not look like a lung (12 ml); left lung absent"}
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("ibsi-b")}])
    rp = _rp(tmp_path, wide, {"dose_mld_gy": 12.0}, True, clinical, ibsi_b_rp_model, sample=False, case="N1")
    said = rp["warnings"] + rp["table_warnings"]
    assert rp["status"] == "computed" and not any("whole lungs" in w for w in said), said
    assert "whole lungs" not in (tmp_path / "rp_prediction.csv").read_text()
    # the row's lung dose (of the cohort's lungs) is used: its lung notes are said
    rp = _rp(tmp_path, wide, None, False, clinical, ibsi_b_rp_model, sample=False, case="N1")
    assert any("may not be the whole lungs" in w for w in rp["warnings"] + rp["table_warnings"]), rp


def test_demo_rp_carries_imputed_and_out_of_range_features(clinical_dose_rp_model, tmp_path):
    """QA defect: rp_prediction.csv listed out-of-range and imputed features but the demo's console, summary.json
    and report showed a plain risk.  They now travel with the risk (with the baseline risk), and the report and
    console list them; the model card's validation and intended use are shown, and the inputs say no radiomics
    were used when the model uses none."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _rp
    from lungai.report.html import _rp as rp_html

    clinical = {"patient_id": "P1", "clin_age_years": 70.0, "clin_hb_g_dl": np.nan}
    rp = _rp(tmp_path, pd.DataFrame([{"rad_tumour_x": 1.0}]), {"dose_mld_gy": 45.0}, True, clinical,
             clinical_dose_rp_model, sample=False, case="P1")
    assert rp["status"] == "computed"
    assert rp["imputed"] == ["clin_hb_g_dl"]
    assert len(rp["out_of_range"]) == 1 and rp["out_of_range"][0].startswith("dose_mld_gy=45")
    assert 0.0 < rp["baseline_risk"] < 1.0
    assert "radiomics computed here" not in rp["model_description"]
    assert "uses no radiomic features" in rp["model_description"]
    assert "nested-CV AUC" in rp["card"]["validation"] and "not for clinical decisions" in rp["card"]["intended_use"]
    page = rp_html({"rp": rp, "segmentation": {"needs_review": False}}, {})
    assert 'id="rp-warnings"' in page and 'id="rp-out-of-range" data-value="1"' in page
    assert "dose_mld_gy=45" in page and "clin_hb_g_dl" in page and 'id="rp-card"' in page
    assert "not for clinical decisions" in page
    summary = {"segmentation": {"tumor_volume_ml": 1.0, "confidence": 0.9, "needs_review": False}, "rp": rp,
               "stage": {"message": "x"}, "dose": None, "dose_source": "none", "lungs": {}}
    text = "\n".join(result_lines(summary))
    assert "outside the training range (1): dose_mld_gy=45" in text and "imputed (missing) (1): clin_hb_g_dl" in text


def _seg_info(**kw):
    return {"needs_review": True, "review_reasons": ["confidence below the review threshold"], "confidence": 0.3,
            "review_threshold": 0.5, "tumor_volume_ml": 1.3, "n_components": 1, "members": 3, "method": "ensemble",
            "mc_passes": 0, "roi_mode": "seed", "seed_point_lps_mm": [47.4, -2.5, -127.2], "notes": [],
            "roi_passes": [{"pass": 1, "roi_size_mm": [60.0, 60.0, 60.0], "kept": False},
                           {"pass": 2, "roi_size_mm": [122.1, 122.1, 126.0], "kept": True}], **kw}


def test_report_labels_automatic_masks_and_repeats_the_review_flag():
    """QA defect: the dose section said 'lungs minus the GTV' / 'GTV dose mean' of the automatic lungs and a
    tumour flagged for review, 'automatic' nowhere; the dose and RP sections did not repeat the review flag."""
    from lungai.demo.pipeline import dose_masks
    from lungai.report.html import _dose, _rp

    seg = _seg_info()
    d = {"dose_mld_gy": 7.85, **{f"dose_v{v}_pct": 10.0 for v in (5, 13, 20, 30)},
         **{f"dose_d{x}_gy": 1.0 for x in (2, 50, 98)}, "dose_gtv_mean_gy": 60.0, "dose_gtv_min_gy": 59.0,
         "dose_gtv_max_gy": 61.0}
    s = {"dose": d, "dose_source": "RT dose RD.dcm.", "segmentation": seg, "dose_masks": dose_masks(seg),
         "rp": {"risk": 0.2, "risk_low": 0.1, "risk_high": 0.3, "model_description": "m", "status": "computed"}}
    page = _dose(s, {})
    assert "automatic lungs" in page and "automatic tumour (flagged for review)" in page
    assert "Lung metrics are for the lungs minus the GTV" not in page and "<td>GTV dose mean" not in page
    assert 'id="dose-review"' in page and 'id="rp-review"' in _rp(s, {})
    seg.update(needs_review=False)
    s["dose_masks"] = dose_masks(seg)
    assert 'id="dose-review"' not in _dose(s, {}) and 'id="rp-review"' not in _rp(s, {})
    assert "automatic tumour" in _dose(s, {}) and "flagged" not in _dose(s, {})


def test_report_roi_is_the_kept_pass_box():
    """QA defect: the report said 'a 60 mm cube' although the kept pass used a 122 x 122 x 126 mm box."""
    from lungai.report.html import _segmentation, roi_size_mm

    seg = _seg_info()
    assert roi_size_mm(seg) == [122.1, 122.1, 126.0]
    page = _segmentation({"segmentation": seg}, {})
    assert "60 mm cube" not in page and "122 x 122 x 126 mm" in page


def test_report_roi_size_is_the_recorded_box_size_in_automatic_mode():
    """QA: with no growth passes (automatic mode) the report took |corner1 - corner0| of roi_lps_mm - the centres of
    the box's corner voxels, one voxel short per axis (lung1: 260.6 x 170.5 x 225 vs the 261.2 x 171.1 x 230 mm box)
    and wrong on an oblique CT: the box size is result.json's roi_size_mm (lungai.seg.infer records it)."""
    from lungai.report.html import _segmentation, roi_size_mm

    seg = _seg_info(roi_mode="lungs", seed_point_lps_mm=None, roi_passes=[],
                    roi_lps_mm=[[-130.3, -85.25, -300.0], [130.3, 85.25, -75.0]], roi_size_mm=[261.2, 171.1, 230.0])
    assert roi_size_mm(seg) == [261.2, 171.1, 230.0]
    assert "261 x 171 x 230 mm" in _segmentation({"segmentation": seg}, {})
    assert roi_size_mm({"roi_lps_mm": [[0, 0, 0], [60, 60, 60]]}) is None     # not recorded: no size, none made up


def test_report_states_the_predicted_stage_and_a_close_call():
    """QA: the report never said the predicted stage and 2-decimal rounding hid the winner (I 0.43 vs III 0.43;
    really 0.4285 / 0.4316): a "predicted stage" card with 3 decimals and a close-call note; the console too."""
    from lungai.cli.demo import result_lines
    from lungai.report.html import _stage, predicted_stage_text

    st = {"classes": ["I", "II", "III"], "probabilities": [0.4287, 0.1397, 0.4316], "predicted": "III",
          "model_description": "m", "modalities": "EHR", "modalities_used": ["EHR"], "status": "computed"}
    assert predicted_stage_text(st) == "III (p 0.432) - close call: I p 0.429"
    page = _stage({"stage": st, "segmentation": {"needs_review": False}}, {})
    assert 'id="stage-predicted" data-value="III"' in page and "III (p 0.432) - close call: I p 0.429" in page
    assert ">0.429<" in page and ">0.432<" in page
    assert predicted_stage_text({**st, "probabilities": [0.2, 0.1, 0.7]}) == "III (p 0.700)"
    summary = {"segmentation": {"tumor_volume_ml": 1.0, "confidence": 0.9, "needs_review": False},
               "rp": {"status": "not computed", "message": "not computed"}, "stage": st, "dose": None,
               "dose_source": "no dose", "dose_status": "computed", "inputs": {"ct": "x"}}
    assert "stage: III (p 0.432) - close call: I p 0.429" in result_lines(summary)


def test_methods_list_only_the_steps_that_were_computed():
    """QA: on a CT without --dose, --rp-model and --stage-model the Methods described the dose, RP and stage
    methods although none was computed."""
    from lungai.demo.pipeline import _methods

    seg = {"members": 3, "architecture": "unet"}
    base = {"segmentation": seg, "radiomics": {"params": "p"}, "dose": None, "inputs": {"ct": "/x/CT"},
            "rp": {"status": "not computed", "message": "not computed: x"},
            "stage": {"status": "not computed", "message": "not computed: y"}}
    methods = " ".join(_methods(base)[0])
    assert "Dose:" not in methods and "RP risk:" not in methods and "Stage:" not in methods
    done = {**base, "dose": {"dose_mld_gy": 1.0}, "rp": {"status": "computed", "risk": 0.2},
            "stage": {"status": "computed", "probabilities": [0.5, 0.5]}}
    methods = " ".join(_methods(done)[0])
    assert "Dose:" in methods and "RP risk:" in methods and "Stage:" in methods


def test_stage_model_card_class_counts_are_text_not_a_dict(ehr_rna_stage_model):
    """QA: the report's stage model card said "trained on 40 patients {'I': 14, 'II': 14, 'III': 12}"."""
    from lungai.fusion import model_io
    from lungai.report.html import _card_text

    text = _card_text({"n": 40, "class_counts": {"I": 14, "II": 14, "III": 12}, "verdict": "v",
                       "intended_use": "research"}, "stage")
    assert "trained on 40 patients (I 14, II 14, III 12); v" in text and "{" not in text
    md = model_io.card_markdown(model_io.load(ehr_rna_stage_model["model"])[2])
    assert "classes I " in md and "{'" not in md.split("Training cohort")[1].split("with EHR")[0]


def test_report_shows_the_stage_model_card(ehr_rna_stage_model):
    """QA defect: the stage section showed neither the model's training cohort and selection nor the warning of a
    model locked without comparison with plain baselines."""
    from lungai.demo.pipeline import stage_card_summary
    from lungai.fusion import model_io
    from lungai.report.html import _stage

    meta = model_io.load(ehr_rna_stage_model["model"])[2]
    card = stage_card_summary(meta)
    assert card["compared_with_baselines"] and not card["warnings"] and card["n"] == 30
    st = {"classes": ["I", "II"], "probabilities": [0.4, 0.6], "predicted": "II", "model_description": "m",
          "modalities": "EHR", "modalities_used": ["EHR"], "status": "computed", "card": card}
    page = _stage({"stage": st, "segmentation": {"needs_review": False}}, {})
    assert 'id="stage-card"' in page and "trained on 30 patients" in page and "not for clinical decisions" in page
    uncompared = {**meta, "selection": {**meta["selection"], "inner_folds": None,
                                        "verdict": "the fusion network is locked WITHOUT comparison"}}
    st["card"] = stage_card_summary(uncompared)
    page = _stage({"stage": st, "segmentation": {"needs_review": False}}, {})
    assert 'id="stage-card-warning"' in page and "WITHOUT comparison" in page


def test_report_and_console_say_the_stage_models_training_class_balance():
    """QA balance63: model_card.md and lungai stage predict give the model's training patients per class with the
    selected model's inner-CV recall and name its rare classes; the demo's report and console said only the counts
    ("trained on 18 patients (I 10, II 4, III 4)"), never that II and III were rare and what that means."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import stage_card_summary
    from lungai.report.html import _stage

    meta = {"classes": ["I", "II", "III"], "selected": "logreg",
            "training_cohort": {"n_patients": 18, "class_counts": {"I": 10, "II": 4, "III": 4}},
            "selection": {"inner_folds": 2, "verdict": "v",
                          "candidates": {"logreg": {"inner_macro_f1": 0.4,
                                                    "inner_recall": {"I": 0.9, "II": 0.25, "III": 0.5}},
                                         "fusion": {"inner_macro_f1": 0.3, "inner_recall": None}}}}
    st = {"classes": ["I", "II", "III"], "probabilities": [0.2, 0.3, 0.5], "predicted": "III", "model_description": "m",
          "modalities": "EHR", "modalities_used": ["EHR"], "status": "computed", "card": stage_card_summary(meta)}
    page = _stage({"stage": st, "segmentation": {"needs_review": False}}, {})
    per_class = "I 10 (56 %, recall 0.90), II 4 (22 %, recall 0.25), III 4 (22 %, recall 0.50)"
    assert '<p id="stage-class-balance">Training patients per class' in page and per_class in page
    rare = page.split('id="stage-rare-classes">')[1].split("</div>")[0]
    assert rare.startswith("Rare in training: II (4 patients, recall 0.25), III (4 patients, recall 0.50), against "
                           "10 of I.") and "lungai stage validate" in rare
    summary = {"segmentation": {"tumor_volume_ml": 1.0, "confidence": 0.9, "needs_review": False},
               "rp": {"status": "not computed", "message": "not computed"}, "stage": st, "dose": None,
               "dose_source": "no dose", "dose_status": "computed", "inputs": {"ct": "x"}}
    printed = "\n".join(result_lines(summary))
    assert per_class in printed and "stage model: Rare in training: II (4 patients, recall 0.25)" in printed


def test_demo_rtstruct_gives_the_dose_metrics_masks(tmp_path, tmp_path_factory):
    """--rtstruct: the dose metrics use the plan's lungs and GTV (by role, as `lungai dose-features --rtstruct`),
    and the report says so (not the automatic masks)."""
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    ph = make_phantom(PhantomSpec(shape=(80, 80, 36), spacing=(4.0, 4.0, 5.0), noise_hu=spec.noise_hu,
                                  tumour=spec.tumour), seed=SAMPLE_SEED)
    st = write_rt_study(tmp_path / "export", ph, patient_id="P1")
    seed = "--seed-point=" + ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct", str(st["rtstruct"]),
                 "-o", str(tmp_path / "truth.csv")]) == 0
    truth = pd.read_csv(tmp_path / "truth.csv").iloc[0]
    out = tmp_path / "demo"
    assert main(["demo", "--ct", str(st["ct"]), seed, "--dose", str(st["dose"]), "--rtstruct", str(st["rtstruct"]),
                 "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["dose"]["dose_mld_gy"] == pytest.approx(float(truth.dose_mld_gy), rel=1e-6)
    assert summary["dose"]["dose_gtv_mean_gy"] == pytest.approx(float(truth.dose_gtv_mean_gy), rel=1e-6)
    assert summary["dose_masks"]["lungs"] == "rtstruct" and summary["case"] == "P1"
    # the automatic tumour against the plan's GTV: recorded; it agrees here, so no note
    agree = summary["rtstruct_gtv"]
    assert agree["dice"] > 0.5 and agree["note"] is None and agree["gtv_ml"] > 0
    assert not [n for n in summary["segmentation"]["notes"] if "plan's GTV" in n]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "RTSTRUCT structure Lung_R + Lung_L" in page and "RTSTRUCT structure GTV" in page
    assert 'id="dose-review"' not in page
    # QA defect: dose.csv did not say which masks, so `dicom-export --results` wrote the RTSTRUCT-based MLD in an SR
    # beside lungai's automatic tumour and lungs without a word; dose.csv and the SR now name the plan's structures,
    # in the words of `lungai dose-features` (one spelling)
    masks = pd.read_csv(out / "dose.csv").masks.iloc[0]
    assert masks == truth.masks == summary["dose_masks"]["masks"]
    assert masks.startswith("lungs: RTSTRUCT structure Lung_R + Lung_L") and "minus GTV: RTSTRUCT structure GTV" in masks
    from lungai.dicom.sr import read_sr, read_sr_comments

    # tmp_path holds the patient's CT, RTSTRUCT and RTDOSE (an export): lungai's DICOM goes outside it; a file of the
    # user's beside the export marks where it ends (run alone, the pytest folder held only the export and lungai's
    # outputs, so it was taken as the export, the output folder inside it)
    (tmp_path / "plan_notes.xlsx").write_bytes(b"PK")
    exported = tmp_path_factory.mktemp("exported") / "dicom"
    assert main(["dicom-export", "--ct", str(st["ct"]), "--results", str(out), "-o", str(exported)]) == 0
    sr = exported / "measurements.sr.dcm"
    assert read_sr(sr)["Dose"]["dose_mld_gy"][0] == pytest.approx(float(truth.dose_mld_gy), rel=1e-5)
    assert "dose_mld_gy" not in read_sr(sr)["Case"]            # not among lungai's tumour confidence
    assert read_sr_comments(sr)["Dose"] == "Dose metrics computed on " + masks


def test_demo_records_that_the_rtstruct_could_not_be_checked_against_a_nifti_ct(tmp_path, capsys):
    """QA: `demo --ct CT.nii.gz --rtstruct RS.dcm --dose RD.dcm` said only on stderr that the RTSTRUCT could not be
    checked against the CT (no PatientID / frame of reference in a NIfTI); summary.json and the report - whose dose
    metrics come from those contours - did not.  The note is one of the dose's notes (dose_note, the report's dose
    section, the console once); with the DICOM CT the RTSTRUCT is checked and nothing is noted."""
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct, write_image
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    ph = make_phantom(PhantomSpec(shape=(80, 80, 36), spacing=(4.0, 4.0, 5.0), noise_hu=spec.noise_hu,
                                  tumour=spec.tumour), seed=SAMPLE_SEED)
    st = write_rt_study(tmp_path / "export", ph, patient_id="P1")
    nifti = write_image(read_ct(st["ct"]), tmp_path / "ct.nii.gz")
    seed = "--seed-point=" + ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    said = f"RTSTRUCT {st['rtstruct']} (PatientID P1"   # the path as given (segpath61)
    out = tmp_path / "demo"
    assert main(["demo", "--ct", str(nifti), seed, "--dose", str(st["dose"]), "--rtstruct", str(st["rtstruct"]),
                 "-o", str(out)]) == 0
    printed = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert said in summary["dose_note"] and "could not be checked against the CT" in summary["dose_note"]
    assert summary["dose_masks"]["lungs"] == "rtstruct"
    dose_section = (out / "report.html").read_text(encoding="utf-8").split("<h2>Dose to the lungs</h2>")[1]
    assert said in dose_section.split("<h2>")[0]
    assert (printed.out + printed.err).count(said) == 1, printed     # said once, with the dose


def test_demo_dose_csv_records_the_effective_rtdose_note(tmp_path, capsys):
    """QA (clidose58): the demo's dose.csv of an RTDOSE of DoseType EFFECTIVE had no trace of it (summary.json's
    dose_note had), so `lungai rp predict` on it said nothing; its rtdose_notes column records it, as
    `lungai dose-features` writes it (lungai.dose.features.NOTES_COLUMN)."""
    import pydicom

    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    ph = make_phantom(PhantomSpec(shape=(80, 80, 36), spacing=(4.0, 4.0, 5.0), noise_hu=spec.noise_hu,
                                  tumour=spec.tumour), seed=SAMPLE_SEED)
    st = write_rt_study(tmp_path / "export", ph, patient_id="P1")
    ds = pydicom.dcmread(st["dose"])
    ds.DoseType = "EFFECTIVE"
    ds.save_as(st["dose"])
    seed = "--seed-point=" + ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    out = tmp_path / "demo"
    assert main(["demo", "--ct", str(st["ct"]), seed, "--dose", str(st["dose"]), "--rtstruct", str(st["rtstruct"]),
                 "-o", str(out)]) == 0
    notes = notes_of(pd.read_csv(out / "dose.csv", keep_default_na=False)[NOTES_COLUMN].iloc[0])
    said = f"{st['dose'].name} has DoseType EFFECTIVE: a biologically weighted dose"
    assert len(notes) == 1 and notes[0].startswith(said), notes
    assert notes[0][1:] in json.loads((out / "summary.json").read_text(encoding="utf-8"))["dose_note"]   # as there


def _summary_with_rtstruct_dose(seg, uses_tumour_radiomics: bool) -> dict:
    """A demo summary whose dose metrics use the plan's RTSTRUCT lungs and GTV, with an RP risk using the dose."""
    from lungai.demo.pipeline import dose_masks

    rp = {"risk": 0.2, "risk_low": 0.1, "risk_high": 0.3, "model_description": "m", "status": "computed",
          "uses_tumour_radiomics": uses_tumour_radiomics, "uses_dose": True, "contributions": []}
    rt = dose_masks(seg, {"lung_source": "RTSTRUCT structure Lung_R + Lung_L", "gtv_source": "RTSTRUCT structure GTV"})
    return {"segmentation": seg, "rp": rp, "dose_masks": rt, "dose": {"dose_mld_gy": 7.6}, "dose_status": "computed",
            "stage": {"message": "x"}, "dose_source": "x", "lungs": {}}


def test_rp_review_flag_only_when_the_risk_uses_the_automatic_tumour():
    """The RP section repeats the tumour's review flag when the model uses tumour radiomics or dose metrics on
    the automatic masks - not for a clinical + dose model whose dose came from the RTSTRUCT's contours."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import dose_masks
    from lungai.report.html import _rp

    seg = _seg_info()
    s = _summary_with_rtstruct_dose(seg, uses_tumour_radiomics=False)
    assert 'id="rp-review"' not in _rp(s, {})
    assert not [line for line in result_lines(s) if "flagged for review" in line]
    s["dose_masks"] = dose_masks(seg)
    assert 'id="rp-review"' in _rp(s, {})
    assert "note: the dose metrics and the RP risk use the automatic tumour, which is flagged for review" in result_lines(s)
    s["dose"] = None         # the RP risk alone: one subject, "uses" (QA: "the RP risk use the automatic tumour")
    assert "note: the RP risk uses the automatic tumour, which is flagged for review" in result_lines(s)


def test_demo_dose_and_rtstruct_errors_come_before_any_work(phantom, tmp_path, monkeypatch):
    """An implausible dose, a wrong --structure or --structure-map fail right after the CT is read (nothing
    segmented or written); --max-dose-gy accepts an EQD2 / BED map as dose-features does."""
    import lungai.lungs
    from lungai.cli import main
    from lungai.demo import run_demo
    from lungai.dicom.synthetic import write_rt_study
    from lungai.errors import InputError
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    def reached(*a, **k):
        raise RuntimeError("segmentation reached")

    monkeypatch.setattr(lungai.lungs, "segment_lungs", reached)
    ct = phantom[0]
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    dose = sitk.Image(ct.GetSize(), sitk.sitkFloat32) + 240.0       # a 240 Gy-max EQD2 map
    dose.CopyInformation(ct)
    sitk.WriteImage(dose, str(tmp_path / "eqd2.nii.gz"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="--max-dose-gy 240"):
        run_demo(out, ct_path=tmp_path / "ct.nii.gz", dose=tmp_path / "eqd2.nii.gz")
    assert not out.exists()
    with pytest.raises(RuntimeError, match="segmentation reached"):  # accepted with --max-dose-gy
        main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), "--dose", str(tmp_path / "eqd2.nii.gz"),
              "--max-dose-gy", "300", "-o", str(tmp_path / "out2")])

    spec = sample_spec()
    ph = make_phantom(PhantomSpec(shape=(48, 48, 24), spacing=(7.0, 7.0, 5.0), noise_hu=spec.noise_hu,
                                  tumour=spec.tumour), seed=SAMPLE_SEED)
    st = write_rt_study(tmp_path / "export", ph, patient_id="P1")
    for extra, shown in ((["--structure", "NOPE"], "NOPE"),
                         (["--structure-map", str(tmp_path / "missing.csv")], "missing.csv")):
        with pytest.raises(InputError, match=shown):
            run_demo(tmp_path / "out3", ct_path=st["ct"], dose=st["dose"], rtstruct=st["rtstruct"],
                     rtstruct_lungs=extra[1] if extra[0] == "--structure" else None,
                     structure_map=extra[1] if extra[0] == "--structure-map" else None)
        assert not (tmp_path / "out3").exists()


def test_the_illustrative_rp_model_the_demo_trains_says_it_uses_no_radiomic_feature(tmp_path):
    """QA docsfollow72: the built-in sample's RP model (:func:`_illustrative_rp_model`, unchanged: the set nested CV
    locks on its 400 synthetic patients) is ``clinical_dosimetric/lr`` - 13 clinical and dose features, no radiomic
    one - so none of its columns is withheld; the test of the withheld columns trained an ``all/lr`` model and called
    it "the illustrative model's features".  The demo's real model path says what the risk uses: the model
    description (the report's RP section) names the locked set and that the radiomics computed here do not enter the
    risk, ``rp.inputs`` says so, nothing is withheld - as README.md says."""
    from lungai.demo.pipeline import _rp
    from lungai.rp import make_cohort

    table = make_cohort(n=40, seed=1).table
    row = table.iloc[0]
    wide = pd.DataFrame([{c: float(row[c]) for c in table.columns if c.startswith("rad_")}])
    dose_row = {c: float(row[c]) for c in table.columns if c.startswith("dose_")}
    r = _rp(tmp_path, wide, dose_row, False, None, None, True, case="demo")          # the real illustrative model
    card = json.loads((tmp_path / "rp_model" / "model_card.json").read_text(encoding="utf-8"))
    assert not any(f.startswith("rad_") for f in card["features"]), card["features"]
    locked = f"{card['feature_set']}/lr"
    assert r["status"] == "illustrative" and r["withheld"] == [] and r["imputed"] == [], r
    assert f"ILLUSTRATIVE model ({locked})" in r["model_description"], r["model_description"]
    assert ("radiomics: none (the model uses no radiomic features: the radiomics computed here do not enter the "
            "risk)") in r["model_description"], r["model_description"]
    assert "withheld" not in r["model_description"] and "(the model uses no radiomic features)" in r["inputs"]
    assert r["uses_tumour_radiomics"] is False and r["uses_dose"] is True
    assert "withheld" not in pd.read_csv(tmp_path / "rp_prediction.csv").columns
    # README.md's paragraph on the sample's RP model says the same
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    paragraph = text[text.index("The illustrative RP model is the one nested cross-validation locks"):]
    paragraph = paragraph[:paragraph.index("`lungai demo --small")]
    assert f"`{locked}` ({len(card['features'])} features" in paragraph, paragraph
    assert "uses **no radiomic feature**" in paragraph and "on the built-in sample `rp.withheld` is empty" in paragraph
    quoted = re.search(r"the model description \(the report's RP section\) says which set is locked and that the "
                       r"risk uses no radiomic feature \(\"([^\"]+)\"\)", paragraph)
    assert quoted and quoted.group(1) in r["model_description"], (paragraph, r["model_description"])


def test_withheld_radiomic_columns_of_a_stand_in_sample_model_are_not_called_missing(tmp_path, monkeypatch):
    """The withheld-columns code of the built-in sample's RP model: were the set nested CV locks one with the cohort's
    noise radiomic columns, they would be withheld on purpose: not listed as imputed (console, summary, banner), and
    the risk's use of tumour radiomics follows the values given.  The real illustrative model locks
    ``clinical_dosimetric/lr`` (no radiomic feature: the test above), so a stand-in trained on the ``all`` set (with
    the radiomic columns) takes its place here."""
    import lungai.demo.pipeline as pipeline
    from lungai.demo.pipeline import _rp
    from lungai.rp import make_cohort, train_rp

    def stand_in_model(out):                     # NOT the demo's model: the 'all' set, a smaller training cohort
        cohort = make_cohort(n=120, seed=0)
        train_rp(cohort.table, cohort.outcome, out / "rp_model", models="lr", feature_sets="all", fast=True, seed=0,
                 overwrite=True, make_plots=False)
        return out / "rp_model", "ILLUSTRATIVE stand-in model."

    monkeypatch.setattr(pipeline, "_illustrative_rp_model", stand_in_model)
    table = make_cohort(n=40, seed=1).table
    row = table.iloc[0]
    wide = pd.DataFrame([{c: float(row[c]) for c in table.columns if c.startswith("rad_")}])
    assert any(c.startswith("rad_tumour") for c in wide.columns)          # the radiomics hold the noise columns
    dose_row = {c: float(row[c]) for c in table.columns if c.startswith("dose_")}
    r = _rp(tmp_path, wide, dose_row, False, None, None, True, case="demo")
    assert r["status"] == "illustrative" and r["imputed"] == [], r["imputed"]
    assert r["withheld"] and all(c.startswith("rad_") for c in r["withheld"])
    assert "withheld on purpose" in r["model_description"]
    n = len(r["withheld"])          # QA plural61: "Its 16 noise radiomic column(s) ... are withheld"
    assert f"Its {n} noise radiomic column{'s' if n != 1 else ''} (no effect on the true risk) " \
           f"{'are' if n != 1 else 'is'} withheld on purpose" in r["model_description"], r["model_description"]
    assert r["uses_tumour_radiomics"] is False and r["uses_dose"] is True
    card = json.loads((tmp_path / "rp_model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["feature_set"] == "all" and any(f.startswith("rad_") for f in card["features"])   # the stand-in's
    assert "radiomics: none" not in r["model_description"], r["model_description"]
    # QA: rp_prediction.csv (and the scene's RP table loaded from it) still listed them as imputed
    csv = pd.read_csv(tmp_path / "rp_prediction.csv", keep_default_na=False).iloc[0]
    assert csv["imputed"] == "" and set(csv["withheld"].split("; ")) == set(r["withheld"])


def test_training_text_counts_implant_background_cases_not_cts():
    """QA: the Methods said "2 real CTs (implant backgrounds)" for the shipped DynUNet / large U-Net, trained with
    ONE background CT (tools/seg_implant_backgrounds.csv: LUNG1-002): the 2 are its cases (the whole CT and a crop
    of its own tumour, lungai.seg.dataset._background_cases).  The background CTs' patients are named where
    model.json records them."""
    from lungai.seg.choice import training_text
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import resolve_model_dir

    # the large model's record predates implant_background_patients; the DynUNet's (retrained) names LUNG1-002
    text = training_text(load_model(resolve_model_dir("lungai-seg-unet-large")))
    assert "real CTs (implant backgrounds)" not in text and "2 real CT" not in text
    assert ("2 cases (each background CT whole + a crop of its own tumour) of real CTs used as implant "
            "backgrounds, 150 tumours implanted into real CTs") in text
    text = training_text(load_model(resolve_model_dir("lungai-seg-dynunet")))
    assert ("2 cases (whole CT + a crop of its own tumour) of 1 real CT used as implant background: LUNG1-002, "
            "150 tumours implanted into real CTs") in text
    t = {"n_train_cases": 12, "train_sources": {"user images": 10, "real CT (implant background)": 2},
         "implant_background_patients": ["LUNG1-002"]}
    assert training_text(({}, [], {"training": t})) == (
        "trained on 12 cases: 10 image crops, 2 cases (whole CT + a crop of its own tumour) of 1 real CT used as "
        "implant background: LUNG1-002")
    t.update(train_sources={"real CT (implant background)": 3}, implant_background_patients=["A", "B"])
    assert training_text(({}, [], {"training": t})).endswith(
        "3 cases (each background CT whole + a crop of its own tumour) of 2 real CTs used as implant backgrounds: A, B")


def test_methods_limitations_and_report_name_the_model_and_its_training_data(tmp_path):
    """QA: the Methods / Limitations said "networks trained on real LIDC-IDRI nodules and synthetic phantoms" /
    "trained on nodule crops and phantoms" whatever model segmented the tumour, and the report never named it:
    both now come from the model's model.json."""
    from lungai.demo.pipeline import _methods
    from lungai.report.html import _segmentation
    from lungai.seg.choice import training_text
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import resolve_model_dir

    shipped = training_text(load_model(resolve_model_dir("lungai-seg-dynunet")))
    assert shipped.startswith("trained on ") and "tumours implanted into real CTs" in shipped
    assert "(lidc_nodules/image)" in shipped
    own = ({}, [], {"training": {"n_train_cases": 40, "n_train_patients": 12, "train_sources": {"user images": 40},
                                 "case_sources": {"images": "/data/my_hospital/crops"}}})
    assert training_text(own) == "trained on 40 cases of 12 patients: 40 image crops (my_hospital/crops)"
    assert training_text(({}, [], {})) == "training data not recorded in its model.json"
    seg = {"members": 3, "architecture": "unet", "confidence": 0.8, "review_threshold": 0.5, "needs_review": False,
           "tumor_volume_ml": 3.0, "n_components": 1, "method": "ensemble", "mc_passes": 0, "notes": []}
    s = {"segmentation": seg, "radiomics": {"params": "p"}, "rp": {"status": "computed"},
         "stage": {"status": "computed"},
         "seg_model": {"name": "my_model", "training": training_text(own), "validation_r": "0.50"}}
    methods, limitations = _methods(s)
    text = " ".join(methods + limitations)
    assert "LIDC-IDRI" not in text and "nodule crops and phantoms" not in text
    assert "model my_model" in methods[1] and "40 image crops (my_hospital/crops)" in methods[1]
    assert any("my_model" in x and "40 image crops" in x for x in limitations)
    page = _segmentation(s, {})
    assert "my_model" in page and "40 image crops (my_hospital/crops)" in page


def test_summary_json_is_strict_json_nan_as_null(tmp_path):
    """QA: the demo's summary.json held a bare NaN (radiomics.settings[*].structures: an empty column of
    radiomics_settings.csv) - not JSON.  The demo writes with lungai.model_files.write_json: null, allow_nan=False."""
    import json

    import numpy as np
    import pandas as pd

    from lungai.demo.pipeline import _json

    settings = pd.DataFrame({"case": ["demo"], "segment": ["tumour"], "structures": [np.nan], "bin_width": [25.0]})
    doc = {"radiomics": {"settings": settings.drop(columns="case").to_dict("records")},
           "x": [np.float32("nan"), float("inf"), np.int64(3), 1.5]}
    _json(tmp_path / "summary.json", doc)

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    back = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"), parse_constant=refuse)
    assert back["radiomics"]["settings"] == [{"segment": "tumour", "structures": None, "bin_width": 25.0}]
    assert back["x"] == [None, None, 3, 1.5]


def test_a_demo_killed_at_the_scene_stage_can_be_rerun_into_its_folder(tmp_path, monkeypatch):
    """QA: a SIGTERM during the scene stage (no ``finally`` runs) left .lungai-demo with its header line only, and
    the re-run into the same -o was refused ("holds ct.nii.gz, lungs.nii.gz, ... not written by lungai demo"). The
    marker now records each step's outputs as the step ends."""
    import lungai.scene.demo
    from lungai.demo.pipeline import run_demo

    out, left = tmp_path / "demo", {}

    def killed(out_dir, mrb_path, **kwargs):
        # what a SIGTERM / SIGKILL here leaves: the marker as it is now (the block's finally never runs)
        left["marker"] = (out / ".lungai-demo").read_text(encoding="utf-8")
        raise KeyboardInterrupt

    monkeypatch.setattr(lungai.scene.demo, "save_demo_scene", killed)
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, small=True)
    recorded = left["marker"].splitlines()[1:]
    assert {"ct.nii.gz", "lungs.nii.gz", "tumor.nii.gz", "radiomics_wide.csv", "rp_prediction.csv"} <= set(recorded)
    (out / ".lungai-demo").write_text(left["marker"], encoding="utf-8")    # as the killed run left it
    monkeypatch.undo()
    summary = run_demo(out, small=True)                                     # accepted, not refused
    assert (out / "scene.mrb").is_file() and summary["case"]


def test_the_scene_temporary_folder_is_removed_on_keyboard_interrupt(mrml_scene, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM turned into KeyboardInterrupt) while the scene is written leaves no lungai_scene_ folder."""
    import tempfile

    import lungai.mrml as mrml

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scene = mrml_scene

    def interrupted(*args, **kwargs):
        assert list(tmp_path.glob("lungai_scene_*"))          # the temporary folder exists here
        raise KeyboardInterrupt

    monkeypatch.setattr(mrml, "_rewrite_table_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mrml.save_scene(scene, tmp_path / "out" / "scene.mrb")
    assert not list(tmp_path.glob("lungai_scene_*"))
    assert not (tmp_path / "out" / "scene.mrb").exists()


def test_rp_review_banner_names_only_the_values_that_depend_on_the_automatic_tumour():
    """QA: with --rtstruct the RP review banner said "(GTV dose, lungs minus the tumour, tumour radiomics)" though the
    dose metrics came from the RTSTRUCT's contours."""
    from lungai.demo.pipeline import dose_masks
    from lungai.report.html import _rp

    seg = _seg_info()
    s = _summary_with_rtstruct_dose(seg, uses_tumour_radiomics=True)
    rp = s["rp"]
    page = _rp(s, {})
    assert "depend on it (tumour radiomics)" in page and "GTV dose" not in page
    s["dose_masks"] = dose_masks(seg)
    assert "depend on it (GTV dose, lungs minus the tumour, tumour radiomics)" in _rp(s, {})
    s["rp"] = {**rp, "uses_tumour_radiomics": False}
    assert "depend on it (GTV dose, lungs minus the tumour)" in _rp(s, {})
    # QA: "GTV dose" was listed whenever the dose metrics used the automatic masks, though the model may use only
    # the lungs' dose (dose_mld_gy, dose_v20_pct): it is listed only when the model uses a dose_gtv_* feature
    s["rp"] = {**rp, "uses_gtv_dose": False, "uses_lung_dose": True}
    page = _rp(s, {})
    assert "depend on it (lungs minus the tumour, tumour radiomics)" in page and "GTV dose" not in page
    s["rp"] = {**rp, "uses_gtv_dose": True, "uses_lung_dose": False}
    assert "depend on it (GTV dose, tumour radiomics)" in _rp(s, {})


def test_the_headline_says_is_for_one_illustrative_result():
    """QA: "the RP risk below are ILLUSTRATIVE" for one illustrative result on the user's CT."""
    from lungai.report.html import _headline

    s = {"illustrative": ["rp"], "inputs": {"ct": "/data/LUNG1-003/CT"}, "dose": {"dose_mld_gy": 7.6},
         "rp": {"status": "illustrative"}, "stage": {"status": "computed"}}
    assert "the RP risk below is ILLUSTRATIVE" in _headline(s)
    s["illustrative"] = ["rp", "stage"]
    assert "the RP risk and the stage below are ILLUSTRATIVE" in _headline(s)


def test_the_automatic_modes_kept_candidate_is_named_by_its_rank():
    """QA: the note called the kept candidate "the most probable one" though candidates are ranked by probability
    mass (LUNG1: the kept one's mean probability 0.71, candidate 2's 0.85)."""
    from lungai.seg.infer import kept_candidate_text

    text = kept_candidate_text({"volume_ml": 12.0, "probability_mass_ml": 8.5, "mean_probability": 0.71,
                                "centre_lps_mm": [1.0, 2.0, 3.0]})
    assert "largest expected tumour volume (probability mass 8.5 ml" in text and "most probable" not in text


def test_a_lung_sliver_on_the_bottom_slice_is_cut_for_neither_lungs_nor_radiomics():
    """QA (LUNG1-003): radiomics_settings.csv marked left_lung / lungs cut at z- (47 mm2 of lung on the bottom slice,
    113 mm2 on the next) while summary.lungs.cut and the report said nothing: one rule now (the lungs' CUT_MM2,
    lungai.lungs.segment.scan_cut_faces); a tumour on the edge is still said cut wherever it lies on it."""
    from lungai.lungs.segment import CUT_MM2, cut_by_scan
    from lungai.radiomics.extract import _cut_faces

    spacing = (0.977, 0.977, 3.0)
    lung = np.zeros((20, 64, 64), bool)
    lung[2:18, 10:50, 10:40] = True
    lung[0, 20:27, 20:27] = lung[1, 20:31, 20:31] = True          # 47 / 115 mm2: the lung's tip at the scan's end
    hu = np.where(lung, -850, 40).astype(np.int16)
    hu[:, :, 0] = -1000                                           # air beside the body: no slice of one value
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing(spacing)
    img = sitk.GetImageFromArray(lung.astype(np.uint8))
    img.SetSpacing(spacing)
    assert cut_by_scan(lung, spacing) == []
    assert _cut_faces("left_lung", img, ct) == [] and _cut_faces("Lung_L", img, ct) == []
    assert _cut_faces("tumour", img, ct) == ["z-"]                # a tumour: any voxel on the edge
    big = lung.copy()
    big[0, 10:50, 10:40] = True                                   # 40 x 30 voxels: over CUT_MM2
    assert 40 * 30 * 0.977 ** 2 >= CUT_MM2
    img = sitk.GetImageFromArray(big.astype(np.uint8))
    img.SetSpacing(spacing)
    assert _cut_faces("lungs", img, ct) == ["z-"] and any("bottom slice" in n for n in cut_by_scan(big, spacing))


@pytest.fixture(scope="module")
def synth_stage_model(tmp_path_factory):
    """`lungai stage synth` (small CTs) then `lungai stage train` on its ehr.csv, and on a copy of it elsewhere."""
    import functools
    import shutil

    from lungai.cli import main
    from lungai.fusion import synthetic

    d = tmp_path_factory.mktemp("stage_synth")
    mp = pytest.MonkeyPatch()
    mp.setattr(synthetic, "make_cohort", functools.partial(synthetic.make_cohort, ct_shape=(24, 24, 16),
                                                           ct_spacing=(8.0, 8.0, 5.0), n_genes=30))
    try:
        assert main(["stage", "synth", "-o", str(d / "syn"), "--patients", "24"]) == 0
    finally:
        mp.undo()
    (d / "mine").mkdir()
    shutil.copy(d / "syn" / "ehr.csv", d / "mine" / "ehr.csv")     # a copy: the user's table, not known as synthetic
    for src, out in (("syn", "sm"), ("mine", "own")):
        assert main(["stage", "train", "--ehr", str(d / src / "ehr.csv"), "--label", "stage", "--epochs", "2",
                     "--inner-folds", "2", "--baselines", "logreg", "-o", str(d / out)]) == 0
    return d


def test_a_stage_model_of_a_stage_synth_cohort_is_illustrative_everywhere(synth_stage_model, phantom, capsys):
    """QA: a stage model trained on `lungai stage synth`'s cohort was shown as a real patient result in the demo
    (status computed, no ILLUSTRATIVE banner) while an RP model of `rp synth` was labelled: `stage train` records
    training_data.synthetic as `rp train` does (read by lungai.rp.predict.synthetic_model), and the demo, the
    limitations, `stage predict` and the panel's text say ILLUSTRATIVE."""
    import json

    from lungai.cli import main
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _methods, _stage
    from lungai.fusion.model_io import META
    from lungai.report.html import _headline
    from lungai.scene.results import describe_stage_row

    d = synth_stage_model
    meta = json.loads((d / "sm" / META).read_text(encoding="utf-8"))
    assert meta["training_data"]["synthetic"] is True
    assert json.loads((d / "own" / META).read_text(encoding="utf-8"))["training_data"]["synthetic"] is False
    assert "ILLUSTRATIVE" in (d / "sm" / "model_card.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" not in (d / "own" / "model_card.md").read_text(encoding="utf-8")

    ct, tumour, _, _ = phantom
    ehr = pd.read_csv(d / "syn" / "ehr.csv")
    clinical = {**ehr.drop(columns=["stage"]).iloc[0].to_dict(), "patient_id": "LUNG1-003"}
    st = _stage(d, ct, tumour, clinical, d / "sm", sample=False, case="LUNG1-003")
    assert st["status"] == "illustrative" and "ILLUSTRATIVE" in st["model_description"]
    assert st["card"]["synthetic"]
    own = _stage(d, ct, tumour, clinical, d / "own", sample=False, case="LUNG1-003")
    assert own["status"] == "computed" and not own["card"]["synthetic"]

    s = {"segmentation": {"members": 3, "architecture": "unet", "tumor_volume_ml": 1.0, "confidence": 0.9,
                          "needs_review": False},
         "radiomics": {"params": "p"}, "dose": None, "dose_source": "no dose", "dose_status": "computed",
         "inputs": {"ct": "/data/LUNG1-003/CT"}, "rp": {"status": "not computed", "message": "not computed: x"},
         "stage": st, "illustrative": ["stage"]}
    limitation = next(x for x in _methods(s)[1] if x.startswith("ILLUSTRATIVE"))
    assert "the stage model given with --stage-model was trained on a synthetic cohort" in limitation
    assert "RP model" not in limitation and "lungai stage train" in limitation
    assert 'id="illustrative" data-value="stage"' in _headline(s)
    assert any(x.startswith("stage: ") and "ILLUSTRATIVE" in x for x in result_lines(s))
    both = _methods({**s, "rp": {"status": "illustrative", "risk": 0.2}, "illustrative": ["rp", "stage"]})[1]
    assert any("the RP model given with --rp-model and the stage model given with --stage-model were trained"
               in x for x in both)

    ehr.drop(columns=["stage"]).iloc[:2].to_csv(d / "new.csv", index=False)
    capsys.readouterr()
    assert main(["stage", "predict", "--model", str(d / "sm"), "--ehr", str(d / "new.csv"), "-o", str(d / "p")]) == 0
    assert "ILLUSTRATIVE" in capsys.readouterr().out
    rows = pd.read_csv(d / "p" / "predictions.csv", keep_default_na=False).to_dict("records")
    assert all("synthetic cohort" in r["illustrative"] for r in rows)
    assert "ILLUSTRATIVE" in describe_stage_row({k: str(v) for k, v in rows[0].items()}, "P")
    assert main(["stage", "predict", "--model", str(d / "own"), "--ehr", str(d / "new.csv"), "-o", str(d / "q")]) == 0
    assert "ILLUSTRATIVE" not in capsys.readouterr().out
    assert "illustrative" not in pd.read_csv(d / "q" / "predictions.csv").columns


def test_the_demos_synthetic_cohorts_are_known_as_synthetic_for_stage_and_rp(tmp_path, monkeypatch):
    """QA: `lungai stage train` on the demo's own stage_cohort/{ehr,rna,manifest}.csv recorded training_data.synthetic
    False (only a `stage synth` marker was read; the demo's marker is one folder up) while `rp train` knew the demo's
    rp_training_cohort.csv: one helper (lungai.synthetic.tables) knows every table lungai wrote as synthetic."""
    import shutil

    from lungai.fusion.synthetic import make_cohort, training_data
    from lungai.io.outputs import record_outputs
    from lungai.rp.cohort import is_synthetic_cohort
    from lungai.synthetic.tables import written_as_synthetic

    d = tmp_path / "d"
    paths = make_cohort(d / "stage_cohort", n=9, seed=0, n_genes=20, module_size=4, ct_shape=(16, 16, 16),
                        ct_spacing=(8.0, 8.0, 5.0))
    (d / "rp_training_cohort.csv").write_text("clin_age_years,rp_grade2\n60,1\n", encoding="utf-8")
    tables = [paths["ehr"], paths["rna"], paths["ct"]]
    assert not training_data(tables)["synthetic"]               # no marker: not known as lungai's
    record_outputs(d, "demo", ["stage_cohort", "rp_training_cohort.csv"])     # as the demo's claim records them
    td = training_data(tables)
    assert td["synthetic"] is True and "synthetic cohort" in td["source"]
    assert is_synthetic_cohort(None, [d / "rp_training_cohort.csv"])
    assert written_as_synthetic(d / "stage_cohort" / "ehr.csv")
    with monkeypatch.context() as m:                       # review: 'ehr.csv' given from inside stage_cohort/ too
        m.chdir(d / "stage_cohort")
        assert written_as_synthetic("ehr.csv") and written_as_synthetic("./rna.csv")
        assert training_data(["ehr.csv", "rna.csv", "manifest.csv"])["synthetic"] is True
    assert not written_as_synthetic(d / "stage_cohort" / "truth.json")        # not a training table
    (tmp_path / "mine").mkdir()
    shutil.copy(paths["ehr"], tmp_path / "mine" / "ehr.csv")                  # a copy: the user's
    assert not training_data([tmp_path / "mine" / "ehr.csv", paths["rna"]])["synthetic"]
    with open(paths["rna"], "a", encoding="utf-8") as f:                       # edited since: the user's
        f.write("\n")
    assert not training_data(tables)["synthetic"]


def test_methods_say_the_samples_stage_model_is_trained_in_this_run():
    """QA: on the built-in sample Methods said "a locked lungai stage model ... or the plain scikit-learn baseline that
    beat it in nested cross-validation" - the sample's model is a fusion network trained on the spot on a small
    synthetic cohort; a model given with --stage-model keeps the locked-model wording."""
    from lungai.demo.pipeline import _methods

    seg = {"members": 3, "architecture": "unet"}
    base = {"segmentation": seg, "radiomics": {"params": "p"}, "rp": {"status": "not computed", "message": "not computed: x"},
            "stage": {"status": "illustrative",
                      "probabilities": [0.2, 0.3, 0.5]}}
    sample = " ".join(_methods({**base, "inputs": {"ct": "built-in sample", "stage_model": None}})[0])
    assert "illustrative fusion network trained in this run on a small synthetic cohort" in sample
    assert "locked" in sample and "beat it" not in sample
    given = " ".join(_methods({**base, "inputs": {"ct": "/data/ct", "stage_model": "/models/stage"}})[0])
    assert "a locked lungai stage model" in given and "trained in this run" not in given


def _run_demo_arguments(monkeypatch) -> dict:
    """The keyword arguments ``lungai demo`` gives ``run_demo`` (filled when it runs; the run then stops with an
    InputError: exit 2)."""
    import lungai.demo
    from lungai.errors import InputError

    seen = {}

    def fake_run_demo(out_dir, **kwargs):
        seen.update(kwargs)
        raise InputError("stopped by the test", "-")

    monkeypatch.setattr(lungai.demo, "run_demo", fake_run_demo)
    return seen


def test_the_demos_total_counts_from_the_commands_start(tmp_path, monkeypatch):
    """QA demofollow67: ``lungai demo --ct LUNG1-003`` printed "total 75 s" after 80.7 s of wall time: the total
    counted from the start of run_demo, leaving out the command's start-up (its imports, the --params check, ...).
    run_demo is now given the command's start, taken before any of that."""
    import time

    import lungai.radiomics
    from lungai.cli import main

    seen = _run_demo_arguments(monkeypatch)
    real = lungai.radiomics.load_params

    def slow_load_params(*args, **kwargs):      # the start-up before run_demo, made measurable
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(lungai.radiomics, "load_params", slow_load_params)
    before = time.perf_counter()
    assert main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out")]) == 2
    assert before <= seen["started"] <= before + 0.4, (before, seen)    # taken before the start-up's 0.5 s


@pytest.mark.parametrize("given", [["--seed-point", "-47.9,-2.9,-125.9"], ["--seed-point=-47.9,-2.9,-125.9"]])
def test_demo_takes_a_seed_point_with_a_negative_x_as_lungai_segment_does(given, tmp_path, monkeypatch):
    """QA (LUNG1-003 as a user's CT): ``lungai demo --ct CT --seed-point -47.9,-2.9,-125.9`` (a right-lung tumour has
    a negative LPS x) stopped in argparse with "argument --seed-point: expected one argument", naming neither the
    cause nor the fix, while ``lungai segment`` took the same option; the point now reaches the run as given."""
    from lungai.cli import main

    seen = _run_demo_arguments(monkeypatch)
    assert main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), *given, "-o", str(tmp_path / "out")]) == 2
    assert seen["seed_lps"] == [-47.9, -2.9, -125.9]


def test_the_reports_radiomics_settings_are_those_of_a_params_file(phantom, tmp_path):
    """QA (lungai demo --params my.yaml on pyradiomics' lung1 / the sample): the report and summary.json said "lungai
    default preset (pyradiomics, bin width 25 HU ...), tumour on the CT's grid" for a parameter file with bin width 10
    and pyradiomics resampling: the settings stated are now those radiomics_settings.csv records for each segment."""
    from lungai.demo.pipeline import _radiomics

    ct, tumour, lungs, _ = phantom
    yaml_file = tmp_path / "bw10.yaml"
    yaml_file.write_text("setting:\n  binWidth: 10\n  resampledPixelSpacing: [4, 4, 4]\n  interpolator: sitkLinear\n"
                         "featureClass:\n  firstorder: []\n")
    out = tmp_path / "demo"
    out.mkdir()
    _, info = _radiomics(out, ct, tumour, lungs, str(yaml_file), case="P1")
    text = info["params"]
    settings = pd.read_csv(out / "radiomics_settings.csv")
    assert set(settings.discretisation) == {"bin width 10"} and set(settings.spacing_mm) == {"4 x 4 x 4"}
    assert "bw10.yaml" in text and "default preset" not in text, text
    assert "bin width 10" in text and "25" not in text, text
    assert "resampled by pyradiomics to 4 x 4 x 4 mm (sitkLinear)" in text and "CT's grid" not in text, text
    # the default preset: the tumour on the CT's grid, the lung segments on lungai's 2 mm grid, bin width 25
    out2 = tmp_path / "demo2"
    out2.mkdir()
    _, info = _radiomics(out2, ct, tumour, lungs, case="P1")
    text = info["params"]
    assert text.startswith("lungai default preset"), text
    assert ("tumour: on the CT's grid (3.5 x 3.5 x 5 mm), bin width 25; right lung, left lung, lungs, lungs minus "
            "tumour: resampled to 2 x 2 x 2 mm (IBSI-style), bin width 25") in text, text


def test_report_says_why_there_is_no_gtv_dose_instead_of_nan():
    """QA (lungai demo --rtstruct with a plan contoured Lungs + iGTV only, or no tumour found by the automatic
    segmentation): the dose table's GTV row read "GTV (RTSTRUCT) dose mean (min-max) nan Gy (nan-nan)" - now it says
    that there is no GTV dose and why, with no number; a GTV dose is still shown as before."""
    from lungai.demo.pipeline import dose_masks
    from lungai.report.html import _dose

    d = {"dose_mld_gy": 7.85, **{f"dose_v{v}_pct": 10.0 for v in (5, 13, 20, 30)},
         **{f"dose_d{x}_gy": 1.0 for x in (2, 50, 98)}, "dose_gtv_mean_gy": float("nan"),
         "dose_gtv_min_gy": float("nan"), "dose_gtv_max_gy": float("nan")}
    rt = dose_masks(_seg_info(), {"lung_source": "RTSTRUCT structure Lung_R + Lung_L", "gtv_source": None,
                                  "envelope_source": "RTSTRUCT structure iGTV"})
    for masks, why in ((rt, "the RTSTRUCT has no GTV"), (dose_masks(_seg_info(), tumour_found=False),
                                                         "no tumour was found")):
        page = _dose({"dose": d, "dose_source": "RT dose RD.dcm.", "segmentation": _seg_info(), "dose_masks": masks},
                     {})
        assert "nan" not in page.lower(), page
        assert 'id="gtv-dose" data-value=""' in page and f"no GTV dose: {why}" in page, page
    d.update(dose_gtv_mean_gy=60.0, dose_gtv_min_gy=59.04, dose_gtv_max_gy=61.0)
    page = _dose({"dose": d, "dose_source": "RT dose RD.dcm.", "segmentation": _seg_info(), "dose_masks": rt}, {})
    assert 'id="gtv-dose" data-value="60.0"' in page and "60.0 Gy (59.0-61.0)" in page, page


def test_report_slices_are_drawn_in_the_patients_orientation_whatever_the_ct_storage_order(phantom):
    """QA (lungai demo --ct on pyradiomics' lung1 written with its rows stored anterior-to-posterior, as dcm2niix
    writes NIfTI (LAS)): the report's axial slice was drawn upside down (spine at the top); a right-to-left (RAS)
    NIfTI mirrored it (the tumour in the other lung) and a feet-first one turned the coronal slice upside down.  The
    slices are drawn from the images in LPS order (lungai.io.geometry.to_lps): the same picture for any storage."""
    import io

    import matplotlib.image as mpimg

    from lungai.report.figures import tumour_slices

    ct, tumour, lungs, _ = phantom
    unc = sitk.Cast(tumour, sitk.sitkFloat32) * 0.7          # an uncertainty overlay on the tumour
    # a left-right asymmetric marker, so that a mirrored picture differs from the reference
    arr = sitk.GetArrayFromImage(ct)
    arr[:, 5:15, 5:12] = 300
    marked = sitk.GetImageFromArray(arr)
    marked.CopyInformation(ct)
    images = [marked, tumour, unc, lungs]

    def picture(imgs):
        return mpimg.imread(io.BytesIO(tumour_slices(*imgs)), format="png")

    reference = picture(images)
    for flips in ([False, True, False], [True, True, False], [False, False, True]):
        stored = [sitk.Flip(img, flips) for img in images]     # the same patient, another storage order
        assert stored[0].GetDirection() != ct.GetDirection()
        np.testing.assert_array_equal(picture(stored), reference, err_msg=f"flipped {flips}")


def test_segments_whose_radiomics_failed_are_named_in_the_report_and_console(phantom, tmp_path):
    """QA (lungai demo: a one-voxel tumour, a patient after left pneumonectomy): the segments whose radiomics failed
    were only in summary.json's radiomics.failed_segments - the report's radiomics section and the console said nothing
    (the tumour's key features just left out).  Each is named now, with why and what to do."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _radiomics
    from lungai.report.html import _lungs_and_features

    ct, tumour, lungs, _ = phantom
    one = np.zeros(sitk.GetArrayViewFromImage(tumour).shape, np.uint8)
    one[tuple(np.argwhere(sitk.GetArrayViewFromImage(tumour))[0])] = 1
    tiny = sitk.GetImageFromArray(one)
    tiny.CopyInformation(ct)
    right = sitk.Cast(lungs == 1, sitk.sitkUInt8)                 # the left lung removed (pneumonectomy)
    out = tmp_path / "demo"
    out.mkdir()
    _, info = _radiomics(out, ct, tiny, right, case="P1")
    assert {f["segment"] for f in info["failed_segments"]} == {"tumour", "left_lung"}
    lungs_info = {"right_lung": 1200.0, "left_lung": 0.0, "notes": [], "cut": [], "warnings": []}
    page = _lungs_and_features({"lungs": lungs_info, "radiomics": info})
    assert 'id="radiomics-failed" data-value="2"' in page, page
    assert "<li>tumour: segment &#x27;tumour&#x27; has only 1 voxel" in page and "<li>left lung: the lung map holds no left lung" in page, page
    summary = {"segmentation": {"tumor_volume_ml": 0.1, "confidence": 0.9, "needs_review": False}, "rp": {"message": "x"},
               "stage": {"message": "x"}, "dose": None, "dose_source": "none", "lungs": lungs_info, "radiomics": info}
    lines = result_lines(summary)
    assert any(line.startswith("warning: radiomics not computed for tumour: segment 'tumour' has only 1 voxel")
               for line in lines), lines
    # nothing failed: nothing said
    _, ok = _radiomics(tmp_path, ct, tumour, lungs, case="P1")
    assert not ok["failed_segments"] and 'id="radiomics-failed"' not in _lungs_and_features(
        {"lungs": lungs_info, "radiomics": ok})


def test_an_automatic_tumour_far_from_the_plans_gtv_is_said():
    """QA (lungai demo on LUNG1-003 with its RTSTRUCT): the automatic tumour (2 ml, flagged) against the 35 ml GTV-1
    gave the RP risk from the 2 ml tumour's radiomics, the report naming only the review flag; a Dice with the plan's
    GTV below GTV_AGREEMENT_DICE is now a note naming both volumes and where the GTV's features come from."""
    from lungai.demo.pipeline import GTV_AGREEMENT_DICE, gtv_agreement

    def mask(lo, hi):
        a = np.zeros((20, 40, 40), np.uint8)
        a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 1
        img = sitk.GetImageFromArray(a)
        img.SetSpacing((1.0, 1.0, 2.5))
        return img

    gtv = mask((5, 10, 10), (15, 30, 30))                 # 10 x 20 x 20 voxels of 2.5 mm3: 10 ml
    same = gtv_agreement(mask((5, 10, 10), (15, 30, 30)), gtv, "RTSTRUCT structure GTV-1")
    assert same["dice"] == 1.0 and same["note"] is None and same["gtv_ml"] == pytest.approx(10.0)
    small = gtv_agreement(mask((8, 18, 18), (11, 21, 21)), gtv, "RTSTRUCT structure GTV-1")
    assert small["dice"] < GTV_AGREEMENT_DICE and small["tumour_ml"] == pytest.approx(0.068)
    assert "agrees poorly with the plan's GTV (RTSTRUCT structure GTV-1; 10.0 ml; Dice 0.01)" in small["note"]
    assert "lungai radiomics --rtstruct" in small["note"]
    # a GTV of two parts (a primary and a node): compared by the part the tumour overlaps - a node segmented whole
    # is no disagreement; a small part of the primary is, naming that part
    two = sitk.GetArrayFromImage(gtv)
    two[2:4, 2:6, 2:6] = 1                                # a node: 2 x 4 x 4 voxels, 0.08 ml
    two_parts = sitk.GetImageFromArray(two)
    two_parts.CopyInformation(gtv)
    node = gtv_agreement(mask((2, 2, 2), (4, 6, 6)), two_parts, "GTV-1 + gtv-2")
    assert node["dice"] == 1.0 and node["note"] is None and node["gtv_parts"] == "1 of 2"
    part = gtv_agreement(mask((8, 18, 18), (11, 21, 21)), two_parts, "GTV-1 + gtv-2")
    assert "(GTV-1 + gtv-2; the 1 of its 2 parts it overlaps, 10.0 ml; Dice 0.01)" in part["note"]


def test_every_option_the_demos_review_actions_name_is_an_option_of_lungai_demo():
    """QA (LUNG1-003 as a user's CT, ``lungai demo --ct CT --seed-point=47.4,-2.4,-127.2``, the default model: 1.3 ml
    of a 35 ml GTV, confidence 0.35): the demo's console and report said "draw an ROI box round the tumour (--roi ...)
    or try another model (--model ...)", and ``lungai demo ... --roi ...`` was refused by argparse ("unrecognized
    arguments"): the fix named did not exist in the command that named it.  Every ``--option`` of the actions the
    demo shows (lungai.seg.infer.REVIEW_ACTIONS, EMPTY_ACTIONS) is now one ``lungai demo`` takes."""
    import re

    from lungai.cli import build_parser
    from lungai.seg.infer import EMPTY_ACTIONS, MODE_ACTIONS, REVIEW_ACTIONS

    demo = build_parser()._subparsers._group_actions[0].choices["demo"]
    options = {s for a in demo._actions for s in a.option_strings}
    # an option named beside another command ("lungai segment --no-grow ...", up to its sentence's end) is that
    # command's, not one the demo is said to take (as Testing/test_docs_commands.py reads them)
    named = {o for text in (*REVIEW_ACTIONS.values(), *EMPTY_ACTIONS.values(),
                            *(a for m in MODE_ACTIONS.values() for a in m.values()))
             for o in re.findall(r"(?<![\w-])--[a-z][a-z-]*",
                                 re.sub(r"(?<![\w-])lungai\s+[a-z-]+\s+[^`'\"();\n]*", "", text))}
    assert {"--roi", "--seed-point", "--model"} <= named
    named.discard("--val-fraction")          # an option of the command that action names ("train-seg again with ...")
    assert named <= options, sorted(named - options)


@pytest.mark.parametrize("given", [["--roi", "-71,-39,-158,-18,41,-100"], ["--roi=-71,-39,-158,-18,41,-100"]])
def test_demo_takes_an_roi_as_lungai_segment_does(given, tmp_path, monkeypatch):
    """``lungai demo --roi x0,y0,z0,x1,y1,z1`` reaches the run as ``roi_lps`` (negative numbers included, as
    ``--seed-point``); with --seed-point it is refused (one tumour per run, as ``lungai segment``)."""
    from lungai.cli import main

    seen = _run_demo_arguments(monkeypatch)
    assert main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), *given, "-o", str(tmp_path / "out")]) == 2
    assert seen["roi_lps"] == [-71.0, -39.0, -158.0, -18.0, 41.0, -100.0] and seen["seed_lps"] is None
    seen.clear()
    with pytest.raises(SystemExit):         # argparse: not allowed with --seed-point
        main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), *given, "--seed-point=1,2,3", "-o", str(tmp_path / "o")])
    assert not seen
    assert main(["demo", "--ct", str(tmp_path / "ct.nii.gz"), "--roi=0,0,0,0,0,0", "-o", str(tmp_path / "o")]) == 2
    assert not seen                          # a box with no extent: refused before the run, as by lungai segment


def test_an_roi_off_the_body_writes_nothing(phantom, tmp_path):
    """A demo ROI wholly outside the image, or in the air round the patient, is refused before any output file is
    written (as a bad seed point)."""
    from lungai.demo import run_demo
    from lungai.errors import InputError

    ct = phantom[0]
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="outside the image"):
        run_demo(out, ct_path=tmp_path / "ct.nii.gz", roi_lps=[1e4, 1e4, 1e4, 1e4 + 50, 1e4 + 50, 1e4 + 50])
    assert not out.exists() or not any(out.iterdir())
    lo = ct.TransformIndexToPhysicalPoint((0, 0, 0))        # a corner of the scan: air round the patient
    with pytest.raises(InputError, match="outside the body"):
        run_demo(out, ct_path=tmp_path / "ct.nii.gz", roi_lps=[*lo, *(v + 8 for v in lo)])
    assert not out.exists() or not any(out.iterdir())


def test_an_rtstruct_without_a_dose_is_refused_with_a_fix_the_user_can_follow(tmp_path):
    """QA (LUNG1-003: a planning CT and its RTSTRUCT, no RTDOSE; ``lungai demo --ct CT --rtstruct RTSTRUCT
    --seed-point ...``): refused with "How to fix: give --ct (the planning CT) and --dose (its RTDOSE) with --rtstruct"
    - --ct was given, and a patient without a dose export cannot follow it.  The fix now says what --rtstruct is used
    for, to leave it out without a dose, and where the GTV's own features come from; before any file is written."""
    from lungai.demo import run_demo
    from lungai.errors import InputError

    ct = _dicom_ct(tmp_path / "CT", "P1")
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        run_demo(out, ct_path=ct, rtstruct=tmp_path / "RS.dcm")
    fix = err.value.fix
    assert "leave --rtstruct out" in fix and "--dose" in fix and "lungai radiomics" in fix, fix
    assert "give --ct" not in fix, fix
    with pytest.raises(InputError) as err:          # the sample: --ct is what is missing
        run_demo(out, rtstruct=tmp_path / "RS.dcm")
    assert "--ct" in err.value.fix, err.value.fix
    assert not out.exists()


def test_the_demos_rtstruct_help_says_what_the_demo_uses_it_for():
    """QA docs72: ``lungai demo --help`` said of --rtstruct "mask options then take structure names or role:ROLE" (the
    shared help of lungs / radiomics / dose-features): the demo has no mask options, and the help did not say what it
    does say when refused - the RTSTRUCT gives only the dose metrics' lungs and GTV, and needs --dose.  Its help says
    so; the commands with mask options keep the shared words."""
    from lungai.cli import build_parser

    def rtstruct_help(command):
        sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
        return " ".join(next(a for a in sub._actions if "--rtstruct" in a.option_strings).help.split())

    demo = rtstruct_help("demo")
    assert "mask options" not in demo and "dose metrics only" in demo and "needs --dose" in demo, demo
    from lungai.dicom.masks import RTSTRUCT_USE
    for command in ("lungs", "radiomics", "dose-features"):
        assert RTSTRUCT_USE in rtstruct_help(command), command


def test_the_options_own_refusals_come_before_any_model_is_loaded(tmp_path, monkeypatch):
    """QA newfollow66 (LUNG1-003: ``lungai demo --ct CT --seed-point=... --rtstruct RS`` without --dose): refused
    rightly, but ~15 s later - after the segmentation model (and any --rp-model / --stage-model) was loaded.  The
    option checks that need no model (--rtstruct without --dose or --ct, --seed-point with --roi) come first."""
    import lungai.seg.model_io
    from lungai.demo import run_demo
    from lungai.errors import InputError

    loads = []

    def spy(*a, **k):
        loads.append(a)
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(lungai.seg.model_io, "load_model", spy)
    ct = _dicom_ct(tmp_path / "CT", "P1")
    out = tmp_path / "out"
    for kwargs, said in ((dict(ct_path=ct, rtstruct=tmp_path / "RS.dcm", seed_lps=(0.0, 0.0, 0.0)), "no --dose"),
                         (dict(rtstruct=tmp_path / "RS.dcm"), "no --ct"),
                         (dict(ct_path=ct, seed_lps=(0.0, 0.0, 0.0), roi_lps=(0, 0, 0, 10, 10, 10)), "both given")):
        with pytest.raises(InputError, match=said):
            run_demo(out, **kwargs)
    assert loads == [] and not out.exists()


def test_the_options_own_refusals_come_before_torch_is_imported(tmp_path):
    """QA newfollow66 on LUNG1-003 (``lungai demo --ct CT --seed-point=... --rtstruct RS``, no --dose): 25 s to the
    refusal, ~20 s of it importing torch / MONAI (lungai.seg.infer) at the top of run_demo.  A fresh process refuses
    it without importing them."""
    import subprocess
    import sys

    ct = _dicom_ct(tmp_path / "CT", "P1")
    code = ("import sys\nfrom lungai.demo import run_demo\nfrom lungai.errors import InputError\n"
            f"try:\n    run_demo({str(tmp_path / 'out')!r}, ct_path={str(ct)!r}, rtstruct={str(tmp_path / 'RS.dcm')!r}, "
            "seed_lps=(0.0, 0.0, 0.0))\nexcept InputError as err:\n    print('refused:', err)\n"
            "print('heavy:', sorted(m for m in ('torch', 'monai') if m in sys.modules))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "refused:" in done.stdout and "no --dose" in done.stdout, done.stdout + done.stderr
    assert "heavy: []" in done.stdout, done.stdout
    assert not (tmp_path / "out").exists()


def test_the_demo_says_the_seconds_of_importing_torch(tmp_path):
    """QA demo68 (``lungai demo`` with its stderr to a log, timestamped): "demo: loading the models: 0/2 [00:00]
    importing torch / MONAI" stood 6.5-10.6 s without another line.  Its seconds are now said while it runs (every
    2 s in a log, as lungai segment's; every 0.05 s here).  A fresh process (torch not imported yet), stopped once
    the imports are done."""
    import subprocess
    import sys

    code = ("import sys\nimport lungai.progress as progress\nimport lungai.demo.pipeline as P\n"
            "progress.LOG_INTERVAL = 0.05\n"
            "def loaded(*args, light=False, **kwargs):\n"
            "    if not light:\n        print('imported:', 'torch' in sys.modules, flush=True)\n        sys.exit(0)\n"
            "P.check_model_options = loaded\n"
            f"P.run_demo({str(tmp_path / 'out')!r}, small=True)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), LUNGAI_PROGRESS="bar")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "imported: True" in done.stdout, done.stdout + done.stderr
    lines = done.stderr.splitlines()         # stderr a pipe: a log's plain lines
    assert "demo: loading the models: 0/2 [00:00] importing torch / MONAI" in lines, lines
    import re

    ticks = [line for line in lines if re.fullmatch(r"demo: loading the models: 0/2 \[\d\d:\d\d\] importing torch / "
                                                    r"MONAI \(\d+ s\)", line)]
    assert len(ticks) >= 2, lines


def test_demo_checks_its_model_folders_before_any_work(ibsi_b_rp_model, ehr_rna_stage_model, tmp_path):
    """QA stagedemo59 (lungai demo --stage-model of an empty folder / of an RP model's folder): the folder was only
    checked to exist; the stage model's loader refused it after the segmentation, radiomics and dose (~25 s on the
    small sample), ending the demo with no report.  Now every model option (--model, --rp-model, --stage-model) is
    loaded by its own loader before anything is written, and the error names the option, the folder and the fix (a
    model of another kind: the option that takes it)."""
    from lungai.demo import run_demo
    from lungai.errors import InputError

    empty = tmp_path / "empty"
    empty.mkdir()
    stage = ehr_rna_stage_model["model"]
    cases = [({"stage_model": empty}, f"--stage-model {empty}", "lungai stage train"),
             ({"stage_model": ibsi_b_rp_model}, "is an RP model folder", "give it with --rp-model"),
             ({"rp_model": stage}, "is a stage model folder", "give it with --stage-model"),
             ({"rp_model": empty}, f"--rp-model {empty}", "lungai rp train"),
             ({"model_dir": ibsi_b_rp_model}, "is an RP model folder", "give it with --rp-model"),
             ({"model_dir": empty}, f"--model {empty}", "lungai train-seg")]
    for i, (given, problem, fix) in enumerate(cases):
        out = tmp_path / f"demo{i}"
        with pytest.raises(InputError) as err:
            run_demo(out, small=True, **given)
        assert problem in err.value.problem and fix in err.value.fix, (given, str(err.value))
        assert not out.exists() or not any(out.iterdir()), (given, list(out.iterdir()))     # no work was done


def test_demo_stage_refused_inputs_leave_the_report(ehr_rna_stage_model, tmp_path):
    """QA stagedemo59 (lungai demo --stage-model --clinical with text in a numeric EHR column of the model, age
    "old"): the stage was "not computed" saying the model's EHR columns were missing, with the fix "pass the model's
    EHR columns" - they were given; the real reason ('age' = 'old' is not a number) was only a console warning.  Now
    a value the stage model refuses leaves the stage not computed with that reason and its fix, as the RP step does
    (test_demo_rp_refused_inputs_leave_the_report): summary, report banner, missing_inputs.csv and console."""
    from lungai.cli.demo import result_lines
    from lungai.demo import run_demo

    pd.DataFrame([{"patient_id": "P1", "age": "old"}]).to_csv(tmp_path / "clinical.csv", index=False)
    out = tmp_path / "demo"
    summary = run_demo(out, small=True, stage_model=ehr_rna_stage_model["model"], clinical=tmp_path / "clinical.csv")
    st = summary["stage"]
    assert st["status"] == "not computed" and "predicted" not in st, st
    assert "'age' = 'old' is not a number" in st["refused"]["what"], st
    assert "correct the value" in st["refused"]["how"] and st["refused"]["input"] == "stage_model"
    page = (out / "report.html").read_text()
    assert 'id="stage-refused"' in page and "is not a number" in page
    assert json.loads((out / "summary.json").read_text())["stage"]["refused"] == st["refused"]
    assert st["refused"]["how"] in pd.read_csv(out / "missing_inputs.csv")["how"].tolist()
    line = next(li for li in result_lines(summary) if li.startswith("stage"))
    assert line.startswith("stage not computed: the stage model refused") and "'old'" in line, line


def test_demo_dose_csv_records_a_beam_sum_unchecked_against_its_rtplan(tmp_path, capsys):
    """QA (dosenotes60): a --dose folder of 2 of a plan's BEAM doses and no RTPLAN gave MLD 3.15 Gy instead of 3.94
    on LUNG1-003 with the note only printed; the demo's dose.csv records it in rtdose_notes (as dose-features'), and
    summary.json's dose_note / the report's dose section say it."""
    from dose_helpers import with_summation_type
    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    ph = make_phantom(PhantomSpec(shape=(80, 80, 36), spacing=(4.0, 4.0, 5.0), noise_hu=spec.noise_hu,
                                  tumour=spec.tumour), seed=SAMPLE_SEED)
    st = write_rt_study(tmp_path / "export", ph, patient_id="P1")
    (tmp_path / "RD").mkdir()
    for i, f in enumerate((0.3, 0.5)):
        with_summation_type(st["dose"], tmp_path / "RD" / f"beam{i}.dcm", "BEAM", plan="1.2.3.1", factor=f)
    seed = "--seed-point=" + ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])
    out = tmp_path / "demo"
    assert main(["demo", "--ct", str(st["ct"]), seed, "--dose", str(tmp_path / "RD"), "--rtstruct",
                 str(st["rtstruct"]), "-o", str(out)]) == 0
    capsys.readouterr()
    notes = notes_of(pd.read_csv(out / "dose.csv", keep_default_na=False)[NOTES_COLUMN].iloc[0])
    said = "the dose is the sum of the 2 BEAM RTDOSEs beam0.dcm, beam1.dcm; that every beam of the plan has its dose"
    assert len(notes) == 1 and notes[0].startswith(said), notes
    unchecked = "that every beam of the plan has its dose could not be checked (no RTPLAN in the --dose folder"
    assert unchecked in json.loads((out / "summary.json").read_text(encoding="utf-8"))["dose_note"]
    dose_section = (out / "report.html").read_text(encoding="utf-8").split("<h2>Dose to the lungs</h2>")[1]
    assert unchecked in dose_section.split("<h2>")[0]


def test_rp_section_names_the_top_features_in_words_with_the_patients_values():
    """QA reportrp60: the RP bars were labelled dose_v5_pct, rad_lungs_original_glcm_JointEntropy ... with no value
    of the patient: the report now names each feature as the rest of the report does (the dose table's MLD / V5,
    the key features' labels) with the patient's value and unit, in a table and on the bars."""
    from lungai.report.html import _rp, feature_label, feature_value_text

    assert feature_label("dose_v5_pct") == ("lung V5 (volume receiving at least 5 Gy)", "%")
    assert feature_label("dose_mld_gy") == ("mean lung dose (MLD)", "Gy")
    assert feature_label("clin_hb_g_dl") == ("haemoglobin", "g/dl")
    assert feature_label("clin_tiffeneau_pct")[0] == "Tiffeneau ratio (FEV1/VC)"
    assert feature_label("clin_sex_cat") == ("sex", "")
    assert feature_label("rad_lungs_original_glcm_JointEntropy") == ("lungs: GLCM joint entropy", "")
    assert feature_label("rad_lungs_original_firstorder_Kurtosis") == ("lung kurtosis", "")   # KEY_FEATURES' label
    assert feature_label("rad_tumour_original_shape_Sphericity") == ("tumour sphericity", "")
    assert feature_label("rad_lungs_minus_tumour_original_shape_Sphericity")[0] == "lungs minus tumour: shape sphericity"
    assert feature_value_text("dose_v5_pct", 72.40438976) == "72.4 %"
    assert feature_value_text("clin_age_years", 68.0) == "68 years"
    assert feature_value_text("clin_sex_cat", "male") == "male"
    assert feature_value_text("dose_v5_pct", float("nan")) == "missing (imputed by the model)"
    top = [{"feature": "dose_v5_pct", "label": feature_label("dose_v5_pct")[0], "contribution": 0.468,
            "value": feature_value_text("dose_v5_pct", 72.4)},
           {"feature": "rad_lungs_original_glcm_JointEntropy", "contribution": -0.393,
            "label": feature_label("rad_lungs_original_glcm_JointEntropy")[0],
            "value": feature_value_text("rad_lungs_original_glcm_JointEntropy", 7.6731)}]
    s = {"rp": {"risk": 0.25, "risk_low": 0.16, "risk_high": 0.41, "model_description": "m", "status": "computed",
                "contributions": [(t["feature"], t["contribution"]) for t in top], "top_features": top,
                "high_risk": False, "threshold": 0.29, "threshold_rule": "training prevalence (default)"},
           "segmentation": _seg_info(needs_review=False), "dose_masks": {}, "stage": {}}
    page = _rp(s, {})
    assert "lung V5 (volume receiving at least 5 Gy)" in page and 'id="rp-value-dose_v5_pct">72.4 %<' in page
    assert "lungs: GLCM joint entropy" in page and ">7.673<" in page
    assert 'id="rp-contribution-dose_v5_pct" data-value="0.468">+0.468<' in page


def test_rp_section_says_whether_the_risk_is_above_the_models_threshold():
    """QA reportrp60: rp_prediction.csv said high_risk=1 (lung2, 59 % against the model's 29 %) but the report
    never said the risk was high, nor which threshold: a card says it (and the console line)."""
    from lungai.cli.demo import result_lines
    from lungai.report.html import _rp

    rp = {"risk": 0.59, "risk_low": 0.19, "risk_high": 0.85, "model_description": "m", "status": "computed",
          "contributions": [], "high_risk": True, "threshold": 0.29, "threshold_rule": "training prevalence (default)"}
    s = {"rp": rp, "segmentation": _seg_info(needs_review=False), "dose_masks": {}, "stage": {"message": "x"},
         "dose": None, "dose_source": "x", "lungs": {}}
    page = _rp(s, {})
    assert 'id="rp-high-risk" data-value="1">HIGH RISK - at or above the model&#x27;s high-risk threshold 29 % ' \
           "(training prevalence (default))<" in page
    assert "  RP HIGH RISK - at or above the model's high-risk threshold 29 % (training prevalence (default))" \
        in result_lines(s)
    rp.update(risk=0.2, high_risk=False)
    page = _rp(s, {})
    assert 'id="rp-high-risk" data-value="0">below the model&#x27;s high-risk threshold 29 %' in page
    assert "HIGH RISK" not in page


def test_limitations_name_the_dose_ibsi_features_are_not_called_pyradiomics_and_volume_reads_as_console():
    """QA reportrp60: without --dose the Limitations named the RP risk and stage as not computed but not the dose
    metrics; an ibsi-c run said "N pyradiomics features were computed"; the tumour volume card read 16.90 ml where
    the console said 16.9 ml."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _methods
    from lungai.report.html import _lungs_and_features, _segmentation

    seg = _seg_info(needs_review=False, tumor_volume_ml=16.8984)
    s = {"segmentation": seg, "radiomics": {"params": "p", "n_features": 172, "n_segments": 5,
                                            "n_values": 860, "key_features": [], "ibsi_configuration": "C"},
         "rp": {"status": "not computed", "message": "not computed: x."}, "stage": {"status": "not computed",
                                                                                   "message": "not computed: y."},
         "dose": None, "dose_source": "No dose was given", "lungs": {"right_lung": 1.0, "left_lung": 1.0},
         "seg_model": {"name": "m", "training": "t"}}
    limitations = _methods(s)[1]
    dose = [x for x in limitations if x.startswith("Dose metrics")]
    assert dose == ["Dose metrics (mean lung dose, V5-V30, D2-D98, GTV dose) not computed: missing the patient's RT "
                    "dose - pass the planning RTDOSE (DICOM file or folder, or a NIfTI/NRRD dose in Gy) with --dose."]
    assert not [x for x in _methods({**s, "dose": {"dose_mld_gy": 7.0}})[1] if x.startswith("Dose metrics")]
    page = _lungs_and_features(s)
    assert ("172 IBSI-1 features (IBSI pipeline, configuration C) of each of 5 segments (860 values) were computed"
            in page and "pyradiomics" not in page)
    s["radiomics"]["ibsi_configuration"] = None
    assert "172 pyradiomics features of each of 5 segments (860 values) were computed" in _lungs_and_features(s)
    assert 'id="tumour-volume-ml" data-value="16.8984">16.9 ml<' in _segmentation(s, {})
    assert result_lines(s)[0].startswith("tumour: 16.9 ml")


def test_the_demo_reads_the_rp_model_once(ibsi_b_rp_model, tmp_path, monkeypatch):
    """QA srcodes61: the demo read the RP model (model.skops: the pipeline and its bootstrap ensemble) twice on the
    built-in sample (its card, then rp predict), a --rp-model three times (the check before any work too).  Now the
    model loaded first is used throughout: one read per run."""
    from pathlib import Path

    import lungai.demo.pipeline as pipeline
    import lungai.rp.model_io as model_io
    import lungai.rp.predict as predict
    from lungai.demo import run_demo
    from lungai.rp import make_cohort, train_rp

    loads = []
    real = model_io.load_model

    def counting(folder, *args, **kwargs):
        loads.append(Path(folder).name)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(model_io, "load_model", counting)
    monkeypatch.setattr(predict, "load_model", counting)

    def quick_model(out):                        # the illustrative model's features, a smaller training cohort
        cohort = make_cohort(n=120, seed=0)
        train_rp(cohort.table, cohort.outcome, out / "rp_model", models="lr", fast=True, seed=0, overwrite=True,
                 make_plots=False)
        return out / "rp_model", "ILLUSTRATIVE model."

    monkeypatch.setattr(pipeline, "_illustrative_rp_model", quick_model)
    summary = run_demo(tmp_path / "demo", small=True)
    assert summary["rp"]["status"] == "illustrative" and "risk" in summary["rp"]
    assert loads == ["rp_model"]
    # a --rp-model: loaded by the check before any work, not again for the risk
    loads.clear()
    models = pipeline.check_model_options(rp_model=ibsi_b_rp_model)
    wide = pd.DataFrame([{"case": "N1", "rad_lungs_original_firstorder_Mean": -820.0,
                          "radiomics_settings": _preset_id("ibsi-b")}])
    rp = pipeline._rp(tmp_path, wide, None, False, {"patient_id": "N1", "clin_age_years": 70.0, "dose_mld_gy": 12.0},
                      ibsi_b_rp_model, sample=False, case="N1", loaded=models["rp"])
    assert rp["status"] == "computed" and loads == [Path(ibsi_b_rp_model).name]


def test_the_demo_shows_progress_while_it_makes_the_sample_or_reads_the_ct(phantom, tmp_path, monkeypatch, capsys):
    """QA progwarn63: the demo's first bar was drawn only after the built-in sample CT had been made (or the user's
    CT read): 10-25 s on a shared machine without a word.  That step now has a bar of its own, drawn before the
    inputs' last checks (a seed point off the body, here: the error comes after it, and nothing is written)."""
    from lungai.cli import main
    from lungai.progress import parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    ct, _, _, _ = phantom
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    for given, what in (([], "demo: making the built-in sample CT"), (["--ct", str(tmp_path / "ct.nii.gz")],
                                                                       "demo: reading the CT")):
        out = tmp_path / f"out{len(given)}"
        assert main(["demo", "--small", *given, "--seed-point", "1e4,1e4,1e4", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        shown = [parse_line(line) for line in err.splitlines() if parse_line(line)]
        # (the sample: its steps' messages, "anatomy built" .. "slices averaged, noise added"; a CT read: one step)
        assert shown and shown[0] == (0.0, f"{what}: start") and shown[-1][0] == 1.0, err
        # the seed point refused before torch / MONAI are imported and the models loaded (QA demo67)
        assert "demo: loading the models" not in err, err
        assert shown[-1][1] == (f"{what}:" if given else f"{what}: slices averaged, noise added"), err
        assert "seed point" in err.split(what)[-1]                       # the error after the bar
        assert not out.exists() or not any(out.iterdir())


def test_the_demo_bar_says_the_lungs_and_radiomics_sub_steps(phantom, tmp_path, monkeypatch, capsys):
    """QA firstbar64 (lungai demo --small, a shared machine): the demo's bar stood on "CT ready" through the lung
    segmentation and on the tumour's volume through the radiomics of its 5 segments (12 s without a word); a whole
    CT's lungs are ~20 s.  Both now say their sub-steps on the demo's bar, counted (lungs 0/5 .. 5/5, radiomics
    0/5 .. 5/5) while the demo's own step count stays the same."""
    from lungai.cli import main
    from lungai.lungs.segment import LUNG_STEPS
    from lungai.progress import parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    ct, _, _, centre = phantom
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    seed = "--seed-point=" + ",".join(f"{v:.2f}" for v in centre)
    assert main(["demo", "--small", "--ct", str(tmp_path / "ct.nii.gz"), seed, "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    shown = [parse_line(line) for line in err.splitlines() if line.startswith("LUNGAI_PROGRESS") and " demo: " in line]
    texts = [text.removeprefix("demo: ") for _, text in shown]
    steps = [i for i, text in enumerate(texts) if text in ("CT ready", "lungs")]
    assert len(steps) == 2, err
    lungs = texts[steps[0] + 1:steps[1]]      # said between the demo's "CT ready" and "lungs" steps
    assert lungs and lungs[0] == f"lungs 0/{LUNG_STEPS}" and lungs[-1].startswith(f"lungs {LUNG_STEPS}/{LUNG_STEPS}: "), \
        lungs
    assert any("air in the body" in t for t in lungs) and len(lungs) >= 4, lungs
    # QA lungsfollow66: one count per level, each next to its name ("lungs: 1/7 smoothing the CT 0/12" read as two
    # counts of the lungs' step)
    assert f"lungs 0/{LUNG_STEPS}: smoothing the CT 0/12" in lungs, lungs
    assert all(t.startswith("lungs ") and t.split(" ", 2)[1].rstrip(":").count("/") == 1 for t in lungs), lungs
    assert {shown[steps[0] + 1 + i][0] for i in range(len(lungs))} == {shown[steps[0]][0]}   # no demo step counted
    start = texts.index("radiomics 0/5")
    done = next(i for i, t in enumerate(texts) if i > start and not t.startswith("radiomics "))
    radiomics = texts[start:done]
    assert radiomics[-1].startswith("radiomics 5/5: "), radiomics
    # one count per segment (0/5 .. 5/5, never back); between them the preparation and each running segment are
    # message-only updates ("checking the segments", "computing tumour (N s)": radprep67, radwait67)
    counts = [int(t.split(" ", 2)[1].rstrip(":").split("/")[0]) for t in radiomics]
    assert counts == sorted(counts) and sorted(set(counts)) == list(range(6)), radiomics
    assert any(t.endswith(": ct: computing tumour") for t in radiomics), radiomics
    assert texts[start - 1].startswith("tumour ") and "features" in texts[done], texts   # the tumour's step, then it
    assert shown[-1][0] == 1.0


def _lung1_003(shared_data):
    """LUNG1-003's CT and the centres and boxes (LPS mm) of its GTVs / nodes (each connected region of labels 1-2)."""
    root = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(root / "LUNG1-003_ct.nii.gz"))
    labels = sitk.ReadImage(str(root / "LUNG1-003_labels.nii.gz"))
    regions = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.BinaryThreshold(labels, 1, 2)))
    gtvs = []
    for v in np.unique(regions)[1:]:
        z, y, x = np.nonzero(regions == v)
        centre = labels.TransformContinuousIndexToPhysicalPoint([float(x.mean()), float(y.mean()), float(z.mean())])
        lo = labels.TransformIndexToPhysicalPoint([int(x.min()), int(y.min()), int(z.min())])
        hi = labels.TransformIndexToPhysicalPoint([int(x.max()), int(y.max()), int(z.max())])
        gtvs.append((list(centre), [*lo, *hi]))
    return root / "LUNG1-003_ct.nii.gz", ct, gtvs


@pytest.mark.shared_data
def test_a_seed_in_slicers_ras_order_or_an_roi_off_the_lungs_is_said_before_the_run(shared_data):
    """QA demofollow67: LUNG1-003's GTV-1 (47.4,-2.5,-127.2 LPS) given in Slicer's RAS order,
    ``--seed-point=-47.4,2.5,-127.2`` (aerated lung), or ``--roi=0,0,0,1,1,1`` (91 mm from the lungs), ran the whole
    demo (145 s) before its result said so.  The demo now says it before its run, with the numbers to give; the
    centres and boxes of LUNG1-003's real GTVs / nodes get no word."""
    from lungai.demo.pipeline import placement_notes

    _, ct, gtvs = _lung1_003(shared_data)
    assert len(gtvs) >= 3
    for centre, box in gtvs:
        assert placement_notes(ct, centre) == [] and placement_notes(ct, roi_lps=box) == [], (centre, box)
    (ras,) = placement_notes(ct, [-47.4, 2.5, -127.2])
    assert ras.startswith("--seed-point=-47.4,2.5,-127.2: the seed lies in aerated lung"), ras
    assert "give --seed-point=47.4,-2.5,-127.2 (LPS: negate x and y of Slicer's RAS coordinates)" in ras, ras
    (far,) = placement_notes(ct, roi_lps=[0, 0, 0, 1, 1, 1])
    assert far.startswith("--roi=0,0,0,1,1,1: the ROI box's centre lies") and "from the nearest lung" in far, far
    assert "draw the box round the tumour" in far, far


@pytest.mark.shared_data
def test_lungai_demo_warns_of_a_seed_in_ras_order_before_the_models_load(shared_data, tmp_path, monkeypatch, capsys):
    """The warning comes before the models load (torch / MONAI, then ~2 min of run): the run is stopped there."""
    import contextlib

    import lungai.demo.pipeline as pipeline
    from lungai.cli import main
    from lungai.errors import InputError

    path, _, _ = _lung1_003(shared_data)
    real_task = pipeline.task

    @contextlib.contextmanager
    def task(desc, *args, **kwargs):
        if desc == "demo: loading the models":
            raise InputError("stopped by the test before the models load", "-")
        with real_task(desc, *args, **kwargs) as bar:
            yield bar

    monkeypatch.setattr(pipeline, "task", task)
    assert main(["demo", "--ct", str(path), "--seed-point=-47.4,2.5,-127.2", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    said = err.split("stopped by the test")[0]
    assert "warning: --seed-point=-47.4,2.5,-127.2: the seed lies in aerated lung" in said, err
    assert "--seed-point=47.4,-2.5,-127.2" in said, err
    # a real GTV centre: no word
    assert main(["demo", "--ct", str(path), "--seed-point=47.4,-2.5,-127.2", "-o", str(tmp_path / "out")]) == 2
    assert "warning" not in capsys.readouterr().err


def test_report_says_what_the_rp_contributions_are_measured_against():
    """QA rpfollow69: the report's RP section said "positive / red raises, negative / blue lowers" with no baseline,
    although summary.json carries rp.baseline_risk; it now names it in the Slicer result text's words (one wording:
    lungai.rp.card.baseline_text), and an older random-forest file's training-mean patient as that text does."""
    from lungai.report.html import _rp
    from lungai.rp.card import OLD_BASELINE_ROW
    from lungai.scene.results import describe_prediction_row

    r = {"risk": 0.2, "risk_low": 0.1, "risk_high": 0.3, "model_description": "m", "status": "computed",
         "baseline_risk": 0.27, "warnings": []}
    page = _rp({"rp": r, "segmentation": {"needs_review": False}}, {})
    assert "against the training patients: baseline risk 27 %" in page
    _, slicer = describe_prediction_row({"risk": "0.2", "top1_feature": "dose_mld_gy", "top1_contribution": "0.3",
                                         "baseline_risk": "0.27", "warnings": ""})
    assert "(against the training patients: baseline risk 27 %)" in slicer
    old = {**r, "warnings": [OLD_BASELINE_ROW]}
    page = _rp({"rp": old, "segmentation": {"needs_review": False}}, {})
    assert ("against the training-mean patient (an older model file: see the warning): baseline risk 27 %"
            in page.replace("\n", " "))
    no_base = _rp({"rp": {k: v for k, v in r.items() if k != "baseline_risk"}, "segmentation": {}}, {})
    assert "baseline risk" not in no_base                      # an older summary.json: no baseline to name
