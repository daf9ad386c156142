"""lungai.io.tables, the reader of the commands' input tables: rows ending with a trailing comma (one more field
than the header) keep every column in place - pandas would take the first column for row names and shift the others
- and a value beyond the header's columns is refused naming its line; a role file is read (and refused) the same
way."""

from __future__ import annotations

import pytest

from lungai.errors import InputError
from lungai.io.tables import read_table_checked


def test_trailing_commas_shift_no_column(tmp_path):
    (tmp_path / "t.csv").write_text("case,clin_age,rp\n007,61,1,\n008,70,0,\n", encoding="utf-8")
    df = read_table_checked(tmp_path / "t.csv", ["case"])
    assert list(df.columns) == ["case", "clin_age", "rp"]
    assert list(df.case) == ["007", "008"] and list(df.rp) == [1, 0] and list(df.index) == [0, 1]


def test_rp_and_stage_tables_with_trailing_commas_are_read_right(tmp_path):
    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    (tmp_path / "t.csv").write_text("case,clin_age,rp\nP1,61,1,\nP2,70,0,\n", encoding="utf-8")
    df = read_table(tmp_path / "t.csv")
    assert list(df.case) == ["P1", "P2"] and list(df.rp) == [1, 0]
    ehr = load_ehr(tmp_path / "t.csv")
    assert list(ehr.index) == ["P1", "P2"] and list(ehr.rp) == [1, 0]


def test_a_value_beyond_the_header_is_refused_naming_its_line(tmp_path):
    (tmp_path / "t.csv").write_text("case,clin_age,rp\nP1,61,1\nP2,70,0,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3 has 4 fields, the header 3") as err:
        read_table_checked(tmp_path / "t.csv", ["case"], what="clinical table")
    assert "clinical table" in err.value.problem and "header" in err.value.fix
    (tmp_path / "u.csv").write_text("case,clin_age,rp\nP1,61,1,x\nP2,70,0,y\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2 has 4 fields, the header 3"):
        read_table_checked(tmp_path / "u.csv", ["case"])


def test_a_role_file_not_utf8_is_refused_saying_how_to_fix(tmp_path):
    from lungai.rp.columns import read_role_file

    (tmp_path / "roles.csv").write_bytes("column,role\nclin_r\xe9gion,clinical\n".encode("latin-1"))
    with pytest.raises(InputError, match="role file .* is not UTF-8") as err:
        read_role_file(tmp_path / "roles.csv")
    assert "UTF-8" in err.value.fix
    (tmp_path / "ok.csv").write_text("column,role,type\nclin_age,clinical,\n", encoding="utf-8")
    assert read_role_file(tmp_path / "ok.csv") == {"clin_age": ("clinical", None)}
    with pytest.raises(InputError, match="role file .* does not exist"):
        read_role_file(tmp_path / "none.csv")


def test_r_write_table_row_names_are_read_as_before(tmp_path):
    """Review: R's write.table writes row names without a header field (every data row one field longer than the
    header); pandas reads them as row names and the columns stay in place - the extra-fields check refused it.  A row
    with a value beyond the header while the others have none is still refused, naming the tab for a TSV."""
    from lungai.io.tables import read_table_checked

    (tmp_path / "r.tsv").write_text('"patient_id"\t"age"\t"sex"\n"1"\t"001"\t64\t"M"\n"2"\t"002"\t70\t"F"\n',
                                    encoding="utf-8")
    df = read_table_checked(tmp_path / "r.tsv", ["patient_id"], sep="\t")
    assert list(df["patient_id"]) == ["001", "002"] and list(df["sex"]) == ["M", "F"]
    (tmp_path / "bad.tsv").write_text("patient_id\tage\n001\t64\n002\t70\tx\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3 has 3 fields, the header 2: .*a tab inside a value"):
        read_table_checked(tmp_path / "bad.tsv", ["patient_id"], sep="\t")
