"""QA fusion62: the stage model's messages wrote every count with "(s)" ("1 patient(s) have RNA values ...", "RNA: 1
missing value(s) in 1 patient(s)", "the gene graph has 1 node(s) (0 to 0)", "EHR column(s) equal to ..."): each
noun (and the verb and pronoun after it) now takes the number of its count (``lungai.errors.counted`` / ``agree``)."""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError


def _notes(fn, *args, **kw) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kw)
    return " | ".join(str(w.message) for w in caught)


def _report(**kw) -> SimpleNamespace:
    report = {"n_patients": 5, "with": {"ehr": 5, "rna": 5, "ct": 0}, "all_three": 0, **kw}
    return SimpleNamespace(report=report)


def test_availability_lines_count_patients_ids_and_missing_values_in_their_number():
    from lungai.fusion.data import availability_text

    one = availability_text(_report(unlabelled=["P9"], rna_not_joined=["X1"],
                                    rna_missing_values={"values": 1, "of": 10, "patients": 1}))
    assert "1 patient without a label left out" in one
    assert "1 RNA ID not in the EHR table: X1" in one
    assert "RNA: 1 missing value in 1 patient (10.0 % of 10)" in one
    many = availability_text(_report(unlabelled=["P8", "P9"], ct_not_joined=["X1", "X2"],
                                     rna_missing_values={"values": 3, "of": 10, "patients": 2}))
    assert "2 patients without a label left out" in many
    assert "2 CT IDs not in the EHR table: X1, X2" in many
    assert "RNA: 3 missing values in 2 patients (30.0 % of 10)" in many
    assert "(s)" not in one + many


def test_infinite_value_messages_take_the_number_of_their_count():
    from lungai.fusion.data import infinite_error, infinite_status, warn_unused_infinite

    assert infinite_error({"P1": ["'TP53' = inf"]}, "rna.csv").problem.startswith("rna.csv has 1 infinite value: ")
    assert infinite_error({"P1": ["'TP53' = inf", "'EGFR' = -inf"]}, "rna.csv").problem.startswith(
        "rna.csv has 2 infinite values: ")
    assert infinite_status(["'TP53' = inf"]).startswith("not computed: infinite RNA value ('TP53' = inf)")
    assert infinite_status(["'TP53' = inf", "'A' = -inf"]).startswith("not computed: infinite RNA values ('TP53'")
    one = _notes(warn_unused_infinite, {"P1": ["'TP53' = inf"]}, "rna.csv")
    assert one.startswith("1 patient of rna.csv not used here has an infinite value and is left out: P1"), one
    many = _notes(warn_unused_infinite, {"P1": ["'TP53' = inf"], "P2": ["'A' = inf"]}, "rna.csv")
    assert many.startswith("2 patients of rna.csv not used here have infinite values and are left out: "), many


def test_rna_refusals_count_values_and_genes_in_their_number():
    from lungai.fusion.data import check_unique_genes, numeric_rna

    with pytest.raises(InputError) as err:
        numeric_rna(pd.DataFrame({"TP53": ["1.0", "x"], "EGFR": ["2", "3"]}, index=["P1", "P2"]), "rna.csv")
    assert err.value.problem.startswith("rna.csv has 1 non-numeric value: gene 'TP53' = 'x' for patient P2")
    assert err.value.fix.startswith("correct the value to a number")
    with pytest.raises(InputError) as err:
        numeric_rna(pd.DataFrame({"TP53": ["y", "x"], "EGFR": ["2", "3"]}, index=["P1", "P2"]), "rna.csv")
    assert err.value.problem.startswith("rna.csv has 2 non-numeric values: ")
    assert err.value.fix.startswith("correct the values to numbers")
    with pytest.raises(InputError, match=r"duplicate gene names: 1 gene occurs more than once: \['A'\]"):
        check_unique_genes(["A", "B", "A"], "rna.csv")
    with pytest.raises(InputError, match=r"duplicate gene names: 2 genes occur more than once: \['A', 'B'\]"):
        check_unique_genes(["A", "B", "A", "B"], "rna.csv")


