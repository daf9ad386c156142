"""The one path between Slicer's MRML nodes and the lungai core.

Used by the console API (:mod:`lungai.scene.segment`, :mod:`lungai.scene.lungs`,
:mod:`lungai.scene.radiomics`, ...: the core runs in Slicer's process) **and** by the panels'
background jobs (LungAISeg / LungRadiomics / MultimodalPredict: inputs are exported to files, a
``lungai`` child process runs, its outputs are imported here).  So both give the same nodes: the
same names (one spelling, "tumour"), segments, colour map and tables.

*Inputs* are read in world coordinates: a volume under a (linear) parent transform is exported
where Slicer shows it, which is where seed points and ROI boxes are read
(:func:`lungai.mrml.image_from_volume_node`).  *Outputs* are new nodes in world coordinates (no
parent transform); a segment added to an existing segmentation under a transform is mapped into
that segmentation's frame by Slicer.

Temporary files of patient data live in a work folder made by :func:`new_work_folder` and are
removed by :func:`remove_work_folder` once the outputs are imported (or the job failed / was
cancelled).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from lungai.errors import InputError

# numpy, SimpleITK and lungai.mrml (slicer, vtk) are imported inside the functions: the Slicer module
# files import this module at start-up, which must stay light (a test checks it).

TUMOUR_SEGMENT = "Tumor"                  # segment name (Slicer's terminology entry "Neoplasm"); see lungai.terminology
LUNG_SEGMENTS = {1: "Right lung", 2: "Left lung"}   # `lungai lungs` label values
# segment tag: the lungai command that made the segment ("lungai segment", "lungai lungs"); saved with the scene.
# A DICOM export labels only such segments AUTOMATIC (SlicerLungAI) - SEMIAUTOMATIC when edited since
# (:func:`segment_edited`) -, the user's MANUAL (lungai.scene.dicom)
MADE_BY_TAG = "LungAI.madeBy"


def mark_made_by(seg_node, segment_id: str, command: str) -> None:
    """Tag a segment lungai made (:data:`MADE_BY_TAG`) and the outline it made (:data:`OUTLINE_TAG`), so that an
    edit in the Segment Editor is told later (:func:`segment_edited`): tumour and lungs alike."""
    seg_node.GetSegmentation().GetSegment(segment_id).SetTag(MADE_BY_TAG, command)
    _tag_outline(seg_node, segment_id)


# The same name as a node attribute: the lungai command that made a whole node (Grad-CAM volume, stage predictions
# table).  A panel removes only nodes so tagged; a node of the user's picked in an output selector (which lists
# every node of the class, the CT included) is only dropped from the selector, never deleted.
def mark_node_made_by(node, command: str):
    """Tag a node lungai made (attribute :data:`MADE_BY_TAG`); returns it."""
    node.SetAttribute(MADE_BY_TAG, command)
    return node


def node_made_by(node) -> str:
    """The lungai command that made ``node`` ("" for the user's nodes and None)."""
    return (node.GetAttribute(MADE_BY_TAG) or "") if node is not None else ""

# The one colour map for probability-like overlays (uncertainty, Grad-CAM): present in every Slicer
# and in slicer-core's default colour nodes.
HEAT_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"
DOSE_COLOR_NODE_ID = "vtkMRMLColorTableNodeRainbow"
# the confidence table's columns (result.json keys; review_reasons "; "-joined, model as results.model_text names it)
CONFIDENCE_FIELDS = ["confidence", "needs_review", "review_reasons", "review_threshold", "tumor_volume_ml",
                     "n_components", "method", "members", "mc_passes", "roi_mode", "architecture", "calibrated",
                     "model"]


def tumour_node_name(base: str, what: str = "") -> str:
    """Node names of the tumour outputs: "<CT> tumour", "<CT> tumour uncertainty", ..."""
    return f"{base} tumour" + (f" {what}" if what else "")


# ---------------------------------------------------------------- work folders (temporary patient data)
def new_work_folder(prefix: str, parent: Optional[str] = None) -> Path:
    """A new private folder for exported inputs and command outputs (remove it with :func:`remove_work_folder`)."""
    return Path(tempfile.mkdtemp(prefix=f"lungai-{prefix}-", dir=parent))


def remove_work_folder(folder) -> None:
    """Delete a work folder and everything in it (exported patient images, outputs already imported)."""
    if folder is not None and Path(folder).name.startswith("lungai-"):
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- inputs
def defined_points(point_node) -> list:
    """Indices of the control points of ``point_node`` that are placed (status PositionDefined: not an unplaced
    point still being placed, nor one marked missing, whose stored position is stale)."""
    if point_node is None:
        return []
    return [i for i in range(point_node.GetNumberOfControlPoints())
            if point_node.GetNthControlPointPositionStatus(i) == point_node.PositionDefined]


def point_to_lps(point_node, index: Optional[int] = None) -> list:
    """Control point ``index`` (default: the first placed one, :func:`defined_points`) of a markups node in
    LPS mm, world coordinates (the core's convention).  No placed point raises InputError."""
    placed = defined_points(point_node)
    if index is None:
        index = placed[0] if placed else None
    if index not in placed:
        raise InputError(f"{point_node.GetName() if point_node else 'the point list'} has no placed point",
                         "place one point on the tumour")
    ras = [0.0, 0.0, 0.0]
    point_node.GetNthControlPointPositionWorld(index, ras)
    return [-ras[0], -ras[1], ras[2]]


def seed_note(point_node) -> Optional[str]:
    """A note when the point list has several placed points: ``lungai segment`` takes one seed, the first placed
    point (:func:`point_to_lps`); else None."""
    placed = defined_points(point_node)
    if len(placed) < 2:
        return None
    labels = [point_node.GetNthControlPointLabel(i) for i in placed]
    return (f"{point_node.GetName()} has {len(placed)} placed points: only the first, '{labels[0]}', is used as "
            f"the seed (not {', '.join(repr(label) for label in labels[1:])}); delete the others to avoid doubt")


def placed_roi_bounds(roi_node) -> Optional[list]:
    """The RAS bounds (x0, x1, y0, y1, z0, z1, world coordinates) of a placed markups ROI box, else None: the one
    rule of "placed" for the panel and the ROI conversion (:func:`check_roi_placed`).  Not placed: no defined
    control point (a new ROI node never placed: Slicer reports all-zero bounds at (0, 0, 0)), or no extent along
    an axis (zero size: a click not yet dragged into a box; inverted bounds).  The box's own size counts, not only
    its world bounds: a box flat along one of its own axes, rotated (itself or by its transform), still has world
    bounds of some thickness - a slab, never a box placed on the tumour."""
    if roi_node is None or roi_node.GetNumberOfDefinedControlPoints() < 1:
        return None
    if not all(value > 0 for value in roi_node.GetSize()):
        return None
    b = [0.0] * 6
    roi_node.GetRASBounds(b)
    if not (b[1] > b[0] and b[3] > b[2] and b[5] > b[4]):
        return None
    return b


def check_roi_placed(roi_node) -> list:
    """:func:`placed_roi_bounds` of a placed ROI box; InputError naming the ROI and what to do when it is not."""
    b = placed_roi_bounds(roi_node)
    if b is None:
        name = roi_node.GetName() if roi_node is not None else ""
        raise InputError(f"The ROI '{name}' is not placed (it has no box with a size yet)",
                         "place the ROI box on the tumour")
    return b


def roi_to_lps(roi_node) -> list:
    """Two opposite corners (x0, y0, z0, x1, y1, z1) in LPS mm of a markups ROI node (world coordinates): its
    axis-aligned bounding box, larger than the drawn box for a rotated ROI (:func:`roi_rotation_note`).  An ROI
    not placed (:func:`placed_roi_bounds`) raises InputError."""
    b = check_roi_placed(roi_node)
    return [-b[0], -b[2], b[4], -b[1], -b[3], b[5]]


def roi_rotation_note(roi_node) -> Optional[str]:
    """A warning when the ROI box is rotated in world coordinates (its own rotation or its transform's):
    ``lungai segment`` takes an axis-aligned box, so its axis-aligned bounding box is used, larger than the
    drawn box ("... 180.0 ml instead of 60.0 ml ..."); else None."""
    import numpy as np

    b = placed_roi_bounds(roi_node)
    if b is None:
        return None                     # not placed: check_roi_placed says so
    from lungai.io.markups import is_axis_aligned, rotation_note

    matrix = roi_node.GetObjectToWorldMatrix()
    axes = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    if is_axis_aligned(axes):
        return None                                      # axis-aligned (axes swapped or flipped at most)
    drawn = float(np.prod(roi_node.GetSize())) * abs(float(np.linalg.det(axes))) / 1000.0
    used = (b[1] - b[0]) * (b[3] - b[2]) * (b[5] - b[4]) / 1000.0
    return rotation_note(roi_node.GetName(), used, drawn, "reset the ROI's rotation to segment in the drawn box")


def _voxel_box(volume_node):
    """(IJK-to-world matrix, grid size) of a volume with image data (None without); the voxel box spans
    -0.5 .. size - 0.5 in IJK.  A non-linear parent transform raises InputError (as the export would)."""
    import numpy as np

    from lungai import mrml

    image = volume_node.GetImageData() if volume_node is not None else None
    if image is None:
        return None
    return mrml.ijk_to_world(volume_node), np.array(image.GetDimensions(), float)


def seed_outside_problem(volume_node, point_node, what: str = "seed point") -> Optional[str]:
    """None when the point used as the seed (the first placed one, as :func:`point_to_lps` takes it) lies in the
    volume (world coordinates, as Slicer shows them), else "The seed point 'F-1' (R 12.0, A -3.0, S 40.0) lies
    outside LUNG1-003: place it on the CT".  Further points are not used (:func:`seed_note` says so), so
    one of them outside the CT does not block the run."""
    import numpy as np

    box = _voxel_box(volume_node)
    if box is None or point_node is None:
        return None
    to_ijk, size = np.linalg.inv(box[0]), box[1]
    for i in defined_points(point_node)[:1]:
        ras = [0.0, 0.0, 0.0]
        point_node.GetNthControlPointPositionWorld(i, ras)
        ijk = (to_ijk @ [*ras, 1.0])[:3]
        if (ijk < -0.5 - 1e-6).any() or (ijk > size - 0.5 + 1e-6).any():
            return (f"The {what} '{point_node.GetNthControlPointLabel(i)}' (R {ras[0]:.1f}, A {ras[1]:.1f}, "
                    f"S {ras[2]:.1f}) lies outside {volume_node.GetName()}: place it on the CT")
    return None


def roi_outside_problem(volume_node, roi_node) -> Optional[str]:
    """None when the ROI box overlaps the volume's box (world coordinates, axis-aligned), else what to do."""
    import itertools

    import numpy as np

    box = _voxel_box(volume_node)
    if box is None or roi_node is None:
        return None
    b = placed_roi_bounds(roi_node)
    if b is None:
        return None                     # not placed: check_roi_placed says so
    m, size = box
    corners = np.array([(m @ [*ijk, 1.0])[:3] for ijk in itertools.product(*[(-0.5, n - 0.5) for n in size])])
    low, high = corners.min(axis=0), corners.max(axis=0)
    if any(b[2 * k + 1] < low[k] or b[2 * k] > high[k] for k in range(3)):
        return f"The ROI '{roi_node.GetName()}' does not overlap {volume_node.GetName()}: place it on the CT"
    return None


# the files a panel hands to a ``lungai`` child process (CT, masks, dose): NRRD keeps the node's spacing and origin in
# double precision (NIfTI stores float32: a DICOM / NRRD CT's 0.9765625000000001 mm spacing differed by ~1e-7 from the
# command line's reading of the same file, and so did the features)
EXPORT_SUFFIX = ".nrrd"


def export_volume(volume_node, path: Path) -> Path:
    """Write a scalar volume node (world geometry: parent transform applied) to ``path``, a panel job's work file
    for a ``lungai`` child process: not compressed where the format allows (``.nrrd``; a ``.nii.gz`` is gzipped by
    its name).  QA slicer67: LUNG1-003's CT (512 x 512 x 107) took 1.8-3.5 s to gzip on the GUI thread before Lung
    Radiomics' job started, and each of its child processes (one per segment) 1.2 s to read it back; uncompressed
    0.2 s and 0.1 s, the same voxels and geometry.  The work folder is deleted when the job ends."""
    return volume_writer(volume_node, path)()


def volume_writer(volume_node, path: Path):
    """:func:`export_volume` in two parts: the node's voxels and geometry read now (MRML: the GUI thread), and the
    function returned, which writes them to ``path`` and returns it - files only, for a background thread (QA
    slicerfollow71: exporting LUNG1-003's CT held the GUI thread 0.6-1.1 s in one step of Lung Radiomics' / Predict
    stage's job, most of it making and writing the image)."""
    from lungai import mrml

    snapshot = mrml.volume_node_snapshot(volume_node)

    def write() -> Path:
        from lungai.io import write_image

        return write_image(mrml.image_from_snapshot(snapshot), path, compress=False)

    return write


def export_segment(scene, seg_node, segment: str, reference_volume_node, path: Path) -> Path:
    """Write one segment (id or name) as a binary mask on the reference volume's grid (world geometry)."""
    from lungai import mrml
    from lungai.io import write_image

    return write_image(mrml.segment_to_mask(scene, seg_node, segment, reference_volume_node), path)


def terminology_roles(seg_node) -> dict:
    """{segment name: structure role} of the segments of ``seg_node`` whose NAME has no role but whose Slicer
    terminology ("TerminologyEntry" tag) gives one (:func:`lungai.terminology.terminology_role`, the one code table
    ``lungai radiomics`` also reads a DICOM SEG segment's codes with: :func:`lungai.dicom.seg.with_code_roles`):
    Neoplasm -> "gtv", Neoplasm, Primary -> "gtv_primary" (a GTV the user renamed, "Tumör primär 1": lungai's tag, or
    the Segment Editor's, stays with the segment), Lung with laterality Right / Left -> "lung_right" / "lung_left",
    Right and left (or none) -> "lungs" ("Segment_1" coded as the right lung; SRT codes of older Slicer scenes read
    alike).  A name with a role keeps it ("Right lung" tagged Neoplasm is a lung).  A lung role is given by the code
    only to a segment that alone has it (no other segment of that role by its name or its code: which of two right
    lungs to use is not guessed); a name lungai reads as a lung minus a target ("Lung_R-GTV", renamed from a "Right
    lung" whose tag it kept) gets none from its code.  Given as the ``mapping`` of :mod:`lungai.segment_roles`' functions (a
    ``--structure-map``'s form); {} for no node."""
    import vtk
    from lungai.dicom.roles import lung_minus_target, structure_role
    from lungai.terminology import terminology_role

    if seg_node is None:
        return {}
    segmentation = seg_node.GetSegmentation()
    named, coded = set(), {}
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        name = segment.GetName()
        role = structure_role(name)
        if role is not None or name in coded:     # the name's role (an iGTV, the heart ...) wins
            named.add(role)
            continue
        if lung_minus_target(name) is not None:   # "Lung_R-GTV" says what it is (lungai.dicom.roles.lung_minus_note):
            continue                              # the tag kept from the "Right lung" it was renamed from is no role
        entry = vtk.reference("")
        role = terminology_role(str(entry)) if segment.GetTag("TerminologyEntry", entry) else None
        if role is not None:
            coded[name] = role
    lungs = ("lung_right", "lung_left", "lungs")
    return {name: role for name, role in coded.items()
            if role not in lungs or (role not in named and list(coded.values()).count(role) == 1)}


def tumour_segment_name(seg_node) -> Optional[str]:
    """The segment used as the tumour (Tumor / Tumour / GTV, GTV-1 ...: lungai.segment_roles; or by its tumour
    terminology: :func:`terminology_roles`), else None: with several tumour segments the primary one
    (:func:`lungai.segment_roles.primary_tumour`: GTV-1 of an RTSTRUCT's GTV-1, gtv-2, gtv-3, whatever their order),
    never simply the first."""
    from lungai import mrml
    from lungai.segment_roles import primary_tumour

    return primary_tumour(mrml.segment_names(seg_node), terminology_roles(seg_node))


def tumour_segment_choice(seg_node) -> str:
    """Which segment :func:`tumour_segment_name` uses, for the panels' result text
    ("tumour: GTV-1 (primary of 3 GTVs: GTV-1, gtv-2, gtv-3)"); with several tumour segments, how to use another
    one; and a warning when the segment used is flagged for expert review (:func:`review_note`)."""
    from lungai import mrml
    from lungai.segment_roles import describe_tumour_choice, tumour_segments

    names = mrml.segment_names(seg_node)
    coded = terminology_roles(seg_node)
    lines = [describe_tumour_choice(names, coded)]
    tumours = tumour_segments(names, coded)
    # a later run's "Tumor (2)" is no tumour name (lungai.segment_roles): said too, lungai made it as a tumour
    made = [seg_node.GetSegmentation().GetSegment(i).GetName() for i in lungai_tumour_ids(seg_node)]
    others = tumours[1:] + [name for name in made if name not in tumours]
    if tumours and others:
        lines.append(f"the other tumour segment{'s' if len(others) > 1 else ''} "
                     f"{', '.join(repr(name) for name in others)} {'are' if len(others) > 1 else 'is'} not used (to "
                     f"use one of them instead, rename '{tumours[0]}' and name that one '{TUMOUR_SEGMENT}')")
    note = review_note(seg_node, tumours[0]) if tumours else None
    if note:
        lines.append("warning: " + note)
    return "\n".join(lines)


TUMOUR_NAMES = "'Tumor', 'Tumour', 'GTV', 'GTV-1', 'GTVp', 'GTV_node' ..."   # lungai.segment_roles' tumour names


def tumour_segment_problem(seg_node) -> Optional[str]:
    """Why the segmentation gives no tumour for a model (no segment named as a tumour, only nodal GTVs -
    :func:`lungai.segment_roles.nodal_tumour_problem` - or that segment is empty), else None.  The tumour is
    :func:`tumour_segment_name`'s segment."""
    from lungai import mrml

    from lungai.segment_roles import nodal_tumour_problem

    name = tumour_segment_name(seg_node)
    if name is None:
        return (f"The segmentation {seg_node.GetName()!r} has no tumour segment (segments: "
                f"{', '.join(mrml.segment_names(seg_node)) or 'none'}); name it {TUMOUR_NAMES}")
    nodal = nodal_tumour_problem(mrml.segment_names(seg_node), terminology_roles(seg_node))   # GTVn alone: no primary
    if nodal is not None:
        return f"In the segmentation {seg_node.GetName()!r}, {nodal}"
    repeated = mrml.repeated_names_error(seg_node, [name])   # two "GTV": which one is the tumour is not known
    if repeated is not None:
        return str(repeated)
    if mrml.segment_is_empty(seg_node, name):
        return f"The tumour segment {name!r} is empty; draw the tumour (or run Lung AI Segmentation)"
    return None


def union_mask(masks) -> sitk.Image:
    """The union of binary masks on one grid: a uint8 0 / 1 mask with the first one's geometry.  In numpy (one pass
    per mask; QA slicer67: SimpleITK's ``> 0`` / Or / Cast on LUNG1-003's 28 M voxel grid took 1.1 s of Lung
    Radiomics' start on the GUI thread)."""
    masks = list(masks)
    return _mask_like(_union_array(masks), masks[0])


def _union_array(masks):
    """:func:`union_mask`'s voxels as a boolean array (k, j, i): the first mask's ``> 0``, each other one OR-ed into it
    in place - one pass a mask and no temporary array (QA slicerfollow68: ``union |= mask > 0`` made a volume-sized
    temporary a mask, 0.12-0.33 s a union of LUNG1-003's lungs on the GUI thread)."""
    import numpy as np
    import SimpleITK as sitk

    images = list(masks)        # kept alive while their views are read
    union = np.greater(sitk.GetArrayViewFromImage(images[0]), 0)
    for image in images[1:]:
        np.logical_or(union, sitk.GetArrayViewFromImage(image), out=union)
    return union


def _mask_like(array, reference) -> sitk.Image:
    """A boolean ``array`` as a uint8 0 / 1 mask with ``reference``'s geometry (what SimpleITK's binary filters give
    on ``reference``'s grid)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array.view("uint8"))
    image.CopyInformation(reference)
    return image


def tumour_masks(scene, seg_node, volume_node, masks=None) -> list:
    """[(name, mask)] of EVERY segment of ``seg_node`` whose role is tumour (GTV-1, gtv-2, GTVn ...: lungai.segment_roles,
    exact names; chosen or not), on ``volume_node``'s grid, in the segmentation's order: what leaves the lungs for the
    dose features' lung mask and the derived "Lungs minus tumour" (the panel, :mod:`lungai.scene.radiomics`), as the
    CLI's ``--rtstruct`` subtracts the union of all GTVs.  ``masks``: {name: mask} already made on that grid, reused.
    Read by segment ID: two tumour segments of one name are both subtracted."""
    from lungai import mrml

    masks = masks or {}
    names = mrml.segment_names(seg_node)
    out = []
    for segment_id, name in tumour_segment_ids(seg_node):
        if name in masks and names.count(name) == 1:
            out.append((name, masks[name]))
        else:       # by ID: a name two segments share ("GTV", "GTV" of one RTSTRUCT) resolves to neither
            out.append((name, mrml.segment_to_mask(scene, seg_node, segment_id, volume_node, by_id=True)))
    return out


def tumour_segment_ids(seg_node) -> list[tuple[str, str]]:
    """[(segment ID, name)] of every segment of ``seg_node`` whose role is tumour (:func:`tumour_masks`' segments),
    by its name or, where the name has no role, by its tumour terminology (:func:`terminology_roles`: a GTV renamed
    "Tumör primär 1" still leaves the lungs), in the segmentation's order; [] for no node."""
    from lungai.segment_roles import segment_role

    if seg_node is None:
        return []
    segmentation = seg_node.GetSegmentation()
    coded = terminology_roles(seg_node)
    return [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i).GetName())
            for i in range(segmentation.GetNumberOfSegments())
            if segment_role(segmentation.GetNthSegment(i).GetName(), coded) == "tumour"]


