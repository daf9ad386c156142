"""Radiomics for the tumour and the lungs (pyradiomics), IBSI compliance check, cohort batch.

- :mod:`~lungai.radiomics.params` - presets (default, ibsi-a..e) or a pyradiomics YAML.
- :mod:`~lungai.radiomics.segments` - tumour / right lung / left lung / lungs / lungs minus tumour masks.
- :mod:`~lungai.radiomics.prepare` - each segment cropped; lung segments on the isotropic grid.
- :mod:`~lungai.radiomics.shape` - pyradiomics' shape features with a faster mesh routine (same values).
- :mod:`~lungai.radiomics.extract` - per-segment extraction, long format, :func:`to_wide`.
- :mod:`~lungai.radiomics.features` - IBSI-1 feature classes pyradiomics lacks (2D texture, GLDZM, IH, IVH, ...).
- :mod:`~lungai.radiomics.ibsi` - the IBSI-1 pipeline (ibsi-a..e presets) and reference comparison.
- :mod:`~lungai.radiomics.batch` - resumable cohort extraction on Dask distributed.
"""

from lungai.radiomics.extract import LONG_COLUMNS, Extraction, extract, to_wide, wide_column
from lungai.radiomics.params import FEATURE_CLASSES, IMAGE_TYPES, PRESETS, load_params
from lungai.radiomics.segments import (STANDARD_SEGMENTS, segments_from_labels, segments_from_masks,
                                       segments_from_phantom_labels)

__all__ = ["LONG_COLUMNS", "Extraction", "extract", "to_wide", "wide_column", "FEATURE_CLASSES", "IMAGE_TYPES",
           "PRESETS", "load_params", "STANDARD_SEGMENTS", "segments_from_labels", "segments_from_masks",
           "segments_from_phantom_labels"]
