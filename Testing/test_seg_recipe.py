"""The nnU-Net recipe pieces of train-seg, each an option: poly learning-rate decay, deep supervision
(DynUNet), foreground oversampling, rotation / scaling / intensity augmentation, mirrored test-time
augmentation, a larger inference window - and --resume with all of them."""

import json

import numpy as np
import pytest
import torch
from seg_helpers import TINY_CLI, tiny_cases, write_cases

from lungai.cli import main
from lungai.seg import augment, infer, predict, train
from lungai.seg.config import SegConfig

RECIPE = ["--arch", "dynunet", "--deep-supervision", "--lr-schedule", "poly", "--augment", "strong",
          "--fg-fraction", "0.33", "--tta", "--infer-patch", "64,64,16"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_cases(tiny_cases(6, seed=700), tmp_path_factory.mktemp("recipe_data"))


def _weights(model_dir):
    from safetensors.torch import load_file

    return [load_file(str(model_dir / f)) for f in json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["member_files"]]


def test_poly_lr():
    assert train.lr_at(1e-2, "poly", 0, 100) == pytest.approx(1e-2)
    assert train.lr_at(1e-2, "poly", 50, 100) == pytest.approx(1e-2 * 0.5 ** 0.9)
    assert 0 < train.lr_at(1e-2, "poly", 99, 100) < 1e-3
    assert train.lr_at(1e-2, "constant", 99, 100) == 1e-2


def test_full_recipe_trains_resumes_exactly_and_is_recorded(tiny_data, tmp_path, monkeypatch):
    from lungai.seg import checkpoint

    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI, *RECIPE]
    assert main(args + ["-o", str(tmp_path / "full")]) == 0
    # the same command interrupted (Ctrl-C) right after member 0's first epoch, then resumed: the poly
    # schedule depends on the planned length, so the interruption must keep --epochs
    save = checkpoint.save

    def save_then_stop(*a, **k):
        save(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    assert main(args + ["-o", str(tmp_path / "resumed")]) == 130
    monkeypatch.setattr(checkpoint, "save", save)
    assert main(args + ["-o", str(tmp_path / "resumed"), "--resume"]) == 0
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "resumed")
    assert all(all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a) for a, b in zip(wa, wb))
    doc = json.loads((tmp_path / "full" / "model.json").read_text(encoding="utf-8"))
    assert doc["config"]["arch"] == "dynunet" and doc["config"]["deep_supervision"] and doc["config"]["tta"]
    assert doc["config"]["infer_patch"] == [64, 64, 16]
    assert doc["training"]["recipe"] == {"lr_schedule": "poly", "augment": "strong", "fg_fraction": 0.33,
                                         "whole_fraction": train.WHOLE_CT_FRACTION}
    # the deep-supervision heads were trained (they get gradients only through the deep-supervision loss)
    heads = [k for k in wa[0] if k.startswith("deep_supervision_heads")]
    from lungai.seg.model_io import load_model
    from lungai.seg.networks import build_network
    cfg = load_model(tmp_path / "full")[0]
    torch.manual_seed(0)      # member 0's seed (seed 0 * 100 + 0) - the initial weights
    init = build_network(cfg).state_dict()
    assert heads and any(not torch.equal(wa[0][k], init[k]) for k in heads)


def test_deep_supervision_needs_dynunet():
    from lungai.errors import InputError

    with pytest.raises(InputError, match="dynunet"):
        SegConfig(arch="unet", deep_supervision=True)
    net = __import__("lungai.seg.networks", fromlist=["x"]).build_network(
        SegConfig(arch="dynunet", deep_supervision=True, channels=(4, 8, 16, 32)))
    net.train()
    assert net(torch.zeros(1, 1, 16, 32, 32)).dim() == 6      # (B, heads, C, z, y, x)
    net.eval()
    assert net(torch.zeros(1, 1, 16, 32, 32)).dim() == 5


