"""Gene selection on a per-gene standardised (z-scored) RNA matrix, and the fusion row's label naming the
branches actually trained (a cohort without CT)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError, InputNote
from lungai.fusion import model_io
from lungai.fusion.baseline import LABELS, BaselinePipeline, cohort_branches, fusion_label
from lungai.fusion.data import load_cohort
from lungai.fusion.pipeline import FusionConfig, FusionPipeline
from lungai.fusion.preprocess import GeneSelector, looks_standardised
from lungai.fusion.synthetic import make_cohort

CLASSES = ["I", "II", "III"]


@pytest.fixture(scope="module")
def zpaths(tmp_path_factory):
    """The synthetic cohort without CT, its RNA z-scored per gene over all patients (like df_zscore.csv),
    gene names reversed so that name order differs from file order, and a raw-variance file that ranks
    the planted module genes first."""
    out = tmp_path_factory.mktemp("stage_z")
    p = make_cohort(out, n=24, seed=3, n_genes=40, module_size=8, ct_shape=(16, 16, 16), ct_spacing=(6.0, 6.0, 5.0),
                    rna_shift=3.0)
    truth = json.loads(p["truth"].read_text(encoding="utf-8"))
    rna = pd.read_csv(p["rna"], index_col=0)                       # genes x patients
    z = rna.sub(rna.mean(axis=1), axis=0).div(rna.std(axis=1), axis=0)
    z.index = ["Z" + g if g not in truth["module_genes"] else "Y" + g for g in z.index]   # module genes sort first
    z.to_csv(out / "zscore.csv")
    module = ["Y" + g for g in truth["module_genes"]]
    raw = pd.Series(1.0, index=z.index)
    raw[module] = np.linspace(9.0, 5.0, len(module))
    raw["ZG0039"] = 20.0                                             # the highest raw variance: a non-module gene
    raw.rename("variance").to_csv(out / "variances.csv")
    return {"ehr": p["ehr"], "rna": out / "zscore.csv", "variances": out / "variances.csv", "module": module,
            "out": out}


def test_a_z_scored_matrix_is_detected_on_the_whole_cohort_not_per_fold(zpaths):
    cohort = load_cohort(zpaths["ehr"], zpaths["rna"], label="stage")
    assert cohort.report["rna_standardised"] is True
    fold = cohort.subset(cohort.ids[: len(cohort.ids) * 2 // 3])
    assert not looks_standardised(fold.rna)              # a training fold's variances differ by sampling ...
    assert fold.report["rna_standardised"] is True       # ... so the flag travels with the cohort
    raw = load_cohort(zpaths["ehr"], zpaths["rna"].parent / "rna.csv", label="stage")
    assert raw.report["rna_standardised"] is False


def test_top_k_on_a_standardised_matrix_keeps_all_genes_and_says_so(zpaths):
    cohort = load_cohort(zpaths["ehr"], zpaths["rna"], label="stage")
    fold = cohort.subset(cohort.ids[:16])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = GeneSelector(10, standardised=fold.report["rna_standardised"]).fit(fold.rna)
    assert len(sel.genes) == 40                          # not 10 genes by name order or sampling noise
    assert any("standardised" in str(w.message) for w in caught)
    assert "all genes" in sel.to_json()["ranking"] and "--gene-variances" in sel.note
    # the same without the cohort flag on the whole (equal-variance) matrix: detected there too
    assert len(GeneSelector(10).fit(cohort.rna).genes) == 40


def test_gene_variances_rank_a_standardised_matrix(zpaths):
    from lungai.fusion.preprocess import read_gene_variances

    cohort = load_cohort(zpaths["ehr"], zpaths["rna"], label="stage")
    var = read_gene_variances(zpaths["variances"])
    sel = GeneSelector(5, var, zpaths["variances"], True).fit(cohort.subset(cohort.ids[:16]).rna)
    assert sel.genes == ["ZG0039"] + zpaths["module"][:4]
    assert "raw variance" in sel.to_json()["ranking"]
    # the pipelines take the file from the config (--gene-variances) and record the ranking in the model
    cfg = FusionConfig(modalities=("ehr", "rna"), top_k=5, gene_variances=str(zpaths["variances"]), epochs=2,
                       neighbours=2)
    pipe = FusionPipeline(cfg, CLASSES).fit(cohort)
    assert pipe.genes.genes == sel.genes and pipe.config.gene_variances == str(zpaths["variances"])
    base = BaselinePipeline(CLASSES, "logreg", top_k=5, gene_variances=str(zpaths["variances"])).fit(cohort)
    assert base.genes.genes == sel.genes
    out = model_io.save(zpaths["out"] / "model", pipe, {"logreg": base}, "fusion")
    meta = json.loads((out / model_io.META).read_text(encoding="utf-8"))
    assert "raw variance" in meta["genes"]["ranking"] and meta["config"]["gene_variances"]
    assert "ranked by raw variance" in model_io.card_markdown(meta)
    back, _, _ = model_io.load(out)
    assert back.genes.genes == sel.genes


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


def test_cli_cv_on_a_standardised_matrix_without_ct_names_what_was_trained(tmp_path, zpaths, capsys):
    data = ["--ehr", zpaths["ehr"], "--rna", zpaths["rna"], "--label", "stage"]
    fast = ["--epochs", 2, "--top-k", 10, "--neighbours", 2, "--baselines", "logreg"]
    assert _cli(["cv", *data, "-o", tmp_path / "cv", "--folds", 2, "--inner-folds", 1, *fast]) == 0
    err = capsys.readouterr().err
    assert "per-gene standardised" in err
    md = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")
    assert "fusion network (EHR MLP + RNA GAT, CT masked)" in md and "CT CNN" not in md
    assert md.count("all 40 genes are kept") == 1, md        # the selector's warning, once
    assert _cli(["train", *data, "--gene-variances", zpaths["variances"], "-o", tmp_path / "m", "--inner-folds", 1,
                 *fast]) == 0
    out = capsys.readouterr().out
    assert "fusion network (EHR MLP + RNA GAT, CT masked)" in out
    card = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    assert "fusion network (EHR MLP + RNA GAT, CT masked)" in card and "CT CNN" not in card
    meta = json.loads((tmp_path / "m" / model_io.META).read_text(encoding="utf-8"))
    assert meta["genes"]["genes"][0] == "ZG0039" and len(meta["genes"]["genes"]) == 10


def test_cv_writes_the_runs_data_warnings_into_comparison_md_and_metrics_json(tmp_path, zpaths, capsys):
    """The warnings about the data that `stage cv` said on the console ("3 of 40 genes have no variance in FILE",
    an RNA patient not in the EHR table, the genes without a variance in the --gene-variances file) were not in
    comparison.md nor metrics.json: the saved report did not show them.  Now both carry each warning once, and the
    console still says them."""
    variances = pd.read_csv(zpaths["variances"], index_col=0)
    gone = sorted(g for g in variances.index if g.startswith("ZG") and g != "ZG0039")[:3]
    variances.drop(index=gone).to_csv(tmp_path / "variances.csv")
    with (tmp_path / "variances.csv").open("a", encoding="utf-8") as fh:
        fh.write("UNSEEN,n/a\n")                        # a gene without a variance: said when the file is read
    rna = pd.read_csv(zpaths["rna"], index_col=0)
    rna["ZZ999"] = rna.iloc[:, 0]                         # a patient the EHR table does not have
    rna.to_csv(tmp_path / "rna.csv")
    args = ["cv", "--ehr", zpaths["ehr"], "--rna", tmp_path / "rna.csv", "--label", "stage", "--gene-variances",
            tmp_path / "variances.csv", "-o", tmp_path / "cv", "--folds", 2, "--inner-folds", 1, "--epochs", 1,
            "--top-k", 10, "--neighbours", 2, "--baselines", "logreg"]
    assert _cli(args) == 0
    err = capsys.readouterr().err
    said = ["3 of 40 genes have no variance in", "does not join the EHR table", "without a variance (never selected"]
    for text in said:
        assert text in err, (text, err)
    md = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")
    warned = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))["warnings"]
    for text in said:
        assert md.count(text) == 1, (text, md)
        assert sum(text in w for w in warned) == 1, (text, warned)
    assert ", ".join(gone) in md and "ZZ999" in md


def test_train_records_the_runs_data_warnings_in_the_model_without_patient_ids(tmp_path, zpaths, capsys):
    """`stage train` said its data warnings on the console only (an RNA patient not in the EHR table, genes without a
    variance in --gene-variances, "N of 40 genes have no variance"): model_card.md and stage_model.json did not
    carry them.  Now the model files keep each warning once - one naming patient IDs in its counted form (a locked
    model keeps no plain patient ID); the console still names the IDs."""
    variances = pd.read_csv(zpaths["variances"], index_col=0)
    with (tmp_path / "variances.csv").open("w", encoding="utf-8") as fh:
        variances.to_csv(fh)
        fh.write("UNSEEN,n/a\n")                       # a gene without a variance: said when the file is read
    rna = pd.read_csv(zpaths["rna"], index_col=0)
    rna["ZZ999"] = rna.iloc[:, 0]                         # a patient the EHR table does not have
    rna.to_csv(tmp_path / "rna.csv")
    data = ["--ehr", zpaths["ehr"], "--rna", tmp_path / "rna.csv", "--label", "stage"]
    assert _cli(["train", *data, "--gene-variances", tmp_path / "variances.csv", "-o", tmp_path / "m",
                 "--inner-folds", 1, "--epochs", 1, "--top-k", 10, "--neighbours", 2, "--baselines", "none"]) == 0
    err = capsys.readouterr().err
    assert "1 RNA patient ID does not join the EHR table and is ignored: ['ZZ999']" in err, err   # console: named
    meta_text = (tmp_path / "m" / model_io.META).read_text(encoding="utf-8")
    card = (tmp_path / "m" / "model_card.md").read_text(encoding="utf-8")
    warned = json.loads(meta_text)["warnings"]
    for text in ["1 RNA patient ID does not join the EHR table and is ignored", "without a variance (never selected"]:
        assert sum(text in w for w in warned) == 1, (text, warned)
        assert card.count(text) == 1, (text, card)
    assert "ZZ999" not in meta_text and "ZZ999" not in card          # the model keeps no plain patient ID


def test_validate_metrics_json_records_the_runs_data_warnings_as_said(tmp_path, zpaths, capsys):
    """`stage validate` said its data warnings (RNA IDs not in the EHR table ...) on the console only; its
    metrics.json - a local report, as stage cv's - now keeps each once, as said (the patient IDs named)."""
    data = ["--ehr", zpaths["ehr"], "--rna", zpaths["rna"], "--label", "stage"]
    assert _cli(["train", *data, "-o", tmp_path / "m", "--inner-folds", 1, "--epochs", 1, "--top-k", 10,
                 "--neighbours", 2, "--baselines", "none"]) == 0
    rna = pd.read_csv(zpaths["rna"], index_col=0)
    rna["ZZ998"], rna["ZZ999"] = rna.iloc[:, 0], rna.iloc[:, 1]     # patients the EHR table does not have
    rna.to_csv(tmp_path / "rna.csv")
    assert _cli(["validate", "--ehr", zpaths["ehr"], "--rna", tmp_path / "rna.csv", "--label", "stage", "--model",
                 tmp_path / "m", "-o", tmp_path / "v", "--include-training-patients"]) == 0
    assert "2 RNA patient IDs do not join the EHR table" in capsys.readouterr().err
    warned = json.loads((tmp_path / "v" / "metrics.json").read_text(encoding="utf-8"))["warnings"]
    joined = [w for w in warned if "do not join the EHR table" in w]
    assert len(joined) == 1 and "ZZ998" in joined[0] and "ZZ999" in joined[0], warned   # a local report: named


