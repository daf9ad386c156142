"""Nothing the user made is overwritten or removed (lungai.io.outputs): a folder command's marker
(``.lungai-<command>``) lists what its runs wrote - files and folders - and a re-run removes only those; a file of
one of its output names that the marker does not list is the user's and refused, marker or not; an input lying in
what a re-run would remove is refused; every single-file command (and the files it writes beside its output)
replaces only a file it recorded; a re-run onto a command's own output stays silent."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk
from dicom_helpers import rt_export, small_phantom

from lungai.errors import InputError

MINE = "the user's own file"


def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


def _mine(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINE, encoding="utf-8")
    return path


def _is_mine(path: Path) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == MINE


@pytest.fixture(scope="module")
def p1(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt_export"))["P1"]


@pytest.fixture(scope="module")
def nifti_ct(tmp_path_factory):
    """The small phantom's CT as NIfTI, and its tumour's seed point."""
    ph = small_phantom(7)
    path = tmp_path_factory.mktemp("nifti") / "ct.nii.gz"
    sitk.WriteImage(ph.ct, str(path))
    return path, "--seed-point=" + ",".join(f"{v:.2f}" for v in ph.meta["tumour"]["centre_mm"])


def test_a_marked_folder_keeps_a_users_file_of_an_output_name(tmp_path):
    from lungai.cli.seg import SEGMENT_OUTPUTS
    from lungai.io.outputs import claim_output_folder, record_outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "tumor.nii.gz").write_text("an earlier run's", encoding="utf-8")
    (out / "old_folder").mkdir()
    record_outputs(out, "segment", ["tumor.nii.gz"])
    _mine(out / "rtstruct.dcm")                       # not recorded: the user's, although segment writes that name
    with pytest.raises(InputError, match="holds rtstruct.dcm, not written by lungai segment"):
        claim_output_folder(out, "segment", owns=SEGMENT_OUTPUTS)
    assert _is_mine(out / "rtstruct.dcm") and (out / "tumor.nii.gz").is_file()
    (out / "rtstruct.dcm").unlink()
    assert claim_output_folder(out, "segment", owns=SEGMENT_OUTPUTS) == ["tumor.nii.gz"]   # only what it recorded
    assert sorted(p.name for p in out.iterdir()) == [".lungai-segment", "old_folder"]


def test_segment_rerun_refuses_the_users_dicom_files_in_its_own_folder(nifti_ct, tmp_path, capsys):
    ct, seed = nifti_ct
    out = tmp_path / "seg1"
    assert _cli("segment", ct, "-o", out, seed, "--seed", 0) == 0          # a NIfTI CT: no DICOM objects
    mine = [_mine(out / "rtstruct.dcm"), _mine(out / "tumor.seg.dcm")]
    capsys.readouterr()
    assert _cli("segment", ct, "-o", out, seed, "--seed", 0) == 2
    err = capsys.readouterr().err
    assert "rtstruct.dcm, tumor.seg.dcm, not written by lungai segment" in err and "How to fix" in err, err
    assert all(_is_mine(p) for p in mine)
    for p in mine:
        p.unlink()
    assert _cli("segment", ct, "-o", out, seed, "--seed", 0) == 0          # its own folder: silently replaced
    assert "removed the previous lungai segment results" in capsys.readouterr().out
    recorded = (out / ".lungai-segment").read_text(encoding="utf-8").splitlines()[1:]
    assert "tumor.nii.gz" in recorded and "result.json" in recorded


def test_segment_that_fails_on_its_input_leaves_no_empty_folder(tmp_path, capsys):
    bad = tmp_path / "ct.nii.gz"
    bad.write_text("not an image", encoding="utf-8")
    assert _cli("segment", bad, "-o", tmp_path / "new" / "seg", "--seed-point=0,0,0") == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_failed_run_still_records_what_it_wrote(tmp_path):
    """After the claim only the run can have written its output names: they are recorded even when it fails, so the
    next run replaces them (and does not take them for the user's)."""
    from lungai.io.outputs import claim_output_folder, claimed_output_folder

    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with claimed_output_folder(out, "sample", ("ct.nii.gz", "meta.json")):
            (out / "ct.nii.gz").write_text("half", encoding="utf-8")
            raise RuntimeError("failed mid-run")
    assert claim_output_folder(out, "sample", ("ct.nii.gz", "meta.json")) == ["ct.nii.gz"]


def test_a_rerun_removes_only_the_files_it_wrote_inside_its_folder(tmp_path):
    """A folder a command wrote (sample's dicom/, the demo's rp_model/) is emptied of the recorded files only: a file
    the user put in it afterwards is kept, and one at a path the run is about to write is refused."""
    from lungai.io.outputs import claimed_output_folder

    out = tmp_path / "out"

    def run(n_slices):
        with claimed_output_folder(out, "sample", ("ct.nii.gz", "dicom"),
                                   writes=[f"dicom/S/CT/ct_{k}.dcm" for k in range(n_slices)]):
            (out / "ct.nii.gz").write_text("ct", encoding="utf-8")
            for k in range(n_slices):
                (out / "dicom" / "S" / "CT").mkdir(parents=True, exist_ok=True)
                (out / "dicom" / "S" / "CT" / f"ct_{k}.dcm").write_text("slice", encoding="utf-8")

    run(3)
    assert "dicom/S/CT/ct_2.dcm" in (out / ".lungai-sample").read_text(encoding="utf-8").splitlines()
    mine = [_mine(out / "dicom" / "S" / "dose.csv"), _mine(out / "dicom" / "S" / "CT" / "notes.txt")]
    run(2)                                                   # fewer slices: ct_2 of the earlier run is removed
    assert all(_is_mine(p) for p in mine)
    assert sorted(p.name for p in (out / "dicom" / "S" / "CT").iterdir()) == ["ct_0.dcm", "ct_1.dcm", "notes.txt"]
    assert "dicom/S/dose.csv" not in (out / ".lungai-sample").read_text(encoding="utf-8")
    _mine(out / "dicom" / "S" / "CT" / "ct_2.dcm")               # the user's, where the next run writes
    with pytest.raises(InputError, match="holds dicom/S/CT/ct_2.dcm, not written by lungai sample"):
        run(3)
    assert all(_is_mine(p) for p in mine + [out / "dicom" / "S" / "CT" / "ct_2.dcm"])


def test_a_marker_listing_a_folder_without_its_files_is_refused_before_any_work(tmp_path):
    """A marker that lists a folder by its name only (written by intermediate versions of lungai) does not say
    which files in it the run wrote: the folder is never removed or replaced, the run is refused before any work
    (check_output_owner) with the fix, whatever the files' times say (a file moved in with mv keeps its mtime)."""
    import os
    import time

    from lungai.io.outputs import check_output_owner, claim_output_folder

    out = tmp_path / "out"
    (out / "dicom" / "CT").mkdir(parents=True)
    _mine(out / "dicom" / "CT" / "ct_1.dcm")
    marker = out / ".lungai-sample"
    marker.write_text("written by lungai sample\ndicom\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(marker, (later, later))                          # nothing in the folder is newer than the marker
    for call in (check_output_owner, claim_output_folder):
        with pytest.raises(InputError, match="does not list the files in it; it is not replaced") as err:
            call(out, "sample", ("dicom",))
        assert "delete it yourself, or choose another folder" in err.value.fix
        assert _is_mine(out / "dicom" / "CT" / "ct_1.dcm")
    assert marker.read_text(encoding="utf-8") == "written by lungai sample\ndicom\n"
    assert _cli("sample", "-o", out, "--dicom") == 2                 # the CLI: refused, nothing written
    assert _is_mine(out / "dicom" / "CT" / "ct_1.dcm")
    (out / "dicom" / "CT" / "ct_1.dcm").unlink()
    (out / "dicom" / "CT").rmdir()
    (out / "dicom").rmdir()                                   # the user deleted it: the run goes ahead
    assert _cli("sample", "-o", out, "--dicom") == 0 and (out / "dicom").is_dir()


def test_sample_rerun_keeps_the_users_files_in_its_dicom_folder(tmp_path):
    out = tmp_path / "sd"
    assert _cli("sample", "-o", out, "--dicom") == 0
    study = out / "dicom" / "LUNGAI-SAMPLE"
    mine = [_mine(study / "dose.csv"), _mine(study / "my_notes.txt")]
    assert _cli("sample", "-o", out, "--dicom") == 0
    assert all(_is_mine(p) for p in mine) and (study / "RTDOSE" / "rtdose.dcm").is_file()


def test_demo_refuses_an_input_inside_a_result_it_would_remove(tmp_path):
    from lungai.demo.pipeline import DEMO_OUTPUTS, run_demo
    from lungai.io.outputs import record_outputs

    out = tmp_path / "demo2"
    (out / "rp_model").mkdir(parents=True)
    _mine(out / "rp_model" / "model.joblib")
    _mine(out / "dose.nii.gz")
    record_outputs(out, "demo", ["rp_model", "dose.nii.gz"])              # an earlier demo run's
    for kwargs, shown in (({"rp_model": out / "rp_model"}, "rp_model"), ({"dose": out / "dose.nii.gz"}, "dose.nii.gz")):
        with pytest.raises(InputError, match="a result of an earlier lungai demo run") as err:
            run_demo(out, small=True, **kwargs)
        assert shown in str(err.value) and "copy it out of that folder" in err.value.fix
    assert _is_mine(out / "rp_model" / "model.joblib") and _is_mine(out / "dose.nii.gz")
    assert set(DEMO_OUTPUTS) >= {"rp_model", "dose.nii.gz"}


def test_demo_refuses_a_users_file_of_an_output_name_in_its_own_folder(tmp_path):
    from lungai.demo.pipeline import run_demo
    from lungai.io.outputs import record_outputs

    out = tmp_path / "demo"
    out.mkdir()
    record_outputs(out, "demo", ["ct.nii.gz"])
    _mine(out / "report.html")
    with pytest.raises(InputError, match="holds report.html, not written by lungai demo"):
        run_demo(out, small=True)
    assert _is_mine(out / "report.html")


def test_dicom_export_never_replaces_the_users_dicom_files(p1, tmp_path, capsys):
    lungs = tmp_path / "case" / "lungs.nii.gz"
    assert _cli("lungs", p1["ct"], "-o", lungs) == 0
    u3 = tmp_path / "u3"
    mine = _mine(u3 / "rtstruct.dcm")
    capsys.readouterr()
    assert _cli("dicom-export", "--ct", p1["ct"], "--lungs", lungs, "-o", u3) == 2
    assert "holds rtstruct.dcm, not written by lungai dicom-export" in capsys.readouterr().err
    assert _is_mine(mine)
    out = tmp_path / "export"
    for _ in range(2):                                                   # a re-run replaces its own files
        assert _cli("dicom-export", "--ct", p1["ct"], "--lungs", lungs, "-o", out) == 0
    assert (out / "rtstruct.dcm").is_file() and (out / "results.seg.dcm").is_file()
    assert "rtstruct.dcm" in (out / ".lungai-dicom-export").read_text(encoding="utf-8")


def test_lungs_replaces_only_its_own_file_and_dicom_objects(p1, nifti_ct, tmp_path, capsys):
    ct, _ = nifti_ct
    mine = _mine(tmp_path / "u2" / "lungsout.nii.gz")
    assert _cli("lungs", ct, "-o", mine) == 2
    assert "already exists and was not written by lungai lungs" in capsys.readouterr().err
    assert _is_mine(mine)
    side = _mine(tmp_path / "u3" / "lungs.rtstruct.dcm")                # the DICOM object beside a DICOM CT's
    assert _cli("lungs", p1["ct"], "-o", tmp_path / "u3" / "lungs.nii.gz") == 2
    assert _is_mine(side) and not (tmp_path / "u3" / "lungs.nii.gz").exists()
    for _ in range(2):
        assert _cli("lungs", ct, "-o", tmp_path / "own" / "lungs.nii.gz") == 0


def test_radiomics_never_replaces_the_users_table_or_sidecars(sample_dir, tmp_path, capsys):
    ct, labels = sample_dir / "ct.nii.gz", sample_dir / "labels.nii.gz"
    args = ["radiomics", "--image", ct, "--mask", labels, "--label", "1"]
    for name in ("features.csv", "features_settings.csv", "features.settings.json"):
        folder = tmp_path / name.replace(".", "_")
        mine = _mine(folder / name)
        assert _cli(*args, "-o", folder / "features.csv") == 2, name
        assert "was not written by lungai radiomics" in capsys.readouterr().err
        assert _is_mine(mine) and sorted(p.name for p in folder.iterdir()) == [name]


def test_a_failed_lungs_or_radiomics_run_records_what_it_had_written(p1, sample_dir, tmp_path, monkeypatch):
    """The table / image is recorded as soon as the run ends, a failure after writing it included: the next run
    replaces it instead of taking it for the user's."""
    lf = tmp_path / "lf"
    (lf / "lungs.rtstruct.dcm").mkdir(parents=True)                      # the DICOM export fails
    assert _cli("lungs", p1["ct"], "-o", lf / "lungs.nii.gz") == 2
    (lf / "lungs.rtstruct.dcm").rmdir()
    assert _cli("lungs", p1["ct"], "-o", lf / "lungs.nii.gz") == 0
    import lungai.radiomics.settings as settings

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings, "write_sidecar", broken)              # fails after the table was written
    args = ["radiomics", "--image", sample_dir / "ct.nii.gz", "--mask", sample_dir / "labels.nii.gz", "--label", "1",
            "-o", tmp_path / "r" / "features.csv"]
    assert _cli(*args) == 2 and (tmp_path / "r" / "features.csv").is_file()
    monkeypatch.undo()
    assert _cli(*args) == 0


def test_rp_synth_refuses_the_users_file_and_reruns_silently(tmp_path, capsys):
    mine = _mine(tmp_path / "u2" / "my.csv")
    assert _cli("rp", "synth", "-o", mine, "-n", 20) == 2
    assert "was not written by lungai rp synth" in capsys.readouterr().err and _is_mine(mine)
    for _ in range(2):
        assert _cli("rp", "synth", "-o", tmp_path / "own" / "cohort.csv", "-n", 20) == 0


def test_sample_refuses_the_users_file_and_reruns_silently(tmp_path, capsys):
    mine = _mine(tmp_path / "u6" / "ct.nii.gz")
    assert _cli("sample", "-o", mine.parent) == 2
    assert "holds ct.nii.gz, not written by lungai sample" in capsys.readouterr().err and _is_mine(mine)
    for _ in range(2):
        assert _cli("sample", "-o", tmp_path / "case", "--slice-thickness", 5) == 0


def test_stage_synth_refuses_the_users_file_and_reruns_silently(tmp_path, capsys):
    mine = _mine(tmp_path / "u4" / "rna.csv")
    assert _cli("stage", "synth", "-o", mine.parent, "--patients", 6, "--genes", 20) == 2
    assert "holds rna.csv, not written by lungai stage synth" in capsys.readouterr().err and _is_mine(mine)
    assert sorted(p.name for p in mine.parent.iterdir()) == ["rna.csv"]
    for _ in range(2):
        assert _cli("stage", "synth", "-o", tmp_path / "cohort", "--patients", 6, "--genes", 20) == 0
    assert (tmp_path / "cohort" / "ct").is_dir()


def test_eval_seg_refuses_the_users_csv_before_any_work(sample_dir, tmp_path, capsys):
    mine = _mine(tmp_path / "u5" / "eval.csv")
    assert _cli("eval-seg", "--images", sample_dir, "--masks", sample_dir, "-o", mine) == 2
    assert "was not written by lungai eval-seg" in capsys.readouterr().err and _is_mine(mine)


def test_a_recorded_file_changed_since_the_run_is_the_users(tmp_path, capsys):
    """QA: markers recorded names only, so a user's own file saved at a name an earlier run wrote (edited and saved
    over it, or deleted and written anew) was replaced by a re-run.  The marker stamps each file as written (size and
    modification time): a changed one is refused, in a folder too; an unchanged re-run still replaces; a marker
    without stamps (an earlier lungai) keeps names-only."""
    import os

    out = tmp_path / "own" / "cohort.csv"
    assert _cli("rp", "synth", "-o", out, "-n", 20) == 0
    assert _cli("rp", "synth", "-o", out, "-n", 20) == 0                 # unchanged: replaced silently
    out.unlink()
    _mine(out)                                                           # deleted, then the user's own saved there
    assert _cli("rp", "synth", "-o", out, "-n", 20) == 2
    assert "cohort.csv changed since lungai rp synth wrote it" in capsys.readouterr().err and _is_mine(out)
    marker = out.parent / ".lungai-rp-synth"
    marker.write_text("written by lungai rp-synth\ncohort.csv\n", encoding="utf-8")   # an earlier version's marker
    assert _cli("rp", "synth", "-o", out, "-n", 20) == 0

    case = tmp_path / "case"
    assert _cli("sample", "-o", case, "--slice-thickness", 5) == 0
    meta = case / "meta.json"
    st = meta.stat()
    meta.write_bytes(meta.read_bytes()[:-1] + b" ")                    # edited in place, same size
    os.utime(meta, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    edited = meta.read_bytes()
    assert _cli("sample", "-o", case, "--slice-thickness", 5) == 2
    err = capsys.readouterr().err
    assert "holds meta.json, changed since lungai sample wrote it" in err, err
    assert meta.read_bytes() == edited
    meta.unlink()                                                        # removed: nothing of the user's is lost
    assert _cli("sample", "-o", case, "--slice-thickness", 5) == 0

    from lungai.io.outputs import claimed_output_folder

    folder = tmp_path / "folder"
    for _ in range(2):                                                   # a file inside a folder it wrote
        with claimed_output_folder(folder, "sample", ("dicom",)):
            (folder / "dicom" / "S").mkdir(parents=True, exist_ok=True)
            (folder / "dicom" / "S" / "ct_0.dcm").write_text("slice", encoding="utf-8")
    _mine(folder / "dicom" / "S" / "ct_0.dcm")
    with pytest.raises(InputError, match="holds dicom/S/ct_0.dcm, changed since lungai sample wrote it"):
        claimed_output_folder(folder, "sample", ("dicom",)).__enter__()
    assert _is_mine(folder / "dicom" / "S" / "ct_0.dcm")


def _killed_sample(out: Path, after: str) -> None:
    """``lungai sample -o out`` killed (SIGKILL: no ``finally``, no step end) right after it wrote ``after``."""
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        "import lungai.io.write as w\n"
        "orig = w.write_image\n"
        "def killing(img, path, *a, **k):\n"
        "    r = orig(img, path, *a, **k)\n"
        f"    if str(path).endswith({after!r}):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return r\n"
        "w.write_image = killing\n"
        "from lungai.cli import main\n"
        "main(['sample', '-o', sys.argv[1], '--slice-thickness', '5'])\n")
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr


def test_a_killed_run_leaves_its_written_files_recorded(tmp_path, capsys):
    """QA: outputs were recorded when a step (or the run) ended, so a run killed mid-step (SIGKILL, power loss, out
    of memory) left files that the re-run refused as the user's ("not written by lungai ..."): the user had to
    delete them by hand.  Each file is stamped in the marker as it lands: the re-run replaces them; a file saved
    there after the kill, or one lungai never stamped, is still refused and kept."""
    out = tmp_path / "case"
    _killed_sample(out, "labels.nii.gz")
    assert (out / "ct.nii.gz").is_file() and (out / "labels.nii.gz").is_file() and not (out / "meta.json").exists()
    marker = (out / ".lungai-sample").read_text(encoding="utf-8")
    assert "ct.nii.gz" in marker and "labels.nii.gz" in marker and (out / ".lungai.lock").is_file()
    assert _cli("sample", "-o", out, "--slice-thickness", 5) == 0, capsys.readouterr().err   # the lock: stale
    assert (out / "meta.json").is_file()
    assert not (out / ".lungai.lock").exists()                  # the run ended: released

    _killed_sample(out, "ct.nii.gz")                    # killed again, then the user saves a file of an output name
    (out / "ct.nii.gz").unlink()
    _mine(out / "ct.nii.gz")                            # over one the killed run wrote: its stamp differs
    assert _cli("sample", "-o", out, "--slice-thickness", 5) == 2
    assert "holds ct.nii.gz, changed since lungai sample wrote it" in capsys.readouterr().err
    assert _is_mine(out / "ct.nii.gz")
    (out / "ct.nii.gz").unlink()
    _mine(out / "labels.nii.gz")                        # one the killed run never wrote (nor stamped)
    assert _cli("sample", "-o", out, "--slice-thickness", 5) == 2
    assert "holds labels.nii.gz, not written by lungai sample" in capsys.readouterr().err
    assert _is_mine(out / "labels.nii.gz")


def test_a_concurrent_run_into_the_folder_is_refused_a_stale_one_ignored(tmp_path):
    """A run in progress holds the folder's lock .lungai.lock (pid, computer, start, command): a second run into the
    same folder is refused naming that process - nothing of the first run's removed; once the process is gone
    (killed), or its pid belongs to a process started later, the lock is stale and taken over."""
    import os
    import subprocess
    import sys
    import time

    from lungai.io.outputs import _host, claim_output_folder, claimed_output_folder

    out = tmp_path / "out"
    owns = ("ct.nii.gz", "meta.json")
    script = ("import sys, time\n"
              "from lungai.io.outputs import claimed_output_folder, writing\n"
              "with claimed_output_folder(sys.argv[1], 'sample', ('ct.nii.gz', 'meta.json')):\n"
              "    with writing(sys.argv[1] + '/ct.nii.gz'):\n"
              "        open(sys.argv[1] + '/ct.nii.gz', 'w').write('first run')\n"
              "    time.sleep(120)\n")
    first = subprocess.Popen([sys.executable, "-c", script, str(out)])
    try:
        for _ in range(300):
            if (out / "ct.nii.gz").is_file():
                break
            time.sleep(0.1)
        with pytest.raises(InputError, match=f"in use by another lungai sample run \\(process {first.pid} on "):
            with claimed_output_folder(out, "sample", owns):
                pass
        assert (out / "ct.nii.gz").read_text(encoding="utf-8") == "first run"
    finally:
        first.kill()
        first.wait()
    lock = out / ".lungai.lock"
    assert lock.read_text(encoding="utf-8").split()[0] == str(first.pid)       # left by the killed run
    with claimed_output_folder(out, "sample", owns) as removed:                 # stale: taken over
        assert removed == ["ct.nii.gz"]                                          # (stamped as it landed)
        assert lock.read_text(encoding="utf-8").split()[0] == str(os.getpid())
    assert not lock.exists()
    # a pid now given to a process that started after the entry (the parent here): stale too
    lock.write_text(f"{os.getppid()} {_host()} 1000.00 sample\n", encoding="utf-8")
    claim_output_folder(out, "sample", owns)
    assert not lock.exists()
    # another computer's run (a shared folder, another container) cannot be checked: refused, naming that computer
    # and how to clear it - delete the lock file only
    lock.write_text(f"12345 other-host {time.time():.2f} sample\n", encoding="utf-8")
    with pytest.raises(InputError, match="process 12345 on other-host") as refused:
        claim_output_folder(out, "sample", owns)
    assert f"delete the lock file {lock} - only that file" in refused.value.fix
    assert lock.is_file() and (out / ".lungai-sample").is_file()                 # nothing removed
    lock.unlink()
    claim_output_folder(out, "sample", owns)


def test_two_runs_started_at_once_into_a_new_folder_one_is_refused(tmp_path):
    """QA: two runs into the same (new) folder both went ahead - the check returned early for a folder not yet
    there, and the marker write of one wiped the other's entry.  The folder's lock is taken atomically (O_EXCL)
    before anything is removed or written: of runs started at the same instant, exactly one proceeds."""
    import subprocess
    import sys
    import time

    script = ("import os, sys, time\n"
              "from pathlib import Path\n"
              "from lungai.errors import InputError\n"
              "from lungai.io.outputs import claimed_output_folder, writing\n"
              "out, t0 = sys.argv[1], float(sys.argv[2])\n"
              "while time.time() < t0: pass\n"
              "try:\n"
              "    with claimed_output_folder(out, 'sample', ['ct.nii.gz', 'meta.json']):\n"
              "        time.sleep(3.0)\n"   # held long enough for a run slow to start (a loaded machine)
              "        with writing(Path(out) / 'meta.json'):\n"
              "            Path(out, 'meta.json').write_text(str(os.getpid()))\n"
              "    print('PROCEED')\n"
              "except InputError as exc:\n"
              "    print('REFUSED', exc)\n")
    for trial in range(2):
        out = tmp_path / f"new{trial}"
        start = time.time() + 3              # a barrier: both spin until then (the imports done)
        runs = [subprocess.Popen([sys.executable, "-c", script, str(out), str(start)], stdout=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        said = sorted(r.communicate(timeout=120)[0].split(" ", 1)[0].strip() for r in runs)
        assert said == ["PROCEED", "REFUSED"], said
        assert not (out / ".lungai.lock").exists() and (out / "meta.json").is_file()
        assert "meta.json" in (out / ".lungai-sample").read_text(encoding="utf-8")


def test_a_killed_runs_temporary_files_are_removed_by_the_next_claim(tmp_path):
    """QA: a run killed while writing its marker or rp's model left .partial-lungai-<command>-<pid> and
    model.skops.tmp behind for good.  The next claim removes lungai's own temporary names (a marker's of a process
    gone; <output>.tmp of the output names), no other file."""
    from lungai.io.outputs import claim_output_folder

    out = tmp_path / "m"
    claim_output_folder(out, "rp-train", ["model.skops", "metrics.json"])
    dead = 2 ** 22 + 12345                    # above any pid the system gives
    (out / f".partial-lungai-rp-train-{dead}").write_text("cut off", encoding="utf-8")
    (out / "model.skops.tmp").write_bytes(b"half a model")
    for keep in ("notes.tmp", "model.skops.bak", ".partial-lungai-rp-train-notapid"):
        _mine(out / keep)
    claim_output_folder(out, "rp-train", ["model.skops", "metrics.json"])
    assert not (out / f".partial-lungai-rp-train-{dead}").exists() and not (out / "model.skops.tmp").exists()
    for keep in ("notes.tmp", "model.skops.bak", ".partial-lungai-rp-train-notapid"):
        assert _is_mine(out / keep)


def test_many_small_files_do_not_rewrite_the_marker_per_file(tmp_path, monkeypatch):
    """QA: each landed file re-read and rewrote the whole marker: 3000 DICOM slices took 7 s instead of 0.2 s.
    While files land faster than the marker is written, it is rewritten only now and then - all recorded at the
    end, and a slow file (an image) still stamped at once."""
    import lungai.io.outputs as outputs

    writes = []
    real = outputs._write_marker
    monkeypatch.setattr(outputs, "_write_marker", lambda *a, **k: (writes.append(1), real(*a, **k)))
    out = tmp_path / "s"
    with outputs.claimed_output_folder(out, "sample", ["dicom"]):
        for i in range(1000):
            p = out / "dicom" / f"f{i:05d}.dcm"
            p.parent.mkdir(parents=True, exist_ok=True)
            with outputs.writing(p):
                p.write_bytes(b"x" * 100)
    assert len(writes) < 300, len(writes)
    entries = outputs._read_marker(out, "sample")
    assert len([n for n in entries if n.startswith("dicom/f")]) == 1000 and all(entries[n] for n in entries
                                                                               if n != "dicom/")


def test_a_killed_rp_train_leaves_its_files_recorded(tmp_path, capsys, monkeypatch):
    """QA: rp train claimed its model folder without the claim's context: no lock, nothing stamped as it landed.
    Killed once cv_predictions.csv was written, the re-run refused calibration.png, cv_predictions.csv, roc.png
    as "not written by lungai rp train".  Its files are now stamped as they land and the re-run replaces them."""
    import subprocess
    import sys

    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    make_cohort(60, seed=2, n_noise=0).table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m"
    args = ["rp", "train", str(tmp_path / "t.csv"), "--outcome", "rp_grade2", "-o", str(model), "--fast",
            "--models", "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2", "--inner-folds", "2",
            "--bootstrap", "2"]
    script = ("import os, signal, sys, time\n"
              "import lungai.radiomics.csv_output as c\n"
              "orig = c.write_csv\n"
              "def killing(*a, **k):\n"
              "    orig(*a, **k)\n"
              "    time.sleep(1.5)\n"                 # killed once the file is seen (the reviewer's repro)
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "c.write_csv = killing\n"
              "from lungai.cli import main\n"
              "main(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "LUNGAI_PROGRESS": "off"})
    assert done.returncode == -9, done.stderr
    assert (model / "cv_predictions.csv").is_file() and not (model / "model.skops").exists()
    marker = (model / ".lungai-rp-train").read_text(encoding="utf-8")
    assert all(n in marker for n in ("roc.png", "calibration.png", "cv_predictions.csv"))
    assert _cli(*args) == 0, capsys.readouterr().err
    assert (model / "model.skops").is_file() and not (model / ".lungai.lock").exists()


def _begun(out: Path, command: str, owns):
    """A run's claim of ``out`` as :func:`claimed_output_folder` makes it (lock held, files stamped as they land),
    without the context whose end a killed run never reaches; :func:`_kill` ends it so."""
    import lungai.io.outputs as outputs

    outputs.claim_output_folder(out, command, owns, running=True)
    active = outputs._Active(out, command, owns, set())
    outputs._ACTIVE.append(active)
    return active


def _kill(*actives) -> None:
    """The runs of ``actives`` killed: no finally runs (their locks stay, their markers as they were)."""
    import lungai.io.outputs as outputs

    for active in actives:
        active.stop()
        outputs._ACTIVE.remove(active)
        outputs._HELD.pop(active.out, None)


def _killed_demo_in_rp_train(out: Path) -> Path:
    """The states ``lungai demo`` killed inside its rp-train step leaves (simulated, not raced): the demo's claim of
    ``out`` and, inside it, rp train's claim of ``out/rp_model`` with a stale lock (a pid no longer running)."""
    import lungai.io.outputs as outputs

    dead = 2 ** 22 + 12345                    # above any pid the system gives
    demo = _begun(out, "demo", ["ct.nii.gz", "rp_model"])
    with outputs.writing(out / "ct.nii.gz"):
        (out / "ct.nii.gz").write_text("demo ct", encoding="utf-8")
    rp = _begun(out / "rp_model", "rp-train", ["roc.png", "calibration.png"])
    with outputs.writing(out / "rp_model" / "roc.png"):
        (out / "rp_model" / "roc.png").write_text("a plot", encoding="utf-8")
    rp.flush()
    outputs.record_outputs(out, "demo", ["ct.nii.gz", "rp_model"])   # the demo's step end: all stamped as they are
    _kill(demo, rp)
    for lock in (out / ".lungai.lock", out / "rp_model" / ".lungai.lock"):
        lock.write_text(f"{dead} {outputs._host()} 1000.00 demo\n", encoding="utf-8")
    return out / "rp_model"


def test_a_demo_killed_in_its_rp_train_step_is_not_refused_for_lungais_own_marker(tmp_path):
    """QA: ``lungai demo`` killed during rp train was refused on re-run: "the output folder holds
    rp_model/.lungai-rp-train, changed since lungai demo wrote it ... move that file away" - rp train rewrites its
    marker as its files land, and the demo's stamp of it lagged behind.  lungai's own bookkeeping files in a folder
    it wrote (a nested run's marker, lock, temporary marker) are lungai's by name and never compared by stamp; a
    user's file changed there still is."""
    import time

    import lungai.io.outputs as outputs

    out = tmp_path / "d3"
    model = _killed_demo_in_rp_train(out)
    time.sleep(0.05)
    with outputs.writing(model / "calibration.png"):          # rp train went on: its marker rewritten (stamp differs)
        (model / "calibration.png").write_text("another plot", encoding="utf-8")
    outputs._write_marker(model, "rp-train", outputs._read_marker(model, "rp-train") | {"calibration.png": None})
    assert "rp_model/.lungai-rp-train" in outputs._read_marker(out, "demo")    # stamped, now stale
    assert outputs._changed(out, "demo") == []
    with outputs.claimed_output_folder(out, "demo", ["ct.nii.gz", "rp_model"], new_or_own=True) as removed:
        assert "rp_model" in removed and "ct.nii.gz" in removed
    # a file of the demo's changed since is still refused
    _killed_demo_in_rp_train(tmp_path / "d4")
    time.sleep(0.05)
    (tmp_path / "d4" / "rp_model" / "roc.png").write_text("edited by me", encoding="utf-8")
    with pytest.raises(InputError, match="holds rp_model/roc.png, changed since lungai demo wrote it"):
        outputs.claim_output_folder(tmp_path / "d4", "demo", ["ct.nii.gz", "rp_model"], new_or_own=True)


def test_a_demo_killed_right_after_rp_train_took_its_lock_is_not_refused(tmp_path):
    """QA: killed a moment after rp train took its lock in the demo's rp_model/ (the folder's stamp still pending in
    the demo's marker), the re-run said "holds rp_model, not written by lungai demo".  A folder made inside a
    claimed folder is recorded at once, and a folder holding only lungai's bookkeeping files (a stale lock) is
    lungai's own."""
    import lungai.io.outputs as outputs

    out = tmp_path / "d3"
    dead = 2 ** 22 + 12345
    owns = ["ct.nii.gz", "rp_model"]
    demo = _begun(out, "demo", owns)
    outputs.STAMP_EVERY, every = 60, outputs.STAMP_EVERY     # no timer flush comes to the rescue
    try:
        with outputs.writing(out / "ct.nii.gz"):
            (out / "ct.nii.gz").write_text("demo ct", encoding="utf-8")
        outputs.claim_output_folder(out / "rp_model", "rp-train", ["roc.png"], running=True)
        assert "rp_model/" in outputs._read_marker(out, "demo")     # recorded at once, not a timer later
    finally:
        outputs.STAMP_EVERY = every
        _kill(demo)
        outputs._HELD.pop((out / "rp_model").resolve(), None)
    (out / "rp_model" / ".lungai-rp-train").unlink()                 # killed before rp train wrote its marker
    (out / "rp_model" / ".lungai.lock").write_text(f"{dead} {outputs._host()} 1000.00 rp-train\n", encoding="utf-8")
    (out / ".lungai.lock").write_text(f"{dead} {outputs._host()} 1000.00 demo\n", encoding="utf-8")
    outputs.claim_output_folder(out, "demo", owns, new_or_own=True)
    # a marker of an earlier lungai that never listed rp_model/: a folder of lungai's bookkeeping files only is its own
    outputs._write_marker(out, "demo", {})
    outputs.claim_output_folder(out, "demo", owns, new_or_own=True)
    _mine(out / "rp_model" / "notes.txt")                            # but one holding a file of the user's is not
    with pytest.raises(InputError, match="holds rp_model, not written by lungai demo"):
        outputs.claim_output_folder(out, "demo", owns, new_or_own=True)


def test_an_unreadable_young_lock_says_a_run_is_starting(tmp_path):
    """QA: a lock that cannot be read (empty, garbage: a run writing it right now, or killed while starting) was
    said as "in use by another lungai ? run (process 0 on ?, ...)"."""
    from lungai.io.outputs import claim_output_folder

    out = tmp_path / "oh"
    out.mkdir()
    (out / ".lungai.lock").write_text("garbage\n", encoding="utf-8")
    with pytest.raises(InputError) as refused:
        claim_output_folder(out, "sample", ["ct.nii.gz"])
    said = str(refused.value) + " " + refused.value.fix
    assert "a lungai run is starting in" in said and "killed while starting" in said
    assert f"delete {out / '.lungai.lock'} (only that file)" in said and "wait a minute" in said
    assert "?" not in said and "process 0" not in said


def test_a_lock_never_written_is_waited_for_once(tmp_path, monkeypatch):
    """QA: a lock created but never written (a run killed while starting) cost 2 s before the refusal, not 1 s:
    _lock read it (waiting up to a second for it to be written), then check_not_running read it again, waiting
    again.  The holder read is passed on: one wait."""
    from lungai.io import outputs

    real, reads = outputs._holder, []

    def holder(lock):
        reads.append(lock)
        return real(lock)

    monkeypatch.setattr(outputs, "_holder", holder)
    out = tmp_path / "oh"
    out.mkdir()
    (out / ".lungai.lock").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="a lungai run is starting in"):
        with outputs.locked_output_folder(out, "cohort"):
            pass
    assert len(reads) == 1


@pytest.mark.parametrize("entry", ["claim", "early check"])
def test_a_lock_being_written_by_a_run_started_at_once_is_read_again_and_names_it(tmp_path, entry):
    """Found with two `lungai radiomics-batch` started at once into one folder: the second found the lock the first
    had just created, still empty, and said "a lungai run is starting ... or one was killed while starting" - not
    naming the run that was going on.  A lock found empty is read again for a moment: the refusal names the
    process of the run that holds it.  Review: the early check of segment, dicom-export, sample, rp, stage
    (check_output_owner / prepare_output_folder(owner=...) -> check_not_running) read it only once; both read the
    lock through one helper (lungai.io.outputs._holder) that waits for it to be written."""
    import os
    import threading

    from lungai.io import outputs
    from lungai.io.outputs import _host, _process_started

    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".lungai.lock"
    lock.write_text("", encoding="utf-8")          # created (O_EXCL), not written yet
    pid = os.getppid()
    holder = "radiomics-batch" if entry == "claim" else "segment"
    writer = threading.Timer(0.2, lambda: lock.write_text(f"{pid} {_host()} {_process_started(pid):.2f} "
                                                          f"{holder}\n", encoding="utf-8"))
    writer.start()
    try:
        with pytest.raises(InputError, match=f"in use by another lungai {holder} run \\(process {pid} on "):
            if entry == "claim":
                outputs.claim_output_folder(out, "sample", ["ct.nii.gz"])
            else:
                outputs.check_output_owner(out, "sample", ["ct.nii.gz"])   # as prepare_output_folder(owner=...)
    finally:
        writer.join()
