"""``lungai segment`` writes its float32 maps (probability, uncertainty, mutual information) with their NIfTI
description without copying them: a described copy of each map (4 bytes a voxel of the whole CT) set the command's
peak memory on thin-slice CTs (3.3 GB on LUNG1-002 resampled to 512 x 512 x 551 at 0.6 mm)."""

from __future__ import annotations

import time

import numpy as np
import SimpleITK as sitk
from seg_helpers import stubbed_segment, tiny_config

from lungai.cli import main
from lungai.seg.uncertainty import ENTROPY_MEANING, MI_MEANING, PROBABILITY_MEANING, described, description


def _address(img: sitk.Image) -> int:
    return sitk.GetArrayViewFromImage(img).__array_interface__["data"][0]


def test_describe_gives_the_image_itself_its_description_for_the_block():
    from lungai.seg.uncertainty import describe

    img = sitk.GetImageFromArray(np.full((4, 5, 6), 0.25, np.float32))
    before = _address(img)
    with describe(img, MI_MEANING) as same:
        assert same is img and _address(img) == before                  # no copy of its voxels
        assert description(img) == f"{MI_MEANING}, bit"
    assert description(img) == "" and _address(img) == before           # its own metadata back
    img.SetMetaData("ITK_FileNotes", "mine")
    with describe(img):
        assert description(img) == f"{ENTROPY_MEANING}, bit"
    assert description(img) == "mine"
    other = sitk.GetImageFromArray(np.zeros((2, 3, 4), np.float32))
    copy = described(other)                                             # the copy: the image given is not changed
    assert description(copy) == f"{ENTROPY_MEANING}, bit" and description(other) == ""


def test_segment_writes_its_maps_without_a_copy(tmp_path, monkeypatch):
    from lungai.seg.infer import SegResult
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network
    import lungai.io as io

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    rng = np.random.default_rng(0)
    hu = rng.normal(-700.0, 50.0, (24, 40, 40)).astype(np.int16)
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    gtv = np.zeros(hu.shape, np.uint8)
    gtv[8:16, 15:25, 15:25] = 1

    def image(arr):
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(ct)
        return img

    maps = {"probability": image(gtv.astype(np.float32) * 0.9), "uncertainty": image(gtv.astype(np.float32) * 0.4),
            "mutual_information": image(gtv.astype(np.float32) * 0.1)}
    addresses = {name: _address(img) for name, img in maps.items()}
    info = {"confidence": 0.9, "needs_review": False, "review_reasons": [], "review_threshold": 0.5,
            "tumor_volume_ml": float(gtv.sum()) / 1000, "n_components": 1, "method": "mc-dropout", "members": 1,
            "mc_passes": 2, "calibrated": False, "notes": []}
    monkeypatch.setattr("lungai.seg.infer.segment_tumour", lambda *a, **k: SegResult(
        image(gtv), maps["probability"], maps["uncertainty"], maps["mutual_information"], info))
    written = {}
    real_write = io.write_image

    def write_image(img, path, *a, **k):
        written[str(path).rsplit("/", 1)[-1].split(".")[0]] = _address(img)
        return real_write(img, path, *a, **k)

    monkeypatch.setattr(io, "write_image", write_image)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(out), "--model", str(tmp_path / "m"),
                 "--whole"]) == 0
    for name, address in addresses.items():
        assert written[name] == address, f"{name}.nii.gz was written from a copy of the map"
    assert description(sitk.ReadImage(str(out / "probability.nii.gz"))) == f"{PROBABILITY_MEANING}, 1"
    assert description(sitk.ReadImage(str(out / "uncertainty.nii.gz"))) == f"{ENTROPY_MEANING}, bit"
    assert description(sitk.ReadImage(str(out / "mutual_information.nii.gz"))) == f"{MI_MEANING}, bit"
    assert all(description(img) == "" for img in maps.values())        # the result's images as they were
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "uncertainty.nii.gz"))),
                          gtv.astype(np.float32) * np.float32(0.4))


