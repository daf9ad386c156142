"""Read CTs and masks from DICOM series folders or NIfTI / NRRD / MHA files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.io.geometry import assert_same_geometry
from lungai.io.validate import check_3d, check_ct, check_slice_positions, slice_offsets

FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
# Study, Series and Frame of Reference UIDs of a CT read from a DICOM series (image metadata keys)
UID_TAGS = ("0020|000d", "0020|000e", "0020|0052")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _read_dicom_series(folder: Path, series_uid: str | None) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)   # ITK's "No Series were found": the error below says it
    try:
        ids = list(reader.GetGDCMSeriesIDs(str(folder)) or [])
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if not ids:
        raise InputError(f"no DICOM series found in {folder}",
                         "point to a folder that holds the CT's DICOM slices (.dcm), or to a NIfTI/NRRD/MHA file")
    if series_uid is None and len(ids) > 1:
        listing = "; ".join(f"{uid} ({len(reader.GetGDCMSeriesFileNames(str(folder), uid))} files)" for uid in ids)
        raise InputError(
            f"{folder} holds {len(ids)} different DICOM series: {listing}",
            "put each series in its own folder, or choose one series by its SeriesInstanceUID "
            "(lungai CLI: --series UID)")
    uid = series_uid or ids[0]
    if uid not in ids:
        raise InputError(f"series {uid} is not in {folder}", f"choose one of: {', '.join(ids)}")
    files = reader.GetGDCMSeriesFileNames(str(folder), uid)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    # the slice positions are checked below (a gap is an error here, where ITK only warns)
    reader.SetSpacingWarningRelThreshold(1e6)
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"could not read the DICOM series in {folder}: {str(exc).strip().splitlines()[-1]}",
                         "check that the files are complete DICOM images of one CT series") from exc
    _check_series_positions(reader, len(files), folder)
    for tag in UID_TAGS:   # kept on the image, so masks from DICOM RT objects can be checked against this CT
        if reader.HasMetaDataKey(0, tag):
            img.SetMetaData(tag, reader.GetMetaData(0, tag).strip().rstrip("\x00"))
    if len(files) > 1:
        modality = reader.GetMetaData(0, "0008|0060").strip() if reader.HasMetaDataKey(0, "0008|0060") else ""
        if modality and modality != "CT":
            raise InputError(f"the DICOM series in {folder} has modality {modality}, not CT",
                             "select the CT series of the study")
    return img


def _check_series_positions(reader: sitk.ImageSeriesReader, n: int, folder: Path) -> None:
    """No missing slice, duplicate position or irregular step in the series just read."""
    if n < 2 or not all(reader.HasMetaDataKey(i, "0020|0032") for i in range(n)) \
            or not reader.HasMetaDataKey(0, "0020|0037"):
        return
    positions = [reader.GetMetaData(i, "0020|0032").strip().split("\\") for i in range(n)]
    offsets, axis = slice_offsets(positions, reader.GetMetaData(0, "0020|0037").strip().split("\\"))
    check_slice_positions(offsets, f"the DICOM series in {folder}", axis)


def read_image(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read any 3D image (file or DICOM folder) with its geometry; no CT checks."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist", "check the path (and that the drive is mounted)")
    if p.is_dir():
        img = _read_dicom_series(p, series_uid)
    else:
        suffix = _suffix(p)
        if suffix not in FILE_SUFFIXES + (".dcm", ""):
            raise InputError(f"{p.name}: unsupported file type {suffix!r}",
                             "use NIfTI (.nii/.nii.gz), NRRD (.nrrd), MHA (.mha) or a DICOM folder")
        try:
            img = sitk.ReadImage(str(p))
        except RuntimeError as exc:
            raise InputError(f"could not read {p}: the file is unreadable or corrupt",
                             "re-export the image, or check that the download/copy finished") from exc
    check_3d(img, str(p))
    return img


def read_ct(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read a chest CT and check it is 3D, its voxel spacing in mm and its intensities in Hounsfield units."""
    img = read_image(path, series_uid)
    check_ct(img, str(path))
    return img


def input_case_id(path: str | Path, series_uid: str | None = None) -> str:
    """The case id of an input image: the DICOM PatientID of a DICOM series / file (not the folder name, often
    just "CT"), else the folder name or the file name without its image suffix (``LUNG1-003_ct.nii.gz`` ->
    ``LUNG1-003_ct``)."""
    from lungai.dicom.reference import dicom_ct_header

    p = Path(path)
    ds = dicom_ct_header(p, series_uid) if p.exists() else None
    patient = str(getattr(ds, "PatientID", "") or "").strip() if ds is not None else ""
    if patient:
        return patient
    suffix = "" if p.is_dir() else _suffix(p)
    return p.name[: -len(suffix)] if suffix and p.name.lower().endswith(suffix) else p.name


