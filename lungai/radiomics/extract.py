"""Feature extraction with pyradiomics, per segment, as long-format rows.

Long format: one row per value with columns ``case, segment, image_type, feature_class, feature,
value``.  :func:`to_wide` turns it into one row per case with columns
``rad_<segment>_<image_type>_<feature_class>_<feature>`` (e.g. ``rad_tumour_original_firstorder_Mean``),
the contract read by the multimodal predictor.

Each segment is first prepared by :mod:`lungai.radiomics.prepare` (cropped to its box; lung
segments resampled to the parameter set's isotropic lung spacing, once for all of them), then
passed to ``RadiomicsFeatureExtractor.execute``: the values are those of pyradiomics called
directly on the prepared image and mask, and for the Original image of a segment on the CT's own
grid (the tumour; every segment when ``lung_spacing_mm`` is not set) those of pyradiomics on the
whole CT.  ``workers`` > 1 computes segments in parallel processes (largest first); the result is
the same as serially.  :attr:`Extraction.settings` records per segment what was computed on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError, agree, counted
from lungai.io import on_grid
from lungai.io.geometry import to_lps
from lungai.io.validate import PADDING_HU, near_padding, padding_mask, reaching_border, region_sizes
from lungai.progress import TICK_INTERVAL, NullProgress, waiting
from lungai.radiomics.settings import SETTINGS_COLUMN, settings_id, with_lung_grid_revision
from lungai.seg.preprocess import cut_by_image_edge, cut_note
from lungai.radiomics.prepare import SETTINGS_COLUMNS, is_lung_segment, prepare, pyradiomics_params
from lungai.volume import voxel_ml as one_voxel_ml

if TYPE_CHECKING:       # pandas (0.2-1.1 s) imported where a table is built: after lungai radiomics' first bar
    import pandas as pd

LONG_COLUMNS = ["case", "segment", "image_type", "feature_class", "feature", "value"]
ERROR_COLUMNS = ["case", "segment", "error"]
MIN_VOXELS = 2
# pyradiomics validates parameters with pykwalify, whose YAML schema loading is not thread-safe
# (Dask workers with several threads build extractors concurrently).
_EXTRACTOR_LOCK = threading.Lock()

# pyradiomics logs a feature it cannot compute (NaN) as "FAILED: Traceback ... LinAlgError" at level ERROR on stderr;
# lungai says why values are NaN in words (Extraction.notes), so the 'radiomics' logger is silenced during a run.
_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "level": logging.NOTSET}


@contextlib.contextmanager
def quiet_pyradiomics():
    """The 'radiomics' logger at CRITICAL while pyradiomics runs (nested and threaded runs included), its level
    restored when the last run ends."""
    logger = logging.getLogger("radiomics")
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["level"] = logger.level
            logger.setLevel(logging.CRITICAL)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                logger.setLevel(_quiet["level"])


def _empty_table(columns) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=columns)


@dataclass
class Extraction:
    """Features (long format) and the segments that failed, each with its error message."""

    features: pd.DataFrame
    errors: pd.DataFrame = field(default_factory=lambda: _empty_table(ERROR_COLUMNS))
    settings: pd.DataFrame = field(default_factory=lambda: _empty_table(SETTINGS_COLUMNS))
    # "<segment>: <why some of its values are NaN>" (an IBSI preset's extractor says why: a flat ROI's ellipsoid
    # densities, pyradiomics 2.5D texture of a column along z ...); the callers print them as notes, settings["notes"]
    # records them per segment
    notes: list = field(default_factory=list)


def make_extractor(params: dict):
    """pyradiomics' extractor (shape features via :mod:`lungai.radiomics.shape`: same values, faster), or
    lungai's for IBSI presets / the classes pyradiomics lacks (features/extractor.py)."""
    from lungai.radiomics.shape import RadiomicsFeatureExtractor

    from lungai.radiomics.features import extractor as ext
    from lungai.radiomics.params import ibsi_config

    if ibsi_config(params) is not None:
        return ext.IBSIExtractor(params, ibsi_config(params))
    if ext.needs_extension(params):
        return ext.ExtendedExtractor(params, make_extractor)
    with _EXTRACTOR_LOCK, quiet_pyradiomics():
        return RadiomicsFeatureExtractor(pyradiomics_params(params))


