"""A never-smoker's pack-years are 0, not a missing value to impute (QA predict67): NSCLC-Radiogenomics writes 'N/A'
in 'Pack Years' for all 48 'Nonsmoker' patients, which lungai stage and lungai rp imputed with the training median -
a smoker's ~37 pack-years.  One rule (lungai.io.tables.never_smoker_pack_years) for both readers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputNote

CLINICAL = "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"


def _notes(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputNote)]


def test_never_smokers_missing_pack_years_are_zero_others_untouched():
    """Only a missing pack-years of a never-smoker becomes 0 (any spelling of the status, any missing word); a smoker's
    missing value stays missing (imputed), a written value is never changed; said once, with the fix."""
    from lungai.io.tables import never_smoker_pack_years

    df = pd.DataFrame({"Smoking status": ["Nonsmoker", "never smoker", "Never", "Former", "Current", "Nonsmoker",
                                          "Former", "Non-smoker"],
                       "Pack Years": ["N/A", "", "Not Collected", "N/A", "30", "12", "Not Collected", np.nan]},
                      index=[f"P{i}" for i in range(8)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = never_smoker_pack_years(df, "EHR table t.csv")
    assert list(out["Pack Years"]) == ["0", "0", "0", "N/A", "30", "12", "Not Collected", "0"]
    assert list(df["Pack Years"])[:3] == ["N/A", "", "Not Collected"]       # the caller's table is not changed
    notes = _notes(caught)
    assert len(notes) == 1 and notes[0].startswith("EHR table t.csv: 4 patients without 'Pack Years' whose "
                                                   "'Smoking status' is ")
    assert "read as 0 pack-years" in notes[0] and "correct the smoking status or write the pack-years" in notes[0]
    # numbers read as numbers (a float column): 0.0
    num = pd.DataFrame({"clin_smoking_cat": ["never", "current"], "clin_pack_years": [np.nan, np.nan]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputNote)
        read = never_smoker_pack_years(num, "t")["clin_pack_years"].tolist()
    assert read[0] == 0.0 and np.isnan(read[1])


def test_tables_without_a_never_smoker_or_both_columns_are_returned_as_they_are():
    from lungai.io.tables import is_never_smoker, is_pack_years_name, is_smoking_status_name, never_smoker_pack_years

    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no note either
        for df in (pd.DataFrame({"Pack Years": ["N/A"], "Age": [60]}),
                   pd.DataFrame({"Smoking status": ["Nonsmoker"], "Age": ["N/A"]}),
                   pd.DataFrame({"Smoking status": ["Former"], "Pack Years": ["N/A"]}),
                   pd.DataFrame({"Quit Smoking Year": ["never"], "Pack Years": ["N/A"]})):
            assert never_smoker_pack_years(df, "t") is df
    assert is_pack_years_name("Pack Years") and is_pack_years_name("clin_pack_years") and is_pack_years_name("PackYrs")
    assert not is_pack_years_name("Smoking status") and not is_smoking_status_name("Pack Years")
    assert is_smoking_status_name("Smoking status") and not is_smoking_status_name("Quit Smoking Year")
    assert is_never_smoker(" Never  smoker ") and is_never_smoker("NON_SMOKER") and not is_never_smoker("Former")


def test_stage_and_rp_read_a_never_smokers_na_pack_years_as_zero(tmp_path):
    """lungai stage's EHR reader (and so its encoder: 0, not the training median) and lungai rp's predict read the
    same row so - the one rule."""
    from lungai.fusion.data import load_ehr
    from lungai.fusion.preprocess import EHREncoder

    pd.DataFrame({"Case ID": ["A", "B", "C", "D"], "Smoking status": ["Nonsmoker", "Former", "Current", "Former"],
                  "Pack Years": ["N/A", "40", "50", "60"]}).to_csv(tmp_path / "ehr.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ehr = load_ehr(tmp_path / "ehr.csv")
    assert pd.to_numeric(ehr["Pack Years"]).tolist() == [0, 40, 50, 60]
    assert any("1 patient without 'Pack Years'" in n and "is read as 0 pack-years" in n for n in _notes(caught))
    enc = EHREncoder().fit(ehr)
    assert enc.numeric == ["Pack Years"]
    assert "num__missingindicator_Pack Years" not in enc.feature_names()     # nothing imputed (the name the encoder gives)


@pytest.mark.shared_data
def test_real_nsclc_radiogenomics_nonsmokers_get_zero_pack_years_not_the_median(shared_data, tmp_path):
    """The real clinical CSV: its 48 'Nonsmoker' patients (all 'Pack Years' 'N/A') read as 0 pack-years by lungai
    stage (the encoder transforms them as 0, not the training median 37) and by lungai rp (train and predict: not
    listed as imputed); the 8 smokers' 'Not Collected' stay missing, imputed."""
    from lungai.fusion.data import load_ehr
    from lungai.fusion.preprocess import EHREncoder
    from lungai.rp.predict import predict_rp
    from lungai.rp.training import train_rp

    path = shared_data / "nsclc_radiogenomics" / CLINICAL
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ehr = load_ehr(path)
    packs = pd.to_numeric(ehr["Pack Years"])
    never = ehr["Smoking status"] == "Nonsmoker"
    assert int(never.sum()) == 48 and (packs[never] == 0).all()
    assert int(packs[~never].isna().sum()) == 8               # 'Not Collected' of 2 current, 6 former smokers
    assert sum("48 patients without 'Pack Years' whose 'Smoking status' is 'Nonsmoker' are read as 0 pack-years" in n
               for n in _notes(caught)) == 1
    enc = EHREncoder().fit(ehr[["Pack Years", "Smoking status"]])
    x = enc.transformer.transform(enc._frame(ehr[["Pack Years", "Smoking status"]]))
    col = enc.feature_names().index("num__Pack Years")
    scaler = enc.transformer.named_transformers_["num"][-1]
    zero = (0 - scaler.mean_[0]) / scaler.scale_[0]
    assert np.allclose(x[never.to_numpy(), col], zero)      # before: the training median (37) for every one of them

    # lungai rp on the same CSV (as a file: its reader): train and predict, the nonsmokers not imputed
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table = table[table["Recurrence"].isin(["yes", "no"])]
    table.to_csv(tmp_path / "clinical.csv", index=False)
    lines = ["column,role,type", "Case ID,id,", "Recurrence,ignore,", "Smoking status,clinical,",
             "Pack Years,clinical,", "Age at Histological Diagnosis,clinical,"]
    (tmp_path / "roles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_rp(tmp_path / "clinical.csv", "Recurrence", tmp_path / "m", models="lr",
                 role_file=tmp_path / "roles.csv", fast=True, outer_folds=3, inner_folds=3, n_boot=2,
                 make_plots=False)
        pred, _ = predict_rp(tmp_path / "m", tmp_path / "clinical.csv")
    nonsmokers = set(table.loc[table["Smoking status"] == "Nonsmoker", "Case ID"])
    assert len(nonsmokers) > 20
    imputed = dict(zip(pred["case"], pred["imputed"]))
    assert not any("Pack Years" in str(imputed[c]) for c in nonsmokers)


