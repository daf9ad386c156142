"""Benchmark: cohort radiomics throughput, Dask with 2 worker processes vs a single-process loop.

Both process the same synthetic cases with the same function (``lungai.radiomics.batch.process_case``)
in the same run, alternating loop / Dask for ``--rounds`` rounds (the median ratio is reported, which
damps changes of the machine's load).  The Dask cluster is the one ``radiomics-batch`` starts
(:func:`lungai.radiomics.cluster.local_cluster`, warmed up: pyradiomics imported) and is started
before timing; its start-up time is printed separately.  ``--dask-defaults`` uses a LocalCluster with
Dask's default worker settings instead, to show what the tuning in ``cluster.py`` is worth.  CPU seconds are printed too: when
the loop gets much less than one core, other load on the machine limits what 2 workers can show.
Target: ratio >= 1.8 on 2 free cores.

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


def compare_rounds(run_loop, run_dask, client, workers: int, rounds: int, cases: int) -> tuple[list, list]:
    """Alternate ``run_loop(r)`` and ``run_dask(r)`` (each returns a summary with ``done`` / ``failed``)
    for ``rounds`` rounds; print wall and CPU time per round; (wall ratios, CPU-work bounds)."""
    ratios, cpu_bounds = [], []
    for r in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        loop = run_loop(r)
        t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0
        w0 = sum(client.run(_cpu).values())
        t0 = time.perf_counter()
        dask = run_dask(r)
        t_dask = time.perf_counter() - t0
        c_dask = sum(client.run(_cpu).values()) - w0
        assert len(loop.done) == len(dask.done) == cases, (loop.failed, dask.failed)
        ratios.append(t_loop / t_dask)
        cpu_bounds.append(workers * c_loop / c_dask)
        print(f"round {r + 1}: loop {t_loop:6.1f} s wall / {c_loop:5.1f} s CPU ({100 * c_loop / t_loop:3.0f} % of a "
              f"core) | dask {workers} workers {t_dask:6.1f} s wall / {c_dask:5.1f} s CPU "
              f"({100 * c_dask / t_dask:3.0f} % of a core) | ratio {t_loop / t_dask:.2f}x | "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    return ratios, cpu_bounds


def main() -> int:
    ap = argparse.ArgumentParser()
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
        t0 = time.perf_counter()
        if args.dask_defaults:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
            client = Client(cluster)
            client.run(warm_worker)
        else:
            cluster, client = local_cluster(args.workers)
        t_start = time.perf_counter() - t0
        ratios, cpu_bounds = compare_rounds(
            lambda r: run_batch(manifest, tmp / f"loop{r}.csv", params, workers=0, segments=segments),
            lambda r: run_batch(manifest, tmp / f"dask{r}.csv", params, scheduler=cluster.scheduler_address,
                                segments=segments),
            client, args.workers, args.rounds, args.cases)
        client.close()
        cluster.close()
    print(f"cases: {args.cases} phantoms {tuple(args.shape)}, 5 segments, all feature classes, Original image; "
          f"{os.cpu_count()} cores; {'Dask default' if args.dask_defaults else 'lungai'} worker settings; cluster start-up {t_start:.1f} s (not timed)")
    print(f"CPU-work bound on {args.workers} free cores ({args.workers} x loop CPU / Dask CPU, i.e. Dask overhead "
          f"only): {statistics.median(cpu_bounds):.2f}x - an estimate, not a measurement")
    ratio = statistics.median(ratios)
    return exit_code(verdict(f"throughput ratio (median of {args.rounds}) >= {TARGET_RATIO}x", ratio >= TARGET_RATIO,
                             f"{ratio:.2f}x, load {os.getloadavg()[0]:.1f}"))


if __name__ == "__main__":
    sys.exit(main())
