"""``rp validate`` leaves the model's own training patients out of an external validation (as ``stage validate``):
``rp train`` records them as salted SHA-256 hashes of their IDs (lungai.model_files.training_patients), validate
hashes each row's ID with the model's salt; all of them: refused; ``--include-training-patients``: scored, labelled
NOT external; a model without hashes: "cannot be checked"."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.cli import main
from lungai.errors import InputError
from lungai.rp import make_cohort, train_rp, validate_rp
from note_helpers import notes_made
from rp_helpers import model_without_hashes

FAST = dict(models="lr", feature_sets="clinical_dosimetric", fast=True, outer_folds=3, inner_folds=3, n_boot=3,
            make_plots=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(training table CSV, model dir): 60 synthetic patients."""
    d = tmp_path_factory.mktemp("rp_overlap")
    cohort = make_cohort(60, seed=21, n_noise=0)
    cohort.table.to_csv(d / "train.csv", index=False)
    train_rp(d / "train.csv", cohort.outcome, d / "m", **FAST)
    return d / "train.csv", d / "m", cohort.outcome


def test_the_card_records_salted_hashes_of_the_training_patients_and_no_plain_id(trained):
    table, model, _ = trained
    ids = pd.read_csv(table)["case"].tolist()
    text = (model / "model_card.json").read_text()
    assert not [i for i in ids if i in text]
    rec = json.loads(text)["training_patients"]
    assert rec["n"] == 60 and len(rec["sha256"]) == 60 and len(rec["salt"]) == 32
    assert "Training patients: 60 recorded as salted SHA-256 hashes" in (model / "model_card.md").read_text()


def test_the_card_keeps_the_warnings_on_patients_in_their_form_without_ids(tmp_path):
    """QA rpvalidate65: the model card keeps no plain patient ID (its training patients are salted hashes), but its
    ``warnings`` kept rp train's warnings on patients as said - "training table: the automatic tumour of 2 patients
    needs review (tumour_review, e.g. SYN021-00000, SYN021-00001) ...", the lungs cut, no dose, likewise - in
    model_card.json and model_card.md.  The card keeps their form without the IDs ("(tumour_review)"); the console
    and metrics.json (a local report, beside cv_predictions.csv) still name them."""
    table = make_cohort(60, seed=21, n_noise=0).table
    ids = table["case"].tolist()
    table["tumour_review"] = ["low confidence"] * 2 + [""] * 58
    table["lungs_cut"] = ["", "", "cut at the apex"] + [""] * 57
    table.loc[3:4, [c for c in table.columns if c.startswith("dose_")]] = float("nan")
    r = train_rp(table, "rp_grade2", tmp_path / "m", **FAST)
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    record = (tmp_path / "m" / "model_card.json").read_text() + (tmp_path / "m" / "model_card.md").read_text()
    assert not [i for i in ids if i in record], [i for i in ids if i in record]
    for words, column, named in (("the automatic tumour of 2 patients needs review", "tumour_review", ids[:2]),
                                 ("the lungs of 1 patient are cut by the scan", "lungs_cut", ids[2:3]),
                                 ("2 patients have no dose", "every dosimetric feature empty", ids[3:5])):
        said = next(w for w in r.metrics["warnings"] if words in w)       # said naming them, as before
        assert all(i in said for i in named) and not [x for x in r.lines if said in x], said   # (the CLI says it)
        kept = [w for w in card["warnings"] if words in w]                 # kept counted, not named
        assert len(kept) == 1 and f"{words} ({column}): " in kept[0], kept
        assert kept[0] == said.replace(f", e.g. {', '.join(named)}", ""), (kept[0], said)
    assert len(card["warnings"]) == len(r.metrics["warnings"])


