"""RP Slicer logic on a real MRML scene: radiomics table node + dose + clinical -> risk table nodes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError, InputNote
from lungai.rp.model_io import load_model
from lungai.rp.predict import predict_rp

from rp_helpers import (rp_cohort, rp_messy_model, rp_model_dir, rp_rf_model_dir,  # noqa: F401  (fixtures)
                        rp_roles_model)


def _patient(rp_cohort, i=0):
    row = rp_cohort.table.iloc[i]
    clinical = {k[len("clin_"):]: row[k] for k in row.index if k.startswith("clin_")}  # prefix optional
    dose = {"case": row["case"], **{k: row[k] for k in row.index if k.startswith("dose_")}}
    rad = {k: row[k] for k in row.index if k.startswith("rad_")}
    return row, clinical, dose, rad


SEGMENTS = {"lungs_minus_tumour": "lungs minus tumour", "lungs": "Lungs", "tumour": "Tumor"}  # longest first


def _features_as_rows(rad: dict) -> pd.DataFrame:
    """The radiomics module's layout: column 'feature' + one column per segment (display names)."""
    cells = {}
    for key, value in rad.items():
        seg = next(s for s in SEGMENTS if key.startswith(f"rad_{s}_"))
        cells[(key[len(f"rad_{seg}_"):], seg)] = float(value)
    feats = sorted({f for f, _ in cells})
    table = {"feature": feats, "image_type": [f.split("_")[0] for f in feats],
             "feature_class": [f.split("_")[1] for f in feats], "name": [f.split("_", 2)[2] for f in feats]}
    for seg, header in SEGMENTS.items():
        table[header] = [cells.get((f, seg), np.nan) for f in feats]
    return pd.DataFrame(table)


def test_predict_node_matches_table_prediction(mrml_scene, rp_model_dir, rp_cohort):
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node

    row, clinical, dose, rad = _patient(rp_cohort, 2)
    rad_node = mrml.table_node_from_dataframe(mrml_scene, _features_as_rows(rad), "radiomics")
    result, contrib = predict_rp_node(mrml_scene, rp_model_dir, rad_node, dose, clinical, case="P2")
    assert result.IsA("vtkMRMLTableNode") and contrib.IsA("vtkMRMLTableNode")
    out = mrml.dataframe_from_table_node(result)
    expected, _ = predict_rp(rp_model_dir, rp_cohort.table.iloc[[2]])
    assert out["case"][0] == "P2"
    assert out["risk"][0] == pytest.approx(expected["risk"][0], abs=1e-9)
    assert out["risk_low"][0] <= out["risk"][0] <= out["risk_high"][0]
    _, card = load_model(rp_model_dir)
    assert out["high_risk"][0] == int(out["risk"][0] >= card["threshold"])
    c = mrml.dataframe_from_table_node(contrib)
    assert list(c.columns) == ["feature", "value", "contribution"] and len(c) == 10
    assert c["feature"][0] == expected["top1_feature"][0]
    assert np.all(np.diff(np.abs(c["contribution"].to_numpy())) <= 1e-12)
    # a second prediction never overwrites the first result nodes
    result2, _ = predict_rp_node(mrml_scene, rp_model_dir, rad_node, dose, clinical, case="P2")
    assert result2 is not result and result.GetName() != result2.GetName()


