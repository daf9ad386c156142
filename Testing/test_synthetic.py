"""lungai.synthetic: deterministic phantoms whose labels match what was planted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.synthetic import PhantomSpec, TumourSpec, labels as L, make_phantom, random_spec

SMALL = dict(shape=(80, 80, 36), spacing=(4.0, 4.0, 5.0))


def small(seed=0, **tumour):
    return make_phantom(PhantomSpec(**SMALL, tumour=TumourSpec(**tumour)), seed=seed)


def arrays(p):
    return sitk.GetArrayFromImage(p.ct), sitk.GetArrayFromImage(p.labels)


def test_same_seed_same_phantom_and_different_seed_differs():
    a, b, c = small(seed=3), small(seed=3), small(seed=4)
    np.testing.assert_array_equal(arrays(a)[0], arrays(b)[0])
    np.testing.assert_array_equal(arrays(a)[1], arrays(b)[1])
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    assert not np.array_equal(arrays(a)[0], arrays(c)[0])


def test_ct_is_int16_hu_and_labels_documented(small_phantom):
    ct, lab = arrays(small_phantom)
    assert ct.dtype == np.int16 and lab.dtype == np.uint8
    assert set(np.unique(lab)) <= set(L.NAMES)
    assert {L.OUTSIDE, L.TUMOUR, L.RIGHT_LUNG, L.LEFT_LUNG, L.AIRWAYS, L.BONE, L.BODY, L.MEDIASTINUM} <= set(np.unique(lab))
    assert small_phantom.ct.GetSpacing() == small_phantom.labels.GetSpacing()
    assert small_phantom.ct.GetOrigin() == small_phantom.labels.GetOrigin()


def test_tissue_intensities_are_realistic(small_phantom):
    ct, lab = arrays(small_phantom)
    assert -900 < np.median(ct[lab == L.RIGHT_LUNG]) < -780
    assert -1010 < np.median(ct[lab == L.OUTSIDE]) < -980
    from scipy import ndimage

    core = ndimage.binary_erosion(lab == L.TUMOUR)  # away from partial-volume edges
    assert 0 < np.median(ct[core]) < 80
    assert np.median(ct[lab == L.BONE]) > 200
    assert np.percentile(ct[lab == L.AIRWAYS], 10) < -950  # lumen core (thin on this coarse grid)


def test_right_lung_is_on_the_patient_right():
    """LPS: x grows towards the patient's left, so the right lung has the smaller x."""
    p = small(side="right", location="free")
    _, lab = arrays(p)
    x_right = np.argwhere(lab == L.RIGHT_LUNG)[:, 2].mean()
    x_left = np.argwhere(lab == L.LEFT_LUNG)[:, 2].mean()
    assert x_right < x_left
    x_tumour = np.argwhere(L.tumour_mask(lab))[:, 2].mean()
    assert x_tumour < lab.shape[2] / 2


def test_meta_matches_the_label_map():
    p = small(seed=1, diameter_mm=40.0, location="free", shape="round")
    _, lab = arrays(p)
    t = p.meta["tumour"]
    voxel_ml = np.prod(SMALL["spacing"]) / 1000.0
    assert t["volume_ml"] == pytest.approx(L.tumour_mask(lab).sum() * voxel_ml, rel=1e-6)
    # a round tumour of 40 mm: the volume of a sphere of 34-40 mm (axes drawn 0.85-1.0 R)
    assert 4 / 3 * np.pi * 17 ** 3 / 1000 * 0.8 < t["volume_ml"] < 4 / 3 * np.pi * 21 ** 3 / 1000
    centre = np.array(t["centre_mm"])
    kji = np.argwhere(L.tumour_mask(lab)).mean(axis=0)
    centroid = np.array(p.ct.TransformContinuousIndexToPhysicalPoint((kji[2], kji[1], kji[0])))
    assert np.linalg.norm(centroid - centre) < 8.0


