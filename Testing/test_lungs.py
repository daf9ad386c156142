"""lungai.lungs: automatic lung masks against the phantoms' ground truth (and real CTs)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lungai.errors import InputError
from lungai.lungs import LEFT, RIGHT, check, rt_lung_dice, segment, segment_lungs
from lungai.overlap import dice
from lungai.synthetic import PhantomSpec, TumourSpec, labels as L, make_phantom



def evaluate(phantom):
    pred = sitk.GetArrayFromImage(segment_lungs(phantom.ct).labels)
    lab = sitk.GetArrayFromImage(phantom.labels)
    side = phantom.meta["tumour"]["side"] if phantom.meta["tumour"] else None
    truth = L.lung_truth(lab, side)
    return pred, lab, dice(pred == RIGHT, truth["right"]), dice(pred == LEFT, truth["left"])


CASES = {
    "juxta_pleural_40_right": TumourSpec(diameter_mm=40, location="juxta_pleural", side="right"),
    "juxta_pleural_20_left": TumourSpec(diameter_mm=20, location="juxta_pleural", side="left", shape="spiculated"),
    "free_60_right_atelectasis": TumourSpec(diameter_mm=60, location="free", side="right", atelectasis=True),
    "juxta_vascular_15_left": TumourSpec(diameter_mm=15, location="juxta_vascular", side="left"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dice_per_lung_and_pleural_tumours_kept(name):
    phantom = make_phantom(PhantomSpec(shape=(160, 160, 60), spacing=(2.2, 2.2, 4.0), tumour=CASES[name]), seed=11)
    pred, lab, d_right, d_left = evaluate(phantom)
    assert d_right >= 0.95 and d_left >= 0.95, (d_right, d_left)
    tumour = L.tumour_mask(lab)
    side_value = RIGHT if phantom.meta["tumour"]["side"] == "right" else LEFT
    # with atelectasis the lesion reaches the chest wall through the collapsed lung: most is kept
    kept = 0.7 if CASES[name].atelectasis else 0.9
    assert (pred[tumour] == side_value).mean() >= kept


def test_sample_case_and_effusion(sample_dir):
    ct = sitk.ReadImage(str(sample_dir / "ct.nii.gz"))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_dir / "labels.nii.gz")))
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    truth = L.lung_truth(lab, "right")
    assert dice(pred == RIGHT, truth["right"]) >= 0.95 and dice(pred == LEFT, truth["left"]) >= 0.95
    assert (pred[L.tumour_mask(lab)] == RIGHT).mean() >= 0.9
    eff = make_phantom(PhantomSpec(shape=(160, 160, 60), spacing=(2.2, 2.2, 4.0), effusion=True,
                                   tumour=TumourSpec(diameter_mm=25)), seed=3)
    epred, elab, d_right, d_left = evaluate(eff)
    assert d_right >= 0.95 and d_left >= 0.95
    assert (epred[elab == L.EFFUSION] == 0).mean() > 0.95  # fluid is not lung


def test_airways_are_not_lung(sample_dir, small_phantom):
    ct = sitk.ReadImage(str(sample_dir / "ct.nii.gz"))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_dir / "labels.nii.gz")))
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    assert (pred[lab == L.AIRWAYS] == 0).mean() > 0.9
    # on a coarse 3.5 mm grid the bronchi are 1-2 voxels wide: most are still excluded
    pred, lab, d_right, d_left = evaluate(small_phantom)
    assert (pred[lab == L.AIRWAYS] == 0).mean() > 0.6
    assert d_right >= 0.95 and d_left >= 0.95


def test_orientation_does_not_matter(small_phantom):
    """A flipped / permuted storage order gives the same lungs on the same physical voxels."""
    ref = segment_lungs(small_phantom.ct).labels
    flipped = sitk.DICOMOrient(small_phantom.ct, "RAI")
    out = segment_lungs(flipped).labels
    assert out.GetDirection() == flipped.GetDirection() and out.GetOrigin() == flipped.GetOrigin()
    back = sitk.DICOMOrient(out, "LPS")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(ref))


def test_no_lungs_is_a_clear_error():
    water = sitk.GetImageFromArray(np.zeros((30, 64, 64), np.int16))
    water[:, :, :] = 0
    arr = np.full((30, 64, 64), -1000, np.int16)
    yy, xx = np.mgrid[:64, :64]
    arr[:, (yy - 32) ** 2 + (xx - 32) ** 2 < 28 ** 2] = 20  # a water cylinder in air
    img = sitk.GetImageFromArray(arr)
    with pytest.raises(InputError, match="no lungs found") as err:
        segment_lungs(img)
    # it names the field of view and the padding of a tilted resampling, not "a chest CT holds no air"
    assert "field of view misses the lungs" in str(err.value) and "tilted" in str(err.value)
    assert "defaultPixelValue=-3024" in err.value.fix


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["lung1", "lung2"])
def test_real_ct_volumes_are_plausible(shared_data, case):
    ct = sitk.ReadImage(str(shared_data / "pyradiomics_lung" / f"{case}_image.nrrd"))
    result = segment_lungs(ct)
    for name in ("right_lung", "left_lung"):
        assert 600 < result.volumes_ml[name] < 4500, result.volumes_ml
    assert result.volumes_ml["right_lung"] > result.volumes_ml["left_lung"]
    lesion = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "pyradiomics_lung" / f"{case}_label.nrrd")))
    pred = sitk.GetArrayFromImage(result.labels)
    # the trachea is not part of either lung: the top slice's midline air is excluded
    assert any("trachea" in n for n in result.notes)
    if case == "lung1":  # a nodule inside the right lung
        assert (pred[lesion > 0] > 0).mean() > 0.9


def _cropped(phantom, box):
    """CT and label arrays of ``phantom`` cut to ``box`` (x, y, z slices, SimpleITK order)."""
    ct, lab = phantom.ct[box], phantom.labels[box]
    return ct, sitk.GetArrayFromImage(lab)


def test_lung_open_to_the_field_of_view_edge_is_segmented_and_flagged(small_phantom):
    """A lung cut by the image border, or by the scanner's padding outside the reconstruction
    circle, touches the border like outside air: the lungs are still found, with a warning."""
    whole = segment_lungs(small_phantom.ct)
    assert whole.cut == [] and not any("field of view" in n for n in whole.notes)
    ct, lab = _cropped(small_phantom, (slice(16, None), slice(None), slice(None)))  # lateral right lung cut off
    arr = sitk.GetArrayFromImage(ct)
    assert (arr[:, :, 0] < -400).sum() > 50      # the right lung is open to the image border
    padded = sitk.GetArrayFromImage(small_phantom.ct)
    yy, xx = np.mgrid[:96, :96]
    padded[:, (yy - 47.5) ** 2 + (xx - 60.5) ** 2 > 46 ** 2] = -3024   # reconstruction circle through the right lung
    pad_img = sitk.GetImageFromArray(padded)
    pad_img.CopyInformation(small_phantom.ct)
    for image, labels in ((ct, lab), (pad_img, sitk.GetArrayFromImage(small_phantom.labels))):
        result = segment_lungs(image)
        pred = sitk.GetArrayFromImage(result.labels)
        truth = L.lung_truth(labels, "right")
        if image is pad_img:
            truth = {k: v & (padded > -1100) for k, v in truth.items()}
        assert dice(pred == RIGHT, truth["right"]) >= 0.9 and dice(pred == LEFT, truth["left"]) >= 0.9
        assert any("edge of the field of view" in n for n in result.cut), result.notes


def _below_a_gas_bubble(ct, radius_mm, bubble_ml):
    """``ct`` with 12 slices of abdomen below it holding a closed gas bubble (stomach) of ``bubble_ml`` (radius
    ``radius_mm`` in-plane); (image, the bubble's mask on those 12 slices)."""
    arr = sitk.GetArrayFromImage(ct).astype(np.float32)
    sz, sy, sx = ct.GetSpacing()[::-1]
    body = ndimage.binary_fill_holes(arr[0] > -500)
    rng = np.random.default_rng(0)
    abdomen = np.where(body, 40.0, -1000.0)[None].repeat(12, axis=0) + rng.normal(0, 15, (12,) + body.shape)
    cy, cx = np.argwhere(body).mean(axis=0)
    zz, yy, xx = np.mgrid[:12, :body.shape[0], :body.shape[1]]
    bubble = (((zz - 6) * sz / 24.5) ** 2 + ((yy - cy) * sy / radius_mm) ** 2 + ((xx - cx) * sx / radius_mm) ** 2) <= 1
    ml = bubble.sum() * sx * sy * sz / 1000.0
    assert not (bubble & ~body).any() and abs(ml - bubble_ml) < max(2, 0.02 * bubble_ml)
    abdomen[bubble] = -1000.0 + rng.normal(0, 15, int(bubble.sum()))
    image = sitk.GetImageFromArray(np.concatenate([abdomen, arr]).astype(np.int16))   # 12 slices below the chest
    image.SetSpacing(ct.GetSpacing())
    image.SetDirection(ct.GetDirection())
    image.SetOrigin(ct.TransformIndexToPhysicalPoint((0, 0, -12)))
    return image, bubble


def _with_a_tracheostoma(ct, trachea, slices, width=3):
    """``ct`` with an air channel ``width`` voxels wide from the ``trachea`` (a mask on ``ct``'s array) to the front of
    the body on ``slices`` above the lungs: a tracheostoma, the lungs reached from the outside air."""
    arr = sitk.GetArrayFromImage(ct).copy()
    for k in slices:
        y, x = (int(round(c)) for c in np.argwhere(trachea[k]).mean(axis=0))
        arr[k, :y + 1, x - width // 2:x + width // 2 + 1] = -1000
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(ct)
    return out


@pytest.mark.parametrize("bubble", [False, True])
def test_lungs_open_to_the_outside_air_through_a_tracheostoma_are_found(small_phantom, bubble):
    """QA: a tracheostoma (laryngectomy), or the nose / an open mouth in view, joins the trachea and through it both
    lungs to the air around the patient: they were taken for outside air - "no lungs found" (LUNG1-003 / -002 with a
    9 mm stoma above the lungs), or, with a 212 ml closed stomach bubble below the chest, the bubble labelled as the one
    lung.  The air the body encloses on each slice is the lungs: the same masks as without the stoma, with a note."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    top = int(np.flatnonzero(np.isin(lab, [L.RIGHT_LUNG, L.LEFT_LUNG]).any(axis=(1, 2)))[-1])
    ct = _with_a_tracheostoma(small_phantom.ct, lab == L.AIRWAYS, range(top + 1, lab.shape[0]))   # 10.5 mm wide
    reference = small_phantom.ct
    if bubble:
        (ct, in_bubble), (reference, _) = (_below_a_gas_bubble(image, 45.5, 212) for image in (ct, reference))
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    truth = L.lung_truth(lab, "right")
    lungs = pred[12:] if bubble else pred
    assert dice(lungs == RIGHT, truth["right"]) >= 0.95 and dice(lungs == LEFT, truth["left"]) >= 0.95
    if bubble:
        assert not pred[:12][in_bubble].any()
    assert any("open to the outside air" in n for n in result.notes) and result.side == []
    # the lungs of the CT without the stoma, less the trachea's part that the stoma opened
    plain = sitk.GetArrayFromImage(segment_lungs(reference).labels)
    assert (pred != plain).sum() < 0.01 * (plain > 0).sum()


@pytest.mark.shared_data
def test_real_ct_with_a_tracheostoma_is_segmented(shared_data):
    """QA: LUNG1-003 with a 9 mm stoma from the trachea to the skin on the 3rd-5th slices above the lungs: "no lungs
    found"; now the lungs of the CT without it (2148.8 / 1720.5 ml), with the note."""
    folder = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(folder / "LUNG1-003_ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "LUNG1-003_labels.nii.gz")))
    top = int(np.flatnonzero((ref >= 3).any(axis=(1, 2)))[-1])
    arr = sitk.GetArrayFromImage(ct)
    trachea = np.zeros(arr.shape, bool)
    for k in range(top + 3, top + 6):
        regions, _ = ndimage.label(arr[k] < -500)
        trachea[k] = regions == regions[173, 256]       # the trachea's air on those slices
        assert 100 < trachea[k].sum() < 600
    stoma = _with_a_tracheostoma(ct, trachea, range(top + 3, top + 6), width=9)
    result, plain = segment_lungs(stoma), segment_lungs(ct)
    assert result.volumes_ml == plain.volumes_ml, (result.volumes_ml, plain.volumes_ml)
    assert np.array_equal(sitk.GetArrayFromImage(result.labels), sitk.GetArrayFromImage(plain.labels))
    assert any("open to the outside air" in n for n in result.notes)


@pytest.mark.parametrize("radius_mm, bubble_ml", [(35.0, 127), (45.5, 212)])
def test_lung_open_to_the_field_of_view_edge_is_found_below_a_closed_gas_bubble(small_phantom, radius_mm, bubble_ml):
    """Both lungs (joined by the trachea) open to the image border are taken for outside air by the first rule: a
    closed gas pocket in the abdomen (stomach, bowel) of more than 100 ml is then all the air left in the body.  The
    fallback runs on the lung-sized air thrown away, not on what is left: both lungs are found, the bubble is not lung."""
    ct, lab = _cropped(small_phantom, (slice(16, None), slice(None), slice(None)))  # lateral right lung cut off
    image, bubble = _below_a_gas_bubble(ct, radius_mm, bubble_ml)
    result = segment_lungs(image)
    pred = sitk.GetArrayFromImage(result.labels)
    truth = L.lung_truth(lab, "right")
    assert not pred[:12][bubble].any()
    assert dice(pred[12:] == RIGHT, truth["right"]) >= 0.9 and dice(pred[12:] == LEFT, truth["left"]) >= 0.9
    assert any("edge of the field of view" in n for n in result.cut), result.notes


def test_lungs_cut_by_the_first_or_last_slice_are_flagged(small_phantom, tmp_path, capsys):
    from lungai.cli import main

    assert not any("slice" in n for n in segment_lungs(small_phantom.ct).cut)
    ct, _ = _cropped(small_phantom, (slice(None), slice(None), slice(15, 20)))   # 25 mm of the chest
    result = segment_lungs(ct)
    assert result.cut == [result.notes[-1]] and "touch the top and bottom slices" in result.cut[0]
    assert "lower bound" not in result.cut[0]
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(ct, str(path))
    assert main(["lungs", str(path), "-o", str(tmp_path / "lungs.nii.gz")]) == 0
    assert "warning: the lungs touch the top and bottom slices: the scan does not cover the whole lungs" in capsys.readouterr().out
    # a single voxel of lung on the edge is partial volume, not a cut lung
    from lungai.lungs.segment import cut_by_scan

    one = np.zeros((10, 40, 40), bool)
    one[3:7, 10:30, 10:30] = True
    one[0, 20, 20] = one[4, 0, 20] = True
    assert cut_by_scan(one, (1.0, 1.0, 3.0)) == []
    one[9, 5:35, 5:35] = True
    assert cut_by_scan(one, (1.0, 1.0, 3.0)) == [segment.SLICE_CUT_NOTE.format("top slice")]


def test_output_without_an_image_extension_is_refused_before_any_work(small_phantom, tmp_path, capsys, monkeypatch):
    """QA: `lungai lungs CT -o lungs003` failed "unknown image format" only after reading and segmenting the CT
    (~65 s on a whole CT): the output name is checked first (lungai.io.write.check_image_name)."""
    import lungai.io
    import lungai.lungs
    from lungai.cli import main

    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(path))

    def no_work(*a, **k):
        raise AssertionError("the CT was read / segmented before the output name was checked")

    monkeypatch.setattr(lungai.io, "read_ct", no_work)
    monkeypatch.setattr(lungai.lungs, "segment_lungs", no_work)
    assert main(["lungs", str(path), "-o", str(tmp_path / "lungs003")]) == 2
    err = capsys.readouterr().err
    assert "cannot write lungs003: unknown image format" in err and "name the output .nii.gz" in err
    assert list(tmp_path.iterdir()) == [path]


def test_touching_lungs_do_not_take_other_air_in_the_body():
    """Lungs that touch are eroded apart and re-grown: only within the air region that holds them, so a separate
    stomach / bowel gas pocket or the larynx is not lung (LUNG1-002: 33 ml of gut gas was labelled left lung)."""
    mask = np.zeros((30, 40, 60), bool)
    mask[5:25, 5:35, 5:27] = mask[5:25, 5:35, 33:55] = True     # two lungs ...
    mask[10:20, 15:25, 27:33] = True                             # ... touching (anterior junction)
    mask[0:3, 15:25, 40:50] = True                               # a gas pocket below the left lung
    parts = segment._split_two(mask, min_voxels=100)
    assert len(parts) == 2
    assert not (parts[0] | parts[1])[0:3].any()
    assert (parts[0] | parts[1]).sum() == mask[3:].sum()
    assert all(ndimage.label(p)[1] == 1 for p in parts)


def _one_side(phantom, right: bool):
    """``phantom``'s CT cut through the midline, keeping the patient's right (low x) or left half; its truth."""
    nx = phantom.ct.GetSize()[0]
    box = (slice(0, nx // 2), slice(None), slice(None)) if right else (slice(nx // 2, None), slice(None), slice(None))
    return _cropped(phantom, box)


@pytest.mark.parametrize("right", [True, False])
def test_ct_cropped_through_the_midline_gets_the_side_of_its_lung_with_a_warning(small_phantom, right):
    """One lung in view: its side comes from the anatomy (the body is cut by the border beyond the midline), never from
    the centre of the cropped body; a note says the right/left label is uncertain, as a warning."""
    ct, lab = _one_side(small_phantom, right)
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    truth = L.lung_truth(lab, "right")["right" if right else "left"]
    value = RIGHT if right else LEFT
    assert dice(pred == value, truth) >= 0.9 and not (pred == (LEFT if right else RIGHT)).any()
    assert any("right/left label is uncertain" in n for n in result.warnings), result.notes
    assert not any("0 ml of airways" in n for n in result.notes), result.notes


@pytest.mark.parametrize("right", [True, False])
@pytest.mark.parametrize("cols", [56, 62])
def test_ct_cropped_through_the_mediastinum_adds_no_mediastinum_to_the_lung(small_phantom, right, cols):
    """A CT cut through the mediastinum (the image border 8 / 14 voxels - 28 / 49 mm - beyond the midline: one lung and
    the mediastinum, or the other lung's medial edge too): the centre of the body in view is not the patient's, and the
    heart's concavity on the lung's medial side was taken for a pleural notch - 150-200 ml of mediastinum in the lung
    (LUNG1-002 / LUNG1-003 cut likewise: about 0.5 L).  Soft tissue in the lungs stays that of the truth's rim."""
    nx = small_phantom.ct.GetSize()[0]
    box = (slice(0, cols), slice(None), slice(None)) if right else (slice(nx - cols, None), slice(None), slice(None))
    ct, lab = _cropped(small_phantom, box)
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    hu = sitk.GetArrayFromImage(ct)
    truth = L.lung_truth(lab, "right")
    value = RIGHT if right else LEFT
    assert dice(pred == value, truth["right" if right else "left"]) >= 0.95
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    soft, soft_truth = (float(((m > 0) & (hu > -300)).sum()) * voxel_ml for m in (pred, truth["right"] | truth["left"]))
    assert soft - soft_truth < 30.0, (soft, soft_truth)


@pytest.mark.parametrize("right", [True, False])
def test_ct_cropped_through_the_trachea_removes_the_cut_airways(small_phantom, right):
    """A CT cut through the trachea (the phantom's midline column, its trachea and main bronchi at x 33-63): the trachea
    lies at the image's border, about 80 mm from the centre of the body in view where it was looked for - "no trachea
    found", and 18-19 ml of trachea and bronchi (open to the lung) were labelled lung (LUNG1-003 cut at x < 256 / x >=
    256: 40 / 25 ml of air below -850 HU and the mediastinum around it).  It is looked for at the cut border too, with
    the bronchi open to that border; cut a little before the trachea's centre (none in view wide enough), a note says
    the airways were not removed."""
    nx = small_phantom.ct.GetSize()[0]
    for cols, found in ((50, True), (46, False)):
        box = (slice(0, cols), slice(None), slice(None)) if right else (slice(nx - cols, None), slice(None), slice(None))
        ct, lab = _cropped(small_phantom, box)
        result = segment_lungs(ct)
        pred = sitk.GetArrayFromImage(result.labels)
        voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
        airway_ml = float(((pred > 0) & (lab == L.AIRWAYS)).sum()) * voxel_ml
        side = "left" if right else "right"
        if found:
            assert airway_ml < 5.0, airway_ml
            assert any("removed" in n and f"at the image's {side} border" in n for n in result.notes), result.notes
            truth = L.lung_truth(lab, "right")["right" if right else "left"]
            assert dice(pred == (RIGHT if right else LEFT), truth) >= 0.97
        else:
            assert any(f"not at the image's {side} border" in n and "may be labelled lung" in n
                       for n in result.notes), result.notes


@pytest.mark.parametrize("box", [slice(0, 30), slice(60, None)])
def test_ct_cropped_through_a_lung_says_no_trachea_not_cut_by_the_border(small_phantom, box):
    """A CT cut through one lung's lateral part (the phantom's first 30 / last 36 columns; its trachea at x 46-49,
    60-100 mm from the border): the note said the trachea and bronchi "cut by that border" may be labelled lung
    (LUNG1-003 x < 150 or x >= 150 alike).  That border cuts a lung, not the mediastinum: "no trachea found in the
    upper slices"."""
    ct, _ = _cropped(small_phantom, (box, slice(None), slice(None)))
    result = segment_lungs(ct)
    assert not any("cut by that border" in n for n in result.notes), result.notes
    assert any("no trachea found in the upper slices" in n for n in result.notes), result.notes


@pytest.mark.parametrize("k0, radius", [(8, 18.0), (16, 14.0)])
def test_ct_cropped_through_the_trachea_keeps_a_bulla_on_the_border_in_the_lung(small_phantom, k0, radius):
    """A walled air space (a bulla: -990 HU, a one-voxel wall of -700 HU, 23 / 11 ml in view) in the right lung, which
    reaches (-800 HU) the border of a CT cut through the trachea (the phantom's first 50 columns) and opened by it, at
    the lung's base (slice 8: its face 25-50 mm below the airways found from the trachea) or at the hilum's height
    (slice 16, round): it was removed as a main bronchus cut by that border ("23 / 11 ml more of airways"; LUNG1-003
    cut at x < 256: a 2 / 13 ml bulla at its base, 0 ml of it left in the lung).  It is lung; the trachea is still
    removed."""
    ct, lab = _cropped(small_phantom, (slice(0, 50), slice(None), slice(None)))
    a = sitk.GetArrayFromImage(ct)
    sx, sy, sz = ct.GetSpacing()
    j0 = float(np.argwhere(L.lung_truth(lab, "right")["right"][k0])[:, 0].mean())
    zz, yy, xx = np.mgrid[:a.shape[0], :a.shape[1], :a.shape[2]]
    d = np.sqrt(((zz - k0) * sz) ** 2 + ((yy - j0) * sy) ** 2 + ((xx - 46.0) * sx) ** 2)
    a[(d < radius + 14.0) & (a > -800.0)] = -800.0       # lung reaching the border
    inner, shell = d < radius, (d >= radius) & (d < radius + 4.0)
    a[inner] = -990.0
    a[shell] = np.maximum(a[shell], -700.0)
    bulla = sitk.GetImageFromArray(a)
    bulla.CopyInformation(ct)
    result = segment_lungs(bulla)
    pred = sitk.GetArrayFromImage(result.labels)
    assert any("trachea, main and lobar bronchi removed" in n for n in result.notes), result.notes
    assert not any("more of airways cut by that border" in n for n in result.notes), result.notes
    assert (pred[inner] == RIGHT).mean() >= 0.9, ((pred[inner] == RIGHT).mean(), result.notes)


@pytest.mark.parametrize("rows", [38, 42])
def test_ct_cut_by_the_anterior_border_adds_no_heart_to_the_lungs(small_phantom, rows):
    """A CT whose field of view cuts the anterior chest (the first 38 / 42 rows - 133 / 147 mm - cut off: the body's
    front and the lungs' anterior edges out of view): the centre of the body in view lies behind the patient's, and
    the heart's concavity at a lung's anterior-medial side passed for a pleural notch - a wedge of heart in the lung,
    10-15 ml of soft tissue outside the truth (LUNG1-003 cut at y >= 110: 19 ml in the left lung).  Now no more than in
    the whole CT (16 ml, the partial-volume rim)."""
    ct, lab = _cropped(small_phantom, (slice(None), slice(rows, None), slice(None)))
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    hu = sitk.GetArrayFromImage(ct)
    truth = L.lung_truth(lab, "right")
    assert dice(pred == RIGHT, truth["right"]) >= 0.95 and dice(pred == LEFT, truth["left"]) >= 0.95
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    extra = float(((pred > 0) & (hu > -300) & ~(truth["right"] | truth["left"])).sum()) * voxel_ml
    assert extra < 20.0, extra


@pytest.mark.parametrize("rows", [38, 42])
def test_ct_cut_in_front_and_behind_fills_no_hollow_beside_the_spine(small_phantom, rows):
    """A CT whose field of view cuts the anterior chest and the back (the first 38 / 42 rows cut off, and the last
    26: 70 - 100 mm of body on the image's last row): that row is the image's border, not the posterior wall, and the
    ellipse the anterior cut's rule fitted through it lay too far forward and too deep - 32 / 30 ml of soft tissue
    outside the truth in the lungs (LUNG1-003 cut to y 130-319: the hollow beside the spine, bone, in the right lung).
    Such slices keep the centre of the body in view: 13 / 10 ml (17 ml with the back in view)."""
    ct, lab = _cropped(small_phantom, (slice(None), slice(rows, 70), slice(None)))
    hu = sitk.GetArrayFromImage(ct)
    assert (hu[:, -1, :] > -300).any(axis=1).mean() > 0.5      # the body reaches the last row
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    truth = L.lung_truth(lab, "right")
    assert dice(pred == RIGHT, truth["right"]) >= 0.95 and dice(pred == LEFT, truth["left"]) >= 0.95
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    extra = float(((pred > 0) & (hu > -300) & ~(truth["right"] | truth["left"])).sum()) * voxel_ml
    assert extra < 20.0, extra


@pytest.mark.parametrize("cols, side", [((8, 45), RIGHT), ((12, 47), RIGHT), ((50, 86), LEFT), ((49, 84), LEFT)])
def test_one_lung_in_a_ct_cut_by_both_side_borders_gets_its_side_from_the_deeper_cut(small_phantom, cols, side):
    """A small field of view cut through the lateral chest wall and cropped through the mediastinum: both side borders
    cut the body, and the lung reaching the cut at the mediastinum lay "against the body's wall" there - the right
    lung was labelled left (QA: pyradiomics lung1 / lung2 cut at x < 240).  The border through the mediastinum cuts
    the deeper body: the midline is beyond it."""
    ct, lab = _cropped(small_phantom, (slice(*cols), slice(None), slice(None)))
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    truth = L.lung_truth(lab, "right")["right" if side == RIGHT else "left"]
    assert set(np.unique(pred)) == {0, side}, result.volumes_ml
    assert dice(pred == side, truth) >= 0.9
    assert any("the deeper cut of the two" in n for n in result.side), result.notes


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["lung1", "lung2"])
def test_real_small_fov_ct_cropped_to_one_lung_gets_its_side_and_no_mediastinum(shared_data, case):
    """QA: pyradiomics lung1 / lung2 (fields of view of 292 / 321 mm cutting the body on both sides) cut at x < 240 /
    x >= 272: the right lung labelled left and the left lung right, with 79-298 ml of soft tissue (> -300 HU) that the
    whole CT's mask leaves out (the mediastinum taken for a pleural notch); now the side of the whole CT's mask, Dice
    >= 0.94 against it on the same voxels, at most 5 ml of such soft tissue."""
    ct = sitk.ReadImage(str(shared_data / "pyradiomics_lung" / f"{case}_image.nrrd"))
    whole = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    for cols, side in ((slice(None, 240), RIGHT), (slice(272, None), LEFT)):
        result = segment_lungs(ct[cols, :, :])
        pred = sitk.GetArrayFromImage(result.labels)
        ref, hu = whole[:, :, cols], sitk.GetArrayFromImage(ct)[:, :, cols]
        assert set(np.unique(pred)) == {0, side}, result.volumes_ml
        assert dice(pred == side, ref == side) >= 0.94
        assert ((pred > 0) & (ref == 0) & (hu > -300)).sum() * voxel_ml <= 5.0


def test_one_lung_in_a_whole_body_gets_its_side_from_the_chest_wall(small_phantom):
    """The left lung gone (filled with soft tissue, the body whole): the right lung lies against the body's right wall."""
    arr = sitk.GetArrayFromImage(small_phantom.ct)
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    arr[ndimage.binary_dilation(truth["left"], iterations=2) & (arr < -300)] = 30
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(small_phantom.ct)
    result = segment_lungs(img)
    pred = sitk.GetArrayFromImage(result.labels)
    assert dice(pred == RIGHT, truth["right"]) >= 0.9 and not (pred == LEFT).any()
    assert any("against the body's right wall" in n and "uncertain" in n for n in result.warnings), result.notes


def test_trachea_shorter_than_a_trachea_is_not_removed():
    """A 'trachea' candidate of one slice (larynx, a lung's apex) is no trachea: no '0 ml of airways removed' note."""
    from lungai.lungs.airways import find_central_airways

    hu = np.full((40, 60, 60), 40.0, np.float32)
    hu[39, 25:33, 25:33] = -1000.0                 # a small dark air region on the top slice only
    inside = hu < -400
    airways, note = find_central_airways(hu, inside, hu, (1.0, 1.0, 3.0), 30.0, 0.003)
    assert airways is None and "no trachea found" in note


@pytest.mark.shared_data
def test_real_ct_touching_lungs_one_region_each_and_no_false_cut_warning(shared_data):
    """LUNG1-002: the lungs touch; gut gas (slices 0-10) and larynx air (102-110) are no lung, so no false 'scan does
    not cover the whole lungs' warning (the reference lungs span slices 6-97 of 111)."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    result = segment_lungs(sitk.ReadImage(str(nifti / "LUNG1-002_ct.nii.gz")))
    pred = sitk.GetArrayFromImage(result.labels)
    assert result.cut == [] and not any("slice" in n for n in result.notes), result.notes
    for value in (RIGHT, LEFT):
        lab, n = ndimage.label(pred == value)
        sizes = np.bincount(lab.ravel())[1:]
        assert sizes.max() >= 0.995 * sizes.sum(), (value, n, sorted(sizes)[-3:])


@pytest.mark.shared_data
@pytest.mark.parametrize("case, cols", [("LUNG1-002", slice(0, 280)), ("LUNG1-003", slice(250, None))])
def test_real_ct_cropped_through_the_mediastinum_adds_no_mediastinum_to_the_lung(shared_data, case, cols):
    """LUNG1-002 cut at x < 280 (the right lung and the mediastinum), LUNG1-003 at x >= 250 (the left lung and the
    mediastinum): about 0.5 L of mediastinum (-90 HU) was labelled lung (Dice 0.85 / 0.82 against the oncologist's lung
    cut likewise); now 0.92 / 0.94, the volume within 10 % of the reference's."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / f"{case}_ct.nii.gz"))[cols, :, :]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / f"{case}_labels.nii.gz"))[cols, :, :])
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    value, name = (RIGHT, "right") if cols.start == 0 else (LEFT, "left")
    d = rt_lung_dice(pred, ref == 3, ref == 4, (ref == 1) | (ref == 2))
    truth = ref == (3 if value == RIGHT else 4)
    assert d[name] >= 0.9, d
    assert abs(float((pred == value).sum()) / truth.sum() - 1.0) < 0.1


@pytest.mark.shared_data
@pytest.mark.parametrize("cols", [slice(0, 256), slice(256, None)])
def test_real_ct_cropped_through_the_trachea_adds_no_airways_to_the_lung(shared_data, cols):
    """LUNG1-003 cut at x < 256 / x >= 256 (through the trachea): no trachea was found, and 92 / 65 ml of trachea,
    bronchi and the mediastinum around them were labelled lung (Dice 0.957 / 0.946 against the oncologist's lung cut
    likewise, 0.975 / 0.963 in the whole CT).  Now the lung is that of the whole CT on the same voxels (within 1 ml)."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-003_ct.nii.gz"))[cols, :, :]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-003_labels.nii.gz"))[cols, :, :])
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    value, name = (RIGHT, "right") if cols.start == 0 else (LEFT, "left")
    assert any("trachea, main and lobar bronchi removed" in n for n in result.notes), result.notes
    d = rt_lung_dice(pred, ref == 3, ref == 4, (ref == 1) | (ref == 2))
    assert d[name] >= (0.974 if value == RIGHT else 0.962), d
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    whole = {RIGHT: 2143.7, LEFT: 1720.5}[value]     # the whole CT's lung on these voxels
    assert abs(float((pred == value).sum()) * voxel_ml - whole) < 2.0


def _lung1003_cropped(shared_data, box):
    """LUNG1-003 cut to ``box`` (x, y, z slices): its CT, the reference labels, the lung labels segment_lungs gives
    (arrays z, y, x), the CT's HU and the RT Dice of the lungs (GTVs left out)."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-003_ct.nii.gz"))[box]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-003_labels.nii.gz"))[box])
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    return ct, ref, pred, sitk.GetArrayFromImage(ct), rt_lung_dice(pred, ref == 3, ref == 4, (ref == 1) | (ref == 2))


@pytest.mark.shared_data
def test_real_ct_cut_by_the_anterior_border_adds_no_heart_to_the_left_lung(shared_data):
    """LUNG1-003 cut to x 90-429, y 110-399 (the anterior chest and both sides out of view): a wedge of heart on two
    slices (9.6 ml on one) was taken for a pleural notch - 41.6 ml of soft tissue (> -300 HU) outside the oncologist's
    left lung, left 1738 ml, Dice 0.958; now 22.6 ml, 1719 ml (reference 1720 ml, whole CT 1720 ml), Dice 0.963."""
    ct, ref, pred, hu, d = _lung1003_cropped(shared_data, (slice(90, 430), slice(110, 400), slice(None)))
    assert d["left"] >= 0.961 and d["right"] >= 0.97, d
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    extra = ((pred == LEFT) & (hu > -300) & (ref != 4)).sum(axis=(1, 2)) * voxel_ml
    assert extra.sum() < 30.0 and extra.max() < 4.0, (extra.sum(), extra.max())


@pytest.mark.shared_data
def test_real_ct_cut_in_front_and_behind_adds_no_bone_to_the_right_lung(shared_data):
    """LUNG1-003 cut to y 130-319 (the body cut by the first and the last row): the ellipse through the last row - the
    image's border, not the back - took the hollow beside the spine for a pleural notch on six slices: right lung
    1997 ml, 16.1 ml of soft tissue (> -300 HU) and 1871 voxels of bone (> 150 HU) in it outside the oncologist's
    right lung, Dice 0.9750; now (as before the anterior cut's rule) 1989 ml, 11.0 ml, 1330 voxels, Dice 0.9755."""
    ct, ref, pred, hu, d = _lung1003_cropped(shared_data, (slice(None), slice(130, 320), slice(None)))
    assert d["right"] >= 0.9753 and d["left"] >= 0.967, d
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    soft = float(((pred == RIGHT) & (hu > -300) & (ref != 3)).sum()) * voxel_ml
    bone = int(((pred == RIGHT) & (hu > 150)).sum())
    assert soft < 13.0 and bone < 1500, (soft, bone)


class _Steps:
    """A progress that records what segment_lungs tells it: the steps done (``n``), each update's count (``ns``) and
    message (``messages``), and both together (``log``)."""

    def __init__(self):
        self.n, self.ns, self.messages, self.log = 0, [], [], []

    def update(self, n=1, message=None):
        self.n += n
        self.ns.append(n)
        self.messages.append(message)
        self.log.append((n, message))


def test_lung_segmentation_reports_its_steps(small_phantom, tmp_path, monkeypatch, capsys):
    """segment_lungs reports its sub-steps to an optional progress (LUNG_STEPS in all, one lung as well); ``lungai
    lungs`` shows them on its bar instead of one silent step; without a progress the result is the same."""
    from lungai.cli import main
    from lungai.lungs.segment import LUNG_STEPS
    from lungai.progress import parse_line

    Steps = _Steps

    steps = Steps()
    with_bar = segment_lungs(small_phantom.ct, progress=steps)
    assert steps.n == LUNG_STEPS and "airways removed" in steps.messages
    # QA startup65: "air in the body found" was one silent step of 6.3 s (LUNG1-002) / 8.6 s (LUNG1-003): the
    # smoothing and the outside air (the air connected to the image's border) are steps of their own before it (the
    # steps' own messages; the long steps' sub-steps in between: test_long_lung_steps_say_their_sub_steps)
    done = [m for n, m in zip(steps.ns, steps.messages) if n]
    assert done[:4] == ["CT smoothed", "outside air found", "air in the body found", "airways removed"], done
    np.testing.assert_array_equal(sitk.GetArrayFromImage(with_bar.labels),
                                  sitk.GetArrayFromImage(segment_lungs(small_phantom.ct).labels))
    one = Steps()   # one lung region (the CT cut through the midline): still LUNG_STEPS
    segment_lungs(_cropped(small_phantom, (slice(0, 44), slice(None), slice(None)))[0], progress=one)
    assert one.n == LUNG_STEPS, one.messages
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(path))
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(["lungs", str(path), "-o", str(tmp_path / "lungs.nii.gz")]) == 0
    lines = [parse_line(line) for line in capsys.readouterr().err.splitlines()]
    texts = [t for p in lines if p for _, t in [p]]
    assert any("right / left split" in t for t in texts), texts
    # start, read, the steps, written - and the long steps' sub-steps (message-only: the fraction stays)
    fractions = [f for p in lines if p for f, _ in [p]]
    assert len(set(fractions)) == LUNG_STEPS + 3, texts
    assert sum(1 for t in texts if "smoothing the CT 0/12" in t) == 1, texts
    # QA lungsgap66: the label map's writing is said (the bar stood on "left lung filled" before "written")
    assert texts[texts.index("lungs: read") + 1] == "lungs: loading the lung segmentation", texts
    # QA lungsfollow67: the CLI checks the HU on reading the CT - its bar names no HU check there
    assert texts[texts.index("lungs: read") + 2] == "lungs: preparing the CT 0/2 (LPS orientation, blank end slices)", \
        texts
    writing = [k for k, t in enumerate(texts) if t.endswith("writing lungs.nii.gz")]
    assert len(writing) == 1 and writing[0] + 1 == [k for k, t in enumerate(texts) if t.endswith("written")][0], texts
    assert writing[0] > max(k for k, t in enumerate(texts) if t.endswith("lung filled")), texts


def _label_grown_airways(hu, inside_air, seed, voxel_ml, max_ml=250.0):
    """The airway growing of lungai 1.x before QA lungs67 (the reference): each threshold's dark voxels labelled over
    the whole box, the seed's component kept."""
    from lungai.lungs.airways import THRESHOLDS_HU

    best = (None, None)
    for threshold in THRESHOLDS_HU:
        dark = (hu < threshold) & inside_air
        if not dark[seed]:
            continue
        lab, _ = ndimage.label(dark)
        region = lab == lab[seed]
        if region.sum() * voxel_ml > max_ml:
            break
        best = (region, threshold)
    return best


def _airway_tree_box(seed=0):
    """A box of air in the body ([z, y, x], HU) holding a trachea (-1000 HU) that splits into two bronchi darker than
    the lungs beside them (-900 HU, joined to the bronchi at -860 HU), plus a dark pocket apart (-990 HU)."""
    rng = np.random.default_rng(seed)
    hu = np.full((40, 60, 80), 40.0, np.float32)
    lungs = np.zeros(hu.shape, bool)
    lungs[2:30, 8:52, 6:36] = lungs[2:30, 8:52, 44:74] = True
    hu[lungs] = -860.0 + rng.normal(0, 10, lungs.sum())
    hu[18:40, 26:35, 36:45] = -1000.0                      # trachea
    hu[14:20, 27:32, 20:41] = hu[14:20, 27:32, 40:60] = -960.0      # main bronchi into the lungs
    hu[5:9, 40:44, 60:64] = -990.0                         # a pocket not connected
    inside = hu < -400
    return hu, inside


def test_airway_search_grows_the_tree_from_the_seed_not_by_labelling_the_box(monkeypatch):
    """QA lungs67: growing the airway tree labelled the whole box of the lungs once per threshold (seven 3D labellings:
    0.4-0.5 s idle, 2-4 s of a loaded machine on LUNG1-002 / -003, the bar standing on one sub-step).  The seed's
    component is flood filled instead: the same voxels and threshold as the labelling (the same face connectivity),
    no 3D labelling of the box."""
    from lungai.lungs import airways

    hu, inside = _airway_tree_box()
    seed = (38, 30, 40)
    expected = _label_grown_airways(hu, inside, seed, 0.003, max_ml=20.0)
    assert expected[0] is not None and expected[1] > -1000.0      # grown beyond the first threshold: the test's point
    calls = []
    real_label = ndimage.label

    def label(array, *args, **kwargs):
        calls.append(np.ndim(array))
        return real_label(array, *args, **kwargs)

    monkeypatch.setattr(airways.ndimage, "label", label)
    got = airways.grow_airways(hu, inside, seed, 0.003, max_ml=20.0)
    assert got[1] == expected[1] and np.array_equal(got[0], expected[0])
    assert 3 not in calls, calls
    # leaking at every threshold, and a seed not dark enough: as before
    assert airways.grow_airways(hu, inside, seed, 0.003, max_ml=0.001) == (None, None)
    assert airways.grow_airways(hu, inside, (0, 0, 0), 0.003) == (None, None)


def test_airway_search_ticks_once_the_tree_is_grown():
    """QA lungs67: the airway search (the tree grown from the trachea's candidates, then its part at least 7 mm wide by
    two distance transforms) was one sub-step of "removing the airways": 2.9 s on LUNG1-003, 4.6 s on a loaded
    machine.  ``tick`` is called once, between the growing and the wide part; the airways and note are those found
    without it."""
    from lungai.lungs import airways

    hu, inside = _airway_tree_box()
    order = []
    real = airways.central_airways

    def central(*args, **kwargs):
        order.append("wide part")
        return real(*args, **kwargs)

    args = (hu, inside, hu, (2.0, 2.0, 3.0), 40.0, 0.012)
    plain, plain_note = airways.find_central_airways(*args)
    try:
        airways.central_airways = central
        found, note = airways.find_central_airways(*args, tick=lambda: order.append("tick"))
    finally:
        airways.central_airways = real
    assert order == ["tick", "wide part"], order
    assert note == plain_note and np.array_equal(found, plain) and plain.any()


def test_growing_the_lungs_back_says_it_is_running(monkeypatch):
    """QA lungs67: growing touching lungs back after eroding them apart is one distance transform (one C call: 1.4 s
    idle, up to 9 s on a loaded machine on LUNG1-002) said by one message: the bar stood still.  While it runs the
    message is said again with its seconds at every tick interval; the parts are those found without a progress."""
    import time

    from test_lungs_memory import _touching_lungs

    real = ndimage.distance_transform_edt

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return real(*args, **kwargs)

    class Terminal(_Steps):
        tick_interval = 0.1

    mask = _touching_lungs()
    plain = segment._split_two(mask, 50)
    monkeypatch.setattr(segment.ndimage, "distance_transform_edt", slow)
    steps = Terminal()
    parts = segment._split_two(mask, 50, progress=steps)
    growing = [m for m in steps.messages if m.startswith(segment.SPLIT_GROWING)]
    assert growing[0] == segment.SPLIT_GROWING and len(growing) >= 3, steps.messages
    assert all(m.startswith(segment.SPLIT_GROWING + " (") and m.endswith(" s)") for m in growing[1:]), growing
    assert steps.n == 0 and len(parts) == len(plain) == 2
    assert all(np.array_equal(a, b) for a, b in zip(parts, plain))


def test_lungs_cli_checks_the_ct_hu_once(small_phantom, tmp_path, monkeypatch):
    """QA lungs67: ``lungai lungs`` made the HU check twice - read_ct's check_ct, then segment_lungs' own (0.2-0.3 s of
    LUNG1-002).  Once now, on reading; segment_lungs called on its own still checks (an MR is refused)."""
    from lungai.cli import main
    from lungai.io import validate

    calls = []
    real = validate.check_ct_intensities

    def counted(img, source):
        calls.append(source)
        return real(img, source)

    monkeypatch.setattr(validate, "check_ct_intensities", counted)
    monkeypatch.setattr(segment, "check_ct_intensities", counted)
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(path))
    assert main(["lungs", str(path), "-o", str(tmp_path / "lungs.nii.gz")]) == 0
    assert len(calls) == 1, calls
    cli = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lungs.nii.gz")))
    assert np.array_equal(cli, sitk.GetArrayFromImage(segment_lungs(small_phantom.ct).labels))
    assert len(calls) == 2
    mr = sitk.Cast(small_phantom.ct, sitk.sitkFloat32) + 1500.0
    with pytest.raises(InputError, match="does not look like a CT in Hounsfield units"):
        segment_lungs(mr)


def test_pleural_notches_tick_after_each_group_of_slices():
    """QA lungs67: the pleural notches of one lung (a convex hull per slice) were one sub-step of its filling, 1.0-2.1 s
    idle (pyradiomics lung2's right lung, LUNG1-003), up to three times that on a loaded machine.  ``tick`` is called
    NOTCH_TICKS times, whatever the lung's slices; the notches added are those found without it."""
    from lungai.lungs.pleura import NOTCH_TICKS, add_pleural_notches

    z, y, x = np.ogrid[:9, :60, :60]
    lung = np.broadcast_to(((y - 30) / 22.0) ** 2 + ((x - 22) / 14.0) ** 2 < 1, (9, 60, 60)).copy()
    bite = np.broadcast_to(((y - 30) / 6.0) ** 2 + ((x - 8) / 6.0) ** 2 < 1, (9, 60, 60))
    lung &= ~bite                           # a tumour at the chest wall takes a bite out of the lung's lateral side
    lung[0] = False
    dense = bite.copy()
    body = {k: (30.0, 40.0, 28.0, 36.0) for k in range(9)}      # the body's centre medial to the lung
    plain = add_pleural_notches(lung, dense, body)
    assert (plain & ~lung).any() and not (plain & ~lung)[0].any()
    for slices in (slice(None), slice(0, 3)):       # 8 slices of lung, and 2: NOTCH_TICKS ticks either way
        ticks = []
        got = add_pleural_notches(lung[slices], dense[slices], body, tick=lambda: ticks.append(1))
        assert len(ticks) == NOTCH_TICKS and np.array_equal(got, plain[slices])


def test_waiting_runs_the_call_beside_the_progress_and_raises_its_error():
    """lungai.progress.waiting (the growing back's progress): the call's value; its exception raised in the caller; no
    progress (None, NullProgress): called as is, nothing said; Slicer's Cancel (a CallbackProgress callback returning
    True) raised at the next update while the call runs."""
    import time

    from lungai.errors import Cancelled
    from lungai.progress import CallbackProgress, NullProgress, waiting

    class Terminal(_Steps):
        tick_interval = 0.05

    steps = Terminal()
    assert waiting(steps, "working", lambda a, b=0: a + b, 2, b=3) == 5 and steps.messages[0] == "working"
    assert steps.n == 0
    assert waiting(None, "working", max, 1, 4) == 4 and waiting(NullProgress(), "working", min, 1, 4) == 1

    def broken():
        time.sleep(0.15)
        raise ValueError("no seeds")

    with pytest.raises(ValueError, match="no seeds"):
        waiting(steps, "working", broken)
    said = []
    cancel = CallbackProgress(3, lambda fraction, text: said.append(text) or len(said) > 1, "lungs")
    with pytest.raises(Cancelled):
        waiting(cancel, "working", time.sleep, 2.0)
    assert said[0] == "lungs: working" and said[1].startswith("lungs: working (")


def test_waiting_lets_a_writing_call_clean_up_when_the_caller_is_stopped(tmp_path):
    """QA segbar67: a Cancel (or Ctrl-C) stops the caller of :func:`waiting` while its worker still runs; a call that
    writes files (the demo's scene.mrb, its temporary folder holding a copy of the CT) is waited for with
    ``finish_on_stop=True``: its own clean-up has run when the Cancel reaches the caller - no partial file left (a
    daemon worker is killed at the interpreter's exit, its ``finally`` never run)."""
    import time

    from lungai.errors import Cancelled
    from lungai.progress import CallbackProgress, waiting

    partial = tmp_path / ".partial-scene.mrb"

    def write():
        partial.write_bytes(b"a copy of the CT")
        try:
            time.sleep(0.6)
            raise OSError("disk full")       # the write fails: its clean-up removes the partial file
        finally:
            partial.unlink()

    said = []
    cancel = CallbackProgress(3, lambda fraction, text: said.append(text) or len(said) > 1, "demo")
    cancel.tick_interval = 0.05
    with pytest.raises(Cancelled):
        waiting(cancel, "writing scene.mrb", write, finish_on_stop=True)
    assert not partial.exists() and said[1].startswith("demo: writing scene.mrb (")
    said.clear()          # without it (a computation, nothing written: the Cancel comes at once), the write still runs
    with pytest.raises(Cancelled):
        waiting(cancel, "writing scene.mrb", write)
    assert partial.exists()
    time.sleep(1.0)       # the abandoned worker's own clean-up, in this test's process
    assert not partial.exists()


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["LUNG1-002", "LUNG1-003"])
def test_real_ct_masks_unchanged_by_the_airway_flood_fill_and_the_growing_progress(shared_data, case, monkeypatch):
    """QA lungs67: the flood-filled airway growing and the growing back of touching lungs run beside a progress give
    the masks, volumes and notes of the labelling grower without a progress, voxel for voxel, on the real whole CTs
    (LUNG1-002: touching lungs grown back; LUNG1-003: 52 ml of airways removed)."""
    from lungai.lungs import airways

    class Terminal(_Steps):
        tick_interval = 0.0

    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / f"{case}_ct.nii.gz"))
    steps = Terminal()
    new = segment_lungs(ct, progress=steps)
    assert any(m.startswith("removing the airways 3/5") for m in steps.messages), steps.messages
    monkeypatch.setattr(airways, "grow_airways", _label_grown_airways)
    old = segment_lungs(ct)
    assert np.array_equal(sitk.GetArrayFromImage(new.labels), sitk.GetArrayFromImage(old.labels))
    assert new.volumes_ml == old.volumes_ml and new.notes == old.notes
    assert "trachea, main and lobar bronchi removed" in new.notes[0]


