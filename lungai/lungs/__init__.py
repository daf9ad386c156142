"""Automatic lung masks without a trained model: :func:`segment_lungs` (1 = right, 2 = left)."""

from lungai.lungs.segment import LEFT, RIGHT, LungResult, segment_lungs

__all__ = ["segment_lungs", "LungResult", "RIGHT", "LEFT"]
