"""The DICOM objects of ``lungai segment`` / ``lungai dicom-export`` on the bar, one step each, and what their export
imports (QA dicomread65)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from dicom_helpers import small_phantom

REPO = Path(__file__).resolve().parents[1]


def _study(tmp_path):
    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    tumour = study["masks"]["GTV"]
    sitk.WriteImage(tumour, str(tmp_path / "tumor.nii.gz"))
    entropy = sitk.Cast(tumour, sitk.sitkFloat32) * 0.5
    sitk.WriteImage(entropy, str(tmp_path / "uncertainty.nii.gz"))
    return study


def test_the_dicom_export_bar_counts_each_object_written(tmp_path, monkeypatch, capsys):
    """QA dicomread65 (`lungai segment` on LUNG1-003): its DICOM SEG, RTSTRUCT, parametric map and SR were one step
    of the bar behind one message ("writing DICOM SEG / RTSTRUCT / map / SR", 6-10 s on a loaded machine).  Each object
    is a step now, named on the bar while it is written; ``lungai dicom-export`` alike."""
    from lungai.cli import main
    from lungai.progress import parse_line

    study = _study(tmp_path)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    out = tmp_path / "out"
    assert main(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(tmp_path / "tumor.nii.gz"),
                 "--uncertainty", str(tmp_path / "uncertainty.nii.gz"), "-o", str(out)]) == 0
    shown = [parse_line(line) for line in capsys.readouterr().err.splitlines() if parse_line(line)]
    texts = [text.removeprefix("dicom-export: ") for _, text in shown]
    wanted = ["writing DICOM SEG", "DICOM SEG written", "DICOM RTSTRUCT written", "writing DICOM parametric map",
              "DICOM parametric map written", "writing DICOM SR", "DICOM SR written"]
    assert [t for t in texts if t in wanted] == wanted, texts
    at = {t: f for f, t in ((f, t.removeprefix("dicom-export: ")) for f, t in shown)}
    steps = [at[t] for t in ("DICOM SEG written", "DICOM RTSTRUCT written", "DICOM parametric map written",
                             "DICOM SR written")]
    assert steps == sorted(steps) and len(set(steps)) == 4 and steps[-1] == 1.0, shown
    assert {p.name for p in out.glob("*.dcm")} == {"results.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm",
                                                  "measurements.sr.dcm"}


def test_export_results_names_each_object_while_it_is_written(tmp_path):
    """``export_results(progress=)``: RESULTS_STEPS steps; while the map is written the SEG and RTSTRUCT are there,
    the map not yet; an object not written (no map, nothing for an SR) passes its step."""
    from lungai.dicom.export import RESULTS_STEPS, export_results, reference_for
    from lungai.io import read_ct

    study = _study(tmp_path)
    ct = read_ct(study["ct"])
    reference = reference_for(study["ct"], ct)
    out = tmp_path / "out"

    class Seen:
        def __init__(self):
            self.done, self.log = 0, []

        def update(self, n=1, message=None):
            self.done += n
            self.log.append((self.done, message, sorted(p.name for p in out.glob("*.dcm"))))

    seen = Seen()
    tumour = study["masks"]["GTV"]
    written = export_results(reference, out, tumour=tumour, uncertainty=sitk.Cast(tumour, sitk.sitkFloat32) * 0.5,
                             progress=seen)
    assert len(written) == 4 and seen.done == RESULTS_STEPS
    (files,) = [f for _, m, f in seen.log if m == "writing DICOM parametric map"]
    assert files == ["results.seg.dcm", "rtstruct.dcm"], seen.log
    seen.done, seen.log = 0, []
    empty = sitk.Image(tumour.GetSize(), sitk.sitkFloat32)
    empty.CopyInformation(tumour)
    export_results(reference, tmp_path / "map_only", uncertainty=empty, progress=seen)
    assert seen.done == RESULTS_STEPS, seen.log


def test_an_export_without_radiomics_does_not_import_the_radiomics_package(tmp_path):
    """QA dicomread65: `lungai segment`'s DICOM export imported lungai.radiomics (its feature modules, scipy.signal
    ...) for a constant, with no radiomics to export - about 3 s of its export on a loaded machine, 0.6 s of CPU."""
    study = _study(tmp_path)
    code = f"""
