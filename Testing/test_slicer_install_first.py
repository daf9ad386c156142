"""Packages installed before a job starts - from the panels, the Python console (``logic.run``) and the
modules' self-tests - against 3D Slicer's OWN ``slicer.util`` / ``slicer.packaging`` of 5.10 and 5.12
(slicer_real.py); and the pyradiomics distribution recorded and noted.

Packaging QA walk (docs/slicer.md "Python packages"):

- the self-tests (run by the extension build servers with ``--testing``) and ``logic.run`` never installed
  anything: on 5.12 ``slicer.packaging.pip_ensure`` skips installing in testing mode unless told
  ``skip_in_testing=False``, so ``lungai segment`` started without torch / monai (ModuleNotFoundError);
- on 5.10 (no ``slicer.packaging``) an offline ``slicer.util.pip_install`` raised CalledProcessError out of
  ``install.ensure``: "Feature extraction could not start. Command [...] returned non-zero exit status 1";
- SlicerRadiomics' upstream pyradiomics counted as the verified pyradiomics-bhklab, silently.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import unittest

import pytest

from slicer_real import REPO, SLICER_PYTHON, TAGS, import_module_file, real_slicer

pytestmark = pytest.mark.shared_data


@pytest.fixture(params=TAGS)
def env(request, mrml_scene, tmp_path):
    import gc
    import types

    if not (SLICER_PYTHON / request.param).is_dir():
        pytest.skip(f"needs {SLICER_PYTHON / request.param}")
    gc.collect()
    gc.disable()
    try:
        with real_slicer(request.param, mrml_scene, tmp_path) as slicer:
            yield types.SimpleNamespace(tag=request.param, slicer=slicer, scene=mrml_scene, tmp=tmp_path)
    finally:
        gc.enable()
        gc.collect()


class _Pip:
    """Records what Slicer's own installer is asked to install (5.12: ``slicer.packaging.pip_install`` under the
    real ``pip_ensure``; 5.10: ``slicer.util.pip_install``); ``fail`` makes it fail like pip offline."""

    def __init__(self, env, monkeypatch, fail=False, still_missing=None):
        from LungAICommon import install, requirements

        self.installed, self.errors, self.env = [], [], env
        self.missing = {}                      # feature -> what is missing until pip ran
        self.ran = False

        def pip(reqs, *args, **kwargs):
            reqs = [str(r) for r in (reqs if isinstance(reqs, list) else [reqs])]
            self.installed.append(reqs[:reqs.index("-c")] if "-c" in reqs else reqs)   # 5.10: [..., "-c", file]
            if fail:
                raise subprocess.CalledProcessError(1, [sys.executable, "-m", "pip", "install", *map(str, reqs)])
            self.ran = True

        packaging = install._packaging_module()
        if packaging is not None:                            # 5.12: the real pip_ensure, its check says "missing"
            monkeypatch.setattr(packaging, "pip_install", pip)
            monkeypatch.setattr(packaging, "pip_check", lambda req: False)
        monkeypatch.setattr(env.slicer.util, "pip_install", pip)
        monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, **kw: self.errors.append(text))
        monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: True, raising=False)
        skops = [requirements.PINNED["skops"]]
        scipy = [requirements.PINNED["scipy"]]

        def missing(feature):
            if self.ran and not still_missing:
                return []
            return scipy if feature in ("lungs", "radiomics") else skops

        monkeypatch.setattr(install.requirements, "missing", missing)


def _test_result(test_class, method, monkeypatch, module):
    """Run one self-test method as Slicer's ``slicer.testing.runUnitTest`` does (unittest), the sample loading
    replaced by a marker: whatever the test does after the packages is not what is checked here."""
    reached = []

    def sample(*args, **kwargs):
        reached.append(True)
        raise unittest.SkipTest("sample reached")

    monkeypatch.setattr(module.sampledata, "load_into_slicer", sample)
    result = unittest.TestResult()
    test_class(method).run(result)
    return result, reached


@pytest.mark.parametrize("module_name, test_name, method", [
    ("LungAISeg", "LungAISegTest", "test_lungs_on_sample"),
    ("LungRadiomics", "LungRadiomicsTest", "test_tumour_features_on_sample")])
def test_self_test_installs_its_packages_in_testing_mode(env, monkeypatch, module_name, test_name, method):
    """In Slicer's testing mode the self-test installs what its job needs (5.12: pip_ensure with
    skip_in_testing=False, no dialog) before it runs the job."""
    m = import_module_file(module_name)
    pip = _Pip(env, monkeypatch)
    result, reached = _test_result(getattr(m, test_name), method, monkeypatch, m)
    assert pip.installed == [["scipy==1.17.1"]], (env.tag, pip.installed)
    assert reached and not result.errors and not result.failures


def test_self_test_skips_with_the_reason_when_offline(env, monkeypatch):
    m = import_module_file("LungRadiomics")
    pip = _Pip(env, monkeypatch, fail=True)
    result, reached = _test_result(m.LungRadiomicsTest, "test_tumour_features_on_sample", monkeypatch, m)
    assert not reached and not result.errors and not result.failures
    ((_, why),) = result.skipped
    assert "self-test skipped" in why and "scipy==1.17.1" in why and "internet" in why
    assert pip.errors and "slicer.util.pip_install('scipy==1.17.1')" in pip.errors[0]


def test_console_run_installs_the_jobs_packages_first(env, monkeypatch):
    """``logic.run(logic.startRisk, p)`` (Python console) installs what the risk job needs, as the panel's
    button does; when it cannot, nothing starts and RuntimeError names the packages."""
    m = import_module_file("MultimodalPredict")
    logic = m.MultimodalPredictLogic()
    pip = _Pip(env, monkeypatch, fail=True)
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)   # a user's console
    asked = []
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda *a, **k: asked.append(a) or True)
    with pytest.raises(RuntimeError, match=r"nothing was started - the Python packages of 'prediction' "
                                           r"\(skops==0.16.0\) are not ready: .* could not install skops==0.16.0"):
        logic.run(logic.startRisk, logic.getParameterNode())
    assert pip.installed == [["skops==0.16.0"]] and len(asked) == 1     # asked first, as the button does


def test_one_place_says_which_packages_a_job_needs():
    """Every logic ``start...`` method is marked with its feature (panel.needs); the panels' buttons pass no
    feature of their own."""
    from LungAICommon.requirements import FEATURES

    for module in ("LungAISeg", "LungRadiomics", "MultimodalPredict"):
        tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
        logic = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{module}Logic")
        starts = [f for f in logic.body if isinstance(f, ast.FunctionDef) and f.name.startswith("start")
                  and f.name[5:6].isupper()]
        assert starts
        for f in starts:
            marks = [d for d in f.decorator_list if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "needs"]
            assert len(marks) == 1 and marks[0].args[0].value in FEATURES, f"{module}Logic.{f.name}"
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "startJob":
                assert getattr(call.args[1], "attr", "").startswith("start"), module   # (message, logic.startX, ...)


@pytest.mark.parametrize("feature, specs", [("radiomics", "scipy==1.17.1"), ("prediction", "skops==0.16.0")])
def test_offline_install_says_what_to_do(env, monkeypatch, feature, specs):
    """pip failing (offline, index unreachable) -> False and a message naming the packages, the likely cause
    and the command to run when online - not "Command [...] returned non-zero exit status 1" from the button."""
    from LungAICommon import install

    pip = _Pip(env, monkeypatch, fail=True)
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda *a, **k: True)
    assert install.ensure(feature, "Lung Radiomics") is False
    (text,) = pip.errors
    assert specs in text and "internet" in text and "package index" in text
    assert f"slicer.util.pip_install('{specs}')" in text and "exit status 1" in text


# ---------------------------------------------------------------------------- pyradiomics distribution
def test_pyradiomics_distribution_recorded_and_noted_when_not_the_verified_one(monkeypatch, capsys):
    from lungai.cli import radiomics as cli
    from lungai.radiomics import settings

    assert settings.pyradiomics_distribution() == settings.VERIFIED_PYRADIOMICS     # this environment
    assert settings.versions()["pyradiomics_distribution"] == "pyradiomics-bhklab 3.1.4"
    assert "pyradiomics_distribution pyradiomics-bhklab 3.1.4" in settings.versions_text()
    assert settings.pyradiomics_note() is None
    monkeypatch.setattr(settings, "pyradiomics_distribution", lambda: ("pyradiomics", "3.0.1"))
    assert settings.versions()["pyradiomics_distribution"] == "pyradiomics 3.0.1"
    note = settings.pyradiomics_note()
    assert note == ("IBSI figures were verified with pyradiomics-bhklab 3.1.4; this is pyradiomics 3.0.1: "
                    "run `lungai ibsi-check` to verify")
    cli._pyradiomics_note()
    assert capsys.readouterr().err == f"note: {note}\n"


def test_radiomics_panel_notes_another_pyradiomics_once(env, monkeypatch):
    from lungai.radiomics import settings

    m = import_module_file("LungRadiomics")
    assert m.LungRadiomicsLogic.pyradiomicsNote() == ""
    monkeypatch.setattr(settings, "pyradiomics_distribution", lambda: ("pyradiomics", "3.0.1"))
    first = m.LungRadiomicsLogic.pyradiomicsNote()
    assert first.startswith("\nnote: IBSI figures were verified with pyradiomics-bhklab 3.1.4; this is pyradiomics")
    assert m.LungRadiomicsLogic.pyradiomicsNote() == ""          # once


def test_lungai_common_docstring_names_existing_modules():
    import LungAICommon

    named = {n.split(".")[-1] for n in __import__("re").findall(r":mod:`\.(\w+)`", LungAICommon.__doc__)}
    assert named and all((REPO / "LungAICommon" / f"{n}.py").is_file() for n in named), named


# ---------------------------------------------------------------------------- torch offline, user sessions
class _OfflineTorch:
    """The PyTorch extension's logic when offline: ``installTorch`` raises CalledProcessError (light-the-torch /
    ``slicer.util.pip_install``), as it does without a connection; records what it was asked."""

    def __init__(self, monkeypatch, fail=True):
        import types

        from LungAICommon import install, requirements

        self.calls = []
        outer = self

        class Logic:
            def installTorch(self, askConfirmation, torchVersionRequirement):
                outer.calls.append(askConfirmation)
                if fail:
                    raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", "pip", "install", "torch"])
                return None                                     # declined

        monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
        monkeypatch.setattr(install.requirements, "missing",
                            lambda f: [requirements.PINNED["torch"], requirements.PINNED["monai"]])
        monkeypatch.setattr(install.requirements, "is_present", lambda r: False)


def test_offline_torch_install_says_what_to_do(env, monkeypatch):
    """The PyTorch extension failing to install torch offline -> False and the install-failed message with the
    torch requirement and where to install it from - not CalledProcessError out of install.ensure."""
    from LungAICommon import install, requirements

    pip = _Pip(env, monkeypatch, fail=True)
    torch = _OfflineTorch(monkeypatch)
    assert install.ensure("segmentation", "Lung AI Segmentation", unattended=True) is False
    assert torch.calls == [False] and pip.installed == []       # monai is not tried without torch
    (text,) = pip.errors
    assert text.startswith(f"Lung AI Segmentation could not install torch>={requirements.MIN_TORCH}: pip failed")
    assert "internet" in text and "'PyTorch Utils' module" in text and "exit status 1" in text


def test_offline_torch_self_test_skips_with_the_reason(env, monkeypatch):
    m = import_module_file("LungAISeg")
    pip = _Pip(env, monkeypatch, fail=True)
    _OfflineTorch(monkeypatch)
    result, reached = _test_result(m.LungAISegTest, "test_tumour_on_sample", monkeypatch, m)
    assert not reached and not result.errors and not result.failures, result.errors
    ((_, why),) = result.skipped
    assert "self-test skipped" in why and "torch==" in why
    assert len(pip.errors) == 1 and "torch>=" in pip.errors[0]


def test_self_test_in_a_user_session_asks_first(env, monkeypatch):
    """"Reload and Test" / the console in a user's Slicer (not --testing): the self-test asks before installing
    (torch is GBs), as the panel's button does; declined -> skipped, nothing installed."""
    m = import_module_file("LungRadiomics")
    pip = _Pip(env, monkeypatch)
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)
    asked = []
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda *a, **k: asked.append(a) and False)
    result, reached = _test_result(m.LungRadiomicsTest, "test_tumour_features_on_sample", monkeypatch, m)
    assert len(asked) == 1 and pip.installed == [] and not reached
    ((_, why),) = result.skipped
    assert "self-test skipped" in why and "scipy==1.17.1" in why


