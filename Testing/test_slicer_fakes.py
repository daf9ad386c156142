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


def test_qt_runner_prepared_process_steps_cancel_and_failure(qtjob, small_ct, tmp_path):
    """QA slicer70 (Lung Radiomics' start exported its inputs before the bar showed): a PreparedProcess runs one
    preparation step per tick, each named on the bar, then its command - logged when it starts; Cancel between two
    steps runs none of the rest (the generator's finally runs); an error of a step fails the job with its text."""
    from LungAICommon.process import PreparedProcess

    ran, closed = [], []

    def steps(fail=False):
        try:
            for name in ("CT", "segment"):
                yield f"exporting the {name}"
                ran.append(name)
            if fail:
                raise ValueError("the segment is empty; draw it")
            return LungAIProcess(["lungs", str(small_ct / "ct.nii.gz"), "-o", str(tmp_path / "l.nii.gz")])
        finally:
            closed.append(True)

    bar, log, finished = _FakeBar(), _FakeLog(), []
    runner = qtjob.QtJobRunner(bar, log)
    job = PreparedProcess(steps())
    runner.start(job, finished.append, title="Radiomics")
    assert runner.running and ran == [] and log.lines == [] and bar.formats == ["Radiomics: starting"]
    runner._timer.slot()
    assert bar.formats[-1] == "preparing the inputs: exporting the CT (%p%)" and ran == []
    runner._timer.slot()
    assert bar.formats[-1] == "preparing the inputs: exporting the segment (%p%)" and ran == ["CT"]
    _tick(runner)
    assert finished == [job] and job.succeeded and ran == ["CT", "segment"] and closed == [True]
    assert log.lines[0].startswith("$ lungai lungs ") and bar.formats[-1] == "Done"

    ran.clear(), closed.clear()
    job = PreparedProcess(steps())
    runner.start(job, finished.append)
    runner._timer.slot()
    runner.cancel()                                    # before the CT step ran
    _tick(runner)
    assert finished[-1] is job and job.cancelled and not job.succeeded and ran == [] and closed == [True]
    assert bar.formats[-1] == "Cancelled" and log.lines[-2:] == ["Cancelling...", "Cancelled."]

    job = PreparedProcess(steps(fail=True))
    runner.start(job, finished.append)
    _tick(runner)
    assert finished[-1] is job and not job.succeeded and job.returncode == 1 and bar.formats[-1] == "Failed"
    assert job.error_message() == "the segment is empty; draw it"
    job = PreparedProcess(steps(fail=True)).start()   # a script's wait(): the error as it was raised
    with pytest.raises(ValueError, match="the segment is empty"):
        job.wait()

    ran.clear(), closed.clear()                       # prepare(): every step at once, the command built, not started
    job = PreparedProcess(steps())
    process = job.prepare()
    assert ran == ["CT", "segment"] and closed == [True] and job.args == process.args and not process.started
    runner.start(job, finished.append)                 # started by the runner as it is, its command logged
    assert log.lines[-1].startswith("$ lungai lungs ")
    _tick(runner)
    assert finished[-1] is job and job.succeeded and ran == ["CT", "segment"]
    with pytest.raises(ValueError, match="the segment is empty"):
        PreparedProcess(steps(fail=True)).prepare()


# ---------------------------------------------------------------------------- install on first use (fake Slicer)
class _FakeSlicer:
    """Just what LungAICommon.install touches; records every call.  ``slicer.packaging`` is a submodule
    (as in Slicer >= 5.12): reachable through ``import slicer.packaging``, not as an attribute of an
    ``import slicer`` that did not import it."""

    def __init__(self, with_packaging: bool, confirm: bool = True, decline_pip_ensure: bool = False):
        import types

        self.calls = []
        outer = self

        def pip_ensure(specs, constraints=None, requester=None, **kwargs):
            outer.calls.append(("pip_ensure", list(specs), requester, Path(constraints).read_text(encoding="utf-8")))
            if decline_pip_ensure:
                raise RuntimeError("the user declined")

        def pip_install(args):
            assert isinstance(args, list), "pip_install must get a list (paths with spaces stay one argument)"
            i = args.index("-c")
            outer.calls.append(("pip_install", args[:i], Path(args[i + 1]).read_text(encoding="utf-8")))

        def confirm_dialog(text, windowTitle=None):
            outer.calls.append(("confirm", text))
            return confirm

        self.module = types.ModuleType("slicer")
        self.module.util = types.SimpleNamespace(pip_install=pip_install, confirmOkCancelDisplay=confirm_dialog,
                                                 errorDisplay=lambda text: outer.calls.append(("error", text)),
                                                 warningDisplay=lambda text: outer.calls.append(("warning", text)))
        self.packaging = types.ModuleType("slicer.packaging") if with_packaging else None
        if self.packaging is not None:
            self.packaging.pip_ensure = pip_ensure

    def install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "slicer", self.module)
        if self.packaging is not None:
            monkeypatch.setitem(sys.modules, "slicer.packaging", self.packaging)
        else:
            monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
        return self


