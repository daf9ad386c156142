"""Structure names -> roles (GTV, primary GTV, nodes, right / left lung, lungs, lungs - GTV).

RT structure sets name their ROIs freely; AAPM TG-263 standardises them ("GTVp", "GTVn",
"Lung_R", "Lung_L", "Lungs", "Lungs-GTV"), clinics use variants ("GTV-1", "GTV_Primary",
"Lung-Right", "RT LUNG", "Lung Lt", "Lungs minus GTV", ...).  :func:`structure_role` gives the role
of a name; :func:`find_role` picks the structures of a role from a list; :func:`mask_for_role`
builds a role's mask from the read structures (e.g. both lungs = right + left when there is no
"Lungs" ROI; lungs - GTV = lungs minus every GTV when there is no "Lungs-GTV" ROI).  A lung role is one structure:
two of them ("RT LUNG" and "Lung_R") are refused (:data:`ONE_STRUCTURE_ROLES`, :func:`required_names`).

Matching (documented in docs/dicom.md): the name is lower-cased, every run of characters other than letters, digits
and ``+`` (spaces, ``_``, ``-``, ``.``, brackets ...) becomes one space (:func:`normalise`: "Lung (R)" is "Lung_R"), and
the whole name must match one of :data:`DEFAULT_PATTERNS` (first match wins); a lungs-minus-GTV name needs an explicit
minus - a word (minus, excl, sub ...) or a "-" before the GTV in the raw name ("Lungs-GTV"; "Lung_GTV", "Lung GTV",
"LungGTV" are no lungs).  So "Lung_R_PRV", "PTV_Lung" or "z_Lung_R_opt" get no role.  Numbered GTVs follow the
NSCLC-Radiomics convention: "GTV-1" is the primary; "GTV-2", "GTV-3" ... are other GTVs (role
"gtv", part of the union of all GTVs).  "Tumor" / "Tumour" (the segment lungai makes) are role "gtv".
A GTV name may carry a primary / node word or a lymph-node station and qualifiers after a separator
("GTVp2", "GTVp_CT", "GTVn4R", "GTV_LN_4R", "GTV_4R" (a station: node), "GTV_PET", "GTV_tot", "GTV_L").
An iGTV (internal GTV: the GTV's motion envelope on a 4D CT) is not the tumour and gets no role (warned by
:func:`role_notes`); "Lungs-iGTV" (the lungs outside that envelope) is taken as lungs minus GTV.  PTV / CTV / ITV
never get a GTV role.

An RTSTRUCT structure whose name has no role but whose RT ROI Interpreted Type is GTV (a :class:`StructureName`
read by :mod:`lungai.dicom.rtstruct` carries it) is role "gtv", said by :func:`role_notes`, when no structure of the
set is a GTV by name, and never for a target volume or a derived / helper name (margins, rings, opt, PRV ...).  A
GTV's 4D motion envelope ("GTV_MIP", "GTV_4D", "GTV_avg") is, like an iGTV, no GTV (warned).

A user mapping overrides the patterns: a dict or a YAML / JSON file ``{structure name: role}``
(names compared case-insensitively; a role of ``null`` / ``none`` hides a structure), e.g.::

    Tumour_big: gtv_primary
    LN_4R: gtv_node
    Lung_R_old: null
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Mapping

from lungai.errors import InputError, agree, check_input_file

ROLES = ("gtv", "gtv_primary", "gtv_node", "lung_right", "lung_left", "lungs", "lungs_minus_gtv")
GTV_ROLES = ("gtv_primary", "gtv", "gtv_node")   # all of them make up role "gtv" (primary first)
LUNG_ROLES = ("lung_right", "lung_left", "lungs", "lungs_minus_gtv")     # a lung, never a GTV to subtract from them

# lung names of planning systems set up in other languages (French, Spanish, Portuguese, German, Italian, Dutch): the
# lung word and a side word after it ("Poumon D", "Pulmón Izq", "Lunge re", "Polmone sx"), both lungs in the plural
# ("Poumons", "Lungen"; the singular alone names no side, so no role)
_FOREIGN_LUNGS = r"(?:poumons|pulmones|pulm(?:o|õ)es|lungen|polmoni|longen)(?: (?:total|tot|bds|bilat|bilateral))?"
_FOREIGN_RIGHT = (r"poumon (?:d|dt|dr|dte|droit)|pulm(?:o|ó)n (?:d|der|dch|dcho|derecho)"
                  r"|pulm(?:a|ã)o (?:d|dir|dto|direito)|lunge (?:r|re|rechts)|polmone (?:d|dx|destro)"
                  r"|long (?:r|re|rechts)")
_FOREIGN_LEFT = (r"poumon (?:g|gche|gauche)|pulm(?:o|ó)n (?:i|izq|izdo|izqdo|izquierdo)"
                 r"|pulm(?:a|ã)o (?:e|esq|esquerdo)|lunge (?:l|li|lks|links)|polmone (?:s|sx|sinistro)"
                 r"|long (?:l|li|links)")
_LUNGS = (r"(?:lungs?|lungs? ?(?:total|tot|all|both|bilat|bilateral|combined)"
          r"|(?:total|tot|both|bilat|bilateral|combined) ?lungs?|" + _FOREIGN_LUNGS + ")")
_GTV = r"(?:i?gtv(?:s|all|total|tot| all| total| tot)?)"
# what may follow a GTV name after a separator without changing what it is: the image it was drawn on, a side /
# lobe, a number ("GTVp_CT", "GTV_PET", "GTV_L", "GTVn_4R_2")
_GTV_QUALIFIER = (r"(?: (?:pet|ct|pet ?ct|mri?|cbct|plan|planning|final|\d+"
                  r"|l|r|lt|rt|left|right|rul|rml|rll|lul|lll))*")
# IASLC lymph-node stations with their side / part ("4R", "10L", "11Rs", "3A"): "GTV_4R" is a node
_STATION = r"(?:(?:[1-4]|1[0-4]) ?(?:r|l|rs|ri|ls|li|rt|lt)|3 ?(?:a|p))"
_NODE = r"(?:n|nd|node|nodes|nodal|ln|lns|lymph ?nodes?)"
# the words that say "minus" between the lungs and the GTV ("Lungs minus GTV", "Lungs_excl_GTV"); without one, the
# raw name must have a "-" there (TG-263's "Lungs-GTV"): "Lung_GTV", "Lung GTV", "LungGTV" are a tumour's names, no
# lungs (:func:`_explicit_minus`)
_MINUS_WORDS = r"(?:minus|sub|excl|exc|ex|wo|not|no|less)"
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("lungs_minus_gtv", _LUNGS + r"(?: ?(?:" + _MINUS_WORDS + r" ?)?" + _GTV
     + r"| " + _MINUS_WORDS + r" tumou?r)"),   # "Lung tumour" is no lung
    ("gtv_primary", r"gtv ?(?:(?:p|prim|primary|t|tumou?r|primary tumou?r)(?: ?\d+)?|1|01)" + _GTV_QUALIFIER),
    ("gtv_node", r"gtv ?(?:" + _NODE + r"(?: ?(?:\d+|" + _STATION + r"))?|" + _STATION + r")" + _GTV_QUALIFIER),
    ("gtv", r"(?:gtv ?(?:\d+|total|tot|all|sum|combined|composite|union)?" + _GTV_QUALIFIER + r")"
     r"|tumou?r(?: ?\d+)?"),
    ("lung_right", r"lung ?(?:r|rt|rght|right|dx)|(?:r|rt|right) ?lung|lungr|rlung|" + _FOREIGN_RIGHT),
    ("lung_left", r"lung ?(?:l|lt|lft|left|sx)|(?:l|lt|left) ?lung|lungl|llung|" + _FOREIGN_LEFT),
    ("lungs", _LUNGS),
)
_COMPILED = tuple((role, re.compile(pattern)) for role, pattern in DEFAULT_PATTERNS)

# the bare names of a role (normalised, :func:`normalise`): the role itself, with no qualifier - no image (PET, CT,
# MRI), side or lobe of a GTV, lymph-node station, number or copy.  A ``#name`` selector of a SEG that no label
# matches may take the one segment of its role only when both names are bare (:func:`bare_role`;
# :func:`lungai.dicom.masks.select_segments`): Slicer's "Tumor" finds lungai's "Tumour", "Lung_R" finds "Lung-Right",
# but "GTV_CT" never takes "GTV_PET", nor "GTV_L" "GTV_R", nor "GTVn2" "GTVn1".  Keyed by role group: "gtv" is a
# GTV or a primary GTV (the tumour), never a nodal GTV.
BARE_NAMES: dict[str, frozenset] = {
    "gtv": frozenset({"tumour", "tumor", "gtv", "gtvp", "gtv p", "gtv prim", "gtv primary", "gtv tumour",
                      "gtv tumor", "gtv primary tumour", "gtv primary tumor"}),
    "lung_right": frozenset({"lung r", "lung rt", "lung right", "lung rght", "lung dx", "r lung", "rt lung",
                             "right lung", "lungr", "rlung", "lungrt", "lungright", "rightlung", "rtlung"}),
    "lung_left": frozenset({"lung l", "lung lt", "lung left", "lung lft", "lung sx", "l lung", "lt lung",
                            "left lung", "lungl", "llung", "lunglt", "lungleft", "leftlung", "ltlung"}),
    "lungs": frozenset({"lungs", "lung", "both lungs", "lungs both", "lung both", "lungs total", "lung total",
                        "total lungs", "total lung", "lungs all", "lungs bilateral", "bilateral lungs",
                        "lungs combined", "combined lungs", "lungs tot", "lung tot", "totallung", "totallungs",
                        "lungtotal", "lungstotal"}),
    "lungs_minus_gtv": frozenset({"lungs gtv", "lung gtv", "lungs minus gtv", "lung minus gtv",
                                  "lungs minus tumour", "lungs minus tumor", "lung total gtv", "lungs total gtv"}),
}


def role_group(role: str | None) -> str | None:
    """A structure role for matching a name by role: a GTV and a primary GTV are one (the tumour), a nodal GTV
    is not."""
    return "gtv" if role in ("gtv", "gtv_primary") else role


def bare_role(name: str, mapping=None) -> str | None:
    """The role group (:func:`role_group`) of a bare name of its role (:data:`BARE_NAMES`: "Tumor", "GTVp", "Lung_R",
    "left lung", "Lungs"), or None for a name with a qualifier ("GTV_CT", "GTV_L", "GTVn2", "GTV_4R", "GTV-1"), a
    copy ("Tumor (2)") or no role."""
    group = role_group(structure_role(name, mapping))
    return group if group is not None and normalise(name) in BARE_NAMES.get(group, ()) else None
_NONE = {"", "none", "null", "ignore", "-"}


class StructureName(str):
    """A structure's name carrying its RTSTRUCT RT ROI Interpreted Type (``GTV``, ``ORGAN``, ``PTV`` ... or ``""``),
    as :mod:`lungai.dicom.rtstruct` reads it: a name without a role by the patterns is role "gtv" when that type is
    GTV (:func:`type_role`).  It is a plain ``str`` everywhere else.  ``held``: what a structure without closed
    contours holds ("POINT markers (2)", "open contours (3 OPEN_PLANAR)"; "" for none: an empty template structure),
    as :func:`lungai.dicom.rtstruct.contoured_structures` names the structures it leaves out (:func:`empty_text`)."""

    interpreted_type: str
    held: str

    def __new__(cls, name, interpreted_type: str = "", held: str = ""):
        obj = super().__new__(cls, name)
        obj.interpreted_type = str(interpreted_type or "").strip().upper()
        obj.held = str(held or "")
        return obj

    def __reduce__(self):             # pickled to the cohort's workers with its type
        return (StructureName, (str(self), self.interpreted_type, self.held))


# names never taken as a GTV by their RT ROI Interpreted Type (on the normalised name): planning target / clinical
# target / internal target volumes and the internal GTV anywhere in the name, and derived / helper structures: a margin
# ("GTV_5mm", "GTV+5mm", "GTV_2cm"), a ring, an optimisation / PRV / expansion / old / evaluation / avoidance / NOT
# structure, a leading z / zz helper prefix ("z_GTV_opt"), and the GTV's motion envelopes (:data:`_MOTION`)
_NOT_GTV = re.compile(r"ptv|ctv|itv|igtv|\d+ ?(?:mm|cm)|\+|ring|opt|prv|exp|eval|avoid"
                      r"|(?:^|[^a-z]|gtv[np]?)(?:not|old)(?:[^a-z]|$)|^zz?(?: |gtv|ptv|ctv|itv|igtv)")
# an iGTV / ITV by name: the GTV's motion envelope (4D CT), not the tumour
_INTERNAL = re.compile(r"i ?gtv|itv")     # matched at the start of the normalised name
# a GTV's motion envelope by a 4D CT qualifier (maximum intensity projection, 4D, average): like an iGTV, not the tumour
_MOTION = re.compile(r"gtv[a-z]*(?: [a-z0-9]+)* ?(?:mip|4d|4d ?ct|avg|ave)(?: |$)")


def type_role(name: str) -> str | None:
    """The role a structure gets from its RT ROI Interpreted Type when its name has none: "gtv" for type GTV (never
    for a target volume, derived / helper or motion-envelope name, :data:`_NOT_GTV`), else None.  Among other
    structures, only when none is a GTV by name (:func:`structure_roles`)."""
    key = normalise(name)
    if getattr(name, "interpreted_type", "") == "GTV" and not _NOT_GTV.search(key) and not _MOTION.match(key):
        return "gtv"
    return None


def structure_roles(names: Iterable[str], mapping=None) -> dict:
    """{name: role or None} of an RTSTRUCT's structures: the user mapping, else the name patterns; the RT ROI
    Interpreted Type (:func:`type_role`) only when no structure is a GTV by mapping or name."""
    return dict(_roles(list(names), load_mapping(mapping)))


def _roles(names: list, user: dict) -> list:
    by_name = [(n, user[normalise(n)] if normalise(n) in user else name_role(n)) for n in names]
    if any(r in GTV_ROLES for _, r in by_name):
        return by_name
    return [(n, r if r or normalise(n) in user else type_role(n)) for n, r in by_name]


# "-" and its Unicode look-alikes (hyphen U+2010, non-breaking hyphen U+2011, figure / en / em dash, horizontal bar,
# minus sign U+2212, hyphen bullet U+2043; the small em dash U+FE58 and small hyphen-minus U+FE63, the fullwidth
# hyphen-minus U+FF0D of East Asian input methods and fonts): what autocorrect in a word processor or spreadsheet, or a
# copy from a PDF, writes for "-"; patient ids use them too (:func:`lungai.io.tables.plain_dashes`).  The one table
# of them: structure names' separators (:data:`_SEPARATORS`) and minus, patient ids' separators and dash hint.
DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d"
# separators: white space, _ . / , : ; brackets, "-" and the Unicode dashes a copy from a word processor brings
# (:data:`DASHES`: "Lungs\u2013GTV"); any other symbol (~ * # ! ' % ...) stays, so a helper structure's name ("~Lung_R",
# "Lung_R*", "GTV 95%") matches no role - it never replaces the real structure or joins its union
_SEPARATORS = r"[\s_.,/:;()\[\]{}" + re.escape(DASHES) + "]+"


def normalise(name: str) -> str:
    """Lower case, every run of separators (:data:`_SEPARATORS`: space, ``_ - . , / : ;``, brackets, Unicode
    dashes) as one space: "Lung (R)", "Lung_R", "lung-r", "LUNG.R" are "lung r"; other symbols are kept ("~lung r"
    matches no role).  The one normalisation of structure and segment names (:mod:`lungai.segment_roles`, the
    Slicer panels' column names); a dash that means minus ("Lungs-GTV") is read from the raw name
    (:func:`name_role`).  Unicode composed (NFC): 'Pulmón' typed as 'o' + combining accent (NFD, as macOS writes
    file names - a segment named after its file) is the same name as 'Pulmón' with 'ó'."""
    return re.sub(_SEPARATORS, " ", unicodedata.normalize("NFC", str(name)).strip().lower()).strip()


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
        check_input_file(p, "structure mapping file", "give a YAML or JSON file of 'structure name: role' lines",
                         "a YAML or JSON file")
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
    return _roles([name], user)[0][1]


# a copy's name: Slicer's "Tumor (2)" for a second result of one name, RayStation's "GTV (1)" for a copied ROI
_COPY_SUFFIX = re.compile(r"\(\s*\d+\s*\)\s*$")


def _name_role(key: str, raw: str) -> str | None:
    if _COPY_SUFFIX.search(str(raw)):
        return None             # a copy ("Tumor (2)", "GTV (1)"): no role - never a second GTV beside its original
    for role, pattern in _COMPILED:
        if pattern.fullmatch(key):
            if role == "lungs_minus_gtv" and not _explicit_minus(key, raw):
                continue         # "Lung_GTV", "Lung GTV", "LungGTV": a tumour's name, not the lungs minus it
            return role
    return None


_MINUS_WORD = re.compile(r"(?:^| )" + _MINUS_WORDS + r"(?: |$|(?=i?gtv))")   # "Lungs exGTV"
_BEFORE_GTV = re.compile(r"([^0-9a-z]*)i?gtv")


def _explicit_minus(key: str, raw: str) -> bool:
    """Whether a lungs-and-GTV name says minus: a minus word in the normalised ``key`` ("Lungs minus GTV",
    "Lungs_excl_GTV"), or a "-" in the raw name's separator before the GTV ("Lungs-GTV", "Lung_Total-GTV",
    "Lungs - iGTV"); "Lung_GTV", "Lung GTV", "LungGTV", "Lung_iGTV" have neither."""
    if _MINUS_WORD.search(key):
        return True
    sep = _BEFORE_GTV.search(str(raw).strip().lower())
    return bool(sep) and any(d in sep.group(1) for d in DASHES)


def name_role(name: str) -> str | None:
    """The role of a structure / segment name by :data:`DEFAULT_PATTERNS` alone (no user mapping, no RT ROI
    Interpreted Type): the normalised name (:func:`normalise`) matched exactly; a lungs-minus-GTV name needs an
    explicit minus (:func:`_explicit_minus`)."""
    return _name_role(normalise(name), str(name))


# what a lung structure with a target taken out names after its minus ("Lungs-ITV", "Lung_R-GTV", "Lungs-PTV",
# "Lungs-GTVp"; normalised): a target volume, with qualifiers
_TAKEN_OUT = re.compile(r"(?:i ?gtv|gtv|itv|ctv|ptv|tumou?r)[a-z0-9 ]*")
_LUNG_MINUS_ROLES = {"lung_right": ("the right lung", "lung_right"), "lung_left": ("the left lung", "lung_left"),
                     "lungs": ("the lungs", "lungs_minus_gtv")}


def lung_minus_target(name: str) -> tuple | None:
    """(lung role, target) of a name that is a lung structure minus a target volume and has no role of its own -
    TG-263's compound names "Lungs-ITV", "Lung_Total-PTV", "Lung_R-GTV", "Lung_L-GTV", "Lungs-GTVp" (("lungs", "ITV"),
    ("lung_right", "GTV") ...) - else None ("Lungs-GTV" and "Lungs-iGTV" are role lungs_minus_gtv; "z_Lungs-ITV",
    "Lungs-GTV+5mm" are helpers).  The minus is a dash in the raw name or a minus word ("Lung_R minus GTV")."""
    raw = str(name).strip()
    if name_role(raw) is not None:
        return None
    dash = re.search("[" + re.escape(DASHES) + "]", raw)
    if dash:
        lung, target = raw[:dash.start()], raw[dash.end():]
    else:
        key = normalise(raw)
        word = _MINUS_WORD.search(key)
        if not word:
            return None
        lung, target = key[:word.start()], key[word.end():]
    role = name_role(lung)
    if role not in _LUNG_MINUS_ROLES or not _TAKEN_OUT.fullmatch(normalise(target)):
        return None
    return role, re.sub(_SEPARATORS, " ", target).strip()


def lung_minus_unused(names: Iterable[str], mapping=None) -> list[str]:
    """The lung-minus-target structures among ``names`` (:func:`lung_minus_target`; not those the user mapping lists)
    when the roles give no lungs for the dose metrics (:func:`dose_lungs_role` fails): the only lung structures
    there may be "Lung_R-GTV" beside "Lung_L", or "Lungs-ITV"; [] when the lungs are there or no such structure is."""
    user = load_mapping(mapping)
    names = list(names)
    found = [n for n in names if normalise(n) not in user and lung_minus_target(n)]
    return [] if not found or _has_dose_lungs(names, mapping) else found


def lung_minus_note(name: str) -> str:
    """What :func:`role_notes` says of a lung-minus-target structure not used (:func:`lung_minus_unused`): what it is,
    and the mapping that takes it ("Lung_R-GTV: lung_right", "Lungs-ITV: lungs_minus_gtv") with what that gives."""
    lung, target = lung_minus_target(name)
    return (f"structure {str(name)!r} is {_LUNG_MINUS_ROLES[lung][0]} minus the {target} (a TG-263 compound name): it "
            "has no role, so it is not used, and the other structures give no whole lungs for the dose metrics; if "
            f"it is the lung structure to use, map it with --structure-map ('{_lung_minus_line(name)}'): "
            + _lung_minus_then(name))


def _lung_minus_line(name: str) -> str:
    """The ``--structure-map`` line taking a lung-minus-target structure: "Lung_R-GTV: lung_right", "Lungs-ITV:
    lungs_minus_gtv"."""
    return f"{name}: {_LUNG_MINUS_ROLES[lung_minus_target(name)[0]][1]}"


