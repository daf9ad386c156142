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


def test_ids_differing_only_in_case_or_separators_in_one_table_are_one_patient(tmp_path):
    """QA: a clinical export holding one patient twice, typed R01-023 and r01-023 (or R01-024 and R01_024), was
    taken as two patients by ``lungai stage`` and ``lungai rp train`` (164 patients instead of 162): the same
    patient in a training and a test fold.  Refused by the one id check (:func:`check_unique_ids`), naming the pairs;
    ids that differ in more (P1, P10, P_1; P1_1 - lungai cohort's first CT series of P1 - and P11) stay different
    patients."""
    import pandas as pd

    from lungai.fusion.data import load_ehr
    from lungai.io.tables import check_unique_ids, ids_spelt_alike
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    ids = ["R01-023", "r01-023", "R01-024", "R01_024 ", "R01-025", "P1", "P10", "P1_1", "P11", "P_1x"]
    assert ids_spelt_alike(ids) == [["R01-023", "r01-023"], ["R01-024", "R01_024"]]
    check_unique_ids(["P1", "P10", "P_1", "P1_1", "P11", "LUNG1-001", "LUNG1-010", None, ""], "t")   # all different
    with pytest.raises(InputError, match=r"letter case or separators: 2 patients written more than one way "
                                         r".*R01-023 / r01-023, "
                                         r"R01-024 / R01_024"):
        check_unique_ids(["R01-023", "R01-024", "r01-023", "R01_024"], "t")
    (tmp_path / "ehr.csv").write_text("Case ID,Age,stage\nR01-023,61,I\nR01-024,70,II\nr01-023,61,I\n",
                                      encoding="utf-8")
    with pytest.raises(InputError, match=r"'Case ID'\) that differ only in letter case.*R01-023 / r01-023"):
        load_ehr(tmp_path / "ehr.csv")
    table = make_cohort(40, seed=3, n_noise=2).table
    twice = pd.concat([table, table.iloc[[4]].assign(case=table["case"][4].lower())], ignore_index=True)
    with pytest.raises(InputError, match=r"letter case or separators.*SYN003-00004 / syn003-00004") as err:
        train_rp(twice, "rp_grade2", tmp_path / "m", fast=True)
    assert "keep one row per patient" in err.value.fix and not (tmp_path / "m").exists()


@pytest.mark.shared_data
def test_radiogenomics_export_with_a_patient_typed_twice_is_refused(shared_data, tmp_path):
    """The real NSCLC-Radiogenomics clinical table with R01-023 added again as r01-023: refused for lungai stage,
    naming the pair (before: 164 patients, the copy in another CV fold); the table as shipped is read."""
    import pandas as pd

    from lungai.fusion.data import load_ehr

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    ehr = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(load_ehr(path)) == len(ehr) == 211
    copy = ehr[ehr["Case ID"] == "R01-023"].assign(**{"Case ID": "r01-023"})
    pd.concat([ehr, copy]).to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.raises(InputError, match="1 patient.*written more than one way.*R01-023 / r01-023"):
        load_ehr(tmp_path / "ehr.csv")