def test_segment_names_each_file_on_the_bar_while_it_writes_it(tmp_path, monkeypatch):
    """QA segprog64: `lungai segment` wrote its maps behind the step before ("mapped to input grid": 4.3 s on
    LUNG1-003, 2.7 s on LUNG1-002) and its DICOM objects behind "written" (6.4 s) - the bar and the Slicer panel's
    LUNGAI_PROGRESS lines said nothing of it.  Each file is named on the bar while it is written."""
    import lungai.io as io
    from lungai import progress
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    cfg = tiny_config(members=1, dropout=0.1)
    save_model(tmp_path / "m", cfg, [build_network(cfg).state_dict()], {})
    hu = np.random.default_rng(0).normal(-700.0, 50.0, (24, 40, 40)).astype(np.int16)
    ct = sitk.GetImageFromArray(hu)
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    shown, at_write = [], {}
    real_emit, real_write = progress._LineProgress._emit, io.write_image

    def emit(self, message):
        shown.append(message)
        return real_emit(self, message)

    def write_image(img, path, *a, **k):
        at_write[path.name] = shown[-1]
        return real_write(img, path, *a, **k)

    import lungai.model_files as model_files      # segment's result.json writer (the bar drawn before torch)

    real_json = model_files.write_json

    def write_json(path, *a, **k):
        at_write[path.name] = shown[-1]
        return real_json(path, *a, **k)

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    monkeypatch.setattr(progress._LineProgress, "_emit", emit)
    monkeypatch.setattr(io, "write_image", write_image)
    monkeypatch.setattr(model_files, "write_json", write_json)
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m"),
                 "--whole"]) == 0
    assert set(at_write) >= {"tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "mutual_information.nii.gz",
                             "result.json"}, at_write
    assert all(name in message for name, message in at_write.items()), at_write


def _slow_partial_writes(monkeypatch, seconds: float) -> list:
    """Each image write of lungai.io.write (to its ``.partial-*`` file) takes ``seconds`` more, the partial file on
    disk meanwhile, as a whole CT's float map on a loaded machine: the names written, in order."""
    import SimpleITK as sitk    # lungai.io.write imports it when it writes (QA notesfollow71): patch the module's own

    real, names = sitk.WriteImage, []

    def slow(img, path, *a, **k):
        result = real(img, path, *a, **k)
        names.append(path.rsplit("/", 1)[-1])
        time.sleep(seconds)
        return result

    monkeypatch.setattr(sitk, "WriteImage", slow)
    return names


def test_segment_says_the_seconds_while_a_map_is_written(tmp_path, monkeypatch):
    """QA seg68: each float map of a whole CT (probability, uncertainty, mutual information) takes 1-2 s to write
    (more on a loaded machine) behind one message "writing <name>": the bar and the Slicer panel's LUNGAI_PROGRESS
    lines stood still.  Each write runs beside the bar, which says its seconds (:func:`lungai.progress.waiting`)."""
    from lungai import progress

    ct, _ = stubbed_segment(tmp_path, monkeypatch)
    _slow_partial_writes(monkeypatch, 0.4)
    shown = []
    real_emit = progress._LineProgress._emit
    monkeypatch.setattr(progress._LineProgress, "_emit", lambda self, m: shown.append(m) or real_emit(self, m))
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.05)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m"), "--whole"]) == 0
    for name in ("tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "mutual_information.nii.gz"):
        assert f"writing {name} (0 s)" in shown, (name, shown)


def test_segment_maps_written_beside_the_bar_are_those_written_directly(tmp_path, monkeypatch):
    """The maps written in a worker beside the bar are, byte for byte, the files the same images give written
    directly (with their NIfTI description), as before."""
    from lungai.io import write_image
    from lungai.seg.uncertainty import ENTROPY_UNIT, PROBABILITY_UNIT, describe

    ct, maps = stubbed_segment(tmp_path, monkeypatch)
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]) == 0
    direct = tmp_path / "direct"
    for name, meaning, unit in (("probability", PROBABILITY_MEANING, PROBABILITY_UNIT),
                                ("uncertainty", ENTROPY_MEANING, ENTROPY_UNIT),
                                ("mutual_information", MI_MEANING, ENTROPY_UNIT)):
        with describe(maps[name], meaning, unit) as img:
            write_image(img, direct / f"{name}.nii.gz")
        assert (out / f"{name}.nii.gz").read_bytes() == (direct / f"{name}.nii.gz").read_bytes(), name


