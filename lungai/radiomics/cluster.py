"""The local Dask cluster that ``lungai radiomics-batch`` starts when no scheduler address is given.

One single-threaded worker process per core, tuned for CPU-bound pyradiomics tasks (each setting
was measured with ``benchmarks/bench_radiomics_batch.py``, 16 cases, 2 workers, idle machine):

- ``MALLOC_TRIM_THRESHOLD_`` is *not* set in the workers.  Dask sets it by default so that workers
  hand freed memory back to the OS at once; glibc then maps and unmaps every large numpy buffer
  anew, and each pyradiomics case ran ~9 % slower than in a plain process (1.71x -> 1.85x).
- one ITK thread per worker (``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1``), like OMP/BLAS: the cores
  are already shared between the workers; more threads only compete.
- no statistical profiler and slow admin ticks in the workers: the profiler samples the running
  task every 10 ms and takes the GIL from it (with the above: 1.93x).

A Dask cluster started earlier in the same process (e.g. in Slicer's Python console) leaves
``MALLOC_TRIM_THRESHOLD_`` in ``os.environ``; it is taken out while the workers start, then put back.
Workers on an existing cluster (``--scheduler ADDRESS``) keep their own settings; start them with
``MALLOC_TRIM_THRESHOLD_`` unset for the same speed.

``--scheduler ADDRESS`` is checked before any work (:func:`check_scheduler_address`: ``tcp://host:8786``, a
scheme and a port) and connected to with a ``SCHEDULER_TIMEOUT_S`` (10 s) limit (:func:`connect_scheduler`); a
bad or unreachable address is an :class:`~lungai.errors.InputError` naming it, not a traceback or a 30 s wait.

A local cluster started by a script's top-level code without ``if __name__ == "__main__":`` is refused before any work
(:func:`check_main_guard`): each worker process (started by *spawn*) runs the script again, which would start a
cluster again, and every worker failed ("An attempt has been made to start a new process before the current process
has finished its bootstrapping phase", then "Nanny failed to start").
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from lungai.dask_workers import CLUSTER_LOG_LEVEL, lost_worker_error, quiet_worker  # noqa: F401
from lungai.dask_workers import (PROGRESS_TOPIC, ProgressRelay, say_case_notes, with_case_notes,
                                  with_progress_forwarded)
from lungai.errors import InputError, counted

TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
WORKER_ENV = {"OMP_NUM_THREADS": "1", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1"}
DASK_CONFIG = {
    f"distributed.nanny.pre-spawn-environ.{TRIM_VARIABLE}": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    # a case whose worker process dies (killed for lack of memory, a crash in native code) is retried once, then
    # failed (KilledWorker): not Dask's default 3 retries, each killing one more worker (and the results it held)
    "distributed.scheduler.allowed-failures": 1,
}


SCHEDULER_TIMEOUT_S = 10          # connecting to --scheduler (Dask's own default: 30 s)
SCHEDULER_FIX = ("give the address of a running Dask scheduler as tcp://host:8786 (start one with 'dask scheduler' "
                 "and workers with 'dask worker tcp://host:8786'), or leave --scheduler out for a local cluster")


def check_scheduler_address(address: str) -> None:
    """Refuse (InputError) a Dask scheduler address that names no scheme-known host and port (``localhost``,
    ``synchronous``, ``tcp://host``): checked before any work, without connecting."""
    from distributed.comm.addressing import get_address_host_port, parse_address

    try:
        scheme, _ = parse_address(str(address))
        if scheme != "inproc":                        # in-process (a LocalCluster(processes=False)): no port
            get_address_host_port(str(address))
    except (ValueError, TypeError) as exc:
        raise InputError(f"{address!r} is not a Dask scheduler address ({exc})", SCHEDULER_FIX) from None


def connect_scheduler(address: str):
    """A Dask ``Client`` of the scheduler at ``address``; InputError if the address is bad or nothing answers
    there within ``SCHEDULER_TIMEOUT_S``."""
    from dask.distributed import Client

    check_scheduler_address(address)
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT_S)
    except (ValueError, OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to the Dask scheduler at {address} "
                         f"(within {SCHEDULER_TIMEOUT_S} s): {exc}", SCHEDULER_FIX) from None


