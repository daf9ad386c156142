"""ROI choice, model-grid resampling and exact mapping back onto the input grid."""

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.seg import preprocess as pp
from lungai.seg.config import SegConfig


def _oblique_image(size=(60, 50, 20), spacing=(0.8, 0.9, 2.5)):
    img = sitk.Image(size, sitk.sitkFloat32)
    img.SetSpacing(spacing)
    img.SetOrigin((-20.0, 13.0, 40.0))
    rot = sitk.VersorTransform((0.0, 0.0, 1.0), 0.3).GetMatrix()
    img.SetDirection(rot)
    return img


def test_model_grid_keeps_physical_position_of_a_blob():
    img = _oblique_image()
    arr = np.zeros(img.GetSize()[::-1], np.float32)
    arr[8:12, 20:30, 25:35] = 1.0
    blob = sitk.GetImageFromArray(arr)
    blob.CopyInformation(img)
    model = pp.resample_to_spacing(blob, (1.5, 1.5, 2.5))
    back = pp.to_input(sitk.GetArrayFromImage(model), model, blob)
    assert back.shape == arr.shape
    c_in = np.argwhere(arr > 0.5).mean(0)
    c_back = np.argwhere(back > 0.5).mean(0)
    assert np.allclose(c_in, c_back, atol=1.0)
    # same physical extent: the model grid spans the input's field of view
    ext_in = np.array(img.GetSize()) * np.array(img.GetSpacing())
    ext_model = np.array(model.GetSize()) * np.array(model.GetSpacing())
    assert np.all(np.abs(ext_in - ext_model) <= np.array((1.5, 1.5, 2.5)))


def test_to_input_gives_0_beyond_the_model_grids_outer_samples_and_the_cut_is_judged_on_the_model_grid():
    """QA (review of 391ea3a): extrapolating the nearest model value onto the crop's outer slices put tumour on
    thin-sliced LIDC crops' first / last slices where the expert mask is empty (0704_R_1: 0.093 -> 0.111 ml, a false
    cut face, Dice 0.81 -> 0.74).  A 0.625 mm-slice crop of 40 slices on a 2 mm grid: 12 samples over 24 of its 25 mm;
    the first / last slice lie more than half a model voxel beyond them and get 0.  A tumour filling the model grid
    to its outermost sample plane is still cut there (pp.cut_on_model_grid), on the image-edge faces asked for."""
    img = sitk.Image((20, 20, 40), sitk.sitkFloat32)
    img.SetSpacing((0.7, 0.7, 0.625))
    model = pp.resample_to_spacing(img, (1.0, 1.0, 2.0))
    assert model.GetSize()[2] == 12
    back = pp.to_input(np.ones(model.GetSize()[::-1], np.float32), model, img)
    assert not back[0].any() and not back[-1].any() and back[1:-1].min() == 1.0
    mean = np.zeros(model.GetSize()[::-1], np.float32)
    mean[6:, 4:10, 4:10] = 0.9                                   # reaches the last sample plane (z+)
    binary = pp.to_input(mean, model, img) > 0.5
    assert not binary[-1].any() and pp.cut_by_image_edge(sitk.GetImageFromArray(binary.astype(np.uint8))) == []
    assert pp.cut_on_model_grid(binary, mean, model, img, {"z-", "z+"}) == ["z+"]
    assert pp.cut_on_model_grid(binary, mean, model, img, {"x-", "x+"}) == []
    low = binary.copy()
    low[24:] = False                                             # the kept mask ends 10 mm below the top: the
    assert pp.cut_on_model_grid(low, mean, model, img, {"z-", "z+"}) == []      # model's tumour above is not it
    mean[-1] = 0.0                                               # stops one sample short: not cut
    assert pp.cut_on_model_grid(pp.to_input(mean, model, img) > 0.5, mean, model, img, {"z-", "z+"}) == []


def test_paste_puts_crop_back_at_its_box():
    img = _oblique_image()
    box = pp.Box((5, 6, 2), (25, 30, 10))
    crop = pp.crop(img, box)
    assert crop.GetSize() == box.size
    assert np.allclose(crop.GetOrigin(), img.TransformIndexToPhysicalPoint(box.lo))
    full = pp.paste(img, box, np.ones(box.size[::-1], np.float32))
    assert full.sum() == np.prod(box.size)
    assert full[2, 6, 5] == 1 and full[1, 6, 5] == 0 and full[9, 29, 24] == 1 and full[10, 29, 24] == 0


def test_roi_from_lps_corners_and_seed_errors(small_phantom):
    ct = small_phantom.ct
    p0 = ct.TransformIndexToPhysicalPoint((10, 20, 5))
    p1 = ct.TransformIndexToPhysicalPoint((30, 40, 15))
    box = pp.box_from_physical(ct, p0, p1)
    assert box.lo == (10, 20, 5) and box.hi == (31, 41, 16)
    with pytest.raises(InputError, match="outside the image"):
        pp.box_from_seed(ct, (5000.0, 0.0, 0.0), 60.0)
    corner_air = ct.TransformIndexToPhysicalPoint((1, 1, 20))
    with pytest.raises(InputError, match="outside the body"):
        pp.box_from_seed(ct, corner_air, 60.0)
    centre = small_phantom.meta["tumour"]["centre_mm"]
    seed_box = pp.box_from_seed(ct, centre, 40.0)
    assert seed_box.mode == "seed" and all(s > 1 for s in seed_box.size)


def test_lung_box_covers_the_lungs_and_window(small_phantom):
    from lungai.synthetic import labels

    ct = small_phantom.ct
    assert not pp.is_crop(ct)
    box = pp.box_from_lungs(ct, 10.0)
    lab = sitk.GetArrayViewFromImage(small_phantom.labels)
    lungs = np.isin(lab, [labels.RIGHT_LUNG, labels.LEFT_LUNG])
    zz, yy, xx = np.nonzero(lungs)
    assert box.lo[0] <= xx.min() and box.hi[0] > xx.max()
    assert box.lo[1] <= yy.min() and box.hi[1] > yy.max()
    assert box.size[0] < ct.GetSize()[0]          # smaller than the whole image
    region = pp.region_on(box, ct)                  # lungs + margin, where a tumour may be
    assert region[lungs].mean() > 0.97 and region.mean() < 0.8
    found = pp.mask_on(box.lungs, ct)               # the lungs themselves (component filter)
    assert found[lungs].mean() > 0.9 and found.sum() < region.sum()
    w = pp.window(np.array([-2000, -1000, -300, 400, 3000]), SegConfig().hu_window)
    assert w[0] == 0 and w[1] == 0 and w[-1] == 1 and 0 < w[2] < 1


