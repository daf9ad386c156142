"""pyradiomics parameter sets: the presets (default, ibsi-a .. ibsi-e) or a user YAML file.

A parameter set is the plain dict pyradiomics takes (``setting``, ``imageType``, ``featureClass``),
plus lungai's own ``lungai`` block (the lung segments' grid, :mod:`lungai.radiomics.prepare`), which
is removed before pyradiomics sees the dict.

The ``ibsi-a`` .. ``ibsi-e`` presets are ``{"lungai": {"ibsi": "<config>"}, "imageType": ...,
"featureClass": ...}``: extraction then runs :func:`lungai.radiomics.ibsi.compute_ibsi`, the same
code as ``lungai ibsi-check``, and every value is an IBSI-1 feature named by its IBSI tag.  A YAML
file may hold the same block (``lungai: {ibsi: C}``).  ``featureClass`` may name the classes
pyradiomics lacks (gldzm, intensityhistogram, intensityvolume, localintensity; see
:mod:`lungai.radiomics.features`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from lungai.errors import InputError, check_input_file
from lungai.radiomics.features import NEW_CLASSES, PYRADIOMICS_CLASSES

FEATURE_CLASSES = PYRADIOMICS_CLASSES + NEW_CLASSES
IMAGE_TYPES = ("Original", "LoG", "Wavelet")
DEFAULT_LOG_SIGMA = [1.0, 2.0, 3.0]

_COMMON = {"label": 1, "voxelArrayShift": 0, "symmetricalGLCM": True, "distances": [1],
           "gldm_a": 0, "geometryTolerance": 1e-4, "additionalInfo": False}

# The IBSI-1 configurations written as pyradiomics settings alone (pyradiomics' own resampling,
# re-segmentation and bin origin).  Not IBSI-compliant (34/25/12 of 150 features in C/D/E); kept
# only for ``lungai ibsi-check --settings-only``, to show the difference.
PYRADIOMICS_SETTINGS: dict[str, dict] = {
    "A": {"force2D": True, "force2Ddimension": 0, "resegmentRange": [-500, 400], "binWidth": 25},
    "B": {"force2D": True, "force2Ddimension": 0, "resegmentRange": [-500, 400], "binCount": 32,
          "resampledPixelSpacing": [2, 2, 0], "interpolator": "sitkLinear"},
    "C": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear",
          "resegmentRange": [-1000, 400], "binWidth": 25},
    "D": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear",
          "resegmentMode": "sigma", "resegmentRange": [-3, 3], "binCount": 32},
    "E": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline",
          "resegmentMode": "sigma", "resegmentRange": [-3, 3], "binCount": 32},
}

PRESETS: dict[str, dict] = {
    # pyradiomics defaults (bin width 25 HU), all classes, Original image; lung segments on a 2 mm grid (below).
    "default": {"binWidth": 25},
    # IBSI-1 configurations A-E (Zwanenburg et al. 2020; lungai.radiomics.ibsi.configs): the IBSI
    # pipeline of `lungai ibsi-check` (interpolation, re-segmentation, bin origin, every IBSI-1 feature).
    **{f"ibsi-{c.lower()}": {"ibsi": c} for c in "ABCDE"},
}


# lungai's own settings (not pyradiomics'), kept in params["lungai"] (lungai.radiomics.prepare):
# the default preset computes the lung segments on an isotropic 2 mm grid (IBSI-style resampling,
# as in IBSI-1 configurations C-E); the tumour stays on the CT's grid.
LUNGAI_SETTINGS: dict[str, dict] = {"default": {"lung_spacing_mm": 2.0}}


def preset_names() -> list[str]:
    return list(PRESETS)


def _image_type_block(image_types, log_sigma) -> dict:
    out = {}
    for name in image_types:
        canonical = {t.lower(): t for t in IMAGE_TYPES}.get(str(name).lower())
        if canonical is None:
            raise InputError(f"unknown image type {name!r}", f"choose from {', '.join(IMAGE_TYPES)}")
        out[canonical] = {"sigma": list(log_sigma or DEFAULT_LOG_SIGMA)} if canonical == "LoG" else {}
    return out


def _use_log_sigma(params: dict, log_sigma) -> None:
    """Give the LoG image type of ``params`` the sigmas ``log_sigma`` (a parameter file's own replaced); without a LoG
    image type they would be ignored: refused (QA radfind66: ``--log-sigma 2`` alone wrote the Original values only,
    exit 0, and a file's ``LoG: {sigma: [1, 3]}`` kept 1 and 3)."""
    sigmas = list(log_sigma)
    log = (params.get("imageType") or {}).get("LoG")
    shown = " ".join(f"{float(s):g}" for s in sigmas)
    if log is None:
        types = ", ".join(params.get("imageType") or {}) or "none"
        problem = f"--log-sigma {shown} would be ignored: the image types computed are {types} (no LoG)"
        if ibsi_config(params) is not None:       # LoG is refused with an IBSI configuration (_check_ibsi)
            raise InputError(problem, "leave --log-sigma out: the IBSI-1 configurations are defined on the original "
                                      "image only (use --params default for LoG images)")
        raise InputError(problem, f"add LoG to the image types (--image-types Original LoG --log-sigma {shown}), or "
                                  "leave --log-sigma out")
    params["imageType"]["LoG"] = {**(log or {}), "sigma": sigmas}


def _feature_class_block(feature_classes) -> dict:
    out = {}
    for name in feature_classes:
        if name not in FEATURE_CLASSES:
            raise InputError(f"unknown feature class {name!r}", f"choose from {', '.join(FEATURE_CLASSES)}")
        out[name] = []  # [] = every (non-deprecated) feature of the class
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"could not read the parameter file {path}: {exc}",
                         "give a pyradiomics parameter YAML (keys setting, imageType, featureClass)") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a pyradiomics parameter file (no mapping at the top level)",
                         "give a YAML with keys setting, imageType, featureClass")
    unknown = set(data) - {"setting", "imageType", "featureClass", "voxelSetting", "lungai"}
    if unknown:
        raise InputError(f"{path} has unknown top-level keys {sorted(unknown)}",
                         "pyradiomics parameter files only use setting, imageType, featureClass, voxelSetting "
                         "(and lungai's own block 'lungai', e.g. lungai: {ibsi: C})")
    return data