def test_strong_augmentation_rotates_and_scales_labels_stay_binary():
    names = [type(t).__name__ for t in augment.augment_transform((16, 32, 32), 0, "strong").transforms]
    assert {"RandAffined", "RandAdjustContrastd", "RandGaussianSmoothd"} <= set(names)
    assert "RandAffined" not in [type(t).__name__ for t in augment.augment_transform((16, 32, 32), 0).transforms]
    img = np.zeros((1, 16, 32, 32), np.float32)
    img[:, 4:12, 8:20, 10:14] = 1.0
    changed = 0
    for seed in range(20):
        out = augment.augment_transform((16, 32, 32), seed, "strong")({"image": img.copy(), "label": img.copy()})
        lab = np.asarray(out["label"])
        assert set(np.unique(lab)) <= {0.0, 1.0}
        changed += not np.array_equal(lab, img) and not any(
            np.array_equal(lab, np.flip(img, ax)) for ax in ((2,), (3,), (2, 3)))
    assert changed > 0          # some draws are rotated / scaled, not only flipped


def test_foreground_fraction_changes_the_share_of_tumour_patches():
    img = np.random.default_rng(0).random((1, 40, 80, 80)).astype(np.float32)
    lab = np.zeros((1, 40, 80, 80), np.uint8)
    lab[:, 18:22, 38:42, 38:42] = 1

    def share(f):
        tf = augment.training_transform((8, 16, 16), 3, "basic", f)
        return np.mean([np.asarray(tf({"image": img, "label": lab})[0]["label"]).any() for _ in range(150)])

    assert share(0.9) > share(0.1) + 0.5


def test_mirrored_tta_averages_the_flips():
    class Ramp(torch.nn.Module):           # not flip-equivariant: probability rises along x
        def forward(self, x):
            return torch.linspace(0, 1, x.shape[-1]).expand_as(x).clone()

    out = predict.Mirrored(Ramp())(torch.zeros(1, 1, 4, 6, 8))
    assert torch.allclose(out, torch.full_like(out, 0.5))
    cfg = SegConfig(arch="unet", channels=(4, 8), infer_patch=(16, 16, 8), tta=True)

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.cat([-(x - 0.5) * 50, (x - 0.5) * 50], 1)

    arr = np.random.default_rng(1).random((8, 16, 16)).astype(np.float32)
    with_tta = infer.predict_probs([Oracle()], arr, cfg)
    without = infer.predict_probs([Oracle()], arr, SegConfig(arch="unet", channels=(4, 8), infer_patch=(16, 16, 8)))
    np.testing.assert_allclose(with_tta, without, atol=1e-5)      # equivariant predictor: unchanged


