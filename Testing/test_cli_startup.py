"""Start-up of the ``lungai`` commands: the first progress bar comes before the heavy imports a command's work needs
(QA startup65, a shared 2-core machine: ``lungai segment`` on LUNG1-002 drew its first bar 11.6-13 s after the command,
``lungai radiomics`` on lung1 5-7 s after it, for 0.6 s of work).  Each check runs a fresh interpreter: the modules
already imported by this test session would hide an import."""

import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

from rp_helpers import rp_small_model  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]

# the first progress bar of a command, in a fresh interpreter: the heavy modules imported by then are printed and the
# command stopped there (SystemExit 0: no work done)
HEAVY = ("torch", "monai", "scipy.signal", "scipy.stats", "pydicom")
# scipy's image, geometry and FFT modules (with scipy.linalg / scipy.special under them: 0.6-1.3 s of a shared machine)
SCIPY = ("scipy.ndimage", "scipy.spatial", "scipy.fft")
AT_FIRST_BAR = """
import sys
import lungai.progress as progress

HEAVY = %r


def first_bar(self, total, desc):
    print("imported at the first bar:", sorted(m for m in HEAVY if m in sys.modules), flush=True)
    raise SystemExit(0)


progress._LineProgress.__init__ = first_bar
from lungai.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _heavy_at_first_bar(args: list, tmp_path, heavy: tuple = HEAVY) -> list:
    env = {"LUNGAI_PROGRESS": "lines", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", AT_FIRST_BAR % (heavy,), *args], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("imported at the first bar:")]
    assert out.returncode == 0 and lines, out.stdout + out.stderr
    return eval(lines[0].split(":", 1)[1])      # noqa: S307 - the list printed above


def test_the_cli_and_its_help_import_no_heavy_module():
    """``lungai --help`` and every command's parser import neither torch, MONAI, scipy.signal nor pyradiomics."""
    code = ("import sys; from lungai.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'monai', 'radiomics', 'scipy.signal', 'dask', 'distributed', 'highdicom', "
            "'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_radiomics_modules_leave_scipy_signal_to_the_local_peaks():
    """scipy.signal (and the scipy.stats it imports) took 1-3.5 s of the start-up of every command importing
    lungai.radiomics (radiomics, radiomics-batch, cohort, demo) for one function, the local intensity peaks'
    convolution: imported there now."""
    code = ("import sys; import lungai.radiomics, lungai.radiomics.batch, lungai.dicom.cohort; "
            "print(sorted(m for m in ('scipy.signal', 'scipy.stats', 'torch', 'monai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_local_peaks_are_those_of_the_convolution():
    """The local intensity peak still computed (scipy.signal imported in the function)."""
    import numpy as np

    from lungai.radiomics.features.intensity import local_intensity_peaks

    image = np.zeros((9, 9, 9))
    image[4, 4, 4] = 1000.0
    roi = np.zeros(image.shape, bool)
    roi[3:6, 3:6, 3:6] = True
    peaks = local_intensity_peaks(image, roi, (5.0, 5.0, 5.0))     # 1 cm3 sphere: r 6.2 mm, the voxel and 6 neighbours
    assert np.isclose(peaks["loc_peak_loc"], 1000.0 / 7)


def test_segment_draws_its_bar_before_torch_is_imported(small_phantom, tmp_path):
    """``lungai segment`` loaded its model (torch and MONAI: 9-10 s of a shared machine) before its first bar: its
    bar's total is now counted from model.json, the model loaded on the bar ("loading the model")."""
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    assert _heavy_at_first_bar(["segment", str(ct), "-o", str(tmp_path / "out")], tmp_path) == []
    assert not (tmp_path / "out").exists()


def _eval_seg_args(phantom, tmp_path) -> list:
    """``lungai eval-seg`` of one phantom case (its CT and labels written under ``tmp_path``) into per_case.csv."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    sitk.WriteImage(phantom.ct, str(images / "case1.nii.gz"))
    sitk.WriteImage(phantom.labels, str(masks / "case1.nii.gz"))
    return ["eval-seg", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "per_case.csv")]


def test_eval_seg_draws_its_bar_before_torch_is_imported(small_phantom, tmp_path):
    """``lungai eval-seg`` loaded its model (torch and MONAI: 9-14 s of a shared machine; lungai.seg.evaluate imported
    torch for the Hausdorff distance alone) before its first bar: the model is loaded on a bar of its own now
    ("loading the model"), as ``lungai segment`` does (QA startfollow65)."""
    args = _eval_seg_args(small_phantom, tmp_path)
    assert _heavy_at_first_bar(args, tmp_path) == []
    assert not (tmp_path / "per_case.csv").exists()


def test_segment_and_eval_seg_draw_their_first_bar_before_simpleitk_is_imported(small_phantom, tmp_path):
    """QA segfollow72: ``lungai segment`` (a NIfTI CT, a DICOM CT series, with a seed point) and ``lungai eval-seg``
    imported SimpleITK (~0.5 s of a shared machine) before their first bar: segment through lungai.io's readers,
    lungai.seg.choice and lungai.dicom.export (for its step count), eval-seg through lungai.seg.dataset and
    lungai.seg.evaluate.  The CT is read, and SimpleITK imported, on the bar now; nothing is written."""
    from lungai.dicom.synthetic import write_rt_study

    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    study = write_rt_study(tmp_path / "export" / "P1", small_phantom, "P1", dose=None)
    centre = small_phantom.ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in small_phantom.ct.GetSize()])
    heavy = ("SimpleITK", *HEAVY)
    for source in (ct, study["ct"]):
        for guidance in ([], ["--seed-point=" + ",".join(f"{v:g}" for v in centre)]):
            args = ["segment", str(source), *guidance, "-o", str(tmp_path / "out")]
            assert _heavy_at_first_bar(args, tmp_path, heavy=heavy) == [], (source, guidance)
    assert not (tmp_path / "out").exists()
    (tmp_path / "eval").mkdir()
    assert _heavy_at_first_bar(_eval_seg_args(small_phantom, tmp_path / "eval"), tmp_path, heavy=heavy) == []
    assert not (tmp_path / "eval" / "per_case.csv").exists()


def test_eval_seg_refuses_its_paths_before_loading_the_model(small_phantom, tmp_path):
    """QA seg71: ``lungai eval-seg`` loaded its model (torch, MONAI and the weights: 12-17 s of a shared machine)
    before it looked at its arguments' paths: a missing --images folder, no --images / --masks at all, a missing
    --model folder, a model without a test split (--split test) or --split test with --images alone were refused
    only after it; a negative --max-cases was not refused at all (-1 evaluated every pair but the last: here none,
    its CSV written empty).  Each is refused now before torch or MONAI is imported, nothing written."""
    args = _eval_seg_args(small_phantom, tmp_path)
    images, masks, csv = args[2], args[4], args[6]
    refusals = [(["--images", str(tmp_path / "gone"), "--masks", masks], f"--images folder {tmp_path / 'gone'} does "
                 "not exist"),
                ([], "eval-seg needs --images and --masks"),
                (["--model", str(tmp_path / "no_model"), "--images", images, "--masks", masks],
                 f"the model folder {tmp_path / 'no_model'} does not exist"),
                (["--split", "test"], "this model has no test split"),
                (["--split", "test", "--images", images], "--images and --masks, if given"),
                # --max-cases -1 evaluated every pair but the last, none of one pair (cases[:-1]), without a word
                (["--images", images, "--masks", masks, "--max-cases", "-1"], "--max-cases -1 is negative")]
    for given, said in refusals:
        code, err, heavy = _heavy_at_refusal(["eval-seg", *given, "-o", csv], tmp_path)
        assert code == 2 and said in err and "How to fix" in err, (given, err)
        assert heavy == [], (given, heavy)
    assert not (tmp_path / "per_case.csv").exists()


def test_eval_seg_refuses_an_unusable_pair_before_loading_the_model(small_phantom, tmp_path):
    """QA seg72: ``lungai eval-seg`` of a folder checked its image / mask pairs only after loading its model (torch,
    MONAI and the weights): two LIDC crops, one with another crop's mask, were refused 16.3 s after the command on a
    shared machine, 14 s of it the model's loading (--split test checked its cases first already).  The cases of
    training patients are now found from model.json (lungai.seg.choice.model_records) and every pair checked
    before those imports; nothing is written."""
    args = _eval_seg_args(small_phantom, tmp_path)
    mask = Path(args[4]) / "case1.nii.gz"
    moved = sitk.ReadImage(str(mask))
    moved.SetOrigin([o + 1000.0 for o in moved.GetOrigin()])       # drawn on another image: beside this one
    sitk.WriteImage(moved, str(mask))
    code, err, heavy = _heavy_at_refusal([*args, "--label", "1"], tmp_path)
    assert code == 2 and "cannot be evaluated" in err and "does not overlap the image" in err, err
    assert "case1" in err and "How to fix" in err, err
    assert heavy == [], heavy
    assert not (tmp_path / "per_case.csv").exists()


def test_train_seg_refuses_a_number_that_is_not_finite_before_torch(small_phantom, tmp_path):
    """QA optsfollow71: ``train-seg --lr nan`` (or inf) passed the option checks (only ``<= 0`` was refused) and ended
    in torch's "ValueError: Invalid learning rate: nan" traceback after the data was read and torch imported (50 s,
    LUNG1 crops); ``--val-fraction nan`` in "cannot convert float NaN to integer" (21 s).  Both are refused now with
    the other option checks, named with the fix, before torch is imported and before -o is made."""
    args = _eval_seg_args(small_phantom, tmp_path)[1:5]          # --images DIR --masks DIR
    for given, said in ((["--lr", "nan"], "--lr nan is not a positive finite number"),
                        (["--lr", "inf"], "--lr inf is not a positive finite number"),
                        (["--val-fraction", "nan"], "--val-fraction nan is not a number")):
        code, err, heavy = _heavy_at_refusal(["train-seg", *args, "--label", "1", "-o", str(tmp_path / "model"),
                                              "--members", "1", "--epochs", "1", "--iters", "1", *given], tmp_path)
        assert code == 2 and said in err and "How to fix" in err and "Traceback" not in err, (given, err)
        assert heavy == [], (given, heavy)
    assert not (tmp_path / "model").exists()

def test_train_seg_draws_its_bar_before_torch_is_imported(small_phantom, tmp_path):
    """``lungai train-seg`` imported torch, MONAI (with pandas, scipy and pydicom under it) before its first bar: the
    check of the -o folder imported lungai.seg.model_io for a file name, and the default ``--device cpu`` imported
    torch to be checked (QA train67, 12 LIDC crops on a shared machine: first bar 10.4-11.1 s after the command,
    eval-seg's 1.0 s).  torch is now imported on a bar of its own ("loading torch"), after the masks are checked."""
    args = _eval_seg_args(small_phantom, tmp_path)[1:5]          # --images DIR --masks DIR
    train = ["train-seg", *args, "-o", str(tmp_path / "model"), "--epochs", "1", "--iters", "1", "--members", "1"]
    assert _heavy_at_first_bar(train, tmp_path, heavy=HEAVY + SCIPY + ("pandas",)) == []
    assert not (tmp_path / "model" / "model.json").exists()


def test_lungs_draws_its_bar_before_pydicom_is_imported(small_phantom, tmp_path):
    """``lungai lungs ct.nii.gz`` imported pydicom (0.5-0.9 s) before its bar to learn that a NIfTI file is not
    DICOM, and again for the output's check of DICOM input folders: pydicom is imported for a file that may be DICOM
    only (QA startup65, LUNG1-002: first bar 2.4-2.5 s after the command, now 1.7 s)."""
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    assert _heavy_at_first_bar(["lungs", str(ct), "-o", str(tmp_path / "lungs.nii.gz")], tmp_path) == []


def test_dicom_export_draws_its_bar_before_pydicom_is_imported(small_phantom, tmp_path):
    """``lungai dicom-export --tumour`` with a tumour mask of the user's (a NIfTI file no lungai command made) looked
    into the file as a DICOM SEG - pydicom imported - before its first bar, to tell who made the mask (QA export69,
    LUNG1-003: 0.2-1 s of a shared machine with no bar).  It is told on the bar now, while the mask is read."""
    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "export" / "P1", small_phantom, "P1", dose=None)
    tumour = tmp_path / "mine" / "gtv.nii.gz"          # the user's: no lungai marker beside it
    tumour.parent.mkdir()
    sitk.WriteImage(study["masks"]["GTV"], str(tumour))
    assert _heavy_at_first_bar(["dicom-export", "--ct", str(study["ct"]), "--tumour", str(tumour),
                                "-o", str(tmp_path / "out")], tmp_path) == []
    assert not (tmp_path / "out").exists()


def test_radiomics_draws_its_bar_before_scipy_signal_is_imported(small_phantom, tmp_path):
    ct, mask = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(mask))
    heavy = _heavy_at_first_bar(["radiomics", "--image", str(ct), "--mask", str(mask), "--phantom-labels",
                                 "-o", str(tmp_path / "f.csv")], tmp_path)
    assert heavy == []