def test_long_layout_and_clinical_csv(mrml_scene, rp_model_dir, rp_cohort, tmp_path):
    from lungai import mrml
    from lungai.scene.rp import assemble_patient_row

    row, clinical, dose, rad = _patient(rp_cohort, 5)
    long = pd.DataFrame([{"case": "P5", "segment": "Lungs",
                          "image_type": "original", "feature_class": k.split("_")[-2], "feature": k.split("_")[-1],
                          "value": v} for k, v in rad.items() if k.startswith("rad_lungs_original")])
    node = mrml.table_node_from_dataframe(mrml_scene, long, "radiomics long")
    csv = tmp_path / "clinical.csv"
    pd.DataFrame([{"case": "P4", **clinical}, {"case": "P5", **clinical}]).to_csv(csv, index=False)
    assembled = assemble_patient_row(node, dose, csv, case="P5")
    assert assembled["rad_lungs_original_firstorder_Mean"][0] == pytest.approx(row["rad_lungs_original_firstorder_Mean"])
    assert assembled["clin_age_years"][0] == row["clin_age_years"]
    assert assembled["dose_mld_gy"][0] == row["dose_mld_gy"]
    with pytest.raises(InputError, match="'P9' found 0 times"):
        assemble_patient_row(node, dose, csv, case="P9")


def test_missing_dose_feature_is_named(mrml_scene, rp_model_dir, rp_cohort):
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node

    _, clinical, dose, rad = _patient(rp_cohort, 0)
    dose.pop("dose_v20_pct")
    rad_node = mrml.table_node_from_dataframe(mrml_scene, _features_as_rows(rad), "radiomics")
    with pytest.raises(InputError, match="'dose_v20_pct'"):
        predict_rp_node(mrml_scene, rp_model_dir, rad_node, dose, clinical)
    bad = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame({"a": [1.0], "b": [2.0]}), "junk")
    with pytest.raises(InputError, match="unrecognised radiomics table layout"):
        predict_rp_node(mrml_scene, rp_model_dir, bad, dose, clinical)


def test_dose_rows_of_the_radiomics_table(mrml_scene, rp_cohort):
    from lungai import mrml
    from lungai.scene.rp import assemble_patient_row

    row, clinical, dose, rad = _patient(rp_cohort, 1)
    table = _features_as_rows(rad)
    dose_rows = pd.DataFrame({"feature": ["dose_mean_gy", "dose_max_gy", "dose_v20_pct"], "image_type": "dose",
                              "feature_class": "dose", "name": ["dose_mean_gy", "dose_max_gy", "dose_v20_pct"],
                              "lungs minus tumour": [13.5, 60.0, 25.0], "Lungs": [15.0, 66.0, 27.0],
                              "Tumor": [60.1, 66.0, 100.0]})
    node = mrml.table_node_from_dataframe(mrml_scene, pd.concat([table, dose_rows], ignore_index=True), "rad+dose")
    assembled = assemble_patient_row(node, {}, clinical, case="P1")
    assert assembled["dose_mld_gy"][0] == 13.5 and assembled["dose_v20_pct"][0] == 25.0  # lungs minus tumour
    assert assembled["dose_gtv_mean_gy"][0] == 60.1 and assembled["dose_gtv_max_gy"][0] == 66.0
    assert not any("dose" in c for c in assembled.columns if c.startswith("rad_"))
    assert assembled["rad_tumour_original_glcm_Idm"][0] == pytest.approx(row["rad_tumour_original_glcm_Idm"])
    explicit = assemble_patient_row(node, {"dose_mld_gy": 9.0}, clinical, case="P1")
    assert explicit["dose_mld_gy"][0] == 9.0
    # lungai's dose.csv ends with "masks" (what the metrics were computed on): no feature "dose_masks"
    table_node = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame([{"case": "P1", "dose_mld_gy": 9.0,
                                                                          "masks": "lungs: x; minus GTV: y"}]), "d")
    explicit = assemble_patient_row(node, table_node, clinical, case="P1")
    assert explicit["dose_mld_gy"][0] == 9.0 and not [c for c in explicit.columns if "masks" in c]


