"""Output locations, checked before any work: a command that cannot write its results says so at once.

- :func:`prepare_output_folder` / :func:`prepare_output_file` - before computing: the location is a folder (not a
  file), can be created and written, and is not the folder of a DICOM input (which must keep only its slices).
- :func:`check_output_owner`, :func:`claim_output_folder`, :func:`record_outputs` - a folder a command writes into
  (``.lungai-<command>`` marker): a folder holding files of the command's output names (``owns``; without it: any
  file) that it did not record is refused; a previous run's outputs are removed before new ones are written; other
  files are left alone.
- :func:`check_output_file_owner`, :func:`record_output_file` - the same for single output files (e.g.
  ``rp predict -o predictions.csv``): an existing file is replaced only when the command's marker in its folder lists
  it (a re-run), never a file of the user's.
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
                          owns: Iterable[str] | None = None) -> Path:
    """Create the output folder ``path`` (and its parents) and check that files can be written in it; refuse the
    folder of a DICOM input among ``inputs`` and, with ``owner``, a folder ``lungai <owner>`` did not write that
    holds files of its output names ``owns`` (without ``owns``: any file; :func:`check_output_owner`).  Call it
    before computing."""
    out = Path(path)
    check_folder_path(out)
    for folder in _dicom_input_folders(inputs):
        if out.resolve() == folder:
            raise InputError(f"refusing to write results into the DICOM series folder {out}",
                             "choose an output folder outside the CT's folder (it must keep only the CT slices)")
    if owner:
        check_output_owner(out, owner, owns)
    probe = out / f".lungai-write-check-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write into the output folder {out}: {exc.strerror or exc}", FIX) from exc
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


def prepare_output_file(path, inputs: Iterable = ()) -> Path:
    """The output file ``path``: not a folder, not one of ``inputs``, its folder writable (created) and not the
    folder of a DICOM input.  Call it before computing."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"the output {p} is a folder", "give a file name with -o (e.g. one inside that folder)")
    for other in inputs:
        if other and Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output name")
    prepare_output_folder(p.parent, inputs)
    return p


def _marker(out: Path, command: str) -> Path:
    return out / f".lungai-{command}"


def check_output_owner(path, command: str, owns: Iterable[str] | None = None) -> None:
    """Refuse a folder path that is a file or lies under one (:func:`check_folder_path`) and a folder that
    ``lungai <command>`` did not write (its marker is missing) holding files it would overwrite: those named in
    ``owns`` (the command's output names; other files are the user's and are left alone), or, without ``owns``,
    any file.  Nothing is created."""
    out = Path(path)
    check_folder_path(out)
    if not out.is_dir() or _marker(out, command).is_file():
        return
    name = command.replace("-", " ")          # rp-train -> "lungai rp train"
    if owns is None:
        if any(out.iterdir()):
            raise InputError(f"the output folder {out} is not empty and was not written by lungai {name}",
                             f"choose a new folder with -o (a previous lungai {name} output folder is reused)")
        return
    clash = sorted(n for n in set(owns) if (out / n).exists() or (out / n).is_symlink())
    if clash:
        raise InputError(f"the output folder {out} holds {', '.join(clash)}, not written by lungai {name} "
                         "(it would be overwritten)",
                         f"choose another folder with -o, or move {'that file' if len(clash) == 1 else 'those files'}"
                         f" away (lungai {name} writes only {', '.join(owns)}; other files are left alone)")


def claim_output_folder(path, command: str, stale: Iterable[str] = (),
                        owns: Iterable[str] | None = None) -> list[str]:
    """Make ``path`` the output of this ``lungai <command>`` run: refuse a foreign folder (:func:`check_output_owner`
    with ``owns``), remove the files a previous run recorded (:func:`record_outputs`) and the names in ``stale``, and
    mark the folder.  Returns the names removed."""
    out = Path(path)
    check_output_owner(out, command, owns)
    marker = _marker(out, command)
    names = set(stale)
    if marker.is_file():
        names |= {n.strip() for n in marker.read_text(encoding="utf-8").splitlines()[1:] if n.strip()}
    removed = []
    for name in sorted(names):
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


def record_outputs(path, command: str, files: Iterable) -> None:
    """List ``files`` (written into ``path``) in its marker, so that the next run removes them."""
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
        raise InputError(f"{p} already exists and was not written by lungai {command.replace('-', ' ')}; "
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