def test_the_lung_box_on_a_tilted_copy_of_a_ct_is_the_same_box_in_index_space(small_phantom):
    """Automatic mode's box (pp.box_from_lungs) is built in index space from the lung mask's first and last voxels:
    the same voxels stored with a 15 degree gantry tilt (direction rotated about y-z, origin kept) give the same box
    and the same lungs - not the index-space bounding box of the 8 LPS corners of the lungs' extent
    (pp.box_from_physical), which grew by up to cos + sin of the tilt along y and z.  On a CT whose axes follow LPS
    the box is that of the LPS corners, as before."""
    ct = small_phantom.ct
    t = np.deg2rad(15.0)
    tilted = sitk.Image(ct)
    tilted.SetDirection((1, 0, 0, 0, np.cos(t), -np.sin(t), 0, np.sin(t), np.cos(t)))
    for margin in (0.0, 10.0):      # without a margin the lungs' box is inside the image (before: z 0-40, not 3-39)
        b, bt = pp.box_from_lungs(ct, margin), pp.box_from_lungs(tilted, margin)
        assert (bt.lo, bt.hi) == (b.lo, b.hi), (margin, b, bt)
        assert np.array_equal(sitk.GetArrayViewFromImage(bt.lungs), sitk.GetArrayViewFromImage(b.lungs))
    # as stored (identity direction) and axes swapped / flipped: the box of the lungs' LPS corners plus margin + the
    # lung-finding spacing (pp.box_from_physical), as before
    swapped = sitk.Image(ct)
    swapped.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, -1))
    for img in (swapped, ct):
        bi = pp.box_from_lungs(img, 10.0)
        zz, yy, xx = np.nonzero(sitk.GetArrayViewFromImage(bi.lungs))
        p0 = bi.lungs.TransformIndexToPhysicalPoint((int(xx.min()), int(yy.min()), int(zz.min())))
        p1 = bi.lungs.TransformIndexToPhysicalPoint((int(xx.max()), int(yy.max()), int(zz.max())))
        ref = pp.box_from_physical(img, p0, p1, 10.0 + pp.LUNG_FIND_SPACING)
        assert (bi.lo, bi.hi) == (ref.lo, ref.hi), (bi, ref)
    # the tilted copy's LPS-corner box is the larger one the lungs' box no longer takes
    q0, q1 = (tilted.TransformIndexToPhysicalPoint(ct.TransformPhysicalPointToIndex(p)) for p in (p0, p1))
    grown = pp.box_from_physical(tilted, q0, q1, 10.0 + pp.LUNG_FIND_SPACING)
    assert grown.size[1] > b.size[1] or grown.size[2] > b.size[2]


def _lung_with_tumour(lung_hu=-700.0, ggo=False):
    """60 x 60 x 20 mm at 1 mm, centred on the origin (LPS): lung of ``lung_hu`` everywhere, a soft-tissue tumour
    (40 HU) round LPS (15, 5, 0); with ``ggo`` a ground-glass nodule (-600 HU, 8 mm) in lung of -850 round
    (-15, -5, 0), where the tumour's point read as RAS lies."""
    arr = np.full((20, 60, 60), lung_hu, np.float32) + np.random.default_rng(0).normal(0, 10, (20, 60, 60))
    img = sitk.GetImageFromArray(arr)
    img.SetOrigin((-29.5, -29.5, -9.5))
    zz, yy, xx = np.mgrid[:20, :60, :60]
    pos = np.stack([xx - 29.5, yy - 29.5, zz - 9.5])
    arr[((pos - np.array([15, 5, 0])[:, None, None, None]) ** 2).sum(0) < 8 ** 2] = 40
    if ggo:
        arr[:] = np.where(arr > -300, arr, -850)
        arr[((pos - np.array([-15, -5, 0])[:, None, None, None]) ** 2).sum(0) < 4 ** 2] = -600
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


def test_a_seed_or_roi_in_aerated_lung_is_noted_with_the_ras_reading():
    """A seed given in RAS by mistake lands in the opposite lung (LUNG1-003: -697 HU) and used to give a silent
    wrong tumour: the note says where it lies and that the point read as RAS is in soft tissue."""
    ct = _lung_with_tumour()
    note = pp.aerated_seed_note(ct, (-15.0, -5.0, 0.0))
    assert note.startswith("the seed lies in aerated lung (-70") and "read as RAS (15.0,5.0,0.0)" in note
    assert "soft tissue (40 HU)" in note and "negate x and y" in note
    assert pp.aerated_seed_note(ct, (15.0, 5.0, 0.0)) is None                      # on the tumour
    roi = (-9.0, 0.0, -5.0, -21.0, -10.0, 5.0)
    note = pp.aerated_seed_note(ct, roi_lps=roi)
    assert note.startswith("the ROI's centre lies in aerated lung") and "read as RAS (9.0,-0.0,-5.0" in note
    assert pp.aerated_seed_note(ct, roi_lps=(9.0, 0.0, -5.0, 21.0, 10.0, 5.0)) is None
    assert pp.aerated_seed_note(ct) is None


def test_aerated_lung_note_spares_ground_glass_and_needs_ras_evidence_above_minus_800():
    ct = _lung_with_tumour(ggo=True)
    assert pp.aerated_seed_note(ct, (-15.0, -5.0, 0.0)) is None     # a ground-glass nodule: denser than around it
    note = pp.aerated_seed_note(ct, (-15.0, 10.0, 0.0))            # well-aerated lung (-850): noted on its own
    assert note.startswith("the seed lies in aerated lung (-85") and "RAS" not in note
    assert pp.aerated_seed_note(_lung_with_tumour(-700.0), (-15.0, 15.0, 0.0)) is None   # -700, RAS point in lung
    # a box with well-aerated lung at its centre (a loose box round a small nodule, a LIDC-style crop given as the
    # ROI) is noted only for the RAS mix-up: its negated box here lies in lung too
    assert pp.aerated_seed_note(ct, roi_lps=(-25.0, 5.0, -5.0, -5.0, 25.0, 5.0)) is None


def test_a_seed_on_a_ground_glass_nodule_of_a_lung_crop_is_not_outside_the_body():
    """QA: 42 of the 779 real LIDC crops seeded at their nodule's centre were refused as 'outside the body': in a crop
    inside the lung the aerated lung reaches the image border, and a ground-glass nodule's centre (< -500 HU) lies in
    it.  Only air (median below OUTSIDE_AIR_HU) reaching the border is outside the body."""
    rng = np.random.default_rng(0)
    arr = (-850 + 30 * rng.standard_normal((5, 40, 40))).astype(np.int16)          # aerated lung, z y x
    zz, yy, xx = np.mgrid[:5, :40, :40]
    arr[(xx - 20) ** 2 + (yy - 20) ** 2 + ((zz - 2) * 4) ** 2 < 36] = -600            # ground-glass nodule
    crop = sitk.GetImageFromArray(arr)
    crop.SetSpacing((0.6, 0.6, 2.5))
    centre = crop.TransformIndexToPhysicalPoint((20, 20, 2))
    assert tuple(pp.check_seed_inside_body(crop, centre)) == (20, 20, 2)
    outside = arr.copy()
    outside[:, :, :12] = -1000 + (5 * rng.standard_normal((5, 40, 12))).astype(np.int16)   # air beside the body
    outside[:, :, 12:15] = 40                                                           # the chest wall
    ct = sitk.GetImageFromArray(outside)
    ct.CopyInformation(crop)
    with pytest.raises(InputError, match="outside the body"):
        pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint((5, 20, 2)))
    assert tuple(pp.check_seed_inside_body(ct, centre)) == (20, 20, 2)


def test_a_seed_in_the_air_beside_the_patient_of_a_whole_ct_is_outside_the_body():
    """Review: with the crop rule applied to whole CTs, a seed in the air beside the patient of pyradiomics' lung2
    (that air, with the table and blanket in it, has a median of -958 HU) was taken for aerated lung.  On a whole CT
    (field of view >= CROP_EXTENT_MM) any air reaching the border is outside the body, as before."""
    rng = np.random.default_rng(1)
    arr = (-950 + 40 * rng.standard_normal((3, 100, 100))).astype(np.int16)       # air, table / blanket mixed in
    yy, xx = np.mgrid[:100, :100]
    arr[:, (xx - 50) ** 2 + (yy - 50) ** 2 < 35 ** 2] = 40                            # the patient
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((3.0, 3.0, 5.0))                                                   # 300 mm: a whole CT
    assert not pp.is_crop(ct)
    with pytest.raises(InputError, match="outside the body"):
        pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint((5, 50, 1)))
    assert tuple(pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint((50, 50, 1)))) == (50, 50, 1)


