"""Pairing images with masks and the patient-level split."""

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.seg.dataset import Case, pair_files, patient_of, split_patients


def _touch(d, names):
    d.mkdir(parents=True, exist_ok=True)
    img = sitk.Image(4, 4, 4, sitk.sitkInt16)
    for n in names:
        sitk.WriteImage(img, str(d / n))


def test_pairs_and_patients(tmp_path):
    _touch(tmp_path / "i", ["A_1.nii.gz", "A_2.nii.gz", "B_1.nii.gz", "C_only.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "A_2.nii.gz", "B_1.nii.gz"])
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    assert [c.case_id for c in cases] == ["A_1", "A_2", "B_1"]
    assert [c.patient for c in cases] == ["A", "A", "B"]
    assert patient_of("LIDC-IDRI-0001_R_1") == "LIDC-IDRI-0001"
    (tmp_path / "p.csv").write_text("case,patient\nA_1,X\nA_2,Y\nB_1,X\n")
    assert [c.patient for c in pair_files(tmp_path / "i", tmp_path / "m", tmp_path / "p.csv")] == ["X", "Y", "X"]
    with pytest.raises(InputError, match="does not exist"):
        pair_files(tmp_path / "nope", tmp_path / "m")


def test_split_keeps_patients_whole():
    cases = [Case(f"P{p}_{k}", f"P{p}") for p in range(20) for k in range(3)]
    train, val = split_patients(cases, 0.25, seed=3)
    assert {c.patient for c in train}.isdisjoint({c.patient for c in val})
    assert len({c.patient for c in val}) == 5 and len(train) + len(val) == 60
    again = split_patients(cases, 0.25, seed=3)[1]
    assert [c.case_id for c in again] == [c.case_id for c in val]
    with pytest.raises(InputError, match="one patient"):
        split_patients([Case("A_1", "A"), Case("A_2", "A")], 0.2, 0)
