"""Shared by the ``lungai cohort`` tests: a small feature set (the cohort logic is under test, not pyradiomics) and
the synthetic DICOM RT export they run on (``dicom_helpers.rt_export``), written once per test module."""
from __future__ import annotations

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
