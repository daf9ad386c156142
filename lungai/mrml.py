"""MRML bridge: Slicer nodes <-> core objects.  The only core file that imports ``slicer``.

Works inside the 3D Slicer application and headless with the PyPI package ``slicer-core``
(real MRML classes, no Qt).  Geometry: MRML is RAS, SimpleITK/ITK is LPS; numpy arrays
from MRML are indexed [k, j, i] like SimpleITK's.

- :func:`image_from_volume_node` / :func:`volume_node_from_image` - scalar volumes.
- :func:`mask_to_segment` / :func:`segment_to_mask` - binary masks <-> named segments.
- :func:`table_node_from_dataframe` / :func:`dataframe_from_table_node` - tables.
- :func:`candidates_to_markups` - automatic-mode candidate regions as a markups point list.
- :func:`save_scene` - a scene as ``.mrb`` (or ``.mrml`` folder) with all its data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk
import slicer  # noqa: F401  (the Slicer application's or slicer-core's)
import vtk

from lungai.errors import InputError, InputNote
from lungai.terminology import colour_of, slicer_terminology_entry

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

# the segments' colours: those of lungai.terminology.COLOURS (the one table, also the DICOM SEG's and RTSTRUCT's)
COLORS = {name: tuple(c / 255 for c in colour_of(role))
          for name, role in (("Tumor", "gtv"), ("Right lung", "lung_right"), ("Left lung", "lung_left"))}


# ---------------------------------------------------------------- geometry
def ijk_to_ras_from_image(img: sitk.Image) -> np.ndarray:
    direction = np.array(img.GetDirection(), float).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = LPS_TO_RAS @ direction @ np.diag(img.GetSpacing())
    m[:3, 3] = LPS_TO_RAS @ np.array(img.GetOrigin(), float)
    return m


def _vtk_matrix(m: np.ndarray) -> vtk.vtkMatrix4x4:
    vm = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vm.SetElement(r, c, float(m[r, c]))
    return vm


def _numpy_matrix(vm: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[vm.GetElement(r, c) for c in range(4)] for r in range(4)])


def geometry_from_ijk_to_ras(m: np.ndarray):
    """(origin, spacing, direction) in LPS from an IJK-to-RAS matrix."""
    lin = LPS_TO_RAS @ m[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    direction = lin / spacing
    origin = LPS_TO_RAS @ m[:3, 3]
    return tuple(origin), tuple(spacing), tuple(direction.ravel())


def _set_geometry(node, img: sitk.Image) -> None:
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras_from_image(img)))


def ijk_to_world(node, world: bool = True) -> np.ndarray:
    """The node's IJK-to-RAS matrix; with ``world`` its parent transforms applied (what Slicer shows and
    where markups are placed).  A non-linear transform cannot be applied to a grid: clear error."""
    vm = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(vm)
    m = _numpy_matrix(vm)
    parent = node.GetParentTransformNode() if world else None
    if parent is None:
        return m
    if not parent.IsTransformToWorldLinear():
        raise InputError(f"{node.GetName()} is under the non-linear transform {parent.GetName()}",
                         "harden the transform first (Data module: right-click the volume -> Harden transform)")
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return _numpy_matrix(to_world) @ m


def set_geometry_from_node(img: sitk.Image, node, world: bool = True) -> sitk.Image:
    """Give ``img`` (on the node's voxel grid) the node's geometry in LPS (world coordinates by default)."""
    origin, spacing, direction = geometry_from_ijk_to_ras(ijk_to_world(node, world))
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    return img


# ---------------------------------------------------------------- volumes
def image_from_volume_node(node, world: bool = True) -> sitk.Image:
    """SimpleITK image (LPS) with the node's voxels and geometry; with ``world`` (the default) the node's
    parent transforms are applied, so the image lies where Slicer shows it (and where seeds/ROIs are
    read).  A non-linear parent transform raises :class:`InputError` (harden it first)."""
    return image_from_snapshot(volume_node_snapshot(node, world))


def volume_node_snapshot(node, world: bool = True) -> tuple:
    """The MRML read of :func:`image_from_volume_node` (on the GUI thread): (the node's voxels, copied, its
    (origin, spacing, direction) in LPS); :func:`image_from_snapshot` makes the image of it, reading no MRML - in any
    thread (a panel writes its CT work file in a background thread: QA slicerfollow71)."""
    if node is None or node.GetImageData() is None:
        raise InputError("the volume node has no image data", "select a loaded volume")
    return np.array(slicer.util.arrayFromVolume(node), copy=True), geometry_from_ijk_to_ras(ijk_to_world(node, world))


def volume_node_grid(node, world: bool = True) -> sitk.Image:
    """A uint8 image of zeros on the node's voxel grid, with its geometry in LPS (world coordinates by default, as
    :func:`image_from_volume_node`), without its voxels: the reference a mask file is read onto
    (:func:`lungai.io.read_mask`, which uses its grid only).  QA slicer72: Segment tumour's result loading copied
    LUNG1-003's CT twice (0.3 s on the GUI thread after Done) only to read tumor.nii.gz onto its grid; 0.002-0.1 s."""
    if node is None or node.GetImageData() is None:
        raise InputError("the volume node has no image data", "select a loaded volume")
    origin, spacing, direction = geometry_from_ijk_to_ras(ijk_to_world(node, world))
    img = sitk.Image([int(n) for n in node.GetImageData().GetDimensions()], sitk.sitkUInt8)
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    return img


def image_from_snapshot(snapshot) -> sitk.Image:
    """The SimpleITK image of a :func:`volume_node_snapshot` (no MRML read)."""
    voxels, (origin, spacing, direction) = snapshot
    img = sitk.GetImageFromArray(voxels)
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    return img


def volume_node_from_image(scene, img: sitk.Image, name: str, node=None, labelmap: bool = False,
                           display: bool = True, window=None):
    """Create (or update ``node``) a scalar/labelmap volume node holding ``img``.

    ``window`` (low, high): the display window the caller shows it with (a heat map's fixed range): a node without a
    display node gets one, with that window and no automatic window/level, *before* its voxels - no histogram of them
    is computed only to be replaced.  QA slicer70: Segment tumour's uncertainty map of LUNG1-003 (512 x 512 x 111
    floats) spent 0.9-1.0 s of its 2.7-4.3 s result loading in the default display node's automatic window/level, on
    the GUI thread after the bar said Done (2.4-3.6 s a map of noise)."""
    if node is None:
        cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(cls, scene.GenerateUniqueName(name))
    if display and window is not None and not labelmap and node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()          # no voxels yet: nothing to compute
        shown = node.GetDisplayNode()
        shown.AutoWindowLevelOff()
        shown.SetWindowLevelMinMax(float(window[0]), float(window[1]))
    arr = sitk.GetArrayFromImage(img)
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(arr.shape[2], arr.shape[1], arr.shape[0])
    from vtk.util import numpy_support  # noqa: PLC0415

    flat = np.ascontiguousarray(arr).ravel()
    vtk_arr = numpy_support.numpy_to_vtk(flat, deep=True, array_type=numpy_support.get_vtk_array_type(flat.dtype))
    vtk_arr.SetName("ImageScalars")
    image_data.GetPointData().SetScalars(vtk_arr)
    node.SetAndObserveImageData(image_data)
    _set_geometry(node, img)
    if display and node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


# ---------------------------------------------------------------- segmentations
def resolve_segment(seg_node, segment: str) -> Optional[str]:
    """The ID of the segment given by name or ID - the one place lungai resolves a segment; None when there is none.

    - a **name wins**: "Tumor" is the segment named "Tumor", even when another segment's ID is "Tumor" (lungai makes
      IDs from names: a first run's "Tumor" has the ID ``Tumor``; renamed "Tumor (rejected)", and a later run's
      "Tumor (2)" renamed "Tumor", the name "Tumor" means the later one);
    - two or more segments of that name (equal once the spaces around them are stripped, the DICOM rule
      :func:`lungai.dicom.labels.label_key`: "GTV" and "GTV ") raise :class:`InputError`: which one is meant is not
      known, and a result keyed by name would keep one of them only (:func:`repeated_names_error`);
    - else the segment whose ID it is (a caller holding an ID)."""
    if seg_node is None or segment is None:
        return None
    segment = str(segment)
    segmentation = seg_node.GetSegmentation()
    by_name = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())
               if segmentation.GetNthSegment(i).GetName() == segment]
    if by_name:
        error = repeated_names_error(seg_node, [segment])
        if error is not None:
            raise error
        return by_name[0]
    return segment if segmentation.GetSegment(segment) is not None else None


def segment_by_id(seg_node, segment_id: str) -> Optional[str]:
    """``segment_id`` when ``seg_node`` has a segment of that ID, else None: no name resolution (two segments may
    share a name, never an ID)."""
    if seg_node is None or segment_id is None:
        return None
    return str(segment_id) if seg_node.GetSegmentation().GetSegment(str(segment_id)) is not None else None


def repeated_names_error(seg_node, names=None) -> Optional[InputError]:
    """The :class:`InputError` when two or more segments of ``seg_node`` have one of ``names`` (any of its names when
    None), equal once the spaces around them are stripped (the DICOM rule, :func:`lungai.dicom.labels.repeated_labels`:
    "GTV" and "GTV "): such a name chooses no one segment (:func:`resolve_segment` raises it, the panels say it before
    Apply: ``str(error)``); else None."""
    from lungai.dicom.labels import label_key, repeated_labels

    if seg_node is None:
        return None
    all_names = segment_names(seg_node)
    wanted = {label_key(n) for n in (all_names if names is None else names)}
    for group in repeated_labels(all_names):
        name = label_key(all_names[group[0]])
        if name in wanted:
            shown = ", ".join(repr(all_names[i]) for i in group)
            return InputError(f"{len(group)} segments of {seg_node.GetName()} have the name {name!r} ({shown}): which "
                              "one is meant is not known (a result by name would keep one of them only)",
                              "rename one of them in the Segment Editor (e.g. GTV-1, GTV-2: every segment needs its "
                              "own name)")
    return None


def segment_tag(seg_node, segment: str, key: str) -> Optional[str]:
    """The tag ``key`` of a segment (id or name), or None when it has none (or there is no such segment)."""
    seg_id = resolve_segment(seg_node, segment)
    value = vtk.reference("")
    found = seg_id is not None and seg_node.GetSegmentation().GetSegment(seg_id).GetTag(key, value)
    return str(value) if found else None


def segment_names(seg_node) -> list[str]:
    """Names of the node's segments in order ([] for no node)."""
    if seg_node is None:
        return []
    seg = seg_node.GetSegmentation()
    return [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]


def source_representation(seg_node) -> str:
    """The name of the segmentation's source (master) representation: "Binary labelmap" for what lungai and the
    Segment Editor make, "Closed surface" / "Planar contour" for an RTSTRUCT loaded by SlicerRT or a model
    imported as a segmentation (Slicer 5.10 / 5.12 name it source; older releases master)."""
    segmentation = seg_node.GetSegmentation()
    return (segmentation.GetSourceRepresentationName() if hasattr(segmentation, "GetSourceRepresentationName")
            else segmentation.GetMasterRepresentationName())


def stores_labelmaps(seg_node) -> bool:
    """Whether the segmentation's source representation is the binary labelmap, so that a mask written into it
    (:func:`mask_to_segment`) is kept voxel for voxel.  A segmentation of closed surfaces or planar contours (an
    RTSTRUCT loaded by SlicerRT) converts a labelmap segment added to it into a surface (smoothed, decimated) and
    gives it back as that surface's voxels: another outline (QA: LUNG1 lung1's 837-voxel tumour came back as 777)."""
    return source_representation(seg_node) == \
        slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()


