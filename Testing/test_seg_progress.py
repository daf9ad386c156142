"""Progress of the segmentation's inference: its network runs counted on the progress object (lungai.progress.Counter
through lungai.seg.predict.predict_probs), the steps unchanged.  The network is test_seg_grow's oracle."""

import numpy as np
import pytest
import torch

from lungai.seg import infer
from seg_helpers import ProgressRecorder
from test_seg_grow import Oracle, _ct, _model


class _Dropped(torch.nn.Module):
    """The oracle network with a dropout layer (rate 0: the same output), so MC dropout runs on it."""

    def __init__(self):
        super().__init__()
        self.oracle, self.drop = Oracle(), torch.nn.Dropout3d(0.0)

    def forward(self, x):
        return self.drop(self.oracle(x))


_Recorder = ProgressRecorder


@pytest.mark.parametrize("kind", ["automatic", "seed", "mc-dropout"])
def test_the_inference_counts_its_network_runs_on_the_progress(kind):
    """QA progfollow63: `lungai segment` on lung1 (automatic mode) ran the ensemble's inference for 27-50 s with the
    bar standing still on the previous step's message ("ROI lungs (458, 300, 46)"); the Slicer panel's bar alike (the
    same progress, as LUNGAI_PROGRESS lines).  Now every network run (a member - or the MC-dropout passes' batch - on
    one window) is counted as a message-only update, "... network run 3/8 (ensemble: 2 members x 4 windows)", up to
    its total; the steps counted stay segment_tumour's own (STEPS_PER_RUN: one counting rule for the CLI's bar, the
    cohort's and the panel's)."""
    import re

    from lungai.seg.choice import STEPS_PER_RUN

    ct, _ = _ct(30.0, shape=(120, 120, 50))
    bar = _Recorder()
    if kind == "automatic":
        infer.segment_tumour(ct, _model(), whole=True, progress=bar)
    elif kind == "seed":
        infer.segment_tumour(ct, _model(), seed_lps=(0.0, 0.0, 0.0), progress=bar)
    else:
        cfg, nets, meta = _model()
        cfg.dropout = 0.2

        infer.segment_tumour(ct, (cfg, [_Dropped()], meta), whole=True, method="mc-dropout", mc_passes=3,
                             progress=bar)
    assert sum(n for n, _ in bar.updates) == STEPS_PER_RUN                    # the steps: as before
    counts = [(m, re.search(r"network run (\d+)/(\d+) \(", m or "")) for n, m in bar.updates if n == 0]
    counts = [(m, int(c[1]), int(c[2])) for m, c in counts if c]
    assert counts, bar.updates
    assert all(n == 0 for n, m in bar.updates if m and "network run" in m)   # message-only updates
    first, last = counts[0], counts[-1]
    assert first[1] == 0 and last[1] == last[2] > 1, counts                 # from 0 up to every run counted
    if kind == "mc-dropout":
        assert "(mc-dropout: 3 passes per run x " in last[0], last
    else:
        assert "(ensemble: 2 members x " in last[0] and last[2] % 2 == 0, last
    if kind == "seed":                                                      # named by the growing box's pass
        assert last[0].startswith("pass "), last
    # the step counted after the inference follows its counts (the bar's message is the step's own again)
    step = next(i for i, (n, m) in enumerate(bar.updates) if n and m and m.startswith(("ensemble:", "mc-dropout:")))
    assert any("network run" in (m or "") for _, m in bar.updates[:step])


