"""Output locations are checked before any work (lungai.io.outputs): a file, a path under a file, a folder that
cannot be written or the DICOM CT's own folder is refused at once, with the path and the fix and no traceback, by
every command that writes; `lungai segment` refuses a folder holding files of its output names it did not write
(other files are left alone) and removes its previous run's files before writing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
from dicom_helpers import rt_export, small_phantom
from rp_helpers import rp_small_model  # noqa: F401  (fixture)

UNWRITABLE = Path("/proc/lungai-test-out")      # not even root can create files there


def _cli(*args):
    from lungai.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def p1(tmp_path_factory):
    return rt_export(tmp_path_factory.mktemp("rt_export"))["P1"]


@pytest.fixture
def no_work(monkeypatch):
    """Every command's computation fails the test: the output check must come first."""
    import lungai.cli.seg
    import lungai.dicom.cohort
    import lungai.dicom.export
    import lungai.dose
    import lungai.fusion.synthetic
    import lungai.fusion.workflows
    import lungai.lungs
    import lungai.radiomics
    import lungai.radiomics.batch
    import lungai.radiomics.ibsi
    import lungai.rp.cohort
    import lungai.rp.external
    import lungai.rp.predict
    import lungai.rp.training
    import lungai.seg.ensemble
    import lungai.seg.evaluate
    import lungai.seg.infer

    def boom(*a, **k):
        raise AssertionError("computed before the output location was checked")

    for module, name in ((lungai.seg.infer, "segment_tumour"), (lungai.lungs, "segment_lungs"),
                         (lungai.radiomics, "extract"), (lungai.seg.evaluate, "evaluate_cases"),
                         (lungai.dose, "check_dose_matches_ct"),
                         (lungai.dose, "dose_features"), (lungai.rp.cohort, "make_cohort"),
                         (lungai.rp.training, "train_rp"), (lungai.rp.external, "validate_rp"),
                         (lungai.rp.predict, "predict_rp"), (lungai.fusion.synthetic, "make_cohort"),
                         (lungai.fusion.workflows, "cohort_from_spec"),
                         (lungai.fusion.workflows, "_load_for_new_cohort"), (lungai.dicom.cohort, "plan_cohort"),
                         (lungai.radiomics.batch, "run_tasks"),
                         (lungai.dicom.export, "export_results"), (lungai.cli.seg, "training_cases"),
                         (lungai.seg.ensemble, "train_ensemble"), (lungai.radiomics.ibsi, "run_check")):
        monkeypatch.setattr(module, name, boom)
    return boom


