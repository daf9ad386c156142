"""Checks of the input paths a command names, with the arguments, before any input is read and before the heavy
modules (SimpleITK, pandas) are imported: this module imports neither (QA radfollow69: ``lungai dose-features`` with a
mistyped path imported pandas and SimpleITK, 4-5 s on a shared machine, before refusing it).  What a mask option
takes is told here too (a folder given for a mask file: :func:`folder_as_mask`), for :func:`check_input_paths` and
the mask reader (:func:`lungai.io.read.read_mask`) alike."""

from __future__ import annotations

import os
from pathlib import Path

from lungai.errors import InputError

# the image files lungai reads (any letter case; lungai.io.read, lungai.seg.dataset)
FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def image_suffix(path) -> str:
    """A file's suffix as lungai tells image files by it: ``.nii.gz`` whole, any letter case."""
    path = Path(path)
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


# files of these kinds are never DICOM: they are neither read nor probed (an export's reports, PDFs, viewer; code)
NOT_DICOM_SUFFIXES = frozenset(
    ".jpg .jpeg .png .gif .bmp .tif .tiff .svg .ico .webp .pdf .txt .md .rst .log .xml .html .htm .css .js .csv "
    ".tsv .json .yaml .yml .toml .ini .cfg .conf .py .pyc .pyo .pyi .pyx .pxd .c .h .cc .cpp .hpp .f90 .so .dll "
    ".dylib .a .o .lib .exe .sh .bat .ps1 .zip .gz .bz2 .xz .7z .tar .whl .egg .jar .nii .nrrd .nhdr .mha .mhd "
    ".doc .docx .xls .xlsx .ppt .pptx .odt .mp3 .mp4 .avi .mov .ttf .otf .woff .woff2 .typed .pem .lock .db "
    ".sqlite .npy .npz .pt .pth .safetensors .ipynb".split())


def could_be_dicom(path: Path) -> bool:
    """Not of :data:`NOT_DICOM_SUFFIXES`, by its last suffix (``.gz`` of ``ct.nii.gz``) or its image suffix."""
    return not {image_suffix(path), path.suffix.lower()} & NOT_DICOM_SUFFIXES


def dicomdir_folder(path) -> Path:
    """A DICOMDIR file stands for its folder (the export it indexes); any other path is returned as it is."""
    p = Path(path)
    return p.parent if p.is_file() and p.name.upper() == "DICOMDIR" else p


def read_ct_header(path):
    """The header (no pixels) of the DICOM file ``path`` as the CT reader reads it: a slice saved without the Part-10
    header (no preamble, "DICM" or file meta: a bare data set) too (:func:`lungai.dicom.pixeldata.dcmread_lenient`);
    None for a file that is not DICOM (an image of :data:`NOT_DICOM_SUFFIXES` left unread) or cannot be read.  The
    one reading rule of the CT's reference, header and case id (:mod:`lungai.dicom.reference`'s ``ct_reference``,
    ``dicom_ct_header``; :func:`is_dicom_folder`).  Here, light (no SimpleITK): :mod:`lungai.io.outputs` checks an
    output against the inputs' DICOM folders with the commands' arguments."""
    from lungai.dicom.discover import has_dicm_preamble

    p = Path(path)
    if not p.is_file() or not (has_dicm_preamble(p) or could_be_dicom(p)):
        return None
    # pydicom imported for a file that may be DICOM only: 0.5-0.9 s of `lungai lungs ct.nii.gz`'s start-up before
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.pixeldata import dcmread_lenient

    try:
        return dcmread_lenient(p, stop_before_pixels=True)
    except (InvalidDicomError, OSError):
        return None
    except Exception:  # noqa: BLE001 - a truncated / damaged file fails in many ways: unreadable, as before
        return None


