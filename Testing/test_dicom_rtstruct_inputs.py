"""RTSTRUCT variants QA met on copies of the real LUNG1-003 structure set, on the synthetic export (pydicom):
contours without ContourData, GTV names outside the role table (and a GTV known only by its RT ROI Interpreted
Type), 'Combined lungs', two contours of one slice a few tenths of a mm apart in z, and the note of the structures
without contours in ``lungai radiomics --rtstruct``."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import array, envelope_study, rt_export, with_empty_structures
from pydicom.dataset import Dataset

from lungai.dicom import roles
from lungai.dicom.rtstruct import contoured_structures, list_structures, read_rtstruct, read_rtstruct_role
from lungai.errors import InputError, InputNote
from lungai.io import read_ct


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt_inputs"))


@pytest.fixture(scope="module")
def p1(export):
    st = export["P1"]
    return st, read_ct(st["ct"])


def _roi(ds, name):
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == name)
    return next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number)


# ------------------------------------------------------------------------------------ contours without points

def test_contours_without_contour_data_are_skipped_as_degenerate(p1, tmp_path):
    """A ContourSequence item without ContourData, or with an empty one (NumberOfContourPoints 0), crashed every
    reader with AttributeError: 'Dataset' object has no attribute 'ContourData' (or said '1 coordinates')."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    for name in ("GTV", "Lung_R"):
        seq = _roi(ds, name).ContourSequence
        missing, empty = copy.deepcopy(seq[0]), copy.deepcopy(seq[0])
        del missing.ContourData
        missing.NumberOfContourPoints = 0
        empty.ContourData = []
        empty.NumberOfContourPoints = 0
        seq.extend([missing, empty])
    path = tmp_path / "no_points.dcm"
    ds.save_as(path)
    assert contoured_structures(path) == (["GTV", "Lung_R", "Lung_L"], [])
    masks = read_rtstruct(path, ct)
    for name, mask in masks.items():
        assert np.array_equal(array(mask), array(st["masks"][name])), name
    assert read_rtstruct_role(path, ct, "gtv")[1] == ["GTV"]


def test_cohort_planning_records_a_patient_whose_rtstruct_cannot_be_read_and_goes_on(export, monkeypatch):
    """An unexpected error reading one patient's RTSTRUCT aborted plan_cohort (only LungAIError was caught): no
    patients.csv / errors.csv, every other patient lost.  Now that patient fails with the reason, the others go on."""
    from lungai.dicom import cohort, rtstruct

    real = rtstruct.contoured_structures
    broken = str(export["P1"]["rtstruct"])

    def crash(path):
        if str(path) == broken:
            raise AttributeError("'Dataset' object has no attribute 'ContourData'")
        return real(path)

    monkeypatch.setattr(rtstruct, "contoured_structures", crash)
    jobs, inventory = cohort.plan_cohort(export["P1"]["root"].parent)
    by_case = {j.case: j for j in jobs}
    assert set(by_case) == {"P1", "P2", "P3"}
    assert by_case["P1"].error and "could not be read (AttributeError" in by_case["P1"].error[0]
    assert not by_case["P2"].error and not by_case["P3"].error
    row = inventory.set_index("patient_id").loc["P1"]
    assert "could not be read (AttributeError" in row.notes
    result = cohort.process_patient(by_case["P1"], {}, str(export["P1"]["root"].parent / "out"))
    assert result["status"] == "failed" and "could not be read" in result["error"]
    assert any("P1 will fail" in line for line in cohort.inventory_warnings(jobs))


