"""Benchmark: cohort radiomics throughput, Dask with 2 worker processes vs a single-process loop.

Both process the same synthetic cases with the same function (``lungai.radiomics.batch.process_case``)
in the same run, alternating for ``--rounds`` rounds (median ratios reported, which damps changes of the
machine's load):

- **loop**: ``run_batch(..., workers=0)``;
- **Dask, end to end** (the headline, and the verdict): ``run_batch(..., workers=2)`` without a scheduler -
  what ``lungai radiomics-batch --workers 2`` runs: the local cluster
  (:func:`lungai.radiomics.cluster.local_cluster`) is started, warmed and closed inside the call, so its
  start-up is on the clock, as it is on the user's;
- **Dask, cluster already running** (second, labelled line): a cluster started before the timing and
  passed as ``scheduler=`` (what ``--scheduler`` users with a running cluster see); its start-up is printed.
  ``--dask-defaults`` makes this cluster a LocalCluster with Dask's default worker settings, to show what the
  tuning in ``cluster.py`` is worth.

CPU seconds of the loop and of the running cluster's workers are printed: when the loop gets much less than
one core, other load on the machine limits what 2 workers can show.
Target: end-to-end ratio >= 1.8 on 2 free cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_radiomics_batch.py [--cases 8] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_code, verdict  # noqa: E402

TARGET_RATIO = 1.8   # loop wall / Dask wall with 2 workers (also bench_cohort.py's target)


def _cpu():
    return time.process_time()


def compare_rounds(run_loop, run_dask, run_on_cluster, start_cluster, workers: int, rounds: int,
                   cases: int) -> dict:
    """Alternate, for ``rounds`` rounds: ``run_loop(r)``, ``run_dask(r)`` (starts its own cluster: start-up timed)
    and ``run_on_cluster(r, address)`` on a cluster from ``start_cluster()`` (-> (cluster, client), started before
    its timing, closed after).  Each returns a summary with ``done`` / ``failed``.  Prints wall and CPU time per
    round; returns lists: ``end_to_end`` and ``running`` ratios (loop wall / Dask wall), ``startup`` seconds and
    ``cpu_bound`` (workers x loop CPU / Dask CPU on the running cluster)."""
    res = {"end_to_end": [], "running": [], "startup": [], "cpu_bound": []}
    for r in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        loop = run_loop(r)
        t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        e2e = run_dask(r)
        t_e2e = time.perf_counter() - t0
        t0 = time.perf_counter()
        cluster, client = start_cluster()
        t_start = time.perf_counter() - t0
        try:
            w0 = sum(client.run(_cpu).values())
            t0 = time.perf_counter()
            running = run_on_cluster(r, cluster.scheduler_address)
            t_run = time.perf_counter() - t0
            c_run = sum(client.run(_cpu).values()) - w0
        finally:
            client.close()
            cluster.close()
        for summary in (e2e, running):
            assert len(loop.done) == len(summary.done) == cases, (loop.failed, summary.failed)
        res["end_to_end"].append(t_loop / t_e2e)
        res["running"].append(t_loop / t_run)
        res["startup"].append(t_start)
        res["cpu_bound"].append(workers * c_loop / c_run)
        print(f"round {r + 1}: loop {t_loop:6.1f} s wall / {c_loop:5.1f} s CPU ({100 * c_loop / t_loop:3.0f} % of a "
              f"core) | dask {workers} workers end to end (cluster start-up included) {t_e2e:6.1f} s: ratio "
              f"{t_loop / t_e2e:.2f}x | on a running cluster {t_run:6.1f} s wall / {c_run:5.1f} s CPU "
              f"({100 * c_run / t_run:3.0f} % of a core; its start-up {t_start:.1f} s not timed): ratio "
              f"{t_loop / t_run:.2f}x | load {os.getloadavg()[0]:.1f}", flush=True)
    return res


def report(res: dict, rounds: int, workers: int) -> int:
    """Print the summary lines and the verdict (on the end-to-end ratio); the exit status."""
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"cluster already running (start-up {med['startup']:.1f} s not timed, e.g. --scheduler): median ratio "
          f"{med['running']:.2f}x - not what `--workers {workers}` gives")
    print(f"CPU-work bound on {workers} free cores ({workers} x loop CPU / Dask CPU, i.e. Dask overhead "
          f"only): {med['cpu_bound']:.2f}x - an estimate, not a measurement")
    ratio = med["end_to_end"]
    return exit_code(verdict(f"throughput ratio end to end, cluster start-up included (median of {rounds}) >= "
                             f"{TARGET_RATIO}x", ratio >= TARGET_RATIO,
                             f"{ratio:.2f}x, load {os.getloadavg()[0]:.1f}"))


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    ap.add_argument("--dask-defaults", action="store_true", help="plain LocalCluster (Dask's default worker settings)")
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster

    from lungai.radiomics import load_params
    from lungai.radiomics.batch import run_batch
    from lungai.radiomics.cluster import local_cluster, warm_worker
    from lungai.radiomics.manifest import write_synthetic_cohort

    params = load_params("default")  # every feature class, Original image
    segments = ["tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_synthetic_cohort(tmp / "cohort", args.cases, seed=11, shape=tuple(args.shape),
                                          spacing=(2.6, 2.6, 5.0))
        warm_worker()

        def start_cluster():
            if not args.dask_defaults:
                return local_cluster(args.workers)
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
            client = Client(cluster)
            client.run(warm_worker)
            return cluster, client

        res = compare_rounds(
            lambda r: run_batch(manifest, tmp / f"loop{r}.csv", params, workers=0, segments=segments),
            lambda r: run_batch(manifest, tmp / f"dask{r}.csv", params, workers=args.workers, segments=segments),
            lambda r, address: run_batch(manifest, tmp / f"running{r}.csv", params, scheduler=address,
                                         segments=segments),
            start_cluster, args.workers, args.rounds, args.cases)
    print(f"cases: {args.cases} phantoms {tuple(args.shape)}, 5 segments, all feature classes, Original image; "
          f"{os.cpu_count()} cores; end to end: lungai's cluster as `--workers {args.workers}` starts it; running "
          f"cluster: {'Dask default' if args.dask_defaults else 'lungai'} worker settings")
    return report(res, args.rounds, args.workers)


if __name__ == "__main__":
    sys.exit(main())
