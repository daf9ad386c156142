"""``lungai dose-features``: mean lung dose, V5/V13/V20/V30, D2/D50/D98 and GTV dose from an RT dose."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("dose-features", help="dosimetric features (MLD, V20 ...) of the lungs minus GTV to CSV",
                       description="Reads an RTDOSE DICOM (DoseGridScaling applied) or a NIfTI/NRRD dose in Gy, "
                                   "resamples it onto the CT grid and computes lung (minus GTV) and GTV metrics.")
    p.add_argument("--dose", required=True, help="RTDOSE .dcm (or folder) or dose image in Gy")
    p.add_argument("--ct", required=True, help="planning CT (defines the grid of the masks)")
    p.add_argument("--lungs", required=True, help="lung mask on the CT grid (any label > 0 = lung)")
    p.add_argument("--gtv", default=None, help="GTV mask on the CT grid (label > 0)")
    p.add_argument("--case", default=None, help="case id (default: the CT file name)")
    p.add_argument("-o", "--output", required=True, help="output CSV (one row)")
    p.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from lungai.dose import COLUMNS, dose_features, read_dose
    from lungai.io import read_ct, read_mask
    from lungai.lungs import RT_LUNG_DEFINITION
    from lungai.radiomics.csv_output import write_csv

    ct = read_ct(args.ct)
    lungs = read_mask(args.lungs)
    gtv = read_mask(args.gtv) if args.gtv else None
    case = args.case or Path(args.ct).name.split(".")[0]
    row = dose_features(read_dose(args.dose), ct, lungs, gtv, case=case)
    write_csv(pd.DataFrame([row], columns=COLUMNS), args.output,
              protect=[p for p in (args.dose, args.ct, args.lungs, args.gtv) if p])
    print(f"{case}: MLD {row['dose_mld_gy']:.2f} Gy, V20 {row['dose_v20_pct']:.1f} % -> {args.output}")
    print(f"lungs: {RT_LUNG_DEFINITION}" + ("" if gtv is not None else
          " - no --gtv given: the lungs include the tumour"))
    return 0
