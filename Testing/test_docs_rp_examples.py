"""The RP console examples of the docs, run as written against a small model trained on ``lungai rp synth``'s cohort
(what the docs train): README.md and docs/rp.md (``predict_rp_node``) and docs/slicer.md (Multimodal Predict's logic;
its Lung AI Segmentation lines up to the command they build).

QA: README / docs/rp.md's clinical dict lacked ``pack_years`` (every synth model needs it: "1 required column(s)
missing: 'clin_pack_years'"); docs/slicer.md's example gave only age and sex "M" (the model knows female / male) and
no dose table, so no risk could come out.  The examples are read from the docs here, so that they cannot drift again.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SEGMENTS = {"lungs_minus_tumour": "lungs minus tumour", "lungs": "Lungs", "tumour": "Tumor"}  # longest first


def _python_blocks(doc: str, needle: str) -> list[str]:
    text = (REPO / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if needle in b]
    assert found, f"{doc}: no python example with {needle}"
    return found


@pytest.fixture(scope="module")
def synth_model(tmp_path_factory):
    """(cohort, model dir): the docs' ``lungai rp synth`` + ``lungai rp train --models lr --final all/lr``, small."""
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    out = tmp_path_factory.mktemp("rp_docs")
    cohort = make_cohort(80, seed=1)
    train_rp(cohort.table, cohort.outcome, out / "model", models="lr", outer_folds=2, inner_folds=2, fast=True,
             n_boot=2, final="all/lr", make_plots=False, seed=0)
    return cohort, out / "model"


def _features_as_rows(row: pd.Series) -> pd.DataFrame:
    """One patient's rad_* values as Lung Radiomics' table: column 'feature' + one column per segment."""
    cells = {}
    for key, value in row.items():
        if key.startswith("rad_"):
            seg = next(s for s in SEGMENTS if key.startswith(f"rad_{s}_"))
            cells[(key[len(f"rad_{seg}_"):], seg)] = float(value)
    feats = sorted({f for f, _ in cells})
    table = {"feature": feats, "image_type": [f.split("_")[0] for f in feats],
             "feature_class": [f.split("_")[1] for f in feats]}
    for seg, header in SEGMENTS.items():
        table[header] = [cells.get((f, seg), np.nan) for f in feats]
    return pd.DataFrame(table)


def _inputs(scene, cohort):
    from lungai import mrml

    table = cohort.table
    row = table[table.notna().all(axis=1)].iloc[0]        # a patient with every value (the cohort imputes some)
    radiomics = mrml.table_node_from_dataframe(scene, _features_as_rows(row), "Radiomics")
    dose = mrml.table_node_from_dataframe(scene, pd.DataFrame([{k: row[k] for k in row.index
                                                                 if k.startswith("dose_")}]), "Dose features")
    return radiomics, dose


def _table_names(block: str) -> list[str]:
    """The node names the example's ``radiomics = getNode(...)`` and ``dose = getNode(...)`` lines get."""
    return [re.search(rf'^{var} = getNode\("([^"]+)"\)', block, flags=re.M).group(1) for var in ("radiomics", "dose")]


@pytest.mark.parametrize("doc", ["README.md", "docs/rp.md"])
def test_predict_rp_node_example_gets_the_tables_lung_radiomics_makes(mrml_scene, small_phantom, doc):
    """The example's getNode names are those of the tables the radiomics step makes for the CT "CT": README's console
    blocks chain (a volume "CT"; its radiomics block's ``radiomics_table`` makes the table) and the Lung Radiomics
    panel names its tables the same way, "<CT> radiomics" / "<CT> dose features" (QA newuser65: the example read
    ``getNode("Radiomics")``, a table only the demo's scene.mrb holds: pasted after README's radiomics block it failed,
    "could not find nodes in the scene by name or id 'Radiomics'")."""
    from lungai import mrml
    from lungai.scene.radiomics import radiomics_table
    from lungai.scene.rp import risk_case
    from lungai.synthetic import labels

    block = _python_blocks(doc, "predict_rp_node(")[0]
    radiomics_name, dose_name = _table_names(block)
    volume = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, small_phantom.labels == labels.TUMOUR, "Tumor",
                                  reference_volume_node=volume)
    table, errors = radiomics_table(mrml_scene, volume, seg, segments=["Tumor"], feature_classes=["firstorder"])
    assert not errors and radiomics_name == table.GetName(), (radiomics_name, table.GetName())
    dose = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame([{"dose_mld_gy": 10.0}]), dose_name)
    assert risk_case(None, dose) == "CT", dose_name       # a Lung Radiomics dose table of the CT "CT"


