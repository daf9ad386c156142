"""Synthetic multimodal cohort with a known, partial signal in each modality.

Three classes ("I", "II", "III"), balanced.  Each modality separates one class from the other two,
so no single modality can exceed ~2/3 accuracy while their fusion can reach near-perfect:

- CT (phantoms from :mod:`lungai.synthetic`): class I has small tumours (12-20 mm), II and III large
  ones (32-45 mm).
- RNA: a planted co-expressed gene module (``truth.json``: ``module_genes``) is up-regulated in
  class III; the other genes follow random background factors.
- EHR: ``ldh`` (a lab value) is raised in class II; ``age``, ``sex``, ``smoking``, ``pack_years``
  are noise.  About 8 % of EHR values are missing ("Not Collected").

About ``missing_fraction`` of patients lack RNA, and as many lack CT.  Written files:
``ehr.csv`` (``patient_id``, ``stage`` = label), ``rna.csv`` (genes x patients), ``ct/<id>_ct.nii.gz``
+ ``ct/<id>_mask.nii.gz``, ``manifest.csv`` and ``truth.json``.  Deterministic from ``seed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai.fusion import SYNTH_MODULE_SIZE
from lungai.progress import task, timer_running

CLASSES = ("I", "II", "III")


def _expression(rng, bio, y, n_genes, module, factors=5, shift=1.5):
    n = len(y)
    load = bio.normal(0, 0.6, (factors, n_genes))
    z = rng.normal(0, 1, (n, factors))
    x = z @ load + rng.normal(0, 1.0, (n, n_genes))
    latent = (y == 2) * shift + rng.normal(0, 0.5, n)
    x[:, module] += latent[:, None] * bio.uniform(0.8, 1.2, len(module))[None, :]
    return x


SYNTHETIC_SOURCE = "synthetic cohort (lungai stage synth / lungai.fusion.synthetic) - illustrative"
SYNTHETIC_NOTE = ("ILLUSTRATIVE: the stage model was trained on a synthetic cohort (lungai stage synth), not on "
                  "patients - not a result for a patient")


def training_data(paths) -> dict:
    """A stage model card's ``training_data`` (model.json): ``synthetic`` when every input table given (EHR, RNA,
    CT manifest) is a synthetic cohort table lungai wrote, unchanged since - a ``lungai stage synth`` output or the
    demo's ``stage_cohort`` (:func:`lungai.synthetic.tables.all_synthetic`, as ``lungai rp train`` records an
    ``rp synth`` cohort); :func:`lungai.rp.predict.synthetic_model` reads it for both.  A copy, an edited file or a
    mix with the user's tables is not known as synthetic."""
    from lungai.synthetic.tables import all_synthetic

    given = [Path(p) for p in paths if p is not None]
    synthetic = all_synthetic(given)
    return {"source": SYNTHETIC_SOURCE if synthetic else ", ".join(p.name for p in given), "synthetic": synthetic}


