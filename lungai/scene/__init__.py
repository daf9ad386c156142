"""Slicer-side logic on MRML nodes (the console API; tested with slicer-core).

These functions take a scene and nodes, convert them and call the core in Slicer's process, and put
the results back as nodes.  :mod:`lungai.scene.nodes` is the one path between nodes and the core: the
Slicer panels' background jobs use it too (export inputs in world coordinates, import outputs), so
both give the same nodes.  Only :mod:`lungai.mrml` imports ``slicer``.
"""
