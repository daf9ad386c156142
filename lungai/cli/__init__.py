"""The ``lungai`` command line.

Each sub-command lives in its own module here and exposes ``register(subparsers)``,
which adds its parser and sets ``func``.  Heavy imports happen inside the handlers so
that ``lungai --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time

from lungai import __version__
from lungai.errors import LungAIError

# One module per command group; add new ones here.
COMMAND_MODULES = [
    "sample",
    "lungs",
    "radiomics",
    "dose",
    "seg",
    "rp",
    "stage",
    "demo",
    "dicom",
    "cohort",
]


class Parser(argparse.ArgumentParser):
    """Every ``lungai`` parser and sub-parser: an option must be written in full (``allow_abbrev=False``).  argparse
    otherwise takes a prefix of an option for the option: QA, ``lungai rp synth --n 120`` (meaning ``-n 120``) was read
    as ``--noise-features 120`` - 300 patients with 120 noise features, exit 0.  Sub-parsers are of this class too
    (``add_subparsers`` makes its parsers of the parent's class), so the rule holds for every command; an abbreviated
    option is now refused as ``unrecognized arguments`` (exit 2)."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        # the words this parser reads (a sub-parser: those after its command), for error()'s hint
        self._given_words = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    def error(self, message):
        super().error(message + swallowed_positional_hint(self, getattr(self, "_given_words", []), message))


def _multi_value_runs(parser: argparse.ArgumentParser, words: list) -> list:
    """(option, its values) for each option of ``parser`` taking several values (nargs '+' / '*') in ``words``: the
    words after it up to the next option or ``--``, as argparse reads them."""
    negative = getattr(parser, "_negative_number_matcher", None)
    by_flag = {flag: a for a in parser._actions if a.option_strings and a.nargs in ("+", "*") for flag in a.option_strings}
    runs = []
    for i, word in enumerate(words):
        if word == "--":
            break
        action = by_flag.get(word)
        if action is None:
            continue
        values = []
        for value in words[i + 1:]:
            if value == "--" or (value.startswith("-") and len(value) > 1 and not (negative and negative.match(value))):
                break
            values.append(value)
        runs.append((word, action, values))
    return runs


def swallowed_positional_hint(parser: argparse.ArgumentParser, words: list, message: str) -> str:
    """The hint added to a parser error when a positional argument was read as a value of an option taking several
    values: QA radfind66, ``lungai radiomics-batch --feature-classes shape firstorder m.csv -o out.csv`` ended with
    "the following arguments are required: manifest" and no word of why (m.csv was read as a feature class); a
    number option (``--log-sigma 1 2 m.csv``) refused it as "invalid float value: 'm.csv'".  Names the value taken,
    the option, and both ways to write the command (the positional first, or after ``--``); "" when no such option
    took a value that could be it."""
    import os
    import re

    positionals = [a for a in parser._actions if not a.option_strings and a.nargs != argparse.PARSER]
    if not positionals:
        return ""
    names = [a.metavar or a.dest for a in positionals]
    runs = _multi_value_runs(parser, words)
    required = re.match(r"the following arguments are required: (.+)$", message)
    # argparse's own refusal of a typed value, or the CLI's checked numbers' (whole_number / real_number)
    invalid = (re.match(r"argument (\S+?)(?:/\S+)?: invalid .*value: '(.*)'$", message)
               or re.match(r"argument (\S+?)(?:/\S+)?: '(.*)' is not a (?:whole |finite )?number", message))
    if required:
        missing = [n for n in required.group(1).split(", ") if n in names]
        if not missing:
            return ""
        # a value an option needs no more of: beyond the one '+' needs; any of '*'
        runs = [r for r in runs if len(r[2]) >= (2 if r[1].nargs == "+" else 1)]
        if not runs:
            return ""
        # the run whose last word is a file there, else the last run
        option, _, values = next((r for r in reversed(runs) if os.path.exists(r[2][-1])), runs[-1])
        what = " and ".join(missing)
    elif invalid:
        flag, bad = invalid.groups()
        runs = [r for r in runs if bad in r[2] and flag in r[1].option_strings]
        if not runs:
            return ""
        option, _, values = runs[-1]
        values = values[:values.index(bad) + 1]
        what = " / ".join(names)
    else:
        return ""
    taken, kept = values[-1], values[:-1]
    kind = " (a file)" if os.path.exists(taken) else ""
    kept_text = " ".join([option, *kept])
    return (f"; {taken!r}{kind} was read as a value of {option}, which takes every word up to the next option: "
            f"if it is the {what}, give it before {option} ({parser.prog} {taken} {kept_text} ...) or "
            f"after -- at the end of the command (... {kept_text} -- {taken})")


def accept_negative_coordinates(parser: argparse.ArgumentParser) -> None:
    """Let ``parser`` read comma-separated numbers that start with a minus sign as option values:
    ``--seed-point -12.5,40,-150`` (a point in the right lung has a negative LPS x), not argparse's "expected one
    argument" - the one rule of every command taking coordinates (``segment --seed-point / --roi``, ``demo
    --seed-point``)."""
    import re

    parser._negative_number_matcher = re.compile(r"^-\d*\.?\d+(,-?\d*\.?\d+)*$")


def check_input_exists(path, what: str = "CT", series: str | None = None) -> None:
    """Refuse an input path that does not exist before any work, and before the command's progress bar is drawn (QA:
    ``lungai lungs missing.nii.gz`` drew ``lungs: 0%| 0/7`` above the error); with ``series`` (``--series``), also
    one that holds no such series to choose (:func:`lungai.io.read.check_series_option`: an image file); a DICOM SEG,
    RTSTRUCT, RTDOSE ... file is refused as what it is (:func:`lungai.paths.check_not_ct_object`; QA dicom71:
    ``lungai segment RS.dcm`` said so after 17 s, the models' modules imported first)."""
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.paths import check_not_ct_object

    if not Path(path).exists():
        raise InputError(f"{what} {path} does not exist", "check the path (and that the drive is mounted)")
    check_not_ct_object(path)
    if series is not None:     # the reader's module (SimpleITK) only for a --series to check (QA notesfollow71)
        from lungai.io.read import check_series_option

        check_series_option(path, series)


# what a second --seed-point / --roi is told (segment, demo)
ONE_TUMOUR = ("lungai segments one tumour per run: run it once per seed point / ROI, each into its own output folder "
              "(-o)")

# --roi's help (segment, demo)
ROI_HELP = ("x0,y0,z0,x1,y1,z1: two opposite box corners in LPS mm (not Slicer's bounds order xmin,xmax,ymin,ymax,"
            "zmin,zmax; a box partly outside the CT is cut to it, both noted), or a Slicer markups ROI file "
            "(.mrk.json, its coordinate system read from the file; a rotated box: its axis-aligned bounding box)")

# what a second --lungs is told (dose-features, radiomics, dicom-export)
ONE_LUNG_MASK = ("give one mask holding both lungs - a lung label map (1 = right, 2 = left, as `lungai lungs` writes "
                 "it) or a binary mask of both lungs; join separate right / left lung files into one first")


class StoreOnce(argparse.Action):
    """A single-valued option that refuses to be given twice (argparse keeps the last value without a word).  QA: an
    oncologist giving two seed points, ``--seed-point=A --seed-point=B`` (the primary and a node), got B segmented
    alone, exit 0.  ``once_fix`` (a keyword of ``add_argument``) says what to do instead; the option's default must be
    one no command line gives (None)."""

    def __init__(self, option_strings, dest, once_fix: str = "give it once", **kwargs):
        self.once_fix = once_fix
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest, self.default)
        if given is not self.default:
            raise argparse.ArgumentError(self, f"given more than once ({given!r} and {values!r}): {self.once_fix}")
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lungai",
        description="SlicerLungAI headless pipeline: chest CT -> lungs, tumour, radiomics, risk.",
    )
    parser.add_argument("--version", action="version", version=f"lungai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"lungai.cli.{name}").register(sub)
    return parser


class _WarningLines:
    """The file Python's warning printer writes an other warning to in the CLI (a third-party library's
    RuntimeWarning / UserWarning ...): its text, as Python words it, goes to :func:`lungai.progress.write` - on lines of
    its own beside a progress bar, not glued to the bar's line (QA progwarn63)."""

    def write(self, text: str) -> int:
        from lungai.progress import write

        if text.strip():
            write(text.rstrip("\n"))
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _input_notes():
    """Warnings about the input (:class:`lungai.errors.InputNote`) printed as ``warning: ...`` (a
    :class:`lungai.errors.InputCheckNote`: ``note: ...``) on stderr, each text
    once (not as Python warnings with a source path, repeated by each call site), on a line of its own while a
    progress bar is drawn (:func:`lungai.progress.write`, not glued to the bar's line).  Every other warning (numpy,
    SimpleITK, torch, scikit-learn ...) is printed as Python prints it, also on lines of its own beside a bar
    (:class:`_WarningLines`), and once per category and text in the command - not once per case of a cohort (a
    ``catch_warnings`` block per case resets Python's once-per-line registry) - unless ``-W`` / ``PYTHONWARNINGS``
    chose the warnings' filters.  (QA progwarn63: a numpy RuntimeWarning raised during a progress bar was glued to
    the bar's line, and said again for each case.)"""
    import sys
    import warnings

    from lungai.dask_workers import ONCE_TEXT
    from lungai.errors import InputNote
    from lungai.progress import write

    seen, others, show = set(), set(), warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, InputNote):
            if not sys.warnoptions:         # -W / PYTHONWARNINGS given: each warning as its filters say
                # a case's warning said again by lungai.dask_workers.say_case_notes ("P1: ..."): once whichever case
                key = (category, getattr(message, ONCE_TEXT, str(message)))
                if key in others:
                    return None
                others.add(key)
            return show(message, category, filename, lineno, _WarningLines() if file is None else file, line)
        if str(message) not in seen:
            seen.add(str(message))
            write(f"{getattr(category, 'LABEL', 'warning')}: {message}")     # on a line of its own beside a bar

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputNote)
        warnings.showwarning = showwarning
        yield


