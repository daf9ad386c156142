"""Read a dose grid in Gy: DICOM RTDOSE (pixel values x DoseGridScaling) or NIfTI / NRRD / MHA."""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.dicom.discover import has_dicm_preamble as _is_dicom    # one DICM preamble check
from lungai.dicom.discover import shown_path
from lungai.dicom.discover import RT_DOSE_STORAGE as _RT_DOSE_STORAGE
from lungai.dicom.discover import rtdose_class   # one test of an RTDOSE by its SOP class
from lungai.dicom.pixeldata import check_pixel_data, decode_pixels, read_dicom
from lungai.dicom.reference import header_mismatch      # one wording of a PatientID / frame of reference mismatch
from lungai.dose.levels import MAX_PLAUSIBLE_GY, max_dose_limit  # noqa: F401 - their names here too
from lungai.errors import InputCheckNote, InputError
from lungai.io import read_image
from lungai.io.validate import check_slice_positions


# what a :func:`dose_read_once` block keeps: {"headers": (real path, mtime, size) -> header, "folders": (the
# folder's real path, mtime; the reference's PatientID, FrameOfReferenceUID, name, other) -> (files, note, checks), "chosen": the
# sets of files (their keys) that plan_dose_files chose - read_dose_sum does not choose among them again}
_DOSE_ONCE: contextvars.ContextVar = contextvars.ContextVar("lungai_dose_read_once", default=None)


@contextlib.contextmanager
def dose_read_once():
    """Within the block (in this thread) an RTDOSE's header is read once, a ``--dose`` folder's RTDOSEs are looked
    for, classified and their copies checked once (:func:`dose_folder_files`), and the files it chose are not chosen
    among again when they are read (:func:`read_dose_sum`): a file changed on disk (its modification time or size)
    is read again.  Opened by ``lungai dose-features`` and ``lungai demo`` around the check of the dose against the
    CT (:func:`check_dose_matches_ct`) and its reading (:func:`read_dose`).  QA dosefollow66: ``dose-features --dose
    FOLDER`` ran dose_folder_files twice - every RTDOSE's header read 4 or more times, a damaged copy's checked twice,
    beams without numbers decoded twice.  The pattern of :func:`lungai.dicom.once.read_once` (RTSTRUCTs); only
    headers and small results are kept (no dose grid), and a block inside another reads through the enclosing one."""
    if _DOSE_ONCE.get() is not None:
        yield
        return
    token = _DOSE_ONCE.set({"headers": {}, "folders": {}, "chosen": set(), "whole": set()})
    try:
        yield
    finally:
        _DOSE_ONCE.reset(token)


def _file_key(path) -> tuple | None:
    """(real path, modification time, size) of ``path``'s file, None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return os.path.realpath(path), st.st_mtime_ns, st.st_size


def _header(path):
    """The RTDOSE file's header (no pixels: :func:`read_dicom`), read once per file in a :func:`dose_read_once`
    block (the same dataset, not to be changed; an error is raised on each call, the file read again)."""
    cache = _DOSE_ONCE.get()
    key = _file_key(path) if cache is not None else None
    if key is None:
        return read_dicom(path, REEXPORT_FIX, stop_before_pixels=True)
    headers = cache["headers"]
    if key not in headers:
        headers[key] = read_dicom(path, REEXPORT_FIX, stop_before_pixels=True)
    return headers[key]


def _chosen_key(paths) -> frozenset | None:
    keys = [_file_key(p) for p in paths]
    return None if any(k is None for k in keys) else frozenset(keys)


def _remember_chosen(paths) -> None:
    """Note in a :func:`dose_read_once` block that :func:`plan_dose_files` chose ``paths`` (as they are now)."""
    cache = _DOSE_ONCE.get()
    key = _chosen_key(paths) if cache is not None else None
    if key is not None:
        cache["chosen"].add(key)


def _was_chosen(paths) -> bool:
    cache = _DOSE_ONCE.get()
    key = _chosen_key(paths) if cache is not None else None
    return key is not None and key in cache["chosen"]


def rtdose_files(folder: Path, rtplans: list | None = None) -> list[Path]:
    """Every DICOM RTDOSE file in ``folder`` or its subfolders (any export layout: ``P1/RTDOSE/RD.dcm`` for
    ``--dose P1``; :func:`lungai.dicom.discover.files_under`: hidden files left out, folder links followed), other
    DICOM files - CT slices, RTSTRUCT, RTPLAN - left out; none is refused.  ``rtplans``: a list that gets the RTPLAN
    files found on the way (the plan that says which beams a sum of BEAM doses needs, :func:`plan_dose_files`)."""
    from lungai.dicom.discover import files_under
    from lungai.progress import task

    found, files = [], files_under(folder)
    with task(f"dose: looking for RTDOSE files under {folder}", len(files),
              enabled=len(files) >= MANY_FILES) as bar:      # a whole export: said, not a silent wait
        for f in files:
            bar.update(1)
            modality = _modality(f) if _is_dicom(f) else ""
            if modality == "RTDOSE" or (not modality and _is_dicom(f) and _rtdose_cut_before_modality(f)):
                found.append(f)     # an RTDOSE cut short before its Modality too: refused or left out, named
            elif modality == "RTPLAN" and rtplans is not None:
                rtplans.append(f)
    if not found:
        raise InputError(f"{folder} holds no RTDOSE file (its subfolders searched too)",
                         "point --dose to the RTDOSE .dcm file of the plan, or to the folder of the export holding it")
    return found


# a --dose folder of this many files or more shows the progress of the search for its RTDOSEs
MANY_FILES = 1000


# the SOP Class UID of an RTDOSE (RT Dose Storage): one, the scan's
RT_DOSE_STORAGE = _RT_DOSE_STORAGE


def _rtdose_cut_before_modality(path: Path) -> bool:
    """Whether a DICOM file without a Modality is an RTDOSE cut short in its header before it (an interrupted copy):
    its SOPClassUID, or its file meta's MediaStorageSOPClassUID, is RT Dose Storage.  QA dose66: such a file (cut
    before its SOPInstanceUID) was no RTDOSE to ``--dose FOLDER`` - left out without a word beside the intact copy or
    another RTDOSE, or "FOLDER holds no RTDOSE file" alone."""
    from pydicom.filereader import read_partial

    try:
        with open(path, "rb") as fp:
            ds = read_partial(fp, stop_when=lambda tag, vr, length: tag > 0x00080060, force=True)
        return not str(getattr(ds, "Modality", "") or "").strip() and rtdose_class(ds)
    except Exception:  # noqa: BLE001 - not readable even so: of no known kind
        return False


def _modality(path: Path) -> str:
    """The Modality of a DICOM file, its header read up to that tag only (0008,0060: a CT slice's or an RTSTRUCT's
    other elements not parsed); a file that cannot be read so is read as before (:func:`read_dicom`: a corrupt one
    refused, naming it)."""
    from pydicom.filereader import read_partial

    try:
        with open(path, "rb") as fp:
            ds = read_partial(fp, stop_when=lambda tag, vr, length: tag > 0x00080060, force=True)
        return str(getattr(ds, "Modality", "") or "")
    except Exception:  # noqa: BLE001 - read in full below: refused with its reason
        return str(getattr(read_dicom(path, REEXPORT_FIX, stop_before_pixels=True), "Modality", "") or "")


def dose_folder_files(folder: Path, reference=None, checks: list | None = None) -> tuple[list[Path], str | None]:
    """The RTDOSE files under ``folder`` (subfolders too) that make the treatment dose and a note saying which, by
    the rule of ``lungai cohort``: the RTDOSEs of the CT's frame of reference (``reference``,
    :func:`dose_reference`: those of another FrameOfReferenceUID or PatientID - another patient's, a replan on
    another CT - are left out, the note names them; when none matches, the first is refused as another CT's,
    :func:`check_headers_match`), then :func:`plan_dose_files` (the plan dose when present, else the sum of the
    BEAM doses of one plan; anything else is refused).  Without a reference (a CT that is not DICOM, no RTSTRUCT),
    RTDOSEs of several patients or frames of reference are refused: which one is this CT's is unknown.  ``checks``:
    as :func:`plan_dose_files`'s (what was checked of a BEAM sum's beams, for :func:`dose_value_notes`).  In a
    :func:`dose_read_once` block the folder is searched and its RTDOSEs chosen once for a reference."""
    folder = Path(folder)
    cache = _DOSE_ONCE.get()
    try:
        st = os.stat(folder)
        key = (os.path.realpath(folder), st.st_mtime_ns,
               None if reference is None else tuple(str(getattr(reference, k, "") or "") for k in
                                                    ("PatientID", "FrameOfReferenceUID", "name", "other")))
    except (OSError, TypeError, ValueError):
        key = None
    if cache is None or key is None:
        return _dose_folder_files(folder, reference, checks)
    if key not in cache["folders"]:
        made: list = []
        files, note = _dose_folder_files(folder, reference, made)
        cache["folders"][key] = (files, note, made)
    files, note, made = cache["folders"][key]
    if checks is not None:
        checks.extend(made)
    return list(files), note


def _dose_folder_files(folder: Path, reference=None, checks: list | None = None) -> tuple[list[Path], str | None]:
    """:func:`dose_folder_files`, the folder read."""
    rtplans: list = []
    files, left_out = rtdose_files(folder, rtplans), []
    headers = [_header(f) for f in files]
    shown = lambda f: shown_path(f, folder)  # noqa: E731 - plan1/RD.dcm and plan2/RD.dcm told apart
    # copies out first: a damaged copy (cut before its FrameOfReferenceUID) is no RTDOSE of another frame
    files, headers, copies = _drop_copies(files, headers, shown)
    if reference is not None:
        matching = [f for f, h in zip(files, headers) if not _mismatch(h, reference)]
        if not matching:       # none of them is this CT's: refused as such (naming the first)
            check_headers_match(headers[0], reference, f"{Path(folder).name}/{shown(files[0])}", reference.name,
                                reference.other)
        left_out = [f"{shown(f)} left out: {'; '.join(_mismatch(h, reference))}"
                    for f, h in zip(files, headers) if f not in matching]
        files, headers = matching, [h for f, h in zip(files, headers) if f in matching]
    # an RTDOSE cut short that is no copy of another (its UIDs lost with its header, or another dose's) is refused as
    # such, naming it - before it could be taken for another patient's / frame's, or its lost tags named the fault
    for f, h in zip(files, headers):
        check_not_cut_short(f, h, shown(f))
    if reference is None:
        keys = {(str(getattr(h, "PatientID", "") or "").strip(), str(getattr(h, "FrameOfReferenceUID", "") or "")
                 .strip()) for h in headers}
        if len(keys) > 1:
            listed = ", ".join(f"{shown(f)} (PatientID {str(getattr(h, 'PatientID', '') or '-')}, "
                               f"FrameOfReferenceUID {str(getattr(h, 'FrameOfReferenceUID', '') or '-')})"
                               for f, h in zip(files, headers))
            raise InputError(f"the RTDOSEs under {folder} belong to {len(keys)} patients or frames of reference "
                             f"({listed}), and nothing tells which one is this CT's (the CT is not DICOM)",
                             "point --dose to the RTDOSE .dcm file of the plan or to its patient's folder, or give "
                             "the DICOM CT (or --rtstruct, the plan's RTSTRUCT) so that the matching RTDOSE is "
                             "chosen")
    files, note = plan_dose_files(files, root=folder, rtplans=rtplans, checks=checks,
                                  where=f"the --dose folder {folder}")
    note = "; ".join(n for n in (copies, *left_out, note) if n) or None
    if note:
        note = f"--dose {folder}: {note}"
    return files, note


def _mismatch(dose, reference) -> list[str]:
    """What of ``dose`` (an RTDOSE header) is not the ``reference``'s (:func:`dose_reference`)."""
    return header_mismatch(dose, reference, reference.other)


def dose_reference(ct_path=None, series_uid: str | None = None, rtstruct=None, name: str | None = None):
    """What the RTDOSEs of a ``--dose`` folder must match (PatientID, FrameOfReferenceUID; ``name`` / ``other``: the
    CT or RTSTRUCT as messages name it): the DICOM CT's header, else what an NRRD / MHA CT carries
    (:func:`image_header`, a CT read from DICOM: both UIDs), else the DICOM RTSTRUCT's, else the PatientID alone an
    NRRD / MHA CT carries; None when none of them is known (nothing to compare)."""
    from types import SimpleNamespace

    from lungai.dicom.reference import dicom_ct_header

    ct = dicom_ct_header(ct_path, series_uid) if ct_path is not None else None
    carried = image_header(ct_path) if ct is None and ct_path is not None else None
    if ct is None and carried is not None and carried.FrameOfReferenceUID:
        ct = carried                        # an NRRD / MHA CT read from DICOM: its PatientID and frame of reference
    if ct is not None:
        return SimpleNamespace(PatientID=getattr(ct, "PatientID", ""),
                               FrameOfReferenceUID=getattr(ct, "FrameOfReferenceUID", ""),
                               name=name or str(ct_path), other="CT")
    structures = _rtstruct_header(rtstruct) if rtstruct else None
    if structures is not None:
        return SimpleNamespace(PatientID=structures.PatientID, FrameOfReferenceUID=structures.FrameOfReferenceUID,
                               name=Path(rtstruct).name, other="RTSTRUCT")
    if carried is not None and carried.PatientID:       # the PatientID alone an NRRD / MHA CT carries
        return SimpleNamespace(PatientID=carried.PatientID, FrameOfReferenceUID="", name=name or str(ct_path),
                               other="CT")
    return None


