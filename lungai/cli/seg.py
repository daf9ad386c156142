"""``lungai train-seg``, ``lungai segment``, ``lungai eval-seg``: tumour segmentation with uncertainty.

Coordinates (``--seed-point``, ``--roi``) are physical millimetres in LPS, as ITK / SimpleITK
report them (Slicer displays RAS: negate x and y).
"""

from __future__ import annotations

import contextlib
import math
import re
import sys

from lungai.cli.radiomics import seed_number


BRACKETS = "[]()"


def _bracketed(text: str) -> bool:
    """Whether an option's numbers are given in brackets, as Python prints a list / tuple / numpy array: ``[-12.3,
    45.0, -130.2]``, ``(-12.3, 45.0, -130.2)``, ``[ -12.3   45.  -130.2]`` (what users paste from a Python console)."""
    return text.strip()[:1] in ("[", "(")


def _floats(text: str, n: int, what: str, example: str = ""):
    """``n`` numbers of option ``what``, comma-separated (``-12.5,40,-150``), or in brackets as Python prints them
    (:func:`_bracketed`: the brackets dropped, the numbers separated by commas, or by spaces as numpy prints them);
    ``example``: a valid value of that option for the hint (default: a seed point / ROI in mm).  QA: ``--seed-point
    "[-12.3, 45.0, -130.2]"`` (a point pasted from a Python console) was refused as "not 3 comma-separated numbers".
    A space inside a number's place is refused (before, spaces were dropped: ``1 2,3`` was read as 12,3)."""
    from lungai.errors import InputError

    body = text.strip()
    if _bracketed(body):
        body = body.translate(str.maketrans("", "", BRACKETS)).strip()
    try:            # commas; a numpy array's numbers (in brackets) by spaces only; a space inside a number refused
        vals = [float(v.strip()) for v in (body.split(",") if "," in body or not _bracketed(text) else body.split())]
    except ValueError:
        vals = []
    example = example or ",".join(["-12.5", "40", "-150", "20", "80", "-110"][:n])
    if len(vals) != n:
        raise InputError(f"{what} {text!r} is not {n} comma-separated numbers",
                         f"e.g. {what} {example} (or in brackets, as Python prints them: "
                         f"\"[{example.replace(',', ', ')}]\")")
    if not all(math.isfinite(v) for v in vals):      # nan / inf: refused here, before numpy warns on them
        raise InputError(f"{what} {text!r}: every number must be finite (not nan or inf)", f"e.g. {what} {example}")
    return vals


def _ras_reading_note(text: str, what: str, vals: list) -> None:
    """An :class:`InputNote` for numbers given in brackets (:func:`_bracketed`): they are read as LPS mm, as every
    lungai coordinate; a position copied from Slicer's Python console is RAS (``GetNthControlPointPosition``,
    ``arrayFromMarkupsControlPoints``, an ROI's ``GetXYZ``), so the same numbers read as RAS are named."""
    import warnings

    from lungai.errors import InputNote
    from lungai.io.markups import ras_reading

    def shown(v):
        return ",".join(f"{x:g}" for x in v)
    ras = ras_reading(vals)
    warnings.warn(f"{what} {text!r} read as LPS millimetres: {what}={shown(vals)} (lungai's coordinates, as "
                  f"ITK / SimpleITK give them); if the numbers were copied from Slicer (its Python console or Markups "
                  f"panel show RAS), give {what}={shown(ras)} instead (x and y negated)", InputNote, stacklevel=3)


def seed_point_value(text: str) -> list:
    """--seed-point (segment, demo): x,y,z in LPS mm, or a Slicer point list file (.mrk.json / .fcsv,
    :func:`lungai.io.markups.read_point_list`: its coordinate system read from the file, RAS negated in x and y)
    holding one placed point; a list of several is refused naming each point's LPS numbers (one tumour per run)."""
    from lungai.cli import ONE_TUMOUR
    from lungai.errors import InputError
    from lungai.io.markups import is_markups_path, read_point_list

    if not is_markups_path(text):
        vals = _floats(text, 3, "--seed-point")
        if _bracketed(text):
            _ras_reading_note(text, "--seed-point", vals)
        return vals
    points, _ = read_point_list(text)
    if not points:
        raise InputError(f"--seed-point {text}: the point list holds no placed point",
                         "place a point on the tumour in Slicer and save the point list again")
    if len(points) > 1:
        listed = "; ".join(f"'{label}': --seed-point={','.join(f'{c:g}' for c in lps)}" for label, lps in points)
        raise InputError(f"--seed-point {text}: the point list holds {len(points)} placed points ({listed})",
                         f"{ONE_TUMOUR}: give one point's numbers (LPS mm, as listed) or a point list with one point")
    lps = points[0][1]
    if not all(math.isfinite(v) for v in lps):
        raise InputError(f"--seed-point {text}: the point's position is not finite ({lps})",
                         "place the point on the tumour in Slicer and save the point list again")
    return lps


def scene_coordinates(args) -> bool:
    """Whether ``segment``'s (``demo``'s) --seed-point / --roi numbers were converted from a Slicer scene's positions
    to LPS: --scene-coordinates (the Lung AI Segmentation panel), or a Slicer markups file (.mrk.json / .fcsv) that
    lungai converts itself (:func:`seed_point_value`, :func:`roi_value`) - never Slicer's RAS numbers nor voxel indices, so
    no note asks either (QA notesfollow72: a point list's seed was asked "were Slicer's RAS coordinates given?")."""
    from lungai.io.markups import is_markups_path

    given = args.seed_point or args.roi
    return bool(getattr(args, "scene_coordinates", False) or (given and is_markups_path(given)))   # demo: no option


def roi_value(text: str) -> list:
    """--roi (segment, demo): x0,y0,z0,x1,y1,z1 in LPS mm, or a Slicer markups ROI file (.mrk.json of type ROI,
    :func:`lungai.io.markups.read_roi`: its coordinate system read from the file, its axis-aligned bounding box in LPS
    with a warning when the box is rotated); a box with no extent refused
    (:func:`lungai.seg.preprocess.check_roi_extent`) - all before any work."""
    import warnings

    from lungai.errors import InputNote
    from lungai.io.markups import is_markups_path, read_roi
    from lungai.seg.preprocess import check_roi_extent

    if not is_markups_path(text):
        vals = check_roi_extent(_floats(text, 6, "--roi"))
        if _bracketed(text):
            _ras_reading_note(text, "--roi", vals)
        return vals
    corners, note = read_roi(text)
    if note:
        warnings.warn(note, InputNote, stacklevel=2)
    return check_roi_extent(corners)


def _spacing(text: str) -> tuple:
    """--spacing: three positive millimetre values."""
    from lungai.errors import InputError

    vals = _floats(text, 3, "--spacing", "1,1,2")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise InputError(f"--spacing {text!r}: every voxel spacing must be positive (millimetres)",
                         "e.g. --spacing 1,1,2")
    return tuple(vals)


PATCH_EXAMPLES = {"--patch": "48,48,16", "--infer-patch": "96,96,48"}


def _patch(text: str, what: str) -> tuple:
    """--patch / --infer-patch: three positive whole numbers of voxels (48.7 is refused, not truncated)."""
    from lungai.errors import InputError

    vals = _floats(text, 3, what, PATCH_EXAMPLES.get(what, "96,96,48"))
    if not all(math.isfinite(v) and v == int(v) and v >= 1 for v in vals):
        raise InputError(f"{what} {text!r}: a patch size is three positive whole numbers of voxels",
                         f"e.g. {what} {PATCH_EXAMPLES.get(what, '96,96,48')}")
    return tuple(int(v) for v in vals)


def ct_patient_name(ct, path, series_uid=None) -> str:
    """The patient of a CT read: a DICOM CT's PatientID (kept on the image read), else the input's case name - a
    file's name without its image suffix (``LUNG1-002_ct``; :func:`lungai.io.read.input_case_id`)."""
    from lungai.io.read import PATIENT_ID_TAG, input_case_id

    pid = ct.GetMetaData(PATIENT_ID_TAG).strip() if ct.HasMetaDataKey(PATIENT_ID_TAG) else ""
    return pid or input_case_id(path, series_uid)