def test_ids_in_decomposed_unicode_or_with_spaces_around_join_their_patient(tmp_path):
    """QA: a PatientID / id written in decomposed Unicode ('u' + combining diaeresis, as macOS writes it: NFD) did not
    join the same patient's precomposed 'Müller' (NFC) of another table - the two look identical, so lungai
    cohort's notes 'no clinical row for: Müller' / 'clinical rows of patients not in the export: Müller' could not
    be acted on, and lungai rp refused the tables - nor did an id with a trailing space in rp ('R01-001 ', said as
    'differ only by leading zeros').  Ids are now joined as lungai.io.tables.id_text (NFC, spaces around dropped)
    in lungai cohort, rp and stage; one patient written both ways in one table is refused as a duplicate."""
    import unicodedata

    import pandas as pd

    from lungai.dicom.cohort import _join_clinical, read_clinical
    from lungai.fusion.data import load_ehr
    from lungai.io.tables import duplicate_ids
    from lungai.model_files import loose_id
    from lungai.rp.checks import read_tables

    nfd, nfc = unicodedata.normalize("NFD", "Müller"), "Müller"
    assert nfd != nfc
    # lungai cohort: the DICOM PatientID (NFD) joins the clinical CSV's row (NFC); the table keeps the PatientID
    (tmp_path / "clinical.csv").write_text(f"patient_id,clin_age\n{nfc},61\nR01-001 ,70\n", encoding="utf-8")
    notes: list = []
    joined = _join_clinical(pd.DataFrame({"patient_id": [nfd, "R01-001"]}), read_clinical(tmp_path / "clinical.csv"),
                            notes)
    assert joined["clin_age"].tolist() == [61, 70] and notes == []
    assert joined["patient_id"].tolist() == [nfd, "R01-001"]
    (tmp_path / "twice.csv").write_text(f"patient_id,clin_age\n{nfc},61\n{nfd},62\n", encoding="utf-8")
    with pytest.raises(InputError, match="more than once"):
        read_clinical(tmp_path / "twice.csv")
    # lungai rp: tables joined on these ids
    (tmp_path / "rp_table.csv").write_text(f"case,dose_mld_gy\n{nfd},10.5\nR01-001 ,12.0\n", encoding="utf-8")
    (tmp_path / "outcome.csv").write_text(f"case,rp_grade2\n{nfc},1\nR01-001,0\n", encoding="utf-8")
    table = read_tables([tmp_path / "rp_table.csv", tmp_path / "outcome.csv"])
    assert dict(zip(table["case"], table["rp_grade2"])) == {nfc: 1, "R01-001": 0}
    # lungai stage: the EHR's ids as the RNA matrix's; one patient in both forms in one table is a duplicate
    (tmp_path / "ehr.csv").write_text(f"patient_id,age,stage\n{nfd},61,I\nP02,70,II\n", encoding="utf-8")
    assert list(load_ehr(tmp_path / "ehr.csv").index) == [nfc, "P02"]
    (tmp_path / "rna.csv").write_text(f"gene,{nfc},P02\ng0,1.0,2.0\ng1,3.0,0.5\n", encoding="utf-8")
    from lungai.fusion.data import load_cohort

    assert load_cohort(tmp_path / "ehr.csv", tmp_path / "rna.csv", label="stage").availability()["rna"].all()
    assert duplicate_ids([nfc, nfd]) == [nfc] and loose_id(nfd) == loose_id(nfc)
    from lungai.scene.results import match_stage_patient          # the Multimodal Predict panel's typed patient

    assert match_stage_patient(f" {nfd}", [nfc, "P02"]) == nfc
    from lungai.io.tables import id_text

    assert id_text(nfd) == id_text(f" {nfc} ") == nfc