@pytest.mark.parametrize("location", ["free", "juxta_pleural", "juxta_vascular", "central"])
@pytest.mark.parametrize("shape", ["round", "lobulated", "spiculated"])
def test_every_tumour_lies_inside_its_lung(location, shape):
    p = small(seed=2, diameter_mm=25.0, location=location, shape=shape, side="left")
    _, lab = arrays(p)
    tumour = L.tumour_mask(lab)
    assert tumour.sum() > 0
    truth = L.lung_truth(lab, "left")
    assert truth["left"][tumour].all()
    assert not truth["right"][tumour].any()


def test_hard_cases_are_planted_and_flagged():
    p = make_phantom(PhantomSpec(**SMALL, tumour=TumourSpec(diameter_mm=30, location="free", atelectasis=True,
                                                         ground_glass=True), effusion=True), seed=5)
    _, lab = arrays(p)
    assert (lab == L.ATELECTASIS).sum() > 0
    assert (lab == L.EFFUSION).sum() > 0
    assert (lab == L.GROUND_GLASS).sum() > 0
    assert p.meta["hard_case"] == {"small_tumour": False, "atelectasis": True, "pleural_effusion": True,
                                   "ground_glass": True}
    assert p.meta["is_hard_case"]
    tiny = small(seed=6, diameter_mm=6.0)
    assert tiny.meta["hard_case"]["small_tumour"] and L.tumour_mask(arrays(tiny)[1]).sum() >= 1


@pytest.mark.parametrize("side", ["right", "left"])
def test_atelectasis_next_to_a_juxta_pleural_tumour_is_planted_in_the_lung(side):
    """QA: the atelectasis wedge pointed from the hilum out through the tumour; for a tumour against the chest wall
    that is the wall, ``& lung`` removed it all, and `lungai sample --atelectasis` (a juxta-pleural tumour) recorded
    atelectasis with no label-5 voxel.  The wedge now turns into the lung when its distal side is wall."""
    p = small(seed=0, diameter_mm=30.0, location="juxta_pleural", side=side, atelectasis=True)
    _, lab = arrays(p)
    voxel_ml = float(np.prod(SMALL["spacing"])) / 1000.0
    assert (lab == L.ATELECTASIS).sum() * voxel_ml > 10.0
    assert p.meta["tumour"]["atelectasis_ml"] > 10.0
    assert p.meta["tumour"]["atelectasis_towards"].startswith("towards the lung")
    assert p.meta["hard_case"]["atelectasis"] and "warnings" not in p.meta
    # collapsed lung of the tumour's own lung, next to the tumour, never over it
    truth = L.lung_truth(lab, side)[side]
    assert truth[lab == L.ATELECTASIS].all() and not (L.tumour_mask(lab) & (lab == L.ATELECTASIS)).any()


def test_a_small_nodule_gets_a_small_atelectasis_wedge():
    """QA: the wedge was R + 35-60 mm long whatever the tumour size, so a 5 mm juxta-pleural nodule got tens of ml
    of collapsed lung (`lungai sample --diameter 5 --atelectasis`: 27 ml).  Its length is now at most
    ATELECTASIS_MAX_RADII radii (a small subsegmental wedge); 30 mm and larger tumours are unchanged."""
    from lungai.synthetic.tumour import ATELECTASIS_MAX_RADII, atelectasis_length

    p = small(seed=0, diameter_mm=5.0, location="juxta_pleural", atelectasis=True)
    voxel_ml = float(np.prod(SMALL["spacing"])) / 1000.0
    ml = (arrays(p)[1] == L.ATELECTASIS).sum() * voxel_ml
    assert 0.0 < ml < 2.0 and p.meta["hard_case"]["atelectasis"], ml
    for drawn in (35.0, 47.0, 59.99):                                  # the draw's range: 30 mm tumours unchanged
        assert atelectasis_length(15.0, drawn) == 15.0 + drawn
    assert atelectasis_length(2.5, 50.0) == ATELECTASIS_MAX_RADII * 2.5


