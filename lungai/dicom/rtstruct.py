"""DICOM RTSTRUCT -> masks on the CT grid.

Rasterisation is hand-written (~80 lines): neither highdicom nor SimpleITK reads RTSTRUCT, and
rt-utils (OpenCV) / plastimatch would be large extra dependencies for a scanline fill:

- each closed contour's points (CLOSED_PLANAR, CLOSEDPLANAR_XOR; LPS mm) are mapped to continuous voxel indices of
  the CT;
  the contour must lie in one CT slice plane (within :data:`SLICE_TOL` slice; contours between slices or
  on an oblique plane are refused), and a structure's contour planes must be at least
  :data:`MIN_PLANE_STEP` slice apart: contours drawn on a finer grid than the CT (an RTSTRUCT of the 1.5 mm
  reconstruction on a 3 mm CT) would land two planes on one CT slice, which the even-odd rule would XOR into
  rings, so they are refused; contours of one CT slice whose planes differ by more than :data:`ONE_PLANE_MM` /
  :data:`ONE_PLANE_TOL` slice (within :data:`SLICE_TOL`) are taken only when they do not overlap (else refused,
  :func:`_fill_slice`);
- a voxel is inside when its centre is (pixel-centre rule, as plastimatch's rasteriser), and the
  contours of one slice are combined by the even-odd (XOR) rule: a contour inside another is a
  hole, a contour inside a hole is an island again (:func:`fill_even_odd`, a numpy scanline fill);
- a structure whose contours leave out a CT slice between its first and last slice, or that lies
  (partly) off the CT, is refused with an error naming it (``allow_gaps=True``, CLI ``--allow-gaps``, accepts gaps, for
  structures made of separate parts, e.g. nodes at several levels; each structure read with gaps is then said - a
  :class:`GapsAllowedNote`, printed by the CLI, kept in the patient's notes by ``lungai cohort``);
- a contour written twice on one slice (the same points) is read once and said (:class:`RepeatedContourNote`): the
  even-odd rule would XOR it with its copy and leave the slice out.
- open contours (OPEN_PLANAR / OPEN_NONPLANAR: lines) and POINT markers enclose no area: a structure is read from its
  closed contours, the open ones left out and said (:class:`OpenContourNote`), as planning systems and Slicer build
  its volume; a structure of markers or lines only encloses no volume (passed over for a role, refused when chosen).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.dicom.once import once_per_file, read_once  # noqa: F401 - read_once: this module's API (lungai.dicom.once)
from lungai.errors import InputError, InputNote, agree, check_input_file, counted

# Tolerances in voxels: a contour point's slice index must be this close to an integer (a quarter slice: float
# rounding and small offsets pass, a contour half-way between two slices does not); points may lie this far outside
# the in-plane extent (half a voxel = the image's edge).
SLICE_TOL = 0.25
EDGE_TOL = 0.5
# Contours of one structure within SLICE_TOL of one CT slice lie in its plane, others whose planes (median slice
# index) differ by at most SAME_PLANE_TOL slice lie in one plane; two different planes must be at least
# MIN_PLANE_STEP slice apart (on the CT's grid they are >= 1 slice apart), else the structure was contoured on a
# finer grid than this CT.
SAME_PLANE_TOL = 0.1
MIN_PLANE_STEP = 0.75
# Contours of one CT slice lie in one plane when their z differ by at most ONE_PLANE_MM and ONE_PLANE_TOL slice
# (whichever is smaller: 0.3 mm on a 3 mm CT, 0.1 mm on a 1 mm CT); the even-odd rule combines them (holes,
# islands).  Contours of one slice from planes further apart (within SLICE_TOL) are taken only when they do not
# overlap: two overlapping ones are two contouring planes of a finer grid, which the even-odd rule would XOR into
# rings, so they are refused (:func:`_fill_slice`).
ONE_PLANE_MM = 0.5
ONE_PLANE_TOL = 0.1
FRAME_OF_REFERENCE_TAG = "0020|0052"


class GapsAllowedNote(InputNote):
    """A structure read with CT slices left out between its first and last contour (``allow_gaps``): which one and
    where (the CLI prints it as ``note: ...``; ``lungai cohort`` keeps it in the patient's notes)."""

    LABEL = "note"


class RepeatedContourNote(InputNote):
    """A structure with a contour written twice on one CT slice (the same points: a merged or re-exported structure
    set), read once: which structure and where (printed by the CLI as ``note: ...``; ``lungai cohort`` keeps it in the
    patient's notes).  The even-odd rule would XOR the copy with its contour and leave the slice out."""

    LABEL = "note"


class OpenContourNote(InputNote):
    """A structure holding open contours (OPEN_PLANAR / OPEN_NONPLANAR: lines, e.g. an annotation drawn into a GTV)
    besides its closed ones, read from its closed contours, the open ones left out - as planning systems and Slicer
    build its volume: which structure, how many and where (printed by the CLI as ``note: ...``; ``lungai cohort``
    keeps it in the patient's notes)."""

    LABEL = "note"


def _open_kinds(open_contours) -> str:
    """'2 OPEN_PLANAR, 1 OPEN_NONPLANAR' for a structure's open contours ((type, z) pairs)."""
    kinds = [k for k, _ in open_contours]
    return ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))


class OffCTError(InputError):
    """A structure's contours that do not fit the CT (:func:`rasterise`): off its slice planes, beyond its slices or
    field of view, or on planes closer than its slices.  :func:`read_rtstruct` says it as the RTSTRUCT belonging to
    another CT when the RTSTRUCT references another CT series than the one read (:func:`drawn_elsewhere_error`,
    ``drawn_elsewhere`` True)."""

    drawn_elsewhere = False


@dataclass
class Structure:
    number: int
    name: str
    contours: list          # list of (n, 3) float arrays, LPS mm
    colour: tuple | None = None
    error: InputError | None = None   # why the structure cannot be read (raised when it is used, not on reading the file)
    frame: str | None = None          # its FrameOfReferenceUID (:func:`structure_frames`), None: not said
    points: int = 0                   # its POINT contours (markers, reference points: no area, not in contours)
    open: list = field(default_factory=list)   # its open contours (lines: no area, not in contours): (type, z mm)


def rtstruct_option(path, ct_path=None, series_uid: str | None = None, structures=()) -> tuple[Path, str | None]:
    """An ``--rtstruct FILE|FOLDER`` value as the RTSTRUCT file to read, and the note saying which file of a folder
    is used (:func:`lungai.dicom.discover.find_rtstruct`; ``ct_path`` / ``series_uid``: the CT that chooses among
    several; ``structures``: the structure names or roles the command asks for, which an ambiguous folder's fix
    chooses by) - call it before any work; a missing file is refused (:func:`check_rtstruct_path`).  The note is
    printed here, to stderr as ``note: ...`` (every command the same way; on a line of its own beside a bar drawn
    meanwhile, :func:`lungai.progress.write` - QA rad67: glued to the end of dose-features' bar), and returned to be
    recorded."""
    from lungai.dicom.discover import find_rtstruct
    from lungai.progress import write

    file, note = find_rtstruct(path, ct_path, series_uid, structures=structures)
    file = check_rtstruct_path(file)
    if note:
        write(f"note: {note}")
    return file, note


