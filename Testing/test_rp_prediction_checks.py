"""Prediction-time mismatch is never silent: every imputed or out-of-range feature is listed per
patient (CLI/API output and the Slicer table), and radiomic features computed with other settings
than the model's are refused (or, when explicitly allowed, warned about per patient)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.radiomics import load_params
from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id, value_settings, write_sidecar
from lungai.rp import make_cohort, predict_rp, train_rp, validate_rp

from rp_helpers import rp_roles_model  # noqa: F401  (fixture)

DEFAULT, IBSI_C = settings_id(load_params("default")), settings_id(load_params("ibsi-c"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained on a table whose radiomics carry the 'default' settings (column + sidecar)."""
    out = tmp_path_factory.mktemp("rp_settings")
    table = make_cohort(90, seed=21).table.assign(**{SETTINGS_COLUMN: DEFAULT})
    table.to_csv(out / "cohort.csv", index=False)
    write_sidecar(out / "cohort.csv", load_params("default"))
    result = train_rp(out / "cohort.csv", "rp_grade2", out / "m", models="lr", final="all/lr", fast=True,
                      outer_folds=3, inner_folds=3, n_boot=2, make_plots=False)
    return out / "m", result


def test_settings_recorded_in_the_model_card(model):
    model_dir, result = model
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    assert card["radiomics_settings"]["id"] == DEFAULT != IBSI_C
    assert card["radiomics_settings"]["settings"] == json.loads(json.dumps(value_settings(load_params("default"))))
    assert card["radiomics_settings"]["settings"]["setting"]["binWidth"] == 25
    assert f"radiomics settings: {DEFAULT}" in "\n".join(result.lines)
    assert SETTINGS_COLUMN not in card["features"]


def _settings_warnings(pred) -> list[str]:
    """Each row's warnings but an interval widened to hold the risk (frequent with this fixture's 2 bootstrap
    members; not what these tests are about)."""
    from rp_helpers import without_widened

    return [without_widened(w) for w in pred["warnings"]]


def test_other_radiomics_settings_are_refused_or_warned(model, tmp_path):
    model_dir, _ = model
    patients = make_cohort(4, seed=5).table
    ok, _ = predict_rp(model_dir, patients.assign(**{SETTINGS_COLUMN: DEFAULT}))
    assert _settings_warnings(ok) == ["", "", "", ""]
    other = patients.assign(**{SETTINGS_COLUMN: [DEFAULT, IBSI_C, DEFAULT, DEFAULT]})
    with pytest.raises(InputError, match=f"(?s)1 patient.*{IBSI_C}.*the model with {DEFAULT}.*--allow-other"):
        predict_rp(model_dir, other)
    with pytest.raises(InputError, match="validation table"):
        validate_rp(model_dir, other)
    warned, _ = predict_rp(model_dir, other, allow_other_radiomics_settings=True)
    assert _settings_warnings(warned) == ["", f"radiomics settings {IBSI_C} differ from the model's {DEFAULT}", "", ""]
    unknown, _ = predict_rp(model_dir, patients)                    # a hand-made table: no settings column
    assert unknown["warnings"].str.contains("radiomics settings unknown").all()
    np.testing.assert_allclose(unknown["risk"], ok["risk"])          # the values are the same, only flagged
    mixed = make_cohort(60, seed=2).table.assign(**{SETTINGS_COLUMN: [DEFAULT, IBSI_C] * 30})
    with pytest.raises(InputError, match="mixes radiomic features computed with 2 different settings"):
        train_rp(mixed, "rp_grade2", tmp_path / "mixed", models="lr", fast=True)


def test_other_settings_with_other_rad_column_names_named_not_misspelt_columns(model):
    """QA: a table made with --params ibsi-b (other rad_* names) gave "537 required column(s) missing ... fix their
    spelling" with wrong 'did you mean' hints; the settings mismatch (the cause) was never named.  The settings are
    checked first; allowed anyway, the missing columns are put down to the settings."""
    model_dir, _ = model
    patients = make_cohort(3, seed=5).table
    rad = [c for c in patients.columns if c.startswith("rad_")]
    other = patients.rename(columns={c: c.replace("original", "wavelet-LLH") for c in rad})
    other[SETTINGS_COLUMN] = IBSI_C
    with pytest.raises(InputError, match=f"computed with radiomics settings \\['{IBSI_C}'\\], the model with") as err:
        predict_rp(model_dir, other)
    assert "spelling" not in err.value.fix
    with pytest.raises(InputError, match=f"other radiomics settings \\({IBSI_C}\\) than the model's \\({DEFAULT}\\)") as err:
        predict_rp(model_dir, other, allow_other_radiomics_settings=True)
    assert "spelling" not in err.value.fix and "--params" in err.value.fix
    with pytest.raises(InputError, match="validation table: radiomic features of 3 patient"):
        validate_rp(model_dir, other)


