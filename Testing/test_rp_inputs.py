"""RP bad-input handling: every error names the problem (and columns) and the fix."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError, InputNote, counted
from lungai.rp.checks import check_events, numeric_features, outcome_vector, read_table, read_tables
from lungai.rp.cohort import make_cohort
from lungai.rp.columns import infer_roles
from lungai.rp.predict import predict_rp
from lungai.rp.training import train_rp

from rp_helpers import rp_cohort, rp_messy_model, rp_model_dir  # noqa: F401  (fixtures)


@pytest.fixture
def table():
    return make_cohort(60, seed=3, n_noise=2).table


def test_roles_from_prefixes_and_role_file(tmp_path, table):
    table = table.rename(columns={"clin_age_years": "Age"}).assign(notes="x")
    roles = infer_roles(table, "rp_grade2")
    assert roles.id_column == "case"
    assert "Age" in roles.ignored and "notes" in roles.ignored
    assert set(roles.categorical) == {"clin_sex_cat", "clin_histology_cat"}
    assert all(c.startswith("rad_") for c in roles.features("radiomic"))
    assert set(roles.features("clinical_dosimetric")) | set(roles.features("radiomic")) == set(roles.features("all"))
    (tmp_path / "roles.csv").write_text("column,role,type\nAge,clinical,\nclin_durvalumab,clinical,categorical\n", encoding="utf-8")
    roles = infer_roles(table, "rp_grade2", tmp_path / "roles.csv")
    assert roles.roles["Age"] == "clinical" and "clin_durvalumab" in roles.categorical
    (tmp_path / "bad.csv").write_text("column,role\nAgee,clinical\n", encoding="utf-8")
    with pytest.raises(InputError, match="Agee.*did you mean 'Age'"):
        infer_roles(table, "rp_grade2", tmp_path / "bad.csv")


def test_misspelled_outcome_is_named_with_suggestion(table):
    with pytest.raises(InputError, match="'rp_grade_2'.*did you mean 'rp_grade2'"):
        outcome_vector(table, "rp_grade_2")


def test_an_outcome_under_another_name_names_the_0_1_columns_and_the_option(tmp_path, table, rp_model_dir):
    """QA rpfollow71: ``rp validate MODEL table.csv`` of a table whose 0/1 outcome is ``RP2`` (the model's
    ``rp_grade2``) said "outcome column 'rp_grade2' is not in the table" and "pass the exact name ... with --outcome",
    naming no column.  The table's 0/1 columns (not a clin_ / dose_ / rad_ feature - clin_durvalumab is 0/1 -, nor the
    patient ID) are named, the fix the --outcome to pass; without one, the table's columns."""
    from lungai.rp.external import validate_rp

    renamed = table.rename(columns={"rp_grade2": "RP2"}).assign(notes="x")
    renamed.to_csv(tmp_path / "v.csv", index=False)
    for run in (lambda: validate_rp(rp_model_dir, tmp_path / "v.csv"), lambda: outcome_vector(renamed, "rp_grade2")):
        with pytest.raises(InputError) as err:
            run()
        assert err.value.problem == ("outcome column 'rp_grade2' is not in the table; its 0/1 column (no clin_ / "
                                     "dose_ / rad_ feature, no patient ID): 'RP2'"), err.value.problem
        assert err.value.fix.endswith("with --outcome, e.g. --outcome RP2 if that is the outcome (1 = event)")
    spaced = table.rename(columns={"rp_grade2": "RP grade >= 2"}).assign(toxicity="yes")
    with pytest.raises(InputError) as err:
        outcome_vector(spaced, "rp_grade2")
    assert err.value.problem.endswith("(did you mean 'RP grade >= 2'?); its 0/1 column (no clin_ / dose_ / rad_ "
                                      "feature, no patient ID): 'toxicity'"), err.value.problem
    assert "--outcome 'RP grade >= 2' if" in err.value.fix
    with pytest.raises(InputError) as err:
        outcome_vector(table[["case", "clin_age_years", "clin_durvalumab"]], "rp_grade2")
    assert err.value.problem == "outcome column 'rp_grade2' is not in the table", err.value.problem
    assert err.value.fix.endswith("(the table's columns are: case, clin_age_years, clin_durvalumab)"), err.value.fix


def test_outcome_must_be_binary(table):
    table["rp_grade2"] = table["rp_grade2"].astype(object)
    table.loc[3, "rp_grade2"] = "maybe"
    with pytest.raises(InputError, match="other than 0/1.*maybe"):
        outcome_vector(table, "rp_grade2")


def test_non_numeric_value_names_column_and_line(table):
    table["dose_mld_gy"] = table["dose_mld_gy"].astype(object)
    table.loc[4, "dose_mld_gy"] = "12,5"
    roles = infer_roles(table, "rp_grade2")
    with pytest.raises(InputError, match=r"'dose_mld_gy'.*'12,5'.*CSV lines \[6\]"):
        numeric_features(table, roles, roles.features("all"))


def test_constant_feature_is_named(tmp_path, table):
    table["rad_tumour_original_shape_Flatness"] = 1.0
    with pytest.raises(InputError, match="^1 constant or empty feature column.*rad_tumour_original_shape_Flatness"):
        train_rp(table, "rp_grade2", tmp_path / "m", fast=True)


def test_too_few_events_says_the_minimum(tmp_path, table):
    y = np.zeros(len(table), int)
    y[:8] = 1
    table["rp_grade2"] = y
    with pytest.raises(InputError, match="too few events.*8 events.*minimum is 15"):
        train_rp(table, "rp_grade2", tmp_path / "m", fast=True)
    check_events(y, 3, 2)  # 8 >= 6: fine with smaller folds
    with pytest.raises(InputError) as err:            # the hint fits the counts (it used to say 3 x 3, needing 9)
        check_events(y, 5, 3)
    assert "--outer-folds 4 --inner-folds 2 needs at least 8 events" in err.value.fix
    with pytest.raises(InputError, match="too few events for 2x2.*2 events") as err:
        check_events(np.array([1, 1] + [0] * 10), 2, 2)
    assert "2 x 2 folds (at least 4 events and 4 non-events) is the smallest" in err.value.fix
    assert "--outer-folds" not in err.value.fix
    with pytest.raises(InputError, match="at least 2 outer and 2 inner folds"):
        check_events(y, 1, 3)


def test_no_feature_columns_and_unknown_sets(tmp_path, table):
    with pytest.raises(InputError, match="no feature columns"):
        train_rp(table[["case", "rp_grade2"]].assign(x=1.0), "rp_grade2", tmp_path / "m")
    with pytest.raises(InputError, match="unknown feature set.*radiomics"):
        train_rp(table, "rp_grade2", tmp_path / "m", feature_sets="radiomics")
    with pytest.raises(InputError, match="unknown model"):
        train_rp(table, "rp_grade2", tmp_path / "m", models="svm")


def test_unreadable_and_missing_tables(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="not a readable CSV|no rows|is empty"):
        read_table(tmp_path / "empty.csv")


def test_predict_names_missing_and_misspelled_columns(rp_model_dir, rp_cohort):
    patients = rp_cohort.table.head(3).rename(columns={"dose_v20_pct": "dose_v20"}).drop(columns="clin_hb_g_dl")
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, patients)
    text = str(err.value)
    assert "2 required columns missing" in text
    assert "'dose_v20_pct' (did you mean 'dose_v20'" in text and "'clin_hb_g_dl'" in text


def test_predict_rejects_unknown_category(rp_model_dir, rp_cohort):
    patients = rp_cohort.table.head(3).copy()
    patients.loc[1, "clin_histology_cat"] = "squamos"
    with pytest.raises(InputError, match="clin_histology_cat.*'squamos'.*did you mean 'squamous'"):
        predict_rp(rp_model_dir, patients)


def test_existing_model_is_not_overwritten(rp_model_dir, rp_cohort):
    before = (rp_model_dir / "model.skops").read_bytes()
    with pytest.raises(InputError, match="already holds a model"):
        train_rp(rp_cohort.table, rp_cohort.outcome, rp_model_dir, fast=True)
    assert (rp_model_dir / "model.skops").read_bytes() == before


def test_numeric_coded_categories_match_across_tables(table):
    table["clin_stage_cat"] = [3, 2] * 30
    roles = infer_roles(table, "rp_grade2")
    coded = numeric_features(table, roles, ["clin_stage_cat"])["clin_stage_cat"]
    with_gap = table.assign(clin_stage_cat=table["clin_stage_cat"].astype(float).where(table.index != 0))
    coded_gap = numeric_features(with_gap, roles, ["clin_stage_cat"])["clin_stage_cat"]
    assert set(coded) == {"2", "3"} and set(coded_gap.dropna()) == {"2", "3"} and coded_gap.isna().sum() == 1


def test_several_tables_are_joined_on_the_patient_id(tmp_path, table):
    from lungai.rp.checks import read_tables

    clin = table[["case", "rp_grade2"] + [c for c in table.columns if c.startswith("clin_")]]
    dose = table[["case"] + [c for c in table.columns if c.startswith("dose_")]].rename(columns={"case": "patient_id"})
    rad = table[["case"] + [c for c in table.columns if c.startswith("rad_")]].iloc[::-1]  # other row order
    paths = []
    for name, df in (("clin", clin), ("dose", dose), ("rad", rad)):
        paths.append(tmp_path / f"{name}.csv")
        df.to_csv(paths[-1], index=False)
    merged = read_tables(paths).set_index("case")
    expected = pd.read_csv(paths[0]).set_index("case")
    assert set(merged.columns) == set(table.columns) - {"case"}
    assert np.allclose(merged.loc[expected.index, "dose_mld_gy"], table.set_index("case").loc[expected.index, "dose_mld_gy"])
    rad.iloc[1:].to_csv(paths[2], index=False)
    with pytest.raises(InputError, match="not hold the same patients.*1 id"):
        read_tables(paths)
    pd.concat([rad, rad.iloc[:1]]).to_csv(paths[2], index=False)
    with pytest.raises(InputError, match="more than once"):
        read_tables(paths)
    table[["case", "dose_mld_gy"]].to_csv(paths[2], index=False)
    with pytest.raises(InputError, match="repeats column.*dose_mld_gy"):
        read_tables(paths)
    table[["dose_mld_gy"]].to_csv(paths[2], index=False)
    with pytest.raises(InputError, match="no patient id column"):
        read_tables(paths)


def _as_users_have_it(n: int = 90, seed: int = 5) -> pd.DataFrame:
    """A clinical table as exported from an EHR: text categories, yes/no, 0/1, 'Not collected'."""
    table = make_cohort(n, seed=seed, n_noise=2).table
    rng = np.random.default_rng(seed)
    table = table.rename(columns={"clin_sex_cat": "clin_sex", "clin_histology_cat": "clin_histology"})
    table["clin_sex"] = np.where(table["clin_sex"].astype(str).str.startswith("f"), "F", "M")
    table["clin_smoker"] = rng.choice(["yes", "no", "Yes", "No"], n)
    weight = rng.normal(75, 12, n).round(1).astype(object)
    weight[::9] = "Not collected"
    table["clin_weight_kg"] = weight
    return table


def test_clinical_table_as_users_have_it(tmp_path):
    """Text columns are categorical without renaming, yes/no and 0/1 are binary, 'Not collected' is
    missing; the inferred types are printed and saved in the model card; predictions use them."""
    import json

    table = _as_users_have_it()
    roles = infer_roles(table, "rp_grade2")
    assert roles.type_of("clin_sex") == "categorical" and roles.how["clin_sex"] == "text values: F, M"
    assert roles.type_of("clin_histology") == "categorical"
    assert roles.type_of("clin_smoker") == "binary"
    # the explicit mapping, never the words in alphabetical order ("No/Yes read as 1/0" read backwards)
    assert roles.how["clin_smoker"] == "values read as Yes -> 1, yes -> 1, No -> 0, no -> 0"
    assert roles.type_of("clin_durvalumab") == "binary" and roles.how["clin_durvalumab"] == "values 0/1"
    assert roles.type_of("clin_weight_kg") == "numeric" and roles.type_of("dose_mld_gy") == "numeric"
    X = numeric_features(table, roles, ["clin_smoker", "clin_weight_kg"])
    assert set(X["clin_smoker"]) == {0.0, 1.0} and X["clin_weight_kg"].isna().sum() == 10
    result = train_rp(table, "rp_grade2", tmp_path / "m", models="lr", feature_sets="clinical_dosimetric",
                      fast=True, outer_folds=3, inner_folds=3, n_boot=2, make_plots=False)
    text = "\n".join(result.lines)
    assert "clin_sex: clinical, categorical (text values: F, M)" in text
    assert "clin_smoker: clinical, binary (values read as Yes -> 1, yes -> 1, No -> 0, no -> 0)" in text
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    assert card["roles"]["types"]["clin_sex"] == "categorical" and card["roles"]["types"]["clin_smoker"] == "binary"
    assert card["roles"]["how"]["clin_weight_kg"] == "numbers; 'Not collected' read as missing"
    assert card["categories"]["clin_sex"] == ["F", "M"]
    card_md = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    assert "| `clin_sex` | clinical | categorical (text values: F, M) |" in card_md
    assert "binary (values read as Yes -> 1, yes -> 1, No -> 0, no -> 0)" in card_md
    patients = _as_users_have_it(6, seed=8)
    pred, _ = predict_rp(tmp_path / "m", patients)
    assert pred["risk"].between(0, 1).all() and pred["risk"].nunique() == 6
    # a column the model does not know is not needed; a missing one, an unseen category or a word that
    # is not yes/no is named
    with pytest.raises(InputError, match="missing: 'clin_smoker'"):
        predict_rp(tmp_path / "m", patients.drop(columns="clin_smoker"))
    with pytest.raises(InputError, match="'clin_sex'.*'X'.*the model knows \\['F', 'M'\\]"):
        predict_rp(tmp_path / "m", patients.assign(clin_sex=["F", "M", "X", "F", "M", "F"]))
    with pytest.raises(InputError, match="'clin_smoker' \\(binary\\).*'maybe'"):
        predict_rp(tmp_path / "m", patients.assign(clin_smoker=["yes", "maybe", "no", "no", "yes", "no"]))


