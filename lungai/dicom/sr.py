"""Measurements as a DICOM SR "Imaging Measurement Report" (TID 1500, highdicom.sr), referencing the CT / SEG.

One measurement group per region (TID 1411, volumetric, pointing at the segment of the SEG it was measured
on: tumour volume, radiomic features) and image-level groups (TID 1501) for case results (confidence,
needs-review flag as 0/1 with each review reason as a TEXT "Review reason", RP risk) and for the dose metrics, whose TEXT "Comment" names the masks they were
computed on (the plan's RTSTRUCT contours or lungai's automatic masks; :func:`read_sr_comments`).  Concepts without a standard code (radiomic
features, MLD, V20, RP risk ...) are coded in the private scheme ``99LUNGAI`` with the column name as code
meaning and, up to 16 characters, as code value (a longer name: a stable short code, :func:`private_code`), so a
reader gets back exactly the names lungai writes in its CSV files.  A radiomic feature IBSI-1 defines (of the
original image: :func:`lungai.radiomics.ibsi.mapping.ibsi_code`) is named by its IBSI code instead (scheme ``IBSI``,
e.g. ``RNU0`` "Volume", as pyradiomics-dcm / dcmqi write them), with lungai's name of it (``original_shape_MeshVolume``,
``original_cm_joint_avg_3D_avg``: the implementation, the aggregation) as its private "Measurement Method".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lungai.errors import InputError

PRIVATE_SCHEME = "99LUNGAI"
IBSI_SCHEME = "IBSI"   # the IBSI-1 feature identifiers (4 characters, e.g. RNU0: Volume)
UNITS = {
    "ml": ("ml", "UCUM", "milliliter"), "mm": ("mm", "UCUM", "millimeter"), "Gy": ("Gy", "UCUM", "Gray"),
    "%": ("%", "UCUM", "percent"), "1": ("1", "UCUM", "no units"), "HU": ("[hnsf'U]", "UCUM", "Hounsfield unit"),
    "bit": ("bit", "UCUM", "bit"), "mm2": ("mm2", "UCUM", "square millimeter"),
    "mm3": ("mm3", "UCUM", "cubic millimeter"), "/mm": ("/mm", "UCUM", "per millimeter"),
}
# radiomic features with a unit (key of UNITS), by pyradiomics name and by lungai's IBSI tag; every other feature
# (ratios, texture, energy, entropy, skewness, kurtosis, uniformity, variance) is "1".  Variance stays "1": the
# Hounsfield unit is an arbitrary unit in UCUM, so "[hnsf'U]2" is no valid unit term.
FEATURE_UNITS = {
    "mm3": ("MeshVolume", "VoxelVolume", "morph_volume", "morph_vol_approx"),
    "mm2": ("SurfaceArea", "morph_area_mesh"),
    "mm": ("Maximum3DDiameter", "Maximum2DDiameterSlice", "Maximum2DDiameterColumn", "Maximum2DDiameterRow",
           "MajorAxisLength", "MinorAxisLength", "LeastAxisLength", "morph_diam", "morph_pca_maj_axis",
           "morph_pca_min_axis", "morph_pca_least_axis"),
    "/mm": ("SurfaceVolumeRatio", "morph_av"),
    # intensities: HU on the original CT only (a LoG / wavelet filtered image is not in HU)
    "HU": ("Minimum", "Maximum", "Mean", "Median", "10Percentile", "90Percentile", "Range", "InterquartileRange",
           "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation", "RootMeanSquared", "StandardDeviation",
           "stat_min", "stat_max", "stat_mean", "stat_median", "stat_p10", "stat_p90", "stat_range", "stat_iqr",
           "stat_mad", "stat_rmad", "stat_medad", "stat_rms", "loc_peak_loc", "loc_peak_glob"),
}
_FEATURE_UNIT = {name: unit for unit, names in FEATURE_UNITS.items() for name in names}
INTENSITY_CLASSES = ("firstorder", "localintensity", "stat", "loc")   # the classes whose "Mean", "Maximum" ... are intensities
STANDARD_CODES = {   # lungai names with a standard concept
    "volume_ml": ("118565006", "SCT", "Volume"),
}
FINDING = ("121071", "DCM", "Finding")   # the finding type of a group without a role (e.g. the whole case)
# what the bar says while an SR is written (:func:`write_sr`'s ``progress``): each measurement group built, the
# document made (highdicom: its content checked against the evidence), then saved - QA export67: a lungai cohort
# patient's SR (5 groups, 535 radiomic features) took 3 s, 7 s on a loaded machine, behind "writing DICOM SR".
# Each group's measurements are counted (SR_GROUP + SR_MEASUREMENT, :class:`lungai.progress.Counter`), the group, the
# document and the save timed while they run (:func:`lungai.progress.waiting`): QA export68, the same patient's
# "the report of 538 measurements" stood 10 s and "saving" 5 s on a loaded machine, a radiomics table of 851
# features 3 s on "measurement group 1/2" - highdicom's and pydicom's time, lungai's own (the UIDs' digest, the
# character set) ~0.3 s of it
SR_GROUP = "writing DICOM SR: measurement group {i}/{n}"
SR_MEASUREMENT = ": measurement"       # SR_GROUP + this: the count of the group's measurements
SR_GROUPING = ": grouping {m} measurement{s}"     # SR_GROUP + this: highdicom's group of them (TID 1411 / 1501) made
SR_DOCUMENT = "writing DICOM SR: the report of {n} measurement{s}"
SR_SAVING = "writing DICOM SR: saving {n} measurement{s}"


def feature_unit(image_type: str, feature_class: str, feature: str) -> str:
    """The unit (key of :data:`UNITS`) of a radiomic feature of ``lungai radiomics``' long table (:data:`FEATURE_UNITS`):
    by its pyradiomics name, or by its IBSI tag - ``--params ibsi-*`` writes the tag's family as the class and the
    rest as the feature (``morph``, ``volume``: tag ``morph_volume``; QA on LUNG1-003: every IBSI feature went into
    the SR as "1", the tumour's morph_volume 1226 and stat_mean -36 without mm3 / HU)."""
    unit = _FEATURE_UNIT.get(str(feature)) or _FEATURE_UNIT.get(f"{feature_class}_{feature}", "1")
    if unit == "HU" and (str(image_type).lower() != "original" or str(feature_class) not in INTENSITY_CLASSES):
        return "1"
    return unit


@dataclass
class MeasurementGroup:
    """Measurements of one region (``segment_number`` of the SEG) or of the whole case (``segment_number`` None)."""

    label: str
    measurements: dict = field(default_factory=dict)   # name -> (value, unit key of UNITS)
    segment_number: int | None = None
    role: str | None = None
    comment: str | None = None       # a TEXT "Comment" (DCM 121106) of the group, e.g. the masks of dose metrics
    review_reasons: list = field(default_factory=list)   # why the result needs review: one TEXT REVIEW_REASON each
    ibsi: dict = field(default_factory=dict)   # measurement name -> (IBSI code, IBSI name): its concept (IBSI_SCHEME)


COMMENT = ("121106", "DCM", "Comment")
# why a flagged result needs an expert's review (result.json's review_reasons), one TEXT item per reason: no standard
# concept, so lungai's private one - a viewer shows its meaning "Review reason" beside the text
REVIEW_REASON = ("review_reason", PRIVATE_SCHEME, "Review reason")


def _concept(triple):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=triple[0], scheme_designator=triple[1], meaning=triple[2][:64])


