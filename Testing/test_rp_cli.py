"""``lungai rp`` end to end: synth -> train -> validate -> predict, and error exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lungai.cli import main

from rp_helpers import rp_cohort, rp_model_dir  # noqa: F401  (fixtures)


def test_rp_cli_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    train, ext, model = tmp_path / "train.csv", tmp_path / "ext.csv", tmp_path / "model"
    assert main(["rp", "synth", "-o", str(train), "-n", "150", "--seed", "4"]) == 0
    assert main(["rp", "synth", "-o", str(ext), "-n", "80", "--seed", "5", "--noise-features", "0"]) == 0
    assert "oracle AUC" in capsys.readouterr().out
    assert main(["rp", "train", str(train), "--outcome", "rp_grade2", "-o", str(model), "--fast",
                 "--models", "lr", "--feature-sets", "clinical_dosimetric,all", "--outer-folds", "3",
                 "--bootstrap", "4", "--threshold", "0.3", "--final", "all/lr"]) == 0
    out = capsys.readouterr().out
    assert "clinical_dosimetric/lr" in out and "all/lr" in out and "AUC (95% CI)" in out
    assert json.loads((model / "metrics.json").read_text(encoding="utf-8"))["threshold"] == 0.3
    # ext lacks the noise features the locked 'all' model was trained on -> named, exit 2
    assert main(["rp", "validate", str(model), str(ext), "-o", str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert "required columns missing" in err and "rad_tumour_original_shape_MeshVolume" in err
    ext = tmp_path / "ext2.csv"
    assert main(["rp", "synth", "-o", str(ext), "-n", "80", "--seed", "5"]) == 0
    assert main(["rp", "validate", str(model), str(ext), "-o", str(tmp_path / "val")]) == 0
    assert json.loads((tmp_path / "val" / "external_metrics.json").read_text(encoding="utf-8"))["n"] == 80
    assert "external validation" in capsys.readouterr().out
    # the validation predictions name each patient by the table's case column, as predict does
    val_pred = pd.read_csv(tmp_path / "val" / "external_predictions.csv")
    assert val_pred["case"].astype(str).tolist() == pd.read_csv(ext)["case"].astype(str).tolist()
    pred = tmp_path / "pred.csv"
    assert main(["rp", "predict", str(model), str(ext), "-o", str(pred), "--top", "3",
                 "--contributions", str(tmp_path / "contrib.csv"), "--importance-png", str(tmp_path / "imp.png")]) == 0
    table = pd.read_csv(pred)
    assert table["case"].astype(str).tolist() == val_pred["case"].astype(str).tolist()
    assert len(table) == 80 and {"risk", "risk_low", "risk_high", "top3_feature"} <= set(table.columns)
    assert (tmp_path / "imp.png").exists() and len(pd.read_csv(tmp_path / "contrib.csv")) == 80
    import re                          # the console's top contribution has the panel's wording (lungai.scene.results)
    assert re.search(r"top feature \S+ \([+-]\d\.\d\d log-odds\)", capsys.readouterr().out)
    # the same patients given as two tables (clinical + the rest) joined on case
    both = pd.read_csv(ext)
    clin_cols = ["case"] + [c for c in both.columns if c.startswith("clin_")]
    both[clin_cols].to_csv(tmp_path / "clin.csv", index=False)
    both.drop(columns=clin_cols[1:]).to_csv(tmp_path / "rest.csv", index=False)
    assert main(["rp", "predict", str(model), str(tmp_path / "clin.csv"), str(tmp_path / "rest.csv"),
                 "-o", str(tmp_path / "pred2.csv")]) == 0
    assert np.allclose(pd.read_csv(tmp_path / "pred2.csv")["risk"], table["risk"])
    # refuses to write onto its input, and to replace an existing model
    before = ext.read_bytes()
    assert main(["rp", "predict", str(model), str(ext), "-o", str(ext)]) == 2
    assert ext.read_bytes() == before
    assert main(["rp", "train", str(train), "--outcome", "rp_grade2", "-o", str(model), "--fast"]) == 2
    err = capsys.readouterr().err
    assert "would be overwritten" in err and "already holds a model" in err and "Traceback" not in err


def test_rp_never_replaces_a_users_files(tmp_path, capsys, monkeypatch, rp_model_dir, rp_cohort):
    """predict -o / --contributions / --importance-png, validate -o and train -o refuse an existing file of the
    user's (nothing is computed, nothing replaced); a re-run over their own outputs replaces them."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    monkeypatch.chdir(tmp_path)
    rp_cohort.table.iloc[:40].to_csv("p.csv", index=False)
    for name in ("mine.csv", "mine.png"):
        (tmp_path / name).write_text("mine\n", encoding="utf-8")
    for extra, name in ((["-o", "mine.csv"], "mine.csv"),
                        (["-o", "pred.csv", "--contributions", "mine.csv"], "mine.csv"),
                        (["-o", "pred.csv", "--importance-png", "mine.png"], "mine.png")):
        assert main(["rp", "predict", str(rp_model_dir), "p.csv", *extra]) == 2
        assert f"{name} already exists and was not written by lungai rp predict" in capsys.readouterr().err
        assert (tmp_path / name).read_text(encoding="utf-8") == "mine\n"
    outputs = ["-o", "pred.csv", "--contributions", "c.csv", "--importance-png", "i.png"]
    assert main(["rp", "predict", str(rp_model_dir), "p.csv", *outputs]) == 0
    assert main(["rp", "predict", str(rp_model_dir), "p.csv", *outputs]) == 0       # its own files: replaced
    assert len(pd.read_csv("pred.csv")) == 40
    (tmp_path / "pred.csv").unlink()                                  # the user's own file saved at that name
    (tmp_path / "pred.csv").write_text("mine\n", encoding="utf-8")
    assert main(["rp", "predict", str(rp_model_dir), "p.csv", *outputs]) == 2
    assert "pred.csv changed since lungai rp predict wrote it" in capsys.readouterr().err
    assert (tmp_path / "pred.csv").read_text(encoding="utf-8") == "mine\n"
    (tmp_path / "pred.csv").unlink()
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "external_metrics.json").write_text("{}", encoding="utf-8")
    assert main(["rp", "validate", str(rp_model_dir), "p.csv", "-o", "v"]) == 2
    assert "not written by lungai rp validate" in capsys.readouterr().err
    assert (tmp_path / "v" / "external_metrics.json").read_text(encoding="utf-8") == "{}"
    for _ in range(2):                                                                  # a re-run reuses its folder
        assert main(["rp", "validate", str(rp_model_dir), "p.csv", "-o", "v2",
                     "--include-training-patients"]) == 0
    assert json.loads((tmp_path / "v2" / "external_metrics.json").read_text(encoding="utf-8"))["n"] == 40
    (tmp_path / "u").mkdir()
    for name in ("metrics.json", "roc.png"):
        (tmp_path / "u" / name).write_text("mine", encoding="utf-8")
    assert main(["rp", "train", "p.csv", "--outcome", "rp_grade2", "-o", "u", "--fast", "--overwrite"]) == 2
    assert "u holds metrics.json, roc.png, not written by lungai rp train" in capsys.readouterr().err
    assert (tmp_path / "u" / "metrics.json").read_text(encoding="utf-8") == "mine"


