"""DICOM RT in and out (issue 17): RTSTRUCT / SEG / RTDOSE reading, roles, discovery, SEG / RTSTRUCT / PM / SR writing.

All on synthetic DICOM RT exports written from the phantoms (Testing/dicom_helpers.py); the real export is
checked in test_dicom_real.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import array, image_like, rt_export, small_phantom, with_empty_structures

from lungai.dicom import roles
from lungai.dicom.discover import scan
from lungai.dicom.reference import ct_reference
from lungai.dicom.rtstruct import fill_even_odd, list_structures, read_rtstruct, read_rtstruct_role, write_rtstruct
from lungai.errors import InputError
from lungai.io import read_ct


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt_export"))


@pytest.fixture(scope="module")
def p1(export):
    st = export["P1"]
    return st, read_ct(st["ct"])


# --------------------------------------------------------------------------------------------------- roles

@pytest.mark.parametrize("name, role", [
    ("GTV", "gtv"), ("GTVp", "gtv_primary"), ("GTV-1", "gtv_primary"), ("GTV_Primary", "gtv_primary"),
    ("gtv-2", "gtv"), ("GTVn", "gtv_node"), ("GTV_LN1", "gtv_node"), ("GTV_N2", "gtv_node"),
    ("Lung_R", "lung_right"), ("Lung-Right", "lung_right"), ("RT LUNG", "lung_right"), ("Right Lung", "lung_right"),
    ("Lung_L", "lung_left"), ("Lung-Left", "lung_left"), ("LT LUNG", "lung_left"), ("Lung Lt", "lung_left"),
    ("Lungs", "lungs"), ("Lung_Total", "lungs"), ("Lungs-GTV", "lungs_minus_gtv"),
    ("Lungs minus GTV", "lungs_minus_gtv"), ("Lung_Total-GTV", "lungs_minus_gtv"),
    ("Lung_R_PRV", None), ("PTV_Lung", None), ("z_Lung_R_opt", None), ("Heart", None), ("Lungs-ITV", None),
    ("Tumour_big", None)])
def test_structure_roles_tg263_and_variants(name, role):
    assert roles.structure_role(name) == role


@pytest.mark.parametrize("name, role", [
    ("Poumon D", "lung_right"), ("Poumon_G", "lung_left"), ("Poumons", "lungs"), ("Poumons-GTV", "lungs_minus_gtv"),
    ("Pulmón Derecho", "lung_right"), ("Pulmon_Izq", "lung_left"), ("Pulmones", "lungs"),
    ("Pulmão_Direito", "lung_right"), ("Pulmao E", "lung_left"), ("Lunge re", "lung_right"),
    ("Lunge_links", "lung_left"), ("Lungen", "lungs"), ("Polmone dx", "lung_right"), ("Polmone_sx", "lung_left"),
    ("Polmoni", "lungs"), ("Long_R", "lung_right"), ("Long L", "lung_left"), ("Longen", "lungs"),
    ("Poumon", None), ("Lunge", None), ("Poumon_D_PRV", None), ("PTV_Poumon_D", None), ("Poumons_GTV", None)])
def test_lung_names_of_other_languages(name, role):
    """Planning systems set up in French, Spanish, Portuguese, German, Italian or Dutch name the lungs 'Poumon D',
    'Pulmón Izq', 'Lunge re' ... (QA on LUNG1-003 renamed so: cohort took the automatic lungs, saying "no contoured
    lung structures in the RTSTRUCT"; dose-features refused, asking for a 'lungs_minus_gtv' structure)."""
    assert roles.structure_role(name) == role


def test_structure_names_in_decomposed_unicode_get_their_role(tmp_path):
    """QA: 'Pulmón derecho' written with 'o' + a combining accent (Unicode NFD: macOS file names, a segment named
    after its file) got no role - automatic lungs instead of the contoured ones - and a structure-map key typed as
    'ó' (NFC) did not match it.  Names are compared in composed form (NFC)."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Pulmón derecho")
    assert nfd != "Pulmón derecho"
    assert roles.structure_role(nfd) == "lung_right"
    assert roles.structure_role(unicodedata.normalize("NFD", "Pulmão_Esquerdo")) == "lung_left"
    f = tmp_path / "map.yaml"
    f.write_text("GTV_Primär: gtv_primary\n", encoding="utf-8")      # the map typed NFC, the RTSTRUCT's name NFD
    assert roles.structure_role(unicodedata.normalize("NFD", "GTV_Primär"), f) == "gtv_primary"
    assert roles.structure_roles([unicodedata.normalize("NFD", "Tumör")], {"Tumör": "gtv"}) == {
        unicodedata.normalize("NFD", "Tumör"): "gtv"}


def test_no_lung_structure_error_names_every_lung_role():
    with pytest.raises(InputError, match=r"no lung structure \(role lungs, lung_right \+ lung_left, or lungs_minus_gtv"
                                         r"\) among: .*Heart \(no role\)"):
        roles.dose_lungs_role(["GTV", "Heart", "Lungs_PTV"])


def test_user_mapping_overrides_and_is_checked(tmp_path):
    f = tmp_path / "map.yaml"
    f.write_text("Tumour_big: gtv_primary\nGTV: null\n", encoding="utf-8")
    assert roles.structure_role("tumour big", f) == "gtv_primary"
    assert roles.structure_role("GTV", f) is None
    assert roles.find_role(["GTV", "Tumour_big", "Lung_R"], "gtv", f) == ["Tumour_big"]
    j = tmp_path / "map.json"
    j.write_text(json.dumps({"My lungs": "lungs"}), encoding="utf-8")
    assert roles.structure_role("My_Lungs", j) == "lungs"
    (tmp_path / "bad.yaml").write_text("Tumour_big: tumor\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown structure role 'tumor'"):
        roles.structure_role("x", tmp_path / "bad.yaml")


def test_role_masks_union_and_subtraction():
    a = np.zeros((3, 4, 4), np.uint8)
    ref = sitk.GetImageFromArray(a)
    r, l, g1, g2 = a.copy(), a.copy(), a.copy(), a.copy()
    r[:, :, :2], l[:, :, 2:], g1[1, 1, 1], g2[1, 2, 3] = 1, 1, 1, 1
    masks = {"Lung_R": image_like(r, ref), "Lung_L": image_like(l, ref), "GTV-1": image_like(g1, ref),
             "GTV-2": image_like(g2, ref), "Heart": image_like(a, ref)}
    assert roles.find_role(masks, "gtv") == ["GTV-1", "GTV-2"]
    assert array(roles.mask_for_role(masks, "lungs")).sum() == 48
    assert array(roles.mask_for_role(masks, "gtv")).sum() == 2
    assert array(roles.mask_for_role(masks, "lungs_minus_gtv")).sum() == 46
    with pytest.raises(InputError, match="no structure with role 'gtv_node'.*Heart \\(no role\\)"):
        roles.mask_for_role(masks, "gtv_node")


# ----------------------------------------------------------------------------------------- RTSTRUCT reading

def test_even_odd_fill_makes_holes_and_islands():
    square = lambda a, b: np.array([[a, a], [b, a], [b, b], [a, b]], float)  # noqa: E731  (x, y) corners
    filled = fill_even_odd([square(0.5, 9.5), square(2.5, 7.5), square(4.5, 5.5)], (12, 12))
    expected = np.zeros((12, 12), bool)
    expected[1:10, 1:10] = True       # outer contour: pixel centres 1..9
    expected[3:8, 3:8] = False        # hole: 3..7
    expected[5, 5] = True             # island in the hole
    assert np.array_equal(filled, expected)
    # two separate contours on one slice
    two = fill_even_odd([square(0.5, 2.5), square(5.5, 8.5)], (12, 12))
    assert two.sum() == 4 + 9


def test_rtstruct_round_trip_on_phantom_export(p1):
    st, ct = p1
    assert np.array_equal(array(ct), array(small_phantom(7).ct))          # the CT series itself
    assert list_structures(st["rtstruct"]) == ["GTV", "Lung_R", "Lung_L"]
    masks = read_rtstruct(st["rtstruct"], ct)
    for name, truth in st["masks"].items():
        assert np.array_equal(array(masks[name]), array(truth)), name
        assert masks[name].GetOrigin() == ct.GetOrigin()


def test_holes_islands_and_several_parts_per_slice_round_trip(p1, tmp_path):
    st, ct = p1
    a = np.zeros(array(ct).shape, np.uint8)
    a[10:14, 10:40, 10:40] = 1        # a block ...
    a[10:14, 16:34, 16:34] = 0        # ... with a hole ...
    a[10:14, 22:28, 22:28] = 1        # ... and an island in the hole
    a[10:14, 50:60, 50:55] = 1        # and a second part on the same slices
    a[14, 12, 12] = 1                 # one voxel
    ref = ct_reference(st["ct"], image=ct)
    path = write_rtstruct({"Ring": image_like(a, ct)}, ref, tmp_path / "ring.dcm")
    ds = pydicom.dcmread(path)
    per_slice = [float(c.ContourData[2]) for c in ds.ROIContourSequence[0].ContourSequence]
    assert per_slice.count(per_slice[0]) == 4          # outer, hole, island, second part
    assert np.array_equal(array(read_rtstruct(path, ct)["Ring"]), a)


def test_structure_with_missing_slice_is_an_error(p1, tmp_path):
    st, ct = p1
    a = np.zeros(array(ct).shape, np.uint8)
    a[8:12, 20:30, 20:30] = 1
    a[14:16, 20:30, 20:30] = 1        # slices 12 and 13 left out
    ref = ct_reference(st["ct"], image=ct)
    path = write_rtstruct({"GTV": image_like(a, ct)}, ref, tmp_path / "gap.dcm")
    with pytest.raises(InputError, match=r"'GTV' has no contour on 2 CT slices between its first and last"):
        read_rtstruct(path, ct)
    # read with allow_gaps: said which structure and where (the CLI prints it, cohort keeps it per patient)
    from lungai.dicom.rtstruct import GapsAllowedNote

    with pytest.warns(GapsAllowedNote, match=r"'GTV' has no contour on 2 CT slices.*read as separate parts"):
        assert np.array_equal(array(read_rtstruct(path, ct, allow_gaps=True)["GTV"]), a)


def test_structure_off_the_ct_is_an_error(p1):
    st, ct = p1
    with pytest.raises(InputError, match="'Lung_R' lies \\(partly\\) off the CT.*outside the CT slices"):
        read_rtstruct(st["rtstruct"], ct[:, :, 10:30], names=["Lung_R"])
    with pytest.raises(InputError, match="'Lung_R' lies \\(partly\\) off the CT.*leaves the CT field of view"):
        read_rtstruct(st["rtstruct"], ct[20:, :, :], names=["Lung_R"])


def test_contours_not_on_the_slice_planes_are_an_error(p1):
    st, ct = p1
    tilted = sitk.Image(ct)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    tilted.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))           # tilted about the CT's centre
    half = (np.asarray(ct.GetSize()) - 1) / 2 * np.asarray(ct.GetSpacing())
    centre = np.asarray(ct.GetOrigin()) + half
    tilted.SetOrigin(tuple(centre - np.asarray(tilted.GetDirection()).reshape(3, 3) @ half))
    with pytest.raises(InputError, match="does not lie in a CT slice plane"):
        read_rtstruct(st["rtstruct"], tilted, names=["Lung_R"])


def _shifted_rtstruct(src, dst, dz: float, structure: str | None = None, add: bool = False):
    """A copy of the RTSTRUCT ``src`` with the contours (of ``structure``, default all) moved by ``dz`` mm along z;
    ``add``: the moved contours are added to the originals (contours on a finer grid than the CT)."""
    import copy

    ds = pydicom.dcmread(src)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    for rc in ds.ROIContourSequence:
        if structure is not None and names[int(rc.ReferencedROINumber)] != structure:
            continue
        moved = []
        for c in rc.ContourSequence:
            c2 = copy.deepcopy(c) if add else c
            v = np.asarray([float(x) for x in c2.ContourData]).reshape(-1, 3)
            v[:, 2] += dz
            c2.ContourData = [f"{x:.3f}" for x in v.ravel()]
            moved.append(c2)
        if add:
            rc.ContourSequence.extend(moved)
    ds.save_as(dst)
    return dst


def test_contours_of_a_finer_grid_than_the_ct_are_refused_not_xored(p1, tmp_path):
    """Two contour planes landing on one CT slice were XOR-ed into rings (an RTSTRUCT of a thinner reconstruction,
    or a CT of every 2nd slice): now an error saying the CT is thicker than the contouring grid."""
    st, ct = p1                                                       # 5 mm slices
    finer = _shifted_rtstruct(st["rtstruct"], tmp_path / "finer.dcm", 2.5, "GTV", add=True)
    with pytest.raises(InputError, match=r"'GTV' is contoured on planes 2.50 mm apart.*CT's slices are 5.00 mm apart: "
                                         r"the CT is thicker than the contouring grid"):
        read_rtstruct(finer, ct, names=["GTV"])
    with pytest.raises(InputError, match="the CT series the structure set was drawn on"):
        read_rtstruct(st["rtstruct"], ct[:, :, ::2], names=["Lung_R"])   # the same scan with 10 mm slices
    assert np.array_equal(array(read_rtstruct(finer, ct, names=["Lung_R"])["Lung_R"]), array(st["masks"]["Lung_R"]))


def test_contours_slightly_off_the_slices_pass_and_between_slices_are_refused(p1, tmp_path):
    st, ct = p1
    near = _shifted_rtstruct(st["rtstruct"], tmp_path / "near.dcm", 1.0)       # 0.2 slice: rounding, small offsets
    for name, mask in read_rtstruct(near, ct).items():
        assert np.array_equal(array(mask), array(st["masks"][name])), name
    between = _shifted_rtstruct(st["rtstruct"], tmp_path / "between.dcm", 2.0)  # 0.4 slice: between two slices
    with pytest.raises(InputError, match="'GTV': a contour does not lie in a CT slice plane.*between two CT slices"):
        read_rtstruct(between, ct, names=["GTV"])


def test_bad_rtstruct_inputs_have_clear_errors(p1, tmp_path):
    st, ct = p1
    with pytest.raises(InputError, match=f"'Lung' is not in {re.escape(str(st['rtstruct']))}; it holds: GTV, Lung_R, "
                                         "Lung_L"):
        read_rtstruct(st["rtstruct"], ct, names=["Lung"])
    with pytest.raises(InputError, match="is a DICOM CT file, not an RTSTRUCT"):
        list_structures(next(st["ct"].iterdir()))
    with pytest.raises(InputError, match="drawn in frame of reference"):
        read_rtstruct(st["rtstruct"], ct, frame_of_reference_uid="1.2.3")
    assert read_rtstruct(st["rtstruct"], ct, names=["lung_r"]).keys() == {"Lung_R"}   # case-insensitive


def test_a_malformed_contour_value_names_its_structure_and_spares_the_others(p1, tmp_path):
    """'53,25' (decimal comma) in one structure's ContourData: an InputError naming the structure and the value,
    raised only when that structure is read (it crashed every command with a ValueError traceback)."""
    st, ct = p1
    ds = pydicom.dcmread(st["rtstruct"])
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "Lung_L")
    rc = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number)
    first = [str(v) for v in rc.ContourSequence[0].ContourData[:3]]
    raw = st["rtstruct"].read_bytes()
    needle = "\\".join(first).encode()
    assert raw.count(needle) == 1 and "." in first[0]
    bad = tmp_path / "comma.dcm"
    bad.write_bytes(raw.replace(needle, needle.replace(b".", b",", 1)))
    wrong = first[0].replace(".", ",", 1)
    with pytest.raises(InputError, match=f"structure 'Lung_L': a contour holds '{wrong}', which is not a decimal"):
        read_rtstruct(bad, ct, names=["Lung_L"])
    with pytest.raises(InputError, match="'Lung_L'"):
        read_rtstruct(bad, ct)                                        # every structure: names the bad one
    masks = read_rtstruct(bad, ct, names=["GTV", "Lung_R"])           # the other structures stay readable
    assert np.array_equal(array(masks["Lung_R"]), array(st["masks"]["Lung_R"]))
    assert list_structures(bad) == ["GTV", "Lung_R", "Lung_L"]
    # a structure that cannot be read is not an empty one: its role raises its error (not "no structure")
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    rc = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number)
    needle = "\\".join(str(v) for v in rc.ContourSequence[0].ContourData[:3]).encode()
    assert raw.count(needle) == 1 and b"." in needle
    bad_gtv = tmp_path / "comma_gtv.dcm"
    bad_gtv.write_bytes(raw.replace(needle, needle.replace(b".", b",", 1)))
    with pytest.raises(InputError, match="structure 'GTV': a contour holds"):
        read_rtstruct_role(bad_gtv, ct, "gtv")


def test_misnamed_structure_role_error_and_mapping_fix(export, tmp_path):
    st = export["P3"]
    ct = read_ct(st["ct"])
    with pytest.raises(InputError, match="no structure with role 'gtv' among: Tumour_big \\(no role\\)"):
        read_rtstruct_role(st["rtstruct"], ct, "gtv")
    f = tmp_path / "map.yaml"
    f.write_text("Tumour_big: gtv\n", encoding="utf-8")
    mask, names = read_rtstruct_role(st["rtstruct"], ct, "gtv", mapping=f)
    assert names == ["Tumour_big"] and np.array_equal(array(mask), array(st["masks"]["Tumour_big"]))
    lungs, names = read_rtstruct_role(st["rtstruct"], ct, "lungs_minus_gtv", mapping=f)
    truth = (array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"])) & ~array(st["masks"]["Tumour_big"])
    assert names == ["Lung_R", "Lung_L", "Tumour_big"] and np.array_equal(array(lungs), truth)


# ---------------------------------------------------------------------------------------------- discovery

def test_scan_groups_by_uids_not_folders(export):
    root = export["P1"]["root"].parent
    studies = {s.patient_id: s for s in scan(root)}
    assert set(studies) == {"P1", "P2", "P3"}
    assert studies["P2"].rtstruct == [export["P2"]["rtstruct"]]          # found in P1's folder, assigned by UID
    assert studies["P1"].rtstruct == [export["P1"]["rtstruct"]]
    assert studies["P2"].missing == ["RTDOSE"] and studies["P1"].missing == [] and studies["P3"].missing == []
    assert studies["P3"].rtdose == [export["P3"]["dose"]]
    for pid, s in studies.items():
        assert s.ct.folder == export[pid]["ct"] and s.ct.n_slices == 36
        assert s.frame_of_reference_uid == export[pid]["reference"].frame_of_reference_uid


def test_scan_follows_folder_links_once(export, tmp_path):
    """A patient's CT folder linked from elsewhere is found ("any folder layout"); a link cycle ends and a
    folder linked twice is read once (no doubled slices)."""
    root = tmp_path / "export"
    (root / "P1").mkdir(parents=True)
    (root / "P1" / "CT").symlink_to(export["P1"]["ct"], target_is_directory=True)
    (root / "P1" / "CT_again").symlink_to(export["P1"]["ct"], target_is_directory=True)
    (root / "P1" / "loop").symlink_to(root, target_is_directory=True)
    (studies,) = scan(root)
    assert studies.patient_id == "P1" and studies.ct.n_slices == 36 and studies.ct.folder == root / "P1" / "CT"
    assert not any("duplicate" in n for n in studies.notes)
    from lungai.dicom.discover import files_under   # the progress count of dicom-scan and cohort

    assert len(files_under(root)) == 36


def test_scan_reports_objects_without_their_ct(export, tmp_path):
    import shutil

    shutil.copy(export["P3"]["dose"], tmp_path / "dose.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM", encoding="utf-8")
    (studies,) = scan(tmp_path)
    assert studies.ct is None and studies.missing == ["CT", "RTSTRUCT"] and len(studies.rtdose) == 1
    assert "no CT series" in studies.notes[0]


def _frameless_rtstruct(src, dst, series=True, images=True):
    """A copy of the RTSTRUCT ``src`` at ``dst`` as some planning systems export it: no FrameOfReferenceUID (no
    ReferencedFrameOfReferenceSequence, no ROI ReferencedFrameOfReferenceUID); ``series`` False: no referenced
    series either, ``images`` False: no contour image references either."""
    ds = pydicom.dcmread(src)
    if series:
        for item in ds.ReferencedFrameOfReferenceSequence:
            del item.FrameOfReferenceUID
    else:
        del ds.ReferencedFrameOfReferenceSequence
    for roi in ds.StructureSetROISequence:
        del roi.ReferencedFrameOfReferenceUID
    if not images:
        for roi in ds.ROIContourSequence:
            for c in roi.ContourSequence:
                if "ContourImageSequence" in c:
                    del c.ContourImageSequence
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)
    return dst


def test_an_rtstruct_without_frame_of_reference_is_matched_by_its_series_slices_or_folder(export, tmp_path):
    """QA dicomframe61: an RTSTRUCT without FrameOfReferenceUID (ReferencedFrameOfReferenceSequence missing, as some
    planning systems export it) beside its CT became a CT-less study "no CT series with this frame of reference
    (none in the file) was found - export that CT series" (the CT was there), and lungai cohort replaced the
    clinician's contours by automatic ones.  It goes to the CT series it references, else the one whose slices its
    contours reference, else (referencing nothing) the CT of its PatientID in its patient's folder with a note
    (the rule of a frameless RTDOSE: frameless_ct); otherwise it is said what is missing, with the fix."""
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export["P1"]["ct"], root / "P1" / "CT")
    rs = root / "P1" / "RTSTRUCT" / "rs.dcm"
    series = export["P1"]["reference"].series_uid
    for kwargs in ({}, {"series": False}, {"series": False, "images": False}):
        _frameless_rtstruct(export["P1"]["rtstruct"], rs, **kwargs)
        (st,) = scan(root)
        assert st.ct is not None and st.rtstruct == [rs] and st.rtstruct_direct == ([rs] if kwargs.get(
            "images", True) else []), (kwargs, st.notes)
        assert not any("no CT series" in n for n in st.notes), st.notes
    assert ("RTSTRUCT P1/RTSTRUCT/rs.dcm carries no FrameOfReferenceUID: matched to this CT series by its PatientID "
            "P1 and its folder only; make sure its contours were drawn on this CT") in " ".join(st.notes)
    _frameless_rtstruct(export["P1"]["rtstruct"], rs, series=False)
    (st,) = scan(root)
    assert ("RTSTRUCT P1/RTSTRUCT/rs.dcm carries no FrameOfReferenceUID (nor a reference to this CT series): matched "
            "to it by the CT slices its contours reference (30 of this series' slices)") in st.notes
    assert st.matched[str(rs)] == ("series", [series])
    # nothing referenced, outside its patient's folder: said what is missing, the fix
    from lungai.dicom.discover import FRAMELESS, frameless_fix

    rs.unlink()
    moved = _frameless_rtstruct(export["P1"]["rtstruct"], root / "elsewhere" / "rs.dcm", series=False, images=False)
    ct_study, orphan = scan(root)
    assert not ct_study.rtstruct and orphan.ct is None and orphan.rtstruct == [moved]
    assert (f"RTSTRUCT elsewhere/rs.dcm {FRAMELESS}, nor by a CT series or slice it references (it references none), "
            f"and it does not lie in the folder of a CT series of its PatientID P1 (P1) - {frameless_fix('RTSTRUCT')}"
            ) in orphan.notes, orphan.notes
    assert not any("no CT series with this frame of reference" in n for n in orphan.notes)
    # drawn on slices that were not exported: not matched by its folder, said so
    ds = pydicom.dcmread(_frameless_rtstruct(export["P1"]["rtstruct"], rs, series=False))
    for roi in ds.ROIContourSequence:
        for c in roi.ContourSequence:
            for image in c.ContourImageSequence:
                image.ReferencedSOPInstanceUID = "1.2.3.4." + image.ReferencedSOPInstanceUID[-6:].lstrip("0.")
    ds.save_as(rs)
    moved.unlink()
    ct_study, orphan = scan(root)
    assert not ct_study.rtstruct and orphan.rtstruct == [rs]
    assert any(n.startswith(f"RTSTRUCT P1/RTSTRUCT/rs.dcm {FRAMELESS}, and none of the") and "CT slices its "
               "contours reference is in a CT series found - export the CT series it was drawn on with it" in n
               for n in orphan.notes), orphan.notes


def test_an_rtstruct_without_frame_of_reference_read_onto_a_dicom_ct_is_said_unchecked(p1, tmp_path):
    """QA dicomframe61: an RTSTRUCT without FrameOfReferenceUID read onto a DICOM CT (radiomics / dose-features /
    demo --rtstruct FILE) was used without a word - on any CT, another patient's too.  Referencing the CT series it
    is used as it says; otherwise its PatientID is compared (another patient's is refused) and a note
    (InputCheckNote) says that its frame of reference could not be checked, as for a frameless RTDOSE."""
    import warnings

    from lungai.errors import InputCheckNote

    st, ct = p1
    by_series = _frameless_rtstruct(st["rtstruct"], tmp_path / "by_series.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputCheckNote)
        assert set(read_rtstruct(by_series, ct, names=["GTV"])) == {"GTV"}
    # no series referenced, its contours on this CT's slices (ContourImageSequence; QA dicomnote61: said unchecked)
    on_slices = _frameless_rtstruct(st["rtstruct"], tmp_path / "on_slices.dcm", series=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputCheckNote)
        assert set(read_rtstruct(on_slices, ct, names=["GTV"])) == {"GTV"}
    ds = pydicom.dcmread(on_slices)     # ... on another CT series' slices: refused, naming the fix
    for roi in ds.ROIContourSequence:
        for c in roi.ContourSequence:
            for image in c.ContourImageSequence:
                image.ReferencedSOPInstanceUID = "1.2.3.4." + image.ReferencedSOPInstanceUID[-6:].lstrip("0.")
    ds.save_as(on_slices)
    with pytest.raises(InputError, match=f"the RTSTRUCT {re.escape(str(on_slices))} carries no FrameOfReferenceUID, "
                                         "and none of the "
                                         ".* CT slices its contours reference is a slice of this CT") as err:
        read_rtstruct(on_slices, ct, names=["GTV"])
    assert "give the CT series it was drawn on" in err.value.fix and "--series UID" in err.value.fix
    from lungai.io.read import SLICE_UIDS_KEY
    from lungai.io.write import write_image

    assert ct.HasMetaDataKey(SLICE_UIDS_KEY)    # kept while read, never written into an image file's header
    assert b"SliceSOPInstanceUIDs" not in write_image(ct, tmp_path / "ct.nrrd").read_bytes()[:200000]
    assert ct.HasMetaDataKey(SLICE_UIDS_KEY)
    bare = _frameless_rtstruct(st["rtstruct"], tmp_path / "bare.dcm", series=False, images=False)
    with pytest.warns(InputCheckNote) as said:
        assert set(read_rtstruct(bare, ct, names=["GTV"])) == {"GTV"}
    assert [str(w.message) for w in said] == [
        f"the RTSTRUCT {bare} (PatientID P1) could not be checked against the CT: the RTSTRUCT carries no "
        "FrameOfReferenceUID (a mandatory tag, here missing: exported without ReferencedFrameOfReferenceSequence?) to "
        f"compare with the CT's {st['reference'].frame_of_reference_uid}, and references no CT series; only its "
        "PatientID P1 was compared (the CT's); make sure the structures were drawn on this patient's CT, in its "
        "coordinates (the RTSTRUCT as exported by the planning system, with its FrameOfReferenceUID, lets lungai "
        "check it)"]
    ds = pydicom.dcmread(bare)
    ds.PatientID = "P9"
    ds.save_as(bare)
    with pytest.raises(InputError, match="bare.dcm is another patient's structure set: .*P9.*P1.* \\(the RTSTRUCT "
                                         "carries no FrameOfReferenceUID to compare\\)"):
        read_rtstruct(bare, ct, names=["GTV"])


def test_cli_dicom_scan_names_the_rtstruct_of_the_ct_and_those_of_other_series(export, tmp_path, capsys):
    """QA dicomframe61: "1 RTSTRUCT references this CT, 2 more share its frame of reference only ...; lungai cohort
    uses the one referencing this CT" named no file: which to give to --rtstruct was not told.  Each is named."""
    import shutil

    from pydicom.uid import generate_uid

    root = tmp_path / "export"
    shutil.copytree(export["P1"]["ct"], root / "P1" / "CT")
    (root / "P1" / "RS").mkdir()
    shutil.copy(export["P1"]["rtstruct"], root / "P1" / "RS" / "rtstruct.dcm")
    for i in (1, 2):
        ds = pydicom.dcmread(export["P1"]["rtstruct"])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StructureSetLabel = f"PET{i}"
        for fr in ds.ReferencedFrameOfReferenceSequence:
            for study in fr.RTReferencedStudySequence:
                for se in study.RTReferencedSeriesSequence:
                    se.SeriesInstanceUID = f"1.2.3.4.{i}"
        ds.save_as(root / "P1" / "RS" / f"rs_pet{i}.dcm")
    assert _cli("dicom-scan", root) == 0
    out = capsys.readouterr().out
    assert ("1 RTSTRUCT references this CT: P1/RS/rtstruct.dcm (label 'synthetic', date ") in out, out
    assert ("2 more share its frame of reference only (drawn on another series): P1/RS/rs_pet1.dcm (label 'PET1', "
            "date ") in out and "P1/RS/rs_pet2.dcm (label 'PET2', date " in out
    assert (f"give it with --rtstruct FILE (--rtstruct {root / 'P1' / 'RS' / 'rtstruct.dcm'}); lungai cohort uses the "
            "one referencing this CT") in out


def test_dicom_scan_names_each_other_rtstruct_by_its_path_and_how_it_was_matched(export, tmp_path, capsys):
    """QA dicomnote61: (1) the note of an RTSTRUCT drawn on another series of the CT's frame of reference named its
    file name only ("rs_pet1.dcm: the structures were drawn on series ..."): with two patients' rs_pet1.dcm the user
    could not tell which; it names the path under the folder scanned, as the other notes.  (2) An RTSTRUCT without
    FrameOfReferenceUID matched by PatientID and folder beside the one referencing the CT was said to "share its
    frame of reference only (drawn on another series)" - it has none; the note says what each file is."""
    import shutil

    from pydicom.uid import generate_uid

    root = tmp_path / "export"
    for patient in ("P1", "P2"):
        shutil.copytree(export[patient]["ct"], root / patient / "CT")
        (root / patient / "RS").mkdir()
        shutil.copy(export[patient]["rtstruct"], root / patient / "RS" / "rtstruct.dcm")
        ds = pydicom.dcmread(export[patient]["rtstruct"])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for fr in ds.ReferencedFrameOfReferenceSequence:
            for study in fr.RTReferencedStudySequence:
                for se in study.RTReferencedSeriesSequence:
                    se.SeriesInstanceUID = "1.2.3.4.1"
        ds.save_as(root / patient / "RS" / "rs_pet1.dcm")
    assert _cli("dicom-scan", root) == 0
    out = capsys.readouterr().out
    for patient in ("P1", "P2"):
        assert f"note: {patient}/RS/rs_pet1.dcm: the structures were drawn on series 1.2.3.4.1, the CT" in out, out
    assert "note: rs_pet1.dcm:" not in out
    (root / "P1" / "RS" / "rs_pet1.dcm").unlink()
    frameless = _frameless_rtstruct(root / "P1" / "RS" / "rtstruct.dcm", root / "P1" / "RS" / "rs_bare.dcm",
                                    series=False, images=False)
    st = next(s for s in scan(root) if s.patient_id == "P1")
    assert st.matched[str(frameless)][0] == "patient"
    note = next(n for n in st.notes if n.startswith("1 RTSTRUCT references this CT"))
    assert ("; 1 more carry no FrameOfReferenceUID (matched by PatientID and folder only): P1/RS/rs_bare.dcm (label "
            ) in note, note
    assert "share its frame of reference" not in note and "drawn on another series" not in note


def test_scan_and_cohort_name_a_ct_with_a_missing_slice(export, tmp_path):
    """The inventory says which CT series has a gap; the patient's run fails with the same error, the rest go on."""
    import shutil

    from lungai.dicom.cohort import plan_cohort, process_patient

    root = tmp_path / "export"
    shutil.copytree(export["P2"]["root"], root / "P2")
    shutil.copytree(export["P3"]["root"], root / "P3")
    (root / "P3" / "CT" / "ct_0018.dcm").unlink()
    studies = {s.patient_id: s for s in scan(root)}
    assert not any("missing" in n for n in studies["P2"].notes)
    (note,) = [n for n in studies["P3"].notes if "slice missing" in n]
    assert "no slice between z = " in note and "re-export the full series" in note
    jobs, inventory = plan_cohort(root)
    assert "slice missing" in inventory.set_index("patient_id").loc["P3", "notes"]
    job = next(j for j in jobs if j.patient_id == "P3")
    result = process_patient(job, {}, str(tmp_path / "out"))
    assert result["status"] == "failed" and "1 slice missing" in result["error"]


def _localizer(ct_folder, dst):
    """A one-slice scout of the patient: a CT slice with its own series and ImageType LOCALIZER."""
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(sorted(ct_folder.iterdir())[0])
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.save_as(dst)
    return ds.SeriesInstanceUID


def test_scan_and_cohort_skip_a_localizer(export, tmp_path):
    """A scout in the export was 'CT 1 slices' and a second cohort case (LUNG1-003_1 failing, the CT renamed _2)."""
    import shutil

    from lungai.dicom.cohort import plan_cohort

    root = tmp_path / "export"
    shutil.copytree(export["P1"]["root"], root / "P1")
    (root / "P1" / "SCOUT").mkdir()
    (root / "P1" / "RTSTRUCT" / "rtstruct_of_someone.dcm").unlink()   # P2's, moved there by rt_export
    uid = _localizer(export["P1"]["ct"], root / "P1" / "SCOUT" / "scout.dcm")
    (study,) = scan(root)
    assert study.ct.n_slices == 36 and study.rtstruct and study.rtdose
    (note,) = [n for n in study.notes if n.startswith("skipped CT series")]
    assert uid in note and "LOCALIZER" in note
    jobs, inventory = plan_cohort(root)
    assert [j.case for j in jobs] == ["P1"] and len(inventory) == 1


def test_a_ct_folder_holding_rt_objects_a_localizer_or_a_dicomdir_reads_its_ct(export, tmp_path):
    """A planning-system export folder (CT + RTSTRUCT + RTDOSE + scout in one folder), a DICOMDIR file, an export
    folder whose series lie in subfolders: read_ct reads the one CT series."""
    import shutil

    from pydicom.fileset import FileSet

    st = export["P1"]
    truth = read_ct(st["ct"])
    allin = shutil.copytree(st["ct"], tmp_path / "allin")
    shutil.copy(st["rtstruct"], allin / "RS.dcm")
    shutil.copy(st["dose"], allin / "RD.dcm")
    _localizer(st["ct"], allin / "scout.dcm")
    root = tmp_path / "export"
    shutil.copytree(st["root"], root / "P1")
    FileSet().write(root)                                             # an (empty) DICOMDIR beside the patient folder
    assert (root / "DICOMDIR").is_file()
    top = tmp_path / "top"                                            # RTDOSE + RTSTRUCT on top, the CT in CT/
    shutil.copytree(st["ct"], top / "CT")
    shutil.copy(st["rtstruct"], top / "RS.dcm")
    shutil.copy(st["dose"], top / "RD.dcm")
    assert read_ct(top, series_uid=st["reference"].series_uid).GetSize() == truth.GetSize()   # --series below
    for path in (allin, root, root / "DICOMDIR", top):
        ct = read_ct(path)
        assert np.array_equal(array(ct), array(truth)) and ct.GetOrigin() == truth.GetOrigin(), path
        assert ct_reference(path, image=ct).series_uid == st["reference"].series_uid
    assert read_ct(root, series_uid=st["reference"].series_uid).GetSize() == truth.GetSize()
    shutil.copytree(export["P2"]["root"], root / "P2")               # two patients below: choose one
    with pytest.raises(InputError, match="holds 2 CT series in its subfolders") as err:
        read_ct(root)
    assert "lungai dicom-scan" in err.value.fix and "--series" in err.value.fix
    assert read_ct(root, series_uid=export["P2"]["reference"].series_uid).GetSize() == truth.GetSize()
    shutil.copytree(export["P2"]["ct"], top / "CT2")                 # RT objects on top, two CTs below: choose one
    with pytest.raises(InputError, match="holds 2 CT series in its subfolders"):
        read_ct(top)
    shutil.rmtree(top / "CT")
    shutil.rmtree(top / "CT2")
    with pytest.raises(InputError, match="holds no CT image series .*only: .*RTDOSE"):      # RT objects only
        read_ct(top)


def test_a_wrong_folder_is_refused_from_the_files_nearest_its_top_without_reading_everything(export, tmp_path,
                                                                                          monkeypatch):
    """A folder with thousands of files below and no CT (a home folder, a Python environment - holding, deep down,
    a DICOM test file or an export) was read file by file before its error: the search below is bounded (the
    files nearest the top that could be DICOM - no extension, as a package's METADATA / RECORD, a script - must hold
    a DICOM file; code, images and documents are not read; at most BELOW_DEPTH folder levels) and its error says
    which limit refused."""
    import shutil

    import lungai.dicom.discover as discover
    from lungai.io import read as io_read

    probe, depth = getattr(io_read, "BELOW_PROBE", 300), getattr(io_read, "BELOW_DEPTH", 5)
    home = tmp_path / "home"
    for k in range(probe + 20):                   # code, and files without extension, near the top
        (home / f"pkg{k % 7}").mkdir(parents=True, exist_ok=True)
        (home / f"pkg{k % 7}" / f"module{k}.py").write_text("x = 1\n")
        (home / f"pkg{k % 7}" / f"METADATA{k}").write_text("Name: x\n")
    shutil.copytree(export["P1"]["ct"], home / "pkg0" / "tests" / "data" / "CT")   # a CT series deep down
    reads = []
    real_header = discover._header
    monkeypatch.setattr(discover, "_header", lambda p, **kw: reads.append(p) or real_header(p, **kw))
    with pytest.raises(InputError, match="holds no CT series near its top") as err:
        read_ct(home)
    assert "folder of the CT series" in err.value.fix
    assert len(reads) <= probe and not any(p.suffix == ".py" for p in reads)    # not every file below; no code

    deep = tmp_path / "deep"                                    # a few files, the CT too far down
    ct_at = deep.joinpath(*[f"level{k}" for k in range(depth + 1)])
    shutil.copytree(export["P1"]["ct"], ct_at)
    with pytest.raises(InputError, match="no DICOM series found .*levels down"):
        read_ct(deep)


def test_export_layouts_with_many_other_files_or_deep_series_are_read(export, tmp_path, monkeypatch):
    """Export layouts refused by the probe of the files nearest the top, or by the depth: reports (301 JPEGs) on top
    of PATIENT/CT/, a Documents/ folder of 320 PDFs next to IMAGES/CT/, and the TCIA downloader's
    manifest-N/COLLECTION/PATIENT/STUDY/SERIES/ (one folder above it: files 6 levels down).  Images and documents
    are not read at all."""
    import shutil

    import lungai.dicom.discover as discover
    from lungai.io import read as io_read

    truth = read_ct(export["P1"]["ct"]).GetSize()
    reports = tmp_path / "reports"
    for k in range(io_read.BELOW_PROBE + 1):
        (reports / f"report_{k}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (reports / f"report_{k}.jpg").write_bytes(b"\xff\xd8 not DICOM")
    shutil.copytree(export["P1"]["ct"], reports / "LUNG1-003" / "CT")
    documents = tmp_path / "documents"
    (documents / "Documents").mkdir(parents=True)
    for k in range(io_read.BELOW_PROBE + 20):
        (documents / "Documents" / f"doc_{k}.pdf").write_bytes(b"%PDF-1.4")
    shutil.copytree(export["P1"]["ct"], documents / "IMAGES" / "CT")
    tcia = tmp_path / "downloads"
    (tcia / "manifest-1").mkdir(parents=True)
    (tcia / "manifest-1" / "metadata.csv").write_text("Series UID,Subject ID\n")
    shutil.copytree(export["P1"]["ct"], tcia / "manifest-1" / "NSCLC-Radiomics" / "LUNG1-003" / "study" / "series")
    reads = []
    real_header = discover._header
    monkeypatch.setattr(discover, "_header", lambda p, **kw: reads.append(p) or real_header(p, **kw))
    for folder in (reports, documents, tcia, tcia / "manifest-1"):
        assert read_ct(folder).GetSize() == truth, folder
    assert not any(p.suffix in (".jpg", ".pdf", ".csv") for p in reads)


def test_the_search_below_a_folder_skips_compressed_images_unread(export, tmp_path, monkeypatch):
    """``case*.nii.gz`` (and ``.tar.gz``) beside a DICOM export are not DICOM candidates: not read, not counted
    towards the files probed."""
    import shutil

    import lungai.dicom.discover as discover
    from lungai.io import read as io_read

    x1 = tmp_path / "X1"
    x1.mkdir()
    for k in range(io_read.BELOW_PROBE + 1):
        (x1 / f"case{k}.nii.gz").write_bytes(b"")
    (x1 / "backup.tar.gz").write_bytes(b"")
    shutil.copytree(export["P1"]["ct"], x1 / "dicom")
    reads = []
    real_header = discover._header
    monkeypatch.setattr(discover, "_header", lambda p, **kw: reads.append(p) or real_header(p, **kw))
    assert read_ct(x1).GetSize() == read_ct(export["P1"]["ct"]).GetSize()
    assert not any(p.name.endswith(".gz") for p in reads)


def test_the_search_below_an_export_folder_shows_progress(export, tmp_path, monkeypatch, capsys):
    """An export folder with many files: its headers are read with a progress display (lungai.progress)."""
    import shutil

    from lungai.io import read as io_read

    root = tmp_path / "export"
    shutil.copytree(export["P1"]["root"], root / "P1")
    monkeypatch.setattr(io_read, "BELOW_PROGRESS", 1, raising=False)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    read_ct(root)
    assert "LUNGAI_PROGRESS" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- RTDOSE

def test_rtdose_relative_offsets(export):
    from lungai.dose.read import read_dose

    st = export["P1"]
    dose = read_dose(st["dose"])
    truth = st["dose_image"]
    assert np.allclose(dose.GetOrigin(), truth.GetOrigin(), atol=1e-3)
    assert np.allclose(array(dose), array(truth), atol=1e-3 * array(truth).max())


def test_rtdose_absolute_offsets(export):
    from lungai.dose.read import read_dose

    st = export["P3"]
    assert float(pydicom.dcmread(st["dose"]).GridFrameOffsetVector[0]) != 0     # absolute form written
    assert np.allclose(read_dose(st["dose"]).GetOrigin(), st["dose_image"].GetOrigin(), atol=1e-3)


def test_rtdose_frames_with_a_gap_or_duplicate_are_errors(export, tmp_path):
    from lungai.dose.read import read_dose

    ds = pydicom.dcmread(export["P1"]["dose"])
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    step = offsets[1] - offsets[0]
    for name, change, message in (("gap", lambda o: o[:5] + [v + step for v in o[5:]], "1 slice missing"),
                                  ("dup", lambda o: o[:5] + [o[4]] + o[6:], "position of another slice")):
        ds.GridFrameOffsetVector = [f"{v:.4f}" for v in change(offsets)]
        ds.save_as(tmp_path / f"{name}.dcm")
        with pytest.raises(InputError, match=message):
            read_dose(tmp_path / f"{name}.dcm")


def test_rtdose_of_another_patient_or_frame_of_reference_is_refused(export, tmp_path, capsys):
    """P3's RTDOSE on P1's CT (same geometry, so nothing else would notice) stops dose-features, lungai demo --dose
    and the cohort run with both PatientIDs / FrameOfReferenceUIDs named; a NIfTI CT has no UID to compare."""
    from lungai.dicom.cohort import CohortJob, process_patient
    from lungai.demo.pipeline import run_demo

    p1, p3 = export["P1"], export["P3"]
    out = tmp_path / "d.csv"
    assert _cli("dose-features", "--dose", p3["dose"], "--ct", p1["ct"], "--rtstruct", p1["rtstruct"], "-o", out) == 2
    assert not out.exists() and "PatientID P3 (RTDOSE) is not the CT's P1" in capsys.readouterr().err
    sitk.WriteImage(read_ct(p1["ct"]), str(tmp_path / "ct.nii.gz"))   # NIfTI CT: no UID, no check
    lungs = tmp_path / "lungs.nii.gz"
    sitk.WriteImage(image_like(array(p1["masks"]["Lung_R"]) | array(p1["masks"]["Lung_L"]), read_ct(p1["ct"])),
                    str(lungs))
    assert _cli("dose-features", "--dose", p3["dose"], "--ct", tmp_path / "ct.nii.gz", "--lungs", lungs,
                "-o", out) == 0
    assert pd_read(out).loc[0, "case"] == "ct"                       # NIfTI: the file name

    from lungai.dose import check_dose_matches_ct

    f1, f3 = p1["reference"].frame_of_reference_uid, p3["reference"].frame_of_reference_uid
    with pytest.raises(InputError, match=f"PatientID P3 \\(RTDOSE\\) is not the CT's P1; FrameOfReferenceUID {f3} "
                                         f"\\(RTDOSE\\) is not the CT's {f1}") as err:
        check_dose_matches_ct(p3["dose"], p1["ct"])
    assert "give the RTDOSE exported with this CT" in err.value.fix
    check_dose_matches_ct(p1["dose"], p1["ct"])                       # its own dose: fine
    check_dose_matches_ct(p1["dose"].parent, p1["ct"])                # (a folder holding the RTDOSE)
    ds = pydicom.dcmread(p1["dose"])                                  # same patient, another frame of reference
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.save_as(tmp_path / "other_frame.dcm")
    with pytest.raises(InputError) as err:
        check_dose_matches_ct(tmp_path / "other_frame.dcm", p1["ct"])
    assert err.value.problem.endswith(f": FrameOfReferenceUID 1.2.3.4 (RTDOSE) is not the CT's {f1}")

    with pytest.raises(InputError, match="PatientID P3 \\(RTDOSE\\) is not the CT's P1"):
        run_demo(tmp_path / "demo", ct_path=p1["ct"], dose=p3["dose"])
    assert not (tmp_path / "demo").exists()                           # refused before any work
    job = CohortJob(case="P1", patient_id="P1", ct_folder=str(p1["ct"]),
                    ct_series_uid=p1["reference"].series_uid, rtstruct=str(p1["rtstruct"]), rtdose=str(p3["dose"]))
    doc = process_patient(job, {}, str(tmp_path / "cohort"))
    assert doc["status"] == "failed" and "PatientID P3 (RTDOSE) is not the CT's P1" in doc["error"], doc


def test_rtdose_checked_against_the_rtstruct_when_the_ct_is_nifti(export, tmp_path, capsys):
    """A NIfTI CT carries no UIDs: with --rtstruct the RTDOSE is checked against the RTSTRUCT's PatientID and
    (referenced) FrameOfReferenceUID (QA: another patient's RTDOSE gave an MLD, exit 0); without an RTSTRUCT a
    note says that nothing could be checked."""
    from lungai.dose import check_dose_matches_ct

    p1, p3 = export["P1"], export["P3"]
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(read_ct(p1["ct"]), str(ct))
    out = tmp_path / "d.csv"
    assert _cli("dose-features", "--dose", p3["dose"], "--ct", ct, "--rtstruct", p1["rtstruct"], "-o", out) == 2
    err = capsys.readouterr().err
    f1, f3 = p1["reference"].frame_of_reference_uid, p3["reference"].frame_of_reference_uid
    assert (f"does not belong to the RTSTRUCT {p1['rtstruct'].name}: PatientID P3 (RTDOSE) is not the RTSTRUCT's P1; "
            f"FrameOfReferenceUID {f3} (RTDOSE) is not the RTSTRUCT's {f1}") in err and not out.exists()
    assert _cli("dose-features", "--dose", p1["dose"], "--ct", ct, "--rtstruct", p1["rtstruct"], "-o", out) == 0
    assert "could not be checked" not in capsys.readouterr().out
    lungs = tmp_path / "lungs.nii.gz"
    sitk.WriteImage(image_like(array(p1["masks"]["Lung_R"]) | array(p1["masks"]["Lung_L"]), read_ct(p1["ct"])),
                    str(lungs))
    assert _cli("dose-features", "--dose", p1["dose"], "--ct", ct, "--lungs", lungs, "-o", tmp_path / "e.csv") == 0
    assert "note: the RTDOSE " + p1["dose"].name + " could not be checked against the CT" in capsys.readouterr().out
    assert check_dose_matches_ct(p1["dose"], p1["ct"]) is None                         # a DICOM CT: checked
    assert check_dose_matches_ct(p1["dose"], ct, rtstruct=p1["rtstruct"]) is None
    assert "the CT is not DICOM" in check_dose_matches_ct(p1["dose"], ct)


def test_cli_dose_features_case_is_the_dicom_patient_id_and_lungs_said_as_used(export, tmp_path, capsys):
    st = export["P1"]
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", tmp_path / "a.csv") == 0
    said = capsys.readouterr().out
    assert pd_read(tmp_path / "a.csv").loc[0, "case"] == "P1"         # not the folder name "CT"
    assert "lungs: RTSTRUCT structure Lung_R + Lung_L" in said and "minus GTV: RTSTRUCT structure GTV" in said
    assert "RTOG 1106" not in said                                    # the plan's contours, not lungai's definition
    masks = pd_read(tmp_path / "a.csv").loc[0, "masks"]              # the CSV says it too, in the same words
    assert masks.startswith("lungs: RTSTRUCT structure Lung_R + Lung_L") and masks in said
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "--case", "mine", "-o", tmp_path / "b.csv") == 0
    assert pd_read(tmp_path / "b.csv").loc[0, "case"] == "mine"


def test_structures_without_contours_have_no_role(export, tmp_path, capsys):
    """A planning-system template's empty 'GTVn', 'Lungs', 'Lungs-GTV' next to the contoured GTV and lungs: role
    resolution takes the contoured structures only (QA: 'structure GTVn has no contours'), dose-features gives
    the same row as without them and names the left-out ones; a role with only empty structures names them."""
    from lungai.dicom.rtstruct import contoured_structures

    st = export["P1"]
    rs = with_empty_structures(st["rtstruct"], ["GTVn", "Lungs", "Lungs-GTV"], tmp_path / "rs_empty.dcm")
    assert contoured_structures(rs) == (["GTV", "Lung_R", "Lung_L"], ["GTVn", "Lungs", "Lungs-GTV"])
    ct = read_ct(st["ct"])
    for role, used in (("gtv", ["GTV"]), ("lungs", ["Lung_R", "Lung_L"]),
                       ("lungs_minus_gtv", ["Lung_R", "Lung_L", "GTV"])):
        assert read_rtstruct_role(rs, ct, role)[1] == used
    with pytest.raises(InputError, match="without contours, so left out: GTVn, Lungs, Lungs-GTV"):
        roles.required_names("gtv_node", ["GTV", "Lung_R", "Lung_L"], empty=["GTVn", "Lungs", "Lungs-GTV"])
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", tmp_path / "plain.csv") == 0
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", rs,
                "-o", tmp_path / "e.csv") == 0
    said = capsys.readouterr().out
    assert "without contours left out: GTVn, Lungs, Lungs-GTV" in said and "RTSTRUCT structure Lung_R + Lung_L" in said
    import pandas as pd

    plain, e = (pd_read(tmp_path / f) for f in ("plain.csv", "e.csv"))      # the same metrics, of another file
    pd.testing.assert_frame_equal(plain.drop(columns="masks"), e.drop(columns="masks"))
    assert plain.masks[0] == e.masks[0].replace(str(rs), str(st["rtstruct"]))


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path, dtype={"case": str})


