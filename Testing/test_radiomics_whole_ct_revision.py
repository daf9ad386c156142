"""Results of a parameter set with pyradiomics' normalize, a Square / SquareRoot / Logarithm / Exponential image or a
Wavelet image computed by a lungai before the whole-CT revision (pyradiomics on the segment's crop: the crop's mean /
SD, the crop's largest |value|, the wavelet wrapping round the crop's faces - values up to 60 % off) are never mixed
with new ones: the settings id carries the revision (old rp models are refused), radiomics-batch redoes the cases of
an older run, cohort redoes its patients; the presets and every other parameter set keep their ids."""

from __future__ import annotations

import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.radiomics import load_params
from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id, value_settings

_BASE = {"binWidth": 25, "label": 1}
# the ids a lungai before the whole-CT revision gave these parameter sets (their values differ now)
AFFECTED = {
    "wavelet": ({"setting": _BASE, "imageType": {"Original": {}, "Wavelet": {}}}, "sha256:81f26fc80dda"),
    "normalize": ({"setting": {"binWidth": 0.25, "normalize": True, "normalizeScale": 1, "label": 1},
                   "imageType": {"Original": {}}}, "sha256:2193884d98e5"),
    "square": ({"setting": _BASE, "imageType": {"Square": {}}}, "sha256:d9c309f1cbd6"),
    "exponential, lung grid": ({"setting": _BASE, "imageType": {"Exponential": {}},
                                "lungai": {"lung_spacing_mm": 2.0}}, "sha256:d124f63e1490"),
}
# parameter sets whose values did not change keep their ids
UNAFFECTED = {
    "log": ({"setting": _BASE, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}}}, "sha256:eec0b667c607"),
    "original": ({"setting": _BASE, "imageType": {"Original": {}}}, "sha256:29172be25275"),
    # pyradiomics' own resampling always had the whole CT (its resampling revision only)
    "resampled, normalize, wavelet": ({"setting": {**_BASE, "normalize": True, "resampledPixelSpacing": [2, 2, 2]},
                                       "imageType": {"Original": {}, "Wavelet": {}}}, "sha256:39a5717dfc1c"),
    "ibsi, wavelet": ({"lungai": {"ibsi": "C"}, "imageType": {"Wavelet": {}}}, "sha256:57e5bae6c169"),
}


@pytest.mark.parametrize("name", list(AFFECTED))
def test_ids_of_affected_sets_change(name):
    params, old = AFFECTED[name]
    assert settings_id(params) != old
    assert value_settings(params)["lungai"]["whole_ct_revision"] >= 2
    assert settings_id(value_settings(params)) == settings_id(params)       # a sidecar's settings: their own id


@pytest.mark.parametrize("name", list(UNAFFECTED))
def test_ids_of_unaffected_sets_and_presets_are_kept(name):
    params, old = UNAFFECTED[name]
    assert settings_id(params) == old
    assert "whole_ct_revision" not in value_settings(params)["lungai"]
    assert settings_id(load_params("default")) == "sha256:672142f3e6c7"
    assert [settings_id(load_params(f"ibsi-{c}")) for c in "abcde"] == [
        "sha256:df3ae08cb5e1", "sha256:1b2af828fe45", "sha256:299bf02e8a28", "sha256:b73ed064aaef",
        "sha256:2edcc8c92e2b"]


def test_an_rp_model_trained_on_old_values_is_refused():
    from lungai.rp.prepare import SETTINGS_FIX_PATIENT_RETRAIN, settings_warnings

    params, old = AFFECTED["wavelet"]
    old_settings = value_settings(params)
    old_settings["lungai"].pop("whole_ct_revision")
    card = {"radiomics_settings": {"id": old, "settings": old_settings}, "roles": {"id_column": "case"}}
    patients = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [settings_id(params)]})
    with pytest.raises(InputError, match="(?s)not comparable.*older lungai.*Wavelet.*retrain"):
        settings_warnings(patients, card, "patients table")
    with pytest.raises(InputError) as err:
        settings_warnings(patients, card, "patients table", context="patient")
    assert SETTINGS_FIX_PATIENT_RETRAIN in str(err.value)


def _wavelet_params(tmp_path):
    f = tmp_path / "wavelet.yaml"
    f.write_text("setting: {binWidth: 25}\nimageType: {Original: {}, Wavelet: {}}\nfeatureClass: {firstorder: []}\n",
                 encoding="utf-8")
    return load_params(str(f))