def is_dicom_folder(path) -> bool:
    """True for a folder that holds DICOM files (the CT given as a DICOM series; slices without the Part-10 header
    too: :func:`read_ct_header`)."""
    from lungai.dicom.discover import has_dicm_preamble as _is_dicom

    p = dicomdir_folder(path)
    if not p.is_dir():
        return False
    files = [f for f in sorted(p.iterdir())[:50] if f.is_file()]
    return any(_is_dicom(f) for f in files) or any(read_ct_header(f) is not None for f in files)


def check_csv_name(path: str | Path) -> Path:
    """A result table's name must end in .csv (any case): a command checks it with its arguments, before any work and
    before its heavy imports (QA: ``lungai radiomics -o features.txt`` was refused only after reading the CT and masks
    and building the segments; QA radiomics71: ``dose-features -o dose.txt`` after loading pandas and SimpleITK,
    3.0-3.8 s against 0.8-1.3 s for another argument error), :func:`lungai.radiomics.csv_output.write_csv` again when
    writing."""
    p = Path(path)
    if p.suffix.lower() != ".csv":
        raise InputError(f"cannot write {p.name}: tables are written as CSV", "name the output *.csv")
    return p


# DICOM image modalities: such a file given where a mask is read is an image (a CT slice), not a mask
IMAGE_MODALITIES = ("CT", "MR", "PT", "NM", "CR", "DX", "US", "RTIMAGE", "RTDOSE")


# what a mask option takes (QA exportfollow69: `lungai dicom-export --tumour` given LUNG1-003's CT folder said "holds
# values -1024 .. 3071; label values must be 0 .. 65535", not that a CT was given for the mask)
MASK_FILE_FIX = ("give the mask's own file: a NIfTI / NRRD / MHA label map on the CT's grid (0 = background, 1, 2, ... "
                 "= structures; e.g. the tumor.nii.gz of `lungai segment`, the lung label map of `lungai lungs`, the "
                 "tumour.nii.gz and lungs.nii.gz `lungai cohort` writes from a patient's RTSTRUCT) or a DICOM SEG "
                 "file")


def mask_file_fix() -> str:
    """:data:`MASK_FILE_FIX`, then where the CT goes: the command's CT option, a manifest's image column."""
    from lungai.dicom.masks import fix_words

    return MASK_FILE_FIX + "; " + fix_words("the CT itself is given as the command's CT (--ct, --image), not as a mask",
                                            "the CT itself goes in the manifest's image column, not as a mask")


def folder_as_mask(folder: Path, shown: str) -> InputError:
    """A folder given where a mask file is read: said as such, naming what the folder holds - a DICOM series (the CT?),
    the mask files in it (an output folder given instead of its tumour.nii.gz), a SEG / RTSTRUCT in it.  ``shown``: the
    folder as the problem names it (as typed; ``--mask results`` with the arguments, :func:`check_input_paths`)."""
    from lungai.dicom.masks import command_word

    images, dicom, kinds, folders = [], 0, {}, []
    for f in sorted(folder.iterdir()):
        if f.is_dir():
            folders.append(f.name)
        if not f.is_file():
            continue
        if image_suffix(f) in FILE_SUFFIXES:
            images.append(f)
            continue
        modality = dicom_modality(f)
        if modality is None:
            continue
        dicom += 1
        if modality in ("SEG", "RTSTRUCT"):
            kinds.setdefault(modality, []).append(f)
        else:
            kinds.setdefault(modality or "DICOM", [])
    import re

    held = []
    if dicom:
        series = ", ".join(f"{m}" for m in kinds)
        held.append(f"{dicom} DICOM file{'s' if dicom != 1 else ''} ({series}"
                    + (": an image series, e.g. the CT" if set(kinds) & set(IMAGE_MODALITIES) else "") + ")")
    if images:
        held.append("image files: " + ", ".join(f.name for f in images[:6]) + (", ..." if len(images) > 6 else ""))
    if folders:
        held.append("the folders " + ", ".join(folders[:6]) + (", ..." if len(folders) > 6 else ""))
    problem = (f"{shown} is a folder where a mask file was expected (a label map file or a DICOM SEG)"
               + (f"; it holds {'; '.join(held)}" if held else ""))
    masks = [f for f in images if not re.search(r"(^|[\W_])(ct|image|img)([\W_]|$)", f.name, re.I)]
    candidates = [*kinds.get("SEG", []), *(f for f in masks if re.search(r"tumou?r|gtv|mask|label|seg", f.name, re.I)),
                  *(f for f in masks if re.search(r"lung", f.name, re.I))]
    fix = (f"if {candidates[0].name} in it is the mask, give it: {command_word(candidates[0])}; else "
           if candidates else "") + mask_file_fix()
    if kinds.get("RTSTRUCT"):
        fix += f"; for its RTSTRUCT {kinds['RTSTRUCT'][0].name}: {RTSTRUCT_AS_MASK_FIX}"
    return InputError(problem, fix)