def test_several_tumour_columns_are_refused_not_overwritten():
    """GTV-1, gtv-2, gtv-3 (LUNG1-003's structures) are all the tumour: never one silently picked (the models'
    tumour is the union of all GTVs, as `lungai cohort` builds it), in every layout and for the dose rows."""
    from lungai.scene.rp import assemble_patient_row, dose_from_radiomics_table, radiomics_features

    names = ["GTV-1", "gtv-2", "gtv-3"]
    rows = pd.DataFrame({"feature": ["original_firstorder_Mean", "dose_mean_gy"], "image_type": ["original", "dose"],
                         **{n: [float(i), 60.0 - i] for i, n in enumerate(names)}, "Lung-Right": [-800.0, 10.0]})
    long = pd.DataFrame({"segment": names, "image_type": "original", "feature_class": "firstorder",
                         "feature": "Mean", "value": [1.0, 2.0, 3.0]})
    for call in (lambda: radiomics_features(rows), lambda: radiomics_features(long),
                 lambda: dose_from_radiomics_table(rows), lambda: assemble_patient_row(rows, {}, {})):
        with pytest.raises(InputError, match="3 tumour segments") as exc:
            call()
        assert all(repr(n) in str(exc.value) for n in names) and "union of all GTVs" in str(exc.value)
        assert "Logical operators" in exc.value.fix
    one = rows.drop(columns=names[1:])            # one tumour column: as before
    assert radiomics_features(one)["rad_tumour_original_firstorder_Mean"] == 0.0
    assert dose_from_radiomics_table(one)["dose_gtv_mean_gy"] == 60.0
    with pytest.raises(InputError, match="'right_lung'"):
        radiomics_features(one.assign(**{"Right lung": [1.0, 2.0]}))


def test_model_trained_with_a_role_file_is_usable_from_slicer(mrml_scene, rp_roles_model, tmp_path):
    """A model trained with a role file keeps the table's names ("Age at diagnosis", "Sex ", "MLD"): the clinical
    form lists them, and the assembled row keeps them (no clin_/dose_ prefix), from a dict or a CSV picked by the
    model's id column ("Patient ID")."""
    from lungai.scene import results
    from lungai.scene.rp import assemble_patient_row, predict_rp_node

    table, model = rp_roles_model
    _, card = load_model(model)
    names = [n for n, _ in results.clinical_fields(results.model_card(model))]
    assert {"Age at diagnosis", "Sex ", "Pack Years", "MLD", "clin_hb_g_dl"} <= set(names)
    assert not any(n.startswith("dose_") for n in names)      # dose_* come from the dose table
    patients = pd.read_csv(table)
    first = patients.iloc[0]
    expected = predict_rp(model, patients.iloc[[0]])[0]["risk"].iloc[0]
    clinical = {n: first[n] for n in names}
    dose = {c: first[c] for c in card["features"] if c.startswith("dose_")}
    row = assemble_patient_row(None, dose, clinical, case="P1", card=card)
    assert set(card["features"]) <= set(row.columns)
    node, _ = predict_rp_node(mrml_scene, model, None, dose, clinical, case="P1")
    assert float(node.GetTable().GetValue(0, 1).ToDouble()) == pytest.approx(expected, abs=1e-4)
    csv = tmp_path / "clinical.csv"
    patients.iloc[:3].to_csv(csv, index=False)                  # three rows: picked by the model's id column
    node, _ = predict_rp_node(mrml_scene, model, None, dose, csv, case=str(first["Patient ID"]))
    assert float(node.GetTable().GetValue(0, 1).ToDouble()) == pytest.approx(expected, abs=1e-4)


