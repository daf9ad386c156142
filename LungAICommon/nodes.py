"""MRML nodes <-> files for the subprocess commands (no Qt; uses :mod:`lungai.mrml`).

The panels export their input nodes to files in a work folder, run a ``lungai`` command on them,
and load the outputs back as ordinary Slicer nodes: a segmentation (editable in Segment Editor),
volumes with a colour map, tables.  Tested headless on real MRML (slicer-core).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

# A colour map present in every Slicer (and in slicer-core's default colour nodes).
UNCERTAINTY_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"


def segment_names(seg_node) -> list:
    """Names of the node's segments, in order ([] for no node)."""
    if seg_node is None:
        return []
    seg = seg_node.GetSegmentation()
    return [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]


def union_masks(paths, path: Path) -> Path:
    """Write the union of binary mask files (same grid) to ``path``."""
    import SimpleITK as sitk
    from lungai.io import write_image

    union = sitk.ReadImage(str(paths[0])) > 0
    for other in paths[1:]:
        union = sitk.Or(union, sitk.ReadImage(str(other)) > 0)
    return write_image(sitk.Cast(union, sitk.sitkUInt8), path)


def export_volume(volume_node, path: Path) -> Path:
    """Write a scalar volume node to ``path`` (.nii.gz/.nrrd) with its geometry."""
    from lungai import mrml
    from lungai.io import write_image

    return write_image(mrml.image_from_volume_node(volume_node), path)


def export_segment(scene, seg_node, segment: str, reference_volume_node, path: Path) -> Path:
    """Write one segment (id or name) as a binary mask on the reference volume's grid."""
    from lungai import mrml
    from lungai.io import write_image

    return write_image(mrml.segment_to_mask(scene, seg_node, segment, reference_volume_node), path)


def load_segmentation_outputs(scene, output_dir: Path, reference_volume_node, seg_node=None,
                              name: Optional[str] = None):
    """Load ``lungai segment`` outputs: returns (segmentation node, tumour segment id, uncertainty node).

    The tumour becomes a "Tumor" segment (a new one; existing segments are never overwritten);
    the uncertainty map becomes a scalar volume shown with a heat colour map.
    """
    from lungai import mrml
    from lungai.io import read_image, read_mask

    output_dir = Path(output_dir)
    reference = mrml.image_from_volume_node(reference_volume_node)
    tumour = read_mask(output_dir / "tumor.nii.gz", reference=reference)
    seg_node, segment_id = mrml.mask_to_segment(scene, tumour, "Tumor", seg_node=seg_node,
                                                reference_volume_node=reference_volume_node)
    base = name or reference_volume_node.GetName()
    if seg_node.GetName().startswith("Tumor"):
        seg_node.SetName(scene.GenerateUniqueName(f"{base} tumour"))
    uncertainty = read_image(output_dir / "uncertainty.nii.gz")
    unc_node = mrml.volume_node_from_image(scene, uncertainty, f"{base} tumour uncertainty")
    show_as_heat_map(unc_node)
    return seg_node, segment_id, unc_node


def load_candidates(scene, result: dict, name: str):
    """Automatic mode's candidate regions from a ``result.json`` dict as a markups point list (labels:
    rank, volume, mean probability), when there is more than one; else None."""
    from lungai import mrml

    candidates = result.get("candidates") or []
    return mrml.candidates_to_markups(scene, candidates, f"{name} tumour candidates") if len(candidates) > 1 else None


def show_as_heat_map(volume_node, color_node_id: str = UNCERTAINTY_COLOR_NODE_ID) -> None:
    """Heat colour map over the node's full range, with values near zero transparent-ish (thresholded)."""
    import numpy as np

    display = volume_node.GetDisplayNode()
    if display is None:
        volume_node.CreateDefaultDisplayNodes()
        display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_node_id)
    values = np.asarray(mrml_array(volume_node))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1e-6
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(low + 0.02 * (high - low))
    display.SetUpperThreshold(high)


def mrml_array(volume_node):
    """The node's voxels as a numpy array [k, j, i] (no copy)."""
    from vtk.util import numpy_support

    image = volume_node.GetImageData()
    dims = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])


def table_from_csv(scene, path: Path, name: str, node=None):
    """A table node with the contents of a CSV file (numbers as numbers)."""
    import pandas as pd
    from lungai import mrml

    return mrml.table_node_from_dataframe(scene, pd.read_csv(path), name, node=node)


def table_rows(table_node) -> list[dict]:
    """The rows of a table node as dicts of strings (no pandas needed)."""
    table = table_node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    return [{names[c]: table.GetValue(r, c).ToString() for c in range(len(names))}
            for r in range(table.GetNumberOfRows())]


def derived_lung_masks(masks: dict, out_dir: Path) -> dict:
    """Extra masks "Lungs" (right | left) and "Lungs minus tumour" from exported segment files.

    ``masks`` maps Slicer segment names to mask files; the derived masks are made only when both
    "Right lung" and "Left lung" are present (the tumour one also needs a Tumor/Tumour/GTV segment),
    as in :mod:`lungai.scene.radiomics`.  Returns {name: path of the new mask}.
    """
    import SimpleITK as sitk
    from lungai.io import write_image
    from lungai.segment_roles import find_role

    right, left = find_role(masks, "right_lung"), find_role(masks, "left_lung")
    if right is None or left is None:
        return {}
    read = lambda name: sitk.ReadImage(str(masks[name])) > 0  # noqa: E731
    lungs = sitk.Or(read(right), read(left))
    out = {"Lungs": write_image(sitk.Cast(lungs, sitk.sitkUInt8), Path(out_dir) / "derived_lungs.nii.gz")}
    tumour = find_role(masks, "tumour")
    if tumour is not None:
        minus = sitk.And(lungs, sitk.Not(read(tumour)))
        out["Lungs minus tumour"] = write_image(sitk.Cast(minus, sitk.sitkUInt8),
                                                Path(out_dir) / "derived_lungs_minus_tumour.nii.gz")
    return out
