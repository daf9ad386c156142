"""Training data: image/mask pairs, patient-level split, synthetic phantom crops, model-grid arrays.

Pairs are matched by file name (``images/<case>.nii.gz`` <-> ``masks/<case>.nii.gz``).  The patient
of a case is the part of its name before the first ``_`` (``LIDC-IDRI-0001_R_1`` -> ``LIDC-IDRI-0001``)
or comes from a CSV with columns ``case,patient``.  The split puts every patient wholly in either
training or validation.

Whole CTs (not crops: the user's full scans, and ``whole_chest_cases``) keep the region automatic mode
looks at - the lungs' box plus margin - and carry sampling indices: tumour voxels, and "hard
negatives" (bright, non-tumour voxels of the lungs + margin: vessels, hilum, chest wall, mediastinal
border, atelectasis, effusion) from which training patches are drawn (``augment.context_patch``).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError, agree, counted, counted_of
from lungai.io.read import FILE_SUFFIXES
from lungai.seg import preprocess as pp
from lungai.volume import mask_volume_ml

# scipy.ndimage is imported in the functions using it (not before lungai eval-seg's first bar: QA startbar66)

SUFFIXES = FILE_SUFFIXES     # the image files lungai reads (.nii.gz, .nrrd, .nhdr, .mha ...; any letter case)
FULL_CT_MARGIN_MM = 40.0   # a full CT whose lungs are not found is cut to the mask's box plus this margin
HARD_NEGATIVE_HU = -500.0  # whole CTs: non-tumour voxels brighter than this (in the lungs + margin) are hard negatives
MAX_SAMPLING_INDICES = 50_000   # per whole CT and kind (tumour / hard negatives), a deterministic subsample
# another label of a --label mask whose CT is on average brighter than this is soft tissue (another GTV, a lymph
# node, an organ): kept out of the hard negatives - it may be tumour.  An air-filled label (the lungs: about -800 HU)
# is not: its bright voxels (vessels) are the hard negatives wanted
OTHER_LABEL_SOFT_TISSUE_HU = HARD_NEGATIVE_HU


@dataclass
class Case:
    case_id: str
    patient: str
    image_path: object = None        # Path, or None for in-memory (synthetic) cases
    mask_path: object = None
    image: object = None             # sitk.Image when in memory
    mask: object = None
    meta: dict = field(default_factory=dict)
    label: object = None             # int: the tumour is this label of the mask file (train-seg --label)


def image_suffix(name: str) -> str:
    """The image suffix (of :data:`SUFFIXES`) ``name`` ends in, in any letter case as lungai's readers take it
    (``P01.NII.GZ``, ``P01.Nrrd``: Windows tools, FAT drives), as the name spells it; "" for another file."""
    lower = str(name).lower()
    return next((str(name)[-len(s):] for s in SUFFIXES if lower.endswith(s)), "")


def case_name(path: Path) -> str:
    suffix = image_suffix(path.name)
    return path.name[: -len(suffix)] if suffix else path.stem


def patient_of(case_id: str) -> str:
    return case_id.split("_", 1)[0]


def _read_patient_csv(path) -> dict:
    """{case: patient} of a --patients CSV, read by the one reader of user tables
    (:func:`lungai.io.tables.read_table_checked`: UTF-8 with or without a BOM, a decimal-comma spreadsheet's ';' CSV
    read as such, another delimiter, an unreadable or missing file refused; blank rows skipped); a table without the
    columns, listing a case twice or a case without its patient (an empty cell) is refused."""
    from lungai.io.tables import duplicate_ids, read_table_checked

    frame = read_table_checked(path, what="--patients", fix="write a comma-separated CSV with one row per image: "
                               "case,patient", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty or not {"case", "patient"} <= set(frame.columns):
        raise InputError(f"{path} needs the columns 'case' and 'patient' (it has: {', '.join(frame.columns)})",
                         "write one row per image: case,patient")
    frame = frame[(frame["case"].str.strip() != "") | (frame["patient"].str.strip() != "")]   # blank rows (",")
    cases, patients = frame["case"].str.strip(), frame["patient"].str.strip()
    empty = list(cases[patients == ""])
    if empty:
        more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
        raise InputError(f"--patients {path} lists {counted(len(empty), 'case')} without a patient (an empty patient "
                         "cell): "
                         f"{', '.join(empty[:10])}{more}; they would be taken as one patient '' together, beside "
                         "their own patient's other cases (one patient on both sides of the split)",
                         "write the patient in every row: case,patient (a patient column with merged cells in a "
                         "spreadsheet exports the patient on its first row only: unmerge and fill the cells down)")
    dup = duplicate_ids(cases)
    if dup:
        more = f" and {len(dup) - 10} more" if len(dup) > 10 else ""
        raise InputError(f"--patients {path} lists {counted(len(dup), 'case')} more than once: {dup[:10]}{more}",
                         "keep one row per case: case,patient")
    return dict(zip(cases, patients))


def one_patient_per_file_note(cases: list, patients_csv=None) -> str | None:
    """A note when the split cannot see patients: no ``patients_csv`` and every one of several image files is its
    own patient because its name has no ``<patient>_`` (the patient is the whole name), so crops of one patient may
    land on both sides of the split.  Names of distinct patients (LIDC-IDRI-0001_R_1, LIDC-IDRI-0002_R_1) are split
    by patient as named: no note."""
    files = [c for c in cases if c.image_path is not None]
    if patients_csv or len(files) < 2 or len({c.patient for c in files}) < len(files):
        return None
    if any(c.patient != c.case_id for c in files):      # "<patient>_<n>" names: the patients are known
        return None
    return (f"each of the {len(files)} image files is taken as its own patient (no '_' in the names, no --patients): "
            "the split assumes one file per patient; if a patient has several files (crops, time points), name "
            "them <patient>_<n> (e.g. LIDC-IDRI-0003_R_2) or give --patients CSV with columns case,patient")


GROUPING_EXAMPLES = 4        # case -> patient pairs a grouping note shows
FEW_PATIENTS, MANY_FILES = 3, 5     # at most this many name-read patients with at least this many files each: noted


def grouped_patients_note(cases: list, patients_csv=None) -> str | None:
    """A note when the patients read from the names (the text before the first ``_``) look like a site or another
    prefix rather than patients: no ``patients_csv`` and either a patient's files carry distinct patient-like parts
    after that prefix (``SiteA_P01_ct``, ``SiteA_P02_ct``: the part between the first and the second ``_`` differs
    and holds a digit), or only a few patients (:data:`FEW_PATIENTS`) each hold many files (:data:`MANY_FILES`).
    The split would then keep whole sites, not patients, apart, and several patients' files would be taken as one.
    Crops of one patient (``LIDC-IDRI-0001_R_1``, ``LIDC-IDRI-0001_R_2``, ``P00_0``, ``P00_1``): no note."""
    files = [c for c in cases if c.image_path is not None and c.patient == patient_of(c.case_id)]
    if patients_csv or len(files) < 2:
        return None
    groups: dict = {}
    for c in files:
        groups.setdefault(c.patient, []).append(c)

    def inner_ids(group) -> set:                  # the <id> of <prefix>_<id>_<rest> names
        parts = [c.case_id.split("_") for c in group]
        return {p[1] for p in parts if len(p) >= 3 and any(ch.isdigit() for ch in p[1])}

    prefixed = [p for p, g in groups.items() if len(inner_ids(g)) >= 2]
    few = len(groups) <= FEW_PATIENTS and all(len(g) >= MANY_FILES for g in groups.values())
    if not (prefixed or few):
        return None
    shown = [c for p in (prefixed or list(groups)) for c in groups[p]][:GROUPING_EXAMPLES]
    pairs = ", ".join(f"{c.case_id} -> {c.patient}" for c in shown)
    sizes = ", ".join(f"{p}: {len(g)} files" for p, g in list(groups.items())[:GROUPING_EXAMPLES])
    n = len(groups)
    return (f"the {len(files)} image files are taken as only {n} patient{'s' * (n != 1)} ({sizes}): the patient is the "
            f"text before the first '_' of each name ({pairs}); if that is a site or another prefix, not the patient, "
            f"the split keeps whole sites apart and several patients count as one - {patients_csv_fix(shown[0])}")


def patients_csv_fix(example) -> str:
    """The fix of a note or error on the patients read from the names (:func:`grouped_patients_note`,
    :func:`split_patients`): a --patients CSV, with a row of the case ``example`` (its patient guessed as the part
    between the first and second '_' of ``<site>_<patient>_<rest>``, else ``<patient>``), or renamed files.  One
    wording: QA trainfollow71 - the MSD layout (lung_001, lung_002, ...) was refused as one patient with only "(names
    <patient>_..., or a --patients CSV)", while the note before it gave the row to write."""
    parts = example.case_id.split("_")
    guess = parts[1] if len(parts) >= 3 else "<patient>"
    return (f"give --patients CSV with columns case,patient (e.g. {example.case_id},{guess}) or rename the files "
            "<patient>_<n>")


def patient_names_note(cases: list, patients_csv=None) -> str | None:
    """The note on the patients read from the file names (train-seg prints it, model.json keeps it): every file its
    own patient (:func:`one_patient_per_file_note`), or few patients that look like sites / prefixes
    (:func:`grouped_patients_note`); None when the names look like patients or ``patients_csv`` gives them."""
    return one_patient_per_file_note(cases, patients_csv) or grouped_patients_note(cases, patients_csv)


