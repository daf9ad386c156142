"""IBSI-1 configurations A-E of the CT phantom (ibsi-doc ``05_Reference_data_sets``).

D has no re-segmentation range, only 3-sigma outlier filtering; E has both.  A and B are 2D
configurations (in-plane resampling for B); pyradiomics computes their texture with ``force2D``
(the IBSI ``2_5D`` aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IBSIConfig:
    name: str
    spacing: tuple | None            # new voxel spacing (x, y, z) in mm; None = no interpolation; z None = keep
    interpolator: str                # "linear" or "bspline" (image); the mask is always linear, >= 0.5
    resegment_range: tuple | None    # (lower, upper) HU
    sigma_filter: bool               # drop voxels beyond mean +- 3 SD
    discretisation: str              # "fbs" (fixed bin size) or "fbn" (fixed bin number)
    bins: float                      # bin width (FBS) or number of bins (FBN)
    force2d: bool


CONFIGS = {
    "A": IBSIConfig("A", None, "linear", (-500, 400), False, "fbs", 25, True),
    "B": IBSIConfig("B", (2.0, 2.0, None), "linear", (-500, 400), False, "fbn", 32, True),
    "C": IBSIConfig("C", (2.0, 2.0, 2.0), "linear", (-1000, 400), False, "fbs", 25, False),
    "D": IBSIConfig("D", (2.0, 2.0, 2.0), "linear", None, True, "fbn", 32, False),
    "E": IBSIConfig("E", (2.0, 2.0, 2.0), "bspline", (-1000, 400), True, "fbn", 32, False),
}