import sys
import SimpleITK as sitk
from lungai.dicom.export import export_results, reference_for
from lungai.io import read_ct
ct = read_ct({str(study["ct"])!r})
tumour = sitk.ReadImage({str(tmp_path / "tumor.nii.gz")!r})
written = export_results(reference_for({str(study["ct"])!r}, ct), {str(tmp_path / "out")!r}, tumour=tumour)
assert len(written) == 3, written
print("radiomics imported:", "lungai.radiomics" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "radiomics imported: False" in run.stdout, run.stdout


def test_the_seg_and_sr_writes_name_their_stages_on_the_bar(tmp_path):
    """QA export67 (`lungai dicom-export --results` of a lungai cohort patient of LUNG1-003: GTVs, both lungs, 535
    radiomic features): "writing DICOM SEG" stood 3.5 s (5.5 s on a loaded machine) and "writing DICOM SR" 3 s (7 s),
    no progress for more than 2 s.  The bar now names the SEG's frames built and saved, and each SR measurement
    group (its measurements counted, then grouped: QA export68), the report made and saved, while they run (not yet
    on disk); no step more is counted.  (Each stage's time while it runs: Testing/test_dicom_sr_progress.py.)"""
    from lungai.dicom.export import RESULTS_STEPS, export_results, reference_for
    from lungai.io import read_ct

    study = _study(tmp_path)
    ct = read_ct(study["ct"])
    out = tmp_path / "out"
    log, done = [], []

    class Seen:
        def update(self, n=1, message=None):
            done.append(n)
            log.append((message, sorted(p.name for p in out.glob("*.dcm"))))

    tumour = study["masks"]["GTV"]
    volume_ml = float(sitk.GetArrayFromImage(tumour).sum()) * float(np.prod(tumour.GetSpacing())) / 1000.0
    info = {"confidence": 0.42, "needs_review": True, "review_threshold": 0.6, "tumour_volume_ml": volume_ml,
            "review_reasons": ["confidence below the review threshold"], "method": "ensemble", "members": 3}
    export_results(reference_for(study["ct"], ct), out, tumour=tumour, info=info, progress=Seen())
    assert sum(done) == RESULTS_STEPS
    texts = [m for m, _ in log]
    seg = [t for t in texts[texts.index("writing DICOM SEG") + 1:texts.index("DICOM SEG written")]
           if not t.endswith(" s)")]        # the frames' seconds said on a loaded machine (waiting)
    sr = texts[texts.index("writing DICOM SR") + 1:texts.index("DICOM SR written")]
    assert len(seg) == 3 and all(t.startswith("writing DICOM SEG: ") for t in seg), texts
    import re

    sr = [t for t in sr if not re.search(r" \(\d+ s\)$", t)]     # a stage timed on a loaded machine: said again
    assert all(t.startswith("writing DICOM SR: ") for t in sr), texts
    from lungai.dicom.seg import SEG_FRAMES, SEG_SAVING, SEG_SEGMENTS
    from lungai.dicom.sr import SR_DOCUMENT, SR_GROUP, SR_GROUPING, SR_MEASUREMENT, SR_SAVING

    assert seg[0] == SEG_SEGMENTS.format(n=1, s="") == "writing DICOM SEG: the slices of 1 segment", texts
    assert seg[1] == SEG_FRAMES.format(n=1, s="") == "writing DICOM SEG: the frames of 1 segment", texts
    assert seg[2].startswith(SEG_SAVING.split("{")[0]), texts
    groups = list(dict.fromkeys(re.match(r".*? group \d+/\d+", t).group(0) for t in sr
                                if t.startswith(SR_GROUP.split("{")[0])))
    assert groups == [SR_GROUP.format(i=i, n=len(groups)) for i in range(1, len(groups) + 1)] and len(groups) == 2, sr
    for group in groups:     # the tumour's volume; the case's confidence, review ...: counted, then grouped
        told = [t for t in sr if t.startswith(group + ": ")]
        size = int(told[0].rsplit("/", 1)[1])
        assert told[0] == f"{group}{SR_MEASUREMENT} 0/{size}" and told[-2] == f"{group}{SR_MEASUREMENT} {size}/{size}"
        assert told[-1] == group + SR_GROUPING.format(m=size, s="s" * (size != 1)), told
    measured = int(sr[-2].split(" of ")[1].split()[0])
    assert sr[-2:] == [SR_DOCUMENT.format(n=measured, s="s"), SR_SAVING.format(n=measured, s="s")] \
        and measured >= 3, sr
    saving = dict(log)
    assert "results.seg.dcm" not in saving[seg[2]] and "measurements.sr.dcm" not in saving[sr[-1]]


def test_the_seg_frames_say_their_seconds_while_highdicom_builds_them(tmp_path, monkeypatch):
    """QA seg68: `lungai segment` on LUNG1-003's DICOM CT (one tumour) - "writing DICOM SEG: the frames of 1 segment",
    one call of highdicom, stood 5.4 s of a loaded machine with no word.  The bar says its seconds while it runs
    (:func:`lungai.progress.waiting`), and the SEG is written as before."""
    import time

    import pydicom

    import lungai.dicom.seg as seg_module
    from lungai.dicom.export import reference_for
    from lungai.dicom.seg import SEG_FRAMES, write_seg
    from lungai.io import read_ct

    study = _study(tmp_path)
    ct = read_ct(study["ct"])
    real = seg_module._segmentation_with_overlap      # highdicom's Segmentation as write_seg makes it

    def slow(pixels, overlap):
        def make(*args, **kwargs):
            time.sleep(0.5)
            return real(pixels, overlap)(*args, **kwargs)
        return make

    monkeypatch.setattr(seg_module, "_segmentation_with_overlap", slow)
    said = []

    class Ticking:
        tick_interval = 0.05

        def update(self, n=1, message=None):
            said.append(message)

    path = write_seg({"GTV": study["masks"]["GTV"]}, reference_for(study["ct"], ct), tmp_path / "x.seg.dcm",
                     progress=Ticking())
    frames = SEG_FRAMES.format(n=1, s="")
    assert f"{frames} (0 s)" in said, said
    assert said.index(frames) < said.index(f"{frames} (0 s)") < len(said) - 1     # then "saving ... frames"
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and int(ds.NumberOfFrames) >= 1


def test_the_seg_segments_slices_say_their_seconds_before_highdicom(tmp_path, monkeypatch):
    """QA exportfollow70: `lungai segment` on LUNG1-003's DICOM CT - "writing DICOM SEG" stood 0.9 s (3.9 s on a
    loaded machine) with no word while the masks' slices were taken and digested for the UIDs (highdicom's import
    with them) before "the frames of 1 segment".  That stage is named and says its seconds while it runs: taking
    the slices here waits until the bar has said the stage's seconds (an event, not a time), then goes on."""
    import threading

    import pydicom

    import lungai.dicom.seg as seg_module
    from lungai.dicom.export import reference_for
    from lungai.dicom.seg import SEG_FRAMES, write_seg
    from lungai.io import read_ct

    study = _study(tmp_path)
    ct = read_ct(study["ct"])
    stage = "writing DICOM SEG: the slices of 1 segment"       # SEG_SEGMENTS
    ticked, seen = threading.Event(), []
    real = seg_module.mask_slab

    def waits_for_a_tick(array):
        seen.append(ticked.wait(20))        # set as soon as the bar says the stage's seconds
        return real(array)

    monkeypatch.setattr(seg_module, "mask_slab", waits_for_a_tick)
    said = []

    class Ticking:
        tick_interval = 0.05

        def update(self, n=1, message=None):
            said.append(message)
            if message and message.startswith(stage + " ("):
                ticked.set()

    path = write_seg({"GTV": study["masks"]["GTV"]}, reference_for(study["ct"], ct), tmp_path / "x.seg.dcm",
                     progress=Ticking())
    assert seen == [True], said
    assert seg_module.SEG_SEGMENTS.format(n=1, s="") == stage
    assert said[0] == stage and said.index(SEG_FRAMES.format(n=1, s="")) > said.index(f"{stage} (0 s)"), said
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and int(ds.NumberOfFrames) >= 1


def test_dicom_export_names_the_results_read_and_checked_after_the_ct(tmp_path, monkeypatch, capsys):
    """QA export67 (`lungai dicom-export --results` of a lungai cohort patient of LUNG1-003): the bar stood on "CT read"
    2.4 s (6.3 s on a loaded machine) while the radiomics table, masks and map were read and checked; each is named
    now, the checks after them, before "writing DICOM SEG" - with no step more counted."""
    from lungai.cli import main
    from lungai.progress import parse_line

    study = _study(tmp_path)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(tmp_path / "tumor.nii.gz"),
                 "--uncertainty", str(tmp_path / "uncertainty.nii.gz"), "-o", str(tmp_path / "out")]) == 0
    shown = [parse_line(line) for line in capsys.readouterr().err.splitlines() if parse_line(line)]
    texts = [text.removeprefix("dicom-export: ") for _, text in shown]
    between = texts[texts.index("CT read") + 1:texts.index("writing DICOM SEG")]
    # each check named after "checking the results: ", its seconds said while it runs (QA exportfollow68)
    named = [t for t in between if not re.search(r" \(\d+ s\)$", t)]
    assert named == ["reading the uncertainty map", "reading the tumour mask", "checking the results",
                     "checking the results: the masks' segments", "checking the results: what the export leaves out",
                     "checking the results: the segments"], texts
    fractions = {f for (f, _), t in zip(shown, texts) if t in between or t == "CT read"}
    assert len(fractions) == 1, shown


