"""``lungai lungs`` takes the RTSTRUCT options of the other RTSTRUCT commands (radiomics, dose-features, the demo) by
the one shared helper, :func:`lungai.dicom.masks.add_rtstruct_options`: ``--rtstruct``, ``--structure``,
``--structure-map``, ``--allow-gaps``.  QA lungs71: lungs had its own ``--rtstruct`` / ``--allow-gaps`` and no
``--structure-map``, while its own warnings said "map it with --structure-map ('Primary tumour: gtv')": LUNG1-003's
RTSTRUCT with GTV-1 named "Primary tumour" left the primary GTV in the lungs (left lung 1720 ml, 1709 ml minus it) and
the fix the warning gave was refused ("unrecognized arguments: --structure-map")."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import SimpleITK as sitk


def _lungs_parser() -> argparse.ArgumentParser:
    from lungai.cli import lungs

    parser = argparse.ArgumentParser(allow_abbrev=False)
    lungs.register(parser.add_subparsers())
    return parser._subparsers._group_actions[0].choices["lungs"]


def test_lungs_takes_the_shared_rtstruct_options():
    """Every option of the shared helper is lungs' too, with the shared help (one definition, not a copy)."""
    from lungai.dicom.masks import add_rtstruct_options

    shared = argparse.ArgumentParser(allow_abbrev=False)
    add_rtstruct_options(shared, "structure help")
    lungs = {a.dest: a for a in _lungs_parser()._actions}
    for action in shared._actions[1:]:          # past -h
        assert action.dest in lungs, f"lungai lungs has no {action.option_strings[0]}"
        if action.dest != "structure":          # each command says what its --structure names
            assert lungs[action.dest].help == action.help, action.option_strings[0]


@pytest.fixture(scope="module")
def renamed_study(tmp_path_factory):
    """A DICOM CT + RTSTRUCT whose GTV is named "Primary tumour" (a name with no role), and the lungs of a plain run."""
    from dicom_helpers import small_phantom

    from lungai.cli import main
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import write_seg
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    tmp = tmp_path_factory.mktemp("renamed")
    study = write_rt_study(tmp / "dicom", small_phantom(7), "P1", dose=None, names={"gtv": "Primary tumour"})
    ct = read_ct(study["ct"])
    gtv = sitk.GetArrayFromImage(read_rtstruct(study["rtstruct"], ct, names=["Primary tumour"])["Primary tumour"]) > 0
    assert main(["lungs", str(study["ct"]), "--no-dicom", "-o", str(tmp / "plain.nii.gz")]) == 0
    labels = sitk.ReadImage(str(tmp / "plain.nii.gz"))
    plain = sitk.GetArrayFromImage(labels)
    assert (plain[gtv] > 0).any()               # the GTV lies in the lungs: its subtraction shows
    seg = write_seg({"Right lung": labels == 1, "Left lung": labels == 2}, study["reference"], tmp / "lungs.seg.dcm",
                    roles={"Right lung": "lung_right", "Left lung": "lung_left"})     # as lungai lungs writes it
    study.update(seg=seg, gtv=gtv, plain=plain)
    return study


def test_structure_map_gives_a_gtv_its_role(renamed_study, tmp_path, capsys):
    """Without a map the RTSTRUCT has no GTV and the fix names --structure-map; with the map the GTV is subtracted
    from the lungs, said under its name, the map as the fix said to write it."""
    from lungai.cli import main

    s = renamed_study
    capsys.readouterr()
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--rtstruct", str(s["root"]),
                 "-o", str(tmp_path / "nomap.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "--structure-map" in err, err
    mapping = tmp_path / "map.yaml"
    mapping.write_text("'Primary tumour': gtv\n")
    out = tmp_path / "minus.nii.gz"
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--rtstruct", str(s["root"]), "--structure-map", str(mapping),
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    expected = s["plain"].copy()
    expected[s["gtv"]] = 0
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), expected)
    notes = [line for line in captured.out.splitlines() if line.startswith("note: GTV 'Primary tumour': ")]
    assert len(notes) == 1 and "subtracted from the lungs" in notes[0], captured.out


