"""Output locations, checked before any work: a command that cannot write its results says so at once.

- :func:`prepare_output_folder` / :func:`prepare_output_file` - before computing: the location is a folder (not a
  file), can be created and written, and is not the folder of a DICOM input (which must keep only its slices).
- :func:`check_output_owner`, :func:`claim_output_folder` / :func:`claimed_output_folder`, :func:`record_outputs`
  - a folder a command writes into (``.lungai-<command>`` marker, listing the files and folders a run wrote): a
  file of the command's output names (``owns``) that the marker does not list is the user's and refused (without
  ``owns``, or ``new_or_own``: a folder without the marker must be empty), so is an input lying in what the run
  would remove; only what a previous run recorded is removed before new outputs are written (of a folder it wrote,
  e.g. ``sample``'s ``dicom/``, the files recorded in it as ``dicom/...``, then the folders left empty); other files
  are left alone.  A marker that lists a folder by its name only (its files not known) is refused before any work,
  nothing in that folder removed.  The marker also stamps every recorded file
  (size and modification time as written, :func:`_stamp`): a recorded file changed since (edited, or deleted and
  saved anew by the user) is the user's and refused; a marker of an older lungai without stamps lists names only.
  Each file is stamped as it lands (:func:`landed`, called by :func:`writing` once a write succeeded), the marker
  rewritten atomically (while files land fast, at most about every :data:`STAMP_EVERY` seconds): a run killed
  mid-step (SIGKILL, power loss, out of memory) leaves its files recorded and the re-run replaces them (a file
  landed in the last moment before the kill may stay unrecorded: refused as the user's, to be removed by hand).
  A run holds the folder's lock ``.lungai.lock`` (created atomically before anything is removed or written, also
  for a new folder; its process, computer, start and command) until it ends: a second run into the folder is
  refused (:func:`check_not_running`); a lock whose process is gone (same computer) is stale and taken over; one
  of another computer says how to clear it (delete that file only).  A killed run's temporary files of lungai's
  own names (``.partial-lungai-<command>-<pid>``, ``<output>.tmp``) are removed by the next claim.  lungai's own
  bookkeeping files in a folder it wrote (a nested claim's marker, lock, temporary marker: :func:`_bookkeeping`)
  are never compared by stamp (the nested run rewrites them); a folder holding only such files is lungai's.
- :func:`locked_output_folder` - the same lock, held for a whole run, for the commands with their own resume rules
  (``cohort``, ``radiomics-batch`` - the folder of its ``-o`` table): a second run into the folder while one is
  alive is refused, a killed run's lock taken over and the run resumed.
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
from pathlib import Path
from typing import Iterable

from lungai.errors import InputError
from lungai.paths import check_folder_path  # noqa: F401 - the one rule, light (lungai.cli.stage: -o before its imports)

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
    """Turn an error while writing ``path`` into :func:`file_error` (no traceback); once written, stamp it in the
    marker of the run that claimed its folder (:func:`landed`)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        raise file_error(exc, path) from exc
    if path is not None and _ACTIVE:
        landed(path)


# entries (files and folders) looked at when finding a DICOM export's top folder: a large tree stops the climb there
EXPORT_SCAN_LIMIT = 3000


def _study_uid(path: Path):
    """A DICOM file's StudyInstanceUID ("" when it has none), None when it cannot be read; the file read up to it,
    not through every element after as ``specific_tags`` reads (QA cohortread66: an RTSTRUCT folder's file, parsed
    whole - LUNG1-003's: 0.23-0.56 s of a DICOM-writing command's output-folder check)."""
    from lungai.dicom.pixeldata import header_value

    with contextlib.suppress(Exception):
        return header_value(path, "StudyInstanceUID")
    return None


# files that are no DICOM and do not make a folder "yours" when finding an export's top folder: notes and OS files
EXPORT_CLUTTER_SUFFIXES = (".txt", ".md", ".rtf", ".pdf", ".doc", ".docx", ".htm", ".html", ".xml", ".ini", ".inf",
                           ".log", ".db")


def _export_clutter(path: Path) -> bool:
    """A notes.txt, README, Thumbs.db / desktop.ini ... lying in an export (not a result, image or table)."""
    name = path.name.lower()
    return name.startswith("readme") or path.suffix.lower() in EXPORT_CLUTTER_SUFFIXES


def _one_study_only(folder: Path, skip: Path | None, study: str, budget: list) -> bool:
    """True when ``folder`` holds no DICOM file of another study than ``study`` and no file of yours, at any depth
    (notes and OS files - notes.txt, Thumbs.db, a README: :func:`_export_clutter` -, empty folders, hidden files and files lungai recorded there as its
    outputs do not count; ``skip``: a subfolder already known to be so; the first DICOM file of each folder is read
    for its study).  False for another study's DICOM (another patient's: a folder of patients; a second study of
    the patient), or past ``budget`` entries (lungai dicom-scan / cohort leave lungai's own outputs out wherever
    they lie, so a folder left open there is harmless)."""
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom

    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return False
    own, read = _own_outputs(folder), False
    for entry in entries:
        if entry.name.startswith(".") or entry == skip or entry.name in own:
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if entry.is_dir():
            if not _one_study_only(entry, None, study, budget):
                return False
        elif entry.name.upper() == "DICOMDIR":
            continue
        elif not (entry.suffix.lower() == ".dcm" or _is_dicom(entry)):
            if _export_clutter(entry):
                continue        # notes / OS files beside an export's DICOM: never read as part of it (dicom-scan too)
            return False        # your results, images, tables: a folder of yours holding the export
        elif not read:
            read = True
            if _study_uid(entry) != study:
                return False
    return True


def dicom_export_root(folder) -> Path:
    """The top folder of the DICOM export that holds the CT series folder ``folder``: its highest ancestor, climbing
    one level at a time, that holds no DICOM file of another study (:func:`_one_study_only`: a patient's folder with
    CT/ and RTSTRUCT/, also with a notes.txt or Thumbs.db; an export's PT*/ST*/SE* tree); ``folder`` itself when its
    parent holds another study's DICOM (a folder of several patients, a patient's second study), files of yours
    (results, images, tables) or more than
    EXPORT_SCAN_LIMIT entries; never the home folder or a filesystem root."""
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom

    folder = Path(folder).resolve()
    first = next((f for f in sorted(folder.iterdir()) if f.is_file() and _is_dicom(f)), None)
    study = _study_uid(first) if first is not None else None
    root, budget = folder, [EXPORT_SCAN_LIMIT]
    if not study:
        return root
    for parent in folder.parents:
        if parent == parent.parent or parent == Path.home().resolve() or \
                not _one_study_only(parent, root, study, budget):
            break
        root = parent
    return root


EXPORT_WHY = "it holds only DICOM files of this CT's study, besides notes or OS files"