def check_rtstruct_path(path, kind: bool = True) -> Path:
    """Refuse an RTSTRUCT path that is not an existing file (a folder, a typo) - call it before any work - and, with
    ``kind``, a file of another kind (:func:`check_rtstruct_kind`; the reader, which parses the file whole and says
    what it is, leaves it out: one parse of its header fewer, QA dicomread65's read counts)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder, not an RTSTRUCT file",
                         "give the RTSTRUCT .dcm file (lungai.dicom.rtstruct.rtstruct_option finds it in a folder, "
                         "as the commands' --rtstruct FOLDER does)")
    p = check_input_file(p, "RTSTRUCT file", "give the RTSTRUCT .dcm file of the structure set", "an RTSTRUCT file")
    if kind:
        check_rtstruct_kind(p)
    return p


# where a file given as --rtstruct that is no RTSTRUCT goes
_NOT_RTSTRUCT_GOES = {"SEG": "a SEG is a mask: give it to the command's mask option (--mask, --tumour, --gtv, --lungs)",
                      "RTDOSE": "an RTDOSE goes to --dose",
                      "CT": "a CT goes to the command's CT (its ct argument, --ct, --image)"}
RTSTRUCT_FIX = "give the RT structure set (the DICOM RTSTRUCT .dcm file exported with the plan) as --rtstruct"


def check_rtstruct_kind(p: Path) -> None:
    """Refuse a file given as the RTSTRUCT that is another kind of file, from its name or its header up to its
    Modality (:func:`lungai.paths.dicom_modality`), before any work: a NIfTI / NRRD / MHA image (a label map), a DICOM
    SEG, CT slice, RTDOSE, ...  QA inputsfollow70: ``lungai radiomics --rtstruct lab3.nii.gz`` read LUNG1-003's CT
    (2.6 s) before "not a readable DICOM file (pydicom ...)".  A file that is no DICOM at all (a table, a text: its
    Modality read raised, no DICOM preamble; :data:`lungai.dicom.pixeldata.NOT_DICOM`) is refused here too - QA
    dicom71: ``lungai radiomics --rtstruct notes.csv`` read LUNG1-003's CT (6.4 s) before the reader said it was not
    DICOM.  One with the preamble is left to the reader, which says where it is cut short."""
    from lungai.dicom.discover import has_dicm_preamble
    from lungai.dicom.pixeldata import NOT_DICOM
    from lungai.paths import FILE_SUFFIXES, dicom_modality, image_suffix

    if image_suffix(p) in FILE_SUFFIXES:
        raise InputError(f"{p} is an image file ({image_suffix(p)}: a label map or an image), not an RTSTRUCT",
                         RTSTRUCT_FIX + "; a label map goes to the command's mask option (--mask, --tumour, --gtv, "
                         "--lungs)")
    modality = dicom_modality(p)
    if modality is None and not has_dicm_preamble(p):   # with the preamble: cut short, said so by the reader
        raise InputError(f"{p} {NOT_DICOM}, so not an RTSTRUCT", RTSTRUCT_FIX)
    if modality and modality != "RTSTRUCT":
        goes = _NOT_RTSTRUCT_GOES.get(modality)
        raise InputError(f"{p} is a DICOM {modality} file, not an RTSTRUCT",
                         RTSTRUCT_FIX + (f"; {goes}" if goes else ""))


# the closed ContourGeometricTypes (DICOM PS3.3 C.8.8.6): CLOSED_PLANAR, and CLOSEDPLANAR_XOR, whose contours of one
# plane combine by exclusive or - the even-odd rule every closed contour of a plane is filled by here
# (:func:`_fill_slice`), so both are read alike; POINT, open (:data:`OPEN_TYPES`: lines) and degenerate contours hold
# no area and are left out, as planning systems and Slicer do when they build a closed surface or label map
CLOSED_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")
OPEN_TYPES = ("OPEN_PLANAR", "OPEN_NONPLANAR")


def read_whole(path, force: bool = False) -> tuple:
    """:func:`lungai.dicom.discover.read_to_end` of an RTSTRUCT (its data set, and the element the file ends inside
    or None), once per file in a :func:`read_once` block: the check of :func:`lungai.dicom.discover.scan` that the
    file is whole and the reading of its structures after it share one read (QA dicomread65: ``lungai cohort``'s scan
    and planning read LUNG1-003's RTSTRUCT in full twice).  ``force``: read a file without the DICOM preamble too
    (:func:`read_to_end`'s); without it such a file is refused as pydicom refuses it."""
    from lungai.dicom.discover import has_dicm_preamble, read_to_end

    if not force and not has_dicm_preamble(Path(path)):
        return read_to_end(path)            # pydicom refuses it: never the forced read kept
    return once_per_file(path, "whole", lambda: read_to_end(path, force=True))   # the same read with the preamble


def _read(path) -> "object":
    """The RTSTRUCT's dataset, refused when it is not a readable, whole RTSTRUCT (once per file in a
    :func:`read_once` block)."""
    return once_per_file(path, "dataset", lambda: _read_file(path))


def _read_file(path) -> "object":
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.discover import cut_in_sequence, cut_place

    p = check_rtstruct_path(path, kind=False)     # its Modality said below, from the whole read
    try:
        ds, cut = read_whole(p)         # pydicom.dcmread, and where the file ends inside an element, if it does
    except (InvalidDicomError, OSError) as exc:
        raise InputError(f"{p} is not a readable DICOM file ({exc})", "give the RTSTRUCT .dcm file") from exc
    if cut_in_sequence(cut) and getattr(ds, "Modality", "") == "RTSTRUCT":
        # cut inside one of its sequences (any interrupted copy of a large structure set) - QA dicommiss64:
        # LUNG1-003's RTSTRUCT cut at 1300 bytes was "not a readable DICOM file (No tag to read at file position
        # 514)", fix "give the RTSTRUCT .dcm file" - the file given; an explicit VR one cut inside its
        # ROIContourSequence was read without an error, its last structures' contours gone
        raise InputError(f"the RTSTRUCT {p} is truncated: it ends after {p.stat().st_size} bytes, "
                         f"{cut_place(('RTSTRUCT', cut))} - an interrupted copy or transfer", TRUNCATED_FIX)
    if getattr(ds, "Modality", "") != "RTSTRUCT":
        raise InputError(f"{p} is a DICOM {getattr(ds, 'Modality', '?')} file, not an RTSTRUCT",
                         "give the RT structure set (modality RTSTRUCT) exported with the plan")
    if "StructureSetROISequence" not in ds:
        # Type 1: a file cut short (pydicom reads what is there without an error) - QA: LUNG1-003's RTSTRUCT cut at
        # 700 / 1100 bytes was said to carry no FrameOfReferenceUID, then to hold "no structures"
        raise InputError(f"the RTSTRUCT {p} is truncated: it ends after {p.stat().st_size} bytes, before its "
                         "StructureSetROISequence (a mandatory tag) and its contours - an interrupted copy or transfer",
                         TRUNCATED_FIX)
    if cut is not None:
        # cut inside a short element after its contours (its ApprovalStatus): refused as dicom-scan and cohort leave
        # it out (QA dicomfollow64: LUNG1-003's RTSTRUCT cut inside its last element was read without a word here,
        # while dicom-scan said it truncated and cohort took the automatic lungs and tumour)
        raise InputError(f"the RTSTRUCT {p} is truncated: it ends after {p.stat().st_size} bytes, "
                         f"{cut_place(('RTSTRUCT', cut))} - an interrupted copy or transfer", TRUNCATED_FIX)
    return ds


TRUNCATED_FIX = "re-export the RTSTRUCT from the planning system / PACS (or copy it again) and give that"


def _contour_points(item, structure: str = "?") -> np.ndarray:
    """ContourData as an (n, 3) array; parsed from the raw DS bytes (pydicom's per-value conversion is ~50x slower).
    A value that is not a decimal number (e.g. ``53,25`` with a decimal comma) is an :class:`InputError` naming
    ``structure`` and the value.  A contour without ContourData (the element missing or empty, NumberOfContourPoints
    0) gives a (0, 3) array: a degenerate contour, left out as those of fewer than 3 points."""
    if "ContourData" not in item:
        return np.zeros((0, 3))
    raw = item.get_item("ContourData").value
    if isinstance(raw, (bytes, bytearray)):
        text = bytes(raw).replace(b" ", b"").rstrip(b"\\\x00")
        texts = text.split(b"\\") if text else []
    else:
        try:
            value = item.ContourData                        # pydicom's conversion (written / already-read datasets)
        except ValueError:
            value = raw
        if value is None or (isinstance(value, str) and not value.strip()):
            texts = []
        else:
            texts = [value] if isinstance(value, (str, float, int)) else list(value)
    if not texts:
        return np.zeros((0, 3))
    try:
        vals = np.array(texts, dtype=np.float64)
    except (ValueError, TypeError):
        bad = next((t for t in texts if not _is_number(t)), texts[0] if texts else "")
        bad = bad.decode("latin-1") if isinstance(bad, (bytes, bytearray)) else str(bad)
        raise InputError(f"structure {structure!r}: a contour holds {bad!r}, which is not a decimal number "
                         "(ContourData must be numbers like 53.25; a decimal comma or other text is invalid DICOM)",
                         "re-export the structure set from the planning system (with '.' as the decimal mark), or "
                         "read only the other structures") from None
    if vals.size % 3:
        raise InputError(f"structure {structure!r}: a contour has {vals.size} coordinates, not a multiple of 3 "
                         "(corrupt RTSTRUCT)", "re-export the structure set from the planning system")
    return vals.reshape(-1, 3)


def _is_number(text) -> bool:
    try:
        float(text)
    except (ValueError, TypeError):
        return False
    return True


def read_structures(rtstruct_path) -> tuple[list[Structure], "object"]:
    """The structures of an RTSTRUCT file (names, numbers, contours in LPS mm) and its dataset.

    A structure whose contours cannot be read (a value that is not a number, an unknown contour type) gets its
    :attr:`Structure.error`, raised by :func:`rasterise` when that structure is used: the other structures of
    the file stay readable.  Parsed once per file in a :func:`read_once` block; each call gets its own
    :class:`Structure` objects (the contours' arrays shared, never written to).
    """
    structures, ds = once_per_file(rtstruct_path, "structures", lambda: _parse_structures(rtstruct_path))
    return [replace(s, contours=list(s.contours), open=list(s.open)) for s in structures], ds


def _parse_structures(rtstruct_path) -> tuple[list[Structure], "object"]:
    """:func:`read_structures`' work."""
    ds = _read(rtstruct_path)
    named = _names(ds)
    frames = structure_frames(ds)
    structures = [Structure(n, name, [], frame=frames.get(n)) for n, name in named]
    numbers = [n for n, _ in named]
    shared = {n for n in numbers if numbers.count(n) > 1}
    out = {s.number: s for s in structures if s.number not in shared}
    for rc in getattr(ds, "ROIContourSequence", []):
        number = int(rc.ReferencedROINumber)
        if number in shared:        # whose contours they are is not known: those structures are refused below
            continue
        if number not in out:
            out[number] = Structure(number, f"ROI {number}", [])
            structures.append(out[number])
        st = out[number]
        if "ROIDisplayColor" in rc:
            st.colour = tuple(int(v) for v in rc.ROIDisplayColor)
        try:
            for c in getattr(rc, "ContourSequence", []):
                kind = str(getattr(c, "ContourGeometricType", "CLOSED_PLANAR") or "CLOSED_PLANAR").strip().upper()
                pts = _contour_points(c, st.name)
                if kind == "POINT":
                    st.points += 1
                    continue   # a marker holds no area
                if kind in OPEN_TYPES:     # a line (annotation, marker line): no area, left out as Slicer does
                    if len(pts):
                        st.open.append((kind, float(np.median(pts[:, 2]))))
                    continue
                if len(pts) < 3:
                    continue   # degenerate contours hold no area
                if kind not in CLOSED_TYPES:
                    article = "an" if kind[:1] in "AEIOU" else "a"
                    raise InputError(f"structure {st.name!r} has {article} {kind} contour, not a DICOM "
                                     f"ContourGeometricType; only closed contours ({' / '.join(CLOSED_TYPES)}) "
                                     "enclose a volume",
                                     "re-export the structure as closed contours from the planning system")
                st.contours.append(pts)
        except InputError as exc:
            st.error = exc
    for n in sorted(shared):       # one ROI number, several structures (invalid DICOM: a merge of two sets)
        same = [st for st in structures if st.number == n]
        for st in same:
            st.error = InputError(
                f"{rtstruct_path} gives ROI number {n} to {len(same)} structures "
                f"({', '.join(repr(str(x.name)) for x in same)}), so which contours of ROI number {n} "
                "(ReferencedROINumber) belong to which is not known", "re-export the structure set from the planning system (every structure with "
                "its own ROI number), or read only the other structures")
    return structures, ds


def _names(ds) -> list:
    """[(ROI number, name)] of the structures, in file order (a number given to two structures kept twice: refused
    when read, :func:`read_structures`); each name a :class:`lungai.dicom.roles.StructureName` carrying its RT ROI
    Interpreted Type (a name without a role is a GTV when that type is GTV)."""
    from lungai.dicom.labels import dicom_name
    from lungai.dicom.roles import StructureName

    types = {}
    for obs in getattr(ds, "RTROIObservationsSequence", []):
        if "ReferencedROINumber" in obs:
            types.setdefault(int(obs.ReferencedROINumber), str(getattr(obs, "RTROIInterpretedType", "") or ""))
    return [(int(r.ROINumber), StructureName(dicom_name(r.ROIName), types.get(int(r.ROINumber), "")))
            for r in getattr(ds, "StructureSetROISequence", [])]


def list_structures(rtstruct_path) -> list[str]:
    """The structure (ROI) names of an RTSTRUCT file, in file order (with their RT ROI Interpreted Type, see
    :func:`_names`)."""
    return [name for _, name in _names(_read(rtstruct_path))]


def contoured_structures(rtstruct_path) -> tuple[list[str], list[str]]:
    """(names of the structures with contours, names of the empty ones), in file order.

    A planning-system template leaves structures without contours (an empty 'GTVn', 'Lungs'); role resolution
    (:func:`read_rtstruct_role`, ``lungai cohort``, ``lungai dose-features``) takes the contoured ones only."""
    drawn, empty = once_per_file(rtstruct_path, "names", lambda: _contoured(rtstruct_path))
    return list(drawn), list(empty)


def _contoured(rtstruct_path) -> tuple[tuple, tuple]:
    """:func:`contoured_structures`' work."""
    structures, _ = read_structures(rtstruct_path)
    return (tuple(s.name for s in structures if _drawn(s)),
            tuple(_empty_name(s) for s in structures if not _drawn(s)))


def _held(structure: Structure) -> str:
    """What a structure without closed contours holds: "POINT markers (2) and open contours (3 OPEN_PLANAR)", ""
    for nothing."""
    return " and ".join(([f"POINT markers ({structure.points})"] if structure.points else [])
                        + ([f"open contours ({_open_kinds(structure.open)})"] if structure.open else []))


def _empty_name(structure: Structure):
    """A structure left out by :func:`contoured_structures` as its name, carrying what it holds
    (:attr:`lungai.dicom.roles.StructureName.held`: the messages say "only POINT markers (2)", not "without
    contours")."""
    from lungai.dicom.roles import StructureName

    return StructureName(structure.name, getattr(structure.name, "interpreted_type", ""), _held(structure))


def _drawn(structure: Structure) -> bool:
    """Whether a structure counts as contoured: it has contours, or contours that could not be read (malformed value,
    unknown contour type: not empty, using it raises its error rather than silently taking another structure for its
    role).  One of POINT markers or open contours (lines) only is not: it encloses no volume, like an empty one."""
    return bool(structure.contours) or structure.error is not None


def _uid(item, keyword: str) -> str:
    return str(getattr(item, keyword, "") or "").strip()


def referenced_frames(ds) -> list[str]:
    """Every FrameOfReferenceUID the structure set refers to, in file order: its ReferencedFrameOfReferenceSequence's
    (where DICOM lists every frame its ROIs are in), else its ROIs' (ReferencedFrameOfReferenceUID).  A structure set
    may hold structures of several frames - drawn on the planning CT and on a PET or MR of another frame registered
    with it (DICOM PS3.3 C.8.8.5) - so the CT's frame need not be the first."""
    frames = [_uid(item, "FrameOfReferenceUID") for item in getattr(ds, "ReferencedFrameOfReferenceSequence", [])]
    if not any(frames):
        frames = [_uid(item, "ReferencedFrameOfReferenceUID") for item in getattr(ds, "StructureSetROISequence", [])]
    return list(dict.fromkeys(f for f in frames if f))


def structure_frames(ds) -> dict[int, str]:
    """{ROI number: FrameOfReferenceUID its contours are in}: the ROI's ReferencedFrameOfReferenceUID (Type 1 in the
    StructureSetROISequence), else the structure set's frame when it refers to one only; a ROI of a structure set
    of several frames that does not say its own is left out (not known)."""
    listed = [_uid(item, "FrameOfReferenceUID") for item in getattr(ds, "ReferencedFrameOfReferenceSequence", [])]
    only = listed[0] if len(set(f for f in listed if f)) == 1 and listed[0] else None
    out = {}
    for item in getattr(ds, "StructureSetROISequence", []):
        try:
            number = int(item.ROINumber)
        except (AttributeError, TypeError, ValueError):
            continue
        frame = _uid(item, "ReferencedFrameOfReferenceUID") or only
        if frame:
            out[number] = frame
    return out


def referenced_frame_of_reference(ds) -> str | None:
    """The frame of reference the structure set is drawn in: of those it refers to (:func:`referenced_frames`), the
    one most of its structures are in (:func:`structure_frames`; a tie, or none: the first listed)."""
    frames = referenced_frames(ds)
    counts = list(structure_frames(ds).values())
    if counts:
        return max(frames, key=lambda f: (counts.count(f), -frames.index(f)))
    return frames[0] if frames else None


def fill_even_odd(polygons, shape) -> np.ndarray:
    """Boolean (ny, nx) mask of the pixel centres inside ``polygons`` by the even-odd rule.

    ``polygons``: (n, 2) arrays of continuous (column x, row y) pixel coordinates, closed implicitly.
    Scanline fill in numpy: a pixel centre (i, j) is inside when a ray from it towards +x crosses the
    edges an odd number of times (edges count on the half-open interval min(y) <= j < max(y)), so
    contours inside contours are holes.  Cost O(edges x rows) instead of point-in-polygon per pixel.
    """
    ny, nx = shape
    x0s, y0s, x1s, y1s = [], [], [], []
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64)
        nxt = np.roll(xy, -1, axis=0)
        x0s.append(xy[:, 0]); y0s.append(xy[:, 1]); x1s.append(nxt[:, 0]); y1s.append(nxt[:, 1])
    x0, y0, x1, y1 = (np.concatenate(v) for v in (x0s, y0s, x1s, y1s))
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    lo = np.clip(np.ceil(np.minimum(y0, y1)), 0, ny).astype(np.int64)
    hi = np.clip(np.ceil(np.maximum(y0, y1)), 0, ny).astype(np.int64)
    counts = hi - lo
    toggles = np.zeros((ny, nx + 1), dtype=np.int32)
    if counts.sum() > 0:
        edge = np.repeat(np.arange(len(lo)), counts)
        start = np.repeat(np.cumsum(counts) - counts, counts)
        rows = lo[edge] + (np.arange(edge.size) - start)
        xc = x0[edge] + (rows - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
        stop = np.clip(np.ceil(xc), 0, nx).astype(np.int64)   # pixels i < xc are left of the crossing
        np.add.at(toggles, (rows, np.zeros_like(rows)), 1)
        np.add.at(toggles, (rows, stop), -1)
    return (np.cumsum(toggles[:, :nx], axis=1) % 2).astype(bool)


def _index_transform(ct: sitk.Image):
    m = np.asarray(ct.GetDirection(), dtype=np.float64).reshape(3, 3) * np.asarray(ct.GetSpacing())
    return np.linalg.inv(m), np.asarray(ct.GetOrigin(), dtype=np.float64)


def rasterise(structure: Structure, ct: sitk.Image, allow_gaps: bool = False) -> sitk.Image:
    """One structure as a uint8 mask (1 inside) on ``ct``'s grid; see the module doc for the rules."""
    nx, ny, nz = ct.GetSize()
    inv, origin = _index_transform(ct)
    name = structure.name
    if structure.error is not None:
        raise structure.error
    if not structure.contours and (structure.points or structure.open):
        raise InputError(f"structure {name!r} holds only {_held(structure)}, no closed contour: it encloses no "
                         "volume", "choose a structure contoured with closed contours (a marker, reference point or "
                         "line is not a volume), or contour it in the planning system")
    if not structure.contours:
        raise InputError(f"structure {name!r} has no contours", "choose a structure that was contoured")
    indices = [(pts - origin) @ inv.T for pts in structure.contours]     # continuous (i, j, k)
    for pts, idx in zip(structure.contours, indices):
        if np.ptp(idx[:, 2]) > 2 * SLICE_TOL:
            _off_slice_error(name, pts, idx[:, 2], "")
    _check_contour_planes(name, [float(np.median(idx[:, 2])) for idx in indices], ct)
    per_slice: dict[int, list] = {}
    seen: set = set()
    repeated: list[float] = []
    for pts, idx in zip(structure.contours, indices):
        k = idx[:, 2]
        kr = int(round(float(np.median(k))))
        key = _contour_key(pts)
        if key in seen:     # a copy: the even-odd fill would cut it out of its own contour, leaving no slice
            repeated.append(float(np.median(pts[:, 2])))
            continue
        seen.add(key)
        if np.abs(k - kr).max() > SLICE_TOL:
            _off_slice_error(name, pts, k, ", between two CT slices")
        off_plane = ((idx[:, 0] < -0.5 - EDGE_TOL) | (idx[:, 0] > nx - 0.5 + EDGE_TOL)
                     | (idx[:, 1] < -0.5 - EDGE_TOL) | (idx[:, 1] > ny - 0.5 + EDGE_TOL))
        if kr < 0 or kr >= nz or off_plane.any():
            z = pts[:, 2]
            raise OffCTError(
                f"structure {name!r} lies (partly) off the CT: a contour at z = {z.min():.1f} mm "
                f"{'is outside the CT slices' if kr < 0 or kr >= nz else 'leaves the CT field of view'} "
                f"(CT {describe_extent(ct)})",
                "check that the RTSTRUCT belongs to this CT series (same FrameOfReferenceUID), or choose the CT the "
                "structure was drawn on")
        per_slice.setdefault(kr, []).append((float(np.median(k)), idx[:, :2]))
    if structure.open:
        import warnings

        zs = sorted({round(z, 1) for _, z in structure.open})
        shown = ", ".join(f"{z:.1f}" for z in zs[:6]) + (" ..." if len(zs) > 6 else "")
        warnings.warn(f"structure {name!r}: {_open_kinds(structure.open)} "
                      f"{agree(len(structure.open), 'open contour', 'open contours')} (lines, z = {shown} mm) "
                      "left out; only its closed contours enclose its volume", OpenContourNote, stacklevel=2)
    if repeated:
        import warnings

        shown = ", ".join(f"{z:.1f}" for z in sorted(set(repeated))[:6]) + (" ..." if len(set(repeated)) > 6 else "")
        warnings.warn(f"structure {name!r}: {counted(len(repeated), 'contour')} written twice (the same points) on "
                      f"one CT slice (z = {shown} mm) read once; the even-odd rule would have cut each copy out of its "
                      "contour, leaving the slice out of the structure", RepeatedContourNote, stacklevel=2)
    mask = np.zeros((nz, ny, nx), dtype=np.uint8)
    for kr, polys in per_slice.items():
        mask[kr] = _fill_slice(name, kr, polys, ct)   # contours inside contours (of one plane) are holes
    used = sorted(per_slice)
    missing = sorted(set(range(used[0], used[-1] + 1)) - set(used))
    if missing:
        z_of = lambda k: float(ct.TransformIndexToPhysicalPoint((0, 0, int(k)))[2])  # noqa: E731
        shown = ", ".join(f"{z_of(k):.1f}" for k in missing[:6]) + (" ..." if len(missing) > 6 else "")
        gaps = (f"structure {name!r} has no contour on {counted(len(missing), 'CT slice')} between its first and last "
                f"(z = {shown} mm; contoured on {len(used)} of {used[-1] - used[0] + 1} slices)")
    if missing and allow_gaps:
        import warnings

        warnings.warn(f"{gaps}: read as separate parts (gaps between slices allowed)", GapsAllowedNote, stacklevel=2)
    elif missing:
        raise InputError(
            gaps,
            "complete the contours on every slice in the planning system (interpolate), or check that the CT is the "
            "one the structure was drawn on (contours every 2nd slice mean a thinner CT); if the structure really has "
            "separate parts (e.g. nodes at several levels), accept the gaps with "
            "--allow-gaps (lungai CLI) or allow_gaps=True (Python API)")
    if not mask.any():
        raise InputError(f"structure {name!r} covers no CT voxel centre (contours too small for the grid)",
                         "check the structure in the planning system; it may be a point or a tiny contour")
    img = sitk.GetImageFromArray(mask)
    img.CopyInformation(ct)
    return img


def _contour_key(pts: np.ndarray) -> tuple:
    """What a contour is made of: its points (LPS, to 0.01 mm), whatever point it starts at and the way it runs; two
    contours of one key are one contour written twice."""
    return tuple(sorted({tuple(p) for p in np.round(pts, 2).tolist()}))


def _off_slice_error(name: str, pts: np.ndarray, k: np.ndarray, where: str):
    raise OffCTError(
        f"structure {name!r}: a contour does not lie in a CT slice plane (slice index {k.min():.2f}-{k.max():.2f}"
        f"{where}; z = {float(np.median(pts[:, 2])):.2f} mm)",
        "the RTSTRUCT must be drawn on this CT (axial contours on its slices); check it belongs to the CT "
        "(same FrameOfReferenceUID) and that the CT is not tilted / resampled")


def _fill_slice(name: str, kr: int, polys: list, ct: sitk.Image) -> np.ndarray:
    """The mask of one CT slice from its contours ``[(slice index of the contour's plane, (n, 2) i j points)]``: the
    contours of one plane (:data:`ONE_PLANE_MM`, :data:`ONE_PLANE_TOL`) by the even-odd rule, the planes combined
    when they do not overlap; overlapping contours of different planes are refused (a finer contouring grid: their
    XOR would be a ring)."""
    nx, ny = ct.GetSize()[:2]
    slice_mm = float(ct.GetSpacing()[2])
    tol = min(ONE_PLANE_MM / slice_mm, ONE_PLANE_TOL) if slice_mm > 0 else ONE_PLANE_TOL
    planes: list[list] = []
    for k, poly in sorted(polys, key=lambda p: p[0]):
        if planes and k - planes[-1][0][0] <= tol:
            planes[-1].append((k, poly))
        else:
            planes.append([(k, poly)])
    if len(planes) == 1:
        return fill_even_odd([p for _, p in polys], (ny, nx))
    out, done = np.zeros((ny, nx), dtype=np.uint8), []
    for plane in planes:
        f = fill_even_odd([p for _, p in plane], (ny, nx))
        other = next((o for o, g in done if (g & f).any()), None)
        if other is not None:
            z_of = lambda k: float(ct.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(k)))[2])  # noqa: E731
            za, zb = z_of(other[0][0]), z_of(plane[0][0])
            raise OffCTError(
                f"structure {name!r}: on the CT slice at z = {z_of(kr):.2f} mm, contours drawn on planes "
                f"{abs(zb - za):.2f} mm apart (z = {za:.2f} and {zb:.2f} mm) overlap: they are two contouring planes "
                f"of a grid finer than the CT's {slice_mm:.2f} mm slices, and combining them on one slice (even-odd "
                "rule) would leave rings, not the structure",
                "use the CT series the structure set was drawn on (e.g. the thinner reconstruction of the same "
                "scan; the RTSTRUCT's ContourImageSequence names its slices), or resample the contours in the "
                "planning system to this CT's slices")
        done.append((plane, f))
        out |= f
    return out