def _lung_minus_then(name: str) -> str:
    """What mapping a lung-minus-target structure (:func:`_lung_minus_line`) gives the dose metrics."""
    lung, target = lung_minus_target(name)
    if lung != "lungs":
        return (f"the lungs of the dose metrics are then {name} and the other lung's structure, the GTVs subtracted "
                f"as always (its lung radiomics are of the lung without the {target})")
    return (f"the dose metrics (MLD, V20 ...) then leave out the whole {target}"
            + ("" if target.replace(" ", "").lower() in ("gtv", "gtvs") else ", not the GTV only"))


def _has_dose_lungs(names, mapping) -> bool:
    try:
        dose_lungs_role(names, mapping)
    except InputError:
        return False
    return True


# what makes a motion-envelope name a derived structure rather than the envelope itself: a margin ("ITV_5mm",
# "iGTV+3mm"), a PTV / CTV, a ring, an optimisation / PRV / expansion / old / evaluation / avoidance / NOT structure
_DERIVED_ENVELOPE = re.compile(r"ptv|ctv|\d+ ?(?:mm|cm)|\+|ring|opt|prv|exp|eval|avoid|(?:^|[^a-z])(?:not|old)(?:[^a-z]|$)")


def motion_envelopes(names: Iterable[str], mapping=None) -> list[str]:
    """The structures among ``names`` that are the GTV's motion envelope on a 4D CT: an iGTV / ITV by name
    (:data:`_INTERNAL`: "iGTV", "IGTV_1", "ITV") or a GTV with a 4D qualifier (:data:`_MOTION`: "GTV_MIP",
    "GTV_4D", "GTV_avg"), with no role (so never a GTV) and not listed in the user mapping; not a structure derived
    from one ("ITV_5mm", "iGTV+3mm", "PTV_ITV").  The dose metrics subtract them from the lungs when the RTSTRUCT has
    no GTV ("Lungs - iGTV", :func:`lungai.dicom.masks.rtstruct_dose_masks`)."""
    user = load_mapping(mapping)
    names = list(names)
    roles = dict(_roles(names, user))
    return [n for n in names if roles[n] is None and normalise(n) not in user
            and (_INTERNAL.match(normalise(n)) or _MOTION.match(normalise(n)))
            and not _DERIVED_ENVELOPE.search(normalise(n))]


