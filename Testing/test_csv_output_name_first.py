"""QA (thin-slice CTs): ``lungai radiomics -o features.txt`` was refused ("tables are written as CSV") only after the
CT and masks had been read and the segments built - minutes on a 512 x 512 x 551 CT.  Every command writing a table
(radiomics, ibsi-check, dose-features) checks the output's name before it reads anything."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk


def _no_work(*_a, **_k):
    raise RuntimeError("an input was read before the output name was checked")


@pytest.fixture
def small_case(tmp_path):
    ct = sitk.GetImageFromArray(np.full((6, 8, 8), -800, np.int16))
    mask = sitk.GetImageFromArray(np.pad(np.ones((2, 4, 4), np.uint8), ((2, 2), (2, 2), (2, 2))))
    paths = {}
    for name, img in (("ct", ct), ("mask", mask), ("dose", sitk.Cast(ct, sitk.sitkFloat32))):
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        sitk.WriteImage(img, paths[name])
    (tmp_path / "ref.csv").write_text("value;tolerance;tag\n")
    paths["ref"] = str(tmp_path / "ref.csv")
    return paths


@pytest.mark.parametrize("command", ["radiomics", "ibsi-check", "dose-features"])
def test_a_table_not_named_csv_is_refused_before_any_input_is_read(small_case, tmp_path, monkeypatch, capsys, command):
    import lungai.dose
    import lungai.io
    import lungai.radiomics.ibsi
    from lungai.cli import main

    for module, name in ((lungai.io, "read_ct"), (lungai.radiomics.ibsi, "run_check"),
                         (lungai.dose, "check_dose_matches_ct"), (lungai.dose, "read_dose")):
        monkeypatch.setattr(module, name, _no_work)
    p, out = small_case, str(tmp_path / "result.txt")
    argv = {"radiomics": ["radiomics", "--image", p["ct"], "--tumour", p["mask"], "-o", out],
            "ibsi-check": ["ibsi-check", "--image", p["ct"], "--mask", p["mask"], "--reference", p["ref"],
                           "--config", "A", "-o", out],
            "dose-features": ["dose-features", "--dose", p["dose"], "--ct", p["ct"], "--lungs", p["mask"], "-o", out]}
    assert main(argv[command]) == 2
    err = capsys.readouterr().err
    assert "cannot write result.txt: tables are written as CSV" in err and "name the output *.csv" in err
    assert not (tmp_path / "result.txt").exists()


@pytest.mark.parametrize("command, option, value", [
    ("radiomics", "--image", "ct_typo.nii.gz"), ("radiomics", "--tumour", "gtv_typo.nii.gz"),
    ("radiomics", "--lungs", "labels_typo.nii.gz#3,4"), ("radiomics", "--mask", "seg_typo.dcm"),
    ("dose-features", "--ct", "ct_typo.nii.gz"), ("dose-features", "--lungs", "lungs_typo.nii.gz"),
    ("dose-features", "--gtv", "labels_typo.nii.gz#1"), ("dose-features", "--envelope", "igtv_typo.nii.gz")])
def test_an_input_file_that_is_not_there_is_refused_before_any_input_is_read(small_case, tmp_path, monkeypatch,
                                                                           capsys, command, option, value):
    """QA rad69 (LUNG1-003's DICOM CT, a typo in a mask's name, on a shared machine): `lungai radiomics --tumour
    gtv_typo.nii.gz` read the CT for 13 s, `dose-features --lungs lungs_typo.nii.gz` the CT for 11.7 s, before "does
    not exist" (minutes on a thin-slice CT).  The input files named (the CT, the mask files; `FILE#labels` by its
    file) are checked with the arguments, before any input is read; the message names the option."""
    import lungai.dose
    import lungai.io
    from lungai.cli import main

    for module, name in ((lungai.io, "read_ct"), (lungai.dose, "check_dose_matches_ct"), (lungai.dose, "read_dose")):
        monkeypatch.setattr(module, name, _no_work)
    p, out = small_case, str(tmp_path / "out" / "result.csv")
    missing = str(tmp_path / value)
    args = {"radiomics": {"--image": p["ct"], "--tumour": p["mask"]},
            "dose-features": {"--dose": p["dose"], "--ct": p["ct"], "--lungs": p["mask"]}}[command]
    if option == "--mask":
        del args["--tumour"]
    if option == "--envelope":
        args["--lungs"] = p["mask"]
    args[option] = missing
    argv = [command] + [v for pair in args.items() for v in pair] + ["-o", out]
    assert main(argv) == 2
    err = capsys.readouterr().err
    file = missing.split("#")[0]
    assert f"{option} {file} does not exist" in err and "check the path" in err, err
    assert not (tmp_path / "out").exists()
