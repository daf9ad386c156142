"""The ``lungai`` command line: sample and lungs end to end, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.cli import main


def test_help_lists_commands(capsys):
    import pytest

    from lungai.cli import COMMAND_MODULES

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ["sample", "lungs", "segment", "train-seg", "eval-seg", "radiomics", "ibsi-check",
                    "dose-features", "radiomics-batch", "rp", "stage", "demo"]:
        assert command in out, command
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_sample_then_lungs(tmp_path, capsys):
    out = tmp_path / "case"
    assert main(["sample", "-o", str(out), "--diameter", "25", "--location", "free", "--slice-thickness", "5"]) == 0
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["tumour"]["diameter_mm"] == 25 and meta["spec"]["spacing"][2] == 5
    assert main(["lungs", str(out / "ct.nii.gz"), "-o", str(out / "lungs.nii.gz")]) == 0
    lungs = sitk.ReadImage(str(out / "lungs.nii.gz"))
    ct = sitk.ReadImage(str(out / "ct.nii.gz"))
    assert lungs.GetSize() == ct.GetSize() and lungs.GetOrigin() == ct.GetOrigin()
    assert set(np.unique(sitk.GetArrayFromImage(lungs))) == {0, 1, 2}
    assert "right lung" in capsys.readouterr().out


def test_errors_are_reported_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lungai", "lungs", str(tmp_path / "missing.nii.gz"),
                           "-o", str(tmp_path / "x.nii.gz")], capture_output=True, text=True,
                          env={"LUNGAI_PROGRESS": "off", "PATH": ""})
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "How to fix" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_progress_lines_for_slicer(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lungai", "sample", "-o", str(tmp_path / "s"), "--no-tumour"],
                          capture_output=True, text=True, env={"LUNGAI_PROGRESS": "lines", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    from lungai.progress import parse_line

    parsed = [parse_line(line) for line in proc.stderr.splitlines()]
    # the phantom's 3 steps (its anatomy, "no tumour", the noise: test_sample_counts_the_phantoms_steps), written;
    # between them the seconds of making the phantom and of the writes (test_sample_says_the_seconds_of_its_steps)
    parsed = [p for p in parsed if p and not p[1].startswith(SAMPLE_WAITING)]
    assert [p[0] for p in parsed] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [p[1] for p in parsed][2] == "sample: no tumour"

    assert parse_line("LUNGAI_PROGRESS 1/4 segment: member 1") == (0.25, "segment: member 1")
    assert parse_line("something else") is None


@pytest.mark.parametrize("dicom", [[], ["--dicom"]])
def test_sample_counts_the_phantoms_steps(tmp_path, monkeypatch, capsys, dicom):
    """QA firstbar64 (lungai sample on a shared machine): the bar stood at 0/2 for the 5-9 s the built-in sample
    took to make (its anatomy ~60 %, the tumour ~25 %, the noise), then jumped.  The phantom's own steps move it now,
    said, then each output written; the count ends at the bar's total."""
    from lungai.progress import parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    assert main(["sample", "-o", str(tmp_path / "s"), "--slice-thickness", "5", *dicom]) == 0
    shown = [parse_line(line) for line in capsys.readouterr().err.splitlines() if parse_line(line)]
    shown = [(f, t) for f, t in shown if not t.startswith(SAMPLE_WAITING)]     # the seconds of a step said
    steps = ["anatomy built", "tumour planted", "slices averaged, noise added", "written",
             *(["DICOM RT export"] if dicom else [])]
    assert [t.removeprefix("sample: ") for _, t in shown] == ["start", *steps]
    assert [round(f * len(steps)) for f, _ in shown] == list(range(len(steps) + 1))    # a step each, ending full


# what lungai sample says while a step runs, then its seconds (message-only updates: no step counted)
SAMPLE_WAITING = ("sample: making the phantom", "sample: writing ct.nii.gz, labels.nii.gz, meta.json",
                  "sample: writing the DICOM RT export",
                  # the phantom's steps after its anatomy, said as they start (QA demofollow68)
                  "sample: planting the tumour", "sample: averaging the slices, adding noise")