def test_self_test_in_a_user_session_asks_before_torch(env, monkeypatch):
    m = import_module_file("LungAISeg")
    _Pip(env, monkeypatch)
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)
    torch = _OfflineTorch(monkeypatch, fail=False)                # the user declines PyTorch Utils' dialog
    result, reached = _test_result(m.LungAISegTest, "test_tumour_on_sample", monkeypatch, m)
    assert torch.calls == [True] and not reached and len(result.skipped) == 1


# ---------------------------------------------------------------------------- pyradiomics without metadata
def test_pyradiomics_from_a_source_checkout_is_unknown_not_the_installed_one(tmp_path):
    """A radiomics folder on PYTHONPATH (source checkout, copy) is not the installed pyradiomics-bhklab 3.1.4:
    recorded as an unknown distribution with the module's own version, and noted."""
    (tmp_path / "radiomics").mkdir()
    (tmp_path / "radiomics" / "__init__.py").write_text('__version__ = "v3.0.1"\n')
    code = ("from lungai.radiomics import settings\n"
            "print(settings.versions()['pyradiomics_distribution']); print(settings.pyradiomics_note())")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}{__import__('os').pathsep}{REPO}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["unknown distribution (no package metadata) v3.0.1",
                   "IBSI figures were verified with pyradiomics-bhklab 3.1.4; this is unknown distribution (no "
                   "package metadata) v3.0.1: run `lungai ibsi-check` to verify"]


