"""Results as DICOM beside the NIfTI outputs, when the CT came as a DICOM series.

- lungs (``lungai lungs``): ``<stem>.seg.dcm`` (segments "Right lung", "Left lung") and ``<stem>.rtstruct.dcm``
  (Lung_R, Lung_L) next to the label map;
- tumour (``lungai segment``): ``tumor.seg.dcm``, ``rtstruct.dcm`` (GTVp), ``uncertainty.pm.dcm`` (Parametric Map
  of the predictive entropy, bits) and ``measurements.sr.dcm`` (TID 1500: volume, confidence, needs review with its
  reasons - said in the SEG segment and RTSTRUCT ROI of the tumour too, :func:`review_text` -, and
  in the Case group the method - ensemble members or MC dropout passes - and model that gave the confidence);
- everything (``lungai dicom-export``): tumour + lungs in ``results.seg.dcm`` and ``rtstruct.dcm`` (a SEG of
  several GTVs given as the tumour: each GTV under its own name, :func:`tumour_parts`), the uncertainty
  map, and an SR with volumes, confidence, radiomic features per segment, dose metrics and RP risk.

All reference the source CT's Study / Series / Frame of Reference / SOP Instance UIDs (see
:mod:`lungai.dicom.reference`).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.dicom import EXPORT_STEPS, RESULTS_STEPS  # noqa: F401 - re-exported
from lungai.dicom.reference import CTReference, check_output_folder, ct_reference
from lungai.errors import InputError
from lungai.io import copy_geometry
from lungai.progress import NullProgress, waiting
from lungai.seg.config import result_value
from lungai.volume import mask_volume_ml  # noqa: F401 - the one volume of a mask, importable from here

LUNG_SEGMENTS = {"Right lung": ("lung_right", "Lung_R", 1), "Left lung": ("lung_left", "Lung_L", 2)}
BOTH_LUNGS_SEGMENT = ("Lungs", "Lungs")           # SEG segment, RTSTRUCT name of a binary lung mask
TUMOUR_SEGMENT, TUMOUR_STRUCTURE = "Tumour", "GTVp"


def reference_for(ct_path, ct: sitk.Image, series_uid: str | None = None) -> CTReference:
    """The CT series' headers for a CT read from a DICOM folder (checked against the image)."""
    return ct_reference(ct_path, series_uid=series_uid, image=ct)


def lung_parts(labels: sitk.Image) -> list:
    """(SEG label, role, radiomics segment name, RTSTRUCT name, mask) of each lung in a label map (1 right, 2 left);
    a map of label 1 only as wide as both lungs (a binary lung mask, :func:`lungai.lungs.check.one_label_is_both_lungs`)
    is one segment "Lungs" (both lungs), never "Right lung"."""
    from lungai.dicom.masks import check_lung_label_map, labels_present
    from lungai.lungs.check import one_label_is_both_lungs

    check_lung_label_map(labels)
    arr = sitk.GetArrayViewFromImage(labels)
    present = labels_present(arr)       # one pass per label (QA exportfollow68: the map was sorted twice a call)
    if present == [1] and one_label_is_both_lungs(labels):      # label 1 alone: it may be both lungs
        return [(BOTH_LUNGS_SEGMENT[0], "lungs", "lungs", BOTH_LUNGS_SEGMENT[1],
                 copy_geometry((arr == 1).astype(np.uint8), labels))]
    return [(label, role, role.replace("lung_", "") + "_lung", structure,
             copy_geometry((arr == value).astype(np.uint8), labels))
            for label, (role, structure, value) in LUNG_SEGMENTS.items() if value in present]


def review_text(info: dict | None) -> str | None:
    """What the tumour's SEG segment (SegmentDescription) and RTSTRUCT ROI (ROIObservationDescription) say of a
    flagged result (``lungai segment``'s result.json: ``needs_review``): "needs review: " and its review reasons, so
    PACS and the planning system show why (QA: only the SR's needs_review = 1 said it, without a reason); None when
    the result is not flagged.  A result whose outline a scene of an older version did not record
    (``outline_unknown``): "needs review (SlicerLungAI's outline, edits since not recorded)"."""
    if not info or not info.get("needs_review"):
        return None
    reasons = "; ".join(str(r) for r in info.get("review_reasons") or [])
    # a scene of an older version that recorded no outline (lungai.scene.nodes.tumour_result's outline_unknown): the
    # flag is the outline SlicerLungAI made, which the segment (exported SEMIAUTOMATIC) may no longer be
    what = " (SlicerLungAI's outline, edits since not recorded)" if info.get("outline_unknown") else ""
    return "needs review" + what + (f": {reasons}" if reasons else "")


def _write_seg_and_rtstruct(parts: list, reference: CTReference, seg_path: Path, rt_path: Path,
                            description: str, generation: dict | None, series: str,
                            tumour_note: str | None = None, progress=None) -> list[Path]:
    """``generation``: {"tumour" / "lungs": AUTOMATIC or MANUAL} (:func:`export_results`); ``series``: the writing
    command (its series numbers: :data:`lungai.dicom.seg.SERIES_NUMBERS`); ``tumour_note``: the tumour's
    :func:`review_text`.  ``progress`` (optional, :mod:`lungai.progress`): two steps, the SEG written, the RTSTRUCT
    written (each seconds on a whole CT's lungs), each named on the bar before it is written ("writing DICOM SEG": one
    call of highdicom; the RTSTRUCT's slices contoured counted: :data:`lungai.dicom.rtstruct.RTSTRUCT_CONTOURING`)."""
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import SERIES_NUMBERS, generation_of, write_seg

    from lungai.dicom.roles import GTV_ROLES

    progress = progress or NullProgress()
    # QA startfollow66 (lungai lungs LUNG1-003/CT): the bar stood on "written" through the SEG (3.0-6.6 s of a shared
    # machine), on "DICOM SEG written" through the RTSTRUCT (2.4-4.2 s)
    progress.update(0, "writing DICOM SEG")
    made = [generation_of(generation, "tumour" if p[1] in GTV_ROLES else "lungs") for p in parts]
    tumours = [p for p in parts if p[1] in GTV_ROLES] if tumour_note else []
    seg = write_seg({p[0]: p[4] for p in parts}, reference, seg_path, roles={p[0]: p[1] for p in parts},
                    description=description, generation={p[0]: g for p, g in zip(parts, made)},
                    series_number=SERIES_NUMBERS[series]["seg"], notes={p[0]: tumour_note for p in tumours},
                    notes_full_in="SR", progress=progress)   # the SR (its Case group: each review reason) with them
    progress.update(1, "DICOM SEG written")
    rt = write_rtstruct({p[3]: p[4] for p in parts}, reference, rt_path, label=description,
                        generation={p[3]: g for p, g in zip(parts, made)},
                        series_number=SERIES_NUMBERS[series]["rtstruct"],
                        notes={p[3]: tumour_note for p in tumours}, progress=progress)
    progress.update(1, "DICOM RTSTRUCT written")
    return [seg, rt]


# the lungai commands whose lung label map is lungai's automatic lungs (lungai.lungs), with the files of theirs that are
# those lungs: `lungai lungs` (None: every file it records - its map, SEG, RTSTRUCT), `lungai demo` (its lungs.nii.gz
# only, not e.g. labels.nii.gz, the synthetic sample's truth)
LUNGS_FILES = {"lungs": None, "demo": ("lungs.nii.gz",)}
LUNGS_COMMANDS = tuple(LUNGS_FILES)
COHORT_LUNGS_DIGEST = "lungs_digest"    # in a cohort patient's result.json: lungs.nii.gz as written (file_digest)


def lungs_made_by(path) -> str | None:
    """The lungai command that made the lung mask file ``path`` (``FILE#R,L`` / ``FILE#LABEL``: its file) - the
    output marker beside it lists it as that command wrote it, unchanged (:func:`lungai.io.outputs.written_by`) and
    as its lungs (:data:`LUNGS_FILES`), or the result.json beside it is a ``lungai cohort`` patient record whose lungs
    are automatic (:data:`lungai.dicom.cohort.AUTO_LUNGS`, not the RTSTRUCT's) and that records this file's content
    as written (:data:`COHORT_LUNGS_DIGEST`; a record of an older cohort without it: the user's) - or None: a file
    of the user's, or one edited or replaced since.  It depends on the file only, not on how it was given (``--lungs``
    or a ``--results`` folder); a DICOM SEG whose lung segments say SlicerLungAI made them (:func:`_lungai_seg`:
    dicom-export's SEG of lungai's lungs) is "lungs".  Its generation: :func:`lungai.dicom.seg.generation_by`.
    The rule of :func:`tumour_made_by` too."""
    from lungai.dicom.cohort import AUTO_LUNGS, LUNGS
    from lungai.io.read import file_digest
    from lungai.segment_roles import is_lung

    return _made_by(path, LUNGS_FILES, LUNGS, lambda lungs: lungs == AUTO_LUNGS, "lungs", COHORT_LUNGS_DIGEST,
                    file_digest, is_lung, "lungs")


