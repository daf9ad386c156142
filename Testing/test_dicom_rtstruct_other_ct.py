"""An RTSTRUCT drawn on another CT than the one given: its contours that do not fit the CT are said as the RTSTRUCT
belonging to another CT, naming the CT series it was drawn on, with the fix to give that CT (QA dicom71: a copy of
LUNG1-003's RTSTRUCT drawn on another series of its frame of reference, half a slice away, was "structure 'GTV-1':
a contour does not lie in a CT slice plane (... between two CT slices ...)", fix "check it belongs to the CT (same
FrameOfReferenceUID)" - which it did; on the NIfTI CT the same).  Small synthetic study (pydicom)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from dicom_helpers import array

from lungai.errors import InputError


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    root = tmp_path_factory.mktemp("otherct")
    st = write_rt_study(root, small_phantom(7), "OC1", dose=None)
    st["image"] = read_ct(st["ct"])
    return st


def _drawn_on_another_series(src, dst, dz: float, series: str | None):
    """A copy of the RTSTRUCT ``src`` as one drawn on another CT of its frame of reference: its contours moved by
    ``dz`` mm along z (another reconstruction's slices), the CT series it references ``series`` (None: kept)."""
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for frame in ds.ReferencedFrameOfReferenceSequence:
        for st in frame.RTReferencedStudySequence:
            for se in st.RTReferencedSeriesSequence:
                if series:
                    se.SeriesInstanceUID = series
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            v = np.asarray([float(x) for x in c.ContourData]).reshape(-1, 3)
            v[:, 2] += dz
            c.ContourData = [f"{x:.3f}" for x in v.ravel()]
    ds.save_as(dst)
    return dst


def test_an_rtstruct_of_another_ct_series_is_said_to_be_drawn_on_it_not_between_two_slices(study, tmp_path):
    from lungai.dicom.rtstruct import read_rtstruct

    ct = study["image"]
    this = ct.GetMetaData("0020|000e").strip()
    other = generate_uid()
    rs = _drawn_on_another_series(study["rtstruct"], tmp_path / "rs_other.dcm", 2.5, other)   # half a 5 mm slice
    for names in (["GTV"], None):           # one structure, or all of them: said once, not per structure
        with pytest.raises(InputError) as e:
            read_rtstruct(rs, ct, names=names)
        problem, fix = e.value.problem, e.value.fix
        assert f"the RTSTRUCT {rs} was drawn on another CT: CT series {other}, not this CT's series {this}" in problem
        assert "they share a frame of reference" in problem and "between two CT slices" in problem
        assert f"give the CT the RTSTRUCT was drawn on: series {other}" in fix and f"--series {other}" in fix, fix
        assert "FrameOfReferenceUID" not in fix and "cannot be read" not in problem
    # the CT's own series, half a slice away: not another CT - said as before, with its fix
    own = _drawn_on_another_series(study["rtstruct"], tmp_path / "rs_own.dcm", 2.5, None)
    with pytest.raises(InputError) as e:
        read_rtstruct(own, ct, names=["GTV"])
    assert "between two CT slices" in e.value.problem and "drawn on another CT" not in e.value.problem
    assert "same FrameOfReferenceUID" in e.value.fix
    # another series whose contours fit this CT: read, with the note that it was drawn on another series
    fits = _drawn_on_another_series(study["rtstruct"], tmp_path / "rs_fits.dcm", 0.0, other)
    with pytest.warns(UserWarning, match=f"the structures were drawn on series {other}"):
        masks = read_rtstruct(fits, ct, names=["GTV"])
    assert np.array_equal(array(masks["GTV"]), array(study["masks"]["GTV"]))


def test_an_rtstruct_not_fitting_a_nifti_ct_names_the_dicom_series_it_was_drawn_on(study, tmp_path, capsys):
    from lungai.cli import main
    from lungai.io import write_image

    other = generate_uid()
    rs = _drawn_on_another_series(study["rtstruct"], tmp_path / "rs_other.dcm", 2.5, other)
    nifti = write_image(study["image"], tmp_path / "ct.nii.gz")
    assert main(["radiomics", "--image", str(nifti), "--rtstruct", str(rs), "--structure", "GTV",
                 "--image-types", "Original", "--feature-classes", "shape", "-o", str(tmp_path / "out" / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"the RTSTRUCT {rs} was drawn on CT series {other}; the CT given is not DICOM" in err, err
    assert f"How to fix: give the CT the RTSTRUCT was drawn on: DICOM series {other}" in err, err
