"""The demo's results as one MRML scene (``scene.mrb``) that opens in 3D Slicer as is."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from lungai import mrml
from lungai.scene import nodes


# the text columns of the demo's rp_prediction.csv (lungai rp predict): '; '-separated lists, often empty - pandas
# would read an all-empty one as float NaN ("nan" in Slicer's table); among nodes.RESULT_TEXT_COLUMNS
RP_TEXT_COLUMNS = ("imputed", "withheld", "out_of_range", "warnings")


def read_table_csv(path: Path, text=()) -> pd.DataFrame:
    """A result CSV of the demo as a DataFrame (:func:`lungai.scene.nodes.read_results_csv`: ids and text columns
    as text, an empty cell '' - not NaN, shown "nan" -, numbers as numbers, NaN where a number is missing); its
    columns named in ``text`` are read as text too."""
    return nodes.read_results_csv(path, text=text)


def _table(scene, path: Path, name: str, text=()):
    if path.exists():
        mrml.table_node_from_dataframe(scene, read_table_csv(path, text), name)


def build_demo_scene(scene, out_dir: Path, dose_name: str = "Dose (Gy)") -> dict:
    """Add CT, lung + tumour segmentation, uncertainty, dose and result tables to ``scene`` (a
    "Missing inputs" table when results were not computed); in automatic mode (no seed) the candidate regions of
    ``result.json`` as the point list "CT tumour candidates", as the panel adds them."""
    out = Path(out_dir)
    ct = sitk.ReadImage(str(out / "ct.nii.gz"))
    ct_node = mrml.volume_node_from_image(scene, ct, "CT")
    lungs = sitk.ReadImage(str(out / "lungs.nii.gz"))
    seg_node, _ = nodes.add_lung_outputs(scene, ct_node, lungs)
    seg_node.SetName("LungAI segmentation")
    _, tumour_id = mrml.mask_to_segment(scene, sitk.ReadImage(str(out / "tumor.nii.gz")) > 0, nodes.TUMOUR_SEGMENT,
                                        seg_node=seg_node)
    nodes.mark_made_by(seg_node, tumour_id, "lungai segment")
    out_nodes = {"ct": ct_node, "segmentation": seg_node}
    for key, file, name, colors in (("uncertainty", "uncertainty.nii.gz", nodes.tumour_node_name("CT", "uncertainty"),
                                     nodes.HEAT_COLOR_NODE_ID),
                                    ("dose", "dose.nii.gz", dose_name, nodes.DOSE_COLOR_NODE_ID)):
        if (out / file).exists():
            node = mrml.volume_node_from_image(scene, sitk.ReadImage(str(out / file)), name)
            nodes.show_as_heat_map(node, colors)        # the uncertainty: its fixed window below (show_uncertainty)
            out_nodes[key] = node
    _table(scene, out / "radiomics_long.csv", "Radiomics")
    _table(scene, out / "dose.csv", "Dose features")
    _table(scene, out / "rp_prediction.csv", "RP risk", RP_TEXT_COLUMNS)
    _table(scene, out / "stage_probabilities.csv", "Stage probabilities")
    _table(scene, out / "missing_inputs.csv", "Missing inputs")
    if (out / "result.json").exists():
        import json

        info = json.loads((out / "result.json").read_text(encoding="utf-8"))
        nodes.set_tumour_result(seg_node, tumour_id, info)      # the tumour segment's own confidence (tags)
        # the panel's table and uncertainty display (one builder: nodes.confidence_row, nodes.show_uncertainty)
        table = mrml.table_node_from_dataframe(scene, pd.DataFrame([nodes.confidence_row(info, nodes.TUMOUR_SEGMENT)]),
                                               nodes.tumour_node_name("CT", "confidence"))
        if "uncertainty" in out_nodes:
            nodes.show_uncertainty(out_nodes["uncertainty"], info)
        nodes.link_to_segment(table, ct_node, seg_node, tumour_id)
        nodes.tumour_result(seg_node, tumour_id, by_id=True)       # its outline column (nodes.OUTLINE_COLUMN)
        points = nodes.add_candidate_points(scene, "CT", info)      # automatic mode (no seed): the regions found
        if points is not None:
            out_nodes["candidates"] = points
    if "uncertainty" in out_nodes:
        nodes.link_to_segment(out_nodes["uncertainty"], ct_node, seg_node, tumour_id)
    return out_nodes


def save_demo_scene(out_dir, mrb_path, dose_name: str = "Dose (Gy)") -> Path:
    """Build the scene from the demo's files and save it as ``.mrb``."""
    scene = mrml.new_scene()
    build_demo_scene(scene, Path(out_dir), dose_name)
    return mrml.save_scene(scene, mrb_path)
