"""``lungai stage validate`` / ``predict`` and the stage inputs, QA of the stage command: validate predicts through
predict's path (only the inputs the model was trained with; a patient with none of them is not scored), a CT
manifest with a patient twice, duplicated gene names, T / N / M values and an unknown M, CT ids not in the EHR
table at predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.fusion.data import load_cohort, load_ct_manifest, load_rna, orient_rna
from lungai.fusion.labels import derive_stage, stage_group

# these tests validate on the model's own training patients: scored only with this flag (in-sample, not external)
OWN = "--include-training-patients"

FAST = ["--epochs", 2, "--top-k", 5, "--neighbours", 2, "--inner-folds", 1, "--baselines", "logreg"]


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from lungai.fusion.synthetic import make_cohort

    return make_cohort(tmp_path_factory.mktemp("syn"), n=12, n_genes=20, module_size=4, ct_shape=(32, 32, 16),
                       ct_spacing=(5.0, 5.0, 5.0))


@pytest.fixture(scope="module")
def no_ct_model(syn, tmp_path_factory):
    """A model trained on EHR + RNA with the default --modalities ehr,rna,ct but no CT: its CT branch never learnt."""
    out = tmp_path_factory.mktemp("m") / "model"
    assert _cli(["train", "--ehr", syn["ehr"], "--rna", syn["rna"], "--label", "stage", "-o", out, *FAST]) == 0
    return out


def test_validate_does_not_feed_cts_to_a_model_trained_without_ct(tmp_path, syn, no_ct_model, capsys):
    """QA: validate gave the CTs to the fusion network whose CT branch never learnt (scores changed, ct=True in
    predictions.csv) while predict said "the CTs are not used"; validate now predicts through predict's path."""
    data = ["--ehr", syn["ehr"], "--rna", syn["rna"], "--label", "stage"]
    assert _cli(["validate", OWN, "--model", no_ct_model, *data, "-o", tmp_path / "v"]) == 0
    capsys.readouterr()
    assert _cli(["validate", OWN, "--model", no_ct_model, *data, "--ct", syn["ct"], "-o", tmp_path / "vct"]) == 0
    assert "the CTs are not used: fusion was trained without a CT manifest" in capsys.readouterr().err
    a, b = (pd.read_csv(tmp_path / d / "predictions.csv") for d in ("v", "vct"))
    assert not b.ct.any()                                          # the CT was not an input
    cols = [c for c in a.columns if c.startswith("fusion_p_")]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-6)
    ma, mb = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("v", "vct"))
    assert ma["models"]["fusion"] == mb["models"]["fusion"]


