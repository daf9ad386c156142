"""tools/setup.sh on a fresh machine, run for real in a copy of the repository whose ``.venv/bin/python`` is this
Python with pip replaced by a stand-in (nothing is downloaded), and a PATH that holds only what the script uses.

QA (install57): on a fresh Ubuntu / Debian machine (no build-essential, no python3.x-dev) the install of the
source-only pyradiomics-bhklab failed with pip's compiler trace ("error: command 'x86_64-linux-gnu-gcc' failed: No such
file or directory") and setup.sh stopped without saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("bash", "sh", "cat", "sha256sum", "cut", "uname", "dirname")
# what pip prints when it cannot compile pyradiomics-bhklab's C extension
PIP_BUILD_FAILURE = "error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory"

pytestmark = pytest.mark.skipif(os.name == "nt" or not all(shutil.which(t) for t in TOOLS),
                                reason="tools/setup.sh is a bash script for Linux / macOS")


def _run_setup(tmp_path: Path, pip_fails: bool, compiler: bool) -> subprocess.CompletedProcess:
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    for name in ("tools/setup.sh", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, repo / name)
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    # -S: no site-packages (a fresh venv has none of the pinned packages; the script's own checks use the stdlib)
    (venv_bin / "python").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$@" >> "{tmp_path}/pip.log"; '
        + (f'echo "{PIP_BUILD_FAILURE}" >&2; exit 1; fi\n' if pip_fails else "exit 0; fi\n")
        + f'exec "{sys.executable}" -S "$@"\n', encoding="utf-8")
    (venv_bin / "python").chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if compiler:
        (bin_dir / "cc").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        (bin_dir / "cc").chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "LUNGAI_TORCH_INDEX": ""}
    return subprocess.run([str(bin_dir / "bash"), str(repo / "tools" / "setup.sh")], env=env, capture_output=True,
                          text=True, timeout=120)


def test_setup_without_a_c_compiler_says_what_to_install(tmp_path):
    out = _run_setup(tmp_path, pip_fails=True, compiler=False)
    assert out.returncode != 0
    assert PIP_BUILD_FAILURE in out.stderr                  # pip's own error stays visible
    assert "pyradiomics-bhklab (radiomics) is built from source" in out.stderr and "a C compiler" in out.stderr
    assert "sudo apt-get install build-essential python3." in out.stderr and "xcode-select --install" in out.stderr
    assert not (tmp_path / "repo" / ".venv" / ".lungai-installed").exists()     # the next run tries again


def test_setup_with_the_build_tools_adds_no_hint_to_a_failed_install(tmp_path):
    out = _run_setup(tmp_path, pip_fails=True, compiler=True)
    assert out.returncode != 0 and PIP_BUILD_FAILURE in out.stderr
    assert "built from source" not in out.stderr


def test_setup_succeeds_and_records_the_install(tmp_path):
    out = _run_setup(tmp_path, pip_fails=False, compiler=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "repo" / ".venv" / ".lungai-installed").is_file()
    assert "-c constraints.txt -e .[test]" in (tmp_path / "pip.log").read_text(encoding="utf-8")
