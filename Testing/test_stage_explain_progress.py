"""``stage predict --explain`` says each explanation step as it starts: the genes' Shapley values (with the number
of patients with RNA) and each patient's Grad-CAM by name, with its seconds while it stands.

QA stage72: on NSCLC-Radiogenomics (a model of EHR + RNA, 211 patients, 130 with RNA) the bar stood on
"stage explain: 0/2 [00:00]" - no step named, no seconds - for 10.1 s through the Shapley values, and said
"Shapley values" only once they were done; the Grad-CAM maps (one per patient with a CT) likewise.
"""

from __future__ import annotations

import pytest

from stage_helpers import small_stage_cohort, stage_cli


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_progress")
    paths = small_stage_cohort(root / "c", 12)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--ct", paths["ct"], "--label", "stage",
                      "--epochs", 2, "--top-k", 10, "--neighbours", 2, "--inner-folds", 1, "--baselines", "none",
                      "-o", root / "model"]) == 0
    return paths, root / "model"


def test_each_explanation_step_is_said_as_it_starts(model, tmp_path, capsys, monkeypatch):
    from lungai.fusion import explain

    paths, folder = model
    shown = {}          # what the console said when each step began its work
    shapley, grad_cam = explain.gene_shapley, explain.grad_cam

    def said_shapley(*args, **kwargs):
        shown["shapley"] = capsys.readouterr().err
        return shapley(*args, **kwargs)

    def said_grad_cam(pipe, cohort, pid, *args, **kwargs):
        shown[pid] = capsys.readouterr().err
        return grad_cam(pipe, cohort, pid, *args, **kwargs)

    monkeypatch.setattr(explain, "gene_shapley", said_shapley)
    monkeypatch.setattr(explain, "grad_cam", said_grad_cam)
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    capsys.readouterr()
    assert stage_cli(["predict", "--model", folder, "--ehr", paths["ehr"], "--rna", paths["rna"], "--ct", paths["ct"],
                      "--explain", "-o", tmp_path / "pred"]) == 0
    import pandas as pd

    with_rna = len(pd.read_csv(paths["rna"], index_col=0).columns)
    with_ct = pd.read_csv(paths["ct"])["patient_id"].tolist()
    assert f"Shapley values of the genes ({with_rna} patients with RNA)" in shown["shapley"].splitlines()[-1], shown
    assert set(shown) == {"shapley", *with_ct}
    for k, pid in enumerate(with_ct, 1):
        assert f"Grad-CAM {pid} ({k}/{len(with_ct)})" in shown[pid].splitlines()[-1], (pid, shown[pid])
