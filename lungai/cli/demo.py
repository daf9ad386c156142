"""``lungai demo``: the whole pipeline on the built-in sample (or your CT) -> report.html + scene.mrb."""

from __future__ import annotations


def register(sub) -> None:
    from lungai.cli import ONE_TUMOUR, ROI_HELP, StoreOnce
    from lungai.seg.resources import MODEL_HELP

    p = sub.add_parser(
        "demo", help="run everything on the built-in sample (or --ct) and write report.html + scene.mrb",
        description="Sample phantom (or the given CT) -> lung masks -> tumour segmentation with ensemble "
                    "uncertainty -> radiomics of tumour and lungs -> dose features -> radiation-pneumonitis risk "
                    "-> stage probabilities -> report.html and scene.mrb. Offline; under a minute on 2 idle CPU "
                    "cores. On the built-in sample the dose is synthetic and the RP and stage models are "
                    "illustrative (trained on synthetic cohorts), labelled as such. On your CT (--ct) the dose, "
                    "RP risk and stage are computed only from what you give (--dose, --clinical, --rp-model, "
                    "--stage-model); without them the outputs say what is missing.")
    p.add_argument("-o", "--output", default="lungai-demo", help="output folder (default: ./lungai-demo)")
    p.add_argument("--ct", default=None, help="your CT instead of the sample (DICOM folder, NIfTI, NRRD, MHA)")
    p.add_argument("--series", default=None, help="SeriesInstanceUID when the --ct DICOM folder holds several series")
    p.add_argument("--model", default=None, help="segmentation " + MODEL_HELP)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--seed-point", default=None, action=StoreOnce, once_fix=ONE_TUMOUR,
                       help="x,y,z (LPS mm) on the tumour of --ct, as a click in Slicer, or a Slicer point list file "
                            "(.mrk.json / .fcsv) with one placed point; without it (or --roi) the "
                            "tumour is searched in the whole lungs (on the sample the tumour's position is used)")
    where.add_argument("--roi", default=None, action=StoreOnce, once_fix=ONE_TUMOUR,
                       help=ROI_HELP + "; the tumour is segmented in this box (as lungai segment --roi)")
    g = p.add_argument_group("patient inputs for dose, RP risk and stage (needed with --ct)")
    g.add_argument("--clinical", default=None, metavar="CSV",
                   help="the patient's clinical values: a CSV row with the columns the RP / stage models were "
                        "trained with (a cohort table needs --patient-id)")
    g.add_argument("--patient-id", default=None, help="the patient's ID in the --clinical CSV (its ID column)")
    g.add_argument("--dose", default=None, help="the patient's RT dose: RTDOSE DICOM file or folder, or a dose "
                                                "image in Gy (NIfTI/NRRD/MHA) covering the lungs")
    g.add_argument("--dose-unit", choices=("Gy", "cGy"), default="Gy",
                   help="unit of a NIfTI/NRRD/MHA --dose (default Gy; an RTDOSE says its own in DoseUnits)")
    g.add_argument("--max-dose-gy", type=float, default=None, metavar="GY",
                   help="largest dose (Gy) --dose may hold, an RTDOSE or a NIfTI/NRRD/MHA (default 150; raise it "
                        "for an EQD2 / BED map or summed courses)")
    from lungai.dicom.masks import add_rtstruct_options

    add_rtstruct_options(g, "with --rtstruct: the lung structure of the dose metrics (NAME or role:ROLE; default the "
                            "lungs by role, as lungai dose-features; given several times, their union); the GTV is the "
                            "RTSTRUCT's GTV by role",
                         rtstruct_use="the plan's lungs and GTV (by role) for the dose metrics only - it needs "
                                      "--dose; the tumour radiomics, RP risk and stage use the automatic tumour, "
                                      "compared with the plan's GTV (summary.json rtstruct_gtv)")
    g.add_argument("--rp-model", default=None, metavar="DIR", help="RP model folder from `lungai rp train`")
    g.add_argument("--stage-model", default=None, metavar="DIR", help="stage model folder from `lungai stage train`")
    p.add_argument("--small", action="store_true", help="a smaller, coarser sample (quick check; tests)")
    p.add_argument("--params", default="default",
                   help="radiomics preset: default (pyradiomics settings) or ibsi-a .. ibsi-e (IBSI-1 pipeline, "
                        "values as lungai ibsi-check), or a parameter YAML file")
    from lungai.cli import accept_negative_coordinates

    accept_negative_coordinates(p)          # "--seed-point -47.9,-2.9,-125.9" (a right-lung tumour: x < 0)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lungai.paths import check_input_paths, check_structure_values

    # before the radiomics modules are imported and the CT, the models and the dose read (QA inputs70: a folder given as
    # the --structure was looked for as a structure of that name; a mistyped --structure-map said after the CT's read)
    check_input_paths([("--structure-map", args.structure_map)])
    if args.rtstruct:
        check_structure_values([("--structure", args.structure)])
    from lungai.cli.seg import scene_coordinates
    from lungai.demo import run_demo
    from lungai.radiomics import load_params

    load_params(args.params, image_types=["Original"])  # a wrong --params fails now, not after the segmentation

    from lungai.errors import InputError

    if args.series and not args.ct:
        raise InputError("--series chooses a series of --ct", "give --ct DICOM_FOLDER, or leave --series out")
    seed = None
    if args.seed_point:                 # as lungai segment --seed-point: 3 finite numbers or a point list file
        from lungai.cli.seg import seed_point_value

        seed = seed_point_value(args.seed_point)
    roi = None
    if args.roi:                        # as lungai segment --roi: 6 numbers or an ROI file, a box with extent
        from lungai.cli.seg import roi_value

        roi = roi_value(args.roi)
    if args.structure and not args.rtstruct:
        raise InputError("--structure names a structure of --rtstruct", "give --rtstruct FILE|FOLDER, or leave --structure out")
    summary = run_demo(args.output, ct_path=args.ct, small=args.small, model_dir=args.model, seed_lps=seed, roi_lps=roi,
                       radiomics_params=args.params, clinical=args.clinical, dose=args.dose, dose_unit=args.dose_unit,
                       rp_model=args.rp_model,
                       stage_model=args.stage_model, patient_id=args.patient_id, series_uid=args.series,
                       rtstruct=args.rtstruct, rtstruct_lungs=args.structure,
                       structure_map=args.structure_map, allow_gaps=args.allow_gaps, max_dose_gy=args.max_dose_gy,
                       started=getattr(args, "started", None),     # "total" counts from the command's start
                       scene_coordinates=scene_coordinates(args))   # a markups file's point / box: no RAS question
    for line in result_lines(summary):
        print(line)
    out = Path(args.output)
    print(f"report: {out / 'report.html'}\nscene:  {out / 'scene.mrb'} (open in 3D Slicer)\n"
          f"total {summary['timings']['total_s']:.0f} s")
    return 0