LUNGS_MINUS_TUMOUR = "Lungs minus tumour"   # the derived column (:func:`derived_lung_masks`)


def lungs_minus_tumour_note(seg_node, columns) -> Optional[str]:
    """When ``columns`` (the measured names) hold the derived "Lungs minus tumour": a note naming what it is, the
    lungs minus every tumour segment of ``seg_node`` (ticked or not: :func:`tumour_masks`), in the words of the
    CLI's ``structures`` column (``Lung-Right+Lung-Left minus GTV-1+gtv-2``,
    :func:`lungai.dicom.masks.structure_names`); else None."""
    from lungai.dicom.masks import structure_names
    from lungai.segment_roles import find_role

    columns = list(columns)
    if seg_node is None or LUNGS_MINUS_TUMOUR not in columns:
        return None
    coded = terminology_roles(seg_node)      # a lung by its terminology, as derived_lung_masks takes it
    right, left = find_role(columns, "right_lung", coded), find_role(columns, "left_lung", coded)
    # as derived_lung_masks
    lungs = [right, left] if right and left else [n for n in [find_role(columns, "lungs", coded)] if n]
    tumours = [name for _, name in tumour_segment_ids(seg_node)]
    return (f"'{LUNGS_MINUS_TUMOUR}' = {structure_names(lungs) or 'the lungs'} minus "
            f"{structure_names(tumours)} (every tumour segment of {seg_node.GetName()}, ticked or not)")


def derived_lung_masks(masks: dict, tumours=None, errors: Optional[dict] = None, grid: str = "",
                       notes: Optional[list] = None, mapping=None) -> dict:
    """Extra masks "Lungs" (right | left) and "Lungs minus tumour" from named masks (same grid).

    "Lungs" is made only when both a right-lung and a left-lung segment are present; "Lungs minus tumour" (which also
    needs a tumour segment) from those two, else from one segment of both lungs (role lungs: "Lungs", "Lung_Total",
    as many planning exports have), as ``lungai radiomics`` computes its ``lungs_minus_tumour`` from a one-label
    lung map (QA panellungs65: a ticked "Lungs" alone gave no such column).  Names are matched by exact role
    (lungai.segment_roles), never by substring.  Every
    tumour segment (GTV-1, gtv-2 ...) leaves the lungs, as in ``lungai dose-features`` and the CLI's
    ``lungs_minus_gtv``: ``tumours`` = a callable giving the tumour masks of the whole segmentation
    (:func:`tumour_masks`: chosen or not, called only when both lungs are there), or None for the tumour-role
    masks among ``masks``.

    A mask of the user's with that role already among ``masks`` (a planning system's "Lungs" / "Lung_Total",
    "Lungs-GTV" ...) is that column: nothing is derived for it.  QA (slicer55): a ticked "Lungs" segment (LUNG1-003,
    drawn with the GTV) was replaced by Right | Left lung under its own name, its features silently those of
    another region.

    Every tumour segment empty (on this grid: ``grid``, the CT's name): "Lungs minus tumour" would be the lungs
    themselves; it is not made and ``errors`` (when given) says why, as ``lungai radiomics`` fails its
    ``lungs_minus_tumour`` (:func:`lungai.radiomics.segments.empty_tumour_lungs_error`; QA panelempty65: an empty "GTV"
    gave the lungs' values in that column, without a word).

    The tumour segments holding voxels but none in the lungs (a nodal / mediastinal GTV; lung contours drawn to
    exclude the GTV, as LUNG1-003's): "Lungs minus tumour" is made (it equals the lungs) and ``notes`` (when given)
    gets why, as ``lungai radiomics`` says it (:func:`lungai.radiomics.segments.tumour_outside_lungs_note`; QA
    outsidelungs65: no word).

    ``mapping``: roles of names whose name gives none (the segments' terminology, :func:`terminology_roles`: a
    "Segment_1" coded as the right lung is the right lung).
    """
    import numpy as np
    from lungai.radiomics.segments import empty_tumour_lungs_error, tumour_outside_lungs_note
    from lungai.segment_roles import find_role, segment_role

    right, left = find_role(masks, "right_lung", mapping), find_role(masks, "left_lung", mapping)
    own = find_role(masks, "lungs", mapping)
    out = {}
    # the voxels in numpy, each union and difference one pass with no volume-sized temporary (QA slicerfollow68: these
    # were 0.5-1 s of Lung Radiomics' start on LUNG1-003's 28 M voxel grid, on the GUI thread); the same masks
    if right is not None and left is not None:
        reference = masks[right]
        inside = _union_array([masks[right], masks[left]])
        if own is None:
            out["Lungs"] = _mask_like(inside, reference)
    elif own is not None:       # one segment of both lungs (a planning export's "Lungs"): the lungs are that segment
        reference = masks[own]
        inside = _union_array([masks[own]])
    else:
        return {}
    if find_role(masks, "lungs_minus_tumour", mapping) is None:
        tumours = ([(n, masks[n]) for n in masks if segment_role(n, mapping) == "tumour"] if tumours is None
                   else tumours())
        gtv = _union_array([mask for _, mask in tumours]) if tumours else None
        if gtv is not None and not gtv.any():     # nothing left out of the lungs
            names = list(dict.fromkeys(name for name, _ in tumours))
            listed = ", ".join(repr(n) for n in names)
            empty = (f"the tumour segment{'s' if len(names) > 1 else ''} {listed} "
                     f"{'are' if len(names) > 1 else 'is'} empty (0 voxels)" + (f" on the grid of the CT {grid!r}"
                                                                               if grid else ""))
            if errors is not None:
                errors[LUNGS_MINUS_TUMOUR] = empty_tumour_lungs_error(
                    empty, LUNGS_MINUS_TUMOUR, find_role(masks, "lungs", mapping) or "Lungs",
                    "draw the tumour in its segment on this CT")
        elif gtv is not None:
            before = np.count_nonzero(inside)
            np.greater(inside, gtv, out=inside)     # inside and not gtv (booleans), in place: "Lungs" is copied
            out[LUNGS_MINUS_TUMOUR] = _mask_like(inside, reference)
            # nothing left out (no voxel of the tumour in the lungs): said
            if notes is not None and np.count_nonzero(inside) == before:
                names = list(dict.fromkeys(name for name, _ in tumours))
                listed = ", ".join(repr(n) for n in names)
                notes.append(tumour_outside_lungs_note(
                    f"the tumour segment{'s' if len(names) > 1 else ''} {listed}", LUNGS_MINUS_TUMOUR,
                    [right, left] if right is not None and left is not None else [own], len(names) > 1))
    return out


# ---------------------------------------------------------------- outputs
def show_as_heat_map(volume_node, color_node_id: str = HEAT_COLOR_NODE_ID, value_range=None) -> None:
    """The one heat colour map, values near zero left out (thresholded): over ``value_range`` (low, high) - a
    quantity's fixed range (the uncertainty maps: :data:`lungai.seg.uncertainty.MAP_RANGES`, so two cases compare) -,
    else (Grad-CAM, dose) over the node's own full range."""
    display = volume_node.GetDisplayNode()
    if display is None:
        volume_node.CreateDefaultDisplayNodes()
        display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_node_id)
    if value_range is not None:
        low, high = (float(v) for v in value_range)
    else:
        import numpy as np
        from slicer.util import arrayFromVolume

        values = np.asarray(arrayFromVolume(volume_node))
        low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1e-6
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(low + 0.02 * (high - low))
    display.SetUpperThreshold(high)


# the title of the uncertainty volume's colour legend (LungAISeg.showResults)
UNCERTAINTY_LEGEND = "Tumour uncertainty (entropy, bits)"
EVALUATED_BOX_ATTRIBUTE = "LungAI.evaluatedBoxLPS"


def set_evaluated_box(volume_node, info: dict) -> None:
    """An uncertainty map says where it was evaluated: the box of ``info["roi_lps_mm"]`` (LPS mm, JSON) as the
    attribute :data:`EVALUATED_BOX_ATTRIBUTE`, and in its description that it is 0 outside it - not evaluated there,
    not certain (:data:`lungai.seg.uncertainty.OUTSIDE_BOX_NOTE`)."""
    import json

    from lungai.seg.uncertainty import ENTROPY_MEANING, ENTROPY_UNIT, OUTSIDE_BOX_NOTE

    box = info.get("roi_lps_mm")
    volume_node.SetAttribute(EVALUATED_BOX_ATTRIBUTE, json.dumps(box) if box else None)
    where = (f" [{', '.join(f'{v:.1f}' for v in box[0])}] - [{', '.join(f'{v:.1f}' for v in box[1])}] mm LPS"
             if box else "")
    volume_node.SetDescription(f"{ENTROPY_MEANING}, {ENTROPY_UNIT}; {OUTSIDE_BOX_NOTE}{where}")


def set_uncertainty_units(volume_node) -> None:
    """The uncertainty volume says what its voxels hold: voxel value units bit (UCUM, as its DICOM Parametric Map)
    and the attributes ``LungAI.quantity`` (predictive entropy of the tumour probability) / ``LungAI.units``."""
    import slicer

    from lungai.dicom.pmap import UNITS
    from lungai.seg.uncertainty import ENTROPY_MEANING, ENTROPY_UNIT

    units = slicer.vtkCodedEntry()
    units.SetValueSchemeMeaning(*UNITS[ENTROPY_UNIT])
    if hasattr(volume_node, "SetVoxelValueUnits"):      # Slicer 5
        volume_node.SetVoxelValueUnits(units)
    volume_node.SetAttribute("LungAI.quantity", ENTROPY_MEANING)
    volume_node.SetAttribute("LungAI.units", ENTROPY_UNIT)


# Segment tags (saved with the scene in the .seg.nrrd): a lungai tumour segment's own result, one set per segment -
# never node attributes, which a second run's "Tumor (2)" in the same node would overwrite (the confidence of run 2
# next to run 1's segment).  {result.json key: tag}; :func:`set_tumour_result` writes, :func:`tumour_result` reads.
RESULT_TAGS = {key: f"LungAI.{key}" for key in ("confidence", "needs_review", "review_reasons", "review_threshold",
                                                  "tumor_volume_ml", "method", "model")}
# tag: the outline lungai made (:func:`_segment_outline`; written by :func:`mark_made_by` and with a tumour's result):
# a segment edited since (Segment Editor) no longer matches (:func:`segment_edited`): exported SEMIAUTOMATIC, and a
# tumour's result is reported as of the original outline (:func:`tumour_result`)
OUTLINE_TAG = "LungAI.outline"
# node attributes of scenes saved before the tags (the last run's result, whichever segment it made): they describe
# the node's one lungai tumour segment only when its volume is still theirs (:func:`_old_node_result`); read so
# (read-only) by :func:`tumour_result`, moved onto it on the next run into the node, else dropped
# (:func:`_migrate_node_result`)
_OLD_NODE_ATTRIBUTES = ("confidence", "needs_review", "review_threshold", "tumor_volume_ml", "method")
OLD_SCENE_REASON = "reason not recorded (scene of an older version)"
# attribute of the confidence table and the uncertainty volume: the ID of the segment they describe (in the
# segmentation node of reference SEGMENTATION_REFERENCE); their CT is their SOURCE_VOLUME_ATTRIBUTE reference
SEGMENT_ID_ATTRIBUTE = "LungAI.segmentID"
SEGMENTATION_REFERENCE = "LungAI.segmentation"
# segment tag and attribute of its outputs: a token of the run that made the segment (:func:`link_to_segment`).  A
# segment ID alone does not tell the segment: Slicer gives a new segment the ID of a deleted one ("Tumor" deleted,
# the next run's segment is "Tumor" again), whose outputs would then be taken for the new segment's
# (:func:`linked_segment`).  Saved with the scene (tag in the .seg.nrrd, attribute in the .mrml).
RUN_TAG = "LungAI.run"


# A .seg.nrrd stores a segment's tags as "key:value|key:value": a "|" in a value (a model folder's name) would cut it
# on reload, so "|" (and "%", the escape) are written percent-escaped and read back by :func:`_tag_value`.
def _tag_text(value) -> str:
    return str(value).replace("%", "%25").replace("|", "%7C")


def _tag_value(text: str) -> str:
    return re.sub(r"%(25|7C)", lambda m: "%" if m.group(1) == "25" else "|", text)


def _segment_id(seg_node, segment: str) -> Optional[str]:
    """The ID of a segment given by name or ID, else None (:func:`lungai.mrml.resolve_segment`: a name wins over
    another segment's ID; a name two segments have raises InputError)."""
    from lungai import mrml

    return mrml.resolve_segment(seg_node, segment)


