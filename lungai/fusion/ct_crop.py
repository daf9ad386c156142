"""Tumour-centred CT crops for the 3D CNN, and simple image features for the baseline.

The crop is a cube of ``size_mm`` around the tumour-mask centroid, resampled to ``voxels``^3
(linear for CT, linear on the mask for partial-volume fractions).  Its SimpleITK reference grid is
kept so that a Grad-CAM map in crop space can be resampled back onto the input CT grid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError

CROP_MM = 72.0
CROP_VOXELS = 24
HU_LOW, HU_HIGH = -1000.0, 400.0


def mask_labels(mask: sitk.Image) -> list:
    """The non-zero labels of a mask, ascending (a counting pass for integer masks, no sort)."""
    arr = sitk.GetArrayViewFromImage(mask)
    if arr.dtype.kind in "iub" and arr.size and arr.min() >= 0 and arr.max() < 2 ** 16:
        return [int(v) for v in np.flatnonzero(np.bincount(arr.ravel())) if v]
    return [v.item() for v in np.unique(arr) if v]


def choose_ct_label(n) -> str:
    """How to choose the tumour's label of a stage CT manifest's masks (the fix of a refused label map)."""
    return (f"choose the tumour's label: a 'label' column in the CT manifest (per patient), or --ct-label N for every "
            f"mask (e.g. --ct-label {n}: 1 in masks with 1 = GTV, 3 / 4 = lungs); in Python the mask_label argument")


def binary_mask(mask: sitk.Image, what: str = "tumour mask", label=None) -> sitk.Image:
    """The tumour as a 0/1 mask: ``label``'s voxels, or without it every non-zero voxel of a mask that has one label.

    A label map of several structures (GTV 1, other GTVs 2, lungs 3 / 4) is refused without ``label``, by the rule
    of ``lungai radiomics --tumour`` / ``lungai eval-seg --label`` (:func:`lungai.dicom.masks.check_one_label`): taking
    every label would centre the crop between tumour and lungs and count the lungs in the tumour's volume."""
    from lungai.dicom.masks import check_one_label

    labels = mask_labels(mask)
    if not labels:
        raise InputError(f"the {what} is empty", "give a segmentation that contains the tumour")
    if label is None:
        if len(labels) > 1:
            check_one_label(mask, f"the {what}", "tumour", choose_ct_label)
        m = sitk.Cast(mask > 0, sitk.sitkUInt8)
    else:
        if labels and int(label) not in labels:
            raise InputError(f"the {what} has no label {int(label)} (its labels: {', '.join(map(str, labels))})",
                             choose_ct_label(labels[0]))
        m = sitk.Cast(mask == int(label), sitk.sitkUInt8)
    return m


def crop_reference(mask: sitk.Image, size_mm: float = CROP_MM, voxels: int = CROP_VOXELS) -> sitk.Image:
    """An empty image grid of ``voxels``^3 centred on the mask centroid, on the patient (LPS) axes.

    The grid's direction is the identity whatever the CT's storage: the crop the CNN sees is a function of the
    physical CT and mask only.  (Before, the grid took the mask's direction, so the same CT stored RAS or with its
    axes permuted gave a mirrored / transposed crop and another prediction.)"""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(binary_mask(mask))
    centre = np.array(stats.GetCentroid(1))
    spacing = size_mm / voxels
    origin = centre - np.full(3, spacing * (voxels - 1) / 2.0)
    ref = sitk.Image([voxels] * 3, sitk.sitkFloat32)
    ref.SetSpacing([spacing] * 3)
    ref.SetOrigin(tuple(origin))
    return ref


CROP_CUT_NOTE = 0.01   # a tumour with at least this share of its voxels outside the crop is said to be cut off


def outside_crop_share(mask: sitk.Image, size_mm: float = CROP_MM) -> float:
    """The share of the tumour's voxels (centres) outside the crop the CNN sees: the cube of ``size_mm`` around the
    mask centroid on the patient's axes (:func:`crop_reference`).  A large stage III tumour is cut off (LUNG1-002's
    GTV, 96 x 95 x 75 mm: 17 % outside the 72 mm cube): said in the predictions' notes (:data:`CROP_CUT_NOTE`)."""
    m = binary_mask(mask)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(m)
    centre = np.array(stats.GetCentroid(1))
    idx = np.argwhere(sitk.GetArrayViewFromImage(m) > 0)[:, ::-1].astype(np.float64)     # (i, j, k)
    direction = np.array(m.GetDirection()).reshape(3, 3)
    points = np.array(m.GetOrigin()) + (idx * np.array(m.GetSpacing())) @ direction.T
    return float((np.abs(points - centre) > size_mm / 2.0).any(axis=1).mean())


def crop_cut_note(share: float, size_mm: float = CROP_MM) -> str:
    """A patient's note for a tumour with ``share`` of it outside the crop ('' below :data:`CROP_CUT_NOTE`)."""
    if share < CROP_CUT_NOTE:
        return ""
    return (f"CT: {100 * share:.0f} % of the tumour lies outside the {size_mm:.0f} mm cube the CT network sees "
            "(centred on the tumour): its CT input, and Grad-CAM, show only part of this large tumour")


