"""Cohort batch: Dask (local cluster and given scheduler), resume, failing case, same values as a loop."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from lungai.errors import InputError, InputNote, counted
from lungai.radiomics import load_params
from lungai.radiomics.batch import run_batch
from lungai.radiomics.manifest import read_manifest, write_synthetic_cohort

PARAMS = load_params("default", feature_classes=["firstorder", "shape"])
SEGMENTS = ["tumour", "lungs_minus_tumour"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    manifest = write_synthetic_cohort(folder, 3, seed=5)
    df = pd.read_csv(manifest, dtype=str)
    broken = {"case": "broken", "image": "nowhere/ct.nii.gz", "mask": "nowhere/labels.nii.gz", "phantom": "1"}
    pd.concat([df, pd.DataFrame([broken])]).to_csv(manifest, index=False)
    return manifest


def test_loop_resume_and_failure(cohort, tmp_path):
    out = tmp_path / "f.csv"
    s = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert sorted(s.done) == ["synth005_000", "synth005_001", "synth005_002"]
    assert [c for c, _ in s.failed] == ["broken"] and "does not exist" in s.failed[0][1]
    table = pd.read_csv(out)
    assert set(table.case) == set(s.done) and set(table.segment) == set(SEGMENTS)
    errors = pd.read_csv(tmp_path / "f_errors.csv")
    assert errors.case.tolist() == ["broken"]
    settings = pd.read_csv(tmp_path / "f_settings.csv")  # grid and settings per case and segment
    assert len(settings) == 3 * len(SEGMENTS) and set(settings.case) == set(s.done)
    assert set(settings[settings.segment == "lungs_minus_tumour"].spacing_mm) == {"2 x 2 x 2"}
    part = tmp_path / "f.csv.parts" / "synth005_000.csv"
    stamp = part.stat().st_mtime_ns
    again = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert sorted(again.skipped) == sorted(s.done) and again.done == [] and len(again.failed) == 1
    assert part.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(pd.read_csv(out), table)
    with pytest.raises(InputError, match="refusing to overwrite the manifest"):
        run_batch(cohort, cohort, PARAMS, workers=0, segments=SEGMENTS)
    with pytest.raises(InputError, match="other parameters"):
        run_batch(cohort, out, load_params("default", feature_classes=["glcm"]), workers=0, segments=SEGMENTS)


@pytest.mark.parametrize("wide", [True, False])
def test_the_summary_says_where_the_failed_cases_are_and_how_to_redo_them(cohort, tmp_path, wide):
    """QA radfollow68: LUNG1-003 extracted and LUNG1-002 failed (another scan's mask), ``--wide``: the summary said
    "1 case extracted, ..., 1 failed; ... -> w2.csv" and the failure, but not that the failed case is listed in
    w2_errors.csv nor that the table has no row of it - nor how to compute only it.  Now said, with the re-run that
    skips the cases done."""
    out = tmp_path / "w.csv"
    s = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS, wide=wide)
    assert [c for c, _ in s.failed] == ["broken"] and len(s.done) == 3, s.failed
    assert "broken" not in set(pd.read_csv(out).case)
    lines = [line for line in s.text().splitlines() if str(tmp_path / "w_errors.csv") in line]
    assert lines == [f"the failed case is listed in {tmp_path / 'w_errors.csv'} and has no "
                     f"{'row' if wide else 'rows'} in {out}; fix it as said above and run the same command again: "
                     "the 3 cases done are skipped, only the failed one is computed"], s.text()
    again = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS, wide=wide)      # as said: only it is redone
    assert again.done == [] and len(again.skipped) == 3 and [c for c, _ in again.failed] == ["broken"]
    assert "the 3 cases done are skipped" in again.text(), again.text()


def test_resume_with_other_parameters_names_what_changed_and_keeps_the_cases(cohort, tmp_path):
    """QA (radiomics-batch on pyradiomics_lung / NSCLC-Radiomics / LIDC crops, re-run with one more feature class):
    the refusal said only "holds results made with other parameters or segments", fix "delete that folder" - not
    which parameter differed (the user cannot resume without knowing what the cases were made with) nor that
    deleting loses the finished cases.  It names the difference and how many cases are kept; the same parameters
    resume them."""
    out = tmp_path / "c.csv"
    first = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    with pytest.raises(InputError, match="other parameters") as exc:
        run_batch(cohort, out, load_params("default", feature_classes=["firstorder", "shape", "glcm"]), workers=0,
                  segments=SEGMENTS)
    assert f"holds {counted(len(first.done), 'case')} done" in exc.value.problem
    # the classes as one (QA radiomics72: "featureClass.glcm: (not set) then, [] now", in the parameter dict's terms)
    assert "(featureClass: firstorder, shape then, firstorder, glcm, shape now)" in exc.value.problem
    assert "-o OTHER.csv" in exc.value.fix and "its finished cases are lost" in exc.value.fix
    with pytest.raises(InputError) as exc:
        run_batch(cohort, out, PARAMS, workers=0, segments=["tumour"])
    assert f"segments: {SEGMENTS} then, ['tumour'] now" in exc.value.problem
    again = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert sorted(again.skipped) == sorted(first.done) and again.done == []


def test_dask_scheduler_address_gives_same_values_as_loop(cohort, tmp_path):
    from dask.distributed import LocalCluster

    loop_out, dask_out = tmp_path / "loop.csv", tmp_path / "dask.csv"
    run_batch(cohort, loop_out, PARAMS, workers=0, segments=SEGMENTS, wide=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        s = run_batch(cohort, dask_out, PARAMS, scheduler=cluster.scheduler_address, segments=SEGMENTS, wide=True)
    assert len(s.done) == 3 and len(s.failed) == 1
    a = pd.read_csv(loop_out).sort_values("case").reset_index(drop=True)
    b = pd.read_csv(dask_out).sort_values("case").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert "rad_tumour_original_shape_VoxelVolume" in a.columns


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["localhost", "synchronous", "tcp://127.0.0.1", "foo://host:8786"])
def test_a_bad_scheduler_address_is_refused_before_any_work(cohort, tmp_path, capsys, address):
    """QA: `--scheduler localhost` (or `synchronous`) crashed with a traceback (ValueError: missing port number);
    now an InputError naming the address and the expected form, before the output is prepared."""
    from lungai.cli import main

    out = tmp_path / "o" / "f.csv"
    rc = main(["radiomics-batch", str(cohort), "--scheduler", address, "--segments", "tumour", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and repr(address) in err and "tcp://host:8786" in err and "dask scheduler" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_an_unreachable_scheduler_is_refused_quickly_with_its_address(cohort, tmp_path, monkeypatch):
    """QA: `--scheduler tcp://127.0.0.1:1` waited 30 s, then said "cannot access None ... check that the path
    exists".  Now: a short connect timeout (SCHEDULER_TIMEOUT_S) and an InputError naming the scheduler."""
    import time

    from lungai.radiomics import cluster

    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"               # nothing listens there: no network needed
    start = time.perf_counter()
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler at " + address) as err:
        run_batch(cohort, tmp_path / "f.csv", PARAMS, scheduler=address, segments=SEGMENTS)
    assert "dask scheduler" in err.value.fix and time.perf_counter() - start < 15


def test_cli_local_cluster_two_workers(cohort, tmp_path):
    from lungai.cli import main

    out = tmp_path / "cli.csv"
    rc = main(["radiomics-batch", str(cohort), "--workers", "2", "--feature-classes", "firstorder",
               "--segments", "tumour", "-o", str(out)])
    assert rc == 1  # one case failed, the others are written
    assert set(pd.read_csv(out).case) == {"synth005_000", "synth005_001", "synth005_002"}


def test_the_local_clusters_start_is_said_on_the_cases_bar(cohort, tmp_path, monkeypatch, capsys):
    """QA firstbar64 (lungai cohort LUNG1-003, default 2 workers, a shared machine): the bar stood at "cohort 0/1"
    for 15 s while the local Dask cluster started and warmed up its workers.  Its start is said on the cases' bar
    (a message, no case counted), and when it is up; then the cases count (the rule of radiomics-batch and cohort:
    lungai.radiomics.cluster.run_tasks)."""
    from lungai.cli import main
    from lungai.progress import parse_line

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")     # as the Slicer panel reads a child process's progress
    assert main(["radiomics-batch", str(cohort), "--workers", "2", "--feature-classes", "firstorder",
                 "--segments", "tumour", "-o", str(tmp_path / "o.csv")]) == 1
    shown = [parse_line(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith("LUNGAI_PROGRESS") and " radiomics-batch: " in line]
    # the start said again with its seconds while it runs (QA rad69): not steps
    shown = [(f, text) for f, text in shown if not re.search(r"starting 2 local Dask workers \(\d+ s\)$", text)]
    assert shown[:3] == [(0.0, "radiomics-batch: start"), (0.0, "radiomics-batch: starting 2 local Dask workers"),
                         (0.0, "radiomics-batch: 2 Dask workers started: 3 cases sent")], shown
    # then a step per case (the 'broken' case's files are missing: said before any work and not sent, QA
    # cohortfollow70); between them each case's own steps, said without a step (QA rad67:
    # test_radiomics_batch_progress.py), the cases' count never moved by them
    counted_cases = [f for f, text in shown[3:] if text.endswith((" done", " failed"))]
    assert counted_cases == pytest.approx([1 / 3, 2 / 3, 1.0], abs=0.01), shown
    assert [f for f, _ in shown] == sorted(f for f, _ in shown), shown


def test_a_failing_segment_of_an_extracted_case_is_said_and_the_exit_status_is_1(small_phantom, tmp_path, capsys):
    """QA: a segment failing in a case whose other segments were extracted was only in <output>_errors.csv: the
    summary said '0 failed' and the exit status was 0.  Now the summary names it and the exit status is 1, as
    `lungai radiomics` (the other segment's values are written)."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.synthetic import labels as L

    ph = small_phantom
    arr = sitk.GetArrayFromImage(ph.labels)
    lab = (arr == L.TUMOUR).astype(np.uint8)
    lab[2, 3, 3:5] = 2                                           # a 2-voxel line: pyradiomics refuses it
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(ph.labels)
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    pd.DataFrame([{"case": "c1", "image": "ct.nii.gz", "mask": "mask.nii.gz", "label": "tumour=1;line=2"}]
                 ).to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "b.csv"
    rc = main(["radiomics-batch", str(tmp_path / "m.csv"), "--workers", "0", "--feature-classes", "firstorder",
               "-o", str(out)])
    assert rc == 1
    assert set(pd.read_csv(out).segment) == {"tumour"}
    text = capsys.readouterr().out
    assert "0 failed" in text and "1 segment failed in 1 extracted case" in text
    # said as what it is (QA radfollow68: before, pyradiomics' "mask has too few dimensions" alone)
    assert "segment failed: c1 / line: segment 'line' is 2 voxels in a line (one row of voxels along x" in text, text


def test_manifest_validation(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("case,image\na,x.nii.gz\n", encoding="utf-8")
    with pytest.raises(InputError, match="no mask column"):
        read_manifest(bad)
    bad.write_text("case,image,mask\na,x.nii.gz,y.nii.gz\na,z.nii.gz,y.nii.gz\n", encoding="utf-8")
    with pytest.raises(InputError, match="repeats case"):
        read_manifest(bad)
    # each repeated id with its lines (blank lines counted as in the file)
    bad.write_text("case,image,mask\nA,x.nii.gz,y.nii.gz\nB,x.nii.gz,y.nii.gz\n\nA,z.nii.gz,y.nii.gz\n"
                   "B,z.nii.gz,y.nii.gz\nA,w.nii.gz,y.nii.gz\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_manifest(bad)
    assert exc.value.problem == "manifest m.csv repeats case id(s): 'A' on lines 2, 5 and 7; 'B' on lines 3 and 6"


def test_case_ids_with_the_same_file_name_are_refused(tmp_path):
    """'pat/1' and 'pat_1' both become parts/pat_1.csv (and 'A'/'a' on Windows and macOS): one case would
    silently overwrite the other, so the manifest is refused before anything is extracted."""
    from lungai.cli import main

    bad = tmp_path / "m.csv"
    bad.write_text("case,image,mask\npat/1,x.nii.gz,y.nii.gz\npat_1,z.nii.gz,y.nii.gz\nB,x.nii.gz,y.nii.gz\n"
                   "b,z.nii.gz,y.nii.gz\nC,x.nii.gz,y.nii.gz\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"same output file name: 'pat/1' and 'pat_1' \(both pat_1.csv\); "
                                         r"'B' and 'b'") as err:
        read_manifest(bad)
    assert "rename these cases" in err.value.fix
    out = tmp_path / "c.csv"
    with pytest.raises(InputError, match="same output file name"):
        run_batch(bad, out, PARAMS, workers=0, segments=SEGMENTS)
    assert not (tmp_path / "c.csv.parts").exists()
    assert main(["radiomics-batch", str(bad), "-o", str(out), "--workers", "0"]) == 2
    bad.write_text("case,image,mask\npat-1,x.nii.gz,y.nii.gz\npat_1,z.nii.gz,y.nii.gz\n", encoding="utf-8")
    assert [r["case"] for r in read_manifest(bad)] == ["pat-1", "pat_1"]   # different file names: accepted


def test_case_ids_naming_no_file_of_their_own_get_a_safe_name():
    """'.' and '..' would name the output folder itself and its parent (cohort's patients/.. is the output root,
    overwriting its features.csv / result.json), '' no file; 'a.' is 'a' on Windows, CON / nul.txt / COM1 devices
    there: each gets a name of its own, and the clashes they would make are refused."""
    from lungai.radiomics.manifest import name_clashes, safe_name

    for case in ("", ".", "..", "...", "a.", "CON", "con.txt", "Nul", "com1", "LPT9.csv", "prn.x.y", "aux"):
        name = safe_name(case)
        assert name not in ("", ".", "..") and not name.endswith((".", " ")), (case, name)
        assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT9"}, (case, name)
    assert [safe_name(c) for c in ("LUNG1-001", "pat.1", "COM10", "console", "a..b")] == [
        "LUNG1-001", "pat.1", "COM10", "console", "a..b"]           # ordinary ids keep their names
    assert name_clashes([".", "_", "..", "__", "a.", "a_", "b"]) == [[".", "_"], ["..", "__"], ["a.", "a_"]]


def test_a_blank_case_id_is_refused_naming_its_line(tmp_path):
    """A row without a case id had no file name ('failed: : cannot write .csv', a hidden parts file): refused
    before any work, naming the line."""
    bad = tmp_path / "m.csv"
    bad.write_text("case,image,mask\nA,x.nii.gz,y.nii.gz\n\n,z.nii.gz,y.nii.gz\n  ,w.nii.gz,y.nii.gz\n",
                   encoding="utf-8")
    with pytest.raises(InputError, match=r"rows without a case id \(line 4, line 5\)") as err:
        read_manifest(bad)
    assert "case id" in err.value.fix and "m.csv" in err.value.fix
    with pytest.raises(InputError, match="without a case id"):
        run_batch(bad, tmp_path / "f.csv", PARAMS, workers=0, segments=SEGMENTS)
    assert not list(tmp_path.glob("f.csv*"))


def _worker_settings():
    import os

    import dask
    import SimpleITK as sitk

    return {"trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"), "itk": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
            "omp": os.environ.get("OMP_NUM_THREADS"), "profile": dask.config.get("distributed.worker.profile.enabled"),
            "task_log": logging.getLogger("distributed.worker.state_machine").level}


def test_local_cluster_worker_settings(monkeypatch):
    """radiomics-batch's own workers: glibc keeps freed buffers (no MALLOC_TRIM_THRESHOLD_), one ITK/OMP
    thread, no profiler; and the caller's Dask config is left as it was."""
    import os

    import socket
    import warnings

    import dask
    import distributed  # noqa: F401 - its config defaults (the test run alone)

    from lungai.radiomics.cluster import local_cluster

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")   # as left behind by an earlier default Dask cluster
    before = dask.config.get("distributed.worker.profile.enabled")
    busy = socket.socket()                                   # another cluster's dashboard port
    try:
        busy.bind(("", 8787))
    except OSError:
        pass                                                 # taken already
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        cluster, client = local_cluster(1)
    busy.close()
    assert not [w for w in said if "8787" in str(w.message)]     # no "Port 8787 is already in use"
    try:
        (settings,) = client.run(_worker_settings).values()
    finally:
        client.close()
        cluster.close()
    # a task cancelled by Ctrl-C is not logged as a warning by the worker
    assert settings == {"trim": None, "itk": 1, "omp": "1", "profile": False, "task_log": logging.ERROR}
    assert dask.config.get("distributed.worker.profile.enabled") == before
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_manifest_masks_follow_the_cli_rule(small_phantom, tmp_path):
    """A manifest's tumour / lungs columns are read as `lungai radiomics --tumour / --lungs`: a label map's lungs
    chosen with FILE#R,L (right, left), a multi-label tumour map refused (never every label as tumour)."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.radiomics.batch import _segments_for

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    lab = np.zeros(arr.shape, np.uint8)
    lab[arr == 1], lab[arr == 2], lab[arr == 3] = 1, 3, 4        # GTV 1, right lung 3, left lung 4
    img = sitk.GetImageFromArray(lab)
    img.CopyInformation(small_phantom.labels)
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(img, str(path))
    segs = _segments_for({"lungs": f"{path}#3,4"}, small_phantom.ct, ["right_lung", "left_lung"], {})
    assert np.array_equal(sitk.GetArrayFromImage(segs["right_lung"]) > 0, arr == 2)
    assert np.array_equal(sitk.GetArrayFromImage(segs["left_lung"]) > 0, arr == 3)
    with pytest.raises(InputError, match="labels") as exc:
        _segments_for({"tumour": str(path)}, small_phantom.ct, ["tumour"], {})
    # the manifest's column named, the file as in the manifest: radiomics-batch has no --tumour option
    assert exc.value.problem.startswith(f"tumour {path} holds 3 labels"), exc.value.problem
    assert exc.value.fix.endswith(f"e.g. {path}#1 in the tumour column") and "--" not in exc.value.fix, exc.value.fix


def _write_one_and_two_gtv_masks(ph, folder):
    """ct.nii.gz (the phantom's CT) and two masks on its grid: one.nii.gz (its tumour, label 1) and two.nii.gz (the
    same plus a second GTV, label 2, in this patient only); their arrays returned."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.synthetic import labels as L

    one = (sitk.GetArrayFromImage(ph.labels) == L.TUMOUR).astype(np.uint8)
    two = one.copy()
    two[5:10, 10:20, 10:20] = 2                                  # a second GTV in this patient only
    sitk.WriteImage(ph.ct, str(folder / "ct.nii.gz"))
    for name, lab in (("one", one), ("two", two)):
        mask = sitk.GetImageFromArray(lab)
        mask.CopyInformation(ph.labels)
        sitk.WriteImage(mask, str(folder / f"{name}.nii.gz"))
    return one, two


def test_a_label_absent_from_one_patients_mask_is_noted_not_failed(small_phantom, tmp_path, capsys):
    """A manifest label that some patients do not have (`gtv=1;other_gtvs=2`, one patient without a label 2) made
    every run exit 1 (a `set -e` script stopped at each re-run): it is listed as 'absent' (errors table, summary)
    and does not count for the exit status.  A label absent from every case is a wrong label: exit 1; a real
    extraction failure still exits 1 (the test above)."""
    from lungai.cli import main

    _write_one_and_two_gtv_masks(small_phantom, tmp_path)
    rows = [{"case": "p1", "image": "ct.nii.gz", "mask": "one.nii.gz", "label": "gtv=1;other_gtvs=2"},
            {"case": "p2", "image": "ct.nii.gz", "mask": "two.nii.gz", "label": "gtv=1;other_gtvs=2"}]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    args = ["--workers", "0", "--feature-classes", "firstorder"]
    out = tmp_path / "b.csv"
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), *args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "absent: p1 / other_gtvs" in text and "segment failed" not in text
    errors = pd.read_csv(tmp_path / "b_errors.csv")
    assert errors.case.tolist() == ["p1"] and errors.error[0].startswith("absent: label 2 is not in the mask")
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), *args, "-o", str(out)]) == 0     # a re-run too
    capsys.readouterr()
    for row in rows:
        row["label"] = "gtv=1;other_gtvs=3"                      # in no mask: a wrong label
    pd.DataFrame(rows).to_csv(tmp_path / "m3.csv", index=False)
    assert main(["radiomics-batch", str(tmp_path / "m3.csv"), *args, "-o", str(tmp_path / "b3.csv")]) == 1
    assert "segment failed: p1 / other_gtvs: absent: label 3" in capsys.readouterr().out


