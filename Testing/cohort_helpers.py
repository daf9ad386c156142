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