def test_clinical_csv_ids_that_look_like_numbers_stay_text(tmp_path):
    """QA: the Slicer path read the clinical CSV with a plain pandas.read_csv, so patient "001" became 1 and was
    not found.  It is read as rp predict reads tables (lungai.rp.checks.read_table: the id columns as text); a case
    written without its leading zeros is named with a hint, as are close spellings."""
    from lungai.scene.rp import clinical_features

    csv = tmp_path / "clinical.csv"
    csv.write_text("patient_id,clin_age,clin_sex,clin_smoking\n001,71,M,current\n002,64,F,never\n010,58,M,former\n",
                   encoding="utf-8")
    assert clinical_features(csv, "001") == {"clin_age": 71, "clin_sex": "M", "clin_smoking": "current"}
    assert clinical_features(csv, "010")["clin_age"] == 58
    with pytest.raises(InputError, match=r"'1' found 0 times .*differs only by leading zeros \(1 vs 001\)"):
        clinical_features(csv, "1")
    with pytest.raises(InputError, match=r"'0002' found 0 times .*did you mean '002'"):
        clinical_features(csv, "0002")
    (tmp_path / "semicolon.csv").write_text("patient_id;clin_age\n001;71,5\n002;64\n", encoding="utf-8")
    with pytest.warns(InputNote, match="semicolon-separated with decimal commas"):      # a decimal-comma 'CSV'
        assert clinical_features(tmp_path / "semicolon.csv", "001") == {"clin_age": 71.5}


def test_clinical_csv_case_spelt_otherwise_is_named(tmp_path):
    """QA: a case differing from the clinical CSV's id by case, separator, padding or a look-alike dash got only
    "did you mean" (the en dash one looks identical), while lungai rp names such pairs
    (lungai.io.tables.id_spelling_hint); the id column searched is named too.  Real NSCLC-Radiogenomics ids."""
    from lungai.scene.rp import clinical_features

    csv = tmp_path / "clinical.csv"
    csv.write_text("Case ID,clin_age\nR01-001,71\nR01-002,64\nAMC-001,58\n", encoding="utf-8")
    assert clinical_features(csv, "R01-001", id_column="Case ID")["clin_age"] == 71
    for case, hint in (("R01_001", r"differs only in letter case or separators \(R01_001 vs R01-001\)"),
                       ("r01-1", r"differs only in separators, letter case or the zeros padding their numbers "
                                 r"\(r01-1 vs R01-001\)"),
                       ("R01-1", r"differs only in the zeros padding their numbers \(R01-1 vs R01-001\)"),
                       ("AMC\u2013001", r"differs only in its dash \(AMC\u2013001 \(U\+2013\) vs AMC-001\)")):
        with pytest.raises(InputError, match=rf"found 0 times in column 'Case ID' of .*{hint}"):
            clinical_features(csv, case, id_column="Case ID")
    with pytest.raises(InputError, match=r"'patient' found 0 times(.|\n)*How to fix: give case= the patient's id as "
                       r"written in column 'Case ID' \(e\.g\. 'R01-001', 'R01-002', 'AMC-001'\)"):
        clinical_features(csv, "patient", id_column="Case ID")    # predict_rp_node's default case: no case given
    csv.write_text("Case ID,clin_age\nR01-001,71\nR01-001,64\nAMC-001,58\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"'R01-001' found 2 times in column 'Case ID' of \S+\n  How to fix: keep one "
                                         "row per patient"):         # not "did you mean 'R01-001', 'R01-001'?"
        clinical_features(csv, "R01-001", id_column="Case ID")


def _loaded_features_table(scene, rad: dict, failed=("tumour",)):
    """A features-as-rows radiomics table as LungRadiomics.loadFeatures makes it (long rows of each computed segment ->
    lungai.scene.results.features_by_segment -> nodes.volume_table): a segment whose command failed (``failed``) has
    no rows, so its column is all NaN."""
    import SimpleITK as sitk

    from lungai import mrml
    from lungai.scene import nodes, results

    columns = {key: header for key, header in SEGMENTS.items()}
    cells = {}
    for key, value in rad.items():
        seg = next(s for s in SEGMENTS if key.startswith(f"rad_{s}_"))
        cells[(seg, key[len(f"rad_{seg}_"):])] = value
    long_rows = []
    computed = [s for s in SEGMENTS if s not in failed]
    for feature in sorted({f for _, f in cells}):    # each computed segment has every feature (as a real run)
        image_type, feature_class, name = feature.split("_", 2)
        for seg in computed:
            long_rows.append({"case": "CT", "segment": seg, "image_type": image_type, "feature_class": feature_class,
                              "feature": name, "value": str(cells.get((seg, feature), 1.0))})
    names, rows = results.features_by_segment(long_rows, columns)
    frame = pd.DataFrame(rows, columns=names)
    volume = mrml.volume_node_from_image(scene, sitk.Image(4, 4, 4, sitk.sitkInt16), "CT")
    return nodes.volume_table(scene, frame, "CT radiomics", volume, made_by=nodes.RADIOMICS_MADE_BY)


