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


def _tiny_seg_model(folder):
    """A tiny untrained 2-member segmentation model folder (save_model, no training)."""
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network, own_state
    from seg_helpers import tiny_config

    cfg = tiny_config()
    save_model(folder, cfg, [own_state(build_network(cfg)) for _ in range(2)], {"training": {}})
    return folder


def _edit(folder, **changes):
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    doc.update(changes)
    (folder / "model.json").write_text(json.dumps(doc), encoding="utf-8")


def test_seg_loader_refuses_edited_model_json(tmp_path):
    """An edited or corrupted model.json is an InputError naming the folder and the fix (re-train or restore),
    never a traceback; member files must be .safetensors names inside the model folder."""
    from lungai.seg.model_io import load_model

    good = _tiny_seg_model(tmp_path / "good")
    assert len(load_model(good)[1]) == 2
    cases = {
        "channels": ({"config": dict(json.loads((good / "model.json").read_text())["config"], channels=[8, 16, 32])},
                     "do not fit the network"),
        "no members": ({"member_files": []}, "member_files is \\[\\]"),
        "not a list": ({"member_files": "member_0.safetensors"}, "member_files is"),
        "elsewhere": ({"member_files": ["../elsewhere/w.safetensors"]}, "not a .safetensors file name inside"),
        "absolute": ({"member_files": [str(good / "member_0.safetensors")]}, "not a .safetensors file name inside"),
        "pickle": ({"member_files": ["member_0.pt"]}, "not a .safetensors file name inside"),
        "no config": ({"config": None}, "its config is not usable"),
    }
    for what, (changes, message) in cases.items():
        bad = tmp_path / what.replace(" ", "_")
        shutil.copytree(good, bad)
        _edit(bad, **changes)
        with pytest.raises(InputError, match=message) as err:
            load_model(bad)
        assert "train the model again" in err.value.fix, what
    (tmp_path / "elsewhere").mkdir(exist_ok=True)          # a real file outside the folder is not read either
    shutil.copy(good / "member_0.safetensors", tmp_path / "elsewhere" / "w.safetensors")
    with pytest.raises(InputError, match="inside"):
        load_model(tmp_path / "elsewhere")
    linked = tmp_path / "linked"                            # member files as links (git-annex / DVC caches): read
    shutil.copytree(good, linked)
    for f in linked.glob("member_*.safetensors"):
        store = tmp_path / "store" / f.name
        store.parent.mkdir(exist_ok=True)
        f.replace(store)
        f.symlink_to(store)
    assert len(load_model(linked)[1]) == 2
    cut = tmp_path / "truncated"
    shutil.copytree(good, cut)
    (cut / "model.json").write_text((good / "model.json").read_text()[:40], encoding="utf-8")
    with pytest.raises(InputError, match="not readable JSON") as err:
        load_model(cut)
    assert str(cut) in err.value.problem and "restore the model folder" in err.value.fix


def test_seg_model_not_calibrated_is_refused(tmp_path):
    """A model.json that train-seg saved before calibrating ("status": "calibrating"; a run killed then) is refused
    with the --resume fix; one without a status (shipped models) is complete."""
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network, own_state
    from lungai.seg.resources import default_model_dir
    from seg_helpers import tiny_config

    cfg = tiny_config()
    save_model(tmp_path / "m", cfg, [own_state(build_network(cfg))], {"training": {}}, complete=False)
    assert json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))["status"] == "calibrating"
    with pytest.raises(InputError, match="incomplete") as err:
        load_model(tmp_path / "m")
    assert "--resume" in err.value.fix
    assert len(load_model(tmp_path / "m", allow_incomplete=True)[1]) == 1
    assert "status" not in json.loads((default_model_dir() / "model.json").read_text(encoding="utf-8"))
    assert load_model(default_model_dir())[1]


def test_safetensors_files_get_the_umask_mode(tmp_path):
    """Weights and checkpoints are written like the other files (0666 less the umask), not 0600."""
    from lungai.model_files import save_safetensors

    old = os.umask(0o022)
    try:
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
        _tiny_seg_model(tmp_path / "seg")
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "seg" / "member_0.safetensors").stat().st_mode & 0o777 == 0o644
