"""Follow-ups of ``lungai lungs``' refusal of a lung given as the GTV (QA lungsfollow71).

- ``dose-features --rtstruct RS --gtv Lung_R`` ran (exit 0): "minus GTV: RTSTRUCT structure Lung_R + GTV", the MLD
  (1.03 Gy) of the left lung only and the "GTV dose" the right lung's; ``radiomics --rtstruct RS --tumour Lung_L``
  took the left lung as the tumour.  Both are refused with the arguments (:func:`lungai.dicom.masks.check_gtv_spec`),
  before anything is loaded or read.
- ``lungai lungs`` stood 2-6 s on "lungs: 0/11 [00:00]" while LUNG1-003's DICOM CT and RTSTRUCT were read: "reading
  the CT" / "reading the GTVs" are said, then with their seconds (:func:`lungai.progress.timer_running`).
- ``lungai lungs`` ignored ``--allow-gaps`` without ``--rtstruct`` and ``--structure-map`` with no GTV given (or a
  label map's, whose labels have no names), and told ``--gtv GTV-1`` without ``--rtstruct`` "does not exist - check
  the path".
- A label map's missing label (LUNG1-002's ``--gtv labels#1,2``: labels 1 GTV, 3 and 4 the lungs) was told "e.g.
  labels#1,3", the GTV joined with the right lung.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The small phantom's DICOM CT, RTSTRUCT (GTV, Lung_R, Lung_L) and RTDOSE."""
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import write_rt_study

    return write_rt_study(tmp_path_factory.mktemp("follow") / "dicom", small_phantom(7), "P1", dose="relative")


def _no_read(monkeypatch, calls):
    """Nothing loaded or read: dose-features' modules, any CT."""
    import lungai.cli.dose
    import lungai.io

    monkeypatch.setattr(lungai.cli.dose, "_load", lambda: calls.append("load"))
    monkeypatch.setattr(lungai.io, "read_ct", lambda *a, **k: calls.append("read_ct"))