def test_a_log_gets_a_few_records_of_the_network_runs(monkeypatch):
    """In a log (stderr no terminal) the counts are drawn every LOG_INTERVAL seconds (lungai.progress.Counter), not
    one record per network run, and the total once reached; in a terminal every TICK_INTERVAL seconds."""
    import io
    import sys

    from lungai import progress

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    with progress.task("segment", 2) as bar:
        assert bar.tick_interval == progress.LOG_INTERVAL
        counter = progress.Counter(progress.SubProgress(bar, "pass 1:"), "ensemble: network run", 500)
        for _ in range(500):
            counter.tick()
    records = [r for r in err.getvalue().replace("\n", "\r").split("\r") if "network run" in r]
    # the start and the total reached (QA segbar67: the count reaching its total is always shown)
    assert len(records) == 2 and "pass 1: ensemble: network run 0/500" in records[0], records
    assert "pass 1: ensemble: network run 500/500" in records[1], records
    progress.Counter(progress.NullProgress(), "nothing", 3).tick()          # no progress: nothing to do


@pytest.mark.parametrize("tta, flip_check", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(20, 50, 70), (8, 16, 16)])     # several windows; one smaller than a window
def test_the_network_runs_counted_are_those_the_sliding_window_makes(tta, flip_check, shape):
    """predict_probs' total (lungai.seg.predict.network_runs, MONAI's window count) is the number of network runs
    made, whatever the mirroring: the count ends at its total, never beyond (a bar left at 60 % or over 100 %)."""
    import dataclasses
    import re

    from lungai.seg.predict import predict_probs

    cfg, nets, _ = _model()
    cfg = dataclasses.replace(cfg, tta=tta, infer_patch=(32, 32, 16))
    bar = _Recorder()
    predict_probs(nets, np.random.default_rng(0).random(shape, dtype=np.float32), cfg, flip_check=flip_check,
                  progress=bar)
    done = [tuple(int(v) for v in re.search(r"network run (\d+)/(\d+)", m).groups()) for _, m in bar.updates]
    assert done[0][0] == 0 and done[-1][0] == done[-1][1], done
    assert [d for d, _ in done] == list(range(done[-1][1] + 1)), done


class _Terminal:
    """stderr as a terminal (with tqdm's measure of the terminal's width patched to 100 columns): what a user of
    `lungai segment` sees drawn."""

    def __init__(self):
        import io

        self.buf = io.StringIO()

    def write(self, text):
        return self.buf.write(text)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_a_terminals_bar_shows_the_network_runs_count(monkeypatch):
    """QA segprog64 on lung1 (`lungai segment --seed-point=-21.86,-120.54,-611.5 --method mc-dropout`) in a 100-column
    terminal: the bar's message "pass 1 (grid x1): mc-dropout (8 passes per run x 2 windows x 4 flips): network run
    2/8" was cut at the terminal's width to "... pass 1 (grid x1): mc-dropout (8 passes per run x 2 wi" - for the
    whole inference the user saw no count (and in 80 columns not even the method).  The count now comes first:
    "pass 1 (grid x1): network run 2/8 (mc-dropout: 8 passes per run x 2 windows x 4 flips)", drawn in 100 columns
    (in 80 too on lung1: "segment:  40%|▍| 2/5 [00:05<00:01,  2.95it/s, pass 1 (grid x1): network run 2/8")."""
    import re
    import sys

    from lungai import progress
    from lungai.seg.predict import predict_probs

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    import tqdm.std

    monkeypatch.setattr(tqdm.std, "_screen_shape_wrapper", lambda: (lambda fp: (99, 40)))     # a 100-column terminal
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.0)      # every count drawn
    cfg, _, _ = _model()
    cfg.dropout = 0.2

    import dataclasses

    cfg = dataclasses.replace(cfg, infer_patch=(32, 32, 16))
    with progress.task("segment", 5) as bar:
        bar.update(2, "ROI seed (107, 108, 14)")
        predict_probs([_Dropped()], np.random.default_rng(0).random((20, 50, 70), dtype=np.float32), cfg,
                      method="mc-dropout", mc_passes=8, flip_check=True,
                      progress=progress.SubProgress(bar, "pass 1 (grid x1):"))
    drawn = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", r) for r in term.buf.getvalue().replace("\n", "\r").split("\r")]
    drawn = [r for r in drawn if "pass 1" in r]
    assert drawn and all(len(r) <= 99 for r in drawn), drawn
    counts = [re.search(r"network run (\d+)/(\d+)", r) for r in drawn]
    assert all(counts), drawn                                              # every drawing shows the count
    assert int(counts[-1][1]) == int(counts[-1][2]) > 1, drawn              # up to its total


