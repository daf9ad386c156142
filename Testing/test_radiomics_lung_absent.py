"""Follow-ups of radiomics71 / lungsfollow71 (QA radiomicsfollow71).

- A lung map holding one lung (LUNG1-003's right lung alone, label 1) wrote ``right_lung`` and ``lungs`` but failed
  the run, exit 1, "segment 'left_lung' is empty (0 voxels)", fix "check the mask/label value".  By the docs the
  default segments are those the masks can build: the absent lung is now a note naming it (exit 0); a lung segment
  *named* in ``--segments`` that the map cannot build is still an error, naming the absent lung.
- A tumour given as the lungs (pyradiomics' lung2 lesion, 48 ml at -7 HU) was computed as ``lungs`` without a word:
  every lung segment built from masks is checked (:func:`lungai.lungs.check.lung_segment_notes`), real lungs stay
  note-free.
- ``radiomics --tumour GTV-1`` / ``dose-features --gtv GTV-1`` without ``--rtstruct`` said "does not exist - check
  the path": a structure's name needs ``--rtstruct``, said so (as ``lungai lungs``).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.radiomics import segments as S

ABSENT_LEFT = "holds no left lung (label 2 has no voxel)"
NOT_A_LUNG = "does not look like"


def _ct_and_lungs(spacing: float = 10.0):
    """A CT (40 x 20 x 10 voxels, ``spacing`` mm, LPS) with two air boxes of 1176 voxels each (1.2 L at 10 mm): the
    patient's right lung at small x (label 1 of the map), the left lung at large x (label 2)."""
    ct_arr = np.full((10, 20, 40), 40, np.int16)
    lab = np.zeros((10, 20, 40), np.uint8)
    lab[2:8, 3:17, 2:16] = 1
    lab[2:8, 3:17, 24:38] = 2
    ct_arr[lab > 0] = -800
    ct = sitk.GetImageFromArray(ct_arr)
    ct.SetSpacing((spacing,) * 3)
    ct.SetOrigin((-20 * spacing, -10 * spacing, 0.0))
    labels = sitk.GetImageFromArray(lab)
    labels.CopyInformation(ct)
    return ct, labels


def _only(labels: sitk.Image, value: int) -> sitk.Image:
    out = sitk.GetImageFromArray((sitk.GetArrayFromImage(labels) == value).astype(np.uint8) * value)
    out.CopyInformation(labels)
    return out


def test_one_lung_map_leaves_the_absent_side_out_with_a_note():
    ct, labels = _ct_and_lungs()
    errors: dict = {}
    notes: list = []
    segs = S.segments_from_masks(ct, lungs=_only(labels, 1), errors=errors, lung_notes=notes, lung_file="r.nii.gz")
    assert set(segs) == {"right_lung", "lungs"} and errors == {}, (set(segs), errors)
    assert len(notes) == 1 and f"the lung map r.nii.gz {ABSENT_LEFT}" in notes[0], notes
    assert "segment 'lungs' is the right lung alone" in notes[0] and "give them in one map" in notes[0], notes
    # the left lung alone (label 2): the right side absent
    notes = []
    segs = S.segments_from_masks(ct, lungs=_only(labels, 2), errors=errors, lung_notes=notes)
    assert set(segs) == {"left_lung", "lungs"} and errors == {}
    assert "holds no right lung (label 1 has no voxel)" in notes[0], notes


def test_one_lung_map_with_the_absent_side_named_in_segments_is_an_error():
    ct, labels = _ct_and_lungs()
    errors: dict = {}
    notes: list = []
    segs = S.segments_from_masks(ct, lungs=_only(labels, 1), names=["right_lung", "left_lung"], errors=errors,
                                 lung_notes=notes, lung_file="r.nii.gz")
    assert set(segs) == {"right_lung"} and set(errors) == {"left_lung"}, (set(segs), errors)
    assert f"the lung map r.nii.gz {ABSENT_LEFT}, so segment 'left_lung' is empty" in errors["left_lung"]
    assert "leave left_lung out of --segments" in errors["left_lung"]
    assert notes == []
    # radiomics --rtstruct passes the buildable segments as names: the user's --segments decide (requested)
    errors = {}
    segs = S.segments_from_masks(ct, lungs=_only(labels, 1), names=["right_lung", "left_lung", "lungs"],
                                 errors=errors, lung_notes=notes, requested=False)
    assert set(segs) == {"right_lung", "lungs"} and errors == {} and ABSENT_LEFT in notes[0]