def check_outside_export(out, root, why: str = "the DICOM export given") -> None:
    """Refuse an output folder ``out`` that is the DICOM export's top folder ``root`` or lies inside it: lungai's
    SEG / RTSTRUCT / SR written there become part of the export (``lungai dicom-scan`` then lists them, ``lungai
    cohort`` finds several RTSTRUCTs for the CT and refuses the patient as ambiguous).  The one rule of ``lungai
    cohort`` (``root``: the export given) and of every command with a DICOM input (:func:`dicom_export_root`;
    ``why``: why ``root`` is taken as the export, :data:`EXPORT_WHY`)."""
    out, root = Path(out).resolve(), Path(root).resolve()
    if out == root or root in out.parents:
        raise InputError(f"the output folder {out} lies inside the DICOM export {root} ({why})",
                         "write the results outside the export, e.g. in a folder beside it (lungai's DICOM objects "
                         "there would be read as part of the export: lungai dicom-scan / lungai cohort)")


def _dicom_input_folders(inputs) -> list:
    """The folders of DICOM inputs, each with what it was given as: (folder, modality) for a DICOM file given as
    input (a .dcm or a file with the DICM preamble: --dose RD.dcm, --rtstruct RS.dcm, a SEG mask) whose folder holds
    DICOM files only (an export's RTDOSE/ or RTSTRUCT/ folder, which must keep only its DICOM files; not a folder
    holding other files of the user's, nor a lungai output folder), (folder, None) for a folder of DICOM files
    given.  Light (no SimpleITK, pandas; pydicom for a DICOM file given in such a folder only): the commands check
    their output with their arguments (QA dicomfollow71: ``radiomics --rtstruct x/rs.dcm -o x/r.csv`` was refused
    after "reading the CT" was said, ~2.5 s)."""
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom
    from lungai.paths import is_dicom_folder

    def export_folder(folder: Path) -> bool:
        files = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")][:200]
        return not any(folder.glob(".lungai-*")) and all(
            f.name.upper() == "DICOMDIR" or f.suffix.lower() == ".dcm" or _is_dicom(f) for f in files)

    found = []
    for p in (Path(i) for i in inputs if i):
        if p.is_file() and (_is_dicom(p) or p.suffix.lower() == ".dcm") and export_folder(p.resolve().parent):
            from lungai.dicom.pixeldata import file_modality   # here: pydicom's 0.5-0.9 s, for a DICOM input only

            modality = None
            with contextlib.suppress(Exception):
                modality = file_modality(p) or None
            found.append((p.resolve().parent, modality or "DICOM"))
        elif is_dicom_folder(p) and not _only_own_dicom(p):
            found.append((p.resolve(), None))
    folders = [f for f, given in found if given is None]     # a folder given as input is named by what it holds
    return [(f, given) for f, given in found if given is None or f not in folders]


def _own_outputs(folder: Path) -> set[str]:
    """The names lungai's markers in ``folder`` list as outputs of its commands there (:func:`record_outputs`,
    :func:`record_output_file`; any command's)."""
    own = set()
    for marker in folder.glob(".lungai-*"):
        if marker.is_file():
            with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):   # a damaged marker lists nothing
                own |= _recorded(folder, marker.name[len(".lungai-"):])
    return own


def other_commands_outputs(folder: Path, command: str, names) -> dict[str, str]:
    """Which of ``names`` in ``folder`` another lungai command wrote there (its marker lists them,
    :func:`_recorded`): {name: that command}.  QA: ``lungai dicom-export -o`` into a ``lungai segment`` folder was
    refused as holding files "not written by lungai dicom-export", with the fix to move segment's results away."""
    found = {}
    for marker in sorted(Path(folder).glob(".lungai-*")):
        other = marker.name[len(".lungai-"):]
        if other == command or not marker.is_file():
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):   # a damaged marker lists nothing
            recorded = _recorded(Path(folder), other)
            found.update({n: other for n in names if n in recorded and n not in found})
    return found


# the commands whose DICOM files are derived results (SEG, RTSTRUCT, Parametric Map, SR of a CT), never inputs of a
# scan; `lungai sample --dicom` / `stage synth` write DICOM meant as inputs: not listed
DERIVED_DICOM_COMMANDS = ("segment", "lungs", "dicom-export", "demo")


def derived_dicom_outputs(folder: Path) -> dict[str, str]:
    """The files directly in ``folder`` that lungai wrote there as derived results (:data:`DERIVED_DICOM_COMMANDS`)
    and that are still as written (the marker's stamp matches): {name: marker name}.  A file the user replaced
    or edited since, a file in a subfolder, a folder, an unreadable or foreign ``.lungai-*`` file: not listed (a
    scan then reads it as the user's)."""
    found = {}
    for command in DERIVED_DICOM_COMMANDS:
        marker = _marker(folder, command)
        try:
            if not marker.is_file() or not marker.read_text(encoding="utf-8").startswith("written by lungai "):
                continue
            entries = _read_marker(folder, command)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        for name, stamp in entries.items():
            f = folder / name
            if stamp and "/" not in name and _safe_relative(name) and not f.is_symlink() and _stamp(f) == stamp:
                found[name] = marker.name
    return found


def _only_own_dicom(folder: Path) -> bool:
    """True for a folder whose DICOM files (at its top) are all lungai's own outputs of an earlier run there (e.g.
    ``lungai segment p5 -o p5``: tumor.seg.dcm, rtstruct.dcm ... beside the patient's CT/ folder): it is no DICOM
    input folder - a re-run replaces its own outputs.  A DICOM file of the user's there still makes it one.  QA:
    the second ``lungai segment p5 -o p5`` was refused as "the OT/RTSTRUCT/SEG/SR folder p5 (an input)"."""
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom
    from lungai.paths import read_ct_header

    if not folder.is_dir():
        return False
    own = _own_outputs(folder)
    if not own:
        return False
    files = [f for f in sorted(folder.iterdir()) if f.is_file() and f.name not in own and not f.name.startswith(".")]
    return not any(_is_dicom(f) or read_ct_header(f) is not None for f in files[:50])