def dose_envelopes(names: Iterable[str], mapping=None) -> list[str]:
    """The motion envelopes (:func:`motion_envelopes`) the dose metrics subtract from the lungs: those of an RTSTRUCT
    with no GTV (any of :data:`GTV_ROLES`); [] when it has one.  Their part in the dose is their role there."""
    user = load_mapping(mapping)
    names = list(names)
    return [] if any(r in GTV_ROLES for _, r in _roles(names, user)) else motion_envelopes(names, user)


def role_notes(names: Iterable[str], mapping=None, unread: Iterable[str] = ()) -> list[str]:
    """What the terminal must say about the GTV roles of an RTSTRUCT's (contoured) structures: a structure taken as a
    GTV by its RT ROI Interpreted Type only; an iGTV / ITV not taken as the GTV; a name beginning with GTV or named
    like a tumour (:func:`gtv_like`: "Primary tumour", "tumour_left") that has no role (so is not in role "gtv");
    a 'Lungs-iGTV' taken as lungs minus GTV.  Names the user mapping lists are the user's choice: no note, but for a
    GTV it hides (null) beside other GTVs (:func:`hidden_gtv_note`: neither tumour nor subtracted from the lungs).
    ``unread``: motion envelopes that could not be read (their own warning says why), so are not subtracted from the
    lungs: their note does not say they are.  Each note once (several structures of one name say it once), in
    order."""
    user = load_mapping(mapping)
    names = list(names)
    roles = dict(_roles(names, user))
    named = [str(n) for n in names if roles[n] in GTV_ROLES and not (type_role(n) and not name_role(n)
                                                                       and normalise(n) not in user)]
    # no GTV: the motion envelopes are subtracted from the lungs for the dose metrics (dose_envelopes' one rule)
    subtracted = dose_envelopes(names, user)
    subtracted = [n for n in subtracted if str(n) not in {str(u) for u in unread}]
    lung_minus = lung_minus_unused(names, user)     # "Lung_R-GTV" when the other names give no lungs
    used = list(dict.fromkeys(str(n) for wanted in GTV_ROLES for n in names if roles[n] == wanted))  # the tumour's
    notes = []
    for n in names:
        key = normalise(n)
        if key in user:
            hidden = hidden_gtv_note(n, used) if user[key] is None else None
            if hidden:
                notes.append(hidden)
            continue
        role = name_role(n)
        if role is None and type_role(n) and roles[n] == "gtv":
            notes.append(f"structure {str(n)!r} is taken as a GTV (role gtv) because its RT ROI Interpreted Type is "
                         "GTV (its name has no role); map it with --structure-map if it is not a GTV")
        elif role is None and type_role(n):
            notes.append(f"structure {str(n)!r} has RT ROI Interpreted Type GTV but is {NOT_USED_AS_GTV}: other "
                         f"structures are GTVs by name ({', '.join(named)}); if it is one too, map it with "
                         f"--structure-map ('{n}: gtv')")
        elif role is None and (_MOTION.match(key) or _INTERNAL.match(key)):
            what = ("a motion envelope of the GTV (4D CT MIP / average)" if _MOTION.match(key) else
                    "an internal target volume (" + ("the GTV's motion envelope)" if "gtv" in key else
                                                     "a target volume with margins)"))
            use = (f"; to use it as the tumour, map it with --structure-map ('{n}: gtv')"
                   if _MOTION.match(key) or "gtv" in key else "")
            if n in subtracted:     # no GTV: Lungs - iGTV for the dose (lungai.dicom.masks.rtstruct_dose_masks)
                notes.append(f"structure {str(n)!r} is {what}, not a GTV: the RTSTRUCT has no GTV, so it is "
                             "subtracted from the lungs for the dose metrics (Lungs - iGTV; no GTV dose) and not "
                             f"taken as the tumour{use}")
            else:
                notes.append(f"structure {str(n)!r} is {what}, not a GTV: it is not used as the tumour" + use)
        elif role is None and gtv_like(n):
            what = "begins with GTV" if key.startswith("gtv") else "is named like a tumour"
            notes.append(f"structure {str(n)!r} {what} but its name has no role, so it is {NOT_USED_AS_GTV} "
                         "(role gtv: not the tumour, not subtracted from the lungs); if it is one, map it with "
                         f"--structure-map ('{n}: gtv')")
        elif role is None and n in lung_minus:
            notes.append(lung_minus_note(n))
        elif role == "lungs_minus_gtv" and "igtv" in key.replace(" ", ""):
            notes.append(f"structure {str(n)!r} (the lungs minus the iGTV, the tumour's motion envelope) is taken as "
                         "the lungs minus the GTV")
    return list(dict.fromkeys(notes))     # several ROIs of one name (three 'iGTV'): one note, in order


