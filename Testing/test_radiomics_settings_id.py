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
    # the IBSI configuration fixes the grid: a lung spacing (recorded by an older lungai, which accepted it; now
    # refused, test_radiomics_params_keys.py) changes nothing there, nor the id
    ibsi_c = load_params("ibsi-c")
    assert settings_id({**ibsi_c, "lungai": {**ibsi_c["lungai"], "lung_spacing_mm": 3.0}}) == settings_id(ibsi_c)


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


def test_predict_with_a_legacy_model_from_a_merged_table_says_retrain():
    """Review: a model trained from a merged table (no .settings.json sidecar: the card has settings None) with an
    id an older lungai wrote got "recompute the features with the model's settings" - impossible, since no
    current table carries that id.  The frozen list of the old preset ids (lungai.rp.prepare.LEGACY_SETTINGS_IDS)
    recognises it; an unknown id without settings gets the conditional "if the model predates ... retrain"."""
    import pandas as pd

    from lungai.errors import InputError
    from lungai.radiomics.settings import SETTINGS_COLUMN
    from lungai.rp.prepare import LEGACY_SETTINGS_IDS, settings_warnings

    new = settings_id(load_params("default"))
    assert "sha256:d69045dab1b3" in LEGACY_SETTINGS_IDS and "sha256:b19e0f16e080" in LEGACY_SETTINGS_IDS
    current = {settings_id(load_params(p, image_types=t, lung_spacing_mm=s))
               for p in ("default", "ibsi-a", "ibsi-b", "ibsi-c", "ibsi-d", "ibsi-e")
               for t in (None, ["Original", "LoG"], ["Original", "Wavelet"]) if p == "default" or t is None
               for s in ((None, 0, 1, 2, 3) if p == "default" else (None, 0))}   # IBSI: a lung spacing refused
    assert not current & set(LEGACY_SETTINGS_IDS)       # no current id is taken for an old one
    patients = pd.DataFrame({"case": ["p1", "p2"], SETTINGS_COLUMN: [new, new]})
    card = {"radiomics_settings": {"id": "sha256:d69045dab1b3", "settings": None,
                                   "note": "features of new patients must be computed with these settings"},
            "roles": {"id_column": "case"}}
    with pytest.raises(InputError, match=r"older lungai \(the id of the preset --params default") as err:
        settings_warnings(patients, card, "patients table")
    assert "retrain (rp train)" in err.value.fix and not err.value.fix.startswith("recompute the features with")
    card["radiomics_settings"]["id"] = "sha256:0123456789ab"          # a user YAML's id: not known
    with pytest.raises(InputError) as err:
        settings_warnings(patients, card, "patients table")
    assert "if the model predates lungai's settings-id change" in err.value.fix and "retrain" in err.value.fix
