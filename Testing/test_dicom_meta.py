"""What lungai's DICOM objects say of themselves (QA on LUNG1-003, branch dicom-meta): lungs lungai made are
AUTOMATIC (SlicerLungAI) in a dicom-export, a user's MANUAL; each command's objects have their own SeriesNumber;
a DICOM SEG given to ``lungai radiomics --mask`` names its segments by their SegmentLabel; each lung has its own
display colour (one table, lungai.terminology).

On a synthetic DICOM RT export (Testing/dicom_helpers.py); the real-data check is marked ``shared_data``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import array, image_like, rt_export

from lungai import __version__
from lungai.io import read_ct


def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """P1 of a synthetic export, its GTV as a NIfTI mask, and `lungai lungs`' output of its CT."""
    root = tmp_path_factory.mktemp("meta")
    st = rt_export(root / "rt")["P1"]
    ct = read_ct(st["ct"])
    gtv = array(st["masks"]["GTV"]) > 0
    sitk.WriteImage(image_like(gtv, ct), str(root / "gtv.nii.gz"))
    (root / "lungs").mkdir()
    assert _cli("lungs", st["ct"], "-o", root / "lungs" / "lungs.nii.gz") == 0
    return dict(st=st, ct=ct, gtv=gtv, root=root, lungs=root / "lungs" / "lungs.nii.gz")


def _generation(folder):
    """{segment label: (SegmentAlgorithmType, algorithm name, version)} of results.seg.dcm and {ROI name:
    ROIGenerationAlgorithm} of rtstruct.dcm."""
    seg = pydicom.dcmread(folder / "results.seg.dcm")
    segs = {}
    for s in seg.SegmentSequence:
        algo = s.get("SegmentationAlgorithmIdentificationSequence")
        segs[s.SegmentLabel] = (s.SegmentAlgorithmType, algo[0].AlgorithmName if algo else None,
                                algo[0].AlgorithmVersion if algo else None)
    rt = pydicom.dcmread(folder / "rtstruct.dcm")
    return segs, {r.ROIName: r.ROIGenerationAlgorithm for r in rt.StructureSetROISequence}


AUTO = ("AUTOMATIC", "SlicerLungAI", __version__)


def test_lungs_lungai_made_are_exported_as_automatic_a_users_as_manual(case, tmp_path):
    """QA: dicom-export hard-coded the lungs as MANUAL, so `lungai lungs`' / the demo's automatic lungs reached the
    planning system as a clinician's contours."""
    st = case["st"]
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", case["lungs"], "-o", tmp_path / "a") == 0
    segs, rois = _generation(tmp_path / "a")
    assert segs == {"Right lung": AUTO, "Left lung": AUTO}
    assert rois == {"Lung_R": "AUTOMATIC", "Lung_L": "AUTOMATIC"}
    # the same map copied by the user elsewhere (no lungai marker lists it there): the user's
    user = tmp_path / "mine" / "lungs.nii.gz"
    user.parent.mkdir()
    shutil.copy(case["lungs"], user)
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", user, "-o", tmp_path / "b") == 0
    segs, rois = _generation(tmp_path / "b")
    assert segs == {"Right lung": ("MANUAL", None, None), "Left lung": ("MANUAL", None, None)}
    assert rois == {"Lung_R": "MANUAL", "Lung_L": "MANUAL"}


