"""The fixes that ``lungai radiomics-batch`` shows for a case are manifest cells, followed as written.

The shared readers' messages (a SEG's overlapping segments, a label map without label N, a lung label map given one
label) suggest ``FILE#PART`` values.  On the command line they are shell words (``'my data/seg.dcm#GTV, primary'``);
in a batch they were the same, while a manifest's cell needs no shell quotes, double quotes around a comma, and the
path as the manifest writes it (relative to its folder), and the overlap's fix named ``--tumour, --gtv and --lungs``,
options radiomics-batch has not (QA batchmsg62).  Now a batch's case is read within
:func:`lungai.dicom.masks.manifest_fixes`: each test pastes the suggested value into the manifest and reruns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_helpers import rt_export

from lungai.cli import main

FEW = ["--image-types", "Original", "--feature-classes", "shape", "--workers", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A CT (DICOM), a SEG of overlapping segments "GTV, primary" / "Contour, 7" / "Contour, 8" and a label map
    (1 GTV, 3 right lung, 4 left lung, as NSCLC-Radiomics'), in a folder whose name holds a space."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.io import read_ct

    root = tmp_path_factory.mktemp("fix_cells") / "my data"
    st = rt_export(root)["P1"]
    ct = read_ct(st["ct"])
    m = st["masks"]
    write_seg({"GTV, primary": m["GTV"], "Contour, 7": m["Lung_R"], "Contour, 8": m["Lung_L"]},
              ct_reference(st["ct"], image=ct), root / "comma.seg.dcm",
              roles={"GTV, primary": "gtv_primary", "Contour, 7": "lung_right", "Contour, 8": "lung_left"})
    arr = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
    for name, value in (("Lung_R", 3), ("Lung_L", 4), ("GTV", 1)):
        arr[sitk.GetArrayViewFromImage(m[name]) > 0] = value
    labels = sitk.GetImageFromArray(arr)
    labels.CopyInformation(ct)
    sitk.WriteImage(labels, str(root / "labels.nii.gz"))
    return root


def _batch(folder, capsys, header, row, name="m.csv"):
    """The manifest ``folder/name`` of one row, written as text (a cell pasted from a fix as it is), run from the
    folder above ``folder``, the working folder (the manifest given as ``folder/name``, as a user gives it)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = Path(folder.name) / name
    manifest.write_text(f"{header}\n{row}\n", encoding="utf-8")
    rc = main(["radiomics-batch", str(manifest), "-o", str(manifest.parent / (manifest.stem + "_features.csv")), *FEW])
    said = capsys.readouterr()
    return rc, said.out + said.err


def _fix(text):
    assert "how to fix (P1):" in text, text
    return text.split("how to fix (P1):")[1]


def test_overlapping_seg_in_the_mask_column_gets_a_cell_and_the_columns(data, capsys, monkeypatch):
    """A SEG whose tumour overlaps the lungs in the mask column (label empty): the fix is the manifest's cell -
    double quotes around the comma, no shell quotes, the path from the manifest's folder (a manifest in another
    folder: ../my data/...) - and names the tumour / lungs columns, not --tumour, --gtv, --lungs."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    monkeypatch.chdir(data.parent)
    folder = data.parent / "overlap"       # beside the data folder: its cells read ../my data/...
    rc, text = _batch(folder, capsys, "case,image,mask,label", f"P1,{data}/P1/CT,../my data/comma.seg.dcm,")
    assert rc != 0 and "overlap" in text, text
    fix = _fix(text)
    assert '("../my data/comma.seg.dcm#GTV, primary")' in fix, fix
    assert "'" not in fix.replace("'#'", "") and "--tumour" not in fix and "--lungs" not in fix, fix
    assert "the tumour and lungs columns take the segments of their role" in fix, fix
    cell = re.search(r'\("([^"]*)"\)', fix).group(0)[1:-1]           # pasted into the mask cell as shown
    rc, text = _batch(folder, capsys, "case,image,mask,label", f"P1,{data}/P1/CT,{cell},", name="pasted.csv")
    assert rc == 0 and "1 case extracted" in text, text
    # followed: the tumour and lungs columns take the SEG whole
    rc, text = _batch(folder, capsys, "case,image,tumour,lungs",
                      f'P1,{data}/P1/CT,../my data/comma.seg.dcm#1,"../my data/comma.seg.dcm#2,3"', name="cols.csv")
    assert rc == 0, text


def test_a_label_the_map_lacks_gets_the_cell_without_shell_quotes(data, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    monkeypatch.chdir(data.parent)
    folder = data.parent / "no_label"
    rc, text = _batch(folder, capsys, "case,image,tumour", f"P1,{data}/P1/CT,../my data/labels.nii.gz#7")
    assert rc != 0 and "has no label '7'" in text, text
    fix = _fix(text)
    assert "e.g. ../my data/labels.nii.gz#1," in fix and '"../my data/labels.nii.gz#N,M"' in fix, fix
    assert "'" not in fix.replace("'#'", ""), fix
    cell = fix.split("e.g. ")[1].split(", or")[0]
    rc, text = _batch(folder, capsys, "case,image,tumour", f"P1,{data}/P1/CT,{cell}", name="pasted.csv")
    assert rc == 0 and "1 case extracted" in text, text


def test_a_lung_map_given_one_label_gets_both_as_a_quoted_cell(data, capsys, monkeypatch):
    """``lungs`` = ``labels.nii.gz#3``: the fix is the lungs cell ``"...#3,4"`` (a comma: double quotes), not
    ``--lungs 'my data/...#3,4'``."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    monkeypatch.chdir(data.parent)
    folder = data.parent / "one_lung_label"
    rc, text = _batch(folder, capsys, "case,image,lungs", f"P1,{data}/P1/CT,../my data/labels.nii.gz#3")
    assert rc != 0, text
    fix = _fix(text)
    assert '(e.g. "../my data/labels.nii.gz#3,4" for right 3' in fix and "--lungs" not in text, text
    cell = re.search(r'e\.g\. ("[^"]*")', fix).group(1)
    rc, text = _batch(folder, capsys, "case,image,lungs", f"P1,{data}/P1/CT,{cell}", name="pasted.csv")
    assert rc == 0 and "1 case extracted" in text, text