def test_radiomics_draws_its_bar_before_pandas_is_imported(small_phantom, tmp_path):
    """pandas (0.2-1.1 s of a shared machine) was imported before ``lungai radiomics``' first bar: by
    lungai.radiomics.extract and csv_output at module top for their tables, and by lungai.radiomics.ibsi's __init__
    (its compare, mapping, reference and run modules), which lungai.radiomics.prepare loads for ibsi.preprocess
    (QA pandaslazy65).  pandas comes with the first table now."""
    ct, mask = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(mask))
    heavy = _heavy_at_first_bar(["radiomics", "--image", str(ct), "--mask", str(mask), "--phantom-labels",
                                 "-o", str(tmp_path / "f.csv")], tmp_path, heavy=("pandas",))
    assert heavy == []


def test_the_ibsi_package_names_are_those_of_its_modules():
    """lungai.radiomics.ibsi imports its pandas modules on first use of a name: every name of its ``__all__`` is
    still the object of the module defining it, ``compare`` the function of ibsi.run (not the submodule
    ibsi.compare), also when a submodule was imported first (as lungai.radiomics.features.extractor does)."""
    code = ("import sys; import lungai.radiomics.ibsi.run as run, lungai.radiomics.ibsi.compare, "
            "lungai.radiomics.ibsi.mapping as mapping, lungai.radiomics.ibsi.reference as reference, "
            "lungai.radiomics.ibsi.configs as configs, lungai.radiomics.ibsi as ibsi; "
            "from lungai.radiomics.ibsi import *; from lungai.radiomics.ibsi import compare as c; "
            "cmp = sys.modules['lungai.radiomics.ibsi.compare']; "
            "home = {'Report': cmp, 'within': cmp, 'CONFIGS': configs, 'IBSIConfig': configs, "
            "'load_mapping': mapping, 'tags_for': mapping, 'target': mapping, 'read_reference': reference, "
            "'compare': run, 'compute_ibsi': run, 'compute_settings_only': run, 'run_check': run, 'select_tags': run}; "
            "print(sorted(home) == sorted(ibsi.__all__), c is run.compare is compare, "
            "all(getattr(ibsi, n) is getattr(m, n) is globals()[n] for n, m in home.items()), "
            "set(ibsi.__all__) <= set(dir(ibsi)))")
    for first in ("", "import lungai.radiomics.ibsi as i; i.compare, i.read_reference, i.target; "):
        out = subprocess.run([sys.executable, "-c", first + code], capture_output=True, text=True,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert out.stdout.strip() == "True True True True", out.stdout + out.stderr


# main() for the process's own command line, in a fresh interpreter: an object left in a reference cycle by the
# command (a finalizer to run) and the collector's frozen count once main() is done
AT_EXIT = """
import gc
import sys

import lungai.cli as cli


class Cycle:
    def __del__(self):
        print("cycle finalized", flush=True)


def leave_a_cycle(args):
    c = Cycle()
    c.self = c
    return 3


real = cli.build_parser


def build_parser():
    parser = real()
    parser._subparsers._group_actions[0].choices["sample"].set_defaults(func=leave_a_cycle)
    return parser


cli.build_parser = build_parser
sys.argv = ["lungai", "sample", "-o", "never_written"]
try:
    code = cli.main()
finally:
    print("frozen:", gc.get_freeze_count(), flush=True)
sys.exit(code)
"""


def test_the_process_exits_without_tracing_its_modules_again(tmp_path):
    """QA startup65: ``lungai segment`` printed its last line 3.9-4.6 s before the process ended (Python's exit
    clearing the modules of torch and MONAI, the collector tracing their objects again and again; 1.3-1.6 s with
    SciPy / pandas alone).  ``main()`` for the process's own command line now collects what the command left
    unreachable (its finalizers run) and freezes the rest before Python's exit; the exit status is the command's;
    ``main([...])`` from Python (these tests) freezes nothing."""
    out = subprocess.run([sys.executable, "-c", AT_EXIT], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "cycle finalized", lines         # collected before the freeze, not left to the exit
    assert int(lines[1].split(":")[1]) > 1000, lines
    code = AT_EXIT.replace('code = cli.main()', 'code = cli.main(sys.argv[1:])')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 3 and "frozen: 0" in out.stdout, out.stdout + out.stderr


# a stage command's own process, in a fresh interpreter: its modules' objects (here 200 000 objects made by the loading
# step, which imports nothing) frozen as soon as they are loaded; the command's frozen count then, and a cycle it makes
# afterwards still collected (its finalizer run) before the exit
STAGE_LOADED = """
import gc
import sys

import lungai.cli as cli
import lungai.progress as progress

MODULES = []


def load_modules(desc, steps):
    MODULES.append([{"k": [k]} for k in range(100_000)])


class Cycle:
    def __del__(self):
        print("cycle finalized", flush=True)


def command(args):
    import lungai.cli.stage as stage

    stage._load_modules("predict", args)
    print("frozen after loading:", gc.get_freeze_count(), flush=True)
    c = Cycle()
    c.self = c
    return 3


progress.load_modules = load_modules
real = cli.build_parser


def build_parser():
    parser = real()
    stage = parser._subparsers._group_actions[0].choices["stage"]
    stage._subparsers._group_actions[0].choices["predict"].set_defaults(func=command)
    return parser


cli.build_parser = build_parser
sys.argv = ["lungai", "stage", "predict", "--model", "m", "--ehr", "e.csv", "-o", "out"]
sys.exit(cli.main())
"""


RP_LOADED = (STAGE_LOADED
             .replace('import lungai.cli.stage as stage\n\n    stage._load_modules("predict", args)',
                      'import lungai.cli.rp as rp\n\n    rp._load("predict", ())')
             .replace('stage = parser._subparsers._group_actions[0].choices["stage"]',
                      'stage = parser._subparsers._group_actions[0].choices["rp"]')
             .replace('sys.argv = ["lungai", "stage", "predict", "--model", "m", "--ehr", "e.csv", "-o", "out"]',
                      'sys.argv = ["lungai", "rp", "predict", "m", "t.csv", "-o", "out.csv"]'))


@pytest.mark.parametrize("script", [STAGE_LOADED, RP_LOADED], ids=["stage", "rp"])
def test_a_stage_command_freezes_its_modules_once_loaded(tmp_path, script):
    """QA stagewait72 (``stage predict`` on NSCLC-Radiogenomics, a shared 2-core machine): 1.0-1.8 s between the
    last line and the end of the process, 0.5-0.64 s of it the end's ``gc.collect`` tracing the ~530 000 objects of
    pandas, torch, MONAI, scikit-learn and torch-geometric (:func:`lungai.cli._end_of_process`).  They are frozen as
    soon as the loading bar is done (``lungai.cli.freeze_loaded_modules``): 0.28-0.29 s after the last line now; a
    cycle the command makes later is still collected before the exit.  ``main([...])`` from Python freezes nothing.
    ``rp train / validate / predict`` load pandas and scikit-learn (and torch) the same way: frozen the same way."""
    assert script is STAGE_LOADED or ("rp._load" in script and script.count('"rp"') == 2)   # all replaced
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("frozen after loading:") and int(lines[0].split(":")[1]) > 200_000, lines
    assert lines[1] == "cycle finalized", lines
    code = script.replace("sys.exit(cli.main())", "sys.exit(cli.main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 3 and "frozen after loading: 0" in out.stdout, out.stdout + out.stderr


def test_an_error_keeps_its_exit_status(tmp_path):
    """An input error's status (2) and message are kept by the end of the process."""
    out = subprocess.run([sys.executable, "-m", "lungai", "lungs", str(tmp_path / "missing.nii.gz"), "-o",
                          str(tmp_path / "lungs.nii.gz")], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 2 and "does not exist" in out.stderr, out.stderr


def test_pyradiomics_distribution_is_looked_up_by_name():
    """``lungai radiomics``' note on the pyradiomics distribution (:func:`lungai.radiomics.settings.pyradiomics_note`,
    before its first bar) read every installed distribution's file list (``packages_distributions``: 0.4-1.2 s of a
    shared machine): the known distributions are looked up by name first; a fork of another name is still found by the
    scan of every distribution."""
    from importlib import metadata

    import pytest

    from lungai.radiomics import settings

    scans = []
    real = metadata.packages_distributions
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metadata, "packages_distributions", lambda: scans.append(1) or real())
        try:
            settings._pyradiomics_distribution.cache_clear()
            assert settings.pyradiomics_distribution() == settings.VERIFIED_PYRADIOMICS     # this environment
            assert scans == [] and settings.pyradiomics_note() is None
            settings._pyradiomics_distribution.cache_clear()        # a name not known: the scan finds it
            mp.setattr(settings, "KNOWN_PYRADIOMICS_DISTRIBUTIONS", ("pyradiomics-fork",))
            assert settings.pyradiomics_distribution() == settings.VERIFIED_PYRADIOMICS and scans == [1]
        finally:
            settings._pyradiomics_distribution.cache_clear()


def test_radiomics_batch_draws_its_bar_before_pydicom_is_imported(small_phantom, tmp_path):
    """``lungai radiomics-batch`` on a manifest of NIfTI masks imported pydicom (0.1-0.5 s of a shared machine) before
    its first bar: lungai.dicom.seg.seg_segment_labels, asked whether each case's mask is a DICOM SEG, imported it
    before it looked at the file's name (QA batchstart65).  pydicom is imported for a mask that may be DICOM only.
    (pandas is imported before the bar on purpose: the manifest is read with it.)"""
    rows = ["case,image,mask"]
    for case in ("c1", "c2"):
        ct, mask = tmp_path / f"{case}_ct.nii.gz", tmp_path / f"{case}_labels.nii.gz"
        sitk.WriteImage(small_phantom.ct, str(ct))
        sitk.WriteImage(small_phantom.labels, str(mask))
        rows.append(f"{case},{ct},{mask}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    args = ["radiomics-batch", str(manifest), "--workers", "0", "-o", str(tmp_path / "out.csv")]
    assert _heavy_at_first_bar(args, tmp_path) == []
    assert not (tmp_path / "out.csv").exists()


def test_cohort_draws_its_bar_before_pandas_is_imported(tmp_path):
    """``lungai cohort`` imported pandas (0.2-0.6 s of a shared machine) before its first bar ("cohort: scanning
    DICOM"): lungai.dicom.cohort, lungai.radiomics.batch and lungai.radiomics.manifest imported it at module top for
    tables built after the scan (QA batchstart65).  It comes with the first table now: after the scan (a --clinical
    CSV is still read, with pandas, before any work)."""
    from dicom_helpers import rt_export

    rt_export(tmp_path / "export")
    args = ["cohort", str(tmp_path / "export"), "-o", str(tmp_path / "out"), "--workers", "0"]
    assert _heavy_at_first_bar(args, tmp_path, heavy=("pandas", *HEAVY)) == []


def test_radiomics_draws_its_bar_before_scipy_is_imported(small_phantom, tmp_path):
    """``lungai radiomics`` imported scipy.ndimage, scipy.spatial and scipy.fft before its first bar (QA startbar66,
    pyradiomics lung1 on a shared machine: first bar 3.0-3.9 s after the command, 2.0-2.8 s without them):
    lungai.radiomics.extract imported lungai.seg.preprocess (scipy.ndimage, for a seed check of ``lungai segment``) and
    lungai.radiomics.features its morphology (scipy.fft, ConvexHull) and texture (scipy.ndimage) modules, all at
    module top.  They are imported where they are used now, after the bar; ``radiomics-batch`` alike."""
    ct, mask = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(mask))
    heavy = _heavy_at_first_bar(["radiomics", "--image", str(ct), "--mask", str(mask), "--phantom-labels",
                                 "-o", str(tmp_path / "f.csv")], tmp_path, heavy=HEAVY + SCIPY)
    assert heavy == []
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"case,image,mask,phantom\nc1,{ct},{mask},1\n")
    args = ["radiomics-batch", str(manifest), "--workers", "0", "-o", str(tmp_path / "out.csv")]
    assert _heavy_at_first_bar(args, tmp_path, heavy=HEAVY + SCIPY) == []
    assert not (tmp_path / "f.csv").exists() and not (tmp_path / "out.csv").exists()


def test_eval_seg_draws_its_bar_before_scipy_is_imported(small_phantom, tmp_path):
    """``lungai eval-seg`` imported scipy.ndimage (with scipy.special: 0.8-1.3 s of a shared machine) before its first
    bar: lungai.seg.dataset and lungai.seg.preprocess imported it at module top (QA startbar66, one pyradiomics lung1
    case: first bar 1.6-2.1 s after the command, 0.75-1.3 s now)."""
    args = _eval_seg_args(small_phantom, tmp_path)
    assert _heavy_at_first_bar(args, tmp_path, heavy=HEAVY + SCIPY) == []
    assert not (tmp_path / "per_case.csv").exists()


def test_the_scipy_functions_imported_where_used_still_compute():
    """The functions that import scipy in their body now: the morphology's convex hull and Moran's I (scipy.spatial,
    scipy.fft), and the GLDZM's border distance (scipy.ndimage)."""
    import numpy as np

    from lungai.radiomics.features.morphology import morphology_extras, spatial_autocorrelation
    from lungai.radiomics.features.texture import border_distance

    roi = np.zeros((7, 7, 7), bool)
    roi[1:6, 1:6, 1:6] = True
    d = border_distance(roi, two_d=False)
    assert d[3, 3, 3] == 3 and d[1, 1, 1] == 1 and d[0, 0, 0] == 0
    image = np.arange(roi.size, dtype=float).reshape(roi.shape)
    extras = morphology_extras(image, roi, roi, (1.0, 1.0, 1.0), 125.0, 150.0)
    assert 0.9 < extras["morph_vol_dens_conv_hull"] <= 1.3
    assert np.isfinite(spatial_autocorrelation(image, roi, (1.0, 1.0, 1.0))["morph_moran_i"])


def test_lungs_draws_its_bar_before_scipy_is_imported(small_phantom, tmp_path):
    """``lungai lungs`` imported the segmentation's modules (scipy.ndimage / spatial, skimage: 0.4-2 s of a shared
    machine) before its first bar, and ``lungai radiomics --phantom-labels`` imported them for lungai.lungs.check
    alone: lungai.lungs imports them on first use of segment_lungs now, after the bar (QA startbar66, LUNG1-003's
    DICOM folder: first bar 1.0-5.8 s after the command)."""
    import lungai.lungs

    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    heavy = HEAVY + SCIPY + ("skimage",)
    assert _heavy_at_first_bar(["lungs", str(ct), "-o", str(tmp_path / "lungs.nii.gz")], tmp_path, heavy=heavy) == []
    assert not (tmp_path / "lungs.nii.gz").exists()
    code = ("import sys; import lungai.lungs.check, lungai.lungs as L; "
            "light = sorted(m for m in %r if m in sys.modules); "
            "L.segment_lungs, L.rt_lung_dice; print(light, 'scipy.ndimage' in sys.modules)" % (heavy,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[] True", out.stdout + out.stderr
    assert set(lungai.lungs.__all__) <= set(dir(lungai.lungs))
    from lungai.lungs import segment

    assert lungai.lungs.segment_lungs is segment.segment_lungs and lungai.lungs.LUNG_STEPS == segment.LUNG_STEPS


def test_lungs_reads_the_dicom_series_headers_once_before_its_bar(small_phantom, tmp_path, monkeypatch, capsys):
    """``lungai lungs`` / ``lungai segment`` on a DICOM folder found the CT series (every file's header read) twice
    before their first bar: for the multi-frame check and for the output folder's check (QA startbar66, LUNG1-003's
    107 slices: 0.4-1 s each on a shared machine; 1.0-5.8 s to the first bar in all).  Once now; the checks still
    refuse an output in the CT's folder, and a later look-up (outside the commands' checks) scans again."""
    import lungai.io.read as read
    import lungai.progress as progress
    from lungai.cli import main
    from lungai.dicom.reference import ct_series_folder
    from lungai.dicom.synthetic import write_rt_study

    ct = write_rt_study(tmp_path / "export" / "P1", small_phantom, "P1", dose=None)["ct"]
    (tmp_path / "cases.csv").write_text("case\nP1\n")      # the export's top folder is tmp_path / "export"
    scans = []
    real = read.dicom_series_files
    monkeypatch.setattr(read, "dicom_series_files", lambda *a, **k: scans.append(a) or real(*a, **k))

    class FirstBar(Exception):
        pass

    def first_bar(self, total, desc):
        raise FirstBar(len(scans))

    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    monkeypatch.setattr(progress._LineProgress, "__init__", first_bar)
    try:
        main(["lungs", str(ct), "-o", str(tmp_path / "results" / "lungs.nii.gz")])
    except FirstBar as bar:
        assert bar.args[0] == 1, scans
    else:
        raise AssertionError("no bar drawn")
    scans.clear()
    assert main(["lungs", str(ct), "-o", str(ct / "lungs.nii.gz")]) == 2     # refused: no bar
    # from the paths, before the series is listed (QA dicomfollow72: it was listed once for the refusal)
    assert "into the CT series folder" in capsys.readouterr().err and len(scans) == 0
    from lungai.dicom.reference import one_series_scan

    with one_series_scan():
        assert ct_series_folder(ct) == ct_series_folder(ct) == ct
    assert ct_series_folder(ct) == ct and len(scans) == 2


# a command run to its end in a fresh interpreter: the heavy modules imported by then are printed (its exit status kept)
AT_REFUSAL = """
import sys
from lungai.cli import main

try:
    code = main(sys.argv[1:])
finally:
    print("imported at the end:", sorted(m for m in %r if m in sys.modules), flush=True)
sys.exit(code)
"""


def _heavy_at_refusal(args: list, tmp_path, heavy: tuple = HEAVY) -> tuple:
    """(exit status, stderr, heavy modules imported) of ``lungai ARGS`` run to its end in a fresh interpreter."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", AT_REFUSAL % (heavy,), *args], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("imported at the end:")]
    assert lines, out.stdout + out.stderr
    return out.returncode, out.stderr, eval(lines[0].split(":", 1)[1])      # noqa: S307 - the list printed above


def test_demo_refuses_a_wrong_ct_before_the_heavy_imports(tmp_path):
    """QA demo67 (`lungai demo --ct` of a missing file, a .txt file, a folder without DICOM, on a shared 2-core
    machine): the refusal came 4.9-9.6 s after the command, after torch and MONAI were imported and the model
    loaded, under a bar "reading the CT".  The CT's path is checked (it exists, a file lungai reads, a folder
    holding a DICOM series) with the options' other cheap checks, before those imports; nothing is written."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a CT")
    for ct, says in ((tmp_path / "missing.nii.gz", "does not exist"), (tmp_path / "notes.txt", "unsupported file type"),
                     (tmp_path / "empty", "no DICOM series found")):
        code, err, heavy = _heavy_at_refusal(["demo", "--ct", str(ct), "-o", str(tmp_path / "out")], tmp_path)
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (ct, heavy)
        assert "reading the CT" not in err, err
    assert not (tmp_path / "out").exists()


def test_demo_refuses_a_wrong_model_folder_before_the_heavy_imports(tmp_path):
    """QA demo67: `lungai demo --model /nonexistent` was refused after 8.2 s, `--rp-model EMPTY_FOLDER` after 7.8 s
    (torch / MONAI imported first, on a shared 2-core machine).  The files each model's loader reads first
    (model.json, model_card.json, stage_model.json) are checked with the options' cheap checks: the same refusal,
    naming the option and the fix, before those imports."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, says in ((["--model", str(tmp_path / "nowhere")], "--model"), (["--model", str(empty)], "--model"),
                       (["--rp-model", str(empty)], "--rp-model"), (["--stage-model", str(empty)], "--stage-model")):
        code, err, heavy = _heavy_at_refusal(["demo", *args, "-o", str(tmp_path / "out")], tmp_path)
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (args, heavy)
    assert not (tmp_path / "out").exists()


def test_demo_draws_its_bar_before_torch_is_imported(tmp_path):
    """QA demo67: `lungai demo` on the built-in sample drew its first bar 11 s after the command (5.7 s with --ct
    LUNG1-003), after torch / MONAI were imported and the models loaded without a word: those are done on a bar of
    their own now ("demo: loading the models")."""
    assert _heavy_at_first_bar(["demo", "--small", "-o", str(tmp_path / "out")], tmp_path) == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())



def test_demo_refuses_a_seed_point_off_the_ct_before_the_heavy_imports(small_phantom, tmp_path):
    """QA demo67 (`lungai demo --ct LUNG1-003_ct.nii.gz --seed-point=1e4,1e4,1e4`, a shared 2-core machine): a seed point
    outside the CT was refused after 29.6 s, once torch / MONAI were imported and the models loaded.  The CT is read
    (on its bar) and the seed point checked before those imports; nothing is written."""
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    code, err, heavy = _heavy_at_refusal(["demo", "--ct", str(ct), "--seed-point=1e4,1e4,1e4", "-o",
                                          str(tmp_path / "out")], tmp_path)
    assert code == 2 and "outside the image" in err and "How to fix" in err, err
    assert heavy == [], heavy
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_demo_refuses_an_roi_off_the_ct_before_the_heavy_imports(small_phantom, tmp_path):
    """QA demo67: `lungai demo --ct LUNG1-003_ct.nii.gz --roi` of a box beside the CT (or one without extent) was
    refused only once torch / MONAI were imported and the models loaded (the ROI checks lived in lungai.seg.infer,
    which imports torch).  Those checks (lungai.seg.preprocess.roi_box) run with the seed point's, before."""
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    for roi, says in (("1e4,1e4,1e4,10010,10010,10010", "outside the image"), ("0,0,0,0,0,0", "--roi")):
        code, err, heavy = _heavy_at_refusal(["demo", "--ct", str(ct), f"--roi={roi}", "-o", str(tmp_path / "out")],
                                             tmp_path)
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (roi, heavy)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_segment_refuses_a_seed_point_or_roi_off_the_ct_before_the_heavy_imports(small_phantom, tmp_path):
    """QA seg72 (pyradiomics lung1, a shared 2-core machine): ``lungai segment --seed-point=1e4,1e4,1e4`` and an ROI
    beside the CT were refused 15-16 s after the command, once torch / MONAI were imported and the model loaded (the
    CT was read after the model), while ``lungai demo`` refuses them before (QA demo67).  The CT is read first now and
    the seed point / ROI checked on it (lungai.seg.preprocess.check_placement, demo's checks) before those imports;
    nothing is written."""
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    for given, says in (("--seed-point=1e4,1e4,1e4", "outside the image"),
                        ("--roi=1e4,1e4,1e4,10010,10010,10010", "outside the image")):
        code, err, heavy = _heavy_at_refusal(["segment", str(ct), given, "-o", str(tmp_path / "out")], tmp_path)
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (given, heavy)
    assert not (tmp_path / "out").exists()


def test_the_roi_margin_is_read_from_model_json_without_weights(tmp_path):
    """``lungai segment`` checks an ROI before loading its model with the margin the model would add
    (lungai.seg.model_meta.roi_margin_mm): a model's config.roi_margin_mm, a model choice's largest, SegConfig's when
    model.json has none."""
    import json

    from lungai.seg.config import SegConfig
    from lungai.seg.model_meta import read_meta, roi_margin_mm
    from lungai.seg.resources import resolve_model_dir

    choice = resolve_model_dir("lungai-seg-choice")
    assert roi_margin_mm(choice, read_meta(choice)) == 10.0
    assert roi_margin_mm(tmp_path, {"config": {"roi_margin_mm": 25}}) == 25.0
    assert roi_margin_mm(tmp_path, {"config": {}}) == roi_margin_mm(tmp_path, {}) == SegConfig.roi_margin_mm
    (tmp_path / "wide").mkdir()
    doc = read_meta(resolve_model_dir("lungai-seg-dynunet"))
    doc["config"]["roi_margin_mm"] = 30.0
    (tmp_path / "wide" / "model.json").write_text(json.dumps(doc))
    mixed = {"format": read_meta(choice)["format"], "models": ["wide", "lungai-seg-unet-ensemble"]}
    assert roi_margin_mm(tmp_path / "mine", mixed) == 30.0


def test_dose_features_refuses_a_missing_input_before_pandas_and_simpleitk(tmp_path):
    """QA radfollow69: ``lungai dose-features`` with a mistyped --dose / --ct / --lungs path imported pandas and
    SimpleITK (its "loading pandas and SimpleITK" step, 4-5 s on a shared machine) before the path checks refused
    it (--rtstruct too, before its own check).  The paths are checked first: the refusal names the option, nothing heavy imported, nothing written."""
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    (tmp_path / "lungs.nii.gz").write_bytes(b"")
    (tmp_path / "rd.dcm").write_bytes(b"")
    (tmp_path / "rs.dcm").write_bytes(b"")
    given = {"--dose": "rd.dcm", "--ct": "ct.nii.gz", "--lungs": "lungs.nii.gz"}
    for option, says in (("--dose", "--dose rd_typo.dcm does not exist"), ("--ct", "--ct ct_typo.nii.gz does not exist"),
                         ("--lungs", "--lungs lungs_typo.nii.gz does not exist"),
                         ("--rtstruct", "--rtstruct rs_typo.dcm does not exist")):
        args = {**given, option: given[option].replace(".", "_typo.", 1)} if option in given else \
            {"--dose": "rd.dcm", "--ct": "ct.nii.gz", option: "rs_typo.dcm"}
        code, err, heavy = _heavy_at_refusal(["dose-features", *(w for o, v in args.items() for w in (o, v)),
                                              "-o", str(tmp_path / "out" / "dose.csv")], tmp_path,
                                             heavy=("pandas", "SimpleITK", *HEAVY))
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (option, heavy)
        assert "loading pandas" not in err, err
    assert not (tmp_path / "out").exists()


def test_radiomics_refuses_a_missing_input_before_simpleitk_pandas_and_the_radiomics_modules(tmp_path):
    """QA cohortdose69: ``lungai radiomics`` with a mistyped --image / --mask / --tumour / --rtstruct path imported
    SimpleITK, pandas and lungai.radiomics (pyradiomics' modules) before its path check refused it, as dose-features
    did (QA radfollow69).  The paths are checked first: the refusal names the option, nothing heavy imported, nothing
    written."""
    for name in ("ct.nii.gz", "labels.nii.gz", "gtv.nii.gz", "rs.dcm"):
        (tmp_path / name).write_bytes(b"")
    for args, says in ((["--image", "ct_typo.nii.gz", "--mask", "labels.nii.gz"], "--image ct_typo.nii.gz does not exist"),
                       (["--image", "ct.nii.gz", "--mask", "labels_typo.nii.gz"], "--mask labels_typo.nii.gz does not exist"),
                       (["--image", "ct.nii.gz", "--tumour", "gtv_typo.nii.gz"], "--tumour gtv_typo.nii.gz does not exist"),
                       (["--image", "ct.nii.gz", "--rtstruct", "rs_typo.dcm"], "--rtstruct rs_typo.dcm does not exist")):
        code, err, heavy = _heavy_at_refusal(["radiomics", *args, "-o", str(tmp_path / "out" / "f.csv")], tmp_path,
                                             heavy=("pandas", "SimpleITK", "lungai.radiomics", *HEAVY))
        assert code == 2 and says in err and "How to fix" in err, err
        assert heavy == [], (args, heavy)
    assert not (tmp_path / "out").exists()


def test_stage_commands_draw_their_bar_before_pandas_and_torch_are_imported(tmp_path):
    """``lungai stage train / cv / validate / predict`` imported pandas, torch, MONAI, scikit-learn (and skops,
    torch-geometric later) before their first line (QA stage70, NSCLC-Radiogenomics on a shared 2-core machine:
    ``stage predict`` said nothing for 27 s, ``stage train`` for 15 s; predict without --explain drew no bar at all).
    They are loaded on a bar of their own now ("stage predict: loading"); ``stage synth`` too (QA synthbar72: its first
    line came 1.2-1.5 s after the command, 10 s with ``--genes 20000 --patients 300``)."""
    from stage_helpers import small_stage_cohort

    paths = small_stage_cohort(tmp_path / "c", 12)
    heavy = HEAVY + ("pandas", "SimpleITK", "sklearn", "torch_geometric", "skops")
    train = ["stage", "train", "--ehr", str(paths["ehr"]), "--label", "stage", "--modalities", "ehr", "--epochs", "1",
             "--inner-folds", "1", "--baselines", "logreg", "-o", str(tmp_path / "m")]
    assert _heavy_at_first_bar(train, tmp_path, heavy=heavy) == []
    assert not (tmp_path / "m").exists()
    (tmp_path / "m").mkdir()      # a model folder (its card is read after the bar): the paths are checked before it
    (tmp_path / "m" / "stage_model.json").write_text("{}")
    for command in ("predict", "validate"):
        args = ["stage", command, "--model", str(tmp_path / "m"), "--ehr", str(paths["ehr"]), "-o", str(tmp_path / "p")]
        assert _heavy_at_first_bar(args, tmp_path, heavy=heavy) == []
    # QA synthbar72: ``stage synth`` imported pandas and SimpleITK, and drew and wrote the EHR table and the RNA
    # matrix, before its first line (the cohort's CT bar); its output folder is made only when the cohort is written
    synth = ["stage", "synth", "--patients", "6", "--genes", "20", "-o", str(tmp_path / "s")]
    assert _heavy_at_first_bar(synth, tmp_path, heavy=heavy) == []
    assert not (tmp_path / "s").exists()


def test_stage_commands_refuse_a_wrong_input_path_before_pandas_and_torch(tmp_path):
    """QA stage71 (NSCLC-Radiogenomics, a shared 2-core machine): ``stage train --ehr /nonexistent.csv`` was refused
    after 33 s, ``stage predict --model /nonexistent`` after 25 s - pandas, torch, MONAI, scikit-learn, torch-geometric
    and skops imported first, on their "loading" bar - and the refusal of the missing table did not name its option
    ("table /nonexistent.csv does not exist; give a CSV (comma) or TSV (tab) file with a header row").  The paths are
    checked first: the refusal names the option and the fix, nothing heavy imported, no bar drawn, nothing written."""
    (tmp_path / "ehr.csv").write_text("patient_id,stage\nP1,I\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "model").mkdir()
    heavy = HEAVY + ("pandas", "SimpleITK", "sklearn", "torch_geometric", "skops")
    train = ["stage", "train", "--label", "stage", "-o", "out"]
    for args, says in (([*train, "--ehr", "ehr_typo.csv"], "--ehr ehr_typo.csv does not exist"),
                       ([*train, "--ehr", "ehr.csv", "--rna", "rna_typo.csv"], "--rna rna_typo.csv does not exist"),
                       ([*train, "--ehr", "ehr.csv", "--ct", "manifest_typo.csv"],
                        "--ct manifest_typo.csv does not exist"),
                       ([*train, "--ehr", "ehr.csv", "--gene-variances", "v_typo.csv"],
                        "--gene-variances v_typo.csv does not exist"),
                       ([*train, "--ehr", "ehr.csv", "--edges", "e_typo.csv"], "--edges e_typo.csv does not exist"),
                       ([*train, "--ehr", "folder"], "--ehr folder is a folder, not a table file"),
                       (train, "no input data"),
                       (["stage", "cv", "--rna", "folder", "-o", "out"], "--rna folder is a folder, not a table file"),
                       (["stage", "predict", "--model", "nowhere", "--ehr", "ehr.csv", "-o", "out"],
                        "--model nowhere does not exist"),
                       (["stage", "validate", "--model", "model", "--ehr", "ehr.csv", "--label", "stage", "-o", "out"],
                        "--model model is not a locked stage model (no stage_model.json)"),
                       (["stage", "predict", "--model", "model", "--ehr", "ehr_typo.csv", "-o", "out"],
                        "--ehr ehr_typo.csv does not exist")):
        code, err, imported = _heavy_at_refusal(args, tmp_path, heavy=heavy)
        assert code == 2 and says in err and "How to fix" in err, (args, err)
        assert imported == [], (args, imported)
        assert "loading" not in err, err
    assert not (tmp_path / "out").exists()


def test_stage_commands_refuse_a_users_file_in_the_output_folder_before_pandas_and_torch(tmp_path):
    """QA stagefollow71 (NSCLC-Radiogenomics, a shared 2-core machine): a ``metrics.json`` of the user's in ``stage cv
    -o DIR`` was refused after 21.3 s - the output names lived in lungai.fusion.model_io, which imports torch, so the
    check waited for the "loading" bar's pandas, torch, MONAI, scikit-learn, torch-geometric and skops.  Each command's
    user file of one of its output names is refused before those imports (and SimpleITK's), naming the file and the
    fix, and is left as it was."""
    (tmp_path / "ehr.csv").write_text("patient_id,stage\nP1,I\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stage_model.json").write_text("{}")
    heavy = HEAVY + ("pandas", "SimpleITK", "sklearn", "torch_geometric", "skops")
    model = ["--model", "model", "--ehr", "ehr.csv"]
    for command, args, mine in (("cv", ["--ehr", "ehr.csv", "--label", "stage"], "metrics.json"),
                                ("train", ["--ehr", "ehr.csv", "--label", "stage"], "model_card.md"),
                                ("train", ["--ehr", "ehr.csv", "--label", "stage"], "baseline_forest.skops"),
                                ("validate", [*model, "--label", "stage"], "confusion_logreg.png"),
                                ("predict", model, "predictions.csv")):
        out = tmp_path / f"out_{command}"
        out.mkdir(exist_ok=True)
        (out / mine).write_text("the user's own file")
        code, err, imported = _heavy_at_refusal(["stage", command, *args, "-o", out.name], tmp_path, heavy=heavy)
        assert code == 2 and f"holds {mine}, not written by lungai stage {command}" in err, (command, err)
        assert "How to fix" in err and "-o" in err, err
        assert imported == [], (command, imported)
        assert "loading" not in err, err
        assert (out / mine).read_text() == "the user's own file"
        (out / mine).unlink()


# the commands taking a mask, on the tmp_path files the mask-refusal tests make (ct.nii.gz, rd.dcm, ctdir/)
_MASK_COMMANDS = (["radiomics", "--image", "ct.nii.gz"], ["dose-features", "--dose", "rd.dcm", "--ct", "ct.nii.gz"],
                  ["dicom-export", "--ct", "ctdir"])


def test_a_folder_given_for_a_mask_or_a_structure_is_refused_before_the_ct_is_read(tmp_path):
    """QA inputs70 (LUNG1-003, a shared 2-core machine): a folder given where a mask file is read - ``lungai radiomics
    --mask nifti/`` (4.3 s), ``dose-features --lungs nifti/`` (4.4 s), ``dicom-export --tumour nifti/`` (6.0 s) - was
    refused only once the CT was read (minutes on a thin-slice CT); with --rtstruct a folder given as the structure
    (``--tumour RTSTRUCT/``, ``--gtv RTSTRUCT/``: 6.3-7.2 s) was looked for as a structure of that name after the CT
    was read ("structure '.../RTSTRUCT' is not in ..."), a mistyped mask file (``--tumour gtv_typo.nii.gz#1``) and
    --structure-map too; dicom-export checked none of its input paths first (``--lungs missing.nii.gz`` after 6.3 s
    without naming the option, ``--results missing/`` said "nothing to export").  Each is refused with the
    arguments: naming the option and the fix, nothing heavy imported, nothing written."""
    for name in ("ct.nii.gz", "rd.dcm", "rs.dcm"):
        (tmp_path / name).write_bytes(b"")
    results = tmp_path / "results"             # an output folder given instead of its mask file
    results.mkdir()
    for name in ("ct.nii.gz", "labels.nii.gz"):
        (results / name).write_bytes(b"")
    (tmp_path / "ctdir").mkdir()
    folder_said = "results is a folder where a mask file was expected"
    mask_fix = "if labels.nii.gz in it is the mask, give it: results/labels.nii.gz"
    structure_said = "is a folder: with --rtstruct, {o} takes a structure name or role:ROLE"
    rad, dose, export = _MASK_COMMANDS
    for args, says in (
            ([*rad, "--mask", "results", "-o", "out/f.csv"], ["--mask " + folder_said, mask_fix]),
            ([*rad, "--tumour", "results#1", "-o", "out/f.csv"], ["--tumour " + folder_said, mask_fix]),
            ([*dose, "--lungs", "results", "-o", "out/d.csv"], ["--lungs " + folder_said, mask_fix]),
            ([*dose, "--lungs", "ct.nii.gz", "--envelope", "results", "-o", "out/d.csv"],
             ["--envelope " + folder_said]),
            ([*export, "--tumour", "results", "-o", "out"], ["--tumour " + folder_said, mask_fix]),
            ([*export, "--lungs", "results", "-o", "out"], ["--lungs " + folder_said]),
            ([*export, "--tumour", "ct.nii.gz", "--lungs", "lungs_typo.nii.gz", "-o", "out"],
             ["--lungs lungs_typo.nii.gz does not exist"]),
            ([*export, "--results", "nowhere", "-o", "out"], ["--results nowhere does not exist"]),
            (["dicom-export", "--ct", "ct_typo", "--tumour", "ct.nii.gz", "-o", "out"], ["--ct ct_typo does not exist"]),
            ([*export, "--tumour", "ct.nii.gz", "--radiomics", "r_typo.csv", "-o", "out"],
             ["--radiomics r_typo.csv does not exist"]),
            ([*rad, "--rtstruct", "rs.dcm", "--tumour", "./results", "-o", "out/f.csv"],
             ["--tumour ./results " + structure_said.format(o="--tumour"), "lungai dicom-scan --structures"]),
            ([*rad, "--rtstruct", "rs.dcm", "--lungs", f"{results}/", "-o", "out/f.csv"],
             [f"--lungs {results}/ " + structure_said.format(o="--lungs")]),
            ([*dose, "--rtstruct", "rs.dcm", "--gtv", str(results), "-o", "out/d.csv"],
             [f"--gtv {results} " + structure_said.format(o="--gtv")]),
            ([*dose, "--rtstruct", "rs.dcm", "--structure", "GTV-1", "--structure", str(results), "-o", "out/d.csv"],
             [f"--structure {results} " + structure_said.format(o="--structure")]),
            ([*rad, "--rtstruct", "rs.dcm", "--tumour", "gtv_typo.nii.gz#1", "-o", "out/f.csv"],
             ["--tumour gtv_typo.nii.gz does not exist"]),
            ([*rad, "--rtstruct", "rs.dcm", "--structure-map", "map_typo.yaml", "-o", "out/f.csv"],
             ["--structure-map map_typo.yaml does not exist"]),
            ([*dose, "--rtstruct", "rs.dcm", "--structure-map", "map_typo.yaml", "-o", "out/d.csv"],
             ["--structure-map map_typo.yaml does not exist"])):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=("pandas", "SimpleITK", "lungai.radiomics", *HEAVY))
        assert code == 2 and all(s in err for s in says) and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "reading" not in err and "loading" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_file_of_no_mask_kind_given_for_a_mask_is_refused_before_the_ct_is_read(tmp_path):
    """QA dicomfollow71 (LUNG1-003's DICOM CT): a table given as a mask - ``lungai dicom-export --tumour notes.csv``
    - was refused only once the CT was read (6.1 s), as "unsupported file type '.csv'" with the CT's fix "(.dcm: a
    SEG or RTSTRUCT is read by its content ...)".  Every mask option of every command (radiomics --mask / --tumour /
    --lungs, with --rtstruct too; dose-features --lungs / --gtv / --envelope; dicom-export --tumour / --lungs; lungs
    --gtv) refuses it with the arguments (lungai.paths.check_mask_kind), naming what a mask may be: nothing heavy
    imported, nothing written."""
    for name in ("ct.nii.gz", "rd.dcm", "rs.dcm"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.csv").write_text("case,volume\nP1,3.2\n")
    (tmp_path / "ctdir").mkdir()
    said = "notes.csv is no mask: not an image file (NIfTI / NRRD / MHA, not .csv) and it is not DICOM"
    fix = "a NIfTI / NRRD / MHA label map on the CT's grid"
    rad, dose, export = _MASK_COMMANDS
    for args, option in (
            ([*rad, "--mask", "notes.csv", "-o", "out/f.csv"], "--mask"),
            ([*rad, "--tumour", "notes.csv", "-o", "out/f.csv"], "--tumour"),
            ([*rad, "--tumour", "ct.nii.gz", "--lungs", "notes.csv#1,2", "-o", "out/f.csv"], "--lungs"),
            ([*rad, "--rtstruct", "rs.dcm", "--tumour", "notes.csv", "-o", "out/f.csv"], "--tumour"),
            ([*dose, "--lungs", "notes.csv", "-o", "out/d.csv"], "--lungs"),
            ([*dose, "--lungs", "ct.nii.gz", "--gtv", "notes.csv", "-o", "out/d.csv"], "--gtv"),
            ([*dose, "--lungs", "ct.nii.gz", "--envelope", "notes.csv", "-o", "out/d.csv"], "--envelope"),
            ([*dose, "--rtstruct", "rs.dcm", "--gtv", "notes.csv", "-o", "out/d.csv"], "--gtv"),
            ([*export, "--tumour", "notes.csv", "-o", "out"], "--tumour"),
            ([*export, "--tumour", "ct.nii.gz", "--lungs", "notes.csv", "-o", "out"], "--lungs"),
            (["lungs", "ct.nii.gz", "--gtv", "notes.csv", "-o", "out/l.nii.gz"], "--gtv")):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=("pandas", "SimpleITK", "lungai.radiomics"))
        assert code == 2 and f"{option} {said}" in err and fix in err and "DICOM SEG" in err, (args, err)
        assert "unsupported file type" not in err and "a SEG or RTSTRUCT is read by its content" not in err, err
        # a table is no CT given in the wrong place (QA dicom71 / rp72: the fix said "the CT itself is given as the
        # command's CT (--ct, --image), not as a mask")
        assert "the CT itself" not in err, (args, err)
        assert ("with --rtstruct, a mask option takes a structure" in err) == ("--rtstruct" in args), (args, err)
        assert heavy == [], (args, heavy)       # lungs too (QA notesfollow71: SimpleITK, its writer's)
        assert "reading" not in err and "loading" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_dicom_image_given_for_a_mask_is_refused_before_the_ct_is_read(tmp_path):
    """QA dicom72 (LUNG1-003's DICOM CT): a slice of the CT (a file with the DICM preamble) given as a mask -
    ``lungai radiomics --mask CT/slice.dcm`` (1.4 s), ``dicom-export --tumour CT/slice.dcm`` (2.8 s) - was refused by
    the mask reader only once the whole CT was read, under the bar "reading the CT".  Every mask option refuses it
    with the arguments now (lungai.paths.check_mask_kind reads the file up to its Modality), saying it is a CT image,
    not a mask; an RTDOSE given as a mask is said to be a dose grid, which goes to --dose: SimpleITK not imported, no
    bar drawn, nothing written."""
    import numpy as np

    from lungai.dicom.synthetic import dose_grid, write_ct_series, write_rtdose

    ct = sitk.GetImageFromArray(np.full((4, 8, 8), -1000, np.int16))
    ct.SetSpacing((2.0, 2.0, 3.0))
    reference = write_ct_series(ct, tmp_path / "ctdir")
    slice_ = sorted((tmp_path / "ctdir").iterdir())[1]
    write_rtdose(dose_grid(ct, margin_mm=0.0), tmp_path / "rd.dcm", reference)
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    said = f"{slice_} is a DICOM CT image file (a slice of a series), not a mask"
    fix = "the CT itself is given as the command's CT (--ct, --image), not as a mask"
    rad = ["radiomics", "--image", "ctdir"]
    for args, option in (
            ([*rad, "--mask", str(slice_), "-o", "out/f.csv"], "--mask"),
            ([*rad, "--tumour", str(slice_), "-o", "out/f.csv"], "--tumour"),
            (["dose-features", "--dose", "rd.dcm", "--ct", "ctdir", "--lungs", str(slice_), "-o", "out/d.csv"],
             "--lungs"),
            (["dicom-export", "--ct", "ctdir", "--tumour", str(slice_), "-o", "out"], "--tumour"),
            (["lungs", "ct.nii.gz", "--gtv", str(slice_), "-o", "out/l.nii.gz"], "--gtv")):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=("pandas", "SimpleITK", "lungai.radiomics"))
        assert code == 2 and f"{option} {said}" in err and fix in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "reading" not in err and "%" not in err, err
    code, err, heavy = _heavy_at_refusal(["dicom-export", "--ct", "ctdir", "--lungs", "rd.dcm", "-o", "out"], tmp_path,
                                         heavy=("pandas", "SimpleITK", "lungai.radiomics"))
    assert code == 2 and "--lungs rd.dcm is a DICOM RTDOSE (a dose grid), not a mask" in err, err
    assert "slice of a series" not in err and "the RTDOSE goes to --dose" in err and heavy == [], (err, heavy)
    assert not (tmp_path / "out").exists()


def test_lungs_refuses_its_arguments_before_simpleitk(tmp_path):
    """QA notesfollow71: ``lungai lungs`` imported SimpleITK (lungai.io's reader and writer, lungai.dicom.reference
    and lungai.dicom.export) at the start of its run, before its argument checks: a wrong output name, a missing CT
    or RTSTRUCT, a user's file at -o were refused after it (about 0.3-1 s of a shared machine).  Now with nothing
    heavy imported, no bar drawn, nothing written."""
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    (tmp_path / "mine.nii.gz").write_text("the user's")
    for args, said in ((["lungs", "ct.nii.gz", "-o", "l.txt"], "cannot write l.txt: unknown image format"),
                       (["lungs", "missing.nii.gz", "-o", "l.nii.gz"], "CT missing.nii.gz does not exist"),
                       (["lungs", "ct.nii.gz", "--rtstruct", "rs.dcm", "-o", "l.nii.gz"], "--rtstruct rs.dcm does not"),
                       (["lungs", "ct.nii.gz", "-o", "mine.nii.gz"], "mine.nii.gz already exists and was not written")):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=("pandas", "SimpleITK", *HEAVY))
        assert code == 2 and said in err and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "reading" not in err and "%" not in err, err
    assert (tmp_path / "mine.nii.gz").read_text() == "the user's"
    assert not (tmp_path / "l.nii.gz").exists()


def test_an_output_in_a_dicom_input_folder_is_refused_with_the_arguments(tmp_path):
    """QA dicomfollow71 (LUNG1-003's DICOM CT and RTSTRUCT): ``lungai radiomics --rtstruct x/rs.dcm -o x/r.csv`` said
    "refusing to write results into the RTSTRUCT folder" only once "reading the CT" was said (~2.5 s on a shared
    machine), after SimpleITK, pandas and the radiomics modules were imported; dicom-export once the CT series was
    checked.  The output is checked against the inputs' DICOM folders with the arguments: nothing heavy imported, no
    bar drawn, nothing written (the DICOM file given is read up to its Modality: pydicom)."""
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    (tmp_path / "ctdir").mkdir()
    (tmp_path / "rt").mkdir()
    (tmp_path / "rt" / "rs.dcm").write_bytes(bytes(128) + b"DICM")     # a DICOM file (its Modality unreadable)
    said = "refusing to write results into the DICOM folder"
    for args in (["radiomics", "--image", "ct.nii.gz", "--rtstruct", "rt/rs.dcm", "-o", "rt/r.csv"],
                 ["radiomics", "--image", "ct.nii.gz", "--rtstruct", "rt", "-o", "rt/r.csv"],
                 ["dicom-export", "--ct", "ctdir", "--tumour", "rt/rs.dcm", "-o", "rt"]):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=("pandas", "SimpleITK", "lungai.radiomics"))
        assert code == 2 and said in err and "choose an output folder outside the DICOM folder" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "reading" not in err and "checking" not in err and "%" not in err, err
    assert sorted(p.name for p in (tmp_path / "rt").iterdir()) == ["rs.dcm"]


