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


@pytest.mark.parametrize("layout", ["beside_lung_r_and_l", "alone", "beside_lungs"])
def test_cohort_takes_the_lungs_gtv_structure_when_no_structure_is_the_gtv_as_dose_features(export, tmp_path,
                                                                                             monkeypatch, layout):
    """QA (lungsgtv62): lungai cohort on the same RTSTRUCT (Lung_R, Lung_L, Lungs-GTV, 'GTV_60Gy' of no role) computed
    the MLD / V20 on Lung_R + Lung_L minus the automatic tumour, with the automatic tumour's dose as the GTV's, while
    dose-features --rtstruct takes the clinic's Lungs-GTV.  One rule now (lungai.dicom.roles.dose_lungs_role's gtv):
    the dose metrics are of Lungs-GTV (no GTV dose), and patients.csv / the provenance say which lungs were used.
    QA (cohortprov62): beside a 'Lungs' structure the provenance said "RTSTRUCT structure Lungs (dose features and
    whole-lung radiomics; ...); the dose features' RTSTRUCT structure Lungs-GTV ...": each use names its own now."""
    import shutil
    from types import SimpleNamespace

    import SimpleITK as sitk

    from cohort_helpers import PARAMS
    from lungai.dicom.cohort import dose_lungs_minus_gtv_names, inputs_change, plan_cohort, process_patient
    from lungai.seg import infer, model_io, resources

    st = export["P1"]
    ct = read_ct(st["ct"])
    right, left, gtv = (st["masks"][n] for n in ("Lung_R", "Lung_L", "GTV"))
    lungs = array(right).astype(bool) | array(left).astype(bool)
    minus = image_like(lungs & ~array(gtv).astype(bool), ct)
    root = tmp_path / "export"
    shutil.copytree(st["ct"], root / "P1" / "CT")
    shutil.copytree(st["dose"].parent, root / "P1" / "RTDOSE")
    # alone: the only lung structure (before: Lungs-GTV minus the automatic tumour, whose dose was the GTV's)
    sides = layout == "beside_lung_r_and_l"
    others = ({"Lung_R": right, "Lung_L": left} if sides else
              {"Lungs": image_like(lungs, ct)} if layout == "beside_lungs" else {})
    rs = write_rtstruct({**others, "Lungs-GTV": minus,
                         "GTV_60Gy": gtv}, st["reference"], root / "P1" / "RTSTRUCT" / "rs.dcm")
    expected = _features(st, rs, tmp_path / "out" / "a.csv")        # dose-features --rtstruct: Lungs-GTV
    elsewhere = array(gtv).astype(bool)
    elsewhere = np.roll(elsewhere, 6, axis=2) & lungs & ~elsewhere  # the automatic tumour: lung beside the GTV

    def segment(image, model, seed=0, progress=None):      # quick and known (the model is not under test)
        return SimpleNamespace(tumour=image_like(elsewhere, image), info={
            "confidence": 0.4, "needs_review": True, "review_reasons": ["low confidence"], "method": "ensemble"})

    monkeypatch.setattr(infer, "segment_tumour", segment)
    monkeypatch.setattr(model_io, "load_model", lambda mdir: None)
    monkeypatch.setattr(resources, "resolve_model_dir", lambda d: tmp_path)
    monkeypatch.setattr("lungai.seg.model_meta.model_identity", lambda d: {"folder": str(d)})
    jobs, inv = plan_cohort(root)
    lungs_from = inv.set_index("patient_id").loc["P1", "lungs_from"]
    assert lungs_from.startswith("RTSTRUCT Lung_R+Lung_L (dose features: Lungs-GTV, the lungs minus the GTV as "
                                 "contoured") if sides else lungs_from.startswith(
        "RTSTRUCT Lungs (no per-side lung radiomics) (dose features: Lungs-GTV") if others else \
        lungs_from.startswith("RTSTRUCT Lungs-GTV"), lungs_from
    assert dose_lungs_minus_gtv_names(rs) == ["Lungs-GTV"]   # recorded in the inputs: an older result is redone
    same = {"rtstruct": {"file": "rs.dcm"}, "rtdose": [{"file": "rd.dcm"}]}
    assert "computed on the lungs minus the automatic tumour" in inputs_change(
        same, {**same, "dose_lungs_minus_gtv": ["Lungs-GTV"]})
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "cohort"))
    assert doc["status"] == "done", doc
    row = pd.read_csv(tmp_path / "cohort" / "patients" / "P1" / "features.csv").iloc[0]
    np.testing.assert_allclose(row[METRICS].astype(float), expected[METRICS].astype(float), rtol=1e-9)
    assert np.isnan(row["dose_gtv_mean_gy"])                 # as dose-features: no GTV dose (not the automatic one's)
    assert "lungs: RTSTRUCT structure Lungs-GTV, the lungs minus the GTV as contoured" in doc["provenance"]["dose"]
    assert "automatic tumour" not in doc["provenance"]["dose"]
    assert ("the dose features' RTSTRUCT structure Lungs-GTV" if others else "RTSTRUCT structure Lungs-GTV (dose "
            "features") in doc["provenance"]["lungs"]
    if layout == "beside_lungs":    # Lungs: the whole-lung radiomics only, not said to be the dose features' too
        assert doc["provenance"]["lungs"].startswith("RTSTRUCT structure Lungs (whole-lung radiomics; no right / "
                                                     "left lung structures"), doc["provenance"]["lungs"]
        assert doc["provenance"]["lungs"].count("dose features") == 1, doc["provenance"]["lungs"]
        assert any(g.get("segment") == "lungs" for g in doc["radiomics_grid"])   # the whole-lung radiomics of Lungs
    assert "radiomics only: the dose metrics are of the RTSTRUCT's Lungs-GTV" in doc["provenance"]["tumour"]
    tumour = sitk.ReadImage(str(tmp_path / "cohort" / "patients" / "P1" / "tumour.nii.gz"))
    assert sitk.GetArrayViewFromImage(tumour).any()                  # radiomics: the automatic tumour