# ----------------------------------------------------------------------------------- SEG / PM / SR writing

def _codes(item, seq):
    return [(c.CodeValue, c.CodingSchemeDesignator) for c in getattr(item, seq)]


def test_seg_round_trip_terminology_and_references(p1, tmp_path):
    from lungai.dicom.seg import read_seg, write_seg

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    masks = {"Tumour": st["masks"]["GTV"], "Right lung": st["masks"]["Lung_R"], "Left lung": st["masks"]["Lung_L"]}
    path = write_seg(masks, ref, tmp_path / "x.seg.dcm",
                     roles={"Tumour": "gtv", "Right lung": "lung_right", "Left lung": "lung_left"})
    back = read_seg(path, ct)
    assert list(back) == list(masks)
    for name, m in masks.items():
        assert np.array_equal(array(back[name]), array(m)), name
    ds = pydicom.dcmread(path)
    tumour, right, left = ds.SegmentSequence
    assert _codes(tumour, "SegmentedPropertyCategoryCodeSequence") == [("49755003", "SCT")]
    assert _codes(tumour, "SegmentedPropertyTypeCodeSequence") == [("108369006", "SCT")]   # Neoplasm (any GTV)
    assert _codes(right, "SegmentedPropertyCategoryCodeSequence") == [("123037004", "SCT")]
    assert _codes(right, "SegmentedPropertyTypeCodeSequence") == [("39607008", "SCT")]
    assert _codes(right.SegmentedPropertyTypeCodeSequence[0], "SegmentedPropertyTypeModifierCodeSequence") == \
        [("24028007", "SCT")]
    assert _codes(left.SegmentedPropertyTypeCodeSequence[0], "SegmentedPropertyTypeModifierCodeSequence") == \
        [("7771000", "SCT")]
    assert ds.StudyInstanceUID == ref.study_uid and ds.FrameOfReferenceUID == ref.frame_of_reference_uid
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ref.series_uid
    assert ds.PatientID == "P1"
    # deterministic: same masks -> same UIDs
    again = pydicom.dcmread(write_seg(masks, ref, tmp_path / "y.seg.dcm", roles={"Tumour": "gtv", "Right lung":
                                      "lung_right", "Left lung": "lung_left"}))
    assert again.SOPInstanceUID == ds.SOPInstanceUID and again.SeriesInstanceUID == ds.SeriesInstanceUID


