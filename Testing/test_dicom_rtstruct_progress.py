"""Writing an RTSTRUCT moves the bar at every tick (QA export68: ``lungai dicom-export --results`` of a lungai cohort
patient of LUNG1-003 - 3 GTVs and both lungs, 184 slices contoured - stood 4 s on "slices contoured 84/184" and 4 s on
"slices contoured 184/184" on a loaded machine: each mask's contours were made into pydicom's ContourData (its DS
values, lungai's own code) after all its slices were counted, and the UIDs' digest and the save came after the
count).  Each slice is counted once its contours are in the data set; the digest and the save are named and timed
while they run; the RTSTRUCT written is the same."""

from __future__ import annotations

import time

import pydicom
import pytest

from dicom_helpers import TimedBar, rt_study_masks

SLOW = 2.0          # seconds each slowed stage takes at least


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return rt_study_masks(tmp_path_factory.mktemp("rtbar"))



def test_a_slow_rtstruct_write_moves_the_bar_at_every_tick(study, tmp_path, monkeypatch):
    import lungai.dicom.rtstruct as rt

    ref, masks = study
    contours = max(len(rt.mask_contours(m)) for m in masks.values())
    real_values = rt._ds_values

    def slow_values(pts):       # each contour's DS values slow: a mask's take SLOW in all
        time.sleep(SLOW / contours)
        return real_values(pts)

    def slow(fn):
        def call(*args, **kwargs):
            time.sleep(SLOW)
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(rt, "_ds_values", slow_values)
    monkeypatch.setattr(pydicom, "dcmwrite", slow(pydicom.dcmwrite))
    bar = TimedBar()
    start = time.monotonic()
    path = rt.write_rtstruct(masks, ref, tmp_path / "rt.dcm", progress=bar)
    end = time.monotonic()
    assert end - start > 2 * SLOW
    times = [start] + [t for t, _, _ in bar.seen] + [end]
    gaps = [(b - a, bar.seen[i - 1][2] if i else None) for i, (a, b) in enumerate(zip(times, times[1:]))]
    # a tick every TICK; a loaded machine may hold the process back a second or more: still under SLOW (was 2 SLOW and
    # more behind one message)
    assert max(g for g, _ in gaps) < SLOW, max(gaps)
    assert all(n == 0 for _, n, _ in bar.seen)       # no step counted: the caller's
    messages = [m for _, _, m in bar.seen]
    assert all(m.startswith("writing DICOM RTSTRUCT: ") for m in messages), messages
    slices = sum(rt.contoured_slices(m) for m in masks.values())
    written = sum(len(rt.mask_contours(m)) for m in masks.values())
    assert messages[0] == f"{rt.RTSTRUCT_CONTOURING} 0/{slices}"
    assert f"{rt.RTSTRUCT_CONTOURING} {slices}/{slices}" in messages
    saving = rt.RTSTRUCT_SAVING.format(n=written, s="s")
    assert any(m.startswith(saving + " (") for m in messages), messages
    assert len(pydicom.dcmread(path).ROIContourSequence) == 3


def test_the_rtstruct_written_with_a_bar_is_the_one_written_without(study, tmp_path):
    from lungai.dicom.rtstruct import write_rtstruct

    ref, masks = study
    quiet = pydicom.dcmread(write_rtstruct(masks, ref, tmp_path / "a.dcm"))
    shown = pydicom.dcmread(write_rtstruct(masks, ref, tmp_path / "b.dcm", progress=TimedBar()))
    for ds in (quiet, shown):       # the time of writing
        for keyword in ("StructureSetDate", "StructureSetTime", "InstanceCreationDate", "InstanceCreationTime"):
            ds.pop(keyword, None)
    assert quiet.SOPInstanceUID == shown.SOPInstanceUID and quiet == shown
