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
    with pytest.raises(InputError, match=r"letter case or separators: 2 patient\(s\).*R01-023 / r01-023, "
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
