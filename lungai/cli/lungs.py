"""``lungai lungs``: automatic right/left lung masks."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("lungs", help="segment the lungs (1 = right, 2 = left) without a trained model",
                       description="Threshold-based lung segmentation: removes outside air and the trachea/main "
                                   "bronchi, fills vessels. Without a GTV, tumours inside the lung are kept but large "
                                   "tumours at the hilum, mediastinum or chest wall mostly are not (real CTs: 13.5 % "
                                   "of a 360 ml GTV, 0-34 % of 35-48 ml ones kept; docs/lungs.md).")
    p.add_argument("ct", help="CT: DICOM folder, .nii/.nii.gz, .nrrd or .mha")
    p.add_argument("-o", "--output", required=True, help="output label image (.nii.gz, .nrrd, .mha)")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when the DICOM folder holds several series")
    p.add_argument("--no-dicom", action="store_true",
                   help="for a DICOM CT, do not write <output>.seg.dcm (DICOM SEG) and <output>.rtstruct.dcm beside it")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lungai.io import read_ct, write_image
    from lungai.lungs import LUNG_STEPS
    from lungai.progress import task

    from lungai.dicom.export import EXPORT_STEPS
    from lungai.dicom.reference import MULTIFRAME_NO_DICOM, multiframe_ct, one_series_scan, reads_dicom_ct
    from lungai.io.outputs import prepare_output_file, recorded_output_files
    from lungai.io.write import check_image_name, output_stem

    from lungai.cli import check_input_exists

    check_image_name(args.output)       # the arguments first (as segment), before reading and segmenting
    check_input_exists(args.ct, series=args.series)     # before the progress bar and any work
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
    prepare_output_file(args.output, inputs=[args.ct], owner="lungs", sidecars=sidecars)   # before any work
    # each file recorded as soon as the run ends (a failure included): a re-run replaces them
    # the segmentation's own steps (air, airways, right / left split, each lung filled) move the bar too, and each
    # DICOM file written (EXPORT_STEPS: the SEG, the RTSTRUCT)
    with task("lungs", LUNG_STEPS + 2 + (EXPORT_STEPS if dicom else 0)) as bar, recorded_output_files([args.output, *sidecars], "lungs"):
        ct = read_ct(args.ct, series_uid=args.series)
        reference = None
        if dicom:       # the CT series' headers checked against the image before any work (no half-written results)
            from lungai.dicom.export import reference_for

            reference = reference_for(args.ct, ct, args.series)
        bar.update(1, "read")
        # the segmentation's modules (scipy.ndimage / spatial, skimage: 0.4-2 s of a shared machine) after the bar
        bar.update(0, "loading the lung segmentation")     # its modules: up to 1.5 s said nothing (QA lungsgap66)
        from lungai.lungs import segment_lungs

        result = segment_lungs(ct, progress=bar, checked=True)     # read_ct checked its HU (check_ct)
        bar.update(0, f"writing {Path(args.output).name}")   # a message-only update (about 1 s on LUNG1-002)
        write_image(result.labels, args.output, protect=[args.ct])
        bar.update(1, "written")
        written = []
        if dicom:
            from lungai.dicom.export import export_lungs

            written = export_lungs(reference, result.labels, stem, progress=bar)
    v = result.volumes_ml
    print(f"right lung {v['right_lung']:.0f} ml, left lung {v['left_lung']:.0f} ml -> {args.output}")
    for path in written:
        print(f"DICOM: {path}")
    if skipped:
        print(f"note: {MULTIFRAME_NO_DICOM.format(ct=args.ct)}, so {stem.name}.seg.dcm / .rtstruct.dcm are not "
              f"written; the label map {args.output} is")
    for note in result.notes:
        print(f"{'warning' if note in result.warnings else 'note'}: {note}")
    return 0
