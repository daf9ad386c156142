"""IBSI fixed-bin-size discretisation inside pyradiomics.

IBSI bins with a fixed bin size start at the lower bound of the re-segmentation range:
``bin = floor((x - lower) / w) + 1``.  pyradiomics anchors the edges at multiples of ``w`` and then
renumbers so that the lowest bin in the ROI is 1 (``imageoperations.getBinEdges``), which shifts
every grey level when the ROI minimum lies above the bound (IBSI configuration C: by 2).  Features
that depend on absolute grey levels (joint/sum average, autocorrelation, grey-level emphases,
busyness ...) then differ.  Pre-discretising the image does not help: pyradiomics renumbers again.
pyradiomics has no setting for the bin origin, so :func:`fixed_bin_origin` swaps its
``getBinEdges`` for the IBSI one for the duration of a ``with`` block (this process only).
"""

from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def fixed_bin_origin(lower_bound: float):
    from radiomics import imageoperations

    original = imageoperations.getBinEdges

    def ibsi_bin_edges(values, **kwargs):
        if kwargs.get("binCount") is not None:
            return original(values, **kwargs)
        width = float(kwargs.get("binWidth", 25))
        n = int(np.floor((float(np.max(values)) - lower_bound) / width)) + 2
        return lower_bound + width * np.arange(n + 1)

    imageoperations.getBinEdges = ibsi_bin_edges
    try:
        yield
    finally:
        imageoperations.getBinEdges = original