def _finding(role: str | None) -> tuple:
    """The finding type of a group: its role's segment type in :data:`lungai.terminology.TERMINOLOGY`
    (the code of the SEG segment it measures), else the generic DCM "Finding"."""
    from lungai.terminology import TERMINOLOGY

    code = TERMINOLOGY[role].type if role in TERMINOLOGY and role else None
    return (code.value, code.scheme, code.meaning) if code else FINDING


def private_code(name: str) -> str:
    """The code value of ``name`` in :data:`PRIVATE_SCHEME`: the name itself up to 16 characters (a Code Value, SH),
    else ``r`` + 15 hex digits of its SHA-1 - stable, and still a Code Value: a longer one is a Long Code Value,
    with which highdicom (0.28) cannot read the SR's groups (``referenced_segment``: "'CodedConcept' object has no
    attribute 'CodeValue'"; QA: every radiomic feature, ``original_shape_Elongation`` ...).  The name is the code
    meaning (LO, 64 characters: longer names are cut there)."""
    import hashlib

    return name if len(name) <= 16 else "r" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:15]


def _name(name: str):
    return _concept(STANDARD_CODES.get(name, (private_code(name), PRIVATE_SCHEME, name)))


def _private_name(code) -> str:
    """The lungai name of a private measurement concept: its code value when that is the name (up to 16 characters,
    or an SR written before :func:`private_code`, whose Long Code Value was the name), else its meaning."""
    value = str(code.value)
    return value if value == code.meaning or len(value) > 16 else str(code.meaning)


