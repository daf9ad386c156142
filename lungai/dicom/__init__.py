"""DICOM RT in and out: RTSTRUCT / SEG reading onto the CT grid, structure roles, study discovery,
and writing results as DICOM SEG, RTSTRUCT, Parametric Map and SR (docs/dicom.md).

- :mod:`lungai.dicom.rtstruct` - ``read_rtstruct(path, ct)``, ``list_structures(path)``
- :mod:`lungai.dicom.roles` - ``structure_role(name)``, ``find_role(names, role)``, ``mask_for_role``
- :mod:`lungai.dicom.discover` - ``scan(root)``: CT / RTSTRUCT / RTDOSE / SEG grouped by UIDs
"""