def split_key(key) -> tuple[str, str, str] | None:
    """``original_firstorder_Mean`` -> (original, firstorder, Mean); None for diagnostics; lungai's keys are tuples."""
    if isinstance(key, tuple):
        return key
    if key.startswith("diagnostics_"):
        return None
    image_type, feature_class, feature = key.rsplit("_", 2)
    return image_type, feature_class, feature


def check_segment(mask: sitk.Image, name: str) -> None:
    """A segment must hold at least two voxels for every pyradiomics class."""
    n = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    if n == 0:
        raise InputError(f"segment {name!r} is empty (0 voxels)",
                         "check the mask/label value, or leave this segment out")
    if n < MIN_VOXELS:
        raise InputError(f"segment {name!r} has only {n} voxel; texture and shape features need at least "
                         f"{MIN_VOXELS}", "draw a larger segment (or resample to a finer grid), or leave it out")


def resampling_lost(p, native_voxels: int) -> str | None:
    """Why a segment that has voxels on the CT's grid has too few left on its resampled lung grid (None if not)."""
    if p.settings.get("grid") != "resampled" or p.settings["voxels"] >= MIN_VOXELS:
        return None
    spacing = p.settings["spacing_mm"].replace(" x ", ",")
    return str(InputError(f"segment {p.name!r} has {counted(p.settings['voxels'], 'voxel')} left on the "
                          f"({spacing}) mm lung grid (of {native_voxels} on the CT's grid): it is smaller than "
                          "about half a voxel of that grid",
                          "use a finer lung grid (--lung-spacing 0 keeps the CT's own grid), or leave this segment out"))


def result_rows(result: dict, case: str, segment: str) -> list[tuple]:
    rows = []
    for key, value in result.items():
        parts = split_key(key)
        if parts is not None:
            rows.append((case, segment, *parts, float(np.asarray(value))))
    return rows


def extract_segment(extractor, image: sitk.Image, mask: sitk.Image, case: str, segment: str) -> list[tuple]:
    """Rows for one segment; bad segments raise :class:`InputError`."""
    check_segment(mask, segment)
    label = int(extractor.settings.get("label", 1))
    if label != 1:
        mask = sitk.Cast(mask > 0, sitk.sitkUInt8) * label
    try:
        named = {"name": segment} if getattr(extractor, "takes_segment_name", False) else {}
        with quiet_pyradiomics():         # its "FAILED: Traceback" on stderr; the notes say why values are NaN
            result = extractor.execute(image, mask, label=label, **named)  # an IBSI preset's messages name the segment
    except (ValueError, RuntimeError, IndexError) as exc:
        flat = flat_segment_error(mask, segment, str(exc))
        if flat is not None:
            raise flat from exc
        raise InputError(f"pyradiomics failed on segment {segment!r}: {str(exc).strip().splitlines()[-1]}",
                         "check that the segment is a solid region of at least a few voxels inside the image") from exc
    return result_rows(result, case, segment)


# the axes of a mask's array (z, y, x), in the user's words: a line along one, a plane across the others
_AXIS_WORDS = ("z, across slices", "y, front-back", "x, left-right")
_PLANE_WORDS = {0: "one axial slice", 1: "one coronal plane", 2: "one sagittal plane"}


def flat_segment_error(mask: sitk.Image, segment: str, message: str) -> InputError | None:
    """pyradiomics' "mask has too few dimensions (number of dimensions N, minimum required M)" (its setting
    minimumROIDimensions, default 2) in the user's words: the segment is so many voxels in a line (along which axis)
    or in one plane (which), what radiomics needs, and how to draw it; None for another message.  QA radfollow68: a
    2-voxel line on lung1 said only pyradiomics' words with the fix "check that the segment is a solid region"."""
    import re

    found = re.search(r"(?:mask has )?too few dimensions \(number of dimensions (\d+), minimum required (\d+)\)",
                      message)
    if found is None:
        return None
    required = int(found.group(2))
    arr = sitk.GetArrayFromImage(mask) != 0
    where = np.nonzero(arr)
    n = int(arr.sum())
    spans = [i for i, idx in enumerate(where) if idx.size and np.ptp(idx) > 0]
    raw = f"(pyradiomics: {found.group(0)})"
    if len(spans) <= 1:
        along = f"along {_AXIS_WORDS[spans[0]]}" if spans else "a single voxel"
        slices = ", in one slice" if spans and spans[0] != 0 else ""
        what = f"{counted(n, 'voxel')} in a line (one row of voxels {along}{slices})"
        need = (f"radiomics needs a region over at least {required} dimensions - an area in a slice, better a 3D "
                "region over several slices") if required <= 2 else \
            f"radiomics with these settings (minimumROIDimensions {required}) needs a 3D region over several slices"
        fix = ("draw the segment as the structure's region over several rows of voxels and slices, not a line "
               "(or leave this segment out)")
    else:
        flat_axis = next(i for i in range(3) if i not in spans)
        what = f"{counted(n, 'voxel')} in one plane ({_PLANE_WORDS[flat_axis]})"
        need = f"radiomics with these settings (minimumROIDimensions {required}) needs a 3D region over several slices"
        fix = ("draw the segment over several slices (the structure's 3D region), or allow 2D regions with the "
               "setting minimumROIDimensions 2 in the parameters file, or leave this segment out")
    return InputError(f"segment {segment!r} is {what}: {need} {raw}", fix)