def test_type_overrides_and_free_text(tmp_path, table):
    table["clin_stage_cat"] = [1, 2, 3] * 20                                   # numbers, declared categorical
    table["clin_code"] = ["a1", "b2"] * 30
    (tmp_path / "roles.csv").write_text("column,role,type\nclin_code,clinical,numeric\n", encoding="utf-8")
    roles = infer_roles(table, "rp_grade2", tmp_path / "roles.csv")
    assert roles.type_of("clin_stage_cat") == "categorical" and roles.how["clin_stage_cat"] == "_cat suffix"
    assert roles.type_of("clin_code") == "numeric" and roles.how["clin_code"] == "role file"
    with pytest.raises(InputError, match="(?s)'clin_code' \\(numeric\\).*'a1'.*declare it categorical"):
        numeric_features(table, roles, ["clin_code"])
    table["clin_note"] = [f"seen on {d}/3/2020" for d in range(60)]             # free text
    with pytest.raises(InputError, match="(?s)'clin_note' has 60 different texts.*mark it 'ignore'"):
        infer_roles(table, "rp_grade2")
    (tmp_path / "roles2.csv").write_text("column,role,type\nclin_note,ignore,\nclin_x,clinical,ordinal\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown type 'ordinal'"):
        infer_roles(table, "rp_grade2", tmp_path / "roles2.csv")


@pytest.mark.shared_data
def test_real_clinical_table_nsclc_radiogenomics(shared_data, tmp_path):
    """The NSCLC-Radiogenomics clinical export as it is (text, yes/no, 'Not Collected', Checked/Unchecked),
    with a role file naming columns only: types are inferred and the model trains and predicts."""
    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    table = pd.read_csv(path)
    table = table[table["Recurrence"].isin(["yes", "no"])].reset_index(drop=True)
    columns = ["Gender", "Smoking status", "Histology ", "Chemotherapy", "Weight (lbs)", "Pack Years",
               "Age at Histological Diagnosis", "Tumor Location (choice=RUL)", "EGFR mutation status"]
    lines = ["column,role,type", "Case ID,id,", "Recurrence,ignore,"] + [f'"{c}",clinical,' for c in columns]
    (tmp_path / "roles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    roles = infer_roles(table, "Recurrence", tmp_path / "roles.csv")
    types = {c: roles.type_of(c) for c in columns}
    assert types == {"Gender": "categorical", "Smoking status": "categorical", "Histology ": "categorical",
                     "Chemotherapy": "binary", "Weight (lbs)": "numeric", "Pack Years": "numeric",
                     "Age at Histological Diagnosis": "numeric", "Tumor Location (choice=RUL)": "binary",
                     "EGFR mutation status": "categorical"}
    result = train_rp(table, "Recurrence", tmp_path / "m", models="lr", role_file=tmp_path / "roles.csv",
                      fast=True, outer_folds=3, inner_folds=3, n_boot=2, make_plots=False)
    assert "Gender: clinical, categorical (text values: Female, Male)" in "\n".join(result.lines)
    pred, _ = predict_rp(tmp_path / "m", table.head(5))
    assert len(pred) == 5 and pred["risk"].between(0, 1).all()


def test_duplicate_patients_are_refused_listing_them(tmp_path, table, rp_model_dir, rp_cohort):
    """A patient twice in the training table would sit in the training and the test folds at once (optimistic
    AUC): refused, with the ids; by the default id column, by the role file's id column, and a duplicated row;
    validate and predict refuse them too (their outputs per patient would be ambiguous)."""
    from lungai.rp.external import validate_rp

    tripled = pd.concat([table] * 3, ignore_index=True)
    with pytest.raises(InputError, match=r"duplicate patient IDs \(column 'case'\): 60 ids occur more than once.*SYN003-00000"):
        train_rp(tripled, "rp_grade2", tmp_path / "m", fast=True)
    users = table.rename(columns={"case": "Case ID"})
    users = pd.concat([users, users.iloc[[4]]], ignore_index=True)        # one whole row twice
    users.to_csv(tmp_path / "users.csv", index=False)
    (tmp_path / "roles.csv").write_text("column,role,type\nCase ID,id,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"users.csv\) has duplicate patient IDs \(column 'Case ID'\).*SYN003-00004"):
        train_rp(tmp_path / "users.csv", "rp_grade2", tmp_path / "m", fast=True, role_file=tmp_path / "roles.csv")
    assert not (tmp_path / "m").exists()
    twice = pd.concat([rp_cohort.table.iloc[:30], rp_cohort.table.iloc[[7]]], ignore_index=True)
    with pytest.raises(InputError, match="validation table has duplicate patient IDs.*SYN011-00007"):
        validate_rp(rp_model_dir, twice)
    with pytest.raises(InputError, match="patients table has duplicate patient IDs.*SYN011-00007"):
        predict_rp(rp_model_dir, twice)
    # lungai cohort's rows per CT series: their own case (P_1, P_2), one patient_id - refused for training
    two_cts = table.assign(patient_id=table["case"])
    two_cts.loc[5, "patient_id"] = two_cts.loc[4, "patient_id"]
    with pytest.raises(InputError, match=r"duplicate patient IDs \(column 'patient_id'\).*SYN003-00004"):
        train_rp(two_cts, "rp_grade2", tmp_path / "m", fast=True)


def test_repeated_rows_of_a_table_without_an_id_column_are_refused(tmp_path, table, rp_model_dir, rp_cohort):
    """QA (cvleak60): a table whose patient id column has a name lungai does not know (REDCap's ``record_id``, an
    ``MRN``) has no id column to check, so a patient listed twice went into the training and the test folds of the
    nested CV unnoticed: NSCLC-Radiogenomics (130 patients, 50 genes as rad_ columns) with a PERMUTED outcome gave
    nested AUC 0.46 once and 0.97 with every row twice.  Rows identical in every feature and the outcome are now
    refused (train and validate) when no id column tells the patients apart; with an id column they are different
    patients (ids decide, as before)."""
    from lungai.rp.external import validate_rp

    no_id = table.rename(columns={"case": "study_no"})          # a name that is no id column (record_id is one now)
    tripled = pd.concat([no_id] * 3, ignore_index=True)
    with pytest.raises(InputError, match=r"no patient id column and 60 rows repeated \(120 copies\)"
                                         r".*rows 1, 61, 121; rows 2, 62") as err:
        train_rp(tripled, "rp_grade2", tmp_path / "m", fast=True)
    assert "patient id column" in err.value.fix and "keep one row per patient" in err.value.fix
    assert not (tmp_path / "m").exists()
    one_twice = pd.concat([no_id, no_id.iloc[[4]]], ignore_index=True)       # one whole row twice
    with pytest.raises(InputError, match=r"1 row repeated \(1 copy\).*\(rows 5, 61\)"):
        train_rp(one_twice, "rp_grade2", tmp_path / "m", fast=True)
    twice = pd.concat([rp_cohort.table.iloc[:30], rp_cohort.table.iloc[[7]]], ignore_index=True).drop(columns="case")
    with pytest.raises(InputError, match=r"validation table has no patient id column.*rows 8, 31"):
        validate_rp(rp_model_dir, twice)
    # with an id column, two patients with the same values are two patients: not refused
    same_values = table.copy()
    same_values.loc[5, [c for c in table.columns if c != "case"]] = table.loc[4, [c for c in table.columns if c != "case"]]
    train_rp(same_values, "rp_grade2", tmp_path / "ok", fast=True, outer_folds=3, inner_folds=3, n_boot=2,
             make_plots=False)


@pytest.mark.parametrize("name", ["record_id", "Record ID", "MRN"])
def test_redcap_record_id_and_mrn_are_patient_id_columns(tmp_path, table, name):
    """QA (idcol60): REDCap's ``record_id`` (the first column of every REDCap export) and a hospital's ``MRN`` were no
    id column lungai knew: a patient listed twice - two rows differing a little, as two CT series - was trained on
    in both cross-validation folds without a word (only rows identical in everything are caught without ids;
    NSCLC-Radiogenomics with a permuted outcome and every patient twice: nested AUC 0.97).  They are id columns now
    (lungai.io.tables.ID_NAMES): the patient twice is refused by its id, its id read as text (0012 kept)."""
    from lungai.io.tables import is_id_name
    from lungai.rp.checks import id_column_of, read_table

    assert is_id_name(name)
    keyed = table.rename(columns={"case": name})
    twice = pd.concat([keyed, keyed.iloc[[4]]], ignore_index=True)
    rad = [c for c in twice.columns if str(c).startswith("rad_")]
    twice.loc[len(twice) - 1, rad[0]] = float(twice.loc[len(twice) - 1, rad[0]]) * 1.01 + 0.1     # not an exact copy
    twice.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=rf"duplicate patient IDs \(column '{name}'\).*{keyed.loc[4, name]}"):
        train_rp(tmp_path / "t.csv", "rp_grade2", tmp_path / "m", fast=True)
    assert not (tmp_path / "m").exists()
    (tmp_path / "ids.csv").write_text(f"{name},x\n0012,1\n0013,2\n", encoding="utf-8")
    read = read_table(tmp_path / "ids.csv")
    assert id_column_of(read) == name and list(read[name]) == ["0012", "0013"]


def test_table_with_another_separator_is_named(tmp_path, table):
    """A ';' or tab separated table says so (not 'outcome column ... is not in the table'), also when some header
    names contain commas."""
    from lungai.io.tables import check_delimiter

    for sep, word in ((";", "could be comma- or semicolon-separated"), ("\t", "is not comma-separated.*tab")):
        table.rename(columns={"clin_age_years": "Age (years, at diagnosis)"}).to_csv(tmp_path / "t.csv", sep=sep,
                                                                                    index=False)
        with pytest.raises(InputError, match=f"t.csv {word}"):
            train_rp(tmp_path / "t.csv", "rp_grade2", tmp_path / "m", fast=True)
    (tmp_path / "x.csv").write_text("case,a;b,c,d\n1,2,3,4\n", encoding="utf-8")
    check_delimiter(tmp_path / "x.csv", pd.read_csv(tmp_path / "x.csv"))   # one name with a ';' is just a name
    # names holding the other delimiter, quoted or in a tab-separated file, with few columns: tables that parse fine
    (tmp_path / "q.csv").write_text('case,"Lung dose (Gy; EQD2; a/b=3; total)",outcome\nP1,20,0\nP2,18,1\n',
                                    encoding="utf-8")
    check_delimiter(tmp_path / "q.csv", pd.read_csv(tmp_path / "q.csv"))
    (tmp_path / "t.tsv").write_text("Case ID\tPleural invasion (elastic, visceral, or parietal)\nR1\tNo\nR2\tYes\n",
                                    encoding="utf-8")
    check_delimiter(tmp_path / "t.tsv", pd.read_csv(tmp_path / "t.tsv", sep="\t"), "\t")


def test_tables_are_joined_on_the_role_files_id_column(tmp_path, table):
    from lungai.rp.checks import read_tables

    users = table.rename(columns={"case": "Case ID"})
    clin = users[["Case ID", "rp_grade2"] + [c for c in users.columns if c.startswith("clin_")]]
    rest = users.drop(columns=clin.columns[1:]).iloc[::-1]
    clin.to_csv(tmp_path / "a.csv", index=False)
    rest.to_csv(tmp_path / "b.csv", index=False)
    merged = read_tables([tmp_path / "a.csv", tmp_path / "b.csv"], "Case ID")
    assert "Case ID" in merged.columns and set(merged.columns) == set(users.columns)
    (tmp_path / "roles.csv").write_text("column,role,type\nCase ID,id,\n", encoding="utf-8")
    result = train_rp([tmp_path / "a.csv", tmp_path / "b.csv"], "rp_grade2", tmp_path / "m", models="lr",
                      feature_sets="clinical_dosimetric", role_file=tmp_path / "roles.csv", outer_folds=2,
                      inner_folds=2, fast=True, n_boot=2, make_plots=False)
    assert result.metrics["n"] == len(table)


def test_tables_are_joined_on_the_id_column_they_share(tmp_path, table):
    """lungai cohort's rp_table.csv has a per-series `case` (P_1: the patient's first CT series) and the patient's
    `patient_id`; a clinical CSV typed by the research group has `patient_id` only.  They are joined on the id
    column both have (`patient_id`), not on each table's first id column (`case` against `patient_id`: every
    patient was said to be missing from one of the tables, and nothing said why)."""
    from lungai.rp.checks import id_column_of, read_tables

    pid = [f"{i:03d}" for i in range(len(table))]
    clin = table[["rp_grade2"] + [c for c in table.columns if c.startswith("clin_")]].assign(patient_id=pid)
    cohort = table.drop(columns=clin.columns[:-1]).assign(case=[f"{p}_1" for p in pid], patient_id=pid)
    cohort = cohort[["case", "patient_id"] + [c for c in cohort.columns if c not in ("case", "patient_id")]]
    cohort.iloc[::-1].to_csv(tmp_path / "rp_table.csv", index=False)
    clin.to_csv(tmp_path / "clinical.csv", index=False)
    for paths in ([tmp_path / "rp_table.csv", tmp_path / "clinical.csv"],
                  [tmp_path / "clinical.csv", tmp_path / "rp_table.csv"]):
        merged = read_tables(paths)
        assert len(merged) == len(table) and id_column_of(merged) == "patient_id"
        by_id = merged.set_index("patient_id")
        assert list(by_id.loc[pid, "case"]) == [f"{p}_1" for p in pid]          # the series id kept beside it
        assert np.allclose(by_id.loc[pid, "dose_mld_gy"], table["dose_mld_gy"])  # each patient's own row
        assert list(by_id.loc[pid, "rp_grade2"]) == list(table["rp_grade2"])
    result = train_rp(paths, "rp_grade2", tmp_path / "m", models="lr", feature_sets="clinical_dosimetric",
                      outer_folds=2, inner_folds=2, fast=True, n_boot=2, make_plots=False)
    assert result.metrics["n"] == len(table)
    # tables without an id column name in common are still joined on each one's id column
    clin.rename(columns={"patient_id": "id"}).to_csv(tmp_path / "clinical.csv", index=False)
    cohort.drop(columns="case").to_csv(tmp_path / "rp_table.csv", index=False)
    assert len(read_tables(paths)) == len(table)