def _check_contour_planes(name: str, planes: list[float], ct: sitk.Image) -> None:
    """The contour planes of one structure (median slice index per contour) must be as far apart as the CT's slices:
    two planes closer than :data:`MIN_PLANE_STEP` slice mean contours drawn on a finer grid (a thinner
    reconstruction), and the even-odd fill of one CT slice would XOR them into rings.  A plane within
    :data:`SLICE_TOL` of a CT slice counts as that slice: two contours of one slice drawn a few tenths of a mm apart
    in z (as planning systems write them) are one plane; only planes off the slices can be too close."""
    snapped = [float(round(k)) if abs(k - round(k)) <= SLICE_TOL else k for k in planes]
    distinct = []
    for k in sorted(snapped):
        if not distinct or k - distinct[-1][-1] > SAME_PLANE_TOL:
            distinct.append([k])
        else:
            distinct[-1].append(k)
    centres = np.asarray([float(np.mean(c)) for c in distinct])
    steps = np.diff(centres)
    close = np.flatnonzero(steps < MIN_PLANE_STEP)
    if not close.size:
        return
    slice_mm = float(ct.GetSpacing()[2])
    i = int(close[0])
    pair = (centres[i] * slice_mm, centres[i + 1] * slice_mm)     # along the slice normal, from the CT's first slice
    grid = float(np.median(steps)) * slice_mm      # the structure's usual contour spacing
    raise OffCTError(
        f"structure {name!r} is contoured on planes {abs(pair[1] - pair[0]):.2f} mm apart "
        f"({counted(int(close.size), 'pair')} of contour planes closer than one CT slice; contour grid about "
        f"{grid:.2f} mm), but the CT's slices are {slice_mm:.2f} mm apart: the CT is thicker than the contouring "
        "grid, so two contour planes would fall on one CT slice",
        "use the CT series the structure set was drawn on (e.g. the thinner reconstruction of the same scan; the "
        "RTSTRUCT's ContourImageSequence names its slices), or resample the contours in the planning system")


