"""Lung masks for a volume node: a new segmentation node with "Right lung" and "Left lung"."""

from __future__ import annotations

from lungai import mrml
from lungai.io.validate import check_ct_intensities
from lungai.lungs import segment_lungs


def segment_lungs_node(scene, volume_node, seg_node=None):
    """Segment the lungs of ``volume_node``; returns (segmentation node, volumes in ml).

    Segments are added to ``seg_node`` (or a new node); existing segments are never overwritten.
    """
    ct = mrml.image_from_volume_node(volume_node)
    check_ct_intensities(ct, volume_node.GetName())
    result = segment_lungs(ct)
    seg_node, _ = mrml.mask_to_segment(scene, result.mask("right"), "Right lung", seg_node=seg_node,
                                       reference_volume_node=volume_node)
    mrml.mask_to_segment(scene, result.mask("left"), "Left lung", seg_node=seg_node)
    if seg_node.GetName().startswith("Right lung"):
        seg_node.SetName(scene.GenerateUniqueName(f"{volume_node.GetName()} lungs"))
    return seg_node, result.volumes_ml
