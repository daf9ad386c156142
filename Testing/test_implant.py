"""Synthetic tumours implanted into (real) CT backgrounds: determinism, labels, partial volume, hard
negatives, contact, the train-seg data source.  Without ../shared the background is a tumour-free
phantom; the real-CT test uses LUNG1-002 (a background the project may train on)."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lungai.synthetic import labels as L
from lungai.synthetic.implant import ImplantSpec, implant, prepare_background, random_implant_spec


@pytest.fixture(scope="module")
def background():
    from lungai.synthetic import PhantomSpec, make_phantom

    ph = make_phantom(PhantomSpec(shape=(160, 160, 60), spacing=(2.2, 2.2, 4.0), tumour=None, noise_hu=15.0), seed=4)
    return prepare_background(ph.ct, None, "bgP")


def test_same_seed_same_case_other_seed_other_case(background):
    spec = ImplantSpec(diameter_mm=40.0, contact="free", shape="spiculated", necrosis=True, ground_glass=True)
    a_ct, a_lab, a_meta = implant(background, spec, 11)
    b_ct, b_lab, b_meta = implant(background, spec, 11)
    c_ct, _, _ = implant(background, spec, 12)
    assert np.array_equal(sitk.GetArrayViewFromImage(a_ct), sitk.GetArrayViewFromImage(b_ct))
    assert np.array_equal(sitk.GetArrayViewFromImage(a_lab), sitk.GetArrayViewFromImage(b_lab)) and a_meta == b_meta
    assert not np.array_equal(sitk.GetArrayViewFromImage(a_ct), sitk.GetArrayViewFromImage(c_ct))
    assert random_implant_spec(5) == random_implant_spec(5) and random_implant_spec(5) != random_implant_spec(6)


def test_tumour_labels_and_hard_negatives_are_not_tumour(background):
    spec = ImplantSpec(diameter_mm=35.0, contact="free", ground_glass=True, atelectasis=True, effusion=True)
    ct, lab, meta = implant(background, spec, 3)
    lab = sitk.GetArrayFromImage(lab)
    arr = sitk.GetArrayFromImage(ct)
    assert (lab == L.TUMOUR).any() and (lab == L.GROUND_GLASS).any()
    assert (lab == L.ATELECTASIS).sum() > 50 and (lab == L.EFFUSION).sum() > 50
    # hard negatives are dense like the tumour, yet 0 in the training mask
    assert np.median(arr[lab == L.ATELECTASIS]) > -200 and np.median(arr[lab == L.EFFUSION]) > -100
    from lungai.seg.dataset import _tumour_image
    mask = sitk.GetArrayFromImage(_tumour_image(sitk.GetImageFromArray(lab)))
    assert not mask[(lab == L.ATELECTASIS) | (lab == L.EFFUSION)].any()
    assert mask[(lab == L.TUMOUR) | (lab == L.GROUND_GLASS)].all()
    # the implant is tumour-dense and its volume is that of a ~35 mm lesion (clipped to the lung)
    assert np.median(arr[lab == L.TUMOUR]) > -100
    assert 5.0 < meta["implanted_ml"] < 60.0
    assert np.array_equal(sitk.GetArrayViewFromImage(ct).shape, sitk.GetArrayViewFromImage(background.ct).shape)


def test_partial_volume_edges(background):
    """Voxels just outside the tumour label carry part of the tumour: brighter than the lung they were."""
    spec = ImplantSpec(diameter_mm=30.0, contact="free", shape="round")
    ct, lab, _ = implant(background, spec, 21)
    lab = sitk.GetArrayFromImage(lab)
    before = sitk.GetArrayFromImage(background.ct).astype(float)
    after = sitk.GetArrayFromImage(ct).astype(float)
    tum = lab == L.TUMOUR
    shell = ndimage.binary_dilation(tum) & ~tum & (before < -600)
    change = after[shell] - before[shell]
    assert shell.sum() > 100
    # many shell voxels are raised part of the way (mixed voxels), not all the way to tumour density
    mixed = (change > 100) & (after[shell] < -100)
    assert mixed.mean() > 0.1, mixed.mean()
    inner = ndimage.binary_erosion(tum, iterations=2)
    assert np.median(after[inner]) > -50           # the core is solid tissue


@pytest.mark.parametrize("contact", ["mediastinum", "chest_wall", "diaphragm"])
def test_contact_tumours_abut_the_lung_border(background, contact):
    ct, lab, meta = implant(background, ImplantSpec(diameter_mm=40.0, contact=contact), 31)
    assert meta["contact"] == contact
    tum = sitk.GetArrayFromImage(lab) == L.TUMOUR
    outside_lung = background.lungs == 0
    assert (ndimage.binary_dilation(tum, iterations=2) & outside_lung).any()     # touches the wall
    # nothing outside the lung (+1 voxel) is labelled tumour
    assert not (tum & ~ndimage.binary_dilation(background.lungs > 0, iterations=1)).any()


def test_existing_tumour_stays_tumour(background):
    own = np.zeros(sitk.GetArrayViewFromImage(background.ct).shape, bool)
    own[30, 70:75, 40:45] = True
    bg = type(background)(background.ct, background.lungs.copy(), own, "with own")
    _, lab, _ = implant(bg, ImplantSpec(diameter_mm=20.0), 1)
    assert (sitk.GetArrayViewFromImage(lab)[own] == L.TUMOUR).all()


@pytest.mark.parametrize("side", ["right", "left"])
def test_chest_wall_implant_gets_its_atelectasis_in_the_lung(background, side):
    """QA: the implant's wedge pointed only away from the hilum; against the chest wall that is the wall, and 7 of 8
    chest-wall implants (30 mm, seeds 0-3, both sides) got <= 0.1 ml yet were flagged as atelectasis cases.  The
    implant now uses the phantom's wedge rule (turned into the lung)."""
    for seed in (0, 2):
        spec = ImplantSpec(diameter_mm=30.0, contact="chest_wall", side=side, atelectasis=True)
        _, lab, meta = implant(background, spec, seed)
        a = sitk.GetArrayViewFromImage(lab)
        ml = (a == L.ATELECTASIS).sum() * np.prod(background.ct.GetSpacing()) / 1000.0
        assert meta["contact"] == "chest_wall" and ml > 5.0 and "warnings" not in meta, (seed, ml, meta)
        assert meta["atelectasis_ml"] == pytest.approx(ml)
        assert (background.lungs[a == L.ATELECTASIS] == (1 if side == "right" else 2)).all()


