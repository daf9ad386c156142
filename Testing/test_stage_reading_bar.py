"""``lungai stage predict`` / ``validate`` read the locked model and the tables on a bar of their own ("stage predict:
reading"), each step said as it starts and then with its seconds while it stands (:func:`lungai.progress.
timer_running`).  QA stagewait72 (NSCLC-Radiogenomics, a loaded shared 2-core machine): after "stage predict: loading:
3/3 loaded" the console stood ~2.4 s without a line while the model folder, the EHR table and the RNA matrix were read.
The EHR table's cleaning no longer deep-copies its never-smoker record into each frame it makes."""

from __future__ import annotations

import threading
import warnings

import pandas as pd
import pytest

from stage_helpers import small_stage_cohort, stage_cli

FAST = ["--epochs", 1, "--top-k", 10, "--neighbours", 3, "--inner-folds", 1, "--baselines", "logreg",
        "--modalities", "ehr,rna"]


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage_reading")
    paths = small_stage_cohort(root / "c", 24)
    assert stage_cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "-o", root / "m",
                      *FAST]) == 0
    return root, paths


@pytest.mark.parametrize("command", ["predict", "validate"])
def test_stage_says_reading_the_model_and_the_tables_with_their_seconds(locked, command, capsys, monkeypatch):
    """The read of the model and of the tables each wait here until their "(<seconds> s)" line was written (an
    event, not a timer); the warnings said on reading the tables come on lines of their own, then "read"."""
    import lungai.fusion.workflows as W
    from lungai import progress
    from lungai.fusion import model_io

    root, paths = locked
    monkeypatch.setenv("LUNGAI_PROGRESS", "lines")
    monkeypatch.setattr(progress, "TICK_INTERVAL", 0.02)
    desc = f"stage {command}: reading"
    model_step, tables_step = "reading the model", "reading the EHR table, the RNA matrix"
    said = {model_step: threading.Event(), tables_step: threading.Event()}
    timed_real = progress._LineProgress._timed

    def timed(self, message, seconds):
        timed_real(self, message, seconds)
        if message in said and self.desc == desc:
            said[message].set()

    monkeypatch.setattr(progress._LineProgress, "_timed", timed)
    load, from_spec = model_io.load, W.cohort_from_spec
    waited = {}

    def slow_load(*args, **kwargs):
        waited[model_step] = said[model_step].wait(10)
        return load(*args, **kwargs)

    def slow_tables(*args, **kwargs):
        waited[tables_step] = said[tables_step].wait(10)
        warnings.warn(W.InputNote("a warning of the tables"))
        return from_spec(*args, **kwargs)

    monkeypatch.setattr(model_io, "load", slow_load)
    monkeypatch.setattr(W, "cohort_from_spec", slow_tables)
    capsys.readouterr()
    label = ["--label", "stage"] if command == "validate" else []
    assert stage_cli([command, "--model", root / "m", "--ehr", paths["ehr"], "--rna", paths["rna"], *label,
                      "--include-training-patients" if command == "validate" else "--use=fusion",
                      "-o", root / f"out_{command}"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert waited == {model_step: True, tables_step: True}, err
    lines = [line.split(f"{desc}: ", 1)[1] for line in err if line.startswith(f"{progress.PREFIX} ")
             and f" {desc}: " in line]
    assert lines.index(model_step) < lines.index(tables_step) < lines.index("read"), lines
    assert any(line.startswith(f"{model_step} (") for line in lines), lines
    assert any(line.startswith(f"{tables_step} (") for line in lines), lines
    # the tables' warning said once, on a line of its own, before the bar's last step
    warned = [k for k, line in enumerate(err) if line == "warning: a warning of the tables"]
    assert len(warned) == 1 and warned[0] < err.index(f"{progress.PREFIX} 2/2 {desc}: read"), err


def test_ehr_cleaning_does_not_copy_the_never_smoker_record_into_each_frame(tmp_path, monkeypatch):
    """NSCLC-Radiogenomics' table (48 never-smokers read as 0 pack-years, their record in the table's ``attrs``): the
    cleaning deep-copied the record into each of ~3800 frames and series it made (0.6 s of 2.3 s of profiled reading).
    The record is kept on the table returned, as before."""
    import pandas.core.generic as generic

    from lungai.fusion.data import load_ehr
    from lungai.io.tables import NEVER_SMOKER_ATTR

    rows = [f"P{k},{'Nonsmoker' if k % 2 else 'Current'},{'N/A' if k % 2 else k},{'x' if k % 3 else 'N/A'},{k}"
            for k in range(40)]
    (tmp_path / "ehr.csv").write_text("patient_id,Smoking status,Pack Years,site,age\n" + "\n".join(rows) + "\n")
    copied = []
    deepcopy = generic.deepcopy      # pandas' __finalize__: self.attrs = deepcopy(other.attrs)

    def counting(obj, *args, **kwargs):
        if isinstance(obj, dict) and NEVER_SMOKER_ATTR in obj:
            copied.append(1)
        return deepcopy(obj, *args, **kwargs)

    monkeypatch.setattr(generic, "deepcopy", counting)
    df = load_ehr(tmp_path / "ehr.csv", say_pack_years=False)
    assert copied == [], len(copied)
    record = df.attrs[NEVER_SMOKER_ATTR]
    assert record["status"] == "Smoking status" and len(record["counts"][0][1]) == 20, record
    assert (pd.to_numeric(df["Pack Years"])[df["Smoking status"] == "Nonsmoker"] == 0).all()