def test_rtstruct_writer_references_the_ct(p1):
    st, _ = p1
    ds = pydicom.dcmread(st["rtstruct"])
    ref = st["reference"]
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert frame.FrameOfReferenceUID == ref.frame_of_reference_uid and series.SeriesInstanceUID == ref.series_uid
    slice_uids = {d.SOPInstanceUID for d in ref.datasets}
    assert {c.ReferencedSOPInstanceUID for c in series.ContourImageSequence} == slice_uids
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            assert c.ContourImageSequence[0].ReferencedSOPInstanceUID in slice_uids
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence] == ["GTV", "ORGAN", "ORGAN"]


def test_parametric_map_and_sr_round_trip(p1, tmp_path):
    from lungai.dicom.pmap import read_parametric_map, write_parametric_map
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, read_sr, write_sr

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    u = sitk.GetImageFromArray(np.random.default_rng(0).random(array(ct).shape).astype(np.float32))
    u.CopyInformation(ct)
    pm_path = write_parametric_map(u, ref, tmp_path / "u.pm.dcm")
    assert np.array_equal(array(read_parametric_map(pm_path, ct)), array(u))          # float32, lossless
    ds = pydicom.dcmread(pm_path)
    # what Slicer's reader (dcmqi) needs: Float Pixel Data and Frame Anatomy; stored deflated (lossless)
    assert "FloatPixelData" in ds and "PixelData" not in ds
    assert ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].AnatomicRegionSequence[0].CodeMeaning == "Thorax"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    # a map that is zero outside a few slices (the segmentation ROI) keeps only those frames
    roi = np.zeros(array(ct).shape, np.float32)
    roi[10:14, 20:40, 20:40] = np.linspace(0, 1, 20 * 20 * 4, dtype=np.float32).reshape(4, 20, 20)
    roi_img = sitk.GetImageFromArray(roi)
    roi_img.CopyInformation(ct)
    roi_path = write_parametric_map(roi_img, ref, tmp_path / "roi.pm.dcm")
    assert pydicom.dcmread(roi_path).NumberOfFrames == 4
    assert np.array_equal(array(read_parametric_map(roi_path, ct)), roi)
    assert pydicom.dcmread(pm_path).FrameOfReferenceUID == ref.frame_of_reference_uid

    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ref, tmp_path / "t.seg.dcm", roles={"Tumour": "gtv"})
    groups = [MeasurementGroup("Tumour", {"volume_ml": (12.5, "ml"),
                                          "original_glcm_ClusterProminence": (3.25, "1")}, segment_number=1, role="gtv"),
              MeasurementGroup("Case", {"confidence": (0.81, "1"), "dose_mld_gy": (14.2, "Gy"),
                                        "dose_v20_pct": (22.0, "%"), "rp_risk": (0.31, "1"), "missing": (None, "1")})]
    sr_path = write_sr(ref, tmp_path / "m.sr.dcm", groups, seg=seg)
    assert read_sr(sr_path) == {
        "Tumour": {"Volume": (12.5, "ml"), "original_glcm_ClusterProminence": (3.25, "1")},
        "Case": {"confidence": (0.81, "1"), "dose_mld_gy": (14.2, "Gy"), "dose_v20_pct": (22.0, "%"),
                 "rp_risk": (0.31, "1")}}
    ds = pydicom.dcmread(sr_path)
    assert ds.StudyInstanceUID == ref.study_uid
    evidence = {s.SeriesInstanceUID for study in ds.CurrentRequestedProcedureEvidenceSequence
                for s in study.ReferencedSeriesSequence}
    assert {ref.series_uid, pydicom.dcmread(seg).SeriesInstanceUID} <= evidence


