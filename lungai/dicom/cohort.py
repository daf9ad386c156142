"""A radiation-pneumonitis table from DICOM RT exports: ``lungai cohort DICOM_ROOT -o OUT``.

1. :func:`plan_cohort` finds each patient's CT series, RTSTRUCT and RTDOSE by UIDs and frame of
   reference (:func:`lungai.dicom.discover.scan`, never folder names) and says what each has or lacks;
2. :func:`process_patient` (one Dask task per patient, or a plain loop) builds
   - the lungs: the RTSTRUCT's right + left lung (roles, :mod:`lungai.dicom.roles`), else the
     automatic RT-definition lungs (:func:`lungai.lungs.segment_lungs`);
   - the tumour: the RTSTRUCT's GTVs (union), else the deep-ensemble segmentation in automatic
     mode, whose case confidence is kept (``tumour_confidence``);
   - radiomics of the standard segments (:mod:`lungai.radiomics`), wide ``rad_*`` columns;
   - dose features (:mod:`lungai.dose`, lungs minus GTV) when there is an RTDOSE;
   and writes ``OUT/patients/<case>/`` (masks, ``features.csv``, ``result.json`` last, atomically);
3. :func:`run_cohort` skips patients whose ``result.json`` exists (resume; :func:`patient_finished`), records a failing
   patient and goes on, and joins the clinical CSV into ``OUT/rp_table.csv`` - one row per
   patient, the columns ``lungai rp train`` takes (``patient_id``, ``clin_*``, ``dose_*``,
   ``rad_*``, the outcome) plus ``provenance`` (where each input came from; ignored as a feature) and
   ``radiomics_settings`` (with the sidecar ``rp_table.settings.json``, as ``lungai radiomics`` writes).

A file of cohort's output names (:data:`OUTPUTS`) in ``OUT`` that its marker ``.lungai-cohort`` does not list (an
earlier run wrote it) is the user's: refused before any work (:func:`lungai.io.outputs.check_output_owner`), never
replaced or deleted; a folder of an older cohort (``settings.key``, no marker) has its files of those names adopted.
``settings.key`` compares the settings only.  A run holds ``OUT/.lungai.lock`` from before it reads the folder until
it ends (:func:`lungai.io.outputs.locked_output_folder`): a second run into ``OUT`` meanwhile is refused naming its
process; a killed run's lock is taken over and the run resumes.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # pandas where a table is read or built: the first bar (scanning DICOM) comes before it
    import pandas as pd

from lungai.dicom.discover import UNREADABLE, several_rtstructs_note, shown_path
from lungai.dicom.roles import HIDDEN_GTV
from lungai.dose.features import LUNGS_CUT_COLUMN, LUNGS_CUT_REVISION, NOTES_COLUMN, notes_text
from lungai.errors import (InputCheckNote, InputError, InputNote, LungAIError, PatientsText, agree, counted,
                           failure_lines, say_notes)
from lungai.io.outputs import check_folder_path, check_outside_export, forget_stamps, locked_output_folder, \
    prepare_output_folder, record_outputs
from lungai.progress import task
from lungai.radiomics.batch import BatchSummary
from lungai.radiomics.manifest import NAME_RULE, name_clashes, safe_name
from lungai.radiomics.prepare import mixed_spacing_note
from lungai.radiomics.settings import (SETTINGS_COLUMN, VALUE_REVISIONS, canonical_params, dropped_revisions,
                                      ignored_lung_spacing_key, revision_reasons, settings_id, sidecar_path,
                                      unverified_ibsi_note, value_revisions, versions, write_sidecar, written_forms)
from lungai.seg.resources import CAVEAT_COLUMN

INVENTORY = "patients.csv"
TABLE = "rp_table.csv"
ERRORS = "errors.csv"
RESULT = "result.json"
STAMP = "settings.key"
# beside STAMP: the settings it is the key of (the parameters, the structure mapping, the model), to name what a re-run
# changed (QA cohort71: "holds results made with other radiomics parameters, structure mapping or model", nothing more)
SETTINGS_RECORD = "settings.json"
OWNER = "cohort"
MARKER = ".lungai-cohort"   # lungai.io.outputs' marker of OWNER: the files and folders of OUTPUTS a run wrote
# what lungai cohort writes into OUT: a folder without its STAMP holding one of these is the user's, never overwritten
OUTPUTS = (STAMP, SETTINGS_RECORD, INVENTORY, TABLE, sidecar_path(TABLE).name, ERRORS, "patients")
# what process_patient writes into OUT/patients/<case>/ (one list): a patient redone loses all of them when its new
# result (written into STAGING) is moved in - only once it has succeeded -, so no file of the old run (a lungs.nii.gz beside the new dose_lungs.nii.gz) stays; other files there are left alone
LUNGS, DOSE_LUNGS, TUMOUR, FEATURES = "lungs.nii.gz", "dose_lungs.nii.gz", "tumour.nii.gz", "features.csv"
PATIENT_FILES = (RESULT, LUNGS, DOSE_LUNGS, TUMOUR, FEATURES, RESULT + ".tmp")
# a patient is written into this subfolder of OUT/patients/<case>/ and moved into place once it has succeeded: a redo
# that fails (or is cancelled) leaves the earlier result as it was
STAGING = ".lungai-new"
KEPT_NOTE = ("its earlier result in {folder} was kept (made from the earlier inputs: not in this run's "
             "rp_table.csv); fix the problem and run again to redo it")


@dataclass
class CohortJob:
    """One patient's inputs (plain values: sent to the Dask workers)."""

    case: str
    patient_id: str
    ct_folder: str
    ct_series_uid: str
    rtstruct: str | None = None
    rtdose: str | None = None
    ct_label: str = ""     # the CT series' slices, study date, number and description (CTSeries.label)
    structures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    rtdose_files: list = field(default_factory=list)   # BEAM doses of one plan, summed (rtdose: the first)
    error: list = field(default_factory=list)          # [problem, fix] found when planning (ambiguous RTDOSEs)
    inputs: dict = field(default_factory=dict)         # what the result depends on (job_inputs), kept in result.json
    ct_files: list = field(default_factory=list)       # the CT's slice files when spread over several folders
    rtstructs_ambiguous: int = 0   # RTSTRUCTs of this CT that make the choice ambiguous (none used: choose_rtstruct)
    rtdoses_ambiguous: int = 0     # RTDOSEs of this CT that make the choice ambiguous (none used: plan_dose_files)
    rtdose_found: bool = False     # an RTDOSE of this CT there, used or not (refused: rtdose None, the patient fails)
    rtdose_check: str = ""     # a BEAM sum: what was checked of its beams against the RTPLAN (plan_dose_files)
    dose_names: list = field(default_factory=list)     # the RTDOSE file(s) relative to DICOM_ROOT, as patients.csv
    # no RTDOSE of this CT's frame of reference, but the patient's RTDOSE(s) in another one: "RTDOSE NAME (UID)"
    # (other_frame_doses), said in the provenance
    dose_elsewhere: str = ""
    # no RTDOSE of this CT, but the patient's RTDOSE(s) without FrameOfReferenceUID matched to no CT (frameless_files):
    # "RTDOSE NAME[+NAME]", said in the provenance
    dose_unmatched: str = ""
    root: str = ""             # DICOM_ROOT: the dose read's messages name the RTDOSE by its path under it


# the revision of the rule of the notes recorded in the table's rtdose_notes (dose_value_notes), in a patient's inputs
# when its dose has any: an older result is redone.  1: DoseType EFFECTIVE only; 2: also no DoseSummationType, a BEAM
# sum not checked against its RTPLAN (lungai.dose.read.value_notes)
DOSE_NOTES_REVISION = 2


def dose_value_notes(job) -> list[str]:
    """The notes on the values of the job's dose (its RTDOSE, or BEAM sum with what was checked of its beams,
    ``rtdose_check``) that the table records in its ``rtdose_notes``: :func:`lungai.dose.read.dose_value_notes`, the
    rule of ``lungai dose-features``' dose.csv (QA dosenotes60: only the DoseType EFFECTIVE note was recorded; the
    missing DoseSummationType, the unchecked BEAM sum were in the patient's notes only)."""
    from lungai.dose.read import dose_value_notes as notes

    return notes(job.rtdose_files or [job.rtdose], root=job.root or None, checked=job.rtdose_check or None)


def _noted_dose(job) -> bool:
    """Whether the job's dose has notes on its values (:func:`dose_value_notes`; headers that cannot be read: no - it
    fails the patient when processed, with its reason)."""
    try:
        return bool(dose_value_notes(job))
    except Exception:  # noqa: BLE001
        return False


def job_inputs(ct_series_uid: str, ct_files, rtstruct, dose_files) -> dict:
    """What a patient's result is made of, recorded in its ``result.json``: the CT series (UID, each slice file's
    name and size, and one content hash of all its slices: ``sha256``), the RTSTRUCT and the RTDOSE file(s) (name,
    size, content hash).  A re-run redoes a patient whose recorded inputs differ (an RTDOSE or RTSTRUCT added,
    replaced or removed; a CT series re-exported with other pixel data or headers under the same file names and
    sizes - a corrected series: an uncompressed slice's size does not change); modification times are not compared,
    so a copied export is not redone."""
    import hashlib

    from lungai.io.read import file_digest

    slices = sorted((file_digest(f) for f in ct_files), key=lambda d: (d["file"], d["sha256"]))
    series = hashlib.sha256("\n".join(f"{d['file']} {d['sha256']}" for d in slices).encode("utf-8"))
    return {"ct": {"series_uid": ct_series_uid, "files": [[d["file"], d["size"]] for d in slices],
                   "sha256": series.hexdigest()[:16]},
            "rtstruct": file_digest(rtstruct) if rtstruct else None,
            "rtdose": [file_digest(f) for f in dose_files]}


def _same_ct(old, new) -> bool:
    """The recorded CT series is the current one.  A record of an older lungai has no content hash (``sha256``):
    it is compared by the series UID and the slices' names and sizes, as that lungai did (its results are kept,
    not all redone on an update)."""
    if isinstance(old, dict) and isinstance(new, dict) and "sha256" not in old:
        return old == {k: v for k, v in new.items() if k != "sha256"}
    return old == new


def inputs_change(recorded: dict | None, current: dict) -> str | None:
    """None when the inputs recorded in a patient's result.json are the current ones, else what changed."""
    if not recorded:
        return "its result records no inputs (written by an older lungai)"
    parts = []
    for what, name in (("ct", "CT series"), ("rtstruct", "RTSTRUCT"), ("rtdose", "RTDOSE")):
        old, new = recorded.get(what), current.get(what)
        if not (_same_ct(old, new) if what == "ct" else old == new):
            parts.append(f"{name} added" if not old else f"{name} removed" if not new else f"{name} changed")
            if what == "ct" and _same_ct({k: v for k, v in (old or {}).items() if k != "sha256"}, new):
                parts[-1] += " (the same slice files and sizes, other contents: a re-exported series)"
    if recorded.get("ct_orientation") != current.get("ct_orientation"):
        parts.append(f"a CT stored in {current.get('ct_orientation') or 'LPS'} order, whose radiomics an older lungai "
                     "computed on the array as stored (values differ; now in LPS axial order)")
    for key in VALUE_REVISIONS:        # the revisions of the radiomics values (pyradiomics resampling, whole CT ...)
        if recorded.get(key) != current.get(key):
            parts.extend(revision_reasons([key]))
    if recorded.get("dose_envelope") != current.get("dose_envelope"):
        if current.get("dose_envelope"):
            parts.append(f"an RTSTRUCT without a GTV but with a motion envelope ({', '.join(current['dose_envelope'])}),"
                         " whose dose metrics an older lungai computed on the lungs minus the automatic tumour (now "
                         "the lungs minus the envelope, no GTV dose)")
        else:
            parts.append("the dose metrics no longer subtract a motion envelope from the lungs")
    # (an RTDOSE / RTSTRUCT added or changed is said above: its redo needs no other reason)
    if recorded.get("lungs_cut_rule") != current.get("lungs_cut_rule") and current.get("lungs_cut_rule") \
            and recorded.get("rtdose") == current.get("rtdose"):
        parts.append("dose metrics an older lungai did not check for lungs cut by the scan (or by another rule; now "
                     "the lungs_cut column)")
    if recorded.get("lungs_minus_gtv") != current.get("lungs_minus_gtv") and current.get("lungs_minus_gtv") \
            and recorded.get("rtstruct") == current.get("rtstruct"):
        parts.append(f"an RTSTRUCT with only a {'+'.join(current['lungs_minus_gtv'])} lung structure, whose "
                     "lungs_minus_tumour radiomics an older lungai did not compute")
    if recorded.get("dose_lungs_minus_gtv") != current.get("dose_lungs_minus_gtv") \
            and current.get("dose_lungs_minus_gtv") and recorded.get("rtstruct") == current.get("rtstruct"):
        parts.append(f"an RTSTRUCT without a GTV structure but with {'+'.join(current['dose_lungs_minus_gtv'])} (the "
                     "lungs minus the GTV as contoured), whose dose metrics an older lungai computed on the lungs minus "
                     "the automatic tumour (now on that structure, no GTV dose, as lungai dose-features)")
    if recorded.get(NOTES_COLUMN) != current.get(NOTES_COLUMN) and current.get(NOTES_COLUMN) \
            and recorded.get("rtdose") == current.get("rtdose"):
        parts.append("an RTDOSE with notes on its dose values (DoseType EFFECTIVE, no DoseSummationType, a sum of "
                     "BEAM doses not checked against its RTPLAN) that an older lungai did not record in the table "
                     f"(now the {NOTES_COLUMN} column)")
    return ", ".join(parts) or None