def test_a_ctrl_c_while_segment_writes_a_map_leaves_no_partial_copy(tmp_path, monkeypatch):
    """A Ctrl-C while a map is written (the bar's tick raising it, as a signal does in the main thread) waits for the
    write (``finish_on_stop``): the command says it was cancelled and no ``.partial-*`` file of the patient's map is
    left in the output folder (a daemon worker abandoned at the interpreter's exit never runs its clean-up)."""
    from lungai import progress

    ct, _ = stubbed_segment(tmp_path, monkeypatch)
    names = _slow_partial_writes(monkeypatch, 0.5)
    real_emit = progress._LineProgress._emit

    def emit(self, message):
        if message.startswith("writing uncertainty.nii.gz ("):
            raise KeyboardInterrupt
        return real_emit(self, message)

    monkeypatch.setattr(progress._LineProgress, "_emit", emit)
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.05)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]) == 130
    assert any(n.startswith(".partial-") for n in names), names          # the stop came while the map was written
    left = [p.name for p in out.iterdir()] if out.exists() else []
    assert not [n for n in left if n.startswith(".partial-")], left
    assert "mutual_information.nii.gz" not in left and "result.json" not in left, left


def test_a_ctrl_c_while_the_writers_thread_starts_leaves_no_partial_copy(tmp_path, monkeypatch):
    """QA seg69 (lungai segment on LUNG1-003's DICOM series, a loaded machine, SIGINT as "writing
    uncertainty.nii.gz" was shown): the command said "cancelled" and left ``.partial-2f3d1513c3d71a56.nii.gz`` - the
    patient's whole uncertainty map (473 kB) - in the output folder, and no uncertainty.nii.gz.  The Ctrl-C came
    while ``waiting`` started its worker (``Thread.start`` waits for the new thread to begin: on a loaded machine the
    longest wait there), before its stop handling: the worker, a daemon, went on writing and was killed at the
    interpreter's exit before its clean-up.  A stop there is waited for too (``finish_on_stop``)."""
    import threading

    from lungai import progress

    ct, _ = stubbed_segment(tmp_path, monkeypatch)
    names = _slow_partial_writes(monkeypatch, 0.5)
    real_emit, real_start, shown = progress._LineProgress._emit, threading.Thread.start, []

    def emit(self, message):
        shown.append(message)
        return real_emit(self, message)

    def start(self):        # the signal lands while start() waits for the thread it launched
        real_start(self)
        if self.name == "lungai-waiting" and shown and shown[-1] == "writing uncertainty.nii.gz":
            raise KeyboardInterrupt

    monkeypatch.setattr(progress._LineProgress, "_emit", emit)
    monkeypatch.setattr(threading.Thread, "start", start)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]) == 130
    # the command returned: no write runs on (at a real command's exit it would be killed before its clean-up)
    running = [t.name for t in threading.enumerate() if t.name == "lungai-waiting" and t.is_alive()]
    left = [p.name for p in out.iterdir()] if out.exists() else []
    assert not running, (running, left)
    assert "writing uncertainty.nii.gz" in shown, shown
    assert any(n.startswith(".partial-") for n in names), names          # the stopped write had begun
    assert not [n for n in left if n.startswith(".partial-")], left
    assert "mutual_information.nii.gz" not in left and "result.json" not in left, left