def describe_extent(ct: sitk.Image) -> str:
    first = ct.TransformIndexToPhysicalPoint((0, 0, 0))
    last = ct.TransformIndexToPhysicalPoint(tuple(int(n) - 1 for n in ct.GetSize()))
    return "x {:.1f}..{:.1f}, y {:.1f}..{:.1f}, z {:.1f}..{:.1f} mm".format(
        *(v for pair in zip(first, last) for v in sorted(pair)))


def _select(structures: list[Structure], names, rtstruct_path, role: str | None = None,
            mapping=None) -> list[Structure]:
    """The structures ``names`` chooses (None: all), by the one naming rule of :mod:`lungai.dicom.labels`: two
    structures of one name (spaces around it ignored) are refused when that name is read; names that differ only in
    letter case ("GTV", "gtv") are two structures, refused only when a choice takes one of them but not the others
    (a name chooses ignoring case; role:gtv takes them all).

    A structure without contours (a planning-system template's empty 'gtv-1' beside the contoured 'GTV-1',
    :func:`_drawn`) is nobody's partner: no role takes it (:func:`contoured_structures`), and a name that matches a
    contoured structure chooses that one - the empty one holds nothing to read.  A name that matches only empty
    structures chooses one (its "has no contours" error follows).  ``role``: the role the names were chosen for, and
    ``mapping`` the user's, for the message (:func:`lungai.dicom.labels.check_case_groups`)."""
    from lungai.dicom.labels import check_case_groups, label_key, matching_labels, name_key, repeated_labels

    file = str(rtstruct_path)       # the path as given: every patient's folder may hold an RS.dcm
    drawn = [s for s in structures if _drawn(s)]

    def refuse_repeated(pool, keys):
        labels = [s.name for s in pool]
        for same in repeated_labels(labels):
            if keys is None or name_key(labels[same[0]]) in keys:
                raise InputError(
                    f"{file} holds {len(same)} structures named {label_key(labels[same[0]])!r} "
                    f"(ROI numbers {', '.join(str(pool[i].number) for i in same)})",
                    "give each structure its own name in the planning system (3D Slicer: rename one in the Segment "
                    "Editor), then export the RTSTRUCT again")

    if names is None:
        refuse_repeated(drawn, None)        # the empty ones are not read (read_rtstruct)
        return structures
    chosen = []
    for n in names:
        pool = drawn if matching_labels([s.name for s in drawn], n) else structures
        refuse_repeated(pool, {name_key(n)})
        found = [label_key(m) for m in matching_labels([s.name for s in pool], n)]
        by_label = {label_key(s.name): s for s in pool}
        s = by_label.get(label_key(n)) or (by_label[found[0]] if found else None)
        if s is None:
            raise InputError(
                f"structure {n!r} is not in {file}; it holds: "
                f"{', '.join(x.name for x in structures) or 'no structures'}",
                _spelling_fix(n, [x.name for x in structures]))
        chosen.append(s)
    check_case_groups([s.name for s in drawn], [s.name for s in chosen], file, [s.number for s in drawn],
                      what="structure", role=role, mapping=mapping,
                      rename="in the planning system (3D Slicer: rename one in the Segment Editor), then export the "
                             "RTSTRUCT again")
    return chosen


