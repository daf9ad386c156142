"""Peak memory of the lung segmentation's full-volume steps on thin-slice CTs (512 x 512 x 550+ at 0.6 mm: 145 M
voxels): the steps must not allocate the int64 / float64 copies they do not need, and give the same result.

Peaks are numpy's allocations traced by ``tracemalloc`` (numpy reports them to it), in bytes per voxel of the input;
``benchmarks/bench_lungs.py`` measures the process' peak RSS on a real-sized CT."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from lungai.io import validate
from lungai.io.validate import constant_fill
from lungai.lungs import segment as seg


def _peak_bytes(fn, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn(*args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_region_sizes_equal_bincount(monkeypatch, chunk):
    rng = np.random.default_rng(0)
    lab, n = ndimage.label(rng.random((9, 40, 33)) > 0.6)
    monkeypatch.setattr(validate, "REGION_SIZES_CHUNK", chunk)
    region_sizes = validate.region_sizes
    expected = np.bincount(lab.ravel(), minlength=n + 1)
    assert np.array_equal(region_sizes(lab, n), expected)
    assert np.array_equal(region_sizes(lab), expected)                 # n found
    assert np.array_equal(region_sizes(lab, n + 5), np.bincount(lab.ravel(), minlength=n + 6))
    u8 = (lab % 3).astype(np.uint8)
    assert np.array_equal(region_sizes(u8, 2), np.bincount(u8.ravel(), minlength=3))
    assert np.array_equal(region_sizes(lab[::2, :, 1:]), np.bincount(lab[::2, :, 1:].ravel()))   # not contiguous
    assert region_sizes(lab).dtype == np.int64


def _padded_ct(shape=(40, 256, 256)) -> np.ndarray:
    """A CT-like volume (int16 HU as float32, as segment_lungs holds it) with a -1024 resampling wedge on its top
    slices: constant_fill finds a region there."""
    rng = np.random.default_rng(1)
    hu = rng.normal(0.0, 30.0, shape).astype(np.float32)
    hu[-8:, :, :128] = -1024.0
    return hu


def test_constant_fill_has_no_int64_copy_of_the_labels(monkeypatch):
    """constant_fill labels the fill's plateau (int32, 4 bytes a voxel); counting the labels' sizes with one
    np.bincount cast them to int64 first: 8 bytes a voxel more (1.2 GB on a 512 x 512 x 551 CT)."""
    hu = _padded_ct()
    # the count's temporary is one chunk's (8 MB at the default chunk: a small share of a real CT, not of this one)
    monkeypatch.setattr(validate, "REGION_SIZES_CHUNK", 1 << 16, raising=False)
    fill, peak = _peak_bytes(constant_fill, hu)
    assert fill[-8:, 1:-1, 1:127].all() and not fill[:30].any()
    per_voxel = peak / hu.size
    assert per_voxel < 8.0, f"constant_fill allocated {per_voxel:.1f} bytes a voxel at its peak"


def _touching_lungs(shape=(30, 120, 160)) -> np.ndarray:
    """Two ellipsoids joined by a bridge: _split_two erodes them apart and grows them back (the path of LUNG1-002
    at 0.6 mm slices)."""
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    right = ((z - 15) / 14.0) ** 2 + ((y - 60) / 50.0) ** 2 + ((x - 45) / 38.0) ** 2 < 1
    left = ((z - 15) / 14.0) ** 2 + ((y - 60) / 50.0) ** 2 + ((x - 115) / 38.0) ** 2 < 1
    bridge = (abs(z - 15) < 4) & (abs(y - 60) < 4) & (x > 70) & (x < 90)
    return right | left | bridge


def test_split_two_touching_lungs_same_parts_less_memory():
    mask = _touching_lungs()
    assert ndimage.label(mask)[1] == 1
    parts, peak = _peak_bytes(seg._split_two, mask, 50)
    assert len(parts) == 2 and all(p.dtype == bool for p in parts)
    # the same parts as the nearest seed from the full distance transform (the old code's)
    work = ndimage.binary_erosion(mask, iterations=1)
    while ndimage.label(work)[1] < 2:
        work = ndimage.binary_erosion(work, iterations=1)
    lab, _ = ndimage.label(work)
    _, (iz, iy, ix) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    nearest = lab[iz, iy, ix]
    expected = sorted([mask & (nearest == 1), mask & (nearest == 2)], key=lambda p: -p.sum())
    got = sorted(parts, key=lambda p: -p.sum())
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert (parts[0] | parts[1]).sum() == mask.sum() and not (parts[0] & parts[1]).any()
    # the feature transform's int32 indices (12 bytes a voxel) are needed; the float64 distances (and the int32 index
    # grid and differences scipy builds for them: 48 bytes a voxel at once) are not, nor int32 seeds
    per_voxel = peak / mask.size
    assert per_voxel < 24.0, f"_split_two allocated {per_voxel:.1f} bytes a voxel at its peak"


def test_bbox_same_box_without_coordinates():
    rng = np.random.default_rng(2)
    for shape in [(20, 30, 40), (5, 60, 7)]:
        mask = np.zeros(shape, bool)
        mask[3:4, 5:17, 2:6] = True
        mask[tuple(rng.integers(0, s) for s in shape)] = True
        idx = np.argwhere(mask)
        for margin in (0, 2, 50):
            lo = np.maximum(idx.min(axis=0) - margin, 0)
            hi = np.minimum(idx.max(axis=0) + margin + 1, mask.shape)
            assert seg._bbox(mask, margin) == tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    big = np.zeros((64, 256, 256), bool)
    big[5:60, 20:230, 30:200] = True
    box, peak = _peak_bytes(seg._bbox, big, 3)
    assert box == (slice(2, 63), slice(17, 233), slice(27, 203))
    assert peak < 0.5 * big.size, f"_bbox allocated {peak / big.size:.1f} bytes a voxel"


def _whole_slice_closing(lung, spacing):
    """close_hilar_gaps as it was: each slice's transforms over the whole slice, padded."""
    from scipy import ndimage

    from lungai.lungs.segment import HILAR_CLOSING_MM

    r = int(round(HILAR_CLOSING_MM / float(spacing[0])))
    m = r + 1
    out = lung.copy()
    for k in np.flatnonzero(lung.any(axis=(1, 2))):
        padded = np.pad(lung[k], m)
        dilated = ndimage.distance_transform_edt(~padded) <= r
        out[k] |= (ndimage.distance_transform_edt(dilated) > r)[m:-m, m:-m]
    return out