def register(sub) -> None:
    from lungai.cli import ONE_TUMOUR, ROI_HELP, StoreOnce
    from lungai.seg.config import MC_PASSES
    from lungai.seg.resources import MODEL_HELP

    t = sub.add_parser("train-seg", help="train a tumour-segmentation ensemble on your images and masks",
                       description="Train K members (U-Net, Attention U-Net or UNETR) with Dice+CE, early stopping "
                                   "on validation Dice and a patient-level split; calibrate the confidence score.")
    t.add_argument("--images", required=True, help="folder of CTs (<patient>_<anything>.nii.gz ...)")
    t.add_argument("--masks", required=True, help="folder of tumour masks with the same file names: nonzero = "
                                                  "tumour, or with --label N the voxels of label N")
    t.add_argument("--label", type=int, default=None, metavar="N",
                   help="the tumour's label in every mask (e.g. 1 in label maps with 1 = GTV, 3 / 4 = lungs; a mask "
                        "without it is a tumour-free case); without it a mask with several labels is refused")
    t.add_argument("-o", "--output", required=True, help="model folder to write (model.json + member_*.safetensors)")
    t.add_argument("--arch", default="unet", choices=["unet", "attention_unet", "unetr", "dynunet"],
                   help="network (dynunet: nnU-Net's, MONAI DynUNet; needed for --deep-supervision)")
    t.add_argument("--members", type=int, default=3, help="ensemble size (default 3)")
    t.add_argument("--epochs", type=int, default=20,
                   help="training epochs per member (the maximum with --patience; default 20)")
    t.add_argument("--iters", type=int, default=50, help="iterations (batches) per epoch")
    t.add_argument("--batch", type=int, default=8, help="patches per batch (default 8)")
    t.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 2e-3; 5e-4 for attention_unet, which collapses at 2e-3)")
    t.add_argument("--patience", type=int, default=5, help="early stopping: epochs without better val Dice")
    t.add_argument("--patch", default="48,48,16", help="training patch x,y,z in voxels (default 48,48,16)")
    t.add_argument("--spacing", default="1,1,2", help="model spacing x,y,z in mm (default 1,1,2)")
    t.add_argument("--channels", default="8,16,32,64", help="channels per level")
    t.add_argument("--dropout", type=float, default=0.1,
                   help="dropout rate of the network, also what MC dropout samples (default 0.1)")
    t.add_argument("--infer-patch", default="96,96,32", help="sliding-window size x,y,z at inference (field of view)")
    t.add_argument("--lr-schedule", default="constant", choices=["constant", "poly"],
                   help="poly: nnU-Net's lr * (1 - step/steps)^0.9 over the whole run (default constant)")
    t.add_argument("--deep-supervision", action="store_true", help="loss on the lower decoder levels too (--arch dynunet)")
    t.add_argument("--augment", default="basic", choices=["basic", "strong"],
                   help="strong: + rotation / scaling (affine), gamma, blur (nnU-Net's set; default basic)")
    t.add_argument("--fg-fraction", type=float, default=None,
                   help="share of patches centred on the tumour (nnU-Net: 0.33; default 2/3 crops, 1/3 whole CTs)")
    t.add_argument("--tta", action="store_true", help="mirrored test-time augmentation (8 flips) for this model, "
                                                      "validation and calibration included")
    t.add_argument("--val-fraction", type=float, default=0.2, help="fraction of patients for validation (at least one patient; 0: one)")
    t.add_argument("--test-fraction", type=float, default=0.0,
                   help="fraction of patients held out as a TEST split: never trained, validated or calibrated on; "
                        "only `lungai eval-seg --model M --split test` reads it (default 0)")
    t.add_argument("--patients", default=None, help="CSV with columns case,patient (else patient = name before '_')")
    t.add_argument("--synthetic", type=int, default=0, help="add N synthetic phantom crops (large tumours, "
                                                            "atelectasis, effusion), deterministic from --seed")
    t.add_argument("--synthetic-chests", type=int, default=0,
                   help="add N whole synthetic chests: patches from the whole lung region (vessels, hila, chest "
                        "wall) teach automatic mode what is not a tumour; deterministic from --seed")
    t.add_argument("--implant", type=int, default=0,
                   help="add N synthetic tumours (10-120 mm, chest-wall / mediastinal / diaphragm contact, necrosis, "
                        "cavitation, ground glass; atelectasis and effusion as hard negatives) implanted into the real "
                        "CTs of --implant-into; deterministic from --seed")
    t.add_argument("--implant-into", default=None,
                   help="a real chest CT, or a CSV with columns image[,mask,label,patient], to implant into "
                        "(never a CT you test on)")
    t.add_argument("--max-cases", type=int, default=0, help="use only the first N image pairs (quick runs)")
    t.add_argument("--mc-passes", type=int, default=MC_PASSES, help="MC-dropout passes used for calibration")
    t.add_argument("--seed", type=seed_number, default=0,
                   help="random seed of the split, the members' training and the synthetic cases (0 to "
                        "4294967295; default 0)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in the same folder")
    t.add_argument("--member", type=int, default=None, metavar="K",
                   help="train only ensemble member K (0-based) into OUT/checkpoints and stop: run one process per "
                        "member in parallel, then the same command without --member, with --resume, saves the "
                        "model and calibrates it")
    t.add_argument("--device", default="cpu",
                   help="where the members train: cpu (default), cuda, cuda:N or auto (cuda when there is one); "
                        "calibration and the saved model are on the CPU")
    t.add_argument("--workers", type=int, default=0,
                   help="processes that draw and augment the training patches (default 0: this process; an "
                        "accelerator needs several). The batches depend on the seed and this number")
    t.add_argument("--save-arrays", default=None, metavar="FILE.npz",
                   help="only write the split's training arrays to FILE.npz and stop (to train on another machine)")
    t.add_argument("--arrays-max-whole", type=int, default=None, metavar="N",
                   help="with --save-arrays: keep at most N whole CTs (real ones first, training split only), the "
                        "largest arrays, to fit a transfer limit; the left-out cases are recorded")
    t.add_argument("--from-arrays", default=None, metavar="FILE.npz",
                   help="train the members' checkpoints from a --save-arrays file (no source data needed) and stop; "
                        "then the same command without it, with --resume, where the data is, saves and calibrates")
    t.set_defaults(func=run_train, cancel_note=train_cancel_note)

    s = sub.add_parser("segment", help="segment the tumour with voxel uncertainty and a confidence score",
                       description="Writes tumor.nii.gz, probability.nii.gz, uncertainty.nii.gz (predictive "
                                   "entropy, bits), mutual_information.nii.gz (ensemble / MC) and result.json on "
                                   "the input grid. Coordinates are LPS mm (Slicer RAS: negate x and y).")
    s.add_argument("ct", help="CT: DICOM folder, .nii/.nii.gz, .nrrd or .mha")
    s.add_argument("-o", "--output", required=True, help="output folder")
    s.add_argument("--model", default=None, help=MODEL_HELP)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--seed-point", default=None, action=StoreOnce, once_fix=ONE_TUMOUR,
                   help="x,y,z in LPS mm on the tumour, or a Slicer point list file (.mrk.json / .fcsv, its "
                        "coordinate system read from the file) with one placed point: segments a cube around it")
    g.add_argument("--roi", default=None, action=StoreOnce, once_fix=ONE_TUMOUR, help=ROI_HELP)
    g.add_argument("--whole", action="store_true", help="use the whole image as ROI (automatic for small crops)")
    s.add_argument("--method", default=None, choices=["ensemble", "mc-dropout"],
                   help="uncertainty method (default: ensemble; MC dropout for a 1-member model)")
    s.add_argument("--mc-passes", type=int, default=None,
                   help="MC-dropout passes (used when MC dropout runs; default: the passes the model's MC-dropout "
                        f"calibration was fitted with, {MC_PASSES} for every shipped model and a model without one)")
    s.add_argument("--all-regions", action="store_true",
                   help="automatic mode: keep every candidate region in tumor.nii.gz (default: the one with the "
                        "largest expected tumour volume, i.e. probability mass; the others are listed in result.json under 'candidates')")
    s.add_argument("--tta", default=None, action="store_true",
                   help="mirrored test-time augmentation (8 flips; 8x the time); default: as the model was trained")
    s.add_argument("--no-grow", action="store_true",
                   help="seed / ROI mode: keep the first box and model grid (default: the box grows until the tumour no longer "
                        "touches its edge; result.json lists the passes)")
    s.add_argument("--scene-coordinates", action="store_true",
                   help="the --seed-point / --roi numbers were converted from a Slicer scene's nodes to LPS by the "
                        "caller (the Lung AI Segmentation panel passes it): no note asks whether Slicer's RAS numbers "
                        "were given or voxel indices; a Slicer markups file as --seed-point / --roi counts as such")
    s.add_argument("--series", default=None, help="SeriesInstanceUID when the DICOM folder holds several series")
    s.add_argument("--patient", action="append", default=None, metavar="NAME",
                   help="the CT's patient (PatientID or case name; repeatable) when the input's PatientID / file name "
                        "does not give it, e.g. an anonymised copy: a result of a model trained or validated on that "
                        "patient is said to be in-sample (as for the input's own)")
    s.add_argument("--seed", type=seed_number, default=None,
                   help="random seed of the MC-dropout passes (default 0; recorded in result.json as random_seed)")
    s.add_argument("--no-dicom", action="store_true",
                   help="for a DICOM CT, do not write tumor.seg.dcm, rtstruct.dcm, uncertainty.pm.dcm and "
                        "measurements.sr.dcm (DICOM SEG, RTSTRUCT, Parametric Map, SR) into the output folder")
    from lungai.cli import accept_negative_coordinates

    accept_negative_coordinates(s)          # "--seed-point -12.5,40,-150"
    s.set_defaults(func=run_segment, cancel_note=segment_cancel_note)

    e = sub.add_parser("eval-seg", help="evaluate a model: per-case Dice, HD95, volumes, confidence",
                       description="Each image that is a small crop is evaluated on its whole extent as the ROI; "
                                   "full CTs use the lungs' box. Every image / mask pair is checked (CT spacing and "
                                   "HU, mask grid, tumour label) before any case is evaluated; unusable pairs are "
                                   "all named and nothing is evaluated.")
    e.add_argument("--model", default=None, help=MODEL_HELP)
    e.add_argument("--images", default=None, help="folder of CTs (with --split test: where the training data's "
                                                  "--images lie now, if moved)")
    e.add_argument("--masks", default=None, help="folder of masks with the same file names (with --split test: "
                                                 "where the training data's --masks lie now, if moved): "
                                                 "nonzero = tumour, or with --label N the voxels of label N")
    e.add_argument("--label", type=int, default=None, metavar="N",
                   help="the tumour's label in every mask (e.g. 1 in label maps with 1 = GTV, 3 / 4 = lungs; a mask "
                        "without it is a tumour-free case); without it a mask with several labels is refused")
    e.add_argument("--split", default=None, choices=["test"],
                   help="the FINAL report: rebuild the model's held-out test split (train-seg --test-fraction) from "
                        "model.json and evaluate it with the ensemble and MC dropout, per size band and hard case")
    e.add_argument("-o", "--output", required=True, help="per-case CSV; also <name>.report.json: the run's record (model identity, seed, data) and "
                        "summary (with --split test: the final report)")
    e.add_argument("--method", default=None, choices=["ensemble", "mc-dropout"],
                   help="uncertainty method (default: ensemble; MC dropout for a 1-member model)")
    e.add_argument("--mc-passes", type=int, default=None,
                   help="MC-dropout passes (default: those the model's MC-dropout calibration was fitted with)")
    e.add_argument("--include-training-patients", action="store_true",
                   help="also evaluate the cases of patients the model was trained or validated on (left out by "
                        "default: their results are in-sample), flagged in the CSV (meta_seen_in_training)")
    e.add_argument("--patients", default=None,
                   help="CSV with columns case,patient (as train-seg's): each case's patient, so that cases of "
                        "patients the model was trained or validated on are found when file names do not name "
                        "the patient (else patient = name before '_'); with --split test: where the train-seg "
                        "run's --patients CSV lies now, if moved")
    e.add_argument("--max-cases", type=int, default=0,
                   help="evaluate only the first N image pairs (quick runs; default 0: every pair)")
    e.add_argument("--seed", type=seed_number, default=0,
                   help="random seed of the MC-dropout passes (0 to 4294967295; default 0)")
    e.set_defaults(func=run_eval)


