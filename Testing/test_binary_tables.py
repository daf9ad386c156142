"""A file that is no text table - an image (.nii.gz), a DICOM file, an empty file - given where a table is read is said
to be one, never a traceback nor a CSV-layout message (QA inputs70)."""

import gzip

import pytest

from lungai.cli import main
from lungai.errors import InputError
from lungai.io.tables import read_table_checked


def _nifti_like(path):
    """A gzip-compressed binary file, as a .nii.gz image is (its bytes as an image file holds them)."""
    path.write_bytes(gzip.compress(bytes(range(256)) * 64 + b"\n1,2,3\n" + bytes(300)))
    return path


def _dicom_like(path):
    path.write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + bytes(200))
    return path


@pytest.mark.parametrize("make, says", [(_nifti_like, "is gzip-compressed binary data (an image such as .nii.gz?), "
                                                       "not a text table"),
                                        (_dicom_like, "is a DICOM file, not a text table")])
def test_a_binary_file_given_as_a_table_is_said_to_be_one(make, says, tmp_path):
    """QA inputs70: LUNG1-003_ct.nii.gz given as ``lungai rp train`` / ``stage cv --ehr`` / ``demo --clinical`` /
    ``radiomics-batch``'s table was refused as "line 7 has 2 fields, the header 1: a value without a column (a comma
    inside a value that is not in quotes ...)", fix "give every value a column name in the header row" - a layout
    fix for a file that is no table at all."""
    path = make(tmp_path / "LUNG1-003_ct.nii.gz")
    with pytest.raises(InputError) as exc:
        read_table_checked(path, what="table")
    assert f"table {path} {says}" in exc.value.problem, exc.value.problem
    assert "give the path of the CSV" in exc.value.fix and "header row" not in exc.value.problem, exc.value.fix


def test_ibsi_check_refuses_an_image_or_an_empty_file_as_its_reference_without_a_traceback(tmp_path, capsys):
    """QA inputs70: ``lungai ibsi-check --reference mask.nii.gz`` (the IBSI phantom's mask given for the reference
    table) ended in a UnicodeDecodeError traceback, an empty reference file in pandas' EmptyDataError traceback, exit
    1.  The reference table is read by the one table reader (read_table_checked): exit 2, the problem and the fix."""
    import SimpleITK as sitk

    image, mask = tmp_path / "image.nii.gz", tmp_path / "mask.nii.gz"
    img = sitk.Image(8, 8, 8, sitk.sitkInt16)
    sitk.WriteImage(img, str(image))
    sitk.WriteImage(sitk.Cast(img, sitk.sitkUInt8) + 1, str(mask))
    (tmp_path / "empty.csv").write_bytes(b"")
    for reference, says in ((mask, "is gzip-compressed binary data"), (tmp_path / "empty.csv", "is empty")):
        code = main(["ibsi-check", "--image", str(image), "--mask", str(mask), "--reference", str(reference),
                     "--config", "A", "-o", str(tmp_path / "out.csv")])
        err = capsys.readouterr().err
        assert code == 2 and f"IBSI-1 reference table {reference} {says}" in err and "How to fix" in err, err
        assert "ibsi_1_chest_config_<x>.csv" in err and "Traceback" not in err, err
    assert not (tmp_path / "out.csv").exists()