# pyradiomics' names of its derived images (the image_type of its feature keys) per image type
# (radiomics.imageoperations.get<Type>Image); LoG: one image per sigma, log-sigma-<sigma>-mm-3D
IMAGE_TYPE_NAMES = {"Original": "original", "Wavelet": "wavelet", "Square": "square", "SquareRoot": "squareroot",
                    "Logarithm": "logarithm", "Exponential": "exponential", "Gradient": "gradient",
                    "LBP2D": "lbp-2D", "LBP3D": "lbp-3D"}


def log_image_name(sigma) -> str:
    """pyradiomics' name of the LoG image of ``sigma`` (mm), as ``getLoGImage`` writes it."""
    return "log-sigma-%s-mm-3D" % str(sigma).replace(".", "-")


def skipped_image_types(extractor, image: sitk.Image, rows: list, segment: str) -> list[str]:
    """A note when an image type (a LoG sigma) the parameters ask for gave no value at all: pyradiomics skips a LoG
    sigma on an image smaller than max(4, ceil(sigma / spacing) + 1) voxels along an axis, with only a log line (which
    lungai silences), so a thin CT (an LIDC crop of 3 slices) had no LoG rows while ``image_types`` said LoG."""
    py = getattr(extractor, "pyradiomics", extractor)
    enabled = getattr(py, "enabledImagetypes", None)
    if not enabled or not rows:
        return []
    got = {r[2] for r in rows}
    settings = getattr(py, "settings", None) or {}
    missing, log_missing = [], []
    for kind, custom in enabled.items():
        if kind == "LoG":
            sigmas = (custom or {}).get("sigma") or settings.get("sigma") or []
            log_missing += [s for s in sigmas if log_image_name(s) not in got]
        else:
            name = IMAGE_TYPE_NAMES.get(kind, kind.lower())
            if not any(g == name or g.startswith(name + "-") for g in got):
                missing.append(kind)
    notes = []
    if log_missing:
        size, spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
        where, fix = "", "use smaller sigmas or a CT with more slices"
        if not settings.get("resampledPixelSpacing"):       # else pyradiomics filters its own resampled crop
            where = (f": the image around segment {segment!r} is {' x '.join(str(v) for v in size)} voxels of "
                     f"{' x '.join(f'{v:g}' for v in np.round(spacing, 3))} mm")
            largest = float(np.min((size - 1) * spacing))
            fix = ("a CT with at least 4 voxels along every axis around the segment (more slices) is needed for any LoG"
                   if size.min() < 4 else f"use sigmas up to {largest:g} mm, or a CT with more slices")
        notes.append(f"no LoG values for sigma {', '.join(f'{float(s):g}' for s in log_missing)} mm (no "
                     f"{', '.join(log_image_name(s) for s in log_missing)} rows): pyradiomics skips a LoG sigma on an "
                     f"image smaller than max(4, ceil(sigma / spacing) + 1) voxels along any axis{where}; {fix}")
    if missing:
        notes.append(f"no values for the image {agree(len(missing), 'type', 'types')} {', '.join(missing)}: "
                     "pyradiomics computed none on this segment's image")
    return notes