def test_a_real_ctrl_c_while_a_write_runs_waits_for_it():
    """QA seg69: a SIGINT (Ctrl-C) while ``waiting`` waited for a writing call (``finish_on_stop``) left the write
    running: Python 3.11's ``Thread.join`` interrupted by the signal marks the running thread as ended (its bpo-45274
    clean-up), so the second join that was to wait for the write returned at once, and the command exited with the
    write's ``.partial-*`` copy of the patient's map left behind (3 SIGINTs at "writing uncertainty.nii.gz" on
    LUNG1-003: 1 partial left, 2 maps never written).  The call has ended when the stop reaches the caller."""
    import signal
    import threading

    import pytest

    from lungai.progress import waiting

    class Bar:
        tick_interval = 0.5

        def update(self, n=1, message=None):
            pass

    finished = []

    def write():
        # the Ctrl-C once the write runs (not on a timer: on a loaded machine a timer's signal could come before
        # waiting() was entered - the lead's fresh-clone run); the main thread gets it, waiting for the write
        time.sleep(0.2)
        # to the main thread itself (a process-directed one may be taken by another thread - Dask's, left by an
        # earlier test - and reach the main thread only once it wakes: under the fresh-clone run's load, too late)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(1.0)
        finished.append(True)

    # Python's own Ctrl-C handling in this thread, whatever an earlier test of the session left (the fresh-clone run's
    # second half: the SIGINT never came as a KeyboardInterrupt here, "DID NOT RAISE"; alone it passes)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt):
            waiting(Bar(), "writing uncertainty.nii.gz", write, finish_on_stop=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert finished, "the write still ran when the stop reached the caller"
    for t in threading.enumerate():      # its call has ended: the thread ends with it (given a moment under load)
        if t.name == "lungai-waiting":
            t.join(5)
    assert not [t for t in threading.enumerate() if t.name == "lungai-waiting" and t.is_alive()]


def test_a_ctrl_c_while_segment_writes_says_what_it_left(tmp_path, monkeypatch, capsys):
    """QA seg72: LUNG1-003 cancelled (Ctrl-C) while ``lungai segment`` wrote uncertainty.nii.gz left tumor.nii.gz and
    two maps without result.json (no confidence, no review flag) - the previous run's results removed - and said only
    "lungai segment: cancelled".  The cancel now names the files of this run, says result.json was not written and
    that they are not to be used, the previous results removed, and the fix (run again); a cancel before any result
    is written says nothing more (the folder as it was)."""
    from lungai.seg import uncertainty

    ct, _ = stubbed_segment(tmp_path, monkeypatch)
    out = tmp_path / "out"
    args = ["segment", str(ct), "-o", str(out), "--model", str(tmp_path / "m"), "--whole"]
    assert main(args) == 0                                          # a previous, whole run
    capsys.readouterr()
    real = uncertainty.describe

    def describe(img, meaning=ENTROPY_MEANING, *rest):
        if meaning == ENTROPY_MEANING:                               # uncertainty.nii.gz: stopped before it
            raise KeyboardInterrupt
        return real(img, meaning, *rest)

    monkeypatch.setattr(uncertainty, "describe", describe)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["probability.nii.gz",
                                                                                   "tumor.nii.gz"]
    assert f"cancelled; the run stopped while writing its results: tumor.nii.gz, probability.nii.gz in {out} are " \
           "of this run, but its result.json (the confidence and the review flag) was not written: do not use them" \
           in err, err
    assert "the previous results there were removed (" in err and "result.json" in err.split("removed (")[1], err
    assert "run the command again" in err, err
    # stopped before any result was written (while the model ran): the folder as it was, no word on its files
    monkeypatch.setattr("lungai.seg.infer.segment_tumour", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "cancelled" in err and "stopped while writing" not in err, err