def test_a_demo_folders_lungs_are_automatic_and_an_edited_map_manual(case, tmp_path):
    from lungai.io.outputs import record_outputs

    st, demo = case["st"], tmp_path / "demo"
    demo.mkdir()
    shutil.copy(case["root"] / "gtv.nii.gz", demo / "tumor.nii.gz")
    shutil.copy(case["lungs"], demo / "lungs.nii.gz")
    record_outputs(demo, "demo", [demo / "tumor.nii.gz", demo / "lungs.nii.gz"])   # as `lungai demo` records them
    assert _cli("dicom-export", "--ct", st["ct"], "--results", demo, "-o", tmp_path / "a") == 0
    segs, rois = _generation(tmp_path / "a")
    assert segs["Right lung"] == segs["Left lung"] == AUTO
    assert rois["Lung_R"] == rois["Lung_L"] == "AUTOMATIC"
    # no result.json: the tumour follows its file as the lungs do (QA cohortdose62: it was MANUAL though the demo's
    # marker lists it unchanged) - lungai's, without a confidence
    assert segs["Tumour"][:2] == ("AUTOMATIC", "SlicerLungAI") and rois["GTVp"] == "AUTOMATIC", segs
    # the user edits the demo's lungs and tumour (saved anew): no longer lungai's as written
    for name in ("lungs.nii.gz", "tumor.nii.gz"):
        img = sitk.ReadImage(str(demo / name))
        sitk.WriteImage(img, str(demo / name))
    assert _cli("dicom-export", "--ct", st["ct"], "--results", demo, "-o", tmp_path / "b") == 0
    segs, rois = _generation(tmp_path / "b")
    assert segs["Right lung"][0] == rois["Lung_R"] == "MANUAL"
    assert segs["Tumour"][0] == rois["GTVp"] == "MANUAL"


def test_each_command_writes_its_own_series_numbers(case, tmp_path):
    """QA: every SEG was series 300 and every RTSTRUCT 301, whatever command wrote it."""
    st, lungs = case["st"], case["lungs"]
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", case["root"] / "gtv.nii.gz", "--lungs", lungs,
                "-o", tmp_path / "x") == 0
    series = lambda p: int(pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber)   # noqa: E731
    assert series(lungs.with_name("lungs.seg.dcm")) != series(tmp_path / "x" / "results.seg.dcm")
    assert series(lungs.with_name("lungs.rtstruct.dcm")) != series(tmp_path / "x" / "rtstruct.dcm")
    from lungai.dicom.seg import SERIES_NUMBERS

    numbers = [n for kinds in SERIES_NUMBERS.values() for n in kinds.values()]
    assert len(numbers) == len(set(numbers))
    assert series(lungs.with_name("lungs.seg.dcm")) == SERIES_NUMBERS["lungs"]["seg"] == 320
    assert series(lungs.with_name("lungs.rtstruct.dcm")) == SERIES_NUMBERS["lungs"]["rtstruct"] == 321
    assert series(tmp_path / "x" / "results.seg.dcm") == SERIES_NUMBERS["dicom-export"]["seg"] == 300
    assert series(tmp_path / "x" / "rtstruct.dcm") == SERIES_NUMBERS["dicom-export"]["rtstruct"] == 301
    # `lungai segment`'s objects (export_results as it calls it): its own numbers, its own UIDs
    from lungai.dicom.export import export_results, reference_for

    ref = reference_for(st["ct"], case["ct"])
    written = export_results(ref, tmp_path / "s", tumour=sitk.ReadImage(str(case["root"] / "gtv.nii.gz")),
                             seg_name="tumor.seg.dcm", series="segment")
    assert [series(p) for p in written] == [310, 311, 313]      # SEG, RTSTRUCT, SR (its volume)
    uid = lambda p: pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID     # noqa: E731
    assert uid(written[0]) != uid(tmp_path / "x" / "results.seg.dcm")


def _lab(rgb):
    import highdicom as hd

    return list(hd.color.CIELabColor.from_rgb(*rgb).value)


def test_each_lung_has_its_own_colour_in_the_seg_and_rtstruct(case):
    """QA: Lung_R and Lung_L were both 197 165 145 in every RTSTRUCT lungai wrote."""
    lungs = case["lungs"]
    rt = pydicom.dcmread(lungs.with_name("lungs.rtstruct.dcm"))
    names = {r.ROINumber: r.ROIName for r in rt.StructureSetROISequence}
    colours = {names[c.ReferencedROINumber]: [int(v) for v in c.ROIDisplayColor] for c in rt.ROIContourSequence}
    assert colours["Lung_R"] != colours["Lung_L"]
    from lungai.terminology import COLOURS

    assert colours == {"Lung_R": list(COLOURS["lung_right"]), "Lung_L": list(COLOURS["lung_left"])}
    seg = pydicom.dcmread(lungs.with_name("lungs.seg.dcm"))
    lab = {s.SegmentLabel: [int(v) for v in s.RecommendedDisplayCIELabValue] for s in seg.SegmentSequence}
    assert lab == {"Right lung": _lab(COLOURS["lung_right"]), "Left lung": _lab(COLOURS["lung_left"])}


