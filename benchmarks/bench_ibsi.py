"""Speed and memory of the full IBSI-1 feature set against pyradiomics' own feature set (and MIRP), same run.

For each IBSI-1 configuration on the IBSI-1 CT phantom (../shared/data/ibsi1_ct_phantom):

- **pyradiomics**: one ``RadiomicsFeatureExtractor.execute`` with the configuration written as
  pyradiomics settings (its default feature set of the seven classes, its own resampling) - what a
  pyradiomics user runs for that configuration;
- **lungai**: :func:`lungai.radiomics.ibsi.compute_ibsi` - every IBSI-1 feature of the configuration
  (IBSI interpolation and re-segmentation, pyradiomics runs for the features it computes correctly,
  :mod:`lungai.radiomics.features` for the rest);

both in this process, alternating, ``--rounds`` times after a warm-up; medians and the ratio are
printed, of CPU time (``time.process_time``: the machine is shared, and CPU time does not count the
time a process waits for a core) and of wall time.  Peak memory: a fresh child process computes the
full set once and reports its own peak RSS (VmHWM: ru_maxrss would report this process's peak).
With ``--mirp-python`` (an environment with MIRP, e.g. made by
``python -m venv /tmp/mirp-venv && /tmp/mirp-venv/bin/pip install mirp==2.7.0``) MIRP runs the same
configuration with the settings of its own IBSI-1 test (benchmarks/mirp_ibsi.py; the
``extract_features`` call is timed, imports excluded), once per configuration.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ibsi.py --rounds 3 --mirp-python /tmp/mirp-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # this checkout's lungai, not an installed one
DATA = REPO.parent / "shared" / "data" / "ibsi1_ct_phantom"
sys.path.insert(0, str(REPO / "benchmarks"))
from _common import exit_code, verdict  # noqa: E402

MAX_RATIO = 2.0        # lungai's full IBSI-1 set / pyradiomics' own set, CPU time
MAX_RSS_MIB = 1024.0   # peak RSS of a process computing the full set
MIN_MIRP_RATIO = 20.0  # MIRP / lungai, CPU time

# the child's own peak (VmHWM, _common.peak_rss_mib): its ru_maxrss would be this process's peak, inherited
# across fork + exec (QA: 391 MiB for every configuration, the parent's)
_CHILD = """
import sys
from _common import peak_rss_mib
from lungai.io import read_image, read_mask
from lungai.radiomics.ibsi import CONFIGS, compute_ibsi
d = sys.argv[1]
image, mask = read_image(d + '/nifti/image/phantom.nii.gz'), read_mask(d + '/nifti/mask/mask.nii.gz')
before = peak_rss_mib()
values = compute_ibsi(image, mask, CONFIGS[sys.argv[2]])
print(len(values), before, peak_rss_mib())
"""


def pyradiomics_own(image, mask, config: str) -> int:
    from radiomics import featureextractor

    from lungai.radiomics.params import PYRADIOMICS_SETTINGS

    settings = {"label": 1, "voxelArrayShift": 0, "symmetricalGLCM": True, "distances": [1], "gldm_a": 0,
                "additionalInfo": False, **PYRADIOMICS_SETTINGS[config]}
    ex = featureextractor.RadiomicsFeatureExtractor(**settings)   # its default: every class but shape2D
    return sum(1 for k in ex.execute(image, mask) if k.startswith("original_"))


def lungai_full(image, mask, config: str) -> int:
    from lungai.radiomics.ibsi import CONFIGS, compute_ibsi

    return len(compute_ibsi(image, mask, CONFIGS[config]))


def peak_memory(config: str) -> tuple[int, float, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(DATA), config], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'benchmarks'}", "OMP_NUM_THREADS": "1",
                                             "PATH": "/usr/bin:/bin"},
                         check=True)
    n, before, peak = out.stdout.split()
    return int(n), float(before), float(peak)


def mirp(python: str, config: str, exact: bool) -> dict:
    cmd = [python, str(REPO / "benchmarks" / "mirp_ibsi.py"), "--config", config, "--data", str(DATA)]
    out = subprocess.run(cmd + (["--no-approximation"] if exact else []), capture_output=True, text=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list("ABCDE"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mirp-python", default=None, help="python of an environment with mirp installed")
    ap.add_argument("--mirp-exact", action="store_true", help="also MIRP with no_approximation=True (slow)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs the IBSI-1 phantom at {DATA}")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    from lungai.io import read_image, read_mask

    image = read_image(DATA / "nifti/image/phantom.nii.gz")
    mask = read_mask(DATA / "nifti/mask/mask.nii.gz")
    rows, oks = [], []
    for config in args.configs:
        n_py, n_ibsi = pyradiomics_own(image, mask, config), lungai_full(image, mask, config)   # warm-up
        times = {k: [] for k in ("py", "py_cpu", "lungai", "lungai_cpu")}
        for _ in range(args.rounds):
            for key, fn in (("py", pyradiomics_own), ("lungai", lungai_full)):
                t, c = time.perf_counter(), time.process_time()
                fn(image, mask, config)
                times[key].append(time.perf_counter() - t)
                times[f"{key}_cpu"].append(time.process_time() - c)
        med = {k: statistics.median(v) for k, v in times.items()}
        _, base_rss, peak_rss = peak_memory(config)
        row = {"config": config, "pyradiomics_features": n_py, "lungai_features": n_ibsi,
               "pyradiomics_cpu_s": med["py_cpu"], "lungai_cpu_s": med["lungai_cpu"],
               "pyradiomics_wall_s": med["py"], "lungai_wall_s": med["lungai"],
               "ratio_cpu": med["lungai_cpu"] / med["py_cpu"], "ratio_wall": med["lungai"] / med["py"],
               "peak_rss_mib": peak_rss, "rss_after_imports_mib": base_rss}
        line = (f"{config}: pyradiomics {med['py_cpu']:.2f} s CPU ({n_py} features), lungai full IBSI "
                f"{med['lungai_cpu']:.2f} s CPU ({n_ibsi} features): ratio {row['ratio_cpu']:.2f}x CPU, "
                f"{row['ratio_wall']:.2f}x wall (target <= {MAX_RATIO:g}); peak RSS {peak_rss:.0f} MiB (target <= {MAX_RSS_MIB:.0f})")
        if args.mirp_python:
            m = mirp(args.mirp_python, config, exact=False)
            row.update(mirp_cpu_s=m["cpu_seconds"], mirp_wall_s=m["seconds"], mirp_features=m["features"],
                       mirp_rss_mib=m["peak_rss_mib"], mirp_over_lungai_cpu=m["cpu_seconds"] / med["lungai_cpu"],
                       mirp_over_lungai_wall=m["seconds"] / med["lungai"])
            line += (f"; MIRP {m['cpu_seconds']:.1f} s CPU ({m['features']} features, {m['peak_rss_mib']:.0f} MiB): "
                     f"lungai {row['mirp_over_lungai_cpu']:.1f}x faster CPU, {row['mirp_over_lungai_wall']:.1f}x "
                     f"wall (target >= {MIN_MIRP_RATIO:g})")
            if args.mirp_exact:
                m = mirp(args.mirp_python, config, exact=True)
                row.update(mirp_exact_cpu_s=m["cpu_seconds"],
                           mirp_exact_over_lungai_cpu=m["cpu_seconds"] / med["lungai_cpu"])
                line += f"; MIRP exact {m['cpu_seconds']:.1f} s CPU ({row['mirp_exact_over_lungai_cpu']:.0f}x)"
        rows.append(row)
        print(line, flush=True)
        oks.append(verdict(f"{config}: lungai / pyradiomics CPU <= {MAX_RATIO:g}x", row["ratio_cpu"] <= MAX_RATIO,
                           f"{row['ratio_cpu']:.2f}x"))
        oks.append(verdict(f"{config}: peak RSS <= {MAX_RSS_MIB:.0f} MiB", peak_rss <= MAX_RSS_MIB, f"{peak_rss:.0f} MiB"))
        if args.mirp_python:
            oks.append(verdict(f"{config}: MIRP / lungai CPU >= {MIN_MIRP_RATIO:g}x",
                               row["mirp_over_lungai_cpu"] >= MIN_MIRP_RATIO, f"{row['mirp_over_lungai_cpu']:.1f}x"))
    print(json.dumps(rows))
    return exit_code(*oks)


if __name__ == "__main__":
    sys.exit(main())