def test_a_union_of_labels_one_patient_lacks_is_the_union_of_those_it_has(small_phantom, tmp_path, capsys):
    """QA radiomics64: the manifest label gtv=1;gtv=2 (all GTVs, NSCLC-Radiomics' 1 GTV-1 / 2 other GTVs) failed
    LUNG1-002, a patient with one GTV ("label 2 is not in the mask"), exit 1 - its tumour features lost.  Its gtv is now
    label 1 (the union of the labels it has), the label it lacks listed as absent ('gtv (label 2)', not a failure);
    a union label absent from every case is still a wrong label (exit 1)."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.radiomics.segments import segments_from_labels

    ph = small_phantom
    one, two = _write_one_and_two_gtv_masks(ph, tmp_path)
    errors, absent = {}, set()
    segs = segments_from_labels(sitk.ReadImage(str(tmp_path / "one.nii.gz")), ph.ct, ["gtv=1", "gtv=2"],
                                errors=errors, absent=absent)
    assert np.array_equal(sitk.GetArrayFromImage(segs["gtv"]), one) and absent == {"gtv (label 2)"}
    assert errors["gtv (label 2)"] == ("label 2 is not in the mask (labels present: 1): segment 'gtv' is the union "
                                       "of label 1 only")
    rows = [{"case": "p1", "image": "ct.nii.gz", "mask": "one.nii.gz", "label": "gtv=1;gtv=2"},
            {"case": "p2", "image": "ct.nii.gz", "mask": "two.nii.gz", "label": "gtv=1;gtv=2"}]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    args = ["--workers", "0", "--feature-classes", "shape"]
    out = tmp_path / "b.csv"
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), *args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "absent: p1 / gtv (label 2)" in text and "failed" not in text.replace("0 failed", "")
    table = pd.read_csv(out)
    volume = table[table.feature == "VoxelVolume"].set_index("case").value
    ml = np.prod(ph.ct.GetSpacing())
    assert volume["p1"] == pytest.approx(one.sum() * ml) and volume["p2"] == pytest.approx((two > 0).sum() * ml)
    errors = pd.read_csv(tmp_path / "b_errors.csv")
    assert errors.case.tolist() == ["p1"] and errors.error[0].startswith("absent: label 2 is not in the mask")
    for row in rows:
        row["label"] = "gtv=1;gtv=7"                             # in no mask: a wrong label
    pd.DataFrame(rows).to_csv(tmp_path / "m7.csv", index=False)
    assert main(["radiomics-batch", str(tmp_path / "m7.csv"), *args, "-o", str(tmp_path / "b7.csv")]) == 1
    assert "segment failed: p1 / gtv (label 7): absent: label 7" in capsys.readouterr().out


def test_a_users_table_or_sidecar_is_never_replaced_an_earlier_batchs_is(cohort, tmp_path):
    """-o naming the user's own CSV (or a sidecar's name beside it) is refused before any work; the batch's own
    output - recorded in .lungai-radiomics-batch, also when an older lungai wrote it with its .parts folder - is
    replaced."""
    mine = "MY OWN TABLE\n"
    for name in ("mine.csv", "mine_errors.csv", "mine_settings.csv", "mine.settings.json"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_text(mine, encoding="utf-8")
        with pytest.raises(InputError, match="already exists and was not written by lungai radiomics-batch"):
            run_batch(cohort, folder / "mine.csv", PARAMS, workers=0, segments=SEGMENTS)
        assert (folder / name).read_text(encoding="utf-8") == mine and not (folder / "mine.csv.parts").exists()
    out = tmp_path / "own" / "f.csv"
    run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    recorded = (out.parent / ".lungai-radiomics-batch").read_text(encoding="utf-8").splitlines()
    assert {"f.csv", "f_errors.csv", "f_settings.csv", "f.settings.json"} <= set(recorded)
    (out.parent / ".lungai-radiomics-batch").unlink()          # as an older lungai left it: only f.csv.parts shows
    run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)   # it is the batch's own: replaced
    parts = tmp_path / "p" / "t.csv.parts"
    parts.mkdir(parents=True)
    (parts / "notes.txt").write_text(mine, encoding="utf-8")
    with pytest.raises(InputError, match="holds files it did not write"):
        run_batch(cohort, tmp_path / "p" / "t.csv", PARAMS, workers=0, segments=SEGMENTS)


def test_a_second_older_batch_in_the_folder_is_adopted_after_another_was_rerun(cohort, tmp_path):
    """Review: an older lungai's batch (no marker, only its <output>.parts/params.key) was adopted only while the
    folder had no marker at all; the marker is shared by the folder's batches, so after a.csv was re-run (and
    recorded) the older b.csv was refused.  Adoption is per batch: b.csv is not listed, its .parts shows it."""
    folder = tmp_path / "two"
    for name in ("a.csv", "b.csv"):
        run_batch(cohort, folder / name, PARAMS, workers=0, segments=SEGMENTS)
    assert (folder / "b.csv.parts" / "params.key").is_file()
    (folder / ".lungai-radiomics-batch").unlink()              # as an older lungai left both
    run_batch(cohort, folder / "a.csv", PARAMS, workers=0, segments=SEGMENTS)   # a.csv adopted and recorded
    run_batch(cohort, folder / "b.csv", PARAMS, workers=0, segments=SEGMENTS)   # b.csv too: its own, replaced
    recorded = set((folder / ".lungai-radiomics-batch").read_text(encoding="utf-8").splitlines())
    assert {"a.csv", "b.csv"} <= recorded
    (folder / "c.csv").write_text("MY OWN TABLE\n", encoding="utf-8")          # no .parts: the user's, refused
    with pytest.raises(InputError, match="already exists and was not written by lungai radiomics-batch"):
        run_batch(cohort, folder / "c.csv", PARAMS, workers=0, segments=SEGMENTS)


def test_unreadable_manifests_are_refused_saying_why(tmp_path):
    """Latin-1, empty, an unclosed quote, ';'-separated, header only, a folder: an InputError with the fix (no
    traceback), and a header-only manifest writes nothing."""
    cases = {"latin.csv": ("case,image,mask\nJos\xe9,a.nii.gz,b.nii.gz\n".encode("latin-1"), "not UTF-8.*"),
             "empty.csv": (b"", "is empty"),
             "quote.csv": (b'case,image,mask\n"a,b.nii.gz,c.nii.gz\n', "not a readable CSV"),
             "semi.csv": (b"case;image, mask;label\na;b.nii.gz;c.nii.gz\nb;x.nii.gz;1\n",
                          "manifest .* could be comma- or semicolon-separated"),
             "header.csv": (b"case,image,mask\n", "has no rows")}
    for name, (data, problem) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=problem) as err:
            read_manifest(tmp_path / name)
        if name == "latin.csv":
            assert "UTF-8" in err.value.fix
    # a ';' manifest (a decimal-comma locale's 'CSV'), its header without commas: read, said once; cells as written
    for name in ("b.nii.gz", "c.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "euro.csv").write_text("case;image;mask;label\na;b.nii.gz;c.nii.gz;1,2\n", encoding="utf-8")
    with pytest.warns(InputNote, match="manifest euro.csv is read as semicolon-separated"):
        rows = read_manifest(tmp_path / "euro.csv")
    assert rows[0]["label"] == "1,2" and rows[0]["mask"] == str(tmp_path / "c.nii.gz")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InputError, match="is a folder, not a CSV file"):
        read_manifest(tmp_path / "folder.csv")
    with pytest.raises(InputError, match="has no rows"):
        run_batch(tmp_path / "header.csv", tmp_path / "out.csv", load_params("default"), workers=0)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.parts").exists()


def test_another_batch_in_the_folder_keeps_an_edited_tables_protection(cohort, tmp_path):
    """Review: a batch dropped the stamps of every radiomics-batch table in its folder (they share one marker) when it
    started, so after a second table's run the user's edit of the first table was replaced by its re-run.  A run drops
    only its own files' stamps."""
    out = tmp_path / "rb"
    run_batch(cohort, out / "a.csv", PARAMS, workers=0, segments=SEGMENTS)
    with (out / "a.csv").open("a", encoding="utf-8") as fh:
        fh.write("my,own,notes\n")                                           # the user edits the first table
    run_batch(cohort, out / "b.csv", PARAMS, workers=0, segments=SEGMENTS)   # another table in the same folder
    with pytest.raises(InputError, match="a.csv changed since lungai radiomics-batch wrote it"):
        run_batch(cohort, out / "a.csv", PARAMS, workers=0, segments=SEGMENTS)
    assert "my,own,notes" in (out / "a.csv").read_text(encoding="utf-8")