def _spelling_fix(name, names) -> str:
    """The fix for a structure ``name`` not among ``names``: the structures it names in another spelling (separators
    ``_ - space .``, :func:`lungai.dicom.roles.normalise`: "GTV_1" / "gtv 1" for "GTV-1") are named - never chosen for
    the user, as "Lungs-GTV" (minus) and "Lungs GTV" may be two structures."""
    from lungai.dicom.roles import normalise

    close = [x for x in names if normalise(x) == normalise(name)]
    if close:
        return (f"did you mean {' or '.join(repr(x) for x in close)}? Give the name as the RTSTRUCT writes it "
                f"({close[0]!r}; letter case does not matter, but '-', '_', '.' and spaces do)")
    return "give one of those names (case does not matter), or a role such as role:gtv / role:lungs"


def read_rtstruct(rtstruct_path, reference_ct: sitk.Image, names=None, allow_gaps: bool = False,
                  frame_of_reference_uid: str | None = None, role: str | None = None,
                  mapping=None) -> dict[str, sitk.Image]:
    """Structure name -> uint8 mask (1 inside) on ``reference_ct``'s grid.

    ``names``: read only these structures (case-insensitive).  Default: every structure that has contours;
    then one unreadable structure (e.g. a heart contour with a missing slice) fails the whole call, so
    pipelines should ask for the structures they need (or use :func:`read_rtstruct_role`).
    ``frame_of_reference_uid``: the CT's FrameOfReferenceUID (default: the one :func:`lungai.io.read_ct` keeps on a CT
    read from a DICOM series); the RTSTRUCT must reference it.
    Raises :class:`InputError` for a structure with gaps between slices (unless ``allow_gaps``), one off the
    CT, a contour off the slice planes, or a name not in the file.
    A name chooses ignoring letter case, among the contoured structures first (an empty template structure of the
    same name is passed over); names differing only in letter case are refused when some but not all are chosen
    (:func:`_select`; ``role`` / ``mapping``: the role the names were found for, and the user's mapping, which word
    that message).
    """
    structures, ds = read_structures(rtstruct_path)
    if not frame_of_reference_uid and reference_ct.HasMetaDataKey(FRAME_OF_REFERENCE_TAG):
        frame_of_reference_uid = reference_ct.GetMetaData(FRAME_OF_REFERENCE_TAG)   # a CT read from DICOM
    same_frame = False      # the RTSTRUCT says it is drawn in the CT's frame of reference
    if frame_of_reference_uid:
        ref = referenced_frame_of_reference(ds)
        if ref and frame_of_reference_uid not in referenced_frames(ds):
            raise other_ct_error(rtstruct_path, ds, ref, frame_of_reference_uid, reference_ct)
        same_frame = bool(ref)
        if not ref:   # no FrameOfReferenceUID in the RTSTRUCT: its series, else its PatientID, else said unchecked
            check_unlinked_ct(rtstruct_path, ds, reference_ct)
        for s in structures:    # drawn on another image of the structure set (a registered PET / MR): not the CT's
            if s.frame and s.frame != frame_of_reference_uid and s.error is None:
                s.error = other_frame_error(s, rtstruct_path, frame_of_reference_uid)
    else:                   # a NIfTI / NRRD / MHA CT: at most its PatientID to compare the RTSTRUCT with
        check_unlinked_ct(rtstruct_path, ds, reference_ct)
    chosen = _select(structures, names, rtstruct_path, role=role, mapping=mapping)

    def place(s: Structure) -> sitk.Image:
        """The structure's mask; contours that do not fit the CT of an RTSTRUCT drawn on another CT series said so
        (QA dicom71: LUNG1-003's RTSTRUCT drawn on another series, half a slice away, was "a contour does not lie in
        a CT slice plane (... between two CT slices)", fix "check it belongs to the CT (same FrameOfReferenceUID)" -
        which it did)."""
        try:
            return rasterise(s, reference_ct, allow_gaps=allow_gaps)
        except OffCTError as exc:
            other = _other_ct_series(rtstruct_path, reference_ct)
            if other:
                raise drawn_elsewhere_error(exc, rtstruct_path, other, reference_ct, same_frame) from None
            raise

    if names is not None:
        out = {s.name: place(s) for s in chosen}
        if same_frame:
            _warn_other_series(rtstruct_path, reference_ct)     # it fits this CT: placed by the frame of reference
        return out
    out, problems = {}, []
    for s in chosen:
        if not s.contours and s.error is None:
            continue
        try:
            out[s.name] = place(s)
        except OffCTError as exc:
            if exc.drawn_elsewhere:     # none of its structures is this CT's: said once, not per structure
                raise
            problems.append(exc)
        except InputError as exc:
            problems.append(exc)
    if same_frame:
        _warn_other_series(rtstruct_path, reference_ct)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputError(
            f"{len(problems)} structures of {rtstruct_path} cannot be read: "
            + "; ".join(p.problem for p in problems),
            "read only the structures you need (names=[...], CLI --structure NAME or role:gtv), or " + problems[0].fix)
    return out