@contextlib.contextmanager
def _sigterm_as_ctrl_c(received: list):
    """SIGTERM (a SLURM time limit, ``timeout``, ``docker stop``) takes the Ctrl-C path: a KeyboardInterrupt in the
    main thread, so that finished work is kept, Dask workers are closed and "cancelled ... run again to resume" is
    said; its number goes to ``received``.  The previous handler is put back afterwards (only the main thread can
    set one: elsewhere nothing changes)."""
    import os
    import signal
    import threading

    pid = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() != pid:        # a forked child (a data loader's worker ...): ended by it, as before
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        received.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


COORDINATE_OPTIONS = ("--seed-point", "--roi")


def _open_bracket(value: str) -> bool:
    """Whether a coordinate option's value opens a bracket it does not close: ``[`` of ``--seed-point [ -12.3  45.
    -130.2]`` (a numpy array as printed, pasted unquoted: the shell splits it at its spaces)."""
    v = value.strip()
    return v[:1] in ("[", "(") and not v.endswith(("]", ")"))


def join_split_coordinates(argv: list) -> list:
    """``argv`` with a coordinate option's value split at its commas' spaces joined again: ``--seed-point -21.86,
    -120.54, -611.5`` (a point copied with spaces after its commas, as Python and Slicer's console print one) is
    ``--seed-point -21.86,-120.54,-611.5`` - argparse saw three arguments ("expected one argument").  Only tokens
    after a value ending in a comma, or opening a bracket it does not close (:func:`_open_bracket`), are joined, so
    nothing else on the line changes."""
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in COORDINATE_OPTIONS and (eq or i + 1 < len(argv)):
            if not eq:
                out.append(token)
                i += 1
                value = argv[i]
            while (value.rstrip().endswith(",") or _open_bracket(value)) and i + 1 < len(argv):
                i += 1
                value = value.rstrip() + ("" if value.rstrip().endswith(",") else " ") + argv[i].strip()
            out.append(f"{name}={value}" if eq else value)
        else:
            out.append(token)
        i += 1
    return out