# the repository's test CTs: pyradiomics' lung1 / lung2 (shared/data/pyradiomics_lung/lung1_image.nrrd ...), on which
# the segmentation models are tested (benchmarks/seg_test_report.py, seg_whole_ct.py) and never trained
REPOSITORY_TEST_PATIENTS = ("lung1", "lung2")
REPOSITORY_TEST_FOLDER = "pyradiomics_lung"


def repository_test_cases_note(cases: list) -> str | None:
    """A note when training includes the repository's test CTs (:data:`REPOSITORY_TEST_PATIENTS`: their patient,
    or a file in :data:`REPOSITORY_TEST_FOLDER`), as images or implant backgrounds: a model trained on them is no
    longer tested by the test reports on unseen cases."""
    hits = sorted({c.case_id for c in cases
                   if str(c.patient).casefold() in REPOSITORY_TEST_PATIENTS
                   or (c.image_path is not None and Path(c.image_path).parent.name == REPOSITORY_TEST_FOLDER)})
    if not hits:
        return None
    return (f"training includes the repository's test CTs ({', '.join(hits[:GROUPING_EXAMPLES])}"
            f"{' ...' if len(hits) > GROUPING_EXAMPLES else ''}: pyradiomics lung1 / lung2, which the segmentation "
            "test reports evaluate as never trained on): their results would be in-sample; leave them out of "
            "--images / --implant-into to keep them as test cases")


def _listing(folder: Path, what: str) -> dict:
    """{case name: file} of a folder; two files of one case name (e.g. A.nii.gz and A.nrrd) are refused.  Hidden
    files (a name starting with '.') are not cases: macOS writes an AppleDouble file ``._P01_1.nii.gz`` (4 kB of
    metadata, no image) beside every file copied onto a FAT / exFAT drive or a network share - QA: 3 such files in
    both folders stopped train-seg with "not on one grid ... header unreadable ... re-export the files"."""
    found: dict = {}
    for p in sorted(folder.iterdir()):
        if image_suffix(p.name) and not p.name.startswith("."):
            found.setdefault(case_name(p), []).append(p)
    dup = {c: ps for c, ps in found.items() if len(ps) > 1}
    if dup:
        shown = "; ".join(" and ".join(p.name for p in ps) for ps in list(dup.values())[:10])
        more = f"; and {len(dup) - 10} more" if len(dup) > 10 else ""
        raise InputError(f"{what} folder {folder} holds {counted(len(dup), 'case name')} in more than one file: "
                         f"{shown}{more}",
                         "keep one file per case name (move or rename the others): which one is meant is not clear")
    return {c: ps[0] for c, ps in found.items()}


SAME_NAME_FIX = "name each mask like its image (e.g. images/P01_ct.nii.gz and masks/P01_ct.nii.gz)"
SUBFOLDERS_SEARCHED = 200      # entries of a folder without image files looked into for image files, at most


def _letter_case_pairs(images: dict, masks: dict) -> list:
    """(image file, mask file) of the unpaired cases whose names differ in letter case only (P01_1 / p01_1: alike in
    a Windows / macOS folder, not to the pairing, which compares names exactly)."""
    lower = {}
    for c in set(masks) - set(images):
        lower.setdefault(c.lower(), []).append(c)
    return [(images[c], masks[lower[c.lower()][0]]) for c in sorted(set(images) - set(masks))
            if len(lower.get(c.lower(), [])) == 1]


def _letter_case_words(pairs: list) -> tuple:
    """(problem, fix) words for :func:`_letter_case_pairs`."""
    img, mask = pairs[0]
    return (f"{counted(len(pairs), 'image / mask name')} {agree(len(pairs), 'differs', 'differ')} in letter case "
            f"only (e.g. {img.name} and {mask.name})",
            f"rename the masks to their image's spelling (e.g. masks/{mask.name} to masks/"
            f"{img.name[: len(case_name(img))]}{mask.name[len(case_name(mask)):]}): names are compared letter for "
            "letter")


def _no_pairs_error(images_dir: Path, masks_dir: Path, images: dict, masks: dict) -> InputError:
    """Why no image of ``images_dir`` pairs with a mask of ``masks_dir`` (listings ``images`` / ``masks``,
    :func:`_listing`): a folder without image files (only per-patient subfolders: not searched), else two names of
    each side and, when every image and mask name differ by a suffix or a prefix (P01_image / P01_mask, Slicer's
    P01 / P01.seg, ct_001 / 001_mask), the rename needed."""
    for d, what, found in ((images_dir, "--images", images), (masks_dir, "--masks", masks)):
        if not found:
            return InputError(f"{what} folder {d} holds no image files ({', '.join(SUFFIXES)}){_subfolders_with(d)}",
                              "give --images and --masks as folders holding the files themselves, each CT with a "
                              "mask of the same file name (images/P01.nii.gz and masks/P01.nii.gz)")
    shown = (f"images e.g. {', '.join(images[c].name for c in sorted(images)[:2])}; masks e.g. "
             f"{', '.join(masks[c].name for c in sorted(masks)[:2])}")
    problem = f"no image in {images_dir} has a mask of the same name in {masks_dir} ({shown})"
    case_pairs = _letter_case_pairs(images, masks)
    if case_pairs:
        words, fix = _letter_case_words(case_pairs)
        return InputError(f"{problem}: {words}", f"{fix}; {SAME_NAME_FIX}")
    rename = _affix_difference(images, masks)
    if rename is None:
        return InputError(problem, SAME_NAME_FIX)
    (pa, sa), (pb, sb), stem = rename
    ex_img, ex_mask = images[pa + stem + sa].name, masks[pb + stem + sb].name
    new_mask = pa + stem + sa + ex_mask[len(pb + stem + sb):]
    diff = "; ".join(d for d in (_affix_words(pa, pb, end=False), _affix_words(sa, sb, end=True)) if d)
    if "_" in pa:          # ct_001: the patient would be "ct" (the text before the first '_') for every image
        alone = stem + ex_mask[len(pb + stem + sb):]
        return InputError(f"{problem}: {diff} (e.g. {ex_img} and {ex_mask})",
                          f"rename both to the case name alone (e.g. images/{ex_img} and masks/{ex_mask} to "
                          f"{alone}: the patient is the text before a name's first '_', {pa[:pa.index('_')]!r} for "
                          f"every image now), or give a --patients CSV; {SAME_NAME_FIX}")
    return InputError(f"{problem}: {diff} (e.g. {ex_img} and {ex_mask})",
                      f"rename the masks to their image's file name (e.g. masks/{ex_mask} to masks/{new_mask}), "
                      f"or both to the case name alone; {SAME_NAME_FIX}")


def _affix_words(a: str, b: str, end: bool) -> str:
    """How the image names' suffix (``end``; else prefix) ``a`` and the mask names' ``b`` differ, in words; "" when
    alike."""
    if a == b:
        return ""
    if a and b:
        return (f"the image names end in {a!r} and the mask names in {b!r}" if end else
                f"the image names begin with {a!r} and the mask names with {b!r}")
    longer, other = ("mask", "image") if b else ("image", "mask")
    if end:
        return f"the {longer} names add {a or b!r} to the {other} names"
    return f"the {longer} names begin with {a or b!r}, the {other} names do not"


def _affix_difference(images: dict, masks: dict) -> tuple | None:
    """((image prefix, image suffix), (mask prefix, mask suffix), an example stem) when the case names of both sides,
    each without a prefix and a suffix common to all of its side (ending / beginning with a '_', '-' or '.'; or
    none), match for at least one case: e.g. (("", "_image"), ("", "_mask"), "P01"); (("", ""), ("", ".seg"), "P01")
    for Slicer's P01.nrrd + P01.seg.nrrd; (("ct_", ""), ("", "_mask"), "001") for ct_001 + 001_mask.  The affixes
    that pair the most cases (then the shortest); None when no such affixes pair any case."""
    def common(names, prefix: bool) -> list:
        cut = (lambda n, i: n[: i + 1]) if prefix else (lambda n, i: n[i:])
        sets = [{""} | {cut(n, i) for i in range(1, len(n)) if n[i] in "_-."} for n in names]
        return sorted(set.intersection(*sets), key=len)

    def stems(names, pre: str, suf: str) -> set:
        return {n[len(pre): len(n) - len(suf)] for n in names if len(n) > len(pre) + len(suf)}

    sides = []
    for names in (images, masks):
        sides.append([(p, q) for p in common(names, True) for q in common(names, False)])
    best = None
    for a in sides[0]:
        for b in sides[1]:
            if a == b:
                continue
            both = stems(images, *a) & stems(masks, *b)
            score = (len(both), -len("".join(a + b)))
            if both and (best is None or score > best[0]):
                best = (score, a, b, sorted(both)[0])
    return best[1:] if best else None


def _subfolders_with(folder: Path) -> str:
    """``folder``'s subfolders holding image files, said ("; subfolders are not searched: ..."), or ""."""
    found, subs = [], 0
    try:
        for p in sorted(folder.iterdir())[:SUBFOLDERS_SEARCHED]:
            if p.is_dir():
                subs += 1
                if any(image_suffix(q.name) for q in p.iterdir()):
                    found.append(p.name)
    except OSError:
        return ""
    if found:
        return (f"; subfolders are not searched, and {len(found)} of its subfolders "
                f"{'holds' if len(found) == 1 else 'hold'} image files (e.g. "
                f"{', '.join(f + '/' for f in found[:3])}) - put the files of all cases into one folder")
    return f"; it holds {counted(subs, 'subfolder')} without image files (subfolders are not searched)" if subs else ""