@pytest.mark.parametrize("name", ["Müller^Jürgen", "王^小明"])
def test_every_object_keeps_the_cts_character_set_and_a_non_ascii_patient_name(p1, tmp_path, name):
    """A UTF-8 CT (ISO_IR 192) with a non-ASCII patient name: SEG, RTSTRUCT, Parametric Map and SR carry the CT's
    Specific Character Set and read back the same name (the RTSTRUCT had none: Latin-1 bytes, '王' as '?')."""
    import shutil
    import warnings

    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, write_sr

    st, ct = p1
    folder = tmp_path / "CT"
    shutil.copytree(st["ct"], folder)
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 192", name
        ds.save_as(f)
    ref = ct_reference(folder, image=ct)
    masks = {"Tumour": st["masks"]["GTV"]}
    u = sitk.Cast(st["masks"]["GTV"], sitk.sitkFloat32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)          # pydicom only warns when it cannot encode a name
        seg = write_seg(masks, ref, tmp_path / "t.seg.dcm", roles={"Tumour": "gtv"})
        paths = [seg, write_rtstruct({"GTV": st["masks"]["GTV"]}, ref, tmp_path / "rs.dcm"),
                 write_parametric_map(u, ref, tmp_path / "u.pm.dcm"),
                 write_sr(ref, tmp_path / "m.sr.dcm", [MeasurementGroup("Case", {"rp_risk": (0.3, "1")})], seg=seg)]
    for path in paths:
        ds = pydicom.dcmread(path)
        assert ds.SpecificCharacterSet == "ISO_IR 192", path.name
        assert str(ds.PatientName) == name, path.name
        if not path.name.endswith(".pm.dcm"):                                     # (the map is deflated)
            assert name.encode("utf-8") in path.read_bytes(), path.name


def _ct_with_character_set(st, folder, character_set, name):
    import shutil

    shutil.copytree(st["ct"], folder)
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        if character_set is None:
            ds.pop("SpecificCharacterSet", None)
        else:
            ds.SpecificCharacterSet = character_set
        ds.PatientName = name
        ds.save_as(f)
    return folder