def connect_scheduler_said(desc: str, address: str):
    """:func:`connect_scheduler` with its wait said on a bar of its own (``"<desc>: connecting to the Dask scheduler
    at ADDRESS (4 s)"``, :func:`lungai.progress.timer_running`), for a command that connects before it writes
    anything (``lungai cohort``: an unreachable scheduler then leaves no resume folder, stamp or inventory the user
    did not have - QA cohort71: ``--scheduler tcp://127.0.0.1:8799`` into a new folder left ``settings.key``,
    ``patients.csv`` and the folder's marker).  The connected ``Client`` goes to :func:`run_tasks` as its
    ``scheduler`` (:func:`map_on_dask` uses it, not connecting again, and closes it)."""
    from lungai.progress import task, timer_running

    with task(desc, 1, rate=False) as bar:
        bar.update(0, f"connecting to the Dask scheduler at {address}")
        with timer_running(bar):
            client = connect_scheduler(address)
        bar.update(1, f"connected to the Dask scheduler at {address}")
    return client


def scheduler_text(scheduler) -> str:
    """The address of ``scheduler``: an address as given, or a connected ``Client``'s scheduler's."""
    if isinstance(scheduler, str) or scheduler is None:
        return str(scheduler)
    try:
        return str(scheduler.scheduler.address)
    except AttributeError:
        return str(scheduler)


MAIN_GUARD_FIX = ("put the script's code under 'if __name__ == \"__main__\":' (each Dask worker process runs the "
                  "script again from its top; docs/cohort.md shows it), or run without Dask: workers=0 (one process)")


def _guarded(path: str, line: int):
    """Whether ``line`` of the Python file ``path`` lies in an ``if __name__ == "__main__":`` block (at the top level
    or nested in a top-level ``try`` / ``with`` / ``for`` ... block) or in a definition (not run when the file is
    imported); None when the file cannot be read or parsed."""
    import ast

    try:
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None

    def inside(statements) -> bool:
        for statement in statements:
            if not statement.lineno <= line <= (statement.end_lineno or statement.lineno):
                continue
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return True
            if isinstance(statement, ast.If) and "__name__" in ast.unparse(statement.test):
                body = statement.body          # its else branch is run by the worker processes too
                return body[0].lineno <= line <= (body[-1].end_lineno or body[-1].lineno)
            # a compound statement run on import (try / with / for / while / another if): the blocks inside it
            blocks = [getattr(statement, name, None) or [] for name in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(statement, "handlers", None) or []]
            blocks += [c.body for c in getattr(statement, "cases", None) or []]
            return any(inside(block) for block in blocks if block)
        return False

    return inside(tree.body)


def check_main_guard(workers: int, scheduler: str | None = None) -> None:
    """Refuse (InputError, before any work) to start a local Dask cluster (``workers`` > 0, no ``scheduler``) from a
    script's top-level code outside ``if __name__ == "__main__":``: Dask starts its worker processes by *spawn*
    (``distributed.worker.multiprocessing-method``), each of which runs the main script again from its top, which
    would start a cluster again - every worker failed ("... before the current process has finished its
    bootstrapping phase", "Nanny failed to start").  A process that is itself such a worker being started (the
    script run again) is refused the same way.  An interactive session (no script: Slicer's Python console, a
    notebook), the ``lungai`` command and code under the guard are not concerned."""
    import multiprocessing
    import sys

    if scheduler or not workers:
        return
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    bootstrapping = bool(getattr(multiprocessing.current_process(), "_inheriting", False))
    if bootstrapping:   # a worker process running the script again (its guard missing): no process may start here
        raise InputError("a Dask worker process started by a script without 'if __name__ == \"__main__\":' runs "
                         "the script again and would start a cluster again", MAIN_GUARD_FIX)
    if not path:
        return
    # python -m package (its __main__ module): spawned processes never run a module named '__main__' /
    # '<package>.__main__' again (multiprocessing.spawn's own rule), so no guard is needed there
    spec_name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if spec_name == "__main__" or spec_name.endswith(".__main__"):
        return
    import dask

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return          # forked workers do not run the script again
    import os

    frame, line = sys._getframe(1), None
    while frame is not None:        # the script's own top-level line that led here (the outermost)
        # its file's code only: a console's input in the same globals (after a script run in them) is no such line
        if frame.f_globals is getattr(main, "__dict__", None) and frame.f_code.co_name == "<module>" \
                and os.path.abspath(frame.f_code.co_filename) == os.path.abspath(path):
            line = frame.f_lineno
        frame = frame.f_back
    if line is not None and _guarded(path, line) is False:
        raise InputError(f"the script {path} starts {counted(workers, 'Dask worker process', 'Dask worker processes')} from its top-level code (line "
                         f"{line}), outside 'if __name__ == \"__main__\":': each worker process runs the script again "
                         "and would start a cluster again (\"Nanny failed to start\")", MAIN_GUARD_FIX)


