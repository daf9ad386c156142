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


def test_synthetic_lung_crops_are_mostly_tumour_free_and_deterministic():
    from lungai.seg.dataset import synthetic_cases

    kw = dict(shape=(96, 96, 40), spacing=(3.5, 3.5, 5.0))
    cases = synthetic_cases(6, 900, **kw)
    lung = [c for c in cases if c.case_id.endswith("_lung")]
    tum = [c for c in cases if c.case_id.endswith("_0")]
    assert len(lung) == len(tum) >= 5
    assert all(sitk.GetArrayViewFromImage(c.mask).any() for c in tum)
    free = [not sitk.GetArrayViewFromImage(c.mask).any() for c in lung]
    assert sum(free) >= len(lung) // 2          # most lung crops hold no tumour
    for c in lung:                               # same patient as its tumour crop: the split keeps them together
        assert c.patient == c.case_id.rsplit("_", 1)[0]
    again = synthetic_cases(6, 900, **kw)
    assert [c.case_id for c in again] == [c.case_id for c in cases]
    assert all(np.array_equal(sitk.GetArrayViewFromImage(a.image), sitk.GetArrayViewFromImage(b.image))
               for a, b in zip(again, cases))
    only_tumour = [c.case_id for c in synthetic_cases(3, 900, lung_crops=False, **kw)]
    assert only_tumour == [c.case_id for c in tum if int(c.patient.split("-")[1]) < 903]
