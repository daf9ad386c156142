"""Gene names a spreadsheet (Excel) made into dates ('3-Mar' = MARCH3, now MARCHF3; '7-Sep' = SEPT7) are named in a
note when the RNA matrix is read, with the fix.  QA stagefollow70: NSCLC-Radiogenomics' df_zscore.csv has '3-Mar',
unsaid - matched as written, a matrix or model that writes the symbol does not find it.  QA stage71: the same names in
the --gene-variances file (gene_variances.csv has 8, 1-Mar ... 9-Mar) and as the symbol of a TCGA-style
'SYMBOL|Entrez' name ('3-Mar|10299') were not said."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from lungai.errors import InputNote
from lungai.fusion.data import load_rna
from lungai.fusion.preprocess import GeneSelector, read_gene_variances


def _notes(path, read=lambda p: load_rna(p, warn=False)):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read(path)
    return [str(w.message) for w in caught if issubclass(w.category, InputNote) and "spreadsheet" in str(w.message)]


@pytest.mark.shared_data
def test_the_real_matrixs_date_gene_name_is_said_with_the_fix(shared_data):
    path = shared_data / "nsclc_radiogenomics" / "df_zscore.csv"
    notes = _notes(path)
    assert notes == [f"the RNA matrix {path}: 1 gene name is a date that a spreadsheet (Excel) made of a gene symbol "
                     "(3-Mar = MARCHF3, formerly MARCH3); gene names are matched as written, so a matrix (or model) "
                     "that writes the symbol does not find it - rename it alike in every file of the study - the RNA "
                     "matrices, training and new, and the gene variances (--gene-variances): 3-Mar -> MARCHF3 -, or "
                     "export the matrix again with the gene column as text"]


def test_several_forms_are_named_and_other_genes_are_not(tmp_path):
    genes = ["1-Mar", "Sep-07", "1-DEC", "2-Dec", "TP53", "MARCHF5", "H2-Mar"]
    pd.DataFrame([[0.1 * i + j for i in range(len(genes))] for j in range(3)], index=["P1", "P2", "P3"],
                 columns=genes).to_csv(tmp_path / "rna.csv")
    (note,) = _notes(tmp_path / "rna.csv")
    assert ("3 gene names are dates that a spreadsheet (Excel) made of a gene symbol (1-Mar = MARCHF1, formerly "
            "MARCH1; Sep-07 = SEPTIN7, formerly SEPT7; 1-DEC = DELEC1, formerly DEC1)") in note
    assert "rename them alike" in note and "2-Dec" not in note and "TP53" not in note


def test_a_matrix_without_such_names_gets_no_note(tmp_path):
    pd.DataFrame([[1.0, 2.0], [3.0, 4.5]], index=["P1", "P2"], columns=["TP53", "EGFR"]).to_csv(tmp_path / "rna.csv")
    assert _notes(tmp_path / "rna.csv") == []


@pytest.mark.shared_data
def test_the_real_gene_variances_date_names_are_said_with_the_fix(shared_data):
    path = shared_data / "nsclc_radiogenomics" / "gene_variances.csv"
    (note,) = _notes(path, read_gene_variances)
    assert note.startswith(f"the gene variances {path}: 8 gene names are dates that a spreadsheet (Excel) made of a "
                           "gene symbol (3-Mar = MARCHF3, formerly MARCH3; 1-Mar = MARCHF1, formerly MARCH1; ")
    assert ("an RNA matrix that writes the symbol finds no variance for them here (never selected by --top-k) - rename "
            "them alike in every file of the study - the RNA matrices, training and new, and the gene variances "
            "(--gene-variances): 3-Mar -> MARCHF3 -, or export the file again with the gene column as text") in note


def test_gene_variances_date_names_are_said_once_and_the_renamed_gene_is_never_selected(tmp_path):
    """The note says what happens: the matrix renamed as the RNA note says (MARCHF3) finds no variance for it."""
    (tmp_path / "var.csv").write_text("gene,variance\n7-Sep,0.9\nTP53,0.5\nEGFR,0.4\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        variances = read_gene_variances(tmp_path / "var.csv")
        read_gene_variances(tmp_path / "var.csv")          # read again (each training fold): not said again
        rna = pd.DataFrame([[1.0, 2.0, 3.0], [2.0, 1.0, 0.5], [0.1, 0.4, 2.0]], index=["P1", "P2", "P3"],
                           columns=["SEPTIN7", "TP53", "EGFR"])
        genes = GeneSelector(2, variances, "var.csv").fit(rna).genes
    notes = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
    assert [n for n in notes if "spreadsheet" in n] == [
        f"the gene variances {tmp_path / 'var.csv'}: 1 gene name is a date that a spreadsheet (Excel) made of a gene "
        "symbol (7-Sep = SEPTIN7, formerly SEPT7); gene names are matched as written, so an RNA matrix that writes the "
        "symbol finds no variance for it here (never selected by --top-k) - rename it alike in every file of the "
        "study - the RNA matrices, training and new, and the gene variances (--gene-variances): 7-Sep -> SEPTIN7 -, "
        "or export the file again with the gene column as text"]
    assert genes == ["TP53", "EGFR"]


def test_a_tcga_style_name_of_a_date_is_named_with_its_entrez_id_kept(tmp_path):
    genes = ["3-Mar|10299", "Sep-07|989", "TOR1AIP1|26092", "?|100130426", "2-Dec|1"]
    pd.DataFrame([[0.1 * i + j for i in range(len(genes))] for j in range(3)], index=["P1", "P2", "P3"],
                 columns=genes).to_csv(tmp_path / "rna.csv")
    (note,) = _notes(tmp_path / "rna.csv")
    assert ("2 gene names are dates that a spreadsheet (Excel) made of a gene symbol (3-Mar|10299 = MARCHF3, formerly "
            "MARCH3; Sep-07|989 = SEPTIN7, formerly SEPT7)") in note
    assert ": 3-Mar|10299 -> MARCHF3|10299 -, or export the matrix again" in note
    assert "TOR1AIP1" not in note and "2-Dec" not in note


def test_the_gene_variances_are_read_and_said_once_as_typed_and_resolved(tmp_path, monkeypatch):
    """`stage cv / train` read the --gene-variances file as typed (a relative path), then each training fold by its
    resolved path: the file was read twice and its notes said twice (QA stage71: the 8 date names of
    NSCLC-Radiogenomics' gene_variances.csv, as '../shared/...' and as '/work/shared/...')."""
    (tmp_path / "var.csv").write_text("gene,variance\n1-Mar,0.9\nTP53,0.5\nEGFR,\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_gene_variances("var.csv")
        read_gene_variances(tmp_path / "var.csv")
    notes = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
    assert [n for n in notes if "without a variance" in n] == [
        "the gene variances var.csv: 1 gene without a variance (never selected by --top-k): 'EGFR' (empty) (line 4)"]
    assert len(notes) == 2 and notes[0].startswith("the gene variances var.csv: 1 gene name is a date"), notes