# Ctrl-C: the loggers quieted while the tasks are cancelled and the cluster closed (a cancelled task's CancelledError,
# a closed connection's StreamClosedError / CommClosedError traceback, "Worker process still alive after 4.0 seconds,
# killing" are the expected shutdown, not news); the local cluster logs ERRORs only (its WARNINGs are said that way)
SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio")
CLOSE_TIMEOUT_S = 10
RESUME_HINT = "the finished cases are kept: run the same command again to resume (they are skipped)"
NOTHING_TO_RESUME = "no case had finished, so there is nothing to resume: run the same command again to start it"


@contextmanager
def quiet_logs(names=SHUTDOWN_LOGGERS, level: int = logging.CRITICAL + 1):
    """Raise the level of the loggers ``names`` and of their existing descendants (a child with its own level, as
    Dask's ``tornado.application``, is not quieted by its parent) to ``level`` (by default: nothing logged) for the
    block, then put their levels back."""
    known = [n for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)]
    loggers = [logging.getLogger(n) for n in sorted({*names, *(k for k in known
                                                                if any(k.startswith(n + ".") for n in names))})]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels):
            lg.setLevel(old)


def close_quietly(client, cluster=None, futures=()) -> None:
    """Cancel ``futures`` and close ``client`` and ``cluster`` (None: an existing scheduler's, left running) with
    Dask's loggers quieted (:func:`quiet_logs`): a cancelled run ends with one line, not Dask's tracebacks.  A
    failure to close is ignored (the processes end with this one).  A further Ctrl-C or SIGTERM while closing
    (:func:`signals_held`) does not stop it half-way: workers left running kept writing parts after the count of
    finished cases was said (it said too few) and Dask's exit handler then closed them again (seconds more)."""
    with quiet_logs(), signals_held():
        steps = [lambda: client.cancel(list(futures), force=True)] if futures else []
        steps.append(lambda: client.close(timeout=CLOSE_TIMEOUT_S))
        if cluster is not None:
            steps.append(lambda: cluster.close(timeout=CLOSE_TIMEOUT_S))
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - already closing: nothing more to do about it
                pass


@contextmanager
def signals_held():
    """SIGINT and SIGTERM ignored in this process while the block runs (put back afterwards), for a cleanup that
    must finish (bounded by its own timeouts).  Only the main thread can set handlers: elsewhere nothing changes.
    A process forked meanwhile still ends on SIGTERM / SIGINT as before."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pid = os.getpid()

    def held(signum, frame):
        if os.getpid() != pid:              # a forked child: ended by it, as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    nums = [getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n)]
    previous = {}
    try:
        for num in nums:
            previous[num] = signal.signal(num, held)
        yield
    finally:
        for num, handler in previous.items():
            signal.signal(num, handler if handler is not None else signal.SIG_DFL)


def warm_worker() -> int:
    """:func:`~lungai.dask_workers.quiet_worker` (done at start already by its preload), then import pyradiomics
    and lungai's extraction once per worker (so the first case is not slower)."""
    import os

    quiet_worker()
    import radiomics.featureextractor  # noqa: F401

    import lungai.io  # noqa: F401
    import lungai.radiomics.extract  # noqa: F401
    return os.getpid()


