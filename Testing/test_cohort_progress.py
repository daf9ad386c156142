"""lungai cohort's progress display: one coherent display with Dask workers (their patients' steps said on the main
process's bar, no bar of their own), the counts whole in an 80-column terminal."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk

from cohort_helpers import PARAMS, export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import run_cohort


def _mapping(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text("Tumour_big: gtv_primary\n", encoding="utf-8")     # P3's GTV: no automatic tumour (fast)
    return p


@pytest.mark.parametrize("mode", ["bar", "lines"])
def test_dask_workers_draw_no_bars_their_steps_are_on_the_cohorts_bar(export, tmp_path, monkeypatch, capfd, mode):
    """QA cohortbar65, `lungai cohort EXPORT -o OUT --workers 2` in a terminal: each Dask worker drew its patient's
    bars ("cohort P1: inputs", "cohort P2: radiomics" ...) on the terminal the main process draws its "cohort" bar on
    - two workers' bars on that bar's line, the tumour's moving the cursor up over it: a garbled terminal; with
    ``LUNGAI_PROGRESS=lines`` (the Slicer panel) the workers' lines, whose counts the panel reads as the cohort's
    progress (P1's "radiomics 5/5" at 0 of 3 patients).  The workers (sharing this test's stderr) now draw nothing:
    their steps are messages on the cohort's bar, each naming its patient."""
    from lungai import progress
    from lungai.progress import PREFIX, parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", mode)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)   # stderr no terminal here: each step drawn, not every 10 s
    out = tmp_path / "out"
    capfd.readouterr()
    s = run_cohort(export, out, PARAMS, workers=2, mapping=_mapping(tmp_path))
    assert sorted(s.done) == ["P1", "P2", "P3"], s.failed
    err = capfd.readouterr().err
    records = [r for r in re.split(r"[\r\n]", err) if r.strip()]
    # no patient's bar of its own: the workers drew none ("cohort P1: inputs:   0%|...")
    assert not [r for r in records if re.search(r"cohort P\d: (inputs|lungs|tumour|radiomics)", r)], records
    if mode == "lines":
        cohort = [parse_line(r) for r in records if r.startswith(f"{PREFIX} ")]
        cohort = [(f, text) for f, text in cohort if text.startswith("cohort: ") and "scanning DICOM" not in text
                  and not text.startswith("cohort: planning")]      # the scan's and the planning's own bars
        texts = [text for _, text in cohort]
    else:
        texts = [r for r in records if r.startswith("cohort: ")]
    for case in ("P1", "P2", "P3"):          # each patient's steps said on the cohort's bar, its count first
        assert any(re.search(rf"{case}: inputs \d/\d", t) for t in texts), (case, texts)
        # one count per level, each next to its name (QA lungsfollow66: "P1: lungs 1/7 smoothing the CT 0/12")
        assert any(f"{case}: radiomics 5/5: lungs_minus_tumour" in t for t in texts), (case, texts)
    if mode == "lines":     # the cohort's own fraction: never a patient's ("radiomics 5/5" while 0 of 3 are done)
        fractions = [f for f, _ in cohort]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, fractions


def test_in_a_log_the_workers_steps_are_said_every_log_interval(monkeypatch):
    """With stderr a log file (each drawing of the bar a record) the steps the workers send are said at most every
    LOG_INTERVAL seconds, as a bar is drawn there - not a record per network run of every patient; in a terminal
    (and as LUNGAI_PROGRESS lines) each is said."""
    from lungai.dask_workers import ProgressRelay
    from lungai.progress import LOG_INTERVAL, TICK_INTERVAL

    class Bar:
        def __init__(self, tick_interval):
            self.tick_interval, self.said = tick_interval, []

        def update(self, n=1, message=None):
            self.said.append(message)

    now = [100.0]
    for interval, expected in ((LOG_INTERVAL, ["P1: lungs 0/5", "P1: lungs 1/5; P2: tumour 1/3: network run 9/144"]),
                               (TICK_INTERVAL, [f"P{i % 2 + 1}: step {i}" for i in range(4)])):
        bar = Bar(interval)
        relay = ProgressRelay(bar)
        relay._clock = lambda: now[0]
        steps = ([(0.0, "P1", "P1: lungs 0/5"), (LOG_INTERVAL / 10, "P2", "P2: inputs 1/3: CT read"),
                  (LOG_INTERVAL / 5, "P1", "P1: lungs 1/5"),
                  (LOG_INTERVAL + 1, "P2", "P2: tumour 1/3: network run 9/144")] if interval == LOG_INTERVAL else
                 [(0.1 * i, f"P{i % 2 + 1}", f"P{i % 2 + 1}: step {i}") for i in range(4)])
        for t, case, text in steps:
            now[0] = 100.0 + t
            relay((now[0], {"case": case, "text": text}))
        assert bar.said == expected, (interval, bar.said)
    with relay.delivered("P1"):      # a step of a case whose result was said: not said again
        pass
    relay((0, {"case": "P1", "text": "P1: radiomics 5/5 lungs"}))
    relay.stop()
    relay((0, {"case": "P2", "text": "P2: radiomics 5/5 lungs"}))
    assert bar.said == expected


