"""Stage demo timing: train on a small synthetic multimodal cohort, then predict the sample patient.

Target (issue 8's demo): stage probabilities for the built-in sample phantom in well under 30 s.
Prints the times and their ratio to a baseline measured in the same run (loading the sample CT).

    .venv/bin/python benchmarks/stage_demo.py
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import SimpleITK as sitk


def main() -> None:
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
    print(f"total {train + predict:.1f} s (target < 30 s)")


if __name__ == "__main__":
    main()