def ibsi_config(params: dict):
    """The :class:`~lungai.radiomics.ibsi.IBSIConfig` a parameter set asks for (``lungai: {ibsi: A..E}``), else None."""
    from lungai.radiomics.ibsi.configs import CONFIGS

    name = (params.get("lungai") or {}).get("ibsi")
    if name is None:
        return None
    cfg = CONFIGS.get(str(name).upper())
    if cfg is None or cfg.name not in "ABCDE":
        raise InputError(f"unknown IBSI configuration {name!r} in the parameters",
                         "use lungai: {ibsi: A}, B, C, D or E")
    return cfg


def _check_ibsi(params: dict) -> None:
    if ibsi_config(params) is None:
        return
    if set(params.get("imageType") or {"Original": {}}) != {"Original"}:
        raise InputError("the IBSI-1 configurations are defined on the original image only",
                         "leave out --image-types (or use --params default for LoG / Wavelet images)")
    if params.get("setting"):
        raise InputError("an IBSI configuration (lungai: {ibsi: A..E}) fixes every setting; the 'setting' block "
                         "would be ignored", "remove the 'setting' block, or remove 'ibsi' to use pyradiomics settings")


def _check_blocks(params: dict, path: Path, replaced: dict) -> None:
    """A file's ``featureClass`` / ``imageType`` / ``voxelSetting`` (and, without an IBSI configuration, ``setting``)
    block is a mapping, and so is each image type's block in ``imageType`` (its settings: ``LoG: {sigma: [1, 2]}``,
    ``Original: {}``): an empty one (``featureClass:`` with every class commented out, ``Original:`` with nothing
    after it: YAML null) or a list reached pyradiomics, whose schema check (pykwalify) failed with a raw traceback -
    in ``lungai radiomics --params`` and the Lung Radiomics panel, which passes the file alone since fe0265c.
    pyradiomics' own loader refuses a null image type too (``Value 'None' is not a dict``), so it is refused here,
    naming it, rather than read as ``{}``.  A null feature class (``firstorder:``) is pyradiomics' "every feature of
    the class" and stays accepted.  ``replaced``: the blocks the command line replaces (``--feature-classes`` /
    ``--image-types``): not read, so accepted as before.  An empty mapping (``{}``) is pyradiomics' "every class" /
    "Original" and stays accepted."""
    blocks = ["featureClass", "imageType", "voxelSetting"]
    if (params.get("lungai") or {}).get("ibsi") is None:
        blocks.append("setting")
    examples = {"featureClass": "featureClass: {firstorder: [], shape: []}", "imageType": "imageType: {Original: {}}",
                "setting": "setting: {binWidth: 25}", "voxelSetting": "voxelSetting: {kernelRadius: 1}"}
    for key in blocks:
        if key not in params or replaced.get(key):
            continue
        value = params[key]
        if not isinstance(value, dict):
            what = "empty" if value is None else f"a {type(value).__name__}, not a mapping"
            option = {"featureClass": "; or give --feature-classes", "imageType": "; or give --image-types"}.get(key, "")
            raise InputError(f"the {key} block of the parameter file {path} is {what}",
                             f"the block is {'empty' if value is None else 'not a mapping'}: list at least one (e.g. "
                             f"'{examples[key]}'), or remove the key {key}{option}")
        if key != "imageType":
            continue
        for name, settings in value.items():
            if isinstance(settings, dict):
                continue
            what = "empty" if settings is None else f"a {type(settings).__name__}, not a mapping"
            raise InputError(f"the image type {name} in the imageType block of the parameter file {path} is {what}: "
                             "an image type's value is the mapping of its own settings",
                             f"write '{name}: {{}}' for the image type without settings of its own (e.g. 'imageType: "
                             "{Original: {}, LoG: {sigma: [1.0, 3.0]}}'), or remove it; or give --image-types")


