"""QA plural62: messages of the CT / DICOM / table reading wrote "(s)" plurals - "1 slice(s) missing", "1 id(s) occur
more than once", "1 row(s) with fewer fields than the header's", "RTSTRUCT structure(s) without contours left out",
"found 1 file(s), none a DICOM CT", "has column(s) ['dose_mld_gy'] of names the cohort computes", "4 of the 4 file(s)
listed ... do not exist": each count takes its own number now, and the verb agrees with it
(lungai.errors.counted / agree / counted_of)."""
from __future__ import annotations

import warnings

import pytest

from lungai.errors import InputError, InputNote


@pytest.mark.parametrize("n", [1, 2])
def test_ct_slice_messages_count_in_the_singular_and_the_plural(n):
    from lungai.io.validate import check_slice_positions

    s = "s" if n > 1 else ""
    with pytest.raises(InputError) as err:           # n slices missing after the 3rd
        check_slice_positions([0.0, 2.0, 4.0] + [4.0 + 2.0 * (k + n + 1) for k in range(6)], "CT x")
    assert f"CT x: {n} slice{s} missing - no slice between z = 4.00" in err.value.problem, err.value.problem
    with pytest.raises(InputError) as err:           # n slices twice
        check_slice_positions([0.0, 2.0, 4.0, 6.0, 8.0] + [2.0 * k for k in range(n)], "CT x")
    verb = "lie" if n > 1 else "lies"
    assert f"CT x: {n} slice{s} {verb} at the position of another slice" in err.value.problem, err.value.problem
    assert "(s)" not in str(err.value)


@pytest.mark.parametrize("n", [1, 2])
def test_table_messages_count_in_the_singular_and_the_plural(tmp_path, n):
    from lungai.io.tables import check_listed_files, check_unique_ids, read_table_checked

    s = "s" if n > 1 else ""
    with pytest.raises(InputError) as err:
        check_unique_ids(["A", "B", "C", "D"] + ["A", "B"][:n], "the table", "case")
    verb = "occur" if n > 1 else "occurs"
    assert f"duplicate patient IDs (column 'case'): {n} id{s} {verb} more than once: " in str(err.value), err.value

    rows = ["P1,12,61,1", "P2,14,0", "P3,10,70,0", "P4,11,1"][:2 + n]        # n rows missing one field
    (tmp_path / "t.csv").write_text("case,dose_mld_gy,clin_age,outcome\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_table_checked(tmp_path / "t.csv", ["case"], what="the training table")
    (note,) = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
    assert f": {n} row{s} with fewer fields than the header's 4: line 3 ('P2': 3 fields)" in note, note
    assert ("their last column is read as empty" if n > 1 else "its last column is read as empty") in note, note
    assert f"check the row{s}, an empty cell keeps its comma" in note and "(s)" not in note, note

    listed = [str(tmp_path / f"gone{k}.nii.gz") for k in range(n)]
    with pytest.raises(InputError) as err:
        check_listed_files(listed, tmp_path / "m.csv", "manifest")
    said = ("none of the 2 files listed in the manifest" if n > 1 else "the file listed in the manifest")
    verb = "exists" if n > 1 else "does not exist"
    assert err.value.problem.startswith(f"{said} {tmp_path / 'm.csv'} {verb}: "), err.value.problem


@pytest.mark.parametrize("n", [1, 2])
def test_id_hints_count_in_the_singular_and_the_plural(n):
    from lungai.io.tables import id_spelling_hint

    said = id_spelling_hint(["007", "012"][:n], ["7", "12"][:n])
    ids = "2 ids differ" if n > 1 else "1 id differs"
    assert said.startswith(f"; {ids} only by leading zeros (007 vs 7"), said


@pytest.mark.parametrize("n", [1, 2])
def test_dicom_messages_count_in_the_singular_and_the_plural(tmp_path, n):
    from lungai.dicom.cohort import read_clinical
    from lungai.dicom.discover import find_rtstruct
    from lungai.dicom.roles import empty_note

    s = "s" if n > 1 else ""
    assert empty_note(["GTVn", "Lungs"][:n]) == f"RTSTRUCT structure{s} without contours left out: " \
                                                + ", ".join(["GTVn", "Lungs"][:n])

    folder = tmp_path / "export"
    folder.mkdir()
    for k in range(n):
        (folder / f"notes{k}.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputError) as err:
        find_rtstruct(folder)
    assert f"found {n} file{s}, none a DICOM CT, RTSTRUCT, RTDOSE or SEG" in err.value.problem, err.value.problem

    clash = ["dose_mld_gy", "rad_volume"][:n]
    (tmp_path / "clinical.csv").write_text(f"patient_id,clin_age,{','.join(clash)}\nP1,60,{','.join(['1'] * n)}\n",
                                           encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_clinical(tmp_path / "clinical.csv")
    column = "columns" if n > 1 else "a column"
    name = "names" if n > 1 else "a name"
    assert f"has {column} {clash} of {name} the cohort computes" in err.value.problem, err.value.problem
    assert err.value.fix.endswith(f"drop {'them' if n > 1 else 'it'} in the clinical CSV"), err.value.fix