def test_cli_one_lung_map_exit_0_and_the_note(tmp_path, capsys):
    from lungai.cli import main

    ct, labels = _ct_and_lungs()
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(_only(labels, 1), str(tmp_path / "right_only.nrrd"))
    out = tmp_path / "f.csv"
    base = ["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--lungs", str(tmp_path / "right_only.nrrd"),
            "--feature-classes", "firstorder", "--lung-spacing", "0", "-o", str(out)]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "note: the lung map" in err and ABSENT_LEFT in err, err
    assert NOT_A_LUNG not in err and "is empty (0 voxels)" not in err, err
    import pandas as pd

    assert set(pd.read_csv(out)["segment"]) == {"right_lung", "lungs"}
    assert not (tmp_path / "f_errors.csv").exists()
    # named in --segments: still an error, exit 1, naming the absent lung
    assert main(base[:-1] + [str(tmp_path / "g.csv"), "--segments", "right_lung", "left_lung"]) == 1
    table = (tmp_path / "g_errors.csv").read_text(encoding="utf-8")
    assert ABSENT_LEFT in table and "leave left_lung out of --segments" in table


def test_a_tumour_given_as_the_lungs_gets_the_plausibility_note(tmp_path, capsys):
    """A small soft-tissue blob (a lesion) given as a lung map: 'lungs' (and the lone lung) does not look like a
    lung - said for lungai radiomics --lungs, a radiomics-batch lungs cell (the case's 'lungs' notes) alike."""
    from lungai.cli import main

    ct, _ = _ct_and_lungs()
    arr = np.zeros((10, 20, 40), np.uint8)
    arr[8:10, 8:12, 6:12] = 1           # 48 voxels of soft tissue (40 HU) on the patient's right, 48 ml
    lesion = sitk.GetImageFromArray(arr)
    lesion.CopyInformation(ct)
    notes: list = []
    segs = S.segments_from_masks(ct, lungs=lesion, errors={}, lung_notes=notes, lung_file="lesion.nrrd")
    assert "lungs" in segs
    assert any(f"segment 'right_lung' {NOT_A_LUNG} a lung (48 ml, mean 40 HU" in n for n in notes), notes
    assert any("is the lung map lesion.nrrd really of the lungs" in n for n in notes), notes

    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(lesion, str(tmp_path / "lesion.nrrd"))
    assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--lungs", str(tmp_path / "lesion.nrrd"),
                 "--segments", "lungs", "--feature-classes", "firstorder", "--lung-spacing", "0",
                 "-o", str(tmp_path / "f.csv")]) == 0
    err = capsys.readouterr().err
    assert f"note: segment 'lungs' {NOT_A_LUNG} the lungs (48 ml" in err, err

    # --mask --label (what the Lung Radiomics panel runs, one segment per mask): a label named as a lung alike
    assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--mask", str(tmp_path / "lesion.nrrd"),
                 "--label", "Lung_R=1", "--feature-classes", "firstorder", "--lung-spacing", "0",
                 "-o", str(tmp_path / "m.csv")]) == 0
    err = capsys.readouterr().err
    assert f"note: segment 'Lung_R' {NOT_A_LUNG} a lung (48 ml" in err and "--label right_lung=N" in err, err

    from lungai.radiomics.batch import _segments_for

    seg_notes: dict = {}
    _segments_for({"case": "c1", "lungs": str(tmp_path / "lesion.nrrd")}, ct, None, {}, segment_notes=seg_notes)
    assert any(NOT_A_LUNG in n for n in seg_notes["lungs"]), seg_notes