RTSTRUCT_AS_MASK_FIX = ("in lungai radiomics, dose-features and demo give the RTSTRUCT as --rtstruct FILE and choose the "
                        "structure: --structure NAME (or role:gtv, role:lungs) - their mask options then take structure "
                        "names; elsewhere give a mask image (NIfTI / NRRD label map) or a DICOM SEG of the structure: "
                        "lungai cohort writes each patient's tumour.nii.gz and lungs.nii.gz from its RTSTRUCT, and 3D "
                        "Slicer (SlicerRT) loads the RTSTRUCT and exports a segment as a DICOM SEG or label map")


def dicom_modality(p: Path) -> str | None:
    """The Modality of a DICOM file (a SEG, an RTSTRUCT), None for anything else: a file with an image suffix
    (:data:`FILE_SUFFIXES`) is none; any other is read by its content, whatever it is named (``.dcm``, ``.dicom``,
    ``.ima``, none: QA maskinput64, a SEG named ``seg.dicom`` was refused as "unsupported file type '.dicom'").
    The file is read up to its Modality only (:func:`lungai.dicom.pixeldata.file_modality`): ``dcmread`` with
    ``specific_tags`` reads every element after it (QA cohortread66: LUNG1-003's RTSTRUCT given as ``--mask`` was
    parsed whole, 0.11-0.26 s, to be refused; a SEG's per-frame headers were parsed before read_seg parsed them)."""
    if not p.is_file() or image_suffix(p) in FILE_SUFFIXES:
        return None
    from pydicom.errors import InvalidDicomError

    from lungai.dicom.pixeldata import file_modality

    try:
        return file_modality(p)
    except (InvalidDicomError, OSError):
        return None


# a DICOM object that is not an image, given where the CT is read: what it is and the option it goes to (QA
# inputsfollow70: a SEG of `lungai dicom-export` given as `lungai radiomics --image` was said to be an "Enhanced
# (multi-frame) CT" whose "90 slices lie at the position of another slice", an RTSTRUCT "unreadable or corrupt", an
# RTDOSE "looks like an MR")
NOT_CT_OBJECTS = {
    "SEG": ("a DICOM SEG (a segmentation)", "the SEG is a mask: give it to the command's mask option (--mask, "
                                            "--tumour, --gtv, --lungs)"),
    "RTSTRUCT": ("a DICOM RTSTRUCT (contours)", "the RTSTRUCT goes to --rtstruct"),
    "RTDOSE": ("a DICOM RTDOSE (a dose grid)", "the RTDOSE goes to --dose"),
}