def test_a_japanese_ct_with_iso_2022_code_extensions_is_written_in_its_character_set(p1, tmp_path):
    """A CT of Specific Character Set ['', 'ISO 2022 IR 87'] (valid DICOM, Japanese): highdicom refused it ("'' is
    not a valid SpecificCharacterSetValues") - SEG, Parametric Map and SR failed.  Every object now carries the CT's
    value and its patient name in JIS escape sequences."""
    import warnings

    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, write_sr

    st, ct = p1
    jis, name = ["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎"
    ref = ct_reference(_ct_with_character_set(st, tmp_path / "CT", jis, name), image=ct)
    u = sitk.Cast(st["masks"]["GTV"], sitk.sitkFloat32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)          # pydicom only warns when it cannot encode a name
        seg = write_seg({"Tumour": st["masks"]["GTV"]}, ref, tmp_path / "t.seg.dcm", roles={"Tumour": "gtv"})
        paths = [seg, write_rtstruct({"GTV": st["masks"]["GTV"]}, ref, tmp_path / "rs.dcm"),
                 write_parametric_map(u, ref, tmp_path / "u.pm.dcm"),
                 write_sr(ref, tmp_path / "m.sr.dcm", [MeasurementGroup("Case", {"rp_risk": (0.3, "1")})], seg=seg)]
    for path in paths:
        ds = pydicom.dcmread(path)
        assert list(ds.SpecificCharacterSet) == jis, path.name
        assert str(ds.PatientName) == name, path.name
        if not path.name.endswith(".pm.dcm"):                                     # (the map is deflated)
            assert b"Yamada^Tarou=\x1b$B" in path.read_bytes(), path.name           # JIS X 0208 escape sequence
    assert np.array_equal(array(read_rtstruct(paths[1], ct)["GTV"]), array(st["masks"]["GTV"]))


@pytest.mark.parametrize("character_set, name, labels", [
    (None, "Test^Plain", ["GTV", "Lunge_rechts_ä"]),    # no set: ASCII only ('ä' was an undeclared Latin-1 byte)
    ("ISO_IR 100", "Müller^Jürgen", ["肺", "肝"]),                # Latin-1: both were written '?' - one name
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎", ["Lunge_ä"]),  # JIS: no 'ä'
])
def test_names_the_cts_character_set_cannot_hold_are_written_in_utf8(p1, tmp_path, character_set, name, labels):
    """ROI names / segment labels / SR comments the CT's Specific Character Set cannot hold: the object declares
    ISO_IR 192 (UTF-8) and reads back every name and the patient name as they were; the others keep the CT's set."""
    import warnings

    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, write_sr

    st, ct = p1
    ref = ct_reference(_ct_with_character_set(st, tmp_path / "CT", character_set, name), image=ct)
    gtv = st["masks"]["GTV"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        rs = write_rtstruct({k: gtv for k in labels}, ref, tmp_path / "rs.dcm")
        seg = write_seg({k: gtv for k in labels}, ref, tmp_path / "s.seg.dcm", roles={k: "gtv" for k in labels})
        sr = write_sr(ref, tmp_path / "m.sr.dcm",
                      [MeasurementGroup("Case", {"rp_risk": (0.3, "1")}, comment=labels[-1])])
        plain = write_rtstruct({"GTV": gtv}, ref, tmp_path / "plain.dcm")
    for path in (rs, seg, sr):
        ds = pydicom.dcmread(path)
        assert ds.SpecificCharacterSet == "ISO_IR 192", path.name
        assert str(ds.PatientName) == name, path.name
    assert [x.ROIName for x in pydicom.dcmread(rs).StructureSetROISequence] == labels
    assert list(read_rtstruct(rs, ct)) == labels
    assert [x.SegmentLabel for x in pydicom.dcmread(seg).SegmentSequence] == labels
    ds = pydicom.dcmread(plain)                             # ASCII names: the CT's own set (or none), as before
    assert ds.get("SpecificCharacterSet") == character_set and str(ds.PatientName) == name


def test_seg_tracking_uids_are_the_same_each_run_and_match_the_srs(p1, tmp_path):
    """A SEG segment's TrackingUID was random per run (hidden from the UID digest): a re-export had the same
    SOPInstanceUID and other content, and the SR group's TrackingUID of the same label never matched it (OHIF /
    dcmqi link the two by it).  Now derived from the CT series and the label, as the SR's."""
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, write_sr

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    masks = {"Tumour": st["masks"]["GTV"], "Lung_R": st["masks"]["GTV"]}

    def tracking(path):
        return {str(x.SegmentLabel): str(x.TrackingUID) for x in pydicom.dcmread(path).SegmentSequence}

    seg = write_seg(masks, ref, tmp_path / "a.seg.dcm", roles={"Tumour": "gtv", "Lung_R": "lung_right"})
    again = write_seg(masks, ref, tmp_path / "b.seg.dcm", roles={"Tumour": "gtv", "Lung_R": "lung_right"})
    assert tracking(seg) == tracking(again) and len(set(tracking(seg).values())) == 2
    assert pydicom.dcmread(seg).SOPInstanceUID == pydicom.dcmread(again).SOPInstanceUID
    sr = pydicom.dcmread(write_sr(ref, tmp_path / "m.sr.dcm", [
        MeasurementGroup("Tumour", {"volume_ml": (1.0, "ml")}, segment_number=1, role="gtv")], seg=seg))

    def uidrefs(items):
        for it in items:
            if it.ValueType == "UIDREF":
                yield str(it.UID)
            yield from uidrefs(it.get("ContentSequence", []))

    assert tracking(seg)["Tumour"] in set(uidrefs(sr.ContentSequence))
    assert tracking(seg)["Lung_R"] not in set(uidrefs(sr.ContentSequence))


def test_one_mask_as_lungais_result_and_as_the_users_gets_two_uids_and_reruns_the_same(p1, tmp_path):
    """Deterministic UIDs follow the whole content, not only the pixels: the same mask written as SlicerLungAI's
    (AUTOMATIC) and as the user's (MANUAL) are two SEGs / RTSTRUCTs (a PACS keeps one object per SOPInstanceUID);
    the same call again gives the same UIDs."""
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.seg import AUTOMATIC, write_seg
    from lungai.dicom.sr import MeasurementGroup, write_sr

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    masks = {"Tumour": st["masks"]["GTV"]}

    def uids(path):
        ds = pydicom.dcmread(path)
        return ds.SOPInstanceUID, ds.SeriesInstanceUID

    def seg(name, **kw):
        return write_seg(masks, ref, tmp_path / f"{name}.seg.dcm", **{"roles": {"Tumour": "gtv"}, **kw})

    def rts(name, **kw):
        return write_rtstruct({"GTV": st["masks"]["GTV"]}, ref, tmp_path / f"{name}.rtstruct.dcm", **kw)

    auto = seg("auto", generation={"Tumour": AUTOMATIC})
    assert uids(auto) == uids(seg("auto2", generation={"Tumour": AUTOMATIC}))
    manual = seg("manual")
    assert uids(manual) == uids(seg("manual2"))
    assert uids(auto)[0] != uids(manual)[0] and uids(auto)[1] != uids(manual)[1]
    assert uids(seg("lung", roles={"Tumour": "lungs"}))[0] != uids(manual)[0]           # terminology only
    rs_auto = rts("auto", generation={"GTV": AUTOMATIC})
    assert uids(rs_auto) == uids(rts("auto2", generation={"GTV": AUTOMATIC}))
    assert uids(rs_auto)[0] != uids(rts("manual"))[0] and uids(rs_auto)[1] != uids(rts("manual"))[1]
    assert uids(rts("blue", colours={"GTV": (0, 0, 255)}))[0] != uids(rts("manual"))[0]  # colour only
    # the SR follows the SEG it references; the Parametric Map its units / explanation
    group = [MeasurementGroup("Tumour", {"volume_ml": (1.0, "ml")}, segment_number=1, role="gtv")]
    assert uids(write_sr(ref, tmp_path / "a.sr.dcm", group, seg=auto))[0] != \
        uids(write_sr(ref, tmp_path / "m.sr.dcm", group, seg=manual))[0]
    assert uids(write_sr(ref, tmp_path / "a.sr.dcm", group, seg=auto)) == \
        uids(write_sr(ref, tmp_path / "a2.sr.dcm", group, seg=auto))
    u = sitk.Cast(st["masks"]["GTV"], sitk.sitkFloat32)
    pm = uids(write_parametric_map(u, ref, tmp_path / "u.pm.dcm"))
    assert pm == uids(write_parametric_map(u, ref, tmp_path / "u2.pm.dcm"))


def test_rtstruct_has_operators_name_and_its_frame_only_in_the_referenced_sequence(p1, tmp_path):
    """RT Series module: OperatorsName is Type 2 (written empty); the RT Structure Set IOD has no Frame of Reference
    module (no top-level FrameOfReferenceUID): lungai's readers take the frame from the referenced sequence."""
    from lungai.dose.read import _rtstruct_header

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    path = write_rtstruct({"GTV": st["masks"]["GTV"]}, ref, tmp_path / "rs.dcm")
    ds = pydicom.dcmread(path)
    assert "OperatorsName" in ds and ds.OperatorsName == ""
    assert "FrameOfReferenceUID" not in ds
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == ref.frame_of_reference_uid
    assert _rtstruct_header(path).FrameOfReferenceUID == ref.frame_of_reference_uid
    assert np.array_equal(array(read_rtstruct(path, ct)["GTV"]), array(st["masks"]["GTV"]))


def test_dicom_outputs_never_go_into_the_ct_folder(p1):
    from lungai.dicom.export import export_results

    st, ct = p1
    with pytest.raises(InputError, match="refusing to write DICOM results into the CT series folder"):
        export_results(ct_reference(st["ct"], image=ct), st["ct"], tumour=st["masks"]["GTV"])


# ----------------------------------------------------------------------------------------------------- CLI

def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


def test_cli_lungs_writes_seg_and_rtstruct_for_a_dicom_ct(p1, tmp_path, capsys):
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg

    st, ct = p1
    assert _cli("lungs", st["ct"], "-o", tmp_path / "lungs.nii.gz") == 0
    labels = array(sitk.ReadImage(str(tmp_path / "lungs.nii.gz")))
    seg = read_seg(tmp_path / "lungs.seg.dcm", ct)
    rt = read_rtstruct(tmp_path / "lungs.rtstruct.dcm", ct)
    assert np.array_equal(array(seg["Right lung"]), labels == 1) and np.array_equal(array(seg["Left lung"]), labels == 2)
    assert np.array_equal(array(rt["Lung_R"]), labels == 1) and np.array_equal(array(rt["Lung_L"]), labels == 2)
    assert _cli("lungs", st["ct"], "-o", tmp_path / "b" / "lungs.nii.gz", "--no-dicom") == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [".lungai-lungs", "lungs.nii.gz"]   # + its marker
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    assert _cli("lungs", tmp_path / "ct.nii.gz", "-o", tmp_path / "c" / "lungs.nii.gz") == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [".lungai-lungs", "lungs.nii.gz"]


def test_cli_segment_writes_seg_rtstruct_map_and_sr(p1, tmp_path):
    from lungai.dicom.pmap import read_parametric_map
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.dicom.sr import read_sr

    st, ct = p1
    centre = small_phantom(7).meta["tumour"]["centre_mm"]
    out = tmp_path / "seg"
    assert _cli("segment", st["ct"], "-o", out, "--seed-point=" + ",".join(f"{v:.2f}" for v in centre)) == 0
    tumour = array(sitk.ReadImage(str(out / "tumor.nii.gz"))) > 0
    assert tumour.any()
    assert np.array_equal(array(read_seg(out / "tumor.seg.dcm", ct)["Tumour"]) > 0, tumour)
    assert np.array_equal(array(read_rtstruct(out / "rtstruct.dcm", ct, allow_gaps=True)["GTVp"]) > 0, tumour)
    entropy = array(sitk.ReadImage(str(out / "uncertainty.nii.gz")))
    assert np.abs(array(read_parametric_map(out / "uncertainty.pm.dcm", ct)) - entropy).max() <= 1e-6
    info = json.loads((out / "result.json").read_text(encoding="utf-8"))
    sr = read_sr(out / "measurements.sr.dcm")
    assert sr["Tumour"]["Volume"][0] == pytest.approx(info["tumor_volume_ml"], abs=1e-3)
    assert sr["Case"]["confidence"][0] == pytest.approx(info["confidence"])
    assert sr["Case"]["needs_review"][0] == float(info["needs_review"])


def test_cli_radiomics_and_dose_features_from_rtstruct(export, tmp_path):
    import pandas as pd

    st = export["P1"]
    ct = read_ct(st["ct"])
    lab = np.zeros(array(ct).shape, np.uint8)
    lab[array(st["masks"]["Lung_R"]) > 0] = 1
    lab[array(st["masks"]["Lung_L"]) > 0] = 2
    sitk.WriteImage(image_like(lab, ct), str(tmp_path / "lungs.nii.gz"))
    sitk.WriteImage(st["masks"]["GTV"], str(tmp_path / "gtv.nii.gz"))
    common = ["--image-types", "Original", "--feature-classes", "shape"]
    assert _cli("radiomics", "--image", st["ct"], "--tumour", tmp_path / "gtv.nii.gz", "--lungs",
                tmp_path / "lungs.nii.gz", *common, "-o", tmp_path / "nifti.csv") == 0
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], *common, "-o", tmp_path / "rt.csv") == 0
    a, b = pd.read_csv(tmp_path / "nifti.csv"), pd.read_csv(tmp_path / "rt.csv")
    assert set(a.segment) == {"tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour"}
    pd.testing.assert_frame_equal(a, b)
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--structure", "GTV", "--structure",
                "role:lungs", *common, "-o", tmp_path / "named.csv") == 0
    assert set(pd.read_csv(tmp_path / "named.csv").segment) == {"GTV", "lungs"}

    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", tmp_path / "lungs.nii.gz",
                "--gtv", tmp_path / "gtv.nii.gz", "-o", tmp_path / "d_nifti.csv") == 0
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", tmp_path / "d_rt.csv") == 0
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "--structure", "role:lungs", "--gtv", "GTV", "-o", tmp_path / "d_named.csv") == 0
    d1, d2, d3 = (pd.read_csv(tmp_path / f).drop(columns=["case", "masks"])    # the same values, of other masks
                  for f in ("d_nifti.csv", "d_rt.csv", "d_named.csv"))
    pd.testing.assert_frame_equal(d1, d2)
    pd.testing.assert_frame_equal(d1, d3)


def test_cli_radiomics_with_a_gtv_only_rtstruct_reads_only_what_the_segments_need(export, tmp_path, capsys):
    import pandas as pd

    st = export["P1"]
    rs = write_rtstruct({"GTVp": st["masks"]["GTV"]}, st["reference"], tmp_path / "gtv_only.dcm")  # as `segment` writes
    common = ["--image-types", "Original", "--feature-classes", "shape"]
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", rs, "--segments", "tumour", *common,
                "-o", tmp_path / "out" / "t.csv") == 0
    assert set(pd.read_csv(tmp_path / "out" / "t.csv").segment) == {"tumour"}
    capsys.readouterr()
    # default segments (all that can be built): the tumour; the lung segments are noted with the reason, no error
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", rs, *common, "-o", tmp_path / "out" / "all.csv") == 0
    err = capsys.readouterr().err
    assert set(pd.read_csv(tmp_path / "out" / "all.csv").segment) == {"tumour"}
    for seg in ("right_lung", "left_lung", "lungs", "lungs_minus_tumour"):
        assert f"note: {seg} not computed: segment '{seg}' needs the right and left lung: no structure with role " \
               "'lung_right' or 'lung_left' among: GTVp (gtv_primary)" in err
    assert not (tmp_path / "out" / "all_errors.csv").exists()
    # a requested segment that cannot be built: nothing else to compute, so a clear error
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", rs, "--segments", "lungs", *common,
                "-o", tmp_path / "out" / "l.csv") == 2
    assert "lungs: segment 'lungs' needs the right and left lung" in capsys.readouterr().err


def test_cli_radiomics_case_is_the_dicom_patient_id_unless_given(export, tmp_path):
    import pandas as pd

    st = export["P1"]
    assert st["ct"].name == "CT"
    common = ["--image-types", "Original", "--feature-classes", "shape", "--segments", "tumour"]
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], *common, "-o", tmp_path / "a.csv") == 0
    assert set(pd.read_csv(tmp_path / "a.csv").case) == {"P1"}
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], *common, "--case", "mine",
                "-o", tmp_path / "b.csv") == 0
    assert set(pd.read_csv(tmp_path / "b.csv").case) == {"mine"}


def test_cli_radiomics_names_the_cli_option_for_a_structure_with_gaps(p1, tmp_path, capsys):
    st, ct = p1
    a = np.zeros(array(ct).shape, np.uint8)
    a[8:12, 20:30, 20:30] = 1
    a[14:16, 20:30, 20:30] = 1        # slices 12 and 13 left out
    path = write_rtstruct({"Heart": image_like(a, ct)}, st["reference"], tmp_path / "gap.dcm")
    args = ["radiomics", "--image", st["ct"], "--rtstruct", path, "--structure", "Heart", "--image-types", "Original",
            "--feature-classes", "shape"]
    assert _cli(*args, "-o", tmp_path / "out" / "h.csv") == 2
    err = capsys.readouterr().err
    assert "--allow-gaps (lungai CLI) or allow_gaps=True (Python API)" in err
    assert _cli(*args, "--allow-gaps", "-o", tmp_path / "out" / "h.csv") == 0


def test_cli_mask_options_take_dicom_seg_and_refuse_rtstruct_files(export, tmp_path, capsys):
    import pandas as pd

    from lungai.dicom.seg import write_seg

    st = export["P1"]
    ct = read_ct(st["ct"])
    ref = ct_reference(st["ct"], image=ct)
    write_seg({"Right lung": st["masks"]["Lung_R"], "Left lung": st["masks"]["Lung_L"]}, ref, tmp_path / "l.seg.dcm",
              roles={"Right lung": "lung_right", "Left lung": "lung_left"})
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", tmp_path / "l.seg.dcm",
                "-o", tmp_path / "out" / "seg.csv") == 0
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "--structure", "role:lungs", "--gtv", "role:gtv_node", "-o", tmp_path / "out" / "x.csv") == 2
    assert "no structure with role 'gtv_node'" in capsys.readouterr().err
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", st["rtstruct"],
                "-o", tmp_path / "out" / "y.csv") == 2
    assert "is an RTSTRUCT (contours), not a mask image" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "out" / "seg.csv").dose_mld_gy.iloc[0] > 0


def test_sample_dicom_writes_an_rt_export(tmp_path):
    assert _cli("sample", "-o", tmp_path, "--dicom", "--slice-thickness", "5") == 0
    (study,) = scan(tmp_path / "dicom")
    assert study.missing == [] and study.ct.n_slices == 48
    ct = read_ct(study.ct.folder)
    truth = array(sitk.ReadImage(str(tmp_path / "ct.nii.gz")))
    assert np.array_equal(array(ct), truth)
    assert set(list_structures(study.rtstruct[0])) == {"GTV", "Lung_R", "Lung_L"}


def test_cli_dicom_scan_lists_what_each_patient_has(export, tmp_path, capsys):
    root = export["P1"]["root"].parent
    assert _cli("dicom-scan", root, "--structures", "--json", tmp_path / "scan.json") == 0
    out = capsys.readouterr().out
    assert "P2: CT 36 slices, 1 RTSTRUCT, 0 RTDOSE, 0 SEG; missing RTDOSE" in out
    assert "Tumour_big (no role)" in out and "Lung_R (lung_right)" in out
    doc = json.loads((tmp_path / "scan.json").read_text(encoding="utf-8"))
    assert [d["patient_id"] for d in doc] == ["P1", "P2", "P3"] and doc[1]["missing"] == ["RTDOSE"]


def test_cli_dicom_scan_of_a_folder_without_dicom_exits_2(tmp_path, capsys):
    """QA: an empty / wrong folder printed a line and exited 0, so a script did not notice it."""
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "notes.txt").write_text("not DICOM", encoding="utf-8")
    assert _cli("dicom-scan", tmp_path / "e", "--json", tmp_path / "scan.json") == 2
    err = capsys.readouterr().err
    assert "no DICOM CT, RTSTRUCT, RTDOSE or SEG files under" in err and "point to the folder" in err
    assert not (tmp_path / "scan.json").exists()