@pytest.mark.parametrize("structure", ["Lungs", "Lungs-GTV"])
def test_cohort_without_rtdose_names_no_dose_features_in_the_lungs_provenance(export, tmp_path, monkeypatch,
                                                                                structure):
    """QA (cohortdose62): with no RTDOSE at all, an RTSTRUCT of only Lungs + GTV gave the provenance "RTSTRUCT
    structure Lungs (dose features and whole-lung radiomics; ...)" (Lungs-GTV: "dose features and lungs_minus_tumour
    radiomics") though no dose feature was computed: the provenance names only what the structure was used for."""
    import shutil

    from cohort_helpers import PARAMS
    from lungai.dicom.cohort import plan_cohort, process_patient
    from lungai.seg import infer, model_io, resources

    st = export["P1"]
    ct = read_ct(st["ct"])
    right, left, gtv = (st["masks"][n] for n in ("Lung_R", "Lung_L", "GTV"))
    lungs = array(right).astype(bool) | array(left).astype(bool)
    mask = lungs & ~array(gtv).astype(bool) if structure == "Lungs-GTV" else lungs
    root = tmp_path / "export"
    shutil.copytree(st["ct"], root / "P1" / "CT")       # no RTDOSE
    write_rtstruct({structure: image_like(mask, ct), "GTV": gtv}, st["reference"],
                   root / "P1" / "RTSTRUCT" / "rs.dcm")

    def segment(image, model, seed=0, progress=None):      # never called: the RTSTRUCT has a GTV
        raise AssertionError("the automatic tumour was run beside the RTSTRUCT's GTV")

    monkeypatch.setattr(infer, "segment_tumour", segment)
    monkeypatch.setattr(model_io, "load_model", lambda mdir: None)
    monkeypatch.setattr(resources, "resolve_model_dir", lambda d: tmp_path)
    jobs, _ = plan_cohort(root)
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "cohort"))
    assert doc["status"] == "done", doc
    said = doc["provenance"]["lungs"]
    assert doc["provenance"]["dose"].startswith("no RTDOSE"), doc["provenance"]
    assert "dose" not in said, said
    assert said.startswith(f"RTSTRUCT structure {structure} ("
                           + ("whole-lung radiomics;" if structure == "Lungs" else
                              "lungs_minus_tumour radiomics, no whole-lung radiomics;")), said