def test_an_roi_wholly_in_the_air_beside_the_patient_is_outside_the_body():
    """QA: an ROI in the air beside the patient wrote an empty mask with confidence 0.00 (and a DynUNet hint); it is
    refused as a seed there is (the seed's outside-air rule on every voxel of the box); an ROI reaching into the body
    or lying in the lung is not."""
    rng = np.random.default_rng(1)
    arr = (-950 + 40 * rng.standard_normal((3, 100, 100))).astype(np.int16)       # air, table / blanket mixed in
    yy, xx = np.mgrid[:100, :100]
    arr[:, (xx - 50) ** 2 + (yy - 50) ** 2 < 35 ** 2] = 40                            # the patient
    arr[:, (xx - 50) ** 2 + (yy - 50) ** 2 < 20 ** 2] = -850                          # a lung
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((3.0, 3.0, 5.0))                                                   # 300 mm: a whole CT

    def roi(i0, j0, i1, j1):
        return (*ct.TransformIndexToPhysicalPoint((i0, j0, 0)), *ct.TransformIndexToPhysicalPoint((i1, j1, 2)))

    with pytest.raises(InputError, match="outside the body"):
        pp.check_roi_inside_body(ct, roi(2, 40, 8, 60))
    pp.check_roi_inside_body(ct, roi(2, 40, 20, 60))                                 # reaches the chest wall
    pp.check_roi_inside_body(ct, roi(45, 45, 55, 55))                                # in the lung
    pp.check_roi_inside_body(ct, (5000.0, 0, 0, 5010.0, 10, 10))                      # beside the image: box_from_physical's


def _ct_3mm(origin=(-250.0, -250.0, -400.1)):
    ct = sitk.Image((100, 100, 120), sitk.sitkInt16) + 40      # soft tissue: the seed is inside the body
    ct.SetSpacing((5.0, 5.0, 3.0))
    ct.SetOrigin(origin)
    return ct


def test_a_seed_a_micron_either_side_of_a_slice_centre_or_a_translated_ct_gives_the_same_box():
    """A box edge on a voxel centre (the seed on a slice centre of a 3 mm CT, the 60 mm box 20 slices: its z
    edges on slice centres too) is snapped to it (pp.snap_whole): a seed typed 0.002 mm off either way, or the CT
    and the seed translated together (float rounding of the index), gives the same box - not one a slice
    shifted (the tumour network then saw another crop: Dice 0.17 between the two results)."""
    ct = _ct_3mm()
    z = -400.1 + 3.0 * 90                                       # the centre of slice 90: -130.1
    boxes = {(b.lo, b.hi) for b in (pp.box_from_seed(ct, (1.3, -2.2, z + dz), 60.0) for dz in (-0.002, 0.0, 0.002))}
    assert len(boxes) == 1, boxes
    (lo, hi), = boxes
    for shift in (0.1, 123.456, -987.654321, 1e-7):
        moved = _ct_3mm(tuple(o + shift for o in ct.GetOrigin()))
        for dz in (-0.002, 0.0, 0.002):
            b = pp.box_from_seed(moved, (1.3 + shift, -2.2 + shift, z + dz + shift), 60.0)
            assert (b.lo, b.hi) == (lo, hi), (shift, dz)
        roi = (-20.0, -30.0, z - 30.0, 20.0, 30.0, z + 30.0)            # ROI mode: its z faces on slice centres
        b = pp.box_from_physical(moved, [v + shift for v in roi[:3]], [v + shift for v in roi[3:]], 0.0)
        assert (b.lo, b.hi) == (lo[:2] + (lo[2],), hi[:2] + (hi[2],)) or (b.lo[2], b.hi[2]) == (lo[2], hi[2]), shift
    # a seed half a millimetre off moves the box as before (only micron ties are snapped)
    assert pp.box_from_seed(ct, (1.3, -2.2, z + 0.5), 60.0).lo[2] == lo[2]
    assert pp.box_from_seed(ct, (1.3, -2.2, z - 0.5), 60.0).lo[2] == lo[2] - 1


def test_a_seed_box_on_a_tilted_copy_of_a_ct_is_the_same_box_in_index_space():
    """A seed's cube is built in index space round the seed (pp.box_from_seed): the same voxels stored with a
    15 degree gantry tilt (direction rotated about x, origin kept) and the seed at the same continuous index give
    the same box - not the index-space bounding box of the LPS-aligned cube, which grew by up to cos + sin of the
    tilt along y and z (on lung1: 61 x 74 x 85 mm for 61 x 62 x 70 mm, and another result).  On a CT whose axes
    follow LPS (identity, axes flipped / swapped) the box is the LPS-aligned cube's, as before."""
    ct = sitk.Image((80, 90, 40), sitk.sitkInt16) + 40          # soft tissue: the seed is inside the body
    ct.SetSpacing((0.7, 0.8, 2.5))
    ct.SetOrigin((-30.0, -40.0, -60.0))
    seed = (-2.13, -4.71, -11.3)
    t = np.deg2rad(15.0)
    tilted = sitk.Image(ct)
    tilted.SetDirection((1, 0, 0, 0, np.cos(t), -np.sin(t), 0, np.sin(t), np.cos(t)))
    tilted_seed = tilted.TransformContinuousIndexToPhysicalPoint(ct.TransformPhysicalPointToContinuousIndex(seed))
    for box_mm in (30.0, 40.0):
        b, bt = pp.box_from_seed(ct, seed, box_mm), pp.box_from_seed(tilted, tilted_seed, box_mm)
        assert (bt.lo, bt.hi) == (b.lo, b.hi), (box_mm, b, bt)
        size_mm = np.array(bt.size) * ct.GetSpacing()
        assert np.all(size_mm >= box_mm) and np.all(size_mm <= box_mm + 3 * np.array(ct.GetSpacing())), size_mm
    # identity and axis-permuted / flipped storage: the box of the LPS-aligned cube (box_from_physical), as before
    swapped = sitk.Image(ct)
    swapped.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, -1))
    for img in (ct, swapped):
        at = img.TransformContinuousIndexToPhysicalPoint((38.37, 44.1, 19.48))
        b = pp.box_from_seed(img, at, 40.0)
        ref = pp.box_from_physical(img, [v - 20.0 for v in at], [v + 20.0 for v in at], 0.0)
        assert (b.lo, b.hi) == (ref.lo, ref.hi)


