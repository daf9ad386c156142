"""The one Dice coefficient of the project (segmentation evaluation, training, confidence, lung
masks, the demo, tests and benchmarks all use this function).

``dice(a, b) = 2 |A ∩ B| / (|A| + |B|)`` on boolean masks (anything nonzero counts; numpy arrays
or SimpleITK images).  **Two empty masks give 1.0** - they agree perfectly (the usual convention,
e.g. MONAI's ``compute_dice(..., ignore_empty=False)``); one empty mask against a non-empty one
gives 0.0.  Callers that want another rule for "nothing found on either side" say so where they
call it (the ensemble-agreement feature of the confidence score counts it 0, see
``lungai.seg.confidence``).  Hand-written: two lines of numpy, with no torch import (MONAI's
version needs tensors with batch and channel axes).
"""

from __future__ import annotations

import numpy as np

EMPTY_DICE = 1.0  # Dice of two empty masks


def _mask(m) -> np.ndarray:
    if hasattr(m, "GetSize"):  # a SimpleITK image
        import SimpleITK as sitk

        m = sitk.GetArrayViewFromImage(m)
    return np.asarray(m) != 0


def dice(a, b) -> float:
    """Dice overlap of two masks of the same shape; 1.0 when both are empty."""
    a, b = _mask(a), _mask(b)
    if a.shape != b.shape:
        raise ValueError(f"Dice of masks with different shapes {a.shape} and {b.shape}")
    s = int(a.sum()) + int(b.sum())
    return EMPTY_DICE if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s