def tumour_crop(ct: sitk.Image, mask: sitk.Image, size_mm: float = CROP_MM, voxels: int = CROP_VOXELS):
    """(array (2, v, v, v) float32 [scaled CT, mask fraction], reference grid image)."""
    ref = crop_reference(mask, size_mm, voxels)
    ident = sitk.Transform()
    ct_r = sitk.Resample(sitk.Cast(ct, sitk.sitkFloat32), ref, ident, sitk.sitkLinear, HU_LOW)
    m_r = sitk.Resample(sitk.Cast(binary_mask(mask), sitk.sitkFloat32), ref, ident, sitk.sitkLinear, 0.0)
    hu = np.clip(sitk.GetArrayFromImage(ct_r), HU_LOW, HU_HIGH)
    scaled = (hu - (HU_LOW + HU_HIGH) / 2) / ((HU_HIGH - HU_LOW) / 2)
    return np.stack([scaled, sitk.GetArrayFromImage(m_r)]).astype(np.float32), ref


def crop_to_ct_grid(values_kji: np.ndarray, ref: sitk.Image, ct: sitk.Image) -> sitk.Image:
    """Resample a map on the crop grid back onto ``ct``'s grid (0 outside the crop)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(values_kji, dtype=np.float32))
    img.CopyInformation(ref)
    return sitk.Resample(img, ct, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def feature_map_to_crop(values_kji: np.ndarray, ref: sitk.Image, stride, offset) -> np.ndarray:
    """A coarse map of the CNN's feature grid (array order k, j, i) on the crop grid ``ref``, as an array (k, j, i).

    Feature voxel ``n`` is centred on crop voxel ``offset + stride * n`` (per axis, :meth:`CTEncoder.feature_grid`),
    so the map is an image with the crop's direction, spacing ``stride`` x the crop's and origin at crop voxel
    ``offset``, linearly resampled onto the crop; crop voxels past the last feature centre take the nearest
    value.  (A generic ``align_corners=False`` upsampling put feature voxel n on crop voxel 4n + 1.5: 4.5 mm off.)"""
    stride, offset = np.asarray(stride, float)[::-1], np.asarray(offset, float)[::-1]      # (k, j, i) -> (x, y, z)
    img = sitk.GetImageFromArray(np.ascontiguousarray(values_kji, dtype=np.float32))
    img.SetSpacing(tuple(float(v) for v in stride * np.array(ref.GetSpacing())))
    img.SetDirection(ref.GetDirection())
    img.SetOrigin(ref.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in offset)))
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(ref)
    f.SetInterpolator(sitk.sitkLinear)
    f.SetOutputPixelType(sitk.sitkFloat32)
    f.SetUseNearestNeighborExtrapolator(True)
    return sitk.GetArrayFromImage(f.Execute(img))


def load_ct_pair(ct_path, mask_path, label=None):
    """(CT, binary mask) from two files, or from two SimpleITK images already in memory; ``label``: the tumour's
    label in the mask (:func:`binary_mask`: without it a mask of several labels is refused).  An image in memory
    (a Slicer volume node, a script's image) gets :func:`read_ct`'s checks too (:func:`lungai.io.check_ct`: NaN /
    infinite voxels would hang SimpleITK's label statistics in :func:`image_features`)."""
    from lungai.io import check_ct, on_grid, read_ct, read_mask

    if isinstance(ct_path, sitk.Image):
        check_ct(ct_path, "the CT image")
        return ct_path, binary_mask(on_grid(ct_path, mask_path, "tumour mask"), label=label)
    ct = read_ct(str(ct_path))
    mask = read_mask(str(mask_path), reference=ct)
    return ct, binary_mask(mask, f"tumour mask {mask_path}", label)


IMAGE_FEATURES = ("tumour_volume_ml", "tumour_diameter_mm", "tumour_elongation", "tumour_flatness",
                  "tumour_mean_hu", "tumour_sd_hu", "tumour_p90_hu")


def image_features(ct: sitk.Image, mask: sitk.Image) -> dict:
    """Shape and intensity features of the tumour (SimpleITK label statistics) for the baseline.  A CT with NaN /
    infinite voxels is refused first (:func:`lungai.io.validate.check_finite`): the label statistics never return
    on them (:func:`load_ct_pair` has checked a CT it loaded or was given; this guards a direct call)."""
    from lungai.io.validate import check_finite
    from lungai.volume import mask_volume_ml

    check_finite(ct, "the CT image", "CT")
    m = binary_mask(mask)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(m)
    inten = sitk.LabelIntensityStatisticsImageFilter()
    inten.Execute(m, sitk.Cast(ct, sitk.sitkFloat32))
    return {
        "tumour_volume_ml": mask_volume_ml(m),      # lungai.volume's: the volume lungai segment / radiomics give
        "tumour_diameter_mm": shape.GetEquivalentSphericalRadius(1) * 2.0,
        "tumour_elongation": shape.GetElongation(1),
        "tumour_flatness": shape.GetFlatness(1),
        "tumour_mean_hu": inten.GetMean(1),
        "tumour_sd_hu": inten.GetStandardDeviation(1),
        "tumour_p90_hu": inten.GetMaximum(1) if shape.GetNumberOfPixels(1) < 10 else float(
            np.percentile(sitk.GetArrayViewFromImage(ct)[sitk.GetArrayViewFromImage(m) > 0], 90)),
    }