def test_ctrl_c_on_dask_cancels_the_tasks_and_closes_the_cluster_quietly(monkeypatch, capsys):
    """QA: Ctrl-C with Dask workers printed tornado StreamClosedError / CommClosedError tracebacks and 'Worker
    process still alive after 4.0 seconds, killing' before 'lungai cohort: cancelled'.  The running tasks are
    cancelled and the client and cluster closed with Dask's loggers quieted (put back afterwards); one line says
    the run was cancelled and that running it again resumes."""
    import dask.distributed

    import lungai.radiomics.cluster as cluster_module
    from lungai.radiomics.cluster import run_tasks

    seen, calls = [], []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    class Client:
        def submit(self, fn, item, *args, key, pure):
            return key

        def cancel(self, futures, force=False):
            calls.append(("cancel", sorted(futures), force))

        def close(self, timeout=None):
            calls.append("client.close")
            logging.getLogger("distributed.comm.tcp").warning("CommClosedError: in <TCP (closed)>")
            logging.getLogger("tornado.application").error("StreamClosedError: Stream is closed")

    class Cluster:
        def close(self, timeout=None):
            calls.append("cluster.close")
            logging.getLogger("distributed.nanny").warning("Worker process still alive after 4.0 seconds, killing")

    def interrupted(futures):
        raise KeyboardInterrupt
        yield

    handler = Keep()
    names = ("distributed.comm.tcp", "tornado.application", "distributed.nanny")
    levels = {n: logging.getLogger(n).getEffectiveLevel() for n in ("distributed", "tornado", "asyncio")}
    for name in names:
        logging.getLogger(name).addHandler(handler)
    monkeypatch.setattr(cluster_module, "local_cluster", lambda workers: (Cluster(), Client()))
    monkeypatch.setattr(dask.distributed, "as_completed", interrupted)
    summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_tasks("cohort", print, ["a", "b"], ["P1", "P2"], (), lambda item: False, summary, 2, None)
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)
    assert calls == [("cancel", ["lungai-P1", "lungai-P2"], True), "client.close", "cluster.close"]
    assert seen == []                                     # nothing of Dask's shutdown said
    assert {n: logging.getLogger(n).getEffectiveLevel() for n in levels} == levels     # and the loggers put back
    err = capsys.readouterr().err
    assert "cohort: cancelled after 0 of 2 cases; no case had finished, so there is nothing to resume: run the same " \
           "command again to start it" in err and "resume (they are skipped)" not in err
    assert "Traceback" not in err


def test_a_cancel_before_any_case_finished_says_resume_only_with_earlier_cases(capsys):
    """QA cohortfollow71: a cancel before any case finished said "the finished cases are kept: run the same command
    again to resume" though none was.  With cases finished by an earlier run (skipped now) the resume is still said."""
    from lungai.radiomics.cluster import run_tasks

    def stopped(item, *args):
        raise KeyboardInterrupt

    for done, says, not_says in ((set(), "nothing to resume", "resume (they are skipped)"),
                                 ({"a"}, "resume (they are skipped)", "nothing to resume")):
        summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
        with pytest.raises(KeyboardInterrupt):
            run_tasks("radiomics-batch", stopped, ["a", "b"], ["P1", "P2"], (), lambda item: item in done, summary, 0,
                      None)
        err = capsys.readouterr().err
        assert f"radiomics-batch: cancelled after 0 of {2 - len(done)} case" in err and says in err, err
        assert not_says not in err, err


CRASH_SCRIPT = """
import os, sys, time
from pathlib import Path


def fn(item, marks):
    Path(marks, f"{item}.{time.time_ns()}").touch()      # each time the case is computed
    time.sleep(0.5)
    if item == "b":
        os._exit(3)                                          # the worker process dies (as when killed for memory)
    return {"case": item, "status": "done", "error": ""}


if __name__ == "__main__":
    import lungai.radiomics.cluster as cluster

    cluster.warm_worker = os.getpid                          # no pyradiomics import: the test stays quick
    results = []
    cluster.map_on_dask(fn, ["a", "b"], ["a", "b"], (sys.argv[1],), 2, None, results.append)
    print(repr(sorted((r["case"], r["status"], r["error"]) for r in results)))
"""


def test_a_dying_worker_process_fails_its_case_and_the_run_finishes(tmp_path):
    """Review: a worker process that died (os._exit, killed for lack of memory - not Ctrl-C) was retried by Dask on
    4 workers in turn, each death losing (and recomputing) the finished cases the worker held, and the run could
    hang at the result of one ("Couldn't gather keys").  Now the case is retried once, then failed with a
    KilledWorker said as such (fewer --workers / more memory); a delivered result is released (computed once);
    the run ends.  Run in its own process with a time limit: a hang fails the test instead of stopping it."""
    import ast
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT, encoding="utf-8")
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(marks)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)                    # the script and its worker processes
        proc.communicate()
        pytest.fail("map_on_dask did not finish within 60 s after a worker process died (hang)")
    assert proc.returncode == 0, err[-3000:]
    (a, b) = ast.literal_eval(out.strip().splitlines()[-1])
    assert a == ("a", "done", "")
    assert b[:2] == ("b", "failed") and "the worker process running it died (out of memory?" in b[2], b
    assert "KilledWorker" in b[2] and "fewer --workers" in b[2] and "more memory" in b[2]
    names = [p.name.split(".")[0] for p in marks.iterdir()]
    assert names.count("a") == 1 and names.count("b") == 2, names  # a computed once; b retried once, not 3 times
    assert time.perf_counter() - start < 45


def test_a_result_lost_with_its_worker_is_waited_for_again_then_failed(monkeypatch):
    """A finished case whose worker died before its result was fetched ("Couldn't gather keys": the fetch waits for
    it to be recomputed) is fetched with a time limit and waited for again; lost MAX_LOST_RESULTS times, it fails
    with the fix - the run never waits without end.  Each delivered result is released."""
    import lungai.radiomics.cluster as cluster_module

    calls = []

    class Future:
        def __init__(self, key, outcomes):
            self.key, self.outcomes = key, list(outcomes)

        def result(self, timeout=None):
            calls.append((self.key, timeout))
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        def release(self):
            calls.append((self.key, "released"))

    most = getattr(cluster_module, "MAX_LOST_RESULTS", 2)
    plans = {"lungai-a": [TimeoutError(), {"case": "a", "status": "done", "error": ""}],
             "lungai-b": [TimeoutError()] * most}

    class Client:
        def submit(self, fn, item, *args, key, pure):
            return Future(key, plans[key])

        def close(self, timeout=None):
            pass

    class AsCompleted:
        def __init__(self, futures):
            self.queue = list(futures)

        def add(self, future):
            self.queue.append(future)

        def __iter__(self):
            while self.queue:
                yield self.queue.pop(0)

    monkeypatch.setattr(cluster_module, "local_cluster", lambda workers: (None, Client()))
    monkeypatch.setattr("dask.distributed.as_completed", AsCompleted)
    results = []
    cluster_module.map_on_dask(print, ["a", "b"], ["a", "b"], (), 2, None, results.append)
    assert results[0] == {"case": "a", "status": "done", "error": ""}
    assert results[1]["case"] == "b" and results[1]["status"] == "failed"
    assert f"its result was lost {most} times" in results[1]["error"] and "fewer --workers" in results[1]["error"]
    assert all(t == getattr(cluster_module, "GATHER_TIMEOUT_S", None) for k, t in calls if t != "released")
    assert [k for k, t in calls if t == "released"] == ["lungai-a", "lungai-b"]


def test_a_case_whose_inputs_changed_is_redone_on_resume(tmp_path):
    """QA: a finished case whose mask was overwritten (or whose row points at other files) was skipped on a re-run,
    keeping its stale values.  Each part records its inputs (<case>.inputs.json: name, size and content hash, as
    lungai cohort); a changed case is redone with a note, a part without them (an older lungai's) is redone too."""
    import shutil

    manifest = write_synthetic_cohort(tmp_path, 3, seed=11)
    out = tmp_path / "out" / "f.csv"
    first = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert len(first.done) == 3
    a, b, c = sorted(first.done)
    old = pd.read_csv(out, dtype={"case": str}).set_index(["case", "feature"]).value
    shutil.copy(tmp_path / b / "labels.nii.gz", tmp_path / a / "labels.nii.gz")     # a's mask overwritten
    (tmp_path / "out" / "f.csv.parts" / f"{c}.inputs.json").unlink()              # as an older lungai left it
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert sorted(again.done) == [a, c] and again.skipped == [b]
    text = again.text()
    assert f"note: {a}: inputs changed since the last run (mask): redone" in text
    assert f"note: {c}: inputs changed since the last run (its part records no inputs (written by an older " \
           "lungai)): redone" in text
    new = pd.read_csv(out, dtype={"case": str}).set_index(["case", "feature"]).value
    volume = "MeshVolume"
    assert new[(a, volume)] == pytest.approx(old[(b, volume)]) and new[(a, volume)] != pytest.approx(old[(a, volume)])
    # the row pointed at another image: redone; a copied file (same name, size, content) is the same input
    rows = pd.read_csv(manifest, dtype=str)
    rows.loc[rows.case == b, "image"] = f"{c}/ct.nii.gz"
    rows.to_csv(manifest, index=False)
    third = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert third.done == [b] and "(image)" in third.text()
    assert run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"]).done == []


def test_case_ids_that_read_as_missing_values_are_kept(tmp_path):
    """QA: case ids NA / None became blank when the parts were combined (pandas' default missing-value strings), and
    the case vanished from the wide table.  The parts are read with their case column as written."""
    manifest = write_synthetic_cohort(tmp_path, 2, seed=12)
    rows = pd.read_csv(manifest, dtype=str)
    rows["case"] = ["NA", "None"]
    rows.to_csv(manifest, index=False)
    out = tmp_path / "f.csv"
    s = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"], wide=True)
    assert sorted(s.done) == ["NA", "None"]
    kw = {"dtype": {"case": str}, "keep_default_na": False}
    assert sorted(pd.read_csv(out, **kw).case) == ["NA", "None"]
    assert sorted(set(pd.read_csv(tmp_path / "f_settings.csv", **kw).case)) == ["NA", "None"]


