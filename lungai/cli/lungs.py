"""``lungai lungs``: automatic right/left lung masks."""

from __future__ import annotations


# --gtv given twice: the GTVs of a plan are one mask (a label map's labels, a SEG's segments)
ONE_GTV_MASK = ("give every GTV in one --gtv: FILE#N,M for labels N and M of a label map, or a DICOM SEG holding each "
                "GTV as a segment")


def register(sub) -> None:
    from lungai.cli import StoreOnce

    p = sub.add_parser("lungs", help="segment the lungs (1 = right, 2 = left) without a trained model",
                       description="Threshold-based lung segmentation: removes outside air and the trachea/main "
                                   "bronchi, fills vessels. Without a GTV, tumours inside the lung are kept but large "
                                   "tumours at the hilum, mediastinum or chest wall mostly are not (real CTs: 13.5 % "
                                   "of a 360 ml GTV, 0-34 % of 35-48 ml ones kept; docs/lungs.md); with --gtv each "
                                   "GTV's part outside the lungs is said and the GTV subtracted from them.")
    p.add_argument("ct", help="CT: DICOM folder, .nii/.nii.gz, .nrrd or .mha")
    p.add_argument("-o", "--output", required=True, help="output label image (.nii.gz, .nrrd, .mha)")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when the DICOM folder holds several series")
    p.add_argument("--gtv", default=None, action=StoreOnce, once_fix=ONE_GTV_MASK,
                   help="GTV mask on the CT grid (label > 0; FILE#N: label N of a label map, FILE#N,M: labels N and "
                        "M, each a GTV; a DICOM SEG: its GTV segments, FILE#LABEL one); with --rtstruct a structure "
                        "or role (default role:gtv: every GTV contoured, each said): says how much of each GTV lies "
                        "outside the lung masks, and the GTV is subtracted from them (lungs minus GTV, the lungs of "
                        "the dose metrics)")
    from lungai.dicom.masks import add_rtstruct_options

    # the RTSTRUCT options of segment-free commands (radiomics, dose-features, the demo) by the one shared helper: a
    # GTV whose name has no role is taken with --structure-map (QA lungs71: lungs had its own --rtstruct /
    # --allow-gaps, and its own warnings' fix - "map it with --structure-map" - was refused as an unknown argument)
    add_rtstruct_options(p, "with --rtstruct: a GTV structure (NAME or role:ROLE) to subtract from the lungs, as "
                            "--gtv; given several times, each of them (--structure GTV-1 --structure gtv-2)")
    p.add_argument("--no-dicom", action="store_true",
                   help="for a DICOM CT, do not write <output>.seg.dcm (DICOM SEG) and <output>.rtstruct.dcm beside it")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lungai.lungs import LUNG_STEPS
    from lungai.progress import task, timer_running

    from lungai.io.outputs import prepare_output_file, recorded_output_files
    from lungai.io.write import check_image_name, output_stem

    from lungai.cli import check_input_exists

    check_image_name(args.output)       # the arguments first (as segment), before reading and segmenting
    check_input_exists(args.ct, series=args.series)     # before the progress bar and any work
    check_gtv_options(args)
    from lungai.paths import check_output_not_among_ct_slices

    # -o straight into the CT's series folder: refused from the paths, before the series is listed (SimpleITK)
    check_output_not_among_ct_slices(Path(args.output).absolute().parent, args.ct, dicom_results=not args.no_dicom)
    if args.gtv or args.rtstruct or args.structure_map:
        from lungai.paths import check_input_paths, check_structure_values

        check_input_paths([("--rtstruct", args.rtstruct) if args.rtstruct else ("--gtv", args.gtv),
                           ("--structure-map", args.structure_map)], masks=("--gtv",))
        if args.rtstruct:       # the RTSTRUCT of a folder found (and said) before any work; its GTVs by role
            from lungai.dicom.masks import check_gtv_spec
            from lungai.dicom.rtstruct import rtstruct_option

            check_structure_values([("--gtv", args.gtv), ("--structure", args.structure)])
            for spec in args.structure or ([args.gtv] if args.gtv else []):     # no lung as a GTV
                check_gtv_spec(spec, args.structure_map, "--structure" if args.structure else "--gtv")
            args.rtstruct = rtstruct_option(args.rtstruct, args.ct, args.series,
                                            structures=args.structure or [args.gtv])[0]
    # the DICOM checks after the arguments' (their module, with lungai.dicom.export's SimpleITK and highdicom, was
    # imported first: QA notesfollow71)
    from lungai.dicom.reference import MULTIFRAME_NO_DICOM, multiframe_ct, one_series_scan, reads_dicom_ct

    # the GTVs asked for: --gtv, or each --structure (with --rtstruct: every GTV contoured, role:gtv, by default)
    gtv_specs = args.structure or ([args.gtv] if args.gtv else ["role:gtv"] if args.rtstruct else [])
    dicom = reads_dicom_ct(args.ct) and not args.no_dicom   # the series read_ct reads (in CT/ too)
    with one_series_scan():     # the series' headers read once for the two checks below
        skipped = dicom and multiframe_ct(args.ct, args.series)   # no SEG / RTSTRUCT of it: said, not failed at the end
        dicom = dicom and not skipped
        stem = output_stem(args.output)     # a user's file is never replaced (the DICOM objects beside it neither)
        sidecars = [stem.with_name(stem.name + s) for s in (".seg.dcm", ".rtstruct.dcm")] if dicom else []
        if dicom:   # not the CT series' own folder, found below the folder given (DICOM results would land among its
            # slices), nor inside the DICOM export holding it: before any work
            from lungai.dicom.reference import check_output_folder

            check_output_folder(stem.parent, args.ct, args.series)
    gtv_file = args.rtstruct or args.gtv     # the GTV's file (an RTSTRUCT: --gtv names its structure)
    prepare_output_file(args.output, inputs=[p for p in (args.ct, gtv_file, args.structure_map) if p], owner="lungs",
                        sidecars=sidecars)   # before any work
    # the readers' and writers' SimpleITK once the output is claimed, after every refusal of the arguments
    from lungai.dicom.export import EXPORT_STEPS
    from lungai.io import read_ct, write_image

    # each file recorded as soon as the run ends (a failure included): a re-run replaces them
    # the segmentation's own steps (air, airways, right / left split, each lung filled) move the bar too, and each
    # DICOM file written (EXPORT_STEPS: the SEG, the RTSTRUCT)
    with task("lungs", LUNG_STEPS + 2 + (EXPORT_STEPS if dicom else 0)) as bar, recorded_output_files([args.output, *sidecars], "lungs"):
        # the reads said, then again with their seconds while they run (QA lungsfollow71: LUNG1-003's DICOM CT and
        # RTSTRUCT stood 2-6 s on "lungs: 0/11 [00:00]"), as radiomics' (lungai.progress.timer_running)
        bar.update(0, "reading the CT")
        with timer_running(bar):
            ct = read_ct(args.ct, series_uid=args.series)
            reference = None
            if dicom:   # the CT series' headers checked against the image before any work (no half-written results)
                from lungai.dicom.export import reference_for

                reference = reference_for(args.ct, ct, args.series)
        # before the segmentation: a bad GTV costs no work
        gtvs = {}
        if gtv_specs:
            bar.update(0, "reading the GTVs")
        with timer_running(bar):
            for spec in gtv_specs:  # each GTV once, under its name (a structure of two --structure roles read once)
                gtvs.update(read_gtvs(spec, ct, args.rtstruct, args.allow_gaps, args.structure_map, skip=gtvs))
        bar.update(1, "read")
        # the segmentation's modules (scipy.ndimage / spatial, skimage: 0.4-2 s of a shared machine) after the bar
        bar.update(0, "loading the lung segmentation")     # its modules: up to 1.5 s said nothing (QA lungsgap66)
        from lungai.lungs import segment_lungs

        result = segment_lungs(ct, progress=bar, checked=True)     # read_ct checked its HU (check_ct)
        labels, volumes, gtv_rows = result.labels, result.volumes_ml, []
        if gtvs:        # each GTV's part outside the lungs said, the GTV subtracted from them (lungs minus GTV)
            from lungai.lungs.check import GTV_EMPTIED_FIX, GTV_EMPTY_FIX, gtv_outside_lungs, lungs_minus

            gtv_rows = gtv_outside_lungs(labels, gtvs)
            labels = lungs_minus(labels, list(gtvs.values()), names=list(gtvs), what="GTV",
                                 empty_fix=GTV_EMPTY_FIX, emptied_fix=GTV_EMPTIED_FIX)
            volumes = lung_volumes(labels)
        bar.update(0, f"writing {Path(args.output).name}")   # a message-only update (about 1 s on LUNG1-002)
        write_image(labels, args.output, protect=[p for p in (args.ct, gtv_file) if p])
        bar.update(1, "written")
        written = []
        if dicom:
            from lungai.dicom.export import export_lungs

            written = export_lungs(reference, labels, stem, progress=bar)
    v = volumes
    minus = " (minus the GTV)" if gtvs else ""
    print(f"right lung {v['right_lung']:.0f} ml, left lung {v['left_lung']:.0f} ml{minus} -> {args.output}")
    for row in gtv_rows:
        print(f"note: {row['note']}")
    for path in written:
        print(f"DICOM: {path}")
    if skipped:
        print(f"note: {MULTIFRAME_NO_DICOM.format(ct=args.ct)}, so {stem.name}.seg.dcm / .rtstruct.dcm are not "
              f"written; the label map {args.output} is")
    for note in result.notes:
        print(f"{'warning' if note in result.warnings else 'note'}: {note}")
    return 0


