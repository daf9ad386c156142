"""What ``stage cv`` fits per training fold and what comes precomputed from all patients, as docs/stage.md says it
("What is fitted per fold, and what comes precomputed from all patients").

QA stagefollow72: NSCLC-Radiogenomics' ``gene_variances.csv`` and ``df_zscore.csv`` were computed over all 130 RNA
patients.  Before, docs/stage.md said "All preprocessing (EHR imputation, gene selection, gene graph, scaling) is
fitted inside each training fold ... never on test patients" - untrue of the gene ranking by ``--gene-variances``,
the same 500 genes in every fold (the top 500 by each outer training fold's own raw variance share only 453-470 of
them).  The scaling is truly per fold: the file's all-patient z-scoring cancels out.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lungai.fusion.preprocess import GeneSelector

DOC = Path(__file__).resolve().parents[1] / "docs" / "stage.md"


def _raw(seed=0, n=24, genes=12):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 5.0, genes)          # raw variances of very different size
    return pd.DataFrame(rng.normal(3.0, 1.0, (n, genes)) * scale + rng.normal(0, 2, genes),
                        index=[f"P{i:02d}" for i in range(n)], columns=[f"G{j:02d}" for j in range(genes)])


def test_the_gene_scaling_is_the_training_folds_whatever_the_files_all_patient_z_scoring():
    """A matrix z-scored over all patients (as df_zscore.csv) gives the model exactly the inputs of the raw matrix
    scaled on the training fold alone: the selector's mean / SD are the training patients' (not 0 / 1)."""
    raw = _raw()
    z = (raw - raw.mean()) / raw.std()                              # over all patients, test ones included
    train, test = list(raw.index[:16]), list(raw.index[16:])
    variances = raw.var()                                           # one ranking for both: the same genes
    on_raw = GeneSelector(5, variances, "v.csv").fit(raw.loc[train])
    on_z = GeneSelector(5, variances, "v.csv").fit(z.loc[train])
    assert on_raw.genes == on_z.genes
    assert np.allclose(on_z.mean, z.loc[train, on_z.genes].mean().to_numpy(), atol=1e-6)
    assert np.abs(on_z.mean).max() > 0.05                           # the training fold's own mean, not the file's 0
    assert np.allclose(on_raw.transform(raw, test), on_z.transform(z, test), atol=1e-4)


def test_gene_variances_rank_the_same_genes_in_every_fold_and_a_raw_matrix_its_training_folds_own():
    """``--gene-variances``: the file's top-k in every fold, whatever the training patients (the ranking that comes
    precomputed); without it, on a raw matrix, the ranking is the training fold's: the test patients' values do not
    move it."""
    raw = _raw(1)
    variances = pd.Series(np.arange(raw.shape[1], 0, -1, dtype=float), index=raw.columns)   # G00 first
    folds = [list(raw.index[:12]), list(raw.index[12:])]
    picked = [GeneSelector(4, variances, "v.csv").fit(raw.loc[tr]).genes for tr in folds]
    assert picked[0] == picked[1] == ["G00", "G01", "G02", "G03"]
    own = [GeneSelector(4).fit(raw.loc[tr]).genes for tr in folds]
    assert all(g == list(raw.loc[tr].var().sort_values(ascending=False).index[:4]) for g, tr in zip(own, folds))
    moved = raw.copy()
    moved.loc[folds[1], "G11"] *= 100                                # a test patient's gene of fold 1 made huge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert GeneSelector(4).fit(moved.loc[folds[0]]).genes == own[0]


def test_docs_say_what_is_fitted_per_fold_and_what_comes_from_all_patients():
    text = re.sub(r"\s+", " ", DOC.read_text(encoding="utf-8"))
    assert "is fitted **inside each training fold** (`pipeline.py`), never on test patients." not in text
    assert "**What is fitted per fold, and what comes precomputed from all patients.**" in text
    part = text.split("**What is fitted per fold, and what comes precomputed from all patients.**")[1][:4000]
    for said in ("the **scaling of the genes** (each selected gene z-scored with the training patients' mean / SD",
                 "**same genes in every fold**", "is **not strictly out-of-fold**",
                 "share 453-470 of their 500 genes with the file's top 500",
                 "the all-patient mean / SD cancel out",
                 "decided on the whole matrix"):
        assert said in part, said