def test_flip_check_scores_a_stable_result_above_an_unstable_one_and_leaves_the_result_alone():
    """The confidence feature flip_consistency: each window mirrored along z, y, x, predicted, flipped back; the
    masks compared with the unflipped one.  A flip-equivariant network scores 1, one whose output depends on the
    side of the window much less; the result (and MC dropout's draws) is the same as without the check."""
    cfg = SegConfig(arch="unet", channels=(4, 8), infer_patch=(16, 16, 8))

    class Oracle(torch.nn.Module):          # thresholds the input: flip-equivariant
        def forward(self, x):
            return torch.cat([-(x - 0.5) * 50, (x - 0.5) * 50], 1)

    class OneSided(torch.nn.Module):        # the input, but only in the first half of x of every window
        def forward(self, x):
            side = (torch.arange(x.shape[-1]) < x.shape[-1] // 2).to(x.dtype)
            return torch.cat([-(x - 0.5) * 50, (x * side - 0.5) * 50], 1)

    arr = np.zeros((8, 16, 16), np.float32)
    arr[2:6, 4:12, 4:12] = 1.0
    for net, expected in ((Oracle(), 1.0), (OneSided(), None)):
        plain = infer.predict_probs([net], arr, cfg)
        result, unflipped, flipped = infer.predict_probs([net], arr, cfg, flip_check=True)
        np.testing.assert_array_equal(result, plain)
        score = predict.flip_consistency(unflipped, flipped)
        assert score == expected if expected is not None else score < 0.8
    assert predict.flip_consistency(np.zeros((2, 4, 4, 4)), [np.zeros((2, 4, 4, 4))] * 3) == 0.0   # nothing found

    from lungai.seg.networks import build_network

    net = build_network(SegConfig(arch="unet", channels=(4, 8), infer_patch=(16, 16, 8), dropout=0.3))
    big = np.tile(arr, (1, 3, 3))                       # several windows: later windows' draws would move
    mc = infer.predict_probs([net], big, cfg, "mc-dropout", 4, seed=5)
    assert np.abs(mc[0] - mc[1]).max() > 1e-4          # dropout is on: the passes differ
    mc_checked = infer.predict_probs([net], big, cfg, "mc-dropout", 4, seed=5, flip_check=True)[0]
    np.testing.assert_array_equal(mc, mc_checked)      # the check's dropout draws come from a forked generator


def test_three_patient_level_splits_and_the_test_report(tmp_path, capsys):
    """train / validation / TEST: the test patients are neither trained nor validated on; only
    `eval-seg --split test` reads them (rebuilt from model.json), with both methods, bands and hard cases."""
    from seg_helpers import tiny_cases as tc

    images, masks = write_cases(tc(8, seed=710), tmp_path / "data")      # 4 patients, 2 cases each
    model = tmp_path / "m"
    assert main(["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI, "--val-fraction", "0.25",
                 "--test-fraction", "0.25", "-o", str(model)]) == 0
    t = json.loads((model / "model.json").read_text(encoding="utf-8"))["training"]
    test_p = {c.split("_")[0] for c in t["test_cases"]}
    val_p = {c.split("_")[0] for c in t["val_cases"]}
    assert len(test_p) == 1 and len(t["test_cases"]) == 2 and not test_p & val_p
    assert t["n_train_cases"] == 8 - 2 - len(t["val_cases"]) and t["n_test_patients"] == 1
    assert main(["eval-seg", "--model", str(model), "--split", "test", "-o", str(tmp_path / "test.csv")]) == 0
    import pandas as pd
    df = pd.read_csv(tmp_path / "test.csv")
    assert sorted(set(df["case"])) == sorted(t["test_cases"]) and set(df["method"]) == {"ensemble", "mc-dropout"}
    assert {"size_mm", "size_band", "hd95_mm", "confidence"} <= set(df.columns)
    rep = json.loads((tmp_path / "test.report.json").read_text(encoding="utf-8"))
    # the report says which model made it: its files' sha256 (a model retrained in the same folder differs), the seed
    import hashlib
    run = rep.pop("run")
    ident = run["model_identity"]
    assert ident["folder"] == str(model.resolve()) and run["seed"] == 0 and run["methods"] == ["ensemble", "mc-dropout"]
    assert ident["model_json_sha256"] == hashlib.sha256((model / "model.json").read_bytes()).hexdigest()
    files = json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"]
    assert ident["member_sha256"] == {f: hashlib.sha256((model / f).read_bytes()).hexdigest() for f in files}
    assert set(rep) == {"ensemble", "mc-dropout"}
    for method in ("ensemble", "mc-dropout"):
        assert rep[method]["summary"]["n_cases"] == 2 and rep[method]["size_bands"]
        assert sum(b["n"] for b in rep[method]["size_bands"].values()) == 2
    # a model without a test split says so
    tiny = tmp_path / "no_test"
    assert main(["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI, "-o", str(tiny)]) == 0
    assert main(["eval-seg", "--model", str(tiny), "--split", "test", "-o", str(tmp_path / "x.csv")]) == 2
    assert "no test split" in capsys.readouterr().err


def test_size_bands():
    from lungai.seg.evaluate import size_band, size_mm

    m = np.zeros((10, 50, 50), bool)
    m[2:5, 10:30, 10:15] = True
    assert size_mm(m, (2.0, 1.0, 1.0)) == 20.0 and size_band(20.0) == "10-30 mm"
    assert [size_band(v) for v in (3, 10, 45, 61)] == ["< 10 mm", "10-30 mm", "30-60 mm", "> 60 mm"]


def test_members_trained_in_separate_processes_give_the_same_model(tiny_data, tmp_path, capsys):
    """--member K trains one member (one process each, in parallel); the same command without --member,
    with --resume, then saves and calibrates: the weights equal a run that trained the members in turn."""
    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), *TINY_CLI]
    assert main(args + ["-o", str(tmp_path / "serial")]) == 0
    par = str(tmp_path / "parallel")
    assert main(args + ["-o", par, "--member", "1"]) == 0
    assert "member 1 trained" in capsys.readouterr().out
    assert not (tmp_path / "parallel" / "model.json").exists()
    assert main(args + ["-o", par, "--resume", "--member", "0"]) == 0
    assert main(args + ["-o", par, "--resume"]) == 0
    wa, wb = _weights(tmp_path / "serial"), _weights(tmp_path / "parallel")
    assert all(all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a) for a, b in zip(wa, wb))
    from lungai.cli.seg import _train_command

    assert _train_command(["train-seg", "-o", "m", "--member", "1", "--resume", "--member=2", "--seed", "0"]) == \
        "lungai train-seg -o m --seed 0"        # model.json records the command that rebuilds the model
    assert main(args + ["-o", str(tmp_path / "bad"), "--member", "2"]) == 2
    assert "--member 2 is not one of the 2 members" in capsys.readouterr().err