def load_params(name_or_path: str = "default", image_types=None, feature_classes=None,
                log_sigma=None, lung_spacing_mm: float | None = None) -> dict:
    """The parameter dict for a preset name or a YAML file.

    ``image_types`` (Original/LoG/Wavelet) and ``feature_classes`` override the preset's
    (presets: Original only; ``default`` pyradiomics' seven classes, ``ibsi-*`` every class).
    A YAML file keeps its own blocks unless overridden.
    ``lung_spacing_mm`` overrides the lung segments' isotropic spacing (0 = the CT's own grid;
    not used by the IBSI presets, whose configuration fixes the grid).
    """
    key = str(name_or_path).lower()
    if key in PRESETS and "ibsi" in PRESETS[key]:
        params = {"lungai": copy.deepcopy(PRESETS[key]), "imageType": _image_type_block(["Original"], log_sigma),
                  "featureClass": _feature_class_block(FEATURE_CLASSES)}
    elif key in PRESETS:
        params = {"setting": {**_COMMON, **copy.deepcopy(PRESETS[key])},
                  "imageType": _image_type_block(["Original"], log_sigma),
                  "featureClass": _feature_class_block(PYRADIOMICS_CLASSES)}
        if key in LUNGAI_SETTINGS:
            params["lungai"] = copy.deepcopy(LUNGAI_SETTINGS[key])
    else:
        path = Path(name_or_path)
        if os.path.lexists(path):        # there but not a file (/dev/null, a folder, a link to nothing): say what it is
            check_input_file(path, "--params", f"give one of {', '.join(PRESETS)} or the path of a pyradiomics YAML "
                             "file", "a parameter file")
        if not path.is_file():
            raise InputError(f"--params {name_or_path!r} is neither a preset nor an existing file",
                             f"use one of {', '.join(PRESETS)} or the path of a pyradiomics YAML file")
        params = _read_yaml(path)
        _check_lungai_block(params, path)
        _check_blocks(params, path, replaced={"imageType": bool(image_types), "featureClass": bool(feature_classes)})
        _check_label_setting(params, path)
        params.setdefault("imageType", {"Original": {}})
        if (params.get("lungai") or {}).get("ibsi") is not None:
            params.setdefault("featureClass", _feature_class_block(FEATURE_CLASSES))
        else:
            params.setdefault("setting", {})
            params.setdefault("featureClass", _feature_class_block(PYRADIOMICS_CLASSES))
            params["setting"].setdefault("label", 1)
        for name in params["featureClass"] or {}:
            _feature_class_block([name])
    if image_types:
        params["imageType"] = _image_type_block(image_types, log_sigma)
    if log_sigma:
        _use_log_sigma(params, log_sigma)
    if feature_classes:
        params["featureClass"] = _feature_class_block(feature_classes)
    if lung_spacing_mm is not None:
        if lung_spacing_mm < 0:
            raise InputError(f"lung spacing {lung_spacing_mm} mm is negative", "give a spacing in mm, or 0 for the CT's grid")
        params.setdefault("lungai", {})["lung_spacing_mm"] = float(lung_spacing_mm) or None
    _check_resampled_spacing(params, name_or_path)
    if key not in PRESETS:
        _check_keys(params, Path(name_or_path))
    _check_ibsi(params)
    _check_lung_grid(params, lung_spacing_mm)
    return params


