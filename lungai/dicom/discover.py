"""Find CT series, RTSTRUCT, RTDOSE and SEG files under a folder and group them into studies.

Grouping uses DICOM UIDs only, never folder names: a study here is one CT series (its
SeriesInstanceUID, FrameOfReferenceUID, StudyInstanceUID, PatientID) with

- the RTSTRUCTs and SEGs that reference the CT series (or, failing that, its FrameOfReferenceUID),
- the RTDOSEs in its FrameOfReferenceUID (a dose grid shares the planning CT's frame of reference).

Files that match no CT become studies without a CT, so a report can say what each patient lacks.
A scout / LOCALIZER series or one of fewer than 3 slices is no CT candidate (:func:`ct_skip_reason`): it is
noted on the patient's study as skipped, never made a study of its own.
Headers only are read (no pixel data).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lungai.errors import InputError

_TAGS = ["Modality", "PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
         "FrameOfReferenceUID", "SOPClassUID", "ImagePositionPatient", "ImageOrientationPatient", "StudyDate",
         "ImageType", "InstanceNumber", "NumberOfFrames", "SeriesNumber", "SeriesDescription", "ConvolutionKernel",
         "ContrastBolusAgent"]
# A CT series with fewer slices than this is no CT volume (a scout, a single reference image)
MIN_CT_SLICES = 3
# slices whose ImageOrientationPatient differ by more than this (direction cosines) are not one volume
IOP_TOLERANCE = 1e-3


@dataclass
class CTSeries:
    series_uid: str
    folder: Path
    files: list[Path]
    frames: int = 1         # frames per file (an Enhanced / multi-frame CT: one file, all its slices)
    description: str = ""   # SeriesNumber, SeriesDescription, ConvolutionKernel, contrast: tell a study's series apart

    @property
    def n_slices(self) -> int:
        return len(self.files) * self.frames

    @property
    def folders(self) -> list[Path]:
        return sorted({Path(f).parent for f in self.files})


@dataclass
class Study:
    """One patient's CT series and the RT objects that belong to it (any of them may be missing)."""

    patient_id: str
    study_uid: str
    frame_of_reference_uid: str | None
    ct: CTSeries | None = None
    rtstruct: list[Path] = field(default_factory=list)
    rtdose: list[Path] = field(default_factory=list)
    seg: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [k for k, have in (("CT", self.ct), ("RTSTRUCT", self.rtstruct), ("RTDOSE", self.rtdose)) if not have]

    def summary(self) -> str:
        have = (f"CT {self.ct.n_slices} slices" if self.ct else "no CT", f"{len(self.rtstruct)} RTSTRUCT",
                f"{len(self.rtdose)} RTDOSE", f"{len(self.seg)} SEG")
        return f"{self.patient_id}: " + ", ".join(have) + (f"; missing {', '.join(self.missing)}" if self.missing else "")