def test_implanted_crops_get_their_share_of_the_draws():
    """IMPLANT_SHARE of the crop draws come from tumours implanted into real CTs (few next to many nodules)."""
    rng = np.random.default_rng(0)
    crop = {"image": np.zeros((1, 8, 16, 16), np.float32), "label": np.ones((1, 8, 16, 16), np.uint8)}
    crops = [dict(crop, case_id=f"n{i}") for i in range(50)] + [dict(crop, case_id="imp", implanted=True)]
    seen = []

    def tf(d):
        seen.append(d["case_id"])
        return [d]

    for _ in range(100):
        train.draw_samples(crops, [], 8, rng, tf, None, (8, 16, 16))
    share = np.mean([s == "imp" for s in seen])
    assert abs(share - train.IMPLANT_SHARE) < 0.05, share
    seen.clear()
    for _ in range(20):
        train.draw_samples(crops[:-1], [], 8, rng, tf, None, (8, 16, 16))
    assert "imp" not in seen


def _train_options(*extra):
    from lungai.cli.seg import train_seg_parser

    return train_seg_parser().parse_args(["--images", "i", "--masks", "m", "-o", "o", *extra])


@pytest.mark.parametrize("option", ["--spacing=0,1,2", "--spacing=-1,1,2", "--spacing=nan,1,2", "--patch=0,0,0",
                                    "--patch=-48,48,16", "--patch=48.7,48,16", "--infer-patch=0,0,0",
                                    "--infer-patch=96.5,96,48"])
def test_train_config_refuses_invalid_geometry(option):
    """A zero / negative spacing crashed training with a raw traceback (ResampleImageFilter_SetSize TypeError), a
    zero / negative patch was accepted and 48.7 truncated to 48: train_config (which the Slicer panel also uses to
    enable Start training) refuses them, naming the option."""
    from lungai.cli.seg import train_config
    from lungai.errors import InputError

    with pytest.raises(InputError, match=option.split("=")[0]):
        train_config(_train_options(option))
    cfg, _ = train_config(_train_options("--patch=48,48,16", "--spacing=1.5,1.5,2", "--infer-patch=64.0,64,16"))
    assert cfg.patch_size == (48, 48, 16) and cfg.infer_patch == (64, 64, 16) and cfg.spacing == (1.5, 1.5, 2.0)


def test_val_fraction_0_is_one_validation_patient_as_before():
    """--val-fraction 0 always meant one validation patient (split_patients: at least one); it was newly refused
    with a false 'leaves no patients to train on', so a run started with it could not be resumed."""
    from lungai.cli.seg import train_config
    from lungai.errors import InputError

    train_config(_train_options("--val-fraction", "0"))
    train_config(_train_options("--val-fraction", "0", "--test-fraction", "0.2"))
    with pytest.raises(InputError, match="negative"):
        train_config(_train_options("--val-fraction=-0.1"))
    with pytest.raises(InputError, match="leaves no patients to train on"):
        train_config(_train_options("--val-fraction", "0.5", "--test-fraction", "0.5"))