DICOM_TO_PAIRS = ("convert each DICOM CT and its tumour contour (RTSTRUCT / SEG) into such a pair first (lungai has "
                  "no command that writes a DICOM CT as NIfTI), e.g. in 3D Slicer: load the CT and its RTSTRUCT "
                  "(DICOM module), export the GTV segment as a labelmap with the CT as reference (Segmentations "
                  "module), and save the CT into images/ and the labelmap into masks/ as <patient>_<n>.nii.gz")


DICOM_SEARCH_DEPTH = 4          # folder levels below --images / --masks searched for a DICOM export's files
DICOM_SEARCH_ENTRIES = 2000     # entries (files and folders) looked at, at most


def _holds_dicom(folder: Path) -> bool:
    """``folder``, or a folder in it down to :data:`DICOM_SEARCH_DEPTH` levels (a DICOM export: patient / study /
    series folders), holds a DICOM file: searched level by level, up to the first DICOM file or
    :data:`DICOM_SEARCH_ENTRIES` entries."""
    from lungai.dose.read import _is_dicom

    level, seen = [Path(folder)], 0
    for _ in range(DICOM_SEARCH_DEPTH + 1):
        below = []
        for d in level:
            try:
                entries = sorted(d.iterdir())
            except OSError:
                continue
            for p in entries:
                seen += 1
                if seen > DICOM_SEARCH_ENTRIES:
                    return False
                if p.is_dir():
                    below.append(p)
                elif p.is_file() and _is_dicom(p):
                    return True
        level = below
    return False


def check_grids(cases: list) -> None:
    """Every image / mask file pair on one grid (size, spacing, origin, direction), read from the file headers
    only (not the voxels), before any training: one InputError names every mask off its image's grid - the held-out
    test cases too, which training never reads (``lungai eval-seg --split test`` would fail on them).  A mask whose
    header carries another PatientID than its image's (NRRD / MHA keys,
    :func:`lungai.dicom.reference.other_patient_mask`) is refused first, every such pair named (QA maskpid59)."""
    from lungai.dicom.reference import MASK_PATIENT_FIX, other_patient_mask
    from lungai.dose.read import image_header
    from lungai.io.geometry import assert_same_geometry

    bad, fixes, others, unreadable = [], {}, [], []
    files = [c for c in cases if c.image_path is not None and c.mask_path is not None]
    for c in files:
        headers = []
        for path in (c.image_path, c.mask_path):
            try:
                headers.append(_header(path))
            except RuntimeError:        # the file named (QA: "the header of A or B", said as "not on one grid")
                unreadable.append(f"{Path(path).parent.name}/{Path(path).name}")
        if len(headers) < 2:
            continue
        image, mask = headers
        # the PatientIDs the two headers may carry (NRRD / MHA keys): another patient's mask, whatever its grid
        other = other_patient_mask(Path(c.mask_path).name, image_header(c.mask_path), image_header(c.image_path))
        if other:
            others.append(f"{c.case_id}: {other}")
        name = Path(c.mask_path).name
        try:
            assert_same_geometry(image, mask, what=f"mask {name}", any_order=True)  # read_mask reorients
        except InputError as exc:
            bad.append(f"{c.case_id}: {exc.problem}")
            fixes.setdefault(exc.fix.replace(f"mask {name}", "mask"), []).append((name, exc.fix))
    if unreadable:
        more = f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else ""
        raise InputError(f"{counted(len(unreadable), 'file')} of the {len(files)} image / mask pairs cannot be read "
                         "as an image (corrupt, cut short or not an image file): " + ", ".join(unreadable[:10]) + more,
                         "re-export or copy these files again, or move them (with their partner) out of the two "
                         "folders (nothing was trained)")
    if others:
        more = f"; and {len(others) - 10} more" if len(others) > 10 else ""
        raise InputError(f"{len(others)} of {len(files)} image / mask pairs hold another patient's mask (the "
                         "PatientIDs their headers carry differ) - " + "; ".join(others[:10]) + more,
                         MASK_PATIENT_FIX + " (nothing was trained)")
    if bad:
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InputError(f"{len(bad)} of {len(files)} image / mask pairs are not on one grid - "
                         + "; ".join(bad[:10]) + more, _grid_fix(fixes) + " (nothing was trained)")


def _grid_fix(fixes: dict) -> str:
    """The fix of :func:`check_grids` for the masks off their images' grids (``fixes``: the fix said of "the mask"
    -> [(mask file name, its own fix)]): one mask's own fix; for more, each fix with every mask it is for, named (QA
    trainfollow67: the fix named only the last mask of the list)."""
    named = [pair for group in fixes.values() for pair in group]
    if len(named) == 1:
        return named[0][1]
    return "; ".join(f"for {agree(len(group), 'the mask', f'each of the {len(group)} masks')} "
                     f"{', '.join(name for name, _ in group)}: {generic}" for generic, group in fixes.items())


def _header(path) -> sitk.ImageFileReader:
    """A reader holding the file's header (GetSize, GetSpacing, GetOrigin, GetDirection as an image has them)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def split_summary(train: list, val: list, test: list) -> str:
    """The split as train-seg prints it: cases and patients of each part, the held-out test cases named."""
    def part(cases):
        n = len({c.patient for c in cases})
        return f"{len(cases)} case{'s' * (len(cases) != 1)} / {n} patient{'s' * (n != 1)}"

    names = sorted(c.case_id for c in test)
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (f"split by patient: train {part(train)}, validation {part(val)}, " +
            (f"test {part(test)} (held out: {shown})" if test else "no test split (--test-fraction 0)"))


def pair_files(images_dir, masks_dir, patients_csv=None, allow_unpaired: bool = False, label: int | None = None) -> list:
    """The (image, mask) pairs of two folders, paired by file name.  An image without a mask (or a mask without
    an image) is an InputError naming them, unless ``allow_unpaired`` (e.g. to rebuild a recorded subset of
    cases, where the other files do not matter): then only the pairs are kept.  ``label``: the tumour is this
    label of every mask (:func:`load_images` gives it as the 0/1 mask; a mask without it is tumour-free)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d, what in ((images_dir, "--images"), (masks_dir, "--masks")):
        if not d.is_dir():
            raise InputError(f"{what} folder {d} does not exist", "give a folder of .nii.gz / .nrrd / .mha files")
    if images_dir.resolve() == masks_dir.resolve():
        # (QA: every CT was paired with itself as its own mask, refused as "holds values -987 .. 882 ... is it an
        # image rather than a label map?" once per file, the fix "give a label map")
        raise InputError(f"--images and --masks are the same folder ({images_dir}): every file in it would be paired "
                         "with itself, each CT taken as its own mask",
                         "put the CTs in one folder and their tumour masks in another, each mask with its CT's file "
                         "name (images/P01_1.nii.gz and masks/P01_1.nii.gz), and give the two folders")
    images, masks = _listing(images_dir, "--images"), _listing(masks_dir, "--masks")
    for d, what, found in ((images_dir, "--images", images), (masks_dir, "--masks", masks)):
        if not found and _holds_dicom(d):
            raise InputError(f"{what} folder {d} holds DICOM files, not image files: --images and --masks are "
                             "folders of NIfTI / NRRD / MHA files, each CT with a mask of the same file name "
                             "(images/P01.nii.gz and masks/P01.nii.gz)", DICOM_TO_PAIRS)
    common = sorted(set(images) & set(masks))
    if common and not allow_unpaired:
        lonely = [f"{images[c].name} (no mask)" for c in sorted(set(images) - set(masks))] + \
                 [f"{masks[c].name} (no image)" for c in sorted(set(masks) - set(images))]
        if lonely:
            more = f", and {len(lonely) - 10} more" if len(lonely) > 10 else ""
            case_pairs = _letter_case_pairs(images, masks)
            words, fix = _letter_case_words(case_pairs) if case_pairs else ("", "")
            raise InputError(f"{counted(len(lonely), 'file')} in {images_dir} / {masks_dir} "
                             f"{'has' if len(lonely) == 1 else 'have'} no partner of the same name: "
                             f"{', '.join(lonely[:10])}{more}" + (f"; {words}" if words else ""),
                             (f"{fix}; " if fix else "") +
                             "give every image a mask with the same file name (e.g. images/P01_ct.nii.gz and "
                             "masks/P01_ct.nii.gz), or move the unpaired files out of the two folders")
    if not common:
        raise _no_pairs_error(images_dir, masks_dir, images, masks)
    mapping = _read_patient_csv(patients_csv) if patients_csv else {}
    missing = [c for c in common if mapping and c not in mapping]
    if missing:
        written = sorted(k for k in mapping if image_suffix(k))      # "P01_ct.nii.gz" for P01_ct
        hint = (f"; its case column holds file names (e.g. {written[0]}): write the case as the file name "
                f"without its extension ({case_name(Path(written[0]))})" if written else "")
        raise InputError(f"{counted(len(missing), 'case')} {agree(len(missing), 'is', 'are')} not in "
                         f"{patients_csv} (e.g. {missing[0]}){hint}",
                         "add a row case,patient for every image (case: the file name without its extension)")
    return [Case(c, mapping.get(c, patient_of(c)), images[c], masks[c], label=label,
                 meta={} if mapping else {"patient_from_name": True}) for c in common]