def test_the_post_processing_is_shown_while_it_runs(monkeypatch):
    """QA segprog64: after the inference's step ("mc-dropout: 8 maps") the maps were resampled onto the input grid and
    summarised (entropy, mutual information, the tumour's regions) behind that message - on lung1's lungs' box with 8
    MC-dropout maps 3.2 s + 1.5 s + 0.8 s.  Each map's resampling is counted and the summary named while it runs, as
    message-only updates (the steps unchanged)."""
    import re

    from lungai.seg.choice import STEPS_PER_RUN

    ct, _ = _ct(30.0, shape=(120, 120, 50))
    bar = _Recorder()
    seen = {"to_input": [], "summarize": []}
    real_to_input, real_summarize = infer.pp.to_input, infer.summarize_maps

    def to_input(*a, **k):
        if k.get("out") is not None:          # each map onto the crop (not the growing box's mean map, step 2)
            seen["to_input"].append(bar.updates[-1][1])
        return real_to_input(*a, **k)

    def summarize(*a, **k):
        seen["summarize"].append(bar.updates[-1][1])
        return real_summarize(*a, **k)

    monkeypatch.setattr(infer.pp, "to_input", to_input)
    monkeypatch.setattr(infer, "summarize_maps", summarize)
    infer.segment_tumour(ct, _model(), seed_lps=(0.0, 0.0, 0.0), progress=bar)
    assert sum(n for n, _ in bar.updates) == STEPS_PER_RUN                    # the steps: as before
    maps = [m for m in seen["to_input"] if m and "input grid" in m]
    assert maps and len(maps) == len(seen["to_input"]), seen                  # each resampling shown as it runs
    assert [int(re.search(r"map (\d+)/(\d+)", m)[1]) for m in maps] == list(range(len(maps))), maps
    assert seen["summarize"] and all("uncertainty" in (m or "") for m in seen["summarize"]), seen


def test_an_80_column_terminal_shows_a_large_network_runs_count(monkeypatch, tmp_path):
    """QA segnotes64: `lungai segment`'s bar in an 80-column terminal with a large count (an ensemble's 3 members x 15
    windows x 4 flips, a whole box of a CT) was cut at the terminal's width: "segment:  40%|4| 2/5 [00:05<00:04,
    1.61s/it, pass 1 (grid x1): network run 9" - the count lost again behind the pass's prefix.  The segment bar shows
    no steps per second (a few long steps of different kinds): the count fits, up to its total.  Run through the CLI
    (its own bar), the inference standing in: its pass counts its network runs as grow_and_predict does."""
    import re
    import sys

    import SimpleITK as sitk
    import tqdm.std
    from seg_helpers import tiny_config

    from lungai import progress
    from lungai.cli import main
    from lungai.progress import Counter, SubProgress
    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network
    from lungai.seg.predict import network_runs

    cfg = tiny_config(members=3, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict() for _ in range(3)], {})
    ct = sitk.GetImageFromArray(np.full((20, 40, 40), -800, np.int16))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    zero = sitk.Cast(ct, sitk.sitkFloat32) * 0.0
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumour_volume_ml": 0.0, "n_components": 0, "method": "ensemble", "members": 3, "mc_passes": 0,
            "calibrated": False, "notes": []}
    total, what = network_runs("ensemble", 3, 0, 15, False, True)
    assert total == 180

    def segment_tumour(ct, model, progress=None, **kw):
        progress.update(1, "ROI seed (20, 20, 10)")
        count = Counter(SubProgress(progress, "pass 1 (grid x1):"), "network run", total, f"ensemble: {what}")
        for _ in range(total):
            count.tick()
        progress.update(1, "ensemble: 3 maps")
        return SegResult(sitk.Cast(zero, sitk.sitkUInt8), zero, zero, None, dict(info))

    monkeypatch.setattr("lungai.seg.infer.segment_tumour", segment_tumour)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    monkeypatch.setattr(tqdm.std, "_screen_shape_wrapper", lambda: (lambda fp: (79, 40)))      # an 80-column terminal
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.0)      # every count drawn
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m"),
                 "--whole", "--no-dicom"]) == 0
    drawn = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", r) for r in term.buf.getvalue().replace("\n", "\r").split("\r")]
    drawn = [r for r in drawn if "pass 1" in r]
    assert len(drawn) > 100 and all(len(r) <= 79 for r in drawn), drawn
    counts = [re.search(r"network run (\d+)/(\d+)", r) for r in drawn]
    assert all(counts), [r for r, c in zip(drawn, counts) if not c][:3]     # every drawing shows the whole count
    assert [int(c[2]) for c in counts] == [180] * len(counts) and int(counts[-1][1]) == 180, drawn[-1]
    assert any(re.search(r"network run \d{2}/180", r) for r in drawn), drawn    # two-digit counts drawn too


