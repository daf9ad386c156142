"""Is a DICOM file's pixel data all there?  A file cut short (a copy or a transfer stopped half way) keeps a readable
header, so a header-only read (``stop_before_pixels``) takes it for a good one and the decoding fails only later,
after the work done before it, with pydicom's "The number of bytes of pixel data is less than expected".

:func:`check_pixel_data` checks it from the header alone (the PixelData element's length and where its value starts,
against the size the image needs and the file's size; nothing is decoded): cheap enough for planning.  A Deflated
Explicit VR Little Endian file is the exception: pydicom parses its inflated data set, so the element's offset is not
one in the file; it is read in full (inflated) and the PixelData's inflated length compared with the header's need, a
deflate stream cut short being refused naming the file (:func:`read_dicom`).
:func:`decode_pixels` is the guarded ``ds.pixel_array`` of a file read in full.  Both refuse with an InputError
naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import warnings
from contextvars import ContextVar
from pathlib import Path

from lungai.errors import InputError, counted_of

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)     # FloatPixelData, DoubleFloatPixelData (parametric maps)
UNDEFINED_LENGTH = 0xFFFFFFFF       # encapsulated (compressed) pixel data: its size is not known from the header
_DEFER_SIZE = 1024      # check_pixel_data's read of a file: values above this many bytes not read (the pixel data)


def expected_pixel_bytes(ds) -> int | None:
    """The bytes of native (uncompressed) pixel data the header's Rows x Columns x NumberOfFrames x SamplesPerPixel x
    BitsAllocated make; None when one of the mandatory tags is missing (not guessed)."""
    try:
        rows, columns, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    return (rows * columns * frames * samples * bits + 7) // 8


TRUNCATED = "truncated or corrupt"      # what a file whose pixel data is cut short is said to be


def _short(name: str, have: int, need: int, fix: str) -> InputError:
    return InputError(f"{name} is {TRUNCATED}: its pixel data holds {have} of the {need} bytes its header "
                      "needs (Rows x Columns x NumberOfFrames x BitsAllocated / 8); the file was cut short (an "
                      "interrupted copy or export)", fix)


# the headers read inside :func:`headers_once` ((real path, mtime, size) -> (the header, no pixels; where its pixel
# data is: :func:`_header_read`)); None outside it
_HEADERS: ContextVar = ContextVar("lungai_dicom_headers_once", default=None)


@contextlib.contextmanager
def headers_once():
    """Inside the block (this thread) each DICOM file's header (no pixels) is read once by :func:`dcmread_lenient`:
    its header-only reads (``stop_before_pixels``, with or without ``specific_tags``: the whole header holds them) get
    a copy of the one read (a shallow copy: a caller setting an attribute changes its own copy only).  A file changed
    on disk (its modification time or size) is read again; a file whose whole header cannot be read is read as asked,
    each time.  For the checks and the CT read of one command (:func:`lungai.dicom.reference.one_series_scan` opens
    one): QA exportfollow67, ``lungai dicom-export`` read each of LUNG1-003's 107 CT slices' headers 8 times (858
    reads, ~2 s before its first bar: the multi-frame check, the CT's header, the output-folder check, the CT reader's
    series scan and slice-copy check, the series' references)."""
    if _HEADERS.get() is not None:
        yield
        return
    token = _HEADERS.set({})
    try:
        yield
    finally:
        _HEADERS.reset(token)


def _header_key(path):
    """(real path, mtime, size) of ``path``'s file as it is now, else None (it cannot be stat'ed)."""
    try:
        st = os.stat(path)
        return os.path.realpath(path), st.st_mtime_ns, st.st_size
    except (OSError, TypeError, ValueError):
        return None


def dcmread_lenient(path, **kwargs):
    """:func:`_dcmread_lenient`; a header-only read (``stop_before_pixels``, ``specific_tags`` or not) inside
    :func:`headers_once` read once per file."""
    cache = _HEADERS.get()
    if cache is None or kwargs.get("stop_before_pixels") is not True or set(kwargs) - {"stop_before_pixels",
                                                                                         "specific_tags"}:
        return _dcmread_lenient(path, **kwargs)
    key = _header_key(path)
    if key is None:
        return _dcmread_lenient(path, **kwargs)
    if _cached(cache, key, path) is None:
        return _dcmread_lenient(path, **kwargs)       # not DICOM, cut short: read as asked (its error raised as before)
    kept = copy.copy(cache[key][0])
    kept._dict = dict(kept._dict)       # pydicom's copy shares its elements' dict: each caller gets its own
    return kept


def _cached(cache: dict, key, path):
    """(header, where its pixel data is) of ``path`` in :func:`headers_once`'s ``cache``, read now if it is not there
    yet (:func:`_header_read`); None when its header cannot be read."""
    if key not in cache:
        try:
            cache[key] = _header_read(path)
        except Exception:  # noqa: BLE001 - not DICOM, cut short: the caller reads it as asked
            return None
    return cache[key]


def _header_read(path) -> tuple:
    """(the header of ``path`` as ``dcmread_lenient(path, stop_before_pixels=True)`` reads it, the (tag, length, file
    offset of its value) of the pixel data element the read stopped at, None when it stopped at none): pydicom's own
    stop before the pixels (its ``_at_pixel_data``), the element's length and offset kept as it stops, so the
    pixel-data check (:func:`check_pixel_data`) needs no second parse of the file (QA export68: ``read_ct`` parsed each
    of LUNG1-003's 107 slices 3 times, ``lungai dicom-export`` 2 times)."""
    stops: list = []

    def stop_when_for(fp):
        stops.clear()       # a bare data set is read a second time (``force``): that read's stop counts

        def at_pixel_data(tag, vr, length):
            if tag in _PIXEL_TAGS:
                stops.append((int(tag), int(length), fp.tell()))
                return True
            return False
        return at_pixel_data

    ds = _dcmread_lenient(path, stop_when_for=stop_when_for)
    return ds, (stops[-1] if stops else None)


_PIXEL_TAGS = frozenset((PIXEL_DATA, *FLOAT_PIXEL_DATA))     # where pydicom's ``stop_before_pixels`` stops


def _pixels_from_header(path):
    """(header, pixel data length, file offset of its value) of ``path`` from the header read once inside
    :func:`headers_once` (read now if need be), when that tells :func:`check_pixel_data` all the file's own read with
    the pixel data deferred would: a PixelData element of a defined length above the deferral size, ending at the
    file's end (nothing after it to parse), in a data set not deflated; else None (the file is read as before)."""
    cache = _HEADERS.get()
    if cache is None:
        return None
    key = _header_key(path)
    found = _cached(cache, key, path) if key is not None else None
    if found is None or found[1] is None:
        return None
    ds, (tag, length, offset) = found
    # an offset only where the element's value starts: the stop of the data set's parse, not of pydicom's look at
    # its first element's VR (length 0, the file positioned inside the element)
    if (tag != PIXEL_DATA or length in (0, UNDEFINED_LENGTH) or length <= _DEFER_SIZE or _inflated(ds)
            or offset + length != key[2]):
        return None
    return ds, length, offset


def _dcmread_lenient(path, **kwargs):
    """``pydicom.dcmread(path, **kwargs)``, a file without the DICOM Part-10 header (no 128-byte preamble, "DICM" or
    file meta: a bare data set, as older systems write - GDCM / ITK read it) read again with ``force=True``.  That
    read must find a DICOM data set (a SOPClassUID or Modality), else pydicom's InvalidDicomError is raised: the file
    is not DICOM.  The one reader of :func:`read_dicom` (the CT reader's checks) and of ``lungai dicom-scan``.
    ``stop_when_for``: given the open file, pydicom's ``read_partial`` callback (``(tag, VR, length)`` before each
    top-level element's value, the file positioned at that value; True: stop there), in place of
    ``stop_before_pixels``."""
    from pydicom.errors import InvalidDicomError

    try:
        return _dcmread(path, **kwargs)
    except InvalidDicomError as exc:
        first = exc
    try:
        with warnings.catch_warnings():     # pydicom's guesses on a file that is no DICOM ("Expected implicit VR...")
            warnings.simplefilter("ignore")
            ds = _dcmread(path, force=True, **kwargs)
    except Exception:  # noqa: BLE001 - not a bare data set either: not DICOM
        ds = None
    if ds is None or not ("SOPClassUID" in ds or "Modality" in ds):
        raise first
    return ds


def _dcmread(path, stop_when_for=None, **kwargs):
    """``pydicom.dcmread(path, **kwargs)``; with ``stop_when_for``, the file read up to where
    ``stop_when_for(file)`` says (pydicom's ``read_partial``, which dcmread calls with its own)."""
    import pydicom

    if stop_when_for is None:
        return pydicom.dcmread(path, **kwargs)
    from pydicom.filereader import read_partial

    tags = kwargs.get("specific_tags")
    with open(path, "rb") as fp:
        return read_partial(fp, stop_when=stop_when_for(fp), force=kwargs.get("force", False),
                            specific_tags=list(_tags(tuple(tags))) if tags else None)


@functools.lru_cache(maxsize=32)
def _tags(keywords: tuple) -> tuple:
    """``specific_tags`` as pydicom's ``read_partial`` takes them (tags; ``dcmread`` takes keywords too)."""
    from pydicom.tag import Tag

    return tuple(Tag(t) for t in keywords)


def file_modality(path) -> str:
    """The Modality of a DICOM file (upper case, "" when it has none), the file read only up to it (pydicom raises
    on a file that is not DICOM, as ``dcmread``): ``dcmread`` with ``specific_tags`` still reads every element after
    it - an RTSTRUCT's every contour (QA dicomfollow65: ~0.13 s for LUNG1-003's, in each command's output-folder
    check)."""
    return header_value(path, "Modality").upper()


def header_value(path, keyword: str) -> str:
    """A top-level element of a DICOM file's header as text (stripped; "" when the file has none), the file read only
    up to it (:func:`file_modality`'s way; pydicom raises on a file that is not DICOM, as ``dcmread``)."""
    (tag,) = _tags((keyword,))
    ds = _dcmread(path, stop_when_for=lambda fp: lambda t, vr, length: t > tag, specific_tags=[keyword])
    return str(ds.get(keyword, "") or "").strip()


NOT_DICOM = ("is not DICOM: neither a DICOM file (Part-10 header: preamble, \"DICM\", file meta) nor a bare DICOM "
             "data set")


def read_dicom(path, fix: str, name: str | None = None, **kwargs):
    """``pydicom.dcmread(path, **kwargs)``, a Deflated Explicit VR Little Endian file whose deflate stream is cut short
    or corrupt refused (InputError naming ``name`` or the file, and ``fix``) instead of zlib's bare "Error -5 while
    decompressing data": pydicom inflates the whole data set even for a header-only read.  A file without the Part-10
    header is read as a bare data set (:func:`dcmread_lenient`)."""
    import zlib

    p = Path(path)
    try:
        return dcmread_lenient(p, **kwargs)
    except zlib.error as exc:
        raise InputError(f"{name or p.name} is truncated or corrupt: its deflated data set (Deflated Explicit VR "
                         f"Little Endian) cannot be inflated ({exc}); the file was cut short (an interrupted copy or "
                         "export)", fix) from None


def _inflated(ds) -> bool:
    """Whether pydicom parsed ``ds`` from an inflated copy of the file (Deflated Explicit VR Little Endian), not
    from the file itself: its elements' offsets (``value_tell``) are then not offsets in the file."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "") or "") == DeflatedExplicitVRLittleEndian


def check_pixel_data(path, fix: str, name: str | None = None) -> None:
    """Refuse (InputError naming ``name`` or the file, and ``fix``) a DICOM file whose pixel data is missing or
    shorter than its header needs, or runs past the end of the file - from the header alone (the value is not read;
    a deflated file: its inflated PixelData's length, :func:`_inflated`).
    Encapsulated (compressed) pixel data is only checked to be present (:func:`decode_pixels` checks the rest)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    name = name or p.name
    known = _pixels_from_header(p)
    if known is not None:       # the header read once (headers_once): the element's length and offset known
        ds, length, offset = known
        need = expected_pixel_bytes(ds)
        have = max(0, min(length, p.stat().st_size - offset))
        if have < length or (need is not None and length < need):
            raise _short(name, have, need if need is not None else length, fix)
        return
    try:
        ds = read_dicom(p, fix, name, defer_size=_DEFER_SIZE)   # PixelData deferred: length, offset kept
        if _inflated(ds):       # offsets in the inflated data set, not the file: read in full (already in memory)
            ds = pydicom.dcmread(p)     # (a deflated file has file meta: no bare data set)
        element = ds.get_item(PIXEL_DATA, keep_deferred=True)
    except InputError:
        raise
    except InvalidDicomError:     # no DICOM data set at all (a bare one is read: dcmread_lenient): not a cut-short file
        raise InputError(f"{name} {NOT_DICOM}", fix) from None
    except Exception as exc:  # noqa: BLE001 - a header that cannot be parsed is the same fault
        raise InputError(f"{name} could not be read as DICOM ({type(exc).__name__}: {exc}); it is truncated or "
                         "corrupt", fix) from None
    if element is None:
        _no_pixel_data(ds, name, fix)
    need = expected_pixel_bytes(ds)
    undefined = getattr(element, "is_undefined_length", None)      # a DataElement; a RawDataElement has .length
    if undefined is None:
        undefined = element.length == UNDEFINED_LENGTH
    if undefined:
        return
    if element.value is not None:                     # small enough to have been read: its bytes are there
        if need is not None and len(element.value) < need:
            raise _short(name, len(element.value), need, fix)
        return
    length = element.length
    size = p.stat().st_size
    have = max(0, min(length, size - int(element.value_tell)))
    if have < length or (need is not None and length < need):
        raise _short(name, have, need if need is not None else length, fix)


FLOAT_PIXELS_FIX = ("convert it to integer pixel data (PixelData, BitsAllocated 16, with RescaleSlope / "
                    "RescaleIntercept giving the Hounsfield units), e.g. re-export it so from the scanner / PACS, or "
                    "to a NIfTI / NRRD / MHA volume of Hounsfield units (e.g. its pydicom float_pixel_data saved "
                    "with SimpleITK) given instead")


def _no_pixel_data(ds, name: str, fix: str):
    """Refuse a data set without PixelData: float pixel data (FloatPixelData / DoubleFloatPixelData, BitsAllocated
    32 / 64) named as not supported (ITK / GDCM read neither), else the file is incomplete."""
    floats = [t for t in FLOAT_PIXEL_DATA if t in ds]
    if floats:
        kind = "FloatPixelData" if floats[0] == FLOAT_PIXEL_DATA[0] else "DoubleFloatPixelData"
        raise InputError(f"{name} holds float pixel data ({kind}, BitsAllocated {getattr(ds, 'BitsAllocated', '?')}), "
                         "which is not supported (FloatPixelData / DoubleFloatPixelData: the DICOM reader, ITK / "
                         "GDCM, reads only integer PixelData)", FLOAT_PIXELS_FIX)
    raise InputError(f"{name} holds no pixel data (PixelData); it is truncated or incomplete", fix)


CT_FIX = "re-export the CT series (every slice) from the PACS or planning system"


def check_ct_files(files, fix: str = CT_FIX, root=None) -> None:
    """:func:`check_pixel_data` on every file of a CT (its slices, or the one file of an Enhanced / multi-frame CT),
    the refusal naming "CT slice NAME" ("CT file NAME" for one file; with ``root``, the folder given - ``lungai
    cohort``'s DICOM_ROOT - its path under it: :func:`lungai.dicom.discover.shown_path`): the one check of the CT
    reader (:func:`lungai.io.read.read_ct`, every command reading a DICOM CT) and of ``lungai cohort``'s planning.
    ITK's series reader takes a slice cut short without an error (made-up values, or a "missing slice").
    Several slices refused: counted, the first ones and the last named, the first's reason said (QA cohortfollow65:
    10 slices cut short named only the first, so the user re-exported one slice to meet the next)."""
    from lungai.dicom.discover import shown_path

    files = list(files)
    what = "CT slice" if len(files) > 1 else "CT file"
    bad = []            # (shown name, InputError)
    for f in files:
        shown = shown_path(f, root) if root is not None else Path(f).name
        try:
            check_pixel_data(f, fix, name=f"{what} {shown}")
        except InputError as exc:
            bad.append((shown, exc))
    if len(bad) == 1:
        raise bad[0][1]
    if bad:
        names = [n for n, _ in bad]
        listed = (", ".join(names) if len(names) <= 4 else
                  ", ".join(names[:3]) + f" and {len(names) - 3} more, the last {names[-1]}")
        said = [e.problem.removeprefix(f"{what} {n} ") for n, e in bad]     # each reason, its name said here
        short = f"is {TRUNCATED}: "
        cut = all(r.startswith(short) for r in said)
        raise InputError(f"{counted_of(len(bad), len(files), 'CT slice')} "
                         + (f"are {TRUNCATED}: {listed} (the first: {said[0].removeprefix(short)})" if cut
                            else f"cannot be read: {listed} (the first {said[0]})"), bad[0][1].fix)


def decode_pixels(ds, name: str, fix: str):
    """``ds.pixel_array`` of a DICOM dataset read in full, refused (InputError naming ``name``, ``fix``) when the
    pixel data is short of what the header needs or cannot be decoded, instead of pydicom's bare ValueError."""
    if "PixelData" not in ds:
        _no_pixel_data(ds, name, fix)
    element = ds["PixelData"]
    need = expected_pixel_bytes(ds)
    if not element.is_undefined_length and need is not None and len(ds.PixelData) < need:
        raise _short(name, len(ds.PixelData), need, fix)
    try:
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - any decoding failure: the file named, the fix given
        raise InputError(f"{name}: its pixel data cannot be decoded ({type(exc).__name__}: {exc}); the file is "
                         "truncated or corrupt, or in a compression this installation cannot read", fix) from None


COPY_FIX = ("keep the copy that belongs to the series in the export and move the other out of it (or re-export the CT "
            "series from the PACS or planning system)")


def _geometry(ds) -> tuple:
    """What a slice must share with its series to be one of it: Rows, Columns, PixelSpacing, ImageOrientationPatient
    (rounded: as written to a few decimals)."""
    def numbers(name):
        try:
            return tuple(round(float(v), 4) for v in getattr(ds, name))
        except (AttributeError, TypeError, ValueError):
            return None

    return (getattr(ds, "Rows", None), getattr(ds, "Columns", None), numbers("PixelSpacing"),
            numbers("ImageOrientationPatient"))


def drop_slice_copies(files, root=None) -> tuple[list, list[str]]:
    """(the slice ``files`` of one CT series without the extra copies of a slice, a note per copy left out).

    Two files with one SOPInstanceUID are one slice (exported or copied twice): the intact copy is kept - the one
    whose pixel data is all there and decodes (:func:`check_pixel_data`, :func:`decode_pixels`) and whose Rows,
    Columns, PixelSpacing and ImageOrientationPatient are the series' -, the others left out, each named in a note
    with the copy kept.  Several intact copies holding the same slice (pixels and ImagePositionPatient): the first by
    path is kept.  Intact copies that differ are refused (InputError naming both files): which one belongs to the
    series is not known.  No intact copy: all are kept, for :func:`check_ct_files` to refuse them.  The one rule of
    the CT reader (:func:`lungai.io.read.read_ct`) and of ``lungai cohort`` / ``dicom-scan``
    (:func:`lungai.dicom.discover.scan`); ``root``: files named by their path under it
    (:func:`lungai.dicom.discover.shown_path`)."""
    from collections import Counter, defaultdict

    import numpy as np

    from lungai.dicom.discover import rescale_value, shown_path

    files = list(files)
    if len(files) < 2:
        return files, []
    heads, by_uid = {}, defaultdict(list)
    for f in files:
        try:
            ds = dcmread_lenient(f, stop_before_pixels=True, specific_tags=[
                "SOPInstanceUID", "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient"])
        except Exception:  # noqa: BLE001 - unreadable: the CT checks refuse it with their reason
            continue
        heads[f] = ds
        uid = str(getattr(ds, "SOPInstanceUID", "") or "").strip()
        if uid:
            by_uid[uid].append(f)
    groups = {uid: sorted(g, key=str) for uid, g in by_uid.items() if len(g) > 1}
    if not groups:
        return files, []
    shown = lambda f: "CT slice " + (shown_path(f, root) if root is not None else str(f))  # noqa: E731
    copies = {f for g in groups.values() for f in g}
    common = Counter(_geometry(heads[f]) for f in heads if f not in copies).most_common(1)
    series_geometry = common[0][0] if common else None
    left_out, notes = set(), []
    for uid, group in groups.items():
        intact, broken = [], {}
        for f in group:
            try:
                check_pixel_data(f, CT_FIX, name=shown(f))
                ds = read_dicom(f, CT_FIX, name=shown(f))
                pixels = decode_pixels(ds, shown(f), CT_FIX)
            except InputError as exc:
                broken[f] = exc.problem
                continue
            except Exception as exc:  # noqa: BLE001 - any failure to read it: not the intact copy
                broken[f] = f"{shown(f)} cannot be read ({type(exc).__name__}: {exc})"
                continue
            if series_geometry is not None and _geometry(ds) != series_geometry:
                broken[f] = (f"{shown(f)} does not match the series' geometry (Rows, Columns, PixelSpacing, "
                             "ImageOrientationPatient)")
                continue
            # the HU are the stored pixels x RescaleSlope + RescaleIntercept: stored pixels alike under another rescale
            # are another slice (QA: a copy 30 HU higher was "the same pixels" and the first by path kept)
            hu = tuple(rescale_value(getattr(ds, k, None)) for k in ("RescaleIntercept", "RescaleSlope"))
            intact.append((f, np.asarray(pixels), str(getattr(ds, "ImagePositionPatient", "")), hu))
        if not intact:
            continue     # check_ct_files refuses them, naming the first
        kept, pixels, position, rescale = intact[0]
        for f, other, pos, hu in intact[1:]:
            if other.shape != pixels.shape or not np.array_equal(other, pixels) or pos != position or hu != rescale:
                raise InputError(f"{shown(kept)} and {shown(f)} have the same SOPInstanceUID {uid} but different "
                                 "contents (pixel data, ImagePositionPatient or RescaleIntercept / RescaleSlope): "
                                 "which one belongs to the CT series is not known", COPY_FIX)
            left_out.add(f)
            notes.append(f"{shown(f)} left out: a copy of {shown(kept)} (same SOPInstanceUID {uid}, same pixels)")
        for f, why in broken.items():
            left_out.add(f)
            notes.append(f"{shown(f)} left out: a damaged copy of {shown(kept)} (same SOPInstanceUID {uid}; {why}); "
                         f"the intact copy is used - delete the damaged one from the export")
    return [f for f in files if f not in left_out], notes
