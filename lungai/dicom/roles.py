"""Structure names -> roles (GTV, primary GTV, nodes, right / left lung, lungs, lungs - GTV).

RT structure sets name their ROIs freely; AAPM TG-263 standardises them ("GTVp", "GTVn",
"Lung_R", "Lung_L", "Lungs", "Lungs-GTV"), clinics use variants ("GTV-1", "GTV_Primary",
"Lung-Right", "RT LUNG", "Lung Lt", "Lungs minus GTV", ...).  :func:`structure_role` gives the role
of a name; :func:`find_role` picks the structures of a role from a list; :func:`mask_for_role`
builds a role's mask from the read structures (e.g. both lungs = right + left when there is no
"Lungs" ROI; lungs - GTV = lungs minus every GTV when there is no "Lungs-GTV" ROI).

Matching (documented in docs/dicom.md): the name is lower-cased, runs of spaces / ``_`` / ``-`` /
``.`` become one space, and the whole name must match one of :data:`DEFAULT_PATTERNS` (first
match wins), so "Lung_R_PRV", "PTV_Lung" or "z_Lung_R_opt" get no role.  Numbered GTVs follow the
NSCLC-Radiomics convention: "GTV-1" is the primary; "GTV-2", "GTV-3" ... are other GTVs (role
"gtv", part of the union of all GTVs).  "Tumor" / "Tumour" (the segment lungai makes) are role "gtv".

A user mapping overrides the patterns: a dict or a YAML / JSON file ``{structure name: role}``
(names compared case-insensitively; a role of ``null`` / ``none`` hides a structure), e.g.::

    Tumour_big: gtv_primary
    LN_4R: gtv_node
    Lung_R_old: null
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Mapping

from lungai.errors import InputError

ROLES = ("gtv", "gtv_primary", "gtv_node", "lung_right", "lung_left", "lungs", "lungs_minus_gtv")
GTV_ROLES = ("gtv_primary", "gtv", "gtv_node")   # all of them make up role "gtv" (primary first)

_LUNGS = r"(?:lungs?|lungs? (?:total|all|both|bilat|bilateral|combined)|(?:total|both|bilat|bilateral) lungs?)"
_GTV = r"(?:i?gtv(?:s|all|total| all| total)?)"
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("lungs_minus_gtv", _LUNGS + r"(?: ?(?:minus |sub |excl |exc |wo |not |no |less )?" + _GTV
     + r"| (?:minus|sub|excl|exc|wo|not|no|less) tumou?r)"),   # "Lung tumour" is no lung
    ("gtv_primary", r"gtv ?(?:p|prim|primary|t|tumou?r|1|01|p ?1|primary tumou?r)"),
    ("gtv_node", r"gtv ?(?:n|nd|node|nodes|nodal|ln|lns|lymph ?nodes?|n ?\d+|nd ?\d+|node ?\d+|ln ?\d+)"),
    ("gtv", r"gtv|gtv ?\d+|gtv ?(?:total|all|sum|combined|composite)|tumou?r(?: ?\d+)?"),
    ("lung_right", r"lung ?(?:r|rt|rght|right|dx)|(?:r|rt|right) ?lung|lungr|rlung"),
    ("lung_left", r"lung ?(?:l|lt|lft|left|sx)|(?:l|lt|left) ?lung|lungl|llung"),
    ("lungs", _LUNGS),
)
_COMPILED = tuple((role, re.compile(pattern)) for role, pattern in DEFAULT_PATTERNS)
_NONE = {"", "none", "null", "ignore", "-"}


def normalise(name: str) -> str:
    """Lower case, runs of space / ``_`` / ``-`` / ``.`` as one space."""
    return re.sub(r"[\s_\-.]+", " ", str(name).strip().lower()).strip()


def _check_role(role, where: str):
    if role is None or str(role).strip().lower() in _NONE:
        return None
    role = str(role).strip().lower()
    if role not in ROLES:
        raise InputError(f"unknown structure role {role!r} in {where}",
                         f"use one of: {', '.join(ROLES)} (or null to ignore the structure)")
    return role


def load_mapping(mapping) -> dict[str, str | None]:
    """A user mapping (dict, or path of a YAML / JSON file) as {normalised name: role or None}."""
    if mapping is None:
        return {}
    where = "the structure mapping"
    if isinstance(mapping, (str, Path)):
        p = Path(mapping)
        where = str(p)
        if not p.is_file():
            raise InputError(f"structure mapping file {p} does not exist",
                             "give a YAML or JSON file of 'structure name: role' lines")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() == ".json":
                mapping = json.loads(text)
            else:
                import yaml

                mapping = yaml.safe_load(text)
        except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
            raise InputError(f"could not parse the structure mapping {p}: {exc}",
                             "write one 'structure name: role' pair per line (YAML) or a JSON object") from exc
    if not isinstance(mapping, Mapping):
        raise InputError(f"{where} is not a name -> role mapping",
                         "write one 'structure name: role' pair per line (YAML) or a JSON object")
    return {normalise(k): _check_role(v, where) for k, v in mapping.items()}


def structure_role(name: str, mapping=None) -> str | None:
    """The role of one structure name (one of :data:`ROLES`), or None when it has none."""
    return _role(name, load_mapping(mapping))


def _role(name: str, user: dict) -> str | None:
    key = normalise(name)
    if key in user:
        return user[key]
    for role, pattern in _COMPILED:
        if pattern.fullmatch(key):
            return role
    return None


def find_role(names: Iterable[str], role: str, mapping=None) -> list[str]:
    """The names in ``names`` that have ``role``, in their original order.

    Role ``"gtv"`` means every GTV (primary, nodes, other GTVs): primary first, then other GTVs, then nodes.
    """
    role = _check_role(role, "the requested role")
    if role is None:
        raise InputError("no role requested", f"use one of: {', '.join(ROLES)}")
    user = load_mapping(mapping)
    roles = [(n, _role(n, user)) for n in names]
    if role == "gtv":
        return [n for wanted in GTV_ROLES for n, r in roles if r == wanted]
    return [n for n, r in roles if r == role]


def describe_roles(names: Iterable[str], mapping=None) -> str:
    """``name (role)`` for every name, for error messages and reports."""
    user = load_mapping(mapping)
    return ", ".join(f"{n} ({_role(n, user) or 'no role'})" for n in names) or "none"


def _missing(role: str, names, mapping, empty=()) -> InputError:
    return InputError(
        f"no structure with role {role!r} among: {describe_roles(names, mapping)}"
        + (f" (without contours, so left out: {', '.join(empty)})" if empty else ""),
        "name the structure explicitly (--structure NAME) or map your name to the role in a YAML/JSON file "
        "(--structure-map FILE, lines like 'My_GTV: gtv_primary'); roles: " + ", ".join(ROLES))


def required_names(role: str, names: Iterable[str], mapping=None, empty: Iterable[str] = ()) -> list[str]:
    """The structures needed to build ``role`` with :func:`mask_for_role` (raises when it cannot be built).

    ``names``: the structures that can be used (for an RTSTRUCT the contoured ones,
    :func:`lungai.dicom.rtstruct.contoured_structures`); ``empty``: those left out for having no contours (named in
    the error).
    """
    names, empty = list(names), list(empty)
    direct = find_role(names, role, mapping)
    if direct and role != "lungs_minus_gtv":
        return direct
    if role == "lungs_minus_gtv" and direct:
        return direct[:1]
    if role == "lungs":
        sides = find_role(names, "lung_right", mapping)[:1] + find_role(names, "lung_left", mapping)[:1]
        if len(sides) == 2:
            return sides
    if role == "lungs_minus_gtv":
        try:
            return required_names("lungs", names, mapping) + find_role(names, "gtv", mapping)
        except InputError:
            pass
    raise _missing(role, names, mapping, empty)


def dose_lungs_role(names: Iterable[str], mapping=None, empty: Iterable[str] = ()) -> str:
    """The role the lungs of the dose features are taken from: "lungs" (a Lungs structure, or right + left lung),
    else "lungs_minus_gtv" (a 'Lungs-GTV' structure).  The one rule of ``lungai dose-features --rtstruct`` and
    ``lungai cohort``; raises :class:`InputError` when the structures give neither."""
    names = list(names)
    try:
        required_names("lungs", names, mapping)
        return "lungs"
    except InputError:
        required_names("lungs_minus_gtv", names, mapping, empty)
        return "lungs_minus_gtv"


def empty_note(empty: Iterable[str]) -> str | None:
    """The note naming the structures left out for having no contours (None when there are none)."""
    empty = list(empty)
    return ("RTSTRUCT structure(s) without contours left out: " + ", ".join(empty)) if empty else None


def mask_for_role(masks: Mapping[str, "object"], role: str, mapping=None):
    """The uint8 mask of ``role`` from {structure name: SimpleITK mask} (all on one grid).

    - a role with several structures (e.g. "gtv": GTV-1, GTV-2, ...) -> their union;
    - "lungs" without a "Lungs" structure -> right lung + left lung;
    - "lungs_minus_gtv" without such a structure -> lungs minus every GTV (no GTV -> the lungs).
    """
    import SimpleITK as sitk

    needed = required_names(role, masks, mapping)
    if role == "lungs_minus_gtv" and _role(needed[0], load_mapping(mapping)) != "lungs_minus_gtv":
        lungs = mask_for_role(masks, "lungs", mapping)
        gtvs = find_role(masks, "gtv", mapping)
        if not gtvs:
            return lungs
        return sitk.And(lungs, sitk.Not(mask_for_role(masks, "gtv", mapping)))
    out = sitk.Cast(masks[needed[0]] > 0, sitk.sitkUInt8)
    for name in needed[1:]:
        out = sitk.Or(out, sitk.Cast(masks[name] > 0, sitk.sitkUInt8))
    return out
