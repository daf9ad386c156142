"""Radiomics features do not depend on the order the image is stored in: the image and every mask are put in
LPS axial order (lungai.io.geometry.to_lps) before preparation, in the default and the IBSI paths."""

from __future__ import annotations

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


def test_batch_redoes_an_older_lungais_cases_of_non_lps_images_only(tmp_path):
    """radiomics-batch resume: a case done by an older lungai (its part's settings without the orientation column)
    whose image is stored in another order than LPS had features of the stored array - it is redone; a case of an
    LPS-stored image had the same values and is kept (the settings id and the batch's resume key are unchanged)."""
    from lungai.io import write_image
    from lungai.radiomics.batch import run_batch

    ct, mask = _tumour_ct()
    rows = []
    for case, order in (("lps", "LPS"), ("sar", "SAR")):
        write_image(sitk.DICOMOrient(ct, order), tmp_path / case / "ct.nii.gz")
        write_image(sitk.DICOMOrient(mask, order), tmp_path / case / "mask.nii.gz")
        rows.append({"case": case, "image": f"{case}/ct.nii.gz", "mask": f"{case}/mask.nii.gz", "label": "1"})
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    out = tmp_path / "f.csv"
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
    again = run_batch(manifest, out, params, workers=0, segments=["tumour"])
    assert again.done == ["sar"] and again.skipped == ["lps"]
    assert "1 case(s) stored in another order than LPS and done by an older lungai" in again.text()
    import json

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
