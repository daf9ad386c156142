"""lungai stage checks found by QA: the label leaking in as a feature (--stage-from with --label naming a column, a
copy of the label), TNM combinations as label values, EHR values not seen in training, progress during the fusion
fits, and the leading-zero hint when no RNA ID joins."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.fusion.data import load_cohort

FAST = ["--epochs", 2, "--top-k", 5, "--neighbours", 2, "--inner-folds", 1, "--baselines", "logreg"]


def _cli(args):
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


def _tnm_ehr(tmp_path, n=24, **cols):
    ids = [f"P{i:02d}" for i in range(n)]
    rng = np.random.default_rng(1)
    t = ["T1a", "T2b", "T3", "T1b"] * (n // 4)
    nn = ["N0", "N0", "N1", "N2"] * (n // 4)
    df = pd.DataFrame({"Case ID": ids, "age": rng.integers(50, 80, n), "T": t, "N": nn, "M": ["M0"] * n, **cols})
    df.to_csv(tmp_path / "ehr.csv", index=False)
    return df


# ------------------------------------------------------------------------------------------- 1. label leaks
def test_stage_from_with_a_label_naming_a_column_of_the_table_is_refused(tmp_path):
    from lungai.fusion.labels import derive_stage

    df = _tnm_ehr(tmp_path)
    stage = derive_stage(df.set_index("Case ID"), "T", "N", "M")
    _tnm_ehr(tmp_path, Stage=["Stage " + v for v in stage])           # the table's own overall stage
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "ehr.csv", label="Stage", stage_from=["T", "N", "M"])
    assert "with --stage-from the label is derived" in err.value.problem and "'Stage'" in err.value.problem
    assert "--drop 'Stage'" in err.value.fix and "another --label name" in err.value.fix
    c = load_cohort(tmp_path / "ehr.csv", label="Stage", stage_from=["T", "N", "M"], drop_columns=["Stage"])
    assert "Stage" not in c.ehr.columns and c.labels.name == "Stage"    # dropped: the derived label named Stage
    # under another name the column would stay a feature: a copy of the derived stage, refused by name
    with pytest.raises(InputError, match=r"EHR column equal to the derived stage: 'Stage' \(100 %"):
        load_cohort(tmp_path / "ehr.csv", label="stage_group", stage_from=["T", "N", "M"])
    # the CLI says it before any work (exit 2), as cv and train would otherwise score 1.000
    assert _cli(["cv", "--ehr", tmp_path / "ehr.csv", "--stage-from", "T,N,M", "--label", "Stage", "--modalities",
                 "ehr", "-o", tmp_path / "cv", "--folds", 2, *FAST]) == 2
    assert not (tmp_path / "cv" / "metrics.json").exists()


def test_a_copy_of_a_label_column_is_refused_and_chance_agreement_is_not():
    from lungai.fusion.data import label_copies

    ids = [f"P{i:02d}" for i in range(40)]
    label = pd.Series(["yes"] * 4 + ["no"] * 36, index=ids, name="Chemotherapy")
    ehr = pd.DataFrame({"Adjuvant": ["Yes"] * 4 + ["No"] * 36,                          # a copy (case differs)
                        "rare": ["no"] * 39 + ["yes"],                                  # 90 % equal by chance
                        "age": np.arange(40)}, index=ids)
    assert label_copies(ehr, label) == {"Adjuvant": 1.0}
    ehr.loc["P00", "Adjuvant"] = "No"                                                    # 39 of 40 equal
    assert list(label_copies(ehr, label)) == ["Adjuvant"]
    assert label_copies(ehr.drop(columns=["Adjuvant"]), label) == {}


# ------------------------------------------------------------------------------------------- 2. TNM labels
def test_tnm_combinations_as_label_values_are_refused_with_stage_from_and_label_groups(tmp_path):
    from lungai.fusion.labels import parse_groups

    _tnm_ehr(tmp_path, tnm=["T2N1M0", "T1aN0M0", "pT3 N2 M0", "T2bN0M0"] * 6)
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "ehr.csv", label="tnm")
    assert "TNM combinations" in err.value.problem and "'T2N1M0'" in err.value.problem
    assert "--stage-from" in err.value.fix
    groups = err.value.fix.split('--label-groups "')[1].split('"')[0]
    assert groups == "I=T1aN0M0;II=T2N1M0,T2bN0M0;III-IV=pT3 N2 M0"
    tnm = ["T", "N", "M"]         # the synthetic T column determines the label: a copy, refused by the leak check
    c = load_cohort(tmp_path / "ehr.csv", label="tnm", label_groups=parse_groups(groups), drop_columns=tnm)
    assert c.report["class_counts"] == {"I": 6, "II": 12, "III-IV": 6}
    _tnm_ehr(tmp_path, t_only=["T1a", "T2", "T3", "Tis"] * 6)                            # T values alone: a label
    assert sorted(set(load_cohort(tmp_path / "ehr.csv", label="t_only", drop_columns=tnm).labels)) == [
        "T1a", "T2", "T3", "Tis"]


# ------------------------------------------------------------------------------------------- 3. unseen levels
def test_unseen_and_differently_cased_ehr_levels_are_named_and_never_all_zero():
    from lungai.fusion.preprocess import MISSING_LEVEL, EHREncoder, UnseenLevelWarning

    train = pd.DataFrame({"smoking": ["Current", "Former", "Never", None] * 3, "age": np.arange(12.0)},
                         index=[f"T{i}" for i in range(12)])
    enc = EHREncoder().fit(train)
    assert MISSING_LEVEL in enc.levels()["smoking"]
    new = pd.DataFrame({"smoking": ["current", " Former ", "Heavy", None, "Never"], "age": [1.0] * 5},
                       index=["A", "B", "C", "D", "E"])
    with pytest.warns(UnseenLevelWarning) as caught:
        x = enc.transform(new)
    assert len(caught) == 1
    w = caught[0].message
    text = str(w)
    assert "'smoking'" in text and "'current' (1 patient) read as the trained level 'Current'" in text
    assert "'Heavy' (1 patient) not a trained level: treated as missing" in text
    assert "trained levels: 'Current', 'Former', 'Never')" in text
    # the action: what to do about a value treated as missing (QA stagefollow69: the levels only, no fix)
    assert text.endswith("- correct the value to one of the trained levels, or retrain the model on a table with it")
    with pytest.warns(UnseenLevelWarning) as cased:          # case only: read as the level, nothing to correct
        enc.transform(pd.DataFrame({"smoking": ["current"], "age": [1.0]}, index=["A"]))
    assert "correct the value" not in str(cased[0].message)
    assert set(w.by_patient) == {"A", "B", "C"} and "treated as missing" in w.by_patient["C"][0]
    ref = enc.transform(pd.DataFrame({"smoking": ["Current", "Former", None], "age": [1.0] * 3}))
    assert np.array_equal(x[0], ref[0]) and np.array_equal(x[1], ref[1])   # case / spaces: the trained level
    assert np.array_equal(x[2], ref[2]) and np.array_equal(x[3], ref[2])   # unseen: the missing level, not all zero
    cats = [k for k, n in enumerate(enc.feature_names()) if n.startswith("cat__")]
    assert (x[:, cats].sum(axis=1) == 1).all()


def test_a_value_of_a_column_constant_in_training_says_so_with_the_consequence_and_the_fix():
    """QA stagefollow71 (NSCLC-Radiogenomics, stage validate): "'Tumor Location (choice=L Lingula)': 'Checked' ... not a
    trained level: treated as missing (no training patient lacked it: no level is set)" never said that the column was
    'Unchecked' for every training patient, and its fix was to "correct the value" - a true value.  It says the column
    was constant in training, that the model cannot weigh the value, and how to have it weighed or left out."""
    from lungai.fusion.preprocess import EHREncoder, UnseenLevelWarning

    col = "Tumor Location (choice=L Lingula)"
    train = pd.DataFrame({col: ["Unchecked"] * 12, "smoking": ["Current", "Former", "Never"] * 4,
                          "age": np.arange(12.0)}, index=[f"T{i}" for i in range(12)])
    enc = EHREncoder().fit(train)
    assert enc.levels()[col] == ["Unchecked"]
    new = pd.DataFrame({col: ["Checked", "Unchecked", "Checked"], "smoking": ["Current"] * 3, "age": [1.0] * 3},
                       index=["A", "B", "C"])
    with pytest.warns(UnseenLevelWarning) as caught:
        enc.transform(new)
    assert len(caught) == 1
    w = caught[0].message
    text = str(w)
    assert ("'Checked' (2 patients) not a trained level: no level is set - the column was constant in training (every "
            "training patient had 'Unchecked'), so the model learnt nothing from it and cannot weigh 'Checked'") in text
    assert text.endswith("- to have it weighed, retrain the model on a cohort whose training patients have other "
                         f"values than 'Unchecked' in {col!r}; to leave the column out, retrain with "
                         f"--drop {col!r}"), text
    assert "correct the value" not in text                  # 'Checked' is the patient's true value
    assert set(w.by_patient) == {"A", "C"} and "constant in training" in w.by_patient["A"][0]
    # one value beside missing ones in training: treated as missing (a trained level), the same words
    train.loc[["T0", "T1"], col] = None
    with pytest.warns(UnseenLevelWarning) as caught:
        EHREncoder().fit(train).transform(new)
    text = str(caught[0].message)
    assert ("not a trained level: treated as missing - the column was constant in training (every training patient "
            "with a value had 'Unchecked')") in text and "correct the value" not in text


def _ehr_model(tmp_path) -> pd.DataFrame:
    """A 12-patient EHR table (age, smoking, stage) and an EHR-only stage model trained on it in ``tmp_path / "m"``."""
    n = 12
    ids = [f"P{i:02d}" for i in range(n)]
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Case ID": ids, "age": rng.integers(50, 80, n), "smoking": ["Current", "Former", "Never"] * 4,
                       "stage": ["I", "II"] * 6})
    df.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr",
                 "-o", tmp_path / "m", *FAST]) == 0
    return df


def test_predict_names_unseen_ehr_levels_on_the_console_and_in_the_patients_notes(tmp_path, capsys):
    df = _ehr_model(tmp_path)
    df["smoking"] = ["current", "Heavy", "Never"] * 4
    df.to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert _cli(["predict", "--model", tmp_path / "m", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "p"]) == 0
    err = capsys.readouterr().err
    assert "warning: EHR column 'smoking': 'Heavy' (4 patients) not a trained level: treated as missing" in err
    assert "'current' (4 patients) read as the trained level 'Current'" in err
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv", keep_default_na=False).set_index("patient_id")
    assert "treated as missing" in pred.loc["P01", "notes"] and "'Current'" in pred.loc["P00", "notes"]
    # P02: no level note - only that it is one of the model's training patients (in-sample)
    from lungai.fusion.model_io import IN_SAMPLE_NOTE

    assert pred.loc["P02", "notes"] == IN_SAMPLE_NOTE



def test_text_in_a_numeric_ehr_column_at_predict_gives_that_patient_no_stage(tmp_path, capsys):
    """A few patients' table (too few values to refuse the column as numeric with text, as a cohort's table is) with
    text in one of the model's numeric EHR columns (Age '7O', a decimal comma '70,5'): that patient gets no stage
    (status 'not computed: ...' naming column, value and - for '70,5' - the decimal point; no probabilities), said on
    the console; the other patients are predicted as before.  Before, the value was imputed as missing and the
    patient's stage written as 'computed' (a European spreadsheet's '70,5' silently became the cohort's median)."""
    n = 12
    ids = [f"P{i:02d}" for i in range(n)]
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Case ID": ids, "age": rng.integers(50, 80, n), "weight": rng.integers(50, 90, n),
                       "smoking": ["Current", "Former", "Never"] * 4, "stage": ["I", "II"] * 6})
    df.to_csv(tmp_path / "ehr.csv", index=False)
    assert _cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr",
                 "-o", tmp_path / "m", *FAST]) == 0
    df.iloc[:3].drop(columns="stage").to_csv(tmp_path / "clean.csv", index=False)
    assert _cli(["predict", "--model", tmp_path / "m", "--ehr", tmp_path / "clean.csv", "-o", tmp_path / "p0"]) == 0
    clean = pd.read_csv(tmp_path / "p0" / "predictions.csv", keep_default_na=False).set_index("patient_id")
    new = df.astype({"age": object, "weight": object}).iloc[:3].copy()
    new.loc[0, "age"], new.loc[1, "weight"] = "7O", "70,5"
    new.to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert _cli(["predict", "--model", tmp_path / "m", "--ehr", tmp_path / "new.csv", "-o", tmp_path / "p"]) == 0
    err = capsys.readouterr().err
    assert "2 patients get no stage: text in a numeric EHR column of the model: P00: EHR 'age' = '7O'" in err
    assert "treated as missing" not in err
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv", keep_default_na=False).set_index("patient_id")
    assert pred.loc["P00", "status"].startswith("not computed: EHR 'age' = '7O' is not a number - correct the value")
    assert pred.loc["P01", "status"] == ("not computed: EHR 'weight' = '70,5' is not a number (type 70.5: a decimal "
                                         "point, not a comma) - correct the value in the EHR table (a number, with a "
                                         "decimal point), or leave the cell empty to have it imputed")
    assert pred.loc["P00", "predicted"] == "" and pred.loc["P01", "predicted"] == ""
    assert pred.loc["P00", "p_I"] == "" and pred.loc["P01", "p_II"] == ""
    from lungai.fusion.model_io import IN_SAMPLE_NOTE       # P02 is a training patient: that note only

    assert pred.loc["P02", "status"] == "computed" and pred.loc["P02", "notes"] == IN_SAMPLE_NOTE
    assert pred.loc["P02", "predicted"] == clean.loc["P02", "predicted"]
    assert float(pred.loc["P02", "p_I"]) == float(clean.loc["P02", "p_I"])


