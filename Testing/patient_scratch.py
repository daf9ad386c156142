"""A scratch folder for copies of (or links to) the real patient data in ../shared/data, removed when the test ends.

pytest keeps each test's ``tmp_path`` (the last 3 runs): 106 slices of LUNG1-003's real CT copied there stayed on disk
after the run - temporary copies of patient data are deleted.  A test that puts the real DICOM files anywhere takes
``patient_scratch`` instead of ``tmp_path`` (one place); links (``link_files``) where it does not change the files."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest


def _writable_then_retry(func, path, _exc):
    """``shutil.rmtree``'s error handler: copies of ../shared/data keep its read-only folders (``copytree`` copies the
    modes), which a user other than root cannot empty - make the parent writable and try again."""
    parent = os.path.dirname(path)
    os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
    func(path)


def remove_tree(folder: Path) -> None:
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        shutil.rmtree(folder, onerror=_writable_then_retry)


def link_files(files, folder: Path) -> Path:
    """Links in ``folder`` to ``files`` (same names): the real files read in place, nothing of them copied."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / Path(f).name).symlink_to(Path(f).resolve())
    return folder


@pytest.fixture
def patient_scratch(tmp_path_factory) -> Path:
    """An empty folder for the real patient data a test copies or links; removed after the test, passed or failed."""
    folder = tmp_path_factory.mktemp("patient")
    try:
        yield folder
    finally:
        remove_tree(folder)
