"""Reading and writing images with their geometry (origin, spacing, direction) intact.

- :func:`read_ct` - a chest CT in HU from a DICOM series folder, NIfTI, NRRD or MHA, checked
  (:func:`check_ct`: voxel spacing in mm, intensities in HU).
- :func:`read_image` - any 3D image (mask, dose, probability map), not checked as CT.
- :func:`read_mask` - a label image that must share the reference CT's grid (its voxels; returned in the CT's
  stored order when it stores them in another: :func:`on_grid`).
- :func:`input_case_id` - the default case id of an input: DICOM PatientID, else the file name.
- :func:`write_image` - NIfTI / NRRD / MHA, never onto one of the inputs.
- :func:`to_lps` / :func:`from_lps` - an image's array in LPS order (flips / axis swaps only) and back.
- :mod:`lungai.io.outputs` - output folders / files checked before any work; a folder a command owns.

The names above are imported on first use (PEP 562, :func:`lungai.lazy.lazy_names`): their modules import numpy and
SimpleITK, which ``import lungai.io.outputs`` (or any light module of the package) paid for before - so a command's
output folder can be checked before its heavy imports (``lungai stage``: a user's file there refused at once).
"""

from lungai.lazy import lazy_names

# name -> the module defining it, imported on first use
_LAZY = {**{n: "lungai.io.geometry" for n in ("assert_same_geometry", "copy_geometry", "from_lps", "on_grid",
                                              "same_geometry", "to_lps")},
         **{n: "lungai.io.read" for n in ("input_case_id", "read_ct", "read_image", "read_mask")},
         "check_ct": "lungai.io.validate", "check_ct_intensities": "lungai.io.validate",
         "write_image": "lungai.io.write"}

__all__ = ["read_ct", "input_case_id", "read_image", "read_mask", "write_image", "check_ct", "check_ct_intensities",
           "same_geometry", "assert_same_geometry", "on_grid", "copy_geometry", "to_lps", "from_lps"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
