"""DICOM SEG (highdicom): write tumour / lung masks with Slicer's terminology codes, read SEGs onto a CT grid.

The segment codes (category / type / laterality modifier per role) come from the one terminology
table, :data:`lungai.terminology.TERMINOLOGY` - the same codes the Slicer segments are tagged with.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError, InputNote
from lungai.terminology import TERMINOLOGY, code_role, colour_of, sct_value


def _code(code):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


# how a segment was made, in the words of both SEG (SegmentAlgorithmType) and RTSTRUCT (ROIGenerationAlgorithm):
# AUTOMATIC (by SlicerLungAI: `lungai segment` / `lungai lungs`) only when the caller knows it; SEMIAUTOMATIC
# ("calculated segmentation with user assistance"): SlicerLungAI's, edited since by the user (the Slicer export knows
# it: lungai.scene.nodes.segment_edited); else MANUAL (the user's)
AUTOMATIC, SEMIAUTOMATIC, MANUAL = "AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"
# what the bar says while a SEG is written (:func:`write_seg`'s ``progress``): the frames built (highdicom), then
# saved - QA export67: a lungai cohort patient's SEG (GTVs and both lungs) took 3.5 s, 5.5 s on a loaded machine,
# behind "writing DICOM SEG"
# the segments' slices taken from the masks and digested for the UIDs before it (QA exportfollow70: 0.9 s of
# `lungai segment` on LUNG1-003's DICOM CT with no line, highdicom's import with it; 3.9 s on a loaded machine)
SEG_SEGMENTS = "writing DICOM SEG: the slices of {n} segment{s}"
SEG_FRAMES = "writing DICOM SEG: the frames of {n} segment{s}"
SEG_SAVING = "writing DICOM SEG: saving {frames} frame{s}"


def generation_by(made_by: str | None, edited: bool = False) -> str:
    """The one rule of a mask's generation: AUTOMATIC when a lungai command made it (``made_by``: that command, as
    the segment's :data:`lungai.scene.nodes.MADE_BY_TAG` or the output marker beside the file records it, e.g.
    :func:`lungai.dicom.export.lungs_made_by`) - SEMIAUTOMATIC when it was ``edited`` since (a Slicer segment whose
    outline changed after Lung AI Segmentation: the expert's correction of SlicerLungAI's contour) -, MANUAL (the
    user's) for anything else: drawn, of unknown origin, or a file edited since (its marker no longer vouches for
    it)."""
    if not made_by:
        return MANUAL
    return SEMIAUTOMATIC if edited else AUTOMATIC


# the SeriesNumber of lungai's DICOM objects, per command / content (deterministic; docs/dicom.md): the lungs of
# `lungai lungs`, the tumour of `lungai segment`, a `dicom-export` and a Slicer export are told apart in a DICOM
# browser (QA: every SEG was series 300 and every RTSTRUCT 301, whatever wrote it)
SERIES_NUMBERS = {"dicom-export": {"seg": 300, "rtstruct": 301, "pm": 302, "sr": 303},
                  "segment": {"seg": 310, "rtstruct": 311, "pm": 312, "sr": 313},
                  "lungs": {"seg": 320, "rtstruct": 321},
                  "slicer": {"seg": 330, "rtstruct": 331}}


def generation_of(generation: dict | None, name: str) -> str:
    """AUTOMATIC / SEMIAUTOMATIC when ``generation`` ({segment / structure name: AUTOMATIC, SEMIAUTOMATIC or MANUAL})
    says so, else MANUAL: a mask of unknown origin is never claimed to be SlicerLungAI's."""
    value = (generation or {}).get(name, MANUAL)
    if value not in (AUTOMATIC, SEMIAUTOMATIC, MANUAL):
        raise ValueError(f"generation of {name!r} is {value!r}, not {AUTOMATIC!r}, {SEMIAUTOMATIC!r} or {MANUAL!r}")
    return value


# the roles SlicerLungAI's neural network segments (the tumour); its lungs are classical image processing
# (thresholds, region growing, morphology: docs/lungs.md), no trained model
AI_ROLES = ("gtv", "gtv_primary", "gtv_node")


def algorithm_family(role: str):
    """The Algorithm Family Code (CID 7162) of the segments of ``role`` SlicerLungAI makes: Artificial Intelligence for
    the tumour (a neural network), Morphological Operations for the lungs (QA: the lungs' SEG said Artificial
    Intelligence, while no trained model makes them)."""
    from pydicom.sr.codedict import codes

    return codes.cid7162.ArtificialIntelligence if role in AI_ROLES else codes.cid7162.MorphologicalOperations