def test_every_imputed_or_out_of_range_feature_is_listed(model, tmp_path):
    from lungai.cli import main

    model_dir, _ = model
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    mld = card["training_data"]["features"]["dose_mld_gy"]
    patients = make_cohort(3, seed=9).table.assign(**{SETTINGS_COLUMN: DEFAULT})
    for name, s in card["training_data"]["features"].items():        # typical patients ...
        if "median" in s:
            patients[name] = s["median"]
    patients.loc[0, ["clin_hb_g_dl", "rad_lungs_original_firstorder_Mean"]] = np.nan
    patients.loc[1, "dose_mld_gy"] = mld["max"] + 30.0
    patients.loc[1, "clin_sex_cat"] = np.nan
    pred, _ = predict_rp(model_dir, patients)
    assert pred["imputed"].tolist() == ["clin_hb_g_dl; rad_lungs_original_firstorder_Mean", "clin_sex_cat", ""]
    from lungai.report.html import readable

    assert pred.loc[1, "out_of_range"] == (f"dose_mld_gy={readable(mld['max'] + 30)} (training {readable(mld['min'])} "
                                          f"to {readable(mld['max'])})")
    assert pred.loc[0, "out_of_range"] == ""
    patients.to_csv(tmp_path / "p.csv", index=False)
    assert main(["rp", "predict", str(model_dir), str(tmp_path / "p.csv"), "-o", str(tmp_path / "pred.csv")]) == 0
    written = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    assert written["imputed"].tolist() == pred["imputed"].tolist()
    assert written["out_of_range"].tolist() == pred["out_of_range"].tolist()


def test_slicer_table_lists_imputed_features(mrml_scene, model):
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node

    from lungai.scene import results

    model_dir, _ = model
    row = make_cohort(1, seed=4).table.iloc[0]
    clinical = {k: v for k, v in row.items() if k.startswith("clin_") and k != "clin_age_years"}
    dose = {k: v for k, v in row.items() if k.startswith("dose_")}
    rad = pd.DataFrame([{k: v for k, v in row.items() if k.startswith("rad_")} | {SETTINGS_COLUMN: DEFAULT}])
    clinical["clin_age_years"] = np.nan                              # left empty in the form
    node, _ = predict_rp_node(mrml_scene, model_dir, rad, dose, clinical, case="P1")
    out = mrml.dataframe_from_table_node(node)
    assert out.loc[0, "imputed"] == "clin_age_years" and out.loc[0, "warnings"] == ""
    _, text = results.describe_prediction_row({k: str(v) for k, v in out.iloc[0].items()})
    assert "Imputed (missing) features: clin_age_years" in text


def test_misspelt_rad_column_without_settings_column_keeps_the_spelling_fix(model):
    """Review: without a radiomics_settings column a misspelt rad_* column was put down to 'other radiomics settings
    (unknown ...)' with the fix 'recompute the features with the model's settings'; with the column it said 'fix
    their spelling'.  No settings column is no information: the spelling fix stays, the settings said unknown."""
    model_dir, _ = model
    patients = make_cohort(3, seed=5).table.drop(columns=[SETTINGS_COLUMN], errors="ignore")
    rad = next(c for c in patients.columns if c.startswith("rad_"))
    patients = patients.rename(columns={rad: rad.replace("rad_", "rad__")})
    for p in (predict_rp, validate_rp):
        with pytest.raises(InputError, match="required column") as err:
            p(model_dir, patients)
        assert "spelling" in err.value.fix and "recompute" not in err.value.fix, err.value.fix
        assert "other radiomics settings" not in err.value.problem
        assert f"radiomics settings are unknown; the model's: {DEFAULT}" in err.value.problem


