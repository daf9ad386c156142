"""Every model-file format of the project loads only allow-listed types (lungai.model_files):
crafted skops files naming builtins.exec / eval / os.system and pickled weights disguised as
safetensors are refused with a clear error by every loader (RP, stage, segmentation)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import skops.io as sio
import torch

from lungai.errors import InputError
from lungai.model_files import SKLEARN_EXTRA_TYPES, load_safetensors, load_skops
from rp_helpers import rp_cohort, rp_model_dir  # noqa: F401 - fixtures

CODE = {"exec": exec, "eval": eval, "os.system": os.system}


def _crafted(path, payload) -> None:
    """A skops file whose content names a callable that runs code."""
    sio.dump({"encoder": None, "mlp": None, "x": payload}, path)


@pytest.mark.parametrize("name", list(CODE))
def test_shared_skops_loader_refuses_code(tmp_path, name):
    path = tmp_path / "m.skops"
    _crafted(path, CODE[name])
    with pytest.raises(InputError, match="could run code") as err:
        load_skops(path)
    assert ("posix.system" if name == "os.system" else f"builtins.{name}") in str(err.value)
    assert "unknown sources" in str(err.value)


def test_allow_list_is_exact_names_not_prefixes(tmp_path):
    from sklearn.linear_model import LogisticRegression

    assert all(t.count(".") >= 1 and not t.endswith(".") for t in SKLEARN_EXTRA_TYPES)
    path = tmp_path / "ok.skops"
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    sio.dump(LogisticRegression().fit(X, y), path)
    assert load_skops(path).predict(X).shape == (20,)
    _crafted(path, exec)
    with pytest.raises(InputError, match="builtins.exec"):
        load_skops(path, trusted=["builtins."])           # a prefix does not trust anything
    with pytest.raises(InputError, match="not a readable skops file"):
        (tmp_path / "junk.skops").write_bytes(b"not a zip")
        load_skops(tmp_path / "junk.skops")


def test_safetensors_loader_refuses_pickled_weights(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.safetensors")      # a pickle, renamed
    with pytest.raises(InputError, match="not a safetensors file"):
        load_safetensors(tmp_path / "w.safetensors")
    with pytest.raises(InputError, match="missing"):
        load_safetensors(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name", list(CODE))
def test_rp_loader_refuses_code(rp_model_dir, tmp_path, name):
    from lungai.rp.model_io import load_model

    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(rp_model_dir / "model_card.json", bad / "model_card.json")
    bundle, _ = load_model(rp_model_dir)
    sio.dump({"pipeline": bundle["pipeline"], "x": CODE[name]}, bad / "model.skops")
    with pytest.raises(InputError, match="could run code"):
        load_model(bad)


@pytest.fixture(scope="module")
def stage_model(tmp_path_factory):
    from lungai.fusion import model_io
    from lungai.fusion.data import load_cohort
    from lungai.fusion.pipeline import FusionConfig, FusionPipeline
    from lungai.fusion.synthetic import make_cohort

    out = tmp_path_factory.mktemp("stage_files")
    paths = make_cohort(out / "c", n=24, seed=3, n_genes=30, module_size=6, ct_shape=(48, 48, 24),
                        ct_spacing=(6.0, 6.0, 5.0))
    cohort = load_cohort(paths["ehr"], paths["rna"], None, label="stage")
    classes = ["I", "II", "III"]
    pipe = FusionPipeline(FusionConfig(epochs=2, patience=100, top_k=30, neighbours=4, seed=0), classes).fit(cohort)
    return model_io.save(out / "m", pipe)


@pytest.mark.parametrize("name", list(CODE))
def test_stage_loader_refuses_code(stage_model, tmp_path, name):
    from lungai.fusion import model_io

    model_io.load(stage_model)                         # the genuine folder loads
    parts = sorted(p.name for p in stage_model.glob("*.skops"))
    assert "ehr_encoder.skops" in parts
    for part in parts:                                 # every skops file of the folder
        bad = tmp_path / f"bad_{part}"
        shutil.copytree(stage_model, bad)
        _crafted(bad / part, CODE[name])
        with pytest.raises(InputError, match="could run code"):
            model_io.load(bad)


def test_stage_and_seg_loaders_refuse_pickled_weights(stage_model, tmp_path):
    from lungai.fusion import model_io
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import default_model_dir

    bad = tmp_path / "stage"
    shutil.copytree(stage_model, bad)
    torch.save({"x": torch.zeros(1)}, bad / "fusion.safetensors")
    with pytest.raises(InputError, match="not a safetensors file"):
        model_io.load(bad)
    seg = tmp_path / "seg"
    shutil.copytree(default_model_dir(), seg)
    member = json.loads((seg / "model.json").read_text(encoding="utf-8"))["member_files"][0]
    torch.save({"x": torch.zeros(1)}, seg / member)
    with pytest.raises(InputError, match="not a safetensors file"):
        load_model(seg)
