"""Benchmark: ``lungai cohort`` throughput, Dask with 2 worker processes vs a single-process loop.

Synthetic DICOM RT exports (``lungai.dicom.synthetic.write_rt_study``: CT series + RTSTRUCT with GTV,
Lung_R, Lung_L + RTDOSE) of ``--cases`` phantoms; both runs process the same patients with the same
function (``lungai.dicom.cohort.process_patient``: RTSTRUCT lungs and GTV rasterised, radiomics of
the 5 standard segments with every feature class, dose features) through ``run_cohort`` (scan,
inventory, per-patient results, RP table) in the same run, alternating loop / Dask for ``--rounds``
rounds; the median ratio is reported.  The Dask cluster is the one ``lungai cohort`` starts
(:func:`lungai.radiomics.cluster.local_cluster`, warmed), started before timing (start-up printed
separately).  CPU seconds are printed: when the loop gets much less than one core, other load on
the machine limits what 2 workers can show.  Target: ratio >= 1.8 on 2 free cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cohort.py [--cases 16] [--workers 2] [--rounds 2]
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


def write_export(root: Path, n: int, shape) -> None:
    from lungai.dicom.synthetic import write_rt_study
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    for i in range(n):
        spec = PhantomSpec(shape=tuple(shape), spacing=(2.6, 2.6, 5.0), noise_hu=15.0,
                           tumour=TumourSpec(diameter_mm=25.0 + 3 * i, location="free",
                                             side="right" if i % 2 == 0 else "left"))
        write_rt_study(root, make_phantom(spec, seed=100 + i), f"BENCH{i:02d}", dose="relative")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import exit_code, verdict
    from bench_radiomics_batch import TARGET_RATIO, compare_rounds

    from lungai.dicom.cohort import run_cohort
    from lungai.radiomics import load_params
    from lungai.radiomics.cluster import local_cluster, warm_worker

    params = load_params("default")  # every feature class, Original image
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_export(tmp / "export", args.cases, args.shape)
        warm_worker()
        t0 = time.perf_counter()
        cluster, client = local_cluster(args.workers)
        t_start = time.perf_counter() - t0
        ratios, cpu_bounds = compare_rounds(
            lambda r: run_cohort(tmp / "export", tmp / f"loop{r}", params, workers=0),
            lambda r: run_cohort(tmp / "export", tmp / f"dask{r}", params, scheduler=cluster.scheduler_address),
            client, args.workers, args.rounds, args.cases)
        client.close()
        cluster.close()
    print(f"patients: {args.cases} synthetic DICOM RT studies {tuple(args.shape)} (CT + RTSTRUCT + RTDOSE), "
          f"5 segments, all feature classes, dose features; {os.cpu_count()} cores; cluster start-up "
          f"{t_start:.1f} s (not timed)")
    print(f"CPU-work bound on {args.workers} free cores ({args.workers} x loop CPU / Dask CPU, i.e. Dask overhead "
          f"only): {statistics.median(cpu_bounds):.2f}x - an estimate, not a measurement")
    ratio = statistics.median(ratios)
    return exit_code(verdict(f"throughput ratio (median of {args.rounds}) >= {TARGET_RATIO}x", ratio >= TARGET_RATIO,
                             f"{ratio:.2f}x, load {os.getloadavg()[0]:.1f}"))


if __name__ == "__main__":
    sys.exit(main())