def start_without_sigint(start):
    """``start()`` (which starts processes and returns an object with ``close(timeout=...)``: a Dask cluster) run in
    a thread of its own with SIGINT blocked; every thread it starts, and every process started from these threads
    (fork or spawn), inherits the blocked SIGINT from its first instruction on.  A terminal's Ctrl-C reaches the whole
    process group: a worker process still importing Dask printed its own KeyboardInterrupt traceback ("Nanny failed
    to start"), which :func:`warm_worker` (run once the workers are up) came too late to prevent; and the main
    thread's KeyboardInterrupt inside ``LocalCluster(...)`` left a half-started cluster that Dask's exit handler
    failed to close ("Exception ignored in atexit callback: close_clusters ... AssertionError: Status.init").

    The calling (main) thread keeps its Ctrl-C: a KeyboardInterrupt while ``start()`` runs waits for it to end (one
    more Ctrl-C does not stop that wait), closes what it started with Dask's loggers quieted, then is raised.  Where
    signals cannot be blocked (Windows: no ``pthread_sigmask``), ``start()`` is simply called."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask"):
        return start()
    outcome: dict = {}
    done = threading.Event()         # not Thread.join: one interrupted by Ctrl-C marks the thread ended (Python 3.11)
    began = threading.Event()        # the thread runs (a Ctrl-C may come while Thread.start waits for it)

    def run() -> None:
        began.set()
        try:
            # multiprocessing's resource tracker process, started on first need (Dask's worker queues), unblocks
            # SIGINT in the thread that starts it: started here first, before SIGINT is blocked (then found running)
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            outcome["value"] = start()
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="lungai-cluster-start", daemon=True)
    try:
        thread.start()                      # in the try: a Ctrl-C while Thread.start waits for the thread to run
        while not done.wait(0.1):           # a short wait: Ctrl-C is handled between two
            pass
    except KeyboardInterrupt:
        # the processes being started: waited for, then closed (unless the thread never came to run: a Ctrl-C
        # inside Thread.start before it made the thread)
        waited = 0.0
        while not done.is_set() and (began.is_set() or waited < 5.0):
            try:
                done.wait(0.1)
                waited += 0.1
            except KeyboardInterrupt:
                pass
        if "value" in outcome:
            with quiet_logs():
                try:
                    outcome["value"].close(timeout=CLOSE_TIMEOUT_S)
                except Exception:  # noqa: BLE001 - already closing: nothing more to do about it
                    pass
        raise
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["value"]


def local_cluster(workers: int):
    """``(cluster, client)``: ``workers`` single-threaded worker processes, warmed up.  The cluster is started by
    :func:`start_without_sigint`: its worker processes never see SIGINT (Ctrl-C), from their start on, also when
    the nanny starts one again after it died.  A worker process lost while the workers warm up (:func:`warm_worker`)
    is left to its nanny, which starts it again (quieted by the preload :func:`lungai.dask_workers.dask_setup`), not
    a failure of the run."""
    import os

    import dask
    from dask.distributed import Client, LocalCluster

    check_main_guard(workers)        # a script without its __main__ guard: refused before any process starts

    def start():
        with dask.config.set(DASK_CONFIG):
            return LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1, processes=True,
                                dashboard_address=None, env=dict(WORKER_ENV), silence_logs=CLUSTER_LOG_LEVEL,
                                # no dashboard; its HTTP server (health checks) on a free port, not 8787 with a
                                # "Port 8787 is already in use" warning when another cluster runs
                                scheduler_kwargs={"dashboard_address": ":0"},
                                preload=["lungai.dask_workers"])   # dask_setup: each worker, also one started again

    trim = os.environ.pop(TRIM_VARIABLE, None)
    try:
        cluster = start_without_sigint(start)
    finally:
        if trim is not None:
            os.environ[TRIM_VARIABLE] = trim
    client = None
    try:
        client = Client(cluster)
        # a worker process that dies meanwhile (killed, out of memory) is no reason to stop: the nanny starts it again
        # (SIGINT blocked, quieted by its preload; only its first case is slower), its cases go to the others
        for worker, result in client.run(warm_worker, on_error="return").items():
            if isinstance(result, BaseException):
                if not isinstance(result, OSError):      # CommClosedError: the worker lost, not a failure
                    raise result          # a real failure of the warm-up (pyradiomics not importable ...)
                logging.getLogger(__name__).info("worker %s lost while warming up: %r", worker, result)
    except BaseException:        # Ctrl-C while the workers start: closed quietly
        if client is None:
            with quiet_logs():
                cluster.close(timeout=CLOSE_TIMEOUT_S)
        else:
            close_quietly(client, cluster)
        raise
    return cluster, client


GATHER_TIMEOUT_S = 60     # fetching a finished case's result (a small dict): longer only when its worker died with it
MAX_LOST_RESULTS = 2      # a case whose result was lost that often with its worker (recomputed each time): failed
KILLED_FIX = ("run it again with fewer --workers (each worker holds one case in memory) or on a machine with more "
              "memory; the finished cases are kept (skipped when run again)")


def _failed(name: str, exc: BaseException) -> dict:
    """The "failed" result of the case ``name`` whose task raised ``exc`` outside ``fn`` (a lost worker)."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        error = (f"the worker process running it died (out of memory? or a crash in native code; {exc!r}): "
                 f"{KILLED_FIX}")
    else:
        error = repr(exc)
    return {"case": name, "status": "failed", "error": error}


