"""The block in which each DICOM RT structure set is read once (:func:`read_once`): kept here, apart from
:mod:`lungai.dicom.rtstruct` (which reads through it), so that the CLI opens one for every command without importing
SimpleITK first."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os


# the RTSTRUCTs read in a :func:`read_once` block: {"files": (real path, mtime, size) -> {what: (the whole read / the
# dataset / its structures, or None and the error raised, without its frames: :func:`_frameless`)}, least recently
# read first; "names":
# (real path, mtime, size) -> {what: (contoured_structures' names / the references, or the error)}; "limit": how many
# files' datasets are kept}
_READ_ONCE: contextvars.ContextVar = contextvars.ContextVar("lungai_rtstruct_read_once", default=None)


@contextlib.contextmanager
def read_once(files: int | None = None):
    """Within the block (in this thread) an RTSTRUCT file is read and its contours parsed once, however many
    structures / roles are taken from it (:func:`lungai.dicom.rtstruct.read_structures`, ``list_structures``,
    ``read_rtstruct``, ``read_rtstruct_role``, ``contoured_structures``): a file changed on disk (its modification
    time or size) is read again.  Each call still gets its own ``Structure`` objects (a caller may set their ``error``).
    ``lungai cohort`` reads a patient in one (QA cohortbar64: LUNG1-003's RTSTRUCT was parsed 10 times in its work,
    about 3 s of its 10 s before its radiomics), and plans the cohort in one (QA planonce64: 3 more reads per patient).

    ``files``: the most files whose dataset and contours are kept (the least recently read dropped first; ``None``:
    every file) - the names ``contoured_structures`` gives are kept for every file, a few strings each, so a
    cohort's planning, patient after patient, does not hold every structure set's contours.  A block inside another
    reads through the enclosing one.

    A file that cannot be read is kept too, as its error: asked again, the same error is raised without reading the
    file again (QA dicomread65: a broken RTSTRUCT was read 4 times in cohort's planning, each read failing alike) -
    kept without the frames it was raised in (QA cohortread66: they held the data set read up to the cut).
    :func:`lungai.dicom.discover.scan` reads an RTSTRUCT through the block as well (its check that the file is whole,
    its references), so a scan and what follows it in the block read the file once (:func:`lungai.dicom.rtstruct.read_whole`)."""
    if _READ_ONCE.get() is not None:
        yield
        return
    token = _READ_ONCE.set({"files": {}, "names": {}, "limit": files})
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def in_read_once() -> bool:
    """Whether this is in a :func:`read_once` block (its results kept)."""
    return _READ_ONCE.get() is not None


def kept(path, what: str):
    """The result ``what`` of ``path``'s file as it is now that the enclosing :func:`read_once` block keeps (not an
    error kept), else None - nothing read."""
    cache = _READ_ONCE.get()
    if cache is None:
        return None
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    except (OSError, TypeError, ValueError):
        return None
    value, failed = cache["names" if what in _SMALL_RESULTS else "files"].get(key, {}).get(what, (None, None))
    return None if failed is not None else value


def once_per_file(path, what: str, make):
    """``make()``, kept for ``path``'s file as it is now (its real path, modification time and size; ``what``: which
    result of it; ``"names"``, ``"references"`` and ``"facts"``: kept for every file, the others for the block's
    ``files``) in a
    :func:`read_once` block; made on each call outside one (or when the file cannot be stat'ed: ``make`` says why).
    An error ``make`` raises is kept alike (without its frames: :func:`_frameless`) and raised again (a copy, its
    traceback from here), the file not read again."""
    cache = _READ_ONCE.get()
    if cache is None:
        return make()
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    except (OSError, TypeError, ValueError):
        return make()
    if what in _SMALL_RESULTS:
        entry = cache["names"].setdefault(key, {})
    else:
        kept = cache["files"]
        entry = kept.pop(key, {})
        kept[key] = entry                       # the most recently read last
        limit = cache["limit"]
        while limit is not None and len(kept) > max(limit, 1):
            del kept[next(iter(kept))]
    if what not in entry:
        try:
            entry[what] = (make(), None)
        except Exception as exc:  # noqa: BLE001 - kept as raised (InputError, pydicom's), the caller's own raised
            entry[what] = (None, _frameless(exc))
            raise
    value, failed = entry[what]
    if failed is not None:
        raise _frameless(failed)
    return value


def _frameless(exc: BaseException, depth: int = 0) -> BaseException:
    """A copy of ``exc`` without a traceback: its type, words and attributes (an InputError's problem and fix), and the
    errors it was raised from or during alike.  A kept error holds no frames - their locals (a data set read up to
    where the file was cut: ~3.6 MB each of LUNG1-003's RTSTRUCT cut inside its last element, QA cohortread66) stay
    alive as long as it does, in a block that keeps every file's names - and each raise of it is a copy: the raise's
    traceback goes with the caller's error, never back into the kept one."""
    try:
        bare = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an error that cannot be copied: itself, its frames dropped
        bare = exc
    if type(bare) is not type(exc) or str(bare) != str(exc):
        bare = exc
    bare.__traceback__ = None
    nested = depth < 8
    bare.__cause__ = _frameless(exc.__cause__, depth + 1) if exc.__cause__ is not None and nested else None
    bare.__context__ = _frameless(exc.__context__, depth + 1) if exc.__context__ is not None and nested else None
    bare.__suppress_context__ = exc.__suppress_context__
    return bare


# the results :func:`once_per_file` keeps for every file of a block (a few strings each)
_SMALL_RESULTS = ("names", "references", "facts")
