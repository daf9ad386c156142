"""Pairing images with masks and the patient-level split."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.seg.dataset import Case, pair_files, patient_of, split_patients


def _touch(d, names):
    d.mkdir(parents=True, exist_ok=True)
    img = sitk.Image(4, 4, 4, sitk.sitkInt16)
    for n in names:
        sitk.WriteImage(img, str(d / n))


def test_pairs_and_patients(tmp_path):
    _touch(tmp_path / "i", ["A_1.nii.gz", "A_2.nii.gz", "B_1.nii.gz", "C_only.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "A_2.nii.gz", "B_1.nii.gz"])
    cases = pair_files(tmp_path / "i", tmp_path / "m", allow_unpaired=True)   # C_only has no mask
    assert [c.case_id for c in cases] == ["A_1", "A_2", "B_1"]
    assert [c.patient for c in cases] == ["A", "A", "B"]
    assert patient_of("LIDC-IDRI-0001_R_1") == "LIDC-IDRI-0001"
    (tmp_path / "p.csv").write_text("case,patient\nA_1,X\nA_2,Y\nB_1,X\n", encoding="utf-8")
    (tmp_path / "i" / "C_only.nii.gz").unlink()
    assert [c.patient for c in pair_files(tmp_path / "i", tmp_path / "m", tmp_path / "p.csv")] == ["X", "Y", "X"]
    with pytest.raises(InputError, match="does not exist"):
        pair_files(tmp_path / "nope", tmp_path / "m")


def test_unpaired_files_are_named_not_dropped(tmp_path):
    _touch(tmp_path / "i", ["A_1.nii.gz", "A_2.nii.gz", "B_1.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "A_2_renamed.nii.gz", "B_1.nii.gz"])
    with pytest.raises(InputError, match="A_2.nii.gz \\(no mask\\).*A_2_renamed.nii.gz \\(no image\\)") as e:
        pair_files(tmp_path / "i", tmp_path / "m")
    assert "same file name" in e.value.fix
    _touch(tmp_path / "i", [f"Z_{k:02d}.nii.gz" for k in range(12)])       # many: the first 10 and a count
    with pytest.raises(InputError, match="^14 files.*and 4 more") as e:
        pair_files(tmp_path / "i", tmp_path / "m")
    assert "Z_08" in e.value.problem and "Z_09" not in e.value.problem


def test_split_keeps_patients_whole():
    cases = [Case(f"P{p}_{k}", f"P{p}") for p in range(20) for k in range(3)]
    train, val = split_patients(cases, 0.25, seed=3)
    assert {c.patient for c in train}.isdisjoint({c.patient for c in val})
    assert len({c.patient for c in val}) == 5 and len(train) + len(val) == 60
    again = split_patients(cases, 0.25, seed=3)[1]
    assert [c.case_id for c in again] == [c.case_id for c in val]
    with pytest.raises(InputError, match="one patient"):
        split_patients([Case("A_1", "A"), Case("A_2", "A")], 0.2, 0)


def test_a_one_patient_dataset_is_refused_with_the_patients_csv_row_to_write(tmp_path):
    """QA trainfollow71: the MSD layout (lung_001 ... lung_014: every file patient 'lung') was refused as one patient
    with the fix "(names <patient>_..., or a --patients CSV)", while the note printed before it gave the CSV's columns
    and a row: the error gives the same fix, in the note's words (one helper)."""
    from lungai.seg.dataset import patient_names_note

    _touch(tmp_path / "i", [f"lung_{k:03d}.nii.gz" for k in range(1, 15)])
    _touch(tmp_path / "m", [f"lung_{k:03d}.nii.gz" for k in range(1, 15)])
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    with pytest.raises(InputError, match="all 14 cases belong to one patient") as e:
        split_patients(cases, 0.2, 0)
    assert "--patients CSV with columns case,patient (e.g. lung_001,<patient>)" in e.value.fix, e.value.fix
    note = patient_names_note(cases)
    assert "--patients CSV with columns case,patient (e.g. lung_001,<patient>)" in note, note


def test_a_patient_written_in_two_letter_cases_is_refused_not_split_as_two(tmp_path):
    """QA: P01_1 and p01_2 were two patients: the split could put one patient's crops into training and
    validation (seed 4: P01_0 validated, p01_1 trained on).  Refused now, naming both spellings (nothing joined by
    guessing); one spelling splits as before."""
    cases = [Case(f"P{p:02d}_{k}", f"P{p:02d}") for p in range(8) for k in range(2)]
    before = split_patients(cases, 0.25, seed=4)
    renamed = [Case("p01_1", "p01") if c.case_id == "P01_1" else c for c in cases]
    with pytest.raises(InputError, match=r"1 patient is written in more than one letter case: "
                                         r"'P01' \(e.g. P01_0\) / 'p01' \(e.g. p01_1\)") as e:
        split_patients(renamed, 0.25, seed=4)
    assert "--patients" in e.value.fix
    assert [[c.case_id for c in part] for part in split_patients(cases, 0.25, seed=4)] == \
        [[c.case_id for c in part] for part in before]
    # from the files, as train-seg reads them
    for d in ("i", "m"):
        _touch(tmp_path / d, ["P01_1.nii.gz", "p01_2.nii.gz", "P02_1.nii.gz", "P03_1.nii.gz"])
    with pytest.raises(InputError, match="'P01' .* / 'p01'"):
        split_patients(pair_files(tmp_path / "i", tmp_path / "m"), 0.34, seed=0)


def test_synthetic_lung_crops_are_mostly_tumour_free_and_deterministic():
    from lungai.seg.dataset import synthetic_cases

    kw = dict(shape=(96, 96, 40), spacing=(3.5, 3.5, 5.0))
    cases = synthetic_cases(6, 900, **kw)
    lung = [c for c in cases if c.case_id.endswith("_lung")]
    tum = [c for c in cases if c.case_id.endswith("_0")]
    assert len(lung) == len(tum) >= 5
    assert all(sitk.GetArrayViewFromImage(c.mask).any() for c in tum)
    free = [not sitk.GetArrayViewFromImage(c.mask).any() for c in lung]
    assert sum(free) >= len(lung) // 2          # most lung crops hold no tumour
    for c in lung:                               # same patient as its tumour crop: the split keeps them together
        assert c.patient == c.case_id.rsplit("_", 1)[0]
    again = synthetic_cases(6, 900, **kw)
    assert [c.case_id for c in again] == [c.case_id for c in cases]
    assert all(np.array_equal(sitk.GetArrayViewFromImage(a.image), sitk.GetArrayViewFromImage(b.image))
               for a, b in zip(again, cases))
    only_tumour = [c.case_id for c in synthetic_cases(3, 900, lung_crops=False, **kw)]
    assert only_tumour == [c.case_id for c in tum if int(c.patient.split("-")[1]) < 903]


def test_whole_chests_train_on_the_lung_box_with_tumour_and_hard_negative_patches():
    """Whole CTs keep automatic mode's region; patches are centred on the tumour or on bright,
    non-tumour voxels (vessels inside the lungs, chest wall / mediastinal border), deterministically."""
    from lungai.seg import preprocess as pp
    from lungai.seg.augment import CONTEXT_POSITIVE, context_patch
    from lungai.seg.config import SegConfig
    from lungai.seg.dataset import HARD_NEGATIVE_HU, to_arrays, whole_chest_cases

    cfg = SegConfig(arch="unet")
    kw = dict(shape=(160, 160, 64), spacing=(2.0, 2.0, 4.0))
    case = whole_chest_cases(1, 910, **kw)[0]
    assert case.meta["whole_chest"] and not pp.is_crop(case.image) and case.patient == "chest-910"
    d = to_arrays(case, cfg)
    img, lab = d["image"][0], d["label"][0]
    box = pp.box_from_lungs(case.image, cfg.roi_margin_mm)
    assert img.shape == pp.to_model(pp.crop(case.image, box), cfg)[0].shape      # automatic mode's region
    assert lab.sum() > 0 and len(d["tumour_idx"]) == min(lab.sum(), 50_000)
    hard = d["hard_idx"]
    lo, hi = cfg.hu_window
    assert len(hard) > 1000
    assert np.all(img[tuple(hard.T)] > (HARD_NEGATIVE_HU - lo) / (hi - lo)) and not lab[tuple(hard.T)].any()
    model_img = pp.to_model(pp.crop(case.image, box), cfg)[1]
    lungs = pp.mask_on(box.lungs, model_img)
    in_lungs = lungs[tuple(hard.T)].mean()
    assert 0.3 < in_lungs < 0.7                  # vessels are not drowned by the chest wall
    rng = np.random.default_rng(0)
    patches = [context_patch(d, cfg.patch_zyx, rng) for _ in range(60)]
    assert all(p["image"].shape == (1,) + cfg.patch_zyx for p in patches)
    with_tumour = np.mean([p["label"].any() for p in patches])
    assert CONTEXT_POSITIVE - 0.15 < with_tumour < 0.75       # tumour-centred, plus hard negatives near it
    again = [context_patch(d, cfg.patch_zyx, np.random.default_rng(0)) for _ in range(1)]
    assert np.array_equal(again[0]["image"], patches[0]["image"])
    assert np.array_equal(to_arrays(whole_chest_cases(1, 910, **kw)[0], cfg)["hard_idx"], hard)


