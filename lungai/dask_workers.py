"""Dask worker processes of lungai's local cluster (:mod:`lungai.radiomics.cluster`): what each worker process does
as it starts (the preload :func:`dask_setup`), a lost worker's error said as such (:func:`lost_worker_error`), and
the warnings a case's task raised - the notes on the input (:class:`lungai.errors.InputNote`) and any other -
returned with its result (:func:`with_case_notes`) for the main process to say with the case's name, and the steps
of a case's bars sent to the main process's bar instead of drawn by the worker (:func:`with_progress_forwarded`,
:class:`ProgressRelay`).

A light module (no pyradiomics, no Dask import): a worker process imports it before it joins the scheduler (a
longer start would widen the time in which a worker that dies fails the whole start, "Nanny failed to start"), and
the CLI on any OSError.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar

CLUSTER_LOG_LEVEL = logging.ERROR     # the local cluster logs ERRORs only (its WARNINGs are said that way)


def quiet_worker() -> None:
    """The worker process ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the worker's own
    KeyboardInterrupt printed tracebacks (CancelledError, CommClosedError) - the main process cancels the tasks and
    closes the cluster; its task state machine logs ERRORs only (a task cancelled by Ctrl-C is not a warning).  Run in
    the worker process's main thread (its event loop's)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():       # the worker's event loop thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    no_semaphore_progress_lock()
    logging.getLogger("distributed.worker.state_machine").setLevel(CLUSTER_LOG_LEVEL)
    worker_log = logging.getLogger("distributed.worker")
    if not any(isinstance(f, SchedulerGoneFilter) for f in worker_log.filters):
        worker_log.addFilter(SchedulerGoneFilter())


def no_semaphore_progress_lock() -> None:
    """tqdm's bars (the per-patient steps of :mod:`lungai.progress`) lock with a multiprocessing RLock - a POSIX
    semaphore registered with multiprocessing's resource tracker - made in each process that draws one: a worker
    process ended by the cluster's close on Ctrl-C never released it, and the tracker printed "resource_tracker: There
    appear to be 1 leaked semaphore objects to clean up at shutdown" after the cancel.  A worker's bars share no
    terminal line with another process's (one bar at a time, its own stderr): a thread lock is enough there."""
    import threading

    try:
        from tqdm import tqdm
    except ImportError:     # no tqdm: no bars, no lock
        return
    tqdm.set_lock(threading.RLock())


