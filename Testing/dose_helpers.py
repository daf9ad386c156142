"""Write a small synthetic RTDOSE DICOM with pydicom (for the dose-reading tests)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def write_rtdose(dose: sitk.Image, path, scaling: float = 1e-3, reverse_frames: bool = False, units: str = "GY",
                 absolute_offsets: bool = False):
    """``dose`` (axis-aligned, Gy) as an RTDOSE file: uint32 pixels x DoseGridScaling, GridFrameOffsetVector
    relative (first 0) or, with ``absolute_offsets``, the frames' z coordinates (DICOM PS3.3 C.8.8.3.2)."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = sitk.GetArrayFromImage(dose).astype(np.float64)
    if units == "CGY":
        arr = arr * 100.0
    sx, sy, sz = dose.GetSpacing()
    origin = np.asarray(dose.GetOrigin(), float)
    offsets = np.arange(arr.shape[0]) * sz
    if reverse_frames:  # frames listed from the top: negative offsets from the last slice
        arr = arr[::-1]
        origin = origin + np.array([0.0, 0.0, offsets[-1]])
        offsets = -offsets
    if absolute_offsets:
        offsets = offsets + origin[2]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTDOSE"
    ds.PatientID = "SYNTH"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.ImagePositionPatient = [float(v) for v in origin]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [float(sy), float(sx)]
    ds.GridFrameOffsetVector = [float(v) for v in offsets]
    ds.NumberOfFrames = arr.shape[0]
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x3004, 0x000C)
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit, ds.PixelRepresentation = 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = units, "PHYSICAL", "PLAN"
    ds.DoseGridScaling = scaling
    ds.PixelData = np.round(arr / scaling).astype(np.uint32).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path
