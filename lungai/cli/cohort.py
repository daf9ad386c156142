"""``lungai cohort``: DICOM RT exports -> lungs, tumour, radiomics, dose -> the RP training table, on Dask."""

from __future__ import annotations


def register(sub) -> None:
    from lungai.cli.radiomics import PARAMS_HELP, worker_count
    from lungai.seg.resources import MODEL_HELP

    p = sub.add_parser("cohort", help="DICOM RT exports (CT + RTSTRUCT + RTDOSE) -> RP training table, on Dask",
                       description="Finds each patient's CT, RTSTRUCT and RTDOSE by UIDs and frame of reference "
                                   "(any folder layout), reports what each has or lacks, and per patient takes the "
                                   "RTSTRUCT lungs (else automatic RT-definition lungs) and GTV (else the automatic "
                                   "segmentation with its confidence), computes radiomics and, with an RTDOSE, dose "
                                   "features (lungs minus GTV). Resumable: finished patients are skipped on a re-run; "
                                   "a failing patient is recorded in OUT/errors.csv and the others go on. Writes "
                                   "OUT/patients.csv (inventory), OUT/patients/<case>/ and OUT/rp_table.csv "
                                   "(the input of 'lungai rp train', with a provenance column).")
    p.add_argument("dicom_root", help="folder of the DICOM RT export (one or many patients, any layout)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--clinical", default=None,
                   help="clinical CSV, one row per patient: patient_id (DICOM PatientID), clin_* columns, outcome")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=worker_count, default=2,
                   help="local Dask worker processes when no --scheduler is given (default 2; 0 = plain loop)")
    p.add_argument("--structure-map", default=None, metavar="FILE",
                   help="YAML/JSON 'structure name: role' lines overriding the built-in TG-263 name matching")
    p.add_argument("--model", default=None, help="for patients without a GTV: segmentation " + MODEL_HELP)
    p.add_argument("--params", default="default", help=PARAMS_HELP + " (default: default)")
    p.add_argument("--max-dose-gy", type=float, default=None, metavar="GY",
                   help="largest plausible RTDOSE value in Gy (default 150; an RTDOSE above it, or one in CGY whose "
                        "maximum is below 1 Gy, fails the patient as a likely wrong DoseUnits tag): raise it for "
                        "EQD2 / BED maps or summed courses")
    p.add_argument("--allow-gaps", action="store_true",
                   help="accept RTSTRUCT lung / GTV structures with slices left out between their first and last slice "
                        "(separate parts: a GTV of two lesions, nodes at several levels); by default such a structure "
                        "fails the patient")
    p.set_defaults(func=run)


def run(args) -> int:
    from lungai.dicom.cohort import run_cohort
    from lungai.radiomics import load_params
    from lungai.radiomics.cluster import check_scheduler_address

    if args.scheduler:
        check_scheduler_address(args.scheduler)     # a bad --scheduler before any work (run_cohort connects later)
    summary = run_cohort(args.dicom_root, args.output, load_params(args.params), clinical=args.clinical,
                         workers=args.workers, scheduler=args.scheduler, mapping=args.structure_map,
                         model_dir=args.model, max_gy=args.max_dose_gy,
                         allow_gaps=args.allow_gaps)
    print(summary.text())
    return 1 if summary.failed else 0