@pytest.mark.parametrize("doc", ["README.md", "docs/rp.md"])
def test_predict_rp_node_example_gives_a_risk(mrml_scene, synth_model, doc):
    from lungai import mrml

    cohort, model = synth_model
    for block in _python_blocks(doc, "predict_rp_node("):
        nodes = dict(zip(_table_names(block), _inputs(mrml_scene, cohort)))     # the tables by the docs' names
        code = re.sub(r'"(/path/)?rp_model"', repr(str(model)), block)
        assert code != block, "the example's model path changed: update this test"
        space = {"getNode": nodes.__getitem__, "slicer": types.SimpleNamespace(mrmlScene=mrml_scene)}
        exec(compile(code, doc, "exec"), space)          # noqa: S102 - the documented example, as written
        result = next(v for v in space.values() if hasattr(v, "GetClassName") and v.GetName().endswith("RP risk"))
        row = mrml.dataframe_from_table_node(result).iloc[0]
        assert 0 < float(row["risk"]) < 1
        assert str(row["imputed"]).strip() in ("", "nan"), row["imputed"]   # every feature given by the example


def test_predict_rp_node_names_every_missing_clinical_field(mrml_scene, synth_model):
    """As the panel's Compute risk: all the missing clinical fields named at once, not one column at a time."""
    from lungai.errors import InputError
    from lungai.scene.rp import predict_rp_node

    cohort, model = synth_model
    radiomics, dose = _inputs(mrml_scene, cohort)
    with pytest.raises(InputError) as err:
        predict_rp_node(mrml_scene, model, radiomics, dose, {"age_years": 71, "sex_cat": "male"})
    text = str(err.value)
    assert "The model needs 6 values the inputs do not give: clinical " in text, text
    for name in ("clin_pack_years", "clin_hb_g_dl", "clin_tiffeneau_pct", "clin_platelets_10e9_l", "clin_durvalumab",
                 "clin_histology_cat"):
        assert repr(name) in text
    assert "clin_age_years" not in text and "None / an empty cell is imputed" in text
    # an empty value is imputed, not refused (README: "an empty value is imputed")
    full = {k[len("clin_"):]: v for k, v in cohort.table.iloc[0].items() if k.startswith("clin_")}
    node, _ = predict_rp_node(mrml_scene, model, radiomics, dose, dict(full, pack_years=None))
    from lungai import mrml

    assert "clin_pack_years" in str(mrml.dataframe_from_table_node(node)["imputed"].iloc[0])