def test_docs_versions_example_names_the_pyradiomics_distribution():
    from lungai.radiomics import settings

    row = next(line for line in (REPO / "docs" / "radiomics.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `versions` |"))
    keys = [part.split(" ")[0] for part in settings.versions_text().split("; ")]
    assert [part.split(" ")[0] for part in row.split("|")[2].strip().split("; ")] == keys
    assert "pyradiomics_distribution pyradiomics-bhklab 3.1.4" in row


def test_dicom_export_in_a_slicer_keeping_an_old_pydicom_says_what_to_do_and_installs_nothing(env, monkeypatch):
    """QA: on Slicer 5.10 (pydicom 2.4.4 bundled) installing highdicom 0.28 would have upgraded Slicer's own pydicom,
    and the export then failed with a raw TypeError / ImportError.  Nothing is installed; the message says which
    version is needed and what to use instead.  On 5.12 (highdicom 0.27.0 bundled, imported at start-up) the pin is
    installed and the user is told to restart; pyradiomics missing names its extension, never pip."""
    import importlib.util
    import types

    from LungAICommon import install, requirements

    installed = {"pydicom": "2.4.4", "highdicom": "0.27.0"}
    real_version = requirements.installed_version
    monkeypatch.setattr(requirements, "installed_version", lambda d: installed.get(d) or real_version(d))
    pip, errors = [], []
    monkeypatch.setattr(env.slicer.util, "pip_install", lambda *a, **k: pip.append(a))
    packaging = install._packaging_module()
    if packaging is not None:
        monkeypatch.setattr(packaging, "pip_install", lambda *a, **k: pip.append(a))
        monkeypatch.setattr(packaging, "pip_check", lambda req: False)
    monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, **kw: errors.append(text))
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda *a, **k: True)
    assert install.ensure("dicom", "Lung AI Segmentation", unattended=True) is False
    assert not pip and len(errors) == 1 and "pydicom 3.0.1 or newer (this Slicer has 2.4.4)" in errors[0]
    installed["pydicom"] = "3.0.2"                                 # Slicer 5.12: highdicom 0.27.0 loaded at start-up
    loaded = types.ModuleType("highdicom")         # the bundled highdicom Slicer's DICOM module imported
    loaded.__spec__, loaded.__version__ = importlib.util.find_spec("highdicom"), "0.27.0"
    monkeypatch.setitem(sys.modules, "highdicom", loaded)

    def pip_then_new(*args, **kwargs):
        pip.append(args)
        installed["highdicom"] = "0.28.2"
    monkeypatch.setattr(env.slicer.util, "pip_install", pip_then_new)
    if packaging is not None:
        monkeypatch.setattr(packaging, "pip_install", pip_then_new)
    assert install.ensure("dicom", "Lung AI Segmentation", unattended=True) is False
    assert pip and "highdicom==0.28.2" in str(pip[-1]) and "pydicom" not in str(pip[-1]).replace("-c", "")
    assert "Restart Slicer" in errors[-1] and "highdicom 0.27.0" in errors[-1], errors
    monkeypatch.setattr(requirements, "is_present", lambda r: r.dist != "pyradiomics-bhklab")
    n = len(pip)
    assert install.ensure("radiomics", "Lung Radiomics", unattended=True) is False
    assert len(pip) == n and "SlicerRadiomics" in errors[-1] and "Extensions Manager" in errors[-1]