def segment_is_empty(seg_node, segment: str) -> bool:
    """Whether the segment (id or name) holds nothing, read from its source representation (cheap enough for
    an Apply button's check: no export to a grid).  A shared binary labelmap counts this segment's label only."""
    seg_id = resolve_segment(seg_node, segment)
    if seg_id is None:
        raise InputError(f"segment {segment!r} is not in {seg_node.GetName()}",
                         f"choose one of: {', '.join(segment_names(seg_node)) or '(none)'}")
    segmentation = seg_node.GetSegmentation()
    source = source_representation(seg_node)
    seg = segmentation.GetSegment(seg_id)
    data = seg.GetRepresentation(source)
    if data is None:
        return True
    if data.IsA("vtkPolyData"):          # closed surface, planar contours (SlicerRT)
        return data.GetNumberOfPoints() == 0
    scalars = data.GetPointData().GetScalars()
    if scalars is None or data.GetNumberOfPoints() == 0:
        return True
    from vtk.util.numpy_support import vtk_to_numpy

    return not bool((vtk_to_numpy(scalars) == seg.GetLabelValue()).any())


def _unique_segment_name(seg_node, name: str) -> str:
    existing = set(segment_names(seg_node))
    if name not in existing:
        return name
    k = 2
    while f"{name} ({k})" in existing:
        k += 1
    return f"{name} ({k})"


def stored_reference_geometry(segmentation) -> str:
    """The reference image geometry text stored in ``segmentation`` (a vtkSegmentation), '' when none is: read from
    its serialized conversion parameters (``name|value|description&...``, as a .seg.nrrd stores them), because
    ``GetConversionParameter`` of a parameter not set logs a VTK error ("ERR| ... Conversion parameter 'Reference
    image geometry' is not found", in red on the console of every ``lungai demo`` on a CT and in Slicer's log)."""
    name = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    for entry in (segmentation.SerializeAllConversionParameters() or "").split("&"):
        key, _, rest = entry.partition("|")
        if key == name:
            return rest.split("|")[0]
    return ""


def has_reference_geometry(seg_node) -> bool:
    """Whether the segmentation has a reference image geometry (the grid Segment Editor paints on: a volume's, or one
    the user set with *Specify geometry* - oversampled, isotropic - or that a .seg.nrrd brought)."""
    return bool(seg_node.GetNodeReferenceID(seg_node.GetReferenceImageGeometryReferenceRole())
                or stored_reference_geometry(seg_node.GetSegmentation()))


def mask_to_segment(scene, mask: sitk.Image, name: str, seg_node=None, replace_segment: Optional[str] = None,
                    reference_volume_node=None, color=None) -> tuple[object, str]:
    """Put a binary mask into a segment; returns (segmentation node, segment id).

    - ``seg_node=None``: a new segmentation node is created.
    - ``replace_segment``: the id or name of the one segment the user chose to overwrite.
    - otherwise a new segment is added; when ``name`` is taken, the new one is called
      "``name`` (2)" - another segment is never overwritten silently.
    """
    if seg_node is None:
        seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(f"{name} segmentation"))
        seg_node.CreateDefaultDisplayNodes()
    if reference_volume_node is not None and not has_reference_geometry(seg_node):
        seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    target_id = None
    if replace_segment is not None:
        target_id = resolve_segment(seg_node, replace_segment)
        if target_id is None:
            raise InputError(f"segment {replace_segment!r} is not in {seg_node.GetName()}",
                             f"choose one of: {', '.join(segment_names(seg_node)) or '(none)'}")
    # the mask's voxels > 0 as 0 / 1 (k, j, i), in numpy: SimpleITK's Greater + Cast took 0.13-0.24 s of a
    # 512 x 512 x 107 lung on the GUI thread (QA slicer68)
    binary = np.greater(sitk.GetArrayViewFromImage(mask), 0).view(np.uint8)
    empty = not bool(binary.any())
    segmentation = seg_node.GetSegmentation()
    if target_id is not None:
        old = segmentation.GetSegment(target_id)
        final, rgb, index = old.GetName(), old.GetColor(), segmentation.GetSegmentIndex(target_id)
        old_entry = vtk.reference("")
        kept_entry = str(old_entry) if old.GetTag("TerminologyEntry", old_entry) and str(old_entry) else None
        segmentation.RemoveSegment(target_id)
        segment_id = target_id
    else:
        final = _unique_segment_name(seg_node, name)
        rgb, index = tuple(color or COLORS.get(name, (0.9, 0.7, 0.2))), None
        segment_id = segmentation.GenerateUniqueSegmentID(final.replace(" ", "_"))
    if empty:
        with _segment_types_known():    # headless, an empty segment was not added: AttributeError below
            segmentation.AddEmptySegment(segment_id, final, rgb)
    else:
        if seg_node.GetParentTransformNode() is None:
            segment = _labelmap_segment(binary, ijk_to_ras_from_image(mask))
        else:       # Slicer's logic maps the mask (world) into the transformed segmentation's coordinates
            image = sitk.GetImageFromArray(binary)
            image.CopyInformation(mask)
            label_node = volume_node_from_image(scene, image, "__lungai_tmp_label", labelmap=True, display=False)
            try:
                segment = slicer.vtkSlicerSegmentationsModuleLogic.CreateSegmentFromLabelmapVolumeNode(label_node,
                                                                                                     seg_node)
            finally:
                scene.RemoveNode(label_node)
        segment.SetName(final)
        segment.SetColor(*rgb)
        segmentation.AddSegment(segment, segment_id)
    if index is not None:
        segmentation.SetSegmentIndex(segment_id, index)
    # a replaced segment keeps its terminology (as its name and colour); else the one code table,
    # lungai.terminology (also the DICOM SEG's)
    entry = kept_entry if target_id is not None and kept_entry else slicer_terminology_entry(name)
    if entry:
        segmentation.GetSegment(segment_id).SetTag("TerminologyEntry", entry)
    return seg_node, segment_id


def _labelmap_segment(binary: np.ndarray, ijk_to_ras: np.ndarray):
    """A new segment whose binary labelmap is ``binary`` (a 0 / 1 uint8 array, k, j, i) on the grid ``ijk_to_ras``:
    the segment Slicer's ``CreateSegmentFromLabelmapVolumeNode`` makes of a labelmap node holding it (the whole grid,
    label 1, unsigned char, the same image-to-world matrix) without that node's round trip and the call's scan of
    every voxel for the labels it holds (vtkImageAccumulate) - QA slicer68: 0.85-0.9 s of the 1.2-1.7 s a lung of
    LUNG1-003 (512 x 512 x 107) took in :func:`mask_to_segment` on the GUI thread."""
    from vtk.util import numpy_support  # noqa: PLC0415

    image = slicer.vtkOrientedImageData()
    image.SetDimensions(binary.shape[2], binary.shape[1], binary.shape[0])
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(binary).ravel(), deep=True,
                                         array_type=vtk.VTK_UNSIGNED_CHAR)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    image.SetGeometryFromImageToWorldMatrix(_vtk_matrix(ijk_to_ras))
    segment = slicer.vtkSegment()
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName(), image)
    return segment


def segment_to_mask(scene, seg_node, segment: str, reference_volume_node, by_id: bool = False,
                    world: bool = True) -> sitk.Image:
    """The segment (id or name: :func:`resolve_segment`) as a uint8 mask on the reference volume's grid, with the
    reference's world geometry (Slicer maps the segment through both nodes' transforms onto the reference's voxel
    grid).  ``by_id``: ``segment`` is a segment ID, taken as it is (no name resolution: a caller walking the
    segments by ID, e.g. every tumour segment, where two of them may share a name).  ``world=False``: the same
    voxels with the reference's own geometry, its parent transform left out (where the reference's file or DICOM
    series has them: :func:`lungai.scene.dicom.export_segments_dicom`)."""
    seg_id = segment_by_id(seg_node, segment) if by_id else resolve_segment(seg_node, segment)
    if seg_id is None:
        raise InputError(f"segment {segment!r} is not in {seg_node.GetName()}",
                         f"choose one of: {', '.join(segment_names(seg_node)) or '(none)'}")
    fast = _segment_on_reference_grid(seg_node, seg_id, reference_volume_node)
    if fast is not None:
        return set_geometry_from_node(sitk.GetImageFromArray(fast), reference_volume_node, world)
    before = _node_ids(scene)
    label_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__lungai_tmp_export")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(seg_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            seg_node, ids, label_node, reference_volume_node)
        if not ok:
            raise InputError(f"could not export segment {segment!r}", "check the segmentation and reference volume")
        arr = slicer.util.arrayFromVolume(label_node)
        if arr.shape != slicer.util.arrayFromVolume(reference_volume_node).shape:
            raise InputError(f"segment {segment!r} could not be put on the grid of {reference_volume_node.GetName()}",
                             "check that the reference volume is a loaded scalar volume")
        mask = sitk.GetImageFromArray(np.greater(arr, 0).view(np.uint8))     # 0 / 1, no second copy
    finally:
        _remove_export_nodes(scene, before, label_node)
    return set_geometry_from_node(mask, reference_volume_node, world)