def _find_rtdose(folder: Path) -> Path:
    """The one RTDOSE file of ``folder`` that :func:`dose_folder_files` chose (several: the first, for a header)."""
    return dose_folder_files(folder)[0][0]


AXIAL = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def _frame_offsets(ds, n_frames: int) -> np.ndarray:
    """Frame positions along the slice normal *relative to ImagePositionPatient* (first = 0).

    DICOM PS3.3 C.8.8.3.2 allows two forms of GridFrameOffsetVector: relative (first element 0,
    offsets from the first frame at ImagePositionPatient) and, only for the axial orientation
    [1,0,0,0,1,0], absolute (the frames' z coordinates, first element = ImagePositionPatient z).
    Both are returned relative; any other first element is refused rather than guessed.
    """
    offsets = getattr(ds, "GridFrameOffsetVector", None)
    if n_frames == 1:
        return np.zeros(1)
    if offsets is None or len(offsets) != n_frames:
        raise InputError("the RTDOSE has no usable GridFrameOffsetVector (needed for the slice positions)",
                         "re-export the dose from the planning system as a 3D dose grid")
    offsets = np.asarray([float(v) for v in offsets])
    if abs(offsets[0]) < 1e-3:
        return offsets
    z0 = float(ds.ImagePositionPatient[2])
    axial = np.allclose([float(v) for v in ds.ImageOrientationPatient], AXIAL, atol=1e-4)
    if axial and abs(offsets[0] - z0) < 1e-2:
        return offsets - offsets[0]
    orientation = "[" + ",".join(f"{float(v):g}" for v in ds.ImageOrientationPatient) + "]"
    if abs(offsets[0] - z0) < 1e-2:      # absolute offsets, but the grid is not axial
        raise InputError(f"the RTDOSE GridFrameOffsetVector starts at {offsets[0]:g} mm, the z of "
                         "ImagePositionPatient (absolute offsets), but absolute offsets are only defined for the "
                         f"orientation [1,0,0,0,1,0]; this grid's ImageOrientationPatient is {orientation}, so the "
                         "slice positions are ambiguous",
                         "re-export the dose from the planning system with relative offsets (first value 0; DICOM "
                         "PS3.3 C.8.8.3.2)")
    raise InputError(f"the RTDOSE GridFrameOffsetVector starts at {offsets[0]:g} mm, which is neither 0 (relative "
                     f"offsets) nor the z of ImagePositionPatient ({z0:g} mm, absolute offsets), so the slice "
                     "positions are ambiguous", "re-export the dose from the planning system (DICOM PS3.3 C.8.8.3.2)")


# DoseSummationType (DICOM PS3.3 C.8.8.3): the total dose of a plan (all fractions, all beams) or of several plans
# is what the features (MLD, V20 ...) are defined on.  FRACTION / BEAM / CONTROL_POINT / *_SESSION doses are parts
# of it; RECORD (a delivered-dose record) may be a part too; BRACHY is not an external-beam lung dose.
TOTAL_DOSE_TYPES = ("PLAN", "MULTI_PLAN")
BEAM = "BEAM"
FRACTION = "FRACTION"


REEXPORT_FIX = "re-export the RTDOSE from the planning system"


def summation_type(ds) -> str:
    """The RTDOSE header's DoseSummationType, upper case ('' when the tag is missing: not refused, not guessed)."""
    return str(getattr(ds, "DoseSummationType", "") or "").strip().upper()


def missing_summation_note(ds, name: str) -> str | None:
    """The note of an RTDOSE without DoseSummationType (a mandatory tag, removed by a converter; :func:`summation_type`
    ''), else None: read as the plan's dose, but that it is the total dose - not one fraction's or one beam's, whose
    MLD / V20 are a fraction of it - could not be checked.  QA (dose60): such an RTDOSE was used with no word, while
    one saying FRACTION / BEAM is refused (:func:`check_summation_type`)."""
    if summation_type(ds):
        return None
    return (f"{name} has no DoseSummationType (a mandatory tag), so that it is the plan's total dose - not the dose of "
            "one fraction or of some beams, whose MLD, V20 ... are a part of it - could not be checked; make sure it "
            "is the plan dose (export it with DoseSummationType PLAN from the planning system)")


def check_summation_type(ds, name: str, accept: tuple = TOTAL_DOSE_TYPES) -> None:
    """Refuse an RTDOSE whose DoseSummationType is not a total treatment dose (``accept``)."""
    kind = summation_type(ds)
    if kind and kind not in accept:
        raise InputError(
            f"{name} has DoseSummationType {kind}: it is not the total dose of the treatment ("
            + {"FRACTION": "one fraction", "BEAM": "the dose of some beams only",
               "CONTROL_POINT": "one control point"}.get(kind, "a partial or non-plan dose")
            + "), so MLD, V20 ... would be wrong",
            "export the plan dose (DoseSummationType PLAN, or MULTI_PLAN for a plan sum) from the planning system"
            + (BEAM_SUM_FIX if kind == BEAM else ""))


# how a BEAM dose is made the plan's: the folder of all its beams' RTDOSEs (dose_folder_files / plan_dose_files).  QA
# (dosim62): `dose-features --dose RD_beam1.dcm` was told only "lungai cohort sums the BEAM doses of one plan", a whole
# export's pipeline, not that --dose FOLDER sums them
BEAM_SUM_FIX = ("; or put the RTDOSE of every beam of the plan in one folder and give that folder: lungai "
                "dose-features --dose FOLDER (and lungai cohort) sum the BEAM doses of one plan")


# DoseType (DICOM PS3.3 C.8.8.3): PHYSICAL and EFFECTIVE (physical dose after a biological correction) are doses;
# ERROR is a dose difference, not a dose.  A missing tag is not refused (as a missing DoseSummationType).
DOSE_TYPES = ("PHYSICAL", "EFFECTIVE")
DOSE_UNITS = ("GY", "CGY")


def dose_units(ds, name: str) -> str:
    """The RTDOSE header's DoseUnits (GY or CGY); a missing tag (it is mandatory) or another unit is refused."""
    units = str(getattr(ds, "DoseUnits", "") or "").strip().upper()
    if not units:
        raise InputError(f"{name} has no DoseUnits, so Gy and cGy cannot be told apart",
                         "re-export the RTDOSE from the planning system (DoseUnits is a mandatory tag)")
    if units not in DOSE_UNITS:
        raise InputError(f"{name} has DoseUnits {units!r}", "export the physical dose in GY")
    return units


def check_dose_kind(ds, name: str) -> None:
    """Refuse an RTDOSE that is not a dose in Gy / cGy: DoseType other than PHYSICAL / EFFECTIVE (e.g. ERROR, a
    dose difference), DoseUnits missing or other than GY / CGY (:func:`dose_units`)."""
    kind = dose_type(ds)
    if kind and kind not in DOSE_TYPES:
        raise InputError(f"{name} has DoseType {kind}" + (" (a dose error / difference grid)" if kind == "ERROR" else "")
                         + ", not a dose, so MLD, V20 ... would be meaningless",
                         "give the plan's dose (DoseType PHYSICAL or EFFECTIVE) exported from the planning system")
    dose_units(ds, name)


# DoseType EFFECTIVE: the physical dose after a biological correction - an RBE-weighted ion (proton) dose in Gy(RBE), an
# EQD2 / BED map of a planning or registration system.  Read as a dose, but its MLD / Vx / Dx are not the physical
# dose's (QA: an RTDOSE of DoseType EFFECTIVE on LUNG1-003 gave MLD 5.95 Gy, V20 9.3 % with no word that they are
# not of physical dose); the note
# says so wherever the dose's origin is said (dose-features, demo, cohort's notes)
EFFECTIVE = "EFFECTIVE"


def dose_type(ds) -> str:
    """The RTDOSE header's DoseType, upper case ('' when the tag is missing)."""
    return str(getattr(ds, "DoseType", "") or "").strip().upper()


def effective_dose_note(ds, name: str, several: bool = False) -> str | None:
    """The note of an RTDOSE whose DoseType is EFFECTIVE (:data:`EFFECTIVE`), else None: its MLD, V5 ... are of a
    biologically weighted dose, not of the physical dose that lung-toxicity limits (V20, MLD) and RP models
    trained on physical dose are defined on.  ``several``: ``name`` names several files (the BEAM doses of a sum)."""
    if dose_type(ds) != EFFECTIVE:
        return None
    return (f"{name} {'have' if several else 'has'} DoseType EFFECTIVE: a biologically weighted dose (an "
            "RBE-weighted proton dose in Gy(RBE), or "
            "an EQD2 / BED map), not the physical dose; the MLD, V5 ... V30, Dx and GTV dose are of that dose - "
            "compare them only with values of the same kind (lung-toxicity limits such as V20 and MLD, and RP models, "
            "are defined on physical dose); for physical-dose metrics export the PHYSICAL dose from the planning "
            "system")


def has_dose_grid(ds) -> bool:
    """Whether an RTDOSE header describes a dose grid (Rows / Columns of the Image Pixel module).  An RTDOSE may hold
    DVHs only (DVHSequence; DICOM PS3.3 A.18.3: the Image Pixel and Multi-frame modules are required only for a
    grid-based dose) - a planning system's DVH export beside the dose grid."""
    return getattr(ds, "Rows", None) is not None or getattr(ds, "Columns", None) is not None


def _dvh_only_text(ds, name: str) -> str:
    dvhs = len(getattr(ds, "DVHSequence", None) or [])
    return (f"{name} holds no dose grid (no Rows / Columns / PixelData" + (f"; a DVH-only RTDOSE: {dvhs} DVH"
                                                                          f"{'s' if dvhs != 1 else ''} in its "
                                                                          "DVHSequence" if dvhs else "") + ")")


def check_not_cut_short(path, ds, name: str) -> None:
    """Refuse an RTDOSE file (header ``ds``) that ends before its pixel data - no PixelData while its header describes
    a dose grid or holds no DVHs either (:func:`lungai.dicom.discover.rtdose_cut_short`, the scan's rule) - as
    truncated (:func:`check_pixel_data`), before the tags its header lacks for being cut short (DoseUnits, Rows,
    FrameOfReferenceUID ...) are named as the fault.  QA dose65: an RTDOSE cut 72 bytes after its SeriesInstanceUID
    was "has no DoseUnits ... (DoseUnits is a mandatory tag)" after a note that it "carries no FrameOfReferenceUID (a
    mandatory tag: removed by an anonymiser or a converter?)".  In a :func:`dose_read_once` block a file found whole
    is not checked again (its pixel data read once: QA cohortfollow66, a cohort patient's RTDOSE was read in full by
    its check against the CT and again by the choice among its RTDOSEs); a refusal is raised on each call."""
    if not (has_dose_grid(ds) or not getattr(ds, "DVHSequence", None)):
        return
    cache = _DOSE_ONCE.get()
    key = _file_key(path) if cache is not None else None
    if key is not None and key in cache["whole"]:
        return
    check_pixel_data(path, REEXPORT_FIX, name)
    if key is not None:
        cache["whole"].add(key)


def check_dose_grid(ds, name: str) -> None:
    """Refuse an RTDOSE without a dose grid (:func:`has_dose_grid`: a DVH-only RTDOSE), naming it - before its
    missing ImagePositionPatient could be called a broken file."""
    if not has_dose_grid(ds):
        raise InputError(_dvh_only_text(ds, name) + ", so MLD, V20 ... cannot be computed from it",
                         "export the plan's 3D dose grid (an RTDOSE with pixel data) from the planning system with "
                         "the CT")


# how far ImageOrientationPatient's two direction cosines may be from unit length and from orthogonal
IOP_TOLERANCE = 1e-3


def _numbers(ds, tag: str, count: int):
    """The ``count`` numbers of ``tag`` (all finite), else None (tag missing, empty, wrong count, not numbers)."""
    values = getattr(ds, tag, None)
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):     # one value (VM 1) or ''
        values = [values]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return np.asarray(values) if len(values) == count and np.isfinite(values).all() else None


