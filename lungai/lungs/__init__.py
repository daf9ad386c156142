"""Automatic lung masks without a trained model: :func:`segment_lungs` (1 = right, 2 = left).

The names of :mod:`lungai.lungs.segment` and :mod:`lungai.lungs.evaluate` are imported on first use (PEP 562): they
import scipy.ndimage, scipy.spatial and skimage (0.4-2 s of a shared machine), which ``lungai lungs`` imported before
its first bar, and ``lungai radiomics --phantom-labels`` for :mod:`lungai.lungs.check` alone (QA startbar66)."""

from lungai.lazy import lazy_names

# the steps segment_lungs reports to its ``progress``: CT smoothed, outside air, air in the body, airways removed, right
# / left split, each lung filled (vessels, holes, pleural notches, dense lung).  The smoothing and the outside air are
# steps of their own: "air in the body found" was one silent step of 6.3-8.6 s on the real whole CTs (LUNG1-002 /
# LUNG1-003, a shared machine).  Here, not in lungai.lungs.segment: a command's bar is drawn with this total before
# the segmentation's modules are imported
LUNG_STEPS = 7

# the lung definition every lung mask and the dose features follow (said in outputs and docs)
# lungai lungs' masks hold collapsed / fibrotic lung only where it is partly aerated (below -350 HU next to the aerated
# lung), enclosed by it or in a pleural notch: airless collapsed lung (atelectasis, about +20 HU) cannot be told from
# effusion (about +10 HU) by its density and is mostly left out (docs/lungs.md)
RT_LUNG_DEFINITION = ("RT lung (RTOG 1106 atlas): trachea, main bronchi and hilar structures out, "
                      "partly aerated collapsed/fibrotic lung in, airless collapsed lung (atelectasis) and pleural "
                      "effusion mostly out (MLD / V_x of the aerated lung there); dose metrics on lungs minus GTV")

# name -> the module defining it, imported on first use
_LAZY = {"segment_lungs": "lungai.lungs.segment", "LungResult": "lungai.lungs.segment", "RIGHT": "lungai.lungs.segment",
         "LEFT": "lungai.lungs.segment", "rt_lung_dice": "lungai.lungs.evaluate"}

__all__ = ["segment_lungs", "LungResult", "RIGHT", "LEFT", "RT_LUNG_DEFINITION", "rt_lung_dice", "LUNG_STEPS"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
