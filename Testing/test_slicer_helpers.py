"""LungAICommon, the pure-Python side of the Slicer panels: subprocess runner (real ``lungai``
children), command builders (checked against the real CLI parser), requirements (against
pyproject.toml), result wording, node loading on real MRML (slicer-core), sample data."""

from __future__ import annotations

import json
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.scene import results
from LungAICommon import commands, requirements, sampledata
from LungAICommon.process import LungAIProcess, ProcessChain, parse_progress

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory, small_phantom):
    out = tmp_path_factory.mktemp("ct")
    sitk.WriteImage(small_phantom.ct, str(out / "ct.nii.gz"))
    sitk.WriteImage(small_phantom.labels, str(out / "labels.nii.gz"))
    return out


# ---------------------------------------------------------------------------- process runner
def test_progress_lines_parse_like_the_core():
    from lungai.progress import parse_line

    for line in ["LUNGAI_PROGRESS 2/5 lungs: masks", "LUNGAI_PROGRESS 0/1 x: ", "LUNGAI_PROGRESS a/b c: d",
                 "tumour 3 ml", "LUNGAI_PROGRESS 7/0 z: m"]:
        assert parse_progress(line) == parse_line(line)
    assert parse_progress("LUNGAI_PROGRESS 2/5 lungs: masks") == (0.4, "lungs: masks")


def test_child_progress_streams_and_succeeds(small_ct, tmp_path):
    job = LungAIProcess(["lungs", str(small_ct / "ct.nii.gz"), "-o", str(tmp_path / "lungs.nii.gz")]).start()
    events, t0 = [], time.monotonic()
    while job.running and time.monotonic() - t0 < 120:
        events += job.poll()  # never blocks
        time.sleep(0.02)
    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert job.succeeded and job.returncode == 0
    assert fractions and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert any(e.kind == "log" and "lungs" in e.text for e in events)
    assert (tmp_path / "lungs.nii.gz").is_file()