def check_dose_geometry(ds, name: str) -> None:
    """Refuse an RTDOSE header whose grid cannot be placed: ImagePositionPatient (3 numbers), ImageOrientationPatient
    (6 numbers: two unit direction cosines, orthogonal within :data:`IOP_TOLERANCE`) and PixelSpacing (2 positive
    numbers) missing or broken - one header check, at a cohort's planning (:func:`plan_dose_files`) and when the
    dose is read (:func:`read_rtdose`), before a Python or SimpleITK error ("Bad direction") could."""
    fix = "re-export the RTDOSE from the planning system (the tag is mandatory)"
    for tag, code, count in (("ImagePositionPatient", "0020,0032", 3), ("ImageOrientationPatient", "0020,0037", 6),
                             ("PixelSpacing", "0028,0030", 2)):
        if _numbers(ds, tag, count) is None:
            given = getattr(ds, tag, None)
            raise InputError(f"{name} has " + (f"no {tag} ({code})" if given is None or given == "" else
                                               f"{tag} ({code}) {given!r}, not {count} numbers")
                             + ", so the dose grid cannot be placed on the CT", fix)
    row, col = _numbers(ds, "ImageOrientationPatient", 6).reshape(2, 3)
    if (abs(np.linalg.norm(row) - 1) > IOP_TOLERANCE or abs(np.linalg.norm(col) - 1) > IOP_TOLERANCE
            or abs(float(row @ col)) > IOP_TOLERANCE):
        raise InputError(f"{name} has ImageOrientationPatient (0020,0037) "
                         f"{'/'.join(f'{float(v):g}' for v in ds.ImageOrientationPatient)}: not two orthogonal unit "
                         "direction cosines, so the dose grid's orientation is unknown", fix)
    spacing = _numbers(ds, "PixelSpacing", 2)
    if (spacing <= 0).any():
        raise InputError(f"{name} has PixelSpacing (0028,0030) {'/'.join(f'{float(v):g}' for v in spacing)}: "
                         "a spacing that is not positive, so the dose grid cannot be placed on the CT", fix)


def read_rtdose(path: str | Path, accept: tuple = TOTAL_DOSE_TYPES, max_gy: float | None = None,
                check: bool = True, name: str | None = None) -> sitk.Image:
    """A DICOM RTDOSE file as a float32 image in Gy with its patient geometry (LPS).

    Only a total treatment dose is read: DoseSummationType in ``accept`` (PLAN / MULTI_PLAN; a missing tag is
    accepted); :func:`read_dose_sum` reads the BEAM doses of one plan.  The dose in Gy must be plausible for its
    DoseUnits (:func:`check_dose_plausible`, ``max_gy``: ``--max-dose-gy``); ``check=False``: not checked here
    (a BEAM dose, checked once summed); ``name``: how the messages name the file (its path under the export,
    :func:`_namer`; default its file name).
    """
    p = Path(path)
    label = name or p.name
    ds = read_dicom(p, REEXPORT_FIX)
    if getattr(ds, "Modality", "") != "RTDOSE":
        raise InputError(f"{label} is a DICOM {getattr(ds, 'Modality', '?')} file, not an RTDOSE",
                         "give the RTDOSE file exported with the treatment plan")
    if "PixelData" not in ds:                       # read in full: a file cut short before its pixel data
        check_not_cut_short(p, ds, label)
    check_summation_type(ds, label, accept)
    check_dose_kind(ds, label)
    check_dose_grid(ds, label)
    check_dose_geometry(ds, label)
    if "DoseGridScaling" not in ds:
        raise InputError(f"{label} has no DoseGridScaling", "re-export the RTDOSE (the tag is mandatory)")
    scaling = float(ds.DoseGridScaling)
    if not (np.isfinite(scaling) and scaling > 0):
        raise InputError(f"{label} has DoseGridScaling {ds.DoseGridScaling}, so it holds no dose: the plan's dose "
                         "was not calculated or not exported", NO_DOSE_FIX if check else NO_BEAM_DOSE_FIX)
    arr = decode_pixels(ds, label, REEXPORT_FIX).astype(np.float64) * scaling   # a truncated file: named, fix
    if arr.ndim == 2:
        arr = arr[None]
    units = dose_units(ds, label)
    if units == "CGY":
        arr = arr / 100.0
    offsets = _frame_offsets(ds, arr.shape[0])
    steps = np.diff(offsets)
    if (steps > 0).any() and (steps < 0).any():
        raise InputError(f"{label}: the dose frames' GridFrameOffsetVector is not monotonic ({offsets[:4]}...)",
                         "re-export the dose from the planning system as a 3D dose grid")
    check_slice_positions(offsets, f"{label} (dose frames, GridFrameOffsetVector)", "offset",
                          "resample the dose onto a regular grid in the planning system before export",
                          "export the dose from the planning system on a regular grid (one frame spacing)",
                          may_miss=False)
    check_rtdose_not_negative(ds, arr, label)      # a BEAM dose too: its negative voxels would lower the sum
    top = float(arr.max()) if arr.size else 0.0
    if check:
        check_dose_plausible(label, top, units, max_gy, rtdose=True)
    else:                   # a BEAM dose: its size is checked once summed, but a beam without dose is refused
        check_dose_present(label, top, rtdose=True, fix=NO_BEAM_DOSE_FIX)
    dz = float(steps[0]) if steps.size else float(getattr(ds, "SliceThickness", 1.0) or 1.0)
    row_dir = np.asarray([float(v) for v in ds.ImageOrientationPatient[:3]])
    col_dir = np.asarray([float(v) for v in ds.ImageOrientationPatient[3:]])
    normal = np.cross(row_dir, col_dir)
    origin = np.asarray([float(v) for v in ds.ImagePositionPatient]) + offsets[0] * normal
    if dz < 0:  # frames run against the normal: flip them so the spacing is positive
        arr, dz = arr[::-1], -dz
        origin = origin + offsets[-1] * normal - offsets[0] * normal
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), dz))
    img.SetOrigin(tuple(origin))
    img.SetDirection(tuple(np.column_stack([row_dir, col_dir, normal]).ravel()))
    return img


# a dose is never negative: a value (Gy, or the image's unit) below this is refused, an image's and an RTDOSE's alike
NEGATIVE_DOSE = -1e-3


def check_rtdose_not_negative(ds, arr_gy: np.ndarray, name: str) -> None:
    """Refuse an RTDOSE (header ``ds``, dose ``arr_gy`` in Gy) holding negative doses (below :data:`NEGATIVE_DOSE`):
    a PHYSICAL / EFFECTIVE dose is stored as unsigned pixels (PixelRepresentation 0; DICOM PS3.3 C.8.8.3.4: two's
    complement only for DoseType ERROR, refused by :func:`check_dose_kind`), and signed pixel data of a dose is most
    often unsigned data mislabelled PixelRepresentation 1, its doses above 32767 x DoseGridScaling read as negative.
    QA (dose60): such an RTDOSE of LUNG1-003 (60 Gy max, 16-bit, DoseGridScaling 0.001) gave MLD 1.63 Gy, V20 3.8 %
    instead of 3.94 Gy, 7.6 % with no word (its maximum 32.8 Gy passed the plausibility check); a dose image with
    negative values was refused (:func:`check_image_dose_values`)."""
    low = float(arr_gy.min()) if arr_gy.size else 0.0
    if low >= NEGATIVE_DOSE:
        return
    count = int((arr_gy < NEGATIVE_DOSE).sum())
    signed = _int(getattr(ds, "PixelRepresentation", 0)) == 1
    bits = _int(getattr(ds, "BitsStored", None)) or _int(getattr(ds, "BitsAllocated", None)) or 16
    raise InputError(f"{name} holds negative doses ({count} of {arr_gy.size} voxels, min {low:.4g} Gy), so it is not "
                     "a usable dose: MLD, V20 ... would be wrong"
                     + (f"; its pixels are stored signed (PixelRepresentation 1), which a dose never is: unsigned "
                        f"pixel values above {2 ** (bits - 1) - 1} read as negative?" if signed else ""),
                     "re-export the RTDOSE from the planning system (a dose is stored as unsigned pixels, "
                     "PixelRepresentation 0)")


def _plan_uids(ds) -> set:
    refs = getattr(ds, "ReferencedRTPlanSequence", [])
    return {str(getattr(r, "ReferencedSOPInstanceUID", "") or "") for r in refs} - {""}


def _grid_key(ds) -> tuple:
    vals = lambda key: tuple(round(float(v), 3) for v in (getattr(ds, key, None) or []))  # noqa: E731
    return (int(getattr(ds, "Rows", 0)), int(getattr(ds, "Columns", 0)), int(getattr(ds, "NumberOfFrames", 1) or 1),
            vals("ImagePositionPatient"), vals("ImageOrientationPatient"), vals("PixelSpacing"),
            vals("GridFrameOffsetVector"))


def _grid_frames(ds) -> tuple | None:
    """An RTDOSE's dose grid in patient space: (rows, columns, orientation, pixel spacing, its frames' positions
    from the lowest along the slice normal) - GridFrameOffsetVector relative or absolute, frames listed in either
    order, alike (as :func:`read_rtdose` reads them); None when it cannot be worked out (then read_rtdose says
    why)."""
    try:
        n = int(getattr(ds, "NumberOfFrames", 1) or 1)
        offsets = _frame_offsets(ds, n)
        orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient], np.float64)
        origin = np.asarray([float(v) for v in ds.ImagePositionPatient], np.float64)
        spacing = np.asarray([float(v) for v in ds.PixelSpacing], np.float64)
        positions = origin + np.sort(offsets)[:, None] * np.cross(orientation[:3], orientation[3:])
        return int(ds.Rows), int(ds.Columns), orientation, spacing, positions
    except Exception:  # noqa: BLE001 - refused with its reason when read
        return None


def _same_grid(a, b) -> bool:
    """Whether the RTDOSE headers ``a`` and ``b`` have one dose grid in patient space (:func:`_grid_frames`, within
    0.01 mm); as written (:func:`_grid_key`) when either cannot be worked out.  QA doseunits66: two BEAM doses of one
    plan on one grid, one with absolute GridFrameOffsetVector or frames listed from the top, were refused as
    "different dose grids ... ambiguous"."""
    ga, gb = _grid_frames(a), _grid_frames(b)
    if ga is None or gb is None:
        return _grid_key(a) == _grid_key(b)
    return (ga[:2] == gb[:2] and ga[4].shape == gb[4].shape and np.allclose(ga[2], gb[2], atol=1e-4)
            and np.allclose(ga[3], gb[3], atol=1e-3) and np.allclose(ga[4], gb[4], atol=1e-2))


def _namer(root):
    """How the dose messages name a file: relative to ``root`` (the ``--dose`` folder, the cohort's export;
    :func:`lungai.dicom.discover.shown_path`), else by its name."""
    return (lambda p: shown_path(p, root)) if root is not None else (lambda p: Path(p).name)


def plan_dose_files(paths, root=None, rtplans=None, checks: list | None = None,
                    where: str | None = None) -> tuple[list[Path], str | None]:
    """Which of several RTDOSE files of one CT (frame of reference) make the treatment dose: (files to sum, note).
    Messages name the files relative to the folder ``root`` they were found under (default: by name).
    The one decision of ``lungai dose-features --dose FOLDER`` (:func:`dose_folder_files`) and ``lungai cohort``.

    - one file: itself, when its DoseSummationType is a total dose (:func:`check_summation_type`, checked here on
      the header so that a FRACTION / BEAM dose fails before any work, and again when it is read);
    - only BEAM doses, all of one plan (the same ReferencedRTPlanSequence, or none on every file) and on one dose
      grid: all of them, summed (:func:`read_dose_sum`) - when the RTPLAN they reference is among ``rtplans`` (the
      RTPLAN files of the export), only if every treatment beam of it has its dose file (:func:`_check_plan_beams`;
      a missing one is refused); else the note says that this could not be checked.  ``checks``: a list that gets
      what was checked of the beams (the provenance of the sum); ``where``: what was searched for ``rtplans``
      when it is not the whole export (the --dose folder), as the note says it;
    - one series split into single-frame RTDOSE files (one per slice): refused (export one multi-frame RTDOSE);
    - one PLAN / MULTI_PLAN dose and BEAM or FRACTION doses of that same plan (the same referenced RT plan):
      the plan dose;
    - one MULTI_PLAN dose (a plan sum) and PLAN / BEAM doses of plans it references: the plan sum
      (:func:`_plan_sum`);
    - anything else (several plans, fractions, beams of different plans or grids) is ambiguous: InputError.

    In a :func:`dose_read_once` block the files chosen are remembered: :func:`read_dose_sum` reads them without
    choosing among them again.
    """
    files, note = _plan_dose_files(paths, root, rtplans, checks, where)
    _remember_chosen(files)
    return files, note


