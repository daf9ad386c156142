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

    @property
    def name(self) -> str:
        """The distribution's name without extras ("dask[distributed]" -> "dask"): what its metadata is under."""
        return self.dist.split("[")[0]

    @property
    def tested_minor(self) -> str:
        """The tested minor version ("1.6.1" -> "1.6"): an installed version older than it is not used as is."""
        return self.version.rsplit(".", 1)[0]


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
# ... but tested at these versions (pyproject.toml; a test cross-checks them): a Slicer with a newer major one is noted
# (:func:`newer_than_tested`).
SLICER_PROVIDED_TESTED = {"numpy": Requirement("numpy", "2.4.6", "numpy"),
                          "SimpleITK": Requirement("SimpleITK", "2.5.7", "SimpleITK")}
# Installed by the PyTorch extension (its CPU/CUDA build): never installed or replaced by pip here.
EXTENSION_PROVIDED = ("torch",)
MIN_TORCH = PINNED["torch"].tested_minor                       # "2.13": the tested minor version

# The supported Slicer releases and what they bundle (../shared/slicer-python/README.md,
# SuperBuild/External_python*.cmake): the requirement lists must resolve against each of them
# (Testing/test_slicer_real.py).  5.8 and older ship Python 3.9, which the pinned packages do not support.
MIN_SLICER_VERSION = (5, 10)
SUPPORTED_SLICERS = {"5.10": {"python": "3.12.10", "numpy": "2.0.2"},
                     "5.12": {"python": "3.12.10", "numpy": "2.4.6"}}

# What each Slicer bundles of the packages below (Slicer's SuperBuild/External_python-*.cmake at tags v5.10.0 and
# v5.12.3; QA read them there): such a package is importable, so lungai runs on the bundled version unless a feature
# needs a newer one (FEATURE_MINIMUMS).  5.12 bundles highdicom (with dcmqi) and pydicom 3; 5.10 pydicom 2.
SLICER_BUNDLED = {"5.10": {"scipy": "1.13.1", "pydicom": "2.4.4"},
                  "5.12": {"scipy": "1.17.1", "pydicom": "3.0.2", "highdicom": "0.27.0"}}
# The oldest version of a package a feature's code works with, where older ones are bundled by a supported Slicer:
# lungai's DICOM SEG / parametric map / SR writers use highdicom 0.28's API (Volume, specific_character_set: 0.27
# failed every export with a TypeError - QA) and pydicom 3's (keep_deferred).  A bundled package below it is
# upgraded to the pin (highdicom in Slicer 5.12: Slicer is then restarted) - except what Slicer keeps (SLICER_KEEPS).
FEATURE_MINIMUMS = {"dicom": {"pydicom": "3.0.1", "highdicom": "0.28"}}
# Slicer's own modules are built on these and import them at start-up (its DICOM module: pydicom 2 in Slicer 5.10;
# pydicom 3 removed APIs): never upgraded - a feature that needs a newer one is unavailable there, said with what to do
SLICER_KEEPS = ("pydicom",)

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


def minimum_version(req: Requirement, feature: str) -> Optional[str]:
    """The oldest version of ``req`` that ``feature`` runs on: :data:`FEATURE_MINIMUMS`, else the tested minor version
    (:attr:`Requirement.tested_minor`) of a package LungAI installs itself - an older MONAI / scikit-learn / skops /
    safetensors another extension installed (SlicerMONAIAuto3DSeg ...) is upgraded to the pin, after asking, rather
    than fail later in the job.  None (any version) for what Slicer bundles (lungai runs on it: SLICER_BUNDLED,
    SLICER_PROVIDED, SLICER_KEEPS), torch (:func:`LungAICommon.install.ensure_torch` checks it) and what an
    extension provides (PROVIDED_BY_EXTENSIONS)."""
    explicit = FEATURE_MINIMUMS.get(feature, {}).get(req.dist)
    if explicit:
        return explicit
    not_ours = {d for bundled in SLICER_BUNDLED.values() for d in bundled}
    not_ours.update(SLICER_PROVIDED, SLICER_KEEPS, EXTENSION_PROVIDED, PROVIDED_BY_EXTENSIONS)
    return None if req.dist in not_ours else req.tested_minor


def too_old(req: Requirement, feature: str) -> Optional[str]:
    """The installed version of ``req`` when it is older than ``feature`` needs (:func:`minimum_version`), else
    None."""
    minimum = minimum_version(req, feature)
    found = installed_version(req.name) if minimum else None
    return found if found and not version_at_least(found, minimum) else None


def explain(feature: str, reqs: list[Requirement]) -> str:
    """``reqs`` as specs, each installed-but-too-old one with the version found and the one needed:
    "monai==1.6.1 (monai 1.3.0 is installed; 1.6 or newer is needed)"."""
    parts = []
    for r in reqs:
        found = too_old(r, feature)
        parts.append(f"{r.spec} ({r.name} {found} is installed; {minimum_version(r, feature)} or newer is needed)"
                     if found else r.spec)
    return ", ".join(parts)


