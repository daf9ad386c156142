"""Slicer-side helpers shared by the LungAISeg, LungRadiomics and MultimodalPredict modules.

Everything here except :mod:`LungAICommon.qtjob` and :mod:`LungAICommon.install` is pure
Python (no Qt, no ``slicer``) and is unit-tested outside Slicer (``Testing/test_slicer_helpers.py``):

- :mod:`.process` - run a ``lungai`` command as a subprocess, stream its progress, cancel it.
- :mod:`.commands` - build ``lungai`` command lines from panel values (the CLI contracts).
- :mod:`.requirements` - the Python packages each feature needs (pinned, from pyproject.toml).
- :mod:`.manifest` - a radiomics-batch manifest from a folder of cases.
- :mod:`.panel` - what the three panels share: background jobs, input-node observers, the packages a job needs.
- :mod:`.sampledata` - the synthetic sample case for the SampleData module.
- :mod:`.install` - install missing packages on first use, after a confirmation (Slicer only).
- :mod:`.qtjob` - drive a :class:`.process.LungAIProcess` from a Qt timer (Slicer only).

Reading and describing the commands' result files and MRML nodes <-> files live in the headless core:
:mod:`lungai.scene.results` and :mod:`lungai.scene.nodes` (which uses :mod:`lungai.mrml`).

Importing this package imports nothing heavy.
"""