def check_not_ct_object(path) -> None:
    """Refuse a DICOM file that holds no CT image - a SEG, an RTSTRUCT, an RTDOSE, an RTPLAN, an SR, ... - given
    where the CT is read (:func:`lungai.io.read.read_ct`), saying what it is and where it goes, instead of what
    reading it as a CT makes of it.  The file is read up to its Modality only (:func:`dicom_modality`); a folder, an
    image file (NIfTI, ...), a DICOM image (CT, MR, ...) or a file that is not DICOM passes - a folder or an image
    file without importing pydicom or numpy: the commands call it with their arguments' checks
    (:func:`check_input_paths` ``cts``, :func:`lungai.cli.check_input_exists`), before their first bar."""
    p = Path(path)
    modality = dicom_modality(p)
    if not modality or modality in IMAGE_MODALITIES and modality != "RTDOSE":
        return
    from lungai.dicom.masks import fix_words

    what, goes = NOT_CT_OBJECTS.get(modality, (f"a DICOM {modality} object", ""))
    ct = fix_words("give the CT series (its folder of CT slices, or a NIfTI / NRRD / MHA CT) as the command's CT (its "
                   "ct argument, --ct, --image)",
                   "give the CT series (its folder of CT slices, or a NIfTI / NRRD / MHA CT) in the manifest's "
                   "image column")
    raise InputError(f"{p} is {what}, not a CT image", ct + ("; " + goes if goes else ""))


def check_mask_kind(p: Path, shown: str, rtstruct: bool = False) -> None:
    """Refuse a file given where a mask is read that is of no kind a mask is: neither an image file (its suffix,
    :data:`FILE_SUFFIXES`) nor DICOM (no DICM preamble, and no bare DICOM data set: its Modality cannot be read -
    a table, a text), or a DICOM image (a CT slice), saying what a mask may be (:func:`mask_file_fix`; with
    ``rtstruct``, a structure of the RTSTRUCT too).  ``shown``: the file as the problem names it (``--tumour
    notes.csv``).  QA dicomfollow71 (LUNG1-003's DICOM CT): ``dicom-export --tumour notes.csv`` read the CT, 6.1 s,
    before "unsupported file type '.csv'", fix "(.dcm: a SEG or RTSTRUCT is read by its content ...)" - the CT's
    words.  An image file passes without importing pydicom; a DICOM file is read up to its Modality
    (:func:`dicom_modality`): a DICOM image (QA dicom72: a slice of LUNG1-003's CT given as ``radiomics --mask`` or
    ``dicom-export --tumour`` was refused by the reader once the whole CT was read, 1.4-2.8 s) is refused here
    (:func:`image_as_mask_error`); a SEG, an RTSTRUCT pass (the reader says what else it is).
    :func:`check_input_paths` ``masks``, :func:`check_structure_values` and the mask reader
    (:func:`lungai.io.read.read_mask`) call it."""
    if not p.is_file() or image_suffix(p) in FILE_SUFFIXES:
        return
    modality = dicom_modality(p)
    structure = ("; with --rtstruct, a mask option takes a structure of the RTSTRUCT: its name or role:ROLE (`lungai "
                 "dicom-scan --structures FOLDER` lists them)" if rtstruct else "")
    if modality is None:
        from lungai.dicom.discover import has_dicm_preamble

        if has_dicm_preamble(p):    # a DICOM file whose Modality cannot be read: the reader says what it is
            return
        from lungai.dicom.pixeldata import NOT_DICOM

        suffix = image_suffix(p)
        kind = f"NIfTI / NRRD / MHA, not {suffix}" if suffix else "NIfTI / NRRD / MHA"
        # what a mask may be, without mask_file_fix's word on the CT: a table or a text is no CT given in the wrong
        # place (QA dicom71 / rp72: `radiomics --mask clinical.csv` was told "the CT itself is given as the command's
        # CT (--ct, --image), not as a mask")
        raise InputError(f"{shown} is no mask: not an image file ({kind}) and it {NOT_DICOM}",
                         MASK_FILE_FIX + structure)
    if modality in IMAGE_MODALITIES:
        raise image_as_mask_error(shown, modality, structure)


def image_as_mask_error(shown: str, modality: str, structure: str = "") -> InputError:
    """A DICOM image file (``modality``: a CT slice, an RTDOSE grid) given where a mask is read (``shown``: the file
    as the problem names it), said as what it is, with what a mask may be (:func:`mask_file_fix`; ``structure``: the
    RTSTRUCT's words of a command given --rtstruct)."""
    if modality == "RTDOSE":
        what, goes = NOT_CT_OBJECTS["RTDOSE"]
        return InputError(f"{shown} is {what}, not a mask", mask_file_fix() + structure + "; " + goes)
    return InputError(f"{shown} is a DICOM {modality} image file (a slice of a series), not a mask",
                      mask_file_fix() + structure)


