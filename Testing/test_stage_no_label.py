"""An EHR table none of whose patients has a label (``stage validate / cv / train``): refused as such, with what the
label's columns hold and the fix, before torch and the model are loaded.

QA docs71: NSCLC-Radiogenomics' 49 AMC patients have 'Not Collected' in each of 'Pathological T stage / N stage /
M stage', so ``--stage-from`` derives no stage group for any of them; ``stage validate`` on them alone failed with
"the external cohort's label has only one class ()" - an empty class name, and the fix "validate on a cohort with
several classes" - after 48 s of a shared 2-core machine (torch, MONAI, torch-geometric, skops, the model and the
tables loaded first); ``stage cv`` said "the label has only one class () among 0 labelled patients".
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.fusion.data import load_cohort

TNM = "pT,pN,pM"


def _unstaged(path, n=6):
    """An EHR table of ``n`` patients whose T / N / M were not collected and whose 'stage' column is empty."""
    pd.DataFrame({"patient_id": [f"AMC-{i:03d}" for i in range(1, n + 1)], "age": range(60, 60 + n),
                  "pT": "Not Collected", "pN": "Not Collected", "pM": ["Not Collected"] * (n - 1) + ["M0"],
                  "stage": "N/A"}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("options, says, fix", [
    ({"stage_from": TNM.split(","), "label": "stage_group"},
     "no stage group can be derived for any of its 6 patients from their T / N / M ('pT', 'pN', 'pM': missing / "
     "missing / missing for 5, missing / missing / 'M0' for 1)", "--stage-from the table's T, N and M columns"),
    ({"label": "stage"}, "its label column 'stage' is empty or a missing-value word for all 6 patients (missing for 6)",
     "pass --label a column that holds the patients' stage"),
])
def test_a_table_without_a_labelled_patient_is_refused_as_such(tmp_path, options, says, fix):
    with pytest.raises(InputError) as err:
        load_cohort(_unstaged(tmp_path / "ehr.csv"), check_leaks=False, **options)
    assert f"no patient of EHR table {tmp_path / 'ehr.csv'} has a label: {says}" in str(err.value)
    assert fix in err.value.fix and "only one class" not in str(err.value)


def test_stage_validate_and_cv_refuse_it_before_torch(tmp_path):
    """The run itself: the refusal names the problem and the fix, comes on the loading bar's "reading the EHR table's
    labels" step - before torch, the model and the RNA matrix are loaded - and writes nothing."""
    from test_cli_startup import HEAVY, _heavy_at_refusal

    ehr = _unstaged(tmp_path / "amc.csv")
    model = tmp_path / "model"
    model.mkdir()      # the label options validate takes from the model's card (its weights are read after torch)
    (model / "stage_model.json").write_text(json.dumps({"data": {"label": "stage_group", "stage_from": TNM}}))
    heavy = HEAVY + ("sklearn", "torch_geometric", "skops")
    for args in (["stage", "validate", "--model", str(model), "--ehr", str(ehr), "-o", "val"],
                 ["stage", "cv", "--ehr", str(ehr), "--stage-from", TNM, "--label", "stage_group", "-o", "cv"],
                 ["stage", "train", "--ehr", str(ehr), "--label", "stage", "-o", "m"]):
        code, err, imported = _heavy_at_refusal(args, tmp_path, heavy=heavy)
        assert code == 2 and f"no patient of EHR table {ehr} has a label" in err and "How to fix" in err, (args, err)
        assert "only one class" not in err and imported == [], (args, imported, err)
    assert not any((tmp_path / d).exists() for d in ("val", "cv", "m"))


def test_stage_validate_of_a_real_model_refuses_unlabelled_patients(tmp_path, capsys):
    """A model trained on labelled patients, validated on a table of unlabelled ones (the AMC case): the message names
    the label's columns, not "only one class ()"; the model's --stage-from is used (validate takes no T / N / M)."""
    from stage_helpers import small_stage_cohort

    from lungai.cli import main

    paths = small_stage_cohort(tmp_path / "c", 12)
    ehr = pd.read_csv(paths["ehr"])
    t = {"I": "T1a", "II": "T3", "III": "T4"}
    ehr.assign(pT=ehr.stage.map(t), pN="N0", pM="M0").drop(columns="stage").to_csv(tmp_path / "tnm.csv", index=False)
    assert main(["stage", "train", "--ehr", str(tmp_path / "tnm.csv"), "--stage-from", TNM, "--label", "stage_group",
                 "--modalities", "ehr", "--epochs", "1", "--inner-folds", "1", "--baselines", "logreg",
                 "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["stage", "validate", "--model", str(tmp_path / "m"), "--ehr", str(_unstaged(tmp_path / "amc.csv")),
                 "-o", str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert "no patient of EHR table" in err and "('pT', 'pN', 'pM': missing / missing / missing for 5" in err, err
    assert "only one class" not in err and not (tmp_path / "val").exists()
