"""pyradiomics' ``normalize`` in a parameter file: the image is normalised with the mean and standard deviation of the
whole CT (pyradiomics' ``normalizeImage``), never of the crop lungai computes a segment on."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from lungai.radiomics import extract, load_params
from lungai.synthetic import labels as L

NORMALISE = {"normalize": True, "normalizeScale": 100, "removeOutliers": 3, "binWidth": 5}


def _params(tmp_path, setting: dict, classes=("shape", "firstorder", "glcm", "glszm")) -> str:
    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {**setting, "label": 1},
                                   "featureClass": {c: [] for c in classes}}), encoding="utf-8")
    return str(yml)


def _pyradiomics(yml: str, ct: sitk.Image, mask: sitk.Image) -> dict:
    from radiomics import featureextractor

    ref = featureextractor.RadiomicsFeatureExtractor(yml).execute(ct, mask)
    return {k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")}


def _values(result) -> dict:
    return {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in result.features.itertuples()}


def _assert_pyradiomics_values(yml: str, ct: sitk.Image, mask: sitk.Image) -> None:
    ref = _pyradiomics(yml, ct, mask)
    got = _values(extract(ct, {"tumour": mask}, load_params(yml), case="c"))
    assert set(got) == set(ref) and len(ref) > 50
    wrong = [k for k, v in ref.items() if got[k] != pytest.approx(v, rel=1e-6, abs=1e-9, nan_ok=True)]
    assert not wrong, f"{len(wrong)} of {len(ref)} values differ from pyradiomics on the whole CT, e.g. " + \
        ", ".join(f"{k}: {got[k]:.6g} vs {ref[k]:.6g}" for k in wrong[:4])


@pytest.mark.parametrize("resampled", [False, True])
def test_normalize_gives_pyradiomics_values_on_the_whole_ct(small_phantom, tmp_path, resampled):
    """QA: the tumour was cropped (box + 5 voxels) before pyradiomics normalised it, so the mean and standard deviation
    were the crop's, not the CT's: 40 of 42 values of pyradiomics' lung2 off (GLCM JointEnergy 0.62 vs 0.32, Minimum
    -135 vs -87), exit 0."""
    setting = {**NORMALISE, **({"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear"} if resampled else {})}
    _assert_pyradiomics_values(_params(tmp_path, setting), small_phantom.ct,
                               sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8))


def test_normalized_lungs_use_the_whole_ct_statistics(phantom_segments, small_phantom, tmp_path):
    """Lung segments on lungai's 2 mm lung grid: their HU values normalised with the whole CT's mean and standard
    deviation (as pyradiomics normalises the whole image), whatever the crop: Mean is the HU Mean's affine image."""
    ct = small_phantom.ct
    lungs = {n: phantom_segments[n] for n in ("right_lung", "lungs")}
    scale = 100.0
    stats = sitk.StatisticsImageFilter()
    stats.Execute(ct)
    rows = extract(ct, lungs, {**load_params(_params(tmp_path, {"normalize": True, "normalizeScale": scale,
                                                                "binWidth": 5}, ("firstorder",))),
                               "lungai": {"lung_spacing_mm": 2.0}}).features
    base = extract(ct, lungs, {**load_params(_params(tmp_path, {"binWidth": 25}, ("firstorder",))),
                               "lungai": {"lung_spacing_mm": 2.0}}).features
    for seg in lungs:
        def value(table, feature):
            return float(table[(table.segment == seg) & (table.feature == feature)].value.iloc[0])
        expected = (value(base, "Mean") - stats.GetMean()) / stats.GetSigma() * scale
        assert value(rows, "Mean") == pytest.approx(expected, rel=1e-6), seg
        assert value(rows, "Minimum") == pytest.approx(
            (value(base, "Minimum") - stats.GetMean()) / stats.GetSigma() * scale, rel=1e-6), seg


@pytest.mark.shared_data
def test_normalize_on_pyradiomics_lung2_gives_pyradiomics_values(shared_data, tmp_path):
    d = shared_data / "pyradiomics_lung"
    ct, mask = sitk.ReadImage(str(d / "lung2_image.nrrd")), sitk.ReadImage(str(d / "lung2_label.nrrd"))
    _assert_pyradiomics_values(_params(tmp_path, {"normalize": True, "normalizeScale": 100, "binWidth": 25}), ct, mask)
    assert np.count_nonzero(sitk.GetArrayViewFromImage(mask))


# pyradiomics' Square / SquareRoot / Logarithm / Exponential images scale by the largest |value| of the image they get
WHOLE_IMAGE_TYPES = {"Square": {}, "SquareRoot": {}, "Logarithm": {}, "Exponential": {}, "Original": {}}


def test_square_root_logarithm_exponential_images_give_pyradiomics_values_on_the_whole_ct(small_phantom, tmp_path):
    """QA: these filters scale by the largest |value| of the image pyradiomics gets, which was the crop lungai gives
    it (the tumour's box + 5 voxels), not the CT: 63 of 90 values of pyradiomics' lung2 off (square Energy 2.3e7 vs
    9.3e6, exponential Maximum 7.0 vs 3.7), exit 0."""
    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "label": 1}, "imageType": WHOLE_IMAGE_TYPES,
                                   "featureClass": {"firstorder": [], "glcm": []}}), encoding="utf-8")
    _assert_pyradiomics_values(str(yml), small_phantom.ct, sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8))