def test_ehr_text_in_numeric_columns_counts_columns_and_values(tmp_path):
    from lungai.fusion.data import check_numeric_text

    rows = "".join(f"P{k},{60 + k},{1 + k}\n" for k in range(20))
    (tmp_path / "one.csv").write_text("id,age,fev1\n" + rows + "P20,7O,3\n", encoding="utf-8")
    df = pd.read_csv(tmp_path / "one.csv", dtype=str).set_index("id")
    with pytest.raises(InputError) as err:
        check_numeric_text(df, tmp_path / "one.csv")
    assert "has text in numeric column: 'age' = '7O'" in err.value.problem
    assert err.value.fix.startswith("correct the value (e.g. the letter O")
    (tmp_path / "two.csv").write_text("id,age,fev1\n" + rows + "P20,7O,x1\n", encoding="utf-8")
    df = pd.read_csv(tmp_path / "two.csv", dtype=str).set_index("id")
    with pytest.raises(InputError) as err:
        check_numeric_text(df, tmp_path / "two.csv")
    assert "has text in numeric columns: 'age' = '7O'" in err.value.problem
    assert err.value.fix.startswith("correct the values (e.g. the letter O")


def test_ids_of_other_tables_not_in_the_ehr_table_are_counted_in_their_number(tmp_path):
    from lungai.fusion.data import load_cohort

    (tmp_path / "ehr.csv").write_text("id,age\nA,60\nB,61\nC,62\n", encoding="utf-8")
    (tmp_path / "rna1.csv").write_text("id,G1,G2\nA,0.1,0.2\nB,0.3,0.1\nX,0.2,0.2\n", encoding="utf-8")
    (tmp_path / "rna2.csv").write_text("id,G1,G2\nA,0.1,0.2\nX,0.3,0.1\nY,0.2,0.2\n", encoding="utf-8")
    one = _notes(load_cohort, tmp_path / "ehr.csv", tmp_path / "rna1.csv", require_label=False)
    assert (f"1 RNA patient ID is not in the EHR table {tmp_path / 'ehr.csv'}: ['X'] - predicted without EHR, from "
            "what it has where the model uses it; check the id") in one, one
    many = _notes(load_cohort, tmp_path / "ehr.csv", tmp_path / "rna2.csv", require_label=False)
    assert (f"2 RNA patient IDs are not in the EHR table {tmp_path / 'ehr.csv'}: ['X', 'Y'] - predicted without "
            "EHR, from what they have where the model uses it; check the ids") in many, many


def test_label_copies_are_named_in_their_number():
    from lungai.fusion.data import check_label_leaks

    labels = pd.Series(["I", "II", "III"] * 20, index=[f"P{k}" for k in range(60)])
    one = pd.DataFrame({"copy": labels.to_numpy(), "age": np.arange(60.0)}, index=labels.index)
    with pytest.raises(InputError) as err:
        check_label_leaks(one, labels)
    assert err.value.problem.startswith("EHR column equal to the label: 'copy' (100 % of 60 patients); as a "
                                        "feature it would leak the answer"), err.value.problem
    assert err.value.fix.startswith("leave it out: --drop 'copy'")
    two = one.assign(again=labels.to_numpy())
    with pytest.raises(InputError) as err:
        check_label_leaks(two, labels)
    assert err.value.problem.startswith("EHR columns equal to the label: 'copy' (100 % of 60 patients), 'again' "
                                        "(100 % of 60 patients); as features they would leak"), err.value.problem
    assert err.value.fix.startswith("leave them out: --drop 'copy' --drop 'again'")


