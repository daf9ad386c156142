"""Per-lung Dice under the RT lung definition: the GTV is not lung on either side.

RTOG 1106 (and so every oncologist's lung contour and the dose metrics) excludes the GTV from
the lungs.  A reference that counts the tumour as lung - the phantoms' :func:`lungai.synthetic.labels.lung_truth`,
made for "the lung mask keeps tumours inside the lung" - and the automatic mask (which keeps what
it can of a tumour, having no GTV) are therefore both compared without the GTV's voxels: the
automatic lungs minus the GTV are the lungs the dose features use.  Whether the automatic mask
holds the tumour is a separate property (reported as "tumour kept").
"""

from __future__ import annotations

import numpy as np

from lungai.lungs.segment import LEFT, RIGHT
from lungai.overlap import dice


def rt_lung_dice(labels: np.ndarray, right: np.ndarray, left: np.ndarray, gtv: np.ndarray | None) -> dict:
    """{"right": Dice, "left": Dice} of a lung label map (1 right, 2 left) against reference
    masks, both with the ``gtv`` voxels removed (``None``: no GTV known, plain Dice)."""
    keep = np.ones(labels.shape, bool) if gtv is None else ~np.asarray(gtv, bool)
    return {"right": dice((labels == RIGHT) & keep, np.asarray(right, bool) & keep),
            "left": dice((labels == LEFT) & keep, np.asarray(left, bool) & keep)}