def _dicom_folder_label(folder: Path) -> str:
    """What the DICOM input folder ``folder`` holds, as a refusal names it: "CT" (a CT series, also with its RT
    objects), else the modality of its DICOM files (RTDOSE, RTSTRUCT ...; not lungai's own outputs there), else
    "DICOM"."""
    from lungai.dicom.pixeldata import file_modality
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom

    modalities, own = set(), _own_outputs(folder)     # lungai's own outputs there are no input (_only_own_dicom)
    for f in [f for f in sorted(folder.iterdir()) if f.name not in own][:50]:
        if f.is_file() and _is_dicom(f):
            with contextlib.suppress(Exception):
                modalities.add(file_modality(f))
    modalities.discard("")
    if "CT" in modalities or not modalities:
        return "CT" if modalities else "DICOM"
    return "/".join(sorted(modalities))


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
    # only an input that is the output folder, or a file in it, can make it a DICOM input's folder: the others are not
    # looked at (the DICOM checks import SimpleITK; lungai stage checks -o before its heavy imports)
    inputs = [i for i in inputs if i]
    near = any(out.resolve() in (Path(i).resolve(), Path(i).resolve().parent) for i in inputs)
    given = _dicom_input_folders(inputs) if near else []
    for folder, modality in given:
        if out.resolve() == folder:
            label = modality or _dicom_folder_label(folder)
            if label == "CT" and modality is None and any(f != folder and m is None and _dicom_folder_label(f) == "CT"
                                                          for f, m in given):
                label = "DICOM"        # a folder holding CT slices given beside the --ct folder: not the CT's
            if label == "CT":
                raise InputError(f"refusing to write results into the DICOM series folder {out} (the input CT's)",
                                 "choose an output folder outside the CT's folder (it must keep only the CT slices)")
            raise InputError(f"refusing to write results into the {label} folder {out} (an input: DICOM files of "
                             "the export)", f"choose an output folder outside the {label} folder (it must keep only "
                             "the exported DICOM files)")
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


def prepare_output_file(path, inputs: Iterable = (), owner: str | None = None, sidecars: Iterable = ()) -> Path:
    """The output file ``path``: not a folder, not one of ``inputs``, its folder writable and not the folder of a
    DICOM input; with ``owner``, neither it nor its ``sidecars`` (other files the command writes beside it) may be
    an existing file ``lungai <owner>`` did not write (:func:`check_output_file_owner`; record them with
    :func:`record_output_file` once written).  Call it before computing.  A folder missing is not left behind
    (``create=False`` of :func:`prepare_output_folder`: a run refused later leaves no empty folder); the writer
    creates it with the file."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"the output {p} is a folder", "give a file name with -o (e.g. one inside that folder)")
    for other in inputs:
        if other and Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output name")
    if owner:
        for f in (p, *sidecars):
            check_output_file_owner(f, owner)
    prepare_output_folder(p.parent, inputs, create=False)
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
    check_not_running(out, command)
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
        if any(f.name != LOCK for f in out.iterdir()):
            raise InputError(f"the output folder {out} is not empty and was not written by lungai {name}",
                             f"choose a new folder with -o (a previous lungai {name} output folder is reused)")
        return
    inside = _recorded_inside(out, command)
    folder_only = sorted(n for n in recorded if n not in inside and (out / n).is_dir() and not (out / n).is_symlink())
    if folder_only:                         # a folder listed by its name only: its files are not known
        raise InputError(f"{', '.join(str(out / n) for n in folder_only)} was written by an earlier lungai {name} "
                         "whose marker does not list the files in it; it is not replaced, so that no file of "
                         "yours in it is lost",
                         "move the files you want to keep out of that folder and delete it yourself, or choose "
                         "another folder with -o")
    changed = _changed(out, command)
    if changed:
        raise InputError(f"the output folder {out} holds {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}"
                         f", changed since lungai {name} wrote {'it' if len(changed) == 1 else 'them'} "
                         "(a re-run would replace or remove it; a copy of the folder that did not keep the files' "
                         "times counts as changed too)",
                         f"choose another folder with -o, or move {'that file' if len(changed) == 1 else 'those files'}"
                         " away (a re-run replaces only the files as lungai wrote them; copy output folders with "
                         "cp -a / rsync -a)")
    if owns is None:
        return
    owns = list(owns)
    clash = sorted(n for n in set(owns) if (out / n).is_symlink() or ((out / n).exists() and n not in recorded
                                                                      and not _only_bookkeeping(out / n)))
    others = other_commands_outputs(out, command, clash)
    if others:      # another lungai command's results (lungai segment's DICOM objects for dicom-export): said so
        listed = "; ".join(f"{', '.join(n for n in clash if others.get(n) == c)}: lungai {_command_name(c)}'s results"
                           for c in dict.fromkeys(others.values()))
        raise InputError(f"the output folder {out} holds {listed} (lungai {name} would overwrite "
                         f"{'it' if len(others) == 1 else 'them'})",
                         f"choose another folder with -o, e.g. a subfolder of it: -o {out / command}"
                         + (f" (it also holds {', '.join(n for n in clash if n not in others)}, not written by "
                            "lungai)" if len(others) < len(clash) else ""))
    if clash:
        raise InputError(f"the output folder {out} holds {', '.join(clash)}, not written by lungai {name} "
                         "(it would be overwritten)",
                         f"choose another folder with -o, or move {'that file' if len(clash) == 1 else 'those files'}"
                         f" away (lungai {name} writes only {', '.join(owns)}; other files are left alone; lungai "
                         "records each file it writes as soon as it is written, a killed run's too, and never "
                         "removes a file it did not record: if such a file is an earlier run's - killed while "
                         "writing it, or a moment after - remove it yourself)")


def claim_output_folder(path, command: str, owns: Iterable[str] | None = None, inputs: Iterable = (),
                        new_or_own: bool = False, writes: Iterable[str] = (), running: bool = False) -> list[str]:
    """Make ``path`` the output of this ``lungai <command>`` run: refuse a foreign folder, a user's file of an output
    name or an input the run would remove (:func:`check_output_owner`; a folder the marker lists without its files
    too), remove the files and folders a previous run recorded in the marker (:func:`record_outputs`; nothing else:
    a user's file is never removed - of a folder the command wrote, only the files recorded in it, then the folders
    left empty), and mark the folder.  ``writes``: paths (relative to ``path``) the run will write inside its
    folders; a file of the user's kept there at one of them is refused.  The folder's lock (:func:`_lock`) is
    taken first (a new folder is created for it, and removed again when refused); ``running``: it is kept (another
    run into the folder is refused meanwhile, :func:`check_not_running`) until :func:`_unlock` -
    :func:`claimed_output_folder` does so when its block ends -, else released once claimed.  Returns the names
    removed.
    :func:`claimed_output_folder` also records what the run writes."""
    out = Path(path)
    check_folder_path(out)
    missing = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]   # the deepest first
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    _lock(out, command)                 # before anything is removed or written: one run per folder
    try:
        removed = _claim_locked(out, command, owns, inputs, new_or_own, writes)
    except BaseException:
        _unlock(out)
        for folder in missing:          # a new folder refused: not left behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if not running:
        _unlock(out)
    return removed


def _claim_locked(out: Path, command: str, owns, inputs, new_or_own: bool, writes) -> list[str]:
    """:func:`claim_output_folder` once this process holds the folder's lock."""
    check_output_owner(out, command, owns, inputs, new_or_own)
    _remove_stale_temps(out, owns)
    inside = _recorded_inside(out, command)
    recorded_files = {f"{top}/{rel}" for top, files in inside.items() for rel in files}
    kept = _files_inside(out, [n for n in (owns or ()) if (out / n).is_dir()
                               and not (out / n).is_symlink()]) - recorded_files   # a user's, in the run's folder
    clash = sorted(kept & {str(w) for w in writes})
    if clash:
        raise InputError(f"the output folder {out} holds {', '.join(clash[:5])}{' ...' if len(clash) > 5 else ''}, "
                         f"not written by lungai {_command_name(command)} (it would be overwritten)",
                         f"move {'that file' if len(clash) == 1 else 'those files'} away, or choose another folder "
                         "with -o")
    removed = []
    for name in sorted(_recorded(out, command)):
        f = out / name
        if Path(name).name != name or f.is_symlink():   # only plain names inside the folder, never through a link
            continue
        if f.is_file():
            with writing(f):
                f.unlink()
            removed.append(name)
        elif f.is_dir() and name in inside:             # a folder the command wrote (e.g. the demo's rp_model/):
            _remove_recorded_files(f, inside[name])     # only the files recorded in it; a user's file is kept
            removed.append(name)
    _write_marker(out, command, {})
    return removed