# what an rp command must not have imported when it refuses a path or draws its first bar
RP_HEAVY = HEAVY + ("pandas", "sklearn", "SimpleITK", "skops")


def test_rp_commands_refuse_a_missing_input_before_the_heavy_imports(tmp_path, rp_small_model):
    """QA rp71 (a shared 2-core machine): ``rp train`` with a mistyped table, second table or role file imported
    pandas, scikit-learn, torch and SimpleITK for 12-14 s before "does not exist"; ``rp predict`` / ``rp validate``
    of a missing model folder 10-12 s; of a missing patients table 11-13 s, after reading the model file (a random
    forest's: 13-49 s).  The paths are checked with the arguments (lungai.rp.inputs), the same words as the readers';
    nothing heavy imported, no model file read, nothing written."""
    (tmp_path / "t.csv").write_text("case,clin_age_years,rp_grade2\nP1,60,0\n")
    model = str(rp_small_model)
    table_fix = "give the path of a comma-separated CSV file with one row per patient"
    for args, says in (
            (["train", "typo.csv", "--outcome", "rp_grade2", "-o", "out"],
             ["table typo.csv does not exist", table_fix]),
            (["train", "t.csv", "typo.csv", "--outcome", "rp_grade2", "-o", "out"], ["table typo.csv does not exist"]),
            (["train", "t.csv", "--outcome", "rp_grade2", "--roles", "roles_typo.csv", "-o", "out"],
             ["role file roles_typo.csv does not exist", "columns column,role[,type]"]),
            (["predict", "model_typo", "t.csv", "-o", "out/p.csv"],
             ["the RP model folder model_typo does not exist", "lungai rp train -o MODEL_DIR"]),
            (["predict", model, "typo.csv", "-o", "out/p.csv"], ["table typo.csv does not exist", table_fix]),
            (["validate", "model_typo", "t.csv", "-o", "out"], ["the RP model folder model_typo does not exist"]),
            (["validate", model, "typo.csv", "-o", "out"], ["table typo.csv does not exist", table_fix])):
        code, err, heavy = _heavy_at_refusal(["rp", *args], tmp_path, heavy=RP_HEAVY)
        assert code == 2 and all(s in err for s in says) and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "loading" not in err, (args, err)
    assert not (tmp_path / "out").exists()


