"""Progress display shared by every long-running step.

Core functions take an optional ``progress`` object with ``update(n=1, message=None)``;
:func:`task` gives one.  ``update(0, message)`` shows a message without a step (a sub-step of a
long step): it is drawn at once; :class:`Counter` counts a long step's sub-steps that way.  In a
terminal it is a tqdm bar on stderr; when stderr is no terminal (a log file,
a pipe) it is plain lines, ``<description>: <done>/<total> [<elapsed>] <message>`` (no carriage returns or cursor
codes): a line for each message-only update, steps at most every :data:`LOG_INTERVAL` seconds, a few lines for a
long run, not one per step.  With the environment
variable ``LUNGAI_PROGRESS=lines`` (set by the Slicer modules when they run the CLI as a
subprocess) it prints machine-readable lines instead::

    LUNGAI_PROGRESS <done>/<total> <description>: <message>

which the Slicer panel parses into its progress bar.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from contextvars import ContextVar
from typing import Iterator, Optional

PREFIX = "LUNGAI_PROGRESS"


class _LineProgress:
    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.message = max(int(total), 1), desc, 0, ""
        self._lock = threading.RLock()       # :func:`timer_running`'s thread writes lines too: one line at a time
        self._emit("start")

    def _emit(self, message: str) -> None:
        with self._lock:
            sys.stderr.write(f"{PREFIX} {self.done}/{self.total} {self.desc}: {message}\n")
            sys.stderr.flush()

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        with self._lock:
            self.done = min(self.done + n, self.total)
            self.message = message or ""
            self._emit(self.message)

    def _timed(self, message: str, seconds: float) -> None:
        """:func:`timer_running`'s line (its thread): ``"<message> (<seconds> s)"`` while ``message`` stands."""
        with self._lock:
            if self.message == message:
                self._emit(f"{message} ({seconds:.0f} s)")

    def close(self) -> None:
        pass


# seconds between two lines of a task's progress when stderr is no terminal (a log file, a pipe): each is a line
# there, not an overwrite; tqdm's own 0.1 s wrote one record per DICOM file of a cohort scan, and 10 s left a log
# silent through whole steps (QA demofollow67: "report figures" 5.6 s, "writing scene.mrb" ~11 s without a line)
LOG_INTERVAL = 2.0


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# seconds between two counts of a :class:`Counter` shown (a terminal, the Slicer panel's LUNGAI_PROGRESS lines and
# callbacks); in a log (stderr no terminal) every LOG_INTERVAL seconds
TICK_INTERVAL = 1.0


# the bar of a task without its rate (``task(..., rate=False)``): tqdm's own format less ", {rate_fmt}"
NO_RATE_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


class _TqdmProgress:
    def __init__(self, total: int, desc: str, disable: bool, rate: bool = True):
        from tqdm.auto import tqdm

        self._tty = _is_tty(sys.stderr)
        self.tick_interval = TICK_INTERVAL if self._tty else LOG_INTERVAL     # Counter's: a record each in a log
        self._bar = tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, leave=False,
                         mininterval=0.1 if self._tty else LOG_INTERVAL, bar_format=None if rate else NO_RATE_FORMAT)
        _SHOWN.append(self)

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        if message:
            self._bar.set_postfix_str(message, refresh=False)
        drawn = getattr(self._bar, "last_print_n", None)
        if n:
            self._bar.update(n)
        if message and (n == 0 or (self._tty and getattr(self._bar, "last_print_n", None) == drawn)):
            # a message is drawn now: alone (n == 0: a sub-step of a long step) tqdm's update(0) does not redraw; in
            # a terminal a step's message is drawn too when tqdm's mininterval kept update() from drawing it (a step's
            # last message stayed stale on the bar while the next step ran for minutes) - once, not twice.  Not in a
            # log (stderr no terminal): every draw is a record there, the steps are drawn every LOG_INTERVAL seconds
            # (QA: one record per DICOM file of a cohort scan, each step drawn twice)
            self._bar.refresh()

    def close(self) -> None:
        if self in _SHOWN:
            _SHOWN.remove(self)
        if not self._tty and not self._bar.disable and getattr(self._bar, "last_print_n", self._bar.n) != self._bar.n:
            # in a log its last state is recorded (drawn every LOG_INTERVAL seconds there, and closed without a draw):
            # QA cohortread66, a cohort's log ended on "1/2 ... LUNG1-003B done", its last patient's "done" and 2/2
            # never written
            self._bar.refresh()
        self._bar.close()


