"""Install a feature's missing Python packages on first use, after asking the user (Slicer only).

Called from the panels' Apply handlers - never at import.  As the anchor extensions do
(SlicerMONAIAuto3DSeg, SlicerTotalSegmentator):

- **torch only through the PyTorch extension** (``PyTorchUtils``, an EXTENSION_DEPENDS): it picks the
  CPU / CUDA build for the machine.  When the extension is missing, or the user declines, or the
  installed torch is older than the tested version, a message says what to do - torch is never
  pip-installed from PyPI (a multi-GB CUDA build, possibly the wrong one).
- the other packages after lungai's confirmation (it names an installed version the install replaces), then
  through ``slicer.packaging.pip_ensure`` (Slicer >= 5.12: progress, restart offer; no dialog of its own) when
  that module can be imported, else ``slicer.util.pip_install`` with a list of arguments (paths with spaces stay
  one argument).
- a constraints file pins what is already there and must never be replaced: Slicer's numpy and
  SimpleITK, and the PyTorch extension's torch (:func:`LungAICommon.requirements.protected_constraints`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import subprocess
import tempfile

from LungAICommon import requirements

PYTORCH_EXTENSION_MISSING = ("{requester} needs PyTorch, which comes with the 'PyTorch' extension. Install it from "
                             "the Extensions Manager (View -> Extensions Manager -> PyTorch), restart Slicer and try "
                             "again.")
TORCH_DECLINED = ("{requester} needs PyTorch, which was not installed. Install it from the 'PyTorch Utils' module "
                  "(category Utilities) and try again.")
TORCH_TOO_OLD = ("{requester} was tested with PyTorch {minimum} or newer; PyTorch {found} is installed. Open the "
                 "'PyTorch Utils' module, uninstall PyTorch, restart Slicer and install it again (version {minimum} "
                 "or newer).")
INSTALL_FAILED = ("{requester} could not install {packages}: pip failed ({error}). pip's reason is printed in Slicer's "
                  "Python console (View -> Python Console): for example no internet connection, the package index "
                  "(pypi.org) unreachable from this computer (a proxy or firewall), or a version conflict with a "
                  "package already installed (by Slicer or another extension). Remove that cause, then {how} and "
                  "try again.")
EXTENSION_MISSING = ("{requester} needs {package}, which comes with the '{extension}' extension. Install it from the "
                     "Extensions Manager (View -> Extensions Manager -> {extension}), restart Slicer and try again.")
RESTART_NEEDED = ("{requester}: {packages} installed, but this Slicer session still uses {loaded} (loaded when Slicer "
                  "started). Restart Slicer and try again.")
RESTART_NOW = "\n\nRestart Slicer now?"
INSTALL_HOW = "install them from Slicer's Python console with slicer.util.pip_install('{specs}')"
INSTALL_TORCH_HOW = ("install PyTorch ({specs}) from the 'PyTorch Utils' module (category Utilities), which picks the "
                     "CPU / CUDA build for this computer")


# Why the last :func:`ensure` returned False (the message shown, or the declined install): what ``logic.run`` raises
# and the self-tests skip with - requirements.missing() alone is empty when the cause is an old torch, a pydicom
# Slicer keeps, a package loaded before an upgrade ...
last_problem = ""
# What the last :func:`ensure` that returned True has to say: packages newer than the tested versions, used as they
# are (:func:`requirements.newer_than_tested_note`); the panels log it and add it to a failed job's error.
last_note = ""


def _refuse(text: str, show: bool = True) -> None:
    """Record ``text`` as :data:`last_problem` and show it (``show``: a declined install is not an error)."""
    global last_problem
    last_problem = text
    if show:
        import slicer

        slicer.util.errorDisplay(text)


def _declined(requester: str, specs: list[str]) -> None:
    _refuse(f"{requester}: installing {', '.join(specs)} was declined; nothing was installed.", show=False)


def install_failed_message(requester: str, specs: list[str], error: BaseException, torch: bool = False) -> str:
    """What to tell the user when pip could not install ``specs`` (offline, index unreachable, a version conflict:
    Slicer's pip_install prints pip's reason only to the Python console, so the message points there); ``torch``:
    the PyTorch extension's install failed (torch is installed through it, never with pip_install)."""
    how = (INSTALL_TORCH_HOW if torch else INSTALL_HOW).format(specs=" ".join(specs))
    return INSTALL_FAILED.format(requester=requester, packages=", ".join(specs), error=error, how=how)


