"""``lungai radiomics``, ``lungai ibsi-check`` and ``lungai radiomics-batch``."""

from __future__ import annotations

from pathlib import Path

PARAMS_HELP = ("preset: default (pyradiomics settings, bin width 25 HU) or ibsi-a .. ibsi-e (the IBSI-1 configurations "
               "through the pipeline of `lungai ibsi-check`: IBSI-1-compliant values named by IBSI tag), or a "
               "pyradiomics YAML file")


def whole_number(text: str, minimum: int, fix: str, maximum: int | None = None) -> int:
    """An argparse value: a whole number >= ``minimum`` (and <= ``maximum`` when given); outside refused with ``fix``
    (what to give instead)."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: {fix}") from None   # (QA rp71: no fix)
    if n < minimum:
        raise argparse.ArgumentTypeError(f"{n} is below {minimum}: {fix}")
    if maximum is not None and n > maximum:
        raise argparse.ArgumentTypeError(f"{n} is above {maximum}: {fix}")
    return n


# the seeds numpy's legacy generator and scikit-learn's random_state take: 0 .. 2**32 - 1
SEED_MAX = 2 ** 32 - 1


def seed_number(text: str) -> int:
    """The argparse type of every ``--seed`` of the CLI: a whole number from 0 to :data:`SEED_MAX` (before, a seed
    above it - 5000000000 - or below 0 crashed with numpy's "Seed must be between 0 and 2**32 - 1" traceback, in
    ``stage train`` after the whole training, or was taken by one command and not another)."""
    return whole_number(text, 0, f"give a seed from 0 to 2**32 - 1 ({SEED_MAX})", maximum=SEED_MAX)


def real_number(text: str, low: float, high: float | None, fix: str, low_open: bool = False,
                high_open: bool = False) -> float:
    """An argparse value: a finite number in [low, high] (``low_open`` / ``high_open``: that end excluded; ``high``
    None: no upper end); outside it refused with ``fix`` (what to give instead)."""
    import argparse
    import math

    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: {fix}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: {fix}")
    if x < low or (low_open and x == low) or (high is not None and (x > high or (high_open and x == high))):
        span = (f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}" if high is not None
                else f"{'above' if low_open else 'at least'} {low:g}")
        raise argparse.ArgumentTypeError(f"{x:g} is not {'in ' if high is not None else ''}{span}: {fix}")
    return x


def worker_count(text: str) -> int:
    """``--workers`` of radiomics, radiomics-batch and cohort: a whole number >= 0 (0: a plain loop, no Dask); a
    negative number is refused (it used to run one worker silently; QA radfollow66: `radiomics --workers -2` too)."""
    return whole_number(text, 0, "give the number of worker processes (>= 1), or 0 for a plain loop in this process")


def log_sigma_mm(text: str) -> float:
    """A ``--log-sigma`` value: a LoG sigma in mm above 0 (0 or below ended in pykwalify's SchemaError traceback)."""
    return real_number(text, 0, None, "give LoG sigmas in mm above 0, e.g. --log-sigma 1 2 3", low_open=True)


def _add_feature_options(p, mask_segments: bool = False) -> None:
    p.add_argument("--params", default="default", help=PARAMS_HELP + " (default: default)")
    p.add_argument("--image-types", nargs="+", metavar="TYPE", default=None,
                   help="Original, LoG, Wavelet (default: the parameter set's, Original for presets)")
    p.add_argument("--log-sigma", nargs="+", type=log_sigma_mm, default=None, metavar="MM",
                   help="LoG sigmas in mm, above 0 (with LoG in --image-types, or a parameter file's LoG: replaces "
                        "its sigmas; default 1 2 3)")
    p.add_argument("--feature-classes", nargs="+", metavar="CLASS", default=None,
                   help="shape firstorder glcm glrlm glszm gldm ngtdm (pyradiomics) and gldzm intensityhistogram "
                        "intensityvolume localintensity (lungai, IBSI-1) (default: pyradiomics' seven; every class "
                        "with ibsi-a..e)")
    p.add_argument("--segments", nargs="+", metavar="NAME", default=None,
                   help="tumour right_lung left_lung lungs lungs_minus_tumour (default: all that the given masks can build, "
                        "e.g. tumour alone from a tumour mask alone; a segment named here that cannot be built is an error" +
                        ("; with --mask: names of the mask's segments, label_N or the --label names)" if mask_segments
                         else ")"))
    p.add_argument("--wide", action="store_true",
                   help="one row per case, columns rad_<segment>_<image_type>_<class>_<feature>")
    p.add_argument("--lung-spacing", type=float, default=None, metavar="MM",
                   help="isotropic grid (mm) of the lung segments, IBSI-style resampling (default: the parameter "
                        "set's, 2 mm for the default preset; 0 = the CT's own grid); the tumour keeps the CT's grid; refused "
                        "with a parameter file setting resampledPixelSpacing or an IBSI preset (their grid holds every "
                        "segment)")


def register(sub) -> None:
    from lungai.cli import ONE_LUNG_MASK, StoreOnce

    p = sub.add_parser("radiomics", help="pyradiomics features per segment (tumour, lungs ...) to CSV",
                       description="Segments come from --mask with --label N (or name=N), from --tumour and "
                                   "--lungs (lungai lungs output: 1 right, 2 left), or from a synthetic phantom "
                                   "label map with --phantom-labels.")
    p.add_argument("--image", required=True, help="CT: DICOM folder, .nii(.gz), .nrrd or .mha")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when the --image DICOM folder holds several "
                                                   "series")
    p.add_argument("--mask", default=None, help="label map on the CT grid, or a DICOM SEG (FILE#LABEL: one segment); "
                                                "a SEG's segments are named by their SegmentLabel unless --label "
                                                "NAME=N names them")
    p.add_argument("--label", action="append", default=None, metavar="N|NAME=N",
                   help="label value(s) of --mask to use as segments (repeatable; default every label; a NAME given "
                        "with several labels is one segment, their union, e.g. --label gtv=1 --label gtv=2)")
    p.add_argument("--phantom-labels", action="store_true",
                   help="--mask is a lungai synthetic label map: build the standard tumour/lung segments")
    p.add_argument("--tumour", default=None, help="tumour mask (nonzero voxels = tumour; NIfTI/NRRD/MHA or DICOM SEG); "
                                                  "with --rtstruct a structure name or role (default role:gtv)")
    p.add_argument("--lungs", default=None, action=StoreOnce, once_fix=ONE_LUNG_MASK, help="lung label map (1 = right, 2 = left), e.g. from `lungai lungs`; with "
                                                 "--rtstruct RIGHT,LEFT structure names or role:lungs (the default)")
    from lungai.dicom.masks import add_rtstruct_options

    add_rtstruct_options(p, "with --rtstruct: a structure (or role) to compute features of, as a segment of that "
                            "name (repeatable); without it, the standard segments from role:gtv and role:lungs")
    p.add_argument("--case", default=None,
                   help="case id (default: the DICOM PatientID for a DICOM CT, else the image file name)")
    p.add_argument("--workers", type=worker_count, default=1,
                   help="compute the segments in this many processes (default 1; the result is the same)")
    _add_feature_options(p, mask_segments=True)
    p.add_argument("-o", "--output", required=True, help="output CSV")
    p.set_defaults(func=run)

    q = sub.add_parser("ibsi-check", help="compare every IBSI-1 feature with the IBSI-1 reference values",
                       description="Runs IBSI configuration A-E on the IBSI-1 CT phantom (or 'digital' on the "
                                   "IBSI-1 digital phantom): IBSI interpolation, re-segmentation and bin origin, "
                                   "pyradiomics where it is correct and lungai.radiomics.features for the rest, "
                                   "and compares every reference feature with its value and tolerance.")
    q.add_argument("--image", required=True, help="IBSI phantom image (nifti/image/phantom.nii.gz)")
    q.add_argument("--mask", required=True, help="IBSI phantom mask (nifti/mask/mask.nii.gz)")
    q.add_argument("--reference", required=True, help="reference CSV (value;tolerance;tag)")
    q.add_argument("--config", required=True, type=str.upper, choices=list("ABCDE") + ["DIGITAL"],
                   help="IBSI configuration A-E, or digital for the digital phantom")
    q.add_argument("--settings-only", action="store_true",
                   help="pyradiomics settings only (no IBSI-style interpolation / bin origin), for comparison")
    q.add_argument("-o", "--output", required=True, help="comparison table CSV")
    q.set_defaults(func=run_ibsi)

    b = sub.add_parser("radiomics-batch", help="radiomics for a cohort on Dask (resumable)",
                       description="manifest CSV columns: case, image, and mask (+ optional label: 1;2 or "
                                   "tumour=1;lungs=2; or phantom = 1 for a lungai synthetic label map) or "
                                   "tumour and/or lungs (a cell holding a comma, \"labels.nii.gz#1,2\", in "
                                   "double quotes). Finished cases are skipped on a re-run (redone when "
                                   "their inputs changed); a failing case is recorded with its error and the "
                                   "others go on.")
    b.add_argument("manifest", help="manifest CSV")
    b.add_argument("--workers", type=worker_count, default=2,
                   help="local Dask worker processes (default 2; 0 = plain loop in this process)")
    b.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    _add_feature_options(b)
    b.add_argument("-o", "--output", required=True, help="output CSV (long format, or wide with --wide)")
    b.set_defaults(func=run_batch)