def test_child_error_is_reported_without_traceback(tmp_path):
    job = LungAIProcess(["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "o.nii.gz")]).start()
    assert job.wait(timeout=60) == 2
    assert not job.succeeded
    assert "missing.nii.gz" in job.error_message()
    assert not any("Traceback" in line for line in job.lines)


def test_child_error_keeps_how_to_fix(tmp_path):
    """The dialog text is the problem *and* the fix (lungai.errors prints the fix on a second line)."""
    job = LungAIProcess(["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "o.nii.gz")]).start()
    assert job.wait(timeout=60) == 2
    problem, fix = job.error_message().splitlines()
    assert problem.endswith("missing.nii.gz does not exist") and "lungai lungs" not in problem
    assert fix.startswith("How to fix: check the path")


@pytest.mark.parametrize("name", ["Łukasz 病人", "José"])
def test_child_output_is_read_whatever_the_systems_code_page(small_ct, tmp_path, monkeypatch, name):
    """QA: the child printed in the pipe's encoding - on Windows the ANSI code page (cp1252 ...; Slicer 5.10's
    launcher sets no UTF-8 mode) -, read here as UTF-8: a name outside the code page (a CT, a segment, the user's
    folder "C:\\Users\\Łukasz\\...") crashed the child with UnicodeEncodeError (a traceback, not the result or the
    problem), one inside it ("José") came back as "Jos\ufffd" and the message's temporary files were not named as
    the user knows them.  PYTHONIOENCODING=cp1252 in the environment stands for that code page here."""
    from LungAICommon.process import name_work_files

    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")
    work = tmp_path / name / "lungai-segment-x"
    job = LungAIProcess(["lungs", str(work / "ct.nii.gz"), "-o", str(tmp_path / "o.nii.gz")]).start()
    assert job.wait(timeout=60) == 2
    assert not any("Traceback" in line or "UnicodeEncodeError" in line for line in job.lines), job.lines
    problem = job.error_message().splitlines()[0]
    assert problem.endswith(f"{work / 'ct.nii.gz'} does not exist"), problem
    assert name_work_files(problem, {work / "ct.nii.gz": "LUNG1-003"}).endswith("LUNG1-003 does not exist")
    # a run that succeeds prints its result with the case's name on stdout: it crashed there (rc 1, no result)
    job = LungAIProcess(commands.radiomics(small_ct / "ct.nii.gz", small_ct / "labels.nii.gz", tmp_path / "f.csv",
                                           [("GTV", 1)], feature_classes=["firstorder"], case=name)).start()
    assert job.wait(timeout=120) == 0, job.lines
    assert any(f"of {name} ->" in line for line in job.lines), job.lines


def test_work_files_named_as_the_user_knows_them(tmp_path):
    from LungAICommon.process import name_work_files

    work = tmp_path / "lungai-segment-x"
    text = f"{work / 'ct.nii.gz'} does not look like a CT\n  the mask {work.resolve() / 'segment_1.nii.gz'} is empty"
    assert name_work_files(text, {work / "ct.nii.gz": "LUNG1-003", work / "segment_1.nii.gz": "segment 'Tumor'"}) == (
        "LUNG1-003 does not look like a CT\n  the mask segment 'Tumor' is empty")
    assert name_work_files("x (CSV lines [2])", {" (CSV lines [2])": ""}) == "x"
    assert name_work_files("unchanged", None) == "unchanged"


def test_cancel_stops_the_child_quickly(tmp_path):
    job = LungAIProcess(["sample", "-o", str(tmp_path / "s")]).start()  # ~5 s when left alone
    time.sleep(1.0)
    t0 = time.monotonic()
    job.cancel(grace_seconds=5, block=True)
    job.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    assert job.cancelled and not job.succeeded and job.returncode != 0
    assert not (tmp_path / "s" / "meta.json").exists()


# a Ctrl-C (the panel's Cancel: SIGINT) arriving while the child imports MODULE: KeyboardInterrupt raised there, as the
# signal handler raises it - an event of the child's own startup, not a timer
_INTERRUPT_AT_IMPORT = """
import os, sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["LUNGAI_TEST_INTERRUPT_AT"]:
            sys.meta_path.remove(self)
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
"""


@pytest.mark.parametrize("module", ["lungai.cli", "lungai.cli.stage", "numpy"])
def test_cancel_while_the_child_starts_is_a_clean_cancel(tmp_path, module):
    """QA slicerfollow71: Cancel in the first seconds of Predict stage (the child importing lungai.cli, or building the
    parser: numpy, the commands' modules) put a raw KeyboardInterrupt traceback in the panel's log and the child
    exited with -2 (killed by SIGINT), not the CLI's 130.  A Cancel then is said as any other: "lungai ...:
    cancelled", 130."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(_INTERRUPT_AT_IMPORT, encoding="utf-8")
    (tmp_path / "model").mkdir()
    job = LungAIProcess(["stage", "predict", "--model", str(tmp_path / "model"), "--ehr", str(tmp_path / "ehr.csv"),
                         "-o", str(tmp_path / "out")],
                        env={"PYTHONPATH": str(tmp_path / "hook"), "LUNGAI_TEST_INTERRUPT_AT": module}).start()
    assert job.wait(timeout=120) == 130, job.lines
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in job.lines), job.lines
    assert job.lines[-1] in ("lungai stage: cancelled", "lungai: cancelled"), job.lines
    assert not (tmp_path / "out").exists()


def test_windows_child_has_no_console_and_its_own_group():
    """The Windows options are chosen by a function, so they are checked here on Linux."""
    from LungAICommon import process

    nt = process.popen_options("nt")
    assert nt == {"creationflags": 0x08000000 | 0x00000200}            # CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP
    assert "start_new_session" not in nt
    assert process.popen_options("posix") == {"start_new_session": True}
    assert process.interrupt(12345, os_name="nt") is False             # no console: Ctrl-Break cannot reach it


def test_windows_cancel_kills_the_whole_tree_with_taskkill():
    from LungAICommon import process

    calls = []
    process.kill_tree(4321, os_name="nt", run=lambda args, **kw: calls.append((args, kw)) or
                      types.SimpleNamespace(returncode=0, stdout=""))
    (args, kw), = calls
    assert args == ["taskkill", "/F", "/T", "/PID", "4321"]           # /T: the launcher and the real Python
    assert kw["creationflags"] == 0x08000000                           # taskkill shows no console either


def _launcher(tmp_path):
    """A stand-in for PythonSlicer: an executable that runs the real Python as its *child* (not exec)."""
    path = tmp_path / "PythonSlicer"
    path.write_text(f"#!/bin/sh\n{sys.executable} \"$@\"\nexit $?\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _tree(pid):
    import psutil

    return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]


def _gone(procs, timeout=10.0):
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("interrupt_works", [True, False])
def test_cancel_stops_the_launcher_and_the_real_python(tmp_path, monkeypatch, interrupt_works):
    """Killing only the launcher would leave the real Python running.  Both ways of stopping (Ctrl-C to
    the group; and, where that cannot work - Windows, or a failing signal - the tree kill) stop both."""
    import psutil

    from LungAICommon import process

    if not interrupt_works:
        monkeypatch.setattr(process, "interrupt", lambda pid: False)
    job = LungAIProcess(["sample", "-o", str(tmp_path / "s")], python=str(_launcher(tmp_path))).start()
    deadline = time.monotonic() + 20
    while len(_tree(job._proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    procs = _tree(job._proc.pid)
    assert len(procs) >= 2, "the launcher did not start its child"
    job.cancel(grace_seconds=5, block=True)
    job.wait(timeout=20)
    assert _gone(procs), [p.pid for p in procs if p.is_running()]
    assert job.cancelled and not job.succeeded
    assert psutil.pid_exists(job._proc.pid) is False or psutil.Process(job._proc.pid).status() == psutil.STATUS_ZOMBIE


def test_a_failing_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    """Before: an OSError from the interrupt was ignored and nothing was stopped."""
    import os as _os

    from LungAICommon import process

    real_killpg = _os.killpg

    def killpg(pid, sig):
        if sig == process.signal.SIGINT:
            raise PermissionError("not allowed")
        return real_killpg(pid, sig)

    monkeypatch.setattr(process.os, "killpg", killpg)
    job = LungAIProcess(["sample", "-o", str(tmp_path / "s")]).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    job.cancel(grace_seconds=30, block=False)     # no grace period: the tree is killed at once
    job.wait(timeout=10)
    assert time.monotonic() - t0 < 5 and job.cancelled and job.returncode != 0


def test_chain_runs_in_order_and_stops_at_failure(tmp_path):
    ok = ["sample", "--help"]
    bad = ["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "x.nii.gz")]
    chain = ProcessChain([ok, ok]).start()
    assert chain.wait(timeout=60) == 0 and chain.succeeded
    assert all(job.returncode == 0 for job in chain.jobs)
    chain = ProcessChain([bad, ok]).start()
    assert chain.wait(timeout=60) == 2 and not chain.succeeded
    assert not chain.jobs[1].started  # the second step never ran
    assert "missing.nii.gz" in chain.error_message()


def test_chain_goes_on_after_an_optional_command_fails(tmp_path):
    """An optional command (one segment's features among others) failing is recorded and the chain goes on; a
    required one still stops it."""
    ok = ["sample", "--help"]
    bad = ["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "x.nii.gz")]
    chain = ProcessChain([bad, ok, bad], optional=[0, 2]).start()
    assert chain.wait(timeout=60) == 0 and chain.succeeded and chain.returncode == 0
    assert all(job.started for job in chain.jobs) and chain.failed_optional() == [0, 2]
    assert "missing.nii.gz" in chain.jobs[0].error_message()
    chain = ProcessChain([bad, ok, ok], optional=[0]).start()
    assert chain.wait(timeout=60) == 0 and chain.succeeded and chain.failed_optional() == [0]
    chain = ProcessChain([ok, bad, ok], optional=[0]).start()
    assert chain.wait(timeout=60) == 2 and not chain.succeeded and not chain.jobs[2].started


def test_child_finds_the_lungai_package(tmp_path, monkeypatch):
    """The child imports lungai from the folder next to LungAICommon even when started elsewhere
    with an empty PYTHONPATH (as PythonSlicer is, for an extension's folder)."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    job = LungAIProcess(["--version"], cwd=str(tmp_path), env={"PYTHONPATH": ""})
    assert job.environment()["LUNGAI_PROGRESS"] == "lines"
    assert job.command[0] == sys.executable and job.command[1] == "-c" and job.command[3:] == ["--version"]
    job.start()
    assert job.wait(timeout=60) == 0
    from lungai import __version__

    assert job.lines == [f"lungai {__version__}"]


# ---------------------------------------------------------------------------- commands vs the real CLI
def _parse(args):
    from lungai.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # registered commands
    if args[0] not in sub:
        pytest.skip(f"`lungai {args[0]}` is not registered yet (other issue); contract checked at integration")
    return parser.parse_args(args)


def test_segment_command_matches_cli(tmp_path):
    a = _parse(commands.segment(tmp_path / "ct.nii.gz", tmp_path / "out", model_dir=tmp_path / "m",
                                method="mc-dropout", mc_passes=7, seed_point_lps=(1, -2.5, 3)))
    assert (a.ct, a.output, a.model, a.method, a.mc_passes) == (str(tmp_path / "ct.nii.gz"), str(tmp_path / "out"),
                                                                str(tmp_path / "m"), "mc-dropout", 7)
    assert [float(v) for v in a.seed_point.split(",")] == [1.0, -2.5, 3.0]
    corners = commands.ras_bounds_to_lps_corners([-10, 20, -30, 40, 5, 6])
    a = _parse(commands.segment(tmp_path / "ct.nii.gz", tmp_path / "out", roi_lps=corners))
    assert [float(v) for v in a.roi.split(",")] == [10.0, 30.0, 5.0, -20.0, -40.0, 6.0]
    assert a.method is None and a.model is None       # the CLI decides: ensemble, MC dropout for 1 member
    a = _parse(commands.segment(tmp_path / "ct.nii.gz", tmp_path / "out", method="ensemble", mc_passes=7,
                                seed_point_lps=(0, 0, 0)))
    assert a.method == "ensemble" and a.mc_passes is None     # passes only where MC dropout can run
    with pytest.raises(ValueError):
        commands.segment("ct", "out", method="bayesian")
    with pytest.raises(ValueError):
        commands.segment("ct", "out", seed_point_lps=(0, 0, 0), roi_lps=corners)
    with pytest.raises(ValueError):
        commands.ras_bounds_to_lps_corners([1, 0, 0, 1, 0, 1])


def test_training_command_matches_cli(tmp_path):
    """The panel's train-seg options: defaults, choices and flags read from train-seg's own parser (no copy to
    drift); an option at its default is left out, any other value is what the real CLI parses back."""
    from lungai.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train-seg"]
    cli = {a.dest: a for a in train._actions if a.option_strings}
    defaults = {o: commands.train_seg_default(o) for o in commands.PANEL_TRAIN_OPTIONS}
    for option, value in defaults.items():
        assert value == (cli[option].default if cli[option].default is not None else value) and (
            cli[option].default is not None or not value), option
    assert commands.train_seg_choices("arch") == ("unet", "attention_unet", "unetr", "dynunet")
    assert "--lr-schedule" in commands.train_seg_help("lr_schedule") and "default: constant" in \
        commands.train_seg_help("lr_schedule")
    base = [str(tmp_path / "i"), str(tmp_path / "m"), str(tmp_path / "o")]
    args = commands.train_segmentation(*base, defaults)
    assert args == ["train-seg", "--images", base[0], "--masks", base[1], "-o", base[2]]   # nothing but the data
    a = _parse(args)
    assert all(getattr(a, o) == cli[o].default for o in defaults) and not a.resume
    changed = {"arch": "dynunet", "members": 5, "epochs": 300, "iters": 250, "batch": 2, "patience": 50, "lr": 0.0005,
               "lr_schedule": "poly", "patch": "64, 64, 32", "spacing": "1.5,1.5,3", "channels": "16,32,64,128",
               "infer_patch": "128,128,48", "dropout": 0.2, "deep_supervision": True,
               "augment": "strong", "fg_fraction": 0.33, "tta": True, "val_fraction": 0.15, "test_fraction": 0.15,
               "patients": tmp_path / "patients.csv", "synthetic": 4, "synthetic_chests": 2, "implant": 30,
               "implant_into": tmp_path / "ct.nii.gz", "mc_passes": 20, "seed": 7, "device": "cuda:1",
               "workers": 4, "label": 1}
    assert set(changed) == set(commands.PANEL_TRAIN_OPTIONS)
    a = _parse(commands.train_segmentation(*base, changed, resume=True))
    expected = dict(changed, patch="64,64,32", patients=str(tmp_path / "patients.csv"),
                    implant_into=str(tmp_path / "ct.nii.gz"))
    assert {o: getattr(a, o) for o in changed} == expected and a.resume
    assert (a.images, a.masks, a.output) == tuple(base)
    # empty values of options the CLI leaves unset: not given (label 0: every nonzero voxel)
    a = _parse(commands.train_segmentation(*base, {"label": 0, "lr": 0.0, "fg_fraction": 0.0, "patients": "."}))
    assert (a.label, a.lr, a.fg_fraction, a.patients) == (None, None, None, None)
    with pytest.raises(ValueError, match="--arch must be one of"):
        commands.train_segmentation(*base, {"arch": "resnet"})
    with pytest.raises(ValueError, match="not a train-seg option"):
        commands.train_segmentation(*base, {"output": "elsewhere"})


def test_interrupted_training_folder(tmp_path):
    """checkpoints/ without a calibrated model.json: an interrupted train-seg run the panel resumes."""
    out = tmp_path / "model"
    assert not commands.interrupted_training(out) and not commands.interrupted_training(".")
    (out / "checkpoints").mkdir(parents=True)
    assert commands.interrupted_training(out) and not commands.trained_model_complete(out)
    # a run cancelled before its first epoch ended: its settings alone, nothing trained - started anew, not resumed
    (out / "checkpoints" / "settings.json").write_text('{"arch": "unet", "channels": [4], "patch_size": [8], '
                                                       '"seed": 0}', encoding="utf-8")
    assert not commands.interrupted_training(out)
    (out / "model.json").write_text('{"format": "lungai-seg-1"}', encoding="utf-8")   # killed while calibrating
    assert commands.interrupted_training(out)
    # train-seg's own mark while calibrating (lungai.seg.model_io.CALIBRATING), also beside an older calibration
    from lungai.seg.model_io import CALIBRATING

    (out / "model.json").write_text('{"format": "lungai-seg-1", "calibration": {}, "status": "%s"}' % CALIBRATING,
                                    encoding="utf-8")
    assert commands.interrupted_training(out)
    (out / "model.json").write_text('{"format": "lungai-seg-1", "calibration": {}}', encoding="utf-8")
    assert commands.trained_model_complete(out) and not commands.interrupted_training(out)


def test_a_training_still_running_is_not_interrupted(tmp_path):
    """QA: interrupted_training() was True for the folder of a train-seg run still training (the panel resumed it
    and train-seg refused the folder in use): a live lock is a training in progress, named."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started

    out = tmp_path / "model"
    (out / "checkpoints").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} train-seg\n")
        assert not commands.interrupted_training(out)
        assert f"{out} is being trained by process {other.pid}" in commands.training_in_progress(out)
    finally:
        other.kill()
        other.wait()
    assert commands.interrupted_training(out) and commands.training_in_progress(out) is None    # killed: stale


def test_a_member_still_training_is_not_interrupted(tmp_path):
    """QA: interrupted_training() was True while a `train-seg --member K` process still trained into the folder
    (its lock in OUT/.member_K.lock, not the folder's): the member's lock is read too."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started

    out = tmp_path / "model"
    (out / "checkpoints").mkdir(parents=True)
    (out / ".member_0.lock").mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".member_0.lock" / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} "
                                                   "train-seg\n")
        assert not commands.interrupted_training(out)
        assert f"{out}: member 0 is being trained by process {other.pid}" in commands.training_in_progress(out)
    finally:
        other.kill()
        other.wait()
    assert commands.interrupted_training(out) and commands.training_in_progress(out) is None    # killed: stale


def test_radiomics_commands_match_cli(tmp_path):
    a = _parse(commands.radiomics(tmp_path / "ct.nii.gz", tmp_path / "m.nii.gz", tmp_path / "f.csv",
                                  [("Tumor", 1), ("Right lung", 2)], params="ibsi-c",
                                  feature_classes=["shape", "glcm"], image_types=["Original", "LoG"],
                                  log_sigma=[1, 2.5], case="case 1"))
    assert a.label == ["tumour=1", "right_lung=2"] and a.params == "ibsi-c"
    assert a.feature_classes == ["shape", "glcm"] and a.image_types == ["Original", "LoG"]
    assert a.log_sigma == [1.0, 2.5] and a.case == "case 1" and a.output == str(tmp_path / "f.csv")
    b = _parse(commands.radiomics_batch(tmp_path / "man.csv", tmp_path / "o.csv", workers=3, wide=True))
    assert (b.manifest, b.workers, b.wide, b.output) == (str(tmp_path / "man.csv"), 3, True, str(tmp_path / "o.csv"))
    d = _parse(commands.dose_features(tmp_path / "d.nii.gz", tmp_path / "ct.nii.gz", tmp_path / "l.nii.gz",
                                      tmp_path / "dose.csv", gtv=tmp_path / "g.nii.gz"))
    assert (d.dose, d.lungs, d.gtv) == (str(tmp_path / "d.nii.gz"), str(tmp_path / "l.nii.gz"), str(tmp_path / "g.nii.gz"))
    with pytest.raises(ValueError):
        commands.radiomics("ct", "m", "o.csv", [("Tumor", 1)], feature_classes=["texture"])


def test_radiomics_choice_gives_the_clis_parameters_for_the_same_params(tmp_path):
    """The panel's options (commands.radiomics_choice) parsed by `lungai radiomics` give the parameter set of the
    CLI run with the same --params alone for an ibsi preset and a parameter file (the checkboxes, whatever they are,
    are not passed: QA, they dropped 48 IBSI-1 features and a file's LoG image); with the default preset the ticked
    classes / image types / sigmas are passed."""
    from lungai.cli.radiomics import _params

    yaml = tmp_path / "params.yaml"
    yaml.write_text("imageType: {Original: {}, LoG: {sigma: [2.0]}}\nfeatureClass: {firstorder: }\n", encoding="utf-8")
    ticked = (["shape", "glcm"], ["Original", "LoG"], "1, 2.5")
    cases = [("preset", "ibsi-c", "."), ("preset", "ibsi-a", "."), ("file", "default", yaml)]
    for source, preset, path in cases:
        choice = commands.radiomics_choice(source, preset, path, *ticked)
        assert (choice.feature_classes, choice.image_types, choice.log_sigma, choice.ticked) == ([], [], [], False)
        assert choice.note and choice.params == (str(path) if source == "file" else preset)
        panel = _parse(commands.radiomics("ct", "m", "o.csv", [("Tumor", 1)], params=choice.params,
                                          feature_classes=choice.feature_classes, image_types=choice.image_types,
                                          log_sigma=choice.log_sigma))
        cli = _parse(["radiomics", "--image", "ct", "--mask", "m", "--params", choice.params, "-o", "o.csv"])
        assert _params(panel) == _params(cli), (source, preset)
    assert "featureClass" in commands.radiomics_choice("file", "ibsi-c", yaml, *ticked).note   # the file
    assert set(_params(cli)["imageType"]) == {"Original", "LoG"} and set(_params(cli)["featureClass"]) == {"firstorder"}
    choice = commands.radiomics_choice("preset", "default", yaml, ["glcm", "shape"], ["LoG", "Original"], "1, 2.5")
    assert choice == ("default", ["shape", "glcm"], ["Original", "LoG"], [1.0, 2.5], True, "")
    assert commands.radiomics_choice("preset", "default", ".", [], ["Original"], "x").log_sigma is None


def test_feature_names_agree_with_the_core():
    from lungai.radiomics.params import FEATURE_CLASSES, IMAGE_TYPES, PRESETS

    assert commands.FEATURE_CLASSES == tuple(FEATURE_CLASSES)
    assert commands.IMAGE_TYPES == tuple(IMAGE_TYPES)
    assert set(commands.RADIOMICS_PRESETS) == set(PRESETS)
    assert [commands.segment_column_name(n) for n in ("Tumor", "Right lung", "left  Lung", "GTV-1")] == \
        ["tumour", "right_lung", "left_lung", "gtv_1"]


def test_dose_command_names_the_case(tmp_path):
    from lungai.cli import build_parser

    args = commands.dose_features(tmp_path / "dose.nii.gz", tmp_path / "ct.nii.gz", tmp_path / "lungs.nii.gz",
                                  tmp_path / "dose.csv", case="LUNG1-003")
    assert build_parser().parse_args(args).case == "LUNG1-003"
    assert "--case" not in commands.dose_features("d", "c", "l", "o")


def test_prediction_commands_match_cli(tmp_path):
    a = _parse(commands.rp_predict(tmp_path / "m", tmp_path / "p.csv", tmp_path / "o.csv", top=3))
    patients = [a.patients] if isinstance(a.patients, str) else a.patients  # one CSV or several
    assert (a.model_dir, patients, a.output, a.top) == (str(tmp_path / "m"), [str(tmp_path / "p.csv")],
                                                        str(tmp_path / "o.csv"), 3)
    s = _parse(commands.stage_predict(tmp_path / "m", tmp_path / "o", ehr=tmp_path / "e.csv",
                                      rna=tmp_path / "r.csv", ct_manifest=tmp_path / "ct.csv"))
    assert (s.model, s.ehr, s.rna, s.ct, s.output, s.explain) == (
        str(tmp_path / "m"), str(tmp_path / "e.csv"), str(tmp_path / "r.csv"), str(tmp_path / "ct.csv"),
        str(tmp_path / "o"), True)
    with pytest.raises(ValueError):
        commands.stage_predict(tmp_path / "m", tmp_path / "o")
    with pytest.raises(ValueError):
        commands.ct_manifest_rows(" ", "ct.nii.gz", "m.nii.gz")
    assert commands.ct_manifest_rows("P1", "ct.nii.gz", "m.nii.gz") == [{"id": "P1", "image": "ct.nii.gz",
                                                                          "mask": "m.nii.gz"}]


# ---------------------------------------------------------------------------- requirements
def test_requirement_pins_match_pyproject():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split("dependencies = [", 1)[1].split("]\n", 1)[0]
    pins = dict(re.findall(r'"([A-Za-z0-9_.\-\[\]]+)==([^"]+)"', block))
    mine = {r.dist: r.version for r in requirements.PINNED.values()}
    assert mine == {d: v for d, v in pins.items() if d not in requirements.SLICER_PROVIDED}
    assert set(requirements.SLICER_PROVIDED) <= set(pins)
    assert {d: r.version for d, r in requirements.SLICER_PROVIDED_TESTED.items()} == {
        d: pins[d] for d in requirements.SLICER_PROVIDED}
    for feature in requirements.FEATURES:
        specs = [r.spec for r in requirements.requirements_for(feature)]
        assert not any(s.split("==")[0] in requirements.SLICER_PROVIDED for s in specs)


def test_missing_and_protected_constraints():
    assert requirements.missing("prediction") == []  # everything is installed in this environment
    fake = requirements.Requirement("not-a-package", "1.0", "lungai_no_such_module")
    assert not requirements.is_present(fake) and requirements.is_present(requirements.PINNED["scipy"])
    lines = requirements.protected_constraints()
    assert f"numpy=={np.__version__}" in lines and f"SimpleITK=={sitk.Version_VersionString()}" in lines
    with pytest.raises(KeyError):
        requirements.requirements_for("nonsense")


def _requires(dist: str):
    """(Requires-Python, [numpy requirements]) of an installed distribution (the venv holds the pins)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    md = metadata.metadata(dist)
    numpy = [Requirement(r) for r in md.get_all("Requires-Dist") or [] if Requirement(r).name.lower() == "numpy"]
    return md.get("Requires-Python") or "", numpy


@pytest.mark.parametrize("slicer", sorted(requirements.SUPPORTED_SLICERS))
def test_pinned_packages_accept_the_supported_slicers_python_and_numpy(slicer):
    """Inside Slicer, Slicer's numpy is never replaced: every pinned package must accept Slicer's Python
    (3.12.10) and its bundled numpy (5.10: 2.0.2, 5.12: 2.4.6), read from the packages' own metadata.
    (The full resolve with pip: tools/check_slicer_requirements.py, needs the package index.)"""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    bundled = requirements.SUPPORTED_SLICERS[slicer]
    env = {"python_version": ".".join(bundled["python"].split(".")[:2]), "python_full_version": bundled["python"],
           "extra": ""}
    for req in requirements.PINNED.values():
        dist = req.dist.split("[")[0]
        assert metadata.version(dist).split("+")[0] == req.version, f"the environment does not hold {req.spec}"
        requires_python, numpy = _requires(dist)
        assert bundled["python"] in SpecifierSet(requires_python), f"{req.spec} refuses Python {bundled['python']}"
        for r in numpy:
            if r.marker is None or r.marker.evaluate(env):
                assert bundled["numpy"] in r.specifier, f"{req.spec} needs {r}, Slicer {slicer} has numpy {bundled['numpy']}"
    specs = requirements.slicer_requirement_specs(slicer)
    assert f"numpy=={bundled['numpy']}" in specs and not any(s.startswith("pyradiomics") for s in specs)


def test_slicer_5_8_python_cannot_run_the_pins():
    """The declared minimum (5.10) is real: 5.8 ships Python 3.9.10, which pinned packages refuse."""
    from packaging.specifiers import SpecifierSet

    refusing = [r.spec for r in requirements.PINNED.values()
                if "3.9.10" not in SpecifierSet(_requires(r.dist.split("[")[0])[0])]
    assert {"scipy==1.17.1", "pandas==3.1.1"} <= set(refusing)
    assert requirements.slicer_version_problem(5, 8) and requirements.slicer_version_problem(5, 10) is None


@pytest.mark.shared_data
def test_supported_slicers_bundle_what_requirements_says():
    """The Python and numpy versions in requirements.SUPPORTED_SLICERS are those of Slicer's own build files."""
    root = REPO.parent / "shared" / "slicer-python"
    tags = {"5.10": "v5.10.0", "5.12": "v5.12.3"}
    assert set(tags) == set(requirements.SUPPORTED_SLICERS)
    for slicer, tag in tags.items():
        build = root / tag / "SuperBuild"
        numpy = re.search(r"^\s*numpy==([\d.]+)", (build / "External_python-numpy.cmake").read_text(encoding="utf-8"), re.M).group(1)
        python = re.search(r"_download_(3\.\d+\.\d+)_url", (build / "External_python.cmake").read_text(encoding="utf-8")).group(1)
        assert requirements.SUPPORTED_SLICERS[slicer] == {"python": python, "numpy": numpy}


# ---------------------------------------------------------------------------- result wording
def test_segment_result_wording(tmp_path):
    result = {"confidence": 0.41, "needs_review": True, "review_threshold": 0.6, "tumor_volume_ml": 12.34,
              "n_components": 2, "method": "mc-dropout", "mc_passes": 10, "members": 3}
    headline, details, review = results.describe_segment_result(result)
    assert review and headline.startswith("NEEDS EXPERT REVIEW") and "0.41" in headline and "0.60" in headline
    assert details == "tumour volume 12.3 ml, 2 connected components, MC dropout, 10 passes"
    assert results.describe_segment_result(dict(result, n_components=1))[1].startswith(
        "tumour volume 12.3 ml, 1 connected component, ")            # QA wording61: "1 connected component(s)"
    ok = dict(result, confidence=0.9, needs_review=False, method="ensemble")
    headline, details, review = results.describe_segment_result(ok)
    assert not review and "REVIEW" not in headline and details.endswith("ensemble of 3")
    noted = dict(result, notes=["automatic mode found 2 separate regions", "1 elongated region left out"])
    details = results.describe_segment_result(noted)[1]
    assert details.splitlines()[1:] == ["- automatic mode found 2 separate regions", "- 1 elongated region left out"]
    edge = dict(result, confidence=0.8, review_reasons=["tumour cut by the image edge"])
    headline = results.describe_segment_result(edge)[0]      # flagged for another reason than confidence
    assert headline == "NEEDS EXPERT REVIEW - tumour cut by the image edge - confidence 0.80 (review threshold 0.60)"
    # QA D2: what to do about each reason (result.json review_actions) comes first in the details
    todo = dict(edge, review_actions=["check that the scan covers the whole tumour"], notes=["a note"])
    assert results.describe_segment_result(todo)[1].splitlines()[1:] == [
        "- to do (tumour cut by the image edge): check that the scan covers the whole tumour", "- a note"]
    # an uncalibrated confidence (a model without calibration: a 1-member MC-dropout model) is said in the banner, in
    # the words of lungai segment's summary line ("uncalibrated confidence 0.69"), flagged or not
    raw = dict(ok, confidence=0.69, calibrated=False)
    assert results.describe_segment_result(raw)[0] == "Uncalibrated confidence 0.69 (review threshold 0.60)"
    assert results.confidence_text(raw) == "uncalibrated confidence 0.69"
    assert "- uncalibrated confidence 0.80 (" in results.describe_segment_result(dict(edge, calibrated=False))[0]
    assert "uncalibrated" not in results.describe_segment_result(dict(ok, calibrated=True))[0]
    with pytest.raises(results.ResultError, match="tumor.nii.gz"):
        results.read_segment_result(tmp_path)
    for name in results.SEGMENT_FILES:
        (tmp_path / name).write_text("{}", encoding="utf-8")
    with pytest.raises(results.ResultError, match="confidence"):
        results.read_segment_result(tmp_path)


def test_risk_wording_and_model_card(tmp_path):
    text = results.describe_risk(0.234, [("a", 0.1), ("b", -0.5), ("c", 0.01)], top=2)
    assert text.splitlines() == ["Predicted risk of radiation pneumonitis (grade >= 2): 23 %",
                                 "Top contributions (+ raises, - lowers the risk):", "  -0.500 log-odds  b",
                                 "  +0.100 log-odds  a"]
    # QA: the panel said "+0.101 dose_v5_pct" with no unit, the CLI "(+0.10 log-odds)": one wording, with the unit
    assert results.contribution_text(0.101) == "+0.101 log-odds" and results.contribution_text(-0.0, 2) == "+0.00 log-odds"
    # QA: a CSV's 4.8395e+08 read "+483950000.000": large values as their significant digits
    assert results.contribution_text(4.8395e8) == "+4.84e+08 log-odds"
    assert results.contribution_text(-236.76) == "-236.760 log-odds"
    headline, details = results.describe_prediction_row({"risk": 0.4, "top1_feature": "dose_v5_pct",
                                                        "top1_contribution": 0.101})
    assert "  +0.101 log-odds  dose_v5_pct" in details.splitlines()
    with pytest.raises(results.ResultError):
        results.describe_risk(1.5)
    card = {"features": ["clin_age_years", "clin_sex_cat", "dose_mld_gy", "rad_x"], "categories": {"clin_sex_cat": ["F", "M"]}}
    assert results.clinical_fields(card) == [("clin_age_years", "number"), ("clin_sex_cat", "one of: F, M")]
    row = {"clin_age_years": 60.0, "clin_sex_cat": "", "dose_mld_gy": float("nan")}
    assert results.missing_features(card, row) == ["clin_sex_cat", "rad_x"]  # NaN is imputed, not missing
    pred = {"risk": "0.62", "risk_low": "0.5", "risk_high": "0.7", "high_risk": "1",
            "top1_feature": "dose_mld_gy", "top1_contribution": "0.8"}
    headline, contrib = results.describe_prediction_row(pred)
    assert headline == "Risk 62 % (uncertainty interval 50-70 %) - HIGH RISK" and "+0.800 log-odds  dose_mld_gy" in contrib
    with pytest.raises(results.ResultError, match="model_card.json"):
        results.model_card(tmp_path)
    # the panel reads the card through rp predict's one check (lungai.rp.card.read_card): a hand-made card that
    # rp predict refuses (no model file, no format, no roles ...) is refused here too
    (tmp_path / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(results.ResultError, match="model"):
        results.model_card(tmp_path)


def test_features_by_segment_layout():
    long = [{"case": "c", "segment": s, "image_type": "original", "feature_class": fc, "feature": f, "value": str(v)}
            for s, fc, f, v in [("tumour", "shape", "MeshVolume", 1.5), ("tumour", "firstorder", "Mean", -7),
                                ("right_lung", "firstorder", "Mean", -800)]]
    columns, rows = results.features_by_segment(long, {"tumour": "Tumor", "right_lung": "Right lung"})
    assert columns == ["feature", "image_type", "feature_class", "name", "Tumor", "Right lung"]
    assert [r["feature"] for r in rows] == ["original_firstorder_Mean", "original_shape_MeshVolume"]
    assert rows[0]["Tumor"] == -7.0 and rows[0]["Right lung"] == -800.0
    assert rows[1]["Tumor"] == 1.5 and np.isnan(rows[1]["Right lung"]) and rows[1]["name"] == "MeshVolume"


def test_derived_lung_masks(small_phantom):
    """One version of the derived masks (console radiomics_table and the panel both use it)."""
    from lungai.scene.nodes import derived_lung_masks

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    images = {}
    for name, m in (("Tumor", (arr == 1) | (arr == 11)), ("Right lung", arr == 2), ("Left lung", arr == 3)):
        img = sitk.GetImageFromArray(m.astype(np.uint8))
        img.CopyInformation(small_phantom.labels)
        images[name] = img
    out = derived_lung_masks(images)
    assert set(out) == {"Lungs", "Lungs minus tumour"}
    lungs = (arr == 2) | (arr == 3)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs"]) > 0, lungs)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0, lungs & ~((arr == 1) | (arr == 11)))
    assert derived_lung_masks({"Tumor": images["Tumor"], "Right lung": images["Right lung"]}) == {}
    # several GTVs (an RTSTRUCT's GTV-1, gtv-2): every one leaves the lungs, not only the first
    second = np.zeros_like(lungs)
    second[18:22] = lungs[18:22]                      # a second GTV drawn inside the lungs
    gtvs = {}
    for name, m in (("GTV-1", arr == 1), ("gtv-2", second)):
        gtvs[name] = sitk.GetImageFromArray(m.astype(np.uint8))
        gtvs[name].CopyInformation(small_phantom.labels)
    out = derived_lung_masks({**gtvs, "Right lung": images["Right lung"], "Left lung": images["Left lung"]})
    assert second.any()
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0, lungs & ~((arr == 1) | second))
    # every tumour empty (QA panelempty65): no "Lungs minus tumour" (the lungs themselves), and why, as the CLI
    errors = {}
    empty = {name: sitk.Image(small_phantom.labels.GetSize(), sitk.sitkUInt8) for name in ("GTV-1", "gtv-2")}
    out = derived_lung_masks({**empty, "Right lung": images["Right lung"], "Left lung": images["Left lung"]},
                             errors=errors, grid="CT")
    assert set(out) == {"Lungs"} and list(errors) == ["Lungs minus tumour"], errors
    assert errors["Lungs minus tumour"].startswith(
        "the tumour segments 'GTV-1', 'gtv-2' are empty (0 voxels) on the grid of the CT 'CT', so segment 'Lungs minus "
        "tumour' would be the lungs themselves (segment 'Lungs'), no tumour left out: not computed"), errors
    # one segment of both lungs (a planning export's "Lung_Total", no right / left; QA panellungs65): "Lungs minus
    # tumour" from it, as lungai radiomics' lungs_minus_tumour from a one-label lung map; no "Lungs" (it is there)
    total = sitk.GetImageFromArray((lungs | (arr == 1)).astype(np.uint8))
    total.CopyInformation(small_phantom.labels)
    out = derived_lung_masks({"Tumor": images["Tumor"], "Lung_Total": total})
    assert set(out) == {"Lungs minus tumour"}, set(out)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0,
                          (lungs | (arr == 1)) & ~((arr == 1) | (arr == 11)))
    assert derived_lung_masks({"Lung_Total": total}) == {}                       # no tumour: nothing to derive
    errors = {}
    assert derived_lung_masks({"GTV-1": empty["GTV-1"], "Lung_Total": total}, errors=errors) == {}
    assert "segment 'Lungs minus tumour' would be the lungs themselves (segment 'Lung_Total')" in errors[
        "Lungs minus tumour"], errors
    # right + left + a "Lungs" of the user's: the right | left lung minus the tumour, as before
    out = derived_lung_masks({**images, "Lung_Total": total})
    assert set(out) == {"Lungs minus tumour"}
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0, lungs & ~((arr == 1) | (arr == 11)))
    # every tumour outside the lungs (a nodal GTV; lung contours drawn around the GTV, as LUNG1-003's; QA
    # outsidelungs65): "Lungs minus tumour" is made (the lungs themselves) and a note says so, as the CLI's
    notes = []
    nodal = sitk.GetImageFromArray(((arr == 1) & ~lungs).astype(np.uint8))
    nodal.CopyInformation(small_phantom.labels)
    assert sitk.GetArrayViewFromImage(nodal).any()
    out = derived_lung_masks({"GTV-1": nodal, "Right lung": images["Right lung"], "Left lung": images["Left lung"]},
                             notes=notes)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0, lungs)
    assert notes == ["the tumour segment 'GTV-1' does not overlap the lungs (no voxel of it in segments 'Right lung' "
                     "+ 'Left lung'), so segment 'Lungs minus tumour' equals the lungs: nothing is left out of them (a "
                     "nodal / mediastinal tumour, or lung contours drawn to exclude it)"], notes
    notes = []
    around = sitk.GetImageFromArray(lungs.astype(np.uint8))                          # one segment of both lungs
    around.CopyInformation(small_phantom.labels)
    derived_lung_masks({"GTV-1": nodal, "Lung_Total": around}, notes=notes)
    assert len(notes) == 1 and "in segment 'Lung_Total')" in notes[0], notes
    notes = []                                                                         # several: in the plural
    derived_lung_masks({"GTV-1": nodal, "gtv-2": nodal, "Lung_Total": around}, notes=notes)
    assert notes[0].startswith("the tumour segments 'GTV-1', 'gtv-2' do not overlap the lungs (no voxel of them in "
                               "segment 'Lung_Total')"), notes
    notes = []                                                                         # a tumour in the lungs: none
    derived_lung_masks({"GTV-1": nodal, **gtvs, "Right lung": images["Right lung"], "Left lung": images["Left lung"]},
                       notes=notes)      # gtv-2 drawn inside the lungs: something is left out
    assert notes == [], notes


def test_derived_lung_masks_make_no_volume_sized_temporaries(small_phantom):
    """QA slicerfollow68 (LUNG1-003, 28 M voxels): Lung Radiomics' start spent 0.5-1 s on the GUI thread in the derived
    "Lungs" / "Lungs minus tumour" - ``union |= mask > 0``, ``inside & ~gtv`` and ``(inside & gtv).any()`` each
    made a volume-sized temporary array.  The union is OR-ed in place and the difference made in place: a union takes
    one volume-sized array (its result), the derived masks two (the lungs and the tumour), measured as numpy's
    allocations (tracemalloc) - the same masks, whatever values the masks hold (1, 255)."""
    import tracemalloc

    from lungai.scene.nodes import derived_lung_masks, union_mask

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    voxels = arr.size
    images = {}
    for name, m, value in (("Tumor", (arr == 1) | (arr == 11), 1), ("Right lung", arr == 2, 255),
                           ("Left lung", arr == 3, 1)):
        images[name] = sitk.GetImageFromArray(m.astype(np.uint8) * value)
        images[name].CopyInformation(small_phantom.labels)
    derived_lung_masks(images)          # its imports before the measure

    def peak(call):
        tracemalloc.start()
        try:
            result = call()
            return result, tracemalloc.get_traced_memory()[1] / voxels
        finally:
            tracemalloc.stop()

    union, used = peak(lambda: union_mask(list(images.values())))
    assert used < 1.5, f"{used:.2f} volume-sized bytes"
    assert np.array_equal(sitk.GetArrayFromImage(union), (arr == 1) | (arr == 11) | (arr == 2) | (arr == 3))
    assert union.GetPixelID() == sitk.sitkUInt8 and union.GetSpacing() == small_phantom.labels.GetSpacing()
    out, used = peak(lambda: derived_lung_masks(images))
    assert used < 2.5, f"{used:.2f} volume-sized bytes"
    lungs = (arr == 2) | (arr == 3)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs"]), lungs)
    assert np.array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]), lungs & ~((arr == 1) | (arr == 11)))
    assert np.array_equal(sitk.GetArrayViewFromImage(images["Right lung"]), (arr == 2) * 255)   # inputs unchanged


