"""The source CT series of a result: its slice headers in the image's slice order, and its UIDs.

Every DICOM object lungai writes (SEG, RTSTRUCT, Parametric Map, SR) references the CT it was
computed from through these headers (Study / Series / FrameOfReference / SOP Instance UIDs).
"""

from __future__ import annotations

import contextlib
import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lungai.errors import InputError

if TYPE_CHECKING:       # SimpleITK imported where an image is checked: reads_dicom_ct / multiframe_ct /
    import SimpleITK as sitk    # check_output_folder run with a command's arguments (`lungai lungs`; QA notesfollow71)
# light, in lungai.paths (the output checks run with the arguments, before SimpleITK: lungai.io.outputs)
from lungai.paths import is_dicom_folder, read_ct_header  # noqa: F401



@dataclass
class CTReference:
    datasets: list          # pydicom headers (no pixel data), in the SimpleITK image's slice (k) order
    folder: Path | None = None

    @property
    def first(self):
        return self.datasets[0]

    @property
    def series_uid(self) -> str:
        return str(self.first.SeriesInstanceUID)

    @property
    def study_uid(self) -> str:
        return str(self.first.StudyInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.first.FrameOfReferenceUID)

    @property
    def patient_id(self) -> str:
        return str(getattr(self.first, "PatientID", ""))



def header_mismatch(obj, other_header, other: str, tag: str = "",
                    keywords=("PatientID", "FrameOfReferenceUID")) -> list[str]:
    """The ``keywords`` (PatientID / FrameOfReferenceUID) of ``obj`` (a DICOM header: an RTDOSE's, an RTSTRUCT's)
    differing from ``other_header``'s (the ``other``: CT, RTSTRUCT), each as "KEYWORD value{tag} is not the other's
    value"; a value missing on either side is not compared.  The one wording of the RTDOSE checks
    (:mod:`lungai.dose.read`) and of an RTSTRUCT read on another patient's CT
    (:func:`lungai.dicom.rtstruct.read_rtstruct`)."""
    wrong = []
    for keyword in keywords:
        d = str(getattr(obj, keyword, "") or "").strip()
        c = str(getattr(other_header, keyword, "") or "").strip()
        if d and c and d != c:
            wrong.append(f"{keyword} {d}{tag} is not the {other}'s {c}")
    return wrong


def carried_header(image: sitk.Image):
    """The PatientID and FrameOfReferenceUID an image in memory carries (a CT read by :func:`lungai.io.read_ct` keeps
    them: :data:`lungai.io.read.KEPT_TAGS`; an NRRD / MHA read keeps the keys SimpleITK wrote), as the attributes of
    :func:`lungai.dose.read.image_header` (a file's); "" each when it carries none."""
    from types import SimpleNamespace

    from lungai.io.read import PATIENT_ID_TAG, UID_TAGS

    keys = {"PatientID": PATIENT_ID_TAG, "FrameOfReferenceUID": UID_TAGS[2]}
    return SimpleNamespace(**{k: image.GetMetaData(t).strip() if image.HasMetaDataKey(t) else ""
                              for k, t in keys.items()})


MASK_PATIENT_FIX = ("give this patient's mask (check which file was given - in a manifest, the row's mask); if the "
                    "mask is this patient's and its header's PatientID is stale (the CT was anonymised after the mask "
                    "was saved), remove the key 0010|0020 from the mask's header, e.g. SimpleITK: "
                    "img.EraseMetaData('0010|0020') before writing it again")


def other_patient_mask(name: str, mask, ct) -> str | None:
    """The problem of a mask (``mask``: its header, :func:`lungai.dose.read.image_header`; ``name``: its file's name)
    whose PatientID is not the CT's (``ct``: a header with PatientID / FrameOfReferenceUID), a different
    FrameOfReferenceUID said with it; None when the PatientIDs match or either is missing.  The one text of
    :func:`check_mask_matches_ct` and of the headers-only pair check of train-seg / eval-seg
    (:func:`lungai.seg.dataset.check_grids`)."""
    if not header_mismatch(mask, ct, "CT", " (mask)", ("PatientID",)):
        return None
    return f"the mask {name} is another patient's: " + "; ".join(header_mismatch(mask, ct, "CT", " (mask)"))