def test_a_letter_and_a_word_starting_with_it_in_one_column_are_warned_of(tmp_path, table):
    """A hospital export with sex written 'M' in some rows and 'Male' in others (two people typing, two systems):
    only letter case is merged, so the model has the categories M and Male (and F and Female), each learnt from
    part of the patients - said in a warning of rp train (metrics.json, the model card), not silently."""
    sex = table["clin_sex_cat"].map({"male": "Male", "female": "Female"})
    table = table.assign(clin_sex_cat=[s[0] if i % 4 == 0 and isinstance(s, str) else s for i, s in enumerate(sex)],
                         clin_stage_cat=["Stage I", "Stage II", "Stage III"] * 20)
    result = train_rp(table, "rp_grade2", tmp_path / "m", models="lr", feature_sets="clinical_dosimetric",
                      outer_folds=2, inner_folds=2, fast=True, n_boot=2, make_plots=False)
    said = [w for w in result.metrics["warnings"] if "clin_sex_cat" in w]
    assert len(said) == 1 and "'F' and 'Female'" in said[0] and "'M' and 'Male'" in said[0], result.metrics["warnings"]
    assert "recode" in said[0] and not any(said[0] in line for line in result.lines)   # (the CLI says it on stderr)
    card = (tmp_path / "m" / "model_card.json").read_text(encoding="utf-8")
    assert "'M' and 'Male'" in card
    assert not any("clin_stage_cat" in w or "clin_histology_cat" in w for w in result.metrics["warnings"])
    # words only, or letters only, are not abbreviations of one another
    from lungai.rp.columns import abbreviation_warnings

    words = pd.DataFrame({"a": ["Male", "Female", None], "b": ["M", "F", "M"], "c": ["T1", "T1a", "T2"]})
    assert abbreviation_warnings(words, ["a", "b", "c"]) == []


def test_patient_ids_that_look_like_numbers_stay_text(tmp_path, table):
    """'007' stays '007' (not 7) in one table, in joined tables (role file id or a case column) and in the
    predictions' case column."""
    from lungai.rp.checks import read_table, read_tables

    ids = [f"{i:03d}" for i in range(len(table))]
    users = table.assign(case=ids)
    users.to_csv(tmp_path / "one.csv", index=False)
    assert list(read_table(tmp_path / "one.csv")["case"]) == ids
    clin = users[["case", "rp_grade2"] + [c for c in users.columns if c.startswith("clin_")]]
    clin.rename(columns={"case": "Patient Code"}).to_csv(tmp_path / "a.csv", index=False)
    users.drop(columns=clin.columns[1:]).rename(columns={"case": "Patient Code"}).to_csv(tmp_path / "b.csv",
                                                                                         index=False)
    merged = read_tables([tmp_path / "a.csv", tmp_path / "b.csv"], "Patient Code")
    assert sorted(merged["Patient Code"]) == ids
    assert merged["rp_grade2"].dtype.kind in "if"


def test_ids_differing_only_by_leading_zeros_are_named_in_the_join_error(tmp_path):
    """Ids are read as text (007 stays 007), so a table whose ids a spreadsheet saved as 7, 12 no longer joins one
    with 007, 012: the error says that the ids differ only by leading zeros (it said only 'not the same patients')."""
    from lungai.io.tables import leading_zero_hint
    from lungai.rp.checks import read_tables

    (tmp_path / "rad.csv").write_text("case,rad_a\n007,1.5\n012,2.5\n")
    (tmp_path / "clin.csv").write_text("case,rp_grade2\n7,0\n12,1\n")
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "rad.csv", tmp_path / "clin.csv"])
    assert "leading zeros" in err.value.problem and "007 vs 7" in err.value.problem
    assert "same way in every table" in err.value.fix
    assert leading_zero_hint(["A1", "B2"], ["A01", "C"]) == "" and leading_zero_hint(["0"], ["000"]) != ""


@pytest.mark.shared_data
def test_ids_padded_differently_in_two_tables_are_named_with_the_table_lacking_them(shared_data, tmp_path):
    """QA: the real NSCLC-Radiogenomics clinical rows (Case ID R01-001, AMC-001) joined with a dose table whose ids
    were written without the numbers' padding (R01-1, as another system or a typist writes them): refused (no patient
    silently dropped), but with no hint, the fix 'give every patient a row in every table' and the ids of both tables
    in one list.  Now the pairs are named ('differ only in the zeros padding their numbers (R01-001 vs R01-1 ...') and
    each table's unmatched ids are said with the table they are in; ids written the same way join."""
    import re

    from lungai.io.tables import padding_hint
    from lungai.rp.checks import read_tables

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    real = real[real["Recurrence"].isin(["yes", "no"])].head(40)
    clinical = pd.DataFrame({"Case ID": real["Case ID"], "clin_age_years": real["Age at Histological Diagnosis"],
                             "clin_sex": real["Gender"], "rp_grade2": (real["Recurrence"] == "yes").astype(int)})
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    dose = pd.DataFrame({"patient_id": real["Case ID"], "dose_mld_gy": np.linspace(8, 20, len(real)).round(2)})
    dose.to_csv(tmp_path / "dose.csv", index=False)
    assert len(read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])) == len(real)
    unpadded = dose.assign(patient_id=dose["patient_id"].map(lambda i: re.sub(r"-0+(\d)", r"-\1", i)))
    unpadded.to_csv(tmp_path / "dose.csv", index=False)
    changed = int((unpadded["patient_id"] != dose["patient_id"]).sum())
    assert changed > 10
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    said = err.value.problem
    first = sorted(set(dose["patient_id"]) - set(unpadded["patient_id"]))[0]
    assert f"{changed} ids differ only in the zeros padding their numbers ({first} vs " in said, said
    assert f"{changed} of {tmp_path / 'clinical.csv'} not in {tmp_path / 'dose.csv'} (e.g. ['{first}'" in said, said
    assert f"{changed} of {tmp_path / 'dose.csv'} not in {tmp_path / 'clinical.csv'}" in said, said
    assert "same way in every table" in err.value.fix
    # P07-1 / P7-1, LUNG1-002 / LUNG1-2; never ids that differ in more, nor those the leading-zeros hint names
    assert "P07-1 vs P7-1" in padding_hint(["P07-1"], ["P7-1"]) and "LUNG1-002 vs LUNG1-2" in padding_hint(
        ["LUNG1-002"], ["LUNG1-2"])
    assert padding_hint(["P1"], ["P10"]) == "" and padding_hint(["007"], ["7"]) == ""


