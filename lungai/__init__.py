"""SlicerLungAI headless core.

Everything here works on numpy / SimpleITK / torch, without Qt and without Slicer.
Only :mod:`lungai.mrml` imports ``slicer`` (MRML nodes <-> core objects).
"""

__version__ = "0.2.0"