def test_mc_passes_below_1_is_refused_by_segment_eval_and_train(tmp_path, capsys):
    """QA: `lungai segment --method mc-dropout --mc-passes 0` averaged no map ("Mean of empty slice"), found no tumour
    and gave a made-up confidence with exit 0; train-seg already refused it.  One check (check_mc_passes) for
    train-seg, segment, eval-seg and segment_tumour, before any data is read or a folder made."""
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.cli.seg import train_config
    from lungai.errors import InputError
    from lungai.seg.config import SegConfig, check_mc_passes
    from lungai.seg.infer import segment_tumour

    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Image((8, 8, 8), sitk.sitkInt16), str(ct))
    for cmd in (["segment", str(ct), "-o", str(tmp_path / "out")],
                ["eval-seg", "--images", str(tmp_path), "--masks", str(tmp_path), "-o", str(tmp_path / "e.csv")]):
        for n in ("0", "-2"):
            assert main(cmd + ["--method", "mc-dropout", "--mc-passes", n]) == 2
            assert "--mc-passes must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "e.csv").exists()
    with pytest.raises(InputError, match="--mc-passes must be 1 or more"):
        train_config(_train_options("--mc-passes", "0"))
    with pytest.raises(InputError, match="--mc-passes must be 1 or more"):      # the library call (Slicer, cohort)
        segment_tumour(sitk.ReadImage(str(ct)), (SegConfig(), [None], {}), method="mc-dropout", mc_passes=0)
    assert check_mc_passes(1) == 1 and check_mc_passes(10) == 10


@pytest.mark.parametrize("option", ["--seed-point=nan,1,2", "--seed-point=1,inf,2", "--roi=inf,1,2,3,4,5",
                                    "--roi=1,2,3,4,5,-inf"])
def test_a_seed_point_or_roi_with_nan_or_inf_is_refused_before_any_work(option, tmp_path, capsys):
    """QA: --seed-point=nan,1,2 / --roi=inf,... ended in the right error after numpy RuntimeWarnings (invalid value in
    cast): the option parser refuses non-finite numbers, naming the option."""
    import warnings

    from lungai.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), option]) == 2
    err = capsys.readouterr().err
    assert option.split("=")[0] in err and "finite" in err and "Warning" not in err


@pytest.mark.parametrize("roi, flat", [("0,0,0,0,0,0", "x and y and z"), ("-10,20,30,15,20,40", "y"),
                                       ("-10,20,30,15,25,30", "z")])
def test_an_roi_with_no_extent_is_refused_before_any_work(roi, flat, tmp_path, capsys):
    """QA: ``lungai segment CT -o o --roi 0,0,0,0,0,0`` (Slicer's ROI never placed) exited 0 and wrote every output: the
    margin round a point made a box, segmented empty.  A box with x0 == x1, y0 == y1 or z0 == z1 is refused with the
    problem and the fix, before the CT is read; the library call too."""
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.errors import InputError
    from lungai.seg.config import SegConfig
    from lungai.seg.infer import choose_box

    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "missing.nii.gz"), "-o", str(out), "--roi", roi]) == 2
    err = capsys.readouterr().err
    assert f"has no extent along {flat}" in err and "give two opposite corners of a box round the tumour" in err, err
    assert not out.exists()
    with pytest.raises(InputError, match="has no extent"):      # the library call's box (segment_tumour)
        choose_box(sitk.Image((8, 8, 8), sitk.sitkInt16), SegConfig(), roi_lps=[float(v) for v in roi.split(",")])


@pytest.mark.parametrize("cmd, options", [
    ("segment", ["--seed-point=-21.9,-120.5,-611.5", "--seed-point=30,-100,-600"]),
    ("segment", ["--seed-point", "-21.9,-120.5,-611.5", "--seed-point", "-21.9,-120.5,-611.5"]),
    ("segment", ["--roi=-60,-160,-640,20,-80,-500", "--roi=0,-100,-600,40,-60,-560"]),
    ("demo", ["--seed-point=-21.9,-120.5,-611.5", "--seed-point=30,-100,-600"])])
def test_a_seed_point_or_roi_given_twice_is_refused_before_any_work(cmd, options, tmp_path, capsys):
    """QA: an oncologist giving two seed points (the primary and a node: ``--seed-point=A --seed-point=B``) got the last
    one segmented alone, exit 0 and no word (argparse keeps the last value): one tumour per run, so a second seed
    point / ROI is refused naming the option and the fix, before the CT is read or anything is written."""
    from lungai.cli import main

    out = tmp_path / "out"
    ct = ["--ct", str(tmp_path / "ct.nii.gz")] if cmd == "demo" else [str(tmp_path / "ct.nii.gz")]
    with pytest.raises(SystemExit) as exc:
        main([cmd, *ct, "-o", str(out), *options])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    option = options[0].split("=")[0]
    assert f"argument {option}: given more than once" in err and "one tumour per run" in err, err
    assert not out.exists()