def test_long_lung_steps_say_their_sub_steps(small_phantom):
    """QA startfollow66: on LUNG1-002 (a shared machine) the smoothing (2.5-7.5 s), the outside air (3-8 s) and each
    lung's filling (1.5-6.7 s) were single silent steps, the bar standing on the step before; QA lungsfollow66: the
    air in the body and the airway removal too (LUNG1-003).  Each says its start and
    counts its sub-steps as message-only updates (the step count stays segment_lungs'); in a log (a progress with
    a long tick_interval, as lungai.progress's bar when stderr is no terminal) a few records, not one per sub-step;
    the masks are those found without a progress."""
    from lungai.lungs import LUNG_STEPS

    class Steps(_Steps):
        tick_interval = 3600.0      # a log: counts shown at the start only on a CT this small

    steps = Steps()
    labels = segment_lungs(small_phantom.ct, progress=steps).labels
    assert steps.n == LUNG_STEPS
    messages = [m for _, m in steps.log]

    def between(start, end):
        """The message-only updates said after the step ``start`` (None: the first) before the step ``end``."""
        a = 0 if start is None else messages.index(start) + 1
        return [m for n, m in steps.log[a:messages.index(end)] if n == 0]

    # QA lungsgap66: after "read" the HU check, the LPS orientation and the blank end slices (3.0 s on LUNG1-003's
    # DICOM CT, 6.6 s on LUNG1-002) and after the last lung's filling the pure-air and scan-cut checks (about 4 s to
    # "written") said nothing
    # (each count's start, and its end: a Counter always shows its final count - QA segbar67)
    assert between(None, "CT smoothed") == ["preparing the CT 0/3 (HU check, LPS orientation, blank end slices)",
                                            "preparing the CT 3/3 (HU check, LPS orientation, blank end slices)",
                                            "smoothing the CT 0/12", "smoothing the CT 12/12"], steps.log
    # QA lungsfollow67: its two sub-steps said as they start (and while they run: test_outside_air_says_it_is_running)
    assert between("CT smoothed", "outside air found") == \
        [f"finding the outside air {k}/2: {what}" for k, what in enumerate(OUTSIDE_AIR_SUBSTEPS)], steps.log
    # QA lungsfollow66 (LUNG1-003's DICOM CT): the air in the body (3.5 s) and the airway removal (2.8 s: the body's
    # outline, the airway search) were single silent steps too
    # QA lungsfollow68: its two sub-steps said as they start (and while they run: test_air_in_the_body_says_it_is_running)
    assert between("outside air found", "air in the body found") == \
        [f"finding the air in the body {k}/2: {what}" for k, what in enumerate(BODY_AIR_SUBSTEPS)], steps.log
    assert between("air in the body found", "airways removed") == \
        [f"removing the airways {k}/5 (body outline, trachea and bronchi)" for k in (0, 5)], steps.log
    fills = [m for m in messages if m.endswith("lung filled")]
    assert len(fills) == 2, steps.log
    assert [m for n, m in steps.log[messages.index(fills[-1]) + 1:]] == \
        [f"checking the lungs {k}/2 (pure air, cut by the scan)" for k in (0, 2)], steps.log
    for before, fill in zip(["right / left split"] + fills, fills):
        side = fill.split()[0]
        assert between(before, fill) == [f"filling the {side} lung {k}/9 (vessels, holes, pleural notches, dense lung)"
                                         for k in (0, 9)], steps.log
    # a terminal (counts shown every sub-step here): each count once, up to the whole
    class Terminal(Steps):
        tick_interval = 0.0

    shown = Terminal()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(segment_lungs(small_phantom.ct, progress=shown).labels),
                                  sitk.GetArrayFromImage(labels))
    said = [m for n, m in shown.log if n == 0]
    assert [f"smoothing the CT {k}/12" for k in range(13)] == [m for m in said if m.startswith("smoothing")], said
    for step, total, detail in (("preparing the CT", 3, " (HU check, LPS orientation, blank end slices)"),
                                ("checking the lungs", 2, " (pure air, cut by the scan)"),
                                ("removing the airways", 5, " (body outline, trachea and bronchi)")):
        assert [f"{step} {k}/{total}{detail}" for k in range(total + 1)] == [m for m in said if m.startswith(step)], \
            said
    # each of its sub-steps said as it starts (then with its seconds while it runs: lungai.progress.waiting)
    assert [m for m in said if m.startswith("finding the air in the body") and not m.endswith(" s)")] == \
        [f"finding the air in the body {k}/2: {what}" for k, what in enumerate(BODY_AIR_SUBSTEPS)], said
    assert "finding the outside air 1/2: a resampler's fill at the faces" in said and "filling the right lung 9/9 (vessels, holes, pleural notches, " \
        "dense lung)" in said, said
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels),
                                  sitk.GetArrayFromImage(segment_lungs(small_phantom.ct).labels))



