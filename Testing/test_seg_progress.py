"""Progress of the segmentation's inference: its network runs counted on the progress object (lungai.progress.Counter
through lungai.seg.predict.predict_probs), the steps unchanged.  The network is test_seg_grow's oracle."""

import numpy as np
import pytest
import torch

from lungai.seg import infer
from test_seg_grow import Oracle, _ct, _model


class _Recorder:
    """A progress object recording its updates; every count shown (tick_interval 0)."""

    tick_interval = 0.0

    def __init__(self):
        self.updates = []

    def update(self, n=1, message=None):
        self.updates.append((n, message))


@pytest.mark.parametrize("kind", ["automatic", "seed", "mc-dropout"])
def test_the_inference_counts_its_network_runs_on_the_progress(kind):
    """QA progfollow63: `lungai segment` on lung1 (automatic mode) ran the ensemble's inference for 27-50 s with the
    bar standing still on the previous step's message ("ROI lungs (458, 300, 46)"); the Slicer panel's bar alike (the
    same progress, as LUNGAI_PROGRESS lines).  Now every network run (a member - or the MC-dropout passes' batch - on
    one window) is counted as a message-only update, "... ensemble (2 members x 4 windows): network run 3/8", up to
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

        class Dropped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.oracle, self.drop = Oracle(), torch.nn.Dropout3d(0.0)

            def forward(self, x):
                return self.drop(self.oracle(x))

        infer.segment_tumour(ct, (cfg, [Dropped()], meta), whole=True, method="mc-dropout", mc_passes=3,
                             progress=bar)
    assert sum(n for n, _ in bar.updates) == STEPS_PER_RUN                    # the steps: as before
    counts = [(m, re.search(r"network run (\d+)/(\d+)$", m or "")) for n, m in bar.updates if n == 0]
    counts = [(m, int(c[1]), int(c[2])) for m, c in counts if c]
    assert counts, bar.updates
    assert all(n == 0 for n, m in bar.updates if m and "network run" in m)   # message-only updates
    first, last = counts[0], counts[-1]
    assert first[1] == 0 and last[1] == last[2] > 1, counts                 # from 0 up to every run counted
    if kind == "mc-dropout":
        assert "mc-dropout (3 passes per run x " in last[0], last
    else:
        assert "ensemble (2 members x " in last[0] and last[2] % 2 == 0, last
    if kind == "seed":                                                      # named by the growing box's pass
        assert last[0].startswith("pass "), last
    # the step counted after the inference follows its counts (the bar's message is the step's own again)
    step = next(i for i, (n, m) in enumerate(bar.updates) if n and m and m.startswith(("ensemble:", "mc-dropout:")))
    assert any("network run" in (m or "") for _, m in bar.updates[:step])


def test_a_log_gets_a_few_records_of_the_network_runs(monkeypatch):
    """In a log (stderr no terminal) the counts are drawn every LOG_INTERVAL seconds (lungai.progress.Counter), not
    one record per network run; in a terminal every TICK_INTERVAL seconds."""
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
    assert len(records) == 1 and "pass 1: ensemble: network run 0/500" in records[0], records
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
    done = [tuple(int(v) for v in re.search(r"(\d+)/(\d+)$", m).groups()) for _, m in bar.updates]
    assert done[0][0] == 0 and done[-1][0] == done[-1][1], done
    assert [d for d, _ in done] == list(range(done[-1][1] + 1)), done
