"""What a segment *is*, from its name: one exact mapping used wherever a segment is picked by name
(dose lung mask and GTV, derived "Lungs" / "Lungs minus tumour" masks, radiomics column names, the
Slicer panels).

Names are compared after lower-casing and turning every run of non-alphanumeric characters into
``_`` ("Right lung", "right-lung", "RIGHT_LUNG" are the same), and then **exactly**: "Lung tumour"
is not a lung and "Tumour of left lung" is not a tumour (no substring matching).

=====================  =========================================================================
role                   names
=====================  =========================================================================
``tumour``             tumour, tumor, gtv (optionally numbered: gtv_1, tumor 2)
``right_lung``         right lung, lung right, lung_r, right_lung
``left_lung``          left lung, lung left, lung_l, left_lung
``lungs``              lungs, both lungs, lung, lungs_total
``lungs_minus_tumour`` lungs minus tumour / tumor / gtv (the derived mask)
=====================  =========================================================================

Lung lobes as TotalSegmentator names them (``lung_upper_lobe_left`` ...) have no role of their own
but count as lung for the dose (:func:`dose_lung_segments`).
"""

from __future__ import annotations

import re

ROLES = ("tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour")
_ALIASES = {
    "right_lung": {"right_lung", "lung_right", "lung_r", "rt_lung"},
    "left_lung": {"left_lung", "lung_left", "lung_l", "lt_lung"},
    "lungs": {"lungs", "both_lungs", "lung", "lungs_total", "total_lung"},
    "lungs_minus_tumour": {"lungs_minus_tumour", "lungs_minus_tumor", "lungs_minus_gtv", "lung_minus_gtv"},
}
_TUMOUR = re.compile(r"(tumou?r|gtv)(_?\d+)?")
LUNG_LOBES = {"lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right", "lung_middle_lobe_right",
              "lung_lower_lobe_right"}
DOSE_LUNG_ROLES = ("right_lung", "left_lung", "lungs")


def name_key(name: str) -> str:
    """``"Right  Lung-1"`` -> ``"right_lung_1"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def segment_role(name: str) -> str | None:
    """The role (one of :data:`ROLES`) of a segment name, or None when the name is not one of them."""
    key = name_key(name)
    if _TUMOUR.fullmatch(key):
        return "tumour"
    return next((role for role, names in _ALIASES.items() if key in names), None)


def find_role(names, role: str) -> str | None:
    """The first of ``names`` with ``role``, or None."""
    return next((n for n in names if segment_role(n) == role), None)


def dose_lung_segments(names) -> list[str]:
    """The segments that make up the lung for dose metrics: right / left lung, lungs, lung lobes
    (never a tumour, never "lungs minus tumour")."""
    return [n for n in names if segment_role(n) in DOSE_LUNG_ROLES or name_key(n) in LUNG_LOBES]