def test_slicer_md_multimodal_example_gives_a_risk(mrml_scene, synth_model, tmp_path, capsys):
    """docs/slicer.md's console example, its Multimodal Predict lines run as written (the tables of Lung Radiomics made
    here): every clinical field the model's form asks for, in the model's words, and the dose table."""
    from lungai.rp.model_io import load_model
    from lungai.scene.results import form_features
    from slicer_module_helpers import import_module_logic, restore

    cohort, model = synth_model
    block = _python_blocks("docs/slicer.md", "MultimodalPredictLogic()")[0]
    assert "r.doseVolume = " in block             # the dose table the risk lines use comes from a dose volume
    lines = block[block.index("mm = MultimodalPredict."):]
    code = lines.replace('pathlib.Path("/path/to/rp_model")', f"pathlib.Path({str(model)!r})")
    assert code != lines, "the example's model path changed: update this test"
    _, card = load_model(model)
    values = json.loads(re.search(r"json\.dumps\((\{.*?\})\)", code, flags=re.S).group(1))
    assert sorted(values) == sorted(form_features(card))
    for name, choices in (card.get("categories") or {}).items():
        if name in values:
            assert values[name] in choices, (name, values[name], choices)
    radiomics, dose = _inputs(mrml_scene, cohort)
    module, handle = import_module_logic("MultimodalPredict", mrml_scene, tmp_path)
    try:
        space = {"MultimodalPredict": module, "json": json, "pathlib": __import__("pathlib"),
                 "r": types.SimpleNamespace(outputTable=radiomics, doseTable=dose)}
        exec(compile(code, "docs/slicer.md", "exec"), space)    # noqa: S102 - the documented example, as written
    finally:
        restore(handle)
    printed = capsys.readouterr().out
    # the headline names the endpoint (rppredict62): "Risk of grade >= 2 radiation pneumonitis: 49 % (...)"
    assert re.search(r"^Risk of grade >= 2 radiation pneumonitis: \d+ %", printed, flags=re.M), printed
    assert "Imputed" not in printed and "Warning" not in printed, printed


def test_predict_rp_node_says_what_the_risk_is_of(mrml_scene, synth_model):
    """The console's risk table says what the risk is of, as ``rp predict``'s CSV (and so the Multimodal Predict
    panel's risk table, made from that CSV) does in its ``endpoint`` column (QA newuser65: README's console chain gave
    a table of risk, interval, threshold, model ... but no endpoint - a risk of what, it did not say)."""
    from lungai import mrml
    from lungai.rp.predict import predict_rp
    from lungai.scene.rp import assemble_patient_row, predict_rp_node

    cohort, model = synth_model
    radiomics, dose = _inputs(mrml_scene, cohort)
    clinical = {k[len("clin_"):]: v for k, v in cohort.table.iloc[0].items() if k.startswith("clin_")}
    node, _ = predict_rp_node(mrml_scene, model, radiomics, dose, clinical)
    columns = list(mrml.dataframe_from_table_node(node).columns)
    assert "endpoint" in columns, columns
    row = mrml.dataframe_from_table_node(node).iloc[0]
    cli, _ = predict_rp(model, assemble_patient_row(radiomics, dose, clinical))
    assert row["endpoint"] == cli["endpoint"].iloc[0] == "grade >= 2 radiation pneumonitis"
    assert columns.index("endpoint") > columns.index("high_risk")      # where rp predict's CSV has it


_TOP = re.compile(r"top\d+_(feature|contribution)")


def test_predict_rp_node_has_the_columns_of_rp_predict(mrml_scene, synth_model):
    """The console's risk table has every column of ``rp predict``'s CSV row (what the Multimodal Predict panel's
    risk table, made from that CSV, shows), in its order, with ``model`` after ``high_risk``; the top features are its
    contributions table (QA docs2_65: it had ``illustrative`` but not ``baseline_risk`` - the risk the contributions
    are measured against -, and docs/rp.md's list of its columns left ``illustrative`` out)."""
    from lungai import mrml
    from lungai.rp.predict import predict_rp
    from lungai.scene.rp import assemble_patient_row, predict_rp_node

    cohort, model = synth_model
    radiomics, dose = _inputs(mrml_scene, cohort)
    clinical = {k[len("clin_"):]: v for k, v in cohort.table.iloc[0].items() if k.startswith("clin_")}
    node, _ = predict_rp_node(mrml_scene, model, radiomics, dose, clinical, case="patient 7")
    cli, _ = predict_rp(model, assemble_patient_row(radiomics, dose, clinical, case="patient 7"))
    assert "illustrative" in cli.columns and "baseline_risk" in cli.columns   # a synthetic cohort's model
    expected = [c for c in cli.columns if not _TOP.fullmatch(c)]
    expected.insert(expected.index("high_risk") + 1, "model")
    table = mrml.dataframe_from_table_node(node)
    assert list(table.columns) == expected
    assert float(table["baseline_risk"].iloc[0]) == pytest.approx(float(cli["baseline_risk"].iloc[0]))
    assert table["case"].iloc[0] == "patient 7"