def test_the_stage_panel_refuses_text_in_a_numeric_ehr_column(tmp_path):
    """The Slicer panel's path (lungai.scene.stage.predict_stage_nodes, one patient of an EHR table): a decimal comma
    in a numeric column of the model is an error naming the value and the decimal point, not a stage computed from
    the imputed median."""
    from lungai.errors import InputError
    from lungai.scene.stage import predict_stage_nodes

    df = _ehr_model(tmp_path)
    new = df.astype({"age": object}).iloc[3:6].copy()   # 3 patients: too few numbers to refuse the column at reading
    new.loc[4, "age"] = "64,5"
    new.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(InputError, match=r"no stage for P04: EHR 'age' = '64,5' is not a number \(type 64\.5: a "
                                         r"decimal point, not a comma\)") as err:
        predict_stage_nodes(None, tmp_path / "m", "P04", ehr_path=tmp_path / "new.csv")
    assert "leave the cell empty" in err.value.fix
    full = df.astype({"age": object}).drop(columns="stage")   # 12 patients: the column refused when read, hint given
    full.loc[4, "age"] = "64,5"
    full.to_csv(tmp_path / "full.csv", index=False)
    with pytest.raises(InputError, match=r"'age' = '64,5' \(type 64\.5: a decimal point, not a comma\) for patient "
                                         r"P04 \(CSV line 6\)"):
        predict_stage_nodes(None, tmp_path / "m", "P04", ehr_path=tmp_path / "full.csv")