def _segment_outline(seg_node, segment_id: str, layer_boxes: Optional[dict] = None) -> Optional[tuple]:
    """(voxel count, volume in ml, corner (x, y, z) mm, digest) of the segment's own binary labelmap: only its label
    of a shared labelmap, cropped to its own voxels (so the same outline gives the same values whatever Slicer's
    storage: shared or separate labelmaps, extent cropped or not, another label value after a reload); None when it
    has no binary labelmap (a closed-surface segmentation) or there is no such segment.

    ``layer_boxes``: {labelmap layer: {label: its voxels' box}} of the segmentation (:func:`_layer_label_boxes`, as
    :func:`measured_outlines` gives it): the segment's label is then compared within its own box only, not over the
    whole shared layer; the same values."""
    import hashlib

    import numpy as np
    import slicer
    import vtk

    segment = seg_node.GetSegmentation().GetSegment(segment_id) if segment_id else None
    if segment is None:
        return None
    data = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())
    if data is None:
        return None
    ext = data.GetExtent()
    scalars = data.GetPointData().GetScalars()
    if scalars is None or data.GetNumberOfPoints() == 0 or ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]:
        return 0, 0.0, (0.0, 0.0, 0.0), "empty"
    boxes = (layer_boxes or {}).get(_layer_key(data))
    label = segment.GetLabelValue()
    if boxes is not None and label in boxes:        # its box known: compared there only
        box = boxes[label]
        if box is None:
            return 0, 0.0, (0.0, 0.0, 0.0), "empty"
        crop = np.equal(_layer_values(data)[box], label)
        count = int(np.count_nonzero(crop))
        z0, y0, x0 = (b.start for b in box)
    else:
        inside = np.equal(_layer_values(data), label)
        count = int(inside.sum())
        if count == 0:
            return 0, 0.0, (0.0, 0.0, 0.0), "empty"
        z, y, x = (np.flatnonzero(inside.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
        crop = inside[z[0]:z[-1] + 1, y[0]:y[-1] + 1, x[0]:x[-1] + 1]
        z0, y0, x0 = z[0], y[0], x[0]
    if count == 0:
        return 0, 0.0, (0.0, 0.0, 0.0), "empty"
    matrix = vtk.vtkMatrix4x4()
    data.GetImageToWorldMatrix(matrix)
    m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    corner = tuple(float(v) for v in (m @ [ext[0] + x0, ext[2] + y0, ext[4] + z0, 1.0])[:3])
    digest = hashlib.sha1(np.asarray(crop.shape, np.int64).tobytes() + np.packbits(crop).tobytes()).hexdigest()[:16]
    return count, count * abs(float(np.linalg.det(m[:3, :3]))) / 1000.0, corner, digest


def _layer_key(data) -> str:
    """A binary labelmap layer's identity (segments of one shared labelmap give the same)."""
    return data.GetAddressAsString("vtkObject")


def _layer_values(data):
    """A binary labelmap's voxels (k, j, i), a view (its first component); its extent non-empty."""
    from vtk.util.numpy_support import vtk_to_numpy

    ext = data.GetExtent()
    values = vtk_to_numpy(data.GetPointData().GetScalars())
    values = values[:, 0] if values.ndim > 1 else values
    return values.reshape(ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1)


def _layer_label_boxes(seg_node, segment_ids) -> dict:
    """{labelmap layer (:func:`_layer_key`): {label: (k, j, i) slices of its voxels' box, None: no voxel}} of the
    layers holding two or more of the segments ``segment_ids``: each such layer read once for all its labels
    (:func:`_label_boxes`) instead of once a segment (QA slicerfollow69: Lung Radiomics' start on LUNG1-003 outlined its
    8 segments, each one comparing the whole shared 28 M voxel labelmap, 0.54-0.92 s on the GUI thread).  Layers of
    one such segment, or of labels other than 8 / 16 bit integers, are left out (:func:`_segment_outline` then reads
    them as before)."""
    import numpy as np
    import slicer

    binary = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    segmentation = seg_node.GetSegmentation()
    layers = {}
    for segment_id in segment_ids:
        segment = segmentation.GetSegment(segment_id)
        data = segment.GetRepresentation(binary) if segment is not None else None
        ext = data.GetExtent() if data is not None else (0, -1, 0, -1, 0, -1)
        if (data is None or data.GetPointData().GetScalars() is None or data.GetNumberOfPoints() == 0
                or ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]):
            continue
        layers.setdefault(_layer_key(data), (data, set()))[1].add(segment.GetLabelValue())
    out = {}
    for key, (data, labels) in layers.items():
        values = _layer_values(data)
        if (len(labels) >= 2 and np.issubdtype(values.dtype, np.integer) and values.dtype.itemsize <= 2
                and 1 <= min(labels) and max(labels) < 2 ** (8 * values.dtype.itemsize - 1)):
            out[key] = _label_boxes(values, sorted(labels))
    return out


def _label_boxes(values, labels) -> dict:
    """{label: (k, j, i) slices of the box of its voxels in ``values`` (8 / 16 bit integers), None: no voxel}, in one
    pass over ``values`` for up to 64 labels: each label a bit (of a byte for up to 8 labels), the bits of each slice
    OR-ed into one (j, i) plane and one value a slice; no volume-sized temporary, and no scipy (its import, 0.2-0.8 s,
    would be the GUI thread's at the first start)."""
    import numpy as np

    values = values.view(np.dtype(f"u{values.dtype.itemsize}"))     # labels >= 1: the same values, no negative index
    out = {}
    for start in range(0, len(labels), 64):
        group = labels[start:start + 64]
        kind = next(np.dtype(f"u{n}") for n in (1, 2, 4, 8) if len(group) <= 8 * n)     # the narrowest: less to read
        bit_of = np.zeros(2 ** (8 * values.dtype.itemsize), kind)
        for n, label in enumerate(group):
            bit_of[label] = kind.type(1) << kind.type(n)
        slices, plane = np.zeros(values.shape[0], kind), np.zeros(values.shape[1:], kind)
        bits = np.empty(values.shape[1:], kind)
        for k in range(values.shape[0]):
            np.take(bit_of, values[k], out=bits)
            np.bitwise_or(plane, bits, out=plane)
            slices[k] = np.bitwise_or.reduce(bits, axis=None)
        rows, columns = np.bitwise_or.reduce(plane, axis=1), np.bitwise_or.reduce(plane, axis=0)
        for n, label in enumerate(group):
            bit = kind.type(1) << kind.type(n)
            k, j, i = (np.flatnonzero(axis & bit) for axis in (slices, rows, columns))
            out[label] = (slice(int(k[0]), int(k[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1),
                          slice(int(i[0]), int(i[-1]) + 1)) if len(k) else None
    return out


def _outline_text(outline) -> str:
    count, ml, corner, digest = outline
    return f"{count} {ml:.6g} {','.join(f'{v:.3f}' for v in corner)} {digest}"


def _outline_changed(seg_node, segment_id: str, text: str) -> bool:
    """Whether the segment's outline now differs from the one tagged (:data:`OUTLINE_TAG`): another voxel count or
    shape, a volume off by 0.1 % or a corner moved by 0.01 mm or more.  Unknown (no labelmap, tag unreadable): no."""
    outline = _segment_outline(seg_node, segment_id)
    try:
        count, ml, corner, digest = text.split(" ")
        count, ml, corner = int(count), float(ml), [float(v) for v in corner.split(",")]
    except ValueError:
        return False
    if outline is None:
        return False
    return (outline[0] != count or outline[3] != digest or abs(outline[1] - ml) > 1e-3 * max(ml, 1e-6)
            or any(abs(a - b) >= 0.01 for a, b in zip(outline[2], corner)))


def segment_edited(seg_node, segment_id: str) -> bool:
    """Whether a segment lungai made was edited since (Segment Editor): its outline differs from the one tagged
    (:data:`OUTLINE_TAG`, :func:`_outline_changed`).  No tag (the user's segment, a scene of an older version's
    lungs: :func:`outline_unknown`), no such segment or no labelmap: False (unknown)."""
    import vtk

    segment = seg_node.GetSegmentation().GetSegment(segment_id) if seg_node is not None and segment_id else None
    outline = vtk.reference("")
    return bool(segment is not None and segment.GetTag(OUTLINE_TAG, outline)
                and _outline_changed(seg_node, segment_id, str(outline)))


# the note of a DICOM export of lungai segments whose edits cannot be told (:func:`outline_unknown`)
def outline_unknown_note(names) -> str:
    """The note of :func:`outline_unknown`'s segments ``names``, in their number."""
    one = len(names) == 1
    return (f"{'segment' if one else 'segments'} {', '.join(map(repr, names))} made by SlicerLungAI in a scene of an "
            f"older version, which did not record the outline {'it was' if one else 'they were'} made with: an edit "
            f"in the Segment Editor cannot be told, so {'it is' if one else 'they are'} written SEMIAUTOMATIC "
            f"(SlicerLungAI's, maybe corrected by the user), not AUTOMATIC; make {'it' if one else 'them'} again "
            "(Lung AI Segmentation) for an untouched contour to be written AUTOMATIC")


def outline_unknown(seg_node, segment_id: str) -> bool:
    """Whether a segment lungai made (:data:`MADE_BY_TAG`) has no recorded outline (:data:`OUTLINE_TAG`) to tell an
    edit by - a scene of an older version (lungs before their outline was recorded, a tumour before its result
    tags) - and no older node attributes that still describe it (:func:`_old_node_result`: the tumour's volume still
    their tumor_volume_ml).  Whether such a segment was edited is not known: never exported as an untouched
    AUTOMATIC contour (:func:`lungai.scene.dicom.export_segments_dicom`; QA slicerdose59: an older scene's lung the
    expert corrected was written AUTOMATIC).  The user's segments (no tag): False."""
    import vtk

    segment = seg_node.GetSegmentation().GetSegment(segment_id) if seg_node is not None and segment_id else None
    if segment is None:
        return False
    made_by, outline = vtk.reference(""), vtk.reference("")
    return bool(segment.GetTag(MADE_BY_TAG, made_by) and str(made_by) and not segment.GetTag(OUTLINE_TAG, outline)
                and not _old_node_result(seg_node, segment_id))


def set_tumour_result(seg_node, segment_id: str, info: dict) -> None:
    """Tag a tumour segment with its ``lungai segment`` result (:data:`RESULT_TAGS`; review reasons "; "-joined,
    the model as :func:`lungai.scene.results.model_text` names it) and the outline it describes
    (:data:`OUTLINE_TAG`).  A key the result lacks is removed."""
    from lungai.scene.results import model_text

    segment = seg_node.GetSegmentation().GetSegment(segment_id)
    from lungai.seg.config import result_value

    for key, tag in RESULT_TAGS.items():
        value = result_value(info, key)       # tumor_volume_ml: either spelling of result.json
        if key == "review_reasons":
            value = "; ".join(str(r) for r in value) if value else None
        elif key == "model":
            value = model_text(info)
        elif key == "needs_review" and value is not None:
            value = bool(value)
        if value is None:
            segment.RemoveTag(tag)
        else:
            segment.SetTag(tag, _tag_text(value))
    _tag_outline(seg_node, segment_id)


def _tag_outline(seg_node, segment_id: str) -> None:
    segment, outline = seg_node.GetSegmentation().GetSegment(segment_id), _segment_outline(seg_node, segment_id)
    if outline is None:
        segment.RemoveTag(OUTLINE_TAG)
    else:
        segment.SetTag(OUTLINE_TAG, _outline_text(outline))


def _result_tags(seg_node, segment_id: str) -> dict:
    """{result.json key: tag text} of the segment's result tags."""
    import vtk

    segment, out = seg_node.GetSegmentation().GetSegment(segment_id), {}
    for key, tag in RESULT_TAGS.items():
        value = vtk.reference("")
        if segment.GetTag(tag, value):
            out[key] = _tag_value(str(value))
    return out


def _old_node_result(seg_node, segment_id: str) -> dict:
    """{key: text} of the node attributes of an older scene (:data:`_OLD_NODE_ATTRIBUTES`) when they describe
    ``segment_id``: the node's one lungai tumour segment, with no result tags of its own, whose volume is still
    their tumor_volume_ml (within 1 %, at least 0.001 ml: not run 2's after the user deleted "Tumor (2)", nor an
    outline edited since); else {}."""
    present = {key: seg_node.GetAttribute(f"LungAI.{key}") for key in _OLD_NODE_ATTRIBUTES
               if seg_node.GetAttribute(f"LungAI.{key}") is not None}
    if not present or lungai_tumour_ids(seg_node) != [segment_id] or _result_tags(seg_node, segment_id):
        return {}
    outline = _segment_outline(seg_node, segment_id)
    try:
        volume = float(present.get("tumor_volume_ml", "nan"))
    except ValueError:
        return {}
    if outline is None or not abs(outline[1] - volume) <= max(0.01 * volume, 1e-3):
        return {}
    return present


def tumour_result(seg_node, segment: str, by_id: bool = False) -> dict:
    """The ``lungai segment`` result a segment (id or name) is tagged with (:func:`set_tumour_result`): confidence,
    review_threshold, tumor_volume_ml as floats, needs_review as bool, review_reasons as a list, method, model, and
    ``edited: True`` when the outline was changed since (Segment Editor: the result describes the original outline),
    ``outline_unknown: True`` when a scene of an older version recorded no outline to tell an edit by
    (:func:`outline_unknown`: the result describes the outline lungai made, which the segment may no longer be);
    for a segment of an older scene, its node's attributes when they describe it (:func:`_old_node_result`,
    read-only); {} for a segment lungai did not make (or None).  Sets the :data:`OUTLINE_COLUMN` cell of the
    segment's confidence table (:func:`_set_outline_cells`) to what it finds.  ``by_id``: ``segment`` is an ID, taken as it is
    (:func:`lungai.mrml.segment_by_id`: two segments may share a name)."""
    from lungai import mrml

    if seg_node is None or segment is None:
        return {}
    segment_id = mrml.segment_by_id(seg_node, segment) if by_id else _segment_id(seg_node, segment)
    if segment_id is None:
        return {}
    raw = _result_tags(seg_node, segment_id) or _old_node_result(seg_node, segment_id)
    out = {}
    for key, value in raw.items():
        if key in ("confidence", "review_threshold", "tumor_volume_ml"):
            try:
                value = float(value)
            except ValueError:
                continue
        elif key == "needs_review":
            value = value.strip().lower() in ("true", "1")
        elif key == "review_reasons":
            value = [r for r in value.split("; ") if r]
        out[key] = value
    if out and segment_edited(seg_node, segment_id):
        out["edited"] = True
    elif out and outline_unknown(seg_node, segment_id):
        out["outline_unknown"] = True     # result tags of an older scene, no outline: an edit since cannot be told
    if out:             # every reader of the result sets its confidence table's outline cell right
        _set_outline_cells(seg_node, segment_id, out)
    return out


def review_note(seg_node, segment: str, by_id: bool = False) -> Optional[str]:
    """A warning when the segment is flagged for expert review by Lung AI Segmentation (its tags:
    :func:`tumour_result`), naming why and its confidence; when it was edited since (the expert's correction), a
    note that its confidence described the original outline, no longer a flag; when a scene of an older version
    recorded no outline (``outline_unknown``: edits cannot be told), the flag said to describe the outline Lung AI
    Segmentation made; else None.  ``by_id``: ``segment``
    is a segment ID (the note names the segment by its name)."""
    result = tumour_result(seg_node, segment, by_id=by_id)
    if not result.get("needs_review"):
        return None
    if by_id:
        segment = seg_node.GetSegmentation().GetSegment(segment).GetName()
    from lungai.scene.results import review_digits

    confidence, threshold = result.get("confidence"), result.get("review_threshold")
    # with the decimals that show it apart from the review threshold, as lungai segment's summary and the panel's
    # banner (review_digits; QA segfollow68: "confidence below the review threshold ..., confidence 0.64" of 0.6402
    # against a threshold of 0.644, which reads 0.64 too)
    digits = review_digits(result)
    if result.get("edited"):
        what = f"its confidence {confidence:.{digits}f}" if confidence is not None else "its review flag"
        return (f"the segment '{segment}' of {seg_node.GetName()} was edited after Lung AI Segmentation ({what} "
                "described the original outline)")
    if result.get("review_reasons"):
        why = "; ".join(result["review_reasons"])
    elif confidence is not None and threshold is not None and confidence < threshold:
        why = "low confidence"
    else:
        why = OLD_SCENE_REASON
    shown = f", confidence {confidence:.{digits}f}" if confidence is not None else ""
    if result.get("outline_unknown"):
        return (f"the segment '{segment}' of {seg_node.GetName()} was flagged for expert review by Lung AI "
                f"Segmentation ({why}{shown}); this scene of an older version did not record the outline Lung AI "
                "Segmentation made, so an edit since cannot be told: the flag and confidence describe that outline, "
                "maybe not the segment as it is now - check it (Segment Editor) before relying on these results")
    return (f"the segment '{segment}' of {seg_node.GetName()} is flagged for expert review by Lung AI Segmentation "
            f"({why}{shown}): check and correct it (Segment Editor) before relying on these results")


# on a features table: the review notes of the segments it measured; on a dose table (or a features table with dose
# rows): the dose's warnings its CSV cannot carry (an EFFECTIVE RTDOSE ...) - what the RP risk from the table repeats
REVIEW_NOTES_ATTRIBUTE = "LungAI.reviewNotes"


def review_notes(seg_node, segments) -> list[str]:
    """The :func:`review_note` of each of ``segments`` (names) that has one: flagged for expert review, or edited
    since it was flagged.  When ``segments`` hold the derived "Lungs minus tumour" (:data:`LUNGS_MINUS_TUMOUR`),
    those of every tumour segment it subtracts too, ticked or not (:func:`tumour_segment_ids`, by ID: two
    tumour segments may share a name): a flagged tumour shapes that column."""
    if seg_node is None:
        return []
    segments = list(segments)
    own = [review_note(seg_node, name) for name in dict.fromkeys(s for s in segments if s != LUNGS_MINUS_TUMOUR)]
    subtracted = ([review_note(seg_node, segment_id, by_id=True) for segment_id, _ in tumour_segment_ids(seg_node)]
                  if LUNGS_MINUS_TUMOUR in segments else [])
    return [note for note in dict.fromkeys(own + subtracted) if note]


def record_review_notes(table_node, notes):
    """Record on an output table (Lung Radiomics' features table) the review notes (:func:`review_notes`) of the
    segments it was computed from (on its dose table: the dose's warnings, e.g. an EFFECTIVE RTDOSE), so that what is computed from the table later (Multimodal Predict's RP risk) says
    them too (:func:`recorded_review_notes`); none: the attribute is removed (an earlier run's notes never stay).
    Saved with the scene.  Returns the node."""
    import json

    notes = [str(n) for n in notes if n]
    if notes:
        table_node.SetAttribute(REVIEW_NOTES_ATTRIBUTE, json.dumps(notes))
    else:
        table_node.RemoveAttribute(REVIEW_NOTES_ATTRIBUTE)
    return table_node


# table node attribute: {column: structure role} of the features table's segment columns whose name has no role but
# whose terminology gives one (:func:`terminology_roles`: a GTV renamed "Tumör primär 1", a right lung renamed
# "Segment_1"), recorded when the table is made, so that the RP risk names their features by the role (lungai.scene.rp:
# ``rad_tumour_*``, ``rad_right_lung_*``).  A coded lung is measured on the lung grid as a lung named so
# (lungai.segment_roles.lungs_by_role): its RP features are the lung's (QA slicerfollow68: LUNG1-003's "Segment_1" gave
# ``rad_segment_1_*``, none the model's ``rad_right_lung_*``).
SEGMENT_ROLES_ATTRIBUTE = "LungAI.segmentRoles"
# the structure roles recorded: tumours and lungs (lungai.dicom.roles' names; lungai.segment_roles.LUNG_ROLES)
_RECORDED_ROLES = ("gtv_primary", "gtv", "gtv_node", "lung_right", "lung_left", "lungs", "lungs_minus_gtv")


def record_segment_roles(table_node, roles: dict, columns=None):
    """Record on a features table the tumour and lung roles among ``roles`` ({segment name: structure role},
    :func:`terminology_roles`; :data:`SEGMENT_ROLES_ATTRIBUTE`) of its ``columns`` (all of ``roles`` when None) - read
    back by :func:`table_segment_roles`; none: "{}" (an earlier run's roles never stay, and the table's segmentation
    renamed or retagged since changes nothing).  Saved with the scene.  Returns the node."""
    import json

    wanted = None if columns is None else set(columns)
    roles = {str(n): str(r) for n, r in (roles or {}).items()
             if (wanted is None or n in wanted) and r in _RECORDED_ROLES}
    table_node.SetAttribute(SEGMENT_ROLES_ATTRIBUTE, json.dumps(roles))
    return table_node


def table_segment_roles(table_node) -> dict:
    """{column: structure role} a features table carries (:func:`record_segment_roles`); for a table of an older version
    (no attribute) the tumour roles its segmentation's terminology gives now (:func:`terminology_roles` of its source
    segmentation, when still in the scene; not a lung's: such a version measured a coded lung on the CT's grid, not
    as the lung); {} for none, a DataFrame or a dict."""
    import json

    from lungai.dicom.roles import GTV_ROLES

    if not hasattr(table_node, "GetAttribute"):
        return {}
    text = table_node.GetAttribute(SEGMENT_ROLES_ATTRIBUTE)
    if text is None:
        seg_id, scene = source_segmentation_id(table_node), table_node.GetScene()
        seg = scene.GetNodeByID(seg_id) if seg_id and scene is not None else None
        return {n: r for n, r in terminology_roles(seg).items() if r in GTV_ROLES} if seg is not None else {}
    try:
        roles = json.loads(text)
    except ValueError:
        return {}
    return {str(n): str(r) for n, r in roles.items()} if isinstance(roles, dict) else {}


def recorded_review_notes(table_node) -> list[str]:
    """The review notes a table carries (:func:`record_review_notes`); [] for none, a DataFrame or a dict."""
    import json

    text = table_node.GetAttribute(REVIEW_NOTES_ATTRIBUTE) if hasattr(table_node, "GetAttribute") else None
    if not text:
        return []
    try:
        notes = json.loads(text)
    except ValueError:
        return [text]
    return [str(n) for n in notes if n] if isinstance(notes, list) else [str(notes)]


def _migrate_node_result(seg_node) -> None:
    """A node of an older scene: its result attributes move onto its one lungai tumour segment when they describe it
    (:func:`_old_node_result`), else are dropped (several runs' tumours, or a volume that is no longer theirs:
    whose they are is not known)."""
    present = [key for key in _OLD_NODE_ATTRIBUTES if seg_node.GetAttribute(f"LungAI.{key}") is not None]
    if not present:
        return
    made = lungai_tumour_ids(seg_node)
    old = _old_node_result(seg_node, made[0]) if len(made) == 1 else {}
    if old:
        segment = seg_node.GetSegmentation().GetSegment(made[0])
        for key, value in old.items():
            segment.SetTag(RESULT_TAGS[key], _tag_text(value))
        _tag_outline(seg_node, made[0])
    for key in present:
        seg_node.RemoveAttribute(f"LungAI.{key}")


def _segment_run(seg_node, segment_id: str) -> Optional[str]:
    """The run token a segment carries (:data:`RUN_TAG`), else None (a segment made before the token, or not by
    a run)."""
    import vtk

    segment = seg_node.GetSegmentation().GetSegment(segment_id) if segment_id else None
    value = vtk.reference("")
    return (str(value) or None) if segment is not None and segment.GetTag(RUN_TAG, value) else None


def link_to_segment(node, volume_node, seg_node, segment_id: str):
    """Link an output of a tumour run (its confidence table, uncertainty volume) to its CT
    (:func:`set_source_volume`) and to the segment it describes (:data:`SEGMENT_ID_ATTRIBUTE` in the segmentation
    of reference :data:`SEGMENTATION_REFERENCE`, and the run's token :data:`RUN_TAG`: the segment's, given to it
    by its run's first output when it has none); returns the node."""
    import uuid

    set_source_volume(node, volume_node)
    node.SetNodeReferenceID(SEGMENTATION_REFERENCE, seg_node.GetID())
    node.SetAttribute(SEGMENT_ID_ATTRIBUTE, segment_id)
    run = _segment_run(seg_node, segment_id)
    if run is None:
        run = uuid.uuid4().hex
        seg_node.GetSegmentation().GetSegment(segment_id).SetTag(RUN_TAG, run)
    node.SetAttribute(RUN_TAG, run)
    return node


def linked_segment(node):
    """(segmentation node, segment ID) an output is linked to (:func:`link_to_segment`), else (None, None): the
    segment of that ID when it carries the output's run token (:data:`RUN_TAG`) - never a later run's segment
    that got the ID of a deleted one, nor the new segment of a run that replaced it.  An output of a scene saved
    before the token (no token) is linked so only to a segment with no token either."""
    seg_node = node.GetNodeReference(SEGMENTATION_REFERENCE) if node is not None else None
    segment_id = node.GetAttribute(SEGMENT_ID_ATTRIBUTE) if seg_node is not None else None
    if segment_id is None or seg_node.GetSegmentation().GetSegment(segment_id) is None:
        return None, None
    if (node.GetAttribute(RUN_TAG) or None) != _segment_run(seg_node, segment_id):
        return None, None
    return seg_node, segment_id


def segment_output_name(base: str, segment_name: str, what: str) -> str:
    """Name of a tumour run's confidence table / uncertainty volume: "<CT> tumour <what>" for the segment "Tumor",
    "<CT> <segment> <what>" for another ("LUNG1-001 Tumor (2) confidence": a second run's)."""
    return tumour_node_name(base, what) if segment_name == TUMOUR_SEGMENT else f"{base} {segment_name} {what}"


def _free_name(scene, name: str, node=None) -> str:
    """``name`` when no node but ``node`` has it, else the scene's unique name for it (GenerateUniqueName counts
    up whatever the names: "<name>_1" even once "<name>" is free again)."""
    taken = scene.GetNodesByName(name)
    others = [taken.GetItemAsObject(i) for i in range(taken.GetNumberOfItems())]
    return name if all(other is node for other in others) else scene.GenerateUniqueName(name)


def _segment_output_what(node) -> str:
    return "confidence" if node.IsA("vtkMRMLTableNode") else "uncertainty"


def _segment_cell(node) -> Optional[str]:
    """The ``segment`` cell of a confidence table (the segment's name when it was made or last refreshed)."""
    rows = table_rows(node) if node.IsA("vtkMRMLTableNode") else []
    return rows[0].get("segment") if rows else None


def segment_outputs(scene, seg_node) -> list:
    """The confidence tables and uncertainty volumes in ``scene`` linked to a segment of ``seg_node``
    (:func:`link_to_segment`) whose segment still exists."""
    found = []
    for cls in ("vtkMRMLTableNode", "vtkMRMLScalarVolumeNode"):
        for i in range(scene.GetNumberOfNodesByClass(cls)):
            node = scene.GetNthNodeByClass(i, cls)
            if linked_segment(node)[0] is seg_node:
                found.append(node)
    return found


def _own_segment_output(scene, node, outputs) -> bool:
    """Whether ``node`` (a linked output) still has the name lungai gave it (:data:`MADE_NAME_ATTRIBUTE`; in a scene
    saved before that attribute, the name :func:`segment_output_name` gives for the segment name its table's
    ``segment`` cell records - a volume's, its table's of the same segment - and its CT's name, "_N" made unique or
    not).  A renamed output is the user's, never renamed."""
    made = node.GetAttribute(MADE_NAME_ATTRIBUTE)
    if made is not None:
        return node.GetName() == made
    volume = scene.GetNodeByID(source_volume_id(node))
    segment_id = node.GetAttribute(SEGMENT_ID_ATTRIBUTE)
    cells = [_segment_cell(other) for other in outputs
             if other.IsA("vtkMRMLTableNode") and other.GetAttribute(SEGMENT_ID_ATTRIBUTE) == segment_id]
    return volume is not None and any(cell and _named(node, segment_output_name(volume.GetName(), cell,
                                                                                _segment_output_what(node)))
                                      for cell in cells)


def refresh_segment_output_names(scene, seg_node) -> list:
    """The names the user reads follow the segments' current names: the confidence tables and uncertainty volumes
    linked to segments of ``seg_node`` (:func:`segment_outputs`) that still have lungai's name
    (:func:`_own_segment_output`) are renamed to :func:`segment_output_name` of their segment's current name (and
    their CT's), a table's ``segment`` cell too - after "Tumor" was renamed "My GTV", its outputs are "<CT> My GTV
    confidence" / "... uncertainty", and a new run's "Tumor" gets "<CT> tumour confidence", not the old numbers'
    name.  Nodes the user renamed or made are left as they are.  Returns the nodes renamed."""
    outputs = segment_outputs(scene, seg_node)
    targets = []
    for node in outputs:
        volume = scene.GetNodeByID(source_volume_id(node))
        if volume is None or not _own_segment_output(scene, node, outputs):
            continue
        _, segment_id = linked_segment(node)
        current = seg_node.GetSegmentation().GetSegment(segment_id).GetName()
        target = segment_output_name(volume.GetName(), current, _segment_output_what(node))
        cell = _segment_cell(node)
        if not _named(node, target) or (cell is not None and cell != current):
            targets.append((node, target, current))
    for node, _, _ in targets:           # swapped names ("Tumor" <-> "Tumor (2)") never clash with each other
        node.SetName(f"{node.GetID()} (renaming)")
    for node, target, current in targets:
        _set_made_name(scene, node, target)
        if node.IsA("vtkMRMLTableNode"):
            _set_text_cells(node, "segment", current, add=False)
    return [node for node, _, _ in targets]


# the confidence table's column saying which outline its confidence and needs_review describe (the run's, the same
# signal as :func:`tumour_result`'s ``edited`` / ``outline_unknown``), set by :func:`tumour_result` - so by every
# reader of the result (the panels' review notes, the DICOM export, :func:`refresh_confidence_tables`)
OUTLINE_COLUMN = "outline"
OUTLINE_AS_MADE = "as Lung AI Segmentation made it"
OUTLINE_EDITED = ("edited since (Segment Editor): confidence and needs_review describe the original outline, "
                  "not the segment as it is now")
OUTLINE_NOT_RECORDED = ("not recorded (scene of an older version): an edit since cannot be told; confidence and "
                        "needs_review describe the outline Lung AI Segmentation made")
OUTLINE_GONE = ("segment no longer in the scene (deleted, its segmentation deleted, or replaced by a later run): "
                "confidence and needs_review describe a segment that is gone")


def outline_state(result: dict) -> str:
    """The confidence table's :data:`OUTLINE_COLUMN` text for a :func:`tumour_result`."""
    return (OUTLINE_EDITED if result.get("edited") else OUTLINE_NOT_RECORDED if result.get("outline_unknown")
            else OUTLINE_AS_MADE)


def _set_text_cells(node, name: str, text: str, add: bool = True) -> None:
    """Every cell of the table node's text column ``name`` set to ``text`` (the column added when missing and
    ``add``: a table of an older version); the node changed only when a cell does."""
    import vtk

    table = node.GetTable()
    rows = table.GetNumberOfRows()
    column = table.GetColumnByName(name)
    if column is None:
        if not add:
            return
        column = vtk.vtkStringArray()
        column.SetName(name)
        column.SetNumberOfValues(rows)
        table.AddColumn(column)
    elif all(column.GetValue(r) == text for r in range(rows)):
        return
    for r in range(rows):
        column.SetValue(r, text)
    table.Modified()
    node.Modified()


def _set_outline_cells(seg_node, segment_id: str, result: dict) -> None:
    """The :data:`OUTLINE_COLUMN` cell of the confidence tables linked to the segment (:func:`linked_segment`)
    set to :func:`outline_state` (the column added to a table of an older version); a node changed only when
    its cell does."""
    scene = seg_node.GetScene()
    if scene is None:
        return
    text = outline_state(result)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node.GetAttribute(SEGMENT_ID_ATTRIBUTE) != segment_id or linked_segment(node) != (seg_node, segment_id):
            continue
        _set_text_cells(node, OUTLINE_COLUMN, text)


def refresh_confidence_tables(scene) -> None:
    """Keep every confidence table in ``scene`` true to its segment as the segment is now: the tables (and
    uncertainty volumes) still under lungai's names renamed after their segment's current name
    (:func:`refresh_segment_output_names`), the ``segment`` cell of every linked table its segment's current name
    (a table the user renamed too: "Tumor" renamed "Tumor rejected" and "Tumor (2)" renamed "Tumor" - the
    tables no longer name the wrong segment), the :data:`OUTLINE_COLUMN` cell the outline state
    (:func:`tumour_result`: edited since in the Segment Editor), and :data:`OUTLINE_GONE` for a table whose
    segment is gone (deleted, its segmentation deleted, replaced by a later run: :func:`linked_segment`); likewise
    every table of values measured on segments (:data:`MEASURED_OUTLINES_ATTRIBUTE`: features, dose, RP risk) says
    in its :data:`OUTLINE_COLUMN` which measured segments were edited, renamed, replaced or deleted since
    (:data:`MEASURED_EARLIER`; the column added only then).  Called by
    the Lung AI Segmentation panel on entering it and, once :func:`keep_confidence_tables_current` is installed
    (the panels do), after each change of a segment or removal of a segmentation."""
    tables = [scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
              for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))]
    seg_nodes = []
    for node in tables:
        seg_node = linked_segment(node)[0]
        if seg_node is not None and seg_node not in seg_nodes:
            seg_nodes.append(seg_node)
    for seg_node in seg_nodes:
        refresh_segment_output_names(scene, seg_node)
    for node in tables:
        seg_node, segment_id = linked_segment(node)
        if seg_node is not None:
            _set_text_cells(node, "segment", seg_node.GetSegmentation().GetSegment(segment_id).GetName(), add=False)
            tumour_result(seg_node, segment_id, by_id=True)
        elif node.GetAttribute(SEGMENT_ID_ATTRIBUTE) is not None and node.GetTable() is not None \
                and node.GetTable().GetNumberOfRows():
            _set_text_cells(node, OUTLINE_COLUMN, OUTLINE_GONE)
        _mark_measured_table(scene, node)


def _mark_measured_table(scene, node) -> None:
    """A table of values measured on segments (:data:`MEASURED_OUTLINES_ATTRIBUTE`): its :data:`OUTLINE_COLUMN` says
    :data:`MEASURED_EARLIER` once one changed since (:func:`measured_outline_changes`), back to
    :data:`MEASURED_CURRENT` where it said so before (an edit undone); no column while current."""
    if not node.GetAttribute(MEASURED_OUTLINES_ATTRIBUTE) or node.GetTable() is None \
            or not node.GetTable().GetNumberOfRows():
        return
    changes = measured_outline_changes(scene, node)
    if changes:
        _set_text_cells(node, OUTLINE_COLUMN, MEASURED_EARLIER.format("; ".join(changes)))
    else:
        _set_text_cells(node, OUTLINE_COLUMN, MEASURED_CURRENT, add=False)


# on a table of values measured on segments (Lung Radiomics' features and dose tables, radiomics_table's, the RP risk
# computed from them): each measured segment's segmentation, ID, name and outline (:func:`_segment_outline`) as they
# were then (:func:`measured_outlines`), so that :func:`refresh_confidence_tables` (the one refresh path, run by
# :func:`keep_confidence_tables_current`) marks the table's :data:`OUTLINE_COLUMN` once a segment is edited, renamed,
# replaced or deleted: its rows describe an outline that no longer exists.  The values are never deleted nor computed
# again silently.
MEASURED_OUTLINES_ATTRIBUTE = "LungAI.measuredOutlines"
MEASURED_CURRENT = "as the segments are now"
MEASURED_EARLIER = ("earlier outline: {} - these values describe the segments as they were when computed, not as "
                    "they are now; compute them again before using or exporting them")


def measured_outlines(seg_node, names=None, records=None) -> list:
    """The records (:data:`MEASURED_OUTLINES_ATTRIBUTE`) of the segments of ``seg_node`` named in ``names`` (None:
    every segment; a derived "Lungs" / "Lungs minus tumour" among them: every segment, they are made of the lungs and
    tumours); [] with no segmentation.  ``records``: every segment's records read earlier (``measured_outlines(
    seg_node)`` when a job started), of which those of ``names`` are returned as they were then, not read now (Lung
    Radiomics exports its segments over several ticks of its progress bar: QA slicer70)."""
    if seg_node is None:
        return []
    wanted = None if names is None or {"Lungs", LUNGS_MINUS_TUMOUR} & set(names) else set(names)
    if records is not None:
        return [r for r in records if wanted is None or r["name"] in wanted]
    steps = measured_outline_steps(seg_node, names)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def measured_outline_steps(seg_node, names=None):
    """:func:`measured_outlines` (read now) as steps: a generator that yields each segment's name before its outline
    is read and returns the records - a panel job reads one segment a tick of its progress bar (QA slicerfollow71:
    LUNG1-003's four outlines held the GUI thread 0.54-0.72 s in one poll of Lung Radiomics' job)."""
    if seg_node is None:
        return []
    wanted = None if names is None or {"Lungs", LUNGS_MINUS_TUMOUR} & set(names) else set(names)
    segmentation = seg_node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    if wanted is not None:
        ids = [i for i in ids if segmentation.GetSegment(i).GetName() in wanted]
    records = []
    boxes = _layer_label_boxes(seg_node, ids)       # each shared labelmap read once, not once a segment
    for segment_id in ids:
        yield segmentation.GetSegment(segment_id).GetName()
        outline = _segment_outline(seg_node, segment_id, boxes)
        records.append({"segmentation": seg_node.GetID(), "segmentation_name": seg_node.GetName() or "",
                        "id": segment_id, "name": segmentation.GetSegment(segment_id).GetName(),
                        "outline": None if outline is None else _outline_text(outline)})
    return records


# node reference roles of a table of measured values, "<role><n>": the n-th segmentation its records name (the record's
# "ref": n).  A reference, as the confidence tables' (:data:`SEGMENTATION_REFERENCE`), not the ID written in the
# record: MRML renames references when a saved scene is added to a scene whose node IDs clash (Add Data of an .mrb),
# never attributes - the record then named the other scene's segmentation ("as the segments are now" while the
# loaded segment was edited, or "edited" for a segment nobody touched).  Records of older scenes (no "ref"): the ID.
MEASURED_SEGMENTATION_REFERENCE = "LungAI.measuredSegmentation"


def recorded_measured_outlines(*tables) -> list:
    """The measured-segment records the tables carry (:func:`record_measured_outlines`), each once, each naming the
    ID its segmentation has now (its reference :data:`MEASURED_SEGMENTATION_REFERENCE`; "" when deleted)."""
    import json

    records = []
    for table in tables:
        text = table.GetAttribute(MEASURED_OUTLINES_ATTRIBUTE) if hasattr(table, "GetAttribute") else None
        try:
            found = json.loads(text) if text else []
        except ValueError:
            found = []
        for record in [dict(r) for r in found if isinstance(r, dict)]:
            if "ref" in record:
                record["segmentation"] = (
                    table.GetNodeReferenceID(f"{MEASURED_SEGMENTATION_REFERENCE}{record.pop('ref')}") or "")
            if record not in records:
                records.append(record)
    return records


def record_measured_outlines(table_node, records):
    """Record on a table the segments its values were measured on (:func:`measured_outlines`; none: removed - an
    earlier run's never stay); saved with the scene, each record's segmentation as a node reference
    (:data:`MEASURED_SEGMENTATION_REFERENCE`).  Returns the node."""
    import json

    try:                # an earlier run's references go
        earlier = json.loads(table_node.GetAttribute(MEASURED_OUTLINES_ATTRIBUTE) or "[]")
    except ValueError:
        earlier = []
    for n in {r["ref"] for r in earlier if isinstance(r, dict) and isinstance(r.get("ref"), int)}:
        table_node.RemoveNodeReferenceIDs(f"{MEASURED_SEGMENTATION_REFERENCE}{n}")
    if records:
        ids = list(dict.fromkeys(r.get("segmentation") or "" for r in records))
        for n, segmentation_id in enumerate(ids):
            if segmentation_id:
                table_node.SetNodeReferenceID(f"{MEASURED_SEGMENTATION_REFERENCE}{n}", segmentation_id)
        table_node.SetAttribute(MEASURED_OUTLINES_ATTRIBUTE, json.dumps(
            [dict(r, ref=ids.index(r.get("segmentation") or "")) for r in records]))
    else:
        table_node.RemoveAttribute(MEASURED_OUTLINES_ATTRIBUTE)
    if table_node.GetScene() is not None:       # a risk computed from a table already of an earlier outline
        _mark_measured_table(table_node.GetScene(), table_node)
    return table_node


def measured_outline_changes(scene, table_node) -> list[str]:
    """What changed since the table's values were measured (:func:`record_measured_outlines`), one phrase per
    segment: deleted (its segmentation deleted), replaced (another segment of its name), renamed, edited."""
    changes = []
    for record in recorded_measured_outlines(table_node):
        name = record.get("name", "")
        seg_node = scene.GetNodeByID(record.get("segmentation") or "")
        segment = (seg_node.GetSegmentation().GetSegment(record.get("id") or "")
                   if seg_node is not None and seg_node.IsA("vtkMRMLSegmentationNode") else None)
        if seg_node is None or not seg_node.IsA("vtkMRMLSegmentationNode"):
            changes.append(f"segment '{name}' gone (segmentation '{record.get('segmentation_name', '')}' deleted)")
        elif segment is None:
            replaced = seg_node.GetSegmentation().GetSegmentIdBySegmentName(name)
            changes.append(f"segment '{name}' " + ("replaced (made again)" if replaced else "deleted"))
        else:
            if segment.GetName() != name:
                changes.append(f"segment '{name}' renamed '{segment.GetName()}'")
            if record.get("outline") and _outline_changed(seg_node, record["id"], record["outline"]):
                changes.append(f"segment '{name}' edited (or made again) since")
    return list(dict.fromkeys(changes))


def stale_table_notes(scene, *tables) -> list[str]:
    """A note per table (None / a DataFrame skipped) whose measured segments changed since
    (:func:`measured_outline_changes`), said with what is computed from it (the RP risk: its ``warnings``)."""
    return [f"the table '{table.GetName()}' is of an earlier outline ({'; '.join(changes)}): compute it again in Lung "
            "Radiomics before relying on this result"
            for table in tables if hasattr(table, "GetAttribute")
            for changes in [measured_outline_changes(scene, table)] if changes]


_REFRESHING_CONFIDENCE: set = set()
# lungai's own event: an object carrying keep_confidence_tables_current's observers answers it (:func:`_kept`)
_KEPT_PROBE_EVENT = 1000 + 0x4C41     # vtkCommand.UserEvent (1000) + "LA"
_VTK_OBJECT = 21                      # vtk.VTK_OBJECT: the calldata type of a node added / removed event


# The observers below are module functions, never closures or lambdas made per scene: Python's garbage collector
# clears a collected scene's wrapper together with the functions only its observers hold, and the scene's own
# destructor then fired EndBatchProcessEvent into a half-cleared lambda (QA: 'Fatal Python error: Segmentation
# fault ... Garbage-collecting ... nodes.py in <lambda>', in test_rp_scene after a Multimodal Predict panel test).
# The "is it observed" marks are asked of the object itself (:func:`_kept`), not kept in a set of addresses that a
# DeleteEvent observer would have to clear (a new object at a freed one's address would pass for observed).

def _kept(obj) -> bool:
    """Whether ``obj`` (a scene, a segmentation node) already carries :func:`keep_confidence_tables_current`'s
    observers: it answers :data:`_KEPT_PROBE_EVENT` (:func:`lungai.mrml.has_mark`)."""
    from lungai.mrml import has_mark

    return has_mark(obj, _KEPT_PROBE_EVENT)


def _mark_kept(obj) -> None:
    from lungai.mrml import add_mark

    add_mark(obj, _KEPT_PROBE_EVENT)


def _refresh_scene(owner) -> None:
    """:func:`refresh_confidence_tables` of ``owner`` (a scene; None: one being destroyed) unless it is read,
    closed or batch processed, or this refresh is already running."""
    if owner is None:
        return
    key = owner.__this__
    if key in _REFRESHING_CONFIDENCE or owner.IsImporting() or owner.IsClosing() or owner.IsBatchProcessing():
        return
    _REFRESHING_CONFIDENCE.add(key)
    try:
        refresh_confidence_tables(owner)
    finally:
        _REFRESHING_CONFIDENCE.discard(key)


def _after_batch(owner, _event) -> None:
    _refresh_scene(owner)


def _on_segment(node, _event) -> None:
    _refresh_scene(node.GetScene() if node is not None else None)


def _observe_segmentation(node) -> None:
    import slicer

    if node is None or not node.IsA("vtkMRMLSegmentationNode") or _kept(node):
        return
    _mark_kept(node)
    for event in (slicer.vtkSegmentation.SegmentModified, slicer.vtkSegmentation.SegmentRemoved,
                  slicer.vtkSegmentation.SourceRepresentationModified):
        node.AddObserver(event, _on_segment)


def _on_node_added(_scene, _event, node) -> None:
    _observe_segmentation(node)


def _on_node_removed(owner, _event, node) -> None:
    if node is not None and node.IsA("vtkMRMLSegmentationNode"):
        _refresh_scene(owner)


_on_node_added.CallDataType = _on_node_removed.CallDataType = _VTK_OBJECT


def keep_confidence_tables_current(scene) -> None:
    """Run :func:`refresh_confidence_tables` after each change of a segment of any segmentation node in ``scene``
    (an edit in the Segment Editor, a rename, a segment deleted) and after a segmentation node is removed, so the
    confidence tables never show a segment's old trust information (before, they were refreshed only on entering
    Lung AI Segmentation or when a reader of the result ran).  Not while the scene is read, closed or batch
    processed (after a batch, once).  The panels install it once on the application's scene; idempotent."""
    if _kept(scene):
        return
    _mark_kept(scene)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
        _observe_segmentation(scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode"))
    scene.AddObserver(scene.NodeAddedEvent, _on_node_added)
    scene.AddObserver(scene.NodeRemovedEvent, _on_node_removed)
    scene.AddObserver(scene.EndBatchProcessEvent, _after_batch)


def add_tumour_outputs(scene, volume_node, tumour: sitk.Image, uncertainty: sitk.Image, info: dict,
                       seg_node=None, replace_segment=None) -> dict:
    """Tumour segmentation results as nodes: returns {"segmentation", "segment_id", "uncertainty",
    "table", "result", "candidates"}.

    The tumour becomes segment "Tumor" - in a new segmentation node "<CT> tumour", or added to
    ``seg_node`` when it belongs to this CT (:func:`volume_segmentation`; "Tumor (2)" when the name is
    taken; only ``replace_segment``, chosen by the user, is overwritten).  The segment's tags ``LungAI.*``
    (:func:`set_tumour_result`) carry its confidence, review flag and reasons, volume, method and model, so they
    are saved with the scene and stay with their segment when another run adds "Tumor (2)".  The uncertainty
    becomes the heat-map volume "<CT> tumour uncertainty", the confidence fields the table "<CT> tumour
    confidence" ("<CT> Tumor (2) ..." for segment "Tumor (2)": :func:`segment_output_name`; a replaced or deleted
    segment's outputs under those names are renamed "... (replaced)" / "... (segment gone)" first:
    :func:`retire_segment_outputs`), both linked to the
    CT and the segment (:func:`link_to_segment`), the table's :data:`OUTLINE_COLUMN` saying whether the segment
    was edited since (kept current by :func:`tumour_result`); automatic mode's candidate regions (when more than one) the
    point list "<CT> tumour candidates".
    """
    from lungai import mrml

    base = volume_node.GetName()
    seg_node = volume_segmentation(seg_node, volume_node, replace_segment)
    new_node = seg_node is None
    replaced = []       # the outputs of the segment this run replaces: their names go to this run's
    if seg_node is not None:
        _migrate_node_result(seg_node)
        target = _segment_id(seg_node, replace_segment) if replace_segment is not None else None
        replaced = [node.GetID() for node in segment_outputs(scene, seg_node) if linked_segment(node)[1] == target]
    seg_node, segment_id = mrml.mask_to_segment(scene, tumour, TUMOUR_SEGMENT, seg_node=seg_node,
                                                replace_segment=replace_segment, reference_volume_node=volume_node)
    mark_made_by(seg_node, segment_id, "lungai segment")
    set_tumour_result(seg_node, segment_id, info)
    set_source_volume(seg_node, volume_node)
    if new_node:
        seg_node.SetName(scene.GenerateUniqueName(tumour_node_name(base)))
    else:               # the earlier runs' outputs named after their segments' current names (renamed since?)
        refresh_segment_output_names(scene, seg_node)
    segment_name = seg_node.GetSegmentation().GetSegment(segment_id).GetName()
    retire_segment_outputs(scene, [segment_output_name(base, segment_name, what)
                                   for what in ("uncertainty", "confidence")], replaced)
    from lungai.seg.uncertainty import MAP_RANGES

    # shown in its fixed window (show_uncertainty): no automatic window/level of its voxels first (QA slicer70)
    unc = mrml.volume_node_from_image(scene, uncertainty, segment_output_name(base, segment_name, "uncertainty"),
                                      window=MAP_RANGES["entropy"])
    _set_made_name(scene, unc, segment_output_name(base, segment_name, "uncertainty"))
    show_uncertainty(unc, info)
    link_to_segment(unc, volume_node, seg_node, segment_id)
    # one row: no pandas import (0.8 s the first time on the GUI thread after Done, QA slicerfollow70)
    table = mrml.table_node_from_row(scene, confidence_row(info, segment_name),
                                     segment_output_name(base, segment_name, "confidence"))
    _set_made_name(scene, table, segment_output_name(base, segment_name, "confidence"))
    link_to_segment(table, volume_node, seg_node, segment_id)
    tumour_result(seg_node, segment_id, by_id=True)      # its outline column (:data:`OUTLINE_COLUMN`): as made
    return {"segmentation": seg_node, "segment_id": segment_id, "uncertainty": unc, "table": table,
            "result": info, "candidates": place_beside_ct(add_candidate_points(scene, base, info), volume_node)}


# the name suffixes of outputs whose segment is gone (:func:`retire_segment_outputs`)
RETIRED_REPLACED = "replaced"
RETIRED_GONE = "segment gone"


def retire_segment_outputs(scene, names, replaced=()) -> list:
    """Free lungai's output names ``names`` for a new tumour run's confidence table / uncertainty volume: a node of
    such a name that lungai gave it (:data:`MADE_NAME_ATTRIBUTE`) and whose segment is gone (:func:`linked_segment`)
    is renamed "<name> (replaced)" when it described the segment this run replaced (``replaced``: node IDs), else
    "<name> (segment gone)" (deleted, its segmentation deleted), and a table's :data:`OUTLINE_COLUMN` says
    :data:`OUTLINE_GONE`.  Before, the obsolete table kept the standard "<CT> tumour confidence" and the current
    result became "<CT> tumour confidence_2".  Never deleted (its numbers are kept: the user may still want them);
    a node the user renamed, or whose segment is still there, is left as it is.  Returns the nodes renamed."""
    replaced, retired = set(replaced), []
    for name in names:
        taken = scene.GetNodesByName(name)
        for node in [taken.GetItemAsObject(i) for i in range(taken.GetNumberOfItems())]:
            if node.GetAttribute(SEGMENT_ID_ATTRIBUTE) is None or node.GetAttribute(MADE_NAME_ATTRIBUTE) != name \
                    or linked_segment(node)[0] is not None:
                continue
            _set_made_name(scene, node, f"{name} ({RETIRED_REPLACED if node.GetID() in replaced else RETIRED_GONE})")
            if node.IsA("vtkMRMLTableNode") and node.GetTable() is not None and node.GetTable().GetNumberOfRows():
                _set_text_cells(node, OUTLINE_COLUMN, OUTLINE_GONE)
            retired.append(node)
    return retired


def show_uncertainty(unc, info: dict) -> None:
    """An uncertainty volume node as the panel, the console API and the demo's scene show it: units, the box it was
    evaluated in (0 outside it: not evaluated), the fixed 0..1 bit heat window of every case."""
    from lungai.seg.uncertainty import MAP_RANGES

    set_uncertainty_units(unc)
    set_evaluated_box(unc, info)
    show_as_heat_map(unc, value_range=MAP_RANGES["entropy"])         # one window for every case


def _mm_text(values) -> str:
    """A point or box of result.json (LPS mm; a box as its two corners) as ``lungai segment``'s --seed-point / --roi
    take it: its numbers comma-separated, to 0.01 mm; "" for none."""
    import numpy as np

    flat = np.ravel(np.asarray(values, dtype=float)) if values is not None else np.zeros(0)
    return ",".join(f"{round(float(v), 2) + 0.0:.10g}" for v in flat)


def confidence_row(info: dict, segment_name: str | None = None) -> dict:
    """The confidence table's row of a ``lungai segment`` result (:data:`CONFIDENCE_FIELDS`, either spelling of
    result.json; review reasons and their actions "; "-joined, the model as :func:`lungai.scene.results.model_text`
    names it, flags as 0 / 1, the seed point, the box used, the growing box's passes and why it stopped
    (:func:`_mm_text`), the confidence features): the panel's, the console API's and the demo scene's table."""
    from lungai.scene.results import model_text
    from lungai.seg.config import result_value

    row = {} if segment_name is None else {"segment": segment_name}
    missing = object()
    for k in CONFIDENCE_FIELDS:
        value = result_value(info, k, missing)
        if value is not missing:
            row[k] = value
    # why it is flagged, what to do and which model made it, always (empty: none / not recorded)
    row["review_reasons"] = "; ".join(str(r) for r in info.get("review_reasons") or [])
    row["review_actions"] = "; ".join(str(r) for r in info.get("review_actions") or [])
    row["model"] = model_text(info) or ""
    # where it looked (result.json's, which the panel's work folder takes away with it - QA segoutputs66): the seed
    # point and the box finally used as --seed-point / --roi take them (LPS mm), the growing box's passes and why it
    # stopped (empty / 0 in automatic mode)
    row["seed_point_lps_mm"] = _mm_text(info.get("seed_point_lps_mm"))
    row["roi_lps_mm"] = _mm_text(info.get("roi_lps_mm"))
    row["roi_pass_count"] = len(info.get("roi_passes") or [])
    row["roi_stop_reason"] = str(info.get("roi_stop_reason") or "")
    for k in ("needs_review", "calibrated"):
        if k in row:
            row[k] = int(bool(row[k]))
    row.update({f"feature_{k}": v for k, v in (info.get("features") or {}).items()})
    return row


def _set_made_name(scene, node, name: str) -> None:
    """Name a new output ``name`` when no other node has it (:func:`_free_name`) and record it
    (:data:`MADE_NAME_ATTRIBUTE`: :func:`refresh_segment_output_names` renames only outputs still so named)."""
    node.SetName(_free_name(scene, name, node))
    node.SetAttribute(MADE_NAME_ATTRIBUTE, node.GetName())


def add_candidate_points(scene, base: str, info: dict):
    """Automatic mode's candidate regions (``result.json`` "candidates") as the locked point list
    "<base> tumour candidates" (:func:`lungai.mrml.candidates_to_markups`) when there is more than one to choose
    from; None otherwise (one region, seed / ROI mode).  The panel (:func:`add_tumour_outputs`) and the demo's
    ``scene.mrb`` (:func:`lungai.scene.demo.build_demo_scene`) add them so."""
    from lungai import mrml

    candidates = info.get("candidates") or []
    if len(candidates) < 2:
        return None
    return mrml.candidates_to_markups(scene, candidates, tumour_node_name(base, "candidates"))


def read_segment_files(output_dir: Path) -> dict:
    """What :func:`import_segment_outputs` reads of ``lungai segment``'s output folder without the scene: its
    result.json ("result") and the uncertainty map ("uncertainty", a float image of the CT's size) - files only, so
    that a panel reads them in a background thread (:class:`LungAICommon.process.ReadingProcess`; the map's gzip took
    0.55-0.75 s on the GUI thread, QA slicer71 LUNG1-003)."""
    from lungai.io import read_image
    from lungai.scene.results import read_segment_result

    output_dir = Path(output_dir)
    info = read_segment_result(output_dir)
    return {"result": info, "uncertainty": read_image(output_dir / "uncertainty.nii.gz")}


def import_segment_outputs(scene, output_dir: Path, volume_node, seg_node=None, replace_segment=None,
                           files: Optional[dict] = None) -> dict:
    """Load what ``lungai segment`` wrote (tumor.nii.gz, uncertainty.nii.gz, result.json) with
    :func:`add_tumour_outputs`; ``files``: :func:`read_segment_files` of ``output_dir`` read already (else read
    here).  The tumour mask is read here, onto the CT node's grid."""
    from lungai import mrml
    from lungai.io import read_mask

    output_dir = Path(output_dir)
    files = read_segment_files(output_dir) if files is None else files
    reference = mrml.volume_node_grid(volume_node)     # its grid: the CT's voxels are not needed (nor copied)
    tumour = read_mask(output_dir / "tumor.nii.gz", reference=reference)
    return add_tumour_outputs(scene, volume_node, tumour, files["uncertainty"], files["result"],
                              seg_node=seg_node, replace_segment=replace_segment)


LUNGS_MADE_BY = "lungai lungs"      # the :data:`MADE_BY_TAG` of the lung segments


def _lungs_kept_reason(seg_node, segment_id: str) -> Optional[str]:
    """Why a new Segment lungs run may not replace the segment (named as one of its lungs), or None: only the
    lungs it made (:data:`LUNGS_MADE_BY`) whose outline is recorded and unchanged (:func:`segment_edited`) are its
    to replace - never the user's segment, nor one the user edited (or may have: :func:`outline_unknown`)."""
    import vtk

    made_by = vtk.reference("")
    segment = seg_node.GetSegmentation().GetSegment(segment_id)
    if not segment.GetTag(MADE_BY_TAG, made_by) or str(made_by) != LUNGS_MADE_BY:
        return "not made by Segment lungs"
    if outline_unknown(seg_node, segment_id):
        return ("made by Segment lungs in a scene of an older version, which did not record its outline: an edit "
                "since cannot be told")
    if segment_edited(seg_node, segment_id):
        return "edited since Segment lungs made it"
    return None


def lungs_to_replace(seg_node, volume_node) -> dict:
    """{segment ID: name} of the segments a new Segment lungs run into ``seg_node`` replaces: those named as its lungs
    (:data:`LUNG_SEGMENTS`) that an earlier run made and nobody edited since (:func:`_lungs_kept_reason`), so that
    running it twice leaves one "Right lung" and one "Left lung", the new run's.  Before, a second run added "Right
    lung (2)" / "Left lung (2)" - names with no lung role - and the dose features, the derived "Lungs" and radiomics
    silently went on using the first run's lungs.  A segment of such a name the run may not replace (the user's, or
    edited since) raises InputError naming it and why (rename, delete, or another output segmentation), before
    anything runs or changes.  {} when the lungs go to a new node (:func:`volume_segmentation`)."""
    seg_node = volume_segmentation(seg_node, volume_node)
    if seg_node is None:
        return {}
    replace, kept, names = _lungs_plan(seg_node)
    others = _other_lungs(seg_node)
    if others:      # e.g. an RTSTRUCT's Lung-Right / Lung-Left: two right lungs for radiomics and the dose features
        listed = " and ".join(others)
        raise InputError(
            f"the segmentation {seg_node.GetName()!r} already has {listed}, "
            f"{'a lung' if len(others) == 1 else 'lungs'} of its own (e.g. from an RTSTRUCT): Segment lungs would add "
            "'Right lung' / 'Left lung' beside them, and Lung Radiomics and the dose features would then find two "
            "segments for one lung and " + ("refuse them" if all(n.endswith("'") for n in others) else
                                             "no longer take one known by its terminology alone as a lung, without a "
                                             "word (two named so: they refuse them)"),
            "to use these lungs, no Segment lungs run is needed (Lung Radiomics and the dose features use them); to "
            "get lungai's lungs as well, choose another output segmentation (or none: a new one '<CT> lungs' is "
            "made) and segment the lungs again")
    # the user's segment coded as a lung beside a lung of that role (Segment lungs' own "Right lung"): the run would
    # put its new lung there, the user's left no lung (QA slicer69)
    hidden = {n: v for n, v in coded_lungs_not_taken(seg_node).items() if not _made_by_lungs(seg_node, n)}
    if hidden:
        name, (role, others) = next(iter(hidden.items()))
        lung, taken, fix = coded_lung_not_taken_text(name, role, others)
        raise InputError(
            f"the segmentation {seg_node.GetName()!r} has {name!r} (the {lung} by its terminology) beside "
            f"{' and '.join(repr(o) for o in others)}: {taken}; Segment lungs would put its new 'Right lung' / "
            f"'Left lung' there, and {name!r} would stay no lung",
            f"{fix} - no Segment lungs run is needed then; to keep both, choose another output segmentation (or none: "
            "a new one '<CT> lungs' is made) and segment the lungs again")
    if kept:
        raise InputError(
            f"the segmentation {seg_node.GetName()!r} already has {' and '.join(kept)}: Segment lungs replaces only "
            "the lungs it made that nobody edited since, and new lungs beside them would be named 'Right lung (2)' / "
            "'Left lung (2)', which the dose features and radiomics' derived 'Lungs' do not use",
            f"to keep {'that segment' if len(kept) == 1 else 'them'}, rename {'it' if len(kept) == 1 else 'them'} "
            f"(e.g. '{names[0]} edited') in the Segment Editor, or delete {'it' if len(kept) == 1 else 'them'}; or "
            "choose another output segmentation (or none: a new one is made); then segment the lungs again")
    return replace


def _coded_lungs(seg_node) -> dict:
    """{name: (structure role, made by Segment lungs)} of ``seg_node``'s segments that are a right or left lung by their
    terminology only (:func:`terminology_roles`: "Segment_1" coded as the right lung, a "Right lung edited" renamed
    from Segment lungs' own)."""
    return {name: (role, _made_by_lungs(seg_node, name)) for name, role in terminology_roles(seg_node).items()
            if role in ("lung_right", "lung_left")}


def coded_lungs_not_taken(seg_node) -> dict:
    """{name: (structure role, [the other segments of that role])} of ``seg_node``'s segments that are a right or left
    lung by their terminology alone but are no lung for Lung Radiomics and the dose (:func:`terminology_roles`): another
    segment is that lung by its name ("Right lung" beside "Segment_1" coded as the right lung: the name wins) or by its
    code too (which of two is not guessed).  QA slicer69 (LUNG1-003: Segment lungs' "Right lung" and the user's
    "Segment_1" coded as the right lung in one segmentation): "Segment_1" was measured as a segment of its own and left
    out of the derived "Lungs", and a new Segment lungs run replaced "Right lung", without a word of it."""
    import vtk
    from lungai.dicom.roles import lung_minus_target, structure_role
    from lungai.terminology import terminology_role

    if seg_node is None:
        return {}
    segmentation = seg_node.GetSegmentation()
    named, coded = {}, {}
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        name = segment.GetName()
        role = structure_role(name)
        if role is not None:
            named.setdefault(role, []).append(name)
            continue
        entry = vtk.reference("")
        if lung_minus_target(name) is None and segment.GetTag("TerminologyEntry", entry):
            role = terminology_role(str(entry))
            if role in ("lung_right", "lung_left"):
                coded[name] = role
    taken = terminology_roles(seg_node)
    return {name: (role, named.get(role, []) + [n for n, r in coded.items() if r == role and n != name])
            for name, role in coded.items() if name not in taken}


def coded_lung_not_taken_text(name: str, role: str, others) -> tuple:
    """(the lung's words, which segment Lung Radiomics and the dose features take as that lung - if any -, how to take
    the user's instead) of a segment :func:`coded_lungs_not_taken` gives."""
    from lungai.dicom.roles import ROLE_WORDS, structure_role

    lung = ROLE_WORDS[role]
    by_name = [o for o in others if structure_role(o) == role]
    listed = " and ".join(repr(o) for o in others)
    if len(by_name) == 1:
        taken = (f"Lung Radiomics and the dose features take {by_name[0]!r} (by its name) as the {lung}, and "
                 f"{name!r} as no lung (measured as a segment of its own, not in 'Lungs')")
    else:
        taken = (f"{listed} {'is' if len(others) == 1 else 'are'} the {lung} too, so Lung Radiomics and the dose "
                 f"features take none of them as the {lung} (which one is not guessed)")
    return lung, taken, (f"to take {name!r} as the {lung}, delete {listed} (or move "
                         f"{'it' if len(others) == 1 else 'them'} to another segmentation)")


def coded_lungs_not_taken_notes(seg_node, names) -> list:
    """A note per segment :func:`coded_lungs_not_taken` gives whose lung is measured: it, or a segment of its role,
    is among ``names`` (the measured segments)."""
    notes = []
    for name, (role, others) in coded_lungs_not_taken(seg_node).items():
        if name in names or any(o in names for o in others):
            lung, taken, fix = coded_lung_not_taken_text(name, role, others)
            notes.append(f"{name!r} is the {lung} by its terminology, but {taken}; {fix}")
    return notes


def _made_by_lungs(seg_node, name: str) -> bool:
    """Whether the segment ``name`` of ``seg_node`` is one Segment lungs made (:data:`LUNGS_MADE_BY`)."""
    import vtk

    segmentation = seg_node.GetSegmentation()
    made_by = vtk.reference("")
    segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
    return segment is not None and bool(segment.GetTag(MADE_BY_TAG, made_by)) and str(made_by) == LUNGS_MADE_BY


def _other_lungs(seg_node) -> list:
    """Names of ``seg_node``'s segments that are a right or left lung by their role under another name than Segment
    lungs gives (:data:`LUNG_SEGMENTS`): by their name ("Lung-Right", "Lung_L" ...: :func:`segment_role`) or by their
    terminology (:func:`terminology_roles`, the role Lung Radiomics and the dose take them by: "Segment_1" coded as the
    right lung; QA slicerfollow68: Segment lungs added "Right lung" beside it, and it silently stopped being a lung),
    the latter as "'Segment_1' (the right lung by its terminology)".  Not a lung Segment lungs made that the user
    renamed to keep it (as :func:`lungs_to_replace` tells to: "Right lung edited"): the new run's lungs are the lungs
    then, said by :func:`renamed_lungs_note`."""
    from lungai.dicom.roles import ROLE_WORDS
    from lungai.segment_roles import segment_role

    coded = _coded_lungs(seg_node)
    segmentation = seg_node.GetSegmentation()
    names = [segmentation.GetSegment(segmentation.GetNthSegmentID(i)).GetName()
             for i in range(segmentation.GetNumberOfSegments())]
    named = [f"'{n}'" for n in names if n not in LUNG_SEGMENTS.values() and segment_role(n) in ("right_lung", "left_lung")]
    return named + [f"'{n}' (the {ROLE_WORDS[role]} by its terminology)" for n, (role, own) in coded.items() if not own]


def renamed_lungs_note(seg_node, renamed: dict) -> Optional[str]:
    """The note of a Segment lungs run into ``seg_node`` that held lungs an earlier run made, renamed by the user
    (``renamed``: :func:`_coded_lungs`' own ones, before the run): by their terminology they were the right / left
    lung; beside the new run's they are no longer (which of two is not guessed: :func:`terminology_roles`)."""
    from lungai.dicom.roles import ROLE_WORDS

    lost = {n: role for n, (role, own) in renamed.items() if own and n not in terminology_roles(seg_node)}
    if not lost:
        return None
    listed = " and ".join(f"'{n}' (the {ROLE_WORDS[r]} by its terminology until now)" for n, r in lost.items())
    return (f"{listed} of {seg_node.GetName()} {'is' if len(lost) == 1 else 'are'} no longer taken as a lung by Lung "
            "Radiomics and the dose features: this run's 'Right lung' / 'Left lung' are; to use "
            f"{'it' if len(lost) == 1 else 'them'} instead, delete this run's lung of that side")


def _lungs_blockers(seg_node) -> list:
    """The segments of ``seg_node`` for which :func:`lungs_to_replace` refuses a Segment lungs run into it, as
    "'<name>' (<why>)" / "'<name>'": lungs of its names it may not replace (:func:`_lungs_plan`), lungs of other names
    (:func:`_other_lungs`), the user's segments coded as a lung beside one of that role
    (:func:`coded_lungs_not_taken`)."""
    from lungai.dicom.roles import ROLE_WORDS

    hidden = [f"'{n}' (the {ROLE_WORDS[role]} by its terminology)"
              for n, (role, _) in coded_lungs_not_taken(seg_node).items() if not _made_by_lungs(seg_node, n)]
    return _lungs_plan(seg_node)[1] + _other_lungs(seg_node) + hidden


def _lungs_plan(seg_node) -> tuple:
    """({segment ID: name} a Segment lungs run into ``seg_node`` replaces, ["'<name>' (<why kept>)"], [names kept]):
    :func:`lungs_to_replace` without its refusal."""
    segmentation = seg_node.GetSegmentation()
    replace, kept, names = {}, [], []
    for i in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(i)
        name = segmentation.GetSegment(segment_id).GetName()
        if name not in LUNG_SEGMENTS.values():
            continue
        why = _lungs_kept_reason(seg_node, segment_id)
        if why or name in replace.values():          # a second segment of that name: not told which is meant
            kept.append(f"'{name}' ({why or 'a second segment of that name'})")
            names.append(name)
        else:
            replace[segment_id] = name
    return replace, kept, names


def replaced_lungs_note(seg_node, names) -> Optional[str]:
    """The note of a Segment lungs run that replaced an earlier run's lungs (:func:`lungs_to_replace`), else None."""
    names = list(names)
    if not names:
        return None
    return (f"{' and '.join(repr(n) for n in names)} of {seg_node.GetName()} (an earlier Segment lungs run's, not "
            "edited since) replaced by this run's")


def add_lung_outputs(scene, volume_node, labels: sitk.Image, seg_node=None, notes: Optional[list] = None,
                     checked: bool = False):
    """"Right lung" / "Left lung" segments from a label image (1 right, 2 left); returns
    (segmentation node, {name: volume in ml}).  ``seg_node`` is used when it belongs to this CT
    (:func:`volume_segmentation`); a new node is called "<CT> lungs".  An earlier run's lungs there, not edited
    since, are replaced in place (name, colour, order kept), the note of it (:func:`replaced_lungs_note`) appended
    to ``notes``; a segment of those names the run may not replace raises InputError before anything changes
    (:func:`lungs_to_replace`).

    ``checked``: the run was checked with :func:`lungs_to_replace` when it started (the panel's Segment lungs,
    :func:`lungai.scene.lungs.segment_lungs_node`), so such a segment is one the user edited (or made, or renamed to a
    lung's name) while the run went on, in the Segment Editor.  Before, the run's result was then refused at the end
    and lost (its work folder deleted).  Now nothing is overwritten nor lost: ``seg_node`` is left as it is, this
    run's lungs go to a new node "<CT> lungs" and ``notes`` says why (:func:`edited_during_run_note`).  So for a lung
    of another name added meanwhile ("Lung-Right", "Segment_1" coded as the right lung: :func:`_lungs_blockers`; QA
    slicer69: refused on load, the run's lungs lost)."""
    import numpy as np
    import SimpleITK as sitk
    from lungai import mrml

    during = None
    if checked and volume_segmentation(seg_node, volume_node) is not None:
        # what lungs_to_replace refuses (QA slicer69: a lung added during the run - "Lung-Right", "Segment_1" coded
        # as one - was refused on load and the run's lungs lost, as an edit once was)
        blockers = _lungs_blockers(volume_segmentation(seg_node, volume_node))
        if blockers:
            during, seg_node = edited_during_run_note(seg_node, blockers), None
    replace = {name: segment_id for segment_id, name in lungs_to_replace(seg_node, volume_node).items()}
    seg_node = volume_segmentation(seg_node, volume_node)
    new_node = seg_node is None
    renamed = {} if new_node else _coded_lungs(seg_node)
    volumes = {}
    from lungai.volume import voxel_ml      # the one voxel volume (numpy: not at this module's start-up)

    ml_per_voxel = voxel_ml(labels.GetSpacing())
    arr = sitk.GetArrayViewFromImage(labels)
    for value, name in LUNG_SEGMENTS.items():
        # the lung's voxels once, in numpy (QA slicer68: SimpleITK's Equal + Cast and a second comparison for the
        # volume took 0.3-0.4 s a lung of LUNG1-003 on the GUI thread)
        inside = np.equal(arr, value)
        mask = sitk.GetImageFromArray(inside.view(np.uint8))
        mask.CopyInformation(labels)
        seg_node, segment_id = mrml.mask_to_segment(scene, mask, name, seg_node=seg_node,
                                                    replace_segment=replace.get(name),
                                                    reference_volume_node=volume_node)
        mark_made_by(seg_node, segment_id, LUNGS_MADE_BY)
        set_source_volume(seg_node, volume_node)
        volumes[name] = float(np.count_nonzero(inside)) * ml_per_voxel
    if new_node:
        seg_node.SetName(scene.GenerateUniqueName(f"{volume_node.GetName()} lungs"))
    note = replaced_lungs_note(seg_node, replace) or (during and f"{during} {seg_node.GetName()!r}")
    for text in (note, renamed_lungs_note(seg_node, renamed)):
        if text and notes is not None:
            notes.append(text)
    return seg_node, volumes


def edited_during_run_note(seg_node, kept) -> str:
    """The start of the note of a Segment lungs run whose output segmentation changed while it ran
    (:func:`add_lung_outputs` ``checked``); the name of the new node that holds the run's lungs ends it."""
    return (f"{seg_node.GetName()!r} got {' and '.join(kept)} while Segment lungs ran: left as it is (nothing "
            "overwritten), this run's lungs are in the new segmentation")


def import_lung_outputs(scene, labels_path: Path, volume_node, seg_node=None, notes: Optional[list] = None,
                        checked: bool = False, printed=None):
    """Load the label file of ``lungai lungs`` with :func:`add_lung_outputs` (``notes``: its notes appended, an earlier
    run's lungs replaced); returns (segmentation node,
    {name: ml}, cut): ``cut`` the warnings of lungs cut by the scan that the command printed
    (:func:`lungai.lungs.segment.scan_cut_notes`) and that of a map with one lung label missing
    (:func:`lungai.lungs.check.lung_map_notes`: a CT showing one lung, whose right/left label is uncertain), and that
    of a lung much smaller than the other (:func:`lungai.lungs.segment.small_lung_notes`: its aerated part only).

    ``printed``: the run's output lines.  When they show the run completed (its summary line,
    :func:`lungai.scene.results.lungs_run_completed`), it printed its scan-cut and small-lung warnings
    (``LungResult.warnings``), so they are not re-derived from the label file: QA slicer67, that took 4.8 s of the
    9.6 s Lung AI Segmentation's *Segment lungs* spent on the GUI thread after its bar reached 100 % (LUNG1-003), for
    the warnings it had printed - the panel's message is the same (:func:`lungai.scene.results.lungs_warnings` takes
    the printed ones first)."""
    from lungai import mrml
    from lungai.io import read_mask
    from lungai.lungs.check import lung_map_notes
    from lungai.scene.results import lungs_run_completed

    ct = mrml.image_from_volume_node(volume_node)
    labels = read_mask(Path(labels_path), reference=ct)
    derived = []
    if not lungs_run_completed(printed or ()):
        from lungai.lungs.segment import scan_cut_notes, small_lung_notes

        derived = scan_cut_notes(labels, ct) + small_lung_notes(labels)
    return (*add_lung_outputs(scene, volume_node, labels, seg_node=seg_node, notes=notes, checked=checked),
            derived + lung_map_notes(labels, check_volume=False))


def table_from_csv(scene, path: Path, name: str, node=None, where: Optional[dict] = None, volume_node=None,
                   made_by: str = "", segmentation_node=None, dose_node=None):
    """A table node with the contents of a CSV file (numbers as numbers, case / patient ids as text:
    :func:`read_results_csv`); ``where`` ({column: value}) keeps only the rows with those values (compared as
    text).  With ``volume_node`` the table holds that CT's results: :func:`volume_table` (``node`` is reused only
    when it holds this same CT's results, else the CT's own table of a ``made_by`` run; ``segmentation_node``: the
    segmentation the results are of - another one's table is kept; ``dose_node``: the dose volume of a dose table,
    likewise)."""
    from lungai import mrml

    df = read_results_csv(path)
    for column, value in (where or {}).items():
        df = df[df[column].astype(str) == str(value)]
    if volume_node is not None:
        return volume_table(scene, df, name, volume_node, node=node, made_by=made_by,
                            segmentation_node=segmentation_node, dose_node=dose_node)
    return mrml.table_node_from_dataframe(scene, df, name, node=node)


# the text columns of lungai's result CSVs besides the ids: often empty in every row (no notes, a lung not cut), which
# pandas reads as a float column of NaN - "nan" in Slicer's table.  The stage predictions (lungai.fusion.api
# predict_frame: ``model``, ``predicted``, ``status``, ``notes``), the dose features (lungai.dose.features: ``masks``,
# ``lungs_cut``, ``rtdose_notes``), the RP risk (lungai rp predict: ``imputed``, ``withheld``, ``out_of_range``,
# ``warnings``), lungai cohort's rp_table.csv (lungai.dicom.cohort.TABLE_FIRST: ``provenance``, ``tumour_review``,
# ``tumour_notes``, ``tumour_confidence_caveat``, ``lung_notes``; QA cohortfollow72: read as float NaN when empty).
RESULT_TEXT_COLUMNS = ("model", "predicted", "status", "notes", "masks", "lungs_cut", "rtdose_notes",
                       "imputed", "withheld", "out_of_range", "warnings",
                       "provenance", "tumour_review", "tumour_notes", "tumour_confidence_caveat", "lung_notes")


def read_results_csv(path: Path, text=(), **kw):
    """A CSV of results (a command's output) as a DataFrame: its case / patient id columns (``case``,
    ``patient_id``, ``id``: :data:`lungai.rp.columns.ID_NAMES`) and its text columns (:data:`RESULT_TEXT_COLUMNS`
    and those named in ``text``) as the text written - "001" stays "001" (pandas would read 1), an empty cell stays
    "" (a text column empty in every row is text, not NaN shown "nan") -, the other columns as pandas reads them
    (numbers as numbers, empty numbers NaN: a feature not computed stays a number column; ``kw``: more
    ``pandas.read_csv`` arguments, e.g. ``keep_default_na=False`` for a one-row table whose empty cells are text)."""
    import pandas as pd
    from lungai.io.tables import id_columns_named, read_csv_text_ids
    from lungai.rp.columns import ID_NAMES

    df = read_csv_text_ids(path, id_columns_named(ID_NAMES), **kw)
    named = {str(c).strip().lower() for c in (*ID_NAMES, *RESULT_TEXT_COLUMNS, *text)}
    columns = [c for c in df.columns if str(c).strip().lower() in named]
    if columns and len(df):
        cells = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False)
        for column in columns:
            df[column] = cells[column].to_numpy()
    return df


# table / segmentation node reference role (and, in scenes saved before, attribute): the CT volume node whose
# results the node holds (radiomics, dose features; lungai's tumour and lung segmentations: volume_segmentation).
# A reference, not an attribute holding an ID: MRML renames references when a saved scene is imported into a scene
# whose node IDs clash (Add Data of a .mrml / .mrb), never attributes - "A tumour" would then name CT B.
SOURCE_VOLUME_ATTRIBUTE = "LungAI.sourceVolume"


def set_source_volume(node, volume_node):
    """Link ``node`` (a table, segmentation or volume of results) to its CT: node reference
    :data:`SOURCE_VOLUME_ATTRIBUTE` (the attribute of older versions is removed), and put it in its CT's subject
    hierarchy folder (:func:`place_beside_ct`); returns the node."""
    node.SetNodeReferenceID(SOURCE_VOLUME_ATTRIBUTE, volume_node.GetID())
    node.RemoveAttribute(SOURCE_VOLUME_ATTRIBUTE)
    return place_beside_ct(node, volume_node)


def place_beside_ct(node, volume_node):
    """Put ``node``, a result of the CT ``volume_node``, in the CT's subject hierarchy folder - the study Slicer's
    DICOM module loads a CT series into, or a folder the user moved the CT to - when it sits at the top level of the
    scene (where Slicer puts a new node); a node the user moved into a folder of their own stays there, and nothing
    moves when the CT is itself at the top level.  So a patient's results are listed under the patient in the Data
    module, and a segmentation is where *Export to DICOM* needs it, under the CT's study (QA panels64: every result
    sat at the top level, away from its patient).  Returns the node."""
    scene = node.GetScene() if node is not None else None
    if scene is None or volume_node is None or volume_node.GetScene() is not scene:
        return node
    sh = scene.GetFirstNodeByClass("vtkMRMLSubjectHierarchyNode")   # none: no hierarchy (nor one made here)
    ct_item = sh.GetItemByDataNode(volume_node) if sh is not None else 0
    folder = sh.GetItemParent(ct_item) if ct_item else 0
    if not folder or folder == sh.GetSceneItemID():
        return node
    # Slicer gives each new data node its item at the top level; a scene without the application may not have
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    if item and sh.GetItemParent(item) == sh.GetSceneItemID():
        sh.SetItemParent(item, folder)
    return node


def relink_source_volume(node, volume_node):
    """Link a result node that a run reuses (a panel's output node, written again) to this run's CT - or, with
    ``volume_node`` None, to no CT (its reference :data:`SOURCE_VOLUME_ATTRIBUTE` and the attribute of older versions
    removed) -, and file it anew: a node still in its earlier CT's subject hierarchy folder (where
    :func:`place_beside_ct` put it) goes back to the top level first, then to this CT's folder
    (:func:`set_source_volume`); a node the user moved into a folder of their own stays there.  So a result
    rewritten for another patient never stays under the earlier patient's study.  Returns the node."""
    scene = node.GetScene() if node is not None else None
    if scene is None:
        return node
    earlier = scene.GetNodeByID(source_volume_id(node)) if source_volume_id(node) else None
    sh = scene.GetFirstNodeByClass("vtkMRMLSubjectHierarchyNode")
    if earlier is not None and earlier is not volume_node and sh is not None:
        item, earlier_item = sh.GetItemByDataNode(node), sh.GetItemByDataNode(earlier)
        folder = sh.GetItemParent(earlier_item) if earlier_item else 0
        if item and folder and folder != sh.GetSceneItemID() and sh.GetItemParent(item) == folder:
            sh.SetItemParent(item, sh.GetSceneItemID())
    if volume_node is None:
        node.RemoveNodeReferenceIDs(SOURCE_VOLUME_ATTRIBUTE)
        node.RemoveAttribute(SOURCE_VOLUME_ATTRIBUTE)
        return node
    return set_source_volume(node, volume_node)


def source_volume_id(node) -> str:
    """The ID of the CT whose results ``node`` holds, "" when unknown: its reference :data:`SOURCE_VOLUME_ATTRIBUTE`;
    in a scene saved by an older version the attribute, trusted for a segmentation only when its reference
    geometry is that same volume (references follow an import, the attribute does not), for a table when it
    has no reference."""
    if node is None:
        return ""
    reference = node.GetNodeReferenceID(SOURCE_VOLUME_ATTRIBUTE)
    if reference:
        return reference
    old = node.GetAttribute(SOURCE_VOLUME_ATTRIBUTE) or ""
    if old and node.IsA("vtkMRMLSegmentationNode") and \
            node.GetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole()) != old:
        return ""
    return old