def _rows_or_error(extractor, image: sitk.Image, mask: sitk.Image, case: str, segment: str) -> tuple:
    """One prepared segment: ("ok", rows, notes) or ("error", message, []); ``notes``: the extractor's words on the
    segment's NaN values, without the segment's name (``extractor.notes`` after ``execute``: :class:`lungai.radiomics.features.extractor.IBSIExtractor`).  Any exception of pyradiomics on this one region
    (beyond the ones :func:`extract_segment` words: a MemoryError, a ZeroDivisionError, an assertion ...) is that
    segment's error, named with its type: the other segments (and cases) go on."""
    try:
        rows = extract_segment(extractor, image, mask, case, segment)
        return "ok", rows, [*(getattr(extractor, "notes", None) or ()),
                            *skipped_image_types(extractor, image, rows, segment)]
    except InputError as exc:
        return "error", str(exc), []
    except Exception as exc:  # noqa: BLE001 - one region's failure must not stop the others
        return "error", _unexpected(segment, exc), []


# the message of a segment's step while pyradiomics runs on it ("LUNG1-003: computing right_lung (4 s)"); the step's own
# message, when it is done, is "LUNG1-003: right_lung"
COMPUTING = "computing"


def preparing_message(segments: dict, params: dict, lung_names=()) -> str:
    """What :func:`lungai.radiomics.prepare.prepare` does to ``segments``, for the bar: ``cropping the segments``,
    ``cropping the segments, resampling the lungs to the 2 mm lung grid`` (the lung segments on lungai's lung grid),
    ``preparing the segments`` (pyradiomics' own resampling) or ``putting the segments on the IBSI grid`` (an IBSI
    preset)."""
    from lungai.radiomics.params import ibsi_config
    from lungai.radiomics.prepare import lung_spacing, pyradiomics_resampling

    if ibsi_config(params) is not None:
        return "putting the segments on the IBSI grid"
    if pyradiomics_resampling(params):      # the whole CT normalised: pyradiomics crops and resamples each segment
        return "preparing the segments"
    spacing = lung_spacing(params)
    if spacing and any(is_lung_segment(n, lung_names) for n in segments):
        return f"cropping the segments, resampling the lungs to the {spacing:g} mm lung grid"
    return "cropping the segments"