def _safe_relative(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _remove_recorded_files(folder: Path, files: Iterable[str]) -> None:
    """Remove the recorded ``files`` (paths relative to ``folder``; never through a link, never outside it), then
    the folders they leave empty (``folder`` included); anything else in it is kept."""
    for rel in sorted(files):
        if not _safe_relative(rel):
            continue
        f = folder / rel
        if any(p.is_symlink() for p in (f.parent, *f.parent.parents) if folder in (p, *p.parents) and p != folder):
            continue
        if f.is_symlink() or f.is_file():
            with writing(f):
                f.unlink()
    for root, dirs, names in os.walk(folder, topdown=False):
        here = Path(root)
        if here.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if not any(here.iterdir()):
                here.rmdir()


def _files_inside(out: Path, folders: Iterable[str]) -> set[str]:
    """The files (and links) in ``folders`` of ``out``, as paths relative to ``out`` (``dicom/X/CT/ct_0001.dcm``)."""
    found = set()
    for name in folders:
        for root, dirs, names in os.walk(out / name):
            for n in names + [d for d in dirs if (Path(root) / d).is_symlink()]:
                found.add((Path(root) / n).relative_to(out).as_posix())
    return found


class Claim(list):
    """What :func:`claimed_output_folder` yields: the names removed (a list), and :meth:`record`, which lists in the
    marker the outputs written so far - call it after each step of a long run, so that a run killed on the way
    (SIGTERM, SIGKILL, a cluster's time limit: no ``finally`` runs) leaves a marker that lists what it wrote, and the
    re-run into the same folder replaces them instead of refusing them as the user's."""

    def __init__(self, removed, record):
        super().__init__(removed)
        self._record = record

    def record(self) -> None:
        self._record()


@contextlib.contextmanager
def claimed_output_folder(path, command: str, owns: Iterable[str], inputs: Iterable = (), new_or_own: bool = False,
                          writes: Iterable[str] = ()):
    """:func:`claim_output_folder` (yields the names removed, a :class:`Claim` whose ``record()`` records the outputs
    written so far - after each step of a long run), then, when the block ends - a failure included - record
    the files and folders of the output names ``owns`` it holds (of a folder, the files in it but those that were
    there before the run: a user's, kept): after the claim, only this run can have written them, so a re-run
    replaces them and a user's file is never taken for one."""
    out = Path(path)
    owns = list(owns)
    existed, marked = out.is_dir(), _marker(out, command).is_file()
    removed = claim_output_folder(out, command, owns, inputs, new_or_own, writes, running=True)
    kept = _files_inside(out, [n for n in owns if (out / n).is_dir() and not (out / n).is_symlink()])

    def written() -> list[str]:
        return [n for n in owns if (out / n).exists() and not (out / n).is_symlink()]

    active = _Active(out, command, owns, kept)

    def record() -> None:
        with _MARKERS:
            record_outputs(out, command, written(), keep=kept)
            active.pending.clear()              # all recorded: nothing left to stamp

    claim = Claim(removed, record)
    _ACTIVE.append(active)                      # each output file is stamped in the marker as it lands (landed)
    try:
        yield claim
    finally:
        try:
            _ACTIVE.remove(active)
            active.stop()
            if written() or marked:
                claim.record()
            else:                               # failed before writing anything: the folder is left as it was
                with contextlib.suppress(OSError):
                    _marker(out, command).unlink()
        finally:
            _unlock(out)
            if not existed:
                with contextlib.suppress(OSError):
                    out.rmdir()                 # only when empty


def record_outputs(path, command: str, files: Iterable, keep: Iterable[str] = ()) -> None:
    """List ``files`` (files or folders written into ``path``) in its marker, so that the next run removes them
    (only those: a file of an output name that the marker does not list is the user's and refused).  A folder is
    listed as ``name/`` followed by the files in it (``name/sub/file``; but those in ``keep``, paths relative to
    ``path`` of files that were there before the run), which are all the next run removes of it."""
    out = Path(path)
    names = sorted({Path(f).name for f in files})
    keep = {str(k) for k in keep}
    lines = []
    for n in names:
        if (out / n).is_dir() and not (out / n).is_symlink():
            lines.append(n + "/")
            lines += sorted(f for f in _files_inside(out, [n]) if f not in keep)
        else:
            lines.append(n)
    _write_marker(out, command, {n: _stamp(out / n) for n in lines})


STAMPS = "stamps (size mtime_ns name):"   # the marker's line before the stamps of its recorded files


def _stamp(path: Path) -> str | None:
    """What a recorded file looked like as written: its size and modification time (ns) - a file edited or saved anew
    since differs (cheap for large images and DICOM series, unlike a checksum).  None: not a plain file."""
    with contextlib.suppress(OSError):
        if not path.is_symlink() and path.is_file():
            st = path.stat()
            return f"{st.st_size} {st.st_mtime_ns}"
    return None


RUNNING = "running (pid host started):"   # a section lungai 61dbecb wrote into markers (runs now in the lock): read over


def _parse_marker(out: Path, command: str) -> tuple[dict, list]:
    """The marker's entries (as :func:`_read_marker`) and its runs in progress: [(pid, host, started), ...]."""
    marker = _marker(out, command)
    if not marker.is_file():
        return {}, []
    entries, stamps, running, section = {}, {}, [], None
    for line in marker.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip() in (STAMPS, RUNNING):
            section = line.strip()
        elif section == STAMPS:
            size, mtime, name = (line.split(" ", 2) + ["", ""])[:3]
            if name.strip():
                stamps[name.strip()] = f"{size} {mtime}"
        elif section == RUNNING:
            pid, host, started = (line.split(" ", 2) + ["", ""])[:3]
            with contextlib.suppress(ValueError):
                running.append((int(pid), host, float(started)))
        elif line.strip():
            entries[line.strip()] = None
    return {n: stamps.get(n) for n in entries}, running


def _read_marker(out: Path, command: str) -> dict:
    """The marker's entries (names, ``folder/``, ``folder/file``) with their stamps (None: not stamped - a folder, or
    a marker of an older lungai, which listed names only)."""
    return _parse_marker(out, command)[0]


def _write_marker(out: Path, command: str, entries: dict) -> None:
    """Write the marker: its entries, then the stamps of those that have one.  Atomically (a temporary file
    renamed): a run killed while writing it leaves the marker as it was, never a cut-off one (and its temporary
    file, which the next claim of the folder removes: :func:`_remove_stale_temps`).  The runs in progress are in
    the folder's lock (:func:`_lock`), not in the marker (the ``running`` section a marker of an earlier lungai
    may hold is read over, and dropped when the marker is rewritten)."""
    marker = _marker(out, command)
    names = sorted(entries)
    stamped = [f"{entries[n]} {n}" for n in names if entries[n]]
    text = f"written by lungai {command}\n" + "".join(n + "\n" for n in names)
    if stamped:
        text += STAMPS + "\n" + "".join(s + "\n" for s in stamped)
    tmp = out / f"{TEMP_PREFIX}{command}-{os.getpid()}"     # no .lungai-* name: never read as a marker
    with writing(marker):
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, marker)
        finally:
            tmp.unlink(missing_ok=True)