def result_lines(summary: dict) -> list:
    """The console summary: every number says whether it is illustrative; missing results say what to give."""
    from lungai.seg.config import result_value

    seg, rp, st, dose = summary["segmentation"], summary["rp"], summary["stage"], summary["dose"]
    sample = (summary.get("inputs") or {}).get("ct", "built-in sample") == "built-in sample"
    tag = {"illustrative": " - ILLUSTRATIVE (synthetic-cohort model, " + ("built-in sample inputs; " if sample else
                                                                          "your inputs; ") + "not a patient result)",
           "synthetic": " - ILLUSTRATIVE (synthetic dose)", "computed": ""}
    reasons = "; ".join(seg.get("review_reasons") or [])
    from lungai.scene.results import review_digits       # the decimals that show it apart from the threshold

    lines = [f"tumour: {result_value(seg, 'tumour_volume_ml'):.1f} ml, "
             f"confidence {seg['confidence']:.{review_digits(seg)}f}"
             f"{' - NEEDS REVIEW' if seg['needs_review'] else ''}{f' ({reasons})' if seg['needs_review'] and reasons else ''}"]
    if seg.get("confidence_caveat"):                                  # as `lungai segment` prints it
        lines.append(f"confidence caveat: {seg['confidence_caveat']}")
    if seg.get("needs_review"):                                       # as `lungai segment` prints them
        lines += [f"to do ({reason}): {action}" for reason, action in zip(seg.get("review_reasons") or [],
                                                                         seg.get("review_actions") or [])]
    lines += [f"note: {note}" for note in seg.get("notes") or []]     # as `lungai segment` prints them
    lungs = summary.get("lungs", {})
    from lungai.report.html import failed_segment_texts, lung_notes, lung_warnings, radiomics_notes

    lines += [f"warning: {note}" for note in lung_warnings(lungs)]   # as `lungai lungs` prints them
    lines += [f"note: {note}" for note in lung_notes(lungs)]

    lines += [f"warning: radiomics not computed for {text}" for text in failed_segment_texts(summary.get("radiomics") or {})]
    lines += [f"note: radiomics {note}" for note in radiomics_notes(summary.get("radiomics") or {})]
    if summary.get("truth_dice") is not None:
        lines.append(f"Dice against the phantom's planted tumour: {summary['truth_dice']:.2f}")
    lines.append(f"mean lung dose {dose['dose_mld_gy']:.1f} Gy{tag[summary['dose_status']]}" if dose is not None
                 else f"dose: not computed - {summary['dose_source']}")
    lines += [f"note: {summary['dose_note']}"] if summary.get("dose_note") else []
    # what the risk is of (the model's endpoint: grade >= 2 RP, or a user's model's outcome column; QA demo62: "RP risk
    # 25% (16%-41%)" said neither) and what its interval is, as the report's cards say them
    endpoint = f" ({rp['endpoint_short']})" if rp.get("endpoint_short") else ""
    lines.append(f"RP risk{endpoint} {rp['risk']:.0%} (uncertainty interval {rp['risk_low']:.0%}-{rp['risk_high']:.0%})"
                 f"{tag[rp['status']]}" if "risk" in rp else f"RP risk {rp['message']}")
    if "risk" in rp and rp.get("endpoint"):
        lines.append(f"  RP endpoint: {rp['endpoint']}")
    sources = rp.get("sources") or {}
    if "risk" in rp and rp.get("threshold") is not None:     # as the report's risk group card says it
        from lungai.report.html import risk_group_text

        lines.append(f"  RP {risk_group_text(rp)}")
    if "risk" in rp and (sources.get("clinical_row") or sources.get("replaced")):
        # a --clinical cohort row's rad_* / dose_* values: which the risk took from it, which this run replaced
        lines.append(f"  RP inputs: {rp['inputs']}")
    if "risk" in rp:     # as `lungai rp predict` prints them with the risk
        for key, what in (("out_of_range", "outside the training range"), ("imputed", "imputed (missing)")):
            if rp.get(key):
                lines.append(f"  RP {what} ({len(rp[key])}): {'; '.join(rp[key])}")
        # the row's warnings and those of the whole table (lungs cut by the scan, no dose, the RTDOSE's notes: with
        # their fix), one a line: a note holds "; " itself
        lines += [f"  RP warning: {w}" for w in (rp.get("warnings") or []) + (rp.get("table_warnings") or [])]
        card = rp.get("card") or {}
        if card.get("validation"):
            lines.append(f"  RP model card: {card['validation']}; {card.get('intended_use', '')}")
        lines += [f"  RP model card warning: {w}" for w in card.get("warnings") or []]   # as the report's banners
    from lungai.report.html import uses_automatic_tumour

    flagged = [what for what, ok in (("the dose metrics", dose is not None and uses_automatic_tumour(summary, "dose")),
                                     ("the RP risk", "risk" in rp and uses_automatic_tumour(summary, "rp"))) if ok]
    if seg["needs_review"] and flagged:
        lines.append(f"note: {' and '.join(flagged)} {'use' if len(flagged) > 1 else 'uses'} the automatic tumour, "
                     "which is flagged for review")
    from lungai.report.html import predicted_stage_text

    lines.append(f"stage: {predicted_stage_text(st)}{tag[st['status']]}" if "predicted" in st
                 else f"stage {st['message']}")
    lines += [f"  stage model card warning: {w}" for w in (st.get("card") or {}).get("warnings", [])]
    # the inputs it does not use: a CT of a model trained without, RNA-seq (the demo takes none), as the report says
    lines += [f"  stage note: {n}" for n in st.get("inputs_not_used") or []]
    # the model's training patients per class and its rare classes, as the report and lungai stage predict say them
    lines += [f"  stage model: {line}" for line in (st.get("card") or {}).get("class_balance", [])]
    return lines