def test_in_a_log_every_patients_last_step_is_said_not_only_the_busiest_workers():
    """QA cohortfollow66: `lungai cohort EXPORT -o OUT --workers 2 2> log` on LUNG1-003 and a copy of it under new
    IDs (LUNG1-003B) - the log held LUNG1-003's steps only ("inputs 0/5", "inputs 2/5 CT read", ... "radiomics 2/5
    right_lung"), never one of LUNG1-003B's: each LOG_INTERVAL the first step to come after it was said, the others
    dropped, and a worker sending a step every second (a count of network runs, of radiomics masks) always came
    first.  Each record now says every patient's last step, still one record per LOG_INTERVAL; a patient whose
    result was said leaves it."""
    from lungai.dask_workers import ProgressRelay
    from lungai.progress import LOG_INTERVAL

    class Bar:
        tick_interval = LOG_INTERVAL

        def __init__(self):
            self.said = []

        def update(self, n=1, message=None):
            self.said.append(message)

    bar, now = Bar(), [0.0]
    relay = ProgressRelay(bar)
    relay._clock = lambda: now[0]
    seconds = 6 * int(LOG_INTERVAL)
    steps = sorted([(float(t), "P1", f"P1: tumour 1/3 network run {t}/144") for t in range(seconds)]     # busy
                   + [(t + 0.5, "P2", f"P2: radiomics {t // int(LOG_INTERVAL)}/5")                       # slow
                      for t in range(0, seconds, int(LOG_INTERVAL))])
    for t, case, text in steps:
        now[0] = t
        relay((t, {"case": case, "text": text}))
    assert len(bar.said) <= seconds / LOG_INTERVAL + 1, bar.said           # a record per interval, no more
    for case in ("P1", "P2"):
        assert sum(f"{case}: " in m for m in bar.said) >= len(bar.said) - 1, (case, bar.said)
    assert bar.said[-1] == f"P1: tumour 1/3 network run {seconds - int(LOG_INTERVAL)}/144; P2: radiomics 4/5", \
        bar.said
    with relay.delivered("P1"):     # P1's result said: the next record is P2's alone
        pass
    now[0] += LOG_INTERVAL
    relay((now[0], {"case": "P2", "text": "P2: radiomics 5/5"}))
    assert bar.said[-1] == "P2: radiomics 5/5", bar.said


