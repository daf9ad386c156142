"""``--log-sigma`` (radiomics, radiomics-batch) is used or refused, never silently ignored or a traceback.

QA radfind66 on pyradiomics' lung1:
- ``lungai radiomics --image lung1_image.nrrd --mask lung1_label.nrrd --log-sigma 2 -o out.csv`` wrote 107 Original
  values and no LoG value, exit 0: the sigma was dropped without a word (LoG is not among the preset's image types);
- ``--image-types LoG --log-sigma 0`` (or -1) ended in pykwalify's "SchemaError: ... Type 'scalar' has size of '0.0',
  less than or equals to min limit(exclusive) '0'. Path: '/imageType/LoG/sigma/0'" traceback;
- a parameter file with ``LoG: {sigma: [1, 3]}`` and ``--log-sigma 2`` computed sigmas 1 and 3."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.cli import main
from lungai.errors import InputError
from lungai.radiomics import load_params


def _case(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.normal(0, 30, (12, 24, 24)) - 700).astype(np.int16)
    arr[3:9, 6:18, 6:18] = 30
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 2.0))
    lab = np.zeros(arr.shape, np.uint8)
    lab[3:9, 6:18, 6:18] = 1
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nrrd"))
    return str(tmp_path / "ct.nrrd"), str(tmp_path / "mask.nrrd")


@pytest.mark.parametrize("sigma", ["0", "-1"])
def test_a_sigma_not_above_zero_is_refused_by_the_option(tmp_path, capsys, sigma):
    ct, mask = _case(tmp_path)
    out = tmp_path / "out.csv"
    with pytest.raises(SystemExit) as exc:
        main(["radiomics", "--image", ct, "--mask", mask, "--image-types", "LoG", f"--log-sigma={sigma}",
              "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --log-sigma:" in err and "not above 0" in err and "give LoG sigmas in mm above 0" in err
    assert not out.exists()


def test_log_sigma_without_log_is_refused_not_ignored(tmp_path, capsys):
    ct, mask = _case(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", ct, "--mask", mask, "--log-sigma", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--log-sigma 2 would be ignored" in err and "no LoG" in err
    assert "--image-types Original LoG --log-sigma 2" in err        # the fix, written out
    assert not out.exists()


@pytest.mark.parametrize("preset", ["default", "ibsi-c"])
def test_load_params_refuses_sigmas_without_log(preset):
    with pytest.raises(InputError, match="would be ignored") as exc:
        load_params(preset, log_sigma=[1.0, 2.0])
    if preset.startswith("ibsi"):       # LoG is refused there: the fix is to leave --log-sigma out
        assert "leave --log-sigma out: the IBSI-1 configurations are defined on the original image only" in str(exc.value)
        return
    with pytest.raises(InputError, match="would be ignored"):
        load_params(preset, image_types=["Original", "Wavelet"], log_sigma=[2.0])
    assert load_params(preset, image_types=["Original", "LoG"], log_sigma=[2.0])["imageType"]["LoG"] == {"sigma": [2.0]}


def test_log_sigma_replaces_a_parameter_files_sigmas(tmp_path):
    yaml = tmp_path / "p.yaml"
    yaml.write_text("imageType:\n  Original: {}\n  LoG: {sigma: [1.0, 3.0]}\nsetting:\n  binWidth: 25\n",
                    encoding="utf-8")
    assert load_params(str(yaml))["imageType"]["LoG"] == {"sigma": [1.0, 3.0]}        # the file's own
    params = load_params(str(yaml), log_sigma=[2.0])
    assert params["imageType"] == {"Original": {}, "LoG": {"sigma": [2.0]}}
    no_log = tmp_path / "o.yaml"
    no_log.write_text("imageType:\n  Original: {}\n", encoding="utf-8")
    with pytest.raises(InputError, match="would be ignored"):
        load_params(str(no_log), log_sigma=[2.0])


def test_log_features_with_the_sigma_given(tmp_path):
    ct, mask = _case(tmp_path)
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", ct, "--mask", mask, "--image-types", "Original", "LoG", "--log-sigma", "1.5",
                 "--feature-classes", "firstorder", "-o", str(out)]) == 0
    import pandas as pd

    types = set(pd.read_csv(out)["image_type"])
    assert types == {"original", "log-sigma-1-5-mm-3D"}