# The keys of a parameter file's ``lungai`` block: the IBSI configuration and the lung segments' spacing, which the file
# sets, and the revisions of the values (:data:`lungai.radiomics.settings.VALUE_REVISIONS`, ``lung_grid_revision``),
# which the settings recorded in a sidecar / model card carry (given back as a file they change nothing: recomputed).
LUNGAI_KEYS = ("ibsi", "lung_spacing_mm")


def _check_lungai_block(params: dict, path: Path) -> None:
    """A parameter file's ``lungai`` block is a mapping of keys lungai reads (:data:`LUNGAI_KEYS`, and the revisions
    recorded settings carry).  A misspelt key (``IBSI: C``, ``lung_spacing: 3``) was silently ignored - pyradiomics'
    default settings computed instead of the IBSI configuration, the lung grid left at the CT's, no word said - and
    a block that is not a mapping (``lungai: ibsi-c``) ended in an AttributeError traceback."""
    from lungai.radiomics.settings import VALUE_REVISIONS
    from lungai.rp.columns import suggest

    block = params.get("lungai")
    if block is not None and not isinstance(block, dict):
        raise InputError(f"the lungai block of the parameter file {path} is {block!r}, not a mapping",
                         "write it as a mapping, e.g. 'lungai: {ibsi: C}' (an IBSI configuration, or --params ibsi-c) "
                         "or 'lungai: {lung_spacing_mm: 2}' (the lung segments' grid)")
    known = (*LUNGAI_KEYS, *VALUE_REVISIONS, "lung_grid_revision")
    for key in block or {}:
        if key not in known:
            raise InputError(f"the parameter file {path} has an unknown key {key!r} in its lungai block"
                             f"{suggest(key, known)}; it would be ignored",
                             f"write one of {', '.join(LUNGAI_KEYS)} (e.g. 'lungai: {{ibsi: C}}' for IBSI "
                             "configuration C, 'lungai: {lung_spacing_mm: 2}' for the lung grid), or remove it")