def check_mask_matches_ct(path, reference: sitk.Image, name: str | None = None) -> None:
    """A mask image file (NIfTI / NRRD / MHA) read onto the CT ``reference``: the PatientID / FrameOfReferenceUID its
    header carries (:func:`lungai.dose.read.image_header`: the keys SimpleITK writes of an image read from DICOM; a
    NIfTI carries none) against the CT's (:func:`carried_header`), with the words of the RTDOSE / RTSTRUCT / SEG
    checks (:func:`header_mismatch`).  Another PatientID is refused (:class:`InputError`, a different frame of
    reference said with it); the same patient in another frame of reference is a warning
    (:class:`lungai.errors.InputNote`: the grid matched, so most likely a re-exported or re-anonymised scan, or a
    replan on the same grid).  What either side does not carry is not compared.  The one check of every mask read
    with its CT (:func:`lungai.io.read_mask`: ``lungai radiomics --mask / --tumour / --lungs``, ``dose-features``,
    ``radiomics-batch``'s manifest, ``dicom-export``, ``eval-seg``, the fusion crops); a DICOM SEG / RTSTRUCT is
    checked by its own reader (:func:`lungai.dicom.rtstruct.other_ct_error`).  (QA maskpid59: an NRRD mask carrying
    LUNG1-002's PatientID was measured on LUNG1-003's NRRD CT without a word.)  ``name``: the file as the messages
    name it (:func:`lungai.io.read_mask`: as typed, a manifest's cell as written); by default ``path``."""
    from lungai.dose.read import image_header

    name = str(path) if name is None else name  # the path as given: every patient's folder may hold a tumour.nrrd
    mask, ct = image_header(path), carried_header(reference)
    problem = other_patient_mask(name, mask, ct)
    if problem:
        raise InputError(problem, MASK_PATIENT_FIX)
    frame = header_mismatch(mask, ct, "CT", " (mask)", ("FrameOfReferenceUID",))
    if frame:
        import warnings

        from lungai.errors import InputNote

        who = (f"is the CT's patient's ({ct.PatientID}) but carries" if ct.PatientID and mask.PatientID
               else "carries")
        warnings.warn(f"the mask {name} {who} another frame of reference: {frame[0]} - it was saved from another "
                      "scan of this patient (a replan, another series) or re-anonymised; make sure it was drawn on "
                      "this CT", InputNote, stacklevel=3)



def reads_dicom_ct(path) -> bool:
    """True when the CT reader (:func:`lungai.io.read_ct`) reads ``path`` as a DICOM CT: a folder or DICOMDIR (the CT
    series it finds there - the folder's own series, or the one CT series of an export in its subfolders, a
    patient's ``CT/`` beside ``RTSTRUCT/``, a DICOMDIR's ``PT*/ST*/SE*``: :func:`lungai.io.read.dicom_series_files`),
    or a DICOM file (an Enhanced / multi-frame CT).  The one test of every command that writes DICOM results beside
    its outputs (``lungai segment``, ``lungai lungs``): those reference the very series read (:func:`ct_reference`),
    so a CT found in a subfolder gets them as one given by its own folder.  Decided before the CT is read (its
    output names are claimed first); a folder the reader cannot read as a CT series fails there, as before."""
    from lungai.paths import dicomdir_folder     # light: with the arguments, before SimpleITK

    p = dicomdir_folder(path)
    return p.is_dir() or (p.is_file() and read_ct_header(p) is not None)


# the series file lists found inside :func:`one_series_scan` (folder, series -> files or the InputError raised); None
# outside it: each look-up scans the folder's headers again
_SCANS: ContextVar = ContextVar("lungai_series_scans", default=None)


@contextlib.contextmanager
def one_series_scan():
    """Inside the block (this thread), the DICOM series of a folder is found once (:func:`lungai.io.read.
    dicom_series_files`: every file's header read) for :func:`dicom_ct_header` / :func:`multiframe_ct` and
    :func:`ct_series_folder` / :func:`check_output_folder` alike: the checks ``lungai lungs`` and ``lungai segment``
    make of a DICOM CT before their first bar read the series' headers twice (QA startbar66, LUNG1-003's 107 slices:
    0.4-1 s each on a shared machine).  For the checks of one command, before any work: a folder changed later is
    scanned again outside the block.  Each file's header is read once in it as well
    (:func:`lungai.dicom.pixeldata.headers_once`: the series scan, the CT reader's checks, :func:`ct_reference`)."""
    from lungai.dicom.pixeldata import headers_once

    token = _SCANS.set({})
    try:
        with headers_once():
            yield
    finally:
        _SCANS.reset(token)


def _series_files(folder: Path, series_uid: str | None) -> list:
    """:func:`lungai.io.read.dicom_series_files` of ``folder``, found once inside :func:`one_series_scan`."""
    from lungai.io.read import dicom_series_files

    scans = _SCANS.get()
    if scans is None:
        return list(dicom_series_files(folder, series_uid))
    key = (str(Path(folder).resolve()), series_uid)
    if key not in scans:
        try:
            scans[key] = list(dicom_series_files(folder, series_uid))
        except InputError as e:
            scans[key] = e
    if isinstance(scans[key], InputError):
        raise scans[key]
    return list(scans[key])


MULTIFRAME_NO_DICOM = ("{ct} is an Enhanced (multi-frame) CT: DICOM SEG / RTSTRUCT outputs need a classic CT "
                       "series (one file per slice), whose slices they reference")


