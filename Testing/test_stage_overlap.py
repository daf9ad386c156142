"""``lungai stage validate`` on the model's own training patients (QA: 162/162 overlap reported as an external
validation, logreg macro-AUC 0.999 vs ~0.5 in CV): the locked model records salted hashes of its training patients'
IDs (never the IDs), validate leaves those patients out (or scores them with --include-training-patients, labelled
not external), refuses when no one is left, and says so when an older model cannot tell.  And --stage-from's
Tis N0 M0 (stage 0) counted as class I is said in the class summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

FAST = ["--epochs", 2, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr"]


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from lungai.fusion.synthetic import make_cohort

    return make_cohort(tmp_path_factory.mktemp("syn"), n=12, n_genes=20, module_size=4, ct_shape=(32, 32, 16),
                       ct_spacing=(5.0, 5.0, 5.0))


@pytest.fixture(scope="module")
def model(syn, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "model"
    assert _cli(["train", "--ehr", syn["ehr"], "--label", "stage", "-o", out, *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def mixed(syn, tmp_path_factory):
    """The 12 training patients and 6 the model never saw (copies of 6 rows under new IDs)."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    new = ehr.iloc[:6].copy()
    new["patient_id"] = [f"EXT-{k:02d}" for k in range(6)]
    path = tmp_path_factory.mktemp("mixed") / "ehr.csv"
    pd.concat([ehr, new]).to_csv(path, index=False)
    return path, list(ehr.patient_id)


def test_the_model_records_salted_hashes_of_its_training_patients_and_no_plain_id(syn, model):
    text = (model / "stage_model.json").read_text(encoding="utf-8")
    ids = list(pd.read_csv(syn["ehr"], dtype=str).patient_id)
    assert not [i for i in ids if i in text]
    rec = json.loads(text)["training_patients"]
    assert rec["n"] == 12 and len(rec["sha256"]) == 12 and len(rec["salt"]) == 32
    assert all(isinstance(v, int) for k, v in json.loads(text)["training_cohort"].items() if k == "unlabelled")


def test_validate_on_the_training_patients_only_is_refused_with_the_fix(syn, model, tmp_path, capsys):
    assert _cli(["validate", "--model", model, "--ehr", syn["ehr"], "--label", "stage", "-o", tmp_path / "v"]) == 2
    err = capsys.readouterr().err
    assert "all 12 patients of the validation cohort were in the locked model's training cohort" in err
    assert "validate on patients the model never saw" in err
    assert not (tmp_path / "v" / "metrics.json").exists()


def test_validate_on_the_training_patients_only_is_refused_before_torch(syn, model, tmp_path):
    """QA docs71: ``stage validate`` of NSCLC-Radiogenomics with a model trained on its 162 staged patients refused
    them only after 11.6 s (torch, MONAI, torch-geometric, skops and the model loaded first): the ID hashes are in the
    model's card, so the refusal comes with the labels' check, before torch (1.3 s); ``--include-training-patients``
    still goes on to score them."""
    from test_cli_startup import HEAVY, _heavy_at_refusal

    args = ["stage", "validate", "--model", str(model), "--ehr", str(syn["ehr"]), "--label", "stage", "-o", "v"]
    code, err, imported = _heavy_at_refusal(args, tmp_path, heavy=HEAVY + ("sklearn", "torch_geometric", "skops"))
    assert code == 2 and "all 12 patients of the validation cohort were in the locked model's training cohort" in err
    assert "How to fix: validate on patients the model never saw" in err and imported == [], (imported, err)
    assert not (tmp_path / "v").exists()
    code, err, imported = _heavy_at_refusal([*args[:-1], "v2", "--include-training-patients"], tmp_path,
                                            heavy=("torch",))
    assert code == 0 and imported == ["torch"], err
    assert json.loads((tmp_path / "v2" / "metrics.json").read_text())["external"] is False


