"""IBSI-1 intensity families pyradiomics lacks: statistics extras, intensity histogram, IVH, local peaks.

- ``stat_medad``, ``stat_cov``, ``stat_qcod`` (the other ``stat_*`` come from pyradiomics firstorder);
- intensity histogram (``ih_*``, 23 features) on the discretised grey levels; the histogram spans
  grey levels 1..Ng (empty bins included), its gradient uses central differences inside and
  one-sided differences at both ends (``numpy.gradient``);
- intensity-volume histogram (``ivh_*``) on the intensities discretised for the IVH (none / fixed
  bin size with the re-segmentation bound as origin / fixed bin number), IBSI 3.5;
- local intensity peaks (``loc_peak_loc``/``loc_peak_glob``): the mean intensity in a 1 cm^3 sphere
  (voxel centres within r = (3/(4 pi))^(1/3) cm) around a voxel, computed for every ROI voxel with
  an FFT convolution over the ROI's bounding box (a sphere's voxels outside the image are not
  counted).

Percentiles use numpy's default (linear) rule, as IBSI's reference implementations do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IH_FEATURES = ("mean", "var", "skew", "kurt", "median", "min", "p10", "p90", "max", "mode", "iqr", "range", "mad",
               "rmad", "medad", "cov", "qcod", "entropy", "uniformity", "max_grad", "max_grad_g", "min_grad",
               "min_grad_g")
PEAK_RADIUS_MM = (3.0 / (4.0 * np.pi)) ** (1.0 / 3.0) * 10.0


def _rmad(x: np.ndarray) -> float:
    lo, hi = np.percentile(x, [10, 90])
    sel = x[(x >= lo) & (x <= hi)]
    return float(np.mean(np.abs(sel - sel.mean())))


def stat_extras(x: np.ndarray) -> dict[str, float]:
    """``stat_medad``, ``stat_cov``, ``stat_qcod`` of the ROI intensities ``x``."""
    x = np.asarray(x, float)
    q1, q3 = np.percentile(x, [25, 75])
    mean = x.mean()
    return {"stat_medad": float(np.mean(np.abs(x - np.median(x)))),
            "stat_cov": float(x.std() / mean) if mean != 0 else float("nan"),
            "stat_qcod": float((q3 - q1) / (q3 + q1)) if q3 + q1 != 0 else float("nan")}


def intensity_histogram(g: np.ndarray, n_grey: int) -> dict[str, float]:
    """The 23 ``ih_*`` features of discretised grey levels ``g`` (1..n_grey)."""
    g = np.asarray(g, float)
    levels = np.arange(1, n_grey + 1, dtype=float)
    counts = np.bincount(g.astype(int), minlength=n_grey + 1)[1:].astype(float)
    p = counts / len(g)
    mu = float((levels * p).sum())
    sigma = float(np.sqrt(((levels - mu) ** 2 * p).sum()))
    q1, med, q3 = np.percentile(g, [25, 50, 75])
    modes = levels[counts == counts.max()]
    grad = np.gradient(counts) if n_grey > 1 else np.zeros(1)
    nz = p[p > 0]
    return {
        "ih_mean": mu, "ih_var": sigma ** 2,
        "ih_skew": float(((levels - mu) ** 3 * p).sum() / sigma ** 3) if sigma > 0 else 0.0,
        "ih_kurt": float(((levels - mu) ** 4 * p).sum() / sigma ** 4 - 3) if sigma > 0 else 0.0,
        "ih_median": float(med), "ih_min": float(g.min()), "ih_p10": float(np.percentile(g, 10)),
        "ih_p90": float(np.percentile(g, 90)), "ih_max": float(g.max()),
        "ih_mode": float(modes[np.argmin(np.abs(modes - mu))]),
        "ih_iqr": float(q3 - q1), "ih_range": float(g.max() - g.min()),
        "ih_mad": float(np.mean(np.abs(g - mu))), "ih_rmad": _rmad(g), "ih_medad": float(np.mean(np.abs(g - med))),
        "ih_cov": sigma / mu if sigma > 0 else 0.0,
        "ih_qcod": float((q3 - q1) / (q3 + q1)),
        "ih_entropy": float(-(nz * np.log2(nz)).sum()), "ih_uniformity": float((p ** 2).sum()),
        "ih_max_grad": float(grad.max()), "ih_max_grad_g": float(levels[np.argmax(grad)]),
        "ih_min_grad": float(grad.min()), "ih_min_grad_g": float(levels[np.argmin(grad)]),
    }


@dataclass(frozen=True)
class IVHBins:
    """How intensities are binned for the IVH: 'none' (integer intensities), 'fbs' (width) or 'fbn' (count)."""

    method: str = "none"
    value: float = 1.0


def intensity_volume_histogram(x: np.ndarray, bins: IVHBins, bounds: tuple | None) -> dict[str, float]:
    """``ivh_*`` (IBSI 3.5) of the ROI intensities ``x``; ``bounds`` = re-segmentation range or None."""
    x = np.asarray(x, float)
    lo = float(bounds[0]) if bounds is not None and bounds[0] is not None else float(x.min())
    hi = float(bounds[1]) if bounds is not None and bounds[1] is not None else float(x.max())
    if bins.method == "none":
        levels = np.arange(lo, hi + 1)
        idx = np.round(x - lo).astype(int)
        step = 1.0
    elif bins.method == "fbs":
        w = float(bins.value)
        n = int(np.ceil((hi - lo) / w)) + 1
        idx = np.clip(np.floor((x - lo) / w).astype(int), 0, None)
        levels = lo + (np.arange(n) + 0.5) * w
        lo, hi = levels[0], levels[-1]
        step = w
    elif bins.method == "fbn":
        n = int(bins.value)
        xmin, xmax = float(x.min()), float(x.max())
        idx = np.clip(np.floor(n * (x - xmin) / (xmax - xmin)).astype(int), 0, n - 1) if xmax > xmin else \
            np.zeros(len(x), int)
        levels = np.arange(1, n + 1, dtype=float)
        lo, hi = 1.0, float(n)
        step = 1.0
    else:
        raise ValueError(f"unknown IVH binning {bins.method!r}")
    counts = np.bincount(idx, minlength=len(levels))[:len(levels)].astype(float)
    nu = 1.0 - np.concatenate([[0.0], np.cumsum(counts)[:-1]]) / len(x)   # fraction of volume >= level
    gamma = (levels - lo) / (hi - lo) if hi > lo else np.zeros_like(levels)
    beyond = levels[-1] + step

    def v_at(frac):
        sel = nu[gamma >= frac]
        return float(sel.max()) if len(sel) else 0.0

    def i_at(frac):
        sel = levels[nu <= frac]
        return float(sel.min()) if len(sel) else float(beyond)

    return {"ivh_v10": v_at(0.1), "ivh_v90": v_at(0.9), "ivh_i10": i_at(0.1), "ivh_i90": i_at(0.9),
            "ivh_diff_v10_v90": v_at(0.1) - v_at(0.9), "ivh_diff_i10_i90": i_at(0.1) - i_at(0.9),
            "ivh_auc": float(np.trapezoid(nu, gamma))}


def sphere_kernel(spacing_zyx) -> np.ndarray:
    """1 where a voxel centre lies within the 1 cm^3 sphere around the central voxel."""
    sp = np.asarray(spacing_zyx, float)
    ext = np.floor(PEAK_RADIUS_MM / sp).astype(int)
    grids = np.meshgrid(*[np.arange(-e, e + 1) * s for e, s in zip(ext, sp)], indexing="ij")
    return (np.sqrt(sum(g ** 2 for g in grids)) <= PEAK_RADIUS_MM).astype(float)


def local_intensity_peaks(image: np.ndarray, roi: np.ndarray, spacing_zyx) -> dict[str, float]:
    """``loc_peak_loc`` (sphere mean around the ROI's brightest voxel(s), highest if tied) and ``loc_peak_glob``."""
    kernel = sphere_kernel(spacing_zyx)
    ext = np.array(kernel.shape) // 2
    idx = np.argwhere(roi)
    lo = np.maximum(idx.min(0) - ext, 0)
    hi = np.minimum(idx.max(0) + ext + 1, image.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    img = image[box].astype(float)
    # imported here, not with the module: scipy.signal (and scipy.stats it pulls in) took 1-3.5 s of every radiomics
    # command's start-up before its first bar (lungai radiomics, radiomics-batch, cohort, demo), for this one function
    from scipy import signal

    total = signal.fftconvolve(img, kernel, mode="same")
    if (lo > idx.min(0) - ext).any() or (hi < idx.max(0) + ext + 1).any():
        # the sphere of an ROI voxel reaches beyond the image: count only the voxels inside it
        count = np.round(signal.fftconvolve(np.ones_like(img), kernel, mode="same"))
    else:
        count = kernel.sum()
    local = total / np.maximum(count, 1)
    r = roi[box]
    values, peaks = img[r], local[r]
    return {"loc_peak_loc": float(peaks[values == values.max()].max()), "loc_peak_glob": float(peaks.max())}
