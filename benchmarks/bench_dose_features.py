"""Benchmark: memory and time of the dose features (``lungai dose-features``, ``cohort``, the demo) on a thin-slice CT.

QA (memory on thin-slice planning CTs): ``dose_features`` resampled the dose onto the whole CT grid as float64 and
copied it into numpy - for a 512 x 512 x 401 CT (0.8 mm slices) 840 MB twice, the step's peak 2.3 GB - though the
features read only the voxels of the lungs and the GTV (their box: about a fifth of such a grid).  Now only that box is
resampled.

Same run, same CT, masks and dose, each path in its own fresh (spawned) process so that its peak memory (VmHWM) is
its own:

- **old**: the dose on the whole CT grid (``dose_on_grid(dose, ct)``), then ``features_from_arrays`` - what
  ``dose_features`` did before;
- **new**: ``lungai.dose.dose_features`` (the box of the lungs and GTV resampled).

Prints the wall time and peak memory of each (and the peak over what reading the inputs took), their ratios, and
checks that both give the same features (to 1e-12 relative).  Target: the new path's peak over the inputs at most
half the old one's.

Cases: LUNG1-003 of ../shared/data/nsclc_whole_ct interpolated to ``--slices`` slices (default 401: 0.8 mm; linear CT,
nearest-neighbour labels; written to a temporary folder deleted at the end) with a made-up dose on a 3 mm grid (a
Gaussian round the GTV); the lungai synthetic phantom at 512 x 512 x ``--slices`` without ../shared.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dose_features.py --case real --slices 401
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _common import bench_temp_dir, exit_code, exit_on_sigterm, peak_rss_mib, rss_mib, verdict  # noqa: E402
from bench_radiomics_ct import SHARED, _phantom_case, _real_case, wait_result  # noqa: E402

TARGET_RATIO = 2.0      # old / new peak over the inputs


def write_dose(ct_path: Path, tumour_path: Path, out: Path, spacing_mm: float = 3.0) -> None:
    """A made-up dose (Gy, float32) on a coarser grid over the CT: 60 Gy * exp(-(r / 60 mm)^2) round the GTV's centre."""
    ct = sitk.ReadImage(str(ct_path))
    tumour = sitk.ReadImage(str(tumour_path))
    centre = np.argwhere(sitk.GetArrayViewFromImage(tumour) > 0).mean(axis=0)[::-1]
    c = np.asarray(tumour.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in centre)))
    size = [int(n * s / spacing_mm) for n, s in zip(ct.GetSize(), ct.GetSpacing())]
    k, j, i = np.meshgrid(*(np.arange(n, dtype=float) for n in size[::-1]), indexing="ij")
    m = np.asarray(ct.GetDirection()).reshape(3, 3) * spacing_mm
    pts = np.stack([i, j, k], axis=-1) @ m.T + np.asarray(ct.GetOrigin())
    dose = sitk.GetImageFromArray((60.0 * np.exp(-(np.linalg.norm(pts - c, axis=-1) / 60.0) ** 2)).astype(np.float32))
    dose.SetSpacing((spacing_mm,) * 3)
    dose.SetOrigin(ct.GetOrigin())
    dose.SetDirection(ct.GetDirection())
    sitk.WriteImage(dose, str(out))


def _run(path: str, ct: str, tumour: str, lungs: str, dose: str, queue) -> None:
    """One path in a fresh process: (seconds, peak RSS MiB, RSS MiB once the inputs are read, feature row)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lungai.dose import dose_features
    from lungai.dose.features import features_from_arrays
    from lungai.dose.resample import dose_on_grid
    from lungai.io import read_ct, read_mask

    image, gtv, lung_map, dose_img = read_ct(ct), read_mask(tumour), read_mask(lungs), sitk.ReadImage(dose)
    inputs = rss_mib()
    start = time.perf_counter()
    if path == "old":
        row = features_from_arrays(dose_on_grid(dose_img, image), sitk.GetArrayViewFromImage(lung_map) > 0,
                                   sitk.GetArrayViewFromImage(gtv) > 0, case="c")
    else:
        row = dose_features(dose_img, image, lung_map, gtv, case="c")
    queue.put((time.perf_counter() - start, peak_rss_mib(), inputs, row))


def run_path(path: str, files) -> tuple:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(path, *map(str, files), queue))
    proc.start()
    try:
        return wait_result(proc, queue, f"the {path!r} path")
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()


def same_rows(a: dict, b: dict, rel: float = 1e-12) -> bool:
    return list(a) == list(b) and all(
        a[k] == b[k] if isinstance(a[k], str) else (np.isnan(a[k]) and np.isnan(b[k])) or np.isclose(a[k], b[k], rtol=rel, atol=0)
        for k in a)


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=["real", "phantom"], default="real" if SHARED.is_dir() else "phantom")
    ap.add_argument("--slices", type=int, default=401, help="slices (real: interpolated; 0 = native)")
    args = ap.parse_args()
    exit_on_sigterm()
    with bench_temp_dir() as tmp:   # the copy of the CT is deleted at the end, on errors and on SIGTERM
        *files, label = (_real_case(tmp, args.slices or None) if args.case == "real"
                         else _phantom_case(tmp, args.slices or 300))
        write_dose(files[0], files[1], tmp / "dose.nii.gz")
        files.append(tmp / "dose.nii.gz")
        size = sitk.ImageFileReader()
        size.SetFileName(str(files[0]))
        size.ReadImageInformation()
        print(f"case: {label}, size {size.GetSize()}, spacing {tuple(round(s, 3) for s in size.GetSpacing())}")
        print(f"load: {os.getloadavg()[0]:.1f} (1-min load average), {os.cpu_count()} CPUs")
        old, new = run_path("old", files), run_path("new", files)
        for name, (sec, peak, inputs, _) in (("old (whole grid)", old), ("new (box)", new)):
            print(f"{name:17s} {sec:6.1f} s   peak {peak:6.0f} MiB ({peak - inputs:6.0f} MiB over the inputs' "
                  f"{inputs:.0f} MiB)")
        over_old, over_new = old[1] - old[2], new[1] - new[2]
        print(f"old / new: time {old[0] / new[0]:.1f}x, peak {old[1] / new[1]:.1f}x, peak over the inputs "
              f"{over_old / max(over_new, 1.0):.1f}x")
        same = same_rows(old[3], new[3])
        print(f"features the same (rel 1e-12): {same}  (MLD {new[3]['dose_mld_gy']:.4f} Gy, "
              f"V20 {new[3]['dose_v20_pct']:.3f} %)")
        ok = verdict(f"peak over the inputs old / new >= {TARGET_RATIO:.0f}x and the same features",
                     same and over_old >= TARGET_RATIO * max(over_new, 1.0),
                     f"{over_old:.0f} / {over_new:.0f} MiB")
    return exit_code(ok)


if __name__ == "__main__":
    sys.exit(main())