def check_gtv_options(args) -> None:
    """``--structure`` (the shared RTSTRUCT options, :func:`lungai.dicom.masks.add_rtstruct_options`) names the GTV
    structures of ``--rtstruct``, as ``--gtv`` does: without ``--rtstruct``, or beside ``--gtv``, refused with the
    arguments, before any input is read (as dose-features' ``--structure`` beside ``--lungs``).  Without
    ``--rtstruct``, ``--allow-gaps`` (nothing of an RTSTRUCT read), ``--structure-map`` without ``--gtv`` or with a
    label map's (no name to map) and a ``--gtv`` that is a structure's name (:func:`lungai.paths.named_like_structure`)
    are refused too."""
    from lungai.errors import InputError

    if args.structure and not args.rtstruct:
        raise InputError("--structure needs --rtstruct FILE|FOLDER",
                         "give the RTSTRUCT that holds the GTV structure, or the GTV mask file with --gtv FILE")
    if args.structure and args.gtv:
        raise InputError("--structure and --gtv both name the GTV",
                         "give one of them: --gtv NAME|role:ROLE, or --structure NAME once per GTV")
    if args.rtstruct:
        return
    # the RTSTRUCT options given without it, no longer ignored without a word (QA lungsfollow71), and a structure's
    # name given as --gtv: "does not exist - check the path" said nothing of --rtstruct
    from lungai.dicom.masks import check_names_need_rtstruct

    check_names_need_rtstruct([("--gtv", args.gtv, "every GTV contoured, by role", "GTV")])
    if args.allow_gaps:
        raise InputError("--allow-gaps is for --rtstruct's contours (a structure with slices left out); without "
                         "--rtstruct no contour is read", "give --rtstruct FILE|FOLDER, or leave out --allow-gaps")
    if args.structure_map and not args.gtv:
        raise InputError("--structure-map gives roles to the names of --rtstruct's structures or of a --gtv DICOM "
                         "SEG's segments; with neither, no GTV is read and the map would be ignored",
                         "give --rtstruct FILE|FOLDER (its GTVs found by role, the map's first) or --gtv SEG; or leave "
                         "out --structure-map")
    if args.structure_map:
        from lungai.dicom.masks import split_selector
        from lungai.paths import FILE_SUFFIXES, image_suffix

        if image_suffix(split_selector(args.gtv)[0]) in FILE_SUFFIXES:     # never read as DICOM: a label map
            raise InputError(f"--structure-map gives roles to names, and --gtv {args.gtv} is a label map, whose labels "
                             "have none: the map would be ignored",
                             "choose the GTV's labels with --gtv FILE#N (FILE#N,M: labels N and M), and leave out "
                             "--structure-map")


