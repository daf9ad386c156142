"""Find CT series, RTSTRUCT, RTDOSE and SEG files under a folder and group them into studies.

Grouping uses DICOM UIDs only, never folder names: a study here is one CT series (its
SeriesInstanceUID, FrameOfReferenceUID, StudyInstanceUID, PatientID) with

- the RTSTRUCTs and SEGs that reference the CT series (or, failing that, its FrameOfReferenceUID),
- the RTDOSEs in its FrameOfReferenceUID (a dose grid shares the planning CT's frame of reference).

A file without FrameOfReferenceUID (an RTSTRUCT without ReferencedFrameOfReferenceSequence / ROI frames, as some
planning systems export it; an RTDOSE whose tag an anonymiser removed) goes to the CT series it references (an
RTSTRUCT: its RTReferencedSeriesSequence, else the CT slices its contours reference), else - when it references
none - to the CT series of its PatientID in the patient's folder (:func:`frameless_ct`), with a note; otherwise it
is said why it matches no CT, with the fix.

Files that match no CT become studies without a CT, so a report can say what each patient lacks.
A scout / LOCALIZER series or one of fewer than 3 slices is no CT candidate (:func:`ct_skip_reason`): it is
noted on the patient's study as skipped, never made a study of its own.
A file meant to be DICOM (``*.dcm`` or the DICM preamble) that cannot be read (truncated, half-written) is noted on
the study sharing its folder (:func:`unreadable_note`), never dropped silently.
Headers only are read (no pixel data).
"""

from __future__ import annotations

import contextlib

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lungai.errors import InputError, agree, counted

_TAGS = ["Modality", "PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
         "FrameOfReferenceUID", "SOPClassUID", "ImagePositionPatient", "ImageOrientationPatient", "StudyDate",
         "ImageType", "InstanceNumber", "NumberOfFrames", "SeriesNumber", "SeriesDescription", "ConvolutionKernel",
         "ContrastBolusAgent", "PixelSpacing", "PhotometricInterpretation", "RescaleIntercept", "RescaleSlope",
         "ReferencedRTPlanSequence"]
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

    total_frames: int | None = None   # several multi-frame files (not readable): the sum of their frames
    study_date: str = ""    # the StudyDate as YYYY-MM-DD ("" when none): a planning CT told from a follow-up CT

    @property
    def n_slices(self) -> int:
        return self.total_frames if self.total_frames is not None else len(self.files) * self.frames

    @property
    def folders(self) -> list[Path]:
        return sorted({Path(f).parent for f in self.files})

    @property
    def label(self) -> str:
        """What tells a patient's CT series apart in the cohort's messages: its slices, study date and
        :func:`series_description`, e.g. ``107 slices, study 2014-01-01, #2 'Thorax 3mm'``."""
        return ", ".join(p for p in (f"{self.n_slices} slices", f"study {self.study_date}" if self.study_date else "",
                                     self.description) if p)


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
    # the patient's RTPLAN files (any frame of reference): which beams a sum of BEAM doses needs (plan_dose_files)
    rtplan: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)   # DICOM files here that could not be read (truncated ...)
    # how each RTSTRUCT / SEG (str(path)) matched the CT: ("series", referenced series UIDs) when it references the
    # CT series, ("frame", referenced series UIDs) when it shares the CT's frame of reference only (drawn on
    # another series: a PET, a 4D-CT phase, another reconstruction)
    matched: dict = field(default_factory=dict)
    # [problem, fix] when the CT series cannot be this patient's as exported: its slices carry several PatientIDs
    # (mixed_patient_ids); lungai cohort fails the patient before any work
    conflict: list = field(default_factory=list)
    # cut_short_at of each unreadable file (str(path)), read once
    _cut: dict = field(default_factory=dict, repr=False, compare=False)
    # (note, refusal) of a CT series whose slices are missing: told with the unreadable files (_connect_gaps)
    gap: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def rtstruct_direct(self) -> list[Path]:
        """The RTSTRUCTs that reference the CT series itself (not only its frame of reference)."""
        return [p for p in self.rtstruct if self.matched.get(str(p), ("series",))[0] == "series"]

    @property
    def truncated(self) -> dict[str, list[Path]]:
        """{kind: files} of the RTSTRUCT / RTDOSE / SEG this study has no readable file of but whose file is there, cut
        short (:func:`cut_short_at`; a file whose header names another PatientID is not this patient's): not
        "missing" - the fix is to re-export that file, not to look for one (QA dicommiss64: LUNG1-003's RTSTRUCT cut
        short was "missing RTSTRUCT" in ``dicom-scan --json`` and cohort's patients.csv below a summary line that said
        it truncated)."""
        out: dict[str, list[Path]] = {}
        for f in self.unreadable:
            if str(f) not in self._cut:
                self._cut[str(f)] = cut_short_at(f)
            cut = self._cut[str(f)]
            if cut is None or cut[0] not in ("RTSTRUCT", "RTDOSE", "SEG") or getattr(self, cut[0].lower()):
                continue
            if cut[2] and self.patient_id != "unknown" and cut[2] != self.patient_id.strip():
                continue        # a flat export of several patients: the file is another patient's
            out.setdefault(cut[0], []).append(Path(f))
        return out

    @property
    def missing(self) -> list[str]:
        """CT, RTSTRUCT, RTDOSE of which the study has no file at all (one there but cut short: :attr:`truncated`)."""
        cut = self.truncated
        return [k for k, have in (("CT", self.ct), ("RTSTRUCT", self.rtstruct), ("RTDOSE", self.rtdose))
                if not have and k not in cut]

    def summary(self) -> str:
        """The study's line of ``lungai dicom-scan``.  An RTSTRUCT / RTDOSE known to be there but cut short
        (:attr:`truncated`) is said so, not "missing RTSTRUCT" (QA: LUNG1-003's RTSTRUCT cut at 700 bytes)."""
        have = (f"CT {self.ct.n_slices} slices" if self.ct else "no CT", f"{len(self.rtstruct)} RTSTRUCT",
                f"{len(self.rtdose)} RTDOSE", f"{len(self.seg)} SEG")
        missing, cut = self.missing, self.truncated
        return (f"{self.patient_id}: " + ", ".join(have) + (f"; missing {', '.join(missing)}" if missing else "")
                + "".join(f"; {kind} there but unreadable (truncated)" for kind in cut)
                + (f"; {counted(len(self.unreadable), 'unreadable DICOM file')}" if self.unreadable else ""))


UNREADABLE = "could not be read as DICOM"
MIXED_PATIENT_FIX = ("keep the files of one PatientID in the export and move the other's out of DICOM_ROOT (the same "
                     "series exported under two PatientIDs - a patient ID changed in the PACS and the series exported "
                     "again - or UIDs reused by an anonymiser for two patients)")


def patient_id_of(ds) -> str:
    """A header's PatientID as the patients are told apart (spaces around it ignored), "" when it has none."""
    return str(getattr(ds, "PatientID", "") or "").strip()


def mixed_patient_ids(uid: str, files: list, heads: list, root=None) -> str | None:
    """The problem when the slice files of CT series ``uid`` carry several PatientIDs, else None.

    UIDs are unique to one patient's images: one series under two PatientIDs is two exports merged by UID (QA: a copy
    of LUNG1-003 under PatientID Z999 with the same UIDs - its slices were left out as "copies" of the other's,
    Z999 vanished from the inventory and its CT was read with the other patient's RTSTRUCT).  Which patient the
    series is cannot be told, so it is never used for either."""
    by_id: dict[str, list] = defaultdict(list)
    for f, ds in zip(files, heads):
        by_id[patient_id_of(ds) or "(none)"].append(f)
    if len(by_id) < 2:
        return None
    parts = []
    for pid, fs in sorted(by_id.items()):
        folders = sorted({shown_path(Path(f).parent, root) if root is not None else str(Path(f).parent) for f in fs})
        parts.append(f"'{pid}': {counted(len(fs), 'file')} in {', '.join(folders[:3])}"
                     + (f" and {len(folders) - 3} more {agree(len(folders) - 3, 'folder', 'folders')}"
                        if len(folders) > 3 else ""))
    return (f"CT series {uid} holds slices of {len(by_id)} PatientIDs ({'; '.join(parts)}): which patient it "
            "belongs to is not known, so it is used for none")


def unreadable_note(files, root=None, fix: bool = True) -> str:
    """The warning naming the DICOM files of a study's folders that could not be read (a truncated / half-written
    file: an RTSTRUCT among them would be missed silently).  ``root``: the folder given, the files named by their
    path under it (:func:`shown_path`; default: by their names); ``fix``: ending with "re-export it"."""
    files = list(files)
    shown = (lambda f: shown_path(f, root)) if root is not None else (lambda f: Path(f).name)  # noqa: E731
    names = ", ".join(map(shown, files[:5])) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    one = len(files) == 1
    cuts = [cut_short_at(f) for f in files] if len(files) <= 5 else [None]
    if all(cuts):     # each cut short after its Modality: what it is is known (QA: an RTSTRUCT cut at 700 bytes)
        art = lambda k: "a" if k.startswith("CT") else "an"     # noqa: E731 - an RTSTRUCT / RTDOSE / SEG
        kinds = [c[0] for c in cuts]
        if all(c[1] is None for c in cuts):
            said = (f"{art(kinds[0])} {kinds[0]} cut short in its header" if one else
                    "; ".join(f"{shown(f)} is {art(k)} {k}" for f, k in zip(files, kinds))
                    + ", each cut short in its header")
        else:       # where each is cut (QA dicommiss64: an RTSTRUCT cut inside its references was of no known kind)
            said = "; ".join((f"{shown(f)} is " if not one else "") + f"{art(c[0])} {c[0]} cut short {cut_place(c)}"
                             for f, c in zip(files, cuts))
        source = " from the planning system or PACS (or copy it again)" if set(kinds) - {"CT slice"} else ""
        return (f"{counted(len(files), 'file')} {UNREADABLE}: {names} (truncated: {said})"
                + (f"; re-export {'it' if one else 'them'}{source if one else ''}" if fix else ""))
    return (f"{counted(len(files), 'file')} {UNREADABLE}: {names} (truncated or damaged; "
            f"{'it' if one else 'one'} may be this patient's RTSTRUCT, RTDOSE or CT slice)"
            + (f"; re-export {'it' if one else 'them'}" if fix else ""))


def gap_with_unreadable(exc, unreadable, root=None):
    """The refusal ``exc`` of a CT series with slices missing (a :class:`~lungai.io.validate.MissingSlicesError`, or a
    :class:`~lungai.io.validate.SpacingChangeError` whose coarser run could be slices missing) told with the DICOM
    files near the series that could not be read (``unreadable``, named by their path under ``root``): the likely
    missing slices, and the fix to re-export them - as ``read_ct`` refuses it, and as ``dicom-scan`` / ``cohort``
    say it (QA cohortfollow67: dicom-scan of LUNG1-003 with a slice cut short said "1 slice missing - no slice
    between z = -158.90 and -152.90 mm" and, apart, "1 file could not be read", never that it is the slice)."""
    from lungai.io.validate import SpacingChangeError

    one = len(unreadable) == 1
    named = unreadable_note(unreadable, root, fix=False)
    if isinstance(exc, SpacingChangeError):     # a run of a doubled step: the unreadable files may be the slices
        return SpacingChangeError(f"{exc.problem}; {named}: if slices are missing, {'it is' if one else 'they are'} "
                                  "most likely among them",
                                  f"{exc.fix}; re-export {'that file' if one else 'those files'} and replace "
                                  f"{'it' if one else 'them'}", exc.could_be_missing)
    return InputError(f"{exc.problem}; {named}: " + ("most likely the missing slice" if one else
                                                     "the missing slices among them"),
                      f"re-export {'that file' if one else 'those files'} (or the full series) from the PACS or "
                      f"planning system and replace {'it' if one else 'them'}")


def _connect_gaps(studies: list, root) -> None:
    """A CT series refused by the scan for slices missing (``Study.gap``) whose study has unreadable files that may
    be CT slices of this patient (cut short as a CT slice, or of no known kind; not another PatientID's): its note
    says them, the likely missing slices, with the fix (:func:`gap_with_unreadable`), in place of the bare gap."""
    for st in studies:
        if st.gap is None or not st.unreadable:
            continue
        note, exc = st.gap
        maybe = []
        for f in st.unreadable:
            if str(f) not in st._cut:
                st._cut[str(f)] = cut_short_at(f)
            cut = st._cut[str(f)]
            if cut is not None and (cut[0] != "CT slice" or cut[2] and cut[2] != st.patient_id.strip()):
                continue        # an RTSTRUCT / RTDOSE / SEG cut short, or another patient's slice: not the gap
            maybe.append(f)
        if maybe and note in st.notes:
            told = gap_with_unreadable(exc, maybe, root)
            st.notes[st.notes.index(note)] = f"{told.problem} - {told.fix}"


def cut_short_kind(path) -> str | None:
    """What a DICOM file cut short after its Modality (:func:`cut_short_at`) is - "RTSTRUCT", "RTDOSE", "SEG",
    "CT slice" - or None when its header does not say (cut before its Modality, unreadable, or intact)."""
    cut = cut_short_at(path)
    return cut[0] if cut else None