def test_a_segment_not_computed_is_imputed_not_missing(mrml_scene, rp_model_dir, rp_cohort):
    """Review of b32d194: an all-NaN column (Lung Radiomics' failed tumour segment) became a text column of '' in
    the table node, radiomics_features dropped it and Multimodal Predict failed "required column(s) missing:
    'rad_tumour_...'" instead of imputing them; a table read by Slicer's CSV reader (all text) and a one-row rad_*
    table with an empty cell (ValueError in float('')) now work too."""
    import vtk

    from lungai import mrml
    from lungai.scene.rp import predict_rp_node, radiomics_features

    _, clinical, dose, rad = _patient(rp_cohort, 3)
    _, card = load_model(rp_model_dir)
    tumour = [f for f in card["features"] if f.startswith("rad_tumour_")]
    assert tumour
    node = _loaded_features_table(mrml_scene, rad)
    table = node.GetTable()
    assert isinstance(table.GetColumnByName("Tumor"), vtk.vtkDoubleArray)      # a NaN column, not text
    result, _ = predict_rp_node(mrml_scene, rp_model_dir, node, dose, clinical, case="P3")
    out = mrml.dataframe_from_table_node(result)
    assert 0 <= out["risk"][0] <= 1
    assert set(tumour) <= set(out["imputed"][0].split("; "))
    assert not [f for f in out["imputed"][0].split("; ") if f and not f.startswith("rad_tumour_")]
    # the same table as Slicer's CSV reader loads it: every column text, the failed segment's cells ''
    frame = mrml.dataframe_from_table_node(node)
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    text_node = mrml.table_node_from_dataframe(mrml_scene, text, "CT radiomics (csv)")
    got = radiomics_features(text_node)
    want = radiomics_features(node)
    assert got.keys() == want.keys()
    assert all((np.isnan(got[k]) and np.isnan(want[k])) or got[k] == pytest.approx(want[k]) for k in got)
    result2, _ = predict_rp_node(mrml_scene, rp_model_dir, text_node, dose, clinical, case="P3")
    assert mrml.dataframe_from_table_node(result2)["risk"][0] == pytest.approx(out["risk"][0])
    # layout 3: one row of rad_* columns, one cell empty
    row = {k: [str(v)] for k, v in rad.items()}
    row[tumour[0]] = [""]
    wide = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame(row), "rad row")
    features = radiomics_features(wide)
    assert np.isnan(features[tumour[0]]) and features[tumour[1]] == pytest.approx(float(rad[tumour[1]]))
    result3, _ = predict_rp_node(mrml_scene, rp_model_dir, wide, dose, clinical, case="P3")
    assert mrml.dataframe_from_table_node(result3)["imputed"][0] == tumour[0]


def test_predict_node_says_the_review_notes_of_the_radiomics_table(mrml_scene, rp_model_dir, rp_cohort):
    """The console's predict_rp_node, as Multimodal Predict: the review notes Lung Radiomics (or radiomics_table)
    records on its table (a tumour flagged for expert review) are in the risk's warnings."""
    from lungai import mrml
    from lungai.scene import nodes
    from lungai.scene.rp import predict_rp_node

    _, clinical, dose, rad = _patient(rp_cohort, 0)
    node = mrml.table_node_from_dataframe(mrml_scene, _features_as_rows(rad), "radiomics")
    result, _ = predict_rp_node(mrml_scene, rp_model_dir, node, dose, clinical)
    assert mrml.dataframe_from_table_node(result)["warnings"].fillna("").iloc[0] == ""
    note = "the segment 'Tumor' of CT tumour is flagged for expert review by Lung AI Segmentation (low confidence)"
    nodes.record_review_notes(node, [note])
    result, _ = predict_rp_node(mrml_scene, rp_model_dir, node, dose, clinical)
    assert mrml.dataframe_from_table_node(result)["warnings"].iloc[0] == note


