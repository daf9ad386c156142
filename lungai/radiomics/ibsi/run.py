"""Run one IBSI-1 configuration with pyradiomics and compare it with the reference values."""

from __future__ import annotations

import contextlib
import logging

import pandas as pd
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.io import assert_same_geometry, read_image, read_mask
from lungai.radiomics.ibsi.binning import fixed_bin_origin
from lungai.radiomics.ibsi.compare import Report, within
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig
from lungai.radiomics.ibsi.mapping import target
from lungai.radiomics.ibsi.preprocess import interpolate, resegment
from lungai.radiomics.ibsi.reference import read_reference

TEXTURE = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def _all_features(classes) -> dict:
    """Every feature of the classes by name, deprecated ones included (IBSI maps some of them)."""
    from radiomics import getFeatureClasses

    fc = getFeatureClasses()
    return {c: sorted(fc[c].getFeatureNames()) for c in classes}


def _execute(image, mask, classes, settings) -> dict[str, float]:
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ex = featureextractor.RadiomicsFeatureExtractor({"setting": settings, "imageType": {"Original": {}},
                                                    "featureClass": _all_features(classes)})
    res = ex.execute(image, mask, label=1)
    return {k[len("original_"):]: float(v) for k, v in res.items() if k.startswith("original_")}


def _base_settings(cfg: IBSIConfig) -> dict:
    s = {"label": 1, "voxelArrayShift": 0, "symmetricalGLCM": True, "distances": [1], "gldm_a": 0,
         "additionalInfo": False, "resegmentShape": False, "minimumROIDimensions": 1}
    if cfg.force2d:
        s.update(force2D=True, force2Ddimension=0)
    s.update({"binWidth": cfg.bins} if cfg.discretisation == "fbs" else {"binCount": int(cfg.bins)})
    return s


def compute_ibsi(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> dict[str, dict[str, float]]:
    """pyradiomics values per run ('avg', 'comb', 'shape') with IBSI-style preprocessing."""
    img, morph = interpolate(image, mask, cfg)
    intensity = resegment(img, morph, cfg)
    settings = _base_settings(cfg)
    origin = cfg.resegment_range[0] if cfg.discretisation == "fbs" and cfg.resegment_range else None
    with fixed_bin_origin(origin) if origin is not None else contextlib.nullcontext():
        avg = _execute(img, intensity, TEXTURE, settings)
        comb = _execute(img, intensity, ("glcm", "glrlm"), {**settings, "weightingNorm": "no_weighting"})
    shape = _execute(img, morph, ("shape",), settings)
    return {"avg": avg, "comb": comb, "shape": shape}


def compute_settings_only(image: sitk.Image, mask: sitk.Image, cfg: IBSIConfig) -> dict[str, dict[str, float]]:
    """pyradiomics with its own resampling and re-segmentation (the ``ibsi-<x>`` preset)."""
    from lungai.radiomics.params import PRESETS

    settings = {**_base_settings(cfg), **PRESETS[f"ibsi-{cfg.name.lower()}"]}
    image = sitk.Round(sitk.Cast(image, sitk.sitkFloat32))
    avg = _execute(image, mask, TEXTURE + ("shape",), settings)
    comb = _execute(image, mask, ("glcm", "glrlm"), {**settings, "weightingNorm": "no_weighting"})
    return {"avg": avg, "comb": comb, "shape": avg}


def compare(values: dict, reference: pd.DataFrame, cfg: IBSIConfig) -> Report:
    rows = []
    for r in reference.itertuples(index=False):
        tgt, reason = target(r.tag, cfg.force2d)
        if tgt is None or tgt.feature not in values[tgt.run]:
            rows.append((r.tag, tgt.feature if tgt else "", float("nan"), r.reference, r.tolerance, "not mapped",
                         reason or "not computed"))
            continue
        value = values[tgt.run][tgt.feature] + tgt.offset
        ok = within(value, r.reference, r.tolerance)
        note = f"offset {tgt.offset:+g} applied" if tgt.offset else ""
        rows.append((r.tag, tgt.feature, value, r.reference, r.tolerance,
                     "within tolerance" if ok else "outside tolerance", note))
    table = pd.DataFrame(rows, columns=["tag", "pyradiomics_feature", "value", "reference", "tolerance", "status",
                                       "note"])
    return Report(cfg.name, table)


def run_check(image_path, mask_path, reference_path, config: str, ibsi_preprocessing: bool = True) -> Report:
    """Read the phantom and reference, compute configuration ``config`` (A-E), compare."""
    cfg = CONFIGS.get(config.upper())
    if cfg is None:
        raise InputError(f"unknown IBSI configuration {config!r}", "choose A, B, C, D or E")
    reference = read_reference(reference_path)
    image = read_image(image_path)
    mask = read_mask(mask_path)
    assert_same_geometry(image, mask, "IBSI mask")
    compute = compute_ibsi if ibsi_preprocessing else compute_settings_only
    return compare(compute(image, mask, cfg), reference, cfg)
