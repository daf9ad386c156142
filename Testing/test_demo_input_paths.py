"""summary.json records the inputs the demo used as absolute paths (as it records the model's folder): a path typed
relative to the shell's folder (``--ct ../data/ct.nii.gz``) does not lead to the input from the output folder or
from anywhere else later."""

from __future__ import annotations

import json
import os

import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.slow


def test_demo_records_its_inputs_as_absolute_paths(tmp_path, monkeypatch):
    from lungai.cli import main
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    spec = PhantomSpec(shape=(128, 128, 48), spacing=(2.8, 2.8, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    phantom = make_phantom(spec, seed=SAMPLE_SEED)
    (tmp_path / "data").mkdir()
    sitk.WriteImage(phantom.ct, str(tmp_path / "data" / "ct.nii.gz"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    seed = ",".join(f"{v:g}" for v in phantom.meta["tumour"]["centre_mm"])
    assert main(["demo", "--ct", "../data/ct.nii.gz", f"--seed-point={seed}", "-o", "out"]) == 0
    summary = json.loads((tmp_path / "work" / "out" / "summary.json").read_text(encoding="utf-8"))
    ct = os.path.join(str(tmp_path), "data", "ct.nii.gz")
    assert summary["inputs"]["ct"] == ct and summary["input"]["source"] == ct
    assert os.path.isabs(summary["seg_model"]["dir"])
