"""Benchmark: radiomics of tumour, right lung, left lung, lungs and lungs minus tumour on a whole CT.

Target (issue 16.5): <= 30 s for a 512 x 512 x ~300 CT on 2 cores with the default settings.

Same run, same CT, same segments, all 7 feature classes, Original image:

- **old**: what lungai did before - ``RadiomicsFeatureExtractor(params).execute(ct, mask)`` on the
  whole CT at native resolution for every segment (pyradiomics' own shape class);
- **new**: ``lungai.radiomics.extract`` with the ``default`` preset (segments cropped, lung
  segments on the 2 mm IBSI grid resampled once, shape mesh coefficients in pieces), serially
  and with ``--workers`` processes.

Each path runs in its own fresh process (spawn), so its peak memory (VmHWM) is its own.
Prints wall times, the ratios and peak memory, and the tumour's shape/first-order values of both
paths (the tumour keeps its native grid, so they agree).

Cases: a real planning CT from ../shared/data/nsclc_whole_ct (LUNG1-003: GTV-1 and the lung
contours; ``--slices 300`` interpolates it linearly to ~300 slices, labels nearest-neighbour,
written to a temporary folder that is deleted at the end), and the lungai synthetic phantom at
512 x 512 x 300 for runs without ../shared.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_radiomics_ct.py --case real --slices 300
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_radiomics_ct.py --case phantom
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue as queue_module
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _common import bench_temp_dir, exit_code, exit_on_sigterm, peak_rss_mib, verdict  # noqa: E402

SHARED = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data"))
TARGET_S = 30.0
SEGMENTS = ["tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour"]
CHECK = ["original_shape_VoxelVolume", "original_shape_MeshVolume", "original_shape_SurfaceArea",
         "original_shape_Maximum3DDiameter", "original_firstorder_Mean", "original_glcm_Contrast"]


def _real_case(tmp: Path, slices: int | None) -> tuple[Path, Path, Path, str]:
    """LUNG1-003 as CT + tumour mask + lung label map (1 right, 2 left; the GTV added to its lung)."""
    from scipy import ndimage

    d = SHARED / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / "LUNG1-003_ct.nii.gz"))
    lab = sitk.ReadImage(str(d / "LUNG1-003_labels.nii.gz"))
    if slices:
        size, sp = list(ct.GetSize()), list(ct.GetSpacing())
        sp[2] = sp[2] * (size[2] - 1) / (slices - 1)
        size[2] = slices
        ref = sitk.Image(size, sitk.sitkInt16)
        ref.SetSpacing(sp)
        ref.SetOrigin(ct.GetOrigin())
        ref.SetDirection(ct.GetDirection())
        ct = sitk.Resample(ct, ref, sitk.Transform(), sitk.sitkLinear, -1024, sitk.sitkInt16)
        lab = sitk.Resample(lab, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    arr = sitk.GetArrayFromImage(lab)
    tumour = arr == 1
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[arr == 3], lungs[arr == 4] = 1, 2
    near = lungs[ndimage.binary_dilation(tumour, iterations=3) & ~tumour]
    lungs[tumour] = 1 if (near == 1).sum() >= (near == 2).sum() else 2  # lung masks include the tumour
    paths = tmp / "ct.nii.gz", tmp / "tumour.nii.gz", tmp / "lungs.nii.gz"
    sitk.WriteImage(ct, str(paths[0]))
    for arr_, p in ((tumour.astype(np.uint8), paths[1]), (lungs, paths[2])):
        img = sitk.GetImageFromArray(arr_)
        img.CopyInformation(ct)
        sitk.WriteImage(img, str(p))
    return (*paths, f"LUNG1-003{' interpolated to ' + str(slices) + ' slices' if slices else ''}")


def _phantom_case(tmp: Path, slices: int) -> tuple[Path, Path, Path, str]:
    from lungai.synthetic import PhantomSpec, TumourSpec, labels as L, make_phantom

    phantom = make_phantom(PhantomSpec(shape=(512, 512, slices), spacing=(0.7, 0.7, 1.0),
                                       tumour=TumourSpec(diameter_mm=50, location="juxta_pleural")), seed=3)
    arr = sitk.GetArrayFromImage(phantom.labels)
    truth = L.lung_truth(arr, phantom.meta["tumour"]["side"])
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[truth["right"]], lungs[truth["left"]] = 1, 2
    paths = tmp / "ct.nii.gz", tmp / "tumour.nii.gz", tmp / "lungs.nii.gz"
    sitk.WriteImage(phantom.ct, str(paths[0]))
    for arr_, p in ((L.tumour_mask(arr).astype(np.uint8), paths[1]), (lungs, paths[2])):
        img = sitk.GetImageFromArray(arr_)
        img.CopyInformation(phantom.ct)
        sitk.WriteImage(img, str(p))
    return (*paths, f"lungai synthetic phantom 512 x 512 x {slices} (0.7 x 0.7 x 1 mm)")


def _run(path: str, ct: str, tumour: str, lungs: str, workers: int, segments: list, queue) -> None:
    """One path in a fresh process: (seconds, peak RSS MiB, {segment: {feature: value}})."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lungai.io import read_ct, read_mask
    from lungai.radiomics import extract, load_params, segments_from_masks
    from lungai.radiomics.extract import result_rows

    image = read_ct(ct)
    segs = segments_from_masks(image, tumour=read_mask(tumour), lungs=read_mask(lungs), names=segments)
    params = load_params("default")
    start = time.perf_counter()
    if path == "old":
        from radiomics import featureextractor

        params.pop("lungai", None)
        extractor = featureextractor.RadiomicsFeatureExtractor(params)
        rows = []
        for name, mask in segs.items():
            rows += result_rows(extractor.execute(image, mask, label=1), "c", name)
    else:
        rows = extract(image, segs, params, case="c", workers=workers).features.itertuples(index=False)
    seconds = time.perf_counter() - start
    values: dict = {}
    for r in rows:
        key = f"{r[2]}_{r[3]}_{r[4]}"
        if key in CHECK:
            values.setdefault(r[1], {})[key] = r[5]
    queue.put((seconds, peak_rss_mib(), values))