def test_batch_redoes_the_cases_of_an_older_run(tmp_path):
    from lungai.radiomics.batch import _params_key, run_batch
    from lungai.radiomics.manifest import write_synthetic_cohort

    params = _wavelet_params(tmp_path)
    manifest = write_synthetic_cohort(tmp_path / "c", 1, seed=5)
    out = tmp_path / "f.csv"
    first = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    new = pd.read_csv(out)
    # as a lungai before the revision left it: its resume key, a part with other values
    parts = tmp_path / "f.csv.parts"
    (parts / "params.key").write_text(_params_key(params, ["tumour"], revision=False), encoding="utf-8")
    part = parts / f"{first.done[0]}.csv"
    old = pd.read_csv(part)
    old["value"] = 1.0
    old.to_csv(part, index=False)
    again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert again.done == first.done and again.skipped == []
    assert "1 case done by an older lungai is redone" in again.text() and "Wavelet" in again.text()
    pd.testing.assert_frame_equal(pd.read_csv(out), new)


def test_batch_redoes_lung_segments_of_a_lungai_before_both_revisions(tmp_path):
    """Lung_R on the CT's grid and a Wavelet on the crop (a lungai before the lung grid revision): redone."""
    from lungai.radiomics.batch import _params_key, _prepare_parts
    from lungai.radiomics.settings import with_lung_grid_revision, without_lung_grid_revision

    params = with_lung_grid_revision({**_wavelet_params(tmp_path), "lungai": {"lung_spacing_mm": 2.0}}, ["Lung_R"])
    assert params["lungai"]["lung_grid_revision"]
    out = tmp_path / "f.csv"
    parts = tmp_path / "f.csv.parts"
    parts.mkdir()
    (parts / "params.key").write_text(_params_key(without_lung_grid_revision(params), ["Lung_R"], revision=False),
                                      encoding="utf-8")
    (parts / "case1.csv").write_text("case,value\ncase1,1\n", encoding="utf-8")
    _, note = _prepare_parts(out, params, ["Lung_R"])
    assert note and "1 case done by an older lungai is redone" in note
    assert "Lung_R" in note and "Wavelet" in note
    assert not (parts / "case1.csv").exists()


def test_cohort_redoes_a_result_of_an_older_lungai():
    from lungai.dicom.cohort import inputs_change

    recorded = {"ct": {"series_uid": "1", "files": []}, "rtstruct": None, "rtdose": []}
    current = {**recorded, "whole_ct_revision": 2}
    change = inputs_change(recorded, current)
    assert change and "older lungai" in change and "normalize" in change
    assert inputs_change(current, dict(current)) is None
    # the per-patient inputs cohort records: the revisions of the parameter set's values
    from lungai.radiomics.settings import value_revisions

    assert value_revisions(AFFECTED["normalize"][0]) == {"whole_ct_revision": 2}
    assert value_revisions(UNAFFECTED["log"][0]) == {}


class _Fitted(Exception):
    """Raised in place of the nested CV: training reached the fitting."""


# (value settings as an older lungai recorded them - its sidecar's -, their id, the words of the refusal)
_RESAMPLED = {"setting": {"binWidth": 25, "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline"},
              "imageType": {"Original": {}}}
_OLDER_TABLES = {
    "wavelet on the crop": ({"setting": {"binWidth": 25}, "imageType": {"Original": {}, "Wavelet": {}}, "lungai": {}},
                            "sha256:81f26fc80dda", "Wavelet image on the segment's crop"),
    "resampled before 0.2.0": ({**_RESAMPLED, "lungai": {}}, None, "pyradiomics resampling"),
    "legacy id (no lungai block)": ({"setting": {"binWidth": 25}, "imageType": {"Original": {}}},
                                    "sha256:d69045dab1b3", "id an older lungai wrote"),
    # --params default (2 mm lung grid) with the lungs as Lung_R: on the CT's grid before the lung grid revision
    "Lung_R on the CT's grid": (value_settings(load_params("default")), "sha256:672142f3e6c7",
                                "their lung segments named otherwise than right_lung"),
}