def test_a_single_patients_ehr_values_follow_the_rule_too():
    """The Python API's one-patient cohort (EHR values in a dict, as a notebook or the panel gives them) reads a
    never-smoker's 'N/A' pack-years as 0, as a table (lungai.fusion.data.load_ehr)."""
    from lungai.fusion.api import single_patient_cohort

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = single_patient_cohort("P1", {"Smoking status": "Nonsmoker", "Pack Years": "N/A", "Age": 61})
        smoker = single_patient_cohort("P2", {"Smoking status": "Former", "Pack Years": "N/A", "Age": 61})
    assert pd.to_numeric(cohort.ehr.loc["P1", "Pack Years"]) == 0
    assert pd.isna(smoker.ehr.loc["P2", "Pack Years"])          # a smoker's missing value stays missing
    assert sum("read as 0 pack-years" in n for n in _notes(caught)) == 1


# QA predictfollow67: the note was said for a pack-years column the run does not use, and the rp model card lost it.

def _pack_years_table(root):
    """A small rp table as clinical exports write it: every 4th patient a 'Nonsmoker' with 'N/A' pack-years (20 of 80),
    the others smokers with written pack-years."""
    from lungai.rp.cohort import make_cohort

    df = make_cohort(80, seed=3, n_noise=0).table[["case", "rp_grade2", "clin_age_years", "clin_pack_years",
                                                    "dose_mld_gy"]].rename(columns={"clin_pack_years": "Pack Years"})
    never = np.arange(len(df)) % 4 == 0
    df["Smoking status"] = np.where(never, "Nonsmoker", "Former")
    df["Pack Years"] = df["Pack Years"].astype(object)
    df.loc[never, "Pack Years"] = "N/A"
    path = root / "table.csv"
    df.to_csv(path, index=False)
    return path


