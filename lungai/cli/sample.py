"""``lungai sample``: write the built-in sample phantom (or a custom one)."""

from __future__ import annotations

from lungai.cli.radiomics import seed_number


def register(sub) -> None:
    p = sub.add_parser("sample", help="write the built-in synthetic chest-CT sample (ct, labels, meta)",
                       description="Write a deterministic synthetic chest CT with known ground truth: "
                                   "ct.nii.gz (int16 HU), labels.nii.gz (see lungai.synthetic.labels), meta.json.")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--seed", type=seed_number, default=None, help="random seed (default: the built-in sample's)")
    p.add_argument("--diameter", type=float, default=None, help="tumour diameter in mm (5-100)")
    p.add_argument("--location", choices=["free", "juxta_pleural", "juxta_vascular", "central"], default=None,
                   help="where the tumour lies: free-standing in the lung (free), touching the chest wall "
                        "(juxta_pleural), beside a vessel (juxta_vascular) or at the hilum / mediastinum (central); "
                        "default: the built-in sample's, juxta_pleural")
    p.add_argument("--shape", choices=["round", "lobulated", "spiculated"], default=None,
                   help="the tumour's outline (default: the built-in sample's, lobulated)")
    p.add_argument("--side", choices=["right", "left"], default=None,
                   help="the lung the tumour lies in (default: the built-in sample's, right)")
    p.add_argument("--slice-thickness", type=float, default=None, help="z spacing in mm (1-5)")
    p.add_argument("--ground-glass", action="store_true", help="add a ground-glass component")
    p.add_argument("--atelectasis", action="store_true", help="add atelectasis next to the tumour (hard case)")
    p.add_argument("--effusion", action="store_true", help="add a pleural effusion (hard case)")
    p.add_argument("--no-tumour", action="store_true", help="a phantom without tumour")
    p.add_argument("--dicom", action="store_true",
                   help="also write it as a DICOM RT export in <output>/dicom/LUNGAI-SAMPLE/: CT series, RTSTRUCT "
                        "(GTV, Lung_R, Lung_L) and RTDOSE (a synthetic treatment dose)")
    p.set_defaults(func=run)


# what `lungai sample -o` writes (and `dicom/` with --dicom); marker .lungai-sample
SAMPLE_OUTPUTS = ("ct.nii.gz", "labels.nii.gz", "meta.json")


def run(args) -> int:
    import json

    from lungai.io.outputs import claimed_output_folder, prepare_output_folder
    from lungai.progress import task, timer_running, waiting
    from lungai.synthetic import SAMPLE_SEED, make_phantom, sample_spec, write_phantom
    from lungai.synthetic.phantom import PHANTOM_STEPS

    owns = SAMPLE_OUTPUTS + (("dicom",) if args.dicom else ())
    # before any work: nothing is computed in vain, and a user's file of an output name is never replaced
    prepare_output_folder(args.output, owner="sample", owns=owns)
    spec = sample_spec()
    t = spec.tumour
    for name in ("diameter", "location", "shape", "side"):
        value = getattr(args, name)
        if value is not None:
            setattr(t, "diameter_mm" if name == "diameter" else name, value)
    t.ground_glass |= args.ground_glass
    t.atelectasis |= args.atelectasis
    if args.effusion:
        spec.effusion, spec.effusion_side = True, t.side
    if args.slice_thickness is not None:
        nz = max(16, round(spec.shape[2] * spec.spacing[2] / args.slice_thickness))
        spec.shape = (spec.shape[0], spec.shape[1], nz)
        spec.spacing = (spec.spacing[0], spec.spacing[1], args.slice_thickness)
    if args.no_tumour:
        spec.tumour = None
    # the phantom's own steps (anatomy, tumour, noise) move the bar, then each output written; the seconds of each
    # said every ~2 s while it runs (QA demo68: in a log, the anatomy stood 7-17 s and the tumour 2-6 s without a line)
    with task("sample", PHANTOM_STEPS + (2 if args.dicom else 1)) as bar:
        # "making the phantom" and its seconds until its anatomy is built; its later steps (planting the tumour,
        # averaging the slices) say their own start and seconds (make_phantom) - one ticker at a time (QA
        # demofollow68: a ticker of "making the phantom" beside theirs said two things at once)
        bar.update(0, "making the phantom")
        with timer_running(bar):
            phantom = make_phantom(spec, progress=bar, seed=SAMPLE_SEED if args.seed is None else args.seed)
        # an earlier sample's files are replaced; a file of the user's in dicom/ is kept (and refused if in the way)
        study_dir = "dicom/LUNGAI-SAMPLE"
        writes = ([f"{study_dir}/CT/ct_{k + 1:04d}.dcm" for k in range(phantom.ct.GetDepth())]
                  + [f"{study_dir}/RTSTRUCT/rtstruct.dcm", f"{study_dir}/RTDOSE/rtdose.dcm"]) if args.dicom else []
        with claimed_output_folder(args.output, "sample", owns, writes=writes):
            paths = waiting(bar, "writing ct.nii.gz, labels.nii.gz, meta.json", write_phantom, phantom, args.output,
                            finish_on_stop=True)
            bar.update(1, "written")
            if args.dicom:
                from pathlib import Path

                from lungai.dicom.synthetic import write_rt_study

                study = waiting(bar, "writing the DICOM RT export", write_rt_study, Path(args.output) / "dicom", phantom,
                                "LUNGAI-SAMPLE", dose="relative", finish_on_stop=True)
                bar.update(1, "DICOM RT export")
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    tumour = meta["tumour"]
    print(f"wrote {paths['ct']}, {paths['labels']}, {paths['meta']}")
    if args.dicom:
        print(f"DICOM RT export: {study['root']} (CT/, RTSTRUCT/, RTDOSE/)")
    if tumour:
        print(f"tumour: {tumour['diameter_mm']} mm {tumour['shape']} {tumour['location']} in the {tumour['side']} lung, "
              f"{tumour['volume_ml']} ml")
    return 0