def test_automatic_mode_shows_the_lungs_being_found(small_phantom, monkeypatch):
    """QA seg67 on LUNG1-003 (`lungai segment <ct>`, automatic mode): the bar stood on "read" for 11.5 s while the
    lungs' box was found (the lung segmentation on a 2 mm copy of the CT: 18.7 s of a shared machine, its margin's
    dilation 1.6 s more) - no word of what ran.  Now the lung segmentation's own steps are shown on the bar as
    message-only updates ("automatic mode: finding the lungs 3/7: airways removed"), the steps counted unchanged."""
    import lungai.lungs
    from lungai.lungs import LUNG_STEPS
    from lungai.seg.choice import STEPS_PER_RUN

    ct = small_phantom.ct
    assert not infer.pp.is_crop(ct)                 # a whole chest: automatic mode looks in the lungs' box
    bar = _Recorder()
    real = lungai.lungs.segment_lungs
    during = {}

    def segment_lungs(*a, **k):
        start = len(bar.updates)
        out = real(*a, **k)
        during["updates"] = bar.updates[start:]
        return out

    monkeypatch.setattr(lungai.lungs, "segment_lungs", segment_lungs)
    res = infer.segment_tumour(ct, _model(), progress=bar)
    assert res.info["roi_mode"] == "lungs"
    assert sum(n for n, _ in bar.updates) == STEPS_PER_RUN                    # the steps: as before
    shown = [m for n, m in during.get("updates", []) if n == 0 and m]
    assert shown and all("finding the lungs" in m for m in shown), during      # said while the lungs are found
    assert shown[-1].startswith(f"automatic mode: finding the lungs {LUNG_STEPS}/{LUNG_STEPS}"), shown
    # the lungs' search is announced before it starts (the bar's message is no longer the step before's)
    first = next(i for i, (n, m) in enumerate(bar.updates) if m and "finding the lungs" in m)
    assert bar.updates[first] == (0, f"automatic mode: finding the lungs 0/{LUNG_STEPS}"), bar.updates[first]
    step = next(i for i, (n, m) in enumerate(bar.updates) if n and m and m.startswith("ROI lungs"))
    assert first < step