def test_slicer_segment_colours_are_the_dicom_ones():
    pytest.importorskip("slicer")
    from lungai import mrml
    from lungai.terminology import COLOURS

    for name, role in (("Tumor", "gtv"), ("Right lung", "lung_right"), ("Left lung", "lung_left")):
        assert tuple(round(c * 255) for c in mrml.COLORS[name]) == COLOURS[role]


def test_radiomics_of_a_seg_names_its_segments_by_their_segment_label(case, tmp_path):
    """QA: `lungai radiomics --mask tumor.seg.dcm` (also '#Tumour') named the segment label_1, not Tumour."""
    st = case["st"]
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", case["root"] / "gtv.nii.gz", "-o", tmp_path / "x") == 0
    seg = tmp_path / "x" / "results.seg.dcm"
    shape = ["--image-types", "Original", "--feature-classes", "shape"]
    for i, (mask, label) in enumerate(((seg, []), (f"{seg}#Tumour", []), (f"{seg}#role:gtv", []),
                                       (seg, ["--label", "gtv=1"]))):
        out = tmp_path / f"r{i}.csv"
        assert _cli("radiomics", "--image", st["ct"], "--mask", mask, *label, *shape, "-o", out) == 0
        assert set(pd.read_csv(out).segment) == ({"gtv"} if label else {"Tumour"}), mask
    # a SEG of several segments (the lungs): each by its label
    out = tmp_path / "lungs.csv"
    assert _cli("radiomics", "--image", st["ct"], "--mask", case["lungs"].with_name("lungs.seg.dcm"), *shape,
                "-o", out) == 0
    assert set(pd.read_csv(out).segment) == {"Right lung", "Left lung"}


@pytest.mark.shared_data
def test_real_lung1_003_lungs_export_automatic_coloured_numbered_and_named(shared_data, patient_scratch):
    """On the real LUNG1-003 DICOM CT: `lungai lungs`, then dicom-export of its map: AUTOMATIC SlicerLungAI lungs,
    a colour each, dicom-export's series numbers; radiomics of the lungs' SEG names the segments by label.  The
    patient's results (SEG, RTSTRUCT with the CT's identity) go to ``patient_scratch``, removed after the test."""
    tmp_path = patient_scratch
    from lungai.terminology import COLOURS

    ct = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT"
    out = tmp_path / "lungs"
    out.mkdir()
    assert _cli("lungs", ct, "-o", out / "lungs.nii.gz") == 0
    assert _cli("dicom-export", "--ct", ct, "--lungs", out / "lungs.nii.gz", "-o", tmp_path / "x") == 0
    segs, rois = _generation(tmp_path / "x")
    assert segs == {"Right lung": AUTO, "Left lung": AUTO} and set(rois.values()) == {"AUTOMATIC"}
    rt = pydicom.dcmread(tmp_path / "x" / "rtstruct.dcm")
    assert int(rt.SeriesNumber) == 301 and int(pydicom.dcmread(out / "lungs.seg.dcm").SeriesNumber) == 320
    assert sorted(tuple(int(v) for v in c.ROIDisplayColor) for c in rt.ROIContourSequence) == \
        sorted([COLOURS["lung_right"], COLOURS["lung_left"]])
    csv = tmp_path / "r.csv"
    assert _cli("radiomics", "--image", ct, "--mask", f"{out / 'lungs.seg.dcm'}#Right lung", "--image-types",
                "Original", "--feature-classes", "shape", "-o", csv) == 0
    assert set(pd.read_csv(csv).segment) == {"Right lung"}
    assert np.isfinite(pd.read_csv(csv).value.astype(float)).all()