SWAP_SAMPLE = 3       # pairs read to tell swapped --images / --masks folders


def _looks_like_label_map(path) -> bool:
    """The file's voxels are those of a label map: whole numbers from 0, a few distinct values (a CT in HU goes
    below 0 - the air - and holds hundreds of values)."""
    image = sitk.ReadImage(str(path))       # kept: an array view of a temporary image points at freed memory
    arr = sitk.GetArrayViewFromImage(image)
    if arr.size == 0 or arr.min() < 0:
        return False
    values = np.unique(arr)
    return len(values) <= 64 and bool(np.all(values == np.round(values)))


def swapped_folders(cases: list) -> InputError | None:
    """For a check that refused every case of two folders (:func:`check_masks`, ``eval-seg``'s
    ``lungai.seg.evaluate.check_cases``): the InputError saying --images and --masks look swapped when the first
    :data:`SWAP_SAMPLE` pairs' "images" are all label maps and their "masks" none (QA: ``--images masks/ --masks
    images/`` said "is it an image rather than a label map?", or "does not look like a CT", once per file and never
    that the folders were given the other way round); else None (a file that cannot be read: None)."""
    files = [c for c in cases if c.image_path is not None and c.mask_path is not None]
    dirs = {(Path(c.image_path).parent, Path(c.mask_path).parent) for c in files}
    if not files or len(dirs) != 1:
        return None
    try:
        if not all(_looks_like_label_map(c.image_path) and not _looks_like_label_map(c.mask_path)
                   for c in files[:SWAP_SAMPLE]):
            return None
    except RuntimeError:               # a file SimpleITK cannot read: named by the check itself
        return None
    from lungai.dicom.masks import command_word

    images, masks = dirs.pop()
    return InputError(f"--images and --masks look swapped: the files in --images {images} are label maps (whole "
                      f"numbers from 0) and those in --masks {masks} are images (CTs), so no pair can be used",
                      f"give the CTs' folder as --images and the masks' as --masks: --images {command_word(masks)} "
                      f"--masks {command_word(images)}")


def choose_label(n: int) -> str:
    """The fix for a folder of masks with several labels: ``--label N`` (train-seg, eval-seg)."""
    return (f"choose the tumour's label of every mask with --label N (e.g. --label {n}; 1 in masks with 1 = GTV, "
            "3 / 4 = lungs)")


def check_label_found(label: int | None, seen: set, n_masks: int | None = None, other_tumours: bool = False) -> None:
    """``--label N`` must be a label of at least one mask (``seen``: the masks' labels, of ``n_masks`` masks); a
    mask without it is a tumour-free case.  Masks that are all empty are said to be so (no label to choose).
    With ``other_tumours`` (train-seg --synthetic / --implant: other tumours train the model) a label in no mask
    makes every mask tumour-free, as masks that are all empty without --label: accepted (never another label
    suggested: the lungs' label 3 would be trained as tumour)."""
    if other_tumours:
        return
    if label is not None and not seen and n_masks:
        raise InputError(f"no mask holds label {label}: all {n_masks} masks are empty (no nonzero voxel)",
                         "check that --masks is the folder of tumour masks (nonzero = tumour) and that the masks "
                         "were exported with their contours")
    if label is not None and label not in seen:
        raise InputError(f"no mask holds label {label} (their labels: {', '.join(map(str, sorted(seen))) or 'none'})",
                         f"give the tumour's label with --label N, e.g. --label {min(seen) if seen else 1}")


# A binary mask's "on" value in the 0/255 convention (ITK-SNAP / MATLAB / PNG exports, dcmrtstruct2nii's masks).
BINARY_255 = 255


def binary_255_problem(name: str, labels: set, label: int | None) -> str | None:
    """With ``--label N`` (N not 255): the problem of a mask ``name`` whose only nonzero value is 255 - a binary
    tumour mask written 0/255, which ``--label N`` would take as tumour-free (QA: a folder of 0/1 label maps with a
    few 0/255 masks, ``train-seg --label 1``: those tumours were trained as background, with only a note), else None."""
    if label is None or label == BINARY_255 or labels != {BINARY_255}:
        return None
    return (f"mask {name} holds only the value {BINARY_255} (a 0/{BINARY_255} binary mask: its nonzero voxels are a "
            f"tumour), but --label {label} takes label {label} as tumour, so it would be a tumour-free case")


BINARY_255_FIX = (f"write every mask in one convention: set the {BINARY_255} of these binary masks to the tumour's "
                  "label (e.g. 1), or leave --label out if every mask is a binary tumour mask (nonzero = tumour)")


def corners_share(tumour: np.ndarray) -> float | None:
    """The share of the image's voxels a mask's tumour (``tumour``: its (z, y, x) array, nonzero = tumour) takes when
    it takes all 8 corner voxels of the image - an inverted mask (0 on the tumour, 1 on the rest), a box, or the whole
    image -, else None.  A tumour's outline never reaches every corner of its CT or crop: none of the 779 LIDC crops'
    masks nor the planning CTs' GTVs takes even one.  QA train71: 14 LIDC crops with inverted masks trained without a
    word (validation Dice 0.81 for a model that marks everything but the nodule; eval-seg on inverted masks 0.82)."""
    arr = np.asarray(tumour)
    if arr.ndim != 3 or not arr.size or not np.all(arr[np.ix_((0, -1), (0, -1), (0, -1))]):
        return None
    return np.count_nonzero(arr) / arr.size


CORNERS_PROBLEM = ("a tumour's outline reaches no corner of its image: such a mask is inverted (0 on the tumour, 1 on "
                   "the rest), or a box / the whole image")


def corners_problem(name: str, tumour: np.ndarray) -> str | None:
    """The problem of a mask ``name`` whose tumour takes every corner of its image (:func:`corners_share`), or None."""
    share = corners_share(tumour)
    if share is None:
        return None
    return f"mask {name} marks all 8 corners of its image as tumour ({share:.0%} of its voxels): {CORNERS_PROBLEM}"


CORNERS_FIX = ("invert such a mask if 0 marks its tumour (sitk.Cast(mask == 0, sitk.sitkUInt8), or Slicer's "
               "Segment Editor: Logical operators, Invert), or draw the tumour's outline in place of a box; a tumour "
               "that really fills the image to every corner needs a CT with a margin round the whole tumour")


def check_masks(cases: list, label: int | None = None, progress=None, other_tumours: bool = False) -> str | None:
    """train-seg's masks checked before any training, each read once (not the CTs): without ``label`` a mask has
    one label (:func:`lungai.dicom.masks.check_one_label`: a label map of GTV + lungs would train on the lungs as
    tumour), with it ``label`` is in at least one mask; no mask's tumour takes every corner of its image
    (:func:`corners_share`: an inverted mask, a box).  One InputError names every refused mask file.  Masks that
    are all empty are refused unless ``other_tumours`` (synthetic or implanted tumours train the model).  Returns
    :func:`other_labels_note` (with ``label``: the masks' other labels are background), or None."""
    from collections import Counter

    from lungai.dicom.masks import check_one_label
    from lungai.io import read_mask

    bad, seen, first, counts, unusable, refused, corners = [], set(), None, Counter(), [], set(), []
    files = [c for c in cases if c.mask_path is not None]
    for c in files:
        try:
            mask = read_mask(c.mask_path)
        except InputError as exc:     # e.g. a blurred float mask: every such file named, after all were read
            unusable.append(exc)
            refused.add(c.case_id)
            if progress is not None:
                progress.update(1, c.case_id)
            continue
        values = sitk.GetArrayViewFromImage(mask)        # of ``mask``, kept alive here
        labels = {int(v) for v in np.unique(values) if v}
        share = corners_share(values != 0 if label is None else values == label)
        if share is not None:
            corners.append(f"{Path(c.mask_path).name} ({share:.0%} of its voxels)")
        seen |= labels
        counts.update(labels)
        c.meta["tumour_free"] = not labels if label is None else label not in labels
        binary = binary_255_problem(Path(c.mask_path).name, labels, label)
        if binary:
            bad.append(binary)
            refused.add(c.case_id)
        if label is None:
            try:
                check_one_label(mask, f"mask {Path(c.mask_path).name}", "tumour", choose_label)
            except InputError as exc:
                bad.append(exc.problem)
                refused.add(c.case_id)
                first = first or min(labels)
        if progress is not None:
            progress.update(1, c.case_id)
    swapped = swapped_folders(files) if files and len(refused) == len(files) else None  # (CTs stored 0 .. 4095 too)
    if swapped:
        raise InputError(swapped.problem, swapped.fix + " (nothing was trained)")
    if len(unusable) == 1:
        raise InputError(unusable[0].problem, unusable[0].fix + " (nothing was trained)")
    if unusable:
        listed = "; ".join(exc.problem for exc in unusable[:10]) + (
            f"; and {len(unusable) - 10} more" if len(unusable) > 10 else "")
        fixes = list(dict.fromkeys(exc.fix for exc in unusable if exc.fix))
        raise InputError(f"{counted_of(len(unusable), len(files), 'mask')} cannot be used - {listed}",
                         "; ".join(fixes[:3]) + " (nothing was trained)")
    if bad:
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        if label is not None:      # with --label only the 0/255 binary masks are refused
            binary = agree(len(bad), f"is a binary 0/{BINARY_255} mask", f"are binary 0/{BINARY_255} masks")
            raise InputError(f"{counted_of(len(bad), len(files), 'mask')} {binary} - " + "; ".join(bad[:10]) + more,
                             BINARY_255_FIX + " (nothing was trained)")
        raise InputError(f"{counted_of(len(bad), len(files), 'mask')} {agree(len(bad), 'holds', 'hold')} several "
                         "labels - " + "; ".join(bad[:10]) + more,
                         choose_label(first) + " (nothing was trained)")
    if corners:
        more = f", and {len(corners) - 10} more" if len(corners) > 10 else ""
        raise InputError(f"{counted_of(len(corners), len(files), 'mask')} {agree(len(corners), 'marks', 'mark')} all "
                         f"8 corners of the image as tumour: " + ", ".join(corners[:10]) + more
                         + f" - {CORNERS_PROBLEM}", CORNERS_FIX + " (nothing was trained)")
    if files and not seen and not other_tumours:          # first: with --label N there is no label to choose
        raise InputError((f"none of the {len(files)} masks holds a tumour voxel (all are empty)" if len(files) > 1
                          else "the one mask holds no tumour voxel (it is empty)")
                         + f": a model trained on {'them' if len(files) > 1 else 'it'} could only learn that there is no "
                         "tumour",
                         "check that --masks is the folder of tumour masks (nonzero = tumour); tumour-free cases "
                         "are fine next to masks with tumours, or with --synthetic / --implant tumours")
    check_label_found(label, seen, len(files), other_tumours)
    return other_labels_note(label, counts, len(files))


