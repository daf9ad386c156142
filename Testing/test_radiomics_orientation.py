"""Radiomics features do not depend on the order the image is stored in: the image and every mask are put in
LPS axial order (lungai.io.geometry.to_lps) before preparation, in the default and the IBSI paths."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from lungai.radiomics import extract, load_params

KEY = ["segment", "image_type", "feature_class", "feature"]


def _tumour_ct():
    """A small anisotropic CT (1 x 1.2 x 2.5 mm) with an elongated, textured, off-axis tumour."""
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:16, :36, :40].astype(float)
    inside = ((x - 17) / 11) ** 2 + ((y - 19) / 6) ** 2 + ((z - 7) / 4.5) ** 2 <= 1
    inside |= ((x - 24) / 5) ** 2 + ((y - 12) / 5) ** 2 + ((z - 9) / 3) ** 2 <= 1
    arr = np.where(inside, 20 + 4 * x - 3 * y + 6 * z, -800.0) + rng.normal(0, 25, x.shape)
    ct = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    ct.SetSpacing((1.0, 1.2, 2.5))
    ct.SetOrigin((-20.0, 30.0, -100.0))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(ct)
    return ct, mask


def _values(ct, mask, preset):
    result = extract(ct, {"tumour": mask}, load_params(preset), case="c")
    assert result.errors.empty, result.errors
    return result.features.set_index(KEY)["value"].astype(float), result.settings


@pytest.mark.parametrize("preset", ["default", "ibsi-a"])
def test_a_ct_stored_sagittal_or_ras_gives_the_lps_values(preset):
    """The same CT and mask stored sagittally (SAR: 2D / 2.5D texture was computed in sagittal planes,
    Maximum2DDiameterSlice / Row swapped) or x / y flipped (RAS: mesh features a few tenths of a percent off) give
    the values of the LPS-stored one; the settings say the features were computed in LPS axial order."""
    ct, mask = _tumour_ct()
    ref, lps_settings = _values(ct, mask, preset)
    for order in ("SAR", "RAS", "PIL"):
        values, settings = _values(sitk.DICOMOrient(ct, order), sitk.DICOMOrient(mask, order), preset)
        assert values.index.equals(ref.index)
        pd.testing.assert_series_equal(values, ref, rtol=1e-9, atol=1e-9, obj=f"{preset} stored {order}")
        assert settings["orientation"].tolist() == [f"LPS (axial slices); stored {order}, reoriented"]
    assert lps_settings["orientation"].tolist() == ["LPS (axial slices)"]


def test_a_mask_stored_in_another_order_than_the_ct_gives_the_same_values(tmp_path):
    """QA: a mask on exactly the CT's voxels but stored in another order (x / y flipped: RAS, as nibabel / nnU-Net
    write it) was refused by ``lungai radiomics`` ('does not lie on the image grid ... resample') although the
    image and every mask are reoriented to LPS before extraction; the grids are now compared in one order and the
    values are those of the mask stored as the CT (extract, --mask, --tumour / --lungs)."""
    from lungai.cli import main
    from lungai.io import write_image

    ct, mask = _tumour_ct()
    ref, _ = _values(ct, mask, "default")
    values, _ = _values(ct, sitk.Flip(mask, [True, True, False]), "default")
    pd.testing.assert_series_equal(values, ref, rtol=1e-12, atol=1e-12)
    values, _ = _values(sitk.DICOMOrient(ct, "SAR"), sitk.DICOMOrient(mask, "RAS"), "default")
    pd.testing.assert_series_equal(values, ref, rtol=1e-9, atol=1e-9)
    write_image(ct, tmp_path / "ct.nrrd")
    write_image(mask, tmp_path / "lps.nii.gz")
    write_image(sitk.Flip(mask, [True, True, False]), tmp_path / "ras.nii.gz")
    few = ["--image-types", "Original", "--feature-classes", "shape", "firstorder"]
    tables = {}
    for name in ("lps", "ras"):
        for how, opts in (("mask", ["--mask", str(tmp_path / f"{name}.nii.gz"), "--label", "tumour=1"]),
                          ("tumour", ["--tumour", str(tmp_path / f"{name}.nii.gz")])):
            out = tmp_path / f"{how}_{name}.csv"
            assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), *opts, *few, "--case", "c",
                         "-o", str(out)]) == 0, (how, name)
            tables[how, name] = pd.read_csv(out)
    for how in ("mask", "tumour"):
        pd.testing.assert_frame_equal(tables[how, "ras"], tables[how, "lps"])


def test_a_mask_cropped_to_its_segment_on_the_ct_lattice_gives_the_values_of_the_whole_mask(tmp_path):
    """QA: a mask cropped to its segment's extent on the CT's own voxel lattice (same spacing and direction, origin
    whole voxels away - Slicer's "Export to files" of a segmentation writes one unless 'Use reference geometry' is
    checked) was refused by ``lungai radiomics`` ('does not lie on the image grid ... size (40, 36, 16) vs (...)').
    It is now placed onto the CT's grid, losslessly: the values of the whole-size mask, stored LPS or RAS.  A mask on
    the lattice whose labelled voxels reach outside the CT, or a crop half a voxel off, is still refused."""
    from lungai.cli import main
    from lungai.errors import GeometryError
    from lungai.io import on_grid, read_mask, same_geometry, write_image

    ct, mask = _tumour_ct()
    crop = mask[6:33, 4:31, 1:15]                     # SimpleITK slicing: the sub-grid, origin moved with it
    assert crop.GetSize() != mask.GetSize() and crop.GetOrigin() != mask.GetOrigin()
    assert int(np.count_nonzero(sitk.GetArrayViewFromImage(crop))) == \
        int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    for stored in (crop, sitk.Flip(crop, [True, True, False])):
        placed = on_grid(ct, stored)
        assert same_geometry(placed, ct)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(placed), sitk.GetArrayFromImage(mask))
    write_image(ct, tmp_path / "ct.nrrd")
    write_image(mask, tmp_path / "whole.nii.gz")
    write_image(crop, tmp_path / "crop.nii.gz")
    write_image(sitk.Flip(crop, [True, True, False]), tmp_path / "crop_ras.nii.gz")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(tmp_path / "crop.nii.gz", reference=ct)),
                                  sitk.GetArrayFromImage(mask))
    few = ["--image-types", "Original", "--feature-classes", "shape", "firstorder", "glcm"]
    tables = {}
    for name in ("whole", "crop", "crop_ras"):
        out = tmp_path / f"{name}.csv"
        assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--tumour", str(tmp_path / f"{name}.nii.gz"),
                     *few, "--case", "c", "-o", str(out)]) == 0, name
        tables[name] = pd.read_csv(out)
    pd.testing.assert_frame_equal(tables["crop"], tables["whole"])
    pd.testing.assert_frame_equal(tables["crop_ras"], tables["whole"])

    bigger = sitk.ConstantPad(mask, (2, 2, 1), (2, 2, 1), 0)         # on the lattice, larger than the CT
    np.testing.assert_array_equal(sitk.GetArrayFromImage(on_grid(ct, bigger)), sitk.GetArrayFromImage(mask))
    spill = sitk.Image(bigger)
    spill[0, 0, 0] = 1                                               # a labelled voxel outside the CT
    with pytest.raises(GeometryError, match="1 of its labelled voxels lie outside the image"):
        on_grid(ct, spill)
    half = sitk.Image(crop)
    half.SetOrigin(tuple(np.add(crop.GetOrigin(), (0.5, 0.0, 0.0))))   # half a voxel off: not on the lattice
    with pytest.raises(GeometryError, match="does not lie on the image grid"):
        on_grid(ct, half)
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(np.add(mask.GetOrigin(), (1.0, 0.0, 0.0))))   # the CT's size, moved a voxel: refused
    with pytest.raises(GeometryError, match="does not lie on the image grid"):
        on_grid(ct, shifted)


def test_a_cropped_mask_on_the_lattice_wholly_outside_the_image_is_said_to_be_another_scans(tmp_path):
    """QA radbatch65 (radiomics-batch, a manifest row pairing LIDC-IDRI-0003_R_2's crop with LIDC-IDRI-0003_R_3's
    mask: both crops of one CT, so on one voxel lattice, 90 mm apart): the case failed with "lies on the image's
    voxel grid but 330 of its labelled voxels lie outside the image" - all 330 of them - and the fix "(that part of
    the segment is outside its field of view)", as for a segment cut by the scan.  A mask on the lattice none of
    whose labelled voxels lies in the image is said not to overlap it (another scan's / lesion's mask), as a mask off
    the lattice is; one that spills over the edge keeps the partial message."""
    from lungai.io.geometry import GeometryError, on_grid

    ct, mask = _tumour_ct()
    crop = sitk.RegionOfInterest(mask, (10, 10, 6), (12, 14, 4))       # on the CT's lattice, inside it
    assert int(sitk.GetArrayViewFromImage(crop).sum()) > 0
    away = sitk.Image(crop)                                             # the same lattice, 60 voxels (60 mm) to +x
    away.SetOrigin(tuple(np.add(crop.GetOrigin(), (60.0, 0.0, 0.0))))
    with pytest.raises(GeometryError) as exc:
        on_grid(ct, away)
    labelled = int(sitk.GetArrayViewFromImage(crop).sum())
    assert f"none of its {labelled} labelled voxels lies in the image" in exc.value.problem
    assert "does not overlap the image at all (their extents are" in exc.value.problem
    assert "that part of the segment" not in exc.value.fix
    assert "drawn on this image" in exc.value.fix and "same scan" in exc.value.fix


def _lps_and_sar_batch(tmp_path):
    """(manifest, output CSV) of a radiomics-batch over one tumour CT stored LPS (case "lps") and SAR ("sar")."""
    from lungai.io import write_image

    ct, mask = _tumour_ct()
    rows = []
    for case, order in (("lps", "LPS"), ("sar", "SAR")):
        write_image(sitk.DICOMOrient(ct, order), tmp_path / case / "ct.nii.gz")
        write_image(sitk.DICOMOrient(mask, order), tmp_path / case / "mask.nii.gz")
        # the label named: the runs' segments=["tumour"] picks among a mask row's segments (QA radfollow66)
        rows.append({"case": case, "image": f"{case}/ct.nii.gz", "mask": f"{case}/mask.nii.gz", "label": "tumour=1"})
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, tmp_path / "f.csv"


def test_batch_redoes_an_older_lungais_cases_of_non_lps_images_only(tmp_path):
    """radiomics-batch resume: a case done by an older lungai (its part's settings without the orientation column)
    whose image is stored in another order than LPS had features of the stored array - it is redone; a case of an
    LPS-stored image had the same values and is kept (the settings id and the batch's resume key are unchanged)."""
    from lungai.radiomics.batch import run_batch

    manifest, out = _lps_and_sar_batch(tmp_path)
    params = load_params("default", feature_classes=["shape", "glcm"])
    first = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert sorted(first.done) == ["lps", "sar"]
    new = pd.read_csv(out)
    lps, sar = (new[new.case == c].drop(columns="case").reset_index(drop=True) for c in ("lps", "sar"))
    pd.testing.assert_frame_equal(lps, sar, rtol=1e-9)
    # as an older lungai left them: no orientation column, other values
    parts = tmp_path / "f.csv.parts"
    for case in ("lps", "sar"):
        settings = pd.read_csv(parts / f"{case}.settings.csv").drop(columns="orientation")
        settings.to_csv(parts / f"{case}.settings.csv", index=False)
        part = pd.read_csv(parts / f"{case}.csv")
        part["value"] = 1.0
        part.to_csv(parts / f"{case}.csv", index=False)
        record = json.loads((parts / f"{case}.inputs.json").read_text())   # an older lungai's: no part size / hash
        (parts / f"{case}.inputs.json").write_text(json.dumps({k: v for k, v in record.items()
                                                               if not k.startswith("part_")}))
    again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert again.done == ["sar"] and again.skipped == ["lps"]
    assert "1 case stored in another order than LPS and done by an older lungai" in again.text()

    assert json.loads((tmp_path / "f.settings.json").read_text())["orientation"].startswith("LPS (axial slices)")
    table = pd.read_csv(out)
    pd.testing.assert_frame_equal(table[table.case == "sar"].reset_index(drop=True),
                                  new[new.case == "sar"].reset_index(drop=True))
    assert (table[table.case == "lps"].value == 1.0).all()          # kept: the same values


@pytest.mark.parametrize("order", ["LPS", "PIR", "RAS"])
def test_cohort_redoes_an_older_result_of_a_ct_stored_in_another_order_only(tmp_path, order):
    """cohort: a CT series read in another order than LPS (sagittal slices, a flipped one) is recorded in the
    patient's inputs (ct_orientation, told from one slice's ImageOrientationPatient as ITK reads the series): its
    result from an older lungai (radiomics of the array as stored) is redone; an LPS CT's inputs are unchanged."""
    from lungai.dicom.cohort import CohortJob, ct_orientation, inputs_change
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct
    from lungai.io.geometry import orientation_of

    ct, _ = _tumour_ct()
    folder = tmp_path / "CT"
    ref = write_ct_series(sitk.DICOMOrient(ct, order), folder)
    job = CohortJob(case="P1", patient_id="P1", ct_folder=str(folder), ct_series_uid=ref.series_uid)
    read = orientation_of(read_ct(folder))
    assert ct_orientation(job) == read == order
    recorded = {"ct": {"series_uid": "1", "files": []}, "rtstruct": None, "rtdose": []}
    current = dict(recorded, **({} if order == "LPS" else {"ct_orientation": order}))
    change = inputs_change(recorded, current)
    if order == "LPS":
        assert change is None
    else:
        assert f"stored in {order} order" in change and "older lungai" in change
        assert inputs_change(current, dict(current)) is None


def test_batch_keeps_an_older_lungais_case_whose_image_cannot_be_read_now_and_checks_each_case_once(
        tmp_path, monkeypatch):
    """radiomics-batch resume: a case of an older lungai whose image cannot be read at that moment (moved, a drive
    not mounted) was dropped as if stored in another order - a finished result lost on a guess.  It is kept, with a
    warning that it could not be checked, and checked on a later run (redone then if not LPS).  A case found LPS
    is recorded so (its part's settings get the orientation column): the next resume does not read its image."""
    import lungai.io.read as read_module
    from lungai.radiomics.batch import run_batch

    manifest, out = _lps_and_sar_batch(tmp_path)
    params = load_params("default", feature_classes=["shape"])
    run_batch(manifest, out, params, workers=0, segments=["tumour"])
    parts = tmp_path / "f.csv.parts"
    for case in ("lps", "sar"):         # as an older lungai left them
        settings = pd.read_csv(parts / f"{case}.settings.csv").drop(columns="orientation")
        settings.to_csv(parts / f"{case}.settings.csv", index=False)
        part = pd.read_csv(parts / f"{case}.csv")
        part["value"] = 1.0
        part.to_csv(parts / f"{case}.csv", index=False)
        record = json.loads((parts / f"{case}.inputs.json").read_text())   # an older lungai's: no part size / hash
        (parts / f"{case}.inputs.json").write_text(json.dumps({k: v for k, v in record.items()
                                                               if not k.startswith("part_")}))
    (tmp_path / "sar" / "ct.nii.gz").rename(tmp_path / "moved.nii.gz")           # unreadable now
    kept = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert kept.skipped == ["lps", "sar"] and kept.done == [] and kept.failed == []
    assert (parts / "sar.csv").is_file() and (pd.read_csv(parts / "sar.csv").value == 1.0).all()
    assert "warning: 1 case done by an older lungai could not be checked" in kept.text() and "sar" in kept.text()
    assert "redone" not in (kept.redone or "")
    assert pd.read_csv(parts / "lps.settings.csv")["orientation"].tolist() == ["LPS (axial slices)"]
    assert "orientation" not in pd.read_csv(parts / "sar.settings.csv").columns
    (tmp_path / "moved.nii.gz").rename(tmp_path / "sar" / "ct.nii.gz")           # back: checked, and redone
    checked = []
    real = read_module.stored_orientation
    monkeypatch.setattr(read_module, "stored_orientation", lambda p, *a: checked.append(str(p)) or real(p, *a))
    again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert checked == [str(tmp_path / "sar" / "ct.nii.gz")]         # the LPS case's image is not read again
    assert again.done == ["sar"] and again.skipped == ["lps"] and not again.unchecked
    assert "1 case stored in another order than LPS" in again.text()
    table = pd.read_csv(out)
    assert (table[table.case == "lps"].value == 1.0).all() and not (table[table.case == "sar"].value == 1.0).all()


@pytest.mark.parametrize("order", ["LPS", "PIR", "RAS", "LPI"])
def test_the_stored_order_told_from_one_header_is_the_order_read_ct_reads(tmp_path, order):
    """lungai.io.read.stored_orientation (one file's header, no voxels): a classic series (ITK stacks the slices
    along the slice normal - a feet-first LPI series is read LPS, its slices reordered), an Enhanced multi-frame
    CT and an image file give the orientation of the image read_ct reads."""
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct, write_image
    from lungai.io.geometry import orientation_of
    from lungai.io.read import stored_orientation

    ct, _ = _tumour_ct()
    stored = sitk.DICOMOrient(ct, order)
    write_ct_series(stored, tmp_path / "CT")
    write_image(stored, tmp_path / "ct.nrrd")
    paths = [tmp_path / "CT", tmp_path / "ct.nrrd"]
    for name, reverse in (("MF", False), ("MF2", True)):       # frames one way, then the other
        multi = _enhanced(tmp_path / "CT", tmp_path / name, reverse)
        if multi is not None:
            paths += [multi, multi.parent]
    for path in paths:
        assert stored_orientation(path) == orientation_of(read_ct(path)), path
    with pytest.raises(Exception):
        stored_orientation(tmp_path / "gone")


def _enhanced(classic, folder, reverse=False):
    """The classic series converted to an Enhanced (multi-frame) CT file in ``folder`` (None without highdicom)."""
    try:
        import highdicom as hd
    except ImportError:
        return None
    import pydicom

    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(f) for f in sorted(classic.iterdir())], series_instance_uid=hd.UID(), series_number=9,
        sop_instance_uid=hd.UID(), instance_number=1)
    if reverse:         # highdicom writes the frames against the slice normal: here the other way
        frames = enhanced.pixel_array[::-1].copy()
        groups = list(enhanced.PerFrameFunctionalGroupsSequence)[::-1]
        enhanced.PerFrameFunctionalGroupsSequence = pydicom.Sequence(groups)
        enhanced.PixelData = frames.tobytes()
    folder.mkdir()
    enhanced.save_as(folder / "enhanced.dcm")
    return folder / "enhanced.dcm"


