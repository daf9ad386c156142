"""QA notesfollow71: ``lungai cohort`` on an RTSTRUCT whose lungs are one 'Lungs' structure (both lungs in one
contour).  Its whole-lung segments were built from that structure after the segment notes were cleared, never checked
for looking like the lungs: a GTV exported as 'Lungs' was computed as the patient's lungs without a word.  Now checked
as the lungs of a label map are (:func:`lungai.lungs.check.lung_segment_notes`), the note kept in the patient's
notes; real lungs stay note-free."""
from __future__ import annotations

import shutil

import SimpleITK as sitk

from cohort_helpers import PARAMS, export  # noqa: F401 - export: the module's fixture

NOT_THE_LUNGS = "radiomics lungs: segment 'lungs' does not look like the lungs"


def _with_lungs_structure(export, tmp_path, lungs_of, grown: int = 0):
    """P1 of the export with its RTSTRUCT rewritten by lungai's writer: GTV and one 'Lungs' structure, the union of
    the structures ``lungs_of`` (grown by ``grown`` voxels); its cohort job."""
    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.rtstruct import read_rtstruct, write_rtstruct
    from lungai.io import read_ct

    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtstruct_of_someone*"))
    rs = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    masks = read_rtstruct(rs, read_ct(root / "P1" / "CT"))
    lungs = masks[lungs_of[0]]
    for name in lungs_of[1:]:
        lungs = sitk.Or(lungs, masks[name])
    if grown:
        lungs = sitk.BinaryDilate(sitk.Cast(lungs > 0, sitk.sitkUInt8), [grown] * 3)
    write_rtstruct({"GTV": masks["GTV"], "Lungs": lungs}, ct_reference(root / "P1" / "CT"), tmp_path / "rs.dcm",
                   label="synthetic")
    rs.unlink()
    (tmp_path / "rs.dcm").replace(rs)
    jobs, inv = plan_cohort(root)
    assert inv.set_index("patient_id").loc["P1"]["lungs_from"].startswith("RTSTRUCT Lungs")
    return next(j for j in jobs if j.case == "P1")


def test_a_gtv_given_as_the_lungs_structure_is_noted(export, tmp_path):
    """A GTV (grown by 2 voxels, so the lungs minus it hold voxels) exported as 'Lungs': computed as the lungs, noted."""
    from lungai.dicom.cohort import process_patient

    doc = process_patient(_with_lungs_structure(export, tmp_path, ["GTV"], grown=2), PARAMS, str(tmp_path / "out"))
    assert doc["status"] == "done", doc
    said = [n for n in doc["notes"] if n.startswith(NOT_THE_LUNGS)]
    assert len(said) == 1 and "Check the lung structures" in said[0], doc["notes"]


def test_real_lungs_structure_has_no_lung_note(export, tmp_path):
    from lungai.dicom.cohort import process_patient

    doc = process_patient(_with_lungs_structure(export, tmp_path, ["Lung_R", "Lung_L"]), PARAMS, str(tmp_path / "o"))
    assert doc["status"] == "done", doc
    assert not [n for n in doc["notes"] if "does not look like" in n], doc["notes"]


def test_lung_notes_reach_the_table_and_the_terminal_once(export, tmp_path):
    """QA cohort72: LUNG1-003 with a GTV exported as 'Lungs' (75 ml at -237 HU) and an RTDOSE: the lungs' notes
    reached result.json only - no word on the terminal, no column of rp_table.csv beside its MLD of those 75 ml - and
    were two of one thing ("segment 'lungs' does not look like the lungs (75 ml ...)" and "the lungs total 75 ml, less
    than 1000 ml ..."). Now one note, naming the dose metrics, said as a warning and in the table's lung_notes; a
    result of the older lungai, resumed, has its notes there too, once."""
    import json

    import pandas as pd

    from cohort_helpers import said_notes
    from lungai.dicom.cohort import _written, run_cohort
    from lungai.io.outputs import record_outputs

    _with_lungs_structure(export, tmp_path, ["GTV"], grown=2)
    out = tmp_path / "out"
    with said_notes() as said:
        assert not run_cohort(tmp_path / "export", out, PARAMS, workers=0).failed
    row = pd.read_csv(out / "rp_table.csv", keep_default_na=False).iloc[0]
    assert "dose_mld_gy" in row and row["dose_mld_gy"] != ""        # the dose features are of that structure
    lung = row["lung_notes"]
    assert lung.startswith(NOT_THE_LUNGS), lung
    assert lung.endswith("; the dose metrics (MLD, V20 ...) are of this structure too"), lung
    assert [n for n in said if "lungs" in n and "P1" in n and "does not look" in n] == [f"warning: P1: {lung}"], said
    result = out / "patients" / "P1" / "result.json"
    doc = json.loads(result.read_text(encoding="utf-8"))
    assert not [n for n in doc["notes"] if "less than 1000 ml" in n], doc["notes"]      # said once, one wording

    # an older result (no lung_notes record; its notes held both wordings): resumed, its note in the table once
    from lungai.lungs.check import SMALL_NOTE

    del doc["lung_notes"]
    doc["notes"].append(SMALL_NOTE.format(ml=75.0, limit=1000.0))
    result.write_text(json.dumps(doc), encoding="utf-8")
    record_outputs(out, "cohort", _written(out))     # as the older lungai wrote it
    with said_notes() as said:
        summary = run_cohort(tmp_path / "export", out, PARAMS, workers=0)
    assert summary.skipped and not summary.done, summary.text()
    assert pd.read_csv(out / "rp_table.csv", keep_default_na=False).iloc[0]["lung_notes"] == lung
    assert [n for n in said if "lungs" in n and "P1" in n] == [f"warning: P1: {lung}"], said