def test_sample_says_the_seconds_of_its_steps(tmp_path, monkeypatch):
    """QA demo68 (README's first command ``lungai sample -o case/``, stderr to a log, timestamped): "sample: 0/4"
    then 17 s without a line until "anatomy built", 6 s more to "tumour planted" (a loaded 2-core machine; 7 s and
    2 s idle).  Making the phantom and writing its files now say what runs at once, then its seconds (every 2 s in a
    log; every 0.05 s here), the phantom's own steps counted as before."""
    import contextlib
    import io
    import re

    from lungai import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    err = io.StringIO()          # no terminal: a log's plain lines
    with contextlib.redirect_stderr(err):
        assert main(["sample", "-o", str(tmp_path / "s"), "--slice-thickness", "5"]) == 0
    lines = err.getvalue().splitlines()
    assert "sample: 0/4 [00:00] making the phantom" in lines, lines
    making = [line for line in lines if re.fullmatch(r"sample: [0-3]/4 \[\d\d:\d\d\] making the phantom \(\d+ s\)", line)]
    assert len(making) >= 2, lines
    counts = [int(line.split(": ", 1)[1].split("/")[0]) for line in making]
    assert counts == sorted(counts), lines                       # the phantom's own steps go on being counted
    assert any(line.startswith("sample: 3/4 ") for line in lines), lines      # its 3 steps counted meanwhile
    assert any(line.startswith("sample: 3/4 ") and line.endswith("writing ct.nii.gz, labels.nii.gz, meta.json")
               for line in lines), lines
    assert lines[-1].startswith("sample: 4/4 ") and lines[-1].endswith("written"), lines


def test_progress_bar_draws_a_message_without_a_step(monkeypatch):
    """update(0, message) - a sub-step of a long step (the growing-box passes of seeded segmentation, the lung
    segmentation's steps) - is drawn on the terminal's bar at once, not only at the next step."""
    import io

    from lungai.progress import task

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    with task("segment", 3) as bar:
        bar.update(1, "member 1")
        bar.update(0, "pass 2")
        shown = err.getvalue()
    assert "pass 2" in shown
    assert "1/3" in shown.rsplit("pass 2", 1)[0].rsplit("\r", 1)[-1]   # no step counted for it


def test_progress_in_a_log_writes_a_few_records_not_one_per_step(monkeypatch):
    """QA: with stderr redirected to a log, every step was drawn twice (refresh() after tqdm's own draw) and a
    cohort scan wrote one record per DICOM file.  In a log the bar is drawn every LOG_INTERVAL seconds (a
    message-only update still at once); in a terminal it is drawn in place as before."""
    import io

    from lungai.progress import task

    err = io.StringIO()                       # no terminal (isatty False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    with task("cohort: scanning DICOM", 1000) as bar:
        for i in range(1000):
            bar.update(1, f"slice{i:04d}.dcm")
        bar.update(0, "writing the table")
    records = [r for r in err.getvalue().replace("\n", "\r").split("\r") if r.strip()]
    assert len(records) <= 5, records
    assert any("writing the table" in r for r in records)


def test_a_bars_last_state_is_recorded_in_a_log(monkeypatch):
    """QA cohortread66: ``lungai cohort`` on LUNG1-003 and a copy of it (2 Dask workers) with stderr to a log: its last
    record of the cases' bar was "1/2 [01:13<01:13, LUNG1-003B done]" - "LUNG1-003 done" and 2/2 never written (the
    last case finished within LOG_INTERVAL of the record before, and the bar was closed without a draw).  In a log a
    bar's last state is drawn as it closes (one record more, none when it was drawn already)."""
    import io

    from lungai.progress import task

    err = io.StringIO()                       # no terminal (isatty False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    with task("cohort", 2, rate=False) as bar:
        bar.update(1, "P1 done")
        bar.update(1, "P2 done")
    records = [r for r in err.getvalue().replace("\n", "\r").split("\r") if r.strip()]
    assert "2/2" in records[-1] and "P2 done" in records[-1], records
    assert len(records) <= 3, records
    err.seek(0)
    err.truncate()
    with task("cohort", 1, rate=False) as bar:      # drawn already (a message alone): not drawn twice
        bar.update(0, "writing the table")
    records = [r for r in err.getvalue().replace("\n", "\r").split("\r") if r.strip()]
    assert sum("writing the table" in r for r in records) == 1, records


