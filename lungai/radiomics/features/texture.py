"""IBSI-1 texture matrices and features, vectorised numpy/scipy, with every IBSI aggregation.

Six families: GLCM (``cm``), GLRLM (``rlm``), GLSZM (``szm``), GLDZM (``dzm``), NGTDM (``ngt``) and
NGLDM (``ngl``).  The input is the discretised intensity ROI (grey levels 1..Ng, 0 outside the
intensity mask).  Matrices are built for a *batch* of groups - one group for 3D, one per axial
slice for 2D - and, for GLCM/GLRLM, per direction; the IBSI aggregations then reduce them:

==========  ===========================================================================
``3D_avg``   features per 3D direction (13), averaged          (cm, rlm)
``3D_comb``  matrices of the 13 directions merged               (cm, rlm)
``3D``       one 3D matrix                                      (szm, dzm, ngt, ngl)
``2D_avg``   features per slice and in-plane direction (4), averaged   (cm, rlm)
``2D_comb``  per slice, the 4 directions merged; averaged over slices  (cm, rlm)
``2D``       per-slice matrices, features averaged over slices  (szm, dzm, ngt, ngl)
``2_5D_avg`` per direction, the slices merged; averaged over directions (cm, rlm)
``2_5D_comb`` every slice and direction merged                  (cm, rlm)
``2_5D``     per-slice matrices merged                          (szm, dzm, ngt, ngl)
==========  ===========================================================================

Definitions follow the IBSI reference manual (Zwanenburg et al. 2016, arXiv:1612.07003, chapter 3);
distance 1 (Chebyshev), symmetric GLCM, NGLDM coarseness 0 (alpha), GLDZM distances are city-block
distances to the edge of the ROI (edge voxels have distance 1).  The matrices are built with flat
indices into a zero-padded copy of the ROI (a neighbour at offset ``d`` is ``index + offset(d)``),
so every direction and both 2D and 3D use one code path.  Hand-written because pyradiomics has no
GLDZM and no per-slice (2D) aggregation; tests check the 3D values against pyradiomics.
"""

from __future__ import annotations

import numpy as np

FAMILIES = ("cm", "rlm", "szm", "dzm", "ngt", "ngl")
CM_FEATURES = ("joint_max", "joint_avg", "joint_var", "joint_entr", "diff_avg", "diff_var", "diff_entr",
               "sum_avg", "sum_var", "sum_entr", "energy", "contrast", "dissimilarity", "inv_diff",
               "inv_diff_norm", "inv_diff_mom", "inv_diff_mom_norm", "inv_var", "corr", "auto_corr",
               "clust_tend", "clust_shade", "clust_prom", "info_corr1", "info_corr2")
# Run/zone/dependence families share one set of formulas on a (grey level i, j) matrix; only the names differ.
_ZONE_NAMES = {
    "rlm": ("sre", "lre", "lgre", "hgre", "srlge", "srhge", "lrlge", "lrhge", "glnu", "glnu_norm", "rlnu",
            "rlnu_norm", "r_perc", "gl_var", "rl_var", "rl_entr"),
    "szm": ("sze", "lze", "lgze", "hgze", "szlge", "szhge", "lzlge", "lzhge", "glnu", "glnu_norm", "zsnu",
            "zsnu_norm", "z_perc", "gl_var", "zs_var", "zs_entr"),
    "dzm": ("sde", "lde", "lgze", "hgze", "sdlge", "sdhge", "ldlge", "ldhge", "glnu", "glnu_norm", "zdnu",
            "zdnu_norm", "z_perc", "gl_var", "zd_var", "zd_entr"),
    "ngl": ("lde", "hde", "lgce", "hgce", "ldlge", "ldhge", "hdlge", "hdhge", "glnu", "glnu_norm", "dcnu",
            "dcnu_norm", "dc_perc", "gl_var", "dc_var", "dc_entr", "dc_energy"),
}
NGT_FEATURES = ("coarseness", "contrast", "busyness", "complexity", "strength")
DIRECTIONAL = ("cm", "rlm")