def other_ct_error(path, ds, frame: str, ct_frame: str, reference_ct: sitk.Image,
                   kind: str = "RTSTRUCT") -> InputError:
    """The error of an RTSTRUCT / SEG (``ds``, its header; ``kind`` "RTSTRUCT" or "SEG") in frame of reference
    ``frame`` read onto a DICOM CT in another (``ct_frame``): one text for :func:`read_rtstruct` and
    :func:`lungai.dicom.seg.read_seg`, naming both PatientIDs when they differ (another patient's file, said with the
    RTDOSE check's words, :func:`lungai.dicom.reference.header_mismatch`; the PatientID the CT read from DICOM
    keeps)."""
    from types import SimpleNamespace

    from lungai.dicom.reference import header_mismatch
    from lungai.io.read import PATIENT_ID_TAG

    ct_patient = reference_ct.GetMetaData(PATIENT_ID_TAG) if reference_ct.HasMetaDataKey(PATIENT_ID_TAG) else ""
    patient = header_mismatch(ds, SimpleNamespace(PatientID=ct_patient), "CT", f" ({kind})", ("PatientID",))
    what = "structure set" if kind == "RTSTRUCT" else "segmentation"
    return InputError(
        f"{path} is drawn in frame of reference {frame}, the CT is in {ct_frame}"
        + "".join(f"; {w}: another patient's {what}" for w in patient),
        f"give the {kind} of this CT (same PatientID and FrameOfReferenceUID; lungai finds matching files "
        "with `lungai dicom-scan FOLDER`)")


def other_frame_error(structure: Structure, rtstruct_path, ct_frame: str) -> InputError:
    """The error of a structure drawn in another frame of reference than the CT's, in a structure set that also holds
    structures of the CT's frame (raised when it is used, as any unreadable structure): its coordinates are those of
    another image (a PET / MR registered with the CT), so placed on the CT they would be wrong."""
    return InputError(
        f"structure {structure.name!r} of {rtstruct_path} is drawn in frame of reference {structure.frame} "
        f"(another image of the structure set, e.g. a registered PET or MR), not the CT's {ct_frame}: its "
        "coordinates are not the CT's",
        "choose a structure drawn on this CT (--structure NAME), or leave this one out with --structure-map "
        f"('{structure.name}: null'); to use it, copy it onto the CT in the planning system and export the RTSTRUCT "
        "again")


def check_unlinked_ct(path, ds, reference_ct: sitk.Image, kind: str = "RTSTRUCT") -> None:
    """An RTSTRUCT / SEG (``ds``, its header) read onto a CT without FrameOfReferenceUID (NIfTI / NRRD / MHA): the
    one check possible, the PatientID the CT may carry (an NRRD's ``0010|0020`` key), refuses another patient's file
    (the words of :func:`read_rtstruct` for a DICOM CT, :func:`lungai.dicom.reference.header_mismatch`); otherwise
    the note :func:`unchecked_ct_note` (:class:`lungai.errors.InputCheckNote`) says what could not be checked.
    ``kind``: "RTSTRUCT" or "SEG" (:func:`lungai.dicom.seg.read_seg`)."""
    import warnings
    from types import SimpleNamespace

    from lungai.dicom.reference import header_mismatch
    from lungai.errors import InputCheckNote
    from lungai.io.read import PATIENT_ID_TAG

    ct_patient = (reference_ct.GetMetaData(PATIENT_ID_TAG).strip()
                  if reference_ct.HasMetaDataKey(PATIENT_ID_TAG) else "")
    ct_frame = (reference_ct.GetMetaData(FRAME_OF_REFERENCE_TAG).strip()
                if reference_ct.HasMetaDataKey(FRAME_OF_REFERENCE_TAG) else "")
    ct_series = reference_ct.GetMetaData("0020|000e").strip() if reference_ct.HasMetaDataKey("0020|000e") else ""
    wrong = header_mismatch(ds, SimpleNamespace(PatientID=ct_patient), "CT", f" ({kind})", ("PatientID",))
    if wrong:
        what = "structure set" if kind == "RTSTRUCT" else "segmentation"
        lacks = f"the {kind}" if ct_frame else "the CT"
        raise InputError(
            f"{path} is another patient's {what}: {wrong[0]} ({lacks} carries no FrameOfReferenceUID to "
            "compare)",
            f"give the {kind} of this CT (same PatientID and FrameOfReferenceUID; lungai finds matching files with "
            "`lungai dicom-scan FOLDER`)")
    if ct_frame and kind == "RTSTRUCT":
        from lungai.dicom.discover import _references

        referenced = _references(Path(path))[0]
        if ct_series and ct_series in referenced:   # drawn on this CT series, as it says: nothing left unchecked
            return
        if not referenced and _drawn_on_these_slices(path, reference_ct, ct_series):
            return      # its contours reference this CT's slices (scan's rule): nothing left unchecked
        warnings.warn(unchecked_ct_note(path, ds, kind, ct_patient, ct_frame=ct_frame, ct_series=ct_series,
                                        referenced=referenced), InputCheckNote, stacklevel=3)
        return
    warnings.warn(unchecked_ct_note(path, ds, kind, ct_patient), InputCheckNote, stacklevel=3)


def _drawn_on_these_slices(path, reference_ct: sitk.Image, ct_series: str) -> bool:
    """Whether the RTSTRUCT ``path`` (no FrameOfReferenceUID, no referenced series) was drawn on the DICOM CT read
    (its slices' SOPInstanceUIDs kept: :data:`lungai.io.read.SLICE_UIDS_KEY`), by the CT slices its contours
    reference (ContourImageSequence; :func:`lungai.dicom.discover.contour_images`, scan's rule): True when they all
    are this CT's; refused (:class:`InputError`) when none is - drawn on another CT series; False when it references
    none, or the CT's slices are not known (then noted unchecked).  Some of them only: warned (InputCheckNote).
    QA dicomnote61: an RTSTRUCT whose contours reference this CT's slices was said "could not be checked"."""
    import warnings

    from lungai.dicom.discover import contour_images
    from lungai.errors import InputCheckNote
    from lungai.io.read import SLICE_UIDS_KEY

    if not reference_ct.HasMetaDataKey(SLICE_UIDS_KEY):
        return False
    images = contour_images(Path(path))
    ct_slices = set(reference_ct.GetMetaData(SLICE_UIDS_KEY).split("\\")) - {""}
    if not images or not ct_slices:
        return False
    hit = len(images & ct_slices)
    if not hit:
        raise InputError(
            f"the RTSTRUCT {path} carries no FrameOfReferenceUID, and "
            + ("the CT slice its contours reference is not" if len(images) == 1 else
               f"none of the {len(images)} CT slices its contours reference is")
            + f" a slice of this CT (series {ct_series or '(unknown)'}): it was drawn on another "
            "CT series",
            "give the CT series it was drawn on (`lungai dicom-scan FOLDER` matches it by the slices its contours "
            "reference; --series UID picks it in a folder of several), or re-export the RTSTRUCT with its "
            "FrameOfReferenceUID (its ReferencedFrameOfReferenceSequence) from the planning system")
    if hit < len(images):
        warnings.warn(f"the RTSTRUCT {path} carries no FrameOfReferenceUID; its contours reference {len(images)} CT "
                      f"slices, {hit} of this CT (series {ct_series or '(unknown)'}) and {len(images) - hit} not: "
                      "make sure its structures were drawn on this CT", InputCheckNote, stacklevel=4)
    return True