def test_real_lungs_have_no_lung_note():
    ct, labels = _ct_and_lungs()
    notes: list = []
    segs = S.segments_from_masks(ct, lungs=labels, errors={}, lung_notes=notes)
    assert {"right_lung", "left_lung", "lungs"} <= set(segs) and notes == []


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["LUNG1-002", "LUNG1-003"])
def test_real_ct_lungs_stay_note_free(shared_data, case):
    from lungai.dicom.masks import lung_map_input

    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / f"{case}_ct.nii.gz"))
    notes: list = []
    errors: dict = {}
    segs = S.segments_from_masks(ct, lungs=lung_map_input(f"{d / f'{case}_labels.nii.gz'}#3,4", ct), errors=errors,
                                 lung_notes=notes)
    assert errors == {} and {"right_lung", "left_lung", "lungs"} <= set(segs) and notes == [], notes


@pytest.mark.shared_data
def test_lung1_003_right_lung_alone_is_noted_not_failed(shared_data):
    """QA radiomicsfollow71: LUNG1-003's right lung alone (label 1) failed the run on the empty left_lung."""
    d = shared_data / "nsclc_whole_ct" / "nifti"
    ct = sitk.ReadImage(str(d / "LUNG1-003_ct.nii.gz"))
    labels = sitk.ReadImage(str(d / "LUNG1-003_labels.nii.gz"))
    right = _only(labels, 3) > 0        # its right lung (label 3) alone, as label 1
    notes: list = []
    errors: dict = {}
    segs = S.segments_from_masks(ct, lungs=sitk.Cast(right, sitk.sitkUInt8), errors=errors, lung_notes=notes)
    assert set(segs) == {"right_lung", "lungs"} and errors == {}, errors
    assert len(notes) == 1 and ABSENT_LEFT in notes[0], notes