def test_docs_list_every_column_of_rp_predict(synth_model):
    """docs/rp.md's list of ``rp predict -o``'s columns (which the console's table refers to) names every column
    the CSV has (QA docs2_65: ``endpoint``, ``training_patient`` and ``illustrative`` were not in it)."""
    from lungai.rp.predict import predict_rp

    cohort, model = synth_model
    cli, _ = predict_rp(model, cohort.table.iloc[:3])
    text = (REPO / "docs/rp.md").read_text(encoding="utf-8")
    listed = text[text.index("`predict -o FILE` writes one row per patient"):]
    listed = listed[:listed.index("`top1_feature, top1_contribution")]
    missing = [c for c in cli.columns if not _TOP.fullmatch(c) and f"`{c}`" not in listed and f"{c}," not in listed]
    assert not missing, missing


def test_slicer_md_segmentation_example_places_a_seed(mrml_scene, small_phantom, tmp_path, monkeypatch):
    """docs/slicer.md's console example, its Lung AI Segmentation lines run as written on a sample-like CT (the
    sample's meta.json with its planted tumour): the tumour run gets a seed point inside the tumour (QA docs2_65: the
    panel's default mode is 'seed' and the example placed none - startSegmentation raised "Place a seed point inside
    the tumour (mode 'seed')").  The child processes are not run: ``run`` builds the job's command only."""
    from lungai import mrml
    from LungAICommon import sampledata
    from slicer_module_helpers import import_module_logic, restore

    block = _python_blocks("docs/slicer.md", "LungAISegLogic()")[0]
    code = block[:block.index("rad = LungRadiomics.")]
    (tmp_path / "meta.json").write_text(json.dumps(small_phantom.meta), encoding="utf-8")
    ct = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, sampledata.CT_NODE_NAME)
    monkeypatch.setattr(sampledata, "load_into_slicer", lambda source=None: ct)
    monkeypatch.setattr(sampledata, "sample_folder", lambda: tmp_path)   # Slicer's cache folder (none headless)
    module, handle = import_module_logic("LungAISeg", mrml_scene, tmp_path)
    commands = []
    try:
        logic = module.LungAISegLogic
        monkeypatch.setattr(logic, "run", lambda self, start, p: commands.append(
            self.segmentationCommand(p, tmp_path) if start.__name__ == "startSegmentation" else ["lungs"]))
        monkeypatch.setattr(logic, "loadLungs", lambda self, p, job: "Right lung 1 ml, Left lung 1 ml")
        monkeypatch.setattr(logic, "loadSegmentation", lambda self, p, job: {"confidence": 0.9})
        space = {"LungAISeg": module, "LungRadiomics": None, "MultimodalPredict": None, "json": json,
                 "pathlib": __import__("pathlib"), "slicer": __import__("slicer"), "sampledata": sampledata}
        code = code.replace("from LungAICommon import sampledata\n", "").replace(
            "import LungAISeg, LungRadiomics, MultimodalPredict, json, pathlib\n", "")   # given in space
        exec(compile(code, "docs/slicer.md", "exec"), space)    # noqa: S102 - the documented example, as written
    finally:
        restore(handle)
    segment = commands[-1]
    assert "--seed-point" in segment, segment
    seed = [float(v) for v in segment[segment.index("--seed-point") + 1].split(",")]
    index = small_phantom.ct.TransformPhysicalPointToIndex(seed)          # LPS, as lungai segment reads it
    labels = sitk.GetArrayViewFromImage(small_phantom.labels)
    assert small_phantom.meta["label_values"][str(int(labels[index[::-1]]))] == "tumour", seed