def test_validate_leaves_patients_without_any_model_input_out_of_the_scores(tmp_path, syn, no_ct_model, capsys):
    """QA: validate scored a patient with none of the model's inputs (its prior counted in accuracy / F1 / AUC)
    while predict says "not computed"; such patients are now left out of the scores, warned about and counted."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    feats = [c for c in ehr.columns if c not in ("patient_id", "stage")]
    ehr.loc[ehr.index[:2], feats] = ""                             # two patients: label only, no EHR value
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    blank = list(ehr.patient_id[:2])
    assert _cli(["validate", OWN, "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--label", "stage",
                 "-o", tmp_path / "v"]) == 0                       # no RNA: the two have none of the inputs
    err = capsys.readouterr().err
    assert "no stage for 2 patients (" in err and "is there for them" in err and all(p in err for p in blank)
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    for name in ("fusion", "logreg"):
        entry = m["models"][name]
        assert entry["n_not_computed"] == 2 and entry["not_computed"] == blank and entry["n_scored"] == 10
    pred = pd.read_csv(tmp_path / "v" / "predictions.csv")
    assert pred.loc[pred.patient_id.isin(blank), "fusion_p_I"].isna().all()
    scored = pred[~pred.patient_id.isin(blank)]
    cls = m["classes"]
    acc = np.mean([cls[k] for k in scored[[f"fusion_p_{c}" for c in cls]].to_numpy().argmax(1)] == scored.label)
    assert m["models"]["fusion"]["accuracy"]["pooled"] == pytest.approx(acc)


def test_a_ct_manifest_with_a_patient_twice_is_refused(tmp_path, syn):
    """QA: the last row won silently."""
    man = pd.read_csv(syn["ct"])
    man = pd.concat([man, man.iloc[[1]]])
    path = syn["ct"].parent / "manifest_dup.csv"
    man.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"CT manifest .*duplicate patient IDs.*" + man.iloc[1, 0]) as err:
        load_ct_manifest(path)
    assert "one row" in err.value.fix


def test_duplicated_gene_names_are_refused_naming_them(tmp_path):
    """QA: genes as rows gave a pandas traceback ('cannot reindex on an axis with duplicate labels'); genes as
    columns were renamed by pandas to TP53.1 silently."""
    ids = [f"P{i:02d}" for i in range(5)]
    genes = ["TP53", "EGFR", "TP53", "KRAS"]
    m = pd.DataFrame(np.random.default_rng(0).normal(size=(4, 5)), index=genes, columns=ids)
    m.to_csv(tmp_path / "rows.csv")                                # genes x patients
    with pytest.raises(InputError, match=r"duplicate gene names.*\['TP53'\]"):
        load_rna(tmp_path / "rows.csv", ids=ids)
    m.T.to_csv(tmp_path / "cols.csv")                              # patients x genes: pandas renames the header
    with pytest.raises(InputError, match=r"header row of the RNA matrix .*duplicate gene names.*\['TP53'\]"):
        load_rna(tmp_path / "cols.csv", ids=ids)
    with pytest.raises(InputError, match="duplicate gene names"):  # in memory (the Python API)
        orient_rna(m, ids=ids)


@pytest.mark.parametrize("t,n,m,expected", [("T1a", "N0", "MX", None), ("T2b", "N0", "Not Collected", None),
                                            ("T1b", "N1", None, None), ("T1a", "N0", "M0", "I"),
                                            ("T3", "N1", "MX", "III-IV"), ("T1a", "N2", "MX", "III-IV"),
                                            ("T4", "N0", "MX", "III-IV"), ("T1a", "N0", "M1c", "III-IV"),
                                            ("T5", "N0", "M0", None), ("T1", "N4", "M0", None),
                                            ("T1", "N0", "M2", None), ("T12", "N0", "M0", None),
                                            ("T1mi", "N0", "M0", "I"), ("pT1c", "pN2a", "cM0", "III-IV")])
def test_stage_group_needs_m0_for_i_and_ii_and_reads_only_real_values(t, n, m, expected):
    """QA: an unknown M was read as M0 ('T1a', 'N0', 'MX' -> I) though docs/stage.md says MX is unknown; and T5 /
    N4 / M2 were read as T / N / M values (unanchored)."""
    assert stage_group(t, n, m) == expected


def test_impossible_tnm_values_are_named_as_not_understood():
    df = pd.DataFrame({"T": ["T1a", "T5", "T2a"], "N": ["N0", "N0", "N4"], "M": ["M0", "M0", "M2"]}, index=list("abc"))
    with pytest.warns(UserWarning, match=r"values not understood.*'T': 'T5'; 'N': 'N4'; 'M': 'M2'"):
        out = derive_stage(df, "T", "N", "M")
    assert out.tolist() == ["I", None, None]


def test_a_tnm_combination_without_m_is_named_for_its_unknown_m():
    from lungai.fusion.labels import check_tnm_combinations

    with pytest.raises(InputError) as err:
        check_tnm_combinations(["T2N1", "T1aN0M0", "T3N2"])
    assert "unknown=T2N1" in err.value.fix and "'T2N1' have M unknown" in err.value.fix
    assert "III-IV=T3N2" in err.value.fix


def test_ct_and_rna_ids_not_in_the_ehr_table_are_named_at_predict(tmp_path, syn):
    """QA: at predict a CT-manifest id not in the EHR table was predicted from the CT alone without a word."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    ehr.iloc[2:].to_csv(tmp_path / "ehr.csv", index=False)         # the first two patients are not in it
    gone = list(ehr.patient_id[:2])
    with pytest.warns(UserWarning) as rec:
        c = load_cohort(tmp_path / "ehr.csv", syn["rna"], syn["ct"], require_label=False)
    text = " ".join(str(w.message) for w in rec)
    assert f"2 CT patient IDs are not in the EHR table {tmp_path / 'ehr.csv'}: {gone}" in text
    assert f"2 RNA patient IDs are not in the EHR table {tmp_path / 'ehr.csv'}: {gone}" in text
    assert c.report["ct_not_in_ehr"] == gone and set(gone) <= set(c.ids)      # still predicted, from what they have
    assert "predicted without EHR, from what they have where the model uses it" in text