# the lungai commands whose tumour mask file is lungai's automatic tumour (lungai.seg), with its name
TUMOUR_FILES = {"segment": ("tumor.nii.gz",), "demo": ("tumor.nii.gz",)}


def tumour_made_by(path) -> str | None:
    """The lungai command that made the tumour mask file ``path`` (``FILE#N``: its file), by the rule of
    :func:`lungs_made_by`: the output marker beside it lists it as that command's tumour (:data:`TUMOUR_FILES`)
    written, unchanged since (:func:`lungai.io.outputs.written_by`); a ``lungai cohort`` patient folder's
    tumour.nii.gz whose record says the tumour is the automatic segmentation (not the RTSTRUCT's GTV) and records
    its voxels as written (:data:`TUMOUR_DIGEST`): "cohort"; a DICOM SEG whose tumour segments say SlicerLungAI made
    them (dicom-export's SEG of lungai's automatic tumour): "segment" - or None: a file of the user's, or lungai's
    edited or replaced since.  QA (cohortprov62): a cohort's automatic tumour and dicom-export's AUTOMATIC tumour SEG
    given to dose-features --gtv were named by their file name alone, as a clinician's GTV."""
    from lungai.dicom.cohort import TUMOUR
    from lungai.segment_roles import segment_role

    def voxels(file):
        return mask_digest(sitk.ReadImage(str(file)))

    return _made_by(path, TUMOUR_FILES, TUMOUR, lambda tumour: str(tumour).lower().startswith("automatic"), "tumour",
                    TUMOUR_DIGEST, voxels, lambda label: segment_role(label) == "tumour", "segment")