def _algorithm(role: str):
    from highdicom import AlgorithmIdentificationSequence

    from lungai import __version__

    return AlgorithmIdentificationSequence(name="SlicerLungAI", version=__version__, family=algorithm_family(role))


def segment_description(number: int, label: str, role: str, generation: str = MANUAL, series_uid: str = "",
                        content: str = ""):
    """A highdicom SegmentDescription with the terminology of ``role`` (:data:`lungai.terminology.TERMINOLOGY`);
    ``generation`` AUTOMATIC: made by SlicerLungAI (its algorithm identification), SEMIAUTOMATIC: SlicerLungAI's
    edited by the user (the algorithm identification too, as DICOM requires), MANUAL: the user's (none).
    Its TrackingUID: :func:`lungai.dicom.reference.tracking_uid` of the CT series ``series_uid``, ``label`` and
    ``content`` (the digest of the segment's voxels: another lesion of the same label is another finding; the SR
    group of the segment takes the same one)."""
    import highdicom as hd
    from pydicom.sequence import Sequence

    from lungai.dicom.reference import tracking_uid

    if role not in TERMINOLOGY:
        raise InputError(f"no DICOM terminology for segment {label!r} (role {role!r})",
                         f"use one of the roles {', '.join(r for r in TERMINOLOGY if r)}")
    term = TERMINOLOGY[role]
    category, kind, modifier = term.category, term.type, term.modifier
    r, g, b = colour_of(role)
    desc = hd.seg.SegmentDescription(
        segment_number=number, segment_label=label, segmented_property_category=_code(category),
        segmented_property_type=_code(kind), algorithm_type=hd.seg.SegmentAlgorithmTypeValues[generation],
        algorithm_identification=_algorithm(role) if generation != MANUAL else None, tracking_id=label,
        tracking_uid=tracking_uid(series_uid, label, content),
        display_color=hd.color.CIELabColor.from_rgb(r, g, b))
    if modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = Sequence([_code(modifier)])
    return desc


LO_LENGTH = 64     # SegmentDescription is LO: at most 64 characters


def short_description(note: str, full_in: str | None = "SR") -> str:
    """``note`` as a SegmentDescription (LO, :data:`LO_LENGTH` characters): as it is when it fits, else cut at a
    reason ("; ") or word boundary and ended with "..." and where the whole text is (``full_in``: " (see SR)"; left
    out when it would cost the first reason its end), so a PACS user sees that it goes on and where.  QA on
    LUNG1-003 (seed point off the tumour): "needs review: confidence below the review threshold; the tumo..." - cut
    mid-word, the second reason ("the tumour mask lies away from the seed point") lost without a sign of it."""
    note = " ".join(str(note).split())
    if len(note) <= LO_LENGTH:
        return note
    first = note.split("; ")[0]

    def cut(tail: str) -> str:
        room = LO_LENGTH - len(tail) - 1        # " " before the tail
        at = note.rfind("; ", 0, room + 2)      # the text kept ends where a reason ends (at <= room) ...
        if at < len(first):                     # ... or, when no whole reason fits, where a word ends
            at = note.rfind(" ", 0, room + 1)
        return (note[:at] if at > 0 else note[:room]).rstrip(" ;:,") + " " + tail

    tails = ([f"... (see {full_in})"] if full_in else []) + ["..."]
    return next((cut(t) for t in tails if len(cut(t)) - len(t) - 1 >= len(first)), cut(tails[0]))


def mask_slab(array: np.ndarray) -> tuple[int, np.ndarray]:
    """(the first slice, the 0/1 (bool) slices from it to the last) of the voxels of ``array`` (slices first) above
    0: the mask is 0 outside them; (0, no slices) for an empty mask.  Each slice's maximum tells whether it holds the
    mask (no whole-array 0/1 copy: :func:`write_seg`)."""
    flat = array.reshape(array.shape[0], -1)
    held = flat.max(axis=1) > 0 if array.dtype.kind in "biu" and flat.shape[1] else (flat > 0).any(axis=1)
    slices = np.flatnonzero(held)
    if not slices.size:
        return 0, np.zeros((0,) + array.shape[1:], dtype=bool)
    start, stop = int(slices[0]), int(slices[-1]) + 1
    return start, array[start:stop] > 0


