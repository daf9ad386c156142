"""Does a reference table belong to the chosen configuration?  Its diagnostic rows and tags say.

The CT-phantom reference CSVs (A-E) start with diagnostic rows describing the processed image, not
features: the voxel spacing after interpolation (``vox_dim_*_interp_img``) and the ROI after
re-segmentation (``int_mask_vox_count_reseg_roi``, ``int_mask_mean_int_reseg_roi`` ...); the digital
phantom's has none.  :func:`measure` gives the diagnostics the configuration's processed ROI has,
:func:`mismatch` compares them and the reference's tags with the configuration and names the
configuration(s) the reference looks like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.errors import agree, counted
from lungai.radiomics.ibsi.compare import within
from lungai.radiomics.ibsi.configs import CONFIGS, IBSIConfig
from lungai.radiomics.ibsi.mapping import tags_for

SPACING_TAGS = ("vox_dim_x_interp_img", "vox_dim_y_interp_img", "vox_dim_z_interp_img")


def measure(img: sitk.Image, morph: sitk.Image, intensity: sitk.Image) -> dict[str, float]:
    """The diagnostics of the processed image (interpolated ``img``, its morphological / intensity masks)."""
    a = sitk.GetArrayViewFromImage(img)
    i = sitk.GetArrayViewFromImage(intensity) > 0
    out = dict(zip(SPACING_TAGS, img.GetSpacing()))
    out["morph_mask_vox_count_reseg_roi"] = float(np.count_nonzero(sitk.GetArrayViewFromImage(morph)))
    out["int_mask_vox_count_reseg_roi"] = float(np.count_nonzero(i))
    if i.any():
        v = a[i]
        out.update(int_mask_mean_int_reseg_roi=float(v.mean()), int_mask_min_int_reseg_roi=float(v.min()),
                   int_mask_max_int_reseg_roi=float(v.max()))
    return out


def _fits(cfg: IBSIConfig, diag: dict, feature_tags: set, image_spacing) -> bool:
    """Whether a reference with diagnostics ``diag`` and features ``feature_tags`` can be configuration ``cfg``'s:
    its tags are the configuration's (2D / 2.5D / 3D), its voxel spacing after interpolation and its
    re-segmented intensity range are the configuration's."""
    if not feature_tags <= set(tags_for(cfg.dims)):
        return False
    if cfg.discretisation == "none" and diag:
        return False        # the digital phantom's reference has no diagnostic rows
    spacing = cfg.spacing or (None, None, None)
    for tag, want, own in zip(SPACING_TAGS, spacing, image_spacing):
        if tag in diag and not within(want if want is not None else own, *diag[tag]):
            return False
    if cfg.resegment_range:
        lo, hi = cfg.resegment_range
        ref_lo, ref_hi = diag.get("int_mask_min_int_reseg_roi"), diag.get("int_mask_max_int_reseg_roi")
        if (ref_lo and ref_lo[0] + ref_lo[1] < lo) or (ref_hi and ref_hi[0] - ref_hi[1] > hi):
            return False
    return True


def _whose(name: str) -> str:
    return "the digital phantom's" if name == "DIGITAL" else f"configuration {name}'s"


def mismatch(cfg: IBSIConfig, reference: pd.DataFrame, diagnostics: pd.DataFrame, measured: dict,
             image_spacing) -> str | None:
    """Why the reference (features ``reference``, diagnostic rows ``diagnostics``) does not look like configuration
    ``cfg``'s, naming the configuration(s) it looks like; None when it fits.  ``measured``: :func:`measure`'s
    values for ``cfg`` (empty when unknown)."""
    diag = {r.tag: (r.reference, r.tolerance) for r in diagnostics.itertuples(index=False)}
    tags = set(reference.tag)
    why = []
    foreign = tags - set(tags_for(cfg.dims))
    if foreign:
        why.append(f"{len(foreign)} of its {counted(len(tags), 'feature')} {agree(len(foreign), 'is', 'are')} not "
                   f"{_whose(cfg.name)} (e.g. {sorted(foreign)[0]})")
    for tag, ours in measured.items():
        if tag in diag and not within(ours, *diag[tag]):
            why.append(f"{tag} = {diag[tag][0]:g} +- {diag[tag][1]:g}, {_whose(cfg.name)} is {ours:.4g}")
    if not why and _fits(cfg, diag, tags, image_spacing):
        return None
    if not why:
        why.append(f"its diagnostics ({', '.join(t for t in SPACING_TAGS if t in diag)}, re-segmentation range) "
                   f"are not {_whose(cfg.name)}")
    others = [c for c in CONFIGS if c != cfg.name and _fits(CONFIGS[c], diag, tags, image_spacing)]
    names = ["the digital phantom" if c == "DIGITAL" else c for c in others]
    names = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
    looks = f"; it looks like the reference of {'' if 'DIGITAL' in others[:1] else 'configuration '}{names}" \
        if others else ""
    return (f"the reference does not look like {_whose(cfg.name)} (you chose --config {cfg.name.lower()}): "
            f"{'; '.join(why[:4])}{looks}")