# the cases' bar's message once the cases are sent, until a worker says a case's first step (its libraries imported)
WORKERS_LOADING = "workers loading their libraries"
# its message while the local cluster is closed after the last case (an existing scheduler's: its connection closed)
STOPPING = "stopping the Dask workers"
STOPPED = "Dask workers stopped"
CLOSING_REMOTE = "closing the connection to the Dask scheduler"
# its message from a Ctrl-C until the tasks are cancelled and the local cluster closed (an existing scheduler's: left)
CANCELLING = f"cancelling: {STOPPING}"
CANCELLING_REMOTE = "cancelling: the cases' tasks on the Dask scheduler"


def _closing_said(progress, message: str, close) -> None:
    """``close()`` (the Dask client and local cluster closed: 1-6 s of a shared machine) with ``message`` said on
    ``progress`` (the cases' bar; None: nothing said) at once, then again with its seconds while it stands
    (:func:`lungai.progress.timer_running`): after the last case (QA radfollow72: ``radiomics-batch`` of one case,
    ``--workers 2``, 1-2.4 s without a word between "1/1 lung1 done" and the summary) as after a Ctrl-C (QA cohort72:
    5-6 s before "cancelled after ...")."""
    from contextlib import nullcontext

    from lungai.progress import timer_running

    if progress is not None:
        progress.update(0, message)
    with timer_running(progress) if progress is not None else nullcontext():
        close()


