"""Figures for the report, returned as PNG bytes (matplotlib, Agg backend, no screen needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

WINDOW = (-1000, 400)  # lung-mediastinum window (HU)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


UNDECIDED_BITS = 0.5  # entropy >= 0.5 bit <=> 0.11 < p < 0.89: the voxels where the model is undecided


def _centre_index(mask: np.ndarray, fallback: np.ndarray) -> tuple[int, int, int]:
    """Centre of the largest connected component of ``mask`` (else of ``fallback``)."""
    if mask.any():
        from scipy import ndimage

        lab, n = ndimage.label(mask)
        if n > 1:
            mask = lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)
    pts = np.argwhere(mask if mask.any() else fallback)
    if pts.size == 0:
        return tuple(s // 2 for s in mask.shape)
    return tuple(int(v) for v in np.round(pts.mean(axis=0)))


def orientation_labels(ax, left_right: str, top_bottom: str) -> None:
    """The patient directions at the image's left / right and top / bottom edges (R L, A P or S I), as Slicer's
    views show them, so the reader need not assume a convention."""
    style = dict(transform=ax.transAxes, color="#ffd866", fontsize=11, fontweight="bold",
                 bbox=dict(facecolor="black", alpha=0.6, edgecolor="none", pad=1.5))
    ax.text(0.01, 0.5, left_right[0], ha="left", va="center", **style)
    ax.text(0.99, 0.5, left_right[1], ha="right", va="center", **style)
    ax.text(0.5, 0.99, top_bottom[0], ha="center", va="top", **style)
    ax.text(0.5, 0.01, top_bottom[1], ha="center", va="bottom", **style)


def tumour_slices(ct: sitk.Image, tumour: sitk.Image, uncertainty: sitk.Image, lungs: sitk.Image | None = None,
                  truth: sitk.Image | None = None) -> bytes:
    """Axial and coronal slices through the tumour: CT, tumour contour, uncertainty overlay + legend.

    Drawn from the images in LPS order (:func:`lungai.io.geometry.to_lps`): the patient's right on the image's
    left, anterior up, head up, however the CT's voxels are stored (a NIfTI from dcm2niix, a feet-first scan); each
    view's edges are labelled with the patient directions (:func:`orientation_labels`)."""
    from lungai.io.geometry import to_lps

    ct, tumour, uncertainty = to_lps(ct), to_lps(tumour), to_lps(uncertainty)
    lungs = to_lps(lungs) if lungs is not None else None
    truth = to_lps(truth) if truth is not None else None
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    tm = sitk.GetArrayFromImage(tumour) > 0
    unc = sitk.GetArrayFromImage(uncertainty).astype(np.float32)
    lung = sitk.GetArrayFromImage(lungs) > 0 if lungs is not None else np.zeros_like(tm)
    gt = sitk.GetArrayFromImage(truth) > 0 if truth is not None else None
    k, j, _ = _centre_index(tm, lung)
    sx, sy, sz = ct.GetSpacing()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    vmax = 1.0  # entropy of a binary prediction, bits
    views = [("Axial", hu[k], tm[k], unc[k], None if gt is None else gt[k], sy / sx, "AP"),
             ("Coronal", hu[:, j][::-1], tm[:, j][::-1], unc[:, j][::-1], None if gt is None else gt[:, j][::-1], sz / sx,
              "SI")]
    im = None
    for ax, (title, img, mask, u, g, aspect, top_bottom) in zip(axes, views):
        ax.imshow(img, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="nearest")
        im = ax.imshow(np.ma.masked_less(u, UNDECIDED_BITS), cmap="inferno", alpha=0.6, vmin=UNDECIDED_BITS, vmax=vmax,
                       aspect=aspect, interpolation="nearest")
        if mask.any():
            ax.contour(mask, levels=[0.5], colors=["#00e5ff"], linewidths=1.4)
        if g is not None and g.any():
            ax.contour(g, levels=[0.5], colors=["#7CFC00"], linewidths=1.0, linestyles="dashed")
        ax.set_title(title)
        ax.set_axis_off()
        orientation_labels(ax, "RL", top_bottom)
    cbar = fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02)
    cbar.set_label("undecided voxels: predictive entropy (bits, shown from 0.5)")
    handles = [plt.Line2D([], [], color="#00e5ff", lw=1.5, label="tumour (model)")]
    if gt is not None:
        handles.append(plt.Line2D([], [], color="#7CFC00", lw=1.2, ls="--", label="ground truth (phantom)"))
    axes[0].legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.8)
    return _png(fig)


def dvh(dose: sitk.Image, structures: dict[str, np.ndarray], marks=(5, 13, 20)) -> bytes:
    """Cumulative dose-volume histograms (% volume receiving >= dose)."""
    d = sitk.GetArrayFromImage(dose).astype(np.float32)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    top = float(d.max()) * 1.05 or 1.0
    grid = np.linspace(0, top, 300)
    for name, mask in structures.items():
        values = np.sort(d[mask])
        if values.size == 0:
            continue
        frac = 100.0 * (1.0 - np.searchsorted(values, grid, side="left") / values.size)
        ax.plot(grid, frac, label=name, lw=2)
    for m in marks:
        ax.axvline(m, color="grey", lw=0.8, ls=":")
        ax.text(m, 101, f"V{m}", ha="center", va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 108)
    ax.set_xlim(0, top)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def contributions(names: list[str], values: list[float], title: str) -> bytes:
    """Horizontal bars: positive (raise) red, negative (lower) blue."""
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * max(len(names), 2) + 1.2))
    y = np.arange(len(names))[::-1]
    ax.barh(y, values, color=["#d62728" if v > 0 else "#1f77b4" for v in values])
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("contribution to the risk (log-odds; Shapley value)")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def probabilities(classes: list[str], probs: list[float], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    top = int(np.argmax(probs)) if len(probs) else -1       # the predicted class: its bar darker
    ax.bar(classes, probs, color=["#1f3f7a" if x == top else "#4c72b0" for x in range(len(probs))])
    for x, p in enumerate(probs):      # 3 decimals: two close classes (0.4285 / 0.4316) do not read the same
        ax.text(x, p + 0.02, f"{p:.3f}", ha="center", fontsize=9)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=10)
    return _png(fig)
