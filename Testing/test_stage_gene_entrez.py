"""An RNA matrix whose genes are written TCGA-style, ``SYMBOL|Entrez`` (``TOR1AIP1|26092``: TCGA's RNA-seq matrices,
cBioPortal exports), is matched to the model's gene symbols on the part before '|', said in a note; a symbol under two
Entrez IDs is refused, naming both and the fix.

QA stagefollow70 on NSCLC-Radiogenomics: `df_zscore.csv` with its genes renamed to that form, given to a model trained
on it, was refused with "1000 of the model's 1000 genes are missing from the RNA matrix (e.g. 3-Mar, A2M, ...)" and only
the generic fix "check that gene identifiers match the training cohort"."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.fusion import model_io
from lungai.fusion.data import load_rna
from lungai.fusion.preprocess import GeneSelector
from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 2, "--top-k", 6, "--neighbours", 2, "--inner-folds", 1, "--baselines", "logreg"]


def _entrez(path, out, start=1000, only=None):
    """The genes x patients matrix ``path`` with each gene (or those in ``only``) renamed 'GENE|<number>'."""
    rna = pd.read_csv(path, index_col=0)
    rna.index = [f"{g}|{start + i}" if only is None or g in only else g for i, g in enumerate(rna.index)]
    rna.to_csv(out)
    return out


def test_gene_symbol_reads_the_tcga_form_only():
    from lungai.fusion.preprocess import gene_symbol

    assert gene_symbol("TOR1AIP1|26092") == "TOR1AIP1"
    assert gene_symbol("3-Mar|1474") == "3-Mar"
    assert gene_symbol("?|100130426") is None
    assert gene_symbol("TOR1AIP1") is None and gene_symbol("ENSG00000141510.16") is None


@pytest.mark.shared_data
def test_real_matrix_with_symbol_entrez_names_is_matched_to_the_models_genes(shared_data, tmp_path):
    real = shared_data / "nsclc_radiogenomics" / "df_zscore.csv"
    rna = load_rna(real, warn=False)
    sel = GeneSelector(200, standardised=False).fit(rna)
    pipe = types.SimpleNamespace(genes=sel)
    renamed = load_rna(_entrez(real, tmp_path / "tcga.csv"), warn=False)
    assert all("|" in str(c) for c in renamed.columns)
    check = model_io.rna_gene_check(pipe, renamed)          # before: refused, 200 of 200 genes missing
    assert check["missing"] == [] and len(check["version_matched"]) == 200
    ids = list(rna.index)
    np.testing.assert_array_equal(sel.transform(renamed, ids), sel.transform(rna, ids))
    text = model_io.version_matched_text(check)
    assert text.startswith(f"200 of the model's 200 genes were found by the gene symbol of a TCGA-style "
                           f"'SYMBOL|Entrez' name ({sel.genes[0]} as {sel.genes[0]}|")
    assert "Ensembl" not in text


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    paths = small_stage_cohort(root, 12)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "--modalities",
                      "ehr,rna", "-o", root / "m", *FAST]) == 0
    return {"dir": root / "m", "ehr": paths["ehr"], "rna": paths["rna"],
            "genes": list(model_io.load(root / "m")[0].genes.genes)}


def test_predict_on_symbol_entrez_names_gives_the_same_stages_and_says_how_genes_were_found(model, tmp_path, capsys):
    assert stage_cli(["predict", "--model", model["dir"], "--ehr", model["ehr"], "--rna", model["rna"],
                      "-o", tmp_path / "plain"]) == 0
    capsys.readouterr()
    tcga = _entrez(model["rna"], tmp_path / "tcga.csv")
    assert stage_cli(["predict", "--model", model["dir"], "--ehr", model["ehr"], "--rna", tcga,
                      "-o", tmp_path / "tcga"]) == 0
    err = capsys.readouterr().err
    assert (f"6 of the model's 6 genes were found by the gene symbol of a TCGA-style 'SYMBOL|Entrez' name "
            f"({model['genes'][0]} as {model['genes'][0]}|") in err
    assert "missing from the RNA matrix" not in err
    assert ((tmp_path / "tcga" / "predictions.csv").read_text(encoding="utf-8")
            == (tmp_path / "plain" / "predictions.csv").read_text(encoding="utf-8"))


def test_a_symbol_under_two_entrez_ids_is_refused_naming_both(model, tmp_path):
    from lungai.fusion.api import predict_stage

    gene = model["genes"][0]
    rna = pd.read_csv(_entrez(model["rna"], tmp_path / "tcga.csv"), index_col=0)
    twin = rna.loc[[f"{gene}|{1000 + list(pd.read_csv(model['rna'], index_col=0).index).index(gene)}"]]
    twin.index = [f"{gene}|7"]
    pd.concat([rna, twin]).to_csv(tmp_path / "twice.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match=rf"1 of the model's genes only as 'SYMBOL\|Entrez' names, each under two "
                                             rf"or more Entrez IDs \({gene}: {gene}\|\d+, {gene}\|7\)") as err:
            predict_stage(model["dir"], ehr=model["ehr"], rna=tmp_path / "twice.csv")
    assert err.value.fix.startswith(f"rename the row (or column) that holds {gene} to the plain symbol {gene!r}")


def test_a_model_trained_on_symbol_entrez_names_finds_plain_symbols():
    sel = GeneSelector(2)
    sel.genes = ["TP53|7157", "EGFR|1956"]
    rna = pd.DataFrame({"TP53": [1.0], "EGFR": [2.0], "KRAS": [3.0]})
    assert sel.gene_columns(rna) == {"TP53|7157": "TP53", "EGFR|1956": "EGFR"}
