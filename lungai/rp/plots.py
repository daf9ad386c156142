"""PNG figures: ROC curves, calibration plot, cohort-level feature importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")   # what a figure path may end with (matplotlib writes the format it names)


def check_figure_path(path, option: str = "figure") -> None:
    """Refuse (before any work) a figure path whose suffix is not a figure format matplotlib writes
    (:data:`FIGURE_SUFFIXES`), e.g. ``importance.html``; None passes."""
    from lungai.errors import InputError  # noqa: PLC0415

    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise InputError(f"{option} {path}: {suffix or 'no suffix'} is not a figure format",
                         f"end the file name with {', '.join(FIGURE_SUFFIXES[:-1])} or {FIGURE_SUFFIXES[-1]} "
                         f"(e.g. {Path(path).with_suffix('.png').name})")


def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray, str]], path, title: str) -> Path:
    """``curves``: label -> (y, risk, legend text)."""
    from sklearn.metrics import roc_curve  # noqa: PLC0415

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, (y, p, text) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.5, label=f"{label} {text}")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    from lungai.io.outputs import writing  # noqa: PLC0415

    with writing(path):                    # stamped in a claimed folder's marker once written
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def calibration_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str, bins: int = 10) -> Path:
    """Observed event rate against mean predicted risk in quantile bins."""
    from sklearn.calibration import calibration_curve  # noqa: PLC0415

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, (y, p) in curves.items():
        obs, pred = calibration_curve(y, p, n_bins=min(bins, max(2, len(y) // 10)), strategy="quantile")
        ax.plot(pred, obs, "o-", ms=3, lw=1.2, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="ideal")
    ax.set(xlabel="predicted risk", ylabel="observed RP rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    from lungai.io.outputs import writing  # noqa: PLC0415

    with writing(path):                    # stamped in a claimed folder's marker once written
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def importance_plot(importance, path, title: str, top: int = 15) -> Path:
    """Horizontal bars of mean |contribution| (a pandas Series indexed by feature)."""
    plt = _plt()
    imp = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(imp) + 1.2))
    ax.barh(range(len(imp)), imp.to_numpy(), color="#c0504d")
    ax.set_yticks(range(len(imp)), [str(i) for i in imp.index], fontsize=7)
    ax.set_xlabel("mean |Shapley value| (log-odds of RP)")
    ax.set_title(title, fontsize=9, loc="right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    from lungai.io.outputs import writing  # noqa: PLC0415

    with writing(path):                    # stamped in a claimed folder's marker once written
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