# what an RTSTRUCT's top-level sequences hold: said of a file cut short inside one (cut_place)
CUT_ELEMENT_HOLDS = {"ReferencedFrameOfReferenceSequence": "the frame of reference and CT series its contours are "
                                                           "drawn on",
                     "StructureSetROISequence": "its structure names", "ROIContourSequence": "its contours",
                     "RTROIObservationsSequence": "its structures' types"}


def cut_short_at(path) -> tuple[str, str | None, str] | None:
    """(kind, element, PatientID) of a DICOM file cut short after its Modality, or None when its header does not say
    (cut before its Modality, unreadable otherwise, or intact).  ``kind``: "RTSTRUCT", "RTDOSE", "SEG", "CT slice";
    ``element``: the keyword of the top-level element the file ends inside (:func:`read_to_end`), None when it
    ends between elements of its header (:func:`cut_short_header`, :func:`rt_cut_short`).
    QA dicommiss64: LUNG1-003's RTSTRUCT cut anywhere after its first ~1170 bytes (inside its
    ReferencedFrameOfReferenceSequence, its structures or contours: any interrupted copy of a 1.5 MB file) made the
    header read fail, so it was "truncated or damaged; it may be this patient's RTSTRUCT, RTDOSE or CT slice" and
    "missing RTSTRUCT"."""
    p = Path(path)
    ds, element = _header(p), None
    if ds is None or not cut_short_header(ds):
        try:
            head, element = read_to_end(p, force=True)
        except Exception:  # noqa: BLE001 - damaged otherwise: of no known kind
            head = None
        if element is not None:
            ds = head
        elif ds is None or not rt_cut_short(p, ds):
            return None
    modality = header_text(ds, "Modality") or sop_class_modality(ds)
    if not modality:
        return None
    return "CT slice" if modality == "CT" else modality, element, patient_id_of(ds)


def cut_in_sequence(element) -> bool:
    """Whether an element a file ends inside (:func:`read_to_end`) is named: a sequence or the pixel data - a short
    value of its header (a UID, a date cut in two) is "in its header", as a cut between its elements."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    if element == "PixelData":
        return True
    tag = tag_for_keyword(element) if element else None
    try:
        return tag is not None and dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


# the top-level element after which a file of each kind holds no more of its content (an RTSTRUCT's structures and
# contours, an image's pixel data): a file ending inside an element after it is whole but for its last elements
CONTENT_ENDS = {"RTSTRUCT": (0x3006, 0x0080, "its structures and contours")}   # RTROIObservationsSequence
PIXEL_DATA_END = (0x7FE0, 0x0010, "its pixel data")


def element_tag(element) -> int | None:
    """The tag (as an int) of an element named as :func:`read_to_end` names it: its keyword, or "(gggg,eeee)" when
    private; None when unknown."""
    from pydicom.datadict import tag_for_keyword

    if not element:
        return None
    tag = tag_for_keyword(element)
    if tag is not None:
        return int(tag)
    try:
        group, elem = str(element).strip("()").split(",")
        return (int(group, 16) << 16) | int(elem, 16)
    except ValueError:
        return None


def cut_after_content(cut) -> str | None:
    """What a file of :func:`cut_short_at` holds whole when it ends inside an element after all its content (an
    RTSTRUCT inside its ApprovalStatus: "its structures and contours"), else None."""
    group, elem, holds = CONTENT_ENDS.get(cut[0], PIXEL_DATA_END)
    tag = element_tag(cut[1])
    return holds if tag is not None and tag > ((group << 16) | elem) else None


def cut_place(cut) -> str:
    """Where a file of :func:`cut_short_at` ends: "in its header", "inside its ROIContourSequence (its contours),
    so none of its structures can be read", or - inside an element after all its content - "at its end, inside its
    ApprovalStatus, after its structures and contours" (QA dicomfollow64: LUNG1-003's RTSTRUCT cut inside its last
    element, ApprovalStatus, was said "cut short in its header")."""
    element = cut[1]
    after = cut_after_content(cut)
    if after:
        return f"at its end, inside its {element}, after {after}"
    if not cut_in_sequence(element):
        return "in its header"
    holds = CUT_ELEMENT_HOLDS.get(element) if cut[0] == "RTSTRUCT" else None
    return (f"inside its {element}" + (f" ({holds})" if holds else "")
            + (", so none of its structures can be read" if cut[0] == "RTSTRUCT" else ""))


def ends_inside(path, pixels: bool = True) -> bool:
    """A DICOM file whose header reads but which ends inside one of its elements (:func:`read_to_end`;
    ``pixels=False``: its pixel data's declared length checked against the file's size, not read)."""
    try:
        return read_to_end(path, force=True, pixels=pixels)[1] is not None
    except Exception:  # noqa: BLE001 - damaged otherwise: its reader says why
        return False


_PIXEL_DATA = 0x7FE00010

# the Sequence Delimitation Item closing a value of undefined length (a sequence, encapsulated pixel data): the last
# bytes of a file whose last element is one (little / big endian)
_SEQUENCE_END = (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff\xfe\xe0\xdd\x00\x00\x00\x00")


def read_to_end(path, force: bool = False, pixels: bool = True) -> tuple[object, str | None]:
    """(data set, element) of a DICOM file read in full (as ``pydicom.dcmread``), ``element`` the keyword of the
    top-level element the file ends inside (its tag when private), else None: a file cut short (an interrupted copy
    or transfer) that pydicom fails in (then the data set holds the elements before that one), or that pydicom reads
    without an error - a value of defined length running past the end of the file (an explicit VR file: the items
    read so far, the rest gone: QA dicommiss64, an RTSTRUCT cut inside its ROIContourSequence read with one lung
    missing), or a value of undefined length never closed.  Any other failure is raised as pydicom raised it.
    ``pixels=False``: read up to its pixel data (the data set without it), whose declared length is checked against
    the file's size instead of read - an RTDOSE of 24-50 MB during a scan (QA dosecut64: reading one in full took
    0.1 s from the page cache, 0.7 s from disk; an encapsulated pixel data of undefined length is still read)."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.filereader import read_partial
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    p = Path(path)
    size = p.stat().st_size
    seen: list = []
    with open(p, "rb") as fh:
        def mark(tag, vr, length):      # called before each top-level element's value (not nested ones)
            seen.append((tag, fh.tell(), length))
            return not pixels and tag == _PIXEL_DATA and length != 0xFFFFFFFF     # stop there: its length told
        try:
            ds = read_partial(fh, stop_when=mark, force=force)
        except Exception:
            tag, at, length = seen[-1] if seen else (None, 0, 0)
            if tag is None or (length != 0xFFFFFFFF and at + length <= size):
                raise                   # the element is all there: damaged otherwise, not cut short
            fh.seek(0)
            return read_partial(fh, stop_when=lambda t, vr, n: t >= tag, force=force), keyword_for_tag(tag) or str(tag)
        meta = getattr(ds, "file_meta", None)
        if not seen or str(getattr(meta, "TransferSyntaxUID", "") or "") == DeflatedExplicitVRLittleEndian:
            return ds, None             # offsets in the inflated data set, not the file
        tag, at, length = seen[-1]
        if length == 0xFFFFFFFF:
            fh.seek(max(size - 8, 0))
            cut = fh.read(8) not in _SEQUENCE_END
        else:
            cut = at + length > size
    return ds, (keyword_for_tag(tag) or str(tag)) if cut else None


def has_dicm_preamble(path: Path) -> bool:
    """A DICOM Part-10 file: the ``DICM`` preamble at bytes 128-131 (False when unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def looks_dicom(path: Path) -> bool:
    """A file meant to be DICOM: named ``*.dcm`` or with the ``DICM`` preamble (:func:`has_dicm_preamble`)."""
    return Path(path).suffix.lower() == ".dcm" or has_dicm_preamble(path)


def _attach_unreadable(studies: list, unreadable: list, root: Path) -> None:
    """Each unreadable DICOM file goes to every study with files in the file's own folder (a flat export of several
    patients in one folder: each of them, since the file may be any one's RTSTRUCT); else to the studies whose
    folders share the deepest folder with it below ``root`` (or to the one patient under ``root``); else to the
    studies of the PatientID its header still holds (a file cut short after it, :func:`cut_short_at`), or a study of
    that patient without a CT; else to a study of patient 'unknown' (no patient's file lies with it; lungai cohort
    warns of it).  Each study gets a note."""
    def folders(st):
        out = [Path(f).parent for f in (st.ct.files if st.ct else [])]
        return out + [Path(f).parent for f in (*st.rtstruct, *st.rtdose, *st.seg)]

    def depth(a: Path, b: Path) -> int:
        n = 0
        for x, y in zip(a.parts, b.parts):
            if x != y:
                break
            n += 1
        return n

    base = len(root.parts)
    one_patient = len({st.patient_id for st in studies}) == 1
    for path in unreadable:
        targets = [st for st in studies if path.parent in folders(st)]
        if not targets:
            scored = [(max((depth(path.parent, f) for f in folders(st)), default=0), st) for st in studies]
            best = max((d for d, _ in scored), default=0)
            targets = [st for d, st in scored if d == best and (d > base or one_patient)]
        # else its patient's, by the PatientID its header still holds (QA dicomfollow64: a folder of LUNG1-003's
        # RTSTRUCT alone, cut short, was patient "unknown": "no CT ... missing CT, RTDOSE")
        cut = cut_short_at(path) if not targets else None
        patient = cut[2] if cut and cut[2] else "unknown"
        if not targets and patient != "unknown":
            targets = [st for st in studies if st.patient_id.strip() == patient]
        if not targets:
            orphan = next((st for st in studies if st.patient_id == patient and st.ct is None), None)
            if orphan is None:
                orphan = Study(patient_id=patient, study_uid="", frame_of_reference_uid=None)
                studies.append(orphan)
            targets = [orphan]
        for st in targets:
            st.unreadable.append(path)
    for st in studies:
        if st.unreadable:
            st.notes.append(unreadable_note(st.unreadable, root))    # by their path under root, as every note


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


def is_localizer(ds) -> bool:
    """A scout / LOCALIZER image (ImageType holds LOCALIZER)."""
    value = getattr(ds, "ImageType", None) or []
    return "LOCALIZER" in [str(v).strip().upper() for v in ([value] if isinstance(value, str) else value)]


def split_localizers(files: list, headers: list) -> tuple[list, list]:
    """(the files of a CT series that are no scout / LOCALIZER image, those that are): a scanner may store the scout
    in the CT's own series (one SeriesInstanceUID); it is left out of the volume file by file, never the whole
    series for it.  A series of localizers only is returned as it is (:func:`ct_skip_reason` skips it)."""
    dropped = [f for f, ds in zip(files, headers) if ds is not None and is_localizer(ds)]
    if not dropped or len(dropped) == len(files):
        return list(files), []
    return [f for f, ds in zip(files, headers) if ds is None or not is_localizer(ds)], dropped


def localizer_note(dropped: list, what: str) -> str:
    """The note naming the scout / LOCALIZER files left out of a CT series (:func:`split_localizers`)."""
    names = ", ".join(Path(f).name for f in dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
    return (f"{what}: left out {len(dropped)} scout / LOCALIZER image{'s' if len(dropped) != 1 else ''} of the "
            f"series ({names}); the CT volume is its other files")


def check_multiframe_files(files: list, frames: list, what: str) -> None:
    """Refuse a CT series of several files of which one holds several frames: an Enhanced / multi-frame CT is read
    from one file holding the whole volume; several such files (or a mix with one-slice files) cannot be put
    together here.  ``frames``: per file, its NumberOfFrames.  The one rule for :func:`lungai.io.read_ct` and
    :func:`scan`."""
    if len(files) > 1 and any(n > 1 for n in frames):
        raise InputError(f"{what}: a multi-frame CT series in several files is not supported: {len(files)} files, "
                         f"{sum(frames)} frames in all ({', '.join(f'{Path(f).name}: {n}' for f, n in list(zip(files, frames))[:5])})",
                         "convert the series to one Enhanced CT file or to classic one-slice files (e.g. with "
                         "dcm2niix, dicom3tools or the scanner / PACS export), or give one of the files alone")


def skipped_ct_note(uid: str, files: list, reason: str) -> str:
    """The note on a CT series that is no CT volume (:func:`ct_skip_reason`'s ``reason``) left out: by :func:`scan`
    on the patient's study, by :func:`lungai.io.read_ct` choosing the CT series of a folder."""
    return (f"skipped CT series {uid} ({len(files)} file{'s' if len(files) != 1 else ''} in "
            f"{Path(files[0]).parent}): {reason}")


def ct_skip_reason(ds, n_files: int) -> str | None:
    """Why a CT series (``ds``: the header of one of its ``n_files`` files) is no CT volume to read - a scout /
    LOCALIZER image (ImageType), or fewer than :data:`MIN_CT_SLICES` slices (frames: an Enhanced / multi-frame CT
    file holds all its slices) - or None.  The one rule for :func:`scan` (``dicom-scan``, ``cohort``) and
    :func:`lungai.io.read_ct` picking the CT series of a folder."""
    if is_localizer(ds):
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
    given = [o for o in iops if o is not None]
    if not given:
        raise InputError(f"{what}: its slices have no ImageOrientationPatient (0020,0037), so the orientation of the "
                         "CT is unknown", fix)

    def alike(a, b):
        return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= IOP_TOLERANCE

    # the series' orientation: the most common one (within the tolerance; the first of a tie), not the first
    # file's - an odd first slice would name every other slice as the odd one
    ref = max(given, key=lambda o: sum(alike(o, other) for other in given))
    odd = [(Path(f).name, o) for f, o in zip(files, iops) if o is None or not alike(o, ref)]
    if odd:
        def iop_text(o):
            return "no ImageOrientationPatient (0020,0037)" if o is None else \
                f"ImageOrientationPatient {'/'.join(f'{v:g}' for v in o)}"
        listed = "; ".join(f"{name}: {iop_text(o)}" for name, o in odd[:5]) + \
            (f"; and {len(odd) - 5} more" if len(odd) > 5 else "")
        one = len(odd) == 1
        raise InputError(f"{what}: {'slice' if one else f'{len(odd)} slices'} "
                         + (f"{odd[0][0]} has {iop_text(odd[0][1])}" if one else f"differ ({listed})")
                         + f", the others {'/'.join(f'{v:g}' for v in ref)}, so the slices are not one volume (a "
                         "tilted or reformatted slice mixed in?)", fix)


ENHANCED_FIX = ("convert it to a classic series of one file per slice (e.g. dcm4che's emf2sf) or load it in 3D Slicer "
                "and save the volume as NRRD, or re-export it from the scanner / PACS")


def _frame_item(ds, i: int, sequence: str):
    """The functional group ``sequence``'s item of frame ``i`` of a multi-frame file: its own (per-frame), else the
    shared one; None when neither has it."""
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for group in (per[i] if i < len(per) else None, shared[0] if shared else None):
        if group is not None and group.get(sequence):
            return group.get(sequence)[0]
    return None


def check_enhanced_frames(ds, what: str):
    """Refuse an Enhanced / multi-frame CT (``ds``: its full header) whose frames are no regular volume stored in slice
    order: a frame without ImagePositionPatient (PlanePositionSequence), no ImageOrientationPatient, a missing frame,
    two frames at one position, an irregular step (:func:`lungai.io.validate.check_slice_positions`), frames out of
    slice order (the DICOM reader stacks them as they come), a gantry tilt
    (:func:`lungai.io.validate.check_steps_along_normal`) - the checks of a classic series (:func:`check_slice_headers`
    and those after it).  Returns (the first frame's position, the unit direction the frames run in, the voxel
    spacing (column, row, slice) - the geometry the image read must have), or None for a file of one frame or without
    functional groups.  The one rule for :func:`lungai.io.read_ct` and :func:`scan`."""
    import numpy as np

    from lungai.io.validate import check_slice_positions, check_steps_along_normal, slice_offsets

    n = frames_of(ds)
    if n < 2 or ("PerFrameFunctionalGroupsSequence" not in ds and "SharedFunctionalGroupsSequence" not in ds):
        return None

    def values(i, sequence, keyword, count):
        item = _frame_item(ds, i, sequence)
        try:
            found = [float(v) for v in getattr(item, keyword)]
        except (AttributeError, TypeError, ValueError):
            return None
        return found if len(found) == count else None

    positions = [values(i, "PlanePositionSequence", "ImagePositionPatient", 3) for i in range(n)]
    missing = [i + 1 for i, q in enumerate(positions) if q is None]
    if missing:
        raise InputError(f"{what}: {len(missing)} of its {n} frames (frame {', '.join(map(str, missing[:5]))}"
                         f"{' ...' if len(missing) > 5 else ''}) have no ImagePositionPatient (PlanePositionSequence), "
                         "so they cannot be put in place in the volume", ENHANCED_FIX)
    orientation = values(0, "PlaneOrientationSequence", "ImageOrientationPatient", 6)
    if orientation is None:
        raise InputError(f"{what} has no ImageOrientationPatient (PlaneOrientationSequence), so the orientation of the "
                         "CT is unknown", ENHANCED_FIX)
    offsets, axis = slice_offsets(positions, orientation)
    spacing = check_slice_positions(offsets, what, axis, "re-export the full CT (every frame) from the scanner / PACS")
    steps = np.diff(offsets)
    if (steps > 0).any() and (steps < 0).any():
        i = int(np.flatnonzero(np.sign(steps) != np.sign(steps[0]))[0]) + 1
        raise InputError(f"{what}: its frames are not stored in slice order (frame {i + 1} at {axis} = "
                         f"{offsets[i]:.2f} mm follows frame {i} at {offsets[i - 1]:.2f} mm, turning back from the "
                         "frames before it), and the DICOM reader stacks them as they come", ENHANCED_FIX)
    check_steps_along_normal(positions, orientation, what)
    iop = np.asarray(orientation)
    normal = np.cross(iop[:3], iop[3:])
    normal = normal / (np.linalg.norm(normal) or 1.0) * (1.0 if steps[0] > 0 else -1.0)
    pixel = values(0, "PixelMeasuresSequence", "PixelSpacing", 2)
    if pixel is None:
        raise InputError(f"{what} has no PixelSpacing (PixelMeasuresSequence), mandatory for CT, so the in-plane voxel "
                         "size is unknown", "re-export the CT from the scanner / PACS with complete headers")
    return np.asarray(positions[0]), normal, np.asarray([pixel[1], pixel[0], spacing])


def check_pixel_spacing(files: list, has_spacing: list, what: str) -> None:
    """Refuse a CT series with slices without PixelSpacing (0028,0030): the in-plane voxel size would be taken as
    1 mm.  ``has_spacing``: per file, whether it has one.  The one rule for :func:`lungai.io.read_ct` and
    :func:`scan`."""
    missing = [Path(f).name for f, has in zip(files, has_spacing) if not has]
    if missing:
        raise InputError(f"{what}: {len(missing)} of its {len(files)} slices "
                         f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}) "
                         f"{'has' if len(missing) == 1 else 'have'} no PixelSpacing "
                         "(0028,0030), mandatory for CT, so the in-plane voxel size is unknown (an ImagerPixelSpacing "
                         "is measured at the detector, not in the patient)",
                         "re-export the series from the scanner / PACS with complete headers")