def test_rp_commands_draw_their_bar_before_pandas_and_torch_are_imported(tmp_path, rp_small_model):
    """QA rp71: ``rp train`` wrote its first line 21 s after the command, ``rp predict`` 11 s (pandas, scikit-learn,
    torch, SimpleITK imported without a word).  They are loaded on a bar of their own now ("rp train: loading"), as
    lungai stage's; ``rp synth`` too (QA smallfix72: -n 20, 4.7 s without a line)."""
    from lungai.rp.cohort import make_cohort

    make_cohort(80, seed=3, n_noise=0).table.to_csv(tmp_path / "t.csv", index=False)
    train = ["rp", "train", "t.csv", "--outcome", "rp_grade2", "-o", "m", "--fast", "--models", "lr", "--outer-folds",
             "2", "--inner-folds", "2"]
    assert _heavy_at_first_bar(train, tmp_path, heavy=RP_HEAVY) == []
    assert not (tmp_path / "m").exists()
    for command in (["predict", str(rp_small_model), "t.csv", "-o", "p.csv"],
                    ["validate", str(rp_small_model), "t.csv", "-o", "v"]):
        assert _heavy_at_first_bar(["rp", *command], tmp_path, heavy=RP_HEAVY) == [], command
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "v").exists()
    # QA smallfix72: ``rp synth -n 20`` was a silent wait of 4.7 s (pandas and scikit-learn imported without a bar)
    assert _heavy_at_first_bar(["rp", "synth", "-n", "20", "-o", "s.csv"], tmp_path, heavy=RP_HEAVY) == []
    assert not (tmp_path / "s.csv").exists()