def test_options_the_run_would_not_use_are_refused_before_any_work(tmp_path, capsys):
    """QA: `lungai segment --method ensemble --mc-passes 4` ran the ensemble (no MC passes) without a word -
    result.json said mc_passes 0, eval-seg's report recorded mc_passes 4 beside CSV rows saying 0; and
    `--all-regions --seed-point ...` (lung1) kept the seed's region alone, exit 0, as if every region had been asked
    for and there were no others.  Both are refused before any work, naming the fix."""
    import SimpleITK as sitk

    from lungai.cli import main

    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Image((8, 8, 8), sitk.sitkInt16), str(ct))
    for cmd in (["segment", str(ct), "-o", str(tmp_path / "out")],
                ["eval-seg", "--images", str(tmp_path), "--masks", str(tmp_path), "-o", str(tmp_path / "e.csv")]):
        assert main(cmd + ["--method", "ensemble", "--mc-passes", "4"]) == 2
        err = capsys.readouterr().err
        assert "--mc-passes 4" in err and "ensemble" in err and "--method mc-dropout" in err
    for where in ("--seed-point=1,2,3", "--roi=0,0,0,5,5,5"):
        assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "--all-regions", where]) == 2
        err = capsys.readouterr().err
        assert "--all-regions" in err and "automatic mode" in err
    # eval-seg --split test evaluates the whole test split with both methods: --method / --max-cases were ignored
    for extra, named in ((["--method", "mc-dropout"], "--method"), (["--max-cases", "2"], "--max-cases"),
                         (["--include-training-patients", "--max-cases", "1"],
                          "--max-cases, --include-training-patients")):
        assert main(["eval-seg", "--split", "test", "-o", str(tmp_path / "e.csv")] + extra) == 2
        err = capsys.readouterr().err
        assert f"{named} not used with --split test" in err and f"leave {named} out" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "e.csv").exists()


def test_no_grow_without_a_box_and_series_with_an_image_file_are_refused_before_any_work(tmp_path, capsys):
    """QA: `lungai segment CT --no-grow` (automatic or --whole mode: no growing box) and `lungai segment lung1.nrrd
    --series UID` (a file holds no series to choose) ran, exit 0, the option ignored without a word.  Both are refused
    before any work (no model loaded, no folder made), naming the fix; `lungai lungs --series` with a file alike."""
    import SimpleITK as sitk

    from lungai.cli import main

    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Image((8, 8, 8), sitk.sitkInt16), str(ct))
    out = str(tmp_path / "out")
    for mode, words in (([], "automatic mode"), (["--whole"], "--whole")):
        assert main(["segment", str(ct), "-o", out, "--no-grow"] + mode) == 2
        err = capsys.readouterr().err
        assert "--no-grow keeps the first box of seed / ROI mode" in err and words in err, err
        assert "leave --no-grow out, or give --seed-point / --roi" in err
    for cmd in (["segment", str(ct), "-o", out, "--seed-point=1,2,3"], ["lungs", str(ct), "-o", out + ".nii.gz"]):
        assert main(cmd + ["--series", "1.2.3"]) == 2
        err = capsys.readouterr().err
        assert "--series 1.2.3: ct.nii.gz is an image file, not a DICOM folder" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.nii.gz").exists()


def test_mc_passes_given_to_a_run_of_the_ensemble_are_noted_as_unused(tmp_path):
    """Without --method a model of several members runs the ensemble: passes given (the Slicer panel passes its MC
    dropout passes with the method "auto") are not used, and the result says so instead of mc_passes 0 alone."""
    import torch
    from seg_helpers import tiny_cases, tiny_config

    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = tiny_config(members=2, dropout=0.1)
    save_model(tmp_path / "m2", cfg, [build_network(cfg).state_dict() for _ in range(2)], {})
    case = next(c for c in tiny_cases(4, 0) if c.case_id)
    model = load_model(tmp_path / "m2")
    given = segment_tumour(case.image, model, whole=True, mc_passes=4).info
    assert given["method"] == "ensemble" and given["mc_passes"] == 0
    assert any("--mc-passes 4" in n and "not used" in n for n in given["notes"])
    plain = segment_tumour(case.image, model, whole=True).info
    assert not any("--mc-passes" in n for n in plain["notes"])