def _check_keys(params: dict, path: Path) -> None:
    """Every key of the blocks pyradiomics reads is one it knows, and every value one it takes: a misspelt setting
    (``binwidth``), image type (``wavelet``), image type setting (``sigmas``), feature name (``Autocorelation``) or
    value (``interpolator: sitkLinaer``) ended in pyradiomics' pykwalify / ValueError traceback, and only when the
    first segment was computed (after the CT was read).  Each is refused when the parameters are read, naming the key,
    the close spelling and the fix; with pyradiomics' own schema (``radiomics.getParameterValidationFiles``), when
    pyradiomics is installed, and not for an IBSI configuration (which gives pyradiomics no setting)."""
    if (params.get("lungai") or {}).get("ibsi") is not None:
        return
    try:
        import radiomics
    except ImportError:          # checked by pyradiomics itself, if ever installed
        return
    _check_pyradiomics_keys(params, path, radiomics)


def _check_pyradiomics_keys(params: dict, path: Path, radiomics) -> None:
    """:func:`_check_keys` for the blocks pyradiomics reads, with pyradiomics' schema and feature / image type names."""
    import pykwalify.core
    import yaml

    from lungai.radiomics.extract import _EXTRACTOR_LOCK
    from lungai.rp.columns import suggest

    schema_file, functions_file = radiomics.getParameterValidationFiles()
    schema = yaml.safe_load(Path(schema_file).read_text(encoding="utf-8"))["mapping"]
    settings = list(schema["setting"]["mapping"])
    fix_key = "write it as pyradiomics spells it (names are case-sensitive), or remove it"

    def unknown(keys, allowed, where: str, what: str) -> None:
        for key in keys:
            if key not in allowed:
                raise InputError(f"the parameter file {path} has an unknown {what} {key!r} {where}"
                                 f"{suggest(key, allowed)}", f"{fix_key}; pyradiomics' {what}s: {', '.join(allowed)}")

    unknown(params.get("setting") or {}, settings, "in its setting block", "setting")
    unknown(params.get("voxelSetting") or {}, list(schema["voxelSetting"]["mapping"]), "in its voxelSetting block",
            "voxel setting")
    types = params.get("imageType") or {}
    unknown(types, radiomics.getImageTypes(), "in its imageType block", "image type")
    for name, own in types.items():
        unknown(own or {}, settings, f"in the settings of its image type {name}", "setting")
    classes = radiomics.getFeatureClasses()
    pyradiomics_classes = {c: v for c, v in (params.get("featureClass") or {}).items() if c in classes}
    for name, features in pyradiomics_classes.items():
        if isinstance(features, list):
            unknown([str(f) for f in features], list(classes[name].getFeatureNames()),
                    f"in its feature class {name}", f"{name} feature")
    checked = {k: params[k] for k in ("setting", "imageType", "voxelSetting") if params.get(k) is not None}
    checked["featureClass"] = pyradiomics_classes
    log = pykwalify.core.log
    with _EXTRACTOR_LOCK:         # pykwalify's schema loading is not thread-safe (lungai.radiomics.extract)
        disabled, log.disabled = log.disabled, True        # its "--- All found errors ---" lines on stderr
        try:
            core = pykwalify.core.Core(source_data=checked, schema_files=[schema_file], extensions=[functions_file])
            core.validate(raise_exception=False)
            errors = list(core.validation_errors or [])
        except (ValueError, TypeError) as exc:          # pyradiomics' own checks (interpolator, wavelet ...)
            errors = [str(exc)]
        finally:
            log.disabled = disabled
    if errors:
        raise InputError(f"the parameter file {path} has a value pyradiomics does not take: " + "; ".join(errors),
                         "correct that value in the file (pyradiomics' parameter file documentation lists each "
                         "setting's type and range), or remove it for pyradiomics' default")