# ---------------------------------------------------------------------------- nodes (real MRML)
def test_segmentation_outputs_load_as_nodes(mrml_scene, small_phantom, tmp_path):
    from lungai import mrml
    from lungai.scene.nodes import HEAT_COLOR_NODE_ID, export_volume, import_segment_outputs, table_rows, tumour_result

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast((small_phantom.labels == 1) | (small_phantom.labels == 11), sitk.sitkUInt8)
    unc = sitk.Cast(sitk.SignedMaurerDistanceMap(tumour, useImageSpacing=True) < 3, sitk.sitkFloat32) * 0.5
    for img, name in ((tumour, "tumor.nii.gz"), (unc, "uncertainty.nii.gz"), (unc, "probability.nii.gz")):
        sitk.WriteImage(img, str(tmp_path / name))
    (tmp_path / "result.json").write_text(json.dumps({"confidence": 0.8, "needs_review": False, "review_threshold": 0.57,
                                                      "tumor_volume_ml": 12.0, "method": "ensemble"}), encoding="utf-8")
    out = import_segment_outputs(mrml_scene, tmp_path, ct_node)
    seg_node, seg_id, unc_node = out["segmentation"], out["segment_id"], out["uncertainty"]
    assert seg_node.GetName() == "CT tumour" and unc_node.GetName() == "CT tumour uncertainty"
    assert tumour_result(seg_node, seg_id)["confidence"] == 0.8 and seg_node.GetAttribute("LungAI.confidence") is None
    back = mrml.segment_to_mask(mrml_scene, seg_node, seg_id, ct_node)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(tumour))
    assert seg_node.GetSegmentation().GetSegment(seg_id).GetName() == "Tumor"
    display = unc_node.GetDisplayNode()
    assert display.GetColorNodeID() == HEAT_COLOR_NODE_ID and display.GetApplyThreshold()
    # QA D4: a fixed 0..1 bit window (the entropy's maximum), not this map's own 0..0.5: two cases compare
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == pytest.approx((0.0, 1.0))
    # a second run adds a segment, never overwrites the first
    again = import_segment_outputs(mrml_scene, tmp_path, ct_node, seg_node=seg_node)
    seg_node2, seg_id2 = again["segmentation"], again["segment_id"]
    assert seg_node2 is seg_node and seg_id2 != seg_id
    assert mrml.segment_names(seg_node) == ["Tumor", "Tumor (2)"]
    # exported CT keeps its voxels and geometry
    path = export_volume(ct_node, tmp_path / "export.nii.gz")
    again = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(small_phantom.ct))
    assert np.allclose(again.GetOrigin(), small_phantom.ct.GetOrigin())
    import pandas as pd

    table = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame({"a": [1.5], "b": ["x"]}), "t")
    assert table_rows(table) == [{"a": "1.5", "b": "x"}]