def feature_names(family: str) -> tuple:
    return CM_FEATURES if family == "cm" else NGT_FEATURES if family == "ngt" else _ZONE_NAMES[family]


def aggregations(family: str, dims) -> list[str]:
    """IBSI tag suffixes of ``family`` for the dimensions ``dims`` ('2D', '2_5D', '3D')."""
    if family in DIRECTIONAL:
        return [f"{d}_{a}" for d in dims for a in ("avg", "comb")]
    return list(dims)


def directions(two_d: bool) -> np.ndarray:
    """The 13 (3D) or 4 (in-plane) unique neighbour offsets (dz, dy, dx), one of each +-pair."""
    out = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
           if (dz, dy, dx) > (0, 0, 0) and not (two_d and dz != 0)]
    return np.array(out, dtype=np.int64)


def _neighbours(two_d: bool) -> np.ndarray:
    d = directions(two_d)
    return np.concatenate([d, -d])


class Roi:
    """The discretised intensity ROI, cropped and zero-padded by one voxel, as flat arrays."""

    def __init__(self, grey: np.ndarray, n_grey: int, morph: np.ndarray | None = None):
        idx = np.argwhere(grey > 0)
        lo, hi = idx.min(0), idx.max(0) + 1
        self.box = tuple(slice(a, b) for a, b in zip(lo, hi))
        self.morph = grey > 0 if morph is None else morph
        crop = grey[self.box]
        self.grid = np.pad(crop, 1).astype(np.int64)
        self.shape = self.grid.shape
        self.flat = self.grid.ravel()
        self.index = np.flatnonzero(self.flat)
        self.level = self.flat[self.index]
        self.slice = self.index // (self.shape[1] * self.shape[2]) - 1   # 0-based slice within the crop
        self.n_slices = int(crop.shape[0])
        self.n_grey = int(n_grey)
        self.strides = np.array([self.shape[1] * self.shape[2], self.shape[2], 1], dtype=np.int64)

    def offset(self, d) -> int:
        return int(np.dot(d, self.strides))

    def groups(self, two_d: bool) -> tuple[np.ndarray, int]:
        return (self.slice, self.n_slices) if two_d else (np.zeros_like(self.slice), 1)

    def voxels(self, two_d: bool) -> np.ndarray:
        g, n = self.groups(two_d)
        return np.bincount(g, minlength=n).astype(float)


# ----------------------------------------------------------------------------------------------- matrices


def glcm(roi: Roi, two_d: bool) -> np.ndarray:
    """Symmetric co-occurrence counts, shape (groups, directions, Ng, Ng)."""
    group, n_groups = roi.groups(two_d)
    dirs = directions(two_d)
    ng = roi.n_grey
    out = np.zeros((n_groups, len(dirs), ng, ng))
    for k, d in enumerate(dirs):
        other = roi.flat[roi.index + roi.offset(d)]
        ok = other > 0
        key = (group[ok] * ng + roi.level[ok] - 1) * ng + other[ok] - 1
        m = np.bincount(key, minlength=n_groups * ng * ng).reshape(n_groups, ng, ng)
        out[:, k] = m + m.transpose(0, 2, 1)
    return out


def _sparse_to_dense(group, n_groups, level, j, ng, weights=None):
    """(groups, Ng, J) counts over the distinct values ``jvals`` of ``j``; returns (matrix, jvals)."""
    jvals, jpos = np.unique(j, return_inverse=True)
    key = (group * ng + level - 1) * len(jvals) + jpos
    m = np.bincount(key, weights=weights, minlength=n_groups * ng * len(jvals))
    return m.reshape(n_groups, ng, len(jvals)).astype(float), jvals.astype(float)