def test_a_truncated_rtstruct_is_said_by_scan_and_cohort_not_dropped(export, tmp_path, capsys):
    """QA: a half-written RTSTRUCT (``head -c`` of LUNG1-003's; pydicom OSError 'No tag to read') was dropped
    silently: dicom-scan said '0 RTSTRUCT ... missing RTSTRUCT', cohort used the automatic tumour with empty notes."""
    import shutil

    from lungai.cli import main
    from lungai.dicom import cohort
    from lungai.dicom.discover import scan

    root = tmp_path / "export"
    shutil.copytree(export["P1"]["ct"], root / "P1" / "CT")
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    rs.parent.mkdir()
    shutil.copy(export["P1"]["rtstruct"], rs)
    data = rs.read_bytes()
    from lungai.dicom.discover import _TAGS

    def unreadable(n):       # cut where pydicom cannot read the header (as 'No tag to read' on LUNG1-003's)
        rs.write_bytes(data[:n])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydicom.dcmread(rs, stop_before_pixels=True, specific_tags=_TAGS)
        except Exception:  # noqa: BLE001
            return True
        return False

    assert next((n for n in range(200, 4000) if unreadable(n)), None)
    (st,) = scan(root)
    assert st.rtstruct == [] and st.unreadable == [rs]
    assert any("1 file could not be read as DICOM: P1/RTSTRUCT/rtstruct.dcm" in n and "re-export" in n for n in st.notes)
    assert main(["dicom-scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "1 unreadable DICOM file" in out and "warning: 1 file could not be read as DICOM: P1/RTSTRUCT/rtstruct.dcm" in out
    jobs, inventory = cohort.plan_cohort(root)
    row = inventory.iloc[0]
    assert "could not be read as DICOM" in row.notes and "WARNING: no readable RTSTRUCT" in row.notes
    assert "unreadable file may be its RTSTRUCT" in row.tumour_from
    assert any("no readable RTSTRUCT" in line for line in cohort.inventory_warnings(jobs))
    # a file that is not meant to be DICOM (no .dcm, no DICM preamble) is no concern
    rs.rename(rs.with_name("notes.txt"))
    rs.with_name("notes.txt").write_bytes(b"some text")
    (st,) = scan(root)
    assert st.unreadable == [] and not any("could not be read" in n for n in st.notes)


def _truncated(source, path):
    """``path``: ``source`` cut where pydicom cannot read its header any more."""
    from lungai.dicom.discover import _TAGS

    data = source.read_bytes()
    for n in range(200, 4000):
        path.write_bytes(data[:n])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except Exception:  # noqa: BLE001
            return path
    raise AssertionError("never unreadable")


def test_an_unreadable_file_of_a_flat_export_of_several_patients_goes_to_each(export, tmp_path, capsys):
    """Review: all CT files of two patients and a truncated RTSTRUCT in one folder: the file went to a new study
    'unknown' (files directly in the scanned root with > 1 patient were nobody's), so neither patient was told that
    it may be its RTSTRUCT and cohort fell back to automatic contours silently.  Now every study with files in the
    file's folder gets it; only a file in no patient's folder goes to 'unknown', which cohort warns of."""
    import shutil

    from lungai.dicom import cohort
    from lungai.dicom.discover import scan

    root = tmp_path / "flat"
    root.mkdir()
    for p in ("P1", "P2"):
        for f in sorted(export[p]["ct"].iterdir()):
            shutil.copy(f, root / f"{p}_{f.name}")
    trunc = _truncated(export["P1"]["rtstruct"], root / "trunc.dcm")
    studies = scan(root)
    assert sorted(st.patient_id for st in studies) == ["P1", "P2"]
    assert all(st.unreadable == [trunc] for st in studies)
    jobs, inventory = cohort.plan_cohort(root)
    assert all("unreadable file may be its RTSTRUCT" in r.tumour_from for r in inventory.itertuples())
    assert sorted(line.split(":")[0] for line in cohort.inventory_warnings(jobs, inventory)) == ["P1", "P2"]
    # a file beside the patients' folders (no patient's file with it): patient 'unknown', warned of on the terminal
    nested = tmp_path / "nested"
    for p in ("P1", "P2"):
        shutil.copytree(export[p]["ct"], nested / p / "CT")
    trunc = shutil.copy(trunc, nested / "trunc.dcm")
    studies = scan(nested)
    assert [st.patient_id for st in studies if st.unreadable] == ["unknown"]
    jobs, inventory = cohort.plan_cohort(nested)
    lines = [ln for ln in cohort.inventory_warnings(jobs, inventory) if ln.startswith("unknown: ")]
    assert len(lines) == 1 and "1 file that could not be read as DICOM lies in no folder of a patient" in lines[0]
    assert str(trunc) in lines[0] and lines[0].endswith("re-export it, or move it into its patient's folder")


# ------------------------------------------------------------------------------------------------- roles

@pytest.mark.parametrize("name, role", [
    ("GTVp2", "gtv_primary"), ("GTVp_CT", "gtv_primary"), ("GTVp1", "gtv_primary"),
    ("GTVn4R", "gtv_node"), ("GTV_N_4R", "gtv_node"), ("GTV_Node_4R", "gtv_node"), ("GTV_LN_4R", "gtv_node"),
    ("GTV_4R", "gtv_node"), ("GTV_10L", "gtv_node"), ("GTVn4R_PET", "gtv_node"),
    ("GTV_PET", "gtv"), ("GTV_CT", "gtv"), ("GTV_tot", "gtv"), ("GTV_L", "gtv"), ("GTV_R", "gtv"), ("GTV 7", "gtv"),
    ("iGTV", None), ("IGTV", None), ("ITV", None), ("PTV", None), ("CTV", None), ("PTV_GTV", None),
    ("GTV_5mm", None), ("Lungs-iGTV", "lungs_minus_gtv"), ("Lungs-ITV", None),
    ("Combined lungs", "lungs"), ("Combined Lung", "lungs"), ("Lung_Combined", "lungs")])
def test_gtv_names_with_suffixes_and_combined_lungs(name, role):
    assert roles.structure_role(name) == role


def test_a_gtv_known_only_by_its_interpreted_type_is_a_gtv_and_said(p1, tmp_path):
    """GTV renamed 'Primary tumour RUL' (RTROIInterpretedType GTV) was left out of role:gtv: the lungs minus the GTV
    kept the tumour, the GTV dose missed it.  Now it is a GTV by its type, with a warning; a PTV / iGTV typed GTV
    never is, and an iGTV or a GTV-like name without a role is warned about."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    gtv = next(r for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    gtv.ROIName = "Primary tumour RUL"
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence][0] == "GTV"
    for name, kind in (("PTV_1", "GTV"), ("iGTV", "GTV"), ("GTV_5mm", "ORGAN")):   # copies of the GTV's contours
        number = max(int(r.ROINumber) for r in ds.StructureSetROISequence) + 1
        roi = copy.deepcopy(gtv)
        roi.ROINumber, roi.ROIName = number, name
        rc = copy.deepcopy(ds.ROIContourSequence[0])
        rc.ReferencedROINumber = number
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = number, number, kind
        ds.StructureSetROISequence.append(roi)
        ds.ROIContourSequence.append(rc)
        ds.RTROIObservationsSequence.append(obs)
    path = tmp_path / "renamed.dcm"
    ds.save_as(path)
    names = list_structures(path)
    assert [roles.structure_role(n) for n in names] == ["gtv", "lung_right", "lung_left", None, None, None]
    assert "Primary tumour RUL (gtv, by its RT ROI Interpreted Type)" in roles.describe_roles(names)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        mask, used = read_rtstruct_role(path, ct, "gtv")
        lungs, _ = read_rtstruct_role(path, ct, "lungs_minus_gtv")
    assert used == ["Primary tumour RUL"]
    assert np.array_equal(array(mask), array(st["masks"]["GTV"]))
    assert not (array(lungs) & array(st["masks"]["GTV"])).any()
    text = " | ".join(str(w.message) for w in said if issubclass(w.category, InputNote))
    assert "'Primary tumour RUL' is taken as a GTV (role gtv) because its RT ROI Interpreted Type is GTV" in text
    assert "'iGTV' is an internal target volume" in text and "'GTV_5mm' begins with GTV" in text
    assert "PTV_1" not in text
    # a user mapping decides: no fallback, no warning - but for a GTV it hides beside the GTVs used (QA cohort70: it
    # is then neither the tumour nor subtracted from the lungs, lungai.dicom.roles.hidden_gtv_note)
    assert roles.structure_role(names[0], {"Primary tumour RUL": None}) is None
    notes = roles.role_notes(names, {"Primary tumour RUL": None, "iGTV": "gtv", "GTV_5mm": None})
    assert len(notes) == 1 and notes[0].startswith("structure 'Primary tumour RUL' is named like a tumour but the "
                                                   "structure mapping hides it (null): it is not part of the tumour "
                                                   "(iGTV)"), notes
    assert roles.role_notes(names, {"Primary tumour RUL": "gtv", "iGTV": None, "GTV_5mm": None}) == []
    # dose-features' masks take it as the GTV
    from lungai.dicom.masks import rtstruct_dose_masks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = rtstruct_dose_masks(path, ct)
    assert "Primary tumour RUL" in m["gtv_source"]


def test_a_tumour_name_without_a_gtv_prefix_is_warned_like_a_gtv_name():
    """QA (Lung Radiomics): a segment / structure named like a tumour without a GTV prefix ('Primary tumour',
    'tumour_left', 'Lung tumour') has no role, so it is not the GTV (the lungs keep it for the dose), and nothing
    said so - while a name beginning with GTV without a role is warned (role_notes, one rule for the CLI and the
    panel).  Lungs and organs, and the tumour names that have a role, get no such note."""
    for name in ("Primary tumour", "tumour_left", "Lung tumour", "Tumor RUL", "lung_gtv"):
        note = " ".join(roles.role_notes([name, "Lung_R", "Lung_L"]))
        assert f"{name!r}" in note and "is not used as a GTV" in note and f"'{name}: gtv'" in note, (name, note)
    for name in ("Lung left", "Heart", "Oesophagus", "Lungs", "Lung_R", "SpinalCord", "Tumor", "Tumour", "GTV-1",
                 "GTVp", "PTV_tumour", "tumour_5mm", "Lungs-GTV"):
        assert roles.role_notes([name, "Lung_R", "Lung_L"]) == [], name
    assert roles.role_notes(["Primary tumour"], {"Primary tumour": None}) == []      # the user's mapping decides


# --------------------------------------------------------------------------------- contour planes of one slice


DERIVED = ("zPTV_opt", "optPTV", "z_GTV_opt", "GTV_5mm", "GTV+5mm", "GTV_2cm", "GTV_ring", "Ring_GTV", "NOT_GTV",
           "avoid_GTV", "GTV_PRV", "GTV_exp", "GTV_old", "GTVn_eval")


def test_derived_helper_and_motion_envelope_structures_typed_gtv_are_no_gtv():
    """Review of f3829a0: the RT ROI Interpreted Type fallback took optimisation / margin / ring / helper structures
    typed GTV as the tumour; a typed-GTV structure beside named GTVs was added to them; GTV_MIP / GTV_4D / GTV_avg
    (4D motion envelopes) were the tumour by name."""
    for name in DERIVED:
        typed = roles.StructureName(name, "GTV")
        assert roles.structure_role(typed) is None, name
        assert roles.find_role([typed, roles.StructureName("Lung_R", "ORGAN")], "gtv") == [], name
    assert roles.structure_role(roles.StructureName("Mass RUL", "GTV")) == "gtv"      # the fallback still works
    # beside a GTV by name: not added, warned
    names = [roles.StructureName("GTV-1", "GTV"), roles.StructureName("Mass RUL", "GTV")]
    assert roles.find_role(names, "gtv") == ["GTV-1"]
    assert roles.structure_roles(names) == {"GTV-1": "gtv_primary", "Mass RUL": None}
    assert any("'Mass RUL' has RT ROI Interpreted Type GTV but is not used" in n for n in roles.role_notes(names))
    assert "Mass RUL (no role)" in roles.describe_roles(names)
    for name in ("GTV_MIP", "GTV_4D", "GTV_avg", "GTVp_4DCT"):
        for kind in ("GTV", ""):
            n = roles.StructureName(name, kind)
            assert roles.structure_role(n) is None, name
            note = " ".join(roles.role_notes([n]))
            assert "motion envelope" in note and f"'{name}: gtv'" in note, (name, note)
    assert roles.structure_role("GTVp_CT") == "gtv_primary" and roles.structure_role("GTV_PET") == "gtv"


@pytest.mark.parametrize("dz", [0.31, 0.6])
def test_two_contours_of_one_slice_a_few_tenths_of_a_mm_apart_are_one_plane(p1, tmp_path, dz):
    """A second contour on a slice written 0.6 mm off in z (0.12 of a 5 mm slice) was refused as 'contoured on
    planes 0.60 mm apart ... the CT is thicker than the contouring grid'."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    seq = _roi(ds, "Lung_R").ContourSequence
    first = np.asarray([float(v) for v in seq[0].ContourData]).reshape(-1, 3)
    z = first[0, 2]
    # a small square far from the lung on the same slice, 0.6 mm off in z: an island of that slice
    idx = np.asarray(ct.TransformPhysicalPointToIndex((0.0, 0.0, float(z))))
    corner = np.asarray(ct.TransformIndexToPhysicalPoint((1, 1, int(idx[2]))))
    sp = np.asarray(ct.GetSpacing())
    square = np.array([[-0.5, -0.5], [1.5, -0.5], [1.5, 1.5], [-0.5, 1.5]]) * sp[:2] + corner[:2]
    item = copy.deepcopy(seq[0])
    pts = np.column_stack([square, np.full(4, z + dz)])
    item.ContourData = [f"{v:.3f}" for v in pts.ravel()]
    item.NumberOfContourPoints = 4
    seq.append(item)
    path = tmp_path / "same_slice.dcm"
    ds.save_as(path)
    got = array(read_rtstruct(path, ct, names=["Lung_R"])["Lung_R"])
    expected = array(st["masks"]["Lung_R"]).copy()
    k = int(round(ct.TransformPhysicalPointToContinuousIndex((0.0, 0.0, float(z)))[2]))
    expected[k, 1:3, 1:3] ^= 1
    assert np.array_equal(got, expected)


def test_overlapping_contours_of_one_slice_from_two_planes_are_refused_not_xored(p1, tmp_path):
    """Review of f3829a0: every slice's contour written at z - 0.6 mm and a 97 % copy at z + 0.6 mm (a contouring grid
    finer than the CT) were snapped to one slice and XOR-filled into rings (2 ml instead of 35 ml), silently."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    seq = _roi(ds, "Lung_R").ContourSequence
    for item in list(seq):
        pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)
        centre = pts[:, :2].mean(axis=0)
        item.ContourData = [f"{v:.3f}" for v in np.column_stack([pts[:, :2], pts[:, 2] - 0.6]).ravel()]
        copy_ = copy.deepcopy(item)
        inner = centre + 0.97 * (pts[:, :2] - centre)
        copy_.ContourData = [f"{v:.3f}" for v in np.column_stack([inner, pts[:, 2] + 0.6]).ravel()]
        seq.append(copy_)
    path = tmp_path / "two_planes.dcm"
    ds.save_as(path)
    with pytest.raises(InputError, match=r"(?s)'Lung_R'.*planes 1\.20 mm apart.*overlap.*rings"):
        read_rtstruct(path, ct, names=["Lung_R"])


def test_closedplanar_xor_contours_are_read_with_their_holes(p1, tmp_path):
    """ContourGeometricType CLOSEDPLANAR_XOR (DICOM PS3.3 C.8.8.6: closed contours of a plane combined by exclusive
    or, e.g. a lung with a cavity) was refused: "has a CLOSEDPLANAR_XOR contour; only CLOSED_PLANAR contours enclose
    a volume" (QA on LUNG1-003 so written).  It is read as the even-odd fill of CLOSED_PLANAR contours: an inner
    contour is a hole.  An open contour is still refused."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    seq = _roi(ds, "Lung_R").ContourSequence
    item = seq[len(seq) // 2]
    pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)
    centre = pts[:, :2].mean(axis=0)
    hole = copy.deepcopy(item)           # a cavity: the contour shrunk to 40 % around its centre, an inner contour
    hole.ContourData = [f"{v:.3f}" for v in np.column_stack([centre + 0.4 * (pts[:, :2] - centre), pts[:, 2]]).ravel()]
    seq.append(hole)
    closed = tmp_path / "closed_planar.dcm"
    ds.save_as(closed)
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            c.ContourGeometricType = "CLOSEDPLANAR_XOR"
    xor = tmp_path / "xor.dcm"
    ds.save_as(xor)
    got = array(read_rtstruct(xor, ct, names=["Lung_R"])["Lung_R"])
    assert np.array_equal(got, array(read_rtstruct(closed, ct, names=["Lung_R"])["Lung_R"]))
    k = int(round(ct.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in pts[0]))[2]))
    whole = array(st["masks"]["Lung_R"])
    assert whole[k].sum() > got[k].sum() > 0            # the cavity left out of that slice only
    assert np.array_equal(np.delete(got, k, axis=0), np.delete(whole, k, axis=0))
    ci, cj = (int(round(v)) for v in ct.TransformPhysicalPointToContinuousIndex((*centre, float(pts[0, 2])))[:2])
    assert whole[k, cj, ci] and not got[k, cj, ci]      # the centre of the cavity is out
    for c in _roi(ds, "Lung_R").ContourSequence:
        c.ContourGeometricType = "ARC"          # no DICOM ContourGeometricType: refused, "an" before a vowel
    ds.save_as(tmp_path / "arc.dcm")
    with pytest.raises(InputError, match=r"'Lung_R' has an ARC contour, not a DICOM ContourGeometricType; only closed"):
        read_rtstruct(tmp_path / "arc.dcm", ct, names=["Lung_R"])


def _gtv_read_noting(ds, path, ct):
    """(GTV mask, InputNote texts) of the RTSTRUCT ``ds`` saved at ``path`` and read on ``ct``."""
    ds.save_as(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = read_rtstruct(path, ct, names=["GTV"])["GTV"]
    return got, [str(w.message) for w in caught if issubclass(w.category, InputNote)]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_contour_written_twice_on_one_slice_is_read_once_and_said(p1, tmp_path, where):
    """QA (copy of LUNG1-003's structure set, a 60 mm square ROI on 5 slices, one slice's contour written twice, as
    merged / re-exported structure sets do): the even-odd rule XOR-ed the contour with its copy, so that slice was
    left out of the structure - 42.6 ml instead of 53.3 ml, silently (no gap error: the slice has contours).  A
    copy (the same points, from another start point or run the other way round) is read once, with a note."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    seq = _roi(ds, "GTV").ContourSequence
    items = sorted(seq, key=lambda c: float(c.ContourData[2]))
    item = {"first": items[0], "middle": items[len(items) // 2], "last": items[-1]}[where]
    pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)
    again = copy.deepcopy(item)                 # the same contour, from another start point, run the other way
    again.ContourData = [f"{v:.4f}" for v in np.roll(pts[::-1], 3, axis=0).ravel()]
    seq.append(again)
    path = tmp_path / "twice.dcm"
    got, notes = _gtv_read_noting(ds, path, ct)
    assert np.array_equal(array(got), array(st["masks"]["GTV"]))
    assert any("'GTV'" in n and "written twice" in n and f"z = {pts[0, 2]:.1f}" in n and "read once" in n
               for n in notes), notes
    from lungai.dicom.cohort import gaps_allowed_notes

    kept: list = []
    with gaps_allowed_notes(kept):          # lungai cohort keeps it in the patient's notes
        read_rtstruct(path, ct, names=["GTV"])
    assert kept == notes[-1:]


def test_a_structure_of_point_markers_only_is_said_to_be_points_not_uncontoured(p1, tmp_path):
    """QA (copy of LUNG1-003's structure set with a marker 'GTV' of ContourGeometricType POINT, as planning systems
    export reference points): choosing it said "structure 'GTV' has no contours - choose a structure that was
    contoured", while the planning system shows it drawn.  It is named a point marker, enclosing no volume."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    rc = _roi(ds, "GTV")
    item = rc.ContourSequence[0]
    pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)
    marker = copy.deepcopy(item)
    marker.ContourGeometricType, marker.NumberOfContourPoints = "POINT", 1
    marker.ContourData = [f"{v:.3f}" for v in pts.mean(axis=0)]
    rc.ContourSequence = [marker, copy.deepcopy(marker)]
    path = tmp_path / "marker.dcm"
    ds.save_as(path)
    with pytest.raises(InputError, match=r"structure 'GTV' holds only POINT markers \(2\), no closed contour") as exc:
        read_rtstruct(path, ct, names=["GTV"])
    assert "marker" in exc.value.fix
    assert np.array_equal(array(read_rtstruct(path, ct, names=["Lung_R"])["Lung_R"]), array(st["masks"]["Lung_R"]))


