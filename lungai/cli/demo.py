"""``lungai demo``: the whole pipeline on the built-in sample (or your CT) -> report.html + scene.mrb."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run everything on the built-in sample (or --ct) and write report.html + scene.mrb",
        description="Sample phantom (or the given CT) -> lung masks -> tumour segmentation with ensemble "
                    "uncertainty -> radiomics of tumour and lungs -> dose features from a synthetic treatment "
                    "dose -> radiation-pneumonitis risk -> stage probabilities -> report.html and scene.mrb. "
                    "Offline; under a minute on 2 idle CPU cores.")
    p.add_argument("-o", "--output", default="lungai-demo", help="output folder (default: ./lungai-demo)")
    p.add_argument("--ct", default=None, help="your CT instead of the sample (DICOM folder, NIfTI, NRRD, MHA)")
    p.add_argument("--model", default=None, help="segmentation model folder (default: the shipped model)")
    p.add_argument("--seed-point", default=None,
                   help="x,y,z (LPS mm) on the tumour of --ct, as a click in Slicer; without it the tumour is "
                        "searched in the whole lungs (on the sample the tumour's position is used)")
    p.add_argument("--small", action="store_true", help="a smaller, coarser sample (quick check; tests)")
    p.add_argument("--params", default="default",
                   help="radiomics preset: default (pyradiomics settings) or ibsi-a .. ibsi-e (IBSI-1 pipeline, "
                        "values as lungai ibsi-check), or a parameter YAML file")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lungai.demo import run_demo
    from lungai.radiomics import load_params

    load_params(args.params, image_types=["Original"])  # a wrong --params fails now, not after the segmentation

    seed = None
    if args.seed_point:
        from lungai.errors import InputError

        try:
            seed = [float(v) for v in args.seed_point.split(",")]
        except ValueError:
            seed = []
        if len(seed) != 3:
            raise InputError(f"--seed-point needs three numbers x,y,z (got {args.seed_point!r})",
                             "give the point in LPS millimetres, e.g. --seed-point=-62.5,-20,-110")
    summary = run_demo(args.output, ct_path=args.ct, small=args.small, model_dir=args.model, seed_lps=seed,
                       radiomics_params=args.params)
    seg, rp, st = summary["segmentation"], summary["rp"], summary["stage"]
    out = Path(args.output)
    print(f"tumour: {seg['tumor_volume_ml']:.1f} ml, confidence {seg['confidence']:.2f}"
          f"{' - NEEDS REVIEW' if seg['needs_review'] else ''}")
    if summary.get("truth_dice") is not None:
        print(f"Dice against the phantom's planted tumour: {summary['truth_dice']:.2f}")
    print(f"mean lung dose {summary['dose']['dose_mld_gy']:.1f} Gy; RP risk {rp['risk']:.0%} "
          f"({rp['risk_low']:.0%}-{rp['risk_high']:.0%}); stage: {st['predicted']}")
    print(f"report: {out / 'report.html'}\nscene:  {out / 'scene.mrb'} (open in 3D Slicer)\n"
          f"total {summary['timings']['total_s']:.0f} s")
    return 0
