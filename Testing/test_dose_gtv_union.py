"""Which GTV the GTV dose of ``lungai dose-features --rtstruct`` is of when the RTSTRUCT has several GTVs.

QA radfollow69 (LUNG1-003's DICOM CT + RTSTRUCT, a dose covering GTV-1 only): ``dose_gtv_mean/min/max_gy`` were of
GTV-1 + gtv-2 + gtv-3 together (GTV min 2.2 Gy, mean 28.9 Gy while GTV-1 got 60 Gy) without a word; ``lungai
radiomics`` in the same case says "tumour = union of ...; use --tumour role:gtv_primary".  dose-features now says it
with the same words (for --gtv), and ``--gtv role:gtv_primary`` / ``--gtv NAME`` give the GTV dose of that GTV alone
while the lungs of the MLD / V20 stay the lungs minus every GTV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dicom_helpers import array, image_like, rt_export

from lungai.dicom.rtstruct import write_rtstruct
from lungai.io import read_ct

LUNG_METRICS = ["dose_mld_gy", "dose_v5_pct", "dose_v13_pct", "dose_v20_pct", "dose_v30_pct", "dose_d2_gy",
                "dose_d50_gy", "dose_d98_gy"]
GTV_METRICS = ["dose_gtv_mean_gy", "dose_gtv_min_gy", "dose_gtv_max_gy"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """P1's export with an RTSTRUCT of Lung_R, Lung_L, the primary GTV-1 (the phantom's tumour, in the dose's high
    region) and a nodal GTV-2 in the lungs far from it (low dose); also one with GTV-1 alone."""
    root = tmp_path_factory.mktemp("rt_export")
    st = rt_export(root)["P1"]
    ct = read_ct(st["ct"])
    gtv = array(st["masks"]["GTV"]).astype(bool)
    lungs = array(st["masks"]["Lung_R"]).astype(bool) | array(st["masks"]["Lung_L"]).astype(bool)
    dose = array(st["dose_image"])
    # a 3 x 4 x 4 block of lung voxels (rows of the CT grid) as far from the tumour as the lungs allow
    k, j, i = np.nonzero(gtv)
    centre = np.array([k.mean(), j.mean(), i.mean()])
    node = np.zeros_like(gtv)
    best = None
    for z in range(0, gtv.shape[0] - 3, 2):
        for y in range(0, gtv.shape[1] - 4, 2):
            for x in range(0, gtv.shape[2] - 4, 2):
                block = (slice(z, z + 3), slice(y, y + 4), slice(x, x + 4))
                if lungs[block].all() and not gtv[block].any():
                    d = np.linalg.norm(np.array([z + 1, y + 1.5, x + 1.5]) - centre)
                    if best is None or d > best[0]:
                        best = (d, block)
    node[best[1]] = True
    assert dose.max() > 40
    rs = write_rtstruct({"Lung_R": st["masks"]["Lung_R"], "Lung_L": st["masks"]["Lung_L"],
                         "GTV-1": st["masks"]["GTV"], "GTV-2": image_like(node, ct)}, st["reference"],
                        root / "rs_two_gtvs.dcm")
    one = write_rtstruct({"Lung_R": st["masks"]["Lung_R"], "Lung_L": st["masks"]["Lung_L"],
                          "GTV-1": st["masks"]["GTV"]}, st["reference"], root / "rs_gtv1.dcm")
    return {**st, "rs": rs, "rs_gtv1": one}


def _features(st, rtstruct, out, *extra):
    from lungai.cli import main

    assert main([str(a) for a in ("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", rtstruct,
                                  *extra, "-o", out)]) == 0
    return pd.read_csv(out).iloc[0]


def test_a_gtv_of_several_structures_is_said_with_how_to_take_the_primary(study, tmp_path, capsys):
    got = _features(study, study["rs"], tmp_path / "all.csv")
    out = capsys.readouterr().out
    # radiomics' words, for --gtv (lungai.cli.radiomics.union_note: one wording)
    assert ("note: GTV = union of GTV-1, GTV-2 (the GTV dose dose_gtv_mean/min/max_gy is of them all; the lung "
            "metrics are of the lungs minus every GTV, whichever GTV is taken); use --gtv role:gtv_primary (GTV-1) for "
            "the primary GTV only, or --gtv NAME for one structure") in out, out
    assert out.count("union of") == 1
    primary = _features(study, study["rs_gtv1"], tmp_path / "gtv1.csv")
    assert "union of" not in capsys.readouterr().out          # one GTV: no note
    # the node's low dose is in the GTV dose of the union: its minimum and mean below the primary's
    assert got["dose_gtv_min_gy"] < primary["dose_gtv_min_gy"] - 5
    assert got["dose_gtv_mean_gy"] < primary["dose_gtv_mean_gy"]
    assert "minus GTV: RTSTRUCT structure GTV-1 + GTV-2 (" in got["masks"]


@pytest.mark.parametrize("gtv", ["role:gtv_primary", "GTV-1", "gtv-1"])
def test_the_primary_gtv_taken_keeps_every_gtv_out_of_the_lungs(study, tmp_path, capsys, gtv):
    all_gtvs = _features(study, study["rs"], tmp_path / "all.csv")
    alone = _features(study, study["rs_gtv1"], tmp_path / "gtv1.csv")     # GTV-1 the only GTV: lungs minus GTV-1
    capsys.readouterr()
    got = _features(study, study["rs"], tmp_path / "primary.csv", "--gtv", gtv)
    out = capsys.readouterr().out
    assert "union of" not in out, out
    # the GTV dose of GTV-1 alone
    np.testing.assert_allclose(got[GTV_METRICS].astype(float), alone[GTV_METRICS].astype(float), rtol=1e-9)
    # the lungs minus GTV-1 and GTV-2, as without --gtv, not minus GTV-1 alone (the node's voxels counted as lung)
    np.testing.assert_allclose(got[LUNG_METRICS].astype(float), all_gtvs[LUNG_METRICS].astype(float), rtol=1e-9)
    assert got["dose_mld_gy"] != alone["dose_mld_gy"]
    rs = study["rs"]
    assert got["masks"].endswith(f"; minus GTV: RTSTRUCT structure GTV-1 + GTV-2 ({rs}, as contoured); GTV dose: "
                                 f"RTSTRUCT structure GTV-1 ({rs}, as contoured)"), got["masks"]
    assert "GTV-1 + GTV-2" in out and "GTV dose: RTSTRUCT structure GTV-1 (" in out       # the masks, said


def test_every_gtv_given_is_as_the_default(study, tmp_path, capsys):
    default = _features(study, study["rs"], tmp_path / "a.csv")
    given = _features(study, study["rs"], tmp_path / "b.csv", "--gtv", "role:gtv")
    assert given["masks"] == default["masks"] and "GTV dose:" not in given["masks"]
    np.testing.assert_allclose(given[LUNG_METRICS + GTV_METRICS].astype(float),
                               default[LUNG_METRICS + GTV_METRICS].astype(float), rtol=1e-12)


def test_demo_rtstruct_says_the_gtv_dose_of_several_gtvs_in_dose_features_words(study, tmp_path, capsys):
    """QA cohortdose69: ``lungai demo --rtstruct`` (LUNG1-003: GTV-1, gtv-2, gtv-3) gave the GTV dose of every GTV
    without a word, and has no --gtv: it says it as dose-features does (one function, gtv_union_note), naming the
    command that takes the primary GTV alone; its metrics are dose-features' (the lungs minus every GTV)."""
    import json

    from lungai.cli import main

    union = _features(study, study["rs"], tmp_path / "all.csv")
    capsys.readouterr()
    ct = read_ct(study["ct"])
    k, j, i = np.nonzero(array(study["masks"]["GTV"]))
    centre = ct.TransformContinuousIndexToPhysicalPoint([float(i.mean()), float(j.mean()), float(k.mean())])
    out = tmp_path / "demo"
    assert main(["demo", "--ct", str(study["ct"]), "--seed-point=" + ",".join(f"{v:.2f}" for v in centre),
                 "--dose", str(study["dose"]), "--rtstruct", str(study["rs"]), "-o", str(out)]) == 0
    said = ("GTV = union of GTV-1, GTV-2 (the GTV dose dose_gtv_mean/min/max_gy is of them all; the lung metrics are "
            "of the lungs minus every GTV, whichever GTV is taken); use lungai dose-features --ct CT --dose RTDOSE "
            "--rtstruct RTSTRUCT --gtv role:gtv_primary (GTV-1) for the primary GTV only, or --gtv NAME for one "
            "structure")
    printed = capsys.readouterr().out
    assert printed.count(said) == 1, printed
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert said in summary["dose_note"], summary["dose_note"]
    assert said in (out / "report.html").read_text(encoding="utf-8").replace("&#x27;", "'")
    for column in LUNG_METRICS + GTV_METRICS:
        assert summary["dose"][column] == pytest.approx(float(union[column]), rel=1e-9), column