def _missing_sequence(monkeypatch, *answers):
    from LungAICommon import install

    queue = list(answers)
    monkeypatch.setattr(install.requirements, "missing", lambda feature: queue.pop(0) if queue else [])


def test_install_imports_slicer_packaging_and_pins_slicer_packages(monkeypatch):
    """slicer.packaging is used when it can be imported (the old code looked for an attribute, which a
    plain `import slicer` does not set, and never used it)."""
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    assert not hasattr(fake.module, "packaging")
    _missing_sequence(monkeypatch, [requirements.PINNED["monai"], requirements.PINNED["einops"]], [])
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    (asked, _), (kind, specs, requester, constraints) = fake.calls      # lungai's confirmation, then pip_ensure's
    assert asked == "confirm" and (kind, specs, requester) == ("pip_ensure", ["monai==1.6.1", "einops==0.8.2"],
                                                               "Lung AI Segmentation")
    assert f"numpy=={np.__version__}" in constraints.splitlines()
    assert any(line.startswith("torch==") for line in constraints.splitlines())    # the extension's torch is kept
    # declined in pip_ensure's dialog: nothing else happens
    fake = _FakeSlicer(with_packaging=True, decline_pip_ensure=True).install(monkeypatch)
    _missing_sequence(monkeypatch, [requirements.PINNED["skops"]])
    assert install.ensure("prediction", "Multimodal Predict") is False
    assert [c[0] for c in fake.calls] == ["confirm", "pip_ensure"]


def test_install_fallback_asks_then_pip_install_with_a_list(monkeypatch):
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=False, confirm=False).install(monkeypatch)
    _missing_sequence(monkeypatch, [requirements.PINNED["skops"]])
    assert install.ensure("prediction", "Multimodal Predict") is False
    assert [c[0] for c in fake.calls] == ["confirm"] and "skops==0.16.0" in fake.calls[0][1]
    fake = _FakeSlicer(with_packaging=False, confirm=True).install(monkeypatch)
    _missing_sequence(monkeypatch, [requirements.PINNED["skops"]], [requirements.PINNED["skops"]])
    assert install.ensure("prediction", "Multimodal Predict") is False  # still missing after pip
    kinds = [c[0] for c in fake.calls]
    assert kinds == ["confirm", "pip_install", "error"] and fake.calls[1][1] == ["skops==0.16.0"]
    assert f"SimpleITK=={sitk.Version_VersionString()}" in fake.calls[1][2]
    assert install.pip_install_arguments(["a==1"], r"C:\Users\Dr X\AppData\c.txt") == \
        ["a==1", "-c", r"C:\Users\Dr X\AppData\c.txt"]


class _TorchLogic:
    def __init__(self, result=True):
        self.asked, self.result = [], result

    def __call__(self):
        return self

    def installTorch(self, askConfirmation, torchVersionRequirement):
        self.asked.append((askConfirmation, torchVersionRequirement))
        return object() if self.result else None


def _torch(monkeypatch, present, version):
    from LungAICommon import install

    monkeypatch.setattr(install.requirements, "is_present", lambda req: present)
    monkeypatch.setattr(install.requirements, "installed_version", lambda dist: version)


def test_torch_only_through_the_pytorch_extension(monkeypatch):
    import types

    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    logic = _TorchLogic()
    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=logic))
    _torch(monkeypatch, present=False, version="2.13.1+cu128")
    _missing_sequence(monkeypatch, [requirements.PINNED["torch"], requirements.PINNED["monai"]],
                      [requirements.PINNED["monai"]], [])
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    assert logic.asked == [(True, ">=2.13")]
    assert [c[0] for c in fake.calls] == ["confirm", "pip_ensure"]
    assert fake.calls[1][:2] == ("pip_ensure", ["monai==1.6.1"])                     # torch never goes to pip