def check_input_paths(named, masks=(), cts=()) -> None:
    """Each ``(option, value)`` of ``named`` (a value None or '' is skipped) must name a file or folder that is there: a
    CT, a mask file - ``FILE#PART`` (a label map's labels, a SEG's segment) by its file - refused, naming the option,
    with the arguments, before any input is read.  QA rad69 (LUNG1-003's DICOM CT, a typo in a mask's name, a shared
    machine): ``lungai radiomics --tumour gtv_typo.nii.gz`` read the CT for 13 s, ``dose-features --lungs
    lungs_typo.nii.gz`` for 11.7 s, before "does not exist" (minutes on a thin-slice CT).  ``masks``: the options
    among them that take a mask file - a folder given there is refused as such (:func:`folder_as_mask`, naming the
    option; QA inputs70: ``radiomics --mask nifti/``, ``dose-features --lungs nifti/``, ``dicom-export --tumour
    nifti/`` read LUNG1-003's CT first, 4.3-6 s, before "is a folder where a mask file was expected"), a file of no
    mask's kind (a table: :func:`check_mask_kind`) too.  ``cts``: the options among them that take the CT - a DICOM
    SEG, RTSTRUCT, RTDOSE ... file given there is refused as what it is (:func:`check_not_ct_object`; QA dicom71:
    LUNG1-003's RTSTRUCT given as ``dose-features --ct`` was refused after 7.7 s, as "holds no pixel data ...
    re-export the RTDOSE" of the same file given as --dose, as ``radiomics --image`` after 2.5 s, ``dicom-export
    --ct`` after 2.8 s)."""
    for option, value in named:
        if not value:
            continue
        text = str(value)
        head, sep, _ = text.rpartition("#")
        if Path(text).exists():
            p, shown = Path(text), text
        elif sep and head and Path(head).exists():
            p, shown = Path(head), head
        else:
            p = Path(head if sep and head else text)
            if p.is_symlink():
                raise InputError(f"{option} {p} is a link to {os.readlink(p)}, which does not exist",
                                 "check the path (and that the drive is mounted)")
            raise InputError(f"{option} {p} does not exist", "check the path (and that the drive is mounted)")
        if option in masks and p.is_dir():
            raise folder_as_mask(p, f"{option} {shown}")
        if option in masks:
            check_mask_kind(p, f"{option} {shown}")
        if option in cts:
            check_not_ct_object(p)


# what a mask option's value ends in when it is a mask file, never a structure's name (with --rtstruct)
MASK_FILE_SUFFIXES = FILE_SUFFIXES + (".dcm",)


def _typed_as_path(text: str) -> bool:
    """Whether ``text`` is written as a path (``./results``, ``/data/p1/``, ``..``), not as a bare name: a folder
    named like a structure in the working folder (GTV-1) is still taken as the structure."""
    return "/" in text or os.sep in text or text in (".", "..") or text.startswith("~")


def named_like_structure(text) -> bool:
    """Whether a mask option's value ``text`` that is no file reads as an RTSTRUCT structure's name or a role
    (``GTV-1``, ``Primary tumour``, ``role:gtv``), not as a mask file's path: no ``FILE#PART`` selector, not written as
    a path (:func:`_typed_as_path`), no mask file's suffix - what a command without ``--rtstruct`` says to give
    ``--rtstruct`` for, rather than "does not exist - check the path"."""
    text = str(text)
    if text.startswith("role:"):
        return True
    return (not Path(text).exists() and "#" not in text and not _typed_as_path(text)
            and image_suffix(text) not in MASK_FILE_SUFFIXES)


