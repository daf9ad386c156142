"""``lungai dose-features``: mean lung dose, V5/V13/V20/V30, D2/D50/D98 and GTV dose from an RT dose."""

from __future__ import annotations

from pathlib import Path


OWNER = "dose-features"


def register(sub) -> None:
    from lungai.cli import ONE_LUNG_MASK, StoreOnce

    p = sub.add_parser("dose-features", help="dosimetric features (MLD, V20 ...) of the lungs minus GTV to CSV",
                       description="Reads an RTDOSE DICOM (DoseGridScaling and DoseUnits applied) or a NIfTI/NRRD "
                                   "dose in Gy (or cGy with --dose-unit cGy), resamples it onto the CT grid and "
                                   "computes lung (minus GTV) and GTV metrics.")
    p.add_argument("--dose", required=True, help="RTDOSE .dcm, or a folder of the export holding its RTDOSE files, "
                                                 "subfolders searched: the plan dose, else the sum of the BEAM doses "
                                                 "of one plan (as lungai cohort); or a dose image (in Gy unless "
                                                 "--dose-unit)")
    p.add_argument("--dose-unit", choices=("Gy", "cGy"), default="Gy",
                   help="unit of a NIfTI/NRRD/MHA dose (default Gy; an RTDOSE says its own in DoseUnits)")
    p.add_argument("--max-dose-gy", type=float, default=None, metavar="GY",
                   help="largest dose (Gy) the dose may hold, an RTDOSE (once its DoseUnits applied) or a "
                        "NIfTI/NRRD/MHA dose (default 150; raise it for an EQD2 / BED map or summed courses)")
    p.add_argument("--ct", required=True, help="planning CT (defines the grid of the masks)")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when the --ct DICOM folder holds several series")
    p.add_argument("--lungs", default=None, action=StoreOnce, once_fix=ONE_LUNG_MASK, help="lung mask on the CT grid (a binary mask, or a lung label map 1 right / 2 left; "
                                                 "FILE#R,L: the lungs of a map of other structures too, e.g. "
                                                 "labels.nii.gz#3,4; NIfTI/NRRD/MHA or "
                                                 "DICOM SEG); with --rtstruct a structure or role (default role:lungs; a 'Lungs-GTV' structure "
                                                 "when the RTSTRUCT has no right / left lung, or no GTV)")
    p.add_argument("--gtv", default=None, help="GTV mask on the CT grid (label > 0); with --rtstruct a structure or "
                                               "role (default role:gtv when the RTSTRUCT has a GTV: every contoured "
                                               "GTV, their union; role:gtv_primary or a name: that GTV's dose, "
                                               "every GTV still subtracted from the lungs)")
    p.add_argument("--lungs-name", default=None, metavar="TEXT",
                   help="what the --lungs mask is, for the CSV's masks column (default: its file name), e.g. the "
                        "segments it was made of")
    p.add_argument("--lungs-exclude-gtv", action="store_true",
                   help="the --lungs mask is the lungs minus the GTV as contoured (a 'Lungs-GTV' structure or "
                        "segment): without --gtv the masks column says so, not that the lungs include the tumour")
    p.add_argument("--gtv-name", default=None, metavar="TEXT",
                   help="what the --gtv mask is, for the CSV's masks column (default: its file name)")
    p.add_argument("--envelope", default=None, metavar="FILE",
                   help="without --gtv: the tumour's motion envelope (iGTV / ITV mask on the CT grid, label > 0), "
                        "subtracted from the lungs (Lungs - iGTV; no GTV dose), as --rtstruct does with an RTSTRUCT's "
                        "iGTV when it has no GTV")
    p.add_argument("--envelope-name", default=None, metavar="TEXT",
                   help="what the --envelope mask is, for the CSV's masks column (default: its file name)")
    from lungai.dicom.masks import add_rtstruct_options

    add_rtstruct_options(p, "with --rtstruct: the lung structure (same as --lungs NAME|role:ROLE); given several "
                            "times, their union (--structure Lung_R --structure Lung_L)")
    p.add_argument("--v-levels", default=None, metavar="GY,GY,...",
                   help="the V levels in Gy (default 5,13,20,30), e.g. 5,10,13,20,30,40: columns dose_v<level>_pct "
                        "(a level above --max-dose-gy, e.g. cGy, is refused)")
    p.add_argument("--case", default=None, help="case id (default: the DICOM PatientID of a DICOM CT, else the CT file name)")
    p.add_argument("-o", "--output", required=True, help="output CSV (one row)")
    p.set_defaults(func=run)


