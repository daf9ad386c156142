"""Gene graph for the GNN: co-expression within the training fold, or a user-supplied edge list."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from lungai.errors import InputError, InputNote


def coexpression_edges(x: np.ndarray, neighbours: int = 8) -> np.ndarray:
    """Edges (2, E) linking each gene to its ``neighbours`` most |Pearson|-correlated genes
    across the training patients ``x`` (patients x genes); symmetric, no self-loops."""
    n = x.shape[1]
    if n < 2:
        return np.zeros((2, 0), np.int64)
    k = min(neighbours, n - 1)
    xc = x - x.mean(axis=0)
    norm = np.linalg.norm(xc, axis=0)
    norm[norm < 1e-8] = 1.0
    corr = np.abs((xc / norm).T @ (xc / norm))
    np.fill_diagonal(corr, -1.0)
    # stable choice of the k best (ties broken by index)
    nbr = np.argsort(-corr, axis=1, kind="stable")[:, :k]
    src = np.repeat(np.arange(n), k)
    dst = nbr.ravel()
    edges = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], axis=1)
    edges = np.unique(edges, axis=1)
    return edges.astype(np.int64)


def edges_from_list(path, genes) -> np.ndarray:
    """Edges (2, E) among ``genes`` from a two-column table (gene_a, gene_b; a header row is optional: a first row
    naming two of ``genes`` is an edge, never a header, or a list written without one lost its first edge
    silently); others are ignored."""
    from lungai.fusion.data import read_table

    df = read_table(path, dtype=str)         # gene names as written ("0012" is no number)
    if df.shape[1] < 2:
        raise InputError(f"edge list {path} needs two columns (gene_a, gene_b)", "write one edge per row")
    index = {g: i for i, g in enumerate(genes)}
    first = [str(c).strip() for c in df.columns[:2]]
    if all(g in index for g in first):       # no header row: its first line is an edge
        df = pd.concat([pd.DataFrame([first], columns=df.columns[:2]), df.iloc[:, :2]], ignore_index=True)
    pairs = [(index[a], index[b]) for a, b in zip(df.iloc[:, 0].astype(str).str.strip(),
                                                  df.iloc[:, 1].astype(str).str.strip())
             if a in index and b in index and a != b]
    if not pairs:
        raise InputError(f"no edge of {path} links two of the {len(genes)} selected genes",
                         "check the gene names, or use the co-expression graph (leave out --edges)")
    kept = len(pairs)
    if kept < len(df):
        warnings.warn(InputNote(f"edge list: {len(df) - kept} of {len(df)} edges involve genes not selected and are "
                                "ignored"))
    e = np.array(pairs, np.int64).T
    e = np.unique(np.concatenate([e, e[::-1]], axis=1), axis=1)
    return e


def edges_table(edges: np.ndarray, genes) -> pd.DataFrame:
    return pd.DataFrame({"gene_a": [genes[i] for i in edges[0]], "gene_b": [genes[j] for j in edges[1]]})