def test_the_help_names_the_manifest_columns_read(capsys):
    """QA: the help said "or labels (+ phantom = 1)", but a manifest with a labels column is refused (no mask
    column): the phantom label map is given as mask with phantom = 1."""
    from lungai.cli import main

    with pytest.raises(SystemExit):
        main(["radiomics-batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "or labels" not in text and "phantom = 1" in text and "mask (+ optional label" in text


def test_a_local_clusters_worker_process_ignores_ctrl_c():
    """QA: Ctrl-C in a terminal reaches the whole process group: the worker processes printed their own
    KeyboardInterrupt / CancelledError / CommClosedError tracebacks.  warm_worker (run in each worker process's main
    thread) makes the worker ignore SIGINT; the main process cancels the tasks and closes the cluster.  (Checked by
    hand too: SIGINT to the group of `radiomics-batch --workers 1` mid-run: exit 130, no traceback, no process left.)"""
    import subprocess
    import sys

    code = ("import signal; from lungai.radiomics.cluster import warm_worker; warm_worker(); "
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr


def _sigint_blocked() -> bool:
    import signal

    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX signal masks")
def test_a_local_clusters_worker_processes_never_see_ctrl_c_from_their_start(monkeypatch):
    """QA: Ctrl-C (SIGINT to the process group) while the local cluster's workers were still starting printed 5
    tracebacks: KeyboardInterrupt in the worker processes importing Dask ("Nanny failed to start") - warm_worker's
    SIG_IGN came only once they were up - and "Exception ignored in atexit callback: close_clusters ...
    AssertionError: Status.init" for the half-started cluster.  The cluster is started in a thread with SIGINT
    blocked (start_without_sigint): its worker processes inherit the blocked SIGINT from their first instruction,
    also one the nanny starts again; the main thread keeps its Ctrl-C.  (Checked by hand too: SIGINT to the group
    of `radiomics-batch --workers 2` at 2, 5, 6.5, 7, 7.5, 8, 9, 10, 12 s: exit 130, "cancelled", no traceback.)"""
    import os

    import lungai.radiomics.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "warm_worker", os.getpid)        # no pyradiomics import: quick
    cluster, client = cluster_module.local_cluster(1)
    try:
        assert list(client.run(_sigint_blocked).values()) == [True]
        client.restart()                                                 # a worker process started again
        assert list(client.run(_sigint_blocked).values()) == [True]
    finally:
        client.close()
        cluster.close()
    assert not _sigint_blocked()                                         # the main thread: Ctrl-C as before


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX signal masks")
def test_ctrl_c_while_the_cluster_starts_closes_it_once_started_then_is_raised():
    """Ctrl-C in the main thread while the cluster is being started: no half-started cluster left to Dask's exit
    handler - the start is waited for, what it started is closed, then the KeyboardInterrupt is raised."""
    import os
    import signal
    import time

    from lungai.radiomics.cluster import start_without_sigint

    events = []

    class Started:
        def close(self, timeout=None):
            events.append("closed")

    def start():
        events.append(("blocked", _sigint_blocked()))
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the start runs (not on a timer: a loaded machine may fire
        time.sleep(1.0)                      # it after the start has ended), maybe before Thread.start has returned
        events.append("started")
        return Started()

    # Python's own SIGINT handler, whatever an earlier test or a parent that ignores Ctrl-C left
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            start_without_sigint(start)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert events == [("blocked", True), "started", "closed"]
    assert isinstance(start_without_sigint(Started), Started)            # no Ctrl-C: what was started


@pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="POSIX signal masks")
def test_ctrl_c_while_thread_start_waits_still_waits_for_the_start_and_closes_it(monkeypatch):
    """The full suite (a loaded machine): the Ctrl-C came while Thread.start still waited for the start's thread to
    run - raised from there, the start was not waited for and what it started not closed."""
    import threading
    import time

    from lungai.radiomics.cluster import start_without_sigint

    events = []

    class Started:
        def close(self, timeout=None):
            events.append("closed")

    def start():
        time.sleep(0.5)
        events.append("started")
        return Started()

    thread_start = threading.Thread.start

    def start_then_ctrl_c(self):
        thread_start(self)
        raise KeyboardInterrupt                 # as a Ctrl-C handled while Thread.start waited

    monkeypatch.setattr(threading.Thread, "start", start_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        start_without_sigint(start)
    monkeypatch.undo()
    assert events == ["started", "closed"]


def _state_machine_log_level():
    import signal

    return (logging.getLogger("distributed.worker.state_machine").level,
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def _scheduler_gone_logged():
    """(heartbeat error logged, other error logged) by the worker process's distributed.worker logger."""
    import sys

    from distributed.comm.core import CommClosedError

    log = logging.getLogger("distributed.worker")
    try:
        raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: Stream is closed")
    except CommClosedError:
        gone = log.makeRecord(log.name, logging.ERROR, "worker.py", 1,
                              "Failed to communicate with scheduler during heartbeat.", (), sys.exc_info())
    other = log.makeRecord(log.name, logging.ERROR, "worker.py", 1, "Compute Failed", (), None)
    return bool(log.filter(gone)), bool(log.filter(other))


def test_a_worker_lost_while_the_cluster_warms_up_does_not_stop_the_run(monkeypatch):
    """Review: a worker process killed while the local cluster warmed up (client.run(warm_worker)) aborted
    radiomics-batch / cohort with Dask's CommClosedError (an OSError, said as "cannot access None").  The lost
    worker is left to its nanny; a real failure of the warm-up is still raised."""
    import distributed
    from distributed.comm.core import CommClosedError

    import lungai.radiomics.cluster as cluster_module

    closed = CommClosedError("in <TCP (closed) Scheduler Broadcast local=tcp://127.0.0.1:1>: Stream is closed")
    outcome = {"error": closed}

    def run(self, function, *args, on_error="raise", **kwargs):
        if on_error == "raise":
            raise outcome["error"]
        return {"tcp://127.0.0.1:1": outcome["error"]}

    monkeypatch.setattr(distributed.Client, "run", run)
    cluster, client = cluster_module.local_cluster(1)           # the lost worker: no error
    client.close()
    cluster.close()
    outcome["error"] = ImportError("No module named 'radiomics'")
    with pytest.raises(ImportError, match="radiomics"):
        cluster_module.local_cluster(1)


def test_a_worker_started_again_by_its_nanny_is_quieted_like_the_first(monkeypatch):
    """A worker process the nanny starts again (after the first died) never ran the warm-up (client.run): it is
    quieted at its start by the preload lungai.dask_workers.dask_setup (SIGINT ignored, the task state machine
    logging ERRORs only)."""
    import os

    import lungai.radiomics.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "warm_worker", os.getpid)        # the warm-up does nothing: the preload only
    cluster, client = cluster_module.local_cluster(1)
    try:
        assert list(client.run(_state_machine_log_level).values()) == [(logging.ERROR, True)]
        # Review: SIGTERM with --workers 2 printed a worker's "Failed to communicate with scheduler during heartbeat"
        # CommClosedError traceback (the scheduler closing first); its other errors are still logged
        assert list(client.run(_scheduler_gone_logged).values()) == [(False, True)]
        client.restart()                                                 # a worker process started again
        assert list(client.run(_state_machine_log_level).values()) == [(logging.ERROR, True)]
        assert list(client.run(_scheduler_gone_logged).values()) == [(False, True)]
    finally:
        client.close()
        cluster.close()


def test_the_cli_says_a_worker_died_not_cannot_access_none(cohort, tmp_path, monkeypatch, capsys):
    """Review: Dask's CommClosedError (a worker process died) reached the CLI's OSError handler: "error: cannot access
    None: in <TCP (closed) ...>: Stream is closed / How to fix: check that the path exists"."""
    from distributed.comm.core import CommClosedError

    import lungai.radiomics.cluster as cluster_module
    from lungai.cli import main

    def lost(*args, **kwargs):
        raise CommClosedError("in <TCP (closed) Scheduler Broadcast local=tcp://127.0.0.1:1>: Stream is closed")

    monkeypatch.setattr(cluster_module, "map_on_dask", lost)
    assert main(["radiomics-batch", str(cohort), "--workers", "2", "-o", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "a Dask worker process died" in err and "run the same command again" in err and "--workers" in err
    assert "cannot access" not in err and "Traceback" not in err
    from lungai.dask_workers import lost_worker_error

    assert lost_worker_error(OSError(2, "No such file", "x.csv")) is None


def test_a_case_whose_files_cannot_be_read_is_kept_only_while_its_row_is_unchanged(tmp_path):
    """QA: a finished case whose files could not be read on a re-run kept its old results silently, even when its
    row now named another image or label.  Its part records the full paths; a row still naming the same files is
    kept with a warning naming it, one naming other files (or another label) is dropped and fails (it cannot be
    computed now) rather than keep results of what the row named before."""
    import shutil

    manifest = write_synthetic_cohort(tmp_path, 3, seed=11)
    out = tmp_path / "out" / "f.csv"
    first = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    a, b, c = sorted(first.done)
    recorded = json.loads((tmp_path / "out" / "f.csv.parts" / f"{a}.inputs.json").read_text())
    assert recorded["paths"]["image"] == str((tmp_path / a / "ct.nii.gz").resolve())
    shutil.move(tmp_path / a, tmp_path / "moved_a")          # a drive not mounted: same row, files unreadable
    shutil.move(tmp_path / b, tmp_path / "moved_b")
    rows = pd.read_csv(manifest, dtype=str)
    rows.loc[rows.case == b, "image"] = "elsewhere/ct.nii.gz"      # b's row now names another image
    rows.to_csv(manifest, index=False)
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert sorted(again.skipped) == [a, c] and [case for case, _ in again.failed] == [b]
    text = again.text()
    assert f"warning: 1 case done before could not be checked for changed inputs" in text and f": {a})" in text
    assert f"note: {b}: its row changed since the last run (image) and its files cannot be read now" in text
    assert b not in set(pd.read_csv(out, dtype={"case": str}).case)
    assert b in set(pd.read_csv(tmp_path / "out" / "f_errors.csv", dtype={"case": str}).case)


def test_a_resume_folder_without_results_takes_new_settings(cohort, tmp_path):
    """QA: a run stopped before any case finished left only params.key; a re-run with other settings was refused
    ('holds results made with other parameters') though nothing was done.  With no part there, the key is replaced."""
    out = tmp_path / "f.csv"
    parts = tmp_path / "f.csv.parts"
    parts.mkdir()
    (parts / "params.key").write_text("0123456789abcdef", encoding="utf-8")
    s = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert len(s.done) == 3
    with pytest.raises(InputError, match="other parameters"):      # once results are there: refused as before
        run_batch(cohort, out, load_params("default", feature_classes=["glcm"]), workers=0, segments=SEGMENTS)


def test_manifest_headers_and_case_errors_say_what_the_user_gave(small_phantom, tmp_path):
    """QA: a header `Case,Image` / `case , image` was refused as lacking ['case', 'image'] without naming the
    columns found; a mask off the image grid was refused without naming the mask file; a case whose only label was
    absent said 'no segment could be extracted: absent: label 99' (the errors table's internal prefix)."""
    import numpy as np
    import SimpleITK as sitk

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(small_phantom.labels, str(tmp_path / "labels.nii.gz"))
    off = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.uint8))
    sitk.WriteImage(off, str(tmp_path / "off_grid.nii.gz"))
    (tmp_path / "m.csv").write_text("Case , IMAGE,Mask,Label\n"
                                    "p1,ct.nii.gz,off_grid.nii.gz,1\n"
                                    "p2,ct.nii.gz,labels.nii.gz,gtv=99\n", encoding="utf-8")
    rows = read_manifest(tmp_path / "m.csv")
    assert [r["case"] for r in rows] == ["p1", "p2"] and rows[0]["mask"].endswith("off_grid.nii.gz")
    s = run_batch(tmp_path / "m.csv", tmp_path / "o.csv", PARAMS, workers=0)
    failed = dict(s.failed)
    assert "mask off_grid.nii.gz does not lie on the image grid" in failed["p1"]     # the manifest cell as written
    assert failed["p2"].startswith("no segment could be extracted: label 99 is not in the mask")
    (tmp_path / "bad.csv").write_text("id,ct,mask\na,x.nii.gz,y.nii.gz\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"lacks the column\(s\) \['case', 'image'\] \(its columns: id, ct, mask\)"):
        read_manifest(tmp_path / "bad.csv")


def test_a_row_without_a_mask_fails_alone_saying_so(small_phantom, tmp_path):
    """QA: a manifest row whose mask cell is empty failed with "no segment could be extracted: no segment given",
    fix "fix the masks" (which masks?); it fails its case naming the empty cell(s) and the fix, the others go on."""
    import SimpleITK as sitk

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(small_phantom.labels, str(tmp_path / "labels.nii.gz"))
    (tmp_path / "m.csv").write_text("case,image,mask,label\np1,ct.nii.gz,labels.nii.gz,tumour=1\n"
                                    "p2,ct.nii.gz,,tumour=1\n", encoding="utf-8")
    s = run_batch(tmp_path / "m.csv", tmp_path / "o.csv", PARAMS, workers=0)
    assert s.done == ["p1"]
    failed = dict(s.failed)
    assert "its manifest row names no mask: its mask cell is empty" in failed["p2"]
    assert "give the case's mask file in the manifest's mask column, or remove the row" in failed["p2"]
    (tmp_path / "t.csv").write_text("case,image,tumour,lungs\np3,ct.nii.gz,,\n", encoding="utf-8")
    s = run_batch(tmp_path / "t.csv", tmp_path / "t_out.csv", PARAMS, workers=0)
    assert "its tumour / lungs cells are empty" in dict(s.failed)["p3"]


@pytest.mark.parametrize("command", [["radiomics-batch", "m.csv", "-o", "o.csv"], ["cohort", "root", "-o", "out"],
                                     ["radiomics", "--image", "ct.nii.gz", "--mask", "m.nii.gz", "-o", "o.csv"]])
def test_a_negative_worker_count_is_refused(command, capsys):
    """QA: `--workers -1` ran one worker silently (max(1, workers)); it is refused by the option's check."""
    from lungai.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*command, "--workers", "-1"])
    assert exc.value.code == 2
    assert "argument --workers: -1 is below 0: give the number of worker processes" in capsys.readouterr().err


def test_the_cancel_message_counts_the_cases_finished_on_disk(capsys):
    """QA: 'cancelled after 20 of 83 case(s)' while 23 parts were on disk: cases a worker had written whose
    result was not delivered yet were not counted.  The count is of the cases finished (on disk) or failed."""
    from lungai.radiomics.cluster import run_tasks

    on_disk = set()

    def fn(item):
        if item == "b":           # b and c written by their workers, then Ctrl-C before their results came
            on_disk.update({"b", "c"})
            raise KeyboardInterrupt
        on_disk.add(item)
        return {"case": item, "status": "done"}

    summary = type("Summary", (), {"done": [], "failed": [], "skipped": []})()
    with pytest.raises(KeyboardInterrupt):
        run_tasks("radiomics-batch", fn, ["a", "b", "c", "d"], ["a", "b", "c", "d"], (), lambda item: item in on_disk,
                  summary, 0, None)
    assert "radiomics-batch: cancelled after 3 of 4 cases" in capsys.readouterr().err


def test_sigterm_takes_the_ctrl_c_path_and_exits_143(monkeypatch, capsys):
    """QA: SIGTERM (a SLURM time limit, `timeout`, `docker stop`) killed the run at once: exit -15, leaked semaphore
    warnings, no 'cancelled ... run again to resume', Dask's scratch space left.  The CLI turns it into the Ctrl-C
    path (a KeyboardInterrupt in the main thread: the workers closed, the cancel line said), exits 143 (128 + 15)
    and puts the previous SIGTERM handler back."""
    import os
    import signal
    import time

    import lungai.cli.radiomics as cli_radiomics
    from lungai.cli import main

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)             # interrupted by the handler
        raise AssertionError("SIGTERM was not turned into a KeyboardInterrupt")

    def before(signum, frame):    # without the CLI's handler: this one (never pytest killed)
        pass

    previous = signal.signal(signal.SIGTERM, before)
    try:
        monkeypatch.setattr(cli_radiomics, "run_batch", terminated)
        assert main(["radiomics-batch", "m.csv", "-o", "o.csv"]) == 143
        assert "lungai radiomics-batch: cancelled (terminated: SIGTERM)" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_still_ends_a_forked_child_at_once(tmp_path):
    """The CLI's SIGTERM handler (Ctrl-C path) is inherited by a forked child (a data loader's worker): there SIGTERM
    still ends the process as before (terminate() of multiprocessing), never a KeyboardInterrupt traceback."""
    import subprocess
    import sys

    script = (
        "import multiprocessing as mp, signal, time\n"
        "from lungai.cli import _sigterm_as_ctrl_c\n"
        "def child():\n"
        "    time.sleep(30)\n"
        "if __name__ == '__main__':\n"
        "    with _sigterm_as_ctrl_c([]):\n"
        "        p = mp.get_context('fork').Process(target=child); p.start(); time.sleep(0.5)\n"
        "        p.terminate(); p.join(10)\n"
        "        print('exitcode', p.exitcode)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "exitcode -15" in run.stdout and "KeyboardInterrupt" not in run.stderr, (run.stdout, run.stderr)


def test_a_moved_cohort_keeps_its_finished_cases_while_its_files_are_offline(tmp_path):
    """Review: the paths recorded in <case>.inputs.json were written once: a cohort copied elsewhere was found
    unchanged ("3 already done") but, once its files went offline, every case was taken for a changed row and its
    results dropped.  A case found unchanged at another path gets its new (resolved) paths recorded; offline, a row
    naming the same file names in folders of the same names is kept (with the warning), one naming the same file
    name in another case's folder is not.  When every case then fails, the earlier table is removed: it no longer
    holds values its _errors.csv lists as failed."""
    import shutil

    src = tmp_path / "src"
    manifest = write_synthetic_cohort(src, 3, seed=11)
    first = run_batch(manifest, src / "out" / "f.csv", PARAMS, workers=0, segments=["tumour"])
    a, b, c = sorted(first.done)
    moved = tmp_path / "moved"
    shutil.copytree(src, moved)
    (tmp_path / "link").symlink_to(moved)                  # the same manifest through a linked folder
    out = tmp_path / "link" / "out" / "f.csv"
    again = run_batch(tmp_path / "link" / "manifest.csv", out, PARAMS, workers=0, segments=["tumour"])
    assert sorted(again.skipped) == [a, b, c]
    parts = moved / "out" / "f.csv.parts"
    recorded = json.loads((parts / f"{a}.inputs.json").read_text())
    assert recorded["paths"]["image"] == str((moved / a / "ct.nii.gz").resolve())       # where it is now
    for case in (a, b, c):                                 # the data goes offline
        shutil.move(moved / case, moved / f"offline_{case}")
    rows = pd.read_csv(moved / "manifest.csv", dtype=str)
    rows.loc[rows.case == c, "image"] = f"{a}/ct.nii.gz"     # c's row now names a's image (same file name)
    rows.to_csv(moved / "manifest.csv", index=False)
    offline = run_batch(moved / "manifest.csv", moved / "out" / "f.csv", PARAMS, workers=0, segments=["tumour"])
    assert sorted(offline.skipped) == [a, b] and [case for case, _ in offline.failed] == [c]
    text = offline.text()
    assert "warning: 2 cases done before could not be checked for changed inputs" in text
    assert f"note: {c}: its row changed since the last run (image)" in text
    assert set(pd.read_csv(moved / "out" / "f.csv", dtype={"case": str}).case) == {a, b}
    rows["mask"] = "other/labels.nii.gz"                     # every row now names another mask: all fail
    rows.to_csv(moved / "manifest.csv", index=False)
    none = run_batch(moved / "manifest.csv", moved / "out" / "f.csv", PARAMS, workers=0, segments=["tumour"])
    assert sorted(case for case, _ in none.failed) == [a, b, c] and not none.skipped
    assert "note: no case has results now: the earlier f.csv, f_settings.csv, f.settings.json" in none.text()
    assert not any((moved / "out" / n).exists() for n in ("f.csv", "f_settings.csv", "f.settings.json"))
    assert set(pd.read_csv(moved / "out" / "f_errors.csv", dtype={"case": str}).case) == {a, b, c}


@pytest.mark.parametrize("header, named", [("case,Case,image,mask", "'case' and 'Case'"),
                                           ("case,image,mask, Mask ", "'mask' and ' Mask '")])
def test_manifest_columns_naming_the_same_thing_are_refused(tmp_path, header, named):
    """Review: with headers matched without letter case / spaces, `case,Case` crashed (AttributeError) and
    `mask, Mask` used the last column silently (a pandas warning).  Both are refused naming the headers."""
    import warnings

    (tmp_path / "m.csv").write_text(header + "\np1,p1,ct.nii.gz,labels.nii.gz\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="columns that name the same thing") as exc:
            read_manifest(tmp_path / "m.csv")
    assert named in str(exc.value)


def test_a_second_interrupt_while_closing_does_not_stop_the_close():
    """Review: a second SIGTERM / Ctrl-C during the cleanup interrupted close_quietly: the workers kept writing parts
    after the count was said ("cancelled after 0 of 20" with 2 parts on disk) and the exit waited ~8 s more for
    Dask's exit handler.  Further SIGINT / SIGTERM are held until the close is done, then the handlers are back."""
    import os
    import signal

    from lungai.radiomics.cluster import close_quietly

    closed = []

    class Client:
        def close(self, timeout=None):
            os.kill(os.getpid(), signal.SIGINT)          # the user presses Ctrl-C again
            os.kill(os.getpid(), signal.SIGTERM)
            closed.append("client")

    class Cluster:
        def close(self, timeout=None):
            closed.append("cluster")

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    close_quietly(Client(), Cluster())
    assert closed == ["client", "cluster"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_part_edited_since_it_was_written_is_redone_on_resume(tmp_path):
    """QA: a part file (<out>.csv.parts/<case>.csv) with a row deleted by hand was taken as done on a re-run and the
    combined CSV silently had fewer values.  Each part's row count is recorded in <case>.inputs.json; a part that no
    longer holds it is redone with a note (an older lungai's record, without a count, is kept as before)."""
    manifest = write_synthetic_cohort(tmp_path, 2, seed=13)
    out = tmp_path / "out" / "f.csv"
    first = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    a, b = sorted(first.done)
    table = pd.read_csv(out, dtype={"case": str})
    part = tmp_path / "out" / "f.csv.parts" / f"{a}.csv"
    lines = part.read_text(encoding="utf-8").splitlines(keepends=True)
    n = len(lines) - 1
    assert json.loads(part.with_name(f"{a}.inputs.json").read_text())["part_rows"] == n
    part.write_text("".join(lines[:-1]), encoding="utf-8")          # one row deleted by hand
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert again.done == [a] and again.skipped == [b]
    assert f"note: {a}: its part {a}.csv holds {n - 1} rows of the {n} written (edited since?): redone" in again.text()
    pd.testing.assert_frame_equal(pd.read_csv(out, dtype={"case": str}), table)
    assert run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"]).done == []


def _lock_of(pid: int, command: str, host=None, started=None) -> str:
    from lungai.io.outputs import _host, _process_started

    return f"{pid} {host or _host()} {started if started is not None else _process_started(pid):.2f} {command}\n"


def test_a_batch_takes_the_folders_lock_a_live_one_refused_a_stale_one_taken_over(cohort, tmp_path):
    """Feature: radiomics-batch took no lock of its output folder: two batches there at once interleaved their parts
    and tables.  It holds the folder's .lungai.lock (lungai.io.outputs.locked_output_folder) for the whole run: a
    live lock (another process's) is refused naming that process and what to do, nothing written; a killed run's
    (stale) lock is taken over and the batch resumes; another computer's says how to clear it."""
    import subprocess
    import sys
    import time

    out = tmp_path / "new" / "f.csv"
    lock = out.parent / ".lungai.lock"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out.parent.mkdir()
        lock.write_text(_lock_of(other.pid, "radiomics-batch"), encoding="utf-8")
        with pytest.raises(InputError, match=f"in use by another lungai radiomics-batch run \\(process {other.pid} "
                                             "on ") as refused:
            run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
        assert "wait until that run has ended" in refused.value.fix
        assert sorted(p.name for p in out.parent.iterdir()) == [".lungai.lock"]      # nothing written, lock kept
        lock.unlink()
        out.parent.rmdir()
        lock_elsewhere = tmp_path / ".lungai.lock"               # another command's run in the folder: refused too
        lock_elsewhere.write_text(_lock_of(other.pid, "segment"), encoding="utf-8")
        with pytest.raises(InputError, match="in use by another lungai segment run"):
            run_batch(cohort, tmp_path / "f.csv", PARAMS, workers=0, segments=SEGMENTS)
        lock_elsewhere.unlink()
    finally:
        other.kill()
        other.wait()
    first = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert len(first.done) == 3 and not lock.exists()                                 # released at the end
    (out.parent / "f.csv.parts" / "synth005_001.csv").unlink()                        # as a run killed mid-way
    lock.write_text(_lock_of(other.pid, "radiomics-batch", started=time.time() - 60), encoding="utf-8")  # gone
    again = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert again.done == ["synth005_001"] and sorted(again.skipped) == ["synth005_000", "synth005_002"]
    assert not lock.exists() and set(pd.read_csv(out).case) == set(first.done)
    lock.write_text(_lock_of(12345, "radiomics-batch", host="other-host", started=time.time()), encoding="utf-8")
    with pytest.raises(InputError, match="process 12345 on other-host") as refused:
        run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert f"delete the lock file {lock} - only that file" in refused.value.fix


def test_a_batch_refused_for_a_table_in_the_current_folder_names_it_in_full_and_how_to_write_elsewhere(
        cohort, tmp_path, monkeypatch):
    """Review: `lungai radiomics-batch -o b.csv manifest.csv` while a batch wrote a.csv into the current folder said
    "the output folder . is in use ... or choose another folder with -o" - the folder as ".", nothing saying that
    the lock covers the whole folder of the table, and -o of radiomics-batch takes a file.  The folder is named in
    full, and the fix says to write the table into another folder (-o OTHER_FOLDER/table.csv)."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".lungai.lock").write_text(_lock_of(other.pid, "radiomics-batch"), encoding="utf-8")
        with pytest.raises(InputError, match="in use by another lungai radiomics-batch run") as refused:
            run_batch(cohort, "b.csv", PARAMS, workers=0, segments=SEGMENTS)
    finally:
        other.kill()
        other.wait()
    said = str(refused.value)
    assert f"the output folder {tmp_path} is in use" in said and "folder . " not in said
    assert "-o OTHER_FOLDER/table.csv" in refused.value.fix and "whole folder of its table" in refused.value.fix
    assert "choose another folder with -o" not in refused.value.fix
    assert not (tmp_path / "b.csv").exists()


def test_a_part_truncated_inside_its_last_row_is_redone_on_resume(tmp_path):
    """QA: a part cut inside its last row (``truncate -s -25``) kept its row count: it was taken as done and the
    combined CSV got a cut value and an empty settings id.  The part's size and sha256 are recorded beside its row
    count in <case>.inputs.json; a part that differs is redone with a note (an older record without them: as before)."""
    manifest = write_synthetic_cohort(tmp_path, 2, seed=13)
    out = tmp_path / "out" / "f.csv"
    first = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    a, b = sorted(first.done)
    table = pd.read_csv(out, dtype={"case": str})
    part = tmp_path / "out" / "f.csv.parts" / f"{a}.csv"
    record = json.loads(part.with_name(f"{a}.inputs.json").read_text())
    data = part.read_bytes()
    assert record["part_bytes"] == len(data) and len(record["part_sha256"]) == 64
    assert not list(part.parent.glob(".*pending"))
    part.write_bytes(data[:-25])                       # truncate -s -25: the last row's value and id cut
    assert len(pd.read_csv(part)) == record["part_rows"]       # the row count alone does not see it
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert again.done == [a] and again.skipped == [b]
    assert (f"note: {a}: its part {a}.csv holds {len(data) - 25} bytes of the {len(data)} written (truncated or "
            "edited since?): redone") in again.text()
    pd.testing.assert_frame_equal(pd.read_csv(out, dtype={"case": str}), table)
    # one character changed, same size: the hash
    data = part.read_bytes()
    i = data.rindex(b".")
    part.write_bytes(data[:i - 1] + (b"1" if data[i - 1:i] != b"1" else b"2") + data[i:])
    third = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert third.done == [a] and f"its part {a}.csv is not the file written" in third.text()
    pd.testing.assert_frame_equal(pd.read_csv(out, dtype={"case": str}), table)
    # an older lungai's record (without part size and hash, or without any part key): kept as before
    rec = part.with_name(f"{a}.inputs.json")
    old = {k: v for k, v in json.loads(rec.read_text()).items() if k not in ("part_bytes", "part_sha256")}
    rec.write_text(json.dumps(old))
    part.write_bytes(part.read_bytes()[:-25])
    assert run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"]).done == []


def test_batch_prints_and_records_why_values_are_nan(tmp_path):
    """QA: radiomics-batch dropped the notes `lungai radiomics` prints (why an IBSI preset's values are NaN).  They
    are printed in the batch summary and recorded in _settings.csv's notes column, as `lungai radiomics` records
    them; a resumed case's notes are printed again from its part.  Each names its case, also in this one-case batch
    ("note: p1 / gtv: ...")."""
    manifest, note = _flat_l_case(tmp_path)
    out = tmp_path / "out" / "f.csv"
    params = load_params("ibsi-a", feature_classes=["shape"])
    first = run_batch(manifest, out, params, workers=0)
    assert first.done == ["p1"] and f"note: p1 / {note}" in first.text()
    settings = pd.read_csv(tmp_path / "out" / "f_settings.csv")
    assert settings["notes"].tolist() == [note.removeprefix("gtv: ")]
    assert f"note: p1 / {note}" in run_batch(manifest, out, params, workers=0).text()      # resumed: from its part


def _flat_l_case(tmp_path):
    """(manifest, note): one case "p1" whose segment gtv is a flat L of 3 voxels (IBSI: NaN ellipsoid densities, a
    note saying why)."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(3)
    ct = rng.integers(-50, 150, (10, 20, 20)).astype(np.int16)
    ct[:, :, 14:] = -1000                                       # air: a CT in HU (read_ct's check)
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.8, 0.8, 2.5))
    m = np.zeros((10, 20, 20), np.uint8)
    for z, y, x in [(3, 8, 8), (3, 8, 9), (3, 9, 8)]:         # a flat L: no enclosing ellipsoid
        m[z, y, x] = 1
    mask = sitk.GetImageFromArray(m)
    mask.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "m.nii.gz"))
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame([{"case": "p1", "image": "ct.nii.gz", "mask": "m.nii.gz", "label": "gtv=1"}]).to_csv(manifest,
                                                                                                    index=False)
    out = tmp_path / "out" / "f.csv"
    params = load_params("ibsi-a", feature_classes=["shape"])
    note = ("gtv: morph_vol_dens_aee and morph_area_dens_aee are NaN: the ROI lies in one plane (flat, or a line), "
            "so its approximate enclosing ellipsoid has a zero-length axis")
    return manifest, note


def test_an_ibsi_case_done_by_a_lungai_without_nan_notes_is_redone_on_resume(tmp_path):
    """QA: an ibsi-b batch resumed after a lungai that wrote no notes (and, just before, NaN'd the texture of any ROI
    with one voxel per axial slice: LIDC-IDRI-0852_R_1 242 NaN, 174 now) kept the old values and said nothing
    ("0 extracted, 3 already done", empty notes).  With an IBSI configuration, a part whose .settings.csv has no
    notes column is redone, with a note; one with the column is kept."""
    manifest, note = _flat_l_case(tmp_path)
    out = tmp_path / "out" / "f.csv"
    params = load_params("ibsi-a", feature_classes=["shape"])
    run_batch(manifest, out, params, workers=0)
    fresh = pd.read_csv(out)
    parts = tmp_path / "out" / "f.csv.parts"
    old = pd.read_csv(parts / "p1.csv")
    old.loc[old.feature == "volume", "value"] = float("nan")        # the older lungai's over-NaN'd value
    old.to_csv(parts / "p1.csv", index=False)
    pd.read_csv(parts / "p1.settings.csv").drop(columns="notes").to_csv(parts / "p1.settings.csv", index=False)
    (parts / "p1.inputs.json").write_text(json.dumps({k: v for k, v in json.loads(
        (parts / "p1.inputs.json").read_text()).items() if not k.startswith("part_")}))   # an older lungai's record
    again = run_batch(manifest, out, params, workers=0)
    assert again.done == ["p1"] and again.skipped == []
    assert ("note: 1 case done with an IBSI configuration by an older lungai (no notes on NaN values; some values "
            "NaN that are computed now) is redone") in again.text() and f"note: p1 / {note}" in again.text()
    pd.testing.assert_frame_equal(pd.read_csv(out), fresh)
    assert pd.read_csv(tmp_path / "out" / "f_settings.csv")["notes"].tolist() == [note.removeprefix("gtv: ")]
    kept = run_batch(manifest, out, params, workers=0)
    assert kept.skipped == ["p1"] and "older lungai" not in kept.text()


def test_a_killed_runs_half_written_files_are_removed_on_resume(tmp_path):
    """QA: a run killed while writing left .<case>.csv.<pid>.pending (and write_csv's .<name>.<pid>.part) in the parts
    folder forever.  The next run, holding the folder's lock before any case runs, removes them; the cases done are
    kept."""
    manifest = write_synthetic_cohort(tmp_path, 1, seed=13)
    out = tmp_path / "out" / "f.csv"
    (case,) = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"]).done
    parts = tmp_path / "out" / "f.csv.parts"
    stale = [parts / f".{case}.csv.4000000.pending", parts / f".{case}.settings.csv.4000001.part",
             parts / f".{case}.csv.{__import__('os').getpid()}.pending"]      # an id running now: another program
    for p in stale:
        p.write_text("case,segment\n", encoding="utf-8")
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert again.skipped == [case] and not [p for p in stale if p.exists()]
    assert (parts / f"{case}.csv").is_file()


def test_failed_cases_are_listed_in_manifest_order_each_fix_said_once(small_phantom, tmp_path, monkeypatch, capsys):
    """QA: with 2 workers the error table's rows and the "failed:" lines came in the order the workers finished
    (1 and 2 workers: other files); and a case whose only label is absent from its mask got the label's fix and then
    a generic "How to fix: fix the masks".  The cases are listed in the manifest's order, whatever order their
    results arrive in (here: reversed), and the label's fix is the case's fix, said once."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.radiomics import cluster
    from lungai.synthetic import labels as L

    ph = small_phantom
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    mask = sitk.GetImageFromArray((sitk.GetArrayFromImage(ph.labels) == L.TUMOUR).astype(np.uint8) * 2)
    mask.CopyInformation(ph.labels)
    sitk.WriteImage(mask, str(tmp_path / "two.nii.gz"))
    rows = [{"case": c, "image": "ct.nii.gz", "mask": m, "label": "gtv=1"}
            for c, m in (("p1", "missing.nii.gz"), ("p2", "two.nii.gz"), ("p3", "gone.nii.gz"))]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)

    def reversed_results(fn, items, names, args, workers, scheduler, on_result, progress=None):
        for item in reversed(items):
            on_result(fn(item, *args))
    monkeypatch.setattr(cluster, "map_on_dask", reversed_results)
    out = tmp_path / "b.csv"
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), "--workers", "2", "--feature-classes", "firstorder",
                 "-o", str(out)]) == 1
    printed = capsys.readouterr().out
    failed = [line.split(":")[1].strip() for line in printed.splitlines() if line.startswith("failed: ")]
    assert failed == ["p1", "p2", "p3"], printed
    errors = pd.read_csv(tmp_path / "b_errors.csv")
    assert errors.case.tolist() == ["p1", "p2", "p3"]
    p2 = errors.error[1]
    assert p2.count("How to fix") == 1 and "--label 2" in p2 and "fix the masks" not in p2, p2


def test_the_end_of_run_lines_say_how_to_fix_the_failed_cases(small_phantom, tmp_path, capsys):
    """The terminal's end-of-run "failed:" lines gave each error's first line only: the fix (a mask labelled 2, not
    1: "--label 2") was in the errors table alone - a researcher with 100 patients read what failed, not what to do.
    Each distinct fix is said once, naming the cases it concerns."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.cli import main
    from lungai.synthetic import labels as L

    ph = small_phantom
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    mask = sitk.GetImageFromArray((sitk.GetArrayFromImage(ph.labels) == L.TUMOUR).astype(np.uint8) * 2)
    mask.CopyInformation(ph.labels)
    sitk.WriteImage(mask, str(tmp_path / "two.nii.gz"))
    rows = [{"case": c, "image": "ct.nii.gz", "mask": "two.nii.gz", "label": "gtv=1"} for c in ("p1", "p2")]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), "--feature-classes", "firstorder",
                 "-o", str(tmp_path / "b.csv")]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].strip() for line in printed if line.startswith("failed: ")] == ["p1", "p2"]
    fixes = [line for line in printed if line.startswith("  how to fix")]
    assert len(fixes) == 1 and fixes[0].startswith("  how to fix (p1, p2): ") and "--label 2" in fixes[0], printed