def test_macro_metrics_are_over_the_classes_present_and_sklearn_is_quiet():
    """Review: a class absent among the scored patients counted as an F1 of 0 in macro-F1 but was left out of
    macro-AUC (two rules), and scikit-learn's raw 'y_pred contains classes not in y_true' leaked."""
    import warnings

    from lungai.fusion.metrics import absent_classes, class_counts, fast_scores, scores

    y = np.array([0, 0, 0, 1, 1, 1])
    proba = np.array([[.8, .1, .1], [.7, .2, .1], [.1, .1, .8], [.2, .7, .1], [.1, .8, .1], [.6, .3, .1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = scores(y, proba, 3)
    f1_i, f1_ii = 2 * 2 / (2 * 2 + 1 + 1), 2 * 2 / (2 * 2 + 0 + 1)   # class I: tp 2, fp 1, fn 1; II: tp 2, fn 1
    assert s["macro_f1"] == pytest.approx((f1_i + f1_ii) / 2)          # over I and II, not / 3
    assert fast_scores(y, proba, 3)["macro_f1"] == pytest.approx(s["macro_f1"])
    assert class_counts(y, ["I", "II", "III-IV"]) == {"I": 3, "II": 3, "III-IV": 0}
    assert absent_classes(y, ["I", "II", "III-IV"]) == ["III-IV"]
    full = np.array([0, 1, 2, 0, 1, 2])                                  # every class present: the plain average
    assert scores(full, proba, 3)["macro_f1"] == pytest.approx(
        fast_scores(full, proba, 3)["macro_f1"])


def test_validate_names_a_class_no_scored_patient_has(tmp_path, syn, no_ct_model, capsys):
    """Review: with no scored patient of a class the metrics were skewed without a word, and the console gave the
    class counts of all patients only."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    gone = sorted(ehr.stage.unique())[-1]
    ehr[ehr.stage != gone].to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["validate", OWN, "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--label", "stage",
                 "-o", tmp_path / "v"]) == 0
    out = capsys.readouterr()
    assert f"warning: no scored {gone} patient for fusion" in out.err and "y_pred contains" not in out.err
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    entry = m["models"]["fusion"]
    assert entry["scored_classes"][gone] == 0 and gone not in entry["macro_over"]
    assert f"{gone} 0" in out.out                                        # the scored class counts, per model


def test_validate_where_no_model_scores_anyone_is_an_input_error(tmp_path, syn, no_ct_model, capsys):
    """Review: exit code 0 and a generic message naming a CT branch the model does not have."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    feats = [c for c in ehr.columns if c not in ("patient_id", "stage")]
    ehr[feats] = ""
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["validate", OWN, "--model", no_ct_model, "--ehr", tmp_path / "ehr.csv", "--label", "stage",
                 "-o", tmp_path / "v"]) == 2
    err = capsys.readouterr().err
    assert "no locked model could score any patient" in err and "fusion: EHR (at least one of" in err
    assert "CT" not in err.split("no locked model")[1].split("How to fix")[0]
    assert not (tmp_path / "v" / "metrics.json").exists()


@pytest.mark.parametrize("value,expected", [("T2c", None), ("T3a", None), ("T4a", None), ("T0a", None),
                                            ("T2mi", None), ("T4mi", None), ("Tisa", None), ("T1mi", 1), ("T1c", 1),
                                            ("T2b", 2), ("T 2a", 2), ("pT 1b", 1), ("T3", 3), ("Tis", 0)])
def test_t_sub_letters_are_those_of_each_value(value, expected):
    """Review: any of a-c / mi was accepted after any T number (T2c, T4a, T2mi)."""
    from lungai.fusion.labels import _t_num

    assert _t_num(value) == expected


@pytest.mark.parametrize("value,expected", [("N2a", 2), ("N2b", 2), ("N1b", 1), ("N 1", 1), ("N3a", None),
                                            ("N0b", None), ("M1c", 1), ("M 1a", 1), ("M0a", None), ("M1d", None)])
def test_n_and_m_sub_letters_are_those_of_each_value(value, expected):
    from lungai.fusion.labels import _m_num, _n_num

    assert (_n_num if value.startswith("N") else _m_num)(value) == expected


def test_a_tnm_combination_with_an_impossible_value_is_named_as_not_understood():
    """Review: T5N0M0 was reported as 'T or N unknown', T2N1M2 as 'M unknown'."""
    from lungai.fusion.labels import check_tnm_combinations

    with pytest.raises(InputError) as err:
        check_tnm_combinations(["T5N0M0", "T2N1M2", "T2cN0M0", "T 2a N0 M0", "TXN0M0"])
    fix = err.value.fix
    assert "'T5N0M0', 'T2N1M2', 'T2cN0M0' have a T, N or M value not understood" in fix
    assert "'TXN0M0' have T or N unknown" in fix and "I=T 2a N0 M0" in fix


def test_validate_on_a_stage_iii_iv_cohort_says_the_group_holds_stage_iv(tmp_path, syn, capsys):
    """A model of the classes I / II / III-IV (--stage-from) validated on a stage III/IV cohort: one class, and the
    message says why - the group holds stage III and IV alike (before: only "validate on a cohort with several
    classes")."""
    ehr = pd.read_csv(syn["ehr"], dtype=str)
    ehr["stage"] = ehr.stage.replace({"III": "III-IV"})
    ehr.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr",
                 "-o", tmp_path / "model", *FAST]) == 0
    ehr[ehr.stage == "III-IV"].to_csv(tmp_path / "late.csv", index=False)
    capsys.readouterr()
    assert _cli(["validate", OWN, "--model", tmp_path / "model", "--ehr", tmp_path / "late.csv", "--label", "stage",
                 "-o", tmp_path / "v"]) == 2
    err = capsys.readouterr().err
    assert "only one class (III-IV)" in err and "holds stage III and stage IV alike" in err
    # the cohort's sub-stages (IA, IIIA, IV) for the model's groups I / II / III-IV: the fix gives the --label-groups
    # value that reads them so (before, only "use the same label definition ... as in training")
    sub = ehr.copy()
    late = sub.stage == "III-IV"
    sub.loc[late, "stage"] = ["IIIA" if k % 2 else "IV" for k in range(int(late.sum()))]
    sub.loc[sub.stage == "I", "stage"] = "IA"
    sub.to_csv(tmp_path / "sub.csv", index=False)
    data = ["--model", tmp_path / "model", "--ehr", tmp_path / "sub.csv", "--label", "stage"]
    assert _cli(["validate", OWN, *data, "-o", tmp_path / "v2"]) == 2
    groups = "I=IA;II=II;III-IV=IIIA,IV"
    assert f'--label-groups "{groups}"' in capsys.readouterr().err
    assert _cli(["validate", OWN, *data, "--label-groups", groups, "-o", tmp_path / "v3"]) == 0