def test_float32_rounding_of_the_spacing_gives_the_same_masks():
    """QA: the sample's DICOM CT (spacing 1.4 mm) and its ct.nii.gz (float32: 1.399999976 mm) - the same voxels -
    gave lungs differing by 2 ml: 2 voxels of 1.4 mm lie exactly on the airways' width threshold (3.5 - 0.7 mm)."""
    from lungai.synthetic import SAMPLE_SEED, make_phantom, sample_spec

    ct = make_phantom(sample_spec(), seed=SAMPLE_SEED).ct
    spacing = tuple(float(s) for s in ct.GetSpacing())
    assert spacing[0] == 1.4
    rounded = sitk.Image(ct)
    rounded.SetSpacing(tuple(float(np.float32(s)) for s in spacing))
    assert rounded.GetSpacing() != ct.GetSpacing()
    a, b = segment_lungs(ct), segment_lungs(rounded)
    differ = int((sitk.GetArrayViewFromImage(a.labels) != sitk.GetArrayViewFromImage(b.labels)).sum())
    assert differ == 0, f"{differ} voxels differ ({a.volumes_ml} vs {b.volumes_ml})"
    assert a.volumes_ml == b.volumes_ml
    # the airways' width test on its own: ties on the threshold count the same whatever the rounding
    from lungai.lungs.airways import central_airways

    tube = np.zeros((9, 15, 15), bool)
    yy, xx = np.mgrid[:15, :15]
    tube[:, (yy - 7) ** 2 + (xx - 7) ** 2 <= 4] = True        # 5 voxels (7 mm) wide at 1.4 mm
    for s in (1.4, float(np.float32(1.4))):
        assert central_airways(tube, (s, s, 2.0)).sum() == central_airways(tube, (1.4, 1.4, 2.0)).sum() > 0