def test_segment_on_a_dicom_ct_says_its_series_checks_and_its_read_while_they_run(tmp_path, monkeypatch, capsys):
    """QA segfollow68: `lungai segment` on LUNG1-003's DICOM CT (107 slices) drew its first line ("start") ~4 s after
    the command on a shared machine - the series' header scan (the multi-frame and output-folder checks) ran before
    the bar - and "reading the CT" stood 3 s with no word.  The checks run on the bar now (still before any work: the
    model is not loaded, nothing written), each long call saying its seconds (lungai.progress.waiting); the outputs
    are as before."""
    import time

    import lungai.dicom.reference as reference
    import lungai.io as lungai_io
    import lungai.progress as progress
    from seg_helpers import stubbed_segment

    from lungai.cli import main
    from lungai.progress import parse_line
    from lungai.seg.infer import SegResult

    study = _study(tmp_path)
    stubbed_segment(tmp_path, monkeypatch)          # the tiny model tmp_path / "m"
    tumour = sitk.Cast(study["masks"]["GTV"], sitk.sitkUInt8)
    maps = sitk.Cast(tumour, sitk.sitkFloat32) * 0.5
    ml = float(sitk.GetArrayFromImage(tumour).sum()) * float(np.prod(tumour.GetSpacing())) / 1000
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumour_volume_ml": ml, "n_components": 1, "method": "mc-dropout", "members": 1, "mc_passes": 2,
            "calibrated": False, "notes": []}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour",
                        lambda *a, **k: SegResult(tumour, maps, maps, None, dict(info)))
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.05)
    order = []

    def slow(real, what):
        def call(*args, **kwargs):
            time.sleep(0.4)
            order.append(what)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(reference, "multiframe_ct", slow(reference.multiframe_ct, "scan"))
    monkeypatch.setattr(lungai_io, "read_ct", slow(lungai_io.read_ct, "read"))
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    out = tmp_path / "out"
    assert main(["segment", str(study["ct"]), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]) == 0
    texts = [parse_line(line)[1].removeprefix("segment: ") for line in capsys.readouterr().err.splitlines()
             if parse_line(line)]
    assert order == ["scan", "read"]
    checking = "checking the CT series: its files' headers"
    assert texts[0] == "start" and texts[1] == checking, texts
    assert f"{checking} (0 s)" in texts and texts.index(f"{checking} (0 s)") < texts.index(
        "loading the model: torch and MONAI"), texts
    assert "reading the CT (0 s)" in texts and texts.index("reading the CT") < texts.index("reading the CT (0 s)") \
        < texts.index("read"), texts
    assert {p.name for p in out.glob("*.dcm")} == {"tumor.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm",
                                                  "measurements.sr.dcm"}
    # refused as before: an output into the CT series' own folder, before any work and with nothing written there
    series = Path(study["ct"])
    n_files = len(list(series.iterdir()))
    assert main(["segment", str(series), "-o", str(series), "--model", str(tmp_path / "m"), "--whole"]) == 2
    err = capsys.readouterr().err
    assert "refusing to write DICOM results into the CT series folder" in err and "loading the model" not in err
    assert len(list(series.iterdir())) == n_files