def test_recorded_atelectasis_volume_is_the_label_maps():
    """QA: tumour.atelectasis_ml (measured on the sub-slice grid) differed from volumes_ml.atelectasis (the label
    map, each slice's central sub-slice): 61.644 vs 61.593 ml for `lungai sample --atelectasis`."""
    p = small(seed=0, diameter_mm=30.0, location="juxta_pleural", atelectasis=True, ground_glass=True)
    assert p.meta["tumour"]["atelectasis_ml"] == p.meta["volumes_ml"]["atelectasis"] > 0
    assert p.meta["tumour"]["ground_glass_ml"] == p.meta["volumes_ml"]["tumour_ground_glass"] > 0


def test_random_atelectasis_case_with_a_juxta_pleural_tumour_has_atelectasis():
    """random_spec draws the location independently of the hard case: seed 26 is a juxta-pleural atelectasis case
    (training / eval cohorts), which had no atelectasis voxel."""
    spec = random_spec(26)
    assert spec.tumour.atelectasis and spec.tumour.location == "juxta_pleural"
    p = make_phantom(spec, seed=26)
    assert (arrays(p)[1] == L.ATELECTASIS).sum() > 0 and p.meta["hard_case"]["atelectasis"]


def test_a_hard_case_that_could_not_be_planted_is_not_flagged_and_is_warned(monkeypatch):
    """A requested feature with no voxel in the label map is not recorded as a hard case; meta.json and the console
    (an InputNote: the CLI prints it as 'warning: ...') say so."""
    from lungai.errors import InputNote
    from lungai.synthetic import tumour as T

    monkeypatch.setattr(T, "_atelectasis_wedge", lambda outward, rel, dist, length, free, grid, radius, **kw:
                        (np.zeros(free.shape, bool), "nowhere", outward))
    with pytest.warns(InputNote, match="atelectasis was requested but could not be planted"):
        p = small(seed=0, diameter_mm=30.0, location="free", atelectasis=True)
    assert (arrays(p)[1] == L.ATELECTASIS).sum() == 0
    assert p.meta["hard_case"]["atelectasis"] is False and not p.meta["is_hard_case"]
    assert any("atelectasis" in w for w in p.meta["warnings"])
    # an effusion on a grid too coarse to hold it: the same rule
    with pytest.warns(InputNote, match="pleural effusion was requested but could not be planted"):
        q = make_phantom(PhantomSpec(shape=(16, 16, 16), spacing=(10.0, 10.0, 5.0), tumour=None, effusion=True), seed=0)
    assert (arrays(q)[1] == L.EFFUSION).sum() == 0 and q.meta["hard_case"]["pleural_effusion"] is False


@pytest.mark.parametrize("thickness", [1.0, 5.0])
def test_slice_thickness_range(thickness):
    nz = int(150 / thickness)
    p = make_phantom(PhantomSpec(shape=(64, 64, nz), spacing=(5.0, 5.0, thickness),
                                 tumour=TumourSpec(diameter_mm=30)), seed=0)
    assert p.ct.GetSpacing()[2] == thickness
    assert L.tumour_mask(arrays(p)[1]).any()


def test_no_tumour_phantom():
    p = make_phantom(PhantomSpec(**SMALL, tumour=None), seed=0)
    assert p.meta["tumour"] is None and not L.tumour_mask(arrays(p)[1]).any()


def test_bad_specs_are_refused():
    with pytest.raises(InputError, match="5-100 mm"):
        small(diameter_mm=150.0)
    with pytest.raises(InputError, match="location"):
        small(location="liver")
    with pytest.raises(InputError, match="slice thickness"):
        make_phantom(PhantomSpec(shape=(64, 64, 20), spacing=(5, 5, 8.0)))


