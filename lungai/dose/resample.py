"""Put the dose onto the CT grid and check that it covers the structures."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError


def dose_on_grid(dose: sitk.Image, reference: sitk.Image, box=None) -> np.ndarray:
    """Dose [z, y, x] on ``reference``'s grid (linear interpolation, float64); NaN outside the dose grid.
    ``box`` = (lo, hi), voxel indices (x, y, z, inclusive; :func:`lungai.io.geometry.bounding_box`): only those voxels
    of the grid, the array [z, y, x] of the box: the whole grid's values there (to ~1e-15: the box's origin rounds the
    voxel centres' coordinates differently).  QA: the whole float64 grid of a 512 x 512 x 401 CT was 840 MB, and a copy
    of it, for lungs and GTV in a fifth of it (benchmarks/bench_dose_features.py)."""
    if box is None:
        out = sitk.Resample(dose, reference, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat64)
    else:
        lo, hi = (tuple(int(v) for v in b) for b in box)
        out = sitk.Resample(dose, [b - a + 1 for a, b in zip(lo, hi)], sitk.Transform(), sitk.sitkLinear,
                            reference.TransformIndexToPhysicalPoint(lo), reference.GetSpacing(),
                            reference.GetDirection(), float("nan"), sitk.sitkFloat64)
    return sitk.GetArrayFromImage(out)


def percent_text(pct: float) -> str:
    """A percentage with one decimal, a small one (below 1 %) with two significant digits: 0.012, never 0.0."""
    if pct <= 0 or pct >= 1:
        return f"{pct:.1f}"
    return f"{pct:.{max(1, 1 - int(np.floor(np.log10(pct))))}f}"


# the patient sides of the LPS axes: (towards lower, towards higher coordinates) - x grows towards the patient's left,
# y towards the back, z towards the head
SIDES = (("the patient's right side", "the patient's left side"), ("the anterior side", "the posterior side"),
         ("the inferior side (towards the feet)", "the superior side (towards the head)"))
AXES = "xyz"
TOWARDS = (("to the right", "to the left"), ("anteriorly", "posteriorly"), ("inferiorly", "superiorly"))


def _points(image: sitk.Image, index_xyz: np.ndarray) -> np.ndarray:
    """LPS mm of the voxel indices ``index_xyz`` (n x 3, x y z order; continuous) of ``image``."""
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    return (index_xyz * np.asarray(image.GetSpacing(), float)) @ direction.T + np.asarray(image.GetOrigin(), float)


def _span(lo, hi) -> str:
    return ", ".join(f"{a} {a0:.1f} .. {a1:.1f}" for a, a0, a1 in zip(AXES, lo, hi))


def uncovered_sides(dose: sitk.Image, reference: sitk.Image, mask: np.ndarray, outside: np.ndarray, box=None,
                    what: str = "structure") -> tuple[list, str]:
    """Where a structure leaves the dose grid, in patient terms: ([(LPS axis, 0 lower / 1 higher side, mm beyond the
    grid's edge, the structure's farthest coordinate there, the grid's edge coordinate)], the extents text "dose grid
    x a .. b, ...; the <what> x ... mm").  ``mask`` / ``outside`` (the mask's voxels outside the grid): [z, y, x]
    on ``reference``'s grid, or on its ``box`` (:func:`dose_on_grid`).  The grid's edge is that of its outer voxels
    (the linear resampling answers up to half a voxel beyond their centres)."""
    offset = np.zeros(3) if box is None else np.asarray(box[0], float)
    inside = _points(reference, np.argwhere(mask)[:, ::-1] + offset)
    lost = _points(reference, np.argwhere(mask & outside)[:, ::-1] + offset)
    size = np.asarray(dose.GetSize(), float)
    corners = np.array([[c[0], c[1], c[2]] for c in np.ndindex(2, 2, 2)], float) * size - 0.5
    edges = _points(dose, corners)
    grid_lo, grid_hi = edges.min(axis=0), edges.max(axis=0)
    sides = []
    # how far (mm) the uncovered voxels lie beyond each face of the dose grid: in the grid's own index space (an
    # oblique grid too), each face then named by the patient side its axis points to most
    direction = np.asarray(dose.GetDirection(), float).reshape(3, 3)
    spacing = np.asarray(dose.GetSpacing(), float)
    index = ((lost - np.asarray(dose.GetOrigin(), float)) @ np.linalg.inv(direction).T) / spacing
    for a in range(3):
        axis = int(np.argmax(np.abs(direction[:, a])))
        towards_higher = direction[axis, a] > 0
        for low_face in (True, False):
            beyond = ((-0.5 - index[:, a]) if low_face else (index[:, a] - (size[a] - 0.5))) * spacing[a]
            if not (beyond > 1e-6).any():
                continue
            side = int(towards_higher != low_face)        # the LPS side of that face: 0 lower, 1 higher coordinates
            far = float(lost[:, axis].max() if side else lost[:, axis].min())
            edge = float(grid_hi[axis] if side else grid_lo[axis])
            sides.append((axis, side, float(beyond.max()), far, edge))
    extents = f"dose grid {_span(grid_lo, grid_hi)} mm; the {what} {_span(inside.min(axis=0), inside.max(axis=0))} mm"
    return sides, extents


def check_coverage(dose_kji: np.ndarray, mask: np.ndarray, what: str, dose: sitk.Image | None = None,
                   reference: sitk.Image | None = None, box=None) -> None:
    """Every voxel of ``mask`` must lie inside the dose grid.  With the ``dose`` image and the ``reference`` grid
    ``dose_kji`` and ``mask`` lie on (its ``box``: :func:`dose_on_grid`) the refusal says where the structure leaves
    the dose grid - the patient side(s), how far, the grid's and the structure's extents (QA radfollow67: a dose grid
    cut 40 mm short at LUNG1-003's lung base was refused with "61053 of 1363865 voxels (4.5 %) lie outside it", no
    word of where)."""
    mask = np.asarray(mask, bool)
    lost = np.isnan(dose_kji) & mask
    outside = int(lost.sum())
    if not outside:
        return
    total = int(mask.sum())
    problem = (f"the dose grid does not cover the {what}: {outside} of {total} voxels "
               f"({percent_text(100.0 * outside / total)} %) lie outside it")
    reach = ""
    if dose is not None and reference is not None:
        sides, extents = uncovered_sides(dose, reference, mask, lost, box, what)
        if sides:
            problem += ", beyond its edge on " + " and on ".join(
                f"{SIDES[axis][side]} by up to {mm:.1f} mm (farthest voxel of the {what} at {AXES[axis]} = "
                f"{far:.1f} mm, the dose grid's edge at {AXES[axis]} = {edge:.1f} mm)"
                for axis, side, mm, far, edge in sides)
            reach = "at least to " + ", ".join(f"{AXES[axis]} = {far:.1f} mm {TOWARDS[axis][side]}"
                                               for axis, side, _mm, far, _edge in sides) + "; "
        problem += f"; {extents} (patient coordinates, LPS: x grows towards " \
                   "the patient's left, y posterior, z superior; Slicer shows RAS: x and y negated)"
    raise InputError(
        problem,
        f"re-export the dose from the planning system with its full calculation grid, on a dose grid that covers the "
        f"{what} completely ({reach}e.g. the whole external contour), and check that dose and CT belong to the same "
        "patient/frame of reference")
