"""``lungai cohort --scheduler``: an external Dask scheduler is reached before the run writes anything (QA cohort71:
one that did not answer left a new -o folder with settings.key, patients.csv and the folder's marker - a resume
folder the user never had)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cohort_helpers import PARAMS, export  # noqa: F401 - export: the module's fixture
from lungai.dicom.cohort import run_cohort
from lungai.errors import InputError


def _unreachable(monkeypatch) -> str:
    """An address where nothing listens (no network needed), tried for 1 s."""
    import socket

    from lungai.radiomics import cluster

    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT_S", 1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _p1(export, tmp_path) -> Path:
    root = tmp_path / "export"
    shutil.copytree(export / "P1", root / "P1", ignore=shutil.ignore_patterns("rtdose*", "rtstruct_of_someone*"))
    return root


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_unreachable_scheduler_leaves_no_folder_nor_files(export, tmp_path, monkeypatch, capsys):
    """A new -o folder is not left behind, nor anything in an empty folder of the user's; the CLI says the address
    and the fix."""
    from lungai.cli import main

    address = _unreachable(monkeypatch)
    root = _p1(export, tmp_path)
    new = tmp_path / "new" / "out"
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler at " + address) as err:
        run_cohort(root, new, PARAMS, scheduler=address)
    assert "leave --scheduler out" in err.value.fix
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(["cohort", str(root), "-o", str(mine), "--scheduler", address]) == 2
    said = capsys.readouterr().err
    assert f"cannot connect to the Dask scheduler at {address}" in said and "tcp://host:8786" in said, said
    assert list(mine.iterdir()) == []


def test_an_unreachable_scheduler_changes_nothing_in_a_cohort_folder(export, tmp_path, monkeypatch):
    """A finished folder whose patient is to be redone (its RTSTRUCT replaced): the refusal leaves its table, result,
    stamp, inventory and marker as they were (before: the table was removed and the stamp, inventory and marker
    rewritten before the scheduler was tried)."""
    root = _p1(export, tmp_path)
    out = tmp_path / "out"
    assert run_cohort(root, out, PARAMS, workers=0).done == ["P1"]
    before = _files(out)
    assert "rp_table.csv" in before
    import pydicom

    rtstruct = root / "P1" / "RTSTRUCT" / "rtstruct.dcm"
    ds = pydicom.dcmread(rtstruct)
    ds.StructureSetLabel = "revised"      # inputs changed: P1 would be redone
    ds.save_as(rtstruct)
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        run_cohort(root, out, PARAMS, scheduler=_unreachable(monkeypatch))
    assert _files(out) == before


def test_a_running_scheduler_is_connected_once_and_runs_the_patients(export, tmp_path, monkeypatch):
    """The Client connected before the run writes anything is the one the patients run on (not a second connect);
    it is closed at the end, also when every patient is already done."""
    from dask.distributed import LocalCluster

    from lungai.radiomics import cluster

    root = _p1(export, tmp_path)
    out = tmp_path / "out"
    connects = []
    connect = cluster.connect_scheduler

    clients = []

    def counted(address):
        connects.append(address)
        clients.append(connect(address))
        return clients[-1]

    monkeypatch.setattr(cluster, "connect_scheduler", counted)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as local:
        s = run_cohort(root, out, PARAMS, scheduler=local.scheduler_address)
        assert s.done == ["P1"] and not s.failed and connects == [local.scheduler_address]
        assert run_cohort(root, out, PARAMS, scheduler=local.scheduler_address).skipped == ["P1"]
        assert len(connects) == 2
        assert [c.status for c in clients] == ["closed", "closed"]
    assert (out / "rp_table.csv").is_file()