def test_a_cohort_folders_lungs_are_lungais_only_while_unchanged_however_given(tmp_path, capsys):
    """`dicom-export --results OUT/patients/P`: the folder's lungs.nii.gz is lungai's when the patient record says
    the lungs are automatic (lungai.lungs) AND records the file as written.  QA (rev-dicommeta): a cohort folder's
    lungs.nii.gz with half a lung erased by the user was still exported AUTOMATIC (made by SlicerLungAI); and
    `--results F --lungs F/lungs.nii.gz` gave MANUAL where `--results F` gave AUTOMATIC for the same file."""
    from dicom_helpers import small_phantom

    from lungai.dicom.cohort import AUTO_LUNGS, run_cohort
    from lungai.dicom.export import COHORT_LUNGS_DIGEST, lungs_made_by
    from lungai.dicom.synthetic import write_rt_study
    from lungai.radiomics import load_params

    st = write_rt_study(tmp_path / "rt", small_phantom(7), "P1", dose=None,
                        names={"lung_right": None, "lung_left": None})      # no lung structures: automatic lungs
    out = tmp_path / "cohort"
    s = run_cohort(tmp_path / "rt", out, load_params("default", feature_classes=["shape"]), workers=0)
    assert s.done == ["P1"]
    folder = out / "patients" / "P1"
    shutil.copy(folder / "lungs.nii.gz", tmp_path / "copy.nii.gz")   # a user's file: the export is rt/, not tmp_path
    record = json.loads((folder / "result.json").read_text())
    assert record["provenance"]["lungs"] == AUTO_LUNGS and COHORT_LUNGS_DIGEST in record
    lungs = folder / "lungs.nii.gz"
    assert lungs_made_by(lungs) == lungs_made_by(f"{lungs}#1,2") == "cohort"

    def lung_generation(*how):
        dest = tmp_path / f"x{len(list(tmp_path.glob('x*')))}"
        assert _cli("dicom-export", "--ct", st["ct"], *how, "-o", dest) == 0
        segs, rois = _generation(dest)
        return {segs["Right lung"][0], segs["Left lung"][0], rois["Lung_R"], rois["Lung_L"]}

    # the same file, given either way: lungai's
    assert lung_generation("--results", folder) == lung_generation("--results", folder, "--lungs", lungs) == \
        lung_generation("--lungs", lungs) == {"AUTOMATIC"}
    # the user erases half of the left lung and saves the file: the user's (MANUAL), however given
    img = sitk.ReadImage(str(lungs))
    arr = sitk.GetArrayFromImage(img)
    left = np.argwhere(arr == 2)
    arr[tuple(left[: len(left) // 2].T)] = 0
    edited = sitk.GetImageFromArray(arr)
    edited.CopyInformation(img)
    sitk.WriteImage(edited, str(lungs))
    assert lungs_made_by(lungs) is None
    # the folder's features.csv describes the lungs before the edit: refused, the fix names --radiomics (QA lead59:
    # it said "leave --radiomics out", an option not given); recomputed radiomics given so: the user's lungs, MANUAL
    assert _cli("dicom-export", "--ct", st["ct"], "--results", folder, "-o", tmp_path / "refused") == 2
    said = capsys.readouterr().err
    assert "features.csv was computed on another left lung mask" in said and "leave --radiomics out" not in said, said
    assert "give that CSV with --radiomics" in said, said
    recomputed = tmp_path / "edited_lungs.csv"
    assert _cli("radiomics", "--image", st["ct"], "--lungs", lungs, "--image-types", "Original", "--feature-classes",
                "shape", "-o", recomputed) == 0
    assert lung_generation("--results", folder, "--radiomics", recomputed) == lung_generation("--lungs", lungs) == \
        {"MANUAL"}
    # a record of an older cohort (no digest of the lungs written): the user's; an RTSTRUCT's lungs: the user's
    sitk.WriteImage(img, str(lungs))
    assert lungs_made_by(lungs) == "cohort"
    for changed in ({k: v for k, v in record.items() if k != COHORT_LUNGS_DIGEST},
                    {**record, "provenance": {**record["provenance"], "lungs": "RTSTRUCT Lung_R, Lung_L"}}):
        (folder / "result.json").write_text(json.dumps(changed))
        assert lungs_made_by(lungs) is None


def test_only_the_demos_lungs_file_is_lungais_lungs(case, tmp_path):
    """QA (rev-dicommeta): any file the demo marker lists counted as lungai's lungs, e.g. `--lungs
    demo/labels.nii.gz#1,2` (the synthetic sample's truth map) was exported AUTOMATIC."""
    from lungai.dicom.export import lungs_made_by
    from lungai.io.outputs import record_outputs

    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("lungs.nii.gz", "labels.nii.gz"):
        shutil.copy(case["lungs"], demo / name)
    record_outputs(demo, "demo", [demo / "lungs.nii.gz", demo / "labels.nii.gz"])
    assert lungs_made_by(demo / "lungs.nii.gz") == "demo"
    assert lungs_made_by(f"{demo / 'labels.nii.gz'}#1,2") is None and lungs_made_by(demo / "labels.nii.gz") is None
    assert _cli("dicom-export", "--ct", case["st"]["ct"], "--lungs", f"{demo / 'labels.nii.gz'}#1,2",
                "-o", tmp_path / "a") == 0
    segs, rois = _generation(tmp_path / "a")
    assert segs["Right lung"][0] == rois["Lung_R"] == "MANUAL"


def test_radiomics_and_radiomics_batch_name_and_compute_a_seg_alike(case, tmp_path, capsys):
    """QA (rev-dicommeta): `lungai radiomics --mask lungs.seg.dcm` named the segments Right lung / Left lung (on the
    2 mm lung grid) while `radiomics-batch` with the same SEG named them label_1 / label_2 (on the CT's grid:
    SurfaceArea 3.3 % off); `--label 1` (a bare number) dropped the SegmentLabel.  One rule now
    (lungai.radiomics.segments.segments_from_mask_file); batch parts of an older lungai (label_N) are redone."""
    st, seg = case["st"], case["lungs"].with_name("lungs.seg.dcm")
    shape = ["--image-types", "Original", "--feature-classes", "shape"]
    one = tmp_path / "one.csv"
    assert _cli("radiomics", "--image", st["ct"], "--mask", seg, *shape, "-o", one) == 0
    manifest = tmp_path / "man.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "mask": [str(seg)]}).to_csv(manifest, index=False)
    batch = tmp_path / "batch.csv"
    assert _cli("radiomics-batch", manifest, *shape, "--workers", "0", "-o", batch) == 0
    a, b = pd.read_csv(one), pd.read_csv(batch)
    assert set(a.segment) == set(b.segment) == {"Right lung", "Left lung"}
    key = ["segment", "feature"]
    merged = a.merge(b, on=key, suffixes=("_one", "_batch"))
    assert len(merged) == len(a) == len(b)
    assert np.allclose(merged.value_one.astype(float), merged.value_batch.astype(float), rtol=1e-9, equal_nan=True)
    assert pd.read_csv(tmp_path / "one_settings.csv").set_index("segment").spacing_mm.to_dict() == \
        pd.read_csv(tmp_path / "batch_settings.csv").set_index("segment").spacing_mm.to_dict()
    # a bare label number takes its segment's SegmentLabel (name=N names it N)
    out = tmp_path / "l1.csv"
    assert _cli("radiomics", "--image", st["ct"], "--mask", seg, "--label", "1", "--label", "lung=2", *shape,
                "-o", out) == 0
    assert set(pd.read_csv(out).segment) == {"Right lung", "lung"}
    # a batch resumed over a part of an older lungai (label_N names: no segment_names in its inputs record): redone
    import json as _json

    record = tmp_path / "batch.csv.parts" / "P1.inputs.json"
    doc = _json.loads(record.read_text())
    assert doc.pop("segment_names") == "SegmentLabel"
    record.write_text(_json.dumps(doc, sort_keys=True))
    capsys.readouterr()
    assert _cli("radiomics-batch", manifest, *shape, "--workers", "0", "-o", batch) == 0
    said = capsys.readouterr()
    assert "segment_names" in said.out + said.err and "1 case extracted" in said.out + said.err
    assert set(pd.read_csv(batch).segment) == {"Right lung", "Left lung"}


def _cohort_automatic_tumour(case, tmp_path, monkeypatch):
    """A `lungai cohort` patient folder (RTSTRUCT of Lung_R + Lung_L, no GTV: the automatic tumour, its segmentation
    monkeypatched to the case's GTV)."""
    from types import SimpleNamespace

    from cohort_helpers import PARAMS
    from lungai.dicom.cohort import plan_cohort, process_patient
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.seg import infer, model_io, resources

    st = case["st"]
    root = tmp_path / "export"
    shutil.copytree(st["ct"], root / "P1" / "CT")
    shutil.copytree(st["dose"].parent, root / "P1" / "RTDOSE")
    write_rtstruct({n: st["masks"][n] for n in ("Lung_R", "Lung_L")}, st["reference"],
                   root / "P1" / "RTSTRUCT" / "rs.dcm")       # no GTV structure: the automatic tumour

    def segment(image, model, seed=0, progress=None):      # quick and known (the model is not under test)
        return SimpleNamespace(tumour=image_like(case["gtv"], image), info={
            "confidence": 0.4, "needs_review": True, "review_reasons": ["low confidence"], "method": "ensemble",
            "tumour_volume_ml": float(case["gtv"].sum() * np.prod(image.GetSpacing()) / 1000)})

    monkeypatch.setattr(infer, "segment_tumour", segment)
    monkeypatch.setattr(model_io, "load_model", lambda mdir: None)
    monkeypatch.setattr(resources, "resolve_model_dir", lambda d: tmp_path)
    monkeypatch.setattr("lungai.seg.model_meta.model_identity", lambda d: {"folder": str(d)})
    jobs, _ = plan_cohort(root)
    doc = process_patient(jobs[0], PARAMS, str(tmp_path / "cohort"))
    assert doc["status"] == "done", doc
    return tmp_path / "cohort" / "patients" / "P1"


def test_a_cohorts_automatic_tumour_and_its_seg_are_named_lungais_by_dose_features(case, tmp_path, monkeypatch):
    """QA (cohortprov62): `dose-features --gtv` named lungai's automatic tumour as such only for `lungai segment`'s /
    the demo's tumor.nii.gz; a `lungai cohort` patient folder's automatic tumour.nii.gz, or dicom-export's SEG of it
    (Tumour AUTOMATIC, SlicerLungAI), was "minus GTV: tumour.nii.gz" alone - read like a clinician's GTV.  One rule
    with the lungs (lungai.dicom.export.lungs_made_by): the cohort record says the tumour is automatic and holds its
    voxels as written; a SEG whose tumour segments say SlicerLungAI made them.  Edited, an RTSTRUCT's GTV, or a user's
    SEG: the user's."""
    from lungai.cli.dose import gtv_file_source
    from lungai.dicom.export import tumour_made_by

    st = case["st"]
    folder = _cohort_automatic_tumour(case, tmp_path, monkeypatch)
    tumour = folder / "tumour.nii.gz"
    automatic = "tumour.nii.gz (lungai automatic tumour; made by lungai cohort)"
    assert tumour_made_by(tumour) == tumour_made_by(f"{tumour}#1") == "cohort"
    out = tmp_path / "dose.csv"
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", case["lungs"], "--gtv", tumour,
                "-o", out) == 0
    assert pd.read_csv(out).iloc[0]["masks"].endswith(f"minus GTV: {automatic}")
    # dicom-export's SEG of it (AUTOMATIC, SlicerLungAI), given back as --gtv: lungai's automatic tumour
    assert _cli("dicom-export", "--ct", st["ct"], "--results", folder, "-o", tmp_path / "dcm") == 0
    seg = tmp_path / "dcm" / "results.seg.dcm"
    assert tumour_made_by(seg) == "segment"
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", case["lungs"], "--gtv", seg,
                "-o", out) == 0
    # its segment named, as an RTSTRUCT's structure (the SEG by its path as given: QA segfollow63)
    masks = pd.read_csv(out).iloc[0]["masks"]
    assert "minus GTV: DICOM SEG segment " in masks and masks.endswith(
        f" ({seg}; lungai automatic tumour; made by lungai segment)"), masks
    # the user's SEG of a copy of the same tumour (MANUAL: the copy is no cohort's file): the user's GTV
    (tmp_path / "mine").mkdir()
    shutil.copy(tumour, tmp_path / "mine" / "gtv.nii.gz")
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", tmp_path / "mine" / "gtv.nii.gz", "-o",
                tmp_path / "user") == 0
    assert tumour_made_by(tmp_path / "user" / "results.seg.dcm") is None
    # the record of an RTSTRUCT's GTV, or the tumour edited since: the user's, named by the file alone
    record = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**record, "provenance": {**record["provenance"],
                                                                            "tumour": "RTSTRUCT GTV"}}))
    assert tumour_made_by(tumour) is None
    (folder / "result.json").write_text(json.dumps(record))
    assert tumour_made_by(tumour) == "cohort"
    img = sitk.ReadImage(str(tumour))
    arr = sitk.GetArrayFromImage(img)
    arr[tuple(np.argwhere(arr > 0)[0])] = 0     # one voxel erased
    edited = sitk.GetImageFromArray(arr)
    edited.CopyInformation(img)
    sitk.WriteImage(edited, str(tumour))
    assert tumour_made_by(tumour) is None and gtv_file_source(tumour) == "tumour.nii.gz"