def unchecked_ct_note(rtstruct_path, ds, kind: str = "RTSTRUCT", ct_patient: str = "", ct_frame: str = "",
                      ct_series: str = "", referenced=()) -> str:
    """The note of :func:`check_unlinked_ct` when the CT carries no FrameOfReferenceUID (read from NIfTI / NRRD /
    MHA): the RTSTRUCT (``ds``, its header) could not be checked against it - one text for every command that takes
    ``--rtstruct`` (radiomics, dose-features, demo).  A DICOM CT of another frame of reference is refused instead.
    ``kind`` "SEG": the same note for a DICOM SEG read as a mask (:func:`lungai.dicom.seg.read_seg`; its own
    FrameOfReferenceUID).  ``ct_patient``: the PatientID the CT carries (the same as the file's; another one is
    refused), which the note says was compared.  ``ct_frame``: the DICOM CT's FrameOfReferenceUID when the RTSTRUCT
    carries none (exported without ReferencedFrameOfReferenceSequence; ``referenced``: the series it references,
    ``ct_series`` the CT's - one referencing the CT series is not said unchecked): the note says so (QA dicomframe61:
    such an RTSTRUCT was read onto any DICOM CT without a word)."""
    patient = str(getattr(ds, "PatientID", "") or "").strip()
    frame = referenced_frame_of_reference(ds) if kind == "RTSTRUCT" else _uid(ds, "FrameOfReferenceUID")
    about = ", ".join(x for x in (f"PatientID {patient}" if patient else "no PatientID",
                                  f"frame of reference {frame}" if frame else "") if x)
    drawn = "structures were" if kind == "RTSTRUCT" else "segments were"
    carries = (f"the CT carries PatientID {ct_patient}" + (" (the same)" if patient else "")
               + " but no FrameOfReferenceUID" if ct_patient
               else "the CT is not DICOM (NIfTI / NRRD / MHA), so it carries no PatientID / FrameOfReferenceUID")
    if ct_frame:
        carries = (f"the {kind} carries no FrameOfReferenceUID (a mandatory tag, here missing: exported without "
                   f"ReferencedFrameOfReferenceSequence?) to compare with the CT's {ct_frame}, and "
                   + (f"references series {', '.join(sorted(referenced))}, not the CT's {ct_series or '(unknown)'}"
                      if referenced else "references no CT series")
                   + (f"; only its PatientID {patient} was compared (the CT's)" if patient and ct_patient else
                      "; nor could its PatientID be compared"))
    lets = (f"the {kind} as exported by the planning system, with its FrameOfReferenceUID, lets lungai check it"
            if ct_frame else "a DICOM CT lets lungai check it")
    return (f"the {kind} {rtstruct_path} ({about}) could not be checked against the CT: {carries}; make "
            f"sure the {drawn} drawn on this patient's CT, in its coordinates ({lets})")


def _other_ct_series(rtstruct_path, reference_ct: sitk.Image) -> list[str]:
    """The CT series the RTSTRUCT references (ReferencedFrameOfReferenceSequence > ... > RTReferencedSeriesSequence),
    sorted, when the CT read is not one of them - or is not DICOM (no SeriesInstanceUID kept); [] when it is one, or
    the RTSTRUCT references none."""
    from lungai.dicom.discover import _references

    referenced = _references(Path(rtstruct_path))[0]
    ct_series = reference_ct.GetMetaData("0020|000e").strip() if reference_ct.HasMetaDataKey("0020|000e") else ""
    return [] if not referenced or ct_series in referenced else sorted(referenced)


def drawn_elsewhere_error(exc: InputError, rtstruct_path, series: list, reference_ct: sitk.Image,
                          same_frame: bool = False) -> "OffCTError":
    """The error of a structure whose contours do not fit the CT (``exc``, :class:`OffCTError`) when the RTSTRUCT
    references other CT series (``series``, :func:`_other_ct_series`): it was drawn on another CT, and the fix is
    that CT - not "check the frame of reference" (``same_frame``: it is the CT's, said so).  A CT that is not DICOM
    cannot be compared: the series it was drawn on is named, to give instead, ``exc``'s fix after it."""
    ct_series = reference_ct.GetMetaData("0020|000e").strip() if reference_ct.HasMetaDataKey("0020|000e") else ""
    drawn = ", ".join(series)
    if ct_series:
        problem = (f"the RTSTRUCT {rtstruct_path} was drawn on another CT: CT series {drawn}, not this CT's series "
                   f"{ct_series}"
                   + (" (they share a frame of reference, so its contours are placed in this CT's space, but they do "
                      "not fit its slices)" if same_frame else "")
                   + f" - {exc.problem}")
        fix = (f"give the CT the RTSTRUCT was drawn on: series {drawn} (its DICOM folder, or --series {series[0]} when "
               "the folder holds several series; `lungai dicom-scan FOLDER` names the CT each RTSTRUCT references), "
               f"or an RTSTRUCT drawn on this CT (series {ct_series})")
    else:
        problem = (f"the RTSTRUCT {rtstruct_path} was drawn on CT series {drawn}; the CT given is not DICOM, so "
                   "lungai cannot check that it is that series, and its contours do not fit it: most likely another "
                   f"CT, or that one resampled - {exc.problem}")
        fix = (f"give the CT the RTSTRUCT was drawn on: DICOM series {drawn} (its folder: lungai then checks the "
               "RTSTRUCT against it), or that series converted to NIfTI / NRRD without resampling; if this CT is that "
               f"series: {exc.fix}")
    out = OffCTError(problem, fix)
    out.drawn_elsewhere = True
    return out


def _warn_other_series(rtstruct_path, reference_ct: sitk.Image) -> None:
    """Warn when the RTSTRUCT (in the CT's frame of reference) was drawn on another series than the CT read
    (:func:`lungai.dicom.discover.other_series_note`)."""
    import warnings

    from lungai.dicom.discover import _references, other_series_note

    if not reference_ct.HasMetaDataKey("0020|000e"):
        return
    note = other_series_note(rtstruct_path, _references(Path(rtstruct_path))[0],
                             reference_ct.GetMetaData("0020|000e"))
    if note:
        warnings.warn(note, InputNote, stacklevel=3)


def warn_role_notes(names, mapping=None, unread=()) -> list[str]:
    """Warn (:class:`lungai.errors.InputNote`, printed once by the CLI) what :func:`lungai.dicom.roles.role_notes`
    says about the GTV roles of these (contoured) structures (``unread``: motion envelopes that could not be read);
    returns the notes."""
    import warnings

    from lungai.dicom.roles import role_notes

    notes = role_notes(names, mapping, unread)
    for note in notes:
        warnings.warn(note, InputNote, stacklevel=3)
    return notes


def read_rtstruct_role(rtstruct_path, reference_ct: sitk.Image, role: str, mapping=None,
                       allow_gaps: bool = False) -> tuple[sitk.Image, list[str]]:
    """The mask of a role (see :mod:`lungai.dicom.roles`) and the structure names it was built from; structures
    without contours are left out (:func:`contoured_structures`)."""
    from lungai.dicom.roles import mask_for_role, required_names

    contoured, empty = contoured_structures(rtstruct_path)
    if role in ("gtv", "gtv_primary", "gtv_node", "lungs_minus_gtv"):
        warn_role_notes(contoured, mapping)
    names = required_names(role, contoured, mapping, empty=empty)
    masks = read_rtstruct(rtstruct_path, reference_ct, names=names, allow_gaps=allow_gaps, role=role, mapping=mapping)
    return mask_for_role(masks, role, mapping), names


# ----------------------------------------------------------------------------------------------- writing

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
def _drop_collinear(pts: np.ndarray) -> np.ndarray:
    """Remove vertices lying on the straight line between their neighbours (lossless for the polygon)."""
    if len(pts) < 4:
        return pts
    prev, nxt = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - prev[:, 1]) - (pts[:, 1] - prev[:, 1]) * (nxt[:, 0] - prev[:, 0])
    keep = np.abs(cross) > 1e-9
    return pts[keep] if keep.sum() >= 3 else pts


def mask_contours(mask: sitk.Image, tick=None) -> list[tuple[int, np.ndarray]]:
    """Closed planar contours of a mask: (slice index k, (n, 3) LPS mm points) per contour.  ``tick`` (optional):
    called after each slice holding the mask (:func:`contoured_slices` of them).

    Marching squares (``skimage.measure.find_contours`` at level 0.5 on the zero-padded slice), so each
    contour runs half-way between inside and outside voxel centres; holes come out as inner contours, and
    :func:`rasterise` (even-odd, pixel centres) gives back exactly the same mask.
    """
    return list(_iter_contours(mask, tick))


def _iter_contours(mask: sitk.Image, tick=None):
    """:func:`mask_contours` one at a time: ``tick`` is called once the caller has taken a slice's contours (what it
    does with them - :func:`write_rtstruct`'s ContourData - is in that slice's count)."""
    from skimage.measure import find_contours

    arr = sitk.GetArrayViewFromImage(mask)
    m = np.asarray(mask.GetDirection(), dtype=np.float64).reshape(3, 3) * np.asarray(mask.GetSpacing())
    origin = np.asarray(mask.GetOrigin(), dtype=np.float64)
    for k in np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1)):
        sl = np.pad((arr[k] > 0).astype(np.float32), 1)
        for c in find_contours(sl, 0.5):
            if len(c) > 1 and np.allclose(c[0], c[-1]):
                c = c[:-1]
            xy = _drop_collinear(c[:, ::-1] - 1.0)          # (col, row) = (i, j)
            ijk = np.column_stack([xy, np.full(len(xy), float(k))])
            yield int(k), ijk @ m.T + origin
        if tick is not None:
            tick()


