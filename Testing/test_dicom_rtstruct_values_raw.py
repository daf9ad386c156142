"""The RTSTRUCT's contour numbers are not converted value by value by pydicom (QA exportfollow70: ``write_rtstruct``
of LUNG1-003's two lungs, ~110k ContourData values, took 4.6-5.8 s, 2-4 s of it pydicom making and validating a
DSfloat per value as ``c.ContourData`` was set, then again as the save's character-set check read every element).
ContourData is held as the DS bytes pydicom writes (a raw element); the file written and its UIDs are the same as
pydicom's conversion gives: each written element re-encoded from pydicom's converted values gives the same bytes, and
the SOP Instance UID recomputed from the data set read back (every value converted) is the one written."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_helpers import rt_study_masks


def _counting_ds(monkeypatch) -> list:
    """Count the DS values pydicom makes (DSfloat / DSdecimal) from here on."""
    from pydicom import valuerep

    made = []
    for cls in (valuerep.DSfloat, valuerep.DSdecimal):
        real = cls.__init__

        def init(self, *args, __real=real, **kwargs):
            made.append(1)
            __real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)
    return made


def _converted_bytes(path) -> tuple[bytes, bytes]:
    """(the file's bytes, the bytes pydicom writes for it once every element is converted - its own encoding)."""
    data = open(path, "rb").read()
    ds = pydicom.dcmread(io.BytesIO(data))
    for elem in ds.iterall():    # converts every raw element, sequence items too
        _ = elem.value
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return data, out.getvalue()


def _check_written(path, reference, masks, label, series_number):
    """The file is what pydicom writes for its converted values; its SOP Instance UID is the one its content
    (read back, every value converted: pydicom's DS values, as the old writer held them) gives."""
    from lungai.dicom.reference import content_digest, derived_uid

    data, again = _converted_bytes(path)
    assert again == data
    ds = pydicom.dcmread(path)
    arrays = [sitk.GetArrayFromImage(m) for m in masks.values()]
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            assert isinstance(c.ContourData, pydicom.multival.MultiValue)
    digest = content_digest(*arrays, ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence)
    assert ds.SOPInstanceUID == derived_uid(reference.series_uid, "rtstruct", label, "lungai results", digest,
                                            *masks, str(series_number))
    return ds


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return rt_study_masks(tmp_path_factory.mktemp("rtraw"))


def test_rtstruct_contour_values_not_converted_one_by_one(study, tmp_path, monkeypatch):
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import SERIES_NUMBERS

    ref, masks = study
    made = _counting_ds(monkeypatch)
    path = write_rtstruct(masks, ref, tmp_path / "rt.dcm", label="lungai")
    converted = len(made)
    monkeypatch.undo()
    ds = _check_written(path, ref, masks, "lungai", SERIES_NUMBERS["dicom-export"]["rtstruct"])
    values = sum(len(c.ContourData) for rc in ds.ROIContourSequence for c in rc.ContourSequence)
    assert values > 1000
    assert converted < 10, f"{converted} DS values made by pydicom while writing {values} contour values"


def test_rtstruct_values_same_as_pydicom_conversion(study, tmp_path):
    """The raw ContourData element is byte for byte and digest for digest the element pydicom makes."""
    from pydicom.dataset import Dataset

    from lungai.dicom.reference import content_digest
    from lungai.dicom.rtstruct import CONTOUR_DATA, _contour_data, _ds_values

    pts = np.array([[-0.0001, 12.3456, -250.5], [1e-4, 3.0, 7.25], [100.0, -0.5, 2.0]])
    for shown in (pts, pts[:1]):
        a, b = Dataset(), Dataset()
        a.ContourGeometricType = b.ContourGeometricType = "CLOSED_PLANAR"
        a.ContourData = _ds_values(shown)
        b[CONTOUR_DATA] = _contour_data(shown)
        b.set_original_encoding(False, True, "iso8859")
        assert content_digest(b) == content_digest(a)
        outs = []
        for d in (a, b):
            f = io.BytesIO()
            d.save_as(f, implicit_vr=False, little_endian=True)
            outs.append(f.getvalue())
        assert outs[0] == outs[1]
        assert [str(v) for v in b.ContourData] == _ds_values(shown)


@pytest.mark.shared_data
def test_real_lung1_003_lungs_rtstruct_written_unconverted(shared_data, tmp_path, monkeypatch):
    """LUNG1-003's two lungs (the NIfTI labels 3, 4 of its DICOM CT's grid): ~110k contour values."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import write_rtstruct
    from lungai.dicom.seg import SERIES_NUMBERS

    root = shared_data / "nsclc_whole_ct"
    ref = ct_reference(root / "dicom" / "LUNG1-003" / "CT")
    labels = sitk.ReadImage(str(root / "nifti" / "LUNG1-003_labels.nii.gz"))
    masks = {name: sitk.Cast(labels == v, sitk.sitkUInt8) for name, v in (("Lung-Right", 3), ("Lung-Left", 4))}
    made = _counting_ds(monkeypatch)
    path = write_rtstruct(masks, ref, tmp_path / "lungs.rt.dcm", label="lungai lungs",
                          generation={n: "AUTOMATIC" for n in masks})
    converted = len(made)
    monkeypatch.undo()
    ds = _check_written(path, ref, masks, "lungai lungs", SERIES_NUMBERS["dicom-export"]["rtstruct"])
    values = sum(len(c.ContourData) for rc in ds.ROIContourSequence for c in rc.ContourSequence)
    assert values > 100_000
    assert converted < 10, f"{converted} DS values made by pydicom while writing {values} contour values"