@pytest.mark.parametrize("case", ["no extension", "declined", "too old"])
def test_torch_problems_give_a_clear_message_and_no_pip(monkeypatch, case):
    import types

    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    if case == "no extension":
        monkeypatch.setitem(sys.modules, "PyTorchUtils", None)          # import fails
    else:
        logic = _TorchLogic(result=case != "declined")
        monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=logic))
    _torch(monkeypatch, present=case == "too old", version="2.4.1" if case == "too old" else None)
    _missing_sequence(monkeypatch, [requirements.PINNED["torch"], requirements.PINNED["monai"]])
    assert install.ensure("segmentation", "Lung AI Segmentation") is False
    (kind, text), = fake.calls
    assert kind == "error"
    expected = {"no extension": "Extensions Manager", "declined": "PyTorch Utils", "too old": "2.4.1"}[case]
    assert expected in text


@pytest.mark.parametrize("feature, monai_missing", [("segmentation", False), ("segmentation", True),
                                                    ("prediction", True)])
def test_an_older_torch_already_installed_is_named_before_anything_runs_or_is_installed(monkeypatch, feature,
                                                                                        monai_missing):
    """QA (install57): a Slicer whose PyTorch extension installed torch 2.4.1 earlier (for another extension) - torch
    present, so it was never checked: with MONAI there too the job started on the untested torch; with MONAI missing,
    pip was asked for monai 1.6.1 (needs torch >= 2.8) with torch==2.4.1 as a constraint, failed to resolve, and the
    user read "the likely cause is no internet connection".  Now: the old torch and what to do, no pip."""
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)      # not needed: torch is there
    _torch(monkeypatch, present=True, version="2.4.1")
    _missing_sequence(monkeypatch, [requirements.PINNED["monai"]] if monai_missing else [])
    assert install.ensure(feature, "Lung AI Segmentation") is False
    (kind, text), = fake.calls
    assert kind == "error" and "PyTorch 2.4.1 is installed" in text and "'PyTorch Utils' module" in text
    assert f"{requirements.MIN_TORCH} or newer" in text


def test_a_current_torch_already_installed_needs_no_pytorch_extension_call(monkeypatch):
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    _torch(monkeypatch, present=True, version="2.13.1+cu128")
    _missing_sequence(monkeypatch, [requirements.PINNED["monai"]], [])
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    assert [c[0] for c in fake.calls] == ["confirm", "pip_ensure"]
    assert fake.calls[1][:2] == ("pip_ensure", ["monai==1.6.1"])
    _torch(monkeypatch, present=True, version="2.4.1")          # a feature without torch ignores it
    _missing_sequence(monkeypatch, [])
    assert install.ensure("lungs", "Lung AI sample data") is True


def _failing_pip(monkeypatch, fake, stderr_reason):
    """``slicer.util.pip_install`` failing as Slicer's does: CalledProcessError, pip's reason only printed (to the
    Python console), not in the exception's text."""
    import subprocess

    def pip_install(args):
        fake.calls.append(("pip_install", list(args)))
        print(stderr_reason)
        raise subprocess.CalledProcessError(1, [sys.executable, "-m", "pip", "install", *args])

    monkeypatch.setattr(fake.module.util, "pip_install", pip_install)


def test_a_failed_install_points_to_pips_reason_not_only_to_the_internet(monkeypatch):
    """QA (installb57): pip failing on a version conflict (e.g. a package another extension installed) was reported
    as "The likely cause is no internet connection"; pip's real reason is only in Slicer's Python console.  The
    message now says where pip's reason is, and names a conflict among the causes."""
    from LungAICommon import install

    fake = _FakeSlicer(with_packaging=False, confirm=True).install(monkeypatch)
    _failing_pip(monkeypatch, fake, "ERROR: Cannot install scipy==1.17.1 because these package versions have "
                                    "conflicting dependencies.")
    _missing_sequence(monkeypatch, [requirements.PINNED["scipy"]], [requirements.PINNED["scipy"]])
    assert install.ensure("lungs", "Lung AI Segmentation") is False
    kind, text = fake.calls[-1]
    assert kind == "error" and "scipy==1.17.1" in text and "exit status 1" in text
    assert "likely cause is no internet" not in text
    assert "View -> Python Console" in text and "version conflict" in text and "internet" in text


