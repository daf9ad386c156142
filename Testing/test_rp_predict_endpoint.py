"""What `lungai rp predict`'s risk is the risk of, what its bracket is and which rows are high risk - on the console,
in predictions.csv and in Multimodal Predict's headline (QA rppredict62: "SYN007-00001: risk 0.47 (0.29-0.67), top
feature ..." for a grade >= 2 RP model and for a model of `--outcome Recurrence` alike; no threshold, no flag)."""

from __future__ import annotations

import json

import pandas as pd

from lungai.cli import main
from lungai.rp.model_io import CARD_FILE


def _train(cohort, outcome, model):
    assert main(["rp", "train", str(cohort), "--outcome", outcome, "-o", str(model), "--fast", "--models", "lr",
                 "--feature-sets", "clinical_dosimetric", "--outer-folds", "3", "--bootstrap", "4",
                 "--threshold", "0.3"]) == 0


def _predict(model, patients, out, capsys):
    capsys.readouterr()
    assert main(["rp", "predict", str(model), str(patients), "-o", str(out)]) == 0
    return capsys.readouterr().out.splitlines(), pd.read_csv(out, keep_default_na=False)


def test_rp_predict_names_the_endpoint_the_interval_and_the_threshold(tmp_path, capsys, monkeypatch):
    from lungai.scene.results import describe_prediction_row

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    cohort, new = tmp_path / "cohort.csv", tmp_path / "new.csv"
    assert main(["rp", "synth", "-o", str(cohort), "-n", "150", "--seed", "4"]) == 0
    assert main(["rp", "synth", "-o", str(new), "-n", "12", "--seed", "5"]) == 0
    _train(cohort, "rp_grade2", tmp_path / "m")
    lines, table = _predict(tmp_path / "m", new, tmp_path / "p.csv", capsys)
    # the header: what the risk is of (one rule: lungai.rp.predict.rp_endpoint), the bracket, the threshold and rule
    assert lines[0].startswith("risk of: grade >= 2 radiation pneumonitis") and "synthetic" in lines[0], lines
    assert lines[1].startswith("interval (in brackets): ") and "bootstrap" in lines[1], lines
    assert lines[1].endswith("not the patient's chance of RP (that is the risk)."), lines
    assert lines[2] == "HIGH RISK (high_risk = 1): risk >= 0.3, the model's threshold (given)", lines
    # each row marked by its high_risk (the rows printed: the first 10)
    rows = {li.split(":", 1)[0]: li for li in lines[3:] if ": risk " in li}
    assert len(rows) == 10
    flags = dict(zip(table["case"].astype(str), table["high_risk"]))
    assert 0 < sum(flags[c] for c in rows) < 10, flags        # both kinds of row are checked
    for case, line in rows.items():
        assert (" HIGH RISK" in line) == bool(flags[case]), line
    assert f"HIGH RISK: {int(table['high_risk'].sum())} of 12 patients" in lines
    # the CSV names it per row, as its illustrative column says a synthetic model's; the panel's headline reads it
    assert set(table["endpoint"]) == {"grade >= 2 radiation pneumonitis"}
    row = {k: str(v) for k, v in table.iloc[0].items()}
    head = describe_prediction_row(row)[0]
    assert head.startswith(f"Risk of grade >= 2 radiation pneumonitis: {100 * float(row['risk']):.0f} % "
                           "(uncertainty interval "), head

    # a user's model of another outcome (a copy of the table is not the synthetic cohort): named by its column
    user = pd.read_csv(cohort).rename(columns={"rp_grade2": "Recurrence"})
    user.to_csv(tmp_path / "user.csv", index=False)
    _train(tmp_path / "user.csv", "Recurrence", tmp_path / "m2")
    lines, table = _predict(tmp_path / "m2", new, tmp_path / "p2.csv", capsys)
    assert lines[0].startswith("risk of: the model's outcome 'Recurrence' (1 = event)"), lines
    assert "grade >= 2 radiation pneumonitis" not in lines[0].split(" - ")[0]
    assert set(table["endpoint"]) == {"model outcome 'Recurrence'"}
    # its interval is not "the patient's chance of RP" (QA srhigh62): the header, the model card (json and markdown)
    card = json.loads((tmp_path / "m2" / CARD_FILE).read_text(encoding="utf-8"))
    for text in (lines[1], card["uncertainty"], (tmp_path / "m2" / "model_card.md").read_text(encoding="utf-8")):
        assert "not the patient's chance of the outcome (that is the risk)" in text and "chance of RP" not in text
    head = describe_prediction_row({k: str(v) for k, v in table.iloc[0].items()})[0]
    assert head.startswith("Risk of model outcome 'Recurrence': "), head