def test_a_highdicom_upgraded_while_slicers_old_one_is_loaded_asks_to_restart_once(env, monkeypatch):
    """QA (slicerdcm58): on Slicer 5.12 the export's highdicom upgrade (0.27.0 loaded by Slicer's DICOM module at
    start-up) gave Slicer's "Restart Recommended" question and then lungai's error "Restart Slicer and try again" -
    two dialogs for one cause.  Now one: lungai's, naming both versions, offering to restart now (Yes restarts;
    No: nothing exported, the reason kept in last_problem)."""
    import importlib.util
    import types

    from LungAICommon import install, requirements

    installed = {"pydicom": "3.0.2", "highdicom": "0.27.0"}
    real_version = requirements.installed_version
    monkeypatch.setattr(requirements, "installed_version", lambda d: installed.get(d) or real_version(d))
    loaded = types.ModuleType("highdicom")
    loaded.__spec__, loaded.__version__ = importlib.util.find_spec("highdicom"), "0.27.0"
    monkeypatch.setitem(sys.modules, "highdicom", loaded)
    pip, dialogs, restarts = [], [], []

    def pip_then_new(*args, **kwargs):
        pip.append(args)
        installed["highdicom"] = "0.28.2"
    monkeypatch.setattr(env.slicer.util, "pip_install", pip_then_new)
    packaging = install._packaging_module()
    if packaging is not None:                 # 5.12: the real pip_ensure, its restart check seeing the upgrade
        monkeypatch.setattr(packaging, "pip_install", pip_then_new)
        monkeypatch.setattr(packaging, "pip_check", lambda req: False)
        monkeypatch.setattr(packaging, "_find_updated_imported_packages",
                            lambda before, after: [("highdicom", "0.27.0", installed["highdicom"])])
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)
    monkeypatch.setattr(env.slicer.app, "restart", lambda: restarts.append(1), raising=False)
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda text, *a, **k: True)   # install: yes
    monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, *a, **k: dialogs.append(("error", text)))
    answer = [False]
    monkeypatch.setattr(env.slicer.util, "confirmYesNoDisplay",
                        lambda text, *a, **k: dialogs.append(("question", text)) or answer[0])
    assert install.ensure("dicom", "Lung AI Segmentation") is False
    assert pip and "highdicom==0.28.2" in str(pip[-1])
    (kind, text), = dialogs                                    # one dialog, not Slicer's and then lungai's
    assert kind == "question" and "highdicom 0.28.2 installed" in text and "still uses highdicom 0.27.0" in text
    assert "Restart Slicer now?" in text and not restarts and "Restart Slicer" in install.last_problem
    dialogs.clear()
    answer[0] = True                                           # clicked again (installed, old one loaded): Yes
    assert install.ensure("dicom", "Lung AI Segmentation") is False
    assert [k for k, _ in dialogs] == ["question"] and restarts == [1]