class SchedulerGoneFilter(logging.Filter):
    """Drops a worker process's ERROR about its lost connection to the scheduler ("Failed to communicate with
    scheduler during heartbeat" with a CommClosedError / StreamClosedError traceback): the scheduler lives in the
    main process, which is closing the cluster (Ctrl-C, SIGTERM) or has ended - the main process says how the run
    ended; a worker's heartbeat in the moment between the scheduler's and its own closing printed a traceback.
    :func:`lost_worker_error` tells the connection errors (Dask not imported here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and lost_worker_error(exc) is not None:
            return False
        return not str(record.msg).startswith("Failed to communicate with scheduler")


def dask_setup(worker) -> None:
    """Dask's preload hook (``LocalCluster(preload=["lungai.dask_workers"])``): run by every worker process of the
    local cluster as it starts, before it joins the scheduler - also one the nanny starts again after the first
    died (which :func:`lungai.radiomics.cluster.local_cluster`'s warm-up never reaches): :func:`quiet_worker`."""
    quiet_worker()


RAISED_NOTES = "raised_notes"     # the key of a case's result holding the warnings its task raised (with_case_notes)
# the warnings list of the case task running in this thread (None: none collected, the warning passes on as it came)
_CASE_NOTES: ContextVar = ContextVar("lungai_case_notes", default=None)
# the attribute of a warning said again by say_case_notes holding its text without the case's name: what the CLI's
# printer says once in the command (lungai.cli._input_notes), whichever patient raised it first
ONCE_TEXT = "lungai_once_text"


def _collect_notes() -> None:
    """This process's warnings: one raised inside :func:`with_case_notes` goes to that case's list (a context
    variable: a worker of several threads runs several cases at once, and ``warnings.catch_warnings`` is
    process-wide) - an :class:`~lungai.errors.InputNote` as ``(category, text)``, any other warning that Python's
    filters let through (numpy's RuntimeWarning, a UserWarning of SimpleITK, pyradiomics ...) as ``(category, text,
    filename, lineno)``; a warning outside it goes to the ``warnings.showwarning`` there was.  InputNotes are always
    shown (none lost to Python's once-per-line registry: each case's note is its own).  Installed once (again when a
    ``catch_warnings`` block took it away)."""
    import warnings

    from lungai.errors import InputNote

    show = warnings.showwarning
    if getattr(show, "collects_case_notes", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        notes = _CASE_NOTES.get()
        if notes is None:
            return show(message, category, filename, lineno, file, line)
        item = (category, str(message)) if issubclass(category, InputNote) else \
            (category, str(message), str(filename), int(lineno))
        if item not in notes:
            notes.append(item)

    showwarning.collects_case_notes = True
    warnings.filterwarnings("always", category=InputNote)
    warnings.showwarning = showwarning


def with_case_notes(fn, item, *args) -> dict:
    """``fn(item, *args)`` (a case's task of :func:`lungai.radiomics.cluster.run_tasks`: a result dict), with the
    warnings it raised (:func:`_collect_notes`) in the result's ``raised_notes`` (``notes`` is cohort's record)
    instead of warned: in a Dask worker they were printed by the worker process - an InputNote as a raw Python warning,
    a source line and no case name (the CLI's note printer runs in the main process only), any other warning glued to
    the progress bar's line, naming no case, or lost; the main process says them, each with its case's name
    (:func:`say_case_notes`).  Run in the main process as well (``--workers 0``): one rule, whatever the number of
    workers.  Not recorded in the tables (printed only, as by ``lungai radiomics``)."""
    notes: list = []
    _collect_notes()
    token = _CASE_NOTES.set(notes)
    try:
        result = fn(item, *args)
    finally:
        _CASE_NOTES.reset(token)
    return {**result, RAISED_NOTES: notes} if notes else result


@contextmanager
def case_notes_rewritten(rewrite):
    """Inside :func:`with_case_notes`' task: the InputNotes raised in the block go to its case's notes as
    ``rewrite(text)`` (``lungai cohort``: the paths under DICOM_ROOT named by their path under it, as its inventory
    names them - QA: "note: P1: the RTSTRUCT /data/export/P1/RTSTRUCT/RS.dcm ..." beside "RTSTRUCT P1/RTSTRUCT/RS.dcm"
    for one file); other warnings as they came.  Outside a case's task, or without ``rewrite``: nothing changes."""
    outer = _CASE_NOTES.get()
    if outer is None or rewrite is None:
        yield
        return
    inner: list = []
    token = _CASE_NOTES.set(inner)
    try:
        yield
    finally:
        _CASE_NOTES.reset(token)
        for category, text, *where in inner:
            item = (category, text if where else rewrite(text), *where)
            if item not in outer:
                outer.append(item)


def _case_warning(category, text: str, once_text: str):
    """``text`` as a warning of ``category`` carrying ``once_text`` (:data:`ONCE_TEXT`); the text alone when the
    category takes no such message."""
    try:
        message = category(text)
        setattr(message, ONCE_TEXT, once_text)
        return message
    except Exception:  # noqa: BLE001 - a category of a library's own making: said per case, not lost
        return text


def say_case_notes(result: dict) -> None:
    """The warnings of a case's result (:func:`with_case_notes`) warned again in this process, each as
    ``<case>: <text>`` in its own category: the CLI prints an InputNote as every note (``warning: ...``, once each),
    any other warning as Python words it - where it was raised in the task - on lines of its own beside a bar, once in
    the command whichever case raised it first (:data:`ONCE_TEXT`; :func:`lungai.cli._input_notes`)."""
    import warnings

    for category, text, *where in result.get(RAISED_NOTES, ()):
        said = f"{result['case']}: {text}"
        if where:
            warnings.warn_explicit(_case_warning(category, said, text), category, *where)
        else:
            warnings.warn(said, category, stacklevel=2)


PROGRESS_TOPIC = "lungai-progress"     # the Dask event topic of the steps a case's task says in a worker


def _dask_worker():
    """The Dask worker running this thread's task; None outside one (the main process, ``--workers 0``).  Dask is not
    imported here: a process that has not imported it runs no Dask task."""
    import sys

    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except Exception:  # noqa: BLE001 - ValueError "No worker found": not in a Dask task
        return None


def case_step(case: str, text: str) -> str:
    """A step of a case's bar (:func:`lungai.progress.forwarded`'s ``text``, "cohort P3: tumour 1/3 network run 5/144
    ...") as the main bar says it: "P3: tumour 1/3 network run 5/144 ..." - the command's name dropped (the main bar's
    own), the case named once (a radiomics step's message names it again: "cohort P3: radiomics 1/5 P3: tumour")."""
    _, named, rest = text.partition(f"{case}: ")
    if not named:
        return f"{case}: {text}"
    return f"{case}: {rest.replace(f' {case}: ', ' ')}"


def with_progress_forwarded(fn, case: str, forward: bool, item, *args):
    """``fn(item, *args)`` (a case's task of :func:`lungai.radiomics.cluster.map_on_dask`), in a Dask worker with
    ``forward``: the bars of its steps (:func:`lungai.progress.task`: the patient's inputs, lungs, tumour,
    radiomics of ``lungai cohort``) are not drawn by the worker - whose stderr is the main process's terminal, where
    they were drawn over the main bar, two workers' on one line (QA cohortbar65) - but sent to the main process as
    Dask events (:data:`PROGRESS_TOPIC`, ``{"case", "text"}``: :func:`case_step`) said on its bar
    (:class:`ProgressRelay`).  Elsewhere (the plain loop) ``fn(item, *args)`` as it is."""
    worker = _dask_worker() if forward else None
    if worker is None:
        return fn(item, *args)
    from lungai.progress import forwarded

    def send(text: str) -> None:
        try:
            worker.log_event(PROGRESS_TOPIC, {"case": case, "text": case_step(case, text)})
        except Exception:  # noqa: BLE001 - a step not said is no reason to fail the case
            pass

    with forwarded(send):
        return fn(item, *args)


class ProgressRelay:
    """The main process's end of :func:`with_progress_forwarded`: the handler of ``client.subscribe_topic(
    PROGRESS_TOPIC, relay)``, run in the Dask client's thread - each case's step said on ``progress`` (the cases'
    bar) as a message without a step, under :attr:`lock`, the lock the main thread holds while it says a case's
    result (:meth:`delivered`): one writer at a time on the bar; a step of a case whose result was said (an event
    late) is not said again.  In a log (stderr no terminal: the bar's ``tick_interval`` is
    :data:`lungai.progress.LOG_INTERVAL`, each message a record) the steps are said at most every ``tick_interval``
    seconds - a few records for a long run, as a bar drawn there, not one per network run of every patient - each
    record the last step of every case under way ("P1: tumour 1/3 network run 90/144; P2: radiomics 2/5 lungs"), not
    the one step that came first after the interval: QA cohortfollow66, two workers' LUNG1-003 and LUNG1-003B in a
    log (``lungai cohort EXPORT -o OUT 2> log``) - only LUNG1-003's steps were ever written, the other's steps
    falling between two of its own."""

    def __init__(self, progress):
        import threading
        import time

        from lungai.progress import TICK_INTERVAL

        self.progress, self.lock, self._ended = progress, threading.Lock(), set()
        interval = float(getattr(progress, "tick_interval", 0.0) or 0.0)
        self._interval = interval if interval > TICK_INTERVAL else 0.0     # a terminal, lines: every step said
        self._clock, self._shown = time.monotonic, None
        self._latest: dict = {}      # in a log: each case under way -> its last step (said together every interval)

    def __call__(self, event) -> None:
        try:
            _, msg = event
            case, text = msg["case"], str(msg["text"])
        except Exception:  # noqa: BLE001 - not one of ours
            return
        with self.lock:
            if case in self._ended or self.progress is None:
                return
            if self._interval:
                self._latest[case] = text
                now = self._clock()
                if self._shown is not None and now - self._shown < self._interval:
                    return
                self._shown, text = now, "; ".join(self._latest.values())
            try:
                self.progress.update(0, text)
            except Exception:  # noqa: BLE001 - the client's thread: never raise there (a cancel is the main thread's)
                pass

    def stop(self) -> None:
        """No step said from now on (the run ended, cancelled: the bar is closed, the cancel said)."""
        with self.lock:
            self.progress = None

    @contextmanager
    def delivered(self, case: str):
        """The block saying ``case``'s result, holding :attr:`lock`: its later steps are not said."""
        with self.lock:
            self._ended.add(case)
            self._latest.pop(case, None)
            yield


WORKER_LOST_FIX = ("run the same command again (the finished cases are kept and skipped), with fewer --workers if "
                   "the machine is short of memory (each worker holds one case in memory)")


def lost_worker_error(exc: BaseException):
    """``exc`` as a :class:`~lungai.errors.LungAIError` saying that a Dask worker process died (out of memory?
    killed?) when it is Dask's lost-connection error (``CommClosedError``, tornado's ``StreamClosedError``: OSError
    subclasses that name no file, not "cannot access None"); None for any other error.  Dask is not imported."""
    import sys

    from lungai.errors import LungAIError

    kinds = [getattr(sys.modules.get(module), name, None) for module, name in
             (("distributed.comm.core", "CommClosedError"), ("tornado.iostream", "StreamClosedError"))]
    kinds = tuple(k for k in kinds if isinstance(k, type))
    if not kinds or not isinstance(exc, kinds):
        return None
    return LungAIError(f"a Dask worker process died or its connection was lost (out of memory? killed?): {exc}",
                       WORKER_LOST_FIX)