# the words of :func:`hidden_gtv_note`: ``lungai cohort`` says its notes holding them on the terminal too
HIDDEN_GTV = "but the structure mapping hides it (null)"
# the words of :func:`role_notes`' note on a structure named like a GTV / a tumour, or of RT ROI Interpreted Type GTV,
# that is not taken as one (:func:`left_out_gtv_notes`)
NOT_USED_AS_GTV = "not used as a GTV"


def left_out_gtv_notes(notes) -> list[str]:
    """Those of ``notes`` (a patient's notes: :func:`role_notes`' among them) that say a structure that may be tumour
    is left out of it - named like a GTV or a tumour but without a role ("Tumour_main"), of RT ROI Interpreted Type
    GTV beside GTVs by name, a GTV the structure mapping hides (:func:`hidden_gtv_note`): the tumour's radiomics and
    dose features are of the tumour without it, and the lungs keep it.  ``lungai cohort`` writes them in
    ``rp_table.csv``'s ``tumour_notes`` (QA cohortfollow72: LUNG1-003's GTV-1 renamed 'Tumour_main' made the tumour
    gtv-3 + gtv-2, 47.6 ml without the 34.8 ml primary, with an empty ``tumour_review`` and no column saying so)."""
    return [str(n) for n in notes if isinstance(n, str) and n.startswith("structure ")
            and (f"is {NOT_USED_AS_GTV}" in n or HIDDEN_GTV in n)]


