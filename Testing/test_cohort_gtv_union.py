"""The GTV dose of ``lungai cohort`` when the RTSTRUCT has several GTVs (QA cohortdose69).

LUNG1-003's real DICOM CT + RTSTRUCT (GTV-1, gtv-2, gtv-3) with an RTDOSE of the repository's helpers: cohort's tumour
and GTV dose are the union of every GTV (dose_gtv_mean/min/max_gy of GTV-1 + gtv-3 + gtv-2) and it said nothing of it
(``lungai dose-features --rtstruct`` says it: QA radfollow69).  It now says it in dose-features' words
(:func:`lungai.cli.dose.gtv_union_note`, one place), naming the command that takes the primary GTV alone (cohort has
no ``--gtv``), on stderr and in the patient's notes; that command gives the primary's GTV dose with the lungs still
minus every GTV.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dose_helpers import lung1_003_plan_dose, write_rtdose

LUNG_METRICS = ["dose_mld_gy", "dose_v5_pct", "dose_v13_pct", "dose_v20_pct", "dose_v30_pct", "dose_d2_gy",
                "dose_d50_gy", "dose_d98_gy"]
GTV_METRICS = ["dose_gtv_mean_gy", "dose_gtv_min_gy", "dose_gtv_max_gy"]
SAID = ("GTV = union of GTV-1, gtv-3, gtv-2 (the GTV dose dose_gtv_mean/min/max_gy is of them all; the lung metrics "
        "are of the lungs minus every GTV, whichever GTV is taken); use {via}--gtv role:gtv_primary (GTV-1) for the "
        "primary GTV only, or --gtv NAME for one structure")
VIA = "lungai dose-features --ct CT --dose RTDOSE --rtstruct RTSTRUCT "


@pytest.mark.shared_data
def test_cohort_says_the_gtv_dose_of_several_gtvs_in_dose_features_words(shared_data, tmp_path, capsys):
    from lungai.cli import main

    ct, rs, reference, dose = lung1_003_plan_dose(shared_data)
    patient = tmp_path / "export" / "LUNG1-003"
    patient.mkdir(parents=True)
    for sub, src in (("CT", ct), ("RTSTRUCT", rs)):       # links: no copy of the patient's data
        (patient / sub).symlink_to(src, target_is_directory=True)
    rd = write_rtdose(dose, patient / "RTDOSE" / "rd.dcm", reference=reference)
    out = tmp_path / "out"
    assert main(["cohort", str(tmp_path / "export"), "-o", str(out), "--workers", "0"]) == 0
    err = capsys.readouterr().err
    # said once, on stderr as a note, with the command that takes the primary GTV (cohort has no --gtv)
    assert err.count("note: LUNG1-003: " + SAID.format(via=VIA)) == 1, err
    doc = json.loads((out / "patients" / "LUNG1-003" / "result.json").read_text(encoding="utf-8"))
    assert SAID.format(via=VIA) in doc["notes"], doc["notes"]
    row = pd.read_csv(out / "rp_table.csv").iloc[0]

    def features(name, *extra):
        assert main(["dose-features", "--dose", str(rd), "--ct", str(ct), "--rtstruct", str(rs), *extra,
                     "-o", str(tmp_path / name)]) == 0
        return pd.read_csv(tmp_path / name).iloc[0], capsys.readouterr().out

    # dose-features' note: the same words (one function), its own --gtv
    union, said = features("union.csv")
    assert "note: " + SAID.format(via="") in said, said
    pd.testing.assert_series_equal(row[LUNG_METRICS + GTV_METRICS].astype(float),
                                   union[LUNG_METRICS + GTV_METRICS].astype(float), rtol=1e-9, check_names=False)
    # the command the note names: GTV-1's dose alone, the lungs still minus every GTV (cohort's lung metrics)
    primary, said = features("primary.csv", "--gtv", "role:gtv_primary")
    assert "union of" not in said
    pd.testing.assert_series_equal(row[LUNG_METRICS].astype(float), primary[LUNG_METRICS].astype(float), rtol=1e-9,
                                   check_names=False)
    assert "GTV dose: RTSTRUCT structure GTV-1 (" in primary["masks"], primary["masks"]