def write_seg(masks: dict, reference, path, roles: dict | None = None, description: str = "lungai segmentation",
              series_number: int = SERIES_NUMBERS["dicom-export"]["seg"], generation: dict | None = None,
              notes: dict | None = None, notes_full_in: str | None = None, progress=None) -> Path:
    """Write {label: uint8 mask on the reference CT's grid} as one DICOM SEG (binary, one segment per mask).

    ``notes``: {label: text} for the segment's SegmentDescription (LO: a longer one is cut, visibly, by
    :func:`short_description`), e.g. :func:`lungai.dicom.export.review_text` of a flagged result;
    ``notes_full_in``: the object written beside the SEG that holds the whole text ("SR": the review reasons of the
    SR's Case group; "RTSTRUCT": the ROI's ROIObservationDescription; None: none), named where the text is cut.

    ``roles``: {label: role} for the terminology (default: the label's role from :mod:`lungai.dicom.roles`).
    ``generation``: {label: AUTOMATIC} for the segments SlicerLungAI made; the others are MANUAL
    (:func:`generation_of`).  ``series_number``: the writing command's (:data:`SERIES_NUMBERS`).
    ``progress`` (optional, :mod:`lungai.progress`): its text names each stage (:data:`SEG_FRAMES`,
    :data:`SEG_SAVING`; :data:`SEG_SEGMENTS` and :data:`SEG_FRAMES` say their seconds while they run); no step is
    counted (the caller's).
    """
    from lungai import __version__
    from lungai.dicom.reference import (HIGHDICOM_CHARACTER_SET, copy_from_ct, derived_uid, orthonormalise_frames,
                                        save_dataset, series_slice_spacing, stable_dimension_uid)

    from lungai.dicom.labels import check_export_labels
    from lungai.progress import NullProgress, waiting

    progress = progress or NullProgress()
    if not masks:
        raise InputError("no segments to write", "give at least one mask")
    check_export_labels(masks)      # read back by label: two of one name would be one (its reader refuses them)
    # the segments' frames, each mask's slices that hold it written into the zeros (QA exportfollow67: a whole-CT 0/1
    # copy of each mask, each digested, then all stacked into one more - seconds of a loaded machine before highdicom
    # on 3 GTVs and 2 lungs); each segment's voxels lie together in memory (segments first), handed to highdicom as
    # the (slices, rows, columns, segments) it takes (a view, the same values): its overlap check summed over the
    # segments, 2-4 s of a loaded machine over the last, 3 bytes wide axis (QA export69, LUNG1-003's tumour and lungs;
    # 0.6-1.3 s then; now not made: segments_overlap below), and each frame it writes is one segment's plane
    # run beside the bar, which says its seconds (SEG_SEGMENTS)
    def segments():
        import highdicom  # noqa: F401 - imported here (a process's first SEG: 0.2-0.5 s), said with the slices

        layers, pixels, spans, descriptions, sop_uid = _segment_layers(
            masks, reference, roles, generation, notes, notes_full_in, description, series_number)
        # whether two segments share a voxel (SegmentsOverlap), from each segment's slices: highdicom's own check sums
        # the (slices, rows, columns, segments) array over its segments into a whole-CT int64 array, 1.0-2.5 s of a
        # loaded machine on LUNG1-003's 2 lungs or GTV and lungs (QA lungs70; 0.04-0.09 s so), the same value
        return pixels, descriptions, sop_uid, segments_overlap(layers, spans)

    s = "s" * (len(masks) != 1)
    pixels, descriptions, sop_uid, overlap = waiting(progress, SEG_SEGMENTS.format(n=len(masks), s=s), segments)

    def frames():
        import highdicom as hd

        with quiet_highdicom():
            return _segmentation_with_overlap(pixels, overlap)(
                source_images=reference.datasets, pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions, series_instance_uid=derived_uid(sop_uid, "series"),
                series_number=series_number, sop_instance_uid=sop_uid, instance_number=1, manufacturer="SlicerLungAI",
                manufacturer_model_name="lungai", software_versions=__version__, device_serial_number="0",
                series_description=description, content_label="LUNGAI", content_description=description[:64],
                specific_character_set=HIGHDICOM_CHARACTER_SET)   # the CT's own: copy_from_ct

    # one call of highdicom, run beside the bar, which says its seconds (QA seg68: `lungai segment` on LUNG1-003's
    # DICOM CT, one tumour: "the frames of 1 segment" stood 5.4 s of a loaded machine)
    seg = waiting(progress, SEG_FRAMES.format(n=len(masks), s=s), frames)
    orthonormalise_frames(seg, series_slice_spacing(reference))    # the CT's direction and spacing as ITK reads them
    stable_dimension_uid(seg, sop_uid)
    progress.update(0, SEG_SAVING.format(frames=int(seg.NumberOfFrames), s="s" * (int(seg.NumberOfFrames) != 1)))
    return save_dataset(copy_from_ct(seg, reference.first), path)