def _host() -> str:
    import socket

    return "".join((socket.gethostname() or "localhost").split()) or "localhost"     # no blank: one marker field


def _process_started(pid: int) -> float | None:
    """When the process ``pid`` started (seconds since the epoch), None when it does not exist (or, with 0.0, that
    it exists but its start is not known: no /proc).  Tells a run in progress from a pid that a killed run left in
    its marker and the system has since given to another process."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").is_file():       # Linux: the start in clock ticks since boot
        try:
            fields = stat.read_text(encoding="utf-8", errors="replace").rpartition(")")[2].split()
            boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                        if line.startswith("btime "))
            return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, StopIteration):
            return None
    if os.name == "nt":                         # os.kill(pid, 0) would stop the process on Windows
        import ctypes

        kernel = ctypes.windll.kernel32
        handle = kernel.OpenProcess(0x1000, False, pid)       # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return 0.0 if kernel.GetLastError() == 5 else None   # access denied: it exists
        try:
            code = ctypes.c_ulong()
            alive = kernel.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value == 259   # STILL_ACTIVE
            return 0.0 if alive else None
        finally:
            kernel.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass                                    # another user's process: it exists
    return 0.0


LOCK = ".lungai.lock"     # the folder's lock: held by the run writing into it (pid host started command)
TEMP_PREFIX = ".partial-lungai-"   # + <command>-<pid>: a marker being written (_write_marker)


def _stale(pid: int, host: str, started: float) -> bool:
    """A run in progress as listed (in the lock) that is no longer running: on this computer, its process no longer
    exists (killed: SIGKILL, power loss, out of memory) or its pid now belongs to a process started later.  A run on
    another computer (a shared folder, another container) cannot be checked: not stale."""
    if host != _host():
        return False
    now = _process_started(pid)
    return now is None or bool(now and now > started + 2)


def _lock_text(command: str) -> str:
    import time

    return f"{os.getpid()} {_host()} {_process_started(os.getpid()) or time.time():.2f} {command}\n"


def _read_lock(lock: Path) -> tuple[int, str, float, str] | None:
    """(pid, host, started, command) of the lock file, None when it cannot be read (being written, damaged)."""
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        pid, host, started, command = (lock.read_text(encoding="utf-8").split() + ["", "", "", ""])[:4]
        return int(pid), host, float(started), command or "?"
    return None


def _lock_stale(lock: Path, holder) -> bool:
    """The lock ``holder`` (:func:`_read_lock`) is stale (:func:`_stale`); an unreadable lock is a run's that is
    writing it right now, unless it is older than a minute (a run killed between creating and writing it)."""
    import time

    if holder is None:
        with contextlib.suppress(OSError):
            return time.time() - lock.stat().st_mtime > 60
        return True                     # gone meanwhile
    return _stale(*holder[:3])


LOCK_WRITE_WAIT = 20      # _holder: an empty (being written) lock read again up to this many times, 0.05 s apart
_HELD: dict = {}          # the folders whose lock this process holds: {folder: times taken} (nested claims)


def _holder(lock: Path):
    """The holder of the lock ``lock`` (:func:`_read_lock`), by every check of a folder's lock (taking it,
    :func:`_lock`; the early check of a command, :func:`check_not_running`): a lock found empty or unreadable (another
    run created it a moment ago and is writing it: two runs started at once) is read again for up to a second
    (:data:`LOCK_WRITE_WAIT`), so that a refusal names that run's process.  None: still unreadable (a run killed
    while starting: :func:`_lock_stale` after a minute) or gone meanwhile."""
    import time

    holder = _read_lock(lock)
    for _wait in range(LOCK_WRITE_WAIT):     # created, not yet written: a run started at this moment
        if holder is not None or not lock.exists() or _lock_stale(lock, holder):
            break
        time.sleep(0.05)
        holder = _read_lock(lock)
    return holder


def _lock(out: Path, command: str) -> None:
    """Take the folder's lock ``out/.lungai.lock``: created atomically (O_CREAT | O_EXCL: of two runs started at
    once, one gets it), naming this process, its computer, its start and the command.  A stale lock (its run is
    gone, :func:`_lock_stale`) is taken over; a live one is refused (:func:`check_not_running`).  Taken again by
    the process that holds it (a claim inside a claim): counted, released by the last :func:`_unlock`.  A lock
    found empty (another run created it a moment ago and is writing it: two runs started at once) is read again for
    up to a second (:func:`_holder`), so that the refusal names that run's process."""
    key = out.resolve()
    if key in _HELD:
        _HELD[key] += 1
        return
    lock = out / LOCK
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileNotFoundError:       # the folder, new, removed by a run refused meanwhile: made again
            with writing(out):
                out.mkdir(parents=True, exist_ok=True)
            continue
        except FileExistsError:
            holder = _holder(lock)
            if not _lock_stale(lock, holder):
                check_not_running(out, command, holder)     # the holder just read (its wait not made again)
                continue                # released meanwhile: try again
            _break_stale_lock(lock, holder)
            continue
        except OSError as exc:
            raise file_error(exc, lock) from exc
        try:
            os.write(fd, _lock_text(command).encode("utf-8"))
        finally:
            os.close(fd)
        _HELD[key] = 1
        return
    check_not_running(out, command)
    raise InputError(f"could not take the lock {lock.absolute()} of the output folder {out.absolute()}: other runs "
                     "keep taking it", "wait until the other lungai runs into that folder have ended, or " +
                     write_elsewhere(command))


