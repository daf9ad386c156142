"""Classical lung segmentation: threshold, body, airways, left/right split, holes, pleural lesions.

Steps (arrays in LPS orientation, [z, y, x] with x towards the patient's left):
1. air = HU < -400; air connected to the in-plane border of the image is outside the body;
2. the trachea and main bronchi are grown from a seed in the top slices and removed;
3. the two largest remaining air regions are the lungs (eroded apart if they touch), the one
   on the patient's right is label 1;
4. vessels and free-standing tumours (holes) are filled slice by slice; tumours abutting the
   chest wall are added from the convex-hull notches (see :mod:`lungai.lungs.pleura`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.errors import InputError
from lungai.lungs.airways import find_central_airways
from lungai.lungs.pleura import add_pleural_notches

RIGHT, LEFT = 1, 2
AIR_HU = -400.0
DENSE_HU = -500.0


@dataclass
class LungResult:
    labels: sitk.Image                     # uint8 on the input grid: 1 right lung, 2 left lung
    volumes_ml: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def mask(self, which: str = "both") -> sitk.Image:
        """Binary mask of "right", "left" or "both" lungs."""
        values = {"right": [RIGHT], "left": [LEFT], "both": [RIGHT, LEFT]}[which]
        arr = np.isin(sitk.GetArrayViewFromImage(self.labels), values).astype(np.uint8)
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(self.labels)
        return img


def _outside_air(air: np.ndarray) -> np.ndarray:
    lab, _ = ndimage.label(air)
    border = np.unique(np.concatenate([lab[:, 0, :].ravel(), lab[:, -1, :].ravel(),
                                       lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    lut = np.zeros(int(lab.max()) + 1, bool)
    lut[border[border > 0]] = True
    return lut[lab]


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def body_mask(outside: np.ndarray) -> np.ndarray:
    """The patient: the largest connected region that is not outside air (the couch and
    cushions, separated from the body by air, are left out)."""
    lab, n = ndimage.label(~outside)
    if n <= 1:
        return lab > 0
    return lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)


def body_outline(body: np.ndarray) -> dict:
    """Per slice k: (row centre, col centre, row half-axis, col half-axis) of the body."""
    rows_any = body.any(axis=2)   # [k, j]
    cols_any = body.any(axis=1)   # [k, i]
    out = {}
    for k in range(body.shape[0]):
        rows, cols = np.flatnonzero(rows_any[k]), np.flatnonzero(cols_any[k])
        if rows.size and cols.size:
            out[k] = ((rows[0] + rows[-1]) / 2.0, (cols[0] + cols[-1]) / 2.0,
                      max((rows[-1] - rows[0]) / 2.0, 1.0), max((cols[-1] - cols[0]) / 2.0, 1.0))
    return out


def _shift(outline: dict, offset) -> dict:
    """The outline in the coordinates of a crop starting at ``offset`` (k, j, i)."""
    k0, j0, i0 = offset
    return {k - k0: (rc - j0, cc - i0, rh, ch) for k, (rc, cc, rh, ch) in outline.items()}


def _split_two(mask: np.ndarray, min_voxels: int, max_iter: int = 12):
    """The two largest components, eroding (then re-growing inside ``mask``) if they touch."""
    work = mask
    for it in range(max_iter + 1):
        lab, n = ndimage.label(work)
        if n:
            sizes = np.bincount(lab.ravel())[1:]
            order = np.argsort(sizes)[::-1]
            big = [o + 1 for o in order[:2] if sizes[o] >= min_voxels]
            if len(big) == 2 and sizes[order[1]] >= 0.15 * sizes[order[0]]:
                markers = np.zeros(mask.shape, np.int32)
                markers[lab == big[0]] = 1
                markers[lab == big[1]] = 2
                if it == 0:
                    return [lab == big[0], lab == big[1]]
                # grow the eroded seeds back within the original mask (nearest seed wins)
                _, (iz, iy, ix) = ndimage.distance_transform_edt(markers == 0, return_indices=True)
                nearest = markers[iz, iy, ix]
                return [mask & (nearest == 1), mask & (nearest == 2)]
            if len(big) == 1 and it == max_iter:
                return [lab == big[0]]
        work = ndimage.binary_erosion(work, iterations=1)
        if not work.any():
            break
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    return [lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)]


def segment_lungs(ct: sitk.Image) -> LungResult:
    """Right (1) and left (2) lung masks on the grid of ``ct`` (HU)."""
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(ct.GetDirection())
    img = sitk.DICOMOrient(ct, "LPS") if orientation != "LPS" else ct
    # DICOMOrient "LPS" gives x -> left, y -> posterior, z -> superior
    hu = sitk.GetArrayFromImage(img).astype(np.float32)
    spacing = img.GetSpacing()
    voxel_ml = float(np.prod(spacing)) / 1000.0
    notes: list[str] = []

    smooth = ndimage.uniform_filter(hu, size=3)
    air = smooth < AIR_HU
    outside = _outside_air(air)
    inside = air & ~outside
    if inside.sum() * voxel_ml < 100.0:
        raise InputError("no lungs found: the CT holds less than 100 ml of air inside the body",
                         "give a chest CT with the lungs in the field of view (lung window, not cropped)")
    body = body_mask(outside)
    # midline: centre of the body in x
    body_cols = np.flatnonzero(body.any(axis=(0, 1)))
    x_mid = float(body_cols.mean()) if body_cols.size else hu.shape[2] / 2.0

    outline = body_outline(body)
    # everything below works inside the box around the air in the body (the lungs' region)
    box = _bbox(inside, margin=3)
    full_shape = hu.shape
    hu, smooth, inside, outside = hu[box], smooth[box], inside[box], outside[box]
    x_mid -= box[2].start

    # airways are thin on coarse grids: use the unsmoothed HU when voxels are large
    airway_hu = ndimage.uniform_filter(hu, size=(1, 3, 3)) if spacing[0] < 1.2 else hu
    airways, note = find_central_airways(airway_hu, inside, smooth, spacing, x_mid, voxel_ml)
    notes.append(note)
    if airways is not None and airways.any():
        # the partial-volume rim of the airway wall is removed too (3 voxels, inside air only)
        abox = _bbox(airways, margin=4)
        inside[abox] &= ~ndimage.binary_dilation(airways[abox], iterations=3, mask=inside[abox])

    min_voxels = int(50.0 / voxel_ml)
    parts = _split_two(inside, min_voxels)
    if not parts or parts[0].sum() < min_voxels:
        raise InputError("no lungs found: no air region inside the body is larger than 50 ml",
                         "check that this is a chest CT in HU covering the lungs")
    if len(parts) == 1:
        notes.append("only one lung region found (single lung or lungs not separable)")

    dense = smooth > DENSE_HU
    cropped = np.zeros(hu.shape, np.uint8)
    for part in parts:
        pbox = _bbox(part, margin=2)
        crop = part[pbox]
        filled = np.zeros_like(crop)
        for k in np.flatnonzero(crop.any(axis=(1, 2))):
            filled[k] = ndimage.binary_fill_holes(crop[k])
        filled |= ndimage.binary_closing(filled, structure=np.ones((1, 3, 3), bool))
        offset = [b.start + p.start for b, p in zip(box, pbox)]
        filled = add_pleural_notches(filled, dense[pbox], _shift(outline, offset))
        centre_x = np.argwhere(part)[:, 2].mean()
        value = RIGHT if centre_x < x_mid else LEFT
        if len(parts) == 2 and (cropped == value).any():
            value = LEFT if value == RIGHT else RIGHT
        region = cropped[pbox]
        region[filled & (region == 0)] = value
    out = np.zeros(full_shape, np.uint8)
    out[box] = cropped

    labels = sitk.GetImageFromArray(out)
    labels.CopyInformation(img)
    if orientation != "LPS":
        labels = sitk.DICOMOrient(labels, orientation)
        labels.CopyInformation(ct)
    counts = np.bincount(out.ravel(), minlength=3)
    volumes = {"right_lung": round(counts[RIGHT] * voxel_ml, 1), "left_lung": round(counts[LEFT] * voxel_ml, 1)}
    return LungResult(labels=labels, volumes_ml=volumes, notes=notes)