def _constraints_file() -> str:
    fd, path = tempfile.mkstemp(prefix="lungai-constraints-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(requirements.protected_constraints()) + "\n")
    return path


def _packaging_module():
    """``slicer.packaging`` (Slicer >= 5.12) - a submodule, so it must be imported, not looked up."""
    try:
        return importlib.import_module("slicer.packaging")
    except ImportError:
        return None


def ensure_torch(requester: str, unattended: bool = False) -> bool:
    """True when torch (at least the tested version) is importable, installing it through the PyTorch extension
    (without asking when ``unattended``: the self-tests in testing mode).  An install that fails (offline) shows
    what to install and how, and returns False, as :func:`ensure` does for the other packages."""
    try:
        import PyTorchUtils  # the PyTorch extension (EXTENSION_DEPENDS)
    except ImportError:
        _refuse(PYTORCH_EXTENSION_MISSING.format(requester=requester))
        return False
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if not requirements.is_present(requirements.PINNED["torch"]):
        spec = f"torch>={requirements.MIN_TORCH}"
        try:
            installed = logic.installTorch(askConfirmation=not unattended,
                                           torchVersionRequirement=f">={requirements.MIN_TORCH}")
        except (subprocess.CalledProcessError, OSError) as exc:    # offline: light-the-torch / pip failed
            _refuse(install_failed_message(requester, [spec], exc, torch=True))
            return False
        if installed is None:
            _refuse(TORCH_DECLINED.format(requester=requester))
            return False
    return _torch_current(requester)


def _torch_current(requester: str) -> bool:
    """True when the installed torch is at least the tested version, else the message saying how to update it."""
    found = requirements.installed_version("torch")
    if found is None or not requirements.version_at_least(found, requirements.MIN_TORCH):
        _refuse(TORCH_TOO_OLD.format(requester=requester, minimum=requirements.MIN_TORCH,
                                     found=found or "(version unknown)"))
        return False
    return True


def pip_install_arguments(specs: list[str], constraints: str) -> list[str]:
    """The argument list for ``slicer.util.pip_install`` (each item quoted by Slicer: Windows paths are safe)."""
    return [*specs, "-c", constraints]


def _pip_ensure_options(pip_ensure, unattended: bool, own_restart: bool = False) -> dict:
    """No install dialog of its own (:func:`ensure` asked already, naming what the install replaces); unattended
    (the self-tests, run by Slicer in testing mode): no restart dialog either, and install even in testing mode -
    Slicer 5.12's ``pip_ensure`` skips installing then unless told ``skip_in_testing=False``.  ``own_restart``: a
    package the install upgrades is loaded at a version the feature cannot use (Slicer's DICOM module's highdicom
    0.27): lungai's own restart question follows (:func:`_loaded_current`), so ``pip_ensure`` shows none - QA: the user
    got Slicer's "Restart Recommended" and then lungai's error for one cause."""
    try:
        params = inspect.signature(pip_ensure).parameters
    except (TypeError, ValueError):
        return {}
    wanted = {"prompt_install": False}
    if unattended or own_restart:
        wanted.update(prompt_restart=False)
    if unattended:
        wanted.update(skip_in_testing=False)
    return {k: v for k, v in wanted.items() if k in params}


def ensure(feature: str, requester: str, unattended: bool = False) -> bool:
    """True when every package of ``feature`` is importable at the version it needs (:func:`requirements.missing`;
    installing or upgrading to the pin after confirmation; without asking and
    in Slicer's testing mode too when ``unattended``: the modules' self-tests).  An install that fails (offline,
    package index unreachable, a version conflict) shows what to install and how, and returns False; the reason of
    any False is kept in :data:`last_problem`.  When True, a package newer than the tested series (another
    extension's MONAI 2 ...: kept, never downgraded) is named in :data:`last_note`, and logged."""
    global last_note
    last_note = ""
    ready = _ensure(feature, requester, unattended)
    if ready:
        last_note = requirements.newer_than_tested_note(requester, requirements.newer_than_tested(feature))
        if last_note:
            logging.warning(last_note)
    return ready


def _ensure(feature: str, requester: str, unattended: bool) -> bool:
    import slicer

    global last_problem
    last_problem = ""
    blocked = requirements.kept_too_old(feature)         # Slicer 5.10's pydicom 2 for the DICOM export
    if blocked:
        _refuse(requirements.kept_too_old_message(requester, feature, blocked))
        return False
    needed = requirements.missing(feature)
    # torch already there (the PyTorch extension installed it earlier, for another extension) is checked too: an older
    # one would be pip's constraint for monai and the install would fail as if offline, or the job run on it.
    if ("torch" in requirements.FEATURES[feature] and not any(r.dist == "torch" for r in needed)
            and not _torch_current(requester)):
        return False
    if not needed:
        return _loaded_current(feature, requester, unattended)
    for r in needed:     # pyradiomics: its extension's build for Slicer's Python (PyPI has only a source package)
        extension = requirements.PROVIDED_BY_EXTENSIONS.get(r.dist)
        if extension:
            _refuse(EXTENSION_MISSING.format(requester=requester, package=f"{r.module} ({r.dist})",
                                             extension=extension))
            return False
    if any(r.dist == "torch" for r in needed):
        if not ensure_torch(requester, unattended=unattended):
            return False
        needed = requirements.missing(feature)
    if not needed:
        return True
    specs = [r.spec for r in needed if r.dist != "torch"]
    # lungai's own confirmation on every Slicer: it names an installed version the install replaces (another
    # extension's MONAI 1.3, Slicer 5.12's highdicom 0.27); 5.12's pip_ensure dialog says only "N Python packages need
    # to be installed", the packages under Show Details (QA install58) - so pip_ensure is told not to ask again
    text = (f"{requester} needs these Python packages, which are not installed yet or older than tested:\n\n"
            f"{requirements.explain(feature, [r for r in needed if r.dist != 'torch'])}\n\nInstall them now? This "
            "can take several minutes. Slicer's own numpy and SimpleITK (and the PyTorch extension's torch) are kept.")
    if not unattended and not slicer.util.confirmOkCancelDisplay(text, windowTitle="Install Python packages"):
        _declined(requester, specs)
        return False
    constraints = _constraints_file()
    try:
        packaging = _packaging_module()
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            try:
                packaging.pip_ensure(specs, constraints=constraints, requester=requester,
                                     **_pip_ensure_options(packaging.pip_ensure, unattended,
                                                           own_restart=bool(requirements.loaded_too_old(feature))))
            except RuntimeError:          # the user declined (a pip_ensure without prompt_install asks again)
                _declined(requester, specs)
                return False
        else:
            slicer.util.pip_install(pip_install_arguments(specs, constraints))
    except (subprocess.CalledProcessError, OSError) as exc:    # offline, index unreachable, no pip ...
        _refuse(install_failed_message(requester, specs, exc))
        return False
    finally:
        os.unlink(constraints)
    still = requirements.missing(feature)
    if still:
        _refuse(f"{requester}: these packages are still missing or too old: {requirements.explain(feature, still)}. "
                f"Install them from the Python console with slicer.util.pip_install('{' '.join(r.spec for r in still)}').")
        return False
    return _loaded_current(feature, requester, unattended)


def _loaded_current(feature: str, requester: str, unattended: bool = False) -> bool:
    """True unless a package of ``feature`` is loaded in this session at a version older than it needs (Slicer's DICOM
    module imported its bundled highdicom at start-up; the newer one installed is used after a restart).  Then one
    dialog says so and offers to restart Slicer now (Slicer's own "Restart Recommended" is not shown for it:
    :func:`_pip_ensure_options`); unattended (the self-tests): the error only."""
    import slicer

    old = requirements.loaded_too_old(feature)
    if old:
        text = RESTART_NEEDED.format(
            requester=requester, packages=", ".join(f"{r.dist} {requirements.installed_version(r.dist)}" for r, _ in old),
            loaded=", ".join(f"{r.dist} {v}" for r, v in old))
        _refuse(text, show=unattended)
        if not unattended and slicer.util.confirmYesNoDisplay(text + RESTART_NOW, windowTitle="Restart Slicer"):
            slicer.util.restart()
    return not old
