"""radiomics-batch: missing manifest files said all at once before any work; a refused run leaves nothing behind."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from lungai.errors import InputError
from lungai.radiomics import batch, load_params
from lungai.radiomics.manifest import write_synthetic_cohort

PARAMS = load_params("default", feature_classes=["firstorder"])


def test_missing_files_are_all_said_with_their_lines_before_any_case_runs(tmp_path, monkeypatch, capsys):
    """QA cohortfollow70: a row naming a missing image or mask failed only when its turn came, after the other
    cases (minutes each on a real cohort).  Now every such row is said at once before the first case, with its
    manifest line, cell and the fix; those cases are not run but recorded as failed, the others go on."""
    manifest = write_synthetic_cohort(tmp_path, 2, seed=5)
    good = pd.read_csv(manifest, dtype=str)
    gone_image = {"case": "gone_image", "image": "nowhere/ct.nii.gz", "mask": good["mask"][0], "phantom": "1"}
    gone_mask = {"case": "gone_mask", "image": good["image"][1], "mask": "nowhere/labels.nii.gz", "phantom": "1"}
    pd.concat([pd.DataFrame([gone_image]), good, pd.DataFrame([gone_mask])]).to_csv(manifest, index=False)
    said_before, ran = [], []
    real = batch.process_case

    def spy(row, *args, **kwargs):
        if not ran:
            said_before.append(capsys.readouterr().err)
        ran.append(row["case"])
        return real(row, *args, **kwargs)

    monkeypatch.setattr(batch, "process_case", spy)
    s = batch.run_batch(manifest, tmp_path / "out" / "f.csv", PARAMS, workers=0, segments=["tumour"])
    assert ran == list(good.case)                      # the cases with missing files never ran
    warning = said_before[0]
    assert "2 of the 4 cases of the manifest name files that do not exist" in warning
    assert "gone_image: manifest manifest.csv line 2, image cell nowhere/ct.nii.gz" in warning
    assert "gone_mask: manifest manifest.csv line 5, mask cell nowhere/labels.nii.gz" in warning
    assert "how to fix: correct the paths in manifest.csv" in warning
    assert sorted(s.done) == sorted(good.case)
    assert [case for case, _ in s.failed] == ["gone_image", "gone_mask"]          # manifest order
    assert all("does not exist" in error for _, error in s.failed)
    errors = pd.read_csv(tmp_path / "out" / "f_errors.csv")
    assert errors.case.tolist() == ["gone_image", "gone_mask"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_leaves_no_resume_folder_it_made(tmp_path, monkeypatch):
    """QA cohortfollow70: ``--scheduler tcp://127.0.0.1:1`` was refused but left ``OUT/f.csv.parts/params.json``
    and ``params.key`` in a folder the run created.  Now nothing is left; an earlier run's resume folder is kept."""
    from lungai.radiomics import cluster

    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT_S", 1)
    manifest = write_synthetic_cohort(tmp_path / "data", 2, seed=5)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        batch.run_batch(manifest, tmp_path / "new" / "f.csv", PARAMS, scheduler=address, segments=["tumour"])
    assert not (tmp_path / "new").exists()
    # an earlier run's resume folder (one case done, one to do): kept as it was
    first = manifest.with_name("first.csv")
    pd.read_csv(manifest, dtype=str).head(1).to_csv(first, index=False)
    done = batch.run_batch(first, tmp_path / "old" / "f.csv", PARAMS, workers=0, segments=["tumour"])
    parts = tmp_path / "old" / "f.csv.parts"
    before = sorted(p.name for p in parts.iterdir())
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        batch.run_batch(manifest, tmp_path / "old" / "f.csv", PARAMS, scheduler=address, segments=["tumour"])
    assert sorted(p.name for p in parts.iterdir()) == before and "params.key" in before and len(done.done) == 1
