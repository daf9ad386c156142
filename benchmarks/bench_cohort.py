"""Benchmark: ``lungai cohort`` throughput, Dask with 2 worker processes vs a single-process loop.

Synthetic DICOM RT exports (``lungai.dicom.synthetic.write_rt_study``: CT series + RTSTRUCT with GTV,
Lung_R, Lung_L + RTDOSE) of ``--cases`` phantoms; both runs process the same patients with the same
function (``lungai.dicom.cohort.process_patient``: RTSTRUCT lungs and GTV rasterised, radiomics of
the 5 standard segments with every feature class, dose features) through ``run_cohort`` (scan,
inventory, per-patient results, RP table) in the same run, alternating loop / Dask for ``--rounds``
rounds; the median ratios are reported.  The headline and the verdict are end to end:
``run_cohort(..., workers=2)`` without a scheduler, what ``lungai cohort`` runs - the local cluster
(:func:`lungai.radiomics.cluster.local_cluster`) is started, warmed and closed inside the call, its
start-up on the clock as on the user's.  A second, labelled line gives the ratio on a cluster started
before the timing (``scheduler=``, as with ``--scheduler``; start-up printed, not timed)
(``bench_radiomics_batch.compare_rounds``).  CPU seconds are printed: when the loop gets much less than
one core, other load on the machine limits what 2 workers can show.  Target: end-to-end ratio >= 1.8 on
2 free cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cohort.py [--cases 16] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
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
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_radiomics_batch import compare_rounds, report

    from lungai.dicom.cohort import run_cohort
    from lungai.radiomics import load_params
    from lungai.radiomics.cluster import local_cluster, warm_worker

    params = load_params("default")  # every feature class, Original image
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_export(tmp / "export", args.cases, args.shape)
        warm_worker()
        res = compare_rounds(
            lambda r: run_cohort(tmp / "export", tmp / f"loop{r}", params, workers=0),
            lambda r: run_cohort(tmp / "export", tmp / f"dask{r}", params, workers=args.workers),
            lambda r, address: run_cohort(tmp / "export", tmp / f"running{r}", params, scheduler=address),
            lambda: local_cluster(args.workers), args.workers, args.rounds, args.cases)
    print(f"patients: {args.cases} synthetic DICOM RT studies {tuple(args.shape)} (CT + RTSTRUCT + RTDOSE), "
          f"5 segments, all feature classes, dose features; {os.cpu_count()} cores")
    return report(res, args.rounds, args.workers)

if __name__ == "__main__":
    sys.exit(main())
