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
"""

from __future__ import annotations

TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
WORKER_ENV = {"OMP_NUM_THREADS": "1", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1"}
DASK_CONFIG = {
    f"distributed.nanny.pre-spawn-environ.{TRIM_VARIABLE}": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


def warm_worker() -> int:
    """Import pyradiomics and lungai's extraction once per worker (so the first case is not slower)."""
    import os

    import radiomics.featureextractor  # noqa: F401

    import lungai.io  # noqa: F401
    import lungai.radiomics.extract  # noqa: F401
    return os.getpid()


def local_cluster(workers: int):
    """``(cluster, client)``: ``workers`` single-threaded worker processes, warmed up."""
    import os

    import dask
    from dask.distributed import Client, LocalCluster

    trim = os.environ.pop(TRIM_VARIABLE, None)
    try:
        with dask.config.set(DASK_CONFIG):
            cluster = LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=dict(WORKER_ENV))
    finally:
        if trim is not None:
            os.environ[TRIM_VARIABLE] = trim
    client = Client(cluster)
    client.run(warm_worker)
    return cluster, client


def map_on_dask(fn, items, names, args: tuple, workers: int, scheduler: str | None, on_result) -> None:
    """Run ``fn(item, *args)`` for every item as one Dask task each - on the local cluster of
    :func:`local_cluster` (``workers`` processes) or on the existing one at ``scheduler`` - and pass
    each result to ``on_result`` as it finishes.  A task whose worker is lost gives a "failed"
    result for its name instead, so one case never stops the others."""
    from dask.distributed import Client, as_completed

    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster, client = local_cluster(workers)
    try:
        futures = {client.submit(fn, item, *args, key=f"lungai-{name}", pure=False): name
                   for item, name in zip(items, names)}
        for fut in as_completed(list(futures)):
            try:
                on_result(fut.result())
            except Exception as exc:  # noqa: BLE001 - a lost worker fails only its case
                on_result({"case": futures[fut], "status": "failed", "error": repr(exc)})
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(desc: str, fn, items, names, args: tuple, is_done, summary, workers: int, scheduler: str | None) -> None:
    """The cohort loop shared by ``radiomics-batch`` and ``cohort``: items for which ``is_done(item)``
    go to ``summary.skipped`` (resume); the others run as ``fn(item, *args)`` - in a plain loop when
    ``workers == 0`` and no ``scheduler``, else on Dask (:func:`map_on_dask`) - with a progress bar;
    each result dict (``case``, ``status`` "done"/"failed", ``error``) goes to ``summary.done`` or
    ``summary.failed`` as (case, error)."""
    from lungai.progress import task

    todo = []
    for item, name in zip(items, names):
        if is_done(item):
            summary.skipped.append(name)
        else:
            todo.append((item, name))
    with task(desc, max(len(todo), 1), enabled=bool(todo)) as bar:
        def on_result(res: dict) -> None:
            if res["status"] == "done":
                summary.done.append(res["case"])
            else:
                summary.failed.append((res["case"], res["error"]))
            bar.update(1, f"{res['case']} {res['status']}")

        if todo and workers == 0 and not scheduler:
            for item, _ in todo:
                on_result(fn(item, *args))
        elif todo:
            map_on_dask(fn, [i for i, _ in todo], [n for _, n in todo], args, workers, scheduler, on_result)