@pytest.mark.parametrize("name", list(_OLDER_TABLES))
def test_rp_train_refuses_radiomic_features_of_an_older_lungai_before_fitting(tmp_path, monkeypatch, name):
    """QA: rp train took radiomics tables an older lungai computed (values since revised: VALUE_REVISIONS; or an id of
    an older lungai's scheme) and trained on them; only rp predict then refused the model for every new patient's
    features ("the model was trained on features computed by an older lungai ... retrain") - found after training.
    Now refused before any fitting, naming the sidecar and the cause, with the fix (re-run radiomics-batch / cohort,
    which redo them); the same table with the current settings trains."""
    import json

    from lungai.radiomics.settings import _hash_id, sidecar_path
    from lungai.rp import training
    from lungai.rp.cohort import make_cohort

    from lungai.radiomics.settings import with_lung_grid_revision

    settings, old_id, cause = _OLDER_TABLES[name]
    old_id = old_id or _hash_id(settings)
    cohort = make_cohort(60, seed=2, n_noise=0)
    if "Lung_R" in name:
        cohort.table.columns = [c.replace("rad_lungs_", "rad_Lung_R_") for c in cohort.table.columns]
    rad = [c for c in cohort.table.columns if c.startswith("rad_")]
    spacing = {k: v for k, v in (settings.get("lungai") or {}).items() if k == "lung_spacing_mm"}
    params = {k: v for k, v in settings.items() if k != "lungai"} | {"lungai": spacing}
    current = value_settings(with_lung_grid_revision(params, ["Lung_R", "tumour"]) if "Lung_R" in name else params)
    assert old_id != settings_id(current)                    # no table of the current lungai carries it
    (tmp_path / "clinical.csv").write_text(cohort.table.drop(columns=rad).to_csv(index=False), encoding="utf-8")
    radiomics = tmp_path / "radiomics.csv"
    cohort.table[["case", *rad]].assign(**{SETTINGS_COLUMN: old_id}).to_csv(radiomics, index=False)
    sidecar_path(radiomics).write_text(json.dumps({"id": old_id, "settings": settings}), encoding="utf-8")
    monkeypatch.setattr(training, "nested_cv", lambda *a, **k: (_ for _ in ()).throw(_Fitted()))
    tables = [tmp_path / "clinical.csv", radiomics]
    with pytest.raises(InputError) as err:
        training.train_rp(tables, cohort.outcome, tmp_path / "m", models="lr", fast=True)
    text = str(err.value)
    assert f"radiomics_settings {old_id}; recorded in {sidecar_path(radiomics)}" in text and cause in text
    assert "rp predict would refuse" in text and "radiomics-batch" in err.value.fix and "cohort" in err.value.fix
    assert not (tmp_path / "m").exists()
    # the clinical and dose features alone, or the features computed again (the current id), are trained on
    with pytest.raises(_Fitted):
        training.train_rp(tables, cohort.outcome, tmp_path / "m", models="lr", fast=True,
                          feature_sets="clinical_dosimetric")
    cohort.table[["case", *rad]].assign(**{SETTINGS_COLUMN: settings_id(current)}).to_csv(radiomics, index=False)
    sidecar_path(radiomics).write_text(json.dumps({"id": settings_id(current), "settings": current}), encoding="utf-8")
    with pytest.raises(_Fitted):
        training.train_rp(tables, cohort.outcome, tmp_path / "m", models="lr", fast=True)


def test_rp_predict_says_retrain_for_a_model_of_lung_r_on_the_ct_grid():
    """A model trained on Lung_R features an older lungai computed on the CT's grid (--params default, before the lung
    grid revision): the current table of those --params carries the revision in its id, so predict refused it with
    the fix "recompute the features with the model's settings" - which gives that id again.  Now it says the model
    was trained on values of an older lungai: retrain (as for the other revisions)."""
    from lungai.radiomics.settings import with_lung_grid_revision
    from lungai.rp.prepare import settings_warnings

    params = load_params("default")
    card = {"radiomics_settings": {"id": settings_id(params), "settings": value_settings(params)},
            "features": ["rad_Lung_R_original_firstorder_Mean", "rad_tumour_original_firstorder_Mean"],
            "roles": {"id_column": "case"}}
    current = settings_id(with_lung_grid_revision(params, ["Lung_R"]))
    patients = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [current]})
    with pytest.raises(InputError, match="(?s)not comparable.*older lungai.*Lung_R.*retrain"):
        settings_warnings(patients, card, "patients table")
    # the model of lungs named 'lungs' (always on the lung grid) is not an older lungai's
    card["features"] = ["rad_lungs_original_firstorder_Mean"]
    with pytest.raises(InputError) as err:
        settings_warnings(patients, card, "patients table")
    assert "older lungai" not in err.value.fix
