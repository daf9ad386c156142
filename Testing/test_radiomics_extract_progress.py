"""The segments' bar moves while pyradiomics runs on a segment (QA radwait67: on LUNG1-003 each whole lung was one
silent step of 4-15 s, minutes with LoG / Wavelet; ``lungai cohort --workers 0`` stood 2.5-7.5 s on one message), with
the same values, and a Cancel is honoured during a segment."""

from __future__ import annotations

import importlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lungai.errors import Cancelled
from lungai.progress import CallbackProgress, waiting
from lungai.radiomics import extract, load_params

extract_module = importlib.import_module("lungai.radiomics.extract")    # the package's `extract` is the function

SLOW_S = 0.6


class _Recorder:
    """A progress that records (n, message) and ticks every 0.1 s."""

    tick_interval = 0.1

    def __init__(self):
        self.calls: list[tuple[int, str]] = []

    def update(self, n=1, message=None):
        self.calls.append((n, message or ""))

    def close(self):
        pass


@pytest.fixture
def slowed(monkeypatch):
    """pyradiomics on each segment made SLOW_S seconds slower (a whole lung's run, shortened)."""
    real = extract_module.extract_segment

    def slow(*args, **kwargs):
        time.sleep(SLOW_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_segment", slow)


def _two_segments(phantom_segments):
    return {k: phantom_segments[k] for k in ("tumour", "right_lung")}


def test_running_segment_is_said_with_its_seconds(small_phantom, phantom_segments, slowed):
    bar = _Recorder()
    extract(small_phantom.ct, _two_segments(phantom_segments), load_params("default"), case="p7", progress=bar)
    steps = [m for n, m in bar.calls if n == 1]
    assert steps == ["p7: tumour", "p7: right_lung"]
    for seg in ("tumour", "right_lung"):
        said = [m for n, m in bar.calls if n == 0 and m.startswith(f"p7: computing {seg}")]
        assert said and said[0] == f"p7: computing {seg}", bar.calls
        assert any(m.endswith(" s)") for m in said), bar.calls      # its seconds while it runs
    # each segment's running messages come before its step
    order = [m for _, m in bar.calls]
    assert order.index("p7: computing right_lung") > order.index("p7: tumour")


def test_running_segments_said_in_parallel_workers(small_phantom, phantom_segments, slowed, monkeypatch):
    # threads stand for the spawned processes (the slowed extractor reaches them); the same waiting loop
    monkeypatch.setattr(extract_module, "ProcessPoolExecutor",
                        lambda max_workers, mp_context: ThreadPoolExecutor(max_workers))
    bar = _Recorder()
    segs = {k: phantom_segments[k] for k in ("tumour", "right_lung", "left_lung")}
    extract(small_phantom.ct, segs, load_params("default"), case="p7", progress=bar, workers=2)
    assert sorted(m for n, m in bar.calls if n == 1) == ["p7: left_lung", "p7: right_lung", "p7: tumour"]
    ticks = [m for n, m in bar.calls if n == 0 and m.startswith("p7: computing ") and m.endswith(" s)")]
    assert ticks, bar.calls
    for m in ticks:         # the segments running now: at most one per worker, not the one queued after them
        assert len(m.removeprefix("p7: computing ").rsplit(" (", 1)[0].split(", ")) <= 2, m


def test_same_values_with_a_bar_as_without(small_phantom, phantom_segments):
    """The segment run in waiting's worker thread gives byte-identical values (and settings) to a plain call."""
    segs = _two_segments(phantom_segments)
    plain = extract(small_phantom.ct, segs, load_params("default"), case="p7")
    shown = extract(small_phantom.ct, segs, load_params("default"), case="p7", progress=_Recorder())
    assert plain.features.to_csv(index=False) == shown.features.to_csv(index=False)
    assert plain.settings.to_csv(index=False) == shown.settings.to_csv(index=False)
    assert len(plain.features) > 100


def test_cancel_stops_during_a_segment(small_phantom, phantom_segments, monkeypatch):
    """Slicer's in-process Cancel (CallbackProgress returning True) stops during a long segment, not after it."""
    release = threading.Event()
    real = extract_module.extract_segment

    def long_segment(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_segment", long_segment)
    asked = []

    def callback(fraction, text):
        asked.append(text)
        return "computing" in text and "(" in text       # Cancel pressed once the segment has run a while

    bar = CallbackProgress(2, callback, "radiomics")
    bar.tick_interval = 0.1
    start = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            extract(small_phantom.ct, _two_segments(phantom_segments), load_params("default"), case="p7",
                    progress=bar)
        assert time.monotonic() - start < 10
        assert not any(t.endswith("p7: tumour") for t in asked)       # stopped before the segment's end
    finally:
        release.set()


def test_waiting_runs_in_the_callers_context():
    """np.errstate around a waited call holds in its thread, as it would in the caller's."""
    def divide():
        return np.float64(1.0) / np.float64(0.0)

    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            waiting(_Recorder(), "dividing", divide)


@pytest.mark.parametrize("stage, said", [
    ("without_padding_voxels", "p7: checking the segments"),
    ("prepare", "p7: cropping the segments, resampling the lungs to the 2 mm lung grid"),
    ("make_extractor", "p7: setting up pyradiomics"),
])
def test_preparation_before_the_first_segment_is_said(small_phantom, phantom_segments, monkeypatch, stage, said):
    """The preparation before the first segment (the masks checked, the crops and the lungs' resampling to the lung
    grid, pyradiomics' extractor) is said on the bar with its seconds, without a step (QA radprep67: the bar stood on
    ``radiomics: start`` for 2.2 s on LUNG1-003)."""
    real = getattr(extract_module, stage)

    def slow(*args, **kwargs):
        time.sleep(SLOW_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, stage, slow)
    params = load_params("default")
    params["lungai"] = {**(params.get("lungai") or {}), "lung_spacing_mm": 2}
    bar = _Recorder()
    extract(small_phantom.ct, _two_segments(phantom_segments), params, case="p7", progress=bar)
    assert [m for n, m in bar.calls if n == 1] == ["p7: tumour", "p7: right_lung"]     # a step per segment only
    first = [m for _, m in bar.calls].index("p7: computing tumour")
    before = [m for n, m in bar.calls[:first] if n == 0]
    assert said in before, bar.calls
    assert f"{said} (1 s)" in before or f"{said} (0 s)" in before, bar.calls      # its seconds while it runs


def test_preparation_said_without_lung_grid(small_phantom, phantom_segments):
    """No lung segment (or lungs on the CT's grid): the preparation is the segments' crop."""
    bar = _Recorder()
    params = load_params("default")
    params["lungai"] = {k: v for k, v in (params.get("lungai") or {}).items() if k != "lung_spacing_mm"}
    extract(small_phantom.ct, {"tumour": phantom_segments["tumour"]}, params, case="p7", progress=bar)
    assert ("p7: cropping the segments" in [m for n, m in bar.calls if n == 0]), bar.calls


def test_preparation_message_names_what_is_done():
    from lungai.radiomics.extract import preparing_message

    params = load_params("default")
    assert preparing_message({"tumour": 0}, params) == "cropping the segments"
    assert preparing_message({"X": 0}, params, ("X",)) == \
        "cropping the segments, resampling the lungs to the 2 mm lung grid"       # a lung by --structure-map
    resampled = {**params, "setting": {**(params.get("setting") or {}), "resampledPixelSpacing": [1, 1, 1]}}
    assert preparing_message({"right_lung": 0}, resampled) == "preparing the segments"
    assert preparing_message({"right_lung": 0}, {"lungai": {"ibsi": "B"}}) == "putting the segments on the IBSI grid"
