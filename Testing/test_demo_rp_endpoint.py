"""What the demo's RP risk is the risk of: its endpoint named in the console, summary.json and the report.

QA demo62: the console said "RP risk 25% (16%-41%)" - of what, for a clinician, was not said (RP of which grade? the
interval of what?); the report's heading said "grade >= 2" whatever outcome a --rp-model was trained with."""

from __future__ import annotations

import pandas as pd
import pytest

from lungai.cli import main

DOSE = {"dose_mld_gy": 14.0, "dose_v5_pct": 50.0, "dose_v13_pct": 35.0, "dose_v20_pct": 26.0, "dose_v30_pct": 17.0}
TRAIN = ["--fast", "--models", "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "3", "--bootstrap", "4"]


def _summary(rp: dict, ct: str = "built-in sample") -> dict:
    return {"rp": rp, "inputs": {"ct": ct}, "illustrative": [], "dose": DOSE, "stage": {"message": "not computed"},
            "segmentation": {"needs_review": False, "tumor_volume_ml": 1.0, "confidence": 0.9},
            "dose_status": "computed", "dose_source": "x", "lungs": {}}


def _rp_line(summary: dict) -> str:
    from lungai.cli.demo import result_lines

    return next(line for line in result_lines(summary) if line.startswith("RP risk"))


def test_the_samples_rp_risk_names_its_endpoint_and_its_synthetic_model(tmp_path, monkeypatch):
    """The built-in sample's risk: of grade >= 2 radiation pneumonitis, the outcome of the illustrative model's
    synthetic training cohort - said on the console's risk line, in summary.json and in the report's RP section."""
    from lungai.cli.demo import result_lines
    from lungai.demo.pipeline import _rp
    from lungai.report.html import _rp as rp_section

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rp = _rp(tmp_path, pd.DataFrame([{}]), DOSE, False, None, None, sample=True)
    assert rp["outcome"] == "rp_grade2"
    assert "grade >= 2 radiation pneumonitis" in rp["endpoint"] and "synthetic" in rp["endpoint"]
    s = _summary(rp)
    line = _rp_line(s)
    assert line.startswith("RP risk (grade >= 2 radiation pneumonitis) ") and "uncertainty interval" in line, line
    endpoint = next(li for li in result_lines(s) if li.strip().startswith("RP endpoint:"))
    assert "'rp_grade2'" in endpoint and "synthetic training cohort" in endpoint, endpoint
    section = rp_section(s, {})
    assert "Radiation pneumonitis (grade &ge; 2) risk" in section and 'id="rp-endpoint"' in section
    assert "synthetic training cohort" in section.split('id="rp-endpoint"', 1)[1].split("</p>", 1)[0]


def test_a_users_rp_model_is_named_by_its_outcome_not_said_to_be_grade_2(tmp_path, monkeypatch):
    """A --rp-model trained on the user's table with outcome 'rp_any_grade': the risk is that outcome's, named as the
    model card records it; the console and the report do not call it grade >= 2 pneumonitis."""
    from lungai.demo.patient import EXAMPLE_CLINICAL
    from lungai.demo.pipeline import _rp
    from lungai.report.html import _rp as rp_section

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    cohort, mine, model = tmp_path / "c.csv", tmp_path / "mine.csv", tmp_path / "model"
    assert main(["rp", "synth", "-o", str(cohort), "-n", "100", "--seed", "2"]) == 0
    pd.read_csv(cohort).rename(columns={"rp_grade2": "rp_any_grade"}).to_csv(mine, index=False)   # not synthetic now
    assert main(["rp", "train", str(mine), "-o", str(model), "--outcome", "rp_any_grade", *TRAIN]) == 0
    out = tmp_path / "demo"
    out.mkdir()
    rp = _rp(out, pd.DataFrame([{}]), DOSE, True, {"patient_id": "P1", **EXAMPLE_CLINICAL}, model, sample=False,
             case="P1")
    assert rp["status"] == "computed" and rp["outcome"] == "rp_any_grade"
    s = _summary(rp, ct="/data/P1/CT")
    line = _rp_line(s)
    assert line.startswith("RP risk (model outcome 'rp_any_grade') ") and "grade >= 2" not in line, line
    section = rp_section(s, {})
    assert "grade &ge; 2" not in section and "rp_any_grade" in section.split("</h2>", 1)[0]


@pytest.mark.parametrize("sample", [True, False])
def test_a_risk_of_an_older_summary_without_its_endpoint_still_prints(sample):
    """summary.json of an earlier lungai (no rp.outcome / rp.endpoint): the line says RP risk, as before."""
    rp = {"status": "computed", "risk": 0.25, "risk_low": 0.16, "risk_high": 0.41}
    assert _rp_line(_summary(rp, "built-in sample" if sample else "/ct")).startswith("RP risk 25% (")


def test_the_samples_rp_inputs_name_where_its_values_came_from(tmp_path, monkeypatch):
    """QA demo62: summary.json's rp.inputs of the built-in sample said "clinical values from --clinical, dose metrics
    from --dose" - neither was given: the example profile and the synthetic dose were used (as the model description
    says); with a --clinical row that gives radiomics or dose columns the console prints that text as "RP inputs:"."""
    from lungai.cli.demo import result_lines
    from lungai.demo.patient import EXAMPLE_CLINICAL
    from lungai.demo.pipeline import _rp

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rp = _rp(tmp_path, pd.DataFrame([{}]), DOSE, False, None, None, sample=True)
    assert "--clinical" not in rp["inputs"] and "--dose" not in rp["inputs"], rp["inputs"]
    assert "the illustrative example profile" in rp["inputs"] and "the sample's synthetic dose" in rp["inputs"]
    # a --clinical cohort row on the sample, without --dose: its own dose column replaced by the synthetic dose's
    row = {"patient_id": "P1", **EXAMPLE_CLINICAL, "dose_mld_gy": 9.0}
    rp = _rp(tmp_path, pd.DataFrame([{}]), DOSE, False, row, None, sample=True)
    line = next(li for li in result_lines(_summary(rp)) if li.strip().startswith("RP inputs:"))
    assert "clinical values from --clinical" in line and "--dose" not in line.split("replaced")[0], line
    assert "dose metrics from the sample's synthetic dose" in line, line
