"""A seed point / ROI outside the CT: the error's fix names the CT's extent and, when the numbers read as voxel
indices or as Slicer's RAS lie in the CT, that reading and the LPS numbers to give (QA segout59: lung1's tumour
given as its voxel index, --seed-point=218,359,33, was "outside the image" with the fix "Slicer shows RAS: negate
x and y" - negated it lies outside too; the ROI's error did not say where the CT is either)."""
import pytest


def _ct():
    import numpy as np
    import SimpleITK as sitk

    # lung1's grid, smaller: LPS x -146..-109.5, y -325..-288.5, z -777.5..-682.5 (no voxel index lies inside)
    ct = sitk.GetImageFromArray(np.full((20, 64, 64), 40, np.int16))
    ct.SetSpacing((0.5703125, 0.5703125, 5.0))
    ct.SetOrigin((-146.0, -325.0, -777.5))
    return ct


def test_a_seed_given_as_a_voxel_index_is_told_so_with_its_lps_point():
    from lungai.errors import InputError
    from lungai.seg.preprocess import check_seed_inside_body

    ct = _ct()
    with pytest.raises(InputError) as err:
        check_seed_inside_body(ct, (30, 40, 12))
    fix = err.value.fix
    assert "voxel ind" in fix and "--seed-point=-128.89,-302.19,-717.5" in fix     # voxel (30, 40, 12)'s centre
    assert "x -146.0 .. -110.1" in fix and "z -777.5 .. -682.5" in fix             # the CT's extent, LPS mm
    assert "read as Slicer's RAS" not in fix                # read as RAS it lies outside too: not offered


def test_a_seed_given_in_ras_is_told_so_with_its_lps_point():
    from lungai.errors import InputError
    from lungai.seg.preprocess import check_seed_inside_body

    with pytest.raises(InputError) as err:
        check_seed_inside_body(_ct(), (130.0, 300.0, -700.0))
    assert "RAS" in err.value.fix and "--seed-point=-130,-300,-700" in err.value.fix
    assert "voxel ind" not in err.value.fix


def test_an_roi_outside_the_ct_names_its_extent_and_the_voxel_reading():
    from seg_helpers import tiny_config

    from lungai.errors import InputError
    from lungai.seg.infer import choose_box

    with pytest.raises(InputError) as err:
        choose_box(_ct(), tiny_config(), roi_lps=(20, 30, 5, 40, 50, 15))
    fix = err.value.fix
    assert "voxel ind" in fix and "--roi=-134.59,-307.89,-752.5,-123.19,-296.48,-702.5" in fix
    assert "y -325.0 .. -289.1" in fix