def test_a_tumour_result_loads_without_pandas_its_table_as_a_dataframes(mrml_scene, small_phantom, tmp_path,
                                                                         monkeypatch):
    """QA slicerfollow70: Segment tumour's result load held the GUI 3.1 s the first time after Done, 0.78 s of it
    importing pandas for the one-row confidence table.  It loads with pandas unimportable (an import of it fails
    here); its table has the columns, kinds and cells a DataFrame of that row gives (table_node_from_dataframe)."""
    import sys

    import pandas as pd

    from lungai import mrml
    from lungai.scene.nodes import OUTLINE_COLUMN, confidence_row, import_segment_outputs

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast((small_phantom.labels == 1) | (small_phantom.labels == 11), sitk.sitkUInt8)
    for img, name in ((tumour, "tumor.nii.gz"), (sitk.Cast(tumour, sitk.sitkFloat32) * 0.5, "uncertainty.nii.gz"),
                      (sitk.Cast(tumour, sitk.sitkFloat32), "probability.nii.gz")):
        sitk.WriteImage(img, str(tmp_path / name))
    info = {"confidence": 0.8, "needs_review": True, "review_reasons": ["low confidence", "2 components"],
            "review_threshold": 0.57, "tumor_volume_ml": 12.0, "n_components": 2, "method": "mc_dropout",
            "members": 1, "mc_passes": 10, "roi_mode": None, "calibrated": False, "seed_point_lps_mm": [1.5, -2, 3],
            "features": {"mean_prob": 0.71, "entropy": float("nan"), "flag": True}}
    (tmp_path / "result.json").write_text(json.dumps(info), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "pandas", None)                 # importing it: ImportError
    out = import_segment_outputs(mrml_scene, tmp_path, ct_node)
    monkeypatch.undo()
    reference = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame([confidence_row(out["result"], "Tumor")]),
                                               "reference")
    table, expected = out["table"].GetTable(), reference.GetTable()
    assert table.GetNumberOfRows() == expected.GetNumberOfRows() == 1
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    assert columns[-1].GetName() == OUTLINE_COLUMN                   # added after (tumour_result): the outline
    table.RemoveColumn(len(columns) - 1)
    columns = columns[:-1]
    wanted = [expected.GetColumn(c) for c in range(expected.GetNumberOfColumns())]
    assert [(c.GetName(), c.GetClassName()) for c in columns] == [(c.GetName(), c.GetClassName()) for c in wanted]
    assert {"feature_entropy", "roi_mode", "needs_review", "review_reasons"} <= {c.GetName() for c in columns}
    assert [table.GetValue(0, c).ToString() for c in range(len(columns))] == \
        [expected.GetValue(0, c).ToString() for c in range(len(wanted))]
    got, want = mrml.dataframe_from_table_node(out["table"]), mrml.dataframe_from_table_node(reference)
    pd.testing.assert_frame_equal(got, want)                         # the exact values too


