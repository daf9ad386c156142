"""``lungai dicom-export`` reads each CT slice's header once, its bar first (QA exportfollow67: LUNG1-003's 107 slices'
headers were read 858 times - the multi-frame check, the CT's header, the output-folder check, the CT reader's series
scan and slice-copy check, the series' references - ~2 s before the first bar appeared)."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import SimpleITK as sitk

from dicom_helpers import small_phantom


def _study(tmp_path):
    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    sitk.WriteImage(study["masks"]["GTV"], str(tmp_path / "tumor.nii.gz"))
    return study


def _bars_recorded(monkeypatch, events):
    """Each progress bar's start recorded in ``events`` as ("bar", desc), in order with the other events."""
    import lungai.progress

    real_task = lungai.progress.task

    @contextlib.contextmanager
    def task(desc, *args, **kwargs):
        events.append(("bar", desc))
        with real_task(desc, *args, **kwargs) as bar:
            yield bar

    monkeypatch.setattr(lungai.progress, "task", task)


def _counted(monkeypatch, events):
    """pydicom's parses counted, of each file (events: ("read", file) / ("bar", desc) in order): its
    ``read_partial``, which ``dcmread`` and lungai's partial reads (:func:`lungai.dicom.pixeldata.headers_once`'s
    header read) alike call; a read of one element only, up to it (:func:`lungai.dicom.pixeldata.header_value`:
    the output-folder check's StudyInstanceUID of the series' first file, a few hundred bytes) not counted."""
    import pydicom.filereader

    real = pydicom.filereader.read_partial

    def read_partial(fp, *args, **kwargs):
        name = getattr(fp, "name", None)
        if isinstance(name, (str, Path)) and len(kwargs.get("specific_tags") or ()) != 1:
            events.append(("read", Path(name).resolve()))
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_partial", read_partial)


def test_dicom_export_reads_each_ct_header_once_after_its_bar_appeared(tmp_path, monkeypatch):
    from lungai.cli import main

    study = _study(tmp_path)
    ct_files = sorted(p.resolve() for p in Path(study["ct"]).iterdir() if p.is_file())
    events: list = []
    _bars_recorded(monkeypatch, events)
    _counted(monkeypatch, events)
    assert main(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(tmp_path / "tumor.nii.gz"),
                 "-o", str(tmp_path / "out")]) == 0
    reads = Counter(f for what, f in events if what == "read" and f in set(ct_files))
    assert set(reads) == set(ct_files), reads
    # each slice: its header once (every check, the reader's scan, the series' references, the CT reader's check of
    # its pixel data: Testing/test_dicom_ct_read_once.py); was 8 reads a slice
    assert max(reads.values()) == 1, reads
    first_read = next(i for i, (what, f) in enumerate(events) if what == "read" and f in set(ct_files))
    assert ("bar", "dicom-export") in events[:first_read], events[:first_read + 1]


def test_dicom_export_tells_who_made_the_masks_after_its_bar_appeared(tmp_path, monkeypatch):
    """Whether lungai made the tumour and lung masks (their SEG / RTSTRUCT generation: a cohort patient's tumour read
    and digested, a user's file looked into as a DICOM SEG) was found before dicom-export's first bar (QA export69,
    LUNG1-003: up to 1 s of a shared machine with no bar); now on the bar, while each mask is read - and still said:
    the user's masks MANUAL, lungai's lungs AUTOMATIC."""
    import pydicom

    import lungai.dicom.export
    from lungai.cli import main
    from lungai.io.outputs import record_outputs

    study = _study(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    sitk.WriteImage(study["masks"]["GTV"], str(mine / "gtv.nii.gz"))              # the user's tumour
    lungs = sitk.Cast(study["masks"]["Lung_R"] + 2 * study["masks"]["Lung_L"], sitk.sitkUInt8)
    sitk.WriteImage(lungs, str(tmp_path / "lungs.nii.gz"))                         # `lungai lungs`' map, unchanged
    record_outputs(tmp_path, "lungs", [tmp_path / "lungs.nii.gz"])
    events: list = []
    _bars_recorded(monkeypatch, events)
    for name in ("tumour_made_by", "lungs_made_by"):
        real = getattr(lungai.dicom.export, name)
        monkeypatch.setattr(lungai.dicom.export, name,
                            lambda path, real=real, name=name: events.append((name, path)) or real(path))
    assert main(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(mine / "gtv.nii.gz"),
                 "--lungs", str(tmp_path / "lungs.nii.gz"), "-o", str(tmp_path / "out")]) == 0
    asked = [what for what, _ in events if what != "bar"]
    assert sorted(asked) == ["lungs_made_by", "tumour_made_by"], events
    assert events[0] == ("bar", "dicom-export"), events
    seg = pydicom.dcmread(tmp_path / "out" / "results.seg.dcm", stop_before_pixels=True)
    assert {str(s.SegmentLabel): str(s.SegmentAlgorithmType) for s in seg.SegmentSequence} == {
        "Tumour": "MANUAL", "Right lung": "AUTOMATIC", "Left lung": "AUTOMATIC"}


def test_headers_once_reads_a_file_again_when_it_changed(tmp_path, monkeypatch):
    """Within the block a file's header is read once, each caller its own copy; a file changed on disk is read
    again; outside the block each read reads the file."""
    from lungai.dicom.pixeldata import dcmread_lenient, headers_once

    study = _study(tmp_path)
    first = sorted(p for p in Path(study["ct"]).iterdir() if p.is_file())[0]
    events: list = []
    _counted(monkeypatch, events)
    with headers_once():
        a = dcmread_lenient(first, stop_before_pixels=True)
        b = dcmread_lenient(first, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        b.PatientID = "OTHER"
        assert a.PatientID == "P1" and b.SOPInstanceUID == a.SOPInstanceUID
        assert len(events) == 1
        full = dcmread_lenient(first)               # pixels too: read as asked
        assert "PixelData" in full and len(events) == 2
        data = first.read_bytes()
        first.write_bytes(data + b"\0\0")           # changed (its size): read again
        dcmread_lenient(first, stop_before_pixels=True)
        assert len(events) == 3
    dcmread_lenient(first, stop_before_pixels=True)
    dcmread_lenient(first, stop_before_pixels=True)
    assert len(events) == 5
