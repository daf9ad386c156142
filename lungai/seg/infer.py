"""Inference: ensemble members (or MC-dropout passes) over the ROI, mapped onto the input grid.

All members run as one batch inside a single MONAI ``sliding_window_inference`` that only
covers the cropped, resampled ROI; their foreground probabilities give the mean probability,
the voxel uncertainty and the case features behind the calibrated confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference
from scipy import ndimage

from lungai.errors import InputError
from lungai.io.validate import check_ct_intensities
from lungai.progress import NullProgress
from lungai.seg import preprocess as pp
from lungai.seg.confidence import case_features, confidence
from lungai.seg.networks import enable_dropout
from lungai.seg.postprocess import MAX_ELONGATION, keep_components, rank_components
from lungai.seg.uncertainty import summarize_maps

METHODS = ("ensemble", "mc-dropout")
MAX_CANDIDATES_LISTED = 20     # automatic mode: candidate regions written to result.json


class StackedMembers(torch.nn.Module):
    """Runs every member on the same windows; output (B, M, z, y, x) foreground probabilities."""

    def __init__(self, nets):
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x):
        return torch.cat([torch.softmax(n(x), dim=1)[:, 1:2] for n in self.nets], dim=1)


class MCDropout(torch.nn.Module):
    """``passes`` stochastic passes of one network (dropout on), batched; output (B, passes, ...)."""

    def __init__(self, net, passes: int):
        super().__init__()
        self.net, self.passes = net, int(passes)

    def forward(self, x):
        b = x.shape[0]
        out = torch.softmax(self.net(x.repeat(self.passes, 1, 1, 1, 1)), dim=1)[:, 1]
        return out.reshape(self.passes, b, *out.shape[1:]).transpose(0, 1)


def window_size(cfg, shape_zyx) -> tuple:
    if cfg.arch == "unetr":
        return cfg.patch_zyx
    d = 2 ** (len(cfg.channels) - 1)
    return tuple(min(w, int(math.ceil(s / d) * d)) for w, s in zip(cfg.infer_zyx, shape_zyx))


@torch.no_grad()
def predict_probs(nets, arr_zyx: np.ndarray, cfg, method: str = "ensemble", mc_passes: int = 10,
                  seed: int = 0) -> np.ndarray:
    """(M, z, y, x) foreground probabilities on the model grid."""
    if method == "ensemble":
        for n in nets:
            n.eval()
        predictor = StackedMembers(nets)
    elif method == "mc-dropout":
        if enable_dropout(nets[0]) == 0:
            raise InputError("this model has no dropout layers, so MC dropout is not possible",
                             "use --method ensemble, or train with --dropout > 0")
        predictor = MCDropout(nets[0], mc_passes)
    else:
        raise InputError(f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(arr_zyx))[None, None]
    out = sliding_window_inference(x, window_size(cfg, arr_zyx.shape), 1, predictor, overlap=0.25,
                                   mode="gaussian", padding_mode="replicate")
    if method == "mc-dropout":
        nets[0].eval()
    return out[0].numpy().astype(np.float32)


@dataclass
class SegResult:
    tumour: sitk.Image               # uint8 0/1 on the input grid
    probability: sitk.Image          # float32 mean foreground probability
    entropy: sitk.Image              # float32 predictive entropy (bits)
    mutual_information: object       # float32 image or None (single member, no MC)
    info: dict


def choose_box(ct, cfg, roi_lps=None, seed_lps=None, whole=None) -> pp.Box:
    if seed_lps is not None:
        return pp.box_from_seed(ct, seed_lps, cfg.seed_box_mm)
    if roi_lps is not None:
        p = [float(v) for v in roi_lps]
        if len(p) != 6:
            raise InputError(f"--roi needs 6 numbers x0,y0,z0,x1,y1,z1 (got {len(p)})",
                             "give two opposite corners in LPS mm")
        return pp.box_from_physical(ct, p[:3], p[3:], cfg.roi_margin_mm)
    if whole or (whole is None and pp.is_crop(ct)):
        return pp.whole_box(ct, "whole image (crop)")
    return pp.box_from_lungs(ct, cfg.roi_margin_mm)


def segment_tumour(ct: sitk.Image, model, *, roi_lps=None, seed_lps=None, method: str = "ensemble",
                   mc_passes: int = 10, seed: int = 0, whole=None, progress=None,
                   source: str = "the CT", all_regions: bool = False) -> SegResult:
    """Segment the tumour of ``ct``. ``model`` = (config, nets, model.json dict) from ``load_model``.

    ROI: ``seed_lps`` (x, y, z) mm -> a cube of ``seed_box_mm``; ``roi_lps`` (x0, y0, z0, x1, y1, z1)
    mm; otherwise the whole image when it is a small crop, else the lungs' bounding box.
    """
    cfg, nets, meta = model
    bar = progress or NullProgress()
    check_ct_intensities(ct, source)
    box = choose_box(ct, cfg, roi_lps, seed_lps, whole)
    bar.update(1, f"ROI {box.mode} {box.size}")
    crop_img = pp.crop(ct, box)
    arr, model_img = pp.to_model(crop_img, cfg)
    probs = predict_probs(nets, arr, cfg, method, mc_passes, seed)
    region = pp.region_on(box, model_img)       # automatic mode: lungs + margin only
    if region is not None:
        probs *= region[None]
    bar.update(1, f"{method}: {probs.shape[0]} maps")
    model_voxel_ml = float(np.prod(cfg.spacing)) / 1000.0
    feats = case_features(probs, model_voxel_ml)
    calib = meta.get("calibration", {}).get(method)
    review = meta.get("review", {}).get(method, {})
    threshold = float(review.get("threshold", 0.5))
    conf = confidence(feats, calib)

    crop_probs = np.empty((len(probs),) + tuple(crop_img.GetSize()[::-1]), np.float32)
    for m, p in enumerate(probs):
        pp.to_input(p, model_img, crop_img, out=crop_probs[m])
    mean_p, entropy, mi_arr = summarize_maps(crop_probs)
    del crop_probs
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    seed_idx = None
    if seed_lps is not None:
        ijk = np.round(ct.TransformPhysicalPointToContinuousIndex([float(v) for v in seed_lps])).astype(int)
        seed_idx = (ijk[2] - box.lo[2], ijk[1] - box.lo[1], ijk[0] - box.lo[0])
    automatic = box.mode == "lungs"
    lungs = pp.mask_on(box.lungs, crop_img) if automatic else None
    binary, dropped = keep_components(mean_p > 0.5, ct.GetSpacing()[::-1], seed_idx,
                                      MAX_ELONGATION if automatic else None, lungs)
    candidates, n_candidates, others_ml = [], 0, 0.0
    if automatic:
        lab, ranked = rank_components(binary, mean_p, ct.GetSpacing()[::-1])
        if ranked and not all_regions:
            binary = lab == ranked[0]["label"]
        n_candidates, others_ml = len(ranked), sum(c["volume_ml"] for c in ranked[1:])
        for rank, c in enumerate(ranked[:MAX_CANDIDATES_LISTED], start=1):
            k, j, i = c["centre_zyx"]
            centre = ct.TransformContinuousIndexToPhysicalPoint([i + box.lo[0], j + box.lo[1], k + box.lo[2]])
            candidates.append({"rank": rank, "centre_lps_mm": [round(float(v), 2) for v in centre],
                               "volume_ml": round(c["volume_ml"], 4), "mean_probability": round(c["mean_probability"], 4),
                               "probability_mass_ml": round(c["probability_mass_ml"], 4),
                               "in_tumor_mask": bool(all_regions or rank == 1)})
    n_comp = int(ndimage.label(binary)[1])
    bar.update(1, "mapped to input grid")

    def image(arr_crop, dtype):
        img = sitk.GetImageFromArray(pp.paste(ct, box, arr_crop, dtype))
        img.CopyInformation(ct)
        return img

    mi = image(mi_arr, np.float32) if mi_arr is not None else None
    corner0 = ct.TransformIndexToPhysicalPoint([int(v) for v in box.lo])
    corner1 = ct.TransformIndexToPhysicalPoint([int(v) - 1 for v in box.hi])
    volume = float(binary.sum()) * voxel_ml
    notes = [] if n_comp else ["no tumour found in the region of interest"]
    if dropped["n_elongated"]:
        notes.append(f"{dropped['n_elongated']} elongated (vessel-like) region(s), {dropped['elongated_ml']:.1f} ml, "
                     "left out of the tumour mask; they remain in probability.nii.gz")
    if dropped["n_outside_lungs"]:
        notes.append(f"{dropped['n_outside_lungs']} region(s) lying mostly outside the lungs, "
                     f"{dropped['outside_lungs_ml']:.1f} ml, left out of the tumour mask (mediastinal border / "
                     "chest wall); a tumour there needs a seed point")
    flag = conf < threshold
    if n_candidates > 1:
        flag = True
        kept = ("all are in the tumour mask" if all_regions else
                f"the tumour mask holds the most probable one ({candidates[0]['volume_ml']:.1f} ml at LPS "
                f"{', '.join(f'{v:.0f}' for v in candidates[0]['centre_lps_mm'])} mm)")
        listed = ("are listed" if n_candidates <= MAX_CANDIDATES_LISTED
                  else f"- the first {MAX_CANDIDATES_LISTED - 1} of them are listed -")
        notes.append(f"automatic mode found {n_candidates} candidate regions; {kept}; the other "
                     f"{n_candidates - 1} ({others_ml:.1f} ml) {listed} under 'candidates' with their centres - "
                     "check them (vessels and hilar structures can be marked too); to segment another one, run "
                     "again with --seed-point at its centre")
    info = {
        "confidence": round(conf, 4), "needs_review": bool(flag), "review_threshold": threshold,
        "tumor_volume_ml": round(volume, 4), "n_components": n_comp, "method": method,
        "members": len(nets) if method == "ensemble" else 1,
        "mc_passes": int(mc_passes) if method == "mc-dropout" else 0,
        "dropped_components": dropped, "n_candidates": n_candidates, "candidates": candidates,
        "roi_mode": box.mode, "roi_lps_mm": [list(map(float, corner0)), list(map(float, corner1))],
        "seed_point_lps_mm": [float(v) for v in seed_lps] if seed_lps is not None else None,
        "features": {k: round(v, 5) for k, v in feats.items()},
        "calibrated": bool(calib and calib.get("fitted")), "architecture": cfg.arch,
        "coordinates": "LPS millimetres (ITK); Slicer RAS = (-x, -y, z)", "notes": notes,
    }
    return SegResult(image(binary.astype(np.uint8), np.uint8), image(mean_p, np.float32),
                     image(entropy, np.float32), mi, info)