def test_the_lungs_box_and_region_are_said_after_the_lungs_are_found(small_phantom, monkeypatch):
    """QA lungsfollow68 on LUNG1-003 (`lungai segment` automatic mode, train-seg): after "finding the lungs 7/7:
    checking the lungs 2/2" the lungs' box and the region round them (a dilation by the margin: one SimpleITK call)
    took 1.4-2 s with nothing said.  Each is said as it starts (message-only updates: the caller's steps unchanged),
    the region with its seconds while it runs (lungai.progress.waiting); the box, lungs and region are those found
    without a progress."""
    import time

    import SimpleITK as sitk

    from lungai.lungs import LUNG_STEPS
    from lungai.seg import preprocess as pp

    plain = pp.box_from_lungs(small_phantom.ct, 10.0)
    real = sitk.BinaryDilate

    def slow(*args, **kwargs):
        time.sleep(0.45)
        return real(*args, **kwargs)

    monkeypatch.setattr(sitk, "BinaryDilate", slow)

    class Terminal(_Recorder):
        tick_interval = 0.1

    bar = Terminal()
    box = pp.box_from_lungs(small_phantom.ct, 10.0, progress=bar)
    assert (tuple(box.lo), tuple(box.size)) == (tuple(plain.lo), tuple(plain.size))
    for a, b in ((box.lungs, plain.lungs), (box.region, plain.region)):
        assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert all(n == 0 for n, _ in bar.updates)
    said = [m for _, m in bar.updates]
    done = f"automatic mode: finding the lungs {LUNG_STEPS}/{LUNG_STEPS}"
    last = max(i for i, m in enumerate(said) if m.startswith(f"{done}: checking the lungs"))
    region = f"{done}: the region 10 mm round the lungs"
    assert said[last + 1:last + 3] == [f"{done}: the lungs' box", region], said[last:]
    running = said[last + 3:]
    assert len(running) >= 3 and all(m.startswith(region + " (") and m.endswith(" s)") for m in running), running


def test_the_maps_summary_and_the_regions_are_shown_in_sub_steps(small_phantom):
    """QA segfollow67 on LUNG1-003 (automatic mode): "uncertainty maps and tumour regions" stood 5.5 s on the bar
    (10.2 s with the DynUNet), no sub-step shown.  The maps' z slices are counted now, up to their total, then each
    part of the regions' work named (message-only updates: the steps unchanged)."""
    import re

    from lungai.seg.choice import STEPS_PER_RUN

    bar = _Recorder()
    res = infer.segment_tumour(small_phantom.ct, _model(), progress=bar)
    assert res.info["roi_mode"] == "lungs"
    assert sum(n for n, _ in bar.updates) == STEPS_PER_RUN
    said = [m for n, m in bar.updates if n == 0 and m]
    counts = [re.fullmatch(r"uncertainty maps: slice (\d+)/(\d+)", m) for m in said]
    counts = [(int(c[1]), int(c[2])) for c in counts if c]
    assert len(counts) > 2 and counts[0][0] == 0 and counts[-1][0] == counts[-1][1] > 1, counts
    # a part run beside the bar (lungai.progress.waiting) may also say its seconds, "... (1 s)": named once here
    regions = [m for m in said if m.startswith("tumour regions: ") and not re.search(r" \(\d+ s\)$", m)]
    assert regions == ["tumour regions: connected regions in the lungs", "tumour regions: ranking the candidates",
                       "tumour regions: image edges"], said
    # in this order, between the maps' resampling and the step "mapped to input grid"
    order = [i for i, (n, m) in enumerate(bar.updates) if m and (m.startswith(("uncertainty maps: slice 0/",
                                                                                  "tumour regions: image edges"))
                                                                 or m == "mapped to input grid")]
    assert len(order) == 3 and order == sorted(order)


@pytest.mark.parametrize("part, message, after", [
    ("keep_components", "tumour regions: connected regions in the lungs", "tumour regions: ranking the candidates"),
    ("rank_components", "tumour regions: ranking the candidates", "tumour regions: image edges"),
    ("map_features", "confidence features of the maps", None)])
