"""Which lungs the dose metrics of ``lungai dose-features --rtstruct`` are computed on when the RTSTRUCT has a
'Lungs-GTV' structure (QUANTEC's lungs minus the GTV) but no structure lungai takes for the GTV.

QA (dosim62): on LUNG1-003's RTSTRUCT renamed as a clinic's - Lung_R, Lung_L, Lungs-GTV and the GTV as 'GTV_60Gy'
(a name of no role) - the MLD / V20 were of Lung_R + Lung_L with the tumour in them, the clinic's Lungs-GTV left
unused, and the masks column said "no GTV (the lungs include the tumour)"; an RTSTRUCT with a Lungs-GTV and no GTV
at all was said to "include the tumour" too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dicom_helpers import array, image_like, rt_export

from lungai.dicom.rtstruct import write_rtstruct
from lungai.io import read_ct

METRICS = ["dose_mld_gy", "dose_v5_pct", "dose_v13_pct", "dose_v20_pct", "dose_v30_pct", "dose_d2_gy",
           "dose_d50_gy", "dose_d98_gy"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt_export"))


def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


def _features(st, rtstruct, out, *extra, dose=None):
    assert _cli("dose-features", "--dose", dose or st["dose"], "--ct", st["ct"], "--rtstruct", rtstruct, *extra,
                "-o", out) == 0
    return pd.read_csv(out).iloc[0]


def test_the_lungs_gtv_structure_is_used_when_no_structure_is_the_gtv(export, tmp_path):
    st = export["P1"]
    ct = read_ct(st["ct"])
    right, left, gtv = (st["masks"][n] for n in ("Lung_R", "Lung_L", "GTV"))
    lungs = array(right).astype(bool) | array(left).astype(bool)
    assert (lungs & array(gtv).astype(bool)).any()          # the phantom's lungs hold the tumour
    minus = image_like(lungs & ~array(gtv).astype(bool), ct)
    rs = write_rtstruct({"Lung_R": right, "Lung_L": left, "Lungs-GTV": minus, "GTV_60Gy": gtv}, st["reference"],
                        tmp_path / "rs.dcm")
    got = _features(st, rs, tmp_path / "out" / "a.csv")
    # the reference: the same lungs minus the same GTV, the GTV under a name lungai takes for it
    ref = _features(st, st["rtstruct"], tmp_path / "out" / "b.csv")
    with_tumour = _features(st, rs, tmp_path / "out" / "c.csv", "--structure", "Lung_R", "--structure", "Lung_L")
    assert got["masks"].startswith(f"lungs: RTSTRUCT structure Lungs-GTV ({rs}")
    assert "excludes the GTV as contoured" in got["masks"] and "include the tumour" not in got["masks"]
    np.testing.assert_allclose(got[METRICS].astype(float), ref[METRICS].astype(float), rtol=1e-9)
    assert with_tumour["dose_mld_gy"] > got["dose_mld_gy"] + 0.5     # the tumour's 60 Gy in the lungs: not this
    assert np.isnan(got["dose_gtv_mean_gy"])                         # no GTV: no GTV dose


def test_a_lungs_gtv_structure_without_a_gtv_is_not_said_to_include_the_tumour(export, tmp_path):
    st = export["P1"]
    ct = read_ct(st["ct"])
    lungs = (array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"])).astype(bool) & ~array(
        st["masks"]["GTV"]).astype(bool)
    rs = write_rtstruct({"Lungs-GTV": image_like(lungs, ct)}, st["reference"], tmp_path / "rs.dcm")
    got = _features(st, rs, tmp_path / "out" / "a.csv")
    assert got["masks"] == (f"lungs: RTSTRUCT structure Lungs-GTV ({rs}, as contoured); no GTV structure (the lung "
                            "structure excludes the GTV as contoured)")


def test_the_demo_says_a_lungs_gtv_structure_excludes_the_gtv():
    from lungai.demo.pipeline import dose_masks

    said = dose_masks({}, {"lung_source": "RTSTRUCT structure Lungs-GTV (RS.dcm, as contoured)", "gtv_source": None,
                           "envelope_source": None, "lungs_minus_gtv": True})
    assert "include the tumour" not in said["text"] and "include the tumour" not in said["masks"]
    assert said["lungs_label"] == "lungs minus GTV as contoured (RTSTRUCT)"
    plain = dose_masks({}, {"lung_source": "RTSTRUCT structure Lungs (RS.dcm, as contoured)", "gtv_source": None,
                            "envelope_source": None})
    assert "the lungs include the tumour" in plain["text"] and plain["lungs_label"] == "lungs (RTSTRUCT)"


def test_a_beam_rtdose_names_the_fix_that_sums_it_dose_features_on_its_folder(export, tmp_path, capsys):
    """QA (dosim62): `dose-features --dose RD_beam1.dcm` (a BEAM RTDOSE, as Eclipse exports one per beam) was refused
    with the fix "lungai cohort sums the BEAM doses of one plan" - not that --dose FOLDER does, as written here."""
    from dose_helpers import with_summation_type

    st = export["P1"]
    beams = tmp_path / "RTDOSE"
    beams.mkdir()
    for i, part in ((1, 0.4), (2, 0.6)):        # two beams' doses of one plan: the plan dose summed
        with_summation_type(st["dose"], beams / f"RD_beam{i}.dcm", "BEAM", plan="1.2.3.4", factor=part)
    capsys.readouterr()
    assert _cli("dose-features", "--dose", beams / "RD_beam1.dcm", "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", tmp_path / "out" / "a.csv") == 2
    err = capsys.readouterr().err
    assert "has DoseSummationType BEAM" in err and "lungai dose-features --dose FOLDER" in err
    summed = _features(st, st["rtstruct"], tmp_path / "out" / "b.csv", dose=beams)   # the fix, as written
    plan = _features(st, st["rtstruct"], tmp_path / "out" / "c.csv")
    np.testing.assert_allclose(summed[METRICS].astype(float), plan[METRICS].astype(float), rtol=1e-5, atol=1e-5)