def missing(feature: str) -> list[Requirement]:
    """Requirements of ``feature`` whose package cannot be imported here, or is older than the feature needs
    (:func:`too_old`: installing the pin upgrades it)."""
    return [r for r in requirements_for(feature) if not is_present(r) or too_old(r, feature)]


def kept_too_old(feature: str) -> list[tuple[Requirement, str]]:
    """(requirement, installed version) of the packages Slicer keeps (:data:`SLICER_KEEPS`) that are older than
    ``feature`` needs: the feature cannot run in this Slicer (:func:`kept_too_old_message`)."""
    return [(r, v) for r in requirements_for(feature) if r.dist in SLICER_KEEPS for v in [too_old(r, feature)] if v]


# The command line the refusal gives (run outside Slicer: PythonSlicer has Slicer's pydicom and no lungai on its path);
# its placeholders are the user's (tested by running it: Testing/test_slicer_helpers.py)
KEPT_TOO_OLD_COMMAND = "lungai dicom-export --ct CT_DICOM_FOLDER --tumour LABELS.nii.gz#N -o OUTPUT_FOLDER"


def kept_too_old_message(requester: str, feature: str, found: list[tuple[Requirement, str]]) -> str:
    """What to tell the user when ``feature`` needs a newer package than the one Slicer keeps: the ways that work in
    that Slicer - a newer Slicer, Slicer's own DICOM export (its extensions), or lungai's command line installed
    outside Slicer on the segmentation saved as a label map.  QA: it said only "lungai dicom-export", a command a
    Slicer-only user does not have - and Slicer's own Python (PythonSlicer) cannot run it: it has the same pydicom."""
    listed = ", ".join(f"{r.dist} {FEATURE_MINIMUMS[feature][r.dist]} or newer (this Slicer has {v})" for r, v in found)
    return (f"{requester}: this needs {listed}. This Slicer's own DICOM module is built on the version it bundles, so "
            "LungAI does not replace it (Slicer's Python, PythonSlicer, has the same one).\n\nTo write the DICOM SEG / "
            "RTSTRUCT:\n- use 3D Slicer 5.12 or newer, or\n- in this Slicer, its own DICOM export: install the "
            "QuantitativeReporting extension (DICOM SEG) and SlicerRT (RTSTRUCT), drag the segmentation under the "
            "CT's study in the Data module, right-click it and choose 'Export to DICOM...' (written as your contours: "
            "without lungai's review flag and SlicerLungAI tag), or\n- save the segmentation as a label map on the "
            "CT's grid (Segmentations module, Export to files, NIfTI, 'Use reference geometry' checked: a "
            "segment's label N is its place in the list) and run lungai's command line, installed outside Slicer "
            f"(tools/setup.sh in a SlicerLungAI clone, see docs/slicer.md): {KEPT_TOO_OLD_COMMAND}")


def loaded_too_old(feature: str) -> list[tuple[Requirement, str]]:
    """(requirement, version) of ``feature``'s packages already imported in this process at a version older than
    it needs (Slicer's DICOM module imported its bundled highdicom at start-up): a newer one just installed is used
    only after a restart."""
    import sys

    out = []
    for r in requirements_for(feature):
        minimum = FEATURE_MINIMUMS.get(feature, {}).get(r.dist)
        module = sys.modules.get(r.module)
        version = getattr(module, "__version__", None) if module is not None and minimum else None
        if version and not version_at_least(str(version), minimum):
            out.append((r, str(version)))
    return out


def installed_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """The numeric release parts of ``version`` ("2.13.0+cu121" -> (2, 13, 0), "1.0.0rc1" -> (1, 0, 0))."""
    parts = []
    for piece in str(version).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if not piece.isdigit():
            break
    return tuple(parts)


def version_at_least(version: str, minimum: str) -> bool:
    """``version >= minimum`` on the numeric release parts ("2.13.0+cu121" >= "2.13")."""
    have, need = _release(version), _release(minimum)
    return have[:len(need)] + (0,) * max(0, len(need) - len(have)) >= need


def release_series(version: str) -> tuple[int, ...]:
    """The release series whose versions keep their API (semantic versioning): the major version ("1.6.1" -> (1,),
    "2026.8.0" -> (2026,)), the minor one for a 0.x version ("0.28.2" -> (0, 28))."""
    release = _release(version)
    return release[:2] if release[:1] == (0,) else release[:1]


def newer_than_tested(feature: str) -> list[tuple[Requirement, str]]:
    """(requirement, installed version) of ``feature``'s packages installed in a newer release series than the tested
    pin (:func:`release_series`: MONAI 2.x for the tested 1.6.1, highdicom 0.29 for 0.28.2), Slicer's numpy and
    SimpleITK included (:data:`SLICER_PROVIDED_TESTED`) - another extension's (SlicerMONAIAuto3DSeg ...) or a newer
    Slicer's.  They are used as they are, never downgraded (their owner needs
    them), but named (:func:`newer_than_tested_note`): the job may fail on an API the tested version had."""
    out = []
    for r in [*requirements_for(feature), *SLICER_PROVIDED_TESTED.values()]:
        found = installed_version(r.name)
        if found and release_series(found) > release_series(r.version):
            out.append((r, found))
    return out


