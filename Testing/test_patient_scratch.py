"""``patient_scratch``: the folder a test puts real patient data in is removed after it, even when the test fails -
pytest keeps ``tmp_path`` (its last 3 runs), where 106 slices of LUNG1-003's real CT stayed after each run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTING = Path(__file__).resolve().parent

INNER = '''
import shutil
from pathlib import Path


def _use(patient_scratch, name):
    (patient_scratch / "CT").mkdir()
    (patient_scratch / "CT" / "slice.dcm").write_bytes(b"DICM")
    (patient_scratch / "CT").chmod(0o555)                    # as copytree leaves a copy of ../shared/data
    Path(__file__).with_name(name).write_text(str(patient_scratch))


def test_fails(patient_scratch):
    _use(patient_scratch, "failed.txt")
    assert False, "a failing use"


def test_passes(patient_scratch):
    _use(patient_scratch, "passed.txt")
'''


def test_the_scratch_folder_is_removed_after_a_failing_and_a_passing_test(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "conftest.py").write_text("from patient_scratch import patient_scratch  # noqa: F401\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTING), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          "-c", os.devnull, "--basetemp", str(tmp_path / "base"), str(tmp_path / "test_inner.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    for name in ("failed.txt", "passed.txt"):
        used = Path((tmp_path / name).read_text())
        assert used.is_relative_to(tmp_path / "base"), used
        assert not used.exists(), f"{used} left after the test ({name})"
    assert (tmp_path / "base").is_dir()        # pytest's own folder is kept; only the patient data is gone