def test_the_roi_mask_on_a_model_grid_does_not_shift_with_float_rounding():
    """infer.mask_for_roi maps the input-grid box onto the model grid with the same snapping: the same grid
    translated gives the same voxels."""
    from lungai.seg.infer import mask_for_roi

    ct = _ct_3mm()
    box = pp.Box((10, 20, 30), (40, 50, 70), "roi")
    ref = mask_for_roi(box, ct, ct)
    assert ref.sum() == 30 * 30 * 40          # the box's own voxels: lo .. hi - 1 (faces at lo - 0.5, hi - 0.5)
    inside = np.zeros_like(ref)
    inside[30:70, 20:50, 10:40] = True
    assert np.array_equal(ref, inside)        # not the voxel below lo (its centre at lo - 1 is outside the box)
    # on a finer model grid: exactly the voxels whose centres lie in the box (faces included), on both sides
    fine = sitk.Image((230, 210, 250), sitk.sitkInt16)
    fine.SetSpacing((2.0, 2.5, 1.3))
    fine.SetOrigin((-251.0, -252.5, -401.4))
    got = mask_for_roi(box, fine, ct)
    face_lo = np.array(ct.TransformContinuousIndexToPhysicalPoint([v - 0.5 for v in box.lo]))
    face_hi = np.array(ct.TransformContinuousIndexToPhysicalPoint([v - 0.5 for v in box.hi]))
    centres = [np.asarray(fine.GetOrigin())[k] + np.arange(fine.GetSize()[k]) * fine.GetSpacing()[k] for k in range(3)]
    ok = [(c >= face_lo[k] - 1e-6) & (c <= face_hi[k] + 1e-6) for k, c in enumerate(centres)]
    assert np.array_equal(got, ok[2][:, None, None] & ok[1][None, :, None] & ok[0][None, None, :])
    for shift in (0.1, 123.456, -987.654321):
        moved = _ct_3mm(tuple(o + shift for o in ct.GetOrigin()))
        assert np.array_equal(mask_for_roi(box, moved, moved), ref), shift


# LUNG1-003's GTV-1 (RTSTRUCT): its LPS box in Slicer's bounds order (xmin, xmax, ymin, ymax, zmin, zmax), as QA
# typed it, and the same box as two opposite corners (x0, y0, z0, x1, y1, z1), as --roi takes it
GTV1_BOUNDS = (18.4, 71.4, -41.1, 39.2, -157.9, -99.9)
GTV1_CORNERS = (18.4, -41.1, -157.9, 71.4, 39.2, -99.9)


@pytest.fixture(scope="module")
def lung1_003_ct(shared_data):
    from lungai.io import read_ct

    return read_ct(shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT")


@pytest.mark.shared_data
def test_an_roi_in_slicer_bounds_order_is_noted_with_its_numbers_as_corners(lung1_003_ct):
    """QA (LUNG1-003): GTV-1's box typed in Slicer's bounds order was read as corners - a 21 x 229 x 59 mm box, "no
    tumour found", confidence 0 - and nothing said the order.  When the numbers read as bounds give a compact box
    inside the CT and read as corners an elongated one (or one reaching outside the CT), a note names the order
    --roi takes and shows the numbers as corners; a box given as corners (the panel's too) gets no note."""
    ct = lung1_003_ct
    note = pp.roi_order_note(ct, GTV1_BOUNDS)
    assert note is not None and "xmin,xmax,ymin,ymax,zmin,zmax" in note and "x0,y0,z0,x1,y1,z1" in note
    assert "--roi=18.4,-41.1,-157.9,71.4,39.2,-99.9" in note and "21 x 229 x 59 mm" in note, note
    assert pp.roi_order_note(ct, GTV1_CORNERS) is None                       # the same box as corners
    assert pp.roi_order_note(ct, (71.4, 39.2, -157.9, 18.4, -41.1, -99.9)) is None   # the panel's order (x0 > x1)
    assert pp.roi_order_note(ct, (18.4, 71.4, -41.1, 39.2, -157.9, -150.0)) is None  # as bounds no box (z: 8 mm)
    # valid boxes of 20-120 mm round points of the CT, as the panel gives them (x0 > x1, y0 > y1) and min / max:
    # none is noted
    rng = np.random.default_rng(0)
    lo, hi = np.array([-200.0, -200.0, -290.0]), np.array([200.0, 200.0, 0.0])
    for _ in range(2000):
        c, half = rng.uniform(lo, hi), rng.uniform(10.0, 60.0, 3)
        a, b = c - half, c + half
        assert pp.roi_order_note(ct, (b[0], b[1], a[2], a[0], a[1], b[2])) is None, (a, b)
        assert pp.roi_order_note(ct, (*a, *b)) is None, (a, b)


@pytest.mark.shared_data
def test_an_roi_partly_outside_the_ct_is_noted_as_cut_to_the_image(lung1_003_ct):
    """QA (LUNG1-003): --roi=47.4,-2.5,-127.2,63,90,68 reaches 54 mm above the CT's top (z+) and was cut to the
    image without a word.  The note says which faces, how far and how much of the box was outside."""
    ct = lung1_003_ct
    note = pp.roi_outside_note(ct, (47.4, -2.5, -127.2, 63, 90, 68))
    assert note is not None and "z+: 54 mm beyond the image (past its top (superior) slice)" in note, note
    assert "28% of the box" in note and "cut to the image" in note, note
    assert pp.roi_outside_note(ct, GTV1_CORNERS) is None
    assert pp.roi_outside_note(ct, (-255.0, -2.5, -127.2, -200.0, 90, -100.0)) is not None      # x- 4 mm beyond
    assert pp.roi_outside_note(ct, (-251.0, -2.5, -127.2, -200.0, 90, -100.0)) is None          # under half a voxel


@pytest.mark.shared_data
def test_the_panels_roi_on_lung1_003_gets_no_order_or_outside_note(lung1_003_ct, mrml_scene):
    """The Slicer panel passes a markups ROI as corners (lungai.scene.nodes.roi_to_lps): GTV-1's box drawn there
    reads as before and gets neither note."""
    from lungai.scene import nodes

    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "GTV-1 box")
    x0, x1, y0, y1, z0, z1 = GTV1_BOUNDS                                       # LPS; the ROI is drawn in RAS
    roi.SetXYZ(-(x0 + x1) / 2, -(y0 + y1) / 2, (z0 + z1) / 2)
    roi.SetRadiusXYZ((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2)
    corners = nodes.roi_to_lps(roi)
    assert np.allclose(sorted(corners[::3]), [x0, x1]) and np.allclose(sorted(corners[2::3]), [z0, z1])
    assert pp.roi_order_note(lung1_003_ct, corners) is None and pp.roi_outside_note(lung1_003_ct, corners) is None


def _chest_cut_by_the_field_of_view():
    """A whole CT (300 mm field of view) whose reconstruction cuts through the patient's left side: the body and its
    left lung reach the image's x+ border; a ground-glass nodule (-600 HU) lies in that lung; air beside the patient on
    the right.  Returns (ct, the nodule's centre (x, y, z index), a voxel of the outside air)."""
    rng = np.random.default_rng(2)
    arr = (-1000 + 5 * rng.standard_normal((3, 100, 100))).astype(np.int16)     # air beside the patient
    yy, xx = np.mgrid[:100, :100]
    arr[:, (xx - 75) ** 2 + (yy - 50) ** 2 < 40 ** 2] = 40                          # the body, cut at x = 99
    lung = (xx - 85) ** 2 + (yy - 50) ** 2 < 22 ** 2                                # its left lung, cut there too
    arr[:, lung] = (-850 + 30 * rng.standard_normal((3, int(lung.sum())))).astype(np.int16)
    arr[:, (xx - 88) ** 2 + (yy - 50) ** 2 < 4 ** 2] = -600                         # a ground-glass nodule
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((3.0, 3.0, 5.0))
    return ct, (88, 50, 1), (10, 50, 1)


def test_a_seed_in_a_lung_the_field_of_view_cuts_is_not_outside_the_body():
    """QA: LUNG1-003 cropped to x index 160.. (the field of view cutting through the right lung, as a targeted
    reconstruction of one lung or a large patient's does) refused a seed at -597 HU in that lung (a ground-glass
    density) as 'outside the body' - the same point was segmented on the whole CT: air reaching the image border was
    all taken for the air around the patient.  Air reaching the border (or the scanner's padding) is outside the body
    only when less than half of it lies in the body's hull (the lungs' field-of-view rule,
    lungai.lungs.segment._body_air_open_fov); the air beside the patient still is."""
    ct, nodule, air = _chest_cut_by_the_field_of_view()
    assert not pp.is_crop(ct)
    assert tuple(pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint(nodule))) == nodule
    assert tuple(pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint((92, 40, 1)))) == (92, 40, 1)  # lung
    with pytest.raises(InputError, match="outside the body"):
        pp.check_seed_inside_body(ct, ct.TransformIndexToPhysicalPoint(air))
    lo, hi = ct.TransformIndexToPhysicalPoint((80, 45, 0)), ct.TransformIndexToPhysicalPoint((96, 55, 2))
    pp.check_roi_inside_body(ct, (*lo, *hi))                                        # an ROI in that lung
    lo, hi = ct.TransformIndexToPhysicalPoint((2, 40, 0)), ct.TransformIndexToPhysicalPoint((12, 60, 2))
    with pytest.raises(InputError, match="outside the body"):
        pp.check_roi_inside_body(ct, (*lo, *hi))


