"""Network outputs over a resampled array: ensemble members or MC-dropout passes (optionally mirrored) in one
MONAI sliding window.  No SimpleITK here, so that training can run where only torch and MONAI are installed."""

from __future__ import annotations

import contextlib
import ctypes
import math
import platform
import sys

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


class Ticking(torch.nn.Module):
    """``net``, with ``tick()`` called after each of its runs (:class:`lungai.progress.Counter`: the progress of a
    long inference)."""

    def __init__(self, net, tick):
        super().__init__()
        self.net, self.tick = net, tick

    def forward(self, x):
        out = self.net(x)
        self.tick()
        return out


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


OVERLAP = 0.25      # of the sliding windows

# glibc's malloc: while the windows run, freed blocks up to HEAP_MMAP_BYTES come from and go back to the heap, which
# keeps up to HEAP_TRIM_BYTES free (:func:`kept_heap`); after, glibc's own dynamic ceilings (32 MB / 2 x that on 64-bit)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3         # mallopt's parameters (malloc.h)
HEAP_MMAP_BYTES, HEAP_TRIM_BYTES = 256 << 20, 512 << 20
AFTER_MMAP_BYTES, AFTER_TRIM_BYTES = 32 << 20, 64 << 20


def _glibc():
    """The C library when it is glibc (mallopt / malloc_trim), else None (macOS, Windows, musl: nothing changed)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def kept_heap():
    """The network runs' buffers reused from the heap instead of mapped afresh for each window (glibc only).

    glibc's malloc maps a block larger than its dynamic threshold (at most 32 MB on 64-bit) with mmap and unmaps it
    when freed; the shipped U-Net's convolutions on a 96 x 96 x 32 window free and ask again for such blocks on every
    run, so each of automatic mode's 240 runs faulted its buffers in afresh, page by page: QA auto70 on LUNG1-003,
    4.5 M minor page faults, 11.5 s of the command's 37.6 s CPU time spent in the kernel.  Inside this block blocks up
    to ``HEAP_MMAP_BYTES`` come from the heap and up to ``HEAP_TRIM_BYTES`` of free heap is kept; after it, what is
    free is handed back (``malloc_trim``) and the thresholds are glibc's dynamic ceilings (32 MB, trim at 64 MB) - a
    long-running process (3D Slicer) keeps at most 64 MB of free heap, as glibc does once its threshold has risen.  Where the memory comes from does not change a number: the same
    probabilities, byte for byte."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_BYTES)
    libc.mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_BYTES)
    try:
        yield
    finally:
        libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_BYTES)
        libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_BYTES)
        libc.malloc_trim(0)


def window_count(shape_zyx, roi_zyx, overlap: float = OVERLAP) -> int:
    """How many windows MONAI's ``sliding_window_inference`` runs over an array of ``shape_zyx`` (padded to the
    window where smaller) with windows of ``roi_zyx``: its scan interval, ``int(window x (1 - overlap))`` (the
    window itself where it spans the array), and its :func:`monai.data.utils.dense_patch_slices`."""
    from monai.data.utils import dense_patch_slices

    size = [max(int(s), int(r)) for s, r in zip(shape_zyx, roi_zyx)]
    interval = [r if r == s else max(int(r * (1 - overlap)), 1) for s, r in zip(size, roi_zyx)]
    return len(dense_patch_slices(size, roi_zyx, interval))


def window_size(cfg, shape_zyx) -> tuple:
    if cfg.arch == "unetr":
        return cfg.patch_zyx
    d = 2 ** (len(cfg.channels) - 1)
    return tuple(min(w, int(math.ceil(s / d) * d)) for w, s in zip(cfg.infer_zyx, shape_zyx))


def network_runs(method: str, members: int, passes: int, windows: int, tta: bool, flip_check: bool) -> tuple:
    """(network runs, what they are) of :func:`predict_probs`: each member (ensemble) or the batch of ``passes``
    MC-dropout passes, on each window, for each mirroring (8 with ``tta``; the flip check's 3 more without)."""
    flips = len(Mirrored.FLIPS) if tta else 1 + len(CHECK_FLIPS) if flip_check else 1
    units = members if method == "ensemble" else 1
    what = [f"{members} member{'s' if members != 1 else ''}" if method == "ensemble" else
            f"{passes} passes per run",
            f"{windows} window{'s' if windows != 1 else ''}"] + ([f"{flips} flips"] if flips > 1 else [])
    return units * windows * flips, " x ".join(what)


@torch.no_grad()
def predict_probs(nets, arr_zyx: np.ndarray, cfg, method: str = "ensemble", mc_passes: int = MC_PASSES,
                  seed: int = 0, device: str = "cpu", flip_check: bool = False, progress=None):
    """(M, z, y, x) foreground probabilities on the model grid (windows run on ``device``, where the nets are).

    ``flip_check``: returns (probabilities, unflipped maps, [maps mirrored along z, y, x]) - the inputs of
    :func:`flip_consistency` - at the cost of 3 more passes (none with ``cfg.tta``).  ``progress``: the network runs
    (:func:`network_runs`) counted on it as message-only updates (:class:`lungai.progress.Counter`: "network run
    20/54 (ensemble: 3 members x 18 windows)", the count first; the ensemble's inference of a CT's lungs ran 27-50 s
    with the bar standing still); its step count stays the caller's."""
    from lungai.progress import Counter

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
    if method == "mc-dropout" and enable_dropout(nets[0]) == 0:
        raise InputError("this model has no dropout layers, so MC dropout is not possible",
                         "use --method ensemble, or train with --dropout > 0")
    tta = bool(getattr(cfg, "tta", False))
    window = window_size(cfg, arr_zyx.shape)
    total, what = network_runs(method, len(nets), mc_passes, window_count(arr_zyx.shape, window), tta, flip_check)
    counter = Counter(progress, "network run", total, f"{method}: {what}")
    tick = counter.tick
    if method == "ensemble":
        for n in nets:
            n.eval()
        predictor = StackedMembers([Ticking(n, tick) for n in nets])
    else:
        predictor = MCDropout(Ticking(nets[0], tick), mc_passes)
    if flip_check:
        predictor = FlipChecked(predictor, tta)
    elif tta:
        predictor = Mirrored(predictor)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(arr_zyx))[None, None]
    # a network run may be long (MC dropout: the batch of passes on one window, 5-11 s of LUNG1-002's DynUNet): the
    # count is said again with its seconds while one runs (QA seg70); the windows' buffers not faulted in afresh for
    # each run (QA auto70: 11.5 s of 37.6 s)
    with counter.running(), kept_heap():
        out = sliding_window_inference(x, window, 1, predictor, overlap=OVERLAP,
                                       mode="gaussian", padding_mode="replicate", sw_device=device, device="cpu")
    counter.close()         # its last count shown (the total is, once reached)
    if method == "mc-dropout":
        nets[0].eval()
    out = out[0].numpy().astype(np.float32)
    if flip_check:
        m = out.shape[0] // (2 + len(CHECK_FLIPS))
        return out[:m], out[m:2 * m], [out[(2 + k) * m:(3 + k) * m] for k in range(len(CHECK_FLIPS))]
    return out
