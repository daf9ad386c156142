"""train-seg / segment / eval-seg on tiny phantoms with a tiny model (seconds)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from seg_helpers import TINY_CLI, ProgressRecorder, tiny_cases, write_cases

from lungai.cli import main

# tiny_model is evaluated on its own training data here: eval-seg leaves such cases out unless asked (QA D2)
SEEN = ["--include-training-patients"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_seg")
    return write_cases(tiny_cases(6, seed=500), root)


@pytest.fixture(scope="module")
def tiny_model(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "a"
    images, masks = tiny_data
    assert main(["train-seg", "--images", str(images), "--masks", str(masks), "-o", str(out), "--arch", "unet",
                 *TINY_CLI]) == 0
    return out


def _weights(model_dir):
    from safetensors.torch import load_file

    return [load_file(str(model_dir / f)) for f in json.loads((model_dir / "model.json").read_text(encoding="utf-8"))["member_files"]]


def _same(wa, wb):
    return all(all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a) for a, b in zip(wa, wb))


def test_model_folder_contents(tiny_model):
    doc = json.loads((tiny_model / "model.json").read_text(encoding="utf-8"))
    assert doc["config"]["arch"] == "unet" and doc["config"]["members"] == 2
    assert doc["member_files"] == ["member_0.safetensors", "member_1.safetensors"]
    t = doc["training"]
    assert t["n_train_patients"] + t["n_val_patients"] == 3 and t["n_val_patients"] >= 1
    assert {c.split("_")[0] for c in t["val_cases"]}.isdisjoint(
        {f"P{i:02d}" for i in range(3)} - {c.split("_")[0] for c in t["val_cases"]})
    for method in ("ensemble", "mc-dropout"):
        assert "pearson_r_cv" in doc["calibration"][method]
        assert (tiny_model / f"validation_{method}.csv").is_file()       # per-case validation table
        val = pd.read_csv(tiny_model / f"validation_{method}.csv")
        thr = doc["review"][method]["threshold"]
        assert 0.0 <= thr <= 1.0 and doc["review"][method]["how"]
        clear = (val["confidence"] - thr).abs() > 1e-4                    # (the threshold is rounded)
        others = val["review_reasons"].fillna("").map(        # image edge, box, seed, candidates
            lambda t: any(r and r != "confidence below the review threshold" for r in t.split("; ")))
        # the flag is the recorded rule: confidence below the threshold, or any other review reason
        assert (val["needs_review"] == ((val["confidence"] < thr) | others))[clear].all()
        tumour = val[val["volume_true_ml"] > 0]
        assert doc["validation"][method]["mean_dice"] == pytest.approx(tumour["dice"].mean(), abs=1e-4)
    assert not list(tiny_model.glob("*.pt")) and not list(tiny_model.glob("*.pkl"))
    assert main(["train-seg", "--images", "x", "--masks", "y", "-o", str(tiny_model)]) == 2  # no overwrite
    assert main(["train-seg", "--images", str(tiny_model), "--masks", str(tiny_model), "-o",
                 str(tiny_model.parent / "other")]) == 2         # no image/mask pairs -> clear error


def test_training_is_deterministic_and_resumable(tiny_data, tiny_model, tmp_path):
    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    one = [a if a != "2" or args[i - 1] != "--epochs" else "1" for i, a in enumerate(args)]
    assert main(one + ["-o", str(tmp_path / "resumed")]) == 0
    assert not _same(_weights(tiny_model), _weights(tmp_path / "resumed"))     # 1 epoch differs
    assert main(args + ["-o", str(tmp_path / "resumed"), "--resume"]) == 0
    # same seed -> same weights, and a resumed run equals an uninterrupted one
    assert _same(_weights(tiny_model), _weights(tmp_path / "resumed"))


def test_a_run_killed_between_a_checkpoints_two_files_resumes_exactly(tiny_data, tiny_model, tmp_path, monkeypatch):
    """A member's checkpoint is two files, its weights (member_K.last.safetensors) and its state (member_K.state.json:
    epoch, history, Adam's settings); a run killed after the weights of an epoch were replaced but before its state
    was must still resume to the uninterrupted run's weights (QA: the resume read the state of the epoch before,
    trained that epoch again on the weights that had already learned it, and saved other weights without a word)."""
    from pathlib import Path

    images, masks = tiny_data
    out = tmp_path / "killed"
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI, "-o", str(out)]
    real = Path.replace
    saved = []

    def replace(self, target):
        if Path(target).name == "member_0.state.json":
            saved.append(target)
            if len(saved) == 2:              # member 0's second epoch: its weights are saved, its state is not
                raise KeyboardInterrupt
        return real(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    assert main(args) != 0                                       # (Ctrl-C: 130)
    monkeypatch.setattr(Path, "replace", real)
    assert json.loads((out / "checkpoints" / "member_0.state.json").read_text(encoding="utf-8"))["epoch"] == 1
    assert main(args + ["--resume"]) == 0
    assert _same(_weights(tiny_model), _weights(out))
    from safetensors.torch import load_file

    for k in (0, 1):        # the last epoch's weights and Adam state too, and the history (its losses)
        want, got = (load_file(str(d / "checkpoints" / f"member_{k}.last.safetensors")) for d in (tiny_model, out))
        assert sorted(want) == sorted(got) and all(np.array_equal(want[n].numpy(), got[n].numpy()) for n in want)
        states = [json.loads((d / "checkpoints" / f"member_{k}.state.json").read_text(encoding="utf-8"))
                  for d in (tiny_model, out)]
        assert [[h["loss"], h["val_dice"]] for h in states[0]["history"]] == \
            [[h["loss"], h["val_dice"]] for h in states[1]["history"]]
        assert states[1]["epoch"] == 2 and [h["epoch"] for h in states[1]["history"]] == [0, 1]


def test_images_and_masks_in_the_same_folder_are_named_as_such(tiny_data, tmp_path, capsys):
    """--images and --masks naming one folder (CTs and masks side by side, or the same folder typed twice) paired
    every CT with itself as its own mask: train-seg / eval-seg refused each file as "an image rather than a label
    map", with the fix "give a label map".  Now said as such, with the two-folder layout, nothing written."""
    images, _ = tiny_data
    for cmd in (["train-seg", *TINY_CLI, "-o", str(tmp_path / "run")],
                ["eval-seg", "-o", str(tmp_path / "per_case.csv")]):
        assert main([*cmd, "--images", str(images), "--masks", str(images) + "/"]) == 2
        err = capsys.readouterr().err
        assert f"--images and --masks are the same folder ({images})" in err and "in another" in err
        assert "label map" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "per_case.csv").exists()


def test_output_must_be_a_new_empty_or_own_folder(tiny_data, tiny_model, tmp_path, capsys):
    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert main(args + ["-o", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "not empty" in err and "new (or empty) folder" in err
    assert sorted(p.name for p in notes.iterdir()) == ["notes.txt"]            # nothing written into it
    assert main(args + ["-o", str(notes), "--resume"]) == 2                   # --resume: no model there either
    assert main(args + ["-o", str(notes / "notes.txt")]) == 2                 # an existing file: no traceback
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err


def test_resume_refusal_says_options_not_given_as_such(tiny_data, tmp_path, capsys):
    """QA: a --resume with options the first run did not give was refused as "--fg-fraction None then, 0.5 now",
    "--tta False then, True now", "--label None then, 1 now" - Python's values, not the options' words.  A flag is
    now said given or not, an option not given as what it meant."""
    images, masks = tiny_data
    base = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    base = [a if base[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(base)]
    out = tmp_path / "run"
    assert main(base + ["-o", str(out), "--member", "0"]) == 0                # a checkpoint of member 0
    for extra, said in ((["--tta"], "--tta not given then, given now"),
                        (["--fg-fraction", "0.5"], "--fg-fraction not given (2/3 for crops, 1/3 for whole CTs) "
                                                   "then, 0.5 now"),
                        (["--label", "1"], "--label not given (any nonzero voxel) then, 1 now")):
        assert main(base + ["-o", str(out), "--resume", "--member", "0", *extra]) == 2
        err = capsys.readouterr().err
        assert said in err and "None" not in err and "False" not in err and "True" not in err, err


def test_resume_with_other_settings_is_named(tiny_data, tmp_path, capsys):
    images, masks = tiny_data
    base = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    base = [a if base[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(base)]
    out = tmp_path / "run"
    assert main(base + ["-o", str(out), "--member", "0"]) == 0                # a checkpoint of member 0
    other = [a if base[i - 1] != "--channels" else "8,16,32" for i, a in enumerate(base)]
    assert main(other + ["-o", str(out), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert "--channels 4,8,16 then, 8,16,32 now" in err and "same options as the first run" in err
    arch = [a if base[i - 1] != "--arch" else "attention_unet" for i, a in enumerate(base)]
    assert main(arch + ["-o", str(out), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert "--arch unet then, attention_unet now" in err and "Traceback" not in err
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 0    # the same settings still resume
    (out / "checkpoints" / "settings.json").unlink()          # a run begun before settings.json was recorded
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 0    # its member states: still resumed
    assert not (out / "checkpoints" / "settings.json").exists()              # (its settings are not known)
    (out / "checkpoints" / "member_0.last.safetensors").unlink()             # a state without its weights
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 2
    assert "train-seg did not write" in capsys.readouterr().err


def test_segment_writes_on_input_grid(tiny_model, small_phantom, tmp_path, capsys):
    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct_path))
    out = tmp_path / "out"
    seed = ",".join(f"{v:.1f}" for v in small_phantom.meta["tumour"]["centre_mm"])
    assert main(["segment", str(ct_path), "-o", str(out), "--model", str(tiny_model), "--seed-point", seed]) == 0
    ct = sitk.ReadImage(str(ct_path))
    for name in ("tumor", "probability", "uncertainty", "mutual_information"):
        img = sitk.ReadImage(str(out / f"{name}.nii.gz"))
        assert img.GetSize() == ct.GetSize() and np.allclose(img.GetOrigin(), ct.GetOrigin())
        assert np.allclose(img.GetDirection(), ct.GetDirection()) and np.allclose(img.GetSpacing(), ct.GetSpacing())
    p = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "probability.nii.gz")))
    u = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "uncertainty.nii.gz")))
    t = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "tumor.nii.gz")))
    assert p.min() >= 0 and p.max() <= 1 and u.min() >= 0 and u.max() <= 1.0001 and set(np.unique(t)) <= {0, 1}
    info = json.loads((out / "result.json").read_text(encoding="utf-8"))
    for key in ("confidence", "needs_review", "review_threshold", "tumor_volume_ml", "n_components", "method",
                "members", "mc_passes"):
        assert key in info
    assert info["roi_mode"] == "seed" and info["members"] == 2 and 0 <= info["confidence"] <= 1
    # MC dropout: single network, N passes
    assert main(["segment", str(ct_path), "-o", str(tmp_path / "mc"), "--model", str(tiny_model),
                 "--method", "mc-dropout", "--mc-passes", "4", "--whole"]) == 0
    mc = json.loads((tmp_path / "mc" / "result.json").read_text(encoding="utf-8"))
    assert mc["method"] == "mc-dropout" and mc["mc_passes"] == 4 and mc["members"] == 1


def test_segment_bad_inputs(tiny_model, small_phantom, tmp_path, capsys):
    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct_path))
    corner = ",".join(f"{v:.1f}" for v in small_phantom.ct.TransformIndexToPhysicalPoint((1, 1, 20)))
    assert main(["segment", str(ct_path), "-o", str(tmp_path / "o1"), "--model", str(tiny_model),
                 f"--seed-point={corner}"]) == 2
    assert "outside the body" in capsys.readouterr().err
    mr = sitk.Cast(sitk.RescaleIntensity(small_phantom.ct, 0, 1200), sitk.sitkInt16)
    mr_path = tmp_path / "mr.nii.gz"
    sitk.WriteImage(mr, str(mr_path))
    assert main(["segment", str(mr_path), "-o", str(tmp_path / "o2"), "--model", str(tiny_model)]) == 2
    assert "does not look like a CT" in capsys.readouterr().err
    assert main(["segment", str(ct_path), "-o", str(tmp_path / "o3"), "--model", str(tmp_path)]) == 2
    assert "not a LungAI segmentation model" in capsys.readouterr().err
    assert main(["segment", str(ct_path), "-o", str(tmp_path / "o4"), "--model", str(tiny_model),
                 "--roi", "1,2,3"]) == 2


def test_eval_seg_per_case_csv(tiny_model, tiny_data, tmp_path, capsys):
    import pandas as pd

    images, masks = tiny_data
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 6
    for col in ("case", "dice", "hd95_mm", "volume_true_ml", "volume_pred_ml", "confidence", "needs_review"):
        assert col in df.columns
    assert (df["roi_mode"] == "whole image (crop)").all()      # crops are evaluated on their whole extent
    assert df["volume_true_ml"].gt(0).all() and df["dice"].between(0, 1).all()
    assert "r(confidence, Dice)" in capsys.readouterr().out


def test_eval_seg_folder_mode_records_the_model_it_evaluated(tiny_model, tiny_data, tmp_path, monkeypatch):
    """eval-seg on folders wrote only the per-case CSV: nothing said which model (a retrained one in the same folder
    looks the same), seed or data made its Dice. Now <name>.report.json holds the run's record (the one
    model_identity helper, as --split test's report and segment's result.json) and the summary."""
    import hashlib

    images, masks = tiny_data
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "--seed", "3", "--max-cases", "2", "-o", str(out)]) == 0
    rep = json.loads(out.with_suffix(".report.json").read_text(encoding="utf-8"))
    run, ident = rep["run"], rep["run"]["model_identity"]
    assert ident["folder"] == str(Path(tiny_model).resolve())
    assert ident["model_json_sha256"] == hashlib.sha256((Path(tiny_model) / "model.json").read_bytes()).hexdigest()
    assert run["seed"] == 3 and run["n_cases"] == 2 and run["max_cases"] == 2 and run["include_training_patients"]
    assert run["images"] == str(Path(images).resolve()) and run["masks"] == str(Path(masks).resolve())
    assert run["split"] is None
    df = pd.read_csv(out)
    assert run["methods"] == sorted(set(df["method"])) and rep["summary"]["n_cases"] == len(df) == 2
    # folders given relative to where it ran: recorded as full paths (a relative one says nothing read elsewhere)
    monkeypatch.chdir(Path(images).parent)
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", Path(images).name, "--masks",
                 Path(masks).name, "--max-cases", "1", "-o", str(tmp_path / "rel.csv")]) == 0
    run = json.loads((tmp_path / "rel.report.json").read_text(encoding="utf-8"))["run"]
    assert run["images"] == str(Path(images).resolve()) and run["masks"] == str(Path(masks).resolve())
    # a user's own file of that name is never replaced
    mine = tmp_path / "mine.report.json"
    mine.write_text("{}", encoding="utf-8")
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "--max-cases", "1", "-o", str(tmp_path / "mine.csv")]) == 2
    assert mine.read_text(encoding="utf-8") == "{}"