@pytest.mark.shared_data
def test_a_seed_in_lung1_003s_right_lung_cut_by_the_field_of_view_is_inside_the_body(lung1_003_ct):
    """QA (LUNG1-003, the DICOM CT cut at x index 160, through its right lung): a seed at -645 HU in that lung was
    refused as 'outside the body', the same point of the whole CT was segmented; seeds in the air beside the patient
    stay refused on both."""
    cut = lung1_003_ct[160:, :, :]
    seed = (-37.126, -36.149, -188.9)
    pp.check_seed_inside_body(lung1_003_ct, seed)
    pp.check_seed_inside_body(cut, seed)
    for ct in (lung1_003_ct, cut):
        for air in ((0.0, -240.0, -127.0), (240.0, -200.0, -127.0)):
            with pytest.raises(InputError, match="outside the body"):
                pp.check_seed_inside_body(ct, air)


def test_ras_seed_hint_does_not_send_a_soft_tissue_lps_seed_to_its_mirror():
    """QA on LUNG1-002 (default model): its GTV centre given correctly in LPS (-74.5,16.4,-18.7, tumour at 32 HU)
    kept a 4.7 ml region 31 mm away, and the note asked "the same point read as RAS (74.5,-16.4,-18.7) lies in soft
    tissue (147 HU): were Slicer's RAS coordinates given? lungai takes LPS (negate x and y)" - negating it puts the
    seed in the mediastinum, whose run asks the same question back.  When the seed itself lies in soft tissue too
    the HU cannot tell the readings apart: the hint says so and asks to negate only a seed copied from Slicer."""
    ct = _lung_with_tumour()                                          # tumour (40 HU) round LPS (15, 5, 0)
    arr = sitk.GetArrayFromImage(ct)
    zz, yy, xx = np.mgrid[:20, :60, :60]
    arr[((xx - 29.5 + 15) ** 2 + (yy - 29.5 + 5) ** 2 + (zz - 9.5) ** 2) < 6 ** 2] = 150   # soft tissue at the mirror
    both = sitk.GetImageFromArray(arr)
    both.CopyInformation(ct)
    for seed, own, mirror in (((15.0, 5.0, 0.0), "40", "150"), ((-15.0, -5.0, 0.0), "150", "40")):
        hint = pp.ras_seed_hint(both, seed)
        assert hint is not None
        assert f"the seed lies in soft tissue ({own} HU)" in hint, hint
        assert f"soft tissue ({mirror} HU)" in hint and "cannot tell" in hint, hint
        assert "only if the seed was copied from Slicer's RAS" in hint, hint
    # the seed in lung, its mirror in soft tissue: the plain question, as before
    hint = pp.ras_seed_hint(ct, (-15.0, -5.0, 0.0))
    assert hint == ("the same point read as RAS (15.0,5.0,0.0) lies in soft tissue (40 HU): were Slicer's RAS "
                    "coordinates given? lungai takes LPS (negate x and y)"), hint
    assert pp.ras_seed_hint(ct, (15.0, 5.0, 0.0)) is None           # its mirror in lung: no hint


@pytest.mark.shared_data
def test_ras_seed_hint_on_lung1_002_gtv_centre_names_both_readings(shared_data):
    """The real case: LUNG1-002's GTV centre in LPS (tumour, 32 HU) and the same numbers read as RAS (147 HU)."""
    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-002_ct.nii.gz"))
    hint = pp.ras_seed_hint(ct, (-74.47, 16.356, -18.735))
    assert hint.startswith("the seed lies in soft tissue (32 HU)") and "(74.5,-16.4,-18.7) lies in soft tissue (147 HU)" in hint, hint
    assert "only if the seed was copied from Slicer's RAS" in hint


def _patient_200mm():
    """A whole CT (200 x 200 mm in-plane at 1 mm, 10 slices of 5 mm, origin (-100, -100, 0) LPS): a patient of 80 mm
    radius (40 HU) round the origin in air (-1000 HU) - voxel indices (i, j, k) and LPS mm overlap on it."""
    rng = np.random.default_rng(2)
    arr = (-1000 + 5 * rng.standard_normal((10, 200, 200))).astype(np.int16)
    yy, xx = np.mgrid[:200, :200]
    arr[:, (xx - 100) ** 2 + (yy - 100) ** 2 < 80 ** 2] = 40
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 5.0))
    ct.SetOrigin((-100.0, -100.0, 0.0))
    assert not pp.is_crop(ct)
    return ct


def test_a_seed_given_as_voxel_indices_refused_as_outside_the_body_is_told_its_lps_reading():
    """QA on LUNG1-002: its tumour given as voxel indices, ``--seed-point=150,200,58``, lies in the CT's extent read as
    mm, in the air behind the patient: refused "outside the body" with "place the seed on the tumour" only (an index
    outside the CT's extent gets its LPS reading: outside_image_fix).  The refusal names the voxel reading in the
    body and the LPS numbers to give; numbers read so in the air too get no such hint."""
    ct = _patient_200mm()
    with pytest.raises(InputError, match="outside the body") as err:
        pp.check_seed_inside_body(ct, (90.0, 70.0, 4.0))          # mm: in the air; voxels (90, 70, 4): in the patient
    assert "the numbers look like voxel indices (i, j, k): in LPS mm that is --seed-point=-10,-30,20" in str(err.value)
    assert "read as Slicer's RAS" not in str(err.value)            # (-90, -70, 4): in the air too
    with pytest.raises(InputError, match="outside the body") as err:
        pp.check_seed_inside_body(ct, (90.5, 70.0, 4.0))          # not whole numbers: no voxel reading
    assert "voxel indices" not in str(err.value)
    with pytest.raises(InputError, match="outside the body") as err:
        pp.check_seed_inside_body(ct, (-10.0, 95.0, 4.0))         # voxels (-10, ...): off the grid
    assert "voxel indices" not in str(err.value)

    # a point copied from Slicer's RAS display whose LPS reading is in the air: the RAS reading in the body is named
    rng = np.random.default_rng(3)
    arr = (-1000 + 5 * rng.standard_normal((10, 200, 200))).astype(np.int16)
    yy, xx = np.mgrid[:200, :200]
    arr[:, (xx - 160) ** 2 + (yy - 150) ** 2 < 40 ** 2] = 40        # a patient round LPS (60, 50)
    off = sitk.GetImageFromArray(arr)
    off.CopyInformation(ct)
    with pytest.raises(InputError, match="outside the body") as err:
        pp.check_seed_inside_body(off, (-60.0, -50.0, 4.0))
    assert "read as Slicer's RAS they lie in the body: in LPS mm that is --seed-point=60,50,4" in str(err.value)
    assert "voxel indices" not in str(err.value)