def lung_file_source(value, segments=()) -> str:
    """How dose.csv's ``masks`` column names a ``--lungs`` file: with the RT lung definition when lungai made it
    (unchanged since: :func:`lungai.dicom.export.lungs_made_by`, the rule of dicom-export - ``lungai lungs``, the demo,
    a cohort's automatic lungs, dicom-export's SEG of them), else as the user's own lung mask - a clinic's contour is
    not lungai's definition (``--lungs-name`` names it).  ``segments``: the DICOM SEG's segments the lungs were read
    from, named (:func:`seg_file_source`)."""
    from lungai.dicom.export import lungs_made_by
    from lungai.lungs import RT_LUNG_DEFINITION

    if lungs_made_by(value):
        return seg_file_source(value, segments, f"{RT_LUNG_DEFINITION}; made by lungai lungs")
    return seg_file_source(value, segments, "lung mask given with --lungs, not made by lungai lungs: its own lung "
                                            "definition")


def gtv_file_source(value, segments=()) -> str:
    """How dose.csv's ``masks`` column names a ``--gtv`` file: as lungai's automatic tumour when lungai made it
    (``lungai segment``'s / the demo's tumor.nii.gz, a cohort's automatic tumour.nii.gz, dicom-export's SEG of it,
    unchanged since: :func:`lungai.dicom.export.tumour_made_by`, the rule of the lungs),
    as the demo's dose.csv says it (:data:`lungai.dose.features.AUTOMATIC_TUMOUR`), else by its file name (the
    user's GTV; ``--gtv-name`` names it).  QA: lungai segment's tumour was said "minus GTV: tumor.nii.gz" alone.
    ``segments``: the DICOM SEG's segments the GTV was read from, named (:func:`seg_file_source`)."""
    from lungai.dicom.export import tumour_made_by
    from lungai.dose.features import AUTOMATIC_TUMOUR

    made = tumour_made_by(value)
    return seg_file_source(value, segments, f"{AUTOMATIC_TUMOUR.split(' (')[0]}; made by lungai {made}"
                           if made else None)


def seg_file_source(value, segments=(), what: str | None = None) -> str:
    """A mask file as the ``masks`` column names it: ``lungs.nii.gz (what)``; a DICOM SEG by the segments used
    (``segments``, their SegmentLabels) as an RTSTRUCT by its structures (:func:`lungai.dicom.masks.rtstruct_dose_masks`
    - ``RTSTRUCT structure Lung_R + Lung_L (P1/RS.dcm, as contoured)``): ``DICOM SEG segment Lung, right + Lung, left
    (P1/seg.dcm; what)``, the SEG by its path as given (every patient's folder may hold a seg.dcm).  QA segfollow63:
    ``--lungs seg.dcm --gtv seg.dcm`` was said "lungs: seg.dcm (...); minus GTV: seg.dcm", which segment gave the MLD
    not said."""
    from lungai.dicom.masks import split_selector

    if not segments:
        return f"{Path(value).name} ({what})" if what else Path(value).name
    path = split_selector(value)[0]
    return f"DICOM SEG segment {' + '.join(map(str, segments))} ({path}" + (f"; {what})" if what else ")")


DOSE_PATH_FIX = ("check the --dose path: an RTDOSE .dcm, a folder of the export holding the RTDOSE(s), or a dose image "
                 "(NIfTI / NRRD / MHA)")


def check_dose_path(value) -> None:
    """``--dose`` must be there (a file or a folder), checked with the arguments, before any input is read.  QA rad69
    (LUNG1-003's DICOM CT + RTSTRUCT, ``--dose RD_gyX.dcm``, a typo): "note: the dose RD_gyX.dcm could not be checked
    against the CT ...: the dose is not DICOM" came first, then the CT and the masks were read (9.9 s), and only then
    "RD_gyX.dcm does not exist"."""
    import os

    from lungai.errors import InputError

    p = Path(value)
    if p.exists():
        return
    if p.is_symlink():
        raise InputError(f"--dose {p} is a link to {os.readlink(p)}, which does not exist", DOSE_PATH_FIX)
    raise InputError(f"--dose {p} does not exist", DOSE_PATH_FIX)