def test_eval_seg_folder_mode_reports_the_size_bands_and_hard_cases(tiny_model, tiny_data, tmp_path, capsys):
    """QA trainfollow67: eval-seg --images / --masks wrote only {"summary": ...}: no per-size-band table (< 10,
    10-30, 30-60, > 60 mm) and no hard cases, which --split test gives and which a user testing an own model on
    folders (as the own-model note tells them) needs.  Folder mode reports them too, in the console and the json."""
    from lungai.seg.evaluate import SIZE_BANDS, has_tumour

    images, masks = tiny_data
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    rep = json.loads(out.with_suffix(".report.json").read_text(encoding="utf-8"))
    df = pd.read_csv(out)
    tum = df[has_tumour(df)]
    assert set(rep) >= {"run", "summary", "size_bands", "size_groups", "hard_cases"}, set(rep)
    assert set(rep["size_bands"]) <= {band for _, _, band in SIZE_BANDS} and rep["size_bands"]
    assert sum(st["n"] for st in rep["size_bands"].values()) == len(tum)
    for band, st in rep["size_bands"].items():
        assert st["mean_dice"] == round(float(tum.loc[tum["size_band"] == band, "dice"].mean()), 4)
        assert f"  {band}: n={st['n']}, Dice {st['mean_dice']:.3f}" in printed, printed


def test_eval_seg_keeps_going_when_a_case_fails_mid_run(tiny_model, tiny_data, tmp_path, capsys, monkeypatch):
    """A case that stops with an InputError mid-run (e.g. "no lungs found" in automatic mode) used to lose the
    whole run, without naming the case and without a CSV: now it is a row with its error, left out of the summary,
    the other cases run and eval-seg exits 1."""
    import lungai.seg.infer as infer
    from lungai.errors import InputError

    images, masks = _eval_folders(tiny_data, tmp_path, ["P00_0.nii.gz", "P01_0.nii.gz", "P02_0.nii.gz"])
    real = infer.segment_tumour

    def failing(ct, model, **kw):
        if kw.get("source") == "P01_0":
            raise InputError("no lungs found in the CT", "give a chest CT covering the lungs")
        return real(ct, model, **kw)

    monkeypatch.setattr(infer, "segment_tumour", failing)
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "-o", str(out)]) == 1
    captured = capsys.readouterr()
    df = pd.read_csv(out).set_index("case")
    assert len(df) == 3 and np.isnan(df.loc["P01_0", "dice"]) and df.loc[["P00_0", "P02_0"], "dice"].notna().all()
    assert df.loc["P01_0", "error"].startswith("no lungs found in the CT (fix: give a chest CT")
    assert df["error"].fillna("").eq("").sum() == 2
    assert "2 cases with a tumour" in captured.out and "1 case failed and is left out" in captured.out
    assert "case P01_0: no lungs found" in captured.err


def test_seed_in_aerated_lung_is_a_review_reason_and_a_note(tiny_model, small_phantom):
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model
    from lungai.seg.preprocess import AERATED_REASON, reason_in_mode
    from lungai.synthetic import labels

    lab = sitk.GetArrayViewFromImage(small_phantom.labels)
    ct = small_phantom.ct
    lung = np.argwhere(ndimage_erode(lab == labels.RIGHT_LUNG))
    k, j, i = lung[len(lung) // 2]
    seed = ct.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
    info = segment_tumour(ct, load_model(tiny_model), seed_lps=seed, grow=False, mc_passes=2).info
    AERATED_REASON = reason_in_mode(AERATED_REASON, "seed")       # "the seed point lies in aerated lung"
    assert AERATED_REASON in info["review_reasons"] and info["needs_review"]
    assert any(n.startswith("the seed lies in aerated lung") for n in info["notes"])
    centre = small_phantom.meta["tumour"]["centre_mm"]
    info = segment_tumour(ct, load_model(tiny_model), seed_lps=centre, grow=False, mc_passes=2).info
    assert AERATED_REASON not in info["review_reasons"]


def ndimage_erode(mask, n=3):
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=n)


def _eval_folders(tiny_data, root, names):
    images, masks = tiny_data
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for n in names:
        for d, src in (("images", images), ("masks", masks)):
            sitk.WriteImage(sitk.ReadImage(str(src / n)), str(root / d / n))
    return root / "images", root / "masks"


def test_eval_seg_multi_label_masks_need_label(tiny_model, tiny_data, tmp_path, capsys):
    """Masks in the shared data's convention (1 = GTV, 3 / 4 = lungs): without --label eval-seg refuses them (as
    --tumour / --gtv refuse such a label map), naming --label; with --label 1 only the GTV is the reference."""
    images, masks = _eval_folders(tiny_data, tmp_path, ["P00_0.nii.gz"])
    m = sitk.ReadImage(str(masks / "P00_0.nii.gz"))
    arr = sitk.GetArrayFromImage(m)
    gtv_ml = float(arr.sum()) * float(np.prod(m.GetSpacing())) / 1000
    arr[(arr == 0) & (np.arange(arr.shape[2]) < 20)] = 3                 # a "lung" label beside the GTV
    lab = sitk.GetImageFromArray(arr)
    lab.CopyInformation(m)
    sitk.WriteImage(lab, str(masks / "P00_0.nii.gz"))
    out = tmp_path / "per_case.csv"
    cmd = ["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
           "-o", str(out)]
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "mask P00_0 holds 2 labels (1, 3)" in err and "--label 1" in err and not out.exists()
    assert main(cmd + ["--label", "7"]) == 2 and "no mask holds label 7 (their labels: 1, 3)" in capsys.readouterr().err
    assert main(cmd + ["--label", "1"]) == 0
    assert pd.read_csv(out)["volume_true_ml"].iloc[0] == pytest.approx(gtv_ml, rel=1e-3)


def test_eval_seg_checks_every_pair_before_evaluating(tiny_model, tiny_data, tmp_path, capsys, monkeypatch):
    """A mask 0.01 mm off its image and an image not in HU: both named in one error before any case runs, and
    nothing written (not an abort after the other cases were computed)."""
    import lungai.seg.evaluate as ev

    images, masks = _eval_folders(tiny_data, tmp_path, ["P00_0.nii.gz", "P01_0.nii.gz", "P02_0.nii.gz"])
    m = sitk.ReadImage(str(masks / "P01_0.nii.gz"))
    m.SetOrigin([m.GetOrigin()[0] + 0.01, *m.GetOrigin()[1:]])
    sitk.WriteImage(m, str(masks / "P01_0.nii.gz"))
    sitk.WriteImage(sitk.ReadImage(str(images / "P02_0.nii.gz")) + 2000, str(images / "P02_0.nii.gz"))
    ran = []
    monkeypatch.setattr(ev, "evaluate_case", lambda model, case, *a, **k: ran.append(case.case_id))
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 of 3 image / mask pairs cannot be evaluated" in err
    assert "P01_0:" in err and "P02_0:" in err and "does not look like a CT" in err and "P00_0:" not in err
    assert ran == [] and not out.exists()


def test_no_tumour_found_is_a_valid_result(small_phantom, tmp_path, capsys):
    """A model that sees no tumour anywhere: empty mask, a note and a confidence - not a crash."""
    import torch
    from seg_helpers import tiny_config

    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config()
    states = []
    for _ in range(cfg.members):
        net = build_network(cfg)
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
            last_bias = [p for n, p in net.named_parameters() if n.endswith("bias") and p.shape == (2,)][-1]
            last_bias.copy_(torch.tensor([6.0, -6.0]))              # background everywhere
        states.append(net.state_dict())
    save_model(tmp_path / "empty_model", cfg, states, {})
    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct_path))
    out = tmp_path / "out"
    assert main(["segment", str(ct_path), "-o", str(out), "--model", str(tmp_path / "empty_model")]) == 0
    info = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert info["n_components"] == 0 and info["tumor_volume_ml"] == 0 and info["roi_mode"] == "lungs"
    # nothing found: the members agree on no tumour, which the (uncalibrated) confidence counts 0
    assert "no tumour found" in " ".join(info["notes"]) and info["confidence"] == 0.0
    assert info["needs_review"] is True
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out / "tumor.nii.gz"))).sum() == 0
    assert "no tumour found" in capsys.readouterr().out


def test_cli_reads_negative_lps_coordinates():
    from lungai.cli import build_parser

    a = build_parser().parse_args(["segment", "ct.nii.gz", "-o", "out", "--seed-point", "-12.5,40,-150"])
    assert a.seed_point == "-12.5,40,-150"
    a = build_parser().parse_args(["segment", "ct.nii.gz", "-o", "out", "--roi", "-1,-2,-3,4,5,6"])
    assert a.roi == "-1,-2,-3,4,5,6"


def test_a_point_copied_with_spaces_after_its_commas_is_read_whole(tmp_path, capsys):
    """QA: `--seed-point -21.86, -120.54, -611.5` (a point as Python / Slicer's console print it) stopped with
    argparse's "expected one argument"; the value's pieces after a trailing comma are joined (segment, demo)."""
    from lungai.cli import join_split_coordinates

    split = ["segment", "ct.nii.gz", "--seed-point", "-21.86,", "-120.54,", "-611.5", "-o", "out"]
    assert join_split_coordinates(split) == ["segment", "ct.nii.gz", "--seed-point", "-21.86,-120.54,-611.5", "-o",
                                             "out"]
    assert join_split_coordinates(["demo", "--seed-point=-1,", "2,", "3", "-o", "o"]) == [
        "demo", "--seed-point=-1,2,3", "-o", "o"]
    assert join_split_coordinates(["segment", "c", "--roi", "1, 2, 3,", "4,", "5,", "6"])[-1] == "1, 2, 3,4,5,6"
    whole = ["segment", "ct.nii.gz", "--seed-point", "-21.86,-120.54,-611.5", "-o", "out", "--model", "m,"]
    assert join_split_coordinates(whole) == whole       # nothing else on the line changes
    missing = str(tmp_path / "missing.nii.gz")
    for argv in (["segment", missing, "-o", str(tmp_path / "o"), "--seed-point", "-21.86,", "-120.54,", "-611.5"],
                 ["demo", "--ct", missing, "-o", str(tmp_path / "d"), "--seed-point", "-21.86,", "-120.54,", "-611.5"]):
        assert main(argv) == 2                         # parsed: the missing CT is the error, not the point
        assert "does not exist" in capsys.readouterr().err


def test_no_lungs_found_is_a_clear_error(tiny_model, tmp_path, capsys):
    """A large CT (not a crop) with a body but no air inside: automatic mode cannot find lungs."""
    arr = np.full((30, 120, 120), -1000, np.int16)
    yy, xx = np.mgrid[:120, :120]
    arr[:, (yy - 60) ** 2 + (xx - 60) ** 2 < 50 ** 2] = 40          # a soft-tissue cylinder, no lungs
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((3.0, 3.0, 5.0))
    path = tmp_path / "nolungs.nii.gz"
    sitk.WriteImage(img, str(path))
    assert main(["segment", str(path), "-o", str(tmp_path / "o"), "--model", str(tiny_model)]) == 2
    err = capsys.readouterr().err
    assert "no lungs found" in err and "How to fix" in err


def test_batches_mix_crops_and_whole_ct_patches():
    from lungai.seg.augment import augment_transform, training_transform
    from lungai.seg.train import WHOLE_CT_FRACTION, draw_samples

    patch = (16, 32, 32)
    crop = {"image": np.zeros((1, 12, 30, 30), np.float32), "label": np.zeros((1, 12, 30, 30), np.uint8)}
    crop["label"][0, 4:8, 10:20, 10:20] = 1
    whole = {"image": np.ones((1, 40, 90, 90), np.float32), "label": np.zeros((1, 40, 90, 90), np.uint8),
             "tumour_idx": np.array([[20, 45, 45]], np.int32), "hard_idx": np.array([[5, 5, 5]], np.int32)}
    rng = np.random.default_rng(1)
    tf, tf_aug = training_transform(patch, 0), augment_transform(patch, 0)
    samples = draw_samples([crop], [whole], 200, rng, tf, tf_aug, patch)
    assert all(tuple(np.asarray(s["image"]).shape) == (1,) + patch for s in samples)
    from_whole = np.mean([float(np.asarray(s["image"]).mean()) > 0.5 for s in samples])
    assert abs(from_whole - WHOLE_CT_FRACTION) < 0.1
    only_crops = draw_samples([crop], [], 20, rng, tf, tf_aug, patch)
    assert all(float(np.asarray(s["image"]).mean()) < 0.5 for s in only_crops)


