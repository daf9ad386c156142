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