def make_cohort(out_dir, n: int = 90, seed: int = 0, n_genes: int = 200, module_size: int = SYNTH_MODULE_SIZE,
                ct_shape=(96, 96, 40), ct_spacing=(3.5, 3.5, 5.0), missing_fraction: float = 0.1,
                rna_shift: float = 1.5, biology_seed: Optional[int] = None) -> dict:
    """Write the cohort into ``out_dir``; returns {"ehr", "rna", "ct", "truth"} paths.

    ``biology_seed`` (default ``seed``) fixes the gene module and expression structure, so that a
    second cohort with another ``seed`` and the same ``biology_seed`` is an external cohort of the
    same "disease".
    """
    from lungai.io.write import write_image
    from lungai.synthetic import PhantomSpec, TumourSpec, labels, make_phantom
    from lungai.synthetic.tables import synthetic_patient_ids

    out = Path(out_dir)
    (out / "ct").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), int(np.ceil(n / 3)))[:n]
    rng.shuffle(y)
    ids = synthetic_patient_ids(n, seed)        # the seed in the IDs: another seed's cohort is external
    genes = [f"G{j:04d}" for j in range(n_genes)]
    bio = np.random.default_rng(seed if biology_seed is None else biology_seed)
    module = np.sort(bio.choice(n_genes, module_size, replace=False))

    # the EHR table and the RNA matrix drawn and written on a bar of their own, each step's seconds counted while it
    # stands (QA synthbar72, a shared 2-core machine: ``--genes 20000 --patients 300`` wrote no line for 10 s)
    with task("synthetic cohort tables", 2, rate=False) as bar:
        bar.update(0, "drawing and writing ehr.csv")
        with timer_running(bar):
            ehr = pd.DataFrame({
                "patient_id": ids,
                "age": np.round(rng.normal(66, 9, n)).astype(int),
                "sex": rng.choice(["Male", "Female"], n),
                "smoking": rng.choice(["Current", "Former", "Never"], n),
                "pack_years": np.round(np.abs(rng.normal(30, 15, n)), 1),
                "ldh": np.round(rng.normal(0, 1, n) + 1.8 * (y == 1), 3),
                "stage": [CLASSES[k] for k in y],
            })
            for col in ("age", "smoking", "pack_years", "ldh"):
                miss = rng.random(n) < 0.08
                ehr[col] = ehr[col].astype(object).where(~miss, "Not Collected")
            ehr.to_csv(out / "ehr.csv", index=False)
        bar.update(1, f"drawing and writing rna.csv ({n_genes} genes)")
        with timer_running(bar):
            # genes x patients, to exercise orientation detection
            x = _expression(rng, bio, y, n_genes, module, shift=rna_shift)
            has_rna = rng.random(n) >= missing_fraction
            rna = pd.DataFrame(x[has_rna].T, index=pd.Index(genes, name="gene"),
                               columns=[i for i, h in zip(ids, has_rna) if h]).round(4)
            rna.to_csv(out / "rna.csv")
        bar.update(1, "written")

    # CT phantoms
    has_ct = rng.random(n) >= missing_fraction
    rows = []
    with task("synthetic cohort CT", int(has_ct.sum())) as bar:
        for i, pid in enumerate(ids):
            if not has_ct[i]:
                continue
            diameter = rng.uniform(12, 20) if y[i] == 0 else rng.uniform(32, 45)
            spec = PhantomSpec(shape=tuple(ct_shape), spacing=tuple(ct_spacing), noise_hu=float(rng.uniform(10, 25)),
                               tumour=TumourSpec(diameter_mm=round(float(diameter), 1),
                                                 location=str(rng.choice(["free", "juxta_vascular"])),
                                                 shape=str(rng.choice(["round", "lobulated", "spiculated"])),
                                                 side=str(rng.choice(["right", "left"]))))
            ph = make_phantom(spec, seed=int(seed * 100003 + i))
            mask = sitk.GetImageFromArray(labels.tumour_mask(sitk.GetArrayFromImage(ph.labels)).astype(np.uint8))
            mask.CopyInformation(ph.labels)
            write_image(ph.ct, out / "ct" / f"{pid}_ct.nii.gz")       # checked complete (one NIfTI writer)
            write_image(mask, out / "ct" / f"{pid}_mask.nii.gz")
            rows.append({"patient_id": pid, "image": f"ct/{pid}_ct.nii.gz", "mask": f"ct/{pid}_mask.nii.gz"})
            bar.update(1, pid)
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)

    truth = {"seed": seed, "biology_seed": seed if biology_seed is None else biology_seed, "classes": list(CLASSES), "label_column": "stage",
             "module_genes": [genes[j] for j in module],
             "signal": {"ct": "class I has 12-20 mm tumours, II/III 32-45 mm",
                        "rna": "module genes up-regulated in class III",
                        "ehr": "ldh raised by 1.8 SD in class II"},
             "n": n, "with_rna": int(has_rna.sum()), "with_ct": int(has_ct.sum())}
    (out / "truth.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return {"ehr": out / "ehr.csv", "rna": out / "rna.csv", "ct": out / "manifest.csv", "truth": out / "truth.json"}