TUMOUR_FREE_SHOWN = 10        # mask files named in the tumour-free note, at most


def tumour_free_note(cases: list) -> str | None:
    """"K of M masks hold no tumour (tumour-free cases): A_1, B_2, ..." for the mask files :func:`check_masks`
    found without a tumour voxel (without the tumour's --label), or None when every mask holds one."""
    files = [c for c in cases if c.mask_path is not None]
    free = sorted(Path(c.mask_path).name for c in files if c.meta.get("tumour_free"))
    if not free:
        return None
    shown = ", ".join(free[:TUMOUR_FREE_SHOWN]) + (f" and {len(free) - TUMOUR_FREE_SHOWN} more"
                                                    if len(free) > TUMOUR_FREE_SHOWN else "")
    k = len(free)
    return (f"{counted_of(k, len(files), 'mask')} {agree(k, 'holds', 'hold')} no tumour "
            f"({agree(k, 'a tumour-free case', 'tumour-free cases')}): {shown}; "
            f"{agree(k, 'if it should, check this mask file', 'if they should, check these mask files')}"
            + ("" if cases[0].label is None else f" (--label {cases[0].label})"))


def other_labels_note(label: int | None, counts: dict, n_masks: int, evaluating: bool = False) -> str | None:
    """With ``--label N``: a note naming the masks' other nonzero labels (``counts``: label -> masks holding it),
    trained on as background (``evaluating``: eval-seg's words, counted as background); None without ``label``
    or other labels."""
    others = sorted(v for v in counts if v != label)
    if label is None or not others:
        return None
    named = ", ".join(f"{v} (in {counted_of(counts[v], n_masks, 'mask')})" for v in others)
    if evaluating:
        return (f"--label {label}: the masks also hold label{'s' * (len(others) > 1)} {named}; they count as "
                f"background, not tumour (a mask without label {label} is a tumour-free case). If they are tumour "
                f"too (e.g. GTV-2, involved nodes), merge them into label {label} in the masks")
    return (f"--label {label}: the masks also hold label{'s' * (len(others) > 1)} {named}; they are trained on as "
            "background, not tumour. Whole CTs draw no hard-negative patches in or next to those of soft tissue "
            f"(mean above {OTHER_LABEL_SOFT_TISSUE_HU:g} HU: they may be tumour), only in air-filled ones such as the "
            f"lungs. If they are tumour too (e.g. GTV-2, involved nodes), merge them into label {label} in the masks")


def check_patient_spellings(cases: list) -> None:
    """InputError when patients differ only in letter case (``P01_1`` / ``p01_2``, a crop ``lung1-002_a`` beside the
    implant background ``LUNG1-002``, or a --patients CSV writing a patient both ways): the split would take them
    for two patients and could put one patient's cases into training and validation / test.  Not joined by
    guessing (two spellings may be two sites' numbering): the user writes one spelling.  Leading zeros likewise
    (``LUNG1-7_a`` / ``LUNG1-007_b``: :func:`lungai.model_files.loose_id`, as eval-seg notes such names against a
    model's patients) - QA: the split (seed 7) put ``LUNG1-7_a`` into validation and ``LUNG1-007_b`` into training."""
    from lungai.model_files import loose_id

    _check_separator_spellings(cases)
    spellings: dict = {}
    for c in cases:
        spellings.setdefault(loose_id(c.patient), {}).setdefault(str(c.patient), c.case_id)
    clashes = [names for names in spellings.values() if len(names) > 1]
    if not clashes:
        return
    shown = "; ".join(" / ".join(f"{p!r} (e.g. {case})" for p, case in sorted(names.items()))
                      for names in clashes[:5]) + (f"; and {len(clashes) - 5} more" if len(clashes) > 5 else "")
    how = ("letter case" if all(len({n.casefold() for n in names}) == 1 for names in clashes)
           else "letter case or leading zeros")
    raise InputError(f"{counted(len(clashes), 'patient')} {agree(len(clashes), 'is', 'are')} written in more than one "
                     f"{how}: {shown}; the split would take each spelling for another patient and could put one "
                     "patient's cases into both training and validation / test",
                     "write each patient in one spelling: rename the files (<patient>_<n>, the "
                     "same letter case and zeros), or give --patients CSV with columns case,patient naming each patient once")


def separator_prefixes(name: str) -> list:
    """The starts of a case name without ``_`` cut before each character that is not a letter or digit, shortest
    first (``P01-2`` -> ``P01``; ``LIDC-IDRI-0001-R-1`` -> ``LIDC``, ``LIDC-IDRI``, ``LIDC-IDRI-0001``,
    ``LIDC-IDRI-0001-R``): the patients a name in another naming scheme than ``<patient>_<n>`` may mean (its own
    patient is the whole name); [] for a name with ``_``."""
    name = str(name)
    return [] if "_" in name else [name[:i] for i in range(1, len(name)) if not name[i].isalnum()]


def _check_separator_spellings(cases: list) -> None:
    """InputError when an image file name without ``_`` (its patient read from the name: the whole name) begins with
    another patient's name and a separator that is not a letter or digit (``P01-2`` beside ``P01_1``; ``p1-9``
    beside ``P01``: :func:`lungai.model_files.loose_id`): one patient's files in two naming schemes, which the split
    took for two patients and could put into training and validation / test (QA: 9 LIDC crops renamed so, seed 1
    validated on P01_1 and trained on P01-2, without a word).  Not joined by guessing: the user renames, or gives
    --patients.  A name that only goes on with letters or digits (``P010`` beside ``P01``) is not taken as such."""
    from lungai.model_files import loose_id

    named: dict = {}
    for c in cases:
        named.setdefault(loose_id(c.patient), (str(c.patient), c.case_id))
    clashes = []
    for c in cases:
        name = str(c.case_id)
        if not c.meta.get("patient_from_name"):
            continue
        start = next((p for p in separator_prefixes(name) if loose_id(p) in named), None)
        if start is not None:
            clashes.append((c, named[loose_id(start)], len(start)))
    if not clashes:
        return
    shown = "; ".join(f"{c.case_id} (taken as patient {c.patient!r}, beside {p!r}: e.g. {case})"
                      for c, (p, case), _ in clashes[:5]) + (f"; and {len(clashes) - 5} more" if len(clashes) > 5 else "")
    c, (p, _), cut = clashes[0]
    file = Path(c.image_path).name if c.image_path is not None else c.case_id
    renamed = p + "_" + c.case_id[cut + 1:] + file[len(c.case_id):]
    n = len(clashes)
    raise InputError(f"{counted(n, 'image file name')} without '_' {agree(n, 'begins', 'begin')} with another "
                     f"patient's name and a separator: {shown}; the patient is the text before a name's first '_' "
                     f"(the whole name when it has none), so the split would take "
                     f"{agree(n, 'it for another patient', 'them for other patients')} and could put one patient's "
                     "files into both training and validation / test",
                     f"name every file <patient>_<n> (e.g. rename {file} to {renamed} in both folders, image and "
                     "mask), or give --patients CSV with columns case,patient (nothing was trained)")


