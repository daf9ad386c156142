"""Automatic lung masks without a trained model: :func:`segment_lungs` (1 = right, 2 = left)."""

from lungai.lungs.evaluate import rt_lung_dice
from lungai.lungs.segment import LEFT, RIGHT, LungResult, segment_lungs

# the lung definition every lung mask and the dose features follow (said in outputs and docs)
RT_LUNG_DEFINITION = ("RT lung (RTOG 1106 atlas): trachea, main bronchi and hilar structures out, "
                      "collapsed/fibrotic lung in; dose metrics on lungs minus GTV")

__all__ = ["segment_lungs", "LungResult", "RIGHT", "LEFT", "RT_LUNG_DEFINITION", "rt_lung_dice"]