# table node attribute: the name lungai gave a table of results (:func:`named_table`).  A table whose name differs
# was renamed by the user: it is theirs from then on - a run makes a new table, never overwrites or renames it.
MADE_NAME_ATTRIBUTE = "LungAI.madeName"


# table node attribute: a digest of the cells of a table of results as the run wrote them (:func:`named_table`,
# :func:`cells_digest`).  A table whose cells differ from it was edited by the user (a value corrected, a note
# typed in Slicer's table view, a row deleted): it is theirs from then on, as a renamed one - a run makes a new
# table, never overwrites it (QA scene62: a rerun of Lung Radiomics wrote its values over a corrected cell, silently)
MADE_CELLS_ATTRIBUTE = "LungAI.madeCells"


def cells_digest(node, as_saved: bool = True) -> str:
    """A digest of a table node's columns (names, order) and cells as :func:`lungai.mrml.dataframe_from_table_node`
    reads them - a number's exact value, also after Slicer saved and reloaded the scene (6 digits in its file), so a
    reload is no edit -, leaving out the :data:`OUTLINE_COLUMN` (lungai's refresh writes it when measured segments
    change: :func:`refresh_confidence_tables`).  Text (column names, text cells) is taken as
    :func:`lungai.mrml.save_scene` saves it (:func:`lungai.mrml.saved_table_text`: '"' and line breaks replaced), so
    a table saved and reloaded is no edit either (QA scenemisc62: a segment named 'GTV "primary"' - a column of the
    radiomics table - made the table "edited" after a save and reload; the next run wrote a new table);
    ``as_saved=False``: the text as it is (the digest recorded before that)."""
    import hashlib
    import numbers

    from lungai import mrml

    text = mrml.saved_table_text if as_saved else str
    frame = mrml.dataframe_from_table_node(node)
    digest = hashlib.blake2b(digest_size=12)
    for position, column in enumerate(frame.columns):
        if column == OUTLINE_COLUMN:
            continue
        values = frame.iloc[:, position].tolist()
        cells = [repr(float(v)) if isinstance(v, numbers.Number) else "t" + text(str(v)) for v in values]
        digest.update(("\x1f".join([text(str(column))] + cells) + "\x1e").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def table_edited(node) -> bool:
    """Whether a table a run made (:func:`named_table`) was edited since: its cells are no longer those the run wrote
    (:data:`MADE_CELLS_ATTRIBUTE`; a digest recorded before text was compared as saved is accepted too).  A table of
    an older version (no digest) cannot be told: False."""
    made = node.GetAttribute(MADE_CELLS_ATTRIBUTE) if node is not None else None
    return bool(made) and node.GetTable() is not None and cells_digest(node) != made \
        and cells_digest(node, as_saved=False) != made


def _own_by_name(node, name: str) -> bool:
    made = node.GetAttribute(MADE_NAME_ATTRIBUTE)
    return node.GetName() == made if made is not None else _named(node, name)


def own_table(node, name: str):
    """``node`` when a run may update it: its name is still the one lungai gave it (:data:`MADE_NAME_ATTRIBUTE`;
    in a scene saved before that attribute, its name is ``name``, the name the run gives) and its cells are still
    those the run wrote (:func:`table_edited`), else None (a table the user renamed, e.g. "LUNG1-002 radiomics" ->
    "LUNG1-002 before surgery", or edited, is kept as it is: :func:`edited_tables_note` says so)."""
    if node is None or not _own_by_name(node, name) or table_edited(node):
        return None
    return node


def edited_tables_note(table) -> str:
    """For a panel's message after "-> table 'T'": " (kept as it is: 'T0', edited since the run that made it)" -
    the tables of ``table``'s kind of results (made by the same kind of run, of the same CT, segmentation, dose, batch
    output; without a CT, of the same cases) still under the name lungai gave them whose cells the user edited
    (:func:`table_edited`): the run wrote its results into ``table`` instead; "" when there are none."""
    scene = table.GetScene() if table is not None else None
    if scene is None:
        return ""

    def kind(node):
        return (node_made_by(node), source_volume_id(node), source_segmentation_id(node), source_dose_name(node),
                node.GetAttribute(BATCH_OUTPUT_ATTRIBUTE))

    kept = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node is table or not node.GetAttribute(MADE_CELLS_ATTRIBUTE) or kind(node) != kind(table) \
                or not _own_by_name(node, node.GetName()):
            continue
        if not source_volume_id(table) and \
                [row.get("case") for row in table_rows(node)] != [row.get("case") for row in table_rows(table)]:
            continue
        if table_edited(node):
            kept.append(f"'{node.GetName()}'")
    if not kept:
        return ""
    return (f" (kept as it is: {', '.join(kept)}, edited since the run that made "
            f"{'it' if len(kept) == 1 else 'them'} - a run never writes over a table the user changed)")


def renamed_table_note(previous, table) -> str:
    """For a panel's message after "-> table 'T'": " ('P' (renamed since the run that made it) is kept as it is - a run
    never writes over a table the user changed)" when ``previous`` (the output table the run was given) is a table of
    the same kind of run and CT as ``table`` that the user renamed (:func:`own_table`), so the run wrote ``table``
    instead; "" otherwise.  QA slicerfollow66: the renamed table was kept and a new one made without a word of it."""
    if previous is None or previous is table or table is None or previous.GetScene() is None:
        return ""
    made = previous.GetAttribute(MADE_NAME_ATTRIBUTE)
    if made is None or previous.GetName() == made or node_made_by(previous) != node_made_by(table) \
            or source_volume_id(previous) != source_volume_id(table):
        return ""
    return (f" ('{previous.GetName()}' (renamed since the run that made it) is kept as it is - a run never writes over "
            "a table the user changed)")


def named_table(scene, df, name: str, node=None):
    """A table node ``name`` holding ``df``: ``node`` updated when :func:`own_table` (renamed to ``name`` when
    the name lungai gave it has changed since: its CT was renamed), else a new node; the name given and the cells
    written are recorded (:data:`MADE_NAME_ATTRIBUTE`, :data:`MADE_CELLS_ATTRIBUTE`)."""
    from lungai import mrml

    # the name as given when no other node has it (the scene's GenerateUniqueName counts up whatever the names)
    def free():
        return name if scene.GetFirstNodeByName(name) is None else scene.GenerateUniqueName(name)

    node = own_table(node, name)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", free())
    elif not _named(node, name):       # the same CT renamed since
        node.SetName(free())
    node = mrml.table_node_from_dataframe(scene, df, name, node=node)
    node.SetAttribute(MADE_NAME_ATTRIBUTE, node.GetName())
    node.SetAttribute(MADE_CELLS_ATTRIBUTE, cells_digest(node))     # an edit since makes it the user's (own_table)
    return node


def _named(node, name: str) -> bool:
    """``node`` is called ``name`` or ``name`` made unique by the scene ("<name>_1")."""
    import re

    return re.fullmatch(re.escape(name) + r"(_\d+)?", node.GetName() or "") is not None


# MADE_BY_TAG of the tables of a CT's results (volume_table): the kind of run that made them, so that a run finds its
# CT's own table of that kind in the scene (find_volume_table) - a CT's radiomics table is not its dose table
RADIOMICS_MADE_BY = "lungai radiomics"
DOSE_MADE_BY = "lungai dose-features"


# MADE_BY_TAG of the table of a radiomics batch's output CSV (Lung Radiomics' Batch), whose path it records
# (BATCH_OUTPUT_ATTRIBUTE): a batch run again into the same CSV updates it, nothing else does (batch_table)
BATCH_MADE_BY = "lungai radiomics-batch"
BATCH_OUTPUT_ATTRIBUTE = "LungAI.batchOutput"


def batch_table(scene, path, node=None):
    """The table node of a radiomics batch's output CSV ``path`` (named after its stem), tagged :data:`BATCH_MADE_BY`.
    ``node`` (the panel's output table) is updated only when it holds this same CSV's earlier results (a batch run
    again: its :data:`BATCH_OUTPUT_ATTRIBUTE`) and was not renamed by the user (:func:`own_table`); any other table -
    a user's table picked in the output selector (which lists every table), one CT's features table, another batch's
    - is kept as it is and a new node is made (QA slicerdose59: a user's table chosen as output was overwritten by
    the batch's features, its name kept)."""
    path = Path(path)
    where = str(path.resolve())
    if node is not None and (node_made_by(node) != BATCH_MADE_BY or node.GetAttribute(BATCH_OUTPUT_ATTRIBUTE) != where):
        node = None
    node = named_table(scene, read_results_csv(path), path.stem, node=node)
    node.SetAttribute(BATCH_OUTPUT_ATTRIBUTE, where)
    return mark_node_made_by(node, BATCH_MADE_BY)


# table node reference role: the segmentation whose segments a CT's results table was computed from (radiomics,
# dose features: volume_table).  A second run on the same CT with another segmentation (the AI's vs the clinical
# contours) makes its own table, named after that segmentation: the first run's table is kept.
SOURCE_SEGMENTATION_REFERENCE = "LungAI.sourceSegmentation"
# table node attribute "1": the table's name has its segmentation's name appended (volume_table)
NAMED_AFTER_SEGMENTATION_ATTRIBUTE = "LungAI.namedAfterSegmentation"
# table node attributes: the name and ID of that segmentation when the table was made.  MRML drops the reference when
# the segmentation node is deleted: the table is then still another segmentation's (source_segmentation_name), kept,
# not one of an older version (no link at all) that any segmentation's run reuses.
SOURCE_SEGMENTATION_NAME_ATTRIBUTE = "LungAI.sourceSegmentationName"
SOURCE_SEGMENTATION_ID_ATTRIBUTE = "LungAI.sourceSegmentationID"
# the kinds of tables computed from a segmentation: a CT's tables of them share the "(<segmentation>)" suffix
SEGMENTATION_TABLE_KINDS = (RADIOMICS_MADE_BY, DOSE_MADE_BY)


def source_segmentation_id(node) -> str:
    """The ID of the segmentation whose results table ``node`` is (:data:`SOURCE_SEGMENTATION_REFERENCE`), "" when
    unknown (a table of an older version, or its segmentation removed from the scene)."""
    return (node.GetNodeReferenceID(SOURCE_SEGMENTATION_REFERENCE) or "") if node is not None else ""


def source_segmentation_name(node) -> str:
    """The name of the segmentation whose results table ``node`` is: the segmentation's (still in the scene) name,
    else the name stored when the table was made (:data:`SOURCE_SEGMENTATION_NAME_ATTRIBUTE`; the segmentation
    deleted since), "" for a table of an older version."""
    if node is None:
        return ""
    seg_id, scene = source_segmentation_id(node), node.GetScene()
    seg = scene.GetNodeByID(seg_id) if seg_id and scene is not None else None
    return seg.GetName() if seg is not None else (node.GetAttribute(SOURCE_SEGMENTATION_NAME_ATTRIBUTE) or "")


# table node reference role and attributes: the dose volume a CT's dose table was computed from (Lung Radiomics).  A
# run with another dose on the same CT and segmentation (plan B after plan A) makes its own table "<name> (<dose>)"
# and keeps the other; the same dose again updates its own.  The name and ID stay when the dose node is deleted.
SOURCE_DOSE_REFERENCE = "LungAI.sourceDose"
SOURCE_DOSE_NAME_ATTRIBUTE = "LungAI.sourceDoseName"
SOURCE_DOSE_ID_ATTRIBUTE = "LungAI.sourceDoseID"
NAMED_AFTER_DOSE_ATTRIBUTE = "LungAI.namedAfterDose"     # "1": the table's name has its dose's name appended
DOSE_COLUMN = "dose"     # the dose table's column naming its dose volume (after ``case``), the name the user sees


def source_dose_name(node) -> str:
    """The name of the dose volume whose dose table ``node`` is: the dose node's (still in the scene) name, else the
    name stored when the table was made (:data:`SOURCE_DOSE_NAME_ATTRIBUTE`), "" for a table of no known dose."""
    if node is None:
        return ""
    dose_id, scene = node.GetNodeReferenceID(SOURCE_DOSE_REFERENCE) or "", node.GetScene()
    dose = scene.GetNodeByID(dose_id) if dose_id and scene is not None else None
    return dose.GetName() if dose is not None else (node.GetAttribute(SOURCE_DOSE_NAME_ATTRIBUTE) or "")


def _of_dose(node, dose_node) -> bool:
    """``node`` may hold the results of ``dose_node``: it is that dose's table, or one of no known dose (older
    versions), or no dose is given.  A table of a deleted dose node is another dose's."""
    if dose_node is None:
        return True
    made = node.GetNodeReferenceID(SOURCE_DOSE_REFERENCE) or ""
    if made:
        return made == dose_node.GetID()
    return not (node.GetAttribute(SOURCE_DOSE_ID_ATTRIBUTE) or node.GetAttribute(SOURCE_DOSE_NAME_ATTRIBUTE))


def other_dose_tables(table) -> list:
    """The other tables of ``table``'s CT and segmentation made by the same kind of run from another dose volume
    (kept by :func:`volume_table`), in scene order."""
    scene, volume_id = table.GetScene() if table is not None else None, source_volume_id(table)
    if scene is None or not volume_id:
        return []
    mine = table.GetNodeReferenceID(SOURCE_DOSE_REFERENCE) or table.GetAttribute(SOURCE_DOSE_ID_ATTRIBUTE) or ""
    out = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node is not table and source_volume_id(node) == volume_id and node_made_by(node) == node_made_by(table) \
                and source_segmentation_id(node) == source_segmentation_id(table) \
                and (node.GetNodeReferenceID(SOURCE_DOSE_REFERENCE) or node.GetAttribute(SOURCE_DOSE_ID_ATTRIBUTE)
                     or "") != mine:
            out.append(node)
    return out


def dose_table_note(table) -> str:
    """For a panel's message after "-> table 'T'": " (dose 'D'; kept: 'T2' of dose 'D2')" - the dose volume the table
    is of, and the tables of this CT and segmentation of other doses the run left as they were; "" for a table of no
    known dose."""
    dose = source_dose_name(table)
    if not dose:
        return ""
    kept = ", ".join(f"'{other.GetName()}'" + (f" of dose '{source_dose_name(other)}'" if source_dose_name(other)
                                               else "") for other in other_dose_tables(table))
    return f" (dose '{dose}'" + (f"; kept: {kept}" if kept else "") + ")"


def _of_deleted_segmentation(node) -> bool:
    """``node`` was made from a segmentation no longer in the scene (its name stored, the reference dropped)."""
    return not source_segmentation_id(node) and bool(node.GetAttribute(SOURCE_SEGMENTATION_ID_ATTRIBUTE)
                                                      or node.GetAttribute(SOURCE_SEGMENTATION_NAME_ATTRIBUTE))


def _of_segmentation(node, segmentation_node) -> bool:
    """``node`` may hold the results of ``segmentation_node``: it is that segmentation's table, or one of no known
    segmentation (older versions), or no segmentation is given.  A table of a deleted segmentation is another
    segmentation's (:func:`source_segmentation_name`)."""
    if segmentation_node is None:
        return True
    made = source_segmentation_id(node)
    return made == segmentation_node.GetID() if made else not _of_deleted_segmentation(node)


def _named_after_segmentation(scene, volume_node, segmentation_node, made_by: str) -> bool:
    """Whether a new ``made_by`` table of ``volume_node``'s results from ``segmentation_node`` gets the
    "(<segmentation>)" suffix, one decision for the CT's radiomics and dose tables (:data:`SEGMENTATION_TABLE_KINDS`)
    so that one segmentation's tables match: suffixed when a table of this kind of another segmentation (or of an
    older version) holds the plain name; else as the CT's table of this segmentation of the other kind, when there is
    one; else when the CT has a radiomics or dose table of another segmentation (also of one deleted since)."""
    same_kind_plain, sibling, other_segmentation = False, None, False
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        other = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node_made_by(other) not in SEGMENTATION_TABLE_KINDS or source_volume_id(other) != volume_node.GetID():
            continue
        if source_segmentation_id(other) == segmentation_node.GetID():
            sibling = other if sibling is None else sibling
            continue
        other_segmentation = other_segmentation or bool(source_segmentation_id(other)) \
            or _of_deleted_segmentation(other)
        same_kind_plain = same_kind_plain or (node_made_by(other) == made_by
                                              and other.GetAttribute(NAMED_AFTER_SEGMENTATION_ATTRIBUTE) != "1")
    if same_kind_plain:
        return True
    if sibling is not None:
        return sibling.GetAttribute(NAMED_AFTER_SEGMENTATION_ATTRIBUTE) == "1"
    return other_segmentation


def own_volume_table(node, volume_node, name: str, made_by: str = "", segmentation_node=None, dose_node=None):
    """``node`` when it holds ``volume_node``'s results (:func:`source_volume_id`) - with ``segmentation_node``,
    of that segmentation (:func:`source_segmentation_id`; a table of no known segmentation may be), with
    ``dose_node`` of that dose volume (:func:`source_dose_name`; likewise) -, is lungai's
    to update (:func:`own_table`) and, with ``made_by``, was not made by another kind of run (a table with no
    :data:`MADE_BY_TAG`, of an older version, may be), else None."""
    if node is None or volume_node is None or source_volume_id(node) != volume_node.GetID():
        return None
    if made_by and node_made_by(node) not in ("", made_by):
        return None
    if not _of_segmentation(node, segmentation_node) or not _of_dose(node, dose_node):
        return None
    return own_table(node, name)


def find_volume_table(scene, volume_node, name: str, made_by: str, case=None, segmentation_node=None,
                      dose_node=None):
    """The table an earlier ``made_by`` run made in ``scene`` for ``volume_node`` (linked to it:
    :func:`source_volume_id`; with ``volume_node`` None, a table linked to no CT whose ``case`` cells are
    ``[case]``) - with ``segmentation_node``, of that segmentation or of none known (:func:`_of_segmentation`) -
    and the user has not renamed nor edited (:func:`own_table`) - with ``dose_node``, of that dose volume or of none
    known (:func:`_of_dose`) -, else None."""
    if not made_by or scene is None:
        return None
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node_made_by(node) != made_by or not _of_segmentation(node, segmentation_node) \
                or not _of_dose(node, dose_node):
            continue
        if volume_node is not None and source_volume_id(node) == volume_node.GetID() \
                or volume_node is None and not source_volume_id(node) and \
                [row.get("case") for row in table_rows(node)] == [str(case)]:
            if own_table(node, name) is not None:       # last: it reads the cells (table_edited)
                return node
    return None


def other_segmentation_tables(table) -> list:
    """The other tables of ``table``'s CT made by the same kind of run from another segmentation (kept by
    :func:`volume_table`), in scene order."""
    scene, volume_id = table.GetScene() if table is not None else None, source_volume_id(table)
    if scene is None or not volume_id:
        return []
    out = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
        if node is not table and source_volume_id(node) == volume_id and node_made_by(node) == node_made_by(table) \
                and source_segmentation_id(node) != source_segmentation_id(table):
            out.append(node)
    return out


def segmentation_table_note(table, segmentation_node) -> str:
    """For a panel's message after "-> table 'T'": " (of segmentation 'S'; kept: 'T2' of another segmentation)" -
    which segmentation the CT's table is of, and its tables of other segmentations the run left as they were
    (:func:`other_segmentation_tables`); "" with no segmentation."""
    if segmentation_node is None or table is None:
        return ""
    kept = ", ".join(f"'{other.GetName()}'" for other in other_segmentation_tables(table))
    return (f" (of segmentation '{segmentation_node.GetName()}'"
            + (f"; kept: {kept} of another segmentation" if kept else "") + ")")


def volume_table(scene, df, name: str, volume_node, node=None, made_by: str = "", segmentation_node=None,
                 dose_node=None):
    """A table node of ``volume_node``'s results (a panel's output table), tagged ``made_by`` (the kind of run:
    :data:`RADIOMICS_MADE_BY`, :data:`DOSE_MADE_BY`, lungai.scene.rp.RP_MADE_BY) and linked to
    ``segmentation_node``, the segmentation its results were computed from (:data:`SOURCE_SEGMENTATION_REFERENCE`).
    ``node`` (the panel's current output) is updated only when it holds results of this same CT and segmentation
    (:func:`own_volume_table`), so that a second patient's results never overwrite the first patient's table,
    which would keep the first patient's name, and only when the user has not renamed it (:func:`own_table`: a
    renamed table is the user's, kept as it is); otherwise the CT's own table of an earlier ``made_by`` run of this
    segmentation is updated (:func:`find_volume_table`: back to patient A after B, or with no output chosen, A's
    table, not another one); renamed to ``name`` when the CT was renamed.  Otherwise a new node is made.  A run
    with another segmentation than the CT's table of that kind was made from (AI vs clinical contours) makes a new
    table "``name`` (<segmentation>)" and keeps the other (:func:`other_segmentation_tables`).  ``dose_node``: the
    dose volume of a dose table - recorded (:data:`SOURCE_DOSE_REFERENCE`, its name in the :data:`DOSE_COLUMN` column
    after ``case``); a run with another dose than the CT's table of this segmentation was made from (plan B after
    plan A) makes a new table "``name`` (<dose>)" and keeps the other (:func:`other_dose_tables`)."""
    node = (own_volume_table(node, volume_node, name, made_by, segmentation_node, dose_node)
            or find_volume_table(scene, volume_node, name, made_by, segmentation_node=segmentation_node,
                                 dose_node=dose_node))
    if segmentation_node is not None:
        after = (node.GetAttribute(NAMED_AFTER_SEGMENTATION_ATTRIBUTE) == "1" if node is not None else
                 _named_after_segmentation(scene, volume_node, segmentation_node, made_by))
        if after:
            name = f"{name} ({segmentation_node.GetName()})"
    if dose_node is not None:
        df = df.copy()
        df.insert(1 if "case" in df.columns[:1] else 0, DOSE_COLUMN, dose_node.GetName() or "")
        # a new table beside this CT and segmentation's table of another dose (kept) is named after its dose
        after_dose = (node.GetAttribute(NAMED_AFTER_DOSE_ATTRIBUTE) == "1" if node is not None else
                      find_volume_table(scene, volume_node, name, made_by,
                                        segmentation_node=segmentation_node) is not None)
        if after_dose:
            name = f"{name} ({dose_node.GetName()})"
    node = named_table(scene, df, name, node=node)
    if dose_node is not None:
        node.SetAttribute(NAMED_AFTER_DOSE_ATTRIBUTE, "1" if after_dose else "0")
        node.SetNodeReferenceID(SOURCE_DOSE_REFERENCE, dose_node.GetID())
        node.SetAttribute(SOURCE_DOSE_NAME_ATTRIBUTE, dose_node.GetName() or "")
        node.SetAttribute(SOURCE_DOSE_ID_ATTRIBUTE, dose_node.GetID())
    if made_by:
        mark_node_made_by(node, made_by)
    if segmentation_node is not None:
        node.SetNodeReferenceID(SOURCE_SEGMENTATION_REFERENCE, segmentation_node.GetID())
        node.SetAttribute(NAMED_AFTER_SEGMENTATION_ATTRIBUTE, "1" if after else "0")
        node.SetAttribute(SOURCE_SEGMENTATION_NAME_ATTRIBUTE, segmentation_node.GetName() or "")
        node.SetAttribute(SOURCE_SEGMENTATION_ID_ATTRIBUTE, segmentation_node.GetID())
    return set_source_volume(node, volume_node)


def volume_segmentation(seg_node, volume_node, replace_segment=None):
    """``seg_node`` (the output segmentation chosen) when it holds segments of ``volume_node``, else None: the
    outputs then go to a new node, so that a second patient's segments never join the first patient's node
    (whose confidence attributes they would overwrite, and whose primary tumour would stay the first
    patient's).  The CT of a node is its :func:`source_volume_id` (set on the nodes lungai fills, as on
    its tables: :func:`volume_table`), else for a user's node its reference geometry (the volume it refers to,
    else its geometry; a node linked to no volume under another DICOM patient than the CT, :func:`other_patient`, is
    another CT's) - a node with no reference geometry yet is reused.  A node with no CT link holding
    several tumours lungai made (a scene saved by a version that put every CT's tumour into one node) is
    never reused.  ``replace_segment`` in a node of another CT raises InputError (a segment of another CT
    is never overwritten).  A node whose source representation is not the binary labelmap (closed surfaces, planar
    contours: an RTSTRUCT loaded by SlicerRT; :func:`lungai.mrml.stores_labelmaps`) is not reused either: it would
    turn the mask into a smoothed surface and give back another outline than the result's (and its recorded volume);
    ``replace_segment`` in it raises InputError."""
    from lungai import mrml

    if seg_node is None:
        return None
    if _segmentation_volume_matches(seg_node, volume_node):
        if mrml.stores_labelmaps(seg_node):
            return seg_node
        if replace_segment is not None:
            raise InputError(
                f"the segmentation {seg_node.GetName()!r} stores its segments as {mrml.source_representation(seg_node)}"
                " (e.g. an RTSTRUCT's contours), not as a binary labelmap: a result written into it would be turned "
                "into a smoothed surface and come back with another outline",
                "choose another output segmentation, or none (a new one is made); or make Binary labelmap its source "
                "representation first (Segmentations module > Representations > Binary labelmap > Make source)")
        return None
    if replace_segment is not None:
        raise InputError(f"the segmentation {seg_node.GetName()!r} holds segments of another CT (or of several), not "
                         f"only of {volume_node.GetName()}",
                         "choose a segmentation of this CT, or none (a new one is made)")
    return None


def lungai_tumour_ids(seg_node) -> list:
    """The IDs of the segments ``lungai segment`` made in ``seg_node`` (:data:`MADE_BY_TAG`), in order."""
    import vtk

    segmentation, ids = seg_node.GetSegmentation(), []
    for i in range(segmentation.GetNumberOfSegments()):
        value = vtk.reference("")
        if segmentation.GetNthSegment(i).GetTag(MADE_BY_TAG, value) and str(value) == "lungai segment":
            ids.append(segmentation.GetNthSegmentID(i))
    return ids


def _lungai_tumour_count(seg_node) -> int:
    return len(lungai_tumour_ids(seg_node))


def _segmentation_volume_matches(seg_node, volume_node) -> bool:
    import slicer

    source = source_volume_id(seg_node)
    if source:
        return source == volume_node.GetID()
    if _lungai_tumour_count(seg_node) > 1:
        return False                 # several runs' tumours with no CT link: perhaps several CTs'
    reference = seg_node.GetNodeReferenceID(seg_node.GetReferenceImageGeometryReferenceRole())
    if reference:
        return reference == volume_node.GetID()
    if other_patient(seg_node, volume_node):
        return False                 # another DICOM patient's, whatever its grid (as segmentation_volume_problem)
    from lungai.mrml import stored_reference_geometry

    geometry = stored_reference_geometry(seg_node.GetSegmentation())
    if not geometry:
        return True
    probe = slicer.vtkMRMLSegmentationNode()     # not in the scene: only computes the CT's geometry string
    probe.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    return geometry == stored_reference_geometry(probe.GetSegmentation())


GRID_TOLERANCE_MM = 1e-4   # IJK-to-world entries (spacing x direction, origin) of two grids equal within this


def same_voxel_grid(node_a, node_b) -> bool:
    """Whether two volume nodes have one voxel grid where Slicer shows them: the same dimensions and IJK-to-world
    matrix (parent transforms applied) within :data:`GRID_TOLERANCE_MM` - a label map made on (or exported from) the
    CT's grid is on the CT -, or matrices that differ only by a slightly skewed direction
    (:func:`lungai.io.geometry.same_voxels_but_skew`: a CT whose axes are not exactly perpendicular and its label map
    read from a NIfTI, which stores the nearest rotation).  False without image data or under a non-linear
    transform."""
    import numpy as np

    from lungai import mrml
    from lungai.errors import InputError
    from lungai.io.geometry import grid, same_voxels_but_skew

    if node_a is None or node_b is None:
        return False
    try:
        a, b = _voxel_box(node_a), _voxel_box(node_b)
    except InputError:
        return False
    if a is None or b is None or not np.array_equal(a[1], b[1]):
        return False
    if np.allclose(a[0], b[0], rtol=0.0, atol=GRID_TOLERANCE_MM):
        return True

    def lps_grid(box):
        origin, spacing, direction = mrml.geometry_from_ijk_to_ras(box[0])
        return grid(box[1], spacing, origin, direction)

    return same_voxels_but_skew(lps_grid(a), lps_grid(b))


def segmentation_volume_problem(seg_node, volume_node) -> Optional[str]:
    """Why ``seg_node`` is not an input for ``volume_node`` (Lung Radiomics, Multimodal Predict's CT branch), else
    None: it holds lungai's results of another CT (:func:`source_volume_id`), or it was drawn on another image
    (its reference geometry volume) - unless both volumes sit under the same DICOM patient (a GTV drawn on the
    patient's PET) or that volume is a label map node on the CT's voxel grid (:func:`same_voxel_grid`: a label map
    of this CT imported with ImportLabelmapToSegmentationNode, its reference geometry set from the label map; not
    a scalar volume on that grid, which may be another CT).  Volumes of two different DICOM patients are refused
    before the grid is looked at (a cohort resampled to one grid).  Its masks would be measured on this CT's image
    and filed as this CT's results."""
    if seg_node is None or volume_node is None:
        return None
    scene = volume_node.GetScene()
    source = source_volume_id(seg_node)
    if source and source != volume_node.GetID():
        other = scene.GetNodeByID(source) if scene is not None else None
        return (f"The segmentation '{seg_node.GetName()}' holds the results of another CT"
                f"{f' ({other.GetName()})' if other is not None else ''}, not of {volume_node.GetName()}: "
                f"choose {volume_node.GetName()}'s segmentation")
    reference = "" if source else seg_node.GetNodeReferenceID(seg_node.GetReferenceImageGeometryReferenceRole())
    if reference and reference != volume_node.GetID():
        other = scene.GetNodeByID(reference) if scene is not None else None
        from lungai.scene.dicom import _patient_id

        patients = (_patient_id(other), _patient_id(volume_node)) if other is not None else (None, None)
        if all(patients) and patients[0] == patients[1]:
            return None
        if all(patients):       # another patient's image, whatever its grid (a cohort resampled to one grid)
            return (f"The segmentation '{seg_node.GetName()}' was drawn on another patient's image "
                    f"({other.GetName()}, patient {patients[0]}), not on {volume_node.GetName()} (patient "
                    f"{patients[1]}): choose {volume_node.GetName()}'s segmentation")
        if other is not None and other.IsA("vtkMRMLLabelMapVolumeNode") and (
                same_voxel_grid(other, volume_node) or label_map_on_ct_voxels(other, volume_node)):
            return None     # a label map of this CT's grid or a crop of it (ImportLabelmapToSegmentationNode + its reference)
        return (f"The segmentation '{seg_node.GetName()}' was drawn on another image"
                f"{f' ({other.GetName()})' if other is not None else ''}, not on {volume_node.GetName()}: "
                f"choose {volume_node.GetName()}'s segmentation (or set this one's reference geometry to "
                f"{volume_node.GetName()} in Segment Editor if it is this patient's)")
    if reference or source:
        return None
    return _other_patient_problem(seg_node, volume_node) or _unlinked_grid_problem(seg_node, volume_node)


def other_patient(node_a, node_b) -> Optional[tuple]:
    """(patient of ``node_a``, patient of ``node_b``) when both sit under subject hierarchy DICOM patients and these
    differ (their PatientIDs, :func:`lungai.scene.dicom._patient_id`), else None."""
    from lungai.scene.dicom import _patient_id

    patients = _patient_id(node_a), _patient_id(node_b)
    return patients if all(patients) and patients[0] != patients[1] else None


def _other_patient_problem(seg_node, volume_node) -> Optional[str]:
    """Why a segmentation linked to no image is not for ``volume_node``: it sits under another DICOM patient than the
    CT - whatever its grid or representation (a segmentation saved on one common grid, or another patient's RTSTRUCT
    loaded by SlicerRT without its CT: planar contours, no reference geometry), as a segmentation drawn on another
    patient's image is refused.  QA: LUNG1-002's GTV (its RTSTRUCT's contours; or resampled onto LUNG1-003's grid and
    opened as .seg.nrrd) was taken by Lung Radiomics for LUNG1-003's CT without a word."""
    patients = other_patient(seg_node, volume_node)
    if patients is None:
        return None
    return (f"The segmentation '{seg_node.GetName()}' belongs to another patient (patient {patients[0]}) than "
            f"{volume_node.GetName()} (patient {patients[1]}): choose {volume_node.GetName()}'s segmentation")


def _to_world(node):
    """(4x4 parent-to-world matrix as numpy, or None under a non-linear transform; the name of its transform or
    "")."""
    import numpy as np
    import vtk

    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4), ""
    if not parent.IsTransformToWorldLinear():
        return None, parent.GetName()
    m = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(m)
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)]), parent.GetName()


