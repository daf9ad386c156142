"""Packaging checks the Slicer build cannot do here: shipped models listed, pins consistent, no shap."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cmake_list(text: str, name: str) -> list[str]:
    m = re.search(rf"set\({name}\s+(.*?)\)", text, re.S)
    return m.group(1).split() if m else []


def test_every_shipped_model_file_is_installed_with_the_extension():
    listed = set(_cmake_list((REPO / "lungai" / "CMakeLists.txt").read_text(encoding="utf-8"), "LUNGAI_MODEL_FILES"))
    on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / "Resources" / "Models").rglob("*") if p.is_file()}
    assert on_disk, "no model is shipped in Resources/Models"
    assert listed == on_disk


def test_shipped_models_are_small_and_pickle_free():
    files = [p for p in (REPO / "Resources" / "Models").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 1024 * 1024
    assert {p.suffix for p in files} <= {".json", ".safetensors"}


def test_dependencies_are_pinned_and_shap_is_absent():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    deps = re.search(r"dependencies = \[(.*?)\]", text, re.S).group(1)
    for line in re.findall(r'"([^"]+)"', deps):
        assert "==" in line, f"unpinned dependency: {line}"
    assert "torch==2.13.0" in text
    constraints = (REPO / "constraints.txt").read_text(encoding="utf-8").lower()
    assert "\nshap==" not in constraints and not constraints.startswith("shap==")
    assert "slicer==" not in constraints.replace("slicer-core==", "")
    # the build backend too: pip's build isolation does not read -c constraints.txt, so pin it where pip reads it
    build = re.search(r"\[build-system\]\s*requires = \[(.*?)\]", text, re.S).group(1)
    for line in re.findall(r'"([^"]+)"', build):
        assert "==" in line and line.lower() in constraints, f"build requirement not pinned as constraints.txt: {line}"


def test_sample_tumour_seed_is_the_planted_centre_in_ras(sample_dir):
    import json
    import sys

    sys.path.insert(0, str(REPO))
    from LungAICommon.sampledata import tumour_seed_ras

    x, y, z = json.loads((sample_dir / "meta.json").read_text(encoding="utf-8"))["tumour"]["centre_mm"]
    assert tumour_seed_ras(sample_dir) == (-x, -y, z)
