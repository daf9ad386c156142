"""Lung masks for a volume node, in Slicer's process: "Right lung" and "Left lung" segments (the same
nodes the LungAISeg panel makes; both go through :mod:`lungai.scene.nodes`)."""

from __future__ import annotations

from lungai import mrml
from lungai.io.validate import check_ct
from lungai.lungs import segment_lungs
from lungai.scene import nodes


def segment_lungs_node(scene, volume_node, seg_node=None):
    """Segment the lungs of ``volume_node``; returns (segmentation node, {"Right lung": ml, "Left lung": ml}, cut):
    ``cut`` the warnings ``lungai lungs`` prints (``LungResult.warnings``: lungs cut by the field of view or the first /
    last slice, an uncertain right/left label; [] for both lungs wholly in view; text:
    ``lungai.scene.results.describe_lungs_result``).

    Segments are added to ``seg_node`` (or a new node "<CT> lungs"); existing segments are never
    overwritten.
    """
    ct = mrml.image_from_volume_node(volume_node)
    check_ct(ct, volume_node.GetName())
    result = segment_lungs(ct)
    return (*nodes.add_lung_outputs(scene, volume_node, result.labels, seg_node=seg_node), result.warnings)