def test_failure_lines_group_the_fixes_and_cut_long_lists():
    from lungai.errors import InputError, failure_lines

    failed = [(f"c{i}", str(InputError(f"problem {i}\nsecond line", "fix A" if i % 2 else "fix B")))
              for i in range(8)] + [("c8", "ValueError: no fix")]
    lines = failure_lines(failed)
    assert lines[:2] == ["failed: c0: problem 0", "failed: c1: problem 1"] and lines[8] == "failed: c8: ValueError: no fix"
    assert lines[9:] == ["  how to fix (c0, c2, c4, c6): fix B", "  how to fix (c1, c3, c5, c7): fix A"]
    cut = failure_lines(failed * 2, label="segment failed", most=3)
    assert cut[3] == "... and 15 more" and cut[4] == "  how to fix (c0, c2): fix B"


def test_a_case_whose_mhd_pixel_data_changed_is_redone_on_resume(tmp_path):
    """QA: a case's inputs were fingerprinted by the named file only: an .mhd / .nhdr header stays the same when its
    .raw / .zraw / .raw.gz pixel data is replaced (LUNA16-style data), so a re-run kept the stale features.  The
    header's data file is hashed with it (lungai.io.read.image_files; train-seg's resume fingerprint too)."""
    import shutil
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk

    from lungai.io.read import file_digest, image_files

    manifest = write_synthetic_cohort(tmp_path, 2, seed=13)
    rows = pd.read_csv(manifest, dtype=str)
    for i, r in rows.iterrows():               # the masks as MetaImage (header + .raw) and detached NRRD (+ .raw.gz)
        mask = tmp_path / r["mask"]
        img = sitk.ReadImage(str(mask))
        name = "labels.mhd" if i == 0 else "labels.nhdr"
        sitk.WriteImage(img, str(mask.parent / name), useCompression=i == 1)
        rows.loc[i, "mask"] = str(Path(r["mask"]).parent / name)
    rows.to_csv(manifest, index=False)
    mhd, nhdr = (tmp_path / m for m in rows["mask"])
    assert [f.name for f in image_files(mhd)] == ["labels.mhd", "labels.raw"]
    assert [f.name for f in image_files(nhdr)] == ["labels.nhdr", "labels.raw.gz"]
    assert image_files(tmp_path / rows["image"][0]) == [tmp_path / rows["image"][0]]      # one file: itself
    out = tmp_path / "out" / "f.csv"
    first = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert len(first.done) == 2
    a, b = rows["case"]
    before = {m: file_digest(m) for m in (mhd, nhdr)}
    for m in (mhd, nhdr):                      # the pixels replaced (another mask), the headers untouched
        header = m.read_bytes()
        data = image_files(m)[1]
        smaller = sitk.ReadImage(str(m))
        arr = sitk.GetArrayFromImage(smaller)
        zs = np.flatnonzero(arr.any(axis=(1, 2)))
        arr[zs[0]] = 0                         # the tumour's first slice taken away
        changed = sitk.GetImageFromArray(arr)
        changed.CopyInformation(smaller)
        scratch = tmp_path / "scratch" / m.name
        scratch.parent.mkdir(exist_ok=True)
        sitk.WriteImage(changed, str(scratch), useCompression=m == nhdr)
        shutil.copy(scratch.parent / data.name, data)
        assert m.read_bytes() == header
    assert all(file_digest(m) != before[m] for m in (mhd, nhdr))
    again = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"])
    assert sorted(again.done) == sorted([a, b]), again.text()
    assert f"note: {a}: inputs changed since the last run (mask): redone" in again.text()


