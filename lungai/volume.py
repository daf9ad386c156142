"""The one volume of a mask in millilitres (result.json's ``tumour_volume_ml``, the DICOM SR's ``volume_ml``, the
candidates' and dropped regions' volumes, eval-seg's and the demo's volumes, the radiomics notes' parts ...).

``mask_volume_ml = voxel count x voxel_ml(spacing)``, ``voxel_ml = spacing product / 1000`` (mm³ -> ml): the
count times the voxel's volume, in this order, so that every place gives the same float for the same mask (``count
x sx x sy x sz / 1000`` or a z, y, x product can differ in its last bits).  Neutral: numpy only at module level
(SimpleITK when given an image) - ``lungai.seg`` and ``lungai.dicom`` both use it
(``lungai.dicom.export.mask_volume_ml`` is this function).
"""

from __future__ import annotations

import numpy as np


def voxel_ml(spacing) -> float:
    """The volume (ml) of one voxel of ``spacing``: mm, x, y, z as SimpleITK's ``GetSpacing`` gives it, multiplied in
    that order - a product's last bits depend on its order (lung2's 0.6269531 x 0.6269531 x 5 mm: x, y, z and z, y, x
    differ), so a caller holding z, y, x (a numpy array's axes) passes it reversed."""
    return float(np.prod([float(s) for s in spacing])) / 1000.0


def mask_volume_ml(mask, spacing=None) -> float:
    """The volume (ml) of a mask's voxels: a SimpleITK image (its voxels > 0; its own spacing unless ``spacing`` is
    given) or a numpy array with ``spacing`` (x, y, z: :func:`voxel_ml`; its nonzero voxels, a signed one's > 0).  A mask read from a NIfTI file
    holds the spacing NIfTI stores (float32): give it the CT's geometry first (``lungai.dicom.export.on_ct_grid``)
    for the volume ``lungai segment`` computed on the CT."""
    if hasattr(mask, "GetSize"):            # a SimpleITK image: its array viewed while ``mask`` is alive
        import SimpleITK as sitk

        arr = sitk.GetArrayViewFromImage(mask)
        spacing = mask.GetSpacing() if spacing is None else spacing
    else:
        arr = np.asarray(mask)
        if spacing is None:
            raise ValueError("mask_volume_ml: a numpy mask needs its spacing (mm)")
    count = np.count_nonzero(arr) if arr.dtype.kind in "ub" else np.count_nonzero(arr > 0)   # unsigned: > 0 is != 0
    return float(count) * voxel_ml(spacing)
