"""The report's slice figure labels each view's edges with the patient directions, and they are where the patient
is: a blob at the patient's right, anterior and superior shows by the R, A and S labels, however the CT is stored."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def _figure(monkeypatch, direction):
    from lungai.report import figures

    arr = np.full((20, 40, 40), -800, np.int16)          # z, y, x voxels
    blob = np.zeros(arr.shape, np.uint8)
    arr[12:16, 4:10, 4:10] = 40
    blob[12:16, 4:10, 4:10] = 1
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 2.0))
    ct.SetDirection(direction)
    tumour = sitk.GetImageFromArray(blob)
    tumour.CopyInformation(ct)
    unc = sitk.GetImageFromArray(np.zeros(arr.shape, np.float32))
    unc.CopyInformation(ct)
    figs = []
    monkeypatch.setattr(figures, "_png", lambda fig: figs.append(fig) or b"png")
    figures.tumour_slices(ct, tumour, unc)
    return figs[0], sitk.GetArrayFromImage(tumour)


def _labels(ax):
    """{label: (x, y)} in axes fractions of the single-letter texts on the view."""
    return {t.get_text(): t.get_position() for t in ax.texts if len(t.get_text()) == 1}


def _blob_side(ax):
    """Where the bright blob is in the drawn image: (left?, top?)."""
    img = np.asarray(ax.images[0].get_array())
    rows, cols = np.nonzero(img > -200)
    return cols.mean() < img.shape[1] / 2, rows.mean() < img.shape[0] / 2


def test_slice_views_are_labelled_with_patient_directions(monkeypatch):
    # LPS-stored (voxel x to the left: the blob at low x is the patient's right, low y anterior, high z superior),
    # then the same voxels stored with x and z flipped (RAS-like x, a feet-first z): the blob is then at the
    # patient's left, anterior, inferior
    for direction, expect in (((1, 0, 0, 0, 1, 0, 0, 0, 1), ("R", "A", "S")),
                              ((-1, 0, 0, 0, 1, 0, 0, 0, -1), ("L", "A", "I"))):
        fig, _ = _figure(monkeypatch, direction)
        axial, coronal = fig.axes[0], fig.axes[1]
        a, c = _labels(axial), _labels(coronal)
        assert set(a) >= {"R", "L", "A", "P"} and set(c) >= {"R", "L", "S", "I"}
        assert a["R"][0] < 0.5 < a["L"][0] and a["A"][1] > 0.5 > a["P"][1]
        assert c["R"][0] < 0.5 < c["L"][0] and c["S"][1] > 0.5 > c["I"][1]
        left, top = _blob_side(axial)
        assert ("R" if left else "L") == expect[0] and ("A" if top else "P") == expect[1]
        left, top = _blob_side(coronal)
        assert ("R" if left else "L") == expect[0] and ("S" if top else "I") == expect[2]
