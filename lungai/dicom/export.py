"""Results as DICOM beside the NIfTI outputs, when the CT came as a DICOM series.

- lungs (``lungai lungs``): ``<stem>.seg.dcm`` (segments "Right lung", "Left lung") and ``<stem>.rtstruct.dcm``
  (Lung_R, Lung_L) next to the label map;
- tumour (``lungai segment``): ``tumor.seg.dcm``, ``rtstruct.dcm`` (GTVp), ``uncertainty.pm.dcm`` (Parametric Map
  of the predictive entropy, bits) and ``measurements.sr.dcm`` (TID 1500: volume, confidence, needs review, and
  whatever else is given: features, dose metrics, RP risk).

All reference the source CT's Study / Series / Frame of Reference / SOP Instance UIDs (see
:mod:`lungai.dicom.reference`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.dicom.reference import CTReference, check_output_folder, ct_reference

LUNG_SEGMENTS = {"Right lung": ("lung_right", "Lung_R", 1), "Left lung": ("lung_left", "Lung_L", 2)}
TUMOUR_SEGMENT, TUMOUR_STRUCTURE = "Tumour", "GTVp"


def reference_for(ct_path, ct: sitk.Image, series_uid: str | None = None) -> CTReference:
    """The CT series' headers for a CT read from a DICOM folder (checked against the image)."""
    return ct_reference(ct_path, series_uid=series_uid, image=ct)


def _binary(arr: np.ndarray, reference_img: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.CopyInformation(reference_img)
    return img


def export_lungs(reference: CTReference, labels: sitk.Image, stem) -> list[Path]:
    """Lung label map (1 right, 2 left) -> ``<stem>.seg.dcm`` and ``<stem>.rtstruct.dcm``."""
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import write_seg

    stem = Path(stem)
    check_output_folder(stem.parent, reference)
    arr = sitk.GetArrayViewFromImage(labels)
    masks = {label: _binary(arr == value, labels) for label, (_, _, value) in LUNG_SEGMENTS.items()
             if (arr == value).any()}
    if not masks:
        return []
    roles = {label: LUNG_SEGMENTS[label][0] for label in masks}
    seg = write_seg(masks, reference, stem.with_name(stem.name + ".seg.dcm"), roles=roles,
                    description="lungai lungs")
    rt = write_rtstruct({LUNG_SEGMENTS[label][1]: m for label, m in masks.items()}, reference,
                        stem.with_name(stem.name + ".rtstruct.dcm"), label="lungai lungs")
    return [seg, rt]


def tumour_groups(info: dict, features: dict | None = None, dose: dict | None = None,
                  rp: dict | None = None) -> list:
    """Measurement groups for the SR: the tumour segment's volume (+ features) and the case results."""
    from lungai.dicom.sr import MeasurementGroup

    tumour = {"tumor_volume_ml": (info.get("tumor_volume_ml"), "ml")}
    for name, value in (features or {}).items():
        tumour[name] = (value, "1")
    case = {"confidence": (info.get("confidence"), "1"),
            "needs_review": (float(bool(info.get("needs_review"))) if "needs_review" in info else None, "1"),
            "review_threshold": (info.get("review_threshold"), "1")}
    units = {"gy": "Gy", "pct": "%"}
    for name, value in (dose or {}).items():
        if isinstance(value, (int, float)) and name.startswith("dose_"):
            case[name] = (value, units.get(name.rsplit("_", 1)[-1], "1"))
    for name in ("risk", "risk_low", "risk_high"):
        if rp and rp.get(name) is not None:
            case[f"rp_{name}"] = (rp[name], "1")
    return [MeasurementGroup(TUMOUR_SEGMENT, tumour, segment_number=1, role="gtv"),
            MeasurementGroup("Case", case)]


def export_tumour(reference: CTReference, tumour: sitk.Image, out_dir, uncertainty: sitk.Image | None = None,
                  info: dict | None = None, features: dict | None = None, dose: dict | None = None,
                  rp: dict | None = None) -> list[Path]:
    """Tumour mask (+ uncertainty map, + measurements) as SEG, RTSTRUCT, Parametric Map and SR in ``out_dir``."""
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import write_sr

    out = Path(out_dir)
    check_output_folder(out, reference)
    written = []
    mask = sitk.Cast(tumour > 0, sitk.sitkUInt8)
    has_tumour = bool(sitk.GetArrayViewFromImage(mask).any())
    seg_path = None
    if has_tumour:
        seg_path = write_seg({TUMOUR_SEGMENT: mask}, reference, out / "tumor.seg.dcm", roles={TUMOUR_SEGMENT: "gtv"},
                             description="lungai tumour")
        written += [seg_path, write_rtstruct({TUMOUR_STRUCTURE: mask}, reference, out / "rtstruct.dcm",
                                             label="lungai tumour")]
    if uncertainty is not None:
        written.append(write_parametric_map(uncertainty, reference, out / "uncertainty.pm.dcm"))
    if info is not None:
        groups = tumour_groups(info, features, dose, rp)
        if not has_tumour:
            groups = groups[1:]
        written.append(write_sr(reference, out / "measurements.sr.dcm", groups, seg=seg_path))
    return written