def test_progress_in_a_log_is_plain_lines_without_cursor_codes():
    """QA demofollow67: ``lungai demo ... > log 2>&1`` - the nested bars ("rp train", "synthetic cohort CT" inside the
    demo's) wrote tqdm's carriage returns and cursor-up codes (``ESC[A``) into the log.  In a log (stderr a pipe)
    each record is now a plain line naming its task, its count and its message."""
    import textwrap

    script = textwrap.dedent("""
        from lungai.progress import task, write

        with task("demo", 3) as demo:
            demo.update(1, "lungs")
            with task("rp train", 2) as inner:
                inner.update(1, "fold 1")
                write("warning: a note said during a step")
                inner.update(1, "fold 2")
            demo.update(0, "report figures")
            demo.update(2, "report.html")
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"LUNGAI_PROGRESS": "bar", "PATH": ""})     # stderr a pipe, as a log file
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr, repr(proc.stderr)
    lines = proc.stderr.splitlines()
    assert "warning: a note said during a step" in lines, lines       # a line of its own
    import re

    for line in lines:      # each a record of its own: the task, its count, the time, the message
        assert line.startswith("warning") or re.fullmatch(r"(demo|rp train): \d/\d \[\d\d:\d\d\]( .+)?", line), lines
    assert "demo: 1/3 [00:00] report figures" in lines, lines         # a message alone: said at once
    assert any(line.startswith("rp train: 2/2 ") and line.endswith("fold 2") for line in lines), lines
    assert lines[-1].startswith("demo: 3/3 ") and lines[-1].endswith("report.html"), lines


def test_a_steps_start_in_a_log_is_said_when_the_next_line_is_due(monkeypatch):
    """QA radfollow68: ``lungai radiomics`` on LUNG1-003 with stderr to a log - "building the segments" came within
    2 s of the line before ("reading the CT (2 s)") and was throttled: the log went from the CT's reading to
    "building the segments (2 s)", the step's start never said (a step of 4 s with no line in a log without
    timer_running).  A change of message is now said when the next line is due (LOG_INTERVAL after the last one),
    while the step runs; a count alone (the same message) stays throttled."""
    import io
    import time

    from lungai import progress
    from lungai.progress import task

    err = io.StringIO()                       # no terminal (isatty False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.4)
    with task("radiomics: inputs", 2, rate=False) as bar:
        bar.update(0, "reading the CT")                 # said at once (a message alone)
        bar.update(1, "building the segments")          # within LOG_INTERVAL of it: not at once
        assert "building the segments" not in err.getvalue(), err.getvalue()
        time.sleep(1.0)                                 # the step runs on: said when the next line was due
        during = err.getvalue().splitlines()
        bar.update(1, "2 segments built")
    assert during[-1].startswith("radiomics: inputs: 1/2 [") and during[-1].endswith("] building the segments"), \
        during
    assert sum("building the segments" in line for line in err.getvalue().splitlines()) == 1, err.getvalue()
    err.seek(0)
    err.truncate()
    with task("network", 10, rate=False) as bar:        # counts of one message: throttled as before
        bar.update(0, "network run")
        for _ in range(3):
            bar.update(1, "network run")
        time.sleep(1.0)
        during = err.getvalue().splitlines()
    assert len(during) == 2 and during[-1].endswith("0/10 [00:00] network run"), during
    assert err.getvalue().splitlines()[-1].startswith("network: 3/10 "), err.getvalue()     # said as it closes


def test_a_long_step_in_a_log_is_said_every_two_seconds(monkeypatch):
    """QA demofollow67: with the demo's stderr to a log, "report figures" stood 5.6 s and "writing scene.mrb" ~11 s
    without a record (a log's bar was drawn every 10 s).  A long call under :func:`lungai.progress.waiting` in a log
    now says its seconds at least every ~2 s."""
    import io
    import time

    from lungai.progress import task, waiting

    err = io.StringIO()                       # no terminal (isatty False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    with task("demo", 2) as bar:
        waiting(bar, "writing scene.mrb", time.sleep, 4.6)
        bar.update(1, "scene.mrb")
    said = [r for r in err.getvalue().splitlines() if "writing scene.mrb" in r]
    assert len(said) >= 3 and said[0].endswith("writing scene.mrb"), said       # at once, then about every 2 s
    assert said[1].endswith("(2 s)") and said[2].endswith("(4 s)"), said


def test_a_library_warning_during_a_bar_is_a_line_of_its_own_once_per_command():
    """QA progwarn63: a warning that is no InputNote (numpy's RuntimeWarning, a UserWarning of SimpleITK, torch,
    scikit-learn ...) raised while a progress bar was drawn was printed straight to stderr - glued to the end of the
    bar's line (``cohort:   0%|...| 0/3 [00:00<?, ?it/s]/.../fromnumeric.py:3824: RuntimeWarning: ...``) - and said
    again for each patient of a cohort (each patient's ``warnings_as_notes`` block passes it on anew).  Now it is
    printed as Python words it, on lines of its own, once in the command; the InputNotes as before."""
    import textwrap

    script = textwrap.dedent("""
        import numpy as np
        import warnings
        from lungai.cli import _input_notes
        from lungai.errors import InputNote, warnings_as_notes
        from lungai.progress import task

        with _input_notes(), task("cohort", 3) as bar:
            for case in ("P1", "P2", "P3"):
                notes = []
                with warnings_as_notes(InputNote, notes):   # a cohort patient's notes recorded, others passed on
                    np.mean(np.array([]))                    # numpy: "Mean of empty slice"
                    warnings.warn(InputNote(f"{case}: a scout left out"))
                bar.update(1, case)
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"LUNGAI_PROGRESS": "bar", "PATH": ""})     # stderr a pipe: the bar as in a log
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.split("\n") if "RuntimeWarning: Mean of empty slice" in line]
    assert len(said) == 1, proc.stderr                           # once, not once per patient
    assert "\r" not in said[0] and "it/s" not in said[0], said    # a line of its own, not the bar's
    assert said[0].split(":")[0].endswith(".py")                 # as Python words it: where it was raised
    assert "\n  return _methods._mean" in proc.stderr              # and its source line, on the next line
    for case in ("P1", "P2", "P3"):                              # the patients' own notes kept (recorded, not said)
        assert f"{case}: a scout left out" not in proc.stderr


