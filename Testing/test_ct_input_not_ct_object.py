"""A DICOM object that holds no CT image - a SEG, an RTSTRUCT, an RTDOSE - given where the CT is read is refused as
what it is, with the option it goes to (QA inputsfollow70: a SEG of `lungai dicom-export` given as `lungai radiomics
--image` was said to be an "Enhanced (multi-frame) CT" with "90 slices at the position of another slice", LUNG1-003's
RTSTRUCT "unreadable or corrupt, re-export", an RTDOSE "looks like an MR").  Small synthetic study (pydicom)."""

from __future__ import annotations

import pytest

from lungai.errors import InputError


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from dicom_helpers import small_phantom

    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.dicom.synthetic import write_rt_study

    root = tmp_path_factory.mktemp("notct")
    st = write_rt_study(root, small_phantom(7), "NC1", dose="relative")
    ref = ct_reference(st["ct"])
    st["seg"] = write_seg({"Tumour": st["masks"]["GTV"]}, ref, root / "results.seg.dcm", roles={"Tumour": "gtv"})
    return st


@pytest.mark.parametrize("kind, what, goes", [
    ("seg", "a DICOM SEG (a segmentation), not a CT image", "give it to the command's mask option (--mask"),
    ("rtstruct", "a DICOM RTSTRUCT (contours), not a CT image", "the RTSTRUCT goes to --rtstruct"),
    ("dose", "a DICOM RTDOSE (a dose grid), not a CT image", "the RTDOSE goes to --dose"),
])
def test_read_ct_names_a_seg_rtstruct_rtdose_given_as_the_ct(study, kind, what, goes):
    from lungai.io import read_ct

    with pytest.raises(InputError) as e:
        read_ct(study[kind])
    assert f"{study[kind]} is {what}" in str(e.value)
    assert "give the CT series (its folder of CT slices" in e.value.fix and goes in e.value.fix
    assert read_ct(study["ct"]).GetSize()[2] > 1         # the CT itself still reads


