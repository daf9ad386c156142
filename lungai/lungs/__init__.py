"""Automatic lung masks without a trained model: :func:`segment_lungs` (1 = right, 2 = left)."""

from lungai.lungs.evaluate import rt_lung_dice
from lungai.lungs.segment import LEFT, RIGHT, LungResult, segment_lungs

# the lung definition every lung mask and the dose features follow (said in outputs and docs)
# lungai lungs' masks hold collapsed / fibrotic lung only where it is partly aerated (below -350 HU next to the aerated
# lung), enclosed by it or in a pleural notch: airless collapsed lung (atelectasis, about +20 HU) cannot be told from
# effusion (about +10 HU) by its density and is mostly left out (docs/lungs.md)
RT_LUNG_DEFINITION = ("RT lung (RTOG 1106 atlas): trachea, main bronchi and hilar structures out, "
                      "partly aerated collapsed/fibrotic lung in, airless collapsed lung (atelectasis) and pleural "
                      "effusion mostly out (MLD / V_x of the aerated lung there); dose metrics on lungs minus GTV")

__all__ = ["segment_lungs", "LungResult", "RIGHT", "LEFT", "RT_LUNG_DEFINITION", "rt_lung_dice"]
