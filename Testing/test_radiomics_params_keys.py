"""A parameter file's misspelt key or value is refused when the parameters are read, naming it, the close spelling and
the fix - not silently ignored (a misspelt ``lungai`` key: pyradiomics' defaults computed instead of the IBSI
configuration) and not a pyradiomics / pykwalify traceback when the first segment is computed."""

from __future__ import annotations

import pytest

from lungai.errors import InputError
from lungai.radiomics import load_params
from lungai.radiomics.settings import settings_id, value_settings

# (the file's text, words the problem names, words the fix names)
TYPOS = {
    "ibsi key in capitals": ("lungai: {IBSI: C}\n", ["unknown key 'IBSI' in its lungai block", "'ibsi'"],
                             ["lungai: {ibsi: C}"]),
    "lung spacing key": ("lungai: {lung_spacing: 3}\nsetting: {binWidth: 25}\n",
                         ["unknown key 'lung_spacing'", "'lung_spacing_mm'", "ignored"], ["lung_spacing_mm"]),
    "lungai block not a mapping": ("lungai: ibsi-c\n", ["lungai block", "'ibsi-c', not a mapping"],
                                   ["lungai: {ibsi: C}"]),
    "setting in lower case": ("setting: {binwidth: 10}\n", ["unknown setting 'binwidth' in its setting block",
                                                            "'binWidth'"], ["case-sensitive", "binCount"]),
    "image type in lower case": ("imageType: {wavelet: {}}\n", ["unknown image type 'wavelet'", "'Wavelet'"],
                                 ["LoG", "Original"]),
    "image type setting": ("imageType: {LoG: {sigmas: [1.0]}}\n", ["unknown setting 'sigmas'", "image type LoG",
                                                                   "'sigma'"], ["remove it"]),
    "feature name": ("featureClass: {glcm: [Autocorelation]}\n", ["unknown glcm feature 'Autocorelation'",
                                                                  "'Autocorrelation'"], ["JointEntropy"]),
    "voxel setting": ("voxelSetting: {kernelradius: 1}\n", ["unknown voxel setting 'kernelradius'",
                                                            "'kernelRadius'"], ["kernelRadius"]),
    "interpolator value": ("setting: {resampledPixelSpacing: [2, 2, 2], interpolator: sitkLinaer}\n",
                           ["value pyradiomics does not take", "sitkLinaer", "sitkLinear"], ["correct that value"]),
    "value of the wrong type": ("setting: {binWidth: abc}\n", ["value pyradiomics does not take", "'abc'",
                                                               "/setting/binWidth"], ["correct that value"]),
}


@pytest.mark.parametrize("name", list(TYPOS))
def test_a_misspelt_parameter_file_is_refused_naming_the_key(tmp_path, name, capfd):
    text, problem, fix = TYPOS[name]
    f = tmp_path / "params.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_params(str(f))
    for words in problem:
        assert words in err.value.problem
    assert str(f) in err.value.problem
    for words in fix:
        assert words in err.value.fix
    assert "All found errors" not in capfd.readouterr().err        # pykwalify's log lines not printed


def test_correct_parameter_files_are_read_as_before(tmp_path):
    """pyradiomics' own spellings, lungai's classes, a sidecar's recorded settings given back as a file (with the
    revisions of the values) and --image-types replacing a misspelt block are accepted, with their ids unchanged."""
    import yaml

    files = {
        "pyradiomics": {"setting": {"binWidth": 10, "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear",
                                    "label": 1},
                        "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {"level": 1}},
                        "featureClass": {"glcm": ["Autocorrelation", "JointEntropy"], "firstorder": None,
                                         "gldzm": []}},
        "ibsi": {"lungai": {"ibsi": "c"}, "featureClass": {"glcm": [], "gldzm": []}},
        "recorded settings": value_settings(load_params("default", image_types=["Original", "Wavelet"])),
    }
    for name, doc in files.items():
        f = tmp_path / f"{name.replace(' ', '_')}.yaml"
        f.write_text(yaml.safe_dump(doc), encoding="utf-8")
        params = load_params(str(f))
        assert params["imageType"]
    recorded = load_params(str(tmp_path / "recorded_settings.yaml"))
    assert settings_id(recorded) == settings_id(load_params("default", image_types=["Original", "Wavelet"]))
    # a block the command line replaces is not read
    f = tmp_path / "typo.yaml"
    f.write_text("imageType: {wavelet: {}}\nsetting: {binWidth: 25}\n", encoding="utf-8")
    assert set(load_params(str(f), image_types=["Original"])["imageType"]) == {"Original"}


def test_the_cli_says_it_without_a_traceback(tmp_path, capsys):
    from lungai.cli import main

    f = tmp_path / "params.yaml"
    f.write_text("lungai: {IBSI: C}\n", encoding="utf-8")
    image = tmp_path / "none.nii.gz"
    image.write_bytes(b"")     # there (input paths are checked first), never read: the params are refused before
    rc = main(["radiomics", "--image", str(image), "--params", str(f), "-o", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert rc != 0 and "unknown key 'IBSI' in its lungai block" in err and "Traceback" not in err


@pytest.mark.parametrize("config, grid", [("a", "the CT's own grid"), ("b", "2 x 2 mm in plane"),
                                          ("c", "2 x 2 x 2 mm")])
def test_a_lung_spacing_beside_an_ibsi_configuration_is_refused(tmp_path, config, grid):
    """QA: ``--params ibsi-c --lung-spacing 3`` computed the lungs on configuration C's 2 mm grid, exit 0, no word
    said (a lung spacing beside resampledPixelSpacing is refused, so is a setting block beside an IBSI configuration).
    Now refused naming the configuration's grid; 0 (no lung resampling asked for) is accepted as before."""
    with pytest.raises(InputError) as err:
        load_params(f"ibsi-{config}", lung_spacing_mm=3)
    assert "--lung-spacing 3 would be ignored" in err.value.problem and grid in err.value.problem
    assert f"IBSI configuration {config.upper()}" in err.value.problem and "leave out --lung-spacing" in err.value.fix
    f = tmp_path / "p.yaml"
    f.write_text(f"lungai: {{ibsi: {config}, lung_spacing_mm: 3}}\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_params(str(f))
    assert "lung_spacing_mm: 3" in err.value.problem and "remove lung_spacing_mm" in err.value.fix
    assert settings_id(load_params(f"ibsi-{config}", lung_spacing_mm=0)) == settings_id(load_params(f"ibsi-{config}"))