def _segment_on_reference_grid(seg_node, seg_id: str, reference_volume_node) -> Optional[np.ndarray]:
    """The segment as a uint8 0 / 1 array (k, j, i) of the reference volume's grid, read from its own binary labelmap
    where that lies on the very voxels of the reference - the same index-to-world matrix, neither node under a
    transform, the segmentation's source representation a binary labelmap (an RTSTRUCT or a lungai result imported
    on the CT, the Segment Editor's painting on it) - placed at its extent (cropped or not, a shared labelmap's own
    label only); None otherwise (:func:`segment_to_mask` then exports it with Slicer's logic, which resamples).  The
    same voxels as that export, without it: QA slicer67, 0.35-0.45 s a segment of LUNG1-003 (512 x 512 x 107) on
    the GUI thread, 8 segments 2.6-4 s of Lung Radiomics' start."""
    if seg_node.GetParentTransformNode() is not None or reference_volume_node.GetParentTransformNode() is not None:
        return None
    binary = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    segmentation = seg_node.GetSegmentation()
    source = (segmentation.GetSourceRepresentationName() if hasattr(segmentation, "GetSourceRepresentationName")
              else segmentation.GetMasterRepresentationName())
    segment = segmentation.GetSegment(seg_id)
    image = reference_volume_node.GetImageData()
    data = segment.GetRepresentation(binary) if segment is not None and source == binary else None
    if data is None or image is None or data.GetNumberOfScalarComponents() != 1:
        return None
    matrix, reference = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    data.GetImageToWorldMatrix(matrix)
    reference_volume_node.GetIJKToRASMatrix(reference)
    m, r = _numpy_matrix(matrix), _numpy_matrix(reference)
    if not (np.array_equal(m[:, :3], r[:, :3]) and np.array_equal(m[3], r[3])):
        return None                                          # another spacing or direction: the export resamples
    shift = np.linalg.solve(r[:3, :3], m[:3, 3] - r[:3, 3])   # its first voxel on the reference's voxel grid
    if not np.allclose(shift, np.round(shift), rtol=0, atol=1e-6):
        return None                                          # between the reference's voxels
    shift = [int(v) for v in np.round(shift)]
    ref_ext = image.GetExtent()
    ext = [e + shift[a // 2] for a, e in enumerate(data.GetExtent())]
    out = np.zeros((ref_ext[5] - ref_ext[4] + 1, ref_ext[3] - ref_ext[2] + 1, ref_ext[1] - ref_ext[0] + 1), np.uint8)
    scalars = data.GetPointData().GetScalars()
    if scalars is None or any(ext[2 * a + 1] < ext[2 * a] for a in range(3)):
        return out                                            # an empty segment
    from vtk.util.numpy_support import vtk_to_numpy

    values = vtk_to_numpy(scalars).reshape(ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1)
    low = [max(ext[2 * a], ref_ext[2 * a]) for a in range(3)]     # the part of the segment's extent on the grid
    high = [min(ext[2 * a + 1], ref_ext[2 * a + 1]) for a in range(3)]
    if any(h < lo for lo, h in zip(low, high)):
        return out                                            # wholly outside the reference's voxels
    src = tuple(slice(low[a] - ext[2 * a], high[a] - ext[2 * a] + 1) for a in (2, 1, 0))
    dst = tuple(slice(low[a] - ref_ext[2 * a], high[a] - ref_ext[2 * a] + 1) for a in (2, 1, 0))
    np.equal(values[src], segment.GetLabelValue(), out=out[dst])   # in place: no temporary of the segment's extent
    return out


def _node_ids(scene) -> set:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def _remove_export_nodes(scene, before: set, label_node) -> None:
    """Remove the temporary label node of an export and what the export added with it, so that no export (even a
    failed or cancelled one) leaves nodes in the user's scene: the label node's display node(s) and storage node,
    and the colour table node its display refers to when that node is new (not in the scene ``before``: its IDs)
    and no other node refers to it.  Nothing else is removed: a node another observer added to the scene during the
    export (a colour table of the user's, added by an extension reacting to the label node) stays.  Display nodes
    go first (they refer to the colour node)."""
    displays = [label_node.GetNthDisplayNode(i) for i in range(label_node.GetNumberOfDisplayNodes())]
    displays = [d for d in displays if d is not None]
    storage = [label_node.GetStorageNode()] if label_node.GetStorageNode() is not None else []
    colours = {d.GetColorNodeID() for d in displays if d.GetColorNodeID()} - before
    for node in [*displays, *storage]:
        scene.RemoveNode(node)
    scene.RemoveNode(label_node)
    for colour_id in sorted(colours):
        colour = scene.GetNodeByID(colour_id)
        if colour is not None and not _referenced(scene, colour_id):   # once the label node's nodes are gone
            scene.RemoveNode(colour)


def _referenced(scene, node_id: str) -> bool:
    """Whether a node of ``scene`` refers to the node ``node_id`` (a node reference of any role, or a display
    node's colour node)."""
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node is None or node.GetID() == node_id:
            continue
        if node.IsA("vtkMRMLDisplayNode") and node.GetColorNodeID() == node_id:
            return True
        for r in range(node.GetNumberOfNodeReferenceRoles()):
            role = node.GetNthNodeReferenceRole(r)
            if any(node.GetNthNodeReferenceID(role, k) == node_id for k in range(node.GetNumberOfNodeReferences(role))):
                return True
    return False


# ---------------------------------------------------------------- tables
def candidates_to_markups(scene, candidates: list, name: str):
    """Automatic-mode candidate regions (``result.json`` "candidates": rank, centre_lps_mm, volume_ml,
    mean_probability) as a markups point list; each point labelled "<rank>: <volume> ml, p <mean p>"
    (the first one is in the tumour mask).  Returns the node, or None when there is nothing to show."""
    if not candidates:
        return None
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(name))
    for c in candidates:
        x, y, z = (float(v) for v in c["centre_lps_mm"])
        i = node.AddControlPoint(-x, -y, z)                    # LPS -> RAS
        node.SetNthControlPointLabel(i, f"{c['rank']}: {float(c['volume_ml']):.1f} ml, p {float(c['mean_probability']):.2f}")
        node.SetNthControlPointLocked(i, True)
    return node


def _cell_text(value) -> str:
    """A table cell as text: '' for a missing value (None, NaN, pandas NA).  pandas is not imported for it: a
    value can be a pandas NA only where pandas is imported already (:func:`table_node_from_row` needs no pandas)."""
    if value is None or (isinstance(value, (float, np.floating)) and value != value):
        return ""
    pd = sys.modules.get("pandas")
    if pd is not None:
        try:
            if pd.isna(value):
                return ""
        except (TypeError, ValueError):      # a list or array in a cell is a value
            pass
    return str(value)


# the column property of a double column that holds its values exactly (:func:`table_node_from_dataframe`,
# read by :func:`dataframe_from_table_node`): Slicer's own scene save (File > Save, vtkMRMLTableStorageNode)
# writes a double cell with 6 significant digits (vtkVariant::ToString; Slicer 5.10 / 5.12 have no precision
# setting) but saves the column properties (the .schema.tsv file) as written
EXACT_VALUES_PROPERTY = "LungAI.ExactValues"
# the node attribute (saved in the .mrml file) that ties those values to rows: one key per row
# (:func:`_row_keys`), so a row takes exact values only from the row it was (rows deleted, added, reordered)
EXACT_ROWS_ATTRIBUTE = "LungAI.ExactRows"
# the table nodes (by address) being built or refreshed: :func:`keep_exact_values_current` leaves them alone
_REFRESHING: set = set()


def _table_key(table) -> str:
    return table.__this__


# ---------------------------------------------------------------- marks asked of the object itself
# "is this object marked" (a scene observed, a table of exact cells) is asked of the VTK object: it carries an
# observer of a lungai event, :func:`_mark_answer`, a module function.  Never a set of addresses cleared by a
# DeleteEvent lambda: a new object at a freed one's address passed for marked, and Python's garbage collector
# cleared such a lambda while the dying object's destructor still fired events into it (QA: 'Fatal Python error:
# Segmentation fault ... Garbage-collecting ... in <lambda>').  The events are vtkCommand.UserEvent (1000) + "L?"
EXACT_CELLS_MARK = 1000 + 0x4C42      # a vtkTable built by table_node_from_dataframe: its cells hold exact values
EXACT_KEPT_MARK = 1000 + 0x4C43       # a scene / table node observed by keep_exact_values_current
TOLD_TOO_LARGE_MARK = 1000 + 0x4C44   # a table node told it is too large for keep_exact_values_current
_MARK_ANSWERS: list = []


def _mark_answer(_obj, _event) -> None:
    _MARK_ANSWERS.append(True)


def has_mark(obj, event: int) -> bool:
    """Whether the VTK object ``obj`` carries the mark ``event`` (:func:`add_mark`): it answers that event."""
    _MARK_ANSWERS.clear()
    obj.InvokeEvent(event)
    answered = bool(_MARK_ANSWERS)
    _MARK_ANSWERS.clear()
    return answered


def add_mark(obj, event: int) -> None:
    """Mark the VTK object ``obj`` with ``event`` (:func:`has_mark`); the mark lives and dies with the object."""
    obj.AddObserver(event, _mark_answer)


def _mark_exact_cells(table) -> None:
    """Mark a vtkTable built in this process by :func:`table_node_from_dataframe`: its cells hold the values
    exactly, they are the truth (an edit to the shown 6-digit value reads as typed); in memory only, so a table
    read from a saved scene carries no mark."""
    if not has_mark(table, EXACT_CELLS_MARK):
        add_mark(table, EXACT_CELLS_MARK)


def _exact_cells(table) -> bool:
    return has_mark(table, EXACT_CELLS_MARK)


def _set_synced_mtime(node) -> None:
    """Note on the node (a Python attribute of its wrapper: VTK keeps it while the node lives) its table's
    modification time when its exact values were stored or read: :func:`keep_exact_values_current` then skips a
    node modification that did not change the table."""
    node.lungai_synced_mtime = node.GetTable().GetMTime()


def _synced_mtime(node):
    return getattr(node, "lungai_synced_mtime", None)


def _exact_values_text(values) -> str:
    """The :data:`EXACT_VALUES_PROPERTY` of a column: its doubles' bytes (little-endian) in base64 - exact and
    read back at once (:func:`_exact_values`)."""
    import base64  # noqa: PLC0415

    return _EXACT_PREFIX + base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


_EXACT_PREFIX = "f8:"


def _exact_values(text: str) -> Optional[np.ndarray]:
    """The values of an :data:`EXACT_VALUES_PROPERTY`, None when it holds none."""
    import base64  # noqa: PLC0415
    import binascii  # noqa: PLC0415

    if not text.startswith(_EXACT_PREFIX):
        return None
    try:
        raw = base64.b64decode(text[len(_EXACT_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) % 8:
        return None
    return np.frombuffer(raw, dtype="<f8").astype(float)


def _as_saved_by_slicer(cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where each cell is its value as a table saved by Slicer reads it back (6 significant digits,
    vtkVariant::ToString): a number of at most 6 significant digits within half a unit of the value's 6th
    digit (vectorised; a cell typed over a value with the digits it shows reads the same)."""
    with np.errstate(all="ignore"):
        unit = 10.0 ** (np.floor(np.log10(np.abs(values))) - 5)
        steps = cells / unit
        same = (np.abs(cells - values) <= 0.5 * unit * (1 + 1e-9)) & (np.abs(steps - np.round(steps)) < 1e-6)
    rest = np.flatnonzero(~same & np.isfinite(values))        # few (edited cells, tiny numbers): as Slicer writes
    same[rest] = cells[rest] == np.array(["%.6g" % v for v in values[rest].tolist()], dtype=float)
    return same


def _row_keys(table, numbers: bool) -> list:
    """One key per row of a vtkTable: a hash of the text of its cells as Slicer's table save writes them - the
    text and integer cells, and with ``numbers`` also the double cells (6 significant digits: '%.6g', as
    vtkVariant::ToString) - so a row's key is the same before and after Slicer saved and reloaded it."""
    import hashlib  # noqa: PLC0415

    from vtk.util import numpy_support  # noqa: PLC0415

    n = table.GetNumberOfRows()
    columns = []
    for c in range(table.GetNumberOfColumns()):
        arr = table.GetColumn(c)
        if arr is None or arr.GetNumberOfValues() != n * max(arr.GetNumberOfComponents(), 1):
            return [""] * n
        if arr.IsA("vtkStringArray"):
            columns.append([arr.GetValue(r) for r in range(n)])
        elif arr.IsA("vtkDoubleArray") or arr.IsA("vtkFloatArray"):
            if numbers:
                values = numpy_support.vtk_to_numpy(arr).reshape(n, -1)
                columns.append(["%.6g" % v for v in values[:, 0].tolist()] if values.shape[1] == 1 else
                               [" ".join("%.6g" % v for v in row) for row in values.tolist()])
        elif arr.IsA("vtkDataArray") and not arr.IsA("vtkBitArray"):
            columns.append([str(row) for row in numpy_support.vtk_to_numpy(arr).reshape(n, -1).tolist()])
        else:
            columns.append([arr.GetVariantValue(r).ToString() for r in range(n)])
    return [hashlib.blake2b("\t".join(cells).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
            for cells in zip(*columns)] if columns else [""] * n


def _keys_text(table, known: Optional[dict] = None) -> str:
    """:data:`EXACT_ROWS_ATTRIBUTE`: the rows' keys from their text and integer cells when these tell every row
    apart ("text ..."), else from all cells ("all ...": a row edited in a number column then takes no exact
    values).  ``known``: {numbers: keys} already computed from the table as it is now."""
    known = known or {}
    keys = known[False] if False in known else _row_keys(table, numbers=False)
    if all(keys) and len(set(keys)) == len(keys):
        return " ".join(["text"] + keys)
    return " ".join(["all"] + (known[True] if True in known else _row_keys(table, numbers=True)))


def _store_exact_values(node, columns: dict, known: Optional[dict] = None) -> None:
    """Write {column name: values} into the column properties and the row keys into the node attribute."""
    table = node.GetTable()
    if node.GetSchema() is not None:
        node.RemoveColumnProperty(EXACT_VALUES_PROPERTY)      # no earlier values
    for name, values in columns.items():
        node.SetColumnProperty(name, EXACT_VALUES_PROPERTY, _exact_values_text(values))
    node.SetAttribute(EXACT_ROWS_ATTRIBUTE, _keys_text(table, known) if columns else None)
    _set_synced_mtime(node)


def _repeated_names(table) -> set:
    """The column names that several columns of a vtkTable have: a column property is stored by name, so such
    columns keep no exact values (:func:`refresh_exact_values`) and read their cells."""
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    return {name for name in names if name is not None and names.count(name) > 1}


def _stored_number_columns(node, n_stored: int) -> dict:
    """{column index: its stored exact values} of a table node's double columns that hold ``n_stored`` of them."""
    table = node.GetTable()
    repeated = _repeated_names(table)
    columns = {}
    for c in range(table.GetNumberOfColumns()):
        arr = table.GetColumn(c)
        name = arr.GetName() if arr is not None else None
        if not isinstance(arr, vtk.vtkDoubleArray) or arr.GetNumberOfComponents() != 1 or name is None \
                or name in repeated:
            continue
        exact = _exact_values(node.GetColumnProperty(name, EXACT_VALUES_PROPERTY) or "")
        if exact is not None and exact.shape == (n_stored,):
            columns[c] = exact
    return columns


def _cells_match(cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where each cell holds its exact value, or that value as Slicer saved it (:func:`_as_saved_by_slicer`)."""
    return (cells == values) | (np.isnan(cells) & np.isnan(values)) | _as_saved_by_slicer(cells, values)


def _stored_row_of_each_row(node) -> Optional[tuple]:
    """For each current row of a table read from a saved scene, the index of the row of the stored exact values
    with the same key (:data:`EXACT_ROWS_ATTRIBUTE`), -1 where none or several stored rows have it, and the
    number of stored rows (and {numbers: the current rows' keys}); None when the node holds no row keys.

    A row whose key no stored row has (a ``segment`` or ``case`` cell renamed; in "all" mode a number edited)
    takes the stored row at its own index when the table has as many rows as were stored, no current row has
    that stored row's key, and the row's number cells hold that stored row's values (exactly or as Slicer saved
    them) - all of them, or in "all" mode all but one (the edited cell)."""
    from vtk.util import numpy_support  # noqa: PLC0415

    mode, *stored = (node.GetAttribute(EXACT_ROWS_ATTRIBUTE) or "none").split()
    if mode not in ("text", "all"):
        return None
    index = {}
    for i, key in enumerate(stored):
        index[key] = -1 if key in index else i           # a key of several stored rows: none of them
    table = node.GetTable()
    keys = _row_keys(table, numbers=mode == "all")
    matched = np.array([index.get(key, -1) if key else -1 for key in keys], dtype=np.int64)
    if len(keys) == len(stored) and (matched < 0).any():
        current = set(keys)
        rows = np.array([r for r in np.flatnonzero(matched < 0)
                         if keys[r] and keys[r] not in index and stored[r] not in current], dtype=np.int64)
        columns = _stored_number_columns(node, len(stored)) if len(rows) else {}
        if columns:
            wrong = np.zeros(len(rows), dtype=np.int64)
            for c, exact in columns.items():
                cells = np.asarray(numpy_support.vtk_to_numpy(table.GetColumn(c)), dtype=float)[rows]
                wrong += ~_cells_match(cells, exact[rows])
            ok = rows[wrong <= (1 if mode == "all" else 0)]
            matched[ok] = ok
    return matched, len(stored), {mode == "all": keys}


def _exact_column(node, arr, rows, repeated=()) -> np.ndarray:
    """The values of a double column of a table node: where ``rows`` (:func:`_stored_row_of_each_row`) ties
    a row to a stored row, that row's exact value (:data:`EXACT_VALUES_PROPERTY`), else the cell (always for a
    column whose name is ``repeated``)."""
    from vtk.util import numpy_support  # noqa: PLC0415

    cells = np.array(numpy_support.vtk_to_numpy(arr), dtype=float, copy=True)
    if rows is None or arr.GetName() is None or arr.GetName() in repeated:
        return cells
    matched, n_stored = rows[:2]
    text = node.GetColumnProperty(arr.GetName(), EXACT_VALUES_PROPERTY)
    if not text:
        return cells
    exact = _exact_values(text)
    if exact is None or exact.shape != (n_stored,) or matched.shape != cells.shape:
        return cells
    use = np.flatnonzero(matched >= 0)
    values, now = exact[matched[use]], cells[use]
    # the cell exact or as saved (6 digits): a cell edited since to another value (233097100 for a shown
    # 2.33097e+08) reads as edited
    same = _cells_match(now, values)
    cells[use[same]] = values[same]
    return cells


def table_node_from_dataframe(scene, df, name: str, node=None):
    """A table node with one column per DataFrame column (numbers as double/int, text as string).

    Empty cells of text are empty strings, not "nan": a column of text (object) writes missing values (None,
    NaN) as ''.  A float column stays numeric even when all its values are missing (NaN): a radiomics table marks
    a segment not computed so (:mod:`lungai.scene.rp` imputes its features).  A CSV column that is text but may
    be empty (pandas reads an all-empty column as float NaN: the RP prediction's ``imputed`` / ``warnings``) is
    read as text by the caller (``dtype=str, keep_default_na=False``: :func:`lungai.scene.nodes.read_results_csv`).

    A float column (a double column: Slicer shows, sorts and plots its numbers) also holds its values exactly in
    its column property :data:`EXACT_VALUES_PROPERTY`, each row keyed (:data:`EXACT_ROWS_ATTRIBUTE`), so that
    :func:`dataframe_from_table_node` reads them back exactly after the scene was saved by Slicer (6 significant
    digits in the table file)."""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    _REFRESHING.add(_table_key(node))           # no refresh (:func:`keep_exact_values_current`) while built
    try:
        _fill_table(node, df)
    finally:
        _REFRESHING.discard(_table_key(node))
    node.Modified()
    return node


class _OneRow:
    """One row ``{column: value}`` with the part of a DataFrame's interface :func:`_fill_table` reads (``columns``;
    a column's ``dtype.kind`` and ``tolist()``), its kinds as pandas gives them: an int, float or bool value a
    number column, anything else text."""

    def __init__(self, row: dict):
        self.columns = list(row)
        self._row = row

    def __getitem__(self, column):
        value = self._row[column]
        if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            return np.array([value])
        return np.array([value], dtype=object)


def table_node_from_row(scene, row: dict, name: str, node=None):
    """:func:`table_node_from_dataframe` of a one-row table ``{column: value}`` without importing pandas (1-1.5 s the
    first time, on Slicer's GUI thread: QA slicerfollow70, a tumour result's confidence table)."""
    return table_node_from_dataframe(scene, _OneRow(row), name, node=node)


def _fill_table(node, df) -> None:
    """:func:`table_node_from_dataframe`: the columns and their exact values."""
    table = node.GetTable()
    table.Initialize()
    exact = {}
    for column in df.columns:
        values = df[column]
        kind = values.dtype.kind
        if kind == "b":
            arr = vtk.vtkBitArray()
        elif kind in "iu":
            arr = vtk.vtkLongLongArray()
        elif kind == "f":
            arr = vtk.vtkDoubleArray()
        else:
            arr = vtk.vtkStringArray()
        arr.SetName(str(column))
        for v in values.tolist():
            if isinstance(arr, vtk.vtkStringArray):
                arr.InsertNextValue(_cell_text(v))
            else:
                arr.InsertNextValue(v)
        table.AddColumn(arr)
        if kind == "f" and len(values):
            exact[str(column)] = values.tolist()
    _mark_exact_cells(table)
    _store_exact_values(node, exact)        # a reused node: no earlier table's values


def dataframe_from_table_node(node):
    """A pandas DataFrame from a table node.  A double column's values: the cells of a table built in this
    process (:func:`table_node_from_dataframe`: they hold them exactly, edits included); for a table read from
    a saved scene, each row tied by its key to a row of the stored exact values (:func:`_stored_row_of_each_row`)
    takes that row's exact value where its cell still holds it (or it as Slicer saved it), else the cell."""
    import pandas as pd  # noqa: PLC0415
    from vtk.util import numpy_support  # noqa: PLC0415

    table = node.GetTable()
    rows = None if _exact_cells(table) else _stored_row_of_each_row(node)
    repeated = _repeated_names(table)
    data = {}
    for c in range(table.GetNumberOfColumns()):
        col = table.GetColumn(c)
        n = col.GetNumberOfTuples()
        if isinstance(col, vtk.vtkStringArray):
            data[col.GetName()] = [col.GetValue(i) for i in range(n)]
        elif isinstance(col, vtk.vtkDoubleArray) and col.GetNumberOfComponents() == 1:
            data[col.GetName()] = _exact_column(node, col, rows, repeated)
        else:
            arr = numpy_support.vtk_to_numpy(col) if not isinstance(col, vtk.vtkBitArray) else \
                np.array([col.GetValue(i) for i in range(n)], bool)
            data[col.GetName()] = np.array(arr, copy=True)
    return pd.DataFrame(data)


def refresh_exact_values(node) -> None:
    """Store a table node's values as :func:`dataframe_from_table_node` reads them now (its exact values and
    row keys), so that a save by Slicer keeps a cell edited, a row deleted or moved since.  A node without
    exact values is left alone.  Columns of one name (a column renamed to another's name) keep none: a column
    property is stored by name (a warning names them)."""
    if node.GetAttribute(EXACT_ROWS_ATTRIBUTE) is None or _table_key(node) in _REFRESHING:
        return
    _REFRESHING.add(_table_key(node))        # storing modifies the node: no refresh (keep_exact_values_current)
    try:
        _refresh_exact_values(node)
    finally:
        _REFRESHING.discard(_table_key(node))


def _refresh_exact_values(node) -> None:
    """:func:`refresh_exact_values`."""
    table = node.GetTable()
    rows = None if _exact_cells(table) else _stored_row_of_each_row(node)
    repeated = _repeated_names(table)
    columns = {}
    for c in range(table.GetNumberOfColumns()):
        col = table.GetColumn(c)
        if isinstance(col, vtk.vtkDoubleArray) and col.GetNumberOfComponents() == 1 and col.GetName() is not None \
                and col.GetName() not in repeated and col.GetNumberOfTuples():
            columns[col.GetName()] = _exact_column(node, col, rows).tolist()
    _store_exact_values(node, columns, rows[2] if rows is not None else None)
    if repeated:
        warnings.warn(InputNote(f"scene table {node.GetName()!r}: several columns are named "
                                + ", ".join(repr(n) for n in sorted(repeated)) + ": their numbers are saved by "
                                "Slicer with 6 significant digits only (rename them to keep them exact)"),
                      stacklevel=2)


# :func:`keep_exact_values_current` leaves tables of more cells alone (a refresh of 1000 x 1500 numbers takes
# about 1 s per edit): :func:`refresh_exact_values` by hand before saving; the nodes told so carry
# :data:`TOLD_TOO_LARGE_MARK`
AUTO_REFRESH_MAX_CELLS = 100_000


# keep_exact_values_current's observers are module functions (see :func:`has_mark`), never closures per scene
def _on_table_modified(node, _event) -> None:
    if node is None:            # a node being destroyed
        return
    table = node.GetTable()
    owner = node.GetScene()
    if table is None or _table_key(node) in _REFRESHING or node.GetAttribute(EXACT_ROWS_ATTRIBUTE) is None \
            or _synced_mtime(node) == table.GetMTime() \
            or (owner is not None and (owner.IsImporting() or owner.IsClosing())):   # a scene being read
        return
    if table.GetNumberOfRows() * table.GetNumberOfColumns() > AUTO_REFRESH_MAX_CELLS:
        if not has_mark(node, TOLD_TOO_LARGE_MARK):
            add_mark(node, TOLD_TOO_LARGE_MARK)
            warnings.warn(InputNote(
                f"scene table {node.GetName()!r} has more than {AUTO_REFRESH_MAX_CELLS} cells: its exact values "
                "are not refreshed at each edit; before saving the scene run "
                f"lungai.mrml.refresh_exact_values(slicer.util.getNode({node.GetID()!r}))"), stacklevel=2)
        return
    refresh_exact_values(node)


def _observe_table_node(node) -> None:
    if node is None or not node.IsA("vtkMRMLTableNode") or has_mark(node, EXACT_KEPT_MARK):
        return
    add_mark(node, EXACT_KEPT_MARK)
    node.AddObserver(vtk.vtkCommand.ModifiedEvent, _on_table_modified)
    if node.GetTable() is not None and node.GetAttribute(EXACT_ROWS_ATTRIBUTE) is not None \
            and _synced_mtime(node) is None:
        _set_synced_mtime(node)                                                      # as read


def _on_node_added_keep_exact(_scene, _event, node) -> None:
    _observe_table_node(node)


_on_node_added_keep_exact.CallDataType = vtk.VTK_OBJECT


def keep_exact_values_current(scene) -> None:
    """Refresh (:func:`refresh_exact_values`) a table node's exact values each time its table changes (a cell
    edited, a row deleted in Slicer's table view).  Slicer's File > Save fires no scene event before it writes
    (vtkMRMLScene::StartSaveEvent is never invoked), so the values are kept current as the table changes - in
    tables of at most :data:`AUTO_REFRESH_MAX_CELLS` cells (larger ones: a warning, once, to call
    :func:`refresh_exact_values` by hand).  The panels install it once on the application's scene; idempotent
    (the scene carries :data:`EXACT_KEPT_MARK`)."""
    if has_mark(scene, EXACT_KEPT_MARK):
        return
    add_mark(scene, EXACT_KEPT_MARK)
    for i in range(scene.GetNumberOfNodes()):
        _observe_table_node(scene.GetNthNode(i))
    scene.AddObserver(scene.NodeAddedEvent, _on_node_added_keep_exact)


# ---------------------------------------------------------------- scenes
# the storage of markups (point list, line, angle, curves; ROI; plane): the application's Markups module registers
# these classes in its scene, a bare vtkMRMLScene does not (a point list was saved without its points and read back
# empty; an ROI, whose default storage is vtkMRMLMarkupsROIJsonStorageNode, and a plane, whose default storage is
# vtkMRMLMarkupsPlaneJsonStorageNode, were left out of the .mrb and read back as an empty box of size 0 / a plane
# with no point)
_MARKUPS_STORAGE_CLASSES = ("vtkMRMLMarkupsJsonStorageNode", "vtkMRMLMarkupsFiducialStorageNode",
                            "vtkMRMLMarkupsROIJsonStorageNode", "vtkMRMLMarkupsPlaneJsonStorageNode")


def _register_markups_storage(scene):
    """Let a headless scene write and read markups of every kind (:data:`_MARKUPS_STORAGE_CLASSES`); returns
    ``scene``."""
    for name in _MARKUPS_STORAGE_CLASSES:
        if scene.CreateNodeByClass(name) is None and hasattr(slicer, name):
            scene.RegisterNodeClass(getattr(slicer, name)())
    return scene


def _register_node_classes(scene):
    """Let a headless scene read every kind of node that MRML and the application's modules define (slicer-core holds
    their classes; the application's module logics register them in its scene, a bare vtkMRMLScene does not): the
    sequence browser, segment editor, volume rendering, colour legend, unit, crop volume nodes ...  Without them
    the whole scene was refused (QA mrbslicer63: any scene saved in 3D Slicer with a sequence has a sequence browser,
    one that used the Segment Editor its parameter node).  A class whose XML tag a registered class already has is
    left out (registering it would replace that class).  Returns ``scene``."""
    for name in dir(slicer):
        kind = getattr(slicer, name, None) if name.startswith("vtkMRML") and name.endswith("Node") else None
        if not isinstance(kind, type) or not issubclass(kind, slicer.vtkMRMLNode) \
                or scene.CreateNodeByClass(name) is not None:
            continue
        try:
            node = kind()
        except TypeError:                     # an abstract class
            continue
        if not scene.GetClassNameByTag(node.GetNodeTagName()):
            scene.RegisterNodeClass(node)
    return scene


def _unknown_node_tags(scene, mrml_file: Path) -> list:
    """The XML tags of the nodes in ``mrml_file`` that ``scene`` has no class for (a node of an extension that
    lungai cannot read: SlicerRT's, a scripted module's own node class), sorted."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    try:
        root = ET.parse(mrml_file).getroot()
    except (ET.ParseError, OSError):
        return []
    return sorted({element.tag for element in root if not scene.GetClassNameByTag(element.tag)})


def new_scene():
    """An empty MRML scene (headless with slicer-core; in the application use ``slicer.mrmlScene``).

    Like the application's scene it can save markups of every kind (:func:`_register_markups_storage`) and
    holds the selection node singleton (without it, writing a point list warns "GetUnitNode failed: selection node
    not found").  That selection node is not saved with the scene: importing the .mrb into the application's scene
    would copy its empty settings onto the application's selection node (its active volume, active place node
    class and unit nodes cleared)."""
    scene = _register_markups_storage(slicer.vtkMRMLScene())
    selection = slicer.vtkMRMLSelectionNode()
    selection.SetSingletonTag("Singleton")
    selection.SetSaveWithScene(False)
    scene.AddNode(selection)
    return scene


# a text cell of a saved table file: Slicer's reader (vtkDelimitedTextReader, string delimiter '"') has no escape
# for the delimiter and ends a row at a line break even within quotes, so these are written replaced
_TEXT_REPLACEMENTS = (('"', "''"), ("\r\n", " "), ("\r", " "), ("\n", " "))
# the attribute of a table node whose saved file has text so replaced (set in the saved scene only; removed by
# :func:`load_scene` once it has put back all the text as it was)
REPLACED_TEXT_ATTRIBUTE = "LungAI.SavedTextReplaced"
# the column property (saved in the table's .schema.tsv) of a column whose saved text was replaced: that text as it
# was - its text cells, its name, its column properties (:func:`_exact_text_of_column`) - which :func:`load_scene`
# puts back (:func:`restore_saved_text`); base64 of JSON, so Slicer's reader and writer keep it as it is
EXACT_TEXT_PROPERTY = "LungAI.ExactText"
_EXACT_TEXT_PREFIX = "j:"


def saved_table_text(value: str) -> str:
    """A table's text cell or column name as :func:`save_scene` saves it and 3D Slicer reads it back: '"' and line
    breaks replaced (:data:`_TEXT_REPLACEMENTS`; :func:`load_scene` puts back the text as it was).
    :func:`lungai.scene.nodes.cells_digest` compares cells so: a table saved and reloaded is not edited."""
    for old, new in _TEXT_REPLACEMENTS:
        value = value.replace(old, new)
    return value


def _saved_text(value: str) -> str:
    """A text cell as written into a saved table file (see :func:`_rewrite_table_files`)."""
    return f'"{saved_table_text(value)}"'


def _text_to_replace(value: str) -> bool:
    return any(old in value for old, _ in _TEXT_REPLACEMENTS)


def _rewritable_columns(node):
    """The columns of a table node that :func:`_rewrite_table_files` rewrites its file from (one value per row
    each, text or numbers), or None when it leaves the file as written (no file, a column of several
    components)."""
    storage = node.GetStorageNode()
    if storage is None or not storage.GetFileName():
        return None
    return _single_value_columns(node)


def _single_value_columns(node):
    """The columns of a table node when each holds one value per row (text or numbers), else None."""
    table = node.GetTable()
    if table is None:
        return None
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    n_rows = table.GetNumberOfRows()
    if not columns or any(arr is None or arr.GetNumberOfComponents() != 1 or arr.GetNumberOfValues() != n_rows
                          or not (arr.IsA("vtkStringArray") or arr.IsA("vtkDataArray")) for arr in columns):
        return None
    return columns


def _saved_column_names(columns) -> list:
    """The column names as :func:`_rewrite_table_files` writes them into a table file's header and its schema
    file (quoted there like text cells: :func:`_saved_text`): '"' and line breaks replaced
    (:data:`_TEXT_REPLACEMENTS`), an empty name as "column <number>", and a name so made that is another
    column's as "<name> (2)" ... (Slicer's reader keeps one column of a name, its type looked up by name in the
    schema file) - each unique, so the header always splits into the table's columns."""
    names, taken = [], set()
    originals = {arr.GetName() or "" for arr in columns}
    for c, arr in enumerate(columns):
        original = arr.GetName() or ""
        base = saved_table_text(original) or f"column {c + 1}"
        name, k = base, 1
        while name in taken or (name != original and name in originals):   # never another column's name
            k += 1
            name = f"{base} ({k})"
        taken.add(name)
        names.append(name)
    return names


def _sequence_tables(scene) -> list:
    """(sequence node, [(index value, table node) ...]) for each sequence node of ``scene`` that holds tables: Slicer
    saves such a sequence as a nested ``.seq.mrb`` bundle, its tables written by the same table writer."""
    found = []
    sequences = scene.GetNodesByClass("vtkMRMLSequenceNode")
    for i in range(sequences.GetNumberOfItems()):
        sequence = sequences.GetItemAsObject(i)
        items = [(sequence.GetNthIndexValue(k), sequence.GetNthDataNode(k))
                 for k in range(sequence.GetNumberOfDataNodes())]
        items = [(value, node) for value, node in items if node is not None and node.IsA("vtkMRMLTableNode")]
        if items:
            found.append((sequence, items))
    return found


def _saved_tables(scene) -> list:
    """(table node, its columns to rewrite, how a message names it) for each table :func:`save_scene` saves whose
    file :func:`_rewrite_table_files` rewrites: the scene's tables and the tables inside its sequences."""
    saved = []
    tables = scene.GetNodesByClass("vtkMRMLTableNode")
    for i in range(tables.GetNumberOfItems()):
        node = tables.GetItemAsObject(i)
        columns = _rewritable_columns(node)
        if columns is not None:
            saved.append((node, columns, repr(node.GetName())))
    for sequence, items in _sequence_tables(scene):
        for value, node in items:
            columns = _single_value_columns(node)
            if columns is not None:
                saved.append((node, columns, f"{node.GetName()!r} (item {value!r} of sequence {sequence.GetName()!r})"))
    return saved


def _note_replaced_text(scene) -> dict:
    """Mark each table node whose saved file will have text or column names replaced (:data:`_TEXT_REPLACEMENTS`,
    :func:`_saved_column_names`) - a table of the scene or inside one of its sequences (:func:`_saved_tables`) - with
    :data:`REPLACED_TEXT_ATTRIBUTE` and warn (:class:`lungai.errors.InputNote`) naming the table, columns and number
    of cells: what 3D Slicer shows opening the bundle (the text itself is saved too, :data:`EXACT_TEXT_PROPERTY`, and
    :func:`load_scene` puts it back).  Returns {node: previous attribute value} for :func:`save_scene` to restore."""
    marked = {}
    for node, columns, label in _saved_tables(scene):
        counts = {arr.GetName(): sum(_text_to_replace(arr.GetValue(r)) for r in range(arr.GetNumberOfValues()))
                  for arr in columns if arr.IsA("vtkStringArray")}
        counts = {name: n for name, n in counts.items() if n}
        renamed = [(arr.GetName() or "", saved) for arr, saved in zip(columns, _saved_column_names(columns))
                   if (arr.GetName() or "") != saved]
        properties = _column_properties(node)
        changed_properties = [(arr.GetName() or "", p) for arr in columns for p in properties
                              if _text_to_replace(node.GetColumnProperty(arr.GetName() or "", p))]
        if not counts and not renamed and not changed_properties:
            continue
        parts = []
        if counts:
            where = ", ".join(f"{name!r} ({n} cell{'s' if n > 1 else ''})" for name, n in counts.items())
            parts.append(f"in {'column' if len(counts) == 1 else 'columns'} {where} '\"' shows as two apostrophes "
                         "(\"''\") and a line break as a space (Slicer's table reader cannot read them)")
        if renamed:
            parts.append(("column name shows" if len(renamed) == 1 else "column names show") + " as " + ", ".join(
                f"{old!r} -> {new!r}" for old, new in renamed) + " ('\"' and line breaks replaced alike, an empty "
                "name named, each unique)")
        if changed_properties:
            one = len(changed_properties) == 1
            parts.append(("column property " if one else "column properties ") + ", ".join(
                f"{p!r} of {name!r}" for name, p in changed_properties) + (" shows" if one else " show")
                + " with '\"' and line breaks replaced alike")
        note = ("opened in 3D Slicer, " + "; ".join(parts) + "; all other text and the numbers show as they are. "
                "The text is also saved exactly with the table: lungai.mrml.load_scene reads it back as it was")
        marked[node] = node.GetAttribute(REPLACED_TEXT_ATTRIBUTE)
        node.SetAttribute(REPLACED_TEXT_ATTRIBUTE, note)
        warnings.warn(InputNote(f"scene table {label}: {note}"), stacklevel=3)
    return marked


# the attribute of a sequence node, in the saved scene only, holding its items' names (base64 of JSON: [[index value,
# name] ...]) where the sequence's file keeps none - a sequence of volumes or label maps (one 4D .seq.nrrd), of
# transforms (.seq.mha): their readers name the items after the sequence ("<sequence>_0000" ...), so
# :func:`load_scene` gives them back their names from it and takes it out
SEQUENCE_ITEM_NAMES_ATTRIBUTE = "LungAI.SequenceItemNames"
_ITEM_NAMES_PREFIX = "j:"
# the storage of a sequence that keeps its items as nodes of a nested scene (.seq.mrb), names included
_NAMED_ITEMS_STORAGE = "vtkMRMLSequenceStorageNode"


def _note_item_names(scene) -> dict:
    """Record on each sequence node of ``scene`` whose storage keeps no item names (:data:`_NAMED_ITEMS_STORAGE`
    keeps them) the names of its items, :data:`SEQUENCE_ITEM_NAMES_ATTRIBUTE`.  Returns {node: previous attribute
    value} for :func:`save_scene` to restore (the record is in the saved scene only).  QA segoutputs66: the runs'
    uncertainty maps kept as a sequence came back from load_scene as "uncertainty over time_0000", "..._0001"."""
    import base64  # noqa: PLC0415
    import json  # noqa: PLC0415

    marked = {}
    sequences = scene.GetNodesByClass("vtkMRMLSequenceNode")
    for i in range(sequences.GetNumberOfItems()):
        sequence = sequences.GetItemAsObject(i)
        storage = sequence.GetStorageNode()
        if storage is None or storage.GetClassName() == _NAMED_ITEMS_STORAGE or not sequence.GetNumberOfDataNodes():
            continue
        names = [[sequence.GetNthIndexValue(k), sequence.GetNthDataNode(k).GetName() or ""]
                 for k in range(sequence.GetNumberOfDataNodes()) if sequence.GetNthDataNode(k) is not None]
        marked[sequence] = sequence.GetAttribute(SEQUENCE_ITEM_NAMES_ATTRIBUTE)
        sequence.SetAttribute(SEQUENCE_ITEM_NAMES_ATTRIBUTE, _ITEM_NAMES_PREFIX + base64.b64encode(
            json.dumps(names, ensure_ascii=True).encode("ascii")).decode("ascii"))
    return marked


def _restore_item_names(scene) -> None:
    """Give the items of each sequence node that :func:`save_scene` recorded (:func:`_note_item_names`) their names
    as saved, matched by index value, and take the record out; a record that cannot be read is taken out too, an
    item no longer there (an index value changed in 3D Slicer since) keeps the name it was read with."""
    import base64  # noqa: PLC0415
    import binascii  # noqa: PLC0415
    import json  # noqa: PLC0415

    sequences = scene.GetNodesByClass("vtkMRMLSequenceNode")
    for i in range(sequences.GetNumberOfItems()):
        sequence = sequences.GetItemAsObject(i)
        text = sequence.GetAttribute(SEQUENCE_ITEM_NAMES_ATTRIBUTE)
        if text is None:
            continue
        try:
            names = json.loads(base64.b64decode(text[len(_ITEM_NAMES_PREFIX):], validate=True).decode("ascii")) \
                if text.startswith(_ITEM_NAMES_PREFIX) else []
        except (binascii.Error, ValueError):
            names = []
        for entry in names if isinstance(names, list) else []:
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
                continue
            item = sequence.GetDataNodeAtValue(entry[0], True)
            if item is not None and item.GetName() != entry[1]:
                item.SetName(entry[1])
        sequence.RemoveAttribute(SEQUENCE_ITEM_NAMES_ATTRIBUTE)


def _rewrite_table_files(scene, mrb: Path) -> None:
    """Rewrite the table files (.tsv) in ``mrb`` so that Slicer reads back the table that was saved.

    vtkMRMLTableStorageNode writes a table with vtkDelimitedTextWriter and reads it with vtkDelimitedTextReader
    (string delimiter ``"``); the writer's cells do not all survive that round trip:

    - a double: the writer prints 6 significant digits (vtkVariant::ToString): a radiomics value of 3826764.0 came
      back as 3.82676e+06, while the CSV holds it exactly.  The reader (schema type ``double``) parses any
      precision, so each finite double cell is written as the shortest text that reads back as the same double
      (NaN / inf as the writer writes them: "nan", "inf", read back as such);
    - a text cell: written as is, the reader drops an empty one at the start of a line and a line that is all
      empty (the row's other cells move one column left: "Column must have 3 rows"), drops leading white space,
      takes a tab as the next column and a '"' as the start of quoted text (the numbers after it were lost).
      Every text cell is written quoted, which the reader reads back exactly (empty, blanks, tabs); the two
      things quoted text cannot hold are replaced (:data:`_TEXT_REPLACEMENTS`: '"' as two apostrophes, a line
      break as a space), noted on the node in the saved scene (:data:`REPLACED_TEXT_ATTRIBUTE`) and warned
      about (:func:`_note_replaced_text`) - this is what 3D Slicer shows; the text as it was is saved in the
      column's :data:`EXACT_TEXT_PROPERTY` (the schema file), which :func:`load_scene` puts back;
    - a column name: written as is (the writer's header line and its schema file, .schema.tsv, which the reader
      looks the column's type up in by name): an empty name was dropped (the next columns moved left: a number
      read back as 0.0, a text column lost), a tab split the name (load_scene failed), a '"' merged columns and
      leading white space was lost.  The header line and the schema file are written from the table's column
      names, quoted like text cells (read back exactly); '"' and line breaks replaced, an empty name named
      and each made unique (:func:`_saved_column_names`), noted, warned about and kept as above;
    - a (signed / unsigned) char cell: written as a raw byte (unreadable, not UTF-8), written as its integer.

    Each row's line is built from the table's values.  A table with a column of several components is left as
    written.  The tables inside a sequence (a table per time point, stored as a nested ``.seq.mrb`` bundle) are
    rewritten alike in that bundle (:func:`_nested_tables_rewritten`; QA mrb63: a note 'said "no"' came back as "no",
    a note of two lines as two rows, the numbers after it moved to other rows, silently)."""
    fixes = {}
    tables = scene.GetNodesByClass("vtkMRMLTableNode")
    for i in range(tables.GetNumberOfItems()):
        node = tables.GetItemAsObject(i)
        columns = _rewritable_columns(node)
        if columns is not None:
            fixes.update(_table_fixes(Path(node.GetStorageNode().GetFileName()).name, node, columns))
    nested = {}
    for sequence, items in _sequence_tables(scene):
        storage = sequence.GetStorageNode()
        if storage is not None and (storage.GetFileName() or "").lower().endswith(".seq.mrb"):
            nested[Path(storage.GetFileName()).name] = dict(items)
    if not fixes and not nested:
        return
    _rewrite_bundle(mrb, lambda name, data: (_nested_tables_rewritten(data, nested[name]) if name in nested
                                             else fixes.get(name, data) if name.endswith(".tsv") else data),
                    _schemas_beside(fixes))


def _table_fixes(file_name: str, node, columns) -> dict:
    """{file name: bytes} of a table's rewritten ``.tsv`` file (named ``file_name``) and ``.schema.tsv`` file."""
    tsv, schema = _table_files_rewritten(node, columns)
    return {file_name: tsv, _schema_file_name(file_name): schema}


def _schema_file_name(file_name: str) -> str:
    """The schema file of the table file ``file_name`` (vtkMRMLTableStorageNode: "T.tsv" -> "T.schema.tsv")."""
    return file_name[: -len(".tsv")] + ".schema.tsv"


def _schemas_beside(fixes: dict) -> dict:
    """{table file name: {its schema file name: bytes}} of the table files in ``fixes`` (:func:`_table_fixes`), for
    :func:`_rewrite_zip` to add where the bundle has no schema file: Slicer's writer writes none for a table of text
    columns only, and the text as it was (:data:`EXACT_TEXT_PROPERTY`) is kept there (QA mrbslicer63: a table of
    text only - names, notes - came back from load_scene with O''Brien for O"Brien)."""
    return {name: {_schema_file_name(name): fixes[_schema_file_name(name)]} for name in fixes
            if not name.endswith(".schema.tsv") and _schema_file_name(name) in fixes}


def _rewrite_zip(source, target, rewritten, beside: Optional[dict] = None) -> None:
    """Write the zip file ``source`` (a path or a file object) as ``target``: each entry's data as
    ``rewritten(entry's file name, data)``; ``beside``: {file name: {file name: bytes}}, files written next to an
    entry of that name where ``source`` has none of their name there."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        entries = set(zin.namelist())
        for info in zin.infolist():
            zout.writestr(info, rewritten(Path(info.filename).name, zin.read(info)))
            folder = info.filename.rsplit("/", 1)[0] + "/" if "/" in info.filename else ""
            for name, data in (beside or {}).get(Path(info.filename).name, {}).items():
                if folder + name not in entries:
                    zout.writestr(folder + name, data, compress_type=info.compress_type)


def _rewrite_bundle(bundle: Path, rewritten, beside: Optional[dict] = None) -> None:
    """Rewrite the zip file ``bundle`` in place (:func:`_rewrite_zip`)."""
    tmp = bundle.with_name(bundle.name + ".tmp")
    _rewrite_zip(bundle, tmp, rewritten, beside)
    tmp.replace(bundle)


def _nested_tables_rewritten(data: bytes, items: dict) -> bytes:
    """A sequence's nested ``.seq.mrb`` bundle (``data``) with its tables' files rewritten as
    :func:`_rewrite_table_files` rewrites a scene's.  ``items``: {index value: table node} of the sequence; each
    table's file is found through the nested scene file (the table node's ID, its storage node's file name)."""
    import io  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    by_id = {node.GetID(): node for node in items.values()}
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        scene_files = [name for name in bundle.namelist() if name.lower().endswith(".mrml")]
        if len(scene_files) != 1:
            return data
        root = ET.fromstring(bundle.read(scene_files[0]))
    storage_files = {element.get("id"): element.get("fileName") for element in root
                     if element.tag.endswith("Storage") and element.get("fileName")}
    fixes = {}
    for element in root:
        node = by_id.get(element.get("id")) if element.tag == "Table" else None
        refs = dict(ref.split(":", 1) for ref in (element.get("references") or "").split(";") if ":" in ref)
        file_name = storage_files.get(refs.get("storage", "").split(" ")[0]) if node is not None else None
        columns = _single_value_columns(node) if file_name else None
        if columns is not None and file_name.lower().endswith(".tsv"):
            fixes.update(_table_fixes(Path(urllib.parse.unquote(file_name)).name, node, columns))
    if not fixes:
        return data
    out = io.BytesIO()
    _rewrite_zip(io.BytesIO(data), out, fixes.get, _schemas_beside(fixes))
    return out.getvalue()


# the (signed / unsigned) char columns, which vtkDelimitedTextWriter writes as raw bytes
_CHAR_TYPES = (vtk.VTK_CHAR, vtk.VTK_SIGNED_CHAR, vtk.VTK_UNSIGNED_CHAR)


def _column_properties(node) -> list:
    """The column properties of a table node's schema (unit label, description ...) that its saved schema file
    holds besides the column name, type and component names."""
    schema = node.GetSchema()
    properties = [schema.GetColumnName(c) for c in range(schema.GetNumberOfColumns())] if schema else []
    return [p for p in properties if p not in ("columnName", "type", "componentNames", EXACT_TEXT_PROPERTY)]


def _table_files_rewritten(node, columns: list) -> tuple:
    """:func:`_rewrite_table_files` for one table node: (its .tsv file, its .schema.tsv file), as bytes.  The
    .tsv file: a header line of the saved column names (:func:`_saved_column_names`), then one line per row built
    from the columns' values.  The schema file: the node's column properties (unit, description ...) then type
    and component names (empty: one component), one line per column, as vtkMRMLTableStorageNode writes it."""
    import csv  # noqa: PLC0415
    import math  # noqa: PLC0415

    names = _saved_column_names(columns)

    def cell(arr, r):
        if arr.IsA("vtkStringArray"):
            return _saved_text(arr.GetValue(r))
        if arr.IsA("vtkDoubleArray") and math.isfinite(arr.GetValue(r)):
            return repr(float(arr.GetValue(r)))
        if arr.GetDataType() in _CHAR_TYPES:
            return str(int(arr.GetTuple1(r)))
        return arr.GetVariantValue(r).ToString()                  # as vtkDelimitedTextWriter writes it

    header = "\t".join(_saved_text(name) for name in names)
    # never a header that Slicer's reader (tab-delimited, '"' quoting) splits into other columns than the table's
    if next(csv.reader([header], delimiter="\t", quotechar='"', doublequote=False)) != names:
        raise InputError(f"could not save the column names of table {node.GetName()!r}: {names}",
                         "rename its columns with plain text")
    n_rows = node.GetTable().GetNumberOfRows()
    lines = [header] + ["\t".join(cell(arr, r) for arr in columns) for r in range(n_rows)]

    properties = _column_properties(node)
    exact = [_exact_text_of_column(node, arr, name, properties) for arr, name in zip(columns, names)]
    stored = [EXACT_TEXT_PROPERTY] if any(exact) else []
    schema_lines = ["\t".join(["columnName"] + properties + stored + ["type", "componentNames"])]
    for arr, name, text in zip(columns, names, exact):
        values = [node.GetColumnProperty(arr.GetName() or "", p) for p in properties] + ([text] if stored else [])
        values.append(slicer.vtkMRMLTableNode.GetValueTypeAsString(arr.GetDataType()))
        schema_lines.append("\t".join(_saved_text(v) for v in [name] + values + [""]))
    return (("\n".join(lines) + "\n").encode("utf-8"), ("\n".join(schema_lines) + "\n").encode("utf-8"))


def _exact_text_of_column(node, arr, saved_name: str, properties: list) -> str:
    """:data:`EXACT_TEXT_PROPERTY` of the column ``arr`` of a table node, saved as ``saved_name``
    (:func:`_saved_column_names`), '' when none of its text is replaced: as JSON, "cells" (all its text cells, when
    one is replaced), "name" ([its name, ``saved_name``] when these differ), "properties" ({property: value} of its
    column ``properties`` replaced); base64, never replaced itself."""
    import base64  # noqa: PLC0415
    import json  # noqa: PLC0415

    original = arr.GetName() or ""
    kept = {}
    if arr.IsA("vtkStringArray"):
        cells = [arr.GetValue(r) for r in range(arr.GetNumberOfValues())]
        if any(_text_to_replace(cell) for cell in cells):
            kept["cells"] = cells
    if saved_name != original:
        kept["name"] = [original, saved_name]
    replaced = {p: node.GetColumnProperty(original, p) for p in properties
                if _text_to_replace(node.GetColumnProperty(original, p))}
    if replaced:
        kept["properties"] = replaced
    if not kept:
        return ""
    text = json.dumps(kept, ensure_ascii=True).encode("ascii")
    return _EXACT_TEXT_PREFIX + base64.b64encode(text).decode("ascii")


def _stored_exact_text(text: str) -> Optional[dict]:
    """The text as it was of an :data:`EXACT_TEXT_PROPERTY` (:func:`_exact_text_of_column`), None when it holds
    none (or what it holds cannot be read)."""
    import base64  # noqa: PLC0415
    import binascii  # noqa: PLC0415
    import json  # noqa: PLC0415

    if not text.startswith(_EXACT_TEXT_PREFIX):
        return None
    try:
        kept = json.loads(base64.b64decode(text[len(_EXACT_TEXT_PREFIX):], validate=True).decode("ascii"))
    except (binascii.Error, ValueError):
        return None
    texts = (lambda values: isinstance(values, list) and all(isinstance(v, str) for v in values))
    if not isinstance(kept, dict) or not texts(kept.get("cells", [])) \
            or not (texts(kept.get("name", ["", ""])) and len(kept.get("name", ["", ""])) == 2) \
            or not (isinstance(kept.get("properties", {}), dict) and texts(list(kept.get("properties", {}).values()))):
        return None
    return kept


def restore_saved_text(scene) -> None:
    """Put back the text that :func:`save_scene` saved replaced (:data:`_TEXT_REPLACEMENTS`) in the scene's tables
    and the tables inside its sequences, from their :data:`EXACT_TEXT_PROPERTY` (:func:`_restore_table_text`; a
    table without it is left alone, so calling it again changes nothing).  :func:`load_scene` calls it; 3D Slicer
    opening a scene does not, on purpose: Slicer's own File > Save would then write text its reader cannot read
    (docs/slicer.md).  A table is not marked modified by it, nor refreshed by :func:`keep_exact_values_current` half
    put back."""
    tables = scene.GetNodesByClass("vtkMRMLTableNode")
    nodes = [tables.GetItemAsObject(i) for i in range(tables.GetNumberOfItems())]
    nodes += [node for _sequence, items in _sequence_tables(scene) for _value, node in items]
    for node in nodes:
        _REFRESHING.add(_table_key(node))
        try:
            _restore_table_text(node)
        finally:
            _REFRESHING.discard(_table_key(node))


def _restore_cells(arr, cells: list) -> bool:
    """Put back the text cells ``cells`` as they were saved into the column ``arr`` read back (their text replaced:
    :func:`saved_table_text`): a cell that is its row's cell as saved takes it (the column has as many rows as were
    saved); another one (rows deleted, added or moved in 3D Slicer since) takes the one saved cell shown as it is; a
    cell edited since is left as it is.  False when a cell shown as several saved cells was left as shown."""
    if not arr.IsA("vtkStringArray"):
        return False
    shown: dict = {}
    for original in cells:
        shown.setdefault(saved_table_text(original), set()).add(original)
    n, complete = arr.GetNumberOfValues(), True
    for r in range(n):
        now = arr.GetValue(r)
        if n == len(cells) and now == saved_table_text(cells[r]):
            original = cells[r]
        else:
            candidates = shown.get(now, set())
            complete = complete and len(candidates) < 2
            original = next(iter(candidates)) if len(candidates) == 1 else now
        if original != now:
            arr.SetValue(r, original)
    return complete


def _restore_table_text(node) -> None:
    """Put back a table node's text as it was saved (:data:`EXACT_TEXT_PROPERTY`): its text cells
    (:func:`_restore_cells`), a column property where it is still that text as saved (replaced), a column name where
    the column still has the name it was saved under - text changed since, in 3D Slicer, is left as it is.  The
    property is taken out; :data:`REPLACED_TEXT_ATTRIBUTE` too, unless some text could not be told apart."""
    table, schema = node.GetTable(), node.GetSchema()
    if table is None or schema is None or schema.GetColumnByName(EXACT_TEXT_PROPERTY) is None:
        return
    complete, renames = True, []
    for c in range(table.GetNumberOfColumns()):
        arr = table.GetColumn(c)
        name = arr.GetName() if arr is not None else None
        text = node.GetColumnProperty(name, EXACT_TEXT_PROPERTY) if name is not None else ""
        if not text:
            continue
        kept = _stored_exact_text(text)
        if kept is None:
            complete = False
            continue
        cells = kept.get("cells")
        if cells is not None:
            complete = _restore_cells(arr, cells) and complete
        for p, original in (kept.get("properties") or {}).items():
            if node.GetColumnProperty(name, p) == saved_table_text(original):
                node.SetColumnProperty(name, p, original)
        original_name, saved_name = kept.get("name") or (name, name)
        if name == saved_name:
            renames.append((arr, name, original_name))
    node.RemoveColumnProperty(EXACT_TEXT_PROPERTY)
    names = schema.GetColumnByName("columnName")
    for arr, name, original in renames:     # the column and its schema row (vtkMRMLTableNode.RenameColumn: no '')
        row = next((r for r in range(names.GetNumberOfValues()) if names.GetValue(r) == name), None) \
            if names is not None else None
        if row is not None:
            names.SetValue(row, original)
        arr.SetName(original)
    if complete:
        node.RemoveAttribute(REPLACED_TEXT_ATTRIBUTE)


# the nodes whose data a scene file (.mrml) does not hold, only their storage node's file: one of these that no
# storage node can be made for (its class not registered in the scene) is saved empty - said (save_scene)
_DATA_IN_FILES = ("vtkMRMLMarkupsNode", "vtkMRMLVolumeNode", "vtkMRMLModelNode", "vtkMRMLSegmentationNode",
                  "vtkMRMLTableNode", "vtkMRMLTransformNode")


def _data_left_out(node) -> bool:
    """Whether ``node`` (a storable node with no storage node) has data that only a storage node's file keeps."""
    if node.IsA("vtkMRMLSequenceNode"):
        return node.GetNumberOfDataNodes() > 0
    return any(node.IsA(kind) for kind in _DATA_IN_FILES)


@contextlib.contextmanager
def _segment_types_known():
    """Within: the segmentation converter factory can make an empty binary labelmap and closed surface - what Slicer
    asks it for a segmentation with no segment (its writer: what file type?) and for a segment added empty.

    In the application the Segmentations module logic has registered its converter rules there; in a headless
    process (``new_scene``, ``slicer.vtkMRMLScene()``) nothing has (QA emptyseg62).  The binary labelmap to closed
    surface rule is then registered within and taken out after: the process's factory is left as it was."""
    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    rule = None
    if factory.ConstructRepresentationObjectByRepresentation(labelmap) is None:
        rule = slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule()
        factory.RegisterConverterRule(rule)
    try:
        yield
    finally:
        if rule is not None:
            factory.UnregisterConverterRule(rule)


@contextlib.contextmanager
def _empty_segmentations_writable(scene):
    """Within: Slicer's segmentation writer saves each segmentation of ``scene`` with no segment as the application
    does - a ``.seg.nrrd`` with no segment, read back as an empty segmentation.

    In a headless scene the writer knew no file type for it (:func:`_segment_types_known`) and failed: the whole
    scene was refused, "check disk space and permissions" (QA emptyseg62).  An empty segmentation whose source is
    closed surfaces, which Slicer's writer refuses with no segment, is written with a binary labelmap source (its
    source is restored after): it reads back empty, as a binary labelmap segmentation."""
    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    empty = []
    nodes = scene.GetNodesByClass("vtkMRMLSegmentationNode")
    for i in range(nodes.GetNumberOfItems()):
        segmentation = nodes.GetItemAsObject(i).GetSegmentation()
        if segmentation is not None and segmentation.GetNumberOfSegments() == 0:
            empty.append((segmentation, segmentation.GetSourceRepresentationName()))
    with contextlib.ExitStack() as stack:
        if empty:
            stack.enter_context(_segment_types_known())
        try:
            for segmentation, source in empty:
                if source != labelmap:
                    segmentation.SetSourceRepresentationName(labelmap)
            yield
        finally:
            for segmentation, source in empty:
                if segmentation.GetSourceRepresentationName() != source:
                    segmentation.SetSourceRepresentationName(source)


def _write_error(what: str, storage=None) -> InputError:
    """The error for a part of the scene (``what``) that could not be written: what the writer (``storage``, a storage
    node) said, when it said something (QA emptyseg62: "check disk space and permissions" was the fix given for a
    writer refusing a node's data), else the disk space and permissions of the folder the scene is written in first
    (the system's temporary folder, not the folder of the ``.mrb``)."""
    messages = storage.GetUserMessages() if storage is not None else None
    said = "; ".join(dict.fromkeys(messages.GetNthMessageText(i).strip() for i in range(messages.GetNumberOfMessages())
                                   if messages.GetNthMessageText(i).strip())) if messages is not None else ""
    if said:
        return InputError(f"could not write {what}: {said}", "remove or fix this node in the scene, or save the scene "
                          "from the 3D Slicer application (File > Save Data)")
    return InputError(f"could not write {what}", f"check free disk space and permissions in "
                      f"{tempfile.gettempdir()} (the scene is written there first; set TMPDIR to use another folder)")


@contextlib.contextmanager
def _scene_files_kept(scene):
    """Within: :func:`save_scene` may point the scene and its storage nodes at the temporary folder it writes the
    bundle in; after: each is given back what it was - the scene's URL and root directory, each storage node's file
    name(s), no storage node where there was none - and each node modified since it was read or saved (an edited
    segment not saved yet) is still modified.

    Before (QA mrb63), the scene was left pointing at the deleted temporary folder: the CT read from the user's
    ct.nrrd said it was stored in /tmp/lungai_scene_.../CT_ScalarVolumeNode1.nrrd, and an edited segmentation said it
    was saved there (not modified) - Slicer's File > Save then writes only modified nodes, so the scene saved there
    referred to deleted files and the edit was lost."""
    url, root = scene.GetURL(), scene.GetRootDirectory()
    storables, kept_files = [], []
    nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        storables.append((node, node.GetStorageNodeID(), node.GetModifiedSinceRead()))
        for k in range(node.GetNumberOfStorageNodes()):
            storage = node.GetNthStorageNode(k)
            if storage is not None:
                kept_files.append((storage, storage.GetFileName(),
                                   [storage.GetNthFileName(f) for f in range(storage.GetNumberOfFileNames())]))
    try:
        yield
    finally:
        for storage, file_name, file_names in kept_files:
            storage.SetFileName(file_name)
            storage.ResetFileNameList()
            for name in file_names:
                storage.AddFileName(name)
        for node, storage_id, modified in storables:
            if storage_id is None and node.GetStorageNode() is not None:   # made by save_scene: taken out again
                added = node.GetStorageNode()
                node.SetAndObserveStorageNodeID(None)
                if added.GetScene() is scene:
                    scene.RemoveNode(added)
            if modified and not node.GetModifiedSinceRead():
                node.StorableModified()
        scene.SetRootDirectory(root or "")
        scene.SetURL(url or "")


def save_scene(scene, path: str | Path) -> Path:
    """Save every storable node and the scene as one ``.mrb`` bundle that opens in 3D Slicer.

    The scene is given the markups storage classes first (:func:`_register_markups_storage`: a scene made with
    ``slicer.vtkMRMLScene()`` saves its markups too).  A node whose data only a file keeps and for which no storage
    node can be made is saved without its data: an :class:`~lungai.errors.InputNote` names it (before, it was left
    out without a word - a plane read back with no point).  A segmentation with no segment is saved as the application
    saves it, and reads back empty (:func:`_empty_segmentations_writable`); a node that cannot be written is refused
    with what its writer said (:func:`_write_error`).  The scene is left as it was given (:func:`_scene_files_kept`):
    its URL, root directory and storage file names, and which nodes are modified since they were read."""
    path = Path(path)
    if path.suffix.lower() != ".mrb":
        raise InputError(f"cannot save a scene as {path.name}", "name it .mrb")
    if path.is_dir():                        # shutil.move would put the bundle inside it, under another name
        raise InputError(f"cannot save the scene as {path}: it is a folder", "give a file name ending .mrb that is "
                         "not a folder's name, e.g. " + str(path / "scene.mrb"))
    from lungai.io.outputs import file_error

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:                   # a file where the folder should be, no permission: said, no traceback
        raise file_error(exc, path.parent) from exc
    _register_markups_storage(scene)
    with tempfile.TemporaryDirectory(prefix="lungai_scene_") as tmp, _scene_files_kept(scene), \
            _empty_segmentations_writable(scene):
        data_dir = Path(tmp) / path.stem
        data_dir.mkdir()
        nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            if node.GetHideFromEditors() and not node.IsA("vtkMRMLSegmentationNode"):
                continue
            storage = node.GetStorageNode()
            if storage is None:
                node.AddDefaultStorageNode()
                storage = node.GetStorageNode()
            if storage is None:
                if _data_left_out(node):
                    warnings.warn(InputNote(
                        f"scene node {node.GetName()!r} ({node.GetClassName()}) is saved in {path.name} without its "
                        "data: no storage for it is registered in this scene (it reads back empty); save the scene "
                        "from the 3D Slicer application instead (File > Save Data)"), stacklevel=2)
                continue
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in node.GetName()) or node.GetID()
            if storage.GetUserMessages() is not None:
                storage.GetUserMessages().ClearMessages()
            ext = storage.GetDefaultWriteFileExtension()
            storage.SetFileName(str(data_dir / f"{safe}_{node.GetID().replace('vtkMRML', '')}.{ext}"))
            if not storage.WriteData(node):
                raise _write_error(f"scene node {node.GetName()!r} ({node.GetClassName()})", storage)
        scene.SetRootDirectory(str(data_dir))
        scene.SetURL(str(data_dir / f"{path.stem}.mrml"))
        marked = _note_replaced_text(scene)          # in the saved scene only: restored below
        marked.update({(node, SEQUENCE_ITEM_NAMES_ATTRIBUTE): value for node, value in _note_item_names(scene).items()})
        try:
            if not scene.Commit():
                raise _write_error(f"the scene file for {path}")
            tmp_mrb = Path(tmp) / path.name
            window = vtk.vtkOutputWindow.GetInstance()
            mode = window.GetDisplayMode()
            window.SetDisplayModeToNever()  # vtkArchive prints one "Info" line per file
            try:
                ok = scene.WriteToMRB(str(tmp_mrb))
            finally:
                window.SetDisplayMode(mode)
        finally:
            for key, value in marked.items():
                node, attribute = key if isinstance(key, tuple) else (key, REPLACED_TEXT_ATTRIBUTE)
                node.SetAttribute(attribute, value)   # None removes it
        if not ok:
            raise _write_error(str(path))
        _rewrite_table_files(scene, tmp_mrb)
        _replace_file(tmp_mrb, path)
    return path


def _replace_file(new: Path, path: Path) -> None:
    """Put the file ``new`` in the place of ``path``, all at once: it is copied beside ``path`` first (a hidden
    ``.<name>.*.part``, removed if the copy fails) and then renamed over it.  An error (no permission, disk full) is
    said (:func:`lungai.io.outputs.file_error`); a ``path`` that was there is then left as it was.

    Before (QA mrb63), the bundle was moved onto ``path`` (shutil.move): from a temporary folder on another file system
    (a tmpfs /tmp, TMPDIR elsewhere) that is a copy onto ``path`` itself, so a copy that failed (disk full) left the
    user's earlier .mrb cut short - lost - and the new one incomplete."""
    from lungai.io.outputs import file_error

    part = None
    try:
        fd, part = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        shutil.copyfile(new, part)
        shutil.copymode(new, part)
        os.replace(part, path)
        part = None
    except OSError as exc:               # a folder of that name, no permission, disk full
        raise file_error(exc, path) from exc
    finally:
        if part is not None:
            Path(part).unlink(missing_ok=True)


def load_scene(path: str | Path, extract_to: str | Path):
    """Read a ``.mrb`` into a new scene; its files are unpacked into ``extract_to``.  The scene read is the bundle's
    own ``.mrml`` file (the one nearest its top), never another one ``extract_to`` already holds (QA scene62: a
    folder that held another unpacked bundle gave that bundle's scene, silently).  The text of tables that
    :func:`save_scene` saved replaced ('"', line breaks: what 3D Slicer shows) is put back as it was
    (:func:`restore_saved_text`; QA mrbtext63: a patient O"Brien came back as O''Brien).  The scene can hold the
    nodes of the application's modules (:func:`_register_node_classes`: a sequence browser, the Segment Editor's
    node ...); a node of an extension's class is named in the error."""
    target = Path(extract_to)
    try:
        with zipfile.ZipFile(path) as bundle:
            bundle.extractall(target)
            names = [name for name in bundle.namelist() if name.lower().endswith(".mrml")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"could not read the scene {path}", "check that it is a complete .mrb file") from exc
    if not names:
        raise InputError(f"{path} holds no .mrml scene file", "check that it is a Slicer .mrb bundle")
    scene = _register_node_classes(_register_markups_storage(slicer.vtkMRMLScene()))
    # a sequence of transforms, markups, tables ... is stored as a nested .seq.mrb, which the scene unpacks into the
    # remote cache directory of its data IO manager: without one (a bare scene) the whole scene failed to load
    io_manager, cache = slicer.vtkDataIOManager(), slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(str(target / "_lungai_cache"))
    io_manager.SetCacheManager(cache)
    scene.SetDataIOManager(io_manager)
    scene.SetCacheManager(cache)
    mrml_file = target / min(names, key=lambda name: (name.strip("/").count("/"), name))
    scene.SetURL(str(mrml_file))
    if not scene.Connect():
        unknown = _unknown_node_tags(scene, mrml_file)
        if unknown:
            raise InputError(f"could not load the scene in {path}: it holds nodes of a kind that lungai cannot read "
                             f"outside 3D Slicer ({', '.join(unknown)} - an extension's)",
                             "open it in 3D Slicer with that extension, delete those nodes and save the scene again")
        raise InputError(f"could not load the scene in {path}", "open it in 3D Slicer to see what is wrong")
    _restore_saved_names(scene, mrml_file)
    _restore_item_names(scene)
    restore_saved_text(scene)
    return scene


def _restore_saved_names(scene, mrml_file: Path) -> None:
    """Give each node of ``scene`` read from ``mrml_file`` the name that file holds for it: a reader may rename the
    node it reads into (a sequence of transforms, stored as ``<name>_<ID>.seq.mha``, came back as
    "breathing_motion_SequenceNode1-breathing motion-Seq" instead of "breathing motion" - QA scenemisc62).  A node is
    matched by its ID and XML tag (the scene was read into an empty scene, which keeps the file's IDs)."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    try:
        root = ET.parse(mrml_file).getroot()
    except (ET.ParseError, OSError):
        return
    for element in root:
        node_id, name = element.get("id"), element.get("name")
        node = scene.GetNodeByID(node_id) if node_id and name is not None else None
        if node is not None and node.GetNodeTagName() == element.tag and node.GetName() != name:
            node.SetName(name)
