"""Label values of the synthetic chest-CT phantom label map (documented, stable).

Tumour voxels (solid and ground-glass) lie inside the lung envelope; a lung mask that
"keeps tumours inside the lung" therefore equals lung + tumour + atelectasis on that side
(see :func:`lung_truth`).
"""

from __future__ import annotations

import numpy as np

OUTSIDE = 0          # air outside the body
TUMOUR = 1           # solid tumour (GTV)
RIGHT_LUNG = 2       # right lung parenchyma, intrapulmonary vessels included
LEFT_LUNG = 3        # left lung parenchyma, intrapulmonary vessels included
EFFUSION = 4         # pleural effusion (fluid in the pleural space, not lung)
ATELECTASIS = 5      # collapsed lung next to the tumour
AIRWAYS = 6          # trachea and main bronchi (lumen)
MEDIASTINUM = 7      # heart and mediastinal soft tissue
AORTA = 8
BONE = 9             # ribs, sternum, spine
BODY = 10            # fat, muscle and other soft tissue of the chest wall
GROUND_GLASS = 11    # ground-glass component of the tumour (part of the lesion)

NAMES = {
    OUTSIDE: "outside",
    TUMOUR: "tumour",
    RIGHT_LUNG: "right_lung",
    LEFT_LUNG: "left_lung",
    EFFUSION: "pleural_effusion",
    ATELECTASIS: "atelectasis",
    AIRWAYS: "airways",
    MEDIASTINUM: "mediastinum_heart",
    AORTA: "aorta",
    BONE: "bone",
    BODY: "body_soft_tissue",
    GROUND_GLASS: "tumour_ground_glass",
}


def tumour_mask(labels: np.ndarray) -> np.ndarray:
    """The lesion as a segmentation target: solid part plus ground-glass component."""
    return (labels == TUMOUR) | (labels == GROUND_GLASS)


def lung_truth(labels: np.ndarray, tumour_side: str | None) -> dict[str, np.ndarray]:
    """Ground-truth lung masks, tumour and atelectasis kept inside the lung they lie in."""
    lesion = tumour_mask(labels) | (labels == ATELECTASIS)
    right = labels == RIGHT_LUNG
    left = labels == LEFT_LUNG
    if tumour_side == "right":
        right = right | lesion
    elif tumour_side == "left":
        left = left | lesion
    return {"right": right, "left": left}
