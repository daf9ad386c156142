"""Benchmark: lung masks on a 512 x 512 x 150 phantom (target <= 10 s on the CI machine).

Baseline, measured in the same run on the same CT: the textbook minimum of any threshold
method - HU < -400, 3D connected components, keep the two largest, 3D hole filling - which
neither removes airways nor keeps pleural tumours.  Prints wall times, the ratio, Dice of both
against the phantom's truth, and the peak RSS of the process.

    .venv/bin/python benchmarks/bench_lungs.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.lungs import LEFT, RIGHT, segment_lungs
from lungai.overlap import dice
from lungai.synthetic import PhantomSpec, TumourSpec, labels as L, make_phantom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_code, verdict  # noqa: E402

TARGET_S = 10.0


def baseline(ct: sitk.Image) -> np.ndarray:
    hu = sitk.GetArrayViewFromImage(ct)
    air = hu < -400
    lab, _ = ndimage.label(air)
    border = np.unique(np.concatenate([lab[:, 0].ravel(), lab[:, -1].ravel(), lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    sizes[border] = 0
    keep = np.argsort(sizes)[::-1][:2]
    return ndimage.binary_fill_holes(np.isin(lab, keep))


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    phantom = make_phantom(PhantomSpec(shape=(512, 512, 150), spacing=(0.7, 0.7, 2.0),
                                       tumour=TumourSpec(diameter_mm=40, location="juxta_pleural")), seed=1)
    lab = sitk.GetArrayFromImage(phantom.labels)
    truth = L.lung_truth(lab, phantom.meta["tumour"]["side"])
    both = truth["right"] | truth["left"]

    t_base, base_mask = best_of(lambda: baseline(phantom.ct), args.repeats)
    t_ours, result = best_of(lambda: segment_lungs(phantom.ct), args.repeats)
    pred = sitk.GetArrayFromImage(result.labels)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"CT 512x512x150 @0.7x0.7x2.0 mm, best of {args.repeats}")
    print(f"baseline (threshold + components + fill): {t_base:6.2f} s  Dice(both lungs) {dice(base_mask, both):.3f}")
    print(f"lungai.lungs.segment_lungs:               {t_ours:6.2f} s  Dice right {dice(pred == RIGHT, truth['right']):.3f}"
          f" left {dice(pred == LEFT, truth['left']):.3f}")
    print(f"ratio lungai / baseline: {t_ours / t_base:.2f}x")
    print(f"peak RSS of this process: {rss_mb:.0f} MB")
    return exit_code(verdict(f"lung masks <= {TARGET_S:.0f} s", t_ours <= TARGET_S,
                             f"{t_ours:.2f} s, {t_ours / TARGET_S:.2f} of target"))


if __name__ == "__main__":
    sys.exit(main())
