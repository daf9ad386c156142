"""The cases' bar of ``lungai cohort`` / ``radiomics-batch`` with Dask workers between "N Dask workers started: N cases
sent" and a case's first step: the workers import their libraries meanwhile - said, with its seconds (QA
cohortfollow71)."""

from __future__ import annotations

import os
import re


WORKERS_LOADING = "workers loading their libraries"     # lungai.radiomics.cluster.WORKERS_LOADING


def test_the_workers_loading_their_libraries_is_said_with_its_seconds_until_a_case_says_a_step(monkeypatch, capsys):
    """QA cohortfollow71 (``lungai cohort`` of 2 patients, ``--workers 2``): the bar said "2 Dask workers started: 2
    cases sent" and then nothing for ~3 s while each worker imported its libraries before the patient's first step.
    Now "workers loading their libraries" follows, said again with its seconds while it stands
    (:func:`lungai.progress.timer_running`).  Here each case's import is a 2.6 s wait in the worker (a local function:
    sent to the workers by value)."""
    import lungai.radiomics.cluster as cluster
    from lungai.progress import TICK_INTERVAL, parse_line
    from lungai.radiomics.cluster import run_tasks

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")        # as the Slicer panel reads the CLI's progress
    monkeypatch.setattr(cluster, "warm_worker", os.getpid)      # no pyradiomics import at the start: a quick test

    def importing(item):
        import time

        time.sleep(2.6 * TICK_INTERVAL)      # the libraries' import before the case's first step (the slow part)
        return {"case": item, "status": "done", "error": ""}

    summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
    run_tasks("cohort", importing, ["P1", "P2"], ["P1", "P2"], (), lambda item: False, summary, 2, None)
    assert sorted(summary.done) == ["P1", "P2"], summary.failed
    shown = [parse_line(line)[1] for line in capsys.readouterr().err.splitlines()
             if line.startswith("LUNGAI_PROGRESS") and " cohort: " in line]
    sent = shown.index("cohort: 2 Dask workers started: 2 cases sent")
    first = next(i for i, text in enumerate(shown) if text.endswith(" done"))
    assert shown[sent + 1] == f"cohort: {WORKERS_LOADING}", shown
    timed = [text for text in shown[sent + 2:first] if re.fullmatch(rf"cohort: {WORKERS_LOADING} \(\d+ s\)", text)]
    assert timed, shown        # said again with its seconds while the workers import, before the first case ends
    assert not [text for text in shown[first:] if WORKERS_LOADING in text], shown     # not once a case has ended


def test_a_ctrl_c_says_the_workers_stopping_with_its_seconds(monkeypatch, capsys):
    """QA cohort72 (``lungai cohort`` of LUNG1-003 and a copy, ``--workers 2``, Ctrl-C as the second patient's
    radiomics began): 5-6 s passed without a word - the tasks cancelled and the local cluster closed - before "cohort:
    cancelled after 1 of 2 cases ...".  Now "cancelling: stopping the Dask workers" at once, said again with its
    seconds while it stands.  Here the Ctrl-C comes as the cases are sent, and closing takes 2.6 ticks."""
    import time

    import pytest

    import lungai.radiomics.cluster as cluster
    from lungai.progress import TICK_INTERVAL, parse_line
    from lungai.radiomics.cluster import run_tasks

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")        # as the Slicer panel reads the CLI's progress

    class Client:
        def subscribe_topic(self, *args):
            pass

        def submit(self, *args, **kwargs):
            raise KeyboardInterrupt     # Ctrl-C while the cases run

        def close(self, timeout=None):
            time.sleep(2.6 * TICK_INTERVAL)     # the workers stopping (the slow part)

    class Cluster:
        def close(self, timeout=None):
            pass

    monkeypatch.setattr(cluster, "local_cluster", lambda workers: (Cluster(), Client()))
    summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
    with pytest.raises(KeyboardInterrupt):
        run_tasks("cohort", dict, ["P1", "P2"], ["P1", "P2"], (), lambda item: False, summary, 2, None)
    err = capsys.readouterr().err
    shown = [parse_line(line)[1] for line in err.splitlines()
             if line.startswith("LUNGAI_PROGRESS") and " cohort: " in line]
    sent = shown.index("cohort: 2 Dask workers started: 2 cases sent")
    assert shown[sent + 1] == "cohort: cancelling: stopping the Dask workers", shown
    timed = [t for t in shown[sent + 2:] if re.fullmatch(r"cohort: cancelling: stopping the Dask workers \(\d+ s\)", t)]
    assert timed, shown
    assert "cohort: cancelled after 0 of 2 cases" in err, err


def test_stopping_the_workers_after_the_last_case_is_said_with_its_seconds(monkeypatch, capsys):
    """QA radfollow72 (``lungai radiomics-batch`` of pyradiomics' lung1, ``--workers 2``): 1-2.4 s passed without a
    word between "1/1 lung1 done" and the summary - the Dask client and local cluster closed.  Now "stopping the Dask
    workers" at once (as a Ctrl-C's "cancelling: stopping the Dask workers"), said again with its seconds while it
    stands, then "Dask workers stopped".  Here one real worker runs the case, and closing the cluster takes 2.6
    ticks more."""
    import time

    import lungai.radiomics.cluster as cluster
    from lungai.progress import TICK_INTERVAL, parse_line
    from lungai.radiomics.cluster import run_tasks

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")        # as the Slicer panel reads the CLI's progress
    monkeypatch.setattr(cluster, "warm_worker", os.getpid)      # no pyradiomics import at the start: a quick test
    started = cluster.local_cluster
    closed = []

    def slow_to_close(workers):
        local, client = started(workers)
        close = local.close

        def closing(*args, **kwargs):
            time.sleep(2.6 * TICK_INTERVAL)     # the workers stopping (the slow part on a loaded machine)
            closed.append(True)
            return close(*args, **kwargs)

        local.close = closing
        return local, client

    monkeypatch.setattr(cluster, "local_cluster", slow_to_close)

    def extracted(item):
        return {"case": item, "status": "done", "error": ""}

    summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
    run_tasks("radiomics-batch", extracted, ["lung1"], ["lung1"], (), lambda item: False, summary, 1, None)
    assert closed and summary.failed == [] and summary.done == ["lung1"]
    shown = [parse_line(line)[1] for line in capsys.readouterr().err.splitlines()
             if line.startswith("LUNGAI_PROGRESS") and " radiomics-batch: " in line]
    last = max(i for i, text in enumerate(shown) if text.endswith("lung1 done"))
    assert shown[last + 1] == "radiomics-batch: stopping the Dask workers", shown
    timed = [t for t in shown[last + 2:] if re.fullmatch(r"radiomics-batch: stopping the Dask workers \(\d+ s\)", t)]
    assert timed, shown
    assert shown[-1] == "radiomics-batch: Dask workers stopped", shown