def test_rp_train_refuses_fold_counts_and_a_threshold_with_the_arguments(tmp_path):
    """QA rp71: ``rp train --outer-folds 0`` (1, -3, ``--inner-folds 1``) was refused by the nested CV's check 7-12 s
    after the command, pandas, scikit-learn and torch imported first; ``--outer-folds 2.5`` and ``--threshold abc``
    said argparse's "invalid int / float value" without a fix.  Now refused with the arguments, naming the fix."""
    (tmp_path / "t.csv").write_text("case,clin_age_years,rp_grade2\nP1,60,0\n")
    train = ["rp", "train", "t.csv", "--outcome", "rp_grade2", "-o", "out"]
    for args, says in ((["--outer-folds", "0"], "argument --outer-folds: 0 is below 2"),
                       (["--outer-folds", "1"], "argument --outer-folds: 1 is below 2"),
                       (["--inner-folds", "-3"], "argument --inner-folds: -3 is below 2"),
                       (["--outer-folds", "2.5"], "argument --outer-folds: '2.5' is not a whole number")):
        code, err, heavy = _heavy_at_refusal([*train, *args], tmp_path, heavy=RP_HEAVY)
        assert code == 2 and says in err and "e.g. --outer-folds 5 --inner-folds 3" in err, (args, err)
        assert heavy == [], (args, heavy)
    for command in (train, ["rp", "validate", "model", "t.csv"]):
        code, err, heavy = _heavy_at_refusal([*command, "--threshold", "abc"], tmp_path, heavy=RP_HEAVY)
        assert code == 2 and "'abc' is not a number: give a risk between 0 and 1, e.g. 0.20" in err, err
        assert heavy == [], heavy
    assert not (tmp_path / "out").exists()


