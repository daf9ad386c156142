"""Network outputs over a resampled array: ensemble members or MC-dropout passes (optionally mirrored) in one
MONAI sliding window.  No SimpleITK here, so that training can run where only torch and MONAI are installed."""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from lungai.errors import InputError
from lungai.seg.config import MC_PASSES
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


# the flip check (confidence feature ``flip_consistency``): each window is also run mirrored along z, y and x
CHECK_FLIPS = ((2,), (3,), (4,))


class FlipChecked(torch.nn.Module):
    """The result and, for the flip check, the unflipped maps and the maps of each window mirrored along z, y, x.

    Output (B, (2 + 3) x M, ...): M result maps (the mean over all 8 flips with ``tta``, else the unflipped
    maps), M unflipped maps, then M maps per check flip (flipped back).  Flips within each window, as
    :class:`Mirrored` does, so the check costs 3 more network passes, and none more with ``tta``.
    """

    def __init__(self, predictor, tta: bool):
        super().__init__()
        self.predictor, self.tta = predictor, bool(tta)

    def run(self, x, dims):
        p = self.predictor(torch.flip(x, dims) if dims else x)
        return torch.flip(p, dims) if dims else p

    def forward(self, x):
        if self.tta:      # the 8 flips in Mirrored's order: the same result (and MC-dropout draws) as without the check
            outs = {dims: self.run(x, dims) for dims in Mirrored.FLIPS}
            result = sum(outs.values()) / len(outs)
        else:             # the check's MC-dropout draws must not change the result's: they come from a forked generator
            outs = {(): self.run(x, ())}
            with torch.random.fork_rng(devices=[]):
                outs.update({dims: self.run(x, dims) for dims in CHECK_FLIPS})
            result = outs[()]
        return torch.cat([result, outs[()]] + [outs[d] for d in CHECK_FLIPS], dim=1)


def flip_consistency(plain: np.ndarray, flipped: list, region: np.ndarray | None = None) -> float:
    """Mean Dice between the tumour mask of the unflipped maps (M, z, y, x) and that of each mirrored run; two
    empty masks count 0, as for the members' agreement (:mod:`lungai.seg.confidence`)."""
    from lungai.overlap import dice

    def mask(maps):
        m = maps.mean(axis=0) > 0.5
        return m & region if region is not None else m

    ref = mask(plain)
    return float(np.mean([dice(ref, mask(f)) if (ref.any() or mask(f).any()) else 0.0 for f in flipped]))


def window_size(cfg, shape_zyx) -> tuple:
    if cfg.arch == "unetr":
        return cfg.patch_zyx
    d = 2 ** (len(cfg.channels) - 1)
    return tuple(min(w, int(math.ceil(s / d) * d)) for w, s in zip(cfg.infer_zyx, shape_zyx))


@torch.no_grad()
def predict_probs(nets, arr_zyx: np.ndarray, cfg, method: str = "ensemble", mc_passes: int = MC_PASSES,
                  seed: int = 0, device: str = "cpu", flip_check: bool = False):
    """(M, z, y, x) foreground probabilities on the model grid (windows run on ``device``, where the nets are).

    ``flip_check``: returns (probabilities, unflipped maps, [maps mirrored along z, y, x]) - the inputs of
    :func:`flip_consistency` - at the cost of 3 more passes (none with ``cfg.tta``)."""
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
    if flip_check:
        predictor = FlipChecked(predictor, getattr(cfg, "tta", False))
    elif getattr(cfg, "tta", False):
        predictor = Mirrored(predictor)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(arr_zyx))[None, None]
    out = sliding_window_inference(x, window_size(cfg, arr_zyx.shape), 1, predictor, overlap=0.25,
                                   mode="gaussian", padding_mode="replicate", sw_device=device, device="cpu")
    if method == "mc-dropout":
        nets[0].eval()
    out = out[0].numpy().astype(np.float32)
    if flip_check:
        m = out.shape[0] // (2 + len(CHECK_FLIPS))
        return out[:m], out[m:2 * m], [out[(2 + k) * m:(3 + k) * m] for k in range(len(CHECK_FLIPS))]
    return out