def test_an_80_column_terminal_shows_a_patients_whole_network_runs_count(tmp_path, monkeypatch):
    """QA cohortbar65: the patients' bars of `lungai cohort` showed tqdm's steps per second, and in an 80-column
    terminal a real patient ID's automatic tumour bar was cut before its count's end: "cohort LUNG1-003: tumour:
    33%|▎| 1/3 [00:00<00:00,  3.78it/s, network run 106/1" (the rate of steps of different kinds says nothing).  The
    cohort's bars show no rate, as `lungai segment`'s (test_seg_progress): the count fits, up to its total.  Run with
    --workers 0 (the bars drawn in this process), the segmentation standing in: it counts its network runs as
    lungai.seg.predict does."""
    import sys
    from types import SimpleNamespace

    import tqdm.std
    from dicom_helpers import small_phantom
    from test_seg_progress import _Terminal

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io
    from lungai import progress
    from lungai.dicom.synthetic import write_rt_study
    from lungai.progress import Counter, SubProgress

    root = tmp_path / "export"
    write_rt_study(root, small_phantom(9), "LUNG1-003", dose=None, names={"gtv": "Tumour_big"})   # no GTV
    total = 144

    def segment_tumour(ct, model, progress=None, **kw):
        progress.update(1, "ROI lungs (59, 40, 35)")
        count = Counter(SubProgress(progress, ""), "network run", total, "ensemble: 3 members x 12 windows x 4 flips")
        for _ in range(total):
            count.tick()
        progress.update(1, "ensemble: 3 maps")
        arr = np.zeros(sitk.GetArrayFromImage(ct).shape, np.uint8)
        z, y, x = (n // 2 for n in arr.shape)
        arr[z - 3:z + 3, y - 4:y + 4, x - 4:x + 4] = 1
        tumour = sitk.GetImageFromArray(arr)
        tumour.CopyInformation(ct)
        progress.update(1, "mapped to input grid")
        return SimpleNamespace(tumour=tumour, info={"confidence": 0.9, "needs_review": False, "notes": [],
                                                    "review_reasons": []})

    monkeypatch.setattr(infer, "segment_tumour", segment_tumour)
    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    monkeypatch.setattr(tqdm.std, "_screen_shape_wrapper", lambda: (lambda fp: (79, 40)))      # an 80-column terminal
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.0)      # every count drawn
    s = run_cohort(root, tmp_path / "out", PARAMS, workers=0)
    assert s.done == ["LUNG1-003"], s.failed
    drawn = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", r) for r in term.buf.getvalue().replace("\n", "\r").split("\r")]
    drawn = [r for r in drawn if r.startswith("cohort")]
    assert all(len(r) <= 79 for r in drawn), [r for r in drawn if len(r) > 79][:3]
    runs = [r for r in drawn if "network run" in r]
    assert len(runs) > 100, runs
    counts = [re.search(r"network run (\d+)/(\d+)", r) for r in runs]
    assert all(counts), [r for r, c in zip(runs, counts) if not c][:3]     # every drawing shows the whole count
    assert {int(c[2]) for c in counts} == {total} and int(counts[-1][1]) == total, runs[-1]
    rated = [r for r in drawn if re.search(r"it/s|s/it", r) and not r.startswith("cohort: scanning DICOM")]
    assert not rated, rated[:3]          # the scan's files per second kept: a rate of steps of one kind


def test_the_planning_after_the_scan_counts_the_patients(export, monkeypatch):
    """QA cohort70 (five copies of LUNG1-003's DICOM, a shared machine): after "cohort: scanning DICOM: 538/538" the
    terminal said nothing for 3.5 s (about 0.7 s a patient: each RTSTRUCT read, each CT's slices checked and hashed -
    a minute for 100 patients) until the inventory.  The planning has a bar of its own, a step per patient as it is
    planned (event-driven: the steps recorded beside the checks of each CT's slices)."""
    import contextlib

    from lungai.dicom import cohort, pixeldata

    events: list = []

    class Bar:
        def __init__(self, desc):
            self.desc = desc

        def update(self, n=1, message=None):
            events.append(("step", self.desc, n, message))

    @contextlib.contextmanager
    def recorded(desc, total, enabled=True, rate=True):
        events.append(("open", desc, total, None))
        yield Bar(desc)
        events.append(("close", desc, total, None))

    checked = pixeldata.check_ct_files

    def check_ct_files(files, *args, **kwargs):
        events.append(("checked", None, len(files), None))
        return checked(files, *args, **kwargs)

    monkeypatch.setattr(cohort, "task", recorded)
    monkeypatch.setattr(pixeldata, "check_ct_files", check_ct_files)
    jobs, inventory = cohort.plan_cohort(export)
    planning = [e for e in events if e[1] == "cohort: planning"]
    assert planning and planning[0] == ("open", "cohort: planning", len(inventory), None), events
    steps = [e for e in planning if e[0] == "step"]
    assert sum(e[2] for e in steps) == len(inventory) and planning[-1][0] == "close", planning
    cases = [j.case for j in jobs]
    assert [e[3] for e in steps if e[3] in cases] == cases, steps
    # each CT's step said once it is planned, before the next CT is checked: not all at the end
    order = [e[0] if e[0] == "checked" else e[3] for e in events
             if e[0] == "checked" or (e[0] == "step" and e[1] == "cohort: planning" and e[3] in cases)]
    assert order == [x for case in cases for x in ("checked", case)], order