@pytest.mark.shared_data
def test_ids_with_look_alike_dashes_or_several_spelling_changes_are_named(shared_data, tmp_path):
    """QA: the real NSCLC-Radiogenomics clinical rows (AMC-001, R01-001) joined with a dose table whose ids a
    spreadsheet's autocorrect wrote with an en dash, a Unicode hyphen / non-breaking hyphen or a minus sign
    ('AMC\u2013001': looks the same) - or that differ in separator, case and padding at once ('amc_1') - were refused
    with no hint at all and the fix 'give every patient a row in every table'.  Now each pair is named (the dash by
    its code point), with the fix to write the ids the same way; still refused (ids compared as text), and ids that
    differ in more are never paired."""
    from lungai.io.tables import id_spelling_hint, ids_spelt_alike
    from lungai.model_files import loose_id
    from lungai.rp.checks import read_tables

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    real = pd.concat([real[real["Case ID"].str.startswith(p)].head(20) for p in ("AMC-", "R01-")])
    clinical = pd.DataFrame({"Case ID": real["Case ID"], "clin_age_years": real["Age at Histological Diagnosis"],
                             "clin_sex": real["Gender"], "rp_grade2": (real["Recurrence"] == "yes").astype(int)})
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    ids = list(real["Case ID"])
    dashes = ["\u2013", "\u2010", "\u2011", "\u2212"]
    typed = [i.replace("-", dashes[k % 4]) if k % 5 == 0 else i for k, i in enumerate(ids)]
    pd.DataFrame({"patient_id": typed, "dose_mld_gy": np.linspace(8, 20, len(ids)).round(2)}).to_csv(
        tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    said = err.value.problem
    assert f"{len(ids) // 5} ids differ only in their dash ({ids[0]} vs {typed[0]} (U+2013), " in said, said
    assert f"{ids[5]} vs {typed[5]} (U+2010)" in said and "look-alike of '-'" in said, said
    assert "same way in every table" in err.value.fix

    # separator, case and padding changed together (the other system writes amc_1): named, not joined
    typed = [i.lower().replace("-", "_").replace("_0", "_").replace("_0", "_") if k % 3 == 0 else i
             for k, i in enumerate(ids)]
    assert typed[0] == "amc_1" and typed[3] == "amc_4"
    pd.DataFrame({"patient_id": typed, "dose_mld_gy": np.linspace(8, 20, len(ids)).round(2)}).to_csv(
        tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    n = sum(a != b for a, b in zip(ids, typed))
    assert f"{n} ids differ only in separators, letter case or the zeros padding their numbers (AMC-001 vs amc_1, " \
        in err.value.problem, err.value.problem
    assert "same way in every table" in err.value.fix

    # each pair named once; runs of digits kept apart; a dash pair is one patient for loose_id and within one table
    assert id_spelling_hint(["LUNG1_002"], ["LUNG12"]) == "" and id_spelling_hint(["P1"], ["P10"]) == ""
    assert id_spelling_hint(["LUNG1-2"], ["LUNG1-12"]) == "" and id_spelling_hint(["AMC-001"], ["AMC-002"]) == ""
    assert id_spelling_hint(["AMC\u2013001"], ["AMC-001"]).count(" vs ") == 1
    assert loose_id("LUNG1\u2013007") == loose_id("lung1-7") == "lung1-7"
    assert ids_spelt_alike(["R01-001", "R01\u2212001", "R01-002"]) == [["R01-001", "R01\u2212001"]]


@pytest.mark.shared_data
def test_ids_whose_separator_moved_between_digits_are_never_called_one_patient(shared_data, tmp_path):
    """QA: the separator hint dropped every separator before comparing, so ids whose separator sits elsewhere between
    their digits - other numbers, other patients - were named as one patient written two ways ("LUNG1-12 vs LUNG11-2",
    "R01-011 vs R010-11: differ only in letter case or separators ... make the ids the same in both tables").  Now a
    separator between two digits stays a boundary: such ids are not paired; a separator changed, dropped next to a
    letter or its case (LUNG1_010 / lung1-010, AMC-001 / amc001) is still named.  Real NSCLC-Radiogenomics ids."""
    from lungai.io.tables import id_spelling_hint

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    ids = sorted(real["Case ID"][real["Case ID"].str.startswith("R01-")])[:30]
    assert "R01-011" in ids and "R01-101" not in ids
    clinical = pd.DataFrame({"Case ID": ids, "clin_age_years": 60 + np.arange(len(ids)) % 20,
                             "rp_grade2": np.arange(len(ids)) % 2})
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    # the other table holds another patient R010-11 (its separator after the third digit) in R01-011's place, and
    # R01-012 written r01_012 (the same patient)
    other = ["R010-11" if i == "R01-011" else "r01_012" if i == "R01-012" else i for i in ids]
    pd.DataFrame({"patient_id": other, "dose_mld_gy": np.linspace(8, 20, len(ids)).round(2)}).to_csv(
        tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    said = err.value.problem
    assert "1 id differs only in letter case or separators (R01-012 vs r01_012)" in said, said
    assert "R010-11 vs" not in said and "vs R010-11" not in said, said

    for a, b in (("LUNG1-12", "LUNG11-2"), ("R01-001", "R010-01"), ("AMC-001", "AMC-0-01"), ("LUNG1-002", "LUNG10-02"),
                 ("R01-011", "R01011"), ("LUNG1-002", "LUNG1-0 02")):
        assert id_spelling_hint([a], [b]) == "" == id_spelling_hint([b], [a]), (a, b)
    for a, b in (("LUNG1_010", "lung1-010"), ("AMC-001", "amc001"), ("P11", "p-11"), ("R01-023", "r01 023")):
        assert "1 id differs only in letter case or separators" in id_spelling_hint([a], [b]), (a, b)
    assert "or the zeros padding" in id_spelling_hint(["LUNG1_002"], ["lung1-2"])


@pytest.mark.shared_data
def test_fullwidth_and_small_hyphen_minus_are_look_alike_dashes_everywhere(shared_data, tmp_path):
    """QA: the look-alike dash table (lungai.dicom.roles.DASHES) lacked the fullwidth hyphen-minus U+FF0D (East Asian
    input methods, PDFs), the small hyphen-minus U+FE63, the small em dash U+FE58 and the hyphen bullet U+2043:
    'AMC\uff0d001' beside the real 'AMC-001' got only the generic "differ only in separators ..." hint without the
    code point of the look-alike (the two look the same), one table holding both was taken as two patients, and a
    structure 'Lungs\uff0dGTV' had no role.  Now they are dashes as the en dash is, in the one table."""
    from lungai.dicom.roles import name_role, normalise
    from lungai.io.tables import check_unique_ids
    from lungai.model_files import loose_id

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    ids = list(real["Case ID"][real["Case ID"].str.startswith("AMC-")].head(12))
    assert ids[0] == "AMC-001"
    pd.DataFrame({"Case ID": ids, "clin_age_years": 60 + np.arange(len(ids)), "rp_grade2": np.arange(len(ids)) % 2}
                 ).to_csv(tmp_path / "clinical.csv", index=False)
    dashes = ["\uff0d", "\ufe63", "\ufe58", "\u2043"]
    typed = [i.replace("-", dashes[k // 3]) if k % 3 == 0 else i for k, i in enumerate(ids)]
    pd.DataFrame({"patient_id": typed, "dose_mld_gy": np.linspace(8, 20, len(ids)).round(2)}).to_csv(
        tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    said = err.value.problem
    assert (f"4 ids differ only in their dash ({ids[0]} vs {typed[0]} (U+FF0D), {ids[3]} vs {typed[3]} (U+FE63), "
            f"{ids[6]} vs {typed[6]} (U+FE58), {ids[9]} vs {typed[9]} (U+2043))") in said, said
    assert "separators" not in said, said
    for dash in dashes:
        with pytest.raises(InputError, match="letter case or separators"):
            check_unique_ids(["AMC-001", f"AMC{dash}001", "AMC-002"], "clinical.csv", "Case ID")
        assert loose_id(f"LUNG1{dash}007") == "lung1-7"
        assert name_role(f"Lungs{dash}GTV") == "lungs_minus_gtv" and normalise(f"Lung{dash}R") == "lung r"


@pytest.mark.shared_data
def test_ids_differing_by_invisible_characters_are_named_by_code_point(shared_data, tmp_path):
    """QA: ids copied from a web page, PDF or word processor with an invisible character - a soft hyphen U+00AD inside
    ('R01-0\u00ad01'), a zero-width space U+200B or a left-to-right mark U+200E - beside the real NSCLC-Radiogenomics
    ids: a soft hyphen between digits got no hint at all, the others a hint naming two ids that look the same
    ("R01-001 vs R01-001 ... differ only in separators"), and one table holding both was taken as two patients.  Now
    they are named by the invisible character's code point, with the fix (type the id again); still not joined."""
    from lungai.io.tables import check_unique_ids, id_spelling_hint
    from lungai.model_files import loose_id

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    real = pd.read_csv(path, dtype=str, keep_default_na=False)
    ids = list(real["Case ID"][real["Case ID"].str.startswith("R01-")].head(12))
    assert ids[:2] == ["R01-001", "R01-002"]
    pd.DataFrame({"Case ID": ids, "clin_age_years": 60 + np.arange(len(ids)), "rp_grade2": np.arange(len(ids)) % 2}
                 ).to_csv(tmp_path / "clinical.csv", index=False)
    typed = list(ids)
    typed[0] = ids[0][:5] + "\u00ad" + ids[0][5:]            # R01-0<soft hyphen>01
    typed[4] = "\u200b" + ids[4]
    typed[8] = ids[8] + "\u200e"
    pd.DataFrame({"patient_id": typed, "dose_mld_gy": np.linspace(8, 20, len(ids)).round(2)}).to_csv(
        tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match="not hold the same patients") as err:
        read_tables([tmp_path / "clinical.csv", tmp_path / "dose.csv"])
    said = err.value.problem
    assert (f"3 ids differ only by invisible characters ({ids[0]} vs {typed[0]} (U+00AD), {ids[4]} vs {typed[4]} "
            f"(U+200B), {ids[8]} vs {typed[8]} (U+200E)): a soft hyphen, zero-width space or direction mark") in said, said
    assert "separators" not in said, said
    for odd in (typed[0], typed[4], typed[8]):
        with pytest.raises(InputError, match="letter case or separators"):
            check_unique_ids(ids + [odd], "dose.csv", "patient_id")
        assert loose_id(odd) == loose_id(ids[typed.index(odd)])
    # a soft hyphen where the dash was: named with its code point too
    assert "(AMC\u00ad001 (U+00AD) vs AMC-001)" in id_spelling_hint(["AMC\u00ad001"], ["AMC-001"])


def test_a_long_radiomics_table_is_refused_as_such_with_the_fix(tmp_path):
    """QA: the CSV of lungai radiomics-batch / radiomics without --wide (one row per feature) given to rp train beside
    a clinical table was refused as "duplicate patient IDs ... keep one row per patient" - the wrong fix.  Now it is
    named as a long radiomics table, with the fix (the same command again with --wide, which resumes); the wide table
    it writes joins."""
    from lungai.radiomics import load_params
    from lungai.radiomics.batch import run_batch
    from lungai.radiomics.manifest import write_synthetic_cohort
    from lungai.rp.checks import LONG_FIX

    manifest = write_synthetic_cohort(tmp_path / "c", 2, seed=5)
    params = load_params("default", feature_classes=["firstorder"])
    run_batch(manifest, tmp_path / "radiomics.csv", params, workers=0, segments=["tumour"])
    cases = sorted(pd.read_csv(tmp_path / "radiomics.csv", dtype=str)["case"].unique())
    pd.DataFrame({"case": cases, "clin_age_years": [61, 70], "rp_grade2": [0, 1]}).to_csv(tmp_path / "clinical.csv",
                                                                                          index=False)
    tables = [tmp_path / "clinical.csv", tmp_path / "radiomics.csv"]
    for given in (tables, tables[1:]):
        with pytest.raises(InputError, match="is a radiomics table in long format") as err:
            read_tables(given)
        assert "duplicate" not in err.value.problem and err.value.fix == LONG_FIX and "--wide" in LONG_FIX
    again = run_batch(manifest, tmp_path / "radiomics.csv", params, workers=0, segments=["tumour"], wide=True)
    assert "0 cases extracted, 2 already done" in again.text()                 # resumed, as the fix says
    joined = read_tables(tables)
    assert sorted(joined["case"]) == cases and any(c.startswith("rad_tumour_") for c in joined.columns)


def test_unreadable_tables_say_how_to_fix(tmp_path, table):
    """A Latin-1 table names UTF-8 in the fix; a European spreadsheet's export (';' and decimal commas) is 'not
    comma-separated' (not a tokenizing error); a folder is a folder; a failed rp train leaves no output folder."""
    from lungai.cli import main

    (tmp_path / "latin.csv").write_bytes("case,clin_site,rp_grade2\nP1,Gen\xe8ve,1\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8") as err:
        read_table(tmp_path / "latin.csv")
    assert "UTF-8" in err.value.fix and "CSV UTF-8" in err.value.fix
    euro = table.head(20).copy()
    euro["clin_weight"] = 72.5
    (tmp_path / "euro.csv").write_text(euro.to_csv(sep=";", index=False, decimal=","), encoding="utf-8")
    with pytest.warns(InputNote, match="read as semicolon-separated with decimal commas"):
        read = read_table(tmp_path / "euro.csv")       # a decimal-comma locale's 'CSV': read (1,5 = 1.5)
    assert read["clin_weight"].tolist() == [72.5] * 20
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="is a folder, not a CSV file"):
        read_table(tmp_path / "dir.csv")
    (tmp_path / "header.csv").write_text("case,rp_grade2\n", encoding="utf-8")
    table.to_csv(tmp_path / "t.csv", index=False)
    for args in (["header.csv", "--outcome", "rp_grade2"], ["t.csv", "--outcome", "nope"]):
        out = tmp_path / "model"
        assert main(["rp", "train", str(tmp_path / args[0]), *args[1:], "-o", str(out), "--fast"]) == 2
        assert not out.exists()


def test_spellings_differing_only_in_case_are_one_category(rp_messy_model):
    """M / male / Male / MALE were four categories (one patient, four risks; FEMALE refused 'did you mean MALE'):
    spellings differing only in case are one category, the most frequent spelling, at training and prediction."""
    import json

    from lungai.rp.columns import category_spellings, suggest

    table, model = rp_messy_model
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    assert card["categories"]["clin_sex"] == ["F", "Female", "M", "Male"]
    assert card["category_rules"] == {"case": "merged", "none": "category"}
    how = card["roles"]["how"]["clin_sex"]
    assert how == ("text values: F, Female, M, Male; spellings differing only in case are one category: "
                   "'FEMALE', 'female' -> 'Female'; 'MALE', 'male' -> 'Male'")
    assert sum(card["training_data"]["features"]["clin_sex"]["counts"].values()) == 60
    assert category_spellings(["b", "B", "B", "a", "A"]) == {"B": "B", "b": "B", "A": "A", "a": "A"}
    assert suggest("FEMALE", ["MALE", "Female", "female"]).startswith(" (did you mean 'Female', 'female'")
    # one patient, one risk whatever the case of the value (spaces around ignored)
    patient = read_table(table).iloc[[5]]
    spellings = ["Male", "male", "MALE", " mAlE "]
    pred, _ = predict_rp(model, pd.concat([patient.assign(case=f"p{k}", clin_sex=s)
                                           for k, s in enumerate(spellings)]))
    assert pred["risk"].nunique() == 1
    pred, _ = predict_rp(model, pd.concat([patient.assign(case=f"p{k}", clin_sex=s)
                                           for k, s in enumerate(["FEMALE", "female", "Female"])]))
    assert pred["risk"].nunique() == 1
    with pytest.raises(InputError, match=r"'Mal' \(did you mean 'Male'.*the model knows \['F', 'Female', 'M', 'Male'\]"):
        predict_rp(model, patient.assign(clin_sex="Mal"))


def test_model_card_without_category_rules_reads_categories_as_before(rp_messy_model, tmp_path):
    """A card of an older lungai (no category_rules): every spelling its own category, "None" missing."""
    import json
    import shutil

    table, model = rp_messy_model
    old = tmp_path / "old"
    shutil.copytree(model, old)
    card = json.loads((old / "model_card.json").read_text(encoding="utf-8"))
    del card["category_rules"]
    (old / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    patient = read_table(table).iloc[[5]]
    with pytest.raises(InputError, match=r"'MALE' \(did you mean 'Male'"):
        predict_rp(old, patient.assign(clin_sex="MALE"))
    pred, _ = predict_rp(old, patient.assign(clin_sex="Male", clin_comorb="None"))
    assert pred["imputed"].iloc[0] == "clin_comorb"


def test_none_is_a_category_and_every_missing_word_is_reported(rp_messy_model):
    """pandas read "None" (and NULL, NA, #N/A ...) as missing before lungai saw it: "None" (no comorbidity) was
    imputed as the most frequent category, unreported.  Now it is a category of a categorical column; in a numeric
    column it is missing, as NA / #N/A, and every such word is reported."""
    import json

    table, model = rp_messy_model
    df = read_table(table)
    assert (df["clin_comorb"] == "None").sum() == 20
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    assert card["categories"]["clin_comorb"] == ["COPD", "ILD", "None"]
    assert card["roles"]["how"]["clin_comorb"] == "text values: COPD, ILD, None"
    assert card["training_data"]["features"]["clin_comorb"]["missing_pct"] == 0.0
    assert card["roles"]["how"]["clin_weight_kg"] == "numbers; '#N/A', 'NA', 'None' read as missing"
    assert card["training_data"]["features"]["clin_weight_kg"]["missing_pct"] == 5.0
    pred, _ = predict_rp(model, table)
    assert (pred["imputed"].fillna("") == "clin_weight_kg").sum() == 3 and \
        not pred["imputed"].fillna("").str.contains("clin_comorb").any()
    # NA / an empty cell in the outcome is said to be missing, as before
    df["rp_grade2"] = df["rp_grade2"].astype(object)
    df.loc[2, "rp_grade2"] = "NA"
    with pytest.raises(InputError, match=r"'rp_grade2' is empty or missing in 1 row \(CSV lines \[4\]\)"):
        outcome_vector(df, "rp_grade2")


@pytest.mark.parametrize("value", ["inf", "-Inf", np.inf])
def test_infinity_in_a_numeric_feature_names_column_and_line(tmp_path, table, value):
    """inf in a numeric column gave sklearn's "Input X contains infinity" traceback in rp train and rp predict."""
    table["dose_mld_gy"] = table["dose_mld_gy"].astype(object)
    table.loc[4, "dose_mld_gy"] = value
    roles = infer_roles(table, "rp_grade2")
    assert roles.type_of("dose_mld_gy") == "numeric"
    with pytest.raises(InputError, match=r"'dose_mld_gy' \(numeric\).*'-?[iI]nf'.*that is not a finite number.*CSV lines \[6\]"):
        numeric_features(table, roles, roles.features("all"))
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=r"'dose_mld_gy'.*not a finite number.*CSV lines \[6\]"):
        train_rp(tmp_path / "t.csv", "rp_grade2", tmp_path / "m", models="lr", fast=True, make_plots=False)


def test_infinity_at_prediction_names_column_and_line(rp_messy_model):
    table, model = rp_messy_model
    patients = read_table(table).head(3)
    patients["dose_mld_gy"] = patients["dose_mld_gy"].astype(object)
    patients.loc[1, "dose_mld_gy"] = "Inf"
    with pytest.raises(InputError, match=r"'dose_mld_gy'.*\['Inf'\].*that is not a finite number.*CSV lines \[3\]"):
        predict_rp(model, patients)


def test_decimal_categories_are_numbers_whether_or_not_the_column_has_a_missing_word(tmp_path):
    """A _cat column 1.0, 2.0, 3.0 with an NA cell is read as text (only empty cells are missing): "1.0" was a
    category of its own, so a prediction table without NA (read as numbers: 1.0 -> "1") was refused, and a card of
    an older lungai (categories "1", "2", "3") refused its own training table."""
    import json
    import shutil

    from lungai.rp.checks import category_text
    from lungai.rp.cohort import make_cohort

    assert {category_text(v) for v in (2, 2.0, "2", "2.0", " 2.00 ", "+2.0", "2.", np.float64(2.0))} == {"2"}
    assert category_text("2.50") == category_text(2.5) == "2.5" and category_text("2.0a") == "2.0a"
    df = make_cohort(60, seed=3, n_noise=0).table[["case", "rp_grade2", "clin_age_years", "dose_mld_gy"]]
    stage = np.random.default_rng(0).choice(["1.0", "2.0", "3.0"], len(df))
    stage[:6] = "NA"
    df["clin_stage_cat"] = stage
    df.to_csv(tmp_path / "train.csv", index=False)
    df.iloc[[20]].to_csv(tmp_path / "one.csv", index=False)       # no NA: read as the number 1.0 / 2.0 / 3.0
    model = tmp_path / "model"
    train_rp(tmp_path / "train.csv", "rp_grade2", model, models="lr", fast=True, outer_folds=2, inner_folds=2,
             n_boot=2, make_plots=False)
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    assert card["categories"]["clin_stage_cat"] == ["1", "2", "3"]
    pred, _ = predict_rp(model, tmp_path / "one.csv")
    assert len(pred) == 1 and pred["risk"].notna().all()
    # cards that kept the text as written ("1.0": lungai 9895460) or of an older lungai (no category_rules, "1")
    for categories, rules in ((["1.0", "2.0", "3.0"], card["category_rules"]), (["1", "2", "3"], None)):
        old = tmp_path / f"old_{rules is None}"
        shutil.copytree(model, old)
        card_old = dict(card, categories=dict(card["categories"], clin_stage_cat=categories))
        if rules is None:
            del card_old["category_rules"]
        (old / "model_card.json").write_text(json.dumps(card_old), encoding="utf-8")
        for table in (tmp_path / "train.csv", tmp_path / "one.csv"):
            pred, _ = predict_rp(old, table)
            assert pred["risk"].notna().all()


def test_bad_values_of_joined_tables_name_the_file_and_its_line_as_written(tmp_path, table):
    """Review: with several CSVs joined (rp train a.csv b.csv), an inf on line 5 of b.csv was reported on "CSV lines
    [2]" (the row of the joined table, no file named), and a cell 1e999 was shown as 'inf'."""
    a = table[["case", "rp_grade2", "clin_age_years"]].copy()
    b = table[["case", "dose_mld_gy"]].iloc[::-1].astype(object).reset_index(drop=True)   # another row order
    b.loc[3, "dose_mld_gy"] = "1e999"                                                      # line 5 of b.csv
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    pattern = (r"'dose_mld_gy' \(numeric\) has a value \['1e999'\] that is not a finite number.*"
               r"\(lines \[5\] of .*b\.csv\)")
    with pytest.raises(InputError, match=pattern):
        train_rp([tmp_path / "a.csv", tmp_path / "b.csv"], "rp_grade2", tmp_path / "m", models="lr", fast=True,
                 make_plots=False)
    a["clin_age_years"] = a["clin_age_years"].astype(object)
    a.loc[[1, 6], "clin_age_years"] = "old"
    a.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(InputError, match=r"'clin_age_years'.*\['old'\].*\(lines \[3, 8\] of .*a\.csv\)"):
        numeric_features(read_tables([tmp_path / "b.csv", tmp_path / "a.csv"]), infer_roles(a, "rp_grade2"),
                         ["clin_age_years"])
    b.to_csv(tmp_path / "one.csv", index=False)                     # one table: its lines, the value as written
    with pytest.raises(InputError, match=r"\['1e999'\] that is not a finite.*\(CSV lines \[5\]\)"):
        numeric_features(read_tables(tmp_path / "one.csv"), infer_roles(b, None), ["dose_mld_gy"])


def test_dose_units_are_checked_in_train_validate_and_predict(tmp_path, table, rp_model_dir, rp_cohort):
    """QA: a mean lung dose in cGy (400-2288) or V20 as fractions (0.07-0.45) trained silently, and validation /
    prediction gave every risk ~1 with only "outside the training range".  The dose_*_gy / dose_*_pct columns are
    checked against their unit in the one shared path (numeric_features) and refused with the fix."""
    from lungai.rp.external import validate_rp

    cgy = table.assign(dose_mld_gy=table["dose_mld_gy"] * 100)
    with pytest.raises(InputError, match=r"dose_mld_gy.*above 60 Gy") as err:
        train_rp(cgy, "rp_grade2", tmp_path / "a", fast=True, outer_folds=2, inner_folds=2)
    assert "dose_mld_gy looks like cGy (all its values): divide by 100" in err.value.fix
    assert not (tmp_path / "a" / "model.skops").exists()
    fraction = table.assign(dose_v20_pct=table["dose_v20_pct"] / 100)
    with pytest.raises(InputError, match=r"dose_v20_pct.*no value above 1 %") as err:
        train_rp(fraction, "rp_grade2", tmp_path / "b", fast=True, outer_folds=2, inner_folds=2)
    assert "dose_v20_pct looks like a fraction (0-1): multiply by 100" in err.value.fix
    over = table.copy()
    over.loc[4, "dose_v13_pct"] = 130.0
    with pytest.raises(InputError, match=r"dose_v13_pct.*outside 0-100: value \['130.0'\] \(CSV lines \[6\]\)"):
        train_rp(over, "rp_grade2", tmp_path / "c", fast=True, outer_folds=2, inner_folds=2)
    # validation table in cGy: refused, not every risk ~1
    val = rp_cohort.table.head(40).copy()
    val.assign(dose_mld_gy=val["dose_mld_gy"] * 100).to_csv(tmp_path / "val_cgy.csv", index=False)
    with pytest.raises(InputError, match="validation table|dose_mld_gy") as err:
        validate_rp(rp_model_dir, tmp_path / "val_cgy.csv", tmp_path / "v")
    assert "looks like cGy" in err.value.fix
    # one patient of several in cGy, another with V20 as a fraction (its x 100 in the training range): both named
    patients = rp_cohort.table.head(4).drop(columns="rp_grade2").reset_index(drop=True)
    patients.loc[0, "dose_mld_gy"] = 1686.0
    patients.loc[2, "dose_v20_pct"] = patients.loc[2, "dose_v20_pct"] / 100
    patients.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, tmp_path / "p.csv")
    assert "'dose_mld_gy'" in str(err.value) and "['1686.0'] (CSV lines [2])" in str(err.value)
    assert "'dose_v20_pct'" in str(err.value) and "(CSV lines [4])" in str(err.value)
    assert "divide by 100 (e.g. 1686 -> 16.86 Gy)" in err.value.fix
    assert "this value of dose_v20_pct looks like a fraction (0-1): multiply it by 100" in err.value.fix
    # plausible values pass: a high but possible MLD (out of the training range only), V20 0 %, a clinical _pct
    ok = rp_cohort.table.head(3).drop(columns="rp_grade2").reset_index(drop=True)
    ok.loc[0, "dose_mld_gy"], ok.loc[1, "dose_v20_pct"] = 45.0, 0.0
    pred, _ = predict_rp(rp_model_dir, ok)
    assert pred["risk"].between(0, 1).all()


def test_real_small_percentages_are_not_taken_for_fractions():
    """Review: a patient's V30 0.8 % with training V30 0-27.3 % was refused as a fraction (the cohort rule "all at
    most 1" ran on one row), and a cohort's V60 all under 1 % (real for stage III plans) too.  With a model: a
    value is a fraction only well below its training range with x 100 inside it; a cohort: only for V5-V20."""
    from lungai.rp.checks import check_units

    def check(values, col, trained=None):
        df = pd.DataFrame({col: values})
        check_units(df, df.astype(float), [col], trained)

    check([0.8], "dose_v30_pct", {"dose_v30_pct": {"min": 0.0, "max": 27.3}})
    check([0.3], "dose_v20_pct", {"dose_v20_pct": {"min": 0.5, "max": 40.0}})
    check([0.0, 0.5, 0.9] * 40, "dose_v60_pct")
    with pytest.raises(InputError, match="looks like a fraction"):
        check([0.3], "dose_v20_pct", {"dose_v20_pct": {"min": 7.3, "max": 44.5}})
    with pytest.raises(InputError, match="no value above 1 %"):
        check([0.07, 0.2, 0.45] * 40, "dose_v20_pct")
    with pytest.raises(InputError, match="no value above 1 %"):
        check([0.1, 0.3, 0.6] * 40, "dose_v5_pct")


def test_a_fractional_v_level_column_as_dose_features_names_it_is_checked_for_fractions():
    """QA rpvalidate65: ``lungai dose-features --v-levels 2.5`` (or 0.5, 7.5) writes ``dose_v2p5_pct``
    (:func:`lungai.dose.features.v_column`), but the fraction check of a cohort's V5-V20 read the level of
    ``dose_v<level>_pct`` with a decimal point only: a training table's V2.5 all as fractions (0.2-0.9 for
    20-90 %) was trained on without a word, as V5 so written was refused.  Its level is read either way."""
    from lungai.dose.features import v_column
    from lungai.rp.checks import check_units
    from lungai.rp.columns import pct_dose_level

    assert [pct_dose_level(v_column(v)) for v in (0.5, 1, 2.5, 7.5, 20)] == [0.5, 1.0, 2.5, 7.5, 20.0]
    assert pct_dose_level("dose_v2.5_pct") == 2.5 and pct_dose_level("dose_vp5_pct") is None

    def check(values, col):
        df = pd.DataFrame({col: values})
        check_units(df, df.astype(float), [col])

    for level in (0.5, 2.5, 7.5):
        with pytest.raises(InputError, match="no value above 1 %") as err:
            check([0.2, 0.45, 0.9] * 40, v_column(level))                        # every row a fraction
        assert f"{v_column(level)} looks like a fraction (0-1): multiply by 100" in err.value.fix
        with pytest.raises(InputError, match="at most 1, under half their minimum, that look like fractions"):
            check([40.0, 55.5, 72.0, 90.0] * 20 + [0.5, 0.6], v_column(level))   # two rows of fractions
    check([40.0, 55.5, 72.0, 90.0] * 20, v_column(2.5))                          # percentages pass
    check([0.1, 0.3, 0.6] * 40, v_column(32.5))                                  # a high level: small values are real


def test_a_training_table_with_some_rows_of_fractions_is_refused(tmp_path, table):
    """QA rpcard64: a training table joined from two exports, one writing V5-V20 as fractions (0.05-0.45) for a
    quarter of the patients and the other as percentages, was trained on without a word (the cohort rule refused a
    column only when all its values were at most 1): the model learnt V20 0.138-45 % and took the next fraction for a
    real small V20.  Refused by the rule of one patient's value (:func:`lungai.rp.checks._fractions`), the column's
    values above 1 as its reference, where several rows are fractions and they are most of its values at most 1 - not
    a real small V20 or a tail of them."""
    from lungai.rp.checks import check_units

    mixed = table.copy().reset_index(drop=True)
    quarter = mixed.index[: len(mixed) // 4]
    mixed.loc[quarter, "dose_v20_pct"] = mixed.loc[quarter, "dose_v20_pct"] / 100
    with pytest.raises(InputError) as err:
        train_rp(mixed, "rp_grade2", tmp_path / "m", fast=True, outer_folds=2, inner_folds=2)
    assert "column 'dose_v20_pct' (a percentage, by its name; its other values" in str(err.value)
    assert "at most 1, under half their minimum, that look like fractions" in str(err.value)
    assert "(CSV lines [2, 3, 4, 5, 6]" in str(err.value)
    assert "these values of dose_v20_pct look like fractions (0-1): multiply them by 100" in err.value.fix
    assert "give every row the same unit" in err.value.fix
    assert not (tmp_path / "m" / "model.skops").exists()

    def check(values, col="dose_v20_pct"):
        df = pd.DataFrame({col: values})
        check_units(df, df.astype(float), [col])

    percent = [5.5, 12.0, 20.4, 31.0, 44.5] * 20
    with pytest.raises(InputError, match="at most 1, under half their minimum, that look like fractions"):
        check(percent + [0.3, 0.25])               # two rows of fractions
    check(percent + [0.3])                         # one small value: a real V20 of a small target is possible
    check([0.3, 0.5, 0.8, 1.2] + percent)          # a tail of real small values
    check([0.1, 0.2, 0.3] + percent, "dose_v30_pct")   # V30 and above: small values are real


def test_every_fraction_of_a_mixed_column_is_named_at_once(tmp_path, capsys):
    """QA rpfollow64: an 'rp synth' cohort with V5 of 40 of 160 patients as fractions was refused naming 38 of them -
    those whose x 100 lay in the range of the column's percentages (24.7-94.6 %); V5 0.198 and 0.214 (19.8 %, 21.4 %)
    were not, and once the rows named were fixed, a lone value at most 1 was no longer refused: trained on as 0.2 %.
    Every value at most 1 under half the percentages' minimum is named; one nearer them is named to check."""
    from lungai.cli import main
    from lungai.rp.checks import check_units

    csv = tmp_path / "cohort.csv"
    assert main(["rp", "synth", "-o", str(csv), "-n", "160", "--seed", "3"]) == 0
    cohort = read_table(csv)
    rows = cohort.index[:40]
    cohort.loc[rows, "dose_v5_pct"] = cohort.loc[rows, "dose_v5_pct"] / 100
    percent = cohort.loc[cohort.index[40:], "dose_v5_pct"]
    low = round(percent.min() * 0.8 / 100, 3)      # a fraction whose x 100 is below every percentage
    cohort.loc[rows[-1], "dose_v5_pct"] = low
    cohort.to_csv(tmp_path / "mixed.csv", index=False)
    capsys.readouterr()
    assert main(["rp", "train", str(tmp_path / "mixed.csv"), "--outcome", "rp_grade2", "-o", str(tmp_path / "m"),
                 "--fast"]) == 2
    err = capsys.readouterr().err
    assert "column 'dose_v5_pct'" in err and "40 rows in all" in err, err
    assert f"values ['{low}', " in err, err
    assert not (tmp_path / "m").exists()
    # the user multiplies every value the message names by 100: nothing at most 1 is left
    table = read_table(tmp_path / "mixed.csv")
    named = table["dose_v5_pct"] <= 1
    assert named.sum() == 40
    table.loc[named, "dose_v5_pct"] *= 100
    check_units(table, table[["dose_v5_pct"]].astype(float), ["dose_v5_pct"])

    def refused(values):
        df = pd.DataFrame({"dose_v20_pct": values})
        with pytest.raises(InputError) as err:
            check_units(df, df.astype(float), ["dose_v20_pct"])
        return err.value

    # fractions beside percentages of 1.2-44.5 %: 0.3 and 0.25 named, 0.8 (0.8 % or 80 %?) named to check
    err = refused([5.5, 12.0, 20.4, 31.0, 44.5, 1.2] * 20 + [0.3, 0.25, 0.8])
    assert "values ['0.25', '0.3'] (CSV lines [122, 123])" in str(err), str(err)
    assert "check its value at most 1 not under half its other values' minimum too (CSV lines [124])" in err.fix


def test_unknown_categories_of_every_column_reported_at_once(rp_model_dir, rp_cohort):
    """QA: one column per run; every offending column is named in one message."""
    patients = rp_cohort.table.head(3).copy()
    cats = [c for c in patients.columns if c.endswith("_cat")]
    assert len(cats) >= 2
    for c in cats:
        patients.loc[patients.index[1], c] = "zzz_unknown"
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, patients)
    assert f"{len(cats)} columns with unknown categories" in str(err.value)
    assert all(f"column {c!r} has an unknown category 'zzz_unknown'" in str(err.value) for c in cats)


def test_a_feature_set_with_the_same_columns_as_another_is_fitted_once_and_said(tmp_path, table):
    """QA (a cohort table without radiomic columns, e.g. cohort run without images' radiomics or a clinical +
    dosimetric spreadsheet): rp train fitted and reported 'all/lr' and 'all/rf' - the same columns, the same figures
    as 'clinical_dosimetric' - and offered them to the nested selection as two more candidates.  Fitted once now,
    with a note; the locked model and its figures are those of the table's one distinct set."""
    no_rad = table[[c for c in table.columns if not c.startswith("rad_")]]
    kw = dict(models="lr", fast=True, outer_folds=3, inner_folds=2, seed=0, make_plots=False)
    res = train_rp(no_rad, "rp_grade2", tmp_path / "m", **kw)
    assert set(res.metrics["results"]) == {"clinical_dosimetric/lr"}
    assert res.metrics["feature_sets_same_as"] == {"all": "clinical_dosimetric"}
    assert ("note: feature set 'all' has the same columns as 'clinical_dosimetric' (no radiomic columns in the "
            "table): fitted once, as 'clinical_dosimetric'") in res.lines
    # its figures are the ones the set had when fitted beside its twin
    alone = train_rp(no_rad, "rp_grade2", tmp_path / "m2", feature_sets="clinical_dosimetric", **kw)
    assert alone.metrics["results"]["clinical_dosimetric/lr"]["auc"] == res.metrics["results"]["clinical_dosimetric/lr"]["auc"]
    # radiomic columns only: 'all' is 'radiomic'
    only_rad = table[[c for c in table.columns if c.startswith("rad_") or c in ("case", "rp_grade2")]]
    res = train_rp(only_rad, "rp_grade2", tmp_path / "m3", **kw)
    assert res.metrics["feature_sets_same_as"] == {"all": "radiomic"} and set(res.metrics["results"]) == {"radiomic/lr"}


def test_all_without_radiomic_columns_says_so(tmp_path, table):
    """QA: ``rp train`` on a clinical + dose table (no rad_ columns, as most clinics have) reported an ``all`` model
    (clinical + dosimetric + radiomic) without a word that its radiomic part was absent: the 'all' model was the
    clinical_dosimetric one.  The set's missing part is named, printed and kept in metrics.json and the card."""
    no_rad = table[[c for c in table.columns if not c.startswith("rad_")]]
    # 'all' asked for alone (with the default sets it is 'clinical_dosimetric' fitted once: the test above)
    result = train_rp(no_rad, "rp_grade2", tmp_path / "m", models="lr", feature_sets="all", fast=True, outer_folds=2,
                      inner_folds=2, n_boot=2, make_plots=False)
    note = [w for w in result.metrics["warnings"] if w.startswith("feature set 'all' has no radiomic columns")]
    assert len(note) == 1 and "only the clinical and dosimetric features" in note[0] and "rad_*" in note[0]
    assert not [w for w in result.metrics["warnings"] if "'clinical_dosimetric'" in w]   # that set is complete
    assert (tmp_path / "m" / "metrics.json").read_text(encoding="utf-8").count("has no radiomic columns") == 1
    full = train_rp(table, "rp_grade2", tmp_path / "f", models="lr", feature_sets="all", fast=True, outer_folds=2,
                    inner_folds=2, n_boot=2, make_plots=False)
    assert not [w for w in full.metrics["warnings"] if "has no" in w]


def test_role_file_names_the_id_and_a_feature_in_another_case(tmp_path, table):
    """QA: a role file written by hand ('case id' role id, 'smoking status' clinical) for a spreadsheet export whose
    headers are 'Case ID' / 'Smoking Status ' was refused ("names column(s) that are not in the table: 'case id'
    (did you mean 'Case ID'?)") although the automatic id detection and the features match such spellings
    (lungai.io.tables.match_headers): the header is used."""
    t = table.rename(columns={"case": "Case ID"}).assign(**{"Smoking Status ": ["Never", "Former", "Current"] * 20})
    t.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "roles.csv").write_text("column,role\ncase id,id\nsmoking status,clinical\n", encoding="utf-8")
    roles = infer_roles(read_table(tmp_path / "t.csv"), "rp_grade2", tmp_path / "roles.csv")
    assert roles.id_column == "Case ID" and roles.roles["Smoking Status "] == "clinical"
    assert "Smoking Status " in roles.categorical and "Case ID" not in roles.roles
    (tmp_path / "two.csv").write_text("column,role\ncase id,id\n", encoding="utf-8")
    with pytest.raises(InputError, match="2 columns.*'CASE ID'"):        # two spellings of it: refused, named
        infer_roles(t.assign(**{"CASE ID": t["Case ID"]}), "rp_grade2", tmp_path / "two.csv")


def test_numbers_written_with_a_decimal_comma_are_refused_not_made_categories(tmp_path, table):
    """QA (mm55): a spreadsheet in a decimal-comma locale saved as a comma-separated CSV quotes its numbers ("2,35").
    A column written so in every row was a category per value (dose per fraction '1,8' / '2,0' / '2,75': one-hot,
    no order, nothing said but the type line) or refused as "free text, dates or identifiers" with the fix "declare it
    categorical" (FEV1 '2,35'). Both are refused as numbers with a decimal comma, naming values, lines and the fix."""
    from lungai.io.tables import DECIMAL_COMMA_FIX

    table = table.copy()
    table["clin_dose_per_fraction_gy"] = ["1,8", "2,0", "2,75"] * 20
    with pytest.raises(InputError, match=r"'clin_dose_per_fraction_gy' \(numeric\) has values \['1,8', '2,0', "
                                         r"'2,75'\] written with a decimal comma \(type 1.8: a decimal point") as err:
        train_rp(table, "rp_grade2", tmp_path / "m1", fast=True, models=("lr",))
    assert DECIMAL_COMMA_FIX in err.value.fix and not (tmp_path / "m1").exists()
    table["clin_dose_per_fraction_gy"] = ["1.8", "2.0", "2.75"] * 20
    table["clin_fev1_l"] = [f"{1.5 + k / 50:.2f}".replace(".", ",") for k in range(60)]     # 60 different values
    roles = infer_roles(table, "rp_grade2")
    assert roles.type_of("clin_dose_per_fraction_gy") == roles.type_of("clin_fev1_l") == "numeric"
    with pytest.raises(InputError, match=r"'clin_fev1_l' \(numeric\) .*'1,50'.* written with a decimal comma"):
        numeric_features(table, roles, ["clin_fev1_l"])
    table["clin_fev1_l"] = table["clin_fev1_l"].str.replace(",", ".")
    assert numeric_features(table, infer_roles(table, "rp_grade2"), ["clin_fev1_l"])["clin_fev1_l"].iloc[1] == 1.52
    table["clin_code_cat"] = ["1,2", "2,3"] * 30          # declared categorical: codes, kept as they are
    assert infer_roles(table, "rp_grade2").type_of("clin_code_cat") == "categorical"


@pytest.mark.parametrize("header", ["Patient ID", "PatientID", "Case ID", "case_id", "Subject_ID", " patient id "])
def test_rp_reads_the_id_headers_cohort_and_stage_read(tmp_path, table, header):
    """A research group's clinical CSV with a 'Patient ID' (or PatientID, 'Case ID' ...) header: read by
    ``lungai cohort --clinical`` and ``lungai stage`` as the patient id, by ``lungai rp`` only with a role file (the
    ids were read as numbers - "007" became 7 - and the table could not be joined: "has no patient id column").
    One list of id names for every table lungai reads."""
    from lungai.dicom.cohort import read_clinical
    from lungai.rp.checks import id_column_of

    pid = [f"{i:03d}" for i in range(len(table))]
    clin = table[["rp_grade2"] + [c for c in table.columns if c.startswith("clin_")]]
    clin = clin.assign(**{header: pid})
    dose = table.drop(columns=clin.columns[:-1]).assign(case=[f"{p}_1" for p in pid], patient_id=pid)
    clin.to_csv(tmp_path / "clinical.csv", index=False)
    dose.iloc[::-1].to_csv(tmp_path / "rp_table.csv", index=False)
    # cohort --clinical takes this header as the patient id: so does rp
    assert list(read_clinical(tmp_path / "clinical.csv")["patient_id"]) == pid
    one = read_table(tmp_path / "clinical.csv")
    assert id_column_of(one) == header and list(one[header]) == pid         # "007" stays "007"
    assert infer_roles(one, "rp_grade2").id_column == header
    if header.replace("_", " ").strip().lower() in ("patient id", "patientid"):
        # the DICOM PatientID spelled as the DICOM tag is lungai cohort's patient_id: joined on it
        merged = read_tables([tmp_path / "clinical.csv", tmp_path / "rp_table.csv"])
        assert len(merged) == len(table)
        key = id_column_of(merged)
        by_id = merged.set_index(key)
        assert list(by_id.loc[pid, "case"]) == [f"{p}_1" for p in pid]
        assert np.allclose(by_id.loc[pid, "dose_mld_gy"], table["dose_mld_gy"])
    # a patient twice under this header is refused as before
    clin.iloc[[0, 0, 1]].to_csv(tmp_path / "twice.csv", index=False)
    dose.iloc[:2].to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(InputError, match="more than once|twice|duplicate|once"):
        read_tables([tmp_path / "twice.csv", tmp_path / "two.csv"])


@pytest.mark.parametrize("grades", [["Grade 0", "Grade 1", "Grade 2", "Grade 3"], [0, 1, 2, 3], ["G0", "G1", "G2"],
                                    ["0", "1", "2", "3.0"], ["Grade 0", "Grade I", "grade II", "CTCAE Grade 3"]])
def test_graded_outcome_says_how_to_make_grade_2_or_more(table, grades):
    """Hospitals record radiation pneumonitis as CTCAE grades (0-5).  An outcome column of grades was refused with
    the generic "code the outcome as 1/0"; it is still refused (never binarised silently: which grade is the event
    is the study's choice), and the fix says how to make the usual endpoint, grade >= 2, and which option takes it."""
    table = table.assign(rp_grade=[grades[i % len(grades)] for i in range(len(table))])
    with pytest.raises(InputError) as err:
        outcome_vector(table, "rp_grade")
    text = str(err.value)
    assert "grade" in text.lower() and "CTCAE" in text
    assert "2 or more" in text and "--outcome" in text


@pytest.mark.parametrize("events, said, fix", [
    (1, "too few events for 5x3 nested cross-validation: 1 event (events 1, non-events 12)",
     "and 1 event is too few for any"),
    (3, "too few events for 5x3 nested cross-validation: 3 events (events 3, non-events 12)",
     "and 3 events are too few for any"),
    (5, "too few events for 5x3 nested cross-validation: 5 events (events 5, non-events 12)",
     "--outer-folds 2 --inner-folds 2 needs at least 4 events, the largest design 5 events allow)")])
def test_too_few_events_counts_in_words(events, said, fix):
    """QA plural61 (lungai rp train on a 13-patient table with 1 event): "1 events (events 1, ...)", "and 1 events are
    too few for any" - the count takes its number, the verb agrees with it."""
    with pytest.raises(InputError) as err:
        check_events(np.array([1] * events + [0] * 12), 5, 3)
    assert said in str(err.value) and fix in err.value.fix, (str(err.value), err.value.fix)
    with pytest.raises(InputError) as err:           # the rarer class named: the non-events
        check_events(np.array([0] + [1] * 12), 5, 3)
    assert "too few non-events for 5x3 nested cross-validation: 1 non-event (events 12" in str(err.value)
    assert "1 non-event is too few for any" in err.value.fix


def test_predict_names_one_missing_column_in_the_singular(rp_model_dir, rp_cohort):
    """QA plural61 (lungai rp predict, one feature column dropped): "1 required column(s) missing"."""
    patients = rp_cohort.table.head(3).drop(columns="clin_hb_g_dl")
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, patients)
    assert "1 required column missing: 'clin_hb_g_dl'" in str(err.value), str(err.value)


@pytest.mark.parametrize("n", [1, 2])
def test_rp_messages_count_in_the_singular_and_the_plural(tmp_path, table, n):
    """QA rp62: lungai rp's messages wrote "(s)" plurals - "1 row(s) repeated", "empty or missing in 2 row(s)",
    "1 constant or empty feature column(s)", "unknown categor(ies)", "has value(s) ['sixty'] that are not numbers",
    "unknown model(s)", "The model needs 1 value(s)": the count's own number now (lungai.errors.counted / agree)."""
    from lungai.rp.checks import check_categories, check_not_constant, check_repeated_rows
    from lungai.rp.columns import read_role_file
    from lungai.scene.results import describe_missing_features

    plural = n > 1
    s = "s" if plural else ""
    no_id = table.drop(columns="case")
    twice = pd.concat([no_id, no_id.iloc[:n]], ignore_index=True)
    with pytest.raises(InputError) as err:
        check_repeated_rows(twice, list(no_id.columns), "the table", "why")
    copies = "copies" if plural else "copy"
    assert f"no patient id column and {n} row{s} repeated ({n} {copies}), identical" in str(err.value), err.value

    empty = table.copy()
    empty.loc[:n - 1, "rp_grade2"] = np.nan
    with pytest.raises(InputError, match=rf"'rp_grade2' is empty or missing in {n} row{s} \(") as err:
        outcome_vector(empty, "rp_grade2")
    assert "(s)" not in str(err.value)

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0] * 3, "c": [np.nan] * 3})
    with pytest.raises(InputError, match=rf"^{n} constant or empty feature column{s}: \['b'") as err:
        check_not_constant(X if plural else X.drop(columns="c"))

    cats = pd.DataFrame({"x": ["p", "zz", "yy"], "y": ["q", "q", "ww"]})
    known = {"x": ["p"] + (["yy"] if not plural else []), "y": ["q"] if plural else ["q", "ww"]}
    with pytest.raises(InputError) as err:
        check_categories(cats, known, "the patients table")
    said = str(err.value)
    assert f"the patients table: {n} column{s} with unknown categories: " in said, said
    if plural:
        assert "column 'x' has unknown categories 'yy'" in said and "column 'y' has an unknown category 'ww'" in said
    else:
        assert "column 'x' has an unknown category 'zz'" in said and "column 'y'" not in said
    assert "categor(ies)" not in said
    assert err.value.fix.startswith("recode this value to one of the known categories (or leave it empty)" if not plural
                                    else "recode these values to one of the known categories (or leave them empty)")

    words = table.head(6).copy()
    words["clin_age_years"] = words["clin_age_years"].astype(object)
    words.loc[:n - 1, "clin_age_years"] = ["sixty", "seventy"][:n]
    roles = infer_roles(table, "rp_grade2")
    with pytest.raises(InputError) as err:
        numeric_features(words, roles, ["clin_age_years"])
    shown = str(sorted(["sixty", "seventy"][:n]))
    assert (f"has values {shown} that are not numbers" if plural else
            f"has a value {shown} that is not a number") in str(err.value), err.value
    # the fix in the number of the values it names (QA rpcard62: "correct these values" for one value)
    assert err.value.fix.startswith(f"correct {'these values' if plural else 'this value'} (leave a cell empty"), \
        err.value.fix
    over = table.copy()
    over.loc[:n - 1, "dose_v13_pct"] = [130.0, 140.0][:n]
    with pytest.raises(InputError) as err:
        numeric_features(over, roles, ["dose_v13_pct"])
    assert (f"holds values outside 0-100: values {str(['130.0', '140.0'])}" if plural else
            "holds a value outside 0-100: value ['130.0']") in str(err.value), err.value
    assert err.value.fix.startswith(f"correct {'these values' if plural else 'this value'} of dose_v13_pct (give "
                                    "the volume in percent"), err.value.fix
    from lungai.rp.checks import check_units

    low = table.head(6).assign(dose_v20_pct=[0.2, 0.3, 25.0, 26.0, 27.0, 28.0][:n] + [25.0] * (6 - n))
    with pytest.raises(InputError) as err:
        check_units(low, low, ["dose_v20_pct"], trained={"dose_v20_pct": {"min": 10.0, "max": 45.0}})
    assert ("these values of dose_v20_pct look like fractions (0-1): multiply them by 100" if plural else
            "this value of dose_v20_pct looks like a fraction (0-1): multiply it by 100") in err.value.fix, err.value.fix
    assert ("holds values at most 1 that x 100 lie in" if plural else
            "holds a value at most 1 that x 100 lies in") in str(err.value), err.value

    with pytest.raises(InputError, match=rf"^unknown model{s}: \['xx'") as err:
        train_rp(table, "rp_grade2", tmp_path / "m", models="xx,yy" if plural else "xx,lr", fast=True)
    with pytest.raises(InputError, match=rf"^unknown feature set{s}: "):
        train_rp(table, "rp_grade2", tmp_path / "m", feature_sets=["rad", "clin"][:n] + ["all"], fast=True)

    roles_csv = tmp_path / "roles.csv"
    roles_csv.write_text("name,x\nclin_age_years,clinical\n" if plural else "column,x\nclin_age_years,clinical\n")
    with pytest.raises(InputError, match=rf"lacks column{s} \['{'column' if plural else 'role'}'"):
        read_role_file(roles_csv)

    card = {"features": ["clin_age_years", "rad_a", "rad_b"]}
    text = describe_missing_features(card, ["rad_a", "rad_b"][:n])
    assert text.startswith(f"The model needs {n} value{s} the inputs do not give: {n} radiomics/dose feature{s} "), text


