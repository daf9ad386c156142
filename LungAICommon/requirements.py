"""The Python packages each panel feature needs, pinned to the versions the project tests.

Pins are copied from ``pyproject.toml`` (a test cross-checks them).  ``numpy`` and ``SimpleITK``
are Slicer's own and are never installed or replaced: :func:`protected_constraints` pins them to
the versions already present when anything is installed.  ``torch`` is installed only through the
PyTorch extension (EXTENSION_DEPENDS), because it picks the right CPU/CUDA build, and is then pinned
too.  Checking uses :func:`importlib.util.find_spec` / metadata only: nothing is imported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata
from typing import Optional


@dataclass(frozen=True)
class Requirement:
    dist: str            # name on PyPI
    version: str         # the pinned, tested version
    module: str          # import name used to check presence

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"


# From pyproject.toml [project.dependencies]; Slicer-provided packages are listed in SLICER_PROVIDED.
PINNED = {
    "scipy": Requirement("scipy", "1.17.1", "scipy"),
    "pandas": Requirement("pandas", "3.1.1", "pandas"),
    "scikit-image": Requirement("scikit-image", "0.26.0", "skimage"),
    "scikit-learn": Requirement("scikit-learn", "1.9.1", "sklearn"),
    "torch": Requirement("torch", "2.13.0", "torch"),
    "monai": Requirement("monai", "1.6.1", "monai"),
    "einops": Requirement("einops", "0.8.2", "einops"),
    "safetensors": Requirement("safetensors", "0.8.0", "safetensors"),
    "skops": Requirement("skops", "0.16.0", "skops"),
    "captum": Requirement("captum", "0.9.0", "captum"),
    "torch-geometric": Requirement("torch-geometric", "2.8.1", "torch_geometric"),
    # SlicerRadiomics ships pyradiomics as `radiomics`; either distribution satisfies this.
    "pyradiomics-bhklab": Requirement("pyradiomics-bhklab", "3.1.4", "radiomics"),
    "pydicom": Requirement("pydicom", "3.0.2", "pydicom"),
    "highdicom": Requirement("highdicom", "0.28.2", "highdicom"),
    "dask": Requirement("dask[distributed]", "2026.8.0", "dask"),
    "distributed": Requirement("distributed", "2026.8.0", "distributed"),
    "matplotlib": Requirement("matplotlib", "3.11.2", "matplotlib"),
    "tqdm": Requirement("tqdm", "4.70.1", "tqdm"),
    "PyYAML": Requirement("PyYAML", "6.0.3", "yaml"),
}

# Part of every 3D Slicer: never installed, never upgraded by us.
SLICER_PROVIDED = ("numpy", "SimpleITK")
# Installed by the PyTorch extension (its CPU/CUDA build): never installed or replaced by pip here.
EXTENSION_PROVIDED = ("torch",)
MIN_TORCH = PINNED["torch"].version.rsplit(".", 1)[0]          # "2.13": the tested minor version

# The supported Slicer releases and what they bundle (../shared/slicer-python/README.md,
# SuperBuild/External_python*.cmake): the requirement lists must resolve against each of them
# (Testing/test_slicer_real.py).  5.8 and older ship Python 3.9, which the pinned packages do not support.
MIN_SLICER_VERSION = (5, 10)
SUPPORTED_SLICERS = {"5.10": {"python": "3.12.10", "numpy": "2.0.2"},
                     "5.12": {"python": "3.12.10", "numpy": "2.4.6"}}

_CORE = ("scipy", "scikit-image", "pydicom", "tqdm", "PyYAML", "pandas")
FEATURES: dict[str, tuple[str, ...]] = {
    "lungs": _CORE,
    # scikit-learn: the confidence calibration at the end of training
    "segmentation": _CORE + ("torch", "monai", "einops", "safetensors", "scikit-learn"),
    "radiomics": _CORE + ("pyradiomics-bhklab", "dask", "distributed"),
    # monai: the stage model's CT branch (its convolution blocks)
    "prediction": _CORE + ("scikit-learn", "skops", "torch", "captum", "torch-geometric", "safetensors",
                           "matplotlib", "monai", "einops"),
    # the segmentation panel's export as DICOM SEG + RTSTRUCT (in Slicer's own process)
    "dicom": _CORE + ("highdicom",),
}


def requirements_for(feature: str) -> list[Requirement]:
    if feature not in FEATURES:
        raise KeyError(f"unknown feature {feature!r}; known: {sorted(FEATURES)}")
    return [PINNED[name] for name in FEATURES[feature]]


def is_present(req: Requirement) -> bool:
    try:
        return importlib.util.find_spec(req.module) is not None
    except (ImportError, ValueError):
        return False


def missing(feature: str) -> list[Requirement]:
    """Requirements of ``feature`` whose package cannot be imported here."""
    return [r for r in requirements_for(feature) if not is_present(r)]


def installed_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def version_at_least(version: str, minimum: str) -> bool:
    """``version >= minimum`` on the numeric release parts ("2.13.0+cu121" >= "2.13")."""
    def release(v):
        parts = []
        for piece in str(v).split("+")[0].split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            if not digits:
                break
            parts.append(int(digits))
            if not piece.isdigit():
                break
        return tuple(parts)

    have, need = release(version), release(minimum)
    return have[:len(need)] + (0,) * max(0, len(need) - len(have)) >= need


def slicer_version_problem(major: int, minor: int) -> Optional[str]:
    """None on a supported Slicer, else the message shown when a module loads on an older one."""
    if (major, minor) >= MIN_SLICER_VERSION:
        return None
    need = ".".join(map(str, MIN_SLICER_VERSION))
    return (f"The LungAI extension needs 3D Slicer {need} or newer (this is {major}.{minor}): its Python packages need "
            f"Python 3.12 and its panels need Slicer {need}'s parameter-node connectors. Install Slicer {need} or newer.")


def protected_constraints() -> list[str]:
    """pip constraint lines that keep Slicer's own numpy / SimpleITK and the PyTorch extension's torch
    exactly as they are (pip then fails rather than replace them)."""
    lines = []
    for dist in SLICER_PROVIDED + EXTENSION_PROVIDED:
        version = installed_version(dist)
        if version:
            lines.append(f"{dist}=={version}")
    return lines


# pyradiomics comes with the SlicerRadiomics extension (EXTENSION_DEPENDS), built for Slicer's Python;
# pyradiomics-bhklab is a source-only distribution on PyPI, so it is not part of the binary resolve.
PROVIDED_BY_EXTENSIONS = {"pyradiomics-bhklab": "SlicerRadiomics"}


def slicer_requirement_specs(slicer: str) -> list[str]:
    """What must resolve inside Slicer ``slicer`` ("5.10", "5.12"): every pinned package (torch too: the
    PyTorch extension installs it, at least the tested version) plus Slicer's own numpy, exactly."""
    specs = [r.spec for key, r in PINNED.items() if key not in PROVIDED_BY_EXTENSIONS]
    return specs + [f"numpy=={SUPPORTED_SLICERS[slicer]['numpy']}"]


def describe(reqs: list[Requirement]) -> str:
    return ", ".join(r.spec for r in reqs)
