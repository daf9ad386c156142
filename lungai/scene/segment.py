"""Tumour segmentation of a volume node, in Slicer's process: a new segmentation node with segment
"Tumor", an uncertainty (predictive entropy) scalar volume node and a table node with the confidence
fields - the same nodes the LungAISeg panel makes (both go through :mod:`lungai.scene.nodes`).

Optional guidance: a markups ROI node (its box) or a markups point-list node (its first point, a
seed on the tumour), both read in world coordinates, like the CT (parent transforms applied).
"""

from __future__ import annotations

from lungai import mrml
from lungai.scene import nodes
from lungai.scene.dicom import volume_patient_names
from lungai.seg.choice import add_model_notes
from lungai.seg.infer import segment_tumour
from lungai.seg.model_io import load_model
from lungai.seg.model_meta import model_identity
from lungai.seg.resources import resolve_model_dir

TABLE_FIELDS = nodes.CONFIDENCE_FIELDS
roi_node_to_lps = nodes.roi_to_lps
point_node_to_lps = nodes.point_to_lps


def segment_tumour_node(scene, volume_node, roi_node=None, point_node=None, model_dir=None,
                        method: str | None = None, mc_passes: int | None = None, seg_node=None, replace_segment=None,
                        progress=None, loaded_model=None) -> dict:
    """Segment the tumour of ``volume_node``.

    Returns {"segmentation": node, "segment_id": id, "uncertainty": scalar volume node,
    "table": table node, "result": dict, "probability": sitk image, "candidates": markups point list
    of the candidate regions when automatic mode found more than one, else None}.  ``seg_node`` receives
    the segment "Tumor" (or "Tumor (2)" when taken) only when it belongs to this CT
    (:func:`lungai.scene.nodes.volume_segmentation`), else a new node "<CT> tumour" is made; only
    ``replace_segment`` (chosen by the user) is overwritten, and ``replace_segment`` in a node of another CT
    raises InputError before the inference.  ``mc_passes`` None or 0 (the panel's "model's calibration"): the passes
    the model's MC-dropout calibration was fitted with.
    """
    if mc_passes == 0:          # the panel's 0, "model's calibration" (its parameter's value, p.mcPasses): None
        mc_passes = None
    seg_node = nodes.volume_segmentation(seg_node, volume_node, replace_segment)   # refused before minutes of work
    model = loaded_model or load_model(resolve_model_dir(model_dir))
    ct = mrml.image_from_volume_node(volume_node)
    res = segment_tumour(ct, model, roi_lps=nodes.roi_to_lps(roi_node) if roi_node is not None else None,
                         seed_lps=nodes.point_to_lps(point_node) if point_node is not None else None,
                         method=method, mc_passes=mc_passes, progress=progress, source=volume_node.GetName(),
                         scene_coordinates=True)         # converted from the nodes here: never Slicer's RAS numbers
    # the note naming a better-suited shipped model (lungai segment adds the same) and the model folder (as
    # result.json's "model": the confidence table's column); unknown for a model passed loaded
    if loaded_model is None or model_dir:
        res.info["model"] = str(resolve_model_dir(model_dir))
        res.info["model_identity"] = model_identity(res.info["model"])
        # a patient the model was trained / validated on: said in-sample (its PatientID, file or node name)
        add_model_notes(res.info["model"], res.info, patients=volume_patient_names(volume_node))
    out = nodes.add_tumour_outputs(scene, volume_node, res.tumour, res.entropy, res.info, seg_node=seg_node,
                                   replace_segment=replace_segment)
    out["probability"] = res.probability
    return out
