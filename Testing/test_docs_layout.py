"""README.md's "Layout": every top-level file of tools/ and benchmarks/ is named there, or covered by a pattern it
gives (``bench_*.py``), and every name or pattern it gives is of a file that is there.

QA docsfollow72: the layout said of tools/ "set-up script, report screenshot" - it also holds
train_seg_members.sh, recalibrate_seg.py, check_slicer_requirements.py and seg_implant_backgrounds.csv - and of
benchmarks/ "speed / memory" - it also holds the segmentation's validation scripts (seg_*_validation.py ...),
rp_oracle.py, mirp_ibsi.py ...: a reader looking for what validated a choice was not told where it is.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("tools", "benchmarks")
NAME = re.compile(r"(?<![\w/.*-])([\w*-]+\.(?:py|sh|csv|json|md|txt))(?![\w.])")


def layout_entries(readme: str) -> dict:
    """The text of each top-level entry of README.md's Layout block (``tools/ ...`` and its indented lines)."""
    block = readme[readme.index("## Layout"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    entries, current = {}, None
    for line in block.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            entries[current] = line[len(current):]
        elif current is not None:
            entries[current] += " " + line
    return entries


def folder_files(folder: str) -> list:
    return sorted(p.name for p in (REPO / folder).iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix != ".pyc")


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_readme_layout_names_every_file_of_the_folder(folder):
    entries = layout_entries((REPO / "README.md").read_text(encoding="utf-8"))
    assert f"{folder}/" in entries, sorted(entries)
    names = NAME.findall(entries[f"{folder}/"])
    files = folder_files(folder)
    assert files and names, (files, names)
    unnamed = [f for f in files if not any(fnmatch.fnmatchcase(f, n) for n in names)]
    assert unnamed == [], f"README.md Layout, {folder}/: add {unnamed}"
    stale = [n for n in names if not any(fnmatch.fnmatchcase(f, n) for f in files)]
    assert stale == [], f"README.md Layout, {folder}/: names no file of the folder: {stale}"


def test_the_layout_check_sees_a_missing_file():
    """The check itself: a layout entry that leaves a file out, or names one that is not there, is caught."""
    readme = "## Layout\n\n```\ntools/    setup.sh: set-up; bench_*.py: speed\n          more.csv: data\n```\n"
    names = NAME.findall(layout_entries(readme)["tools/"])
    assert names == ["setup.sh", "bench_*.py", "more.csv"]
    files = ["setup.sh", "bench_a.py", "bench_b.py", "recalibrate_seg.py"]
    assert [f for f in files if not any(fnmatch.fnmatchcase(f, n) for n in names)] == ["recalibrate_seg.py"]