def _line(item, n, kind="OPEN_PLANAR"):
    """An open contour (a line of the first ``n`` points of closed contour ``item``, on its slice)."""
    line = copy.deepcopy(item)
    pts = np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)[:n]
    line.ContourGeometricType, line.NumberOfContourPoints = kind, n
    line.ContourData = [f"{v:.3f}" for v in pts.ravel()]
    return line, float(pts[0, 2])


def test_open_contours_mixed_into_a_closed_structure_are_left_out_and_said(p1, tmp_path):
    """QA (copy of LUNG1-003's structure set, an OPEN_PLANAR annotation line of 3 points added to GTV-1): the whole
    structure was refused ("has a OPEN_PLANAR contour ... re-export the structure as closed contours"), while an
    open contour of 2 points was skipped without a word.  Planning systems and Slicer leave open contours out of a
    structure's volume: it is read from its closed contours (the same mask), the open ones named in a note."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    seq = _roi(ds, "GTV").ContourSequence
    items = sorted(seq, key=lambda c: float(c.ContourData[2]))
    three, z3 = _line(items[1], 3)
    two, z2 = _line(items[-2], 2)
    nonplanar, _ = _line(items[1], 4, "OPEN_NONPLANAR")
    seq.extend([three, two, nonplanar])
    path = tmp_path / "open.dcm"
    got, notes = _gtv_read_noting(ds, path, ct)
    assert np.array_equal(array(got), array(st["masks"]["GTV"]))
    assert any("'GTV'" in n and "2 OPEN_PLANAR, 1 OPEN_NONPLANAR open contours" in n and f"{z3:.1f}" in n
               and f"{z2:.1f}" in n and "left out" in n for n in notes), notes
    from lungai.dicom.cohort import gaps_allowed_notes

    kept: list = []
    with gaps_allowed_notes(kept):          # lungai cohort keeps it in the patient's notes
        read_rtstruct(path, ct, names=["GTV"])
    assert kept == notes[-1:]
    with warnings.catch_warnings(record=True) as caught:     # a structure without open contours: no note
        warnings.simplefilter("always")
        read_rtstruct(path, ct, names=["Lung_R"])
    assert not [w for w in caught if "open contour" in str(w.message)]


@pytest.mark.parametrize("kind", ["POINT", "OPEN_PLANAR"])
def test_a_gtv_of_markers_or_lines_only_is_passed_over_for_the_gtv_role(p1, tmp_path, kind):
    """QA (copy of LUNG1-003's structure set with a 'GTV' of OPEN_PLANAR contours only beside GTV-1/2/3): the gtv
    role took that 'GTV' and was refused ("has a OPEN_PLANAR contour ... re-export the structure as closed
    contours", no fix for a line), while a 'GTV' of POINT markers only was passed over.  Both are passed over, and
    choosing either by name says it holds only markers / lines, no closed contour."""
    st, ct = p1
    path = _rtstruct_with(st, tmp_path, "lines.dcm", rename="GTV-1", add="GTV")
    ds = pydicom.dcmread(path)
    rc = ds.ROIContourSequence[-1]
    items = list(rc.ContourSequence)
    rc.ContourSequence = [_line(items[0], 1 if kind == "POINT" else 3, kind)[0],
                          _line(items[1], 1 if kind == "POINT" else 3, kind)[0]]
    ds.save_as(path)
    assert contoured_structures(path)[1] == ["GTV"]
    mask, names = read_rtstruct_role(path, ct, "gtv")
    assert names == ["GTV-1"] and np.array_equal(array(mask), array(st["masks"]["GTV"]))
    said = "POINT markers (2)" if kind == "POINT" else "open contours (2 OPEN_PLANAR)"
    with pytest.raises(InputError, match=rf"structure 'GTV' holds only {re.escape(said)}, no closed contour") as exc:
        read_rtstruct(path, ct, names=["GTV"])
    assert "line" in exc.value.fix and "re-export" not in exc.value.fix


@pytest.mark.parametrize("kind", ["POINT", "OPEN_PLANAR"])
def test_a_gtv_of_markers_or_lines_only_is_said_to_hold_them_not_to_be_without_contours(p1, tmp_path, capsys, kind):
    """QA (rtfolder60: copies of LUNG1-003's structure set with GTV-1, gtv-2, gtv-3 of POINT markers only, or of
    OPEN_PLANAR lines only): radiomics noted "RTSTRUCT structure(s) without contours left out: gtv-3, gtv-2, GTV-1"
    and refused "no structure with role 'gtv' ... (without contours, so left out: ...)", fix "name the structure
    explicitly (--structure NAME)" - the planning system shows them drawn, and naming one is refused too ("holds only
    POINT markers").  The note, the refusal and cohort's inventory say what each holds, and the fix says to contour
    them with closed contours; an empty template structure beside them is still said to have no contours."""
    from lungai.cli import main
    from lungai.dicom.cohort import plan_cohort

    st, ct = p1
    path = with_empty_structures(st["rtstruct"], ["GTVn"], tmp_path / "empty.dcm")
    ds = pydicom.dcmread(path)
    rc = _roi(ds, "GTV")
    rc.ContourSequence = [_line(item, 1 if kind == "POINT" else 3, kind)[0] for item in rc.ContourSequence]
    n = len(rc.ContourSequence)
    ds.save_as(path)
    held = f"POINT markers ({n})" if kind == "POINT" else f"open contours ({n} OPEN_PLANAR)"
    _, empty = contoured_structures(path)
    assert empty == ["GTV", "GTVn"]
    assert roles.empty_note(empty) == f"RTSTRUCT structures without closed contours left out: GTV (only {held}), GTVn"
    assert roles.empty_note(["GTVn"]) == "RTSTRUCT structure without contours left out: GTVn"   # as before
    with pytest.raises(InputError) as exc:
        read_rtstruct_role(path, ct, "gtv")
    assert f"(without closed contours, so left out: GTV (only {held}), GTVn)" in exc.value.problem
    assert exc.value.fix.startswith("contour GTV with closed contours in the planning system"), exc.value.fix
    assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(path), "--segments", "tumour",
                 "--image-types", "Original", "--feature-classes", "shape", "-o", str(tmp_path / "out" / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert f"without closed contours left out: GTV (only {held}), GTVn" in err and "without contours" not in err, err
    # lungai cohort: the inventory's note says it too (the automatic segmentation is planned)
    root = tmp_path / "export"
    import shutil

    shutil.copytree(st["ct"], root / "P1" / "CT")
    shutil.copy(path, root / "P1" / "rs.dcm")
    _, inv = plan_cohort(root)
    assert f"GTV (only {held})" in inv.loc[0, "notes"], inv.loc[0, "notes"]


def _two_series_folder(st, tmp_path):
    """(folder, planning UID, other UID): a copy of LUNG1-003's CT with a second reconstruction of it (every 2nd
    slice, its own series) in one folder, as a flat PACS / planning-system export."""
    import shutil

    folder = tmp_path / "CT"
    folder.mkdir()
    files = sorted(p for p in st["ct"].iterdir() if p.is_file())
    for f in files:
        shutil.copy(f, folder / f.name)
    planning = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    other = pydicom.uid.generate_uid()
    for i, f in enumerate(files[::2]):          # a second reconstruction of the scan (every 2nd slice)
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = other, pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber, ds.SeriesDescription = 99, "recon 10mm"
        ds.save_as(folder / f"recon_{i:03d}.dcm")
    return folder, planning, other


def test_two_ct_series_in_a_folder_name_the_one_its_rtstruct_was_drawn_on(p1, tmp_path):
    """QA (LUNG1-003's CT + a 6 mm reconstruction of it + its RTSTRUCT in one folder, as a flat PACS / planning-system
    export): "holds 2 different DICOM series: UID1 (...); UID2 (...)" - which one the structure set in the folder was
    drawn on was not said, the user had to find it out.  The fix names it, with the --series value to give."""
    import shutil

    st, _ = p1
    folder, planning, other = _two_series_folder(st, tmp_path)
    shutil.copy(st["rtstruct"], folder / "RS.plan.dcm")
    with pytest.raises(InputError) as exc:
        read_ct(folder)
    assert "2 different DICOM series" in exc.value.problem
    assert "RS.plan.dcm" in exc.value.fix and f"--series {planning}" in exc.value.fix, exc.value.fix
    assert f"--series {other}" not in exc.value.fix
    assert read_ct(folder, series_uid=planning).GetSize() == read_ct(st["ct"]).GetSize()



def test_two_ct_series_with_the_rtstruct_given_elsewhere_name_the_one_it_was_drawn_on(p1, tmp_path, capsys):
    """QA: with the RTSTRUCT given by --rtstruct (outside the CT folder: the export's RTSTRUCT/ folder), radiomics /
    dose-features refused the folder of two CT series listing both UIDs without saying which one the RTSTRUCT given
    was drawn on.  The fix names it (the one rule of the folder's own RTSTRUCT: lungai.io.read._drawn_on_hint)."""
    import shutil

    from lungai.cli import main

    st, _ = p1
    folder, planning, other = _two_series_folder(st, tmp_path)
    (tmp_path / "RTSTRUCT").mkdir()
    rs = tmp_path / "RTSTRUCT" / "RS.plan.dcm"     # beside the CT folder, not in it
    shutil.copy(st["rtstruct"], rs)
    few = ["--segments", "tumour", "--image-types", "Original", "--feature-classes", "shape"]
    for argv in (["radiomics", "--image", str(folder), "--rtstruct", str(rs), *few,
                  "-o", str(tmp_path / "out" / "r.csv")],
                 ["dose-features", "--dose", str(st["dose"]), "--ct", str(folder), "--rtstruct", str(rs),
                  "-o", str(tmp_path / "out" / "d.csv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "2 different DICOM series" in err, err
        fix = err.split("How to fix:")[1]
        assert f"RTSTRUCT {rs} was drawn on series {planning}: --series {planning}" in fix, fix
        assert f"--series {other}" not in fix
        assert fix.count("was drawn on") == 1
    shutil.copy(rs, folder / "RS.plan.dcm")     # in the folder too: said once (as the folder's file)
    assert main(["radiomics", "--image", str(folder), "--rtstruct", str(folder / "RS.plan.dcm"), *few,
                 "-o", str(tmp_path / "out" / "r.csv")]) == 2
    fix = capsys.readouterr().err.split("How to fix:")[1]
    assert fix.count("was drawn on") == 1 and f"RS.plan.dcm here was drawn on series {planning}" in fix, fix


# --------------------------------------------------------------------------- radiomics notes empty structures

def test_cli_radiomics_names_the_structures_without_contours(p1, tmp_path, capsys):
    from lungai.cli import main

    st, _ = p1
    rs = with_empty_structures(st["rtstruct"], ["GTVn", "Lungs-GTV"], tmp_path / "rs_empty.dcm")
    assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(rs), "--segments", "tumour",
                 "--image-types", "Original", "--feature-classes", "shape", "-o", str(tmp_path / "out" / "t.csv")]) == 0
    assert "RTSTRUCT structures without contours left out: GTVn, Lungs-GTV" in capsys.readouterr().err


def test_an_rtstruct_with_a_ct_that_is_not_dicom_is_noted_as_unchecked(p1, tmp_path, capsys):
    """QA: ``radiomics --image CT.nii.gz --rtstruct RS.dcm`` applied another patient's RTSTRUCT to a NIfTI CT without
    a word (a NIfTI has no FrameOfReferenceUID to compare).  Every command reading an RTSTRUCT onto a non-DICOM CT
    (read_rtstruct: radiomics, dose-features, demo) notes that it could not be checked, naming the RTSTRUCT's
    PatientID; with the DICOM CT it is checked (another frame of reference refused), no note."""
    from lungai.cli import main
    from lungai.io import write_image

    st, ct = p1
    patient = str(pydicom.dcmread(st["rtstruct"], stop_before_pixels=True).PatientID)
    nifti = write_image(ct, tmp_path / "ct.nii.gz")
    said = f"note: the RTSTRUCT {st['rtstruct']} (PatientID {patient}, frame of reference "
    few = ["--segments", "tumour", "--image-types", "Original", "--feature-classes", "shape"]
    for image, noted in ((nifti, True), (st["ct"], False)):
        assert main(["radiomics", "--image", str(image), "--rtstruct", str(st["rtstruct"]), *few,
                     "-o", str(tmp_path / f"r{noted}.csv")]) == 0
        err = capsys.readouterr().err
        assert (said in err) is noted, err
        assert ("could not be checked against the CT: the CT is not DICOM" in err) is noted
        assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(image), "--rtstruct", str(st["rtstruct"]),
                     "-o", str(tmp_path / f"d{noted}.csv")]) == 0
        assert (said in capsys.readouterr().err) is noted
    with pytest.warns(InputNote, match=f"PatientID {patient}"):
        read_rtstruct(st["rtstruct"], read_ct(nifti), names=["GTV"])
    other = copy.deepcopy(pydicom.dcmread(st["rtstruct"]))              # a DICOM CT: checked, refused as before
    for item in other.ReferencedFrameOfReferenceSequence:
        item.FrameOfReferenceUID = "1.2.3.4"
    other.save_as(tmp_path / "other.dcm")
    with pytest.raises(InputError, match="frame of reference 1.2.3.4"):
        read_rtstruct(tmp_path / "other.dcm", ct, names=["GTV"])


def test_a_dicom_seg_with_a_ct_that_is_not_dicom_is_noted_as_unchecked(p1, tmp_path, capsys):
    """QA defect: ``radiomics --image CT.nii.gz --mask TUMOUR.seg.dcm`` read a DICOM SEG onto a NIfTI CT without a word,
    while an RTSTRUCT there is noted as unchecked (another patient's SEG on the same grid would be measured silently).
    A SEG on a CT with no FrameOfReferenceUID is now noted in the RTSTRUCT's words (naming its PatientID and frame);
    with the DICOM CT it is checked (another frame refused), no note."""
    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import read_seg, write_seg
    from lungai.io import write_image

    st, ct = p1
    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ct_reference(st["ct"], image=ct), tmp_path / "t.seg.dcm",
                    roles={"Tumour": "gtv"})
    header = pydicom.dcmread(seg, stop_before_pixels=True)
    nifti = write_image(ct, tmp_path / "ct.nii.gz")
    said = (f"note: the SEG {seg} (PatientID {header.PatientID}, frame of reference {header.FrameOfReferenceUID}) "
            "could not be checked against the CT: the CT is not DICOM")
    few = ["--image-types", "Original", "--feature-classes", "shape"]
    for image, noted in ((nifti, True), (st["ct"], False)):
        assert main(["radiomics", "--image", str(image), "--mask", str(seg), *few,
                     "-o", str(tmp_path / f"r{noted}.csv")]) == 0
        err = capsys.readouterr().err
        assert (said in err) is noted, err
    other = pydicom.dcmread(seg)                                          # a DICOM CT: checked, refused as before
    other.FrameOfReferenceUID = "1.2.3.4"
    other.save_as(tmp_path / "other.seg.dcm")
    with pytest.raises(InputError, match="frame of reference 1.2.3.4"):
        read_seg(tmp_path / "other.seg.dcm", ct)


def _with_a_pet_frame(source, path, pet_frame, roi=None):
    """The structure set ``source`` referring to a second frame of reference ``pet_frame`` (a registered PET), listed
    first; ``roi``: the name of a structure then drawn in that frame (its ReferencedFrameOfReferenceUID)."""
    ds = pydicom.dcmread(source)
    pet = Dataset()
    pet.FrameOfReferenceUID = pet_frame
    ds.ReferencedFrameOfReferenceSequence = [pet, *ds.ReferencedFrameOfReferenceSequence]
    for item in ds.StructureSetROISequence:
        if item.ROIName == roi:
            item.ReferencedFrameOfReferenceUID = pet_frame
    ds.save_as(path)
    return path


def test_a_structure_set_of_several_frames_reads_the_cts_structures_and_refuses_those_of_another_frame(p1, tmp_path):
    """A structure set may hold structures of several frames of reference (the planning CT's and a registered PET's
    or MR's; DICOM PS3.3 C.8.8.5).  QA (LUNG1-003's RTSTRUCT with a PET frame listed first): the whole RTSTRUCT was
    refused as "drawn in frame of reference <the PET's>" although its structures are the CT's (dicom-scan / cohort
    paired it with the CT by that frame); a structure drawn in the PET's frame was read in the CT's coordinates
    without a word (its ROI's ReferencedFrameOfReferenceUID was never looked at).  Now the CT's frame must be among
    those the structure set refers to, and a structure of another frame is refused when it is used, naming it."""
    from lungai.dicom.rtstruct import referenced_frame_of_reference

    st, ct = p1
    pet = "1.2.826.0.1.3680043.8.498.77"
    frame = ct.GetMetaData("0020|0052")
    first = _with_a_pet_frame(st["rtstruct"], tmp_path / "pet_first.dcm", pet)
    assert referenced_frame_of_reference(pydicom.dcmread(first)) == frame      # the frame its structures are in
    for name, mask in read_rtstruct(first, ct).items():
        assert np.array_equal(array(mask), array(st["masks"][name])), name
    mixed = _with_a_pet_frame(st["rtstruct"], tmp_path / "pet_roi.dcm", pet, roi="Lung_L")
    masks = read_rtstruct(mixed, ct, names=["GTV", "Lung_R"])
    for name, mask in masks.items():
        assert np.array_equal(array(mask), array(st["masks"][name])), name
    with pytest.raises(InputError, match=f"structure 'Lung_L' of {re.escape(str(mixed))} is drawn in frame of "
                                         f"reference {pet} "
                                         f".*not the CT's {frame}") as err:
        read_rtstruct(mixed, ct, names=["Lung_L"])
    assert "--structure-map ('Lung_L: null')" in err.value.fix
    with pytest.raises(InputError, match=f"structure 'Lung_L' of {re.escape(str(mixed))} is drawn in frame of "
                                         "reference"):
        read_rtstruct_role(mixed, ct, "lungs")
    mask, used = read_rtstruct_role(mixed, ct, "lung_right")
    assert used == ["Lung_R"] and np.array_equal(array(mask), array(st["masks"]["Lung_R"]))
    ds = pydicom.dcmread(mixed)                             # none of its frames is the CT's: refused whole, as before
    for item in ds.StructureSetROISequence:
        item.ReferencedFrameOfReferenceUID = pet
    ds.ReferencedFrameOfReferenceSequence = ds.ReferencedFrameOfReferenceSequence[:1]
    ds.save_as(tmp_path / "pet_only.dcm")
    with pytest.raises(InputError, match=f"pet_only.dcm is drawn in frame of reference {pet}, the CT is in {frame}"):
        read_rtstruct(tmp_path / "pet_only.dcm", ct, names=["GTV"])


def test_two_structures_of_one_roi_number_are_refused_not_merged(p1, tmp_path):
    """Two structures of one ROI number (invalid DICOM, left by a merge of two structure sets).  QA on LUNG1-003 with
    gtv-3 given gtv-2's number: gtv-3 vanished from the file ("not in ... it holds ...") and gtv-2 was read as both
    GTVs' contours (here: 'Lung_R' read as both lungs, without a word).  Now both are listed and refused when read,
    naming the number; the file's other structures read as before."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    number = {str(r.ROIName): int(r.ROINumber) for r in ds.StructureSetROISequence}
    right, left = number["Lung_R"], number["Lung_L"]
    for r in ds.StructureSetROISequence:
        if int(r.ROINumber) == left:
            r.ROINumber = right
    for seq in (ds.ROIContourSequence, ds.RTROIObservationsSequence):
        for item in seq:
            if int(item.ReferencedROINumber) == left:
                item.ReferencedROINumber = right
    ds.save_as(tmp_path / "one_number.dcm")
    assert list_structures(tmp_path / "one_number.dcm") == ["GTV", "Lung_R", "Lung_L"]
    for name in ("Lung_R", "Lung_L"):
        with pytest.raises(InputError, match=f"one_number.dcm gives ROI number {right} to 2 structures "
                                             r"\('Lung_R', 'Lung_L'\)"):
            read_rtstruct(tmp_path / "one_number.dcm", ct, names=[name])
    with pytest.raises(InputError, match=f"ROI number {right}"):
        read_rtstruct_role(tmp_path / "one_number.dcm", ct, "lungs")
    gtv = read_rtstruct(tmp_path / "one_number.dcm", ct, names=["GTV"])["GTV"]
    assert np.array_equal(array(gtv), array(st["masks"]["GTV"]))


# ------------------------------------------------------------------------- dose: lungs minus the motion envelope

def test_motion_envelope_names():
    envelopes = ["iGTV", "IGTV_1", "ITV", "i-GTV", "GTV_MIP", "GTV_4D", "GTVp_avg"]
    others = ["ITV_5mm", "iGTV+3mm", "PTV_ITV", "ITV_ring", "zITV", "Lungs-iGTV", "GTV", "GTV-1", "PTV", "Lung_R"]
    assert roles.motion_envelopes(envelopes + others) == envelopes
    assert roles.motion_envelopes(["iGTV", "ITV"], {"iGTV": None}) == ["ITV"]        # the user's mapping decides
    assert roles.motion_envelopes(["iGTV"], {"iGTV": "gtv"}) == []                   # mapped as the GTV: a GTV


def _rtstruct_with(st, tmp_path, name, rename=None, add=None):
    """P1's RTSTRUCT with its GTV renamed (``rename``) and / or a copy of the GTV's contours added as ``add``."""
    ds = pydicom.dcmread(st["rtstruct"])
    gtv = next(r for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    if add:
        number = max(int(r.ROINumber) for r in ds.StructureSetROISequence) + 1
        roi = copy.deepcopy(gtv)
        roi.ROINumber, roi.ROIName = number, add
        rc = copy.deepcopy(_roi(ds, "GTV"))
        rc.ReferencedROINumber = number
        ds.StructureSetROISequence.append(roi)
        ds.ROIContourSequence.append(rc)
    if rename:
        gtv.ROIName = rename
    path = tmp_path / name
    ds.save_as(path)
    return path


def test_dose_lungs_minus_the_igtv_when_the_rtstruct_has_no_gtv(p1, tmp_path, capsys):
    """Session 32: an RTSTRUCT with an iGTV (the GTV's 4D motion envelope) and no GTV gave the MLD of the whole lungs,
    the tumour included (the iGTV only warned); clinics compute it on 'Lungs - iGTV'.  Now the envelope is subtracted,
    said in a note and in dose.csv's masks column; with a GTV, the GTV is subtracted as before (the iGTV warned)."""
    import pandas as pd

    from lungai.cli import main

    st, _ = p1

    def dose_csv(rtstruct, name):
        out = tmp_path / name
        assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct", str(rtstruct),
                     "-o", str(out)]) == 0
        return pd.read_csv(out).iloc[0], capsys.readouterr()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, _ = dose_csv(st["rtstruct"], "gtv.csv")
        envelope, said = dose_csv(_rtstruct_with(st, tmp_path, "igtv.dcm", rename="iGTV"), "igtv.csv")
        both, said_both = dose_csv(_rtstruct_with(st, tmp_path, "both.dcm", add="iGTV"), "both.csv")
    # the iGTV holds the GTV's contours: the lungs minus it are the lungs minus the GTV
    assert envelope.dose_mld_gy == pytest.approx(plain.dose_mld_gy) and envelope.dose_v20_pct == pytest.approx(
        plain.dose_v20_pct)
    assert np.isnan(envelope.dose_gtv_mean_gy)                                  # no GTV dose of an envelope
    assert (f"no GTV, minus the tumour's motion envelope: RTSTRUCT structure iGTV ({tmp_path / 'igtv.dcm'}"
            in envelope.masks)
    assert "note: the RTSTRUCT has no GTV: the lung dose metrics are of the lungs minus the tumour's motion " \
           "envelope 'iGTV'" in said.out
    # a GTV and an iGTV: the GTV, as before
    assert f"minus GTV: RTSTRUCT structure GTV ({tmp_path / 'both.dcm'}" in both.masks
    assert "motion envelope" not in both.masks
    assert "motion envelope" not in said_both.out and both.dose_mld_gy == pytest.approx(plain.dose_mld_gy)
    assert both.dose_gtv_mean_gy == pytest.approx(plain.dose_gtv_mean_gy)
    # the same masks for lungai demo --rtstruct (rtstruct_dose_masks, dose_masks)
    from lungai.demo.pipeline import dose_masks
    from lungai.dicom.masks import rtstruct_dose_masks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rt = rtstruct_dose_masks(tmp_path / "igtv.dcm", p1[1])
    assert rt["gtv"] is None and not (array(rt["lungs"]) & array(st["masks"]["GTV"])).any()
    shown = dose_masks({}, rt)
    assert shown["masks"] == envelope.masks and shown["lungs_label"] == "lungs minus motion envelope (RTSTRUCT)"