def test_a_settings_mismatch_for_one_patient_says_what_to_do_in_the_panel(model):
    """QA (Multimodal Predict): a radiomics settings mismatch was refused with the command line's fix
    (--allow-other-radiomics-settings, --params: no control of the panel), and a missing wavelet feature got the
    generic 'compute the tables with Lung Radiomics' instead of 'tick Wavelet'.  The panel's context ("patient",
    as the lungs-cut warning's) says what to do there; the command line keeps its flags."""
    from lungai.rp.prepare import settings_warnings
    from lungai.scene.results import missing_features_fix

    model_dir, _ = model
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    other = make_cohort(1, seed=5).table.assign(**{SETTINGS_COLUMN: IBSI_C})
    with pytest.raises(InputError) as cli:
        settings_warnings(other, card, "patients table")
    assert "--allow-other-radiomics-settings" in cli.value.fix                  # the CLI keeps its flags
    for call in (lambda: settings_warnings(other, card, "radiomics table", context="patient"),
                 lambda: predict_rp(model_dir, other, context="patient")):
        with pytest.raises(InputError, match=IBSI_C) as err:
            call()
        assert "--allow-other" not in err.value.fix and "--params" not in err.value.fix, err.value.fix
        assert "Lung Radiomics" in err.value.fix, err.value.fix
    wavelet = missing_features_fix(["rad_tumour_wavelet-LLH_firstorder_Mean"])
    assert "tick Wavelet under Image types" in wavelet and "Lung Radiomics" in wavelet
    assert "LoG" in missing_features_fix(["rad_lungs_log-sigma-3-0-mm-3D_glcm_Idm"])
    both = missing_features_fix(["rad_tumour_wavelet-LLH_firstorder_Mean", "clin_age_years"])
    assert "tick Wavelet" in both and "clinical form" in both
    assert "Wavelet" not in missing_features_fix(["rad_tumour_original_firstorder_Mean", "clin_age_years"])


def test_an_id_header_spelt_with_spaces_names_the_patients_in_predict_and_validate(rp_roles_model, tmp_path):
    """The model's id column (a role file's 'Patient ID') written with spaces around it, as exports carry them
    (' Patient ID '), is the id column of the checks (one row per patient, training patients) - and of the outputs:
    predictions, contributions and validate's external_predictions.csv name each patient by its id, never 'row1'."""
    table, model = rp_roles_model
    patients = pd.read_csv(table, dtype={"Patient ID": str}).iloc[:4]
    spaced = patients.rename(columns={"Patient ID": " Patient ID "})
    ids = patients["Patient ID"].tolist()
    pred, contrib = predict_rp(model, spaced.drop(columns="rp_grade2"))
    assert pred["case"].tolist() == ids and contrib["case"].tolist() == ids
    with pytest.raises(InputError, match="duplicate patient IDs"):     # the checks took it as the id column already
        predict_rp(model, pd.concat([spaced, spaced.iloc[[0]]]).drop(columns="rp_grade2"))
    validate_rp(model, spaced, tmp_path / "val", include_training_patients=True)
    written = pd.read_csv(tmp_path / "val" / "external_predictions.csv", dtype={"case": str})
    assert written["case"].tolist() == ids


def test_an_id_header_in_another_case_names_the_patients_and_is_checked(rp_roles_model, tmp_path):
    """The model's id column (a role file's 'Patient ID') written in another case ('patient id', as another export
    spells it) is the id column, as lungai stage matches IDs (lungai.io.tables.match_headers): read as text from a
    CSV ('007' stays '007'), each patient once, and the patients named in the outputs - before, it was not
    recognised: no duplicate check, the patients named row1, row2 ..."""
    table, model = rp_roles_model
    patients = pd.read_csv(table, dtype={"Patient ID": str}).iloc[:4].drop(columns="rp_grade2")
    lower = patients.rename(columns={"Patient ID": "patient id"})
    lower["patient id"] = ["007", "008", "009", "010"]
    lower.to_csv(tmp_path / "patients.csv", index=False)
    pred, contrib = predict_rp(model, tmp_path / "patients.csv")
    assert pred["case"].tolist() == ["007", "008", "009", "010"] and contrib["case"].tolist() == pred["case"].tolist()
    with pytest.raises(InputError, match=r"duplicate patient IDs \(column 'patient id'\).*'007'"):
        predict_rp(model, pd.concat([lower, lower.iloc[[0]]]))
    with pytest.raises(InputError, match="duplicate patient IDs"):
        validate_rp(model, pd.concat([lower, lower.iloc[[0]]]).assign(rp_grade2=[0, 1, 0, 1, 0]), tmp_path / "val",
                    include_training_patients=True)