def _results_folder(st, tmp_path, result: dict):
    """A lungai results folder for the study ``st``: lungs.nii.gz (1 right, 2 left), tumor.nii.gz, result.json (of
    its CT: PatientID, series UID)."""
    ct = read_ct(st["ct"])
    res = tmp_path / "results"
    res.mkdir()
    lab = np.zeros(array(ct).shape, np.uint8)
    lab[array(st["masks"]["Lung_R"]) > 0] = 1
    lab[array(st["masks"]["Lung_L"]) > 0] = 2
    sitk.WriteImage(image_like(lab, ct), str(res / "lungs.nii.gz"))
    sitk.WriteImage(st["masks"]["GTV"], str(res / "tumor.nii.gz"))
    gtv_ml = float((array(st["masks"]["GTV"]) > 0).sum() * np.prod(ct.GetSpacing()) / 1000.0)
    from lungai.dicom.export import ct_record

    # lungai segment's result.json describes its tumour and records its CT (dicom-export checks it is --ct's)
    result = {"tumor_volume_ml": gtv_ml, **ct_record(st["ct"]), **result}
    (res / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return ct, res, lab


def test_cli_dicom_export_writes_every_result_with_measurements(export, tmp_path):
    import pandas as pd

    from lungai.dicom.seg import read_seg
    from lungai.dicom.sr import read_sr

    st = export["P1"]
    ct, res, lab = _results_folder(st, tmp_path, {"confidence": 0.8, "needs_review": False, "review_threshold": 0.57})
    assert _cli("radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--image-types", "Original",
                "--feature-classes", "shape", "firstorder", "-o", res / "radiomics_long.csv") == 0
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", res / "dose.csv") == 0
    pd.DataFrame([{"case": "P1", "risk": 0.31, "risk_low": 0.2, "risk_high": 0.45, "high_risk": 0}]).to_csv(
        res / "rp_prediction.csv", index=False)
    out = tmp_path / "dicom"
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [".lungai-dicom-export", "measurements.sr.dcm", "results.seg.dcm",
                                                     "rtstruct.dcm"]           # the marker lists what it wrote
    seg = read_seg(out / "results.seg.dcm", ct)
    assert list(seg) == ["Tumour", "Right lung", "Left lung"]
    assert np.array_equal(array(seg["Left lung"]), lab == 2)
    sr = read_sr(out / "measurements.sr.dcm")
    rad = pd.read_csv(res / "radiomics_long.csv")
    dose = pd.read_csv(res / "dose.csv").iloc[0]
    mean = rad[(rad.segment == "tumour") & (rad.feature == "Mean")].value.iloc[0]
    assert sr["Tumour"]["original_firstorder_Mean"] == (pytest.approx(mean), "[hnsf'U]")
    voxel_ml = np.prod(ct.GetSpacing()) / 1000
    assert sr["Right lung"]["Volume"] == (pytest.approx((lab == 1).sum() * voxel_ml), "ml")
    assert "original_shape_MeshVolume" in sr["lungs_minus_tumour"]
    assert sr["Dose"]["dose_mld_gy"] == (pytest.approx(dose.dose_mld_gy), "Gy")
    assert sr["Dose"]["dose_v20_pct"] == (pytest.approx(dose.dose_v20_pct), "%")
    assert sr["Case"]["rp_risk"] == (pytest.approx(0.31), "1") and sr["Case"]["confidence"][0] == 0.8
    # QA defect: the MLD of the RTSTRUCT's lungs / GTV stood beside lungai's tumour and lungs without saying so:
    # the dose group's comment names the structures, as dose.csv's masks column
    from lungai.dicom.sr import read_sr_comments

    comment = read_sr_comments(out / "measurements.sr.dcm")["Dose"]
    assert comment == "Dose metrics computed on " + dose.masks
    assert "lungs: RTSTRUCT structure Lung_R + Lung_L" in comment and "minus GTV: RTSTRUCT structure GTV" in comment
    comments = read_sr_comments(out / "measurements.sr.dcm")
    assert "dose_mld_gy" not in sr["Case"] and list(comments)[-1] == "Dose"
    # the Case group's comment: what rp_risk is of - not recorded in this rp_prediction.csv (no endpoint column)
    assert comments["Case"].startswith("rp_risk: risk of an endpoint not recorded in the RP prediction CSV")
    # the segments' groups say their volume_ml is the mask's on the CT's grid, their radiomic features of the
    # radiomics grid (no settings CSV given here: not recorded)
    # (groups of features without an exported mask - lungs, lungs minus tumour - name the radiomics grid only)
    masks = ["Tumour", "Right lung", "Left lung"]
    assert [k for k in comments if k not in ("Case", "Dose", "lungs", "lungs_minus_tumour")] == masks
    assert all(comments[k].startswith("volume_ml: the exported mask on the CT's grid") for k in masks)
    assert all(comments[k].startswith("radiomic features (shape volume included) computed on")
               for k in comments if k in ("lungs", "lungs_minus_tumour"))
    # a dose CSV without the masks column (an older lungai's, a user's): the SR says the masks are not recorded
    dose.drop("masks").to_frame().T.to_csv(tmp_path / "old_dose.csv", index=False)
    assert _cli("dicom-export", "--ct", st["ct"], "--dose-features", tmp_path / "old_dose.csv", "-o",
                tmp_path / "old") == 0
    assert "not recorded" in read_sr_comments(tmp_path / "old" / "measurements.sr.dcm")["Dose"]
    wrong = tmp_path / "wrong.nii.gz"
    off = sitk.Image(st["masks"]["GTV"])         # half a voxel off the CT's grid (a crop on it is placed onto it)
    off.SetOrigin(tuple(np.add(off.GetOrigin(), (0.5 * off.GetSpacing()[0], 0.0, 0.0))))
    sitk.WriteImage(off, str(wrong))
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", wrong, "-o", tmp_path / "x") == 2
    crop = tmp_path / "crop.nii.gz"                 # cropped on the CT's lattice: placed, the same SEG as the whole
    sitk.WriteImage(st["masks"]["GTV"][:, :, 1:], str(crop))
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", crop, "-o", tmp_path / "y") == 0


def test_cli_dicom_export_labels_the_users_masks_manual_and_lungais_automatic(export, tmp_path):
    """A user's contours are not SlicerLungAI's: MANUAL (no algorithm) in the SEG and RTSTRUCT; the tumour is
    AUTOMATIC (SlicerLungAI) only with lungai's result.json, the lungs only when `lungai lungs` wrote them."""
    from dicom_helpers import provenance

    from lungai.dicom.export import export_lungs

    st = export["P1"]
    ct, res, lab = _results_folder(st, tmp_path, {"confidence": 0.8, "needs_review": False})
    manual = ({"Tumour": ("MANUAL", None), "Right lung": ("MANUAL", None), "Left lung": ("MANUAL", None)},
              {"GTVp": "MANUAL", "Lung_R": "MANUAL", "Lung_L": "MANUAL"})
    user = ["--tumour", res / "tumor.nii.gz", "--lungs", res / "lungs.nii.gz"]
    assert _cli("dicom-export", "--ct", st["ct"], *user, "-o", tmp_path / "user") == 0
    assert provenance(tmp_path / "user" / "results.seg.dcm", tmp_path / "user" / "rtstruct.dcm") == manual
    # a user's tumour beside a results folder's result.json is still the user's
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "--tumour", res / "tumor.nii.gz",
                "-o", tmp_path / "mixed") == 0
    assert provenance(tmp_path / "mixed" / "results.seg.dcm", tmp_path / "mixed" / "rtstruct.dcm") == manual
    lungai_tumour = ({**manual[0], "Tumour": ("AUTOMATIC", "SlicerLungAI")}, {**manual[1], "GTVp": "AUTOMATIC"})
    for name, args in (("result", [*user, "--result", res / "result.json"]), ("folder", ["--results", res])):
        assert _cli("dicom-export", "--ct", st["ct"], *args, "-o", tmp_path / name) == 0
        assert provenance(tmp_path / name / "results.seg.dcm", tmp_path / name / "rtstruct.dcm") == lungai_tumour
    out = tmp_path / "lungs"
    out.mkdir()
    export_lungs(ct_reference(st["ct"], image=ct), image_like(lab, ct), out / "lungs")     # as `lungai lungs` writes
    assert provenance(out / "lungs.seg.dcm", out / "lungs.rtstruct.dcm") == (
        {"Right lung": ("AUTOMATIC", "SlicerLungAI"), "Left lung": ("AUTOMATIC", "SlicerLungAI")},
        {"Lung_R": "AUTOMATIC", "Lung_L": "AUTOMATIC"})
    # such a SEG given back as --lungs is lungai's lungs (dose-features' masks column, a re-export's generation); a
    # SEG of the user's lungs (MANUAL) is the user's (QA: dose.csv called lungai's own SEG "not made by lungai lungs")
    from lungai.cli.dose import lung_file_source
    from lungai.dicom.export import lungs_made_by
    from lungai.lungs import RT_LUNG_DEFINITION

    assert lungs_made_by(out / "lungs.seg.dcm") == "lungs"
    assert lungs_made_by(tmp_path / "user" / "results.seg.dcm") is None
    assert RT_LUNG_DEFINITION in lung_file_source(out / "lungs.seg.dcm")
    assert RT_LUNG_DEFINITION not in lung_file_source(tmp_path / "user" / "results.seg.dcm")
    assert _cli("dicom-export", "--ct", st["ct"], "--lungs", out / "lungs.seg.dcm", "-o", tmp_path / "again") == 0
    assert provenance(tmp_path / "again" / "results.seg.dcm", tmp_path / "again" / "rtstruct.dcm")[0] == {
        "Right lung": ("AUTOMATIC", "SlicerLungAI"), "Left lung": ("AUTOMATIC", "SlicerLungAI")}


def test_the_seg_names_the_lungs_algorithm_family_apart_from_the_tumours(export, tmp_path):
    """QA: the SEG of `lungai lungs` gave its lungs the Algorithm Family "Artificial Intelligence", while no trained
    model makes them (classical image processing, docs/lungs.md): lungai's lungs are Morphological Operations, its
    tumour (a neural network) Artificial Intelligence."""
    from lungai.dicom.export import export_lungs

    st = export["P1"]
    ct, res, lab = _results_folder(st, tmp_path, {"confidence": 0.8, "needs_review": False})

    def families(path):
        found = {}
        for s in pydicom.dcmread(str(path)).SegmentSequence:
            for a in getattr(s, "SegmentationAlgorithmIdentificationSequence", []):
                code = a.AlgorithmFamilyCodeSequence[0]
                found[s.SegmentLabel] = (code.CodeValue, code.CodeMeaning)
        return found

    out = tmp_path / "lungs"
    out.mkdir()
    export_lungs(ct_reference(st["ct"], image=ct), image_like(lab, ct), out / "lungs")     # as `lungai lungs` writes
    morphology = ("123104", "Morphological Operations")
    assert families(out / "lungs.seg.dcm") == {"Right lung": morphology, "Left lung": morphology}
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "-o", tmp_path / "both") == 0   # lungai's own
    # (this folder's lungs are not lungai's: MANUAL, no algorithm)
    assert families(tmp_path / "both" / "results.seg.dcm") == {"Tumour": ("123110", "Artificial Intelligence")}


def test_cli_dicom_export_takes_no_confidence_or_uncertainty_of_a_folder_for_the_users_tumour(export, tmp_path,
                                                                                              capsys):
    """--results DIR --tumour MINE: DIR's result.json (confidence, review flag) and uncertainty.nii.gz describe
    lungai's tumour, not MINE: not exported (a note says so) unless given as --result / --uncertainty."""
    from lungai.dicom.sr import read_sr

    st = export["P1"]
    ct, res, lab = _results_folder(st, tmp_path, {"confidence": 0.8, "needs_review": False, "review_threshold": 0.57})
    from lungai.seg.uncertainty import described

    # as lungai segment writes it: described as its predictive entropy (dicom-export checks the description)
    sitk.WriteImage(described(sitk.Cast(st["masks"]["GTV"], sitk.sitkFloat32) * 0.5), str(res / "uncertainty.nii.gz"))
    mine = tmp_path / "mine.nii.gz"
    sitk.WriteImage(st["masks"]["GTV"], str(mine))
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "-o", tmp_path / "lungai") == 0   # lungai's own
    assert (tmp_path / "lungai" / "uncertainty.pm.dcm").is_file()
    assert read_sr(tmp_path / "lungai" / "measurements.sr.dcm")["Case"]["confidence"][0] == 0.8
    assert "note:" not in capsys.readouterr().out

    out = tmp_path / "mine"
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "--tumour", mine, "-o", out) == 0
    text = capsys.readouterr().out
    assert text.count("note:") == 1 and "--tumour replaces the tumour of" in text
    assert "result.json and uncertainty.nii.gz" in text and "give --result / --uncertainty" in text
    assert not (out / "uncertainty.pm.dcm").exists()
    case = read_sr(out / "measurements.sr.dcm").get("Case", {})
    assert not {"confidence", "needs_review", "review_threshold"} & set(case), case
    assert sorted(read_sr(out / "measurements.sr.dcm")) != []           # the masks' measurements are still there

    out = tmp_path / "explicit"                                          # given explicitly: exported as before
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "--tumour", mine, "--result", res / "result.json",
                "--uncertainty", res / "uncertainty.nii.gz", "-o", out) == 0
    assert "note:" not in capsys.readouterr().out
    assert (out / "uncertainty.pm.dcm").is_file()
    assert read_sr(out / "measurements.sr.dcm")["Case"]["confidence"][0] == 0.8
    out = tmp_path / "one"                                               # one of them explicit: the note names the other
    assert _cli("dicom-export", "--ct", st["ct"], "--results", res, "--tumour", mine,
                "--uncertainty", res / "uncertainty.nii.gz", "-o", out) == 0
    text = capsys.readouterr().out
    assert "its result.json (lungai's confidence and review flag" in text and "give --result to export it" in text
    assert (out / "uncertainty.pm.dcm").is_file() and "confidence" not in read_sr(out / "measurements.sr.dcm").get("Case", {})


def test_rtstruct_of_another_ct_and_duplicate_names_are_errors(export, tmp_path):
    p1, p3 = export["P1"], export["P3"]
    ct = read_ct(p1["ct"])        # same geometry as P3's CT: only the frame of reference tells them apart
    assert ct.GetMetaData("0020|0052") == p1["reference"].frame_of_reference_uid
    with pytest.raises(InputError, match="is drawn in frame of reference .*, the CT is in"):
        read_rtstruct(p3["rtstruct"], ct, names=["Lung_R"])
    ds = pydicom.dcmread(p1["rtstruct"])
    ds.StructureSetROISequence[2].ROIName = "lung_r"
    ds.save_as(tmp_path / "dup.dcm")
    with pytest.raises(InputError, match="holds 2 structures named 'Lung_R' \\(ROI numbers 2, 3\\)"):
        read_rtstruct(tmp_path / "dup.dcm", ct, names=["Lung_R"])
    assert list(read_rtstruct(tmp_path / "dup.dcm", ct, names=["GTV"])) == ["GTV"]


def test_cli_dose_features_with_only_a_lungs_minus_gtv_structure(export, tmp_path):
    import pandas as pd

    st = export["P1"]
    ct = read_ct(st["ct"])
    lungs = (array(st["masks"]["Lung_R"]) | array(st["masks"]["Lung_L"])) & ~array(st["masks"]["GTV"])
    rs = write_rtstruct({"Lungs-GTV": image_like(lungs, ct), "GTVp": st["masks"]["GTV"]}, st["reference"],
                        tmp_path / "rs.dcm")
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", rs,
                "-o", tmp_path / "out" / "a.csv") == 0      # (not beside rs.dcm: the folder of a DICOM input)
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", st["rtstruct"],
                "-o", tmp_path / "out" / "b.csv") == 0
    a, b = (pd.read_csv(tmp_path / "out" / f).drop(columns="case") for f in ("a.csv", "b.csv"))
    assert a.masks[0].startswith(f"lungs: RTSTRUCT structure Lungs-GTV ({tmp_path / 'rs.dcm'}")
    assert "GTVp" in a.masks[0]
    pd.testing.assert_frame_equal(a.drop(columns="masks"), b.drop(columns="masks"))


def test_seg_of_another_ct_or_partly_off_the_ct_is_an_error(export, tmp_path):
    from lungai.dicom.seg import read_seg, write_seg

    p1, p3 = export["P1"], export["P3"]
    ct1 = read_ct(p1["ct"])
    path = write_seg({"Lung_R": p1["masks"]["Lung_R"]}, p1["reference"], tmp_path / "l.seg.dcm")
    with pytest.raises(InputError, match="l.seg.dcm is drawn in frame of reference .*, the CT is in"):
        read_seg(path, read_ct(p3["ct"]))
    with pytest.raises(InputError, match="'Lung_R' of .*l.seg.dcm lies partly off the CT"):
        read_seg(path, ct1[:, :, 10:30])


