"""Tumour segmentation of a volume node: a new segmentation node with segment "Tumor", an
uncertainty (predictive entropy) scalar volume node and a table node with the confidence fields.

Optional guidance: a markups ROI node (its box) or a markups point-list node (its first point, a
seed on the tumour).  MRML works in RAS; the core takes LPS, converted here.
"""

from __future__ import annotations


from lungai import mrml
from lungai.errors import InputError
from lungai.seg.infer import segment_tumour
from lungai.seg.model_io import load_model
from lungai.seg.resources import resolve_model_dir

TABLE_FIELDS = ["confidence", "needs_review", "review_threshold", "tumor_volume_ml", "n_components",
                "method", "members", "mc_passes", "roi_mode", "architecture", "calibrated"]


def roi_node_to_lps(roi_node) -> list:
    """Two opposite corners (x0, y0, z0, x1, y1, z1) in LPS mm of a markups ROI node (world coordinates)."""
    b = [0.0] * 6
    roi_node.GetRASBounds(b)
    if b[1] < b[0]:
        raise InputError(f"ROI {roi_node.GetName()} is not defined", "place the ROI box on the tumour region")
    return [-b[0], -b[2], b[4], -b[1], -b[3], b[5]]


def point_node_to_lps(point_node) -> list:
    if point_node.GetNumberOfControlPoints() < 1:
        raise InputError(f"{point_node.GetName()} has no point", "place one point on the tumour")
    ras = [0.0, 0.0, 0.0]
    point_node.GetNthControlPointPositionWorld(0, ras)
    return [-ras[0], -ras[1], ras[2]]


def segment_tumour_node(scene, volume_node, roi_node=None, point_node=None, model_dir=None,
                        method: str = "ensemble", mc_passes: int = 10, seg_node=None, replace_segment=None,
                        progress=None, loaded_model=None) -> dict:
    """Segment the tumour of ``volume_node``.

    Returns {"segmentation": node, "segment_id": id, "uncertainty": scalar volume node,
    "table": table node, "result": dict, "probability": sitk image, "candidates": markups point list
    of the candidate regions when automatic mode found more than one, else None}.  With ``seg_node``
    the segment is added to it as "Tumor" (or "Tumor (2)" when taken); only ``replace_segment``
    (chosen by the user) is overwritten.
    """
    import pandas as pd

    model = loaded_model or load_model(resolve_model_dir(model_dir))
    ct = mrml.image_from_volume_node(volume_node)
    res = segment_tumour(ct, model, roi_lps=roi_node_to_lps(roi_node) if roi_node is not None else None,
                         seed_lps=point_node_to_lps(point_node) if point_node is not None else None,
                         method=method, mc_passes=mc_passes, progress=progress, source=volume_node.GetName())
    base = volume_node.GetName()
    new_node = seg_node is None
    seg_node, seg_id = mrml.mask_to_segment(scene, res.tumour, "Tumor", seg_node=seg_node,
                                            replace_segment=replace_segment, reference_volume_node=volume_node)
    if new_node:
        seg_node.SetName(scene.GenerateUniqueName(f"{base} tumor"))
    unc = mrml.volume_node_from_image(scene, res.entropy, f"{base} tumor uncertainty")
    info = res.info
    row = {k: info[k] for k in TABLE_FIELDS}
    row["needs_review"] = int(row["needs_review"])
    row["calibrated"] = int(row["calibrated"])
    row.update({f"feature_{k}": v for k, v in info["features"].items()})
    table = mrml.table_node_from_dataframe(scene, pd.DataFrame([row]), f"{base} tumor confidence")
    cands = info.get("candidates") or []
    points = mrml.candidates_to_markups(scene, cands, f"{base} tumor candidates") if len(cands) > 1 else None
    return {"segmentation": seg_node, "segment_id": seg_id, "uncertainty": unc, "table": table,
            "result": info, "probability": res.probability, "candidates": points}
