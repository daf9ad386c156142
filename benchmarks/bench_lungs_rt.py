"""Benchmark: automatic lung masks against the radiation oncologist's lung contours.

The two real planning CTs in ../shared/data/nsclc_whole_ct (NSCLC-Radiomics LUNG1-002 and
LUNG1-003, RTSTRUCT lungs rasterised to NIfTI; labels 1/2 GTVs, 3 right lung, 4 left lung).
The RT lung contours exclude the GTV, so the figure that counts ("RT") compares the automatic
lungs minus the GTV (the RT lung for dose, RTOG 1106) with them; "raw" keeps the GTV voxels
the automatic mask holds.  These are the project's only real whole-CT evaluation cases: the
rules in lungai.lungs were set on anatomy (airway calibre, partial-volume HU, hilar gap width),
not fitted to them.

    .venv/bin/python benchmarks/bench_lungs_rt.py [--data ../shared/data/nsclc_whole_ct] [--phantoms]

``--phantoms`` prints the phantom table of README.md / docs/lungs.md instead (Dice per lung against
the phantom truth under the same RT definition - GTV out of both masks, collapsed lung in - next to
the Dice with the GTV counted as lung, and the tumour voxels kept in the lung mask; 256 x 256 x 96
at 1.4 x 1.4 x 2.5 mm, seed 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import SimpleITK as sitk

from lungai.lungs import LEFT, RIGHT, rt_lung_dice, segment_lungs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_code, verdict  # noqa: E402

CASES = ("LUNG1-002", "LUNG1-003")
TARGET = 0.95
DEFAULT = Path(os.environ.get("LUNGAI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "nsclc_whole_ct"


def evaluate(ct_path: Path, labels_path: Path) -> dict:
    """Per-lung Dice ("raw" and "RT" = automatic lungs minus the GTV) and the run time."""
    ct = sitk.ReadImage(str(ct_path))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    t = time.perf_counter()
    result = segment_lungs(ct)
    seconds = time.perf_counter() - t
    pred = sitk.GetArrayFromImage(result.labels)
    gtv = (lab == 1) | (lab == 2)
    out = {"seconds": seconds, "notes": result.notes}
    rt, raw = rt_lung_dice(pred, lab == 3, lab == 4, gtv), rt_lung_dice(pred, lab == 3, lab == 4, None)
    for side in ("right", "left"):
        out[f"{side}_raw"], out[f"{side}_rt"] = raw[side], rt[side]
    return out


PHANTOMS = {
    "built-in sample (35 mm juxta-pleural)": None,
    "20 mm free-standing": dict(diameter_mm=20, location="free"),
    "60 mm free-standing": dict(diameter_mm=60, location="free"),
    "20 mm juxta-pleural": dict(diameter_mm=20, location="juxta_pleural"),
    "60 mm juxta-pleural": dict(diameter_mm=60, location="juxta_pleural"),
    "20 mm juxta-vascular": dict(diameter_mm=20, location="juxta_vascular"),
    "60 mm juxta-vascular": dict(diameter_mm=60, location="juxta_vascular"),
    "60 mm central (abuts the mediastinum)": dict(diameter_mm=60, location="central"),
    "30 mm + atelectasis + effusion": dict(diameter_mm=30, atelectasis=True),
}


def phantom_case(name: str):
    """The phantom of the table row ``name`` (256 x 256 x 96 at 1.4 x 1.4 x 2.5 mm, seed 1)."""
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom
    from lungai.synthetic.sample import SAMPLE_SEED, sample_spec

    tumour = PHANTOMS[name]
    if tumour is None:
        return make_phantom(sample_spec(), seed=SAMPLE_SEED)
    return make_phantom(PhantomSpec(tumour=TumourSpec(**tumour), effusion=bool(tumour.get("atelectasis"))), seed=1)


def phantom_scores(phantom) -> dict:
    """Per-lung Dice against the phantom truth under the RT definition (GTV out of both masks,
    collapsed lung in: "right_rt", "left_rt"), the same with the GTV counted as lung
    ("right_gtv_in", "left_gtv_in") and the fraction of the tumour the automatic mask keeps."""
    from lungai.synthetic import labels as L

    pred = sitk.GetArrayFromImage(segment_lungs(phantom.ct).labels)
    lab = sitk.GetArrayFromImage(phantom.labels)
    side = phantom.meta["tumour"]["side"]
    truth, gtv = L.lung_truth(lab, side), L.tumour_mask(lab)
    rt, gtv_in = rt_lung_dice(pred, truth["right"], truth["left"], gtv), rt_lung_dice(pred, truth["right"], truth["left"], None)
    return {"right_rt": rt["right"], "left_rt": rt["left"], "right_gtv_in": gtv_in["right"], "left_gtv_in": gtv_in["left"],
            "kept": float((pred[gtv] == (RIGHT if side == "right" else LEFT)).mean())}


def phantom_table() -> None:
    print("| case | Dice right (RT) | Dice left (RT) | right / left with the GTV as lung | tumour kept in the lung mask |\n"
          "|---|---|---|---|---|")
    for name in PHANTOMS:
        r = phantom_scores(phantom_case(name))
        print(f"| {name} | {r['right_rt']:.3f} | {r['left_rt']:.3f} | {r['right_gtv_in']:.3f} / {r['left_gtv_in']:.3f} | "
              f"{100 * r['kept']:.0f} % |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--phantoms", action="store_true", help="the phantom table instead of the real cases")
    args = ap.parse_args()
    if args.phantoms:
        phantom_table()   # a table, no target
        return 0
    print(f"{'case':10s} {'right RT':>9s} {'left RT':>8s} {'right raw':>10s} {'left raw':>9s} {'time':>7s}")
    worst = 1.0
    for case in CASES:
        r = evaluate(args.data / "nifti" / f"{case}_ct.nii.gz", args.data / "nifti" / f"{case}_labels.nii.gz")
        worst = min(worst, r["right_rt"], r["left_rt"])
        print(f"{case:10s} {r['right_rt']:9.4f} {r['left_rt']:8.4f} {r['right_raw']:10.4f} {r['left_raw']:9.4f} {r['seconds']:6.1f}s")
    return exit_code(verdict(f"lowest per-lung Dice (RT) >= {TARGET}", worst >= TARGET, f"{worst:.4f}"))


if __name__ == "__main__":
    sys.exit(main())