def _segment_layers(masks: dict, reference, roles, generation, notes, notes_full_in, description, series_number):
    """:func:`write_seg`'s segments: (their bool layers, segments first; those as highdicom's (slices, rows, columns,
    segments) pixels - a view -; each one's (first, end) slice; their descriptions; the SEG's SOP Instance UID)."""
    from lungai.dicom.reference import Slab, check_on_grid, content_digest, derived_uid
    from lungai.dicom.roles import structure_role

    layers, descriptions, spans = None, [], []
    for number, (label, mask) in enumerate(masks.items(), start=1):
        check_on_grid(mask, reference, what=f"mask {label!r}")
        role = (roles or {}).get(label) or structure_role(label)
        view = sitk.GetArrayViewFromImage(mask)     # the caller's image, alive through the loop
        if layers is None:
            layers = np.zeros((len(masks),) + view.shape, dtype=bool)
        start, values = mask_slab(view)
        layers[number - 1, start:start + len(values)] = values
        spans.append((start, start + len(values)))
        descriptions.append(segment_description(number, label, role, generation_of(generation, label),
                                                series_uid=reference.series_uid,
                                                content=content_digest(Slab(values, start, view.shape))))
        note = (notes or {}).get(label)
        if note:
            descriptions[-1].SegmentDescription = short_description(note, notes_full_in)
    # the UIDs follow everything the SEG says (pixels, and each segment's label, terminology, colour, algorithm
    # type / name: the same mask as lungai's AUTOMATIC result and as the user's MANUAL one are two objects)
    pixels = np.moveaxis(layers, 0, -1)     # (slices, rows, columns, segments): digested as such, slice by slice
    sop_uid = derived_uid(reference.series_uid, "seg", description, content_digest(pixels, descriptions), *masks,
                          str(series_number))
    return layers, pixels, spans, descriptions, sop_uid


def segments_overlap(layers: np.ndarray, spans=None, block: int = 8) -> bool:
    """Whether a voxel lies in two of the segments ``layers`` (bool, segments first: ``write_seg``'s frames);
    ``spans``: each segment's (first, end) slice, outside of which it is empty (the whole array when None).  What
    highdicom's SegmentsOverlap check finds (YES / NO), without its sum of every voxel over the segments into a
    whole-CT int64 array: the segments are counted ``block`` slices at a time (a few MB), on the slices where two
    or more of them lie, in uint8 (at most 255 segments in one SEG here: more are counted in a wider type)."""
    n = len(layers)
    spans = list(spans) if spans is not None else [(0, layers.shape[1])] * n
    if n < 2:
        return False
    dtype = np.uint8 if n < 256 else np.uint16
    for k0 in range(0, layers.shape[1], block):
        k1 = min(k0 + block, layers.shape[1])
        present = [(i, max(s, k0), min(e, k1)) for i, (s, e) in enumerate(spans) if s < k1 and e > k0]
        if len(present) < 2:
            continue
        count = np.zeros((k1 - k0,) + layers.shape[2:], dtype=dtype)
        for i, a, b in present:
            count[a - k0:b - k0] += layers[i, a:b]
        if (count > 1).any():
            return True
    return False


def _segmentation_with_overlap(pixels: np.ndarray, overlap: bool):
    """highdicom's Segmentation whose SegmentsOverlap of the BINARY bool frames ``pixels`` (slices, rows, columns,
    segments) is ``overlap`` (:func:`segments_overlap`), not summed again over every voxel; any other pixel array is
    checked by highdicom as always.  The check highdicom makes on such an array is that value alone: its pixel
    array is returned as it is (no cast), its other checks (a segment per described segment, values 0/1) hold by
    how ``write_seg`` builds it.  The SEG written is the same (Testing/test_dicom_seg_overlap.py)."""
    import highdicom as hd

    class Segmentation(hd.seg.Segmentation):
        @classmethod
        def _check_and_cast_pixel_array(cls, pixel_array, segment_numbers, segmentation_type, dtype):
            if (pixel_array is pixels and pixels.ndim == 4 and pixels.dtype == bool
                    and pixels.shape[-1] == len(segment_numbers)
                    and segmentation_type == hd.seg.SegmentationTypeValues.BINARY):
                return pixel_array, (hd.seg.SegmentsOverlapValues.YES if overlap else hd.seg.SegmentsOverlapValues.NO)
            return super()._check_and_cast_pixel_array(pixel_array, segment_numbers, segmentation_type, dtype)

    return Segmentation


@contextlib.contextmanager
def quiet_highdicom():
    """highdicom warns about single-component patient names ("LUNG1-003"), common in anonymised exports."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        yield


# a FRACTIONAL SEG's voxel is in its segment where the fraction (stored value / MaximumFractionalValue) is at least
# this: the usual convention (a probability or partial-volume map cut at one half)
FRACTIONAL_THRESHOLD = 0.5


def segments_of(ds) -> list:
    """The segment descriptions (SegmentSequence items) of the SEG ``ds`` (a pydicom dataset or highdicom
    Segmentation), a LABELMAP SEG's background left out: its segment number 0 (DICOM's LABELMAP segmentation type,
    as highdicom writes it: pixel value 0, "Background") is no structure.  QA seginput64: a LABELMAP SEG of
    LUNG1-003's GTV and lungs was refused, "segment 'Background' (number 0) ... could not be read as a volume"."""
    return [d for d in ds.get("SegmentSequence", []) if int(getattr(d, "SegmentNumber", 1)) != 0]