def transform_mismatch_note(dose_node, volume_node) -> Optional[str]:
    """A warning when a dose volume and the CT sit under different parent transforms (their matrices to world
    differ; e.g. the CT and its segmentation under a registration, the dose not), else None.  Inputs are read where
    Slicer shows them (world coordinates: a transform that registers the dose to the CT is honoured), so the
    dose is taken moved against the CT by the difference - right for a registration, a shift when the dose was
    already on the CT's frame (an RTDOSE of this CT's plan)."""
    import numpy as np

    if dose_node is None or volume_node is None:
        return None
    (dose, dose_tf), (ct, ct_tf) = _to_world(dose_node), _to_world(volume_node)
    if dose is not None and ct is not None and np.allclose(dose, ct, rtol=0.0, atol=GRID_TOLERANCE_MM):
        return None

    def under(name):
        return f"under the transform {name!r}" if name else "under no transform"

    return (f"the dose {dose_node.GetName()!r} is {under(dose_tf)} but the CT {volume_node.GetName()!r} is "
            f"{under(ct_tf)}: the dose features take both where Slicer shows them (world coordinates), so the dose is "
            "moved against the CT and its segments by that difference - right if the transform registers them, a "
            "shifted dose (MLD, V20 ...) if the dose was already on the CT's frame (an RTDOSE of this CT's plan): then "
            "put the dose under the CT's transform (Data module)")