def test_implanted_case_flags_only_what_was_planted(tmp_path, background, monkeypatch):
    """QA: implanted cases recorded "atelectasis" / "pleural_effusion" from the spec whatever was planted (evaluate
    counts them as hard cases); they now follow the label map, and implant() warns like the phantom."""
    from lungai.errors import InputNote
    from lungai.seg import dataset as D
    from lungai.synthetic import implant as I

    monkeypatch.setattr(I, "_atelectasis_wedge", lambda outward, rel, dist, length, free, grid, radius, **kw:
                        (np.zeros(free.shape, bool), "nowhere", outward))
    monkeypatch.setattr(I, "random_implant_spec", lambda s: ImplantSpec(diameter_mm=30.0, contact="free",
                                                                        atelectasis=True, effusion=True))
    sitk.WriteImage(background.ct, str(tmp_path / "P7_ct.nii.gz"))
    with pytest.warns(InputNote, match="atelectasis was requested but could not be planted"):
        case = D.implanted_cases(D.read_backgrounds(tmp_path / "P7_ct.nii.gz"), 1, seed=3, crops=False)[0]
    assert case.meta["atelectasis"] is False and case.meta["atelectasis_ml"] == 0.0
    assert case.meta["pleural_effusion"] is True and case.meta["effusion_ml"] > 0
    assert any("atelectasis" in w for w in case.meta["warnings"])


def test_implanted_cases_from_a_csv_keep_the_background_patient(tmp_path, background):
    from lungai.seg.dataset import implanted_cases, read_backgrounds

    sitk.WriteImage(background.ct, str(tmp_path / "P7_ct.nii.gz"))
    (tmp_path / "bg.csv").write_text("image,patient\nP7_ct.nii.gz,P7\n", encoding="utf-8")
    bgs = read_backgrounds(tmp_path / "bg.csv")
    assert bgs[0]["patient"] == "P7" and bgs[0]["mask"] is None
    cases = implanted_cases(bgs, 2, seed=5, crops=False)
    assert [c.patient for c in cases] == ["P7", "P7"] and cases[0].case_id == "P7_implant-5"
    m = sitk.GetArrayViewFromImage(cases[0].mask)
    assert set(np.unique(m)) <= {0, 1} and m.any() and cases[0].meta["implanted"]
    assert read_backgrounds(tmp_path / "P7_ct.nii.gz")[0]["patient"] == "P7"


