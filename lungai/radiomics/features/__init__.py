"""IBSI-1 feature classes beside pyradiomics' (vectorised numpy/scipy, hand-written where pyradiomics has none).

Feature classes, selectable by name in params files, ``--feature-classes`` and the Slicer panel;
each class is one IBSI family (tag prefix):

============================  ======  ======================================================
class                         family  source
============================  ======  ======================================================
shape                         morph   pyradiomics + :mod:`.morphology` (COM shift, densities, Moran's I ...)
firstorder                    stat    pyradiomics + :func:`.intensity.stat_extras` (medad, cov, qcod)
glcm / glrlm                  cm/rlm  pyradiomics (3D, 2.5D) + :mod:`.texture` (2D per slice)
glszm / ngtdm                 szm/ngt pyradiomics (3D, 2.5D) + :mod:`.texture` (2D per slice)
gldm                          ngl     pyradiomics (3D, 2.5D) + :mod:`.texture` (2D, ``dc_energy``)
gldzm                         dzm     :mod:`.texture`
intensityhistogram            ih      :mod:`.intensity` (two of 23 from pyradiomics firstorder)
intensityvolume               ivh     :mod:`.intensity`
localintensity                loc     :mod:`.intensity`
============================  ======  ======================================================

:func:`compute_extras` computes the values of a list of IBSI tags from the preprocessed arrays; the
callers (:mod:`lungai.radiomics.ibsi.run` for the IBSI pipeline, :mod:`lungai.radiomics.extract` for
plain pyradiomics parameters) take every value pyradiomics computes correctly from pyradiomics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lungai.radiomics.features import intensity, morphology, texture
from lungai.radiomics.features.intensity import IVHBins

PYRADIOMICS_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
NEW_CLASSES = ("gldzm", "intensityhistogram", "intensityvolume", "localintensity")
CLASS_FAMILY = {"shape": "morph", "firstorder": "stat", "glcm": "cm", "glrlm": "rlm", "glszm": "szm", "gldm": "ngl",
                "ngtdm": "ngt", "gldzm": "dzm", "intensityhistogram": "ih", "intensityvolume": "ivh",
                "localintensity": "loc"}
FAMILY_CLASS = {v: k for k, v in CLASS_FAMILY.items()}


def family(tag: str) -> str:
    return tag.split("_", 1)[0]


@dataclass
class Prepared:
    """Arrays (z, y, x) the features are computed from, after interpolation / re-segmentation / binning."""

    image: np.ndarray          # intensities (whole image; local peaks look outside the ROI)
    morph: np.ndarray          # morphological mask (bool)
    intensity: np.ndarray      # intensity mask (bool)
    grey: np.ndarray           # discretised grey levels 1..n_grey inside the intensity mask, 0 outside
    n_grey: int
    spacing: tuple             # mm, (z, y, x)
    ivh: IVHBins
    bounds: tuple | None       # re-segmentation range (IVH), None = ROI min/max


def discretise(values: np.ndarray, method: str, bins: float, lower: float | None = None) -> tuple[np.ndarray, int]:
    """IBSI discretisation of ROI intensities: (grey levels 1..Ng, Ng).

    ``fbs``: ``floor((x - lower)/w) + 1`` with ``lower`` the re-segmentation lower bound (IBSI);
    ``lower=None`` anchors the bins like pyradiomics (at ``floor(min/w)*w``).  Ng = highest level.
    ``fbn``: ``floor(N (x - min)/(max - min)) + 1``, the maximum in bin N; Ng = N.
    ``none``: the intensities are the grey levels (integers >= 1).
    """
    x = np.asarray(values, float)
    if method == "fbs":
        w = float(bins)
        lo = np.floor(x.min() / w) * w if lower is None else float(lower)
        g = np.clip(np.floor((x - lo) / w).astype(np.int64) + 1, 1, None)
        return g, int(g.max())
    if method == "fbn":
        n = int(bins)
        lo, hi = x.min(), x.max()
        g = np.floor(n * (x - lo) / (hi - lo)).astype(np.int64) + 1 if hi > lo else np.full(len(x), (n + 1) // 2)
        return np.clip(g, 1, n), n
    if method == "none":
        if not np.all(x == np.round(x)) or x.min() < 1:
            raise ValueError("discretisation 'none' needs integer grey levels >= 1")
        g = x.astype(np.int64)
        return g, int(g.max())
    raise ValueError(f"unknown discretisation {method!r}")


def prepare(image: np.ndarray, morph: np.ndarray, intensity_mask: np.ndarray, spacing_zyx, method: str, bins: float,
            lower: float | None, ivh: IVHBins, bounds) -> Prepared:
    values = image[intensity_mask]
    g, n_grey = discretise(values, method, bins, lower)
    grey = np.zeros(image.shape, np.int64)
    grey[intensity_mask] = g
    return Prepared(image, morph.astype(bool), intensity_mask.astype(bool), grey, n_grey, tuple(spacing_zyx), ivh,
                    bounds)


def _dimension(tag: str) -> str | None:
    from lungai.radiomics.ibsi.mapping import dimension

    return dimension(tag)


def compute_extras(prep: Prepared, tags, shape: dict | None = None) -> dict[str, float]:
    """Values of the IBSI ``tags`` (any family/aggregation) from ``prep``.

    ``shape``: pyradiomics shape values (``shape_MeshVolume``, ``shape_SurfaceArea``) for the
    morphological densities; computed with pyradiomics when missing.
    """
    tags = list(tags)
    fams = {family(t) for t in tags}
    out: dict[str, float] = {}
    x = prep.image[prep.intensity].astype(float)
    if "stat" in fams:
        out.update(intensity.stat_extras(x))
    if "ih" in fams:
        out.update(intensity.intensity_histogram(prep.grey[prep.intensity], prep.n_grey))
    if "ivh" in fams:
        out.update(intensity.intensity_volume_histogram(x, prep.ivh, prep.bounds))
    if "loc" in fams:
        out.update(intensity.local_intensity_peaks(prep.image, prep.intensity, prep.spacing))
    if "morph" in fams:
        if shape is None or "shape_MeshVolume" not in shape:
            import SimpleITK as sitk

            m = sitk.GetImageFromArray(prep.morph.astype(np.uint8))
            m.SetSpacing(tuple(float(v) for v in prep.spacing[::-1]))
            shape = pyradiomics_shape(m, m)
        out.update(morphology.morphology_extras(prep.image, prep.morph, prep.intensity, prep.spacing,
                                                shape["shape_MeshVolume"], shape["shape_SurfaceArea"]))
    tex = [f for f in texture.FAMILIES if f in fams]
    if tex:
        roi = texture.Roi(prep.grey, prep.n_grey, prep.morph)
        for fam in tex:
            dims = sorted({_dimension(t) for t in tags if family(t) == fam} - {None})
            out.update(texture.family_features(roi, fam, dims))
    return {t: out[t] for t in tags if t in out}


def pyradiomics_shape(image, mask, settings: dict | None = None) -> dict[str, float]:
    """pyradiomics' shape class (every feature, deprecated ones too) on ``mask`` (sitk, nonzero = ROI),
    called directly on the ROI's bounding box: the values of ``RadiomicsFeatureExtractor.execute``'s
    shape class (which crops to the same box) without the extractor's load/check/crop passes.
    Keys ``shape_<Feature>``."""
    import SimpleITK as sitk
    from radiomics import shape as pshape

    from lungai.radiomics.extract import quiet_pyradiomics
    from lungai.radiomics.shape import piecewise_mesh

    arr = sitk.GetArrayViewFromImage(mask) > 0
    idx = np.argwhere(arr)
    lo, hi = idx.min(0)[::-1], idx.max(0)[::-1] + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    m = sitk.Cast(mask[box] > 0, sitk.sitkUInt8)
    # pyradiomics' shape class with the same mesh values by a faster route (lungai.radiomics.shape); its log
    # ("deprecated feature" notices: enabled on purpose) not printed
    with piecewise_mesh(), quiet_pyradiomics():
        f = pshape.RadiomicsShape(image[box], m, **{**(settings or {}), "label": 1})
        for name in f.getFeatureNames():
            f.enableFeatureByName(name, True)
        return {f"shape_{k}": float(v) for k, v in f.execute().items()}