class _LogProgress:
    """A :func:`task`'s progress when stderr is no terminal (a log file, a pipe: ``lungai demo ... > log 2>&1``,
    ``lungai cohort ... | tee``): plain lines, ``<description>: <done>/<total> [<elapsed>] <message>``, no tqdm bar
    (QA demofollow67: tqdm's bars wrote carriage returns and, for nested bars ("rp train", "synthetic cohort CT"), the
    cursor-up code ``ESC[A`` into the log).  A message-only update (``update(0, message)``: a sub-step of a long
    step) is a line at once; steps a line at most every :data:`LOG_INTERVAL` seconds (one per DICOM file of a cohort
    scan otherwise), a step not said then is said with the next line or as the task closes (its last state always
    recorded) - a step's start (a new message) when the next line is due, while it runs (:meth:`_say_when_due`).
    :class:`Counter` and :func:`waiting` say their counts every ``tick_interval`` = LOG_INTERVAL."""

    def __init__(self, total: int, desc: str):
        import time

        self._clock = time.monotonic
        self.total, self.desc, self.done, self.message = max(int(total), 1), desc, 0, ""
        self.tick_interval = LOG_INTERVAL
        self._start = self._clock()
        self._said = None            # (done, message) of the last line
        self._last = -float("inf")   # when it was written
        self._lock = threading.RLock()       # :func:`timer_running`'s thread writes lines too: one line at a time
        self._due = None             # the timer that says a step's start held back by the interval (_say_when_due)
        self._closed = False
        self._say()

    def _say(self, text: Optional[str] = None) -> None:
        with self._lock:
            seconds = int(self._clock() - self._start)
            line = f"{self.desc}: {self.done}/{self.total} [{seconds // 60:02d}:{seconds % 60:02d}]"
            text = self.message if text is None else text
            sys.stderr.write(f"{line} {text}\n" if text else f"{line}\n")
            sys.stderr.flush()
            self._said, self._last = (self.done, self.message), self._clock()

    def _timed(self, message: str, seconds: float) -> None:
        """:func:`timer_running`'s line (its thread): ``"<message> (<seconds> s)"`` while ``message`` stands."""
        with self._lock:
            if self.message == message:
                self._say(f"{message} ({seconds:.0f} s)")

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        with self._lock:
            self.done = min(self.done + n, self.total)
            started = bool(message) and message != self.message      # a step's start, not a count of the same
            if message:
                self.message = message
            if (n == 0 and message) or self._clock() - self._last >= LOG_INTERVAL:
                self._say()
            elif started:
                self._say_when_due()

    def _say_when_due(self) -> None:
        """A step started within LOG_INTERVAL of the last line: its state said when the next line is due, while it
        runs (QA radfollow68: "building the segments" came 1.6 s after "reading the CT (2 s)" on LUNG1-003 and was
        never said - the log's next line was the step's "(2 s)", or the next step's).  One timer at a time; the
        state said then is the latest (one line per interval still, not one per DICOM file of a scan)."""
        if self._due is None and not self._closed:
            self._due = threading.Timer(max(LOG_INTERVAL - (self._clock() - self._last), 0.0), self._said_due)
            self._due.daemon = True
            self._due.start()

    def _said_due(self) -> None:
        with self._lock:
            self._due = None
            if not self._closed and self._said != (self.done, self.message):
                self._say()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._due is not None:
                self._due.cancel()
                self._due = None
            if self._said != (self.done, self.message):
                self._say()


# the tqdm bars of task() drawn now (open, not closed), outermost first: write() puts its lines beside them
_SHOWN: list = []


