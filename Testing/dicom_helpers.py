"""Synthetic DICOM RT exports for the tests (lungai.dicom.synthetic on small phantoms).

:func:`rt_export` writes a multi-patient export with a deliberately messy layout:

- ``P1``: CT + RTSTRUCT (GTV, Lung_R, Lung_L) + RTDOSE with a relative GridFrameOffsetVector;
- ``P2``: CT + RTSTRUCT, no RTDOSE; its RTSTRUCT file is moved into P1's folder (grouping must use UIDs);
- ``P3``: CT + RTSTRUCT with a misnamed tumour ("Tumour_big", no role) + RTDOSE with absolute offsets.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SMALL = dict(shape=(72, 72, 36), spacing=(4.5, 4.5, 5.0), noise_hu=15.0)


def small_phantom(seed: int = 7, diameter: float = 40.0, side: str = "right"):
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    spec = PhantomSpec(**SMALL, tumour=TumourSpec(diameter_mm=diameter, location="free", shape="round", side=side))
    return make_phantom(spec, seed=seed)


def rt_export(root: Path) -> dict:
    from lungai.dicom.synthetic import write_rt_study

    root = Path(root)
    studies = {
        "P1": write_rt_study(root, small_phantom(7), "P1", dose="relative"),
        "P2": write_rt_study(root, small_phantom(8, side="left"), "P2", dose=None),
        "P3": write_rt_study(root, small_phantom(9), "P3", dose="absolute", names={"gtv": "Tumour_big"}),
    }
    moved = root / "P1" / "RTSTRUCT" / "rtstruct_of_someone.dcm"
    shutil.move(studies["P2"]["rtstruct"], moved)
    studies["P2"]["rtstruct"] = moved
    return studies


def rt_study_masks(root: Path) -> tuple:
    """The small phantom's DICOM CT written under ``root`` (no dose): its reference (``ct_reference``) and its masks
    GTVp, Lung_R, Lung_L - what an RTSTRUCT write is given (the RTSTRUCT tests' study)."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    st = write_rt_study(root / "dicom", small_phantom(7), "P1", dose=None)
    ref = ct_reference(st["ct"], image=read_ct(st["ct"]))
    return ref, {"GTVp": st["masks"]["GTV"], "Lung_R": st["masks"]["Lung_R"], "Lung_L": st["masks"]["Lung_L"]}


def image_like(arr: np.ndarray, reference: sitk.Image) -> sitk.Image:
    from lungai.io import copy_geometry

    return copy_geometry(arr.astype(np.uint8), reference)


def array(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img)


def slicerrt_segmentation(scene, study: dict):
    """What SlicerRT gives for ``study["rtstruct"]`` on ``study["ct"]``: (CT image, its volume node "CT", a segmentation
    node "RTSTRUCT" with one segment per ROI, named like it).  Contour gaps are loaded too, as SlicerRT does."""
    from lungai import mrml
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.io import read_ct

    ct = read_ct(study["ct"])
    vol = mrml.volume_node_from_image(scene, ct, "CT")
    seg = None
    for name, mask in read_rtstruct(study["rtstruct"], ct, allow_gaps=True).items():
        seg, _ = mrml.mask_to_segment(scene, mask, name, seg_node=seg, reference_volume_node=vol)
    seg.SetName("RTSTRUCT")
    return ct, vol, seg


def provenance(seg_path, rt_path) -> tuple[dict, dict]:
    """({SEG segment label: (SegmentAlgorithmType, SegmentAlgorithmName or None)}, {RTSTRUCT ROI name:
    ROIGenerationAlgorithm}) of written files: who made each segment (SlicerLungAI: AUTOMATIC; the user: MANUAL)."""
    import pydicom

    seg = pydicom.dcmread(str(seg_path))
    rt = pydicom.dcmread(str(rt_path))
    return ({s.SegmentLabel: (s.SegmentAlgorithmType, getattr(s, "SegmentAlgorithmName", None))
             for s in seg.SegmentSequence},
            {r.ROIName: r.ROIGenerationAlgorithm for r in rt.StructureSetROISequence})


def with_empty_structures(rtstruct, names, dst) -> Path:
    """A copy of ``rtstruct`` with structures ``names`` added without contours (as a planning-system template leaves
    them: an ROIContourSequence item with no ContourSequence)."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(rtstruct)
    number = max(int(r.ROINumber) for r in ds.StructureSetROISequence)
    frame = ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    for name in names:
        number += 1
        roi, contour = Dataset(), Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, frame, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        contour.ReferencedROINumber, contour.ROIDisplayColor = number, [255, 0, 0]
        ds.StructureSetROISequence.append(roi)
        ds.ROIContourSequence.append(contour)
    ds.save_as(dst)
    return Path(dst)


def as_slicerrt_dose(scene, node, unit: str) -> None:
    """What SlicerRT's RTDOSE import leaves: the node under a patient / study, the study item holding the RTDOSE's
    DoseUnits as "DicomRtImport.DoseUnitName" (the voxels are pixel x DoseGridScaling, in that unit)."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    sh.SetItemUID(item, "DICOM", "1.2.826.0.1.3680043.8.498.99.1")
    slicer.vtkSlicerSubjectHierarchyModuleLogic.InsertDicomSeriesInHierarchy(
        sh, "P1", "1.2.826.0.1.3680043.8.498.99.2", "1.2.826.0.1.3680043.8.498.99.1")
    study = sh.GetItemAncestorAtLevel(item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy())
    sh.SetItemAttribute(study, "DicomRtImport.DoseUnitName", unit)


def envelope_study(small_phantom, root):
    """The small phantom as an RT export with no GTV but an 'iGTV' of the tumour plus a node two slices apart from
    it (a gap of slices, as an envelope of primary + nodes has), and the iGTV's mask."""
    from lungai.dicom.synthetic import rt_structures, write_rt_study

    gtv = sitk.GetArrayFromImage(rt_structures(small_phantom)["gtv"]) > 0
    zs = np.flatnonzero(gtv.any(axis=(1, 2)))
    envelope = gtv.copy()
    node = zs[-1] + 3                                   # slices zs[-1]+1, +2 left out: a gap
    envelope[node:node + 2, 40:44, 40:44] = True
    img = sitk.GetImageFromArray(envelope.astype(np.uint8))
    img.CopyInformation(small_phantom.labels)
    return write_rt_study(root, small_phantom, patient_id="ENV", names={"gtv": None},
                          extra_structures={"iGTV": img}), img



def with_new_uids(src: Path, dst: Path, tail: str, patient_id: str | None = None) -> Path:
    """A copy of the DICOM files under ``src`` at ``dst`` (same layout) as another export of them: every instance,
    series, study and frame-of-reference UID - and the references to them - ends in ``.tail`` (the same map in
    every file, so an RTSTRUCT still references its CT), the PatientID ``patient_id`` when given (a second patient;
    else the same patient's second series).  SOP class and transfer syntax UIDs are kept."""
    import pydicom

    keep = {0x00080016, 0x00081150, 0x00020002, 0x00020010, 0x00020012}   # SOP classes, transfer syntax

    def remap(uid: str) -> str:
        return uid + "." + tail if len(uid) + len(tail) < 64 else uid[:63 - len(tail)] + "." + tail

    for f in sorted(Path(src).rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        if patient_id is not None:
            ds.PatientID = patient_id
        for el in ds.iterall():
            if el.VR == "UI" and el.tag not in keep and el.value:
                el.value = remap(str(el.value))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out = Path(dst) / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out)
    return Path(dst)


# the tick interval of :class:`TimedBar` (a progress that records when each update came)
TICK = 0.2


class TimedBar:
    """A progress (``update(n, message)``, ``close()``) that records (monotonic time, n, message) of each update in
    ``seen``, its ``tick_interval`` :data:`TICK`: the slow-write tests check that no gap between updates is long."""
    tick_interval = TICK

    def __init__(self):
        self.seen = []

    def update(self, n=1, message=None):
        import time

        self.seen.append((time.monotonic(), n, message))

    def close(self):
        pass