def test_long_automatic_parts_say_their_seconds_while_they_run(small_phantom, monkeypatch, part, message, after):
    """QA segwait67 on LUNG1-003 (automatic mode, a loaded machine): "tumour regions: ranking the candidates" stood
    4.4 s on the bar - one labelling pass (lungai.seg.postprocess.rank_components) with nothing to count - the
    connected regions in the lungs (keep_components) 2.4 s, and the maps' confidence features (dense sums over the
    lungs' box, ~2.2 s) ran behind "network run 239/240".  Each runs
    beside the bar now (lungai.progress.waiting): its message, then "... (<seconds> s)" at every tick interval while
    it runs; the mask, the candidates and the confidence are those found without a progress."""
    import time

    import SimpleITK as sitk

    from lungai.seg.choice import STEPS_PER_RUN

    plain = infer.segment_tumour(small_phantom.ct, _model())
    real = getattr(infer, part)

    def slowed(*args, **kwargs):
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(infer, part, slowed)

    class Terminal(_Recorder):
        tick_interval = 0.1

    bar = Terminal()
    res = infer.segment_tumour(small_phantom.ct, _model(), progress=bar)
    assert res.info["roi_mode"] == "lungs" and sum(n for n, _ in bar.updates) == STEPS_PER_RUN
    shown = [(n, m) for n, m in bar.updates if m]
    start = shown.index((0, message))
    running = [m for n, m in shown[start + 1:] if n == 0 and m.startswith(message + " (") and m.endswith(" s)")]
    assert len(running) >= 3, shown[start:]
    following = shown[start + 1 + len(running)]               # said while it ran, then the next message
    assert following == (1, "ensemble: 2 maps") if after is None else following == (0, after), shown[start:]
    assert np.array_equal(sitk.GetArrayFromImage(res.tumour), sitk.GetArrayFromImage(plain.tumour))
    assert res.info["candidates"] == plain.info["candidates"] and res.info["n_candidates"] >= 1
    assert res.info["confidence"] == plain.info["confidence"] and res.info["features"] == plain.info["features"]


def test_the_models_members_are_counted_as_they_load(tmp_path):
    """QA segfollow67: `lungai segment`'s "loading the model" stood 4-27 s with its timer at 00:00 on a shared
    machine.  Each member is counted on the bar as it is loaded; a model choice names the model being loaded."""
    from seg_helpers import tiny_config

    from lungai.seg.model_io import load_model, save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=3)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict() for _ in range(3)], {})
    bar = _Recorder()
    cfg2, nets, _ = load_model(tmp_path / "m", progress=bar)
    assert len(nets) == 3
    assert [m for _, m in bar.updates] == [f"loading the model: member {i}/3" for i in range(4)], bar.updates
    assert all(n == 0 for n, _ in bar.updates)


def test_a_terminals_bar_timer_runs_on_through_the_models_imports(monkeypatch):
    """QA segfollow67: "loading the model" stood 4-27 s with its timer at 00:00 - torch's and MONAI's imports count
    nothing.  Inside ``timer_running`` a terminal's bar is redrawn every TICK_INTERVAL by a thread (its elapsed time
    runs on); a log's bar (stderr no terminal) gets no record from it, and the thread ends with the block."""
    import sys
    import threading
    import time

    import tqdm.std

    from lungai import progress

    monkeypatch.setattr(tqdm.std, "_screen_shape_wrapper", lambda: (lambda fp: (99, 40)))
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.02)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    for tty in (True, False):
        term = _Terminal()
        monkeypatch.setattr(term, "isatty", lambda tty=tty: tty)
        monkeypatch.setattr(sys, "stderr", term)
        with progress.task("segment", 5, rate=False) as bar:
            bar.update(0, "loading the model: torch and MONAI")
            before = term.buf.getvalue().count("torch and MONAI")
            with progress.timer_running(bar):
                time.sleep(0.3)
            during = term.buf.getvalue().count("torch and MONAI") - before
        assert not [t for t in threading.enumerate() if t.name == "lungai-progress-timer"]    # ended with the block
        if tty:
            assert during >= 3, term.buf.getvalue()                  # redrawn while nothing was counted
        else:
            assert during == 0, term.buf.getvalue()