def test_a_feature_header_differing_only_in_case_or_spaces_is_the_models_column(rp_roles_model, tmp_path):
    """rp predict / validate read a header differing from the model's feature only by case / spaces ('sex' or
    ' SEX' for the model's 'Sex ', as NSCLC-Radiogenomics exports carry 'Histology ') as that feature, with a
    warning - the rule of lungai stage's EHR headers (lungai.io.tables.match_headers); two such headers for one
    feature are refused, naming both.  Before, rp refused it as a missing column."""
    from lungai.errors import InputNote

    table, model = rp_roles_model
    patients = pd.read_csv(table, dtype={"Patient ID": str}).iloc[:6]
    expected, _ = predict_rp(model, patients.drop(columns="rp_grade2"))
    for header in ("sex", " SEX", "SEX "):
        renamed = patients.rename(columns={"Sex ": header})
        with pytest.warns(InputNote, match=rf"'{header}' read as the model's column 'Sex '"):
            pred, _ = predict_rp(model, renamed.drop(columns="rp_grade2"))
        np.testing.assert_allclose(pred["risk"], expected["risk"])
    with pytest.warns(InputNote, match="read as the model's column"):
        validate_rp(model, patients.rename(columns={"Sex ": "sex", "MLD": "mld"}), tmp_path / "val",
                    include_training_patients=True)
    two = patients.rename(columns={"Sex ": "sex"}).assign(SEX=patients["Sex "])
    with pytest.raises(InputError, match="2 columns that are the model's column 'Sex '.*'sex', 'SEX'"):
        predict_rp(model, two.drop(columns="rp_grade2"))


def test_the_refusal_names_the_settings_that_differ(model, tmp_path):
    """QA: a patients table computed with a parameter file other than the model's was refused naming two ids only
    ("computed with radiomics settings ['sha256:...'], the model with sha256:..."): the user could not tell what
    differed - nor that a file writing the model's bin width as 25.0 (the same number) counts as other settings.  With
    the table's .settings.json sidecar and the model card's settings, the refusal names each setting that differs."""
    import yaml

    model_dir, _ = model
    patients = make_cohort(4, seed=5).table
    recorded = value_settings(load_params("default"))
    # the model's bin width written as 25.0: the same settings, the same id (test_radiomics_settings_canonical)
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({**recorded, "setting": {**recorded["setting"], "binWidth": 25.0}}), encoding="utf-8")
    assert settings_id(load_params(str(same))) == settings_id(load_params("default"))
    cases = {   # the parameter file written by the user: the words the refusal says
        "other bins, wavelet": ({**recorded, "setting": {**recorded["setting"], "binWidth": 10},
                                 "imageType": {"Original": {}, "Wavelet": {}}},
                                ["setting.binWidth 10 (here), 25 (the model's)", "imageType.Wavelet (here only: {})",
                                 "lungai.whole_ct_revision (here only: 2)"]),
    }
    for name, (doc, words) in cases.items():
        f = tmp_path / f"{name.replace(' ', '_').replace(',', '')}.yaml"
        f.write_text(yaml.safe_dump(doc), encoding="utf-8")
        params = load_params(str(f))
        table = tmp_path / f"{f.stem}.csv"
        patients.assign(**{SETTINGS_COLUMN: settings_id(params)}).to_csv(table, index=False)
        write_sidecar(table, params)
        for run in (predict_rp, validate_rp):
            with pytest.raises(InputError) as err:
                run(model_dir, table)
            for w in words:
                assert w in err.value.problem, (name, run.__name__, err.value.problem)
            assert "binCount" not in err.value.problem and "setting.label" not in err.value.problem
        # without the sidecar: the ids alone, as before
        table.with_name(table.name[:-4] + ".settings.json").unlink()
        with pytest.raises(InputError) as err:
            predict_rp(model_dir, table)
        assert "differ from the model's" not in err.value.problem