def split_patients(cases: list, val_fraction: float, seed: int, test_fraction: float = 0.0) -> tuple:
    """(train, val) - or (train, val, test) when ``test_fraction`` > 0 - with no patient in two sets; at
    least one patient in each (a ``test_fraction`` that leaves none for validation is refused).  The validation
    patients are the same draw with or without a test split only when ``test_fraction`` is 0 (test patients are taken from the end of the same permutation).

    The patients of implant backgrounds (``meta["implanted"]``) always stay in training: there are few such
    real CTs, each carrying all of its implants, so a draw would put a large share of the implants into
    one set; implanted tumours are tested on a CT no model saw (``benchmarks/seg_test_report.py``).  Patients
    written in two letter cases are refused (:func:`check_patient_spellings`)."""
    check_patient_spellings(cases)
    fixed = {c.patient for c in cases if c.meta.get("implanted")}
    patients = sorted({c.patient for c in cases} - fixed)
    spare = 0 if fixed else 1            # patients left for training after validation and test
    need = (3 if test_fraction > 0 else 2) - (1 - spare)
    if len(patients) < need:
        who = (f"all {len(cases)} cases belong to one patient ({patients[0]!r})" if len(patients) == 1 else
               f"the {len(cases)} cases belong to only {len(patients)} patients"
               + (" besides the implant backgrounds" if fixed else ""))
        raise InputError(who, f"training needs at least {need} patients for the split: "
                              f"{patients_csv_fix(sorted(cases, key=lambda c: c.case_id)[0])} (nothing was trained)")
    rng = np.random.default_rng(seed)
    order = [patients[i] for i in rng.permutation(len(patients))]
    n_test = 0 if test_fraction <= 0 else max(1, int(round(test_fraction * len(patients))))
    n_val = min(len(patients) - spare - n_test, max(1, int(round(val_fraction * len(patients)))))
    if n_val < 1:          # the test split took the patients validation needs: epochs chosen on nothing
        left = "; the implant backgrounds stay in training" if fixed else ", and training needs one"
        smaller = np.floor(100 * (len(patients) - spare - 1) / len(patients)) / 100
        raise InputError(f"--test-fraction {test_fraction:g} leaves no validation patient: it holds out {n_test} of "
                         f"the {len(patients)} patients for the test split{left}",
                         f"give a smaller --test-fraction (e.g. {smaller:.2f}: "
                         f"{counted(round(smaller * len(patients)), 'test patient')}, one for validation) or more "
                         "patients (nothing was trained)")
    val_p = set(order[:n_val])
    test_p = set(order[len(order) - n_test:]) if n_test else set()
    train = [c for c in cases if c.patient not in val_p | test_p]       # incl. every implant background
    val = [c for c in cases if c.patient in val_p]
    test = [c for c in cases if c.patient in test_p]
    assert not ({c.patient for c in train} & {c.patient for c in val} or
                {c.patient for c in test} & ({c.patient for c in train} | {c.patient for c in val}))
    return (train, val, test) if test_fraction > 0 else (train, val)


def synthetic_cases(n: int, seed: int, shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                    lung_crops: bool = True) -> list:
    """Crops of ``n`` random phantoms (~40 % hard cases), deterministic.

    Per phantom: a crop around the tumour with a random 10-35 mm margin, and (``lung_crops``) a
    crop of random size at a random lung voxel -- usually tumour-free -- so the model also sees
    vessels, pleura and mediastinum without a tumour and does not learn "there is always a blob".
    """
    from lungai.synthetic import labels, make_phantom, random_spec

    out = []
    sp = np.array(spacing, dtype=float)
    for i in range(n):
        s = seed + i
        ph = make_phantom(random_spec(s, shape=shape, spacing=spacing, diameter_range=(6.0, 80.0)), seed=s)
        lab = sitk.GetArrayViewFromImage(ph.labels)
        tum = labels.tumour_mask(lab)
        if not tum.any():
            continue
        mask = sitk.GetImageFromArray(tum.astype(np.uint8))
        mask.CopyInformation(ph.labels)
        rng = np.random.default_rng(s)
        zz, yy, xx = np.nonzero(tum)
        m = rng.uniform(10.0, 35.0, size=3) / sp
        lo = np.maximum(0, np.array([xx.min(), yy.min(), zz.min()]) - m).astype(int)
        hi = np.minimum(shape, np.array([xx.max(), yy.max(), zz.max()]) + 1 + m).astype(int)
        meta = {"hard_case": ph.meta.get("hard_case"), "diameter_mm": ph.meta["tumour"]["diameter_mm"]}
        out.append(_crop_case(f"phantom-{s}_0", f"phantom-{s}", ph.ct, mask, lo, hi, meta))
        if lung_crops:
            lung = np.argwhere(np.isin(lab, (labels.RIGHT_LUNG, labels.LEFT_LUNG)))
            if len(lung):
                k, j, c = lung[rng.integers(len(lung))]
                half = rng.uniform(20.0, 45.0, size=3) / sp / 2
                centre = np.array([c, j, k], dtype=float)
                lo = np.maximum(0, centre - half).astype(int)
                hi = np.minimum(shape, centre + half + 1).astype(int)
                out.append(_crop_case(f"phantom-{s}_lung", f"phantom-{s}", ph.ct, mask, lo, hi,
                                      {**meta, "lung_crop": True}))
    return out


def whole_chest_cases(n: int, seed: int, shape=(256, 256, 96), spacing=(1.4, 1.4, 2.5)) -> list:
    """``n`` whole synthetic chests (random tumour, ~40 % hard cases), deterministic from ``seed``.

    Trained on the lungs' box as automatic mode sees it, so the model meets whole vessel trees, the
    hila, chest wall and mediastinal border next to (and far from) tumours; validated in automatic mode.
    """
    from lungai.synthetic import labels, make_phantom, random_spec

    out = []
    for i in range(n):
        s = seed + i
        ph = make_phantom(random_spec(s, shape=shape, spacing=spacing, diameter_range=(6.0, 80.0)), seed=s)
        tum = labels.tumour_mask(sitk.GetArrayViewFromImage(ph.labels))
        mask = sitk.GetImageFromArray(tum.astype(np.uint8))
        mask.CopyInformation(ph.labels)
        meta = {"hard_case": ph.meta.get("hard_case"), "diameter_mm": ph.meta["tumour"]["diameter_mm"],
                "whole_chest": True}
        out.append(Case(f"chest-{s}_0", f"chest-{s}", image=ph.ct, mask=mask, meta=meta))
    return out