def read_gtvs(value, ct, rtstruct=None, allow_gaps: bool = False, mapping=None, skip=()) -> dict:
    """The GTVs of ``--gtv`` on the CT's grid, {name: mask}: with ``rtstruct`` (``--rtstruct``'s file) each RTSTRUCT
    structure the structure / role ``value`` is made of, under its name; a DICOM SEG's GTV segments each under its
    label, ``FILE#N,M`` each label (``FILE#N``), else the one mask named as given.  ``mapping``: the
    ``--structure-map`` (a file or {name: role}): roles of structure / segment names whose name gives none, names
    hidden (null).  ``skip``: names already read (another ``--structure``), not read again."""
    import re

    from lungai.dicom.masks import as_typed, mask_input, split_selector, typed_file
    from lungai.dicom.seg import seg_segment_labels

    from lungai.lungs.check import GTV_EMPTY_FIX, check_not_empty

    parts: dict = {}
    used: list = []
    mask = mask_input(value, ct, rtstruct=rtstruct, mapping=mapping, what="gtv", allow_gaps=allow_gaps, parts=parts,
                      used=used)
    path, part = split_selector(value)
    if rtstruct is not None and used:
        from lungai.dicom.rtstruct import read_rtstruct

        names = [n for n in used if f"{n!r}" not in skip]     # each GTV once (--structure GTV-1 --structure role:gtv)
        if names == used and len(used) == 1:
            each = {used[0]: mask}
        else:
            each = read_rtstruct(rtstruct, ct, names=names, allow_gaps=allow_gaps, mapping=mapping) if names else {}
        gtvs = {f"{name!r}": m for name, m in each.items()}
    elif parts:
        check_seg_gtvs(value, list(parts), mapping)
        gtvs = {f"{label!r}": m for label, m in parts.items()}
    elif part and re.fullmatch(r"\s*\d+(\s*,\s*\d+)+\s*", part) and seg_segment_labels(path) is None:
        file = typed_file(value)
        gtvs = {as_typed(f"{file}#{n.strip()}"): mask_input(f"{path}#{n.strip()}", ct, what="gtv")
                for n in part.split(",")}
    else:
        gtvs = {as_typed(value): mask}
    for name, gtv in gtvs.items():      # an empty one is no GTV subtracted: refused before the segmentation
        check_not_empty(gtv, "GTV", name, GTV_EMPTY_FIX)
    return gtvs


