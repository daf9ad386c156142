"""The demo patient's non-imaging data and what the demo shows of the radiomics.

The built-in sample is a phantom: it has no clinical history.  The demo uses this fixed,
illustrative clinical profile (labelled as such in the report and on the console) so that the
illustrative RP model has a complete row.  It is never used for a user's CT (``lungai demo --ct``):
there the clinical values come only from ``--clinical``.
"""

EXAMPLE_CLINICAL = {
    "clin_age_years": 68.0,
    "clin_sex_cat": "male",
    "clin_histology_cat": "adenocarcinoma",
    "clin_pack_years": 40.0,
    "clin_hb_g_dl": 13.6,
    "clin_tiffeneau_pct": 62.0,
    "clin_platelets_10e9_l": 230.0,
    "clin_durvalumab": 1,
}

# (segment, long-format feature name "image_type_class_feature", label shown in the report)
KEY_FEATURES = [
    ("tumour", "original_shape_MeshVolume", "tumour volume (mesh, mm3)"),
    ("tumour", "original_shape_Maximum3DDiameter", "maximum 3D diameter (mm)"),
    ("tumour", "original_shape_Sphericity", "sphericity"),
    ("tumour", "original_firstorder_Mean", "mean intensity (HU)"),
    ("tumour", "original_firstorder_Entropy", "first-order entropy"),
    ("tumour", "original_glcm_Contrast", "GLCM contrast"),
    ("lungs", "original_firstorder_Mean", "mean lung density (HU)"),
    ("lungs", "original_firstorder_Kurtosis", "lung kurtosis"),
]
# no lung volume here: the report shows the lungs' volumes (ml) of the masks on the CT's grid; the radiomic
# VoxelVolume of a lung is of its mask resampled to the radiomics lung grid (2 mm) and differs from them