def test_a_manifest_of_absolute_paths_whose_data_folder_was_moved_is_refused_up_front_with_the_fix(tmp_path):
    """QA (a cohort folder with its manifest of absolute paths, moved to another disk): every case failed, one by one,
    with a bare '/old/place/ct.nii.gz does not exist' - the fix (paths relative to the manifest, which move with it)
    named nowhere.  Now refused before any work, naming where the files are now; a relative manifest moved reads."""
    import shutil

    from lungai.seg.dataset import read_backgrounds

    old = tmp_path / "old"
    manifest = write_synthetic_cohort(old, 2, seed=3, shape=(40, 40, 16))
    df = pd.read_csv(manifest, dtype=str)
    for col in ("image", "mask"):
        df[col] = [str(old / v) for v in df[col]]
    df.to_csv(old / "absolute.csv", index=False)
    df[["image", "mask"]].to_csv(old / "backgrounds.csv", index=False)       # eval-seg / train --implant-into
    assert len(read_manifest(old / "absolute.csv")) == 2                      # in place: read as before
    shutil.move(old, tmp_path / "new")
    new = tmp_path / "new"
    assert [r["image"] for r in read_manifest(new / "manifest.csv")] == \
        [str(new / f"synth003_00{i}" / "ct.nii.gz") for i in range(2)]       # relative paths move with it
    for read, table, what in ((read_manifest, "absolute.csv", "manifest"),
                              (read_backgrounds, "backgrounds.csv", "--implant-into CSV")):
        with pytest.raises(InputError) as err:
            read(new / table)
        assert f"all 4 files listed in the {what} {new / table} do not exist" in err.value.problem
        assert f"is now {new / 'synth003_000' / 'ct.nii.gz'}" in err.value.problem
        assert err.value.fix.startswith(f"write the paths relative to the {what}'s folder "
                                        "(synth003_000/ct.nii.gz for ct.nii.gz)"), err.value.fix
    flat = tmp_path / "flat"                              # a flat folder of uniquely named files, moved
    flat.mkdir()
    for i in range(2):
        shutil.copy(new / f"synth003_00{i}" / "ct.nii.gz", flat / f"P{i}_ct.nii.gz")
        shutil.copy(new / f"synth003_00{i}" / "labels.nii.gz", flat / f"P{i}_labels.nii.gz")
    pd.DataFrame({"case": ["P0", "P1"], "image": [f"/data/gone/P{i}_ct.nii.gz" for i in range(2)],
                  "mask": [f"/data/gone/P{i}_labels.nii.gz" for i in range(2)]}).to_csv(flat / "m.csv", index=False)
    with pytest.raises(InputError, match=r"/data/gone/P0_ct.nii.gz is now .*flat/P0_ct.nii.gz"):
        read_manifest(flat / "m.csv")
    shutil.rmtree(new / "synth003_000")
    shutil.rmtree(new / "synth003_001")
    assert len(read_manifest(new / "absolute.csv")) == 2     # offline, not found moved: left to the batch (resume)
    with pytest.raises(InputError, match="none of the 4 file"):      # backgrounds are needed now: said up front
        read_backgrounds(new / "backgrounds.csv")


