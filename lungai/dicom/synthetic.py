"""Synthetic DICOM RT studies from the project's phantoms: CT series + RTSTRUCT + RTDOSE with known geometry.

For tests and demos without patient data (``lungai sample --dicom``): every voxel of the CT, every
structure and the dose are known, so readers can be checked exactly.  Layout of :func:`write_rt_study`::

    <out>/<patient_id>/CT/ct_0001.dcm ...     (int16 HU, one file per slice)
    <out>/<patient_id>/RTSTRUCT/rtstruct.dcm  (GTV, Lung_R, Lung_L by default; names can be changed)
    <out>/<patient_id>/RTDOSE/rtdose.dcm      (uint32 x DoseGridScaling, coarser grid than the CT)

The RTDOSE's GridFrameOffsetVector can be written relative (first value 0, the common form) or
absolute (the frames' z positions, allowed by PS3.3 C.8.8.3.2 when the first value equals the z of
ImagePositionPatient).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
DEFAULT_NAMES = {"gtv": "GTV", "lung_right": "Lung_R", "lung_left": "Lung_L"}


def _base(patient_id: str, study_uid: str, sop_class: str, sop_uid: str, modality: str):
    from lungai.dicom.reference import new_dataset

    ds = new_dataset(sop_class, sop_uid, modality)
    ds.PatientName = f"Synthetic^{patient_id}"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = "20260101", "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = "SlicerLungAI synthetic"
    return ds


def _orientation(img: sitk.Image) -> list[float]:
    d = np.asarray(img.GetDirection()).reshape(3, 3)
    return [float(v) for v in np.concatenate([d[:, 0], d[:, 1]])]


def write_ct_series(ct: sitk.Image, folder, patient_id: str = "LUNGAI-SYN-001", study_uid: str | None = None,
                    frame_of_reference_uid: str | None = None):
    """Write an int16 HU image as a CT Image Storage series (one file per slice); returns its CTReference."""
    from lungai.dicom.reference import CTReference, derived_uid, save_dataset

    folder = Path(folder)
    study_uid = study_uid or derived_uid(patient_id, "study")
    series_uid = derived_uid(study_uid, "ct-series")
    frame_uid = frame_of_reference_uid or derived_uid(study_uid, "frame-of-reference")
    arr = sitk.GetArrayFromImage(ct)
    if arr.min() < -32768 or arr.max() > 32767:
        raise ValueError("CT values do not fit int16")
    arr = arr.astype(np.int16)
    sx, sy, sz = ct.GetSpacing()
    heads = []
    for k in range(arr.shape[0]):
        uid = derived_uid(series_uid, "slice", k)
        ds = _base(patient_id, study_uid, CT_IMAGE_STORAGE, uid, "CT")
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 1, k + 1
        ds.SeriesDescription = "synthetic chest CT (lungai phantom)"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ct.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in _orientation(ct)]
        ds.SliceThickness = f"{sz:.4f}"
        ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]   # row spacing (y), column spacing (x)
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.KVP = "120"
        ds.PixelData = arr[k].tobytes()
        save_dataset(ds, folder / f"ct_{k + 1:04d}.dcm")
        del ds.PixelData
        heads.append(ds)
    return CTReference(heads, folder)


def write_rtdose(dose: sitk.Image, path, reference=None, offsets: str = "relative", reverse_frames: bool = False,
                 units: str = "GY", scaling: float | None = None) -> Path:
    """Write a dose grid in Gy (axis-aligned) as an RTDOSE: uint32 pixels x DoseGridScaling, GridFrameOffsetVector.

    ``reference``: the CTReference whose patient, study and frame of reference the dose joins (default: new UIDs).
    ``offsets``: "relative" (GridFrameOffsetVector from the first frame, first value 0) or "absolute" (the frames'
    z positions).  ``reverse_frames``: frames listed from the top (decreasing z).  ``units``: "GY" or "CGY".
    """
    from lungai.dicom.reference import derived_uid, save_dataset

    if offsets not in ("relative", "absolute"):
        raise ValueError("offsets must be 'relative' or 'absolute'")
    arr = np.clip(sitk.GetArrayFromImage(dose).astype(np.float64), 0, None) * (100.0 if units == "CGY" else 1.0)
    scaling = scaling or max(float(arr.max()), 1e-6) / 1_000_000.0
    frames = np.asarray([dose.TransformIndexToPhysicalPoint((0, 0, k)) for k in range(arr.shape[0])], np.float64)
    if reverse_frames:
        arr, frames = arr[::-1], frames[::-1]
    first = frames[0]
    row_col = np.asarray(_orientation(dose)).reshape(2, 3)
    # relative offsets lie along the normal row x column (PS3.3 C.8.8.3.2), which is -z for a feet-first grid
    # ([-1,0,0,0,1,0]): the frames' z differences would put the frames on the other side of the first one
    grid_offsets = ((frames - first) @ np.cross(row_col[0], row_col[1]) if offsets == "relative"
                    else frames[:, 2])
    if reference is not None:
        patient, study, frame = str(reference.first.PatientID), reference.study_uid, reference.frame_of_reference_uid
    else:
        patient = "SYNTH"
        study, frame = derived_uid(patient, "study"), derived_uid(patient, "frame-of-reference")
    uid = derived_uid(study, "rtdose", offsets, reverse_frames, units, float(arr.sum()))
    ds = _base(patient, study, RT_DOSE_STORAGE, uid, "RTDOSE")
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = derived_uid(uid, "series"), 2, 1
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = ""
    sx, sy, sz = dose.GetSpacing()
    ds.ImagePositionPatient = [f"{v:.4f}" for v in first]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in _orientation(dose)]
    ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]
    ds.SliceThickness = f"{sz:.4f}"
    ds.NumberOfFrames = arr.shape[0]
    ds.FrameIncrementPointer = 0x3004000C
    ds.GridFrameOffsetVector = [f"{v:.4f}" for v in grid_offsets]
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = units, "PHYSICAL", "PLAN"
    ds.DoseGridScaling = f"{scaling:.10g}"
    ds.PixelData = np.round(arr / scaling).astype(np.uint32).tobytes()
    return save_dataset(ds, path)


def dose_grid(ct: sitk.Image, factor: tuple = (2, 2, 1), margin_mm: float = 10.0) -> sitk.Image:
    """An empty float grid inside ``ct``: ``factor`` times coarser, ``margin_mm`` in from the sides, shifted by half a
    CT voxel (a dose grid does not share the CT's voxel centres, as in a real plan)."""
    ct_spacing = np.asarray(ct.GetSpacing())
    spacing = ct_spacing * np.asarray(factor)
    extent = np.asarray(ct.GetSize()) * ct_spacing
    size = np.maximum(2, ((extent - 2 * np.asarray([margin_mm, margin_mm, 0.0]) - ct_spacing) // spacing)).astype(int)
    grid = sitk.Image([int(v) for v in size], sitk.sitkFloat32)
    grid.SetSpacing([float(v) for v in spacing])
    d = np.asarray(ct.GetDirection()).reshape(3, 3)
    shift = np.asarray([margin_mm, margin_mm, 0.0]) + 0.5 * ct_spacing
    grid.SetOrigin(tuple(float(v) for v in np.asarray(ct.GetOrigin()) + d @ shift))
    grid.SetDirection(ct.GetDirection())
    return grid


def rt_structures(phantom) -> dict[str, sitk.Image]:
    """The phantom's GTV and lungs as {role: mask} (lungs keep the tumour inside, as the phantom's truth)."""
    from lungai.synthetic import labels as L

    lab = sitk.GetArrayFromImage(phantom.labels)
    side = (phantom.meta.get("tumour") or {}).get("side")
    lungs = L.lung_truth(lab, side)
    out = {"gtv": L.tumour_mask(lab), "lung_right": lungs["right"], "lung_left": lungs["left"]}
    images = {}
    for role, arr in out.items():
        img = sitk.GetImageFromArray(arr.astype(np.uint8))
        img.CopyInformation(phantom.labels)
        images[role] = img
    return images


def write_rt_study(out_dir, phantom, patient_id: str = "LUNGAI-SYN-001", dose: str | None = "relative",
                   names: dict | None = None, extra_structures: dict | None = None) -> dict:
    """Write ``phantom`` as one patient's DICOM RT export under ``out_dir/patient_id``.

    ``dose``: "relative", "absolute" (GridFrameOffsetVector kind) or None (no RTDOSE).
    ``names``: structure name per role (default GTV, Lung_R, Lung_L; None for a role leaves it out), e.g.
    ``{"gtv": "Tumour_big"}`` for a misnamed structure.  ``extra_structures``: more {name: mask}.
    Returns paths, the CTReference and the written masks / dose (the ground truth).
    """
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dose.synthetic import treatment_dose

    root = Path(out_dir) / patient_id
    reference = write_ct_series(phantom.ct, root / "CT", patient_id=patient_id)
    by_role = rt_structures(phantom)
    names = {**DEFAULT_NAMES, **(names or {})}
    masks = {names[r]: m for r, m in by_role.items() if names.get(r) and sitk.GetArrayViewFromImage(m).any()}
    masks.update(extra_structures or {})
    out = {"root": root, "ct": root / "CT", "reference": reference, "masks": masks, "dose": None,
           "rtstruct": write_rtstruct(masks, reference, root / "RTSTRUCT" / "rtstruct.dcm", label="synthetic")}
    if dose:
        grid = dose_grid(phantom.ct)
        tumour = sitk.Resample(by_role["gtv"], grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        d = treatment_dose(tumour) if sitk.GetArrayViewFromImage(tumour).any() else grid + 1.0
        out["dose_image"] = d
        out["dose"] = write_rtdose(d, root / "RTDOSE" / "rtdose.dcm", reference=reference, offsets=dose)
    return out