def test_validate_says_its_warnings_as_input_notes_kept_in_the_metrics_with_forms_without_ids(model, tmp_path, capsys,
                                                                                              monkeypatch):
    """QA rpvalidate65: `rp validate`'s warnings other than the training-overlap notes - radiomics settings other
    than the model's (--allow-other-radiomics-settings), too few events, the risks too high on average (calibration
    in the large), tumours to review, lungs cut, no dose, rows repeated within rounding - were printed on stdout
    (``print("warning: ...")``): not InputNotes on stderr as the overlap notes, and those naming patients had no
    form without their IDs.  Now each is an InputNote said once on stderr ("warning: ..."), none on stdout, kept in
    external_metrics.json (the IDs named: a local report), with a ``without_ids`` form naming no patient."""
    from lungai.cli import main
    from lungai.errors import InputNote
    from note_helpers import notes_made

    model_dir, _ = model
    table = make_cohort(40, seed=31).table
    ids = table["case"].tolist()
    table[SETTINGS_COLUMN] = [IBSI_C] + [DEFAULT] * 39                   # one patient's radiomics of other settings
    table["rp_grade2"] = [1, 1, 1] + [0] * 37                            # 3 events: too few, risks too high
    table["tumour_review"] = ["", "low confidence"] + [""] * 38           # an automatic tumour to review
    table["lungs_cut"] = ["", "", "cut at the apex"] + [""] * 37          # lungs cut by the scan
    table.loc[3:4, [c for c in table.columns if c.startswith("dose_")]] = np.nan   # no dose
    table.to_csv(tmp_path / "ext.csv", index=False)
    made = notes_made(monkeypatch)
    assert main(["rp", "validate", str(model_dir), str(tmp_path / "ext.csv"), "--allow-other-radiomics-settings",
                 "-o", str(tmp_path / "v")]) == 0
    cap = capsys.readouterr()
    m = json.loads((tmp_path / "v" / "external_metrics.json").read_text(encoding="utf-8"))
    expected = [f"radiomics settings {IBSI_C} differ from the model's {DEFAULT}", "not interpretable with 3 events",
                "the model's risks are too high on average", "the automatic tumour of 1 patient needs review",
                "the lungs of 1 patient are cut by the scan", "2 patients have no dose"]
    assert "warning:" not in cap.out, cap.out                            # nothing on stdout
    said = [line[len("warning: "):] for line in cap.err.splitlines() if line.startswith("warning: ")]
    kept = m["radiomics_settings_warnings"] + m["warnings"]
    for words in expected:
        texts = [t for t in said if words in t]
        assert len(texts) == 1, (words, cap.err)                         # said once, on stderr
        assert texts[0] in kept, (words, kept)                           # and kept in external_metrics.json
        note = next(n for n in made if str(n) == texts[0])
        assert isinstance(note, InputNote), type(note)
    assert len(said) == len(set(said)) == len(kept), (said, kept)        # each warning said once, each said kept
    for note in made:                                                    # a note naming patients: a form without
        named = [i for i in ids if i in str(note)]
        if named:
            assert note.without_ids and not [i for i in ids if i in note.without_ids], (str(note), note.without_ids)
    assert next(n for n in made if "needs review" in str(n)).without_ids.startswith(
        "validation table: the automatic tumour of 1 patient needs review (tumour_review): ")

    # rows repeated to within rounding in a table without IDs: a note on stderr too, kept
    near = make_cohort(30, seed=32).table.drop(columns="case").assign(**{SETTINGS_COLUMN: DEFAULT})
    near = pd.concat([near, near.iloc[[0]].assign(dose_mld_gy=lambda d: d.dose_mld_gy * 1.001)])
    near.to_csv(tmp_path / "near.csv", index=False)
    assert main(["rp", "validate", str(model_dir), str(tmp_path / "near.csv"), "-o", str(tmp_path / "n")]) == 0
    cap = capsys.readouterr()
    m = json.loads((tmp_path / "n" / "external_metrics.json").read_text(encoding="utf-8"))
    text = next(w for w in m["warnings"] if "agrees in every feature and the outcome" in w)
    assert cap.err.count(f"warning: {text}") == 1 and "warning:" not in cap.out, (cap.out, cap.err)


def _said_notes(err: str) -> list[str]:
    """The InputNotes' texts on stderr ("warning: ...")."""
    return [line[len("warning: "):] for line in err.splitlines() if line.startswith("warning: ")]


def _without_ids_checked(made, ids) -> None:
    """Each note naming one of ``ids`` has a form ``without_ids`` naming none."""
    for note in made:
        if [i for i in ids if i in str(note)]:
            assert note.without_ids and not [i for i in ids if i in note.without_ids], (str(note), note.without_ids)


@pytest.fixture(scope="module")
def warned_table(tmp_path_factory):
    """A synthetic table of 60 patients (too few events per feature) with tumours to review (2), lungs cut (1), no
    dose (1) and an EFFECTIVE RTDOSE recorded (2): each a warning of rp train / predict on the whole table."""
    out = tmp_path_factory.mktemp("rp_warned")
    table = make_cohort(60, seed=2).table
    n = len(table)
    table["tumour_review"] = ["", "low confidence", "low confidence"] + [""] * (n - 3)
    table["lungs_cut"] = [""] * 3 + ["cut at the apex"] + [""] * (n - 4)
    table.loc[4, [c for c in table.columns if c.startswith("dose_")]] = np.nan
    table["rtdose_notes"] = [""] * 5 + ["RTDOSE of DoseType EFFECTIVE (not PHYSICAL)"] * 2 + [""] * (n - 7)
    table.to_csv(out / "warned.csv", index=False)
    return out / "warned.csv", table["case"].tolist()