def test_rp_train_refuses_unknown_models_feature_sets_and_final_with_the_arguments(tmp_path):
    """QA rp71: ``rp train --models lr,svm`` was refused 6.6 s after the command, ``--final all/xx`` 9.7 s (pandas,
    scikit-learn and torch imported, the table read first).  Now with the arguments (lungai.rp.card
    .check_training_choices), in the same words, naming the choices."""
    (tmp_path / "t.csv").write_text("case,clin_age_years,rp_grade2\nP1,60,0\n")
    train = ["rp", "train", "t.csv", "--outcome", "rp_grade2", "-o", "out"]
    for args, says in ((["--models", "lr,svm"], ["unknown model: ['svm']", "choose from lr, rf"]),
                       (["--feature-sets", "clinical"], ["unknown feature set: ['clinical']",
                                                         "choose from clinical_dosimetric, radiomic, all"]),
                       (["--final", "all/xx"], ["--final 'all/xx' is not one of the trained combinations",
                                                "use one of clinical_dosimetric/lr, clinical_dosimetric/rf"]),
                       (["--models", "lr", "--final", "all/rf"], ["--final 'all/rf' is not one of the trained",
                                                                  "use one of clinical_dosimetric/lr, radiomic/lr, "
                                                                  "all/lr"])):
        code, err, heavy = _heavy_at_refusal([*train, *args], tmp_path, heavy=RP_HEAVY)
        assert code == 2 and all(s in err for s in says) and "How to fix" in err, (args, err)