def test_an_igtv_with_a_gap_is_subtracted_for_the_dose_not_refused(small_phantom, tmp_path, capsys, monkeypatch):
    """Review of 8b25950: an iGTV of a primary and a node at another level (slices left out between them, common) made
    dose-features --rtstruct (and demo --rtstruct) fail ('no contour on N CT slice(s) ... --allow-gaps') where they
    had succeeded, after a warning that it 'is not used as the tumour'.  Now the envelope is read with gaps allowed
    and subtracted, the warning says so; one that cannot be read at all leaves the whole lungs, warned with why."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dicom import rtstruct as rt_module
    from lungai.dicom.masks import rtstruct_dose_masks

    st, envelope = envelope_study(small_phantom, tmp_path / "export")
    out = tmp_path / "dose.csv"
    assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                 str(st["rtstruct"]), "-o", str(out)]) == 0          # the CLI prints the warnings on stderr
    text = capsys.readouterr().err
    row = pd.read_csv(out).iloc[0]
    assert "no GTV, minus the tumour's motion envelope: RTSTRUCT structure iGTV" in row.masks
    assert np.isnan(row.dose_gtv_mean_gy)
    assert "not used as the tumour" not in text
    assert ("structure 'iGTV' is an internal target volume (the GTV's motion envelope), not a GTV: the RTSTRUCT has no "
            "GTV, so it is subtracted from the lungs for the dose metrics (Lungs - iGTV; no GTV dose)") in text
    ct = read_ct(st["ct"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = rtstruct_dose_masks(st["rtstruct"], ct)
    lungs = (array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"])) & ~array(envelope)
    np.testing.assert_array_equal(array(m["lungs"]) > 0, lungs)               # node included: all of the iGTV left out
    # an envelope that cannot be read even so: the whole lungs, the warning naming why
    real = rt_module.read_rtstruct

    def refuse(path, ct_, names=None, **kw):
        if names and "iGTV" in names:
            raise InputError("structure 'iGTV' has a contour off the slice planes", "re-export it")
        return real(path, ct_, names=names, **kw)

    monkeypatch.setattr(rt_module, "read_rtstruct", refuse)
    with pytest.warns(InputNote, match=r"motion envelope 'iGTV' cannot be read \(structure 'iGTV' has a contour off "
                                       r"the slice planes\): the lung dose metrics are of the whole lungs"):
        m = rtstruct_dose_masks(st["rtstruct"], ct)
    assert m["envelope_source"] is None and m["envelope_note"] is None
    np.testing.assert_array_equal(array(m["lungs"]) > 0, array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"]))
    # review of 02138d6: an envelope empty on this CT's grid (contoured outside it) is not said as subtracted
    def empty(path, ct_, names=None, **kw):
        masks = real(path, ct_, names=names, **kw)
        return {n: m * 0 for n, m in masks.items()} if names and "iGTV" in names else masks

    monkeypatch.setattr(rt_module, "read_rtstruct", empty)
    with pytest.warns(InputNote, match=r"motion envelope 'iGTV' is empty on this CT's grid: the lung dose metrics are "
                                       r"of the whole lungs"):
        m = rtstruct_dose_masks(st["rtstruct"], ct)
    assert m["envelope_source"] is None and m["envelope_note"] is None


def test_an_unreadable_igtv_is_never_said_subtracted(small_phantom, tmp_path, capsys, monkeypatch):
    """QA (e2e): dose-features --rtstruct with an iGTV that cannot be read (three ROIs named 'iGTV') warned first that
    'iGTV' "is subtracted from the lungs for the dose metrics", then that it cannot be read (the whole lungs), and
    dose.csv's masks said only "no GTV (the lungs include the tumour)".  Now the envelope is read before the notes:
    its note does not say it is subtracted, and the masks column says it was not, and why."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dicom import rtstruct as rt_module

    st, _ = envelope_study(small_phantom, tmp_path / "export")
    real = rt_module.read_rtstruct

    def refuse(path, ct_, names=None, **kw):
        if names and "iGTV" in names:
            raise InputError("the RTSTRUCT holds 3 structures named 'iGTV'", "rename them")
        return real(path, ct_, names=names, **kw)

    monkeypatch.setattr(rt_module, "read_rtstruct", refuse)
    out = tmp_path / "dose.csv"
    assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                 str(st["rtstruct"]), "-o", str(out)]) == 0
    text = capsys.readouterr().err
    assert "subtracted from the lungs for the dose metrics" not in text
    assert "structure 'iGTV' is an internal target volume (the GTV's motion envelope), not a GTV: it is not used" in text
    assert "motion envelope 'iGTV' cannot be read (the RTSTRUCT holds 3 structures named 'iGTV')" in text
    assert pd.read_csv(out).iloc[0].masks.endswith(
        "; no GTV, the tumour's motion envelope 'iGTV' cannot be read (the RTSTRUCT holds 3 structures named 'iGTV'): "
        "not subtracted, the lungs include the tumour")