def _skewed(node, skew: float):
    """Give a volume node axes that are not exactly perpendicular (the CT's row direction tilted by ``skew`` towards
    its column direction), as some scanners write ImageOrientationPatient."""
    from lungai import mrml

    m = mrml.ijk_to_world(node)
    m[:3, 1] += skew * np.linalg.norm(m[:3, 1]) * m[:3, 0] / np.linalg.norm(m[:3, 0])
    node.SetIJKToRASMatrix(mrml._vtk_matrix(m))
    return node


def test_outputs_of_a_ct_with_slightly_skewed_axes_load_on_its_voxels(mrml_scene, small_phantom, tmp_path):
    """QA: a CT node whose direction is nearly but not exactly orthogonal (skew 5e-4): ``lungai segment`` / ``lungai
    lungs`` write their masks as NIfTI, which stores the nearest rotation, and the panel refused its own results
    ("the mask tumor.nii.gz does not lie on the image grid ... direction ... 0.00025 apart").  Now they load onto the
    CT's voxels, unchanged; a skew that moves voxels by half a voxel or more is still refused."""
    from lungai import mrml
    from lungai.errors import GeometryError
    import slicer
    from lungai.io import read_image, read_mask, write_image
    from lungai.scene import nodes
    from lungai.scene.nodes import import_lung_outputs, import_segment_outputs

    ct_node = _skewed(mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT"), 5e-4)
    ct = mrml.image_from_volume_node(ct_node)           # what the panel hands to lungai (NRRD keeps the skew)
    labels = sitk.GetArrayFromImage(small_phantom.labels)
    tumour = sitk.GetImageFromArray(np.isin(labels, (1, 11)).astype(np.uint8))
    tumour.CopyInformation(ct)
    write_image(tumour, tmp_path / "tumor.nii.gz")      # as lungai segment writes it: on the CT read from the NRRD
    unc = sitk.Cast(tumour, sitk.sitkFloat32) * 0.5
    for name in ("uncertainty.nii.gz", "probability.nii.gz"):
        write_image(unc, tmp_path / name)
    (tmp_path / "result.json").write_text(json.dumps({"confidence": 0.8, "needs_review": False, "review_threshold": 0.57,
                                                      "tumor_volume_ml": 12.0, "method": "ensemble"}), encoding="utf-8")
    assert sitk.ReadImage(str(tmp_path / "tumor.nii.gz")).GetDirection() != pytest.approx(ct.GetDirection(), abs=1e-4)
    out = import_segment_outputs(mrml_scene, tmp_path, ct_node)
    back = mrml.segment_to_mask(mrml_scene, out["segmentation"], out["segment_id"], ct_node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(tumour))
    lungs = sitk.GetImageFromArray(np.where(np.isin(labels, (1, 2)), labels, 0).astype(np.uint8))
    lungs.CopyInformation(ct)
    write_image(lungs, tmp_path / "lungs.nii.gz")
    seg_node, volumes, _ = import_lung_outputs(mrml_scene, tmp_path / "lungs.nii.gz", ct_node)
    right = mrml.segment_to_mask(mrml_scene, seg_node, "Right lung", ct_node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(right) > 0, labels == 1)
    # the same tumor.nii.gz opened in Slicer as a label map and converted to a segmentation (reference geometry: the
    # label map, with the NIfTI's rotation): Lung Radiomics refused it as "drawn on another image"
    label = mrml.volume_node_from_image(mrml_scene, read_image(tmp_path / "tumor.nii.gz"), "tumor", labelmap=True)
    converted = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "tumor-segmentation")
    converted.CreateDefaultDisplayNodes()
    assert slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(label, converted)
    converted.SetReferenceImageGeometryParameterFromVolumeNode(label)
    assert nodes.same_voxel_grid(label, ct_node)
    assert nodes.segmentation_volume_problem(converted, ct_node) is None
    back = mrml.segment_to_mask(mrml_scene, converted, mrml.segment_names(converted)[0], ct_node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(tumour))
    # a real tilt (0.01: 3 mm at the far corner of this 336 mm CT, against 3.5 mm voxels) is not "the same voxels"
    tilted = _skewed(mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "tilted"), 1e-2)
    with pytest.raises(GeometryError, match="does not lie on the image grid"):
        read_mask(tmp_path / "tumor.nii.gz", reference=mrml.image_from_volume_node(tilted))
    assert not nodes.same_voxel_grid(label, tilted)
    assert "drawn on another image (tumor)" in nodes.segmentation_volume_problem(converted, tilted)