def test_the_confirmation_says_which_installed_package_an_install_replaces(env, monkeypatch):
    """QA (install58): on Slicer 5.12 the confirmation was pip_ensure's own - "1 Python package needs to be installed.
    This will modify Slicer's Python environment. Continue?", the package only under Show Details and not a word that
    it replaces the MONAI 1.3.0 another extension (SlicerMONAIAuto3DSeg) installed; docs/slicer.md promised it named
    it (as 5.10's dialog did).  Now both Slicers ask with lungai's text, once; declined: nothing installed."""
    from LungAICommon import install, requirements

    real_version = requirements.installed_version
    installed = {"monai": "1.3.0", "torch": "2.13.0"}
    monkeypatch.setattr(requirements, "installed_version", lambda d: installed.get(d) or real_version(d))
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    pip, asked = [], []
    monkeypatch.setattr(env.slicer.util, "pip_install", lambda *a, **k: pip.append(a))
    packaging = install._packaging_module()
    if packaging is not None:                      # 5.12: the real pip_ensure; its check sees the old MONAI
        monkeypatch.setattr(packaging, "pip_install", lambda *a, **k: pip.append(a))
        monkeypatch.setattr(packaging, "pip_check", lambda req: False)
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)

    def confirm(text, *args, **kwargs):
        asked.append(text)
        return False
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", confirm)
    assert install.ensure("segmentation", "Lung AI Segmentation") is False
    (text,) = asked
    assert "monai==1.6.1 (monai 1.3.0 is installed; 1.6 or newer is needed)" in text, text
    assert not pip and "was declined" in install.last_problem
    # accepted: installed once, without a second (pip_ensure's) dialog
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda text, *a, **k: asked.append(text) or True)
    assert install.ensure("segmentation", "Lung AI Segmentation") is False        # (pip faked: monai stays 1.3.0)
    assert len(asked) == 2 and len(pip) == 1 and "monai==1.6.1" in str(pip[0])