def check_dose_kind(p: Path) -> None:
    """A ``--dose`` file of another kind refused as what it is, with the option it goes to, with the arguments (its
    header read up to its Modality only, :func:`lungai.paths.dicom_modality`): a DICOM RTSTRUCT, SEG or CT slice, or
    a file that is neither DICOM nor an image (a table).  QA dicom71 (LUNG1-003's DICOM CT and RTSTRUCT): ``--dose
    RS.dcm`` was "holds no pixel data (PixelData); it is truncated or incomplete", fix "re-export the RTDOSE", after
    3.1 s; a CT slice (9.5 s) and a SEG (6.7 s) were said after the CT and the masks were read, a CSV as "unsupported
    file type '.csv' ... (.dcm: a SEG or RTSTRUCT is read by its content ...)" after 6.9 s.  A dose image (NIfTI /
    NRRD / MHA) passes, so does a DICOM file with the DICM preamble whose Modality cannot be read (cut short: the
    RTDOSE reader says where).  Called once the bar is drawn (its header read imports pydicom), before pandas and
    SimpleITK are loaded."""
    from lungai.errors import InputError
    from lungai.paths import FILE_SUFFIXES, IMAGE_MODALITIES, NOT_CT_OBJECTS, dicom_modality, image_suffix

    if image_suffix(p) in FILE_SUFFIXES:
        return
    modality = dicom_modality(p)
    if modality is None:
        from lungai.dicom.discover import has_dicm_preamble
        from lungai.dicom.pixeldata import NOT_DICOM

        if not has_dicm_preamble(p):
            raise InputError(f"--dose {p} {NOT_DICOM}, nor a dose image", DOSE_PATH_FIX)
    elif modality and modality != "RTDOSE":
        goes = (NOT_CT_OBJECTS[modality][1] if modality in NOT_CT_OBJECTS else
                f"a {modality} image goes to --ct (its series' folder)" if modality in IMAGE_MODALITIES else "")
        raise InputError(f"--dose {p} is a DICOM {modality} file, not an RTDOSE",
                         "give the RTDOSE exported with the treatment plan (its .dcm file, or the folder of the "
                         "export holding it) as --dose" + (f"; {goes}" if goes else ""))


def gtv_structures(rtstruct, gtv=None, mapping=None) -> tuple[list, list]:
    """(the RTSTRUCT structures the GTV dose of ``dose-features --rtstruct`` is of - ``gtv``, the ``--gtv`` structure
    name or role, default role:gtv: every contoured GTV -, the RTSTRUCT's other GTVs (role gtv) not among them, which
    are subtracted from the lungs all the same); ([], []) for a GTV mask file or no GTV.  Called once the masks are
    read (a name or role not in the RTSTRUCT is refused there).  QA radfollow69 (LUNG1-003, a dose covering GTV-1):
    the GTV dose was of GTV-1 + gtv-2 + gtv-3 without a word (min 2.2 Gy, mean 28.9 Gy for a GTV-1 of 60 Gy), and
    ``--gtv role:gtv_primary`` took gtv-2 and gtv-3 into the lungs of the MLD / V20."""
    from lungai.dicom.labels import name_key
    from lungai.dicom.masks import parse_spec, split_selector
    from lungai.dicom.roles import find_role, required_names
    from lungai.dicom.rtstruct import contoured_structures

    names, empty = contoured_structures(rtstruct)
    gtvs = find_role(names, "gtv", mapping)
    spec = gtv or ("role:gtv" if gtvs else None)
    if spec is None or split_selector(spec)[0].is_file():
        return [], []
    name, role = parse_spec(spec)
    used = (required_names(role, names, mapping, empty=empty) if role is not None else
            [n for n in names if name_key(n) == name_key(name)][:1] or [name])   # a name: one structure
    return used, [n for n in gtvs if n not in used]


# the command that takes one GTV for the GTV dose, as the notes of lungai cohort and lungai demo --rtstruct name it
# (they take every GTV, and have no --gtv)
DOSE_FEATURES_GTV = "lungai dose-features --ct CT --dose RTDOSE --rtstruct RTSTRUCT"