def test_cli_radiomics_and_lungs_say_a_seg_is_no_ct(study, tmp_path, capsys):
    from lungai.cli import main

    assert main(["radiomics", "--image", str(study["seg"]), "--mask", str(study["seg"]), "-o",
                 str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "is a DICOM SEG (a segmentation), not a CT image" in err and "Enhanced" not in err
    assert main(["lungs", str(study["rtstruct"]), "-o", str(tmp_path / "l.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "is a DICOM RTSTRUCT (contours), not a CT image" in err and "corrupt" not in err
    assert not (tmp_path / "l.nii.gz").exists() and not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("kind, what, goes", [
    ("nifti", "is an image file (.nii.gz: a label map or an image), not an RTSTRUCT", "a label map goes to the"),
    ("seg", "is a DICOM SEG file, not an RTSTRUCT", "a SEG is a mask"),
    ("dose", "is a DICOM RTDOSE file, not an RTSTRUCT", "an RTDOSE goes to --dose"),
    ("slice", "is a DICOM CT file, not an RTSTRUCT", "a CT goes to the command's CT"),
    # QA dicom71: a table given as --rtstruct read LUNG1-003's CT (6.4 s) before "not a readable DICOM file"
    ("csv", "is not DICOM: neither a DICOM file", "give the RT structure set"),
])
def test_rtstruct_option_refuses_another_kind_of_file_before_the_ct_is_read(study, tmp_path, capsys, monkeypatch,
                                                                           kind, what, goes):
    """QA inputsfollow70: `lungai radiomics --rtstruct lab3.nii.gz` read LUNG1-003's CT (2.6 s) before "not a
    readable DICOM file (pydicom ...)"; the file's kind is said by the --rtstruct check, before any work."""
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.dicom.rtstruct import check_rtstruct_path

    files = {"seg": study["seg"], "dose": study["dose"], "slice": sorted(study["ct"].iterdir())[0],
             "nifti": tmp_path / "lab3.nii.gz", "csv": tmp_path / "structures.csv"}
    sitk.WriteImage(sitk.Image(8, 8, 4, sitk.sitkUInt8), str(files["nifti"]))
    files["csv"].write_text("structure,role\nGTV-1,gtv\n")
    with pytest.raises(InputError) as e:
        check_rtstruct_path(files[kind])
    assert f"{files[kind]} {what}" in str(e.value) and "--rtstruct" in e.value.fix and goes in e.value.fix
    read = []
    monkeypatch.setattr("lungai.io.read_ct", lambda *a, **k: read.append(a))
    monkeypatch.setattr("lungai.io.read.read_ct", lambda *a, **k: read.append(a))
    assert main(["radiomics", "--image", str(study["ct"]), "--rtstruct", str(files[kind]), "--structure", "role:gtv",
                 "-o", str(tmp_path / "r.csv")]) == 2
    assert what in capsys.readouterr().err and not read and not (tmp_path / "r.csv").exists()
    assert check_rtstruct_path(study["rtstruct"]) == study["rtstruct"]       # an RTSTRUCT passes


@pytest.mark.parametrize("command", ["segment", "lungs", "radiomics", "dose-features", "dicom-export", "demo"])
def test_an_rtstruct_given_as_the_ct_is_refused_with_the_arguments_before_any_bar(study, tmp_path, capsys, command):
    """QA dicom71 (LUNG1-003's RTSTRUCT given as the CT): the file was said to be an RTSTRUCT by the CT's reader only,
    after the command's imports and first bar - ``segment`` 17 s (its models' modules), ``dose-features`` 7.7 s (and
    with the same file as --dose, "holds no pixel data ... re-export the RTDOSE"), ``demo`` 6.1 s, ``lungs`` 3.8 s,
    ``dicom-export`` 2.8 s, ``radiomics`` 2.5 s.  Now with the arguments' checks, before any bar is drawn."""
    from lungai.cli import main

    rs, out = str(study["rtstruct"]), tmp_path / "out"
    argv = {"segment": ["segment", rs, "-o", str(out)],
            "lungs": ["lungs", rs, "-o", str(out / "lungs.nii.gz")],
            "radiomics": ["radiomics", "--image", rs, "--rtstruct", rs, "-o", str(out / "r.csv")],
            "dose-features": ["dose-features", "--ct", rs, "--dose", str(study["dose"]), "--rtstruct", rs, "-o",
                              str(out / "d.csv")],
            "dicom-export": ["dicom-export", "--ct", rs, "--tumour", str(study["seg"]), "-o", str(out)],
            "demo": ["demo", "--ct", rs, "-o", str(out)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{rs} is a DICOM RTSTRUCT (contours), not a CT image" in err, err
    assert "the RTSTRUCT goes to --rtstruct" in err and "RTDOSE" not in err
    assert not [line for line in err.splitlines() if line.startswith(f"{command}:")], err     # no bar drawn
    assert not out.exists()


@pytest.mark.parametrize("kind, what, goes", [
    ("rtstruct", "is a DICOM RTSTRUCT file, not an RTDOSE", "the RTSTRUCT goes to --rtstruct"),
    ("seg", "is a DICOM SEG file, not an RTDOSE", "the SEG is a mask"),
    ("slice", "is a DICOM CT file, not an RTDOSE", "a CT image goes to --ct"),
    ("csv", "is not DICOM: neither a DICOM file", "an RTDOSE .dcm"),
])
def test_dose_features_refuses_another_kind_of_file_as_the_dose_before_any_read(study, tmp_path, capsys, kind, what,
                                                                              goes):
    """QA dicom71 (LUNG1-003's DICOM CT and RTSTRUCT): ``dose-features --dose RS.dcm`` said "holds no pixel data
    (PixelData); it is truncated or incomplete", fix "re-export the RTDOSE" (3.1 s); a CT slice (9.5 s), a SEG (6.7 s)
    and a CSV (6.9 s, "unsupported file type '.csv' ... a SEG or RTSTRUCT is read by its content") were said after
    the CT and the masks were read.  Now as what they are, on the bar's first step, before anything is loaded or
    read."""
    from lungai.cli import main
    from lungai.cli.dose import LOADING

    files = {"rtstruct": study["rtstruct"], "seg": study["seg"], "slice": sorted(study["ct"].iterdir())[0],
             "csv": tmp_path / "dose.csv"}
    files["csv"].write_text("structure,mean_gy\nLung_R,8.1\n")
    out = tmp_path / "out" / "d.csv"
    assert main(["dose-features", "--ct", str(study["ct"]), "--dose", str(files[kind]), "--rtstruct",
                 str(study["rtstruct"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--dose {files[kind]} {what}" in err and goes in err, err
    assert "pixel data" not in err and "unsupported file type" not in err
    assert LOADING not in err, err          # refused on the bar's first step: before pandas, SimpleITK and any read
    assert not out.parent.exists()
    from lungai.cli.dose import check_dose_kind

    check_dose_kind(study["dose"])          # an RTDOSE passes