def test_bad_output_locations_are_refused_before_any_work(sample_dir, no_work, tmp_path, capsys):
    ct, labels = sample_dir / "ct.nii.gz", sample_dir / "labels.nii.gz"
    afile = tmp_path / "afile"
    afile.write_text("mine", encoding="utf-8")
    seed = "--seed-point=0,0,0"
    cases = [
        (["segment", ct, "-o", afile, seed], "is a file, not a folder"),
        (["segment", ct, "-o", afile / "sub", seed], "afile is a file"),
        (["lungs", ct, "-o", afile / "lungs.nii.gz"], "afile is a file"),
        (["radiomics", "--image", ct, "--mask", labels, "-o", afile / "x.csv"], "afile is a file"),
        (["eval-seg", "--images", sample_dir, "--masks", sample_dir, "-o", afile / "e.csv"], "afile is a file"),
        (["demo", "--ct", ct, "-o", afile, seed], "is a file, not a folder"),
    ]
    if sys.platform.startswith("linux"):
        cases += [(["segment", ct, "-o", UNWRITABLE, seed], f"cannot write into the output folder {UNWRITABLE}"),
                  (["lungs", ct, "-o", UNWRITABLE / "lungs.nii.gz"], "cannot write into the output folder"),
                  (["radiomics", "--image", ct, "--mask", labels, "-o", UNWRITABLE / "x.csv"], "cannot write into")]
    for argv, message in cases:
        assert _cli(*argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "How to fix" in err and "Traceback" not in err, (argv, err)
    assert afile.read_text(encoding="utf-8") == "mine"


# every other command that writes: its -o (a folder, or a file whose folder is made) under / as a regular file
OTHER_COMMANDS = {
    "dose-features": lambda d, f: ["dose-features", "--dose", d["ct"], "--ct", d["ct"], "--lungs", d["labels"],
                                   "-o", f / "dose.csv"],
    "rp synth": lambda d, f: ["rp", "synth", "-o", f / "cohort.csv"],
    "rp train": lambda d, f: ["rp", "train", d["table"], "--outcome", "rp", "-o", f],
    "rp validate": lambda d, f: ["rp", "validate", d["rp_model"], d["table"], "-o", f],
    "rp predict": lambda d, f: ["rp", "predict", d["rp_model"], d["table"], "-o", f / "risk.csv"],
    "stage synth": lambda d, f: ["stage", "synth", "-o", f],
    "stage cv": lambda d, f: ["stage", "cv", "--ehr", d["table"], "--label", "stage", "-o", f],
    "stage train": lambda d, f: ["stage", "train", "--ehr", d["table"], "--label", "stage", "-o", f / "model"],
    "stage validate": lambda d, f: ["stage", "validate", "--model", d["model"], "--ehr", d["table"], "-o", f],
    "stage predict": lambda d, f: ["stage", "predict", "--model", d["model"], "--ehr", d["table"], "-o", f],
    "cohort": lambda d, f: ["cohort", d["export"], "-o", f, "--workers", "0"],
    "radiomics-batch": lambda d, f: ["radiomics-batch", d["manifest"], "-o", f / "batch.csv"],
    "sample": lambda d, f: ["sample", "-o", f],
    "demo": lambda d, f: ["demo", "--ct", d["ct"], "-o", f / "demo", "--seed-point=0,0,0"],
    "dicom-export": lambda d, f: ["dicom-export", "--ct", d["ct"], "--tumour", d["labels"], "-o", f],
    "train-seg": lambda d, f: ["train-seg", "--images", d["sample"], "--masks", d["sample"], "-o", f / "model"],
    "ibsi-check": lambda d, f: ["ibsi-check", "--image", d["ct"], "--mask", d["labels"], "--reference", d["table"],
                                "--config", "A", "-o", f / "ibsi.csv"],
}


@pytest.mark.parametrize("command", sorted(OTHER_COMMANDS))
def test_every_command_refuses_an_output_under_a_file_before_any_work(command, rp_small_model, sample_dir, no_work,
                                                                      tmp_path, monkeypatch, capsys):
    import lungai.io
    import lungai.synthetic

    monkeypatch.setattr(lungai.io, "read_ct", no_work)                  # nor is the CT read
    monkeypatch.setattr(lungai.synthetic, "make_phantom", no_work)      # (the other tests' helpers need these)
    afile = tmp_path / "afile"
    afile.write_text("mine", encoding="utf-8")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"case,image,mask\nc1,{sample_dir / 'ct.nii.gz'},{sample_dir / 'labels.nii.gz'}\n",
                        encoding="utf-8")
    inputs = {"ct": sample_dir / "ct.nii.gz", "labels": sample_dir / "labels.nii.gz", "sample": sample_dir,
              "table": tmp_path / "table.csv", "model": tmp_path / "model", "export": tmp_path / "export",
              "manifest": manifest}
    if command.startswith("rp "):     # lungai rp refuses a missing table or model folder first, with the arguments
        inputs["table"].write_text("case,clin_age_years,rp\nP1,60,0\n", encoding="utf-8")   # (lungai.rp.inputs)
        inputs["rp_model"] = rp_small_model
    assert _cli(*OTHER_COMMANDS[command](inputs, afile)) == 2
    err = capsys.readouterr().err
    assert f"{afile} is a file" in err and "How to fix" in err and "Traceback" not in err, err
    assert afile.read_text(encoding="utf-8") == "mine"


def test_a_write_error_after_the_checks_names_the_path(sample_dir, tmp_path, monkeypatch, capsys):
    def full(*a, **k):
        raise RuntimeError("Exception thrown in SimpleITK ImageFileWriter_Execute:\n  No space left on device")

    monkeypatch.setattr(sitk, "WriteImage", full)
    out = tmp_path / "lungs.nii.gz"
    assert _cli("lungs", sample_dir / "ct.nii.gz", "-o", out) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: No space left on device" in err and "Traceback" not in err

    import lungai.cli.lungs

    def denied(args):                          # any other OSError: the path and the fix, exit code 2
        raise PermissionError(13, "Permission denied", "/somewhere/x.nii.gz")

    monkeypatch.setattr(lungai.cli.lungs, "run", denied)
    assert _cli("lungs", sample_dir / "ct.nii.gz", "-o", out) == 2
    err = capsys.readouterr().err
    assert "cannot access /somewhere/x.nii.gz: Permission denied" in err and "How to fix" in err


def test_runs_refused_before_any_work_leave_no_output_folder(sample_dir, tmp_path, monkeypatch, capsys):
    """A run refused on its inputs (a dose, image or CT that does not exist) left the -o file's folder behind,
    empty: the folder is checked, and made only when the result is written."""
    import os

    ct, labels = sample_dir / "ct.nii.gz", sample_dir / "labels.nii.gz"
    monkeypatch.chdir(tmp_path)
    for args in (("dose-features", "--dose", "nope.nii", "--ct", ct, "--lungs", f"{labels}#2,3",   # the phantom's lungs
                  "-o", "leak1/sub/d.csv"),
                 ("radiomics", "--image", "nope.nii", "--mask", labels, "-o", "leak2/f.csv"),
                 ("lungs", "nope.nii", "-o", "leak3/l.nii.gz")):
        assert _cli(*args) == 2
        assert "nope.nii does not exist" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == []


def test_output_in_the_dicom_ct_folder_is_refused_before_writing(p1, no_work, capsys, tmp_path):
    ct_dir = Path(p1["ct"])
    before = sorted(p.name for p in ct_dir.iterdir())
    centre = small_phantom(7).meta["tumour"]["centre_mm"]
    assert _cli("segment", ct_dir, "-o", ct_dir, "--seed-point=" + ",".join(f"{v:.2f}" for v in centre)) == 2
    assert "it must keep only the CT slices" in capsys.readouterr().err   # the series-folder refusal (checked first)
    assert _cli("lungs", ct_dir, "-o", ct_dir / "lungs.nii.gz") == 2
    assert "it must keep only the CT slices" in capsys.readouterr().err
    tumour = tmp_path / "tumor.nii.gz"          # an input that exists (its paths are checked first: QA inputs70)
    tumour.write_bytes(b"")                        # never read: the output is refused before
    assert _cli("dicom-export", "--ct", ct_dir, "--tumour", tumour, "-o", ct_dir) == 2   # before reading
    assert "it must keep only the CT slices" in capsys.readouterr().err
    assert sorted(p.name for p in ct_dir.iterdir()) == before


def test_segment_reuses_only_its_own_folder_without_stale_files(p1, tmp_path, capsys):
    centre = "--seed-point=" + ",".join(f"{v:.2f}" for v in small_phantom(7).meta["tumour"]["centre_mm"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tumor.nii.gz").write_text("the user's own file", encoding="utf-8")
    assert _cli("segment", p1["ct"], "-o", mine, centre) == 2          # a folder segment did not write
    assert "holds tumor.nii.gz, not written by lungai segment" in capsys.readouterr().err
    assert (mine / "tumor.nii.gz").read_text(encoding="utf-8") == "the user's own file"

    out = tmp_path / "out"
    assert _cli("segment", p1["ct"], "-o", out, centre) == 0          # DICOM CT: SEG, RTSTRUCT, map, SR too
    assert (out / "tumor.seg.dcm").is_file() and (out / "measurements.sr.dcm").is_file()
    capsys.readouterr()
    nifti = tmp_path / "ct.nii.gz"
    from lungai.io import read_ct

    sitk.WriteImage(read_ct(p1["ct"]), str(nifti))
    assert _cli("segment", nifti, "-o", out, centre) == 0             # the same folder, a NIfTI CT: no DICOM
    text = capsys.readouterr().out
    assert "removed the previous lungai segment results" in text and "tumor.seg.dcm" in text
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert not [n for n in names if n.endswith(".dcm")], names       # no DICOM object of the earlier result
    assert "tumor.nii.gz" in names and "result.json" in names


def test_segment_writes_next_to_the_lungs_and_never_over_the_users_tumour(p1, tmp_path, capsys):
    """docs/dicom.md: `lungai lungs CT -o out/lungs.nii.gz`, then `lungai segment CT -o out/`: segment owns only the
    files it writes; a folder holding one of its output names that it did not record is still refused."""
    centre = "--seed-point=" + ",".join(f"{v:.2f}" for v in small_phantom(7).meta["tumour"]["centre_mm"])
    out = tmp_path / "out"
    assert _cli("lungs", p1["ct"], "-o", out / "lungs.nii.gz") == 0
    (out / "notes.txt").write_text("the user's notes", encoding="utf-8")
    theirs = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"lungs.nii.gz", "lungs.seg.dcm", "notes.txt"} <= set(theirs)
    for _ in range(2):                                                  # a second run replaces only its own files
        assert _cli("segment", p1["ct"], "-o", out, centre) == 0
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in theirs} == theirs
        assert (out / "tumor.nii.gz").is_file() and (out / "tumor.seg.dcm").is_file()
        assert (out / ".lungai-segment").is_file()
    text = capsys.readouterr().out
    assert "removed the previous lungai segment results" in text and "lungs" not in text.split("removed")[1]

    for name in ("tumor.nii.gz", "measurements.sr.dcm"):               # the user's file of a segment output name
        case = tmp_path / f"case-{name}"
        case.mkdir()
        (case / "lungs.nii.gz").write_bytes(theirs["lungs.nii.gz"])
        (case / name).write_text("the user's own file", encoding="utf-8")
        assert _cli("segment", p1["ct"], "-o", case, centre) == 2
        err = capsys.readouterr().err
        assert f"holds {name}, not written by lungai segment" in err and "How to fix" in err
        assert (case / name).read_text(encoding="utf-8") == "the user's own file"
        assert sorted(p.name for p in case.iterdir()) == sorted(["lungs.nii.gz", name])