def check_structure_values(named) -> None:
    """With ``--rtstruct`` a mask option (``--tumour``, ``--lungs``, ``--gtv``; ``--structure``, whose values may be
    a list) takes a structure of the RTSTRUCT by its name or role, or a mask file: each ``(option, value)`` of
    ``named`` is refused, with the arguments, before any input is read, when it is a folder given as a path (an
    RTSTRUCT's or an output folder: it was looked for as a structure of that name once the CT was read - QA inputs70:
    LUNG1-003, ``radiomics --tumour RTSTRUCT/`` 7.2 s, ``dose-features --gtv RTSTRUCT/`` 6.9 s, "structure
    '.../RTSTRUCT' is not in ...") or a mask file that is not there (``--tumour gtv_typo.nii.gz#1``: "structure
    'gtv_typo.nii.gz#1' is not in ..." after 3.7 s; it "does not exist", :func:`check_input_paths`)."""
    for option, value in named:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not v:
                continue
            text = str(v)
            head, sep, _ = text.rpartition("#")
            p = Path(head) if sep and head and not Path(text).exists() else Path(text)
            if p.is_dir() and _typed_as_path(text):
                mask = "" if option == "--structure" else ", or a mask file"
                example = "role:lungs" if option in ("--lungs", "--structure") else "role:gtv"
                raise InputError(f"{option} {text} is a folder: with --rtstruct, {option} takes a structure name or "
                                 f"role:ROLE of the RTSTRUCT{mask}",
                                 f"give the structure's name or role (e.g. {option} {example}; `lungai dicom-scan "
                                 "--structures FOLDER` lists an RTSTRUCT's structures and their roles)"
                                 + ("" if option == "--structure" else
                                    ", or the mask file itself (a label map or a DICOM SEG), not its folder"))
            if option != "--structure" and not p.exists() and image_suffix(p) in MASK_FILE_SUFFIXES:
                check_input_paths([(option, text)])
            if option != "--structure" and p.is_file():     # a mask file given: of a mask's kind
                check_mask_kind(p, f"{option} {text}", rtstruct=True)


def check_folder_path(path) -> None:
    """Refuse an output folder ``path`` that is a file or lies under one (nothing is created).  Here, light (no
    SimpleITK, which ``lungai.io`` imports): ``lungai stage`` checks its -o with its input paths, before its imports."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output {out} is a file, not a folder", "give a folder name with -o (new or existing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot create the output folder {out}: {parent} is a file",
                                 "give -o a path whose parent folders are folders")
            break


def check_output_not_among_ct_slices(out_folder, ct, dicom_results: bool = True) -> None:
    """Refuse the output folder ``out_folder`` (a command's -o folder, an output file's folder) when it is the folder
    ``ct`` given as the CT and that folder is a flat DICOM series folder (DICOM files with the ``DICM`` preamble, no
    sub-folder): from the paths alone, before the series is listed (SimpleITK's GDCM listing,
    :func:`lungai.dicom.reference.check_output_folder`) - QA dicomfollow72: ``lungai lungs CT -o CT/lungs.nii.gz``
    (``segment CT -o CT``) imported SimpleITK and pydicom to refuse it, 0.73 s (0.81 s) on LUNG1-003.  The same words as the later
    checks (``dicom_results``: DICOM SEG / RTSTRUCT would be written beside it, as without ``--no-dicom``); a folder
    with sub-folders (an export, a patient folder) or slices without the preamble is left to them."""
    from lungai.dicom.discover import has_dicm_preamble

    folder = dicomdir_folder(ct)
    if not folder.is_dir() or Path(out_folder).absolute().resolve() != folder.resolve():
        return
    entries = sorted(folder.iterdir())
    if any(e.is_dir() for e in entries):
        return
    files = [f for f in entries[:50] if f.is_file() and f.name.upper() != "DICOMDIR"]
    if not any(has_dicm_preamble(f) for f in files):
        return
    fix = "choose an output folder outside the CT's folder (it must keep only the CT slices)"
    if dicom_results:
        raise InputError(f"refusing to write DICOM results into the CT series folder {folder}", fix)
    raise InputError(f"refusing to write results into the DICOM series folder {folder} (the input CT's)", fix)