def test_validate_leaves_the_training_patients_out_and_counts_them(mixed, model, tmp_path, capsys):
    ehr, train_ids = mixed
    assert _cli(["validate", "--model", model, "--ehr", ehr, "--label", "stage", "-o", tmp_path / "v"]) == 0
    err = capsys.readouterr().err      # a note (lungai.errors.InputCheckNote), kept in metrics.json's warnings too
    assert "note: 12 of the 18 patients were in the model's training cohort" in err and train_ids[0] in err
    assert "6 patients are validated" in err
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert m["n_training_overlap"] == 12 and m["external"] is True and m["n_patients"] == 6
    assert m["training_patients_included"] is False and m["cohort"]["n_patients"] == 6
    assert m["models"]["logreg"]["n_scored"] == 6
    pred = pd.read_csv(tmp_path / "v" / "predictions.csv", dtype={"patient_id": str})
    assert sorted(pred.patient_id) == [f"EXT-{k:02d}" for k in range(6)]


def test_include_training_patients_scores_them_labelled_not_external(mixed, model, tmp_path, capsys):
    ehr, _ = mixed
    assert _cli(["validate", "--model", model, "--ehr", ehr, "--label", "stage", "--include-training-patients",
                 "-o", tmp_path / "v"]) == 0
    assert "NOT an external validation" in capsys.readouterr().err
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert m["n_training_overlap"] == 12 and m["external"] is False and m["n_patients"] == 18
    assert m["training_patients_included"] is True


def test_a_model_without_the_hashes_says_overlap_cannot_be_checked(syn, model, tmp_path, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(model, old)
    meta = json.loads((old / "stage_model.json").read_text(encoding="utf-8"))
    del meta["training_patients"]                                   # as a model of an older lungai
    (old / "stage_model.json").write_text(json.dumps(meta), encoding="utf-8")
    assert _cli(["validate", "--model", old, "--ehr", syn["ehr"], "--label", "stage", "-o", tmp_path / "v"]) == 0
    assert "note: overlap with the training cohort cannot be checked" in capsys.readouterr().err
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert m["n_training_overlap"] is None and m["training_overlap_checked"] is False and m["n_patients"] == 12


# ------------------------------------------------------------------------------ --stage-from: stage 0 (Tis N0 M0)
def _tnm_table(path):
    """Eight patients with T / N / M: two Tis N0 M0 (stage 0), two T1a N0 M0 (I), two II, two III-IV."""
    tnm = [("Tis", "N0", "M0"), ("pTis", "N0", "M0"), ("T1a", "N0", "M0"), ("T1b", "N0", "M0"),
           ("T2b", "N0", "M0"), ("T1a", "N1", "M0"), ("T3", "N2", "M0"), ("T4", "N0", "M0")]
    df = pd.DataFrame(tnm, columns=["T", "N", "M"])
    df.insert(0, "patient_id", [f"P{k}" for k in range(8)])
    df["age"] = [60, 61, 62, 63, 64, 65, 66, 67]
    df.to_csv(path, index=False)
    return path


def test_stage_from_says_how_many_of_class_i_are_stage_0(tmp_path):
    from lungai.fusion.data import availability_text, load_cohort

    c = load_cohort(_tnm_table(tmp_path / "ehr.csv"), stage_from=["T", "N", "M"], label="stage_group")
    assert c.report["class_counts"] == {"I": 4, "II": 2, "III-IV": 2} and c.report["stage0_in_I"] == 2
    assert "classes: I 4 (2 of them stage 0, Tis N0 M0), II 2, III-IV 2" in availability_text(c)


def test_stage0_exclude_leaves_tis_n0_m0_out_and_says_so(tmp_path):
    from lungai.fusion.data import availability_text, load_cohort

    c = load_cohort(_tnm_table(tmp_path / "ehr.csv"), stage_from=["T", "N", "M"], label="stage_group",
                    stage0="exclude")
    assert c.report["class_counts"] == {"I": 2, "II": 2, "III-IV": 2} and c.report["unlabelled"] == ["P0", "P1"]
    assert "2 patients without a label left out (2 of them stage 0, Tis N0 M0: --stage0 exclude)" \
        in availability_text(c)


def test_stage0_choice_is_locked_with_the_model_and_used_by_validate(tmp_path, capsys):
    ehr = _tnm_table(tmp_path / "ehr.csv")
    data = ["--ehr", ehr, "--stage-from", "T,N,M", "--label", "stage_group"]
    assert _cli(["train", *data, "--stage0", "exclude", "-o", tmp_path / "m", *FAST]) == 0
    meta = json.loads((tmp_path / "m" / "stage_model.json").read_text(encoding="utf-8"))
    assert meta["data"]["stage0"] == "exclude" and meta["training_cohort"]["class_counts"]["I"] == 2
    new = pd.read_csv(ehr, dtype=str)
    new["patient_id"] = [f"N{k}" for k in range(8)]
    new.to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert _cli(["validate", "--model", tmp_path / "m", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "v"]) == 0
    assert "(2 of them stage 0, Tis N0 M0: --stage0 exclude)" in capsys.readouterr().out
    assert json.loads((tmp_path / "v" / "metrics.json").read_text())["n_patients"] == 6


def test_a_synthetic_cohort_of_another_seed_validates_as_external(syn, model, tmp_path, capsys):
    """docs/stage.md validates the locked model on a second synthetic cohort (other seed): its IDs carry the seed,
    so no patient is taken for a training patient (all were refused when every cohort was SYN-001...)."""
    from lungai.fusion.synthetic import make_cohort

    ext = make_cohort(tmp_path / "ext", n=12, seed=1, biology_seed=0, n_genes=20, module_size=4,
                      ct_shape=(32, 32, 16), ct_spacing=(5.0, 5.0, 5.0))
    ids = list(pd.read_csv(ext["ehr"], dtype=str).patient_id)
    assert ids[0] == "SYN001-00000" and ids == sorted(ids)
    assert list(pd.read_csv(syn["ehr"], dtype=str).patient_id)[0] == "SYN000-00000"
    assert _cli(["validate", "--model", model, "--ehr", ext["ehr"], "--label", "stage", "-o", tmp_path / "v"]) == 0
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert m["n_training_overlap"] == 0 and m["external"] is True


def test_stage_ids_written_otherwise_are_noted(syn, model, tmp_path, capsys):
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    ehr["patient_id"] = ehr["patient_id"].str.lower()
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["validate", "--model", model, "--ehr", tmp_path / "ehr.csv", "--label", "stage", "-o",
                 tmp_path / "v"]) == 0
    assert "12 patients match a training patient ignoring case / leading zeros" in capsys.readouterr().err