def _plan_dose_files(paths, root, rtplans, checks, where) -> tuple[list[Path], str | None]:
    """:func:`plan_dose_files`."""
    paths, name = [Path(p) for p in paths], _namer(root)
    headers = [_header(p) for p in paths]
    paths, headers, dropped = _drop_copies(paths, headers, name)
    # a DVH-only RTDOSE (no grid, a DVHSequence) beside the dose grid(s): left out, said; alone it is refused
    # (check_dose_grid); a file without grid nor DVHs (a header cut short) is not left out: refused as it is
    grids = [has_dose_grid(h) or not getattr(h, "DVHSequence", None) for h in headers]
    if any(grids) and not all(grids):
        dvh_only = "; ".join(f"{_dvh_only_text(h, name(p))} left out" for p, h, g in zip(paths, headers, grids)
                             if not g)
        dropped = "; ".join(n for n in (dropped, dvh_only) if n)
        paths, headers = [p for p, g in zip(paths, grids) if g], [h for h, g in zip(headers, grids) if g]
    one_beam = _one_beam_plan_dose(paths, headers, name, rtplans, checks, where)
    if one_beam:           # the BEAM dose of a one-beam plan (a single arc), its RTPLAN in the export: its dose
        return paths, "; ".join(n for n in (dropped, one_beam, files_effective_note(paths, headers, name)) if n)
    if len(paths) <= 1:
        for p, header in zip(paths, headers):
            check_not_cut_short(p, header, name(p))   # a file cut short: refused now, not after the patient's work
            check_summation_type(header, name(p))
            check_dose_kind(header, name(p))
            check_dose_grid(header, name(p))
            check_dose_geometry(header, name(p))    # a grid that cannot be placed: refused now too
        missing = [missing_summation_note(h, name(p)) for p, h in zip(paths, headers)]
        return paths, "; ".join(n for n in (dropped, files_effective_note(paths, headers, name), *missing) if n) or None
    for p, header in zip(paths, headers):   # a file cut short: said so, not its lost tags (DoseUnits ...) named
        check_not_cut_short(p, header, name(p))
    files, note = _choose_plan_dose(paths, headers, name, rtplans, checks, where)
    for p in files:
        check_pixel_data(p, REEXPORT_FIX)
    header = dict(zip(paths, headers))
    effective = files_effective_note(files, [header[p] for p in files], name)
    return files, "; ".join(n for n in (dropped, note, effective) if n) or None


def _one_beam_plan_dose(paths: list[Path], headers: list, name, rtplans, checks: list | None,
                        where: str | None) -> str | None:
    """The note of one BEAM dose (``paths``: one file) that is its plan's dose, else None: the RTPLAN it references
    is among ``rtplans`` and every treatment beam of it has its dose - the plan's one treatment beam, e.g. a
    single-arc VMAT plan - by the check of a sum of BEAM doses (:func:`_check_plan_beams`: a plan of more treatment
    beams is refused naming those without a dose).  Without that RTPLAN one BEAM dose stays refused
    (:func:`check_summation_type`: most likely some beams only).  QA dose66: a single-arc plan's BEAM dose beside its
    RTPLAN was refused with the fix "put the RTDOSE of every beam of the plan in one folder" - what had been done -,
    while the BEAM doses of a plan of two or three beams were summed."""
    if len(paths) != 1 or summation_type(headers[0]) != BEAM or not rtplans or not _plan_uids(headers[0]):
        return None
    p, header = paths[0], headers[0]
    check_not_cut_short(p, header, name(p))
    check_dose_kind(header, name(p))
    check_dose_grid(header, name(p))
    check_dose_geometry(header, name(p))
    checked = _check_plan_beams(paths, headers, _plan_uids(header), rtplans, name, where)
    if checked.startswith(UNCHECKED_BEAMS):
        return None
    if checks is not None:
        checks.append(checked)
    return f"BEAM dose {name(p)} used, the plan's only treatment beam: {checked}"


def dose_value_notes(files, root=None, checked: str | None = None) -> list[str]:
    """:func:`value_notes` of the RTDOSE ``files`` that make one dose, their headers read, named relative to ``root``
    (the ``--dose`` folder, a cohort's export: :func:`_namer`); ``checked``: as :func:`value_notes`."""
    files = [Path(f) for f in files]
    return value_notes(files, [_header(f) for f in files], _namer(root),
                       checked)


def value_notes(files, headers, name, checked: str | None = None) -> list[str]:
    """The notes that qualify the values of the dose the RTDOSE ``files`` make (``headers``: theirs; ``name``: how a
    file is named, :func:`_namer`) and must stay with its MLD, V20 ...: the one rule of what a dose table records of
    the RTDOSE itself in its ``rtdose_notes`` (:data:`lungai.dose.features.NOTES_COLUMN`: ``lungai dose-features``'
    and the demo's dose.csv - :func:`read_dose` -, ``lungai cohort``'s table, the Lung Radiomics panel's dose
    table), which ``lungai rp`` repeats.  What is only said of the files (which one was used, copies or another
    frame's doses left out) is not among them.

    - DoseType EFFECTIVE (:func:`files_effective_note`): a biologically weighted dose;
    - one file without DoseSummationType (:func:`missing_summation_note`): it may be one fraction's or some beams'
      dose;
    - a sum of BEAM doses (several files) whose completeness could not be checked against the plan's RTPLAN:
      ``checked``, what :func:`plan_dose_files` put in its ``checks`` (:data:`UNCHECKED_BEAMS` ...): a beam whose
      dose is not in the export would make the MLD, V20 ... too low.  QA (dosenotes60): 2 of 3 BEAM doses on
      LUNG1-003 with no RTPLAN gave MLD 3.15 Gy (the plan's 3.94) and dose.csv / the cohort table had no trace of
      it - the note was printed only."""
    files = [Path(f) for f in files]
    notes = [files_effective_note(files, headers, name)]
    if len(files) == 1:
        notes.append(missing_summation_note(headers[0], name(files[0])))
    elif checked and checked.startswith(UNCHECKED_BEAMS):
        notes.append(f"the dose is the sum of the {len(files)} BEAM RTDOSEs {_listed([name(p) for p in files])}; "
                     f"{checked}: if a beam's dose is not among them, the MLD, V20 ... are too low")
    return [n for n in notes if n]


def files_effective_note(files, headers, name) -> str | None:
    """The DoseType EFFECTIVE note (:func:`effective_dose_note`) of the RTDOSE ``files`` (``headers``: theirs) that
    make one dose - one file, or the BEAM doses of a sum, which are of one DoseType (:func:`_choose_plan_dose`): said
    once, naming them; ``name``: how a file is named (:func:`_namer`).  None for none or a PHYSICAL dose.  The note of
    :func:`plan_dose_files` and the one :func:`read_dose` records."""
    if not files:
        return None
    return effective_dose_note(headers[0], name(files[0]) if len(files) == 1 else
                               "the BEAM RTDOSEs " + _listed([name(p) for p in files]), several=len(files) > 1)


def _sop_uid(ds) -> str:
    return str(getattr(ds, "SOPInstanceUID", "") or "").strip()


def _copy_uid(ds) -> str:
    """The SOPInstanceUID that tells an RTDOSE's copies: its own, else its file meta's MediaStorageSOPInstanceUID
    (a file cut short before its SOPInstanceUID still has it: :func:`_rtdose_cut_before_modality`)."""
    return _sop_uid(ds) or str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPInstanceUID", "") or "").strip()


def _dose_content(path: Path) -> tuple:
    """What makes an RTDOSE's dose: its decoded pixel values (a hash; not the encoded bytes - a copy in another
    transfer syntax holds the same dose), scaling (as a number: "5.9e-05" and "0.000059" are one), units,
    summation type and grid (compared for two files of one SOPInstanceUID)."""
    import hashlib

    import pydicom

    ds = pydicom.dcmread(path)
    try:
        pixels = np.ascontiguousarray(ds.pixel_array, dtype=np.float64)
        values = (pixels.shape, hashlib.sha256(pixels.tobytes()).hexdigest())
    except Exception:         # not decodable here: its bytes (then read_rtdose says why)
        values = hashlib.sha256(bytes(getattr(ds, "PixelData", b"") or b"")).hexdigest()
    try:
        scaling = float(ds.DoseGridScaling)
    except (AttributeError, TypeError, ValueError):
        scaling = str(getattr(ds, "DoseGridScaling", "")).strip()
    return (values, scaling, str(getattr(ds, "DoseUnits", "")).strip().upper(), summation_type(ds), _grid_key(ds))


def _damaged(path: Path, name: str) -> str | None:
    """Why an RTDOSE file is cut short - its pixel data missing or short of its header's need
    (:func:`check_pixel_data`) - or None when it is whole."""
    try:
        check_pixel_data(path, REEXPORT_FIX, name)
    except InputError as exc:
        return exc.problem
    return None


def _drop_copies(paths: list[Path], headers: list, name=lambda p: p.name) -> tuple[list[Path], list, str | None]:
    """``paths`` without the copies of an RTDOSE exported twice (the same SOPInstanceUID and the same dose: the
    first file is kept, a note names the others); of two copies one of which is cut short (:func:`_damaged`: an
    interrupted copy) the intact one is kept, the note naming the damaged one left out (as a CT slice's damaged copy,
    :func:`lungai.dicom.pixeldata.drop_slice_copies`; ``lungai cohort``'s scan never lists it); one SOPInstanceUID
    on two files holding different doses is refused, naming both.  QA dose65: an RTDOSE beside its copy cut short
    was "the RTDOSEs a.dcm and b.dcm have the same SOPInstanceUID ... but hold different doses", fix "keep the
    RTDOSE of the current plan only" - while ``lungai cohort`` used the intact one."""
    kept, kept_headers, first, notes = [], [], {}, []
    for p, h in zip(paths, headers):
        uid = _copy_uid(h)      # a copy cut before its SOPInstanceUID: its file meta's
        if uid and uid in first:
            original = first[uid]
            broken = {f: _damaged(f, name(f)) for f in (original, p)}
            if bool(broken[original]) != bool(broken[p]):       # one copy cut short: the intact one used
                bad, good = (p, original) if broken[p] else (original, p)
                if bad == original:
                    at = kept.index(original)
                    kept[at], kept_headers[at], first[uid] = p, h, p
                notes.append(f"{name(bad)} left out: a damaged copy of {name(good)} (same SOPInstanceUID {uid}; "
                             f"{broken[bad]}); the intact copy is used - delete the damaged one from the export")
                continue
            if _dose_content(p) != _dose_content(original):
                raise InputError(f"the RTDOSEs {name(original)} and {name(p)} have the same SOPInstanceUID {uid} but "
                                 "hold different doses, so which one is the plan's is unknown",
                                 "keep the RTDOSE of the current plan only (re-export it from the planning system)")
            notes.append(f"{name(p)} left out: a copy of {name(original)} (same SOPInstanceUID, same dose; the "
                         "RTDOSE was exported twice)")
            continue
        if uid:
            first[uid] = p
        kept.append(p)
        kept_headers.append(h)
    return kept, kept_headers, "; ".join(notes) or None


def _beam_numbers(ds) -> set:
    """The beams an RTDOSE is the dose of: ReferencedRTPlanSequence > ReferencedFractionGroupSequence >
    ReferencedBeamSequence > ReferencedBeamNumber (empty when not said)."""
    numbers = set()
    for plan in getattr(ds, "ReferencedRTPlanSequence", None) or []:
        for group in getattr(plan, "ReferencedFractionGroupSequence", None) or []:
            for beam in getattr(group, "ReferencedBeamSequence", None) or []:
                value = getattr(beam, "ReferencedBeamNumber", None)
                if value is not None and str(value).strip() != "":
                    numbers.add(int(value))
    return numbers


def _check_distinct_beams(paths: list[Path], headers: list, name=lambda p: p.name) -> None:
    """Refuse two BEAM doses of the same beam (a beam summed twice: a re-calculated beam exported beside the old
    one), naming both files; without beam numbers, two BEAM doses holding the same dose
    (:func:`_check_unnumbered_copies`)."""
    seen: dict[int, Path] = {}
    for p, h in zip(paths, headers):
        for number in sorted(_beam_numbers(h)):
            if number in seen:
                raise InputError(f"the BEAM RTDOSEs {name(seen[number])} and {name(p)} are both the dose of beam "
                                 f"{number} (ReferencedBeamNumber) but are different files, so summing them would "
                                 "count that beam twice",
                                 "keep one RTDOSE per beam (the current calculation) in the export, or export the "
                                 "plan dose (DoseSummationType PLAN)")
            seen[number] = p
    _check_unnumbered_copies(paths, headers, name)