# the options whose RTSTRUCT / DICOM SEG file names the CT series it was drawn on: a CT folder of several series is
# refused naming that one (lungai.io.read.name_drawn_on)
DRAWN_ON_OPTIONS = ("rtstruct", "mask", "tumour", "lungs", "gtv")


CALLS_LEFT_RUNNING = ("waiting for the step that was running to end before exiting (one call, which cannot be "
                      "stopped mid-way); press Ctrl-C again to end at once")


def _wait_for_calls_left_running() -> None:
    """A Ctrl-C or SIGTERM stops the command while a call of :func:`lungai.progress.waiting` runs on in its daemon
    thread (:func:`lungai.progress.calls_left_running`): it is waited for, said on stderr, before Python's exit -
    which ends a daemon thread where it next takes the GIL, inside the native call's C++ frames, and glibc aborted the
    process there (QA cohort71: ``lungai cohort LUNG1-003 --workers 0``, Ctrl-C while pyradiomics computed the lungs:
    "FATAL: exception not rethrown", exit status 134 (SIGABRT) instead of 130, in 2 of 5 tries).  A second Ctrl-C
    ends the process at once (status 130), without Python's exit."""
    progress = sys.modules.get("lungai.progress")      # not imported: no such thread (nor imported for it)
    running = progress.calls_left_running() if progress is not None else []
    if not running:
        return
    print(f"lungai: {CALLS_LEFT_RUNNING}", file=sys.stderr, flush=True)
    try:
        for thread in running:
            thread.join()
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _end_of_process() -> None:
    """The command's process is about to exit (``main()`` run for its own command line): what it left unreachable is
    collected now (finalizers run, files closed), then the objects still held - torch's, MONAI's, SciPy's modules and
    the like - are moved out of the garbage collector's view (``gc.freeze``).  Python's exit then clears the modules
    without tracing those objects again and again: QA startup65, 3.9-4.0 s between the last line and the shell's
    prompt after ``lungai segment`` (torch and MONAI imported; 1.3-1.6 s with SciPy / pandas alone), 1.2 s now.
    Nothing else of the exit changes: the exit status, the ``atexit`` handlers (Dask's, logging's) and the flush of
    stdout / stderr are Python's own; objects are still freed when the last reference goes."""
    import gc

    gc.collect()
    gc.freeze()


