"""DICOM RT in and out: RTSTRUCT / SEG reading onto the CT grid, structure roles, study discovery,
and writing results as DICOM SEG, RTSTRUCT, Parametric Map and SR (docs/dicom.md).

- :mod:`lungai.dicom.rtstruct` - ``read_rtstruct(path, ct)``, ``list_structures(path)``, ``write_rtstruct``
- :mod:`lungai.dicom.labels` - the naming rule of segments / structures (one name, two names), readers and writers
- :mod:`lungai.dicom.roles` - ``structure_role(name)``, ``find_role(names, role)``, ``mask_for_role``
- :mod:`lungai.dicom.discover` - ``scan(root)``: CT / RTSTRUCT / RTDOSE / SEG grouped by UIDs
- :mod:`lungai.dicom.seg`, :mod:`lungai.dicom.pmap`, :mod:`lungai.dicom.sr` - DICOM SEG, Parametric Map, SR TID 1500
- :mod:`lungai.dicom.masks` - mask options of the CLI (file, DICOM SEG, RTSTRUCT structure or role)
- :mod:`lungai.dicom.export` - results beside the NIfTI outputs / ``lungai dicom-export``
- :mod:`lungai.dicom.reference` - the source CT's headers and UIDs every written object references
- :mod:`lungai.dicom.synthetic` - synthetic DICOM RT studies (CT + RTSTRUCT + RTDOSE) from the phantoms
"""

# the steps lungai.dicom.export's export_lungs reports to its ``progress``: the SEG written, the RTSTRUCT written;
# here, with no import: a command's bar counts them before its heavy imports (QA segfollow72: lungai segment's bar
# imported lungai.dicom.export, and SimpleITK with it, to count them)
EXPORT_STEPS = 2
# the steps export_results reports to its ``progress``: the SEG, the RTSTRUCT, the parametric map, the SR written (an
# object not written: its step passed)
RESULTS_STEPS = EXPORT_STEPS + 2
