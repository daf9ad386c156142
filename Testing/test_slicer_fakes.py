"""The Slicer-only helpers against fakes: the Qt job runner (a fake QTimer driving real ``lungai``
children) and installation on first use (a fake ``slicer`` recording pip_ensure / pip_install /
confirmation / PyTorch-extension calls)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LungAICommon import requirements
from LungAICommon.process import LungAIProcess, ProcessChain


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory, small_phantom):
    out = tmp_path_factory.mktemp("ct")
    sitk.WriteImage(small_phantom.ct, str(out / "ct.nii.gz"))
    return out


# ---------------------------------------------------------------------------- Qt adapter (fake Qt)
class _FakeTimer:
    def __init__(self):
        self.active, self.slot = False, None

    def setInterval(self, ms):
        self.interval = ms

    def connect(self, signal, slot):
        assert signal == "timeout()"
        self.slot = slot

    def start(self):
        self.active = True

    def stop(self):
        self.active = False


class _FakeBar:
    def __init__(self):
        self.values, self.formats, self.visible = [], [], False

    def setRange(self, low, high):
        self.range = (low, high)

    def setValue(self, v):
        self.values.append(v)

    def setFormat(self, text):
        self.formats.append(text)


class _FakeLog:
    def __init__(self):
        self.lines = []

    def appendPlainText(self, text):
        self.lines.append(text)


@pytest.fixture
def qtjob(monkeypatch):
    import importlib
    import types

    monkeypatch.setitem(sys.modules, "qt", types.SimpleNamespace(QTimer=_FakeTimer))
    monkeypatch.delitem(sys.modules, "LungAICommon.qtjob", raising=False)
    return importlib.import_module("LungAICommon.qtjob")


def _tick(runner, limit=120):
    t0 = time.monotonic()
    while runner._timer.active and time.monotonic() - t0 < limit:
        runner._timer.slot()
        time.sleep(0.02)


def test_qt_runner_drives_bar_log_and_callback(qtjob, small_ct, tmp_path):
    bar, log, states, finished = _FakeBar(), _FakeLog(), [], []
    runner = qtjob.QtJobRunner(bar, log, states.append)
    job = LungAIProcess(["lungs", str(small_ct / "ct.nii.gz"), "-o", str(tmp_path / "l.nii.gz")])
    runner.start(job, finished.append, title="Lungs")
    with pytest.raises(RuntimeError, match="still running"):
        runner.start(LungAIProcess(["sample", "--help"]), finished.append)
    _tick(runner)
    assert finished == [job] and job.succeeded and states == [True, False]
    assert bar.range == (0, qtjob.PROGRESS_STEPS) and bar.values[-1] == qtjob.PROGRESS_STEPS
    assert bar.values == sorted(bar.values) and bar.formats[0] == "Lungs: starting" and bar.formats[-1] == "Done"
    assert log.lines[0].startswith("$ lungai lungs ") and any("right" in line for line in log.lines)


def test_qt_runner_cancel_and_failure(qtjob, tmp_path):
    bar, log, finished = _FakeBar(), _FakeLog(), []
    runner = qtjob.QtJobRunner(bar, log)
    job = LungAIProcess(["sample", "-o", str(tmp_path / "s")])
    runner.start(job, finished.append)
    time.sleep(1.0)
    runner.cancel()
    _tick(runner, limit=20)
    assert finished == [job] and job.cancelled and bar.formats[-1] == "Cancelled" and "Cancelled." in log.lines
    chain = ProcessChain([["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "x.nii.gz")]])
    runner.start(chain, finished.append)
    _tick(runner)
    assert finished[-1] is chain and bar.formats[-1] == "Failed" and not chain.succeeded
    assert any("missing.nii.gz" in line for line in log.lines)


# ---------------------------------------------------------------------------- install on first use (fake Slicer)
class _FakeSlicer:
    """Just what LungAICommon.install touches; records every call."""

    def __init__(self, with_packaging: bool, confirm: bool = True):
        import types

        self.calls = []
        outer = self

        def pip_ensure(specs, requester, constraints=None):
            outer.calls.append(("pip_ensure", list(specs), requester, Path(constraints).read_text()))

        def pip_install(arg):
            constraints = arg.split(" -c ", 1)[1]
            outer.calls.append(("pip_install", arg.split(" -c ")[0], Path(constraints).read_text()))

        def confirm_dialog(text, windowTitle=None):
            outer.calls.append(("confirm", text))
            return confirm

        self.packaging = types.SimpleNamespace(pip_ensure=pip_ensure) if with_packaging else None
        self.util = types.SimpleNamespace(pip_install=pip_install, confirmOkCancelDisplay=confirm_dialog,
                                          errorDisplay=lambda text: outer.calls.append(("error", text)),
                                          warningDisplay=lambda text: outer.calls.append(("warning", text)))


def _missing_sequence(monkeypatch, *answers):
    from LungAICommon import install

    queue = list(answers)
    monkeypatch.setattr(install.requirements, "missing", lambda feature: queue.pop(0) if queue else [])


def test_install_uses_pip_ensure_with_slicer_packages_pinned(monkeypatch):
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True)
    monkeypatch.setitem(sys.modules, "slicer", fake)
    _missing_sequence(monkeypatch, [requirements.PINNED["monai"], requirements.PINNED["einops"]], [])
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    (kind, specs, requester, constraints), = fake.calls
    assert (kind, specs, requester) == ("pip_ensure", ["monai==1.6.1", "einops==0.8.2"], "Lung AI Segmentation")
    assert f"numpy=={np.__version__}" in constraints.splitlines()


def test_install_fallback_asks_before_installing(monkeypatch):
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=False, confirm=False)
    monkeypatch.setitem(sys.modules, "slicer", fake)
    _missing_sequence(monkeypatch, [requirements.PINNED["skops"]])
    assert install.ensure("prediction", "Multimodal Predict") is False
    assert [c[0] for c in fake.calls] == ["confirm"] and "skops==0.16.0" in fake.calls[0][1]
    fake = _FakeSlicer(with_packaging=False, confirm=True)
    monkeypatch.setitem(sys.modules, "slicer", fake)
    _missing_sequence(monkeypatch, [requirements.PINNED["skops"]], [requirements.PINNED["skops"]])
    assert install.ensure("prediction", "Multimodal Predict") is False  # still missing after pip
    kinds = [c[0] for c in fake.calls]
    assert kinds == ["confirm", "pip_install", "error"] and fake.calls[1][1] == "skops==0.16.0"
    assert f"SimpleITK=={sitk.Version_VersionString()}" in fake.calls[1][2]


def test_install_torch_through_the_pytorch_extension(monkeypatch):
    import types

    from LungAICommon import install

    asked = []

    class Logic:
        def installTorch(self, askConfirmation, torchVersionRequirement):
            asked.append((askConfirmation, torchVersionRequirement))
            return object()

    fake = _FakeSlicer(with_packaging=True)
    monkeypatch.setitem(sys.modules, "slicer", fake)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    _missing_sequence(monkeypatch, [requirements.PINNED["torch"]], [])
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    assert asked == [(True, ">=2.13")] and fake.calls == []  # pip never asked for torch
