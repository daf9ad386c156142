"""Results of a parameter set with resampledPixelSpacing computed by a lungai before 0.2.0 (pyradiomics on a
crop-shifted grid: values up to 60 % off) are never mixed with new ones: the settings id carries the resampling
revision (old rp models are refused), radiomics-batch redoes the cases of an older run, cohort redoes its patients;
the presets (default, IBSI) keep their ids."""

from __future__ import annotations

import pandas as pd
import pytest

import lungai
from lungai.errors import InputError
from lungai.radiomics import load_params
from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id, value_settings

OLD_RESAMPLED_ID = "sha256:7e744c7af995"      # the id lungai 0.1.0 gave RESAMPLED (crop-shifted grid)
RESAMPLED = ("setting: {binWidth: 25, resampledPixelSpacing: [2, 2, 2], interpolator: sitkBSpline}\n"
             "imageType: {Original: {}}\nfeatureClass: {firstorder: []}\n")


def _resampled(tmp_path):
    f = tmp_path / "resampled.yaml"
    f.write_text(RESAMPLED, encoding="utf-8")
    return load_params(str(f))


def test_ids_of_resampling_sets_change_presets_keep_theirs(tmp_path):
    assert lungai.__version__ != "0.1.0"
    params = _resampled(tmp_path)
    assert settings_id(params) != OLD_RESAMPLED_ID
    assert value_settings(params)["lungai"]["resampling_revision"] >= 2
    assert settings_id(load_params("default")) == "sha256:672142f3e6c7"
    assert [settings_id(load_params(f"ibsi-{c}")) for c in "abcde"] == [
        "sha256:df3ae08cb5e1", "sha256:1b2af828fe45", "sha256:299bf02e8a28", "sha256:b73ed064aaef",
        "sha256:2edcc8c92e2b"]
    # a sidecar's settings hash to their own id again
    assert settings_id(value_settings(params)) == settings_id(params)


def test_an_rp_model_trained_on_old_resampled_features_is_refused(tmp_path):
    from lungai.rp.prepare import settings_warnings

    params = _resampled(tmp_path)
    old_settings = value_settings(params)
    old_settings["lungai"].pop("resampling_revision")
    card = {"radiomics_settings": {"id": OLD_RESAMPLED_ID, "settings": old_settings}, "roles": {"id_column": "case"}}
    patients = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [settings_id(params)]})
    with pytest.raises(InputError, match="(?s)not comparable.*older lungai.*retrain"):
        settings_warnings(patients, card, "patients table")


def test_batch_redoes_the_cases_of_an_older_run(tmp_path, capsys):
    from lungai.radiomics.batch import _params_key, run_batch
    from lungai.radiomics.manifest import write_synthetic_cohort

    params = _resampled(tmp_path)
    manifest = write_synthetic_cohort(tmp_path / "c", 1, seed=5)
    out = tmp_path / "f.csv"
    first = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    new = pd.read_csv(out)
    # as lungai 0.1.0 left it: its resume key, a part with other values
    parts = tmp_path / "f.csv.parts"
    (parts / "params.key").write_text(_params_key(params, ["tumour"], revision=False), encoding="utf-8")
    part = parts / f"{first.done[0]}.csv"
    old = pd.read_csv(part)
    old["value"] = 1.0
    old.to_csv(part, index=False)
    again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert again.done == first.done and again.skipped == []
    assert "1 case done by an older lungai" in again.text()
    pd.testing.assert_frame_equal(pd.read_csv(out), new)
    # other parameters are still refused
    with pytest.raises(InputError, match="other parameters"):
        run_batch(manifest, out, load_params("default", feature_classes=["firstorder"]), workers=0,
                  segments=["tumour"])


def test_cohort_redoes_a_result_of_an_older_lungai_with_resampling(tmp_path):
    from lungai.dicom.cohort import inputs_change

    recorded = {"ct": {"series_uid": "1", "files": []}, "rtstruct": None, "rtdose": []}
    assert inputs_change(recorded, dict(recorded)) is None
    change = inputs_change(recorded, {**recorded, "resampling_revision": 2})
    assert change and "older lungai" in change


# the id lungai gave RESAMPLED with --lung-spacing 2 before it refused a lung spacing beside resampledPixelSpacing
# (the spacing ignored: every segment on pyradiomics' grid, so the values of RESAMPLED without it)
OLD_WITH_LUNG_SPACING_ID = "sha256:8b9ec2611923"


def test_a_lung_spacing_beside_pyradiomics_resampling_is_no_part_of_the_id(tmp_path):
    """Review of 8b25950: the id of a resampling set given a lung spacing (sha256:dac89eb44e08) differed from the one
    without (66e45e870a86) for the same values; the spacing is now left out of it (the presets keep their ids)."""
    from lungai.radiomics.settings import equivalent_ids

    params = _resampled(tmp_path)
    with_spacing = {**params, "lungai": {"lung_spacing_mm": 2.0}}
    assert settings_id(with_spacing) == settings_id(params) == settings_id(value_settings(with_spacing))
    assert "lung_spacing_mm" not in value_settings(with_spacing)["lungai"]
    assert settings_id(load_params("default")) == "sha256:672142f3e6c7"           # lungai's 2 mm lung grid: kept
    assert settings_id(load_params("default", lung_spacing_mm=3)) != settings_id(load_params("default"))
    # the settings an older lungai recorded with the spacing: the current id is theirs too
    old = {**value_settings(params), "lungai": {"lung_spacing_mm": 2.0, "resampling_revision": 2}}
    assert equivalent_ids(old) == {settings_id(params)}
    assert equivalent_ids(value_settings(load_params("default"))) == set()
    before_revision = {**old, "lungai": {"lung_spacing_mm": 2.0}}          # an older grid: values differ, no match
    assert equivalent_ids(before_revision) == set()