def test_train_says_its_warnings_as_input_notes_kept_in_the_metrics(warned_table, tmp_path, capsys, monkeypatch):
    """QA rpfollow65: `rp train`'s warnings (too few events, tumours to review, lungs cut, no dose, EFFECTIVE dose
    ...) were printed on stdout ("warning: ..." lines of TrainResult.lines), not InputNotes said once on stderr as
    rp validate's.  Now each is an InputNote on stderr (none on stdout), kept in metrics.json (the IDs named: a local
    report) and, in its form without the IDs, in the model card."""
    from lungai.cli import main
    from lungai.errors import InputNote
    from note_helpers import notes_made

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table, ids = warned_table
    made = notes_made(monkeypatch)
    assert main(["rp", "train", str(table), "--outcome", "rp_grade2", "-o", str(tmp_path / "m"), "--fast",
                 "--models", "lr", "--feature-sets", "all", "--outer-folds", "3", "--inner-folds", "2",
                 "--bootstrap", "2"]) == 0
    cap = capsys.readouterr()
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text(encoding="utf-8"))
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    assert "warning:" not in cap.out, cap.out                             # nothing on stdout
    said = _said_notes(cap.err)
    for words in ("events per candidate feature", "the automatic tumour of 2 patients needs review",
                  "the lungs of 1 patient are cut by the scan", "1 patient has no dose",
                  "the RTDOSE of 2 patients has DoseType EFFECTIVE"):
        texts = [t for t in said if words in t]
        assert len(texts) == 1, (words, cap.err)                          # said once, on stderr
        assert isinstance(next(n for n in made if str(n) == texts[0]), InputNote)
    assert said == metrics["warnings"], (said, metrics["warnings"])       # each kept in metrics.json, each said
    _without_ids_checked(made, ids)
    assert len(card["warnings"]) == len(said) and not [i for w in card["warnings"] for i in ids if i in w]


def test_predict_says_its_table_and_card_warnings_as_input_notes(warned_table, tmp_path, capsys, monkeypatch):
    """QA rpfollow65: `rp predict`'s warnings on the whole table (tumours to review, lungs cut, no dose, dose notes
    recorded - pred.attrs["warnings"]) and the model card's ("warning: model card: ...") were printed on stdout
    among the risks; now InputNotes said once on stderr ("warning: ..."), those naming patients with a form without
    their IDs.  The patients' own warnings stay under their risks; the predictions CSV keeps them."""
    from lungai.cli import main
    from lungai.errors import InputNote
    from note_helpers import notes_made

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table, ids = warned_table
    assert main(["rp", "train", str(table), "--outcome", "rp_grade2", "-o", str(tmp_path / "m"), "--fast",
                 "--models", "lr", "--feature-sets", "all", "--outer-folds", "3", "--inner-folds", "2",
                 "--bootstrap", "2"]) == 0
    card = json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))
    assert card["warnings"]
    capsys.readouterr()
    made = notes_made(monkeypatch)
    assert main(["rp", "predict", str(tmp_path / "m"), str(table), "-o", str(tmp_path / "pred.csv")]) == 0
    cap = capsys.readouterr()
    assert not [line for line in cap.out.splitlines() if line.startswith("warning: ")], cap.out
    said = _said_notes(cap.err)
    pred, _ = predict_rp(tmp_path / "m", table)
    expected = [str(w) for w in pred.attrs["warnings"]] + [f"model card: {w}" for w in card["warnings"]]
    assert any("the automatic tumour of 2 patients needs review" in w for w in expected)
    assert any("DoseType EFFECTIVE" in w for w in expected) and any("has no dose" in w for w in expected)
    for text in expected:
        assert said.count(text) == 1, (text, cap.err)                     # each said once, on stderr
        assert isinstance(next(n for n in made if str(n) == text), InputNote)
    _without_ids_checked(made, ids)
    assert "model card: " in cap.out                                      # the card's validation line stays
    kept = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    assert "needs review" in kept.loc[1, "warnings"]                     # a row's own warning in the CSV