def hidden_gtv_note(name, used) -> str | None:
    """The note on a structure that is a GTV by its name ("gtv-2", "GTV_node"), named like a tumour
    (:func:`gtv_like`) or of RT ROI Interpreted Type GTV - not a helper, old, margin or target volume nor a motion
    envelope ("GTV_old", "GTV_5mm", "GTV_MIP", "iGTV": :data:`_NOT_GTV`) -, which the user's structure mapping maps
    to null while other structures make up the tumour (``used``: the GTVs taken); None otherwise (no other GTV: the
    automatic segmentation, or no GTV, is said by its own note).  Hidden, it is neither part of the tumour nor
    subtracted from the lungs - the lungs_minus_tumour radiomics and the dose metrics' lungs keep any part of it
    inside the lung structures - and the user is told so, with the role that subtracts it (QA cohort70: ``gtv-2:
    null`` on LUNG1-003 made the tumour GTV-1 + gtv-3 and left gtv-2 in the lungs without a word)."""
    key = normalise(name)
    if not used:
        return None
    if _name_role(key, name) in GTV_ROLES:
        what = "is a GTV by its name"
    elif _NOT_GTV.search(key) or _MOTION.match(key) or _INTERNAL.match(key):
        return None         # a helper, old, margin or target volume, a motion envelope ("GTV_old", "GTV_MIP"): no GTV
    elif gtv_like(name):
        what = "begins with GTV" if key.startswith("gtv") else "is named like a tumour"
    elif getattr(name, "interpreted_type", "") == "GTV":
        what = "has RT ROI Interpreted Type GTV"
    else:
        return None
    return (f"structure {str(name)!r} {what} {HIDDEN_GTV}: it is not part of the tumour ({', '.join(map(str, used))})"
            " and is not subtracted from the lungs - the lungs_minus_tumour radiomics and the dose metrics' lungs keep "
            f"any part of it inside the lung structures; if it is tumour, map it to gtv_node instead "
            f"({map_line(name, 'gtv_node')}: it then joins the tumour and is subtracted from the lungs), else leave it "
            "hidden")