def test_an_older_monai_or_scikit_learn_another_extension_installed_is_named_and_upgraded_after_asking(monkeypatch):
    """QA (installb57): packages already present were checked only for being importable, so an older MONAI /
    scikit-learn installed by another extension (SlicerMONAIAuto3DSeg ...) was used as is: `missing("segmentation")`
    returned [] whatever MONAI version was installed, and the job failed later with an obscure error.  Now one older
    than the tested minor version is missing: the dialog and the error name the version found and the one needed,
    and installing the pin upgrades it.  What Slicer bundles (scipy 1.13.1 in 5.10) is still used as is."""
    from LungAICommon import install

    real = requirements.installed_version
    installed = {"monai": "1.3.0", "scikit-learn": "1.5.2"}
    monkeypatch.setattr(requirements, "installed_version", lambda d: installed.get(d) or real(d))
    old = requirements.missing("segmentation")
    assert [r.dist for r in old] == ["monai", "scikit-learn"]
    assert requirements.explain("segmentation", old) == (
        "monai==1.6.1 (monai 1.3.0 is installed; 1.6 or newer is needed), "
        "scikit-learn==1.9.1 (scikit-learn 1.5.2 is installed; 1.9 or newer is needed)")
    installed.update({"monai": "1.6.0", "scikit-learn": "1.9.0", "scipy": "1.13.1", "numpy": "2.0.2",
                      "dask": "2026.1.0"})
    assert requirements.missing("segmentation") == []              # a patch release older than the pin is fine
    assert requirements.missing("lungs") == []                     # Slicer 5.10's bundled scipy / own numpy: kept
    assert [r.dist for r in requirements.missing("radiomics")] == ["dask[distributed]"]   # extras: dask's metadata
    installed.update({"monai": "1.3.0", "scikit-learn": "1.9.1", "dask": "2026.8.0"})
    # Slicer 5.10 (no slicer.packaging): the dialog names what is old; pip asked for the pin; pip left it old
    fake = _FakeSlicer(with_packaging=False, confirm=True).install(monkeypatch)
    assert install.ensure("segmentation", "Lung AI Segmentation") is False
    (_, asked), (_, specs, _), (kind, text) = fake.calls
    assert "monai 1.3.0 is installed; 1.6 or newer is needed" in asked and specs == ["monai==1.6.1"]
    assert kind == "error" and "still missing or too old: monai==1.6.1 (monai 1.3.0 is installed" in text
    assert "slicer.util.pip_install('monai==1.6.1')" in text
    # pip upgrades it: the feature is ready
    fake = _FakeSlicer(with_packaging=False, confirm=True).install(monkeypatch)
    pip_install = fake.module.util.pip_install
    monkeypatch.setattr(fake.module.util, "pip_install", lambda args: (pip_install(args), installed.pop("monai")))
    assert install.ensure("segmentation", "Lung AI Segmentation") is True
    assert [c[0] for c in fake.calls] == ["confirm", "pip_install"]


def test_a_job_not_started_and_a_skipped_self_test_say_why_not_an_empty_list(monkeypatch):
    """QA (installb57): when install.ensure refused for a reason other than missing packages (an old torch from
    another extension, a declined install), `logic.run` raised "...are not installed (); nothing was started" and the
    self-test skip said "(see the log) ... no internet".  Both now carry the reason ensure gave."""
    import types

    from LungAICommon import panel

    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    fake.module.app = types.SimpleNamespace(testingEnabled=lambda: True)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    _torch(monkeypatch, present=True, version="2.4.1")           # the PyTorch extension's older torch
    _missing_sequence(monkeypatch)                                # every package there

    @panel.needs("segmentation")
    def start(parameters):
        raise AssertionError("nothing may start")

    with pytest.raises(RuntimeError) as err:
        panel.run_job(start, None, requester="Lung AI Segmentation")
    text = str(err.value)
    assert "()" not in text and "nothing was started" in text and "PyTorch 2.4.1 is installed" in text
    skipped = []
    panel.require_job_packages(types.SimpleNamespace(skipTest=skipped.append), start, requester="Lung AI Segmentation")
    (why,) = skipped
    assert "self-test skipped" in why and "PyTorch 2.4.1 is installed" in why and "see the log" not in why
    assert "internet" not in why
    # a declined install: said so, with the package
    fake = _FakeSlicer(with_packaging=True, decline_pip_ensure=True).install(monkeypatch)
    _torch(monkeypatch, present=True, version="2.13.0")
    monkeypatch.setattr(requirements, "missing", lambda feature: [requirements.PINNED["skops"]])
    with pytest.raises(RuntimeError, match=r"'prediction' \(skops==0.16.0\) are not ready: .*skops==0.16.0 was declined"):
        panel.run_job(panel.needs("prediction")(start), None, requester="Multimodal Predict")


