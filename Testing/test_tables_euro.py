"""Tables of a decimal-comma spreadsheet (';' between fields, '1,5' for 1.5) and the file line named in a table's
value errors: realistic edits of the real NSCLC-Radiogenomics clinical table."""

import csv
import io
import warnings
from pathlib import Path

import pytest

from lungai.errors import InputError, InputNote

REAL = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nsclc_radiogenomics"
        / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv")
pytestmark = pytest.mark.skipif(not REAL.is_file(), reason="real NSCLC-Radiogenomics table not here")
PLEURAL = "Pleural invasion (elastic, visceral, or parietal)"


def _rows():
    return list(csv.reader(REAL.open(encoding="utf-8-sig", newline="")))


def _write(path, rows, sep):
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _euro(rows):
    """The table as a German Excel saves 'CSV (comma delimited)': weights with a decimal comma ('154,5')."""
    out = [list(r) for r in rows]
    w = out[0].index("Weight (lbs)")
    for r in out[1:]:
        if r[w].replace(".", "").isdigit():
            r[w] = f"{float(r[w]) + 0.5:.1f}".replace(".", ",")
    return out


def test_semicolon_table_with_decimal_commas_is_read(tmp_path):
    from lungai.fusion.data import load_ehr
    from lungai.rp.checks import read_table

    rows = _euro(_rows())
    rows[0][rows[0].index(PLEURAL)] = "Pleural invasion"          # a header without commas: a clear sniff
    path = _write(tmp_path / "euro.csv", rows, ";")
    w = rows[0].index("Weight (lbs)")
    first = next(r for r in rows[1:] if "," in r[w])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ehr = load_ehr(path)
    notes = [str(c.message) for c in caught if issubclass(c.category, InputNote)]
    # its never-smokers without pack-years, read as 0, said apart (predict67: load_ehr as the API uses every column)
    notes = [n for n in notes if "read as 0 pack-years" not in n]
    assert len(notes) == 1 and "semicolon-separated with decimal commas" in notes[0]
    assert float(ehr.loc[first[0], "Weight (lbs)"]) == pytest.approx(float(first[w].replace(",", ".")))
    assert len(ehr) == len(rows) - 1
    df = read_table(path)
    weight = df.loc[df["Case ID"] == first[0], "Weight (lbs)"].iloc[0]
    assert float(weight) == pytest.approx(float(first[w].replace(",", "."))) and "Pleural invasion" in df.columns


def test_ambiguous_semicolon_table_is_refused_naming_both_readings(tmp_path):
    from lungai.fusion.data import load_ehr

    path = _write(tmp_path / "both.csv", _euro(_rows()), ";")     # the real header: commas in a name
    with pytest.raises(InputError, match=r"could be comma- or semicolon-separated: read with commas its header has "
                                         r"\d+ columns .* with semicolons \d+ columns"):
        load_ehr(path)


def test_thousands_separator_in_semicolon_table_is_refused(tmp_path):
    from lungai.rp.checks import read_table

    rows = _euro(_rows())
    rows[0][rows[0].index(PLEURAL)] = "Pleural invasion"
    rows[5][rows[0].index("Pack Years")] = "1.234,5"
    path = _write(tmp_path / "k.csv", rows, ";")
    with pytest.raises(InputError, match=r"'1.234,5' in column 'Pack Years' \(line 6\).*thousands separator") as e:
        read_table(path)
    assert "1234,5 if the '.' separates thousands" in e.value.fix


def _with_typo(tmp_path):
    """The real table, a note cell over two lines (quoted) in row 3, a blank line after row 10, Age '7O' in row 50."""
    rows = _rows()
    notes = rows[0].index("Patient affiliation")
    rows[3][notes] = rows[3][notes] + "\nsecond line of a note"
    age = rows[0].index("Age at Histological Diagnosis")
    rows[50][age] = "7O"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows(rows[:11])
    text.write("\n")
    writer.writerows(rows[11:])
    path = tmp_path / "typo.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    line = next(k for k, t in enumerate(text.getvalue().split("\n"), start=1) if ",7O," in t)
    assert line == 53
    return path, rows[50][0]


def test_stage_value_error_names_the_file_line(tmp_path):
    from lungai.fusion.data import load_ehr

    path, patient = _with_typo(tmp_path)
    with pytest.raises(InputError, match=rf"'7O' for patient {patient} \(CSV line 53\)"):
        load_ehr(path)


def test_rp_value_error_names_the_file_line(tmp_path):
    from lungai.rp.checks import read_tables, where_in_files

    path, _ = _with_typo(tmp_path)
    df = read_tables([path])
    assert where_in_files(df, "Age at Histological Diagnosis", [49]) == "CSV lines [53]"


def test_manifest_lines_skip_rows_of_empty_cells(tmp_path):
    from lungai.io.tables import data_lines

    p = tmp_path / "m.csv"
    p.write_text('case,image,mask\n"a\nb",x,y\n,,\n\nc,x,y\n', encoding="utf-8")
    assert data_lines(p) == [2, 6]


def test_utf16_table_is_named(tmp_path):
    from lungai.fusion.data import load_ehr

    p = tmp_path / "unicode.txt"
    p.write_bytes("Case ID\tAge\nR01-001\t70\n".encode("utf-16"))
    with pytest.raises(InputError, match="is UTF-16 text .*Unicode Text") as e:
        load_ehr(p)
    assert "UTF-8" in e.value.fix