def _image_to_world(image):
    """The 4x4 IJK-to-world matrix of a vtkOrientedImageData (numpy)."""
    import numpy as np
    import vtk

    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


# a geometry whose box lies this close to the CT's on every face (CT voxels) is the CT's: Segment Editor's isotropic
# spacing of a 0.98 x 0.98 x 3 mm CT moves the z faces by 0.34 voxel, oversampling 0.5 / 1.5 / 2 / 3 and padding by 0
BOX_TOLERANCE_VOXELS = 0.5


def on_ct_lattice(geometry, ct_geometry, tolerance: float = 0.01) -> bool:
    """Whether a segmentation's reference geometry (vtkOrientedImageData) is the CT's (``ct_geometry``) box or a part
    of it on its voxel lattice: its axes along the CT's (in any order and sense: a label map stored RAS of an LPS
    CT), and either the CT's box within :data:`BOX_TOLERANCE_VOXELS` on every face whatever the spacing (Segment Editor's "Specify
    geometry": oversampled, isotropic, padded) or a part of the box with each voxel of the CT split into a whole
    number of voxels per axis and the voxel edges on the CT's (a label map cropped from the CT); ``tolerance`` in
    voxels."""
    import itertools

    import numpy as np

    to_ct = np.linalg.inv(_image_to_world(ct_geometry)) @ _image_to_world(geometry)   # IJK -> the CT's IJK
    axes = np.abs(to_ct[:3, :3])
    scale = axes.max(axis=1)                          # per CT axis: the segmentation's voxel in CT voxels
    if np.any(scale <= 0) or np.any((axes > 1e-3 * scale.max()).sum(axis=0) != 1) or \
            np.any((axes > 1e-3 * scale.max()).sum(axis=1) != 1):
        return False                                  # an axis between the CT's: another direction
    split = 1.0 / scale
    e, c = geometry.GetExtent(), ct_geometry.GetExtent()
    corners = np.array([to_ct[:3, :3] @ ijk + to_ct[:3, 3] for ijk in itertools.product(
        *[(e[2 * k] - 0.5, e[2 * k + 1] + 0.5) for k in range(3)])])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    ct_lo, ct_hi = np.array([c[0], c[2], c[4]]) - 0.5, np.array([c[1], c[3], c[5]]) + 0.5
    if np.all(np.abs(lo - ct_lo) <= BOX_TOLERANCE_VOXELS) and np.all(np.abs(hi - ct_hi) <= BOX_TOLERANCE_VOXELS):
        return True       # the CT's box, any spacing: Segment Editor's isotropic / oversampled geometry
    if np.any(np.abs(split - np.round(split)) > tolerance * split):
        return False                                  # a part of the box, not a whole number of voxels per CT voxel
    steps = (lo - ct_lo) * np.round(split)            # the box's first edge in voxels of its own size
    return bool(np.all(np.abs(steps - np.round(steps)) <= tolerance) and np.all(lo >= ct_lo - tolerance)
                and np.all(hi <= ct_hi + tolerance))


