"""Writing a DICOM SR moves the bar at every tick (QA export68: ``lungai dicom-export --results`` of a lungai cohort
patient of LUNG1-003, 538 measurements, stood 10 s on "the report of 538 measurements" and 5 s on "saving" on a
loaded machine; a ``--radiomics`` table of 851 features stood 3 s on "measurement group 1/2").  The time is
highdicom's (each Measurement, the group, the Comprehensive 3D SR with its evidence) and pydicom's (the file):
each is named on the bar, counted or timed, while it runs; the SR written is the same."""

from __future__ import annotations

import time

import pydicom
import pytest

from dicom_helpers import TimedBar, small_phantom

SLOW = 2.0          # seconds each slowed stage takes at least


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    root = tmp_path_factory.mktemp("srbar")
    st = write_rt_study(root / "dicom", small_phantom(7), "P1", dose=None)
    ref = ct_reference(st["ct"], image=read_ct(st["ct"]))
    seg = write_seg({"Tumour": st["masks"]["GTV"]}, ref, root / "t.seg.dcm", roles={"Tumour": "gtv"})
    return ref, seg


def _groups(n: int = 250):
    from lungai.dicom.sr import MeasurementGroup

    features = {f"wavelet-LLH_glcm_Feature{k:03d}": (0.5 + k, "1") for k in range(n)}
    return [MeasurementGroup("Tumour", {"volume_ml": (12.5, "ml"), **features}, segment_number=1, role="gtv"),
            MeasurementGroup("Case", {"confidence": (0.81, "1"), "needs_review": (0.0, "1")})]



def _slowed(monkeypatch):
    """highdicom's and pydicom's parts of an SR write made slow: each Measurement, the measurement group, the
    document, the file's write."""
    import highdicom as hd

    def slow(fn, seconds):
        def call(*args, **kwargs):
            time.sleep(seconds)
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(hd.sr, "Measurement", slow(hd.sr.Measurement, SLOW / 250))
    for name in ("VolumetricROIMeasurementsAndQualitativeEvaluations", "Comprehensive3DSR"):
        monkeypatch.setattr(hd.sr, name, slow(getattr(hd.sr, name), SLOW))
    monkeypatch.setattr(pydicom, "dcmwrite", slow(pydicom.dcmwrite, SLOW))


def test_a_slow_sr_write_moves_the_bar_at_every_tick(study, tmp_path, monkeypatch):
    from lungai.dicom.sr import read_sr, write_sr

    ref, seg = study
    _slowed(monkeypatch)
    bar = TimedBar()
    start = time.monotonic()
    path = write_sr(ref, tmp_path / "m.sr.dcm", _groups(), seg=seg, progress=bar)
    end = time.monotonic()
    assert end - start > 4 * SLOW
    times = [start] + [t for t, _, _ in bar.seen] + [end]
    gaps = [(b - a, bar.seen[i - 1][2] if i else None) for i, (a, b) in enumerate(zip(times, times[1:]))]
    # a tick every TICK; a loaded machine may hold the process back a second or more: still under SLOW (was 2 SLOW and
    # more behind one message)
    assert max(g for g, _ in gaps) < SLOW, max(gaps)
    assert all(n == 0 for _, n, _ in bar.seen)       # no step counted: the caller's
    messages = [m for _, _, m in bar.seen]
    assert all(m.startswith("writing DICOM SR: ") for m in messages), messages
    assert "writing DICOM SR: measurement group 1/2: measurement 0/251" in messages
    assert "writing DICOM SR: measurement group 1/2: measurement 251/251" in messages
    assert "writing DICOM SR: measurement group 2/2: measurement 2/2" in messages
    assert any(m.startswith("writing DICOM SR: the report of 253 measurements (") for m in messages), messages
    assert any(m.startswith("writing DICOM SR: saving 253 measurements (") for m in messages), messages
    assert len(read_sr(path)["Tumour"]) == 251


def test_the_sr_written_with_a_bar_is_the_one_written_without(study, tmp_path):
    from lungai.dicom.sr import write_sr

    ref, seg = study
    quiet = pydicom.dcmread(write_sr(ref, tmp_path / "a.sr.dcm", _groups(), seg=seg))
    shown = pydicom.dcmread(write_sr(ref, tmp_path / "b.sr.dcm", _groups(), seg=seg, progress=TimedBar()))
    for ds in (quiet, shown):       # the time of writing, highdicom's
        for keyword in ("ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime"):
            ds.pop(keyword, None)
        for item in ds.get("ContributingEquipmentSequence", []):
            item.pop("ContributionDateTime", None)
    assert quiet.SOPInstanceUID == shown.SOPInstanceUID and quiet == shown