def test_rna_missing_values_are_counted_over_the_patients_validated(tmp_path):
    """validate leaves the model's training patients out (recount(cohort.subset(...))): the RNA missing-value count
    of its report and console is over the patients kept - before, it stayed the whole matrix's (NSCLC-Radiogenomics,
    VA model validated on the whole table: "RNA: 4519 missing value(s) in 130 patient(s)" beside "RNA 57")."""
    from lungai.fusion.data import availability_text, load_cohort, recount

    (tmp_path / "ehr.csv").write_text("id,age,stage\nA,60,I\nB,61,II\nC,62,I\nD,63,II\n")
    (tmp_path / "rna.csv").write_text("id,G1,G2,G3\nA,,,0.1\nB,0.2,,0.3\nC,0.1,0.2,0.3\nD,0.4,0.5,0.6\n")
    cohort = load_cohort(ehr=tmp_path / "ehr.csv", rna=tmp_path / "rna.csv", label="stage", check_leaks=False)
    assert cohort.report["rna_missing_values"] == {"values": 3, "of": 12, "patients": 2}
    kept = recount(cohort.subset(["B", "C", "D"]))
    assert kept.report["rna_missing_values"] == {"values": 1, "of": 9, "patients": 1}
    assert "RNA: 1 missing value in 1 patient (11.1 % of 9)" in availability_text(kept)
    none = recount(cohort.subset(["C", "D"]))
    assert none.report["rna_missing_values"]["values"] == 0
    assert "missing value" not in availability_text(none)


