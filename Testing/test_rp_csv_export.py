"""The RP prediction CSV between `lungai rp predict` and `lungai dicom-export --rp` (QA rpcsv63): the threshold that
called high_risk travels with it, a hand-made CSV's high_risk in words (True/False, yes/no) is read as 0/1, values
the SR cannot report as lungai's risk are refused with their fix, and the row's warnings reach the SR."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from lungai.cli import main

from rp_helpers import rp_small_model  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """A small synthetic DICOM CT of patient P1."""
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import write_rt_study

    return write_rt_study(tmp_path_factory.mktemp("rpct"), small_phantom(7), "P1", dose=None)["ct"]


def _export(ct, rp, out):
    return main(["dicom-export", "--ct", str(ct), "--rp", str(rp), "-o", str(out)])


def _case(out):
    from lungai.dicom.sr import read_sr, read_sr_comments

    path = out / "measurements.sr.dcm"
    return read_sr(path)["Case"], read_sr_comments(path)["Case"]


def _patients(n=6, seed=21):
    from lungai.rp.cohort import make_cohort

    table = make_cohort(n, seed=seed, n_noise=0).table
    return table.assign(case=[f"P{i + 1}" for i in range(n)])


def test_rp_predicts_csv_records_the_threshold_and_its_rule_and_the_sr_carries_them(rp_small_model, ct, tmp_path,
                                                                                    capsys, monkeypatch):
    """QA rpcsv63: rp_prediction.csv had high_risk (risk >= the model's threshold) but not the threshold, so the SR
    of `dicom-export --rp` said "the model's threshold (not recorded in the RP prediction CSV)" and a later reader of
    the CSV could not tell which cut-off was applied (a model of --outcome Recurrence on NSCLC-Radiogenomics: 0.257,
    training prevalence).  Now each row has the card's threshold and its rule; the SR reports rp_threshold and the
    rule in its Comment."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    card = json.loads((rp_small_model / "model_card.json").read_text(encoding="utf-8"))
    patients, pred = tmp_path / "patients.csv", tmp_path / "pred.csv"
    _patients().to_csv(patients, index=False)
    assert main(["rp", "predict", str(rp_small_model), str(patients), "-o", str(pred)]) == 0
    table = pd.read_csv(pred, keep_default_na=False)
    names = list(table.columns)
    assert names.index("threshold") == names.index("risk_high") + 1, names     # where the Slicer panel has it
    assert names.index("threshold_rule") == names.index("threshold") + 1, names
    assert table["threshold"].tolist() == [pytest.approx(card["threshold"], rel=1e-4)] * len(table)
    assert set(table["threshold_rule"]) == {card["threshold_rule"]}
    assert (table["high_risk"] == (table["risk"] >= table["threshold"]).astype(int)).all()
    # the round trip: P1's row into P1's SR
    table.iloc[[0]].to_csv(tmp_path / "p1.csv", index=False)
    assert _export(ct, tmp_path / "p1.csv", tmp_path / "e") == 0, capsys.readouterr().err
    ms, comment = _case(tmp_path / "e")
    assert ms["rp_threshold"] == (pytest.approx(card["threshold"], rel=1e-4), "1")
    assert ms["rp_high_risk"] == (float(table["high_risk"][0]), "1")
    assert (f"rp_high_risk: 1 = HIGH RISK, rp_risk >= rp_threshold {card['threshold']:.3g}, the model's threshold "
            f"({card['threshold_rule']})") in comment, comment
    assert "not recorded in the RP prediction CSV" not in comment


def test_the_slicer_panels_risk_table_has_the_same_threshold_columns(rp_small_model):
    """The panel's risk table (lungai.scene.rp.with_model_columns) and rp predict's CSV put the threshold the same
    way: one rule (lungai.rp.predict.with_threshold)."""
    from lungai.rp.model_io import load_model
    from lungai.scene.rp import with_model_columns

    card = load_model(rp_small_model)[1]
    df = pd.DataFrame({"case": ["P1"], "risk": [0.4], "risk_low": [0.3], "risk_high": [0.5], "threshold": [0.9],
                       "threshold_rule": ["stale"], "high_risk": [1]})
    out = with_model_columns(df, card, rp_small_model)
    assert list(out.columns) == ["case", "risk", "risk_low", "risk_high", "threshold", "threshold_rule",
                                 "high_risk", "model"]
    assert out["threshold"][0] == card["threshold"] and out["threshold_rule"][0] == card["threshold_rule"]


@pytest.mark.parametrize("written, flag", [("True", 1), ("False", 0), ("yes", 1), ("No", 0), ("Y", 1), ("n", 0),
                                           ("TRUE", 1), ("1.0", 1), ("0", 0), ("1", 1)])
def test_a_hand_made_high_risk_in_words_is_read_as_0_or_1(ct, tmp_path, capsys, written, flag):
    """QA rpcsv63: a `--rp` CSV typed by hand or saved from a spreadsheet with high_risk True/False or yes/no was
    refused ("holds True in its column 'high_risk', which is not a finite number ... give the RP prediction CSV as
    lungai wrote it").  The usual spellings of a boolean (lungai.rp.columns.TRUE_WORDS / FALSE_WORDS, as rp train
    reads a 0/1 outcome) are rp_high_risk 1 / 0."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,high_risk\nP1,0.42,0.3,0.55,{written}\n")
    assert _export(ct, rp, tmp_path / "e") == 0, capsys.readouterr().err
    ms, comment = _case(tmp_path / "e")
    assert ms["rp_high_risk"] == (float(flag), "1")
    assert "rp_high_risk: 1 = HIGH RISK" in comment


@pytest.mark.parametrize("written", ["HIGH", "0.5", "2", "maybe"])
def test_a_high_risk_that_is_no_flag_is_refused_naming_the_accepted_values(ct, tmp_path, capsys, written):
    """high_risk 0.5 or 2 went into the SR as rp_high_risk 0.5 / 2 (a flag of 1 = HIGH RISK, 0 = below); "HIGH"
    was refused as "not a finite number" with the fix "give the CSV as lungai wrote it".  Now refused, before
    anything is written, naming the file, the value and the accepted values."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,high_risk\nP1,0.42,0.3,0.55,{written}\n")
    assert _export(ct, rp, tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(rp))} holds '?{re.escape(written)}'? in its column 'high_risk', which is not "
                     "a high-risk flag", err), err
    assert "1 (HIGH RISK) or 0" in err and "yes/no" in err and "true/false" in err, err
    assert not (tmp_path / "e").exists()