@contextlib.contextmanager
def locked_output_folder(path, command: str):
    """Hold the folder's lock ``path/.lungai.lock`` (:func:`_lock`) for a whole run of a command that keeps its own
    resume rules instead of a claim (``lungai cohort``, ``lungai radiomics-batch``: nothing is removed here, a
    re-run resumes the cases finished): another lungai run into the folder meanwhile is refused, naming its process
    (:func:`check_not_running`); a stale lock (its run killed: SIGKILL, power loss, out of memory) is taken over,
    one of another computer says how to clear it.  The lock is released when the block ends (a failure, Ctrl-C or
    SIGTERM included); a folder made for it is removed again when the run left it empty (a run refused before any
    work leaves no folder behind)."""
    out = Path(path)
    check_folder_path(out)
    missing = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]   # the deepest first
    locked = False
    try:
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        _lock(out, command)
        locked = True
        yield out
    finally:
        if locked:
            _unlock(out)
        for folder in missing:              # only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _break_stale_lock(lock: Path, holder) -> None:
    """Remove the stale lock ``lock`` read as ``holder``, not a live one another run took meanwhile: it is renamed
    to a name of this process first (atomic: of two runs breaking it, one gets it) and removed only when it is
    still the stale one read; else it is put back (never over a lock taken since)."""
    aside = lock.with_name(f"{LOCK}.stale-{os.getpid()}")
    try:
        os.replace(lock, aside)
    except OSError:
        return                          # another run broke it first
    if _read_lock(aside) == holder:
        aside.unlink(missing_ok=True)
        return
    with contextlib.suppress(OSError):  # a lock taken meanwhile: back, unless another was taken since
        os.link(aside, lock)
    aside.unlink(missing_ok=True)


def _unlock(out: Path) -> None:
    """Release the folder's lock taken by :func:`_lock` (by the last of nested claims): removed when it is still
    this process's."""
    key = out.resolve()
    if key not in _HELD:
        return
    _HELD[key] -= 1
    if _HELD[key] > 0:
        return
    del _HELD[key]
    lock = out / LOCK
    holder = _read_lock(lock)
    if holder and holder[0] == os.getpid() and holder[1] == _host():
        with contextlib.suppress(OSError):
            lock.unlink()


_UNREAD = object()        # _runs_elsewhere / check_not_running: the lock's holder not read yet


def _runs_elsewhere(out: Path, holder=_UNREAD) -> list[tuple[str, int, str, float]]:
    """The run in progress in the folder ``out``, when another process than this one holds its lock (:func:`_lock`):
    [(command, pid, host, started)]; a stale lock (:func:`_lock_stale`) is left out.  ``holder``: the lock as the
    caller has just read it (:func:`_holder`), not read - nor waited for - again."""
    lock = out / LOCK
    if not lock.is_file():
        return []
    if holder is _UNREAD:
        holder = _holder(lock)
    if _lock_stale(lock, holder):
        return []
    if holder is None:
        return [("?", 0, "?", 0.0)]
    pid, host, started, command = holder
    if pid == os.getpid() and host == _host():
        return []
    return [(command, pid, host, started)]


_ELSEWHERE = {   # check_not_running: how a command refused so writes elsewhere (its -o, when not a folder)
    "radiomics-batch": "write the table into another folder (-o OTHER_FOLDER/table.csv): a batch holds the whole "
                       "folder of its table, not only its own file",
}


def write_elsewhere(command: str) -> str:
    """The part of a refusal of a folder in use (:func:`check_not_running`) that says how ``command`` writes
    elsewhere, in the CLI's words (its -o): a caller naming its own controls (the Slicer panels) replaces it."""
    return _ELSEWHERE.get(command, "choose another folder with -o")


def check_not_running(path, command: str, holder=_UNREAD) -> None:
    """Refuse the output folder ``path`` while another lungai run writes into it (it holds the folder's lock,
    :func:`_lock`): two runs there would remove or mix each other's results.  ``holder``: its lock as the caller
    has just read it (:func:`_lock`: a lock being written is waited for once, not twice)."""
    import datetime as dt

    out = Path(path)
    others = _runs_elsewhere(out, holder)
    out = out.absolute()                        # named as it is: "the output folder ." says nothing
    if others and others[0][1] == 0:            # a lock not (yet) readable, younger than a minute
        raise InputError(f"a lungai run is starting in {out}, or one was killed while starting (its lock "
                         f"{out / LOCK} is empty or cannot be read)",
                         f"if no lungai run is going on there, delete {out / LOCK} (only that file) and run again, "
                         "or wait a minute (a lock left so is taken over then)")
    if others:
        other, pid, host, started = others[0]
        when = dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
        here = host == _host()
        raise InputError(f"the output folder {out} is in use by another lungai {_command_name(other)} run (process "
                         f"{pid} on {host}, started {when}); two runs writing into one folder would remove or mix "
                         "each other's results",
                         "wait until that run has ended, or " + write_elsewhere(command) +
                         ("" if here else "; " + lock_elsewhere_fix(out, host)))


def lock_elsewhere_fix(path, host: str) -> str:
    """How to clear the lock of the folder ``path`` held by a run of another computer ``host`` (its liveness cannot
    be checked from here: never taken over): the lock file named in full.  One wording for every refusal
    (:func:`check_not_running`, lungai.seg.model_meta's training in progress, the Slicer panels)."""
    return (f"if no lungai run is going on on {host} any more (e.g. its container or cluster job has ended), delete "
            f"the lock file {Path(path).absolute() / LOCK} - only that file - and run again")


def lock_holder(path) -> tuple[str, int, str, str, bool] | None:
    """Who holds the lock of the folder ``path`` (:func:`_lock`), when that run is alive and is not this process:
    (command, pid, host, started "YYYY-MM-DD HH:MM:SS", on this computer - else its liveness cannot be checked);
    pid 0 (command and host "?") while the lock is being written; None when no lock, a stale one (its process gone)
    or this process's.  For the messages that must not
    call a folder in use "interrupted" or "stopped" (a training still running: lungai.seg.model_meta, the panel)."""
    import datetime as dt

    others = _runs_elsewhere(Path(path))
    if not others:
        return None
    command, pid, host, started = others[0]
    return command, pid, host, dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"), host == _host()


