"""The radiomics settings id covers every value-affecting setting: pyradiomics' settings and image
types, and lungai's own block (the IBSI configuration, the lung segments' grid spacing)."""

from __future__ import annotations

import pytest

from lungai.radiomics import load_params
from lungai.radiomics.settings import settings_id, value_settings


def test_ids_differ_per_ibsi_configuration():
    ids = {c: settings_id(load_params(f"ibsi-{c}")) for c in "abcde"}
    assert len(set(ids.values())) == 5, ids
    assert settings_id(load_params("default")) not in ids.values()
    assert value_settings(load_params("ibsi-c"))["lungai"] == {"ibsi": "C"}


def test_ids_differ_per_lung_spacing():
    ids = {s: settings_id(load_params("default", lung_spacing_mm=s)) for s in (None, 0, 1, 2, 3)}
    assert ids[None] == ids[2]                      # the default preset's 2 mm
    assert len({ids[s] for s in (0, 1, 2, 3)}) == 4, ids
    # the IBSI configuration fixes the grid: a lung spacing changes nothing there, nor the id
    assert settings_id(load_params("ibsi-c", lung_spacing_mm=3)) == settings_id(load_params("ibsi-c"))


def test_yaml_ibsi_case_and_no_block_equal_ct_grid(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("lungai: {ibsi: c}\n", encoding="utf-8")
    assert settings_id(load_params(str(f))) == settings_id(load_params("ibsi-c"))
    f.write_text("setting: {binWidth: 25}\n", encoding="utf-8")
    plain = load_params(str(f))
    assert settings_id(plain) == settings_id({**plain, "lungai": {"lung_spacing_mm": None}})
    assert settings_id(plain) != settings_id({**plain, "lungai": {"lung_spacing_mm": 2.0}})


def test_legacy_settings_recognised():
    from lungai.radiomics.settings import is_legacy_settings

    old = {"imageType": {"Original": {}}, "setting": {}}       # what older sidecars / model cards hold
    assert is_legacy_settings(old) and not is_legacy_settings(value_settings(load_params("ibsi-c")))
    assert not is_legacy_settings(None)


def test_predict_with_a_legacy_model_says_retrain():
    """``rp predict``'s check (lungai.rp.prepare.settings_warnings) with a model card whose id an older
    lungai wrote: recomputing with the same --params cannot give that id, so the fix says retrain."""
    import pandas as pd

    from lungai.errors import InputError
    from lungai.radiomics.settings import SETTINGS_COLUMN
    from lungai.rp.prepare import settings_warnings

    legacy, new = "sha256:d69045dab1b3", settings_id(load_params("default"))
    card = {"radiomics_settings": {"id": legacy, "settings": {"imageType": {"Original": {}},
                                                              "setting": {"binWidth": 25}}},
            "roles": {"id_column": "case"}}
    patients = pd.DataFrame({"case": ["p1", "p2"], SETTINGS_COLUMN: [new, new]})
    with pytest.raises(InputError, match=f"(?s){new}.*the model with {legacy}.*older lungai.*retrain"):
        settings_warnings(patients, card, "patients table")
    card["radiomics_settings"]["settings"] = value_settings(load_params("ibsi-c"))    # a current card
    with pytest.raises(InputError, match="(?s)the model with.*recompute the features with the model's settings"):
        settings_warnings(patients, card, "patients table")