def test_cv_single_modality_rows_score_the_patients_with_that_modality(tmp_path, zpaths, capsys):
    """`stage cv --single-modality` scored each `<m>_only` network on every patient: on NSCLC-Radiogenomics (no CT)
    a `ct_only` row (macro-F1 0.113: one constant prediction, no patient had a CT) and an `rna_only` row whose 32
    patients without RNA got the masking token's constant prediction, counted as results.  Now a modality no patient
    has gives no row (said in a note), and a row is scored on the patients with its modality only (the others' OOF
    probabilities left empty), said in a note."""
    rna = pd.read_csv(zpaths["rna"], index_col=0)            # genes x patients
    gone = sorted(rna.columns)[:6]
    rna.drop(columns=gone).to_csv(tmp_path / "rna.csv")
    assert _cli(["cv", "--ehr", zpaths["ehr"], "--rna", tmp_path / "rna.csv", "--label", "stage", "--modalities",
                 "ehr,rna,ct", "--single-modality", "-o", tmp_path / "cv", "--folds", 2, "--inner-folds", 1,
                 "--epochs", 1, "--top-k", 10, "--neighbours", 2, "--baselines", "none"]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text(encoding="utf-8"))
    assert sorted(metrics["models"]) == ["ehr_only", "fusion", "rna_only"], sorted(metrics["models"])
    md = (tmp_path / "cv" / "comparison.md").read_text(encoding="utf-8")
    table = md.split("\n\n")[1]
    assert "ct_only" not in table and "CT only" not in table
    # the rows named as docs/stage.md names them (before: the raw `ehr_only` / `rna_only`)
    assert "| EHR only (MLP) |" in table and "| RNA only (GAT) |" in table and "_only" not in table, table
    assert metrics["labels"]["rna_only"] == "RNA only (GAT)"
    # no --ct given: said so (QA stagefollow65: before, "no patient has CT", as if the manifest's patients lacked it)
    assert "--single-modality: no CT manifest given (--ct): no CT only (3D CNN) row (a network without input answers " \
           "one constant)" in metrics["notes"], metrics["notes"]
    oof = pd.read_csv(tmp_path / "cv" / "oof_predictions.csv")
    without = ~oof.patient_id.astype(str).isin(set(rna.columns) - set(gone))
    assert without.sum() >= 6 and oof.patient_id.astype(str).isin(gone).sum() == 6
    assert oof.loc[without, [f"rna_only_p_{c}" for c in CLASSES]].isna().all().all()
    assert oof.loc[~without, [f"rna_only_p_{c}" for c in CLASSES]].notna().all().all()
    assert oof[[f"ehr_only_p_{c}" for c in CLASSES]].notna().all().all()
    with_rna = oof[~without]
    pred = with_rna[[f"rna_only_p_{c}" for c in CLASSES]].to_numpy().argmax(1)
    accuracy = float((np.array(CLASSES)[pred] == with_rna.label.astype(str).to_numpy()).mean())
    assert metrics["models"]["rna_only"]["accuracy"]["pooled"] == pytest.approx(accuracy)
    assert metrics["models"]["rna_only"]["n_scored"] == len(with_rna)
    assert any(n.startswith(f"RNA only (GAT) is scored on the {len(with_rna)} patients with RNA") and "rna_only_p_*" in n
               for n in metrics["notes"]), metrics["notes"]
    assert any("no CT only (3D CNN) row" in n for n in metrics["notes"]), metrics["notes"]