def test_an_roi_given_as_voxel_indices_refused_as_outside_the_body_is_told_its_lps_reading():
    """QA on LUNG1-002: its GTV's box in voxel indices, ``--roi 129,226,28,228,324,53``, read as mm lies in the air
    behind the patient: refused with "draw the ROI round the tumour" only.  The refusal names the voxel reading."""
    ct = _patient_200mm()
    with pytest.raises(InputError, match="outside the body") as err:
        pp.check_roi_inside_body(ct, (85.0, 60.0, 2.0, 95.0, 80.0, 6.0))
    assert "the numbers look like voxel indices (i, j, k): in LPS mm that is --roi=-15,-40,10,-5,-20,30" in str(err.value)
    assert "read as Slicer's RAS" not in str(err.value)


def test_voxel_index_hint_names_the_lps_point_of_whole_numbers_on_the_grid_in_the_body():
    """A seed in the body whose numbers read as voxel indices lie in the body too (soft tissue, more than 10 mm away)
    gets the hint with that reading's LPS numbers; not when they are not whole, off the grid, or read so in the
    air."""
    ct = _patient_200mm()
    hint = pp.voxel_index_hint(ct, (50.0, 50.0, 4.0))
    assert hint == ("the seed's numbers are whole and lie on the CT's voxel grid: if they are voxel indices (i, j, k), "
                    "as some viewers show them, the point in LPS mm is --seed-point=-50,-50,20 (40 HU there); lungai "
                    "takes LPS millimetres"), hint
    assert pp.voxel_index_hint(ct, (50.0, 50.5, 4.0)) is None      # not whole numbers
    assert pp.voxel_index_hint(ct, (50.0, 50.0, 12.0)) is None     # k beyond the 10 slices
    assert pp.voxel_index_hint(ct, (5.0, 5.0, 4.0)) is None        # voxels (5, 5, 4): in the air
    assert pp.voxel_index_hint(ct, None) is None


def test_roi_voxel_index_hint_names_the_lps_box_of_whole_numbers_on_the_grid():
    """An ROI's numbers read as voxel indices: named when the box is centred in lung / air (read as mm) and the voxel
    box in soft tissue, or when the box reaches outside the CT (QA on LUNG1-003 with its origin at 0: a voxel-index box
    cut to the image got "it was cut to the image" only) and the voxel box lies in the body; not otherwise."""
    rng = np.random.default_rng(4)
    arr = (-1000 + 5 * rng.standard_normal((10, 200, 200))).astype(np.int16)
    yy, xx = np.mgrid[:200, :200]
    arr[:, (xx - 100) ** 2 + (yy - 100) ** 2 < 95 ** 2] = 40             # a patient round LPS (0, 0)
    arr[:, 120:161, 120:161] = -850                                       # lung at LPS x, y 20 .. 60
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 5.0))
    ct.SetOrigin((-100.0, -100.0, 0.0))
    hint = pp.roi_voxel_index_hint(ct, (25.0, 25.0, 2.0, 55.0, 55.0, 6.0))
    assert hint == ("the box's centre lies in lung / air (-850 HU) and the ROI's numbers are whole and lie on the CT's "
                    "voxel grid: if they are voxel indices (i, j, k), as some viewers show them, the box in LPS mm is "
                    "--roi=-75,-75,10,-45,-45,30 (its centre 40 HU); lungai takes LPS millimetres"), hint
    assert pp.roi_voxel_index_hint(ct, (25.0, 25.0, 2.0, 55.0, 55.5, 6.0)) is None     # not whole numbers
    assert pp.roi_voxel_index_hint(ct, (0.0, 0.0, 2.0, 15.0, 15.0, 6.0)) is None       # its centre in soft tissue
    assert pp.roi_voxel_index_hint(ct, None) is None
    # partly outside the CT (x 70 .. 110 mm; the image ends at 99.5), centred in the patient: the voxel box lies in
    # the body too
    roi = (70.0, 0.0, 2.0, 110.0, 20.0, 6.0)
    assert pp.roi_outside_note(ct, roi)
    assert pp.roi_voxel_index_hint(ct, roi) is None                      # its centre (soft tissue) says nothing
    hint = pp.roi_voxel_index_hint(ct, roi, outside=True)
    assert hint.startswith("the box reaches outside the CT and the ROI's numbers are whole") and \
        "--roi=-30,-100,10,10,-80,30 (its centre 40 HU)" in hint, hint
    assert pp.roi_voxel_index_hint(ct, (70.0, 0.0, 2.0, 110.5, 20.0, 6.0), outside=True) is None
    # read as voxel indices in the air beside the patient: no hint
    assert pp.roi_voxel_index_hint(ct, (0.0, 0.0, 2.0, 8.0, 8.0, 6.0), outside=True) is None


def test_a_seed_in_bone_is_noted_as_bone_not_soft_tissue():
    """QA on LUNG1-003: a seed in the vertebral body (522 HU) was told "the seed lies in soft tissue (522 HU)" and
    nothing said it lay in bone.  Now a seed above DENSE_HU (real GTV voxels measured at -88..149 HU) gets a note
    naming bone / calcification / contrast and the move; the tumour (40 HU) and lung do not."""
    ct = _lung_with_tumour()                                          # tumour (40 HU) round LPS (15, 5, 0)
    arr = sitk.GetArrayFromImage(ct)
    zz, yy, xx = np.mgrid[:20, :60, :60]
    arr[((xx - 29.5 + 15) ** 2 + (yy - 29.5 + 5) ** 2 + (zz - 9.5) ** 2) < 6 ** 2] = 522      # bone at the mirror
    bone = sitk.GetImageFromArray(arr)
    bone.CopyInformation(ct)
    note = pp.dense_seed_note(bone, (-15.0, -5.0, 0.0))
    assert note is not None and "bone, a calcification or contrast (522 HU" in note and "move the seed" in note, note
    assert pp.dense_seed_note(bone, (15.0, 5.0, 0.0)) is None                      # on the tumour
    assert pp.dense_seed_note(bone, (-15.0, 15.0, 0.0)) is None                    # in lung: the aerated note's
    assert pp.dense_seed_note(bone, None) is None
    # the RAS hint of a seed in bone: not "the seed lies in soft tissue (522 HU)"; its mirror on the tumour is asked
    hint = pp.ras_seed_hint(bone, (-15.0, -5.0, 0.0))
    assert hint == ("the same point read as RAS (15.0,5.0,0.0) lies in soft tissue (40 HU): were Slicer's RAS "
                    "coordinates given? lungai takes LPS (negate x and y)"), hint
    assert pp.ras_seed_hint(bone, (15.0, 5.0, 0.0)) is None          # the mirror in bone is no soft tissue