def test_square_images_of_lungs_on_the_lung_grid_are_those_of_the_whole_resampled_ct(phantom_segments, small_phantom,
                                                                                      tmp_path):
    """Lung segments on lungai's lung grid: the filters scale by the whole CT's resampled grid (as pyradiomics would on
    that CT), whatever box the lungs span: right lung alone and beside the left lung give the same values."""
    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "label": 1}, "imageType": WHOLE_IMAGE_TYPES,
                                   "featureClass": {"firstorder": []}}), encoding="utf-8")
    params = {**load_params(str(yml)), "lungai": {"lung_spacing_mm": 3.0}}
    arr = sitk.GetArrayFromImage(small_phantom.ct)
    arr[0, 0, 0] = 3000                 # metal far from the lungs: the largest |value| of the CT, outside their box
    ct = sitk.GetImageFromArray(arr)
    ct.CopyInformation(small_phantom.ct)
    alone = _values(extract(ct, {"right_lung": phantom_segments["right_lung"]}, params))
    both = extract(ct, {n: phantom_segments[n] for n in ("right_lung", "left_lung")}, params).features
    both = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in both.itertuples()
            if r.segment == "right_lung"}
    assert alone == pytest.approx(both, rel=1e-9)
    # and the ones pyradiomics gives on the whole CT resampled onto that grid
    from lungai.radiomics.ibsi.preprocess import centre_aligned_grid, grid_image, resample_image, resample_mask
    ref = grid_image(*centre_aligned_grid(ct, (3.0,) * 3), ct.GetDirection())
    expected = _pyradiomics(str(yml), resample_image(ct, ref), resample_mask(phantom_segments["right_lung"], ref))
    assert {k: alone[k] for k in expected} == pytest.approx(expected, rel=1e-6)


@pytest.mark.shared_data
def test_square_images_on_pyradiomics_lung2_give_pyradiomics_values(shared_data, tmp_path):
    d = shared_data / "pyradiomics_lung"
    yml = tmp_path / "p.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "label": 1}, "imageType": WHOLE_IMAGE_TYPES,
                                   "featureClass": {"firstorder": []}}), encoding="utf-8")
    _assert_pyradiomics_values(str(yml), sitk.ReadImage(str(d / "lung2_image.nrrd")),
                               sitk.ReadImage(str(d / "lung2_label.nrrd")))


def _wavelet_params(tmp_path, wavelet: dict) -> str:
    yml = tmp_path / "w.yaml"
    yml.write_text(yaml.safe_dump({"setting": {"binWidth": 25, "label": 1}, "imageType": {"Wavelet": wavelet},
                                   "featureClass": {"firstorder": [], "glcm": []}}), encoding="utf-8")
    return str(yml)


def test_wavelet_of_a_tumour_on_the_image_edge_gives_pyradiomics_values_on_the_whole_ct(small_phantom, tmp_path):
    """pyradiomics' stationary wavelet transform is periodic (it wraps round the image): for a tumour on an image face
    the crop wrapped round the crop's other face (the tumour's own box), not the CT's. QA: LUNG1-002's GTV cut at
    x- / z-, 125 of 162 first-order values of the Wavelet images different from pyradiomics on the whole CT, up to
    59 %."""
    tumour = sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8)
    x = np.flatnonzero(sitk.GetArrayViewFromImage(tumour).any(axis=(0, 1)))
    lo = int(x[len(x) // 2])                        # cut through the tumour: it lies on the x- face
    ct, mask = small_phantom.ct[lo:, :, :], tumour[lo:, :, :]
    _assert_pyradiomics_values(_wavelet_params(tmp_path, {}), ct, mask)


def test_wavelet_levels_beyond_the_first_get_their_margin(small_phantom, tmp_path):
    """Each level of pyradiomics' wavelet filters the previous level's approximation again (its reach grows with the
    level): 8 voxels kept for level 1 alone left level 2 values of pyradiomics' lung2 up to 5e-5 off."""
    _assert_pyradiomics_values(_wavelet_params(tmp_path, {"level": 2, "start_level": 1}), small_phantom.ct,
                               sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8))


def test_wavelet_of_a_lung_cut_by_the_image_edge_gives_pyradiomics_values_on_the_whole_lung_grid(phantom_segments,
                                                                                            small_phantom, tmp_path):
    """A lung on lungai's lung grid cut by the image's face (a reconstruction that cuts the lung in-plane): the
    wavelet wraps round the whole grid's faces, as pyradiomics on the whole CT resampled onto that grid."""
    from lungai.radiomics.ibsi.preprocess import centre_aligned_grid, grid_image, resample_image, resample_mask

    lung = phantom_segments["right_lung"]
    x = np.flatnonzero(sitk.GetArrayViewFromImage(lung).any(axis=(0, 1)))
    lo = int(x[len(x) // 2])
    ct, lung = small_phantom.ct[lo:, :, :], lung[lo:, :, :]
    yml = _wavelet_params(tmp_path, {})
    got = _values(extract(ct, {"right_lung": lung}, {**load_params(yml), "lungai": {"lung_spacing_mm": 3.0}}))
    ref = grid_image(*centre_aligned_grid(ct, (3.0,) * 3), ct.GetDirection())
    expected = _pyradiomics(yml, resample_image(ct, ref), resample_mask(lung, ref))
    assert {k: got[k] for k in expected} == pytest.approx(expected, rel=1e-6)