def run_train(args) -> int:
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.seg.settings import MODEL_JSON      # (lungai.seg.model_io imports torch and MONAI: on a bar, _train)

    out = Path(args.output)
    check_train_output(out, keep=(args.save_arrays, args.from_arrays))
    if not args.save_arrays:     # a run still training there: said so, before its checkpoints read as "interrupted"
        check_not_training(out, args.member)
    if (out / MODEL_JSON).exists() and not args.resume:
        raise InputError(f"{out} already holds a model", "choose a new -o folder (or --resume an interrupted run)")
    from lungai.seg.settings import untrained_run

    if (out / "checkpoints").exists() and not args.resume and not untrained_run(out / "checkpoints"):
        raise InputError(f"{out} holds checkpoints of an interrupted run", "add --resume, or choose a new -o folder")
    whole_run = args.member is None and not (args.save_arrays or args.from_arrays)
    if args.resume and whole_run and not ((out / MODEL_JSON).exists() or (out / "checkpoints").exists()):
        # (not for --member K: parallel members may start together with --resume, each making the folder)
        raise InputError(f"--resume: {out} holds no train-seg run to resume (no model.json, no checkpoints/); "
                         "resuming would train every member anew from the first epoch",
                         f"give the -o folder of the interrupted run; after --member / --from-arrays runs on "
                         f"another machine, copy their {out.name}/checkpoints back into {out} first; or leave out "
                         "--resume to train anew")
    cfg, recipe = train_config(args)
    if args.member is not None and not 0 <= args.member < args.members:
        raise InputError(f"--member {args.member} is not one of the {args.members} members",
                         f"give 0 to {args.members - 1}")
    if args.save_arrays and args.from_arrays:
        raise InputError("--save-arrays and --from-arrays exclude each other", "give one of them")
    if args.arrays_max_whole is not None and (not args.save_arrays or args.arrays_max_whole < 0):
        raise InputError(f"--arrays-max-whole {args.arrays_max_whole} needs --save-arrays and a number >= 0",
                         "add --save-arrays FILE.npz, or leave --arrays-max-whole out")
    if args.save_arrays:
        from lungai.seg.packed import check_target

        check_target(args.save_arrays)            # before minutes of loading
    device = training_device(args.device)
    if not args.from_arrays:      # (lungai.io needs SimpleITK, which the accelerator of --from-arrays runs lacks)
        from lungai.io.outputs import prepare_output_file, prepare_output_folder

        if args.save_arrays:                      # this run writes only the arrays file, not -o
            prepare_output_file(args.save_arrays)
        else:       # under a file, not writable: said before minutes of loading; made when the model is written
            prepare_output_folder(out, create=False)      # (a run refused on its inputs leaves no empty -o)
    with train_lock(out, args.member, args.save_arrays):
        done = finished_model_note(out, args) if whole_run else None
        if done:          # other options than the finished run's are still refused, named (as for any resume)
            from lungai.seg.settings import check_settings

            check_settings(out / "checkpoints", resume_settings(args))
            print(f"note: {done}")
            return 0
        if untrained_run(out / "checkpoints"):       # (under the lock: no other run writes into it now)
            print(f"note: {out} holds a run stopped before its first epoch ended (nothing trained): starting anew "
                  "with these options")
        return _train(args, out, cfg, recipe, device, trained_member_note(out, args))


def finished_model_note(out, args) -> str | None:
    """What ``train-seg --resume`` says, training nothing and leaving the folder as it is, when ``out`` already holds a
    finished model (model.json complete, not "calibrating") that the resume would not change: every member stopped
    early or ``--epochs`` no more than the model was trained to, with its --members and --mc-passes.  None otherwise
    (nothing there, a calibration to finish, more epochs, other members or MC passes: the resume replaces the model
    once it has saved its own)."""
    import json

    from lungai.errors import counted
    from lungai.seg.settings import MODEL_JSON

    path = out / MODEL_JSON
    if not args.resume or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None                          # refused, named, where the model is read
    members = doc.get("members") if isinstance(doc, dict) else None
    trained = (doc.get("training") or {}).get("epochs") if isinstance(doc, dict) else None
    if "status" in doc or not isinstance(members, list) or not members or not isinstance(trained, int):
        return None
    stopped = all(isinstance(m, dict) and m.get("early_stopped") for m in members)
    passes = {c.get("mc_passes") for c in (doc.get("calibration") or {}).values() if isinstance(c, dict)} - {None}
    if ((args.epochs > trained and not stopped) or len(members) != args.members
            or (passes and args.mc_passes not in passes)):
        return None          # more epochs, other members or MC passes: the resume changes the model
    why = ("every member stopped early (no better validation Dice for --patience epochs)" if stopped else
           f"--epochs {args.epochs} is not more than that")
    longer = ("" if stopped else f"to train it longer, --resume with a larger --epochs (e.g. --epochs {trained * 2}; "
              "the longer run replaces this model only once it has saved and calibrated its own), ")
    return (f"{out} holds a finished model already trained to {counted(trained, 'epoch')} ({why}): nothing to do, "
            "the model is "
            f"left as it is; {longer}or choose a new -o folder to train anew")


def trained_member_note(out, args) -> str | None:
    """What ``train-seg --resume --member K`` says at its end, having trained nothing, when member K's checkpoint
    already held its --epochs (or it stopped early) as the run began: QA, it said "member K trained into ...", the
    checkpoint unchanged.  None when the member has epochs left to train (or no readable checkpoint)."""
    from lungai.errors import counted
    from lungai.seg.settings import MODEL_JSON, member_state

    state = member_state(out / "checkpoints", args.member) if args.resume and args.member is not None else None
    if state is None or args.from_arrays:       # (no checkpoint: a fresh member; a broken one: refused where read)
        return None
    epoch, stopped = state["epoch"], bool(state.get("done"))
    if epoch < args.epochs and not stopped:
        return None
    why = ("it stopped early: no better validation Dice for --patience epochs" if stopped else
           f"--epochs {args.epochs} is not more than that")
    if (out / MODEL_JSON).is_file():
        then = f"the model in {out} is already saved" + (
            "" if stopped else " (to train it longer: the same command without --member, with --resume and a larger "
            "--epochs)")
    else:
        then = ("when every member is done, run the same command without --member, with --resume, to save the model "
                "and calibrate it" + ("" if stopped else "; to train it longer, --resume --member with a larger "
                                      "--epochs"))
    return (f"member {args.member} in {out / 'checkpoints'} is already trained, to {counted(epoch, 'epoch')} ({why}): "
            f"nothing was trained, its checkpoint is left as it is; {then}")


def _train(args, out, cfg, recipe, device, member_done: str | None = None) -> int:
    """Trains; ``member_done`` (:func:`trained_member_note`, found before the data were read): what is said at the
    end instead of "member K trained into", when --member K had nothing left to train (the data and options are
    still checked as for any resume)."""
    from lungai.progress import task, timer_running
    from lungai.seg.config import DEFAULT_LR

    cases = [] if args.from_arrays else training_cases(args)
    # torch and MONAI (with pandas, scipy and pydicom under it) on a bar of their own, after the masks' check: QA
    # train67, imported before the first bar it came 10.4-11.1 s after the command on a shared machine (12 crops).
    # Each import counts nothing while it runs: its step said again with its seconds (timer_running, as eval-seg's
    # "loading the model: torch and MONAI"; QA trainfollow69: 4-7 s per step without a line on a shared machine)
    with task("train-seg: loading torch", 3, rate=False) as bar:
        bar.update(0, "loading torch")
        with timer_running(bar):
            import torch  # noqa: F401

        bar.update(1, "loading MONAI")
        with timer_running(bar):
            from lungai.seg.ensemble import train_ensemble

        # torch's optimiser (its first parameter group) and its deterministic mode import torch._dynamo and the
        # compiler's config (sympy: ~800 modules): QA train69, 7.7 s without a word after "loaded", on this bar now
        bar.update(1, "loading torch's optimiser (torch._dynamo)")
        with timer_running(bar):
            import torch._dynamo  # noqa: F401

        bar.update(1, "loaded")
    meta = train_ensemble(cfg, cases, out, seed=args.seed, val_fraction=args.val_fraction,
                          test_fraction=args.test_fraction, case_sources=case_sources(args), epochs=args.epochs,
                          iters_per_epoch=args.iters, batch_size=args.batch,
                          lr=args.lr or DEFAULT_LR[cfg.arch], patience=args.patience,
                          mc_passes=args.mc_passes, recipe=recipe, command=_train_command(getattr(args, "argv", sys.argv[1:])),
                          only_member=args.member, save_arrays_to=args.save_arrays,
                          arrays_from=args.from_arrays, device=device, workers=args.workers,
                          max_whole=args.arrays_max_whole)
    if args.save_arrays:
        print(f"training arrays -> {args.save_arrays}; train with the same command, --from-arrays instead of "
              "--save-arrays")
        return 0
    if args.from_arrays:
        print(f"members trained into {out / 'checkpoints'}; where the source data is, run the same command without "
              "--from-arrays, with --resume and these checkpoints, to save the model and calibrate it")
        return 0
    if meta is None and member_done:
        print(f"note: {member_done}")
        return 0
    if meta is None:
        print(f"member {args.member} trained into {out / 'checkpoints'}; when every member is done, run the same "
              "command without --member, with --resume, to save the model and calibrate it")
        return 0
    from lungai.seg.evaluate import fmt_num, summary_text

    for method, s in meta.get("validation", {}).items():
        print(f"{method} on validation: {summary_text(s)}; cross-validated r(confidence, Dice) = "
              f"{fmt_num(s.get('pearson_r_confidence_dice_cv'))} -> {out}")
    for method, cal in (meta.get("calibration") or {}).items():
        if not cal.get("fitted"):      # e.g. too few validation cases: said here, not only in model.json
            print(f"warning: the {method} confidence is not calibrated ({cal.get('how', 'not calibrated')}): "
                  "lungai segment marks its results 'uncalibrated' - give the validation split more patients "
                  "with tumours (a larger --val-fraction, or more cases) to calibrate it")
    return 0


