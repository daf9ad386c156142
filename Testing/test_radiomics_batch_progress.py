"""``lungai radiomics-batch`` says each case's steps while it runs (its CT read, its segments built, each segment
computed), as ``lungai cohort`` says a patient's: in a Dask worker on the cases' bar, in the plain loop on a bar of
the case's own.  QA rad67 (LUNG1-003's CT with its GTV and lung labels, pyradiomics' lung1 / lung2, 2 workers): the
cases' bar stood at "2 Dask workers started: 3 cases sent" and then said nothing for the 13 s of LUNG1-003's five
segments (minutes with LoG / Wavelet images on a whole CT) - the rule: progress for anything over ~2 s."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from lungai.radiomics import load_params
from lungai.radiomics.batch import run_batch
from lungai.radiomics.manifest import write_synthetic_cohort

PARAMS = load_params("default", feature_classes=["firstorder"])
SEGMENTS = ["tumour", "lungs_minus_tumour"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    return write_synthetic_cohort(folder, 2, seed=7)


def _records(err: str) -> list[str]:
    return [r for r in re.split(r"[\r\n]", err) if r.strip()]


def test_dask_workers_say_each_cases_steps_on_the_cases_bar(cohort, tmp_path, monkeypatch, capfd):
    """With 2 Dask workers (the default) each case's steps are messages of the cases' bar, naming the case - its
    inputs, then a step per segment -, the cases' own count untouched by them (a case's "radiomics 2/2" is never
    read as the batch's fraction by the Slicer panel) and no bar of a worker's own."""
    from lungai import progress
    from lungai.progress import PREFIX, parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    cases = pd.read_csv(cohort, dtype=str).case.tolist()
    capfd.readouterr()
    s = run_batch(cohort, tmp_path / "f.csv", PARAMS, workers=2, segments=SEGMENTS)
    assert sorted(s.done) == sorted(cases), s.failed
    shown = [parse_line(r) for r in _records(capfd.readouterr().err) if r.startswith(f"{PREFIX} ")]
    batch = [(f, t) for f, t in shown if t.startswith("radiomics-batch: ")]
    texts = [t for _, t in batch]
    for case in cases:
        assert any(re.search(rf"{case}: inputs \d/2", t) for t in texts), (case, texts)
        assert any(f"{case}: radiomics 1/2: tumour" in t for t in texts), (case, texts)
        assert any(f"{case}: radiomics 2/2: lungs_minus_tumour" in t for t in texts), (case, texts)
    # no line of a case's own (its count would be read as the batch's)
    assert [t for _, t in shown if not t.startswith("radiomics-batch: ")] == [], shown
    fractions = [f for f, _ in batch]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, batch


def test_the_plain_loop_draws_each_cases_steps(cohort, tmp_path, monkeypatch, capfd):
    """``--workers 0``: the case's steps on a bar of its own, beside the cases' bar (as ``lungai cohort``)."""
    from lungai.progress import PREFIX, parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    case = pd.read_csv(cohort, dtype=str).case.tolist()[0]
    capfd.readouterr()
    s = run_batch(cohort, tmp_path / "f.csv", PARAMS, workers=0, segments=SEGMENTS)
    assert case in s.done, s.failed
    texts = [parse_line(r)[1] for r in _records(capfd.readouterr().err) if r.startswith(f"{PREFIX} ")]
    own = [t for t in texts if t.startswith(f"radiomics-batch {case}: ")]
    assert f"radiomics-batch {case}: inputs: reading the CT" in own, own
    assert f"radiomics-batch {case}: inputs: 2 segments built" in own, own
    assert f"radiomics-batch {case}: radiomics: {case}: lungs_minus_tumour" in own, own
    # the CT is read, the segments built and computed in that order
    order = [own.index(f"radiomics-batch {case}: inputs: reading the CT"),
             own.index(f"radiomics-batch {case}: inputs: 2 segments built"),
             own.index(f"radiomics-batch {case}: radiomics: {case}: lungs_minus_tumour")]
    assert order == sorted(order), own


def _slow_segments(monkeypatch, seconds: float = 2.4):
    """The case's segments built in ``seconds`` (LUNG1-003's tumour and both lungs: 2.5 s)."""
    import time

    import lungai.radiomics.batch as B

    real = B._segments_for

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(B, "_segments_for", slow)


def test_a_long_input_step_of_the_plain_loop_is_said_with_its_seconds(cohort, tmp_path, monkeypatch, capfd):
    """QA radfollow68: ``radiomics-batch --workers 0`` on LUNG1-003 (tumour and both lungs, LUNGAI_PROGRESS=lines)
    stood 2.5 s on "inputs: building the segments" with no line; now the step is said again with its seconds every
    second while it runs (as ``lungai radiomics``'s, :func:`lungai.progress.timer_running`)."""
    from lungai.progress import PREFIX, parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    _slow_segments(monkeypatch)
    case = pd.read_csv(cohort, dtype=str).case.tolist()[0]
    one = cohort.with_name("one_case_slow.csv")      # beside the cohort's: its relative paths read from there
    pd.read_csv(cohort, dtype=str).head(1).to_csv(one, index=False)
    capfd.readouterr()
    s = run_batch(one, tmp_path / "f.csv", PARAMS, workers=0, segments=SEGMENTS)
    assert case in s.done, s.failed
    texts = [parse_line(r)[1] for r in _records(capfd.readouterr().err) if r.startswith(f"{PREFIX} ")]
    for seconds in (1, 2):
        assert f"radiomics-batch {case}: inputs: building the segments ({seconds} s)" in texts, texts
    assert texts.index(f"radiomics-batch {case}: inputs: 2 segments built") > texts.index(
        f"radiomics-batch {case}: inputs: building the segments (2 s)"), texts


def test_a_long_input_step_of_a_dask_worker_is_sent_with_its_seconds(cohort, tmp_path, monkeypatch):
    """The same in a Dask worker, where the case's steps are sent to the cases' bar (:func:`lungai.progress.
    forwarded`): ``timer_running`` said nothing there; now "<case>: inputs 1/2: building the segments (1 s)" is sent
    every second while the step runs."""
    from lungai.progress import forwarded
    from lungai.radiomics.batch import process_case, read_manifest

    _slow_segments(monkeypatch)
    row = read_manifest(cohort)[0]
    sent: list = []
    with forwarded(sent.append):
        result = process_case(row, PARAMS, SEGMENTS, str(tmp_path), manifest=str(cohort))
    assert result["status"] == "done", result
    desc = f"radiomics-batch {row['case']}: inputs"
    for seconds in (1, 2):
        assert f"{desc} 1/2: building the segments ({seconds} s)" in sent, sent
    assert sent.index(f"{desc} 2/2: 2 segments built") > sent.index(f"{desc} 1/2: building the segments (2 s)"), sent


_START = '''
import json, sys
from lungai.radiomics import cluster

class Bar:                      # the cases' bar: what it is told, and whether Dask was imported by then
    def __init__(self):
        self.seen = []

    def update(self, n, message=None):
        self.seen.append([n, message, "distributed" in sys.modules])

class Stop(Exception):
    pass

def stop(*args, **kwargs):
    raise Stop

cluster.local_cluster = cluster.connect_scheduler = stop
said = {}
for scheduler in (None, "tcp://127.0.0.1:8786"):
    bar = Bar()
    before = "distributed" in sys.modules
    try:
        cluster.map_on_dask(print, [1, 2], ["c1", "c2"], (), 2, scheduler, print, progress=bar)
    except Stop:
        pass
    said[str(scheduler)] = {"before": before, "seen": bar.seen}
print(json.dumps(said))
'''


def test_the_dask_start_is_said_before_dask_is_imported(tmp_path):
    """QA cohort70 (``lungai radiomics-batch`` of pyradiomics' lung1 / lung2, 2 workers, a shared machine): the cases'
    bar stood 1-2 s at "radiomics-batch: 0/2" before "starting 2 local Dask workers" - the time of importing
    dask.distributed, said only after it; with ``--scheduler`` nothing was said until the scheduler answered (up to
    10 s).  What happens is said at once, before Dask is imported (a fresh process: Dask not imported yet), then
    with its seconds while it runs (lungai.progress.timer_running) - for ``lungai cohort`` too (one function)."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    said = json.loads(run.stdout.strip().splitlines()[-1])
    local, remote = said["None"], said["tcp://127.0.0.1:8786"]
    assert local["before"] is False, local            # the test's premise: Dask not imported before the start
    assert local["seen"][:1] == [[0, "starting 2 local Dask workers", False]], local
    assert remote["seen"][:1] == [[0, "connecting to the Dask scheduler at tcp://127.0.0.1:8786",
                                   remote["before"]]], remote
