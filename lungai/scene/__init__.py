"""Slicer-side logic on MRML nodes (used by the modules' Logic classes, tested with slicer-core).

These functions take a scene and nodes, convert them with :mod:`lungai.mrml`, call the core
and put the results back as nodes.  They do not import ``slicer`` themselves.
"""