def test_fusion_label_lists_the_trained_branches(zpaths):
    assert LABELS["fusion"] == "fusion network (EHR MLP + RNA GAT + CT CNN)"
    assert fusion_label(["ehr", "rna"], ["ehr", "rna", "ct"]) == "fusion network (EHR MLP + RNA GAT, CT masked)"
    assert fusion_label(["ehr"], ["ehr", "rna"]) == "fusion network (EHR MLP, RNA left out)"
    cohort = load_cohort(zpaths["ehr"], zpaths["rna"], label="stage")
    assert cohort_branches(("ehr", "rna", "ct"), cohort) == ["ehr", "rna"]


@pytest.mark.parametrize("text", ["TP53\nEGFR\n", "11\n22\n33\n", "gene\nTP53\nEGFR\n"])
def test_gene_variances_one_column_file_named_as_such(tmp_path, text):
    """A one-column file is said to have one column, not split at a letter or digit of its values by pandas'
    sniffer (sep=None: "TP53\\nEGFR" became 2 columns, "11\\n22\\n33" 3, and the message was "holds no numeric gene
    variance")."""
    from lungai.fusion.preprocess import read_gene_variances

    path = tmp_path / "variances.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="has 1 column") as e:
        read_gene_variances(path)
    assert "two columns: gene, raw variance" in e.value.fix


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_gene_variances_delimiters_sniffed(tmp_path, sep):
    """Comma, tab, ';' and '|' tables are read whatever the extension; a '|' inside TCGA gene names
    (TP53|7157) with commas between the columns stays part of the name."""
    from lungai.fusion.preprocess import read_gene_variances

    path = tmp_path / "variances.csv"
    path.write_text(f"gene{sep}variance\nTP53{sep}1.5\nEGFR{sep}2\n", encoding="utf-8")
    assert read_gene_variances(path).to_dict() == {"TP53": 1.5, "EGFR": 2.0}
    tcga = tmp_path / "tcga.csv"
    tcga.write_text("TP53|7157,1.5\nEGFR|1956,2.0\nKRAS|3845,0.5\n", encoding="utf-8")
    assert read_gene_variances(tcga).to_dict() == {"TP53|7157": 1.5, "EGFR|1956": 2.0, "KRAS|3845": 0.5}