def test_clinical_form_offers_categories_merged_in_any_case(rp_messy_model):
    """The Multimodal Predict form offered M, MALE, Male, male ... (each spelling a category of the model): it offers
    the model's categories, spellings differing only in case merged, and a value typed in any case is read as one."""
    from lungai.scene import results
    from lungai.scene.rp import assemble_patient_row
    from lungai.rp.predict import predict_rp

    table, model = rp_messy_model
    card = results.model_card(model)
    fields = dict(results.clinical_fields(card))
    assert fields["clin_sex"] == "one of: F, Female, M, Male (any case)"
    assert fields["clin_comorb"] == "one of: COPD, ILD, None (any case)"
    risks = set()
    for sex in ("Male", "MALE", "male"):
        row = assemble_patient_row(None, {"dose_mld_gy": 15.0}, {"age_years": 70.0, "sex": sex, "comorb": "None",
                                                               "weight_kg": 80.0}, card=card)
        pred, _ = predict_rp(model, row)
        assert pred["imputed"].fillna("").iloc[0] == ""
        risks.add(round(float(pred["risk"].iloc[0]), 6))
    assert len(risks) == 1


def test_contributions_table_lists_no_feature_the_model_does_not_use(mrml_scene, rp_rf_model_dir, rp_cohort):
    """QA explain59: the panel's contributions table filled its top rows with columns the model's selection step
    dropped (contribution exactly 0, in column order: e.g. clin_age_years '+0.000'), listed as top contributors,
    while rp predict's top features leave them out.  Now the table is rp predict's list (top_contributions)."""
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node

    row, clinical, dose, _ = _patient(rp_cohort, 1)
    _, card = load_model(rp_rf_model_dir)
    n = len(card["features"])
    _, contrib = predict_rp_node(mrml_scene, rp_rf_model_dir, None, dose, clinical, case="P1", top=n)
    c = mrml.dataframe_from_table_node(contrib)
    _, full = predict_rp(rp_rf_model_dir, rp_cohort.table.iloc[[1]], top=n)
    used = full.drop(columns="case").iloc[0]
    assert len(used[used == 0]) > 0                      # the selection dropped some of the model's columns
    assert sorted(c.feature) == sorted(used[used != 0].index) and (c.contribution != 0).all()


def test_predict_node_marks_a_training_patient_in_sample(mrml_scene, rp_model_dir, rp_cohort):
    """The model's own training patient (its case ID): the risk is in-sample - said in the table's warnings, as
    ``rp predict`` says it (lungai.model_files.in_sample_patients); another case is not marked."""
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node

    row, clinical, dose, rad = _patient(rp_cohort, 3)
    rad_node = mrml.table_node_from_dataframe(mrml_scene, _features_as_rows(rad), "radiomics")
    with pytest.warns(InputNote, match=r"the 1 patient was in the model's training cohort \(.*\): its prediction "
                                        r"is in-sample \(the model was fitted to its outcome\)"):
        seen, _ = predict_rp_node(mrml_scene, rp_model_dir, rad_node, dose, clinical, case=row["case"])
    out = mrml.dataframe_from_table_node(seen)
    assert str(out["training_patient"][0]) == "True"
    assert "a training patient of this model: the prediction is in-sample" in out["warnings"][0]
    new, _ = predict_rp_node(mrml_scene, rp_model_dir, rad_node, dose, clinical, case="NEW-1")
    out = mrml.dataframe_from_table_node(new)
    assert str(out["training_patient"][0]) == "False" and "in-sample" not in str(out["warnings"][0])