def _with_blank_slices(ct: sitk.Image, value: float, top: int, bottom: int) -> sitk.Image:
    """``ct`` (z up) with ``top`` / ``bottom`` slices of ``value`` HU added at its ends, as resampling pads it."""
    arr = sitk.GetArrayFromImage(ct)
    blank = np.full((1,) + arr.shape[1:], value, arr.dtype)
    out = sitk.GetImageFromArray(np.concatenate([blank] * bottom + [arr] + [blank] * top))
    out.SetSpacing(ct.GetSpacing())
    out.SetDirection(ct.GetDirection())
    out.SetOrigin(ct.TransformIndexToPhysicalPoint((0, 0, -bottom)))
    return out


@pytest.mark.parametrize("value, top, bottom", [(-1024, 1, 0), (0, 1, 0), (-1024, 2, 1), (0, 0, 1), (-3024, 1, 1)])
def test_blank_slices_added_by_resampling_are_left_out(small_phantom, value, top, bottom):
    """QA: resampling (SimpleITK / ITK, to isotropic slices) pads the ends of the scan with -1024 (or 0) HU slices.
    An all-air slice on top touches the image border: taken for outside air, the trachea and through it both lungs
    were outside air ("no lungs found: ... less than 100 ml of air inside the body", check the HU scaling).  Blank
    end slices (no tissue, or one value) are left out: the same lungs as without them, label 0 there, with a note."""
    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(ct)
    assert (arr[-1] < -850).sum() > 20    # the trachea reaches the top slice: an air slice above it opens it
    plain = segment_lungs(ct)
    result = segment_lungs(_with_blank_slices(ct, value, top, bottom))
    pred = sitk.GetArrayFromImage(result.labels)
    n = arr.shape[0]
    assert pred.shape[0] == n + top + bottom and not pred[:bottom].any() and not pred[bottom + n:].any()
    assert np.array_equal(pred[bottom:bottom + n], sitk.GetArrayFromImage(plain.labels))
    assert result.volumes_ml == plain.volumes_ml and result.cut == plain.cut
    ends = " and ".join(f"{k} blank slice{'s' if k > 1 else ''} at the {end} of the scan"
                        for k, end in ((top, "top"), (bottom, "bottom")) if k)
    assert result.notes == [segment.BLANK_SLICES_NOTE.format(ends)] + plain.notes


def test_lungs_cut_by_the_last_real_slice_are_flagged_below_blank_slices(small_phantom):
    """A lung cut by the scan's last slice holding the patient is cut, whatever blank slices resampling added above."""
    ct, _ = _cropped(small_phantom, (slice(None), slice(None), slice(15, 20)))
    padded = _with_blank_slices(ct, -1024, 2, 0)
    result = segment_lungs(padded)
    assert "touch the top and bottom slices" in result.cut[0], result.notes
    # the same warnings from the label file read back (the Slicer panel's scan_cut_notes)
    assert segment.scan_cut_notes(result.labels, padded) == result.cut


def test_radiomics_cut_flag_leaves_out_blank_end_slices_as_lungai_lungs(small_phantom):
    """QA: on a CT with blank slices above its last real slice, `lungai lungs` said the lungs touch the top slice while
    radiomics' cut_by_image_edge (scan_cut_faces on the mask alone) had no z+: one rule now (lung_cut_faces)."""
    from lungai.radiomics.extract import _cut_faces

    ct, _ = _cropped(small_phantom, (slice(None), slice(None), slice(15, 20)))
    padded = _with_blank_slices(ct, -1024, 2, 1)
    result = segment_lungs(padded)
    assert "touch the top and bottom slices" in result.cut[0], result.notes
    lungs = sitk.Cast(result.labels != 0, sitk.sitkUInt8)
    assert _cut_faces("lungs", lungs, padded)[-2:] == ["z-", "z+"]
    assert segment.lung_cut_faces(lungs, padded) == _cut_faces("lungs", lungs, padded)
    # the tumour keeps its own rule (any voxel on the image's edge): the blank slices not left out
    assert "z+" not in _cut_faces("tumour", lungs, padded)


def _faded(arr: np.ndarray, share: float) -> np.ndarray:
    """``arr``'s last slice faded into -1024 HU padding as scipy zoom / affine_transform (cval=-1024) interpolate it."""
    return share * arr[-1].astype(np.float32) + (1.0 - share) * -1024.0


def test_end_slice_faded_into_padding_is_left_out():
    """QA: a top slice 0.4 x the last + 0.6 x -1024 (interpolating resampling) keeps its bone above -500 HU - not blank
    - but its soft tissue falls below the air threshold and opened the trachea to the outside air ("no lungs found").
    An end slice holding under FADED_BODY_SHARE of the body of a chest-sized slice next to it is left out; a small crop
    inside the lung (an LIDC nodule's) whose end slice holds lung only keeps it."""
    spacing = (0.7, 0.7, 2.5)
    chest = np.full((6, 256, 256), -1000, np.int16)
    yy, xx = np.mgrid[:256, :256]
    chest[:, ((yy - 128) / 120.0) ** 2 + ((xx - 128) / 125.0) ** 2 < 1] = 40       # body: 130 cm2 beside the lungs
    chest[:, ((yy - 128) / 80.0) ** 2 + ((xx - 80) / 40.0) ** 2 < 1] = -850         # lungs
    chest[:, ((yy - 128) / 80.0) ** 2 + ((xx - 176) / 40.0) ** 2 < 1] = -850
    chest[:, (yy - 220) ** 2 + (xx - 128) ** 2 < 15 ** 2] = 1000                    # spine
    assert segment._blank_end_slices(chest, spacing) == (0, 6)
    faded = np.concatenate([_faded(chest[::-1], 0.4)[None], chest, _faded(chest, 0.4)[None]]).astype(np.int16)
    assert (faded[-1] > segment.DENSE_HU).any() and len(np.unique(faded[-1])) > 1   # not blank by the first rules
    assert segment._blank_end_slices(faded, spacing) == (1, 7)
    fainter = _faded(chest, 0.1)[None].astype(np.int16)                              # blank by the first rule
    assert segment._blank_end_slices(np.concatenate([faded, fainter]), spacing) == (1, 7)
    # a 30 mm crop inside the lung around a nodule, ending on a slice of lung only: kept
    crop = np.full((4, 43, 43), -850, np.int16)
    crop[1:3, 15:28, 15:28] = 30
    crop[:, 5, 3:9] = -450                                                           # a vessel: not one value
    assert segment._blank_end_slices(crop, spacing) == (0, 4)