# a word that names a tumour (on the normalised name): "Primary tumour", "tumour_left", "Lung GTV", "Mass RUL"
_TUMOUR_WORD = re.compile(r"(?:^| )(?:tumou?rs?|gtv|mass|nodule|lesion|neoplasm|carcinoma|cancer)(?: |$)")


def gtv_like(name: str) -> bool:
    """Whether a name looks like a GTV's (for :func:`role_notes`' warning when it has no role): it begins with GTV
    ("GTV_5mm", "GTV+nodes"), or has a tumour word (:data:`_TUMOUR_WORD`: "Primary tumour", "tumour_left",
    "Lung tumour", "Lung_GTV") and is no target volume or derived / helper structure (:data:`_NOT_GTV`: "PTV_tumour",
    "tumour_5mm") and no motion envelope.  Lungs and organs ("Lung left", "Heart", "Oesophagus") are not, nor a lung
    minus a target (:func:`lung_minus_target`: "Lung_R-GTV" is the right lung without the GTV - before, its note said
    to map it as a GTV, which would have taken the whole lung out of the lungs)."""
    key = normalise(name)
    return key.startswith("gtv") or bool(_TUMOUR_WORD.search(key) and not _NOT_GTV.search(key)
                                         and not _MOTION.match(key) and not _INTERNAL.match(key)
                                         and not lung_minus_target(name))


def find_role(names: Iterable[str], role: str, mapping=None) -> list[str]:
    """The names in ``names`` that have ``role``, in their original order.

    Role ``"gtv"`` means every GTV (primary, nodes, other GTVs): primary first, then other GTVs, then nodes.
    """
    role = _check_role(role, "the requested role")
    if role is None:
        raise InputError("no role requested", f"use one of: {', '.join(ROLES)}")
    roles = _roles(list(names), load_mapping(mapping))
    if role == "gtv":
        return [n for wanted in GTV_ROLES for n, r in roles if r == wanted]
    return [n for n, r in roles if r == role]


def describe_roles(names: Iterable[str], mapping=None) -> str:
    """``name (role)`` for every name, for error messages and reports."""
    user = load_mapping(mapping)
    names = list(names)
    roles = dict(_roles(names, user))

    def role(n):
        r = roles[n]
        return (f"{r}, by its RT ROI Interpreted Type" if r and normalise(n) not in user and not name_role(n)
                else r or "no role")

    return ", ".join(f"{n} ({role(n)})" for n in names) or "none"


def empty_text(empty: Iterable[str]) -> tuple[str, str]:
    """(the structures left out for enclosing no volume, listed; the words saying why): ("GTVn, Lungs", "without
    contours") for empty template structures; a structure of POINT markers or open contours (lines) only is not
    without contours - its contours are said (:attr:`StructureName.held`): ("GTV-1 (only POINT markers (2)), GTVn",
    "without closed contours").  The one wording of the notes and refusals naming them."""
    empty = list(empty)
    listed = ", ".join(f"{n} (only {n.held})" if getattr(n, "held", "") else str(n) for n in empty)
    return listed, ("without closed contours" if any(getattr(n, "held", "") for n in empty) else "without contours")


def _left_out(empty) -> str:
    """' (without contours, so left out: GTVn)' of a refusal naming the roles' structures ("" when none)."""
    listed, why = empty_text(empty)
    return f" ({why}, so left out: {listed})" if empty else ""


def _unclosed_fix(role: str, empty, mapping) -> str:
    """The start of a refusal's fix when structures of ``role`` were left out holding markers or lines only: naming
    them by --structure is refused too ("holds only POINT markers"), so they must be contoured (QA: a 'GTV-1' of
    POINT markers was said to be "without contours", the fix "name the structure explicitly")."""
    held = [n for n in find_role([n for n in empty if getattr(n, "held", "")], role, mapping)]
    if not held:
        return ""
    return (f"contour {', '.join(map(str, held))} with closed contours in the planning system (POINT markers and open "
            "contours - lines - enclose no volume), or ")


def _missing(role: str, names, mapping, empty=()) -> InputError:
    return InputError(
        f"no structure with role {role!r} among: {describe_roles(names, mapping)}" + _left_out(empty),
        _unclosed_fix(role, empty, mapping)
        + "name the structure explicitly (--structure NAME) or map your name to the role in a YAML/JSON file "
        "(--structure-map FILE, lines like 'My_GTV: gtv_primary'); roles: " + ", ".join(ROLES))