def check_seg_gtvs(value, labels, mapping=None) -> None:
    """A DICOM SEG's segments ``labels`` taken as GTVs (``--gtv SEG#LABEL``) that are lungs - by their label, the
    ``--structure-map``'s line or their terminology code (:func:`lungai.dicom.seg.with_code_roles`) - refused before the
    segmentation, as a lung structure of an RTSTRUCT is with the arguments (:func:`lungai.dicom.masks.check_gtv_spec`).
    QA lungs71: ``--gtv lungs.seg.dcm`` (lungai lungs' own SEG) was told "e.g. 'lungs.seg.dcm#Right lung'", and that
    was subtracted with a note only: LUNG1-003's right lung 2149 -> 0 ml."""
    from lungai.dicom.masks import as_typed, command_word, split_selector, typed_file
    from lungai.dicom.roles import GTV_ROLES, LUNG_ROLES, structure_role
    from lungai.dicom.seg import seg_segment_labels, with_code_roles
    from lungai.errors import InputError

    path, typed = split_selector(value)[0], typed_file(value)
    every = seg_segment_labels(path) or list(labels)
    roles = with_code_roles(path, every, mapping)
    lungs = [(label, structure_role(label, roles)) for label in labels
             if structure_role(label, roles) in LUNG_ROLES]
    if not lungs:
        return
    (label, role), gtvs = lungs[0], [n for n in every if structure_role(n, roles) in GTV_ROLES]
    take = (f"--gtv {command_word(typed)} (its GTV segments: {', '.join(gtvs)})" if gtvs else
            "the mask that holds it (a label map's GTV label, a DICOM SEG's GTV segment, or --rtstruct's GTV)")
    raise InputError(f"segment {label!r} of --gtv {as_typed(typed)} is a lung (role {role}), not a GTV: subtracted "
                     "from the lungs, it would take the lung out of the lung masks",
                     f"give the GTV: {take}; a segment that is a GTV although its label or code says lung: map its "
                     f"label with --structure-map ('{label}: gtv')")


def lung_volumes(labels) -> dict:
    """{"right_lung", "left_lung"} ml of a lung label map (1 right, 2 left), as segment_lungs gives them (its
    float32 spacing: the same figures for a DICOM CT and its NIfTI)."""
    import SimpleITK as sitk

    from lungai.io.geometry import float32_spacing
    from lungai.io.validate import region_sizes
    from lungai.volume import voxel_ml

    counts = region_sizes(sitk.GetArrayViewFromImage(labels), 2)
    ml = voxel_ml(float32_spacing(labels.GetSpacing()))
    return {"right_lung": round(counts[1] * ml, 1), "left_lung": round(counts[2] * ml, 1)}
