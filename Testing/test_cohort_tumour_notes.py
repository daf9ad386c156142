"""QA cohortfollow72: ``lungai cohort`` on LUNG1-003 whose RTSTRUCT's GTV-1 was renamed 'Tumour_main' (no RT ROI
Interpreted Type) made the tumour gtv-3 + gtv-2 (47.6 ml; the 34.8 ml primary stayed inside the lungs).  The note
("structure 'Tumour_main' is named like a tumour but its name has no role ...") was in patients.csv and said once,
but rp_table.csv's ``tumour_review`` was empty, no column flagged the row, and a resumed run said nothing.  Now the
table's ``tumour_notes`` holds it (:func:`lungai.dicom.roles.left_out_gtv_notes`), said again on resume, as the
``lung_notes`` are; a patient without an RTSTRUCT is told to export one (not "contour a GTV in the RTSTRUCT")."""
from __future__ import annotations

import json

from dicom_helpers import small_phantom

# the note's words, written out: the test runs (and fails) on a lungai without the column
LEFT_OUT = "structure 'Tumour_main' is named like a tumour but its name has no role, so it is not used as a GTV"
LUNG1_003 = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "Tumour_main"]


def test_left_out_gtv_notes_are_those_of_structures_that_may_be_tumour():
    from lungai.dicom.roles import StructureName, left_out_gtv_notes, role_notes

    notes = left_out_gtv_notes(role_notes(LUNG1_003) + ["structures without a role (see --structure-map): Heart"])
    assert len(notes) == 1 and notes[0].startswith(LEFT_OUT) and "'Tumour_main: gtv'" in notes[0], notes
    # a GTV by its type beside GTVs by name, a GTV the mapping hides: said too; the iGTV / organs / GTV-1: not
    typed = left_out_gtv_notes(role_notes(["Lung_R", "Lung_L", "GTV", StructureName("Mass_B", "GTV")]))
    assert len(typed) == 1 and typed[0].startswith("structure 'Mass_B' has RT ROI Interpreted Type GTV"), typed
    hidden = left_out_gtv_notes(role_notes(["Lung_R", "Lung_L", "GTV-1", "gtv-2"], {"gtv-2": None}))
    assert len(hidden) == 1 and hidden[0].startswith("structure 'gtv-2' is a GTV by its name"), hidden
    assert not left_out_gtv_notes(role_notes(["Lung_R", "Lung_L", "GTV-1", "iGTV", "Heart"]))


def _warned(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ") and "Tumour_main" in line]


def test_a_structure_left_out_of_the_tumour_is_flagged_in_the_table_and_said_on_resume(tmp_path, capsys):
    import pandas as pd

    from lungai.cli import main
    from lungai.dicom.synthetic import rt_structures, write_rt_study

    phantom = small_phantom(7)
    write_rt_study(tmp_path / "export", phantom, "P1", dose=None,
                   extra_structures={"Tumour_main": rt_structures(phantom)["gtv"]})
    out = tmp_path / "out"
    command = ["cohort", str(tmp_path / "export"), "-o", str(out), "--workers", "0"]
    assert main(command) == 0
    row = pd.read_csv(out / "rp_table.csv", keep_default_na=False).iloc[0]
    assert row["tumour_review"] == ""                   # a contoured GTV: no review flag ...
    notes = row["tumour_notes"]                          # ... but the structure left out of it is flagged
    assert notes.startswith(LEFT_OUT) and "--structure-map ('Tumour_main: gtv')" in notes, notes
    assert _warned(capsys.readouterr().err) == [f"warning: P1: {notes}"]      # once in the run
    assert notes in pd.read_csv(out / "patients.csv", keep_default_na=False).iloc[0]["notes"]

    # resumed: the table keeps it and the terminal says it again (an older result without the record too)
    result = out / "patients" / "P1" / "result.json"
    for older in (False, True):
        if older:
            from lungai.dicom.cohort import _written
            from lungai.io.outputs import record_outputs

            doc = json.loads(result.read_text(encoding="utf-8"))
            del doc["tumour_notes"]
            result.write_text(json.dumps(doc), encoding="utf-8")
            record_outputs(out, "cohort", _written(out))     # as the older lungai wrote it
        assert main(command) == 0
        run = capsys.readouterr()
        assert "0 processed, 1 already done (skipped)" in run.out.replace("patients processed", "processed"), run.out
        assert pd.read_csv(out / "rp_table.csv", keep_default_na=False).iloc[0]["tumour_notes"] == notes
        assert _warned(run.err) == [f"warning: P1: {notes}"], (older, run.err)


def test_the_review_fix_of_a_patient_without_an_rtstruct_says_to_export_one():
    from lungai.dicom.cohort import review_fix

    fix = review_fix(None)
    assert "in the RTSTRUCT" not in fix and "export the patient's RTSTRUCT with a contoured GTV" in fix, fix


def test_the_cohort_tables_empty_text_columns_are_read_as_text(tmp_path):
    """rp_table.csv read for a Slicer table (:func:`lungai.scene.nodes.read_results_csv`): its text columns empty in
    every row (no patient flagged) are empty text, not float NaN - "nan" in Slicer's table (QA cohortfollow72:
    ``lung_notes`` and ``tumour_confidence_caveat`` of LUNG1-003's rows were float NaN)."""
    import pandas as pd

    from lungai.dicom.cohort import TABLE_FIRST
    from lungai.scene.nodes import read_results_csv

    text = [c for c in TABLE_FIRST if c not in ("case", "patient_id", "tumour_confidence")]
    table = pd.DataFrame({"case": ["P1", "P2"], "patient_id": ["P1", "P2"], "tumour_confidence": [0.5, None],
                          **{c: ["", ""] for c in text}, "dose_mld_gy": [None, None], "rad_tumour_x": [1.0, 2.0]})
    table.to_csv(tmp_path / "rp_table.csv", index=False)
    df = read_results_csv(tmp_path / "rp_table.csv")
    assert {c: df[c].tolist() for c in text} == {c: ["", ""] for c in text}
    assert df["dose_mld_gy"].dtype.kind == "f" and df["rad_tumour_x"].tolist() == [1.0, 2.0]   # numbers stay numbers
