"""lungai.overlap.dice: the project's one Dice (defined value for empty masks, images or arrays)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.overlap import EMPTY_DICE, dice


def test_dice_values_and_the_empty_convention():
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    assert dice(a, b) == EMPTY_DICE == 1.0                  # two empty masks agree
    b[0, 0, :2] = True
    assert dice(a, b) == 0.0                                # nothing found vs something
    a[0, 0, 1:3] = True
    assert dice(a, b) == pytest.approx(2 * 1 / 4)
    assert dice(a * 7, b.astype(np.uint8)) == dice(a, b)    # any nonzero label counts
    ia, ib = sitk.GetImageFromArray(a.astype(np.uint8)), sitk.GetImageFromArray(b.astype(np.uint8))
    assert dice(ia, ib) == dice(a, b)
    with pytest.raises(ValueError, match="different shapes"):
        dice(a, b[:2])


def test_every_dice_in_the_project_is_this_one():
    from lungai.seg import evaluate, train

    assert evaluate.dice is dice and train.dice is dice


def test_no_hand_written_dice_in_the_code_tests_or_benchmarks():
    """The README and lungai.overlap promise one Dice everywhere: no module, test or benchmark computes
    2 |A & B| / (|A| + |B|) by hand (a hand-written one gave 0 for two empty masks in real_storage_variants)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    own = re.compile(r"2(\.0)?\s*\*\s*(np\.logical_and\(|\(?\s*\w+(\[[^]]*\])?\s*&).*\.sum\(\)\s*/|dice\w*\s*=\s*lambda")
    found = [f"{p.relative_to(root)}:{i}" for folder in ("lungai", "benchmarks", "Testing", "LungAISeg", "LungRadiomics",
                                                           "MultimodalPredict", "LungAICommon", "tools")
             for p in sorted((root / folder).rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if own.search(line) and p.name != "overlap.py" and "own = re.compile" not in line]
    assert not found, f"hand-written Dice (use lungai.overlap.dice): {found}"
