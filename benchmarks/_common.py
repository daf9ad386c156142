"""Shared by the benchmarks: the PASS / FAIL verdict of a target and the temporary folder of a run.

- :func:`verdict` prints ``<claim>: PASS`` or ``<claim>: FAIL`` (with the measured figures) and returns
  whether the target was met; :func:`exit_code` turns the verdicts of a run into the process' exit status
  (1 when any target was missed), so a script or CI job that runs a benchmark sees a missed target.
- :func:`bench_temp_dir` is the temporary folder of a run that copies or writes (patient) data: named
  ``lungai-bench-*`` and deleted at the end, also when the run is stopped with SIGTERM (a timeout, a CI
  cancel, ``kill``) - Python's default for SIGTERM ends the process without running ``finally`` blocks
  or ``with`` exits, which would leave a real patient's CT / SEG / RTSTRUCT in the temporary folder.
- :func:`rss_mib` / :func:`peak_rss_mib`: this process's resident memory now (``VmRSS``) and its own peak
  (``VmHWM``) from /proc/self/status.  Not ``ru_maxrss``: Linux keeps the parent's peak in a child across
  fork + exec, so a measuring child would report its parent's peak (QA: 391 MiB for every IBSI config).
"""

from __future__ import annotations

import contextlib
import resource
import signal
import sys
import tempfile
from pathlib import Path
from typing import Iterator

PREFIX = "lungai-bench-"


def verdict(claim: str, ok: bool, detail: str = "") -> bool:
    """Print ``claim: PASS|FAIL (detail)`` and return ``ok``."""
    print(f"{claim}: {'PASS' if ok else 'FAIL'}{f' ({detail})' if detail else ''}", flush=True)
    return bool(ok)


def exit_code(*verdicts: bool) -> int:
    """0 when every verdict passed, 1 when any target was missed."""
    return 0 if all(verdicts) else 1


def _exit_on_sigterm(signum, frame) -> None:
    sys.exit(128 + signum)


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so ``finally`` blocks and ``with`` exits (temporary folders) still run."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


@contextlib.contextmanager
def bench_temp_dir() -> Iterator[Path]:
    """A ``lungai-bench-*`` temporary folder, deleted at the end of the block, on errors, Ctrl-C and SIGTERM."""
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp:
        yield Path(tmp)


def _proc_status_mib(field: str) -> float:
    """``field`` (kB) of /proc/self/status in MiB; 0.0 where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mib() -> float:
    """This process's resident memory now (``VmRSS``), MiB; 0.0 where /proc is not there."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float:
    """This process's own peak resident memory since its exec (``VmHWM``), MiB; ``ru_maxrss`` (which may include
    the parent's peak) only where /proc is not there."""
    return _proc_status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