def test_dose_features_envelope_file_is_for_mask_files_without_a_gtv(tmp_path, capsys):
    """The panel's --envelope (its iGTV segment, no tumour segment) is refused beside --gtv (the GTV is subtracted)
    and --rtstruct (the RTSTRUCT's iGTV is found by name), before any work."""
    from lungai.cli import main

    base = ["dose-features", "--dose", str(tmp_path / "d.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
            "--envelope", str(tmp_path / "e.nii.gz"), "-o", str(tmp_path / "out" / "dose.csv")]
    assert main(base + ["--lungs", str(tmp_path / "l.nii.gz"), "--gtv", str(tmp_path / "g.nii.gz")]) != 0
    assert "--envelope is subtracted from the lungs only without a GTV" in capsys.readouterr().err
    assert main(base + ["--rtstruct", str(tmp_path / "rs.dcm")]) != 0
    assert "with --rtstruct an iGTV / ITV is found by name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dose_features_refuses_an_empty_envelope_and_says_an_envelope_emptied_the_lungs(tmp_path, capsys):
    """Review of 02138d6: an empty --envelope (the panel's empty 'ITV' segment) was accepted silently and dose.csv's
    masks said "minus the tumour's motion envelope"; an envelope covering the lungs gave "the lung mask minus the
    GTV is empty".  Now an empty envelope is refused (named, with the fix) and the emptied lungs are said as such."""
    from lungai.cli import main

    shape = (12, 16, 16)                                     # z, y, x
    def image(arr, pixel=sitk.sitkUInt8):
        img = sitk.Cast(sitk.GetImageFromArray(arr), pixel)
        img.SetSpacing((2.0, 2.0, 2.0))
        return img

    lungs = np.zeros(shape, np.uint8)
    lungs[2:10, 3:13, 3:13] = 1
    sitk.WriteImage(image(np.full(shape, -800, np.int16), sitk.sitkInt16), str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(image(np.full(shape, 10.0, np.float32), sitk.sitkFloat32), str(tmp_path / "dose.nii.gz"))
    sitk.WriteImage(image(lungs), str(tmp_path / "lungs.nii.gz"))
    sitk.WriteImage(image(np.zeros(shape, np.uint8)), str(tmp_path / "empty.nii.gz"))
    sitk.WriteImage(image(lungs), str(tmp_path / "all.nii.gz"))
    base = ["dose-features", "--dose", str(tmp_path / "dose.nii.gz"), "--ct", str(tmp_path / "ct.nii.gz"),
            "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "out" / "dose.csv")]
    assert main(base + ["--envelope", str(tmp_path / "empty.nii.gz"), "--envelope-name", "Slicer segment ITV"]) != 0
    err = capsys.readouterr().err
    assert f"the motion envelope mask {tmp_path / 'empty.nii.gz'} (Slicer segment ITV) is empty (no voxel > 0)" in err
    assert "leave --envelope out" in err
    assert main(base + ["--envelope", str(tmp_path / "all.nii.gz")]) != 0
    err = capsys.readouterr().err
    assert "the lung mask minus the motion envelope is empty" in err and "minus the GTV" not in err
    assert not (tmp_path / "out" / "dose.csv").exists()


def test_cohort_records_an_envelope_read_with_gaps_in_the_patients_notes(small_phantom, tmp_path):
    """cohort reads the tumour's motion envelope (iGTV of a primary and a node: slices left out between them) with
    gaps allowed, also without --allow-gaps, for the dose metrics' lungs minus iGTV - but outside the block that puts
    the gap notes into the patient's notes: result.json / patients.csv said nothing of it (the warning went to a
    worker's stderr).  Now the patient's notes name the envelope read as separate parts, as for the lungs / GTV."""
    from types import SimpleNamespace

    from lungai.dicom.cohort import _dose_envelope

    st, envelope = envelope_study(small_phantom, tmp_path / "export")
    ct = read_ct(st["ct"])
    job = SimpleNamespace(rtstruct=st["rtstruct"], structures=list_structures(st["rtstruct"]))
    notes, dose_notes, unread, provenance = [], [], [], {"tumour": "automatic"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # nothing is left to a warning only the worker's terminal shows
        mask, text = _dose_envelope(job, ct, None, provenance, notes, dose_notes, unread)
    assert mask is not None and not unread and "motion envelope" in text
    np.testing.assert_array_equal(array(mask) > 0, array(envelope) > 0)
    gaps = [n for n in notes if "read as separate parts" in n]
    assert len(gaps) == 1 and gaps[0].startswith("structure 'iGTV' has no contour on"), notes


def test_a_lung_minus_a_target_is_told_as_a_lung_never_as_a_tumour():
    """QA (TG-263 'Lung_R-GTV' / 'Lungs-ITV'): the right lung minus the GTV was warned as "named like a tumour ...
    map it with --structure-map ('Lung_R-GTV: gtv')" - followed, the whole right lung would be subtracted from the
    lungs as a GTV - also when a Lung_R was there.  When such a structure is the only candidate for the lungs, the
    notes and the refusal now say what it is and the mapping that takes it as a lung; beside whole lungs, nothing."""
    from lungai.dicom.roles import dose_lungs_role, lung_minus_target, role_notes

    assert lung_minus_target("Lung_R-GTV") == ("lung_right", "GTV")
    assert lung_minus_target("Lungs-ITV") == ("lungs", "ITV")
    assert lung_minus_target("Lung_L\u2013GTV") == ("lung_left", "GTV")
    for name in ("Lungs-GTV", "Lungs-iGTV", "Lung-Right", "z_Lungs-ITV", "Lungs-GTV+5mm", "Lungs-Heart", "GTV-1"):
        assert lung_minus_target(name) is None, name
    assert role_notes(["Lung_R-GTV", "Lung_R", "Lung_L", "GTVp"]) == []       # the whole lungs are there
    notes = role_notes(["Lung_R-GTV", "Lung_L", "GTVp"])
    assert len(notes) == 1 and ": gtv'" not in notes[0] and "tumour" not in notes[0], notes
    assert "'Lung_R-GTV' is the right lung minus the GTV" in notes[0]
    assert "--structure-map ('Lung_R-GTV: lung_right')" in notes[0]
    notes = role_notes(["Lungs-ITV", "GTVp"])
    assert len(notes) == 1 and "--structure-map ('Lungs-ITV: lungs_minus_gtv')" in notes[0]
    assert "leave out the whole ITV, not the GTV only" in notes[0]
    assert role_notes(["Lungs-ITV", "GTVp"], mapping={"Lungs-ITV": "lungs_minus_gtv"}) == []   # the user's choice
    with pytest.raises(InputError) as err:
        dose_lungs_role(["Lung_R-GTV", "Lung_L", "GTVp"])
    assert err.value.fix.startswith("to use the lung structure minus a target volume (no role), map "
                                    "'Lung_R-GTV: lung_right'"), err.value.fix
    assert dose_lungs_role(["Lung_R-GTV", "Lung_L", "GTVp"], mapping={"Lung_R-GTV": "lung_right"}) == "lungs"


def test_a_dicom_seg_on_a_ct_carrying_only_a_patient_id_is_compared_by_it(p1, tmp_path):
    """QA (fornotes58): a CT carrying a DICOM PatientID but no FrameOfReferenceUID (an NRRD with the 0010|0020 key)
    took another patient's SEG with the generic note that the CT "carries no PatientID": another PatientID is refused
    naming both, the same one is noted saying what the CT carries."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import read_seg, write_seg

    st, ct = p1
    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ct_reference(st["ct"], image=ct), tmp_path / "t.seg.dcm",
                    roles={"Tumour": "gtv"})
    patient = str(pydicom.dcmread(seg, stop_before_pixels=True).PatientID)
    bare = read_ct(st["ct"])    # its own image: erasing metadata from sitk.Image(ct) erases it from the shared ct too
    for key in bare.GetMetaDataKeys():
        bare.EraseMetaData(key)
    bare.SetMetaData("0010|0020", "OTHER-9")
    with pytest.raises(InputError, match=f"another patient's segmentation: PatientID {patient} \\(SEG\\) is not the "
                                         "CT's OTHER-9"):
        read_seg(seg, bare)
    bare.SetMetaData("0010|0020", patient)
    with pytest.warns(InputNote) as caught:
        assert "Tumour" in read_seg(seg, bare)
    said = [str(w.message) for w in caught if "could not be checked" in str(w.message)]
    assert len(said) == 1 and f"the CT carries PatientID {patient} (the same) but no FrameOfReferenceUID" in said[0]


# ------------------------------------------------------------------ the lungs of the dose metrics named by the user

def _dose_row(st, tmp_path, capsys, name, *extra):
    import pandas as pd

    from lungai.cli import main

    out = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                     str(st["rtstruct"]), "-o", str(out), *extra]) == 0
    capsys.readouterr()
    return pd.read_csv(out).iloc[0]


def test_dose_features_several_structures_are_the_union_of_the_lungs(p1, tmp_path, capsys):
    """QA (roles59) on LUNG1-003 renamed Lung_R / Lung_L: `dose-features --rtstruct RS --structure Lung_R --structure
    Lung_L` gave MLD 11.88 Gy, V20 21.2 % - the left lung alone, the first --structure dropped without a word (both
    lungs: 8.40 Gy, 12.0 %).  Several --structure are now the union of the named lung structures."""
    st, _ = p1
    default = _dose_row(st, tmp_path, capsys, "default.csv")
    both = _dose_row(st, tmp_path, capsys, "both.csv", "--structure", "Lung_R", "--structure", "Lung_L")
    left = _dose_row(st, tmp_path, capsys, "left.csv", "--structure", "Lung_L")
    assert left.dose_mld_gy != pytest.approx(default.dose_mld_gy)       # the phantom's lungs differ in dose
    for column in ("dose_mld_gy", "dose_v5_pct", "dose_v20_pct", "dose_d50_gy"):
        assert both[column] == pytest.approx(default[column]), column
    assert both.masks.startswith("lungs: RTSTRUCT structure Lung_R + Lung_L (")
    # the same rule for lungai demo --rtstruct (rtstruct_dose_masks takes the list)
    from lungai.dicom.masks import rtstruct_dose_masks

    m = rtstruct_dose_masks(st["rtstruct"], p1[1], ["Lung_R", "Lung_L"])
    assert np.array_equal(array(m["lungs"]), array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"]))
    assert m["lung_source"].startswith("RTSTRUCT structure Lung_R + Lung_L (")


@pytest.mark.parametrize("spec", ["role:gtv", "role:gtv_node", "role:gtv_primary", "GTV", "gtv"])
def test_dose_features_refuses_a_gtv_as_the_lungs(p1, tmp_path, capsys, spec):
    """QA (roles59): `dose-features --rtstruct RS --structure role:gtv_node` (a GTV's role or name as the lungs) failed
    with "the lung mask minus the GTV is empty - give a lung mask (label > 0) on the CT grid", naming neither the
    option nor the roles that make the lungs.  A GTV as the lungs is now refused, saying so and what to give."""
    from lungai.cli import main

    st, _ = p1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                     str(st["rtstruct"]), "-o", str(tmp_path / "x.csv"), "--structure", "Lung_R", "--structure", spec])
    err = capsys.readouterr().err
    assert code != 0 and not (tmp_path / "x.csv").exists()
    assert f"the lung structure {spec!r} is a GTV" in err
    assert "role:lungs" in err and "--gtv" in err


def test_dose_masks_of_the_lungs_minus_gtv_built_from_the_lungs_name_the_gtvs_subtracted(p1, tmp_path, capsys):
    """QA (roles59): `dose-features --rtstruct RS --structure role:lungs_minus_gtv` on an RTSTRUCT with Lung_R / Lung_L
    and GTVs (no 'Lungs-GTV' structure) wrote masks "lungs: RTSTRUCT structure Lung_R + Lung_L + GTVp + GTV_LN + GTVn
    (...)": the GTVs listed as part of the lungs (a union) though they were subtracted.  Now "Lung_R + Lung_L minus
    GTV"."""
    st, _ = p1
    default = _dose_row(st, tmp_path, capsys, "default.csv")
    built = _dose_row(st, tmp_path, capsys, "built.csv", "--structure", "role:lungs_minus_gtv")
    assert built.dose_mld_gy == pytest.approx(default.dose_mld_gy)
    assert built.masks.startswith("lungs: RTSTRUCT structure Lung_R + Lung_L minus GTV (")
    assert "Lung_L + GTV" not in built.masks


def test_radiomics_structures_of_the_lungs_minus_gtv_built_from_the_lungs_name_the_gtvs_subtracted(p1, tmp_path,
                                                                                                   capsys):
    """QA (roles59): `radiomics --rtstruct RS --structure role:lungs_minus_gtv` (no 'Lungs-GTV' structure: the lungs
    minus the GTVs) wrote `structures` "Lung_R+Lung_L+GTV" in _settings.csv - the GTV listed as part of the segment,
    though subtracted from it.  Now "Lung_R+Lung_L minus GTV", as the standard lungs_minus_tumour segment says it."""
    import pandas as pd

    from lungai.cli import main

    st, _ = p1
    out = tmp_path / "out" / "f.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(st["rtstruct"]), "--structure",
                     "role:lungs_minus_gtv", "--image-types", "Original", "--feature-classes", "shape", "-o",
                     str(out)]) == 0
    capsys.readouterr()
    settings = pd.read_csv(out.with_name("f_settings.csv"), keep_default_na=False).set_index("segment")
    assert settings.loc["lungs_minus_gtv", "structures"] == "Lung_R+Lung_L minus GTV"


# ------------------------------------------------------------------------------- two structures of one lung side

def _with_copy(st, tmp_path, name, of="Lung_R", contours_of="GTV"):
    """The RTSTRUCT with a structure ``name`` added (ROI of ``of``, contours of ``contours_of``: a wrong / old lung)."""
    ds = pydicom.dcmread(st["rtstruct"])
    src = next(r for r in ds.StructureSetROISequence if r.ROIName == of)
    number = max(int(r.ROINumber) for r in ds.StructureSetROISequence) + 1
    roi = copy.deepcopy(src)
    roi.ROINumber, roi.ROIName = number, name
    rc = copy.deepcopy(_roi(ds, contours_of))
    rc.ReferencedROINumber = number
    obs = Dataset()
    obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = number, number, "ORGAN"
    ds.StructureSetROISequence.insert(0, roi)
    ds.ROIContourSequence.append(rc)
    ds.RTROIObservationsSequence.append(obs)
    path = tmp_path / "two_right_lungs.dcm"
    ds.save_as(path)
    return path


def test_two_structures_of_one_lung_side_are_refused_by_dose_and_radiomics_alike(p1, tmp_path):
    """QA (lungroles59): with 'RT LUNG' (an old contour) listed before 'Lung_R', the dose metrics took the first
    ('RT LUNG' + Lung_L: the MLD of the wrong lung, no word) while radiomics' role:lung_right took the union of both.
    Both now refuse, naming the two structures and how to choose one."""
    from lungai.dicom.masks import rtstruct_dose_masks

    st, ct = p1
    assert roles.required_names("lungs", ["Lung_R", "lung_r", "Lung_L"]) == ["Lung_R", "Lung_L"]  # case: own check
    with pytest.raises(InputError, match=r"2 structures have role 'lung_right': 'RT LUNG', 'Lung_R'") as info:
        roles.required_names("lungs", ["RT LUNG", "Lung_R", "Lung_L"])
    assert "--structure 'RT LUNG' --structure Lung_L" in info.value.fix and "'Lung_R: null'" in info.value.fix
    path = _with_copy(st, tmp_path, "RT LUNG")
    for read in (lambda: rtstruct_dose_masks(path, ct), lambda: read_rtstruct_role(path, ct, "lung_right"),
                 lambda: read_rtstruct_role(path, ct, "lungs_minus_gtv")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(InputError, match="2 structures have role 'lung_right'"):
                read()
    # the fix works: the structures chosen by name, or the other hidden by the mapping
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = rtstruct_dose_masks(path, ct, lungs=["Lung_R", "Lung_L"])
        hidden = rtstruct_dose_masks(path, ct, mapping={"RT LUNG": None})
    both = array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"])
    assert np.array_equal(array(m["lungs"]) > 0, both > 0)
    assert "Lung_R + Lung_L" in hidden["lung_source"] and "RT LUNG" not in hidden["lung_source"]
    # a SEG alike: role:lung_right says the two segments, not "no segment has role"
    from lungai.dicom.masks import select_segments

    with pytest.raises(InputError, match="2 structures have role 'lung_right'"):
        select_segments({"RT LUNG": st["masks"]["GTV"], "Lung_R": st["masks"]["Lung_R"]}, "role:lung_right")


def test_the_fix_of_two_structures_of_one_lung_side_keeps_what_was_asked_and_each_suggestion_works(p1, tmp_path,
                                                                                                    capsys):
    """QA (rtfolder60, copies of LUNG1-003's structure set with a second right lung 'RT LUNG' / 'Lung, R' / 'Lung_R'
    beside 'Lung-Right'): the refusal's fix was one text for every command and request - ``--structure role:lung_right``
    (dose-features: the MLD of the right lung) was told to give ``--structure Lung-Right --structure Lung-Left`` (the
    union: both lungs); ``lungai cohort``, which has no --structure, was told to use it; radiomics' standard segments
    were told to give two --structure (two segments of those names: no tumour, no lungs segment; ``--lungs R,L`` keeps
    them); and with 'Lung R' beside 'Lung_R' the mapping line 'Lung_R: null' hid both (names are compared
    normalised), so the next run found no right lung.  Each suggestion now keeps what was asked and works."""
    import shutil

    import pandas as pd
    import yaml

    from lungai.cli import main
    from lungai.dicom.cohort import plan_cohort

    st, _ = p1
    asked = {}
    for role in ("lung_right", "lungs"):
        with pytest.raises(roles.AmbiguousRole) as info:
            roles.required_names(role, ["RT LUNG", "Lung_R", "Lung_L"])
        asked[role] = info.value.fix
    assert "--structure 'RT LUNG')" in asked["lung_right"] and "Lung_L" not in asked["lung_right"]
    assert "--structure 'RT LUNG' --structure Lung_L)" in asked["lungs"]
    # three of one side: every one but the kept is hidden, each line as YAML reads it ('[Lung R]' quoted)
    with pytest.raises(roles.AmbiguousRole) as info:
        roles.required_names("lung_right", ["RT LUNG", "Lung_R", "[Lung R]"])
    lines = re.findall(r"""(?:'([^']+)'|"([^"]+)")""", info.value.fix.split("--structure-map file (")[1])
    hidden = yaml.safe_load("\n".join(a or b for a, b in lines))
    assert set(hidden) == {"Lung_R", "[Lung R]"} and roles.find_role(["RT LUNG", "Lung_R", "[Lung R]"], "lung_right",
                                                                     hidden) == ["RT LUNG"]
    # one name the mapping cannot tell from the kept one: no mapping line (it would hide both), rename instead
    with pytest.raises(roles.AmbiguousRole) as info:
        roles.required_names("lungs", ["Lung R", "Lung_R", "Lung_L"])
    assert "'Lung_R: null'" not in info.value.fix and "rename or remove" in info.value.fix
    assert roles.find_role(["Lung R", "Lung_R"], "lung_right", {"Lung_R": None}) == []     # why: it hides both

    path = _with_copy(st, tmp_path, "RT LUNG")
    out = tmp_path / "out"
    few = ["--image-types", "Original", "--feature-classes", "shape"]
    assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(path), *few, "-o", str(out / "r.csv")]) == 2
    fix = capsys.readouterr().err.split("How to fix:")[1]
    assert "--lungs 'RT LUNG,Lung_L'" in fix and "--structure " not in fix.replace("--structure-map", ""), fix
    assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(path), "--structure", "role:lungs", *few,
                 "-o", str(out / "r.csv")]) == 2
    fix = capsys.readouterr().err.split("How to fix:")[1]
    assert "--structure " not in fix.replace("--structure-map", "") and "'Lung_R: null'" in fix, fix
    # the radiomics suggestion works: the standard segments, the right lung 'RT LUNG'
    assert main(["radiomics", "--image", str(st["ct"]), "--rtstruct", str(path), "--lungs", "RT LUNG,Lung_L", *few,
                 "-o", str(out / "r.csv")]) == 0
    capsys.readouterr()
    settings = pd.read_csv(out / "r_settings.csv", keep_default_na=False).set_index("segment")
    assert {"tumour", "lungs", "right_lung"} <= set(settings.index)
    assert settings.loc["right_lung", "structures"] == "RT LUNG"

    # lungai cohort (no --structure): the patient fails at planning, told the mapping line only
    root = tmp_path / "export"
    shutil.copytree(st["ct"], root / "P1" / "CT")
    shutil.copy(path, root / "P1" / "rs.dcm")
    shutil.copy(st["dose"], root / "P1" / "rd.dcm")
    jobs, inv = plan_cohort(root)
    (job,) = jobs
    assert job.error and "2 structures have role 'lung_right'" in job.error[0]
    assert "--structure " not in job.error[1].replace("--structure-map", "") and "'Lung_R: null'" in job.error[1]
    assert not plan_cohort(root, mapping={"Lung_R": None})[0][0].error     # the fix works