def test_the_console_api_names_the_tables_spelling_of_a_mistyped_patient(tmp_path):
    """QA stagefollow65: predict_stage_nodes for 'r01-003' on the NSCLC-Radiogenomics table (AMC-001 ... R01-163)
    said "How to fix: choose one of: AMC-001, ..., AMC-015 ..." - 15 other patients, not the R01-003 it named in the
    problem.  Now the fix names the table's spelling; an id with none keeps the list."""
    from lungai.errors import InputError
    from lungai.scene.stage import predict_stage_nodes

    _ehr_model(tmp_path)
    ids = [f"AMC-{i:03d}" for i in range(1, 17)] + ["R01-003"]
    pd.DataFrame({"Case ID": ids, "age": 60, "smoking": "Never"}).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(InputError, match=r"1 id differs only in letter case \(r01-003 vs R01-003\)") as err:
        predict_stage_nodes(None, tmp_path / "m", "r01-003", ehr_path=tmp_path / "new.csv")
    assert err.value.fix == "use the table's id: R01-003"
    with pytest.raises(InputError) as err:
        predict_stage_nodes(None, tmp_path / "m", "R01-999", ehr_path=tmp_path / "new.csv")
    assert err.value.fix == "choose one of: " + ", ".join(ids[:15]) + " ..."


