"""Training on another machine: train-seg --save-arrays (the split's arrays in one file), --from-arrays (members'
checkpoints from it, with no source data and no SimpleITK), --device, --workers (data-loading processes), and
the finishing --resume that saves and calibrates where the data is."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from seg_helpers import TINY_CLI, tiny_cases, write_cases

from lungai.cli import main
from lungai.errors import InputError
from lungai.seg import packed, train
from lungai.seg.config import SegConfig


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_cases(tiny_cases(6, seed=710), tmp_path_factory.mktemp("packed_data"))


def _data(n=3, whole=False):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        d = {"image": rng.random((1, 6, 20, 20), dtype=np.float32), "label": (rng.random((1, 6, 20, 20)) > 0.8)
             .astype(np.uint8), "case_id": f"c{i}"}
        if whole:
            d.update(hard_idx=rng.integers(0, 6, (5, 3)).astype(np.int32), tumour_idx=np.zeros((2, 3), np.int32))
        else:
            d["implanted"] = i == 1
        out.append(d)
    return out


def test_arrays_round_trip_within_255_steps_of_the_window(tmp_path):
    cfg = SegConfig(arch="unet")
    tr, va = _data(3) + _data(1, whole=True), _data(2)
    packed.save_arrays(tmp_path / "a.npz", tr, va, cfg, {"seed": 0, "val_fraction": 0.2, "test_fraction": 0.0})
    tr2, va2, split = packed.load_arrays(tmp_path / "a.npz", cfg)
    assert split["seed"] == 0 and len(tr2) == 4 and len(va2) == 2
    for a, b in zip(tr + va, tr2 + va2):
        assert a["case_id"] == b["case_id"] and b["image"].dtype == np.float32
        assert np.abs(a["image"] - b["image"]).max() <= 0.5 / 255 + 1e-7     # 2.75 HU for the default window
        assert np.array_equal(a["label"], b["label"])
        assert a.get("implanted") == b.get("implanted")
        for k in ("hard_idx", "tumour_idx"):
            assert (k in a) == (k in b) and (k not in a or np.array_equal(a[k], b[k]))
    assert split["left_out"] == []
    # at most N whole CTs, real ones first, none in validation; the left-out ones are recorded
    real = dict(_data(1, whole=True)[0], case_id="LUNG1-002")
    chests = [dict(d, case_id=f"chest-{i}") for i, d in enumerate(_data(2, whole=True))]
    packed.save_arrays(tmp_path / "b.npz", chests + [real] + _data(2), chests[:1] + _data(1), cfg, {"seed": 0},
                       max_whole=2)
    tr3, va3, split3 = packed.load_arrays(tmp_path / "b.npz", cfg)
    assert [d["case_id"] for d in tr3] == ["chest-0", "LUNG1-002", "c0", "c1"]
    assert [d["case_id"] for d in va3] == ["c0"] and split3["left_out"] == ["chest-1", "chest-0"]
    with pytest.raises(InputError, match="preprocessing"):
        packed.load_arrays(tmp_path / "a.npz", SegConfig(arch="unet", spacing=(1.5, 1.5, 3.0)))
    with pytest.raises(InputError, match="not an .npz"):
        packed.save_arrays(tmp_path / "a.pkl", tr, va, cfg, {})
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="not a training-arrays file"):
        packed.load_arrays(tmp_path / "other.npz", cfg)


def test_worker_batches_are_fixed_by_the_seed_and_differ_by_worker():
    cfg = SegConfig(arch="unet", channels=(4, 8), patch_size=(16, 16, 4), infer_patch=(16, 16, 4))
    crops = _data(4)
    recipe = train.recipe_of({"augment": "strong"})

    def run(workers):
        return [(x.numpy(), y.numpy()) for x, y in
                train.epoch_batches(crops, [], cfg, recipe, 123, 2, 4, workers)]

    a, b = run(2), run(2)
    assert len(a) == 4 and all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert a[0][0].shape == (2, 1, 4, 16, 16)
    assert not np.array_equal(a[0][0], a[1][0])            # worker 0's and worker 1's first batches
    ref = run(0)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(ref, run(0)))
    more = [x for x, _ in train.epoch_batches(crops, [], cfg, recipe, 123, 2, 3, 8)]   # more workers than batches
    assert len(more) == 3


def test_train_on_another_machine_from_arrays_then_finish_here(tiny_data, tmp_path, capsys):
    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI]
    npz = tmp_path / "arrays.npz"
    assert main(args + ["-o", str(tmp_path / "m"), "--save-arrays", str(npz)]) == 0
    assert npz.is_file() and not (tmp_path / "m").exists()
    # the other machine has the arrays only: the image folders are not read
    remote = ["train-seg", "--images", str(tmp_path / "nowhere"), "--masks", str(tmp_path / "nowhere"), *TINY_CLI,
              "--from-arrays", str(npz), "--workers", "2", "--device", "cpu", "-o", str(tmp_path / "m")]
    assert main(remote + ["--member", "0"]) == 0
    # QA: the --from-arrays run recorded no fingerprint (every later --resume noted it could not compare): the
    # arrays file keeps the --save-arrays run's data settings, fingerprints included, and the checkpoints record them
    recorded = json.loads((tmp_path / "m" / "checkpoints" / "settings.json").read_text(encoding="utf-8"))
    assert len(recorded["case_sha256"]) == 6 and recorded["test_cases"] is not None
    assert main(remote + ["--member", "1", "--resume"]) == 0
    assert "members trained into" in capsys.readouterr().out
    assert not (tmp_path / "m" / "model.json").exists()
    assert main(args + ["-o", str(tmp_path / "m"), "--resume"]) == 0      # saves and calibrates
    assert "records no fingerprint" not in capsys.readouterr().err
    meta = json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))
    assert all(m["trained_on"] == {"device": "cpu", "data_workers": 2, "arrays": "arrays.npz", "left_out": [],
                                   "whole_ct_fraction": train.WHOLE_CT_FRACTION} for m in meta["members"])
    assert meta["training"]["trained_on"] == meta["members"][0]["trained_on"]     # next to the training sources
    assert "--workers" not in meta["training"]["command"] and "--from-arrays" not in meta["training"]["command"]
    assert meta["calibration"]
    # the arrays fix the split: another seed is refused
    assert "--seed" not in TINY_CLI
    assert main(remote + ["--seed", "1", "-o", str(tmp_path / "other")]) == 2
    assert "was split with" in capsys.readouterr().err


def test_device_and_option_errors(tiny_data, tmp_path, capsys):
    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI, "-o", str(tmp_path / "m")]
    assert main(args + ["--device", "tpu"]) == 2
    assert "unknown --device 'tpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(args + ["--device", "cuda"]) == 2
        assert "sees no CUDA device" in capsys.readouterr().err
    assert main(args + ["--save-arrays", "a.npz", "--from-arrays", "a.npz"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(args + ["--from-arrays", str(tmp_path / "missing.npz")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(args + ["--arrays-max-whole", "2"]) == 2               # only meaningful with --save-arrays
    assert "needs --save-arrays" in capsys.readouterr().err
    assert main(args + ["--save-arrays", str(tmp_path / "n.npz"), "--arrays-max-whole", "-1"]) == 2
    assert "needs --save-arrays and a number >= 0" in capsys.readouterr().err
    (tmp_path / "mine.npz").write_bytes(b"the user's file")
    assert main(args + ["--save-arrays", str(tmp_path / "mine.npz")]) == 2     # never overwritten
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "mine.npz").read_bytes() == b"the user's file"


def test_training_from_arrays_needs_no_simpleitk():
    """The accelerator image has torch and MONAI but no SimpleITK: the --from-arrays path must not import it."""
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'SimpleITK':\n"
            "            raise ModuleNotFoundError('no SimpleITK here')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from lungai.cli import build_parser\n"
            "build_parser()\n"
            "import lungai.seg.ensemble, lungai.seg.packed, lungai.seg.train, lungai.cli.seg\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_members_script_trains_every_member_in_parallel(tiny_data, tmp_path):
    """tools/train_seg_members.sh: one train-seg --member K process per member; a member that fails is named."""
    import os
    from pathlib import Path

    images, masks = tiny_data
    root = Path(__file__).resolve().parents[1]
    npz = tmp_path / "arrays.npz"
    assert main(["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI, "-o", str(tmp_path / "m"),
                 "--save-arrays", str(npz)]) == 0
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(root))
    script = str(root / "tools" / "train_seg_members.sh")
    args = ["--images", "x", "--masks", "y", *TINY_CLI, "--from-arrays", str(npz), "--workers", "1"]
    r = subprocess.run(["bash", script, "2", str(tmp_path / "logs"), "--", *args, "-o", str(tmp_path / "m")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for k in (0, 1):
        state = json.loads((tmp_path / "m" / "checkpoints" / f"member_{k}.state.json").read_text(encoding="utf-8"))
        assert state["epoch"] == 2 and state["trained_on"]["data_workers"] == 1
        assert "members trained into" in (tmp_path / "logs" / f"member_{k}.log").read_text(encoding="utf-8")
    r = subprocess.run(["bash", script, "2", str(tmp_path / "logs2"), "--", *args, "--device", "tpu", "-o",
                        str(tmp_path / "m2")], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "member 0 failed" in r.stderr and "member 1 failed" in r.stderr
    r = subprocess.run(["bash", script, "two", str(tmp_path / "logs3"), "--"], capture_output=True, text=True)
    assert r.returncode == 2 and "MEMBERS must be a number" in r.stderr


def test_whole_ct_share_of_the_draws():
    """From arrays that left whole CTs out, the kept ones keep their own share: the whole-CT fraction of the
    draws scales with kept / (kept + left out) (training split)."""
    cfg = SegConfig(arch="unet", channels=(4, 8), patch_size=(8, 8, 4), infer_patch=(8, 8, 4))
    crops = _data(3)
    whole = [dict(d, hard_idx=np.array([[2, 10, 10]], np.int32), tumour_idx=np.array([[3, 10, 10]], np.int32),
                  case_id=f"chest-{i}") for i, d in enumerate(_data(1, whole=True))]
    recipe = train.recipe_of({})
    tf = train.training_transform(cfg.patch_zyx, 0)
    tf_aug = train.augment_transform(cfg.patch_zyx, 0)
    rng = np.random.default_rng(0)
    for frac, expect in ((0.0, 0), (1.0, 16)):
        s = train.draw_samples(crops, whole, 16, rng, tf, tf_aug, cfg.patch_zyx, None, frac)
        assert sum("case_id" not in x for x in s) == expect          # context patches carry no case id
    assert recipe["whole_fraction"] == train.WHOLE_CT_FRACTION
