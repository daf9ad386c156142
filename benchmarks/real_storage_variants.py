"""Real CTs stored or cropped as scanners and converters deliver them: the figures of docs/lungs.md ("Lungs cut by
the field of view") and docs/segmentation.md (step 0, "LPS order first").

- Lungs (`lungai.lungs.segment_lungs`): LUNG1-003 whole, cropped at the right lung's lateral edge (x >= 136), and
  8 slices; LUNG1-002 / LUNG1-003 cropped through the mediastinum (x < 280: the right lung; x >= 250: the left
  lung); LUNG1-002 cut at x < 240 / x >= 272 (one lung each, the header kept: docs/lungs.md's one-lung crops);
  LUNG1-003 cut by the anterior border and both sides (x 90-429, y 110-399), and by the anterior and the
  posterior border (y 130-319); pyradiomics lung1 as stored
  and with -3024 HU (scanner padding) outside the reconstruction circle inscribed in its 292 mm field of view.
  Right / left ml, Dice under the RT definition (GTV out) where the oncologist's contours exist (with their
  volumes in view), and the "cut by the scan" warnings.
- Tumour (`lungai.seg.infer.segment_tumour`, default model, seed point on lung1's lesion): the same CT stored as
  is, x-, y-, z-flipped and with x / z swapped (the same physical image): Dice against the lesion label stored the
  same way, volume, confidence and review flag must not change.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/real_storage_variants.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.lungs import rt_lung_dice, segment_lungs
from lungai.overlap import dice

DEFAULT = Path(os.environ.get("LUNGAI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LUNG1_SEED = (-21.86, -120.54, -611.5)     # LPS mm, inside pyradiomics lung1's lesion


def _padded(ct: sitk.Image, value: float = -3024.0) -> sitk.Image:
    """``ct`` with ``value`` outside the circle inscribed in each slice (the reconstruction circle)."""
    arr = sitk.GetArrayFromImage(ct)
    _, ny, nx = arr.shape
    yy, xx = np.mgrid[:ny, :nx]
    outside = (yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2 > (min(nx, ny) / 2) ** 2
    arr[:, outside] = value
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(ct)
    return out


def lungs_table(data: Path) -> None:
    whole = data / "nsclc_whole_ct" / "nifti"
    ct3 = sitk.ReadImage(str(whole / "LUNG1-003_ct.nii.gz"))
    lab3 = sitk.ReadImage(str(whole / "LUNG1-003_labels.nii.gz"))
    ct2 = sitk.ReadImage(str(whole / "LUNG1-002_ct.nii.gz"))
    lab2 = sitk.ReadImage(str(whole / "LUNG1-002_labels.nii.gz"))
    lung1 = sitk.ReadImage(str(data / "pyradiomics_lung" / "lung1_image.nrrd"))
    cases = [("LUNG1-003 whole", ct3, lab3), ("LUNG1-003 cropped x >= 136", ct3[136:, :, :], lab3[136:, :, :]),
             ("LUNG1-003 8 slices", ct3[:, :, 39:47], lab3[:, :, 39:47]),
             ("LUNG1-002 cropped x < 280", ct2[:280, :, :], lab2[:280, :, :]),
             ("LUNG1-003 cropped x >= 250", ct3[250:, :, :], lab3[250:, :, :]),
             ("LUNG1-002 cropped x < 240", ct2[:240, :, :], lab2[:240, :, :]),
             ("LUNG1-002 cropped x >= 272", ct2[272:, :, :], lab2[272:, :, :]),
             ("LUNG1-003 cropped x 90-429, y >= 110", ct3[90:430, 110:400, :], lab3[90:430, 110:400, :]),
             ("LUNG1-003 cropped y 130-319", ct3[:, 130:320, :], lab3[:, 130:320, :]),
             ("lung1 as stored", lung1, None), ("lung1 padded -3024 HU", _padded(lung1), None)]
    print("| input | right / left ml | Dice right / left (RT, reference ml in view) | warnings |\n|---|---|---|---|")
    for name, ct, lab in cases:
        res = segment_lungs(ct)
        dice_txt = "-"
        if lab is not None:
            a = sitk.GetArrayFromImage(lab)
            d = rt_lung_dice(sitk.GetArrayFromImage(res.labels), a == 3, a == 4, (a == 1) | (a == 2))
            ml = np.prod(lab.GetSpacing()) / 1000       # the oncologist's lungs cut likewise, in ml
            dice_txt = (f"{d['right']:.3f} / {d['left']:.3f} (reference {(a == 3).sum() * ml:.0f} / "
                        f"{(a == 4).sum() * ml:.0f} ml)")
        vol = res.volumes_ml
        print(f"| {name} | {vol.get('right_lung', 0):.0f} / {vol.get('left_lung', 0):.0f} | {dice_txt} | "
              f"{'; '.join(res.cut) or '-'} |")


def _stored(img: sitk.Image, how: str) -> sitk.Image:
    """The same physical image with its array stored another way (flipped / permuted axes)."""
    if how == "as stored":
        return img
    if how == "x/z swapped":
        return sitk.PermuteAxes(img, [2, 1, 0])
    axis = "xyz".index(how[0])
    return sitk.Flip(img, [i == axis for i in range(3)])


def tumour_table(data: Path) -> None:
    from lungai.seg.infer import segment_tumour
    from lungai.seg.model_io import load_model
    from lungai.seg.resources import resolve_model_dir

    model = load_model(resolve_model_dir(None))
    ct = sitk.ReadImage(str(data / "pyradiomics_lung" / "lung1_image.nrrd"))
    lab = sitk.ReadImage(str(data / "pyradiomics_lung" / "lung1_label.nrrd"))
    print("\n| lung1 stored | Dice | volume ml | confidence | review |\n|---|---|---|---|---|")
    for how in ("as stored", "x-flipped", "y-flipped", "z-flipped", "x/z swapped"):
        c, t = _stored(ct, how), _stored(lab, how)
        res = segment_tumour(c, model, seed_lps=LUNG1_SEED)
        m, g = sitk.GetArrayFromImage(res.tumour) > 0, sitk.GetArrayFromImage(t) > 0
        d = dice(m, g)
        ml = m.sum() * np.prod(c.GetSpacing()) / 1000
        print(f"| {how} | {d:.3f} | {ml:.2f} | {res.info['confidence']:.3f} | {res.info['needs_review']} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args(argv)
    if not (args.data / "nsclc_whole_ct").is_dir():
        raise SystemExit(f"no real data in {args.data} (give --data ../shared/data)")
    lungs_table(args.data)
    tumour_table(args.data)


if __name__ == "__main__":
    main()
