"""docs/cohort.md's list of ``rp_table.csv``'s columns names every column the cohort writes before the clinical join
(``lungai.dicom.cohort.TABLE_FIRST``).

QA docs2_65: ``lungai cohort`` on LUNG1-003 (../shared/data/nsclc_whole_ct/dicom, ``--workers 0``) wrote
``rtdose_notes`` after ``lungs_cut``; the list in "6. RP table" went from ``lungs_cut`` to ``dose_*``."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cohort_md_lists_every_column_of_rp_table():
    from lungai.dicom.cohort import TABLE_FIRST

    text = (REPO / "docs/cohort.md").read_text(encoding="utf-8")
    listed = text[text.index("6. **RP table** `OUT/rp_table.csv`"):]
    listed = listed[:listed.index("`rad_*`")]
    missing = [c for c in TABLE_FIRST if f"`{c}`" not in listed]
    assert not missing, missing