def hidden_gtvs(rtstruct, used, mapping=None) -> list[str]:
    """The structures of ``rtstruct`` that are GTVs but the structure mapping hides (``NAME: null``) beside the GTVs
    ``used`` (:func:`lungai.dicom.roles.hidden_gtv_note`): not subtracted from the lungs."""
    from lungai.dicom.roles import hidden_gtv_note, load_mapping, normalise
    from lungai.dicom.rtstruct import contoured_structures

    if rtstruct is None or not used:
        return []
    user = load_mapping(mapping)
    names = contoured_structures(rtstruct)[0]
    return list(dict.fromkeys(str(n) for n in names if normalise(n) in user and user[normalise(n)] is None
                              and hidden_gtv_note(n, used)))


def gtv_union_note(used, mapping=None, via: str = "", rtstruct=None) -> str | None:
    """The note of a GTV dose of several RTSTRUCT structures ``used`` (:func:`gtv_structures`; None for one): as
    ``lungai radiomics`` says a tumour of several (:func:`lungai.cli.radiomics.union_note`), for ``--gtv``, e.g.
    "GTV = union of GTV-1, gtv-3, gtv-2 (...); use --gtv role:gtv_primary (GTV-1) for the primary GTV only, or --gtv
    NAME for one structure".  ``via``: the command that has ``--gtv``, for a command without it (``lungai cohort``,
    ``lungai demo --rtstruct``: :data:`DOSE_FEATURES_GTV`) - the one wording of every command's GTV dose of several
    GTVs (QA cohortdose69: cohort and demo --rtstruct gave the union's GTV dose without a word).  ``rtstruct``: the
    RTSTRUCT they are of, whose GTVs the mapping hides (:func:`hidden_gtvs`) the note names as not subtracted (QA
    cohortfollow70: it said "the lungs minus every GTV" beside the warning that the hidden gtv-2 is not)."""
    from lungai.cli.radiomics import union_note
    from lungai.errors import agree

    if len(used) < 2:
        return None
    hidden = hidden_gtvs(rtstruct, used, mapping)
    every = (f"every GTV but the hidden {', '.join(hidden)} (mapped to null: not subtracted, "
             f"{agree(len(hidden), 'it stays', 'they stay')} in the lungs)" if hidden else "every GTV")
    return union_note("GTV", used, mapping, option="--gtv", via=via,
                      said=" (the GTV dose dose_gtv_mean/min/max_gy is of them all; the lung metrics are of the lungs "
                           f"minus {every}, whichever GTV is taken)")


# the steps the progress (bar, LUNGAI_PROGRESS lines for the Lung Radiomics panel) counts: each takes seconds on a
# thin-slice planning CT (QA: 512 x 512 x 401 at 0.8 mm, 10-25 s in all, nothing shown until the result)
STEPS = ("CT read", "masks read", "dose read", "features computed", "lungs checked")
# what each step is doing, said as it starts and then with its seconds (lungai.progress.waiting): QA rad68, LUNG1-003's
# DICOM CT + RTSTRUCT at load 10, the bar stood 4.3 s on "start" (the RTSTRUCT looked for), 3.4 s before "CT read" and
# 7.3 s on "CT read" while the RTSTRUCT's structures were drawn onto the CT grid - the Lung Radiomics panel's bar too
DOING = ("reading the CT", "reading the masks", "reading the dose", "computing the features", "checking the lungs")
RTSTRUCT_DOING = ("finding the RTSTRUCT in the folder", "checking the RTSTRUCT file")
CHECKING_DOSE = "checking that the dose belongs to the CT"


# said while the modules the command needs are imported, before its first step (QA radfollow68: the bar stood 4.7 s on
# "start" on a loaded machine, 1-3 s unloaded, while pandas, SimpleITK and the dose modules were imported)
LOADING = "loading pandas and SimpleITK"


def _load() -> None:
    """The modules :func:`_run` needs (pandas, SimpleITK under lungai.dose, lungai's dose, image and table modules),
    imported here behind :data:`LOADING`; :func:`_run` then finds them loaded."""
    import pandas  # noqa: F401

    import lungai.dose  # noqa: F401
    import lungai.dose.features  # noqa: F401
    import lungai.dose.read  # noqa: F401
    import lungai.io  # noqa: F401
    import lungai.io.outputs  # noqa: F401
    import lungai.radiomics.csv_output  # noqa: F401