def test_the_uncertainty_volume_says_what_it_holds(mrml_scene, small_phantom):
    """QA: the imported uncertainty volume had no units and its legend said only 'Tumour uncertainty': its voxel value
    units are bit (UCUM), attributes name the quantity, the legend title says entropy, bits."""
    from lungai import mrml
    from lungai.scene.nodes import UNCERTAINTY_LEGEND, add_tumour_outputs

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    unc = add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32) * 0.5,
                             {"confidence": 0.8})["uncertainty"]
    units = unc.GetVoxelValueUnits()
    assert (units.GetCodeValue(), units.GetCodingSchemeDesignator()) == ("bit", "UCUM")
    assert unc.GetAttribute("LungAI.units") == "bit"
    assert unc.GetAttribute("LungAI.quantity") == "predictive entropy of the tumour probability"
    assert UNCERTAINTY_LEGEND == "Tumour uncertainty (entropy, bits)"
    source = (Path(__file__).resolve().parents[1] / "LungAISeg" / "LungAISeg.py").read_text(encoding="utf-8")
    assert "legend.SetTitleText(nodes.UNCERTAINTY_LEGEND)" in source


def test_uncertainty_maps_share_a_fixed_window_and_say_where_they_were_evaluated(mrml_scene, small_phantom):
    """QA D4: the heat map's window was each volume's own min..max (a 0.2-bit case looked as unsure as a 1-bit one):
    uncertainty maps get their quantity's fixed range (entropy and mutual information 0..1 bit); other heat maps
    (Grad-CAM, dose) keep their own range.  QA D5: the map is 0 outside the evaluated box - not evaluated, not
    certain: the node records the box (LPS mm) and says so in its description."""
    from lungai import mrml
    from lungai.scene.nodes import EVALUATED_BOX_ATTRIBUTE, add_tumour_outputs, show_as_heat_map
    from lungai.seg.uncertainty import MAP_RANGES

    assert MAP_RANGES == {"entropy": (0.0, 1.0), "mutual_information": (0.0, 1.0)}     # every map lungai writes
    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    box = [[-10.0, -20.0, -30.0], [10.0, 20.0, 30.0]]
    windows = []
    for top in (0.2, 0.9):
        unc = add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32) * top,
                                 {"confidence": 0.8, "roi_lps_mm": box})["uncertainty"]
        d = unc.GetDisplayNode()
        windows.append((d.GetWindowLevelMin(), d.GetWindowLevelMax(), d.GetAutoWindowLevel()))
    assert windows[0] == windows[1] and windows[0][:2] == pytest.approx((0.0, 1.0)) and not windows[0][2]
    assert json.loads(unc.GetAttribute(EVALUATED_BOX_ATTRIBUTE)) == box
    assert "0 outside" in unc.GetDescription() and "not evaluated" in unc.GetDescription()
    cam = mrml.volume_node_from_image(mrml_scene, sitk.Cast(tumour, sitk.sitkFloat32) * 7.0, "Grad-CAM")
    show_as_heat_map(cam)                    # no fixed range: its own
    assert cam.GetDisplayNode().GetWindowLevelMax() == pytest.approx(7.0)


def test_confidence_table_carries_review_reasons_and_model(mrml_scene, small_phantom):
    """QA D3: the confidence table (CONFIDENCE_FIELDS) had no review reasons nor model: the panel's table showed a
    flag without its why."""
    from lungai import mrml
    from lungai.scene.nodes import CONFIDENCE_FIELDS, add_tumour_outputs
    from lungai.scene.results import model_text

    assert {"review_reasons", "model"} <= set(CONFIDENCE_FIELDS)
    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    info = {"confidence": 0.3, "needs_review": True, "review_threshold": 0.6,
            "review_reasons": ["confidence below the review threshold", "tumour cut by the image edge"],
            "model": "/models/lidc_seg", "method": "ensemble", "members": 3}
    table = add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32), info)["table"]
    df = mrml.dataframe_from_table_node(table)
    assert df["review_reasons"][0] == "confidence below the review threshold; tumour cut by the image edge"
    assert df["model"][0] == model_text(info) and df["model"][0]



def test_confidence_table_says_when_its_segment_was_edited_since(mrml_scene, small_phantom, tmp_path):
    """QA conftable59: after the expert dilated the flagged tumour in the Segment Editor, its "<CT> tumour confidence"
    table still showed the run's confidence 0.3 / needs_review 1 with nothing saying they describe the original
    outline (the panels' review note did say it).  Its ``outline`` column says so, set by every reader of the
    result (nodes.tumour_result: the panels' review notes, the DICOM export) and by the Lung AI Segmentation panel
    on entering it (nodes.refresh_confidence_tables); an older version's table (no column) gets the column."""
    import sys
    from pathlib import Path

    from lungai import mrml
    from lungai.scene import nodes

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    info = {"confidence": 0.3, "needs_review": True, "review_threshold": 0.6, "review_reasons": ["low confidence"]}
    out = nodes.add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32), info)
    seg, table = out["segmentation"], out["table"]
    assert nodes.table_rows(table)[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_AS_MADE
    # an older version's table: no outline column
    table.GetTable().RemoveColumnByName(nodes.OUTLINE_COLUMN)
    assert nodes.OUTLINE_COLUMN not in nodes.table_rows(table)[0]
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(tumour, [1, 1, 1]))
    edit_segment(mrml_scene, seg, small_phantom.ct, "Tumor", grown)
    nodes.refresh_confidence_tables(mrml_scene)          # the panel, on entering it
    row = nodes.table_rows(table)[0]
    assert row[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_EDITED and "original outline" in row[nodes.OUTLINE_COLUMN]
    assert float(row["confidence"]) == 0.3 and row["needs_review"] == "1"     # the run's, as they were
    assert "edited after Lung AI Segmentation" in nodes.review_note(seg, "Tumor")
    # the original outline back (undo): any reader of the result sets the cell back
    edit_segment(mrml_scene, seg, small_phantom.ct, "Tumor", sitk.GetArrayFromImage(tumour))
    assert "check and correct it" in nodes.review_note(seg, "Tumor")
    assert nodes.table_rows(table)[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_AS_MADE
    edit_segment(mrml_scene, seg, small_phantom.ct, "Tumor", grown)
    nodes.review_notes(seg, ["Tumor"])                    # Lung Radiomics' reader
    assert nodes.table_rows(table)[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_EDITED
    # a saved and reloaded scene keeps it
    again = mrml.load_scene(mrml.save_scene(mrml_scene, tmp_path / "s.mrb"), tmp_path / "unpacked")
    reloaded = again.GetFirstNodeByName("CT tumour confidence")
    assert nodes.table_rows(reloaded)[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_EDITED


def test_confidence_tables_follow_their_segments_edited_renamed_or_deleted(mrml_scene, small_phantom):
    """QA slicerconf60 (lung2, two seeded runs into the user's segmentation): the confidence tables were refreshed
    only on entering Lung AI Segmentation or when a reader of the result ran.  After "Tumor" was renamed "Tumor
    rejected" and "Tumor (2)" renamed "Tumor", even that refresh left "lung2_image tumour confidence" saying
    segment "Tumor" - now the other segment - and "... Tumor (2) confidence" naming a segment that no longer
    existed; after the segment (or its segmentation) was deleted, its table still said "as Lung AI Segmentation
    made it".  With the panels' observer (nodes.keep_confidence_tables_current) every change of a segment or removal
    of a segmentation refreshes them: names and ``segment`` cells follow the segments, an edit is said at once, and a
    table whose segment is gone says so (nodes.OUTLINE_GONE)."""
    import sys
    from pathlib import Path

    from lungai import mrml
    from lungai.scene import nodes

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    nodes.keep_confidence_tables_current(mrml_scene)
    nodes.keep_confidence_tables_current(mrml_scene)          # once
    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    first = {"confidence": 0.3, "needs_review": True, "review_threshold": 0.6, "review_reasons": ["low confidence"]}
    second = {"confidence": 0.9, "needs_review": False, "review_threshold": 0.6}
    out1 = nodes.add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32), first)
    seg = out1["segmentation"]
    out2 = nodes.add_tumour_outputs(mrml_scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32), second,
                                    seg_node=seg)
    table1, table2 = out1["table"], out2["table"]
    assert (table1.GetName(), table2.GetName()) == ("CT tumour confidence", "CT Tumor (2) confidence")

    def row(table):
        return nodes.table_rows(table)[0]

    # an edit in the Segment Editor: said at once, no panel entered
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(tumour, [1, 1, 1]))
    edit_segment(mrml_scene, seg, small_phantom.ct, "Tumor", grown)
    assert row(table1)[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_EDITED
    assert row(table2)[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_AS_MADE
    # the expert rejects run 1 and keeps run 2 as "Tumor": each table names its own segment as it is called now
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(out1["segment_id"]).SetName("Tumor rejected")
    segmentation.GetSegment(out2["segment_id"]).SetName("Tumor")
    assert (row(table1)["segment"], float(row(table1)["confidence"])) == ("Tumor rejected", 0.3)
    assert (row(table2)["segment"], float(row(table2)["confidence"])) == ("Tumor", 0.9)
    assert (table1.GetName(), table2.GetName()) == ("CT Tumor rejected confidence", "CT tumour confidence")
    # a table the user renamed keeps its name, but its segment cell still names its segment
    table2.SetName("run 2 (kept)")
    segmentation.GetSegment(out2["segment_id"]).SetName("GTV")
    assert (table2.GetName(), row(table2)["segment"]) == ("run 2 (kept)", "GTV")
    # the segment deleted: its table says it describes a segment that is gone
    segmentation.RemoveSegment(out2["segment_id"])
    assert row(table2)[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_GONE
    assert row(table1)[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_EDITED
    # the segmentation deleted: so does every table of its segments
    mrml_scene.RemoveNode(seg)
    assert row(table1)[nodes.OUTLINE_COLUMN] == nodes.OUTLINE_GONE
    assert float(row(table1)["confidence"]) == 0.3            # the run's numbers kept, as they were

def test_a_replaced_tumour_segments_outputs_give_their_names_to_the_new_run(mrml_scene, small_phantom):
    """QA lungsrerun60 (lung2): replacing the tumour segment (add_tumour_outputs(..., replace_segment="Tumor")) left
    the obsolete table under the standard "<CT> tumour confidence" (its segment gone) and named the current result
    "<CT> tumour confidence_2" (the uncertainty volume alike).  The current result now carries the standard names;
    the replaced run's outputs are renamed "... (replaced)" and say their segment is gone, never deleted; one the user
    renamed keeps its name.  A deleted segment's outputs give way to the next run the same way ("(segment gone)")."""
    from lungai import mrml
    from lungai.scene import nodes

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "CT")
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    unc = sitk.Cast(tumour, sitk.sitkFloat32)

    def run(confidence, **kw):
        return nodes.add_tumour_outputs(mrml_scene, ct_node, tumour, unc, {"confidence": confidence}, **kw)

    first = run(0.3)
    seg = first["segmentation"]
    second = run(0.9, seg_node=seg, replace_segment="Tumor")
    assert mrml.segment_names(seg) == ["Tumor"]
    assert (second["table"].GetName(), second["uncertainty"].GetName()) == ("CT tumour confidence",
                                                                            "CT tumour uncertainty")
    assert float(nodes.table_rows(second["table"])[0]["confidence"]) == 0.9
    assert (first["table"].GetName(), first["uncertainty"].GetName()) == ("CT tumour confidence (replaced)",
                                                                          "CT tumour uncertainty (replaced)")
    old = nodes.table_rows(first["table"])[0]
    assert (float(old["confidence"]), old[nodes.OUTLINE_COLUMN]) == (0.3, nodes.OUTLINE_GONE)
    assert mrml_scene.GetNodeByID(first["table"].GetID()) is not None             # kept
    # a table the user renamed is the user's: kept as named; the new run still gets the standard name
    second["table"].SetName("run 2 (reviewed)")
    third = run(0.7, seg_node=seg, replace_segment="Tumor")
    assert second["table"].GetName() == "run 2 (reviewed)"
    assert second["uncertainty"].GetName() == "CT tumour uncertainty (replaced)_1"
    assert (third["table"].GetName(), third["uncertainty"].GetName()) == ("CT tumour confidence",
                                                                          "CT tumour uncertainty")
    # the segment deleted, a new run's "Tumor": the standard names go to the new run too
    seg.GetSegmentation().RemoveSegment(third["segment_id"])
    fourth = run(0.5, seg_node=seg)
    assert fourth["table"].GetName() == "CT tumour confidence"
    assert third["table"].GetName() == "CT tumour confidence (segment gone)"
    assert nodes.table_rows(third["table"])[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_GONE
    # a second run beside the first (no replace): both current, both keep their names
    fifth = run(0.6, seg_node=seg)
    assert (fourth["table"].GetName(), fifth["table"].GetName()) == ("CT tumour confidence", "CT Tumor (2) confidence")


def test_sample_ground_truth_segments(mrml_scene, small_ct):
    from lungai import mrml

    ct_node = mrml.volume_node_from_image(mrml_scene, sitk.ReadImage(str(small_ct / "ct.nii.gz")), "CT")
    seg_node = sampledata.load_ground_truth(mrml_scene, small_ct / "labels.nii.gz", ct_node)
    assert mrml.segment_names(seg_node) == ["Tumor", "Right lung", "Left lung"]
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(small_ct / "labels.nii.gz")))
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg_node, "Tumor", ct_node))
    assert tumour.sum() == ((labels == 1) | (labels == 11)).sum() > 0


