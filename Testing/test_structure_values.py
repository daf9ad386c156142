"""With an RTSTRUCT, a mask option takes a structure name or role (or a mask file): a folder given as the structure is
refused as such, in the Python API as on the command line (QA inputs70)."""

import pytest

from lungai.dicom.masks import mask_input
from lungai.errors import InputError


def test_mask_input_refuses_a_folder_given_as_the_structure(tmp_path):
    """QA inputs70: ``mask_input(FOLDER, ct, rtstruct)`` (``lungai radiomics --rtstruct RS --tumour RTSTRUCT/``) looked
    for a structure named after the folder's path once the CT was read: "structure '.../RTSTRUCT' is not in ...".
    A folder written as a path is refused naming the option and the fix; a bare name stays a structure's name (a
    folder GTV-1 in the working folder does not hide the structure GTV-1)."""
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    for value, option in ((str(folder), "--tumour"), (f"{folder}#1", "--tumour")):
        with pytest.raises(InputError) as exc:
            mask_input(value, None, rtstruct=tmp_path / "rs.dcm")
        assert f"{option} {value} is a folder: with --rtstruct, {option} takes a structure name" in exc.value.problem
        assert "lungai dicom-scan --structures" in exc.value.fix, exc.value.fix
    with pytest.raises(InputError, match="--lungs .* is a folder: with --rtstruct, --lungs takes"):
        mask_input(f"{folder}/", None, rtstruct=tmp_path / "rs.dcm", lungs=True)
    from lungai.paths import check_structure_values

    check_structure_values([("--tumour", "GTV-1"), ("--structure", ["role:gtv", "Lung_R"])])   # names: accepted
    with pytest.raises(InputError, match="--gtv gtv_typo.nii.gz does not exist"):
        check_structure_values([("--gtv", "gtv_typo.nii.gz#1")])