def _made_by(path, files: dict, cohort_name: str, automatic, part: str, digest_key: str, digest, in_seg,
             seg_command: str) -> str | None:
    """The one rule of :func:`lungs_made_by` and :func:`tumour_made_by`: the lungai command whose output marker lists
    the file as its ``files`` entry, unchanged; else "cohort" for a cohort patient folder's ``cohort_name`` whose
    done record's provenance of ``part`` is ``automatic`` and whose ``digest_key`` is ``digest`` of the file now;
    else ``seg_command`` for a DICOM SEG whose segments ``in_seg`` (by label) all say SlicerLungAI made them."""
    import json

    from lungai.dicom.masks import split_selector
    from lungai.io.outputs import written_by

    file = Path(split_selector(path)[0])
    made = next((command for command, names in files.items()
                 if (names is None or file.name in names) and written_by(file, command)), None)
    from lungai.dicom.cohort import RESULT

    if made is None and file.name == cohort_name and file.is_file() and not file.is_symlink():
        try:
            record = json.loads((file.parent / RESULT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and record.get("status") == "done" \
                and isinstance(record.get("provenance"), dict) and automatic(record["provenance"].get(part)):
            recorded = record.get(digest_key)
            with contextlib.suppress(OSError, RuntimeError):    # unreadable: the user's
                made = "cohort" if recorded is not None and recorded == digest(file) else None
    if made is None and file.is_file() and not file.is_symlink() and _lungai_seg(file, in_seg):
        made = seg_command
    return made


def _lungai_seg(file: Path, in_seg) -> bool:
    """Whether ``file`` is a DICOM SEG whose segments ``in_seg`` (by label: :func:`lungai.segment_roles.is_lung`
    for the lungs, the tumour role for the tumour) all say SlicerLungAI made them (SegmentAlgorithmType AUTOMATIC,
    SegmentAlgorithmName SlicerLungAI: what ``lungai dicom-export`` writes for ``lungai lungs``' lungs or lungai's
    automatic tumour; the user's are MANUAL without a name)."""
    import pydicom

    from lungai.dicom.seg import AUTOMATIC

    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not DICOM: a label map
        return False
    if str(getattr(ds, "Modality", "")) != "SEG":
        return False
    found = [s for s in getattr(ds, "SegmentSequence", None) or [] if in_seg(str(getattr(s, "SegmentLabel", "")))]
    return bool(found) and all(str(getattr(s, "SegmentAlgorithmType", "")) == AUTOMATIC
                               and str(getattr(s, "SegmentAlgorithmName", "")) == "SlicerLungAI" for s in found)


# the steps export_lungs / export_results report to their ``progress`` (EXPORT_STEPS, RESULTS_STEPS): in the light
# package module lungai.dicom, imported above (a command's bar counts them before SimpleITK and this module are imported)
# the bar's words while the results are checked against each other before any object is written (lungai dicom-export's
# reading, notes and checks, export_results' masks split into segments and radiomics volumes), each sub-step after ": "
RESULTS_CHECKING = "checking the results"


def export_lungs(reference: CTReference, labels: sitk.Image, stem, progress=None) -> list[Path]:
    """Lung label map (1 right, 2 left) of ``lungai lungs`` (AUTOMATIC) -> ``<stem>.seg.dcm`` and
    ``<stem>.rtstruct.dcm``.  ``progress`` (optional, :mod:`lungai.progress`): :data:`EXPORT_STEPS` steps, one per
    file written (QA firstbar64: both were one step of ``lungai lungs``' bar, 6 s on LUNG1-003 without a move)."""
    from lungai.dicom.seg import AUTOMATIC

    stem = Path(stem)
    check_output_folder(stem.parent, reference)
    parts = lung_parts(labels)
    if not parts:
        (progress or NullProgress()).update(EXPORT_STEPS, "no lung: no DICOM SEG / RTSTRUCT")
        return []
    return _write_seg_and_rtstruct(parts, reference, stem.with_name(stem.name + ".seg.dcm"),
                                   stem.with_name(stem.name + ".rtstruct.dcm"), "lungai lungs", {"lungs": AUTOMATIC},
                                   "lungs", progress=progress)


# mask_volume_ml: the volume (ml) of a mask's voxels > 0 - the one volume of a mask in lungai (lungai.volume), so
# the SR's ``volume_ml`` of each segment, the notes and checks of ``lungai segment`` / ``lungai dicom-export`` are
# result.json's ``tumour_volume_ml`` unrounded.  A mask read from a NIfTI file holds the spacing NIfTI stores
# (float32): give it the CT's geometry first (:func:`on_ct_grid`) - QA exportfollow68: LUNG1-003's tumour was
# 7.482552831 ml in ``lungai segment``'s SR and 7.482552801784366 ml in ``lungai dicom-export``'s of the same
# tumor.nii.gz.  Importable from here as before.


def on_ct_grid(mask: sitk.Image | None, ct: sitk.Image) -> sitk.Image | None:
    """``mask`` (read onto ``ct``'s grid: :func:`lungai.io.read_mask`, which takes a grid equal within its
    tolerance as the same) with exactly ``ct``'s spacing, origin and direction - those of the DICOM CT, not a NIfTI
    file's float32 copy of them: its volume (:func:`mask_volume_ml`) is then the one ``lungai segment`` computed on
    the CT.  ``mask`` itself when None or of another size."""
    if mask is None or mask.GetSize() != ct.GetSize():
        return mask
    out = sitk.Image(mask)
    out.CopyInformation(ct)
    return out


# a radiomics table's tumour volume may differ from the exported tumour's by this fraction (VoxelVolume: rounding
# and resampling; MeshVolume, when there is no VoxelVolume: the mesh's surface runs inside the voxels)
RADIOMICS_VOLUME_TOLERANCE = {"VoxelVolume": 0.05, "MeshVolume": 0.15}
# the volume features of a radiomics table, (feature class, feature) -> tolerance: pyradiomics' shape VoxelVolume /
# MeshVolume and their IBSI tags (`--params ibsi-*`: class "morph", morph_vol_approx / morph_volume)
RADIOMICS_VOLUME_FEATURES = {("shape", "VoxelVolume"): RADIOMICS_VOLUME_TOLERANCE["VoxelVolume"],
                             ("shape", "MeshVolume"): RADIOMICS_VOLUME_TOLERANCE["MeshVolume"],
                             ("morph", "vol_approx"): RADIOMICS_VOLUME_TOLERANCE["VoxelVolume"],
                             ("morph", "volume"): RADIOMICS_VOLUME_TOLERANCE["MeshVolume"]}


def _other_volume(given_ml: float, exported_ml: float, tolerance: float) -> bool:
    """True when a volume an input reports for the tumour (``given_ml``) is not the exported tumour's: they differ by
    more than ``tolerance`` (a fraction of the exported volume)."""
    return abs(given_ml - exported_ml) > tolerance * max(exported_ml, 1e-9)


RESULT_VOLUME_TOLERANCE = RADIOMICS_VOLUME_TOLERANCE["VoxelVolume"]    # result.json's tumour_volume_ml: voxels too
EDITED_MASK_FIX = ("a tumour mask edited after `lungai segment` (or another mask) is the user's: export it without "
                   "--result (as MANUAL, without lungai's confidence: --tumour FILE, whose folder's result.json is then "
                   "not used); give --result only with the tumor.nii.gz of the same run")


NOT_A_SEGMENTATION_FIX = ("export the tumour without --result (instead of --results DIR, give the folder's masks with "
                          "--tumour / --lungs): it is then exported without a confidence (the user's, MANUAL, unless lungai's unchanged file); --result takes the result.json that `lungai segment` / `lungai demo` wrote with the "
                          "tumour mask of the same run")
# a cohort patient record of the RTSTRUCT's GTV: --results DIR alone exports the folder's tumour as MANUAL (4c4038e)
CONTOURED_RECORD_FIX = ("drop --result: --results DIR alone exports the folder's tumour as the user's contour (MANUAL, "
                        "without a confidence), and so does --tumour without --result; --result takes the result.json "
                        "that `lungai segment` / `lungai demo` wrote with the tumour mask of the same run")


def contoured_tumour_record(info: dict | None) -> str | None:
    """The tumour's provenance (e.g. "RTSTRUCT GTV") when ``info`` is a ``lungai cohort`` patient record whose tumour
    is not an automatic segmentation (the oncologist's RTSTRUCT GTV), else None.  Such a record holds no lungai
    confidence: ``dicom-export --results`` of its folder exports the folder's tumour as the user's (MANUAL) and
    leaves the record out, with a note; given with ``--result`` it is refused (:func:`check_lungai_result`)."""
    if not isinstance(info, dict) or not ("provenance" in info and "status" in info):
        return None
    tumour_from = info["provenance"].get("tumour") if isinstance(info["provenance"], dict) else None
    return str(tumour_from) if tumour_from is not None and not str(tumour_from).lower().startswith("automatic") \
        else None


def check_lungai_result(info: dict | None, source: str = "result.json") -> None:
    """A result.json given for the export must be the record of a lungai tumour segmentation (it makes the tumour
    SlicerLungAI's, AUTOMATIC, with its confidence): ``lungai segment``'s / ``lungai demo``'s, or a ``lungai cohort``
    patient record of an automatic tumour (it holds the segmentation's confidence, review flag, method and model:
    :data:`lungai.dicom.cohort.SEGMENTATION_FIELDS`).  One without ``tumour_volume_ml`` (``tumor_volume_ml`` before) or ``confidence`` - e.g. a
    cohort record whose tumour is the oncologist's RTSTRUCT GTV (``provenance``), or one of an older lungai - or whose
    provenance says the tumour is not an automatic segmentation is refused."""
    if not info:
        return
    tumour_from = (info.get("provenance") or {}).get("tumour") if isinstance(info.get("provenance"), dict) else None
    cohort = "provenance" in info and "status" in info
    lacks = [k for k in ("tumour_volume_ml", "confidence") if result_value(info, k) is None]
    manual = tumour_from is not None and not str(tumour_from).lower().startswith("automatic")
    if lacks or manual:
        what = ("a `lungai cohort` patient record" if cohort else "not lungai segment's result")
        why = (f"its tumour is {tumour_from}" if manual or (tumour_from and not cohort) else
               f"it has no {' / '.join(lacks)}" + (" (written by a lungai cohort before it recorded the automatic "
                                                    "tumour's confidence: delete the patient's folder and run lungai "
                                                    "cohort again to redo it)" if cohort and tumour_from else ""))
        raise InputError(f"{source} is {what}, not the record of a lungai tumour segmentation ({why}), so the tumour "
                         "would be exported as made by SlicerLungAI (AUTOMATIC) with a confidence that is not its "
                         "own", CONTOURED_RECORD_FIX if cohort and manual else NOT_A_SEGMENTATION_FIX)


# in result.json (lungai segment, a cohort patient): the tumour mask's voxels as written (mask_digest)
TUMOUR_DIGEST = "tumour_mask_digest"


def mask_digest(mask: sitk.Image) -> str:
    """A digest of a mask's voxels (nonzero or not, in array order, with the array's shape) - of the content, not of
    the file: a copied or re-saved mask is the same, an edited one (even with its volume kept) is another."""
    import hashlib

    arr = np.ascontiguousarray(sitk.GetArrayViewFromImage(mask) > 0)
    return hashlib.sha256(str(arr.shape).encode("ascii") + np.packbits(arr).tobytes()).hexdigest()[:16]


def check_result_volume(info: dict | None, tumour: sitk.Image, source: str = "result.json") -> None:
    """``lungai segment``'s result.json (its confidence, review flag; the tumour then exported as SlicerLungAI's,
    AUTOMATIC) must describe the exported tumour: it is a lungai segmentation's record (:func:`check_lungai_result`),
    the mask's voxels are those it records (:data:`TUMOUR_DIGEST`; QA: a mask edited with its volume kept passed)
    and its ``tumour_volume_ml`` is the exported mask's volume (within ``RESULT_VOLUME_TOLERANCE``; a record without
    the digest, of an older lungai: this check only), else lungai's confidence of another mask would be reported
    for this one."""
    if not info:
        return
    check_lungai_result(info, source)
    given, exported = float(result_value(info, "tumour_volume_ml")), mask_volume_ml(tumour)
    recorded = info.get(TUMOUR_DIGEST)
    if isinstance(recorded, str) and recorded != mask_digest(tumour):
        raise InputError(f"{source} describes another tumour mask: the exported tumour ({exported:.2f} ml) is not, "
                         f"voxel for voxel, the mask that run wrote ({given:.2f} ml; edited or replaced since), so "
                         "its confidence and review flag are not this mask's", EDITED_MASK_FIX)
    if _other_volume(given, exported, RESULT_VOLUME_TOLERANCE):
        raise InputError(f"{source} describes another tumour mask: its tumour_volume_ml is {given:.2f} ml, the exported "
                         f"tumour's volume {exported:.2f} ml, so its confidence and review flag are not this mask's",
                         EDITED_MASK_FIX)


def ct_record(ct_path, series_uid: str | None = None) -> dict:
    """What a result.json records of its DICOM CT, as a ``lungai cohort`` patient record does: ``patient_id`` (the
    PatientID) and ``inputs.ct.series_uid`` (SeriesInstanceUID) - ``dicom-export --results`` compares them with the
    CT it is given (:func:`check_result_ct`); {} for a NIfTI / NRRD / MHA CT (no ids to record)."""
    from lungai.dicom.reference import dicom_ct_header

    ds = dicom_ct_header(ct_path, series_uid) if ct_path else None
    if ds is None:
        return {}
    patient = str(getattr(ds, "PatientID", "") or "").strip()
    series = str(getattr(ds, "SeriesInstanceUID", "") or "").strip()
    return {**({"patient_id": patient} if patient else {}),
            **({"inputs": {"ct": {"series_uid": series}}} if series else {})}


def result_record(ct_path, series_uid: str | None, tumour: sitk.Image) -> dict:
    """What ``lungai segment`` and ``lungai demo`` add to their result.json for ``dicom-export --results``: the CT
    (:func:`ct_record`) and the tumour mask's voxels (:data:`TUMOUR_DIGEST`: a tumor.nii.gz edited since is the
    user's, :func:`check_result_volume`)."""
    return {**ct_record(ct_path, series_uid), TUMOUR_DIGEST: mask_digest(tumour)}


def recorded_ct(info: dict | None) -> tuple[str | None, str | None]:
    """(PatientID, CT SeriesInstanceUID) a result.json records (:func:`ct_record`; a ``lungai cohort`` patient record:
    ``patient_id``, ``inputs.ct.series_uid``); None for what it does not record."""
    if not isinstance(info, dict):
        return None, None
    patient = info.get("patient_id")
    inputs = info.get("inputs") if isinstance(info.get("inputs"), dict) else {}
    ct = inputs.get("ct") if isinstance(inputs.get("ct"), dict) else {}
    series = ct.get("series_uid")
    text = lambda v: (str(v).strip() or None) if v is not None else None  # noqa: E731
    return text(patient), text(series)


def check_result_ct(info: dict | None, source, patient_id, series_uid) -> bool:
    """The results of a folder whose result.json records its CT (:func:`recorded_ct`) must be of the CT given
    (``patient_id``, ``series_uid``: its PatientID and SeriesInstanceUID): another patient's or series' are refused,
    naming both - its masks would go into DICOM objects of this CT's patient.  Returns whether anything was compared
    (False: a result.json of an older lungai, or of a NIfTI CT, records neither)."""
    patient, series = recorded_ct(info)
    given_patient, given_series = (str(v or "").strip() for v in (patient_id, series_uid))
    fix = ("give the results folder of this CT (or the CT these results were computed on: --ct FOLDER, --series "
           "UID); for a re-exported / anonymised copy of that CT (another PatientID or series UID), either give its "
           "mask files alone (--tumour / --lungs, without --results / --result: exported without lungai's "
           "confidence) or re-run `lungai segment` on this CT and export that results folder")
    if patient and given_patient and patient.casefold() != given_patient.casefold():
        raise InputError(f"{source} is of patient {patient!r}, the CT given (--ct) of patient {given_patient!r}: its "
                         "tumour / lungs would be exported into DICOM objects of another patient", fix)
    if series and given_series and series != given_series:
        raise InputError(f"{source} is of CT series {series}, the CT given (--ct) is series {given_series}: its "
                         "tumour / lungs were computed on another CT", fix)
    return bool((patient and given_patient) or (series and given_series))


UNCERTAINTY_FIX = ("give lungai segment's uncertainty.nii.gz with --uncertainty (the Parametric Map is labelled "
                   "the predictive entropy of the tumour probability, in bit), or leave --uncertainty out")
# lungai's other maps, known by their file names when they carry no description (an older lungai's)
NOT_UNCERTAINTY_FILES = {"probability.nii.gz": "the tumour probability", "tumor.nii.gz": "the tumour mask",
                         "tumour.nii.gz": "the tumour mask", "mutual_information.nii.gz": "the mutual information"}


def uncertainty_input(image: sitk.Image, name: str) -> str:
    """Check that ``image`` (read from the file ``name``) is lungai's predictive entropy map before it is written as
    the Parametric Map labelled so ("predictive entropy of the tumour probability", bit); returns a note ('' when
    none).  A map describing itself (the NIfTI description :func:`lungai.seg.uncertainty.described` writes) as
    something else - the probability, the mutual information - is refused; one without a description (an older
    lungai's, one saved again by Slicer) is refused under the name of lungai's other maps or with values outside
    0..1 bit (a binary entropy's range), else taken with a note.  QA: probability.nii.gz was exported as entropy."""
    from lungai.seg.uncertainty import ENTROPY_MEANING, ENTROPY_UNIT, description

    said = description(image)
    if said:
        if said.startswith(ENTROPY_MEANING):
            return ""
        raise InputError(f"the uncertainty map {name} holds \"{said}\", not lungai's \"{ENTROPY_MEANING}, "
                         f"{ENTROPY_UNIT}\"", UNCERTAINTY_FIX)
    if name.lower() in NOT_UNCERTAINTY_FILES:
        raise InputError(f"the uncertainty map {name} is lungai segment's {NOT_UNCERTAINTY_FILES[name.lower()]} "
                         "map, not its predictive entropy", UNCERTAINTY_FIX)
    values = sitk.GetArrayViewFromImage(image)
    lo, hi = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1.0 + 1e-6:
        raise InputError(f"the uncertainty map {name} has values from {lo:.4g} to {hi:.4g}, outside the 0 to 1 bit "
                         "of a predictive entropy of the tumour probability", UNCERTAINTY_FIX)
    return (f"the uncertainty map {name} carries no description (lungai's: \"{ENTROPY_MEANING}, {ENTROPY_UNIT}\"): it "
            "is exported as that - check that it is lungai segment's uncertainty.nii.gz")


RESULT_WITHOUT_TUMOUR_FIX = ("give its tumour mask with --tumour (the tumor.nii.gz / tumour.nii.gz of the same "
                             "run), or leave --result out")


def check_result_for_tumour(info: dict | None, tumour: sitk.Image | None, source: str = "result.json") -> None:
    """A result.json exported with the results describes their tumour: with the tumour, it must be that mask's record
    (:func:`check_result_volume`); without a tumour, one holding a confidence or a tumour volume (a lungai
    segmentation's, a cohort patient's automatic tumour) is refused - its confidence, review flag and method would
    go into the SR's Case group for a tumour that is not exported."""
    if not info:
        return
    if tumour is not None:
        check_result_volume(info, tumour, source)
    elif any(result_value(info, k) is not None for k in ("confidence", "tumour_volume_ml")):
        raise InputError(f"{source} holds the confidence and review flag of a lungai tumour segmentation, but no "
                         "tumour is exported: they would be reported without their tumour", RESULT_WITHOUT_TUMOUR_FIX)


def check_radiomics_volume(radiomics, mask: sitk.Image, source: str = "the radiomics table", segment: str = "tumour",
                           what: str = "tumour", results_file: str | None = None) -> None:
    """The radiomics table's ``segment`` (its volume: shape VoxelVolume, else MeshVolume, or their IBSI tags
    morph_vol_approx / morph_volume, :data:`RADIOMICS_VOLUME_FEATURES`) must be the exported ``mask`` (the tumour, a
    lung: ``what``): features of another mask would be reported in this segment's SR group.  QA on LUNG1-003: IBSI
    features and the lungs' features were not checked at all.  ``results_file``: the radiomics came from a
    ``--results`` folder (e.g. a cohort patient's features.csv, its lungs edited since), not from ``--radiomics``: the
    fix is to give recomputed radiomics with --radiomics (there is no --radiomics to leave out)."""
    volume = radiomics_volume(radiomics, segment)
    if volume is not None:
        table, name, tolerance = volume
        exported = mask_volume_ml(mask)
        if _other_volume(table, exported, tolerance):
            option = "--tumour" if segment == "tumour" else "--lungs" if "lung" in segment else "--mask"
            if results_file:
                source = f"the radiomics of {results_file}"
                fix = (f"compute the radiomics on this {what} mask (lungai radiomics {option} with the same mask) and "
                       f"give that CSV with --radiomics (it is used instead of {Path(results_file).name})")
            else:
                fix = (f"give the radiomics CSV computed on this {what} mask (lungai radiomics {option} with the same "
                       "mask), or leave --radiomics out")
            raise InputError(f"{source} was computed on another {what} mask: its {segment} {name} is {table:.2f} ml, "
                             f"the exported {what}'s volume {exported:.2f} ml", fix)


def radiomics_volume(radiomics, segment: str) -> tuple[float, str, float] | None:
    """The volume (ml) a radiomics table gives ``segment``, the feature's name and its tolerance
    (:data:`RADIOMICS_VOLUME_FEATURES`, the first found: VoxelVolume before MeshVolume); None without one."""
    if radiomics is None or not len(radiomics):
        return None
    rows = radiomics[radiomics.segment.astype(str) == segment]
    for (feature_class, feature), tolerance in RADIOMICS_VOLUME_FEATURES.items():
        values = rows[(rows.feature_class.astype(str) == feature_class) & (rows.feature.astype(str) == feature)].value
        if len(values):
            name = feature if feature_class == "shape" else f"{feature_class}_{feature}"
            return float(values.iloc[0]) / 1000.0, name, tolerance
    return None


# the column radiomics_of_parts adds to a radiomics table whose segments it renamed: each row's segment as the table
# named it (GTV-1), which the SR group taking its features (Tumour) names in its comment
SOURCE_SEGMENT = "source_segment"


def radiomics_of_parts(radiomics, parts: list, settings=None):
    """The radiomics table (and its settings, :func:`radiomics_grid_comment`) with each exported part's segment
    named as the part's SR group takes it, and the notes saying so: (radiomics, settings, notes).  A part (SEG
    label, role, radiomics segment, RTSTRUCT name, mask) whose radiomics segment (``tumour``, ``right_lung`` ...) the
    table lacks takes the table's segment of its name (a SEG segment ``GTV-1`` exported alone: the table's ``GTV-1``;
    its volume is then checked, :func:`check_radiomics_volume`; its own name kept in :data:`SOURCE_SEGMENT`), else
    the one segment of its role
    (:func:`lungai.dicom.roles.structure_role`: a GTV for the tumour, ``Lung-Right`` for the right lung) whose volume
    is the exported mask's (:data:`RADIOMICS_VOLUME_FEATURES`, with their tolerance): `lungai radiomics --rtstruct RS
    --structure GTV-1` exported with `--tumour labels.nii.gz#1` (QA on LUNG1-003: GTV-1's 107 features went into an
    SR group "GTV-1" of their own, linked to no SEG segment, beside a Tumour group of its volume alone).  A segment of
    that role that is not the exported mask (another volume, or none in the table to tell) keeps a group of its own,
    with a note saying so."""
    if radiomics is None or not len(radiomics):
        return radiomics, settings, []
    from lungai.dicom.roles import GTV_ROLES, structure_role
    # after the return above: lungai.radiomics imports its features (scipy.signal ...) - 3-4 s of `lungai segment`'s
    # DICOM export on LUNG1-003, which has no radiomics (QA dicomread65)
    from lungai.radiomics.segments import STANDARD_SEGMENTS
    names = list(dict.fromkeys(radiomics.segment.astype(str)))
    renames: dict = {}
    unmatched: dict = {}     # a segment of a part's role that is not that part: {name: why}
    notes = []
    for label, role, rad_name, structure, mask in parts:
        if rad_name in names:
            continue
        free = [n for n in names if n not in renames and n not in STANDARD_SEGMENTS]
        same = [n for n in free if n.casefold() in {str(label).casefold(), str(structure).casefold()}]
        if len(same) == 1:
            renames[same[0]] = rad_name
            continue
        roles = set(GTV_ROLES) if role in GTV_ROLES else {role}
        candidates = [n for n in free if structure_role(n) in roles]
        exported = mask_volume_ml(mask)
        volumes = {n: radiomics_volume(radiomics, n) for n in candidates}
        matching = [n for n in candidates if volumes[n] and not _other_volume(volumes[n][0], exported, volumes[n][2])]
        if len(matching) == 1:
            n = matching[0]
            renames[n] = rad_name
            notes.append(f"the radiomics table's {n} ({volumes[n][1]} {volumes[n][0]:.1f} ml) is the exported "
                         f"{label} ({exported:.1f} ml): its features are reported in the SR group of the SEG segment "
                         f"{label}")
        for n in (c for c in candidates if c not in renames):   # said once (the first part it may be), unless taken
            if len(matching) > 1 and n in matching:
                why = (f"is one of {', '.join(matching)}, which all have the volume of the exported {label} "
                       f"({exported:.1f} ml), so which one is the {label} cannot be told")
            elif volumes[n]:
                why = (f"is not the exported {label} (its {volumes[n][1]} {volumes[n][0]:.1f} ml, the {label}'s "
                       f"{exported:.1f} ml)")
            else:
                why = (f"may or may not be the exported {label} ({exported:.1f} ml): the table holds no volume of it "
                       "(shape VoxelVolume / MeshVolume) to tell")
            unmatched.setdefault(n, why)
    for n, why in unmatched.items():
        if n not in renames:
            notes.append(f"the radiomics table's {n} {why}: its features are reported in an SR group of their own, "
                         f"{n}, linked to no SEG segment")
    if renames:     # the table's own name kept (SOURCE_SEGMENT): the group's comment names it (measurement_groups)
        segment = radiomics.segment.astype(str)
        radiomics = radiomics.assign(segment=segment.replace(renames), **{SOURCE_SEGMENT: segment})
        if settings is not None and len(settings) and "segment" in settings:
            settings = settings.assign(segment=settings["segment"].astype(str).replace(renames))
    return radiomics, settings, notes


def check_radiomics_volumes(radiomics, parts: list, results_file: str | None = None) -> None:
    """:func:`check_radiomics_volume` for each exported part (SEG label, role, radiomics segment, RTSTRUCT name,
    mask) whose radiomics segment is one of its own (a lung, a GTV of a SEG's several; the whole tumour is checked
    against the union of its GTVs)."""
    for label, role, rad_name, _structure, mask in parts:
        if rad_name != "tumour":
            check_radiomics_volume(radiomics, mask, segment=rad_name,
                                   what=label.lower() if str(role).startswith("lung") else label,
                                   results_file=results_file)


# of a `lungai rp predict` row: the SR's Case group (rp_risk ...; rp_high_risk, 1 = HIGH RISK, and rp_threshold, the
# model's threshold, where the CSV has them - rp_prediction.csv and the Slicer panel's table have both, an older
# rp_prediction.csv high_risk only: lungai.rp.predict.with_threshold)
RP_COLUMNS = ("risk", "risk_low", "risk_high", "high_risk", "threshold")
RP_RISKS = ("risk", "risk_low", "risk_high", "threshold")     # risks: between 0 and 1
RP_FIX = ("give the CSV `lungai rp predict` wrote for this patient (columns case, risk, risk_low, risk_high, "
          "threshold, high_risk ...); a table of your own needs these names, risks between 0 and 1 and high_risk "
          "1 / 0")


def rp_row(row: dict | None, path, what: str = "RP prediction CSV") -> dict | None:
    """The row of a ``--rp`` CSV (``lungai rp predict``'s, or typed by hand / saved from a spreadsheet) as the SR
    reports it, checked before any DICOM object is written (QA rpcsv63): it must have a ``risk`` column (a table
    naming it otherwise - probability, Risk - gave an SR with rp_high_risk alone, or "nothing to export"); its
    ``high_risk`` may be written as the usual spellings of a boolean - 1/0, yes/no, true/false, y/n ... as ``rp
    train`` reads a 0/1 outcome (:data:`lungai.rp.columns.TRUE_WORDS` / ``FALSE_WORDS``) - and becomes 1 / 0, any
    other value (HIGH, 0.5, 2) is refused naming the accepted ones; the values of :data:`RP_COLUMNS` must be
    finite numbers (:func:`check_table_numbers`) and the risks and threshold (:data:`RP_RISKS`) between 0 and 1 (a
    risk in percent, 30, went into the SR as rp_risk 30); a high_risk against its row's risk and threshold (rp
    predict's rule: risk >= threshold) is refused.  A row without a risk (its ``risk`` empty) is refused - with a
    high_risk, an interval or a threshold the SR got a HIGH RISK flag (or an interval) without the risk it came from,
    or with nothing the SR had no RP at all although ``--rp`` was given (QA rpfollow63) -, and so is an interval
    rp predict cannot write (:func:`check_rp_interval`).  An empty risk_low / risk_high / threshold / high_risk stays
    "not given"."""
    from lungai.io.tables import percent_number
    from lungai.rp.columns import FALSE_WORDS, TRUE_WORDS, suggest

    if row is None:
        return None
    if "risk" not in row:
        raise InputError(f"the {what} {path} has no column 'risk'{suggest('risk', row)} (its columns: "
                         f"{', '.join(map(str, row))}): it holds no RP risk for the DICOM SR", RP_FIX)
    row = dict(row)
    flag = row.get("high_risk")
    if not _text(flag):
        row["high_risk"] = None
    else:
        word = str(flag).strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise InputError(f"the {what} {path} holds {flag!r} in its column 'high_risk', which is not a high-risk "
                             "flag: it must be 1 (HIGH RISK) or 0 - also written yes/no, true/false or y/n",
                             f"write high_risk as 1 or 0 (yes/no, true/false), or leave it empty; {RP_FIX}")
        row["high_risk"] = 1 if word in TRUE_WORDS else 0
    for name in RP_RISKS:   # a spreadsheet's Percentage cell (30%): the risk is 0.3, not the 30 number_hint says
        percent = percent_number(row.get(name)) if isinstance(row.get(name), str) else None
        if percent is not None:
            raise InputError(f"the {what} {path} holds {row[name]!r} in its column {name!r}, a percentage, which is "
                             f"not a risk between 0 and 1: write {percent / 100:g} ({percent:g} % / 100)",
                             "write the risks between 0 and 1, without the percent sign (format the spreadsheet's "
                             "cells as Number, not Percentage); " + RP_FIX)
    check_table_numbers(row, path, what, RP_COLUMNS)
    for name in RP_RISKS:
        if _text(row.get(name)) and not 0 <= float(row[name]) <= 1:
            value = float(row[name])
            percent = (f": it looks like a percentage - divide by 100 ({value:g} -> {value / 100:g})"
                       if 1 < value <= 100 else "")
            raise InputError(f"the {what} {path} holds {value:g} in its column {name!r}, which is not a risk "
                             f"between 0 and 1{percent}", RP_FIX)
    if not _text(row.get("risk")):
        given = [f"{name} {_text(flag) if name == 'high_risk' else _text(row.get(name))}" for name in RP_COLUMNS
                 if _text(row.get(name))]
        raise InputError(f"the {what} {path} holds no risk (its column 'risk' is empty)"
                         + (f" but {', '.join(given)}: the SR would report "
                            + ("a HIGH RISK flag" if row["high_risk"] else "them") + " without the risk they "
                            "belong to" if given else ": the SR would hold no RP risk although --rp was given"),
                         "write the patient's risk (between 0 and 1, as `lungai rp predict` gives it) in 'risk', "
                         "or give the CSV `lungai rp predict` wrote for this patient; without a risk to report, "
                         "leave --rp out")
    check_rp_interval(row, path, what)
    if row["high_risk"] is not None and _text(row.get("threshold")):
        risk, threshold = float(row["risk"]), float(row["threshold"])
        # rp predict's rule, high_risk = risk >= threshold, up to the 5 significant digits it writes them with
        if abs(risk - threshold) > 1e-4 * max(threshold, 1e-3) and (risk >= threshold) != bool(row["high_risk"]):
            raise InputError(f"the {what} {path} holds high_risk {_text(flag)!r} with risk {risk:g} and threshold "
                             f"{threshold:g}: high_risk is 1 where risk >= threshold, 0 below, so the SR would "
                             "contradict itself", "correct high_risk or the threshold (the model's: its model card), "
                             "or give the CSV `lungai rp predict` wrote")
    return row


def check_rp_interval(row: dict, path, what: str = "RP prediction CSV") -> None:
    """The interval of an RP row (its risks between 0 and 1 already) as ``lungai rp predict`` writes it
    (:func:`lungai.rp.uncertainty.risk_with_interval`: widened to hold the risk): both bounds or neither, and
    risk_low <= risk <= risk_high, up to the 5 significant digits rp predict writes them with.  An interval one of
    whose bounds is missing, inverted or not holding its risk is refused, naming the values (QA rpfollow63: risk 0.3
    with risk_low 0.5, or risk_high 0.2, went into the SR as it was, under the comment "the interval rp_risk_low to
    rp_risk_high")."""
    low, high = _text(row.get("risk_low")), _text(row.get("risk_high"))
    if not low and not high:
        return
    fix = ("write the interval `lungai rp predict` gave with this risk (risk_low <= risk <= risk_high), or leave "
           "both risk_low and risk_high empty; " + RP_FIX)
    if not (low and high):
        given, missing = ("risk_low", "risk_high") if low else ("risk_high", "risk_low")
        raise InputError(f"the {what} {path} holds {given} {low or high} but no {missing}: an interval needs both "
                         "bounds", fix)
    risk, lo, hi = float(row["risk"]), float(low), float(high)

    def below(a, b):     # a < b beyond the 5 significant digits rp predict writes
        return b - a > 1e-4 * max(abs(a), abs(b), 1e-3)

    if below(risk, lo) or below(hi, risk):
        raise InputError(f"the {what} {path} holds risk {risk:g} with risk_low {lo:g} and risk_high {hi:g}: "
                         + ("the bounds are inverted (risk_low above risk_high)" if below(hi, lo) else
                            "the interval does not hold its risk")
                         + " - `lungai rp predict` writes risk_low <= risk <= risk_high", fix)


def dose_column(name) -> bool:
    """A dose metric of a `lungai dose-features` row (dose_mld_gy, dose_v20_pct ...): the SR's Dose group."""
    return str(name).startswith("dose_")


def _not_a_number(value) -> bool:
    """A table value that is neither a finite number nor empty (None / NaN / blank: not measured): a text, or an
    infinite value (inf, -inf, or a text such as 1e400 beyond a float: DICOM cannot encode it)."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return value is not None
    if isinstance(value, (int, np.integer)):
        return False
    if isinstance(value, (float, np.floating)):
        return bool(np.isinf(value))
    text = str(value).strip()
    if not text:
        return False
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return True
    return math.isinf(number)


def check_table_numbers(table, path, what: str, columns) -> None:
    """The values the SR reports from a results CSV (``columns``: names, or a test of a name) must be finite numbers
    (or empty: not measured): a text such as "abc", or inf / 1e400 (:func:`_not_a_number`), is refused naming the
    file, the column and the value, before any DICOM object is written.  ``table``: a DataFrame or one row (dict)."""
    import pandas as pd

    from lungai.io.tables import DECIMAL_COMMA_FIX, PERCENT_FIX, decimal_comma_number, number_hint

    rows = table.to_dict("records") if isinstance(table, pd.DataFrame) else [table or {}]
    wanted = columns if callable(columns) else (lambda c, names=tuple(columns): c in names)
    for row in rows:
        for column, value in row.items():
            if wanted(column) and _not_a_number(value):
                # a spreadsheet's decimal comma (0,42) or Percentage cell (45%): named, with its fix (QA rpfollow63:
                # only "give the CSV as lungai wrote it")
                hint = number_hint(value) if isinstance(value, str) else ""
                fix = (DECIMAL_COMMA_FIX if decimal_comma_number(value) is not None else PERCENT_FIX) + "; " \
                    if hint else ""
                raise InputError(f"the {what} {path} holds {value!r} in its column {column!r}, which is not a "
                                 f"finite number{hint}: it cannot be reported in the DICOM SR",
                                 f"{fix}give the {what} as lungai wrote it (finite numbers in {column!r}; an empty "
                                 "cell: not measured)")


def measurement_groups(segments: dict, info: dict | None = None, radiomics=None, dose: dict | None = None,
                       rp: dict | None = None, radiomics_settings=None) -> list:
    """SR measurement groups: one per written segment ({label: (segment number, role, radiomics segment, mask)})
    with its volume and features, one per other radiomics segment, "Case" (confidence, RP risk) and "Dose" (the dose
    metrics, with a comment naming the masks they were computed on: :func:`dose_masks_comment`).

    ``radiomics``: the long table (case, segment, image_type, feature_class, feature, value) of ``lungai radiomics``;
    ``dose``: a row of ``lungai dose-features`` (its ``masks`` column: the comment of the "Dose" group); ``rp``: a row of ``lungai rp predict`` (risk, risk_low, risk_high; its endpoint, interval
    and warnings: the Case group's comment, :func:`rp_comment`).
    ``radiomics_settings``: its ``_settings.csv`` (the grid of each segment), for the comment of each group with
    radiomic features - a segment's (beside the exported mask's ``volume_ml``) or a features-only one (lungs, lungs
    minus tumour): which grid they were computed on (:func:`radiomics_grid_comment`).
    """
    from lungai.dicom.sr import MeasurementGroup, feature_unit

    features: dict = {}
    ibsi: dict = {}       # feature name -> (IBSI code, IBSI name): the SR's concept of the features IBSI-1 defines
    cases: dict = {}      # the radiomics CSV's case(s) of each segment: whose settings rows tell its grid
    sources: dict = {}    # the table's own name of a segment radiomics_of_parts gave to an exported mask
    if radiomics is not None and len(radiomics):
        from lungai.radiomics.ibsi.mapping import ibsi_code

        for row in radiomics.itertuples(index=False):
            name = f"{row.image_type}_{row.feature_class}_{row.feature}"
            unit = feature_unit(row.image_type, row.feature_class, row.feature)
            features.setdefault(str(row.segment), {})[name] = (float(row.value), unit)
            cases.setdefault(str(row.segment), set()).add(getattr(row, "case", None))
            source = getattr(row, SOURCE_SEGMENT, None)
            if isinstance(source, str) and source != str(row.segment):
                sources.setdefault(str(row.segment), set()).add(source)
            code = ibsi_code(row.image_type, row.feature_class, row.feature)
            if code:
                ibsi[name] = code
    groups = []
    for label, (number, role, rad_name, mask) in segments.items():
        ms = {"volume_ml": (mask_volume_ml(mask), "ml")}
        rad = features.pop(rad_name, {})
        ms.update(rad)
        comment = radiomics_grid_comment(rad_name, radiomics_settings, cases.get(rad_name)) if rad else None
        # features of a segment the table names otherwise (radiomics --structure GTV-1): which, said in the SR itself
        # (QA cohortprov62: only the console said it, a reader of the SR could not tell)
        named = sorted(n for n in sources.get(rad_name, ()) if n.casefold() != str(label).casefold()) if rad else []
        if named:
            comment += (f"; the radiomic features are the radiomics table's segment {', '.join(named)}, taken as the "
                        f"exported {label} (its name or volume)")
        groups.append(MeasurementGroup(label, ms, segment_number=number, role=role, comment=comment,
                                       ibsi={n: ibsi[n] for n in rad if n in ibsi}))
    for rad_name, ms in features.items():   # no exported mask (lungs, lungs_minus_tumour): their grid all the same
        comment = radiomics_grid_comment(rad_name, radiomics_settings, cases.get(rad_name), mask=False)
        groups.append(MeasurementGroup(rad_name, ms, comment=comment, ibsi={n: ibsi[n] for n in ms if n in ibsi}))
    case: dict = {}
    if info:
        case["confidence"] = (info.get("confidence"), "1")
        if "needs_review" in info:
            case["needs_review"] = (float(bool(info["needs_review"])), "1")
        case["review_threshold"] = (info.get("review_threshold"), "1")
        case.update(confidence_method_measurements(info))
    units = {"gy": "Gy", "pct": "%"}
    dose_ms = {name: (float(value), units.get(name.rsplit("_", 1)[-1], "1")) for name, value in (dose or {}).items()
               if dose_column(name) and not isinstance(value, (bool, np.bool_))
               and isinstance(value, (int, float, np.integer, np.floating))}
    for name in RP_COLUMNS:
        if rp and rp.get(name) is not None:
            case[f"rp_{name}"] = (float(rp[name]), "1")
    if case:    # with the reasons of a flagged result (review_text says them in the SEG / RTSTRUCT)
        reasons = [str(r) for r in info.get("review_reasons") or []] if info and info.get("needs_review") else []
        comment = "; ".join(c for c in (confidence_method_comment(info) if info else None,
                                        confidence_caveat_comment(info) if info else None, rp_comment(rp)) if c)
        groups.append(MeasurementGroup("Case", case, comment=comment or None, review_reasons=reasons))
    if dose_ms:   # their own group, whose comment says which masks they were computed on (perhaps not the exported ones)
        groups.append(MeasurementGroup(DOSE_GROUP, dose_ms, comment=dose_masks_comment(dose)))
    return groups


DOSE_GROUP = "Dose"


def _case_key(value) -> str | None:
    """A case id compared: text, spaces around it and letter case ignored; None when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).strip().casefold() or None


def radiomics_grid_comment(segment: str, settings=None, cases=(), mask: bool = True) -> str:
    """The SR comment of a segment's group with radiomic features: ``volume_ml`` is the exported mask's on the CT's
    grid, the radiomic features (their shape volume too: a lung's VoxelVolume on a 2 mm grid differs from it) are of
    the grid the radiomics settings record for the segment - resampled, or the CT's own - or not recorded.  Only
    settings rows of this segment and of one of ``cases`` (the radiomics CSV's case of the segment) count: a
    settings file of another patient or run is "not given", never taken for this one's.  ``mask=False``: a group
    of features only (a radiomics segment with no exported mask: lungs, lungs minus tumour) - no volume_ml to name."""
    head = "radiomic features (shape volume included) computed "
    if mask:
        head = "volume_ml: the exported mask on the CT's grid; " + head
    rows = None
    wanted = {k for k in map(_case_key, cases or ()) if k is not None}
    if settings is not None and len(settings) and {"case", "segment", "grid"} <= set(settings) and wanted:
        rows = settings[(settings["segment"].astype(str) == str(segment))
                        & settings["case"].map(_case_key).isin(wanted)]
    if rows is None or not len(rows):
        return head + "on the grid the radiomics settings CSV records (not given)"
    row = rows.iloc[0]
    grid, spacing = str(row["grid"]), str(row.get("spacing_mm", "")).strip()
    if grid == "native":
        return head + "on the CT's grid"
    return head + f"on the {spacing} mm grid it was resampled to" + ("" if grid == "resampled" else f" ({grid})")


def confidence_method_measurements(info: dict) -> dict:
    """The Case group's count of the uncertainty method that produced the confidence: ``ensemble_members`` (an
    ensemble) or ``mc_dropout_passes`` (MC dropout), from the segmentation's result.json."""
    if info.get("method") == "ensemble" and info.get("members"):
        return {"ensemble_members": (float(info["members"]), "1")}
    if info.get("method") == "mc-dropout" and info.get("mc_passes"):
        return {"mc_dropout_passes": (float(info["mc_passes"]), "1")}
    return {}


def confidence_method_comment(info: dict) -> str | None:
    """The Case group's comment: the method and model that produced the confidence ("Confidence from ensemble of 5,
    model lidc_seg"), or None for a result.json without a confidence or a method."""
    from lungai.scene.results import method_text, model_text

    if info.get("confidence") is None or not info.get("method"):
        return None
    model = model_text(info)
    return f"Confidence from {method_text(info)}, model {model or 'not recorded'}"


def confidence_caveat_comment(info: dict) -> str | None:
    """The Case group's comment on the model's known confidence caveat (:data:`lungai.seg.resources.CONFIDENCE_CAVEATS`):
    the result.json's ``confidence_caveat`` (lungai segment's, lungai demo's, a lungai cohort patient's), else the
    caveat of the shipped model the result.json names (one written before the caveat was recorded):
    :func:`lungai.seg.resources.result_confidence_caveat`; None for a result.json without a confidence or for a
    model without a caveat."""
    from lungai.seg.resources import result_confidence_caveat

    caveat = result_confidence_caveat(info)
    return f"Confidence caveat: {caveat}" if caveat else None


def _text(value) -> str:
    """A text cell of a results CSV: empty for None / NaN / blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def rp_comment(rp: dict | None) -> str | None:
    """What ``lungai rp predict`` says with its risk (rp_prediction.csv), for the SR's Case group: what the risk is
    of - the CSV's ``endpoint`` column (:func:`lungai.rp.predict.rp_endpoint`: grade >= 2 radiation pneumonitis of a
    synthetic-cohort model, a user's model's outcome column), or, for a CSV without it (an older lungai's), that the
    endpoint is not recorded -, what the interval rp_risk_low to rp_risk_high is
    (:func:`lungai.rp.uncertainty.uncertainty_text` of the endpoint: the model's own uncertainty, not the patient's
    chance of RP / of the outcome), the model's ILLUSTRATIVE label (a synthetic-cohort model) and the features
    outside its training range, imputed, or of other radiomics settings
    (:data:`lungai.report.html.RP_WARNINGS`, as the report's banner) - so that the risk is not read in PACS as a
    plain number (QA srrp62: the SR's rp_risk named no endpoint, the console and panel did), the rule of
    rp_high_risk with the threshold and its rule (the CSV's ``threshold`` / ``threshold_rule`` where it has them,
    :func:`lungai.rp.predict.with_threshold`, else "not recorded": QA srhigh62, as rp predict's header,
    :func:`lungai.rp.predict.prediction_header`; a threshold without high_risk: what rp_threshold is), and the row's
    ``warnings`` (QA rpcsv63); None when it says
    nothing (or there is no RP row)."""
    from lungai.report.html import RP_WARNINGS
    from lungai.rp.uncertainty import uncertainty_text

    if not rp:
        return None
    parts = []
    if _text(rp.get("risk")):
        endpoint = _text(rp.get("endpoint"))
        parts.append(f"rp_risk: risk of {endpoint} (the RP prediction CSV's endpoint)" if endpoint else
                     "rp_risk: risk of an endpoint not recorded in the RP prediction CSV (no endpoint column: "
                     "written by an older lungai or by hand); the model card (model_card.md) of the model that "
                     "predicted it names its outcome")
        if _text(rp.get("risk_low")) and _text(rp.get("risk_high")):
            parts.append("the interval rp_risk_low to rp_risk_high: " + uncertainty_text("the", endpoint).rstrip("."))
        if _text(rp.get("high_risk")):     # rp predict's rule, as its header says it (prediction_header)
            rule = f" ({_text(rp.get('threshold_rule'))})" if _text(rp.get("threshold_rule")) else ""
            threshold = (f"rp_threshold {float(rp['threshold']):.3g}, the model's threshold{rule}"
                         if _text(rp.get("threshold")) else
                         "the model's threshold (not recorded in the RP prediction CSV; the model card names it)")
            parts.append(f"rp_high_risk: 1 = HIGH RISK, rp_risk >= {threshold}")
        elif _text(rp.get("threshold")):    # a CSV without high_risk: what rp_threshold is (QA rpfollow63: unsaid)
            rule = f" ({_text(rp.get('threshold_rule'))})" if _text(rp.get("threshold_rule")) else ""
            parts.append(f"rp_threshold: the model's high-risk threshold{rule}, HIGH RISK where rp_risk >= it "
                         "(the RP prediction CSV has no high_risk)")
    parts += [f"RP risk {_text(rp.get('illustrative'))}"] if _text(rp.get("illustrative")) else []
    parts += [f"RP features {what}: {_text(rp.get(key))}" for key, what in RP_WARNINGS if _text(rp.get(key))]
    # the row's own warnings (a training patient's in-sample risk, other radiomics settings, a tumour that needs
    # review ...), as rp predict prints them and the report's banner shows them (QA rpcsv63: the SR dropped them)
    parts += [f"RP warnings: {_text(rp.get('warnings'))}"] if _text(rp.get("warnings")) else []
    return "; ".join(parts) or None


def dose_masks_comment(dose: dict) -> str:
    """The SR comment of the dose group: the masks the metrics were computed on, as the dose CSV's ``masks`` column
    (:func:`lungai.dose.features.masks_text`) says them - the plan's RTSTRUCT contours are not the exported lungs and
    tumour - or, for a dose CSV without it (an older lungai's, a user's), that they are not recorded."""
    from lungai.dose.features import LUNGS_CUT_COLUMN, MASKS_COLUMN

    masks, cut = dose.get(MASKS_COLUMN), dose.get(LUNGS_CUT_COLUMN)
    if isinstance(masks, str) and masks.strip():     # a partial lung (lungs_cut) said with it
        return f"Dose metrics computed on {masks.strip()}" + (f"; {cut.strip()}" if isinstance(cut, str)
                                                               and cut.strip() else "")
    return ("Dose metrics computed on masks not recorded in the dose CSV (no masks column): not necessarily the "
            "lungs and tumour of this export")


EMPTY_TUMOUR_NOTE = "the tumour mask is empty: no SEG / RTSTRUCT segment is written for it"
# the SEG segment / RTSTRUCT ROI of several labels of a label map joined as the tumour (--tumour labels.nii.gz#1,2):
# GTVs without names, perhaps a primary and nodes - role gtv, never "GTVp" (a primary)
JOINED_GTVS = "GTV_union"


def tumour_parts(gtvs: dict | None, mapping=None) -> list:
    """The tumour's parts (SEG label, role, radiomics segment, RTSTRUCT name, mask) when it came from named segments
    (``gtvs``: {SegmentLabel: 0/1 mask} of a DICOM SEG given as ``--tumour``, :func:`lungai.dicom.masks.mask_input`'s
    ``parts``): each GTV with contours under its own name in the SEG and the RTSTRUCT, with its role
    (:func:`lungai.dicom.roles.structure_role`: gtv_primary "GTV-1", gtv_node "GTVn4R", else gtv) for the
    terminology and RT ROI Interpreted Type, and its own SR volume.  [] - the tumour is then one segment "Tumour",
    RTSTRUCT "GTVp" - for a label map (no names) or a single segment of a bare tumour name ("Tumour", "GTV",
    "GTVp": lungai's own SEG read back).  QA on LUNG1-003: GTV-1, gtv-2, gtv-3 (nodes) were exported as one "GTVp"
    (their union, 82.4 ml): nodes named the primary in a file sent to the planning system."""
    from lungai.dicom.roles import GTV_ROLES, bare_role, structure_role

    named = {n: m for n, m in (gtvs or {}).items() if sitk.GetArrayViewFromImage(m).any()}
    if not named or (len(named) == 1 and bare_role(next(iter(named)), mapping) == "gtv"):
        return []
    roles = {n: structure_role(n, mapping) for n in named}
    # one part is the whole tumour: its radiomics segment is "tumour" (the features of that mask go into its SEG
    # segment's SR group; before, a cohort folder's GTV_union / GTV-1 had them in a group "tumour" of its own, not
    # linked to the segment); several: each its own name (the table's "tumour" is their union: a group of its own)
    return [(n, roles[n] if roles[n] in GTV_ROLES else "gtv", "tumour" if len(named) == 1 else n, n, m)
            for n, m in named.items()]


def contoured_gtvs(provenance: str | None, tumour: sitk.Image | None) -> dict:
    """A ``lungai cohort`` patient folder's tumour made of its RTSTRUCT's GTVs (``provenance``: the record's, e.g.
    "RTSTRUCT GTV-1+gtv-2+gtv-3", :func:`contoured_tumour_record`), named for the export as :func:`tumour_parts`
    takes a SEG's: one structure under its name ({"GTV-1": tumour}), several - their union, the folder holds no mask
    of each - as {:data:`JOINED_GTVS`: tumour}; {} for any other tumour.  QA on LUNG1-003: the cohort folder's union
    of GTV-1, gtv-2, gtv-3 was exported as "GTVp"."""
    text = str(provenance or "").split(";")[0].strip()
    if tumour is None or not text.startswith("RTSTRUCT "):
        return {}
    names = [n for n in text[len("RTSTRUCT "):].split("+") if n]
    return {JOINED_GTVS if len(names) > 1 else names[0]: tumour} if names else {}


def export_parts(tumour: sitk.Image | None, lungs: sitk.Image | None = None, gtvs: dict | None = None) -> list:
    """The parts :func:`export_results` writes: (SEG label, role, radiomics segment name, RTSTRUCT name, mask) of the
    tumour (:func:`tumour_parts`, else one segment "Tumour" / GTVp; none when empty) and the lungs
    (:func:`lung_parts`)."""
    parts = []
    if tumour is not None and sitk.GetArrayViewFromImage(tumour).any():
        parts += tumour_parts(gtvs) or [(TUMOUR_SEGMENT, "gtv", "tumour", TUMOUR_STRUCTURE,
                                         sitk.Cast(tumour > 0, sitk.sitkUInt8))]
    if lungs is not None:
        parts += lung_parts(lungs)
    return parts


def export_notes(tumour: sitk.Image | None, gtvs: dict | None = None, lungs: sitk.Image | None = None,
                 radiomics=None, parts: list | None = None) -> list[str]:
    """What :func:`export_results` leaves out of a DICOM export, or writes otherwise than as one tumour, and where
    radiomic features of a segment named otherwise go (:func:`radiomics_of_parts`; the CLI prints them).
    ``parts``: :func:`export_parts` of these masks when the caller has them (made once: QA exportfollow68)."""
    if parts is None and radiomics is not None:
        parts = export_parts(tumour, lungs, gtvs)
    rad_notes = radiomics_of_parts(radiomics, parts)[2] if radiomics is not None else []
    if tumour is not None and not sitk.GetArrayViewFromImage(tumour).any():
        return [EMPTY_TUMOUR_NOTE] + rad_notes
    return _tumour_notes(tumour, gtvs) + rad_notes


def _tumour_notes(tumour: sitk.Image | None, gtvs: dict | None) -> list[str]:
    parts = tumour_parts(gtvs)
    if len(parts) == 1 and parts[0][0] == JOINED_GTVS:
        return [f"the tumour is several GTVs joined in one mask, so it is exported as one structure {JOINED_GTVS} "
                f"({mask_volume_ml(tumour):.1f} ml, their union), not as GTVp (a primary GTV): give each GTV as a "
                "segment of a DICOM SEG to export them one by one under their names"]
    if len(parts) > 1:
        listed = ", ".join(f"{p[0]} ({mask_volume_ml(p[4]):.1f} ml, {p[1]})" for p in parts)
        return [f"the tumour is {len(parts)} GTVs, each exported as its own SEG segment / RTSTRUCT ROI under its "
                f"name: {listed}; their union ({mask_volume_ml(tumour):.1f} ml) is not written as a structure"]
    return []


def export_results(reference: CTReference, out_dir, tumour: sitk.Image | None = None, lungs: sitk.Image | None = None,
                   uncertainty: sitk.Image | None = None, info: dict | None = None, radiomics=None,
                   dose: dict | None = None, rp: dict | None = None, seg_name: str = "results.seg.dcm",
                   generation: dict | None = None, radiomics_settings=None, series: str = "dicom-export",
                   gtvs: dict | None = None, radiomics_source: str | None = None, progress=None,
                   parts: list | None = None) -> list[Path]:
    """Results as DICOM in ``out_dir``: ``seg_name`` (tumour, right / left lung segments), ``rtstruct.dcm`` (GTVp,
    Lung_R, Lung_L), ``uncertainty.pm.dcm`` and ``measurements.sr.dcm`` (when there is anything to report).

    ``progress`` (optional, :mod:`lungai.progress`): :data:`RESULTS_STEPS` steps, one per object, each named on the
    bar while it is written (QA dicomread65: the four were one step of ``lungai segment``'s bar, 6-10 s on LUNG1-003
    behind one message - measured: the SEG ~45 %, the parametric map ~35 %, the SR and RTSTRUCT the rest).

    ``generation``: {"tumour": AUTOMATIC, "lungs": AUTOMATIC} for what SlicerLungAI made (``lungai segment``'s
    tumour, ``lungai lungs``' lungs): SEG algorithm SlicerLungAI, RTSTRUCT ROI Generation Algorithm AUTOMATIC; the
    others are the user's, MANUAL (:func:`lungai.dicom.seg.generation_of`).  ``series``: the writing command, whose
    series numbers the objects get (:data:`lungai.dicom.seg.SERIES_NUMBERS`: "dicom-export", "segment").
    ``gtvs``: {SegmentLabel: mask} of the named segments the tumour was read from (a SEG of several GTVs): each is
    written under its own name and role (:func:`tumour_parts`), never their union as "GTVp"; ``tumour`` (their
    union) is still what a result.json and radiomics table are checked against.  ``radiomics_source``: the file of a
    ``--results`` folder the radiomics came from (not ``--radiomics``), named with its fix when they do not match.
    ``parts``: :func:`export_parts` of ``tumour``, ``lungs``, ``gtvs`` when the caller made them already (``lungai
    dicom-export``'s notes: each lung map split once - QA exportfollow68: three times, 0.8 s each on LUNG1-003)."""
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.seg import SERIES_NUMBERS
    from lungai.dicom.sr import write_sr

    out = Path(out_dir)
    check_output_folder(out, reference)
    check_result_for_tumour(info, tumour)
    progress = progress or NullProgress()

    def checked():
        made = export_parts(tumour, lungs, gtvs) if parts is None else parts
        # the table's segment of an exported mask under another name (--structure GTV-1): in that mask's group
        rad, settings, _notes = radiomics_of_parts(radiomics, made, radiomics_settings)
        if tumour is not None and sitk.GetArrayViewFromImage(tumour).any():
            check_radiomics_volume(rad, tumour, results_file=radiomics_source)
        check_radiomics_volumes(rad, made, results_file=radiomics_source)
        return made, rad, settings

    # the masks' segments and the radiomics' volumes: their seconds said while they run (QA exportfollow68)
    parts, radiomics, radiomics_settings = waiting(progress, f"{RESULTS_CHECKING}: the segments", checked)
    if not parts and uncertainty is None and not measurement_groups({}, info, radiomics, dose, rp):
        empty = tumour is not None and not sitk.GetArrayViewFromImage(tumour).any()
        raise InputError("nothing to export: " + ("the tumour mask is empty" if empty else "no mask given")
                         + " and no other result (lungs, uncertainty map, result.json, radiomics, dose, RP risk) "
                         "was given", "check the tumour mask (the right file, the right label?), or give the results "
                         "to export")
    written, seg_path, segments = [], None, {}
    if parts:
        written = _write_seg_and_rtstruct(parts, reference, out / seg_name, out / "rtstruct.dcm", "lungai results",
                                          generation, series, tumour_note=review_text(info), progress=progress)
        seg_path = written[0]
        segments = {p[0]: (number, p[1], p[2], p[4]) for number, p in enumerate(parts, start=1)}
    else:
        progress.update(EXPORT_STEPS, "no mask: no DICOM SEG / RTSTRUCT")
    if uncertainty is not None:
        progress.update(0, "writing DICOM parametric map")
        written.append(write_parametric_map(uncertainty, reference, out / "uncertainty.pm.dcm",
                                            series_number=SERIES_NUMBERS[series]["pm"], progress=progress))
    progress.update(1, "DICOM parametric map written" if uncertainty is not None else "no uncertainty map")
    groups = measurement_groups(segments, info, radiomics, dose, rp, radiomics_settings)
    if groups:
        progress.update(0, "writing DICOM SR")
        written.append(write_sr(reference, out / "measurements.sr.dcm", groups, seg=seg_path,
                                series_number=SERIES_NUMBERS[series]["sr"], progress=progress))
    progress.update(1, "DICOM SR written" if groups else "nothing to report: no DICOM SR")
    return written
