"""An RTSTRUCT whose lung and GTV structures are named so that no role is found (QA cohort70).

``lungai cohort`` on LUNG1-003's real DICOM with its structures renamed ``Rt_Lung_Contour``, ``Lt_Lung_Contour`` and
``Tumour_main`` took the automatic lungs and tumour (confidence 0.16, "needs review ... or contour a GTV in the
RTSTRUCT") and its inventory line said "lungs automatic (RT lung definition) (no contoured lung structures in the
RTSTRUCT), tumour automatic segmentation (with confidence)": the lungs were contoured, and neither the structures
nor the fix (a ``--structure-map`` line) were named on the terminal.  ``lungs_from`` / ``tumour_from`` (the
inventory's line and patients.csv) now name them with the mapping lines; mapped so, the RTSTRUCT's are used.
"""

from __future__ import annotations

from dicom_helpers import small_phantom

NAMES = {"gtv": "Tumour_main", "lung_right": "Rt_Lung_Contour", "lung_left": "Lt_Lung_Contour"}


def test_unnamed_lung_and_gtv_structures_are_named_with_their_mapping_lines(tmp_path):
    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.synthetic import write_rt_study

    write_rt_study(tmp_path / "export", small_phantom(7), "P1", dose=None, names=NAMES)
    _, inventory = plan_cohort(tmp_path / "export")
    row = inventory.iloc[0]
    assert row["lungs_from"].startswith("automatic (RT lung definition)"), row["lungs_from"]
    assert "no contoured lung structures" not in row["lungs_from"], row["lungs_from"]
    assert ("no contoured structure of the RTSTRUCT has a lung role ('Rt_Lung_Contour', 'Lt_Lung_Contour' have no "
            "role by their names: map them with --structure-map, e.g. 'Rt_Lung_Contour: lung_right', "
            "'Lt_Lung_Contour: lung_left')") in row["lungs_from"], row["lungs_from"]
    assert row["tumour_from"] == (
        "automatic segmentation (with confidence) - the RTSTRUCT's 'Tumour_main' is named like a tumour but has no "
        "GTV role: if it is the GTV, map it with --structure-map ('Tumour_main: gtv')"), row["tumour_from"]
    # the mapping the texts give: the clinician's contours are used, nothing more said
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Rt_Lung_Contour: lung_right\nLt_Lung_Contour: lung_left\nTumour_main: gtv\n",
                       encoding="utf-8")
    _, inventory = plan_cohort(tmp_path / "export", str(mapping))
    row = inventory.iloc[0]
    assert row["lungs_from"] == "RTSTRUCT Rt_Lung_Contour+Lt_Lung_Contour", row["lungs_from"]
    assert row["tumour_from"] == "RTSTRUCT Tumour_main", row["tumour_from"]


def test_one_lung_mapped_the_other_unnamed_is_named_too(tmp_path):
    from lungai.dicom.cohort import lung_structures_note

    text = lung_structures_note(["Rt_Lung_Contour", "Lt_Lung_Contour", "Heart", "GTV"], [],
                                {"Rt_Lung_Contour": "lung_right"})
    assert text == ("the RTSTRUCT has a contoured right lung Rt_Lung_Contour but no contoured left lung "
                    "('Lt_Lung_Contour' has no role by its name: map it with --structure-map, e.g. "
                    "'Lt_Lung_Contour: lung_left')"), text
    # no lung-like name, or the other lung hidden by the mapping (the user's choice): as before
    assert lung_structures_note(["Heart", "GTV"], []) == "no contoured lung structures in the RTSTRUCT"
    assert lung_structures_note(["Lung_R", "Lung_L", "GTV"], [], {"Lung_L": None}) == (
        "the RTSTRUCT has a contoured right lung Lung_R but no contoured left lung")