def _check_label_setting(params: dict, path: Path) -> None:
    """A parameter file's ``setting: label`` other than pyradiomics' default 1 is refused: lungai gives pyradiomics one
    binary segment at a time and takes the mask labels from ``--label`` (radiomics), the manifest's label column
    (radiomics-batch) or the segments / structures (RTSTRUCT, the Slicer panel), so the file's label would be ignored
    and every label of the mask computed.  ``label: 1`` (pyradiomics' example files carry it) changes nothing."""
    label = (params.get("setting") or {}).get("label")
    if label is None or str(label).strip() == "1":
        return
    raise InputError(f"the parameter file {path} sets `label: {label}`, which lungai does not use to choose mask "
                     "labels (it would compute every label of the mask)",
                     f"remove `label` from the file's setting block and give --label {label} to lungai radiomics "
                     "(radiomics-batch: the manifest's label column)")


def _check_resampled_spacing(params: dict, source) -> None:
    """pyradiomics' ``resampledPixelSpacing`` (when given) is a list of 3 non-negative numbers (x, y, z in mm; 0 keeps
    that axis' spacing): a scalar ("resampledPixelSpacing: 2") failed later with a TypeError traceback."""
    spacing = (params.get("setting") or {}).get("resampledPixelSpacing")
    if spacing is None:
        return
    numbers = isinstance(spacing, (list, tuple)) and len(spacing) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in spacing)
    if not numbers:
        raise InputError(f"resampledPixelSpacing {spacing!r} in {source} is not a list of 3 non-negative numbers "
                         "(x, y, z spacing in mm)",
                         "write e.g. 'resampledPixelSpacing: [2, 2, 2]' (0 keeps that axis' spacing), or remove it "
                         "for no pyradiomics resampling")


def _check_lung_grid(params: dict, lung_spacing_mm=None) -> None:
    """A lung spacing (``--lung-spacing``, or ``lung_spacing_mm`` in the file's ``lungai`` block; 0 in either asks
    for no lung resampling and is accepted) with pyradiomics' own resampling (``resampledPixelSpacing``) or with an
    IBSI configuration is refused: pyradiomics' grid / the configuration's grid then holds every segment, lungs
    included (:func:`lungai.radiomics.prepare.prepare`), so the lung spacing would be ignored - as a 'setting' block
    beside an IBSI configuration is refused (:func:`_check_ibsi`).  (QA: ``--params ibsi-c --lung-spacing 3`` computed
    the lungs on configuration C's 2 mm grid, exit 0, no word said.)"""
    from lungai.radiomics.prepare import pyradiomics_resampling

    block = params.get("lungai") or {}
    if lung_spacing_mm:         # 0 (or the file's 0): no lung resampling asked for, nothing ignored
        given = f"--lung-spacing {lung_spacing_mm:g}"
        fix = "leave out --lung-spacing"
    elif block.get("lung_spacing_mm"):
        given = f"the parameter file's 'lungai: {{lung_spacing_mm: {block['lung_spacing_mm']}}}'"
        fix = "remove lung_spacing_mm from the file's lungai block"
    else:
        return
    cfg = ibsi_config(params)
    if cfg is not None:
        x, y, z = cfg.spacing or (None, None, None)
        spacing = ("the CT's own grid" if cfg.spacing is None else f"{x:g} x {y:g} x {z:g} mm" if z is not None
                   else f"{x:g} x {y:g} mm in plane, the CT's own slice spacing")
        raise InputError(f"{given} would be ignored: IBSI configuration {cfg.name} puts every segment, the lungs "
                         f"included, on its own grid ({spacing})",
                         f"{fix} (every segment on configuration {cfg.name}'s grid), or use --params default or a "
                         "parameter file without the IBSI configuration (lung segments on the lung spacing's isotropic "
                         "grid, the tumour on the CT's)")
    grid = pyradiomics_resampling(params)
    if not grid:
        return
    raise InputError(f"{given} would be ignored: the parameter file's resampledPixelSpacing {grid} puts every "
                     "segment, the lungs included, on pyradiomics' grid",
                     f"{fix} (every segment on pyradiomics' {grid} grid), or remove resampledPixelSpacing from the "
                     "parameter file (lung segments on the lung spacing's isotropic grid, the tumour on the CT's)")