def _scaled_dose(path: Path) -> np.ndarray | None:
    """The RTDOSE's dose in Gy (pixels x DoseGridScaling, / 100 for DoseUnits CGY), None when it cannot be decoded
    here or its DoseUnits is neither GY nor CGY (read_rtdose then says why); its frames from the lowest along the
    slice normal (a copy may list them from the top).  QA doseunits66: compared without
    DoseUnits, a GY beam and a CGY beam of the same numbers (30 Gy and 0.3 Gy) were refused as one beam exported
    twice, and one beam exported in GY and again in CGY was summed twice."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        dose = np.asarray(ds.pixel_array, dtype=np.float64) * float(ds.DoseGridScaling)
    except Exception:  # noqa: BLE001 - refused with its reason when read
        return None
    units = str(getattr(ds, "DoseUnits", "") or "").strip().upper()
    if units not in DOSE_UNITS:
        return None
    if dose.ndim == 3 and dose.shape[0] > 1:    # frames from the lowest (as _same_grid compares grids)
        try:
            offsets = _frame_offsets(ds, dose.shape[0])
        except InputError:
            return None
        if offsets[-1] < offsets[0]:
            dose = dose[::-1]
    return dose / 100.0 if units == "CGY" else dose


def _check_unnumbered_copies(paths: list[Path], headers: list, name=lambda p: p.name) -> None:
    """Refuse two BEAM doses holding the same dose when either does not say its beam (no ReferencedBeamNumber, not
    DICOM-conformant but seen): a beam re-exported with a new SOPInstanceUID beside the first export would be summed
    twice, and two different beams never give the same dose grid.  "The same": every voxel (in Gy, each file by its
    own DoseUnits: :func:`_scaled_dose`) within 0.01 % of the largest dose (a re-export may store the values with
    another DoseGridScaling or DoseUnits); empty doses are left to :func:`check_dose_present`."""
    numbered = [bool(_beam_numbers(h)) for h in headers]
    if all(numbered):
        return
    doses = {}
    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            if numbered[i] and numbered[j]:
                continue
            a = doses[i] if i in doses else doses.setdefault(i, _scaled_dose(paths[i]))
            b = doses[j] if j in doses else doses.setdefault(j, _scaled_dose(paths[j]))
            if a is None or b is None or a.shape != b.shape:
                continue
            top = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
            if top > 0 and float(np.abs(a - b).max()) <= 1e-4 * top:
                raise InputError(f"the BEAM RTDOSEs {name(paths[i])} and {name(paths[j])} hold the same dose and do "
                                 "not say which beam each is (no ReferencedBeamNumber), so they are most likely one beam "
                                 "exported twice (with a new SOPInstanceUID): summing them would count it twice",
                                 "keep one RTDOSE per beam (the current calculation) in the export, or export the "
                                 "plan dose (DoseSummationType PLAN)")


# a message lists this many file names at most, then "... and N more"
LISTED_FILES = 5


def _listed(names: list[str]) -> str:
    """``names`` joined by ", ", at most :data:`LISTED_FILES` of them, then "... and N more"."""
    names = list(names)
    shown = ", ".join(names[:LISTED_FILES])
    return shown + (f" ... and {len(names) - LISTED_FILES} more" if len(names) > LISTED_FILES else "")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _plan_beam_items(plan) -> list:
    """The beams of an RTPLAN: its BeamSequence (photons, electrons) and IonBeamSequence (an RT Ion plan: protons,
    carbon ions) items."""
    return [*(getattr(plan, "BeamSequence", None) or []), *(getattr(plan, "IonBeamSequence", None) or [])]


def _group_beams(group, setup: set) -> tuple[set[int], set[int]]:
    """(the treatment beams, every beam) of one fraction group: its ReferencedBeamNumbers, the treatment beams less
    those with a BeamMeterset of 0 and the setup beams ``setup``."""
    treatment, every = set(), set()
    for beam in getattr(group, "ReferencedBeamSequence", None) or []:
        number, meterset = _int(getattr(beam, "ReferencedBeamNumber", None)), getattr(beam, "BeamMeterset", None)
        if number is None:
            continue
        every.add(number)
        try:
            delivers = meterset is None or str(meterset).strip() == "" or float(meterset) > 0
        except (TypeError, ValueError):
            delivers = True
        if number not in setup and delivers:
            treatment.add(number)
    return treatment, every


def _joined(values) -> str:
    return ", ".join(map(str, sorted(values)))


def _treatment_beams(plan, groups: set,
                     dosed: set | None = None) -> tuple[list[int], set[int], set[int], str, str]:
    """(the treatment beams of an RTPLAN, the beams whose dose is no treatment beam's but of this plan, every beam
    number it lists, a note, the fraction groups taken when not all of the plan's: "fraction group 2 of 2 (the plan
    has 5 treatment beams)", else ""). The treatment beams are the ReferencedBeamNumbers of its
    FractionGroupSequence (the fraction groups ``groups`` when the doses say theirs, else all; when none of
    ``groups`` is in the plan, all its fraction groups, the note saying so), less those with a BeamMeterset of 0 and
    setup beams (TreatmentDeliveryType SETUP in BeamSequence or IonBeamSequence): those two are the beams whose dose
    is the plan's without being needed. A dosed beam (``dosed``) that only another fraction group lists takes that
    group's beams in too (the note saying so): the doses are then of both groups, and its other beams must have
    their dose as well (a boost group's beam beside the first group's doses is not half a boost); a dose of a beam
    that delivers nothing there (BeamMeterset 0) does not, it is the plan's without being needed. Every beam it
    lists: of any fraction group, BeamSequence or IonBeamSequence (a dose of a beam outside them is no beam of this
    plan)."""
    items = _plan_beam_items(plan)
    setup = {_int(getattr(b, "BeamNumber", None)) for b in items
             if str(getattr(b, "TreatmentDeliveryType", "") or "").strip().upper() == "SETUP"} - {None}
    listed = {_int(getattr(b, "BeamNumber", None)) for b in items} - {None}
    all_groups = list(getattr(plan, "FractionGroupSequence", None) or [])
    beams_of = [_group_beams(g, setup) for g in all_groups]
    for _, every in beams_of:
        listed |= every
    chosen = [i for i, g in enumerate(all_groups)
              if not groups or _int(getattr(g, "FractionGroupNumber", None)) in groups]
    notes = []
    if groups and all_groups and not chosen:
        notes.append(f"the fraction group{'s' if len(groups) > 1 else ''} {_joined(groups)} that the doses "
                     f"reference {'are' if len(groups) > 1 else 'is'} not in the RTPLAN: the beams of all its "
                     "fraction groups taken")
        chosen = list(range(len(all_groups)))
    in_chosen = set().union(*(beams_of[i][1] for i in chosen)) if chosen else set()
    elsewhere = sorted((dosed or set()) - in_chosen - setup)
    added = [i for i in range(len(all_groups)) if i not in chosen and any(n in beams_of[i][0] for n in elsewhere)]

    def _label(i: int) -> str:
        return str(_int(getattr(all_groups[i], "FractionGroupNumber", None)) or f"#{i + 1}")

    if added:
        label = [_label(i) for i in added]
        said = [n for n in elsewhere if any(n in beams_of[i][0] for i in added)]
        known = sorted({_label(i) for i in chosen})
        notes.append(f"beam{'s' if len(said) > 1 else ''} {_joined(said)} with a dose "
                     f"{'are' if len(said) > 1 else 'is'} of fraction group{'s' if len(added) > 1 else ''} {', '.join(label)}, not of the doses' "
                     f"fraction group{'s' if len(known) > 1 else ''} {', '.join(known)}: the beams of "
                     f"{'both' if len(added) + len(known) == 2 else 'all these'} groups taken")
        chosen = sorted(chosen + added)
    treatment = set().union(*(beams_of[i][0] for i in chosen)) if chosen else set()
    # every beam of the groups taken, setup beams and the beams delivering nothing in the other groups
    excused = ((set().union(*(beams_of[i][1] for i in chosen)) if chosen else set()) | setup
               | set().union(*(every - treats for treats, every in beams_of))) - treatment
    scope = ""
    if chosen and len(chosen) < len(all_groups):     # a plan and its boost, the doses of one of them
        whole = set().union(*(treats for treats, _ in beams_of))
        scope = (f"fraction group{'s' if len(chosen) > 1 else ''} {', '.join(_label(i) for i in chosen)} of "
                 f"{len(all_groups)}" + (f" (the plan has {len(whole)} treatment beams)" if whole != treatment else ""))
    return sorted(treatment), excused, listed, "; ".join(notes), scope


NO_RTPLAN = "no RTPLAN in the export"
# how _check_plan_beams begins when the BEAM doses could not be checked against the plan (value_notes records it)
UNCHECKED_BEAMS = "that every beam of the plan has its dose could not be checked"


def _check_plan_beams(paths: list[Path], headers: list, plan_uids, rtplans, name, where: str | None = None) -> str:
    """The BEAM doses ``paths`` of one plan (``plan_uids``: the SOPInstanceUIDs they reference) against that RTPLAN
    when it is among ``rtplans`` (its header read, no pixels): a treatment beam (:func:`_treatment_beams`) without
    its dose file, or a dose of a beam the plan does not list, is refused, naming the beam numbers (the sum would
    not be the plan's dose: MLD, V20 ... too low).  Returns what was checked, or why it could not be (no RTPLAN
    in the export - ``where``: the folder searched when it is not the export, said with how to point at it -, not
    the one referenced, one that cannot be read, no beams listed), for the note and the provenance.  Every RTPLAN
    file of that SOPInstanceUID is read: two listing different beams are refused, naming both (which one the doses
    were calculated with is unknown)."""
    import pydicom

    unchecked = UNCHECKED_BEAMS
    wanted, found, unreadable = set(plan_uids), [], []
    for f in rtplans or []:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
            uid = _sop_uid(ds)
        except Exception as exc:  # noqa: BLE001 - an unreadable RTPLAN: named in the note when none is found
            unreadable.append(f"{name(Path(f))} ({type(exc).__name__}: {exc})")
            continue
        if not uid:     # dcmread(force=True) gives an empty data set for a file that is no DICOM at all
            unreadable.append(f"{name(Path(f))} (no SOPInstanceUID: not a DICOM file, or cut short)")
        elif uid in wanted:
            found.append((uid, ds, Path(f)))
    if not found:
        searched = where or "the export"
        why = ("they reference no RT plan" if not wanted else
               (NO_RTPLAN if where is None else
                f"no RTPLAN in {where}; if the export has an RTPLAN, point --dose at the folder holding it so every "
                "beam is checked") if not rtplans else
               f"the RTPLAN they reference, {', '.join(sorted(wanted))}, is not in {searched}")
        if unreadable and len(unreadable) == len(rtplans):
            why = (f"RTPLAN {_listed(unreadable)} could not be read, the only RTPLAN{'s' if len(rtplans) > 1 else ''}"
                   f" of {searched}: re-export {'them' if len(rtplans) > 1 else 'it'} to have the beams checked")
        elif unreadable:
            why += f"; RTPLAN {_listed(unreadable)} could not be read"
        return f"{unchecked} ({why})"
    groups = {_int(getattr(g, "ReferencedFractionGroupNumber", None)) for h in headers
              for r in getattr(h, "ReferencedRTPlanSequence", None) or []
              for g in getattr(r, "ReferencedFractionGroupSequence", None) or []} - {None}
    numbers = [_beam_numbers(h) for h in headers]
    dosed = set().union(*numbers)
    read, failed = [], []
    for uid, ds, path in [x for x in found if x[0] == found[0][0]]:   # every file of that SOPInstanceUID
        try:    # pydicom reads sequences when first used: a plan cut short fails here, not at dcmread
            read.append((path, ds, _treatment_beams(ds, groups, dosed),
                         bool(getattr(ds, "FractionGroupSequence", None)), str(getattr(ds, "PatientID", "") or "").strip()))
        except Exception as exc:  # noqa: BLE001 - the sum is not refused for an unreadable plan: said unchecked
            failed.append((path, exc))
    if not read:
        plan_path, exc = failed[0]
        return (f"{unchecked} (RTPLAN {name(plan_path)} could not be read ({type(exc).__name__}: {exc}); "
                "re-export it to have the beams checked)")
    first_path, first = read[0][0], read[0][2]
    for other_path, _, other_beams, _, _ in read[1:]:
        # refused only when the outcome differs: other treatment beams, or a dose the plan's under one copy only
        # (a setup beam without a dose listed by one copy alone changes nothing)
        def _only(a: set, b: set, what: str) -> list[str]:
            return [f"beam{'s' if len(only) > 1 else ''} {_joined(only)} "
                    f"{what.format('are' if len(only) > 1 else 'is')} of {name(p1)}, not of {name(p2)}"
                    for p1, only, p2 in ((first_path, a - b, other_path), (other_path, b - a, first_path)) if only]

        differ = (_only(set(first[0]), set(other_beams[0]), "{} a treatment beam")
                  or _only(dosed & (set(first[0]) | first[1]), dosed & (set(other_beams[0]) | other_beams[1]),
                           "(with a dose) {} a beam"))
        if differ:
            raise InputError(f"the RTPLANs {name(first_path)} and {name(other_path)} are both the plan "
                             f"{found[0][0]} (SOPInstanceUID) that the BEAM doses reference but list different "
                             f"beams (treatment beams {_joined(first[0]) or 'none'} and "
                             f"{_joined(other_beams[0]) or 'none'}: {'; '.join(differ)}), so which beams the sum "
                             "must hold is unknown",
                             "keep one RTPLAN per plan (the one the doses were calculated with) in the export")
    plan_path, plan, (treatment, excused, listed, group_note, scope), has_groups, plan_patient = read[0]
    dose_patients = {str(getattr(h, "PatientID", "") or "").strip() for h in headers} - {""}
    other = (f" (its PatientID {plan_patient!r} is not the doses' {', '.join(sorted(dose_patients))}: "
             "anonymised separately? it was found by its SOPInstanceUID)"
             if plan_patient and dose_patients and plan_patient not in dose_patients else "")
    if not has_groups:
        return (f"{unchecked} (RTPLAN {name(plan_path)}{other} lists no fraction group (FractionGroupSequence): "
                "cut short? re-export it to have the beams checked)")
    if not treatment:
        return f"{unchecked} (RTPLAN {name(plan_path)}{other} lists no treatment beam)"
    fix = ("export the RTDOSE of every treatment beam of the plan from the planning system, or the plan dose "
           "(DoseSummationType PLAN)")
    scope = f" in {scope}" if scope else ""     # the doses of one fraction group (of a plan and its boost)
    beams = (f"RTPLAN {name(plan_path)}{other} lists {len(treatment)} treatment beams "
             f"({', '.join(map(str, treatment))}){scope}" + (f" ({group_note})" if group_note else ""))
    said = "".join(f"; {n}" for n in (other.strip()[1:-1], group_note) if n)
    if all(numbers):
        missing = [n for n in treatment if n not in dosed]
        if missing:
            raise InputError(f"{beams} but there is no BEAM RTDOSE for beam{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(map(str, missing))} (the BEAM doses: "
                             f"{_listed([name(p) for p in paths])}), so their sum is not the plan's dose: MLD, "
                             "V20 ... would be too low", fix)
        extra = sorted(dosed - set(treatment) - excused)
        if extra:
            unlisted, ungrouped = [n for n in extra if n not in listed], [n for n in extra if n in listed]
            plural = len(extra) > 1
            which = ("which the plan does not list" if not ungrouped else
                     "which no fraction group of the plan delivers" if not unlisted else
                     f"{_joined(unlisted)} not listed by the plan, {_joined(ungrouped)} delivered by no fraction "
                     "group of it")
            raise InputError(f"{beams}, but BEAM RTDOSEs are the dose of beam{'s' if plural else ''} "
                             f"{_joined(extra)} too, {which}, so what their sum is is unknown", fix)
        if len(treatment) == 1:
            return f"the one treatment beam of RTPLAN {name(plan_path)}{scope} has its dose{said}"
        return f"all {len(treatment)} treatment beams of RTPLAN {name(plan_path)}{scope} have their dose{said}"
    if len(paths) < len(treatment):
        raise InputError(f"{beams} but there are only {len(paths)} BEAM RTDOSEs ({_listed([name(p) for p in paths])}"
                         "), so their sum is not the plan's dose: MLD, V20 ... would be too low", fix)
    return (f"as many BEAM doses as treatment beams of RTPLAN {name(plan_path)}{scope} ({len(treatment)}; not all say "
            f"their beam number){said}")


def _single_frame_series(headers: list) -> str | None:
    """The SeriesInstanceUID when ``headers`` are one RTDOSE series split into single-frame files (one slice per
    file, at different positions), else None."""
    series = {str(getattr(h, "SeriesInstanceUID", "") or "").strip() for h in headers}
    if len(series) != 1 or "" in series:
        return None
    if any((_int(getattr(h, "NumberOfFrames", 1) or 1) or 1) != 1 for h in headers):
        return None
    positions = {tuple(round(float(v), 2) for v in (getattr(h, "ImagePositionPatient", None) or []))
                 for h in headers}
    return next(iter(series)) if len(positions) == len(headers) else None


def _plan_sum(kinds: list, plans: list) -> int | None:
    """The index of the one MULTI_PLAN dose (a plan sum: initial plan + boost, a sequential course) when every other
    RTDOSE is a PLAN or BEAM dose of a plan the sum references (its ReferencedRTPlanSequence): the sum is the
    treatment dose, the others its parts. None otherwise - also when the sum references no plan (its parts cannot be
    told from another course's doses)."""
    multi = [i for i, k in enumerate(kinds) if k == "MULTI_PLAN"]
    if len(multi) != 1 or not plans[multi[0]]:
        return None
    summed = plans[multi[0]]
    parts = [i for i in range(len(kinds)) if i != multi[0]]
    if all(kinds[i] in ("PLAN", BEAM) and plans[i] and plans[i] <= summed for i in parts):
        return multi[0]
    return None


def _choose_plan_dose(paths: list[Path], headers: list, name=lambda p: p.name, rtplans=None,
                      checks: list | None = None, where: str | None = None) -> tuple[list[Path], str | None]:
    """:func:`plan_dose_files` for two or more distinct RTDOSE files (``name``: how messages name a file)."""
    series = _single_frame_series(headers)
    if series:
        raise InputError(f"the {len(paths)} RTDOSEs {_listed([name(p) for p in paths])} are one dose series "
                         f"({series}) split into single-frame files, one slice each; lungai reads a dose grid "
                         "from one RTDOSE file",
                         "export the dose from the planning system as one multi-frame RTDOSE (a 3D dose grid in one "
                         "file)")
    for p, h in zip(paths, headers):
        check_dose_kind(h, name(p))
        check_dose_grid(h, name(p))
        check_dose_geometry(h, name(p))
    kinds = [summation_type(h) or "unknown" for h in headers]
    plans = [frozenset(_plan_uids(h)) for h in headers]
    listed = _listed([f"{name(p)} ({k})" for p, k in zip(paths, kinds)])
    if all(k == BEAM for k in kinds):
        types = [dose_type(h) or "no DoseType" for h in headers]
        if len(set(types) - {"no DoseType"}) > 1:   # a physical beam dose + an RBE-weighted / EQD2 one: neither dose
            raise InputError(f"the BEAM RTDOSEs of this CT's frame of reference are of different DoseTypes ("
                             f"{_listed([f'{name(p)} ({t})' for p, t in zip(paths, types)])}): a physical dose "
                             "and a biologically weighted (EFFECTIVE) one cannot be summed",
                             "export the BEAM doses of one DoseType (PHYSICAL for physical-dose metrics), or the plan "
                             "dose (DoseSummationType PLAN)")
        if len(set(plans)) == 1 and all(_same_grid(headers[0], h) for h in headers[1:]):
            _check_distinct_beams(paths, headers, name)
            checked = _check_plan_beams(paths, headers, plans[0], rtplans, name, where)
            if checks is not None:
                checks.append(checked)
            return paths, (f"{len(paths)} BEAM doses of one plan summed: {_listed([name(p) for p in paths])}"
                           + ("" if plans[0] else " (they reference no RT plan; taken as one plan's beams, "
                                                  "being on one dose grid)") + f"; {checked}")
        why = "different plans" if len(set(plans)) > 1 else "different dose grids"
    else:
        totals = [i for i, k in enumerate(kinds) if k in TOTAL_DOSE_TYPES]
        # the plan's parts: its beams' doses, or the dose of one of its fractions (a planning system's export of
        # the plan dose and the fraction dose; QA: refused as ambiguous, the patient failed)
        parts = [i for i, k in enumerate(kinds) if k in (BEAM, FRACTION)]
        if (len(totals) == 1 and len(totals) + len(parts) == len(paths) and plans[totals[0]]
                and all(plans[i] == plans[totals[0]] for i in parts)):
            return [paths[totals[0]]], (f"plan dose {name(paths[totals[0]])} used; the "
                                        f"{'/'.join(sorted({kinds[i] for i in parts}))} doses of the same plan "
                                        f"({_listed([name(paths[i]) for i in parts])}) left out")
        plan_sum = _plan_sum(kinds, plans)
        if plan_sum is not None:
            parts = [i for i in range(len(paths)) if i != plan_sum]
            return [paths[plan_sum]], (f"plan sum {name(paths[plan_sum])} (MULTI_PLAN) used; the doses of the plans "
                                       f"it sums ({_listed([f'{name(paths[i])} ({kinds[i]})' for i in parts])}) "
                                       "left out")
        why = "several plans or dose types"
    raise InputError(f"{len(paths)} RTDOSEs share this CT's frame of reference ({why}): {listed}; which one is the "
                     "treatment dose is ambiguous",
                     "keep only the plan dose (DoseSummationType PLAN, or a MULTI_PLAN plan sum) in the export, or the "
                     "BEAM doses of one plan only (they are summed), or compute the features of one RTDOSE with "
                     "lungai dose-features --dose FILE")


def read_dose_sum(paths, max_gy: float | None = None, root=None) -> sitk.Image:
    """The treatment dose of RTDOSE files in Gy, as :func:`plan_dose_files` chooses them (a copy of a file left
    out): one file read by :func:`read_rtdose` (one BEAM dose: a one-beam plan's, :func:`_one_beam_plan_dose`), or the
    sum of the BEAM doses of one plan on one dose grid, checked once summed (:func:`check_dose_plausible`,
    ``max_gy``; BEAM doses of different DoseUnits: each read in Gy by its own tag, the sum checked naming each
    file's unit, :func:`check_mixed_units_sum`); ``root``: the folder the messages name files relative to."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and summation_type(_header(paths[0])) == BEAM:
        # a one-beam plan's BEAM dose, chosen against its RTPLAN by plan_dose_files (_one_beam_plan_dose)
        return read_rtdose(paths[0], accept=(BEAM,), max_gy=max_gy, name=_namer(root)(paths[0]))
    if not _was_chosen(paths):          # chosen already (dose_read_once: --dose FOLDER's choice) are not re-checked
        paths, _ = plan_dose_files(paths, root)      # a copy of a file is read once, a beam twice is refused
    if len(paths) == 1:
        return read_rtdose(paths[0], max_gy=max_gy, name=_namer(root)(paths[0]))
    images = [read_rtdose(p, accept=(BEAM,), check=False, name=_namer(root)(p)) for p in paths]
    total = images[0]
    for p, img in zip(paths[1:], images[1:]):
        same = (img.GetSize() == total.GetSize() and np.allclose(img.GetOrigin(), total.GetOrigin(), atol=1e-3)
                and np.allclose(img.GetSpacing(), total.GetSpacing(), atol=1e-4)
                and np.allclose(img.GetDirection(), total.GetDirection(), atol=1e-5))
        if not same:
            raise InputError(f"the BEAM dose {_namer(root)(p)} is not on the dose grid of {_namer(root)(paths[0])}, "
                             "so they cannot be summed",
                             "export the plan dose (DoseSummationType PLAN) instead")
        total = total + img
    units = [dose_units(_header(p), _namer(root)(p)) for p in paths]
    name = f"the sum of the BEAM RTDOSEs {'+'.join(_namer(root)(p) for p in paths)}"
    top = float(sitk.GetArrayFromImage(total).max())
    if len(set(units)) == 1:
        check_dose_plausible(name, top, units[0], max_gy, rtdose=True)
    else:       # each beam was read in Gy from its own DoseUnits: the sum is checked naming each file's
        check_mixed_units_sum(name, top, [(_namer(root)(p), u, float(sitk.GetArrayFromImage(img).max()))
                                          for p, u, img in zip(paths, units, images)], max_gy)
    return total


def check_mixed_units_sum(name: str, top_gy: float, parts: list, max_gy: float | None = None) -> None:
    """:func:`check_dose_plausible` of a sum of BEAM RTDOSEs of different DoseUnits (``parts``: (file name, its
    DoseUnits GY / CGY, its maximum in Gy) each; every beam converted to Gy by its own tag before the sum, whose
    maximum is ``top_gy``).  An implausible sum names each file's DoseUnits and maximum - the beams of one plan are
    computed in one unit, so one tag is likely wrong: a GY beam holding cGy values when the sum is too high, a CGY
    beam holding Gy values when it is too low.  QA dosefollow66: a GY and a CGY beam dose summed to 2819 Gy were
    refused with "its DoseUnits tag says GY ... (the values look like cGy: 28.19 Gy)", the CGY beam divided by 100
    a second time, its unit unsaid."""
    limit = max_dose_limit(max_gy)
    check_dose_present(name, top_gy, rtdose=True)

    def said(part) -> str:
        file, unit, gy = part
        return (f"{file} DoseUnits GY, max {gy:.4g} Gy" if unit == "GY" else
                f"{file} DoseUnits CGY, max {gy * 100:.4g} cGy = {gy:.4g} Gy")

    each = "; ".join(said(p) for p in parts)
    override = f"--max-dose-gy {int(np.ceil(top_gy / 10.0) * 10)}"
    if top_gy > limit:
        suspects = [f for f, u, _ in parts if u == "GY"]
        raise InputError(f"{name}: the maximum {top_gy:.4g} Gy is above {limit:g} Gy, implausible for a lung "
                         f"treatment dose; the BEAM RTDOSEs are in different DoseUnits ({each}), each converted to "
                         f"Gy by its own tag before the sum: the DoseUnits GY of {_listed(suspects)} is likely wrong "
                         "(cGy values)",
                         f"re-export the BEAM RTDOSEs from the planning system with the right DoseUnits (CGY for "
                         f"the values of {_listed(suspects)}), or export the plan dose (DoseSummationType PLAN); if "
                         "it really holds that much (an EQD2 / BED map, summed courses) pass " + override)
    if 0 < top_gy < MIN_CGY_MAX_GY:
        suspects = [f for f, u, _ in parts if u == "CGY"]
        raise InputError(f"{name}: the maximum {top_gy:.4g} Gy is too low for a treatment dose; the BEAM RTDOSEs are "
                         f"in different DoseUnits ({each}), each converted to Gy by its own tag before the sum: the "
                         f"DoseUnits CGY of {_listed(suspects)} is likely wrong (Gy values)",
                         f"re-export the BEAM RTDOSEs from the planning system with the right DoseUnits (GY for the "
                         f"values of {_listed(suspects)}), or export the plan dose (DoseSummationType PLAN)")


def _rtdose_header(path: str | Path):
    """The RTDOSE's header (no pixels) when ``path`` is a DICOM RTDOSE file or a folder holding one, else None."""
    p = Path(path)
    if p.is_dir():
        p = _find_rtdose(p)
    elif not _is_dicom(p):
        return None
    return _header(p)


def check_dose_matches_ct(dose_path: str | Path, ct_path: str | Path, series_uid: str | None = None,
                          names: tuple[str, str] | None = None, rtstruct: str | Path | None = None) -> str | None:
    """A DICOM RTDOSE read with a DICOM CT must be this patient's (PatientID) in this CT's FrameOfReferenceUID;
    with ``rtstruct`` (a DICOM RTSTRUCT of the plan) the RTDOSE must also match the RTSTRUCT's PatientID and
    (referenced) FrameOfReferenceUID - the one check possible when the CT is NIfTI.  An NRRD / MHA CT or dose may
    carry a PatientID / FrameOfReferenceUID (:func:`image_header`: the keys SimpleITK writes of an image read from
    DICOM): compared too, with the CT or dose on the other side, DICOM or not (QA: an NRRD dose of LUNG1-002 beside
    LUNG1-003's NRRD CT, each carrying its PatientID, was used without a word; an RTDOSE of LUNG1-002 on that CT was
    noted only as "the CT ... carries no PatientID").

    The one check of an RTDOSE against its CT (``lungai dose-features``, ``lungai demo --dose``, ``lungai cohort``,
    the Lung Radiomics panel through :func:`lungai.scene.dicom.check_dose_node_matches_ct`).
    What neither side carries is not compared, no error.
    ``names``: (dose, CT) as the message names them (default: the RTDOSE file's name and ``ct_path``).
    Raises :class:`InputError` naming both values and the fix.  Returns a note when a DICOM RTDOSE could not be
    compared with a frame of reference (CT not DICOM and carrying none, no RTSTRUCT), or a dose image carrying none
    with a DICOM CT, else None.
    """
    from lungai.dicom.reference import dicom_ct_header

    if Path(dose_path).is_dir():           # the RTDOSE(s) of the folder that make the dose (dose_folder_files)
        reference = dose_reference(ct_path, series_uid, rtstruct, names[1] if names else None)
        notes = [check_dose_matches_ct(f, ct_path, series_uid,
                                       ((names[0] if names else Path(dose_path).name) + "/" + shown_path(f, dose_path),
                                        names[1] if names else str(ct_path)), rtstruct)
                 for f in dose_folder_files(Path(dose_path), reference)[0]]
        return notes[0]
    dose = _rtdose_header(dose_path)
    dose_name, ct_name = names or (Path(dose_path).name, str(ct_path))
    if dose is not None:    # cut short: said so, not "carries no FrameOfReferenceUID", its frame never compared
        check_not_cut_short(dose_path, dose, dose_name)
    ct = dicom_ct_header(ct_path, series_uid)
    # a NIfTI / NRRD / MHA CT: the PatientID / FrameOfReferenceUID it may carry (keys of a CT read from DICOM)
    ct_image = image_header(ct_path) if ct is None else None
    if dose is None:        # a NIfTI / NRRD / MHA dose: at most the PatientID / frame it carries (an NRRD's keys)
        carried = image_header(dose_path)
        structures = (_rtstruct_header(rtstruct) if rtstruct and (carried.PatientID or carried.FrameOfReferenceUID)
                      else None)
        for header, other, name in ((ct if ct is not None else ct_image, "CT", ct_name),
                                    (structures, "RTSTRUCT", Path(rtstruct or "").name)):
            if header is not None:
                check_headers_match(carried, header, dose_name, name, other=other, what="dose")
        if ct is None or (carried.FrameOfReferenceUID and str(getattr(ct, "FrameOfReferenceUID", "")).strip()):
            return None     # two images (nothing more to compare), or both UIDs compared
        return unchecked_dose_note(dose_name, ct_name, dose_dicom=False, patient=carried.PatientID)
    check_headers_match(dose, ct if ct is not None else ct_image, dose_name, ct_name)
    structures = _rtstruct_header(rtstruct) if rtstruct else None
    if structures is not None:
        check_headers_match(dose, structures, dose_name, Path(rtstruct).name, other="RTSTRUCT")
    if ct is not None or structures is not None or (ct_image.FrameOfReferenceUID
                                                    and str(getattr(dose, "FrameOfReferenceUID", "")).strip()):
        # compared with a DICOM CT, the RTSTRUCT, or both UIDs a CT image carries - unless a side lacks the frame
        return uncompared_frame_note(dose, dose_name, ct_name,
                                     [(ct if ct is not None else ct_image, "CT", ct_name),
                                      (structures, "RTSTRUCT", Path(rtstruct or "").name)])
    patient = ct_image.PatientID if str(getattr(dose, "PatientID", "")).strip() else ""
    return unchecked_dose_note(dose_name, ct_name, patient=patient)


def _value(header, keyword: str) -> str:
    return str(getattr(header, keyword, "") or "").strip()


def uncompared_frame_note(dose, dose_name: str, ct_name: str, references) -> str | None:
    """The note of a DICOM RTDOSE (header ``dose``) whose FrameOfReferenceUID could not be compared with the CT's or
    the RTSTRUCT's (``references``: (header or None, "CT" / "RTSTRUCT", name)): the RTDOSE carries none (a mandatory
    tag, removed by an anonymiser or a converter) or none of the references does; None when it was compared.
    :func:`check_headers_match` compares what both sides carry only, so the dose of a replan on another CT of the
    patient passed without a word (QA dose60: an RTDOSE without FrameOfReferenceUID - and without PatientID - on
    LUNG1-003's DICOM CT was used, exit 0, no note, while a NIfTI CT gets :func:`unchecked_dose_note`)."""
    references = [(h, other, name) for h, other, name in references if h is not None]
    if not references:
        return None
    frame = _value(dose, "FrameOfReferenceUID")
    if frame and any(_value(h, "FrameOfReferenceUID") for h, _, _ in references):
        return None
    patient = _value(dose, "PatientID")
    compared = [other for h, other, _ in references if patient and _value(h, "PatientID")]
    if frame:
        why = " and ".join(f"the {other} {name}" for _, other, name in references) + " carr" + (
            "y" if len(references) > 1 else "ies") + " no FrameOfReferenceUID"
    else:
        why = "the RTDOSE carries no FrameOfReferenceUID (a mandatory tag: removed by an anonymiser or a converter?)"
    said = (f"; only its PatientID {patient} was compared (the {' and '.join(compared)}'s)" if compared else
            "; nor could its PatientID be compared" + (" (it carries none)" if not patient else "") + ": nothing was "
            "compared")
    return (f"the RTDOSE {dose_name} could not be checked against the frame of reference of the CT {ct_name}: {why}"
            f"{said}; make sure the dose was planned on this CT (the RTDOSE as exported by the planning system, with "
            "its FrameOfReferenceUID, lets lungai check it)")


def unchecked_dose_note(dose_name: str, ct_name: str, dose_dicom: bool = True, patient: str = "") -> str:
    """The note of a dose and a CT of which one is not DICOM, so that the dose could not be checked against the CT
    (:func:`check_dose_matches_ct`; the Lung Radiomics panel through
    :func:`lungai.scene.dicom.check_dose_node_matches_ct`): a DICOM RTDOSE with a CT that is not DICOM and no
    RTSTRUCT, or (``dose_dicom=False``) a NIfTI / NRRD / MHA dose with a DICOM CT.  ``patient``: the PatientID that
    dose carries (an NRRD's ``0010|0020`` key, :func:`image_header`; a dose node under a subject hierarchy
    patient) - the CT's, compared: the note says its frame of reference went unchecked."""
    if dose_dicom:
        what, other, lets, whose = f"RTDOSE {dose_name}", "CT", "a DICOM CT or the plan's RTSTRUCT", "RTDOSE's"
    else:
        what, other, lets, whose = f"dose {dose_name}", "dose", "the plan's DICOM RTDOSE", "CT's"
    carries = (f"the {other} is not DICOM: its PatientID is {patient} (the {whose}) but it carries no "
               "FrameOfReferenceUID" if patient else
               f"the {other} is not DICOM, so it carries no PatientID / FrameOfReferenceUID")
    return (f"the {what} could not be checked against the CT {ct_name}: {carries}; make sure the dose was planned "
            f"on this CT ({lets} lets lungai check it)")


def image_header(path: str | Path):
    """The DICOM PatientID and FrameOfReferenceUID an image file (NRRD / MHA; SimpleITK writes a DICOM image's keys
    there - a CT read by :func:`lungai.io.read_ct` keeps them, :data:`lungai.io.read.KEPT_TAGS` -, NIfTI keeps none)
    carries as its ``0010|0020`` / ``0020|0052`` metadata keys, from its header only, as the attributes
    ``PatientID`` / ``FrameOfReferenceUID`` (:func:`check_headers_match` compares them); "" each when none or not
    readable as an image."""
    from types import SimpleNamespace

    from lungai.io.read import PATIENT_ID_TAG, UID_TAGS

    keys = {"PatientID": PATIENT_ID_TAG, "FrameOfReferenceUID": UID_TAGS[2]}
    found = dict.fromkeys(keys, "")
    p = Path(path)
    if p.is_file():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        try:
            reader.ReadImageInformation()
            found = {k: reader.GetMetaData(t).strip() if reader.HasMetaDataKey(t) else "" for k, t in keys.items()}
        except RuntimeError:
            pass
    return SimpleNamespace(**found)


def unread_rtdose_note(dose_name: str, ct_name: str, patient: str = "") -> str:
    """The note of an RTDOSE volume loaded from DICOM (its subject hierarchy item carries its DICOM series UID) whose
    file is not in Slicer's DICOM database (a scene opened from a file, the database moved or cleared:
    :func:`lungai.scene.dicom.check_dose_node_matches_ct`): its header could not be read, so neither its DoseType
    (EFFECTIVE), DoseSummationType nor FrameOfReferenceUID was checked.  ``patient``: the PatientID of the subject
    hierarchy patient both nodes sit under - compared, the note says so.  (QA slicerdose59: it was told "the dose is
    not DICOM ... the plan's DICOM RTDOSE lets lungai check it" - an RTDOSE told to be an RTDOSE.)"""
    compared = (f"only its patient, {patient}, was compared with the CT {ct_name}'s" if patient else
                f"nothing was compared with the CT {ct_name}")
    return (f"the RTDOSE {dose_name} was loaded from DICOM, but its file is not in Slicer's DICOM database (a scene "
            f"opened from a file, or the database moved or cleared), so its DoseType, DoseSummationType and "
            f"FrameOfReferenceUID could not be read: {compared}; make sure it is the plan's total physical dose, "
            "planned on this CT (import the DICOM folder of the CT and the RTDOSE into the DICOM database and load "
            "them from there to let lungai check it)")


def unchecked_frame_note(dose_name: str, ct_name: str, patient: str) -> str:
    """The note of a DICOM RTDOSE with a CT node known by its DICOM patient only (a subject hierarchy patient, no DICOM
    files in Slicer's database: :func:`lungai.scene.dicom.check_dose_node_matches_ct`): the PatientIDs were compared,
    the frame of reference could not be - the dose of a replan on another CT of this patient would pass.  It says the
    files are not in the database, not that the CT is not DICOM: a CT loaded from DICOM in a scene opened from a file
    is such a CT (QA slicerdose59)."""
    return (f"the RTDOSE {dose_name} could not be checked against the frame of reference of the CT {ct_name}: the CT's "
            f"DICOM files are not in Slicer's DICOM database (only its patient, {patient}, is known), so its "
            "FrameOfReferenceUID is not known; make sure the dose was planned on this CT (a CT loaded through the "
            "DICOM module lets lungai check it)")


def _rtstruct_header(path: str | Path):
    """PatientID and FrameOfReferenceUID (the referenced one) of a DICOM RTSTRUCT file; None when not DICOM."""
    from types import SimpleNamespace

    from lungai.dicom.rtstruct import referenced_frame_of_reference

    p = Path(path)
    if not (p.is_file() and _is_dicom(p)):
        return None
    ds = read_dicom(p, "re-export the structure set from the planning system", stop_before_pixels=True)
    return SimpleNamespace(PatientID=getattr(ds, "PatientID", ""),
                           FrameOfReferenceUID=getattr(ds, "FrameOfReferenceUID", "")
                           or referenced_frame_of_reference(ds) or "")


def check_headers_match(dose, ct, dose_name, ct_name, other: str = "CT", what: str = "RTDOSE") -> None:
    """The comparison of :func:`check_dose_matches_ct`: ``dose`` / ``ct`` are DICOM headers (or anything with the
    attributes PatientID / FrameOfReferenceUID); a value missing on either side is not compared.  ``other``: what
    ``ct`` is, as the message says it (CT, RTSTRUCT); ``what``: what the dose is ("dose": a NIfTI / NRRD image
    carrying a PatientID)."""
    wrong = header_mismatch(dose, ct, other, f" ({what})")
    if wrong:
        raise InputError(f"the {what} {dose_name} does not belong to the {other} {ct_name}: " + "; ".join(wrong),
                         f"give the {what} exported with this {other} for this patient (same PatientID and "
                         "FrameOfReferenceUID; `lungai dicom-scan FOLDER` pairs CT and RTDOSE by their UIDs)")


# a NIfTI / NRRD / MHA dose is in Gy unless told (--dose-unit cGy); no physical external-beam lung dose reaches
# MAX_PLAUSIBLE_GY (an EQD2 / BED map or a sum of courses may: --max-dose-gy raises it; lungai.dose.levels, with
# max_dose_limit), and a cGy dose whose maximum is below MIN_CGY_MAX_GY once converted was in Gy already (60 Gy read as
# cGy: 0.6 Gy)
MIN_CGY_MAX_GY = 1.0
IMAGE_DOSE_UNITS = {"Gy": 1.0, "cGy": 0.01}


# what to do with a dose image of raw RTDOSE pixel values (DoseGridScaling not applied): read the RTDOSE itself
# (RAW_PIXELS_CLI: the command line's part, which the Slicer panel leaves out)
RAW_PIXELS_CLI = "give the RTDOSE file itself as --dose (lungai applies its DoseGridScaling), or in Slicer "
RAW_PIXELS_FIX = (RAW_PIXELS_CLI + "load the RTDOSE through the DICOM module with SlicerRT installed (it applies DoseGridScaling), not as a "
                  "plain image; or multiply the image by the RTDOSE's DoseGridScaling")
NO_DOSE_FIX = ("calculate the plan's dose in the planning system and export it again (the RTDOSE of the "
               "calculated plan)")
# a BEAM dose of a folder sum without dose may be a setup field (0 MU), which has no dose to add
NO_BEAM_DOSE_FIX = (NO_DOSE_FIX + "; if this beam delivers no dose (a setup field, 0 MU), remove its RTDOSE from the "
                    "folder")


def check_dose_present(name: str, top_gy: float, rtdose: bool = False, fix: str = NO_DOSE_FIX) -> None:
    """Refuse a dose whose maximum is not above 0: every voxel 0 (an RTDOSE exported before the plan's dose was
    calculated, a DoseGridScaling of 0) gives MLD 0 Gy, V20 0 %, which would pass for a real dose.  ``fix``: what
    the refusal of an RTDOSE says to do (a BEAM dose of a sum: :data:`NO_BEAM_DOSE_FIX`)."""
    if not top_gy > 0:
        if rtdose:
            raise InputError(f"the RTDOSE {name} holds no dose (every voxel 0 Gy): the plan's dose was not "
                             "calculated or not exported", fix)
        raise InputError(f"the dose {name} holds no dose (every voxel 0)",
                         "give the calculated dose of the plan (export it again from the planning system)")


def check_dose_plausible(name: str, top_gy: float, unit: str, max_gy: float | None = None,
                         rtdose: bool = False) -> None:
    """The one Gy / cGy plausibility rule of every dose read (a NIfTI / NRRD / MHA image read in ``unit``, a DICOM
    RTDOSE read with its DoseUnits tag, ``rtdose=True``): ``top_gy`` (the maximum once converted to Gy) above
    ``max_gy`` (:func:`max_dose_limit`: cGy values taken for Gy) is refused, so is, read as cGy, a maximum below
    :data:`MIN_CGY_MAX_GY` (Gy values taken for cGy), and a maximum not above 0 (no dose, :func:`check_dose_present`).
    The messages name what set the unit: ``--dose-unit`` for
    an image, the RTDOSE's DoseUnits tag (the likely culprit) for an RTDOSE."""
    limit = max_dose_limit(max_gy)
    check_dose_present(name, top_gy, rtdose)
    unit = "cGy" if str(unit).upper() == "CGY" else "Gy"
    raw = top_gy / IMAGE_DOSE_UNITS[unit]
    override = f"--max-dose-gy {int(np.ceil(top_gy / 10.0) * 10)}"
    tag = f"its DoseUnits tag says {unit.upper()}"
    if not rtdose and raw / 100.0 > limit:
        # implausible in Gy and in cGy alike: raw RTDOSE pixel values, the DoseGridScaling (e.g. 1e-3) not applied
        raise InputError(f"{name}: the maximum {raw:.4g} is implausible for a lung treatment dose in Gy and in cGy "
                         f"alike ({raw / 100:.4g} Gy read as cGy): the values look like raw RTDOSE pixel values, "
                         "without the RTDOSE's DoseGridScaling",
                         RAW_PIXELS_FIX + "; if they really are the dose (an EQD2 / BED map, summed courses) pass "
                         + override)
    if top_gy > limit and unit == "Gy":
        if rtdose:
            raise InputError(f"{name}: the maximum {top_gy:.4g} Gy is above {limit:g} Gy, implausible for a lung "
                             f"treatment dose; {tag}, which is likely wrong (the values look like cGy: "
                             f"{raw / 100:.4g} Gy)",
                             "re-export the RTDOSE from the planning system with the right DoseUnits (CGY for "
                             "these values); if it really holds that much (an EQD2 / BED map, summed courses) pass "
                             + override)
        raise InputError(f"{name}: the maximum {top_gy:.4g} Gy is above {limit:g} Gy, implausible for a lung "
                         "treatment dose in Gy",
                         f"if the values are cGy (maximum {raw:.4g} cGy = {raw / 100:.4g} Gy) pass --dose-unit cGy; "
                         "if they really are Gy (an EQD2 / BED map, summed courses) pass " + override)
    if top_gy > limit:
        raise InputError(f"{name}: the maximum {raw:.4g} cGy = {top_gy:.4g} Gy is above {limit:g} Gy, implausible "
                         "for a lung treatment dose" + (f" ({tag})" if rtdose else ""),
                         f"check that the {'RTDOSE' if rtdose else 'file'} is the dose of the plan, in cGy; if it "
                         "really holds that much (an EQD2 / BED map, summed courses) pass " + override)
    if unit == "cGy" and 0 < top_gy < MIN_CGY_MAX_GY:
        if rtdose:
            raise InputError(f"{name}: {tag}, so the maximum {raw:.4g} cGy is {top_gy:.4g} Gy, too low for a "
                             "treatment dose: the values look like Gy already, the DoseUnits tag is likely wrong",
                             "re-export the RTDOSE from the planning system with the right DoseUnits (GY for these "
                             "values)")
        raise InputError(f"{name}: read as cGy, the maximum {raw:.4g} cGy is {top_gy:.4g} Gy, too low for a treatment "
                         f"dose: the values look like Gy already",
                         "leave --dose-unit out (Gy, the default) when the image is in Gy")


def read_dose(path: str | Path, unit: str = "Gy", max_gy: float | None = None, notes: list | None = None,
              reference=None, record: list | None = None) -> sitk.Image:
    """Dose in Gy from an RTDOSE file/folder (its DoseUnits) or a NIfTI/NRRD/MHA file in ``unit`` (Gy or cGy).

    A folder gives the RTDOSE(s) :func:`dose_folder_files` chooses (the plan dose, else the sum of the BEAM doses
    of one plan, as ``lungai cohort``) of the CT's frame of reference (``reference``, :func:`dose_reference`);
    ``notes``: a list that gets the note saying which (the file's path under the folder when it held one) - once the
    dose is read.  ``record``: a list that gets, besides, the notes that qualify the dose's values and must stay with
    them (:func:`value_notes`: dose.csv's ``rtdose_notes`` column, :data:`lungai.dose.features.NOTES_COLUMN`).

    An image dose is refused when it holds NaN / infinite values (a NIfTI's too, which SimpleITK reads as 0:
    :func:`lungai.io.read.read_image` puts them back), negative values, a maximum above ``max_gy`` (default
    :data:`MAX_PLAUSIBLE_GY`: a cGy dose read as Gy, unless it is an EQD2 / BED map or a sum of courses -
    ``--max-dose-gy``), or, read as
    cGy, a maximum below :data:`MIN_CGY_MAX_GY` (a Gy dose read as cGy), or no dose at all (every voxel 0)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist", "check the --dose path")
    if unit != "Gy" and (p.is_dir() or _is_dicom(p)):    # said, never silently ignored: an RTDOSE names its unit
        note = (f"--dose-unit {unit} is not used for an RTDOSE: its DoseUnits tag gives the unit (GY or CGY), "
                "and the dose is read in Gy from it")
        if notes is not None:
            notes.append(note)
        else:
            warnings.warn(note, InputCheckNote, stacklevel=2)
    if p.is_dir():        # the plan dose of the folder, else the sum of its BEAM doses of one plan (as cohort)
        checks: list = []           # what was checked of a BEAM sum's beams (its note recorded when unchecked)
        files, note = dose_folder_files(p, reference, checks)
        dose = read_dose_sum(files, max_gy=max_gy, root=p)       # (a refusal is not preceded by a note saying "summed")
        if note is None and len(files) == 1:     # the one RTDOSE of the folder: named, so the record says which file
            note = f"--dose {p}: RTDOSE {shown_path(files[0], p)} used"
        if note and notes is not None:
            notes.append(note)
        if record is not None:          # the notes on its values (the folder's note above says which files too)
            record.extend(dose_value_notes(files, root=p, checked=checks[0] if checks else None))
        return dose
    if _is_dicom(p):
        dose = read_rtdose(p, max_gy=max_gy)
        header = _header(p)
        for note in value_notes([p], [header], lambda f: f.name):
            if note and notes is not None:       # said with the dose's other notes (dose-features, demo)
                notes.append(note)
            elif note:
                warnings.warn(note, InputCheckNote, stacklevel=2)
            if note and record is not None:
                record.append(note)
        return dose
    if unit not in IMAGE_DOSE_UNITS:
        raise InputError(f"dose unit {unit!r} is not known", "give --dose-unit Gy or cGy")
    max_dose_limit(max_gy)   # a bad --max-dose-gy is said before the image is read
    img = sitk.Cast(read_image(p), sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(img)
    bad = int((~np.isfinite(arr)).sum())     # a NIfTI's NaN too (read_image puts back those ITK reads as 0)
    if bad:
        raise InputError(f"{p.name} holds {bad} voxels that are not numbers (NaN / infinite) of "
                         f"{arr.size}, so it is not a usable dose",
                         "export the dose again from the planning system (every voxel a dose in Gy; 0 outside "
                         "the calculation volume)")
    check_image_dose_values(arr, p.name, unit, max_gy)
    return img if unit == "Gy" else img * IMAGE_DOSE_UNITS[unit]


def check_image_dose_values(arr: np.ndarray, name: str, unit: str = "Gy", max_gy: float | None = None) -> None:
    """The value checks of a dose image's finite voxels ``arr`` in ``unit`` (Gy / cGy): negative values refused, and
    :func:`check_dose_plausible` (no dose, cGy read as Gy, Gy read as cGy).  The one rule of a dose file read by
    :func:`read_dose` and of a dose volume node of Slicer's console API (:func:`lungai.scene.radiomics.
    radiomics_table`)."""
    if float(arr.min()) < NEGATIVE_DOSE:
        raise InputError(f"{name} holds negative values (min {float(arr.min()):.3g}), so it is not a dose",
                         "give the physical dose in Gy")
    check_dose_plausible(name, float(arr.max()) * IMAGE_DOSE_UNITS[unit], unit, max_gy)