def _member_busy(out, member, folder, exc):
    """The refusal of -o while member ``member``'s process (its lock ``folder``,
    :func:`lungai.seg.model_meta.member_lock_folder`) trains: "OUT: member K is being trained by process N on HOST
    (started ...)", "wait until it ends" (:func:`lungai.seg.model_meta.busy_refusal`, the wording `lungai segment`
    and the panel use); ``exc``: the lock's own refusal (:func:`lungai.io.outputs.check_not_running`), kept for a
    lock being written."""
    from lungai.errors import InputError
    from lungai.io.outputs import lock_holder
    from lungai.seg.model_meta import busy_refusal

    holder = lock_holder(folder)
    if holder and holder[1]:
        return busy_refusal(out, holder, member)
    return InputError(f"{out}: member {member} is being trained: {exc.problem}", exc.fix)


def check_not_training(out, member=None) -> None:
    """Refuse -o while a train-seg run still trains into it, before its checkpoints are read as an interrupted
    run's: a whole run holding the folder's lock (:func:`lungai.io.outputs.check_not_running`); for a run without
    --member also a member process (:func:`member_lock_folder`), for ``--member K`` the same member's.  Checked
    again when :func:`train_lock` takes the locks.  Nothing checked without lungai.io (no SimpleITK)."""
    from pathlib import Path

    from lungai.errors import InputError

    try:
        from lungai.io.outputs import check_not_running
    except ImportError:
        return
    from lungai.seg.model_meta import members_in

    out = Path(out)
    if not out.is_dir():
        return
    check_not_running(out, "train-seg")
    for k, folder in members_in(out):
        if member is None or k == member:
            try:
                check_not_running(folder, "train-seg")
            except InputError as exc:
                raise _member_busy(out, k, folder, exc) from None


@contextlib.contextmanager
def train_lock(out, member=None, save_arrays=None):
    """train-seg holds the lock of its -o folder (:func:`lungai.io.outputs.locked_output_folder`: ``.lungai.lock``,
    its process, computer, start; a stale one - its process gone - taken over; one of another computer names the file
    to delete; a new -o refused before anything was written is removed again) while it trains, saves and calibrates:
    a second run into the folder (e.g. the same command with --resume started while the first still runs) is
    refused, naming the run.  ``--member K`` (members in parallel) holds only its member's lock
    (:func:`member_lock_folder`, the folder removed when the run ends) and refuses while a whole run holds the
    folder's; a run without --member refuses while a member process still trains and removes the member locks of
    killed member runs.  ``save_arrays``: nothing is written into -o, no lock.  On an accelerator without SimpleITK
    (--from-arrays: lungai.io not importable) nothing is locked."""
    from pathlib import Path

    from lungai.errors import InputError

    from lungai.seg.model_meta import member_lock_folder, members_in

    out = Path(out)
    try:
        from lungai.io.outputs import check_not_running, locked_output_folder
    except ImportError:
        locked_output_folder = None
    if save_arrays or locked_output_folder is None:
        yield
        return
    if member is None:
        with locked_output_folder(out, "train-seg"):
            for k, folder in members_in(out):
                try:    # a live member is refused; a killed member's lock taken over, then removed with its folder
                    with locked_output_folder(folder, "train-seg"):
                        pass
                except InputError as exc:
                    raise _member_busy(out, k, folder, exc) from None
                with contextlib.suppress(OSError):
                    folder.rmdir()              # only when empty
            yield
        return
    folder = member_lock_folder(out, member)
    try:        # (a new -o refused before anything was written: removed again by locked_output_folder)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(locked_output_folder(folder, "train-seg"))
            except InputError as exc:
                raise _member_busy(out, member, folder, exc) from None
            # then no whole run holds the folder (its lock is not taken: member processes started at once would
            # refuse each other); member lock first, folder checked after - a whole run does the reverse - so of a
            # member and a whole run starting at once, at least one sees the other
            check_not_running(out, "train-seg")
            yield
    finally:
        with contextlib.suppress(OSError):
            folder.rmdir()                      # the member's lock folder (a stale one taken over too): when empty


def train_cancel_note(args) -> str | None:
    """What a cancelled train-seg (Ctrl-C) keeps: where its checkpoints are and how to continue, when a member has
    saved one (a member's state in OUT/checkpoints); else None (nothing to continue)."""
    from pathlib import Path

    from lungai.seg.settings import STATE_GLOB, untrained_run

    ckpt = Path(args.output) / "checkpoints"
    try:
        saved = ckpt.is_dir() and any(ckpt.glob(STATE_GLOB))
        untrained = not saved and args.member is None and untrained_run(ckpt)
    except OSError:
        return None
    if args.save_arrays:
        return None
    if untrained:
        return ("the run stopped before its first epoch ended: nothing was trained; the same command (or one with "
                "other options) into the same -o folder starts anew")
    if not saved:
        return None
    again = "the same command again" if args.resume else "the same command with --resume"
    if _calibrating(Path(args.output)):
        return f"training is complete (the checkpoints are kept in {ckpt}); {again} finishes the calibration"
    from lungai.seg.model_io import NEXT_MODEL

    if _calibrating(ckpt / NEXT_MODEL, ckpt):       # a model replacing a finished one: that one is untouched
        return (f"training is complete (the checkpoints are kept in {ckpt}); {again} finishes the calibration; "
                f"the model in {args.output} is left as it was until then")
    return f"the checkpoints are kept in {ckpt}; {again} continues from the last finished epoch"


def _calibrating(out, ckpt=None) -> bool:
    """train-seg stopped in its calibration: ``out``'s model.json, saved once every member had finished, says
    "status": "calibrating" and no member checkpoint (in ``ckpt``, default out/checkpoints) was written after it (a
    resume that trains more epochs).  ``out`` may be the folder where a model replacing a finished one is calibrated
    (``lungai.seg.model_io.NEXT_MODEL``)."""
    import json

    from lungai.seg.model_meta import CALIBRATING
    from lungai.seg.settings import MODEL_JSON, STATE_GLOB

    try:
        saved = (out / MODEL_JSON).stat().st_mtime
        states = [p.stat().st_mtime for p in (ckpt or out / "checkpoints").glob(STATE_GLOB)]
        doc = json.loads((out / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):               # none, unreadable, damaged: not said
        return False
    return isinstance(doc, dict) and doc.get("status") == CALIBRATING and all(t <= saved for t in states)


def _channels(text: str) -> tuple:
    from lungai.errors import InputError

    try:
        channels = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        channels = ()
    if len(channels) < 2 or min(channels) < 1:
        raise InputError(f"--channels {text!r} is not 2 or more comma-separated whole numbers", "e.g. --channels 8,16,32,64")
    return channels


def command_parser(command: str):
    """The argument parser of one command of this module (``train-seg``, ``segment``, ``eval-seg``) alone: its
    options, defaults and choices - the one place the Slicer panel reads them from."""
    from lungai.cli import Parser

    sub = Parser(prog="lungai").add_subparsers(dest="command")
    register(sub)
    return sub.choices[command]


def train_seg_parser():
    """The ``lungai train-seg`` argument parser alone (:func:`command_parser`)."""
    return command_parser("train-seg")


def segment_parser():
    """The ``lungai segment`` argument parser alone (:func:`command_parser`)."""
    return command_parser("segment")


def train_config(args):
    """The model configuration and training recipe of parsed train-seg options, every value checked (InputError
    naming the option and the fix): what train-seg refuses before any data is read, and what the Slicer panel
    checks before it launches train-seg.  Light: no torch, no data read."""
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.seg.config import SegConfig, check_mc_passes

    check_mc_passes(args.mc_passes)
    for name in ("members", "epochs", "iters", "batch", "patience"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} {getattr(args, name)} is less than 1", "give 1 or more")
    for name in ("synthetic", "synthetic_chests", "implant", "max_cases", "seed"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} {getattr(args, name)} is negative", "give 0 or more")
    # nan / inf: refused here as a 0 or a negative value is (QA optsfollow71: --lr nan ended in torch's "Invalid
    # learning rate: nan" traceback 50 s in, --val-fraction nan in "cannot convert float NaN to integer" 21 s in)
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise InputError(f"--lr {args.lr} is not a positive finite number",
                         "e.g. --lr 1e-3, or leave it out (the architecture's)")
    if args.workers < 0:
        raise InputError(f"--workers {args.workers} is negative", "give 0 or more")
    check_device_name(args.device)
    if not 0.0 <= args.dropout < 1.0:
        raise InputError(f"--dropout {args.dropout} is not in [0, 1)", "e.g. --dropout 0.1")
    cfg = SegConfig(arch=args.arch, members=args.members, dropout=args.dropout,
                    patch_size=_patch(args.patch, "--patch"),
                    spacing=_spacing(args.spacing),
                    channels=_channels(args.channels),
                    infer_patch=_patch(args.infer_patch, "--infer-patch"),
                    deep_supervision=args.deep_supervision, tta=args.tta)
    if args.label is not None and args.label < 1:
        raise InputError(f"--label {args.label}: a tumour label is 1 or more", "give the tumour's label, e.g. --label 1")
    if args.fg_fraction is not None and not 0.0 < args.fg_fraction < 1.0:
        raise InputError(f"--fg-fraction {args.fg_fraction} is not between 0 and 1", "e.g. --fg-fraction 0.33")
    if not 0.0 <= args.test_fraction < 0.9:
        raise InputError(f"--test-fraction {args.test_fraction} is not in [0, 0.9)", "e.g. --test-fraction 0.15")
    # --val-fraction 0 (or a tiny one) still validates on one patient (split_patients: at least one), as it always
    # did - a run started with it must stay resumable
    if not args.val_fraction >= 0.0:                            # (nan too)
        what = "negative" if args.val_fraction < 0 else "not a number"
        raise InputError(f"--val-fraction {args.val_fraction} is {what}",
                         "give a share of the patients, e.g. --val-fraction 0.2 (0: one validation patient)")
    if args.val_fraction + args.test_fraction >= 1.0:
        raise InputError(f"--val-fraction {args.val_fraction} with --test-fraction {args.test_fraction} leaves no "
                         "patients to train on (together they take all of them)",
                         "e.g. --val-fraction 0.2 --test-fraction 0.15")
    if args.implant and not args.implant_into:
        raise InputError("--implant needs --implant-into", "give a real chest CT or a CSV of them")
    used = {"implant_into": bool(args.implant), "patients": True}       # (--implant 0 reads no --implant-into)
    for name, what in (("implant_into", "a real chest CT file or a CSV of them"), ("patients", "the CSV file")):
        value = getattr(args, name)
        if value and used[name] and not getattr(args, "from_arrays", None) and not Path(value).is_file():
            raise InputError(f"--{name.replace('_', '-')} {value} does not exist (as a file)", f"give {what}")
    recipe = {"lr_schedule": args.lr_schedule, "augment": args.augment, "fg_fraction": args.fg_fraction}
    return cfg, recipe


def resume_settings(args) -> dict:
    """The settings of these train-seg options that an interrupted run's checkpoints/settings.json records (what a
    --resume must share with the first run; the split's cases are compared by train-seg once it has read the data):
    for :func:`lungai.seg.settings.check_settings` before a resume is launched."""
    from lungai.seg.config import DEFAULT_LR
    from lungai.seg.settings import data_settings, run_settings, schedule_settings

    cfg, recipe = train_config(args)
    settings = run_settings(cfg, seed=args.seed, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                            lr=args.lr or DEFAULT_LR[cfg.arch], batch_size=args.batch, recipe=recipe, label=args.label)
    settings.update(schedule_settings(epochs=args.epochs, iters_per_epoch=args.iters, patience=args.patience))
    settings.update(data_settings(case_sources(args), {}))
    return settings


def check_train_output(out, keep=()) -> None:
    """-o of train-seg: a new or empty folder, or this command's own model / checkpoint folder (``keep``: the arrays
    files of --save-arrays / --from-arrays, which may lie in it); never a file or a folder holding other things
    (InputError; light, JSON only: the Slicer panel's Start training checks its output folder with it)."""
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.seg.settings import MODEL_JSON

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out} is a file, not a folder", "give a new (or empty) folder for the model, "
                                                              "e.g. -o my_model")
    if (out / MODEL_JSON).is_file():
        _check_own_model(out)
    if (out / "checkpoints").exists():            # continued (and overwritten) by --resume: train-seg's own only
        from lungai.seg.settings import check_settings

        check_settings(out / "checkpoints", {})   # InputError when it is not (lungai.seg.settings.foreign_checkpoints)
    if not out.is_dir() or (out / MODEL_JSON).is_file() or (out / "checkpoints").is_dir():
        return
    other = _other_entries(out, keep, 6)
    if other:
        shown = ", ".join(sorted(other[:5])) + (" and more" if len(other) > 5 else "")
        raise InputError(f"-o {out} is not empty ({shown}) and holds no train-seg model or checkpoints",
                         "give a new (or empty) folder for the model, e.g. -o my_model")