@pytest.mark.parametrize("command, option, value, fix", [
    ("radiomics", "--tumour", "GTV-1", "--rtstruct FILE|FOLDER --tumour GTV-1"),
    ("radiomics", "--lungs", "Lung-Right,Lung-Left", "--rtstruct FILE|FOLDER --lungs Lung-Right,Lung-Left"),
    ("dose-features", "--gtv", "GTV-1", "--rtstruct FILE|FOLDER --gtv GTV-1"),
    ("dose-features", "--lungs", "role:lungs", "--rtstruct FILE|FOLDER --lungs role:lungs"),
])
def test_a_structure_name_without_rtstruct_says_it_needs_rtstruct(tmp_path, capsys, command, option, value, fix):
    from lungai.cli import main

    ct = tmp_path / "ct.nrrd"
    ct.write_bytes(b"")
    lungs = ["--lungs", str(ct)] if (command, option) == ("dose-features", "--gtv") else []   # a lung mask given
    args = ([command, "--image", str(ct)] if command == "radiomics" else
            [command, "--ct", str(ct), "--dose", str(ct)]) + lungs + [option, value, "-o", str(tmp_path / "f.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{option} {value!r} is not a file, and a structure's name (or role:ROLE) needs --rtstruct" in err, err
    assert fix in err and "does not exist" not in err, err


def test_slicer_lung_segment_that_looks_like_no_lung_is_said(mrml_scene, small_phantom):
    """The Lung Radiomics logic: a tumour ticked as the right lung is said as lungai radiomics --lungs says it (an
    InputNote warning naming the segment as in the scene); the phantom's real lungs are not."""
    import warnings

    from lungai import mrml
    from lungai.errors import InputNote
    from lungai.scene.radiomics import radiomics_table
    from lungai.synthetic import labels as L

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lungs = L.lung_truth(arr, "right")

    def mask(a):
        img = sitk.GetImageFromArray(a.astype(np.uint8))
        img.CopyInformation(ct)
        return img

    vol = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, mask(lungs["right"]), "Right lung", reference_volume_node=vol)
    mrml.mask_to_segment(mrml_scene, mask(lungs["left"]), "Left lung", seg_node=seg)
    mrml.mask_to_segment(mrml_scene, mask(L.tumour_mask(arr)), "Lung_R", seg_node=seg)   # the tumour, named a lung
    for names, said in ((["Right lung", "Left lung"], None), (["Lung_R"], "segment 'Lung_R' does not look like a lung")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            radiomics_table(mrml_scene, vol, seg, segments=names, feature_classes=["firstorder"])
        notes = [str(w.message) for w in caught if issubclass(w.category, InputNote) and NOT_A_LUNG in str(w.message)]
        if said is None:
            assert notes == [], notes
        else:
            assert len(notes) == 1 and said in notes[0] and "is it really a lung segment" in notes[0], notes


# --- QA notesfollow71: the lung notes said and recorded whatever segments are asked --------------------------------

def test_batch_lung_notes_recorded_when_segments_leave_lungs_out(tmp_path):
    """radiomics-batch put the lung notes in the case's 'lungs' notes: with --segments tumour right_lung ('lungs'
    left out) a lesion given as the lungs was computed as right_lung and its note recorded nowhere (no _settings.csv
    notes, no summary line).  Now in the notes of the lung segment computed."""
    from lungai.radiomics.batch import run_batch

    ct, _ = _ct_and_lungs()
    arr = np.zeros((10, 20, 40), np.uint8)
    arr[8:10, 8:12, 6:12] = 1           # 48 ml of soft tissue on the patient's right, given as the lungs
    lesion = sitk.GetImageFromArray(arr)
    lesion.CopyInformation(ct)
    tumour = sitk.GetImageFromArray((arr > 0).astype(np.uint8))
    tumour.CopyInformation(ct)
    for name, img in (("ct.nrrd", ct), ("lesion.nrrd", lesion), ("t.nrrd", tumour)):
        sitk.WriteImage(img, str(tmp_path / name))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"case,image,tumour,lungs\nc1,{tmp_path / 'ct.nrrd'},{tmp_path / 't.nrrd'},"
                        f"{tmp_path / 'lesion.nrrd'}\n", encoding="utf-8")
    from lungai.radiomics import load_params

    summary = run_batch(str(manifest), str(tmp_path / "out.csv"),
                        load_params("default", feature_classes=["firstorder"], lung_spacing_mm=0),
                        segments=["tumour", "right_lung"], workers=0)
    said = "\n".join(summary.nan_notes)
    assert f"segment 'right_lung' {NOT_A_LUNG} a lung (48 ml" in said, summary.text()
    import pandas as pd

    settings = pd.read_csv(tmp_path / "out_settings.csv")
    notes = settings.set_index("segment")["notes"].fillna("")
    assert NOT_A_LUNG in notes["right_lung"], notes


def test_one_lung_map_noted_for_whole_lung_segments_asked():
    """--segments lungs (or lungs_minus_tumour) of a one-lung map: 'lungs' is one lung alone, said (before: no word;
    the note only came when the absent side's segment was a default one left out)."""
    ct, labels = _ct_and_lungs()
    notes: list = []
    errors: dict = {}
    segs = S.segments_from_masks(ct, lungs=_only(labels, 1), names=["lungs"], errors=errors, lung_notes=notes,
                                 lung_file="r.nii.gz")
    assert set(segs) == {"lungs"} and errors == {}
    assert len(notes) == 1 and ABSENT_LEFT in notes[0] and "segment 'lungs' is the right lung alone" in notes[0]
    assert "'left_lung' is not computed" not in notes[0], notes
    notes = []
    segs = S.segments_from_masks(ct, tumour=_only(labels, 1), lungs=_only(labels, 1), names=["right_lung"],
                                 errors=errors, lung_notes=notes)
    assert set(segs) == {"right_lung"} and notes == [], notes      # the lung asked is whole: nothing to say
