"""Review of the lungs_cut rule (082e117): an older cohort folder's results are redone (the rule and the Lungs-GTV
radiomics recorded in a patient's inputs), the Multimodal Predict panel and the Lung Radiomics panel's message warn
about cut lungs, and the flag rests on the lung volume estimated left off (a small apex cut is a note)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dicom_helpers import rt_export
from cohort_helpers import said_notes
from lungai.dicom.cohort import run_cohort
from lungai.radiomics import load_params
from rp_helpers import rp_cohort, rp_model_dir  # noqa: F401  (fixtures)

PARAMS = load_params("default", feature_classes=["shape", "firstorder"])


def _ellipsoid(keep=slice(None)) -> sitk.Image:
    """Lungs as one ellipsoid (90 mm semi-axes, 1 x 1 x 3 mm voxels, z up), cut to the slices ``keep``."""
    z, y, x = np.ogrid[-35:35, -100:100, -100:100]
    arr = ((x / 90.0) ** 2 + (y / 90.0) ** 2 + (z * 3 / 90.0) ** 2 <= 1).astype(np.uint8)[keep]
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 3.0))
    return img


def _area(text: str, which: str) -> float:
    return float(re.search(rf"(\d+) cm² of lung on the {which} slice", text).group(1))


def test_the_flag_rests_on_the_volume_left_off():
    from lungai.dose.features import LUNGS_CUT_FRACTION, lungs_cut

    assert lungs_cut(_ellipsoid()) == ("", "")
    # a dome cut near its tip (tens of cm², as LUNG1-002's apex: 17 cm², 2.3 ml of 3798 ml): a note, no flag
    flag, note = lungs_cut(_ellipsoid(slice(0, 64)))
    assert flag == "" and note.startswith("lungs touch the top of the scan:") and _area(note, "last") > 10
    assert "% of the lungs estimated left off" in note and f"under {100 * LUNGS_CUT_FRACTION:g} %" in note
    # cut well above the tip: flagged, with the estimate
    flag, note = lungs_cut(_ellipsoid(slice(0, 50)))
    assert flag == note and flag.startswith("lungs cut at the top of the scan:") and "estimated left off" in flag
    assert "(or drop this row)" in flag
    # cut at the largest section (mid-lung): flagged
    flag, _ = lungs_cut(_ellipsoid(slice(0, 36)))
    assert "cut mid-lung" in flag
    flag, _ = lungs_cut(_ellipsoid(slice(25, 60)))    # z up: the last slice is the top
    assert flag.startswith("lungs cut at the top and bottom of the scan:")
    assert _area(flag, "last") < _area(flag, "first")


def test_lungs_cut_estimate_of_a_paraboloid_cap():
    from lungai.dose.features import lungs_cut_estimate

    # area growing 10 cm² per 1 cm slice from the end slice (10 cm²) to 50 cm²: a cap of 1 cm, 5 ml
    (k, a, ml), = lungs_cut_estimate([10, 20, 30, 40, 50, 0], 10.0)
    assert (k, a) == (0, 10) and ml == pytest.approx(5.0)
    assert lungs_cut_estimate([50, 40, 0], 10.0)[0][2] == float("inf")     # the largest section is the end one


def _lungs_gtv_export(export: Path, root: Path) -> None:
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    lmg = sitk.And(sitk.Or(masks["Lung_R"], masks["Lung_L"]), sitk.Not(masks["GTV"]))
    write_rtstruct({"GTV": masks["GTV"], "Lungs-GTV": lmg}, ct_reference(root / "P1" / "CT"), root / "rs.dcm",
                   label="synthetic")
    rs.unlink()
    (root / "rs.dcm").replace(rs)


def test_a_result_of_an_older_lungai_is_redone_for_the_lungs_cut_and_lungs_gtv(tmp_path, capsys):
    """A cohort folder written before the lungs_cut rule (no lungs_cut, no Lungs-GTV radiomics): its patients are
    redone on resume, not kept as 'skipped' with an empty lungs_cut."""
    export = tmp_path / "full"
    export.mkdir()
    rt_export(export)
    root = tmp_path / "export"
    _lungs_gtv_export(export, root)
    out = tmp_path / "out"
    assert not run_cohort(root, out, PARAMS, workers=0).failed
    doc_path = out / "patients" / "P1" / "result.json"
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    assert doc["inputs"]["lungs_cut_rule"] and doc["inputs"]["lungs_minus_gtv"] == ["Lungs-GTV"]
    # an older lungai's result: neither key recorded
    doc["inputs"].pop("lungs_cut_rule")
    doc["inputs"].pop("lungs_minus_gtv")
    doc_path.write_text(json.dumps(doc), encoding="utf-8")
    from lungai.dicom.cohort import _written
    from lungai.io.outputs import record_outputs

    record_outputs(out, "cohort", _written(out))      # as that lungai left it
    with said_notes() as said:     # the CLI says its notes on stderr (QA cohortnotes67: printed on stdout)
        summary = run_cohort(root, out, PARAMS, workers=0)
    printed = "\n".join(said)
    assert not summary.failed and summary.done == ["P1"] and not summary.skipped
    assert "P1: inputs changed since the last run" in printed and "lungs cut by the scan" in printed
    assert "lungs_minus_tumour radiomics an older lungai did not compute" in printed
    again = json.loads(doc_path.read_text(encoding="utf-8"))
    assert again["inputs"]["lungs_cut_rule"] and again["inputs"]["lungs_minus_gtv"] == ["Lungs-GTV"]
    # a third run with the current inputs keeps the result
    capsys.readouterr()
    assert run_cohort(root, out, PARAMS, workers=0).skipped == ["P1"]
    assert "inputs changed" not in capsys.readouterr().out


def test_the_rp_panel_warns_about_cut_lungs(mrml_scene, rp_model_dir, rp_cohort):
    from lungai import mrml
    from lungai.scene.rp import predict_rp_node
    from test_rp_scene import _features_as_rows

    row = rp_cohort.table.iloc[2]
    rad = mrml.table_node_from_dataframe(mrml_scene, _features_as_rows(
        {k: row[k] for k in row.index if k.startswith("rad_")}), "radiomics")
    clinical = {k[len("clin_"):]: row[k] for k in row.index if k.startswith("clin_")}
    cut = "lungs cut at the bottom of the scan: 89 cm² of lung on the first slice (~332 ml, ~10 % ...)"
    dose = pd.DataFrame([{"case": row["case"], **{k: row[k] for k in row.index if k.startswith("dose_")},
                          "masks": "lungs: x", "lungs_cut": cut}])
    node, _ = predict_rp_node(mrml_scene, rp_model_dir, rad, dose, clinical, case="P2")
    warnings = str(mrml.dataframe_from_table_node(node)["warnings"][0])
    assert "are cut by the scan" in warnings and "covers both lungs" in warnings
    # QA: the panel showed the cohort's fix ("re-run lungai cohort ..., or drop these rows") to one patient's user
    assert "compute the dose features again in Lung Radiomics" in warnings
    assert "lungai cohort" not in warnings and "drop these rows" not in warnings
    dose["lungs_cut"] = ""          # not cut: no such warning
    node, _ = predict_rp_node(mrml_scene, rp_model_dir, rad, dose, clinical, case="P2")
    assert "cut by the scan" not in str(mrml.dataframe_from_table_node(node)["warnings"][0])


def test_the_radiomics_panel_repeats_the_dose_csvs_cut_warning(tmp_path):
    from lungai.scene.results import dose_csv_warnings

    csv = tmp_path / "dose.csv"
    pd.DataFrame([{"case": "c", "dose_mld_gy": 9.8, "masks": "lungs: x", "lungs_cut": "lungs cut at the bottom"}]
                 ).to_csv(csv, index=False)
    assert dose_csv_warnings(csv) == ["lungs cut at the bottom"]
    pd.DataFrame([{"case": "c", "dose_mld_gy": 9.8, "masks": "lungs: x", "lungs_cut": ""}]).to_csv(csv, index=False)
    assert dose_csv_warnings(csv) == []
    text = Path(__file__).resolve().parents[1].joinpath("LungRadiomics", "LungRadiomics.py").read_text()
    assert "results.dose_warnings(doseCsv" in text


def test_the_lungs_cut_example_agrees_with_the_docs():
    """QA: lungs_cut's docstring said pyradiomics' lung1 loses "~190 ml, ~5 %" on "the last slice", docs/cohort.md
    "~332 ml, ~10 %" on the first - what the code computes on lung1's automatic lungs (lungai lungs; measured)."""
    from lungai.dose.features import lungs_cut

    example = "89 cm² of lung on the first slice (~332 ml, ~10 % of the lungs estimated left off)"
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cohort.md").read_text(encoding="utf-8")
    assert example in " ".join(lungs_cut.__doc__.split()) and example in " ".join(docs.split())


def test_a_cohort_table_keeps_the_cohort_fix_for_cut_lungs():
    from lungai.rp.prepare import lungs_cut_warning

    df = pd.DataFrame([{"case": "P1", "lungs_cut": "lungs cut at the bottom"}, {"case": "P2", "lungs_cut": ""}])
    n, text = lungs_cut_warning(df, "case", "patients table", "so their risks are too")
    assert n == 1 and "re-run lungai cohort" in text and "drop these rows" in text and "P1" in text
    n, text = lungs_cut_warning(df, "case", "dose table", "so their risks are too", context="patient")
    assert n == 1 and "Lung Radiomics" in text and "lungai cohort" not in text