def test_random_specs_vary_and_repeat():
    specs = [random_spec(s) for s in range(40)]
    assert random_spec(7).to_dict() == random_spec(7).to_dict()
    assert len({s.tumour.location for s in specs}) == 4
    hard = sum(s.tumour.atelectasis or s.effusion or s.tumour.diameter_mm < 10 for s in specs)
    assert 5 <= hard <= 30
    assert all(5.0 <= s.tumour.diameter_mm <= 100.0 for s in specs)


def test_sample_and_synthetic_cohort_writes_are_checked_complete(tmp_path, monkeypatch, capsys):
    """Session 32: `lungai sample` and the synthetic cohort wrote their NIfTI files with sitk.WriteImage, unchecked (ITK
    does not raise on a short write: a full disk left a cut-off ct.nii.gz as the result).  Now through the one verified
    writer (lungai.io.write.write_image): a write found incomplete is refused and no file of that name is left."""
    import lungai.io.nifti
    from lungai.cli import main
    from lungai.fusion.synthetic import make_cohort

    monkeypatch.setattr(lungai.io.nifti, "nifti_incomplete", lambda path, full=True: "cut off (simulated full disk)")
    out = tmp_path / "case"
    assert main(["sample", "-o", str(out), "--slice-thickness", "5"]) != 0
    err = capsys.readouterr().err
    assert f"cannot write {out / 'ct.nii.gz'}" in err and "disk may be full" in err
    assert not (out / "ct.nii.gz").exists() and not list(out.glob(".partial-*"))
    with pytest.raises(InputError, match="disk may be full"):
        make_cohort(tmp_path / "cohort", n=3, n_genes=20, module_size=3, ct_shape=(32, 32, 16), missing_fraction=0.0)
    assert not list((tmp_path / "cohort" / "ct").glob("*.nii.gz"))


class _Said:
    """A progress that records what is said (``update(n, message)``), its seconds due every 0.01 s."""
    tick_interval = 0.01

    def __init__(self):
        self.said = []

    def update(self, n=1, message=None):
        self.said.append((n, message))


def test_the_phantoms_steps_after_its_anatomy_say_their_start_and_give_the_same_voxels():
    """QA demofollow68 (``lungai demo``'s log): "anatomy built" stood 2-3 s until "tumour planted", and the slices'
    averaging went unsaid - the demo's timer repeats only the message shown as it started.  Planting and averaging
    now say what they do as they start (message-only updates: no step counted; then their seconds while they run),
    the three steps counted as before, the voxels and meta those of a phantom made without a progress."""
    spec = PhantomSpec(**SMALL, tumour=TumourSpec(diameter_mm=40.0, location="free"), effusion=True)
    said = _Said()
    a, b = make_phantom(spec, seed=5, progress=said), make_phantom(spec, seed=5)
    np.testing.assert_array_equal(arrays(a)[0], arrays(b)[0])
    np.testing.assert_array_equal(arrays(a)[1], arrays(b)[1])
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    starts = [m for n, m in said.said if n == 0 and "(" not in m]
    assert starts == ["planting the tumour and effusion", "averaging the slices, adding noise"], said.said
    steps = [m for n, m in said.said if n]
    assert steps == ["anatomy built", "tumour and effusion planted", "slices averaged, noise added"], said.said
    order = [m for _, m in said.said if "(" not in m]
    assert order == ["anatomy built", "planting the tumour and effusion", "tumour and effusion planted",
                     "averaging the slices, adding noise", "slices averaged, noise added"], said.said
    # a note of the planting (made in the step's worker thread) still reaches the caller
    from lungai.errors import InputNote

    with pytest.warns(InputNote, match="pleural effusion was requested but could not be planted"):
        make_phantom(PhantomSpec(shape=(16, 16, 16), spacing=(10.0, 10.0, 5.0), tumour=None, effusion=True), seed=0,
                     progress=_Said())