def test_rp_train_reruns_over_its_own_model_folder(tmp_path, monkeypatch):
    """--overwrite replaces rp train's own model (marked folder, or a model folder of an earlier version without
    the marker); the user's other files in the folder are left alone."""
    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    make_cohort(60, seed=2, n_noise=0).table.to_csv(tmp_path / "t.csv", index=False)
    args = ["rp", "train", str(tmp_path / "t.csv"), "--outcome", "rp_grade2", "-o", str(tmp_path / "m"), "--fast",
            "--models", "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2", "--inner-folds", "2",
            "--bootstrap", "2"]
    assert main(args) == 0
    (tmp_path / "m" / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(args) == 2                                                   # a model: only with --overwrite
    assert main(args + ["--overwrite"]) == 0
    (tmp_path / "m" / ".lungai-rp-train").unlink()                           # as an earlier version left it
    assert main(args + ["--overwrite", "--seed", "1"]) == 0
    assert json.loads((tmp_path / "m" / "model_card.json").read_text(encoding="utf-8"))["seed"] == 1
    assert (tmp_path / "m" / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_rp_train_cv_predictions_name_the_patients_and_do_not_depend_on_the_tables_order(tmp_path, monkeypatch):
    """QA: cv_predictions.csv had no patient id (``row`` = the position in the joined table), and the same patients
    and seed gave another AUC when the tables (or a table's rows) came in another order - the folds were cut by
    position.  The joined table is ordered by the id (its columns table by table, not as given): one result."""
    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = make_cohort(60, seed=3, n_noise=0).table
    dose = ["case"] + [c for c in table.columns if c.startswith("dose_")]
    table.drop(columns=dose[1:]).rename(columns={"case": "patient_id"}).to_csv(tmp_path / "clinical.csv", index=False)
    table[dose].rename(columns={"case": "patient_id"}).to_csv(tmp_path / "dose.csv", index=False)
    table[dose].rename(columns={"case": "patient_id"}).sample(frac=1, random_state=1).to_csv(
        tmp_path / "dose_shuffled.csv", index=False)
    common = ["--outcome", "rp_grade2", "--fast", "--models", "rf", "--feature-sets", "clinical_dosimetric",
              "--outer-folds", "2", "--inner-folds", "2", "--bootstrap", "2", "--seed", "3"]
    runs = {}
    for name, tables in (("a", ["clinical.csv", "dose.csv"]), ("b", ["dose_shuffled.csv", "clinical.csv"])):
        assert main(["rp", "train", *[str(tmp_path / t) for t in tables], "-o", str(tmp_path / name), *common]) == 0
        runs[name] = pd.read_csv(tmp_path / name / "cv_predictions.csv", dtype={"case": str})
    a, b = runs["a"], runs["b"]
    assert list(a.columns[:3]) == ["row", "case", "outcome"]
    assert sorted(a["case"]) == sorted(table["case"]) and a["case"].is_unique
    truth = table.set_index("case")["rp_grade2"]
    assert (a["outcome"].to_numpy() == truth[a["case"]].to_numpy()).all()     # each row's outcome is its patient's
    pd.testing.assert_frame_equal(a, b)                                        # the same folds, the same risks
    metrics = [json.loads((tmp_path / n / "metrics.json").read_text(encoding="utf-8")) for n in "ab"]
    assert metrics[0]["chosen_auc"] == metrics[1]["chosen_auc"]


def _clinic_cohort(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A cohort as a clinic exports it: patient ids "001", "002" ..., sex M/F, smoking / performance status /
    chemotherapy, the lung dose metrics, a few tumour radiomics features and the outcome rp_g2 (risk from the
    mean lung dose, V20, age and smoking)."""
    rng = np.random.default_rng(seed)
    mld = np.clip(rng.normal(14, 4, n), 3, 26)
    t = pd.DataFrame({"patient_id": [f"{i:03d}" for i in range(1, n + 1)],
                      "clin_age": rng.integers(45, 85, n), "clin_sex": rng.choice(["M", "F"], n),
                      "clin_smoking": rng.choice(["never", "former", "current"], n), "clin_ps": rng.integers(0, 3, n),
                      "clin_chemo": rng.choice(["yes", "no"], n), "dose_mld_gy": mld.round(2),
                      "dose_v5_pct": np.clip(3.5 * mld + rng.normal(0, 8, n), 0, 100).round(1),
                      "dose_v13_pct": np.clip(2.5 * mld + rng.normal(0, 5, n), 0, 100).round(1),
                      "dose_v20_pct": np.clip(1.8 * mld + rng.normal(0, 4, n), 0, 100).round(1)})
    for name in ("firstorder_Mean", "firstorder_Entropy", "glcm_Contrast", "shape_Sphericity"):
        t[f"rad_tumour_original_{name}"] = rng.normal(0, 1, n).round(4)
    lp = -1.2 + 0.25 * (mld - 14) + 0.05 * (t["dose_v20_pct"] - 25) + 0.03 * (t["clin_age"] - 65) \
        + 0.5 * (t["clin_smoking"] == "current")
    t["rp_g2"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return t


def test_threshold_outside_0_1_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """QA: --threshold 20 (meant 20 %) was taken as is - every patient high_risk=0, the card stored 20.0.  A threshold
    outside (0, 1) is refused by rp train and rp validate (CLI and library) before any work, 20 named a percentage."""
    from lungai.errors import InputError
    from lungai.rp import train_rp, validate_rp

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    _clinic_cohort(40).to_csv(tmp_path / "t.csv", index=False)
    train = ["rp", "train", str(tmp_path / "t.csv"), "--outcome", "rp_g2", "-o", str(tmp_path / "m"), "--fast",
             "--models", "lr", "--outer-folds", "2", "--inner-folds", "2", "--bootstrap", "2"]
    assert main(train + ["--threshold", "20"]) == 2
    err = capsys.readouterr().err
    assert "20 looks like a percentage: use 0.20" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
    for bad in ("0", "1", "-0.2", "150", "nan"):
        assert main(train + ["--threshold", bad]) == 2
        assert "is not a risk between 0 and 1" in capsys.readouterr().err
    assert main(["rp", "validate", str(tmp_path / "no_model"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "v"),
                 "--threshold", "35"]) == 2                        # refused before the model is even looked for
    assert "35 looks like a percentage: use 0.35" in capsys.readouterr().err and not (tmp_path / "v").exists()
    with pytest.raises(InputError, match="12.5 looks like a percentage: use 0.125"):
        train_rp(tmp_path / "t.csv", "rp_g2", tmp_path / "m", threshold=12.5)
    with pytest.raises(InputError, match="not a risk between 0 and 1"):
        validate_rp(tmp_path / "no_model", tmp_path / "t.csv", threshold=1.5)


@pytest.mark.parametrize("value", ["1.5", "1.01", "1.99"])
def test_a_threshold_just_above_1_is_not_advised_as_a_percentage(tmp_path, capsys, monkeypatch, value):
    """QA: --threshold 1.5 was refused with "1.5 looks like a percentage: use 0.015" - a 1.5 % risk threshold is
    rarely meant (a typo of 0.15 or 0.5 is likelier), and the advice turned it into 0.015.  The rule: (0, 1) is a
    probability, [2, 100) looks like a percentage (20 -> use 0.20), a value in (1, 2) is refused as above 1 with
    the probability to give and never turned into a percentage - in rp train / validate alike."""
    from lungai.errors import InputError
    from lungai.rp import train_rp
    from lungai.rp.checks import check_threshold

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    _clinic_cohort(40).to_csv(tmp_path / "t.csv", index=False)
    for cmd in (["train", str(tmp_path / "t.csv"), "--outcome", "rp_g2", "-o", str(tmp_path / "m"), "--fast"],
                ["validate", str(tmp_path / "no_model"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "v")]):
        assert main(["rp", *cmd, "--threshold", value]) == 2
        err = capsys.readouterr().err
        assert f"--threshold {value} is not a risk between 0 and 1" in err and "Traceback" not in err
        assert "percentage: use" not in err and f"{value} is above 1" in err and "between 0 and 1, e.g. 0.15" in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "v").exists()
    with pytest.raises(InputError) as exc:
        train_rp(tmp_path / "t.csv", "rp_g2", tmp_path / "m", threshold=float(value))
    assert "0.0" not in exc.value.fix and "is above 1" in exc.value.fix
    with pytest.raises(InputError, match="2 looks like a percentage: use 0.02"):   # the percentage range starts at 2
        check_threshold(2)


def test_results_do_not_depend_on_the_order_of_a_tables_columns(tmp_path, monkeypatch):
    """QA: the same table with its columns reversed gave another nested AUC (rf 0.548 vs 0.579) and another locked
    model (rf vs lr): the features went to the models in the table's column order and a random forest draws
    features by position.  They are ordered by role, then name (lungai.rp.columns.canonical_order): the same
    metrics, cross-validated risks, locked model and model file, and the card says the order."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = _clinic_cohort(60, seed=2)
    table.to_csv(tmp_path / "a.csv", index=False)
    table[table.columns[::-1]].to_csv(tmp_path / "b.csv", index=False)
    for name in "ab":
        assert main(["rp", "train", str(tmp_path / f"{name}.csv"), "--outcome", "rp_g2", "-o", str(tmp_path / name),
                     "--fast", "--models", "lr,rf", "--feature-sets", "all", "--outer-folds", "2",
                     "--inner-folds", "2", "--bootstrap", "2", "--seed", "1"]) == 0
    a, b = (tmp_path / "a", tmp_path / "b")
    assert (a / "metrics.json").read_text(encoding="utf-8") == (b / "metrics.json").read_text(encoding="utf-8")
    assert (a / "cv_predictions.csv").read_bytes() == (b / "cv_predictions.csv").read_bytes()
    cards = [json.loads((d / "model_card.json").read_text(encoding="utf-8")) for d in (a, b)]
    for key in ("feature_set", "model", "hyperparameters", "features", "roles", "baseline_risk"):
        assert cards[0][key] == cards[1][key], key
    assert {**cards[0]["training_data"], "source": ""} == {**cards[1]["training_data"], "source": ""}
    assert (a / "model.skops").read_bytes() == (b / "model.skops").read_bytes()
    features = cards[0]["features"]
    roles = cards[0]["roles"]["roles"]
    rank = {"clinical": 0, "dosimetric": 1, "radiomic": 2}
    assert features == sorted(features, key=lambda c: (rank[roles[c]], c))   # role, then name


def test_importance_figure_path_must_name_a_figure_format(tmp_path, capsys, monkeypatch, rp_model_dir, rp_cohort):
    """QA: --importance-png importance.html crashed with a matplotlib traceback after writing the predictions.
    The suffix is checked before any work (.png, .svg, .pdf)."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rp_cohort.table.head(5).to_csv(tmp_path / "p.csv", index=False)
    pred = tmp_path / "pred.csv"
    assert main(["rp", "predict", str(rp_model_dir), str(tmp_path / "p.csv"), "-o", str(pred),
                 "--importance-png", str(tmp_path / "importance.html")]) == 2
    err = capsys.readouterr().err
    assert "--importance-png" in err and ".html is not a figure format" in err and "Traceback" not in err
    assert "end the file name with .png, .svg or .pdf (e.g. importance.png)" in err
    assert not pred.exists() and not (tmp_path / "importance.html").exists()
    assert main(["rp", "predict", str(rp_model_dir), str(tmp_path / "p.csv"), "-o", str(pred),
                 "--importance-png", str(tmp_path / "importance.SVG")]) == 0
    assert (tmp_path / "importance.SVG").read_bytes().lstrip().startswith(b"<?xml")


def test_a_model_trained_on_a_synthetic_cohort_says_so_with_every_risk(tmp_path, capsys, monkeypatch):
    """QA: the demo's own illustrative RP model, given back with --rp-model on a real patient, gave "RP risk 100%" with
    "nested-CV AUC 0.72 ... on 400 training patients", its card's training_data.source "DataFrame", nothing saying
    illustrative. A model trained on a synthetic cohort (lungai.rp.make_cohort, or an unchanged `rp synth` CSV) now
    records it in its card, and `rp predict` and the demo label every risk of it ILLUSTRATIVE."""
    from lungai.cli.demo import result_lines
    from lungai.demo.patient import EXAMPLE_CLINICAL
    from lungai.demo.pipeline import _rp
    from lungai.report.html import _headline, _rp as rp_section
    from lungai.rp.cohort import SYNTHETIC_SOURCE
    from lungai.rp.model_io import load_model

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    cohort, model = tmp_path / "cohort.csv", tmp_path / "model"
    train = ["--outcome", "rp_grade2", "--fast", "--models", "lr", "--feature-sets", "clinical_dosimetric",
             "--outer-folds", "3", "--bootstrap", "4"]
    assert main(["rp", "synth", "-o", str(cohort), "-n", "100", "--seed", "2"]) == 0
    capsys.readouterr()
    assert main(["rp", "train", str(cohort), "-o", str(model), *train]) == 0
    assert "ILLUSTRATIVE" in capsys.readouterr().out          # rp train says so on the console
    td = load_model(model)[1]["training_data"]
    assert td["synthetic"] is True and td["source"] == SYNTHETIC_SOURCE
    card_md = (model / "model_card.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in card_md.split("- Outcome")[0]      # ... and at the top of model_card.md
    # rp validate with such a model: every risk of external_predictions.csv, the console and the metrics say so
    assert main(["rp", "validate", str(model), str(cohort), "-o", str(tmp_path / "val"),
                 "--include-training-patients"]) == 0
    assert "ILLUSTRATIVE" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "val" / "external_predictions.csv")["illustrative"].str.startswith("ILLUSTRATIVE").all()
    assert json.loads((tmp_path / "val" / "external_metrics.json").read_text())["synthetic_model"] is True
    # the same table edited (or any table rp synth did not write as it is) is not known as synthetic
    mine = tmp_path / "mine.csv"
    pd.read_csv(cohort).to_csv(mine, index=False)
    assert main(["rp", "train", str(mine), "-o", str(tmp_path / "m2"), *train]) == 0
    td = load_model(tmp_path / "m2")[1]["training_data"]
    assert td["synthetic"] is False and td["source"] == "mine.csv"
    assert "ILLUSTRATIVE" not in capsys.readouterr().out
    assert "ILLUSTRATIVE" not in (tmp_path / "m2" / "model_card.md").read_text(encoding="utf-8")
    assert main(["rp", "validate", str(tmp_path / "m2"), str(mine), "-o", str(tmp_path / "val2"),
                 "--include-training-patients"]) == 0
    assert "ILLUSTRATIVE" not in capsys.readouterr().out
    assert "illustrative" not in pd.read_csv(tmp_path / "val2" / "external_predictions.csv").columns
    assert json.loads((tmp_path / "val2" / "external_metrics.json").read_text())["synthetic_model"] is False
    capsys.readouterr()
    pred = tmp_path / "pred.csv"
    assert main(["rp", "predict", str(model), str(cohort), "-o", str(pred)]) == 0
    assert "ILLUSTRATIVE" in capsys.readouterr().out
    assert pd.read_csv(pred)["illustrative"].str.startswith("ILLUSTRATIVE").all()
    assert main(["rp", "predict", str(tmp_path / "m2"), str(cohort), "-o", str(tmp_path / "p2.csv")]) == 0
    assert "ILLUSTRATIVE" not in capsys.readouterr().out
    assert "illustrative" not in pd.read_csv(tmp_path / "p2.csv").columns
    # the demo on a user's CT with such a model: the risk is illustrative in the console, report and CSV
    out = tmp_path / "demo"
    out.mkdir()
    dose = {"dose_mld_gy": 14.0, "dose_v5_pct": 50.0, "dose_v13_pct": 35.0, "dose_v20_pct": 26.0, "dose_v30_pct": 17.0}
    rp = _rp(out, pd.DataFrame([{}]), dose, True, {"patient_id": "P1", **EXAMPLE_CLINICAL}, model, sample=False,
             case="P1")
    assert rp["status"] == "illustrative" and "synthetic cohort" in rp["model_description"]
    assert "100 SYNTHETIC training patients" in rp["card"]["validation"]
    assert pd.read_csv(out / "rp_prediction.csv")["illustrative"].str.startswith("ILLUSTRATIVE").all()
    s = {"rp": rp, "inputs": {"ct": "/data/LUNG1-003/CT"}, "illustrative": ["rp"], "dose": dose,
         "stage": {"status": "not computed"}, "segmentation": {"needs_review": False, "tumor_volume_ml": 1.0,
                                                              "confidence": 0.9}, "dose_status": "computed",
         "dose_source": "x", "lungs": {}}
    assert any(line.startswith("RP risk") and "ILLUSTRATIVE" in line and "your inputs" in line
               for line in result_lines({**s, "stage": {"message": "x"}}))
    assert 'id="rp-illustrative"' in rp_section(s, {}) and "built-in sample" not in rp_section(s, {})
    head = _headline(s)
    assert "ILLUSTRATIVE" in head and "Built-in sample" not in head
    from lungai.demo.pipeline import _methods

    limitations = " ".join(_methods({**s, "segmentation": {**s["segmentation"], "members": 5},
                                     "radiomics": {"params": "default"}, "stage": {"status": "x"}})[1])
    assert "synthetic cohort" in limitations and "built-in sample" not in limitations


def test_the_slicer_panels_headline_says_a_synthetic_models_risk_is_illustrative():
    """Multimodal Predict runs `lungai rp predict`: its headline reads the row's illustrative column."""
    from lungai.rp.cohort import SYNTHETIC_NOTE
    from lungai.scene.results import describe_prediction_row

    row = {"risk": "0.4", "risk_low": "0.3", "risk_high": "0.5", "high_risk": "1"}
    assert "ILLUSTRATIVE" not in describe_prediction_row(row)[0]
    assert "ILLUSTRATIVE" in describe_prediction_row({**row, "illustrative": SYNTHETIC_NOTE})[0]


def test_a_full_disk_names_the_file_and_leaves_no_partial_csv(tmp_path, capsys, monkeypatch, rp_model_dir, rp_cohort):
    """QA: on a full disk `rp predict ... -o FULL/p2.csv` and `rp synth -o FULL/s.csv` said "cannot access None: No
    space left on device" and left a 0-byte CSV: the tables are written through write_csv (a temporary file, then
    renamed), so the error names the file ("cannot write PATH: No space left on device") and nothing is left."""
    import errno

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    rp_cohort.table.iloc[:40].to_csv(tmp_path / "p.csv", index=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "full"
    out.mkdir()
    real = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if path is not None:
            open(path, "w").close()                 # the file is created, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    for args, name in ((["rp", "synth", "-n", "30", "-o", str(out / "s.csv")], "s.csv"),
                       (["rp", "predict", str(rp_model_dir), "p.csv", "-o", str(out / "p2.csv")], "p2.csv"),
                       (["rp", "predict", str(rp_model_dir), "p.csv", "-o", str(out / "p3.csv"),
                         "--contributions", str(out / "c.csv")], "p3.csv")):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"cannot write {out / name}: No space left on device" in err, err
        assert "None" not in err
    assert not [f.name for f in out.iterdir() if not f.name.startswith(".lungai-")]


@pytest.mark.parametrize("top", ["0", "-1", "two"])
def test_rp_predict_top_must_be_a_whole_number_of_at_least_one(top, tmp_path, capsys):
    """QA: `rp predict --top 0` listed no contributing feature and `--top -1` all but one, without a word: refused
    by the parser now, before the model is read."""
    with pytest.raises(SystemExit) as exc:
        main(["rp", "predict", str(tmp_path / "model"), str(tmp_path / "p.csv"), "-o", str(tmp_path / "o.csv"),
              "--top", top])
    assert exc.value.code == 2 and "--top" in capsys.readouterr().err


def test_rp_validate_console_names_every_file_it_writes(tmp_path, capsys, monkeypatch, rp_model_dir):
    """The ``-> DIR/...`` line of ``rp validate -o DIR`` names exactly the files written there (QA docsrun61: it
    left out external_predictions.csv, the per-patient table the docs describe, though it was written)."""
    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    make_cohort(60, seed=21).table.to_csv(tmp_path / "ext.csv", index=False)
    out = tmp_path / "val"
    assert main(["rp", "validate", str(rp_model_dir), str(tmp_path / "ext.csv"), "-o", str(out),
                 "--include-training-patients"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("-> ")][-1]
    named = {p.strip().rsplit("/", 1)[-1] for p in line[3:].split(",")}
    written = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert named == written, (line, sorted(written))


@pytest.mark.parametrize("boot", ["0", "-2", "1"])
def test_rp_train_bootstrap_needs_two_models_at_least(boot, tmp_path, capsys, monkeypatch):
    """QA predict66: `rp train --bootstrap -2` (or 0, 1) trained and saved a model whose card said "the risks
    predicted by -2 copies of the locked pipeline", and `rp predict` gave every patient a risk interval of no width,
    e.g. "risk 0.37 (0.37-0.37)": certainty the model does not have.  Refused by the parser now, before any work."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    table = tmp_path / "t.csv"
    assert main(["rp", "synth", "-o", str(table), "-n", "80", "--seed", "2"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["rp", "train", str(table), "--outcome", "rp_grade2", "-o", str(tmp_path / "m"), "--fast", "--models",
              "lr", "--feature-sets", "clinical_dosimetric", "--outer-folds", "2", "--inner-folds", "2",
              "--bootstrap", boot])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--bootstrap" in err and "at least 2" in err, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args, said", [(["-n", "-5"], "at least 10 patients"), (["-n", "2.5"], "not a whole number"),
                                        (["--noise-features", "-3"], "radiomic features without effect"),
                                        (["--missing-rate", "1.5"], "fraction of clinical / radiomic values"),
                                        (["--missing-rate", "-0.5"], "fraction of clinical / radiomic values"),
                                        (["--missing-rate", "nan"], "not a finite number")])
def test_rp_synth_refuses_counts_and_rates_out_of_range(args, said, tmp_path, capsys, monkeypatch):
    """QA predictfollow66: `rp synth --noise-features -3` wrote a cohort without noise features, `--missing-rate 1.5`
    one with every clinical and radiomic value blank, `--missing-rate -0.5` one with none, without a word: the
    parser refuses them, with what to give, before any file is written."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    with pytest.raises(SystemExit) as exc:
        main(["rp", "synth", "-o", str(tmp_path / "s.csv"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and args[0] in err and said in err, err
    assert not (tmp_path / "s.csv").exists()


def test_rp_validate_model_without_bootstrap_members_says_why_no_interval(tmp_path, capsys, monkeypatch,
                                                                           rp_model_dir):
    """QA predictlast66: `rp validate` of a model saved without bootstrap members (before `rp train` refused
    --bootstrap < 2) wrote external_predictions.csv with empty risk_low / risk_high cells and said nowhere why:
    the NO_INTERVAL note of `rp predict` now - once on the console (a warning, kept in external_metrics.json's
    warnings) and in each row of the CSV (`interval_note`); a model with members gets neither (its interval_note holds
    only the widened-interval note of a row whose interval was widened to hold the risk, QA rp70)."""
    import json
    import pandas as pd

    from lungai.rp import model_io
    from lungai.rp.cohort import make_cohort
    from lungai.rp.uncertainty import NO_INTERVAL

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    make_cohort(40, seed=21).table.to_csv(tmp_path / "ext.csv", index=False)
    # with members: an interval, no note
    assert main(["rp", "validate", str(rp_model_dir), str(tmp_path / "ext.csv"), "-o", str(tmp_path / "with"),
                 "--include-training-patients"]) == 0
    assert NO_INTERVAL not in capsys.readouterr().err
    table = pd.read_csv(tmp_path / "with" / "external_predictions.csv")
    # (a row's interval widened to hold the risk has its own note there - frequent with the fixture's 8 members)
    notes = table["interval_note"].fillna("") if "interval_note" in table.columns else pd.Series([], dtype=str)
    assert table["risk_low"].notna().all() and not (notes == NO_INTERVAL).any()
    real = model_io.load_model

    def without_members(*args, **kwargs):
        bundle, card = real(*args, **kwargs)
        return {**bundle, "bootstrap": []}, {**card, "n_bootstrap": 0}

    monkeypatch.setattr(model_io, "load_model", without_members)
    monkeypatch.setattr("lungai.rp.external.load_model", without_members)
    out = tmp_path / "val"
    assert main(["rp", "validate", str(rp_model_dir), str(tmp_path / "ext.csv"), "-o", str(out),
                 "--include-training-patients"]) == 0
    err = capsys.readouterr().err
    assert err.count(NO_INTERVAL) == 1, err
    table = pd.read_csv(out / "external_predictions.csv")
    assert table["risk"].notna().all() and table["risk_low"].isna().all() and table["risk_high"].isna().all()
    assert (table["interval_note"] == NO_INTERVAL).all()
    assert NO_INTERVAL in json.loads((out / "external_metrics.json").read_text())["warnings"]


def test_rp_validate_writes_its_predictions_through_write_csv(tmp_path, capsys, monkeypatch, rp_model_dir):
    """QA rpfollow68: `rp validate -o DIR` wrote external_predictions.csv with DataFrame.to_csv, straight into its
    name: on a full disk a partial table was left and the error did not name the file.  Written as every other table
    of lungai rp (write_csv: a temporary file, then renamed; "cannot write PATH: ...")."""
    import errno

    from lungai.rp.cohort import make_cohort

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    make_cohort(60, seed=21).table.to_csv(tmp_path / "ext.csv", index=False)
    out = tmp_path / "val"
    real = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if path is not None:
            with open(path, "w") as f:
                f.write("row,case\n")              # part of the table is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    assert main(["rp", "validate", str(rp_model_dir), str(tmp_path / "ext.csv"), "-o", str(out),
                 "--include-training-patients"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out / 'external_predictions.csv'}: No space left on device" in err, err
    assert not (out / "external_predictions.csv").exists()
    assert not [p.name for p in out.glob("*.part")] and not [p.name for p in out.glob(".*.part")]