def test_model_rna_checks_count_patients_in_their_number():
    from lungai.fusion.model_io import off_scale_text, sparse_rna_text

    one = off_scale_text({"off_scale": {"P1": 6.7}})
    assert one.startswith("1 patient has RNA values on another scale") and "): its RNA input is far" in one
    assert one.endswith("check how its RNA was normalised")
    many = off_scale_text({"off_scale": {"P1": 6.7, "P2": 7.1}})
    assert many.startswith("2 patients have RNA values on another scale") and "): their RNA input is far" in many
    one = sparse_rna_text({"sparse": {"P1": 0.9}, "n_model_genes": 500})
    assert one.startswith("1 patient lacks more than") and one.endswith("check its RNA data")
    many = sparse_rna_text({"sparse": {"P1": 0.9, "P2": 0.8}, "n_model_genes": 500})
    assert many.startswith("2 patients lack more than") and many.endswith("check their RNA data")


def test_gene_graph_check_counts_the_nodes_in_their_number(tmp_path):
    torch = pytest.importorskip("torch")
    from lungai.fusion.model_io import _graph_edges

    def genes(n):
        return SimpleNamespace(genes=[f"G{k}" for k in range(n)], mean=np.zeros(n), sd=np.ones(n))

    with pytest.raises(InputError) as err:
        _graph_edges(torch.tensor([[0], [3]]), genes(1), tmp_path / "w.pt")
    assert err.value.problem.endswith("node numbers from 0 to 3; the gene graph has 1 node (0)"), err.value.problem
    with pytest.raises(InputError) as err:
        _graph_edges(torch.tensor([[0], [3]]), genes(2), tmp_path / "w.pt")
    assert err.value.problem.endswith("the gene graph has 2 nodes (0 to 1)"), err.value.problem


def test_absent_ehr_columns_and_old_missing_word_levels_are_named_in_their_number():
    from lungai.fusion.api import absent_ehr_text
    from lungai.fusion.preprocess import EHREncoder

    assert absent_ehr_text(["age"]).startswith("EHR column of the model not in the EHR table: 'age' - treated")
    assert absent_ehr_text(["age", "sex"]).startswith("EHR columns of the model not in the EHR table: 'age', 'sex'")
    one = EHREncoder().fit(pd.DataFrame({"smoking": ["Current", ".", "Former"] * 4, "age": np.arange(12.0)}))
    text = _notes(one.warn_missing_word_levels)
    assert "its EHR level '.' of 'smoking' is read as missing now" in text, text
    two = EHREncoder().fit(pd.DataFrame({"smoking": ["Current", ".", "Former", "-"] * 3, "age": np.arange(12.0)}))
    text = _notes(two.warn_missing_word_levels)
    assert "its EHR levels '-', '.' of 'smoking' are read as missing now" in text or \
        "its EHR levels '.', '-' of 'smoking' are read as missing now" in text, text


def test_gene_variances_file_of_one_column_is_refused_in_good_english(tmp_path, monkeypatch):
    from lungai.fusion import preprocess

    (tmp_path / "v.csv").write_text("TP53\nEGFR\n", encoding="utf-8")
    # the CSV sniffer splits even a one-column file: the table as read is given here
    monkeypatch.setattr(preprocess.pd, "read_csv", lambda *a, **k: pd.DataFrame({0: ["TP53", "EGFR"]}))
    with pytest.raises(InputError) as err:
        preprocess.read_gene_variances(tmp_path / "v.csv")
    assert err.value.problem == f"{tmp_path / 'v.csv'} has 1 column", err.value.problem


def test_inner_cv_refusal_counts_the_patients_in_their_number():
    from lungai.fusion.cv import check_inner_labels
    from lungai.fusion.data import Cohort

    ids = [f"P{k:02d}" for k in range(30)]
    labels = pd.Series(["A"] * 26 + ["C"] * 4, index=ids)
    cohort = Cohort(ids, pd.DataFrame({"age": np.arange(30.0)}, index=ids), None, {}, labels, {})
    with pytest.raises(InputError) as err:
        check_inner_labels(cohort, ["A", "C"], folds=2, inner_folds=3, seed=0)
    assert "class 'C' has 2 patients in the training part of outer fold" in err.value.problem, err.value.problem