def _unexpected(segment: str, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "(no message)"
    return str(InputError(f"pyradiomics failed on segment {segment!r}: {type(exc).__name__}: {detail}",
                          "check the segment (a solid region of at least a few voxels inside the image) and its "
                          "settings; the other segments were computed"))


def _extract_in_worker(params: dict, image: sitk.Image, mask: sitk.Image, case: str, segment: str) -> tuple:
    return _rows_or_error(make_extractor(params), image, mask, case, segment)


def extract(image: sitk.Image, segments: dict[str, sitk.Image], params: dict, case: str = "case",
            progress=None, segment_errors: dict | None = None, workers: int = 1, lung_names=(),
            one_lesion: dict | None = None, segment_notes: dict | None = None) -> Extraction:
    """Features for every segment; a failing segment is recorded in ``errors`` and the others go on.

    ``lung_names``: segments that are lungs by a role given to them (an RTSTRUCT structure mapped to lung_right with
    ``--structure-map``) rather than by their name: on the lung grid as the lungs named so
    (:func:`lungai.radiomics.prepare.prepare`).  The settings id carries the lung grid revision when a lung segment
    was on the CT's grid in an older lungai (:func:`lungai.radiomics.settings.with_lung_grid_revision`).

    ``segment_errors`` are problems found while building the segments (missing label ...), carried
    into ``errors``.  A mask that is not on the image grid fails the whole case (GeometryError).
    ``workers`` > 1: segments in that many processes (never more than there are segments).
    ``one_lesion``: {segment: how to give one lesion of it} for the note on a segment of several parts
    (:func:`parts_note`), worded for the input the segment came from.
    ``segment_notes``: {segment: [notes]} found while building the segments (a tumour wholly outside the lungs:
    :func:`lungai.radiomics.segments.tumour_outside_lungs_note`), recorded as the segment's own notes (``notes``, the
    settings' ``notes`` column) - ``radiomics-batch`` and ``lungai cohort`` say them as their other segment notes.
    """
    progress = progress or NullProgress()
    from lungai.radiomics.params import ibsi_config

    shape_features = PARTS_SHAPE_FEATURES_IBSI if ibsi_config(params) is not None else PARTS_SHAPE_FEATURES

    def checked(segments: dict) -> tuple:
        # on the image's grid (the same voxels stored in another order: reoriented to the image's, losslessly)
        segments = {name: on_grid(image, mask, f"mask of segment {name!r}") for name, mask in segments.items()}
        segments, padding = without_padding_voxels(image, segments)     # on the CT's own grid, before any resampling
        failed, valid = {}, {}
        parts = {}      # {segment: note} for a (non-lung) segment of several separate parts: what its shape describes
        for name, mask in segments.items():
            try:
                check_segment(mask, name)
                valid[name] = mask
                if not is_lung_segment(name, lung_names) and (
                        note := parts_note(mask, (one_lesion or {}).get(name), shape_features)):
                    parts[name] = note
            except InputError as exc:
                failed[name] = str(exc)
        return segments, padding, failed, valid, parts

    # the preparation before the first segment is said on the bar with its seconds, without a step (lungai.progress.
    # waiting; QA radprep67: the bar stood on "radiomics: start" for 2.2 s on LUNG1-003)
    segments, padding, failed, valid, parts = waiting(progress, f"{case}: checking the segments", checked, segments)
    results: dict[str, tuple] = {}
    for name, message in failed.items():
        results[name] = ("error", message, [])
        progress.update(1, f"{case}: {name}")
    prepared = []
    params = with_lung_grid_revision(params, segments, lung_names)    # the id of the values (a caller's kept)
    for p in waiting(progress, f"{case}: {preparing_message(valid, params, lung_names)}", prepare, image, valid,
                     params, lung_names) if valid else []:
        lost = resampling_lost(p, int(np.count_nonzero(sitk.GetArrayViewFromImage(valid[p.name]))))
        if lost:
            results[p.name] = ("error", lost, [])
            progress.update(1, f"{case}: {p.name}")
        else:
            prepared.append(p)
    workers = min(int(workers or 1), len(prepared))
    if workers > 1:
        # spawn: a clean interpreter (ITK / torch threads of this process are not forked into a worker)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            largest_first = sorted(prepared, key=lambda p: -p.settings["voxels"])
            futures = {pool.submit(_extract_in_worker, params, p.image, p.mask, case, p.name): p.name
                       for p in largest_first}
            pending, start = list(futures), time.monotonic()
            interval = max(float(getattr(progress, "tick_interval", TICK_INTERVAL)), 0.05)
            progress.update(0, f"{case}: {COMPUTING} {', '.join(list(futures.values())[:workers])}")
            while pending:
                # the bar moves while the segments run (QA radwait67: a whole lung was one silent step of 4-15 s)
                done, _ = wait(pending, timeout=interval, return_when=FIRST_COMPLETED)
                for fut in [f for f in pending if f in done]:        # largest first, as submitted
                    try:
                        results[futures[fut]] = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker that died (out of memory ...) fails its segment
                        results[futures[fut]] = ("error", _unexpected(futures[fut], exc), [])
                    progress.update(1, f"{case}: {futures[fut]}")
                pending = [f for f in pending if f not in done]
                if pending and not done:
                    # the pool takes the segments in the order submitted: the first `workers` not done are running
                    # (Future.running() is True for one more, queued for the next free worker)
                    running = [futures[f] for f in pending[:workers]]
                    progress.update(0, f"{case}: {COMPUTING} {', '.join(running)} "
                                       f"({time.monotonic() - start:.0f} s)")
    else:
        extractor = waiting(progress, f"{case}: setting up pyradiomics", make_extractor, params) if prepared else None
        for p in prepared:
            # pyradiomics on a segment is one call (4-15 s on a whole lung, minutes with LoG / Wavelet): run with
            # its seconds said (lungai.progress.waiting), the step counted when it is done (QA radwait67)
            results[p.name] = waiting(progress, f"{case}: {COMPUTING} {p.name}", _rows_or_error, extractor,
                                      p.image, p.mask, case, p.name)
            progress.update(1, f"{case}: {p.name}")
    rows, errors, notes = [], [(case, seg, msg) for seg, msg in (segment_errors or {}).items()], []
    for name in segments:  # the caller's segment order, whatever order the workers finished in
        status, value, seg_notes = results[name]
        given = list((segment_notes or {}).get(name) or ())
        if name in padding or name in parts or given:    # said first, whatever became of the segment (its error
            first = [n for n in (padding.get(name), parts.get(name)) if n] + given    # may be "empty": all padding)
            seg_notes = first + list(seg_notes)
            results[name] = (status, value, seg_notes)
        notes.extend(f"{name}: {n}" for n in seg_notes)
        if status == "ok":
            rows.extend(value)
        else:
            errors.append((case, name, value))
    # features are computed in LPS axial order (prepare.in_lps; settings column "orientation")
    # the segment's mask on the CT's image edge (lungai.seg.preprocess.cut_by_image_edge, as in lungai segment's
    # result.json): "z-;x+" ..., "" when inside; the callers warn with edge_notes
    # a lung segment by the lungs' rule (lungai.lungs.segment.lung_cut_faces: a few voxels on an edge are partial
    # volume, not a cut lung; blank end slices of the CT are no part of the scan - as lungai lungs and the demo's
    # summary say it)
    slices = {}         # the CT's slices holding the patient: found once for all lung segments
    settings = [{"case": case, "segment": p.name, **p.settings,
                 "cut_by_image_edge": ";".join(_cut_faces(p.name, valid[p.name], image, slices,   # faces as computed
                                                          lung_names)
                                               + ([FOV_FACE] if p.name in padding else [])),
                 "notes": NOTE_SEPARATOR.join(results[p.name][2])}     # why values are NaN (nan_note_lines prints them)
                for p in prepared if results[p.name][0] == "ok"]
    import pandas as pd

    features = pd.DataFrame(rows, columns=LONG_COLUMNS)
    features[SETTINGS_COLUMN] = settings_id(params)  # the settings travel with the values
    return Extraction(features, pd.DataFrame(errors, columns=ERROR_COLUMNS),
                      pd.DataFrame(settings, columns=SETTINGS_COLUMNS), notes)


PARTS_LISTED = 5    # parts_note lists the volumes of this many parts, then counts the others
# the shape features parts_note names, as the table names them: pyradiomics' names, or an IBSI preset's tags
# (QA radiomics72: ibsi-c's note named Maximum3DDiameter and Sphericity, its table morph_diam and morph_sphericity)
PARTS_SHAPE_FEATURES = "Maximum3DDiameter, Sphericity, axis lengths ..."
PARTS_SHAPE_FEATURES_IBSI = "morph_diam, morph_sphericity, morph_pca_maj_axis ..."


# how a segment of several parts is given as one lesion, when its caller does not say how it was given
ONE_LESION_FIX = "give its own mask, label or segment"


def parts_note(mask: sitk.Image, one_lesion: str | None = None, shape_features: str = PARTS_SHAPE_FEATURES
               ) -> str | None:
    """A note when a segment's mask is several separate parts (26-connected components): a label map's "other GTVs"
    label (LUNG1-003's gtv-2 + gtv-3), labels joined as one tumour, a GTV structure of primary and nodes, or a stray
    island of a contour.  Its shape features are those of all parts as one ROI (IBSI's and pyradiomics' rule: a
    Maximum3DDiameter across the gap); ``--rtstruct`` names the structures it joins, a mask file said nothing.
    ``one_lesion``: how to give one lesion, in the option / spelling the segment was given with (``--tumour
    seg.dcm#GTV-1``, ``--label gtv=1``, a manifest's cell: :func:`lungai.radiomics.segments.tumour_one_lesion` ...);
    default :data:`ONE_LESION_FIX` (QA maskinput64: it always said "e.g. --tumour labels.nii.gz#1", a file and an
    option the user never gave - for a SEG's GTV-1 + gtv-2, a --mask --label union, a manifest's row).
    ``shape_features``: the shape features named, as the table names them (:data:`PARTS_SHAPE_FEATURES_IBSI` for an
    IBSI preset)."""
    from scipy import ndimage

    from lungai.radiomics.prepare import bounding_box

    arr = sitk.GetArrayViewFromImage(mask)
    box = bounding_box(arr)
    if box is None:
        return None
    (x0, y0, z0), (x1, y1, z1) = box
    lab, n = ndimage.label(arr[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] > 0, np.ones((3, 3, 3), bool))
    if n < 2:
        return None
    ml = one_voxel_ml(mask.GetSpacing())
    sizes = np.sort(region_sizes(lab, n)[1:])[::-1] * ml
    listed = ", ".join(f"{v:.3g}" for v in sizes[:PARTS_LISTED]) + (
        f" and {n - PARTS_LISTED} more" if n > PARTS_LISTED else "")
    return (f"the segment is {n} separate parts (connected components of {listed} ml, largest first): its shape "
            f"features ({shape_features}) are of all parts as one ROI; for one lesion "
            f"{one_lesion or ONE_LESION_FIX}, or clean stray islands off the contour")


FOV_FACE = "fov"    # cut_by_image_edge's entry for a segment whose padding voxels were left out (without_padding_voxels)


def without_padding_voxels(image: sitk.Image, segments: dict) -> tuple[dict, dict]:
    """(``segments`` without the CT's padding voxels, {segment: the note on what was left out} for the segments that
    had any).  Padding outside the scanner's field of view (-3024, -2000 ... outside the reconstruction circle:
    :func:`lungai.io.validate.padding_mask`, the one rule, where it reaches the slice's border:
    :func:`lungai.io.validate.reaching_border` - a resampling's overshoot below -1100 HU inside the body is no padding)
    is no tissue: a mask drawn past the field of view (an
    RTSTRUCT's body or lung contour, a label map reaching the circle) would count it as intensity (a lung's minimum
    -3024 instead of -1023, its variance 7-9 x).  ``segments`` on ``image``'s grid; a CT with no value below -1000 has
    no padding (no pass over it).  The IBSI presets' re-segmentation drops those values from the intensity mask
    anyway; leaving them out of the mask here keeps them out of the morphology too."""
    arr = sitk.GetArrayViewFromImage(image)
    if not segments or arr.ndim != 3 or not arr.size or arr.min() >= -1000:
        return segments, {}
    pad = reaching_border(padding_mask(arr))     # outside the circle: reaching the slice's border (not an overshoot)
    if not pad.any():
        return segments, {}
    near = near_padding(pad)
    voxel_ml = one_voxel_ml(image.GetSpacing())
    out, notes = {}, {}
    for name, mask in segments.items():
        m = sitk.GetArrayFromImage(mask)
        hit = (m != 0) & near
        if hit.any():
            n = int(np.count_nonzero(hit & pad))
            k = int(np.count_nonzero(hit)) - n
            m[hit] = 0
            kept = sitk.GetImageFromArray(m)
            kept.CopyInformation(mask)
            mask = kept
            notes[name] = (f"{_voxels(n)} ({n * voxel_ml:.1f} ml) of padding outside the scanner's field of view "
                           f"(<= {PADDING_HU:.0f} HU or its padding plateau) and {k} next to it "
                           f"({k * voxel_ml:.1f} ml, blended with it by interpolation) left out of {name!r}")
        out[name] = mask
    return out, notes


def _voxels(n: int) -> str:
    return f"{n} voxel" if n == 1 else f"{n} voxels"


def _cut_faces(name: str, mask: sitk.Image, image: sitk.Image, slices: dict | None = None, lung_names=()) -> list:
    """The image faces the segment may be cut by the scan at: a lung segment (:func:`lungai.radiomics.prepare.
    is_lung_segment`: by role, or listed in ``lung_names`` - as on the lung grid) by the lungs' rule on the CT
    ``image`` (``mask`` on its grid) without its blank end slices (:func:`lungai.lungs.segment.lung_cut_faces`: as
    ``lungai lungs`` warns), any other (the tumour) wherever it lies on the edge
    (:func:`lungai.seg.preprocess.cut_by_image_edge`).  ``slices``: a dict keeping the CT's slices holding the
    patient (:func:`lungai.lungs.segment.scan_slices`) between calls for one case."""
    from lungai.lungs.segment import lung_cut_faces, scan_slices

    if is_lung_segment(name, lung_names):
        slices = {} if slices is None else slices
        if "ct" not in slices:
            slices["ct"] = scan_slices(image)
        return lung_cut_faces(mask, image, slices["ct"])
    return cut_by_image_edge(to_lps(mask))


NOTE_SEPARATOR = " | "     # between a segment's notes in the settings' "notes" column


def _name_cases(settings: pd.DataFrame, cases: bool | None) -> bool:
    """Whether a note on ``settings``' rows names its case: ``cases`` when given (``radiomics-batch``: always, also for
    a one-case manifest - its notes are read beside other batches' output), else only when they hold several cases
    (``lungai radiomics``: one case, named in its summary line)."""
    return cases if cases is not None else len(set(settings["case"])) > 1


def nan_note_lines(settings: pd.DataFrame, cases: bool | None = None) -> list:
    """The notes recorded in ``settings``' ``notes`` column (:attr:`Extraction.settings`: why a segment's values are
    NaN), one per note, ``<case> / <segment>: <note>`` (the case only for several cases, or with ``cases=True``:
    :func:`_name_cases`); an older table without the column gives none."""
    if "notes" not in settings:
        return []
    several = _name_cases(settings, cases)
    return [(f"{r.case} / " if several else "") + f"{r.segment}: {n}"
            for r in settings.itertuples(index=False) if isinstance(r.notes, str) and r.notes
            for n in r.notes.split(NOTE_SEPARATOR)]


def edge_notes(settings: pd.DataFrame, cases: bool | None = None) -> list:
    """One warning per segment of ``settings`` (:attr:`Extraction.settings`) whose mask touches the image edge
    (``<case> / `` in front as :func:`nan_note_lines`)."""
    if "cut_by_image_edge" not in settings:
        return []
    cut = settings[settings["cut_by_image_edge"].fillna("").astype(str) != ""]
    several = _name_cases(settings, cases)
    return [(f"{r.case} / " if several else "") + cut_note(r.segment, r.cut_by_image_edge.split(";"))
            for r in cut.itertuples(index=False)]


def wide_column(segment: str, image_type: str, feature_class: str, feature: str) -> str:
    return f"rad_{segment}_{image_type}_{feature_class}_{feature}"


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per case, one column per ``rad_<segment>_<image_type>_<feature_class>_<feature>``."""
    import pandas as pd

    if long.empty:
        return pd.DataFrame(columns=["case"])
    names = [wide_column(*t) for t in long[["segment", "image_type", "feature_class", "feature"]].itertuples(index=False)]
    frame = long.assign(column=names)
    frame = frame.drop_duplicates(["case", "column"], keep="last")
    wide = frame.pivot(index="case", columns="column", values="value")
    wide = wide.reindex(index=list(dict.fromkeys(frame["case"])), columns=list(dict.fromkeys(names)))
    wide.columns.name = None
    if SETTINGS_COLUMN in frame:  # one id per case ("a;b" if a case mixes settings: rp refuses it)
        ids = frame.groupby("case", sort=False)[SETTINGS_COLUMN].agg(
            lambda s: ";".join(sorted(set(s.dropna().astype(str)))) or None)
        wide[SETTINGS_COLUMN] = ids.reindex(wide.index)
    return wide.reset_index()


def from_wide(wide: pd.DataFrame, segments=None) -> tuple[pd.DataFrame, list[str]]:
    """The long table (:data:`LONG_COLUMNS`) back from :func:`to_wide`'s ``rad_<segment>_<image_type>_<feature_class>_
    <feature>`` columns (e.g. a ``lungai cohort`` patient's ``features.csv``), and the ``rad_`` columns it cannot
    split.  ``segments``: the segment names (default :data:`lungai.radiomics.segments.STANDARD_SEGMENTS`; the
    longest matched first: ``lungs_minus_tumour`` before ``lungs``); the image type (``original``, ``wavelet-LLH``,
    ``log-sigma-1-0-mm-3D``) and the class hold no "_", the feature is the rest (an IBSI tag's may hold one)."""
    import pandas as pd

    from lungai.radiomics.segments import STANDARD_SEGMENTS

    names = sorted(segments or STANDARD_SEGMENTS, key=len, reverse=True)
    rows, unsplit = [], []
    for column in (c for c in wide.columns if str(c).startswith("rad_")):
        rest = str(column)[len("rad_"):]
        segment = next((s for s in names if rest.startswith(s + "_")), None)
        parts = rest[len(segment) + 1:].split("_", 2) if segment else []
        if len(parts) != 3 or not all(parts):
            unsplit.append(str(column))
            continue
        rows += [{"case": case, "segment": segment, "image_type": parts[0], "feature_class": parts[1],
                  "feature": parts[2], "value": value}
                 for case, value in zip(wide["case"] if "case" in wide else [None] * len(wide), wide[column])]
    return pd.DataFrame(rows, columns=LONG_COLUMNS), unsplit
