"""PNG figures: confusion matrix and t-SNE of fused embeddings (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _fit_title(fig, ax, title: str) -> None:
    """``title`` on ``ax``, wrapped onto more lines until it fits the figure's width, then the layout tightened: a
    title wider than the figure is cut at both sides when saved (QA balance63: tsne.png's "(in-sample)" was lost)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    for width in range(len(title), 9, -4):
        ax.set_title(textwrap.fill(title, width))
        fig.tight_layout()
        box = ax.title.get_window_extent(renderer)
        if box.x0 >= 0 and box.x1 <= fig.bbox.width:
            return


def confusion_png(y: np.ndarray, pred: np.ndarray, classes, path, title: str) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    plt = _plt()
    cm = confusion_matrix(y, pred, labels=list(range(len(classes))))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay(cm, display_labels=list(classes)).plot(ax=ax, colorbar=False, cmap="Blues")
    _fit_title(fig, ax, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def tsne_png(points: np.ndarray, y: np.ndarray, classes, path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for k, name in enumerate(classes):
        sel = y == k
        ax.scatter(points[sel, 0], points[sel, 1], s=18, label=str(name), alpha=0.8)
    ax.legend(title="class", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    _fit_title(fig, ax, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