def test_automatic_mode_segments_the_most_probable_candidate_and_lists_the_others(small_phantom, tiny_model,
                                                                                   monkeypatch):
    """Network replaced by a marker detector (the logic under test is what happens after it): three
    marked balls in the lungs become ranked candidates, the biggest is the tumour; one in the
    mediastinum is dropped as outside the lungs."""
    from scipy import ndimage

    import lungai.seg.infer as infer
    from lungai.seg.model_io import load_model
    from lungai.synthetic import labels

    marker_hu = 137.0
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    arr = sitk.GetArrayFromImage(small_phantom.ct).astype(np.float32)
    sp = np.array(small_phantom.ct.GetSpacing()[::-1])
    deep_lung = ndimage.distance_transform_edt(np.isin(lab, (labels.RIGHT_LUNG, labels.LEFT_LUNG)), sampling=sp)
    zz, yy, xx = np.ogrid[: arr.shape[0], : arr.shape[1], : arr.shape[2]]

    def ball(centre, r_mm):
        return sum(((g - c) * s) ** 2 for g, c, s in zip((zz, yy, xx), centre, sp)) <= r_mm ** 2

    picks = np.argwhere(deep_lung > 16)
    centres = [picks[0], picks[len(picks) // 2], picks[-1]]
    balls = [ball(c, r) for c, r in zip(centres, (12.0, 9.0, 7.0))]
    mediastinum = np.argwhere(lab == labels.MEDIASTINUM)
    outside = ball(mediastinum[len(mediastinum) // 2], 10.0) & ~np.isin(lab, (labels.RIGHT_LUNG, labels.LEFT_LUNG))
    for b in balls + [outside]:
        arr[b] = marker_hu
    ct = sitk.GetImageFromArray(arr)
    ct.CopyInformation(small_phantom.ct)
    model = load_model(tiny_model)
    w = (marker_hu - model[0].hu_window[0]) / (model[0].hu_window[1] - model[0].hu_window[0])

    def marker_probs(nets, a, cfg, method="ensemble", mc_passes=10, seed=0, flip_check=False, progress=None):
        p = (np.abs(a - w) < 0.01).astype(np.float32)
        probs = np.stack([p * 0.9, p * 0.95])
        return (probs, probs, [probs] * 3) if flip_check else probs      # a voxel-wise rule: mirroring changes nothing

    monkeypatch.setattr(infer, "predict_probs", marker_probs)
    res = infer.segment_tumour(ct, model)
    info = res.info
    assert info["roi_mode"] == "lungs" and info["needs_review"]
    cands = info["candidates"]
    assert info["n_candidates"] == 3 and [c["rank"] for c in cands] == [1, 2, 3] and [c["in_tumor_mask"] for c in cands] == [True, False, False]
    vols = [c["volume_ml"] for c in cands]
    assert vols == sorted(vols, reverse=True)
    for c, b in zip(cands, balls):               # ranked biggest first, centres in LPS mm
        k, j, i = np.argwhere(b).mean(0)
        expected = ct.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)])
        assert np.allclose(c["centre_lps_mm"], expected, atol=4.0)
    mask = sitk.GetArrayFromImage(res.tumour) > 0
    assert (mask & balls[0]).sum() > 0.8 * balls[0].sum() and not (mask & (balls[1] | balls[2])).any()
    assert info["n_components"] == 1 and info["dropped_components"]["n_outside_lungs"] >= 1   # + edge specks
    assert not (mask & outside).any()
    assert any("3 candidate regions" in n and "--seed-point" in n for n in info["notes"])
    _assert_one_spelling(info)
    everything = infer.segment_tumour(ct, model, all_regions=True)
    assert everything.info["n_components"] == 3 and all(c["in_tumor_mask"] for c in everything.info["candidates"])
    seeded = infer.segment_tumour(ct, model, seed_lps=cands[1]["centre_lps_mm"])   # a listed centre -> that region
    assert (sitk.GetArrayFromImage(seeded.tumour) > 0)[balls[1]].mean() > 0.8 and seeded.info["candidates"] == []


def test_train_seg_multi_label_masks_need_label(tiny_data, tmp_path, capsys):
    """Label maps of GTV + lungs (1 = GTV, 3 = "lung"): without --label train-seg refuses them before any training,
    naming the mask files and --label (every nonzero label would be trained on as tumour); with --label 1 only the
    GTV is the tumour, and --label is a setting a --resume must keep."""
    from lungai.seg.dataset import load_images, pair_files

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path, names)
    gtv = {}
    for n in names[:2]:
        m = sitk.ReadImage(str(masks / n))
        arr = sitk.GetArrayFromImage(m)
        gtv[n] = arr.copy()
        arr[(arr == 0) & (np.arange(arr.shape[2]) < 5)] = 3                 # a "lung" label beside the GTV
        lab = sitk.GetImageFromArray(arr)
        lab.CopyInformation(m)
        sitk.WriteImage(lab, str(masks / n))
    base = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    base = [a if base[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(base)]
    out = tmp_path / "run"
    assert main(base + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"2 of the {len(names)} masks hold several labels" in err and "--label 1" in err
    assert all(f"mask {n} holds 2 labels (1, 3)" in err for n in names[:2]) and not (out / "checkpoints").exists()
    assert main(base + ["-o", str(out), "--label", "7"]) == 2
    assert "no mask holds label 7 (their labels: 1, 3)" in capsys.readouterr().err
    assert main(base + ["-o", str(out), "--label", "1", "--member", "0"]) == 0
    assert json.loads((out / "checkpoints" / "settings.json").read_text(encoding="utf-8"))["label"] == 1
    assert main(base + ["-o", str(out), "--label", "3", "--resume", "--member", "0"]) == 2
    assert "--label 1 then, 3 now" in capsys.readouterr().err
    for c in pair_files(images, masks, label=1):                            # the training masks: the GTV alone
        if c.mask_path.name in gtv:
            assert np.array_equal(sitk.GetArrayFromImage(load_images(c)[1]), gtv[c.mask_path.name])


def _one_epoch(images, masks):
    base = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    return [a if base[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(base)]


def test_resume_with_other_data_is_named(tiny_data, tmp_path, capsys):
    """The data is part of a run's settings: a --resume on more (or fewer) cases, or with other --max-cases /
    --synthetic, would change the split part-way (validation cases of member 0 becoming training or test cases):
    refused, naming what changed; the same data resumes."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "run"
    base = _one_epoch(images, masks)
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    settings = json.loads((out / "checkpoints" / "settings.json").read_text(encoding="utf-8"))
    assert sorted(settings["train_cases"] + settings["val_cases"]) == [n[:-7] for n in names]
    assert settings["test_cases"] == [] and not settings["max_cases"] and settings["synthetic"] == 0
    assert main(base + ["-o", str(out), "--resume", "--member", "0", "--max-cases", "4"]) == 2
    err = capsys.readouterr().err
    assert f"--max-cases {settings['max_cases']} then, 4 now" in err and "not there now" in err and "same options" in err
    assert main(base + ["-o", str(out), "--resume", "--member", "0", "--synthetic", "1"]) == 2
    assert "--synthetic 0 then, 1 now" in capsys.readouterr().err
    # QA: another --seed alone splits the same cases otherwise; the refusal blamed "other data, or other --images
    # / --masks ..." (twice, once per changed list): it says the seed changes the split, once
    assert main(base + ["-o", str(out), "--resume", "--member", "0", "--seed", str(settings["seed"] + 1)]) == 2
    err = capsys.readouterr().err
    assert f"--seed {settings['seed']} then, {settings['seed'] + 1} now" in err and "not there now" in err
    assert "other data" not in err and "--images" not in err
    assert err.count("(the same cases, split otherwise: --seed changes which patients are training / validation /"
                     " test cases)") == 1
    for d in (images, masks):                                  # a new patient added to the folders
        sitk.WriteImage(sitk.ReadImage(str(d / names[0])), str(d / "P09_0.nii.gz"))
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert "cases: 1 not there then (P09_0)" in err and "Traceback" not in err
    for d in (images, masks):
        (d / "P09_0.nii.gz").unlink()
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 0


def test_killed_during_calibration_is_not_a_model(tiny_data, tmp_path, capsys, monkeypatch):
    """A run that stops during the calibration leaves model.json marked "calibrating": segment refuses it (no
    silent uncalibrated model) naming --resume, which finishes the calibration."""
    import lungai.seg.calibrate as calibrate

    images, masks = tiny_data
    out = tmp_path / "run"
    real = calibrate.calibrate_model

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate, "calibrate_model", killed)
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) != 0            # (Ctrl-C: 130)
    # QA: said "--resume continues from the last finished epoch" though every member had finished
    assert (f"cancelled; training is complete (the checkpoints are kept in {out / 'checkpoints'}); the same command "
            "with --resume finishes the calibration" in capsys.readouterr().err)
    assert json.loads((out / "model.json").read_text(encoding="utf-8"))["status"] == "calibrating"
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(images / "P00_0.nii.gz")), str(ct))
    assert main(["segment", str(ct), "--model", str(out), "-o", str(tmp_path / "seg")]) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and "--resume" in err
    monkeypatch.setattr(calibrate, "calibrate_model", real)
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume"]) == 0
    doc = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert "status" not in doc and doc["calibration"]


def test_a_longer_resume_keeps_the_finished_model_until_its_own_is_calibrated(tiny_data, tmp_path, capsys,
                                                                                monkeypatch):
    """--resume with a larger --epochs on a finished model replaces it "only once the longer run has saved and
    calibrated its own": stopped (Ctrl-C) during that calibration, the finished model is left whole and usable (QA:
    model.json was rewritten "calibrating" before the calibration, the members replaced, and segment refused the
    folder); the same command again finishes it and the folder then holds the longer run's model."""
    import lungai.seg.calibrate as calibrate

    images, masks = tiny_data
    out = tmp_path / "run"
    one = _one_epoch(images, masks)
    assert main(one + ["-o", str(out)]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    first = _weights(out)
    longer = [a if one[i - 1] != "--epochs" else "2" for i, a in enumerate(one)] + ["-o", str(out), "--resume"]
    real = calibrate.calibrate_model

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate, "calibrate_model", killed)
    capsys.readouterr()
    assert main(longer) != 0                                      # (Ctrl-C: 130)
    err = capsys.readouterr().err
    assert "finishes the calibration" in err and f"the model in {out} is left as it was" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files      # untouched
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(images / "P00_0.nii.gz")), str(ct))
    assert main(["segment", str(ct), "--model", str(out), "-o", str(tmp_path / "seg")]) == 0
    monkeypatch.setattr(calibrate, "calibrate_model", real)
    assert main(longer) == 0
    doc = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert "status" not in doc and doc["training"]["epochs"] == 2 and doc["calibration"]
    assert all(m["epochs_run"] == 2 for m in doc["members"])
    assert not (out / "checkpoints" / "next_model").exists()
    assert main(["segment", str(ct), "--model", str(out), "-o", str(tmp_path / "seg2")]) == 0
    assert not _same(_weights(out), first)                        # the longer run's weights


def test_resume_never_replaces_a_model_train_seg_did_not_write(tiny_data, tmp_path, capsys):
    """-o holding a model.json that is not train-seg's own (a model choice copied in; a model without its
    checkpoints) is refused, --resume or not, and left as it is."""
    import shutil

    from lungai.seg.resources import models_root

    images, masks = tiny_data
    choice = tmp_path / "choice"
    choice.mkdir()
    shutil.copy(models_root() / "lungai-seg-choice" / "model.json", choice / "model.json")
    before = (choice / "model.json").read_bytes()
    for extra in (["--resume"], []):
        assert main(_one_epoch(images, masks) + ["-o", str(choice), *extra]) == 2
        err = capsys.readouterr().err
        assert "train-seg did not write" in err and "lungai-seg-choice-1" in err
    assert (choice / "model.json").read_bytes() == before and sorted(p.name for p in choice.iterdir()) == ["model.json"]
    copied = tmp_path / "copied"
    shutil.copytree(models_root() / "lungai-seg-unet-ensemble", copied)
    assert main(_one_epoch(images, masks) + ["-o", str(copied), "--resume"]) == 2
    assert "no checkpoints/" in capsys.readouterr().err


