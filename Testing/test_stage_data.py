"""lungai.fusion data handling: loading, joining, labels, preprocessing, graph, loss weights, CV checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError, InputNote
from lungai.fusion.cv import check_labels
from lungai.fusion.data import availability_text, load_cohort, orient_rna
from lungai.fusion.graph import coexpression_edges, edges_from_list
from lungai.fusion.labels import clean_labels, parse_groups, stage_group
from lungai.fusion.losses import class_balanced_weights
from lungai.fusion.preprocess import EHREncoder, GeneSelector


def _write(tmp_path, n=12, rna_transposed=True, extra_rna_ids=(), labels=None):
    ids = [f"P{i:02d}" for i in range(n)]
    rng = np.random.default_rng(0)
    ehr = pd.DataFrame({"Case ID": ids, "age": rng.integers(50, 80, n).astype(object),
                        "smoking": rng.choice(["Former", "Current"], n),
                        "visit_date": [f"2020-01-{i + 1:02d}" for i in range(n)] * 1,
                        "stage": labels if labels is not None else ["A", "B", "C"] * (n // 3)})
    ehr.loc[1, "age"] = "Not Collected"
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    rna_ids = ids[: n - 2] + list(extra_rna_ids)
    m = pd.DataFrame(rng.normal(size=(len(rna_ids), 5)), index=rna_ids, columns=[f"g{j}" for j in range(5)])
    (m.T if rna_transposed else m).to_csv(tmp_path / "rna.csv")
    return ids, m


@pytest.mark.parametrize("transposed", [True, False])
def test_rna_orientation_is_detected_and_ids_join(tmp_path, transposed):
    ids, m = _write(tmp_path, rna_transposed=transposed, extra_rna_ids=["X99", "X98"])
    with pytest.warns(UserWarning, match="X98"):
        c = load_cohort(tmp_path / "ehr.csv", tmp_path / "rna.csv", label="stage")
    assert list(c.rna.columns) == [f"g{j}" for j in range(5)]
    np.testing.assert_allclose(c.rna.loc["P03"].to_numpy(), m.loc["P03"].to_numpy(), rtol=1e-6)
    assert c.report["rna_not_joined"] == ["X98", "X99"]
    av = c.availability()
    assert av["rna"].sum() == 10 and not av.loc["P11", "rna"] and av["ehr"].all()
    text = availability_text(c)
    assert "RNA 10" in text and "X98, X99" in text


def test_rna_that_joins_no_patient_is_refused(tmp_path):
    _write(tmp_path)
    pd.DataFrame(np.ones((3, 2)), index=["g1", "g2", "g3"], columns=["Q1", "Q2"]).to_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="no RNA sample ID joins"):
        load_cohort(tmp_path / "ehr.csv", tmp_path / "bad.csv", label="stage")


def test_missing_tokens_unlabelled_patients_and_label_column_removed(tmp_path):
    labels = ["A", "B", "Not Collected", "A", "B", "N/A", "A", "B", "A", "B", "A", "B"]
    _write(tmp_path, labels=labels)
    c = load_cohort(tmp_path / "ehr.csv", label="stage", drop_columns=["smoking"])
    assert c.report["unlabelled"] == ["P02", "P05"] and len(c.ids) == 10
    assert "stage" not in c.ehr.columns and "smoking" not in c.ehr.columns
    assert pd.isna(c.ehr.loc["P01", "age"]) and c.ehr.loc["P03", "age"] is not None


def test_orientation_from_locked_model_genes():
    df = pd.DataFrame(np.arange(6.0).reshape(3, 2), index=["g1", "g2", "g3"], columns=["a", "b"])
    assert list(orient_rna(df, genes=["g1", "g2", "g3"]).index) == ["a", "b"]


@pytest.mark.parametrize("t,n,m,expected", [("T1a", "N0", "M0", "I"), ("T2a", "N0", "M0", "I"),
                                            ("T2b", "N0", "M0", "II"), ("T1b", "N1", "M0", "II"),
                                            ("T3", "N0", "M0", "II"), ("T3", "N1", "M0", "III-IV"),
                                            ("T1a", "N2", "M0", "III-IV"), ("T4", "N0", "M0", "III-IV"),
                                            ("T1a", "N0", "M1b", "III-IV"), ("Tis", "N0", "M0", "I"),
                                            ("Not Collected", "N0", "M0", None),
                                            # T0 (no primary tumour seen) N0 / N1: no AJCC stage group (was I / II);
                                            # N2-N3 and M1 stage any T
                                            ("T0", "N0", "M0", None), ("pT0", "N1", "M0", None),
                                            ("T0", "N2", "M0", "III-IV"), ("T0", "N0", "M1a", "III-IV"),
                                            # an unknown T / N that cannot change the group: TX N2-N3 M0 is IIIA-IIIC
                                            # whatever T is, T4 NX M0 IIIA-IIIB (they got no stage while T0 N2 did)
                                            ("TX", "N2", "M0", "III-IV"), ("Not Collected", "N3", "M0", "III-IV"),
                                            ("T4", "NX", "M0", "III-IV"), ("TX", "N1", "M0", None),
                                            ("T3", "NX", "M0", None), ("TX", "NX", "MX", None),
                                            # AJCC stages Tis only as Tis N0 M0 (Tis N1 was "II")
                                            ("Tis", "N1", "M0", None), ("Tis", "N2", "M0", "III-IV")])
def test_stage_group_from_tnm(t, n, m, expected):
    assert stage_group(t, n, m) == expected


@pytest.mark.parametrize("t,n,m,expected", [("pT2a", "pN0", "cM0", "I"), ("ypT1", "ypN0", "M0", "I"),
                                            ("pT2b", "cN0", "pM0", "II"), ("cT1b", "pN1", "cM0", "II"),
                                            ("rT3", "rN1", "M0", "III-IV"), ("p T4", "N0", "M0", "III-IV"),
                                            ("PT1A", "PN2", "CM0", "III-IV"), ("aT1a", "uN0", "pM1b", "III-IV"),
                                            ("pTis", "pN0", "cM0", "I"), ("ycT3", "ycN0", "M0", "II")])
def test_stage_group_reads_ajcc_prefixes(t, n, m, expected):
    # pT2a / cN0 / ypT1 were not read (^T only): every patient came out unlabelled
    assert stage_group(t, n, m) == expected


def test_stage_from_names_the_values_it_does_not_understand(tmp_path):
    from lungai.fusion.labels import derive_stage

    df = pd.DataFrame({"T": ["pT1a", "pT2b", "stage two", "TX"], "N": ["pN0", "N1", "N0", "NX"],
                       "M": ["cM0", "M0", "M0", "MX"]}, index=["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="values not understood.*'T': 'stage two'") as rec:
        out = derive_stage(df, "T", "N", "M")
    assert "'TX'" not in str(rec[0].message) and "'NX'" not in str(rec[0].message)   # known: not assessed
    assert out.tolist()[:2] == ["I", "II"] and out.iloc[2] is None and out.iloc[3] is None
    bad = pd.DataFrame({"T": ["T-one", "T-two"], "N": ["zero", "N0"], "M": ["M0", "M0"]})
    with pytest.raises(InputError, match="no patient's stage.*values not understood: 'T': 'T-one', 'T-two'; 'N': 'zero'"):
        derive_stage(bad, "T", "N", "M")


def test_absent_stage_column_names_the_look_alike_header_and_the_fix():
    """QA stagefollow69: a renamed T column ('pathological_t_stage' for 'Pathological T stage') was refused with all
    the columns listed only; the look-alike header (lungai.fusion.api.look_alike_headers) is named, with the fix."""
    from lungai.fusion.labels import derive_stage

    df = pd.DataFrame({"pathological_t_stage": ["T1a", "T2"], "Pathological N stage": ["N0", "N1"],
                       "Pathological M stage": ["M0", "M0"], "Age": [60, 70]}, index=["a", "b"])
    with pytest.raises(InputError) as err:
        derive_stage(df, "Pathological T stage", "Pathological N stage", "Pathological M stage")
    text = str(err.value)
    assert "stage column 'Pathological T stage' is not in the EHR table; the table's 'pathological_t_stage' looks " \
           "like it" in text
    assert "pass --stage-from with 'pathological_t_stage' in place of 'Pathological T stage'" in text
    assert "rename the header 'pathological_t_stage' to 'Pathological T stage'" in text
    with pytest.raises(InputError) as err:                      # no look-alike: the columns only
        derive_stage(df.drop(columns="pathological_t_stage"), "Pathological T stage", "Pathological N stage",
                     "Pathological M stage")
    assert "looks like" not in str(err.value) and "columns are: Pathological N stage" in str(err.value)


def test_look_alike_headers_read_the_common_tnm_spellings():
    """QA stage70: a T / N / M column the table writes in another common spelling - 'pT', 'pN', 'pM' (AJCC
    abbreviations), 'AJCC Pathologic T' / 'ajcc_pathologic_n' (TCGA / GDC exports), 'T stage' - was named by no
    look-alike (neither the same letters nor nearly so): the refusal listed all the columns only."""
    from lungai.fusion.api import look_alike_headers

    tnm = ["Pathological T stage", "Pathological N stage", "Pathological M stage"]
    assert look_alike_headers(tnm, ["Age", "pT", "pN", "pM"]) == dict(zip(tnm, ["pT", "pN", "pM"]))
    assert look_alike_headers(tnm, ["AJCC Pathologic T", "ajcc_pathologic_n", "AJCC Pathologic M"]) == \
        dict(zip(tnm, ["AJCC Pathologic T", "ajcc_pathologic_n", "AJCC Pathologic M"]))
    assert look_alike_headers(tnm[:1], ["T stage"]) == {tnm[0]: "T stage"}
    assert look_alike_headers(tnm[:1], ["cT", "ypT"]) == {tnm[0]: "ypT"}      # the same kind (pathological) first
    assert look_alike_headers(tnm[:2], ["cT", "cN"]) == {tnm[0]: "cT", tnm[1]: "cN"}    # else another kind
    # no category: a tumour size in cm, a date of the CT, the overall TNM stage, a prothrombin time whose values are
    # no T values (the table given)
    lab = pd.DataFrame({"PT": [11.2, 12.5], "Tumor size (cm)": [2, 3], "CT Date": ["1/1/2000"] * 2,
                        "TNM stage": ["IIA", "IB"]})
    assert look_alike_headers(tnm, list(lab.columns), lab) == {}
    assert look_alike_headers(tnm[:1], ["PT"], pd.DataFrame({"PT": ["T2a", "T1b", "Not Collected"]})) == {tnm[0]: "PT"}


def test_absent_stage_columns_in_abbreviations_are_named_with_the_stage_from_to_pass():
    """QA stage70: NSCLC-Radiogenomics-like columns renamed pT / pN / pM and --stage-from with the long names: each
    look-alike is named and the --stage-from that uses them given; a clinical column is named as of another kind."""
    from lungai.fusion.labels import derive_stage

    df = pd.DataFrame({"pT": ["T1a", "T2"], "pN": ["N0", "N1"], "pM": ["M0", "M0"], "Age": [60, 70]}, index=["a", "b"])
    with pytest.raises(InputError) as err:
        derive_stage(df, "Pathological T stage", "Pathological N stage", "Pathological M stage")
    text = str(err.value)
    assert "stage columns 'Pathological T stage', 'Pathological N stage', 'Pathological M stage' are not in the EHR " \
           "table; the table's 'pT' looks like 'Pathological T stage'; the table's 'pN' looks like 'Pathological N " \
           "stage'; the table's 'pM' looks like 'Pathological M stage'" in text
    assert "if they are those columns, pass --stage-from 'pT,pN,pM'" in text
    out = derive_stage(df, "pT", "pN", "pM")                    # the --stage-from it names works
    assert out.tolist() == ["I", "II"]
    with pytest.raises(InputError) as err:
        derive_stage(df.rename(columns={"pT": "cT"}), "Pathological T stage", "pN", "pM")
    assert "the table's 'cT' looks like it (a clinical T category, 'Pathological T stage' a pathological one)" \
        in str(err.value)


def test_absent_label_column_names_a_tnm_look_alike(tmp_path):
    """QA stage70: --label 'Pathological T stage' on a table whose T column is 'pT': named, with the --label."""
    ids = [f"P{i:02d}" for i in range(6)]
    pd.DataFrame({"Case ID": ids, "age": range(60, 66), "pT": ["T1a", "T2", "T3"] * 2}).to_csv(tmp_path / "e.csv",
                                                                                                index=False)
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "e.csv", label="Pathological T stage")
    assert "label column 'Pathological T stage' is not in the EHR table; the table's 'pT' looks like it" \
        in str(err.value)
    assert "pass --label 'pT'" in str(err.value)


def test_absent_stage_label_names_the_stage_from_that_derives_it(tmp_path):
    """QA stage72: --label stage_group (the docs' name of the derived stage) without --stage-from on NSCLC-Radiogenomics
    was refused listing the table's 40 columns, not the option that derives it from the T, N, M columns the table
    has: named now (the pathological ones where both kinds are there); a label that is not a stage gets no such fix."""
    ids = [f"P{i:02d}" for i in range(6)]
    pd.DataFrame({"Case ID": ids, "age": range(60, 66), "Clinical T stage": ["T1", "T2", "T3"] * 2,
                  "Pathological T stage": ["T1a", "T2", "T3"] * 2, "Pathological N stage": ["N0", "N1"] * 3,
                  "Clinical N stage": ["N0"] * 6, "Pathological M stage": ["M0"] * 6}).to_csv(tmp_path / "e.csv",
                                                                                          index=False)
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "e.csv", label="stage_group")
    assert "label column 'stage_group' is not in the EHR table" in str(err.value)
    assert err.value.fix.startswith("to derive the AJCC stage group (I / II / III-IV) from the table's T, N and M "
                                    "columns as 'stage_group', add --stage-from "
                                    "'Pathological T stage,Pathological N stage,Pathological M stage'; otherwise "
                                    "columns are: "), err.value.fix
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "e.csv", label="outcome")
    assert "--stage-from" not in err.value.fix and err.value.fix.startswith("columns are: ")


@pytest.mark.shared_data
def test_radiogenomics_with_abbreviated_tnm_headers_names_them(shared_data, tmp_path):
    """QA stage70, on the real table: its T / N / M headers written pT / pN / pM, the documented --stage-from with the
    long names was refused with the 40 columns listed only; now the three look-alikes and the --stage-from to pass."""
    d = shared_data / "nsclc_radiogenomics"
    ehr = pd.read_csv(d / "NSCLCR01Radiogenomic_DATA_LABELS_2018-05-22_1500-shifted.csv", dtype=str,
                      keep_default_na=False)
    tnm = ["Pathological T stage", "Pathological N stage", "Pathological M stage"]
    ehr.rename(columns=dict(zip(tnm, ["pT", "pN", "pM"]))).to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "ehr.csv", label="stage_group", stage_from=tnm)
    assert "the table's 'pT' looks like 'Pathological T stage'" in str(err.value)
    assert "pass --stage-from 'pT,pN,pM'" in str(err.value)


def test_text_in_a_numeric_ehr_column_is_refused_with_patient_value_and_line(tmp_path):
    ids = [f"P{i:02d}" for i in range(12)]
    ehr = pd.DataFrame({"Case ID": ids, "Age": [str(60 + i) for i in range(12)], "Weight": ["150"] * 12,
                        "stage": ["A", "B", "C"] * 4})
    ehr.loc[3, "Age"], ehr.loc[3, "Weight"], ehr.loc[5, "Age"] = "7O", "18O", "Not Collected"
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.raises(InputError, match=r"'Age' = '7O' for patient P03 \(CSV line 5\); 'Weight' = '18O'") as err:
        load_cohort(tmp_path / "ehr.csv", label="stage")
    assert "Not Collected" not in str(err.value)            # a missing-value word is missing, not text
    ehr.loc[3, ["Age", "Weight"]] = ["70", "180"]
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    c = load_cohort(tmp_path / "ehr.csv", label="stage")
    enc = EHREncoder().fit(c.ehr)
    assert "Age" in enc.numeric
    with pytest.warns(UserWarning, match="'Age' is numeric in the model, but has text: X1 'seventy'"):
        enc.transform(pd.DataFrame({"Age": ["seventy"], "Weight": ["1"]}, index=["X1"]))


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_table_with_another_delimiter_is_refused(tmp_path, sep):
    ids, _ = _write(tmp_path)
    ehr = pd.read_csv(tmp_path / "ehr.csv").rename(columns={"smoking": "Pleural invasion (elastic, visceral, or parietal)"})
    ehr.to_csv(tmp_path / "semi.csv", sep=sep, index=False)    # the commas in a name gave several columns
    pd.read_csv(tmp_path / "rna.csv", index_col=0).to_csv(tmp_path / "rna_semi.csv", sep=sep)
    # ';': the header's commas make a comma reading possible too - refused, naming both readings
    said = ("semi.csv could be comma- or semicolon-separated: read with commas its header has 3 columns .* with "
            "semicolons 5 columns") if sep == ";" else \
        "semi.csv is not comma-separated: read with commas .* with tabs 5 each"
    with pytest.raises(InputError, match=said) as err:
        load_cohort(tmp_path / "semi.csv", label="stage")
    assert "comma delimited" in err.value.fix
    if sep == ";":     # gene names without commas: a ';' matrix reads (decimal points or commas), said once
        with pytest.warns(InputNote, match="rna_semi.csv is read as semicolon-separated"):
            semi = load_cohort(tmp_path / "ehr.csv", tmp_path / "rna_semi.csv", label="stage")
        plain = load_cohort(tmp_path / "ehr.csv", tmp_path / "rna.csv", label="stage")
        pd.testing.assert_frame_equal(semi.rna, plain.rna)
    else:
        with pytest.raises(InputError, match="not comma-separated"):
            load_cohort(tmp_path / "ehr.csv", tmp_path / "rna_semi.csv", label="stage")
    with pytest.raises(InputError, match="not comma-separated|could be comma- or semicolon"):
        load_cohort(tmp_path / "semi.csv", require_label=False)


def test_label_groups():
    groups = parse_groups("T1=Tis,T1a,T1b;T2=T2a,T2b")
    s = clean_labels(pd.Series(["T1a", "T2b", "Not Collected"], name="t"), groups)
    assert s.iloc[0] == "T1" and s.iloc[1] == "T2" and pd.isna(s.iloc[2])
    with pytest.raises(InputError, match="not in any label group"):
        clean_labels(pd.Series(["T3"], name="t"), groups)
    with pytest.raises(InputError, match="no '='"):
        parse_groups("T1")


def test_one_class_and_too_few_per_class_are_refused(tmp_path):
    _write(tmp_path, labels=["A"] * 12)
    c = load_cohort(tmp_path / "ehr.csv", label="stage")
    with pytest.raises(InputError, match="only one class"):
        check_labels(c, 5)
    _write(tmp_path, labels=["A"] * 9 + ["B"] * 3)
    c = load_cohort(tmp_path / "ehr.csv", label="stage")
    with pytest.raises(InputError, match=r"too few patients per class for 5-fold CV: \{'B': 3\}") as err:
        check_labels(c, 5)
    assert "--folds 3" in str(err.value)
    assert check_labels(c, 3) == ["A", "B"]



def test_one_class_iii_iv_says_the_group_holds_stage_iv(tmp_path):
    """A stage III/IV cohort (the patients of a radiotherapy clinic) labelled with --stage-from has one class,
    III-IV: the fix says the group holds stage III and IV alike and how to tell them apart (before, only "choose a
    label column with at least two classes")."""
    _write(tmp_path, labels=["III-IV"] * 12)
    c = load_cohort(tmp_path / "ehr.csv", label="stage")
    with pytest.raises(InputError, match="only one class") as err:
        check_labels(c, 5)
    assert "holds stage III and stage IV alike" in err.value.fix and "--label-groups" in err.value.fix
    _write(tmp_path, labels=["I"] * 12)
    c = load_cohort(tmp_path / "ehr.csv", label="stage")
    with pytest.raises(InputError, match="only one class") as err:
        check_labels(c, 5)
    assert "stage IV" not in err.value.fix

def test_ehr_encoder_imputes_median_adds_indicator_and_leaves_out_dates(tmp_path):
    df = pd.DataFrame({"age": [50, np.nan, 70, 60], "sex": ["M", "F", np.nan, "M"],
                       "date": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"]})
    enc = EHREncoder(max_levels=3).fit(df)
    assert enc.numeric == ["age"] and enc.categorical == ["sex"] and "date" in enc.left_out
    x = enc.transform(df)
    names = enc.feature_names()
    age = x[:, names.index("num__age")]
    assert age[1] == pytest.approx(age[3])              # missing age -> median (60) -> same as 60
    ind = x[:, [i for i, n in enumerate(names) if "missingindicator" in n][0]]   # scaled indicator
    assert ind[1] > 0 > ind[0] and ind[0] == ind[2] == ind[3]
    unseen = enc.transform(pd.DataFrame({"age": [55], "sex": ["X"]}))   # unknown level, no date column
    assert unseen.shape == (1, x.shape[1])


def test_gene_selector_uses_training_variance_and_imputes_missing_genes():
    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.normal(size=(20, 4)) * [5, 0.1, 2, 0.5], columns=["a", "b", "c", "d"])
    sel = GeneSelector(top_k=2).fit(train)
    assert sel.genes == ["a", "c"]
    new = pd.DataFrame({"a": [train["a"].mean()], "z": [1.0]}, index=["p"])
    assert sel.missing_genes(new) == ["c"]
    np.testing.assert_allclose(sel.transform(new, ["p", "absent"]), np.zeros((2, 2)), atol=1e-5)


def test_coexpression_graph_links_correlated_genes(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.normal(size=50)
    x = np.stack([base, base + 0.01 * rng.normal(size=50), rng.normal(size=50), rng.normal(size=50)], axis=1)
    e = coexpression_edges(x, neighbours=1)
    pairs = set(map(tuple, e.T))
    assert (0, 1) in pairs and (1, 0) in pairs and all(a != b for a, b in pairs)
    pd.DataFrame({"a": ["g1", "g2", "gX"], "b": ["g2", "g3", "g1"]}).to_csv(tmp_path / "edges.csv", index=False)
    with pytest.warns(UserWarning, match="1 of 3 edges"):
        e2 = edges_from_list(tmp_path / "edges.csv", ["g1", "g2", "g3"])
    assert set(map(tuple, e2.T)) == {(0, 1), (1, 0), (1, 2), (2, 1)}



@pytest.mark.parametrize("name,sep", [("edges.csv", ","), ("edges.tsv", "\t")])
def test_edge_list_without_header_keeps_its_first_edge(tmp_path, name, sep):
    """An edge list written without a header row (a STRING / pathway export): its first line, two of the selected
    genes, is an edge - before, it was taken as the header and the edge g1-g2 was lost without a word."""
    path = tmp_path / name
    path.write_text(sep.join(["g1", "g2"]) + "\n" + sep.join(["g2", "g3"]) + "\n", encoding="utf-8")
    e = edges_from_list(path, ["g1", "g2", "g3"])
    assert set(map(tuple, e.T)) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    path.write_text(sep.join(["gene_a", "gene_b"]) + "\n" + sep.join(["g2", "g3"]) + "\n", encoding="utf-8")
    assert set(map(tuple, edges_from_list(path, ["g1", "g2", "g3"]).T)) == {(1, 2), (2, 1)}   # a header: no edge

def test_class_balanced_weights_favour_rare_classes():
    w = class_balanced_weights([100, 10, 50], beta=0.99)
    assert w[1] > w[2] > w[0] and w.sum() == pytest.approx(3.0)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fast_bootstrap_metrics_match_scikit_learn(n_classes):
    from lungai.fusion.metrics import fast_scores, scores

    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 60)
    proba = rng.dirichlet(np.ones(n_classes), 60)
    proba[np.arange(30), y[:30]] += 0.5                 # some signal
    proba /= proba.sum(1, keepdims=True)
    a, b = scores(y, proba, n_classes), fast_scores(y, proba, n_classes)
    for m in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc"):
        assert a[m] == pytest.approx(b[m], abs=1e-9), m
    # a class that is never predicted still counts in the balanced accuracy (recall 0)
    pred_never_last = np.eye(n_classes)[np.minimum(y, n_classes - 2)]
    s = fast_scores(y, pred_never_last, n_classes)
    assert s["balanced_accuracy"] == pytest.approx((n_classes - 1) / n_classes)
    assert s["balanced_accuracy"] == pytest.approx(scores(y, pred_never_last, n_classes)["balanced_accuracy"])


@pytest.mark.parametrize("transposed", [True, False])
def test_ids_that_look_like_numbers_stay_text_in_ehr_rna_and_ct_manifest(tmp_path, transposed):
    """'007' and '0012' are ids, not numbers: read as 7 and 12 they no longer join the RNA matrix's column names
    (always text) nor the patient the user asks for."""
    from lungai.fusion.data import load_ct_manifest, load_ehr, load_rna

    ids = ["007", "0012", "013", "1e3", "0100", "02"]
    pd.DataFrame({"patient_id": ids, "age": [60, 61, 62, 63, 64, 65],
                  "stage": ["A", "B"] * 3}).to_csv(tmp_path / "ehr.csv", index=False)
    m = pd.DataFrame(np.arange(24.0).reshape(6, 4), index=ids, columns=["g1", "g2", "g3", "g4"])
    (m.T if transposed else m).to_csv(tmp_path / "rna.csv")
    c = load_cohort(tmp_path / "ehr.csv", tmp_path / "rna.csv", label="stage")
    # the cohort is in ID order as text (name_order): '0012' < '007' < '0100' < '013' < '02' < '1e3'
    assert c.ids == sorted(ids) == ["0012", "007", "0100", "013", "02", "1e3"]
    assert list(c.rna.index) == c.ids and c.report["with"]["rna"] == 6
    assert c.ehr["age"].dtype.kind in "if"              # the other columns are still numbers
    assert list(load_ehr(tmp_path / "ehr.csv").index) == ids
    assert list(load_rna(tmp_path / "rna.csv", ids=ids).index) == ids
    for i in ids[:2]:
        (tmp_path / f"{i}.nii.gz").write_bytes(b"")
    pd.DataFrame({"ID": ids[:2], "image": [f"{i}.nii.gz" for i in ids[:2]], "mask": [f"{i}.nii.gz" for i in ids[:2]]}
                 ).to_csv(tmp_path / "ct.csv", index=False)
    assert sorted(load_ct_manifest(tmp_path / "ct.csv")) == ["0012", "007"]


def test_unreadable_ehr_tables_say_how_to_fix(tmp_path):
    """The stage (and demo) table reader: Latin-1 -> save as UTF-8; ';' with decimal commas -> not
    comma-separated; a folder -> is a folder."""
    from lungai.fusion.data import load_ehr

    (tmp_path / "latin.csv").write_bytes("patient_id,site,stage\nP1,Gen\xe8ve,I\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8") as err:
        load_ehr(tmp_path / "latin.csv")
    assert "CSV UTF-8" in err.value.fix
    rows = "".join(f"P{i};{60 + i};{70 + i},5;{i % 2},25\n" for i in range(12))
    (tmp_path / "euro.csv").write_text("patient_id;age;weight;dose\n" + rows, encoding="utf-8")
    with pytest.warns(InputNote, match="read as semicolon-separated with decimal commas"):
        euro = load_ehr(tmp_path / "euro.csv")         # a decimal-comma locale's 'CSV': read (70,5 = 70.5)
    assert euro.loc["P1", "weight"] == 71.5 and euro.loc["P3", "dose"] == 1.25
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="is a folder, not a CSV file"):
        load_ehr(tmp_path / "dir.csv")


def test_numbers_written_with_a_decimal_comma_are_refused_not_made_categories(tmp_path):
    """QA (mm55): an EHR table saved by a spreadsheet in a decimal-comma locale with ',' as the separator quotes its
    numbers ("2,35"). cv / train made such a column categories (<= 20 values: dose per fraction '1,8' / '2,0') or left
    it out as "date or free text?" (FEV1, 40 values) - its numbers lost, a note at most. Now refused naming column,
    value, patient and CSV line with the decimal point; a --drop'ped column is not checked; predict keeps its rule
    (the model's numeric column: that patient not computed)."""
    from lungai.io.tables import DECIMAL_COMMA_FIX

    n = 40
    ids = [f"P{i:02d}" for i in range(n)]
    ehr = pd.DataFrame({"Case ID": ids, "age": [str(50 + i) for i in range(n)],
                        "dose_per_fraction": ["1,8", "2,0", "2,75", "3,0"] * (n // 4),
                        "fev1": [f"{1.5 + i / 40:.3f}".replace(".", ",")[:4] for i in range(n)],
                        "stage": ["A", "B"] * (n // 2)})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.raises(InputError, match=r"'dose_per_fraction' = '1,8' \(type 1.8: a decimal point, not a comma\) "
                                         r"for patient P00 \(CSV line 2\)") as err:
        load_cohort(tmp_path / "ehr.csv", label="stage")
    assert "'fev1' = '1,50'" in str(err.value) and err.value.fix.startswith(DECIMAL_COMMA_FIX)
    c = load_cohort(tmp_path / "ehr.csv", label="stage", drop_columns=["dose_per_fraction", "fev1"])
    assert list(c.ehr.columns) == ["age"]
    ehr["dose_per_fraction"] = ehr["dose_per_fraction"].str.replace(",", ".")
    ehr["fev1"] = ehr["fev1"].str.replace(",", ".")
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    enc = EHREncoder().fit(load_cohort(tmp_path / "ehr.csv", label="stage").ehr)
    assert sorted(enc.numeric) == ["age", "dose_per_fraction", "fev1"] and not enc.left_out
    ehr["dose_per_fraction"] = ehr["dose_per_fraction"].str.replace(".", ",")
    ehr.drop(columns="stage").to_csv(tmp_path / "new.csv", index=False)
    load_cohort(tmp_path / "new.csv", require_label=False)       # predict: the model's types decide (per patient)


@pytest.mark.parametrize("transposed", [True, False])
def test_gene_annotation_columns_of_an_expression_export_are_no_patient_and_no_gene(tmp_path, transposed):
    """A cBioPortal matrix (Hugo_Symbol, Entrez_Gene_Id, then one column per patient) or a GDC one (gene_type text
    beside the values): the annotation columns are left out with a warning. QA: Entrez_Gene_Id (100, 101 ...) was
    read as a patient, and stage predict gave it a stage from RNA alone."""
    from lungai.fusion.data import load_rna

    ids, m = _write(tmp_path, rna_transposed=True)
    genes = m.T.copy()        # genes x patients
    genes.insert(0, "Entrez_Gene_Id", np.arange(100, 100 + len(genes)))
    genes.insert(1, "gene_type", ["protein_coding"] * len(genes))
    genes.index.name = "Hugo_Symbol"
    path = tmp_path / "cbio.csv"
    if transposed:
        genes.to_csv(path)
    else:                     # patients x genes with the annotations as rows
        genes.T.to_csv(path)
    with pytest.warns(UserWarning, match="'Entrez_Gene_Id', 'gene_type' left out: gene annotation"):
        rna = load_rna(path, ids=ids)
    assert list(rna.index) == ids[: len(ids) - 2] and list(rna.columns) == list(m.columns)
    np.testing.assert_allclose(rna.loc["P03"].to_numpy(), m.loc["P03"].to_numpy(), rtol=1e-6)
    from lungai.errors import InputNote

    with pytest.warns(InputNote, match="gene annotation"):      # 'warning: ...' on the console, no source path
        c = load_cohort(tmp_path / "ehr.csv", path, label="stage")
    assert "Entrez_Gene_Id" not in c.rna.index and c.report.get("rna_not_joined", []) == []


def test_a_numeric_stage_column_with_a_missing_value_keeps_its_classes_as_written(tmp_path):
    """An EHR export with the stage as numbers 1-3 and one patient without a stage: pandas reads the column as
    floats (1.0, NaN).  The classes must stay '1', '2', '3' - the values as written, the classes of the same column
    without a gap - so that --label-groups "early=1,2;late=3" finds them and a model trained on such a table
    validates on a table without gaps (it refused both: "label values ['1.0', '2.0', '3.0'] are not in any label
    group", "label values ['1', '2', '3'] are not classes of the locked model (['1.0', '2.0', '3.0'])")."""
    rows = [f"P{i:02d},{60 + i},{'' if i == 0 else 1 + i % 3}" for i in range(12)]
    (tmp_path / "ehr.csv").write_text("id,age,stage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    c = load_cohort(ehr=tmp_path / "ehr.csv", label="stage")
    assert sorted(set(c.labels)) == ["1", "2", "3"] and len(c.ids) == 11
    g = load_cohort(ehr=tmp_path / "ehr.csv", label="stage", label_groups=parse_groups("early=1,2;late=3"))
    assert sorted(g.labels.value_counts().items()) == [("early", 7), ("late", 4)]
    # groups written with the numbers as pandas showed them ("1.0") name the same values
    g2 = load_cohort(ehr=tmp_path / "ehr.csv", label="stage", label_groups=parse_groups("early=1.0,2.0;late=3.0"))
    assert g2.labels.equals(g.labels)
    from lungai.fusion.labels import match_classes

    # a model trained before (classes '1.0', '2.0', '3.0') reads the new cohort's '1', '2', '3' as its classes
    assert list(match_classes(pd.Series(["1", "3", np.nan]), ["1.0", "2.0", "3.0"]).iloc[:2]) == ["1.0", "3.0"]
    assert list(match_classes(pd.Series(["1", "X"]), ["1", "2", "3"])) == ["1", "X"]     # others as given


def test_validate_reads_a_stage_spelled_another_way_as_the_models_class():
    """An external cohort's export writes the stages 'Stage IIIA' / '3A' where the training table wrote 'IIIA': the
    same stage (:func:`lungai.fusion.labels.stage_spelling`), so validate scores it as the model's class - it refused
    the cohort ("label values ['Stage IA', 'Stage IIIA'] are not classes of the locked model").  Another stage
    ('III' for a class 'III-IV', 'IIIB') stays as given (refused by validate, never guessed)."""
    from lungai.fusion.labels import match_classes

    got = match_classes(pd.Series(["Stage IA", "3A", "IIIA", "Stage 1A", "III", "IIIB", np.nan]), ["IA", "IIIA", "IV"])
    assert list(got.iloc[:6]) == ["IA", "IIIA", "IIIA", "IA", "III", "IIIB"] and np.isnan(got.iloc[6])
    assert list(match_classes(pd.Series(["III", "Stage I"]), ["I", "II", "III-IV"])) == ["III", "I"]


def test_a_second_id_column_is_no_ehr_feature_in_training(tmp_path):
    """QA: an EHR table with 'Case ID' and a REDCap 'Record ID' (1..N) trained 'Record ID' as a numeric feature -
    an identifier as a model input; now it is left out with a note (kept only with --keep-column)."""
    ids, _ = _write(tmp_path)
    ehr = pd.read_csv(tmp_path / "ehr.csv", dtype=str)
    ehr.insert(1, "Record ID", [str(i + 1) for i in range(len(ehr))])
    ehr.insert(2, "PatientID", [f"MRN{i:04d}" for i in range(len(ehr))])
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.warns(InputNote, match="'Record ID', 'PatientID'.*left out of the features"):
        c = load_cohort(tmp_path / "ehr.csv", label="stage")
    assert "Record ID" not in c.ehr.columns and "PatientID" not in c.ehr.columns
    assert c.report["id_columns_left_out"] == ["Record ID", "PatientID"]
    assert list(c.ehr.index[:2]) == ["P00", "P01"]      # still read by 'Case ID'
    kept = load_cohort(tmp_path / "ehr.csv", label="stage", keep_columns=["Record ID"])
    assert "Record ID" in kept.ehr.columns and "PatientID" not in kept.ehr.columns
    locked = load_cohort(tmp_path / "ehr.csv", label="stage", check_leaks=False)   # a locked model's own columns
    assert "Record ID" in locked.ehr.columns


def _semicolon_rna(path, missing):
    """A genes x patients RNA matrix as a decimal-comma spreadsheet (or R's write.csv2) saves it: ';' between the
    fields, '1,5' for 1.5, a small value as '-7,8E-05', ``missing`` for a value not measured - here in the first
    patient's column."""
    path.write_text(f";P01;P02;P03\nTP53;1,5;{missing};-0,25\nEGFR;{missing};2,25;-7,8E-05\n"
                    "KRAS;0,5;1,25E-03;3\nMYC;-1,75;0,5;1,5\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("missing", ["-", "not available", ""])
def test_semicolon_rna_matrix_reads_its_decimal_commas_in_every_column(tmp_path, missing):
    """A ';' RNA matrix with decimal commas is read as its ',' copy whatever its missing-value word: before, with a
    word pandas does not read as missing ('-') in the first patient's column, that column was taken for the id
    column and its decimal commas left as text, and '-7,8E-05' (a number with an exponent) was not read either:
    refused as 'non-numeric values ... (type 1.5: a decimal point, not a comma)' - the wrong fix for a file read as
    decimal-comma."""
    from lungai.fusion.data import load_rna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputNote)
        rna = load_rna(_semicolon_rna(tmp_path / "rna.csv", missing))
    expected = pd.DataFrame({"TP53": [1.5, np.nan, -0.25], "EGFR": [np.nan, 2.25, -7.8e-05],
                             "KRAS": [0.5, 1.25e-03, 3.0], "MYC": [-1.75, 0.5, 1.5]},
                            index=pd.Index(["P01", "P02", "P03"], name="patient_id"), dtype=np.float32)
    pd.testing.assert_frame_equal(rna, expected, check_exact=True)


def test_semicolon_ehr_number_with_an_exponent_is_a_number(tmp_path):
    """In a ';' (decimal-comma) EHR table a number written with an exponent ('1,5E-03') in a column that holds a
    missing-value word too is a number, as '1,5' is - before it stayed text: the column became categories, or
    (cv / train) was refused with the fix 'a decimal point, not a comma' for a file read with decimal commas."""
    from lungai.fusion.data import check_numeric_text, load_ehr

    rows = ["Case ID;dose_rate;age"] + [f"P{k:02d};{'Not Collected' if k == 0 else f'{k},5E-03'};{60 + k}"
                                        for k in range(12)]
    path = tmp_path / "ehr.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputNote)
        ehr = load_ehr(path)
    assert pd.to_numeric(ehr["dose_rate"]).tolist()[1:3] == [1.5e-03, 2.5e-03]
    check_numeric_text(ehr, path, decimal_commas=True)          # the cv / train reading: not refused
    assert EHREncoder().fit(ehr).left_out == {}


@pytest.mark.shared_data
def test_real_rna_matrix_as_a_semicolon_export_reads_as_the_original(shared_data, tmp_path):
    """NSCLC-Radiogenomics' df_zscore.csv saved as a decimal-comma spreadsheet with '-' for its 4519 missing values
    reads exactly as its ',' copy - before, refused with 1007 'non-numeric values' (the first patient's 1000 values
    and 7 written with an exponent)."""
    from lungai.fusion.data import load_rna

    z = pd.read_csv(shared_data / "nsclc_radiogenomics" / "df_zscore.csv", index_col=0)
    z.to_csv(tmp_path / "comma.csv", na_rep="-")
    z.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", na_rep="-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputNote)
        comma, semi = load_rna(tmp_path / "comma.csv"), load_rna(tmp_path / "semi.csv")
    assert semi.shape == (130, 1000) and int(semi.isna().sum().sum()) == 4519
    pd.testing.assert_frame_equal(semi, comma, check_exact=True)


def test_training_on_an_rna_matrix_not_log_transformed_is_said(tmp_path):
    """cv / train on raw counts (no negative value, values in the thousands) warn that the matrix looks not
    log-transformed, with the fix (log2(x + 1)); the same counts as log2(x + 1) and a z-scored matrix do not, nor does
    reading a new cohort for a locked model (check_leaks False: predict / validate have their own scale check).
    Before, nothing was said: top-k by variance on counts keeps the most highly expressed genes."""
    from lungai.fusion.synthetic import make_cohort

    p = make_cohort(tmp_path / "c", n=16, seed=1, n_genes=12, module_size=4, ct_shape=(16, 16, 16))
    x = pd.read_csv(p["rna"], index_col=0)
    counts = np.round(2.0 ** (x + 10))
    counts.to_csv(tmp_path / "counts.csv")
    np.log2(counts + 1).to_csv(tmp_path / "log.csv")

    def said(rna, **kw):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cohort = load_cohort(p["ehr"], rna, label="stage", **kw)
        return cohort, [str(w.message) for w in caught if "log-transformed" in str(w.message)]

    cohort, notes = said(tmp_path / "counts.csv")
    assert len(notes) == 1 and "looks not log-transformed (raw counts or TPM?)" in notes[0], notes
    assert f"the largest is {counts.to_numpy().max():g}" in notes[0] and "log2(x + 1)" in notes[0], notes[0]
    assert cohort.report["rna_linear_scale"] == counts.to_numpy().max()
    for rna in (tmp_path / "log.csv", p["rna"]):
        cohort, notes = said(rna)
        assert notes == [] and "rna_linear_scale" not in cohort.report
    assert said(tmp_path / "counts.csv", check_leaks=False)[1] == []