def test_gene_variances_semicolon_decimal_comma(tmp_path):
    """A decimal-comma spreadsheet's CSV (';' between fields, 1,5 for 1.5) is read as lungai stage reads its other
    tables - before, its values were not numbers: "holds no numeric gene variance"."""
    from lungai.fusion.preprocess import read_gene_variances

    path = tmp_path / "variances.csv"
    path.write_text("gene;variance\nTP53;1,5\nEGFR;2\n", encoding="utf-8")
    assert read_gene_variances(path).to_dict() == {"TP53": 1.5, "EGFR": 2.0}


@pytest.mark.parametrize("header", ["gene;variance\n", ""])
def test_gene_variances_semicolon_thousands_separator_refused(tmp_path, header):
    """'1.234,5' in a ';' (decimal-comma) file - a thousands separator or a decimal point? - is refused naming the
    value and its line, as the other ';' tables of lungai (lungai.io.tables.check_thousands): before, it became NaN
    and the gene was dropped from the ranking without a word."""
    from lungai.fusion.preprocess import read_gene_variances

    path = tmp_path / "variances.csv"
    path.write_text(f"{header}TP53;0,5\nEGFR;1.234,5\nKRAS;2,25\n", encoding="utf-8")
    with pytest.raises(InputError, match="thousands separator") as e:
        read_gene_variances(path)
    assert "'1.234,5'" in str(e.value) and f"(line {3 if header else 2})" in str(e.value)
    assert "1234,5" in e.value.fix


