"""A float map (the voxel uncertainty) as a DICOM Parametric Map (highdicom), referencing the source CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError

LEVELS = 65535
# UCUM units of the maps lungai writes
UNITS = {"bit": ("bit", "UCUM", "bit"), "1": ("1", "UCUM", "no units"), "Gy": ("Gy", "UCUM", "Gy")}


def write_parametric_map(image: sitk.Image, reference, path, label: str = "UNCERTAINTY",
                         explanation: str = "predictive entropy of the tumour probability", unit: str = "bit",
                         series_number: int = 302) -> Path:
    """Write a float image on the reference CT's grid as a DICOM Parametric Map.

    Stored as uint16 with a real-world value mapping (value = intercept + slope x pixel, slope = range / 65535, so
    the round trip is exact to half a step) and JPEG-LS lossless compression, on the slices that hold values.
    """
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.uid import JPEGLSLossless

    from lungai import __version__
    from lungai.dicom.reference import check_on_grid, content_digest, derived_uid, save_dataset
    from lungai.dicom.seg import quiet_highdicom

    check_on_grid(image, reference, what=f"map {label.lower()}")
    arr = sitk.GetArrayFromImage(image).astype(np.float64)
    value, scheme, meaning = UNITS[unit]
    lo, hi = float(arr.min()), float(arr.max())
    slope = (hi - lo) / LEVELS if hi > lo else 1.0
    pixels = np.round((arr - lo) / slope).astype(np.uint16)
    # only the slices that hold a value above the minimum (the segmentation ROI), JPEG-LS lossless: a whole-CT
    # float32 map would be ~110 MB; readers put the background (the minimum) back on the other slices
    used = np.flatnonzero(pixels.reshape(pixels.shape[0], -1).any(axis=1))
    keep = np.arange(used[0], used[-1] + 1) if used.size else np.arange(1)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label[:16], lut_explanation=explanation[:64], unit=CodedConcept(value, scheme, meaning),
        value_range=(0, LEVELS), slope=slope, intercept=lo)
    sop_uid = derived_uid(reference.series_uid, "pmap", label, content_digest(pixels))
    with quiet_highdicom():
        pm = hd.pm.ParametricMap(
            source_images=[reference.datasets[k] for k in keep], pixel_array=pixels[keep],
            series_instance_uid=derived_uid(sop_uid, "series"),
            series_number=series_number, sop_instance_uid=sop_uid, instance_number=1, manufacturer="SlicerLungAI",
            manufacturer_model_name="lungai", software_versions=__version__, device_serial_number="0",
            contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
            voi_lut_transformations=[hd.VOILUTTransformation(window_center=LEVELS / 2, window_width=LEVELS)],
            content_label=label[:16], content_description=explanation[:64],
            series_description=f"lungai {label.lower()}", transfer_syntax_uid=JPEGLSLossless)
    return save_dataset(pm, path)


def read_parametric_map(path, reference_ct: sitk.Image) -> sitk.Image:
    """A Parametric Map as a float32 image on ``reference_ct``'s grid (real-world values)."""
    import highdicom as hd
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    try:
        pm = hd.pm.ParametricMap.from_dataset(hd.imread(p))
    except (InvalidDicomError, ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{p.name} is not a readable DICOM Parametric Map ({exc})", "give a Parametric Map .dcm") from exc
    template = sitk.Image(reference_ct.GetSize(), sitk.sitkFloat32)
    template.CopyInformation(reference_ct)
    vol = pm.get_volume(apply_real_world_transform=True, dtype=np.float32)
    shared = pm.SharedFunctionalGroupsSequence[0]
    lo = float(shared.RealWorldValueMappingSequence[0].RealWorldValueIntercept) \
        if "RealWorldValueMappingSequence" in shared else 0.0
    try:
        vol = vol.match_geometry(hd.Volume.from_simpleitk(template), constant_value=lo)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{p.name} is not on the CT's voxel grid ({exc})", "give the map made on this CT series") from exc
    img = sitk.Cast(vol.to_simpleitk(), sitk.sitkFloat32)
    img.CopyInformation(reference_ct)
    return img
