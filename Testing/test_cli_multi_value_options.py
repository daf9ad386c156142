"""A positional argument (radiomics-batch's manifest) written after an option taking several values
(``--feature-classes``, ``--image-types``, ``--segments``, ``--log-sigma``) is read as one of that option's values.

QA radfind66: ``lungai radiomics-batch --feature-classes shape firstorder m.csv -o out.csv`` ended with "the following
arguments are required: manifest" and no word of why - the manifest was there, read as a feature class.  The error
now names the value taken, the option that took it, and the two ways to write the command."""

from __future__ import annotations

import pytest

from lungai.cli import main


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("option, values", [
    ("--feature-classes", ["shape", "firstorder"]),
    ("--image-types", ["Original"]),
    ("--segments", ["tumour", "lungs"]),
])
def test_manifest_after_a_multi_value_option_is_named(tmp_path, capsys, option, values):
    manifest = tmp_path / "m.csv"
    manifest.write_text("case,image,mask\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    err = _error(capsys, ["radiomics-batch", option, *values, str(manifest), "-o", str(out)])
    assert "the following arguments are required: manifest" in err
    # what happened: the file was read as a value of the option
    assert f"{str(manifest)!r} (a file) was read as a value of {option}" in err
    # how to fix it: the manifest first, or `--` ending the option's values
    assert f"lungai radiomics-batch {manifest} {option} {' '.join(values)}" in err
    assert f"{option} {' '.join(values)} -- {manifest}" in err
    assert not out.exists()


def test_output_option_first_and_a_path_that_is_not_there(tmp_path, capsys):
    """-o before the option, the manifest a path not (yet) there: still named as the value taken, not 'a file'."""
    err = _error(capsys, ["radiomics-batch", "-o", str(tmp_path / "o.csv"), "--feature-classes", "shape",
                          "cohort.csv"])
    assert "'cohort.csv' was read as a value of --feature-classes" in err
    assert "(a file)" not in err
    assert "lungai radiomics-batch cohort.csv --feature-classes shape" in err


def test_a_number_option_refusing_the_manifest_says_it_may_be_the_manifest(tmp_path, capsys):
    """--log-sigma takes numbers: the manifest after it is refused as a number - said with the same fix."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("case,image,mask\n", encoding="utf-8")
    err = _error(capsys, ["radiomics-batch", "--log-sigma", "1", "2", str(manifest), "-o", str(tmp_path / "o.csv")])
    assert f"argument --log-sigma: {str(manifest)!r} is not a number" in err
    assert f"{str(manifest)!r} (a file) was read as a value of --log-sigma" in err
    assert f"--log-sigma 1 2 -- {manifest}" in err


def test_the_written_fixes_work(tmp_path, capsys):
    """Both commands the hint offers are read with the manifest as the manifest (its own error: an empty CSV)."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("", encoding="utf-8")
    for argv in (["radiomics-batch", str(manifest), "--feature-classes", "shape", "firstorder", "-o",
                  str(tmp_path / "o.csv")],
                 ["radiomics-batch", "-o", str(tmp_path / "o.csv"), "--feature-classes", "shape", "firstorder", "--",
                  str(manifest)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"manifest {manifest} is empty" in err
        assert "was read as a value" not in err


def test_no_hint_when_no_multi_value_option_took_it(tmp_path, capsys):
    """A manifest simply left out: the plain argparse error, no hint about an option's values."""
    err = _error(capsys, ["radiomics-batch", "--feature-classes", "shape", "-o", str(tmp_path / "o.csv")])
    assert "the following arguments are required: manifest" in err
    assert "was read as a value" not in err
    err = _error(capsys, ["radiomics-batch", "-o", str(tmp_path / "o.csv")])
    assert "was read as a value" not in err