def glrlm(roi: Roi, two_d: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """Run-length counts per direction: list of (groups, Ng, J) matrices over common run lengths ``jvals``."""
    group, n_groups = roi.groups(two_d)
    runs = []
    for d in directions(two_d):
        off = roi.offset(d)
        start = roi.flat[roi.index - off] != roi.level
        pos, lev = roi.index[start], roi.level[start]
        length = np.ones(len(pos), dtype=np.int64)
        active = np.arange(len(pos))
        cur = pos.copy()
        while len(active):
            cur = cur + off
            cont = roi.flat[cur] == lev[active]
            active, cur = active[cont], cur[cont]
            length[active] += 1
        runs.append((group[start], lev, length))
    jvals = np.unique(np.concatenate([r[2] for r in runs]))
    mats = []
    for g, lev, length in runs:
        key = (g * roi.n_grey + lev - 1) * len(jvals) + np.searchsorted(jvals, length)
        m = np.bincount(key, minlength=n_groups * roi.n_grey * len(jvals))
        mats.append(m.reshape(n_groups, roi.n_grey, len(jvals)).astype(float))
    return mats, jvals.astype(float)


def _zones(roi: Roi, two_d: bool):
    """Connected zones of equal grey level (26- / in-plane 8-connectivity): labels, zone level, count.

    One pass of :func:`skimage.measure.label`, which connects neighbours of equal value; in 2D the
    slices are labelled apart (a slice-separating zero layer between them).
    """
    from skimage.measure import label

    grid = roi.grid
    if two_d:   # interleave zero slices so that no zone crosses from one slice to the next
        spaced = np.zeros((2 * grid.shape[0], *grid.shape[1:]), grid.dtype)
        spaced[::2] = grid
        labels = label(spaced, background=0, connectivity=3)[::2]
    else:
        labels = label(grid, background=0, connectivity=3)
    labels = labels.astype(np.int64).ravel()
    n = int(labels.max())
    zone_level = np.zeros(n + 1, np.int64)
    zone_level[labels[roi.index]] = roi.level
    return labels, zone_level[1:], n


def zone_matrices(roi: Roi, two_d: bool, distance: bool) -> tuple[np.ndarray, np.ndarray]:
    """GLSZM (``distance`` False: zone sizes) or GLDZM (zone distance to the ROI edge) as (groups, Ng, J)."""
    labels, zone_level, n = _zones(roi, two_d)
    lab = labels[roi.index]
    group, n_groups = roi.groups(two_d)
    zone_group = np.zeros(n + 1, np.int64)
    zone_group[lab] = group
    if distance:
        dist = np.pad(border_distance(roi.morph, two_d)[roi.box], 1)
        j = np.full(n + 1, np.iinfo(np.int64).max)
        np.minimum.at(j, lab, dist.ravel()[roi.index].astype(np.int64))
    else:
        j = np.bincount(lab, minlength=n + 1)
    return _sparse_to_dense(zone_group[1:], n_groups, zone_level, j[1:], roi.n_grey)


def border_distance(morph: np.ndarray, two_d: bool) -> np.ndarray:
    """City-block distance of each voxel of the morphological mask to its edge (edge voxels: 1; per slice in 2D).

    Voxels on the image border count as edge voxels (the image is padded with background).
    """
    from scipy import ndimage     # here, not at module top: scipy.ndimage was imported before radiomics' first bar

    idx = np.argwhere(morph)
    lo, hi = idx.min(0), idx.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    inside = np.pad(morph[box], 1)
    if two_d:
        d = np.stack([ndimage.distance_transform_cdt(s, metric="taxicab") for s in inside])
    else:
        d = ndimage.distance_transform_cdt(inside, metric="taxicab")
    out = np.zeros(morph.shape, np.int64)
    out[box] = d[1:-1, 1:-1, 1:-1]
    return out


def _neighbour_levels(roi: Roi, two_d: bool) -> np.ndarray:
    """Grey levels of each ROI voxel's neighbours, shape (neighbours, voxels); 0 = outside the ROI."""
    return np.stack([roi.flat[roi.index + roi.offset(d)] for d in _neighbours(two_d)])


def ngldm(roi: Roi, two_d: bool, nb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dependence counts (alpha 0): j = 1 + neighbours in the ROI with the same grey level."""
    nb = _neighbour_levels(roi, two_d) if nb is None else nb
    k = 1 + (nb == roi.level).sum(0)
    group, n_groups = roi.groups(two_d)
    return _sparse_to_dense(group, n_groups, roi.level, k, roi.n_grey)


def ngtdm(roi: Roi, two_d: bool, nb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(s, n) per group and grey level: sum of |i - neighbourhood mean| and the voxel count.

    Only voxels with at least one neighbour inside the ROI count (IBSI and pyradiomics).
    """
    nb = _neighbour_levels(roi, two_d) if nb is None else nb
    count = (nb > 0).sum(0)
    ok = count > 0
    mean = nb[:, ok].sum(0) / count[ok]
    group, n_groups = roi.groups(two_d)
    key = group[ok] * roi.n_grey + roi.level[ok] - 1
    size = n_groups * roi.n_grey
    s = np.bincount(key, weights=np.abs(roi.level[ok] - mean), minlength=size).reshape(n_groups, roi.n_grey)
    n = np.bincount(key, minlength=size).reshape(n_groups, roi.n_grey).astype(float)
    return s, n


# ----------------------------------------------------------------------------------------------- features


def _entropy(p: np.ndarray, axes) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0).sum(axes)


def cm_features(counts: np.ndarray) -> dict[str, np.ndarray]:
    """GLCM features of a batch of matrices (..., Ng, Ng); NaN where a matrix is empty."""
    ng = counts.shape[-1]
    total = counts.sum((-2, -1), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
    i = np.arange(1, ng + 1, dtype=float)[:, None]
    j = i.T
    ax = (-2, -1)
    pi, pj = p.sum(-1), p.sum(-2)                 # marginals (..., Ng)
    lv = np.arange(1, ng + 1, dtype=float)
    mu = (i * p).sum(ax)
    mu_j = (j * p).sum(ax)
    mu_e = mu[..., None, None]
    diff = np.abs(i - j).astype(int)
    p_d = np.stack([(p * (diff == k)).sum(ax) for k in range(ng)], -1)
    ssum = (i + j).astype(int)
    p_s = np.stack([(p * (ssum == k)).sum(ax) for k in range(2, 2 * ng + 1)], -1)
    kd = np.arange(ng, dtype=float)
    ks = np.arange(2, 2 * ng + 1, dtype=float)
    d_avg = (kd * p_d).sum(-1)
    s_avg = (ks * p_s).sum(-1)
    var_i = ((lv - mu[..., None]) ** 2 * pi).sum(-1)
    var_j = ((lv - mu_j[..., None]) ** 2 * pj).sum(-1)
    hxy = _entropy(p, ax)
    hx = _entropy(pi, -1)
    hy = _entropy(pj, -1)
    pij = pi[..., :, None] * pj[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logpij = np.log2(np.where(pij > 0, pij, 1))
        hxy1 = -(p * logpij).sum(ax)
        hxy2 = -(pij * logpij).sum(ax)
        off = i != j
        out = {
            "joint_max": p.max(ax),
            "joint_avg": mu,
            "joint_var": ((i - mu_e) ** 2 * p).sum(ax),
            "joint_entr": hxy,
            "diff_avg": d_avg,
            "diff_var": ((kd - d_avg[..., None]) ** 2 * p_d).sum(-1),
            "diff_entr": _entropy(p_d, -1),
            "sum_avg": s_avg,
            "sum_var": ((ks - s_avg[..., None]) ** 2 * p_s).sum(-1),
            "sum_entr": _entropy(p_s, -1),
            "energy": (p ** 2).sum(ax),
            "contrast": ((i - j) ** 2 * p).sum(ax),
            "dissimilarity": (np.abs(i - j) * p).sum(ax),
            "inv_diff": (p / (1 + np.abs(i - j))).sum(ax),
            "inv_diff_norm": (p / (1 + np.abs(i - j) / ng)).sum(ax),
            "inv_diff_mom": (p / (1 + (i - j) ** 2)).sum(ax),
            "inv_diff_mom_norm": (p / (1 + (i - j) ** 2 / ng ** 2)).sum(ax),
            "inv_var": np.where(off, p / np.where(off, (i - j) ** 2, 1), 0).sum(ax),
            "corr": (((i - mu_e) * (j - mu_j[..., None, None]) * p).sum(ax)) / np.sqrt(var_i * var_j),
            "auto_corr": (i * j * p).sum(ax),
            "clust_tend": ((i + j - mu_e - mu_j[..., None, None]) ** 2 * p).sum(ax),
            "clust_shade": ((i + j - mu_e - mu_j[..., None, None]) ** 3 * p).sum(ax),
            "clust_prom": ((i + j - mu_e - mu_j[..., None, None]) ** 4 * p).sum(ax),
            "info_corr1": (hxy - hxy1) / np.maximum(hx, hy),
            "info_corr2": np.sqrt(np.clip(1 - np.exp(-2 * (hxy2 - hxy)), 0, None)),
        }
    return out


def zone_features(counts: np.ndarray, jvals: np.ndarray, n_voxels: np.ndarray, family: str) -> dict[str, np.ndarray]:
    """Features of run/zone/dependence matrices (..., Ng, J) with column values ``jvals``."""
    ng = counts.shape[-2]
    ax = (-2, -1)
    n_s = counts.sum(ax)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / n_s[..., None, None]
        i = np.arange(1, ng + 1, dtype=float)[:, None]
        j = jvals[None, :]
        pi, pj = p.sum(-1), p.sum(-2)
        mu_i = (i * p).sum(ax)
        mu_j = (j * p).sum(ax)
        values = [
            (p / j ** 2).sum(ax), (p * j ** 2).sum(ax), (p / i ** 2).sum(ax), (p * i ** 2).sum(ax),
            (p / (i ** 2 * j ** 2)).sum(ax), (p * i ** 2 / j ** 2).sum(ax), (p * j ** 2 / i ** 2).sum(ax),
            (p * i ** 2 * j ** 2).sum(ax),
            (counts.sum(-1) ** 2).sum(-1) / n_s, (pi ** 2).sum(-1),
            (counts.sum(-2) ** 2).sum(-1) / n_s, (pj ** 2).sum(-1),
            n_s / n_voxels,
            ((i - mu_i[..., None, None]) ** 2 * p).sum(ax),
            ((j - mu_j[..., None, None]) ** 2 * p).sum(ax),
            _entropy(p, ax),
        ]
        if family == "ngl":
            values.append((p ** 2).sum(ax))
    return dict(zip(_ZONE_NAMES[family], values))


def ngt_features(s: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """NGTDM features per row of (s, n) (..., Ng)."""
    ng = s.shape[-1]
    n_v = n.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = n / n_v[..., None]
        lv = np.arange(1, ng + 1, dtype=float)
        present = p > 0
        ngp = present.sum(-1)
        ps = p * s
        pi, pj = p[..., :, None], p[..., None, :]
        both = present[..., :, None] & present[..., None, :]
        d = lv[:, None] - lv[None, :]
        coarseness = 1.0 / ps.sum(-1)
        contrast = (np.where(both, pi * pj * d ** 2, 0).sum((-2, -1)) / (ngp * (ngp - 1))) * s.sum(-1) / n_v
        ip = lv * p
        busy_den = np.where(both, np.abs(ip[..., :, None] - ip[..., None, :]), 0).sum((-2, -1))
        busyness = np.where(busy_den > 0, ps.sum(-1) / np.where(busy_den > 0, busy_den, 1), 0.0)
        complexity = np.where(both, np.abs(d) * (ps[..., :, None] + ps[..., None, :]) /
                              np.where(both, pi + pj, 1), 0).sum((-2, -1)) / n_v
        strength = np.where(both, (pi + pj) * d ** 2, 0).sum((-2, -1)) / s.sum(-1)
    return {"coarseness": coarseness, "contrast": contrast, "busyness": busyness, "complexity": complexity,
            "strength": strength}


def _mean_valid(values: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, float]:
    return {k: float(np.mean(v[valid])) if valid.any() else float("nan") for k, v in values.items()}


# ----------------------------------------------------------------------------------------------- aggregation


def family_features(roi: Roi, family: str, dims) -> dict[str, float]:
    """``{'<family>_<feature>_<aggregation>': value}`` for every aggregation of ``family`` in ``dims``."""
    out: dict[str, float] = {}
    for two_d, labels in ((True, [d for d in dims if d in ("2D", "2_5D")]), (False, [d for d in dims if d == "3D"])):
        if not labels:
            continue
        nv = roi.voxels(two_d)
        if family == "cm":
            res = _directional(glcm(roi, two_d), None, nv, cm_features, two_d, labels)
        elif family == "rlm":
            mats, jvals = glrlm(roi, two_d)
            res = _directional(np.stack(mats, 1), jvals, nv,
                               lambda c, nvox: zone_features(c, jvals, nvox, "rlm"), two_d, labels)
        elif family in ("szm", "dzm"):
            res = _grouped(*zone_matrices(roi, two_d, family == "dzm"), nv, family, two_d, labels)
        elif family == "ngl":
            res = _grouped(*ngldm(roi, two_d), nv, family, two_d, labels)
        elif family == "ngt":
            s, n = ngtdm(roi, two_d)
            res = {}
            if "2D" in labels:
                res["2D"] = _mean_valid(ngt_features(s, n), n.sum(-1) > 0)
            if "2_5D" in labels or "3D" in labels:
                merged = ngt_features(s.sum(0), n.sum(0))
                res["2_5D" if two_d else "3D"] = {k: float(v) for k, v in merged.items()}
        else:
            raise ValueError(f"unknown texture family {family!r}")
        for agg, values in res.items():
            out.update({f"{family}_{name}_{agg}": v for name, v in values.items()})
    return out


def _directional(m: np.ndarray, jvals, nv: np.ndarray, features, two_d: bool, labels) -> dict[str, dict]:
    """Aggregations of per-(group, direction) matrices m (G, D, Ng, J)."""
    call = (lambda c, nvox: features(c)) if jvals is None else features
    n_dirs = m.shape[1]
    res = {}
    if two_d and "2D" in labels:
        valid = m.sum((-2, -1)) > 0
        res["2D_avg"] = _mean_valid(call(m, nv[:, None]), valid)
        merged = m.sum(1)
        res["2D_comb"] = _mean_valid(call(merged, nv * n_dirs), merged.sum((-2, -1)) > 0)
    if (two_d and "2_5D" in labels) or (not two_d and "3D" in labels):
        dim = "2_5D" if two_d else "3D"
        per_dir = m.sum(0)
        res[f"{dim}_avg"] = _mean_valid(call(per_dir, np.full(n_dirs, nv.sum())), per_dir.sum((-2, -1)) > 0)
        res[f"{dim}_comb"] = {k: float(v) for k, v in call(per_dir.sum(0), nv.sum() * n_dirs).items()}
    return res


def _grouped(m: np.ndarray, jvals: np.ndarray, nv: np.ndarray, family: str, two_d: bool, labels) -> dict[str, dict]:
    res = {}
    if two_d and "2D" in labels:
        res["2D"] = _mean_valid(zone_features(m, jvals, nv, family), m.sum((-2, -1)) > 0)
    if (two_d and "2_5D" in labels) or (not two_d and "3D" in labels):
        res["2_5D" if two_d else "3D"] = {k: float(v) for k, v in
                                          zone_features(m.sum(0), jvals, nv.sum(), family).items()}
    return res