def _chest_with_abdomen(small_phantom, extra=20):
    """``small_phantom``'s CT (lungs from slice 4) with ``extra`` slices of soft tissue (40 HU, the lowest slice's
    body) added below it: an abdomen, 5 mm slices."""
    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(ct)
    low = np.where(arr[0] > -500, 40, arr[0]).astype(arr.dtype)
    out = sitk.GetImageFromArray(np.concatenate([np.repeat(low[None], extra, 0), arr]))
    out.SetSpacing(ct.GetSpacing())
    out.SetDirection(ct.GetDirection())
    origin = np.array(ct.GetOrigin()) - extra * ct.GetSpacing()[2] * np.array(ct.GetDirection()).reshape(3, 3)[:, 2]
    out.SetOrigin(tuple(origin))
    return out


def test_a_seed_far_from_the_lungs_is_noted_and_one_on_the_tumour_or_the_mediastinum_is_not(small_phantom):
    """QA on LUNG1-003 / LUNG1-002: a seed in the arm (136 mm from the lungs) or in the back muscles below the lungs
    (107 mm) got no word that it lay off the chest.  Real GTV voxels lie up to 56 mm from the lungs (a node above the
    apex), the heart's centre 56-64 mm: a seed more than FAR_FROM_LUNGS_MM away is noted, those are not."""
    from lungai.synthetic import labels

    ct = _chest_with_abdomen(small_phantom)
    lab = sitk.GetArrayViewFromImage(small_phantom.labels)
    # in the abdomen: the middle of the added slices' body, 20 + 10 slices of 5 mm below the lungs' lowest slice
    below = ct.TransformIndexToPhysicalPoint((48, 48, 10))
    mm = pp.seed_to_lungs_mm(ct, below)
    assert mm > pp.FAR_FROM_LUNGS_MM, mm
    note = pp.far_seed_note(ct, below)
    assert note is not None and note.startswith(f"the seed lies {mm:.0f} mm from the nearest lung") and \
        "move the seed onto the tumour" in note, note
    centre = small_phantom.meta["tumour"]["centre_mm"]
    assert pp.far_seed_note(ct, centre) is None
    med = np.argwhere(lab == labels.MEDIASTINUM)
    k, j, i = med[len(med) // 2]
    assert pp.far_seed_note(ct, small_phantom.ct.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))) is None
    assert pp.far_seed_note(ct, None) is None
    # a crop holds no whole lungs: no note however far its lungs
    crop = ct[30:66, 30:66, 0:20]                   # 126 x 126 x 100 mm round the abdomen seed
    assert pp.is_crop(crop) and pp.far_seed_note(crop, below) is None


@pytest.mark.shared_data
def test_real_gtvs_get_no_bone_or_far_note_and_off_chest_seeds_do(shared_data):
    """The rules' thresholds on the real stage III CT LUNG1-003: the voxel of its GTVs / nodes farthest from the
    contoured lungs (gtv-2, a node above the lung apex, 55 mm) and its mediastinal node's centre get no note, nor
    its densest GTV voxel; a seed in the vertebral body (522 HU), in the arm (145 mm) does."""
    from scipy import ndimage

    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / "LUNG1-003_ct.nii.gz"))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "LUNG1-003_labels.nii.gz")))
    gtv = (lab == 1) | (lab == 2)
    to_lungs = ndimage.distance_transform_edt(lab < 3, sampling=ct.GetSpacing()[::-1])
    far = np.unravel_index(np.argmax(np.where(gtv, to_lungs, -1)), lab.shape)
    far_lps = ct.TransformIndexToPhysicalPoint([int(v) for v in far[::-1]])
    assert to_lungs[far] > 50 and pp.far_seed_note(ct, far_lps) is None
    node = (-14.7, -39.1, -155.9)                                   # a mediastinal node's centre
    assert pp.far_seed_note(ct, node) is None and pp.dense_seed_note(ct, node) is None
    arr = sitk.GetArrayViewFromImage(ct)
    dense = np.unravel_index(np.argmax(np.where(ndimage.binary_erosion(gtv, iterations=2), arr, -2000)), lab.shape)
    assert pp.dense_seed_note(ct, ct.TransformIndexToPhysicalPoint([int(v) for v in dense[::-1]])) is None
    assert "(522 HU" in pp.dense_seed_note(ct, (-1.0, 18.6, -191.9))
    assert pp.far_seed_note(ct, (-234.5, 66.4, -305.9)).startswith("the seed lies 145 mm from the nearest lung")


def test_an_roi_box_mostly_in_bone_or_far_from_the_lungs_is_noted_as_a_seed_is(small_phantom):
    """QA: the bone / far-from-the-lungs rules applied to a seed only; an ROI box drawn on the spine or below the
    lungs got no word.  The same helpers read a box by its central third (mostly bone: median above DENSE_HU) and
    by its centre (more than FAR_FROM_LUNGS_MM from the lungs); a box round the tumour gets neither."""
    ct = _lung_with_tumour()
    arr = sitk.GetArrayFromImage(ct)
    zz, yy, xx = np.mgrid[:20, :60, :60]
    arr[((xx - 29.5 + 15) ** 2 + (yy - 29.5 + 5) ** 2 + (zz - 9.5) ** 2) < 6 ** 2] = 522      # bone at (-15, -5, 0)
    bone = sitk.GetImageFromArray(arr)
    bone.CopyInformation(ct)
    note = pp.dense_seed_note(bone, roi_lps=(-21.0, -11.0, -6.0, -9.0, 1.0, 6.0))        # a 12 mm box on the bone
    assert note is not None and note.startswith("the ROI box lies mostly in bone, a calcification or contrast (522 "
                                                "HU at the box's central third") and "draw the box round" in note, note
    assert pp.dense_seed_note(bone, roi_lps=(5.0, -5.0, -8.0, 25.0, 15.0, 8.0)) is None   # round the tumour
    assert pp.dense_seed_note(bone, roi_lps=(-29.0, -29.0, -9.0, 29.0, 29.0, 9.0)) is None  # the bone a small part
    # far: a box in the abdomen below the phantom's lungs, and one round its tumour
    far_ct = _chest_with_abdomen(small_phantom)
    below = np.array(far_ct.TransformIndexToPhysicalPoint((48, 48, 10)))
    roi = tuple(below - 20) + tuple(below + 20)
    mm = pp.seed_to_lungs_mm(far_ct, below)
    note = pp.far_seed_note(far_ct, roi_lps=roi)
    assert note is not None and note.startswith(f"the ROI box's centre lies {mm:.0f} mm from the nearest lung"), note
    centre = np.array(small_phantom.meta["tumour"]["centre_mm"], float)
    assert pp.far_seed_note(far_ct, roi_lps=tuple(centre - 15) + tuple(centre + 15)) is None
    assert pp.far_seed_note(far_ct) is None and pp.dense_seed_note(far_ct) is None
    # the seed's own notes stay the seed's
    assert pp.far_seed_note(far_ct, tuple(below)).startswith("the seed lies ")