def test_sample_checksum_matches_generator(sample_dir):
    """The built-in sample (as `lungai sample` writes it) is the one the SampleData entry promises."""
    assert sampledata.voxel_checksum(sample_dir / "ct.nii.gz") == sampledata.CT_SHA256
    reused = sampledata.ensure_sample(sample_dir)  # intact files are reused, not regenerated
    assert reused["ct"] == sample_dir / "ct.nii.gz"


def test_sample_checksum_detects_a_changed_case(tmp_path, small_ct):
    import shutil

    for name in ("ct.nii.gz", "labels.nii.gz"):
        shutil.copy(small_ct / name, tmp_path / name)
    (tmp_path / "meta.json").write_text(json.dumps({}), encoding="utf-8")
    assert sampledata.voxel_checksum(tmp_path / "ct.nii.gz") != sampledata.CT_SHA256
    img = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    img.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(img, str(tmp_path / "moved.nii.gz"))
    assert sampledata.voxel_checksum(tmp_path / "moved.nii.gz") != sampledata.voxel_checksum(tmp_path / "ct.nii.gz")


def test_stage_wording():
    row = {"patient_id": "P1", "ehr": "True", "p_I": "0.2", "p_II": "0.7", "p_III-IV": "0.1", "predicted": "II"}
    assert results.describe_stage_row(row, "P1").splitlines() == [
        "P1: predicted II", "  P(II) = 70 %", "  P(I) = 20 %", "  P(III-IV) = 10 %"]
    with pytest.raises(results.ResultError):
        results.describe_stage_row({"patient_id": "P1"}, "P1")
    genes = [{"patient_id": "P1", "class": "II", "rank": str(k), "gene": g, "shapley_value": str(v)}
             for k, g, v in [(2, "EGFR", -0.2), (1, "TP53", 0.5)]] + \
            [{"patient_id": "P2", "class": "I", "rank": "1", "gene": "KRAS", "shapley_value": "0.1"}]
    assert results.describe_top_genes(genes, "P1") == "Top genes (Shapley, towards II): TP53 (+0.500), EGFR (-0.200)"
    assert "none" in results.describe_top_genes(genes, "P9")


def test_manifest_from_folder(tmp_path):
    from LungAICommon.manifest import rows_from_folder, write_manifest

    for case, files in {"A": ["ct.nii.gz", "labels.nii.gz", "meta.json"], "B": ["image.nrrd", "mask.nii.gz"],
                        "C": ["ct.nii.gz", "tumor.nii.gz", "lungs.nii.gz"], "D": ["readme.txt"]}.items():
        (tmp_path / case).mkdir()
        for name in files:
            (tmp_path / case / name).write_text("x", encoding="utf-8")
    rows = rows_from_folder(tmp_path)
    assert [(r["case"], r["image"], r["mask"], r["phantom"], r["tumour"], r["lungs"]) for r in rows] == [
        ("A", "A/ct.nii.gz", "A/labels.nii.gz", "1", "", ""), ("B", "B/image.nrrd", "B/mask.nii.gz", "", "", ""),
        ("C", "C/ct.nii.gz", "", "", "C/tumor.nii.gz", "C/lungs.nii.gz")]
    path = write_manifest(rows, tmp_path / "out" / "m.csv", base=tmp_path)
    assert path.read_text(encoding="utf-8").splitlines()[1] == f"A,{tmp_path}/A/ct.nii.gz,{tmp_path}/A/labels.nii.gz,1,,"
    (tmp_path / "E").mkdir()
    (tmp_path / "E" / "ct.nii.gz").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="^case folder without a mask: E;"):
        rows_from_folder(tmp_path)
    (tmp_path / "F").mkdir()
    (tmp_path / "F" / "ct.nii.gz").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="^case folders without a mask: E, F;"):
        rows_from_folder(tmp_path)
    with pytest.raises(ValueError, match="no case"):
        rows_from_folder(tmp_path / "D")


def test_manifest_from_folder_takes_any_suffix_case(tmp_path):
    """The panel's folder batch finds the images lungai reads in any letter case (ct.NII.GZ, .Nrrd, .mhd:
    Windows tools, FAT drives), with the one suffix list of lungai.seg.dataset."""
    from LungAICommon.manifest import rows_from_folder

    for case, files in {"A": ["ct.NII.GZ", "mask.Nrrd"], "B": ["image.mhd", "tumour.NII", "lungs.nii.gz"],
                        "C": ["ct.NII.GZ.bak", "mask.nii.gz"]}.items():
        (tmp_path / case).mkdir()
        for name in files:
            (tmp_path / case / name).write_text("x", encoding="utf-8")
    rows = rows_from_folder(tmp_path)
    assert [(r["case"], r["image"], r["mask"], r["tumour"], r["lungs"]) for r in rows] == [
        ("A", "A/ct.NII.GZ", "A/mask.Nrrd", "", ""), ("B", "B/image.mhd", "", "B/tumour.NII", "B/lungs.nii.gz")]