def test_an_unquoted_comma_in_a_row_ending_empty_is_refused_naming_the_row(tmp_path):
    """QA: a label cell with an unquoted comma ('grade 2, treated') in a row whose last cell is empty has one field
    more than the header, the extra one empty - taken for a trailing comma: in the first row it was read silently as
    'grade 2' with ' treated' moved into the next column, in a later row refused with pandas' 'Error tokenizing data'
    and the fix 'give a CSV file with a header row'.  Refused now naming the line, the row and the fix (quotes); a
    trailing comma on every line is still read."""
    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    for text, line in (("case,clin_age,label,note\nP1,60,grade 2, treated,\nP2,70,grade 1,x\nP3,65,grade 0,\n", 2),
                       ("case,clin_age,label,note\nP2,70,grade 1,x\nP1,60,grade 2, treated,\nP3,65,grade 0,\n", 3)):
        (tmp_path / "t.csv").write_text(text, encoding="utf-8")
        for read in (lambda p: read_table_checked(p, ["case"]), read_table, load_ehr):
            with pytest.raises(InputError, match=rf"line {line} \(the row of 'P1'\) has 5 fields, the header 4: a "
                                                 "comma inside a value that is not in quotes") as err:
                read(tmp_path / "t.csv")
            assert "double quotes" in err.value.fix and f"line {line}" in err.value.fix
    # every row one empty field longer (a trailing comma each): read, columns in place; one row longer still: refused
    (tmp_path / "all.csv").write_text("case,age,label\nP1,60,2,\nP2,70,1,\n", encoding="utf-8")
    assert read_table_checked(tmp_path / "all.csv", ["case"])["label"].tolist() == [2, 1]
    (tmp_path / "more.csv").write_text("case,age,label,note\nP1,60,2,x,\nP2,70,grade 1, treated,,\nP3,71,0,y,\n",
                                       encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3 \(the row of 'P2'\) has 6 fields, the header 4, the other rows 5"):
        read_table_checked(tmp_path / "more.csv", ["case"])
    (tmp_path / "t.tsv").write_text("case\tlabel\tnote\nP1\tgrade 2\ttreated\t\nP2\tgrade 1\t\n", encoding="utf-8")
    with pytest.raises(InputError, match="a tab inside a value"):
        read_table_checked(tmp_path / "t.tsv", ["case"], sep="\t")


@pytest.mark.shared_data
def test_radiogenomics_row_with_an_unquoted_comma_is_refused(shared_data, tmp_path):
    """The real NSCLC-Radiogenomics clinical table exported with its last column (PET Date) empty and one histology
    typed 'Adenocarcinoma, acinar' without quotes: refused naming AMC-005's line, for lungai rp and lungai stage."""
    import csv

    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    path = shared_data / "nsclc_radiogenomics" / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv"
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    lines = [",".join(f'"{c}"' if "," in c else c for c in r[:-1]) + "," for r in rows[1:]]
    lines = [",".join(f'"{c}"' if "," in c else c for c in rows[0])] + lines
    (tmp_path / "ok.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(load_ehr(tmp_path / "ok.csv")) == 211
    assert lines[5].startswith("AMC-005,") and ",Adenocarcinoma," in lines[5]
    lines[5] = lines[5].replace(",Adenocarcinoma,", ",Adenocarcinoma, acinar,", 1)
    (tmp_path / "ehr.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for read in (read_table, load_ehr):
        with pytest.raises(InputError, match=r"line 6 \(the row of 'AMC-005'\) has 41 fields, the header 40"):
            read(tmp_path / "ehr.csv")


def test_a_repeated_header_row_is_refused_naming_its_line(tmp_path):
    """QA: two exports pasted into one file (the second with its header): lungai stage read that line as a patient
    'Case ID' whose label was 'Histology' (a class of one patient), silently when the table has no numeric column;
    lungai rp said only "outcome ... has values other than 0/1: ['recurrence']".  Refused naming the line."""
    from lungai.fusion.data import load_cohort
    from lungai.rp.checks import read_table

    text = ("Case ID,Gender,Histology \nP1,Male,Adenocarcinoma\nP2,Female,Squamous\nCase ID,Gender,Histology\n"
            "P3,Male,Adenocarcinoma\n")
    (tmp_path / "ehr.csv").write_text(text, encoding="utf-8")
    for read in (lambda p: load_cohort(ehr=p, label="Histology "), read_table):
        with pytest.raises(InputError, match="line 4 repeats the header row") as err:
            read(tmp_path / "ehr.csv")
        assert "delete line 4" in err.value.fix
    # a patient whose values are words of the header is a patient
    (tmp_path / "ok.csv").write_text("case,a,b\nP1,a,b\ncase,a,x\n", encoding="utf-8")
    assert read_table_checked(tmp_path / "ok.csv", ["case"])["case"].tolist() == ["P1", "case"]


def test_rows_of_empty_cells_are_left_out(tmp_path):
    """QA: a spreadsheet's export ends with lines of delimiters only (',,,', rows once formatted below the data):
    lungai stage read one as a patient 'nan' and refused several as "duplicate patient IDs ['nan'] - keep one row per
    patient"; lungai rp refused "outcome ... missing in 2 row(s)".  They are left out, as blank lines are."""
    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    (tmp_path / "t.csv").write_text("case,age,sex,rp\nP1,61,M,1\n,,,\nP2,70,F,0\n,,,\n, , ,\n", encoding="utf-8")
    assert list(load_ehr(tmp_path / "t.csv").index) == ["P1", "P2"]
    df = read_table(tmp_path / "t.csv")
    assert df["case"].tolist() == ["P1", "P2"] and df["rp"].tolist() == [1, 0] and list(df.index) == [0, 1]
    (tmp_path / "one.csv").write_text("case,age\nP1,61\n,\n", encoding="utf-8")
    assert list(load_ehr(tmp_path / "one.csv").index) == ["P1"]
    # a row with an id but no values is a patient (its values missing)
    (tmp_path / "id.csv").write_text("case,age,sex\nP1,61,M\nP2,,\n", encoding="utf-8")
    assert list(load_ehr(tmp_path / "id.csv").index) == ["P1", "P2"]


def test_numbers_written_with_a_percent_sign_are_refused_as_numbers(tmp_path):
    """QA: a spreadsheet's cells formatted as Percentage are exported as '45%': lungai rp train took such a column
    (FEV1 % predicted) as categorical, one category per value, without a word; lungai stage made it categories or
    left it out as free text.  Both refuse it now as numbers written with a percent sign, naming values and lines,
    with the fix (a number without the sign); predict-time messages name it too."""
    from lungai.fusion.data import load_cohort
    from lungai.fusion.preprocess import numeric_text_problem
    from lungai.io.tables import PERCENT_FIX, number_hint, percent_number
    from lungai.rp.cohort import make_cohort
    from lungai.rp.columns import infer_type
    from lungai.rp.training import train_rp

    assert [percent_number(t) for t in ("45%", " 12.5 %", "12,5%", "-3%", "45", "%", "abc%", None)] == \
        [45.0, 12.5, 12.5, -3.0, None, None, None, None]
    assert number_hint("45%") == " (type 45: a number without the percent sign)"
    assert number_hint("12,8") == " (type 12.8: a decimal point, not a comma)" and number_hint("x") == ""
    assert "'FEV1' = '45%' is not a number (type 45:" in numeric_text_problem([("FEV1", "45%")])
    assert infer_type(__import__("pandas").Series(["45%", "50%", "NA"]))[0] == "numeric"
    table = make_cohort(80, seed=3, n_noise=2).table
    table["clin_fev1_pct"] = [f"{40 + 5 * (k % 12)}%" for k in range(len(table))]
    with pytest.raises(InputError, match=r"column 'clin_fev1_pct' \(numeric\) has values \['40%', .*written "
                                         r"with a percent sign \(type 40: a number without the percent sign\)") as err:
        train_rp(table, "rp_grade2", tmp_path / "m", fast=True)
    assert err.value.fix == PERCENT_FIX and not (tmp_path / "m").exists()
    rows = "".join(f"P{k},{60 + k},{40 + k}%,{'I' if k % 2 else 'II'}\n" for k in range(30))
    (tmp_path / "ehr.csv").write_text("case,age,fev1,stage\n" + rows, encoding="utf-8")
    with pytest.raises(InputError, match=r"text in numeric column: 'fev1' = '40%' \(type 40: a number without "
                                         r"the percent sign\) for patient P0 \(CSV line 2\)") as err:
        load_cohort(ehr=tmp_path / "ehr.csv", label="stage")
    assert err.value.fix == PERCENT_FIX


def test_a_column_named_twice_is_refused(tmp_path):
    """QA: a header naming a column twice (two exports joined side by side) was read by pandas as 'clin_age' and
    'clin_age.1': lungai rp trained on both without a word (its duplicate-name check never saw the repeat) and
    lungai stage took both as EHR features.  Refused naming the name and the columns."""
    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    (tmp_path / "t.csv").write_text("case,clin_age,clin_age ,rp\nP1,60,61,1\nP2,70,72,0\n", encoding="utf-8")
    for read in (read_table, load_ehr):
        with pytest.raises(InputError, match=r"names a column more than once: 'clin_age' \(columns 2, 3\)") as err:
            read(tmp_path / "t.csv")
        assert "unique name" in err.value.fix
    (tmp_path / "ok.csv").write_text("case,clin_age,clin_age.1,rp\nP1,60,61,1\n", encoding="utf-8")
    assert list(read_table(tmp_path / "ok.csv").columns) == ["case", "clin_age", "clin_age.1", "rp"]


def test_a_row_shorter_than_the_header_is_named(tmp_path):
    """QA: a data row missing a comma ('P2,14,0' under four columns) was read with its outcome as clin_age and no
    outcome, without a word; the rows with fewer fields than the header are named now (read as before)."""
    from lungai.errors import InputNote

    (tmp_path / "t.csv").write_text("case,dose_mld_gy,clin_age,outcome\nP1,12,61,1\nP2,14,0\nP3,10,70,0\n",
                                    encoding="utf-8")
    with pytest.warns(InputNote, match=r"1 row with fewer fields than the header's 4: line 3 \('P2': 3 fields\)"):
        df = read_table_checked(tmp_path / "t.csv", ["case"], what="the training table")
    assert list(df["case"]) == ["P1", "P2", "P3"]
    import warnings

    (tmp_path / "ok.csv").write_text("case,clin_age,outcome\nP1,61,\nP2,,0\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputNote)       # empty cells keep their commas: nothing to say
        read_table_checked(tmp_path / "ok.csv", ["case"])
