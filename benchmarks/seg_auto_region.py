"""How much of a real GTV lies in the region automatic mode looks at (docs/segmentation.md, "Known limitations").

Automatic mode runs the model over the lungs' mask (``lungai.seg.preprocess.box_from_lungs``, found at 1.5 mm) plus
``roi_margin_mm`` (10 mm) and keeps a candidate only if half of it lies inside the lungs.  For each GTV of the
nsclc_whole_ct CTs this prints the share of its voxels inside the lungs and within 5, 10, 20 and 30 mm of them, and the
share of its surface that borders the lungs; and, for a region that would reach such a tumour, the share inside the
per-slice convex hull of each lung and the volume that hull adds outside the lungs (heart, mediastinum); and the share
outside the lungs' box (+ 10 mm) the model runs on.  The other GTVs (label 2) get a row per connected part (LUNG1-003:
gtv-2, 39 ml above the lung apex, and gtv-3 in two parts).  Default: LUNG1-002 only (an implant background of training; LUNG1-003 is
a test CT of issue #13 - ``--cases`` adds it).

    .venv/bin/python benchmarks/seg_auto_region.py [--cases LUNG1-002] [--data ../shared/data/nsclc_whole_ct]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MARGINS_MM = (0, 5, 10, 20, 30)
DEFAULT = Path(os.environ.get("LUNGAI_SHARED_DATA",
                              Path(__file__).resolve().parents[2] / "shared" / "data")) / "nsclc_whole_ct"


def region_shares(gtv: np.ndarray, lungs: np.ndarray, spacing_zyx, margins=MARGINS_MM) -> dict:
    """Share of ``gtv`` within each margin (mm) of ``lungs`` (bool arrays, same grid) and of its one-voxel outer
    shell that is lung."""
    dist = ndimage.distance_transform_edt(~lungs, sampling=spacing_zyx)
    out = {f"within_{m}_mm": float((dist[gtv] <= m).mean()) for m in margins}
    shell = ndimage.binary_dilation(gtv) & ~gtv
    out["surface_on_lung"] = float(lungs[shell].mean()) if shell.any() else 0.0
    return out


def lung_hulls(lungs: np.ndarray) -> np.ndarray:
    """Per axial slice, the filled convex hull of each lung (``lungs``: 0 / 1 right / 2 left labels)."""
    from lungai.lungs.pleura import convex_hull_2d

    hull = np.zeros(lungs.shape, bool)
    for value in (1, 2):
        m = lungs == value
        for k in np.flatnonzero(m.any(axis=(1, 2))):
            hull[k] |= convex_hull_2d(m[k])
    return hull


def main(argv=None) -> int:
    from lungai.seg import preprocess as pp

    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="LUNG1-002")
    ap.add_argument("--data", default=str(DEFAULT))
    args = ap.parse_args(argv)
    nifti = Path(args.data) / "nifti"
    print("| case | GTV | ml | " + " | ".join(f"within {m} mm" for m in MARGINS_MM) +
          " | surface on lung | in the lungs' hulls | hulls add (ml) | outside the lungs' box |")
    print("|---|---|---|" + "---|" * (len(MARGINS_MM) + 4))
    for case in args.cases.split(","):
        ct_path = nifti / f"{case}_ct.nii.gz"
        if not ct_path.is_file():
            raise SystemExit(f"no {ct_path}: give --data, the nsclc_whole_ct folder of ../shared/data")
        ct = sitk.ReadImage(str(ct_path))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / f"{case}_labels.nii.gz")))
        box = pp.box_from_lungs(ct, 10.0)
        lungs = sitk.GetArrayFromImage(sitk.Resample(box.lungs, ct, sitk.Transform(), sitk.sitkNearestNeighbor)) > 0
        voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
        from lungai.lungs import segment_lungs

        hull = lung_hulls(sitk.GetArrayFromImage(segment_lungs(ct).labels))
        added = float((hull & ~lungs).sum()) * voxel_ml
        in_box = np.zeros(lungs.shape, bool)
        in_box[box.lo[2]:box.hi[2], box.lo[1]:box.hi[1], box.lo[0]:box.hi[0]] = True
        for value, name in ((1, "GTV-1"), (2, "other GTVs")):
            parts, n = ndimage.label(labels == value)
            for k in range(1, n + 1):
                gtv = parts == k
                s = region_shares(gtv, lungs, ct.GetSpacing()[::-1])
                part = f" (part {k} of {n})" if n > 1 else ""
                print(f"| {case} | {name}{part} | {gtv.sum() * voxel_ml:.0f} | " +
                      " | ".join(f"{s[f'within_{m}_mm']:.3f}" for m in MARGINS_MM) + f" | {s['surface_on_lung']:.3f} | "
                      f"{float(hull[gtv].mean()):.3f} | {added:.0f} | {float((~in_box[gtv]).mean()):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