@pytest.mark.parametrize("interval", [0.0, 10.0])
def test_a_counter_always_shows_its_final_count(interval):
    """QA segbar67 (LUNG1-003): the network runs' count ended on "network run 239/240": Counter.tick draws at most
    every tick_interval, and the last run came within it of the count drawn before.  The count reaching its total is
    always shown (once); close() shows a count left unshown (fewer sub-steps than announced)."""
    from lungai import progress

    bar = _Recorder()
    bar.tick_interval = interval
    counter = progress.Counter(bar, "network run", 240, "ensemble: 5 members x 48 windows")
    for _ in range(240):
        counter.tick()
    messages = [m for _, m in bar.updates]
    assert messages[-1] == "network run 240/240 (ensemble: 5 members x 48 windows)", messages[-3:]
    assert messages.count(messages[-1]) == 1
    counter.close()                                                         # already shown: nothing more
    assert len(bar.updates) == len(messages)
    bar = _Recorder()
    bar.tick_interval = 10.0
    counter = progress.Counter(bar, "slice", 9)
    counter.tick(5)
    counter.close()
    assert [m for _, m in bar.updates] == ["slice 0/9", "slice 5/9"]


def test_lines_and_a_log_say_the_seconds_through_the_models_imports(monkeypatch):
    """QA segbar67: with LUNGAI_PROGRESS=lines (the Slicer panel's) "loading the model: torch and MONAI" stood ~4 s
    (up to 27 s on a shared machine) with no line - timer_running redrew only a terminal's bar.  Lines and a log
    (stderr no terminal) now get "<message> (<seconds> s)" every tick_interval while the message stands; none once
    another message is shown, none after the block; a callback (Slicer's process) is never called from the thread."""
    import io
    import re
    import sys
    import threading
    import time

    from lungai import progress

    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.02)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.02)
    for mode in ("lines", "bar"):                                # "bar" with stderr no terminal: a log
        err = io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setenv("LUNGAI_PROGRESS", mode)
        with progress.task("segment", 5, rate=False) as bar:
            bar.update(0, "loading the model: torch and MONAI")
            with progress.timer_running(bar):
                time.sleep(0.3)
                during = err.getvalue()
                bar.update(0, "loading the model: member 1/2")
                time.sleep(0.2)
            after = err.getvalue()
            time.sleep(0.1)
            assert err.getvalue() == after                        # the thread ended with the block
        seconds = re.findall(r"loading the model: torch and MONAI \(\d+ s\)\n", during)
        assert len(seconds) >= 3, during
        assert "torch and MONAI (" not in after[len(during):], after   # the new message stands alone
        assert all(not line or line.endswith(("start", "]", "MONAI", "s)", "1/2")) for line in after.split("\n")), after
        if mode == "lines":
            assert "LUNGAI_PROGRESS 0/5 segment: loading the model: torch and MONAI (" in during
    calls = []
    callback = progress.CallbackProgress(5, lambda f, t: calls.append(threading.current_thread()), "segment")
    callback.update(0, "loading the model: torch and MONAI")
    with progress.timer_running(callback):
        time.sleep(0.2)
    assert calls == [threading.main_thread()]