def _refuse_repeated_labels(seg, p) -> None:
    """Refuse a SEG in which two segments have one label (:func:`lungai.dicom.labels.label_key`: the spaces around it
    stripped): read by label, the last one would replace the others without a word (QA: two "GTV" segments gave the
    second one's volume, not the union).  A SEG is read whole (its segments are chosen by label or role afterwards),
    so such a label is refused whichever segment is chosen.  Labels that differ only in letter case ("GTV" and
    "gtv") are two labels: refused only when a choice by name cannot tell them apart
    (:func:`lungai.dicom.labels.check_case_groups`, in :func:`lungai.dicom.masks.select_segments`)."""
    from lungai.dicom.labels import label_key, repeated_labels

    descs = segments_of(seg)
    for same in repeated_labels(d.SegmentLabel for d in descs):
        raise InputError(
            f"{p} holds {len(same)} segments labelled {label_key(descs[same[0]].SegmentLabel)!r} (segment "
            f"numbers {', '.join(str(int(descs[i].SegmentNumber)) for i in same)}): read by label, one would "
            "replace the other",
            "give each segment its own label (e.g. GTV-1, GTV-2; 3D Slicer: rename the segments in the Segment "
            "Editor) and export the SEG again")


def seg_segment_labels(path) -> list[str] | None:
    """The SegmentLabels (stripped, as :func:`read_seg` names them) of the DICOM SEG ``path`` (``FILE#PART``: its
    file), read from its header only; None when it is not a readable SEG (a NIfTI label map ...).  pydicom is imported
    for a file that may be DICOM only: a manifest of NIfTI masks drew ``lungai radiomics-batch``'s first bar after it."""
    from lungai.dicom.masks import split_selector

    p = Path(split_selector(path)[0])
    if not p.is_file() or p.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")):
        return None
    import pydicom

    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not DICOM, unreadable: not a SEG
        return None
    if str(ds.get("Modality", "")) != "SEG":
        return None
    from lungai.dicom.labels import label_key

    return [label_key(getattr(s, "SegmentLabel", "") or "") for s in segments_of(ds)]


_GTV_WORDS = {"gtv": "tumour (GTV)", "gtv_primary": "primary tumour (GTV)"}


def _sct(item) -> str | None:
    """The SNOMED CT code value of a code sequence item (SCT, or SRT: :func:`lungai.terminology.sct_value`), else
    None."""
    return sct_value(getattr(item, "CodingSchemeDesignator", ""), getattr(item, "CodeValue", ""))


def seg_code_roles(path) -> dict[str, str]:
    """{SegmentLabel (stripped, as :func:`read_seg` names it): role} of the segments of the DICOM SEG ``path``
    (``FILE#PART``: its file) whose SegmentedPropertyTypeCodeSequence (with its modifier, the laterality) is one of
    :data:`lungai.terminology.CODE_ROLES` (the one code table, that of Slicer segments' terminology too); read from the
    header only.  {} for a file that is not a readable SEG."""
    import pydicom

    from lungai.dicom.labels import label_key
    from lungai.dicom.masks import split_selector

    if seg_segment_labels(path) is None:
        return {}
    ds = pydicom.dcmread(split_selector(path)[0], stop_before_pixels=True)
    out = {}
    for desc in segments_of(ds):
        kind = (desc.get("SegmentedPropertyTypeCodeSequence") or [None])[0]
        if kind is None:
            continue
        modifier = (kind.get("SegmentedPropertyTypeModifierCodeSequence") or [None])[0]
        role = code_role(_sct(kind), _sct(modifier) if modifier is not None else None)
        if role:
            out[label_key(getattr(desc, "SegmentLabel", "") or "")] = role
    return out