def contoured_slices(mask: sitk.Image) -> int:
    """The number of slices of ``mask`` holding it: those :func:`mask_contours` contours."""
    arr = sitk.GetArrayViewFromImage(mask)
    return int(arr.reshape(arr.shape[0], -1).any(axis=1).sum())


# the sub-steps of write_rtstruct said on a progress (QA startfollow66: the lungs' RTSTRUCT of LUNG1-003, 2.4-4.2 s of
# a shared machine, was one silent step after "DICOM SEG written"): the slices contoured, counted by a
# :class:`lungai.progress.Counter` - each once its contours are in the data set (QA export68: a cohort patient's
# lungs' ContourData, pydicom's DS values, came after their count, 4 s on "slices contoured 84/184" on a loaded
# machine) -, then the UIDs' digest and the save, timed while they run (4 s more on "184/184")
RTSTRUCT_CONTOURING = "writing DICOM RTSTRUCT: slices contoured"
RTSTRUCT_SAVING = "writing DICOM RTSTRUCT: saving {n} contour{s}"


def _ds_values(pts: np.ndarray) -> list[str]:
    return [f"{v:.3f}" for v in pts.ravel()]


CONTOUR_DATA = 0x30060050


def _contour_data(pts: np.ndarray):
    """The ContourData element of the contour points ``pts`` ((n, 3), LPS mm): their DS values (:func:`_ds_values`,
    3 decimals) as the bytes pydicom writes for them - joined by backslashes, padded with a space to even length -,
    held as pydicom's raw element (as a file read has it: written as it is, converted when read).  QA exportfollow70:
    pydicom converting and validating each value (``c.ContourData = [...]``: a DSfloat made and checked against DS's
    pattern per value, ~110k on LUNG1-003's two lungs) was 2-4 s of write_rtstruct's 4.6-5.8 s; the file written is
    byte for byte the same, its UIDs too (:func:`lungai.dicom.reference.content_digest` digests the raw DS text as
    the values' text; the save's character-set check passes it over).  Its item is marked as encoded in pydicom's
    default character set: under a CT's other one (ISO_IR 192) pydicom converts it as it writes - the same bytes,
    slower."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    text = "\\".join(_ds_values(pts)).encode("ascii")
    text += b" " * (len(text) % 2)
    return RawDataElement(Tag(CONTOUR_DATA), "DS", len(text), text, 0, False, True)


def write_rtstruct(masks: dict, reference, path, label: str = "lungai", mapping=None,
                   colours: dict | None = None, description: str = "lungai results",
                   generation: dict | None = None, series_number: int | None = None, notes: dict | None = None,
                   progress=None) -> Path:
    """Write masks ({name: uint8 SimpleITK mask on the reference CT's grid}) as an RTSTRUCT referencing the CT.

    ``reference``: :class:`lungai.dicom.reference.CTReference` of the CT series.  Contours per slice from
    :func:`mask_contours`, in patient coordinates (LPS mm); RT ROI Interpreted Type from the name's role
    (GTV / ORGAN).  Written by hand with pydicom (highdicom has no RTSTRUCT writer).  ``generation``: {name:
    AUTOMATIC} for the structures SlicerLungAI made (ROI Generation Algorithm); the others are MANUAL
    (:func:`lungai.dicom.seg.generation_of`).  ``series_number``: the writing command's
    (:data:`lungai.dicom.seg.SERIES_NUMBERS`; default dicom-export's).  ``notes``: {name: text} for the ROI's
    ROIObservationDescription (ST: cut to 1024 characters), e.g. :func:`lungai.dicom.export.review_text` of a
    flagged result.  ``progress`` (optional, :mod:`lungai.progress`): the slices contoured, counted as message-only
    updates (:data:`RTSTRUCT_CONTOURING`), then the save (:data:`RTSTRUCT_SAVING`, timed while it runs); the step is
    the caller's.
    """
    from pydicom.charset import default_encoding
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from lungai.dicom.reference import check_on_grid
    from lungai.dicom.roles import structure_role
    from lungai.dicom.seg import SERIES_NUMBERS, generation_of
    from lungai.progress import Counter, waiting
    from lungai.terminology import colour_of

    path = Path(path)
    series_number = SERIES_NUMBERS["dicom-export"]["rtstruct"] if series_number is None else series_number
    from lungai.dicom.labels import check_export_labels

    if not masks:
        raise InputError("no structures to write", "give at least one mask")
    check_export_labels(masks)      # read back by name: two of one name would be one (its reader refuses them)
    slices = reference.datasets
    for name, m in masks.items():
        check_on_grid(m, reference, what=f"mask {name!r}")
    rois, contours, observations = Sequence(), Sequence(), Sequence()
    contouring = Counter(progress, RTSTRUCT_CONTOURING, sum(contoured_slices(m) for m in masks.values()))
    for number, (name, mask) in enumerate(masks.items(), start=1):
        role = structure_role(name, mapping)
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = reference.frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = generation_of(generation, name)
        rois.append(roi)
        rc = Dataset()
        rc.ROIDisplayColor = list((colours or {}).get(name) or colour_of(role))   # the one table (terminology)
        rc.ReferencedROINumber = number
        seq = Sequence()
        for k, pts in _iter_contours(mask, tick=contouring.tick):
            c = Dataset()
            img = Dataset()
            img.ReferencedSOPClassUID = slices[k].SOPClassUID
            img.ReferencedSOPInstanceUID = slices[k].SOPInstanceUID
            c.ContourImageSequence = Sequence([img])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(pts)
            c[CONTOUR_DATA] = _contour_data(pts)      # the same bytes as c.ContourData = _ds_values(pts)
            # the encoding it is in (explicit VR little endian, pydicom's default character set): written as it is
            c.set_original_encoding(False, True, default_encoding)
            seq.append(c)
        rc.ContourSequence = seq
        contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = "GTV" if role and role.startswith("gtv") else ("ORGAN" if role else "")
        obs.ROIInterpreter = ""
        note = (notes or {}).get(name)
        if note:
            obs.ROIObservationDescription = note if len(note) <= 1024 else note[:1021] + "..."
        observations.append(obs)
    contouring.close()
    written = sum(len(rc.ContourSequence) for rc in contours)
    return waiting(progress, RTSTRUCT_SAVING.format(n=written, s="s" * (written != 1)), _save_rtstruct, masks,
                   reference, path, label, description, series_number, rois, contours, observations,
                   finish_on_stop=True)   # the file written whole before a Ctrl-C / Cancel: no partial file left


def _save_rtstruct(masks: dict, reference, path: Path, label: str, description: str, series_number: int, rois,
                   contours, observations) -> Path:
    """:func:`write_rtstruct`'s data set of its ROIs, contours and observations, its UIDs and the file."""
    import datetime

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from lungai import __version__
    from lungai.dicom.reference import content_digest, derived_uid, new_dataset, save_dataset

    ref, slices = reference.first, reference.datasets
    now = datetime.datetime.now()
    arrays = {name: sitk.GetArrayViewFromImage(m) for name, m in masks.items()}
    # the UIDs follow everything the RTSTRUCT says (masks, and each ROI's name, colour, interpreted type, generation
    # algorithm: the same mask as lungai's AUTOMATIC result and as the user's MANUAL one are two objects)
    sop_uid = derived_uid(reference.series_uid, "rtstruct", label, description,
                          content_digest(*arrays.values(), rois, contours, observations), *masks,
                          str(series_number))

    ds = new_dataset(RT_STRUCTURE_SET_STORAGE, sop_uid, "RTSTRUCT", source=ref)
    ds.SeriesInstanceUID = derived_uid(sop_uid, "series")
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.OperatorsName = ""                  # Type 2 (RT Series module)
    ds.InstanceNumber = 1
    ds.Manufacturer = "SlicerLungAI"
    ds.ManufacturerModelName = "lungai"
    ds.SoftwareVersions = __version__
    # no top-level FrameOfReferenceUID: the RT Structure Set IOD has no Frame of Reference module; the frame is the
    # ReferencedFrameOfReferenceSequence's (and each ROI's ReferencedFrameOfReferenceUID)
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.StructureSetDate = ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.ApprovalStatus = "UNAPPROVED"

    contour_images = Sequence()
    for s in slices:
        item = Dataset()
        item.ReferencedSOPClassUID = s.SOPClassUID
        item.ReferencedSOPInstanceUID = s.SOPInstanceUID
        contour_images.append(item)
    series_item = Dataset()
    series_item.SeriesInstanceUID = reference.series_uid
    series_item.ContourImageSequence = contour_images
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"   # Detached Study Management (retired, as TPSs write it)
    study_item.ReferencedSOPInstanceUID = reference.study_uid
    study_item.RTReferencedSeriesSequence = Sequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = reference.frame_of_reference_uid
    frame_item.RTReferencedStudySequence = Sequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame_item])

    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = observations
    return save_dataset(ds, path)