def test_an_rp_model_of_features_with_the_ignored_lung_spacing_predicts_current_ones(tmp_path):
    from lungai.rp.prepare import settings_warnings

    params = _resampled(tmp_path)
    old = {**value_settings(params), "lungai": {"lung_spacing_mm": 2.0, "resampling_revision": 2}}
    card = {"radiomics_settings": {"id": OLD_WITH_LUNG_SPACING_ID, "settings": old}, "roles": {"id_column": "case"}}
    patients = pd.DataFrame({"case": ["p1", "p2"], SETTINGS_COLUMN: [settings_id(params), OLD_WITH_LUNG_SPACING_ID]})
    assert settings_warnings(patients, card, "patients table") == ["", ""]
    other = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [settings_id(load_params("default"))]})
    with pytest.raises(InputError, match="not comparable"):                    # other settings: still refused
        settings_warnings(other, card, "patients table")


def test_a_batch_run_with_the_ignored_lung_spacing_resumes(tmp_path):
    """Review of 8b25950: a radiomics-batch run made with a resampling YAML and --lung-spacing could not be resumed
    (--lung-spacing refused now; without it, 'holds results made with other parameters').  Its cases are kept (same
    values) and carry the current id."""
    from lungai.radiomics.batch import _params_key, run_batch
    from lungai.radiomics.manifest import write_synthetic_cohort

    params = _resampled(tmp_path)
    manifest = write_synthetic_cohort(tmp_path / "c", 2, seed=5)
    out = tmp_path / "f.csv"
    first = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    new = pd.read_csv(out)
    parts = tmp_path / "f.csv.parts"
    for spacing in (2.0, 1.25, 3):           # --lung-spacing 2 / 1.25, or the file's lung_spacing_mm: 3
        old_params = {**params, "lungai": {"lung_spacing_mm": spacing}}
        (parts / "params.key").write_text(_params_key(old_params, ["tumour"]), encoding="utf-8")
        part = parts / f"{first.done[0]}.csv"
        frame = pd.read_csv(part)
        frame[SETTINGS_COLUMN] = OLD_WITH_LUNG_SPACING_ID
        frame.to_csv(part, index=False)
        (parts / f"{first.done[1]}.csv").unlink()                               # interrupted before the second
        again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
        assert again.skipped == [first.done[0]] and again.done == [first.done[1]]
        assert "lung spacing beside resampledPixelSpacing" in again.text()
        pd.testing.assert_frame_equal(pd.read_csv(out), new)                   # one id, the current one
    with pytest.raises(InputError, match="other parameters"):
        (parts / "params.key").write_text(_params_key({**params, "setting": {"binWidth": 5}}, ["tumour"]),
                                          encoding="utf-8")
        run_batch(manifest, out, params, workers=0, segments=["tumour"])


def test_ignored_lung_spacing_ids_map_both_ways_for_predict_and_train(tmp_path):
    """Review of 02138d6: the equivalence worked one way only: a model of the current id refused a table of the id an
    older lungai gave the same settings with a lung spacing (ignored), and rp train refused a table mixing rows of
    both.  Now both are taken (lungai.radiomics.settings.ignored_lung_spacing_ids, from the recorded settings);
    without recorded settings the refusals say the cause and the fix."""
    from lungai.radiomics.settings import write_sidecar
    from lungai.rp.prepare import settings_warnings, training_radiomics_settings

    params = _resampled(tmp_path)
    current = settings_id(params)
    card = {"radiomics_settings": {"id": current, "settings": value_settings(params)}, "roles": {"id_column": "case"}}
    patients = pd.DataFrame({"case": ["p1", "p2"], SETTINGS_COLUMN: [OLD_WITH_LUNG_SPACING_ID, current]})
    assert settings_warnings(patients, card, "patients table") == ["", ""]           # an old table, a new model
    other = pd.DataFrame({"case": ["p1"], SETTINGS_COLUMN: [settings_id(load_params("default"))]})
    with pytest.raises(InputError, match="not comparable"):                         # other settings: still refused
        settings_warnings(other, card, "patients table")
    bare = {"radiomics_settings": {"id": current, "settings": None}, "roles": {"id_column": "case"}}
    with pytest.raises(InputError, match="resume that run with the current lungai"):  # no settings: cause and fix
        settings_warnings(patients, bare, "patients table")
    # rp train: a table of rows before and after the upgrade (a resumed cohort / batch of an older lungai)
    table = tmp_path / "rp_table.csv"
    patients.assign(rad_tumour_x=[1.0, 2.0]).to_csv(table, index=False)
    with pytest.raises(InputError, match=r"<table>\.settings\.json sidecars beside them"):     # no sidecar: told why
        training_radiomics_settings(patients, ["rad_tumour_x"], [table])
    write_sidecar(table, params)
    entry = training_radiomics_settings(patients, ["rad_tumour_x"], [table])
    assert entry["id"] == current and entry["settings"] == value_settings(params)
    assert OLD_WITH_LUNG_SPACING_ID in entry["note"]
    mixed = patients.assign(**{SETTINGS_COLUMN: [OLD_WITH_LUNG_SPACING_ID, settings_id(load_params("default"))]})
    with pytest.raises(InputError, match="mixes radiomic features computed with 2 different settings"):
        training_radiomics_settings(mixed, ["rad_tumour_x"], [table])              # other settings: still refused
