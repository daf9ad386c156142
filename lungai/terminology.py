"""The one table of standard codes for the segments lungai makes and reads (SNOMED CT, "SCT").

Used by the Slicer segments' terminology tags (:mod:`lungai.mrml`), the DICOM SEG writer
(:mod:`lungai.dicom.seg`) and the DICOM SR findings (:mod:`lungai.dicom.sr`), keyed by the
structure roles of :mod:`lungai.dicom.roles` (a segment's role comes from its name there).

Each entry is the category / type / type modifier exactly as 3D Slicer's own terminology lists hold
it (``Modules/Loadable/Terminologies/Resources/SegmentationCategoryTypeModifier-*.json``, checked
at Slicer v5.10.0 and v5.12.3), with the list that holds it: Slicer's default "General Anatomy"
list where it has the concept (lung with laterality right / left, lymph node), else Slicer's
"DICOM master list" (neoplasm, primary neoplasm, lung "right and left").  The same codes go into
a DICOM SEG's SegmentedPropertyCategory / Type / TypeModifier sequences (dcmqi / QuantitativeReporting
read them back into the same Slicer terminology).

| role | category | type | modifier | Slicer list |
|---|---|---|---|---|
| gtv (any GTV, lungai's "Tumor") | 49755003 Morphologically Altered Structure | 108369006 Neoplasm | - | DICOM master |
| gtv_primary | 49755003 Morphologically Altered Structure | 86049000 Neoplasm, Primary | - | DICOM master |
| gtv_node | 85756007 Tissue | 59441001 Lymph node | - | General Anatomy |
| lung_right | 123037004 Anatomical Structure | 39607008 Lung | 24028007 Right | General Anatomy |
| lung_left | 123037004 Anatomical Structure | 39607008 Lung | 7771000 Left | General Anatomy |
| lungs, lungs_minus_gtv | 123037004 Anatomical Structure | 39607008 Lung | 51440002 Right and left | DICOM master |
| any other segment (SEG only) | 85756007 Tissue | 85756007 Tissue | - | - |
"""

from __future__ import annotations

from dataclasses import dataclass

GENERAL_ANATOMY = "Segmentation category and type - 3D Slicer General Anatomy list"
DICOM_MASTER = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"   # Slicer's region context (no region given here)