def test_the_command_line_keeps_its_shell_words(data, tmp_path, capsys):
    """Outside a batch's case the same messages give shell words and the options (the manifest's wording does not
    leak out of the case)."""
    from lungai.dicom.masks import command_word, fix_words, manifest_fixes

    with manifest_fixes("sub/m.csv"):          # a row's path: the manifest's folder + its cell
        assert command_word("sub/my data/s.dcm#A, B") == '"my data/s.dcm#A, B"'
        assert command_word("/abs/s.dcm#role:gtv") == "/abs/s.dcm#role:gtv"
        assert fix_words("--lungs", "the lungs column") == "the lungs column"
    assert command_word("my data/s.dcm#A, B") == "'my data/s.dcm#A, B'"
    ct = data / "P1" / "CT"
    rc = main(["radiomics", "--image", str(ct), "--mask", str(data / "comma.seg.dcm"), "-o", str(tmp_path / "f.csv"),
               "--image-types", "Original", "--feature-classes", "shape"])
    fix = capsys.readouterr().err
    assert rc != 0 and f"'{data}/comma.seg.dcm#GTV, primary'" in fix and "--tumour, --gtv and --lungs" in fix, fix


def _tumor_cell(data, folder):
    """A SEG of one segment 'Tumour' in ``folder`` and the manifest ``folder/m.csv`` of one case whose tumour cell
    names it 'Tumor' (a note, not an error): (manifest, seg)."""
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.io import read_ct

    seg = folder / "tumour.seg.dcm"
    ct = read_ct(data / "P1" / "CT")
    gtv = sitk.ReadImage(str(data / "labels.nii.gz")) == 1
    write_seg({"Tumour": gtv}, ct_reference(data / "P1" / "CT", image=ct), seg, roles={"Tumour": "gtv_primary"})
    manifest = folder / "m.csv"
    manifest.write_text(f"case,image,tumour\nP1,{data}/P1/CT,{seg}#Tumor\n", encoding="utf-8")
    return manifest, seg


def _tumor_note(seg):
    return (f"warning: P1: {seg} has no segment 'Tumor'; using 'Tumour', its one segment of the same role (gtv) - "
            f"name it exactly ({seg}#Tumour) to silence this note")


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_note_raised_in_a_case_is_said_with_its_case_whatever_the_workers(data, tmp_path, capfd, monkeypatch,
                                                                            workers):
    """QA batchnotes62: with --workers 1 a note raised in a Dask worker (a tumour cell's segment 'Tumor' of a SEG
    that has 'Tumour' only) printed as a raw Python warning ("read.py:1093: InputNote: ...", its source line) with no
    case name; with --workers 0 as "warning: ..." without its case either.  Now "warning: P1: ..." both ways."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    manifest, seg = _tumor_cell(data, tmp_path)
    capfd.readouterr()
    rc = main(["radiomics-batch", str(manifest), "-o", str(tmp_path / "f.csv"), *FEW[:-1], workers])
    err = capfd.readouterr().err
    assert rc == 0, err
    said = [line for line in err.splitlines() if "has no segment 'Tumor'" in line]
    assert said == [_tumor_note(seg)], err
    assert "InputNote" not in err and "read.py" not in err, err


def _shown(line: str) -> str:
    """A line of text as a terminal shows it: each carriage return goes back to its start, the text after it is
    written over what was there."""
    shown: list = []
    for part in line.split("\r"):
        shown[:len(part)] = part
    return "".join(shown).rstrip()


@pytest.mark.parametrize("terminal", [True, False])
def test_a_note_said_while_the_bar_is_drawn_is_on_a_line_of_its_own(data, tmp_path, monkeypatch, terminal):
    """QA tqdmnote62: a note said while the progress bar was drawn was glued to the end of the bar's line
    (``radiomics-batch:   0%|          | 0/1 [00:00<?, ?it/s]warning: P1: ...``), in a terminal and in a log.  Now
    it is a line of its own - in a terminal the bar cleared before it, in a log the bar's record ended - and the bar
    is drawn again below it."""
    import io
    import sys

    class Stderr(io.StringIO):
        def isatty(self):
            return terminal

    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    monkeypatch.setattr(sys, "stderr", Stderr())
    manifest, seg = _tumor_cell(data, tmp_path)
    rc = main(["radiomics-batch", str(manifest), "-o", str(tmp_path / "f.csv"), *FEW])
    err = sys.stderr.getvalue()
    assert rc == 0, err
    note = _tumor_note(seg)
    lines = [line for line in err.split("\n") if note in line]
    assert len(lines) == 1 and "radiomics-batch:" in err.split(note)[0], repr(err)   # said once, after the bar
    # what the terminal shows on that line / what a log's line holds (no bar record before the note there)
    assert (_shown(lines[0]) if terminal else lines[0]) == note, repr(err)
    # the bar drawn below it (in a log its next line: plain lines there, no bar redrawn - QA demofollow67)
    assert err.split(note + "\n", 1)[1].startswith("\rradiomics-batch:" if terminal else "radiomics-batch:"), repr(err)