def test_dose_features_refuses_a_lung_as_the_gtv_before_any_work(study, tmp_path, capsys, monkeypatch):
    from lungai.cli import main

    calls: list = []
    _no_read(monkeypatch, calls)
    out = tmp_path / "dose.csv"
    capsys.readouterr()
    assert main(["dose-features", "--dose", str(study["dose"]), "--ct", str(study["ct"]), "--rtstruct",
                 str(study["rtstruct"]), "--gtv", "Lung_R", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--gtv 'Lung_R' is a lung (role lung_right), not a GTV" in err, err
    assert "How to fix: give the GTV: role:gtv" in err and "--structure-map ('Lung_R: gtv')" in err, err
    assert calls == [] and not out.exists()


def test_dose_features_takes_a_lung_named_structure_mapped_as_a_gtv(study, tmp_path):
    """The map's line is the user's word: the check lets it pass (what the fix says to do)."""
    import argparse

    from lungai.cli import dose

    mapping = tmp_path / "map.yaml"
    mapping.write_text("'Lung_R': gtv\n")
    parser = argparse.ArgumentParser(allow_abbrev=False)
    dose.register(parser.add_subparsers())
    args = parser.parse_args(["dose-features", "--dose", str(study["dose"]), "--ct", str(study["ct"]), "--rtstruct",
                              str(study["rtstruct"]), "--gtv", "Lung_R", "--structure-map", str(mapping),
                              "-o", str(tmp_path / "d.csv")])
    dose.check_arguments(args)
    dose.check_paths(args)          # no error


def test_radiomics_refuses_a_lung_as_the_tumour_before_reading(study, tmp_path, capsys, monkeypatch):
    from lungai.cli import main

    calls: list = []
    _no_read(monkeypatch, calls)
    capsys.readouterr()
    assert main(["radiomics", "--image", str(study["ct"]), "--rtstruct", str(study["rtstruct"]), "--tumour",
                 "Lung_L", "-o", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "--tumour 'Lung_L' is a lung (role lung_left), not a GTV" in err, err
    assert "(--tumour GTV-1)" in err, err
    assert calls == []


def test_lungs_says_its_reads_with_their_seconds(study, tmp_path, capsys, monkeypatch):
    """Each read said as it starts, then with its seconds while it runs: the read of the CT and of the GTVs each wait
    here until their "(<seconds> s)" line was written (an event, not a timer)."""
    import lungai.cli.lungs as L
    import lungai.io
    from lungai import progress
    from lungai.cli import main

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.02)
    said = {"reading the CT": threading.Event(), "reading the GTVs": threading.Event()}
    timed_real = progress._LineProgress._timed

    def timed(self, message, seconds):
        timed_real(self, message, seconds)
        if message in said and self.desc == "lungs":
            said[message].set()

    monkeypatch.setattr(progress._LineProgress, "_timed", timed)
    read_ct, read_gtvs = lungai.io.read_ct, L.read_gtvs
    waited = {}

    def slow_ct(*args, **kwargs):
        waited["reading the CT"] = said["reading the CT"].wait(5)
        return read_ct(*args, **kwargs)

    def slow_gtvs(*args, **kwargs):
        waited["reading the GTVs"] = said["reading the GTVs"].wait(5)
        return read_gtvs(*args, **kwargs)

    monkeypatch.setattr(lungai.io, "read_ct", slow_ct)
    monkeypatch.setattr(L, "read_gtvs", slow_gtvs)
    capsys.readouterr()
    assert main(["lungs", str(study["ct"]), "--rtstruct", str(study["rtstruct"]), "--no-dicom",
                 "-o", str(tmp_path / "lungs.nii.gz")]) == 0
    lines = [line.split(": ", 1)[1] for line in capsys.readouterr().err.splitlines()
             if line.startswith(f"{progress.PREFIX} ") and " lungs: " in line]
    assert waited == {"reading the CT": True, "reading the GTVs": True}, lines
    assert lines.index("reading the CT") < lines.index("reading the GTVs") < lines.index("read"), lines
    assert any(line.startswith("reading the CT (") for line in lines), lines


@pytest.mark.parametrize("extra, problem, fix", [
    (["--allow-gaps"], "--allow-gaps is for --rtstruct's contours", "give --rtstruct FILE|FOLDER, or leave out "
                                                                    "--allow-gaps"),
    (["--structure-map", "MAP"], "--structure-map gives roles to the names of --rtstruct's structures or of a --gtv "
                                 "DICOM SEG's segments; with neither", "or leave out --structure-map"),
    (["--gtv", "LABELS#1", "--structure-map", "MAP"], "labels.nii.gz#1 is a label map, whose labels have none: the "
                                                       "map would be ignored", "and leave out --structure-map"),
    (["--gtv", "GTV-1"], "--gtv 'GTV-1' is not a file, and a structure's name (or role:ROLE) needs --rtstruct",
     "give the RTSTRUCT that holds it: --rtstruct FILE|FOLDER --gtv GTV-1"),
    (["--gtv", "Primary tumour"], "--gtv 'Primary tumour' is not a file", "--gtv 'Primary tumour' (or --rtstruct "
                                                                          "alone"),
])
def test_lungs_refuses_rtstruct_options_without_rtstruct(study, tmp_path, capsys, monkeypatch, extra, problem, fix):
    from lungai.cli import main

    calls: list = []
    _no_read(monkeypatch, calls)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("'Primary tumour': gtv\n")
    labels = tmp_path / "labels.nii.gz"
    labels.write_bytes(b"")                     # never read
    extra = [str(mapping) if e == "MAP" else e.replace("LABELS", str(labels)) for e in extra]
    capsys.readouterr()
    assert main(["lungs", str(study["ct"]), *extra, "--no-dicom", "-o", str(tmp_path / "lungs.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert problem in err and fix in err, err
    assert calls == []


def test_a_gtv_file_that_is_not_there_is_still_a_path(study, tmp_path, capsys):
    from lungai.cli import main

    capsys.readouterr()
    assert main(["lungs", str(study["ct"]), "--gtv", str(tmp_path / "gtv.nii.gz"), "--no-dicom",
                 "-o", str(tmp_path / "lungs.nii.gz")]) == 2
    assert "gtv.nii.gz does not exist" in capsys.readouterr().err


def test_a_missing_label_is_not_told_to_join_the_gtv_with_a_lung(tmp_path):
    """LUNG1-002's labels: 1 the GTV, 3 the right lung, 4 the left lung; ``#1,2`` asked for."""
    from lungai.errors import InputError
    from lungai.io import read_mask

    arr = np.zeros((4, 6, 6), np.uint8)
    arr[1, 1:3, 1:3], arr[1:3, 3:, :3], arr[1:3, 3:, 3:] = 1, 3, 4
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    with pytest.raises(InputError, match="has no label '2'; its labels: 1, 3, 4") as err:
        read_mask(f"{path}#1,2")
    assert f"e.g. {path}#1, " in err.value.fix, err.value.fix
    assert "#1,3" not in err.value.fix and "#3,4" not in err.value.fix, err.value.fix
    assert f"{path}#N,M for its labels N and M" in err.value.fix, err.value.fix