def test_dose_features_refuses_its_levels_and_output_name_before_pandas_and_simpleitk(tmp_path):
    """QA radiomics71 (LUNG1-002, a shared 2-core machine): ``lungai dose-features`` checked ``-o`` (a table: *.csv)
    and ``--v-levels`` only after loading pandas and SimpleITK (its "loading pandas and SimpleITK" step): refused
    3.0-3.8 s after the command against 0.8-1.3 s for another argument error; ``--max-dose-gy 0`` only once the CT and
    the masks were read (5-8 s).  They are refused with the arguments: the value and the fix named, nothing heavy
    imported, nothing written."""
    for name in ("ct.nii.gz", "lungs.nii.gz", "rd.dcm"):
        (tmp_path / name).write_bytes(b"")
    dose = ["dose-features", "--dose", "rd.dcm", "--ct", "ct.nii.gz", "--lungs", "lungs.nii.gz"]
    for args, says in ((["--v-levels", "x", "-o", "out/d.csv"], "--v-levels 'x' is not a list of different positive"),
                       (["--v-levels", "500,2000", "-o", "out/d.csv"], "the levels look like cGy (5,20 Gy?)"),
                       (["--max-dose-gy", "0", "-o", "out/d.csv"], "--max-dose-gy 0.0 is not a positive dose in Gy"),
                       (["--max-dose-gy", "-1", "--v-levels", "5,20", "-o", "out/d.csv"],
                        "--max-dose-gy -1.0 is not a positive dose in Gy"),
                       (["-o", "out/dose.txt"], "cannot write dose.txt: tables are written as CSV")):
        code, err, heavy = _heavy_at_refusal([*dose, *args], tmp_path, heavy=("pandas", "SimpleITK", *HEAVY))
        assert code == 2 and says in err and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "loading pandas" not in err, err
    assert not (tmp_path / "out").exists()


def test_the_levels_checked_first_are_those_the_dose_features_use():
    """The levels of the arguments (lungai.dose.levels, imported without numpy / SimpleITK) are the names the dose
    modules use, one definition: a V column and the largest plausible dose of the features and of the dose reader."""
    from lungai.dose import features, levels, read

    assert features.parse_v_levels is levels.parse_v_levels and features.v_column is levels.v_column
    assert read.max_dose_limit is levels.max_dose_limit and read.MAX_PLAUSIBLE_GY == levels.MAX_PLAUSIBLE_GY == 150
    assert levels.parse_v_levels("20,2.5") == (2.5, 20.0) and levels.v_column(2.5) == "dose_v2p5_pct"


def test_radiomics_commands_refuse_an_output_not_csv_before_their_heavy_imports(tmp_path):
    """QA radiomics71: ``-o features.txt`` was refused after the radiomics modules (pyradiomics, SimpleITK, pandas)
    were imported: ``radiomics`` 1.4-1.7 s after the command against 0.7 s for a mistyped path, ``radiomics-batch``
    2.1-2.8 s, ``ibsi-check`` 1.4 s.  Refused with the arguments now, nothing heavy imported."""
    for name in ("ct.nii.gz", "labels.nii.gz", "manifest.csv", "ref.csv"):
        (tmp_path / name).write_bytes(b"")
    for args in (["radiomics", "--image", "ct.nii.gz", "--mask", "labels.nii.gz"],
                 ["radiomics-batch", "manifest.csv"],
                 ["ibsi-check", "--image", "ct.nii.gz", "--mask", "labels.nii.gz", "--reference", "ref.csv",
                  "--config", "A"]):
        code, err, heavy = _heavy_at_refusal([*args, "-o", "out/features.txt"], tmp_path,
                                             heavy=("pandas", "SimpleITK", "radiomics", "lungai.radiomics.extract",
                                                    *HEAVY))
        assert code == 2 and "cannot write features.txt: tables are written as CSV" in err, (args, err)
        assert "How to fix: name the output *.csv" in err, err
        assert heavy == [], (args, heavy)
    assert not (tmp_path / "out").exists()


