"""A GTV that the ``--structure-map`` hides (``NAME: null``) beside other GTVs (QA cohort70).

``lungai cohort EXPORT -o OUT --structure-map map.yaml`` with ``gtv-2: null`` on LUNG1-003's real DICOM CT + RTSTRUCT
made the tumour GTV-1 + gtv-3 and, without a word, stopped subtracting gtv-2 from the lungs (the lungs_minus_tumour
radiomics and the dose metrics' lungs): patients.csv listed gtv-2 among "structures without a role" only, beside
Heart and Esophagus.  Now the patient's notes and the terminal say it (one note, :func:`lungai.dicom.roles.
hidden_gtv_note`, the role notes that ``lungai dose-features`` / ``lungai radiomics --rtstruct`` print too), with the
mapping line that subtracts it; hiding a structure that is no GTV, or every GTV (the automatic segmentation then),
says nothing new.
"""

from __future__ import annotations

import pytest

from lungai.dicom.roles import StructureName, role_notes

# the note's words (lungai.dicom.roles.HIDDEN_GTV), written out: the test runs (and fails) on a lungai without it
HIDDEN_GTV = "but the structure mapping hides it (null)"

LUNG1_003 = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]


def test_a_hidden_gtv_beside_other_gtvs_is_said_with_the_line_that_subtracts_it():
    from lungai.dicom import roles

    assert getattr(roles, "HIDDEN_GTV", HIDDEN_GTV) == HIDDEN_GTV
    notes = [n for n in role_notes(LUNG1_003, {"gtv-2": None}) if HIDDEN_GTV in n]
    assert len(notes) == 1, notes
    note = notes[0]
    assert note.startswith("structure 'gtv-2' is a GTV by its name " + HIDDEN_GTV), note
    assert "not part of the tumour (GTV-1, gtv-3)" in note and "not subtracted from the lungs" in note, note
    assert "'gtv-2: gtv_node'" in note, note          # the fix: the mapping line that subtracts it
    # named like a tumour, or a GTV by its RT ROI Interpreted Type only: said alike
    tumour = role_notes(["Lung_R", "Lung_L", "GTV", "Nodule_2"], {"Nodule_2": None})
    assert any(n.startswith("structure 'Nodule_2' is named like a tumour " + HIDDEN_GTV) for n in tumour), tumour
    typed = role_notes(["Lung_R", "Lung_L", "GTV", StructureName("Mass_B", "GTV")], {"mass b": None})
    assert any(n.startswith("structure 'Mass_B' ") and HIDDEN_GTV in n for n in typed), typed


def test_hiding_no_gtv_or_every_gtv_says_nothing_new():
    assert not [n for n in role_notes(LUNG1_003, {"Heart": None, "Lung-Left": None}) if HIDDEN_GTV in n]
    # an old / margin / motion-envelope structure hidden (docs/dicom.md's 'GTV_old: null'): no GTV, nothing said
    hidden = {"GTV_old": None, "GTV_5mm": None, "GTV_MIP": None, "iGTV": None}
    assert not [n for n in role_notes(LUNG1_003 + list(hidden), hidden) if HIDDEN_GTV in n]
    # every GTV hidden (the fix of a GTV that cannot be read: the automatic segmentation is said by its own note)
    assert not [n for n in role_notes(LUNG1_003, {"gtv-2": None, "gtv-3": None, "GTV-1": None}) if HIDDEN_GTV in n]


@pytest.mark.shared_data
def test_cohort_says_the_hidden_gtv_in_the_inventory_and_on_the_terminal(shared_data, tmp_path):
    from lungai.dicom.cohort import inventory_warnings, plan_cohort

    src = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    patient = tmp_path / "export" / "LUNG1-003"
    patient.mkdir(parents=True)
    for sub in ("CT", "RTSTRUCT"):          # links: no copy of the patient's data
        (patient / sub).symlink_to(src / sub, target_is_directory=True)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("gtv-2: null\n", encoding="utf-8")
    jobs, inventory = plan_cohort(tmp_path / "export", str(mapping))
    row = inventory.iloc[0]
    assert row["tumour_from"] == "RTSTRUCT GTV-1+gtv-3"
    assert "structure 'gtv-2' is a GTV by its name " + HIDDEN_GTV in row["notes"], row["notes"]
    # on the terminal (cohort says inventory_warnings before any work), with its form naming no patient
    said = [w for w in inventory_warnings(jobs, inventory) if HIDDEN_GTV in str(w)]
    assert len(said) == 1, said
    assert str(said[0]).startswith("LUNG1-003: structure 'gtv-2' is a GTV by its name"), said
    assert said[0].without_ids.startswith("a patient: structure 'gtv-2'"), said[0].without_ids
    # without the mapping: gtv-2 is part of the tumour, nothing said
    jobs, inventory = plan_cohort(tmp_path / "export")
    assert inventory.iloc[0]["tumour_from"] == "RTSTRUCT GTV-1+gtv-3+gtv-2"
    assert not [w for w in inventory_warnings(jobs, inventory) if HIDDEN_GTV in str(w)]