def test_listed_files_are_said_as_written_and_a_mask_cell_with_its_selector_is_its_file(tmp_path):
    """QA idforms66: a manifest whose CT cell names a moved data folder (absolute path of the old place) and whose
    tumour cell is an existing label map with its label (``/data/labels.nii.gz#1``, LUNG1-002) was refused with "all
    2 files listed in the manifest ... do not exist: /old/ct.nii.gz, /data/labels.nii.gz#1" - the label map exists:
    the ``#1`` was taken as part of its name.  And missing relative cells were listed as the paths read
    (``sub/data/P1_ct.nii.gz``), not as the user wrote them (``data/P1_ct.nii.gz``), the folder they were looked
    in not said beside them."""
    from lungai.seg.dataset import read_backgrounds

    new = tmp_path / "new"
    (new / "data").mkdir(parents=True)
    (new / "data" / "ct.nii.gz").write_bytes(b"")
    labels = tmp_path / "elsewhere" / "labels.nii.gz"
    labels.parent.mkdir()
    labels.write_bytes(b"")
    gone = tmp_path / "old" / "data" / "ct.nii.gz"
    pd.DataFrame({"case": ["P1"], "image": [str(gone)], "tumour": [f"{labels}#1"]}).to_csv(new / "m.csv", index=False)
    with pytest.raises(InputError) as err:
        read_manifest(new / "m.csv")
    assert err.value.problem.startswith(f"1 of the 2 files listed in the manifest {new / 'm.csv'} does not exist: "
                                        f"{gone}; the data folder looks moved"), err.value.problem
    assert str(labels) not in err.value.problem, err.value.problem
    # relative cells, none there: each said as written, with where it was looked for; a selector's file the same
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "backgrounds.csv").write_text('image,mask\ndata/P1_ct.nii.gz,"data/P1_labels.nii.gz#3,4"\n',
                                         encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_backgrounds(sub / "backgrounds.csv")
    assert err.value.problem == (
        f"none of the 2 files listed in the --implant-into CSV {sub / 'backgrounds.csv'} exists: data/P1_ct.nii.gz "
        f"(looked for at {sub / 'data' / 'P1_ct.nii.gz'}), data/P1_labels.nii.gz#3,4 (looked for at "
        f"{sub / 'data' / 'P1_labels.nii.gz'})"), err.value.problem
    (sub / "data").mkdir()
    (sub / "data" / "P1_labels.nii.gz").write_bytes(b"")     # the mask's file there: not every file is missing
    (sub / "data" / "P1_ct.nii.gz").write_bytes(b"")
    assert len(read_backgrounds(sub / "backgrounds.csv")) == 1


def test_a_file_named_with_a_hash_beside_the_table_is_its_file_from_any_current_folder(tmp_path, monkeypatch):
    """QA idforms66: a cell naming a file with '#' in its name (``scan#2.nii.gz``, beside the table) was taken as
    FILE#PART by whether that file is in the CURRENT folder: run from a folder holding a file ``scan``, the table was
    refused as naming "files of the current folder"."""
    from lungai.seg.dataset import read_backgrounds

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "scan#2.nii.gz").write_bytes(b"")
    (tmp_path / "scan").write_bytes(b"")
    (sub / "backgrounds.csv").write_text("image\nscan#2.nii.gz\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert [b["image"] for b in read_backgrounds("sub/backgrounds.csv")] == [Path("sub/scan#2.nii.gz")]


def _refused_before_any_work(phantom, tmp_path, capsys, label: str) -> None:
    """radiomics-batch on a one-row manifest with ``label``: refused (exit != 0) with the fix 'tumour=1;tumour=2',
    no output written."""
    import SimpleITK as sitk

    from lungai.cli import main

    sitk.WriteImage(phantom.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(phantom.labels, str(tmp_path / "lab.nii.gz"))
    pd.DataFrame([{"case": "p1", "image": "ct.nii.gz", "mask": "lab.nii.gz", "label": label}]).to_csv(
        tmp_path / "m.csv", index=False)
    out = tmp_path / "o" / "b.csv"
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), "--workers", "0", "--feature-classes", "firstorder",
                 "-o", str(out)]) != 0
    assert "tumour=1;tumour=2" in capsys.readouterr().err
    assert not out.exists()


def test_a_named_label_with_a_comma_and_a_bare_number_is_refused(small_phantom, tmp_path, capsys):
    """QA: manifest label 'tumour=1,2' (meaning the union, as --tumour labels.nii.gz#1,2) read as tumour = label 1
    alone plus a segment label_2 (LUNG1-003: a 35 ml tumour instead of 82 ml), exit 0.  Refused before any work,
    naming the fix; '1,2', 'a=1,b=2' and 'gtv=1;gtv=2' keep working."""
    from lungai.radiomics.batch import manifest_labels

    assert manifest_labels("1,2") == ["1", "2"]
    assert manifest_labels(" a=1, b=2 ;") == [" a=1", " b=2 "]
    assert manifest_labels("gtv=1;gtv=2") == ["gtv=1", "gtv=2"]
    with pytest.raises(InputError, match=r"'tumour=1,2'.*'tumour' = label 1 alone"):
        manifest_labels("tumour=1,2")
    _refused_before_any_work(small_phantom, tmp_path, capsys, "tumour=1,2")


def test_a_named_label_then_a_bare_number_after_a_semicolon_is_refused(small_phantom, tmp_path, capsys):
    """QA: manifest label 'tumour=1;2' (the union of the tumour's labels, as 'tumour=1,2' is, which is refused) read
    as tumour = label 1 alone plus a segment label_2, exit 0 - the tumour silently a part of itself.  Refused before
    any work with both fixes; bare labels before a name ('2;tumour=1', '1;2') keep working."""
    from lungai.radiomics.batch import manifest_labels

    assert manifest_labels("1;2") == ["1", "2"]
    assert manifest_labels("2;tumour=1") == ["2", "tumour=1"]
    with pytest.raises(InputError, match=r"'tumour=1;2'.*'tumour' = label 1 alone and 2 as its own segment") as err:
        manifest_labels("tumour=1;2")
    assert "tumour=1;tumour=2" in err.value.fix and "tumour=1;label_2=2" in err.value.fix
    with pytest.raises(InputError, match=r"'b' = label 2 alone and 3, 4 as their own segments"):
        manifest_labels("a=1;b=2;3,4;c=5")
    _refused_before_any_work(small_phantom, tmp_path, capsys, "tumour=1;2")


def test_a_one_case_batchs_warnings_name_its_case(small_phantom, tmp_path):
    """QA (LIDC-IDRI-0003_R_3, a nodule crop through every slice, alone in a manifest): a one-case batch warned
    "segment 'label_1' touches the image's z-, z+ edges" without the case, while the same case in a two-case batch
    was "LIDC-IDRI-0003_R_3 / segment 'label_1' ...".  A batch's warnings and notes name their case always (the
    summary is read beside other batches'); `lungai radiomics` (one case, named in its summary line) is unchanged."""
    import numpy as np
    import SimpleITK as sitk

    from lungai.radiomics.extract import edge_notes

    ph = small_phantom
    lab = np.zeros(sitk.GetArrayFromImage(ph.labels).shape, np.uint8)
    lab[0:4, 40:50, 40:50] = 1                                  # on the first slice: touches the z- edge
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(ph.labels)
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    row = {"image": "ct.nii.gz", "mask": "mask.nii.gz", "label": "tumour=1"}
    for cases in (["p1"], ["p1", "p2"]):
        manifest = tmp_path / f"m{len(cases)}.csv"
        pd.DataFrame([{"case": c, **row} for c in cases]).to_csv(manifest, index=False)
        s = run_batch(manifest, tmp_path / f"b{len(cases)}.csv", PARAMS, workers=0)
        assert sorted(s.done) == cases
        assert [n.split(" / ")[0] for n in s.cut] == cases, s.cut
        assert all("segment 'tumour' touches the image's z- edge" in n for n in s.cut)
        assert "warning: p1 / segment 'tumour'" in s.text()
    # one case of `lungai radiomics`: as before, the case in its summary line, not in each warning
    settings = pd.read_csv(tmp_path / "b1_settings.csv", dtype={"case": str}, keep_default_na=False)
    assert edge_notes(settings)[0].startswith("segment 'tumour'")


def test_a_cell_cut_at_an_unquoted_comma_is_refused_naming_the_line_and_the_quotes(small_phantom, tmp_path):
    """QA (LUNG1-003, GTV-1 = label 1 and gtv-2/3 = label 2): a label `tumour=1,tumour=2` or a tumour
    `labels.nii.gz#1,2` written without double quotes in a manifest with a column after it free to take the rest
    (`phantom`, `lungs`) read as `tumour` = label 1 alone and phantom "tumour=2" (35 ml instead of 82 ml, exit 0), or
    failed its case with "2 does not exist".  Refused before any work, naming the line and the quoted cell; quoted,
    the union is computed."""
    import numpy as np
    import SimpleITK as sitk

    ph = small_phantom
    lab = np.zeros(sitk.GetArrayFromImage(ph.labels).shape, np.uint8)
    lab[15:20, 40:48, 40:48] = 1
    lab[15:20, 60:68, 40:48] = 2
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(ph.labels)
    sitk.WriteImage(ph.ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "lab.nii.gz"))
    manifest, out = tmp_path / "m.csv", tmp_path / "b.csv"
    for text, problem, quoted in [
            ("case,image,mask,label,phantom\np0,ct.nii.gz,lab.nii.gz,tumour=1\n"
             "p1,ct.nii.gz,lab.nii.gz,tumour=1,tumour=2\n",
             "line 3: its phantom cell is 'tumour=2'", '"tumour=1,tumour=2"'),
            ("case,image,tumour,lungs\np1,ct.nii.gz,lab.nii.gz#1,2\n",
             "line 2: its lungs cell is '2', a label value, not a file", '"lab.nii.gz#1,2"')]:
        manifest.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as exc:
            run_batch(manifest, out, PARAMS, workers=0)
        assert problem in exc.value.problem and "not in double quotes" in exc.value.problem
        assert exc.value.fix == f"write that cell in double quotes: {quoted}"
        assert not out.with_name("b.csv.parts").exists()            # before any work
        manifest.write_text(text.replace(quoted.strip('"'), quoted), encoding="utf-8")
        s = run_batch(manifest, out, PARAMS, workers=0, segments=["tumour"] if "lungs" in text else None)
        assert "p1" in s.done and not s.failed, s.text()
        table = pd.read_csv(out)
        volume = table[(table.case == "p1") & (table.feature == "VoxelVolume")].value.item()
        assert volume == pytest.approx(2 * 5 * 8 * 8 * 3.5 * 3.5 * 5.0)     # labels 1 and 2: the union
        import shutil

        shutil.rmtree(out.with_name("b.csv.parts"))
        for p in tmp_path.glob("b*"):
            p.unlink()
    # a phantom cell that says neither yes nor no: refused (before: read as no, the label map as labels label_N)
    for cell in ("maybe", "TRUE"):
        manifest.write_text(f"case,image,mask,phantom\np1,ct.nii.gz,lab.nii.gz,{cell}\n", encoding="utf-8")
        with pytest.raises(InputError, match=f"line 2: its phantom cell is '{cell}'"):
            run_batch(manifest, out, PARAMS, workers=0)
    # a DICOM folder named by a number, offline now, after a plain path: no cut cell - left to its case
    manifest.write_text("case,image,mask,phantom\np1,ct.nii.gz,lab.nii.gz,True\np2,12345,lab.nii.gz, no\n",
                        encoding="utf-8")
    assert [r["image"] for r in read_manifest(manifest)][1] == str(tmp_path / "12345")