def _other_entries(out, keep, most: int) -> list:
    """The names of at most ``most`` entries of folder ``out`` that are neither hidden nor one of the files ``keep``
    (compared resolved; a plain entry's resolved path is the resolved folder's and its name, so only links are
    resolved).  Stops at the ``most``-th: the Slicer panel checks -o on every change of its inputs, and a folder of
    thousands of files must not take seconds.  OSError when the folder cannot be read."""
    import itertools
    import os
    from pathlib import Path

    arrays = {Path(a).resolve() for a in keep if a}
    folder = Path(out).resolve() if arrays else None

    def kept(entry) -> bool:
        if not arrays:
            return False
        return (Path(entry.path).resolve() if entry.is_symlink() else folder / entry.name) in arrays

    with os.scandir(out) as entries:
        return [entry.name for entry in itertools.islice(
            (e for e in entries if not e.name.startswith(".") and not kept(e)), most)]


def _check_own_model(out) -> None:
    """A model.json in -o is train-seg's own (to resume, never to replace) only when it is a lungai-seg-1 model with
    its checkpoints/ beside it; anything else (a copied model, a model choice, an unreadable file) is refused."""
    import json

    from lungai.errors import InputError
    from lungai.seg.settings import FORMAT, MODEL_JSON

    try:
        fmt = json.loads((out / MODEL_JSON).read_text(encoding="utf-8")).get("format")
    except (ValueError, UnicodeDecodeError, AttributeError):
        fmt = "unreadable"
    why = (f"its format is {fmt!r}, not {FORMAT!r}" if fmt != FORMAT else
           "no checkpoints/ folder of a train-seg run is beside it" if not (out / "checkpoints").is_dir() else None)
    if why:
        raise InputError(f"-o {out} holds a {MODEL_JSON} that train-seg did not write there ({why}); it is left as it is",
                         "give a new (or empty) folder for the model, e.g. -o my_model")


def check_device_name(name: str) -> None:
    """``--device`` is cpu, cuda, cuda:N or auto (InputError otherwise; light: whether CUDA is there is not asked)."""
    from lungai.errors import InputError

    if name not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", name):
        raise InputError(f"unknown --device {name!r}", "give cpu, cuda, cuda:N or auto")


def training_device(name: str) -> str:
    """``--device`` checked: cpu, cuda, cuda:N or auto.  The default, cpu, needs no torch (imported later, on a bar:
    :func:`_train`); whether CUDA is there is asked on a bar of its own."""
    check_device_name(name)
    if name == "cpu":
        return name
    from lungai.progress import task, timer_running

    with task(f"train-seg: checking --device {name}", 1, rate=False) as bar:
        bar.update(0, "loading torch")
        with timer_running(bar):        # its seconds said while torch is imported (as _train's loading bar)
            import torch

        bar.update(1, "loaded")
    from lungai.errors import InputError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"--device {name}: this torch sees no CUDA device", "use --device cpu (or auto)")
    return name


def _train_command(argv: list) -> str:
    """The train-seg command as model.json records it: without --resume, --member K and the options that only say
    where and how a run goes (device, workers, arrays); ``argv`` is the command as given to :func:`lungai.cli.main`
    (``args.argv``: a ``main([...])`` call from Python records its own list, not the host process's sys.argv), each
    word quoted where needed (a folder with a space: ``'My data/imgs'``), so that the command runs as recorded."""
    import shlex

    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in RUN_ONLY_OPTIONS:
            skip = True
        elif a != "--resume" and not a.startswith(tuple(o + "=" for o in RUN_ONLY_OPTIONS)):
            out.append(a)
    return "lungai " + shlex.join(out)


RUN_ONLY_OPTIONS = ("--member", "--device", "--workers", "--save-arrays", "--from-arrays", "--arrays-max-whole")
SOURCE_KEYS = ("images", "masks", "label", "patients", "max_cases", "synthetic", "synthetic_chests", "implant",
               "implant_into", "seed")


def case_sources(args) -> dict:
    """What ``training_cases`` needs, with absolute paths (kept in model.json to rebuild the test split)."""
    from pathlib import Path

    out = {k: getattr(args, k) for k in SOURCE_KEYS}
    for k in ("images", "masks", "patients", "implant_into"):
        if out[k]:
            out[k] = str(Path(out[k]).resolve())
    return out


def training_cases(args, check_masks: bool = True) -> list:
    """The cases of a train-seg command: image/mask pairs, phantom crops, whole chests, implanted tumours
    (all deterministic from --seed).  ``check_masks``: the masks' labels are checked first
    (:func:`lungai.seg.dataset.check_masks`; not when a recorded test split is rebuilt)."""
    from lungai.errors import InputError
    from lungai.progress import task
    from lungai.seg import dataset

    backgrounds = []
    if args.implant:
        if not args.implant_into:
            raise InputError("--implant needs --implant-into", "give a real chest CT or a CSV of them")
        backgrounds = dataset.read_backgrounds(args.implant_into)
    # a test split rebuilt from model.json needs only its recorded cases: files added since do not matter
    label = getattr(args, "label", None)          # (not in the case sources of older models)
    cases = dataset.pair_files(args.images, args.masks, args.patients,
                               allow_unpaired=getattr(args, "allow_unpaired", False), label=label)
    if args.max_cases:
        cases = cases[: args.max_cases]
    if check_masks:
        dataset.check_grids(cases)                # headers only; the held-out test cases too
        with task("check the masks' labels", len(cases)) as bar:
            labels_note = dataset.check_masks(cases, label, bar,
                                              other_tumours=bool(args.synthetic or args.synthetic_chests or args.implant))
        for note in (labels_note, dataset.tumour_free_note(cases), dataset.patient_names_note(cases, args.patients)):
            if note:
                print(f"note: {note}")
    if args.synthetic:
        with task("synthetic phantom crops", 1) as bar:
            cases += dataset.synthetic_cases(args.synthetic, seed=10_000 + args.seed)
            bar.update(1)
    if args.synthetic_chests:
        with task("synthetic whole chests", args.synthetic_chests) as bar:
            for i in range(args.synthetic_chests):
                cases += dataset.whole_chest_cases(1, seed=20_000 + args.seed + i)
                bar.update(1)
    if args.implant:
        with task("implanted tumours", args.implant) as bar:
            cases += dataset.implanted_cases(backgrounds, args.implant, seed=30_000 + args.seed, progress=bar)
        note = dataset.unmasked_backgrounds_note(cases)
        if note:
            print(f"note: {note}")
    if check_masks:
        note = dataset.repository_test_cases_note(cases)
        if note:
            print(f"note: {note}")
    return cases


# what `lungai segment` writes into its folder (the NIfTI maps and result.json, then the DICOM objects): a folder
# without its marker holding one of these is refused (never overwritten); other files (lungs.nii.gz...) are left alone
SEGMENT_OUTPUTS = ("tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "mutual_information.nii.gz",
                   "result.json", "tumor.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm", "measurements.sr.dcm")


def segment_cancel_note(args) -> str | None:
    """What a ``lungai segment`` cancelled (Ctrl-C, SIGTERM) while writing its results left in its output folder - the
    files written so far without result.json (no confidence, no review flag), or result.json without the DICOM objects
    -, the previous run's results it had removed, and the fix; None when it stopped before writing (the folder as it
    was).  QA seg72: LUNG1-003 cancelled while writing uncertainty.nii.gz left tumor.nii.gz and two maps, the previous
    results removed, and said only "cancelled"."""
    writing = getattr(args, "writing", None)
    if writing is None:
        return None
    out, removed, dicom = writing
    written = [n for n in SEGMENT_OUTPUTS if (out / n).is_file()]
    if "result.json" not in written:
        left = (f"{', '.join(written)} in {out} {'are' if len(written) > 1 else 'is'} of this run, but its result.json "
                "(the confidence and the review flag) was not written: do not use them" if written
                else f"nothing was written to {out}")
    else:
        missing = [n for n in SEGMENT_OUTPUTS if n.endswith(".dcm") and n not in written] if dicom else []
        if not missing:
            return None
        left = (f"the results in {out} were written but not all of the DICOM objects ({', '.join(missing)} "
                "missing)")
    gone = f"; the previous results there were removed ({', '.join(removed)})" if removed else ""
    return f"the run stopped while writing its results: {left}{gone} - run the command again (it replaces them)"