def test_rows_differing_in_letter_case_only_are_repeated_rows(table):
    """QA rp62: without an id column, a patient twice whose copy wrote a category in another letter case ('MALE'
    for 'male') was not refused as repeated - yet training reads categories in any case as one (the two rows are
    one patient to the model, in the training and the test folds)."""
    from lungai.rp.checks import check_one_row_per_patient

    no_id = table.drop(columns="case")
    copy = no_id.iloc[[4]].copy()
    copy["clin_sex_cat"] = copy["clin_sex_cat"].str.upper() + " "
    twice = pd.concat([no_id, copy], ignore_index=True)
    with pytest.raises(InputError, match=r"no patient id column and 1 row repeated \(1 copy\).*\(rows 5, 61\)"):
        check_one_row_per_patient(twice, None, "the training table", "why", every_id=True,
                                  columns=list(no_id.columns))


def test_near_repeated_rows_of_a_table_without_an_id_column_are_noted(tmp_path, table, rp_model_dir, rp_cohort):
    """QA rp62: without an id column only rows identical in every value were caught; the same patient twice with
    its radiomics exported at 6 significant digits (-816.9309969723365 / -816.931), or one value retyped (Hb 14.1 /
    14.12), was trained on in the training and the test folds without a word.  Rows whose every feature and the
    outcome agree to within 0.5 % are said (an InputNote, train and validate: rows of one patient to remove, or
    an id column to add); not for different patients, nor where a few coarse columns make such agreement common."""
    import warnings

    from lungai.rp.checks import check_one_row_per_patient
    from lungai.rp.external import validate_rp

    no_id = table.drop(columns="case")
    columns = list(no_id.columns)
    rounded = no_id.iloc[[4]].copy()
    for c in [c for c in columns if c.startswith("rad_")]:
        rounded[c] = rounded[c].map(lambda v: float(f"{v:.6g}"))
    assert not rounded.equals(no_id.iloc[[4]])
    note = check_one_row_per_patient(pd.concat([no_id, rounded], ignore_index=True), None, "the training table",
                                     "why", every_id=True, columns=columns)
    assert re.match(r"the training table has no patient id column and 1 pair of rows agrees in every feature and the "
                    r"outcome, numbers to within 0.5% \(rows 5 and 61: rad_", note), note
    assert "keep one row per patient, or add a patient id column" in note

    # validation: the same note, among the validation's warnings (printed, and in external_metrics.json)
    part = rp_cohort.table.iloc[:30].drop(columns="case")
    again = part.iloc[[3]].copy()
    again["dose_mld_gy"] = again["dose_mld_gy"] + 0.01
    result = validate_rp(rp_model_dir, pd.concat([part, again], ignore_index=True))
    assert any(re.match(r"the validation table has no patient id column and 1 pair of rows agrees.*"
                        r"rows 4 and 31: dose_mld_gy", w) for w in result["warnings"]), result["warnings"]

    from lungai.rp.checks import NEAR_TOLERANCE, near_repeated_rows

    retyped = no_id.iloc[[7, 9]].copy()          # two patients twice, a clinical value of each retyped
    retyped["clin_hb_g_dl"] = retyped["clin_hb_g_dl"] * (1 + NEAR_TOLERANCE / 2)
    text = near_repeated_rows(pd.concat([no_id, retyped], ignore_index=True), columns, "the table")
    assert text.startswith("the table has no patient id column and 2 pairs of rows agree in every feature") and \
        "(rows 8 and 61: clin_hb_g_dl " in text and "; rows 10 and 62: clin_hb_g_dl " in text, text

    # not said: different patients (the cohort as it is), a value changed by more, a few coarse columns
    assert near_repeated_rows(no_id, columns, "the table") is None
    changed = no_id.iloc[[7]].copy()
    changed["clin_hb_g_dl"] = changed["clin_hb_g_dl"] * (1 + 4 * NEAR_TOLERANCE)
    assert near_repeated_rows(pd.concat([no_id, changed], ignore_index=True), columns, "the table") is None
    coarse = no_id[["clin_age_years", "clin_sex_cat", "rp_grade2"]]
    close = coarse.iloc[[3]].assign(clin_age_years=coarse["clin_age_years"].iloc[3] + 0.1)
    assert near_repeated_rows(pd.concat([coarse, close], ignore_index=True), list(coarse.columns), "t") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputNote)
        assert check_one_row_per_patient(no_id, None, "the training table", "why", every_id=True,
                                         columns=columns) is None


