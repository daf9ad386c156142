"""Benchmark: RTSTRUCT rasterisation and DICOM writing on the real export (LUNG1-003) or, without
../shared, on the built-in sample written as DICOM.

Baseline, in the same run on the same contours: per-contour point-in-polygon fill with
``skimage.draw.polygon`` combined by XOR (the obvious library route).  Prints the wall time of both, the
ratio, whether both give the same masks, the Dice of each structure against the NIfTI label map (real
export), and the time to write lungs + tumour as SEG and RTSTRUCT.

Verdicts (exit status 1 when one fails): every structure's mask differs from the baseline's in at most
``MAX_DIFFERING`` voxels (boundary ties of the two fill rules), and on the real export each structure's Dice
against the NIfTI label map made from the same contours is >= ``MIN_DICE``.

    .venv/bin/python benchmarks/bench_dicom.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.dicom.reference import ct_reference
from lungai.dicom.rtstruct import _index_transform, read_rtstruct, read_structures, write_rtstruct
from lungai.dicom.seg import write_seg
from lungai.io import read_ct
from lungai.overlap import dice

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_temp_dir, exit_code, verdict  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nsclc_whole_ct"
NAMES = ["GTV-1", "gtv-2", "gtv-3", "Lung-Right", "Lung-Left"]
MIN_DICE = 0.99999     # against the label map made from the same contours (QA: 0.999999 at worst)
MAX_DIFFERING = 10     # voxels per structure differing from the baseline's fill (QA: 2 in Lung-Right)


def verdicts(differing: dict, dices: dict | None) -> list:
    """PASS / FAIL lines of a run: ``differing`` {structure: voxels differing from the baseline}; ``dices``
    {comparison: Dice against the label map} or None (no label map: the built-in sample)."""
    worst = max(differing, key=differing.get)
    oks = [verdict(f"masks equal the baseline's to <= {MAX_DIFFERING} voxels per structure",
                   differing[worst] <= MAX_DIFFERING, f"worst {worst}: {differing[worst]} voxels")]
    if dices is not None:
        low = min(dices, key=dices.get)
        oks.append(verdict(f"Dice vs the NIfTI label map >= {MIN_DICE}", dices[low] >= MIN_DICE,
                           f"lowest {low}: {dices[low]:.6f}"))
    return oks


def baseline(structures, ct) -> dict:
    from skimage.draw import polygon

    nx, ny, nz = ct.GetSize()
    inv, origin = _index_transform(ct)
    out = {}
    for st in structures:
        mask = np.zeros((nz, ny, nx), np.uint8)
        for pts in st.contours:
            idx = (pts - origin) @ inv.T
            rr, cc = polygon(idx[:, 1], idx[:, 0], shape=(ny, nx))
            mask[int(round(float(np.median(idx[:, 2])))), rr, cc] ^= 1
        out[st.name] = mask
    return out


def best_of(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with bench_temp_dir() as tmp:   # written files (a real patient's SEG / RTSTRUCT) are deleted, also on SIGTERM
        if (SHARED / "dicom").is_dir():
            ct_dir = SHARED / "dicom" / "LUNG1-003" / "CT"
            rtstruct = next((SHARED / "dicom" / "LUNG1-003" / "RTSTRUCT").iterdir())
            labels = sitk.GetArrayFromImage(sitk.ReadImage(str(SHARED / "nifti" / "LUNG1-003_labels.nii.gz")))
            names, source = NAMES, "LUNG1-003 (real export)"
        else:
            from lungai.dicom.synthetic import write_rt_study
            from lungai.synthetic import make_phantom, sample_spec, SAMPLE_SEED

            study = write_rt_study(tmp, make_phantom(sample_spec(), seed=SAMPLE_SEED), "SAMPLE", dose=None)
            ct_dir, rtstruct, labels, names, source = study["ct"], study["rtstruct"], None, None, "built-in sample"
        ct = read_ct(ct_dir)
        structures = [s for s in read_structures(rtstruct)[0] if names is None or s.name in names]
        n_contours = sum(len(s.contours) for s in structures)
        t_ours, ours = best_of(lambda: read_rtstruct(rtstruct, ct, names=names), args.repeats)
        t_base, base = best_of(lambda: baseline(structures, ct), args.repeats)
        same = {k: int((sitk.GetArrayFromImage(ours[k]) != base[k]).sum()) for k in ours}
        print(f"{source}: CT {ct.GetSize()}, {len(structures)} structures, {n_contours} contours")
        print(f"read_rtstruct (parse + scanline fill): {t_ours:.2f} s; baseline skimage polygon + XOR (fill only): "
              f"{t_base:.2f} s; ratio {t_base / t_ours:.1f}x")
        print(f"voxels differing from the baseline per structure: {same}")
        dices = None
        if labels is not None:
            m = {k: sitk.GetArrayFromImage(v) > 0 for k, v in ours.items()}
            gtv = m["GTV-1"] | m["gtv-2"] | m["gtv-3"]
            dices = {"GTV-1": dice(m["GTV-1"], labels == 1), "gtv-2+gtv-3": dice(m["gtv-2"] | m["gtv-3"], labels == 2),
                     "Lung-Right minus GTVs": dice(m["Lung-Right"] & ~gtv, labels == 3),
                     "Lung-Left minus GTVs": dice(m["Lung-Left"] & ~gtv, labels == 4)}
            print("Dice vs NIfTI labels: " + ", ".join(f"{k} {v:.6f}" for k, v in dices.items()))
        ref = ct_reference(ct_dir, image=ct)
        masks = dict(list(ours.items())[:3])
        t_seg, _ = best_of(lambda: write_seg(masks, ref, tmp / "x.seg.dcm"), 1)
        t_rt, _ = best_of(lambda: write_rtstruct(masks, ref, tmp / "x.rtstruct.dcm"), 1)
        print(f"write SEG ({', '.join(masks)}): {t_seg:.2f} s, {(tmp / 'x.seg.dcm').stat().st_size / 1e6:.2f} MB; "
              f"write RTSTRUCT: {t_rt:.2f} s, {(tmp / 'x.rtstruct.dcm').stat().st_size / 1e6:.2f} MB")
    return exit_code(*verdicts(same, dices))


if __name__ == "__main__":
    sys.exit(main())
