"""User-facing errors: each names the problem and how to fix it."""

import contextlib

# what separates the problem from its fix in an error's text (str(LungAIError))
FIX_SEPARATOR = "\n  How to fix: "


class LungAIError(Exception):
    """An error caused by the user's input or environment, with a suggested fix.

    The CLI prints it without a traceback; the Slicer modules show it in a dialog.
    """

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}{FIX_SEPARATOR}{fix}" if fix else problem)


def split_error(text) -> tuple[str, str]:
    """An error's text (``str(LungAIError)``, or any error's) as (problem, fix); fix is "" when it names none."""
    problem, _, fix = str(text).partition(FIX_SEPARATOR)
    return problem, fix.strip()


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` in the number it takes in messages: "1 epoch", "2 epochs", "1 validation case"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def agree(n: int, singular: str, plural: str) -> str:
    """The word that agrees with a count ``n`` in messages: ``agree(1, "is", "are")`` "is", ``agree(3, ...)`` "are"."""
    return singular if n == 1 else plural


def counted_of(k: int, n: int, noun: str, plural: str | None = None) -> str:
    """``k`` of ``n`` ``noun``s in messages, the verb after it taking ``agree(k, ...)``: "1 of the 3 cases",
    "2 of the 3 cases", "all 3 cases" (``k == n``), "the 1 case" (``k == n == 1``: never "all 1 cases")."""
    if k == n:
        return f"the {counted(n, noun, plural)}" if n == 1 else f"all {counted(n, noun, plural)}"
    return f"{k} of the {counted(n, noun, plural)}"


def failure_lines(failed, label: str = "failed", most: int | None = None) -> list[str]:
    """The end-of-run lines of the items that failed (``failed``: (name, error text) pairs): one line each with the
    problem's first line (``label: name: problem``), then each distinct fix once with the items it concerns
    (``  how to fix (a, b): ...``) - a run of many patients must say how to fix them, not only the errors table."""
    lines, fixes = [], {}
    failed = list(failed)
    for name, err in failed[:most] if most else failed:
        problem, fix = split_error(err)
        lines.append(f"{label}: {name}: {(problem.strip().splitlines() or [''])[0]}")
        if fix:
            fixes.setdefault(fix.splitlines()[0], []).append(str(name))
    if most and len(failed) > most:
        lines.append(f"... and {len(failed) - most} more")
    for fix, names in fixes.items():
        named = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        lines.append(f"  how to fix ({named}): {fix}")
    return lines


class InputError(LungAIError):
    """The input data (file, image, table, mask) is not usable as given."""


def check_input_file(path, what: str, fix: str, kind: str = "a file"):
    """The input file ``path`` as a Path, refused (InputError "``what`` PATH ...", ``fix``) when it is not a regular
    file, saying what it is: nothing ("does not exist"), a link to nothing, a folder, a device, a named pipe or a
    socket ("is a folder, not ``kind``") - the one check of the commands' input-file options (QA cohortfollow65:
    ``lungai cohort --structure-map /dev/null`` said "/dev/null does not exist")."""
    import os
    import stat
    from pathlib import Path

    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        if p.is_symlink():
            raise InputError(f"{what} {p} is a link to {os.readlink(p)}, which does not exist", fix) from None
        raise InputError(f"{what} {p} does not exist", fix) from None
    except OSError as exc:       # a folder on the way not searchable, a name too long ...
        raise InputError(f"{what} {p} cannot be reached ({exc.strerror or exc})", fix) from None
    if stat.S_ISREG(mode):
        return p
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {p} is a folder, not {kind}", fix)
    other = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
             "a named pipe (as a shell's <(...) gives)" if stat.S_ISFIFO(mode) else
             "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise InputError(f"{what} {p} is {other}, not {kind}",
                     fix + ("" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else " (saved as a file first)"))


class Cancelled(LungAIError):
    """The user stopped a long step run in this process (a progress callback asked to stop: Slicer's Cancel); the
    step ends between its sub-steps and adds nothing."""


class GeometryError(InputError):
    """Two images that must share a voxel grid do not."""


class InputNote(UserWarning):
    """A warning about the input met deep inside a reader (a scout left out of a CT series, an RTSTRUCT drawn on
    another series): the CLI prints it once as ``warning: ...`` (``LABEL: ...``; no source path), other callers see
    a UserWarning.  A text that names patient IDs gives ``without_ids``: the same note with the IDs counted, not
    named - the form a locked model's record keeps (it stores no plain patient ID: :func:`noting_warnings`)."""

    LABEL = "warning"

    def __init__(self, text, without_ids=None):
        super().__init__(text)
        # a text built with its form (:class:`PatientsText`) gives it, where none is given
        self.without_ids = without_ids if without_ids is not None else getattr(text, "without_ids", None)


class PatientsText(str):
    """A message text that names patient IDs, carrying ``without_ids``: the same text with the IDs counted, not named.
    Built once where the text is (``lungai.rp.prepare``'s warnings on a table's patients: "the automatic tumour of 2
    patients needs review (tumour_review, e.g. P1, P2)"), it is a plain str to every reader, and an
    :class:`InputNote` made of it takes that form (``rp validate`` says them so: QA rpvalidate65)."""

    def __new__(cls, text: str, without_ids: str):
        made = super().__new__(cls, text)
        made.without_ids = without_ids
        return made

    def __getnewargs__(self):    # copied / pickled whole (a DataFrame's attrs are deep-copied)
        return str(self), self.without_ids


def say_notes(texts) -> None:
    """Warn each of ``texts`` as an :class:`InputNote`: the CLI says each once on stderr ("warning: ..."), a
    :class:`PatientsText` with its form without the patients' IDs.  The warnings of ``lungai rp train`` / ``rp
    validate`` on their tables and ``rp predict``'s on the whole patients table and from the model card (QA
    rpvalidate65, rpfollow65: printed on stdout, not InputNotes)."""
    import warnings

    for text in texts:
        warnings.warn(InputNote(text), stacklevel=2)


class InputCheckNote(InputNote):
    """A note that a check of the input could not be made (an RTSTRUCT with a CT that is not DICOM: no frame of
    reference to compare), or a note on the input that is no warning (``stage validate``'s training patients left
    out of the scores): the CLI prints it once as ``note: ...``."""

    LABEL = "note"


@contextlib.contextmanager
def warnings_as_notes(categories, notes: list):
    """The warnings of ``categories`` (a warning class or a tuple of them) raised inside the block appended to
    ``notes`` (each text once) - to be recorded with the results they concern (a cohort patient's notes, the demo's
    dose notes) - instead of warned; every other warning is passed on as it came (also when the block raises)."""
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for w in caught:
            if issubclass(w.category, categories):
                if str(w.message) not in notes:
                    notes.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def noting_warnings(categories, notes: list, ids: bool = True):
    """The warnings of ``categories`` raised inside the block appended to ``notes`` (each text once) AND passed on as
    they come (printed by the CLI, recorded by an enclosing ``catch_warnings``) - for a written report to carry what
    the console said (``stage cv``'s comparison.md); :func:`warnings_as_notes` takes them instead.  Inside an enclosing
    ``catch_warnings(record=True)`` this block must be the inner one (that block takes every warning itself).
    ``ids`` False (a locked model's record, which keeps no plain patient ID): a note naming patient IDs is kept in its
    ``without_ids`` form (:class:`InputNote`); the console still says the IDs."""
    import warnings

    with warnings.catch_warnings():
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            text = str(message) if ids else (getattr(message, "without_ids", None) or str(message))
            if issubclass(category, categories) and text not in notes:
                notes.append(text)
            previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