def test_an_older_cards_warnings_naming_patients_are_said_with_forms_without_their_ids(trained, tmp_path, capsys,
                                                                                       monkeypatch):
    """QA idforms66: a model card of an rp train before QA rpvalidate65 kept its warnings on patients as said, naming
    training patients ("the automatic tumour of 2 patients needs review (tumour_review, e.g. P1, P2): ...").  rp
    predict said them as InputNotes with no ``without_ids`` form (the one kind of ID-naming note without one), and
    the demo's summary of the card (its report) copied them: another patient's report named the training patients.
    They are said with their form without the IDs (as the card now keeps them); the report keeps that form."""
    import shutil

    from lungai.demo.pipeline import rp_card_summary
    from lungai.rp.card import card_warnings

    table, model, _ = trained
    old = tmp_path / "old"
    shutil.copytree(model, old)
    card = json.loads((old / "model_card.json").read_text(encoding="utf-8"))
    ids = ["LUNG1-002", "Smith, J (2)", "R01-001"]
    said_then = ["training table: the automatic tumour of 2 patients needs review (tumour_review, e.g. LUNG1-002, "
                 "Smith, J (2)): their radiomics are of a tumour not yet checked - review them",
                 "training table: 3 patients have no dose (every dosimetric feature empty, e.g. LUNG1-002, "
                 "Smith, J (2), R01-001): imputed - give their dose",
                 "too few events per candidate feature"]
    card["warnings"] = said_then
    (old / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    kept = card_warnings(card)
    assert [str(w) for w in kept] == [f"model card: {w}" for w in said_then]          # said as the card says them
    assert [getattr(w, "without_ids", None) for w in kept] == [
        "model card: training table: the automatic tumour of 2 patients needs review (tumour_review): their "
        "radiomics are of a tumour not yet checked - review them",
        "model card: training table: 3 patients have no dose (every dosimetric feature empty): imputed - give "
        "their dose", None], kept
    made = notes_made(monkeypatch)
    new = pd.read_csv(table).iloc[:3].assign(case=[f"EXT-{k}" for k in range(3)])
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["rp", "predict", str(old), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert "warning: model card: training table: the automatic tumour of 2 patients needs review (tumour_review, " \
           "e.g. LUNG1-002" in err, err                                              # the console names them
    naming = [n for n in made if any(i in str(n) for i in ids)]
    assert len(naming) == 2 and all(n.without_ids and not [i for i in ids if i in n.without_ids] for n in naming), \
        [(str(n), n.without_ids) for n in naming]
    summary = rp_card_summary(card)["warnings"]                                      # the demo's report
    assert len(summary) == 3 and not [w for w in summary if any(i in w for i in ids)], summary


def test_the_same_seed_gives_byte_identical_model_files(trained, tmp_path):
    table, model, outcome = trained
    train_rp(table, outcome, tmp_path / "m2", **FAST)
    for name in ("model.skops", "metrics.json"):
        assert (tmp_path / "m2" / name).read_bytes() == (model / name).read_bytes()
    card = lambda p: {k: v for k, v in json.loads((p / "model_card.json").read_text()).items() if k != "created_utc"}
    assert card(tmp_path / "m2") == card(model)


def test_validate_on_the_training_table_is_refused_with_the_fix(trained, tmp_path, capsys):
    table, model, _ = trained
    assert main(["rp", "validate", str(model), str(table), "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "all 60 patients of the validation cohort were in the locked model's training cohort" in err
    assert "validate on patients the model never saw" in err and "metrics_nested_cv" in err
    assert not (tmp_path / "v" / "external_metrics.json").exists()
    pd.read_csv(table).head(1).to_csv(tmp_path / "one.csv", index=False)   # QA rpsmall65: "all 1 patients ... were"
    assert main(["rp", "validate", str(model), str(tmp_path / "one.csv"), "-o", str(tmp_path / "v1")]) == 2
    err = capsys.readouterr().err
    assert "the 1 patient of the validation cohort was in the locked model's training cohort" in err, err


def test_validate_leaves_the_training_patients_out_and_counts_them(trained, tmp_path, capsys):
    table, model, outcome = trained
    mixed = pd.concat([pd.read_csv(table).head(20), make_cohort(40, seed=22, n_noise=0).table])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    assert main(["rp", "validate", str(model), str(tmp_path / "mixed.csv"), "-o", str(tmp_path / "v")]) == 0
    err = capsys.readouterr().err       # a note on stderr, as stage validate's (QA rpoverlap64: stdout before)
    assert "note: 20 of the 60 patients were in the model's training cohort" in err and "40 patients are validated" in err
    m = json.loads((tmp_path / "v" / "external_metrics.json").read_text())
    assert m["n"] == 40 and m["n_training_overlap"] == 20 and m["external"] is True
    assert m["training_overlap_checked"] is True and m["training_patients_included"] is False
    pred = pd.read_csv(tmp_path / "v" / "external_predictions.csv")
    assert len(pred) == 40 and all(c.startswith("SYN022") for c in pred.case)


def test_include_training_patients_scores_them_labelled_not_external(trained, tmp_path, capsys):
    table, model, _ = trained
    assert main(["rp", "validate", str(model), str(table), "--include-training-patients",
                 "-o", str(tmp_path / "v")]) == 0
    cap = capsys.readouterr()
    assert "NOT an external validation" in cap.err and "NOT external" in cap.out
    m = json.loads((tmp_path / "v" / "external_metrics.json").read_text())
    assert m["n"] == 60 and m["n_training_overlap"] == 60 and m["external"] is False
    assert m["training_patients_included"] is True


def test_a_model_without_the_hashes_says_overlap_cannot_be_checked(trained, tmp_path):
    table, model, _ = trained
    old = model_without_hashes(model, tmp_path)        # a model card of a lungai before the hashes
    r = validate_rp(old, table)
    assert r["n"] == 60 and r["n_training_overlap"] is None and r["training_overlap_checked"] is False
    assert "overlap with the training cohort cannot be checked" in r["overlap_notes"][0]


def test_a_table_without_an_id_column_cannot_be_checked(trained, tmp_path):
    table, model, _ = trained
    r = validate_rp(model, pd.read_csv(table).drop(columns="case"))
    assert r["training_overlap_checked"] is False and "no patient ID column" in r["overlap_notes"][0]
    with pytest.raises(InputError, match="all 60 patients"):
        validate_rp(model, pd.read_csv(table))


def test_every_id_column_is_recorded_and_a_row_overlaps_when_any_id_matches(tmp_path, capsys):
    """A lungai cohort table carries a per-series ``case`` (P_1) and the ``patient_id`` (P): the same patient under
    another case suffix is a training patient, not an external one (only ``case`` was hashed before)."""
    cohort = make_cohort(60, seed=31, n_noise=0)
    t = cohort.table.copy()
    t.insert(1, "patient_id", [f"PAT{k:03d}" for k in range(60)])
    t["case"] = t["patient_id"] + "_1"
    t.to_csv(tmp_path / "train.csv", index=False)
    train_rp(tmp_path / "train.csv", cohort.outcome, tmp_path / "m", **FAST)
    v = pd.concat([t.head(20).assign(case=lambda d: d.patient_id + "_2"),
                   make_cohort(40, seed=32, n_noise=0).table.assign(patient_id=lambda d: "NEW" + d.case)])
    r = validate_rp(tmp_path / "m", v)
    assert r["n_training_overlap"] == 20 and r["n"] == 40
    assert r["training_overlap_examples"][0] == "PAT000_2"
    text = (tmp_path / "m" / "model_card.json").read_text()
    assert "PAT000" not in text and len(json.loads(text)["training_patients"]["sha256"]) == 120


def test_ids_differing_only_by_case_or_leading_zeros_are_noted_not_left_out(trained, tmp_path):
    table, model, _ = trained
    t = pd.read_csv(table)
    t["case"] = t["case"].str.lower().str.replace("-000", "-", regex=False)        # syn021-00007 -> syn021-07
    r = validate_rp(model, t)
    assert r["n"] == 60 and r["n_training_overlap"] == 0 and r["n_training_loose_match"] == 60
    assert "60 patients match a training patient ignoring case / leading zeros" in r["overlap_notes"][0]
    assert "check the IDs" in r["overlap_notes"][0]


def test_the_headline_says_overlap_not_checked(trained, tmp_path, capsys):
    table, model, _ = trained
    pd.read_csv(table).drop(columns="case").to_csv(tmp_path / "noid.csv", index=False)
    assert main(["rp", "validate", str(model), str(tmp_path / "noid.csv"), "-o", str(tmp_path / "v2")]) == 0
    head = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("external validation of")][0]
    assert head.endswith("(overlap not checked)")


def test_a_model_with_the_first_hashes_only_still_checks_exact_ids(trained, tmp_path):
    """A model card of the first hashed format (``sha256`` of the ``case`` column, no ``sha256_loose``): exact IDs
    are still left out, and no loose note is made."""
    table, model, _ = trained
    old = tmp_path / "old"
    old.mkdir()
    for f in model.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    card = json.loads((old / "model_card.json").read_text())
    del card["training_patients"]["sha256_loose"]
    (old / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="all 60 patients"):
        validate_rp(old, table)
    t = pd.read_csv(table)
    t["case"] = t["case"].str.lower()
    r = validate_rp(old, t)
    assert r["n_training_overlap"] == 0 and r["n_training_loose_match"] == 0 and r["overlap_notes"] == []


def test_predict_says_which_patients_were_training_patients_in_sample(trained, tmp_path, capsys):
    """QA explain59: ``rp predict`` of the model's own training patients wrote their risks and Shapley contributions
    without a word that they are in-sample (the model fitted them and their outcomes), read as held-out results.
    Now each such row's warnings say so and the console counts them; an unseen patient's row has no such warning."""
    table, model, _ = trained
    df = pd.read_csv(table)
    new = df.iloc[:4].copy()
    new["case"] = [f"EXT-{k}" for k in range(4)]
    both = pd.concat([df.iloc[:6], new])
    both.to_csv(tmp_path / "both.csv", index=False)
    assert main(["rp", "predict", str(model), str(tmp_path / "both.csv"), "-o", str(tmp_path / "p.csv"),
                 "--contributions", str(tmp_path / "c.csv")]) == 0
    said = capsys.readouterr()
    assert "6 of the 10 patients were in the model's training cohort" in said.out + said.err
    pred = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    flagged = pred.case[pred.warnings.str.contains("a training patient of this model", regex=False)]
    assert sorted(flagged) == sorted(df.case.iloc[:6])
    from lungai.rp import predict_rp

    one, _ = predict_rp(model, new.iloc[:1], context="patient")          # an unseen patient: nothing said
    assert "training" not in one.warnings.iloc[0] and not [w for w in one.attrs["warnings"] if "in-sample" in w]


def test_validate_says_its_overlap_notes_as_input_notes_kept_in_the_metrics_with_a_form_without_ids(
        trained, tmp_path, capsys, monkeypatch):
    """QA rpoverlap64: validate's notes on the model's own training patients (left out; IDs matching a training
    patient's only ignoring case; the --include-training-patients warning) were printed strings (the notes on
    stdout): not InputNotes, with no ``without_ids`` form, and not among external_metrics.json's ``warnings``.  Now
    as stage validate's: InputCheckNotes ("note: ...") / an InputNote ("warning: ...") on stderr, kept in
    ``warnings`` (the IDs named: a local report) and in ``overlap_notes``."""
    from lungai.errors import InputCheckNote, InputNote

    table, model, _ = trained
    df = pd.read_csv(table)
    loose = df.iloc[20:22].assign(case=lambda d: d.case.str.lower())     # a training patient's ID, another case
    mixed = pd.concat([df.head(20), loose, make_cohort(40, seed=22, n_noise=0).table])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    ids = list(df.case) + list(loose.case)
    made = notes_made(monkeypatch)
    assert main(["rp", "validate", str(model), str(tmp_path / "mixed.csv"), "-o", str(tmp_path / "v")]) == 0
    cap = capsys.readouterr()
    m = json.loads((tmp_path / "v" / "external_metrics.json").read_text())
    for text in ("20 of the 62 patients were in the model's training cohort (",
                 "2 patients match a training patient ignoring case"):
        assert cap.err.count(f"note: {text}") == 1 and text not in cap.out, (cap.out, cap.err)
        kept = [w for w in m["warnings"] if w.startswith(text)]
        assert kept and [i for i in ids if i in kept[0]], m["warnings"]      # kept, the IDs named
        note = next(n for n in made if str(n).startswith(text))
        assert isinstance(note, InputCheckNote), type(note)
        assert note.without_ids and not [i for i in ids if i in note.without_ids], note.without_ids
        assert note.without_ids.startswith(text.removesuffix(" (")), note.without_ids
    assert len(m["overlap_notes"]) == 2 and all(n in m["warnings"] for n in m["overlap_notes"])

    made.clear()
    assert main(["rp", "validate", str(model), str(table), "--include-training-patients",
                 "-o", str(tmp_path / "all")]) == 0
    cap = capsys.readouterr()
    text = "all 60 patients were in the model's training cohort ("
    assert cap.err.count(f"warning: {text}") == 1 and text not in cap.out, (cap.out, cap.err)
    note = next(n for n in made if str(n).startswith(text))
    assert type(note) is InputNote and "NOT an external validation" in note.without_ids
    assert not [i for i in df.case if i in note.without_ids], note.without_ids
    m = json.loads((tmp_path / "all" / "external_metrics.json").read_text())
    assert [w for w in m["warnings"] if w.startswith(text)] == m["overlap_notes"]
