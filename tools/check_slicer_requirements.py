"""Do the pinned Python packages resolve inside each supported 3D Slicer?  pip's resolver, dry run.

For every Slicer in ``LungAICommon.requirements.SUPPORTED_SLICERS``: the pinned packages of the features that run
there, the packages Slicer bundles at its bundled versions (``SLICER_BUNDLED``: lungai runs on them unless a feature
needs a newer one) and Slicer's own numpy (exact version), for Slicer's Python (3.12), binary wheels only, nothing
installed (``requirements.slicer_requirement_specs``).  Needs the
package index (downloads metadata and wheels into pip's cache; a few minutes the first time).

    .venv/bin/python tools/check_slicer_requirements.py            # all supported Slicers
    .venv/bin/python tools/check_slicer_requirements.py 5.10       # one

Prints one line per Slicer ("5.10: resolves: numpy 2.0.2, torch 2.13.0, ...") and exits 1 if any fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LungAICommon import requirements  # noqa: E402


def resolve(slicer: str) -> tuple[bool, str]:
    python = requirements.SUPPORTED_SLICERS[slicer]["python"]
    with tempfile.TemporaryDirectory(prefix="lungai-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        args = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                "--python-version", ".".join(python.split(".")[:2]), "--only-binary=:all:",
                "--target", str(Path(tmp) / "target"), "--report", str(report),
                *requirements.slicer_requirement_specs(slicer)]
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0:
            lines = [line for line in run.stderr.splitlines() if "ERROR" in line or "conflict" in line.lower()]
            return False, "\n".join(lines[-6:]) or run.stderr[-1500:]
        chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text(encoding="utf-8"))["install"]}
    keys = ("numpy", "torch", "scipy", "pandas", "scikit-learn", "monai", "pydicom", "highdicom")
    off = requirements.slicer_unavailable_features(slicer)
    return True, (", ".join(f"{k} {chosen[k]}" for k in keys if k in chosen) + f" ({len(chosen)} packages)"
                  + (f"; not available there: {', '.join(off)}" if off else ""))


def main(argv=None) -> int:
    wanted = (argv if argv is not None else sys.argv[1:]) or list(requirements.SUPPORTED_SLICERS)
    ok = True
    for slicer in wanted:
        good, text = resolve(slicer)
        ok &= good
        print(f"Slicer {slicer} (Python {requirements.SUPPORTED_SLICERS[slicer]['python']}, numpy "
              f"{requirements.SUPPORTED_SLICERS[slicer]['numpy']}): {'resolves' if good else 'DOES NOT RESOLVE'}: {text}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
