"""Each panel feature's package list (LungAICommon/requirements.py FEATURES) covers what its commands import.

A panel installs only its feature's packages on first use (``install.ensure(feature)``) into a Slicer that has
numpy and SimpleITK (and the PyTorch extension's torch).  Here a child process runs the panel's command with every
other pinned package made unimportable, as in such a Slicer: training crashed after all epochs without scikit-learn
(the confidence calibration), stage prediction at import without MONAI (the CT branch), the DICOM export without
highdicom (QA, session 29)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from seg_helpers import TINY_CLI, tiny_cases, write_cases

from LungAICommon import requirements

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not in the feature's packages)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.argv = ["lungai", *sys.argv[2:]]
    from lungai.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def blocked_modules(feature: str) -> list[str]:
    """Import names of the pinned packages the feature does not install (never numpy / SimpleITK: Slicer's)."""
    keep = set(requirements.FEATURES[feature])
    return sorted(r.module for name, r in requirements.PINNED.items() if name not in keep)


def run_with_feature(feature: str, *args, cwd=None) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", BLOCKER, ",".join(blocked_modules(feature)), *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", cwd=cwd, env=env, timeout=600)


def check(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_the_blocker_blocks():
    """The check itself: a package outside the feature cannot be imported in the child."""
    assert "sklearn" in blocked_modules("lungs")
    proc = subprocess.run([sys.executable, "-c", BLOCKER.replace("from lungai.cli import main", "import sklearn"),
                           "sklearn"], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0 and "not in the feature's packages" in proc.stderr


def test_segmentation_feature_trains_and_calibrates(tmp_path):
    """Training ends with the confidence calibration (scikit-learn)."""
    images, masks = write_cases(tiny_cases(6, seed=501), tmp_path)
    out = tmp_path / "model"
    check(run_with_feature("segmentation", "train-seg", "--images", images, "--masks", masks, "-o", out,
                           "--arch", "unet", *TINY_CLI))
    assert "calibration" in (out / "model.json").read_text(encoding="utf-8")
    check(run_with_feature("segmentation", "segment", images / "P00_0.nii.gz", "-o", tmp_path / "seg",
                           "--model", out))


def test_prediction_feature_predicts_the_stage_with_a_ct(tmp_path):
    """The stage model's CT branch (MONAI blocks) is importable with the prediction packages."""
    from lungai.fusion.api import train_stage_model
    from lungai.fusion.pipeline import FusionConfig
    from lungai.fusion.synthetic import make_cohort

    paths = make_cohort(tmp_path / "cohort", n=30, seed=0, n_genes=30, module_size=6, ct_shape=(32, 32, 16),
                        ct_spacing=(6.0, 6.0, 5.0))
    train_stage_model(paths["ehr"], paths["rna"], paths["ct"], label="stage", out_dir=tmp_path / "model",
                      config=FusionConfig(epochs=2, top_k=20, neighbours=3, seed=0), baselines=(), inner_folds=1)
    check(run_with_feature("prediction", "stage", "predict", "--model", tmp_path / "model", "--ehr", paths["ehr"],
                           "--rna", paths["rna"], "--ct", paths["ct"], "-o", tmp_path / "pred", "--explain",
                           "--use", "fusion"))


def test_dicom_feature_exports_seg_and_rtstruct(tmp_path):
    """The segmentation panel's 'Export as DICOM SEG + RTSTRUCT' (highdicom)."""
    from dicom_helpers import rt_export

    from lungai.io import read_ct

    st = rt_export(tmp_path / "rt")["P1"]
    ct = read_ct(st["ct"])
    gtv = sitk.GetArrayFromImage(st["masks"]["GTV"]) > 0
    img = sitk.GetImageFromArray(gtv.astype(np.uint8))
    img.CopyInformation(ct)
    sitk.WriteImage(img, str(tmp_path / "gtv.nii.gz"))
    check(run_with_feature("dicom", "dicom-export", "--ct", st["ct"], "--tumour", tmp_path / "gtv.nii.gz",
                           "-o", tmp_path / "exp"))
    assert list((tmp_path / "exp").glob("*.dcm"))


def test_the_export_button_installs_the_dicom_feature():
    """The widget (Qt: not run here) asks for the 'dicom' packages before exporting."""
    import ast

    tree = ast.parse((ROOT / "LungAISeg" / "LungAISeg.py").read_text(encoding="utf-8"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "onExportDicomButton")
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "ensure"]
    assert any(isinstance(c.args[0], ast.Constant) and c.args[0].value == "dicom" for c in calls)
    assert "dicom" in requirements.FEATURES


@pytest.mark.parametrize("feature", sorted(requirements.FEATURES))
def test_every_feature_package_is_pinned(feature):
    assert set(requirements.FEATURES[feature]) <= set(requirements.PINNED)
