"""Plausibility of a lung map before lung metrics (MLD, V20 ...) are computed on it: :func:`lung_map_notes`.

One place for ``lungai dose-features``, ``lungai cohort`` and the Slicer panel's lung loading.  Two checks:

- a ``lungai lungs``-style label map (1 right, 2 left) with one lung label missing: the metrics are then of one lung
  (a CT showing one lung, a lung lost by the segmentation, a map cut to one side), not of both lungs.  A map holding
  only label 1 may also be a binary mask of both lungs: it counts as one lung only when its label-1 voxels form one
  large connected region (two lungs are two regions, apart from the junction lines);
- the lungs' total volume below ``MIN_LUNGS_ML``: an adult's lungs on a planning CT hold about 2.5-6 L (the real CTs
  of this project 2.9-4.0 L, one lung 1.1-2.4 L), so less than 1 L is a lung map cut by the scan or by its maker, or
  not a lung map at all.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

MIN_LUNGS_ML = 1000.0
# a connected region counts as a lung when it holds at least this share of the label's voxels (small islands do not)
LUNG_REGION_SHARE = 0.1
ONE_LABEL_NOTE = ("the lung map holds only the {have} lung (label {value}), no {missing} lung (label {other}): lung "
                  "volumes and dose metrics (MLD, V20 ...) are of one lung, not of both; if the CT shows one lung "
                  "only, its right/left label may be wrong")
SMALL_NOTE = ("the lungs total {ml:.0f} ml, less than {limit:.0f} ml (an adult's lungs hold about 2.5-6 L): the lung "
              "map is incomplete (cut by the scan or to a part), so lung volumes and dose metrics (MLD, V20 ...) are not "
              "those of the whole lungs")


def lung_map_notes(lungs: sitk.Image, check_volume: bool = True, label_map: bool = True) -> list[str]:
    """Warnings for a lung map (label map 1 right / 2 left, or a binary mask: any label > 0 is lung) whose lung
    metrics would not be those of both whole lungs; [] for a plausible map.  ``check_volume=False``: the one-label
    check only (the Slicer panel, which shows the volumes and the scan's cut); ``label_map=False``: a binary mask
    (an RTSTRUCT 'Lungs' structure), the volume check only."""
    arr = sitk.GetArrayViewFromImage(lungs)
    ml = float(np.prod(lungs.GetSpacing())) / 1000.0
    present = set(int(v) for v in np.unique(arr)) - {0}
    notes = []
    if label_map and present and present <= {1, 2} and len(present) == 1:
        value = present.pop()
        one = value == 2
        if not one:
            lab, n = ndimage.label(arr == 1)
            sizes = np.bincount(lab.ravel())[1:]
            one = int((sizes >= LUNG_REGION_SHARE * sizes.sum()).sum()) == 1
        if one:
            notes.append(ONE_LABEL_NOTE.format(have="right" if value == 1 else "left", value=value,
                                               missing="left" if value == 1 else "right", other=3 - value))
    total = float(np.count_nonzero(arr)) * ml
    if check_volume and 0 < total < MIN_LUNGS_ML:
        notes.append(SMALL_NOTE.format(ml=total, limit=MIN_LUNGS_ML))
    return notes