def _remove_stale_temps(out: Path, owns) -> None:
    """Remove the temporary files a killed run left in ``out`` (the lock held: no other run writes there now):
    a marker being written (``.partial-lungai-<command>-<pid>``) whose process is gone, and ``<output>.tmp`` of
    the output names ``owns`` (e.g. ``model.skops.tmp``, rp's model files written under a temporary name).  Only
    lungai's own temporary names; no other file."""
    for f in out.glob(TEMP_PREFIX + "*"):
        pid = f.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and f.is_file() and not f.is_symlink() \
                and _process_started(int(pid)) is None:
            with contextlib.suppress(OSError):
                f.unlink()
    for n in owns or ():
        f = out / (n + ".tmp")
        if _safe_relative(n) and f.is_file() and not f.is_symlink():
            with writing(f):
                f.unlink()


STAMP_EVERY = 0.5         # landed(): the marker rewritten at most this long after a file landed, and sooner -
STAMP_COST = 4            # at once - when the last rewrite took less than 1/STAMP_COST of the time since: files
#                           landing slower than the marker is written (images, tables) are each stamped at once,
#                           a fast series of small files (DICOM slices) costs at most 1/STAMP_COST more time


_MARKERS = __import__("threading").RLock()    # marker writes of landed() (also from its timer) and of the claim


class _Active:
    """A claimed folder of this process: its files are stamped in its marker as they land (:func:`landed`);
    ``pending``: stamps not yet written into the marker - written by the next landing, or by a timer at the latest
    :data:`STAMP_EVERY` seconds later."""

    def __init__(self, out: Path, command: str, owns, kept):
        self.out, self.command, self.owns, self.kept = out.resolve(), command, set(owns), set(kept)
        self.pending: dict = {}
        self.written_at, self.cost, self.timer = 0.0, 0.0, None

    def flush(self) -> None:
        """Write the pending stamps into the marker (read again: other entries are kept)."""
        import time

        with _MARKERS:
            if not self.pending:
                return
            t = time.monotonic()
            entries = _read_marker(self.out, self.command)
            new = {n: s for n, s in self.pending.items() if entries.get(n, "missing") != s}
            self.pending = {}
            if new:
                flushing = _LANDING.__dict__.setdefault("claims", set())
                flushing.add(id(self))
                try:
                    _write_marker(self.out, self.command, entries | new)
                finally:
                    flushing.discard(id(self))
            self.written_at = time.monotonic()
            self.cost = self.written_at - t

    def later(self) -> None:
        """Flush the pending stamps :data:`STAMP_EVERY` seconds from now (a timer), unless one is set already."""
        import threading

        if self.timer is None or not self.timer.is_alive():
            self.timer = threading.Timer(STAMP_EVERY, self._timed)
            self.timer.daemon = True
            self.timer.start()

    def _timed(self) -> None:
        with contextlib.suppress(Exception):    # (a failure here: the claim's end records all the same)
            self.flush()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


_ACTIVE: list = []        # the folders claimed by this process, now (claimed_output_folder)
_LANDING = __import__("threading").local()   # .claims: the claims whose marker this thread is writing (flush):
#                           that marker's own landing is not stamped in them again; a nested claim's marker (the
#                           demo's rp_model/.lungai-rp-train) is still stamped in the enclosing claim


def landed(path) -> None:
    """The output file ``path`` has just been written (renamed into place): stamp it in the marker of the run that
    claimed its folder (:func:`claimed_output_folder`; with its folder ``name/`` when it lies in an output folder),
    so that a run killed later (SIGKILL, power loss, out of memory: no ``finally`` runs) leaves a marker listing it
    as written, and the re-run replaces it; a file changed since, or never stamped, stays refused.  The marker is
    rewritten right away when the last rewrite is long enough ago (:data:`STAMP_COST`), else by a timer
    :data:`STAMP_EVERY` seconds later (many small files landing fast - a DICOM series - do not rewrite it per file);
    a file landed in the moment before a kill may stay unrecorded (refused, like a file of the user's).  A folder
    made (``path`` a folder: a nested claim's, e.g. the demo's ``rp_model/`` before ``rp train`` takes its lock
    there) is recorded as ``name/`` at once, so that a kill right after leaves it listed.  A file outside a claimed
    folder, or not of its output names: nothing done."""
    import time

    if not _ACTIVE:
        return
    p = Path(path)
    folder = p.is_dir()
    if p.is_symlink() or not (folder or p.is_file()):
        return
    flushing = getattr(_LANDING, "claims", set())
    where = p.parent.resolve() / p.name
    for claim in list(_ACTIVE):
        if id(claim) in flushing:               # its own marker being written
            continue
        try:
            rel = where.relative_to(claim.out)
        except ValueError:
            continue
        if not rel.parts:
            continue
        top = rel.parts[0]
        if top not in claim.owns or rel.as_posix() in claim.kept or (claim.out / top).is_symlink():
            continue
        with _MARKERS:
            if not folder:
                claim.pending[rel.as_posix()] = _stamp(p)
            if folder or len(rel.parts) > 1:
                claim.pending[top + "/"] = None
        if folder or time.monotonic() - claim.written_at >= min(STAMP_EVERY, STAMP_COST * claim.cost):
            claim.flush()
        else:
            claim.later()


def forget_stamps(path, command: str, names: Iterable[str] | None = None) -> None:
    """A run that has passed the owner check and now rewrites its recorded files in place (a resumable ``cohort``,
    ``radiomics-batch``) drops the stamps from its marker (names only) until it records its outputs again at the
    end: a run killed on the way (SIGKILL, a cluster's time limit) leaves files that no longer match their old stamps,
    and the resume must not take them for the user's.  ``names``: only these entries (the outputs of this run where
    several runs share one marker, e.g. ``radiomics-batch`` tables in one folder); None: all."""
    out = Path(path)
    entries = _read_marker(out, command)
    drop = set(entries) if names is None else {str(n) for n in names}
    if any(stamp for n, stamp in entries.items() if n in drop):
        _write_marker(out, command, {n: (None if n in drop else stamp) for n, stamp in entries.items()})


def _bookkeeping(name: str) -> bool:
    """A file name of lungai's own bookkeeping: a marker ``.lungai-<command>``, the lock ``.lungai.lock`` (and one
    being broken, ``.lungai.lock.stale-<pid>``), a marker being written ``.partial-lungai-<command>-<pid>``.  Inside
    a folder lungai wrote (the demo's ``rp_model/``, claimed by ``rp train`` in turn) such a file is the nested
    run's, rewritten by it as its files land - never a file of the user's (no one saves a ``.lungai-rp-train``)."""
    return name.startswith((".lungai-", LOCK, TEMP_PREFIX))