def check_photometric(files: list, interpretations: list, what: str) -> None:
    """Refuse a CT series with a MONOCHROME1 slice (PhotometricInterpretation (0028,0004): the lowest value shown
    white): ITK / GDCM invert such pixels on reading, so the slice's Hounsfield units come out negated (QA: one
    slice of LUNG1-003 marked MONOCHROME1 read with median +942 HU instead of -943; a whole series so marked was
    refused as "not a CT in Hounsfield units").  ``interpretations``: per file, the value or None.  The one rule
    for :func:`lungai.io.read_ct` and :func:`scan`."""
    odd = [(Path(f).name, str(v).strip().upper()) for f, v in zip(files, interpretations)
           if v is not None and str(v).strip().upper() == "MONOCHROME1"]
    if odd:
        listed = ", ".join(name for name, _ in odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise InputError(f"{what}: {len(odd)} of its {len(files)} slice{'s' if len(files) != 1 else ''} "
                         f"({listed}) {'has' if len(odd) == 1 else 'have'} PhotometricInterpretation (0028,0004) "
                         "MONOCHROME1, which the DICOM reader inverts, so "
                         f"{'its' if len(odd) == 1 else 'their'} Hounsfield units would be read negated", "re-export the series as MONOCHROME2 (the CT standard: the stored values are "
                         "the Hounsfield units through RescaleSlope / RescaleIntercept)")


RESCALE_NAMES = ("RescaleIntercept (0028,1052)", "RescaleSlope (0028,1053)")
RESCALE_DEFAULTS = (0.0, 1.0)    # what ITK / GDCM read a slice with when the tag is absent or empty


def rescale_value(value) -> float | None:
    """A RescaleIntercept / RescaleSlope value as a number, or None when it is not usable: absent, empty (GDCM lists
    an empty tag with value '', pydicom gives None; ITK reads the slice with the default then) or not a number."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
        if value is None:
            return None
    try:
        number = float(str(value).strip().rstrip("\x00"))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_rescale(files: list, rescales: list, positions: list, what: str, root=None, orientation=None) -> None:
    """Refuse a CT series where a slice would be read with the wrong rescale: a slice without a usable
    RescaleIntercept (0028,1052) / RescaleSlope (0028,1053) (absent or empty) is read by ITK / GDCM with intercept 0
    / slope 1, its stored values taken as Hounsfield units (QA: the middle slice of LUNG1-003 stored as HU + 1024
    without the tags, or with them empty, read 1024 HU too high without a word: GTV mean -102 -> -49 HU, maximum 230
    -> 1220).  That is wrong only where another slice of the series has that tag with another value (intercept not
    0, slope not 1): a slice without the tags among slices with intercept 0 / slope 1 reads the same (QA, LUNG1-003)
    and is accepted, so are slices with different explicit values (ITK applies each slice's own).  A series without
    the tags on every slice is left to the CT check (:func:`lungai.io.validate.check_ct`: "stored as HU + 1024").
    ``rescales``: per file, (RescaleIntercept, RescaleSlope) as read (None / '' when absent or empty:
    :func:`rescale_value`); ``positions``: per file, its ImagePositionPatient or None (the slice's z said);
    ``orientation``: the series' ImageOrientationPatient (the slices listed in order along its normal, else by z);
    ``root``: the folder given (the slices named by their path under it: :func:`shown_path`).  The one rule for
    :func:`lungai.io.read_ct` and :func:`scan`."""
    values = [tuple(rescale_value(v) for v in r) for r in rescales]
    # per tag: the slices without a usable value, when another slice has one other than the default
    wrong = [j for j in range(2) if any(v[j] is None for v in values)
             and any(v[j] is not None and v[j] != RESCALE_DEFAULTS[j] for v in values)]
    if not wrong:
        return
    odd = [(f, pos, v) for f, pos, v in zip(files, positions, values) if any(v[j] is None for j in wrong)]

    try:
        r, c = [float(x) for x in orientation][:3], [float(x) for x in orientation][3:6]
        normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    except (TypeError, ValueError, IndexError):
        normal = (0.0, 0.0, 1.0)     # no orientation: by z

    def along(item):     # the slices without a position last, in the order given
        try:
            pos = [float(x) for x in item[1]]
            return (0, sum(x * n for x, n in zip(pos, normal))) if len(pos) == 3 else (1, 0.0)
        except (TypeError, ValueError):
            return (1, 0.0)

    odd.sort(key=along)   # read_ct and scan list the same slices, in order along the series

    def named(f, pos) -> str:
        name = shown_path(f, root) if root is not None else Path(f).name
        try:
            return f"{name} at z = {float(pos[2]):.1f} mm"
        except (TypeError, ValueError, IndexError):
            return name

    lacked = {tuple(j for j in wrong if v[j] is None) for _, _, v in odd}
    lacking = " or ".join(RESCALE_NAMES[j] for j in wrong) if len(lacked) > 1 else \
        " or ".join(RESCALE_NAMES[j] for j in next(iter(lacked)))
    others = []
    for j in wrong:
        seen = sorted({v[j] for v in values if v[j] is not None and v[j] != RESCALE_DEFAULTS[j]})
        shown = ", ".join(f"{x:g}" for x in seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
        others.append(f"{RESCALE_NAMES[j].split(' ')[0]} {shown}")
    defaults = " / ".join(("intercept 0", "slope 1")[j] for j in wrong)
    listed = ", ".join(named(f, pos) for f, pos, _ in odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
    one = len(odd) == 1
    hint = ""
    if wrong == [0] and len(others) == 1 and "," not in others[0] and "more" not in others[0]:
        icpt = next(v[0] for v in values if v[0] is not None and v[0] != 0)
        hint = (f" (a slice stored like the others reads {abs(icpt):g} HU too {'high' if icpt < 0 else 'low'})")
    fix = ("re-export the series from the scanner / PACS so that every slice carries its RescaleIntercept and "
           "RescaleSlope")
    if 2 * len(odd) < len(files):
        fix += (" (or remove the odd slice if it belongs to another export)" if one else
                " (or remove the odd slices if they belong to another export)")
    raise InputError(f"{what}: {len(odd)} of its {len(files)} slices ({listed}) {'has' if one else 'have'} no usable "
                     f"{lacking} (absent or empty), so {'it is' if one else 'they are'} read with {defaults}, while "
                     f"other slices have {' and '.join(others)}: {'its' if one else 'their'} Hounsfield units would "
                     f"be wrong{hint}", fix)


def _header(path: Path, rtstruct_head: bool = False):
    """The header of a DICOM file (a bare data set without the Part-10 header too, as the CT reader reads it:
    :func:`lungai.dicom.pixeldata.dcmread_lenient`), None when it cannot be read.

    ``rtstruct_head``: an RTSTRUCT read up to its structure set (group 3006: its ROIs, contours) - the header
    :func:`scan` takes from it, whose whole file it reads once after (:func:`_rtstruct_whole`); read in full, as
    pydicom reads a file with ``specific_tags``, that header cost a parse of every contour (QA dicomfollow65:
    ~0.13 s for LUNG1-003's).  Other files are read as without it."""
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.pixeldata import dcmread_lenient

    try:
        if rtstruct_head:
            return dcmread_lenient(path, stop_when_for=_before_structure_set, specific_tags=_TAGS)
        return dcmread_lenient(path, stop_before_pixels=True, specific_tags=_TAGS)
    except (InvalidDicomError, OSError, ValueError, AttributeError):
        return None
    except Exception:  # noqa: BLE001 - a truncated file fails in many ways (pydicom BytesLengthException ...): unreadable
        return None


def _before_structure_set(fh):
    """A pydicom ``stop_when`` for the file ``fh`` (:func:`lungai.dicom.pixeldata.dcmread_lenient`'s
    ``stop_when_for``) stopping before the pixel data (as ``stop_before_pixels``) and, in a file whose Modality is
    RTSTRUCT, before its first element of group 3006 or after (the structure set, its ROIs and contours: none of
    :data:`_TAGS` but ReferencedRTPlanSequence, an RTDOSE's).  The Modality is read from ``fh`` as pydicom reaches it
    (positioned at its value); a deflated file's data set is read from another stream: read as before, in full."""
    state = {"rtstruct": False}

    def stop(tag, vr, length):
        if tag in _PIXEL_TAGS:
            return True
        if tag == _MODALITY and isinstance(length, int) and 0 < length <= 16:
            at = fh.tell()
            state["rtstruct"] = fh.read(length).strip(b" \x00") == b"RTSTRUCT"
            fh.seek(at)
        return state["rtstruct"] and tag >= 0x30060000
    return stop


_MODALITY = 0x00080060
_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)     # pydicom's stop_before_pixels: float, double, pixel data


def cut_short_header(ds) -> bool:
    """A header read (by :func:`_header`) that was cut short (an interrupted copy or PACS transfer; pydicom reads what
    is there without an error): a CT image header (Modality CT, or a CT image SOP class) without its
    SeriesInstanceUID (Type 1), an RTSTRUCT / RTDOSE / SEG header without it (Type 1 in the RT Series and
    Segmentation Series modules too; it comes before the frame of reference in the file), or a header without
    Modality at all (Type 1 in every DICOM object, early in its header: a file cut within its first few hundred bytes)
    that is no DICOMDIR (a media directory has none).
    Unreadable (:func:`scan`, the CT reader): before, it was passed over without a word - a slice cut so at the end
    of the series left the CT one slice shorter, and an RTSTRUCT cut before its Modality was "missing RTSTRUCT"
    (QA: lungai cohort then took the automatic lungs and tumour, no note of an unreadable file); an RTSTRUCT cut after
    its Modality, before its frame of reference, was said to carry no FrameOfReferenceUID and matched to the CT by
    PatientID and folder (QA: LUNG1-003's RTSTRUCT cut at 700 bytes)."""
    sop_class = header_text(ds, "SOPClassUID")
    modality = header_text(ds, "Modality")
    if not modality:
        meta_class = header_text(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID")
        return DICOMDIR_CLASS not in (sop_class, meta_class) and Path(getattr(ds, "filename", "") or "").name.upper() \
            != "DICOMDIR"
    series = modality in SERIES_REQUIRED or sop_class in CT_IMAGE_CLASSES
    return series and not header_text(ds, "SeriesInstanceUID")


def header_text(ds, keyword: str) -> str:
    """A header's element ``keyword`` as stripped text ("" when absent; ``ds`` None too), read without pydicom's
    warning on an invalid value: a header read by the scan may be cut short inside that value (an interrupted copy),
    and the scan names such a file, what it is and the fix itself (QA cohort67: a CT slice cut inside its
    SOPClassUID made ``dicom-scan`` print pydicom's "UserWarning: Invalid value for VR UI: '1.2.840.10008.5.1.4.1.'.
    Please see <https://dicom.nema.org/...>", naming no file and no fix, before the scan's own note)."""
    import warnings

    if ds is None:
        return ""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Invalid value for VR", category=UserWarning)
        return str(getattr(ds, keyword, "") or "").strip()


def rtstruct_cut_short(path: Path, ds) -> bool:
    """An RTSTRUCT (header ``ds`` read by :func:`_header`) whose header holds its SeriesInstanceUID but which is cut
    before its StructureSetROISequence (Type 1; :func:`_rtstruct_facts` cannot read it): a file cut short, not one
    without frame of reference (QA: LUNG1-003's RTSTRUCT cut at 1100 bytes, after its SeriesInstanceUID, was said to
    carry no FrameOfReferenceUID and matched by PatientID and folder)."""
    return str(getattr(ds, "Modality", "") or "").strip() == "RTSTRUCT" and _rtstruct_facts(path) is None


def rtdose_cut_short(path: Path, ds) -> bool:
    """An RTDOSE (header ``ds`` read by :func:`_header`) whose header holds its SeriesInstanceUID but whose file ends
    between two elements before its pixel data (:func:`read_to_end` finds no element cut in two): no PixelData while
    its header describes a dose grid (Rows / Columns) or holds no DVHs either - a file cut short (an RTDOSE holds a
    dose grid or DVHs, its PixelData last).  A DVH-only RTDOSE (no grid, a DVHSequence) is not.  QA dose65: an RTDOSE
    cut 72 bytes after its SeriesInstanceUID was "1 RTDOSE" in ``dicom-scan``, said to carry no FrameOfReferenceUID
    (matched by PatientID and folder), and ``lungai cohort`` failed the patient as "has no DoseUnits ... (DoseUnits
    is a mandatory tag)"; cut just before its pixel data, "1 RTDOSE" refused by cohort only."""
    if str(getattr(ds, "Modality", "") or "").strip() != "RTDOSE":
        return False
    from lungai.dicom.pixeldata import dcmread_lenient
    from lungai.dose.read import has_dose_grid

    try:        # the pixel data's value not read (a 24-50 MB grid): its element found or not
        full = dcmread_lenient(path, defer_size=1024)
    except Exception:  # noqa: BLE001 - damaged otherwise: its reader says why
        return False
    return _PIXEL_DATA not in full and (has_dose_grid(full) or not full.get("DVHSequence"))


def rt_cut_short(path: Path, ds) -> bool:
    """An RTSTRUCT or RTDOSE whose header reads whole but which was cut short between its elements
    (:func:`rtstruct_cut_short`, :func:`rtdose_cut_short`)."""
    return rtstruct_cut_short(path, ds) or rtdose_cut_short(path, ds)


# the modalities whose header read by scan must hold a SeriesInstanceUID, or it is cut short (cut_short_header)
SERIES_REQUIRED = ("CT", "RTSTRUCT", "RTDOSE", "SEG")


DICOMDIR_CLASS = "1.2.840.10008.1.3.10"     # Media Storage Directory Storage: a DICOMDIR (no Modality)
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"     # RT Dose Storage: an RTDOSE


def rtdose_class(ds) -> bool:
    """Whether a header's SOPClassUID, or its file meta's MediaStorageSOPClassUID, is RT Dose Storage: an RTDOSE even
    when cut short before its Modality (an interrupted copy ending before its SOPInstanceUID still holds both).  The
    one test of :func:`cut_short_at` (``dicom-scan``, cohort's scan) and :mod:`lungai.dose.read` (``--dose FOLDER``):
    QA cohortfollow66, such a file was "truncated or damaged; it may be this patient's RTSTRUCT, RTDOSE or CT slice"
    to the scan, alone in the patient's folder "0 RTDOSE; missing RTDOSE", while ``--dose`` knew it an RTDOSE."""
    classes = (header_text(ds, "SOPClassUID"), header_text(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID"))
    return RT_DOSE_STORAGE in classes


# CT Image Storage, Enhanced CT Image Storage, Legacy Converted Enhanced CT Image Storage
CT_IMAGE_CLASSES = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2")

# the Modality a SOP class stands for, of the files an export's patient is made of (RTPLAN: a sum of BEAM doses needs
# it); a header cut short before its Modality still says what it is by its SOP class (sop_class_modality)
SOP_CLASS_MODALITIES = {**dict.fromkeys(CT_IMAGE_CLASSES, "CT"),
                        "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",      # RT Structure Set Storage
                        RT_DOSE_STORAGE: "RTDOSE",
                        "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",        # RT Plan Storage
                        "1.2.840.10008.5.1.4.1.1.66.4": "SEG"}            # Segmentation Storage


def sop_class_modality(ds) -> str:
    """The Modality a header's SOPClassUID, else its file meta's MediaStorageSOPClassUID, stands for
    (:data:`SOP_CLASS_MODALITIES`: CT, RTSTRUCT, RTDOSE, RTPLAN, SEG), "" for another or none.  What a file cut short
    before its Modality is (:func:`cut_short_at`; an interrupted copy ending before its SOPInstanceUID still holds both
    UIDs): QA cohort67, LUNG1-003's RTSTRUCT or a CT slice cut so was "truncated or damaged; it may be this patient's
    RTSTRUCT, RTDOSE or CT slice" to ``dicom-scan`` (the RTSTRUCT "missing RTSTRUCT"), while an RTDOSE cut alike was
    named (:func:`rtdose_class`)."""
    for uid in (header_text(ds, "SOPClassUID"), header_text(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID")):
        modality = SOP_CLASS_MODALITIES.get(uid)
        if modality:
            return modality
    return ""


def _referenced_plans(ds) -> set[str]:
    """The SOPInstanceUIDs of the RTPLANs that an RTDOSE header ``ds`` (read with :data:`_TAGS`) references
    (ReferencedRTPlanSequence); none when they cannot be read (the file is refused with its reason when its dose
    is read)."""
    try:
        return {str(getattr(r, "ReferencedSOPInstanceUID", "") or "").strip()
                for r in getattr(ds, "ReferencedRTPlanSequence", None) or []} - {""}
    except Exception:  # noqa: BLE001 - a sequence cut short fails when first read
        return set()


def contour_images(path: Path) -> set[str]:
    """The SOPInstanceUIDs of the images an RTSTRUCT's contours are drawn on (ROIContourSequence > ContourSequence >
    ContourImageSequence, Type 3): what still ties to its CT an RTSTRUCT exported without frame of reference and
    series (:func:`scan`); none when they cannot be read.  In a :func:`lungai.dicom.once.read_once` block the
    RTSTRUCT's whole read kept by the scan is used, not the file read and its contours parsed again (QA
    cohortfollow66: LUNG1-003's RTSTRUCT without frame of reference read once more for them), and they are kept."""
    import pydicom

    from lungai.dicom.once import kept, once_per_file

    def read():
        whole = kept(path, "whole")         # an RTSTRUCT's whole read, kept (as _references')
        ds = whole[0] if whole is not None and whole[1] is None and has_dicm_preamble(path) else pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["ROIContourSequence"])
        return frozenset({str(getattr(im, "ReferencedSOPInstanceUID", "") or "").strip()
                          for roi in getattr(ds, "ROIContourSequence", None) or []
                          for c in getattr(roi, "ContourSequence", None) or []
                          for im in getattr(c, "ContourImageSequence", None) or []} - {""})

    try:
        return set(once_per_file(path, "contour_images", read))
    except Exception:  # noqa: BLE001 - a file cut short: read (and refused with its reason) when it is used
        return set()


def _references(path: Path) -> tuple[set[str], set[str]]:
    """(referenced series UIDs, referenced frame-of-reference UIDs) of an RTSTRUCT or SEG (read once per file in a
    :func:`lungai.dicom.once.read_once` block: the scan, the RTSTRUCT found in a folder, the series check of each
    structure read)."""
    import pydicom

    from lungai.dicom.once import kept, once_per_file

    def read():
        whole = kept(path, "whole")         # an RTSTRUCT's whole read, kept: not parsed again (QA dicomfollow65)
        if whole is not None and whole[1] is None and has_dicm_preamble(path):
            return _references_in(whole[0])
        return _references_in(pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["ReferencedFrameOfReferenceSequence",
                                                          "ReferencedSeriesSequence", "FrameOfReferenceUID",
                                                          "StructureSetROISequence"]))

    series, frames = once_per_file(path, "references", read)
    return set(series), set(frames)


def _rtstruct_whole(path: Path) -> tuple[bool, tuple | None]:
    """(cut short, its references or None) of an RTSTRUCT that :func:`scan` lists, from one read of the whole file
    (:func:`lungai.dicom.rtstruct.read_whole`: kept in a :func:`lungai.dicom.once.read_once` block for the reading of
    its structures after the scan) - not its references read again (each read of a structure set parses all of its
    contours, ``specific_tags`` or not: ~0.09 s for LUNG1-003's).  A file damaged otherwise (the read raised):
    None."""
    from lungai.dicom.once import once_per_file
    from lungai.dicom.rtstruct import read_whole

    try:
        ds, cut = read_whole(path, force=True)
    except Exception:  # noqa: BLE001 - damaged otherwise: its reader says why
        return None
    if cut is not None:
        return True, None
    series, frames = once_per_file(path, "references", lambda: _references_in(ds))
    return False, (set(series), set(frames))


def _keep_structure_names(path: Path) -> None:
    """:func:`lungai.dicom.rtstruct.contoured_structures` of an RTSTRUCT made now, in a
    :func:`lungai.dicom.once.read_once` block (kept there, its error too, for whoever asks them later); nothing
    outside one."""
    from lungai.dicom.once import in_read_once
    from lungai.dicom.rtstruct import contoured_structures

    if in_read_once():
        with contextlib.suppress(Exception):    # kept as raised: said by whoever asks them
            contoured_structures(path)


def _references_in(ds) -> tuple[frozenset, frozenset]:
    """:func:`_references` of a data set read."""
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
    return frozenset(series), frozenset(frames)


def other_series_note(path, referenced: set, ct_series_uid: str | None, root=None) -> str | None:
    """A note when an RTSTRUCT / SEG (file ``path``, named as :func:`shown_path` names it under ``root``: two
    patients' ``RS_pet1.dcm`` told apart; referencing the series ``referenced``) in the CT's frame of reference was
    drawn on another series than the CT given (another reconstruction, a later CT in the same registration): its
    structures are placed by the frame of reference, but may not fit this CT's anatomy."""
    if not referenced or not ct_series_uid or ct_series_uid in referenced:
        return None
    return (f"{shown_path(path, root)}: the structures were drawn on series {', '.join(sorted(referenced))}, the CT "
            f"given is series {ct_series_uid} (same frame of reference: placed by it; check that they fit this CT)")


# how an RTSTRUCT matched to a CT series without referencing it was matched (Study.matched[...][0]), as the notes on
# several RTSTRUCTs say it (QA dicomnote61: one without FrameOfReferenceUID, matched by its PatientID and folder,
# was said to "share its frame of reference only")
MATCHED_BY = {"frame": "share its frame of reference only (drawn on another series)",
              "patient": "carry no FrameOfReferenceUID (matched by PatientID and folder only)"}


def matched_groups(st: Study, paths) -> list[tuple[str, list]]:
    """[(how, [paths])] of RTSTRUCTs ``paths`` of ``st`` not referencing its CT series, grouped by how they were
    matched (:data:`MATCHED_BY`: "frame" first, then "patient"), empty groups left out."""
    how = {str(p): st.matched.get(str(p), ("frame",))[0] for p in paths}
    return [(k, [p for p in paths if how[str(p)] == k]) for k in MATCHED_BY
            if any(how[str(p)] == k for p in paths)]


def matched_text(st: Study, paths, label=None) -> str:
    """"1 more share its frame of reference only (drawn on another series)[: labels]; 1 more carry no ..." of the
    RTSTRUCTs ``paths`` (:func:`matched_groups`); ``label`` (a function of a path) lists each group's files."""
    return "; ".join(f"{len(ps)} more {MATCHED_BY[k]}" + (": " + "; ".join(map(label, ps)) if label else "")
                     for k, ps in matched_groups(st, paths))


# how scan's note on RTSTRUCTs / SEGs whose CT series was not found begins (:func:`no_ct_note`)
NO_CT_SERIES = "no CT series with this frame of reference"


def no_ct_note(frame: str | None, refs: dict) -> str:
    """scan's note on the RTSTRUCTs / SEGs of a frame of reference ``frame`` whose CT series was not found: ``refs``
    {the CT series referenced ("" when none): [(file name, modality)]}, each file named with the series it references,
    and the fix."""
    said = "; ".join(f"{', '.join(n for n, _ in files)} {agree(len(files), 'references', 'reference')} CT series "
                     f"{series}" for series, files in refs.items() if series)
    kinds = sorted({m for files in refs.values() for _, m in files})
    files = sum(len(f) for f in refs.values())
    what = " and ".join(f"{k}s" if files > 1 else k for k in kinds)
    return (f"{NO_CT_SERIES} ({frame or 'none in the file'}) was found" + (f"; {said}" if said else "")
            + f" - export that CT series with the {what} (under the same folder)")


def several_rtstructs_note(st: Study, root=None) -> str | None:
    """scan's note on a CT with several RTSTRUCTs (lungai cohort replaces it by what it did with them):
    how many reference the CT series, how many share its frame of reference only (drawn on another series); when
    the choice is the user's, each is named (path under ``root``, StructureSetLabel, date, ROI count:
    :func:`_rtstruct_label`) with how to choose: ``--rtstruct FILE`` in the commands taking one RTSTRUCT, one
    RTSTRUCT per CT series in the export for lungai cohort (QA: "2 RTSTRUCTs reference this CT; choose one" named
    neither the files nor how)."""
    if len(st.rtstruct) < 2:
        return None
    if st.ct is None:   # no CT found: the CT is said missing (QA dicomfollow71: "2 RTSTRUCTs reference this CT")
        root = root if root is not None else os.path.commonpath([str(p) for p in st.rtstruct])
        listed = "; ".join(_rtstruct_label(p, root, _rtstruct_facts(p)) for p in st.rtstruct)
        return (f"{len(st.rtstruct)} RTSTRUCTs and not the CT they were drawn on (no CT series found for them): "
                f"{listed}; export the CT series they reference with them (under the same folder), then choose one - "
                f"lungai radiomics / dose-features / demo: give it with --rtstruct FILE (e.g. --rtstruct "
                f"{st.rtstruct[0]}); lungai cohort: keep one RTSTRUCT per CT series in the export (move the "
                f"{agree(len(st.rtstruct) - 1, 'other', 'others')} out of the folder)")
    direct = len(st.rtstruct_direct)
    by_frame = len(st.rtstruct) - direct
    rest = [p for p in st.rtstruct if p not in st.rtstruct_direct]
    if direct == 1 and by_frame:    # each named: which file to give (QA dicomframe61: the note named none)
        root = root if root is not None else os.path.commonpath([str(p) for p in st.rtstruct])
        chosen = st.rtstruct_direct[0]
        others = matched_text(st, rest, lambda p: _rtstruct_label(p, root, _rtstruct_facts(p)))
        return (f"1 RTSTRUCT references this CT: {_rtstruct_label(chosen, root, _rtstruct_facts(chosen))}; "
                f"{others}; lungai radiomics / dose-features / demo: give it with --rtstruct FILE (--rtstruct "
                f"{chosen}); lungai cohort uses the one referencing this CT")
    if direct > 1 or not by_frame:
        what = f"{direct} RTSTRUCTs reference this CT" + (f" ({matched_text(st, rest)})" if by_frame else "")
        choice = st.rtstruct_direct if direct > 1 else st.rtstruct
    else:
        groups = matched_groups(st, rest)
        what = (f"{by_frame} RTSTRUCTs share this CT's frame of reference (none references this CT series)"
                if [k for k, _ in groups] == ["frame"] else
                f"{by_frame} RTSTRUCTs are matched to this CT, none references this CT series "
                f"({matched_text(st, rest).replace(' more ', ' ')})")
        choice = st.rtstruct
    root = root if root is not None else os.path.commonpath([str(p) for p in choice])
    listed = "; ".join(_rtstruct_label(p, root, _rtstruct_facts(p)) for p in choice)
    return (f"{what}: {listed}; choose one - lungai radiomics / dose-features / demo: give it with --rtstruct FILE "
            f"(e.g. --rtstruct {choice[0]}); lungai cohort: keep one RTSTRUCT per CT series in the export (move the "
            f"{agree(len(choice) - 1, 'other', 'others')} out of the folder)")


# how the note of an RTDOSE / RTSTRUCT / SEG without FrameOfReferenceUID that matches no CT begins after its name
# (frameless_ct; lungai cohort repeats it on the patient's CT row)
FRAMELESS = ("carries no FrameOfReferenceUID (a mandatory tag: removed by an anonymiser or a converter?), so "
             "it cannot be matched to a CT series by its frame of reference")
FRAMELESS_DOSE = FRAMELESS


def frameless_fix(modality: str, folder: bool = True) -> str:
    """The fix of an RTDOSE / RTSTRUCT / SEG without FrameOfReferenceUID matched to no CT (:func:`frameless_ct`);
    ``folder`` False: of one that references a CT series / slices not found (the patient's folder does not help)."""
    what = "planned" if modality == "RTDOSE" else "drawn"
    tag = " (its ReferencedFrameOfReferenceSequence)" if modality == "RTSTRUCT" else ""
    return (f"re-export the {modality} with its FrameOfReferenceUID{tag} from the planning system"
            + (f", or put it in the folder of the CT series it was {what} on (with that patient's PatientID)" if folder
               else ""))


FRAMELESS_DOSE_FIX = frameless_fix("RTDOSE")


def frameless_note(modality: str, path: Path, ds, root) -> str:
    """The note on the CT series that :func:`frameless_ct` matched a file without FrameOfReferenceUID to."""
    what = "the dose was planned" if modality == "RTDOSE" else "its contours were drawn"
    return (f"{modality} {shown_path(path, root)} carries no FrameOfReferenceUID: matched to this CT series by its "
            f"PatientID {patient_id_of(ds)} and its folder only; make sure {what} on this CT (the {modality} as "
            "exported by the planning system, with its FrameOfReferenceUID, lets lungai check it)")


def frameless_ct(path: Path, ds, studies: list, root, modality: str = "RTDOSE",
                 references: str = "") -> tuple[list, str]:
    """([the CT study], "") of an RTDOSE / RTSTRUCT / SEG (``modality``; file ``path``, header ``ds``) without
    FrameOfReferenceUID that references no CT series or slice - which lungai dose-features uses with a note
    (:func:`lungai.dose.read.uncompared_frame_note`) - matched otherwise: a CT series of its PatientID whose
    patient's folder (the folder above the CT series' folder, ``root`` at most) holds the file, the nearest by
    folder when the patient has several; else ([], the note saying why it matches no CT, with the fix: no
    PatientID, no CT of it, not in its folder, several as near).  ``references``: what the file was searched for
    besides (an RTSTRUCT's ", nor by a CT series or slice it references (it references none)").  QA cohortframe60:
    such an RTDOSE of LUNG1-003 beside its CT was said to lie "in another frame of reference ... computed on another
    CT" and the patient got no dose features; QA dicomframe61: the same of such an RTSTRUCT, whose contours were
    then replaced by automatic ones."""
    root = Path(root)
    patient = patient_id_of(ds)
    why = ""
    if not patient:
        why = "nor by its PatientID (it carries none)"
    own = [st for st in studies if st.ct is not None and st.patient_id.strip() == patient] if patient else []
    if patient and not own:
        why = f"and no CT series of its PatientID {patient} was found"

    def depth(a: Path, b: Path) -> int:
        return len(Path(os.path.commonpath([str(a), str(b)])).parts)

    def home(folder: Path) -> Path:            # the patient's folder of a CT series' folder
        return folder if folder == root or folder.parent == folder else folder.parent

    near = [(max(depth(path.parent, f) for f in st.ct.folders), st) for st in own
            if any(path.parent == home(f) or home(f) in path.parents for f in st.ct.folders)]
    if own and not near:
        why = (f"and it does not lie in the folder of a CT series of its PatientID {patient} "
               f"({', '.join(shown_path(home(f), root) for st in own for f in st.ct.folders)})")
    best = max((d for d, _ in near), default=0)
    chosen = [st for d, st in near if d == best]
    if len(chosen) > 1:
        why = (f"and {len(chosen)} CT series of its PatientID {patient} lie as near to it (series "
               f"{', '.join(st.ct.series_uid for st in chosen)})")
    if why:
        return [], f"{modality} {shown_path(path, root)} {FRAMELESS}{references}, {why} - {frameless_fix(modality)}"
    return chosen, ""


def shown_path(path, root) -> str:
    """``path`` as messages name it: relative to the folder ``root`` that was given when below it (two ``RD.dcm``
    in ``plan1/`` and ``plan2/`` told apart), else as it is."""
    if root is None:
        return str(path)
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def shown_paths_in(text: str, root) -> str:
    """``text`` (a message) with the paths under the folder ``root`` named by their path under it, as
    :func:`shown_path` names them (``/data/export/P1/RTSTRUCT/RS.dcm`` -> ``P1/RTSTRUCT/RS.dcm``): a message of a
    function given the full path said beside the notes that name it under the root.  A path is one starting at the
    text's start or after a space, bracket, quote, comma or ``=``; ``root`` itself stays as it is."""
    import re

    if not root:
        return text
    prefix = str(root).rstrip("/\\") + os.sep
    return re.sub(r"(?:(?<=^)|(?<=[\s(\[\"'=,]))" + re.escape(prefix), "", text)


def _slice_problem(slices: list, ds, uid: str, root=None, gap: list | None = None) -> str | None:
    """Why the CT series cannot be read (a slice without position, mixed orientations: :func:`check_slice_headers`;
    a slice without PixelSpacing: :func:`check_pixel_spacing`; a MONOCHROME1 slice: :func:`check_photometric`;
    a slice without usable rescale tags among rescaled slices: :func:`check_rescale`; an Enhanced CT's frames that
    are no regular volume in slice order: :func:`check_enhanced_frames`; a missing slice, duplicate positions,
    irregular steps, a gantry tilt:
    :func:`lungai.io.validate.check_slice_positions`, :func:`~lungai.io.validate.check_steps_along_normal`), or
    None.  ``slices``: (file, ImagePositionPatient or None, ImageOrientationPatient or None, has PixelSpacing,
    PhotometricInterpretation or None, (RescaleIntercept, RescaleSlope) as read, None when absent) per file;
    ``root``: the folder scanned (slices named by their path under it); ``gap``: a list given gets the refusal of
    slices missing (:func:`_connect_gaps` tells it with the study's unreadable files)."""
    from lungai.io.validate import (MissingSlicesError, SpacingChangeError, check_slice_positions,
                                    check_steps_along_normal, slice_offsets)

    files, positions = [sl[0] for sl in slices], [sl[1] for sl in slices]
    try:
        check_slice_headers(files, positions, [sl[2] for sl in slices], f"CT series {uid}")
        if len(slices) > 1 or frames_of(ds) == 1:   # an Enhanced CT's spacing is in its functional groups
            check_pixel_spacing(files, [sl[3] for sl in slices], f"CT series {uid}")
        check_photometric(files, [sl[4] for sl in slices], f"CT series {uid}")
        check_rescale(files, [sl[5] for sl in slices], positions, f"CT series {uid}", root,
                      ds.get("ImageOrientationPatient"))
    except InputError as exc:
        return f"{exc.problem} - {exc.fix}"
    if len(slices) == 1 and frames_of(ds) > 1:     # an Enhanced CT: its frames' positions, in its functional groups
        from lungai.dicom.pixeldata import dcmread_lenient

        try:
            check_enhanced_frames(dcmread_lenient(files[0], stop_before_pixels=True), f"CT series {uid}")
        except InputError as exc:
            return f"{exc.problem} - {exc.fix}"
        except Exception:  # noqa: BLE001 - a header that cannot be read whole: read_ct says why
            return None
        return None
    if len(slices) < 2 or "ImageOrientationPatient" not in ds:
        return None
    try:
        offsets, axis = slice_offsets(positions, ds.ImageOrientationPatient)
        check_slice_positions(offsets, f"CT series {uid}", axis)
        check_steps_along_normal(positions, ds.ImageOrientationPatient, f"CT series {uid}")
    except InputError as exc:
        if gap is not None and (isinstance(exc, MissingSlicesError) or
                                isinstance(exc, SpacingChangeError) and exc.could_be_missing):
            gap.append(exc)
        return f"{exc.problem} - {exc.fix}"
    return None


def check_root(root) -> Path:
    """``root`` as a Path, refused (InputError) when it is not a folder - checked before a scan's progress bar is
    drawn (QA inputfollow65: ``lungai cohort /nonexistent`` drew "scanning DICOM: 0it" before the error)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder", "give the folder holding the DICOM export (any sub-folder layout)")
    return root


def files_under(root, left_out: dict | None = None) -> list[Path]:
    """The files under ``root`` (hidden ones left out), sorted.  Folder links are followed (an export may link
    a patient's folders from elsewhere), each real folder once: a link cycle ends, a folder linked twice is
    read once.

    lungai's own derived results are no input: the SEG / RTSTRUCT / SR files a ``.lungai-*`` marker of ``segment``,
    ``lungs``, ``dicom-export`` or ``demo`` records in its folder, still as written
    (:func:`lungai.io.outputs.derived_dicom_outputs`), are left out - lungai's RTSTRUCT written into a patient's
    folder never makes a second RTSTRUCT of the CT.  Nothing else is: DICOM that lungai writes as an input
    (``sample --dicom``), files in subfolders, a file the user replaced since.  ``left_out``: filled with {folder:
    (DICOM files left out there, marker names)} (:func:`own_outputs_note`)."""
    import os

    from lungai.io.outputs import derived_dicom_outputs

    seen, found = set(), []
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        own = derived_dicom_outputs(Path(folder)) if any(f.startswith(".lungai-") for f in files) else {}
        dirs.sort()
        found += [Path(folder) / f for f in files
                  if not f.startswith(".") and f not in own and os.path.isfile(os.path.join(folder, f))]
        dicom = [f for f in own if f.lower().endswith(".dcm") or looks_dicom(Path(folder) / f)]
        if left_out is not None and dicom:
            left_out[Path(folder)] = (len(dicom), sorted({own[f] for f in dicom}))
    return sorted(found)


# image files a DICOM scan never reads, though one may be a patient's CT (a converted patient beside the export)
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE_FILES_SHOWN = 3       # of them named in the note, the rest counted
# the command that takes such images (with their masks) where the DICOM commands take an export
IMAGES_FIX = ("compute their features with `lungai radiomics-batch MANIFEST` (a row per case: case, image, mask, label; "
              "docs/radiomics.md, Manifest), or export the CT and its contours as DICOM")


def image_files(files) -> list[Path]:
    """The NIfTI / NRRD / MetaImage files of ``files`` (:data:`IMAGE_SUFFIXES`, letter case ignored)."""
    return [Path(f) for f in files if str(f).lower().endswith(IMAGE_SUFFIXES)]


def unread_images(files, root) -> list[Path]:
    """The NIfTI / NRRD / MetaImage files of ``files`` (under ``root``) that may be a patient's images: lungai's own
    outputs among them - listed, unchanged, in a ``.lungai-*`` marker of their folder or of a folder above them
    under ``root`` (a ``lungai segment`` / ``lungs`` result folder, a cohort's ``-o`` folder:
    :func:`lungai.io.outputs.lungai_written`) - left out (QA newfollow66)."""
    from lungai.io.outputs import lungai_written

    images = image_files(files)
    own = lungai_written(images, root) if images else set()
    return [p for p in images if p not in own]


def unread_images_note(files, root, command: str) -> str | None:
    """The note naming the NIfTI / NRRD / MHA files among ``files`` (those under ``root``, :func:`files_under`) that
    ``lungai <command>`` does not read - a scan reads DICOM only -, with the command that takes them; None when there
    are none.  lungai's own results there are no patient's images and are not named (:func:`unread_images`).
    QA newuser66: ``lungai cohort`` of a folder holding LUNG1-003 as DICOM and LUNG1-002 as NIfTI processed
    LUNG1-003 alone without a word of the NIfTI files, and called LUNG1-002's clinical row "not in the export (no
    imaging)"."""
    images = unread_images(files, root)
    if not images:
        return None
    n = len(images)
    shown = ", ".join(shown_path(p, root) for p in images[:IMAGE_FILES_SHOWN])
    if n > IMAGE_FILES_SHOWN:
        shown += f" and {n - IMAGE_FILES_SHOWN} more"
    where = {"cohort": "a patient whose CT is one of them is not in the cohort",
             "dicom-scan": "a patient whose CT is one of them is not listed"}.get(command, "they are not used")
    kinds = "CT series, RTSTRUCT, RTDOSE" + (", SEG" if command == "dicom-scan" else "")
    return (f"{counted(n, 'image file')} under {root} {agree(n, 'is', 'are')} not DICOM and not read ({shown}): "
            f"lungai {command} reads DICOM exports only ({kinds}), so {where} - {IMAGES_FIX}")


def own_outputs_note(folder: Path, n: int, markers) -> str:
    """The note naming lungai's own DICOM outputs left out of a scan (:func:`files_under`)."""
    return (f"left out {n} DICOM file{'s' if n != 1 else ''} lungai wrote in {folder} (its own outputs, recorded in "
            f"{', '.join(markers)}): copy one elsewhere to use it as an input")


def scan(root, progress=None, files=None, structures: bool = False, left_out: dict | None = None) -> list[Study]:
    """All studies under ``root`` (files in any folder layout, folder links followed), sorted by patient ID and
    folder (:func:`study_order`).

    ``progress``: an object with ``update(n=1, message=None)`` (see :mod:`lungai.progress`), one step per file.
    ``files``: the files to read (default :func:`files_under` ``root``; e.g. a bounded search, or the files a caller
    listed to count its progress bar's steps: the folder walked once, QA cohortread66).  ``left_out``: with ``files``,
    the lungai outputs :func:`files_under` left out of them (its ``left_out``), said on the studies as when the scan
    lists the files itself.
    ``structures``: in a :func:`lungai.dicom.once.read_once` block, each RTSTRUCT's contoured structures
    (:func:`lungai.dicom.rtstruct.contoured_structures`, a few names kept for every file) taken from its whole read
    here, while the block still keeps it - for a caller that asks them of every patient after the scan (``lungai
    cohort``'s planning: QA dicomfollow65, the block keeping one file's read, each patient's RTSTRUCT was read whole
    again by the planning but the last one's).
    """
    from lungai.dicom.once import in_read_once

    root = check_root(root)
    ct_files: dict[str, list] = defaultdict(list)
    ct_slices: dict[str, list] = defaultdict(list)
    ct_heads: dict[str, list] = defaultdict(list)
    others: list[tuple[str, Path, object]] = []
    unreadable: list[Path] = []
    rtplans: list[tuple[str, Path, str]] = []      # (PatientID, file, SOPInstanceUID)
    dose_plans: dict[str, set[str]] = {}            # RTDOSE file: the RTPLANs it references (SOPInstanceUIDs)
    references: dict[Path, tuple] = {}             # RTSTRUCT file: (series, frames) it references
    own_left_out: dict = {} if left_out is None else left_out
    for path in (files_under(root, own_left_out) if files is None else files):
        ds = _header(path, rtstruct_head=True)      # an RTSTRUCT's contours parsed once, by its whole read below
        if progress is not None:
            progress.update(1, path.name)
        whole = None
        if ds is not None and str(getattr(ds, "Modality", "")) == "RTSTRUCT" and \
                (whole := _rtstruct_whole(path)) is None:
            ds = _header(path)      # its whole read failed: its header read in full, refused or not as it was
            whole = (False, None)
        if (ds is None or cut_short_header(ds)) and looks_dicom(path):  # a truncated / half-written file: said,
            unreadable.append(path)                                         # never dropped silently
            ds = None
        if ds is None or "Modality" not in ds:
            continue
        modality = str(ds.Modality)
        if modality == "CT" and "SeriesInstanceUID" in ds:
            ct_files[str(ds.SeriesInstanceUID)].append(path)
            ct_slices[str(ds.SeriesInstanceUID)].append((path, ds.get("ImagePositionPatient"),
                                                        ds.get("ImageOrientationPatient"), "PixelSpacing" in ds,
                                                        ds.get("PhotometricInterpretation"),
                                                        (ds.get("RescaleIntercept"), ds.get("RescaleSlope"))))
            ct_heads[str(ds.SeriesInstanceUID)].append(ds)
        elif modality == "RTSTRUCT" and whole[0] or \
                modality in ("SEG", "RTDOSE") and (ends_inside(path, pixels=modality != "RTDOSE")
                                                   or rtdose_cut_short(path, ds)):
            unreadable.append(path)     # its header whole, its contours / segments / dose cut short: said, never listed
            #                             as a file to use (QA dicomfollow64: LUNG1-003's SEG cut inside its frames or
            #                             pixel data was "1 SEG", its reader then failing; QA dosecut64: an RTDOSE cut
            #                             inside its pixel data "1 RTDOSE", refused by cohort only).  An RTDOSE's pixel
            #                             data is not read: its declared length against the file's size; one ending
            #                             between its elements before its pixel data: rtdose_cut_short (QA dose65)
        elif modality in ("RTSTRUCT", "RTDOSE", "SEG"):
            others.append((modality, path, ds))
            if modality == "RTSTRUCT" and whole[1] is not None:
                references[path] = whole[1]     # of the whole file read just above: not read again
                if in_read_once():      # its facts kept from that read, for naming it beside another RTSTRUCT
                    _rtstruct_facts(path)
            if modality == "RTSTRUCT" and structures:
                _keep_structure_names(path)
            if modality == "RTDOSE":
                dose_plans[str(path)] = _referenced_plans(ds)
        elif modality == "RTPLAN":
            rtplans.append((str(getattr(ds, "PatientID", "") or "unknown"), path,
                            str(getattr(ds, "SOPInstanceUID", "") or "").strip()))

    studies: list[Study] = []
    by_series: dict[str, Study] = {}
    by_frame: dict[str, list[Study]] = defaultdict(list)
    skipped: list[tuple[object, str]] = []
    from lungai.dicom.pixeldata import drop_slice_copies

    for uid, all_files in ct_files.items():
        files, scouts = split_localizers(all_files, ct_heads[uid])   # a scout inside the CT's own series
        copy_notes: list = []
        sops = [str(getattr(d, "SOPInstanceUID", "") or "").strip() for f, d in zip(all_files, ct_heads[uid])
                if f in files]
        if len(set(sops)) < len(sops):  # a slice copied twice (one SOPInstanceUID) is one slice: the intact copy
            try:
                files, copy_notes = drop_slice_copies(files, root)
            except InputError as exc:   # two different intact copies: kept, the patient fails (cohort's planning)
                copy_notes = [f"{exc.problem} - {exc.fix}"]
        mixed = mixed_patient_ids(uid, all_files, ct_heads[uid], root)   # before copies are dropped by UID
        dropped = set(all_files) - set(files)
        heads = [d for f, d in zip(all_files, ct_heads[uid]) if f not in dropped]
        slices = [sl for sl in ct_slices[uid] if sl[0] not in dropped]
        ds = heads[0]
        reason = ct_skip_reason(ds, len(files))
        if reason:
            skipped.append((ds, skipped_ct_note(uid, files, reason)))
            continue
        folders = sorted({f.parent for f in files})
        st = Study(patient_id=str(getattr(ds, "PatientID", "") or "unknown"),
                   study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                   frame_of_reference_uid=str(getattr(ds, "FrameOfReferenceUID", "")) or None,
                   ct=CTSeries(uid, folders[0], sorted(files), frames_of(ds) if len(files) == 1 else 1,
                               series_description(ds)))
        date = str(getattr(ds, "StudyDate", "") or "").strip()
        st.ct.study_date = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 and date.isdigit() else date
        frames = [frames_of(d) for d in heads]
        if mixed:
            st.conflict = [mixed, MIXED_PATIENT_FIX]
            st.notes.append(mixed)
        if scouts:
            st.notes.append(localizer_note(scouts, f"CT series {uid}"))
        st.notes.extend(copy_notes)
        try:
            check_multiframe_files(files, frames, f"CT series {uid}")
        except InputError as exc:
            st.ct.total_frames = sum(frames)
            st.notes.append(f"{exc.problem} - {exc.fix}")
            slices = []     # its files have no per-file ImagePositionPatient: no slice check
        if len(folders) > 1:
            st.notes.append(f"CT series {uid} is spread over {len(folders)} folders ({', '.join(map(str, folders))}): "
                            "lungai cohort reads them all; other commands given one folder read that folder's "
                            "slices only")
        gap: list = []
        problem = _slice_problem(slices, ds, uid, root, gap) if slices else None
        if problem:
            st.notes.append(problem)
            st.gap = (problem, gap[0]) if gap else None
        studies.append(st)
        by_series[uid] = st
        if st.frame_of_reference_uid:
            by_frame[st.frame_of_reference_uid].append(st)

    orphans: dict[tuple, Study] = {}
    orphan_refs: dict[tuple, dict] = {}     # {orphan's key: {the CT series referenced: [(file name, modality)]}}
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
    sop_series = {str(getattr(d, "SOPInstanceUID", "") or "").strip(): uid for uid in by_series for d in ct_heads[uid]}
    for modality, path, ds in others:
        if modality == "RTDOSE":
            series, frames = set(), {str(ds.FrameOfReferenceUID)} if "FrameOfReferenceUID" in ds else set()
        else:
            series, frames = references[path] if path in references else _references(path)
        if modality == "RTSTRUCT" and not series and not frames and rtstruct_cut_short(path, ds):
            unreadable.append(path)         # cut before its references: a file cut short, said so, not "frameless"
            continue
        targets = [by_series[s] for s in series if s in by_series]
        how = "series"
        images: set = set()
        if not targets and not frames and modality == "RTSTRUCT":
            # no frame of reference (nor a series found): the CT series whose slices its contours reference
            images = contour_images(path)
            drawn_on = sorted({sop_series[i] for i in images if i in sop_series})
            hit = sum(i in sop_series for i in images)
            if len(drawn_on) == 1:
                targets, series = [by_series[drawn_on[0]]], series | set(drawn_on)
                targets[0].notes.append(
                    f"RTSTRUCT {shown_path(path, root)} carries no FrameOfReferenceUID (nor a reference to this CT "
                    f"series): matched to it by the CT slices its contours reference ({hit} of this series' slices"
                    + (f"; {len(images) - hit} more in no CT series found" if hit < len(images) else "") + ")")
        if not targets:
            targets = [st for f in frames for st in by_frame.get(f, [])]
            how = "frame"
            for st in targets:
                note = other_series_note(path, series, st.ct.series_uid if st.ct else None, root)
                if note:
                    st.notes.append(note)
        unmatched = ""
        if not targets and not frames and not series and not images:
            # no FrameOfReferenceUID, no CT series / slice referenced: its patient's CT by PatientID and folder
            targets, unmatched = frameless_ct(path, ds, studies, root, modality, "" if modality == "RTDOSE" else
                                              ", nor by a CT series or slice it references (it references none)")
            how = "patient"
            for st in targets:
                st.notes.append(frameless_note(modality, path, ds, root))
        elif not targets and not frames:    # it references a CT series / slices, none found (or of several series)
            found = sorted({sop_series[i] for i in images if i in sop_series})
            where = (f"the CT series it references ({', '.join(sorted(series))}) was not found" if series else
                     f"the {counted(len(images), 'CT slice')} its contours reference "
                     f"{agree(len(images), 'lies', 'lie')} in {len(found)} CT series "
                     f"({', '.join(found)})" if found else
                     ("the CT slice its contours reference is in no CT series found" if len(images) == 1 else
                      f"none of the {len(images)} CT slices its contours reference is in a CT series found"))
            unmatched = (f"{modality} {shown_path(path, root)} {FRAMELESS}, and {where} - export the CT series it "
                         f"was drawn on with it (under the same folder), or {frameless_fix(modality, folder=False)}")
        if not targets:
            key = (str(getattr(ds, "PatientID", "") or "unknown"), next(iter(sorted(frames)), None))
            st = orphans.get(key)
            if st is None:
                st = orphans[key] = Study(patient_id=key[0], study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                                          frame_of_reference_uid=key[1])
                studies.append(st)
            if unmatched:       # said of each such RTDOSE (and on its patient's CT row by lungai cohort)
                st.notes.append(unmatched)
            elif st.ct is None:
                # which CT is missing (the series each RTSTRUCT / SEG references, the frame of reference) and the
                # fix; each file named (QA dicomfollow71: of two RTSTRUCTs without their CT, the note named one)
                refs = orphan_refs.setdefault(key, {})
                refs.setdefault(", ".join(sorted(series)), []).append((path.name, modality))
                st.notes = [n for n in st.notes if not n.startswith(NO_CT_SERIES)]
                st.notes.insert(0, no_ct_note(key[1], refs))
            targets = [st]
        for st in targets:
            getattr(st, modality.lower()).append(path)
            other_id = patient_id_of(ds)
            if st.ct is not None and other_id and other_id != st.patient_id.strip():
                st.notes.append(f"{modality} {shown_path(path, root)} has PatientID '{other_id}', this CT "
                                f"'{st.patient_id.strip()}': matched by its UIDs ("
                                + ("the CT series it references" if how == "series" else "the frame of reference")
                                + ") - check that it is this patient's")
            if modality != "RTDOSE" and st.ct is not None:
                st.matched[str(path)] = (how, sorted(series))
    for st in studies:
        # the patient's RTPLANs, and one of another PatientID that its RTDOSEs reference by SOPInstanceUID (a plan
        # anonymised separately: the beam check says the PatientIDs differ)
        # (every file of one SOPInstanceUID: the beam check compares them)
        st.rtplan = [path for patient, path, _ in rtplans if patient == st.patient_id]
        others_by_uid: dict[str, list[Path]] = defaultdict(list)
        for patient, path, uid in rtplans:
            if uid and patient != st.patient_id:
                others_by_uid[uid].append(path)
        if others_by_uid and st.rtdose:
            wanted = set().union(*(dose_plans.get(str(p), set()) for p in st.rtdose))
            st.rtplan += [p for u in sorted(wanted) for p in others_by_uid.get(u, [])]
    _attach_unreadable(studies, unreadable, root)
    _connect_gaps(studies, root)        # a slice missing and a file cut short: said to be most likely that slice
    for folder, (n, markers) in own_left_out.items():   # said on the studies nearest the folder, never silently
        def near(st) -> int:
            fs = [Path(f).parent for f in (st.ct.files if st.ct else [])] + [Path(f).parent for f in
                                                                              (*st.rtstruct, *st.rtdose, *st.seg)]
            return max((len(Path(os.path.commonpath([str(folder), str(f)])).parts) for f in fs), default=0)
        best = max((near(st) for st in studies), default=0)
        for st in [st for st in studies if near(st) == best]:
            st.notes.append(own_outputs_note(folder, n, markers))
    for st in studies:   # an RTDOSE on this CT by its frame of reference only, the plan's RTSTRUCT on another series
        if st.ct is None or not st.rtdose or st.rtstruct_direct:
            continue
        for other in by_frame.get(st.frame_of_reference_uid, []):
            shared = [p.name for p in st.rtdose if p in other.rtdose]
            if other is not st and shared and other.rtstruct_direct:
                st.notes.append(f"RTDOSE {', '.join(shared)} is matched to this CT series only by its frame of "
                                f"reference: CT series {other.ct.series_uid} ({other.ct.n_slices} slices) of the same "
                                f"frame of reference has the RTSTRUCT {other.rtstruct_direct[0].name} (it references "
                                "that series): the plan was most likely made on it - use that series' row for the "
                                "dose metrics")
                break
    for st in studies:
        note = several_rtstructs_note(st, root)
        if note:
            st.notes.append(note)
        if len(st.rtdose) > 1:
            # lungai cohort / dicom-scan replace it by the dose chosen (lungai.dicom.cohort.SEVERAL_RTDOSES)
            st.notes.append(f"{len(st.rtdose)} RTDOSEs share this frame of reference (several plans or beams?)")
    return sorted(studies, key=study_order)


def study_order(st: Study) -> tuple:
    """The order :func:`scan` lists a patient's studies in, and so ``lungai cohort`` numbers the rows of a patient
    with several CT series (``P_1``, ``P_2``: :func:`lungai.dicom.cohort.ct_cases`): by PatientID, then by the folder
    of the study's files (its CT series', else its RT objects') as the folders are walked, then by StudyInstanceUID.
    QA cohortfollow71: by StudyInstanceUID first, LUNG1-003 re-exported under new UIDs beside the original became
    LUNG1-003_1 and the original LUNG1-003_2 - an order the user cannot see."""
    files = st.ct.files if st.ct else [*st.rtstruct, *st.rtdose, *st.seg, *st.unreadable]
    return (st.patient_id, min((Path(f).parent.parts for f in files), default=()), st.study_uid, st.ct is None,
            st.ct.series_uid if st.ct else "")


RTSTRUCT_UNREADABLE = "unreadable (truncated?)"


def _rtstruct_facts(path: Path):
    """(label, date, ROI count, referenced series UIDs, referenced frames) of an RTSTRUCT found by
    :func:`find_rtstruct`, or None when it cannot be read as one (a truncated / half-written file: its header may
    read, its StructureSetROISequence or references not).  Kept for every file of a :func:`lungai.dicom.once.read_once`
    block (a few strings), made by :func:`scan` from its whole read: a study of several RTSTRUCTs names them all
    (:func:`several_rtstructs_note`, ``lungai cohort``'s choice) without reading each whole again once the block has
    dropped its read (QA cohortread66: LUNG1-003's RTSTRUCT and a copy of it, each read whole twice more)."""
    from lungai.dicom.once import once_per_file

    return once_per_file(path, "facts", lambda: _read_facts(path))


def _read_facts(path: Path):
    """:func:`_rtstruct_facts`' work."""
    try:
        ds = _kept_whole(path)
        if ds is None:
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["StructureSetLabel", "StructureSetDate", "StructureSetROISequence"])
        if "StructureSetROISequence" not in ds:          # type 1 in an RTSTRUCT: missing, the file is cut short
            return None
        label = str(getattr(ds, "StructureSetLabel", "") or "").strip() or "no label"
        date = str(getattr(ds, "StructureSetDate", "") or "").strip() or "no date"
        rois = len(ds.StructureSetROISequence or [])
        series, frames = _references(path)
    except Exception:  # noqa: BLE001 - a truncated file fails in many ways: unreadable (refused with its reason alone)
        return None
    return label, date, rois, series, frames


def _kept_whole(path: Path):
    """The data set of an RTSTRUCT's whole read (:func:`lungai.dicom.rtstruct.read_whole`: in a
    :func:`lungai.dicom.once.read_once` block the scan's, kept, and kept for the reading of its structures after),
    None when that read is not the file as pydicom reads it without ``force`` (no DICOM preamble, cut short, failed)
    - its facts then read as before (QA dicomfollow65: ``lungai radiomics --rtstruct FOLDER`` parsed LUNG1-003's
    RTSTRUCT once more for them, ~0.13 s)."""
    from lungai.dicom.rtstruct import read_whole

    if not has_dicm_preamble(path):
        return None
    try:
        ds, cut = read_whole(path, force=True)
    except Exception:  # noqa: BLE001 - read again as before: refused (None) as it was
        return None
    return ds if cut is None else None


def _rtstruct_label(path: Path, root, facts) -> str:
    """An RTSTRUCT as a refusal names it: its path under ``root``, StructureSetLabel, date and ROI count."""
    if facts is None:
        return f"{shown_path(path, root)} ({RTSTRUCT_UNREADABLE})"
    label, date, rois = facts[:3]
    return f"{shown_path(path, root)} (label {label!r}, date {date}, {rois} ROI{'s' if rois != 1 else ''})"


def _identical_copies(found: list) -> dict:
    """{file kept: [its byte-identical copies]} among the RTSTRUCTs ``found`` (sorted; the first of each set kept):
    one structure set exported twice (same SOPInstanceUID, same bytes) is one RTSTRUCT, not a choice.  Files of one
    SOPInstanceUID but different bytes are not copies (an edited structure set keeps its UID)."""
    import hashlib

    def digest(p):
        try:
            return hashlib.sha256(Path(p).read_bytes()).hexdigest()
        except OSError:
            return None

    by_size: dict = defaultdict(list)
    for p in found:
        try:
            by_size[Path(p).stat().st_size].append(p)
        except OSError:
            pass
    copies: dict = {}
    for same_size in (v for v in by_size.values() if len(v) > 1):
        by_digest: dict = defaultdict(list)
        for p in same_size:
            d = digest(p)
            if d is not None:
                by_digest[d].append(p)
        for group in by_digest.values():
            if len(group) > 1:
                copies[group[0]] = group[1:]
    return copies


def _unreadable_listed(studies, folder) -> tuple[str, Path | None]:
    """The files under ``folder`` that could not be read (truncated DICOM, links to nothing), named (5 at most), and
    the first of them: ("", None) when none."""
    dangling = {p for p in Path(folder).rglob("*") if not p.name.startswith(".") and p.is_symlink() and not p.exists()}
    bad = sorted({Path(p) for st in studies for p in st.unreadable} | dangling)
    if not bad:
        return "", None
    names = ", ".join(shown_path(p, folder) + (" (a dangling link)" if p.is_symlink() and not p.exists() else "")
                      for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return f"; {counted(len(bad), 'file')} could not be read: {names}", bad[0]


def _several_ct_series(ct_path) -> list[str] | None:
    """The SeriesInstanceUIDs of the CT series of a DICOM folder ``ct_path`` that holds several (none chosen: the CT
    read refuses it, :class:`lungai.io.read.SeveralSeriesError`), else None."""
    from lungai.io.read import SeveralSeriesError, dicom_series_files

    if not Path(ct_path).is_dir():
        return None
    try:
        dicom_series_files(ct_path)
    except SeveralSeriesError as exc:
        return list(exc.series)
    except Exception:  # noqa: BLE001 - not DICOM, or unreadable: the CT read says why
        return None
    return None


def _ct_series_not_chosen(folder: Path, ct_path, several: list, found: list, facts: dict, same, own: str,
                          option: str) -> InputError:
    """The refusal of several RTSTRUCTs in ``folder`` with a CT folder of several series, none chosen (``several``:
    their UIDs): which RTSTRUCT goes with the CT depends on the series, so each RTSTRUCT is named with the series it
    was drawn on and the fix gives both (QA: the RTSTRUCTs were matched against the folder's first file's series - "2
    reference the CT series X", or "using RS_1.dcm (it references the CT series X)" - a series the user never chose,
    and the fix named no --series; the CT read then refused the folder)."""
    refs = {p: sorted(facts[p][3]) if facts[p] is not None else [] for p in found}

    def named(p) -> str:     # _rtstruct_label with the series the RTSTRUCT was drawn on
        label = _rtstruct_label(p, folder, facts[p])
        if facts[p] is None:
            return label
        ours = [u for u in refs[p] if u in several]
        return label[:-1] + (f", drawn on CT series {', '.join(ours)}" if ours else
                             f", drawn on series {', '.join(refs[p])}, not in the CT folder" if refs[p] else
                             ", no series referenced") + ")"

    listed = "; ".join(named(p) + same(p) for p in found)
    example = next(((p, u) for p in found for u in refs[p] if u in several), (found[0], several[0]))
    by_series = [f"--series {u}: {', '.join(shown_path(p, folder) for p in found if u in refs[p])}"
                 for u in several if any(u in refs[p] for p in found)]
    return InputError(
        f"{option} {folder} holds {len(found)} RTSTRUCTs and the CT {ct_path} holds {len(several)} CT series, none "
        f"chosen with --series, so which RTSTRUCT goes with the CT is ambiguous: {listed}{own}",
        f"choose the CT series with --series UID and give the RTSTRUCT drawn on it, e.g. --series {example[1]} "
        f"{option} {example[0]}" + (f" (the RTSTRUCTs drawn on each CT series: {'; '.join(by_series)})"
                                    if by_series else ""))


def find_rtstruct(path, ct_path=None, series_uid: str | None = None,
                  option: str = "--rtstruct", structures=()) -> tuple[Path, str | None]:
    """The RTSTRUCT file an ``--rtstruct FILE|FOLDER`` value stands for, and a note saying which file of a folder was
    used (None for a file, returned as given).

    A folder (an ``RTSTRUCT/`` export folder, or a patient's folder mixing CT slices, RTSTRUCT, RTPLAN, RTDOSE, with
    or without ``.dcm``) is searched by :func:`scan` (headers only, subfolders too, non-DICOM files ignored; lungai's
    own outputs left out and said: :func:`own_outputs_note`; byte-identical copies of one file are one RTSTRUCT):
    one RTSTRUCT is used; of several, the only one in the frame of reference of the CT of ``ct_path``
    (``series_uid``: the series chosen there) or referencing its series - the series reference is optional, so one
    referencing the series is not preferred to another in the CT's frame that references none; otherwise they are
    refused, each named (file, StructureSetLabel, date, ROI count; "unreadable (truncated?)"), the fix giving the
    file(s) that contour the ``structures`` the command asks for (its ``--structure`` / ``--gtv`` values: names; a
    role or a mask file chooses none), else the first file.  No RTSTRUCT: refused, saying what the folder holds and
    naming the files that could not be read."""
    folder = Path(path)
    if not folder.is_dir():
        return folder, None
    left_out: dict = {}
    files = files_under(folder, left_out)
    own = "".join(f"; {own_outputs_note(f, n, markers)}" for f, (n, markers) in left_out.items())
    studies = scan(folder, files=files)
    found = sorted({Path(p) for st in studies for p in st.rtstruct})
    copies = _identical_copies(found) if len(found) > 1 else {}
    found = [p for p in found if not any(p in dup for dup in copies.values())]

    def same(p) -> str:
        dups = copies.get(p)
        return (f"; byte-identical cop{'ies' if len(dups) > 1 else 'y'} of it, one RTSTRUCT: "
                f"{', '.join(shown_path(d, folder) for d in dups)}") if dups else ""

    cut = sorted({Path(p) for st in studies for p in st.truncated.get("RTSTRUCT", [])})
    if not found and cut:   # QA dicomfollow64: a folder of LUNG1-003's RTSTRUCT alone, cut short, was "no DICOM
        from lungai.dicom.rtstruct import TRUNCATED_FIX       # RTSTRUCT ...; found ... unknown: no CT ..."

        patients = sorted({st.patient_id.strip() for st in studies for p in st.truncated.get("RTSTRUCT", [])})
        others = sorted({Path(p) for st in studies for p in st.unreadable} - set(cut))
        raise InputError(f"{option} {folder}: no readable DICOM RTSTRUCT in this folder or its subfolders: "
                         + (f"its RTSTRUCT (patient {patients[0]}) is" if len(cut) == 1 else
                            f"its {len(cut)} RTSTRUCTs (patient{'s' if len(patients) > 1 else ''} "
                            f"{', '.join(patients)}) are")
                         + f" truncated - {unreadable_note(cut, folder, fix=False)}"
                         + (f"; {unreadable_note(others, folder, fix=False)}" if others else "") + own,
                         TRUNCATED_FIX)
    if not found:
        what = (f"{counted(len(files), 'file')}: " + "; ".join(st.summary() for st in studies) if studies
                else f"{counted(len(files), 'file')}, none a DICOM CT, RTSTRUCT, RTDOSE or SEG" if files
                else "no other files" if own else "no files")
        unreadable, example = _unreadable_listed(studies, folder)
        raise InputError(f"{option} {folder}: no DICOM RTSTRUCT (modality RTSTRUCT) in this folder or its subfolders; "
                         f"found {what}{unreadable}{own}",
                         "give the RTSTRUCT file of the plan, or the folder of the export that holds it "
                         "(re-export the structure set from the planning system if it is missing)"
                         + (f"; to see why a file cannot be read, give it alone, e.g. {option} "
                            f"{example}" if unreadable else ""))
    facts = {p: _rtstruct_facts(p) for p in found}

    def named(p) -> str:
        return shown_path(p, folder) + (f" ({RTSTRUCT_UNREADABLE})" if facts[p] is None else "")

    # files the scan could not read (an RTSTRUCT cut short in its header is no RTSTRUCT to it): said left out
    unread = [f"{shown_path(p, folder)} ({RTSTRUCT_UNREADABLE})"
              for p in sorted({Path(p) for st in studies for p in st.unreadable})]
    if len(found) == 1:
        return found[0], (f"{option} {folder}: using the RTSTRUCT {named(found[0])} (the only one there{same(found[0])}"
                          + (f"; left out: {', '.join(unread)}" if unread else "") + f"){own}")
    several = _several_ct_series(ct_path) if ct_path is not None and series_uid is None else None
    if several:
        raise _ct_series_not_chosen(folder, ct_path, several, found, facts, same, own, option)
    from lungai.dicom.reference import dicom_ct_header

    ct = dicom_ct_header(ct_path, series_uid) if ct_path is not None else None
    candidates, why = found, "the CT given is not DICOM, so none can be matched to it" if ct_path is not None \
        else "no CT given to match them to"
    if ct is not None:
        ct_series = str(getattr(ct, "SeriesInstanceUID", "") or "")
        ct_frame = str(getattr(ct, "FrameOfReferenceUID", "") or "")
        refs = {p: (f[3], f[4]) if f is not None else (set(), set()) for p, f in facts.items()}
        direct = [p for p in found if ct_series and ct_series in refs[p][0]]
        # one that names another series of the frame was drawn on that series: it does not compete with one
        # naming the CT's; one naming no series (the reference is optional) may be drawn on the CT and does
        in_frame = [p for p in found if p in direct or (ct_frame and ct_frame in refs[p][1]
                                                        and (not direct or not refs[p][0]))]
        if len(in_frame) == 1:
            # each file named as the refusals name it (label, date, ROI count), each one left out with why, and how
            # to choose another (QA dicom72: LUNG1-003's RTSTRUCT and a replan drawn on another series were said as
            # "it references the CT series X, no other is in its frame of reference without a series of its own;
            # left out: RS_b.dcm" - neither which plan each was nor how to use the other)
            chosen = in_frame[0]
            how = (f"it references the CT series {ct_series}" if direct else
                   f"it is the only one in the CT's frame of reference {ct_frame}")

            def left_out_because(q) -> str:
                series, frames = refs[q]
                return (f"in frame of reference {', '.join(sorted(frames))}, not the CT's" if ct_frame and frames
                        and ct_frame not in frames else
                        "it references no frame of reference" if not frames else
                        f"drawn on series {', '.join(sorted(series))}, another series of the CT's frame of reference")

            others = [q for q in found if q != chosen]
            left = "; ".join([(_rtstruct_label(q, folder, facts[q])[:-1] + f"; {left_out_because(q)})"
                               if facts[q] is not None else named(q)) + same(q) for q in others] + unread)
            return chosen, (f"{option} {folder} holds {len(found)} RTSTRUCTs: using the RTSTRUCT "
                            f"{_rtstruct_label(chosen, folder, facts[chosen])}{same(chosen)} - {how}; left out: {left}"
                            f" - to use another, give its file: {option} {others[0]}{own}")
        if in_frame:
            candidates = in_frame
            why = (f"{len(in_frame)} reference the CT series {ct_series}" if len(direct) == len(in_frame) else
                   f"{len(in_frame)} are in the CT's frame of reference {ct_frame}, " +
                   ("none references its series" if not direct else
                    f"{len(direct)} reference its series {ct_series}" if len(direct) > 1 else
                    "only 1 references its series (the series reference is optional: the other"
                    f"{'s' if len(in_frame) > 2 else ''} may be drawn on it too)"))
        else:
            why = "none references the CT series or its frame of reference"
    raise InputError(f"{option} {folder} holds {len(found)} RTSTRUCTs and {why}, so which one holds the plan's "
                     "contours is ambiguous: " + "; ".join(_rtstruct_label(p, folder, facts[p]) + _drawn_names(p)
                                                          + same(p) for p in candidates) + own,
                     _ambiguous_fix(option, candidates, found[0], structures))


def _ambiguous_fix(option: str, candidates, first, structures) -> str:
    """The fix of an ambiguous ``--rtstruct FOLDER``: the candidate file(s) that contour every structure name of
    ``structures`` (the command's ``--structure`` / ``--gtv`` values; roles and mask files left out), else the
    ``first`` file as an example (QA smallfix72: LUNG1-003's RTSTRUCT beside a copy without its GTVs, ``--structure
    GTV-1``: the fix gave the copy, which does not hold GTV-1)."""
    from lungai.dicom.masks import parse_spec
    from lungai.dicom.rtstruct import contoured_structures

    asked = [name for name in (parse_spec(s)[0] for s in structures if s and str(s).strip()) if name]

    def holds(path) -> bool:
        try:
            drawn = {str(n).casefold() for n in contoured_structures(path)[0]}
        except Exception:  # noqa: BLE001 - a damaged file: named by _rtstruct_label as unreadable
            return False
        return all(name.casefold() in drawn for name in asked)

    holding = [p for p in candidates if holds(p)] if asked else []
    if not holding or len(holding) == len(candidates):     # none, or each of them: the asked names choose none
        return f"give the RTSTRUCT file itself, e.g. {option} {first}"
    what = f"the RTSTRUCT file that contours {', '.join(asked)}"
    return (f"give {what}: {option} {holding[0]}" if len(holding) == 1 else
            f"give {what} itself, one of: " + ", ".join(f"{option} {p}" for p in holding))


def _drawn_names(path) -> str:
    """": contoured GTV-1, gtv-2, Lung-Left" - the structures with contours of the RTSTRUCT ``path``, as an ambiguous
    ``--rtstruct FOLDER`` names each candidate (QA dicom72: LUNG1-003's RTSTRUCT beside lungai's own rtstruct.dcm, both
    referencing the CT, were named by label, date and ROI count only - which holds the GTV-1 asked for was not
    said); "" when they cannot be read (a damaged file is named so by its label)."""
    from lungai.dicom.rtstruct import contoured_structures

    try:
        drawn = contoured_structures(path)[0]
    except Exception:  # noqa: BLE001 - a damaged file: named by _rtstruct_label as unreadable
        return ""
    return f" - contoured: {', '.join(map(str, drawn))}" if drawn else " - no structure contoured"