def run_segment(args) -> int:
    from pathlib import Path

    # lungai.io's readers and writers import SimpleITK (QA segfollow72: ~0.5 s before the first bar): on the bar, in
    # the CT's read and the results' writing
    from lungai.progress import task, timer_running, waiting
    from lungai.seg.resources import resolve_model_dir

    from lungai.seg.config import check_mc_passes

    check_mc_passes(args.mc_passes, args.method)
    if args.all_regions and (args.seed_point or args.roi):
        from lungai.errors import InputError

        raise InputError(f"--all-regions keeps every candidate region of automatic mode; with "
                         f"{'--seed-point' if args.seed_point else '--roi'} only the tumour "
                         f"{'at the seed' if args.seed_point else 'in the box'} is segmented, so it would not be used",
                         "leave --all-regions out (or leave out the seed point / ROI for automatic mode)")
    if args.no_grow and not (args.seed_point or args.roi):
        from lungai.errors import InputError

        # automatic and --whole mode have no growing box: the option would not be used (QA: exit 0, not a word)
        box = ("--whole: the whole image is" if args.whole else
               "automatic mode: the lungs' box (a small crop: all of it) is")
        raise InputError(f"--no-grow keeps the first box of seed / ROI mode; without --seed-point or --roi ({box} used "
                         "as it is) there is no growing box, so it would not be used",
                         "leave --no-grow out, or give --seed-point / --roi round the tumour")
    out = Path(args.output)
    seed_pt = seed_point_value(args.seed_point) if args.seed_point else None
    roi = roi_value(args.roi) if args.roi else None     # a box with no extent (--roi 0,0,0,0,0,0): refused here
    from lungai.seg.model_meta import check_model_folder

    model_dir = resolve_model_dir(args.model)
    model_doc = check_model_folder(model_dir, args.method)     # an argument: checked (no weights) before the CT
    from lungai.cli import check_input_exists

    check_input_exists(args.ct, series=args.series)     # before loading the model, the progress bar and any work
    from lungai.paths import check_output_not_among_ct_slices

    # -o the CT's series folder itself: refused from the paths, before the series is listed (SimpleITK)
    check_output_not_among_ct_slices(out, args.ct, dicom_results=not args.no_dicom)
    from lungai.dicom.reference import reads_dicom_ct

    from lungai.io.outputs import claimed_output_folder, prepare_output_folder

    dicom = reads_dicom_ct(args.ct) and not args.no_dicom    # the series read_ct reads (in CT/ too)
    from lungai.dicom.reference import MULTIFRAME_NO_DICOM, multiframe_ct, one_series_scan

    def dicom_checks() -> bool:
        """The DICOM CT series' checks (every file's header read once for both): True for an Enhanced (multi-frame)
        CT, whose SEG / RTSTRUCT are not written (said, not failed at the end); an output folder that is the CT
        series' own folder, found below the folder given (DICOM results would land among its slices), or lies inside
        the DICOM export holding it: refused - before any work, and before the owner check (the clearer word)."""
        with one_series_scan():
            if multiframe_ct(args.ct, args.series):
                return True
            from lungai.dicom.reference import check_output_folder

            check_output_folder(out, args.ct, args.series)
            return False

    skipped, written = False, []
    if not dicom:       # before the bar and any work: nothing is computed in vain (a new folder is made only when the
        prepare_output_folder(out, inputs=[args.ct], owner="segment", owns=SEGMENT_OUTPUTS, create=False)  # written)
    from lungai.model_files import write_json
    from lungai.seg.choice import STEPS_PER_RUN, add_model_notes, count_models_not_run, model_runs

    runs = model_runs(model_doc)        # from model.json: the bar is drawn before torch is imported
    # no steps per second on the bar: its message, the network runs' count after the pass ("pass 1 (grid x1): network
    # run 94/180 ..."), needs the room - an 80-column terminal cut it to "network run 9" (QA segnotes64)
    from lungai.dicom import RESULTS_STEPS     # (lungai.dicom.export imports SimpleITK: after the bar)

    # the DICOM objects: a step each (QA dicomread65: one step, 6-10 s on LUNG1-003 behind one message)
    with task("segment", 2 + (RESULTS_STEPS if dicom else 0) + STEPS_PER_RUN * runs, rate=False) as bar:
        if dicom:
            # a DICOM CT's series checks on the bar, with their seconds (QA segfollow68, LUNG1-003's 107 slices: the
            # bar came ~4 s after the command on a shared machine, the headers' scan most of it); still before any
            # work, the owner check after them
            skipped = waiting(bar, "checking the CT series: its files' headers", dicom_checks)
            dicom = not skipped
            prepare_output_folder(out, inputs=[args.ct], owner="segment", owns=SEGMENT_OUTPUTS, create=False)
        def read():
            from lungai.io import read_ct

            image = read_ct(args.ct, series_uid=args.series)
            if not dicom:
                return image, None
            # the CT series' headers checked against the image before any work (no half-written results)
            from lungai.dicom.export import reference_for

            return image, reference_for(args.ct, image, args.series)

        # one read with no count of its own: said with its seconds while it runs (QA segfollow68: 3 s on LUNG1-003's
        # DICOM series behind one message on a shared machine)
        ct, reference = waiting(bar, "reading the CT", read)
        bar.update(1, "read")
        if seed_pt is not None or roi is not None:
            # the CT is read first, so that the seed point / ROI is checked on it (off the image, in the air ...)
            # before torch, MONAI and the model are loaded, as lungai demo does (QA seg72: lung1 with
            # --seed-point=1e4,1e4,1e4 or an ROI beside the CT was refused 15-16 s after the command, the model loaded)
            from lungai.seg.model_meta import roi_margin_mm
            from lungai.seg.preprocess import check_placement

            check_placement(ct, seed_pt, roi, roi_margin_mm(model_dir, model_doc))
        # torch and MONAI are imported with the model, on the bar: QA startup65, the bar came 11.6 s after the command
        # on a shared machine (LUNG1-002), 9-10 s of it these imports
        # then each member counted as it is loaded (QA segfollow67: "loading the model" stood 4-27 s with its timer
        # at 00:00 on a shared machine)
        bar.update(0, "loading the model: torch and MONAI")
        with timer_running(bar):        # the imports count nothing: the bar's timer runs on through them
            from lungai.seg.infer import segment_tumour
            from lungai.seg.model_io import load_model

            model = load_model(model_dir, progress=bar)
        res = segment_tumour(ct, model, roi_lps=roi, seed_lps=seed_pt, method=args.method,
                             mc_passes=args.mc_passes, seed=args.seed if args.seed is not None else 0,
                             whole=True if args.whole else None,
                             all_regions=args.all_regions, progress=bar, source=str(args.ct),
                             grow=not args.no_grow, tta=args.tta, scene_coordinates=scene_coordinates(args))
        count_models_not_run(bar, model, res.info)      # a choice that did not need every model (routed ...)
        # a better-suited model's note, the model's confidence caveat; a patient the model trained on: in-sample
        add_model_notes(model_dir, res.info, patients=[ct_patient_name(ct, args.ct, args.series), *(args.patient or ())])
        if args.seed is not None and res.info.get("method") != "mc-dropout":   # the ensemble draws no random number
            from lungai.seg.config import SEED_UNUSED_NOTE

            res.info["notes"].append(SEED_UNUSED_NOTE.format(n=args.seed))
        # no stale file of an earlier run: those its marker lists are removed, a user's file is never touched
        with claimed_output_folder(out, "segment", SEGMENT_OUTPUTS, inputs=[args.ct]) as removed:
            args.writing = (out, list(removed), dicom)      # what a Ctrl-C from here on left: segment_cancel_note
            from lungai.io import write_image
            from lungai.seg.uncertainty import (ENTROPY_MEANING, ENTROPY_UNIT, MI_MEANING, PROBABILITY_MEANING,
                                                PROBABILITY_UNIT, describe)

            protect = [args.ct]
            # each file named on the bar as it is written: the step's message is drawn after it (QA segprog64: the
            # maps of LUNG1-003 took 4.3 s and its DICOM objects 6.4 s behind "mapped to input grid" / "written")
            # each written in a worker while the bar says its seconds (QA seg68: a map of a whole CT took 1-2 s behind
            # one message); a Ctrl-C / Cancel waits for the write, so its own clean-up removes its .partial-* copy
            waiting(bar, "writing tumor.nii.gz", write_image, res.tumour, out / "tumor.nii.gz", protect=protect,
                    finish_on_stop=True)
            # the maps say what they hold (NIfTI description): predictive entropy / mutual information, bit - given
            # in place (describe): a described copy of each map raised the command's peak by 4 bytes a CT voxel
            maps = [(res.probability, "probability.nii.gz", PROBABILITY_MEANING, PROBABILITY_UNIT),
                    (res.entropy, "uncertainty.nii.gz", ENTROPY_MEANING, ENTROPY_UNIT),
                    (res.mutual_information, "mutual_information.nii.gz", MI_MEANING, ENTROPY_UNIT)]
            for img, name, meaning, unit in maps:
                if img is not None:
                    with describe(img, meaning, unit) as described_map:
                        waiting(bar, f"writing {name}", write_image, described_map, out / name, protect=protect,
                                finish_on_stop=True)
            from lungai.dicom.export import result_record

            # dicom-export checks it: the CT, and the tumour's voxels (an edited tumor.nii.gz is the user's)
            from lungai.seg.model_meta import model_identity

            bar.update(0, "writing result.json")
            info = dict(res.info, model=str(model_dir), model_identity=model_identity(model_dir),
                        **result_record(args.ct, args.series, res.tumour))
            write_json(out / "result.json", info)
            bar.update(1, "written")
            if dicom:
                from lungai.dicom.export import export_results
                from lungai.dicom.seg import AUTOMATIC

                written = export_results(reference, out, tumour=res.tumour,
                                         uncertainty=res.entropy, info=info, seg_name="tumor.seg.dcm",
                                         generation={"tumour": AUTOMATIC}, series="segment", progress=bar)
            elif skipped:       # an Enhanced CT: its DICOM objects' steps, counted on the bar before the check
                bar.update(RESULTS_STEPS, "no DICOM objects of an Enhanced (multi-frame) CT")
    if removed:
        print(f"note: removed the previous lungai segment results in {out} ({', '.join(removed)})")
    from lungai.errors import counted
    from lungai.scene.results import confidence_text, threshold_text     # the panel's banner says it alike
    from lungai.seg.config import result_value

    i = res.info
    why = "; ".join(i.get("review_reasons") or [])     # why it is flagged (low confidence, cut by the image edge ...)
    print(f"tumour {result_value(i, 'tumour_volume_ml'):.2f} ml in {counted(int(i['n_components']), 'component')}; "
          f"{confidence_text(i)} (review below {threshold_text(i)}: "
          f"{('NEEDS REVIEW' + (f' - {why}' if why else '')) if i['needs_review'] else 'ok'}) -> {out}")
    if i.get("confidence_caveat"):      # the model's known confidence caveat, beside the confidence
        print(f"confidence caveat: {i['confidence_caveat']}")
    for path in written:
        print(f"DICOM: {path}")
    if skipped:
        print(f"note: {MULTIFRAME_NO_DICOM.format(ct=args.ct)}, so no DICOM SEG / RTSTRUCT / Parametric Map / SR is "
              f"written; the NIfTI results in {out} are")
    for reason, action in zip(i.get("review_reasons") or [], i.get("review_actions") or []):
        print(f"to do ({reason}): {action}")      # what to do about each review reason
    for note in i["notes"]:
        print(f"note: {note}")
    return 0