def _foreign_seg(reference, path, pixels, labels, fractional=False):
    """A SEG as another tool writes it (highdicom): ``pixels`` (z, y, x, segments), BINARY or FRACTIONAL (0..1,
    MaximumFractionalValue 255), one segment per label, all coded as neoplasms."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from lungai.dicom.seg import quiet_highdicom

    descs = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=label, segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, label in enumerate(labels, start=1)]
    kind = hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
    with quiet_highdicom():
        hd.seg.Segmentation(
            source_images=reference.datasets, pixel_array=pixels if fractional else pixels.astype(np.uint8),
            segmentation_type=kind, segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=99,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="QA", manufacturer_model_name="qa",
            software_versions="1", device_serial_number="1",
            **({"max_fractional_value": 255} if fractional else {})).save_as(path)
    return path


def test_fractional_seg_is_read_at_one_half_with_a_note(p1, tmp_path):
    """QA: a FRACTIONAL SEG (GTV 1.0 with a rim of 0.3, or GTV all 0.6) crashed radiomics / dose-features with
    highdicom's raw "Combining segments of a FRACTIONAL segmentation is only possible if ..."."""
    import scipy.ndimage as ndi

    from lungai.dicom.seg import read_seg
    from lungai.errors import InputNote
    from lungai.io import read_mask

    st, ct = p1
    gtv = array(st["masks"]["GTV"]) > 0
    rim = ndi.binary_dilation(gtv) & ~gtv
    for name, fractions in (("rim", gtv + 0.3 * rim), ("six", 0.6 * gtv)):
        path = _foreign_seg(st["reference"], tmp_path / f"{name}.seg.dcm", fractions.astype(np.float32)[..., None],
                            ["GTV-1"], fractional=True)
        with pytest.warns(InputNote, match=f"{name}.seg.dcm is a FRACTIONAL SEG: .* at least 0.5"):
            back = read_seg(path, ct)
        assert list(back) == ["GTV-1"] and np.array_equal(array(back["GTV-1"]) > 0, gtv), name
        with pytest.warns(InputNote):
            assert np.array_equal(array(read_mask(path, reference=ct)) > 0, gtv), name


def test_seg_that_highdicom_cannot_read_as_a_volume_is_an_input_error(p1, tmp_path, monkeypatch):
    import highdicom as hd

    from lungai.dicom.seg import read_seg

    st, ct = p1
    path = _foreign_seg(st["reference"], tmp_path / "odd.seg.dcm", (array(st["masks"]["GTV"]) > 0)[..., None],
                        ["GTV-1"])

    def refuse(*args, **kwargs):
        raise ValueError("Frames do not form a regularly-spaced volume.")

    monkeypatch.setattr(hd.seg.Segmentation, "get_volume", refuse)
    with pytest.raises(InputError,
                       match="segment 'GTV-1' .*of .*odd.seg.dcm could not be read as a volume .*regularly"):
        read_seg(path, ct)