def test_near_repeated_rows_are_recorded_in_the_metrics_and_the_model_card(tmp_path, table):
    """QA rpcard62: the near-repeated-rows note of ``rp train`` (rows of a table without ids agreeing to 0.5 %: one
    patient likely in both CV folds) was printed only, unlike train's other warnings (tumour review, no dose, too few
    events per feature ...): metrics.json, model_card.json and model_card.md did not hold it, so whoever reviews the
    model later could not see that its nested-CV figures may be optimistic.  It is one of the warnings now."""
    no_id = table.drop(columns="case")
    rounded = no_id.iloc[[4]].copy()
    for c in [c for c in no_id.columns if c.startswith("rad_")]:
        rounded[c] = rounded[c].map(lambda v: float(f"{v:.6g}"))
    result = train_rp(pd.concat([no_id, rounded], ignore_index=True), "rp_grade2", tmp_path / "m", models="lr",
                      feature_sets="all", fast=True, outer_folds=3, inner_folds=3, n_boot=2, make_plots=False)
    said = "has no patient id column and 1 pair of rows agrees in every feature and the outcome"
    assert any(said in w for w in result.metrics["warnings"]), result.metrics["warnings"]   # (the CLI says it)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    for recorded in (metrics["warnings"], card["warnings"]):
        assert [w for w in recorded if said in w and "(rows 5 and 61: rad_" in w], recorded
    assert said in (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")


def _few_patients(table, events: int, non_events: int) -> pd.DataFrame:
    """``events`` patients with the outcome and ``non_events`` without, taken from a synthetic cohort."""
    picked = [table[table["rp_grade2"] == 1].head(events), table[table["rp_grade2"] == 0].head(non_events)]
    return pd.concat(picked, ignore_index=True)


@pytest.mark.parametrize("events, non_events, constant", [(0, 1, 22), (1, 0, 22), (1, 1, 3), (1, 2, 2), (1, 4, 1),
                                                          (2, 2, 0)])
def test_too_few_patients_is_said_before_constant_columns(tmp_path, capsys, table, events, non_events, constant):
    """QA rpsmall65: lungai rp train on one patient (a cohort of one, rp synth's rows) said "36 constant or empty
    feature columns ... How to fix: drop these columns" (every column of one row is constant; two patients, one
    event: 4 columns of 36): the fix could not help. The cause is the patients: too few for the smallest nested CV
    (4 events and 4 non-events, 8 patients), said first with its minimum and 'more patients' as the fix."""
    from lungai.cli import main
    from lungai.rp.checks import check_not_constant

    few = _few_patients(table, events, non_events)
    roles = infer_roles(few, "rp_grade2")
    X = numeric_features(few, roles, roles.features("all"))
    if constant:            # the table's constant columns (all, or some): the check the cause was hidden behind
        with pytest.raises(InputError, match=f"^{counted(constant, 'constant or empty feature column')}: "):
            check_not_constant(X)
    else:                   # none constant: still too few
        check_not_constant(X)
    n = events + non_events
    with pytest.raises(InputError) as err:
        train_rp(few, "rp_grade2", tmp_path / "m", fast=True)
    said = str(err.value)
    assert said.startswith(f"too few patients to train a model: {counted(n, 'patient')} (events {events}, "
                           f"non-events {non_events})"), said
    assert "at least 4 events and 4 non-events" in said and "constant" not in said, said
    assert err.value.fix.startswith("collect more patients"), err.value.fix
    assert "drop these columns" not in err.value.fix
    few.to_csv(tmp_path / "few.csv", index=False)           # the CLI, as the user ran it
    out = tmp_path / "model"
    assert main(["rp", "train", str(tmp_path / "few.csv"), "--outcome", "rp_grade2", "-o", str(out)]) == 2
    err_text = capsys.readouterr().err
    assert "too few patients to train a model" in err_text and "constant or empty" not in err_text, err_text
    assert not out.exists()


def test_too_few_events_is_said_before_constant_columns(tmp_path, table):
    """13 patients, 1 event and a column the same for all: the events are the cause (no fold design fits), said
    before the constant column, which dropping would not make trainable."""
    few = _few_patients(table, 1, 12).assign(clin_sex_cat="M")
    with pytest.raises(InputError) as err:
        train_rp(few, "rp_grade2", tmp_path / "m", fast=True)
    assert str(err.value).startswith("too few events for 5x3 nested cross-validation: 1 event (events 1, "
                                     "non-events 12)"), str(err.value)
    enough = _few_patients(table, 20, 20).assign(clin_sex_cat="M")   # enough patients: the column is the problem
    with pytest.raises(InputError, match="^1 constant or empty feature column: \\['clin_sex_cat'\\]"):
        train_rp(enough, "rp_grade2", tmp_path / "m", fast=True)


def test_a_missing_column_is_never_pointed_to_another_feature_and_the_fix_says_an_unknown_value_may_be_empty(
        rp_model_dir, rp_cohort):
    """QA rp68: ``rp predict`` on the table of ``lungai cohort`` (LUNG1-003's DICOM export) lacking some clinical
    columns said "'clin_histology_cat' (did you mean 'clin_sex_cat'?); 'clin_tiffeneau_pct' (did you mean
    'clin_sex_cat'?)" - a column the model uses as another feature, there and right: renaming it as told breaks the
    prediction; and the fix ("add the columns") did not say that a value not known for a patient may be left empty
    (its column there with empty cells: imputed, as a blank cell is)."""
    patients = rp_cohort.table.head(3).drop(columns=["clin_histology_cat", "clin_tiffeneau_pct"])
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, patients)
    assert "2 required columns missing: 'clin_histology_cat'; 'clin_tiffeneau_pct'" in err.value.problem, err.value
    assert "did you mean" not in err.value.problem, err.value
    assert "leave its cells empty" in err.value.fix, err.value.fix
    # ... and so it is: the column there, empty, is imputed and said in each row
    pred, _ = predict_rp(rp_model_dir, patients.assign(clin_histology_cat=None, clin_tiffeneau_pct=None))
    assert pred["imputed"].str.contains("clin_histology_cat").all() and pred["risk"].between(0, 1).all()