def check_arguments(args) -> tuple[float, ...]:
    """The options that do not go together, and the values of -o, --v-levels and --max-dose-gy, refused with the
    arguments, before the paths are checked and anything is loaded or read (a pure argument check: before, some came
    after the CT was read, and since the input paths are checked first, QA rad69, a test of these gave missing paths
    and got "--dose ... does not exist"; QA radiomics71: ``-o dose.txt`` and ``--v-levels x`` were refused after
    pandas and SimpleITK were loaded, 3.0-3.8 s after the command against 0.8-1.3 s, ``--max-dose-gy 0`` once the CT
    and the masks were read, 5-8 s).  Returns the V levels in Gy (:func:`lungai.dose.levels.parse_v_levels`)."""
    from lungai.dose.levels import V_LEVELS, max_dose_limit, parse_v_levels
    from lungai.errors import InputError
    from lungai.paths import check_csv_name

    check_csv_name(args.output)            # dose.csv is a table
    if args.max_dose_gy is not None:
        max_dose_limit(args.max_dose_gy)

    if args.envelope and (args.gtv or args.rtstruct):
        raise InputError("--envelope is subtracted from the lungs only without a GTV" if args.gtv else
                         "--envelope is for mask files; with --rtstruct an iGTV / ITV is found by name and "
                         "subtracted when the RTSTRUCT has no GTV",
                         "leave out --envelope (with a GTV the GTV is subtracted from the lungs)" if args.gtv else
                         "leave out --envelope")
    if args.envelope_name and not args.envelope:
        raise InputError("--envelope-name describes an --envelope mask file", "give --envelope FILE, or leave "
                                                                             "--envelope-name out")
    if args.rtstruct and (args.lungs_name or args.gtv_name or args.lungs_exclude_gtv):
        raise InputError("--lungs-name / --gtv-name / --lungs-exclude-gtv describe --lungs / --gtv mask files; with "
                         "--rtstruct the masks column names its structures (a 'Lungs-GTV' one is said to exclude the "
                         "GTV)", "leave out --lungs-name / --gtv-name / --lungs-exclude-gtv")
    if args.rtstruct and args.structure and args.lungs:
        raise InputError("--structure and --lungs both name the lungs", "give one of them")
    if not args.rtstruct and (args.structure or not args.lungs):
        raise InputError("no lung mask given" if not args.structure else "--structure needs --rtstruct FILE",
                         "give --lungs FILE, or --rtstruct FILE (lungs and GTV found by role, or --structure NAME)")
    return parse_v_levels(args.v_levels, args.max_dose_gy) if args.v_levels else V_LEVELS


def check_paths(args) -> None:
    """The input files named are there (--dose: :func:`check_dose_path`; --rtstruct a file or folder, which
    :func:`lungai.dicom.rtstruct.rtstruct_option` then checks further; with --rtstruct, --lungs / --gtv name
    structures), refused naming the option before anything else: before pandas and SimpleITK are imported (QA
    radfollow69: a mistyped path cost their 4-5 s of :data:`LOADING` on a shared machine), before any input is read."""
    from lungai.paths import check_input_paths, check_structure_values

    check_dose_path(args.dose)
    # a folder given for a mask file, or with --rtstruct as a structure, refused here too (QA inputs70: after the CT's
    # read, "is a folder where a mask file was expected" / "structure '.../RTSTRUCT' is not in ...")
    if not args.rtstruct:       # a structure's name without --rtstruct: not "does not exist - check the path"
        from lungai.dicom.masks import check_names_need_rtstruct

        check_names_need_rtstruct([("--gtv", args.gtv, "every GTV contoured, by role", "GTV"),
                                   ("--lungs", args.lungs, "the lungs by role", "lung")])
    check_input_paths([("--ct", args.ct), ("--rtstruct", args.rtstruct), ("--envelope", args.envelope),
                       ("--structure-map", args.structure_map)]
                      + ([] if args.rtstruct else [("--lungs", args.lungs), ("--gtv", args.gtv)]),
                      masks=("--lungs", "--gtv", "--envelope"), cts=("--ct",))
    if args.rtstruct:
        from lungai.dicom.masks import check_gtv_spec

        check_structure_values([("--lungs", args.lungs), ("--gtv", args.gtv), ("--structure", args.structure)])
        if args.gtv:    # no lung as the GTV (QA lungsfollow71: --gtv Lung_R gave the MLD of the left lung only)
            check_gtv_spec(args.gtv, args.structure_map)


