"""The patient report: self-contained HTML (images embedded) built from the demo's outputs.

- :mod:`~lungai.report.figures` - slices with contours and uncertainty, DVH, bar charts (PNG).
- :mod:`~lungai.report.html` - the page: sections, numbers with machine-readable ids.
"""

from lungai.report.html import write_report

__all__ = ["write_report"]
