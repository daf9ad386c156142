"""A Ctrl-C while a ``lungai.progress.waiting`` call runs (pyradiomics computing a segment in its daemon thread): the
process waits for that call before Python's exit, which ended the thread inside the native call - glibc aborted the
process (QA cohort71: ``lungai cohort LUNG1-003 --workers 0``, Ctrl-C during "computing lungs": "FATAL: exception not
rethrown", exit status 134 instead of 130)."""
from __future__ import annotations

import _thread
import threading

import pytest


class _Said:
    """stderr: each line written, and an event set once ``wanted`` was in it."""

    def __init__(self, wanted: str):
        self.text, self.wanted, self.seen = "", wanted, threading.Event()

    def write(self, text):
        self.text += text
        if self.wanted in self.text:
            self.seen.set()
        return len(text)

    def flush(self):
        pass


def test_a_call_left_running_by_a_ctrl_c_is_waited_for_before_the_exit(monkeypatch):
    from lungai import cli
    from lungai.progress import calls_left_running, waiting

    started, release, finished = threading.Event(), threading.Event(), []

    def call():
        started.set()
        _thread.interrupt_main()         # the Ctrl-C comes while the call runs
        release.wait(60)
        finished.append(True)

    class Bar:
        tick_interval = 0.05

        def update(self, n=1, message=None):
            pass

    with pytest.raises(KeyboardInterrupt):
        waiting(Bar(), "computing lungs", call)
    assert started.is_set() and len(calls_left_running()) == 1 and not finished

    said = _Said("waiting for the step that was running to end")
    monkeypatch.setattr(cli.sys, "stderr", said)
    ended = threading.Event()
    exiting = threading.Thread(target=lambda: (cli._wait_for_calls_left_running(), ended.set()))
    exiting.start()
    assert said.seen.wait(60), said.text         # said before it waits
    assert not ended.is_set() and not finished   # waits: the call has not ended
    release.set()
    exiting.join(60)
    assert ended.is_set() and finished == [True] and not calls_left_running()
    assert "press Ctrl-C again to end at once" in said.text


def test_nothing_is_said_or_waited_for_without_such_a_call(monkeypatch):
    from lungai import cli

    said = _Said("waiting")
    monkeypatch.setattr(cli.sys, "stderr", said)
    cli._wait_for_calls_left_running()
    assert said.text == ""


_COMMAND = r'''
import _thread, sys, time
from pathlib import Path

import lungai.cli.cohort as command
from lungai import cli

finished, log = Path(sys.argv[1]), Path(sys.argv[2])


def call():     # one native call of pyradiomics' as the Ctrl-C comes: it ends once the exit waits for it
    _thread.interrupt_main()
    while "waiting for the step that was running to end" not in log.read_text(encoding="utf-8"):
        time.sleep(0.01)     # Python's exit (without the wait) ends this thread here, never past it
    finished.write_text("finished", encoding="utf-8")


def run(args):
    from lungai.progress import task, waiting

    with task("cohort", 1) as bar:
        waiting(bar, "computing lungs", call)


command.run = run
sys.argv = ["lungai", "cohort", "export", "-o", "out"]
sys.exit(cli.main())
'''


def test_the_command_line_waits_for_the_call_before_its_exit(tmp_path):
    """The console script's process (lungai.cli.main() of its own command line): cancelled (status 130), the call
    left running ended before the exit, said on stderr."""
    import os
    import subprocess
    import sys

    finished, log = tmp_path / "finished", tmp_path / "stderr.txt"
    with open(log, "w", encoding="utf-8") as err:
        run = subprocess.run([sys.executable, "-c", _COMMAND, str(finished), str(log)], stderr=err,
                             stdout=subprocess.DEVNULL, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    said = log.read_text(encoding="utf-8")
    assert run.returncode == 130, said
    assert finished.is_file(), said        # the call ended: not cut off by the exit
    assert "lungai cohort: cancelled" in said and "press Ctrl-C again to end at once" in said, said
