"""Gene names a spreadsheet (Excel) made into dates ('3-Mar' = MARCH3, now MARCHF3; '7-Sep' = SEPT7) are named in a
note when the RNA matrix is read, with the fix.  QA stagefollow70: NSCLC-Radiogenomics' df_zscore.csv has '3-Mar',
unsaid - matched as written, a matrix or model that writes the symbol does not find it."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from lungai.errors import InputNote
from lungai.fusion.data import load_rna


def _notes(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_rna(path, warn=False)
    return [str(w.message) for w in caught if issubclass(w.category, InputNote) and "spreadsheet" in str(w.message)]


@pytest.mark.shared_data
def test_the_real_matrixs_date_gene_name_is_said_with_the_fix(shared_data):
    path = shared_data / "nsclc_radiogenomics" / "df_zscore.csv"
    notes = _notes(path)
    assert notes == [f"the RNA matrix {path}: 1 gene name is a date that a spreadsheet (Excel) made of a gene symbol "
                     "(3-Mar = MARCHF3, formerly MARCH3); gene names are matched as written, so a matrix (or model) "
                     "that writes the symbol does not find it - rename it alike in every matrix of the study, training "
                     "and new (3-Mar -> MARCHF3), or export the matrix again with the gene column as text"]


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