def read_mask(path: str | Path, reference: sitk.Image | None = None, select: str | None = None, mapping=None,
              lungs: bool = False) -> sitk.Image:
    """Read an integer label image; with ``reference`` it must share its grid.

    A DICOM SEG file is read onto ``reference``'s grid (label value = segment number, e.g. 1 right lung and 2 left
    lung for the SEG that ``lungai lungs`` writes); an RTSTRUCT is refused with a pointer to ``--rtstruct``.

    ``path#PART`` takes one part of the file (:func:`lungai.dicom.masks.split_selector`): a SEG's segment(s) by
    label or ``role:ROLE``, a label map's label N (as a 0/1 mask; with ``lungs``: ``path#R,L``, the right and the
    left lung's labels, as 1 and 2; one label is refused).  ``select`` (a segment label or ``role:ROLE``)
    picks the segments of a SEG with several segments when no part is given; ``lungs``: the selection is a lung
    label map (1 right, 2 left; :func:`lungai.dicom.masks.select_segments`).  ``mapping``: structure name -> role
    overrides (:func:`lungai.dicom.roles.load_mapping`).
    """
    from lungai.dicom.masks import SELECTOR, split_selector

    path, part = split_selector(path)
    modality = _dicom_modality(path)
    if modality in ("SEG", "RTSTRUCT"):
        return _read_dicom_mask(path, modality, reference, part or select, mapping, lungs, chosen=part is not None)
    img = read_image(path)
    if img.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(img)
        if (arr != arr.round()).any():
            raise InputError(f"{path} holds non-integer values, so it is not a label mask",
                             "give a label map (0 = background, 1, 2, ... = structures)")
    img = sitk.Cast(img, sitk.sitkUInt16) if img.GetPixelID() != sitk.sitkUInt8 else img
    if reference is not None:
        assert_same_geometry(reference, img, what=f"mask {path.name}")
    if part is not None and lungs:
        return _lung_labels_of(img, path, part)
    if part is not None:
        labels = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(img)) if v)
        if not part.isdigit() or int(part) not in labels:
            raise InputError(f"{path.name} has no label {part!r}; its labels: {', '.join(map(str, labels)) or 'none'}",
                             f"choose one of its labels after '{SELECTOR}', e.g. {path.name}{SELECTOR}"
                             f"{labels[0] if labels else 1}")
        img = sitk.Cast(img == int(part), sitk.sitkUInt8)
    return img


def _lung_labels_of(img: sitk.Image, path: Path, part: str) -> sitk.Image:
    """``labels.nii.gz#R,L`` as a lung label map: label R -> 1 (right lung), label L -> 2 (left lung).  One label
    (``#N``) is refused: it would be taken as the right lung whatever side it is."""
    from lungai.dicom.masks import SELECTOR, lung_label_map

    labels = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(img)) if v)
    known = f"its labels: {', '.join(map(str, labels)) or 'none'}"
    fix = (f"give the right lung's label, then the left lung's: --lungs {path.name}{SELECTOR}R,L "
           f"(e.g. {path.name}{SELECTOR}3,4 for right 3 and left 4; {known})")
    parts = [q.strip() for q in part.split(",")]
    if len(parts) != 2:
        raise InputError(f"--lungs {path.name}{SELECTOR}{part}: a lung label map needs the right and the left lung, "
                         f"one label would be taken as the right lung", fix)
    bad = [q for q in parts if not q.isdigit() or int(q) not in labels]
    if bad:
        raise InputError(f"{path.name} has no label {bad[0]!r}; {known}", fix)
    right, left = (int(q) for q in parts)
    if right == left:
        raise InputError(f"--lungs {path.name}{SELECTOR}{part}: the right and the left lung have the same label", fix)
    return lung_label_map(img == right, img == left)


def _dicom_modality(p: Path) -> str | None:
    if not p.is_file() or _suffix(p) not in (".dcm", ""):
        return None
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
    except (InvalidDicomError, OSError):
        return None


def _read_dicom_mask(p: Path, modality: str, reference: sitk.Image | None, select: str | None = None, mapping=None,
                     lungs: bool = False, chosen: bool = False) -> sitk.Image:
    if modality == "RTSTRUCT":
        raise InputError(f"{p.name} is an RTSTRUCT (contours), not a mask image",
                         "give it as --rtstruct FILE and choose the structure: --structure NAME (or role:gtv, "
                         "role:lungs); mask options then take structure names")
    if reference is None:
        raise InputError(f"{p.name} is a DICOM SEG: it can only be read onto its CT's grid", "give the CT as well")
    from lungai.dicom.masks import SELECTOR, select_segments
    from lungai.dicom.seg import read_seg

    segments = read_seg(p, reference)
    if select is not None and (chosen or len(segments) > 1):
        return select_segments(segments, select, mapping, lungs, source=p.name)[0]
    labels = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    for number, mask in enumerate(segments.values(), start=1):
        arr = sitk.GetArrayViewFromImage(mask) > 0
        if (labels[arr] > 0).any():
            raise InputError(f"segments of {p.name} overlap ({', '.join(segments)}), so they cannot form one "
                             "label map",
                             f"choose the segment(s) after '{SELECTOR}': by label ({p.name}{SELECTOR}"
                             f"{next(iter(segments))}) or by role ({p.name}{SELECTOR}role:gtv); --tumour, --gtv and "
                             "--lungs take the segments of their role by themselves")
        labels[arr] = number
    img = sitk.GetImageFromArray(labels)
    img.CopyInformation(reference)
    return img


