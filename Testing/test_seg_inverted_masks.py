"""Masks that mark every corner of their image as tumour - inverted (0 on the tumour, 1 on the rest), a box, the whole
image - are refused by train-seg's mask check and eval-seg's case check, naming the masks, before any training or
evaluation.  QA train71: 14 LIDC crops with inverted masks trained without a word (validation Dice 0.81 for a model
that marks everything but the nodule; eval-seg of that model on inverted test masks 0.82)."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.seg.dataset import check_masks, pair_files
from lungai.seg.evaluate import check_cases

NAMES = ["P00_1.nii.gz", "P01_1.nii.gz", "P02_1.nii.gz"]


def _write(folder: Path, name: str, arr: np.ndarray) -> None:
    folder.mkdir(exist_ok=True)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(img, str(folder / name))


def _cases(tmp_path: Path, masks: dict, label=None) -> list:
    """CT crops (lung at -800 HU, a nodule of soft tissue) with the masks ``masks`` (name -> (z, y, x) array)."""
    for name in NAMES:
        ct = np.full((10, 24, 24), -800, np.int16)
        ct[3:7, 8:16, 8:16] = 40
        _write(tmp_path / "i", name, ct)
        _write(tmp_path / "m", name, masks[name])
    return pair_files(tmp_path / "i", tmp_path / "m", label=label)


def _nodule(value=1) -> np.ndarray:
    m = np.zeros((10, 24, 24), np.uint8)
    m[3:7, 8:16, 8:16] = value
    return m


def test_inverted_masks_are_refused_by_train_seg_and_eval_seg(tmp_path):
    masks = {NAMES[0]: _nodule(), NAMES[1]: 1 - _nodule(), NAMES[2]: np.ones((10, 24, 24), np.uint8)}
    cases = _cases(tmp_path, masks)
    with pytest.raises(InputError) as exc:
        check_masks(cases)
    assert exc.value.problem.startswith("2 of the 3 masks mark all 8 corners of the image as tumour: P01_1.nii.gz "
                                        "(96% of its voxels), P02_1.nii.gz (100% of its voxels)")
    assert "inverted (0 on the tumour, 1 on the rest)" in exc.value.problem
    assert "P00_1" not in exc.value.problem
    assert "sitk.Cast(mask == 0, sitk.sitkUInt8)" in exc.value.fix and "nothing was trained" in exc.value.fix
    with pytest.raises(InputError) as exc:
        check_cases(pair_files(tmp_path / "i", tmp_path / "m"))
    assert "2 of 3 image / mask pairs cannot be evaluated" in exc.value.problem
    assert "P01_1: mask P01_1 marks all 8 corners of its image as tumour (96% of its voxels)" in exc.value.problem
    assert "P02_1: mask P02_1 marks all 8 corners" in exc.value.problem and "P00_1" not in exc.value.problem


def test_the_tumour_label_is_judged_with_label(tmp_path):
    """With --label N the label's own voxels: label maps whose background structure (2) takes the corners are fine,
    an inverted tumour label is refused."""
    fine = {name: np.where(_nodule() > 0, 1, 2).astype(np.uint8) for name in NAMES}
    check_masks(_cases(tmp_path, fine, label=1), label=1)
    check_cases(pair_files(tmp_path / "i", tmp_path / "m", label=1), label=1)
    inverted = dict(fine)
    inverted[NAMES[2]] = np.where(_nodule() > 0, 2, 1).astype(np.uint8)
    with pytest.raises(InputError, match=r"^1 of the 3 masks marks all 8 corners of the image as tumour: "
                                         r"P02_1.nii.gz \(96% of its voxels\)"):
        check_masks(_cases(tmp_path, inverted, label=1), label=1)
    with pytest.raises(InputError, match="P02_1: mask P02_1 marks all 8 corners"):
        check_cases(pair_files(tmp_path / "i", tmp_path / "m", label=1), label=1)


def test_tumours_at_faces_and_corners_are_fine(tmp_path):
    """A tumour reaching the image's faces (a crop cut tightly round it, a nodule spanning every slice) or some of its
    corners is a tumour: only all 8 corners are refused."""
    wide = np.zeros((10, 24, 24), np.uint8)
    wide[:, 4:20, 4:20] = 1                        # every slice
    corner = _nodule()
    corner[:, :, :12] = 1                          # half the image: 4 of its 8 corners
    check_masks(_cases(tmp_path, {NAMES[0]: _nodule(), NAMES[1]: wide, NAMES[2]: corner}))
    check_cases(pair_files(tmp_path / "i", tmp_path / "m"))