def map_on_dask(fn, items, names, args: tuple, workers: int, scheduler: str | None, on_result,
                progress=None) -> None:
    """Run ``fn(item, *args)`` for every item as one Dask task each - on the local cluster of
    :func:`local_cluster` (``workers`` processes) or on the existing one at ``scheduler`` - and pass
    each result to ``on_result`` as it finishes.  A task whose worker is lost gives a "failed"
    result for its name instead, so one case never stops the others: a worker process that dies (os._exit, killed
    for lack of memory) fails its case with :class:`~distributed.KilledWorker` (retried once on the local cluster,
    ``distributed.scheduler.allowed-failures``), said with :data:`KILLED_FIX`.  A finished result whose worker
    died before it was fetched is recomputed (fetching it is limited to ``GATHER_TIMEOUT_S`` each time, then it is
    waited for again), and failed after ``MAX_LOST_RESULTS`` losses - never a wait without end.  A delivered
    result is released at once (not recomputed when its worker dies later).  A ``scheduler`` that cannot be
    reached is an InputError before any task (:func:`connect_scheduler`).  ``progress`` (optional, the cases' bar):
    the local cluster's start is said on it, a message without a step - it starts and warms up its worker processes
    before the first case runs (QA firstbar64, ``lungai cohort`` on a shared machine: 15 s at "cohort 0/1" without a
    word), and the steps of each case's own bars, which a worker does not draw, on it too
    (:func:`lungai.dask_workers.with_progress_forwarded`: "P3: tumour 1/3 network run 5/144 ...")."""
    from contextlib import nullcontext

    from lungai.progress import timer_running

    # said at once, before Dask is imported (1-2 s of a shared machine: QA cohort70, "radiomics-batch: 0/2" stood
    # alone that long), and again with its seconds while Dask is imported and the workers start or the scheduler is
    # reached (lungai.progress.timer_running; QA rad69: 5 s without a line in radiomics-batch's log on a shared
    # machine, 15 s in QA firstbar64; a --scheduler that answers slowly: up to SCHEDULER_TIMEOUT_S without a word)
    # a Client connected before (connect_scheduler_said: lungai cohort connects before it writes anything): used
    connected = scheduler is not None and not isinstance(scheduler, str)
    address = scheduler_text(scheduler) if scheduler else None
    if progress is not None and not connected:
        progress.update(0, f"connecting to the Dask scheduler at {address}" if scheduler else
                        f"starting {counted(workers, 'local Dask worker')}")
    with timer_running(progress) if progress is not None and not connected else nullcontext():
        from dask.distributed import TimeoutError as DaskTimeoutError   # asyncio's: not the built-in before 3.11
        from dask.distributed import as_completed

        if connected:
            client, cluster = scheduler, None
        elif scheduler:
            client, cluster = connect_scheduler(scheduler), None       # a bad / unreachable address: InputError
        else:
            cluster, client = local_cluster(workers)
    if progress is not None:
        progress.update(0, (f"connected to the Dask scheduler at {address}" if scheduler else
                            f"{counted(workers, 'Dask worker')} started") + f": {counted(len(items), 'case')} sent")
    futures: dict = {}
    lost: dict = {}
    relay = None
    try:
        if progress is not None:
            try:
                relay = ProgressRelay(progress)
                client.subscribe_topic(PROGRESS_TOPIC, relay)
            except Exception:  # noqa: BLE001 - a scheduler without events: the workers' bars are drawn as they were
                relay = None
        futures = {client.submit(with_progress_forwarded, fn, name, relay is not None, item, *args,
                                 key=f"lungai-{name}", pure=False): name
                   for item, name in zip(items, names)}
        queue = as_completed(list(futures))
        if relay is not None:
            # a worker imports its task's libraries (pandas, SimpleITK, pyradiomics ...) before the case's first step:
            # said, and again with its seconds while it stands (lungai.progress.timer_running) - QA cohortfollow71:
            # "2 Dask workers started: 2 cases sent" stood ~3 s without a word on a shared machine
            progress.update(0, WORKERS_LOADING)
        with timer_running(progress) if relay is not None else nullcontext():
            for fut in queue:
                name = futures[fut]
                try:
                    res = fut.result(timeout=GATHER_TIMEOUT_S)
                # its result lost with its worker before it was fetched ("Couldn't gather keys"): being recomputed
                except (TimeoutError, DaskTimeoutError) as exc:
                    lost[name] = lost.get(name, 0) + 1
                    if lost[name] < MAX_LOST_RESULTS:
                        queue.add(fut)        # given again once recomputed
                        continue
                    res = _failed(name, exc)
                    res["error"] = (f"its result was lost {lost[name]} times with the worker holding it (workers "
                                    f"dying: out of memory?): {KILLED_FIX}")
                except Exception as exc:  # noqa: BLE001 - a lost worker (KilledWorker ...) fails only its case
                    res = _failed(name, exc)
                del futures[fut]
                fut.release()                 # delivered: not recomputed when the worker holding it dies later
                with relay.delivered(name) if relay is not None else nullcontext():
                    on_result(res)
    except KeyboardInterrupt:      # Ctrl-C: the running tasks cancelled, the cluster closed, no Dask tracebacks
        if relay is not None:      # a worker's step sent meanwhile: not said after the cancel
            relay.stop()
        # said at once, with its seconds while the workers stop (QA cohort72: 5-6 s without a word between Ctrl-C and
        # "cohort: cancelled after 1 of 2 cases", two workers on LUNG1-003)
        _closing_said(progress, CANCELLING if cluster is not None else CANCELLING_REMOTE,
                      lambda: close_quietly(client, cluster, futures))
        raise
    except BaseException:
        if relay is not None:
            relay.stop()
        close_quietly(client, cluster)
        raise
    if relay is not None:
        relay.stop()

    def close() -> None:
        client.close()
        if cluster is not None:
            cluster.close()

    # said, with its seconds, between the last case and the summary (QA radfollow72: 1-2.4 s without a word)
    _closing_said(progress, STOPPING if cluster is not None else CLOSING_REMOTE, close)
    if progress is not None and cluster is not None:
        progress.update(0, STOPPED)