def test_implanted_training_crops_are_shown_on_the_grid_seed_mode_uses(tmp_path, background):
    """Training: each implant is a crop around it with its spacing divided by the grid scale the growing box
    ends on for its size (a large tumour is seen on the x2 / x3 grid, as at inference); the background comes
    once whole (hard negatives); implant backgrounds stay in training whatever the split draws."""
    from lungai.seg.config import SegConfig
    from lungai.seg.dataset import Case, implanted_cases, read_backgrounds, split_patients, to_arrays
    from lungai.seg.infer import grid_scale_for

    cfg = SegConfig(channels=(4, 8), patch_size=(16, 16, 8))
    assert [grid_scale_for(e, cfg.seed_box_mm) for e in (20, 53, 55, 100, 113, 130, 400)] == [1, 1, 2, 2, 2, 3, 3]
    sitk.WriteImage(background.ct, str(tmp_path / "P7_ct.nii.gz"))
    bgs = read_backgrounds(tmp_path / "P7_ct.nii.gz")
    cases = implanted_cases(bgs, 6, seed=40)
    assert [c.case_id for c in cases][:2] == ["P7_background", "P7_implant-40"] and len(cases) == 7
    whole, crops = cases[0], cases[1:]
    assert whole.meta["implant_background"] and not whole.meta.get("crop")
    assert whole.image.GetSize() == background.ct.GetSize()
    full = implanted_cases(bgs, 6, seed=40, crops=False)
    for c, f in zip(crops, full):
        assert c.meta["crop"] and c.case_id == f.case_id
        ext = c.meta["extent_mm"]
        assert c.meta["grid_scale"] == grid_scale_for(ext, cfg.seed_box_mm)
        np.testing.assert_allclose(np.array(c.image.GetSpacing()) * c.meta["grid_scale"], f.image.GetSpacing())
        assert c.image.GetSize()[0] < f.image.GetSize()[0]        # a crop, not the whole CT
        # the whole implanted tumour is inside the crop
        assert sitk.GetArrayViewFromImage(c.mask).sum() == sitk.GetArrayViewFromImage(f.mask).sum()
        d = to_arrays(c, cfg)
        assert d["implanted"] and "hard_idx" not in d and d["label"].any()
    assert {c.meta["grid_scale"] for c in crops} >= {1, 2}, [c.meta["extent_mm"] for c in crops]
    others = [Case(f"Q{i}_0", f"Q{i}") for i in range(6)]
    for seed in range(5):
        train, val, test = split_patients(others + cases, 0.34, seed, test_fraction=0.2)
        assert {c.case_id for c in cases} <= {c.case_id for c in train}
        assert val and test and not {c.patient for c in val + test} & {"P7"}


def test_implant_needs_backgrounds(tmp_path, capsys):
    from lungai.cli import main

    img = tmp_path / "i"
    img.mkdir()
    assert main(["train-seg", "--images", str(img), "--masks", str(img), "-o", str(tmp_path / "m"), "--implant", "2"]) == 2
    assert "--implant needs --implant-into" in capsys.readouterr().err
    assert main(["train-seg", "--images", str(img), "--masks", str(img), "-o", str(tmp_path / "m"), "--implant", "2",
                 "--implant-into", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.shared_data
def test_implant_into_a_real_nsclc_ct(shared_data):
    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / "LUNG1-002_ct.nii.gz"))
    gtv = sitk.ReadImage(str(d / "LUNG1-002_labels.nii.gz")) == 1
    bg = prepare_background(ct, gtv, "LUNG1-002")
    out, lab, meta = implant(bg, ImplantSpec(diameter_mm=50.0, contact="mediastinum", necrosis=True,
                                             atelectasis=True), 2)
    lab = sitk.GetArrayFromImage(lab)
    assert meta["contact"] == "mediastinum" and 20 < meta["implanted_ml"] < 120
    assert (lab == L.ATELECTASIS).any()
    real = sitk.GetArrayFromImage(sitk.DICOMOrient(gtv, "LPS")) > 0
    assert (lab[real] == L.TUMOUR).all()                              # the real GTV is kept as tumour
    implanted = (lab == L.TUMOUR) & ~real
    assert not (ndimage.binary_dilation(implanted, iterations=3) & real).any()   # placed apart from it


def test_a_background_without_mask_is_named_as_taken_tumour_free(tmp_path, background):
    """QA: a single --implant-into CT (or a CSV row without mask) was silently trained on as tumour-free - an NSCLC
    CT's GTV then a source of background patches and of implant sites: each such CT is named in a note (printed by
    train-seg, kept in model.json training.notes) with the CSV image,mask fix; a CT given with its mask is not."""
    from lungai.seg.dataset import implanted_cases, read_backgrounds, unmasked_backgrounds_note

    sitk.WriteImage(background.ct, str(tmp_path / "P7_ct.nii.gz"))
    note = unmasked_backgrounds_note(implanted_cases(read_backgrounds(tmp_path / "P7_ct.nii.gz"), 1, seed=3))
    assert note.startswith("1 implant background CT given without a tumour mask, taken as tumour-free")
    assert str(tmp_path / "P7_ct.nii.gz") in note and "give image,mask in a CSV" in note
    own = np.zeros(sitk.GetArrayViewFromImage(background.ct).shape, np.uint8)
    own[30, 70:75, 40:45] = 1
    m = sitk.GetImageFromArray(own)
    m.CopyInformation(background.ct)
    sitk.WriteImage(m, str(tmp_path / "P7_gtv.nii.gz"))
    (tmp_path / "bg.csv").write_text("image,mask\nP7_ct.nii.gz,P7_gtv.nii.gz\n", encoding="utf-8")
    assert unmasked_backgrounds_note(implanted_cases(read_backgrounds(tmp_path / "bg.csv"), 1, seed=3)) is None
    assert implanted_cases(read_backgrounds(tmp_path / "P7_ct.nii.gz"), 1, seed=3, crops=False)[0].meta.get(
        "background_without_mask") is None          # (evaluation: no background cases)
