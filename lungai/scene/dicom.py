"""Slicer side of DICOM RT: a SlicerRT-loaded RTSTRUCT segmentation as tumour / lungs input, and export of
segments as DICOM SEG / RTSTRUCT.  Core functions for the panels (LungAICommon); no Qt here.

- :func:`role_segments` / :func:`role_mask` - the segments of a role (``gtv``, ``lungs``, ``lungs_minus_gtv`` ...)
  in any segmentation node, e.g. the one SlicerRT makes from an RTSTRUCT (segments named like its ROIs:
  "GTV-1", "Lung-Right" ...), using :mod:`lungai.dicom.roles`;
- :func:`lung_label_image` - right / left lung segments as the label map (1 right, 2 left) the core takes;
- :func:`dicom_files_of_volume` - the CT's DICOM files when the volume was loaded from Slicer's DICOM database;
- :func:`export_segments_dicom` - chosen segments as ``*.seg.dcm`` and ``*.rtstruct.dcm`` referencing that CT.
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from lungai import mrml
from lungai.errors import InputError


def role_segments(seg_node, role: str, mapping=None) -> list[str]:
    """Names of the segments of ``seg_node`` that have ``role`` (see :func:`lungai.dicom.roles.find_role`)."""
    from lungai.dicom.roles import find_role

    return find_role(mrml.segment_names(seg_node), role, mapping)


def role_mask(scene, seg_node, role: str, volume_node, mapping=None) -> sitk.Image:
    """The mask of ``role`` on the volume's grid: union of its segments, lungs = right + left, lungs - GTV ..."""
    from lungai.dicom.roles import mask_for_role, required_names

    names = required_names(role, mrml.segment_names(seg_node), mapping)
    masks = {n: mrml.segment_to_mask(scene, seg_node, n, volume_node) for n in names}
    return mask_for_role(masks, role, mapping)


def lung_label_image(scene, seg_node, volume_node, mapping=None) -> sitk.Image:
    """Right / left lung segments (found by role) as a label map: 1 = right, 2 = left."""
    from lungai.dicom.masks import lung_label_map

    return lung_label_map(role_mask(scene, seg_node, "lung_right", volume_node, mapping),
                          role_mask(scene, seg_node, "lung_left", volume_node, mapping))


def dicom_files_of_volume(volume_node) -> list[Path] | None:
    """The DICOM files of a volume loaded through Slicer's DICOM module (attribute ``DICOM.instanceUIDs``), or None."""
    import slicer

    uids = (volume_node.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        return None
    files = [database.fileForInstance(uid) for uid in uids]
    return [Path(f) for f in files if f] or None


def export_segments_dicom(scene, volume_node, seg_node, out_dir, segments=None, ct_source=None,
                          formats=("seg", "rtstruct"), name: str | None = None) -> list[Path]:
    """Write segments (default all) as DICOM SEG and/or RTSTRUCT referencing the volume's DICOM CT series.

    ``ct_source``: the CT's DICOM folder or files (default: from Slicer's DICOM database, see
    :func:`dicom_files_of_volume`).  Files: ``<name>.seg.dcm``, ``<name>.rtstruct.dcm`` (name: the segmentation's);
    existing files of those names are never overwritten (InputError).
    """
    from lungai.dicom.reference import check_output_folder, ct_reference
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import write_seg

    source = ct_source or dicom_files_of_volume(volume_node)
    if not source:
        raise InputError(f"{volume_node.GetName()} was not loaded from DICOM, so the SEG / RTSTRUCT cannot reference "
                         "its CT series", "load the CT through Slicer's DICOM module, or give its DICOM folder")
    image = mrml.image_from_volume_node(volume_node)
    reference = ct_reference(source, image=image)
    out = Path(out_dir)
    check_output_folder(out, reference)
    names = list(segments or mrml.segment_names(seg_node))
    if not names:
        raise InputError(f"{seg_node.GetName()} has no segments", "choose at least one segment to export")
    masks = {n: mrml.segment_to_mask(scene, seg_node, n, volume_node) for n in names}
    stem = name or seg_node.GetName().replace("/", "_")
    targets = [out / f"{stem}.{kind}.dcm" for kind in ("seg", "rtstruct") if kind in formats]
    existing = [p.name for p in targets if p.exists()]
    if existing:
        raise InputError(f"{out} already has {', '.join(existing)}; it is not overwritten",
                         "choose another (empty) folder, or rename the segmentation")
    written = []
    if "seg" in formats:
        written.append(write_seg(masks, reference, out / f"{stem}.seg.dcm", description=f"lungai {stem}"))
    if "rtstruct" in formats:
        written.append(write_rtstruct(masks, reference, out / f"{stem}.rtstruct.dcm", label="lungai"))
    return written
