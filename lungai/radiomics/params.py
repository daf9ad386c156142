"""pyradiomics parameter sets: the presets (default, ibsi-a .. ibsi-e) or a user YAML file.

A parameter set is the plain dict pyradiomics takes (``setting``, ``imageType``, ``featureClass``),
plus lungai's own ``lungai`` block (the lung segments' grid, :mod:`lungai.radiomics.prepare`), which
is removed before pyradiomics sees the dict.

The ``ibsi-*`` presets are the IBSI-1 configurations expressed with pyradiomics settings only
(pyradiomics resamples internally).  Full IBSI compliance additionally needs IBSI-style
interpolation and bin origin, which :mod:`lungai.radiomics.ibsi` applies for ``lungai ibsi-check``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lungai.errors import InputError

FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
IMAGE_TYPES = ("Original", "LoG", "Wavelet")
DEFAULT_LOG_SIGMA = [1.0, 2.0, 3.0]

_COMMON = {"label": 1, "voxelArrayShift": 0, "symmetricalGLCM": True, "distances": [1],
           "gldm_a": 0, "geometryTolerance": 1e-4, "additionalInfo": False}

PRESETS: dict[str, dict] = {
    # pyradiomics defaults (bin width 25 HU), all classes, Original image; lung segments on a 2 mm grid (below).
    "default": {"binWidth": 25},
    # IBSI-1 configurations (Zwanenburg et al. 2020; ibsi-doc 05_Reference_data_sets).
    "ibsi-a": {"force2D": True, "force2Ddimension": 0, "resegmentRange": [-500, 400], "binWidth": 25},
    "ibsi-b": {"force2D": True, "force2Ddimension": 0, "resegmentRange": [-500, 400], "binCount": 32,
               "resampledPixelSpacing": [2, 2, 0], "interpolator": "sitkLinear"},
    "ibsi-c": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear",
               "resegmentRange": [-1000, 400], "binWidth": 25},
    "ibsi-d": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear",
               "resegmentMode": "sigma", "resegmentRange": [-3, 3], "binCount": 32},
    "ibsi-e": {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline",
               "resegmentMode": "sigma", "resegmentRange": [-3, 3], "binCount": 32},
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
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"could not read the parameter file {path}: {exc}",
                         "give a pyradiomics parameter YAML (keys setting, imageType, featureClass)") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a pyradiomics parameter file (no mapping at the top level)",
                         "give a YAML with keys setting, imageType, featureClass")
    unknown = set(data) - {"setting", "imageType", "featureClass", "voxelSetting", "lungai"}
    if unknown:
        raise InputError(f"{path} has unknown top-level keys {sorted(unknown)}",
                         "pyradiomics parameter files only use setting, imageType, featureClass, voxelSetting")
    return data


def load_params(name_or_path: str = "default", image_types=None, feature_classes=None,
                log_sigma=None, lung_spacing_mm: float | None = None) -> dict:
    """The pyradiomics parameter dict for a preset name or a YAML file.

    ``image_types`` (Original/LoG/Wavelet) and ``feature_classes`` override the preset's
    (presets: Original only, every class).  A YAML file keeps its own blocks unless overridden.
    ``lung_spacing_mm`` overrides the lung segments' isotropic spacing (0 = the CT's own grid).
    """
    key = str(name_or_path).lower()
    if key in PRESETS:
        params = {"setting": {**_COMMON, **copy.deepcopy(PRESETS[key])},
                  "imageType": _image_type_block(["Original"], log_sigma),
                  "featureClass": _feature_class_block(FEATURE_CLASSES)}
        if key in LUNGAI_SETTINGS:
            params["lungai"] = copy.deepcopy(LUNGAI_SETTINGS[key])
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"--params {name_or_path!r} is neither a preset nor an existing file",
                             f"use one of {', '.join(PRESETS)} or the path of a pyradiomics YAML file")
        params = _read_yaml(path)
        params.setdefault("setting", {})
        params.setdefault("imageType", {"Original": {}})
        params.setdefault("featureClass", _feature_class_block(FEATURE_CLASSES))
        params["setting"].setdefault("label", 1)
    if image_types:
        params["imageType"] = _image_type_block(image_types, log_sigma)
    if feature_classes:
        params["featureClass"] = _feature_class_block(feature_classes)
    if lung_spacing_mm is not None:
        if lung_spacing_mm < 0:
            raise InputError(f"lung spacing {lung_spacing_mm} mm is negative", "give a spacing in mm, or 0 for the CT's grid")
        params.setdefault("lungai", {})["lung_spacing_mm"] = float(lung_spacing_mm) or None
    return params