def test_a_risk_in_percent_or_a_csv_without_a_risk_is_refused(ct, tmp_path, capsys):
    """A hand-made CSV with the risk in percent (30 for 30 %) went into the SR as rp_risk 30 (unit 1); one whose
    risk column is named otherwise (probability, Risk) gave an SR with rp_high_risk alone, or "nothing to export ...
    no RP risk was given" although --rp was.  Both refused, naming the file and the fix."""
    rp = tmp_path / "rp.csv"
    rp.write_text("case,risk,risk_low,risk_high,high_risk\nP1,30,20,40.5,1\n")
    assert _export(ct, rp, tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert f"{rp} holds 30 in its column 'risk'" in err and "not a risk between 0 and 1" in err, err
    assert "percentage" in err and "divide by 100" in err, err
    for header, hint in (("case,probability,high_risk", ""), ("case,Risk,High_Risk", "did you mean 'Risk'")):
        rp.write_text(f"{header}\nP1,0.3,1\n")
        assert _export(ct, rp, tmp_path / "e") == 2
        err = capsys.readouterr().err
        assert f"the RP prediction CSV {rp} has no column 'risk'" in err and hint in err, err
        assert "lungai rp predict" in err
    assert not (tmp_path / "e").exists()


def test_the_rows_warnings_reach_the_sr(ct, tmp_path, capsys):
    """QA rpcsv63: the SR's Comment said the imputed and out-of-range features of rp_prediction.csv but not its
    `warnings` cell - a training patient's in-sample risk, radiomics of other settings, an automatic tumour that
    needs review - which rp predict prints and the report's banner shows (NSCLC-Radiogenomics AMC-001, a training
    patient of the model: its SR said nothing of it)."""
    warning = ("a training patient of this model: the prediction is in-sample (the model was fitted to this "
               "patient's outcome) - optimistic, not an honest estimate")
    pd.DataFrame([{"case": "P1", "risk": 0.25, "risk_low": 0.08, "risk_high": 0.46, "high_risk": 0,
                   "imputed": "clin_pack_years", "warnings": warning}]).to_csv(tmp_path / "rp.csv", index=False)
    assert _export(ct, tmp_path / "rp.csv", tmp_path / "e") == 0, capsys.readouterr().err
    _ms, comment = _case(tmp_path / "e")
    assert f"RP warnings: {warning}" in comment, comment
    assert "RP features missing, imputed by the model: clin_pack_years" in comment


def test_the_cts_row_of_a_cohorts_rp_csv_is_taken(ct, tmp_path, capsys):
    """QA rpcsv63: `lungai rp predict` of a cohort writes one CSV of every patient, but `dicom-export --rp` refused
    it ("has 3 rows", fix "give the one-patient CSV of this CT": no command writes one, the user had to cut the CSV
    by hand).  Now the row of this CT's case (its PatientID, PatientID_..., or --case: check_table_case's rule) is
    taken; none, or several (cohort's P1_1 and P1_2), is refused naming the cases and the fix; a CSV of several rows
    without a case column is refused as before."""
    rp = tmp_path / "rp.csv"
    rows = {"P2": 0.11, "P1": 0.42, "P3": 0.73}
    pd.DataFrame({"case": list(rows), "risk": list(rows.values()), "risk_low": 0.05, "risk_high": 0.9,
                  "threshold": 0.3, "high_risk": [int(r >= 0.3) for r in rows.values()]}).to_csv(rp, index=False)
    assert _export(ct, rp, tmp_path / "e") == 0, capsys.readouterr().err
    ms, _comment = _case(tmp_path / "e")
    assert ms["rp_risk"] == (pytest.approx(0.42), "1") and ms["rp_high_risk"] == (1.0, "1")
    # none of this CT's
    pd.read_csv(rp).iloc[[0, 2]].to_csv(rp, index=False)
    assert _export(ct, rp, tmp_path / "none") == 2
    err = capsys.readouterr().err
    assert f"the RP prediction CSV {rp} has 2 rows, none of this CT's patient (PatientID 'P1')" in err, err
    assert "'P2', 'P3'" in err and not (tmp_path / "none").exists()
    # two CT series of P1 (lungai cohort's P1_1, P1_2): which one is told by --case
    pd.DataFrame({"case": ["P1_1", "P1_2"], "risk": [0.2, 0.6], "high_risk": [0, 1]}).to_csv(rp, index=False)
    assert _export(ct, rp, tmp_path / "two") == 2
    err = capsys.readouterr().err
    assert "has 2 rows of this CT's patient ('P1_1', 'P1_2')" in err and "--case" in err, err
    assert main(["dicom-export", "--ct", str(ct), "--rp", str(rp), "--case", "P1_2", "-o", str(tmp_path / "c")]) == 0
    assert _case(tmp_path / "c")[0]["rp_risk"] == (pytest.approx(0.6), "1")
    # no case column: which row is this CT's cannot be told
    pd.DataFrame({"risk": [0.2, 0.6]}).to_csv(rp, index=False)
    assert _export(ct, rp, tmp_path / "nocase") == 2
    err = capsys.readouterr().err
    assert "has 2 rows and no case column" in err and "give the one-patient CSV of this CT" in err, err


@pytest.mark.parametrize("risk, flag, ok", [(0.1, "yes", False), (0.5, "0", False), (0.5, "1", True),
                                            (0.29999, "0", True), (0.3, "1", True), (0.30001, "1", True)])
def test_a_high_risk_that_contradicts_the_risk_and_threshold_is_refused(ct, tmp_path, capsys, risk, flag, ok):
    """high_risk is risk >= threshold (rp predict's rule): a hand-made row with risk 0.1, threshold 0.3 and high_risk
    yes went into the SR as HIGH RISK below its own threshold.  Refused, naming the values; a risk at the threshold
    (rounded as rp predict writes it, 5 significant digits) is not."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,threshold,high_risk\nP1,{risk},0.05,0.9,0.3,{flag}\n")
    assert _export(ct, rp, tmp_path / "e") == (0 if ok else 2)
    err = capsys.readouterr().err
    if not ok:
        assert f"high_risk {flag!r} with risk {risk:g} and threshold 0.3" in err and "risk >= threshold" in err, err
        assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("row, shown", [(",,,,1", "but high_risk 1: the SR would report a HIGH RISK flag without the risk"),
                                        (",,,,yes", "but high_risk yes: the SR would report a HIGH RISK flag"),
                                        (",,0.1,0.4,", "but risk_low 0.1, risk_high 0.4: the SR would report them"),
                                        (",,,,", "the SR would hold no RP risk although --rp was given")])
def test_a_row_without_its_risk_is_refused(ct, tmp_path, capsys, row, shown):
    """QA rpfollow63: `case,risk,risk_low,risk_high,high_risk` / `P1,,,,1` gave an SR with rp_high_risk 1 and no
    rp_risk, no comment - a HIGH RISK flag without the number it came from (an interval alone the same; an empty
    row an SR without any RP although --rp was given).  rp predict always writes a risk: refused, naming the values
    and the fix, before anything is written."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,high_risk\nP1{row}\n")
    assert _export(ct, rp, tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert f"the RP prediction CSV {rp} holds no risk (its column 'risk' is empty)" in err and shown in err, err
    assert "write the patient's risk" in err and "leave --rp out" in err, err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("low, high, ok, said", [
    (0.5, 0.6, False, "risk 0.3 with risk_low 0.5 and risk_high 0.6: the interval does not hold its risk"),
    (0.1, 0.2, False, "risk 0.3 with risk_low 0.1 and risk_high 0.2: the interval does not hold its risk"),
    (0.6, 0.1, False, "risk 0.3 with risk_low 0.6 and risk_high 0.1: the bounds are inverted"),
    (0.1, "", False, "holds risk_low 0.1 but no risk_high: an interval needs both bounds"),
    ("", 0.5, False, "holds risk_high 0.5 but no risk_low"),
    (-0.1, 0.5, False, "holds -0.1 in its column 'risk_low', which is not a risk between 0 and 1"),
    (0.1, 1.2, False, "holds 1.2 in its column 'risk_high', which is not a risk between 0 and 1"),
    (0.3, 0.3, True, ""), (0.30001, 0.5, True, ""), (0.1, 0.29999, True, ""), ("", "", True, "")])
def test_an_interval_that_does_not_hold_its_risk_is_refused(ct, tmp_path, capsys, low, high, ok, said):
    """QA rpfollow63: a hand-made row with risk 0.3 and risk_low 0.5 (or risk_high 0.2, or the bounds swapped) went
    into the SR as it was, under the comment "the interval rp_risk_low to rp_risk_high: 95 % percentile interval
    ...".  rp predict writes risk_low <= risk <= risk_high (lungai.rp.uncertainty.risk_with_interval widens the
    interval to hold the risk), both bounds or neither: anything else is refused naming the values; bounds equal to
    the risk to within the 5 significant digits rp predict writes are not."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,high_risk\nP1,0.3,{low},{high},1\n")
    assert _export(ct, rp, tmp_path / "e") == (0 if ok else 2)
    err = capsys.readouterr().err
    if ok:
        ms, _comment = _case(tmp_path / "e")
        assert ms["rp_risk"] == (pytest.approx(0.3), "1")
        assert ("rp_risk_low" in ms) == (low != "") and ("rp_risk_high" in ms) == (high != "")
    else:
        assert f"the RP prediction CSV {rp} " in err and said in err, err
        assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("cells, said, fix", [
    ('30%,20%,40%', "holds '30%' in its column 'risk', a percentage, which is not a risk between 0 and 1: write 0.3",
     "without the percent sign"),
    ('0.42,0.3,55 %', "holds '55 %' in its column 'risk_high', a percentage, which is not a risk between 0 and 1: "
     "write 0.55", "without the percent sign"),
    ('"0,42",0.3,0.55', "holds '0,42' in its column 'risk', which is not a finite number (type 0.42: a decimal "
     "point, not a comma)", "write the numbers with a decimal point"),
    ('0.42,"0,3",0.55', "holds '0,3' in its column 'risk_low', which is not a finite number (type 0.3", "decimal "
     "point")])
def test_a_spreadsheets_percent_or_decimal_comma_is_named_with_its_fix(ct, tmp_path, capsys, cells, said, fix):
    """QA rpfollow63: a hand-made --rp CSV saved from a spreadsheet with the risk formatted as Percentage (30%) or
    written with a decimal comma ("0,42", quoted in a comma-separated CSV) was refused as "not a finite number" with
    the fix "give the RP prediction CSV as lungai wrote it" - neither named.  Now the error says which (a percentage:
    the risk it means, 0.3, not the 30 a number without the sign would be) and its fix."""
    rp = tmp_path / "rp.csv"
    rp.write_text(f"case,risk,risk_low,risk_high,high_risk\nP1,{cells},1\n")
    assert _export(ct, rp, tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert f"the RP prediction CSV {rp} {said}" in err and fix in err, err
    assert not (tmp_path / "e").exists()


def test_a_threshold_without_high_risk_is_said_in_the_sr(ct, tmp_path, capsys):
    """QA rpfollow63: a --rp CSV with a threshold but no high_risk column gave an SR with rp_threshold 0.3 and a
    comment that did not say what rp_threshold is (its rule was said only beside rp_high_risk)."""
    rp = tmp_path / "rp.csv"
    rp.write_text("case,risk,risk_low,risk_high,threshold,threshold_rule\nP1,0.42,0.3,0.55,0.3,given\n")
    assert _export(ct, rp, tmp_path / "e") == 0, capsys.readouterr().err
    ms, comment = _case(tmp_path / "e")
    assert ms["rp_threshold"] == (pytest.approx(0.3), "1") and "rp_high_risk" not in ms
    assert ("rp_threshold: the model's high-risk threshold (given), HIGH RISK where rp_risk >= it (the RP prediction "
            "CSV has no high_risk)") in comment, comment