def time_ratio_line(segments, old_s: float, new_s: float, par_s: float, workers: int) -> str:
    """The old / new time ratio, named for what it is: a same-output speed-up only when every segment stays on the
    CT's grid in both paths (the tumour); the lung segments are on the CT's grid in the old path and on the 2 mm
    grid in the new one, so their features differ and the ratio is of two different computations."""
    ratio = f"{old_s / new_s:.1f}x serial, {old_s / par_s:.1f}x with {workers} processes"
    if all(seg == "tumour" for seg in segments):
        return f"speed-up old / new (same grid, same values): {ratio}"
    return (f"time old (native grid) / new (2 mm grid for the lung segments): {ratio} - not a same-output speed-up: "
            "the lung segments' features differ between the grids (below)")


def run_path(path, files, workers=1, segments=SEGMENTS, poll_s=1.0):
    """Run one path in a fresh (spawned) process and return its result; a process that dies without one
    (killed for memory, an error) raises RuntimeError naming its exit code instead of waiting forever."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(path, *map(str, files), workers, list(segments), queue))
    proc.start()
    try:
        return wait_result(proc, queue, f"the {path!r} path", poll_s)
    finally:
        if proc.is_alive():       # stopped (SIGTERM, Ctrl-C, an error here): the child does not outlive the run
            proc.terminate()
        proc.join()


def wait_result(proc, queue, what: str, poll_s: float = 1.0):
    """``queue.get()`` that gives up when ``proc`` has ended without putting a result."""
    while True:
        try:
            return queue.get(timeout=poll_s)
        except queue_module.Empty:
            if proc.is_alive():
                continue
        try:   # ended: what it put just before exiting may still be in the pipe
            return queue.get(timeout=poll_s)
        except queue_module.Empty:
            code = proc.exitcode
            how = (f"was killed by signal {-code}" + (" (SIGKILL: out of memory?)" if code == -9 else "")
                   if code is not None and code < 0 else f"exited with code {code}")
            raise RuntimeError(f"the process measuring {what} {how} without a result") from None


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=["real", "phantom"], default="real" if SHARED.is_dir() else "phantom")
    ap.add_argument("--slices", type=int, default=300, help="slices (real: interpolated; 0 = native)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel new path")
    ap.add_argument("--skip-old", action="store_true", help="only the new path (the old one takes minutes)")
    ap.add_argument("--write-case", metavar="DIR", default=None,
                    help="only write the case (ct, tumour, lungs .nii.gz) into DIR and print the tumour centre "
                         "(LPS mm, for `lungai demo --seed-point`)")
    ap.add_argument("--segments", nargs="+", default=SEGMENTS, choices=SEGMENTS,
                    help="segments of both paths (default all five)")
    args = ap.parse_args()
    exit_on_sigterm()  # a killed run still deletes its copy of the CT
    if args.write_case:
        folder = Path(args.write_case)
        folder.mkdir(parents=True, exist_ok=True)
        *files, label = _real_case(folder, args.slices or None) if args.case == "real" else _phantom_case(folder, args.slices)
        tumour = sitk.ReadImage(str(files[1]))
        centre = np.argwhere(sitk.GetArrayViewFromImage(tumour) > 0).mean(axis=0)[::-1]
        point = tumour.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in centre))
        print(f"{label} -> {folder}; tumour centre (LPS mm): {','.join(f'{v:.1f}' for v in point)}")
        return 0
    ok = True
    with bench_temp_dir() as tmp:   # the copy of the CT is deleted at the end, on errors and on SIGTERM
        files = (_real_case(tmp, args.slices or None) if args.case == "real" else _phantom_case(tmp, args.slices))
        *files, label = files
        size = sitk.ImageFileReader()
        size.SetFileName(str(files[0]))
        size.ReadImageInformation()
        print(f"case: {label}, size {size.GetSize()}, spacing {tuple(round(s, 3) for s in size.GetSpacing())}")
        print(f"load: {os.getloadavg()[0]:.1f} (1-min load average), {os.cpu_count()} CPUs")
        print(f"segments: {' '.join(args.segments)}")
        new = run_path("new", files, 1, args.segments)
        print(f"new, serial:            {new[0]:7.1f} s   peak {new[1]:6.0f} MiB")
        par = run_path("new", files, args.workers, args.segments)
        print(f"new, {args.workers} processes:       {par[0]:7.1f} s   peak {par[1]:6.0f} MiB (parent; workers similar)")
        best = min(new[0], par[0])
        part = "" if list(args.segments) == SEGMENTS else (
            f" - partial run: {len(args.segments)} of {len(SEGMENTS)} segments ({' '.join(args.segments)}), the "
            "target is for all five")
        ok = verdict(f"target <= {TARGET_S:.0f} s{part}", best <= TARGET_S, f"{best:.1f} s")
        if not args.skip_old:
            old = run_path("old", files, 1, args.segments)
            print(f"old (native, whole CT): {old[0]:7.1f} s   peak {old[1]:6.0f} MiB")
            print(time_ratio_line(args.segments, old[0], new[0], par[0], args.workers))
            for seg in args.segments:
                print(f"{seg} ({'CT grid in both paths' if seg == 'tumour' else 'old: CT grid, new: 2 mm grid'}):")
                for key in CHECK:
                    print(f"  {key:36s} old {old[2][seg][key]:14.6g}  new {new[2][seg][key]:14.6g}")
        assert new[2] == par[2], "parallel and serial results differ"
    return exit_code(ok)


if __name__ == "__main__":
    sys.exit(main())