DVH = ("dose_v5_pct", "dose_v13_pct", "dose_v20_pct", "dose_v30_pct")
TRAINED_DVH = {"dose_v5_pct": {"min": 14.7, "max": 92.0}, "dose_v13_pct": {"min": 14.5, "max": 62.0},
               "dose_v20_pct": {"min": 7.2, "max": 47.0}, "dose_v30_pct": {"min": 1.5, "max": 33.0}}


def _check_dvh(rows, trained=None):
    from lungai.rp.checks import check_units

    df = pd.DataFrame(rows, columns=list(DVH))
    check_units(df, df.astype(float), list(DVH), trained)


def test_a_small_percentage_that_fits_its_rows_dvh_is_not_taken_for_a_fraction():
    """QA rpfollow68: a patient's V30 0.3 % beside V5 25.6 %, V13 25.6 %, V20 17.5 % (make_cohort(1500, seed=21)
    holds one) was refused as a fraction of a model trained with V30 1.5-33 % - the whole table with it - though a
    row of fractions has every V_x at most 1.  The row's DVH order (V5 >= V13 >= V20 >= V30) now tells them apart: a
    small value that fits its row's other percentages is a percentage, a row whose V_x are all at most 1 (V5
    among them) is of fractions, named by its rows with the fix; a value out of its row's order still a fraction."""
    percent_rows = [[25.6, 25.6, 17.5, 0.3], [62.0, 41.0, 30.0, 18.0]]
    _check_dvh(percent_rows, TRAINED_DVH)                                # V30 0.3 % fits its row: a percentage
    # a cohort: two patients with a small V20 (a small peripheral target) whose V5 / V13 are percentages
    cohort = [[60.0 - k, 45.0, 30.0 - k / 2, 18.0] for k in range(40)] + [[9.0, 3.0, 0.3, 0.1], [8.0, 2.5, 0.5, 0.2]]
    _check_dvh(cohort)
    # a row of fractions (every V_x at most 1): refused, every one of its columns named, V30 too
    with pytest.raises(InputError) as err:
        _check_dvh(percent_rows + [[0.256, 0.256, 0.175, 0.003]], TRAINED_DVH)
    for col in DVH:
        assert f"column {col!r}" in str(err.value), str(err.value)
    assert "(CSV lines [4])" in str(err.value) and "whose every V_x is at most 1" in str(err.value), str(err.value)
    assert "multiply it by 100" in err.value.fix
    # a cohort with one row of fractions among percentages: refused too (a lone row, no longer passed)
    with pytest.raises(InputError) as err:
        _check_dvh(cohort + [[0.45, 0.3, 0.2, 0.1]])
    assert "'dose_v30_pct'" in str(err.value) and "(CSV lines [44])" in str(err.value), str(err.value)
    # a small value out of its row's order (V5 0.4 beside V13 14.4 %): still a fraction
    with pytest.raises(InputError) as err:
        _check_dvh(percent_rows + [[0.4, 14.4, 10.1, 5.7]], TRAINED_DVH)
    assert "'dose_v5_pct'" in str(err.value) and "(CSV lines [4])" in str(err.value)
    assert "'dose_v30_pct'" not in str(err.value)
    # a whole table of fractions still refused
    with pytest.raises(InputError, match="no value above 1 %"):
        _check_dvh([[r / 100 for r in row] for row in cohort[:40]])