@pytest.mark.parametrize("name, role", [
    ("Lung_Tot", "lungs"), ("LUNGS_TOT", "lungs"), ("TotalLung", "lungs"), ("Lungs Total", "lungs"),
    ("Lungs_ex_GTV", "lungs_minus_gtv"), ("Lungs exGTV", "lungs_minus_gtv"), ("Lungs-GTVtot", "lungs_minus_gtv"),
    ("Lungs-GTV_tot", "lungs_minus_gtv"),
    ("z_Lungs_Tot", None), ("Lungs_Tot_opt", None), ("Lungs_Tot_PRV", None), ("Ring_Lungs_Tot", None),
    ("Lung_GTV", None), ("Lungs_ex_PTV", None), ("Lungs-ITV", None)])
def test_total_lung_and_lungs_ex_gtv_names_have_their_role(name, role):
    """QA (lungroles59): 'Lung_Tot', 'LUNGS_TOT', 'TotalLung', 'Lungs_ex_GTV', 'Lungs exGTV', 'Lungs-GTVtot' had no
    role (the whole lungs in the plural of other languages did: 'Poumons tot'); helper structures still have none."""
    assert roles.structure_role(name) == role


def test_dose_metrics_of_one_lung_say_so(p1, tmp_path, capsys):
    """QA (lungroles59): `dose-features --rtstruct RS --structure role:lung_right` wrote the dose_mld_gy of the right
    lung alone with no word; it is said now (terminal and dose.csv's rtdose_notes).  Both lungs: no note."""
    import pandas as pd

    from lungai.cli import main

    st, _ = p1

    def run(*structure):
        out = tmp_path / f"dose{len(structure)}_{structure[0].replace(':', '_') if structure else 'x'}.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["dose-features", "--dose", str(st["dose"]), "--ct", str(st["ct"]), "--rtstruct",
                         str(st["rtstruct"]), *[a for s in structure for a in ("--structure", s)], "-o", str(out)]) == 0
        return pd.read_csv(out).iloc[0], capsys.readouterr().out

    right, said = run("role:lung_right")
    assert "note: the lung dose metrics (MLD, V20 ...) are of the right lung only (Lung_R)" in said
    assert "right lung only" in right.rtdose_notes
    both, said = run("Lung_R", "Lung_L")
    assert "lung only" not in said and "lung only" not in str(both.rtdose_notes)
    from lungai.dicom.masks import one_lung_note

    assert "left lung only (Lung_L)" in one_lung_note(["Lung_L"])
    assert one_lung_note(["Lung_R", "Lung_L"]) is None and one_lung_note(["Lungs"]) is None
    assert one_lung_note(["Lunge_neu"]) is None and one_lung_note([None]) is None