def test_resume_into_an_older_folder_without_params_json_names_what_its_cases_show(cohort, tmp_path):
    """QA (LIDC crops, a batch folder of an older lungai: params.key, no params.json): a re-run with other
    parameters was refused naming no difference ("holds 4 case(s) done with other parameters or segments"), fix "run
    with the parameters they were made with" - which the user could not know.  It names what the cases show (feature
    classes, image types, segments, and the settings from the table's .settings.json), keeps them, and the same
    parameters still resume them."""
    out = tmp_path / "old.csv"
    first = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    parts = tmp_path / "old.csv.parts"
    (parts / "params.json").unlink()                               # as an older lungai left it
    kept = {p.name: p.read_bytes() for p in parts.iterdir()}
    tries = [(load_params("default", feature_classes=["firstorder", "shape", "glcm"]), SEGMENTS,
              "featureClass: firstorder, shape then, firstorder, glcm, shape now"),
             (load_params("default", feature_classes=["firstorder", "shape"], image_types=["Original", "LoG"],
                          log_sigma=[2.0]), SEGMENTS, "imageType: original then, log, original now"),
             (PARAMS, ["tumour"], "segments: lungs_minus_tumour, tumour then, tumour now")]
    for params, segments, shown in tries:
        with pytest.raises(InputError) as exc:
            run_batch(cohort, out, params, workers=0, segments=segments)
        assert f"holds {counted(len(first.done), 'case')} done with other parameters" in exc.value.problem
        assert "without a record of its parameters (params.json)" in exc.value.problem
        assert f"its cases show: {shown}" in exc.value.problem, exc.value.problem
        assert "(their settings: old.settings.json)" in exc.value.fix
        assert {p.name: p.read_bytes() for p in parts.iterdir()} == kept     # nothing of the cases lost
    binned = json.loads(json.dumps(PARAMS))
    binned["setting"]["binWidth"] = 10
    with pytest.raises(InputError, match="setting.binWidth: 25 then, 10 now"):
        run_batch(cohort, out, binned, workers=0, segments=SEGMENTS)
    again = run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    assert sorted(again.skipped) == sorted(first.done) and again.done == []


def test_resume_into_an_older_folder_with_an_edited_part_names_that_file(cohort, tmp_path):
    """QA (radbatch61): a batch folder of an older lungai (no params.json) whose case part lacks the image_type
    column (edited by hand, or not written by lungai): a re-run with other parameters crashed with KeyError
    'image_type' (a traceback).  Now refused as before, naming that part file as given and its fix; nothing lost."""
    out = tmp_path / "old.csv"
    run_batch(cohort, out, PARAMS, workers=0, segments=SEGMENTS)
    parts = tmp_path / "old.csv.parts"
    (parts / "params.json").unlink()                               # as an older lungai left it
    cases = sorted(p for p in parts.glob("*.csv") if not p.name.endswith((".errors.csv", ".settings.csv")))
    for p in cases:                                               # user-edited parts (or another program's)
        pd.read_csv(p).drop(columns=["image_type"]).to_csv(p, index=False)
    part = cases[0]
    kept = {p.name: p.read_bytes() for p in parts.iterdir()}
    other = load_params("default", feature_classes=["firstorder", "shape", "glcm"])
    with pytest.raises(InputError) as exc:
        run_batch(cohort, out, other, workers=0, segments=SEGMENTS)
    assert str(part) in exc.value.problem and "image_type" in exc.value.problem, exc.value.problem
    assert str(part) in exc.value.fix, exc.value.fix
    assert "featureClass: firstorder, shape then, firstorder, glcm, shape now" in exc.value.problem  # the others read
    assert {p.name: p.read_bytes() for p in parts.iterdir()} == kept     # nothing lost


@pytest.mark.parametrize("failed, line", [
    (1, "3 cases extracted, 0 already done (skipped), 1 failed; 1.3 s in all -> out.csv"),
    (2, "3 cases extracted, 0 already done (skipped), 2 failed; 1.3 s in all -> out.csv")])
def test_the_summary_gives_the_whole_runs_time_not_the_failures(failed, line):
    """QA plural61: "..., 1 failed in 1.3 s -> out.csv" read as if the failure took 1.3 s; the time is the run's."""
    from pathlib import Path

    from lungai.dicom.cohort import CohortSummary
    from lungai.radiomics.batch import BatchSummary

    summary = BatchSummary(Path("out.csv"), done=["a", "b", "c"], failed=[(f"f{i}", "x") for i in range(failed)],
                           seconds=1.31)
    assert summary.text().splitlines()[0] == line, summary.text()
    one = CohortSummary(Path("out"), done=["a"], failed=[(f"f{i}", "x") for i in range(failed)], seconds=1.31)
    assert one.text().splitlines()[0] == f"1 patient processed, 0 already done (skipped), {failed} failed; 1.3 s in " \
                                         "all -> out", one.text()



@pytest.mark.parametrize("workers", [1, 0])
def test_a_library_warning_in_a_dask_worker_is_said_once_naming_its_patient(workers):
    """QA progfollow63: a warning that is no InputNote (numpy's RuntimeWarning, a UserWarning of SimpleITK,
    pyradiomics ...) raised in a Dask worker (`cohort` / `radiomics-batch --workers N`) was printed by the worker
    process as raw Python text straight to the terminal - glued to the bar's line (``radiomics-batch:   0%|...| 0/2
    [00:00<?, ?it/s]/.../fromnumeric.py:3824: RuntimeWarning: Mean of empty slice``), naming no patient - or lost:
    lungai.dask_workers collected the InputNotes only.  Now it comes back with the case's result and the main process
    says it as Python words it, on lines of its own beside the bar, once in the command, naming the patient
    ("<case>: <text>") - one rule with the plain loop (--workers 0), which named no patient either.  (A subprocess:
    pytest records the warnings of its own process.)"""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import warnings
        from lungai.cli import _input_notes
        from lungai.radiomics.cluster import run_tasks

        def fn(item):
            import warnings
            import numpy as np

            np.mean(np.array([]))                          # numpy: "Mean of empty slice"
            warnings.warn(f"{{item}} looked odd", UserWarning)
            return {{"case": item, "status": "done"}}

        summary = type("Summary", (), {{"done": [], "failed": [], "skipped": []}})()
        with _input_notes():
            run_tasks("radiomics-batch", fn, ["P1", "P2"], ["P1", "P2"], (), lambda item: False, summary,
                      {workers}, None)
        assert sorted(summary.done) == ["P1", "P2"], summary.done
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          env={"LUNGAI_PROGRESS": "bar", "PATH": "", "OMP_NUM_THREADS": "1"})
    err = proc.stderr
    assert proc.returncode == 0, err
    said = [line for line in err.split("\n") if "Mean of empty slice" in line]
    assert len(said) == 1, err                                           # once in the command, not per patient
    assert "RuntimeWarning: P1: Mean of empty slice" in said[0], said    # naming the (first) patient
    assert "\r" not in said[0] and "it/s" not in said[0], said           # a line of its own beside the bar
    assert said[0].split(":")[0].endswith(".py")                         # as Python words it: where it was raised
    for case in ("P1", "P2"):                                            # each patient's own text, once
        assert len([line for line in err.split("\n") if f"UserWarning: {case}: {case} looked odd" in line]) == 1, err


def test_relative_paths_written_from_the_current_folder_are_refused_naming_where_they_are_read_from(tmp_path,
                                                                                                  monkeypatch):
    """QA radbatch65 (`lungai radiomics-batch sub/m.csv` run from the project folder, the manifest's cells
    `data/LIDC-IDRI-0001_R_1_ct.nii.gz` written from there): every case failed with "sub/data/... does not exist",
    fix "check the path (and that the drive is mounted)" - not that relative paths are read from the manifest's
    folder.  Refused before any work, naming the rule and the cell to write; a manifest beside its data reads."""
    import shutil

    src = tmp_path / "src"
    write_synthetic_cohort(src, 1, seed=3, shape=(40, 40, 16))
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(src / "synth003_000" / "ct.nii.gz", data / "ct.nii.gz")
    shutil.copy(src / "synth003_000" / "labels.nii.gz", data / "labels.nii.gz")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.csv").write_text("case,image,tumour\np1,data/ct.nii.gz,data/labels.nii.gz#1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as exc:
        read_manifest("sub/m.csv")
    assert "all 2 paths in the manifest sub/m.csv name files of the current folder" in exc.value.problem
    assert "data/ct.nii.gz, data/labels.nii.gz#1" in exc.value.problem
    assert "where relative paths are read from" in exc.value.problem
    assert "(../data/ct.nii.gz for data/ct.nii.gz)" in exc.value.fix
    with pytest.raises(InputError, match="name files of the current folder"):
        run_batch("sub/m.csv", tmp_path / "out" / "c.csv", PARAMS, workers=0)
    assert not (tmp_path / "out").exists()                       # before any work
    (sub / "m.csv").write_text("case,image,tumour\np1,../data/ct.nii.gz,../data/labels.nii.gz#1\n",
                               encoding="utf-8")                  # the fix: relative to the manifest's folder
    assert [r["image"] for r in read_manifest("sub/m.csv")] == ["sub/../data/ct.nii.gz"]
    (tmp_path / "m.csv").write_text("case,image,tumour\np1,data/ct.nii.gz,data/labels.nii.gz#1\n", encoding="utf-8")
    assert len(read_manifest("m.csv")) == 1                      # run from the manifest's own folder: as before
    (sub / "m.csv").write_text("case,image,tumour\np1,data/gone.nii.gz,data/labels.nii.gz#1\np2,x.nii.gz,y.nii.gz\n",
                               encoding="utf-8")
    with pytest.raises(InputError, match="1 of the 4 paths in the manifest"):
        read_manifest("sub/m.csv")
    (sub / "m.csv").write_text("case,image,tumour\np2,x.nii.gz,y.nii.gz\n", encoding="utf-8")
    assert len(read_manifest("sub/m.csv")) == 1                  # missing everywhere: left to the case's own error


def test_a_missing_file_of_a_row_is_named_by_its_column_and_cell_as_written_and_where_it_was_looked_for(
        tmp_path, monkeypatch):
    """QA radfollow65 (`lungai radiomics-batch rb/proj/m.csv` run from another folder, an image cell
    `data/nothere.nii.gz`): the case failed with "rb/proj/data/nothere.nii.gz does not exist" - the path it was read
    from, not the cell as the manifest writes it nor its column, while the other row errors quote the cell; a mask
    cell `data/nomask.nii.gz#1` was said as "rb/proj/data/nomask.nii.gz#1 does not exist" (its '#1' a part of the
    file).  Now the row's line, the column and the cell as written, and where the file was looked for."""
    import shutil

    src = tmp_path / "src"
    write_synthetic_cohort(src, 1, seed=3, shape=(40, 40, 16))
    proj = tmp_path / "rb" / "proj"
    (proj / "data").mkdir(parents=True)
    shutil.copy(src / "synth003_000" / "ct.nii.gz", proj / "data" / "ct.nii.gz")
    shutil.copy(src / "synth003_000" / "labels.nii.gz", proj / "data" / "labels.nii.gz")
    (proj / "m.csv").write_text("case,image,mask\np1,data/ct.nii.gz,data/labels.nii.gz\n"
                                "p2,data/nothere.nii.gz,data/labels.nii.gz\n"
                                "p3,data/ct.nii.gz,data/nomask.nii.gz#1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    s = run_batch("rb/proj/m.csv", tmp_path / "out" / "f.csv", PARAMS, workers=0)
    assert s.done == ["p1"]
    failed = dict(s.failed)
    assert failed["p2"].startswith("manifest m.csv line 3, image cell data/nothere.nii.gz: the file does not exist "
                                   "(looked for at rb/proj/data/nothere.nii.gz"), failed["p2"]
    assert "relative paths are read from the manifest's folder" in failed["p2"]
    assert failed["p3"].startswith("manifest m.csv line 4, mask cell data/nomask.nii.gz#1: its file "
                                   "data/nomask.nii.gz does not exist (looked for at rb/proj/data/nomask.nii.gz"), \
        failed["p3"]
    assert "nomask.nii.gz#1 does not exist" not in failed["p3"]
    absolute = tmp_path / "gone" / "ct.nii.gz"
    (proj / "a.csv").write_text(f"case,image,mask\np4,{absolute},data/labels.nii.gz\n", encoding="utf-8")
    s = run_batch("rb/proj/a.csv", tmp_path / "out2" / "f.csv", PARAMS, workers=0)
    assert dict(s.failed)["p4"].startswith(f"manifest a.csv line 2, image cell {absolute}: the file does not exist"), \
        s.failed                                                  # absolute: no folder it was looked for in
    assert "looked for" not in dict(s.failed)["p4"]


def test_the_local_clusters_start_is_said_with_its_seconds_while_it_runs(cohort, tmp_path, monkeypatch, capsys):
    """QA rad69 (radiomics-batch of lung1, LUNG1-002, lung2 and a broken case, default 2 workers, stderr a log): the
    bar stood 5 s on "starting 2 local Dask workers" with no line (QA firstbar64: 15 s on a shared machine), where every
    other slow step is said again with its seconds (lungai.progress.timer_running).  A slow start (here 2.6 s, made
    slow, then failing: no cluster started) is said again while it runs."""
    import time

    import lungai.radiomics.cluster as cluster
    from lungai.cli import main
    from lungai.errors import LungAIError
    from lungai.progress import TICK_INTERVAL, parse_line

    def slow_start(workers):
        time.sleep(2.6 * TICK_INTERVAL)
        raise LungAIError("no cluster here (test)")

    monkeypatch.setattr(cluster, "local_cluster", slow_start)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    main(["radiomics-batch", str(cohort), "--workers", "2", "--feature-classes", "firstorder", "--segments",
          "tumour", "-o", str(tmp_path / "o.csv")])
    shown = [parse_line(line)[1] for line in capsys.readouterr().err.splitlines()
             if line.startswith("LUNGAI_PROGRESS") and " radiomics-batch: " in line]
    assert "radiomics-batch: starting 2 local Dask workers" in shown, shown
    assert "radiomics-batch: starting 2 local Dask workers (2 s)" in shown, shown