def _local_geometry(volume_node, world: bool = False):
    """The voxel grid of ``volume_node`` in its own frame (its IJK-to-RAS matrix and extent, no parent transform) as a
    vtkOrientedImageData - a segmentation's stored geometry is in the segmentation's own frame (QA: a probe node
    outside the scene gave the CT's world geometry, so a segmentation under the CT's own transform was refused).
    ``world``: its parent transforms applied (:func:`lungai.mrml.ijk_to_world`; InputError under a non-linear one)."""
    import slicer

    from lungai import mrml

    image = slicer.vtkOrientedImageData()
    image.SetExtent(volume_node.GetImageData().GetExtent())
    image.SetImageToWorldMatrix(mrml._vtk_matrix(mrml.ijk_to_world(volume_node, world)))
    return image


def label_map_on_ct_voxels(label_node, volume_node, tolerance: float = 0.01) -> bool:
    """Whether the label map node ``label_node`` holds a part of ``volume_node``'s voxels where Slicer shows them
    (parent transforms applied): each of its voxels is one of the CT's (the CT's voxel size and axes, in any order and
    sense; whole-voxel offsets, within ``tolerance`` voxels) and its box lies inside the CT - a label map cropped from
    the CT (Slicer's export without a reference volume, Crop Volume, another tool's tumour box), which ``lungai
    radiomics --mask`` measures on the CT as it is.  Another voxel size (even over the CT's box) or a box off the
    CT's voxels is another image.  False without image data or under a non-linear transform."""
    import numpy as np

    from lungai.errors import InputError

    if label_node is None or volume_node is None or label_node.GetImageData() is None or \
            volume_node.GetImageData() is None:
        return False
    try:
        label, ct = _local_geometry(label_node, world=True), _local_geometry(volume_node, world=True)
    except InputError:
        return False
    to_ct = np.linalg.inv(_image_to_world(ct)) @ _image_to_world(label)      # the label map's IJK -> the CT's IJK
    axes = to_ct[:3, :3]
    if not (np.allclose(np.abs(axes), np.round(np.abs(axes)), rtol=0.0, atol=tolerance)
            and np.allclose(np.abs(np.round(axes)).sum(axis=0), 1) and np.allclose(np.abs(np.round(axes)).sum(axis=1), 1)):
        return False                                  # another voxel size or direction: another image
    if not np.allclose(to_ct[:3, 3], np.round(to_ct[:3, 3]), rtol=0.0, atol=tolerance):
        return False                                  # between the CT's voxels
    e, c = label.GetExtent(), ct.GetExtent()
    corners = np.array([axes @ [e[0 + a], e[2 + b], e[4 + d]] + to_ct[:3, 3]
                        for a in (0, 1) for b in (0, 1) for d in (0, 1)])
    return bool(np.all(corners.min(axis=0) >= np.array([c[0], c[2], c[4]]) - tolerance)
                and np.all(corners.max(axis=0) <= np.array([c[1], c[3], c[5]]) + tolerance))


