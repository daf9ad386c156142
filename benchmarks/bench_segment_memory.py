"""Benchmark: peak memory of automatic ``lungai segment`` on a (thin-slice) CT, against a baseline in the same run
(run by hand - CI (.ci/run) runs the tests, no benchmark).

Each runs in its own spawned process, whose own peak RSS (``VmHWM``) is printed:

- **baseline**: what any implementation must hold at the end - the CT read, and its four results on the CT's grid
  (tumour mask uint8; probability, uncertainty, mutual information float32: 13 bytes a voxel), made as zero images;
- **lungai**: ``lungai segment CT -o OUT`` (automatic mode, the default model: lungs, the lungs' box through the
  ensemble, the maps on the CT's grid, the files written).

Target: lungai's peak <= ``TARGET_PEAK_RATIO`` x the baseline's.  LUNG1-002 resampled in z to 1 mm slices
(512 x 512 x 333, 87.3 M voxels), 2026-12-05, same CT, each on the same machine: baseline 1374 MB (16.5 bytes a
voxel); lungai 2723 MB (1.98x: FAIL) when each map was a full-grid numpy array copied by ``GetImageFromArray`` while
the model grid's maps and the crop's labels were still held; 2263 MB (27.2 bytes a voxel, 1.65x: PASS) with the maps
pasted into zero images in place (``lungai.seg.preprocess.paste_image``) and those arrays freed first (the four
images written are byte-identical, result.json too).

    .venv/bin/python benchmarks/bench_segment_memory.py --ct /tmp/ct_1mm.nii.gz
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_code, peak_rss_mib, verdict  # noqa: E402

TARGET_PEAK_RATIO = 1.7


def _baseline_in_child(path: str) -> float:
    """Peak RSS MB of reading the CT at ``path`` and holding its four result images, in this (child) process."""
    ct = sitk.ReadImage(path)
    results = [sitk.Image(ct.GetSize(), t) for t in (sitk.sitkUInt8, sitk.sitkFloat32, sitk.sitkFloat32,
                                                     sitk.sitkFloat32)]
    for img in results:
        img.CopyInformation(ct)
    return peak_rss_mib()


def _segment_in_child(path: str, out: str) -> float:
    """Peak RSS MB of ``lungai segment`` on the CT at ``path`` (results in ``out``), in this (child) process."""
    from lungai.cli import main

    if main(["segment", path, "-o", out]) != 0:
        raise RuntimeError("lungai segment failed")
    return peak_rss_mib()


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    ap.add_argument("--ct", required=True, help="a (thin-slice) CT, e.g. a real CT resampled to 1 mm slices")
    args = ap.parse_args()
    voxels = float(np.prod(sitk.ReadImage(args.ct).GetSize()))
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        with spawn.Pool(1, maxtasksperchild=1) as pool:
            base = pool.apply(_baseline_in_child, (args.ct,))
        with spawn.Pool(1, maxtasksperchild=1) as pool:
            ours = pool.apply(_segment_in_child, (args.ct, str(Path(tmp) / "seg")))
    per = 1024.0 * 1024.0 / voxels
    print(f"{args.ct}: {voxels / 1e6:.1f} M voxels")
    print(f"baseline (read + the four result images): peak RSS {base:.0f} MB ({base * per:.1f} bytes/voxel)")
    print(f"lungai segment (automatic): peak RSS {ours:.0f} MB ({ours * per:.1f} bytes/voxel)")
    ratio = ours / base
    return exit_code(verdict(f"segment peak RSS <= {TARGET_PEAK_RATIO:.1f} x baseline", ratio <= TARGET_PEAK_RATIO,
                             f"{ratio:.2f}x"))


if __name__ == "__main__":
    sys.exit(main())