def with_code_roles(path, labels, mapping=None, note: bool = False, name: str | None = None) -> dict | None:
    """``mapping`` (a ``--structure-map``: None, a dict or its file) with the role of each of ``labels`` (the SEG's
    SegmentLabels) that has none by its label (:func:`lungai.dicom.roles.structure_role`, the map's line first) but
    one by its terminology codes (:func:`seg_code_roles`): a SEG whose segments are labelled "Segment_1", "Segment_2"
    (3D Slicer's default names, many tools' export) but coded as a primary neoplasm and the right lung gives its
    tumour and lungs by role, as a "GTV-1" / "Lung_R" would.  A label's own role, or the map's, is never replaced.
    ``note``: say which segments took their role from their codes (an :class:`lungai.errors.InputNote`), naming the
    SEG ``name`` (by default ``path``'s file as typed, a manifest's cell as written: :func:`lungai.dicom.masks.as_typed`).
    Returns ``mapping`` itself when no role comes from the codes."""
    from lungai.dicom.roles import ROLE_WORDS, load_mapping, normalise, structure_role

    user = load_mapping(mapping)
    coded = {label: role for label, role in seg_code_roles(path).items()
             if label in labels and normalise(label) not in user and structure_role(label) is None}
    if not coded:
        return mapping
    if note:
        from lungai.dicom.masks import as_typed, typed_file

        many = len(coded) > 1
        warnings.warn(f"{as_typed(typed_file(path)) if name is None else name}: segment{'s' if many else ''} "
                      + ", ".join(f"{label!r} as the {ROLE_WORDS.get(role) or _GTV_WORDS[role]}"
                                  for label, role in coded.items())
                      + f", by {'their' if many else 'its'} segment terminology (SNOMED CT code): "
                      f"{'their labels name' if many else 'its label names'} no role",
                      InputNote, stacklevel=3)
    return {**{normalise(label): role for label, role in coded.items()}, **user}


def _pixel_spacing(ds) -> tuple | None:
    """A SEG's in-plane pixel spacing (row, column mm): its shared PixelMeasures, else its first frame's."""
    for groups in (ds.get("SharedFunctionalGroupsSequence"), ds.get("PerFrameFunctionalGroupsSequence")):
        try:
            return tuple(float(v) for v in groups[0].PixelMeasuresSequence[0].PixelSpacing)
        except (AttributeError, IndexError, TypeError, KeyError):
            continue
    return None


def _drawn_on(ds, reference_ct: sitk.Image) -> tuple[list[str], str | None]:
    """(the CT series the SEG ``ds`` references, its ReferencedSeriesSequence; the SeriesInstanceUID of the CT
    ``reference_ct``, None when it carries none: not read from DICOM)."""
    referenced = [str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in s]
    series = reference_ct.GetMetaData("0020|000e").strip() if reference_ct.HasMetaDataKey("0020|000e") else None
    return referenced, series


def _warn_other_series(name: str, ds, reference_ct: sitk.Image) -> None:
    """A SEG in the CT's frame of reference and on its voxels, but drawn on another CT series (its
    ReferencedSeriesSequence): read onto this CT as it lies, with a note (:class:`lungai.errors.InputNote`) naming
    both series and what to check - the user may have paired this CT with the SEG of another one (another
    reconstruction of the same scan, a later CT registered to it), whose segments need not fit this CT's anatomy.
    The RTSTRUCT's reader says the same of a structure set (:func:`lungai.dicom.rtstruct.read_rtstruct`).  QA
    seginput64: such a SEG was read without a word."""
    referenced, series = _drawn_on(ds, reference_ct)
    if not series or not referenced or series in referenced:
        return
    warnings.warn(f"the SEG {name} was drawn on CT series {', '.join(referenced)} (its referenced series), not on "
                  f"the CT given, series {series}: the same frame of reference and voxel grid, so its segments are "
                  "read onto this CT as they lie; check that it is this CT's SEG (the SEG of another reconstruction "
                  "or a later CT of the patient need not fit this CT's anatomy; `lungai dicom-scan FOLDER` pairs "
                  "each SEG with the CT series it references)", InputNote, stacklevel=4)


def _off_grid_error(p, ds, desc, reference_ct: sitk.Image, exc) -> InputError:
    """Why a SEG's segment (in the CT's frame of reference) cannot be read onto the CT's voxels, in the words of
    both grids - the SEG's frames (Rows x Columns, PixelSpacing) against the CT's slices - and the CT series the SEG
    was drawn on when it is another one, with how to resample it; not highdicom's bare "Non-integer scale factor
    required." (QA seglungs63: LUNG1-003's lungs as a SEG of 256 x 256 pixels of 1.95 mm on a CT of 512 x 512 of
    0.977 mm)."""
    size, spacing = reference_ct.GetSize(), reference_ct.GetSpacing()
    theirs = _pixel_spacing(ds)
    same = ("Rows" in ds and "Columns" in ds and (int(ds.Columns), int(ds.Rows)) == tuple(size[:2]) and theirs
            and np.allclose((theirs[1], theirs[0]), spacing[:2], atol=1e-3))
    grids = (f": its frames are {int(ds.Columns)} x {int(ds.Rows)} pixels"
             + (f" of {theirs[1]:.4g} x {theirs[0]:.4g} mm" if theirs else "")
             + f", the CT's slices {size[0]} x {size[1]} of {spacing[0]:.4g} x {spacing[1]:.4g} mm"
             if "Rows" in ds and "Columns" in ds and not same else
             f": its frames lie off the CT's slices or pixel centres ({exc})")
    referenced, series = _drawn_on(ds, reference_ct)
    drawn = (f"; the SEG was drawn on the CT series {', '.join(referenced)} (same frame of reference), not on this "
             f"CT's series {series}" if series and referenced and series not in referenced else "")
    return InputError(f"segment {str(desc.SegmentLabel).strip()!r} of {p} is not on the CT's voxel grid{grids}{drawn}",
                      "give the SEG made on this CT series (same frame of reference, same slices and pixels), or "
                      "resample the segmentation onto this CT (3D Slicer: load both, Segmentations > Export to "
                      "labelmap with this CT as the reference volume, then export a DICOM SEG of this CT)")


