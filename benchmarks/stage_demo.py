"""Stage demo timing: train on a small synthetic multimodal cohort, then predict the sample patient.

Target (issue 8's demo): stage probabilities for the built-in sample phantom in well under 30 s.
Prints the times and their ratio to a baseline measured in the same run (loading the sample CT).

    .venv/bin/python benchmarks/stage_demo.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_code, verdict  # noqa: E402

TARGET_S = 30.0


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from lungai.fusion.api import predict_stage, synthetic_stage_model
    from lungai.synthetic import SAMPLE_SEED, labels, make_phantom, sample_spec

    t0 = time.perf_counter()
    sample = make_phantom(sample_spec(), SAMPLE_SEED)
    baseline = time.perf_counter() - t0
    mask = sitk.GetImageFromArray(labels.tumour_mask(sitk.GetArrayFromImage(sample.labels)).astype(np.uint8))
    mask.CopyInformation(sample.labels)
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        pipe = synthetic_stage_model(tmp, n=45, seed=0, epochs=60)
        train = time.perf_counter() - t1
        t2 = time.perf_counter()
        df = predict_stage(pipe, patient_id="sample", ct_image=sample.ct, mask_image=mask,
                           ehr_row={"age": 64, "sex": "Male", "smoking": "Former", "pack_years": 30, "ldh": 0.1})
        predict = time.perf_counter() - t2
    print(df.to_string(index=False))
    print(f"baseline (sample phantom) {baseline:.1f} s")
    print(f"synthetic cohort + training {train:.1f} s ({train / baseline:.1f} x baseline)")
    print(f"prediction for the sample {predict:.2f} s ({predict / baseline:.2f} x baseline)")
    total = train + predict
    return exit_code(verdict(f"stage demo total < {TARGET_S:.0f} s", total < TARGET_S, f"{total:.1f} s"))


if __name__ == "__main__":
    sys.exit(main())