@pytest.mark.shared_data
def test_real_ct_with_a_faded_top_slice_is_segmented(shared_data):
    """QA: lung1 cut at 40 slices plus a top slice faded into -1024 padding (0.4 / 0.6) gave "no lungs found"; now
    the same lungs as lung1 cut at 40 slices, label 0 on the faded slice, with the note."""
    ct = sitk.ReadImage(str(shared_data / "pyradiomics_lung" / "lung1_image.nrrd"))
    arr = sitk.GetArrayFromImage(ct)[:40]
    cut = sitk.GetImageFromArray(arr)
    cut.CopyInformation(ct[:, :, :40])
    padded = sitk.GetImageFromArray(np.concatenate([arr, _faded(arr, 0.4)[None].astype(arr.dtype)]))
    padded.SetSpacing(ct.GetSpacing())
    padded.SetOrigin(ct.GetOrigin())
    padded.SetDirection(ct.GetDirection())
    plain = segment_lungs(cut)
    result = segment_lungs(padded)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not pred[40:].any() and np.array_equal(pred[:40], sitk.GetArrayFromImage(plain.labels))
    assert result.volumes_ml == plain.volumes_ml and result.cut == plain.cut
    assert result.notes[0] == segment.BLANK_SLICES_NOTE.format("1 blank slice at the top of the scan")


@pytest.mark.parametrize("command", [["lungs"], ["segment"]])
def test_missing_ct_is_refused_before_the_progress_bar(tmp_path, capsys, monkeypatch, command):
    """QA: `lungai lungs missing.nii.gz -o x` drew `lungs: 0%| 0/7` above "does not exist": the CT path is checked
    before the progress bar (and, for segment, before the model is loaded)."""
    from lungai.cli import main

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")      # the bar as lines: each draw shows in stderr
    missing = tmp_path / "missing.nii.gz"
    out = tmp_path / ("x.nii.gz" if command == ["lungs"] else "seg")
    assert main([*command, str(missing), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"CT {missing} does not exist" in err and "LUNGAI_PROGRESS" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_lungs_names_a_bad_output_before_a_missing_ct(tmp_path, capsys):
    """QA: `lungai lungs /nonexist.nii.gz -o x.txt` reported only the missing CT: the arguments are checked first (the
    output's name, as `lungai segment` does), then the CT."""
    from lungai.cli import main

    assert main(["lungs", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert "x.txt" in err and "does not exist" not in err, err


def _fill_wedge(phantom, fill: float, k0: int = 36, slope: float = 0.3):
    """``phantom``'s CT with 20 slices on top and a wedge of one constant ``fill`` value above a sloping face through
    its top slices, as a tilted / oblique CT resampled with that defaultPixelValue has; its truth labels cut alike."""
    arr = sitk.GetArrayFromImage(phantom.ct)
    lab = sitk.GetArrayFromImage(phantom.labels)
    nz, ny, nx = arr.shape
    arr = np.concatenate([arr, np.full((20, ny, nx), fill, arr.dtype)])
    lab = np.concatenate([lab, np.zeros((20, ny, nx), lab.dtype)])
    kk, yy = np.mgrid[:nz + 20, :ny][..., None]
    wedge = np.broadcast_to(kk > k0 + slope * (yy - ny / 2), arr.shape)
    arr[wedge], lab[wedge] = fill, 0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(phantom.ct.GetSpacing())
    img.SetOrigin(phantom.ct.GetOrigin())
    return img, lab


@pytest.mark.parametrize("fill", [-1024, -3024])
def test_tilted_ct_resampled_with_air_fill_is_segmented(small_phantom, fill):
    """QA: a tilted / oblique CT resampled with defaultPixelValue=-1024 (docs/dicom.md) gave "no lungs found": the
    trachea cut at the top opened into the -1024 wedge above the original top face, which reaches the image border,
    and the trachea and lungs were taken for outside air (the open field-of-view fallback took only < -1100 HU for
    padding).  The resampler's constant fill is padding (lungai.io.validate.constant_fill): -1024 as -3024."""
    img, lab = _fill_wedge(small_phantom, fill)
    result = segment_lungs(img)
    pred = sitk.GetArrayFromImage(result.labels)
    truth = L.lung_truth(lab, "right")
    assert dice(pred == RIGHT, truth["right"]) >= 0.95 and dice(pred == LEFT, truth["left"]) >= 0.95


def test_constant_fill_is_the_resamplers_fill_not_noisy_air(small_phantom):
    from lungai.io.validate import constant_fill

    img, _ = _fill_wedge(small_phantom, -1024)
    arr = sitk.GetArrayFromImage(img)
    fill = constant_fill(arr)
    # the wedge, not the specks of the noisy air clipped at -1024 (about 4 % of the -1024 voxels here)
    assert not (fill & (arr != -1024)).any() and fill.sum() > 0.9 * (arr == -1024).sum()
    # the phantom's noisy air outside the body (no resampling fill) holds no fill
    assert not constant_fill(sitk.GetArrayFromImage(small_phantom.ct)).any()


@pytest.mark.parametrize("sigma", [0.0, 0.6, 1.0])
def test_constant_fill_is_no_clip_floor_of_noisy_air(sigma):
    """QA: a CT clipped at -1000 (a windowed export, a scanner's clip floor) has about half of its noisy air on exactly
    -1000: in the trachea, reaching the top face, those voxels formed a 6-connected region of >= 1000 voxels taken for
    the resampler's fill, and LUNG1-003 lost its airway removal.  The fill is a solid plateau (the -1024 outside the
    reconstruction circle, clipped to -1000 here), not the speckle of clipped noisy air (``sigma``: the noise's
    correlation, in voxels)."""
    from lungai.io.validate import constant_fill

    rng = np.random.default_rng(0)
    nz, ny, nx = 60, 96, 96
    zz, yy, xx = np.mgrid[:nz, :ny, :nx]
    r = np.hypot(yy - ny / 2 + 0.5, xx - nx / 2 + 0.5)
    noise = ndimage.gaussian_filter(rng.standard_normal((nz, ny, nx)), sigma)
    noise *= 20.0 / noise.std()
    trachea = (r < 7) & (zz >= 10)                       # air reaching the top face
    hu = np.where((r < 30) & ~trachea, 40.0, -1000.0) + noise
    circle = r >= 46
    hu[circle] = -1024.0                                 # outside the reconstruction circle
    hu = np.maximum(np.rint(hu), -1000).astype(np.int16)
    assert 0.4 < (hu[trachea] == -1000).mean() < 0.6
    fill = constant_fill(hu)
    assert not (fill & trachea).any() and fill[circle].all()


@pytest.mark.parametrize("kind", ["mr_like", "uint8_window"])
def test_segment_lungs_api_refuses_an_image_not_in_hu(small_phantom, kind):
    """QA: segment_lungs (Python API, Slicer node) said "no lungs found ... less than 100 ml of air" for an MR-like
    image or a windowed 8-bit CT, where ``lungai lungs`` says it is no CT in HU: the same check now runs in the API."""
    arr = sitk.GetArrayFromImage(small_phantom.ct).astype(np.float32)
    if kind == "mr_like":
        out = (arr - arr.min()) / (arr.max() - arr.min()) * 1500.0
    else:
        out = np.clip((arr + 1000.0) / 1400.0 * 255.0, 0, 255).astype(np.uint8)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(small_phantom.ct)
    with pytest.raises(InputError, match="does not look like a CT in Hounsfield units"):
        segment_lungs(img)


def _tilted_about_x(img: sitk.Image, deg: float, interp, fill: float) -> sitk.Image:
    """``img`` resampled onto a grid rotated by ``deg`` about x (3 mm slices, 40 more of them), as the QA did."""
    t = np.deg2rad(deg)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    direction = rot @ np.array(img.GetDirection()).reshape(3, 3)
    size, spacing = np.array(img.GetSize()), np.array(img.GetSpacing())
    centre = np.array(img.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2).tolist()))
    new_size = [int(size[0]), int(size[1]), int(size[2] * spacing[2] / 3.0) + 40]
    new_spacing = [spacing[0], spacing[1], 3.0]
    origin = centre - direction @ ((np.array(new_size) - 1) / 2 * np.array(new_spacing))
    return sitk.Resample(img, new_size, sitk.Transform(), interp, origin.tolist(), new_spacing,
                         direction.ravel().tolist(), fill, img.GetPixelID())


@pytest.mark.shared_data
def test_real_ct_tilted_and_resampled_with_air_fill_is_segmented(shared_data):
    """QA: LUNG1-003 tilted 10 degrees about x and resampled with -1024 fill (docs/dicom.md's advice for a
    gantry-tilted series) gave "no lungs found"; with -3024 fill its RT Dice was 0.97 / 0.95."""
    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = _tilted_about_x(sitk.ReadImage(str(d / "LUNG1-003_ct.nii.gz")), 10, sitk.sitkLinear, -1024)
    ref = _tilted_about_x(sitk.ReadImage(str(d / "LUNG1-003_labels.nii.gz")), 10, sitk.sitkNearestNeighbor, 0)
    lab = sitk.GetArrayFromImage(ref)
    pred = sitk.GetArrayFromImage(segment_lungs(ct).labels)
    rt = rt_lung_dice(pred, lab == 3, lab == 4, (lab == 1) | (lab == 2))
    assert rt["right"] >= 0.94 and rt["left"] >= 0.93, rt


@pytest.mark.shared_data
def test_real_ct_clipped_at_minus_1000_keeps_its_airway_removal(shared_data):
    """QA: LUNG1-003 with every value clipped at -1000 (np.maximum(a, -1000): a windowed export, a scanner's clip
    floor) gave a right lung of 2242.4 ml holding the trachea and bronchi ("no trachea found"): about half of its noisy
    air sits on exactly -1000 and percolated through the trachea into regions touching the top face, taken for a
    resampler's fill.  The fill is a solid plateau (lungai.io.validate.constant_fill): the clipped CT segments as the
    original (2148.8 / 1720.5 ml, 52 ml of airways removed)."""
    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-003_ct.nii.gz"))
    arr = sitk.GetArrayFromImage(ct)
    clipped = sitk.GetImageFromArray(np.maximum(arr, -1000).astype(arr.dtype))
    clipped.CopyInformation(ct)
    result = segment_lungs(clipped)
    assert result.volumes_ml == {"right_lung": 2148.8, "left_lung": 1720.5}, result.volumes_ml
    assert result.notes[0].startswith("trachea, main and lobar bronchi removed (52 ml"), result.notes


def _lung_cut_by_a_sloping_fill(fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(hu, lungs) [z, y, x]: a box of air-valued noise with a 'lung' ending one slice below a sloping wedge of one
    constant ``fill`` value at the top (a tilted / oblique CT resampled with that defaultPixelValue)."""
    rng = np.random.default_rng(0)
    nz, ny, nx = 30, 64, 64
    hu = rng.normal(40.0, 15.0, (nz, ny, nx))
    kk, yy = np.mgrid[:nz, :ny][..., None]
    wedge = np.broadcast_to(kk > 18 + 0.2 * (yy - ny / 2), hu.shape)
    hu[wedge] = fill
    lungs = np.zeros(hu.shape, bool)
    lungs[4:, 12:52, 12:52] = True
    # the lung stops a slice below the wedge (the smoothing and the padding's margin keep it off)
    lungs &= ~ndimage.binary_dilation(wedge, np.ones((3, 3, 3), bool))
    return hu, lungs


@pytest.mark.parametrize("fill", [-1024, -3024])
def test_a_lung_cut_by_a_resampling_wedge_is_cut_by_the_scan(fill):
    """QA: cut_by_scan took only values below -1100 HU for padding, and only in the lung's own slice: a lung cut by
    the -1024 wedge a tilted / oblique resampling leaves (lungai.io.validate.constant_fill) got no "edge of the field
    of view" note, and one cut by a sloping -3024 face neither (it ends a slice below the face)."""
    hu, lungs = _lung_cut_by_a_sloping_fill(fill)
    notes = segment.cut_by_scan(lungs, (1.0, 1.0, 3.0), segment.scan_padding(hu))
    assert segment.FOV_CUT_NOTE in notes, notes
    # the same lung in a CT without the wedge is wholly in view
    hu0, _ = _lung_cut_by_a_sloping_fill(fill)
    hu0[hu0 == fill] = 40.0
    assert segment.FOV_CUT_NOTE not in segment.cut_by_scan(lungs, (1.0, 1.0, 3.0), segment.scan_padding(hu0))


@pytest.mark.shared_data
def test_real_ct_cut_by_a_tilt_wedge_is_flagged_at_any_fill(shared_data):
    """LUNG1-003 (real, its lungs wholly in view: no cut note) with its top 40 slices behind the sloping wedge a 10 deg
    gantry-tilted series resampled to axial slices leaves: the same lungs and the same "edge of the field of view"
    note whether the resampler filled with -1024 (docs/dicom.md) or -3024; the panel's notes from the label file read
    back (scan_cut_notes) are the command's."""
    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-003_ct.nii.gz"))
    assert segment_lungs(ct).cut == []
    arr = sitk.GetArrayFromImage(ct)
    nz, ny, _ = arr.shape
    kk, yy = np.mgrid[:nz, :ny][..., None]
    # tan(10 deg) x 0.977 mm / 3 mm: 0.06 slices per row
    wedge = np.broadcast_to(kk > 64 + 0.06 * (yy - ny / 2), arr.shape)
    results = []
    for fill in (-1024, -3024):
        a = arr.copy()
        a[wedge] = fill
        img = sitk.GetImageFromArray(a)
        img.CopyInformation(ct)
        result = segment_lungs(img)
        assert result.cut == [segment.FOV_CUT_NOTE], (fill, result.cut)
        assert segment.scan_cut_notes(result.labels, img) == result.cut
        results.append(sitk.GetArrayFromImage(result.labels))
    assert np.array_equal(results[0], results[1])


def _with_a_small_aerated_lung(ct, lung, share):
    """``ct`` with ``lung`` (a [z, y, x] mask) filled with fluid (+30 HU) below its top slices holding about ``share``
    of it - a large effusion / collapse leaving its apex aerated; the aerated part's truth."""
    arr = sitk.GetArrayFromImage(ct)
    from_top = lung.sum(axis=(1, 2))[::-1].cumsum()[::-1]
    k = int(np.flatnonzero(from_top <= share * lung.sum())[0])
    fluid = ndimage.binary_dilation(lung, iterations=2) & (arr < -300)
    fluid[k:] = False
    arr[fluid] = 30
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ct)
    aerated = lung.copy()
    aerated[:k] = False
    return img, aerated


@pytest.mark.parametrize("right", [True, False])
def test_lung_with_a_small_aerated_part_is_kept_as_that_lung(small_phantom, right):
    """A large effusion or collapse leaves one lung's apex aerated, under 15 % of the other lung: it was no lung at all
    (0 ml, "only one lung region found"), so the lungs' MLD / V20 were of the other lung alone; it is that lung now,
    with a warning saying its volume is of its aerated part."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    ct, aerated = _with_a_small_aerated_lung(small_phantom.ct, truth["right" if right else "left"], 0.08)
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    small, other = (RIGHT, LEFT) if right else (LEFT, RIGHT)
    assert dice(pred == small, aerated) >= 0.85, result.notes
    assert dice(pred == other, truth["left" if right else "right"]) >= 0.95
    assert any(f"the {'right' if right else 'left'} lung is small" in n for n in result.warnings), result.notes
    assert not any("uncertain" in n for n in result.notes), result.notes
    # the same warning from the label file (the LungAISeg panel loads what `lungai lungs` wrote)
    assert segment.small_lung_notes(result.labels) == result.small != []


def test_air_of_a_pneumonectomy_space_is_no_lung(small_phantom):
    """After a pneumonectomy the space holds fluid under an air pocket (pure air, about -1000 HU, no lung tissue): it
    is not taken for a small aerated lung; the one lung keeps its side and the 'only one lung region' warning."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    ct, pocket = _with_a_small_aerated_lung(small_phantom.ct, truth["right"], 0.08)
    arr = sitk.GetArrayFromImage(ct)
    arr[pocket] = -1000 + np.random.default_rng(0).normal(0.0, 15.0, int(pocket.sum())).round()
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ct)
    result = segment_lungs(img)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not (pred == RIGHT).any() and dice(pred == LEFT, truth["left"]) >= 0.95, result.notes
    assert not any("lung is small" in n for n in result.notes), result.notes
    assert any("only one lung region" in n for n in result.warnings), result.notes


def _with_a_pneumonectomy_space(ct, lung, share, seed=0):
    """``ct`` with ``lung`` (a [z, y, x] mask) removed: its space filled with fluid (+15 HU) behind an air pocket in
    front (-1000 HU, noise 15 HU) holding ``share`` of it - the air-fluid level of a supine patient weeks after a
    pneumonectomy; the pocket's mask."""
    arr = sitk.GetArrayFromImage(ct)
    space = (ndimage.binary_dilation(lung, iterations=2) & (arr < -300)) | lung      # its vessels gone too
    level = np.quantile(np.nonzero(space)[1], share)
    pocket = space & (np.arange(arr.shape[1])[None, :, None] < level)
    rng = np.random.default_rng(seed)
    arr[space & ~pocket] = (15 + rng.normal(0.0, 10.0, int((space & ~pocket).sum()))).round()
    arr[pocket] = (-1000 + rng.normal(0.0, 15.0, int(pocket.sum()))).round()
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ct)
    return img, pocket


