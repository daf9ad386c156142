"""Network outputs over a resampled array: ensemble members or MC-dropout passes (optionally mirrored) in one
MONAI sliding window.  No SimpleITK here, so that training can run where only torch and MONAI are installed."""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from lungai.errors import InputError
from lungai.seg.networks import enable_dropout

METHODS = ("ensemble", "mc-dropout")


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


class Mirrored(torch.nn.Module):
    """Mirrored test-time augmentation: the mean of ``predictor`` over the 8 flips of (z, y, x)."""

    FLIPS = ((), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4))

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor

    def forward(self, x):
        out = None
        for dims in self.FLIPS:
            p = self.predictor(torch.flip(x, dims) if dims else x)
            p = torch.flip(p, dims) if dims else p
            out = p if out is None else out + p
        return out / len(self.FLIPS)


def window_size(cfg, shape_zyx) -> tuple:
    if cfg.arch == "unetr":
        return cfg.patch_zyx
    d = 2 ** (len(cfg.channels) - 1)
    return tuple(min(w, int(math.ceil(s / d) * d)) for w, s in zip(cfg.infer_zyx, shape_zyx))


@torch.no_grad()
def predict_probs(nets, arr_zyx: np.ndarray, cfg, method: str = "ensemble", mc_passes: int = 10,
                  seed: int = 0, device: str = "cpu") -> np.ndarray:
    """(M, z, y, x) foreground probabilities on the model grid (windows run on ``device``, where the nets are)."""
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
    if getattr(cfg, "tta", False):
        predictor = Mirrored(predictor)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(arr_zyx))[None, None]
    out = sliding_window_inference(x, window_size(cfg, arr_zyx.shape), 1, predictor, overlap=0.25,
                                   mode="gaussian", padding_mode="replicate", sw_device=device, device="cpu")
    if method == "mc-dropout":
        nets[0].eval()
    return out[0].numpy().astype(np.float32)