def _group_tracking_uid(series_uid: str, group: MeasurementGroup, seg) -> str:
    """The TrackingUID of ``group``: that of the SEG segment it measures (the two are one finding), else
    :func:`lungai.dicom.reference.tracking_uid` of its label and content (its measurements, comment and the SEG it
    goes with: the case results of two segmentations of one CT are two findings)."""
    from lungai.dicom.reference import content_digest, tracking_uid

    if group.segment_number is not None and seg is not None:
        for item in seg.SegmentSequence:
            if int(item.SegmentNumber) == int(group.segment_number):
                return str(item.TrackingUID) if "TrackingUID" in item else tracking_uid(
                    series_uid, group.label, content_digest(str(seg.SOPInstanceUID), int(item.SegmentNumber)))
        raise InputError(f"measurement group {group.label!r} refers to segment {group.segment_number}, which the SEG "
                         f"{seg.SOPInstanceUID} does not hold", "give the SEG whose segments the groups measure")
    content = content_digest(sorted((k, str(v)) for k, v in group.measurements.items()), str(group.comment),
                             str(seg.SOPInstanceUID) if seg is not None else "")
    return tracking_uid(series_uid, group.label, content)


def write_sr(reference, path, groups: list[MeasurementGroup], seg=None, title: str = "lungai measurements",
             series_number: int = 303, progress=None) -> Path:
    """Write ``groups`` as a Comprehensive 3D SR with TID 1500 content.

    ``seg``: the pydicom dataset (or path) of the DICOM SEG whose segments the region groups measure; without it,
    region groups reference the CT series only (TID 1501 groups).  ``progress`` (optional, :mod:`lungai.progress`):
    its text names each stage (:data:`SR_GROUP` with its measurements counted, :data:`SR_GROUPING`,
    :data:`SR_DOCUMENT`, :data:`SR_SAVING`, each timed while it runs); no step is counted (the caller's).
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from lungai import __version__
    from lungai.dicom.reference import (HIGHDICOM_CHARACTER_SET, content_digest, copy_from_ct, derived_uid,
                                        save_dataset)
    from lungai.dicom.seg import quiet_highdicom
    from lungai.progress import Counter, NullProgress, waiting

    progress = progress or NullProgress()
    if seg is not None and not isinstance(seg, pydicom.Dataset):
        seg = pydicom.dcmread(seg)
    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=derived_uid("lungai-device"), name="SlicerLungAI",
                                                       manufacturer_name="SlicerLungAI", model_name="lungai")
    context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))
    algorithm = hd.sr.AlgorithmIdentification(name="SlicerLungAI", version=__version__)
    items, count = [], 0
    for number, g in enumerate(groups, start=1):
        group = SR_GROUP.format(i=number, n=len(groups))
        counter = Counter(progress, group + SR_MEASUREMENT, len(g.measurements))
        ms = []
        for name, (value, unit) in g.measurements.items():
            counter.tick()
            if value is None or value != value:   # None / NaN: not measured
                continue
            if unit not in UNITS:
                raise InputError(f"unknown unit {unit!r} for measurement {name!r}", f"use one of {', '.join(UNITS)}")
            ibsi = g.ibsi.get(name)   # an IBSI feature: its code names it, lungai's name is the method
            ms.append(hd.sr.Measurement(name=_concept((ibsi[0], IBSI_SCHEME, ibsi[1])) if ibsi else _name(name),
                                        value=float(value), unit=_concept(UNITS[unit]), algorithm_id=algorithm,
                                        method=_name(name) if ibsi else None))
        counter.close()
        count += len(ms)
        tracking = hd.sr.TrackingIdentifier(uid=_group_tracking_uid(reference.series_uid, g, seg), identifier=g.label)
        finding = _concept(_finding(g.role))
        made = group + SR_GROUPING.format(m=len(ms), s="s" * (len(ms) != 1))
        if g.segment_number is not None and seg is not None:
            ref = hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                                          segment_number=g.segment_number,
                                          source_series=hd.sr.SourceSeriesForSegmentation(reference.series_uid))
            items.append(waiting(progress, made, hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations,
                                 tracking_identifier=tracking, referenced_segment=ref, finding_type=finding,
                                 measurements=ms or None, algorithm_id=algorithm))
        else:
            items.append(waiting(progress, made, hd.sr.MeasurementsAndQualitativeEvaluations,
                                 tracking_identifier=tracking, finding_type=finding, measurements=ms or None,
                                 algorithm_id=algorithm))
        for concept, text in [(COMMENT, g.comment)] * bool(g.comment) + [(REVIEW_REASON, r) for r in g.review_reasons]:
            # inside the group: it applies to the group's measurements
            items[-1][0].ContentSequence.append(hd.sr.TextContentItem(
                name=_concept(concept), value=str(text), relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    def document():
        report = hd.sr.MeasurementReport(observation_context=context,
                                         procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
                                         imaging_measurements=items, title=codes.DCM.ImagingMeasurementReport)
        evidence = list(reference.datasets) + ([seg] if seg is not None else [])
        # the UIDs follow the whole report (values, findings, comments, the SEG segments it references) and evidence
        sop_uid = derived_uid(reference.series_uid, "sr", title,
                              content_digest(report, [seg.SOPInstanceUID] if seg is not None else []),
                              str(series_number))
        with quiet_highdicom():
            return hd.sr.Comprehensive3DSR(
                evidence=evidence, content=report, series_instance_uid=derived_uid(sop_uid, "series"),
                series_number=series_number, sop_instance_uid=sop_uid, instance_number=1, manufacturer="SlicerLungAI",
                series_description=title, specific_character_set=HIGHDICOM_CHARACTER_SET)   # the CT's: copy_from_ct

    sr = waiting(progress, SR_DOCUMENT.format(n=count, s="s" * (count != 1)), document)
    # the file is written whole before a Ctrl-C / Cancel is raised: save_dataset's own clean-up runs (no partial file)
    return waiting(progress, SR_SAVING.format(n=count, s="s" * (count != 1)), save_dataset,
                   copy_from_ct(sr, reference.first), path, finish_on_stop=True)


def _measurement_name(m) -> str:
    """lungai's name of a measurement of an SR written by :func:`write_sr`: an IBSI feature's method (its name in
    lungai's CSV files), a private concept's name, else the concept's meaning."""
    method = m.method if m.name.scheme_designator == IBSI_SCHEME else None
    if method is not None and method.scheme_designator == PRIVATE_SCHEME:
        return _private_name(method)
    return _private_name(m.name) if m.name.scheme_designator == PRIVATE_SCHEME else str(m.name.meaning)


def read_sr(path) -> dict[str, dict[str, tuple[float, str]]]:
    """{group label: {measurement name: (value, unit code)}} from an SR written by :func:`write_sr` (or any TID 1500)."""
    import highdicom as hd

    sr = hd.sr.srread(path)
    out: dict = {}
    for getter in ("get_volumetric_roi_measurement_groups", "get_image_measurement_groups"):
        for group in getattr(sr.content, getter)():
            label = str(group.tracking_identifier)
            for m in group.get_measurements():
                out.setdefault(label, {})[_measurement_name(m)] = (float(m.value), str(m.unit.value))
    return out


def _read_texts(path, concept) -> dict[str, list[str]]:
    """{group label: [its TEXT items of ``concept``, in order]} of an SR written by :func:`write_sr`."""
    import highdicom as hd

    sr = hd.sr.srread(path)
    out: dict = {}
    for getter in ("get_volumetric_roi_measurement_groups", "get_image_measurement_groups"):
        for group in getattr(sr.content, getter)():
            for item in group[0].ContentSequence:
                name = item.ConceptNameCodeSequence[0]
                if item.ValueType == "TEXT" and (name.CodeValue, name.CodingSchemeDesignator) == concept[:2]:
                    out.setdefault(str(group.tracking_identifier), []).append(str(item.TextValue))
    return out


def read_sr_comments(path) -> dict[str, str]:
    """{group label: comment} of the groups with a TEXT "Comment" in an SR written by :func:`write_sr`."""
    return {label: texts[-1] for label, texts in _read_texts(path, COMMENT).items()}


def read_sr_review_reasons(path) -> dict[str, list[str]]:
    """{group label: [review reasons]} of the groups of a flagged result in an SR written by :func:`write_sr`."""
    return _read_texts(path, REVIEW_REASON)