def run(args) -> int:
    from lungai.progress import task, timer_running

    v_levels = check_arguments(args)    # light: options that do not go together, then a mistyped path, refused at once
    check_paths(args)
    with task("dose-features", len(STEPS)) as bar:
        if Path(args.dose).is_file():   # on the bar (pydicom), before pandas and SimpleITK are loaded and any read
            check_dose_kind(Path(args.dose))
        bar.update(0, LOADING)
        with timer_running(bar):        # the imports count nothing: said again with their seconds while they run
            _load()
        from lungai.dose.read import dose_read_once

        with dose_read_once():          # --dose FOLDER: its RTDOSEs found, chosen and their headers read once
            return _run(args, bar, v_levels)


def _run(args, bar, v_levels) -> int:
    import pandas as pd

    from lungai.dose import check_dose_matches_ct, dose_features, read_dose
    from lungai.dose.features import (LUNGS_CUT_COLUMN, MASKS_COLUMN, NOTES_COLUMN, lungs_cut, masks_text, notes_text,
                                      output_columns, v_column)
    from lungai.io import input_case_id, read_ct
    from lungai.io.outputs import check_output_file_owner, prepare_output_file, record_output_file
    from lungai.progress import waiting
    from lungai.radiomics.csv_output import write_csv

    inputs = [p for p in (args.dose, args.ct, args.lungs, args.gtv, args.rtstruct, args.envelope) if p]
    if args.rtstruct:                      # a folder's RTSTRUCT found (and said) before the output folder is made
        from lungai.dicom.rtstruct import rtstruct_option

        given = args.rtstruct
        args.rtstruct, _ = waiting(bar, RTSTRUCT_DOING[0 if Path(given).is_dir() else 1], rtstruct_option,
                                   args.rtstruct, args.ct, args.series)   # its note printed there
        inputs = [args.rtstruct if p is given else p for p in inputs]
    prepare_output_file(args.output, inputs=inputs)          # before any work: nothing is computed in vain
    check_output_file_owner(args.output, OWNER)             # a user's file is never replaced
    # another patient's / frame's RTDOSE stops here (against a DICOM CT and the RTSTRUCT)
    note = waiting(bar, CHECKING_DOSE, check_dose_matches_ct, args.dose, args.ct, args.series, rtstruct=args.rtstruct)
    if note:
        print("note: " + note)
    ct = waiting(bar, DOING[0], read_ct, args.ct, series_uid=args.series)
    bar.update(1, STEPS[0])
    other_gtv_mask = gtv_dose_source = None    # (--rtstruct --gtv ONE of several GTVs: the others, its source)
    if args.rtstruct:
        from lungai.dicom.masks import rtstruct_dose_masks
        from lungai.dicom.roles import empty_note

        m = waiting(bar, DOING[1], rtstruct_dose_masks, args.rtstruct, ct, args.structure or args.lungs, args.gtv,
                    args.structure_map, args.allow_gaps)
        lungs, lung_source, gtv, gtv_source, empty = m["lungs"], m["lung_source"], m["gtv"], m["gtv_source"], m["empty"]
        envelope_source, envelope_problem = m["envelope_source"], m["envelope_problem"]
        if m["envelope_note"]:                    # no GTV: the lungs minus the iGTV / ITV
            print("note: " + m["envelope_note"])
        if m["one_lung_note"]:                    # --structure role:lung_right: the MLD of one lung
            print("note: " + m["one_lung_note"])
        gtv_used, other_gtvs = gtv_structures(args.rtstruct, args.gtv, args.structure_map) if gtv is not None \
            else ([], [])
        union = gtv_union_note(gtv_used, args.structure_map, rtstruct=args.rtstruct)
        if union:                                 # the GTV dose of several GTVs: said, as radiomics says a tumour's
            print("note: " + union)
        if other_gtvs:                            # --gtv role:gtv_primary: the other GTVs out of the lungs too
            from lungai.dicom.rtstruct import read_rtstruct

            def read_others():
                import SimpleITK as sitk

                masks = list(read_rtstruct(args.rtstruct, ct, names=other_gtvs, allow_gaps=args.allow_gaps,
                                           mapping=args.structure_map).values())
                out = sitk.Cast(masks[0] > 0, sitk.sitkUInt8)
                for mask in masks[1:]:
                    out = sitk.Or(out, sitk.Cast(mask > 0, sitk.sitkUInt8))
                return out

            other_gtv_mask = waiting(bar, DOING[1], read_others)
            gtv_dose_source, gtv_source = gtv_source, (f"RTSTRUCT structure {' + '.join(gtv_used + other_gtvs)} "
                                                       f"({args.rtstruct}, as contoured)")
    else:
        from lungai.dicom.masks import lung_map_input, mask_input

        # FILE#R,L: two labels of another map; one label: a binary mask
        # a DICOM SEG's segments used: the lungs' (right, left) and the GTV's, named in the masks column
        lung_segments, gtv_segments = {}, {}

        def read_masks():
            return (lung_map_input(args.lungs, ct, binary=True, consequence="every label > 0 would count as lung (a "
                                                                           "GTV's label too, in the MLD and V20)",
                                   names=lung_segments),
                    mask_input(args.gtv, ct, what="gtv", parts=gtv_segments) if args.gtv else None)

        lungs, gtv = waiting(bar, DOING[1], read_masks)
        lung_source = args.lungs_name or lung_file_source(args.lungs, [lung_segments[k] for k in sorted(lung_segments)])
        gtv_source = (args.gtv_name or gtv_file_source(args.gtv, list(gtv_segments))) if args.gtv else None
        envelope_source = envelope_problem = None
        if args.envelope:                       # no GTV: the lungs minus the motion envelope (the panel's iGTV)
            from lungai.dose.features import lungs_minus_envelope

            envelope_source = args.envelope_name or Path(args.envelope).name
            lungs = lungs_minus_envelope(lungs, [mask_input(args.envelope, ct, what="envelope")],
                                         names=[f"{args.envelope} ({envelope_source})" if args.envelope_name
                                                else str(args.envelope)])
    bar.update(1, STEPS[1])
    case = args.case or input_case_id(args.ct, args.series)
    if args.rtstruct and empty_note(empty):
        print("note: " + empty_note(empty))
    from lungai.dose.read import dose_reference

    # --dose FOLDER: the RTDOSEs of this CT's frame of reference; which make the dose (the plan's, or its beams
    # summed) is said once they are read
    folder_notes: list = []
    # the notes that qualify the metrics (an RTDOSE not checked against the CT, DoseType EFFECTIVE): recorded in the
    # CSV's rtdose_notes column, which lungai rp predict repeats (as the RP risk from Lung Radiomics' dose table)
    recorded = [note] if note else []
    if args.rtstruct and m["one_lung_note"]:   # the MLD of one lung: said beside the metrics
        recorded.append(m["one_lung_note"])
    reference = dose_reference(args.ct, args.series, args.rtstruct) if Path(args.dose).is_dir() else None
    dose = waiting(bar, DOING[2], read_dose, args.dose, unit=args.dose_unit, max_gy=args.max_dose_gy,
                   notes=folder_notes, reference=reference, record=recorded)
    bar.update(1, STEPS[2])
    for folder_note in folder_notes:
        print("note: " + folder_note)
    row = waiting(bar, DOING[3], dose_features, dose, ct, lungs, gtv, case=case, v_levels=v_levels,
                  other_gtvs=other_gtv_mask)
    bar.update(1, STEPS[3])
    from lungai.lungs.check import lung_map_notes

    # an RTSTRUCT structure is a binary mask
    lung_warnings = waiting(bar, DOING[4], lung_map_notes, lungs, label_map=not args.rtstruct)
    row[MASKS_COLUMN] = masks_text(lung_source, gtv_source if gtv is not None else None,   # what it was computed on
                                   envelope_source, envelope_problem,
                                   lungs_minus_gtv=bool(m["lungs_minus_gtv"] if args.rtstruct else
                                                        args.lungs_exclude_gtv), gtv_dose=gtv_dose_source)
    cut, cut_note = lungs_cut(lungs)              # the lungs cut by the scan's first / last slice: a partial lung
    bar.update(1, STEPS[4])
    row[LUNGS_CUT_COLUMN] = cut
    row[NOTES_COLUMN] = notes_text(recorded)
    write_csv(pd.DataFrame([row], columns=output_columns(v_levels)), args.output, protect=inputs)
    record_output_file(args.output, OWNER)                  # a re-run may replace it
    shown = 20 if 20 in v_levels else v_levels[len(v_levels) // 2]
    print(f"{case}: MLD {row['dose_mld_gy']:.2f} Gy, V{shown:g} {row[v_column(shown)]:.1f} % -> {args.output}")
    print(row[MASKS_COLUMN])                                # the masks, as the CSV's masks column says them
    for note in lung_warnings:
        print(f"warning: {note}")
    if cut_note:
        print(("warning: " if cut else "note: ") + cut_note)
    return 0