@pytest.mark.parametrize("right", [True, False])
def test_large_air_pocket_of_a_pneumonectomy_space_is_no_lung(small_phantom, right):
    """QA: after a pneumonectomy the space holds fluid and an air pocket in front (pure air, no vessels); a pocket
    holding 15 % of the other lung or more was the second of the two largest air regions, so it was labelled that lung
    (LUNG1-002 / -003: 440-1110 ml), with no warning - the lungs' volume, MLD and V20 counted it.  Now it is left out
    with a warning and the other lung keeps its side."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    gone, kept = ("right", "left") if right else ("left", "right")
    ct, pocket = _with_a_pneumonectomy_space(small_phantom.ct, truth[gone], 0.4)
    assert pocket.sum() >= 0.25 * truth[kept].sum()          # larger than the small-lung share: a "second lung"
    result = segment_lungs(ct)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not (pred == (RIGHT if right else LEFT)).any(), (result.volumes_ml, result.notes)
    assert not pred[pocket].any()
    assert dice(pred == (LEFT if right else RIGHT), truth[kept]) >= 0.95, result.notes
    assert [n for n in result.warnings if "holds no lung tissue" in n] == result.air != [], result.notes
    assert f"on the {gone} side" in result.air[0] and f"of the {kept} lung alone" in result.air[0]
    assert not any("only one lung region" in n for n in result.notes), result.notes


@pytest.mark.shared_data
def test_real_ct_large_air_pocket_of_a_pneumonectomy_space_is_no_lung(shared_data):
    """LUNG1-002 with its right lung's space filled with fluid behind a 566 ml air pocket (29 % of the left lung): the
    pocket was the right lung (589 ml, no warning); now right 0 ml with the warning, the left lung as before."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-002_ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-002_labels.nii.gz")))
    img, pocket = _with_a_pneumonectomy_space(ct, ref == 3, 0.3)
    result = segment_lungs(img)
    pred = sitk.GetArrayFromImage(result.labels)
    # the space's dilated edge reaches the left lung at the anterior junction: 2 ml of the pocket lie in it
    in_lung_ml = np.count_nonzero(pred[pocket]) * np.prod(ct.GetSpacing()) / 1000.0
    assert result.volumes_ml["right_lung"] == 0 and in_lung_ml < 5, (result.volumes_ml, in_lung_ml)
    d = rt_lung_dice(pred, np.zeros_like(pocket), ref == 4, (ref == 1) | (ref == 2))
    assert d["left"] >= 0.95, d
    assert len(result.air) == 1 and result.air[0] in result.warnings, result.notes


@pytest.mark.shared_data
def test_real_ct_emphysematous_lung_with_vessels_stays_lung(shared_data):
    """The no-lung-tissue rule asks for pure air without vessels: LUNG1-003's left lung with its air 300 HU darker
    (severe emphysema, median -1024 HU, vessels kept) stays the left lung."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-003_ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-003_labels.nii.gz")))
    arr = sitk.GetArrayFromImage(ct).astype(np.int32)
    air = (ref == 4) & (arr < -500)
    arr[air] = np.maximum(arr[air] - 300, -1024)
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.CopyInformation(ct)
    result = segment_lungs(img)
    assert result.air == [] and result.volumes_ml["left_lung"] >= 1700, (result.volumes_ml, result.notes)


@pytest.mark.shared_data
def test_real_ct_lung_with_a_small_aerated_part_is_kept_as_that_lung(shared_data):
    """LUNG1-002 with its right lung filled with fluid up to its top 224 ml (11 % of the left lung): right lung 0 ml
    before; now its aerated part, Dice 0.966 against the oncologist's contour of those slices."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-002_ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-002_labels.nii.gz")))
    img, aerated = _with_a_small_aerated_lung(ct, ref == 3, 0.115)
    result = segment_lungs(img)
    d = rt_lung_dice(sitk.GetArrayFromImage(result.labels), aerated, ref == 4, (ref == 1) | (ref == 2))
    assert d["right"] >= 0.95 and d["left"] >= 0.95, (d, result.notes)
    assert 150 <= result.volumes_ml["right_lung"] <= 300, result.volumes_ml


@pytest.mark.parametrize("right", [True, False])
def test_stomach_bubble_larger_than_a_small_lung_is_no_lung(small_phantom, right):
    """QA: a large effusion / collapse leaves one lung's apex aerated (8 %) and a closed stomach bubble below the chest
    holds 0.2 x the other lung: the two-largest-regions rule took the bubble for the second lung (labelled by its
    centre, 240 ml "right lung" or "left lung") and dropped the real aerated apex, with no warning - MLD / V20 of a
    lung plus the stomach.  Now the apex is that lung (with the small-lung warning) and the bubble no lung."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    ct, aerated = _with_a_small_aerated_lung(small_phantom.ct, truth["right" if right else "left"], 0.08)
    ml = 0.2 * truth["left" if right else "right"].sum() * np.prod(small_phantom.ct.GetSpacing()) / 1000.0
    image, bubble = _below_a_gas_bubble(ct, float(np.sqrt(ml * 1000.0 / (4.0 / 3.0 * np.pi * 24.5))), ml)
    result = segment_lungs(image)
    pred = sitk.GetArrayFromImage(result.labels)
    small, other = (RIGHT, LEFT) if right else (LEFT, RIGHT)
    assert not pred[:12][bubble].any(), result.volumes_ml
    assert dice(pred[12:] == small, aerated) >= 0.85, (result.volumes_ml, result.notes)
    assert dice(pred[12:] == other, truth["left" if right else "right"]) >= 0.95
    assert any(f"the {'right' if right else 'left'} lung is small" in n for n in result.warnings), result.notes


def test_gas_pocket_below_touching_lungs_is_no_lung(small_phantom):
    """QA: lungs that touch (one air region, eroded apart) and a closed gas pocket below the chest (stomach, bowel)
    holding 0.17 of their air: the two-largest-regions rule took the pocket for the second lung - the pocket the right
    lung (413 ml), both lungs the left (2405 ml), no warning.  Now the pocket is passed over, the lungs eroded apart:
    the masks of the CT without it."""
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    truth = L.lung_truth(lab, "right")
    arr = sitk.GetArrayFromImage(small_phantom.ct)
    right, left = truth["right"], truth["left"]
    # an air bridge (-850 HU, 3 rows) between the lungs' medial edges on 7 middle slices: the lungs touch
    both = np.flatnonzero(right.any(axis=(1, 2)) & left.any(axis=(1, 2)))
    k = int(both[len(both) // 2])
    rows = np.flatnonzero(right[k].any(axis=1) & left[k].any(axis=1))
    y = int(rows[len(rows) // 4])
    arr[k - 3:k + 4, y - 1:y + 2, np.flatnonzero(right[k, y])[-1]:np.flatnonzero(left[k, y])[0] + 1] = -850
    ct = sitk.GetImageFromArray(arr)
    ct.CopyInformation(small_phantom.ct)
    ml = 0.17 * (right.sum() + left.sum()) * np.prod(ct.GetSpacing()) / 1000.0
    image, bubble = _below_a_gas_bubble(ct, float(np.sqrt(ml * 1000.0 / (4.0 / 3.0 * np.pi * 24.5))), ml)
    result = segment_lungs(image)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not pred[:12][bubble].any(), result.volumes_ml
    assert dice(pred[12:] == RIGHT, right) >= 0.95 and dice(pred[12:] == LEFT, left) >= 0.95, result.volumes_ml
    assert np.array_equal(pred[12:], sitk.GetArrayFromImage(segment_lungs(ct).labels))


@pytest.mark.shared_data
def test_real_ct_gas_pocket_below_touching_lungs_is_no_lung(shared_data):
    """LUNG1-002 (its lungs touch) with a 925 ml closed gas pocket in 12 slices of abdomen added below: the pocket was
    the right lung (966 ml), both lungs the left (3888 ml), with a false 'lungs touch the bottom slice' warning; now the
    masks of the CT itself (1846.1 / 1981.2 ml)."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-002_ct.nii.gz"))
    ml = sum(np.pi * 100.0 ** 2 * max(0.0, 1.0 - ((k - 6) * 3.0 / 24.5) ** 2) * 3.0 for k in range(12)) / 1000.0
    image, bubble = _below_a_gas_bubble(ct, 100.0, ml)
    result = segment_lungs(image)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not pred[:12][bubble].any(), result.volumes_ml
    assert np.array_equal(pred[12:], sitk.GetArrayFromImage(segment_lungs(ct).labels)), result.volumes_ml
    assert result.warnings == [], result.warnings