def run_eval(args) -> int:
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.progress import task, timer_running
    from lungai.seg.config import check_mc_passes
    from lungai.seg.model_meta import check_model_folder
    from lungai.seg.resources import resolve_model_dir

    from lungai.io.outputs import prepare_output_file, record_output_file

    check_mc_passes(args.mc_passes, args.method)
    if args.max_cases < 0:      # QA seg71: -1 evaluated every pair but the last (cases[:-1]), one case: none, said nowhere
        raise InputError(f"--max-cases {args.max_cases} is negative", "give 0 or more (0, the default: every pair)")
    out = Path(args.output)
    if out.is_dir():
        raise InputError(f"{out} is a folder", "give a CSV file name, e.g. -o per_case.csv")
    if args.label is not None and (args.split == "test" or args.label < 1):
        raise InputError(f"--label {args.label}: " + ("--split test takes the masks the model was trained with"
                                                       if args.split == "test" else "a tumour label is 1 or more"),
                         "leave --label out" if args.split == "test" else "give the tumour's label, e.g. --label 1")
    if args.split == "test":        # the final report: the whole recorded test split, with both methods
        unused = [o for o, given in (("--method", args.method), ("--max-cases", args.max_cases),
                                     ("--include-training-patients", args.include_training_patients)) if given]
        if unused:      # QA: accepted and ignored without a word (the report ran both methods on every test case)
            raise InputError(f"{', '.join(unused)} not used with --split test: the final report evaluates every case "
                             "of the model's held-out test split (never seen in training) with both methods (MC "
                             "dropout alone for a 1-member model)",
                             f"leave {', '.join(unused)} out (or evaluate a folder: --images / --masks without "
                             "--split)")
    # both modes write <name>.report.json (the run's record; a user's file is never replaced)
    prepare_output_file(out, inputs=[args.images, args.masks, args.patients], owner="eval-seg", sidecars=[out.with_suffix(".report.json")])
    model_dir = resolve_model_dir(args.model)
    # the model's folder (no weights read), the data's folders and pairs, and --split test's cases checked before the
    # model is loaded (QA seg71: a missing --images folder, no --images at all, a missing --model folder or a model
    # without a test split were refused 12-17 s after the command, once torch, MONAI and the weights had loaded)
    model_doc = check_model_folder(model_dir, args.method)
    # SimpleITK (lungai.seg.dataset and lungai.seg.evaluate import it: ~0.5 s, more on a shared machine) on a first
    # bar of its own, as train-seg's torch: QA segfollow72, it was imported before eval-seg's first bar
    with task("eval-seg: loading SimpleITK", 1, rate=False) as bar:
        bar.update(0, "loading SimpleITK")
        with timer_running(bar):
            from lungai.seg import dataset
            from lungai.seg.evaluate import check_cases, evaluate_cases, report_text, summary_text, test_report
        bar.update(1, "loaded")
    if args.split == "test":
        cases = _checked_test_split(args, model_doc)
    else:
        if not (args.images and args.masks):
            raise InputError("eval-seg needs --images and --masks (or --split test)", "give both folders")
        cases = dataset.pair_files(args.images, args.masks, args.patients)    # --patients: each case's patient
        if args.max_cases:
            cases = cases[: args.max_cases]
        # the cases of training patients left out and every pair checked before the model is loaded, as --split test
        # checks its cases (QA seg72: a mask of another image among 2 LIDC crops was refused 16 s after the command,
        # 14 s of it torch, MONAI and the weights); the patients' records are model.json's (model_records)
        from lungai.seg.choice import model_records

        records = model_records(model_dir, model_doc)
        if not args.patients:
            _patients_csv_note(records)
        cases = _seen_cases(records, cases, args.include_training_patients)
        with task("eval-seg: checking inputs", len(cases)) as bar:
            labels_note = check_cases(cases, args.label, bar)     # every unusable pair named before any case runs
        if labels_note:
            print(f"note: {labels_note}")
    # torch and MONAI are imported with the model, on a bar of its own (as segment's): QA startfollow65, eval-seg's
    # first bar came 12 s after the command on a shared machine, 9-14 s of it the model's loading
    with task("eval-seg: loading the model", 1, rate=False) as bar:
        bar.update(0, "loading the model: torch and MONAI")
        with timer_running(bar):
            from lungai.seg.model_io import load_model

            model = load_model(model_dir, progress=bar)       # each member counted as it is loaded
        bar.update(1, "loaded")
    if args.split == "test":
        return _run_test_report(args, model, model_dir, out, cases)
    with task("eval-seg", len(cases)) as bar:
        df = evaluate_cases(model, cases, args.method, args.mc_passes, args.seed, bar, label=args.label)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    record_output_file(out, "eval-seg")                   # a re-run may replace it
    used = sorted(set(df["method"].dropna())) if "method" in df else []
    # which model, seed, passes and data made these numbers (before, folder mode recorded none of it: a CSV could
    # not be tied to the model that produced it)
    # the summary and, as --split test's report, the Dice per size band (< 10, 10-30, 30-60, > 60 mm), size group and
    # hard case (QA trainfollow67: folder mode wrote the summary alone, though users test an own model on folders)
    rep = test_report({"folder": df})["folder"]
    _write_report(out, _run_record(args, model_dir, used, len(cases)), rep)
    print(f"{summary_text(rep['summary'])} -> {out}")
    groups = report_text({"folder": rep}, summary=False)
    if groups:
        print("per size band, size group and hard case (cases with a tumour):\n" + groups)
    if args.method is None and used and used != ["ensemble"]:
        print(f"note: method {', '.join(used)} was used: a 1-member model has no ensemble to measure agreement "
              "(--method mc-dropout)")
    if args.mc_passes is not None and used and "mc-dropout" not in used:      # the model's ensemble ran
        from lungai.seg.config import MC_PASSES_UNUSED_NOTE

        print(f"note: {MC_PASSES_UNUSED_NOTE.format(n=args.mc_passes)}")
    return _report_failed(df)


def _patients_csv_note(model) -> None:
    """eval-seg without --patients of a model trained with a --patients CSV: a note that its patients are not
    named by the file names, so a case of such a patient under another file name (a further crop) is not found -
    QA: a model trained on scan011 / scan012 of LIDC-IDRI-0011 (--patients) evaluated scan013 of that patient as
    unseen, without a word."""
    from pathlib import Path

    from lungai.seg.evaluate import model_patients_csvs

    csvs = model_patients_csvs(model)
    if csvs:
        print(f"note: the model was trained with --patients {', '.join(Path(c).name for c in csvs)}: its patients "
              "are not named by the file names, so a case of a patient it was trained or validated on is found "
              "only by its own case name; give --patients CSV (case,patient, a row for each of these cases) to "
              "leave out every case of those patients")


def _seen_cases(model, cases, include: bool) -> list:
    """eval-seg's cases without those of the model's training / validation patients
    (:func:`lungai.seg.evaluate.model_seen_patients`: a model choice's models each), each case's ``meta["seen_in_training"]`` set (None: cannot be
    checked); with ``include`` all of them, the seen ones flagged.  Said in notes; every case seen: InputError."""
    from lungai.errors import InputError, agree, counted, counted_of
    from lungai.seg.evaluate import model_seen_patients

    seen, unrecorded = model_seen_patients(model, cases)      # a model choice: each of its models' records
    for c, s in zip(cases, seen):
        c.meta["seen_in_training"] = bool(s) if not unrecorded or s else None
    if unrecorded:
        which = ("this model records" if unrecorded == [None] else
                 f"model{'s' if len(unrecorded) > 1 else ''} {', '.join(repr(n) for n in unrecorded)} of this model "
                 f"choice record{'' if len(unrecorded) > 1 else 's'}")
        print(f"note: overlap with the model's training patients cannot be checked: {which} no training "
              "patient hashes (a shipped model, or one trained by an older lungai); make sure none of these cases "
              "was trained on (retrain with `lungai train-seg` to record them)")
    loose = model_seen_patients(model, cases, loose=True)[0]
    near = [(c, n) for c, s, n in zip(cases, seen, loose) if n and not s]
    if near:
        shown = ", ".join(f"{c.case_id} ({n})" for c, n in near[:5]) + (" ..." if len(near) > 5 else "")
        print(f"note: {counted_of(len(near), len(cases), 'case')} {agree(len(near), 'matches', 'match')} a patient "
              "the model was trained or validated on "
              f"only ignoring letter case / leading zeros ({shown}): evaluated as unseen - check the names; if they "
              "are those patients, their results are in-sample: name the files as at training (the same spelling) "
              "so they are left out")
    _note_other_scheme(model, [c for c, s, n in zip(cases, seen, loose) if not s and not n], len(cases))
    hits = [(c, s) for c, s in zip(cases, seen) if s]
    if not hits:
        return cases
    shown = ", ".join(f"{c.case_id} ({s})" for c, s in hits[:5]) + (" ..." if len(hits) > 5 else "")
    what = (f"{counted_of(len(hits), len(cases), 'case')} {agree(len(hits), 'is of a patient', 'are of patients')} "
            f"the model was trained or validated on ({shown})")
    if include:
        print(f"note: {what}: evaluated as asked (--include-training-patients), flagged meta_seen_in_training; "
              "these results are NOT an evaluation on unseen patients (in-sample for those cases: optimistic)")
        return cases
    if len(hits) == len(cases):
        raise InputError(f"{what}: {agree(len(hits), 'its', 'their')} results would be in-sample, not an "
                         "evaluation on unseen patients",
                         "evaluate on patients the model never saw (or its held-out test split: --split test); "
                         "add --include-training-patients only to see the in-sample fit, flagged as seen")
    print(f"note: {what}: left out ({agree(len(hits), 'its', 'their')} results would be in-sample); "
          f"{counted(len(cases) - len(hits), 'case')} "
          f"{agree(len(cases) - len(hits), 'is', 'are')} evaluated (--include-training-patients evaluates them "
          "too, flagged as seen)")
    return [c for c, s in zip(cases, seen) if not s]