SEG_TRUNCATED_FIX = ("export the SEG again (3D Slicer, the PACS or the tool that made it), or copy it again, and give "
                     "that")


def read_seg(path, reference_ct: sitk.Image, name: str | None = None) -> dict[str, sitk.Image]:
    """Segment label -> uint8 mask on ``reference_ct``'s grid (:func:`_read_seg`), the SEG read once for this CT
    in a :func:`lungai.dicom.once.read_once` block (every command's; the file as it is now): one SEG given to
    several mask options (``dicom-export --tumour SEG --lungs SEG``, ``radiomics --tumour SEG --lungs SEG``) was read
    and decoded for each (QA dicom72: LUNG1-003's 3-segment SEG, 3-4 s each on a shared machine).  Each call gets its
    own dict; a SEG that cannot be read raises the same error again."""
    from lungai.dicom.once import once_per_file

    grid = (reference_ct.GetSize(), reference_ct.GetSpacing(), reference_ct.GetOrigin(), reference_ct.GetDirection(),
            tuple((k, reference_ct.GetMetaData(k)) for k in sorted(reference_ct.GetMetaDataKeys())))
    key = f"seg {name!r} {hash(grid)}"
    return dict(once_per_file(path, key, lambda: _read_seg(path, reference_ct, name)))