# ------------------------------------------------------------------------------------------- 4. progress
class _Record:
    def __init__(self):
        self.messages = []

    def update(self, n=1, message=None):
        self.messages.append((n, message))


def test_fusion_fits_post_their_epochs_in_nested_cv_also_without_a_validation_set(tmp_path):
    from lungai.fusion.cv import candidates, cross_validate
    from lungai.fusion.pipeline import FusionConfig

    n = 16
    ids = [f"P{i:02d}" for i in range(n)]
    pd.DataFrame({"Case ID": ids, "age": np.arange(n), "site": ["A", "B"] * 7 + ["Z", "Y"],
                  "stage": ["I", "II"] * (n // 2)}).to_csv(tmp_path / "ehr.csv", index=False)
    cohort = load_cohort(tmp_path / "ehr.csv", label="stage")
    cfg = FusionConfig(modalities=("ehr",), epochs=20, min_epochs=2)
    rec = _Record()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cross_validate(cohort, candidates(cfg, (), True, ["concat", "weighted"]), folds=2, inner_folds=2,
                       progress=rec)
    # a rare level absent from a training fold is expected inside CV: not warned about there (treated as missing)
    assert not [w for w in caught if "not a trained level" in str(w.message)]
    texts = [m for k, m in rec.messages if k == 0]
    assert "fusion fold 1/2 inner 2/2 grid weighted epoch 20/20 loss" in " | ".join(texts)
    assert any(t.startswith("fusion fold 2/2 refit ") and "epoch 20/20 loss" in t for t in texts)
    assert [m for k, m in rec.messages if k][-1].startswith("fusion fold 2/2 macro-F1")


def test_fusion_epochs_are_posted_by_elapsed_time_not_every_tenth(monkeypatch):
    """QA stagefollow69: epochs were posted every 10th only - 6-10 s between posts with 500 genes on a loaded
    machine.  Now at most every ``tick_interval`` seconds (and the last epoch): slow epochs (a monkeypatched batch)
    are each posted; the training itself is the same (the same weights with and without progress)."""
    import time

    import torch

    from lungai.fusion import train

    class Timed(_Record):
        tick_interval = 0.2

        def update(self, n=1, message=None):
            self.messages.append((time.monotonic(), message))

    model_args = dict(n_classes=2, epochs=6, min_epochs=1, patience=50, seed=3)
    rng = np.random.default_rng(0)
    data = {"ehr": torch.as_tensor(rng.normal(size=(12, 3)), dtype=torch.float32),
            "genes": torch.zeros((12, 0)), "ct": torch.zeros((12, 0)), "avail": torch.ones((12, 3))}
    y = np.array([0, 1] * 6)

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(3, 2))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make()

        def forward(self, ehr, genes, ct, avail):
            return self.net(ehr)

    quiet = Net()
    train.fit(quiet, data, y, data, y, **model_args)
    batch = train._batch

    def slow(arrays, idx):
        time.sleep(0.15)               # an epoch of a 500-gene fusion on a loaded machine, scaled down
        return batch(arrays, idx)

    monkeypatch.setattr(train, "_batch", slow)
    for val in (data, None):           # with a validation set and without (a refit)
        rec, net = Timed(), Net()
        start = time.monotonic()
        train.fit(net, data, y, val, None if val is None else y, progress=rec, **model_args)
        times = [start] + [t for t, _ in rec.messages]
        assert len(rec.messages) >= 3, rec.messages                      # before: epoch 6/6 only
        assert max(b - a for a, b in zip(times, times[1:])) < 0.9, rec.messages
        assert rec.messages[-1][1].startswith("epoch 6/6")
        if val is not None:
            assert all(torch.equal(a, b) for a, b in zip(quiet.state_dict().values(), net.state_dict().values()))


def test_stage_train_says_the_t_sne_and_its_seconds(tmp_path, monkeypatch):
    """QA stagefollow69: `stage train`'s bar stood on "fusion fitted" through the t-SNE (~11 s with 500 genes on a
    loaded machine) and said "t-SNE" once it was done; now it is said as it starts, then with its seconds (in a
    log every LOG_INTERVAL seconds - 0.05 s here), and tsne_points.csv is the same."""
    import contextlib
    import re
    import time

    from lungai import progress
    from lungai.fusion import explain
    from stage_helpers import small_stage_cohort

    paths = small_stage_cohort(tmp_path / "c", 16)
    fast = ["--epochs", 1, "--inner-folds", 1, "--baselines", "logreg", "--modalities", "ehr"]
    real = explain.tsne_points

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")
    monkeypatch.setattr(explain, "tsne_points", slow)
    err = io.StringIO()          # no terminal: a log's plain lines
    with contextlib.redirect_stderr(err):
        assert _cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m", *fast]) == 0
    lines = err.getvalue().splitlines()
    assert any(line.endswith("t-SNE of the fused embeddings") for line in lines), lines
    timed = [line for line in lines if re.search(r"t-SNE of the fused embeddings \(\d+ s\)$", line)]
    assert len(timed) >= 3, lines
    assert not any(re.search(r"fusion fitted \(\d+ s\)$", line) for line in lines), lines
    monkeypatch.undo()
    with contextlib.redirect_stderr(io.StringIO()):
        assert _cli(["train", "--ehr", paths["ehr"], "--label", "stage", "-o", tmp_path / "m2", *fast]) == 0
    assert (tmp_path / "m" / "tsne_points.csv").read_bytes() == (tmp_path / "m2" / "tsne_points.csv").read_bytes()


def test_the_bar_draws_the_last_message_of_a_step_at_once(monkeypatch):
    from lungai.progress import _TqdmProgress

    class Terminal(io.StringIO):          # in a terminal (in a log only every LOG_INTERVAL seconds: test_cli_foundation)
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = _TqdmProgress(3, "stage cv", disable=False)
    bar.update(1, "logreg fold 1/3")
    bar.update(1, "logreg fold 2/3 macro-F1 0.50")      # within tqdm's mininterval of the first draw
    drawn = sys.stderr.getvalue()
    bar.close()
    assert "fold 2/3 macro-F1 0.50" in drawn


# ------------------------------------------------------------------------------------------- 7. RNA IDs
def test_no_rna_id_joining_names_leading_zeros(tmp_path):
    from lungai.fusion.data import orient_rna

    rna = pd.DataFrame(np.ones((3, 2)), index=["g1", "g2", "g3"], columns=["7", "8"])
    with pytest.raises(InputError, match="no RNA sample ID joins.*differ only by leading zeros"):
        orient_rna(rna, ids=["007", "008"])


# ------------------------------------------------------------------------------------------- review 2
def _yes_no(n, k):
    return ["Yes"] * k + ["No"] * (n - k)


def test_a_copy_of_the_raw_label_is_refused_with_label_groups(tmp_path):
    """QA: with --label-groups the leak check compared with the grouped label only ('Adjuvant Treatment' = the raw
    'Chemotherapy' for every patient, AUC 0.997)."""
    from lungai.fusion.labels import parse_groups

    n = 60
    rng = np.random.default_rng(3)
    chemo = list(rng.choice(["Yes", "No"], n))
    pd.DataFrame({"Case ID": [f"P{i:02d}" for i in range(n)], "age": rng.integers(40, 80, n), "Chemotherapy": chemo,
                  "Adjuvant Treatment": chemo}).to_csv(tmp_path / "ehr.csv", index=False)
    groups = parse_groups("treated=Yes;untreated=No")
    with pytest.raises(InputError, match=r"EHR column equal to the label 'Chemotherapy': 'Adjuvant Treatment' "
                                         r"\(100 % of 60"):
        load_cohort(tmp_path / "ehr.csv", label="Chemotherapy", label_groups=groups)
    c = load_cohort(tmp_path / "ehr.csv", label="Chemotherapy", label_groups=groups, drop_columns=["Adjuvant Treatment"])
    assert set(c.labels) == {"treated", "untreated"}


def test_whole_number_floats_and_either_polarity_of_a_binary_label_are_copies():
    """QA: a 0/1 label and its float copy with one NaN ('1.0' vs '1'), and dead_num 0/1 vs Alive/Dead, were missed."""
    from lungai.fusion.data import label_copies

    ids = [f"P{i:02d}" for i in range(40)]
    dead = pd.Series(["1"] * 15 + ["0"] * 25, index=ids, name="dead")
    ehr = pd.DataFrame({"dead_float": [np.nan] + [1.0] * 14 + [0.0] * 25,           # read as floats (one NaN)
                        "age": np.arange(40.0)}, index=ids)
    assert label_copies(ehr, dead) == {"dead_float": 1.0}
    status = pd.Series(["Dead"] * 15 + ["Alive"] * 25, index=ids, name="Survival Status")
    assert label_copies(pd.DataFrame({"dead_num": [1] * 15 + [0] * 25}, index=ids), status) == {"dead_num": 1.0}
    flipped = pd.DataFrame({"alive_num": [0] * 15 + [1] * 25}, index=ids)               # the other polarity
    assert label_copies(flipped, status) == {"alive_num": 1.0}
    noise = pd.DataFrame({"other": list(np.random.default_rng(0).choice([0, 1], 40))}, index=ids)
    assert label_copies(noise, status) == {}


def test_a_near_copy_in_a_small_cohort_is_warned_about_not_refused_and_keep_column_keeps_a_copy(tmp_path):
    """QA: 30 patients, 'Radiation' equal to 'Recurrence' for 29 by coincidence, was refused (only --drop left)."""
    from lungai.errors import InputNote

    def table(n, k, mismatches):
        lab = _yes_no(n, k)
        col = list(lab)
        for i in range(mismatches):
            col[i] = "No" if col[i] == "Yes" else "Yes"
        pd.DataFrame({"Case ID": [f"P{i:03d}" for i in range(n)], "age": np.arange(n), "Recurrence": lab,
                      "Radiation": col}).to_csv(tmp_path / "ehr.csv", index=False)

    table(30, 10, 1)                                        # 97 % at n=30: may be coincidence
    with pytest.warns(InputNote, match=r"nearly equal to the label 'Recurrence': 'Radiation' \(97 % of 30 patients\)"
                                       r".*may be coincidence.*--drop 'Radiation'"):
        c = load_cohort(tmp_path / "ehr.csv", label="Recurrence")
    assert "Radiation" in c.ehr.columns
    table(30, 10, 0)                                        # an exact copy: refused at any size
    with pytest.raises(InputError, match="'Radiation' \\(100 % of 30 patients\\)") as err:
        load_cohort(tmp_path / "ehr.csv", label="Recurrence")
    assert "--drop 'Radiation'" in err.value.fix and "--keep-column" in err.value.fix
    with pytest.warns(InputNote, match="kept as a feature \\(--keep-column\\); if it is a copy"):  # deliberately
        c = load_cohort(tmp_path / "ehr.csv", label="Recurrence", keep_columns=["Radiation"])
    assert "Radiation" in c.ehr.columns
    table(120, 40, 2)                                       # a near copy among many patients: refused
    with pytest.raises(InputError, match="'Radiation' \\(98 % of 120 patients\\)"):
        load_cohort(tmp_path / "ehr.csv", label="Recurrence")


def _substage_ehr(tmp_path, n, seed=0):
    """n patients: a stage group I / II / III-IV label and its finer copy (sub-stages, more values than the label,
    each in one class), beside clinical columns that are no copies (histology, smoking, sex, a date per patient)."""
    rng = np.random.default_rng(seed)
    sub = rng.choice(["IA", "IB", "IIA", "IIB", "IIIA", "IIIB", "IV"], n, p=[.3, .2, .1, .1, .15, .1, .05])
    group = pd.Series(sub).map(lambda v: "I" if v in ("IA", "IB") else "II" if v.startswith("II") and
                               not v.startswith("III") else "III-IV")
    df = pd.DataFrame({"Case ID": [f"P{i:03d}" for i in range(n)], "Stage": group,
                       "Pathological stage": ["Stage " + v for v in sub],
                       "Histology": rng.choice(["Adenocarcinoma", "Squamous cell carcinoma", "NSCLC NOS"], n),
                       "Smoking status": rng.choice(["Nonsmoker", "Former", "Current"], n),
                       "Gender": rng.choice(["Male", "Female"], n),
                       "CT Date": [f"1/{1 + i % 28}/{1990 + i // 28}" for i in range(n)],
                       "age": rng.integers(40, 85, n)})
    df.to_csv(tmp_path / "ehr.csv", index=False)
    return df


def test_a_finer_copy_of_the_label_is_refused_and_clinical_columns_are_not(tmp_path):
    """QA: a sub-stage column (IA / IB / IIA ... with the label I / II / III-IV) has more values than the label, so
    the leak check (a column with no more values than the label, each mapped to one) missed it: CV near 1.0.  A
    column each of whose values falls in one label class is refused (from LEAK_MIN_N patients; judged
    leave-one-out, so a value per patient - dates - gives nothing away), with --drop / --keep-column; the clinical
    columns that are no copies (histology, smoking, sex, age, dates) are not flagged."""
    from lungai.errors import InputNote
    from lungai.fusion.data import LEAK_MIN_N, label_copy_counts

    df = _substage_ehr(tmp_path, 160)
    with pytest.raises(InputError, match=r"EHR column equal to the label 'Stage': 'Pathological stage' \(each "
                                         r"of its values in one class: 100 % of 160 patients\)") as err:
        load_cohort(tmp_path / "ehr.csv", label="Stage")
    assert err.value.fix == "leave it out: --drop 'Pathological stage' (or keep it deliberately: --keep-column NAME)"
    labels = df.set_index("Case ID")["Stage"]
    assert list(label_copy_counts(df.set_index("Case ID").drop(columns=["Stage"]), labels)) == ["Pathological stage"]
    # one sub-stage given to one patient only (e.g. one IIIB) gives nothing leave-one-out: still a copy (99 %)
    df.loc[0, "Pathological stage"], df.loc[0, "Stage"] = "Stage IIIC", "III-IV"
    df.to_csv(tmp_path / "ehr.csv", index=False)
    with pytest.raises(InputError, match=r"'Pathological stage' \(each of its values in one class: 99 % of 160"):
        load_cohort(tmp_path / "ehr.csv", label="Stage")
    c = load_cohort(tmp_path / "ehr.csv", label="Stage", drop_columns=["Pathological stage"])
    assert {"Histology", "Smoking status", "Gender", "CT Date", "age"} <= set(c.ehr.columns)
    with pytest.warns(InputNote, match=r"kept as a feature \(--keep-column\)"):
        c = load_cohort(tmp_path / "ehr.csv", label="Stage", keep_columns=["Pathological stage"])
    assert "Pathological stage" in c.ehr.columns
    # in a small cohort a few patients per value can fall in one class by chance: warned about, not refused
    _substage_ehr(tmp_path, LEAK_MIN_N - 10)
    with pytest.warns(InputNote, match=r"nearly equal to the label 'Stage': 'Pathological stage' \(each of its values "
                                       r"in one class: 100 % of 40 patients\).*fewer than 50 patients: may be "
                                       r"coincidence.*--drop 'Pathological stage'"):
        c = load_cohort(tmp_path / "ehr.csv", label="Stage")
    assert "Pathological stage" in c.ehr.columns


def test_a_column_of_many_values_is_no_finer_copy_by_chance():
    """The finer-copy check guesses leave-one-out: a value per patient (ids, dates) or a few patients per value of
    an unrelated column never reach the share; a coarse copy of a finer label (the label has more values) is no
    finer copy either."""
    from lungai.fusion.data import label_copy_counts

    rng = np.random.default_rng(5)
    ids = [f"P{i:03d}" for i in range(200)]
    label = pd.Series(rng.choice(["I", "II", "III-IV"], 200, p=[.6, .2, .2]), index=ids)
    ehr = pd.DataFrame({"date": [f"d{i}" for i in range(200)],                    # one value per patient
                        "pairs": [f"v{i // 2}" for i in range(200)],              # two patients per value
                        "age": rng.integers(40, 85, 200),
                        "weight": rng.normal(170, 30, 200).round(1)}, index=ids)
    assert label_copy_counts(ehr, label) == {}


def _finer_guess_reference(mine: pd.Series, theirs: pd.Series) -> pd.Series:
    """The finer-copy guess row by row (lungai.fusion.data._finer_guess as fb13f55 wrote it): the reference the
    vectorised one must equal."""
    from lungai.fusion.data import _NO_GUESS

    counts = pd.crosstab(mine, theirs)
    guess = []
    for v, t in zip(mine, theirs):
        row = counts.loc[v].copy()
        row[t] -= 1
        top = row.max()
        guess.append(row.idxmax() if top > 0 and int((row == top).sum()) == 1 else _NO_GUESS)
    return pd.Series(guess, index=mine.index)


@pytest.mark.parametrize("seed", range(6))
def test_the_vectorised_finer_guess_equals_the_row_by_row_one(seed):
    """Review (performance): the leave-one-out finer-copy guess went row by row (~28 ms per continuous column: 1000
    gene-like EHR columns, 30 s).  In numpy now; the guesses must be those of the straightforward loop - on random
    columns of few to many values (ties of the other patients' labels among them) and labels of 2 to 5 classes."""
    from lungai.fusion.data import _finer_guess

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 150))
    ids = [f"P{i:03d}" for i in rng.permutation(n)]
    classes = ["I", "II", "III-IV", "IA", "0"][:int(rng.integers(2, 6))]
    theirs = pd.Series(rng.choice(classes, n), index=ids)
    for n_values in (2, 5, n // 3 + 1, n):                    # few values (ties likely) .. one per patient
        mine = pd.Series([f"v{k}" for k in rng.integers(0, n_values, n)], index=ids)
        pd.testing.assert_series_equal(_finer_guess(mine, theirs), _finer_guess_reference(mine, theirs))


def test_the_finer_guess_of_ties_and_single_values():
    """Ties among the other patients' labels, and a value the patient alone has, guess nothing; a single most
    frequent label of the others is the guess."""
    from lungai.fusion.data import _NO_GUESS, _finer_guess

    mine = pd.Series(["a", "a", "a", "b", "b", "c", "d", "d", "d", "d"], index=list("ABCDEFGHIJ"))
    theirs = pd.Series(["I", "II", "I", "I", "II", "I", "I", "II", "II", "III-IV"], index=mine.index)
    # A: others B (II), C (I) - a tie; B: A, C (I, I); D, E: the other one; F: alone with 'c'; G: H, I (II), J;
    # H, I: the others' I / II / III-IV - a three-way tie; J: G (I), H, I (II, II)
    expected = pd.Series([_NO_GUESS, "I", _NO_GUESS, "II", "I", _NO_GUESS, "II", _NO_GUESS, _NO_GUESS, "II"],
                         index=mine.index)
    pd.testing.assert_series_equal(_finer_guess(mine, theirs), expected)
    pd.testing.assert_series_equal(_finer_guess_reference(mine, theirs), expected)


def test_numeric_levels_match_a_table_read_as_floats():
    """QA: trained levels '0', '0-1', '1', '2'; a new table read 0, 1, 2, blank as 0.0 / 1.0 / 2.0: all were
    'not a trained level'."""
    from lungai.errors import InputNote
    from lungai.fusion.preprocess import EHREncoder, UnseenLevelWarning

    train = pd.DataFrame({"ecog": ["0", "0-1", "1", "2"] * 3, "age": np.arange(12.0)})
    enc = EHREncoder().fit(train)
    new = pd.DataFrame({"ecog": [0.0, 1.0, 2.0, np.nan, 3.0], "age": [1.0] * 5}, index=list("ABCDE"))
    with pytest.warns(UnseenLevelWarning) as caught:
        x = enc.transform(new)
    text = str(caught[0].message)
    assert "'1.0' (1 patient) read as the trained level '1' (the same number written differently)" in text
    assert "'3.0' (1 patient) not a trained level: treated as missing" in text
    ref = enc.transform(pd.DataFrame({"ecog": ["0", "1", "2"], "age": [1.0] * 3}))
    assert np.array_equal(x[:3], ref)
    assert issubclass(UnseenLevelWarning, InputNote)        # the CLI prints it as 'warning: ...'


def test_tnm_combinations_without_a_stage_group_get_no_label_not_a_class(tmp_path):
    from lungai.fusion.labels import parse_groups

    _tnm_ehr(tmp_path, tnm=["T2N1M0", "T1aN0M0", "T1NXM0", "TXN0M0"] * 6)
    with pytest.raises(InputError) as err:
        load_cohort(tmp_path / "ehr.csv", label="tnm")
    groups = err.value.fix.split('--label-groups "')[1].split('"')[0]
    assert groups == "I=T1aN0M0;II=T2N1M0;unknown=T1NXM0,TXN0M0" and "get no label" in err.value.fix
    c = load_cohort(tmp_path / "ehr.csv", label="tnm", label_groups=parse_groups(groups), drop_columns=["T", "N", "M"])
    assert c.report["class_counts"] == {"I": 6, "II": 6} and len(c.report["unlabelled"]) == 12


def test_tnm_combinations_with_t0_are_not_said_to_have_t_or_n_unknown():
    """Review: T0 N0 / N1 M0 (no AJCC stage group) were listed as having "T or N unknown" though both are known;
    the hint names each reason apart."""
    from lungai.fusion.labels import check_tnm_combinations

    with pytest.raises(InputError) as err:
        check_tnm_combinations(["T0N0M0", "T0N1M0", "pT0N0M0", "T1aN0M0", "T2bN0M0", "T3N2M0"], "tnm")
    fix = err.value.fix
    assert "unknown=T0N0M0,T0N1M0,pT0N0M0" in fix
    assert "'T0N0M0', 'T0N1M0', 'pT0N0M0' are T0 with N0 / N1 or Tis with N1, and no M1" in fix
    assert "T or N unknown" not in fix
    with pytest.raises(InputError) as err:      # TX N2 M0 is III-IV whatever T is; Tis N1 M0 has no AJCC group
        check_tnm_combinations(["TXN2M0", "TisN1M0", "T4NXM0", "T1aN0M0"])
    assert "III-IV=TXN2M0,T4NXM0" in err.value.fix and "unknown=TisN1M0" in err.value.fix
    with pytest.raises(InputError) as err:
        check_tnm_combinations(["T0N0M0", "T1NXM0", "T1aN0M0"])
    fix = err.value.fix
    assert "unknown=T1NXM0,T0N0M0" in fix
    assert "'T1NXM0' have T or N unknown; 'T0N0M0' are T0 with N0 / N1" in fix


def test_demo_stage_section_has_the_predictions_notes_and_prints_warnings(tmp_path, capsys):
    """QA: the demo dropped the stage prediction's notes (unseen EHR levels) from report.html / summary.json and
    printed a raw UnseenLevelWarning with its source line."""
    import SimpleITK as sitk

    from lungai.cli import _input_notes
    from lungai.demo.pipeline import _stage

    n = 12
    rng = np.random.default_rng(0)
    pd.DataFrame({"Case ID": [f"P{i:02d}" for i in range(n)], "age": rng.integers(50, 80, n),
                  "smoking": ["Current", "Former", "Never"] * 4, "stage": ["I", "II"] * 6}).to_csv(
        tmp_path / "ehr.csv", index=False)
    assert _cli(["train", "--ehr", tmp_path / "ehr.csv", "--label", "stage", "--modalities", "ehr",
                 "-o", tmp_path / "m", *FAST]) == 0
    ct = sitk.Image(8, 8, 4, sitk.sitkInt16)
    tumour = sitk.Image(8, 8, 4, sitk.sitkUInt8)
    capsys.readouterr()
    with _input_notes():
        st = _stage(tmp_path, ct, tumour, {"age": 60, "smoking": "Heavy"}, tmp_path / "m", sample=False, case="X")
    assert st["status"] == "computed"
    assert any("'Heavy'" in t and "treated as missing" in t for t in st["notes"])
    assert "'Heavy'" in st["model_description"]                   # what report.html shows
    err = capsys.readouterr().err
    assert "warning: EHR column 'smoking': 'Heavy'" in err and "UnseenLevelWarning" not in err