# main() is run for this process's own command line (the console script, ``python -m lungai``): the process ends after
# the command (:func:`freeze_loaded_modules`, :func:`_end_of_process`)
_OWN_PROCESS: list = []


def freeze_loaded_modules() -> None:
    """Called once a command's heavy modules are imported (pandas, torch, MONAI, scikit-learn, torch-geometric: the
    ``lungai stage`` loading bar, :func:`lungai.cli.stage._load_modules`).  In the command's own process their objects
    (~530 000) are moved out of the garbage collector's view now (``gc.freeze``), not only at the end
    (:func:`_end_of_process`): the command's own collections and the end's ``gc.collect`` then trace only what the
    command made.  QA stagewait72 (``stage predict`` on NSCLC-Radiogenomics, a shared 2-core machine): 1.0-1.8 s
    between the last line and the end of the process, 0.5-0.64 s of it the end's ``gc.collect`` tracing the modules'
    objects (now 0.001 s; the rest is Python's exit clearing the modules).  What the imports left unreachable stays
    until the exit, as what :func:`_end_of_process` freezes.  ``main([...])`` from Python (a test, a caller in
    Python): nothing frozen."""
    if _OWN_PROCESS:
        import gc

        gc.freeze()


# when this module was imported (time.perf_counter): the console script's start, its imports and parsing included
_IMPORTED: list = [time.perf_counter()]