def ct_orientation(job) -> str | None:
    """The order the job's CT series is read in ("LPS" for axial slices of an upright patient, "SAR" sagittal ...:
    :func:`lungai.io.geometry.orientation_of` of the image ITK reads: its rows, columns and the slice normal), from
    one slice's ImageOrientationPatient (an Enhanced / multi-frame CT, whose orientation is in its functional groups:
    its header and frame positions, as read_ct reads it: :func:`lungai.io.read.file_orientation`); None when it
    cannot be told.
    A CT stored in another order than LPS is recorded in the patient's inputs (``ct_orientation``): its radiomics
    from an older lungai (computed on the array as stored, not in LPS axial order) is redone; results of LPS CTs
    are kept."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.dicom.discover import _header, frames_of
    from lungai.io.read import file_orientation

    try:
        named = (job.inputs.get("ct") or {}).get("files") or []
        if job.ct_files:
            first = job.ct_files[0]
        elif named and (Path(job.ct_folder) / named[0][0]).is_file():    # a slice of the series, no folder scan
            first = Path(job.ct_folder) / named[0][0]
        else:
            from lungai.io.read import dicom_series_files

            first = dicom_series_files(job.ct_folder, job.ct_series_uid or None)[0]
        ds = _header(Path(first))
        if frames_of(ds) > 1 or "ImageOrientationPatient" not in ds:    # multi-frame: read_ct reads the file
            return file_orientation(first)
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        direction = np.column_stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])])   # ITK: slices along the normal
        return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(direction.flatten().tolist())
    except Exception:  # noqa: BLE001 - unreadable here: the patient's run reports it
        return None


AUTO_LUNGS = "automatic (lungai.lungs, RT lung definition)"
FAILED_DOSE = "no (planned, but the patient failed: see errors.csv)"    # patients.csv once a planned patient fails
UNREADABLE_RTSTRUCT = "an unreadable file may be its RTSTRUCT (notes)"     # provenance of the lungs of segment_lungs
TRUNCATED_RTSTRUCT = "its RTSTRUCT is truncated (notes)"        # ... when the unreadable file is known to be it


def truncated_rtstruct_why(n: int) -> str:
    """What ``lungs_from`` / ``tumour_from`` say after "automatic ..." when the patient's ``n`` RTSTRUCTs are all cut
    short: :data:`TRUNCATED_RTSTRUCT` of one, "its 2 RTSTRUCTs are truncated (notes)" of several (QA scanfollow67:
    the note named both files of LUNG1-003, the columns one)."""
    return TRUNCATED_RTSTRUCT if n == 1 else f"its {n} RTSTRUCTs are truncated (notes)"
TRUNCATED_RTDOSE = "RTDOSE truncated: re-export it"       # patients.csv's dose_features: no (...) - and the terminal


def distinct_ct_labels(studies, root) -> dict[str, str]:
    """{SeriesInstanceUID: label} of the studies' CT series: :attr:`CTSeries.label`, and where two series of one
    PatientID share it (the same slices, study date, number and description: a series exported twice, a
    reconstruction with the same header) their folder under ``root`` (where their folders differ) and the shortest
    tail of their SeriesInstanceUID that tells them apart, e.g. ``107 slices, study 2014-01-01, #1, folder
    LUNG1-003b/CT, series ...852859.7`` (QA cohortfollow67: two such rows of LUNG1-003 both said "this row: 107
    slices, study 2014-01-01, #1")."""
    groups: dict[tuple, list] = {}
    for st in studies:
        if st.ct is not None:
            groups.setdefault((st.patient_id, st.ct.label), []).append(st.ct)
    labels = {}
    for (_, label), cts in groups.items():
        if len(cts) == 1:
            labels[cts[0].series_uid] = label
            continue
        folders = {ct.series_uid: ", ".join(shown_path(f, root) for f in ct.folders) for ct in cts}
        by_folder = len(set(folders.values())) == len(cts)
        uids = [ct.series_uid for ct in cts]
        n = 8
        while n < max(map(len, uids)) and len({u[-n:] for u in uids}) < len(uids):
            n += 4
        for ct in cts:
            tail = ct.series_uid if len(ct.series_uid) <= n else "..." + ct.series_uid[-n:]
            labels[ct.series_uid] = (label + (f", folder {folders[ct.series_uid]}" if by_folder else "")
                                     + f", series {tail}")
    return labels


def ct_cases(studies) -> dict[str, str]:
    """{SeriesInstanceUID: case} of the studies' CT series as ``lungai cohort`` names their rows: the PatientID, or
    ``<id>_1``, ``<id>_2`` ... in the scan's order - by folder, :func:`lungai.dicom.discover.study_order` - for a
    patient with several CT series (``lungai dicom-scan`` names its blocks so: the rows its warning speaks of)."""
    per_patient: dict[str, int] = {}
    for st in studies:
        if st.ct is not None:
            per_patient[st.patient_id] = per_patient.get(st.patient_id, 0) + 1
    seen: dict[str, int] = {}
    cases = {}
    for st in studies:
        if st.ct is None:
            continue
        if per_patient[st.patient_id] > 1:
            seen[st.patient_id] = seen.get(st.patient_id, 0) + 1
            cases[st.ct.series_uid] = f"{st.patient_id}_{seen[st.patient_id]}"
        else:
            cases[st.ct.series_uid] = st.patient_id
    return cases


# how a patient's several CT series are brought down to one (the end of several_ct_series_warning)
SEVERAL_CT_FIX = ("to keep one, move the other series' files out of the export folder and run again, or drop the other "
                  f"rows from {TABLE}")


# a CT series referenced by several RTSTRUCTs, none of them used (choose_rtstruct): its part in ct_series_told
AMBIGUOUS_RTSTRUCTS_TOLD = "{n} RTSTRUCTs, none chosen: keep one RTSTRUCT per CT series"
# ... and by several RTDOSEs, none of them used (plan_dose_files: ambiguous), with plan_dose_files' fix in short
AMBIGUOUS_RTDOSES_TOLD = ("{n} RTDOSEs, none chosen: keep only the plan dose (or the BEAM doses of one plan) per CT "
                          "series")


def ct_series_told(label: str, rtstruct: bool, rtdose: bool, ambiguous: int = 0, ambiguous_doses: int = 0) -> str:
    """What tells a patient's CT series apart in :func:`several_ct_series_warning`: its label, whether it has an
    RTSTRUCT and an RTDOSE (a planning CT and a follow-up, a thin and a thick reconstruction).  ``ambiguous``: the
    number of RTSTRUCTs that make the choice ambiguous (:func:`ambiguous_rtstructs`), said with the fix - not "no
    RTSTRUCT" (QA cohortwarn67: LUNG1-003b with an original and a revised RTSTRUCT was "no RTSTRUCT" in cohort's
    warning, "RTSTRUCT" in dicom-scan's); ``ambiguous_doses`` alike of the RTDOSEs (:func:`ambiguous_rtdoses`; QA
    cohortstd67: two plan doses were "no RTDOSE" in cohort's warning, "RTDOSE" in dicom-scan's)."""
    rs = (AMBIGUOUS_RTSTRUCTS_TOLD.format(n=ambiguous) if ambiguous > 1 else
          "RTSTRUCT" if rtstruct else "no RTSTRUCT")
    rd = (AMBIGUOUS_RTDOSES_TOLD.format(n=ambiguous_doses) if ambiguous_doses > 1 else
          "RTDOSE" if rtdose else "no RTDOSE")
    return ", ".join(p for p in (label, rs, rd) if p)


def ambiguous_rtdoses(st, root) -> int:
    """How many RTDOSEs of the study ``st``'s CT make the choice ambiguous (:func:`lungai.dose.read.plan_dose_files`
    refuses them as ambiguous: none used, the patient fails), 0 when one (or one plan's BEAM sum) is used, the
    refusal is of another kind (a FRACTION dose ...), or there are fewer than 2."""
    if len(st.rtdose) < 2 or st.ct is None:
        return 0
    from lungai.dose.read import plan_dose_files

    try:
        plan_dose_files(st.rtdose, root=root, rtplans=st.rtplan)
    except InputError as exc:
        return len(st.rtdose) if "ambiguous" in exc.problem else 0
    except Exception:  # noqa: BLE001 - an unreadable RTDOSE: refused (its own warning), not ambiguous
        return 0
    return 0


def ambiguous_rtstructs(st, root) -> int:
    """How many RTSTRUCTs of the study ``st``'s CT make the choice ambiguous (:func:`choose_rtstruct`: none used, the
    patient fails), 0 when one is used or there is none."""
    if len(st.rtstruct) < 2 or st.ct is None:
        return 0
    kept, _, _, failure = choose_rtstruct(st, root)
    return len(kept) if failure else 0


def several_ct_series_warning(patient_id: str, rows) -> PatientsText:
    """The warning of ``lungai cohort`` and ``lungai dicom-scan`` (one text) for a patient with several CT series:
    ``rows``, [(case, what tells the series apart: :func:`distinct_ct_labels`' label, RTSTRUCT / RTDOSE)], in the
    order of :func:`ct_cases`; with the fix, and a form naming no patient (QA scanfollow67: dicom-scan listed
    LUNG1-003's two CT series as two blocks "#1" and said nothing)."""
    rows = list(rows)
    n = len(rows)
    return PatientsText(
        f"{patient_id} has {n} CT series: lungai cohort rows {', '.join(c for c, _ in rows)} - keep one per patient "
        "before training (" + "; ".join(f"{c}: {what}" for c, what in rows) + f"): {SEVERAL_CT_FIX}",
        f"a patient has {n} CT series: lungai cohort makes a row of each - keep one per patient before training: "
        f"{SEVERAL_CT_FIX}")


PLANNING = "cohort: planning"     # the bar of plan_cohort's checks of each study, after the scan's


def planning_steps(studies, cases: dict):
    """The studies, one by one, on a bar of their own (:data:`PLANNING`, a step each, named by its case): planning
    reads each patient's RTSTRUCT, checks its CT slices and RTDOSE and hashes its files (:func:`job_inputs`) - about
    0.7 s a patient on a shared machine, so a minute for 100 patients after the scan's bar without a line (QA
    cohort70: 3.5 s for 5 copies of LUNG1-003 between "scanning DICOM: 538/538" and the inventory).  The bar is
    closed once the last study is planned (or the loop is left)."""
    with task(PLANNING, max(len(studies), 1), enabled=bool(studies), rate=False) as bar:
        for st in studies:
            yield st
            # the case planned (a log: a line every few seconds, not one per patient)
            bar.update(1, str(cases.get(st.ct.series_uid, st.patient_id) if st.ct is not None else st.patient_id))


def plan_cohort(root, mapping=None) -> tuple[list[CohortJob], pd.DataFrame]:
    """(jobs for the patients with a CT, inventory table of every patient: what it has / lacks / will use)."""
    from lungai.dicom.discover import check_root, files_under, scan, unread_images_note
    from lungai.dicom.pixeldata import check_ct_files, drop_slice_copies
    from lungai.dicom.masks import structure_names
    from lungai.dicom.roles import (AmbiguousRole, dose_envelopes, dose_lungs_role, empty_note, find_role,
                                    role_notes, structure_roles)
    from lungai.dicom.rtstruct import contoured_structures
    from lungai.dose.read import plan_dose_files

    root = check_root(root)          # before the bar: no "scanning DICOM: 0it" drawn for a path that is no folder
    left_out: dict = {}
    files = files_under(root, left_out)     # listed once: the bar's steps and the scan's files (QA cohortread66)
    with task("cohort: scanning DICOM", len(files)) as bar:
        # its RTSTRUCTs' names kept for the planning
        studies = scan(root, progress=bar, files=files, structures=True, left_out=left_out)
    # NIfTI / NRRD / MHA files under the root (a converted patient beside the export): named, never passed over
    images = unread_images_note(files, root, "cohort")
    if not studies:
        raise InputError(f"no DICOM CT, RTSTRUCT or RTDOSE found under {root}",
                         "give the folder of the treatment-planning export (any sub-folder layout)"
                         + (f"; {images}" if images else ""))
    if images:
        warnings.warn(InputNote(images), stacklevel=2)
    per_patient: dict[str, int] = {}
    for st in studies:
        if st.ct is not None:
            per_patient[st.patient_id] = per_patient.get(st.patient_id, 0) + 1
    cases = ct_cases(studies)       # P, or P_1, P_2 ... (dicom-scan's blocks named alike)
    labels = distinct_ct_labels(studies, root)      # two series of one patient never told by one label
    jobs, rows = [], []
    elsewhere = other_frame_files(studies, root, "rtdose")
    frameless = frameless_files(studies, root, "rtdose")
    structs_elsewhere = other_frame_files(studies, root, "rtstruct")
    structs_frameless = frameless_files(studies, root, "rtstruct")
    for st in planning_steps(studies, cases):
        notes = list(st.notes)
        dose_elsewhere = elsewhere.get(st.patient_id, "") if st.ct is not None and not st.rtdose else ""
        # the patient's RTDOSE without FrameOfReferenceUID that matches no CT: why (its own note), on the CT's row too
        dose_unmatched, unmatched_notes = (frameless.get(st.patient_id, ("", [])) if st.ct is not None
                                           and not st.rtdose else ("", []))
        notes.extend(f"{n} (the patient gets no dose features)" for n in unmatched_notes)
        # the patient's RTSTRUCT drawn on a CT not exported (another frame of reference): never a silent automatic
        struct_elsewhere = (structs_elsewhere.get(st.patient_id, "") if st.ct is not None and not st.rtstruct
                            else "")
        # ... or without FrameOfReferenceUID, matched to no CT: why (its own note), never a silent automatic
        struct_unmatched = (structs_frameless.get(st.patient_id, ("", []))[1] if st.ct is not None and not st.rtstruct
                            else [])
        if dose_elsewhere:
            notes.append(f"{dose_elsewhere} lies in another frame of reference than this CT "
                         f"({st.frame_of_reference_uid or 'none in the CT'}): it was computed on another "
                         "CT, so it cannot be placed on this one and the patient gets no dose features - re-export "
                         "the dose planned on this CT (its FrameOfReferenceUID), or a registered dose resampled onto it")
        case = cases[st.ct.series_uid] if st.ct is not None else st.patient_id
        if st.ct is not None and per_patient[st.patient_id] > 1:
            notes.append(f"{per_patient[st.patient_id]} CT series for this patient: rows {st.patient_id}_1.. "
                         f"(keep one per patient before training); this row: {labels[st.ct.series_uid]}")
        structures, roles, empty, failure = [], {}, [], []
        rtstructs = st.rtstruct
        if len(st.rtstruct) > 1 and st.ct is not None:   # never one of them picked by file name (as RTDOSEs)
            rtstructs, added, dropped, failure = choose_rtstruct(st, root)
            notes = [n for n in notes if n != several_rtstructs_note(st, root) and n not in dropped] + added
            if failure:
                notes.append(failure[0])
        if rtstructs and not failure:
            try:
                structures, empty = contoured_structures(rtstructs[0])   # an empty template ROI has no role
                roles = structure_roles(structures, mapping)
                if empty_note(empty):
                    notes.append(empty_note(empty))
                notes.extend(role_notes(structures, mapping))
            except LungAIError as exc:
                notes.append(f"RTSTRUCT unreadable: {exc}")
            except Exception as exc:  # noqa: BLE001 - a file pydicom half-reads fails this patient, not the cohort
                structures, roles, empty = [], {}, []
                failure = [f"RTSTRUCT {Path(rtstructs[0]).name} could not be read ({type(exc).__name__}: {exc})",
                           "re-export the structure set from the planning system, or move the file out of the "
                           "export to use the automatic lungs and tumour"]
                notes.append(failure[0])
        if structures and not failure:
            try:    # two structures of one lung role: the patient fails now, with cohort's fix (no --structure here)
                dose_lungs_role(structures, mapping)
            except AmbiguousRole as exc:
                failure = [exc.problem, exc.with_fix(None).fix]
                notes.append(exc.problem)
            except InputError:
                pass
        has = lambda *rs: any(r in rs for r in roles.values())  # noqa: E731
        # no GTV structure but a Lungs-GTV: the dose features' lungs (dose-features' rule), said beside the others
        clinic = dose_lungs_minus_gtv(structures, mapping, empty) if st.rtdose and not failure else []
        clinic = (f" (dose features: {'+'.join(clinic)}, the lungs minus the GTV as contoured - no GTV structure)"
                  if clinic else "")
        if has("lung_right") and has("lung_left"):
            lungs = "RTSTRUCT " + "+".join(n for n, r in roles.items() if r in ("lung_right", "lung_left")) + clinic
        else:
            try:
                role = dose_lungs_role(structures, mapping)
                lungs = ("RTSTRUCT " + "+".join(n for n, r in roles.items() if r == role)
                         + (" (no per-side lung radiomics)" + clinic if role == "lungs" else
                            " (lungs_minus_tumour radiomics; no whole-lung or per-side lung radiomics)"))
            except InputError:
                lungs = "automatic (RT lung definition)" + (
                    f" ({lung_structures_note(structures, empty, mapping)})" if rtstructs else "")
        dose_files, error, beam_checks = [], [], []
        if st.rtdose:
            # what is decided of several RTDOSEs (used, summed or refused, with why) replaces scan's question
            notes = [n for n in notes if not n.endswith(SEVERAL_RTDOSES)]
            try:    # files named relative to root; a BEAM sum checked against the patient's RTPLAN
                dose_files, dose_note = plan_dose_files(st.rtdose, root=root, rtplans=st.rtplan, checks=beam_checks)
                if dose_note:
                    notes.append(dose_note)
            except InputError as exc:   # the patient fails before any work, the reason in the inventory
                error = [exc.problem, exc.fix]
                notes.append(exc.problem)
            except Exception as exc:  # noqa: BLE001 - an unreadable RTDOSE fails this patient, not the cohort
                error = [f"RTDOSE could not be read ({type(exc).__name__}: {exc})",
                         "re-export the RTDOSE from the planning system"]
                notes.append(error[0])
        if st.ct is not None and not failure and st.conflict:   # slices of several PatientIDs: no patient's CT
            failure = list(st.conflict)         # its note is already among scan's notes
        if st.ct is not None and not failure:
            try:      # a CT slice cut short: named now in the inventory (read_ct refuses it too), before any work
                drop_slice_copies(st.ct.files, root=root)   # two different copies of one slice (scan kept them)
                check_ct_files(st.ct.files, root=root)      # named by its path under DICOM_ROOT
            except InputError as exc:
                failure = [exc.problem, exc.fix]
                notes.append(exc.problem)
        if st.ct is not None and not failure and len(rtstructs) == 1:
            # drawn on a CT series not exported, its contours off this CT's slices: fails now, not when processed
            failure = missing_series_error(st, rtstructs[0], [n for n, r in roles.items() if r is not None], root)
            if failure:
                notes = [n for n in notes if not n.startswith(f"{shown_path(rtstructs[0], root)}: the structures were "
                                                              "drawn on series")] + [failure[0]]
        # the refusal's own reason (a FRACTION dose, DoseType ERROR, no DoseUnits ...), never a guessed one
        ambiguous = bool(error) and "ambiguous" in error[0]
        dose_problem = ("ambiguous RTDOSEs" if len(st.rtdose or ()) > 1 and ambiguous else error[0] if error else "")
        not_summed = bool(error) and "DoseSummationType" in error[0]
        # the GTVs in the order the tumour mask takes them (find_role: primary, other GTVs, nodes), as the provenance
        tumour = ("RTSTRUCT " + structure_names(find_role(structures, "gtv", mapping))
                  if has("gtv", "gtv_primary", "gtv_node") else "automatic segmentation (with confidence)"
                  + unnamed_gtvs_text(structures, mapping))
        if len(rtstructs) > 1:      # none of them used: the patient fails, nothing automatic either
            lungs = tumour = f"none ({len(rtstructs)} RTSTRUCTs: fails)"
            dose_problem = dose_problem or "ambiguous RTSTRUCTs"
        if st.unreadable and not st.rtstruct and st.ct is not None:   # never a silent fall-back to automatic
            n_bad, cut = len(st.unreadable), st.truncated.get("RTSTRUCT", [])
            why = truncated_rtstruct_why(len(cut)) if cut else UNREADABLE_RTSTRUCT
            tumour += f" - {why}"
            lungs += f" - {why}" if lungs.startswith("automatic") else ""
            # each cut RTSTRUCT named (QA cohortfollow67: of two, the first alone was), and which to re-export
            notes.insert(0, f"WARNING: no readable RTSTRUCT: {truncated_rtstructs_text(cut, root)} "
                            "(truncated): the lungs / tumour are automatic, not the clinician's contours; re-export "
                            f"{agree(len(cut), 'it', 'them (or only the one to use)')} from the planning system or "
                            "PACS and run again" if cut else
                            f"WARNING: no readable RTSTRUCT, and {counted(n_bad, 'file')} that {UNREADABLE} may "
                            "hold it: the lungs / tumour are automatic, not the clinician's contours; re-export the "
                            f"{agree(n_bad, 'file', 'files')} and run again")
        if struct_elsewhere:
            tumour += f" - {OTHER_FRAME_RTSTRUCT}"
            lungs += f" - {OTHER_FRAME_RTSTRUCT}" if lungs.startswith("automatic") else ""
            notes.insert(0, f"WARNING: {struct_elsewhere} {OTHER_FRAME_RTSTRUCT_NOTE} "
                            f"({st.frame_of_reference_uid or 'none in the CT'}): it was drawn on another CT, so its "
                            "contours cannot be placed on this one and the lungs / tumour are automatic, not the "
                            "clinician's contours; export the CT series it was drawn on with it (its own row names "
                            "that series) and run again")
        if struct_unmatched:
            tumour += f" - {FRAMELESS_RTSTRUCT}"
            lungs += f" - {FRAMELESS_RTSTRUCT}" if lungs.startswith("automatic") else ""
            notes[:0] = [f"WARNING: {FRAMELESS_RTSTRUCT_NOTE} {n}" for n in struct_unmatched]
        if st.unreadable and st.ct is None:     # in no patient's folder: said on the terminal (inventory_warnings)
            # files whose header names this patient (Study.truncated) are told to it (QA dicomfollow64: a folder of
            # LUNG1-003's RTSTRUCT alone, cut short, was "so no patient is told" in LUNG1-003's own row)
            own = {Path(f) for fs in st.truncated.values() for f in fs} >= {Path(f) for f in st.unreadable}
            headers = agree(len(st.unreadable), "its header names", "their headers name")
            notes.insert(0, f"WARNING: {counted(len(st.unreadable), 'file')} that {UNREADABLE} "
                            f"{agree(len(st.unreadable), 'lies', 'lie')} in no folder of a patient "
                            + (f"with a CT series ({headers} {st.patient_id.strip()}, of whom no CT series was "
                               "found): " if own else
                               "with a CT series, so no patient is told that one may be its RTSTRUCT (its lungs / "
                               "tumour would then be automatic, not the clinician's contours): ")
                            + ", ".join(str(f) for f in st.unreadable[:5])
                            + (f" and {len(st.unreadable) - 5} more" if len(st.unreadable) > 5 else "")
                            + f"; {ORPHAN_UNREADABLE_FIX[len(st.unreadable) > 1]}")
        # a motion envelope subtracted from the lungs has its part in the dose metrics (its role note says so)
        enveloped = set(dose_envelopes(structures, mapping)) if structures else set()
        unnamed = [n for n, r in roles.items() if r is None and n not in enveloped]
        if unnamed:
            notes.append("structures without a role (see --structure-map): " + ", ".join(unnamed))
        rows.append({"case": case if st.ct is not None else "", "patient_id": st.patient_id,
                     "ct": f"{st.ct.n_slices} slices" if st.ct else "",
                     # the files by their path under DICOM_ROOT (as the notes name them): found again in the
                     # export, never a bare RS.dcm / RD.dcm of which every patient folder has one
                     "rtstruct": (f"{len(rtstructs)} RTSTRUCTs (ambiguous)" if len(rtstructs) > 1
                                  else shown_path(rtstructs[0], root) if rtstructs
                                  else truncated_text(st.truncated.get("RTSTRUCT", []), root)),
                     "rtdose": "+".join(shown_path(f, root) for f in dose_files) if dose_files
                     else (f"{len(st.rtdose)} RTDOSEs ({'ambiguous' if ambiguous else 'refused: see dose_features'})"
                           if len(st.rtdose) > 1
                           else shown_path(st.rtdose[0], root) + (" (not a plan dose)" if not_summed else " (refused)")
                           if st.rtdose else truncated_text(st.truncated.get("RTDOSE", []), root)),
                     "missing": ", ".join(st.missing), "lungs_from": lungs if st.ct else "",
                     "tumour_from": tumour if st.ct else "",
                     # the automatic tumour's model's known confidence caveat: set once the patient is processed
                     # (its result.json's, as rp_table.csv's column; _run_cohort_locked rewrites patients.csv)
                     CAVEAT_COLUMN: "",
                     "dose_features": (f"no ({dose_problem}: fails)" if error or (len(rtstructs) > 1 and dose_files)
                                       else "yes" if dose_files and st.ct else
                                       f"no ({OTHER_FRAME_DOSE})" if dose_elsewhere else
                                       f"no ({FRAMELESS_DOSE_ROW})" if dose_unmatched else
                                       f"no ({TRUNCATED_RTDOSE})" if st.truncated.get("RTDOSE") else "no"),
                     "notes": "; ".join(notes)})
        if st.ct is not None:
            jobs.append(CohortJob(case=case, patient_id=st.patient_id, ct_folder=str(st.ct.folder),
                                  ct_series_uid=st.ct.series_uid, ct_label=labels[st.ct.series_uid],
                                  rtstruct=str(rtstructs[0]) if len(rtstructs) == 1 else None,
                                  rtstructs_ambiguous=len(rtstructs) if len(rtstructs) > 1 else 0,
                                  rtdose=str(dose_files[0]) if dose_files else None,
                                  rtdoses_ambiguous=len(st.rtdose) if len(st.rtdose) > 1 and ambiguous else 0,
                                  rtdose_found=bool(st.rtdose),
                                  rtdose_files=[str(f) for f in dose_files] if len(dose_files) > 1 else [],
                                  structures=structures, notes=notes, error=error or failure,
                                  ct_files=[str(f) for f in st.ct.files] if len(st.ct.folders) > 1 else [],
                                  inputs=job_inputs(st.ct.series_uid, st.ct.files,
                                                    rtstructs[0] if len(rtstructs) == 1 else None,
                                                    dose_files),
                                  rtdose_check=beam_checks[0] if beam_checks and len(dose_files) > 1 else "",
                                  dose_names=[shown_path(f, root) for f in dose_files],
                                  dose_elsewhere=dose_elsewhere, dose_unmatched=dose_unmatched,
                                  root=str(root)))
    clashes = name_clashes(jobs, key=lambda j: j.case)
    if clashes:
        who = lambda j: repr(j.patient_id) + (f" (case {j.case})" if j.case != j.patient_id else "")  # noqa: E731
        listed = "; ".join(" and ".join(map(who, g)) + f" (both patients/{safe_name(g[0].case)})" for g in clashes[:5])
        raise InputError(f"PatientIDs under {root} give the same output folder: {listed}",
                         f"give these patients PatientIDs that differ in {NAME_RULE}, or run lungai cohort on "
                         "their folders separately, each with its own -o folder")
    import pandas as pd     # after the scan: its bar comes before pandas

    return jobs, pd.DataFrame(rows)


OTHER_FRAME_DOSE = "RTDOSE in another frame of reference"
# ... of a CT whose patient's RTDOSE carries no FrameOfReferenceUID and matches no CT (frameless_files)
FRAMELESS_DOSE_ROW = "RTDOSE without FrameOfReferenceUID, matched to no CT: notes"
# ... of a CT whose patient's RTSTRUCT carries no FrameOfReferenceUID and matches no CT (frameless_files), its note's
FRAMELESS_RTSTRUCT = "the patient's RTSTRUCT without FrameOfReferenceUID matched to no CT (notes)"
FRAMELESS_RTSTRUCT_NOTE = "the lungs / tumour are automatic, not the clinician's contours:"
# the lungs_from / tumour_from of a CT whose patient's only RTSTRUCT lies in another frame of reference, and its note
OTHER_FRAME_RTSTRUCT = "the patient's RTSTRUCT lies in another frame of reference (notes)"
OTHER_FRAME_RTSTRUCT_NOTE = "lies in another frame of reference than this CT"


def other_frame_files(studies, root, kind: str) -> dict:
    """{PatientID: "RTDOSE NAME[+NAME] (frame of reference UID)[; ...]"} of the RTDOSEs (``kind`` "rtdose") or
    RTSTRUCTs ("rtstruct") that lie in no CT's frame of reference (a study without a CT: the dose or contours of
    another planning CT, not exported), for the patient's CT row when that CT has none of its own - said on the
    patient's row, not only on a separate CT-less one."""
    found: dict = {}
    for st in studies:
        # a file without FrameOfReferenceUID lies in no known frame (frameless_files says why it matches no CT)
        if st.ct is None and getattr(st, kind) and st.frame_of_reference_uid:
            found.setdefault(st.patient_id, []).append(
                f"{kind.upper()} {'+'.join(shown_path(f, root) for f in getattr(st, kind))} "
                f"({st.frame_of_reference_uid or 'no FrameOfReferenceUID'})")
    return {patient: "; ".join(texts) for patient, texts in found.items()}


def frameless_files(studies, root, kind: str = "rtdose") -> dict:
    """{PatientID: ("RTDOSE NAME[+NAME]", [notes])} of the RTDOSEs (``kind`` "rtdose") or RTSTRUCTs ("rtstruct")
    without FrameOfReferenceUID that :func:`lungai.dicom.discover.scan` matched to no CT of theirs (no PatientID,
    not in the folder of its CT, the CT series it references not exported ...): their notes (why, the fix) for the
    patient's CT row - not "another frame of reference ... computed on another CT" / "drawn on another CT", which
    its frame, unknown, does not say (QA cohortframe60, dicomframe61)."""
    from lungai.dicom.discover import FRAMELESS

    found: dict = {}
    for st in studies:
        if st.ct is None and getattr(st, kind) and not st.frame_of_reference_uid:
            names, notes = found.setdefault(st.patient_id, ([], []))
            names.extend(shown_path(f, root) for f in getattr(st, kind))
            notes.extend(n for n in st.notes if FRAMELESS in n and n.startswith(kind.upper()))
    return {patient: (f"{kind.upper()} " + "+".join(names), notes) for patient, (names, notes) in found.items()}


def missing_series_error(st, rtstruct, names, root) -> list:
    """[problem, fix] when the RTSTRUCT ``rtstruct`` of study ``st`` was drawn on a CT series that is not in the
    export (it shares the CT's frame of reference only: :attr:`lungai.dicom.discover.Study.matched`) and its
    structures ``names`` (those the patient's run reads) do not fit this CT's slices - a contour between two slices
    or beyond the first / last: that structure would fail only when the patient is processed, after hours of other
    patients' work (QA).  [] when it references the CT series, references none, or fits (it is then used, placed by
    the frame of reference, with scan's note).  Checked from the headers (slice positions along the normal, the
    rule of :func:`lungai.dicom.rtstruct.rasterise`, :data:`lungai.dicom.rtstruct.SLICE_TOL`); a CT whose headers
    do not tell (multi-frame, no positions) is left to the patient's run."""
    import numpy as np
    import pydicom

    from lungai.dicom.discover import shown_path
    from lungai.dicom.rtstruct import SLICE_TOL, read_structures

    how, referenced = st.matched.get(str(rtstruct), ("series", []))
    if how != "frame" or not referenced or not names or st.ct is None or len(st.ct.files) < 2:
        return []
    try:
        heads = [pydicom.dcmread(f, stop_before_pixels=True,
                                 specific_tags=["ImagePositionPatient", "ImageOrientationPatient"])
                 for f in st.ct.files]
        iop = np.asarray([float(v) for v in heads[0].ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        planes = np.sort([float(np.dot([float(v) for v in h.ImagePositionPatient], normal)) for h in heads])
        structures, _ = read_structures(rtstruct)
    except Exception:  # noqa: BLE001 - not told by the headers: the patient's run reads and checks it
        return []
    step = float(np.median(np.diff(planes)))
    if not step > 0:
        return []
    off = None
    for structure in structures:
        if structure.name not in names or structure.error is not None:
            continue
        for pts in structure.contours:
            along = np.asarray(pts, dtype=float) @ normal
            z = float(np.median(along))
            nearest = planes[int(np.argmin(np.abs(planes - z)))]
            if np.abs(along - nearest).max() > SLICE_TOL * step:
                off = (structure.name, float(np.median(pts[:, 2])),
                       "beyond this CT's slices" if z < planes[0] - SLICE_TOL * step or z > planes[-1] + SLICE_TOL
                       * step else "between two of this CT's slices")
                break
        if off:
            break
    if off is None:
        return []
    series = ", ".join(referenced)
    return [f"RTSTRUCT {shown_path(rtstruct, root)} was drawn on CT series {series}, which is not in the export: it "
            f"shares this CT's frame of reference (CT series {st.ct.series_uid}, {st.ct.label}), but its structure "
            f"{off[0]!r} has a contour at z = {off[1]:.2f} mm {off[2]}, so its contours cannot be placed on this CT",
            f"export CT series {series} (the one the RTSTRUCT was drawn on) with the patient's files under DICOM_ROOT "
            f"and run again, or re-export the RTSTRUCT drawn on CT series {st.ct.series_uid}"]


def _same_rtstruct(a, b) -> bool:
    """Two RTSTRUCT files of one SOPInstanceUID hold the same structure set: the same bytes, else the same data
    set once read (a copy written in another transfer syntax; the Part-10 file meta information not compared).
    The bytes alone compared, not the files' names (QA cohortread66: a copy under another name was never the same
    bytes, both files then read and parsed in full)."""
    import pydicom

    from lungai.io.read import file_digest

    da, db = file_digest(a), file_digest(b)
    if (da["size"], da["sha256"]) == (db["size"], db["sha256"]):
        return True
    try:
        return pydicom.dcmread(a) == pydicom.dcmread(b)
    except Exception:  # noqa: BLE001 - unreadable: not known to be the same
        return False


# how choose_rtstruct names the RTSTRUCTs it leaves out beside the one referencing the CT series, by how they were
# matched (Study.matched; QA dicomnote61: one without FrameOfReferenceUID was said drawn on another series)
LEFT_OUT = {"frame": "drawn on another series of its frame of reference: ",
            "patient": "carrying no FrameOfReferenceUID (matched by PatientID and folder only): "}


def choose_rtstruct(st, root) -> tuple[list, list, list, list]:
    """Which of the RTSTRUCTs of a CT (``st``: a :class:`lungai.dicom.discover.Study` with several) holds the plan's
    contours: (the RTSTRUCT(s) kept - one, or those that make it ambiguous -, notes to add, scan's notes to drop,
    [problem, fix] when ambiguous, else []).  Never one picked by file name (as several RTDOSEs):

    - a copy (the same SOPInstanceUID, the same content: an RTSTRUCT exported twice) is left out, the note names it
      and its original; one SOPInstanceUID on files of different content is ambiguous;
    - an RTSTRUCT that references the CT series itself is the plan's; those that share its frame of reference only
      (drawn on another series: the PET of an RT PET/CT, a 4D-CT phase or MIP not exported) are left out, named;
    - ambiguous: several reference the CT series, or none does and several share its frame of reference.
    Files are named relative to ``root`` (:func:`lungai.dicom.discover.shown_path`)."""
    from lungai.dicom.discover import matched_groups, matched_text, other_series_note
    from lungai.dicom.pixeldata import header_value

    shown = lambda p: shown_path(p, root)  # noqa: E731
    added, dropped, first = [], [], {}
    kept = []
    for p in st.rtstruct:
        try:     # read up to it, not through every contour (``specific_tags`` does: QA cohortread66)
            uid = header_value(p, "SOPInstanceUID")
        except Exception:  # noqa: BLE001 - read again (and refused with its reason) when used
            uid = ""
        if uid and uid in first:
            original = first[uid]
            if not _same_rtstruct(original, p):
                return [original, p], added, dropped, [
                    f"the RTSTRUCTs {shown(original)} and {shown(p)} have the same SOPInstanceUID {uid} but "
                    "different contents; which one holds the plan's contours is ambiguous",
                    "keep the current RTSTRUCT only (re-export it from the planning system; move the other out of "
                    "the folder given to lungai cohort) and run again"]
            added.append(f"{shown(p)} left out: a copy of {shown(original)} (same SOPInstanceUID, same content; the "
                         "RTSTRUCT was exported twice)")
            how, series = st.matched.get(str(p), ("series", []))
            dropped.append(other_series_note(p, set(series), st.ct.series_uid if st.ct else None, root))
            continue
        if uid:
            first[uid] = p
        kept.append(p)
    direct = [p for p in kept if st.matched.get(str(p), ("series",))[0] == "series"]
    if len(direct) == 1 and len(kept) > 1:
        others = [p for p in kept if p not in direct]
        for p in others:
            series = st.matched.get(str(p), ("frame", []))[1]
            dropped.append(other_series_note(p, set(series), st.ct.series_uid if st.ct else None, root))
        left = {"frame": lambda p: (f"{shown(p)} (series "
                                    f"{', '.join(st.matched.get(str(p), ('frame', []))[1]) or 'not named'})"),
                "patient": shown}
        added.append(f"RTSTRUCT {shown(direct[0])} used (it references this CT series); left out, " + "; ".join(
            (LEFT_OUT[how] + ", ".join(left[how](p) for p in ps)) for how, ps in matched_groups(st, others)))
        return direct, added, dropped, []
    if len(kept) <= 1:
        return kept, added, dropped, []
    ambiguous = direct if len(direct) > 1 else kept
    names = ", ".join(shown(p) for p in ambiguous)
    what = (f"{len(ambiguous)} RTSTRUCTs reference this CT ({names})" if len(direct) > 1 else
            f"{len(ambiguous)} RTSTRUCTs share this CT's frame of reference ({names}), none references this CT "
            "series" if [k for k, _ in matched_groups(st, ambiguous)] == ["frame"] else
            f"{len(ambiguous)} RTSTRUCTs are matched to this CT ({names}), none references this CT series ("
            f"{matched_text(st, ambiguous).replace(' more ', ' ')})")
    return ambiguous, added, dropped, [
        f"{what}; which one holds the plan's contours is ambiguous",
        "keep one RTSTRUCT per CT series in the export (move the "
        f"{agree(len(ambiguous) - 1, 'other', 'others')} out of the folder given to lungai cohort) and run again"]


# scan's question on a frame of reference with several RTDOSEs (plan_cohort and scan_choice_notes replace it)
SEVERAL_RTDOSES = "RTDOSEs share this frame of reference (several plans or beams?)"


def scan_choice_notes(st, root) -> list[str]:
    """``st.notes`` (a :class:`lungai.dicom.discover.Study` of ``lungai dicom-scan``) with what ``lungai cohort`` does
    with its several RTSTRUCTs / RTDOSEs said instead of the scan's question (QA cohort67 on LUNG1-003's RTSTRUCT and
    RTDOSE exported twice: dicom-scan said "2 RTSTRUCTs reference this CT ...; choose one ... lungai cohort: keep one
    RTSTRUCT per CT series in the export (move the other out of the folder)" and "2 RTDOSEs share this frame of
    reference (several plans or beams?)", while cohort used one of each, the other "left out: a copy of ..."):

    - RTSTRUCT copies (the same SOPInstanceUID, the same content: :func:`choose_rtstruct`) named as cohort names them;
      the RTSTRUCTs left after them get the scan's choice note (:func:`several_rtstructs_note`), if still several;
    - several RTDOSEs: the dose :func:`lungai.dose.read.plan_dose_files` takes (cohort's and ``dose-features --dose
      FOLDER``'s one decision: a copy left out, a plan dose, a sum of BEAM doses), or why it is ambiguous and the fix.
    Files are named by their path under ``root``."""
    from dataclasses import replace

    from lungai.dose.read import plan_dose_files

    notes = list(st.notes)
    if len(st.rtstruct) > 1:
        shown = lambda p: shown_path(p, root)  # noqa: E731
        _, added, dropped, _failure = choose_rtstruct(st, root)
        copies = [n for n in added if " left out: a copy of " in n]
        if copies:
            copied = [p for p in st.rtstruct if any(n.startswith(f"{shown(p)} left out: a copy of ") for n in copies)]
            several = several_rtstructs_note(st, root)
            notes = [n for n in notes if n != several and n not in dropped] + copies
            rest = several_rtstructs_note(replace(st, rtstruct=[p for p in st.rtstruct if p not in copied]), root)
            if rest:
                notes.append(rest)
    if len(st.rtdose) > 1:
        try:
            files, note = plan_dose_files(st.rtdose, root=root, rtplans=st.rtplan)
            said = ((f"RTDOSE {shown_path(files[0], root)}" if len(files) == 1 else
                     "the sum of the BEAM RTDOSEs " + " + ".join(shown_path(f, root) for f in files))
                    + " is the dose lungai cohort uses" + (f"; {note}" if note else ""))
        except InputError as exc:
            said = f"{exc.problem} - {exc.fix}"
        except Exception as exc:  # noqa: BLE001 - an unreadable RTDOSE: cohort fails the patient alike
            said = (f"RTDOSE could not be read ({type(exc).__name__}: {exc}) - re-export the RTDOSE from the "
                    "planning system")
        notes = [said if n.endswith(SEVERAL_RTDOSES) else n for n in notes]
    return notes


def lung_structures_note(names, empty, mapping=None) -> str:
    """Why the RTSTRUCT's lungs are not used: which lung structures it has (right / left / Lungs / Lungs-GTV, by role)
    and which are missing, or left out as empty."""
    from lungai.dicom.roles import empty_text, find_role, map_line

    found = {side: find_role(names, side, mapping) for side in ("lung_right", "lung_left")}
    gone = [n for side in ("lung_right", "lung_left", "lungs", "lungs_minus_gtv")
            for n in find_role(empty, side, mapping)]
    words = {"lung_right": "right", "lung_left": "left"}
    has = [f"{words[s]} lung {'+'.join(n)}" for s, n in found.items() if n]
    lacks = [words[s] for s, n in found.items() if not n]
    unnamed = unnamed_lungs(names, mapping)
    why = (f"{', '.join(repr(str(n)) for n in unnamed)} {agree(len(unnamed), 'has', 'have')} no role by "
           f"{agree(len(unnamed), 'its name', 'their names')}: map {agree(len(unnamed), 'it', 'them')} with "
           "--structure-map, e.g. " + ", ".join(map_line(n, unnamed_lung_role(n)) for n in unnamed[:2])
           if unnamed else "")
    text = (f"the RTSTRUCT has a contoured {' and '.join(has)} but no contoured {' or '.join(lacks)} lung"
            + (f" ({why})" if why else "") if has else
            f"no contoured structure of the RTSTRUCT has a lung role ({why})" if why else
            "no contoured lung structures in the RTSTRUCT")
    return text + (" ({} {})".format(*empty_text(gone)) if gone else "")


def unnamed_gtvs(names, mapping=None) -> list:
    """The structures among ``names`` named like a GTV or a tumour that have no role and are not mapped
    (:func:`unnamed_gtvs_text`)."""
    from lungai.dicom.roles import _INTERNAL, _MOTION, _NOT_GTV, gtv_like, load_mapping, normalise, structure_roles

    user = load_mapping(mapping)
    roles = structure_roles(names, mapping)
    return [n for n in names if roles.get(n) is None and normalise(n) not in user and gtv_like(n)
            and not _NOT_GTV.search(normalise(n)) and not _MOTION.match(normalise(n))
            and not _INTERNAL.match(normalise(n))]


# review_fix of a patient without an RTSTRUCT in the export
NO_RTSTRUCT_REVIEW_FIX = "or export the patient's RTSTRUCT with a contoured GTV into its folder and run again"


def review_fix(rtstruct, mapping=None) -> str:
    """The fix the needs-review warning of an automatic tumour names after "check tumour.nii.gz": contour a GTV in the
    RTSTRUCT - or, when the RTSTRUCT has structures named like a GTV without a role (:func:`unnamed_gtvs`), map them
    (QA cohortfollow70: "or contour a GTV in the RTSTRUCT" beside an RTSTRUCT holding the GTV as 'Tumour_main').
    A patient without an RTSTRUCT: export its RTSTRUCT with a contoured GTV (QA cohortfollow72: "contour a GTV in the
    RTSTRUCT" of a patient that has none)."""
    from lungai.dicom.roles import map_line
    from lungai.dicom.rtstruct import contoured_structures

    if not rtstruct:
        return NO_RTSTRUCT_REVIEW_FIX
    found = unnamed_gtvs(contoured_structures(rtstruct)[0], mapping)
    if not found:
        return "or contour a GTV in the RTSTRUCT"
    return (f"or, if the RTSTRUCT's {', '.join(repr(str(n)) for n in found)} {agree(len(found), 'is', 'are')} the "
            f"GTV, map {agree(len(found), 'it', 'them')} with --structure-map ({map_line(found[0], 'gtv')}) and run "
            "again")


def unnamed_gtvs_text(names, mapping=None) -> str:
    """What ``tumour_from`` says after "automatic segmentation (with confidence)" of an RTSTRUCT without a GTV role
    whose structures are named like a GTV or a tumour but have no role and are not mapped ("Tumour_main":
    :func:`lungai.dicom.roles.gtv_like`), with the fix; "" when there is none.  QA cohort70: LUNG1-003's GTVs renamed
    so got the automatic tumour (confidence 0.16, "needs review ... or contour a GTV in the RTSTRUCT") and the
    terminal said nothing of the contoured one (its role note in patients.csv alone)."""
    from lungai.dicom.roles import map_line

    found = unnamed_gtvs(names, mapping)
    if not found:
        return ""
    return (f" - the RTSTRUCT's {', '.join(repr(str(n)) for n in found)} {agree(len(found), 'is', 'are')} named like "
            f"a tumour but {agree(len(found), 'has', 'have')} no GTV role: if {agree(len(found), 'it is', 'they are')}"
            f" the GTV, map {agree(len(found), 'it', 'them')} with --structure-map ({map_line(found[0], 'gtv')})")


# a word of a lung structure's name (on the normalised name) in the languages lungai.dicom.roles reads
_LUNG_WORD = r"lung|pulm|poumon|polmon|^long(?:en)?(?: |$)"


def unnamed_lungs(names, mapping=None) -> list:
    """The structures among ``names`` named like a lung ("Rt_Lung_Contour", "Lung_Contour_L") that have no role
    (not in the mapping - one it hides is the user's choice -, not a lung minus a target: that one has its own note), so the lungs are automatic although the
    clinician contoured them (QA cohort70: LUNG1-003's lungs renamed so were "no contoured lung structures in the
    RTSTRUCT", and the fix - a --structure-map line - unsaid)."""
    import re

    from lungai.dicom.roles import load_mapping, lung_minus_target, normalise, structure_roles

    roles, user = structure_roles(names, mapping), load_mapping(mapping)    # one the mapping hides: the user's choice
    return [n for n in names if roles.get(n) is None and normalise(n) not in user
            and re.search(_LUNG_WORD, normalise(n)) and not lung_minus_target(n)]


def unnamed_lung_role(name) -> str:
    """The role a lung structure without one most likely has, by a side word in its name (:func:`unnamed_lungs`):
    lung_right, lung_left, or lungs - for the --structure-map line of the fix."""
    from lungai.dicom.roles import normalise

    words = set(normalise(name).split())
    right, left = words & {"r", "rt", "right", "d", "dx", "re", "rechts"}, words & {"l", "lt", "left", "g", "sx",
                                                                                    "li", "links"}
    return "lung_right" if right and not left else "lung_left" if left and not right else "lungs"


def _lungs(job: CohortJob, ct, mapping, provenance: dict, notes: list, allow_gaps: bool = False) -> tuple:
    """(lung label map 1 right / 2 left or None, the lung mask of the dose features or None for the label map, its
    role "lungs" / "lungs_minus_gtv" or None).

    The RTSTRUCT's contoured right + left lung; else its 'Lungs' / 'Lungs-GTV' structure for the dose features, as
    ``lungai dose-features --rtstruct`` (:func:`lungai.dicom.roles.dose_lungs_role`; no per-side lung radiomics);
    else the automatic RT-definition lungs.  A contoured lung structure that cannot be read fails the patient.
    ``allow_gaps``: accept structures with slices left out between their first and last (``--allow-gaps``).
    """
    from lungai.dicom.masks import lung_labels, structure_mask, structure_names
    from lungai.dicom.roles import AmbiguousRole, dose_lungs_role, find_role
    from lungai.dicom.rtstruct import contoured_structures
    from lungai.lungs import segment_lungs

    if job.rtstruct:
        names, empty = contoured_structures(job.rtstruct)
        if find_role(names, "lung_right", mapping) and find_role(names, "lung_left", mapping):
            try:
                labels, used = lung_labels(job.rtstruct, ct, "role:lungs", mapping, allow_gaps)
            except AmbiguousRole as exc:    # lungai cohort has no --structure: the mapping's fix only
                raise exc.with_fix(None) from None
            provenance["lungs"] = "RTSTRUCT " + structure_names(used)
            return labels, None, None
        try:
            role = dose_lungs_role(names, mapping, empty)
        except AmbiguousRole as exc:    # two lung structures of one role: the user chooses, never the automatic lungs
            raise exc.with_fix(None) from None
        except InputError:
            role = None
        if role is not None:
            mask, used = structure_mask(job.rtstruct, ct, f"role:{role}", mapping, allow_gaps)
            # a Lungs beside a Lungs-GTV and no GTV: the dose features take the Lungs-GTV (dose_lungs_minus_gtv, said
            # by the caller with its name), this structure the whole-lung radiomics only.  QA (cohortprov62): "Lungs
            # (dose features and whole-lung radiomics; ...); the dose features' RTSTRUCT structure Lungs-GTV ..."
            # No RTDOSE (QA cohortdose62): no dose features at all, so none named
            dosed = bool(job.rtdose_files or job.rtdose)
            dose_too = dosed and (role != "lungs" or not dose_lungs_minus_gtv(names, mapping, empty))
            provenance["lungs"] = (f"RTSTRUCT structure {'+'.join(used)} ("
                                   + ("dose features and " if dose_too else "")
                                   + ("whole-lung radiomics" if role == "lungs" else
                                      "lungs_minus_tumour radiomics, no whole-lung radiomics")
                                   + "; no right / left lung structures, so no per-side lung radiomics)")
            return None, mask, role
        notes.append(lung_structures_note(names, empty, mapping) + "; automatic lungs")
    from lungai.lungs.segment import LUNG_STEPS

    # its steps, not minutes of silence per patient; no steps per second (steps of different kinds: the room for their
    # message in an 80-column terminal, QA cohortbar65), as the patient's other bars
    with task(f"cohort {job.case}: lungs", LUNG_STEPS, rate=False) as bar:
        result = segment_lungs(ct, progress=bar)
    provenance["lungs"] = AUTO_LUNGS
    notes.extend(result.notes)   # every note: the scan's cut, an uncertain right/left label, the airways removed
    return result.labels, None, None


# the automatic tumour's fields of lungai segment's result.json that a patient's result.json holds too, so that
# `lungai dicom-export --tumour tumour.nii.gz --result result.json` exports it with its own confidence
SEGMENTATION_FIELDS = ("confidence", "needs_review", "review_reasons", "review_actions", "review_threshold",
                       "tumour_volume_ml", "tumor_volume_ml", "method", "members", "mc_passes", "calibration_mc_passes",
                       "random_seed",
                       "calibrated", "model", "model_choice", "confidence_caveat")


CAVEAT_NOTE = "confidence caveat"    # how the model's known confidence caveat starts in notes and on the terminal


def _tumour(job: CohortJob, ct, mapping, model_dir, provenance: dict, notes: list, allow_gaps: bool = False,
            gtvs: list | None = None) -> tuple:
    """(tumour mask, confidence or None, review reasons or '', other candidates, the automatic segmentation's record
    or {}): the union of the RTSTRUCT's contoured GTVs; the automatic segmentation only when the RTSTRUCT has no
    contoured GTV (a GTV that cannot be read fails the patient, never silently replaced).  The record holds
    :data:`SEGMENTATION_FIELDS` of the segmentation's info.  ``gtvs`` (a list, when given) gets the GTV structures the
    tumour is the union of (none: the automatic tumour)."""
    from lungai.dicom.masks import structure_mask, structure_names
    from lungai.dicom.roles import empty_text, find_role
    from lungai.dicom.rtstruct import contoured_structures

    if job.rtstruct:
        names, empty = contoured_structures(job.rtstruct)
        if find_role(names, "gtv", mapping):
            try:
                mask, used = structure_mask(job.rtstruct, ct, "role:gtv", mapping, allow_gaps)
            except InputError as exc:
                raise InputError(f"the RTSTRUCT's GTV cannot be read: {exc.problem}",
                                 f"{exc.fix}; to use the automatic segmentation instead, map the GTV structures to "
                                 "null with --structure-map") from exc
            provenance["tumour"] = "RTSTRUCT " + structure_names(used)
            if gtvs is not None:
                gtvs.extend(used)
            return mask, None, "", [], {}
        empty_gtvs = find_role(empty, "gtv", mapping)
        notes.append("no contoured GTV in the RTSTRUCT"
                     + (" ({} {})".format(*empty_text(empty_gtvs)) if empty_gtvs else "")
                     + "; automatic segmentation")
    from lungai.seg.choice import STEPS_PER_RUN, add_model_notes, count_models_not_run, model_runs
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model
    from lungai.seg.model_meta import model_identity
    from lungai.seg.resources import resolve_model_dir

    mdir = resolve_model_dir(model_dir)
    model = load_model(mdir)
    # its steps, as the automatic lungs' (QA progwarn63: the minutes of a whole CT's segmentation showed no progress)
    with task(f"cohort {job.case}: tumour", STEPS_PER_RUN * model_runs(model), rate=False) as bar:
        seg = segment_tumour(ct, model, seed=0, progress=bar)
        count_models_not_run(bar, model, seg.info)
    # as lungai segment: the model's known confidence caveat (record's confidence_caveat; said in the notes and on the
    # terminal by run_cohort, beside the table's tumour_confidence) - a better-suited model's note (seed / ROI only)
    add_model_notes(mdir, seg.info, patients=[job.patient_id, job.case])   # a patient the model trained on: said
    conf = float(seg.info["confidence"])
    from lungai.scene.results import confidence_text, method_text

    review = "; ".join(seg.info.get("review_reasons") or (["needs review"] if seg.info["needs_review"] else []))
    # the method the segmentation used (an ensemble, or MC dropout for a 1-member model: resolve_method); the
    # confidence as lungai segment shows it (confidence_text: the decimals that show it apart from the review
    # threshold - QA segfollow69: 2 decimals showed 0.6402 under a 0.644 threshold as "confidence 0.64, needs review")
    provenance["tumour"] = (f"automatic segmentation ({Path(mdir).name}, {method_text(seg.info)}, "
                            f"{confidence_text(seg.info)}" + (", needs review" if review else "") + ")")
    notes.extend(cohort_seg_note(n) for n in seg.info.get("notes", []))
    if seg.info.get("confidence_caveat"):
        notes.append(f"{CAVEAT_NOTE}: {seg.info['confidence_caveat']}")
    candidates = seg.info.get("candidates") or []
    record = {k: seg.info[k] for k in SEGMENTATION_FIELDS if k in seg.info}
    if record.get("review_actions"):        # cohort takes no seed point or ROI: lungai segment on this CT does
        record["review_actions"] = [cohort_review_action(a, job) for a in record["review_actions"]]
    record["model"] = str(mdir)
    record["model_identity"] = model_identity(mdir)
    return seg.tumour, conf, review, candidates, record


def _dose_envelope(job: CohortJob, ct, mapping, provenance: dict, notes: list, dose_notes: list, unread: list,
                   instead: str | None = None):
    """The tumour's motion envelope (iGTV / ITV) the dose metrics subtract from the lungs instead of the tumour when
    the RTSTRUCT has no contoured GTV, as ``lungai dose-features --rtstruct`` does (Lungs - iGTV, no GTV dose:
    :func:`lungai.dicom.roles.motion_envelopes`, :func:`lungai.dicom.masks.motion_envelope_mask`) and the dose
    provenance's text of the masks; (None, None) without one, or one not read (``unread`` then holds why, and the
    envelopes' names).
    The automatic tumour then serves the tumour radiomics only (said in the provenance); an envelope that cannot be
    read leaves the dose on the lungs minus the automatic tumour: the plan's role notes that said it "is subtracted
    from the lungs" are replaced by what :func:`lungai.dicom.roles.role_notes` says of one not read (as
    dose-features --rtstruct does) in ``notes``, the reason goes to ``dose_notes`` and the dose provenance says what
    was subtracted. An envelope read with slices left out between its parts (always allowed for one) is named in
    ``notes`` (:func:`gaps_allowed_notes`), as the lungs / GTV read with ``--allow-gaps`` are.  ``instead``: what the
    dose metrics are of when the envelope is not read (default :data:`UNREAD_ENVELOPE_DOSE`)."""
    from lungai.dicom.masks import motion_envelope_mask, structure_names

    envelopes = dose_envelope_names(job.rtstruct, mapping)
    if not envelopes:
        return None, None
    with gaps_allowed_notes(notes):     # read with gaps allowed always: which envelope was, in the patient's notes
        mask, used, problem = motion_envelope_mask(job.rtstruct, ct, envelopes)
    if problem:
        unread_envelope_notes(notes, job.structures, mapping, used)
        dose_notes.append(f"{problem}: {instead or UNREAD_ENVELOPE_DOSE}")
        unread[:] = [problem, *used]
    if mask is None:
        return None, None
    provenance["tumour"] += (f"; radiomics only: the dose metrics subtract the RTSTRUCT's motion envelope "
                             f"{structure_names(used)} from the lungs, not this tumour")
    return mask, (f"lungs minus the tumour's motion envelope RTSTRUCT {structure_names(used)} (the RTSTRUCT has no "
                  "GTV: Lungs - iGTV, as lungai dose-features; no GTV dose)")


UNREAD_ENVELOPE_DOSE = "the dose metrics subtract the automatic tumour from the lungs instead"


def unread_envelope_notes(notes: list, structures, mapping, unread) -> None:
    """In ``notes`` (in place), the role notes of the motion envelopes ``unread`` that said they are subtracted from
    the lungs for the dose metrics (:func:`lungai.dicom.roles.role_notes`, written by :func:`plan_cohort` before the
    envelope was read) replaced by what the same function says of an envelope that could not be read."""
    fixed = _unread_envelope_fixes(structures, mapping, unread)
    notes[:] = [fixed.get(n, n) for n in notes]


def _unread_envelope_fixes(structures, mapping, unread) -> dict:
    """{role note said as planned: the note of the envelope ``unread``} (:func:`unread_envelope_notes`)."""
    from lungai.dicom.roles import role_notes

    planned, actual = role_notes(structures, mapping), role_notes(structures, mapping, unread=unread)
    return {a: b for a, b in zip(planned, actual) if a != b} if len(planned) == len(actual) else {}


def inventory_with_unread_envelopes(inventory: pd.DataFrame, unread: dict, mapping=None) -> pd.DataFrame:
    """The inventory (patients.csv, written as planned) with the notes of the patients whose motion envelope could not
    be read when processed (``unread``: {case: (job, [why, names])}) set right: not said subtracted, and why
    (:func:`unread_envelope_notes`, the same words as the patient's result.json)."""
    inventory = inventory.copy()
    for i, r in inventory.iterrows():
        if r["case"] in unread:
            job, (problem, *names) = unread[r["case"]]
            text = r["notes"] if isinstance(r["notes"], str) else ""
            for planned, actual in _unread_envelope_fixes(job.structures, mapping, names).items():
                text = text.replace(planned, actual)
            inventory.at[i, "notes"] = "; ".join(filter(None, [text, f"{problem}: {UNREAD_ENVELOPE_DOSE}"]))
    return inventory


def dose_envelope_names(rtstruct, mapping=None) -> list[str]:
    """The RTSTRUCT's motion envelopes (iGTV / ITV: :func:`lungai.dicom.roles.motion_envelopes`) the dose metrics
    subtract from the lungs, when it has no contoured GTV; [] otherwise (no RTSTRUCT, a GTV, no envelope).
    Recorded in a patient's inputs (``dose_envelope``) so that a result of an older lungai, whose dose was of the
    lungs minus the automatic tumour with a GTV dose, is redone; results of patients with a GTV are kept."""
    from lungai.dicom.roles import find_role, motion_envelopes
    from lungai.dicom.rtstruct import contoured_structures

    if not rtstruct:
        return []
    names, _ = contoured_structures(rtstruct)
    if find_role(names, "gtv", mapping):
        return []
    return motion_envelopes(names, mapping)


def dose_lungs_minus_gtv(names, mapping=None, empty=()) -> list[str]:
    """The 'Lungs-GTV' structure(s) among an RTSTRUCT's contoured ``names`` that are the lungs of the dose metrics: the
    RTSTRUCT has no GTV structure (none under a GTV's name; the automatic tumour is not subtracted from the clinic's
    lungs minus the GTV) - the rule of ``lungai dose-features --rtstruct`` (:func:`lungai.dicom.roles.dose_lungs_role`
    with ``gtv`` False), also beside a right + left lung; [] otherwise."""
    from lungai.dicom.roles import dose_lungs_role, find_role, required_names

    names = list(names)
    if find_role(names, "gtv", mapping):
        return []
    try:
        if dose_lungs_role(names, mapping, empty, gtv=False) != "lungs_minus_gtv":
            return []
        return list(required_names("lungs_minus_gtv", names, mapping, empty))
    except InputError:      # two lung structures of one role: the patient fails where its lungs are read
        return []


def dose_lungs_minus_gtv_names(rtstruct, mapping=None) -> list[str]:
    """:func:`dose_lungs_minus_gtv` of an RTSTRUCT file ([] without one).  Recorded in a patient's inputs
    (``dose_lungs_minus_gtv``) so that a result of an older lungai (dose on the lungs minus the automatic tumour) is
    redone."""
    from lungai.dicom.rtstruct import contoured_structures

    if not rtstruct:
        return []
    names, empty = contoured_structures(rtstruct)
    return dose_lungs_minus_gtv(names, mapping, empty)


def lungs_minus_gtv_names(rtstruct, mapping=None) -> list[str]:
    """The RTSTRUCT's 'Lungs-GTV' structure(s) when they are its lungs (no right + left lung, no Lungs structure:
    :func:`_lungs`), whose lungs_minus_tumour radiomics cohort computes; [] otherwise.  Recorded in a patient's inputs
    (``lungs_minus_gtv``) so that a result of an older lungai, without those radiomics, is redone."""
    from lungai.dicom.roles import dose_lungs_role, find_role, required_names
    from lungai.dicom.rtstruct import contoured_structures

    if not rtstruct:
        return []
    names, empty = contoured_structures(rtstruct)
    if find_role(names, "lung_right", mapping) and find_role(names, "lung_left", mapping):
        return []
    try:
        if dose_lungs_role(names, mapping, empty) != "lungs_minus_gtv":
            return []
        return list(required_names("lungs_minus_gtv", names, mapping, empty))
    except InputError:
        return []


def _clinic_dose_lungs(job: CohortJob, ct, mapping, provenance: dict, allow_gaps: bool = False) -> tuple:
    """(mask, what it is) of the RTSTRUCT's 'Lungs-GTV' structure as the dose metrics' lungs when the RTSTRUCT has no
    GTV structure (:func:`dose_lungs_minus_gtv`, the rule of ``lungai dose-features --rtstruct``): the clinic's lungs
    minus the GTV as contoured (QUANTEC's MLD), not the right + left lung minus the automatic tumour; no GTV dose.  The
    automatic tumour then serves the radiomics only (said in the provenance).  (None, None) otherwise."""
    from lungai.dicom.masks import structure_mask, structure_names

    if not dose_lungs_minus_gtv_names(job.rtstruct, mapping):
        return None, None
    mask, used = structure_mask(job.rtstruct, ct, "role:lungs_minus_gtv", mapping, allow_gaps)
    provenance["tumour"] += (f"; radiomics only: the dose metrics are of the RTSTRUCT's {structure_names(used)} (the "
                             "lungs minus the GTV as contoured), not of the lungs minus this tumour")
    return mask, (f"lungs: RTSTRUCT structure {structure_names(used)}, the lungs minus the GTV as contoured (the "
                  "RTSTRUCT has no GTV structure: nothing subtracted, no GTV dose, as lungai dose-features)")


def _derived_structures(job: CohortJob, mapping=None) -> tuple[list, list, list]:
    """The structures of ``job``'s RTSTRUCT its recorded inputs name: (:func:`dose_envelope_names`,
    :func:`lungs_minus_gtv_names`, :func:`dose_lungs_minus_gtv_names` - with an RTDOSE only); [] for each when it
    cannot be read (the patient fails when processed, with its reason)."""
    found = []
    for names, wanted in ((dose_envelope_names, True), (lungs_minus_gtv_names, True),
                          (dose_lungs_minus_gtv_names, bool(job.inputs.get("rtdose")))):
        try:
            found.append(names(job.rtstruct, mapping) if wanted else [])
        except Exception:  # noqa: BLE001 - an unreadable RTSTRUCT fails the patient when processed, with its reason
            found.append([])
    return tuple(found)


def _dose_masks(lungs, tumour, envelope) -> tuple:
    """(lungs, GTV) of a patient's dose metrics: the lungs minus the tumour, or without an RTSTRUCT GTV but with its
    motion envelope (:func:`_dose_envelope`) the lungs minus the envelope and no GTV (as lungai dose-features)."""
    from lungai.dose.features import lungs_minus_envelope

    return (lungs, tumour) if envelope is None else (lungs_minus_envelope(lungs, [envelope]), None)


def cohort_seg_note(note: str) -> str:
    """A note of the automatic segmentation as it holds in a cohort folder: cohort writes no probability map, keeps
    the other candidate regions in result.json ('tumour_candidates') and takes no seed point - another region is
    chosen by contouring it as a GTV in the RTSTRUCT (or with ``lungai segment --seed-point`` on this CT)."""
    from lungai.seg.infer import (ANOTHER_CANDIDATE_HINT, CANDIDATES_LISTED, KEPT_IN_PROBABILITY,
                                  OUTSIDE_LUNGS_HINT, UNSEARCHED_HINT)

    return (note.replace(KEPT_IN_PROBABILITY, "")
            .replace(CANDIDATES_LISTED, "in result.json under 'tumour_candidates' with their centres")
            .replace(ANOTHER_CANDIDATE_HINT, "to use another one, contour it as a GTV in the RTSTRUCT (or segment "
                                             "this CT with lungai segment --seed-point at its centre)")
            .replace(OUTSIDE_LUNGS_HINT, "a tumour there needs a GTV contoured in the RTSTRUCT (or lungai segment "
                                         "--seed-point on this CT)")
            .replace(UNSEARCHED_HINT, "fix: contour it as a GTV in the RTSTRUCT (or segment this CT with lungai "
                                      "segment --seed-point / --roi on it)"))


# the options of lungai segment that lungai cohort does not have, as lungai.seg.infer's review actions name them
SEGMENT_ONLY_OPTIONS = ("--roi", "--seed-point")


def cohort_review_action(action: str, job: CohortJob) -> str:
    """A review action of the automatic segmentation (lungai.seg.infer.review_actions) as it holds for a cohort
    patient: cohort takes no seed point or ROI box (:data:`SEGMENT_ONLY_OPTIONS`), so an action naming one names
    ``lungai segment`` on this patient's CT series with it, into a folder of its own.  QA: a patient's result.json
    said "draw an ROI box round the tumour (--roi ...)", and ``lungai cohort`` has no --roi."""
    import re

    if not any(re.search(rf"(?<![\w-]){o}(?![\w-])", action) for o in SEGMENT_ONLY_OPTIONS):
        return action
    named = re.sub(rf"(?<![\w-])({'|'.join(SEGMENT_ONLY_OPTIONS)})(?![\w-])", r"lungai segment \1", action)
    spread = " (its slices lie in several folders: copy them into one)" if job.ct_files else ""
    return (f"{named} - the cohort takes no seed point or ROI: run lungai segment {job.ct_folder} --series "
            f"{job.ct_series_uid} with it{spread} -o a folder of its own (or contour the GTV in the RTSTRUCT "
            "and run the cohort again)")


def remove_patient_files(folder: Path, remove_empty: bool = False) -> None:
    """Remove cohort's own files (:data:`PATIENT_FILES`) from a patient's output folder - a link or any other file
    there is left alone - and, with ``remove_empty``, the folder when nothing else is left in it."""
    for name in PATIENT_FILES:
        old = folder / name
        if old.is_file() and not old.is_symlink():
            old.unlink()
    if remove_empty and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()


def remove_staging(folder: Path) -> None:
    """Remove the patient's :data:`STAGING` subfolder (what a failed, cancelled or killed run of it wrote)."""
    import shutil

    stage = folder / STAGING
    if stage.is_dir() and not stage.is_symlink():
        shutil.rmtree(stage, ignore_errors=True)


def _move_into_place(stage: Path, folder: Path) -> None:
    """A patient's new result (written into ``stage``) replaces its earlier one in ``folder``: cohort's own files of
    the earlier run removed (no old mask beside the new ones), the new ones moved in, ``result.json`` last."""
    remove_patient_files(folder)
    for name in PATIENT_FILES:
        if name != RESULT and (stage / name).is_file():
            (stage / name).replace(folder / name)
    (stage / RESULT).replace(folder / RESULT)
    remove_staging(folder)


def missing_patient_files(folder: Path) -> list[str]:
    """What a patient's ``result.json`` lacks beside it to be finished: ``features.csv`` and its masks (the tumour,
    the lungs or the dose's lungs) - [] when finished (or when there is no result.json: then it is not finished at
    all).  A half-written patient (a task on an external ``--scheduler``'s worker is not stopped by a cancel, and
    the cancel's cleanup may remove files it wrote) is redone, never counted nor read."""
    if not (folder / RESULT).is_file():
        return []
    missing = [name for name in (FEATURES, TUMOUR) if not (folder / name).is_file()]
    if not (folder / LUNGS).is_file() and not (folder / DOSE_LUNGS).is_file():
        missing.insert(0, LUNGS)
    return missing


def patient_finished(folder: Path) -> bool:
    """A patient's output is finished: its ``result.json`` with nothing missing (:func:`missing_patient_files`)."""
    return (folder / RESULT).is_file() and not missing_patient_files(folder)


# the dose's masks without a contoured GTV (nor a motion envelope): the automatic tumour stands for it
AUTO_TUMOUR_DOSE = "lungs minus the automatic tumour"
AUTO_GTV_DOSE = "dose_gtv_*: the automatic tumour's dose, not a contoured GTV's"
# the steps of a patient's "cohort CASE: inputs" bar: CT read, lungs, tumour; with an RTDOSE also the RTDOSE read (first)
# and the dose features (last)
INPUT_STEPS = 3
DOSE_STEPS = 2


def remove_unfinished(out: Path, jobs, existed=()) -> None:
    """After a cancelled run (Ctrl-C, SIGTERM): cohort's own files (:func:`remove_patient_files`) of every patient
    without its ``result.json`` - the folder too when it was made by this run (its case not in ``existed``).  In the
    main process: a Dask worker ended while closing the cluster never runs :func:`process_patient`'s own cleanup."""
    for job in jobs:
        folder = Path(out) / "patients" / safe_name(job.case)
        remove_staging(folder)      # a redo cut short: the earlier result stays as it was
        if not patient_finished(folder):
            try:
                remove_patient_files(folder, remove_empty=job.case not in existed)
            except OSError:    # noqa: PERF203 - one undeletable file must not hide the cancel
                pass


def remove_fresh_run(out: Path, jobs) -> bool:
    """After a cancelled run into a folder no cohort run had written into (no ``settings.key``, no marker): when no
    patient finished (nothing a re-run could resume: :func:`patient_finished`), the files of cohort's output names
    that this run wrote (:data:`OUTPUTS`: ``settings.key``, ``settings.json``, ``patients.csv``) and its ``patients/``
    folder - only once empty (:func:`remove_unfinished` has removed the unfinished patients' files) - are removed;
    :func:`lungai.io.outputs.locked_output_folder` then removes the folder itself when the run made it.  True when
    they were; False (all left as it is, recorded in the marker) when a patient finished or ``patients/`` holds
    anything else."""
    patients = Path(out) / "patients"
    if any(patient_finished(patients / safe_name(job.case)) for job in jobs):
        return False
    if patients.is_dir() and not patients.is_symlink():
        try:
            patients.rmdir()        # only when empty
        except OSError:
            return False
    for name in _written(Path(out)):
        if name != "patients":
            (Path(out) / name).unlink(missing_ok=True)
    return True


def gaps_allowed_notes(notes: list):
    """The structures read with gaps between slices inside the block (``--allow-gaps``;
    :class:`lungai.dicom.rtstruct.GapsAllowedNote`) or with a contour written twice on one slice, read once
    (:class:`lungai.dicom.rtstruct.RepeatedContourNote`) or with open contours left out
    (:class:`lungai.dicom.rtstruct.OpenContourNote`) appended to ``notes``, each once (a patient's record says which
    of its structures were read so, the flag applies to all); every other warning passes on as it was
    (:func:`lungai.errors.warnings_as_notes`)."""
    from lungai.dicom.rtstruct import GapsAllowedNote, OpenContourNote, RepeatedContourNote
    from lungai.errors import warnings_as_notes

    return warnings_as_notes((GapsAllowedNote, RepeatedContourNote, OpenContourNote), notes)


def process_patient(job: CohortJob, params: dict, out_dir: str, mapping=None, model_dir=None,
                    max_gy: float | None = None, allow_gaps: bool = False) -> dict:
    """Everything for one patient into ``out_dir/patients/<case>/``; never raises (errors are returned).
    ``max_gy``: the largest plausible dose in Gy (``--max-dose-gy``, :func:`lungai.dose.read.check_dose_plausible`).
    ``allow_gaps``: RTSTRUCT lung / GTV structures with slices left out between their first and last slice (separate
    parts: a GTV of two lesions, nodes at several levels) are read (``--allow-gaps``), else they fail the patient.
    The notes said on the terminal and the error name the files under DICOM_ROOT by their path under it
    (:func:`lungai.dicom.discover.shown_paths_in`), as the inventory and the planning notes do (QA: "the RTSTRUCT
    /data/export/P1/RTSTRUCT/RS.dcm ... could not be checked" beside "RTSTRUCT P1/RTSTRUCT/RS.dcm carries no ...")."""
    from functools import partial

    from lungai.dask_workers import case_notes_rewritten
    from lungai.dicom.discover import shown_paths_in

    shown = partial(shown_paths_in, root=job.root) if job.root else None
    with case_notes_rewritten(shown):
        result = _process_patient(job, params, out_dir, mapping, model_dir, max_gy, allow_gaps)
    if shown is not None and result.get("error"):
        result["error"] = shown(result["error"])
    return result


def _process_patient(job: CohortJob, params: dict, out_dir: str, mapping=None, model_dir=None,
                     max_gy: float | None = None, allow_gaps: bool = False) -> dict:
    """:func:`process_patient`'s work."""
    import pandas as pd

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    folder = Path(out_dir) / "patients" / safe_name(job.case)
    made, finished = not folder.exists(), False
    # a patient redone (its inputs changed) keeps its earlier result until the new one has succeeded: the new files
    # are written into the staging folder and moved into place at the end
    previous = patient_finished(folder)
    stage = folder / STAGING
    try:
        import SimpleITK as sitk

        from lungai.dicom.rtstruct import read_once
        from lungai.dose import check_dose_matches_ct, dose_features
        from lungai.dose.features import LUNGS_CUT_COLUMN, NOTES_COLUMN, lungs_cut, notes_text
        from lungai.dose.read import dose_read_once, read_dose_sum
        from lungai.io import read_ct, write_image
        from lungai.lungs.check import lung_map_notes, lung_segment_notes
        from lungai.radiomics import extract, segments_from_masks, to_wide
        from lungai.radiomics.extract import edge_notes
        from lungai.radiomics.segments import AUTOMATIC_TUMOUR, empty_tumour_give, lung_map_hint, tumour_words
        from lungai.radiomics.csv_output import write_csv

        if not previous:
            remove_patient_files(folder)     # an unfinished earlier run's masks (no result.json): never counted, redone
        remove_staging(folder)
        stage.mkdir(parents=True)
        notes = list(job.notes)
        provenance = {"ct": f"DICOM series {job.ct_series_uid}"}
        if job.error:
            raise InputError(*job.error)
        dose_files = job.rtdose_files or ([job.rtdose] if job.rtdose else [])
        # the patient's inputs (CT read, RTSTRUCT lungs / GTV rasterised or segmented, the dose) on a bar of their own
        # (QA firstbar64: LUNG1-003 stood 10-11 s at "cohort 0/1" before its radiomics bar); its RTSTRUCT read and
        # parsed once for every structure / role taken from it (QA cohortbar64: 10-12 times, ~3 s of its 10 s); its
        # RTDOSEs' headers read once for their check against the CT and the dose's reading (dose_read_once; QA
        # cohortfollow66: each RTDOSE read again by read_dose_sum's choice among them, 7 reads of a file)
        with task(f"cohort {job.case}: inputs", INPUT_STEPS + (DOSE_STEPS if dose_files else 0),
                  rate=False) as inputs_bar, \
                read_once(), dose_read_once():
            # another patient's / frame's RTDOSE refused; one whose frame of reference could not be compared (no
            # FrameOfReferenceUID: matched by its PatientID and folder) used with its note, recorded with the metrics
            # as dose-features records it in dose.csv (QA cohortframe60: the returned note was dropped)
            names = job.dose_names or [Path(f).name for f in dose_files]    # relative to DICOM_ROOT, as patients.csv
            frame_notes = list(dict.fromkeys(
                n for n in (check_dose_matches_ct(f, job.ct_folder, job.ct_series_uid,
                                                  names=(name, f"series {job.ct_series_uid}"))
                            for f, name in zip(dose_files, names)) if n))
            # the dose read (a truncated / implausible RTDOSE refused) before the lungs, tumour and radiomics
            dose_img = read_dose_sum(dose_files, max_gy=max_gy, root=job.root or None) if dose_files else None
            if dose_files:
                inputs_bar.update(1, "RTDOSE read")
            if job.ct_files:    # a series spread over several folders: all its slices, not only the first folder's
                from lungai.io.read import read_dicom_ct_files

                ct = read_dicom_ct_files(job.ct_files, job.ct_folder)
            else:
                ct = read_ct(job.ct_folder, series_uid=job.ct_series_uid)
            inputs_bar.update(1, "CT read")
            with gaps_allowed_notes(notes):      # which structures --allow-gaps read with gaps: in the patient's notes
                lungs, dose_lungs, dose_lungs_role = _lungs(job, ct, mapping, provenance, notes, allow_gaps)
                inputs_bar.update(1, "lungs")
                gtvs: list = []     # the GTV structures the tumour is (none: the automatic tumour)
                tumour, confidence, review, candidates, segmentation = _tumour(job, ct, mapping, model_dir,
                                                                               provenance, notes, allow_gaps, gtvs)
                inputs_bar.update(1, "tumour")
                # no GTV structure but the clinic's Lungs-GTV: the dose's lungs, nothing subtracted (dose-features')
                clinic, clinic_text = _clinic_dose_lungs(job, ct, mapping, provenance, allow_gaps) if dose_files else \
                    (None, None)
                if clinic_text and dose_lungs_role != "lungs_minus_gtv":   # the lungs' record says which the dose took
                    provenance["lungs"] += f"; the dose features' {clinic_text.removeprefix('lungs: ')}"
            write_image(lungs if lungs is not None else dose_lungs,
                        stage / (LUNGS if lungs is not None else DOSE_LUNGS))
            write_image(tumour, stage / TUMOUR)
            # the dose features before the radiomics (a dose that does not cover the lungs fails the patient now, not
            # after a minute of radiomics); no GTV but an iGTV / ITV: the dose's lungs are the lungs minus it (as
            # dose-features --rtstruct)
            dose, dose_notes, map_notes = None, [], []
            gtv_union = None        # the GTV dose of several GTVs: its note (gtv_union_note), said by run_cohort
            unread: list = []       # an envelope that could not be read: [why, its names]
            envelope, dose_masks = (_dose_envelope(job, ct, mapping, provenance, notes, dose_notes, unread,
                                                   instead=clinic_text and f"the dose metrics are of the {clinic_text}")
                                    if dose_files else (None, None))
            if dose_files and clinic is None and envelope is None and not sitk.GetArrayViewFromImage(tumour).any():
                # an empty tumour subtracted from the dose's lungs (the segmentation found none): said as cohort's, not
                # dose-features' "the GTV mask is empty", fix "... or leave --gtv out" - an option cohort does not
                # have (QA idforms66)
                what, several = tumour_words(None, gtvs or None, None if gtvs else AUTOMATIC_TUMOUR)
                raise InputError(f"{what} {'are' if several else 'is'} empty (no voxel), so the dose metrics of the "
                                 "lungs minus it and its own dose cannot be computed",
                                 empty_tumour_give(gtvs or None, None if gtvs else AUTOMATIC_TUMOUR))
            if dose_files:
                dose_region = (_dose_masks(clinic, None, envelope) if clinic is not None else
                               _dose_masks(lungs if lungs is not None else dose_lungs, tumour, envelope))
                dose = dose_features(dose_img, ct, *dose_region, case=job.case)
                inputs_bar.update(1, "dose features")
                if clinic is None and envelope is None:
                    # the GTV dose of every GTV (the tumour: their union), said as dose-features says it, naming the
                    # command that takes the primary GTV alone (QA cohortdose69: LUNG1-003's dose_gtv_* of GTV-1 +
                    # gtv-3 + gtv-2 without a word)
                    from lungai.cli.dose import DOSE_FEATURES_GTV, gtv_union_note

                    union = gtv_union_note(gtvs, mapping, via=DOSE_FEATURES_GTV, rtstruct=job.rtstruct)
                    if union:
                        dose_notes.append(union)
                        gtv_union = union
                # lungs cut by the scan's first / last slice (a short series): the dose metrics of a partial lung,
                # flagged (lungs_cut column, provenance) as lungai dose-features does
                cut, cut_note = lungs_cut(dose_region[0])
                dose[LUNGS_CUT_COLUMN] = cut
                # the notes on the dose's values (DoseType EFFECTIVE, no DoseSummationType, a BEAM sum unchecked; in
                # the patient's notes already) recorded with the metrics, as dose-features records them in dose.csv -
                # lungai rp predict on the table repeats them
                dose[NOTES_COLUMN] = notes_text(frame_notes + dose_value_notes(job))
                dose_notes.extend(frame_notes)
                if cut_note:
                    dose_notes.append(cut_note)
                # automatic lungs: segment_lungs has said it already when it found one lung (ONE_LUNG_NOTE); the
                # volume of one 'Lungs' structure taken as the dose's lungs is checked with its radiomics segment below
                # (under 1000 ml: "does not look like the lungs"), not said twice in two wordings (QA cohort72)
                map_notes = lung_map_notes(clinic if clinic is not None else lungs if lungs is not None
                                           else dose_lungs, label_map=clinic is None and lungs is not None
                                           and provenance["lungs"] != AUTO_LUNGS,
                                           check_volume=not (dose_lungs_role == "lungs" and clinic is None
                                                             and lungs is None))
                dose_notes.extend(map_notes)
                provenance["dose"] = ("RTDOSE " + names[0] if len(dose_files) == 1 else
                                      f"sum of {len(dose_files)} BEAM RTDOSEs of one plan "
                                      + "+".join(names)
                                      + (f" [{job.rtdose_check}]" if job.rtdose_check else "")) + (
                    # the clinic's Lungs-GTV (the RTSTRUCT has no GTV structure): which lungs, said
                    f" ({clinic_text}" + (f"; {dose_masks}" if envelope is not None else "")
                    + (f"; {unread[0]}, not subtracted" if unread else "") + ")" if clinic is not None else
                    f" ({dose_masks})" if envelope is not None else
                    # the automatic tumour in the GTV's place (also when the envelope could not be read): said so
                    f" ({AUTO_TUMOUR_DOSE}{f': {unread[0]}, not subtracted' if unread else ''}"
                    f"{', needs review' if review else ''}; {AUTO_GTV_DOSE})" if unread or segmentation else
                    " (lungs minus GTV)") + (f"; {cut}" if cut else "")
            else:
                provenance["dose"] = "no RTDOSE" + (f" in this CT's frame of reference (another frame's: "
                                                    f"{job.dose_elsewhere})" if job.dose_elsewhere else "") + (
                    f" matched to this CT ({job.dose_unmatched} carries no FrameOfReferenceUID: notes)"
                    if job.dose_unmatched else "")
        errors: dict = {}
        # a tumour wholly outside the lungs: lungs_minus_tumour equals them, in the patient's notes ("radiomics
        # lungs_minus_tumour: ...") as the segments' other notes (QA outsidefollow65), naming the GTV structures, or
        # the automatic tumour, not "the tumour mask" the user never gave (QA emptysel65)
        seg_notes: dict = {"lungs_minus_tumour": []}
        segments = segments_from_masks(ct, tumour=tumour, lungs=lungs, errors=errors,
                                       notes=seg_notes["lungs_minus_tumour"], tumour_structures=gtvs or None,
                                       tumour_named=None if gtvs else AUTOMATIC_TUMOUR,
                                       lung_notes=seg_notes.setdefault("lungs", []))   # one lung absent, no lung
        if dose_lungs_role in ("lungs", "lungs_minus_gtv"):     # lungs_minus_tumour of other lungs, below
            seg_notes["lungs_minus_tumour"] = []        # the lung notes kept (QA notesfollow71: all were cleared)
        if dose_lungs_role == "lungs":   # one 'Lungs' structure: the whole-lung segments, no per-side ones
            whole = sitk.Cast(dose_lungs > 0, sitk.sitkUInt8)
            outside = sitk.Not(sitk.Cast(tumour > 0, sitk.sitkUInt8))
            segments.update(lungs=whole, lungs_minus_tumour=sitk.And(whole, outside))
            errors.pop("lungs", None)
            errors.pop("lungs_minus_tumour", None)
            # checked as the lungs of a label map are (segments_from_masks): a 'Lungs' structure that looks like no
            # lungs (a GTV named Lungs, under 1000 ml or mostly soft tissue) said in the patient's notes
            # - its dose metrics' lungs too, said in that note (the lung map's own volume note is not added: above)
            seg_notes.setdefault("lungs", []).extend(lung_segment_notes(
                {"lungs": whole}, ct, hint=lung_map_hint() + (LUNGS_DOSE_TOO if dose is not None and clinic is None
                                                              and lungs is None else "")))
        elif dose_lungs_role == "lungs_minus_gtv":   # one 'Lungs-GTV' structure: it is the lungs_minus_tumour segment
            outside = sitk.Not(sitk.Cast(tumour > 0, sitk.sitkUInt8))
            segments["lungs_minus_tumour"] = sitk.And(sitk.Cast(dose_lungs > 0, sitk.sitkUInt8), outside)
            errors.pop("lungs_minus_tumour", None)
        with task(f"cohort {job.case}: radiomics", max(len(segments), 1), rate=False) as bar:   # a step per segment
            result = extract(ct, segments, params, case=job.case, segment_errors=errors, progress=bar,
                             segment_notes=seg_notes)
        if result.features.empty:
            raise InputError("no radiomics segment could be extracted: " + "; ".join(result.errors.error),
                             "check the lung and tumour masks in " + str(folder))
        row = to_wide(result.features).iloc[0].to_dict()
        for r in result.errors.itertuples(index=False):
            notes.append(f"radiomics {r.segment}: {r.error}")
        # a segment on the CT's image edge (may be cut by the scan), as lungai radiomics warns: in the notes, and
        # said on the terminal once per case by run_cohort (edge_warnings)
        edge = edge_notes(result.settings)
        notes.extend(edge)
        # why values are NaN (an IBSI configuration's notes, as lungai radiomics prints them): "radiomics SEG: ..."
        notes.extend(f"radiomics {n}" for n in result.notes)
        notes.extend(dose_notes)             # said after the radiomics' notes, as before
        # the notes on the lungs' plausibility (one lung absent, a structure that does not look like the lungs, lungs
        # under 1000 ml): in the table's lung_notes column and said on the terminal by run_cohort (QA cohort72: in
        # result.json only)
        lung_said = [f"radiomics {LUNG_NOTES_SEGMENT}: {n}" for n in seg_notes.get(LUNG_NOTES_SEGMENT, [])]
        lung_said = [n for n in dict.fromkeys(lung_said + map_notes) if n in notes]
        # a structure that may be tumour left out of it (a GTV renamed 'Tumour_main' beside other GTVs ...): in the
        # table's tumour_notes column and said again by run_cohort (QA cohortfollow72: in patients.csv only)
        from lungai.dicom.roles import left_out_gtv_notes
        if dose is not None:
            row.update({k: v for k, v in dose.items() if k != "case"})
        row.update(case=job.case, patient_id=job.patient_id, tumour_confidence=confidence, tumour_review=review)
        write_csv(pd.DataFrame([row]), stage / FEATURES)
        from lungai.dicom.export import COHORT_LUNGS_DIGEST, TUMOUR_DIGEST, mask_digest
        from lungai.io.read import file_digest

        doc = {"case": job.case, "patient_id": job.patient_id, "status": "done", "provenance": provenance,
               # lungs.nii.gz as written: dicom-export takes automatic lungs as lungai's only while unchanged
               **({COHORT_LUNGS_DIGEST: file_digest(stage / LUNGS)} if lungs is not None else {}),
               TUMOUR_DIGEST: mask_digest(tumour),     # tumour.nii.gz's voxels: an edited one is the user's

               "notes": notes, "edge_warnings": edge, LUNG_NOTES_COLUMN: lung_said,
               TUMOUR_NOTES_COLUMN: list(dict.fromkeys(left_out_gtv_notes(notes))), "inputs": job.inputs,
               "tumour_review": review,
               **({"dose_envelope_unread": unread} if unread else {}),     # patients.csv's notes are set right by it
               **({"gtv_union_note": gtv_union} if gtv_union else {}),
               "tumour_candidates": candidates,
               # an automatic tumour's confidence, review flag / reasons / threshold, method, model (as lungai
               # segment's result.json: dicom-export --result takes it); none for an RTSTRUCT GTV
               **segmentation, "seconds": round(time.perf_counter() - start, 2), "versions": versions(),
               # the grid each segment was computed on (as radiomics' _settings.csv)
               "radiomics_grid": json.loads(result.settings.drop(columns=["case", "versions"]).to_json(orient="records"))}
        tmp = stage / (RESULT + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float), encoding="utf-8")
        tmp.replace(stage / RESULT)
        _move_into_place(stage, folder)   # result.json moved last: its presence marks the patient finished
        finished = True
        return doc
    except LungAIError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken patient must not stop the cohort
        message = f"{type(exc).__name__}: {exc}"
    finally:     # failed or cancelled: no mask of an unfinished patient is left (the folder too when this run made it);
        if not finished:     # an earlier result being redone stays as it was
            remove_staging(folder)
            if not previous:
                remove_patient_files(folder, remove_empty=made)
    if previous:     # said on the error's first line (the terminal's "failed:" line) too
        first, _, rest = message.partition("\n")
        message = first + " - " + KEPT_NOTE.format(folder=folder) + ("\n" + rest if rest else "")
    return {"case": job.case, "patient_id": job.patient_id, "status": "failed", "error": message,
            "seconds": round(time.perf_counter() - start, 2)}


def truncated_text(files, root) -> str:
    """patients.csv's ``rtstruct`` / ``rtdose`` cell of a file there but cut short (``Study.truncated``), not
    "missing": the file by its path under DICOM_ROOT and the fix ("re-export them" of several); "" when none."""
    return (", ".join(shown_path(f, root) for f in files)
            + f" (truncated: re-export {agree(len(files), 'it', 'them')})") if files else ""


def truncated_rtstructs_text(files, root) -> str:
    """The cut RTSTRUCTs of a patient without a readable one, each by its path under DICOM_ROOT: "its RTSTRUCT
    P1/RS.dcm could not be read as DICOM", "its 2 RTSTRUCTs P1/a.dcm, P1/b.dcm could not be read as DICOM" (QA
    cohortfollow67: with two cut short in LUNG1-003's folder, the warning named the first alone)."""
    shown = ", ".join(shown_path(f, root) for f in files)
    return (f"its RTSTRUCT {shown} {UNREADABLE}" if len(files) == 1 else
            f"its {len(files)} RTSTRUCTs {shown} {UNREADABLE}")


# the fix of unreadable files in no patient's folder: of one file, of several (inventory_warnings finds it by it)
ORPHAN_UNREADABLE_FIX = ("re-export it, or move it into its patient's folder",
                         "re-export them, or move them into their patient's folder")


def told_of_patient(text: str, ids) -> PatientsText:
    """``text``, a warning on one patient (its case / PatientID ``ids`` at its head: "P1 will fail: ...", "P1: ..."),
    with its form naming no patient (:class:`lungai.errors.PatientsText`, for :func:`lungai.errors.say_notes`): the
    head's ID said "a patient", any name holding one (a folder P1/RS/rs.dcm, LUNG1-003b/CT) "<patient>"."""
    import re

    known = sorted({str(i) for i in ids if str(i)}, key=lambda i: (-len(i), i))
    without = str(text)
    for i in known:
        if without.startswith(i) and without[len(i):len(i) + 1] in (":", " "):
            without = "a patient" + without[len(i):]
            break
    if known:
        one = "|".join(map(re.escape, known))
        part = r"""[^\s/\\(),;:'"]*"""     # of a path's or a list's part: the whole part said "<patient>"
        without = re.sub(rf"{part}(?:{one}){part}", "<patient>", without)
    return PatientsText(str(text), without)


def say_cohort_note(text) -> None:
    """``text``, a note of ``lungai cohort`` that is no warning (an earlier result redone, the table of an earlier run
    removed or kept, results not in the export ...): an :class:`lungai.errors.InputCheckNote` the CLI says once on
    stderr as ``note: ...`` on a line of its own beside the bar, with ``text``'s form naming no patient (a
    :class:`lungai.errors.PatientsText`; :func:`told_of_patient`) - not printed on stdout among the inventory's lines
    and the summary (QA cohortnotes67)."""
    import warnings

    warnings.warn(InputCheckNote(text), stacklevel=2)


def inventory_warnings(jobs: list[CohortJob], inventory: pd.DataFrame | None = None) -> list[str]:
    """What the terminal must say about the plan (the notes are in patients.csv): a patient with several CT series
    (several table rows with one patient_id), a patient that fails before any work (``job.error``), one whose
    RTSTRUCT may be an unreadable file or lies in another frame of reference only (automatic lungs / tumour), a GTV
    the structure mapping hides beside other GTVs (:func:`lungai.dicom.roles.hidden_gtv_note`), and
    (from the ``inventory`` of :func:`plan_cohort`) unreadable files in no
    patient's folder (a study without a CT, e.g. patient 'unknown') and a patient whose RTDOSE is truncated (no dose
    features: before, said in patients.csv alone).  Each a :class:`lungai.errors.PatientsText` with its form naming no
    patient: ``lungai cohort`` says them as InputNotes ("warning: ..." on stderr, :func:`lungai.errors.say_notes`)."""
    lines, cases, told = [], {}, {}
    for job in jobs:
        cases.setdefault(job.patient_id, []).append(job.case)
        # which row is which series (a planning CT and a follow-up, a thin and a thick reconstruction)
        # an RTDOSE refused (a FRACTION dose ...) is "RTDOSE", as dicom-scan says it (its refusal: "will fail" below)
        told[job.case] = ct_series_told(job.ct_label, bool(job.rtstruct), bool(job.rtdose) or job.rtdose_found,
                                        job.rtstructs_ambiguous, job.rtdoses_ambiguous)
    for pid, rows in cases.items():
        if len(rows) > 1:
            lines.append(several_ct_series_warning(pid, [(r, told[r]) for r in rows]))
    for job in jobs:
        if job.error:
            # the fix too (re-export the RTDOSE in GY ...): said before hours of other patients' work, not after
            lines.append(told_of_patient(f"{job.case} will fail: {job.error[0]}"
                                         + (f" - fix: {job.error[1]}" if len(job.error) > 1 and job.error[1] else ""),
                                         (job.case, job.patient_id)))
        lines += [told_of_patient(f"{job.case}: {n[len('WARNING: '):]}", (job.case, job.patient_id))
                  for n in job.notes
                  if n.startswith("WARNING: ") and (UNREADABLE in n or OTHER_FRAME_RTSTRUCT_NOTE in n
                                                    or n.startswith(f"WARNING: {FRAMELESS_RTSTRUCT_NOTE}"))]
        # an RTSTRUCT that could not be read, or lies in another frame of reference: automatic lungs / tumour
        # a GTV the --structure-map hides (null) beside other GTVs: not the tumour, nor subtracted from the lungs (QA
        # cohort70: said in patients.csv alone, as "structures without a role")
        lines += [told_of_patient(f"{job.case}: {n}", (job.case, job.patient_id)) for n in job.notes if HIDDEN_GTV in n]
    for r in (inventory.itertuples(index=False) if inventory is not None else ()):
        notes = str(r.notes)    # not processed (no CT): its unreadable files are no patient's (plan_cohort's first note)
        fix = next((f for f in ORPHAN_UNREADABLE_FIX if f in notes), None)
        if not r.case and notes.startswith("WARNING: ") and UNREADABLE in notes and fix:
            lines.append(told_of_patient(f"{r.patient_id}: " + notes[len("WARNING: "):notes.index(fix) + len(fix)],
                                         (r.patient_id,)))
        if r.case and str(r.dose_features) == f"no ({TRUNCATED_RTDOSE})":  # no dose features: said (QA dosecut64)
            cell = str(r.rtdose)        # truncated_text's cell, of one file or several
            one = cell.endswith(" (truncated: re-export it)")
            files = cell.removesuffix(" (truncated: re-export it)").removesuffix(" (truncated: re-export them)")
            lines.append(told_of_patient(
                f"{r.case}: no dose features - its RTDOSE {files} is truncated; re-export it from the "
                "planning system and run again" if one else
                f"{r.case}: no dose features - its RTDOSEs {files} are truncated; re-export them from the "
                "planning system and run again", (r.case, r.patient_id)))
    return lines


def inventory_lines(inventory: pd.DataFrame, jobs: list[CohortJob]) -> list[str]:
    """The inventory's lines on stdout, one per row of ``patients.csv`` (:func:`plan_cohort`): each CT row named by
    its case - the name of its folder ``OUT/patients/<case>/``, its bar and its ``errors.csv`` row -, with its
    PatientID where the case differs (a patient with several CT series: ``P_1``, ``P_2``) and its CT folder under
    DICOM_ROOT, e.g. ``LUNG1-003_2 (PatientID LUNG1-003): CT 107 slices in LUNG1-003b/CT, RTSTRUCT ...``.  QA
    cohortfollow71: LUNG1-003 and its re-export were two lines "LUNG1-003: CT 107 slices, ..." alike but for the
    RTSTRUCT's path; which was LUNG1-003_1 was said only in a warning."""
    by_case = {job.case: job for job in jobs}
    lines = []
    for r in inventory.itertuples(index=False):
        job = by_case.get(r.case) if r.case else None
        name = r.patient_id
        ct = f"CT {r.ct or '-'}"
        if job is not None:
            name = job.case + (f" (PatientID {job.patient_id})" if job.case != job.patient_id else "")
            folders = sorted({Path(f).parent for f in job.ct_files}) or [Path(job.ct_folder)]
            shown = ", ".join(shown_path(f, job.root or None) for f in folders)
            ct += f" in {shown}" if shown != "." else ""     # the export folder itself (a flat export): not said
        lines.append(f"{name}: {ct}, RTSTRUCT {r.rtstruct or '-'}, RTDOSE {r.rtdose or '-'}"
                     + (f"; missing {r.missing}" if r.missing else "")
                     + (f"; lungs {r.lungs_from}, tumour {r.tumour_from}" if r.case else "; not processed (no CT)"))
    return lines


def provenance_text(doc: dict) -> str:
    p = doc.get("provenance", {})
    return "; ".join(f"{k}: {v}" for k, v in p.items())


@dataclass
class CohortSummary(BatchSummary):
    table: Path | None = None

    def text(self) -> str:
        lines = [f"{counted(len(self.done), 'patient')} processed, {len(self.skipped)} already done (skipped), "
                 f"{len(self.failed)} failed; {self.seconds:.1f} s in all -> {self.output}"]
        lines += failure_lines(self.failed)
        if self.table is not None:
            lines.append(f"RP table (lungai rp train input): {self.table}")
        return "\n".join(lines)


# rp_table.csv's column (and result.json's key) of a patient's notes on its lungs' plausibility: one lung absent, a lung
# structure that does not look like a lung (a GTV exported as 'Lungs'), lungs under 1000 ml ('' when none; no prefix:
# no feature of lungai rp); the radiomics segment under whose name process_patient records them ("radiomics lungs: ...")
LUNG_NOTES_COLUMN = "lung_notes"
LUNG_NOTES_SEGMENT = "lungs"
# ending that note of one 'Lungs' structure that does not look like the lungs when the dose features are of it too
LUNGS_DOSE_TOO = "; the dose metrics (MLD, V20 ...) are of this structure too"


def result_lung_notes(doc: dict) -> list[str]:
    """A finished patient's notes on its lungs (:data:`LUNG_NOTES_COLUMN`): its result.json's record, else - a result
    written before it was recorded, resumed - those of its notes made by the lungs' checks
    (:func:`lungai.lungs.check.lung_segment_notes`, :func:`lungai.lungs.check.lung_map_notes`, the absent lung's
    note of :func:`lungai.radiomics.segments.segments_from_masks`)."""
    if LUNG_NOTES_COLUMN in doc:
        return [str(n) for n in doc[LUNG_NOTES_COLUMN] or ()]
    from lungai.lungs.check import ONE_LABEL_NOTE, ONE_LUNG_MASK_NOTE, SMALL_NOTE

    map_starts = tuple(t.split("{")[0] for t in (ONE_LABEL_NOTE, ONE_LUNG_MASK_NOTE, SMALL_NOTE))
    segment = f"radiomics {LUNG_NOTES_SEGMENT}: "
    said = [n for n in doc.get("notes") or () if isinstance(n, str) and (n.startswith(map_starts) or (
        n.startswith(segment) and ("does not look like" in n or "a patient with one lung" in n)))]
    # one 'Lungs' structure under 1000 ml was said twice then, in two wordings: once, as process_patient says it now
    if any(n.startswith(f"{segment}segment '{LUNG_NOTES_SEGMENT}' does not look like") for n in said):
        said = [n for n in said if not n.startswith(SMALL_NOTE.split("{")[0])]
    return said


# rp_table.csv's column (and result.json's key) of a patient's notes on structures that may be tumour but are left
# out of it (:func:`lungai.dicom.roles.left_out_gtv_notes`: 'Tumour_main' without a role beside GTVs by name ...; ''
# when none; no prefix: no feature of lungai rp)
TUMOUR_NOTES_COLUMN = "tumour_notes"


def result_tumour_notes(doc: dict) -> list[str]:
    """A finished patient's notes on structures left out of its tumour (:data:`TUMOUR_NOTES_COLUMN`): its
    result.json's record, else - a result written before it was recorded, resumed - those of its notes
    (:func:`lungai.dicom.roles.left_out_gtv_notes`), as :func:`result_lung_notes`."""
    from lungai.dicom.roles import left_out_gtv_notes

    if TUMOUR_NOTES_COLUMN in doc:
        return [str(n) for n in doc[TUMOUR_NOTES_COLUMN] or ()]
    return list(dict.fromkeys(left_out_gtv_notes(doc.get("notes") or ())))


# a finished patient's notes in a column of their own, each said on the terminal too (also when resumed)
RESULT_NOTES = {LUNG_NOTES_COLUMN: result_lung_notes, TUMOUR_NOTES_COLUMN: result_tumour_notes}


# the columns of the cohort table before the clinical join ("dose_*" and "rad_*" columns too): a clinical column
# of one of these names would clash
TABLE_FIRST = ["case", "patient_id", "provenance", "tumour_confidence", "tumour_review", TUMOUR_NOTES_COLUMN,
               CAVEAT_COLUMN, LUNGS_CUT_COLUMN, NOTES_COLUMN, LUNG_NOTES_COLUMN]


# the DICOM tag's own name as a clinical CSV's header (PatientID, "Patient ID"): the patient_id column too
DICOM_ID_NAMES = ("patientid", "patient id")


def read_clinical(clinical) -> pd.DataFrame:
    """The clinical CSV of ``lungai cohort --clinical``, read and checked before any patient is processed (a bad
    one fails now, not after hours): readable UTF-8 comma-separated CSV with rows, a patient_id (or PatientID /
    "Patient ID", the DICOM tag's name - two of these refused -, else case / id / "Case ID" / subject ...: an id column
    of lungai rp's or stage's tables) column - renamed patient_id - holding
    each patient once (:func:`lungai.io.tables.check_unique_ids`: ids differing only in letter case or separators
    are one patient), and no column of a name the cohort computes."""
    from lungai.dose.features import COLUMNS as DOSE_COLUMNS
    from lungai.io.tables import ID_NAMES, check_unique_ids, id_columns_named, id_text, is_id_name, read_table_checked
    from lungai.rp.columns import READ_OPTIONS

    other_ids = ID_NAMES      # the id names of rp's and stage's tables ('Case ID'), in order of preference
    clin = read_table_checked(clinical, id_columns_named(other_ids + DICOM_ID_NAMES), what="clinical CSV", rows=True,
                              fix="give a comma-separated CSV with a patient_id column (the DICOM PatientID) and one "
                                  "row per patient, or leave --clinical out", **READ_OPTIONS)  # "None" kept, as rp
    # the id names as rp and stage compare them (id_name_key: case, spaces, '_' ignored - ' Patient_ID ', PatientID,
    # 'Patient ID' are patient_id; 'Record ID' is REDCap's record_id: QA - cohort refused what rp read as the id)
    found = sorted((c for c in clin.columns if is_id_name(c, ("patient_id", *DICOM_ID_NAMES))),
                   key=lambda c: str(c).strip().lower() != "patient_id")
    if len(found) > 1:
        raise InputError(f"the clinical CSV {clinical} has {len(found)} patient id columns: "
                         f"{', '.join(map(repr, found))}", "keep one of them (the DICOM PatientID of each patient)")
    # else an id column of lungai rp's or lungai stage's tables ('Case ID' of NSCLC-Radiogenomics' clinical CSV,
    # which lungai stage reads: QA - cohort refused it), in that order
    key = found[0] if found else next((c for k in other_ids for c in clin.columns if is_id_name(c, (k,))), None)
    if key is None:
        raise InputError(f"the clinical CSV {clinical} has no patient_id (or PatientID / case / id / Case ID / MRN / "
                         f"Record ID; any case, spaces or '_') column: its columns are "
                         f"{', '.join(map(repr, map(str, clin.columns[:10])))}",
                         "name the column holding the DICOM PatientID of each patient patient_id")
    clin = clin.rename(columns={key: "patient_id"})
    # '007 ' is 007, 'Müller' decomposed (NFD) the precomposed 'Müller' (id_text): as the join compares them
    clin["patient_id"] = [id_text(v) if isinstance(v, str) else v for v in clin["patient_id"]]
    # a patient twice - or written two ways, R01-023 / r01-023 (whose PatientIDs cohort refuses as one output
    # folder): refused as rp and stage refuse it (check_unique_ids), never one row joined and its other row said
    # to be a patient "not in the export"
    check_unique_ids(clin["patient_id"], f"the clinical CSV {clinical}", key, "give one row per patient")
    computed = set(TABLE_FIRST) | set(DOSE_COLUMNS) | {SETTINGS_COLUMN}
    clash = [c for c in clin.columns if c != "patient_id"
             and (c in computed or str(c).startswith(("dose_", "rad_")))]
    if clash:
        n = len(clash)
        raise InputError(f"the clinical CSV {clinical} has {agree(n, 'a column', 'columns')} {clash[:10]} of "
                         f"{agree(n, 'a name', 'names')} the cohort computes (dose_* and rad_* columns are the "
                         "cohort's)", f"rename (clinical features: clin_*) or drop {agree(n, 'it', 'them')} in the "
                         "clinical CSV")
    return clin


def _join_clinical(table: pd.DataFrame, clin: pd.DataFrame, notes: list, failed=(), unprocessed=(),
                   errors: str = ERRORS, inventory: str = INVENTORY, images=()) -> pd.DataFrame:
    """``table`` with the columns of the clinical table ``clin`` (:func:`read_clinical`) of its patients.

    A clinical row without a table row is said as what it is: its patient ``failed`` (PatientIDs: in the export,
    processed, the error in ``errors``), ``unprocessed`` (in the export, not processed: no CT series, a result
    not finished) or not in the export at all - never a failed patient listed as one without imaging.

    The PatientIDs are compared as :func:`lungai.io.tables.id_text` (``clin``'s are already): a PatientID in
    decomposed Unicode (NFD, 'u' + combining diaeresis) joins the clinical CSV's precomposed 'Müller'; the table
    keeps the PatientID as the DICOM writes it.

    ``images``: the NIfTI / NRRD / MHA files under the export's root as messages name them (cohort reads DICOM
    only): a patient not in the export whose ID a file name holds is said as one whose imaging is not DICOM, naming
    its files, not as one without imaging (QA newuser66: LUNG1-002 beside its nifti/LUNG1-002_ct.nii.gz)."""
    from lungai.dicom.discover import IMAGES_FIX
    from lungai.io.tables import id_spelling_hint, id_text

    key = table["patient_id"].map(lambda v: id_text(v) if isinstance(v, str) else v)
    failed, unprocessed = {id_text(p) for p in failed}, {id_text(p) for p in unprocessed}
    missing = sorted(set(key) - set(clin["patient_id"]))
    extra = sorted(set(clin["patient_id"]) - set(key))
    failed_ids = [p for p in extra if p in set(failed)]
    unprocessed_ids = [p for p in extra if p in set(unprocessed) and p not in set(failed)]
    absent = [p for p in extra if p not in set(failed_ids) | set(unprocessed_ids)]
    if missing:        # ids spelt otherwise (001 -> 1, case, separators): named, with the fix (as rp does)
        notes.append(f"no clinical row for: {', '.join(missing)} (their clinical columns are empty)"
                     + id_spelling_hint(missing, absent))
    if failed_ids:
        notes.append(f"clinical rows of patients that failed (not in the table; the reason in {errors}): "
                     f"{', '.join(failed_ids)}")
    if unprocessed_ids:
        notes.append(f"clinical rows of patients in the export without a result (no CT series, or not finished: "
                     f"see {inventory}): {', '.join(unprocessed_ids)}")
    named = {p: _files_naming(p, images) for p in absent}
    not_dicom = [p for p in absent if named[p]]
    absent = [p for p in absent if not named[p]]
    if not_dicom:
        notes.append("clinical rows of patients whose imaging under the export is not DICOM (NIfTI / NRRD / MHA, "
                     "not read: lungai cohort reads DICOM exports only; not in the table): "
                     + "; ".join(f"{p} ({', '.join(named[p])})" for p in not_dicom) + f" - {IMAGES_FIX}")
    if absent:
        notes.append(f"clinical rows of patients not in the export (no imaging): {', '.join(absent)}")
    joined = table.assign(patient_id=key).merge(clin, on="patient_id", how="left")
    joined["patient_id"] = table["patient_id"].to_numpy()
    return joined


def _files_naming(patient_id: str, files) -> list[str]:
    """The files of ``files`` (paths as messages name them) whose file name holds ``patient_id`` as a whole word
    (letter case ignored; not inside a longer run of letters or digits: 'P1' is not in 'P12_ct.nii.gz')."""
    import re

    pid = str(patient_id).strip().casefold()
    if not pid:
        return []
    word = re.compile(r"(?<![0-9a-z])" + re.escape(pid) + r"(?![0-9a-z])")
    return [f for f in files if word.search(Path(f).name.casefold())]


def _model_identity(model_dir) -> str:
    """The segmentation model as its contents: model.json's hash and the other files' names and sizes (so the
    default model named explicitly, or by another path, is the same model); the name as given when it cannot be
    resolved (not installed: the patients needing it fail with the reason)."""
    import hashlib

    from lungai.seg.resources import resolve_model_dir

    try:
        folder = Path(resolve_model_dir(model_dir))
        card = (folder / "model.json").read_bytes()
    except (LungAIError, OSError):
        return "unresolved:" + str(model_dir)
    files = sorted((f.name, f.stat().st_size) for f in folder.iterdir() if f.is_file() and f.name != "model.json")
    return hashlib.sha256(card + json.dumps(files).encode()).hexdigest()


def _written(out: Path) -> list[str]:
    """The output names of cohort's (:data:`OUTPUTS`) present in ``out`` (a link is never taken for one)."""
    return [n for n in OUTPUTS if (out / n).exists() and not (out / n).is_symlink()]


def _settings_key(params: dict, mapping, model_dir) -> str:
    """What makes results of one cohort folder comparable: the radiomics parameters, the structure mapping's
    parsed contents (not its path: ``./map.yaml`` and ``map.yaml`` are one mapping, an edited file is another)
    and the segmentation model's contents (:func:`_model_identity`)."""
    return _settings_key_of(mapping, model_dir)(params)


def _settings_key_of(mapping, model_dir):
    """:func:`_settings_key` of any parameters with this mapping and model (read once)."""
    import hashlib

    from lungai.dicom.roles import load_mapping

    items, model = sorted(load_mapping(mapping).items(), key=str), _model_identity(model_dir)

    def key(params: dict, canonical: bool = True) -> str:
        # the parameters with whole numbers as integers (binWidth 25.0 is 25: canonical_params); canonical=False: as
        # written, the key an older lungai wrote
        blob = json.dumps({"params": canonical_params(params) if canonical else params, "mapping": items,
                           "model": model}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def record(params: dict) -> dict:
        # what the key is of, as SETTINGS_RECORD keeps it (JSON values): the model as given and its contents' hash
        return json.loads(json.dumps({"params": canonical_params(params), "mapping": dict(items),
                                      "model": {"given": None if model_dir is None else str(model_dir),
                                                "contents": model}}, sort_keys=True, default=str))
    key.record = record
    return key


def _record_flat(record: dict) -> dict:
    """A :data:`SETTINGS_RECORD` as {what the user gives: value}: ``--params setting.binWidth``: 25 ...,
    ``--structure-map``: "'tumour big': gtv_primary" (its parsed lines, names normalised); the model apart
    (:func:`_settings_changes`)."""
    from lungai.radiomics.batch import _flat, classes_listed

    # the feature classes as one ("--params featureClass: firstorder, shape then, shape now")
    flat = {f"--params {k}": v for k, v in _flat(classes_listed(record.get("params") or {})).items()}
    mapping = record.get("mapping") or {}
    flat["--structure-map"] = ", ".join(f"'{n}': {r}" for n, r in sorted(mapping.items())) or "(none)"
    return flat


def _settings_changes(out: Path, now: dict, params: dict) -> str:
    """What differs between the settings ``out``'s results were made with (its :data:`SETTINGS_RECORD`) and ``now``
    (``_settings_key_of(...).record(params)``): "--params setting.binWidth: 25 then, 10 now; --structure-map:
    'tumour big': gtv_primary then, (none) now; --model: lungai-seg-unet-ensemble then, /models/other now" (up to 6
    named).  A folder of an older lungai (no record): what its table's settings (``rp_table.settings.json``) show, and
    that it kept no record; "" when nothing can be said."""
    from lungai.radiomics.batch import _changes_text, _flat
    from lungai.radiomics.settings import value_settings

    try:
        then = json.loads((out / SETTINGS_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        then = None
    if isinstance(then, dict):
        a, b = _record_flat(then), _record_flat(now)
        old, new = then.get("model") or {}, now.get("model") or {}
        if old.get("contents") != new.get("contents"):     # the same model by another name or path: not a change
            named = [m.get("given") or "the default model" for m in (old, new)]
            same = named[0] == named[1]
            a["--model"], b["--model"] = named[0], named[1] + (" (its files changed since)" if same else "")
        return _changes_text(a, b)
    try:       # an older lungai's folder: its table's radiomics settings, when it wrote one
        side = json.loads(sidecar_path(out / TABLE).read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"an older lungai wrote {out} without a record of its settings ({SETTINGS_RECORD})"
    current = json.loads(json.dumps(value_settings(params), default=str))
    shown = _changes_text(*({f"--params {k}": v for k, v in _flat(d).items()} for d in (side, current)))
    return (f"an older lungai wrote {out} without a record of its settings ({SETTINGS_RECORD}); "
            + (f"its {sidecar_path(TABLE).name} shows: {shown}" if shown else
               f"its {sidecar_path(TABLE).name} shows the same radiomics settings: the structure mapping or the "
               "model changed"))


def _rewrite_patient_ids(out: Path, current: str) -> None:
    """Every patient's features in ``out`` carry the settings id ``current`` (the same values under an older id, as
    radiomics-batch's resume does)."""
    import pandas as pd

    for f in sorted((out / "patients").glob(f"*/{FEATURES}")):
        if f.is_file() and not f.is_symlink():
            frame = pd.read_csv(f, dtype={"case": str, "patient_id": str})
            if SETTINGS_COLUMN in frame and (frame[SETTINGS_COLUMN].astype(str) != current).any():
                frame[SETTINGS_COLUMN] = current
                frame.to_csv(f, index=False)


def _resume_ignored_lung_spacing(out: Path, params: dict) -> str:
    """A cohort folder made with a lung spacing beside resampledPixelSpacing (ignored then, refused now: the same
    values) resumed without it: its patients' features carry the current settings id (:func:`_rewrite_patient_ids`);
    the note that says so."""
    current = settings_id(params)
    _rewrite_patient_ids(out, current)
    return (f"resumed a cohort run made with a lung spacing beside resampledPixelSpacing (ignored then, refused now: "
            f"the values are the same); its settings id is now {current}")


def _legacy_settings_key(params: dict, mapping, model_dir) -> str:
    """The key of lungai versions before the mapping / model contents were hashed (their path as given): a folder
    stamped with it and these arguments is taken as made with these settings (and re-stamped)."""
    import hashlib

    blob = json.dumps({"params": params, "mapping": str(mapping), "model": str(model_dir)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def results_not_in_export(out: Path, jobs) -> list:
    """The folders under ``out/patients`` holding a finished result (``result.json``) of a patient that is not among
    ``jobs`` (the export's patients now: its DICOM moved or removed from DICOM_ROOT, a folder not mounted ...), sorted.
    Their results are kept (a patient back in the export is resumed) but not in the table, which is of the export's
    patients: said by :func:`run_cohort` (QA cohortbar65: P3 removed from a 3-patient export - the
    re-run's rp_table.csv held 2 rows without a word, P3's result still under patients/)."""
    folder = out / "patients"
    planned = {safe_name(job.case) for job in jobs}
    if not folder.is_dir():
        return []
    return sorted(f.name for f in folder.iterdir() if f.name not in planned and (f / RESULT).is_file())


def run_cohort(root, out_dir, params: dict, clinical=None, workers: int = 2, scheduler: str | None = None,
               mapping=None, model_dir=None, max_gy: float | None = None, allow_gaps: bool = False) -> CohortSummary:
    """Plan, process every patient not done yet (Dask, or a loop with ``workers=0``), write the table.
    ``allow_gaps``: read RTSTRUCT structures with slices left out between their first and last (``--allow-gaps``:
    separate parts); it changes no result of a structure without gaps, so it is not part of the settings key."""
    from lungai.radiomics.cluster import check_main_guard

    start = time.perf_counter()
    check_main_guard(workers, scheduler)     # a script without its __main__ guard: before any work, no folder made
    out = Path(out_dir)
    check_outside_export(out, root)         # the export must keep only its DICOM files (one rule for every command)
    clin = read_clinical(clinical) if clinical is not None else None     # a bad clinical CSV fails before any work
    if model_dir:      # a --model given that cannot run: before any work, not each automatic tumour's patient failing
        from lungai.seg.model_meta import check_model_folder     # with it after the others' work (QA cohortfollow65)
        from lungai.seg.resources import resolve_model_dir

        check_model_folder(resolve_model_dir(model_dir))
    # before any work: a folder with the stamp is a cohort's (a re-run resumes in it); any other folder holding files
    # of cohort's output names is the user's and refused (other files are left alone)
    if max_gy is not None:
        from lungai.dose.read import max_dose_limit

        max_dose_limit(max_gy)   # a bad --max-dose-gy before any work
    check_folder_path(out)
    # one run per folder for the whole run (the folder's lock .lungai.lock, as the commands that claim theirs): a
    # second cohort run into it meanwhile would mix patients and tables; a killed run's lock is taken over (resumed)
    with locked_output_folder(out, OWNER):
        return _run_cohort_locked(root, out, params, clinical, clin, workers, scheduler, mapping, model_dir, max_gy,
                                  start, allow_gaps)


def _run_cohort_locked(root, out: Path, params: dict, clinical, clin, workers: int, scheduler, mapping, model_dir,
                       max_gy, start: float, allow_gaps: bool = False) -> CohortSummary:
    """:func:`run_cohort` once this process holds the output folder's lock."""
    from lungai.dose.features import COLUMNS as DOSE_COLUMNS
    from lungai.radiomics.cluster import close_quietly, connect_scheduler_said, run_tasks
    from lungai.radiomics.csv_output import write_csv

    # no cohort run wrote into the folder before (a new -o folder, or the user's own): a run cancelled before any
    # patient finished then leaves nothing there (remove_fresh_run)
    fresh = not (out / STAMP).exists() and not (out / MARKER).exists()
    abandoned = False
    if (out / STAMP).is_file() and not (out / MARKER).is_file():
        # made by a cohort version before the marker: its files of cohort's output names are taken as cohort's
        record_outputs(out, OWNER, _written(out))
    # before any work: only the files of cohort's output names that the marker lists (a previous run wrote them)
    # may be replaced or removed; any other file of those names is the user's and refused; other files are left alone
    prepare_output_folder(out, owner=OWNER, owns=OUTPUTS, create=False)   # a new folder: removed again if refused
    stamp, key_of = out / STAMP, _settings_key_of(mapping, model_dir)
    key = key_of(params)
    recorded = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else key
    # made with a lung spacing beside resampledPixelSpacing (refused now, ignored then): the same values, resumed
    # keyed by an older lungai with the parameters as written (binWidth 25.0 for 25, either way): the same settings,
    # resumed
    written = recorded not in (key, _legacy_settings_key(params, mapping, model_dir)) and \
        any(recorded == key_of(p, canonical=False) for p in (params, *written_forms(params)))
    ignored_spacing = recorded not in (key, _legacy_settings_key(params, mapping, model_dir)) and not written and \
        ignored_lung_spacing_key(params, key_of, recorded)
    if recorded not in (key, _legacy_settings_key(params, mapping, model_dir)) and not ignored_spacing \
            and not written:
        changes = _settings_changes(out, key_of.record(params), params)
        raise InputError(f"{out} holds results made with other radiomics parameters, structure mapping or model"
                         + (f" ({changes})" if changes else ""),
                         "to resume them, run with the settings they were made with"
                         + (f" (the values 'then' above; {out / SETTINGS_RECORD} records them)"
                            if (out / SETTINGS_RECORD).is_file() else "")
                         + "; to compute these settings, write into another output folder (-o OTHER_FOLDER); or "
                         f"delete {out} to start over (its finished patients are lost)")
    from lungai.dicom.rtstruct import read_once

    # each patient's RTSTRUCT read and parsed once in planning (its roles, the series check, the names the inputs
    # record below), not 4 times (QA planonce64); one file's contours held at a time, the names of all
    with read_once(files=1):
        jobs, inventory = plan_cohort(root, mapping)   # refused (a PatientID clash ...): no folder, stamp or marker left
        derived = {id(job): _derived_structures(job, mapping) for job in jobs}
    # an external --scheduler is reached before anything is written: one that does not answer is refused leaving no
    # resume folder, stamp, inventory or marker the user did not have, and an earlier run's table in place (QA
    # cohort71: a new -o folder was left with settings.key, patients.csv and .lungai-cohort); the Client is used for
    # the patients (run_tasks), not connected again
    client = connect_scheduler_said("cohort: scheduler", scheduler) if scheduler else None
    import pandas as pd     # after planning: its bar (scanning DICOM) comes before pandas

    try:
        # the run rewrites its files in place from here: a killed run must still resume (a run refused before keeps
        # the marker's stamps)
        forget_stamps(out, OWNER)
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(key, encoding="utf-8")
        (out / SETTINGS_RECORD).write_text(json.dumps(key_of.record(params), indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
        write_csv(inventory, out / INVENTORY)
        for line in inventory_lines(inventory, jobs):
            print(line)
        # on stderr as InputNotes ("warning: ..."), each with its form naming no patient - as lungai dicom-scan says
        # the several-CT-series one (QA cohortwarn67: printed on stdout, among the inventory's lines)
        say_notes(inventory_warnings(jobs, inventory))
        if ignored_spacing:     # its patients kept, their ids the current one
            say_cohort_note(_resume_ignored_lung_spacing(out, params))     # names no patient
        revisions, dropped = value_revisions(params), dropped_revisions(params)
        relabel = written      # patients of the same values under an older id: their features get the current id
        removed: list[str] = []     # the patients whose earlier (half-written) result this run removed (to be redone)
        redo: list[str] = []        # inputs changed: redone, the earlier result kept until the new one succeeds
        # an earlier run's table (with its sidecar) is removed before the first result in it is: never a row without
        # its result, also when this run is cancelled (Ctrl-C, SIGTERM) or killed before it writes the table again
        old_table = [out / n for n in (TABLE, sidecar_path(TABLE).name) if (out / n).exists()]

        def _remove_result(case: str, folder: Path) -> None:
            for f in old_table:   # cohort's own (prepare_output_folder refused the run for a user's file of the name)
                f.unlink(missing_ok=True)
            remove_patient_files(folder)
            removed.append(case)

        def _listed_cases(cases: list, ids: bool = True) -> str:
            if not ids:     # the form naming no patient (PatientsText)
                return counted(len(cases), "patient")
            return ", ".join(cases[:5]) + (f" ... and {len(cases) - 5} more" if len(cases) > 5 else "")

        for job in jobs:     # a finished patient whose inputs changed since (an RTDOSE / RTSTRUCT added ...) is redone
            # the revisions of the radiomics values (pyradiomics' resampling; normalize, Square-type or Wavelet images
            # on the whole CT): a result an older lungai computed without one is redone
            job.inputs.update(revisions)
            orientation = ct_orientation(job)
            if orientation not in (None, "LPS"):    # features in LPS axial order since: an older result is redone
                job.inputs["ct_orientation"] = orientation
            envelope, lungs_minus_gtv, clinic = derived[id(job)]
            if envelope:     # no GTV but an iGTV: the dose of the lungs minus it (an older result is redone)
                job.inputs["dose_envelope"] = envelope
            if job.inputs.get("rtdose"):     # dose metrics checked for lungs cut by the scan (an older result redone)
                job.inputs["lungs_cut_rule"] = LUNGS_CUT_REVISION
                if _noted_dose(job):     # its notes recorded in the table's rtdose_notes (an older result redone)
                    job.inputs[NOTES_COLUMN] = DOSE_NOTES_REVISION
            if lungs_minus_gtv:     # a Lungs-GTV structure: its lungs_minus_tumour radiomics (an older result redone)
                job.inputs["lungs_minus_gtv"] = lungs_minus_gtv
            if clinic:     # no GTV: the dose on the clinic's Lungs-GTV (an older result is redone)
                job.inputs["dose_lungs_minus_gtv"] = clinic
            done = out / "patients" / safe_name(job.case) / RESULT
            missing = missing_patient_files(done.parent)
            if missing:     # a cancelled run's half-written patient: never counted nor read, redone
                _remove_result(job.case, done.parent)
                say_cohort_note(told_of_patient(f"{job.case}: {RESULT} without {', '.join(missing)} (a cancelled "
                                                "run left it half-written): redone", (job.case, job.patient_id)))
            if done.exists():
                try:
                    recorded = json.loads(done.read_text(encoding="utf-8")).get("inputs")
                except (OSError, ValueError):
                    recorded = None
                if isinstance(recorded, dict) and dropped and all(recorded.get(k) == v for k, v in dropped.items()):
                    # a revision an older lungai recorded that no longer applies (a Square / Wavelet image with
                    # pyradiomics' own crop: the same values): not a change
                    recorded = {k: v for k, v in recorded.items() if k not in dropped}
                    relabel = True
                change = inputs_change(recorded, job.inputs)
                if change:
                    # never a stale row in the table, even when the redo fails (a failed patient's kept result is
                    # not read into it); the earlier result is replaced only once the new one has succeeded
                    for f in old_table:
                        f.unlink(missing_ok=True)
                    redo.append(job.case)
                    job.notes.append(f"inputs changed since the last run ({change}): redone")
                    say_cohort_note(told_of_patient(f"{job.case}: inputs changed since the last run ({change}): "
                                                    "redone", (job.case, job.patient_id)))
        table_removed = bool((removed or redo) and old_table)     # removed above
        if relabel:
            _rewrite_patient_ids(out, settings_id(params))
            say_cohort_note(f"resumed a cohort run of the same radiomics settings keyed otherwise by an older lungai "
                            f"(whole numbers written as decimals, e.g. binWidth 25.0 for 25, or a Square / Wavelet "
                            f"image with preCrop or resampledPixelSpacing all 0); its settings id is now "
                            f"{settings_id(params)}")

        def _why_removed(ids: bool = True) -> str:
            return "; ".join(w for w in (
                f"the earlier result of {_listed_cases(removed, ids)} was removed to be redone" if removed else "",
                f"{_listed_cases(redo, ids)} {'is' if len(redo) == 1 else 'are'} redone (inputs changed; an earlier "
                "result is replaced only once its redo has succeeded)" if redo else "") if w)

        summary = CohortSummary(out)
        existed = {job.case for job in jobs if (out / "patients" / safe_name(job.case)).exists()}
        try:
            run_tasks("cohort", process_patient, jobs, [j.case for j in jobs],
                      (params, str(out), mapping, model_dir, max_gy, allow_gaps),
                      lambda job: job.case not in redo and patient_finished(out / "patients" / safe_name(job.case)),
                      summary, workers,
                      client if client is not None else scheduler)
        except BaseException:     # Ctrl-C / SIGTERM: no mask of an unfinished patient is left, also with Dask
            # workers; not with an external --scheduler: its workers' running tasks are not stopped and would
            # finish a patient whose masks were just removed (a half-written patient is redone on the next run)
            if not scheduler:
                remove_unfinished(out, jobs, existed)
                # nothing to resume (no patient finished) in a folder no cohort run had written into: none of this
                # run's files left there, nor the folder it made (QA cohortfollow71: a new -o folder kept settings.key,
                # settings.json, patients.csv, the marker and an empty patients/)
                abandoned = fresh and remove_fresh_run(out, jobs)
                if abandoned:
                    say_cohort_note(f"cancelled before any patient finished: nothing to resume, so the files this run "
                                    f"wrote into {out} were removed; run the same command again to start it")
            if table_removed:
                say_cohort_note(PatientsText(*(f"cancelled: {out / TABLE} of an earlier run was removed "
                                               f"({_why_removed(ids)}); run the same command again to write it"
                                               for ids in (True, False))))
            raise
        summary.seconds = time.perf_counter() - start
        failed = pd.DataFrame(summary.failed, columns=["case", "error"])
        if not failed.empty:
            write_csv(failed, out / ERRORS)
        elif (out / ERRORS).exists():
            (out / ERRORS).unlink()
        from lungai.seg.resources import result_confidence_caveat

        rows, grids, unread_rows, caveats, case_caveats = [], [], {}, {}, {}
        # the warnings on the results (an image edge, a confidence caveat, mixed spacings, a tumour to review, lungs
        # cut): InputNotes on stderr, each with its form naming no patient, as the inventory's (QA cohortstd67:
        # printed on stdout), each when it is found, as before

        def _say(text) -> None:
            say_notes([text])

        failed_now = {c for c, _ in summary.failed}
        for job in jobs:
            folder = out / "patients" / safe_name(job.case)
            missing = missing_patient_files(folder)
            if job.case in failed_now:     # an earlier result kept (its redo failed): of other inputs, not read
                continue
            if missing:     # half-written since the plan (an external worker of a cancelled run): not read
                _say(told_of_patient(f"{job.case}: {RESULT} without {', '.join(missing)}: not in the table; "
                                            "run the same command again to redo it", (job.case, job.patient_id)))
            elif (folder / RESULT).exists():
                doc = json.loads((folder / RESULT).read_text(encoding="utf-8"))
                if doc.get("dose_envelope_unread"):     # the plan said its envelope is subtracted: it was not
                    unread_rows[job.case] = (job, doc["dose_envelope_unread"])
                grids += [dict(g, case=job.case) for g in doc.get("radiomics_grid", [])]
                row = pd.read_csv(folder / FEATURES, dtype={"case": str, "patient_id": str}).iloc[0].to_dict()
                row["provenance"] = provenance_text(doc)
                rows.append(row)
                if doc.get("gtv_union_note"):    # the GTV dose of several GTVs: said, as dose-features says it
                    say_cohort_note(told_of_patient(f"{job.case}: {doc['gtv_union_note']}",
                                                    (job.case, job.patient_id)))
                # the lungs' notes (a 'Lungs' structure that is no lungs, one lung absent ...) and the tumour's (a
                # structure that may be tumour left out of it): in the table and said, a resumed patient's too
                for column, notes_of in RESULT_NOTES.items():
                    said = notes_of(doc)
                    row[column] = notes_text(said)
                    for n in said:
                        _say(told_of_patient(f"{job.case}: {n}", (job.case, job.patient_id)))
                if doc.get("edge_warnings"):     # as lungai radiomics warns; once per case
                    _say(told_of_patient(f"{job.case}: " + "; ".join(doc["edge_warnings"]),
                                                (job.case, job.patient_id)))
                # the automatic tumour's model's known confidence caveat (a resumed older record: its model's)
                caveat = result_confidence_caveat(doc)
                # ... and in the table beside tumour_confidence, so that rp train / validate / predict say it of the
                # rows it concerns (QA demorisk59: the rp_table kept no trace of it)
                row[CAVEAT_COLUMN] = caveat or ""
                if caveat:
                    caveats.setdefault(caveat, []).append(job.case)
                    case_caveats[job.case] = caveat
        for caveat, cases in caveats.items():       # said once, with the cases whose tumour_confidence it is of
            _say(PatientsText(
                f"{CAVEAT_NOTE} of the automatic tumours' tumour_confidence ({_listed_cases(cases)}): {caveat}",
                f"{CAVEAT_NOTE} of the automatic tumours' tumour_confidence ({counted(len(cases), 'patient')}): "
                f"{caveat}"))
        # a patient planned "dose_features: yes" that failed (a dose not covering the lungs ...): not left saying yes
        failed_yes = inventory["case"].isin([c for c, _ in summary.failed]) & (inventory["dose_features"] == "yes")
        if unread_rows or failed_yes.any() or case_caveats:
            if unread_rows:
                inventory = inventory_with_unread_envelopes(inventory, unread_rows, mapping)
            inventory.loc[failed_yes, "dose_features"] = FAILED_DOSE
            # beside tumour_from, as in rp_table.csv (QA conftable59: patients.csv kept no trace of it)
            inventory[CAVEAT_COLUMN] = inventory["case"].map(case_caveats).fillna("")
            write_csv(inventory, out / INVENTORY)
        spacing = mixed_spacing_note(grids, params)      # texture features of mixed voxel spacings
        if spacing:     # names no patient
            _say(spacing)
        if rows:
            table = pd.DataFrame(rows)
            first = list(TABLE_FIRST)
            dose_cols = [c for c in DOSE_COLUMNS if c != "case"]   # always there (NaN without an RTDOSE): one schema
            dose_cols += [c for c in table.columns if c.startswith("dose_") and c not in dose_cols]
            rad_cols = [c for c in table.columns if c.startswith("rad_")]
            # the radiomics settings id travels with the features (rp train records it, predict / validate check it)
            table = table.reindex(columns=first + dose_cols + rad_cols + [SETTINGS_COLUMN])
            rtstruct_of = {j.case: j.rtstruct for j in jobs}
            for r in table.itertuples(index=False):     # an automatic tumour flagged for review: said, not only listed
                if isinstance(r.tumour_review, str) and r.tumour_review:
                    _say(told_of_patient(
                        f"{r.case}: the automatic tumour needs review ({r.tumour_review}): check "
                        f"{out / 'patients' / safe_name(r.case) / TUMOUR} "
                        f"({review_fix(rtstruct_of.get(r.case), mapping)})",
                        (r.case, r.patient_id)))
                if isinstance(r.lungs_cut, str) and r.lungs_cut:    # dose metrics of a partial lung: said too
                    _say(told_of_patient(f"{r.case}: {r.lungs_cut}", (r.case, r.patient_id)))
            notes: list = []
            if clinical is not None:
                failed_ids = {j.patient_id for j in jobs if j.case in failed_now}
                from lungai.dicom.discover import check_root, files_under, unread_images

                top = check_root(root)
                table = _join_clinical(table, clin, notes, failed=failed_ids,
                                       unprocessed=set(inventory["patient_id"].astype(str)) - failed_ids,
                                       errors=str(out / ERRORS), inventory=str(out / INVENTORY),
                                       images=[shown_path(f, top) for f in unread_images(files_under(top), top)])
            # the clinical rows' notes name their PatientIDs: said without them as "<patient>"
            clinical_ids = set(inventory["patient_id"].astype(str)) | (
                set(clin["patient_id"].astype(str)) if clinical is not None else set())
            for n in notes:
                say_cohort_note(told_of_patient(n, clinical_ids))
            write_csv(table, out / TABLE, protect=[clinical] if clinical else ())
            write_sidecar(out / TABLE, params)   # rp_table.settings.json: the settings in full, as radiomics writes
            # an IBSI preset's ivh_auc: IBSI-1 gives it no reference value - said once, as radiomics / radiomics-batch
            # say it (QA radfollow72: only the sidecar's ibsi_reference recorded it)
            if (unverified := unverified_ibsi_note(params, out / TABLE)) is not None:
                say_cohort_note(unverified)
            summary.table = out / TABLE
            gone = results_not_in_export(out, jobs)
            if gone:     # the table is of the export's patients: one whose DICOM left it is out of it, said
                say_cohort_note(PatientsText(*(
                    f"{out / 'patients'} holds the finished results of {counted(len(gone), 'patient')} not in {root} "
                    f"now{f' ({_listed_cases(gone)})' if ids else ''}: not in {TABLE} - put "
                    f"{agree(len(gone), 'its', 'their')} DICOM back under {root} (the result is kept: not redone) to "
                    f"have {agree(len(gone), 'it', 'them')} in it, or move "
                    f"{agree(len(gone), 'its folder', 'their folders')} out of {out / 'patients'}"
                    for ids in (True, False))))
        else:     # no patient finished: an earlier run's table is removed when it may hold a patient whose result
            # this run removed (redone, failed now) - never a row without its result -, else kept
            old = [f for f in old_table if f.exists()]     # not those removed above
            failed_cases = [c for c, _ in summary.failed]
            if table_removed or (old and failed_cases):
                for f in old:   # cohort's own (prepare_output_folder refused the run for a user's file of the name)
                    f.unlink()
                def _why(ids: bool) -> str:
                    return "; ".join(w for w in (
                        _why_removed(ids) if removed or redo else "",
                        (f"{_listed_cases(failed_cases, ids)} failed (see {out / ERRORS})" if failed_cases else ""))
                        if w)
                say_cohort_note(PatientsText(*(f"no patient finished, so {out / TABLE} of an earlier run was removed "
                                               f"({_why(ids)})" for ids in (True, False))))
            elif old:
                say_cohort_note("no patient finished in this run ("     # names no patient
                                + ("no patient with a CT series in the export" if not jobs else "none was processed")
                                + f"), so {out / TABLE} of an earlier run was kept as it is: no result in "
                                f"{out / 'patients'} was removed or failed")
    finally:     # what this run (or an earlier one) wrote: a re-run may replace it, never anything else
        if not abandoned:
            record_outputs(out, OWNER, _written(out))
        if client is not None:     # closed by run_tasks once used; not when no patient was left to run
            close_quietly(client)
    return summary
