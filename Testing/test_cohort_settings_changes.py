"""A cohort folder re-run with other settings is refused naming what changed, old and new values, and the fix (QA
cohort71: LUNG1-003's folder re-run with --params ibsi-a said "holds results made with other radiomics parameters,
structure mapping or model" and "use another output folder, or delete that one to start over", nothing more)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cohort_helpers import PARAMS, export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import run_cohort
from lungai.errors import InputError
from lungai.radiomics import load_params

SETTINGS_RECORD = "settings.json"     # lungai.dicom.cohort.SETTINGS_RECORD, beside settings.key


def _bin_width(params: dict, width) -> dict:
    return {**params, "setting": {**params["setting"], "binWidth": width}}


def _p1(export, tmp_path) -> Path:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    return root


def test_other_settings_are_named_with_their_values_then_and_now(export, tmp_path, monkeypatch):
    from lungai.dicom import cohort
    from lungai.seg.resources import DEFAULT_MODEL_NAME

    root, out, mapping = _p1(export, tmp_path), tmp_path / "out", tmp_path / "map.yaml"
    mapping.write_text("Tumour_big: gtv_primary\n", encoding="utf-8")
    assert run_cohort(root, out, PARAMS, workers=0, mapping=mapping).done == ["P1"]

    other = _bin_width(load_params("default", feature_classes=["shape"]), 10)
    with pytest.raises(InputError, match="other radiomics parameters, structure mapping or model") as err:
        run_cohort(root, out, other, workers=0, mapping=mapping)
    # the classes as one (QA radiomics72: "--params featureClass.firstorder: [] then, (not set) now")
    assert "--params featureClass: firstorder, shape then, shape now" in err.value.problem, err.value.problem
    assert "--params setting.binWidth: 25 then, 10 now" in err.value.problem, err.value.problem
    assert "--structure-map" not in err.value.problem and "--model" not in err.value.problem
    assert "run with the settings they were made with" in err.value.fix and str(out / SETTINGS_RECORD) in err.value.fix
    assert "-o OTHER_FOLDER" in err.value.fix and f"delete {out} to start over" in err.value.fix
    assert json.loads((out / SETTINGS_RECORD).read_text(encoding="utf-8"))["params"]["setting"]["binWidth"] == 25

    mapping.write_text("Tumour_big: gtv_primary\ngtv-3: gtv\n", encoding="utf-8")      # an edited mapping file
    with pytest.raises(InputError) as err:
        run_cohort(root, out, PARAMS, workers=0, mapping=mapping)
    assert "--structure-map: 'tumour big': gtv_primary then, 'gtv 3': gtv, 'tumour big': gtv_primary now" in \
        err.value.problem, err.value.problem
    assert "--params" not in err.value.problem
    mapping.write_text("Tumour_big: gtv_primary\n", encoding="utf-8")

    # the default model by its name: the same model (resumed); its files changed since: said so
    assert run_cohort(root, out, PARAMS, workers=0, mapping=mapping, model_dir=DEFAULT_MODEL_NAME).skipped == ["P1"]
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setattr(cohort, "_model_identity", lambda model_dir: "other contents")
    with pytest.raises(InputError) as err:
        run_cohort(root, out, PARAMS, workers=0, mapping=mapping, model_dir=DEFAULT_MODEL_NAME)
    assert (f"--model: {DEFAULT_MODEL_NAME} then, {DEFAULT_MODEL_NAME} (its files changed since) now"
            in err.value.problem), err.value.problem
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before     # refused: nothing rewritten


def test_a_folder_of_an_older_lungai_is_refused_naming_what_its_table_shows(export, tmp_path):
    """No settings.json (a lungai before it): its table's rp_table.settings.json names the radiomics settings."""
    root, out = _p1(export, tmp_path), tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    (out / SETTINGS_RECORD).unlink(missing_ok=True)     # as an older lungai left it
    with pytest.raises(InputError) as err:
        run_cohort(root, out, _bin_width(PARAMS, 10), workers=0)
    assert (f"an older lungai wrote {out} without a record of its settings (settings.json); its "
            "rp_table.settings.json shows: --params setting.binWidth: 25 then, 10 now") in err.value.problem, \
        err.value.problem
