"""Dask worker processes of lungai's local cluster (:mod:`lungai.radiomics.cluster`): what each worker process does
as it starts (the preload :func:`dask_setup`), and a lost worker's error said as such (:func:`lost_worker_error`).

A light module (no pyradiomics, no Dask import): a worker process imports it before it joins the scheduler (a
longer start would widen the time in which a worker that dies fails the whole start, "Nanny failed to start"), and
the CLI on any OSError.
"""

from __future__ import annotations

import logging

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