def newer_than_tested_note(requester: str, found: list[tuple[Requirement, str]]) -> str:
    """What to tell the user about :func:`newer_than_tested` packages (empty when there are none): they are kept, and
    how to get the tested version if the job fails - with pip for what LungAI installs itself, through *PyTorch Utils*
    for torch, none for what Slicer bundles (its own modules are built on it)."""
    if not found:
        return ""
    listed = ", ".join(f"{r.name} {v} (tested: {r.name} {r.version})" for r, v in found)
    slicers = {d for bundled in SLICER_BUNDLED.values() for d in bundled} | set(SLICER_PROVIDED + SLICER_KEEPS)
    pip = [r.spec for r, _ in found
           if r.dist not in slicers and r.dist not in EXTENSION_PROVIDED and r.dist not in PROVIDED_BY_EXTENSIONS]
    fixes = [f"install the tested version from Slicer's Python console with slicer.util.pip_install('{' '.join(pip)}') "
             "and restart Slicer (the extension that installed the newer one may then need it again)"] if pip else []
    if any(r.dist in EXTENSION_PROVIDED for r, _ in found):
        fixes.append(f"install PyTorch {PINNED['torch'].version} from the 'PyTorch Utils' module (category Utilities)")
    if any(r.dist in slicers for r, _ in found):
        fixes.append("for a package this Slicer bundles, use a tested Slicer (" + ", ".join(SUPPORTED_SLICERS) + ")")
    return (f"{requester}: {listed} {'is newer than the version' if len(found) == 1 else 'are newer than the versions'} "
            "LungAI was tested with and used as installed (by Slicer or another extension, which may need it: LungAI does not replace it). "
            f"If the job fails or its results look wrong, {'; '.join(fixes) or 'report it'}.")


def slicer_version_problem(major: int, minor: int) -> Optional[str]:
    """None on a supported Slicer, else the message shown when a module loads on an older one."""
    if (major, minor) >= MIN_SLICER_VERSION:
        return None
    need = ".".join(map(str, MIN_SLICER_VERSION))
    return (f"The LungAI extension needs 3D Slicer {need} or newer (this is {major}.{minor}): its Python packages need "
            f"Python 3.12 and its panels need Slicer {need}'s parameter-node connectors. Install Slicer {need} or newer.")


def protected_constraints() -> list[str]:
    """pip constraint lines that keep Slicer's own numpy / SimpleITK / pydicom (:data:`SLICER_KEEPS`) and the
    PyTorch extension's torch exactly as they are (pip then fails rather than replace them)."""
    lines = []
    for dist in SLICER_PROVIDED + EXTENSION_PROVIDED + SLICER_KEEPS:
        version = installed_version(dist)
        if version:
            lines.append(f"{dist}=={version}")
    return lines


# pyradiomics comes with the SlicerRadiomics extension (EXTENSION_DEPENDS), built for Slicer's Python;
# pyradiomics-bhklab is a source-only distribution on PyPI, so it is not part of the binary resolve.
PROVIDED_BY_EXTENSIONS = {"pyradiomics-bhklab": "SlicerRadiomics"}


def slicer_unavailable_features(slicer: str) -> list[str]:
    """The features that cannot run in Slicer ``slicer``: one needing a newer version of a package Slicer keeps
    (:data:`SLICER_KEEPS`; Slicer 5.10's pydicom 2 and the DICOM export)."""
    bundled = SLICER_BUNDLED.get(slicer, {})
    return [f for f, minimums in FEATURE_MINIMUMS.items()
            if any(d in SLICER_KEEPS and d in bundled and not version_at_least(bundled[d], v)
                   for d, v in minimums.items())]


def slicer_requirement_specs(slicer: str) -> list[str]:
    """What must resolve inside Slicer ``slicer`` ("5.10", "5.12"): the pinned packages of the features that can run
    there (:func:`slicer_unavailable_features`; torch too: the PyTorch extension installs it, at least the tested
    version), a package Slicer bundles at its bundled version (it is importable, so never installed) unless a
    feature needs a newer one, plus Slicer's own numpy, exactly."""
    bundled, off = SLICER_BUNDLED.get(slicer, {}), slicer_unavailable_features(slicer)
    wanted = {name for f, names in FEATURES.items() if f not in off for name in names}
    specs = []
    for key, r in PINNED.items():
        if key in PROVIDED_BY_EXTENSIONS or key not in wanted:
            continue
        minimum = max((m[r.dist] for f, m in FEATURE_MINIMUMS.items() if f not in off and r.dist in m), default=None)
        keep = r.dist in bundled and (minimum is None or version_at_least(bundled[r.dist], minimum))
        specs.append(f"{r.dist}=={bundled[r.dist]}" if keep else r.spec)
    return specs + [f"numpy=={SUPPORTED_SLICERS[slicer]['numpy']}"]


def describe(reqs: list[Requirement]) -> str:
    return ", ".join(r.spec for r in reqs)