def _only_bookkeeping(folder: Path) -> bool:
    """``folder`` is a folder (not a link) holding lungai's bookkeeping files only (:func:`_bookkeeping`), e.g. a
    nested claim's folder a run killed right after taking its lock left with only ``.lungai.lock``."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    with contextlib.suppress(OSError):
        entries = list(folder.iterdir())
        return bool(entries) and all(f.is_file() and not f.is_symlink() and _bookkeeping(f.name) for f in entries)
    return False


def _changed(out: Path, command: str) -> list[str]:
    """The recorded files (stamped) that are not as lungai wrote them: edited or saved anew since (a removed file is
    not listed: nothing of the user's is lost).  lungai's own bookkeeping files in a folder it wrote (a nested
    run's marker or lock, :func:`_bookkeeping`) are not compared: the nested run rewrites them, and a kill may come
    before the new stamp is written."""
    changed = []
    for name, stamp in _read_marker(out, command).items():
        if _bookkeeping(Path(name).name):
            continue
        if stamp and _safe_relative(name) and (out / name).exists() and _stamp(out / name) != stamp:
            changed.append(name)
    return sorted(changed)


def _entries(out: Path, command: str) -> list[str]:
    return list(_read_marker(out, command))


def _recorded_inside(out: Path, command: str) -> dict:
    """Per folder the marker lists as ``name/``: the recorded files in it (relative to the folder).  A folder listed
    by its bare name is absent: its files are not known (refused by :func:`check_output_owner`)."""
    inside = {}
    for e in _entries(out, command):
        top, slash, rest = e.partition("/")
        if slash:
            files = inside.setdefault(top, set())
            if rest:
                files.add(rest)
    return inside


def _recorded(out: Path, command: str) -> set[str]:
    """The names the marker lists directly in ``out`` (files, and folders with or without their files)."""
    return {e.partition("/")[0] for e in _entries(out, command)}


def check_output_file_owner(path, command: str) -> None:
    """Refuse an existing output file ``path`` that ``lungai <command>`` did not write (its name is not listed in
    the command's marker in its folder, :func:`record_output_file`) or that changed since it wrote it (its stamp,
    :func:`_stamp`: edited, or deleted and saved anew): a file of the user's is never replaced, the command's own
    output of an earlier run, as it wrote it, is."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()) or p.is_dir():
        return
    if p.is_symlink() or p.name not in _recorded(p.parent, command):
        raise InputError(f"{p} already exists and was not written by lungai {_command_name(command)}; "
                         "nothing is overwritten",
                         "choose a new file name (or move that file away)")
    if p.name in _changed(p.parent, command):
        raise InputError(f"{p} changed since lungai {_command_name(command)} wrote it (edited, saved anew, or "
                         "copied without its time); nothing is overwritten",
                         "choose a new file name (or move that file away)")


def written_by(path, command: str, folder=None) -> bool:
    """Whether the file ``path`` is one ``lungai <command>`` wrote, unchanged since (listed in its marker with the
    same stamp).  The marker is the one in ``path``'s folder, or in ``folder`` (a folder above, whose marker lists
    the file by its path relative to it, as the demo lists ``stage_cohort/ehr.csv``)."""
    p = Path(path)
    where = p.parent if folder is None else Path(folder)
    try:
        name = p.name if folder is None else p.relative_to(where).as_posix()
    except ValueError:
        return False
    stamp = _read_marker(where, command).get(name)
    return bool(stamp) and not p.is_symlink() and _stamp(p) == stamp


def lungai_written(paths, top) -> set[Path]:
    """Of ``paths`` (files under the folder ``top``), those a lungai marker lists as its own output, unchanged since
    (the stamp matches, :func:`_stamp`): the marker of any command (``.lungai-*``) in the file's folder or in a
    folder above it up to ``top`` - a cohort's ``-o`` folder lists ``patients/P1/tumour.nii.gz`` -, as
    :func:`written_by`.  A file the user replaced or edited since, or a link, is not listed.  QA newfollow66:
    ``lungai dicom-scan`` / ``cohort`` of an export holding a cohort's output folder called its tumour and lungs
    masks a patient's unread CT images."""
    top = Path(top)
    markers: dict = {}

    def recorded(folder: Path) -> dict:
        if folder not in markers:
            found: dict = {}
            for marker in sorted(folder.glob(".lungai-*")):
                with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):   # a damaged marker lists nothing
                    if marker.is_file() and marker.read_text(encoding="utf-8").startswith("written by lungai "):
                        found.update({n: s for n, s in _read_marker(folder, marker.name[len(".lungai-"):]).items()
                                      if s})
            markers[folder] = found
        return markers[folder]

    own = set()
    for p in (Path(f) for f in paths):
        folder = p.parent
        while folder == top or top in folder.parents:
            stamp = recorded(folder).get(p.relative_to(folder).as_posix())
            if stamp:
                if not p.is_symlink() and _stamp(p) == stamp:
                    own.add(p)
                break
            if folder == top or folder == folder.parent:
                break
            folder = folder.parent
    return own


def record_output_file(path, command: str) -> None:
    """Add the file ``path`` (just written) to the command's marker in its folder, with its stamp (:func:`_stamp`),
    so that a re-run may replace it as long as it is unchanged (:func:`check_output_file_owner`)."""
    p = Path(path)
    _write_marker(p.parent, command, _read_marker(p.parent, command) | {p.name: _stamp(p)})


def remove_output_file(path, command: str) -> None:
    """Remove the file ``path`` a run of the command no longer writes (e.g. a stale ``_errors.csv`` of an earlier
    run) and its entry in the marker: a file the user later saves under that name is the user's (an entry left
    with its old stamp would refuse it as 'changed', one without a stamp would take it for lungai's)."""
    p = Path(path)
    with writing(p):
        p.unlink(missing_ok=True)
    entries = _read_marker(p.parent, command)
    if p.name in entries:
        _write_marker(p.parent, command, {n: s for n, s in entries.items() if n != p.name})


@contextlib.contextmanager
def recorded_output_files(paths, command: str):
    """Record each of ``paths`` (a single-file command's output and the files beside it) that the block wrote (new,
    or changed), when it ends - a failure included (:func:`record_output_file`): a run that fails after writing
    some of them leaves none that the next run would take for a file of the user's.  A file the block left as it
    was is not recorded (an input given as output and refused stays the user's).  Use it after
    :func:`prepare_output_file` (``owner``) refused any of the user's."""
    paths = [Path(p) for p in paths]

    def state(p: Path):
        with contextlib.suppress(OSError):
            st = p.stat()
            return st.st_ino, st.st_size, st.st_mtime_ns
        return None

    before = {p: state(p) for p in paths}
    try:
        yield paths
    finally:
        for p in paths:
            if p.is_file() and not p.is_symlink() and state(p) != before[p]:
                record_output_file(p, command)