def test_dicom_scan_names_each_rtstruct_of_a_ct_and_how_to_choose_one(p1, tmp_path, capsys):
    """QA (rtscan60, LUNG1-003's CT + its RTSTRUCT + a re-plan's copy, new UIDs, label 'Replan'): `lungai dicom-scan`
    said "2 RTSTRUCTs reference this CT; choose one" - no file, label, date, nor how.  Each is named now (path,
    StructureSetLabel, date, ROI count) with the option choosing one, and the suggestion works when followed."""
    import shutil

    from pydicom.uid import generate_uid

    from lungai.cli import main

    st, _ = p1
    root = tmp_path / "export"
    shutil.copytree(st["ct"], root / "CT")
    (root / "RTSTRUCT").mkdir()
    shutil.copy(st["rtstruct"], root / "RTSTRUCT" / "RS_plan.dcm")
    ds = pydicom.dcmread(st["rtstruct"])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StructureSetLabel, ds.StructureSetDate = "Replan", "20240301"
    ds.save_as(root / "RTSTRUCT" / "RS_replan.dcm")
    assert main(["dicom-scan", str(root)]) == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if "RTSTRUCTs reference this CT" in line)
    assert "RTSTRUCT/RS_plan.dcm (label" in note and "RTSTRUCT/RS_replan.dcm (label 'Replan', date 20240301" in note
    assert "--rtstruct FILE" in note and "lungai cohort: keep one RTSTRUCT per CT series" in note, note
    chosen = re.search(r"e\.g\. --rtstruct (\S+?)\)", note).group(1)
    out = tmp_path / "r.csv"
    assert main(["radiomics", "--image", str(root / "CT"), "--rtstruct", chosen, "--segments", "tumour",
                 "--image-types", "Original", "--feature-classes", "shape", "-o", str(out)]) == 0
    capsys.readouterr()
    assert out.is_file()