def write(text: str) -> None:
    """Print ``text`` as a line of its own on stderr - a note (``warning: ...``) said during a long step.  While a
    bar of :func:`task` is drawn there it goes through tqdm's writer: in a terminal the bar is cleared, the text
    printed, the bar drawn again below it; in a log (stderr no terminal, where each draw of the bar is a record with
    no line end) the bar's record is ended first, then the text, then the bar drawn again.  Printed as is otherwise
    (no bar, ``LUNGAI_PROGRESS=lines`` / ``off``).  (QA tqdmnote62: a note was glued to the end of the bar's line,
    ``radiomics-batch:   0%|...| 0/1 [00:00<?, ?it/s]warning: P1: ...``.)"""
    bars = [p for p in _SHOWN if not p._bar.disable and p._bar.fp == sys.stderr]
    if not bars:
        print(text, file=sys.stderr)
        return
    tqdm = type(bars[-1]._bar)
    if all(p._tty for p in bars):
        tqdm.write(text, file=sys.stderr)
        return
    with tqdm.get_lock():
        sys.stderr.write(f"\n{text}\n")
        for p in bars:
            p._bar.refresh(nolock=True)


class NullProgress:
    """Does nothing; the default when a caller passes no progress."""

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        pass

    def close(self) -> None:
        pass


class CallbackProgress:
    """Progress for a caller in this process (Slicer's Python, the console API of :mod:`lungai.scene`): after each
    step ``callback(fraction, text)`` is called, ``text`` as a ``LUNGAI_PROGRESS`` line shows it
    (``"<description>: <message>"``, what the panels show of a child process); a callback returning True asks to
    stop, and :class:`lungai.errors.Cancelled` is raised there, between two steps."""

    def __init__(self, total: int, callback, desc: str):
        self.total, self.desc, self.done, self.callback = max(int(total), 1), desc, 0, callback

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        self.done = min(self.done + n, self.total)
        if self.callback(self.done / self.total, f"{self.desc}: {message or ''}".rstrip(": ")) is True:
            from lungai.errors import Cancelled

            raise Cancelled(f"{self.desc}: cancelled", "run it again to finish it")

    def close(self) -> None:
        pass


class SubProgress:
    """A sub-step reporter for a long step of ``progress``: ``update(n, message)`` shows ``"<prefix> <message>"`` as
    a message-only update (``update(0, ...)``: the step count is the caller's), e.g. "fusion fold 1/5 inner 2/3 grid
    weighted" + "epoch 40/80".  ``progress`` None: does nothing; :meth:`sub` nests a longer prefix.
    With ``total`` (the sub-steps' count, e.g. ``LUNG_STEPS`` of a lung segmentation given as one step of the demo)
    the sub-steps done are counted too, ``"<prefix> <done>/<total>: <message>"`` (a ``prefix``'s own trailing colon
    moved after the count: each level's count next to its name - QA lungsfollow66: "lungs: 1/7 smoothing the CT 0/12"
    read as two counts of one step; now "lungs 1/7: smoothing the CT 0/12"), and ``"<prefix> 0/<total>"`` is
    shown at once: the step's start is said, not only its first sub-step's end (QA firstbar64: the demo's bar stood
    on "CT ready" through a whole CT's lung segmentation, on the tumour's volume through its radiomics)."""

    def __init__(self, progress, prefix: str = "", total: Optional[int] = None):
        self.progress, self.prefix = progress, prefix.strip()
        self.total, self.done = (None if total is None else max(int(total), 1)), 0
        if self.total is not None:
            self.update(0)

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        if self.progress is not None:
            if self.total is not None:
                self.done = min(self.done + n, self.total)
                counted = " ".join(p for p in (self.prefix.rstrip(":").rstrip(), f"{self.done}/{self.total}") if p)
                self.progress.update(0, f"{counted}: {message}" if message else counted)
                return
            self.progress.update(0, " ".join(p for p in (self.prefix, message or "") if p))

    def sub(self, prefix: str) -> "SubProgress":
        return SubProgress(self.progress, f"{self.prefix} {prefix}")

    @property
    def tick_interval(self) -> float:
        return getattr(self.progress, "tick_interval", TICK_INTERVAL)

    def close(self) -> None:
        pass


