"""Write a small synthetic RTDOSE DICOM (for the dose-reading tests): the project's writer, lungai.dicom.synthetic."""

from __future__ import annotations

import SimpleITK as sitk


def write_rtdose(dose: sitk.Image, path, scaling: float = 1e-3, reverse_frames: bool = False, units: str = "GY",
                 offsets: str = "relative", reference=None):
    """``dose`` (axis-aligned, Gy) as an RTDOSE file: uint32 pixels x DoseGridScaling, GridFrameOffsetVector;
    ``reference``: the CTReference whose patient and frame of reference it joins (default: new UIDs)."""
    from lungai.dicom.synthetic import write_rtdose as write

    return write(dose, path, reference=reference, offsets=offsets, reverse_frames=reverse_frames, units=units,
                 scaling=scaling)


def with_summation_type(src, dst, kind: str, plan: str | None = None, factor: float = 1.0, uid: str | None = None):
    """A copy of the RTDOSE ``src`` with DoseSummationType ``kind``, the referenced plan ``plan``, the dose x
    ``factor`` (DoseGridScaling) and its own SOPInstanceUID."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(src)
    ds.DoseSummationType = kind
    if plan is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.5", plan
        ds.ReferencedRTPlanSequence = [ref]
    ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * factor:.10g}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid or pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst



def write_rtplan(path, uid: str, beams, patient_id: str = "", frame: str = ""):
    """A bare RTPLAN (header only) of SOPInstanceUID ``uid`` whose fraction group 1 lists ``beams``: beam numbers,
    or (number, BeamMeterset) pairs (a meterset of 0: a beam that delivers no dose)."""
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, uid, "RTPLAN"
    ds.PatientID, ds.SeriesInstanceUID = patient_id, pydicom.uid.generate_uid()
    if frame:
        ds.FrameOfReferenceUID = frame
    group = Dataset()
    group.FractionGroupNumber, group.NumberOfFractionsPlanned, group.NumberOfBeams = 1, 30, len(beams)
    refs = []
    for beam in beams:
        number, meterset = beam if isinstance(beam, tuple) else (beam, 100.0)
        ref = Dataset()
        ref.ReferencedBeamNumber, ref.BeamMeterset = number, meterset
        refs.append(ref)
    group.ReferencedBeamSequence = refs
    ds.FractionGroupSequence = [group]
    ds.save_as(str(path), enforce_file_format=True)
    return path


def phantom_lungs_and_gtv(phantom, sides: bool = False) -> tuple[sitk.Image, sitk.Image]:
    """(lungs, GTV) of a synthetic phantom (``lungai.synthetic``) as uint8 masks on its CT grid: the lungs one binary
    mask (both lungs 1), or with ``sides`` a lung label map (1 right, 2 left); the GTV its tumour."""
    import numpy as np

    from lungai.synthetic import labels as L

    arr = sitk.GetArrayFromImage(phantom.labels)
    truth = L.lung_truth(arr, "right")
    lungs = truth["right"] * 1 + truth["left"] * 2 if sides else truth["right"] | truth["left"]
    masks = (sitk.GetImageFromArray(lungs.astype(np.uint8)),
             sitk.GetImageFromArray(L.tumour_mask(arr).astype(np.uint8)))
    for im in masks:
        im.CopyInformation(phantom.ct)
    return masks


def lung1_003_plan_dose(shared_data, spacing: float = 4.0, peak_gy: float = 60.0):
    """LUNG1-003's real DICOM CT (../shared/data/nsclc_whole_ct/dicom): (CT folder, RTSTRUCT folder, its
    CTReference - the patient, study and frame of reference an RTDOSE written with it joins -, a radial dose in Gy
    (``peak_gy`` at the CT's centre) on a ``spacing`` mm grid covering the CT, as a planning system's dose grid)."""
    from lungai.dicom.reference import ct_reference
    from lungai.dose import radial_dose
    from lungai.io import read_ct

    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    ct = read_ct(str(patient / "CT"))
    size, step = ct.GetSize(), ct.GetSpacing()
    grid = sitk.Image([int(size[i] * step[i] / spacing) for i in range(3)], sitk.sitkFloat32)
    grid.SetSpacing((spacing,) * 3)
    grid.SetOrigin(ct.GetOrigin())
    centre = ct.TransformContinuousIndexToPhysicalPoint([s / 2 for s in size])
    return (patient / "CT", patient / "RTSTRUCT", ct_reference(patient / "CT", image=ct),
            radial_dose(grid, centre, 40.0, peak_gy))
