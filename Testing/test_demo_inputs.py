"""The demo's inputs, step by step (no full run): which stage-model inputs count, the radiomic segments an
RP model trained the documented way needs, the case name, the seed check and the one run time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def phantom():
    """A small synthetic CT with its tumour and lung label map (lungai lungs convention: 1 right, 2 left)."""
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec
    from lungai.synthetic import labels as L

    spec = sample_spec()
    spec = PhantomSpec(shape=(96, 96, 40), spacing=(3.5, 3.5, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    ph = make_phantom(spec, seed=SAMPLE_SEED)
    arr = sitk.GetArrayFromImage(ph.labels)
    tumour = sitk.GetImageFromArray(L.tumour_mask(arr).astype(np.uint8))
    tumour.CopyInformation(ph.ct)
    lungs_arr = np.zeros(arr.shape, np.uint8)
    lungs_arr[arr == L.RIGHT_LUNG] = 1
    lungs_arr[arr == L.LEFT_LUNG] = 2
    lungs = sitk.GetImageFromArray(lungs_arr)
    lungs.CopyInformation(ph.ct)
    return ph.ct, tumour, lungs, ph.meta["tumour"]["centre_mm"]


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
    assert "EHR (at least one of" in what and "clin_age_years" in what and "not trained with CT" in what
    assert "--clinical" in st["missing"][0]["how"]
    assert not (tmp_path / "stage_probabilities.csv").exists()

    col = next(c for c in ("age", "ldh", "sex") if c in ehr_rna_stage_model["ehr"].columns)
    clinical[col] = ehr_rna_stage_model["ehr"][col].dropna().iloc[0]
    st = _stage(tmp_path, ct, tumour, clinical, ehr_rna_stage_model["model"], sample=False, case="P1")
    assert st["status"] == "computed" and st["modalities_used"] == ["EHR"]
    assert "CT" not in st["modalities"] and "The CT is not used" in st["model_description"]


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
    assert rp["status"] == "computed", rp.get("message")
    assert 0.0 <= rp["risk"] <= 1.0
    assert pd.read_csv(out / "rp_prediction.csv")["case"].tolist() == ["P1"]


def test_case_id_from_dicom_patient_id_else_file_stem(tmp_path):
    """lungai.io.input_case_id and the demo's case name (--patient-id wins)."""
    from lungai.demo.pipeline import demo_case_id
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import input_case_id as case_id

    img = sitk.Image(8, 8, 4, sitk.sitkInt16)
    img.SetSpacing((2.0, 2.0, 3.0))
    folder = tmp_path / "CT"
    write_ct_series(img, folder, patient_id="LUNG1-099")
    assert case_id(folder) == "LUNG1-099"
    assert demo_case_id(folder) == "LUNG1-099" and demo_case_id(folder, "P7") == "P7"
    assert case_id(tmp_path / "LUNG1-003_ct.nii.gz") == "LUNG1-003_ct"
    assert demo_case_id(tmp_path / "scan.nrrd") == "scan" and demo_case_id(None) == "demo"


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