def test_a_seg_with_two_segments_of_one_lung_is_told_to_choose_by_label_in_radiomics_batch(p1, tmp_path, capsys):
    """QA (rtscan60, a SEG of LUNG1-003 with 'Lung_R' and 'RT LUNG' beside 'Lung_L', in a radiomics-batch manifest):
    `FILE#role:lung_right` was told "choose the structure(s) by name (e.g. --structure Lung_R; ...) or hide ... in a
    --structure-map file" - radiomics-batch has neither option - and `FILE#role:lungs` "FILE#RIGHT,LEFT", no label
    named.  The fix is now the SEG's own route, the labels after '#', and each suggestion works when followed."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dicom.masks import manifest_cell
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    st, ct = p1
    masks = {"GTV": st["masks"]["GTV"], "Lung_R": st["masks"]["Lung_R"], "RT LUNG": st["masks"]["Lung_R"],
             "Lung_L": st["masks"]["Lung_L"]}
    write_seg(masks, ct_reference(st["ct"], image=ct), tmp_path / "two.seg.dcm")

    def batch(column, value):
        manifest = tmp_path / f"m_{column}.csv"
        pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], column: [value]}).to_csv(manifest, index=False)
        rc = main(["radiomics-batch", str(manifest), "-o", str(tmp_path / f"{column}.csv"), "--workers", "0",
                   "--image-types", "Original", "--feature-classes", "shape"])
        return rc, capsys.readouterr()

    for column, value, want in (("mask", "two.seg.dcm#role:lung_right", "two.seg.dcm#Lung_R"),
                                ("lungs", "two.seg.dcm#role:lungs", "two.seg.dcm#Lung_R,Lung_L")):
        rc, said = batch(column, str(tmp_path / value))
        text = said.out + said.err
        assert "2 structures have role 'lung_right'" in text, text
        fix = text.split("how to fix (P1):")[1]
        # the manifest's cell: in double quotes when it holds a comma (QA batchmsg62)
        assert f"after '#': {manifest_cell(tmp_path / want)}" in fix and "--structure" not in fix, fix
        rc, said = batch(column, str(tmp_path / want))          # the suggestion, followed
        assert "1 case extracted" in said.out + said.err and " 0 failed" in said.out + said.err, said
        assert (tmp_path / f"{column}.csv").is_file()


def test_lungs_named_with_a_comma_in_a_structure_name_are_refused_as_such(p1, tmp_path, capsys):
    """QA (rtscan60, LUNG1-003's RTSTRUCT with 'Lung-Right' renamed 'Lung, R'): `radiomics --lungs 'Lung, R,Lung-Left'`
    was refused as "needs the right and the left lung".  The comma in the name is said to be the problem, with the
    route that works: the lungs by role (the name's own role, or a --structure-map line giving it one)."""
    import yaml

    from lungai.cli import main

    st, _ = p1
    few = ["--image-types", "Original", "--feature-classes", "shape"]
    for new, mapped in (("Lung, R", False), ("Contour, 7", True)):
        ds = pydicom.dcmread(st["rtstruct"])
        next(r for r in ds.StructureSetROISequence if r.ROIName == "Lung_R").ROIName = new
        (tmp_path / "rs").mkdir(exist_ok=True)
        rs = tmp_path / "rs" / f"comma_{mapped}.dcm"
        ds.save_as(rs)
        run = ["radiomics", "--image", str(st["ct"]), "--rtstruct", str(rs), *few, "-o", str(tmp_path / "r.csv")]
        assert main([*run, "--lungs", f"{new},Lung_L"]) == 2
        err = capsys.readouterr().err
        assert f"the name {new!r} holds a comma" in err and "needs the right and the left lung" not in err, err
        fix = err.split("How to fix:")[1]
        assert "role:lungs" in fix
        extra = []
        if mapped:                                               # no lung role by name: the mapping line given
            text = re.search(r"its role \('(.+)'\)", fix).group(1)
            assert yaml.safe_load(text) == {new: "lung_right"}, fix
            (tmp_path / "map.yaml").write_text(text + "\n", encoding="utf-8")
            extra = ["--structure-map", str(tmp_path / "map.yaml")]
        else:
            assert "--structure-map" not in fix, fix
        assert main([*run, *extra, "--lungs", "role:lungs"]) == 0   # the suggestion, followed
        capsys.readouterr()


def _label_map(st, ct, path):
    """The export's masks as one label map as NSCLC-Radiomics' are (1 GTV, 3 right lung, 4 left lung), at ``path``."""
    labels = np.zeros(array(st["masks"]["GTV"]).shape, np.uint8)
    labels[array(st["masks"]["Lung_R"]) > 0] = 3
    labels[array(st["masks"]["Lung_L"]) > 0] = 4
    labels[array(st["masks"]["GTV"]) > 0] = 1
    img = sitk.GetImageFromArray(labels)
    img.CopyInformation(ct)
    sitk.WriteImage(img, str(path))
    return path


def test_label_map_and_rtstruct_messages_name_the_path_as_given(p1, tmp_path, monkeypatch):
    """QA (labelpath62, LUNG1-003's labels and RTSTRUCT): a label map's and an RTSTRUCT's messages named the file by
    its name alone ("LUNG1-003_labels.nii.gz has no label '9'", "structure 'Nope' is not in 1.3.6...dcm"): with two
    files of one name in two patients' folders the user could not tell which, and the fix ``--lungs
    labels.nii.gz#R,L`` did not work from the user's folder.  Each names the path as given (as segpath61 did for the
    SEG's messages)."""
    import shutil

    from lungai.dicom.masks import mask_input
    from lungai.io import read_mask

    st, ct = p1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p1").mkdir()
    _label_map(st, ct, tmp_path / "p1" / "labels.nii.gz")
    with pytest.raises(InputError) as exc:
        read_mask("p1/labels.nii.gz#9", reference=ct)
    assert exc.value.problem.startswith("p1/labels.nii.gz has no label '9'; its labels: 1, 3, 4"), exc.value.problem
    # no join of the GTV and the right lung (#1,3) as the example (QA lungsfollow71)
    assert "e.g. p1/labels.nii.gz#1, " in exc.value.fix and "e.g. p1/labels.nii.gz#N,M for" in exc.value.fix
    for part, problem in (("3", "--lungs p1/labels.nii.gz#3: a lung label map needs the right and the left lung"),
                          ("3,9", "p1/labels.nii.gz has no label '9'"),
                          ("3,3", "--lungs p1/labels.nii.gz#3,3: the right and the left lung have the same label")):
        with pytest.raises(InputError) as exc:
            mask_input(f"p1/labels.nii.gz#{part}", ct, lungs=True)
        assert exc.value.problem.startswith(problem), exc.value.problem
        assert exc.value.fix.startswith("give the right lung's label, then the left lung's: --lungs "
                                        "p1/labels.nii.gz#R,L (e.g. --lungs p1/labels.nii.gz#3,4 for"), exc.value.fix
    off = sitk.ReadImage(str(tmp_path / "p1" / "labels.nii.gz"))
    off.SetOrigin([o + 7.3 for o in off.GetOrigin()])
    sitk.WriteImage(off, str(tmp_path / "p1" / "off.nii.gz"))
    with pytest.raises(InputError, match="the mask p1/off.nii.gz does not lie on the image grid"):
        read_mask("p1/off.nii.gz", reference=ct)
    other = sitk.ReadImage(str(tmp_path / "p1" / "labels.nii.gz"))
    other.SetMetaData("0010|0020", "P3")        # another patient's, as SimpleITK writes an image read from DICOM
    sitk.WriteImage(other, str(tmp_path / "p1" / "other.nrrd"))
    with pytest.raises(InputError, match="^the mask p1/other.nrrd is another patient's: PatientID P3"):
        read_mask("p1/other.nrrd#1", reference=ct)

    shutil.copy(st["rtstruct"], tmp_path / "p1" / "rs.dcm")
    with pytest.raises(InputError, match="^structure 'Nope' is not in p1/rs.dcm; it holds: GTV, Lung_R, Lung_L"):
        read_rtstruct("p1/rs.dcm", ct, names=["Nope"])
    shutil.copy(next(st["ct"].iterdir()), tmp_path / "p1" / "ct.dcm")
    with pytest.raises(InputError, match="^p1/ct.dcm is a DICOM CT file, not an RTSTRUCT"):
        list_structures("p1/ct.dcm")
    ds = pydicom.dcmread(st["rtstruct"])            # Lung_L given Lung_R's ROI number
    number = {str(r.ROIName): int(r.ROINumber) for r in ds.StructureSetROISequence}
    for item in (*ds.StructureSetROISequence, *ds.ROIContourSequence, *ds.RTROIObservationsSequence):
        if int(getattr(item, "ROINumber", 0) or getattr(item, "ReferencedROINumber", 0)) == number["Lung_L"]:
            setattr(item, "ROINumber" if "ROINumber" in item else "ReferencedROINumber", number["Lung_R"])
    ds.save_as(tmp_path / "p1" / "one_number.dcm")
    with pytest.raises(InputError, match=f"^p1/one_number.dcm gives ROI number {number['Lung_R']} to 2 structures"):
        read_rtstruct("p1/one_number.dcm", ct, names=["Lung_L"])
    with pytest.raises(InputError, match="^2 structures of p1/one_number.dcm cannot be read: "):
        read_rtstruct("p1/one_number.dcm", ct)
    _with_a_pet_frame(st["rtstruct"], tmp_path / "p1" / "pet_roi.dcm", "1.2.826.0.1.3680043.8.498.77", roi="Lung_L")
    with pytest.raises(InputError, match="^structure 'Lung_L' of p1/pet_roi.dcm is drawn in frame of reference"):
        read_rtstruct("p1/pet_roi.dcm", ct, names=["Lung_L"])


def test_fixes_naming_a_path_with_a_space_work_when_pasted_into_a_shell(p1, tmp_path, monkeypatch, capsys):
    """QA (labelpath62, LUNG1-003 copied to '/tmp/... My scans/'): the fixes naming a label map's labels or a SEG's
    segments wrote the path bare - "--lungs /tmp/lp62 My scans/LUNG1-003_labels.nii.gz#3,4", "choose ... after '#':
    /tmp/lp62 My scans/two.seg.dcm#Lung_R,Lung_L (quoted on a command line ...)" - and pasted into bash the command
    failed ("unrecognized arguments: My scans/...").  Each is now a command word (quoted: 'My scans/...#3,4'), and
    the command with it pasted as written runs; a manifest's cell is given in its CSV form."""
    import shlex

    from lungai.cli import main
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    st, ct = p1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "My scans").mkdir()
    _label_map(st, ct, tmp_path / "My scans" / "labels.nii.gz")
    masks = {"GTV": st["masks"]["GTV"], "Lung_R": st["masks"]["Lung_R"], "RT LUNG": st["masks"]["Lung_R"],
             "Lung_L": st["masks"]["Lung_L"]}
    write_seg(masks, ct_reference(st["ct"], image=ct), tmp_path / "My scans" / "two.seg.dcm")
    command = (f"lungai radiomics --image {shlex.quote(str(st['ct']))} --image-types Original --feature-classes shape "
               "--lung-spacing 0 -o r.csv")

    def run(text):                      # a command line as bash splits it
        argv = shlex.split(text)
        assert argv[0] == "lungai"
        rc = main(argv[1:])
        return rc, capsys.readouterr().err

    labels, seg = "'My scans/labels.nii.gz#1'", "'My scans/two.seg.dcm#GTV'"
    for given, pasted in ((f"--tumour {labels} --lungs 'My scans/labels.nii.gz'", r"e\.g\. (--lungs '[^']+')\)"),
                          (f"--tumour {labels} --lungs 'My scans/labels.nii.gz#3'", r"e\.g\. (--lungs '[^']+') for"),
                          ("--tumour 'My scans/labels.nii.gz#9'", r"e\.g\. ('[^']+'), or"),
                          ("--tumour 'My scans/two.seg.dcm#Nope'", r"e\.g\. ('[^']+')$"),
                          (f"--tumour {seg} --lungs 'My scans/two.seg.dcm#role:lungs'", r"after '#': ('[^']+') \(")):
        rc, err = run(f"{command} {given}")
        assert rc == 2, err
        fix = err.split("How to fix: ")[1].strip()
        word = re.search(pasted, fix)
        assert word, fix
        option = "--lungs" if "--lungs" in given else "--tumour"
        rest = (given.split(" --lungs")[0] + " --segments tumour right_lung left_lung" if option == "--lungs"
                else "--segments tumour")
        word = word.group(1) if word.group(1).startswith("--") else f"{option} {word.group(1)}"
        rc, err = run(f"{command} {rest} {word}")       # the fix, pasted as written
        assert rc == 0, (fix, err)
        assert (tmp_path / "r.csv").is_file()
        (tmp_path / "r.csv").unlink()
    assert "(in a CSV manifest: \"My scans/two.seg.dcm#Lung_R,Lung_L\")" in fix, fix
