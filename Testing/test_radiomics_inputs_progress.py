"""``lungai radiomics`` shows its progress from the start: the CT read and the segments built are steps of a bar
("radiomics: inputs") before the segments' bar.  QA rad67: on LUNG1-003's DICOM CT with its RTSTRUCT (107 slices,
eight structures) the first bar came 4-7 s after the note naming the RTSTRUCT, nothing said while the CT was read
and the structures rasterised (longer on a thin-slice CT) - the rule: progress for anything over ~2 s.  The notes said
while the segments are built are printed beside that bar, on lines of their own."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.synthetic import labels as L


def _inputs(phantom, tmp_path):
    ct, mask = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(phantom.ct, str(ct))
    sitk.WriteImage(phantom.labels, str(mask))
    return ct, mask


def _run(args, monkeypatch, capsys):
    """stderr of ``lungai radiomics ARGS`` with LUNGAI_PROGRESS lines (as the Lung Radiomics panel reads them), a
    marker line printed when the CT is read."""
    import sys

    import lungai.io as io
    from lungai.cli import main

    real = io.read_ct

    def read_ct(*a, **k):
        print("MARK reading the CT", file=sys.stderr, flush=True)
        return real(*a, **k)

    monkeypatch.setattr(io, "read_ct", read_ct)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    capsys.readouterr()
    rc = main(["radiomics", *map(str, args), "--feature-classes", "firstorder"])
    return rc, capsys.readouterr().err.splitlines()


def test_the_ct_read_and_the_segments_built_are_steps_of_a_bar(small_phantom, tmp_path, monkeypatch, capsys):
    from lungai.progress import PREFIX

    ct, mask = _inputs(small_phantom, tmp_path)
    rc, lines = _run(["--image", ct, "--mask", mask, "--phantom-labels", "--segments", "tumour", "right_lung",
                      "-o", tmp_path / "f.csv"], monkeypatch, capsys)
    assert rc == 0, lines
    shown = [line for line in lines if line.startswith(PREFIX) or line.startswith("MARK")]
    read = shown.index("MARK reading the CT")
    # a bar says that the CT is being read before it is (no bar at all before the segments' bar, before)
    assert shown[:read] == [f"{PREFIX} 0/2 radiomics: inputs: start",
                            f"{PREFIX} 0/2 radiomics: inputs: reading the CT"], shown
    assert shown[read + 1:read + 3] == [f"{PREFIX} 1/2 radiomics: inputs: building the segments",
                                        f"{PREFIX} 2/2 radiomics: inputs: 2 segments built"], shown
    assert shown[read + 3] == f"{PREFIX} 0/2 radiomics: start", shown      # then the segments' bar, as before


def test_a_note_said_while_the_segments_are_built_is_a_line_of_its_own(small_phantom, tmp_path, monkeypatch,
                                                                        capsys):
    """A lung segment of a phantom label map too small for a lung is noted while the segments are built: its
    ``note:`` line stands alone beside the inputs' bar (a terminal's bar is cleared and drawn again under it)."""
    ct, _ = _inputs(small_phantom, tmp_path)
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    small = np.where(arr == L.RIGHT_LUNG, 0, arr).astype(arr.dtype)
    small[20, 40:44, 20:24] = L.RIGHT_LUNG                  # a 16-voxel "right lung": far under 500 ml
    mask = sitk.GetImageFromArray(small)
    mask.CopyInformation(small_phantom.labels)
    sitk.WriteImage(mask, str(tmp_path / "small.nii.gz"))
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")            # a bar drawn (stderr no terminal here: a log's records)
    from lungai.cli import main

    capsys.readouterr()
    rc = main(["radiomics", "--image", str(ct), "--mask", str(tmp_path / "small.nii.gz"), "--phantom-labels",
               "--segments", "right_lung", "--feature-classes", "firstorder", "-o", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "note: " in line and "right_lung" in line]
    assert rc == 0 and notes, err
    assert all(line.startswith("note: ") for line in notes), notes     # never glued to a bar's record


def test_an_rtstruct_folder_is_searched_as_a_step_of_the_inputs_bar(small_phantom, tmp_path, monkeypatch, capsys):
    """QA radfollow67: `lungai radiomics --rtstruct FOLDER` searched the folder (~1 s on LUNG1-003's export: its
    files opened, the RTSTRUCT of the CT chosen) before any bar; the search is the first step of the inputs' bar,
    the note naming the RTSTRUCT found a line of its own after it.  An RTSTRUCT file given is checked in that step."""
    import sys

    import lungai.dicom.discover as discover
    from lungai.dicom.synthetic import write_rt_study
    from lungai.progress import PREFIX

    study = write_rt_study(tmp_path / "export", small_phantom, "P1", dose=None)
    real = discover.find_rtstruct

    def find_rtstruct(*a, **k):
        print("MARK searching the folder", file=sys.stderr, flush=True)
        return real(*a, **k)

    monkeypatch.setattr(discover, "find_rtstruct", find_rtstruct)
    rc, lines = _run(["--image", study["ct"], "--rtstruct", study["root"], "--segments", "tumour",
                      "-o", tmp_path / "f.csv"], monkeypatch, capsys)
    assert rc == 0, lines
    shown = [line for line in lines if line.startswith(PREFIX) or line.startswith(("MARK", "note: --rtstruct"))]
    search = shown.index("MARK searching the folder")
    assert shown[:search] == [f"{PREFIX} 0/3 radiomics: inputs: start",
                              f"{PREFIX} 0/3 radiomics: inputs: finding the RTSTRUCT in the folder"], shown
    assert shown[search + 1].startswith("note: --rtstruct ") and "using the RTSTRUCT" in shown[search + 1], shown
    assert shown[search + 2:search + 6] == [f"{PREFIX} 1/3 radiomics: inputs: reading the CT", "MARK reading the CT",
                                            f"{PREFIX} 2/3 radiomics: inputs: building the segments",
                                            f"{PREFIX} 3/3 radiomics: inputs: 1 segment built"], shown
    rc, lines = _run(["--image", study["ct"], "--rtstruct", study["rtstruct"], "--segments", "tumour",
                      "-o", tmp_path / "g.csv"], monkeypatch, capsys)
    assert rc == 0, lines
    assert f"{PREFIX} 0/3 radiomics: inputs: checking the RTSTRUCT file" in lines, lines


def test_a_long_input_step_is_said_with_its_seconds(small_phantom, tmp_path, monkeypatch, capsys):
    """QA rad68: the inputs' bar stood on "building the segments" 3.2 s (LUNG1-003's DICOM CT + RTSTRUCT: its
    structures drawn onto the CT grid) to 4.3 s (LUNG1-002's NIfTI GTV and lung masks, load 9), with no line - the
    Lung Radiomics panel's bar as long (the rule: progress for anything over ~2 s).  Now the step's message is said
    again with its seconds every second while it runs (lungai.progress.timer_running), the CT's reading too; a
    quick step adds no line (test above)."""
    import time

    import lungai.radiomics.segments as S
    from lungai.progress import PREFIX

    real = S.segments_from_mask_file

    def slow(*args, **kwargs):          # a whole CT's masks: seconds
        time.sleep(2.4)
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "segments_from_mask_file", slow)
    ct, mask = _inputs(small_phantom, tmp_path)
    labels = ["--label", f"tumour={L.TUMOUR}"]
    rc, lines = _run(["--image", ct, "--mask", mask, *labels, "-o", tmp_path / "f.csv"], monkeypatch, capsys)
    assert rc == 0, lines
    for seconds in (1, 2):
        assert f"{PREFIX} 1/2 radiomics: inputs: building the segments ({seconds} s)" in lines, lines
    assert lines.index(f"{PREFIX} 2/2 radiomics: inputs: 1 segment built") > lines.index(
        f"{PREFIX} 1/2 radiomics: inputs: building the segments (2 s)")