# the roles one structure makes (a lung side, both lungs, the lungs minus the GTV): two structures of one of them
# ("RT LUNG" and "Lung_R", an original and a copy) are refused - which one is the lung the dose metrics and radiomics
# use is the user's choice (:func:`_check_one`), never the first listed nor their union
ONE_STRUCTURE_ROLES = ("lung_right", "lung_left", "lungs", "lungs_minus_gtv")


class AmbiguousRole(InputError):
    """Several structures of a one-structure role (:func:`_check_one`): said as is, never as a missing role.

    ``role``: the role; ``found``: its structures (``names``: as text - a Slicer panel words its own message from
    them: :func:`lungai.segment_roles.ambiguous_lung_problem`); ``pick``: the structures a choice by name keeps (the
    first found, and the other lung's first when the request was both lungs) - each command says its own way to
    choose them (:func:`ambiguous_fix`)."""

    role: str = ""
    found: tuple = ()
    pick: tuple = ()

    def __init__(self, problem: str, fix: str = "", role: str | None = None, names=()):
        super().__init__(problem, fix)
        self.role, self.found = role or "", tuple(names)

    @property
    def names(self) -> list:
        return [str(n) for n in self.found]

    def with_fix(self, choose: str | None, source: str = "FILE") -> "AmbiguousRole":
        """The same refusal with the fix of a command whose way to choose structures is ``choose``
        (:func:`ambiguous_fix`; ``source``: the SEG file as the command was given it, for ``choose="seg"``)."""
        error = AmbiguousRole(self.problem, ambiguous_fix(self, choose, source), role=self.role, names=self.found)
        error.pick = self.pick
        return error


def map_line(name, role: str | None = None) -> str:
    """The --structure-map line giving structure ``name`` the role ``role`` ("'Lung, R': lung_right"), or hiding it
    (None: "RT LUNG: null"), quoted as YAML needs ("'[Lung R]': null"), in the quotes a message shows it in."""
    import yaml

    line = yaml.safe_dump({str(name): role}, allow_unicode=True, default_flow_style=False).strip()
    return f'"{line}"' if "'" in line else f"'{line}'"


def ambiguous_fix(error: AmbiguousRole, choose: str | None = "structure", source: str = "FILE") -> str:
    """How to resolve two structures of one role (:class:`AmbiguousRole`) in a command whose way to choose
    structures by name is ``choose``: ``"structure"`` (``--structure NAME`` given several times is their union:
    dose-features, demo), ``"lungs"`` (``--lungs RIGHT,LEFT``: radiomics' standard segments; not
    for a name holding a comma), ``"seg"`` (segments of the DICOM SEG ``source``, chosen by label after '#' - the
    one route wherever a SEG is given, a ``radiomics-batch`` manifest's cell too, which has no --structure nor
    --structure-map: ``SEG#Lung_R``, ``SEG#Lung_R,Lung_L`` for the right and the left lung, as a command word that
    works as written - ``'My scans/seg.dcm#Lung_R'`` - with a manifest's cell where CSV quotes it otherwise; QA: the
    SEG's fix named ``--structure``, which radiomics-batch has not), or None (no option choosing by name: lungai cohort;
    ``radiomics --structure role:lungs``, where two --structure are two segments, not the lungs).  A choice by
    name keeps what was asked: the right lung alone for role lung_right, never both lungs.  The --structure-map
    lines hide every structure but the one kept - unless one of them has the kept one's name as the mapping compares
    names (:func:`normalise`: "Lung R" and "Lung_R"): a mapping line would hide both, so the fix is to rename or
    remove it in the planning system."""
    from shlex import quote

    keep = normalise(error.pick[0]) if error.pick else None
    others = [n for n in error.found if str(n) != str(error.pick[0])] if error.pick else list(error.found[1:])
    ones = agree(len(others), "the one", "the ones")
    if any(normalise(n) == keep for n in others):
        same = next(n for n in others if normalise(n) == keep)
        hide = (f"rename or remove {ones} not to use in the planning system and export the RTSTRUCT again (a "
                f"--structure-map line cannot tell {str(error.pick[0])!r} from {str(same)!r}: names are compared "
                "ignoring case, spaces, '_' and '-', so it would hide both)")
    else:
        hide = (f"hide {ones} not to use in a --structure-map file ({', '.join(map_line(n) for n in others)}"
                ")")
    if choose == "seg":
        value = f"{source}#{','.join(map(str, error.pick))}"
        kept = ("the right and the left lung's segments" if len(error.pick) == 2 else "the segment")
        if len(error.pick) == 2 and any("," in str(n) for n in error.pick):
            return (f"rename {agree(len(others), 'the segment', 'the segments')} not to use, or the lung segment whose "
                    "label holds a comma, and export the "
                    "SEG again (after '#', a comma separates the right from the left lung)")
        from lungai.dicom.masks import command_word, fix_words, manifest_cell

        word = command_word(value)      # pasted after the option on a command line (a batch's case: its cell)
        cell = manifest_cell(value)     # a CSV cell
        return (f"choose {kept} by label after '#': {word}"
                + fix_words(f" (in a CSV manifest: {cell})" if cell != word else "", ""))
    if choose == "structure":
        pick = " ".join(f"--structure {quote(str(n))}" for n in error.pick)
        return f"choose {agree(len(error.pick), 'the structure', 'the structures')} by name (e.g. {pick}), or {hide}"
    if choose == "lungs" and len(error.pick) == 2 and not any("," in str(n) for n in error.pick):
        return (f"choose the right and the left lung by name (e.g. --lungs {quote(','.join(map(str, error.pick)))}), "
                f"or {hide}")
    return hide