@pytest.mark.parametrize("order", ["LPS", "PIR", "RAS"])
def test_cohort_tells_the_order_of_an_enhanced_multiframe_ct(tmp_path, order):
    """An Enhanced (multi-frame) CT has its ImageOrientationPatient in the functional groups only: ct_orientation
    gave None (taken as LPS), so one stored in another order was never redone.  It is read from the file's header
    as read_ct reads it."""
    pytest.importorskip("highdicom")
    from lungai.dicom.cohort import CohortJob, ct_orientation
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct
    from lungai.io.geometry import orientation_of

    ct, _ = _tumour_ct()
    write_ct_series(sitk.DICOMOrient(ct, order), tmp_path / "CT")
    told = set()
    for name, reverse in (("MF", False), ("MF2", True)):     # frames against the slice normal (highdicom), along it
        multi = _enhanced(tmp_path / "CT", tmp_path / name, reverse)
        read = orientation_of(read_ct(multi.parent))
        assert read == (order if reverse else order[:2] + {"S": "I", "I": "S", "R": "L", "L": "R"}[order[2]])
        for job in (CohortJob(case="P1", patient_id="P1", ct_folder=str(multi.parent), ct_series_uid=""),
                    CohortJob(case="P1", patient_id="P1", ct_folder=str(multi.parent), ct_series_uid="",
                              ct_files=[str(multi)])):
            told.add(ct_orientation(job))
            assert ct_orientation(job) == read, (name, job.ct_files)
    assert len(told) == 2 and told != {"LPS"}          # a non-LPS one is told (it was None: taken as LPS)
