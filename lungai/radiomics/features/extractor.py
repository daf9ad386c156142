"""Extractors with pyradiomics' ``execute(image, mask, label)`` interface for what pyradiomics alone cannot do.

- :class:`IBSIExtractor` - parameters with ``lungai: {ibsi: A..E}`` (the ``ibsi-a`` .. ``ibsi-e`` presets):
  :func:`lungai.radiomics.ibsi.compute_ibsi`, the same code as ``lungai ibsi-check``; every value
  is an IBSI-1 feature keyed ``("original", <family>, <rest of the IBSI tag>)`` so that
  ``feature_class + "_" + feature`` is the IBSI tag (``cm`` + ``joint_avg_3D_avg``).
- :class:`ExtendedExtractor` - plain pyradiomics parameters whose ``featureClass`` also names
  classes pyradiomics lacks (gldzm, intensityhistogram, intensityvolume, localintensity): pyradiomics
  for its classes, :func:`lungai.radiomics.features.compute_extras` for the others, on the same
  image and mask with pyradiomics' binning (bin edges at multiples of ``binWidth``, or
  ``binCount`` bins) and re-segmentation range.  Those values are the IBSI definitions on
  pyradiomics' processing, not IBSI-1-compliant values (use an ``ibsi-*`` preset for those).

:func:`lungai.radiomics.extract.make_extractor` picks the extractor.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.radiomics.features import (CLASS_FAMILY, NEW_CLASSES, PYRADIOMICS_CLASSES, IVHBins, compute_extras,
                                       family, prepare)


def _key(tag: str) -> tuple[str, str, str]:
    fam = family(tag)
    return "original", fam, tag[len(fam) + 1:]


def _binary(mask: sitk.Image, label: int) -> sitk.Image:
    return sitk.Cast(mask == label, sitk.sitkUInt8)


class IBSIExtractor:
    """The IBSI-1 pipeline of configuration ``cfg`` restricted to the parameter set's feature classes."""

    def __init__(self, params: dict, cfg):
        self.cfg = cfg
        self.classes = list(params.get("featureClass") or CLASS_FAMILY)
        self.settings = {"label": 1}
        self.notes: list[str] = []      # the last execute's: why some values are NaN (ibsi.run.nan_notes)

    takes_segment_name = True       # lungai.radiomics.extract.extract_segment passes the segment's name

    def execute(self, image: sitk.Image, mask: sitk.Image, label: int = 1, name: str = "ROI") -> dict:
        from lungai.radiomics.ibsi.run import ibsi_features, ibsi_images, nan_notes, resegment_note

        img, morph, intensity = ibsi_images(image, _binary(mask, label), self.cfg, name=name)
        values = ibsi_features(img, morph, intensity, self.cfg, self.classes)
        self.notes = nan_notes(values, intensity, self.cfg)     # why values are NaN (lungai.radiomics.extract)
        part = resegment_note(img, morph, intensity, self.cfg)  # most of the ROI outside the re-segmentation range
        self.notes += [part] if part else []
        return {_key(tag): v for tag, v in values.items()}


def needs_extension(params: dict) -> bool:
    return any(c in NEW_CLASSES for c in (params.get("featureClass") or {}))


class ExtendedExtractor:
    """pyradiomics for its classes plus the new IBSI families on pyradiomics' processing."""

    def __init__(self, params: dict, make_pyradiomics):
        classes = dict(params.get("featureClass") or {})
        self.new = [c for c in classes if c in NEW_CLASSES]
        py = {c: v for c, v in classes.items() if c in PYRADIOMICS_CLASSES}
        self.settings = dict(params.get("setting") or {})
        unsupported = [k for k in ("resampledPixelSpacing", "normalize") if self.settings.get(k)]
        if unsupported:
            raise InputError(f"the feature classes {self.new} cannot be combined with pyradiomics' {unsupported} "
                             "(lungai would not see pyradiomics' resampled/normalised image)",
                             "use an ibsi-* preset (IBSI resampling) or leave those classes out")
        self.pyradiomics = make_pyradiomics({**params, "featureClass": py}) if py else None

    def _tags(self) -> list[str]:
        from lungai.radiomics.ibsi.mapping import tags_for

        dims = ("2_5D",) if self.settings.get("force2D") else ("3D",)
        fams = {CLASS_FAMILY[c] for c in self.new}
        return [t for t in tags_for(dims) if family(t) in fams]

    def execute(self, image: sitk.Image, mask: sitk.Image, label: int = 1) -> dict:
        out = dict(self.pyradiomics.execute(image, mask, label=label)) if self.pyradiomics is not None else {}
        arr = sitk.GetArrayFromImage(image).astype(float)
        morph = sitk.GetArrayFromImage(mask) == label
        inten = morph.copy()
        s = self.settings
        bounds = None
        if s.get("resegmentRange"):
            rng = list(s["resegmentRange"]) + [None] * (2 - len(s["resegmentRange"]))
            if s.get("resegmentMode", "absolute") == "absolute":
                lo, hi = rng[0], rng[1]
                bounds = (lo, hi)
            else:
                v = arr[morph]
                centre, spread = v.mean(), v.std()
                lo = centre + rng[0] * spread if rng[0] is not None else None
                hi = centre + rng[1] * spread if rng[1] is not None else None
            if lo is not None:
                inten &= arr >= lo
            if hi is not None:
                inten &= arr <= hi
        if not inten.any():
            raise InputError("no voxel of the segment lies within the re-segmentation range",
                             "check resegmentRange / resegmentMode in the parameters")
        if s.get("binCount"):
            method, bins = "fbn", s["binCount"]
        else:
            method, bins = "fbs", s.get("binWidth", 25)
        values = arr[inten]
        ivh = IVHBins("none") if np.all(values == np.round(values)) else IVHBins("fbn", 1000)
        prep = prepare(arr, morph, inten, image.GetSpacing()[::-1], method, bins, None, ivh, bounds)
        out.update({_key(t): v for t, v in compute_extras(prep, self._tags()).items()})
        return out