def _done_now(is_done, item) -> bool:
    try:
        return bool(is_done(item))
    except Exception:  # noqa: BLE001 - only for the count said on cancelling
        return False


def run_tasks(desc: str, fn, items, names, args: tuple, is_done, summary, workers: int, scheduler: str | None) -> None:
    """The cohort loop shared by ``radiomics-batch`` and ``cohort``: items for which ``is_done(item)``
    go to ``summary.skipped`` (resume); the others run as ``fn(item, *args)`` - in a plain loop when
    ``workers == 0`` and no ``scheduler``, else on Dask (:func:`map_on_dask`) - with a progress bar;
    each result dict (``case``, ``status`` "done"/"failed", ``error``) goes to ``summary.done`` or
    ``summary.failed`` as (case, error), both in the order of ``names``.  The notes on the input
    (:class:`~lungai.errors.InputNote`) a case raised are said as it finishes, each as ``<case>: <note>``, in a Dask
    worker as in the plain loop (:func:`lungai.dask_workers.with_case_notes`)."""
    import functools
    import sys
    import warnings

    from lungai.progress import task

    todo = []
    for item, name in zip(items, names):
        if is_done(item):
            summary.skipped.append(name)
        else:
            todo.append((item, name))
    # no steps per second: the cases' bar says a running case's steps (map_on_dask), whose counts need the room in an
    # 80-column terminal (QA cohortbar65); its elapsed and remaining time say the pace
    with task(desc, max(len(todo), 1), enabled=bool(todo), rate=False) as bar:
        def on_result(res: dict) -> None:
            say_case_notes(res)
            if res["status"] == "done":
                summary.done.append(res["case"])
            else:
                summary.failed.append((res["case"], res["error"]))
            bar.update(1, f"{res['case']} {res['status']}")

        noted = functools.partial(with_case_notes, fn)
        try:
            if todo and workers == 0 and not scheduler:
                with warnings.catch_warnings():     # the note collector (with_case_notes) taken away afterwards
                    for item, _ in todo:
                        on_result(noted(item, *args))
            elif todo:
                map_on_dask(noted, [i for i, _ in todo], [n for _, n in todo], args, workers, scheduler, on_result,
                            progress=bar)
        except KeyboardInterrupt:    # the CLI then says "lungai <command>: cancelled"
            bar.close()
            # the cases finished on disk: also those whose worker wrote them but whose result was not delivered yet
            failed = {case for case, _ in summary.failed}
            finished = sum(1 for item, name in todo if name in failed or _done_now(is_done, item))
            # nothing to resume when no case finished, now or in an earlier run (QA cohortfollow71: "the finished
            # cases are kept ... to resume" after 0 of 1)
            hint = RESUME_HINT if finished or summary.skipped else NOTHING_TO_RESUME
            print(f"{desc}: cancelled after {finished} of {counted(len(todo), 'case')}; {hint}", file=sys.stderr)
            raise
    # in the manifest's order, whatever order the workers finished in (QA: 1 and 2 workers wrote the error table's
    # rows and the "failed:" lines in another order)
    order = {name: i for i, name in enumerate(names)}
    for found in (summary.done, summary.failed):
        found.sort(key=lambda entry: order.get(entry[0] if isinstance(entry, tuple) else entry, len(order)))