def _seg_algorithms(seg_file):
    """{segment label: (SegmentAlgorithmType, algorithm name or None)} of a SEG, read with highdicom."""
    import highdicom as hd

    seg = hd.seg.segread(str(seg_file))
    out = {}
    for number in seg.segment_numbers:
        desc = seg.get_segment_description(number)
        algo = desc.algorithm_identification
        out[desc.segment_label] = (desc.algorithm_type.value if hasattr(desc.algorithm_type, "value")
                                   else str(desc.algorithm_type), algo[0].AlgorithmName if algo else None)
    return out


def test_dicom_export_of_a_cohorts_automatic_tumour_without_result_is_automatic_by_the_file(case, tmp_path,
                                                                                             monkeypatch):
    """QA (cohortdose62): `dicom-export --tumour OUT/patients/P/tumour.nii.gz` (a cohort's automatic tumour,
    unchanged) without `--result` was written to the SEG as MANUAL, a clinician's contour, although
    lungai.dicom.export.tumour_made_by names it lungai's - while the lungs follow their file alone (lungs_made_by).
    One rule now (lungai.dicom.seg.generation_by): lungai's unchanged tumour file is AUTOMATIC / SlicerLungAI (without
    a confidence), the same file edited is the user's (MANUAL, no algorithm)."""
    st = case["st"]
    folder = _cohort_automatic_tumour(case, tmp_path, monkeypatch)
    tumour = folder / "tumour.nii.gz"
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", tumour, "--lungs", folder / "lungs.nii.gz",
                "-o", tmp_path / "alone") == 0
    segs = _seg_algorithms(tmp_path / "alone" / "results.seg.dcm")
    tumours = {k: v for k, v in segs.items() if "lung" not in k.lower()}
    lungs = {k: v for k, v in segs.items() if "lung" in k.lower()}
    assert tumours and lungs, segs
    assert set(tumours.values()) == {("AUTOMATIC", "SlicerLungAI")}, segs
    assert set(lungs.values()) == {("MANUAL", None)}, segs    # the RTSTRUCT's lungs (by their file): the user's
    rt = pydicom.dcmread(tmp_path / "alone" / "rtstruct.dcm")
    made = {o.ROIName: o.ROIGenerationAlgorithm for o in rt.StructureSetROISequence}
    assert made.pop("GTVp") == "AUTOMATIC" and set(made.values()) == {"MANUAL"}, made
    # the same as exported with the folder (--results: its record too)
    assert _cli("dicom-export", "--ct", st["ct"], "--results", folder, "-o", tmp_path / "folder") == 0
    assert _seg_algorithms(tmp_path / "folder" / "results.seg.dcm") == segs
    # edited since (one voxel erased): the user's, MANUAL without an algorithm name
    img = sitk.ReadImage(str(tumour))
    arr = sitk.GetArrayFromImage(img)
    arr[tuple(np.argwhere(arr > 0)[0])] = 0
    edited = sitk.GetImageFromArray(arr)
    edited.CopyInformation(img)
    sitk.WriteImage(edited, str(tumour))
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", tumour, "-o", tmp_path / "edited") == 0
    assert set(_seg_algorithms(tmp_path / "edited" / "results.seg.dcm").values()) == {("MANUAL", None)}
