"""IBSI-1 configurations A-E of the CT phantom (ibsi-doc ``05_Reference_data_sets``) and the digital phantom.

D has no re-segmentation range, only 3-sigma outlier filtering; E has both.  A and B are 2D
configurations (in-plane resampling for B): their texture features are aggregated per slice
(``2D``) and over slices (``2_5D``).  The intensity-volume histogram has its own binning: none
(integer HU) for A, B, D; bin size 2.5 HU for C; 1000 bins for E.  The digital phantom needs no
interpolation or discretisation (its values are grey levels) and has 2D, 2.5D and 3D references.
"""

from __future__ import annotations

from dataclasses import dataclass

from lungai.radiomics.features.intensity import IVHBins


@dataclass(frozen=True)
class IBSIConfig:
    name: str
    spacing: tuple | None            # new voxel spacing (x, y, z) in mm; None = no interpolation; z None = keep
    interpolator: str                # "linear" or "bspline" (image); the mask is always linear, >= 0.5
    resegment_range: tuple | None    # (lower, upper) HU
    sigma_filter: bool               # drop voxels beyond mean +- 3 SD
    discretisation: str              # "fbs" (fixed bin size), "fbn" (fixed bin number) or "none"
    bins: float                      # bin width (FBS) or number of bins (FBN)
    force2d: bool                    # a 2D configuration (2D and 2.5D texture aggregation)
    ivh: IVHBins = IVHBins()
    all_dims: bool = False           # 2D, 2.5D and 3D (digital phantom)

    @property
    def dims(self) -> tuple:
        if self.all_dims:
            return ("2D", "2_5D", "3D")
        return ("2D", "2_5D") if self.force2d else ("3D",)


CONFIGS = {
    "A": IBSIConfig("A", None, "linear", (-500, 400), False, "fbs", 25, True),
    "B": IBSIConfig("B", (2.0, 2.0, None), "linear", (-500, 400), False, "fbn", 32, True),
    "C": IBSIConfig("C", (2.0, 2.0, 2.0), "linear", (-1000, 400), False, "fbs", 25, False, IVHBins("fbs", 2.5)),
    "D": IBSIConfig("D", (2.0, 2.0, 2.0), "linear", None, True, "fbn", 32, False),
    "E": IBSIConfig("E", (2.0, 2.0, 2.0), "bspline", (-1000, 400), True, "fbn", 32, False, IVHBins("fbn", 1000)),
    "DIGITAL": IBSIConfig("DIGITAL", None, "linear", None, False, "none", 1, False, all_dims=True),
}
