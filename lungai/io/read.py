"""Read CTs and masks from DICOM series folders or NIfTI / NRRD / MHA files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError, counted
from lungai.io.geometry import on_grid
# the folder / file kinds a mask option is checked for with the arguments (lungai.paths: no SimpleITK), read here too
from lungai.paths import FILE_SUFFIXES, IMAGE_MODALITIES, RTSTRUCT_AS_MASK_FIX, mask_file_fix
from lungai.paths import check_mask_kind, check_not_ct_object, image_as_mask_error
from lungai.paths import dicom_modality as _dicom_modality
from lungai.paths import folder_as_mask as _folder_as_mask
from lungai.paths import image_suffix as _suffix
# light, in lungai.paths (the output checks run with the arguments, before SimpleITK: lungai.io.outputs)
from lungai.paths import NOT_DICOM_SUFFIXES, dicomdir_folder  # noqa: F401
from lungai.paths import could_be_dicom as _could_be_dicom  # noqa: F401
from lungai.io.validate import (MissingSlicesError, SpacingChangeError, check_3d, check_ct, check_finite,
                                check_slice_positions, check_steps_along_normal, slice_offsets)

# A folder that is no series folder is searched below for its CT series (an export: DICOMDIR + patient / study /
# series folders, a TCIA download), within bounds, so that a wrong folder (a home folder, a Python environment) is
# refused at once rather than read file by file:
BELOW_DEPTH = 8             # folder levels searched (DICOMDIR's PATIENT/STUDY/SERIES: 3; the TCIA downloader's
                            # manifest-N/COLLECTION/PATIENT/STUDY/SERIES: 5, a folder or two above it: up to 7)
BELOW_MAX_FILES = 100_000   # more files below: not one export
BELOW_PROBE = 300           # none of the files nearest the top that could be DICOM is DICOM: no DICOM export
BELOW_PROGRESS = 500        # a progress bar from this many files on
# Study, Series and Frame of Reference UIDs of a CT read from a DICOM series (image metadata keys)
UID_TAGS = ("0020|000d", "0020|000e", "0020|0052")
PATIENT_ID_TAG = "0010|0020"
# kept on a CT read from DICOM: its UIDs and PatientID, so DICOM RT objects read onto it can be checked against it
# (lungai.dicom.rtstruct.read_rtstruct names a PatientID of another patient)
KEPT_TAGS = UID_TAGS + (PATIENT_ID_TAG,)
CHARSET_TAG = "0008|0005"   # SpecificCharacterSet
SOP_UID_TAG = "0008|0018"   # SOPInstanceUID
# the key of the SOPInstanceUIDs of a DICOM CT's slices ("\\"-joined) on the image read: what an RTSTRUCT's contours
# reference (ContourImageSequence), checked when it carries no FrameOfReferenceUID
# (lungai.dicom.rtstruct.check_unlinked_ct; QA dicomnote61); never written (lungai.io.write.write_image)
SLICE_UIDS_KEY = "lungai|SliceSOPInstanceUIDs"
# The commands taking --series UID, named in the fix for a DICOM folder of several CT series: the others read their
# CTs from a manifest or table (radiomics-batch, stage predict --ct, train-seg --implant-into) or a Slicer panel, and
# take one series' own folder (QA: "lungai CLI: --series UID" sent a radiomics-batch user to an option it lacks)
SERIES_OPTION_COMMANDS = ("lungs", "segment", "radiomics", "dose-features", "demo", "dicom-export")
SERIES_OPTION = "--series UID of lungai " + " / ".join(SERIES_OPTION_COMMANDS)


def dicom_text(value: str, charset: str | None = None) -> str:
    """A DICOM text value as ITK / GDCM hands it over, decoded with the file's SpecificCharacterSet ``charset`` (its
    value as ITK gives it, e.g. ``ISO_IR 100``) and stripped of its padding - the text pydicom reads.  ITK passes the
    value's bytes on undecoded: those that are not UTF-8 (a Latin-1 ``ë`` of an ISO_IR 100 file, what most planning
    systems write) arrive as surrogate escapes, which SimpleITK's ``SetMetaData`` refuses with a bare ``TypeError``
    (QA: a CT series whose PatientID held such a letter could not be read at all)."""
    raw = value.encode("utf-8", "surrogateescape")
    if raw.isascii():
        return value.strip().rstrip("\x00")
    import warnings

    from pydicom.charset import convert_encodings, decode_bytes

    terms = [t.strip() for t in (charset or "").strip().rstrip("\x00").split("\\")]
    with warnings.catch_warnings():     # an unknown or wrong term: pydicom falls back (to Latin-1) with a warning
        warnings.simplefilter("ignore")
        text = decode_bytes(raw, convert_encodings(terms), set())
    return text.strip().rstrip("\x00")


# image files whose header may name a separate pixel data file (MetaImage ElementDataFile, NRRD "data file")
DETACHED_HEADER_SUFFIXES = (".mhd", ".mha", ".nhdr", ".nrrd")
_HEADER_BYTES = 1 << 16


def image_files(path) -> list:
    """The files an image is stored in: ``path`` and, for a header naming its pixel data elsewhere (``.mhd`` /
    ``.mha`` ``ElementDataFile``, ``.nhdr`` / ``.nrrd`` ``data file``: one file, a ``LIST`` of files or a
    ``%``-pattern with min max step), those data files (relative to the header's folder, as ITK reads them; the ones
    that exist).  Every content hash of an input image hashes them all: the header alone stays the same when the
    pixels change (a ``.raw`` / ``.zraw`` / ``.raw.gz`` replaced)."""
    p = Path(path)
    if not p.name.lower().endswith(DETACHED_HEADER_SUFFIXES) or not p.is_file():
        return [p]
    with open(p, "rb") as fh:
        head = fh.read(_HEADER_BYTES).decode("latin-1")
    nrrd = head.startswith("NRRD")
    lines = head.split("\n")
    out = [p]
    for i, line in enumerate(lines):
        if nrrd and not line.strip():
            break                       # the end of an NRRD header (attached data follows)
        key, sep, value = line.partition(":" if nrrd else "=")
        key = key.strip().lower().replace(" ", "")
        if not sep or key not in ("datafile", "elementdatafile"):
            continue
        value = value.strip()
        words = value.split()
        if value == "LOCAL" or not words:
            return out
        if words[0] == "LIST":
            names = [ln.strip() for ln in lines[i + 1:] if ln.strip()]
        elif "%" in words[0] and len(words) >= 4:
            try:
                first, last, step = (int(w) for w in words[1:4])
                names = [words[0] % k for k in range(first, last + (1 if step > 0 else -1), step or 1)]
            except (ValueError, TypeError):
                names = []
        else:
            names = [value]
        return out + [f for f in ((p.parent / n) for n in names) if f.is_file()]
    return out


def file_digest(path) -> dict:
    """An input file's name, size and content hash: what a resumed run compares to redo a result whose input changed
    (``lungai cohort``'s RTSTRUCT / RTDOSE, ``radiomics-batch``'s image and masks); modification times are not used,
    so a copied file is the same input.  An image header naming its pixel data in another file (:func:`image_files`:
    ``.mhd`` + ``.raw``) is hashed with that file (size: of both)."""
    import hashlib

    p = Path(path)
    h = hashlib.sha256()
    files = image_files(p)
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return {"file": p.name, "size": sum(f.stat().st_size for f in files), "sha256": h.hexdigest()[:16]}


def check_series_option(path, series_uid: str | None) -> None:
    """Refuse a ``--series`` UID that cannot choose the series read at ``path``: an image file (NIfTI, NRRD, MHA) holds
    no DICOM series, and a DICOM file (an Enhanced CT) holds one, whose SeriesInstanceUID must be the one given.  A
    folder (or DICOMDIR) is left to :func:`dicom_series_files`, which chooses the series there.  QA: ``lungai segment
    ct.nrrd --series UID`` segmented the file, the UID ignored without a word (a user meaning the DICOM series of
    another scan got results of the wrong image)."""
    if series_uid is None:
        return
    p = dicomdir_folder(path)
    if p.is_dir() or not p.exists():
        return
    from lungai.dicom.reference import read_ct_header

    ds = read_ct_header(p)
    if ds is None:
        raise InputError(f"--series {series_uid}: {p.name} is an image file, not a DICOM folder: it holds no series "
                         "to choose", "leave --series out to use this file, or give the DICOM folder holding that "
                                      "series")
    own = str(getattr(ds, "SeriesInstanceUID", "") or "").strip()
    if own and own != series_uid.strip():
        raise InputError(f"--series {series_uid}: {p.name} is the DICOM series {own}, not that one",
                         "leave --series out to use this file, or give the DICOM folder / file of that series")


def _gdcm_series(folder: Path) -> list[str]:
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)   # ITK's "No Series were found": our errors say it
    try:
        return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or [])
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)


def dicom_series_files(path, series_uid: str | None = None, unreadable: list | None = None) -> list[str]:
    """The files of the CT series at ``path``, sorted as ITK reads them.

    ``path``: a series folder; a folder holding the CT with RTSTRUCT / RTDOSE / SEG files (as planning systems
    export; only CT image series count, a scout / LOCALIZER or a series of fewer than 3 slices neither:
    :func:`lungai.dicom.discover.ct_skip_reason`); a DICOMDIR file (its folder); or an export folder whose series
    lie in subfolders (the one CT series :func:`lungai.dicom.discover.scan` finds below it, as ``lungai
    dicom-scan`` lists them).  ``series_uid`` chooses a series where there are several.
    ``unreadable``: a list extended with the DICOM files there that could not be read (a slice cut short in its
    header may be one of the series'), each warned of (:func:`lungai.dicom.discover.unreadable_note`) - in the
    series folder, and in the folders of the series found below an export folder (QA: there they were left out
    without a word).
    """
    from lungai.dicom.discover import ct_skip_reason, series_description, skipped_ct_note

    unreadable = [] if unreadable is None else unreadable
    folder = dicomdir_folder(path)
    ids = _gdcm_series(folder)
    if not ids:
        return _series_files_below(folder, series_uid, unreadable=unreadable)
    files_of = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in ids}
    unreadable.extend(_add_files_gdcm_passed_over(folder, files_of))
    if series_uid is not None:
        if series_uid not in files_of:      # the CT of an export folder may lie in a subfolder
            return _series_files_below(folder, series_uid, unreadable=unreadable)
        return _ct_files_of(files_of[series_uid], f"the DICOM series in {folder}")[0]
    kinds, kept = {}, {}
    for uid in ids:     # each series as its CT volume (a scout in the CT's own series left out)
        kept[uid] = _ct_files_of(files_of[uid], f"the DICOM series in {folder}", check=False)
    for uid, (files, ds, _, _) in kept.items():
        modality = str(getattr(ds, "Modality", "") or "") if ds is not None else ""
        skip = ct_skip_reason(ds, len(files)) if modality in ("", "CT") else f"modality {modality}"
        kinds[uid] = (modality or "?", skip, series_description(ds))
    chosen = [uid for uid in ids if kinds[uid][1] is None]
    if not chosen:          # only RT objects / scouts here: the CT may lie in a subfolder (an export's CT/ folder)
        below = _cts_below(folder)
        if below:
            return _series_files_below(folder, None, below, unreadable)
        listing = "; ".join(f"{uid} ({kinds[uid][0]}: {kinds[uid][1]})" for uid in ids[:10])
        raise InputError(f"{folder} holds no CT image series (here or in its subfolders), only: {listing}",
                         "point to the folder of the CT's slices; `lungai dicom-scan "
                         f"{folder}` lists what an export holds")
    if len(chosen) > 1:
        listing = "; ".join(f"{uid} ({kinds[uid][0]}, {len(kept[uid][0])} files"
                            + (f", {kinds[uid][2]}" if kinds[uid][2] else "") + ")" for uid in chosen)
        images = {f for uid in ids for f in files_of[uid]}
        raise SeveralSeriesError(
            f"{folder} holds {len(chosen)} different DICOM series: {listing}", chosen,
            _drawn_on_hint((p for p in folder.iterdir() if p.is_file() and str(p) not in images), chosen, folder)
            + "put each series in its own folder and give that folder (a manifest's row too), or choose one series by "
            f"its SeriesInstanceUID ({SERIES_OPTION}); `lungai dicom-scan {folder}` lists them")
    skipped = [skipped_ct_note(uid, kept[uid][0] or files_of[uid], kinds[uid][1]) for uid in ids
               if kinds[uid][1] is not None and kinds[uid][0] in ("CT", "?")]
    if skipped:     # a scout / LOCALIZER series beside the CT (QA: left out without a word): said once, as scan does
        import warnings

        from lungai.errors import InputNote

        warnings.warn(f"the DICOM series in {folder}: reading CT series {chosen[0]}; " + "; ".join(skipped[:5])
                      + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""), InputNote, stacklevel=3)
    return _check_ct_files(kept[chosen[0]], f"the DICOM series in {folder}")


def _add_files_gdcm_passed_over(folder: Path, files_of: dict) -> list[Path]:
    """Put back into ``files_of`` (SeriesInstanceUID: its files, as GDCM lists them) the DICOM files of ``folder``
    that GDCM passed over although their header names one of those series: a slice cut short (an interrupted copy or
    PACS transfer), which GDCM leaves out without a word.  QA: a truncated slice in the middle read as "1 slice
    missing" naming no file; a truncated copy of a slice beside it left out silently.  Put back, the CT checks name
    the file: :func:`lungai.dicom.pixeldata.drop_slice_copies` (a damaged copy of a slice: left out, a note) and
    :func:`lungai.dicom.pixeldata.check_ct_files` (a truncated slice: refused), as ``lungai cohort`` does.  A file
    whose header cannot be read, or was cut short before its SeriesInstanceUID
    (:func:`lungai.dicom.discover.cut_short_header`), belongs to no known series: warned of by name
    (:func:`lungai.dicom.discover.unreadable_note`, cohort's note) - it may be a slice of the CT, which is then read
    without it (a missing slice inside the series is refused naming it: :func:`_check_series_positions`; at its end
    the CT is one slice shorter).  Returns those unreadable files."""
    import warnings

    from lungai.dicom.discover import _header, cut_short_header, looks_dicom, unreadable_note
    from lungai.errors import InputNote

    listed = {str(Path(f)) for files in files_of.values() for f in files}
    unreadable = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or str(p) in listed or not looks_dicom(p):
            continue
        ds = _header(p)
        if ds is None or cut_short_header(ds):
            unreadable.append(p)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "").strip()
        if uid in files_of:
            files_of[uid] = _sorted_along_normal([*files_of[uid], str(p)])
    if unreadable:
        warnings.warn(f"the DICOM series in {folder}: {unreadable_note(unreadable)}", InputNote, stacklevel=4)
    return unreadable


class SeveralSeriesError(InputError):
    """A DICOM folder holding several CT series, none chosen: ``series``, their SeriesInstanceUIDs.  The CLI names the
    one that an RTSTRUCT / SEG given with the CT (``--rtstruct FILE``, outside the CT's folder) was drawn on
    (:func:`name_drawn_on`), as the fix names the one of those lying in the folder (:func:`_drawn_on_hint`)."""

    def __init__(self, problem: str, series: list, fix: str = ""):
        super().__init__(problem, fix)
        self.series = list(series)


def name_drawn_on(exc: SeveralSeriesError, given) -> SeveralSeriesError:
    """``exc`` with its fix starting with the series that the RTSTRUCT / SEG files ``given`` with the CT (the
    command's --rtstruct file, a SEG mask; other paths, folders, non-DICOM files: passed over) were drawn on
    (:func:`_drawn_on_hint`); ``exc`` itself when none names one of its series."""
    files = [Path(f) for f in given if f and Path(f).is_file()]
    hint = _drawn_on_hint([f for f in files if f"{f.name} here was drawn on" not in exc.fix], exc.series)  # not twice
    return SeveralSeriesError(exc.problem, exc.series, hint + exc.fix) if hint else exc


def _drawn_on_hint(files, series: list, folder: Path | None = None) -> str:
    """The start of the fix for a folder of several CT ``series``: the series that each RTSTRUCT / SEG of ``files``
    was drawn on, with its ``--series`` value; '' when none references one of them (a flat export of the CT, a second
    reconstruction and the plan's structure set: the structure set names the plan's CT).  ``folder``: the CT folder
    ``files`` lie in (files of the folder other than the series' images), each named "here"; else each is named by
    its path (a file given with the CT)."""
    from lungai.dicom.discover import _header, _references

    said = []
    for f in sorted(files):
        ds = _header(f)
        if ds is None or str(getattr(ds, "Modality", "") or "") not in ("RTSTRUCT", "SEG"):
            continue
        try:
            referenced = _references(f)[0] & set(series)
        except Exception:  # noqa: BLE001 - an unreadable RT file says nothing here; reading it says why
            continue
        if len(referenced) == 1:
            uid = next(iter(referenced))
            said.append(f"{f.name} here" if folder is not None else f"the {ds.Modality} {f}")
            said[-1] += f" was drawn on series {uid}: --series {uid}"
    return "; ".join(said[:3]) + ("; else " if said else "")


def _ct_files_of(files: list, what: str, check: bool = True) -> tuple[list, object, list, list]:
    """(the files of one series that make the CT volume, the header of its first, the files left out, the frames of
    each kept file): a scout / LOCALIZER image stored in the CT's own series is left out
    (:func:`lungai.dicom.discover.split_localizers`).  ``check``: :func:`_check_ct_files` at once."""
    from lungai.dicom.discover import _header, frames_of, split_localizers

    heads = [_header(Path(f)) for f in files] if len(files) > 1 else [_header(Path(files[0]))] if files else []
    kept, dropped = split_localizers(files, heads)
    heads = [d for f, d in zip(files, heads) if f not in dropped]
    found = (kept, heads[0] if heads else None, dropped, [frames_of(d) if d is not None else 1 for d in heads])
    if check:
        _check_ct_files(found, what)
    return found


def _check_ct_files(found: tuple, what: str) -> list:
    """The files of :func:`_ct_files_of`'s ``found``: several multi-frame files are refused
    (:func:`lungai.dicom.discover.check_multiframe_files`), a scout left out is warned of (naming it)."""
    import warnings

    from lungai.dicom.discover import check_multiframe_files, localizer_note
    from lungai.errors import InputNote

    kept, _, dropped, frames = found
    check_multiframe_files(kept, frames, what)
    if dropped:
        warnings.warn(localizer_note(dropped, what), InputNote, stacklevel=3)
    return kept


def _cts_below(folder: Path) -> list:
    """The studies with a CT series (:class:`lungai.dicom.discover.Study`, its ``ct`` and the DICOM files near it
    that could not be read, ``unreadable``) that :func:`lungai.dicom.discover.scan` finds in ``folder`` and its
    subfolders - at most
    :data:`BELOW_DEPTH` levels down, hidden files and folders and files of :data:`NOT_DICOM_SUFFIXES` left out.
    Refused before its files are read (no DICOM export: a wrong folder), the error naming the limit: more than
    :data:`BELOW_MAX_FILES` files there, or no DICOM file among the :data:`BELOW_PROBE` files nearest its top that
    could be DICOM (.dcm, no extension, a UID name ...)."""
    from lungai.progress import task

    if not folder.is_dir():
        return []
    files = _files_below(folder, BELOW_MAX_FILES)
    with task(f"looking for the CT series in {folder.name}", len(files), enabled=len(files) >= BELOW_PROGRESS) as bar:
        from lungai.dicom.discover import scan

        return [st for st in scan(folder, progress=bar, files=sorted(files)) if st.ct is not None]


def _files_below(folder: Path, n: int) -> list[Path]:
    """The files of ``folder`` and its subfolders that could be DICOM (:data:`NOT_DICOM_SUFFIXES` left out unread;
    at most :data:`BELOW_DEPTH` levels down; hidden files and folders left out; folder links followed, each real
    folder once), level by level: the top's files first (sorted), then those one level down, ...  While none is
    DICOM, the first :data:`BELOW_PROBE` are read: none DICOM refuses the folder; more than ``n`` files in all
    (those left out included) too."""
    import os

    from lungai.dicom.discover import _header

    fix = ("give the folder of the CT series (the folder holding its DICOM slices), an export's DICOMDIR, or a "
           "NIfTI / NRRD / MHA file; `lungai dicom-scan FOLDER` lists the series of a whole collection")
    found, level, seen = [], [str(folder)], {os.path.realpath(folder)}
    total, probed, dicom = 0, 0, False
    for _ in range(BELOW_DEPTH + 1):
        below = []
        for d in level:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_file():
                        total += 1
                        if total > n:
                            raise InputError(
                                f"{folder} holds more than {n} files in its subfolders ({BELOW_DEPTH} levels down), "
                                "so it is not a CT series folder nor one patient's DICOM export (a wrong folder?)", fix)
                        path = Path(e.path)
                        if not _could_be_dicom(path):
                            continue
                        found.append(path)
                        if not dicom and probed < BELOW_PROBE:
                            probed += 1
                            dicom = _header(path) is not None
                            if not dicom and probed == BELOW_PROBE:
                                raise InputError(
                                    f"{folder} holds no CT series near its top: none of the {BELOW_PROBE} files "
                                    "nearest its top that could be DICOM (images, documents and code left out) is a "
                                    "DICOM file, so it is no DICOM export (a wrong folder?)", fix)
                    elif e.is_dir() and os.path.realpath(e.path) not in seen:
                        seen.add(os.path.realpath(e.path))
                        below.append(e.path)
                except OSError:
                    continue
        level = below
    return found


def _series_files_below(folder: Path, series_uid: str | None, found: list | None = None,
                        unreadable: list | None = None) -> list[str]:
    """The CT series in the subfolders of ``folder`` (a DICOM export: DICOMDIR + patient / study / series folders);
    ``found``: :func:`_cts_below` already run.  The DICOM files near the series that could not be read (scan's
    ``Study.unreadable``: a CT slice cut short in its header among them?) are warned of, named by their path under
    ``folder``, and added to ``unreadable``."""
    studies = _cts_below(folder) if found is None else found
    found = [st.ct for st in studies]
    if series_uid is not None:
        found = [ct for ct in found if ct.series_uid == series_uid]
        if not found:
            raise InputError(f"series {series_uid} is not in {folder} (nor in its subfolders)",
                             f"list the CT series with `lungai dicom-scan {folder}`")
    if not found:
        raise InputError(f"no DICOM series found in {folder} (nor in its subfolders, {BELOW_DEPTH} levels down)",
                         "point to a folder that holds the CT's DICOM slices (.dcm), or to a NIfTI/NRRD/MHA file")
    if len(found) > 1:
        listing = "; ".join(f"{ct.series_uid} ({ct.n_slices} slices in {ct.folder}"
                            + (f", {ct.description}" if ct.description else "") + ")" for ct in found[:10])
        listing += f"; and {len(found) - 10} more" if len(found) > 10 else ""
        raise SeveralSeriesError(f"{folder} holds {len(found)} CT series in its subfolders: {listing}",
                                 [ct.series_uid for ct in found],
                                 "give the folder of one series (a manifest's row too), or choose one by its "
                                 f"SeriesInstanceUID ({SERIES_OPTION}); `lungai dicom-scan {folder}` lists each "
                                 "patient's series")
    if found[0].total_frames is not None:   # several multi-frame files (scan noted it)
        from lungai.dicom.discover import _header, check_multiframe_files, frames_of

        check_multiframe_files(found[0].files, [frames_of(_header(Path(f))) for f in found[0].files],
                               f"CT series {found[0].series_uid}")
    bad = next(st for st in studies if st.ct is found[0]).unreadable
    if bad:
        import warnings

        from lungai.dicom.discover import unreadable_note
        from lungai.errors import InputNote

        warnings.warn(f"the DICOM export {folder} (CT series {found[0].series_uid}): {unreadable_note(bad, folder)}",
                      InputNote, stacklevel=4)
        if unreadable is not None:
            unreadable.extend(bad)
    return _sorted_along_normal(found[0].files)


def _sorted_along_normal(files) -> list[str]:
    """Slice files in the order ITK's series reader takes them: by position along the slice normal."""
    from lungai.dicom.discover import _header

    keyed = []
    for f in files:
        ds = _header(Path(f))
        try:
            iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
            pos = np.asarray([float(v) for v in ds.ImagePositionPatient])
            keyed.append((float(pos @ np.cross(iop[:3], iop[3:])), str(f)))
        except (AttributeError, TypeError, ValueError):
            keyed.append((float(getattr(ds, "InstanceNumber", 0) or 0) if ds is not None else 0.0, str(f)))
    return [f for _, f in sorted(keyed)]


PHOTOMETRIC_TAG = "0028|0004"   # PhotometricInterpretation: MONOCHROME1 is refused (lungai.dicom.discover.check_photometric)
# RescaleIntercept, RescaleSlope: absent / empty on a slice among rescaled ones, refused
# (lungai.dicom.discover.check_rescale)
RESCALE_TAGS = ("0028|1052", "0028|1053")


def _read_dicom_series(folder: Path, series_uid: str | None, files: list | None = None) -> sitk.Image:
    """The CT series of ``folder`` (:func:`dicom_series_files`), or the slice ``files`` given (a series spread over
    several folders, as :func:`lungai.dicom.discover.scan` found it)."""
    from lungai.dicom.discover import check_photometric, check_pixel_spacing, check_rescale
    from lungai.dicom.pixeldata import check_ct_files, drop_slice_copies

    unreadable: list = []   # DICOM files there that could not be read: named if a slice is missing
    if files is None:
        files = dicom_series_files(folder, series_uid, unreadable)
    else:       # a series as scan found it (scouts left out): several multi-frame files are refused
        from lungai.dicom.discover import _header, check_multiframe_files, frames_of

        heads = [_header(Path(f)) for f in files] if len(files) > 1 else []
        check_multiframe_files(files, [frames_of(d) if d is not None else 1 for d in heads], str(folder))
        files = _sorted_along_normal(files)
    files, copies = drop_slice_copies(files)     # a slice copied twice: its intact copy (cohort / dicom-scan's rule)
    if copies:   # GDCM lists a series holding two files of one position by file name: the slices in their order again
        files = _sorted_along_normal(files)      # (QA export69: LUNG1-003 with "copy of slice.dcm" read scrambled)
    for note in copies:
        import warnings

        from lungai.errors import InputNote

        warnings.warn(note, InputNote, stacklevel=3)
    check_ct_files(files)   # a slice whose pixel data is cut short: ITK reads it without an error, values made up
    if len(files) == 1:     # an Enhanced / multi-frame CT: the file holds the volume
        img = _read_file(Path(files[0]))     # (MONOCHROME1 refused there)
        charset = img.GetMetaData(CHARSET_TAG) if img.HasMetaDataKey(CHARSET_TAG) else None
        for tag in KEPT_TAGS:
            if img.HasMetaDataKey(tag):
                img.SetMetaData(tag, dicom_text(img.GetMetaData(tag), charset))
        if img.HasMetaDataKey(SOP_UID_TAG):
            img.SetMetaData(SLICE_UIDS_KEY, img.GetMetaData(SOP_UID_TAG).strip())
        return img
    files = _in_slice_order(files)   # whatever order the listing gave (GDCM's fallback: file names, InstanceNumber)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    # the slice positions are checked below (a gap is an error here, where ITK only warns)
    reader.SetSpacingWarningRelThreshold(1e6)
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        odd = _odd_slice_size(files)
        undecodable = None if odd else _undecodable_slices(files, folder)
        if undecodable:
            raise InputError(f"could not read the DICOM series in {folder}: {undecodable}",
                             "re-export the series uncompressed (Explicit VR Little Endian), e.g. from the PACS or "
                             "with `gdcmconv --raw` / `dcmdjpeg`") from exc
        raise InputError(f"could not read the DICOM series in {folder}: "
                         + (odd or str(exc).strip().splitlines()[-1]),
                         "remove the odd file from the series' folder (another series or a secondary capture?)" if odd
                         else "check that the files are complete DICOM images of one CT series") from exc
    _check_series_positions(reader, files, folder, unreadable)
    check_pixel_spacing(files, [reader.HasMetaDataKey(i, "0028|0030") for i in range(len(files))],
                        f"the DICOM series in {folder}")
    check_photometric(files, [reader.GetMetaData(i, PHOTOMETRIC_TAG) if reader.HasMetaDataKey(i, PHOTOMETRIC_TAG)
                              else None for i in range(len(files))], f"the DICOM series in {folder}")
    check_rescale(files, [tuple(reader.GetMetaData(i, t) if reader.HasMetaDataKey(i, t) else None
                                for t in RESCALE_TAGS) for i in range(len(files))],
                  [reader.GetMetaData(i, "0020|0032").strip().split("\\") if reader.HasMetaDataKey(i, "0020|0032")
                   else None for i in range(len(files))], f"the DICOM series in {folder}", folder,
                  reader.GetMetaData(0, "0020|0037").strip().split("\\") if reader.HasMetaDataKey(0, "0020|0037")
                  else None)
    img = _padding_to_hu(img, [{t: reader.GetMetaData(i, t) for t in PADDING_TAGS if reader.HasMetaDataKey(i, t)}
                               for i in range(len(files))])
    charset = reader.GetMetaData(0, CHARSET_TAG) if reader.HasMetaDataKey(0, CHARSET_TAG) else None
    for tag in KEPT_TAGS:  # kept on the image, so masks from DICOM RT objects can be checked against this CT
        if reader.HasMetaDataKey(0, tag):
            img.SetMetaData(tag, dicom_text(reader.GetMetaData(0, tag), charset))
    img.SetMetaData(SLICE_UIDS_KEY, "\\".join(reader.GetMetaData(i, SOP_UID_TAG).strip() for i in range(len(files))
                                              if reader.HasMetaDataKey(i, SOP_UID_TAG)))
    if len(files) > 1:
        modality = reader.GetMetaData(0, "0008|0060").strip() if reader.HasMetaDataKey(0, "0008|0060") else ""
        if modality and modality != "CT":
            raise InputError(f"the DICOM series in {folder} has modality {modality}, not CT",
                             "select the CT series of the study")
    return img


# PixelPaddingValue, PixelPaddingRangeLimit (stored values, signed as PixelRepresentation says), PixelRepresentation,
# BitsAllocated, RescaleIntercept, RescaleSlope: read with the slice headers ITK's series reader reads anyway
PADDING_TAGS = ("0028|0120", "0028|0121", "0028|0103", "0028|0100", "0028|1052", "0028|1053")
# the top of the standard CT scale (12 bits from -1024): a padding value above it is no tissue
CT_SCALE_MAX_HU = 3071.0
PADDING_FILL_HU = -3024     # what a DICOM's padding outside the HU range becomes (lungai.io.validate.PADDING_HU)


def _stored_int(text: str, signed: bool, bits: int) -> int | None:
    try:
        v = int(float(text.strip().split("\\")[0]))
    except (ValueError, IndexError):
        return None
    full = 1 << bits
    if signed and v >= full // 2:       # written as US in a signed image (the VR is "US or SS")
        v -= full
    elif not signed and v < 0:
        v += full
    return v


def _padding_to_hu(img: sitk.Image, heads: list) -> sitk.Image:
    """``img`` (the series read by ITK, HU) with its DICOM padding above the CT scale set to ``PADDING_FILL_HU``:
    ``heads`` are the slices' :data:`PADDING_TAGS` (ITK's metadata, one dict per slice, in ``img``'s slice order).
    A slice's PixelPaddingValue (0028,0120) - or the range up to PixelPaddingRangeLimit (0028,0121) - marks its
    padding voxels; ITK ignores both, so a padding stored at e.g. 63536 (unsigned, intercept -1024) read as 62512
    HU was taken for a CT not in HU.  Voxels in the padding range that read above ``CT_SCALE_MAX_HU`` become
    ``PADDING_FILL_HU``, which every padding rule sees (:func:`lungai.io.validate.padding_mask`, ``lungai lungs``);
    those at or below it are kept as they are: a padding at -2000 HU already is padding by its value, and one at air
    (stored 0 with intercept -1024: -1024 HU) cannot be told from the air voxels sharing that value."""
    if not any("0028|0120" in h for h in heads) or img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        return img
    arr = None
    for k, h in enumerate(heads):
        if "0028|0120" not in h or k >= img.GetSize()[2]:
            continue
        signed = h.get("0028|0103", "0").strip() == "1"
        try:
            bits = int(h.get("0028|0100", "16").strip() or 16)
            slope = float(h.get("0028|1053", "1").strip() or 1)
            inter = float(h.get("0028|1052", "0").strip() or 0)
        except ValueError:
            continue
        value = _stored_int(h["0028|0120"], signed, bits)
        limit = _stored_int(h["0028|0121"], signed, bits) if "0028|0121" in h else value
        if value is None or limit is None:
            continue
        ends = sorted((value * slope + inter, limit * slope + inter))
        half = 0.5 * abs(slope)
        lo, hi = max(ends[0] - half, CT_SCALE_MAX_HU), ends[1] + half
        if lo > hi:
            continue        # the padding reads within the CT scale: kept (see above)
        if arr is None:
            arr = sitk.GetArrayFromImage(img)
            if arr.dtype.kind == "u" or (arr.dtype.kind == "i" and arr.dtype.itemsize < 2):
                arr = arr.astype(np.int32)
        plane = arr[k]
        plane[(plane > lo) & (plane <= hi)] = PADDING_FILL_HU
    if arr is None:
        return img
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    for key in img.GetMetaDataKeys():
        out.SetMetaData(key, img.GetMetaData(key))
    return out


def _undecodable_slices(files, folder) -> str | None:
    """The slices ITK / GDCM cannot decode (each read alone: on the error path of the series read only), said in words
    with their transfer syntax (a compressed slice whose data does not match its transfer syntax, or a compression
    GDCM cannot read), or None when each slice reads alone (the series' error is another)."""
    from lungai.dicom.discover import shown_path
    from lungai.dicom.pixeldata import dcmread_lenient

    bad = []
    for f in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(f))
        try:
            reader.Execute()
        except RuntimeError:
            bad.append(f)
    if not bad:
        return None

    def syntax(f) -> str:
        try:
            uid = dcmread_lenient(f, stop_before_pixels=True).file_meta.TransferSyntaxUID
            return uid.name if uid.name != uid else f"transfer syntax {uid}"
        except Exception:  # noqa: BLE001 - no file meta (a bare data set) or unreadable: the transfer syntax unsaid
            return "transfer syntax unknown"

    where = lambda f: shown_path(f, folder)  # noqa: E731
    one = len(bad) == 1
    listed = ", ".join(f"{where(f)} ({syntax(f)})" for f in bad[:3]) + (f" and {len(bad) - 3} more"
                                                                         if len(bad) > 3 else "")
    return (f"{'slice ' + listed if one else f'{len(bad)} of its {len(files)} slices'} could not be decoded"
            + ("" if one else f" ({listed})")
            + ": the compressed pixel data does not match its transfer syntax, or is damaged")


def _odd_slice_size(files) -> str | None:
    """The file whose Rows x Columns differ from the series' most common size, said in words, or None."""
    from collections import Counter

    from lungai.dicom.pixeldata import dcmread_lenient

    sizes = {}
    for f in files:
        try:       # a slice without the Part-10 header too, as ITK reads it
            ds = dcmread_lenient(f, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
            sizes[f] = (int(ds.Rows), int(ds.Columns))
        except Exception:   # noqa: BLE001 - unreadable: ITK's message is kept
            continue
    if len(set(sizes.values())) < 2:
        return None
    common = Counter(sizes.values()).most_common(1)[0][0]
    odd = [f for f, size in sizes.items() if size != common]
    rows, cols = sizes[odd[0]]
    return (f"slice {Path(odd[0]).name} is {rows} x {cols} pixels (Rows x Columns), the others {common[0]} x "
            f"{common[1]}" + (f" ({len(odd)} such files)" if len(odd) > 1 else ""))


def _check_series_positions(reader: sitk.ImageSeriesReader, files: list, folder: Path,
                            unreadable: list = ()) -> None:
    """Every slice placed (ImagePositionPatient) and oriented alike (:func:`lungai.dicom.discover.check_slice_headers`);
    no missing slice, duplicate position, irregular step or tilt (steps off the slice normal) in the series just
    read.  ``unreadable``: the DICOM files near the series that could not be read (:func:`dicom_series_files`): a
    missing slice or irregular step is refused naming them, the likely missing slices, with the fix to re-export
    them (QA: a LUNG1-003 slice cut inside its header was refused as "1 slice missing", naming no file); so is a
    change of slice spacing whose coarser run could be slices missing (a :class:`SpacingChangeError` with
    ``could_be_missing``)."""
    from lungai.dicom.discover import check_slice_headers, gap_with_unreadable

    n = len(files)
    if n < 2:
        return
    meta = lambda i, tag: (reader.GetMetaData(i, tag).strip().split("\\")   # noqa: E731
                           if reader.HasMetaDataKey(i, tag) else None)
    check_slice_headers(files, [meta(i, "0020|0032") for i in range(n)], [meta(i, "0020|0037") for i in range(n)],
                        f"the DICOM series in {folder}")
    positions = [meta(i, "0020|0032") for i in range(n)]
    orientation = meta(0, "0020|0037")
    offsets, axis = slice_offsets(positions, orientation)
    try:
        check_slice_positions(offsets, f"the DICOM series in {folder}", axis)
    except SpacingChangeError as exc:
        if not unreadable or not exc.could_be_missing:
            raise
        raise gap_with_unreadable(exc, unreadable, folder) from exc    # the unreadable files may be the slices
    except MissingSlicesError as exc:
        if not unreadable:
            raise
        raise gap_with_unreadable(exc, unreadable, folder) from exc
    check_steps_along_normal(positions, orientation, f"the DICOM series in {folder}")
    check_slice_order(offsets, files, f"the DICOM series in {folder}", axis)


def _normal_offsets(files) -> list[float] | None:
    """The slice ``files``' positions along the first file's slice normal (ImagePositionPatient .
    ImageOrientationPatient, as ITK / GDCM stack a series), from the headers already read; None where a file has
    no such position (the slice checks refuse it, naming the file: :func:`lungai.dicom.discover.check_slice_headers`)."""
    from lungai.dicom.discover import _header

    offsets, normal = [], None
    for f in files:
        ds = _header(Path(f))
        try:
            if normal is None:
                iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
                normal = np.cross(iop[:3], iop[3:])
            offsets.append(float(np.asarray([float(v) for v in ds.ImagePositionPatient]) @ normal))
        except (AttributeError, TypeError, ValueError):
            return None
    return offsets


def _in_slice_order(files) -> list:
    """The slice ``files`` in the order the image is built from them: increasing position along the slice normal.
    A listing in another order - GDCM lists a folder by InstanceNumber or file name when it cannot sort it by position
    (QA export69: a copied slice; LUNG1-003 read scrambled, 0.71 mm apart), a series listed from the head down - is
    sorted again (files at one position: by name, for the duplicate-slice check to refuse); files without a position
    are left as listed, for the slice checks to refuse.  :func:`check_slice_order` checks the image read."""
    offsets = _normal_offsets(files) if len(files) > 1 else None
    if offsets is None or all(b > a for a, b in zip(offsets[:-1], offsets[1:])):
        return files
    return [f for _, f in sorted(zip(offsets, files))]


def check_slice_order(offsets, files, source: str, axis: str = "z") -> None:
    """The slices of an image just read (``offsets``: their positions along the slice normal, in the order the image
    was built from ``files``) must lie in increasing order: else the image holds them scrambled - its slice spacing
    taken from the first and the last, every slice between at a wrong place (QA exportfollow69: the gaps between the
    slices were checked, never their order; a copied slice had LUNG1-003 read 0.71 mm apart instead of 3 mm)."""
    offsets = np.asarray(offsets, float)
    back = np.flatnonzero(np.diff(offsets) <= 0)
    if not back.size:
        return
    i = int(back[0]) + 1
    more = f" (and {counted(int(back.size) - 1, 'more place')} like it)" if back.size > 1 else ""
    raise InputError(f"{source}: its slices were read out of order along the slice normal - slice {Path(files[i]).name} "
                     f"({axis} = {offsets[i]:.2f} mm) follows {Path(files[i - 1]).name} ({axis} = {offsets[i - 1]:.2f} "
                     f"mm){more}, so the image would hold its slices scrambled",
                     "check that each slice file's header gives its own position (ImagePositionPatient) and that the "
                     "folder holds this one series only (`lungai dicom-scan FOLDER` lists what it holds); re-export "
                     "the series from the PACS or planning system, and if it still happens, report it with the "
                     "output of `lungai dicom-scan`")


def _read_file(p: Path) -> sitk.Image:
    """Read the image file ``p``.  A NIfTI is checked (:mod:`lungai.io.nifti`): a header whose voxel size is 0 or
    contradicts its sform (:func:`~lungai.io.nifti.pixdim_problem`: ITK takes 1 mm) is refused, as is a cut-off file
    (an interrupted copy or download, which ITK reads without an error, the missing slices 0) or a damaged
    ``.nii.gz`` (its gzip CRC fails: ITK reads garbage voxels silently).  A ``.nii.gz`` whose gzip trailer's CRC
    matches the voxels ITK read is intact at little cost (:func:`~lungai.io.nifti.gzip_crc_matches`); else its
    stream is read through (:func:`~lungai.io.nifti.scan_nifti`, ~1 s for a 512 x 512 x 130 CT).  NaN / infinite
    voxels, which ITK reads as 0, are put back into the image read, as NRRD / MHA give them (the CT check refuses
    them: :func:`lungai.io.validate.check_ct_intensities`).  A header whose qform and sform are both set but
    place the voxels differently is refused, or warned of where ITK reads the sform as nibabel does
    (:func:`_check_qform_sform`)."""
    from lungai.io.nifti import NiftiScan, gzip_crc_matches, nifti_head, pixdim_problem, scan_nifti

    def corrupt(why: str = "") -> InputError:
        return InputError(f"could not read {p}: the file is unreadable or corrupt" + (f" ({why})" if why else ""),
                          "re-export the image, or check that the download/copy finished")

    head = nifti_head(p)
    why = pixdim_problem(head) if head else None
    if why:
        raise InputError(f"{p} cannot be placed in space: {why}",
                         "re-export the image with its voxel size in mm in the header (e.g. from 3D Slicer or "
                         "SimpleITK), or set the header's pixdim to the true voxel size (nibabel: "
                         "img.header.set_zooms(...), or img.set_sform(affine) with the right affine)")
    gz = head is not None and p.name.lower().endswith(".gz") and _starts_gzip(p)
    # a .nii: its size and its float data's NaN; a .nii.gz damaged within its header's block: the stream's fault
    scan = scan_nifti(p) if head is not None and (not gz or not head) else NiftiScan()
    if scan.problem:
        raise corrupt(scan.problem)
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        problem = scan_nifti(p).problem if gz else None
        if problem:
            raise corrupt(problem) from exc
        raise _itk_refusal(p, exc, corrupt) from exc      # an intact file ITK refuses: its reason, in words
    if head:
        _check_qform_sform(p, head, img)
    if gz and not gzip_crc_matches(p, head, sitk.GetArrayViewFromImage(img)):
        scan = scan_nifti(p)
        if scan.problem:
            raise corrupt(scan.problem)
    if scan.nonfinite is not None and scan.nonfinite.size:
        img = _with_values(img, scan.nonfinite, scan.values)
    if img.HasMetaDataKey(PHOTOMETRIC_TAG):     # a DICOM file (an Enhanced CT): MONOCHROME1 is read inverted
        from lungai.dicom.discover import check_photometric
        from lungai.dicom.pixeldata import check_pixel_data

        check_pixel_data(p, "re-export the DICOM file, or check that the download/copy finished")  # cut short

        check_photometric([p], [img.GetMetaData(PHOTOMETRIC_TAG)], f"the DICOM image {p.name}")
        if img.GetDimension() == 3 and img.GetSize()[2] > 1:
            check_frame_geometry(p, img)
    return img


def check_frame_geometry(p: Path, img: sitk.Image) -> None:
    """An Enhanced / multi-frame CT file ``p`` as ITK / GDCM read it (``img``): its frames must be one regular volume
    stored in slice order (:func:`lungai.dicom.discover.check_enhanced_frames`, the rule ``scan`` notes too), and
    the image must have the origin, spacing and slice direction its frames say - GDCM reads a multi-frame file whose
    frame positions are not equally spaced with a 1 mm voxel in every direction (QA on LUNG1-003 as an Enhanced CT:
    one frame missing, or the frames not in slice order, read at 1 x 1 x 1 mm instead of 0.977 x 0.977 x 3, every
    volume 2.9 times too small, the slices misplaced - without a word), and ignores a gantry tilt."""
    import pydicom

    from lungai.dicom.discover import ENHANCED_FIX, check_enhanced_frames

    ds = pydicom.dcmread(str(p), stop_before_pixels=True)
    what = f"the Enhanced (multi-frame) CT {p.name}"
    frames = check_enhanced_frames(ds, what)
    if frames is None:
        return
    first, normal, spacing = frames
    direction = np.asarray(img.GetDirection(), float).reshape(3, 3)
    wrong = [f"{name} {tuple(round(float(v), 3) for v in got)} (its frames: {tuple(round(float(v), 3) for v in want)})"
             for name, got, want, tol in (("origin", img.GetOrigin(), first, 0.02),
                                          ("spacing", img.GetSpacing(), spacing, 1e-3 * spacing[2]))
             if not np.allclose(got, want, atol=tol)]
    if float(direction[:, 2] @ normal) < 0.999:
        wrong.append("its slices stacked along another direction than its frames run")
    if wrong:
        raise InputError(f"{what} was read by the DICOM reader (ITK / GDCM) with {'; '.join(wrong)}", ENHANCED_FIX)


def _check_qform_sform(p: Path, head: bytes, img: sitk.Image) -> None:
    """Check a NIfTI whose qform and sform (both codes > 0) disagree (:func:`lungai.io.nifti.qform_sform_mismatch`).
    A sheared sform (its axes not at right angles, e.g. a gantry tilt: no qform can equal it, ITK then reads the
    qform) is refused as sheared (:func:`_sheared`).  Otherwise ITK reads one of them (with both codes 1 the sform,
    with a qform code 1 and an sform code 2 the qform), nibabel and the tools built on it (nnU-Net, TotalSegmentator)
    always the sform: two different placements are refused (the image, its mask and a model's output could lie
    mirrored or shifted against each other without a word - a mask made where the qform is read lands elsewhere),
    but for a placeholder qform (quaternion and offset all 0, as some writers leave it: no placement of its own)
    where ITK reads the sform as nibabel does: read, with a warning (:class:`lungai.errors.InputNote`) that tools
    preferring the qform would place it elsewhere."""
    import warnings

    from lungai.errors import InputNote
    from lungai.io.nifti import QS_DIRECTION_TOL, qform_sform_mismatch

    m = qform_sform_mismatch(head)
    if m is None:
        return
    if m["shear"] > QS_DIRECTION_TOL:
        raise _sheared(p, f"the sform's voxel axes are {np.degrees(np.arcsin(min(m['shear'], 1.0))):.2f} degrees off "
                          "right angles; ITK falls back on the qform, nibabel-based tools (nnU-Net, "
                          "TotalSegmentator) read the sheared sform")
    fmt = lambda v: "(" + ", ".join(f"{x:.2f}" for x in v) + ")"                  # noqa: E731
    axes = lambda d: " ".join(fmt(d[:, i]) for i in range(3))                      # noqa: E731
    n = img.GetDimension()
    used = None
    if n >= 3:
        origin, direction = np.array(img.GetOrigin()[:3]), np.array(img.GetDirection()).reshape(n, n)[:3, :3]
        used = min(("qform", "sform"), key=lambda k: np.linalg.norm(origin - m[f"{k}_origin"])
                   + np.abs(direction - m[f"{k}_direction"]).sum())
    placements = (f"the qform (code {m['qform_code']}) puts the first voxel at {fmt(m['qform_origin'])} mm with voxel "
                  f"axes {axes(m['qform_direction'])}, the sform (code {m['sform_code']}) at "
                  f"{fmt(m['sform_origin'])} mm with axes {axes(m['sform_direction'])} (LPS; origins "
                  f"{m['distance']:.2f} mm apart, axes differ by up to {m['angle']:.2f} degrees"
                  + (", the qform mirrored" if np.linalg.det(m["qform_direction"]) * np.linalg.det(
                      m["sform_direction"]) < 0 else "") + ")")
    if used == "sform" and m["qform_placeholder"]:    # a qform left empty by its writer: no placement of its own
        warnings.warn(f"{p}: its header holds two different placements - {placements}. ITK (3D Slicer, this tool) "
                      "and nibabel-based tools (nnU-Net, TotalSegmentator) read the sform, and so it is read; tools "
                      f"that prefer the qform would place it {m['distance']:.2f} mm away (axes {m['angle']:.2f} "
                      "degrees apart). To make the header agree: nibabel img.set_qform(img.get_sform()), then "
                      "nib.save(img, ...)", InputNote, stacklevel=4)
        return
    itk = {"qform": "reads the qform, nibabel-based tools (nnU-Net, TotalSegmentator) the sform",
           "sform": "and nibabel-based tools (nnU-Net, TotalSegmentator) read the sform, tools that prefer the qform "
                    "(and whatever made a mask from it) the qform"}.get(
        used, "reads one of them (which one depends on its version), nibabel-based tools (nnU-Net, "
              "TotalSegmentator) the sform")
    raise InputError(
        f"{p} cannot be placed in space: its header holds two different placements - {placements}. ITK (3D Slicer, "
        f"this tool) {itk}: the image and its masks or model outputs could lie mirrored or shifted against each "
        "other",
        "re-export the image from its source (scanner / PACS / 3D Slicer), or, once you know which placement is "
        "right, make the header agree with nibabel: img.set_qform(img.get_sform()) (the sform is right) or "
        "img.set_sform(img.get_qform()) (the qform is right), then nib.save(img, ...)")


def _sheared(p: Path, detail: str = "") -> InputError:
    """The error for a NIfTI whose geometry is sheared (its voxel axes not at right angles: ITK places voxels on
    orthogonal axes only), ``detail`` added to the reason."""
    return InputError(f"{p} cannot be placed in space: its geometry is sheared (its voxel axes are not at right "
                      "angles: the direction cosines are not orthonormal" + (f"; {detail}" if detail else "")
                      + "), and ITK reads orthogonal grids only",
                      "resample it onto an orthogonal grid with a tool that reads sheared NIfTI (e.g. nibabel + "
                      "nilearn.image.resample_img, or FSL flirt -applyxfm), or re-export it from the scanner / "
                      "PACS")


def _itk_reason(exc: Exception) -> str:
    """ITK's reason from a SimpleITK read error, without its source location: the text after ``ITK ERROR:``."""
    text = str(exc)
    return " ".join(text.split("ITK ERROR:", 1)[1].split()) if "ITK ERROR:" in text else ""


def _itk_refusal(p: Path, exc: Exception, corrupt) -> InputError:
    """The error for a file whose stream is intact but which ITK will not read: a sheared grid (non-orthonormal
    direction cosines, e.g. a NIfTI sform with shear: ITK places voxels on orthogonal axes only) is said as such;
    any other refusal is ``corrupt`` with ITK's reason passed on."""
    why = _itk_reason(exc)
    if "orthonormal" in why:
        return _sheared(p)
    return corrupt(f"ITK: {why}" if why else "")


def _starts_gzip(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _with_values(img: sitk.Image, flat, values) -> sitk.Image:
    """``img`` with the voxels at the flat indices ``flat`` (storage order, as a NIfTI stores them) set to
    ``values``; ``img`` unchanged when it is no scalar float image of those voxels."""
    if img.GetNumberOfComponentsPerPixel() != 1 or img.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return img
    arr = sitk.GetArrayFromImage(img)
    if flat.max() >= arr.size:
        return img
    arr.reshape(-1)[flat] = values
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    for key in img.GetMetaDataKeys():
        out.SetMetaData(key, img.GetMetaData(key))
    return out


def read_dicom_ct_files(files, what: str) -> sitk.Image:
    """Read the CT whose slice files are given (a series spread over several folders, as
    :func:`lungai.dicom.discover.scan` groups it by SeriesInstanceUID), checked as :func:`read_ct` does."""
    from lungai.dicom.pixeldata import headers_once

    with headers_once():        # each slice's header parsed once (read_image)
        img = _read_dicom_series(Path(what), None, [str(f) for f in files])
    check_3d(img, what)
    check_ct(img, what)
    return img


def read_image(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read any 3D image (file or DICOM folder) with its geometry; no CT checks.  A DICOM folder (or DICOMDIR file)
    gives its CT series (:func:`dicom_series_files`), each slice's header parsed once for all the checks
    (:func:`lungai.dicom.pixeldata.headers_once`: the series scan, the slice-copy check, the pixel-data check; QA
    export68: 3 parses of each of LUNG1-003's 107 slices), ITK reading the pixels."""
    from lungai.dicom.pixeldata import headers_once

    p = check_image_path(path, series_uid)
    if p.is_dir():
        with headers_once():
            img = _read_dicom_series(p, series_uid)
    else:
        img = _read_file(p)
    check_3d(img, str(p))
    return img


def check_image_path(path: str | Path, series_uid: str | None = None) -> Path:
    """The checks :func:`read_image` makes of ``path`` before reading anything (no voxels, no heavy import): it
    exists, a ``--series`` UID can choose a series there (:func:`check_series_option`), a file is of a type lungai
    reads.  Returns the path read: a DICOMDIR file's folder, else ``path``.  (A command checks its input with it
    before its heavy imports: QA demo67, ``lungai demo --ct`` of a missing file was refused after 5-10 s.)"""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist", "check the path (and that the drive is mounted)")
    check_series_option(p, series_uid)
    p = dicomdir_folder(p)
    if not p.is_dir():
        suffix = _suffix(p)
        if suffix not in FILE_SUFFIXES + (".dcm", ".dicom", ""):
            raise InputError(f"{p.name}: unsupported file type {suffix!r}",
                             "use NIfTI (.nii/.nii.gz), NRRD (.nrrd), MHA (.mha), a DICOM folder, or a DICOM file "
                             "(.dcm: a SEG or RTSTRUCT is read by its content, whatever its name)")
    return p


def stored_orientation(path: str | Path, series_uid: str | None = None) -> str:
    """The order the image :func:`read_ct` reads at ``path`` is stored in ("LPS", "SAR", ...:
    :func:`lungai.io.geometry.orientation_of`), from one file's header, no voxels read: the image file, or the
    first slice of the DICOM series (:func:`dicom_series_files`; the series is stacked along the slice normal, its
    order that of one slice).  Raises (InputError, RuntimeError, OSError) when it cannot be read."""
    p = dicomdir_folder(Path(path))
    if not p.exists():
        raise InputError(f"{p} does not exist", "check the path (and that the drive is mounted)")
    return file_orientation(dicom_series_files(p, series_uid)[0] if p.is_dir() else p)


def file_orientation(path) -> str:
    """:func:`lungai.io.geometry.orientation_of` the image in the file ``path`` as read_ct reads it, from its header
    only: a NIfTI / NRRD / MHA; one slice of a classic DICOM series (rows, columns, the slice normal: ITK stacks the
    series' slices along the normal); an Enhanced (multi-frame) CT - ITK's header gives the normal there too, but
    the volume it reads runs from the first frame to the last (PlanePositionSequence): the slice axis is flipped
    when the frames run against the normal.  Raises (RuntimeError, OSError, ...) when the file cannot be read."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    direction = np.asarray(reader.GetDirection(), dtype=float).reshape(3, 3)
    if len(reader.GetSize()) > 2 and reader.GetSize()[2] > 1 and _suffix(Path(path)) not in FILE_SUFFIXES:
        import pydicom

        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        frames = getattr(ds, "PerFrameFunctionalGroupsSequence", None) or []
        if len(frames) > 1:
            first, last = (np.asarray([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
                           for f in (frames[0], frames[-1]))
            if float((last - first) @ direction[:, 2]) < 0:
                direction[:, 2] *= -1
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(direction.flatten().tolist())


def read_ct(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read a chest CT and check it is 3D, its voxel spacing in mm and its intensities in Hounsfield units.  A DICOM
    SEG, RTSTRUCT, RTDOSE, ... file is refused as what it is (:func:`lungai.paths.check_not_ct_object`)."""
    check_not_ct_object(path)
    img = read_image(path, series_uid)
    check_ct(img, str(path))
    return img


def input_case_id(path: str | Path, series_uid: str | None = None) -> str:
    """The case id of an input image: the DICOM PatientID of a DICOM series / file (not the folder name, often
    just "CT"), else the folder name or the file name without its image suffix (``LUNG1-003_ct.nii.gz`` ->
    ``LUNG1-003_ct``)."""
    from lungai.dicom.reference import dicom_ct_header

    p = Path(path)
    ds = dicom_ct_header(p, series_uid) if p.exists() else None
    patient = str(getattr(ds, "PatientID", "") or "").strip() if ds is not None else ""
    if patient:
        return patient
    suffix = "" if p.is_dir() else _suffix(p)
    return p.name[: -len(suffix)] if suffix and p.name.lower().endswith(suffix) else p.name


LABEL_MAP_FIX = "give a label map (0 = background, 1, 2, ... = structures)"
# A float mask with fractions (blurred, resampled with linear interpolation, a probability map): how to make it a label.
NON_INTEGER_MASK_FIX = ("make such a mask a label map: threshold it at 0.5 (tumour where the value is 0.5 or more), "
                        "e.g. sitk.Cast(mask >= 0.5, sitk.sitkUInt8) in SimpleITK; resample masks with "
                        "nearest-neighbour interpolation")


def read_mask(path: str | Path, reference: sitk.Image | None = None, select: str | None = None, mapping=None,
              lungs: bool = False, names: dict | None = None, parts: dict | None = None) -> sitk.Image:
    """Read an integer label image; with ``reference`` it must share its grid: the same voxels, returned in
    ``reference``'s stored order when the file stores them in another (a RAS NIfTI of an LPS DICOM CT:
    :func:`lungai.io.geometry.on_grid`, lossless); a mask off the grid is refused.

    A DICOM SEG file is read onto ``reference``'s grid (label value = segment number, e.g. 1 right lung and 2 left
    lung for the SEG that ``lungai lungs`` writes); an RTSTRUCT is refused with a pointer to ``--rtstruct``.

    ``path#PART`` takes one part of the file (:func:`lungai.dicom.masks.split_selector`): a SEG's segment(s) by
    label or ``role:ROLE``, a label map's label N (as a 0/1 mask; ``path#N,M``: labels N and M joined, e.g. a
    patient's several GTVs as one tumour; with ``lungs``: ``path#R,L``, the right and the left lung's labels, as 1
    and 2; one label is refused).  ``select`` (a segment label or ``role:ROLE``)
    picks the segments of a SEG with several segments when no part is given; ``lungs``: the selection is a lung
    label map (1 right, 2 left; :func:`lungai.dicom.masks.select_segments`).  ``mapping``: structure name -> role
    overrides (:func:`lungai.dicom.roles.load_mapping`).  ``names`` (a dict, for a DICOM SEG): filled with {label
    value: the SEG's SegmentLabel of it} (the labels of a selection of several segments joined by "+"; for a lung
    label map chosen by role or by two segments, {1: the right lung's, 2: the left lung's}; a segment of both lungs
    taken as a binary lung map, {1: its label}), so that a segment is
    named as in its SEG (``lungai radiomics --mask``; the lungs' side check).  A SEG's segments whose labels name no
    role take the role of their terminology codes (:func:`lungai.dicom.seg.with_code_roles`).  ``parts`` (a dict, for
    a DICOM SEG read as one 0/1 mask): filled with {SegmentLabel: 0/1 mask} of each segment it was made of (``lungai
    dicom-export`` writes each GTV under its own name: :func:`lungai.dicom.export.tumour_parts`).
    """
    from lungai.dicom.masks import SELECTOR, as_typed, command_word, split_selector, typed_file

    # the file as the messages name it: as typed (./seg.dcm, not seg.dcm), a manifest's cell as written (its
    # relative cell, not the path it is read from: QA seginput64)
    typed = typed_file(path)
    shown = as_typed(typed)
    path, part = split_selector(path)
    if path.is_dir():
        raise _folder_as_mask(path, shown)
    modality = _dicom_modality(path)
    if modality in IMAGE_MODALITIES:
        raise image_as_mask_error(shown, modality)
    if modality in ("SEG", "RTSTRUCT"):
        return _read_dicom_mask(path, modality, reference, part or select, mapping, lungs, chosen=part is not None,
                                names=names, parts=parts, typed=typed)
    if modality is None:            # a table, a text: refused as no mask, naming what a mask may be
        check_mask_kind(path, shown)
    img = read_image(path)
    if reference is not None:       # another patient's mask (its header's PatientID), said before its grid
        from lungai.dicom.reference import check_mask_matches_ct

        check_mask_matches_ct(path, reference, name=shown)
    if img.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        check_finite(img, shown, "label mask", LABEL_MAP_FIX)      # NaN said as NaN, not as "non-integer"
        arr = sitk.GetArrayViewFromImage(img)
        if (arr != arr.round()).any():
            raise InputError(f"{shown} holds non-integer values (e.g. a blurred or linearly resampled mask, or a "
                             "probability map), so it is not a label mask", NON_INTEGER_MASK_FIX)
    if img.GetPixelID() not in (sitk.sitkUInt8, sitk.sitkUInt16):
        _check_label_range(img, shown)
        img = sitk.Cast(img, sitk.sitkUInt16)
    if reference is not None:
        img = on_grid(reference, img, what=f"mask {shown}")   # the same voxels in another order: reoriented
    if part is not None and lungs:
        return _lung_labels_of(img, typed, part)
    if part is not None:
        labels = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(img)) if v)
        wanted = [w.strip() for w in part.split(",")]      # FILE#1,2: the union of labels 1 and 2 (several GTVs)
        # the examples take the labels asked for that the map has: its first two labels joined could be a GTV and a
        # lung (QA lungsfollow71: LUNG1-002's `--gtv labels#1,2`, labels 1 GTV, 3 and 4 the lungs, was told "e.g.
        # labels#1,3", the GTV and the right lung); a label map says no label's role, so none other is named
        asked = [int(w) for w in wanted if w.isdigit() and int(w) in labels]
        for w in wanted:
            if not w.isdigit() or int(w) not in labels:
                joined = (command_word(f"{typed}{SELECTOR}{','.join(map(str, asked))}") if len(asked) > 1 else
                          f"{command_word(f'{typed}{SELECTOR}N,M')} for its labels N and M")
                raise InputError(f"{shown} has no label {w!r}; its labels: "
                                 f"{', '.join(map(str, labels)) or 'none'}",
                                 f"choose one of its labels after '{SELECTOR}', e.g. "
                                 f"{command_word(f'{typed}{SELECTOR}{(asked or labels or [1])[0]}')}"
                                 + (f", or several joined as one structure, e.g. {joined}"
                                    if len(labels) > 1 else ""))   # one label: nothing to join
        arr = np.isin(sitk.GetArrayViewFromImage(img), [int(w) for w in wanted]).astype(np.uint8)
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(img)
        img = out
    return img


MAX_LABEL = 65535   # label maps are read as unsigned 16-bit


# the lowest value of a mask read as a CT image (QA exportfollow69: LUNG1-003's CT given as --tumour, -1024 .. 3071)
CT_LIKE_LOW_HU = -500
def _check_label_range(img: sitk.Image, path) -> None:
    """Refuse label values outside 0..65535: the cast to 16 bits would wrap them onto other labels
    (65537 -> 1, -1 -> 65535) without a word.  ``path``: the file as the messages name it (as typed)."""
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path} has {img.GetNumberOfComponentsPerPixel()} components per voxel, so it is not a "
                         "label mask", "give a single-component label map (0 = background, 1, 2, ... = structures)")
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(img)
    low, high = stats.GetMinimum(), stats.GetMaximum()
    if low < 0 and img.GetPixelID() == sitk.sitkInt8:
        raise InputError(f"{path} holds values {low:g} .. {high:g} stored as signed 8-bit integers: most likely "
                         "labels above 127 wrapped around (label 200 reads -56, 255 reads -1)",
                         "rewrite the label map as unsigned 8-bit (uint8) or 16-bit integers, e.g. SimpleITK: "
                         "sitk.Cast(img, sitk.sitkUInt8) on the original labels, or in nibabel "
                         "img.set_data_dtype(np.uint8) before saving")
    if low <= CT_LIKE_LOW_HU:
        raise InputError(f"{path} holds values {low:g} .. {high:g}, as a CT in Hounsfield units does (air -1000): it is "
                         "an image, not a mask (a label map: 0 = background, 1, 2, ... = structures)", mask_file_fix())
    if low < 0 or high > MAX_LABEL:
        raise InputError(f"{path} holds values {low:g} .. {high:g}; label values must be 0 .. {MAX_LABEL} "
                         f"(is it an image rather than a label map?)",
                         "give a label map (0 = background, 1, 2, ... = structures), relabelled to 1 .. "
                         f"{MAX_LABEL} if it uses larger or negative values")


def _lung_labels_of(img: sitk.Image, path: str, part: str) -> sitk.Image:
    """``labels.nii.gz#R,L`` as a lung label map: label R -> 1 (right lung), label L -> 2 (left lung).  One label
    (``#N``) is refused: it would be taken as the right lung whatever side it is.  ``path``: the file as typed
    (:func:`lungai.dicom.masks.typed_file`)."""
    from lungai.dicom.masks import SELECTOR, as_typed, command_word, fix_words, lung_label_map

    labels = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(img)) if v)
    known = f"its labels: {', '.join(map(str, labels)) or 'none'}"
    option = fix_words("--lungs", "lungs")      # a manifest's lungs column (its fix: the cell's value alone)
    lungs = fix_words("--lungs ", "")
    fix = (f"give the right lung's label, then the left lung's: {lungs}{command_word(f'{path}{SELECTOR}R,L')} "
           f"(e.g. {lungs}{command_word(f'{path}{SELECTOR}3,4')} for right 3 and left 4; {known})")
    parts = [q.strip() for q in part.split(",")]
    if len(parts) != 2:
        raise InputError(f"{option} {as_typed(f'{path}{SELECTOR}{part}')}: a lung label map needs the right and the "
                         "left lung, "
                         f"one label would be taken as the right lung", fix)
    bad = [q for q in parts if not q.isdigit() or int(q) not in labels]
    if bad:
        raise InputError(f"{as_typed(path)} has no label {bad[0]!r}; {known}", fix)
    right, left = (int(q) for q in parts)
    if right == left:
        raise InputError(f"{option} {as_typed(f'{path}{SELECTOR}{part}')}: the right and the left lung have the same "
                         "label", fix)
    return lung_label_map(img == right, img == left)


# The fix of an RTSTRUCT given where a mask (label map / DICOM SEG) is read: said for every command, so it names the
# commands that read an RTSTRUCT themselves rather than telling a command without --rtstruct (dicom-export, segment,
# eval-seg, train-seg's and radiomics-batch's manifests) to use it (QA: dicom-export --tumour RTSTRUCT named options
# dicom-export does not have)
def _read_dicom_mask(p: Path, modality: str, reference: sitk.Image | None, select: str | None = None, mapping=None,
                     lungs: bool = False, chosen: bool = False, names: dict | None = None,
                     parts: dict | None = None, typed: str | None = None) -> sitk.Image:
    """``typed``: the file as the user typed it (:func:`lungai.dicom.masks.typed_file`; default ``p``), as the
    messages name it - a manifest's cell as written (:func:`lungai.dicom.masks.as_typed`)."""
    from lungai.dicom.masks import SELECTOR, as_typed, command_word, fix_words, select_segments

    typed = str(p) if typed is None else typed
    if modality == "RTSTRUCT":
        raise InputError(f"{as_typed(typed)} is an RTSTRUCT (contours), not a mask image", RTSTRUCT_AS_MASK_FIX)
    if reference is None:
        raise InputError(f"{as_typed(typed)} is a DICOM SEG: it can only be read onto its CT's grid",
                         "give the CT as well")
    from lungai.dicom.seg import read_seg, with_code_roles

    segments = read_seg(p, reference, name=as_typed(typed))
    names = {} if names is None else names
    given = mapping
    if select is not None and (lungs or chosen or len(segments) > 1):
        # generic labels ("Segment_1"): the roles of the segments' terminology codes, said in a note of the segments
        # used only (QA segcut64: `--mask seg.dcm#GTV-1` noted the role of segment 'Empty', which it never took)
        mapping = with_code_roles(typed, list(segments), mapping)
    if lungs and not chosen and len(segments) == 1:
        from lungai.dicom.roles import structure_role

        (label, mask), = segments.items()
        if structure_role(label, mapping) == "lung_left":
            if select is not None:
                with_code_roles(typed, [label], given, note=True)
            # a SEG of the left lung alone is the left lung of the lung label map (2), never the right (1): before,
            # the one segment became label 1, so radiomics --lungs wrote the left lung as right_lung (QA: LUNG1-003's
            # Lung-Left, 1722 ml, as right_lung) and dose-features warned "only the right lung"
            left = (sitk.GetArrayViewFromImage(mask) > 0).astype(np.uint8) * 2
            img = sitk.GetImageFromArray(left)
            img.CopyInformation(reference)
            names[2] = label
            return img
    if select is not None and (chosen or len(segments) > 1):
        sides: list = []
        mask, used = select_segments(segments, select, mapping, lungs, source=typed, sides=sides)
        with_code_roles(typed, used, given, note=True)      # the roles of the segments used, by their codes
        if lungs and sides:     # the right and the left lung's segments, for the messages about them
            names.update({1: "+".join(sides[0]), 2: "+".join(sides[1])})
        elif lungs:             # one segment of both lungs ("Lungs", dicom-export's), as a binary lung map
            names[1] = "+".join(used)
        if not lungs:       # one 0/1 mask of the segment(s) chosen
            names[1] = "+".join(used)
            if parts is not None:
                parts.update({u: sitk.Cast(segments[u] > 0, sitk.sitkUInt8) for u in used})
        return mask
    if parts is not None and len(segments) == 1 and not lungs:     # the one segment, whole
        parts.update({u: sitk.Cast(m > 0, sitk.sitkUInt8) for u, m in segments.items()})
    labels = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    for number, (label, mask) in enumerate(segments.items(), start=1):
        arr = sitk.GetArrayViewFromImage(mask) > 0
        if (labels[arr] > 0).any():
            raise InputError(f"segments of {as_typed(typed)} overlap ({', '.join(segments)}), so they cannot form "
                             "one label map",
                             f"choose what to use after '{SELECTOR}': a segment by label "
                             f"({command_word(f'{typed}{SELECTOR}{next(iter(segments))}')}) or the segments of a "
                             f"role ({command_word(f'{typed}{SELECTOR}role:gtv')}); "
                             + fix_words("--tumour, --gtv and --lungs take the segments of their role by themselves",
                                         "the tumour and lungs columns take the segments of their role by "
                                         "themselves"))
        labels[arr] = number
        names[number] = label
    img = sitk.GetImageFromArray(labels)
    img.CopyInformation(reference)
    return img