def _unlinked_grid_problem(seg_node, volume_node) -> Optional[str]:
    """Why a segmentation linked to no image (a .seg.nrrd opened from a file keeps its reference geometry as text,
    not as a link) is not for ``volume_node``, else None: its stored reference geometry - without the text, the grid
    of each of its segments' own label maps - is not this CT's (:func:`on_ct_lattice`: another direction, or another
    box; Segment Editor's geometries of this CT - oversampled, isotropic, padded - and a label map cropped from it
    are accepted).  Nothing to compare (no image, no segment, a segmentation of closed surfaces only, different
    parent transforms) or both under one DICOM patient: None.  QA: lung2's tumour saved as .seg.nrrd and opened with
    LUNG1-003 was resampled onto LUNG1-003 and filed as its radiomics without a word."""
    import numpy as np
    import slicer

    converter = slicer.vtkSegmentationConverter
    segmentation = seg_node.GetSegmentation()
    if volume_node.GetImageData() is None or seg_node.GetTransformNodeID() != volume_node.GetTransformNodeID() or \
            not segmentation.GetNumberOfSegments():
        return None
    ct = _local_geometry(volume_node)            # both in the same frame (the same parent transform, checked)
    from lungai.mrml import stored_reference_geometry

    stored = stored_reference_geometry(segmentation)
    if stored:
        image = slicer.vtkOrientedImageData()
        if not converter.DeserializeImageGeometry(stored, image):
            return None
        grids = [image]
    else:      # no geometry text: the grids of the segments' own label maps (a file's voxels), if they are the source
        from lungai import mrml

        if not mrml.stores_labelmaps(seg_node):
            return None
        labelmap = converter.GetSegmentationBinaryLabelmapRepresentationName()
        held = [segmentation.GetNthSegment(k).GetRepresentation(labelmap)
                for k in range(segmentation.GetNumberOfSegments())]
        grids = [h for h in held if h is not None and not h.IsEmpty()]
    off = next((g for g in grids if not on_ct_lattice(g, ct)), None)
    if off is None:
        return None       # this CT's box, or a part of it on its voxels (oversampled, cropped): its own geometry
    from lungai.scene.dicom import _patient_id

    patients = _patient_id(seg_node), _patient_id(volume_node)
    if all(patients) and patients[0] == patients[1]:
        return None

    def grid(image):
        spacing = np.linalg.norm(_image_to_world(image)[:3, :3], axis=0)
        e = image.GetExtent()
        return (f"{' x '.join(f'{v:.3g}' for v in spacing)} mm, "
                f"{' x '.join(str(e[2 * k + 1] - e[2 * k] + 1) for k in range(3))} voxels")

    return (f"The segmentation '{seg_node.GetName()}' is linked to no image and was drawn on another grid "
            f"({grid(off)}) than {volume_node.GetName()}'s ({grid(ct)}), not on its voxels or box: "
            f"it is perhaps another patient's. Choose {volume_node.GetName()}'s segmentation (or set this one's "
            f"reference geometry to {volume_node.GetName()} in Segment Editor if it is this patient's)")


def volume_segmentation_default(scene, volume_node):
    """The segmentation a panel offers for ``volume_node``: the first one holding its results
    (:func:`source_volume_id`), else the first with no :func:`segmentation_volume_problem`, else None."""
    segmentations = [scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    if volume_node is None:
        return segmentations[0] if segmentations else None
    for node in segmentations:
        if source_volume_id(node) == volume_node.GetID():
            return node
    return next((node for node in segmentations if segmentation_volume_problem(node, volume_node) is None), None)


def own_segmentation(scene, volume_node, seg_node):
    """The segmentation a panel selects when its CT becomes ``volume_node`` (Lung Radiomics, Multimodal Predict's CT
    branch): ``seg_node`` when it suits this CT (no :func:`segmentation_volume_problem`), else the CT's own one
    (:func:`volume_segmentation_default`) when there is one, else ``seg_node`` (its problem is then said)."""
    if volume_node is None or (seg_node is not None and segmentation_volume_problem(seg_node, volume_node) is None):
        return seg_node
    own = volume_segmentation_default(scene, volume_node)
    return own if own is not None else seg_node


def table_rows(table_node) -> list[dict]:
    """The rows of a table node as dicts of strings (no pandas needed)."""
    table = table_node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    return [{names[c]: table.GetValue(r, c).ToString() for c in range(len(names))}
            for r in range(table.GetNumberOfRows())]
