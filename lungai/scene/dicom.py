"""Slicer side of DICOM RT: a SlicerRT-loaded RTSTRUCT segmentation as tumour / lungs input, and export of
segments as DICOM SEG / RTSTRUCT.  Core functions for the panels (LungAICommon); no Qt here.

- :func:`role_segments` / :func:`role_mask` - the segments of a role (``gtv``, ``lungs``, ``lungs_minus_gtv`` ...)
  in any segmentation node, e.g. the one SlicerRT makes from an RTSTRUCT (segments named like its ROIs:
  "GTV-1", "Lung-Right" ...), using :mod:`lungai.dicom.roles`;
- :func:`lung_label_image` - right / left lung segments as the label map (1 right, 2 left) the core takes;
- :func:`dicom_files_of_volume` - a volume's DICOM files when it was loaded from Slicer's DICOM database;
- :func:`loaded_from_dicom` - whether a volume was loaded from DICOM, its files in the database now or not;
- :func:`volume_patient_names` - the names a CT node gives its patient (PatientID, file / node name);
- :func:`check_dose_node_matches_ct` - a dose volume of another patient / frame of reference than the CT is refused
  (the notes of its RTDOSE returned: DoseType EFFECTIVE);
- :func:`dose_node_unit` - the unit (Gy / cGy) of a dose volume's voxels, as SlicerRT records it;
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


def _sh_item(node):
    """(subject hierarchy node, the node's item or 0) - 0 when the scene has no subject hierarchy."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
    return sh, (sh.GetItemByDataNode(node) if sh else 0)


def dicom_files_of_volume(volume_node) -> list[Path] | None:
    """The DICOM files of a volume loaded through Slicer's DICOM module, or None: its attribute
    ``DICOM.instanceUIDs``, else (an RTDOSE loaded by SlicerRT) the series UID of its subject hierarchy item."""
    import slicer

    database = getattr(slicer, "dicomDatabase", None)
    if database is None:
        return None
    uids = (volume_node.GetAttribute("DICOM.instanceUIDs") or "").split()
    if uids:
        files = [database.fileForInstance(uid) for uid in uids]
    else:
        sh, item = _sh_item(volume_node)
        series = sh.GetItemUID(item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName()) if item else ""
        files = list(database.filesForSeries(series)) if series else []
    return [Path(f) for f in files if f] or None


def loaded_from_dicom(node) -> bool:
    """Whether a volume node was loaded from DICOM (Slicer's DICOM module, SlicerRT), whether or not its files are in
    Slicer's DICOM database now: its attribute ``DICOM.instanceUIDs`` or the DICOM UID (SeriesInstanceUID) of its
    subject hierarchy item - both saved with the scene.  A node moved under a DICOM patient in the subject hierarchy
    has neither (its item has no UID of its own)."""
    import slicer

    if (node.GetAttribute("DICOM.instanceUIDs") or "").strip():
        return True
    sh, item = _sh_item(node)
    return bool(item and (sh.GetItemUID(item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName()) or "").strip())


def _patient_id(node) -> str:
    """PatientID of the subject hierarchy patient the node sits under ("" when none)."""
    import slicer

    constants = slicer.vtkMRMLSubjectHierarchyConstants
    sh, item = _sh_item(node)
    patient = sh.GetItemAncestorAtLevel(item, constants.GetDICOMLevelPatient()) if item else 0
    if not patient:
        return ""
    return (sh.GetItemUID(patient, constants.GetDICOMUIDName())
            or sh.GetItemAttribute(patient, constants.GetDICOMPatientIDAttributeName()) or "").strip()


def volume_patient_names(volume_node) -> list[str]:
    """The names a CT volume node gives its patient, as ``lungai segment`` derives them from its input
    (:func:`lungai.cli.seg.ct_patient_name`): the PatientID of the subject hierarchy patient it sits under (a CT
    loaded by Slicer's DICOM module, node "2: CT"), the case name of the file it was loaded from (``LUNG1-002_ct``
    of LUNG1-002_ct.nii.gz: :func:`lungai.io.read.input_case_id`) and its node name (Slicer names a loaded file's
    node so) - what :func:`lungai.seg.choice.add_model_notes` matches against the patients a model was trained /
    validated on.  The panel passes them to its ``lungai segment`` child (``--patient``: its work file ``ct.nrrd``
    names no patient) and :func:`lungai.scene.segment.segment_tumour_node` to ``add_model_notes``; QA seginsample68:
    the DynUNet on LUNG1-002 in Slicer gave no word that the result is in-sample.  Not the PatientName (models record
    their patients by ID / case name; a name is not put on a command line)."""
    from lungai.io.read import input_case_id

    names = [_patient_id(volume_node)]
    storage = volume_node.GetStorageNode()
    if storage is not None and (storage.GetFileName() or "").strip():
        names.append(input_case_id(storage.GetFileName()))
    names.append(volume_node.GetName() or "")
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def check_dose_node_matches_ct(dose_node, ct_node) -> list[str]:
    """:func:`lungai.dose.check_dose_matches_ct` for volume nodes: on their DICOM files when both were loaded from
    Slicer's DICOM database (PatientID, FrameOfReferenceUID), and on the PatientIDs of the subject hierarchy
    patients they sit under; an RTDOSE must be a total dose (DoseSummationType PLAN / MULTI_PLAN,
    :func:`lungai.dose.read.check_summation_type`) and a dose in Gy / cGy (:func:`lungai.dose.read.check_dose_kind`) -
    checked after the patient and frame of reference, as ``lungai dose-features`` does (another patient's dose is
    said so, not that its DoseUnits are missing).  A node not loaded from DICOM has nothing to compare: no error.

    Returns the notes ``lungai dose-features`` gives for that RTDOSE file, which the node's exported copy (NRRD)
    cannot carry: DoseType EFFECTIVE (:func:`lungai.dose.read.effective_dose_note`, naming the node) - a
    biologically weighted dose, whose MLD / V20 are not the physical dose's; a CT with neither DICOM files nor a
    subject hierarchy patient (loaded from NIfTI / NRRD): the RTDOSE could not be checked against it
    (:func:`lungai.dose.read.unchecked_dose_note`); a CT under a DICOM patient but without DICOM files: its frame of
    reference could not be checked (:func:`lungai.dose.read.unchecked_frame_note`; the PatientIDs are compared); a
    dose without DICOM files (a NIfTI / NRRD dose) with a DICOM CT: the same unchecked note, the dose not being
    DICOM - naming the patient it sits under when it was moved under the CT's (PatientIDs compared, its frame of
    reference not); an RTDOSE loaded from DICOM (:func:`loaded_from_dicom`) whose file is not in the database (a
    scene opened from a file): its header could not be read (:func:`lungai.dose.read.unread_rtdose_note`; its
    patient compared).  The Lung Radiomics panel says them
    with its dose warnings, :func:`lungai.scene.radiomics.radiomics_table` as InputNote warnings."""
    from types import SimpleNamespace

    import pydicom

    from lungai.dose.read import (check_dose_kind, check_dose_matches_ct, check_headers_match, check_summation_type,
                                  unchecked_dose_note, unchecked_frame_note, unread_rtdose_note, value_notes)

    names = (dose_node.GetName(), ct_node.GetName())
    dose_files, ct_files = dicom_files_of_volume(dose_node), dicom_files_of_volume(ct_node)
    ct_patient = _patient_id(ct_node)
    # another patient's / frame's dose first (as lungai dose-features): its DoseUnits / DoseSummationType are not
    # worth fixing - QA dose66: another patient's RTDOSE without DoseUnits was "has no DoseUnits ... re-export it"
    match_note = check_dose_matches_ct(dose_files[0], ct_files[0], names=names) if dose_files and ct_files else None
    check_headers_match(SimpleNamespace(PatientID=_patient_id(dose_node)),
                        SimpleNamespace(PatientID=ct_patient), *names)
    notes = []
    if dose_files:   # an RTDOSE loaded by SlicerRT: the plan's total dose, not one beam's or one fraction's
        header = pydicom.dcmread(dose_files[0], stop_before_pixels=True)
        if str(getattr(header, "Modality", "")) == "RTDOSE":
            check_summation_type(header, names[0])
            check_dose_kind(header, names[0])       # a dose (not an ERROR grid) in GY / CGY
            # the notes on its values, as dose.csv records them: DoseType EFFECTIVE, no DoseSummationType
            notes.extend(value_notes([dose_files[0]], [header], lambda _: names[0]))
            if not ct_files and not ct_patient:     # a NIfTI / NRRD CT: nothing to check the RTDOSE against
                notes.append(unchecked_dose_note(*names))
            elif not ct_files:      # the CT's patient only (no DICOM files): its frame of reference is not known
                notes.append(unchecked_frame_note(*names, ct_patient))
    elif loaded_from_dicom(dose_node):   # an RTDOSE of a scene opened from a file, its file not in the database:
        # its header unread - neither DoseType nor its frame checked; its patient compared above (QA slicerdose59: it
        # was told "the dose is not DICOM", the fix "the plan's DICOM RTDOSE" - what it is)
        dose_patient = _patient_id(dose_node)
        notes.append(unread_rtdose_note(*names, dose_patient if dose_patient and ct_patient else ""))
    elif ct_files or ct_patient:    # a NIfTI / NRRD dose with a DICOM CT: at most its patient (moved under the
        # CT's in the subject hierarchy) compared above - its frame of reference not (QA: said only without a patient)
        notes.append(unchecked_dose_note(*names, dose_dicom=False, patient=_patient_id(dose_node)))
    notes.append(match_note)    # an RTDOSE without FrameOfReferenceUID: compared as far as it goes, said
    return [n for n in notes if n]


# SlicerRT (DicomRtImportExport, LoadRtDose) multiplies an RTDOSE's pixels by DoseGridScaling only: the dose volume
# holds the values in the RTDOSE's DoseUnits (cGy stays cGy), recorded as this attribute ("GY" / "CGY", the DICOM
# value) of the subject hierarchy *study* item above the dose (vtkSlicerRtCommon::DICOMRTIMPORT_DOSE_UNIT_NAME_
# ATTRIBUTE_NAME; "DicomRtImport.DoseUnitValue" there is the DoseGridScaling, already applied to the voxels).
DOSE_UNIT_ATTRIBUTE = "DicomRtImport.DoseUnitName"


def dose_node_unit(dose_node) -> str:
    """The unit of a dose volume node's voxels as ``lungai dose-features --dose-unit`` takes it: "Gy" or "cGy".

    SlicerRT's :data:`DOSE_UNIT_ATTRIBUTE` on the study item above the node (set when it loaded the RTDOSE, or by
    its "Convert to RT dose volume"), else the DoseUnits of the node's RTDOSE file in Slicer's DICOM database
    (:func:`dicom_files_of_volume`), else Gy (a NIfTI / NRRD dose: in Gy unless the user converted it).
    Another unit name is refused (InputError)."""
    import pydicom
    import slicer

    from lungai.dose.read import dose_units

    sh, item = _sh_item(dose_node)
    name = ""
    if item:
        name = (sh.GetItemAttribute(item, DOSE_UNIT_ATTRIBUTE) or sh.GetAttributeFromItemAncestor(
            item, DOSE_UNIT_ATTRIBUTE, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()) or "")
    name = name.strip()
    if not name:
        files = dicom_files_of_volume(dose_node)
        header = pydicom.dcmread(files[0], stop_before_pixels=True) if files else None
        if header is None or str(getattr(header, "Modality", "")) != "RTDOSE":
            return "Gy"
        name = dose_units(header, dose_node.GetName())
    unit = {"GY": "Gy", "CGY": "cGy"}.get(name.upper())
    if unit is None:
        raise InputError(f"the dose volume {dose_node.GetName()!r} has the dose unit {name!r} (its study's "
                         f"{DOSE_UNIT_ATTRIBUTE}), neither Gy nor cGy",
                         "set the dose unit to Gy or cGy (subject hierarchy: right-click the dose, Convert to RT "
                         "dose volume) or give a dose in Gy")
    return unit


def empty_segments_note(names) -> str:
    """The note of empty segments ``names`` left out of a DICOM export, in their number."""
    return (f"{'empty segment' if len(names) == 1 else 'empty segments'} {', '.join(map(repr, names))} not written to "
            "the DICOM SEG / RTSTRUCT (no voxel on the CT)")


def export_segments_dicom(scene, volume_node, seg_node, out_dir, segments=None, ct_source=None,
                          formats=("seg", "rtstruct"), name: str | None = None) -> list[Path]:
    """Write segments (default all) as DICOM SEG and/or RTSTRUCT referencing the volume's DICOM CT series.

    ``ct_source``: the CT's DICOM folder or files (default: from Slicer's DICOM database, see
    :func:`dicom_files_of_volume`).  Files: ``<name>.seg.dcm``, ``<name>.rtstruct.dcm`` (name: the segmentation's);
    existing files of those names are never overwritten (InputError).  Segments lungai made (tagged
    :data:`lungai.scene.nodes.MADE_BY_TAG`: LungAISeg's tumour and lungs, the demo's) are written as AUTOMATIC
    (SlicerLungAI) - SEMIAUTOMATIC (SlicerLungAI's, edited by the user) when its outline was changed since
    (:func:`lungai.scene.nodes.segment_edited`: tumour or lungs), or when a scene of an older version recorded no
    outline to tell an edit by (:func:`lungai.scene.nodes.outline_unknown`; an InputNote names them) -, every other
    segment as the user's, MANUAL; a tumour
    flagged for review (its result tags: :func:`lungai.scene.nodes.tumour_result`, not edited since) says "needs
    review: REASON" in its SEG segment and RTSTRUCT ROI (:func:`lungai.dicom.export.review_text`).  Two segments of
    one name (spaces around it ignored) are refused before any work
    (:func:`lungai.dicom.labels.check_export_labels`: rename one in the Segment Editor);
    names that differ only in letter case ("GTV", "gtv") are written as they are.  An empty segment is left out with
    an :class:`~lungai.errors.InputNote` (:func:`empty_segments_note`); all empty: InputError.  The segments are written on the
    CT's voxels where Slicer shows them over the CT, in the series' own coordinates: a parent transform of the CT (a
    registration) is not exported - the files lie on the CT series as loaded from DICOM.
    """
    from lungai.dicom.labels import check_export_labels, label_key
    from lungai.dicom.reference import check_output_folder, ct_reference
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import SERIES_NUMBERS, generation_by, write_seg
    from lungai.scene.nodes import MADE_BY_TAG

    names = list(segments or mrml.segment_names(seg_node))
    if not names:
        raise InputError(f"{seg_node.GetName()} has no segments", "choose at least one segment to export")
    # two segments of one name (chosen or in the node): by name the first would be taken and the other dropped
    # without a word, and the reader could not tell them apart; the one rule of lungai.dicom.labels ("GTV" and
    # "gtv" are two names, exported as they are)
    keys = {label_key(n) for n in names}
    for chosen in (names, [n for n in mrml.segment_names(seg_node) if label_key(n) in keys]):
        check_export_labels(chosen, what=f"segments of {seg_node.GetName()}")
    source = ct_source or dicom_files_of_volume(volume_node)
    if not source:
        raise InputError(f"{volume_node.GetName()} was not loaded from DICOM, so the SEG / RTSTRUCT cannot reference "
                         "its CT series", "load the CT through Slicer's DICOM module, or give its DICOM folder")
    # the CT's own geometry, that of its DICOM series: a parent transform (a registration) is not the series' and
    # is left out - the segments are put on the CT's voxels where Slicer shows them over it (through both nodes'
    # transforms), so the SEG / RTSTRUCT lie on the same anatomy of the series (before: the transformed geometry was
    # compared with the series and refused as "not the first slice" of the CT's own folder)
    mrml.ijk_to_world(volume_node)           # a non-linear transform: "harden the transform first", as every input
    image = mrml.image_from_volume_node(volume_node, world=False)
    reference = ct_reference(source, image=image)
    out = Path(out_dir)
    check_output_folder(out, reference)
    masks = {n: mrml.segment_to_mask(scene, seg_node, n, volume_node, world=False) for n in names}
    # an empty segment (an erased "Tumor", a lung segment never filled) is left out, said: as `lungai dicom-export`
    # leaves an empty tumour out (EMPTY_TUMOUR_NOTE) - before, it was written as an empty SEG segment and an RTSTRUCT
    # structure without contours, which a planning system shows as a structure with no volume
    empty = [n for n, m in masks.items() if not sitk.GetArrayViewFromImage(m).any()]
    if len(empty) == len(masks):
        raise InputError(f"every segment chosen for the DICOM export is empty on the CT ({', '.join(map(repr, empty))})",
                         "paint the segments first (Segment Editor), or choose segments that hold voxels")
    if empty:
        import warnings

        from lungai.errors import InputNote

        warnings.warn(InputNote(empty_segments_note(empty)))
        masks = {n: m for n, m in masks.items() if n not in empty}
        names = list(masks)
    # the segmentation's name as a file name (the cohort's rule for a case's folder): Slicer names a DICOM-loaded CT
    # "2: CT Thorax", its result "2: CT Thorax tumour" - a ':' is refused on Windows or names an NTFS alternate stream
    from lungai.radiomics.manifest import safe_name

    stem = name or safe_name(seg_node.GetName())
    targets = [out / f"{stem}.{kind}.dcm" for kind in ("seg", "rtstruct") if kind in formats]
    existing = [p.name for p in targets if p.exists()]
    if existing:
        raise InputError(f"{out} already has {', '.join(existing)}; it is not overwritten",
                         "choose another (empty) folder, or rename the segmentation")
    # a tumour Lung AI Segmentation flagged for review, not edited since: "needs review: REASON" in its SEG segment
    # and RTSTRUCT ROI, as `lungai segment` writes them (an edited one is the expert's correction: no flag)
    from lungai.dicom.export import review_text
    from lungai.scene.nodes import outline_unknown, outline_unknown_note, segment_edited, tumour_result

    results = {n: tumour_result(seg_node, n) for n in names}
    # the one rule: lungai's segment AUTOMATIC, edited since SEMIAUTOMATIC (QA: an expert-corrected tumour - half of
    # it erased -, or lungs, were exported AUTOMATIC / SlicerLungAI, as if untouched), the user's MANUAL; one of an
    # older scene that recorded no outline may have been edited: SEMIAUTOMATIC, said (QA slicerdose59)
    unknown = [n for n in names if outline_unknown(seg_node, mrml.resolve_segment(seg_node, n))]
    if unknown:
        import warnings

        from lungai.errors import InputNote

        warnings.warn(InputNote(outline_unknown_note(unknown)))
    generation = {n: generation_by(mrml.segment_tag(seg_node, n, MADE_BY_TAG),
                                   edited=n in unknown or segment_edited(seg_node, mrml.resolve_segment(seg_node, n)))
                  for n in names}
    notes = {n: review_text(r) for n, r in results.items() if not r.get("edited")}
    written = []
    if "seg" in formats:
        written.append(write_seg(masks, reference, out / f"{stem}.seg.dcm", description=f"lungai {stem}",
                                 generation=generation, series_number=SERIES_NUMBERS["slicer"]["seg"], notes=notes,
                                 notes_full_in="RTSTRUCT" if "rtstruct" in formats else None))   # no SR here
    if "rtstruct" in formats:
        written.append(write_rtstruct(masks, reference, out / f"{stem}.rtstruct.dcm", label="lungai",
                                      generation=generation, series_number=SERIES_NUMBERS["slicer"]["rtstruct"],
                                      notes=notes))
    return written