def _roles(root, name, pack_years: bool):
    lines = ["column,role,type", "case,id,", "clin_age_years,clinical,", "Smoking status,clinical,",
             "dose_mld_gy,dosimetric,"] + (["Pack Years,clinical,"] if pack_years else [])
    path = root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pack_notes(caught) -> list[str]:
    return [n for n in _notes(caught) if "read as 0 pack-years" in n]


def test_the_note_names_only_the_pack_years_columns_in_use():
    """``used``: the columns the run uses - a pack-years column not among them is read as 0 all the same, not said."""
    from lungai.io.tables import never_smoker_note, never_smoker_pack_years

    df = pd.DataFrame({"Smoking status": ["Nonsmoker", "Former"], "Pack Years": ["N/A", "20"], "Age": [60, 70]})
    for used, said in ((None, 1), (["Age", "Pack Years"], 1), (["Age", "Smoking status"], 0), ([], 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = never_smoker_pack_years(df, "t", used=used)
        assert len(_pack_notes(caught)) == said, used
        assert list(out["Pack Years"]) == ["0", "20"]        # the rule itself does not depend on the columns used
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # say=False: nothing said, the caller says it
        out = never_smoker_pack_years(df, "t", say=False)
    assert never_smoker_note(out, ["Smoking status"]) is None
    assert never_smoker_note(out, ["Pack Years"]).startswith("t: 1 patient without 'Pack Years' whose 'Smoking status' "
                                                             "is 'Nonsmoker' is read as 0 pack-years")


def test_stage_says_no_note_for_a_dropped_pack_years_column(tmp_path):
    """``lungai stage ... --drop "Pack Years"``: the column is no feature, so nothing is said of it (before: the note
    was said all the same); kept, it is said once."""
    from lungai.fusion.data import load_cohort

    pd.DataFrame({"Case ID": [f"P{i}" for i in range(8)],
                  "Smoking status": ["Nonsmoker", "Former", "Current", "Nonsmoker"] * 2,
                  "Pack Years": ["N/A", "40", "50", "N/A", "30", "20", "10", "N/A"],
                  "Age": [60, 61, 62, 63, 64, 65, 66, 67],
                  "stage": ["I", "II", "III", "IV"] * 2}).to_csv(tmp_path / "ehr.csv", index=False)
    for drop, said in ((["Pack Years"], 0), (["pack years"], 0), ([], 1), (["Age"], 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cohort = load_cohort(tmp_path / "ehr.csv", label="stage", drop_columns=drop)
        notes = _pack_notes(caught)
        assert len(notes) == said, (drop, notes)
        if said:
            assert "3 patients without 'Pack Years'" in notes[0]
            assert pd.to_numeric(cohort.ehr["Pack Years"]).tolist()[:4] == [0, 40, 50, 0]


def test_rp_train_says_and_its_card_keeps_the_note_only_when_pack_years_is_a_feature(tmp_path):
    """``rp train`` with a role file without 'Pack Years': no note (before: said for a column it does not use); with
    it: said once and kept in the model card (model_card.json's warnings and model_card.md, as lungai stage's card
    keeps it), so that ``rp predict`` and the Slicer panel, which show the card's warnings, show it (before: lost)."""
    import json

    from lungai.rp.card import card_warnings, read_card, validation_lines
    from lungai.rp.predict import predict_rp
    from lungai.rp.training import train_rp

    table = _pack_years_table(tmp_path)
    kw = dict(models="lr", feature_sets="clinical_dosimetric", outer_folds=2, inner_folds=2, fast=True, n_boot=2,
              make_plots=False)
    runs = {}
    for name, pack_years in (("with", True), ("without", False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train_rp(table, "rp_grade2", tmp_path / name, role_file=_roles(tmp_path, f"{name}.csv", pack_years),
                              **kw)
        runs[name] = (result, _pack_notes(caught))
    result, notes = runs["with"]
    assert len(notes) == 1 and "20 patients without 'Pack Years' whose 'Smoking status' is 'Nonsmoker'" in notes[0]
    card = json.loads((tmp_path / "with" / "model_card.json").read_text(encoding="utf-8"))
    assert "Pack Years" in card["features"]
    assert [w for w in card["warnings"] if "read as 0 pack-years" in w] == [notes[0]]
    assert f"**Warning: {notes[0]}.**" in (tmp_path / "with" / "model_card.md").read_text(encoding="utf-8")
    assert not [w for w in result.metrics["warnings"] if "pack-years" in w]    # said once on the console, not twice
    card = read_card(tmp_path / "with")
    assert any("read as 0 pack-years" in w for w in card_warnings(card))      # rp predict says the card's warnings
    assert any(line.startswith("warning: model card: ") and "read as 0 pack-years" in line
               for line in validation_lines(card))                            # the Slicer panel's model line
    result, notes = runs["without"]
    assert notes == [] and not any(
        "pack-years" in w for w in json.loads((tmp_path / "without" / "model_card.json").read_text())["warnings"])
    # rp predict: its own table's note only for the model's features - and not for the training table's own
    # never-smokers, which the card's line says (test_rp_predict_on_the_training_table_says_the_note_once)
    other = pd.read_csv(table, dtype=str, keep_default_na=False).iloc[1:]
    other.to_csv(tmp_path / "other.csv", index=False)
    for name, said in (("with", 1), ("without", 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict_rp(tmp_path / name, tmp_path / "other.csv")
        assert len([n for n in _pack_notes(caught) if n.startswith("the patients table")]) == said, name


@pytest.mark.shared_data
def test_rp_train_without_feature_columns_says_no_pack_years_note_on_the_real_table(shared_data, tmp_path, capsys):
    """``lungai rp train clin.csv --outcome Recurrence`` on NSCLC-Radiogenomics without a role file: its columns have
    no clin_/dose_/rad_ prefix, so rp train refuses the table - before, the never-smoker note came just before the
    error, about a column no model would use."""
    from lungai.cli import main

    table = pd.read_csv(shared_data / "nsclc_radiogenomics" / CLINICAL, dtype=str, keep_default_na=False)
    table[table["Recurrence"].isin(["yes", "no"])].to_csv(tmp_path / "clin.csv", index=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        code = main(["rp", "train", str(tmp_path / "clin.csv"), "--outcome", "Recurrence", "--output",
                     str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code != 0 and "error" in err and "feature" in err, err
    assert "pack-years" not in err


@pytest.mark.shared_data
def test_one_patients_row_says_the_note_for_that_patient_only(shared_data):
    """``lungai demo --clinical`` and the Slicer stage panel read one patient's row of the EHR table: a smoker's row
    said nothing of it before "48 patients without 'Pack Years' ... are read as 0" (the table's other patients); now
    nothing for a smoker, "1 patient" for a never-smoker, whose pack-years read 0."""
    from lungai.demo.pipeline import read_clinical
    from lungai.scene.stage import _ehr_row

    path = shared_data / "nsclc_radiogenomics" / CLINICAL
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    never = table.loc[table["Smoking status"] == "Nonsmoker", "Case ID"].iloc[0]
    for read in (lambda pid: read_clinical(path, patient_id=pid), lambda pid: _ehr_row(path, pid)):
        for pid, said in (("R01-001", None), (never, "1 patient without 'Pack Years' whose 'Smoking status' is "
                                                       "'Nonsmoker' is read as 0 pack-years")):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                row = read(pid)
            notes = _pack_notes(caught)
            if said is None:
                assert notes == [] and row["Smoking status"] == "Former", notes
            else:
                assert len(notes) == 1 and said in notes[0] and pd.to_numeric(row["Pack Years"]) == 0, notes


# QA stagenote67: the note was said where the pack-years column is no model input - a run without the EHR modality,
# a locked stage model without the column (lungai demo --clinical, the Slicer stage panel).

def _never_smoker_stage_cohort(root, n: int = 12) -> dict:
    """:func:`stage_helpers.small_stage_cohort` with its never-smokers' 'pack_years' written 'N/A' (as
    NSCLC-Radiogenomics writes them)."""
    from stage_helpers import small_stage_cohort

    paths = small_stage_cohort(root, n)
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    ehr.loc[ehr["smoking"] == "Never", "pack_years"] = "N/A"
    assert (ehr["pack_years"] == "N/A").any()
    ehr.to_csv(paths["ehr"], index=False)
    return paths


def test_stage_cv_without_the_ehr_modality_says_no_pack_years_note(tmp_path, capsys):
    """``lungai stage cv --ehr T --rna R --label L --modalities rna``: the EHR gives only the labels, its pack-years
    are no model input - no note (before: "N patients without 'pack_years' ... are read as 0"); with ehr in
    --modalities it is said, and load_cohort's ``ehr_used`` names the columns used."""
    from stage_helpers import stage_cli

    from lungai.fusion.data import load_cohort

    paths = _never_smoker_stage_cohort(tmp_path / "c")
    fast = ["--folds", 2, "--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--top-k", 5]
    for mods, said in (("rna", False), ("rna,ehr", True)):
        capsys.readouterr()
        assert stage_cli(["cv", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "--modalities", mods,
                          "-o", tmp_path / mods.replace(",", "_"), *fast]) == 0
        err = capsys.readouterr().err
        assert ("read as 0 pack-years" in err) is said, (mods, err)
    for used, said in (((), 0), (["age"], 0), (["age", "pack_years"], 1), (None, 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_cohort(paths["ehr"], label="stage", ehr_used=used)
        assert len(_pack_notes(caught)) == said, used


def test_demo_and_the_stage_panel_say_the_note_only_for_a_stage_model_with_pack_years(tmp_path, mrml_scene):
    """``lungai demo --clinical T --patient-id P --stage-model M`` and the Slicer stage panel (one patient's row of
    the EHR table): a never-smoker's row said "1 patient without 'pack_years' ... read as 0" even for a locked stage
    model without that feature (trained with --drop pack_years); now only when the model has it."""
    import SimpleITK as sitk
    from stage_helpers import stage_cli

    from lungai.demo.pipeline import _stage, read_clinical
    from lungai.scene.stage import predict_stage_nodes

    paths = _never_smoker_stage_cohort(tmp_path / "c")
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    never = ehr.loc[ehr["pack_years"] == "N/A", "patient_id"].iloc[0]
    fast = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr"]
    for drop in ([], ["--drop", "pack_years"]):
        assert stage_cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / f"m{len(drop)}",
                          *drop, *fast]) == 0
    for model, said in ((tmp_path / "m0", 1), (tmp_path / "m2", 0)):     # the Slicer stage panel
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = predict_stage_nodes(mrml_scene, model, never, ehr_path=paths["ehr"])
        assert out["predicted"]
        notes = _pack_notes(caught)
        assert len(notes) == said, (model, notes)
        if said:
            assert "1 patient without 'pack_years' whose 'smoking' is 'Never' is read as 0 pack-years" in notes[0]
    held = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = read_clinical(paths["ehr"], patient_id=never, pack_years=held)
    assert _pack_notes(caught) == [] and len(held) == 1 and pd.to_numeric(row["pack_years"]) == 0   # said later
    empty = sitk.Image(8, 8, 8, sitk.sitkUInt8)
    (tmp_path / "demo").mkdir()
    for model, said in ((tmp_path / "m0", 1), (tmp_path / "m2", 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _stage(tmp_path / "demo", empty, empty, row, model, False, never, pack_years=held)
        assert result.get("predicted"), result
        assert len(_pack_notes(caught)) == said, (model, _pack_notes(caught))
    from lungai.demo.pipeline import say_row_pack_years

    for features, said in ((["clin_age_years", "pack_years"], 1), (["clin_age_years"], 0)):    # the RP model's
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            say_row_pack_years(held, features)
        assert len(_pack_notes(caught)) == said


def test_rp_predict_on_the_training_table_says_the_note_once(tmp_path, capsys):
    """``lungai rp predict MODEL TRAINING_TABLE``: "note: the patients table T: 20 patients without 'Pack Years' ..."
    and then "warning: model card: the training table T: 20 patients ..." - the same patients said twice; now the
    card's line only.  Another table (not the same never-smokers: one left out) keeps its own note beside the card's
    line, and the card's line is never lost."""
    from lungai.cli import main

    table = _pack_years_table(tmp_path)
    assert main(["rp", "train", str(table), "--outcome", "rp_grade2", "--roles", str(_roles(tmp_path, "r.csv", True)),
                 "--models", "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2", "--inner-folds", "2",
                 "--bootstrap", "2", "--fast", "-o", str(tmp_path / "m")]) == 0
    other = pd.read_csv(table, dtype=str, keep_default_na=False).iloc[1:]      # 19 of the 20 never-smokers
    other.to_csv(tmp_path / "other.csv", index=False)
    for patients, own in ((table, None), (tmp_path / "other.csv", "19 patients without 'Pack Years'")):
        capsys.readouterr()
        assert main(["rp", "predict", str(tmp_path / "m"), str(patients), "-o", str(tmp_path / "p.csv")]) == 0
        lines = [line for line in capsys.readouterr().err.splitlines() if "read as 0 pack-years" in line]
        card = [line for line in lines if line.startswith("warning: model card: the training table ")]
        assert len(card) == 1 and "20 patients without 'Pack Years'" in card[0], lines
        notes = [line for line in lines if line.startswith("note: the patients table ")]
        assert (notes == []) if own is None else (len(notes) == 1 and own in notes[0]), lines


def test_validate_and_predict_of_an_rna_only_stage_model_say_no_pack_years_note(tmp_path, capsys):
    """``lungai stage train ... --modalities rna`` without ``--drop``: the EHR table's 'pack_years' is in the table the
    model was trained from but no input of any of its models (fusion network and baselines), so ``stage validate`` /
    ``stage predict`` given that table say nothing of its never-smokers' pack-years
    (``lungai.fusion.workflows._locked_ehr_used``); a model trained with the EHR (``--modalities ehr,rna``) on the
    same table says it once, naming the never-smokers read as 0 - every model of the folder for validate, the
    ``--use`` model for predict."""
    from stage_helpers import stage_cli

    paths = _never_smoker_stage_cohort(tmp_path / "c", n=16)
    ehr = pd.read_csv(paths["ehr"], dtype=str, keep_default_na=False)
    n_never = int((ehr["pack_years"] == "N/A").sum())
    fast = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--top-k", 5]
    data = ["--ehr", paths["ehr"], "--rna", paths["rna"]]
    for mods in ("rna", "ehr,rna"):
        assert stage_cli(["train", *data, "--label", "stage", "--modalities", mods,
                          "-o", tmp_path / mods.replace(",", "_"), *fast]) == 0
    said = f"{n_never} patients without 'pack_years' whose 'smoking' is 'Never' are read as 0 pack-years"
    runs = {"validate": ["--label", "stage", "--include-training-patients"], "predict": [],
            "predict-logreg": ["--use", "logreg"], "predict-fusion": ["--use", "fusion"]}
    for mods, expected in (("rna", 0), ("ehr_rna", 1)):
        for run, extra in runs.items():
            capsys.readouterr()
            assert stage_cli([run.split("-")[0], "--model", tmp_path / mods, *data, *extra,
                              "-o", tmp_path / f"{run}_{mods}"]) == 0, (mods, run)
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if "read as 0 pack-years" in line]
            assert len(lines) == expected, (mods, run, err)
            if expected:
                assert said in lines[0], lines


def test_rp_predict_says_the_note_where_training_patients_cannot_be_told(tmp_path, capsys):
    """QA rp72 (NSCLC-Radiogenomics' clinical table, a random forest with 'Pack Years'): ``lungai rp predict`` of a
    patients table without an ID column - or with a model whose training table had none - ended in a TypeError
    traceback ('NoneType' object is not subscriptable, say_pack_years_note): whether its never-smokers were training
    patients cannot be said there.  Now the prediction is made and the table's own note said, beside the card's
    line."""
    from lungai.cli import main

    table = _pack_years_table(tmp_path)
    no_id = pd.read_csv(table, dtype=str, keep_default_na=False).drop(columns="case")
    no_id.to_csv(tmp_path / "no_id.csv", index=False)
    train = ["--outcome", "rp_grade2", "--models", "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2",
             "--inner-folds", "2", "--bootstrap", "2", "--fast"]
    roles_no_id = tmp_path / "r_no_id.csv"
    roles_no_id.write_text(_roles(tmp_path, "r.csv", True).read_text().replace("case,id,\n", ""), encoding="utf-8")
    assert main(["rp", "train", str(table), *train, "--roles", str(tmp_path / "r.csv"), "-o", str(tmp_path / "m")]) == 0
    assert main(["rp", "train", str(tmp_path / "no_id.csv"), *train, "--roles", str(roles_no_id),
                 "-o", str(tmp_path / "m_no_id")]) == 0
    for model, patients in (("m", "no_id.csv"), ("m_no_id", "table.csv")):
        capsys.readouterr()
        assert main(["rp", "predict", str(tmp_path / model), str(tmp_path / patients),
                     "-o", str(tmp_path / f"p_{model}.csv")]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and "cannot be said" in err, err
        notes = [line for line in err.splitlines() if line.startswith("note: the patients table ")
                 and "20 patients without 'Pack Years'" in line]
        assert len(notes) == 1, err
        assert len(pd.read_csv(tmp_path / f"p_{model}.csv")) == 80
