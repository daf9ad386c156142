"""Install a feature's missing Python packages on first use, after asking the user (Slicer only).

Called from the panels' Apply handlers - never at import.  Uses ``slicer.packaging.pip_ensure``
(Slicer >= 5.10 preview: check, confirm, install with progress) when it exists, else a
confirmation dialog and ``slicer.util.pip_install``.  ``torch`` goes through the PyTorch
extension's installer.  Slicer's own numpy/SimpleITK are pinned by a constraints file.
"""

from __future__ import annotations

import inspect
import os
import tempfile

from LungAICommon import requirements


def _constraints_file() -> str:
    fd, path = tempfile.mkstemp(prefix="lungai-constraints-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(requirements.protected_constraints()) + "\n")
    return path


def _install_torch(requester: str) -> bool:
    import slicer

    try:
        import PyTorchUtils  # the PyTorch extension (EXTENSION_DEPENDS)
    except ImportError:
        return False
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
        askConfirmation=True, torchVersionRequirement=f">={requirements.PINNED['torch'].version.rsplit('.', 1)[0]}")
    if torch is None:
        slicer.util.warningDisplay(f"{requester} needs PyTorch, which was not installed.")
    return torch is not None


def ensure(feature: str, requester: str) -> bool:
    """True when every package of ``feature`` is importable (installing after confirmation)."""
    import slicer

    needed = requirements.missing(feature)
    if not needed:
        return True
    if any(r.dist == "torch" for r in needed) and _install_torch(requester):
        needed = requirements.missing(feature)
    if not needed:
        return True
    specs = [r.spec for r in needed]
    constraints = _constraints_file()
    try:
        packaging = getattr(slicer, "packaging", None)
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            kwargs = {"requester": requester}
            if "constraints" in inspect.signature(packaging.pip_ensure).parameters:
                kwargs["constraints"] = constraints
            packaging.pip_ensure(specs, **kwargs)
        else:
            text = (f"{requester} needs these Python packages, which are not installed yet:\n\n"
                    f"{requirements.describe(needed)}\n\nInstall them now? This can take several minutes. "
                    "Slicer's own numpy and SimpleITK are kept.")
            if not slicer.util.confirmOkCancelDisplay(text, windowTitle="Install Python packages"):
                return False
            slicer.util.pip_install(" ".join(specs) + f" -c {constraints}")
    finally:
        os.unlink(constraints)
    still = requirements.missing(feature)
    if still:
        slicer.util.errorDisplay(f"{requester}: these packages are still missing: {requirements.describe(still)}. "
                                 "Install them from the Python console with slicer.util.pip_install(...).")
    return not still