def test_one_file_per_patient_is_noted_and_recorded(tiny_data, tmp_path, capsys):
    """Names without a <patient>_ part: every file is its own patient; said, and recorded in model.json."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    for d in (images, masks):
        for n in names:
            (d / n).rename(d / n.replace("_", "-"))
    out = tmp_path / "run"
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 0
    assert "the split assumes one file per patient" in capsys.readouterr().out
    notes = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]["notes"]
    assert "--patients" in notes[0] and "<patient>_<n>" in notes[0]


def test_resume_never_trains_over_checkpoints_train_seg_did_not_write(tiny_data, tmp_path, capsys):
    """A checkpoints/ folder without a train-seg settings.json (or model.json), or with a member state that is not
    train-seg's, is not an interrupted run: refused with and without --resume (no 'add --resume' hint), and every
    file left as it is."""
    images, masks = tiny_data
    out = tmp_path / "u3"
    (out / "checkpoints").mkdir(parents=True)
    (out / "member_0.safetensors").write_text("userweights\n", encoding="utf-8")
    (out / "checkpoints" / "member_0.state.json").write_text("mine\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for extra in ([], ["--resume"]):
        assert main(_one_epoch(images, masks) + ["-o", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert "train-seg did not write" in err and "no settings.json" in err and "add --resume" not in err
    (out / "checkpoints" / "settings.json").write_text('{"epochs": 3}', encoding="utf-8")     # not train-seg's
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume"]) == 2
    assert "not the settings file of a train-seg run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "settings.json"} == before
    run = tmp_path / "run"                                    # train-seg's own run, one member state spoilt
    assert main(_one_epoch(images, masks) + ["-o", str(run), "--member", "0"]) == 0
    (run / "checkpoints" / "member_0.state.json").write_text("mine\n", encoding="utf-8")
    assert main(_one_epoch(images, masks) + ["-o", str(run), "--resume"]) == 2
    assert "member_0.state.json is not the state file of a train-seg member" in capsys.readouterr().err


def test_checkpoints_without_settings_json_are_judged_by_their_member_states(tmp_path):
    """No settings.json: a run begun before train-seg recorded it (a member's state.json with its weights) is
    train-seg's; a run stopped as it began (checkpoints/ empty, or only an unfinished *.tmp) is no run yet; any
    other folder is foreign."""
    from lungai.seg.settings import check_settings, foreign_checkpoints

    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    assert foreign_checkpoints(ckpt) is None                       # empty: stopped as it began
    (ckpt / "settings.4242.tmp").write_text("{", encoding="utf-8")
    assert foreign_checkpoints(ckpt) is None                       # only the settings.json being written
    check_settings(ckpt, {"arch": "unet"})                         # no run to compare: the panel's check passes
    (ckpt / "member_0.state.json").write_text(json.dumps({"epoch": 3, "best_epoch": 2}), encoding="utf-8")
    assert "holds no settings.json" in foreign_checkpoints(ckpt)  # a state without its weights
    (ckpt / "member_0.last.safetensors").write_bytes(b"\0" * 16)
    assert foreign_checkpoints(ckpt) is None                       # an older run's checkpoints
    check_settings(ckpt, {"arch": "unet"})
    (ckpt / "member_1.state.json").write_text("mine\n", encoding="utf-8")
    assert "member_1.state.json is not the state file" in foreign_checkpoints(ckpt)
    other = tmp_path / "other" / "checkpoints"
    other.mkdir(parents=True)
    (other / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert "holds no settings.json" in foreign_checkpoints(other)


def test_a_run_stopped_as_it_began_is_resumed(tiny_data, tmp_path, capsys):
    images, masks = tiny_data
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "settings.4242.tmp").write_text('{"arch"', encoding="utf-8")
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume"]) == 0
    assert (out / "model.json").is_file() and (out / "checkpoints" / "settings.json").is_file()


def _break_grid(mask_path):
    m = sitk.ReadImage(str(mask_path))
    m.SetSpacing((*m.GetSpacing()[:2], m.GetSpacing()[2] - 1))
    sitk.WriteImage(m, str(mask_path))


def test_test_cases_pairs_are_checked_and_the_split_is_shown(tiny_data, tmp_path, capsys, monkeypatch):
    """train-seg checks every image / mask grid (the held-out test cases too, never read by training) before it
    trains and before -o is made; it prints the split; eval-seg --split test checks every test pair before any
    case runs, as folder mode does."""
    import lungai.seg.evaluate as ev
    from lungai.seg.dataset import pair_files, split_patients

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    cmd = _one_epoch(images, masks) + ["--test-fraction", "0.3"]
    test = sorted(c.case_id for c in split_patients(pair_files(images, masks), 0.34, 0, 0.3)[2])
    keep = (masks / f"{test[0]}.nii.gz").read_bytes()
    _break_grid(masks / f"{test[0]}.nii.gz")
    out = tmp_path / "run"
    assert main(cmd + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"1 of {len(names)} image / mask pairs are not on one grid - {test[0]}:" in err
    assert "nothing was trained" in err and not out.exists()
    (masks / f"{test[0]}.nii.gz").write_bytes(keep)
    assert main(cmd + ["-o", str(out)]) == 0
    assert (f"split by patient: train 2 cases / 1 patient, validation 2 cases / 1 patient, test 2 cases / 1 "
            f"patient (held out: {', '.join(test)})") in capsys.readouterr().out
    _break_grid(masks / f"{test[1]}.nii.gz")
    ran = []
    monkeypatch.setattr(ev, "evaluate_case", lambda model, case, *a, **k: ran.append(case.case_id))
    report = tmp_path / "test.csv"
    assert main(["eval-seg", "--model", str(out), "--split", "test", "-o", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"1 of 2 image / mask pairs cannot be evaluated - {test[1]}:" in err and "case_sources" in err
    assert ran == [] and not report.exists()


def test_train_seg_refused_on_its_inputs_leaves_no_output_folder(tiny_data, tmp_path, capsys):
    """Masks with labels {0, 1, 2}, a missing mask, DICOM folders: refused before -o is made.  DICOM folders are
    named as such, with how to make NIfTI pairs of them (not 'no image has a mask of the same name')."""
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import write_rt_study

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "new" / "run"
    m = sitk.ReadImage(str(masks / names[0]))
    arr = sitk.GetArrayFromImage(m)
    arr[0, 0, 0] = 2
    lab = sitk.GetImageFromArray(arr)
    lab.CopyInformation(m)
    sitk.WriteImage(lab, str(masks / names[0]))                    # {0, 1, 2}
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 2
    assert "several labels" in capsys.readouterr().err and not out.parent.exists()
    (masks / names[0]).unlink()
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 2
    assert "no partner" in capsys.readouterr().err and not out.parent.exists()
    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    ct, rt = study["ct"], Path(study["rtstruct"]).parent
    assert main(_one_epoch(ct, rt) + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--images folder {ct} holds DICOM files" in err and "NIfTI / NRRD / MHA" in err and "3D Slicer" in err
    assert "has a mask of the same name" not in err and not out.parent.exists()
    assert main(_one_epoch(tmp_path / "dicom", images) + ["-o", str(out)]) == 2      # an export's root folder
    assert "holds DICOM files" in capsys.readouterr().err and not out.parent.exists()


def test_train_seg_counts_a_whole_ct_apart_and_names_other_labels(tiny_data, tmp_path, capsys):
    """QA: crops plus a whole planning CT were recorded as {"user images": n} and described as "n image crops"
    (demo summary, report); the whole CT is a "user whole CT" source, said as such.  With --label 1 the label map's
    other labels are named in a note: trained on as background."""
    from test_seg_dataset import _chest_label_map

    from lungai.seg.choice import training_text
    from lungai.seg.model_io import load_model

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "d", names)
    chest_i, chest_m = _chest_label_map(tmp_path / "chest")
    for src, dst in ((chest_i, images), (chest_m, masks)):
        (src / "W_0.nii.gz").rename(dst / "W_0.nii.gz")
    out = tmp_path / "run"
    cmd = ["train-seg", "--images", str(images), "--masks", str(masks), "--label", "1", "-o", str(out),
           "--arch", "unet", *TINY_CLI]
    cmd = [a if cmd[i - 1] not in ("--epochs", "--iters", "--members") else "1" for i, a in enumerate(cmd)]
    assert main(cmd + ["--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "--label 1: the masks also hold labels 2 (in 1 of the 7 masks), 3 (in 1 of the 7 masks)" in printed
    t = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]
    assert t["train_sources"] == {"user images": 4, "user whole CT": 1}, t
    assert t["implant_background_patients"] == []              # recorded (none here): a report names them
    assert training_text(load_model(out)).endswith(": 4 image crops and 1 whole CT (d/images)")


def _with(cmd, **values):
    """``cmd`` with the options ``values`` (e.g. iters=3, lr_schedule="poly") set: replaced, else appended."""
    cmd = list(cmd)
    for name, value in values.items():
        opt = "--" + name.replace("_", "-")
        if opt in cmd:
            cmd[cmd.index(opt) + 1] = str(value)
        else:
            cmd += [opt, str(value)]
    return cmd


def test_resume_refuses_a_length_it_cannot_train_exactly(tiny_data, tmp_path, capsys):
    """QA: --resume took another --iters, --patience, or (--lr-schedule poly) --epochs without a word, and
    model.json then recorded a command that does not rebuild its weights.  Once a member has run an epoch they
    are refused, naming both values; before any epoch ran they are free."""
    images, masks = tiny_data
    base = _with(["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI],
                 epochs=1, iters=2, patience=5)
    out = tmp_path / "run"
    assert main(base + ["-o", str(out), "--member", "0"]) == 0               # member 0 ran 1 epoch of 2 batches
    state = json.loads((out / "checkpoints" / "member_0.state.json").read_text(encoding="utf-8"))
    assert (state["epoch"], state["iters_per_epoch"], state["epochs"], state["patience"]) == (1, 2, 1, 5)
    for member in ("0", "1"):                 # member 1 has not started: its batches must still be member 0's
        assert main(_with(base, iters=3) + ["-o", str(out), "--resume", "--member", member]) == 2
        err = capsys.readouterr().err
        assert "--iters 2 then (member 0 ran 1 epoch with it), 3 now" in err, err
        assert "same options as the first run (--iters 2), or choose a new -o folder" in err and "Traceback" not in err
    assert main(_with(base, patience=7) + ["-o", str(out), "--resume", "--member", "0"]) == 2
    assert "--patience 5 then (member 0 ran 1 epoch with it), 7 now" in capsys.readouterr().err
    # nothing ran yet (a run stopped as it began): any length
    fresh = tmp_path / "fresh"
    assert main(base + ["-o", str(fresh), "--member", "0"]) == 0
    for p in (fresh / "checkpoints").glob("member_*"):
        p.unlink()
    assert main(_with(base, iters=3, patience=2) + ["-o", str(fresh), "--resume", "--member", "0"]) == 0


def test_resume_may_change_epochs_only_where_exact(tiny_data, tmp_path, capsys):
    """(see above) --epochs: with a constant learning rate grown, or down to the epochs every member ran; with
    --lr-schedule poly as the members ran; --members and --mc-passes free."""
    images, masks = tiny_data
    base = _with(["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI],
                 epochs=1, iters=2, patience=5)
    out = tmp_path / "run"
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    # constant learning rate: more epochs is a fresh longer run; fewer than a member ran is not
    assert main(_with(base, epochs=2) + ["-o", str(out), "--resume", "--member", "0"]) == 0
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 1 now, but member 0 has run 2 epochs" in err and "(--epochs 2 or more)" in err, err
    assert main(_with(base, epochs=2, members=3, mc_passes=2) + ["-o", str(out), "--resume", "--member", "0"]) == 0
    # poly: the learning rate of every step depends on --epochs
    poly = _with(base, lr_schedule="poly")
    assert main(poly + ["-o", str(tmp_path / "poly"), "--member", "0"]) == 0
    assert main(_with(poly, epochs=2) + ["-o", str(tmp_path / "poly"), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 1 then with --lr-schedule poly" in err and "2 now" in err, err
    assert main(poly + ["-o", str(tmp_path / "poly"), "--resume", "--member", "0"]) == 0   # the same: resumes


def test_resume_of_a_finished_model_keeps_its_length(tiny_model, tiny_data, tmp_path, capsys):
    """QA: a finished model resumed with another --iters kept its weights but model.json then recorded the new
    --iters; refused (also for member states written before they recorded their length: model.json's)."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = (model / "model.json").read_bytes()
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    for legacy in (False, True):
        if legacy:
            for p in (model / "checkpoints").glob("member_*.state.json"):
                doc = json.loads(p.read_text(encoding="utf-8"))
                p.write_text(json.dumps({k: v for k, v in doc.items() if k not in ("epochs", "iters_per_epoch")}),
                             encoding="utf-8")
        assert main(_with(args, iters=8) + ["-o", str(model), "--resume"]) == 2
        err = capsys.readouterr().err
        assert "--iters 4 then (member 0 ran 2 epochs with it), 8 now" in err, err
        assert (model / "model.json").read_bytes() == before


def test_resume_names_members_that_ran_with_different_lengths(tiny_data, tmp_path, capsys):
    """QA: members trained by separate --member processes with different --iters (neither refused: no epoch had
    finished) could not be assembled, and the --resume message suggested the one member's --iters, then with it
    the other's, back and forth.  One message now lists each member's value and says no single --resume can
    assemble them (fix: retrain the members that differ, or a new -o)."""
    import shutil

    images, masks = tiny_data
    base = _with(["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI],
                 epochs=1, iters=2, patience=5)
    out, apart = tmp_path / "run", tmp_path / "apart"
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    assert main(_with(base, iters=3) + ["-o", str(apart), "--member", "1"]) == 0        # started in parallel
    for p in (apart / "checkpoints").glob("member_1.*"):
        shutil.copy(p, out / "checkpoints" / p.name)
    capsys.readouterr()
    for iters in (2, 3):
        assert main(_with(base, iters=iters) + ["-o", str(out), "--resume"]) == 2
        err = capsys.readouterr().err
        assert ("--iters: member 0 ran with 2, member 1 with 3; no single --resume can assemble them" in err
                and "retrain the members that differ" in err and "rerun each with --member K" in err), err
        assert "(--iters" not in err and "Traceback" not in err, err
    for p in (out / "checkpoints").glob("member_1.*"):      # the fix it gives: retrain member 1 alike
        p.unlink()
    assert main(base + ["-o", str(out), "--resume", "--member", "1"]) == 0
    assert main(base + ["-o", str(out), "--resume"]) == 0


def test_members_disagreeing_on_patience_or_poly_epochs(tmp_path):
    """(see above) --patience, and with --lr-schedule poly --epochs, alike; the states are written as train-seg
    writes them (light, no torch)."""
    from lungai.errors import InputError
    from lungai.seg.settings import check_settings, record_settings

    ckpt = tmp_path / "model" / "checkpoints"
    record_settings(ckpt, {"arch": "unet", "channels": [4, 8], "patch_size": [16, 16, 8], "seed": 0,
                           "lr_schedule": "poly"})
    for k, (epochs, patience) in enumerate([(2, 5), (3, 5), (2, 7)]):
        (ckpt / f"member_{k}.state.json").write_text(json.dumps(
            {"epoch": 1, "done": False, "epochs": epochs, "iters_per_epoch": 4, "patience": patience}),
            encoding="utf-8")
    for epochs, patience in ((2, 5), (3, 7)):
        with pytest.raises(InputError) as exc:
            check_settings(ckpt, {"arch": "unet", "lr_schedule": "poly", "epochs": epochs, "iters_per_epoch": 4,
                                  "patience": patience})
        problem = exc.value.problem
        assert ("--patience: member 0 ran with 5, member 1 with 5, member 2 with 7; no single --resume" in problem
                and "--epochs (--lr-schedule poly): member 0 ran with 2, member 1 with 3, member 2 with 2" in problem
                and "holds members trained with different settings" in problem), problem
        assert exc.value.fix.startswith("retrain the members that differ"), exc.value.fix


def test_resume_with_fewer_members_removes_the_dropped_members_weights(tiny_model, tiny_data, tmp_path):
    """QA: a finished 2-member model resumed with --members 1 listed one member in model.json but kept
    member_1.safetensors: the folder was not what a fresh run makes (and sharing it shipped a stray weight
    file).  The dropped member's weights go; other files are left as they are."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "member_1.safetensors.notes").write_text("mine", encoding="utf-8")
    (model / "member_01.safetensors").write_bytes(b"mine")
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0
    assert json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"] == ["member_0.safetensors"]
    assert not (model / "member_1.safetensors").exists()
    assert (model / "member_1.safetensors.notes").is_file() and (model / "member_01.safetensors").is_file()
    assert (model / "checkpoints" / "member_1.state.json").is_file()      # a later --members 2 still resumes it
    assert _same(_weights(model)[:1], _weights(tiny_model)[:1])
    # QA: the 2-member model's deep-ensemble validation table stayed beside the 1-member model (no ensemble): it
    # was not this model's (tools/recalibrate_seg.py --from-tables fitted an ensemble calibration from it)
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert set(doc["calibration"]) == {"mc-dropout"} and (model / "validation_mc-dropout.csv").is_file()
    assert not (model / "validation_ensemble.csv").exists()
    assert doc["validation_tables"] == ["validation_mc-dropout.csv"]
    # the same when the model is saved and calibrated in place (a run stopped during its calibration, resumed): the
    # model.json of the stopped run lists the tables its calibration was writing (before it writes them)
    shutil.copy2(tiny_model / "validation_ensemble.csv", model / "validation_ensemble.csv")
    stopped = {**doc, "status": "calibrating",
               "validation_tables": ["validation_ensemble.csv", "validation_mc-dropout.csv"]}
    (model / "model.json").write_text(json.dumps(stopped), encoding="utf-8")
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0
    assert "status" not in json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert not (model / "validation_ensemble.csv").exists() and (model / "validation_mc-dropout.csv").is_file()


def test_resume_keeps_a_validation_table_the_replaced_model_never_wrote(tiny_model, tiny_data, tmp_path):
    """QA trainfollow67: a --resume that replaced a finished 1-member model deleted a validation_ensemble.csv the
    user had put in the folder (the 1-member model has no ensemble and never wrote one).  Only the tables the model's
    own record (model.json) says it wrote are removed; a user's file of the same name is kept as it is."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0      # a finished 1-member model
    assert not (model / "validation_ensemble.csv").exists()        # the 2-member model's table (its own) went
    (model / "validation_ensemble.csv").write_text("mine\n", encoding="utf-8")
    (model / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert main(_with(args, members=1, epochs=3) + ["-o", str(model), "--resume"]) == 0      # replaces it
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert set(doc["calibration"]) == {"mc-dropout"}
    assert (model / "validation_ensemble.csv").read_text(encoding="utf-8") == "mine\n"
    assert (model / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    # the same when the model is calibrated in place (a run stopped during its calibration, resumed)
    (model / "model.json").write_text(json.dumps({**doc, "status": "calibrating"}), encoding="utf-8")
    assert main(_with(args, members=1, epochs=3) + ["-o", str(model), "--resume"]) == 0
    assert (model / "validation_ensemble.csv").read_text(encoding="utf-8") == "mine\n"
    assert (model / "validation_mc-dropout.csv").is_file()


def test_resume_keeps_a_member_file_the_replaced_model_never_wrote(tiny_model, tiny_data, tmp_path, capsys):
    """QA train68: a --resume that replaced a finished model (or saved over a stopped run's model in place) deleted
    any member_<K>.safetensors its new model.json did not list - also one no model of the folder ever wrote (a
    user's own file of that name, e.g. a member kept from another run).  Only the member files the replaced
    model.json lists are removed; any other is kept as it is, and the run says so (naming it and what to do)."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0      # a finished 1-member model
    assert not (model / "member_1.safetensors").exists()          # the 2-member model's own member went
    shutil.copy2(tiny_model / "member_1.safetensors", model / "member_3.safetensors")   # the user's file
    mine = (model / "member_3.safetensors").read_bytes()
    capsys.readouterr()
    assert main(_with(args, members=1, epochs=3) + ["-o", str(model), "--resume"]) == 0      # replaces it
    err = capsys.readouterr().err
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert doc["member_files"] == ["member_0.safetensors"]
    assert (model / "member_3.safetensors").read_bytes() == mine
    assert "member_3.safetensors" in err and "kept" in err and "not part of the model" in err, err
    # the same when the model is saved in place (a run stopped during its calibration, resumed)
    (model / "model.json").write_text(json.dumps({**doc, "status": "calibrating"}), encoding="utf-8")
    assert main(_with(args, members=1, epochs=3) + ["-o", str(model), "--resume"]) == 0
    assert (model / "member_3.safetensors").read_bytes() == mine
    assert "member_3.safetensors" in capsys.readouterr().err


def test_resume_refuses_to_write_over_a_member_file_no_model_there_listed(tiny_model, tiny_data, tmp_path, capsys):
    """QA train68: a --resume with more --members than the finished model in its folder wrote its new members over
    any member_<K>.safetensors there - also one that model never wrote (the user's).  Refused before any training,
    naming the file and the fix; the file is left as it is, and the run goes through once it is moved."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0      # a finished 1-member model
    (model / "member_1.safetensors").write_bytes(b"mine")
    before = {p.name: p.stat().st_mtime_ns for p in (model / "checkpoints").iterdir()}
    capsys.readouterr()
    assert main(_with(args, members=2, epochs=3) + ["-o", str(model), "--resume"]) == 2
    err = capsys.readouterr().err
    assert ("holds member_1.safetensors, which its model.json does not list" in err and "would write over it" in err
            and "move member_1.safetensors out of" in err and "nothing was trained" in err), err
    assert (model / "member_1.safetensors").read_bytes() == b"mine"
    assert {p.name: p.stat().st_mtime_ns for p in (model / "checkpoints").iterdir()} == before
    assert json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"] == ["member_0.safetensors"]
    (model / "member_1.safetensors").rename(tmp_path / "member_1.safetensors")
    assert main(_with(args, members=2, epochs=3) + ["-o", str(model), "--resume"]) == 0
    assert json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"] == [
        "member_0.safetensors", "member_1.safetensors"]
    assert (tmp_path / "member_1.safetensors").read_bytes() == b"mine"


def _stop_at_model_json(monkeypatch):
    """Ctrl-C as train-seg is about to write model.json: the members of its save are written, model.json not."""
    import lungai.seg.model_io as model_io

    real = model_io.write_json

    def stopped(path, doc, *a, **k):
        if Path(path).name == "model.json":
            raise KeyboardInterrupt
        return real(path, doc, *a, **k)

    monkeypatch.setattr(model_io, "write_json", stopped)
    return lambda: monkeypatch.setattr(model_io, "write_json", real)


def test_resume_after_a_stop_between_the_members_and_model_json_takes_its_own_members(tiny_model, tiny_data,
                                                                                      tmp_path, capsys, monkeypatch):
    """QA train69: a run saving its model in place (a stopped calibration resumed with more --members) that stopped
    after writing its members but before model.json left a member_<K>.safetensors the old model.json does not list;
    the same command again refused it as "which its model.json does not list (no model saved there wrote it)" - a
    false refusal of train-seg's own file.  The save records the sha256 of the members it is about to write
    (checkpoints/) first: a file matching that record is its own and is saved over (or, no longer listed, removed);
    any other file of such a name is still refused (or kept) as the user's."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0      # a finished 1-member model
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    (model / "model.json").write_text(json.dumps({**doc, "status": "calibrating"}), encoding="utf-8")  # saved in place
    restore = _stop_at_model_json(monkeypatch)
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 130
    restore()
    assert (model / "member_1.safetensors").is_file()             # written, but not listed by model.json
    assert json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"] == ["member_0.safetensors"]
    capsys.readouterr()
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "does not list" not in err and "kept as it is" not in err, err
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert doc["member_files"] == ["member_0.safetensors", "member_1.safetensors"] and "status" not in doc
    assert not list((model / "checkpoints").glob("*.tmp"))
    # stopped again before model.json, then resumed with fewer members: its own member_1 goes, no "kept" note
    (model / "model.json").write_text(json.dumps({**doc, "status": "calibrating"}), encoding="utf-8")
    doc_two = json.loads((model / "model.json").read_text(encoding="utf-8"))
    restore = _stop_at_model_json(monkeypatch)
    assert main(_with(args, members=3) + ["-o", str(model), "--resume"]) == 130
    restore()
    assert (model / "member_2.safetensors").is_file()
    assert json.loads((model / "model.json").read_text(encoding="utf-8")) == doc_two
    capsys.readouterr()
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 0
    err = capsys.readouterr().err
    assert not (model / "member_2.safetensors").exists() and "kept as it is" not in err, err
    assert json.loads((model / "model.json").read_text(encoding="utf-8"))["member_files"] == [
        "member_0.safetensors", "member_1.safetensors"]


def test_a_user_file_where_a_stopped_save_wrote_a_member_is_still_refused(tiny_model, tiny_data, tmp_path, capsys,
                                                                           monkeypatch):
    """The record of a stopped save (QA train69) makes only its own bytes train-seg's: a file the user put in place
    of such a member afterwards (another model's member, other bytes) is refused as before, left as it is, and the
    run goes through once it is moved."""
    import shutil

    images, masks = tiny_data
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    assert main(_with(args, members=1) + ["-o", str(model), "--resume"]) == 0
    doc = json.loads((model / "model.json").read_text(encoding="utf-8"))
    (model / "model.json").write_text(json.dumps({**doc, "status": "calibrating"}), encoding="utf-8")
    restore = _stop_at_model_json(monkeypatch)
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 130
    restore()
    # the user's file (another model's member: other bytes; tiny_model's member_1 is byte-identical to the one this
    # run wrote - the same data, options and seed - so saving over that one would lose nothing)
    shutil.copy2(tiny_model / "member_0.safetensors", model / "member_1.safetensors")
    assert (model / "member_1.safetensors").read_bytes() != (tiny_model / "member_1.safetensors").read_bytes()
    mine = (model / "member_1.safetensors").read_bytes()
    capsys.readouterr()
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds member_1.safetensors, which its model.json does not list" in err, err
    assert (model / "member_1.safetensors").read_bytes() == mine
    (model / "member_1.safetensors").rename(tmp_path / "member_1.safetensors")
    assert main(_with(args, members=2) + ["-o", str(model), "--resume"]) == 0
    assert (tmp_path / "member_1.safetensors").read_bytes() == mine


def _change_mask(path):
    """The mask file's tumour shrunk (eroded): other data under the same case id."""
    m = sitk.ReadImage(str(path))
    arr = ndimage_erode(sitk.GetArrayFromImage(m) > 0, 1).astype(np.uint8)
    changed = sitk.GetImageFromArray(arr)
    changed.CopyInformation(m)
    sitk.WriteImage(changed, str(path))


def test_resume_with_changed_image_or_mask_contents_is_refused(tiny_data, tmp_path, capsys):
    """QA: a --resume on images / masks whose contents changed (same case ids) trained on silently, and a finished
    model's --resume refit its calibration on the other data.  checkpoints/settings.json records each case's
    content (sha256 of its image and mask files): a change is refused naming the cases and the fix; the folders
    may move; checkpoints recorded without fingerprints resume as before, with a note."""
    import shutil

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "run"
    base = _one_epoch(images, masks)
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    settings_json = out / "checkpoints" / "settings.json"
    doc = json.loads(settings_json.read_text(encoding="utf-8"))
    recorded, test_ids = doc["case_sha256"], doc["test_cases"]
    assert sorted(recorded) == [n[:-7] for n in names]
    assert all(len(v["image"]) == len(v["mask"]) == 64 for v in recorded.values())
    trained = next(n for n in names if n[:-7] not in test_ids)
    keep = tmp_path / "original.nii.gz"
    shutil.copy(masks / trained, keep)
    _change_mask(masks / trained)
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 2
    err = capsys.readouterr().err
    assert (f"the image or mask file of 1 training / validation case changed since the first run "
            f"({trained[:-7]}: mask)") in err
    assert "restore the original images / masks" in err and "new -o folder" in err and "Traceback" not in err
    assert "re-saved or converted" in err and 'remove "case_sha256"' in err
    shutil.copy(keep, masks / trained)
    names[1] = trained
    moved = tmp_path / "moved"                                 # the folders may move: contents compared, not paths
    (tmp_path / "data").rename(moved)
    base = _one_epoch(moved / "images", moved / "masks")
    assert main(base + ["-o", str(out), "--resume"]) == 0     # the finished model
    capsys.readouterr()
    model_json = (out / "model.json").read_text(encoding="utf-8")
    _change_mask(moved / "masks" / names[1])
    assert main(base + ["-o", str(out), "--resume"]) == 0     # finished: nothing to do, no calibration refit
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "model.json").read_text(encoding="utf-8") == model_json
    longer = _with(base, epochs=2)                            # a resume that trains on: the changed data refused
    assert main(longer + ["-o", str(out), "--resume"]) == 2
    assert "changed since the first run" in capsys.readouterr().err
    assert (out / "model.json").read_text(encoding="utf-8") == model_json
    doc = json.loads(settings_json.read_text(encoding="utf-8"))   # checkpoints of a lungai without fingerprints
    del doc["case_sha256"]
    settings_json.write_text(json.dumps(doc), encoding="utf-8")
    assert main(longer + ["-o", str(out), "--resume"]) == 0
    assert "records no fingerprint of the images' and masks' contents" in capsys.readouterr().err
    assert "case_sha256" in json.loads(settings_json.read_text(encoding="utf-8"))     # recorded for later resumes


def test_resume_with_a_changed_test_case_goes_on_with_a_note(tiny_data, tmp_path, capsys):
    """QA: a corrected held-out test mask blocked the resume ("would mix the two in one model") though training
    never reads the test cases: a note says that eval-seg --split test reads the files as they are now.  A
    fingerprint recorded in the older form (one hash of image and mask) is noted and recorded anew."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "run"
    base = _one_epoch(images, masks) + ["--test-fraction", "0.2"]
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    settings_json = out / "checkpoints" / "settings.json"
    test_ids = json.loads(settings_json.read_text(encoding="utf-8"))["test_cases"]
    assert test_ids
    _change_mask(masks / f"{test_ids[0]}.nii.gz")
    capsys.readouterr()
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 0
    err = capsys.readouterr().err
    assert (f"note: the image or mask file of 1 held-out test case changed since the first run ({test_ids[0]}: mask)"
            in err and "eval-seg --split test` reads the files as they are now" in err and "would mix" not in err)
    doc = json.loads(settings_json.read_text(encoding="utf-8"))
    doc["case_sha256"] = {c: "0" * 64 for c in doc["case_sha256"]}        # the older form
    settings_json.write_text(json.dumps(doc), encoding="utf-8")
    assert main(base + ["-o", str(out), "--resume", "--member", "0"]) == 0
    assert f"records the fingerprints of {len(names)} cases in an older form" in capsys.readouterr().err
    assert all(isinstance(v, dict) for v in json.loads(settings_json.read_text(encoding="utf-8"))["case_sha256"].values())


def test_resume_refused_on_other_data_hashes_no_file(tiny_data, tmp_path, capsys, monkeypatch):
    """QA: every start hashed every file (no progress shown) even where the case lists already refuse the resume:
    the cheap settings are compared first; the files are hashed under a progress bar only when needed."""
    from lungai.seg import settings as settings_mod

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "run"
    base = _one_epoch(images, masks)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(base + ["-o", str(out), "--member", "0"]) == 0
    assert "fingerprint the training data" in capsys.readouterr().err
    hashed = []
    monkeypatch.setattr(settings_mod, "content_sha256", lambda *p: hashed.append(p) or "0" * 64)
    assert main(base + ["-o", str(out), "--resume", "--member", "0", "--max-cases", str(len(names) - 1)]) == 2
    assert "--max-cases" in capsys.readouterr().err and hashed == []


def test_train_seg_names_tumour_free_masks_and_records_their_count(tiny_data, tmp_path, capsys):
    """QA: train-seg never said how many masks hold no tumour: a note names them, model.json counts them per part."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    m = sitk.ReadImage(str(masks / names[0]))
    sitk.WriteImage(m * 0, str(masks / names[0]))
    out = tmp_path / "run"
    cmd = _one_epoch(images, masks)
    cmd = [a if cmd[i - 1] != "--members" else "1" for i, a in enumerate(cmd)]
    assert main(cmd + ["-o", str(out)]) == 0
    assert (f"note: 1 of the {len(names)} masks holds no tumour (a tumour-free case): {names[0]}"
            in capsys.readouterr().out)
    t = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]
    free = {part: t[f"n_{part}_tumour_free_masks"] for part in ("train", "val", "test")}
    assert sum(free.values()) == 1
    assert free["val" if names[0][:-7] in t["val_cases"] else "train"] == 1


def test_eval_seg_label_names_the_other_labels(tiny_model, tiny_data, tmp_path, capsys):
    """QA: eval-seg --label N did not say that the masks' other labels count as background (a tumour stored as
    label 2 silently counted as tumour-free), as train-seg does."""
    images, masks = _eval_folders(tiny_data, tmp_path, ["P00_0.nii.gz", "P01_0.nii.gz"])
    m = sitk.ReadImage(str(masks / "P01_0.nii.gz"))
    sitk.WriteImage(sitk.Cast(m * 2, sitk.sitkUInt8), str(masks / "P01_0.nii.gz"))   # its tumour as label 2
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "--label", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: --label 1: the masks also hold label 2 (in 1 of the 2 masks); they count as background" in printed


def test_cancelled_training_says_where_its_checkpoints_are(tiny_data, tmp_path, capsys, monkeypatch):
    """QA: Ctrl-C during train-seg printed only "cancelled": with checkpoints saved it names them and --resume."""
    import lungai.seg.ensemble as ensemble

    images, masks = tiny_data
    out = tmp_path / "run"

    def cancelled(*a, **k):
        raise KeyboardInterrupt

    real = ensemble.train_member
    monkeypatch.setattr(ensemble, "train_member", cancelled)
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 130     # before any checkpoint: nothing to resume
    err = capsys.readouterr().err
    assert "lungai train-seg: cancelled" in err and "--resume" not in err
    monkeypatch.setattr(ensemble, "train_member", real)
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--member", "0", "--resume"]) == 0
    monkeypatch.setattr(ensemble, "train_member", cancelled)
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume"]) == 130
    assert (f"lungai train-seg: cancelled; the checkpoints are kept in {out / 'checkpoints'}; the same command again "
            "continues" in capsys.readouterr().err)

    def cancelled_after_member_0(*a, **k):
        real(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(ensemble, "train_member", cancelled_after_member_0)
    fresh = tmp_path / "fresh"
    assert main(_one_epoch(images, masks) + ["-o", str(fresh)]) == 130
    assert (f"cancelled; the checkpoints are kept in {fresh / 'checkpoints'}; the same command with --resume "
            "continues" in capsys.readouterr().err)


def _hold_lock(folder, pid):
    """``folder``'s lungai lock as the process ``pid`` of this computer holds it."""
    from lungai.io.outputs import LOCK, _host, _process_started

    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(f"{pid} {_host()} {_process_started(pid) or 0:.2f} train-seg\n", encoding="utf-8")


def test_train_seg_holds_its_folder_lock_and_members_their_own(tiny_data, tmp_path, capsys, monkeypatch):
    """QA: train-seg took no lock on -o: a second run (e.g. the same command with --resume) trained into the same
    checkpoints at once.  A live folder lock is refused naming the process; a stale one (its process gone) is taken
    over; --member K runs (members in parallel) each hold their member's lock only: they run side by side, a second
    process of the same member is refused, and so is the saving run (no --member) while a member still trains."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK

    images, masks = tiny_data
    run = _one_epoch(images, masks)                                 # (2 members)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out = tmp_path / "run"
        _hold_lock(out, other.pid)                                  # a live run holds -o
        assert main(run + ["-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"in use by another lungai train-seg run (process {other.pid}" in err
        assert not (out / "checkpoints").exists()
        assert main(run + ["-o", str(out), "--member", "0"]) == 2   # a member run too
        assert f"process {other.pid}" in capsys.readouterr().err
        (out / LOCK).unlink()
        _hold_lock(tmp_path / "member1" / ".member_1.lock", other.pid)   # member 1 trains in another process
        (tmp_path / "member1" / ".member_1.lock").rename(out / ".member_1.lock")
        import lungai.seg.ensemble as ensemble

        real, seen = ensemble.train_member, []

        def train_member(*a, **k):      # while member 0 trains: its own lock, not the folder's (members started at
            seen.append(((out / ".member_0.lock" / LOCK).is_file(), (out / LOCK).exists()))   # once all get in)
            return real(*a, **k)

        monkeypatch.setattr(ensemble, "train_member", train_member)
        assert main(run + ["-o", str(out), "--member", "0"]) == 0   # member 0 alongside: allowed
        assert seen == [(True, False)]
        monkeypatch.setattr(ensemble, "train_member", real)
        assert not (out / LOCK).exists() and not (out / ".member_0.lock").exists()   # released
        busy = f"{out}: member 1 is being trained by process {other.pid} on "    # QA: not "use another -o"
        assert main(run + ["-o", str(out), "--member", "1", "--resume"]) == 2
        err = capsys.readouterr().err
        assert busy in err and "How to fix: wait until it ends" in err and "-o" not in err.split(busy)[1]
        assert main(run + ["-o", str(out), "--resume"]) == 2         # the save / calibration: not while 1 trains
        assert busy in capsys.readouterr().err
        assert main(run + ["-o", str(out)]) == 2      # QA: without --resume, not "checkpoints of an interrupted run"
        err = capsys.readouterr().err
        assert busy in err and "interrupted" not in err
        assert not (out / "model.json").exists()
    finally:
        other.kill()
        other.wait()
    assert main(run + ["-o", str(out), "--resume"]) == 0             # stale member lock: over; trains 1, saves
    assert not (out / ".member_1.lock").exists()                    # QA: a killed member's lock folder: removed
    _hold_lock(out, other.pid)                                      # a stale folder lock: taken over
    assert main(run + ["-o", str(out), "--resume"]) == 0
    assert not (out / LOCK).exists() and json.loads((out / "model.json").read_text(encoding="utf-8"))["calibration"]


def test_train_seg_still_running_is_not_called_interrupted(tiny_data, tmp_path, capsys):
    """QA: the same command started again while a train-seg run still trained into -o said "holds checkpoints of an
    interrupted run - add --resume", and --resume was then refused: the running run is named at once, with or
    without --resume, and model.json / checkpoints are not read before."""
    import subprocess
    import sys

    images, masks = tiny_data
    run = _one_epoch(images, masks)
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _hold_lock(out, other.pid)
        for extra in ([], ["--resume"], ["--member", "0"]):
            assert main(run + ["-o", str(out)] + extra) == 2
            err = capsys.readouterr().err
            assert f"in use by another lungai train-seg run (process {other.pid}" in err, extra
            assert "interrupted" not in err
    finally:
        other.kill()
        other.wait()


def test_summary_counts_one_case_in_the_singular():
    from lungai.seg.evaluate import summary_text

    s = {"n_cases": 1, "mean_dice": 0.5, "std_dice": 0.0, "median_dice": 0.5, "pearson_r_confidence_dice": None,
         "n_needs_review": 0}
    assert summary_text(s).startswith("1 case with a tumour: ")


def _keys(value):
    """Every key of a result.json-like value, nested dicts and lists included, with its dict."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, value
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _assert_one_spelling(info):
    """QA: result.json mixed tumor_volume_ml / in_tumor_mask with seed_to_tumour_mm, tumour_ml ...  lungai's names
    spell "tumour"; the two keys spelled "tumor" before are written under the new name and, for one release, the old
    one as a documented alias with the same value (lungai.seg.config.RESULT_KEY_ALIASES, docs/segmentation.md)."""
    import json

    from lungai.seg.config import RESULT_KEY_ALIASES, result_value

    info = json.loads(json.dumps(info))                     # as result.json holds it
    seen = set()
    for key, where in _keys(info):
        if "tumor" in key:
            assert key in RESULT_KEY_ALIASES.values(), f"{key}: spelled 'tumor' and not a documented alias"
            new = next(k for k, old in RESULT_KEY_ALIASES.items() if old == key)
            assert "tumor" not in new and where[new] == where[key], (new, key)
            seen.add(key)
    assert seen == set(RESULT_KEY_ALIASES.values())         # both aliases are in this result (candidates listed)
    old_file = {"tumor_volume_ml": 2.5}                     # a result.json of an earlier lungai
    assert result_value(old_file, "tumour_volume_ml") == 2.5
    assert result_value(info, "tumour_volume_ml") == info["tumour_volume_ml"]


def test_a_changed_member_file_is_refused(tiny_model, tmp_path):
    """QA D3: a bit flipped in a member's weights loaded silently; model.json now records each member file's sha256
    and loading checks it (a model.json without the hashes - older models - still loads)."""
    import shutil

    from lungai.errors import InputError
    from lungai.seg.model_io import load_model

    doc = json.loads((tiny_model / "model.json").read_text(encoding="utf-8"))
    assert set(doc["member_sha256"]) == set(doc["member_files"])
    copy = tmp_path / "m"
    shutil.copytree(tiny_model, copy)
    member = copy / doc["member_files"][0]
    data = bytearray(member.read_bytes())
    data[-3] ^= 0x01                                          # one bit of the last weights (still finite)
    member.write_bytes(bytes(data))
    with pytest.raises(InputError, match="member_0.safetensors.*sha256") as e:
        load_model(copy)
    assert "copy the model folder again" in e.value.fix
    old = dict(doc)
    old.pop("member_sha256")
    (copy / "model.json").write_text(json.dumps(old), encoding="utf-8")
    load_model(copy)                                          # no hashes recorded: loads as before


def test_every_shipped_model_records_and_checks_its_member_files(tmp_path):
    """The shipped models' model.json record their members' sha256 too (the check is no help if the product's own
    weights are not covered): a shipped member with one bit flipped is refused."""
    import shutil

    from lungai.errors import InputError
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import models_root, shipped_models
    from lungai.seg.settings import content_sha256

    checked = 0
    for name in shipped_models():
        doc = json.loads((models_root() / name / "model.json").read_text(encoding="utf-8"))
        if "member_files" not in doc:            # a choice / routed model lists other models, no weights of its own
            continue
        assert doc.get("member_sha256") == {f: content_sha256(models_root() / name / f) for f in doc["member_files"]}
        checked += 1
    assert checked >= 3
    copy = tmp_path / "shipped"
    shutil.copytree(models_root() / "lungai-seg-unet-ensemble", copy)
    member = copy / "member_1.safetensors"
    data = bytearray(member.read_bytes())
    data[-5] ^= 0x01
    member.write_bytes(bytes(data))
    with pytest.raises(InputError, match="member_1.safetensors"):
        load_model(copy)


def test_resume_of_a_finished_model_changes_nothing(tiny_data, tiny_model, tmp_path, capsys):
    """QA D5: `train-seg --resume` on a finished model silently saved and calibrated it again (a cancel then left
    it "calibrating"): now it says the model is already trained to its epochs and leaves the folder as it is."""
    import shutil

    images, masks = tiny_data
    out = tmp_path / "done"
    shutil.copytree(tiny_model, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    capsys.readouterr()
    assert main(args + ["-o", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "already trained to 2 epochs" in said and "nothing to do" in said and "--epochs" in said, said
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps
    fewer = [a if i == 0 or args[i - 1] != "--epochs" else "1" for i, a in enumerate(args)]
    assert main(fewer + ["-o", str(out), "--resume"]) == 2         # fewer epochs than run: refused as before
    assert "member 0 has run 2 epochs" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_eval_seg_leaves_out_the_training_patients(tiny_model, tiny_data, tmp_path, capsys):
    """QA D2: model.json did not record the training patients and eval-seg scored training cases silently.  Now
    model.json holds their salted hashes (no plain IDs), eval-seg leaves the training / validation patients' cases
    out with a note (--include-training-patients keeps them, flagged), and a model without the record says the
    overlap cannot be checked."""
    doc = json.loads((tiny_model / "model.json").read_text(encoding="utf-8"))
    assert doc["training_patients"]["n"] == 2 and doc["validation_patients"]["n"] == 1
    assert all(len(h) == 64 for h in doc["training_patients"]["sha256"])          # hashes, not IDs
    images, masks = tiny_data
    new = tmp_path / "new"
    (new / "images").mkdir(parents=True)
    (new / "masks").mkdir()
    for d, src in (("images", images), ("masks", masks)):      # 2 seen patients' cases, 1 unseen patient's case
        for name, as_name in (("P00_0.nii.gz", "P00_0.nii.gz"), ("P01_0.nii.gz", "P01_0.nii.gz"),
                              ("P02_0.nii.gz", "Q09_0.nii.gz")):
            sitk.WriteImage(sitk.ReadImage(str(src / name)), str(new / d / as_name))
    out = tmp_path / "per_case.csv"
    cmd = ["eval-seg", "--model", str(tiny_model), "--images", str(new / "images"), "--masks", str(new / "masks"),
           "-o", str(out)]
    assert main(cmd) == 0
    said = capsys.readouterr().out
    assert "2 of the 3 cases are of patients the model was trained or validated on" in said, said
    assert "--include-training-patients" in said
    df = pd.read_csv(out)
    assert list(df["case"]) == ["Q09_0"] and not df["meta_seen_in_training"].any()
    assert main(cmd + ["--include-training-patients"]) == 0
    df = pd.read_csv(out).set_index("case")
    assert len(df) == 3 and df.loc[["P00_0", "P01_0"], "meta_seen_in_training"].all()
    assert not df.loc["Q09_0", "meta_seen_in_training"]
    assert "NOT" in capsys.readouterr().out
    # every case seen: refused, naming the option
    only_seen = cmd[:4] + [str(images), "--masks", str(masks), "-o", str(out)]
    assert main(only_seen) == 2 and "--include-training-patients" in capsys.readouterr().err
    # a model without the record (the shipped ones): said, the cases kept
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_model, old)
    legacy = {k: v for k, v in doc.items() if k not in ("training_patients", "validation_patients")}
    (old / "model.json").write_text(json.dumps(legacy), encoding="utf-8")
    assert main(["eval-seg", "--model", str(old)] + cmd[3:]) == 0
    assert "cannot be checked" in capsys.readouterr().out and len(pd.read_csv(out)) == 3
    # a model choice of the two (QA: a choice folder records no patients, so its members' records were not read):
    # a case any member saw is left out; the member without a record is named, the overlap "cannot be checked"
    shutil.copytree(tiny_model, tmp_path / "tiny")
    for name, members in (("choice", ["tiny", "old"]), ("choice2", ["old", "tiny"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", "models": members}),
                                                    encoding="utf-8")
        assert main(["eval-seg", "--model", str(tmp_path / name)] + cmd[3:]) == 0
        said = capsys.readouterr().out
        assert "2 of the 3 cases are of patients the model was trained or validated on" in said, said
        assert "cannot be checked" in said and "model 'old' of this model choice records no training" in said
        assert list(pd.read_csv(out)["case"]) == ["Q09_0"]


def test_training_on_the_repository_test_cases_is_warned(tmp_path):
    from lungai.seg.dataset import Case, repository_test_cases_note

    cases = [Case("lung1_image", "lung1", image_path=tmp_path / "lung1_image.nrrd"),
             Case("P01_0", "P01", image_path=tmp_path / "P01_0.nii.gz")]
    note = repository_test_cases_note(cases)
    assert note and "lung1" in note and "test" in note
    assert repository_test_cases_note(cases[1:]) is None


def test_a_validation_split_without_a_tumour_is_refused(tiny_data, tmp_path, capsys):
    """QA: one empty mask drawn alone into validation: every epoch scored validation Dice 0 (a model finding nothing
    would score 1), early stopping kept epoch 0's weights and nothing was said.  A validation split whose masks are
    all empty is refused before any training, with the fix; the same data with a tumour there trains, and says that
    its confidence is not calibrated (2 validation cases)."""
    from lungai.seg.confidence import MIN_CALIBRATION_CASES
    from lungai.seg.dataset import pair_files, split_patients

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    val = sorted(c.case_id for c in split_patients(pair_files(images, masks), 0.34, 0)[1])
    kept = {v: (masks / f"{v}.nii.gz").read_bytes() for v in val}
    for v in val:
        sitk.WriteImage(sitk.ReadImage(str(masks / f"{v}.nii.gz")) * 0, str(masks / f"{v}.nii.gz"))
    out = tmp_path / "run"
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"the validation split holds no tumour: its 2 cases ({', '.join(val)}) all have empty masks" in err
    assert "another --seed or a larger --val-fraction" in err and "nothing was trained" in err
    assert not out.exists()
    for v in val:                                           # one of them empty: a tumour to validate on
        (masks / f"{v}.nii.gz").write_bytes(kept[v])
        break
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (f"warning: the ensemble confidence is not calibrated (not calibrated: only 1 validation case, at "
            f"least {MIN_CALIBRATION_CASES} are needed") in printed and "lungai segment marks its results" in printed
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume", "--epochs", "2"]) == 0
    assert "member 0: resumed from its checkpoint after epoch 1 of 2" in capsys.readouterr().out


def test_every_unusable_image_is_named_the_test_split_too(tiny_data, tmp_path, capsys):
    """QA: a test-split CT in other units (HU + 1024) was trained past and failed only in `eval-seg --split test`;
    and train-seg named only the first unusable image.  The test split's CTs are read with the CT checks too, and
    every unusable case is named in one error (one: its own error); nothing is trained."""
    from lungai.seg.dataset import pair_files, split_patients

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    cmd = _one_epoch(images, masks) + ["--test-fraction", "0.3"]
    train, _, test = split_patients(pair_files(images, masks), 0.34, 0, 0.3)

    def shift(case_id):
        path = images / f"{case_id}.nii.gz"
        sitk.WriteImage(sitk.ReadImage(str(path)) + 1024, str(path))

    shift(test[0].case_id)
    assert main(cmd + ["-o", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert "HU" in err and test[0].case_id in err and not (tmp_path / "one").exists()
    shift(train[0].case_id)
    assert main(cmd + ["-o", str(tmp_path / "two")]) == 2
    err = capsys.readouterr().err
    assert f"2 of the {len(names)} cases cannot be used - {train[0].case_id}: " in err, err
    assert f"; {test[0].case_id} (test split): " in err and "(nothing was trained)" in err
    assert not (tmp_path / "two").exists()


def test_a_patients_csv_of_file_names_is_named(tiny_data, tmp_path):
    """QA: a --patients CSV whose case column held file names (P00_0.nii.gz) got "6 cases are not in ..." without
    saying why."""
    from lungai.errors import InputError
    from lungai.seg.dataset import pair_files

    images, masks = tiny_data
    names = sorted(p.name for p in images.iterdir())
    csv = tmp_path / "patients.csv"
    csv.write_text("case,patient\n" + "".join(f"{n},{n[:3]}\n" for n in names), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        pair_files(images, masks, patients_csv=csv)
    assert (f"its case column holds file names (e.g. {names[0]}): write the case as the file name without its "
            f"extension ({names[0][:-7]})") in exc.value.problem


def test_eval_seg_names_cases_that_hold_the_same_ct(tiny_model, tiny_data, tmp_path, capsys):
    """QA: one crop under two names (crop1, crop1_again) was evaluated twice and counted twice in every mean
    without a word.  The copies are named in a note before any case runs (same voxels, whatever the file format);
    distinct cases say nothing."""
    images, masks = _eval_folders(tiny_data, tmp_path, ["P00_0.nii.gz", "P01_0.nii.gz"])
    out = tmp_path / "per_case.csv"
    cmd = ["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
           "-o", str(out)]
    assert main(cmd) == 0
    assert "same CT" not in capsys.readouterr().out
    for d in (images, masks):          # the copy in another format
        sitk.WriteImage(sitk.ReadImage(str(d / "P00_0.nii.gz")), str(d / "P00_0_again.nrrd"))
    assert main(cmd) == 0
    printed = capsys.readouterr().out
    assert "note: 2 cases hold the same CT as another case (identical voxels: P00_0 = P00_0_again)" in printed
    assert len(pd.read_csv(out)) == 3


def test_test_split_of_moved_training_data(tiny_data, tmp_path, capsys):
    """QA: a model trained with --test-fraction, its training data then moved (another disk, the model copied to
    another computer: model.json records absolute folders) - `eval-seg --split test` said "--images folder ...
    does not exist; give a folder", while --images with --split test was refused ("leave out --images /
    --masks"): no way to evaluate the test split.  Now the recorded folder is named, and --images / --masks
    with --split test say where the training data lies now (the recorded test cases are read from there)."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    out = tmp_path / "run"
    assert main(_one_epoch(images, masks) + ["--test-fraction", "0.3", "-o", str(out)]) == 0
    test = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]["test_cases"]
    capsys.readouterr()
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    report = tmp_path / "test.csv"
    assert main(["eval-seg", "--model", str(out), "--split", "test", "-o", str(report)]) == 2
    err = capsys.readouterr().err
    assert str(images.resolve()) in err and "model.json" in err and "--split test --images" in err
    assert not report.exists()
    assert main(["eval-seg", "--model", str(out), "--split", "test", "--images", str(moved / "images"),
                 "-o", str(report)]) == 2                                  # one folder alone: both are needed
    assert "--masks" in capsys.readouterr().err and not report.exists()
    assert main(["eval-seg", "--model", str(out), "--split", "test", "--images", str(moved / "images"),
                 "--masks", str(moved / "masks"), "-o", str(report)]) == 0
    df = pd.read_csv(report)
    assert sorted(set(df["case"])) == sorted(test)
    (moved / "masks" / f"{test[0]}.nii.gz").unlink()                        # a test case missing there: named
    assert main(["eval-seg", "--model", str(out), "--split", "test", "--images", str(moved / "images"),
                 "--masks", str(moved / "masks"), "-o", str(tmp_path / "t2.csv")]) == 2
    assert test[0] in capsys.readouterr().err


def test_resume_with_nothing_to_resume_is_refused(tiny_data, tmp_path, capsys):
    """QA: `train-seg ... --resume -o DIR` where DIR holds no run (a typo in -o; step 3 of training on an
    accelerator with MODEL/checkpoints not copied back) trained every member anew from the first epoch, without
    a word - hours of CPU training instead of the resume asked for.  Now refused before any work, naming the
    folder and the fixes; the same command without --resume trains anew."""
    images, masks = tiny_data
    cmd = _one_epoch(images, masks)
    typo = tmp_path / "my_modle"
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (typo, empty):
        assert main(cmd + ["-o", str(out), "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"{out} holds no train-seg run to resume" in err and "copy" in err and "leave out --resume" in err
        assert "load training data" not in err
    assert not typo.exists() and list(empty.iterdir()) == []
    assert main(cmd + ["-o", str(typo)]) == 0


def test_eval_seg_says_when_the_passes_given_were_not_used(tiny_model, tiny_data, tmp_path, capsys):
    """QA: eval-seg --mc-passes 2 on a model of several members ran the ensemble: its CSV rows said mc_passes 0 and
    its report recorded 2, without a word.  It says that the passes were not used (and how to use them)."""
    images, masks = tiny_data
    out = tmp_path / "per_case.csv"
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "--max-cases", "1", "--mc-passes", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "--mc-passes 2 not used" in printed and "--method mc-dropout" in printed
    assert (pd.read_csv(out)["mc_passes"] == 0).all()
    assert main(["eval-seg", "--model", str(tiny_model), *SEEN, "--images", str(images), "--masks", str(masks),
                 "--max-cases", "1", "-o", str(tmp_path / "plain.csv")]) == 0
    assert "not used" not in capsys.readouterr().out


def test_eval_seg_patients_csv_finds_a_trained_patient_under_another_file_name(tiny_data, tmp_path, capsys):
    """QA (LIDC crops renamed scan001..scan030, patients in a --patients CSV): a model trained on scan011 / scan012 of
    LIDC-IDRI-0011 evaluated scan013 of that patient as unseen, without a word - eval-seg had no --patients, so a
    case's patient was the text before its first '_' (here the whole name) and only a case of the same name was
    found.  Now eval-seg takes --patients (train-seg's CSV) and leaves such cases out; without it, a model trained
    with one gets a note saying the check then goes by case name only."""
    names = sorted(p.name for p in tiny_data[0].iterdir())            # P00_0 ... P02_1: 3 patients, 2 crops each
    scans = {n: f"scan{i:02d}.nii.gz" for i, n in enumerate(names)}
    csv = tmp_path / "patients.csv"
    csv.write_text("case,patient\n" + "".join(f"{s[:-7]},{n.split('_')[0]}\n" for n, s in scans.items()),
                   encoding="utf-8")
    train_i, train_m = _eval_folders(tiny_data, tmp_path / "train", names[:-1])
    eval_i, eval_m = _eval_folders(tiny_data, tmp_path / "new", names[-1:])       # P02_1, a further crop of P02
    for folder, n in ((train_i, names[:-1]), (train_m, names[:-1]), (eval_i, names[-1:]), (eval_m, names[-1:])):
        for name in n:
            (folder / name).rename(folder / scans[name])
    model = tmp_path / "model"
    assert main(_one_epoch(train_i, train_m) + ["--patients", str(csv), "-o", str(model)]) == 0
    capsys.readouterr()
    cmd = ["eval-seg", "--model", str(model), "--images", str(eval_i), "--masks", str(eval_m)]
    # the patient from the CSV: scan05 is P02's, trained or validated on - refused (every case seen), named
    assert main(cmd + ["--patients", str(csv), "-o", str(tmp_path / "a.csv")]) == 2
    assert "the 1 case is of a patient the model was trained or validated on (scan05 (" in capsys.readouterr().err
    out = tmp_path / "b.csv"
    assert main(cmd + ["--patients", str(csv), "--include-training-patients", "-o", str(out)]) == 0
    assert pd.read_csv(out)["meta_seen_in_training"].tolist() == [True]
    assert json.loads(out.with_suffix(".report.json").read_text(encoding="utf-8"))["run"]["patients"] == str(csv.resolve())
    capsys.readouterr()
    # without it: evaluated (the names cannot tell), but said
    assert main(cmd + ["-o", str(tmp_path / "c.csv")]) == 0
    said = capsys.readouterr().out
    assert "the model was trained with --patients patients.csv" in said and "give --patients CSV" in said
    # --split test: --patients says where the recorded CSV lies now; a model trained without one refuses it
    assert main(["eval-seg", "--model", str(model), "--split", "test", "--patients", str(csv),
                 "-o", str(tmp_path / "d.csv")]) == 2
    assert "this model has no test split" in capsys.readouterr().err
    named = tmp_path / "by_name"
    assert main(_one_epoch(train_i, train_m) + ["--test-fraction", "0.34", "-o", str(named)]) == 0
    assert main(["eval-seg", "--model", str(named), "--split", "test", "--patients", str(csv),
                 "-o", str(tmp_path / "e.csv")]) == 2
    assert "this model was trained without a --patients CSV" in capsys.readouterr().err


def test_eval_seg_test_split_of_a_model_trained_with_patients_csv_moved(tiny_data, tmp_path, capsys):
    """QA: a model trained with --patients and --test-fraction, its data and CSV moved (another disk, the model copied
    to another computer): `eval-seg --split test --images DIR --masks DIR` failed with "--patients /old/path is not a
    readable CSV" and the fix "write a comma-separated CSV" (eval-seg took no --patients to say where it lies now).
    Now the gone CSV is named with that fix, and --patients with --split test reads it where it lies."""
    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "data", names)
    csv = tmp_path / "data" / "patients.csv"
    csv.write_text("case,patient\n" + "".join(f"{n[:-7]},X{n.split('_')[0]}\n" for n in names), encoding="utf-8")
    model = tmp_path / "model"
    assert main(_one_epoch(images, masks) + ["--patients", str(csv), "--test-fraction", "0.34", "-o", str(model)]) == 0
    test_cases = json.loads((model / "model.json").read_text(encoding="utf-8"))["training"]["test_cases"]
    (tmp_path / "data").rename(tmp_path / "moved")
    images, masks, moved = (tmp_path / "moved" / "images", tmp_path / "moved" / "masks",
                            tmp_path / "moved" / "patients.csv")
    capsys.readouterr()
    cmd = ["eval-seg", "--model", str(model), "--split", "test", "--images", str(images), "--masks", str(masks)]
    assert main(cmd + ["-o", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert f"the --patients CSV model.json records is gone ({csv})" in err and "--split test --patients FILE" in err
    out = tmp_path / "b.csv"
    assert main(cmd + ["--patients", str(moved), "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert sorted(set(df["case"])) == sorted(test_cases) and set(df["patient"]) == {f"X{c.split('_')[0]}"
                                                                                     for c in test_cases}


def test_model_json_records_the_command_it_was_trained_with(tiny_data, tmp_path, monkeypatch):
    """QA: model.json's training.command was built from sys.argv, not from the argv given to lungai.cli.main: a
    train-seg run from Python (a notebook, a script: main([...])) recorded the host process's command line (here
    pytest's) as the command that trained the model.  Words are quoted where needed: a folder with a space
    ('My data/images', as on Windows) was recorded unquoted, a command that does not run as written."""
    import shlex
    import sys

    names = sorted(p.name for p in tiny_data[0].iterdir())
    images, masks = _eval_folders(tiny_data, tmp_path / "My data", names)
    monkeypatch.setattr(sys, "argv", ["host.py", "--some-host-option", "x"])
    out = tmp_path / "model"
    cmd = _one_epoch(images, masks) + ["-o", str(out), "--seed", "3", "--workers", "0"]
    assert main(cmd) == 0
    recorded = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]["command"]
    assert "--some-host-option" not in recorded
    words = shlex.split(recorded)
    assert words[0] == "lungai" and words[1:] == cmd[:-2]            # as given, without the run-only --workers
    assert words[words.index("--images") + 1] == str(images)         # the folder with a space: one word


def test_a_run_cancelled_before_its_first_epoch_starts_anew_with_other_options(tiny_data, tmp_path, capsys,
                                                                                monkeypatch):
    """QA: Ctrl-C before the first epoch ended left OUT/checkpoints/settings.json alone (no member trained); the
    same -o with other options was then refused both ways - "holds checkpoints of an interrupted run: add --resume",
    and with --resume "was trained with other settings ... --channels 4,8 then" - although nothing had been trained.
    Now the cancel says so, and the next run (with or without --resume, other options too) starts anew; a run
    that has trained an epoch is still refused other options."""
    import lungai.seg.ensemble as ensemble

    images, masks = tiny_data
    out = tmp_path / "run"

    def cancelled(*a, **k):
        raise KeyboardInterrupt

    real = ensemble.train_member
    monkeypatch.setattr(ensemble, "train_member", cancelled)
    assert main(_one_epoch(images, masks) + ["-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "stopped before its first epoch ended: nothing was trained" in err and "--resume" not in err
    assert (out / "checkpoints" / "settings.json").is_file()
    monkeypatch.setattr(ensemble, "train_member", real)
    other = [a if a != "4,8,16" else "4,8" for a in _one_epoch(images, masks)]       # --channels 4,8
    assert main(other + ["-o", str(out), "--resume"]) == 0, capsys.readouterr().err
    note = capsys.readouterr().out
    assert "stopped before its first epoch ended (nothing trained): starting anew with these options" in note
    assert json.loads((out / "checkpoints" / "settings.json").read_text(encoding="utf-8"))["channels"] == [4, 8]
    assert json.loads((out / "model.json").read_text(encoding="utf-8"))["config"]["channels"] == [4, 8]
    # a run that trained: other options still refused, nothing changed
    assert main(_one_epoch(images, masks) + ["-o", str(out), "--resume"]) == 2
    assert "--channels 4,8 then, 4,8,16 now" in capsys.readouterr().err
    # without --resume, other options, after a cancel before the first epoch: started anew too
    again = tmp_path / "again"
    monkeypatch.setattr(ensemble, "train_member", cancelled)
    assert main(_one_epoch(images, masks) + ["-o", str(again)]) == 130
    monkeypatch.setattr(ensemble, "train_member", real)
    assert main(other + ["-o", str(again)]) == 0, capsys.readouterr().err
    assert json.loads((again / "model.json").read_text(encoding="utf-8"))["config"]["channels"] == [4, 8]


def test_untrained_run_is_only_a_folder_without_trained_members(tmp_path):
    from lungai.seg.settings import untrained_run

    ckpt = tmp_path / "run" / "checkpoints"
    assert not untrained_run(ckpt)                                   # nothing there
    ckpt.mkdir(parents=True)
    (ckpt / "settings.json").write_text('{"arch": "unet", "channels": [4, 8], "patch_size": [16, 16, 8], "seed": 0}',
                                        encoding="utf-8")
    assert untrained_run(ckpt)
    (tmp_path / "run" / ".member_1.lock").mkdir()                    # a --member process (live or killed) there
    assert not untrained_run(ckpt)
    (tmp_path / "run" / ".member_1.lock").rmdir()
    (ckpt / "member_0.state.json").write_text('{"epoch": 1}', encoding="utf-8")
    assert not untrained_run(ckpt)
    (ckpt / "member_0.state.json").unlink()
    (tmp_path / "run" / "model.json").write_text("{}", encoding="utf-8")
    assert not untrained_run(ckpt)


def test_resume_of_a_trained_member_says_nothing_was_trained(tiny_data, tiny_model, tmp_path, capsys):
    """QA: `train-seg --resume --member 0` on a finished model read every case, trained nothing and said "member 0
    trained into .../checkpoints" (the files unchanged).  Now it says the member is already trained and that
    nothing was trained, and leaves every file as it is."""
    import shutil

    images, masks = tiny_data
    out = tmp_path / "done"
    shutil.copytree(tiny_model, out)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI]
    capsys.readouterr()
    assert main(args + ["-o", str(out), "--resume", "--member", "0"]) == 0
    said = capsys.readouterr().out
    assert "member 0" in said and "already trained, to 2 epochs" in said and "nothing was trained" in said, said
    assert "trained into" not in said, said
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    assert "--seed" not in args
    assert main(args + ["--seed", "7", "-o", str(out), "--resume", "--member", "0"]) == 2    # other options: refused
    assert "other settings" in capsys.readouterr().err


def test_finished_model_note_says_one_epoch_in_the_singular(tmp_path):
    """QA: "already trained to 1 epochs": the counts of train-seg's and eval-seg's messages in their number."""
    from types import SimpleNamespace

    from lungai.cli.seg import finished_model_note
    from lungai.seg.confidence import fit_calibration

    (tmp_path / "model.json").write_text(json.dumps({"members": [{"early_stopped": False}],
                                                     "training": {"epochs": 1}}), encoding="utf-8")
    args = SimpleNamespace(resume=True, epochs=1, members=1, mc_passes=8)
    note = finished_model_note(tmp_path, args)
    assert "already trained to 1 epoch (" in note, note
    how = fit_calibration(np.zeros((1, 1)), np.array([0.5]), features=["agreement"], signs=[1])["how"]
    assert "only 1 validation case," in how, how


def test_seed_in_bone_or_far_from_the_lungs_is_a_review_reason_and_a_note(tiny_model, small_phantom):
    """A seed in bone (the phantom's spine / ribs, ~400 HU) or in the abdomen far below the lungs: a note and a review
    reason each, saying to move the seed; the seed on the tumour gets neither."""
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model
    from lungai.seg.preprocess import DENSE_REASON, FAR_REASON, median_hu_near, reason_in_mode
    from lungai.synthetic import labels

    from test_seg_preprocess import _chest_with_abdomen

    model = load_model(tiny_model)
    ct = small_phantom.ct
    lab = sitk.GetArrayViewFromImage(small_phantom.labels)
    bone = [ct.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
            for k, j, i in np.argwhere(ndimage_erode(lab == labels.BONE, 1))]
    seed = next(p for p in bone if median_hu_near(ct, p) > 350)
    DENSE_REASON, FAR_REASON = (reason_in_mode(r, "seed") for r in (DENSE_REASON, FAR_REASON))   # "the seed point"
    info = segment_tumour(ct, model, seed_lps=seed, grow=False, mc_passes=2).info
    assert DENSE_REASON in info["review_reasons"] and info["needs_review"], info["review_reasons"]
    assert any(n.startswith("the seed lies in bone, a calcification or contrast") for n in info["notes"])
    assert any(a.startswith("move the seed onto the tumour's soft tissue") for a in info["review_actions"])
    far = _chest_with_abdomen(small_phantom)
    info = segment_tumour(far, model, seed_lps=far.TransformIndexToPhysicalPoint((48, 48, 10)), grow=False,
                          mc_passes=2).info
    assert FAR_REASON in info["review_reasons"] and DENSE_REASON not in info["review_reasons"]
    assert any(" mm from the nearest lung" in n for n in info["notes"])
    centre = small_phantom.meta["tumour"]["centre_mm"]
    info = segment_tumour(ct, model, seed_lps=centre, grow=False, mc_passes=2).info
    assert DENSE_REASON not in info["review_reasons"] and FAR_REASON not in info["review_reasons"]


def test_swapped_images_and_masks_folders_are_named_once(tiny_model, tiny_data, tmp_path, capsys):
    """QA: train-seg / eval-seg given the folders the other way round (--images masks/ --masks images/) said, for
    every file, "holds values -1024 .. 544 ... (is it an image rather than a label map?)" (train-seg) or "does not
    look like a CT in Hounsfield units" (eval-seg), never that the two folders look swapped: said once, with the
    command's words the other way round, nothing trained or evaluated."""
    images, masks = tiny_data
    fix = f"--images {images} --masks {masks}"
    out = tmp_path / "run"
    assert main(["train-seg", "--images", str(masks), "--masks", str(images), "--arch", "unet", *TINY_CLI,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("--images and --masks look swapped") == 1 and fix in err and "nothing was trained" in err
    assert "rather than a label map" not in err and not out.exists()
    csv = tmp_path / "e.csv"
    assert main(["eval-seg", "--images", str(masks), "--masks", str(images), "--model", str(tiny_model),
                 "-o", str(csv), *SEEN]) == 2
    err = capsys.readouterr().err
    assert err.count("--images and --masks look swapped") == 1 and fix in err and "nothing was evaluated" in err
    assert "does not look like a CT" not in err and not csv.exists()
    # CTs stored unsigned (0 .. 4095, no rescale): read as masks they hold many labels, not values out of range
    shifted = tmp_path / "ct_u16"
    shifted.mkdir()
    for p in sorted(images.iterdir()):
        sitk.WriteImage(sitk.Cast(sitk.ReadImage(str(p)) + 1024, sitk.sitkUInt16), str(shifted / p.name))
    assert main(["train-seg", "--images", str(masks), "--masks", str(shifted), "--arch", "unet", *TINY_CLI,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "look swapped" in err and f"--images {shifted} --masks {masks}" in err and not out.exists()
    # a real problem of the masks alone is not called a swap (the images are CTs)
    assert main(["train-seg", "--images", str(images), "--masks", str(shifted), "--arch", "unet", *TINY_CLI,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "look swapped" not in err and "several labels" in err



_DYNAMO_SAID = """
import sys


class Said:
    def find_spec(self, name, path, target=None):
        if name == "torch._dynamo":
            sys.meta_path.remove(self)
            sys.stderr.write("IMPORTING torch._dynamo\\n")
            sys.stderr.flush()
        return None


sys.meta_path.insert(0, Said())
from lungai.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_train_seg_loads_torchs_compiler_stack_on_its_loading_bar(tiny_data, tmp_path):
    """QA train69: torch's optimiser (``torch.optim.Adam``, its first parameter group) and
    ``torch.use_deterministic_algorithms`` import torch._dynamo / the torch._inductor config (sympy: ~800 modules,
    5.5-9.3 s of a shared machine) after "train-seg: loading torch: 2/2 loaded" - train-seg on 8 LIDC crops + LUNG1-002
    showed nothing for 7.7 s before "split by patient".  It is loaded as a step of that bar now, said: the last
    progress line before the import is the loading bar's.  A fresh interpreter (this session may hold it already)."""
    import subprocess
    import sys

    images, masks = tiny_data
    args = ["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *_with(TINY_CLI, members=1),
            "-o", str(tmp_path / "model")]
    env = {"LUNGAI_PROGRESS": "lines", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _DYNAMO_SAID, *args], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = out.stderr.splitlines()
    assert "IMPORTING torch._dynamo" in lines, out.stderr[-3000:]
    before = [line for line in lines[:lines.index("IMPORTING torch._dynamo")] if line.startswith("LUNGAI_PROGRESS ")]
    assert before and "train-seg: loading torch:" in before[-1], before[-3:]
    assert "torch's optimiser" in before[-1], before[-1]


class _Stop(Exception):
    pass


def _slow_imports(monkeypatch, names, seconds):
    """Each import of a module of ``names`` made by an ``import`` statement takes ``seconds`` more (a loaded machine's
    torch / MONAI), its end written to stderr as ``IMPORTED <name>``; the progress timer's tick made 0.2 s."""
    import builtins
    import sys
    import time

    import lungai.progress

    real = builtins.__import__

    def slow(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in names:
            time.sleep(seconds)
            module = real(name, globals, locals, fromlist, level)
            sys.stderr.write(f"IMPORTED {name}\n")
            return module
        return real(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", slow)
    monkeypatch.setattr(lungai.progress, "TICK_INTERVAL", 0.2)


def _timed_while(lines, step, imported):
    """The ``LUNGAI_PROGRESS`` lines saying ``step`` with its seconds, ``"<step> (<N> s)"``, before ``imported``."""
    import re

    assert imported in lines, lines[-10:]
    return [line for line in lines[:lines.index(imported)]
            if line.startswith("LUNGAI_PROGRESS ") and re.search(re.escape(step) + r" \(\d+ s\)$", line)]


def test_train_seg_says_the_seconds_of_its_imports(tiny_data, tmp_path, monkeypatch, capsys):
    """QA trainfollow69: train-seg's "loading torch" and "loading MONAI" (8 LIDC crops + LUNG1-002, a loaded machine)
    stood 4-7 s each with no line (7.3 s on "loading MONAI": the run's longest quiet stretch), where eval-seg's
    "loading the model: torch and MONAI" says its seconds while it runs.  Each loading step now says
    "<step> (<N> s)" while its import runs (the Slicer panel's LUNGAI_PROGRESS lines, a log's lines; a terminal's
    bar is redrawn): the imports slowed here by 1 s each, the training itself stopped once they are done."""
    import lungai.seg.ensemble

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(lungai.seg.ensemble, "train_ensemble", stop)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    _slow_imports(monkeypatch, {"torch", "lungai.seg.ensemble", "torch._dynamo"}, 1.0)
    images, masks = tiny_data
    capsys.readouterr()
    with pytest.raises(_Stop):
        main(["train-seg", "--images", str(images), "--masks", str(masks), "--arch", "unet", *TINY_CLI,
              "-o", str(tmp_path / "model")])
    lines = capsys.readouterr().err.splitlines()
    assert _timed_while(lines, "loading torch", "IMPORTED torch"), lines
    assert _timed_while(lines, "loading MONAI", "IMPORTED lungai.seg.ensemble"), lines
    assert _timed_while(lines, "loading torch's optimiser (torch._dynamo)", "IMPORTED torch._dynamo"), lines
    # --device's own check (another than cpu) imports torch on a bar of its own: its seconds said too
    from lungai.cli.seg import training_device

    capsys.readouterr()
    assert training_device("auto") in ("cpu", "cuda")
    lines = capsys.readouterr().err.splitlines()
    assert _timed_while(lines, "loading torch", "IMPORTED torch"), lines


def test_eval_seg_says_its_dice_and_hd95_step(tiny_model, tiny_data):
    """QA train69: eval-seg of LUNG1-003 (a whole CT) stood 5.5 s on "LUNG1-003: mapped to input grid" before the
    case was counted: its Dice and HD95 (MONAI's Hausdorff distance over the box of both masks: 2 s on an idle
    machine for a prediction scattered in the lungs) ran without a word.  That step is said as a message of the
    case, its seconds shown while it runs."""
    import SimpleITK as sitk_

    from lungai.seg.dataset import Case
    from lungai.seg.evaluate import evaluate_cases
    from lungai.seg.model_io import load_model

    images, masks = tiny_data
    name = sorted(p.name for p in images.iterdir())[0]
    case = Case("c_0", "c", image=sitk_.ReadImage(str(images / name)), mask=sitk_.ReadImage(str(masks / name)))
    rec = ProgressRecorder()
    df = evaluate_cases(load_model(tiny_model), [case], progress=rec)
    messages = [m for _, m in rec.updates if m]
    last = max(k for k, m in enumerate(messages) if "mapped to input grid" in m)
    assert any(m.startswith("c_0: Dice and HD95") for m in messages[last + 1:]), messages[last:]
    assert sum(n for n, _ in rec.updates) == 1 and len(df) == 1            # one step per case, as before
