"""Output locations, checked before any work: a command that cannot write its results says so at once.

- :func:`prepare_output_folder` / :func:`prepare_output_file` - before computing: the location is a folder (not a
  file), can be created and written, and is not the folder of a DICOM input (which must keep only its slices).
- :func:`check_output_owner`, :func:`claim_output_folder` / :func:`claimed_output_folder`, :func:`record_outputs`
  - a folder a command writes into (``.lungai-<command>`` marker, listing the files and folders a run wrote): a
  file of the command's output names (``owns``) that the marker does not list is the user's and refused (without
  ``owns``, or ``new_or_own``: a folder without the marker must be empty), so is an input lying in what the run
  would remove; only what a previous run recorded is removed before new outputs are written; other files are left
  alone.
- :func:`check_output_file_owner`, :func:`record_output_file` - the same for single output files and the files
  written beside them (e.g. ``rp predict -o predictions.csv``, ``radiomics -o features.csv`` and its settings
  sidecars; :func:`prepare_output_file` with ``owner``): an existing file is replaced only when the command's
  marker in its folder lists it (a re-run), never a file of the user's.
- :func:`file_error` - an ``OSError`` (or ITK's write error) met while writing, as an :class:`InputError` naming the
  path and the fix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterable

from lungai.errors import InputError

FIX = "choose an output location you can write to (-o), e.g. a new folder in your home directory"


def file_error(exc: BaseException, path=None, action: str = "write") -> InputError:
    """``exc`` (OSError, or SimpleITK's RuntimeError) met while writing ``path`` (``action="access"``: reading or
    writing, not known which), as a user-facing error."""
    where = getattr(exc, "filename", None) or path
    why = getattr(exc, "strerror", None)
    if not why:                               # ITK: several lines, the last one says why
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = lines[-1] if lines else type(exc).__name__
    if action == "write":
        return InputError(f"cannot write {where}: {why}", FIX)
    return InputError(f"cannot {action} {where}: {why}", "check that the path exists and that you may read it, "
                                                         "and that the output location (-o) can be written")


@contextlib.contextmanager
def writing(path):
    """Turn an error while writing ``path`` into :func:`file_error` (no traceback)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        raise file_error(exc, path) from exc


def _dicom_input_folders(inputs) -> list:
    from lungai.dicom.reference import is_dicom_folder

    return [Path(p).resolve() for p in inputs if p and is_dicom_folder(p)]


def prepare_output_folder(path, inputs: Iterable = (), owner: str | None = None,
                          owns: Iterable[str] | None = None, create: bool = True) -> Path:
    """Create the output folder ``path`` (and its parents) and check that files can be written in it; refuse the
    folder of a DICOM input among ``inputs`` and, with ``owner``, a folder ``lungai <owner>`` did not write that
    holds files of its output names ``owns`` (without ``owns``: any file) or an input the run would remove
    (:func:`check_output_owner`).  ``create=False``: the folders made for the check are removed again (a command
    that fails later leaves no empty folder; it is made when the results are written).  Call it before
    computing."""
    out = Path(path)
    check_folder_path(out)
    for folder in _dicom_input_folders(inputs):
        if out.resolve() == folder:
            raise InputError(f"refusing to write results into the DICOM series folder {out}",
                             "choose an output folder outside the CT's folder (it must keep only the CT slices)")
    if owner:
        check_output_owner(out, owner, owns, inputs)
    missing = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]   # the deepest first
    probe = out / f".lungai-write-check-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write into the output folder {out}: {exc.strerror or exc}", FIX) from exc
    if not create:
        for folder in missing:
            with contextlib.suppress(OSError):
                folder.rmdir()
    return out


def check_folder_path(path) -> None:
    """Refuse an output folder ``path`` that is a file or lies under one (nothing is created)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output {out} is a file, not a folder", "give a folder name with -o (new or existing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot create the output folder {out}: {parent} is a file",
                                 "give -o a path whose parent folders are folders")
            break


def prepare_output_file(path, inputs: Iterable = (), owner: str | None = None, sidecars: Iterable = ()) -> Path:
    """The output file ``path``: not a folder, not one of ``inputs``, its folder writable (created) and not the
    folder of a DICOM input; with ``owner``, neither it nor its ``sidecars`` (other files the command writes beside
    it) may be an existing file ``lungai <owner>`` did not write (:func:`check_output_file_owner`; record them with
    :func:`record_output_file` once written).  Call it before computing."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"the output {p} is a folder", "give a file name with -o (e.g. one inside that folder)")
    for other in inputs:
        if other and Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output name")
    if owner:
        for f in (p, *sidecars):
            check_output_file_owner(f, owner)
    prepare_output_folder(p.parent, inputs)
    return p


def _command_name(command: str) -> str:
    """The command as typed, from its marker's name: rp-train -> "rp train", dicom-export stays."""
    group, _, sub = command.partition("-")
    return f"{group} {sub}" if group in ("rp", "stage") and sub else command


def _marker(out: Path, command: str) -> Path:
    return out / f".lungai-{command}"