@pytest.mark.shared_data
def test_real_gtv_boxes_get_no_bone_or_far_note_and_spine_or_arm_boxes_do(shared_data):
    """Boxes round the real GTVs / nodes (LUNG1-002, LUNG1-003, lung1, lung2) with a 0 and a 20 mm margin: their
    central thirds lie at -790..81 HU, their centres 2-41 mm from the lungs - no note.  A 20 mm box on LUNG1-003's
    vertebral body (449 HU) and a 60 mm box in its arm (145 mm from the lungs) are noted."""
    from scipy import ndimage

    cases = [(shared_data / "nsclc_whole_ct" / "nifti" / f"LUNG1-00{n}_ct.nii.gz",
              shared_data / "nsclc_whole_ct" / "nifti" / f"LUNG1-00{n}_labels.nii.gz", (1, 2)) for n in (2, 3)]
    cases += [(shared_data / "pyradiomics_lung" / f"lung{n}_image.nrrd",
               shared_data / "pyradiomics_lung" / f"lung{n}_label.nrrd", (1,)) for n in (1, 2)]
    n_boxes = 0
    for ct_path, lab_path, values in cases:
        ct = sitk.ReadImage(str(ct_path))
        lab = np.isin(sitk.GetArrayFromImage(sitk.ReadImage(str(lab_path))), values)
        comps, _ = ndimage.label(lab)
        for sl in ndimage.find_objects(comps):
            ends = [np.array(ct.TransformIndexToPhysicalPoint([int(s.start) for s in sl[::-1]])),
                    np.array(ct.TransformIndexToPhysicalPoint([int(s.stop) - 1 for s in sl[::-1]]))]
            lo, hi = np.minimum(*ends), np.maximum(*ends)
            if np.prod(hi - lo) < 500:          # specks of a contour, no GTV
                continue
            for margin in (0.0, 20.0):
                roi = tuple(lo - margin) + tuple(hi + margin)
                assert pp.dense_seed_note(ct, roi_lps=roi) is None, (ct_path.name, roi)
                assert pp.far_seed_note(ct, roi_lps=roi) is None, (ct_path.name, roi)
                n_boxes += 1
    assert n_boxes >= 12
    ct = sitk.ReadImage(str(cases[1][0]))
    spine, arm = np.array((-1.0, 18.6, -191.9)), np.array((-234.5, 66.4, -305.9))
    assert "(449 HU at the box's central third" in pp.dense_seed_note(ct, roi_lps=tuple(spine - 10) + tuple(spine + 10))
    assert pp.far_seed_note(ct, roi_lps=tuple(arm - 30) + tuple(arm + 30)).startswith(
        "the ROI box's centre lies 145 mm from the nearest lung")


def _bone_patient():
    """:func:`_patient_200mm` with a block of bone (600 HU) at LPS x, y -10 .. 9 on every slice."""
    ct = _patient_200mm()
    arr = sitk.GetArrayFromImage(ct)
    arr[:, 90:110, 90:110] = 600
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(ct)
    return out


def _lung_patient():
    """:func:`_patient_200mm` with a patient of 95 mm radius and lung (-850 HU) at LPS x, y 20 .. 60 (the CT of the
    ROI voxel-index test)."""
    ct = _patient_200mm()
    arr = sitk.GetArrayFromImage(ct)
    yy, xx = np.mgrid[:200, :200]
    arr[:, (xx - 100) ** 2 + (yy - 100) ** 2 < 95 ** 2] = 40
    arr[:, 120:161, 120:161] = -850
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(ct)
    return out


def _error(check, *args) -> str:
    with pytest.raises(InputError) as err:
        check(*args)
    return str(err.value)


def _far_box(ct):
    x, y, z = ct.TransformIndexToPhysicalPoint((48, 48, 10))
    return (x - 15, y - 15, z - 15, x + 15, y + 15, z + 15)


# every note (and refusal) of where the seed point / ROI box lies, in the mode it is given for: (mode, what it must
# name, its text)
LOCATION_NOTES = {
    "aerated, seed": ("seed", "move the seed onto the tumour",
                      lambda ph: pp.aerated_seed_note(_lung_with_tumour(ggo=True), (-15.0, 10.0, 0.0))),
    "aerated RAS, seed": ("seed", "the seed lies in aerated lung",
                          lambda ph: pp.aerated_seed_note(_lung_with_tumour(), (-15.0, -5.0, 0.0))),
    "aerated RAS, roi": ("roi", "the ROI's centre lies in aerated lung",
                         lambda ph: pp.aerated_seed_note(_lung_with_tumour(),
                                                         roi_lps=(-9.0, 0.0, -5.0, -21.0, -10.0, 5.0))),
    "bone, seed": ("seed", "move the seed onto the tumour", lambda ph: pp.dense_seed_note(_bone_patient(), (0, 0, 20))),
    "bone, roi": ("roi", "draw the box round the tumour",
                  lambda ph: pp.dense_seed_note(_bone_patient(), roi_lps=(-9, -9, 10, 9, 9, 30))),
    "far, seed": ("seed", "move the seed onto the tumour",
                  lambda ph: pp.far_seed_note(_chest_with_abdomen(ph),
                                              _chest_with_abdomen(ph).TransformIndexToPhysicalPoint((48, 48, 10)))),
    "far, roi": ("roi", "draw the box round the tumour",
                 lambda ph: pp.far_seed_note(_chest_with_abdomen(ph), roi_lps=_far_box(_chest_with_abdomen(ph)))),
    "voxel indices, seed": ("seed", "--seed-point=", lambda ph: pp.voxel_index_hint(_patient_200mm(), (50, 50, 4))),
    "voxel indices, roi": ("roi", "--roi=",
                           lambda ph: pp.roi_voxel_index_hint(_lung_patient(), (25, 25, 2, 55, 55, 6))),
    "RAS, seed": ("seed", "read as RAS", lambda ph: pp.ras_seed_hint(_lung_with_tumour(), (-15.0, -5.0, 0.0))),
    "bounds order, roi": ("roi", "--roi=", lambda ph: pp.roi_order_note(_patient_200mm(), (-20, 20, -30, 30, 10, 40))),
    "outside the CT, roi": ("roi", "the ROI reaches outside the CT",
                            lambda ph: pp.roi_outside_note(_lung_patient(), (70, 0, 2, 110, 20, 6))),
    "outside the body, seed": ("seed", "place the seed on the tumour",
                               lambda ph: _error(pp.check_seed_inside_body, _patient_200mm(), (-95.0, -95.0, 20.0))),
    "outside the body, roi": ("roi", "draw the ROI round the tumour",
                              lambda ph: _error(pp.check_roi_inside_body, _patient_200mm(), (-99, -99, 5, -90, -90, 30))),
}


@pytest.mark.parametrize("name", list(LOCATION_NOTES))
def test_every_location_note_names_the_seed_or_the_roi_box_given_not_both(small_phantom, name):
    """QA aeratednote64: lung2 with ``--seed-point=52.6,-125.9,-256.5`` (aerated lung, -860 HU) got "the seed lies in
    aerated lung (-860 HU), not on a tumour: check the seed / ROI (LPS mm)" - a box the user never drew - while its
    review reason and action named the seed.  Every note of where the seed point / ROI box lies (aerated lung, bone,
    far from the lungs, voxel indices, Slicer's RAS, bounds order, outside the CT / body), in each mode it is given
    for, names only the one given and what to do with it."""
    mode, says, make = LOCATION_NOTES[name]
    note = make(small_phantom)
    assert note, name
    assert "seed / ROI" not in note and "seed point / ROI" not in note and "seed / box" not in note, note
    assert ("ROI" not in note and "box" not in note) if mode == "seed" else "seed" not in note, note
    assert says in note, note