@dataclass(frozen=True)
class Code:
    value: str
    meaning: str
    scheme: str = "SCT"

    def slicer(self) -> str:
        """``SCT^39607008^Lung`` (Slicer's serialisation of one code)."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


@dataclass(frozen=True)
class Terminology:
    category: Code
    type: Code
    modifier: Code | None = None
    context: str | None = DICOM_MASTER    # the Slicer list that holds the entry (None: no Slicer tag)

    def slicer_entry(self) -> str:
        """The segment's "TerminologyEntry" tag as Slicer writes it (vtkSlicerTerminologiesModuleLogic::
        SerializeTerminologyEntry): context~category~type~type modifier~region context~region~region modifier."""
        modifier = self.modifier.slicer() if self.modifier else "^^"
        return f"{self.context}~{self.category.slicer()}~{self.type.slicer()}~{modifier}~{ANATOMIC_CONTEXT}~^^~^^"


_ALTERED = Code("49755003", "Morphologically Altered Structure")
_ANATOMY = Code("123037004", "Anatomical Structure")
_TISSUE = Code("85756007", "Tissue")
_LUNG = Code("39607008", "Lung")
RIGHT, LEFT, BOTH = Code("24028007", "Right"), Code("7771000", "Left"), Code("51440002", "Right and left")

TERMINOLOGY: dict[str | None, Terminology] = {   # structure role (lungai.dicom.roles) -> codes
    "gtv": Terminology(_ALTERED, Code("108369006", "Neoplasm")),
    "gtv_primary": Terminology(_ALTERED, Code("86049000", "Neoplasm, Primary")),
    "gtv_node": Terminology(_TISSUE, Code("59441001", "Lymph node"), context=GENERAL_ANATOMY),
    "lung_right": Terminology(_ANATOMY, _LUNG, RIGHT, GENERAL_ANATOMY),
    "lung_left": Terminology(_ANATOMY, _LUNG, LEFT, GENERAL_ANATOMY),
    "lungs": Terminology(_ANATOMY, _LUNG, BOTH),
    "lungs_minus_gtv": Terminology(_ANATOMY, _LUNG, BOTH),
    None: Terminology(_TISSUE, _TISSUE, context=None),   # any other segment (DICOM SEG only)
}


# the one colour table (RGB 0-255) per structure role: the DICOM SEG's recommended display colour, the RTSTRUCT's
# ROIDisplayColor and the Slicer segments' colour (lungai.mrml.COLORS); each lung its own colour (QA: both lungs
# of every RTSTRUCT were one colour, 197 165 145, so a planning system could not tell them apart)
COLOURS: dict[str | None, tuple[int, int, int]] = {
    None: (230, 220, 70), "gtv": (240, 51, 51), "gtv_primary": (240, 51, 51), "gtv_node": (255, 128, 0),
    "lung_right": (128, 174, 217), "lung_left": (140, 217, 140), "lungs": (197, 165, 145),
    "lungs_minus_gtv": (128, 174, 128)}


def colour_of(role: str | None) -> tuple[int, int, int]:
    """The display colour (RGB 0-255) of a structure role (:data:`COLOURS`; a role without one: that of any other
    segment)."""
    return COLOURS.get(role, COLOURS[None])


def slicer_terminology_entry(name: str) -> str | None:
    """The Slicer "TerminologyEntry" tag of a segment named ``name`` (by its role: "Tumor", "Right lung",
    "Lung_L", "Lungs" ...), or None when the name has no role."""
    from lungai.dicom.roles import structure_role

    role = structure_role(name)
    entry = TERMINOLOGY.get(role) if role else None
    return entry.slicer_entry() if entry and entry.context else None


# the roles a segment's terminology gives where its name gives none - the one code table for a Slicer segment's
# "TerminologyEntry" tag (lungai.scene.nodes.terminology_roles) and a DICOM SEG's SegmentedPropertyType codes
# (lungai.dicom.seg.seg_code_roles): the codes of :data:`TERMINOLOGY` read back.  {(type, type modifier): role}, SNOMED
# CT code values: a neoplasm / primary neoplasm is a GTV, a lung with laterality right / left a lung of that side,
# right and left (or none) both lungs.  A lymph node is no GTV by its code alone (an anatomical lymph node is not a
# tumour), nor is "Tissue".
CODE_ROLES = {("86049000", None): "gtv_primary", ("108369006", None): "gtv",
              ("39607008", "24028007"): "lung_right", ("39607008", "7771000"): "lung_left",
              ("39607008", "51440002"): "lungs", ("39607008", None): "lungs"}
TUMOUR_TYPE_ROLES = {TERMINOLOGY[role].type.value: role for role in ("gtv", "gtv_primary")}


def sct_value(scheme, value) -> str | None:
    """The SNOMED CT code value of a code given as (coding scheme designator, code value): SCT's value; an "SRT" code
    (SNOMED's older designator, in older DICOM files and older Slicer terminology lists and scenes) either with the
    same SNOMED CT value ("SRT^108369006^Neoplasm") or with its SNOMED RT value ("SRT^T-28000^Lung", read as SCT
    39607008 by pydicom's table); None for any other scheme or an unknown SRT code."""
    scheme, value = str(scheme or "").strip().upper(), str(value or "").strip()
    if not value:
        return None
    if scheme == "SCT":
        return value
    if scheme == "SRT":
        if value.isdigit():
            return value
        from pydicom.sr._snomed_dict import mapping

        return mapping["SRT"].get(value)
    return None


def code_role(kind, modifier=None) -> str | None:
    """The structure role (:data:`CODE_ROLES`) of a type code and its modifier, each an SCT code value (or None)."""
    return CODE_ROLES.get((kind, modifier)) if kind else None


def _slicer_code(text) -> tuple[str, str] | None:
    code = [c.strip() for c in str(text).split("^")]
    return (code[0], code[1]) if len(code) >= 2 and code[1] else None


def terminology_role(entry) -> str | None:
    """The structure role of a Slicer "TerminologyEntry" tag (``context~category~type~type modifier~...``) by its type
    and type modifier codes (:data:`CODE_ROLES`): "gtv" / "gtv_primary" (SCT 108369006 Neoplasm, 86049000 Neoplasm,
    Primary), "lung_right" / "lung_left" / "lungs" (39607008 Lung with laterality 24028007 Right, 7771000 Left,
    51440002 Right and left, or none) - what lungai sets on its segments, and what the Segment Editor sets when a
    segment's terminology is chosen from Slicer's lists; SRT codes of older Slicer scenes read alike
    (:func:`sct_value`).  None: no tag, another type, a tag that is not Slicer's."""
    parts = str(entry or "").split("~")
    if len(parts) < 3:
        return None
    kind = _slicer_code(parts[2])
    if kind is None:
        return None
    modifier = _slicer_code(parts[3]) if len(parts) > 3 else None
    return code_role(sct_value(*kind), sct_value(*modifier) if modifier else None)


def terminology_tumour_role(entry) -> str | None:
    """The GTV role ("gtv" / "gtv_primary") of a Slicer "TerminologyEntry" tag whose type is a tumour's
    (:func:`terminology_role`), else None."""
    role = terminology_role(entry)
    return role if role in TUMOUR_TYPE_ROLES.values() else None