def read_backgrounds(path) -> list:
    """Real CTs to implant tumours into: a CT file, or a CSV with columns ``image`` and optionally
    ``mask`` (an existing tumour, kept as tumour), ``label`` (the mask's tumour value; default: any
    non-zero) and ``patient`` (default: the image's case name before ``_``).  Relative paths are read
    from the CSV's folder.  Returns dicts {image, mask, label, patient}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--implant-into {path} does not exist", "give a CT file or a CSV with an 'image' column")
    if image_suffix(path.name):
        return [{"image": path, "mask": None, "label": None, "patient": patient_of(case_name(path))}]
    rows, lines = [], []        # each row and its line in the file (for the errors naming a cell)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            rows.append(r)
            lines.append(reader.line_num)
    if not rows or "image" not in rows[0]:
        raise InputError(f"{path} needs an 'image' column", "write one row per CT: image[,mask,label,patient]")
    from lungai.dicom.masks import manifest_cell
    from lungai.io.tables import check_listed_files, listed_path, missing_listed_file

    out = []
    written = [f for r in rows for f in (r["image"], r.get("mask")) if f]
    # a moved data folder, or cells written from the current folder (not the CSV's): said with the fix, as
    # radiomics-batch's manifest (QA radfollow65)
    check_listed_files([listed_path(f, path) for f in written], path, what="--implant-into CSV", written=written)
    for r, line in zip(rows, lines):
        if not (r["image"] or "").strip():
            raise InputError(f"--implant-into CSV {path.name} line {line}: its image cell is empty",
                             "give the row's CT file in the image column, or remove the row")
        img = listed_path(r["image"], path)
        mask = listed_path(r["mask"], path) if r.get("mask") else None
        for col in ("image", "mask"):
            if r.get(col):       # a row's missing file: by its line, column and cell as written (QA radfollow65)
                error = missing_listed_file(r[col], path, f"--implant-into CSV {path.name} line {line}, {col} cell "
                                            f"{manifest_cell(r[col])}", what="--implant-into CSV")
                if error is not None:
                    raise error
        out.append({"image": img, "mask": mask, "label": int(r["label"]) if r.get("label") else None,
                    "patient": r.get("patient") or patient_of(case_name(img))})
    return out


def unmasked_backgrounds_note(cases) -> str | None:
    """The note of a training run whose implant backgrounds (``--implant-into``) include CTs given without a tumour
    mask (a single CT file, or a CSV row without ``mask``): each is trained on as tumour-free - its whole CT a
    source of hard-negative (background) patches, implants placed anywhere in its lungs -, which is wrong for a CT
    holding a tumour (e.g. an NSCLC planning CT).  Named per CT; None when every background has its mask."""
    files = sorted({c.meta["background_without_mask"] for c in cases if c.meta.get("background_without_mask")})
    if not files:
        return None
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    one = len(files) == 1
    return (f"{len(files)} implant background CT{'' if one else 's'} given without a tumour mask, taken as "
            f"tumour-free (all {'its' if one else 'their'} voxels background, implants placed anywhere in the "
            f"lungs): {shown}; if a CT holds a tumour, give image,mask in a CSV (--implant-into backgrounds.csv with "
            "columns image,mask[,label,patient]) so its tumour is kept as tumour and no implant is placed on it")


IMPLANT_CONTEXT_MM = 24.0   # an implanted crop keeps this much context (x its grid scale) around the tumour


def implanted_cases(backgrounds: list, n: int, seed: int, progress=None, crops: bool = True,
                    seed_box_mm: float = 60.0) -> list:
    """``n`` synthetic tumours implanted into the real CTs ``backgrounds`` (from :func:`read_backgrounds`),
    taken in turn; deterministic from ``seed``.  Each case keeps its background's patient (and the split keeps
    implant backgrounds in training: :func:`split_patients`).  Mask = tumour (solid + ground glass, and the
    background's own tumour); atelectasis and effusion next to the tumour are in the image but not in the mask
    (hard negatives).

    ``crops`` (training): each implant becomes a crop around the tumour (+ ``IMPLANT_CONTEXT_MM`` x scale) shown
    on the model grid the growing box of seed mode would end on for its size
    (:func:`lungai.seg.infer.grid_scale_for`; a 100 mm tumour is seen on the x2 grid, as at inference), and each
    background is added once whole (automatic mode's region, hard negatives) plus a crop of its own tumour on
    that tumour's grid.  ``crops=False`` gives the whole implanted CTs (evaluation in seed mode)."""
    from lungai.io import read_ct, read_mask
    from lungai.synthetic.implant import implant, prepare_background, random_implant_spec

    prepared, out = {}, []
    for i in range(n):
        b = backgrounds[i % len(backgrounds)]
        key = str(b["image"])
        if key not in prepared:
            ct = read_ct(b["image"])
            mask = None
            if b["mask"] is not None:
                m = read_mask(b["mask"], reference=ct)
                mask = sitk.Cast((m == int(b["label"])) if b["label"] is not None else (m > 0), sitk.sitkUInt8)
            prepared[key] = prepare_background(ct, mask, b["patient"])
            if crops:
                out += _background_cases(prepared[key], b["patient"], seed_box_mm,
                                         unmasked=b["image"] if b["mask"] is None else None)
        s = seed + i
        spec = random_implant_spec(s)
        ct, lab, meta = implant(prepared[key], spec, s)
        tum = _tumour_image(lab)
        # hard-case flags from what was planted (the label map), not what was asked for: a wedge with no free lung
        # is not an atelectasis case (implant() warns about it)
        meta = {**meta, "implanted": True, "background": b["patient"],
                "atelectasis": meta.get("atelectasis_ml", 0.0) > 0.0,
                "pleural_effusion": meta.get("effusion_ml", 0.0) > 0.0,
                "mediastinal_contact": meta["contact"] == "mediastinum"}
        case = Case(f"{b['patient']}_implant-{s}", b["patient"], image=ct, mask=tum, meta=meta)
        if crops:
            own = prepared[key].tumour
            new = sitk.GetArrayViewFromImage(tum) > 0
            case = _scaled_crop(case, new & ~own if own is not None else new, seed_box_mm)
        out.append(case)
        if progress is not None:
            progress.update(1, out[-1].case_id)
    return out


def _background_cases(bg, patient: str, seed_box_mm: float, unmasked=None) -> list:
    """The background CT itself (whole: hard negatives, its own tumour) and a crop of its own tumour.
    ``unmasked``: the CT file, when it was given without a tumour mask (taken as tumour-free:
    :func:`unmasked_backgrounds_note`)."""
    mask = np.zeros(sitk.GetArrayViewFromImage(bg.ct).shape, np.uint8)
    if bg.tumour is not None:
        mask[bg.tumour] = 1
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(bg.ct)
    meta = {"implanted": True, "background": patient, "implant_background": True}
    if unmasked is not None:
        meta["background_without_mask"] = str(unmasked)
    out = [Case(f"{patient}_background", patient, image=bg.ct, mask=m, meta=dict(meta))]
    if mask.any():
        out.append(_scaled_crop(Case(f"{patient}_own-tumour", patient, image=bg.ct, mask=m, meta=dict(meta)),
                                mask > 0, seed_box_mm))
    return out


def _scaled_crop(case: Case, focus: np.ndarray, seed_box_mm: float) -> Case:
    """``case`` cut to ``focus`` (z, y, x bool) + context and shown on its growing-box grid: the spacing is
    divided by the grid scale, so resampling to the model spacing gives exactly the coarser grid seed mode
    uses for a tumour this large."""
    from lungai.seg.infer import grid_scale_for

    sp = np.array(case.image.GetSpacing())[::-1]
    idx = np.argwhere(focus)
    lo, hi = idx.min(0), idx.max(0) + 1
    extent = float(((hi - lo) * sp).max())
    scale = grid_scale_for(extent, seed_box_mm)
    pad = np.ceil(IMPLANT_CONTEXT_MM * scale / sp).astype(int)
    shape = np.array(focus.shape)
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, shape)
    box = pp.Box(tuple(int(v) for v in lo[::-1]), tuple(int(v) for v in hi[::-1]))
    img, mask = pp.crop(case.image, box), pp.crop(case.mask, box)
    for im in (img, mask):
        im.SetSpacing(tuple(float(v) / scale for v in im.GetSpacing()))
        im.SetOrigin(tuple(float(v) / scale for v in im.GetOrigin()))
    meta = {**case.meta, "crop": True, "grid_scale": scale, "extent_mm": round(extent, 1)}
    return Case(case.case_id, case.patient, image=img, mask=mask, meta=meta)


def _tumour_image(lab: sitk.Image) -> sitk.Image:
    from lungai.synthetic import labels as L

    tum = sitk.GetImageFromArray(L.tumour_mask(sitk.GetArrayViewFromImage(lab)).astype(np.uint8))
    tum.CopyInformation(lab)
    return tum


def _crop_case(case_id, patient, ct, mask, lo, hi, meta) -> Case:
    box = pp.Box(tuple(int(v) for v in lo), tuple(int(v) for v in hi))
    return Case(case_id, patient, image=pp.crop(ct, box), mask=pp.crop(mask, box), meta=meta)


# a tumour mask whose tumour is this large and air-filled (mean below OTHER_LABEL_SOFT_TISSUE_HU) is the lungs: a lung
# holds 1-3 litres at -650 to -850 HU on average (LUNG1-002 / -003: 1721-2184 ml, -646 to -740 HU); a tumour this
# large is soft tissue (the LIDC crops' air-filled ground-glass nodules, down to -796 HU mean, are all under 9 ml; a
# pure ground-glass tumour of 250 ml would be 78 mm across)
LUNG_LIKE_MIN_ML = 250.0
LUNG_LIKE_FIX = ("give the tumour's mask (e.g. the GTV), not a lung segmentation; with label maps, the tumour's label "
                 "(--label N, e.g. --label 1 in masks with 1 = GTV, 3 / 4 = lungs)")


def lung_like_problem(name: str, image: sitk.Image, tumour: sitk.Image) -> str | None:
    """The problem of a mask ``name`` whose tumour (``tumour``: nonzero = tumour, on ``image``'s grid) looks like the
    lungs - at least :data:`LUNG_LIKE_MIN_ML` and air-filled (mean CT value below :data:`OTHER_LABEL_SOFT_TISSUE_HU`):
    a lung segmentation given as the tumour masks, or a label map's lungs label as --label (QA: two planning CTs
    with their lung masks trained as tumours without a word, "validation: 1 case with a tumour, Dice 0.70") - else
    None.  Only the voxel count is computed for smaller masks."""
    m = sitk.GetArrayViewFromImage(tumour) != 0
    ml = mask_volume_ml(m, image.GetSpacing())    # lungai.volume's: the volume result.json and eval-seg give
    if ml < LUNG_LIKE_MIN_ML:
        return None
    hu = float(sitk.GetArrayViewFromImage(image)[m].mean())
    if hu >= OTHER_LABEL_SOFT_TISSUE_HU:
        return None
    return (f"the tumour of mask {name} looks like the lungs, not a tumour: {ml:.0f} ml of air-filled tissue (mean "
            f"{hu:.0f} HU, as lungs are; a tumour of {LUNG_LIKE_MIN_ML:.0f} ml or more is soft tissue, above "
            f"{OTHER_LABEL_SOFT_TISSUE_HU:.0f} HU on average)")


def load_images(case: Case) -> tuple:
    """(CT, mask) of a case; with ``case.label`` the mask is that label as a 0/1 mask."""
    img, mask = _read_pair(case)
    return img, mask if case.label is None else sitk.Cast(mask == int(case.label), sitk.sitkUInt8)


def _read_pair(case: Case) -> tuple:
    """(CT, mask as in its file: every label) of a case."""
    from lungai.io import read_ct, read_mask

    if case.image is not None:
        return case.image, case.mask
    img = read_ct(case.image_path)
    return img, read_mask(case.mask_path, reference=img)


def is_whole_ct(case: Case, img=None) -> bool:
    """The case is a whole CT, not a crop: trained on the lungs' box with hard negatives, as automatic mode sees it
    (:func:`to_arrays`), and counted apart from crops in model.json's training sources (``lungai.seg.ensemble``).
    ``img``: the case's CT if read; else the CT in memory or its file's header (size and spacing, not the voxels)."""
    if case.meta.get("crop"):
        return False
    if img is None:
        img = case.image if case.image is not None else _header(case.image_path)
    return not pp.is_crop(img)


def _soft_tissue_other_labels(img, raw_mask, label) -> sitk.Image | None:
    """The voxels of ``raw_mask``'s labels other than ``label`` whose mean CT value is above
    :data:`OTHER_LABEL_SOFT_TISSUE_HU` (0/1 image), or None if there are none."""
    m = sitk.GetArrayViewFromImage(raw_mask)
    others = [int(v) for v in np.unique(m) if v and int(v) != int(label)]
    if not others:
        return None
    hu = sitk.GetArrayViewFromImage(img)
    if m.dtype.kind in "bu":      # read_mask's UInt8 / UInt16: the sums per label as ndimage.mean's (one bincount
        #                             pass; ndimage.mean took 5.5-6.2 s on LUNG1-002's 29 M voxels, this ~1 s)
        flat = m.ravel()
        means = np.bincount(flat, weights=hu.ravel())[others] / np.bincount(flat)[others]
    else:
        from scipy import ndimage

        means = ndimage.mean(hu, m, index=others)
    soft = [v for v, hu in zip(others, np.atleast_1d(means)) if hu > OTHER_LABEL_SOFT_TISSUE_HU]
    if not soft:
        return None
    out = sitk.GetImageFromArray(np.isin(m, soft).astype(np.uint8))
    out.CopyInformation(raw_mask)
    return out


def check_validation_has_tumour(val_cases: list) -> None:
    """Refuse a validation split whose cases all hold no tumour (masks :func:`check_masks` found empty): a model
    that finds nothing scores Dice 1 on each, so early stopping would keep the first epoch's and the confidence
    could not be calibrated.  QA: one empty mask drawn alone into validation saved epoch 0's weights."""
    if val_cases and all(c.meta.get("tumour_free") for c in val_cases):
        names = ", ".join(c.case_id for c in val_cases[:5]) + (f" and {len(val_cases) - 5} more"
                                                               if len(val_cases) > 5 else "")
        raise InputError(f"the validation split holds no tumour: its {counted(len(val_cases), 'case')} ({names}) "
                         "all have "
                         "empty masks, so the epochs would be chosen (and the confidence calibrated) on cases where "
                         "finding nothing scores best",
                         "draw another split (another --seed or a larger --val-fraction), or add patients whose "
                         "masks hold a tumour (nothing was trained)")


def load_checked(parts: list, cfg, progress=None) -> tuple:
    """The arrays (:func:`to_arrays`) of the cases of ``parts`` ([train, validation, test] case lists; the test
    cases' CTs are only read with the CT checks, never turned into arrays) as (train arrays, validation arrays).
    Every case whose image or mask cannot be used is named in one InputError after all were tried (one such case:
    its own error, as it was); ``progress`` advances per case, a whole CT's loading said in sub-steps on it
    (:func:`to_arrays`)."""
    from lungai.io import read_ct

    out, bad = [[], []], []
    for k, cases in enumerate(parts):
        for c in cases:
            try:
                if k < 2:
                    out[k].append(to_arrays(c, cfg, progress))
                elif c.image is None and c.image_path is not None:      # (a whole CT: its reading said)
                    sub_step(whole_ct_progress(c, progress), "reading the CT (test split: checked only)", read_ct,
                          c.image_path)
            except InputError as exc:
                bad.append((c, exc))
            if progress is not None:
                progress.update(1, c.case_id)
    if len(bad) == 1:
        raise bad[0][1]
    if bad:
        test = {id(c) for c in parts[2]}       # by identity: a case may hold images, compared by value otherwise
        listed = "; ".join(f"{c.case_id}{' (test split)' if id(c) in test else ''}: {exc.problem}"
                           for c, exc in bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        fixes = list(dict.fromkeys(exc.fix for _, exc in bad if exc.fix))
        raise InputError(f"{counted_of(len(bad), sum(map(len, parts)), 'case')} cannot be used - {listed}",
                         "; ".join(fixes[:3]) + " (nothing was trained)")
    return out[0], out[1]


def whole_ct_progress(case: Case, progress, prefix: bool = True):
    """The sub-step reporter of a whole CT's loading on ``progress`` (a :class:`lungai.progress.SubProgress`,
    "<case>: <sub-step>"; ``prefix`` False: ``progress`` itself, which names the case already), or None: a crop (a
    line per crop in a log: hundreds of them), no progress, or a file whose header cannot be read (its reading names
    the problem)."""
    if progress is None:
        return None
    try:
        if not is_whole_ct(case):
            return None
    except RuntimeError:
        return None
    from lungai.progress import SubProgress

    return SubProgress(progress, f"{case.case_id}:") if prefix else progress


def sub_step(sub, message: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` said as the sub-step ``message`` of ``sub`` (None: called alone), its seconds shown
    while it runs (:func:`lungai.progress.waiting`: the same call, the same result)."""
    if sub is None:
        return fn(*args, **kwargs)
    from lungai.progress import waiting

    return waiting(sub, message, fn, *args, **kwargs)


def to_arrays(case: Case, cfg, progress=None) -> dict:
    """{'image': (1, z, y, x) float32 windowed, 'label': (1, z, y, x) uint8} on the model grid, in LPS order
    (:func:`lungai.io.geometry.to_lps`: flips / axis swaps, no resampling).  ``progress``: a
    whole CT's loading said in sub-steps as message-only updates ("<case>: reading the CT and mask", its other
    labels, the lungs' sub-steps, the model grid, the sampling points; the step count is the caller's) - QA train68:
    LUNG1-002 (with the lungs' search) stood ~27 s on one step of "load training data"; a crop says none."""
    from lungai.io.geometry import to_lps

    sub = whole_ct_progress(case, progress)
    img, mask = sub_step(sub, "reading the CT and mask", _read_pair, case)
    # in LPS order, as lungai segment gives the network every CT (lungai.seg.infer.segment_tumour): a CT stored in
    # another order (z from head to feet, x from left to right) was trained on as stored, its arrays mirrored
    # against those the model is run on (QA train71: an LPI-stored LIDC crop's arrays were the LPS copy's upside down)
    img, mask = to_lps(img), to_lps(mask)
    exclude = None
    if case.label is not None and case.image is None:        # (as load_images: a label of a mask file)
        if is_whole_ct(case, img):
            exclude = sub_step(sub, "the mask's other labels (their mean CT value)", _soft_tissue_other_labels, img,
                            mask, case.label)
        mask = sitk.Cast(mask == int(case.label), sitk.sitkUInt8)
    if case.image is None:          # a mask file: its tumour must not be the lungs (refused, named, nothing trained)
        problem = sub_step(sub, "checking the tumour mask", lung_like_problem, Path(case.mask_path).name, img, mask)
        if problem:
            raise InputError(problem, LUNG_LIKE_FIX)
    if is_whole_ct(case, img):
        try:
            return _whole_ct_arrays(case, img, mask, cfg, exclude, sub)
        except InputError:          # lungs not found: fall back to the mask's box
            pass
        m = sitk.GetArrayViewFromImage(mask) > 0
        if m.any():
            zz, yy, xx = np.nonzero(m)
            lo = [img.TransformIndexToPhysicalPoint([int(xx.min()), int(yy.min()), int(zz.min())])]
            hi = [img.TransformIndexToPhysicalPoint([int(xx.max()), int(yy.max()), int(zz.max())])]
            box = pp.box_from_physical(img, lo[0], hi[0], FULL_CT_MARGIN_MM)
            img, mask = pp.crop(img, box), pp.crop(mask, box)
    arr, model_img = sub_step(sub, "resampling to the model grid", pp.to_model, img, cfg)
    lab = pp.mask_to_model(mask, model_img)
    return {"image": arr[None], "label": lab[None], "case_id": case.case_id,
            "implanted": bool(case.meta.get("implanted"))}


def _subsample(idx: np.ndarray, key: str, n: int) -> np.ndarray:
    if len(idx) <= n:
        return idx
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return idx[np.sort(rng.choice(len(idx), n, replace=False))]


def _whole_ct_arrays(case: Case, img, mask, cfg, exclude=None, sub=None) -> dict:
    """A whole CT on the model grid, cut to the lungs' box (as automatic mode), with sampling indices.  ``exclude``
    (0/1 image on the CT's grid, e.g. other soft-tissue labels of a --label mask): no hard negatives in or next to it.
    ``sub``: the sub-step reporter of :func:`to_arrays` (None: nothing said)."""
    from scipy import ndimage

    box = pp.box_from_lungs(img, cfg.roi_margin_mm, progress=sub, step="finding the lungs")
    crop = pp.crop(img, box)
    arr, model_img = sub_step(sub, "resampling to the model grid", pp.to_model, crop, cfg)
    lab = sub_step(sub, "the tumour mask on the model grid", pp.mask_to_model, pp.crop(mask, box), model_img)
    region, lungs = sub_step(sub, "the lungs' region on the model grid",
                          lambda: (pp.region_on(box, model_img), pp.mask_on(box.lungs, model_img)))
    if sub is not None:
        sub.update(0, "hard-negative and tumour sampling points")
    lo, hi = cfg.hu_window
    near = lab > 0
    if exclude is not None:
        near = near | (pp.mask_to_model(pp.crop(exclude, box), model_img) > 0)
    hard = (arr > (HARD_NEGATIVE_HU - lo) / (hi - lo)) & region & ~ndimage.binary_dilation(near, iterations=2)
    # half inside the lungs (vessels, hilar structures), half in the margin (chest wall, mediastinal
    # border): the margin holds ~20x more bright voxels and would otherwise drown the vessels
    half = MAX_SAMPLING_INDICES // 2
    inside = _subsample(np.argwhere(hard & lungs).astype(np.int32), case.case_id + "/vessels", half)
    margin = _subsample(np.argwhere(hard & ~lungs).astype(np.int32), case.case_id + "/margin", half)
    tumour = _subsample(np.argwhere(lab > 0).astype(np.int32), case.case_id + "/tumour", MAX_SAMPLING_INDICES)
    return {"image": arr[None], "label": lab[None], "case_id": case.case_id,
            "hard_idx": np.concatenate([inside, margin]), "tumour_idx": tumour}