def test_cancel_works_when_the_parent_ignores_ctrl_c(tmp_path):
    """A parent started in the background hands SIGINT on as ignored; Cancel must still stop the child
    with a clean interrupt (not only the kill after the grace period)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = LungAIProcess(["sample", "-o", str(tmp_path / "s")]).start()
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(1.0)
    t0 = time.monotonic()
    job.cancel(grace_seconds=20, block=True)
    job.wait(timeout=30)
    assert time.monotonic() - t0 < 10            # interrupted, not killed at 20 s
    assert job.cancelled and job.returncode == 130
    assert not (tmp_path / "s" / "meta.json").exists()


def test_automatic_mode_candidates_load_as_a_point_list(mrml_scene):
    from lungai import mrml
    from lungai.scene.nodes import add_tumour_outputs

    ct = sitk.Image(8, 8, 4, sitk.sitkInt16)
    ct_node = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    empty = sitk.Image(8, 8, 4, sitk.sitkUInt8)

    def load_candidates(info):
        return add_tumour_outputs(mrml_scene, ct_node, empty, sitk.Cast(empty, sitk.sitkFloat32), info)["candidates"]

    cands = [{"rank": 1, "centre_lps_mm": [10.0, -20.0, 30.0], "volume_ml": 2.04, "mean_probability": 0.88},
             {"rank": 2, "centre_lps_mm": [-5.5, 7.0, -12.0], "volume_ml": 0.51, "mean_probability": 0.66}]
    node = load_candidates({"candidates": cands})
    assert node.IsA("vtkMRMLMarkupsFiducialNode") and node.GetName() == "CT tumour candidates"
    assert node.GetNumberOfControlPoints() == 2
    ras = [0.0, 0.0, 0.0]
    node.GetNthControlPointPosition(1, ras)
    assert ras == pytest.approx([5.5, -7.0, -12.0])                   # LPS -> RAS
    assert node.GetNthControlPointLabel(0) == "1: 2.0 ml, p 0.88" and node.GetNthControlPointLocked(0)
    assert load_candidates({"candidates": cands[:1]}) is None     # one region: nothing to choose
    assert load_candidates({}) is None                              # seed / ROI mode


def test_default_ct_skips_labelmaps(mrml_scene):
    """GetFirstNodeByClass("vtkMRMLScalarVolumeNode") returns a labelmap loaded first (a subclass)."""
    from LungAICommon.panel import default_ct_volume

    assert default_ct_volume(mrml_scene) is None
    mrml_scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    hidden = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "__hidden")
    hidden.SetHideFromEditors(True)
    assert default_ct_volume(mrml_scene) is None
    ct = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    assert default_ct_volume(mrml_scene) is ct


def test_the_dicom_export_needs_highdicom_0_28_and_pydicom_3_and_slicer_keeps_its_pydicom(monkeypatch):
    """QA: Slicer 5.12 bundles highdicom 0.27.0 and 5.10 pydicom 2.4.4; both counted as present (import check only),
    so lungai ran on them: every DICOM export failed on 5.12 with a TypeError, and on 5.10 lungai's DICOM reading
    said "truncated or corrupt" (pydicom 2 has no keep_deferred) while installing highdicom would have upgraded
    Slicer's own pydicom.  Now: a bundled package older than a feature needs is missing (installing the pin
    upgrades it: highdicom on 5.12), except pydicom, which Slicer's DICOM module is built on - that feature is then
    unavailable, said with what to do; pip never replaces the pydicom there (constraints)."""
    installed = {"pydicom": "2.4.4", "highdicom": "0.27.0", "numpy": "2.0.2", "SimpleITK": "2.5.5"}
    real = requirements.installed_version         # the others as installed here (the pins): an older one is missing
    monkeypatch.setattr(requirements, "installed_version", lambda dist: installed.get(dist) or real(dist))
    pydicom, highdicom = requirements.PINNED["pydicom"], requirements.PINNED["highdicom"]
    assert requirements.too_old(pydicom, "dicom") == "2.4.4" and requirements.too_old(pydicom, "lungs") is None
    assert {r.dist for r in requirements.missing("dicom")} >= {"pydicom", "highdicom"}
    assert "pydicom" not in {r.dist for r in requirements.missing("lungs")}       # lungs run on Slicer 5.10's pydicom
    assert requirements.kept_too_old("dicom") == [(pydicom, "2.4.4")]
    text = requirements.kept_too_old_message("Lung AI Segmentation", "dicom", requirements.kept_too_old("dicom"))
    assert "pydicom 3.0.1 or newer (this Slicer has 2.4.4)" in text and "lungai dicom-export" in text and "5.12" in text
    assert "pydicom==2.4.4" in requirements.protected_constraints()
    installed.update(pydicom="3.0.2")                                          # Slicer 5.12
    assert requirements.kept_too_old("dicom") == [] and requirements.missing("dicom") == [highdicom]
    installed.update(highdicom="0.28.2")
    assert requirements.missing("dicom") == []
    # a highdicom imported before the upgrade (Slicer's DICOM module at start-up) is used until a restart
    monkeypatch.setitem(sys.modules, "highdicom", types.SimpleNamespace(__version__="0.27.0"))
    assert requirements.loaded_too_old("dicom") == [(highdicom, "0.27.0")]
    monkeypatch.setitem(sys.modules, "highdicom", types.SimpleNamespace(__version__="0.28.2"))
    assert requirements.loaded_too_old("dicom") == []


def test_slicer_5_10s_dicom_export_refusal_gives_ways_that_work_there(tmp_path):
    """QA (slicerdcm58): on Slicer 5.10 (pydicom 2.4.4, kept) the export's refusal told the user to run "lungai
    dicom-export" - a Slicer-only user has no such command, and Slicer's own Python (PythonSlicer) cannot run it
    (same pydicom; lungai not on its path).  Now it names Slicer's own DICOM export (its extensions) and how to get
    the command line, and the command it gives, run on a segmentation saved as Slicer saves it (a NIfTI label map on
    the CT's grid, the tumour at its place in the segment list), writes the tumour's SEG and RTSTRUCT."""
    import shlex

    from dicom_helpers import rt_export

    from lungai.cli import main
    from lungai.dicom.seg import read_seg
    from lungai.io import read_ct

    pydicom = requirements.PINNED["pydicom"]
    text = requirements.kept_too_old_message("Lung AI Segmentation", "dicom", [(pydicom, "2.4.4")])
    assert "pydicom 3.0.1 or newer (this Slicer has 2.4.4)" in text and "5.12" in text
    assert "QuantitativeReporting" in text and "SlicerRT" in text and "Export to DICOM" in text   # inside Slicer
    assert "PythonSlicer" in text and "outside Slicer" in text and "tools/setup.sh" in text   # how to get lungai
    assert "Export to files" in text and requirements.KEPT_TOO_OLD_COMMAND in text
    # the command, with the user's paths: segments "Lungs", "Tumor" exported as labels 1, 2
    st = rt_export(tmp_path / "export")["P1"]
    ct = read_ct(st["ct"])
    gtv = sitk.GetArrayFromImage(st["masks"]["GTV"]).astype(bool)
    labels = np.zeros(gtv.shape, np.uint8)
    labels[sitk.GetArrayFromImage(st["masks"]["Lung_R"]).astype(bool)] = 1
    labels[gtv] = 2
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(ct)
    sitk.WriteImage(image, str(tmp_path / "Segmentation.nii.gz"))
    values = {"CT_DICOM_FOLDER": str(st["ct"]), "LABELS.nii.gz#N": f"{tmp_path / 'Segmentation.nii.gz'}#2",
              "OUTPUT_FOLDER": str(tmp_path / "dicom")}
    tokens = [values.get(t, t) for t in shlex.split(requirements.KEPT_TOO_OLD_COMMAND)]
    assert tokens[0] == "lungai" and main(tokens[1:]) == 0
    seg = read_seg(tmp_path / "dicom" / "results.seg.dcm", ct)
    assert list(seg) == ["Tumour"] and np.array_equal(sitk.GetArrayFromImage(seg["Tumour"]).astype(bool), gtv)
    assert (tmp_path / "dicom" / "rtstruct.dcm").is_file()


def test_the_slicer_resolve_uses_what_each_slicer_bundles():
    """QA: tools/check_slicer_requirements.py resolved the pins with only numpy fixed, reporting scipy 1.17.1 for
    Slicer 5.10, which keeps its bundled scipy 1.13.1, and hiding the pydicom / highdicom conflicts."""
    assert requirements.slicer_unavailable_features("5.10") == ["dicom"]
    assert requirements.slicer_unavailable_features("5.12") == []
    s510, s512 = requirements.slicer_requirement_specs("5.10"), requirements.slicer_requirement_specs("5.12")
    assert {"scipy==1.13.1", "pydicom==2.4.4", "numpy==2.0.2"} <= set(s510)
    assert not any(s.startswith("highdicom") for s in s510)
    assert {"scipy==1.17.1", "pydicom==3.0.2", "highdicom==0.28.2", "numpy==2.4.6"} <= set(s512)


@pytest.mark.parametrize("case", ["LUNG1-003", "-1 CT", "-CT", "--x"])
def test_case_names_beginning_with_a_dash_reach_the_cli(tmp_path, case):
    """QA (slicer53): the CT node's name went to ``lungai radiomics`` / ``dose-features`` as ``--case NAME``: a node
    named "-1 CT" failed the whole run with "argument --case: expected one argument".  Passed as one token now."""
    from lungai.cli import build_parser

    parser = build_parser()
    dose = commands.dose_features(tmp_path / "dose.nrrd", tmp_path / "ct.nrrd", tmp_path / "lungs.nrrd",
                                  tmp_path / "dose.csv", case=case)
    radiomics = commands.radiomics(tmp_path / "ct.nrrd", tmp_path / "m.nrrd", tmp_path / "f.csv", [("Tumor", 1)],
                                   case=case)
    for args in (dose, radiomics):
        assert parser.parse_args(args).case == case


def test_confidence_observers_are_module_functions_installed_once():
    """The confidence-table observers are module functions (a per-scene lambda was half-cleared by Python's garbage
    collector while the dying scene fired EndBatchProcessEvent into it: a segmentation fault in test_rp_scene); the
    scene and each segmentation node say themselves whether they carry them, so installing twice adds nothing."""
    import slicer
    import vtk

    from lungai.scene import nodes

    assert nodes._VTK_OBJECT == vtk.VTK_OBJECT
    scene = slicer.vtkMRMLScene()
    before = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    assert not nodes._kept(scene) and not nodes._kept(before)
    nodes.keep_confidence_tables_current(scene)
    after = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    assert nodes._kept(scene) and nodes._kept(before) and nodes._kept(after)
    calls = []
    original = nodes.refresh_confidence_tables
    nodes.refresh_confidence_tables = lambda owner: calls.append(owner.__this__)
    try:
        nodes.keep_confidence_tables_current(scene)        # idempotent: one refresh per change, not two
        after.InvokeEvent(slicer.vtkSegmentation.SegmentRemoved)        # as a segment deleted in the editor
        assert calls == [scene.__this__], calls
        scene.StartState(scene.BatchProcessState)
        before.InvokeEvent(slicer.vtkSegmentation.SegmentModified)
        assert len(calls) == 1, calls                       # not while batch processing
        scene.EndState(scene.BatchProcessState)
        assert len(calls) == 2, calls                       # once after the batch
    finally:
        nodes.refresh_confidence_tables = original
    assert nodes._kept(slicer.vtkMRMLScene()) is False


def test_segment_child_progress_counts_the_network_runs_and_stays_sane(small_ct, tmp_path):
    """QA progfollow63: the Segmentation panel's bar (``lungai segment`` as a child, LUNGAI_PROGRESS lines) stood on
    "ROI lungs ..." through the whole inference (27-50 s on lung1).  The network runs are now counted there as
    message-only lines: the fraction never goes back, stays in [0, 1] and ends at 1; the text names the runs."""
    import torch

    from lungai.seg.config import SegConfig
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = SegConfig(arch="unet", channels=(4, 8, 16, 32), members=2)
    model = save_model(tmp_path / "model", cfg, [build_network(cfg).state_dict() for _ in range(2)], {})
    job = LungAIProcess(["segment", str(small_ct / "ct.nii.gz"), "-o", str(tmp_path / "out"), "--model",
                         str(model)]).start()
    events, t0 = [], time.monotonic()
    while job.running and time.monotonic() - t0 < 300:
        events += job.poll()
        time.sleep(0.02)
    events += job.poll()
    progress = [e for e in events if e.kind == "progress"]
    fractions = [e.fraction for e in progress]
    assert job.succeeded, [e.text for e in events]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    counted = [e for e in progress if re.search(r"network run \d+/\d+ \(ensemble: 2 members x \d+ windows?\)$", e.text)]
    assert counted and re.search(r"network run 0/\d+ ", counted[0].text), [e.text for e in progress]
    assert 0.0 < counted[0].fraction < 1.0