def test_seg_with_a_repeated_segment_label_is_refused(p1, tmp_path):
    """QA: two segments labelled "GTV" (GTV-1, GTV-2) overwrote each other by label: radiomics measured the last
    one (47.6 ml), not the union (82.4 ml), silently.  Refused as an RTSTRUCT's repeated structure name is."""
    from lungai.dicom.seg import read_seg
    from lungai.io import read_mask

    st, ct = p1
    gtv = array(st["masks"]["GTV"]) > 0
    half = gtv.copy()
    zs = np.nonzero(gtv.any(axis=(1, 2)))[0]
    half[: (zs[0] + zs[-1]) // 2 + 1] = False      # the tumour's upper slices; rest: its lower ones
    rest = gtv & ~half
    assert half.any() and rest.any()
    path = _foreign_seg(st["reference"], tmp_path / "dup.seg.dcm", np.stack([rest, half], -1), ["GTV", " GTV "])
    problem = r"dup.seg.dcm holds 2 segments labelled 'GTV' \(segment numbers 1, 2\)"
    with pytest.raises(InputError, match=problem) as info:
        read_seg(path, ct)
    assert "give each segment its own label" in info.value.fix
    with pytest.raises(InputError, match=problem):
        read_mask(path, reference=ct, select="role:gtv")
    ok = _foreign_seg(st["reference"], tmp_path / "ok.seg.dcm", np.stack([rest, half], -1), ["GTV-1", "GTV-2"])
    assert np.array_equal(array(read_mask(ok, reference=ct, select="role:gtv")) > 0, gtv)


def test_seg_labels_differing_only_in_case_are_two_segments(p1, tmp_path):
    """Review of dd1aef0: "GTV" and "gtv" (a user's rename, SlicerRT) were refused as one label although they are two
    keys; our own Slicer export wrote such a SEG.  Read whole and by role (their union); a choice by name (which
    ignores case) cannot tell them apart and is refused, naming both."""
    from lungai.dicom.masks import mask_input
    from lungai.dicom.seg import read_seg
    from lungai.io import read_mask

    st, ct = p1
    gtv = array(st["masks"]["GTV"]) > 0
    half = gtv.copy()
    zs = np.nonzero(gtv.any(axis=(1, 2)))[0]
    half[: (zs[0] + zs[-1]) // 2 + 1] = False
    rest = gtv & ~half
    path = _foreign_seg(st["reference"], tmp_path / "case.seg.dcm", np.stack([rest, half], -1), ["GTV", " gtv"])
    segments = read_seg(path, ct)
    assert list(segments) == ["GTV", "gtv"]           # the labels stripped of spaces around them
    assert np.array_equal(array(segments["gtv"]) > 0, half)
    assert np.array_equal(array(read_mask(path, reference=ct, select="role:gtv")) > 0, gtv)
    assert np.array_equal(array(mask_input(path, ct, what="tumour")) > 0, gtv)      # --tumour case.seg.dcm
    for name in ("GTV", "gtv", "Gtv"):
        with pytest.raises(InputError, match=r"case.seg.dcm holds 2 segments named 'GTV' apart from letter case "
                                             r"\('GTV', 'gtv'\)") as info:
            read_mask(f"{path}#{name}", reference=ct, select=name)
        assert "role:gtv" in info.value.fix


def test_rtstruct_names_differing_only_in_case_are_two_structures(p1, tmp_path):
    """"GTV" and "gtv" in one RTSTRUCT (our own Slicer export writes it): read whole and by role (their union), refused
    only when one is chosen by name; the same name twice (spaces around it ignored) stays refused when read."""
    from lungai.dicom.rtstruct import read_rtstruct_role, write_rtstruct

    st, ct = p1
    gtv = st["masks"]["GTV"]
    arr = array(gtv) > 0
    zs = np.nonzero(arr.any(axis=(1, 2)))[0]
    upper = arr.copy()
    upper[: (zs[0] + zs[-1]) // 2 + 1] = False
    from lungai.io import copy_geometry

    parts = {"GTV": copy_geometry((arr & ~upper).astype(np.uint8), gtv), "gtv": copy_geometry(upper.astype(np.uint8), gtv),
             "Lung_R": st["masks"]["Lung_R"]}
    path = write_rtstruct(parts, st["reference"], tmp_path / "case.rtstruct.dcm")
    assert list(read_rtstruct(path, ct)) == ["GTV", "gtv", "Lung_R"]
    mask, used = read_rtstruct_role(path, ct, "gtv")
    assert used == ["GTV", "gtv"] and np.array_equal(array(mask) > 0, arr)
    with pytest.raises(InputError, match=r"holds 2 structures named 'GTV' \(ROI numbers 1, 2\) apart from letter"):
        read_rtstruct(path, ct, names=["gtv"])
    assert list(read_rtstruct(path, ct, names=["lung_r"])) == ["Lung_R"]
    with pytest.raises(InputError, match=r"2 segments have the name 'GTV' \('GTV', 'GTV '\).*read by name") as info:
        write_rtstruct({"GTV": parts["GTV"], "GTV ": parts["gtv"]}, st["reference"], tmp_path / "dup.dcm")
    assert "rename one of the segments in the Segment Editor" in info.value.fix and not (tmp_path / "dup.dcm").exists()
    from lungai.dicom.seg import write_seg

    with pytest.raises(InputError, match=r"2 segments have the name 'GTV'"):
        write_seg({"GTV": parts["GTV"], " GTV": parts["gtv"]}, st["reference"], tmp_path / "dup.seg.dcm")
    assert not (tmp_path / "dup.seg.dcm").exists()


@pytest.mark.parametrize("name, why", [("GTV\\node", "a backslash"), ("G" * 65, "65 characters, more than DICOM's 64"),
                                       ("GTV\nnode", "a control character")])
def test_a_name_dicom_cannot_hold_is_refused_before_writing(p1, tmp_path, name, why):
    """SegmentLabel / ROIName are LO: at most 64 characters, no backslash (DICOM's separator of two values), no
    control characters.  QA (a Slicer segment "GTV\\node" on LUNG1-003): the SEG and the RTSTRUCT were written with
    two names, read back as "['GTV', 'node']" (by lungai; "GTV" by a strict reader), so `--tumour FILE#GTV\\node` no
    longer found it; a name of 70 characters was written invalid (pydicom's warning only).  Now refused before
    anything is written, naming the name and the fix; a 64-character name is written and read back as given."""
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.dicom.seg import read_seg, write_seg

    st, ct = p1
    gtv = st["masks"]["GTV"]
    for write in (write_rtstruct, write_seg):
        out = tmp_path / f"{write.__name__}.dcm"
        with pytest.raises(InputError, match=f"cannot be written into a DICOM SEG / RTSTRUCT: .*{why}") as info:
            write({name: gtv, "Lung_R": st["masks"]["Lung_R"]}, st["reference"], out)
        assert "at most 64 characters" in info.value.fix and not out.exists()
    longest = "G" * 64
    for write, read in ((write_rtstruct, read_rtstruct), (write_seg, read_seg)):
        path = write({longest: gtv}, st["reference"], tmp_path / f"ok_{write.__name__}.dcm")
        masks = read(path, ct)
        assert list(masks) == [longest] and np.array_equal(array(masks[longest]), array(gtv))


def test_a_name_written_with_a_backslash_by_another_tool_reads_as_written(p1, tmp_path):
    """An RTSTRUCT / SEG of another tool whose name holds a backslash (two values to pydicom): read as the name with
    its backslash, which `--structure` / `FILE#NAME` give (before: "['GTV', 'node']")."""
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.dicom.seg import read_seg, seg_segment_labels, write_seg

    st, ct = p1
    rs = pydicom.dcmread(write_rtstruct({"GTV": st["masks"]["GTV"]}, st["reference"], tmp_path / "rs.dcm"))
    rs.StructureSetROISequence[0].ROIName = ["GTV", "node"]
    rs.save_as(tmp_path / "rs2.dcm")
    assert list(read_rtstruct(tmp_path / "rs2.dcm", ct, names=["gtv\\NODE"])) == ["GTV\\node"]
    seg = pydicom.dcmread(write_seg({"GTV": st["masks"]["GTV"]}, st["reference"], tmp_path / "s.seg.dcm"))
    seg.SegmentSequence[0].SegmentLabel = ["GTV", "node"]
    seg.save_as(tmp_path / "s2.seg.dcm")
    assert seg_segment_labels(tmp_path / "s2.seg.dcm") == ["GTV\\node"]
    assert list(read_seg(tmp_path / "s2.seg.dcm", ct)) == ["GTV\\node"]


def test_empty_template_structure_is_no_case_partner(export, tmp_path, capsys):
    """Review (fix_casepair 1): an uncontoured template structure 'gtv' beside the contoured 'GTV' (LUNG1-003 + an
    empty 'gtv-1') blocked role:gtv - dose-features (its default GTV and --gtv role:gtv) and radiomics ended rc 2
    "holds 2 structures named 'GTV' ... apart from letter case", advising role:gtv.  No role takes a structure
    without contours, so it is no case partner: role reads and a name read take the contoured one, as without it;
    a name matching only the empty structure still says it has no contours."""
    from lungai.dicom.masks import structure_mask

    st = export["P1"]
    ct = read_ct(st["ct"])
    rs = with_empty_structures(st["rtstruct"], ["gtv", "lung_r"], tmp_path / "rs_case.dcm")
    gtv = array(read_rtstruct(st["rtstruct"], ct, names=["GTV"])["GTV"]) > 0
    for role, used in (("gtv", ["GTV"]), ("lungs", ["Lung_R", "Lung_L"]),
                       ("lungs_minus_gtv", ["Lung_R", "Lung_L", "GTV"])):
        assert read_rtstruct_role(rs, ct, role)[1] == used
    for name in ("GTV", "gtv"):                  # the empty one holds nothing to choose: the contoured one
        mask, used = structure_mask(rs, ct, name)
        assert used == ["GTV"] and np.array_equal(array(mask) > 0, gtv)
    assert list(read_rtstruct(rs, ct)) == ["GTV", "Lung_R", "Lung_L"]
    only_empty = with_empty_structures(st["rtstruct"], ["GTVn"], tmp_path / "rs_n.dcm")
    with pytest.raises(InputError, match="structure 'GTVn' has no contours"):
        read_rtstruct(only_empty, ct, names=["gtvn"])
    for gtv_opt in ([], ["--gtv", "role:gtv"], ["--gtv", "gtv"]):
        assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--rtstruct", rs, *gtv_opt,
                    "-o", tmp_path / "out" / "d.csv") == 0, capsys.readouterr().err
    assert "apart from letter case" not in capsys.readouterr().err


def test_case_pair_message_follows_the_choice(p1, tmp_path):
    """Review (fix_casepair 2): 'Lung_R' and 'lung_r' in a SEG given as --lungs (the default role:lungs, no name
    chosen) said "a name chooses a segment ..." and advised role:gtv.  A role read of a one-structure role says the
    role found them and to rename one; a choice by name suggests a role only for GTVs (role:gtv: their union)."""
    from lungai.dicom.masks import select_segments
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import read_seg, write_seg

    st, ct = p1
    m = st["masks"]
    ref = ct_reference(st["ct"], image=ct)
    masks = {"GTV": m["GTV"], "Lung_R": m["Lung_R"], "lung_r": m["Lung_R"], "Lung_L": m["Lung_L"]}
    seg = read_seg(write_seg(masks, ref, tmp_path / "pair.seg.dcm"), ct)
    with pytest.raises(InputError, match=r"role:lungs found 2 segments of the SEG named 'Lung_R' apart from "
                                         r"letter case \('Lung_R', 'lung_r'\)") as info:
        select_segments(seg, "role:lungs")
    assert "role:gtv" not in info.value.fix and "rename one of them" in info.value.fix
    with pytest.raises(InputError, match="a name chooses a segment ignoring letter case") as info:
        select_segments(seg, "lung_r")
    assert "role:gtv" not in info.value.fix and "give each segment a name of its own" in info.value.fix
    seg = {"GTV": seg["GTV"], "gtv": seg["GTV"], "Lung_R": seg["Lung_R"]}
    with pytest.raises(InputError, match="a name chooses a segment ignoring letter case") as info:
        select_segments(seg, "gtv")
    assert "role:gtv takes every GTV" in info.value.fix
    rs = write_rtstruct({"GTV": m["GTV"], "Lung_R": m["Lung_R"], "lung_r": m["Lung_R"], "Lung_L": m["Lung_L"]},
                        ref, tmp_path / "pair.rtstruct.dcm")
    with pytest.raises(InputError, match=rf"role:lungs found 2 structures of {re.escape(str(rs))} named 'Lung_R' "
                                         r"\(ROI numbers 2, 3\)") as info:
        read_rtstruct_role(rs, ct, "lungs")
    assert "role:gtv" not in info.value.fix and "export the RTSTRUCT again" in info.value.fix
    with pytest.raises(InputError, match="a name chooses a structure ignoring letter case") as info:
        read_rtstruct(rs, ct, names=["LUNG_R"])
    assert "role:gtv" not in info.value.fix


def test_cli_radiomics_refuses_an_rtstruct_folder_without_one_before_any_work(tmp_path, capsys):
    """QA: ``radiomics --rtstruct <a folder>`` read the CT (a minute) before saying the RTSTRUCT "does not exist".
    A folder is searched for its RTSTRUCT (test_rtstruct_folder.py); one without any is refused before the CT is
    read."""
    from lungai.cli import main

    folder = tmp_path / "rt"
    folder.mkdir()
    never_read = tmp_path / "no_ct_here.nii.gz"                       # the CT is not read: the folder is told first
    never_read.write_bytes(b"")              # there (the input paths are checked first), but no image: never read
    assert main(["radiomics", "--image", str(never_read), "--rtstruct", str(folder),
                 "-o", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert f"--rtstruct {folder}: no DICOM RTSTRUCT (modality RTSTRUCT) in this folder" in err, err
    assert main(["radiomics", "--image", str(never_read), "--rtstruct", str(tmp_path / "missing.dcm"),
                 "-o", str(tmp_path / "f.csv")]) == 2
    # a missing one: refused with the other input paths, before SimpleITK / pandas are imported (QA cohortdose69)
    assert f"--rtstruct {tmp_path / 'missing.dcm'} does not exist" in capsys.readouterr().err


def test_cli_dose_features_refuses_an_rtstruct_folder_leaving_no_output_folder(tmp_path, capsys):
    """Review: dose-features refused an --rtstruct folder only after making the output's folder (left empty); a
    folder without an RTSTRUCT is refused before it is made."""
    from lungai.cli import main

    folder = tmp_path / "rt"
    folder.mkdir()
    # there (the input paths are checked first), neither read; a dose image by its name (an empty .dcm is refused
    # as no RTDOSE by the dose's kind check before the RTSTRUCT folder's - QA dicom71)
    (tmp_path / "rd.nii.gz").write_bytes(b"")
    (tmp_path / "ct").mkdir()
    assert main(["dose-features", "--dose", str(tmp_path / "rd.nii.gz"), "--ct", str(tmp_path / "ct"),
                 "--rtstruct", str(folder), "-o", str(tmp_path / "df2" / "d.csv")]) == 2
    assert f"--rtstruct {folder}: no DICOM RTSTRUCT" in capsys.readouterr().err
    assert not (tmp_path / "df2").exists()


def test_a_rerun_writes_the_same_seg_and_parametric_map_but_for_their_creation_times(p1, tmp_path):
    """QA: the SEG's and the parametric map's DimensionOrganizationUID was a new random UID each run (highdicom's
    own), so one SOPInstanceUID carried different content from run to run.  Every element is now the same on a
    re-run but the documented creation dates / times."""
    from lungai.dicom.pmap import write_parametric_map
    from lungai.dicom.seg import write_seg

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    gtv = st["masks"]["GTV"]
    unc = sitk.Cast(gtv, sitk.sitkFloat32) * 0.5

    def elements(path):
        out = {}

        def walk(ds, where):
            for el in ds:
                if el.keyword.endswith(("Date", "Time", "DateTime")):
                    continue
                if el.VR == "SQ":
                    for i, item in enumerate(el.value):
                        walk(item, f"{where}{el.keyword}[{i}].")
                elif el.keyword not in ("PixelData",):
                    out[where + (el.keyword or str(el.tag))] = str(el.value)
        walk(pydicom.dcmread(path), "")
        return out

    for kind, write in (("seg", lambda p: write_seg({"Tumour": gtv}, ref, p, roles={"Tumour": "gtv"})),
                        ("pm", lambda p: write_parametric_map(unc, ref, p))):
        a, b = elements(write(tmp_path / f"a.{kind}.dcm")), elements(write(tmp_path / f"b.{kind}.dcm"))
        assert any("DimensionOrganizationUID" in k for k in a), kind
        assert {k for k in a if a[k] != b.get(k)} == set() and a.keys() == b.keys(), kind


def test_seg_of_the_left_lung_alone_is_read_as_the_left_lung(p1, tmp_path):
    """QA: a DICOM SEG holding only the left lung ('Lung-Left', a clinic's SEG of one structure) given as --lungs became
    label 1 of the lung label map, the right lung: radiomics --lungs wrote LUNG1-003's left lung (1722 ml) as
    right_lung, and dose-features warned "the lung map holds only the right lung".  It is label 2 now; a SEG of the
    right lung alone, or of one segment of both lungs, stays label 1."""
    from lungai.dicom.masks import mask_input
    from lungai.dicom.seg import write_seg
    from lungai.lungs.check import lung_map_notes

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    left, right = array(st["masks"]["Lung_L"]) > 0, array(st["masks"]["Lung_R"]) > 0
    seg = write_seg({"Lung-Left": st["masks"]["Lung_L"]}, ref, tmp_path / "left.seg.dcm")
    got = array(mask_input(str(seg), ct, what="lungs", lungs=True))
    assert set(np.unique(got)) == {0, 2} and np.array_equal(got == 2, left)
    assert any("only the left lung (label 2)" in n for n in lung_map_notes(mask_input(str(seg), ct, lungs=True)))
    seg = write_seg({"Lung-Right": st["masks"]["Lung_R"]}, ref, tmp_path / "right.seg.dcm")
    got = array(mask_input(str(seg), ct, what="lungs", lungs=True))
    assert set(np.unique(got)) == {0, 1} and np.array_equal(got == 1, right)
    both = sitk.Cast((st["masks"]["Lung_L"] > 0) | (st["masks"]["Lung_R"] > 0), sitk.sitkUInt8)
    seg = write_seg({"Lungs": both}, ref, tmp_path / "both.seg.dcm")
    assert np.array_equal(array(mask_input(str(seg), ct, what="lungs", lungs=True)) == 1, left | right)


def test_structure_in_another_spelling_names_the_structure(p1):
    """--structure 'lung r' / 'LUNG-R' for Lung_R (LUNG1-003: 'GTV_1', 'gtv 1' for GTV-1): the error names the
    structure meant, not only the list; before, the fix said only "case does not matter"."""
    st, ct = p1
    for spelling in ("lung r", "LUNG-R", "lung.r"):
        with pytest.raises(InputError, match=rf"(?s)is not in {re.escape(str(st['rtstruct']))}; it holds: GTV, "
                                             r"Lung_R, Lung_L.*"
                                             r"did you mean 'Lung_R'\? Give the name as the RTSTRUCT "
                                             r"writes it \('Lung_R'"):
            read_rtstruct(st["rtstruct"], ct, names=[spelling])
    with pytest.raises(InputError, match="role such as role:gtv") as err:
        read_rtstruct(st["rtstruct"], ct, names=["Heart"])
    assert "did you mean" not in str(err.value)


def test_an_rtstruct_given_as_a_mask_to_a_command_without_rtstruct_says_what_that_command_takes(export, tmp_path,
                                                                                                 capsys):
    """dicom-export has no --rtstruct / --structure: its refusal of an RTSTRUCT given as --tumour named them (QA,
    LUNG1-003's RTSTRUCT as --tumour); a command with them still names them."""
    st = export["P1"]
    assert _cli("dicom-export", "--ct", st["ct"], "--tumour", st["rtstruct"], "-o", tmp_path / "dx") == 2
    err = capsys.readouterr().err
    assert "is an RTSTRUCT (contours), not a mask image" in err
    assert "give it as --rtstruct" not in err          # dicom-export has no --rtstruct
    assert "DICOM SEG" in err and "tumour.nii.gz" in err and "lungai radiomics, dose-features and demo" in err
    assert _cli("dose-features", "--dose", st["dose"], "--ct", st["ct"], "--lungs", st["rtstruct"],
                "-o", tmp_path / "out" / "y.csv") == 2
    assert "give the RTSTRUCT as --rtstruct FILE" in capsys.readouterr().err


def test_sr_radiomic_feature_codes_are_short_and_highdicom_reads_their_groups(p1, tmp_path, monkeypatch):
    """Radiomic feature names (``original_shape_Elongation``, > 16 characters) were the private code values: pydicom
    stored them as LongCodeValue, and highdicom 0.28 could not read the SR's groups (``referenced_segment``:
    "'CodedConcept' object has no attribute 'CodeValue'").  Every code value is now a CodeValue (<= 16 characters),
    the name stays in CodeMeaning, and read_sr gives back the names."""
    import highdicom as hd

    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import MeasurementGroup, read_sr, write_sr

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ref, tmp_path / "t.seg.dcm", roles={"Tumour": "gtv"})
    names = {"original_shape_Elongation": (0.8, "1"),
             "wavelet-LLH_glszm_SmallAreaLowGrayLevelEmphasis": (0.01, "1"),
             "log-sigma-10-0-mm-3D_gldm_LargeDependenceHighGrayLevelEmphasis": (5.5, "1"),
             "original_glcm_ClusterProminence": (3.25, "1")}
    too_long = "log-sigma-10-125-mm-3D_gldm_LargeDependenceHighGrayLevelEmphasisXYZ"   # > 64: the meaning is cut
    groups = [MeasurementGroup("Tumour", {"volume_ml": (12.5, "ml"), **names}, segment_number=1, role="gtv"),
              MeasurementGroup("Case", {"rp_risk": (0.31, "1"), too_long: (1.5, "1")})]
    sr_path = write_sr(ref, tmp_path / "m.sr.dcm", groups, seg=seg)
    ds = pydicom.dcmread(sr_path)

    def codes(items):
        for item in items:
            for key in ("ConceptNameCodeSequence", "ConceptCodeSequence", "MeasurementUnitsCodeSequence"):
                for code in item.get(key, []):
                    yield code
            yield from codes(item.get("MeasuredValueSequence", []))
            yield from codes(item.get("ContentSequence", []))
    all_codes = list(codes([ds]))
    assert all_codes and all("CodeValue" in c and "LongCodeValue" not in c and len(c.CodeValue) <= 16
                             for c in all_codes)
    meanings = {c.CodeMeaning for c in all_codes}
    assert set(names) <= meanings
    content = hd.sr.srread(sr_path).content
    [group] = content.get_volumetric_roi_measurement_groups()
    segment = group.referenced_segment        # what raised the AttributeError on the old SR
    assert list(segment.referenced_segment_numbers) == [1]
    assert segment.referenced_sop_instance_uid == pydicom.dcmread(seg).SOPInstanceUID
    assert {m.name.meaning for m in group.get_measurements()} >= set(names)
    assert read_sr(sr_path) == {"Tumour": {"Volume": (12.5, "ml"), **{k: (v, "1") for k, (v, _) in names.items()}},
                                "Case": {"rp_risk": (0.31, "1"), too_long[:64]: (1.5, "1")}}
    # an SR written before (the name as a Long Code Value) still reads back under the names
    monkeypatch.setattr("lungai.dicom.sr.private_code", lambda name: name)
    old = pydicom.dcmread(write_sr(ref, tmp_path / "old.sr.dcm", groups, seg=seg))
    assert any("LongCodeValue" in c for c in codes([old]))
    before = read_sr(tmp_path / "old.sr.dcm")
    assert before["Case"].pop(too_long) == (1.5, "1")      # the whole name was its (long) code value
    assert before == {"Tumour": read_sr(sr_path)["Tumour"], "Case": {"rp_risk": (0.31, "1")}}


def test_sr_names_the_radiomic_features_ibsi_defines_by_their_ibsi_codes(p1, tmp_path):
    """Every radiomic feature went into the SR under a private 99LUNGAI code (``r`` + a hash for a name over 16
    characters: original_shape_MeshVolume), so a PACS / research reader could not tell which feature a value is.
    Now a feature IBSI-1 defines, of the original image, is coded by its IBSI identifier (scheme IBSI, e.g. RNU0
    "Volume"), with lungai's name as its method (read back by read_sr); pyradiomics' Kurtosis (IBSI's + 3), a
    filtered image's feature and one IBSI-1 lacks stay private."""
    import highdicom as hd
    import pandas as pd

    from lungai.dicom.export import measurement_groups
    from lungai.dicom.seg import write_seg
    from lungai.dicom.sr import read_sr, write_sr

    st, ct = p1
    ref = ct_reference(st["ct"], image=ct)
    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ref, tmp_path / "t.seg.dcm", roles={"Tumour": "gtv"})
    features = [("original", "shape", "MeshVolume", 1200.0), ("original", "glcm", "ClusterTendency", 4.5),
                ("original", "firstorder", "Kurtosis", 5.0), ("original", "firstorder", "TotalEnergy", 9.0),
                ("wavelet-LLH", "firstorder", "Mean", -3.0), ("original", "cm", "joint_avg_3D_avg", 7.5),
                ("original", "cm", "joint_avg_3D_comb", 7.25), ("original", "stat", "kurt", 2.0)]
    table = pd.DataFrame([{"case": "P1", "segment": "tumour", "image_type": i, "feature_class": c, "feature": f,
                           "value": v} for i, c, f, v in features])
    groups = measurement_groups({"Tumour": (1, "gtv", "tumour", st["masks"]["GTV"])}, radiomics=table)
    path = write_sr(ref, tmp_path / "m.sr.dcm", groups, seg=seg)

    sr = hd.sr.srread(path)
    [group] = sr.content.get_volumetric_roi_measurement_groups()
    got = [((m.name.value, m.name.scheme_designator, m.name.meaning), m.method.meaning if m.method else None)
           for m in group.get_measurements()]
    assert (("RNU0", "IBSI", "Volume"), "original_shape_MeshVolume") in got
    assert (("DG8W", "IBSI", "Cluster tendency"), "original_glcm_ClusterTendency") in got
    assert (("IPH6", "IBSI", "Kurtosis"), "original_stat_kurt") in got
    # one IBSI feature, two aggregations: one code, told apart by the method
    assert [method for (code, scheme, _), method in got if code == "60VM" and scheme == "IBSI"] == \
        ["original_cm_joint_avg_3D_avg", "original_cm_joint_avg_3D_comb"]
    assert {meaning for (_, scheme, meaning), method in got if scheme == "99LUNGAI"} == {
        "original_firstorder_Kurtosis", "original_firstorder_TotalEnergy", "wavelet-LLH_firstorder_Mean"}
    assert len(got) == len(features) + 1       # and the volume (SCT)
    back = read_sr(path)["Tumour"]             # lungai's names come back
    assert {k: v for k, v in back.items() if k != "Volume"} == {
        f"{i}_{c}_{f}": (v, "mm3" if f == "MeshVolume" else "1") for i, c, f, v in features}


def test_seg_and_mask_messages_name_the_path_as_given(p1, tmp_path, monkeypatch):
    """QA: a SEG / mask's messages named it by its file name alone: with every patient's folder holding a
    ``seg.dcm`` (radiomics-batch, a cohort) they did not say which one, and the fix ``--tumour seg.dcm#2`` did not
    work from the user's folder.  Each names the path as given, and each fix is a command word that works as written
    (a path with a space quoted)."""
    from lungai.dicom.masks import mask_input
    from lungai.errors import InputNote
    from lungai.io import read_mask

    st, ct = p1
    gtv = array(st["masks"]["GTV"]) > 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p1").mkdir()
    _foreign_seg(st["reference"], tmp_path / "p1" / "seg.dcm", gtv[..., None], ["GTV-1"])
    with pytest.raises(InputError) as exc:
        read_mask("p1/seg.dcm#Nope", reference=ct)
    assert "p1/seg.dcm has no segment 'Nope'" in exc.value.problem and "e.g. p1/seg.dcm#GTV-1" in exc.value.fix
    _foreign_seg(st["reference"], tmp_path / "p1" / "dup.seg.dcm", np.stack([gtv, gtv], -1), ["GTV", " GTV "])
    with pytest.raises(InputError, match="^p1/dup.seg.dcm holds 2 segments labelled 'GTV'"):
        read_mask("p1/dup.seg.dcm", reference=ct)
    frac = _foreign_seg(st["reference"], tmp_path / "p1" / "frac.dcm", gtv.astype(np.float32)[..., None], ["GTV-1"],
                        fractional=True)
    with pytest.warns(InputNote, match="^p1/frac.dcm is a FRACTIONAL SEG"):
        read_mask(frac.relative_to(tmp_path), reference=ct)
    labels = gtv.astype(np.uint8)
    labels[0, 0, 0] = 3     # a second label: not one tumour mask
    for folder, word in (("p2", "p2/labels.nii.gz#1"), ("My scans", "'My scans/labels.nii.gz#1'")):
        (tmp_path / folder).mkdir()
        sitk.WriteImage(image_like(labels, ct), str(tmp_path / folder / "labels.nii.gz"))
        with pytest.raises(InputError) as exc:
            mask_input(f"{folder}/labels.nii.gz", ct, what="tumour")
        assert exc.value.problem.startswith(f"--tumour {folder}/labels.nii.gz holds 2 labels"), exc.value.problem
        assert exc.value.fix.endswith(f"e.g. --tumour {word}"), exc.value.fix