def multiframe_ct(path, series_uid: str | None = None) -> bool:
    """True for a DICOM CT at ``path`` that is an Enhanced / multi-frame CT (one file holding the slices as frames):
    lungai's DICOM SEG / RTSTRUCT / Parametric Map reference the slices of a classic CT series
    (:func:`ct_reference`), so commands write their NIfTI outputs only (``lungai lungs``, ``lungai segment``: with
    a note) or refuse before any work (``lungai dicom-export``)."""
    from lungai.dicom.discover import frames_of

    ds = dicom_ct_header(path, series_uid)
    return ds is not None and frames_of(ds) > 1


def dicom_ct_header(path, series_uid: str | None = None):
    """The header (no pixels) of one slice of the DICOM CT at ``path`` (a series folder or a .dcm file), or None
    when ``path`` is not DICOM (NIfTI / NRRD / MHA: no PatientID or FrameOfReferenceUID to read).

    ``series_uid``: the series chosen in a folder holding several (as :func:`lungai.io.read_ct` takes it).
    """
    from lungai.io.read import dicomdir_folder

    p = dicomdir_folder(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
    if p.is_dir():
        try:   # the series read_ct reads (a folder with RT objects, a localizer, or the series in subfolders)
            files = [Path(f) for f in _series_files(p, series_uid)[:1]]
        except InputError:
            pass   # not DICOM, or several series: the first CT header found, as before
    for f in files:
        ds = read_ct_header(f)      # a slice without the Part-10 header too, as the CT reader reads it
        if ds is None:
            continue
        if getattr(ds, "Modality", "") in ("RTSTRUCT", "RTDOSE", "RTPLAN", "SEG", "SR"):
            continue
        if series_uid and str(getattr(ds, "SeriesInstanceUID", "")) != series_uid:
            continue
        return ds
    return None


def _normal(ds) -> np.ndarray:
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    return np.cross(iop[:3], iop[3:])


def ct_reference(folder, series_uid: str | None = None, image: sitk.Image | None = None) -> CTReference:
    """Headers of the CT series in ``folder`` (or a list of its files) sorted like SimpleITK sorts the slices.

    With ``image`` (the CT as read by :func:`lungai.io.read_ct`), the slice count and positions must match it.
    """
    if isinstance(folder, (list, tuple)):
        files = [Path(f) for f in folder]
        folder = files[0].parent if files else Path(".")
    else:
        from lungai.io.read import dicomdir_folder

        folder = dicomdir_folder(folder)
        if not folder.is_dir():
            raise InputError(f"{folder} is not a DICOM series folder: DICOM results reference the CT's DICOM UIDs "
                             "(study, series, slices), and a NIfTI / NRRD / MHA CT has none",
                             "give the folder of the CT's DICOM series the results were computed on "
                             "(lungai: --ct FOLDER)")
        try:   # the series read_ct reads (RT objects and a localizer beside it left out, or in subfolders)
            files = sorted(Path(f) for f in _series_files(folder, series_uid))
        except InputError:
            files = sorted(folder.iterdir())
    heads, where, read = [], None, []
    for f in files:
        ds = read_ct_header(f)      # a slice without the Part-10 header too, as the CT reader reads it
        if ds is None:
            continue
        if getattr(ds, "Modality", "") != "CT" or "ImagePositionPatient" not in ds:
            continue
        if series_uid and str(ds.SeriesInstanceUID) != series_uid:
            continue
        heads.append(ds)
        read.append(f)
        where = where or f.parent
    if len({str(getattr(d, "SOPInstanceUID", "")) for d in heads}) < len(heads):
        # a slice copied twice (an intact or a damaged copy beside it): the one the CT reader reads, by its rule (QA
        # export69: LUNG1-003 with a copy of one slice - the CT read, the copy left out with a note - then "holds 108
        # CT slices, the image has 107": lungai lungs / segment / dicom-export wrote no DICOM)
        from lungai.dicom.pixeldata import drop_slice_copies

        kept = {str(f) for f in drop_slice_copies(read)[0]}
        heads = [d for f, d in zip(read, heads) if str(f) in kept]
    if not heads:
        if files and multiframe_ct(files[0] if len(files) == 1 else folder, series_uid):
            raise InputError(MULTIFRAME_NO_DICOM.format(ct=folder), "write DICOM results for the CT as a classic "
                             "series (one file per slice; e.g. converted by the scanner / PACS or dicom3tools)")
        raise InputError(f"no CT slices found in {folder}", "give the folder of the CT series the result was computed on")
    uids = {str(d.SeriesInstanceUID) for d in heads}
    if len(uids) > 1:
        raise InputError(f"{folder} holds {len(uids)} CT series", "choose one with --series UID")
    n = _normal(heads[0])
    heads.sort(key=lambda d: float(np.dot(n, [float(v) for v in d.ImagePositionPatient])))
    if image is not None:
        if len(heads) != image.GetSize()[2]:
            raise InputError(f"{folder} holds {len(heads)} CT slices, the image has {image.GetSize()[2]}",
                             "write DICOM results only for a CT read from this very series folder")
        first = np.asarray([float(v) for v in heads[0].ImagePositionPatient])
        if not np.allclose(first, image.GetOrigin(), atol=1e-2):
            raise InputError(f"the CT image's origin {image.GetOrigin()} is not the first slice of {folder}",
                             "write DICOM results only for a CT read from this very series folder")
    # the folder holding the series' files (an export's PT*/ST*/SE*, a patient's CT/), not the folder given: the one
    # DICOM results must not be written into (:func:`check_output_folder`)
    return CTReference(heads, where)


# GDCM's test of ImageOrientationPatient (gdcm::DirectionCosines::IsValid): both vectors of squared length 1 and
# perpendicular, each within this; else GDCM normalises them, and if they are still not perpendicular it reads the
# identity (1,0,0 / 0,1,0)
GDCM_IOP_EPSILON = 1e-3


def itk_direction_cosines(orientation) -> np.ndarray:
    """The direction (columns: along a row, down a column, the slice normal) that SimpleITK / ITK's GDCMImageIO gives
    an image of ImageOrientationPatient ``orientation`` (6 numbers): GDCM normalises vectors that are not of unit
    length (squared length off 1 by ``GDCM_IOP_EPSILON`` or more), falls back to the identity if they are still not
    perpendicular within it, and ITK then orthogonalises: normal = row x column (unit), row = column x normal (unit),
    column = normal x row.  A series written with IOP rounded (e.g. to 2 decimals) or a little off unit length is
    read onto an orthonormal direction, which the results computed on that CT carry."""
    iop = np.asarray([float(v) for v in orientation], float)
    row, col = iop[:3], iop[3:]

    def valid(r, c):
        return (abs(r @ r - 1) < GDCM_IOP_EPSILON and abs(c @ c - 1) < GDCM_IOP_EPSILON
                and abs(r @ c) < GDCM_IOP_EPSILON)

    if not valid(row, col):
        nr, nc = np.linalg.norm(row), np.linalg.norm(col)
        row, col = (row / nr if nr else row), (col / nc if nc else col)
        if not valid(row, col):
            row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    row = np.cross(col, normal)
    row /= np.linalg.norm(row)
    col = np.cross(normal, row)
    return np.stack([row, col, normal], axis=1)


def orthonormalise_frames(ds, slice_spacing: float | None) -> bool:
    """Put a multi-frame SEG / Parametric Map ``ds`` onto the direction ITK reads its CT on: its PlaneOrientationSequence
    ImageOrientationPatient (shared and per frame) becomes :func:`itk_direction_cosines` of it, and its
    SpacingBetweenSlices ``slice_spacing`` (the CT's, along that unit normal), when the IOP is not already orthonormal.
    highdicom copies a CT's raw IOP (rounded oblique 0.98/0.17, 1.0004) and measures the slice spacing along its
    non-unit normal (3.0012 for 3.0, none for the oblique): such a SEG did not stack into a volume, or not onto the
    CT's grid.  Written so by
    the writers and undone by the readers (SEGs of other tools).  True when something was changed."""
    from pydicom.valuerep import format_number_as_ds

    groups = [g for seq in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
              for g in ds.get(seq, []) if "PlaneOrientationSequence" in g]
    changed = False
    for g in groups:
        item = g.PlaneOrientationSequence[0]
        if "ImageOrientationPatient" not in item:
            continue
        raw = np.asarray([float(v) for v in item.ImageOrientationPatient])
        direction = itk_direction_cosines(raw)
        unit = np.concatenate([direction[:, 0], direction[:, 1]])
        if np.allclose(raw, unit, atol=1e-6):
            continue
        item.ImageOrientationPatient = [format_number_as_ds(float(v)) for v in unit]
        changed = True
        if slice_spacing and "PixelMeasuresSequence" in g:
            g.PixelMeasuresSequence[0].SpacingBetweenSlices = format_number_as_ds(float(slice_spacing))
    return changed


def series_slice_spacing(reference: CTReference) -> float | None:
    """The CT series' slice spacing along its unit slice normal (:func:`series_direction`), as ITK reads it; None for
    one slice."""
    if len(reference.datasets) < 2:
        return None
    run = (np.asarray([float(v) for v in reference.datasets[-1].ImagePositionPatient])
           - np.asarray([float(v) for v in reference.first.ImagePositionPatient]))
    return abs(float(run @ series_direction(reference)[:, 2])) / (len(reference.datasets) - 1)


def series_direction(reference: CTReference) -> np.ndarray:
    """The CT series' direction cosines as columns (x: along a row, y: down a column, z: the way its slices run in
    the image's slice order) - from ImageOrientationPatient (normalised and orthogonalised as ITK reads it:
    :func:`itk_direction_cosines`) and the slices' positions, as SimpleITK reads them."""
    first = reference.first
    direction = itk_direction_cosines(first.ImageOrientationPatient)
    if len(reference.datasets) > 1:
        run = (np.asarray([float(v) for v in reference.datasets[-1].ImagePositionPatient])
               - np.asarray([float(v) for v in first.ImagePositionPatient]))
        if float(np.dot(run, direction[:, 2])) < 0:  # slices stored from the other end (head to feet in an axial CT)
            direction[:, 2] = -direction[:, 2]
    return direction


def check_on_grid(image: sitk.Image, reference: CTReference, what: str = "mask") -> None:
    """``image`` must lie on the CT series' voxel grid (slices, rows, columns, first position, pixel spacing) and
    store its voxels in the series' order (direction: ImageOrientationPatient as ITK reads it, and the slice order):
    the last guard before a DICOM SEG / RTSTRUCT / Parametric Map is written, whose frames are the CT's slices, rows
    and columns (an array stored in another order - a PLS or RAS map of an LPS CT - would be written transposed or
    flipped).  Masks and maps read from files are put in the CT's order first by :func:`lungai.io.geometry.on_grid`."""
    from lungai.io.geometry import orientation_of

    first = reference.first
    nx, ny, nz = image.GetSize()
    spacing = [float(v) for v in first.PixelSpacing]     # row spacing (y), column spacing (x)
    direction = series_direction(reference)
    mask_direction = np.asarray(image.GetDirection()).reshape(3, 3)
    same_direction = np.allclose(mask_direction, direction, atol=1e-3)
    ok = (nz == len(reference.datasets) and (ny, nx) == (int(first.Rows), int(first.Columns))
          and np.allclose(image.GetSpacing()[:2], spacing[::-1], atol=1e-3)
          and np.allclose(image.GetOrigin(), [float(v) for v in first.ImagePositionPatient], atol=1e-2))
    mine = orientation_of(image)
    import SimpleITK as sitk

    theirs = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(direction.flatten().tolist())
    cosines = lambda d: ", ".join(f"{v + 0.0:.4g}" for v in np.asarray(d).flatten())  # noqa: E731
    if ok and not same_direction and mine != theirs:
        raise InputError(
            f"the {what} stores its voxels in another order than CT series {reference.series_uid}: direction "
            f"({cosines(image.GetDirection())}; {mine} order) against the series' ({cosines(direction)}; {theirs} "
            "order, from its ImageOrientationPatient and slice order); written as it is it would be transposed or "
            "flipped against the CT",
            f"put the {what} in the CT's order first (flips / permutations only, no resampling): "
            "lungai.io.geometry.on_grid(ct, image), or in Python sitk.DICOMOrient(image, "
            f"'{theirs}')")
    if ok and not same_direction:
        # the series' own voxels (size, spacing, first position), axes turned a little: not the CT as read from it
        cos = np.clip((np.trace(direction.T @ mask_direction) - 1) / 2, -1.0, 1.0)
        raise InputError(
            f"the {what} has the size, spacing and first position of CT series {reference.series_uid} but its axes "
            f"are turned {np.degrees(np.arccos(cos)):.2g} degrees against the series' (direction "
            f"({cosines(mask_direction)}) against ({cosines(direction)}): the series' ImageOrientationPatient "
            f"{'/'.join(str(v) for v in first.ImageOrientationPatient)} as ITK reads it, normalised and "
            "orthogonalised, and its slice order)",
            f"compute the {what} on the CT as lungai reads this series (lungai.io.read_ct), or resample it onto that "
            "image (nearest neighbour for a mask) before writing DICOM")
    if not ok:
        raise InputError(
            f"the {what} ({nx} x {ny} x {nz}, origin {tuple(round(v, 2) for v in image.GetOrigin())}, direction "
            f"({cosines(image.GetDirection())})) is not on the grid of CT series {reference.series_uid} "
            f"({first.Columns} x {first.Rows} x {len(reference.datasets)}, direction ({cosines(direction)}))",
            "write DICOM results only for masks / maps computed on this very CT series")


def derived_uid(*parts) -> str:
    """A deterministic UID from the given parts (same inputs -> same UID; different content -> different UID)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def stable_dimension_uid(ds, sop_uid: str) -> None:
    """Replace the random DimensionOrganizationUID highdicom gives a SEG / parametric map (in the Dimension
    Organization and Dimension Index sequences) by one derived from its SOPInstanceUID: a re-run of the same content
    is the same object, the creation dates / times aside (QA: one SOPInstanceUID carried two contents)."""
    uid = derived_uid(sop_uid, "dimension-organization")
    for item in ds.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = uid
    for item in ds.get("DimensionIndexSequence", []):
        if "DimensionOrganizationUID" in item:
            item.DimensionOrganizationUID = uid


def tracking_uid(series_uid: str, label: str, content: str = "") -> str:
    """The Tracking UID of the finding ``label`` on CT series ``series_uid`` whose content is ``content``
    (:func:`content_digest` of what the finding is: a SEG segment's voxels, :func:`lungai.dicom.seg.write_seg`; an SR
    group without a segment: its measurements and the SEG it goes with, :func:`lungai.dicom.sr.write_sr`).  It stays
    the same from run to run (a re-export of the same masks is the same object), and two lesions of one label on one
    series - two runs with two seeds, both segments "Tumour" - are two findings (QA: they had one TrackingUID,
    derived from the series and the label only, so a PACS / viewer took them for one lesion).  An SR group of a SEG
    segment takes that segment's TrackingUID (OHIF / dcmqi link the two by it)."""
    return derived_uid(series_uid, "tracking", label, content)


# attributes left out of :func:`content_digest`: they change from run to run (creation times) without changing what
# the object says - same input -> same digest -> same UIDs
VOLATILE_KEYWORDS = frozenset({"InstanceCreationDate", "InstanceCreationTime", "ContentDate",
                               "ContentTime", "StructureSetDate", "StructureSetTime", "SeriesDate", "SeriesTime"})


@dataclass(frozen=True)
class Slab:
    """A 0/1 mask of ``shape`` that is 0 outside its slices ``start`` ... ``start + len(values) - 1`` (``values``:
    those slices, an array of the mask's dtype): :func:`content_digest` digests it as the whole mask (the same
    digest: its shape, dtype and every byte, the slices outside it as zero bytes), without the whole mask being made
    (:func:`lungai.dicom.seg.write_seg`: a GTV on a few slices of a CT of 107)."""
    values: np.ndarray
    start: int
    shape: tuple


# the zero bytes fed to the digest at once for the slices outside a Slab
_ZERO_CHUNK = 1 << 22


def _add_slab(h, slab: Slab) -> None:
    """Feed ``h`` what :func:`content_digest` feeds it for the whole array ``slab`` stands for."""
    a = np.ascontiguousarray(slab.values)
    shape = tuple(int(v) for v in slab.shape)
    h.update(b"A" + str((shape, a.dtype.str)).encode())
    per_slice = int(np.prod(shape[1:], dtype=np.int64)) * a.dtype.itemsize
    before, after = slab.start * per_slice, (shape[0] - slab.start - len(a)) * per_slice
    zeros = memoryview(bytes(min(max(before, after), _ZERO_CHUNK)))
    for count in (before, None, after):
        if count is None:
            if a.size:
                h.update(memoryview(a).cast("B"))
            continue
        while count > 0:
            step = min(count, len(zeros))
            h.update(zeros[:step])
            count -= step


def content_digest(*parts) -> str:
    """A digest of what an object lungai writes says, for its deterministic UIDs (:func:`derived_uid`): arrays
    (pixels: shape and bytes), pydicom datasets / sequences (every attribute - segment descriptions, ROI sequences,
    value mappings, SR content - but :data:`VOLATILE_KEYWORDS`) and plain values (labels, descriptions).  Two
    objects differing in any of these (the same mask as lungai's AUTOMATIC result and as the user's MANUAL contour)
    get different UIDs, so a PACS / DICOM database keeps both."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    h = hashlib.sha1()

    def add(p):
        if isinstance(p, Slab):
            _add_slab(h, p)
        elif isinstance(p, np.ndarray):
            if p.flags.c_contiguous or p.ndim < 2:
                a = np.ascontiguousarray(p)
                h.update(b"A" + str((a.shape, a.dtype.str)).encode())
                h.update(memoryview(a).cast("B") if a.size else b"")    # its bytes, not a copy (a CT-sized map: 0.1 GB)
            else:   # a view in another order (write_seg's frames): its bytes in C order, a slice at a time, not a copy
                h.update(b"A" + str((p.shape, p.dtype.str)).encode())
                for item in p:
                    h.update(memoryview(np.ascontiguousarray(item)).cast("B") if item.size else b"")
        elif isinstance(p, Dataset):
            h.update(b"D")
            for tag in sorted(p.keys()):        # tag order, as iterating the data set does
                raw = p.get_item(tag)
                if getattr(raw, "is_raw", False) and raw.VR == "DS" and raw.value:
                    # a raw DS element (write_rtstruct's ContourData: lungai.dicom.rtstruct._contour_data) digested
                    # from its text, unconverted, as its converted value is: one value, its text; several, pydicom's
                    # MultiValue's str(), "[v1, v2, ...]" (each DS value's text) - the same digest, the same UIDs
                    if keyword_for_tag(tag) in VOLATILE_KEYWORDS:
                        continue
                    texts = [t.strip() for t in raw.value.decode("ascii").split("\\")]
                    h.update(f"({tag:08x},DS)".encode())
                    add(f"[{', '.join(texts)}]" if len(texts) > 1 else texts[0])
                    continue
                elem = p[tag]
                if elem.keyword in VOLATILE_KEYWORDS:
                    continue
                h.update(f"({elem.tag:08x},{elem.VR})".encode())
                add(elem.value)
            h.update(b"d")
        elif isinstance(p, (Sequence, list, tuple)):
            h.update(b"S")
            for item in p:
                add(item)
            h.update(b"s")
        elif isinstance(p, (bytes, bytearray)):
            h.update(b"B" + str(len(p)).encode() + b":" + bytes(p))
        else:
            t = str(p).encode("utf-8", "surrogateescape")
            h.update(b"T" + str(len(t)).encode() + b":" + t)

    for p in parts:
        add(p)
    return h.hexdigest()


def ct_series_folder(path, series_uid: str | None = None) -> Path | None:
    """The folder holding the files of the DICOM CT series the CT reader reads at ``path`` (the folder itself, a
    patient's ``CT/``, an export's ``PT*/ST*/SE*``: :func:`lungai.io.read.dicom_series_files`); None for a CT that
    is not a DICOM folder (NIfTI / NRRD / a single file) or a folder the reader cannot read as one series (it fails
    there).  Read from the file list only (no slice read): checked before any work (:func:`check_output_folder`)."""
    from lungai.io.read import dicomdir_folder

    p = dicomdir_folder(path)
    if not p.is_dir():
        return None
    try:
        files = _series_files(p, series_uid)
    except InputError:
        return None
    return Path(files[0]).parent if files else None


def check_output_folder(out: Path, reference, series_uid: str | None = None) -> None:
    """DICOM results must not land in the CT series' own folder (it would then hold several series), nor anywhere in
    the DICOM export holding it (:func:`lungai.io.outputs.check_outside_export`, the export's top folder found by
    :func:`lungai.io.outputs.dicom_export_root`: a patient folder holding only CT/ and RTSTRUCT/, an export's top
    folder - lungai's SEG / RTSTRUCT there made ``lungai cohort`` refuse the patient as ambiguous).

    ``reference``: the :class:`CTReference` (its ``folder``: where the series' files lie, not the folder given), or the CT's path as given (a DICOM folder, checked
    before any work through :func:`ct_series_folder`, ``series_uid`` choosing the series; a NIfTI / NRRD CT passes)."""
    folder = reference.folder if isinstance(reference, CTReference) else ct_series_folder(reference, series_uid)
    if folder is not None and Path(out).resolve() == Path(folder).resolve():
        raise InputError(f"refusing to write DICOM results into the CT series folder {folder}",
                         "choose an output folder outside the CT's folder (it must keep only the CT slices)")
    if folder is not None:                   # nor anywhere in the export holding it (lungai cohort's rule)
        from lungai.io.outputs import EXPORT_WHY, check_outside_export, dicom_export_root

        check_outside_export(out, dicom_export_root(folder), EXPORT_WHY)


# the CT's de-identification record, copied when present onto every object lungai writes (SEG, RTSTRUCT, Parametric
# Map, SR: :func:`copy_deidentification`) - a de-identified CT's results say they are de-identified too
DEIDENTIFICATION_KEYWORDS = ("PatientIdentityRemoved", "LongitudinalTemporalInformationModified",
                             "DeidentificationMethod", "DeidentificationMethodCodeSequence")


def copy_deidentification(ds, source):
    """Copy :data:`DEIDENTIFICATION_KEYWORDS` present in ``source`` (the CT's header) onto ``ds``; returns ``ds``."""
    import copy

    for kw in DEIDENTIFICATION_KEYWORDS:
        if source is not None and kw in source:
            setattr(ds, kw, copy.deepcopy(source[kw].value))
    return ds


def copy_character_set(ds, source):
    """Copy the Specific Character Set of ``source`` (the CT's header) onto ``ds``; returns ``ds``.  The patient's
    name and the other text copied from the CT are then written in the CT's encoding (ISO_IR 192: UTF-8) - without it
    pydicom writes them in the default repertoire: 'Müller' as Latin-1 bytes, '王^小明' as '?^??'."""
    import copy

    if source is not None and "SpecificCharacterSet" in source:
        ds.SpecificCharacterSet = copy.deepcopy(source.SpecificCharacterSet)
    elif source is not None and "SpecificCharacterSet" in ds:   # the CT has none: the default repertoire, as it
        del ds.SpecificCharacterSet     # (not highdicom's placeholder, HIGHDICOM_CHARACTER_SET)
    return ds


UTF8 = "ISO_IR 192"
# the Specific Character Set handed to highdicom's constructors (SEG, Parametric Map, SR): highdicom takes the source
# images' own otherwise and refuses valid ones it does not list (['', 'ISO 2022 IR 87'] of a Japanese CT: "'' is not a
# valid SpecificCharacterSetValues").  Only a placeholder: the CT's own value replaces it (:func:`copy_from_ct`) and
# pydicom encodes the text on writing, in the character set the object then declares (:func:`settle_character_set`)
HIGHDICOM_CHARACTER_SET = UTF8
# the values of Specific Character Set meaning the default repertoire (ASCII) for the text outside escape sequences
DEFAULT_REPERTOIRE = ("", "ISO_IR 6", "ISO 2022 IR 6")
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})   # the VRs Specific Character Set applies to


def _texts(ds):
    """The text values (VRs :data:`TEXT_VRS`) of ``ds`` and its sequences' items.  A raw element of a VR known to
    hold no text (write_rtstruct's ContourData, DS: :func:`lungai.dicom.rtstruct._contour_data`) is passed over
    unconverted (QA exportfollow70: converting LUNG1-003's lungs' ~110k contour values here was ~1.8 s of a save)."""
    for tag in sorted(ds.keys()):           # tag order, as iterating the data set does
        raw = ds.get_item(tag)
        if getattr(raw, "is_raw", False) and raw.VR and raw.VR != "SQ" and raw.VR not in TEXT_VRS:
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _texts(item)
        elif elem.VR in TEXT_VRS and elem.value is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            yield from (str(v) for v in values if v is not None)


def encodable(text: str, character_set) -> bool:
    """True when ``text`` can be written in Specific Character Set ``character_set`` (a value or list of values;
    None / empty: the default repertoire, ASCII) without a character lost."""
    from pydicom import config
    from pydicom.charset import convert_encodings, encode_string

    if text.isascii():
        return True
    values = ([character_set] if isinstance(character_set, str) else list(character_set or [])) or [""]
    values = [str(v).strip() for v in values]
    if values == [""] or values == ["ISO_IR 6"]:
        return False
    encodings = convert_encodings(values)
    if values[0] in DEFAULT_REPERTOIRE:   # pydicom writes the default repertoire as Latin-1: no, ASCII only
        encodings = ["ascii"] + list(encodings[1:])
    mode = config.settings.writing_validation_mode
    try:
        config.settings.writing_validation_mode = config.RAISE    # no '?' for a character it cannot write
        encode_string(text, encodings)
        return True
    except (UnicodeError, ValueError, LookupError):
        return False
    finally:
        config.settings.writing_validation_mode = mode


def settle_character_set(ds):
    """The one character-set rule of every object lungai writes (SEG, RTSTRUCT, Parametric Map, SR:
    :func:`save_dataset`): it keeps the CT's Specific Character Set (:func:`copy_character_set`) when all its text
    (patient name, ROI names, segment labels, comments ...) can be written in it; else it declares ISO_IR 192
    (UTF-8), which holds every character - a label 'Lunge_rechts_ä' on a CT without a character set (ASCII) is not
    written as an undeclared Latin-1 byte, nor '肺' on an ISO_IR 100 CT as '?' (two such names would become one).
    Returns ``ds``."""
    current = ds.get("SpecificCharacterSet")
    if not all(encodable(t, current) for t in _texts(ds)):
        ds.SpecificCharacterSet = UTF8
    return ds


def copy_from_ct(ds, source):
    """What every object lungai writes (SEG, RTSTRUCT, Parametric Map, SR) takes from the CT's header besides the
    patient / study: its Specific Character Set (:func:`copy_character_set`) and de-identification record
    (:func:`copy_deidentification`); returns ``ds``."""
    return copy_deidentification(copy_character_set(ds, source), source)


def new_dataset(sop_class: str, sop_uid: str, modality: str, source=None):
    """A dataset with file meta (explicit VR little endian) and, from ``source`` (a CT header), the patient / study,
    its character set and de-identification record (:func:`copy_from_ct`)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, sop_uid, modality
    if source is not None:
        copy_character_set(ds, source)       # first: the text below is written in the CT's encoding
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                   "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription"):
            setattr(ds, kw, getattr(source, kw, ""))
        copy_from_ct(ds, source)
    return ds


def save_dataset(ds, path) -> Path:
    """Write a pydicom / highdicom dataset atomically (a partial file never takes the final name), its text in a
    character set that holds it (:func:`settle_character_set`)."""
    import pydicom

    from lungai.io.outputs import writing

    settle_character_set(ds)
    path = Path(path)
    tmp = path.with_name(".partial-" + path.name)
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