def test_ehr_missing_values_are_counted_and_said_with_how_they_are_imputed(tmp_path):
    """QA predict66: `stage cv` / `train` on NSCLC-Radiogenomics said the RNA matrix's missing values ("RNA: 4519
    missing values in 130 patients ... imputed as its gene's training mean") but not the EHR table's: of the 162
    labelled patients 80 have no 'Quit Smoking Year', 42 no 'ALK translocation status', 30 no 'Pack Years' ('N/A',
    'Not Collected'), all imputed without a word on the console, in metrics.json or in model_card.md.  They are now
    counted per column (over the patients with EHR data), said with how they are imputed, and kept in the report
    (metrics.json's `cohort`, stage_model.json's `training_cohort`, model_card.md)."""
    from lungai.fusion.data import availability_text, load_cohort, recount
    from lungai.fusion.model_io import card_markdown

    # A and C smokers: a never-smoker's missing pack-years would be 0, not missing (lungai.io.tables.never_smoker_pack_years)
    (tmp_path / "ehr.csv").write_text("id,age,pack years,kras,smoking,stage\nA,60,N/A,Unknown,Current,I\n"
                                      "B,61,20,Mutant,Former,II\nC,62,Not Collected,,Current,I\nD,,30,Wildtype,Former,II\n")
    cohort = load_cohort(ehr=tmp_path / "ehr.csv", label="stage")
    text = availability_text(cohort)
    assert ("EHR: missing values in 3 of 4 columns (3 of 4 patients): kras 2, pack years 2, age 1 - imputed from "
            "the training patients (of each CV fold; a locked model's own): a numeric column with its training median (plus a missing indicator), a "
            "categorical one as a level 'missing' of its own") in text, text
    gaps = cohort.report["ehr_missing_values"]
    assert gaps == {"columns": {"kras": 2, "pack years": 2, "age": 1}, "patients": 3, "of": 4, "n_columns": 4}
    from lungai.fusion.data import ehr_missing_text

    assert ehr_missing_text(cohort.report) in text
    kept = recount(cohort.subset(["B", "D"]))
    assert kept.report["ehr_missing_values"] == {"columns": {"age": 1}, "patients": 1, "of": 2, "n_columns": 4}
    assert "EHR: missing values in 1 of 4 columns (1 of 2 patients): age 1" in availability_text(kept)
    none = recount(cohort.subset(["B"]))
    assert none.report["ehr_missing_values"]["columns"] == {} and "EHR: missing" not in availability_text(none)
    meta = {"classes": ["I", "II"], "modalities": ["ehr"], "selected": "fusion", "training_cohort": cohort.report}
    assert f"- {ehr_missing_text(cohort.report)}" in card_markdown(meta)


def test_ehr_missing_values_are_said_only_when_the_ehr_is_used(tmp_path, capsys):
    """QA predictfollow66: `stage cv --modalities rna` (the EHR table read for the label only) said "EHR: missing
    values in ... - imputed from the training patients", on the console and in comparison.md, though no model uses
    (or imputes) an EHR value; so did the model card of `stage train --modalities rna`."""
    from lungai.fusion.model_io import card_markdown
    from stage_helpers import small_stage_cohort, stage_cli

    paths = small_stage_cohort(tmp_path / "data", 24)
    ehr = pd.read_csv(paths["ehr"])
    column = next(c for c in ehr.columns if c not in ("patient_id", "stage") and ehr[c].notna().all())
    ehr.loc[:4, column] = None              # 5 patients without this column's value
    ehr.to_csv(paths["ehr"], index=False)
    common = ["--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "--epochs", 1, "--inner-folds", 1,
              "--baselines", "logreg", "--top-k", 10]
    said = f"{column} 5"
    assert stage_cli(["cv", *common, "--folds", 2, "-o", tmp_path / "cv_all"]) == 0
    out = capsys.readouterr().out
    assert "EHR: missing values" in out and said in out
    assert "EHR: missing values" in (tmp_path / "cv_all" / "comparison.md").read_text(encoding="utf-8")

    assert stage_cli(["cv", *common, "--folds", 2, "--modalities", "rna", "-o", tmp_path / "cv_rna"]) == 0
    out = capsys.readouterr().out
    assert "EHR: missing values" not in out, out
    assert "EHR: missing values" not in (tmp_path / "cv_rna" / "comparison.md").read_text(encoding="utf-8")

    meta = {"classes": ["I", "II"], "modalities": ["rna"], "config": {"modalities": ["rna"]}, "selected": "fusion",
            "training_cohort": json.loads((tmp_path / "cv_rna" / "metrics.json").read_text(encoding="utf-8"))["cohort"]}
    assert "EHR: missing values" not in card_markdown(meta)
    meta["config"]["modalities"] = meta["modalities"] = ["ehr", "rna"]
    assert "EHR: missing values" in card_markdown(meta)
