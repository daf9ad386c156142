"""One volume of a mask in ml (lungai.volume): result.json's ``tumour_volume_ml``, the DICOM SR's ``volume_ml``, the
automatic mode's candidates, eval-seg's and the demo's volumes are one function's - the same float for the same mask.
QA seg69: result.json's volume was computed inline in lungai/seg/infer.py with the formula of
``lungai.dicom.export.mask_volume_ml``, and the candidates' / dropped regions' volumes (lungai.seg.postprocess) with
the spacing multiplied z, y, x: on pyradiomics lung2's 0.6269531 x 0.6269531 x 5 mm voxels that product differs from
the x, y, z one in its last bits, so a candidate's volume was not the written mask's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

LUNG2 = (0.6269531, 0.6269531, 5.0)     # pyradiomics lung2's spacing (x, y, z)
ROOT = Path(__file__).resolve().parents[1]


def _mask(spacing=LUNG2) -> tuple[np.ndarray, sitk.Image]:
    arr = np.zeros((12, 20, 20), np.uint8)
    arr[3:9, 4:15, 5:17] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return arr.astype(bool), img


def test_the_spacing_products_of_lung2_differ_by_order():
    """The premise: on lung2's spacing x*y*z and z*y*x are different floats (the order matters)."""
    assert float(np.prod(LUNG2)) != float(np.prod(LUNG2[::-1]))


def test_a_candidates_volume_is_the_written_masks_volume():
    """Automatic mode's candidates (rank_components) and the tumour's result.json volume / SR volume
    (mask_volume_ml): the same float of the same region on lung2's spacing."""
    from lungai.dicom.export import mask_volume_ml
    from lungai.seg.postprocess import rank_components

    binary, img = _mask()
    _, ranked = rank_components(binary, binary.astype(np.float32), LUNG2[::-1])
    assert ranked[0]["volume_ml"] == mask_volume_ml(img)
    assert ranked[0]["probability_mass_ml"] == mask_volume_ml(img)        # probability 1 everywhere in the mask


def test_a_dropped_regions_volume_is_its_masks_volume():
    """keep_components' dropped regions (result.json's dropped_components, rounded) measured as their masks are."""
    from lungai.seg.postprocess import keep_components
    from lungai.volume import mask_volume_ml

    binary, _ = _mask()
    lungs = np.zeros_like(binary)           # the region lies outside the lungs: dropped, its volume counted
    _, dropped = keep_components(binary, LUNG2[::-1], lungs=lungs)
    assert dropped["n_outside_lungs"] == 1 and dropped["outside_lungs_ml"] == round(mask_volume_ml(binary, LUNG2), 4)


def test_one_function_for_images_and_arrays_importable_where_it_was():
    import lungai.dicom.export as export
    from lungai.volume import mask_volume_ml, voxel_ml

    assert export.mask_volume_ml is mask_volume_ml
    binary, img = _mask()
    assert mask_volume_ml(img) == mask_volume_ml(binary, LUNG2) == int(binary.sum()) * voxel_ml(LUNG2)
    signed = sitk.Cast(img, sitk.sitkInt16) * 2 - 1        # -1 outside, 1 inside: voxels > 0 counted
    assert mask_volume_ml(signed) == mask_volume_ml(img)
    with pytest.raises(ValueError, match="spacing"):
        mask_volume_ml(binary)


# a spacing product divided by 1000 (mm³ -> ml) - lungai.volume's, not another module's
_VOXEL_ML = re.compile(r"(?:prod\(|\bsx\b).*/\s*1000(?:\.0)?\b")
# SimpleITK's label statistics' physical size (count x spacing product, mm³) in ml: its count x (product / 1000) is
# not lungai.volume's in the last bits (QA segfollow69: 134 of the 779 LIDC crops, lungai/fusion/ct_crop.py's
# tumour_volume_ml)
_PHYSICAL_ML = re.compile(r"GetPhysicalSize\(.*/\s*1000(?:\.0)?\b")
# every module is on lungai.volume (QA seg69, segfollow69, lungsfollow69; lungai/lungs/segment.py passes its float32
# spacing - lungai.io.geometry.float32_spacing, the same masks from a DICOM CT and its NIfTI - to voxel_ml)


def _computes_a_voxels_volume(code: str) -> bool:
    return bool(_VOXEL_ML.search(code) and re.search(r"[Ss]pacing|\bsp\b|\bsx\b", code)) or bool(
        _PHYSICAL_ML.search(code))


@pytest.mark.parametrize("line, hit", [
    ('ml = int(np.count_nonzero(m)) * float(np.prod(image.GetSpacing())) / 1000.0', True),   # dataset.py's old line
    ('"tumour_volume_ml": shape.GetPhysicalSize(1) / 1000.0,', True),                       # ct_crop.py's old line
    ("ml = shape.GetPhysicalSize(label)/1000", True),
    ("drawn = float(np.prod(roi_node.GetSize())) * abs(float(np.linalg.det(axes))) / 1000.0", False),  # an ROI's box
    ("size_mm3 = shape.GetPhysicalSize(1)", False),                                         # mm³, not a volume in ml
    ("return float(values.iloc[0]) / 1000.0, name, tolerance", False),
])
def test_the_pattern_catches_both_forms_and_nothing_else(line, hit):
    assert _computes_a_voxels_volume(line) is hit


def test_no_module_computes_a_voxels_volume_itself():
    found = []
    for path in sorted((ROOT / "lungai").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "lungai/volume.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if _computes_a_voxels_volume(code):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "use lungai.volume.voxel_ml / mask_volume_ml:\n" + "\n".join(found)


def test_the_stage_baselines_tumour_volume_is_lungai_volumes():
    """``stage``'s image features (lungai.fusion.ct_crop): the tumour's volume is the one lungai segment gives - QA
    segfollow69: SimpleITK's physical size / 1000 was 1 ulp off it on lung2's spacing (this mask: 1.5565579508144558
    against 1.5565579508144556 ml) and on 134 of the 779 LIDC crops."""
    from lungai.fusion.ct_crop import image_features
    from lungai.volume import mask_volume_ml

    _, img = _mask()
    ct = sitk.Cast(img, sitk.sitkInt16) * 40 - 20
    assert image_features(ct, img)["tumour_volume_ml"] == mask_volume_ml(img)
