"""Benchmark: cohort radiomics throughput, Dask with 2 worker processes vs a single-process loop.

Both process the same synthetic cases with the same function (``lungai.radiomics.batch.process_case``)
in the same run.  The Dask cluster is started and warmed up (pyradiomics imported) before timing;
its start-up time is printed separately.  Target: ratio >= 1.8 on 2 free cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_radiomics_batch.py [--cases 8] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _warm(_=None):
    import radiomics.featureextractor  # noqa: F401
    import lungai.radiomics.extract  # noqa: F401
    return os.getpid()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster

    from lungai.radiomics import load_params
    from lungai.radiomics.batch import run_batch
    from lungai.radiomics.manifest import write_synthetic_cohort

    params = load_params("default")  # every feature class, Original image
    segments = ["tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_synthetic_cohort(tmp / "cohort", args.cases, seed=11, shape=tuple(args.shape),
                                          spacing=(2.6, 2.6, 5.0))
        _warm()
        t0, c0 = time.perf_counter(), time.process_time()
        loop = run_batch(manifest, tmp / "loop.csv", params, workers=0, segments=segments)
        t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
        client = Client(cluster)
        client.run(_warm)
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        dask = run_batch(manifest, tmp / "dask.csv", params, scheduler=cluster.scheduler_address, segments=segments)
        t_dask = time.perf_counter() - t0
        client.close()
        cluster.close()
        assert len(loop.done) == len(dask.done) == args.cases, (loop.failed, dask.failed)

    load = os.getloadavg()
    print(f"cases: {args.cases} phantoms {tuple(args.shape)}, 5 segments, all feature classes, Original image")
    print(f"single-process loop : {t_loop:7.1f} s  ({args.cases / t_loop:.2f} cases/s); it got "
          f"{100 * c_loop / t_loop:.0f} % of one core (below ~95 % = other load on the machine)")
    print(f"dask {args.workers} workers      : {t_dask:7.1f} s  ({args.cases / t_dask:.2f} cases/s)"
          f"  + cluster start-up {t_start:.1f} s")
    print(f"throughput ratio    : {t_loop / t_dask:.2f}x (target >= 1.8x); incl. start-up "
          f"{t_loop / (t_dask + t_start):.2f}x; load average at end {load[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