def test_two_files_of_one_case_name_are_refused(tmp_path):
    """A.nii.gz and A.nrrd in one folder: which is meant is not clear - refused naming both (not one dropped)."""
    _touch(tmp_path / "i", ["A_1.nii.gz", "A_1.nrrd", "B_1.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "B_1.nii.gz"])
    with pytest.raises(InputError, match="--images folder .* A_1.nii.gz and A_1.nrrd") as e:
        pair_files(tmp_path / "i", tmp_path / "m")
    assert "one file per case name" in e.value.fix
    (tmp_path / "i" / "A_1.nrrd").unlink()
    _touch(tmp_path / "m", ["B_1.mha"])
    with pytest.raises(InputError, match="--masks folder .* B_1.mha and B_1.nii.gz"):
        pair_files(tmp_path / "i", tmp_path / "m", allow_unpaired=True)


def test_patients_csv_bom_semicolons_and_repeated_cases(tmp_path):
    """Excel's 'CSV UTF-8' (a BOM) is read; a '|' table is named as such; a case listed twice is refused."""
    _touch(tmp_path / "i", ["A_1.nii.gz", "A_2.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "A_2.nii.gz"])
    csv = tmp_path / "p.csv"
    csv.write_bytes("case,patient\r\nA_1,X\r\nA_2,Y\r\n".encode("utf-8-sig"))
    assert [c.patient for c in pair_files(tmp_path / "i", tmp_path / "m", csv)] == ["X", "Y"]
    csv.write_text("case|patient\nA_1|X\nA_2|Y\n", encoding="utf-8")
    with pytest.raises(InputError, match="not comma-separated.*vertical bar"):
        pair_files(tmp_path / "i", tmp_path / "m", csv)
    csv.write_text("case,patient\nA_1,X\nA_2,Y\nA_1,Z\n", encoding="utf-8")
    with pytest.raises(InputError, match="lists 1 case more than once: \\['A_1'\\]"):
        pair_files(tmp_path / "i", tmp_path / "m", csv)
    csv.write_text("image,who\nA_1,X\n", encoding="utf-8")
    with pytest.raises(InputError, match="needs the columns 'case' and 'patient' \\(it has: image, who\\)"):
        pair_files(tmp_path / "i", tmp_path / "m", csv)


def test_patients_csv_of_a_decimal_comma_spreadsheet_is_read(tmp_path):
    """QA idcol60: the --patients CSV had a pandas reader of its own that refused a ';' table (what Excel writes as
    'CSV (comma delimited)' in a German / French / Dutch locale) with "Save As 'CSV (comma delimited)'" - a fix that
    Excel cannot follow there - where every other user table of lungai reads it (read_table_checked).  Now it is read
    by that one reader, with its note; a missing file is refused as every table is."""
    from lungai.errors import InputNote

    _touch(tmp_path / "i", ["A_1.nii.gz", "A_2.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "A_2.nii.gz"])
    csv = tmp_path / "p.csv"
    csv.write_bytes("case;patient\r\nA_1;X\r\nA_2;0012\r\n".encode("utf-8-sig"))
    with pytest.warns(InputNote, match="--patients p.csv is read as semicolon-separated"):
        cases = pair_files(tmp_path / "i", tmp_path / "m", csv)
    assert [(c.case_id, c.patient) for c in cases] == [("A_1", "X"), ("A_2", "0012")]      # ids kept as written
    with pytest.raises(InputError, match="--patients .*nope.csv does not exist"):
        pair_files(tmp_path / "i", tmp_path / "m", tmp_path / "nope.csv")


def test_one_file_per_patient_note():
    from lungai.seg.dataset import one_patient_per_file_note

    own = [Case(f"LIDC-IDRI-0003-R-{k}", f"LIDC-IDRI-0003-R-{k}", image_path="x") for k in range(3)]
    assert "one file per patient" in one_patient_per_file_note(own)
    assert one_patient_per_file_note(own, "patients.csv") is None and one_patient_per_file_note(own[:1]) is None
    assert one_patient_per_file_note([Case("A_1", "A", image_path="x"), Case("A_2", "A", image_path="x")]) is None
    # names of distinct patients (<patient>_<n>, one file each, as LIDC-IDRI-0001_R_1 ...): the split is by patient as
    # named, so no note claiming "no '_' in the names"
    named = [Case(f"LIDC-IDRI-000{k}_R_1", f"LIDC-IDRI-000{k}", image_path="x") for k in range(1, 7)]
    assert one_patient_per_file_note(named) is None


def test_all_masks_empty_is_refused(tmp_path):
    """No mask holds a tumour voxel: nothing to learn a tumour from (unless synthetic / implanted tumours)."""
    from lungai.seg.dataset import check_masks

    _touch(tmp_path / "i", ["A_1.nii.gz", "B_1.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "B_1.nii.gz"])               # all-zero masks
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    with pytest.raises(InputError, match="none of the 2 masks holds a tumour voxel"):
        check_masks(cases)
    check_masks(cases, other_tumours=True)
    m = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    m[1, 1, 1] = 1
    sitk.WriteImage(m, str(tmp_path / "m" / "B_1.nii.gz"))
    check_masks(cases)                                                  # one tumour-free case is fine
    _touch(tmp_path / "i1", ["A_1.nii.gz"])
    _touch(tmp_path / "m1", ["A_1.nii.gz"])
    with pytest.raises(InputError, match=r"^the one mask holds no tumour voxel \(it is empty\): a model trained on it "):
        check_masks(pair_files(tmp_path / "i1", tmp_path / "m1"))       # not "none of the 1 masks"


def test_all_masks_empty_with_label_says_they_are_empty(tmp_path):
    """QA: with --label N and every mask empty the hint was "give the tumour's label with --label N": the masks are
    said to be empty first (train-seg's check; eval-seg's check_label_found the same), with no label to choose."""
    from lungai.seg.dataset import check_label_found, check_masks

    _touch(tmp_path / "i", ["A_1.nii.gz", "B_1.nii.gz"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "B_1.nii.gz"])               # all-zero masks
    with pytest.raises(InputError, match="none of the 2 masks holds a tumour voxel") as exc:
        check_masks(pair_files(tmp_path / "i", tmp_path / "m", label=1), label=1)
    assert "--label" not in exc.value.fix
    # with --synthetic / --implant tumours: tumour-free masks, accepted as without --label (no other label to give)
    check_masks(pair_files(tmp_path / "i", tmp_path / "m", label=1), label=1, other_tumours=True)
    with pytest.raises(InputError, match="all 3 masks are empty"):
        check_label_found(2, set(), 3)
    with pytest.raises(InputError, match=r"no mask holds label 2 \(their labels: 1\)") as exc:
        check_label_found(2, {1}, 3)                                    # a label to choose: named
    assert "--label 1" in exc.value.fix


def test_label_in_no_mask_with_other_tumours_is_tumour_free(tmp_path):
    """QA: --label 1 with --synthetic / --implant refused all-empty or lungs-only masks ("their labels: 3", fix
    "e.g. --label 3": the lungs trained as tumour) though without --label such masks are accepted as tumour-free:
    with other tumour sources a label in no mask makes every mask tumour-free, never another label suggested."""
    from lungai.seg.dataset import check_masks, tumour_free_note

    names = ["P00_1.nii.gz", "P01_1.nii.gz"]
    _touch(tmp_path / "i", names)
    _touch(tmp_path / "m", names)
    m = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    sitk.WriteImage(m, str(tmp_path / "m" / names[0]))                  # empty
    m[2, 2, 2] = 3
    sitk.WriteImage(m, str(tmp_path / "m" / names[1]))                  # the lungs alone
    cases = pair_files(tmp_path / "i", tmp_path / "m", label=1)
    with pytest.raises(InputError, match="no mask holds label 1"):
        check_masks(cases, label=1)
    check_masks(cases, label=1, other_tumours=True)
    assert all(c.meta["tumour_free"] for c in cases)
    assert tumour_free_note(cases).startswith("all 2 masks hold no tumour (tumour-free cases)")
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkUInt8), str(tmp_path / "m" / names[1]))
    check_masks(pair_files(tmp_path / "i", tmp_path / "m", label=1), label=1, other_tumours=True)   # all empty


def test_implant_background_cts_are_fingerprinted(tmp_path):
    """QA: the --implant-into background CTs (always trained on) were not fingerprinted: a changed one resumed."""
    from lungai.seg.settings import IMPLANT_CONTENT, check_settings, data_settings, record_settings

    ct = tmp_path / "bg_1.nii.gz"
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(ct))
    src = {"implant": 2, "implant_into": str(ct)}
    parts = {"train_cases": ["bg_implant-1"], "val_cases": [], "test_cases": []}
    first = data_settings(src, parts)
    assert set(first[IMPLANT_CONTENT]) == {"bg_1.nii.gz"}
    assert IMPLANT_CONTENT not in data_settings(src, parts, fingerprints=False)
    record_settings(tmp_path / "run" / "checkpoints", {"arch": "unet", "channels": [4], "patch_size": [8], "seed": 0,
                                                       **first})
    # a run that has trained an epoch (one stopped before it starts anew: lungai.seg.settings.untrained_run)
    (tmp_path / "run" / "checkpoints" / "member_0.state.json").write_text('{"epoch": 1}', encoding="utf-8")
    check_settings(tmp_path / "run" / "checkpoints", first)
    img = sitk.Image(4, 4, 4, sitk.sitkInt16)
    img[1, 1, 1] = 100
    sitk.WriteImage(img, str(ct))
    with pytest.raises(InputError, match=r"--implant-into bg_1.nii.gz: image"):
        check_settings(tmp_path / "run" / "checkpoints", data_settings(src, parts))


def test_tumour_free_masks_are_counted_and_named(tmp_path):
    """QA: train-seg never said how many masks hold no tumour (of the --label): "K of M masks hold no tumour
    (tumour-free cases): names" (the names capped)."""
    from lungai.seg.dataset import TUMOUR_FREE_SHOWN, check_masks, tumour_free_note

    names = [f"P{k:02d}_1.nii.gz" for k in range(TUMOUR_FREE_SHOWN + 3)]
    _touch(tmp_path / "i", names)
    _touch(tmp_path / "m", names)
    m = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    m[1, 1, 1] = 1
    m[2, 2, 2] = 3
    sitk.WriteImage(m, str(tmp_path / "m" / names[0]))                  # labels 1 and 3
    m[1, 1, 1] = 0
    sitk.WriteImage(m, str(tmp_path / "m" / names[1]))                  # label 3 alone: tumour-free with --label 1
    cases = pair_files(tmp_path / "i", tmp_path / "m", label=1)
    check_masks(cases, label=1)
    note = tumour_free_note(cases)
    n = len(names) - 1
    assert note.startswith(f"{n} of the {len(names)} masks hold no tumour (tumour-free cases): {names[1]}, ")
    assert "and 2 more" in note and "(--label 1)" in note and names[0] not in note
    assert [c.meta["tumour_free"] for c in cases[:2]] == [False, True]
    for k in range(1, len(names)):
        sitk.WriteImage(sitk.ReadImage(str(tmp_path / "m" / names[0])), str(tmp_path / "m" / names[k]))
    cases = pair_files(tmp_path / "i", tmp_path / "m", label=1)
    check_masks(cases, label=1)
    assert tumour_free_note(cases) is None


def test_a_dicom_export_some_levels_deep_is_named(tmp_path):
    """--images / --masks given a DICOM export's root (patient / study / series folders, 3 levels deep): said to
    hold DICOM files, not "no image ... has a mask of the same name"; the search stops 4 levels down."""
    from io_helpers import write_dicom_series

    img = sitk.Image(4, 4, 2, sitk.sitkInt16)
    write_dicom_series(img, tmp_path / "dc3" / "LUNG1-003" / "study1" / "CT", "1.2.826.0.1.3680043.8.498.1")
    _touch(tmp_path / "m", ["A_1.nii.gz"])
    with pytest.raises(InputError, match="--images folder .*dc3 holds DICOM files"):
        pair_files(tmp_path / "dc3", tmp_path / "m")
    write_dicom_series(img, tmp_path / "deep" / "a" / "b" / "c" / "d" / "CT", "1.2.826.0.1.3680043.8.498.2")
    with pytest.raises(InputError, match="--images folder .*deep holds no image files .*it holds 1 subfolder "
                                         "without image files"):
        pair_files(tmp_path / "deep", tmp_path / "m")


def test_no_pairs_names_files_and_the_rename_needed(tmp_path):
    """QA: "no image in I has a mask of the same name in M" named no file and misled for common layouts: a folder of
    per-patient subfolders (not searched), <case>_image / <case>_mask, Slicer's P.nrrd + P.seg.nrrd."""
    _touch(tmp_path / "nested" / "P01", ["P01.nii.gz"])
    _touch(tmp_path / "nested" / "P02", ["P02.nii.gz"])
    _touch(tmp_path / "m", ["P01.nii.gz"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "nested", tmp_path / "m")
    assert "holds no image files" in err.value.problem and "subfolders are not searched" in err.value.problem
    assert "P01/, P02/" in err.value.problem
    _touch(tmp_path / "i1", ["A_image.nii.gz", "B_image.nii.gz", "C_image.nii.gz"])
    _touch(tmp_path / "m1", ["A_mask.nii.gz", "B_mask.nii.gz", "C_mask.nii.gz"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i1", tmp_path / "m1")
    assert "images e.g. A_image.nii.gz, B_image.nii.gz; masks e.g. A_mask.nii.gz, B_mask.nii.gz" in err.value.problem
    assert "end in '_image' and the mask names in '_mask'" in err.value.problem
    assert "masks/A_mask.nii.gz to masks/A_image.nii.gz" in err.value.fix
    _touch(tmp_path / "i2", ["P1.nrrd", "P2.nrrd"])
    _touch(tmp_path / "m2", ["P1.seg.nrrd", "P2.seg.nrrd"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i2", tmp_path / "m2")
    assert "the mask names add '.seg' to the image names" in err.value.problem
    assert "masks/P1.seg.nrrd to masks/P1.nrrd" in err.value.fix
    _touch(tmp_path / "m3", ["Q1.nii.gz"])
    with pytest.raises(InputError) as err:            # nothing in common: the names shown, no rename guessed
        pair_files(tmp_path / "i2", tmp_path / "m3")
    assert "masks e.g. Q1.nii.gz" in err.value.problem and "rename" not in err.value.fix


def _chest_label_map(tmp_path):
    """A whole synthetic chest written as files, its label map: 1 = the tumour, 2 = soft tissue in the mediastinum /
    chest wall (another GTV or nodes), 3 = the lungs (air-filled)."""
    from lungai.synthetic import labels, make_phantom, random_spec

    kw = dict(shape=(160, 160, 64), spacing=(2.0, 2.0, 4.0))
    ph = make_phantom(random_spec(910, diameter_range=(6.0, 80.0), **kw), seed=910)    # whole_chest_cases' chest
    lab = sitk.GetArrayFromImage(ph.labels)
    tum = labels.tumour_mask(lab)
    ct = sitk.GetArrayViewFromImage(ph.ct)
    out = np.zeros(ct.shape, np.uint8)
    out[np.isin(lab, (labels.RIGHT_LUNG, labels.LEFT_LUNG)) & ~tum] = 3
    out[(lab == labels.MEDIASTINUM) & ~tum] = 2
    out[tum] = 1
    mask = sitk.GetImageFromArray(out)
    mask.CopyInformation(ph.ct)
    for d in ("i", "m"):
        (tmp_path / d).mkdir(parents=True)
    sitk.WriteImage(ph.ct, str(tmp_path / "i" / "W_0.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "m" / "W_0.nii.gz"))
    return tmp_path / "i", tmp_path / "m"


class _Said:
    """A progress recording its updates; every timed sub-step shown (tick_interval: a tenth of a second)."""

    tick_interval = 0.1

    def __init__(self):
        self.updates = []

    def update(self, n=1, message=None):
        self.updates.append((n, message))


def test_a_whole_ct_of_the_training_data_is_loaded_in_sub_steps(tmp_path):
    """QA train68: a whole CT in train-seg's data (LUNG1-002 with its GTV label map) was read, its other labels
    measured, its lungs found and put on the model grid behind one step of "load training data": the bar stood
    19-27 s on it ("load training data: 10/13 [00:19] LUNG1-002_ct" with no line before).  Each sub-step is now said
    (a message-only update naming the case, the step count unchanged), a long one with its seconds; a crop says none
    (a line each in a log); the arrays are the ones loaded without a progress."""
    from scipy import ndimage

    from lungai.seg import dataset
    from lungai.seg.config import SegConfig
    from lungai.seg.dataset import load_checked, to_arrays

    images, masks = _chest_label_map(tmp_path)
    ct, lab = sitk.ReadImage(str(images / "W_0.nii.gz")), sitk.ReadImage(str(masks / "W_0.nii.gz"))
    for name, image in (("C_0.nii.gz", ct), ("C_1.nii.gz", lab)):     # a small crop of it, as a crop case
        crop = sitk.RegionOfInterest(image, [24, 24, 8], [60, 60, 28])
        sitk.WriteImage(crop, str((images if name == "C_0.nii.gz" else masks) / "C_0.nii.gz"))
    cases = {c.case_id: c for c in pair_files(images, masks, label=1)}
    cfg = SegConfig(arch="unet", spacing=(2.0, 2.0, 4.0))
    bar = _Said()
    train, val = load_checked([[cases["W_0"]], [cases["C_0"]], []], cfg, bar)
    assert sum(n for n, _ in bar.updates) == 2 and [m for n, m in bar.updates if n] == ["W_0", "C_0"]
    said = [m for n, m in bar.updates if n == 0]
    assert said and all(m.startswith("W_0: ") for m in said), said           # the crop: no sub-step lines
    steps = ["reading the CT and mask", "the mask's other labels (their mean CT value)", "checking the tumour mask",
             "finding the lungs 0/7", "finding the lungs 7/7", "resampling to the model grid",
             "the tumour mask on the model grid", "the lungs' region on the model grid",
             "hard-negative and tumour sampling points"]
    at = [next((i for i, m in enumerate(said) if m.startswith(f"W_0: {step}")), None) for step in steps]
    assert None not in at and at == sorted(at), list(zip(steps, at, said))
    again = to_arrays(cases["W_0"], cfg)              # no progress: the same arrays
    assert all(np.array_equal(train[0][k], again[k]) for k in ("image", "label", "hard_idx", "tumour_idx"))
    assert np.array_equal(val[0]["image"], to_arrays(cases["C_0"], cfg)["image"])
    # the other labels' mean CT values (one bincount pass now): ndimage.mean's, the same labels kept out
    hu, m = sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(lab)
    soft = [v for v, mean in zip((2, 3), ndimage.mean(hu, m, index=[2, 3]))
            if mean > dataset.OTHER_LABEL_SOFT_TISSUE_HU]
    assert soft == [2]
    kept_out = dataset._soft_tissue_other_labels(ct, lab, 1)
    assert np.array_equal(sitk.GetArrayFromImage(kept_out), np.isin(m, soft).astype(np.uint8))


def test_eval_seg_says_a_whole_cts_reading_and_checks(tmp_path, monkeypatch):
    """QA train68: eval-seg on LUNG1-003 stood 5 s on "checking inputs: 0/1" (the CT read, its labels and tumour
    checked) and 4 s on the case's name before its segmentation said a step (the CT read again).  A whole CT's
    sub-steps are said (message-only updates, the step count unchanged); a crop's none (a line each in a log)."""
    from lungai.seg import infer
    from lungai.seg.evaluate import check_cases, evaluate_case

    images, masks = _chest_label_map(tmp_path)
    for folder in (images, masks):                      # a small crop of it, as a crop case
        sitk.WriteImage(sitk.RegionOfInterest(sitk.ReadImage(str(folder / "W_0.nii.gz")), [24, 24, 8], [60, 60, 28]),
                        str(folder / "C_0.nii.gz"))
    cases = pair_files(images, masks)                   # as eval-seg pairs them (--label given to the check)
    bar = _Said()
    assert "also hold labels 2" in check_cases(cases, label=1, progress=bar)
    assert sum(n for n, _ in bar.updates) == 2 and [m for n, m in bar.updates if n] == ["C_0", "W_0"]
    said = [m for n, m in bar.updates if n == 0]
    steps = ["reading the CT and mask", "checking the mask's labels", "checking the tumour mask"]
    at = [next((i for i, m in enumerate(said) if m.startswith(f"W_0: {step}")), None) for step in steps]
    assert None not in at and at == sorted(at) and all(m.startswith("W_0: ") for m in said), said

    class Segmented(Exception):
        pass

    def segment_tumour(*args, progress=None, **kwargs):       # where the segmentation starts: what was said before
        raise Segmented(list(bar.updates))

    monkeypatch.setattr(infer, "segment_tumour", segment_tumour)
    for case, said_before in ((cases[1], ["reading the CT and mask"]), (cases[0], [])):
        bar = _Said()
        with pytest.raises(Segmented) as stop:
            evaluate_case(None, case, label=1, progress=bar)
        assert [m for n, m in stop.value.args[0] if n == 0][:1] == said_before, stop.value.args[0]


def test_label_hard_negatives_stay_out_of_other_soft_tissue_labels(tmp_path):
    """QA: with --label 1 a planning label map's label 2 (GTV-2 / nodes) was background, and hard-negative centres
    were drawn inside it (25 of 50,000 on LUNG1-003).  Other labels of soft tissue are kept out of the hard
    negatives (and 2 voxels around them); an air-filled one (the lungs) is not: its vessels stay hard negatives.
    check_masks names the other labels; the case is a whole CT by its file header (not its voxels)."""
    from lungai.seg import preprocess as pp
    from lungai.seg.config import SegConfig
    from lungai.seg.dataset import check_masks, is_whole_ct, load_images, to_arrays

    images, masks = _chest_label_map(tmp_path)
    case = pair_files(images, masks, label=1)[0]
    assert is_whole_ct(case) and case.image is None
    cfg = SegConfig(arch="unet", spacing=(2.0, 2.0, 4.0))
    d = to_arrays(case, cfg)
    img, mask = load_images(case)
    raw = sitk.ReadImage(str(case.mask_path))
    box = pp.box_from_lungs(img, cfg.roi_margin_mm)
    model_img = pp.to_model(pp.crop(img, box), cfg)[1]
    on_model = {v: pp.mask_to_model(pp.crop(sitk.Cast(raw == v, sitk.sitkUInt8), box), model_img) for v in (2, 3)}
    hard = tuple(d["hard_idx"].T)
    assert on_model[2].sum() > 1000 and not on_model[2][hard].any()         # none inside the other GTV / nodes
    assert on_model[3][hard].sum() > 1000                                   # the lungs' vessels: still there
    assert np.array_equal(d["label"][0], pp.mask_to_model(pp.crop(mask, box), model_img))   # label 1 alone
    note = check_masks([case], label=1)
    assert "also hold labels 2 (in the 1 mask), 3 (in the 1 mask)" in note and "background" in note



def test_site_prefix_grouping_is_warned(tmp_path):
    """QA D1: files named <site>_<patient>_ct were grouped by the site (the text before the first '_') with no
    word: now a note names the grouping, shows case -> patient pairs and points to --patients."""
    from lungai.seg.dataset import patient_names_note

    names = [f"SiteA_P{k:02d}_ct.nii.gz" for k in range(1, 5)] + [f"SiteB_P{k:02d}_ct.nii.gz" for k in range(5, 9)]
    _touch(tmp_path / "i", names)
    _touch(tmp_path / "m", names)
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    assert {c.patient for c in cases} == {"SiteA", "SiteB"}          # the rule itself is unchanged
    note = patient_names_note(cases)
    assert note and "only 2 patients" in note and "SiteA_P01_ct -> SiteA" in note and "--patients" in note
    assert "case,patient" in note
    assert patient_names_note(cases, tmp_path / "p.csv") is None      # the patients are given: no note
    # names of real patients with several crops each: no note
    lidc = [Case(f"LIDC-IDRI-000{p}_R_{k}", f"LIDC-IDRI-000{p}", image_path="x") for p in range(1, 4) for k in (1, 2)]
    assert patient_names_note(lidc) is None
    tiny = [Case(f"P{p:02d}_{k}", f"P{p:02d}", image_path="x") for p in range(3) for k in (0, 1)]
    assert patient_names_note(tiny) is None
    # few groups with many files each, even without a recognisable patient part: noted
    big = [Case(f"CT{p}_{k}", f"CT{p}", image_path="x") for p in range(2) for k in range(8)]
    assert "only 2 patients" in patient_names_note(big)
    # the opposite case (each file its own patient) still comes through the same note
    own = [Case(f"X{k}", f"X{k}", image_path="x") for k in range(3)]
    assert "one file per patient" in patient_names_note(own)


def test_train_seg_prints_the_site_grouping_note(tmp_path, capsys):
    import argparse

    from lungai.cli.seg import training_cases

    names = [f"SiteA_P{k:02d}_ct.nii.gz" for k in range(1, 4)] + [f"SiteB_P{k:02d}_ct.nii.gz" for k in range(4, 7)]
    _touch(tmp_path / "i", names)
    img = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    img[1, 1, 1] = 1
    (tmp_path / "m").mkdir()
    for n in names:
        sitk.WriteImage(img, str(tmp_path / "m" / n))
    args = argparse.Namespace(images=str(tmp_path / "i"), masks=str(tmp_path / "m"), patients=None, label=None,
                              max_cases=0, synthetic=0, synthetic_chests=0, implant=0, implant_into=None)
    training_cases(args)
    out = capsys.readouterr().out
    assert "note:" in out and "SiteA_P01_ct -> SiteA" in out and "--patients" in out


def test_upper_case_extensions_are_image_files_not_dropped(tmp_path):
    """P01.NII.GZ / P02.Nrrd (Windows tools, FAT drives) are image files as lungai's readers take them: paired and
    trained on - before, they were left out of --images / --masks without a word (QA: 3 of 14 LIDC cases named
    .NII.GZ trained on 11), or the folder said to hold no image files."""
    from lungai.seg.dataset import read_backgrounds

    def touch(d, names):                                 # SimpleITK writes lower-case suffixes only: renamed
        _touch(d, [n.lower() for n in names])
        for n in names:
            (d / n.lower()).rename(d / n)

    touch(tmp_path / "i", ["A_1.NII.GZ", "A_2.nii.gz", "B_1.Nrrd"])
    touch(tmp_path / "m", ["A_1.nii.gz", "A_2.NII.GZ", "B_1.NRRD"])
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    assert [c.case_id for c in cases] == ["A_1", "A_2", "B_1"]
    assert [c.image_path.name for c in cases] == ["A_1.NII.GZ", "A_2.nii.gz", "B_1.Nrrd"]
    assert [c.patient for c in cases] == ["A", "A", "B"]
    _touch(tmp_path / "i", ["A_1.nii.gz"])               # one case name in two files, whatever the case
    with pytest.raises(InputError, match="A_1.NII.GZ and A_1.nii.gz"):
        pair_files(tmp_path / "i", tmp_path / "m")
    touch(tmp_path / "u", ["C_1.MHA"])                   # an --implant-into CT, not read as a CSV
    assert read_backgrounds(tmp_path / "u" / "C_1.MHA")[0]["patient"] == "C"
    _touch(tmp_path / "n" / "i", ["D_1.nhdr", "E_1.nii"])     # NRRD's detached header (+ D_1.raw), as read_ct reads it
    _touch(tmp_path / "n" / "m", ["D_1.nrrd", "E_1.nii"])
    cases = pair_files(tmp_path / "n" / "i", tmp_path / "n" / "m")
    assert [c.image_path.name for c in cases] == ["D_1.nhdr", "E_1.nii"]


def test_no_pairs_names_the_prefix_rename_needed(tmp_path):
    """ct_001 / 001_mask, img-P01 / seg-P01: names that differ by a prefix common to each side (and a suffix) got
    no rename hint ("name each mask like its image" only); now the rename is named as for suffixes (for ct_001: to
    the case name alone, as 'ct' would be every image's patient)."""
    _touch(tmp_path / "i", ["ct_001.nii.gz", "ct_002.nii.gz", "ct_003.nii.gz"])
    _touch(tmp_path / "m", ["001_mask.nrrd", "002_mask.nrrd", "003_mask.nrrd"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i", tmp_path / "m")
    assert "the image names begin with 'ct_'" in err.value.problem
    assert "the image names begin with 'ct_', the mask names do not; the mask names add '_mask'" in err.value.problem
    assert "images/ct_001.nii.gz and masks/001_mask.nrrd to 001.nrrd" in err.value.fix   # 'ct' is no patient
    assert "'ct' for every image now" in err.value.fix
    _touch(tmp_path / "i2", ["img-P01.nii.gz", "img-P02.nii.gz"])
    _touch(tmp_path / "m2", ["seg-P01.nii.gz", "seg-P02.nii.gz"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i2", tmp_path / "m2")
    assert "the image names begin with 'img-' and the mask names with 'seg-'" in err.value.problem
    assert "masks/seg-P01.nii.gz to masks/img-P01.nii.gz" in err.value.fix


def test_names_differing_in_letter_case_only_are_said_so(tmp_path):
    """images/P01_1.nii.gz with masks/p01_1.nii.gz (a case-insensitive Windows / macOS folder shows them alike): the
    error says the names differ in letter case only, naming the rename (before: only "no partner" / "no mask")."""
    _touch(tmp_path / "i", ["P01_1.nii.gz", "P02_1.nii.gz", "P03_1.nii.gz"])
    _touch(tmp_path / "m", ["p01_1.nii.gz", "P02_1.nii.gz", "P03_1.nii.gz"])
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i", tmp_path / "m")
    assert "1 image / mask name differs in letter case only (e.g. P01_1.nii.gz and p01_1.nii.gz)" in err.value.problem
    assert "masks/p01_1.nii.gz to masks/P01_1.nii.gz" in err.value.fix
    _touch(tmp_path / "m2", ["p01_1.nii.gz", "p02_1.nii.gz", "p03_1.nii.gz"])     # no pair at all
    with pytest.raises(InputError) as err:
        pair_files(tmp_path / "i", tmp_path / "m2")
    assert "3 image / mask names differ in letter case only" in err.value.problem
    assert "masks/p01_1.nii.gz to masks/P01_1.nii.gz" in err.value.fix


def test_the_resume_fingerprint_of_an_mhd_pair_covers_its_pixel_data(tmp_path):
    """QA: train-seg's resume fingerprint hashed an .mhd / .nhdr header only: its .raw replaced, --resume went on
    with other pixels than the checkpoints were trained on, unnoticed.  The data file is hashed with the header."""
    from lungai.seg.settings import CASE_CONTENT, data_settings

    for d in ("i", "m"):
        (tmp_path / d).mkdir()
        img = sitk.Image(6, 6, 4, sitk.sitkInt16)
        img[2, 2, 2] = 1
        sitk.WriteImage(img, str(tmp_path / d / "P01_1.mhd"))
        sitk.WriteImage(img, str(tmp_path / d / "P01_1.nhdr"), useCompression=True)
    for ext in ("mhd", "nhdr"):
        case = Case("P01_1", "P01", tmp_path / "i" / f"P01_1.{ext}", tmp_path / "m" / f"P01_1.{ext}")
        first = data_settings({}, {"train_cases": [case]})[CASE_CONTENT]["P01_1"]
        header = case.image_path.read_bytes()
        other = sitk.Image(6, 6, 4, sitk.sitkInt16)
        other[1, 1, 1] = 7
        sitk.WriteImage(other, str(tmp_path / f"x.{ext}"), useCompression=ext == "nhdr")
        data = "P01_1.raw" if ext == "mhd" else "P01_1.raw.gz"
        (tmp_path / "i" / data).write_bytes((tmp_path / data.replace("P01_1", "x")).read_bytes())
        assert case.image_path.read_bytes() == header
        again = data_settings({}, {"train_cases": [case]})[CASE_CONTENT]["P01_1"]
        assert again["image"] != first["image"] and again["mask"] == first["mask"], ext


def test_patients_csv_with_empty_patient_cells_is_refused(tmp_path):
    """A --patients CSV whose patient cell is empty for some cases (a column filled in part; Excel's merged cells
    export the patient on a patient's first row only) was read as one patient '' for all of them: the crops of
    P01 after its first row (patient '') could be validated while P01_1 trained - one patient on both sides of the
    split, and distinct patients joined.  The empty cells are refused, naming the cases."""
    names = [f"{p}_{k}.nii.gz" for p in ("P01", "P02", "P03") for k in (1, 2)]
    _touch(tmp_path / "i", names)
    _touch(tmp_path / "m", names)
    csv = tmp_path / "p.csv"
    csv.write_text("case,patient\nP01_1,P01\nP01_2,\nP02_1,P02\nP02_2,  \nP03_1,P03\nP03_2,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"3 cases without a patient.*P01_2, P02_2, P03_2") as err:
        pair_files(tmp_path / "i", tmp_path / "m", csv)
    assert "merged cells" in err.value.fix
    csv.write_text("case,patient\n" + "".join(f"{p}_{k},{p}\n" for p in ("P01", "P02", "P03") for k in (1, 2))
                   + ",\n,\n", encoding="utf-8")          # blank rows a spreadsheet exports: skipped
    assert [c.patient for c in pair_files(tmp_path / "i", tmp_path / "m", csv)] == ["P01", "P01", "P02", "P02",
                                                                                    "P03", "P03"]


def test_a_test_fraction_that_leaves_no_validation_patient_is_refused_before_training():
    """3 patients with --test-fraction 0.5 (2 test patients: round(1.5)) and 8 LIDC patients with --val-fraction 0.1
    --test-fraction 0.85 (7 test patients) left validation EMPTY: train-seg trained on 'val Dice 0.000' (epoch 0
    kept), then failed with a KeyError traceback ('roi_mode') after all the training.  Refused at the split, with
    the counts; the same options with one patient more for validation pass, each part non-empty."""
    for n, val, test in ((3, 0.2, 0.5), (8, 0.1, 0.85), (5, 0.2, 0.7)):
        cases = [Case(f"P{p}_1", f"P{p}") for p in range(n)]
        with pytest.raises(InputError, match=rf"no validation patient.*of the {n} patients") as err:
            split_patients(cases, val, 0, test)
        assert "--test-fraction" in err.value.fix
    for n, val, test in ((4, 0.2, 0.5), (10, 0.1, 0.85), (3, 0.2, 0.3)):
        parts = split_patients([Case(f"P{p}_1", f"P{p}") for p in range(n)], val, 0, test)
        assert all(parts) and sum(map(len, parts)) == n


def test_macos_appledouble_files_are_not_cases(tmp_path):
    """QA: a dataset copied from a Mac onto an exFAT drive / network share holds an AppleDouble file ``._NAME`` (4 kB
    of metadata, no image) beside every file; in both folders they paired as cases '._A_1' ... and train-seg stopped
    with "3 of 33 image / mask pairs are not on one grid - ._A_1: the header ... is unreadable ... re-export the
    files" (files Finder does not show; in one folder only: "no partner of the same name").  Hidden files are not
    cases."""
    from lungai.seg.dataset import check_grids

    _touch(tmp_path / "i", ["A_1.nii.gz", "B_1.nii.gz", "C_1.nrrd"])
    _touch(tmp_path / "m", ["A_1.nii.gz", "B_1.nii.gz", "C_1.nrrd"])
    for d, names in ((tmp_path / "i", ["A_1.nii.gz", "B_1.nii.gz", "C_1.nrrd"]), (tmp_path / "m", ["A_1.nii.gz"])):
        for n in names:
            (d / f"._{n}").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))       # AppleDouble magic
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    assert [c.case_id for c in cases] == ["A_1", "B_1", "C_1"]
    check_grids(cases)


def test_a_patient_written_with_other_leading_zeros_is_refused_not_split_as_two():
    """QA: `LUNG1-7_a` and `LUNG1-007_b` (one patient, one file named by a spreadsheet that dropped the zeros) were two
    patients: with seed 7 the split validated on LUNG1-7_a and trained on LUNG1-007_b.  Refused as letter case is,
    naming both spellings; distinct numbers (LIDC-IDRI-0001 / LIDC-IDRI-0010) are distinct patients."""
    cases = [Case(f"LUNG1-{p:03d}_{k}", f"LUNG1-{p:03d}") for p in range(1, 9) for k in "ab"]
    renamed = [Case("LUNG1-7_a", "LUNG1-7") if c.case_id == "LUNG1-007_a" else c for c in cases]
    with pytest.raises(InputError, match=r"1 patient is written in more than one letter case or leading zeros: "
                                         r"'LUNG1-007' \(e.g. LUNG1-007_b\) / 'LUNG1-7' \(e.g. LUNG1-7_a\)"):
        split_patients(renamed, 0.25, seed=7)
    split_patients(cases + [Case("LUNG1-070_a", "LUNG1-070"), Case("LUNG1-700_a", "LUNG1-700")], 0.25, seed=0)


def test_a_binary_0_255_mask_beside_label_maps_is_refused_with_a_label(tmp_path):
    """QA: a folder of 0/1 label maps with a few 0/255 binary masks (ITK-SNAP / dcmrtstruct2nii exports) and
    `train-seg --label 1`: the 0/255 masks were trained as tumour-free (their tumours as background), with only a
    note; eval-seg scored them as tumour-free (every voxel found a false tumour).  Now refused, naming the masks;
    without --label such masks are binary tumour masks, accepted as before."""
    from lungai.seg.dataset import check_masks
    from lungai.seg.evaluate import check_cases

    names = ["P00_1.nii.gz", "P01_1.nii.gz"]
    for folder, values in (("i", (-800, -800)), ("m", (1, 255))):
        (tmp_path / folder).mkdir()
        for name, v in zip(names, values):
            img = sitk.Image(8, 8, 8, sitk.sitkInt16 if folder == "i" else sitk.sitkUInt8)
            img += -800 if folder == "i" else 0
            if folder == "m":
                img[3:5, 3:5, 3:5] = v
            sitk.WriteImage(img, str(tmp_path / folder / name))
    cases = pair_files(tmp_path / "i", tmp_path / "m", label=1)
    with pytest.raises(InputError, match=r"1 of the 2 masks is a binary 0/255 mask - mask P01_1.nii.gz holds only the "
                                         r"value 255") as exc:
        check_masks(cases, label=1)
    assert "set the 255 of these binary masks to the tumour's label" in exc.value.fix
    with pytest.raises(InputError, match="mask P01_1 holds only the value 255"):
        check_cases(pair_files(tmp_path / "i", tmp_path / "m"), label=1)     # as eval-seg pairs them
    check_masks(pair_files(tmp_path / "i", tmp_path / "m"))          # without --label: binary masks, any value
    check_masks(pair_files(tmp_path / "i", tmp_path / "m", label=255), label=255)    # 255 named as the label


def test_a_patient_whose_files_use_another_separator_is_refused_not_split_as_two(tmp_path):
    """QA: a folder mixing P01_1.nii.gz with P01-2.nii.gz (one patient, another separator): the patient is the text
    before the first '_', so P01-2 (no '_') was its own patient 'P01-2' beside 'P01', without a word; seed 1 with
    --test-fraction 0.2 validated on P01_1 and trained on P01-2 (9 LIDC crops renamed so).  Refused now, naming both
    and the rename; names that only begin like another patient's with letters or digits (P01 / P010) are not
    joined, nor are names a --patients CSV gives their patients."""
    names = ["P01_1", "P01-2", "P02_1", "P02-2", "P02.3", "P03_1", "P04_1", "P05_1", "P06_1"]
    for d in ("i", "m"):
        _touch(tmp_path / d, [f"{n}.nii.gz" for n in names])
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    with pytest.raises(InputError, match=r"3 image file names without '_' begin with another patient's name "
                                         r"and a separator: P01-2 \(taken as patient 'P01-2', beside 'P01': e\.g\. "
                                         r"P01_1\)") as e:
        split_patients(cases, 0.2, seed=1, test_fraction=0.2)
    assert "P02-2 (taken as patient 'P02-2', beside 'P02'" in e.value.problem
    assert "rename P01-2.nii.gz to P01_2.nii.gz in both folders" in e.value.fix and "--patients" in e.value.fix
    # leading zeros / letter case of the patient part alike (lungai.model_files.loose_id)
    with pytest.raises(InputError, match=r"p1-9 \(taken as patient 'p1-9', beside 'P01'"):
        split_patients([c for c in cases if "_" in c.case_id] +
                       [Case("p1-9", "p1-9", Path("p1-9.nii.gz"), Path("p1-9.nii.gz"), meta={"patient_from_name": True})],
                       0.2, seed=0)
    # P010 is another patient than P01; a --patients CSV names the patients
    split_patients([Case(n, n.split("_")[0], Path(n), Path(n), meta={"patient_from_name": True})
                    for n in ("P01_1", "P010", "P0101", "P02_1")], 0.3, 0)
    csv = tmp_path / "p.csv"
    csv.write_text("case,patient\n" + "".join(f"{n},{n}\n" for n in names), encoding="utf-8")
    split_patients(pair_files(tmp_path / "i", tmp_path / "m", patients_csv=csv), 0.2, seed=1, test_fraction=0.2)


def test_a_pair_holding_another_patients_mask_is_refused_from_the_headers(tmp_path):
    """QA (maskpid59): an NRRD image / mask pair whose headers carry two PatientIDs (``0010|0020``, as SimpleITK
    writes an image read from DICOM) - a mask of another patient on the same grid - was trained on / evaluated.  The
    headers-only check refuses it, naming the pair (the PatientIDs of :func:`lungai.io.read_mask`'s check); a pair
    carrying one patient, or no key, passes."""
    from lungai.seg.dataset import check_grids

    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    image = sitk.Image([8, 8, 4], sitk.sitkInt16)
    image.SetSpacing((0.8, 0.8, 2.5))
    mask = sitk.Image([8, 8, 4], sitk.sitkUInt8)
    mask.CopyInformation(image)
    for case, (ct_patient, mask_patient) in {"A_1": ("P1", "P1"), "B_1": ("P2", "P7"), "C_1": ("", "P3")}.items():
        for img, who, folder in ((image, ct_patient, "i"), (mask, mask_patient, "m")):
            for key in img.GetMetaDataKeys():
                img.EraseMetaData(key)
            if who:
                img.SetMetaData("0010|0020", who)
            sitk.WriteImage(img, str(tmp_path / folder / f"{case}.nrrd"))
    cases = pair_files(tmp_path / "i", tmp_path / "m")
    with pytest.raises(InputError) as exc:
        check_grids(cases)
    assert exc.value.problem == ("1 of 3 image / mask pairs hold another patient's mask (the PatientIDs their headers "
                                 "carry differ) - B_1: the mask B_1.nrrd is another patient's: PatientID P7 (mask) is "
                                 "not the CT's P2")
    assert "this patient's mask" in exc.value.fix
    check_grids([c for c in cases if c.case_id != "B_1"])


def test_a_lung_mask_given_as_the_tumour_is_refused_named(tmp_path):
    """QA: train-seg on two planning CTs (LUNG1-002 / -003) with their lung masks (labels 3 | 4) as the masks
    trained on the lungs as tumours without a word ("validation: 1 case with a tumour, Dice 0.70"); so did a label
    map's lungs label as --label.  A mask whose tumour is 250 ml or more of air-filled tissue is refused, named
    with the fix, before any training (load_checked) and before any evaluation (eval-seg's check_cases); the
    tumour's own label of the same label map is trained as before."""
    from lungai.seg.config import SegConfig
    from lungai.seg.dataset import load_checked, to_arrays
    from lungai.seg.evaluate import check_cases

    images, masks = _chest_label_map(tmp_path)
    cfg = SegConfig(arch="unet", spacing=(2.0, 2.0, 4.0))
    lungs = pair_files(images, masks, label=3)
    with pytest.raises(InputError, match=r"the tumour of mask W_0.nii.gz looks like the lungs, not a tumour: "
                                         r"\d+ ml of air-filled tissue \(mean -\d+ HU") as exc:
        load_checked([lungs, [], []], cfg)
    assert "not a lung segmentation" in exc.value.fix and "--label 1 in masks with 1 = GTV" in exc.value.fix
    ml = float(exc.value.problem.split(": ")[1].split(" ml")[0])
    assert ml >= 250                                                      # the lungs of the synthetic chest
    with pytest.raises(InputError, match="W_0: the tumour of mask W_0 looks like the lungs"):
        check_cases(pair_files(images, masks, label=3), label=3)         # eval-seg the same
    # the lungs as a binary mask (nonzero = tumour, no --label), as a lung segmentation tool writes it
    raw = sitk.ReadImage(str(masks / "W_0.nii.gz"))
    (tmp_path / "lm").mkdir()
    sitk.WriteImage(sitk.Cast(raw == 3, sitk.sitkUInt8) * 255, str(tmp_path / "lm" / "W_0.nii.gz"))
    with pytest.raises(InputError, match="looks like the lungs"):
        to_arrays(pair_files(images, tmp_path / "lm")[0], cfg)
    d = to_arrays(pair_files(images, masks, label=1)[0], cfg)              # the tumour's label: trained as before
    assert d["label"].sum() > 0
    check_cases(pair_files(images, masks, label=1), label=1)


def test_eval_seg_label_checks_the_labels_tumour_not_the_whole_label_map(tmp_path):
    """QA train67: ``lungai eval-seg --label 1`` on LUNG1-003's planning label map (1 = GTV-1, 2 = GTV-2, 3 / 4 =
    lungs) refused the case, "the tumour of mask LUNG1-003_ct looks like the lungs, not a tumour: 3988 ml of air-filled
    tissue" with the fix to give --label 1, which was given: eval-seg pairs its files without the label (the other
    labels are noted as background), and check_cases judged every nonzero voxel of the map as the tumour.  Now the
    label's voxels are judged; the lungs' label as --label is still refused."""
    from lungai.seg.evaluate import check_cases

    images, masks = _chest_label_map(tmp_path)
    path = masks / "W_0.nii.gz"          # 1 = the tumour, 3 = the lungs (as LUNG1-002's GTV and lungs): mostly air
    labels = sitk.ReadImage(str(path))
    sitk.WriteImage(sitk.Mask(labels, labels != 2), str(path))
    note = check_cases(pair_files(images, masks), label=1)            # as `lungai eval-seg --label 1` pairs them
    assert note and "3" in note and "background" in note
    with pytest.raises(InputError, match="W_0: the tumour of mask W_0 looks like the lungs"):
        check_cases(pair_files(images, masks), label=3)               # the lungs' label: refused as before


def test_blurred_float_masks_are_named_together_with_the_threshold_fix(tmp_path):
    """QA: 2 of the masks blurred (sitk.SmoothingRecursiveGaussian: float fractions) - train-seg named only the
    first ("holds non-integer values") with "give a label map", not how to make one.  Now every such mask is named
    in one error, with the fix: threshold at 0.5."""
    from lungai.seg.dataset import check_masks

    _touch(tmp_path / "i", ["A_1.nii.gz", "B_1.nii.gz", "C_1.nii.gz"])
    (tmp_path / "m").mkdir()
    m = sitk.Image(8, 8, 8, sitk.sitkUInt8)
    m[4, 4, 4] = 1
    for name in ("A_1.nii.gz", "B_1.nii.gz", "C_1.nii.gz"):
        out = sitk.SmoothingRecursiveGaussian(sitk.Cast(m, sitk.sitkFloat32), 1.0) if name != "B_1.nii.gz" else m
        sitk.WriteImage(out, str(tmp_path / "m" / name))
    with pytest.raises(InputError) as err:
        check_masks(pair_files(tmp_path / "i", tmp_path / "m"))
    text = str(err.value)
    assert "2 of the 3 masks cannot be used" in text and "A_1.nii.gz" in text and "C_1.nii.gz" in text, text
    assert "B_1.nii.gz" not in text and text.count("non-integer values") == 2, text
    assert "threshold it at 0.5" in err.value.fix and "nothing was trained" in err.value.fix, err.value.fix


def test_unreadable_image_or_mask_files_are_named_not_said_off_grid(tmp_path):
    """QA: a cut-short image in images/ and a cut-short mask in masks/ were refused as "2 of 3 image / mask pairs
    are not on one grid - A_1: the header of A_1.nii or A_1.nrrd is unreadable": not a grid problem, and which file
    of the pair was not said.  Now each unreadable file is named, with its folder, apart from the grid check."""
    from lungai.seg.dataset import check_grids

    _touch(tmp_path / "images", ["A_1.nii", "B_1.nii", "C_1.nii"])
    _touch(tmp_path / "masks", ["A_1.nii", "B_1.nii", "C_1.nii"])
    (tmp_path / "images" / "A_1.nii").write_bytes(b"garbage")
    whole = (tmp_path / "masks" / "B_1.nii").read_bytes()
    (tmp_path / "masks" / "B_1.nii").write_bytes(whole[:100])          # cut short while copying
    with pytest.raises(InputError) as err:
        check_grids(pair_files(tmp_path / "images", tmp_path / "masks"))
    text = str(err.value)
    assert "2 files of the 3 image / mask pairs cannot be read as an image" in text, text
    assert "images/A_1.nii, masks/B_1.nii" in text and "masks/A_1.nii" not in text and "C_1" not in text, text
    assert "not on one grid" not in text and "nothing was trained" in err.value.fix, text


@pytest.mark.parametrize("n", [1, 2])
def test_seg_dataset_messages_count_in_the_singular_and_the_plural(tmp_path, n):
    """QA pluralseg62: train-seg's refusals wrote "1 patient(s) are written in more than one letter case", "holds 1
    case name(s) in more than one file", "1 image file name(s) without '_' begin with ...": the count's own number
    now, the verb agreeing with it (lungai.errors.counted / agree)."""
    cases = [Case(f"P{p:02d}_{k}", f"P{p:02d}") for p in range(8) for k in range(2)]
    lower = {f"P{p:02d}_1" for p in range(1, n + 1)}
    renamed = [Case(c.case_id.lower(), c.patient.lower()) if c.case_id in lower else c for c in cases]
    words = "1 patient is written" if n == 1 else "2 patients are written"
    with pytest.raises(InputError, match=rf"^{words} in more than one letter case: "):
        split_patients(renamed, 0.25, seed=4)

    names = [f"P{p:02d}_1" for p in range(8)]
    for d in ("i", "m"):
        _touch(tmp_path / d, [f"{c}.nii.gz" for c in names] + [f"{c}.nrrd" for c in names[:n]])
    holds = "1 case name in" if n == 1 else "2 case names in"
    with pytest.raises(InputError, match=rf"holds {holds} more than one file: P00_1.nii.gz and P00_1.nrrd"):
        pair_files(tmp_path / "i", tmp_path / "m")

    names = [f"P{p:02d}_1" for p in range(8)] + [f"P{p:02d}-2" for p in range(n)]
    for d in ("i2", "m2"):
        _touch(tmp_path / d, [f"{c}.nii.gz" for c in names])
    with pytest.raises(InputError) as e:
        split_patients(pair_files(tmp_path / "i2", tmp_path / "m2"), 0.2, seed=1)
    if n == 1:
        assert e.value.problem.startswith("1 image file name without '_' begins with another patient's name")
        assert "the split would take it for another patient" in e.value.problem
    else:
        assert e.value.problem.startswith("2 image file names without '_' begin with another patient's name")
        assert "the split would take them for other patients" in e.value.problem
    assert "(s)" not in e.value.problem


@pytest.mark.parametrize("n", [1, 2])
def test_older_fingerprints_count_in_the_singular_and_the_plural(tmp_path, n):
    """QA pluralseg62: a --resume of a run whose settings.json records 1 case's fingerprint in the older form said
    "records the fingerprints of 1 cases in an older form ... whether they changed": the count's own number now."""
    import json
    import warnings

    from lungai.errors import InputCheckNote
    from lungai.seg.settings import CASE_CONTENT, SETTINGS_JSON, check_settings

    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    run = {"arch": "unet", "channels": [8, 16], "patch_size": [32, 32, 32], "seed": 0}
    ids = [f"P{p:02d}_1" for p in range(n)]
    (ckpt / SETTINGS_JSON).write_text(json.dumps({**run, CASE_CONTENT: {c: "0" * 64 for c in ids}}), encoding="utf-8")
    (ckpt / "member_0.last.safetensors").write_bytes(b"")          # a member trained: not an untrained run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_settings(ckpt, {**run, CASE_CONTENT: {c: {"image": "1", "mask": "2"} for c in ids}})
    (text,) = [str(w.message) for w in caught if issubclass(w.category, InputCheckNote)]
    if n == 1:
        assert "records the fingerprints of 1 case in an older form" in text
        assert "cannot tell whether it changed since" in text and "records its fingerprint anew" in text
    else:
        assert "records the fingerprints of 2 cases in an older form" in text
        assert "cannot tell whether they changed since" in text and "records their fingerprints anew" in text


def test_implant_into_csv_paths_written_from_the_current_folder_are_refused_and_a_missing_one_named_as_written(
        tmp_path, monkeypatch):
    """QA radfollow65: `train-seg --implant-into sub/backgrounds.csv` whose cells (`data/P1_ct.nii.gz`) name files
    of the current folder, not of the CSV's, got the generic "none of the 2 files listed ... does not exist" - not
    that relative paths are read from the CSV's folder, nor the cell to write (as radiomics-batch's manifest says:
    one rule, lungai.io.tables.check_listed_files); and a missing file of one row was named as the path it is read
    from ("sub/data/P2_ct.nii.gz (listed in sub/backgrounds.csv) does not exist"), not as its cell.  The CSV is
    read only (no training)."""
    from lungai.seg.dataset import read_backgrounds

    _touch(tmp_path / "data", ["P1_ct.nii.gz", "P1_mask.nii.gz"])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "backgrounds.csv").write_text("image,mask\ndata/P1_ct.nii.gz,data/P1_mask.nii.gz\n",
                                                      encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        read_backgrounds("sub/backgrounds.csv")
    assert "all 2 paths in the --implant-into CSV sub/backgrounds.csv name files of the current folder" \
        in err.value.problem
    assert "where relative paths are read from: data/P1_ct.nii.gz, data/P1_mask.nii.gz" in err.value.problem
    assert "(../data/P1_ct.nii.gz for data/P1_ct.nii.gz)" in err.value.fix
    _touch(tmp_path / "sub" / "data", ["P1_ct.nii.gz", "P1_mask.nii.gz"])    # beside the CSV: read from there
    (tmp_path / "sub" / "backgrounds.csv").write_text("image,mask\ndata/P1_ct.nii.gz,data/P1_mask.nii.gz\n"
                                                      "data/P2_ct.nii.gz,\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_backgrounds("sub/backgrounds.csv")
    assert err.value.problem.startswith("--implant-into CSV backgrounds.csv line 3, image cell data/P2_ct.nii.gz: "
                                        "the file does not exist (looked for at sub/data/P2_ct.nii.gz"), \
        err.value.problem
    (tmp_path / "sub" / "backgrounds.csv").write_text("image,mask\ndata/P1_ct.nii.gz,data/P1_mask.nii.gz\n,\n",
                                                      encoding="utf-8")
    with pytest.raises(InputError, match="backgrounds.csv line 3: its image cell is empty"):
        read_backgrounds("sub/backgrounds.csv")       # not the CSV's folder taken as its CT
    (tmp_path / "sub" / "backgrounds.csv").write_text("image,mask\ndata/P1_ct.nii.gz,data/P1_mask.nii.gz\n",
                                                      encoding="utf-8")
    assert [b["image"] for b in read_backgrounds("sub/backgrounds.csv")] == [Path("sub/data/P1_ct.nii.gz")]


def test_the_grid_mismatch_fix_names_every_mask_off_its_grid(tmp_path):
    """QA trainfollow67: train-seg's grid check listed every mask off its image's grid but its fix named only the last
    one ("resample the mask C_1.nrrd onto the image ..."): a user fixing what the fix said retried into the same error.
    The fix names each mask (grouped by the action each needs)."""
    from lungai.seg.dataset import check_grids

    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    image = sitk.Image([8, 8, 4], sitk.sitkInt16)
    image.SetSpacing((0.8, 0.8, 2.5))
    for case, z in {"A_1": 2.5, "B_1": 2.0, "C_1": 3.0}.items():
        mask = sitk.Image([8, 8, 4], sitk.sitkUInt8)
        mask.SetSpacing((0.8, 0.8, z))
        sitk.WriteImage(image, str(tmp_path / "i" / f"{case}.nrrd"))
        sitk.WriteImage(mask, str(tmp_path / "m" / f"{case}.nrrd"))
    with pytest.raises(InputError) as exc:
        check_grids(pair_files(tmp_path / "i", tmp_path / "m"))
    problem, fix = exc.value.problem, exc.value.fix
    assert problem.startswith("2 of 3 image / mask pairs are not on one grid - B_1: ") and "C_1: " in problem, problem
    assert "B_1.nrrd" in fix and "C_1.nrrd" in fix and "A_1.nrrd" not in fix, fix
    assert "resample" in fix and "nothing was trained" in fix, fix