def _params(args):
    from lungai.radiomics import load_params

    return load_params(args.params, image_types=args.image_types, feature_classes=args.feature_classes,
                       log_sigma=args.log_sigma, lung_spacing_mm=args.lung_spacing)


def no_features_error(errors):
    """The error of a run whose every segment failed (``errors``: segment, error rows): each segment's problem, and ONE
    fix - the segments' own fix when they share it, else each segment's fix named - never a fix nested inside the
    problem text (a segment's error is ``problem\n  How to fix: fix``, :class:`lungai.errors.LungAIError`)."""
    from lungai.errors import InputError, split_error

    problems, fixes = [], {}
    for r in errors.itertuples(index=False):
        problem, fix = split_error(r.error)
        problems.append(f"{r.segment}: {problem}")
        if fix:
            fixes.setdefault(fix, []).append(str(r.segment))
    if len(fixes) == 1:
        fix = next(iter(fixes))
    elif fixes:
        fix = "; ".join(f"{', '.join(segs)}: {f}" for f, segs in fixes.items())
    else:
        fix = "fix the masks listed above"
    return InputError(f"no features could be computed ({'; '.join(problems) or 'no segment to compute'})",
                      f"{fix}; nothing was written")


def _is_errors_table(path: Path) -> bool:
    """``path`` is an errors table lungai wrote (header ``case,segment,error``)."""
    from lungai.radiomics.extract import ERROR_COLUMNS

    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().strip() == ",".join(ERROR_COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def _report_errors(errors, output: Path, inputs=()) -> None:
    """Write ``<output>_errors.csv`` and list the errors; with none, remove that file if an earlier run to
    this output left it (an errors table of ours, not an input), as ``radiomics-batch`` does."""
    import sys

    from lungai.errors import counted
    from lungai.radiomics.csv_output import write_csv

    path = output.with_name(output.stem + "_errors.csv")
    if errors.empty:
        protected = {Path(p).resolve() for p in inputs if Path(p).exists()}
        if path.is_file() and path.resolve() not in protected and _is_errors_table(path):
            from lungai.io.outputs import remove_output_file

            remove_output_file(path, "radiomics")       # and its marker entry: a later file of that name is yours
        return
    write_csv(errors, path, protect=inputs)
    for row in errors.itertuples(index=False):
        print(f"error: {row.case} / {row.segment}: {row.error}", file=sys.stderr)
    print(f"{counted(len(errors), 'segment')} failed; listed in {path}", file=sys.stderr)


def _pyradiomics_note() -> None:
    """Say once per command when this pyradiomics is not the one the IBSI-1 figures were verified with."""
    import sys

    from lungai.radiomics.settings import pyradiomics_note

    note = pyradiomics_note()
    if note:
        print(f"note: {note}", file=sys.stderr)


# the messages of the inputs' steps of `lungai radiomics` (the CT read, the segments built), before the segments' bar
INPUT_STEPS = ("reading the CT", "building the segments")
# with --rtstruct, the step before them: the RTSTRUCT of a folder looked for, or the file given checked
RTSTRUCT_STEPS = ("finding the RTSTRUCT in the folder", "checking the RTSTRUCT file")


def run(args) -> int:
    import sys

    from lungai.paths import check_csv_name, check_input_paths, check_structure_values

    # the input files named are there (with --rtstruct, --tumour / --lungs name structures): before any input is read
    # and before SimpleITK, pandas and the radiomics modules are imported (QA cohortdose69: a mistyped --image was
    # refused only after their import, 2-5 s on a shared machine, as dose-features' was - QA radfollow69); a folder
    # given for a mask file, or with --rtstruct as a structure, is refused there too (QA inputs70: after the CT's read)
    if not args.rtstruct:       # a structure's name without --rtstruct: not "does not exist - check the path"
        from lungai.dicom.masks import check_names_need_rtstruct

        check_names_need_rtstruct([("--tumour", args.tumour, "every GTV contoured, by role", "tumour"),
                                   ("--lungs", args.lungs, "the lungs by role", "lung")])
    check_input_paths([("--image", args.image), ("--mask", args.mask), ("--rtstruct", args.rtstruct),
                       ("--structure-map", args.structure_map)]
                      + ([] if args.rtstruct else [("--tumour", args.tumour), ("--lungs", args.lungs)]),
                      masks=("--mask", "--tumour", "--lungs"), cts=("--image",))
    if args.rtstruct:
        check_structure_values([("--tumour", args.tumour), ("--lungs", args.lungs), ("--structure", args.structure)])
        if args.tumour:     # no lung as the tumour (its features, and lungs_minus_tumour without that lung)
            from lungai.dicom.masks import check_gtv_spec

            check_gtv_spec(args.tumour, args.structure_map, "--tumour")
    # the output's name too, before those imports (QA radiomics71: -o features.txt refused 1.4-1.7 s after the command,
    # against 0.7 s for a mistyped path)
    check_csv_name(args.output)
    # and where it is written, before those imports and any read: not over an input, nor into the folder of a DICOM
    # input - an RTSTRUCT's, the CT's (light: lungai.io.outputs; QA dicomfollow71: `--rtstruct x/rs.dcm -o x/r.csv`
    # was refused once "reading the CT" was said, ~2.5 s); its owner and sidecars are checked below, on the bar
    from lungai.io.outputs import prepare_output_file

    prepare_output_file(args.output, inputs=[args.image, args.mask, args.tumour, args.lungs, args.rtstruct])
    from lungai.errors import InputError, counted
    from lungai.io import input_case_id, read_ct, read_mask
    from lungai.progress import task, timer_running, write
    from lungai.radiomics import extract, to_wide
    from lungai.radiomics import segments as S
    from lungai.radiomics.csv_output import write_csv

    from lungai.io.outputs import recorded_output_files
    from lungai.radiomics.settings import sidecar_path

    # the RTSTRUCT looked for, the CT read and the segments built on a bar of their own, before the segments' (QA
    # rad67: LUNG1-003's DICOM CT and RTSTRUCT, 4-7 s without a word before the first bar; longer on a thin-slice CT;
    # QA radfollow67: --rtstruct FOLDER searched for ~1 s before it)
    steps = INPUT_STEPS if not args.rtstruct else \
        (RTSTRUCT_STEPS[0 if Path(args.rtstruct).is_dir() else 1], *INPUT_STEPS)
    with task("radiomics: inputs", len(steps), rate=False) as bar:
        bar.update(0, steps[0])
        if args.rtstruct:                  # before any work: a folder's RTSTRUCT found (and said), or refused
            from lungai.dicom.rtstruct import rtstruct_option

            asked = [args.tumour, *(args.lungs.split(",") if args.lungs else []), *(args.structure or [])]
            args.rtstruct, _ = rtstruct_option(args.rtstruct, args.image, args.series,    # its note printed there
                                               structures=asked)
            bar.update(1, INPUT_STEPS[0])
        params = _params(args)
        inputs = [p for p in (args.image, args.mask, args.tumour, args.lungs, args.rtstruct) if p]
        out = Path(args.output)   # before any work; a user's file (the table's or a sidecar's name) is never replaced
        sidecars = [out.with_name(out.stem + n) for n in ("_settings.csv", "_errors.csv")] + [sidecar_path(out)]
        prepare_output_file(out, inputs=inputs, owner="radiomics", sidecars=sidecars)
        # the CT's reading and the segments' building said again with their seconds while they run (lungai.progress.
        # timer_running; QA rad68: "building the segments" stood 3.2 s on LUNG1-003's DICOM CT + RTSTRUCT, 4.3 s on
        # LUNG1-002's NIfTI masks at load 9)
        with timer_running(bar):
            image = read_ct(args.image, series_uid=args.series)
        bar.update(1, INPUT_STEPS[1])
        errors: dict = {}
        structures: dict = {}       # segment -> the RTSTRUCT structures it is made of
        lung_names: list = []       # lungs by a --structure-map role or a SEG's code only (their name has none)
        one_lesion: dict = {}       # segment -> how to give one lesion of it, in the words of the option it came from
        with timer_running(bar):
            if args.rtstruct:
                segs = _rtstruct_segments(args, image, errors, structures, lung_names, one_lesion)
            elif args.structure:
                raise InputError("--structure needs --rtstruct FILE|FOLDER",
                                 "give the RTSTRUCT that holds the structure")
            elif args.mask and not args.phantom_labels:
                # a DICOM SEG's segments are named by their SegmentLabel unless --label names them (as radiomics-batch)
                segs = S.segments_from_mask_file(args.mask, image, args.label, errors=errors, lung_names=lung_names,
                                                 one_lesion=one_lesion)
                if args.segments:       # --segments selects among the mask's segments (it was ignored with --mask)
                    segs = S.mask_segments_named(segs, errors, args.segments, args.mask)
                    lung_names[:] = [n for n in lung_names if n in segs]
                    one_lesion = {n: v for n, v in one_lesion.items() if n in segs}
                from lungai.lungs.check import lung_role_notes

                for note in lung_role_notes(segs, image):       # a lung label that looks like no lung (the panel's)
                    write(f"note: {note}")
            elif args.mask:
                segs = S.segments_from_phantom_labels(read_mask(args.mask, reference=image), image, names=args.segments,
                                                      errors=errors)
                from lungai.lungs.check import lung_segment_notes

                for note in lung_segment_notes(segs, image):
                    write(f"note: {note}")
            elif args.tumour or args.lungs:
                from lungai.dicom.masks import lung_map_input, mask_input

                # a lung label map of other structures too (GTVs) is refused, never read as 1 right / 2 left
                sides: dict = {}       # a DICOM SEG's right and left lung segments, named if they are swapped
                seg_parts: dict = {}   # a DICOM SEG tumour's segments
                lmt_notes: list = []   # a tumour wholly outside the lungs: lungs_minus_tumour equals the lungs, said
                segs = S.segments_from_masks(image, tumour=mask_input(args.tumour, image, parts=seg_parts)
                                             if args.tumour else None,
                                             lungs=lung_map_input(args.lungs, image, consequence=S.LUNG_MAP_CONSEQUENCE,
                                                                  names=sides)
                                             if args.lungs else None,
                                             names=args.segments, errors=errors, lung_segments=sides,
                                             lung_file=args.lungs, tumour_segments=seg_parts, tumour_file=args.tumour,
                                             notes=lmt_notes, lung_notes=lmt_notes)
                for note in lmt_notes:
                    write(f"note: {note}")
                if args.tumour:
                    one_lesion["tumour"] = S.tumour_one_lesion(args.tumour, seg_parts)
            else:
                raise InputError("no mask given",
                                 "give --mask (with --label or --phantom-labels), or --tumour and/or --lungs")
        bar.update(1, f"{counted(len(segs), 'segment')} built")
    case = args.case or input_case_id(args.image, args.series)
    from lungai.radiomics.settings import with_lung_grid_revision

    params = with_lung_grid_revision(params, segs, lung_names)     # the id (and sidecar) of lung segments' grid
    _pyradiomics_note()
    with task("radiomics", max(len(segs), 1)) as bar:
        if args.rtstruct:       # the structures each segment is made of
            one_lesion.update({n: S.structures_one_lesion("--structure" if args.structure else "--tumour", used)
                               for n, used in structures.items() if used and isinstance(used[0], str)})
        result = extract(image, segs, params, case=case, progress=bar, segment_errors=errors, workers=args.workers,
                         lung_names=lung_names, one_lesion=one_lesion)
    out = Path(args.output)
    if result.features.empty:
        raise no_features_error(result.errors)
    table = to_wide(result.features) if args.wide else result.features
    from lungai.radiomics.extract import edge_notes
    from lungai.radiomics.settings import write_sidecar

    for note in edge_notes(result.settings):     # recorded in the settings CSV's cut_by_image_edge column
        print(f"warning: {note}", file=sys.stderr)
    for note in result.notes:     # why some values are NaN (an IBSI preset: flat ROI, 2D texture of a thin ROI ...)
        print(f"note: {note}", file=sys.stderr)
    result.settings["structures"] = [_structures_text(structures.get(s)) for s in result.settings["segment"]]
    for note in union_notes(structures, set(result.settings["segment"]), args.structure_map):
        print(f"note: {note}", file=sys.stderr)

    with recorded_output_files([out, *sidecars], "radiomics"):   # recorded once written (a failure included):
        write_csv(table, out, protect=inputs)                    # a re-run may replace them
        write_csv(result.settings, out.with_name(out.stem + "_settings.csv"), protect=inputs)
        write_sidecar(out, params)  # <output>.settings.json: the settings in full (the CSV carries their id)
        _report_errors(result.errors, out, inputs)
    n_seg = result.features["segment"].nunique()
    print(f"{len(result.features)} values for {counted(n_seg, 'segment')} of {case} -> {out} "
          f"(grid and settings per segment: {out.stem}_settings.csv)")
    from lungai.radiomics.settings import unverified_ibsi_note

    # an IBSI preset's ivh_auc: IBSI-1 gives it no reference value (QA radiomics72: written among the verified ones)
    if (note := unverified_ibsi_note(params, out)) is not None:
        print(f"note: {note}", file=sys.stderr)
    return 1 if not result.errors.empty else 0


TUMOUR_SEGMENTS = ("tumour", "lungs_minus_tumour")
LUNG_SEGMENTS = ("right_lung", "left_lung", "lungs", "lungs_minus_tumour")


def _missing_roles(names, roles, mapping) -> str | None:
    """Why the structures of ``roles`` cannot be found among ``names`` (None when every role has one)."""
    from lungai.dicom.roles import describe_roles, find_role

    missing = [r for r in roles if not find_role(names, r, mapping)]
    if not missing:
        return None
    return (f"no structure with role {' or '.join(repr(r) for r in missing)} among: "
            f"{describe_roles(names, mapping)}")


def _rtstruct_notes(rtstruct, mapping) -> None:
    """What ``dose-features --rtstruct`` says of the RTSTRUCT: the structures left out for having no contours (a
    note), a GTV by its RT ROI type, an iGTV or GTV-like name not taken as a GTV (warnings)."""
    from lungai.dicom.roles import empty_note
    from lungai.dicom.rtstruct import contoured_structures, warn_role_notes
    from lungai.progress import write     # beside the inputs' bar, not glued to its line

    names, empty = contoured_structures(rtstruct)
    warn_role_notes(names, mapping)
    note = empty_note(empty)
    if note:
        write("note: " + note)


def _structures_text(used) -> str:
    """A segment's RTSTRUCT structures for the ``structures`` column: ``GTV-1+gtv-2``; lungs minus tumour as
    ``Lung_R+Lung_L minus GTV`` (the file's name for a tumour / lungs from a file: ``Lung_R+Lung_L minus
    tumor.seg.dcm``); "" for a segment from a file."""
    from lungai.dicom.masks import structure_names

    if not used:
        return ""
    if isinstance(used, tuple):          # (lungs, tumour) of lungs_minus_tumour
        return f"{structure_names(used[0])} minus {structure_names(used[1])}"
    return structure_names(used)


def union_notes(structures: dict, segments, mapping=None) -> list[str]:
    """A note per computed segment made of several RTSTRUCT structures (their union: primary and nodal GTVs merge
    into one 'tumour', whose shape features then describe several objects), naming them and how to take one
    (:func:`union_note`)."""
    from lungai.dicom.roles import find_role

    LUNG_STRUCTURE_ROLES = ("lung_right", "lung_left", "lungs")

    notes = []
    for seg, used in structures.items():
        if seg not in segments or isinstance(used, tuple) or len(used) < 2 or seg == "lungs":
            continue
        if find_role(used, "gtv", mapping) and any(find_role(used, r, mapping) for r in LUNG_STRUCTURE_ROLES):
            continue        # role:lungs_minus_gtv built as the lungs minus the GTVs: a difference, not a union
        notes.append(union_note(seg, used, mapping, option="--tumour" if seg == "tumour" else None))
    return notes


def union_note(what: str, used, mapping=None, option: str | None = "--tumour", said: str = "", via: str = "") -> str:
    """The note of a mask made of several RTSTRUCT structures ``used`` (2 or more): ``what = union of A, B`` then
    ``said`` (what that union means there), then how to take one: ``OPTION role:gtv_primary (GTV-1)`` for the primary
    GTV when one of them is, ``OPTION NAME`` for one structure (``option`` None: "give one structure by name for one
    of them").  One wording for ``lungai radiomics`` (the tumour, ``--tumour``) and ``lungai dose-features`` (the GTV
    of the GTV dose, ``--gtv``), and for the commands without such an option (``lungai cohort``, ``lungai demo
    --rtstruct``: the GTV dose of every GTV) with ``via``, the command that has it, said before its first mention
    ("use lungai dose-features --ct CT ... --gtv role:gtv_primary (GTV-1) ...").  Names differing only in letter case
    ("GTV", "gtv"): a name takes neither alone (check_case_groups), so the hint does not offer it for them."""
    from lungai.dicom.labels import case_pairs
    from lungai.dicom.roles import find_role

    primary = find_role(used, "gtv_primary", mapping) if option else []
    by_name = f"{option} NAME for one structure" if option else "give one structure by name"
    pairs = case_pairs(used)
    if pairs:
        shown = "; ".join(" / ".join(g) for g in pairs)
        paired = {n for g in pairs for n in g}
        why = f"{shown} differ only in letter case, so no name takes one of them alone: rename one to take it by name"
        by_name = f"{by_name} ({why})" if any(n not in paired for n in used) else None
    how = (f"use {option} role:gtv_primary ({', '.join(primary)}) for the primary GTV only" if len(primary) == 1
           else "")
    name_hint = (by_name if option or by_name is None else f"{by_name} for one of them") if pairs else \
        (by_name if option else f"{by_name} for one of them")
    if pairs and by_name is None:
        how = f"{how}; {why}" if how else why
    else:
        how = f"{how}, or {name_hint}" if how else f"use {name_hint}" if option else name_hint
    if via and option:
        how = how.replace(f"use {option} ", f"use {via} {option} ", 1)
    return f"{what} = union of {', '.join(used)}{said}; {how}"


def _rtstruct_segments(args, image, errors: dict, structures: dict | None = None, lung_names: list | None = None,
                       one_lesion: dict | None = None) -> dict:
    """Segments from the RTSTRUCT: each --structure as its own segment, else the standard segments by role.
    ``lung_names`` gets the --structure segments that are lungs by the --structure-map's role only ("Rt_Lung_Contour:
    lung_right"): on the lung grid like ``--structure role:lung_right``.

    Only the structures the requested segments need are read; a segment whose structures the RTSTRUCT does not
    hold (found by role) is reported in ``errors`` and the other segments go on.  ``structures`` gets each
    segment's structure names (lungs_minus_tumour: (lung names, tumour names)).  ``one_lesion`` gets how to give one
    lesion of a tumour given as a file (``--tumour FILE``, not a structure), in the words of that file
    (:func:`lungai.radiomics.segments.tumour_one_lesion`, as without ``--rtstruct``)."""
    from lungai.dicom.masks import lung_map_input, lungs_minus_gtv_parts, mask_input, structure_mask
    from lungai.dicom.roles import AmbiguousRole
    from lungai.dicom.rtstruct import list_structures
    from lungai.progress import write     # beside the inputs' bar, not glued to its line
    from lungai.radiomics import segments as S
    from lungai.segment_roles import lungs_by_role

    mapping, gaps = args.structure_map, args.allow_gaps
    _rtstruct_notes(args.rtstruct, mapping)
    structures = {} if structures is None else structures
    if args.structure:
        out = {}
        for spec in args.structure:
            name = spec.split(":", 1)[-1] if spec.lower().startswith("role:") else spec
            try:
                out[name], structures[name] = structure_mask(args.rtstruct, image, spec, mapping, gaps)
            except AmbiguousRole as exc:   # two --structure are two segments here, never one segment of both lungs
                raise (exc.with_fix(None) if len(exc.pick) > 1 else exc) from None
            # the lungs minus the GTVs (no 'Lungs-GTV' structure): (lungs, GTVs), said "Lung_R+Lung_L minus GTV"
            structures[name] = lungs_minus_gtv_parts(spec, structures[name], mapping) or structures[name]
            if lung_names is not None:
                lung_names.extend(lungs_by_role([name], mapping))
        return out
    names = list_structures(args.rtstruct)
    wanted = list(args.segments or S.STANDARD_SEGMENTS)
    why: dict[str, str] = {}          # segment -> why it cannot be built
    tumour = lungs = None
    seg_parts: dict = {}    # a tumour file's DICOM SEG segments (--tumour seg.dcm#GTV-1, not a structure)
    if any(n in TUMOUR_SEGMENTS for n in wanted):
        missing = None if args.tumour else _missing_roles(names, ("gtv",), mapping)
        if missing:
            for n in TUMOUR_SEGMENTS:
                why[n] = (f"segment {n!r} needs the tumour: {missing}; name it with --tumour NAME or map it "
                          "with --structure-map FILE")
        else:
            tumour = mask_input(args.tumour or "role:gtv", image, args.rtstruct, mapping, allow_gaps=gaps,
                                used=structures.setdefault("tumour", []), parts=seg_parts)
    # a tumour file, not a structure (no structure read): its advice and errors name the file, as without --rtstruct
    # (QA segmsg65: LUNG1-003's RTSTRUCT with --tumour gtv23.nii.gz, three parts, was told "give its own mask, label
    # or segment")
    tumour_file = args.tumour if tumour is not None and args.tumour and not structures.get("tumour") else None
    if tumour_file and one_lesion is not None:
        one_lesion["tumour"] = S.tumour_one_lesion(tumour_file, seg_parts)
    if any(n in LUNG_SEGMENTS and n not in why for n in wanted):
        missing = None if args.lungs else _missing_roles(names, ("lung_right", "lung_left"), mapping)
        if missing:
            for n in LUNG_SEGMENTS:
                why.setdefault(n, f"segment {n!r} needs the right and left lung: {missing}; name them with "
                                  "--lungs RIGHT,LEFT or map them with --structure-map FILE")
        else:
            sides: list = []
            try:
                lungs = lung_map_input(args.lungs or "role:lungs", image, args.rtstruct, mapping=mapping,
                                       allow_gaps=gaps, used=sides, consequence=S.LUNG_MAP_CONSEQUENCE)
            except AmbiguousRole as exc:   # the standard segments' lungs are chosen by --lungs RIGHT,LEFT
                raise exc.with_fix("lungs") from None
            if sides:
                structures.update(right_lung=sides[0], left_lung=sides[1], lungs=sides[0] + sides[1])
    # lungs minus tumour: its RTSTRUCT structures, the tumour's or the lungs' file named when one came from a file
    # (QA: --tumour tumor.seg.dcm with the RTSTRUCT's lungs left the column blank)
    if tumour is not None and lungs is not None and (structures.get("tumour") or structures.get("lungs")):
        structures["lungs_minus_tumour"] = (structures.get("lungs") or ([Path(args.lungs).name] if args.lungs else []),
                                            structures.get("tumour") or ([Path(args.tumour).name] if args.tumour else []))
    buildable = [n for n in wanted if n not in why]
    # without --segments only what the RTSTRUCT can build is wanted: the others are noted, not errors
    # (unless nothing can be built: then they say why)
    skipped = {n: msg for n, msg in why.items() if n in wanted}
    if args.segments or not buildable:
        errors.update(skipped)
    else:
        for n, msg in skipped.items():
            write(f"note: {n} not computed: {msg}")
    if not buildable:
        return {}
    lmt_notes: list = []   # a tumour wholly outside the lungs: lungs_minus_tumour equals the lungs, said (as without
    out = S.segments_from_masks(image, tumour=tumour, lungs=lungs, names=buildable, errors=errors,   # --rtstruct)
                                tumour_segments=seg_parts if tumour_file else None, tumour_file=tumour_file,
                                notes=lmt_notes, tumour_structures=None if tumour_file else structures.get("tumour"),
                                lung_notes=lmt_notes, requested=bool(args.segments))
    for note in lmt_notes:
        write(f"note: {note}")
    return out


def run_ibsi(args) -> int:
    from lungai.paths import check_csv_name

    check_csv_name(args.output)     # before the radiomics modules' imports (QA radiomics71: after 1.4 s)
    from lungai.io.outputs import prepare_output_file, record_output_file
    from lungai.progress import task
    from lungai.radiomics.csv_output import write_csv
    from lungai.radiomics.ibsi.compare import CHECK_STEPS

    prepare_output_file(args.output, inputs=[args.image, args.mask, args.reference], owner="ibsi-check")   # before any work
    # its steps on the bar, each as it starts (QA rad68: one step, "0/1" for 4.4-9 s on the IBSI-1 CT phantom)
    with task(f"ibsi-check {args.config.upper()}", CHECK_STEPS) as bar:
        from lungai.radiomics.ibsi import run_check     # its pandas imported after the first bar

        report = run_check(args.image, args.mask, args.reference, args.config.upper(),
                           ibsi_preprocessing=not args.settings_only, progress=bar)
        bar.update(1, f"{report.matched} of {report.total} within tolerance")
    write_csv(report.table, args.output, protect=[args.image, args.mask, args.reference])
    record_output_file(args.output, "ibsi-check")
    print(report.summary())
    return 0 if report.passed else 1    # scriptable: 1 when a feature misses or the reference is another's


def run_batch(args) -> int:
    from lungai.paths import check_csv_name

    check_csv_name(args.output)     # before the batch modules' imports (QA radiomics71: -o x.txt refused after 2-3 s)
    from lungai.radiomics.batch import run_batch as batch

    _pyradiomics_note()
    summary = batch(args.manifest, args.output, _params(args), workers=args.workers, scheduler=args.scheduler,
                    segments=args.segments, wide=args.wide)
    print(summary.text())
    return 1 if summary.failed or summary.segment_errors else 0   # as `lungai radiomics`: a segment failed