def test_the_seeds_distance_to_the_lungs_is_a_sub_step_of_its_own(small_phantom, monkeypatch):
    """QA segfollow69: `lungai segment` with a seed point (pyradiomics lung2, LUNG1-003) stood 4.0-4.6 s on "read"
    on a loaded machine - 2.4-3.1 s of it the seed's distance to the lungs (lungai.seg.preprocess.far_seed_note: the
    lungs found on a coarse grid) with no message of its own.  It runs beside the bar now (lungai.progress.waiting):
    its message, then "... (<seconds> s)" while it runs, before the ROI step; the result is the one found without a
    progress."""
    import SimpleITK as sitk

    from lungai.seg import preprocess as pp

    seed = small_phantom.meta["tumour"]["centre_mm"]
    plain = infer.segment_tumour(small_phantom.ct, _model(), seed_lps=seed)
    real = pp.far_seed_note
    calls = []

    def slowed(*args, **kwargs):
        import time

        time.sleep(0.6)
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pp, "far_seed_note", slowed)

    class Terminal(_Recorder):
        tick_interval = 0.1

    bar = Terminal()
    res = infer.segment_tumour(small_phantom.ct, _model(), seed_lps=seed, progress=bar)
    assert len(calls) == 1
    shown = [(n, m) for n, m in bar.updates if m]
    message = "the seed's distance to the lungs"
    start = shown.index((0, message)) if (0, message) in shown else pytest.fail(f"{message!r} not shown: {shown}")
    running = [m for n, m in shown[start + 1:] if n == 0 and m.startswith(message + " (")
               and m.endswith(" s)")]
    assert len(running) >= 3, shown[start:]
    assert shown[start + 1 + len(running)][1].startswith("ROI seed"), shown[start:]      # then the ROI step
    assert np.array_equal(sitk.GetArrayFromImage(res.tumour), sitk.GetArrayFromImage(plain.tumour))
    assert res.info == plain.info


@pytest.mark.parametrize("mode", ["lines", "bar"])      # the Slicer panel's LUNGAI_PROGRESS lines; a log
def test_a_long_mc_dropout_run_says_its_seconds_while_it_runs(monkeypatch, mode):
    """QA seg70 on LUNG1-002 (`LUNGAI_PROGRESS=lines lungai segment --seed-point=-74.5,16.4,-18.7 --method mc-dropout
    --model lungai-seg-dynunet`): MC dropout's passes run as one batch, one network run per window, so "network run
    1/8 (mc-dropout: 8 passes per run x 2 windows x 4 flips)" came 5.3-7.4 s apart with no line between (the panel's
    bar and a log stood still).  Now, while a run goes on, the count is said again every tick interval with the
    seconds the run has taken, "network run 0/1 (mc-dropout: ...) (<s> s)" (lungai.progress.Counter.running); the
    result is the same (the same dropout draws: the seed's).  Event-driven: the slow network run lasts until that line
    is written (at most 20 s: on the old code it never is)."""
    import io
    import re
    import sys
    import threading

    from lungai import progress
    from lungai.seg.networks import build_network
    from lungai.seg.predict import predict_probs
    from seg_helpers import tiny_config

    timed = re.compile(r"pass 1 \(grid x1\): network run 0/1 \(mc-dropout: 3 passes per run x 1 window\) \(\d+ s\)")
    said, slow = threading.Event(), [True]

    class _Stderr(io.StringIO):
        def write(self, text):
            n = super().write(text)
            if timed.search(text):
                said.set()
            return n

        def isatty(self):
            return False

    class _Slow(torch.nn.Module):
        """The network, whose run lasts until its seconds are said (while ``slow``)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            if slow[0]:
                said.wait(20)
            return self.net(x)

    torch.manual_seed(0)
    cfg = tiny_config(dropout=0.3)
    net = _Slow(build_network(cfg))
    arr = np.random.default_rng(0).random((8, 16, 16), dtype=np.float32)      # one window
    err = _Stderr()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("LUNGAI_PROGRESS", mode)
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.05)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    with progress.task("segment", 5) as bar:
        out = predict_probs([net], arr, cfg, "mc-dropout", 3, seed=4,
                            progress=progress.SubProgress(bar, "pass 1 (grid x1):"))
    lines = [v for v in err.getvalue().splitlines() if "network run" in v]
    assert said.is_set(), lines
    # said while the run went on: after its start's count, before its end's
    first = next(i for i, v in enumerate(lines) if timed.search(v))
    assert "network run 0/1 (" in lines[0] and "network run 1/1 (" in lines[-1] and 0 < first < len(lines) - 1, lines
    slow[0] = False
    np.testing.assert_array_equal(out, predict_probs([net], arr, cfg, "mc-dropout", 3, seed=4))   # the same draws
