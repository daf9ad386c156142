"""Tumour segmentation with uncertainty: MONAI U-Net / Attention U-Net / UNETR deep ensembles.

- :mod:`config` - one dataclass describing architecture and preprocessing;
- :mod:`networks` - builds the MONAI network from the config (dropout usable for MC dropout);
- :mod:`preprocess` - ROI (lungs / user box / seed point), resampling, HU window, mapping back;
- :mod:`dataset`, :mod:`augment`, :mod:`train` - training on the user's images and masks;
- :mod:`infer` - ensemble / MC-dropout inference on the input grid (:func:`segment_tumour`);
- :mod:`postprocess` - tumour components: specks, the seed's component, vessel-like shapes in automatic mode;
- :mod:`uncertainty`, :mod:`confidence` - voxel entropy / mutual information, calibrated case score;
- :mod:`evaluate`, :mod:`calibrate` - Dice / HD95 and fitting the confidence on validation data;
- :mod:`model_io`, :mod:`resources` - model.json + one .safetensors per member; the shipped model.
"""

from lungai.seg.config import SegConfig

__all__ = ["SegConfig"]