def _read_seg(path, reference_ct: sitk.Image, name: str | None = None) -> dict[str, sitk.Image]:
    """Segment label -> uint8 mask on ``reference_ct``'s grid (the SEG must be on the CT's voxel grid).

    A BINARY SEG's segments are read as they are, so are a LABELMAP SEG's (its background, segment 0, left out:
    :func:`segments_of`); a FRACTIONAL SEG's segment holds the voxels whose fraction is at
    least :data:`FRACTIONAL_THRESHOLD` (a note says so, :class:`lungai.errors.InputNote`).  The labels are the
    SegmentLabels stripped of spaces around them; two segments of one label are refused
    (:func:`_refuse_repeated_labels`).  A SEG drawn on another CT series of this frame of reference and grid is read
    with a note (:func:`_warn_other_series`).  A SEG cut short (an interrupted copy: it ends inside one of its elements,
    :func:`lungai.dicom.discover.read_to_end`, or before its PixelData) is refused as truncated, with the fix to export
    or copy it again (:data:`SEG_TRUNCATED_FIX`).  ``name``: the SEG as the messages name it (the path as the user typed
    it: :func:`lungai.io.read_mask`); by default ``path`` - within a manifest's case its cell as written
    (:func:`lungai.dicom.masks.as_typed`)."""
    import highdicom as hd
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.masks import as_typed

    p = Path(path)
    shown = as_typed(path) if name is None else name
    if not p.is_file():
        raise InputError(f"SEG file {shown} does not exist", "give the DICOM SEG .dcm file")
    from lungai.dicom.discover import cut_after_content, cut_place, read_to_end
    from lungai.dicom.reference import orthonormalise_frames

    try:
        ds, cut = read_to_end(p)        # pydicom.dcmread, and where the file ends inside an element, if it does
    except (InvalidDicomError, OSError) as exc:
        raise InputError(f"{shown} is not a readable DICOM SEG ({exc})",
                         "give a DICOM Segmentation (modality SEG)") from exc
    is_seg = str(getattr(ds, "Modality", "") or "") == "SEG"
    if cut is not None or (is_seg and "PixelData" not in ds):
        # an interrupted copy or transfer, as the RTSTRUCT's reader says (lungai.dicom.rtstruct._read) - QA
        # segcut64: LUNG1-003's SEG cut inside its DimensionIndexSequence was "not a readable DICOM SEG ('Segmentation'
        # object has no attribute 'SharedFunctionalGroupsSequence')", fix "give a DICOM Segmentation"; cut inside its
        # SharedFunctionalGroupsSequence a traceback; cut inside its PixelData "could not be read as a volume (cannot
        # reshape array ...)", fix "export it again as a BINARY SEG"
        where = cut_place(("SEG", cut)) if cut is not None else "before its PixelData (a mandatory element)"
        lost = "" if cut is not None and cut_after_content(("SEG", cut)) else ", so none of its segments can be read"
        raise InputError(f"the {'SEG' if is_seg else 'DICOM file'} {shown} is truncated: it ends after "
                         f"{p.stat().st_size} bytes, {where}{lost} - an interrupted copy or transfer",
                         SEG_TRUNCATED_FIX)
    try:
        # IOP not orthonormal (a CT's raw rounded oblique / 1.0004, as highdicom copies it): read as ITK reads the CT
        orthonormalise_frames(ds, reference_ct.GetSpacing()[2])
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except (InvalidDicomError, ValueError, AttributeError) as exc:
        raise InputError(f"{shown} is not a readable DICOM SEG ({exc})",
                         "give a DICOM Segmentation (modality SEG)") from exc
    from lungai.dicom.labels import label_key
    from lungai.dicom.rtstruct import FRAME_OF_REFERENCE_TAG

    if reference_ct.HasMetaDataKey(FRAME_OF_REFERENCE_TAG):
        if str(seg.FrameOfReferenceUID) != reference_ct.GetMetaData(FRAME_OF_REFERENCE_TAG):
            from lungai.dicom.rtstruct import other_ct_error

            raise other_ct_error(shown, ds, str(seg.FrameOfReferenceUID),
                                 reference_ct.GetMetaData(FRAME_OF_REFERENCE_TAG), reference_ct, kind="SEG")
    else:   # a NIfTI / NRRD / MHA CT: its PatientID at most to compare - said, as for an RTSTRUCT (QA: silent)
        from lungai.dicom.rtstruct import check_unlinked_ct

        check_unlinked_ct(shown, ds, reference_ct, kind="SEG")
    template = sitk.Image(reference_ct.GetSize(), sitk.sitkUInt8)
    template.CopyInformation(reference_ct)
    ref_vol = hd.Volume.from_simpleitk(template)
    _refuse_repeated_labels(seg, shown)
    fractional = str(getattr(seg, "SegmentationType", "")).upper() == "FRACTIONAL"
    if fractional:
        warnings.warn(f"{shown} is a FRACTIONAL SEG: a voxel is in a segment where its fraction is at least "
                      f"{FRACTIONAL_THRESHOLD:g} (of MaximumFractionalValue {seg.MaximumFractionalValue})",
                      InputNote, stacklevel=2)
    out = {}
    for desc in segments_of(seg):
        number = int(desc.SegmentNumber)
        try:   # one segment, unstacked: a FRACTIONAL one as fractions 0..1 (highdicom cannot combine those)
            vol = seg.get_volume(segment_numbers=[number], combine_segments=False, rescale_fractional=True,
                                 dtype=np.float32 if fractional else np.uint8)
        except (ValueError, RuntimeError, KeyError, AttributeError) as exc:
            raise InputError(f"segment {desc.SegmentLabel!r} (number {number}) of {shown} could not be read as a "
                             f"volume ({exc})", "give a DICOM SEG of the CT's slices (one frame per CT slice, as "
                             "3D Slicer or highdicom write it), or export it again as a BINARY SEG") from exc
        inside_mask = vol.array[..., 0] >= FRACTIONAL_THRESHOLD if fractional else vol.array[..., 0] > 0
        vol = vol.with_array(inside_mask.astype(np.uint8), channels={})
        inside = int(inside_mask.sum())
        try:
            vol = vol.match_geometry(ref_vol)
        except (ValueError, RuntimeError) as exc:
            raise _off_grid_error(shown, ds, desc, reference_ct, exc) from exc
        if int(np.count_nonzero(vol.array)) != inside:   # match_geometry crops: a segment partly off the CT
            raise InputError(f"segment {desc.SegmentLabel!r} of {shown} lies partly off the CT",
                             "give the SEG made on this CT series (same frame of reference, same slices)")
        # its voxels already 0 / 1 in uint8 (above): taken as they are - thresholded and cast again, 0.13-0.27 s a
        # segment of LUNG1-003's 512 x 512 x 107 grid (QA dicom72: read_seg of a 3-segment SEG, 3.2-3.7 s)
        mask = vol.to_simpleitk()
        mask.CopyInformation(reference_ct)
        out[label_key(desc.SegmentLabel)] = mask
    _warn_other_series(shown, ds, reference_ct)     # on this CT's voxels, but drawn on another series
    return out