def test_the_union_note_names_a_gtv_the_mapping_hides_as_not_subtracted(study, tmp_path, capsys):
    """QA cohortfollow70: with ``--structure-map`` ``GTV-3: null`` the note still said "the lung metrics are of the
    lungs minus every GTV" beside the warning that the hidden GTV-3 is not subtracted from the lungs.  Now it says
    every GTV but the hidden one (dose-features, cohort and demo --rtstruct: one function, gtv_union_note)."""
    gtv = study["masks"]["GTV"]
    rs = write_rtstruct({"Lung_R": study["masks"]["Lung_R"], "Lung_L": study["masks"]["Lung_L"], "GTV-1": gtv,
                         "GTV-2": gtv, "GTV-3": gtv}, study["reference"], tmp_path / "rs_three_gtvs.dcm")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("GTV-3: null\n", encoding="utf-8")
    _features(study, rs, tmp_path / "hidden.csv", "--structure-map", mapping)
    out = capsys.readouterr().out
    assert "GTV = union of GTV-1, GTV-2 (" in out, out
    assert "lungs minus every GTV but the hidden GTV-3 (mapped to null: not subtracted, it stays in the lungs)" in out
    assert "minus every GTV," not in out, out
    # a structure hidden that is no GTV: the note as before
    mapping.write_text("Lung_L: null\n", encoding="utf-8")
    from lungai.cli.dose import gtv_union_note

    note = gtv_union_note(["GTV-1", "GTV-2", "GTV-3"], str(mapping), rtstruct=rs)
    assert "minus every GTV, whichever GTV is taken" in note and "hidden" not in note, note
