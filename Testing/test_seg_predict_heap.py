"""The segmentation network's windows reuse their buffers (lungai.seg.predict.kept_heap): QA auto70 - `lungai segment` in
automatic mode on LUNG1-003 spent 11.5 s of its 37.6 s CPU time in the kernel, faulting in 4.5 M pages: glibc's
malloc mapped each run's large convolution buffers afresh and unmapped them when freed.  Counted in page faults,
not seconds, so the test does not depend on the machine's load."""

import platform
import resource
import sys

import numpy as np
import pytest
import torch

from lungai.seg import predict
from lungai.seg.config import SegConfig
from lungai.seg.networks import build_network

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only (mallopt); elsewhere nothing is changed")


def _shipped_unet():
    """The shipped U-Net's shape (lungai-seg-unet-ensemble: channels 8-64, 96 x 96 x 32 windows), seeded weights."""
    cfg = SegConfig(arch="unet", channels=(8, 16, 32, 64), infer_patch=(96, 96, 32), members=1)
    torch.manual_seed(0)
    return cfg, [build_network(cfg).eval()]


def _faults(nets, cfg, arr) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    predict.predict_probs(nets, arr, cfg)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc_only
def test_more_windows_fault_in_no_more_pages():
    """One window against sixteen (x 96 -> 1176: 16 windows at MONAI's 72-voxel step) of the same network: the 15
    more runs reuse the buffers the first one freed.  Before, each run faulted its convolution buffers in afresh: QA
    auto70 ~16,000 minor page faults per run of the shipped U-Net (the base here: 24,164 for one window, 255,904
    for sixteen - 10.6x).  Now one call's faults are its working set once, whatever the
    windows: 13,000-21,000 for one window, 31,000-40,000 for sixteen (where the heap's free blocks fall varies), at
    most 3.1x."""
    cfg, nets = _shipped_unet()
    rng = np.random.default_rng(0)
    one, many = (rng.random((32, 96, n), dtype=np.float32) for n in (96, 96 + 15 * 72))
    assert predict.window_count(many.shape, predict.window_size(cfg, many.shape)) == 16
    _faults(nets, cfg, many)                        # torch's and MONAI's first-call set-up
    f_one = _faults(nets, cfg, one)
    f_many = _faults(nets, cfg, many)
    assert f_many < 5 * f_one, (f_one, f_many)


def test_the_probabilities_do_not_change():
    """Where the buffers come from changes no number: the maps with the heap kept are those without, byte for byte
    (automatic mode's masks too - QA auto70: LUNG1-002 / LUNG1-003 tumour_mask_digest and maps unchanged)."""
    cfg, nets = _shipped_unet()
    arr = np.random.default_rng(1).random((40, 100, 170), dtype=np.float32)
    kept = predict.predict_probs(nets, arr, cfg)
    import contextlib

    orig = predict.kept_heap
    predict.kept_heap = contextlib.nullcontext
    try:
        plain = predict.predict_probs(nets, arr, cfg)
    finally:
        predict.kept_heap = orig
    assert kept.dtype == plain.dtype and kept.tobytes() == plain.tobytes()