class Counter:
    """The count of the sub-steps of one long step of ``progress`` (e.g. the network runs of a segmentation's
    inference: 27-50 s on a CT's lungs with the bar standing still): after each, :meth:`tick`; ``"<prefix>
    <done>/<total>"`` - ``"<prefix> <done>/<total> (<detail>)"`` with a ``detail`` - is shown as a message-only update
    (``update(0, ...)``: the step count stays the caller's - one counting rule) when counting starts and then at most
    every ``progress.tick_interval`` seconds (:data:`TICK_INTERVAL`; in a log :data:`LOG_INTERVAL`: a few records,
    not one per sub-step); the count reaching ``total`` is always shown, and :meth:`close` shows a count left unshown
    (QA segbar67: LUNG1-003's count ended on "network run 239/240", its last run within a second of the count
    before).  The count comes before the detail: a terminal's bar cuts its message at the terminal's
    width (QA segprog64: "pass 1 (grid x1): mc-dropout (8 passes per run x 2 windows x 4 flips): network run 2/8"
    showed as "... mc-dropout (8 passes per run x 2 wi" in 100 columns - no count at all).  ``progress`` None or
    :class:`NullProgress`: does nothing.  In Slicer's process (:class:`CallbackProgress`) Cancel is then also
    honoured between two sub-steps."""

    def __init__(self, progress, prefix: str, total: int, detail: str = ""):
        import time

        self.progress = None if isinstance(progress, NullProgress) else progress
        self.prefix, self.total, self.done = prefix.strip(), max(int(total), 1), 0
        self.detail = f" ({detail.strip()})" if detail.strip() else ""
        self._clock = time.monotonic
        self._interval = float(getattr(progress, "tick_interval", TICK_INTERVAL))
        self._shown = self._shown_count = None
        self._lock = threading.RLock()      # :meth:`running`'s thread says the count too: one line at a time
        self._since = self._said = self._clock()    # when the count last changed; when a line was last said
        self._show()

    def _show(self, seconds: Optional[float] = None) -> None:
        if self.progress is not None:
            with self._lock:
                count = min(self.done, self.total)
                text = f"{self.prefix} {count}/{self.total}{self.detail}"
                if seconds is None:
                    self._shown, self._shown_count = self._clock(), count
                else:
                    text += f" ({seconds:.0f} s)"
                self._said = self._clock()
                self.progress.update(0, text)

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            self._since = self._clock()
            if self.progress is not None and (self._clock() - self._shown >= self._interval or
                                              (self.done >= self.total and self._shown_count < self.total)):
                self._show()

    def close(self) -> None:
        """Show the count if the last one shown is not it (the last sub-steps came within the interval)."""
        if self.progress is not None and self._shown_count != min(self.done, self.total):
            self._show()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Inside the block - one long call that makes the sub-steps, e.g. MONAI's sliding window over the network
        runs - a thread of its own says the count again with the seconds the sub-step under way has run,
        ``"<prefix> <done>/<total> (<detail>) (<seconds> s)"`` (a count not said yet: as it is), whenever
        ``tick_interval`` seconds passed without a line of the count: a single sub-step may be long (QA seg70: MC
        dropout's passes run as one batch, one network run per window - LUNG1-002's DynUNet MC-dropout runs came
        5.3-10.8 s apart, the Slicer panel's bar and a log standing still between them).  As :func:`timer_running`:
        said on ``LUNGAI_PROGRESS=lines`` (the panel's), in a log and through :func:`forwarded` (a Dask worker's), each
        line whole under the reporter's lock; a terminal's bar is redrawn (its timer runs on); any other reporter (a
        callback - Slicer's own process, called from its main thread only -, none): nothing.  The sub-steps' work and
        its results are untouched."""
        root = self.progress
        while isinstance(root, SubProgress):
            root = root.progress
        redraw = None
        if not isinstance(root, (_LineProgress, _LogProgress, _ForwardedProgress)):
            bar = getattr(root, "_bar", None)
            if not isinstance(root, _TqdmProgress) or not root._tty or bar is None or bar.disable:
                yield
                return
            redraw = bar.refresh            # under tqdm's lock, as the caller's own updates
        interval = max(self._interval, 0.01)

        def beat(stop) -> None:
            while True:
                with self._lock:
                    due = self._said + interval - self._clock()
                    if due <= 0:
                        if redraw is not None:
                            self._said = self._clock()
                            redraw()
                        elif self._shown_count != min(self.done, self.total):
                            self._show()        # a count not said yet: as it is (not "(0 s)")
                        else:
                            self._show(self._clock() - self._since)
                        due = interval
                if stop.wait(due):
                    return

        with _beside(beat, "lungai-progress-counter"):
            yield


# seconds a stopped :func:`waiting` waits for its worker to begin (launched, not yet running: a loaded machine)
START_WAIT_S = 10.0


WAITING_THREAD = "lungai-waiting"      # the name of :func:`waiting`'s worker thread


def calls_left_running() -> list:
    """The worker threads of :func:`waiting` whose call still runs - its caller stopped by a Ctrl-C or SIGTERM
    meanwhile (a pyradiomics feature class, a distance transform: one native call, which cannot be stopped)."""
    import threading

    return [t for t in threading.enumerate() if t.name == WAITING_THREAD and t.is_alive()]


def waiting(progress, message: str, fn, *args, finish_on_stop: bool = False, **kwargs):
    """``fn(*args, **kwargs)``, one long call with no sub-steps of its own (a distance transform of a CT's lungs: one C
    call, which releases the GIL), run in a worker thread while ``message`` is shown on ``progress`` as a message-only
    update (``update(0, ...)``: the step count stays the caller's), then ``"<message> (<seconds> s)"`` at most every
    ``progress.tick_interval`` seconds until it returns (:data:`TICK_INTERVAL`; in a log :data:`LOG_INTERVAL`, as
    :class:`Counter`): the bar moves while it runs (QA lungs67: growing the lungs back, one distance transform, stood
    1.4 s idle and up to 9 s on a loaded machine on one message).  The same call on the same arguments: the same
    result; its exception is raised here; it runs in the caller's context (:mod:`contextvars`: an ``np.errstate``
    around the call holds in it).  ``progress`` None or :class:`NullProgress`: ``fn`` is called here.  In
    Slicer's process (:class:`CallbackProgress`) a Cancel is raised at the next update (the worker, a daemon, ends on
    its own).  ``finish_on_stop``: a call that writes files (the demo's ``scene.mrb``, its temporary folder holding a
    copy of the CT) is waited for when a Ctrl-C or a Cancel stops the caller, then that is raised: its own clean-up
    runs (a daemon worker left running is killed at the interpreter's exit, its partial files and temporary copies of
    patient data left behind - QA segbar67)."""
    if progress is None or isinstance(progress, NullProgress):
        return fn(*args, **kwargs)
    import contextvars
    import threading
    import time

    interval = max(float(getattr(progress, "tick_interval", TICK_INTERVAL)), 0.05)
    done: list = []
    # the caller's context variables go with the call (a thread starts with none): numpy's np.errstate (a context
    # variable in numpy 2), a Dask worker's :func:`forwarded` progress - the call runs as it would here
    context = contextvars.copy_context()

    # set as the worker begins (a stop in worker.start() knows it runs) and as its call ends: waited for as events,
    # not by Thread.join - Python 3.11's join interrupted by a Ctrl-C marks a running thread as ended (its bpo-45274
    # clean-up releases the thread's own lock), so that a second join returned at once while the write went on
    began, ended = threading.Event(), threading.Event()

    def run() -> None:
        began.set()
        try:
            done.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:     # raised in the caller's thread below
            done.append((False, exc))
        finally:
            ended.set()

    start = time.monotonic()
    progress.update(0, message)
    worker = threading.Thread(target=run, name=WAITING_THREAD, daemon=True)
    try:
        # a stop (Ctrl-C, SIGTERM) in start() - which waits for the thread it launched to begin, on a loaded machine
        # a long wait - is waited for too, and one in the wait below really waits (QA seg69: lungai segment on
        # LUNG1-003, a SIGINT as "writing uncertainty.nii.gz" was shown, left .partial-<hash>.nii.gz - the patient's
        # whole map - and no uncertainty.nii.gz: the worker wrote on unwaited and was killed at the interpreter's exit
        # before its clean-up)
        worker.start()
        while not ended.wait(interval):
            progress.update(0, f"{message} ({time.monotonic() - start:.0f} s)")
    except BaseException:
        # the call's own clean-up (its finally: partial files, temporary copies) runs - unless the thread never began
        # (the stop came before start() launched it: nothing to wait for)
        if finish_on_stop and began.wait(START_WAIT_S):
            ended.wait()
        raise
    ok, value = done[0]
    if not ok:
        raise value
    return value


@contextlib.contextmanager
def timer_running(progress) -> Iterator[None]:
    """Inside the block a terminal's bar (:func:`task`, stderr a terminal) is redrawn every :data:`TICK_INTERVAL`
    seconds by a thread of its own: its elapsed time runs on through a step that counts nothing (an import: torch and
    MONAI, 4-27 s of a shared machine behind "loading the model" with the timer at 00:00 - QA segfollow67).  With
    ``LUNGAI_PROGRESS=lines`` (the Slicer panel's) and in a log (stderr no terminal) the thread writes the message
    shown as the block starts, ``"<message> (<seconds> s)"``, every ``tick_interval`` seconds while it stands (not
    once the caller shows another) - as :func:`waiting` does (QA segbar67: the panel's "loading the model: torch and
    MONAI" stood ~4 s with no line); each line written whole, under the reporter's lock.  A task inside
    :func:`forwarded` (a Dask worker's) sends ``"<message> (<seconds> s)"`` the same way (QA radfollow68: a
    ``radiomics-batch`` case's "building the segments", 2.5 s on LUNG1-003, said nothing there).  Any other reporter (a
    callback - Slicer's own process, whose callbacks are called from its main thread only -, none): nothing."""
    if isinstance(progress, (_LineProgress, _LogProgress, _ForwardedProgress)):
        timed, message = progress._timed, progress.message
        interval = max(float(getattr(progress, "tick_interval", TICK_INTERVAL)), 0.01)
        redraw_one = None
    else:
        bar = getattr(progress, "_bar", None)
        if not isinstance(progress, _TqdmProgress) or not progress._tty or bar is None or bar.disable:
            yield
            return
        redraw_one, interval = bar.refresh, TICK_INTERVAL    # under tqdm's lock, as the caller's own updates
    import time

    start = time.monotonic()

    def redraw(stop) -> None:
        while not stop.wait(interval):
            if redraw_one is not None:
                redraw_one()
            elif message:
                timed(message, time.monotonic() - start)

    with _beside(redraw, "lungai-progress-timer"):
        yield


def load_modules(desc: str, steps) -> None:
    """The modules a command needs, imported on a bar of their own (``desc``, e.g. ``"stage predict: loading"``) before
    its work: ``steps`` are ``(message, (module, ...))`` pairs, each message shown while its modules are imported, its
    seconds counted while it stands (:func:`timer_running`).  Imports of pandas, scikit-learn, torch ... took 7-27 s of
    a shared 2-core machine without a line (QA stage70: ``stage predict`` wrote its first line 27 s after the command;
    QA rp71: ``rp train`` 21 s, ``rp predict`` 11 s).  A command checks its arguments and input paths before, without
    these modules, and refuses a wrong one at once; a callable among a step's modules is called there (a check that
    needs the modules imported before it, e.g. ``stage validate``'s labels read with pandas before torch)."""
    import importlib

    with task(desc, len(steps), rate=False) as bar:
        for message, modules in steps:
            bar.update(0, message)
            with timer_running(bar):
                for module in modules:
                    module() if callable(module) else importlib.import_module(module)
            bar.update(1, message)
        bar.update(0, "loaded")


@contextlib.contextmanager
def _beside(beat, name: str) -> Iterator[None]:
    """``beat(stop)`` run in a daemon thread of its own (``name``) while the block runs: ``stop``, a
    :class:`threading.Event`, is set as the block ends, and the thread waited for (:meth:`Counter.running`,
    :func:`timer_running`)."""
    stop = threading.Event()
    thread = threading.Thread(target=beat, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def parse_line(line: str):
    """Parse a ``LUNGAI_PROGRESS`` line into (fraction, text), or None for other lines."""
    if not line.startswith(PREFIX + " "):
        return None
    try:
        counts, text = line[len(PREFIX) + 1:].split(" ", 1)
        done, total = (int(v) for v in counts.split("/"))
    except ValueError:
        return None
    return done / max(total, 1), text.strip()


# where the steps of task() go instead of a bar of its own: ``send(text)`` (a Dask worker's case,
# :func:`lungai.dask_workers.with_progress_forwarded`: to the main process's bar); None: drawn in this process
_FORWARD: ContextVar = ContextVar("lungai_progress_forward", default=None)


@contextlib.contextmanager
def forwarded(send) -> Iterator[None]:
    """Inside the block (this thread), each :func:`task` draws no bar, line or record of its own: its steps are said
    as ``send(text)``, ``text`` "<description> <done>/<total>" and ": <the step's message>" after it (the count first: a
    terminal's bar cuts its message at its width).  For a process that shares its terminal with another that draws
    a bar: a Dask worker of ``lungai cohort``, whose patient's bars were drawn over the main process's (QA
    cohortbar65: two workers' "cohort P1: radiomics" and "cohort P2: inputs" bars on the line of the "cohort" bar,
    the tumour's bar moving the cursor up over it - a garbled terminal; ``LUNGAI_PROGRESS=lines``: the workers'
    lines, read by the Slicer panel as the cohort's progress)."""
    token = _FORWARD.set(send)
    try:
        yield
    finally:
        _FORWARD.reset(token)


class _ForwardedProgress:
    """A :func:`task` inside :func:`forwarded`: each step (and its start) said through ``send``."""

    tick_interval = TICK_INTERVAL

    def __init__(self, total: int, desc: str, send):
        self.total, self.desc, self.done, self.send = max(int(total), 1), desc, 0, send
        self.message = ""
        self._lock = threading.RLock()       # :func:`timer_running`'s thread sends too: one step at a time
        self._send(None)

    def _send(self, message: Optional[str]) -> None:
        # "<desc> <done>/<total>: <message>": each level's count next to its name (QA lungsfollow66: "P1: lungs 1/7
        # smoothing the CT 0/12" read as two counts of the lungs' step), as :class:`SubProgress` says them
        counted = " ".join(p for p in (self.desc, f"{self.done}/{self.total}") if p)
        with self._lock:
            self.send(f"{counted}: {message}" if message else counted)

    def update(self, n: int = 1, message: Optional[str] = None) -> None:
        with self._lock:
            self.done = min(self.done + n, self.total)
            self.message = message or ""
            self._send(message)

    def _timed(self, message: str, seconds: float) -> None:
        """:func:`timer_running`'s step (its thread): ``"<message> (<seconds> s)"`` while ``message`` stands."""
        with self._lock:
            if self.message == message:
                self._send(f"{message} ({seconds:.0f} s)")

    def close(self) -> None:
        pass


@contextlib.contextmanager
def task(desc: str, total: int, enabled: bool = True, rate: bool = True) -> Iterator[object]:
    """A progress reporter for ``total`` steps, closed at the end of the block.  ``rate`` False: a terminal's bar
    shows no steps per second (``NO_RATE_FORMAT``) - a few long steps of different kinds, whose message (a count of
    sub-steps) needs the room: tqdm cuts the line at the terminal's width.  Inside :func:`forwarded`: no bar of its
    own, its steps sent (``LUNGAI_PROGRESS=off``: nothing)."""
    mode = os.environ.get("LUNGAI_PROGRESS", "bar")
    send = _FORWARD.get()
    if not enabled or mode == "off":
        bar: object = NullProgress()
    elif send is not None:
        bar = _ForwardedProgress(total, desc, send)
    elif mode == "lines":
        bar = _LineProgress(total, desc)
    elif not _is_tty(sys.stderr):     # a log file, a pipe: plain lines, not a bar's redraws
        bar = _LogProgress(total, desc)
    else:
        bar = _TqdmProgress(total, desc, disable=False, rate=rate)
    try:
        yield bar
    finally:
        bar.close()