def _check_one(role: str, found: list, names, mapping, both: bool = False) -> None:
    """Refuse several structures of a one-structure role (:data:`ONE_STRUCTURE_ROLES`: "RT LUNG" and "Lung_R" both
    role lung_right), naming them and how to choose (:func:`ambiguous_fix`).  Names that differ only in letter case
    ("Lung_R", "lung_r") are left to :func:`lungai.dicom.labels.check_case_groups` (its own message).  ``both``: the
    side was asked for as part of both lungs (role lungs): a choice by name names the other lung too; asked for alone
    (role lung_right) it does not (QA: ``--structure role:lung_right`` was told to give ``--structure Lung_R
    --structure Lung_L``, the union of both lungs in dose-features - the MLD of both lungs, not the right)."""
    if len({str(n).strip().lower() for n in found}) < 2:
        return
    names = list(names)
    other = {"lung_right": "lung_left", "lung_left": "lung_right"}.get(role) if both else None
    error = AmbiguousRole(
        f"{len(found)} structures have role {role!r}: {', '.join(repr(str(n)) for n in found)} - which one is the "
        f"{ROLE_WORDS[role]} is not clear (one of them may be an old contour or a copy), so none is chosen")
    error.role, error.found = role, tuple(found)
    error.pick = tuple([found[0]] + (find_role(names, other, mapping)[:1] if other else []))
    raise error.with_fix("structure")


def check_sides(names: Iterable[str], mapping=None) -> None:
    """Refuse two structures of one lung side when both lungs are asked for (a lung label map of the right and the
    left lung): the :class:`AmbiguousRole` whose choice by name names both lungs (:func:`ambiguous_fix`)."""
    names = list(names)
    for side in ("lung_right", "lung_left"):
        _check_one(side, find_role(names, side, mapping), names, mapping, both=True)


# a one-structure role in words (messages)
ROLE_WORDS = {"lung_right": "right lung", "lung_left": "left lung", "lungs": "lungs (both lungs)",
              "lungs_minus_gtv": "lungs minus the GTV"}


def required_names(role: str, names: Iterable[str], mapping=None, empty: Iterable[str] = ()) -> list[str]:
    """The structures needed to build ``role`` with :func:`mask_for_role` (raises when it cannot be built).

    ``names``: the structures that can be used (for an RTSTRUCT the contoured ones,
    :func:`lungai.dicom.rtstruct.contoured_structures`); ``empty``: those left out for having no contours (named in
    the error).
    """
    names, empty = list(names), list(empty)
    direct = find_role(names, role, mapping)
    if direct and role in ONE_STRUCTURE_ROLES:
        _check_one(role, direct, names, mapping)
    if direct and role != "lungs_minus_gtv":
        return direct
    if role == "lungs_minus_gtv" and direct:
        return direct[:1]
    if role == "lungs":
        right, left = find_role(names, "lung_right", mapping), find_role(names, "lung_left", mapping)
        if right and left:
            _check_one("lung_right", right, names, mapping, both=True)
            _check_one("lung_left", left, names, mapping, both=True)
            return right[:1] + left[:1]
    if role == "lungs_minus_gtv":
        try:
            return required_names("lungs", names, mapping) + find_role(names, "gtv", mapping)
        except AmbiguousRole:
            raise
        except InputError:
            pass
    raise _missing(role, names, mapping, empty)


def dose_lungs_role(names: Iterable[str], mapping=None, empty: Iterable[str] = (), gtv: bool = True) -> str:
    """The role the lungs of the dose features are taken from: "lungs" (a Lungs structure, or right + left lung),
    else "lungs_minus_gtv" (a 'Lungs-GTV' structure).  ``gtv``: whether a GTV is subtracted from the lungs (one
    contoured under a GTV's name, or given); without one (False) a 'Lungs-GTV' structure is the lungs even beside a
    right + left lung - the clinic's lungs minus the GTV as contoured (QUANTEC's MLD), not the lungs with the tumour
    in them.  The one rule of ``lungai dose-features --rtstruct``, ``lungai cohort`` and the Lung Radiomics panel
    (:func:`lungai.segment_roles.dose_lung_segments`); raises :class:`InputError` when the structures give neither."""
    names, empty = list(names), list(empty)
    try:
        required_names("lungs", names, mapping)
        # QA (dosim62, lungsgtv62): Lung_R + Lung_L + Lungs-GTV + 'GTV_60Gy' (a name of no role) gave the MLD / V20 of
        # the lungs with the tumour in the panel and cohort (cohort: minus the automatic tumour)
        return "lungs_minus_gtv" if not gtv and find_role(names, "lungs_minus_gtv", mapping) else "lungs"
    except AmbiguousRole:
        raise
    except InputError:
        pass
    try:
        required_names("lungs_minus_gtv", names, mapping, empty)
        return "lungs_minus_gtv"
    except InputError:      # neither: say which roles make the lungs, not only the last one tried
        raise InputError(
            "no lung structure (role lungs, lung_right + lung_left, or lungs_minus_gtv) among: "
            + describe_roles(names, mapping) + _left_out(empty),
            _lung_minus_fix(names, mapping) + _unclosed_fix("lungs", empty, mapping)
            + _unclosed_fix("lung_right", empty, mapping) + _unclosed_fix("lung_left", empty, mapping)
            + "name the lung structure explicitly (--structure NAME) or map your names to the roles in a YAML/JSON "
            "file (--structure-map FILE, lines like 'My_Lung_R: lung_right', 'My_Lung_L: lung_left')") from None


def _lung_minus_fix(names, mapping) -> str:
    """The start of :func:`dose_lungs_role`'s fix when lung-minus-target structures are there (:func:`lung_minus_target`:
    "Lungs-ITV", "Lung_R-GTV"): the mapping lines that take them, before "--structure NAME" (one of them alone
    would be one lung, or the lungs without the whole ITV, said by no message)."""
    user = load_mapping(mapping)
    found = [n for n in names if normalise(n) not in user and lung_minus_target(n)]
    if not found:
        return ""
    return (f"to use the {agree(len(found), 'lung structure', 'lung structures')} minus a target volume (no role), map "
            + " and ".join(f"'{_lung_minus_line(n)}'" for n in found) + " in a --structure-map file ("
            + "; ".join(f"{n}: {_lung_minus_then(n)}" for n in found) + "); else ")


def empty_note(empty: Iterable[str]) -> str | None:
    """The note naming the structures left out for having no (closed) contours (None when there are none;
    :func:`empty_text`)."""
    empty = list(empty)
    listed, why = empty_text(empty)
    return f"RTSTRUCT {agree(len(empty), 'structure', 'structures')} {why} left out: {listed}" if empty else None


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