def test_structure_names_the_gtvs_and_needs_the_rtstruct(renamed_study, tmp_path, capsys):
    """--structure NAME (as --gtv NAME) takes that structure; without --rtstruct, or beside --gtv, it is refused with
    the arguments, before the CT is read."""
    from lungai.cli import main

    s = renamed_study
    out = tmp_path / "minus.nii.gz"
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--rtstruct", str(s["root"]), "--structure", "Primary tumour",
                 "--structure", "primary TUMOUR", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    expected = s["plain"].copy()
    expected[s["gtv"]] = 0
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), expected)
    assert sum(line.startswith("note: GTV 'Primary tumour': ") for line in captured.out.splitlines()) == 1, \
        captured.out        # one structure given twice: one GTV
    for extra, said in ((["--structure", "Primary tumour"], "--structure needs --rtstruct"),
                        (["--rtstruct", str(s["root"]), "--structure", "Primary tumour", "--gtv", "Primary tumour"],
                         "--structure and --gtv both name the GTV")):
        assert main(["lungs", str(s["ct"]), "--no-dicom", *extra, "-o", str(tmp_path / "x.nii.gz")]) == 2
        err = capsys.readouterr().err
        assert said in err and "How to fix:" in err, err
        assert "lungs: 0/" not in err, err      # refused before the bar: nothing read
        assert not (tmp_path / "x.nii.gz").exists()


@pytest.mark.parametrize("extra, option, role", [
    (["--gtv", "Lung_R"], "--gtv", "lung_right"),
    (["--structure", "Primary tumour", "--structure", "role:lungs"], "--structure", "lungs")])
def test_a_lung_given_as_the_gtv_is_refused_before_any_read(renamed_study, tmp_path, capsys, extra, option, role):
    """A lung (by its name's role, or a lung role) as the GTV would be subtracted from the lungs - the whole lung out
    of the map (QA lungs71: LUNG1-003's --gtv Lung-Right, right lung 2149 -> 37 ml, a note only): refused with the
    arguments, naming the option and the role, before the bar; a map giving the lung's name a GTV role takes it."""
    from lungai.cli import main

    s = renamed_study
    out = tmp_path / "x.nii.gz"
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--rtstruct", str(s["root"]), *extra, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{option} '{extra[-1]}' is a lung (role {role}), not a GTV" in err and "How to fix:" in err, err
    assert "lungs: 0/" not in err and not out.exists(), err
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Lung_R: gtv\n")
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--rtstruct", str(s["root"]), "--gtv", "Lung_R",
                 "--structure-map", str(mapping), "-o", str(out)]) == 0
    assert "note: GTV 'Lung_R': " in capsys.readouterr().out


def test_a_lung_segment_of_a_seg_given_as_the_gtv_is_refused(renamed_study, tmp_path, capsys):
    """lungai lungs' own SEG given as --gtv: the refusal (no GTV segment) names no lung segment as the example, and a
    lung segment chosen (SEG#Right lung) is refused before the segmentation, naming the segment and its role (QA
    lungs71: the fix said "e.g. 'lungs.seg.dcm#Right lung'", which was subtracted: LUNG1-003's right lung 2149 -> 0 ml,
    a note only)."""
    from lungai.cli import main

    s = renamed_study
    seg = s["seg"]
    out = tmp_path / "x.nii.gz"
    capsys.readouterr()
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--gtv", str(seg), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has role 'gtv'" in err and "How to fix:" in err, err
    assert "#Right lung" not in err and "#Left lung" not in err, err
    assert main(["lungs", str(s["ct"]), "--no-dicom", "--gtv", f"{seg}#Right lung", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "segment 'Right lung' of --gtv" in err and "is a lung (role lung_right), not a GTV" in err, err
    assert "filling the" not in err and not out.exists(), err      # before the segmentation
