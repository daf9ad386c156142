"""A float map (the voxel uncertainty) as a DICOM Parametric Map (highdicom), referencing the source CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError

# UCUM units of the maps lungai writes
UNITS = {"bit": ("bit", "UCUM", "bit"), "1": ("1", "UCUM", "no units"), "Gy": ("Gy", "UCUM", "Gy")}
THORAX = ("51185008", "SCT", "Thorax")      # Frame Anatomy of every map lungai writes (a chest CT)
# what the bar says while a map is written (:func:`write_parametric_map`'s ``progress``): the frames built
# (highdicom), then compressed and saved - each a second or more on a whole CT (QA export67: 3-5 s on LUNG1-003's
# uncertainty behind the one message "writing DICOM parametric map")
PMAP_FRAMES = "writing DICOM parametric map: {n} frame{s}"
PMAP_SAVING = "writing DICOM parametric map: compressing {n} frame{s}"


def write_parametric_map(image: sitk.Image, reference, path, label: str = "UNCERTAINTY",
                         explanation: str = "predictive entropy of the tumour probability", unit: str = "bit",
                         series_number: int = 302, progress=None) -> Path:
    """Write a float image on the reference CT's grid as a DICOM Parametric Map.

    Written so that Slicer reads it: dcmqi (the converter behind QuantitativeReporting's Parametric Map plugin)
    reads only 32-bit Float Pixel Data and needs the Frame Anatomy functional group, which highdicom leaves
    out - both measured (Testing/test_dicom_dcmqi.py).  So: float32 values as they are (identity real-world
    value mapping), Frame Anatomy "Thorax", only the slices that hold a value above the minimum (the
    segmentation ROI; readers put the minimum back on the other slices), Deflated Explicit VR Little Endian
    (lossless; dcmqi / DCMTK and pydicom inflate it).

    ``progress`` (optional, :mod:`lungai.progress`): its text names each stage (:data:`PMAP_FRAMES`,
    :data:`PMAP_SAVING`); no step is counted (the caller's).  The frames are copied once each way (QA export67:
    the kept slices were a copy of the map, put in ascending order by two further whole copies - 3.3 times the
    map's memory at the peak, 3-5 s on LUNG1-003 on a loaded machine).
    """
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from lungai import __version__
    from lungai.dicom.reference import (HIGHDICOM_CHARACTER_SET, check_on_grid, content_digest, copy_from_ct,
                                        derived_uid, orthonormalise_frames, save_dataset, series_slice_spacing,
                                        stable_dimension_uid)
    from lungai.dicom.seg import quiet_highdicom
    from lungai.progress import NullProgress

    progress = progress or NullProgress()
    check_on_grid(image, reference, what=f"map {label.lower()}")
    arr = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)    # a copy already: not a second one
    value, scheme, meaning = UNITS[unit]
    lo, hi = float(arr.min()), float(arr.max())
    used = np.flatnonzero((arr > lo).reshape(arr.shape[0], -1).any(axis=1))
    keep = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 1)   # a view of arr, not a copy
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label[:16], lut_explanation=explanation[:64], unit=CodedConcept(value, scheme, meaning),
        value_range=(lo, hi if hi > lo else lo + 1.0), slope=1.0, intercept=0.0)
    digest = content_digest(arr, mapping, explanation, unit)
    sop_uid = derived_uid(reference.series_uid, "pmap", label, digest, str(series_number))
    progress.update(0, PMAP_FRAMES.format(n=keep.stop - keep.start, s="s" * (keep.stop - keep.start != 1)))
    with quiet_highdicom():
        pm = hd.pm.ParametricMap(
            source_images=reference.datasets[keep], pixel_array=arr[keep],
            series_instance_uid=derived_uid(sop_uid, "series"),
            series_number=series_number, sop_instance_uid=sop_uid, instance_number=1, manufacturer="SlicerLungAI",
            manufacturer_model_name="lungai", software_versions=__version__, device_serial_number="0",
            contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
            voi_lut_transformations=[hd.VOILUTTransformation(window_center=(lo + hi) / 2.0,
                                                             window_width=max(hi - lo, 1e-6))],
            content_label=label[:16], content_description=explanation[:64],
            series_description=f"lungai {label.lower()}",
            specific_character_set=HIGHDICOM_CHARACTER_SET)   # the CT's own: copy_from_ct
    orthonormalise_frames(pm, series_slice_spacing(reference))     # the CT's direction and spacing as ITK reads them
    stable_dimension_uid(pm, sop_uid)
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = THORAX
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = Sequence([region])
    anatomy.FrameLaterality = "U"
    pm.SharedFunctionalGroupsSequence[0].FrameAnatomySequence = Sequence([anatomy])
    del arr           # the map's values are in the Pixel Data now: not held through the reorder and the save
    _frames_ascending(pm)
    pm.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    progress.update(0, PMAP_SAVING.format(n=int(pm.NumberOfFrames), s="s" * (int(pm.NumberOfFrames) != 1)))
    return save_dataset(copy_from_ct(pm, reference.first), path)


def _frames_ascending(pm) -> None:
    """Put the frames in ascending order along the slice normal (highdicom writes them descending): DICOM
    leaves the order free, but dcmqi (Slicer's reader) stacks frame k at index k from the lowest position, so
    descending frames came out upside down in z (measured)."""
    from pydicom.sequence import Sequence

    shared = pm.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    per_frame = list(pm.PerFrameFunctionalGroupsSequence)
    along = [float(np.dot(normal, [float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]))
             for f in per_frame]
    order = np.argsort(along, kind="stable")
    if np.array_equal(order, np.arange(len(per_frame))):
        return
    # one copy of the frames, in the new order (not a reordered array and then its bytes: two whole copies)
    data = memoryview(pm.FloatPixelData)
    size = len(data) // len(per_frame)
    pm.FloatPixelData = b"".join([data[k * size:(k + 1) * size] for k in order])
    data.release()
    pm.PerFrameFunctionalGroupsSequence = Sequence([per_frame[k] for k in order])


def read_parametric_map(path, reference_ct: sitk.Image) -> sitk.Image:
    """A Parametric Map as a float32 image on ``reference_ct``'s grid (real-world values)."""
    import highdicom as hd
    import pydicom
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.reference import orthonormalise_frames

    p = Path(path)
    try:
        ds = pydicom.dcmread(p)
        orthonormalise_frames(ds, reference_ct.GetSpacing()[2])   # IOP not orthonormal: as ITK reads the CT
        pm = hd.pm.ParametricMap.from_dataset(ds, copy=False)
    except (InvalidDicomError, ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{p.name} is not a readable DICOM Parametric Map ({exc})", "give a Parametric Map .dcm") from exc
    template = sitk.Image(reference_ct.GetSize(), sitk.sitkFloat32)
    template.CopyInformation(reference_ct)
    vol = pm.get_volume(apply_real_world_transform=True, dtype=np.float32)
    shared = pm.SharedFunctionalGroupsSequence[0]
    lo = 0.0                           # the value of the slices not stored: the map's minimum
    if "RealWorldValueMappingSequence" in shared:
        rw = shared.RealWorldValueMappingSequence[0]
        first = rw.get("DoubleFloatRealWorldValueFirstValueMapped", rw.get("RealWorldValueFirstValueMapped"))
        lo = float(first) * float(rw.get("RealWorldValueSlope", 1.0)) + float(rw.get("RealWorldValueIntercept", 0.0)) \
            if "FloatPixelData" in pm else float(rw.get("RealWorldValueIntercept", 0.0))
    try:
        vol = vol.match_geometry(hd.Volume.from_simpleitk(template), constant_value=lo)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{p.name} is not on the CT's voxel grid ({exc})", "give the map made on this CT series") from exc
    img = sitk.Cast(vol.to_simpleitk(), sitk.sitkFloat32)
    img.CopyInformation(reference_ct)
    return img