@pytest.mark.shared_data
def test_real_ct_stomach_bubble_is_not_the_collapsed_lung(shared_data):
    """LUNG1-002 with its left lung filled with fluid up to its top 10 % (197 ml) and a 428 ml closed stomach bubble in
    12 slices of abdomen added below: left lung 434 ml, all of it the bubble, the real apex dropped, no warning; now the
    apex (Dice >= 0.95 against the oncologist's contour of those slices) with the small-lung warning."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-002_ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-002_labels.nii.gz")))
    img, aerated = _with_a_small_aerated_lung(ct, ref == 4, 0.10)
    # 12 slices of 3 mm cut the bubble's 24.5 mm half-height to 18 mm: its volume, slice by slice
    ml = sum(np.pi * 68.0 ** 2 * max(0.0, 1.0 - ((k - 6) * 3.0 / 24.5) ** 2) * 3.0 for k in range(12)) / 1000.0
    image, bubble = _below_a_gas_bubble(img, 68.0, ml)
    result = segment_lungs(image)
    pred = sitk.GetArrayFromImage(result.labels)
    assert not pred[:12][bubble].any(), result.volumes_ml
    d = rt_lung_dice(pred[12:], ref == 3, aerated, (ref == 1) | (ref == 2))
    assert d["right"] >= 0.93 and d["left"] >= 0.95, (d, result.notes)
    assert any("the left lung is small" in n for n in result.warnings), result.notes


def test_airless_collapsed_lung_is_said_to_be_out_of_the_mask():
    """QA: docs/lungs.md and ``RT_LUNG_DEFINITION`` (dose.csv's ``masks`` column for a ``lungai lungs`` mask) said
    "collapsed lung in", but airless collapsed lung (atelectasis, about +20 HU) is as dense as effusion and muscle and
    lies in the lung outline's concavity by the heart: a 40 mm juxta-pleural tumour's atelectasis was 9.7 of 58.8 ml
    in the mask, so the lung volume and MLD / V20 were of the aerated lung without a word.  The definition and the
    docs now say what the mask holds (airless collapsed lung and effusion mostly out)."""
    from pathlib import Path

    from lungai.lungs import RT_LUNG_DEFINITION

    ph = make_phantom(PhantomSpec(effusion=True, effusion_side="left", tumour=TumourSpec(
        40.0, "juxta_pleural", side="left", atelectasis=True)), seed=3)
    labels = sitk.GetArrayFromImage(ph.labels)
    mask = sitk.GetArrayFromImage(segment_lungs(ph.ct).labels) > 0
    atelectasis, effusion = labels == L.ATELECTASIS, labels == L.EFFUSION
    assert atelectasis.sum() > 0 and effusion.sum() > 0
    # the fact documented: most of the airless collapse, and the effusion, are out of the mask
    assert (atelectasis & mask).sum() < 0.5 * atelectasis.sum()
    assert not (effusion & mask).any()
    # ... and said where the user reads what the lung mask holds
    assert "airless collapsed lung (atelectasis) and pleural effusion mostly out" in RT_LUNG_DEFINITION
    assert "aerated lung" in RT_LUNG_DEFINITION
    docs = " ".join((Path(__file__).resolve().parents[1] / "docs" / "lungs.md").read_text().replace("**", "").split())
    assert "Airless collapsed lung (atelectasis, about +20 HU) is mostly not in the mask" in docs


@pytest.mark.parametrize("right", [True, False])
def test_pneumothorax_joined_to_the_lung_is_warned(small_phantom, right):
    """QA: a pneumothorax (pure air, about -1000 HU, no vessels) between the lung and the chest wall is joined to the
    lung's air and labelled lung with no word - the lung's volume, MLD and V20 counted it.  The mask keeps it (lung
    and pleural air cannot be told apart on every slice), but a warning names it; the phantom without it gets none."""
    assert not any("pure air" in n for n in segment_lungs(small_phantom.ct).notes)
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    lung = L.lung_truth(lab, "right")["right" if right else "left"]
    arr = sitk.GetArrayFromImage(small_phantom.ct)
    xs = np.nonzero(lung)[2]
    # the lateral 35 mm of the lung over its middle slices: air with no lung tissue in it
    lateral = xs < xs.min() + 10 if right else xs > xs.max() - 10
    ks = np.nonzero(lung)[0]
    middle = (ks > np.quantile(ks, 0.2)) & (ks < np.quantile(ks, 0.8))
    pocket = np.zeros(lung.shape, bool)
    pocket[tuple(c[lateral & middle] for c in np.nonzero(lung))] = True
    arr[pocket] = (-1000 + np.random.default_rng(0).normal(0.0, 15.0, int(pocket.sum()))).round()
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(small_phantom.ct)
    result = segment_lungs(img)
    side = "right" if right else "left"
    notes = [n for n in result.warnings if "pure air" in n]
    assert len(notes) == 1 and f"the {side} lung holds" in notes[0] and "pneumothorax" in notes[0], result.notes
    assert notes == result.air


@pytest.mark.shared_data
def test_real_ct_pneumothorax_is_warned_without_false_alarms(shared_data):
    """LUNG1-003 (no pneumothorax: no warning; its lungs hold at most 1.5 ml of pure air) and the same CT with the
    lateral 25 mm of its right lung over 40 mm of slices made pure air (a pneumothorax joined to the lung): the
    warning names the right lung."""
    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(nifti / "LUNG1-003_ct.nii.gz"))
    result = segment_lungs(ct)
    assert result.air == [] and not any("pure air" in n for n in result.notes), result.notes
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti / "LUNG1-003_labels.nii.gz"))) == 3
    arr = sitk.GetArrayFromImage(ct)
    sx, _, sz = ct.GetSpacing()
    ks = np.flatnonzero(ref.any(axis=(1, 2)))
    mid, half = ks[len(ks) // 2], int(20 / sz)
    rng = np.random.default_rng(0)
    for k in range(mid - half, mid + half):
        for j in np.flatnonzero(ref[k].any(axis=1)):
            xs = np.flatnonzero(ref[k, j])
            stop = min(xs[0] + int(25 / sx), xs[-1] + 1)
            arr[k, j, xs[0]:stop] = (-1000 + rng.normal(0.0, 20.0, stop - xs[0])).round()
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ct)
    result = segment_lungs(img)
    assert len(result.air) == 1 and "the right lung holds" in result.air[0], result.notes
    assert result.air[0] in result.warnings


def test_the_lungs_bar_counts_each_dicom_file_written(tmp_path, monkeypatch, capsys):
    """QA firstbar64 (lungai lungs LUNG1-003/CT): the DICOM SEG and the RTSTRUCT beside the label map were one step of
    the bar, 6.3 s without a move after "written" on a shared machine.  Each is a step now, said when it is written,
    and the bar's count ends at its total."""
    from dicom_helpers import small_phantom

    from lungai.cli import main
    from lungai.dicom.synthetic import write_rt_study
    from lungai.progress import parse_line

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    (tmp_path / "clinical.csv").write_text("patient_id\nP1\n")    # a folder of the user's work, not only the export
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    out = tmp_path / "results"
    assert main(["lungs", str(study["ct"]), "-o", str(out / "lungs.nii.gz")]) == 0
    err = capsys.readouterr().err
    # a long write's seconds ("... (1 s)", lungai.progress.waiting: a loaded machine) left out
    shown = [parse_line(line) for line in err.splitlines()
             if parse_line(line) and not re.search(r" \(\d+ s\)$", parse_line(line)[1])]
    texts = [text.removeprefix("lungs: ") for _, text in shown]
    # QA startfollow66 (LUNG1-003/CT): the bar stood on "written" through the SEG (3.0-6.6 s of a shared machine) and
    # on "DICOM SEG written" through the RTSTRUCT (2.4-4.2 s): each is named before it is written, the RTSTRUCT's
    # slices contoured counted (message-only: the fraction stays)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "lungs.nii.gz")))
    slices = sum(int((labels == v).any(axis=(1, 2)).sum()) for v in (RIGHT, LEFT))     # each lung's, an ROI each
    counted = "writing DICOM RTSTRUCT: slices contoured "
    assert any(t == f"{counted}0/{slices}" for t in texts), texts[-6:]
    # QA export67: the SEG's stages (its frames built, saved) named while it is written - checked, then left out here
    stages = [t for t in texts if t.startswith("writing DICOM SEG: ")]
    # (QA exportfollow70: the segments' slices and UIDs' digest named before the frames)
    assert stages[:2] == ["writing DICOM SEG: the slices of 2 segments", "writing DICOM SEG: the frames of 2 segments"]
    assert len(stages) == 3, texts[-8:]
    assert texts.index(stages[0]) == texts.index("writing DICOM SEG") + 1 == texts.index(stages[2]) - 2, texts[-8:]
    # the RTSTRUCT's save named once its slices are counted (QA export68), then left out here
    saving = [t for t in texts if t.startswith("writing DICOM RTSTRUCT: saving ")]
    assert saving and texts.index(saving[0]) == texts.index(f"{counted}{slices}/{slices}") + 1, texts[-8:]
    # a later count (once a second: a loaded machine) left out
    shown = [(f, t) for f, t in zip([f for f, _ in shown], texts) if not t.startswith("writing DICOM SEG: ") and (
        not t.startswith(counted) or t.endswith(f" 0/{slices}")) and t not in saving]
    texts = [t for _, t in shown]
    assert texts[-5:] == ["written", "writing DICOM SEG", "DICOM SEG written",
                          f"writing DICOM RTSTRUCT: slices contoured 0/{slices}", "DICOM RTSTRUCT written"], texts
    fractions = [f for f, _ in shown]
    assert fractions[-1] == 1.0 and fractions[-5] == fractions[-4] < fractions[-3] == fractions[-2] < 1.0, shown
    assert (out / "lungs.seg.dcm").is_file() and (out / "lungs.rtstruct.dcm").is_file()


def test_the_right_left_split_of_touching_lungs_says_its_sub_steps():
    """QA startbar66: the right / left split of touching lungs (LUNG1-002: eroded apart, then grown back) was one silent
    step of 2.7-4.9 s of a shared machine, the bar standing on "airways removed".  The erosions are counted and the
    growing back said, as message-only updates (the step count stays segment_lungs'); the parts are those found
    without a progress; lungs apart from the start say nothing more."""
    from test_lungs_memory import _touching_lungs

    Steps = _Steps

    mask = _touching_lungs()
    steps = Steps()
    parts = segment._split_two(mask, 50, progress=steps)
    assert steps.n == 0 and steps.messages[0] == f"{segment.SPLIT_ERODING} 0/12", steps.messages
    assert steps.messages[-1] == segment.SPLIT_GROWING, steps.messages
    plain = segment._split_two(mask, 50)
    assert len(parts) == len(plain) == 2 and all(np.array_equal(a, b) for a, b in zip(parts, plain))
    apart = Steps()
    mask[:, :, 78:82] = False       # the bridge cut: two regions at once
    assert len(segment._split_two(mask, 50, progress=apart)) == 2 and apart.messages == []


def test_the_split_says_its_last_erosion_count_in_a_log(monkeypatch):
    """QA smallfix68: in a log (stderr to a file: a count said at most every few seconds) the erosions' Counter of the
    right / left split was never closed - the log read "eroding them apart 0/12", then "growing the lungs back" 2.6 s
    later, the erosions made never said.  Its final count is said (closed, as every Counter: QA segbar67) before the
    growing back, and where the erosions end without two lungs; the parts are those found without a progress."""
    from test_lungs_memory import _touching_lungs

    class Log(_Steps):
        tick_interval = 3600.0          # a log: no count but the first within the interval

    erosions = []
    real = segment.ndimage.binary_erosion

    def counted(*args, **kwargs):
        erosions.append(1)
        return real(*args, **kwargs)

    mask = _touching_lungs()
    plain = segment._split_two(mask, 50)
    monkeypatch.setattr(segment.ndimage, "binary_erosion", counted)
    steps = Log()
    parts = segment._split_two(mask, 50, progress=steps)
    k = len(erosions)
    assert 0 < k < 12
    assert steps.messages == [f"{segment.SPLIT_ERODING} 0/12", f"{segment.SPLIT_ERODING} {k}/12",
                              segment.SPLIT_GROWING], steps.messages
    assert steps.n == 0 and len(parts) == len(plain) == 2 and all(np.array_equal(a, b) for a, b in zip(parts, plain))
    # one region, its core eroded below min_voxels in a few steps: the count it stopped at is said too, then that no
    # second lung was parted (QA lungs69: a region under min_voxels from the start is not eroded)
    thin = np.zeros((10, 20, 20), bool)
    thin[3:7, 5:15, 5:15] = True
    erosions.clear()
    steps = Log()
    parts = segment._split_two(thin, 100, progress=steps)
    assert 0 < len(erosions) < 12
    assert steps.messages == [f"{segment.SPLIT_ERODING} 0/12", f"{segment.SPLIT_ERODING} {len(erosions)}/12",
                              segment.SPLIT_NONE], steps.messages
    assert len(parts) == 1 and np.array_equal(parts[0], thin)


def test_the_split_of_one_lung_region_does_not_say_the_lungs_touch(monkeypatch):
    """QA lungs69: the right / left split said "lungs touch, eroding them apart" whenever it found fewer than two
    lung-sized air regions: for a single lung region (a CT cropped to one side: LUNG1-002 at x < 240 counted "lungs
    touch, eroding them apart 12/12", then "only one lung region found") and for air regions all under ``min_voxels``,
    which no erosion can make lung-sized (eroded all the same, up to 12 times).  The erosions now say they look for
    touching lungs in one region, and that they parted none when they do not; regions under ``min_voxels`` are not
    eroded and nothing is said; the parts are those found before."""
    from test_lungs_memory import _touching_lungs

    erosions = []
    real = segment.ndimage.binary_erosion

    def counted(*args, **kwargs):
        erosions.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(segment.ndimage, "binary_erosion", counted)
    touching = _touching_lungs()
    one = touching.copy()
    one[:, :, 70:] = False                  # the right lung alone: one region, nothing touches
    steps = _Steps()
    parts = segment._split_two(one, 50, progress=steps)
    assert len(parts) == 1 and np.array_equal(parts[0], one) and steps.n == 0
    assert len(erosions) == 12 and steps.messages[0] == f"{segment.SPLIT_ERODING} 0/12", steps.messages
    assert not any("lungs touch" in m for m in steps.messages), steps.messages
    assert steps.messages[-1] == segment.SPLIT_NONE, steps.messages
    # touching lungs: parted, the erosions said the same way, then grown back (nothing said of no second lung)
    steps = _Steps()
    assert len(segment._split_two(touching, 50, progress=steps)) == 2
    assert steps.messages[0] == f"{segment.SPLIT_ERODING} 0/12" and steps.messages[-1] == segment.SPLIT_GROWING
    assert segment.SPLIT_NONE not in steps.messages, steps.messages
    # no region of min_voxels: nothing to part, no erosion, nothing said; the largest region as before
    small = np.zeros((10, 20, 40), bool)
    small[3:7, 5:15, 3:13] = True
    small[3:7, 5:15, 20:26] = True
    erosions.clear()
    steps = _Steps()
    parts = segment._split_two(small, 10_000, progress=steps)
    assert erosions == [] and steps.messages == [], steps.messages
    assert len(parts) == 1 and np.array_equal(parts[0], small & (np.arange(40) < 15))


@pytest.mark.shared_data
def test_a_real_ct_cropped_to_one_lung_does_not_say_the_lungs_touch(shared_data):
    """QA lungs69: LUNG1-002 cropped to its right half (x < 240: the right lung alone) - the bar said "right / left
    split: lungs touch, eroding them apart 12/12" before "only one lung region found"; now the erosions say they parted
    no second lung, with the same mask (1723 ml, labelled right)."""
    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-002_ct.nii.gz"))[:240]
    steps = _Steps()
    result = segment_lungs(ct, progress=steps)
    said = [m for n, m in steps.log if n == 0]
    assert not any("lungs touch" in m for m in said), said
    assert segment.SPLIT_NONE in said and segment.SPLIT_GROWING not in said, said
    assert result.volumes_ml["left_lung"] == 0 and round(result.volumes_ml["right_lung"]) == 1723, result.volumes_ml
    assert any(n.startswith("only one lung region found") for n in result.warnings), result.warnings


def test_no_lungs_in_a_small_field_of_view_says_it_is_too_small_to_hold_a_lung(small_phantom):
    """QA lungsfollow67: a small crop inside the lung (an LIDC nodule's, 37 x 45 x 27.5 mm) gave "no lungs found: less
    than 100 ml ..." whose fix began with resampling a tilted CT: it never said that the field of view is too small to
    hold a lung.  The fix says it first, with the CT's extent in mm; a whole chest without lungs does not."""
    crop = small_phantom.ct[30:42, 30:44, 14:20]        # 42 x 49 x 30 mm inside the right lung
    with pytest.raises(InputError, match="no lungs found") as err:
        segment_lungs(crop)
    assert err.value.fix.startswith("the CT's field of view, 42 x 49 x 30 mm (x, y, z), is too small to hold a lung"), \
        err.value.fix
    assert "lungai lungs needs a whole chest CT" in err.value.fix and "lungai radiomics" in err.value.fix
    assert "resample a tilted / oblique CT" in err.value.fix       # still said, after it
    # a whole chest (336 x 336 x 200 mm) with its lungs filled with fluid: no word of a small field of view
    arr = sitk.GetArrayFromImage(small_phantom.ct)
    labels = sitk.GetArrayFromImage(small_phantom.labels)
    arr[labels > 0] = 20
    filled = sitk.GetImageFromArray(arr)
    filled.CopyInformation(small_phantom.ct)
    with pytest.raises(InputError, match="no lungs found") as err:
        segment_lungs(filled)
    assert "too small to hold a lung" not in str(err.value)


@pytest.mark.shared_data
def test_real_nodule_crop_says_its_field_of_view_is_too_small(shared_data, capsys, tmp_path):
    """QA lungsfollow67: ``lungai lungs`` on LIDC-IDRI-0001_R_1 (37 x 45 x 27.5 mm): its fix now says first that the
    field of view is too small to hold a lung."""
    from lungai.cli import main

    path = shared_data / "lidc_nodules" / "image" / "LIDC-IDRI-0001_R_1.nii.gz"
    assert main(["lungs", str(path), "-o", str(tmp_path / "lungs.nii.gz")]) != 0
    err = capsys.readouterr().err
    assert "How to fix: the CT's field of view, 37 x 45 x 28 mm (x, y, z), is too small to hold a lung" in err, err
    assert not (tmp_path / "lungs.nii.gz").exists()



def _said_while_slowed(small_phantom, monkeypatch, slowed, prefix, substeps):
    """``segment``'s functions ``slowed`` (one long call each of a two-sub-step step ``prefix``) made 0.45 s slower:
    each sub-step of ``substeps`` is said as it starts and at least 3 times with its seconds while it runs (tick
    0.1 s), and the mask is that found without a progress."""
    import time

    plain = sitk.GetArrayFromImage(segment_lungs(small_phantom.ct).labels)
    for name in slowed:
        def slow(*args, _real=getattr(segment, name)):
            time.sleep(0.45)
            return _real(*args)

        monkeypatch.setattr(segment, name, slow)

    class Terminal(_Steps):
        tick_interval = 0.1

    steps = Terminal()
    got = sitk.GetArrayFromImage(segment_lungs(small_phantom.ct, progress=steps).labels)
    assert np.array_equal(got, plain)
    said = [m for n, m in steps.log if n == 0]
    for k, what in enumerate(substeps):
        start = f"{prefix} {k}/2: {what}"
        running = [m for m in said if m.startswith(start + " (") and m.endswith(" s)")]
        assert start in said and len(running) >= 3, said

def test_outside_air_says_it_is_running(small_phantom, monkeypatch):
    """QA lungsfollow67: "finding the outside air" was two single sub-steps of 1.2-2.6 s each on LUNG1-002 (the 3D
    labelling of the air, then the resampler's constant fill), the bar standing still.  Each is said while it runs,
    with its seconds at every tick interval (lungai.progress.waiting); the mask is that found without a progress."""
    _said_while_slowed(small_phantom, monkeypatch, ("_outside_air", "constant_fill"), "finding the outside air",
                       OUTSIDE_AIR_SUBSTEPS)


# the outside air's two sub-steps as the bar says them (segment.OUTSIDE_AIR_LABELLING, segment.OUTSIDE_AIR_FILL)
OUTSIDE_AIR_SUBSTEPS = ("the air connected to the image's border", "a resampler's fill at the faces")


def test_preparing_a_ct_checked_on_reading_says_no_hu_check(small_phantom):
    """QA lungsfollow67: ``lungai lungs`` checks the HU on reading the CT (segment_lungs(..., checked=True)), yet its bar
    said "preparing the CT 0/3 (HU check, ...)".  A CT checked on reading is prepared in 2 sub-steps saying what they
    do; segment_lungs called on its own still says its HU check."""

    class Terminal(_Steps):
        tick_interval = 0.0

    checked = Terminal()
    segment_lungs(small_phantom.ct, progress=checked, checked=True)
    said = [m for n, m in checked.log if n == 0 and m.startswith("preparing the CT")]
    assert said == [f"preparing the CT {k}/2 (LPS orientation, blank end slices)" for k in range(3)], said
    own = Terminal()
    segment_lungs(small_phantom.ct, progress=own)
    said = [m for n, m in own.log if n == 0 and m.startswith("preparing the CT")]
    assert said == [f"preparing the CT {k}/3 (HU check, LPS orientation, blank end slices)" for k in range(4)], said


# the air in the body's two sub-steps as the bar says them (segment.BODY_AIR_OPEN_FOV, segment.BODY_AIR_OPENING)
BODY_AIR_SUBSTEPS = ("air open to the edge of the field of view", "air reached through an open airway")
# what the bar says while the two lung regions' sides and tissue are judged after the split (segment.SPLIT_JUDGING)
SPLIT_JUDGING = "right / left split: each lung's side and tissue"


def test_air_in_the_body_says_it_is_running(small_phantom, monkeypatch):
    """QA lungsfollow68: "finding the air in the body 0/2" stood 2.1-2.3 s idle on LUNG1-002 (~5 s on a loaded
    machine) with no line in a log (stderr to a file): two sub-steps counted by a Counter, its count said every 2 s
    there, each sub-step one long call (the open-field-of-view check, the air reached through an open airway).  Each
    is said as it starts and while it runs, with its seconds at every tick interval (lungai.progress.waiting); the
    mask is that found without a progress."""
    _said_while_slowed(small_phantom, monkeypatch, ("_open_fov_air_ml", "_airway_open_to_outside"),
                       "finding the air in the body", BODY_AIR_SUBSTEPS)


def test_the_lungs_sides_and_tissue_are_said_while_judged(small_phantom, monkeypatch):
    """QA lungsfollow68: after "right / left split: growing the lungs back" (LUNG1-002) the two lung regions' sides
    (their centres) and tissue (the pure-air check's distance transforms) were judged with nothing said: 2.2-2.4 s from
    that message to the step's end in a log, up to 4 s on a loaded machine, no "(N s)" line.  Said as a message-only
    update while it runs, with its seconds (lungai.progress.waiting), before the step ends; the mask is that found
    without a progress."""
    import time

    plain = sitk.GetArrayFromImage(segment_lungs(small_phantom.ct).labels)
    real = segment._no_lung_tissue

    def slow(*args):
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(segment, "_no_lung_tissue", slow)

    class Terminal(_Steps):
        tick_interval = 0.1

    steps = Terminal()
    got = sitk.GetArrayFromImage(segment_lungs(small_phantom.ct, progress=steps).labels)
    assert np.array_equal(got, plain)
    messages = [m for _, m in steps.log]
    end = messages.index("right / left split")
    judging = [(i, m) for i, (n, m) in enumerate(steps.log) if n == 0 and m.startswith(SPLIT_JUDGING)]
    assert judging and judging[0][1] == SPLIT_JUDGING, steps.log
    running = [m for _, m in judging[1:] if m.startswith(SPLIT_JUDGING + " (") and m.endswith(" s)")]
    assert len(running) >= 3 and all(i < end for i, _ in judging), steps.log


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["LUNG1-002", "LUNG1-003"])
def test_real_ct_masks_unchanged_by_the_lung_steps_progress(shared_data, case):
    """QA lungsfollow67 / lungsfollow68: the outside air's two sub-steps, the air in the body's two, the growing back
    of touching lungs (LUNG1-002) and the lungs' sides and tissue run beside a progress (lungai.progress.waiting) give
    the masks, volumes and notes found without a progress, voxel for voxel, on the real whole CTs; each is said as it
    starts and while it runs (one run with a progress and one without, per CT: two such tests merged by the lead)."""

    class Terminal(_Steps):
        tick_interval = 0.0

    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / f"{case}_ct.nii.gz"))
    steps = Terminal()
    new = segment_lungs(ct, progress=steps)
    said = [m for n, m in steps.log if n == 0]
    for start in ([f"finding the outside air {k}/2: {what}" for k, what in enumerate(OUTSIDE_AIR_SUBSTEPS)]
                  + [f"finding the air in the body {k}/2: {what}" for k, what in enumerate(BODY_AIR_SUBSTEPS)]
                  + [SPLIT_JUDGING] + ([segment.SPLIT_GROWING] if case == "LUNG1-002" else [])):
        assert start in said and any(m.startswith(start + " (") and m.endswith(" s)") for m in said), (start, said)
    old = segment_lungs(ct)
    assert np.array_equal(sitk.GetArrayFromImage(new.labels), sitk.GetArrayFromImage(old.labels))
    assert new.volumes_ml == old.volumes_ml and new.notes == old.notes


