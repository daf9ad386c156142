"""Run MIRP on the IBSI-1 CT phantom with the settings of MIRP's own IBSI-1 test (one configuration).

Run with MIRP's environment (MIRP is not a lungai dependency), e.g. made by
``python -m venv /tmp/mirp-venv && /tmp/mirp-venv/bin/pip install mirp==2.7.0``::

    /tmp/mirp-venv/bin/python benchmarks/mirp_ibsi.py --config C --data ../shared/data/ibsi1_ct_phantom

Prints one JSON line: wall and CPU seconds of the ``extract_features`` call (imports excluded), peak
RSS, number of features.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

TEXTURE_2D = {"glcm_spatial_method": ["2d_average", "2d_slice_merge", "2.5d_direction_merge", "2.5d_volume_merge"],
              "glrlm_spatial_method": ["2d_average", "2d_slice_merge", "2.5d_direction_merge", "2.5d_volume_merge"],
              "glszm_spatial_method": ["2d", "2.5d"], "gldzm_spatial_method": ["2d", "2.5d"],
              "ngtdm_spatial_method": ["2d", "2.5d"], "ngldm_spatial_method": ["2d", "2.5d"]}
TEXTURE_3D = {"glcm_spatial_method": ["3d_average", "3d_volume_merge"],
              "glrlm_spatial_method": ["3d_average", "3d_volume_merge"], "glszm_spatial_method": "3d",
              "gldzm_spatial_method": "3d", "ngtdm_spatial_method": "3d", "ngldm_spatial_method": "3d"}
CONFIGS = {  # MIRP test/ibsi_1_test.py
    "A": dict(by_slice=True, interp={}, reseg={"resegmentation_intensity_range": [-500.0, 400.0]},
              feat={"base_discretisation_method": "fixed_bin_size", "base_discretisation_bin_width": 25.0,
                    "ivh_discretisation_method": "none", **TEXTURE_2D}),
    "B": dict(by_slice=True, interp={"spline_order": 1, "new_spacing": 2.0},
              reseg={"resegmentation_intensity_range": [-500.0, 400.0]},
              feat={"base_discretisation_method": "fixed_bin_number", "base_discretisation_n_bins": 32,
                    "ivh_discretisation_method": "none", **TEXTURE_2D}),
    "C": dict(by_slice=False, interp={"spline_order": 1, "new_spacing": 2.0},
              reseg={"resegmentation_intensity_range": [-1000.0, 400.0]},
              feat={"base_discretisation_method": "fixed_bin_size", "base_discretisation_bin_width": 25.0,
                    "ivh_discretisation_method": "fixed_bin_size", "ivh_discretisation_bin_width": 2.5, **TEXTURE_3D}),
    "D": dict(by_slice=False, interp={"spline_order": 1, "new_spacing": 2.0}, reseg={"resegmentation_sigma": 3.0},
              feat={"base_discretisation_method": "fixed_bin_number", "base_discretisation_n_bins": 32, **TEXTURE_3D}),
    "E": dict(by_slice=False, interp={"spline_order": 3, "new_spacing": 2.0},
              reseg={"resegmentation_intensity_range": [-1000.0, 400.0], "resegmentation_sigma": 3.0},
              feat={"base_discretisation_method": "fixed_bin_number", "base_discretisation_n_bins": 32,
                    "ivh_discretisation_method": "fixed_bin_number", "ivh_discretisation_n_bins": 1000,
                    **TEXTURE_3D}),
}


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--config", required=True, choices=list(CONFIGS))
    ap.add_argument("--data", required=True, help="ibsi1_ct_phantom folder")
    ap.add_argument("--no-approximation", action="store_true", help="exact Moran's I / Geary's C (slower)")
    args = ap.parse_args()
    from mirp.extract_features_and_images import extract_features
    from mirp.settings.feature_parameters import FeatureExtractionSettingsClass
    from mirp.settings.general_parameters import GeneralSettingsClass
    from mirp.settings.generic import SettingsClass
    from mirp.settings.image_processing_parameters import ImagePostProcessingClass
    from mirp.settings.interpolation_parameters import ImageInterpolationSettingsClass, MaskInterpolationSettingsClass
    from mirp.settings.perturbation_parameters import ImagePerturbationSettingsClass
    from mirp.settings.resegmentation_parameters import ResegmentationSettingsClass
    from mirp.settings.transformation_parameters import ImageTransformationSettingsClass

    c = CONFIGS[args.config]
    general = GeneralSettingsClass(by_slice=c["by_slice"])
    settings = SettingsClass(
        general_settings=general, post_process_settings=ImagePostProcessingClass(),
        img_interpolate_settings=ImageInterpolationSettingsClass(by_slice=c["by_slice"], anti_aliasing=False,
                                                                 **c["interp"]),
        roi_interpolate_settings=MaskInterpolationSettingsClass(),
        roi_resegment_settings=ResegmentationSettingsClass(**c["reseg"]),
        perturbation_settings=ImagePerturbationSettingsClass(),
        img_transform_settings=ImageTransformationSettingsClass(by_slice=c["by_slice"],
                                                                response_map_feature_settings=None),
        feature_extr_settings=FeatureExtractionSettingsClass(
            by_slice=c["by_slice"], no_approximation=args.no_approximation, base_feature_families="all",
            glcm_distance=1.0, ngldm_distance=1.0, ngldm_difference_level=0.0, **c["feat"]))
    d = Path(args.data)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = extract_features(write_features=False, export_features=True,
                                image=str(d / "nifti/image/phantom.nii.gz"), mask=str(d / "nifti/mask/mask.nii.gz"),
                                image_modality="ct", settings=settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"config": args.config, "seconds": seconds, "cpu_seconds": cpu, "features": int(data[0].shape[1]),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