def frames_of(ds) -> int:
    """Frames in a file (NumberOfFrames; 1 for a classic one-slice file or an unreadable value)."""
    try:
        return max(int(getattr(ds, "NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def series_description(ds) -> str:
    """What tells the CT series of one study apart (SeriesNumber, SeriesDescription, ConvolutionKernel, contrast),
    e.g. ``#2 'Thorax 3.0 B31f', kernel B31f, contrast Omnipaque``; "" when none is given."""
    def text(name):
        value = getattr(ds, name, None) if ds is not None else None
        if value is None:
            return ""
        return ("\\".join(map(str, value)) if not isinstance(value, (str, int, float)) else str(value)).strip()

    head = " ".join(p for p in (f"#{text('SeriesNumber')}" if text("SeriesNumber") else "",
                                repr(text("SeriesDescription")) if text("SeriesDescription") else "") if p)
    tail = [f"kernel {text('ConvolutionKernel')}" if text("ConvolutionKernel") else "",
            f"contrast {text('ContrastBolusAgent')}" if text("ContrastBolusAgent") else ""]
    return ", ".join(p for p in [head, *tail] if p)


def ct_skip_reason(ds, n_files: int) -> str | None:
    """Why a CT series (``ds``: the header of one of its ``n_files`` files) is no CT volume to read - a scout /
    LOCALIZER image (ImageType), or fewer than :data:`MIN_CT_SLICES` slices (frames: an Enhanced / multi-frame CT
    file holds all its slices) - or None.  The one rule for :func:`scan` (``dicom-scan``, ``cohort``) and
    :func:`lungai.io.read_ct` picking the CT series of a folder."""
    value = getattr(ds, "ImageType", None) or []
    image_type = [str(v).strip().upper() for v in ([value] if isinstance(value, str) else value)]
    if "LOCALIZER" in image_type:
        return "a scout / LOCALIZER image"
    n = n_files * frames_of(ds)
    if n < MIN_CT_SLICES:
        return f"only {n} slice{'s' if n != 1 else ''}, not a CT volume"
    return None


def check_slice_headers(files: list, positions: list, orientations: list, what: str) -> None:
    """Refuse a series of several one-slice files that cannot be put together: a slice without
    ImagePositionPatient (it would be placed anywhere; with none at all the slice spacing and origin are unknown),
    or slices of different ImageOrientationPatient (beyond :data:`IOP_TOLERANCE`; a tilted slice would be read as
    if parallel).  ``positions`` / ``orientations``: per file, the values or None.  The one rule for
    :func:`lungai.io.read_ct` and :func:`scan`."""
    if len(files) < 2:
        return
    fix = ("re-export the series from the scanner / PACS with complete slice headers, or remove the odd files from "
           "its folder")
    missing = [Path(f).name for f, p in zip(files, positions) if p is None]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"{what}: {len(missing)} of its {len(files)} slices {'has' if len(missing) == 1 else 'have'} no "
            f"ImagePositionPatient (0020,0032) ({listed}), "
            + ("so the slice spacing and the position of the CT are unknown" if len(missing) == len(files)
               else f"so {'it' if len(missing) == 1 else 'they'} cannot be put in place in the volume"), fix)
    iops = [None if o is None else [float(v) for v in o] for o in orientations]
    ref = next((o for o in iops if o is not None), None)
    if ref is None:
        raise InputError(f"{what}: its slices have no ImageOrientationPatient (0020,0037), so the orientation of the "
                         "CT is unknown", fix)
    for f, o in zip(files, iops):
        if o is None or len(o) != len(ref) or max(abs(a - b) for a, b in zip(o, ref)) > IOP_TOLERANCE:
            raise InputError(f"{what}: slice {Path(f).name} has "
                             + ("no ImageOrientationPatient (0020,0037)" if o is None else
                                f"ImageOrientationPatient {'/'.join(f'{v:g}' for v in o)}, the others "
                                f"{'/'.join(f'{v:g}' for v in ref)}")
                             + ", so the slices are not one volume (a tilted or reformatted slice mixed in?)", fix)


def _header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
    except (InvalidDicomError, OSError, ValueError, AttributeError):
        return None


def _references(path: Path) -> tuple[set[str], set[str]]:
    """(referenced series UIDs, referenced frame-of-reference UIDs) of an RTSTRUCT or SEG."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True,
                         specific_tags=["ReferencedFrameOfReferenceSequence", "ReferencedSeriesSequence",
                                        "FrameOfReferenceUID", "StructureSetROISequence"])
    series, frames = set(), set()
    for fr in getattr(ds, "ReferencedFrameOfReferenceSequence", []):
        if "FrameOfReferenceUID" in fr:
            frames.add(str(fr.FrameOfReferenceUID))
        for st in getattr(fr, "RTReferencedStudySequence", []):
            for se in getattr(st, "RTReferencedSeriesSequence", []):
                series.add(str(se.SeriesInstanceUID))
    for se in getattr(ds, "ReferencedSeriesSequence", []):   # SEG
        if "SeriesInstanceUID" in se:
            series.add(str(se.SeriesInstanceUID))
    if "FrameOfReferenceUID" in ds:
        frames.add(str(ds.FrameOfReferenceUID))
    for roi in getattr(ds, "StructureSetROISequence", []):
        if "ReferencedFrameOfReferenceUID" in roi:
            frames.add(str(roi.ReferencedFrameOfReferenceUID))
    return series, frames


def other_series_note(name: str, referenced: set, ct_series_uid: str | None) -> str | None:
    """A note when an RTSTRUCT / SEG (file ``name``, referencing the series ``referenced``) in the CT's frame of
    reference was drawn on another series than the CT given (another reconstruction, a later CT in the same
    registration): its structures are placed by the frame of reference, but may not fit this CT's anatomy."""
    if not referenced or not ct_series_uid or ct_series_uid in referenced:
        return None
    return (f"{name}: the structures were drawn on series {', '.join(sorted(referenced))}, the CT given is series "
            f"{ct_series_uid} (same frame of reference: placed by it; check that they fit this CT)")


def _slice_problem(slices: list, ds, uid: str) -> str | None:
    """Why the CT series cannot be read (a slice without position, mixed orientations: :func:`check_slice_headers`;
    a missing slice, duplicate positions, irregular steps, a gantry tilt:
    :func:`lungai.io.validate.check_slice_positions`, :func:`~lungai.io.validate.check_steps_along_normal`), or
    None.  ``slices``: (file, ImagePositionPatient or None, ImageOrientationPatient or None) per file."""
    from lungai.io.validate import check_slice_positions, check_steps_along_normal, slice_offsets

    positions = [p for _, p, _ in slices]
    try:
        check_slice_headers([f for f, _, _ in slices], positions, [o for _, _, o in slices], f"CT series {uid}")
    except InputError as exc:
        return f"{exc.problem} - {exc.fix}"
    if len(slices) < 2 or "ImageOrientationPatient" not in ds:
        return None
    try:
        offsets, axis = slice_offsets(positions, ds.ImageOrientationPatient)
        check_slice_positions(offsets, f"CT series {uid}", axis)
        check_steps_along_normal(positions, ds.ImageOrientationPatient, f"CT series {uid}")
    except InputError as exc:
        return f"{exc.problem} - {exc.fix}"
    return None


def files_under(root) -> list[Path]:
    """The files under ``root`` (hidden ones left out), sorted.  Folder links are followed (an export may link
    a patient's folders from elsewhere), each real folder once: a link cycle ends, a folder linked twice is
    read once."""
    import os

    seen, found = set(), []
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found += [Path(folder) / f for f in files if not f.startswith(".") and os.path.isfile(os.path.join(folder, f))]
    return sorted(found)


def scan(root, progress=None, files=None) -> list[Study]:
    """All studies under ``root`` (files in any folder layout, folder links followed), sorted by patient ID.

    ``progress``: an object with ``update(n=1, message=None)`` (see :mod:`lungai.progress`), one step per file.
    ``files``: the files to read (default :func:`files_under` ``root``; e.g. a bounded search).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder", "give the folder holding the DICOM export (any sub-folder layout)")
    ct_files: dict[str, list] = defaultdict(list)
    ct_slices: dict[str, list] = defaultdict(list)
    ct_info: dict[str, object] = {}
    others: list[tuple[str, Path, object]] = []
    for path in (files_under(root) if files is None else files):
        ds = _header(path)
        if progress is not None:
            progress.update(1, path.name)
        if ds is None or "Modality" not in ds:
            continue
        modality = str(ds.Modality)
        if modality == "CT" and "SeriesInstanceUID" in ds:
            ct_files[str(ds.SeriesInstanceUID)].append(path)
            ct_slices[str(ds.SeriesInstanceUID)].append((path, ds.get("ImagePositionPatient"),
                                                        ds.get("ImageOrientationPatient")))
            ct_info.setdefault(str(ds.SeriesInstanceUID), ds)
        elif modality in ("RTSTRUCT", "RTDOSE", "SEG"):
            others.append((modality, path, ds))

    studies: list[Study] = []
    by_series: dict[str, Study] = {}
    by_frame: dict[str, list[Study]] = defaultdict(list)
    skipped: list[tuple[object, str]] = []
    for uid, files in ct_files.items():
        ds = ct_info[uid]
        reason = ct_skip_reason(ds, len(files))
        if reason:
            skipped.append((ds, f"skipped CT series {uid} ({len(files)} file{'s' if len(files) != 1 else ''} in "
                                f"{files[0].parent}): {reason}"))
            continue
        folders = sorted({f.parent for f in files})
        st = Study(patient_id=str(getattr(ds, "PatientID", "") or "unknown"),
                   study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                   frame_of_reference_uid=str(getattr(ds, "FrameOfReferenceUID", "")) or None,
                   ct=CTSeries(uid, folders[0], sorted(files), frames_of(ds) if len(files) == 1 else 1,
                               series_description(ds)))
        if len(folders) > 1:
            st.notes.append(f"CT series {uid} is spread over {len(folders)} folders ({', '.join(map(str, folders))}): "
                            "lungai cohort reads them all; other commands given one folder read that folder's "
                            "slices only")
        problem = _slice_problem(ct_slices[uid], ds, uid)
        if problem:
            st.notes.append(problem)
        studies.append(st)
        by_series[uid] = st
        if st.frame_of_reference_uid:
            by_frame[st.frame_of_reference_uid].append(st)

    orphans: dict[tuple, Study] = {}
    for ds, note in skipped:   # noted on the patient's CT study (same frame of reference, else same patient)
        frame = str(getattr(ds, "FrameOfReferenceUID", "")) or None
        patient = str(getattr(ds, "PatientID", "") or "unknown")
        targets = by_frame.get(frame, []) or [st for st in studies if st.patient_id == patient]
        if not targets:
            st = orphans.get((patient, frame))
            if st is None:
                st = orphans[(patient, frame)] = Study(patient_id=patient,
                                                       study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                                                       frame_of_reference_uid=frame)
                studies.append(st)
            targets = [st]
        targets[0].notes.append(note)   # once: on the patient's first CT study, not repeated under each
    for modality, path, ds in others:
        if modality == "RTDOSE":
            series, frames = set(), {str(ds.FrameOfReferenceUID)} if "FrameOfReferenceUID" in ds else set()
        else:
            series, frames = _references(path)
        targets = [by_series[s] for s in series if s in by_series]
        if not targets:
            targets = [st for f in frames for st in by_frame.get(f, [])]
            for st in targets:
                note = other_series_note(path.name, series, st.ct.series_uid if st.ct else None)
                if note:
                    st.notes.append(note)
        if not targets:
            key = (str(getattr(ds, "PatientID", "") or "unknown"), next(iter(sorted(frames)), None))
            st = orphans.get(key)
            if st is None:
                st = orphans[key] = Study(patient_id=key[0], study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                                          frame_of_reference_uid=key[1])
                studies.append(st)
            if st.ct is None and not any(n.startswith("no CT series") for n in st.notes):
                st.notes.insert(0, "no CT series with this frame of reference was found")
            targets = [st]
        for st in targets:
            getattr(st, modality.lower()).append(path)
    for st in studies:
        if len(st.rtstruct) > 1:
            st.notes.append(f"{len(st.rtstruct)} RTSTRUCTs reference this CT; choose one")
        if len(st.rtdose) > 1:
            st.notes.append(f"{len(st.rtdose)} RTDOSEs share this frame of reference (several plans or beams?)")
    return sorted(studies, key=lambda s: (s.patient_id, s.study_uid, s.ct is None,
                                          s.ct.series_uid if s.ct else ""))