def _labels_by_sorting(arr) -> int | None:
    """The one label of a map as lungai.lungs.check took it before (QA lungs69): its sorted values, int() of each."""
    present = set(int(v) for v in np.unique(arr)) - {0}
    return present.pop() if len(present) == 1 else None


def test_one_label_is_that_of_the_sorted_values():
    """QA lungs69: lungai.lungs.check.one_label (the map's minimum, maximum and at most one comparison) gives the label
    the sorted values gave (np.unique, then int() of each, 0 left out) - every dtype a lung map is read as, floats cut
    towards 0 (0.9 is no label, -1.5 is -1), labels on both sides of 0, none, NaN and infinity (left to np.unique)."""
    from lungai.lungs.check import one_label

    rng = np.random.default_rng(69)
    values = [0, 0, 1, 2, 3, 255, -1, -2, 0.3, 0.9, 1.5, 2.7, -0.5, -1.5, -2.2, 1000]
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.float32, np.float64):
        for _ in range(300):
            chosen = rng.choice(values, size=rng.integers(1, 4))
            with np.errstate(invalid="ignore"):
                arr = rng.choice(chosen, size=(3, 4, 5)).astype(dtype)
            assert one_label(arr) == _labels_by_sorting(arr), (dtype, chosen)
    for arr in (np.zeros((2, 2), bool), np.ones((2, 2), bool), np.zeros((0, 3), np.uint8),
                np.array([0.0, 2.0, 2.5]), np.array([0.0, 3.0, 3.9]), np.array([-0.9, 0.5, 0.0])):
        assert one_label(arr) == _labels_by_sorting(arr), arr
    with pytest.raises(ValueError):         # int(nan), as before
        one_label(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(OverflowError):      # int(inf), as before
        one_label(np.array([0.0, 1.0, np.inf]))


@pytest.mark.shared_data
def test_lung_map_checks_do_not_sort_the_real_maps(shared_data, monkeypatch):
    """QA lungs69: lung_map_notes and one_label_is_both_lungs (dose-features, cohort, the Slicer panel, dicom-export,
    radiomics) sorted the whole map with np.unique to find its labels - 0.35-0.8 s for a uint8 label map of LUNG1-002 /
    -003 (512 x 512 x 107-111), 1.0-1.25 s for an int16 one, 1.7 s for a float32 mask, at OMP_NUM_THREADS=1 (0.06-0.42
    s now).  Without any np.unique, on the real maps (lungai lungs' kind of map, the contours' label map, one lung as
    label 1 / 2 / 255, both lungs as a float mask) they give the label the sorted values give and the notes of it."""
    from lungai.lungs import check

    nifti = shared_data / "nsclc_whole_ct" / "nifti"
    for case in ("LUNG1-002", "LUNG1-003"):
        lab = sitk.ReadImage(str(nifti / f"{case}_labels.nii.gz"))
        right, left = lab == 3, lab == 4
        maps = {"right 1 left 2": sitk.Cast(right + left * 2, sitk.sitkUInt8),
                "contours": lab,
                "right 1": sitk.Cast(right, sitk.sitkUInt8),
                "left 2 int16": sitk.Cast(left * 2, sitk.sitkInt16),
                "left 255": sitk.Cast(left * 255, sitk.sitkUInt8),
                "both 1 float": sitk.Cast(right | left, sitk.sitkFloat32)}
        labels = {name: _labels_by_sorting(sitk.GetArrayViewFromImage(image)) for name, image in maps.items()}
        assert labels == {"right 1 left 2": None, "contours": None, "right 1": 1, "left 2 int16": 2, "left 255": 255,
                          "both 1 float": 1}, labels

        def unsorted(*args, **kwargs):
            raise AssertionError("np.unique sorts the whole map")

        monkeypatch.setattr(np, "unique", unsorted)
        notes = {name: check.lung_map_notes(image) for name, image in maps.items()}
        both = {name: check.one_label_is_both_lungs(image) for name, image in maps.items()}
        monkeypatch.undo()
        assert {name: check.one_label(sitk.GetArrayViewFromImage(image)) for name, image in maps.items()} == labels
        assert both == {name: name == "both 1 float" for name in maps}, both
        assert notes["right 1 left 2"] == notes["contours"] == notes["both 1 float"] == [], notes
        assert notes["right 1"] == [check.ONE_LABEL_NOTE.format(have="right", value=1, missing="left", other=2)]
        assert notes["left 2 int16"] == [check.ONE_LABEL_NOTE.format(have="left", value=2, missing="right", other=1)]
        assert len(notes["left 255"]) == 1 and notes["left 255"][0].startswith(
            "the lung mask holds one label (255) spanning 1"), notes


@pytest.mark.shared_data
def test_a_real_ct_cutting_the_lungs_warns_with_the_fix(shared_data, tmp_path, capsys):
    """QA lungs69: pyradiomics lung1 (its lungs on the bottom slice) - ``lungai lungs`` warned "the lungs touch the
    bottom slice: the scan does not cover the whole lungs; volumes and lung features are of the part in view" and said
    nothing of what to do.  The warnings of lungs cut by the scan (its top / bottom slice, the edge of the field of
    view) name the CT to use for the whole lungs, as dose-features' lungs_cut names the series to export; the mask is
    as before (1801 / 1116 ml)."""
    from lungai.cli import main

    out = tmp_path / "lungs.nii.gz"
    assert main(["lungs", str(shared_data / "pyradiomics_lung" / "lung1_image.nrrd"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "right lung 1801 ml, left lung 1116 ml" in printed, printed
    warnings = [line for line in printed.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: the lungs touch the bottom slice: the scan does not cover the whole lungs; volumes "
                        "and lung features are of the part in view - for the whole lungs' volumes, features and dose "
                        "metrics use a CT covering both lungs from apex to base (e.g. the planning CT)"], printed
    assert segment.FOV_CUT_NOTE.endswith(" - for the whole lungs' volumes, features and dose metrics use a CT "
                                         "reconstructed with a field of view holding the whole chest")


# --- QA lungsfollow69: every lung note says what is wrong and what to do ---------------------------------------------


def _label_map(arr: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(spacing)
    return img


def test_a_lung_map_of_one_lung_says_to_give_both_lungs():
    """QA lungsfollow69: a map holding the right lung only (label 1, 100 mm wide) was said to be "of one lung, not of
    both" with no word of what to give instead: the note now asks for a map of both lungs and says how to make one."""
    arr = np.zeros((20, 60, 100), np.uint8)
    arr[2:18, 10:50, 0:100] = 1                     # 100 mm right-left: one lung, label 1
    notes = check.lung_map_notes(_label_map(arr), check_volume=False)
    assert len(notes) == 1 and "no left lung (label 2)" in notes[0], notes
    assert "give a map of both lungs" in notes[0] and "`lungai lungs`" in notes[0] and "Segment lungs" in notes[0]


def test_a_small_lung_map_says_to_give_the_whole_lungs():
    """QA lungsfollow69: a lung map of 154 ml (cut to a part) was said to be incomplete with no action: the note now
    says to give a map of both whole lungs on a CT covering them, and how."""
    arr = np.zeros((20, 60, 300), np.uint8)
    arr[2:18, 10:50, 10:70], arr[2:18, 10:50, 230:290] = 1, 2     # 2 x 76.8 ml, 280 mm wide
    notes = check.lung_map_notes(_label_map(arr))
    assert len(notes) == 1 and notes[0].startswith("the lungs total 154 ml, less than 1000 ml"), notes
    assert "give a map of both whole lungs" in notes[0] and "from the apices to the diaphragm" in notes[0], notes


def test_a_small_lung_says_how_to_count_its_collapsed_part():
    """QA lungsfollow69: "the left lung is small (... a large effusion or a collapsed lobe / lung?)" said what the
    volume holds but not what to do: it now says to check that lung and how to get metrics of the whole lung."""
    arr = np.zeros((20, 60, 300), np.uint8)
    arr[2:18, 10:50, 10:100], arr[2:18, 10:20, 230:240] = 1, 2    # the left lung under 15 % of the right
    notes = segment.small_lung_notes(_label_map(arr))
    assert len(notes) == 1 and notes[0].startswith("the left lung is small (3 ml"), notes
    assert "check the left lung on the CT" in notes[0] and "add its collapsed part to the mask" in notes[0], notes


def test_no_trachea_found_is_a_warning_with_the_fix(small_phantom):
    """QA lungsfollow69: "note: no trachea found in the upper slices; airways not removed" - the trachea and bronchi
    then stay in the lung mask (its volume, the dose metrics), so it is a warning (``LungResult.warnings``: printed
    "warning: ...", the Segment lungs panel's, the demo's), and it says what to do: a CT covering the trachea above
    the carina, or the airways erased from the mask."""
    from lungai.lungs.airways import find_central_airways
    from lungai.synthetic import labels as L

    hu = np.full((40, 60, 60), 40.0, np.float32)
    hu[39, 25:33, 25:33] = -1000.0                 # a one-slice 'trachea': none found
    airways, note = find_central_airways(hu, hu < -400, hu, (1.0, 1.0, 3.0), 30.0, 0.003)
    assert airways is None and note.startswith("no trachea found in the upper slices; airways not removed: ")
    assert "give a CT covering the trachea above the carina" in note and "erase the airways" in note, note

    arr = sitk.GetArrayFromImage(small_phantom.ct)
    arr[sitk.GetArrayViewFromImage(small_phantom.labels) == L.AIRWAYS] = 40     # no trachea to remove the airways by
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(small_phantom.ct)
    result = segment_lungs(img)
    kept = [n for n in result.notes if "airways not removed" in n]
    assert kept == [note] and result.warnings[0] == note and result.airways == [note], result.notes
    # the airways removed: a note, no warning
    found = segment_lungs(small_phantom.ct)
    assert found.airways == [] and any("removed (" in n and n not in found.warnings for n in found.notes), found.notes


def test_no_trachea_warning_printed_by_lungai_lungs(small_phantom, tmp_path, capsys):
    """``lungai lungs`` prints the airways-not-removed message as "warning: ..." with its fix (was "note: ...")."""
    from lungai.cli import main
    from lungai.lungs.airways import NO_TRACHEA_NOTE
    from lungai.synthetic import labels as L

    arr = sitk.GetArrayFromImage(small_phantom.ct)
    arr[sitk.GetArrayViewFromImage(small_phantom.labels) == L.AIRWAYS] = 40
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(small_phantom.ct)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    assert main(["lungs", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "lungs.nii.gz")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"warning: {NO_TRACHEA_NOTE}" in out and not any(o.startswith("note: no trachea") for o in out), out