def check_output_owner(path, command: str, owns: Iterable[str] | None = None, inputs: Iterable = (),
                       new_or_own: bool = False) -> None:
    """Refuse a folder path that is a file or lies under one (:func:`check_folder_path`) and a folder holding files
    ``lungai <command>`` would overwrite that it did not write: those named in ``owns`` (the command's output names;
    other files are the user's and are left alone) that its marker does not list (:func:`record_outputs`; no marker:
    none is listed), or, in a folder without the marker, any file when ``owns`` is not given or ``new_or_own``
    (a command that takes only a new folder or its own).  ``inputs`` that are, or lie under, a file or folder the
    marker lists (which the run removes first, :func:`claim_output_folder`) are refused too.  Nothing is created."""
    out = Path(path)
    check_folder_path(out)
    if not out.is_dir():
        return
    name = _command_name(command)
    marked = _marker(out, command).is_file()
    recorded = _recorded(out, command)
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)) or not str(given):
            continue
        src = Path(given).resolve()
        for n in sorted(recorded):
            old = (out / n).resolve()
            if src == old or old in src.parents:
                where = f"in {out / n}, " if src != old else ""
                raise InputError(f"the input {given} is {where}a result of an earlier lungai {name} run in {out}, "
                                 "which this run removes before writing its own",
                                 "copy it out of that folder and give the copy, or choose another output folder "
                                 "with -o")
    if not marked and (owns is None or new_or_own):
        if any(out.iterdir()):
            raise InputError(f"the output folder {out} is not empty and was not written by lungai {name}",
                             f"choose a new folder with -o (a previous lungai {name} output folder is reused)")
        return
    if owns is None:
        return
    owns = list(owns)
    clash = sorted(n for n in set(owns) if (out / n).is_symlink() or ((out / n).exists() and n not in recorded))
    if clash:
        raise InputError(f"the output folder {out} holds {', '.join(clash)}, not written by lungai {name} "
                         "(it would be overwritten)",
                         f"choose another folder with -o, or move {'that file' if len(clash) == 1 else 'those files'}"
                         f" away (lungai {name} writes only {', '.join(owns)}; other files are left alone)")


def claim_output_folder(path, command: str, owns: Iterable[str] | None = None, inputs: Iterable = (),
                        new_or_own: bool = False) -> list[str]:
    """Make ``path`` the output of this ``lungai <command>`` run: refuse a foreign folder, a user's file of an output
    name or an input the run would remove (:func:`check_output_owner`), remove the files and folders a previous run
    recorded in the marker (:func:`record_outputs`; nothing else: a user's file is never removed), and mark the
    folder.  Returns the names removed.  :func:`claimed_output_folder` also records what the run writes."""
    out = Path(path)
    check_output_owner(out, command, owns, inputs, new_or_own)
    marker = _marker(out, command)
    removed = []
    for name in sorted(_recorded(out, command)):
        f = out / name
        if Path(name).name != name or f.is_symlink():   # only plain names inside the folder, never through a link
            continue
        if f.is_file():
            with writing(f):
                f.unlink()
            removed.append(name)
        elif f.is_dir():                                # a folder the command wrote (e.g. the demo's rp_model/)
            with writing(f):
                shutil.rmtree(f)
            removed.append(name)
    with writing(marker):
        out.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"written by lungai {command}\n", encoding="utf-8")
    return removed


@contextlib.contextmanager
def claimed_output_folder(path, command: str, owns: Iterable[str], inputs: Iterable = (), new_or_own: bool = False):
    """:func:`claim_output_folder` (yields the names removed), then, when the block ends - a failure included - record
    the files and folders of the output names ``owns`` it holds: after the claim, only this run can have written
    them, so a re-run replaces them and a user's file is never taken for one."""
    out = Path(path)
    owns = list(owns)
    existed, marked = out.is_dir(), _marker(out, command).is_file()
    removed = claim_output_folder(out, command, owns, inputs, new_or_own)
    try:
        yield removed
    finally:
        written = [n for n in owns if (out / n).exists() and not (out / n).is_symlink()]
        if written or marked:
            record_outputs(out, command, written)
        else:                                   # failed before writing anything: the folder is left as it was
            with contextlib.suppress(OSError):
                _marker(out, command).unlink()
                if not existed:
                    out.rmdir()


def record_outputs(path, command: str, files: Iterable) -> None:
    """List ``files`` (files or folders written into ``path``) in its marker, so that the next run removes them
    (only those: a file of an output name that the marker does not list is the user's and refused)."""
    marker = _marker(Path(path), command)
    names = sorted({Path(f).name for f in files})
    with writing(marker):
        marker.write_text(f"written by lungai {command}\n" + "".join(n + "\n" for n in names), encoding="utf-8")


def _recorded(out: Path, command: str) -> set[str]:
    marker = _marker(out, command)
    if not marker.is_file():
        return set()
    return {n.strip() for n in marker.read_text(encoding="utf-8").splitlines()[1:] if n.strip()}


def check_output_file_owner(path, command: str) -> None:
    """Refuse an existing output file ``path`` that ``lungai <command>`` did not write (its name is not listed in
    the command's marker in its folder, :func:`record_output_file`): a file of the user's is never replaced, the
    command's own output of an earlier run is."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()) or p.is_dir():
        return
    if p.is_symlink() or p.name not in _recorded(p.parent, command):
        raise InputError(f"{p} already exists and was not written by lungai {_command_name(command)}; "
                         "nothing is overwritten",
                         "choose a new file name (or move that file away)")


def record_output_file(path, command: str) -> None:
    """Add the file ``path`` (just written) to the command's marker in its folder, so that a re-run may replace
    it (:func:`check_output_file_owner`)."""
    p = Path(path)
    names = _recorded(p.parent, command) | {p.name}
    marker = _marker(p.parent, command)
    with writing(marker):
        marker.write_text(f"written by lungai {command}\n" + "".join(n + "\n" for n in sorted(names)),
                          encoding="utf-8")
