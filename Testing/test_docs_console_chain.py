"""README's Slicer Python console examples, pasted in order into one console, run as written on real MRML (slicer-core,
Slicer's own ``slicer.util.getNode``): lungs -> tumour -> radiomics -> stage must chain.

QA: the tumour example lacked ``seg_node=seg_node`` (the tumour went into a node of its own, "CT tumour", not the
lungs' node), and the radiomics and stage examples read ``getNode("Segmentation")``, a node no example (nor
Lung AI Segmentation) makes - MRMLNodeNotFoundException when pasted.  docs/radiomics.md and docs/stage.md's console
examples name the node Lung AI Segmentation makes ("CT lungs": the lungs, and the tumour added to them).
The examples are read from the docs here, so that they cannot drift again.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAIN = ("segment_lungs_node(", "segment_tumour_node(", "radiomics_table(", "predict_stage_nodes(")
PATIENT = "R01-042"                          # README's stage example's patient


def _blocks(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / doc).read_text(encoding="utf-8"), flags=re.S)


def _one(doc: str, needle: str) -> str:
    found = [b for b in _blocks(doc) if needle in b]
    assert len(found) == 1, f"{doc}: {len(found)} python examples with {needle}"
    return found[0]


@pytest.fixture(scope="module")
def stage_model(tmp_path_factory):
    """(fitted fusion pipeline, EHR csv with README's patient added, RNA csv, a patient of both): a tiny
    ``lungai stage synth`` + train."""
    from lungai.fusion.data import load_cohort
    from lungai.fusion.pipeline import FusionConfig, FusionPipeline
    from lungai.fusion.synthetic import make_cohort

    out = tmp_path_factory.mktemp("stage_docs")
    paths = make_cohort(out, n=24, seed=3, n_genes=40, module_size=8, ct_shape=(48, 48, 24),
                        ct_spacing=(6.0, 6.0, 5.0), rna_shift=3.0)
    cohort = load_cohort(paths["ehr"], paths["rna"], paths["ct"], label="stage")
    pipe = FusionPipeline(FusionConfig(epochs=5, patience=100, top_k=40, neighbours=4, seed=0, lr=1e-2),
                          ["I", "II", "III"]).fit(cohort)
    ehr = pd.read_csv(paths["ehr"])
    pid = next(i for i in cohort.ids if cohort.availability().loc[i, "rna"])
    pd.concat([ehr, ehr.iloc[[0]].assign(patient_id=PATIENT)]).to_csv(out / "ehr.csv", index=False)
    return pipe, out / "ehr.csv", paths["rna"], pid


def _scene_with_ct_and_seed(scene, phantom):
    from lungai import mrml

    vol = mrml.volume_node_from_image(scene, phantom.ct, "CT")
    centre = phantom.meta["tumour"]["centre_mm"]
    point = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    point.AddControlPoint(-centre[0], -centre[1], centre[2])          # LPS -> RAS
    return vol


def _run(block: str, space: dict, name: str, replace: dict | None = None) -> None:
    code = block
    for old, new in (replace or {}).items():
        assert old in code, f"{name}: {old!r} no longer in the example: update this test"
        code = code.replace(old, new)
    exec(compile(code, name, "exec"), space)              # noqa: S102 - the documented example, as written


def test_readme_console_examples_chain(mrml_scene, small_phantom, stage_model, tmp_path, monkeypatch):
    import slicer

    from lungai import mrml

    monkeypatch.chdir(tmp_path)                            # export_table_csv(table, "features.csv") writes here
    pipe, ehr, _, _ = stage_model
    vol = _scene_with_ct_and_seed(mrml_scene, small_phantom)
    blocks = [_one("README.md", needle) for needle in CHAIN]
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert [text.index(b) for b in blocks] == sorted(text.index(b) for b in blocks), "README's order changed"
    space = {"slicer": slicer, "__name__": "__console__", "stage_model": pipe}
    _run(blocks[0], space, "README lungs")
    lungs_node = space["seg_node"]
    assert set(mrml.segment_names(lungs_node)) >= {"Right lung", "Left lung"}
    _run(blocks[1], space, "README tumour")
    out = space["out"]
    assert out["segmentation"] is lungs_node, "the tumour example must add 'Tumor' to the lungs' segmentation"
    assert "Tumor" in mrml.segment_names(lungs_node)
    assert out["result"]["roi_mode"] == "seed"
    _run(blocks[2], space, "README radiomics")
    table, errors = space["table"], space["errors"]
    assert errors == {}
    df = mrml.dataframe_from_table_node(table)
    for segment in ("Tumor", "Right lung", "Left lung"):
        assert np.isfinite(pd.to_numeric(df[segment], errors="coerce")).any(), segment
    assert (tmp_path / "features.csv").is_file()
    _run(blocks[3], space, "README stage", {'"stage_model"': "stage_model", '"ehr.csv"': repr(str(ehr))})
    probs = mrml.dataframe_from_table_node(space["nodes"]["probabilities"])
    assert probs.probability.sum() == pytest.approx(1.0, abs=1e-5)
    assert space["nodes"]["gradcam"] is not None                  # the CT and the tumour reached the model
    assert vol.GetName() == "CT"


def test_docs_console_examples_name_real_nodes(mrml_scene, small_phantom, stage_model, tmp_path):
    """docs/radiomics.md and docs/stage.md's examples, run after Lung AI Segmentation's lungs + tumour (made by
    the README examples' calls): every node they get by name exists."""
    import slicer

    from lungai import mrml
    from lungai.scene.lungs import segment_lungs_node
    from lungai.scene.segment import segment_tumour_node

    pipe, ehr, rna, pid = stage_model
    vol = _scene_with_ct_and_seed(mrml_scene, small_phantom)
    seg_node, _, _, _ = segment_lungs_node(mrml_scene, vol, progress=lambda *a: None)
    segment_tumour_node(mrml_scene, vol, point_node=slicer.util.getNode("F"), seg_node=seg_node)
    dose = mrml.volume_node_from_image(mrml_scene, small_phantom.ct * 0 + 2, "RTDOSE")   # 2 Gy everywhere
    assert dose.GetName() == "RTDOSE"
    space = {"slicer": slicer, "getNode": slicer.util.getNode, "stage_model": pipe}
    _run(_one("docs/radiomics.md", "radiomics_table("), space, "docs/radiomics.md",
         {'"/tmp/radiomics.csv"': repr(str(tmp_path / "radiomics.csv"))})
    assert space["errors"] == {}
    assert (tmp_path / "radiomics.csv").is_file()
    _run(_one("docs/stage.md", "predict_stage_nodes("), space, "docs/stage.md",
         {'"/tmp/stage_model"': "stage_model", '"clinical.csv"': repr(str(ehr)), '"rna.csv"': repr(str(rna))}
         | {'"R01-023"': repr(pid)})
    assert space["out"]["gradcam"] is not None