def test_the_interval_of_an_older_card_of_another_outcome_is_not_said_to_be_of_rp():
    """QA srhigh62: a model card written before the interval's words followed the endpoint says "not the patient's
    chance of RP" for a model of `--outcome Recurrence` too; rp predict's header says it from the card's endpoint
    (lungai.rp.uncertainty.uncertainty_text), with the card's number of bootstrap members."""
    from lungai.rp.predict import prediction_header

    old = ("95 % percentile interval of the risks predicted by 4 copies of the locked pipeline (same "
           "hyper-parameters) refitted on stratified bootstrap resamples of the training cohort: it reflects how much "
           "the model itself is uncertain because the cohort is finite, not the patient's chance of RP (that is the "
           "risk).")
    card = {"outcome": "Recurrence", "uncertainty": old, "n_bootstrap": 4, "threshold": 0.3,
            "threshold_rule": "given", "training_data": {"synthetic": False}}
    interval = prediction_header(card)[1]
    assert interval == "interval (in brackets): " + old.replace("chance of RP", "chance of the outcome"), interval
    card["training_data"]["synthetic"] = True      # a model of a synthetic RP cohort: of RP, as it was
    assert prediction_header(card)[1] == "interval (in brackets): " + old


def test_the_demo_names_the_endpoint_by_rp_predicts_rule():
    """One endpoint rule: the demo's is rp predict's (lungai.rp.predict.rp_endpoint)."""
    import lungai.demo.pipeline as demo
    from lungai.rp.predict import rp_endpoint

    assert getattr(demo, "rp_endpoint", rp_endpoint) is rp_endpoint
    assert rp_endpoint({"outcome": "rp_grade2", "training_data": {"synthetic": True}})[0] == \
        "grade >= 2 radiation pneumonitis"


def test_an_older_predictions_csv_without_endpoint_keeps_its_headline():
    from lungai.scene.results import describe_prediction_row

    row = {"risk": "0.62", "risk_low": "0.5", "risk_high": "0.7", "high_risk": "1"}
    assert describe_prediction_row(row)[0] == "Risk 62 % (uncertainty interval 50-70 %) - HIGH RISK"


def test_rp_predict_says_what_the_model_learnt_from(tmp_path, capsys, monkeypatch):
    """QA balance63: the model card records the training patients and events and warns of too few events per feature
    (lungai demo's report shows both), but `lungai rp predict` said neither: a model of 60 patients and 16 events
    gave its risks as one of hundreds would.  It now prints the card's validation line and each card warning."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    cohort, model = tmp_path / "cohort.csv", tmp_path / "model"
    assert main(["rp", "synth", "-o", str(cohort), "-n", "60", "--seed", "2"]) == 0
    assert main(["rp", "train", str(cohort), "--outcome", "rp_grade2", "-o", str(model), "--fast", "--models", "lr",
                 "--feature-sets", "all", "--outer-folds", "3", "--inner-folds", "2", "--bootstrap", "4"]) == 0
    card = json.loads((model / CARD_FILE).read_text(encoding="utf-8"))
    events = int(pd.read_csv(cohort)["rp_grade2"].sum())
    assert card["training_data"]["events"] == events and card["warnings"]
    capsys.readouterr()
    assert main(["rp", "predict", str(model), str(cohort), "-o", str(tmp_path / "pred.csv")]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    said = next(x for x in lines if x.startswith("model card: "))
    assert said.endswith(f"on 60 SYNTHETIC training patients ({events} events)") and "nested-CV AUC 0." in said
    err = cap.err.splitlines()                   # the card's warnings: InputNotes on stderr (QA rpfollow65)
    for w in card["warnings"]:
        assert f"warning: model card: {w}" in err and not [x for x in lines if w in x]
    assert any("events per candidate feature" in x for x in err if x.startswith("warning: model card: "))