def test_input_is_never_overwritten(tmp_path):
    main(["sample", "-o", str(tmp_path), "--no-tumour"])
    ct = tmp_path / "ct.nii.gz"
    before = ct.read_bytes()
    assert main(["lungs", str(ct), "-o", str(ct)]) == 2
    assert ct.read_bytes() == before


def test_demo_refuses_a_folder_the_user_made(tmp_path):
    mine = tmp_path / "my_files"
    mine.mkdir()
    (mine / "report.html").write_text("my own report", encoding="utf-8")
    assert main(["demo", "-o", str(mine), "--small"]) == 2
    assert (mine / "report.html").read_text(encoding="utf-8") == "my own report"


def _all_parsers(parser, path="lungai"):
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _all_parsers(child, f"{path} {name}")


def test_options_are_never_abbreviated(tmp_path, capsys):
    """QA: ``lungai rp synth -o c.csv --n 120`` (meaning ``-n 120``) was taken by argparse as the prefix of
    ``--noise-features``: 300 patients with 120 noise features, exit 0.  Every parser and sub-parser refuses a prefix
    of an option (allow_abbrev=False) - the command line is read as written or not at all."""
    import pytest

    from lungai.cli import build_parser
    from lungai.cli.seg import command_parser

    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 20
    for path, parser in parsers + [(f"command_parser({c})", command_parser(c)) for c in ("segment", "train-seg")]:
        assert parser.allow_abbrev is False, path
    out = tmp_path / "c.csv"
    with pytest.raises(SystemExit) as exc:
        main(["rp", "synth", "-o", str(out), "--n", "120"])
    assert exc.value.code == 2 and "--n 120" in capsys.readouterr().err and not out.exists()
    for argv in (["stage", "synth", "-o", str(tmp_path / "s"), "--pat", "12"],      # --patients
                 ["rp", "train", str(out), "--outcome", "y", "-o", str(tmp_path / "m"), "--outer", "3"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 2, argv
    args = build_parser().parse_args(["rp", "synth", "-o", str(out), "-n", "120"])      # as written: 120 patients
    assert args.n == 120 and args.noise_features == 16


def test_benchmark_and_tool_parsers_are_never_abbreviated():
    """The scripts' own parsers (benchmarks/, tools/) follow the rule of the ``lungai`` parsers."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    calls = [(p.name, m.group(0)) for p in sorted([*root.glob("benchmarks/*.py"), *root.glob("tools/*.py")])
             for m in re.finditer(r"ArgumentParser\([^)]*\)?", p.read_text(encoding="utf-8"))]
    assert calls
    assert [c for c in calls if "allow_abbrev=False" not in c[1]] == []