class _FailingProcess:
    """A child that ended with an error (what run_job / finish_job read of a LungAIProcess)."""
    cancelled, succeeded, lines = False, False, ["Traceback ...", "AttributeError: module 'monai' has no attribute X"]

    def start(self):
        pass

    def wait(self, timeout=None):
        return 1

    def cancel(self, block=False):
        pass

    def describe(self):
        return "lungai segment"

    def error_message(self):
        return "AttributeError: module 'monai' has no attribute X"


def test_a_newer_monai_or_scikit_learn_another_extension_installed_is_kept_and_named(monkeypatch, caplog):
    """QA (install58): a package newer than the tested series (MONAI 2.0 installed by SlicerMONAIAuto3DSeg, scikit-learn
    2.1 ...) counted as ready and was used without a word: a job failing on it showed only the child's traceback.  It
    is still kept (never downgraded: the other extension needs it) but named - logged when the packages are checked,
    in the panel's log and in the error of a failed job - with the tested version and how to install it."""
    import logging

    from LungAICommon import install, panel

    real = requirements.installed_version
    installed = {"monai": "2.0.0", "scikit-learn": "2.1.0", "torch": "2.13.0"}
    monkeypatch.setattr(requirements, "installed_version", lambda d: installed.get(d) or real(d))
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    assert requirements.missing("segmentation") == []                       # kept, not replaced
    assert [(r.dist, v) for r, v in requirements.newer_than_tested("segmentation")] == [
        ("monai", "2.0.0"), ("scikit-learn", "2.1.0")]
    fake = _FakeSlicer(with_packaging=True).install(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert install.ensure("segmentation", "Lung AI Segmentation") is True
    assert fake.calls == []                                                  # no dialog, no pip: nothing downgraded
    note = install.last_note
    assert "monai 2.0.0" in note and "monai 1.6.1" in note and "scikit-learn 2.1.0" in note
    assert "slicer.util.pip_install('monai==1.6.1 scikit-learn==1.9.1')" in note and "another extension" in note
    assert note in caplog.text

    @panel.needs("segmentation")
    def start(parameters):
        return panel.PanelJob(_FailingProcess())

    with pytest.raises(RuntimeError) as err:
        panel.run_job(start, None, requester="Lung AI Segmentation")
    assert "has no attribute X" in str(err.value) and note in str(err.value)
    shown = []
    panel.finish_job(panel.PanelJob(_FailingProcess(), packageNote=note), lambda job: None,
                     lambda text, details: shown.append(text), lambda text: None)
    assert "has no attribute X" in shown[0] and note in shown[0]
    # the tested series (MONAI 1.x, scikit-learn 1.x; for 0.x versions the minor: einops 0.8) says nothing
    installed.update({"monai": "1.7.0", "scikit-learn": "1.10.0", "einops": "0.8.9"})
    assert install.ensure("segmentation", "Lung AI Segmentation") is True and install.last_note == ""
    installed["einops"] = "0.9.0"
    assert [r.dist for r, _ in requirements.newer_than_tested("segmentation")] == ["einops"]
    # Slicer's own SimpleITK 3 (a newer Slicer): named, with a tested Slicer as the way back, never pip
    installed.update({"einops": "0.8.2", "SimpleITK": "3.0.0"})
    (found,) = requirements.newer_than_tested("lungs")
    note = requirements.newer_than_tested_note("Lung AI Segmentation", [found])
    assert "SimpleITK 3.0.0 (tested: SimpleITK 2.5.7)" in note and "use a tested Slicer (5.10, 5.12)" in note
    assert "pip_install" not in note