def test_hilar_closing_transforms_the_lungs_box_alone(monkeypatch):
    """``lungai lungs``' "lung filled" steps (QA startfollow65, LUNG1-002: 2.7 s each) ran two distance transforms over
    each whole slice, padded, on the apex's and base's small cross-sections too: each slice's lung box (padded) is
    transformed now, with the same closing - a lung on the slice's edges (its closing cut there) too."""
    from lungai.lungs import segment

    rng = np.random.default_rng(3)
    lung = np.zeros((6, 120, 140), bool)
    lung[1, 40:60, 50:70] = True
    lung[1, 48:52, 58:62] = False                   # a hole; a notch open to the side
    lung[1, 45:55, 50:54] = False
    lung[2, 0:30, 0:25] = rng.random((30, 25)) > 0.3        # on two edges of the slice
    lung[3, 100:120, 110:140] = rng.random((20, 30)) > 0.4
    lung[4, 10:12, 70:72] = True                    # a small cross-section
    lung[4, 10:11, 80:81] = True
    spacing = (0.98, 0.98, 3.0)
    shapes = []
    real = segment.ndimage.distance_transform_edt

    def edt(a, *args, **kwargs):
        shapes.append(a.shape)
        return real(a, *args, **kwargs)

    monkeypatch.setattr(segment.ndimage, "distance_transform_edt", edt)
    closed = segment.close_hilar_gaps(lung, spacing)
    monkeypatch.undo()
    assert np.array_equal(closed, _whole_slice_closing(lung, spacing))
    r = int(round(segment.HILAR_CLOSING_MM / spacing[0]))
    assert closed.sum() > lung.sum() and all(a * b < 120 * 140 for a, b in shapes), shapes
    assert (2 + 2 * (r + 1), 11 + 2 * (r + 1)) in shapes      # the small slice's box (2 x 11), padded