def _command_start(argv) -> float:
    """When the command started (``time.perf_counter``): for this process's own command (``argv`` None, the first
    one) when :mod:`lungai.cli` was imported, else now.  A run time reported to the user counts from it, not from
    the start of the step's own function (QA demofollow67: ``lungai demo`` said "total 75 s" after 80.7 s)."""
    if argv is None and _IMPORTED:
        return _IMPORTED.pop()
    return time.perf_counter()


def main(argv=None) -> int:
    """The ``lungai`` command line; ``argv`` None: this process's own (``sys.argv``), and the process ends after it
    (:func:`_end_of_process`) - the console script and ``python -m lungai``; a list (a test, a caller in Python):
    nothing but the command."""
    started = _command_start(argv)
    if argv is None:
        _OWN_PROCESS.append(True)
    try:
        return _main(argv, started)
    except KeyboardInterrupt:
        # Ctrl-C (a panel's Cancel) before the command's own handling in _main: while the parser is built (the
        # commands' modules, numpy imported) or the line parsed - said as a later one, 130, no traceback (QA
        # slicerfollow71: Cancel in the first seconds of the panel's Predict stage logged a traceback, exit -2)
        words = [str(w) for w in (sys.argv[1:] if argv is None else argv)]
        command = next((w for w in words if not w.startswith("-")), "")
        print(f"lungai{' ' + command if command else ''}: cancelled", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            _wait_for_calls_left_running()
            _end_of_process()


def _main(argv=None, started: float | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(join_split_coordinates(argv))
    args.argv = [str(a) for a in argv]      # the command as given (main([...]) from Python: not sys.argv, the host's)
    args.started = time.perf_counter() if started is None else started     # the command's start (_command_start)
    terminated: list = []
    from lungai.dicom.once import read_once

    try:
        # each RTSTRUCT read once in the command, however many structures / roles it takes, the scan of its folder
        # included (QA dicomread65: `lungai radiomics --rtstruct FOLDER` read LUNG1-003's in full 11 times); one
        # file's contours held at a time, as cohort's planning holds them
        with _sigterm_as_ctrl_c(terminated), _input_notes(), read_once(files=1):
            result = args.func(args)
    except LungAIError as exc:
        from pathlib import Path

        # raised only once lungai.io.read is imported: a refusal before (a path checked with the arguments) does not
        # import it, nor SimpleITK under it (QA radfollow69: 4-5 s of a shared machine for a mistyped path)
        read = sys.modules.get("lungai.io.read")
        if read is not None and isinstance(exc, read.SeveralSeriesError):   # which CT series the RTSTRUCT / SEG
            exc = read.name_drawn_on(exc, [getattr(args, k, None) for k in DRAWN_ON_OPTIONS    # was drawn on
                                           if isinstance(getattr(args, k, None), (str, Path))])
        print(f"lungai {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:           # a file that could not be written (or read): the path and the fix, no traceback
        from lungai.io.outputs import file_error
        from lungai.dask_workers import lost_worker_error

        # Dask's CommClosedError is an OSError too, naming no file: a worker process died, not "cannot access None"
        error = lost_worker_error(exc) or file_error(exc, action="access")
        print(f"lungai {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        note = getattr(args, "cancel_note", None)          # e.g. train-seg: where its checkpoints are kept
        note = note(args) if note else None
        note = f"; {note}" if note else ""
        if terminated:          # the shell's status of a process ended by SIGTERM: 128 + 15
            print(f"lungai {args.command}: cancelled (terminated: SIGTERM){note}", file=sys.stderr)
            return 143
        print(f"lungai {args.command}: cancelled{note}", file=sys.stderr)
        return 130
    return int(result or 0)