def _note_other_scheme(model, cases, n_cases: int) -> None:
    """eval-seg's note on the ``cases`` (of ``n_cases``; their patients read from the names, not seen by name) whose
    name has no '_' and begins with a patient the model was trained or validated on and a separator
    (:func:`lungai.seg.dataset.separator_prefixes`: ``LIDC-IDRI-0001-R-1`` of a model trained on LIDC-IDRI-0001;
    train-seg refuses such names beside that patient's): evaluated as unseen (the match is a guess), said."""
    from lungai.errors import agree, counted_of
    from lungai.seg.dataset import Case, separator_prefixes
    from lungai.seg.evaluate import model_seen_patients

    starts = [(c, p) for c in cases if c.meta.get("patient_from_name") for p in separator_prefixes(c.case_id)]
    if not starts:
        return
    probe = [Case(p, p) for _, p in starts]
    found = {}
    for (c, p), exact, loose in zip(starts, model_seen_patients(model, probe)[0],
                                    model_seen_patients(model, probe, loose=True)[0]):
        if (exact or loose) and c.case_id not in found:
            found[c.case_id] = f"{c.case_id} ({exact or loose}: {p})"
    if not found:
        return
    shown = ", ".join(list(found.values())[:5]) + (" ..." if len(found) > 5 else "")
    print(f"note: {counted_of(len(found), n_cases, 'case')} {agree(len(found), 'has', 'have')} a name without '_' "
          "that begins with a patient the model "
          f"was trained or validated on and a separator ({shown}): evaluated as unseen (the patient of a name "
          "without '_' is the whole name) - if they are those patients, their results are in-sample: name the files "
          "<patient>_<n> as at training, or give --patients CSV, so they are left out")


def _report_failed(df) -> int:
    """eval-seg's exit status: 1 (each failed case named with its error) when a case failed mid-run, else 0."""
    import sys

    from lungai.errors import counted
    from lungai.seg.evaluate import failed

    bad = df[failed(df)].drop_duplicates("case")
    for _, row in bad.iterrows():
        print(f"error: case {row['case']}: {row['error']}", file=sys.stderr)
    if len(bad):
        print(f"error: {counted(len(bad), 'case')} failed (their rows hold the error, Dice NaN; left out of the "
              "summary)", file=sys.stderr)
    return 1 if len(bad) else 0


def test_split_cases(training: dict, images=None, masks=None, patients=None) -> list:
    """The held-out test cases of a model (``model.json``'s ``training``), rebuilt from its case sources.
    ``images`` / ``masks``: where the training data's folders lie now (moved, or the model copied to another
    computer), instead of the folders model.json recorded; the recorded test cases are read from them.
    ``patients``: likewise where the train-seg run's --patients CSV lies now (QA: a model trained with --patients,
    copied to another computer, could not be evaluated: "--patients /old/path is not a readable CSV", fix "write a
    comma-separated CSV", and eval-seg took no --patients)."""
    import argparse
    from pathlib import Path

    from lungai.errors import InputError

    wanted = set(training.get("test_cases") or [])
    if not wanted:
        raise InputError("this model has no test split", "train it with --test-fraction (e.g. 0.15)")
    src = training.get("case_sources") or {}
    if patients and not src.get("patients"):
        raise InputError("--patients with --split test: this model was trained without a --patients CSV (its "
                         "patients were read from the file names)", "leave --patients out")
    if patients:
        src = {**src, "patients": patients}
    elif src.get("patients") and not Path(src["patients"]).is_file():
        raise InputError(f"the --patients CSV model.json records is gone ({src['patients']}): the test split is "
                         "rebuilt with it", "give where it lies now: eval-seg --model ... --split test --patients FILE "
                         "(the train-seg run's CSV, moved; with --images / --masks if the folders moved too)")
    if images:
        src = {**src, "images": images, "masks": masks}
    else:
        gone = [f"--{k} {src[k]}" for k in ("images", "masks") if src.get(k) and not Path(src[k]).is_dir()]
        if gone:
            raise InputError(f"the training data folders model.json records are gone ({'; '.join(gone)}): "
                             "the test split is rebuilt from them",
                             "give where they lie now: eval-seg --model ... --split test --images DIR --masks DIR "
                             "(the folders of the train-seg run, moved; the recorded test cases are read there)")
    if not any("_implant-" in c for c in wanted):    # implant backgrounds stay in training: no need to rebuild them
        src = {**src, "implant": 0}
    cases = [c for c in training_cases(argparse.Namespace(**src, allow_unpaired=True), check_masks=False)
             if c.case_id in wanted]
    missing = wanted - {c.case_id for c in cases}
    if missing:
        where = f"{src.get('images')} / {src.get('masks')}"
        raise InputError(f"{len(missing)} test cases could not be rebuilt from {where} (e.g. {sorted(missing)[0]})",
                         "give the folders of the train-seg run, each test case's image and mask in them "
                         "(--split test --images DIR --masks DIR where they lie now; else model.json's "
                         "case_sources)")
    return cases


def _run_record(args, model_dir, methods: list, n_cases: int) -> dict:
    """What an eval-seg report was made with (its ``run``): the model's identity
    (:func:`lungai.seg.model_meta.model_identity`: folder, sha256 of model.json and each member), the seed, the MC
    passes (null: the model's calibration's), the methods, the data given (full paths: a relative one says nothing
    once the report is read elsewhere) and the options that choose the cases."""
    from pathlib import Path

    from lungai import __version__
    from lungai.seg.model_meta import model_identity

    return {"model_identity": model_identity(model_dir), "seed": args.seed, "mc_passes": args.mc_passes,
            "methods": methods, "n_cases": n_cases, "lungai_version": __version__, "split": args.split,
            "images": str(Path(args.images).resolve()) if args.images else None,
            "masks": str(Path(args.masks).resolve()) if args.masks else None,
            "label": args.label, "max_cases": args.max_cases or None,
            "patients": str(Path(args.patients).resolve()) if getattr(args, "patients", None) else None,
            "include_training_patients": bool(args.include_training_patients)}


def _write_report(out, run: dict, rep: dict) -> None:
    """``<out>.report.json``: ``{"run": run, **rep}`` (recorded as eval-seg's: a re-run may replace it)."""
    from lungai.io.outputs import record_output_file
    from lungai.seg.model_io import write_json

    write_json(out.with_suffix(".report.json"), {"run": run, **rep})
    record_output_file(out.with_suffix(".report.json"), "eval-seg")


def _checked_test_split(args, model_doc: dict) -> list:
    """eval-seg --split test's cases: the model's held-out test split rebuilt from ``model_doc`` (its model.json,
    :func:`test_split_cases`) and every pair checked (``lungai.seg.evaluate.check_cases``) - before the model is
    loaded."""
    from lungai.errors import InputError
    from lungai.progress import task

    if bool(args.images) != bool(args.masks):
        raise InputError("--split test rebuilds the test cases from model.json: --images and --masks, if given, "
                         "say where the training data's folders lie now (moved), both of them",
                         "give both --images and --masks, or leave both out")
    cases = test_split_cases(model_doc.get("training", {}), args.images, args.masks, args.patients)
    from lungai.seg.evaluate import check_cases

    try:
        with task("eval-seg: checking the test cases", len(cases)) as bar:
            check_cases(cases, None, bar)   # as folder mode: every unusable pair named before any case runs
    except InputError as exc:
        raise InputError(exc.problem, "fix these pairs where the training data is (model.json's case_sources, or "
                                      "the --images / --masks given; the test split is rebuilt from them), then "
                                      "run again (nothing was "
                                      "evaluated: a silently smaller test set would not be comparable)") from None
    return cases


def _run_test_report(args, model, model_dir, out, cases: list) -> int:
    """eval-seg --split test: the model's held-out test patients (``cases``: :func:`_checked_test_split`), both
    methods (MC dropout only for a 1-member model), the report (``run``: the model's identity -
    :func:`lungai.seg.model_meta.model_identity` -, the seed, the data's folders given)."""
    import pandas as pd

    from lungai.io.outputs import record_output_file
    from lungai.progress import task
    from lungai.seg.evaluate import evaluate_cases, report_text, test_report

    frames = {}
    one_member = isinstance(model, tuple) and len(model[1]) < 2     # no ensemble to measure agreement
    for method in ("mc-dropout",) if one_member else ("ensemble", "mc-dropout"):
        with task(f"test split, {method}", len(cases)) as bar:
            frames[method] = evaluate_cases(model, cases, method, args.mc_passes, args.seed, bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames.values()).to_csv(out, index=False)
    record_output_file(out, "eval-seg")                   # a re-run may replace them
    rep = test_report(frames)
    _write_report(out, _run_record(args, model_dir, list(frames), len(cases)), rep)
    print(report_text(rep) + f"\n-> {out}")
    return _report_failed(pd.concat(frames.values()))