def test_rp_validate_accepts_a_synthetic_cohort_with_a_small_v30(tmp_path, rp_model_dir):
    """QA rpfollow68: `rp validate MODEL` on make_cohort(1500, seed=21) was refused ('dose_v5_pct ... value 0.4 looks
    like a fraction'); its V30 0.3 % row (V5 25.6 %) is a real small percentage."""
    from lungai.rp.external import validate_rp

    cohort = make_cohort(1500, seed=21).table
    assert (cohort["dose_v30_pct"] <= 1).any()
    result = validate_rp(rp_model_dir, cohort, tmp_path / "v")
    assert 0.5 < result["auc"] < 1


def test_a_renamed_or_cgy_model_column_is_suggested_with_what_to_do(rp_model_dir, rp_cohort):
    """QA rpfollow68: a table giving dose_mld_gy as 'MLD_Gy' was told "'dose_mld_gy' (did you mean 'dose_max_gy',
    'dose_mean_gy', 'dose_min_gy'?)" - three closer dose names crowded the renamed column out; and 'dose_mld_cgy' was
    suggested without saying it is in cGy.  A column whose name differs only in case, separators or the role prefix
    is named first; a cGy column is named with 'divide by 100'."""
    from lungai.rp.columns import suggest

    others = ["dose_max_gy", "dose_mean_gy", "dose_min_gy", "dose_ptv_gy", "case"]
    assert suggest("dose_mld_gy", others + ["MLD_Gy"]).startswith(" (did you mean 'MLD_Gy'")
    assert suggest("dose_mld_gy", others + ["Dose MLD (Gy)"]).startswith(" (did you mean 'Dose MLD (Gy)'")
    assert suggest("clin_age_years", ["Age_Years", "clin_sex_cat"]).startswith(" (did you mean 'Age_Years'")
    assert "MLD_Gy" not in suggest("dose_v20_pct", others + ["MLD_Gy"])
    base = rp_cohort.table.head(4).drop(columns="rp_grade2").reset_index(drop=True)
    extra = {c: [20.0, 30.0, 40.0, 50.0] for c in others[:4]}
    renamed = base.rename(columns={"dose_mld_gy": "MLD_Gy"}).assign(**extra)
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, renamed)
    assert "'dose_mld_gy' (did you mean 'MLD_Gy'" in str(err.value), str(err.value)
    cgy = base.assign(dose_mld_gy=base["dose_mld_gy"] * 100).rename(columns={"dose_mld_gy": "dose_mld_cgy"})
    with pytest.raises(InputError) as err:
        predict_rp(rp_model_dir, cgy)
    said = str(err.value) + " " + err.value.fix
    assert "'dose_mld_gy' (did you mean 'dose_mld_cgy'" in said, said
    assert "dose_mld_cgy is in cGy: divide its values by 100 and name it dose_mld_gy" in said, said


def test_unit_messages_count_the_rows_not_the_distinct_values():
    """QA smallfix68: three rows of V13 0.3 (fractions beside percentages) read "holds a value at most 1 ... value
    ['0.3'] (CSV lines [102, 103, 104])" and "this value of dose_v13_pct looks like a fraction: multiply it by 100" -
    the wording counted the distinct values, not the rows to correct.  The same for a percentage over 100 and one
    patient's fractions against a model's training range."""
    from lungai.rp.checks import check_units

    def refused(values, col="dose_v13_pct", trained=None):
        df = pd.DataFrame({col: values})
        with pytest.raises(InputError) as err:
            check_units(df, df.astype(float), [col], trained=trained)
        return err.value

    percent = [5.5, 12.0, 20.4, 31.0, 44.5] * 20
    err = refused(percent + [0.3, 0.3, 0.3])
    assert "holds values at most 1, under half their minimum, that look like fractions" in str(err), str(err)
    assert "values ['0.3'] (CSV lines [102, 103, 104])" in str(err), str(err)
    assert "these values of dose_v13_pct look like fractions (0-1): multiply them by 100" in err.fix, err.fix
    err = refused(percent + [130.0, 130.0])
    assert "holds values outside 0-100: values ['130.0'] (CSV lines [102, 103])" in str(err), str(err)
    assert err.fix.startswith("correct these values of dose_v13_pct"), err.fix
    err = refused([0.3, 0.3, 25.0], trained={"dose_v13_pct": {"min": 10.0, "max": 45.0}})
    assert "holds values at most 1 that x 100 lie in the training range" in str(err), str(err)
    assert "these values of dose_v13_pct look like fractions" in err.fix, err.fix
    err = refused([0.3, 25.0], trained={"dose_v13_pct": {"min": 10.0, "max": 45.0}})     # one row: singular
    assert "holds a value at most 1 that x 100 lies in the training range: value ['0.3'] (CSV lines [2])" in str(err)
    assert "this value of dose_v13_pct looks like a fraction" in err.fix, err.fix


def test_a_row_without_a_patient_id_is_refused_in_train_validate_and_predict(tmp_path, table, rp_model_dir):
    """QA rp70: a table with an empty `case` cell (a patient's id not filled in): `rp train` stopped with a TypeError
    traceback ('<' not supported between instances of 'str' and 'float', lungai.rp.checks.id_order), `rp predict`
    wrote the patient as "nan" (two such rows: two patients "nan", never said ambiguous) and `rp validate` scored it
    without a word.  Refused now in all three, naming the CSV lines and the fix; a joined table names its own file."""
    from lungai.cli import main
    from lungai.rp.external import validate_rp

    train = table.copy()
    train["case"] = train["case"].astype(object)
    train.loc[[3, 7], "case"] = np.nan
    train.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(InputError, match=r"2 rows without a patient id \(column 'case' empty: CSV lines \[5, 9\]\)") \
            as err:
        train_rp(str(tmp_path / "train.csv"), "rp_grade2", tmp_path / "m", fast=True, outer_folds=2, inner_folds=2)
    assert "fill in each row's patient id (or remove the rows)" in err.value.fix and not (tmp_path / "m").exists()
    ext = make_cohort(40, seed=77).table
    ext["case"] = ext["case"].astype(object)
    ext.loc[2, "case"] = "  "                            # whitespace only: blank too
    ext.to_csv(tmp_path / "ext.csv", index=False)
    with pytest.raises(InputError, match=r"1 row without a patient id \(column 'case' empty: CSV lines \[4\]\)"):
        validate_rp(rp_model_dir, str(tmp_path / "ext.csv"))
    with pytest.raises(InputError, match=r"1 row without a patient id"):
        predict_rp(rp_model_dir, str(tmp_path / "ext.csv"), output=tmp_path / "pred.csv")
    assert not (tmp_path / "pred.csv").exists()
    # tables joined on the id: the file with the blank id is named, not "'nan' not in the other table"
    ext.drop(columns=[c for c in ext.columns if c.startswith("dose_")]).to_csv(tmp_path / "clin.csv", index=False)
    dose = make_cohort(40, seed=77).table
    dose[["case"] + [c for c in dose.columns if c.startswith("dose_")]].to_csv(tmp_path / "dose.csv", index=False)
    with pytest.raises(InputError, match=r"clin\.csv has 1 row without a patient id .*CSV lines \[4\]"):
        predict_rp(rp_model_dir, [str(tmp_path / "clin.csv"), str(tmp_path / "dose.csv")])
    # the CLI: the error and its fix, no traceback
    assert main(["rp", "train", str(tmp_path / "train.csv"), "--outcome", "rp_grade2", "-o", str(tmp_path / "m2"),
                 "--fast", "--outer-folds", "2", "--inner-folds", "2"]) == 2
