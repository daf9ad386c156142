"""Shared by the ``lungai cohort`` tests: a small feature set (the cohort logic is under test, not pyradiomics) and
the synthetic DICOM RT export they run on (``dicom_helpers.rt_export``), written once per test module."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from dicom_helpers import rt_export
from lungai.radiomics import load_params

PARAMS = load_params("default", feature_classes=["shape", "firstorder"])


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    rt_export(root)
    return root


@contextlib.contextmanager
def said_notes():
    """The InputNotes warned inside the block (``lungai cohort``'s notes and warnings: the CLI says them on stderr),
    as the CLI says them ("note: ..." / "warning: ..."), appended to the list yielded when the block ends; every other
    warning is passed on as it came."""
    import warnings

    from lungai.errors import InputNote

    said: list = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield said
        finally:
            for w in caught:
                if issubclass(w.category, InputNote):
                    said.append(f"{getattr(w.category, 'LABEL', 'warning')}: {w.message}")
    for w in caught:
        if not issubclass(w.category, InputNote):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def scan_and_stubbed_cohort(root, out, several, monkeypatch, capsys):
    """``lungai dicom-scan root`` says the several-CT-series warning ``several`` word for word on stderr; then
    ``lungai cohort root -o out`` with the patients' processing stubbed (each fails: the plan and what the terminal
    says of it are under test) says it too; returns that run's captured output."""
    from lungai.cli import main
    from lungai.dicom import cohort

    assert main(["dicom-scan", str(root)]) == 0
    scan = capsys.readouterr()
    assert [line for line in scan.err.splitlines() if "has 2 CT series" in line] == [f"warning: {several}"], scan.err
    monkeypatch.setattr(cohort, "process_patient", lambda job, *a, **k: {
        "case": job.case, "patient_id": job.patient_id, "status": "failed", "error": "stub", "seconds": 0})
    assert main(["cohort", str(root), "-o", str(out), "--workers", "0"]) == 1
    run = capsys.readouterr()
    assert f"warning: {several}" in run.err.splitlines(), run.err
    return run