def test_rp_commands_refuse_their_output_before_the_heavy_imports(tmp_path, rp_small_model):
    """QA rpfollow71: ``rp train -o`` of a folder holding a model, of a file, under a file, was refused after the
    loading bar (~10 s of a shared machine: lungai.io.outputs imported SimpleITK through lungai/io/__init__, the
    check lived in lungai.rp.training); ``rp validate -o`` / ``rp predict -o`` of a user's file likewise.  Now with the
    arguments (lungai.rp.card.check_model_folder, lungai.io.outputs light), in the same words; nothing heavy imported,
    nothing written."""
    import shutil

    (tmp_path / "t.csv").write_text("case,clin_age_years,rp_grade2\nP1,60,0\n")
    shutil.copytree(rp_small_model, tmp_path / "m")
    (tmp_path / "f.txt").write_text("mine\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "metrics.json").write_text("{}\n")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "external_metrics.json").write_text("{}\n")
    train = ["rp", "train", "t.csv", "--outcome", "rp_grade2", "-o"]
    model = str(rp_small_model)
    for args, says in (
            ([*train, "m"], ["m already holds a model", "choose a new output directory (or --overwrite)"]),
            ([*train, "f.txt"], ["the output f.txt is a file, not a folder", "give a folder name with -o"]),
            ([*train, "f.txt/sub"], ["cannot create the output folder f.txt/sub: f.txt is a file"]),
            ([*train, "mine"], ["metrics.json", "not written by lungai rp train"]),
            (["rp", "validate", model, "t.csv", "-o", "v"], ["external_metrics.json",
                                                              "not written by lungai rp validate"]),
            (["rp", "validate", model, "t.csv", "-o", "f.txt"], ["the output f.txt is a file, not a folder"]),
            (["rp", "predict", model, "t.csv", "-o", "f.txt"], ["f.txt already exists and was not written by lungai "
                                                               "rp predict", "choose a new file name"])):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=RP_HEAVY)
        assert code == 2 and all(s in err for s in says) and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "loading" not in err, (args, err)
    assert (tmp_path / "f.txt").read_text() == "mine\n" and (tmp_path / "mine" / "metrics.json").read_text() == "{}\n"
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["external_metrics.json"]


def _refused_into_the_ct_series_folder(small_phantom, tmp_path, command, heavy_modules):
    """``command(CT)`` with CT a DICOM series folder and its output straight in it, with and without --no-dicom:
    refused (exit 2, the folder named, the fix) before any of ``heavy_modules`` is imported, nothing written: CT."""
    from lungai.dicom.synthetic import write_ct_series

    ct = tmp_path / "CT"
    write_ct_series(small_phantom.ct[:, :, :4], ct)
    slices = sorted(p.name for p in ct.iterdir())
    for extra, said in (([], f"refusing to write DICOM results into the CT series folder {ct}"),
                        (["--no-dicom"], f"refusing to write results into the DICOM series folder {ct} (the input "
                                         "CT's)")):
        code, err, heavy = _heavy_at_refusal([*command(ct), *extra], tmp_path, heavy_modules)
        assert code == 2 and said in err and "choose an output folder outside the CT's folder" in err, err
        assert heavy == [], (extra, heavy)
    assert sorted(p.name for p in ct.iterdir()) == slices
    return ct


def test_lungs_refuses_an_output_among_the_ct_slices_before_simpleitk(small_phantom, tmp_path):
    """QA dicomfollow72: ``lungai lungs CT -o CT/lungs.nii.gz`` (CT a DICOM series folder) imported SimpleITK and
    pydicom (its series listed by GDCM for the CT series folder: 0.73 s on LUNG1-003) before refusing to write into
    the CT's folder.  The folder given is the series folder and the output lies straight in it: refused from the
    paths, with and without --no-dicom, nothing written; a folder beside it still passes that check."""
    ct = _refused_into_the_ct_series_folder(small_phantom, tmp_path, lambda ct: ["lungs", str(ct), "-o",
                                                                                 str(ct / "lungs.nii.gz")],
                                            HEAVY + ("SimpleITK",))
    from lungai.paths import check_output_not_among_ct_slices

    check_output_not_among_ct_slices(tmp_path / "out", ct)      # not the CT's folder: passes


def test_segment_refuses_the_ct_series_folder_as_output_before_simpleitk(small_phantom, tmp_path):
    """QA dicomfollow72: ``lungai segment CT -o CT`` (CT a DICOM series folder) listed the series (GDCM) and imported
    pydicom (0.81 s on LUNG1-003) before refusing to write into the CT's folder; refused now from the paths, before
    pydicom and the listing (SimpleITK: imported by the model's checks before), nothing written."""
    _refused_into_the_ct_series_folder(small_phantom, tmp_path, lambda ct: ["segment", str(ct), "-o", str(ct),
                                                                            "--whole"], HEAVY)


def test_rp_commands_refuse_an_input_that_is_their_output_before_the_heavy_imports(tmp_path, rp_small_model):
    """QA rp71 / rp72 (NSCLC-Radiogenomics' clinical table, 210 patients): a table or role file lying in ``rp train
    -o`` under one of its output names (``rp train o/cv_predictions.csv -o o --overwrite``, ``--roles
    o/model_card.md``; an older lungai's model folder without the marker too) was refused only after the loading bar
    (3.0 s alone, 7-12 s on a shared machine), as "the input ['o/cv_predictions.csv'] would be overwritten"; ``rp
    predict MODEL patients.csv -o patients.csv`` after the heavy imports and the model's loading (6-17 s).  Now with
    the arguments, naming the file and the fix; nothing heavy imported, the user's files unchanged."""
    import shutil

    shutil.copytree(rp_small_model, tmp_path / "m")
    shutil.copytree(rp_small_model, tmp_path / "old")
    (tmp_path / "old" / ".lungai-rp-train").unlink()          # an older lungai's model folder: its card says so
    table = "case,clin_age_years,rp_grade2\nP1,60,0\n"
    (tmp_path / "old" / "cv_predictions.csv").write_text(table)
    (tmp_path / "t.csv").write_text(table)
    (tmp_path / "roles.csv").write_text("column,role\nclin_age_years,clinical\n")
    shutil.copy(tmp_path / "roles.csv", tmp_path / "m" / "model_card.md")
    before = {p: p.read_bytes() for p in (tmp_path / "m" / "cv_predictions.csv", tmp_path / "m" / "model_card.md",
                                          tmp_path / "old" / "cv_predictions.csv", tmp_path / "t.csv")}
    train = ["rp", "train", "--outcome", "rp_grade2", "--overwrite"]
    for args, says in (
            ([*train, "m/cv_predictions.csv", "-o", "m"], "the input m/cv_predictions.csv is the file "
                                                          "cv_predictions.csv that lungai rp train writes into its "
                                                          "output directory m"),
            ([*train, "t.csv", "--roles", "m/model_card.md", "-o", "m"], "the input m/model_card.md is the file "
                                                                         "model_card.md"),
            ([*train, "old/cv_predictions.csv", "-o", "old"], "the input old/cv_predictions.csv is the file "
                                                              "cv_predictions.csv"),
            (["rp", "predict", str(rp_small_model), "t.csv", "-o", "t.csv"], "the output t.csv is an input file "
                                                                              "and would be overwritten")):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=RP_HEAVY)
        assert code == 2 and says in err and "How to fix" in err, (args, err)
        assert heavy == [], (args, heavy)
        assert "loading" not in err, (args, err)
    assert "copy it out of m and give the copy, or choose another output directory with -o" in _heavy_at_refusal(
        [*train, "m/cv_predictions.csv", "-o", "m"], tmp_path, heavy=RP_HEAVY)[1]
    assert all(p.read_bytes() == data for p, data in before.items())


def test_rp_commands_refuse_a_table_given_twice_or_a_role_file_as_a_table_before_the_heavy_imports(tmp_path,
                                                                                                   rp_small_model):
    """QA rp72 (NSCLC-Radiogenomics' clinical table): ``rp train clinical.csv roles.csv`` (--roles forgotten) was
    refused after the loading bar (3 s alone, 12.9 s on a shared machine) as "roles.csv has no patient id column ...
    add a column named one of case, patient_id ... to every table"; ``rp train clinical.csv clinical.csv`` (9.7 s) as
    "repeats columns [...] of an earlier table", fix "keep each column in one table only".  Now with the arguments
    (lungai.rp.inputs.check_tables_given), saying what was given and the fix; nothing heavy imported."""
    (tmp_path / "t.csv").write_text("case,clin_age_years,rp_grade2\nP1,60,0\n")
    (tmp_path / "roles.csv").write_text("Column, Role ,type\nclin_age_years,clinical,\n")
    train = ["rp", "train", "--outcome", "rp_grade2", "-o", "out"]
    for args, says in (
            ([*train, "t.csv", "roles.csv"], ["the table roles.csv is a role file (its header: Column,Role,type), not "
                                              "a table of patients", "How to fix: give it with --roles roles.csv"]),
            ([*train, "t.csv", "roles.csv", "--roles", "roles.csv"],
             ["the table roles.csv is a role file", "and the role file with --roles"]),
            ([*train, "t.csv", "./t.csv"], ["the table ./t.csv is given twice (as t.csv and ./t.csv)",
                                            "How to fix: give each table once"]),
            ([*train, "t.csv", "--roles", "t.csv"], ["the role file t.csv is also given as a table"]),
            (["rp", "predict", str(rp_small_model), "t.csv", "roles.csv", "-o", "p.csv"],
             ["the table roles.csv is a role file", "How to fix: give only the tables of patients as arguments"]),
            (["rp", "validate", str(rp_small_model), "t.csv", "t.csv"], ["the table t.csv is given twice"])):
        code, err, heavy = _heavy_at_refusal(args, tmp_path, heavy=RP_HEAVY)
        assert code == 2 and all(s in err for s in says), (args, err)
        assert heavy == [], (args, heavy)
        assert "loading" not in err, (args, err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "p.csv").exists()
