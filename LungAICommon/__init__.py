"""Slicer-side helpers shared by the LungAISeg, LungRadiomics and MultimodalPredict modules.

Everything here except :mod:`LungAICommon.qtjob` and :mod:`LungAICommon.install` is pure
Python (no Qt, no ``slicer``) and is unit-tested outside Slicer (``Testing/test_slicer_helpers.py``):

- :mod:`.process` - run a ``lungai`` command as a subprocess, stream its progress, cancel it.
- :mod:`.commands` - build ``lungai`` command lines from panel values (the CLI contracts).
- :mod:`.requirements` - the Python packages each feature needs (pinned, from pyproject.toml).
- :mod:`.results` - read and describe result files written by the commands.
- :mod:`.manifest` - a radiomics-batch manifest from a folder of cases.
- :mod:`.nodes` - MRML nodes <-> files for the commands (uses :mod:`lungai.mrml`).
- :mod:`.sampledata` - the synthetic sample case for the SampleData module.
- :mod:`.install` - install missing packages on first use, after a confirmation (Slicer only).
- :mod:`.qtjob` - drive a :class:`.process.LungAIProcess` from a Qt timer (Slicer only).

Importing this package imports nothing heavy.
"""