def test_gene_variances_semicolon_decimal_comma_without_header(tmp_path):
    """A headerless ';' file with decimal commas splits alike with ',' too: read with ';' (no gene name holds a ';') -
    before, the sniffer's ',' made 'TP53;0' a gene of variance 5 and the real genes were never matched."""
    from lungai.fusion.preprocess import read_gene_variances

    path = tmp_path / "variances.csv"
    path.write_text("TP53;0,5\nEGFR;1,75\nKRAS;2,25\n", encoding="utf-8")
    assert read_gene_variances(path).to_dict() == {"TP53": 0.5, "EGFR": 1.75, "KRAS": 2.25}


def _variances_file(path, sep, rows, header=True):
    """A gene-variances table with ``sep`` between the fields; a ';' file writes its numbers with decimal commas,
    as a spreadsheet in a decimal-comma locale saves it."""
    text = [f"gene{sep}variance"] if header else []
    for gene, value in rows:
        value = str(value)
        text.append(f"{gene}{sep}{value.replace('.', ',') if sep == ';' else value}")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_gene_variances_missing_words_are_named_not_dropped_silently(tmp_path, sep):
    """A missing-value word ('n/a', 'NA', '-') or an empty cell leaves its gene without a variance - never selected
    by --top-k - and a warning names the gene, the value and its line, in a ',', ';' (decimal-comma) and tab file
    alike.  Before, such genes (here three of the four highest raw variances) left the ranking without a word."""
    from lungai.fusion.preprocess import read_gene_variances

    rows = [("TOR1AIP1", 8.25), ("CHD7", "n/a"), ("ZFYVE26", "NA"), ("NAA38", "-"), ("DLG2", ""), ("DNAL1", 4.12)]
    path = _variances_file(tmp_path / "variances.csv", sep, rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        var = read_gene_variances(path)
    assert var.to_dict() == {"TOR1AIP1": 8.25, "DNAL1": 4.12}
    notes = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
    assert len(notes) == 1, notes
    assert "4 genes without a variance (never selected by --top-k)" in notes[0], notes[0]
    for said in ("'CHD7' = 'n/a' (line 3)", "'ZFYVE26' = 'NA' (line 4)", "'NAA38' = '-' (line 5)",
                 "'DLG2' (empty) (line 6)"):
        assert said in notes[0], notes[0]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("header", [True, False])
def test_gene_variances_other_text_is_refused_naming_gene_value_and_line(tmp_path, sep, header):
    """Other text in a value cell (a spreadsheet error '#DIV/0!', a typo) is refused, naming gene, value and line,
    whatever the delimiter - as the RNA matrix refuses it; before, the gene was dropped without a word."""
    from lungai.fusion.preprocess import read_gene_variances

    rows = [("TOR1AIP1", 8.25), ("CASP2", "#DIV/0!"), ("DLG2", "4.l"), ("DNAL1", 4.12)]
    path = _variances_file(tmp_path / "variances.csv", sep, rows, header=header)
    with pytest.raises(InputError, match="2 values that are not variances") as e:
        read_gene_variances(path)
    line = 3 if header else 2
    assert f"gene 'CASP2' = '#DIV/0!' (line {line})" in str(e.value), str(e.value)
    assert f"gene 'DLG2' = '4{',' if sep == ';' else '.'}l' (line {line + 1})" in str(e.value), str(e.value)
    assert "leave the cell empty" in e.value.fix


def test_gene_variances_decimal_comma_negative_infinite_and_repeated_genes_refused(tmp_path):
    """In a ',' file a quoted decimal comma ("8,25", read as 8.25 in a ';' file) is refused with its fix; a negative or
    infinite variance and a gene named twice are refused too - before, "8,25" dropped its gene silently, -2 and inf
    were ranked (inf first), and the second row of a gene was ignored."""
    from lungai.fusion.preprocess import read_gene_variances

    comma = tmp_path / "comma.csv"
    comma.write_text('gene,variance\nTOR1AIP1,"8,25"\nCHD7,7.3\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"gene 'TOR1AIP1' = '8,25' \(type 8.25: a decimal point, not a comma\) "
                                         r"\(line 2\)") as e:
        read_gene_variances(comma)
    assert "decimal point" in e.value.fix
    for value in ("-2", "inf", "1e400"):
        bad = _variances_file(tmp_path / f"bad{value}.csv", ",", [("TP53", 1.5), ("EGFR", value)])
        with pytest.raises(InputError, match=f"gene 'EGFR' = '{value}' \\(line 3\\): a variance is a finite number"):
            read_gene_variances(bad)
    twice = _variances_file(tmp_path / "twice.csv", ";", [("TP53", 1.5), ("EGFR", 2.0), ("TP53", 0.5)])
    with pytest.raises(InputError, match=r"duplicate gene names: 1 gene occurs more than once: \['TP53'\]"):
        read_gene_variances(twice)
    three = tmp_path / "three.csv"
    three.write_text('"","gene","variance"\n"1","TP53",1.5\n"2","EGFR",2\n', encoding="utf-8")   # R's write.csv
    with pytest.raises(InputError, match="have 3 columns"):
        read_gene_variances(three)


@pytest.mark.shared_data
def test_real_gene_variances_with_text_read_alike_in_comma_and_semicolon_files(shared_data, tmp_path):
    """NSCLC-Radiogenomics' gene_variances.csv reads all 10,693 genes as before; a copy with 'n/a' / '-' for three
    of its highest-variance genes names them in a ',' file and in its decimal-comma ';' export alike, and reads the
    same variances from both."""
    from lungai.fusion.preprocess import read_gene_variances

    real = shared_data / "nsclc_radiogenomics" / "gene_variances.csv"
    var = read_gene_variances(real)
    assert len(var) == 10693 and var.index[0] == "TOR1AIP1" and var["CHD7"] == pytest.approx(7.297719919468686)
    rows = [(g, v) for g, v in var.items()]
    rows[1], rows[2], rows[3] = (rows[1][0], "n/a"), (rows[2][0], "-"), (rows[3][0], "NA")
    read = {}
    for sep, name in ((",", "comma.csv"), (";", "semi.csv")):
        path = _variances_file(tmp_path / name, sep, [(g, repr(v) if isinstance(v, float) else v) for g, v in rows])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read[sep] = read_gene_variances(path)
        text = " ".join(str(w.message) for w in caught if issubclass(w.category, InputNote))
        assert "3 genes without a variance" in text and "'CHD7' = 'n/a' (line 3)" in text, text
    assert len(read[","]) == 10690 and read[","].to_dict() == read[";"].to_dict()


def test_rna_genes_absent_from_the_gene_variances_are_named(tmp_path):
    """Genes of the RNA matrix that the --gene-variances file lacks (or holds without a value) are never selected: the
    warning names them - before, only their count ('5 of 1000 genes have no variance'), so the user could not tell
    which genes (on NSCLC-Radiogenomics those of raw-variance rank 2-6) left the ranking."""
    from lungai.fusion.preprocess import read_gene_variances

    rng = np.random.default_rng(0)
    genes = [f"G{k:02d}" for k in range(14)]
    rna = pd.DataFrame(rng.normal(size=(6, len(genes))), columns=genes, index=[f"P{k}" for k in range(6)])
    path = _variances_file(tmp_path / "v.csv", ",", [(g, 1.0 + k) for k, g in enumerate(genes) if k not in (3, 5)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = GeneSelector(top_k=4, variances=read_gene_variances(path), variances_source=str(path)).fit(rna)
    assert sel.genes == ["G13", "G12", "G11", "G10"]
    assert sel.note.endswith("2 of 14 genes have no variance in " + str(path) + " and are never selected: G03, G05")
    assert any(str(w.message) == sel.note for w in caught)
    many = _variances_file(tmp_path / "many.csv", ",", [("G00", 1.0), ("G01", 2.0)])
    note = GeneSelector(top_k=1, variances=read_gene_variances(many), variances_source="many.csv").fit(rna).note
    assert note.endswith("never selected: G02, G03, G04, G05, G06, G07, G08, G09, G10, G11 and 2 more"), note
