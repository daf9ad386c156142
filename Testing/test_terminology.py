"""One terminology table (lungai.terminology) behind the Slicer segment tags, the DICOM SEG codes and the SR findings,
and it matches 3D Slicer's own terminology lists."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from lungai.terminology import DICOM_MASTER, GENERAL_ANATOMY, TERMINOLOGY, slicer_terminology_entry

# What Slicer's lists hold for these concepts (Modules/Loadable/Terminologies/Resources/
# SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json and -DICOM-Master.json, identical at
# Slicer v5.10.0 and v5.12.3): (context, category, type) -> {modifier: meaning}, with the meanings.
# Set LUNGAI_SLICER_TERMINOLOGY to that Resources folder to check against the files themselves.
SLICER_EXCERPT = {
    (GENERAL_ANATOMY, ("123037004", "Anatomical Structure"), ("39607008", "Lung")): {"24028007": "Right", "7771000": "Left"},
    (GENERAL_ANATOMY, ("85756007", "Tissue"), ("59441001", "Lymph node")): {},
    (GENERAL_ANATOMY, ("49755003", "Morphologically Altered Structure"), ("4147007", "Mass")): {},
    (DICOM_MASTER, ("49755003", "Morphologically Altered Structure"), ("108369006", "Neoplasm")): {},
    (DICOM_MASTER, ("49755003", "Morphologically Altered Structure"), ("86049000", "Neoplasm, Primary")): {},
    (DICOM_MASTER, ("123037004", "Anatomical Structure"), ("39607008", "Lung")):
        {"24028007": "Right", "7771000": "Left", "51440002": "Right and left"},
    (DICOM_MASTER, ("85756007", "Tissue"), ("59441001", "Lymph node")): {},
}


def _slicer_lists() -> dict:
    folder = os.environ.get("LUNGAI_SLICER_TERMINOLOGY")
    if not folder:
        return SLICER_EXCERPT
    out = {}
    for path in sorted(Path(folder).glob("SegmentationCategoryTypeModifier-*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        context = doc["SegmentationCategoryTypeContextName"]
        for cat in doc["SegmentationCodes"]["Category"]:
            for typ in cat.get("Type", []):
                out[(context, (cat["CodeValue"], cat["CodeMeaning"]), (typ["CodeValue"], typ["CodeMeaning"]))] = {
                    m["CodeValue"]: m["CodeMeaning"] for m in typ.get("Modifier", [])}
    assert out, f"no Slicer terminology files in {folder}"
    return out


def _parse(entry: str):
    """Slicer's serialised TerminologyEntry -> (context, category, type, modifier) as (value, scheme, meaning)."""
    parts = entry.split("~")
    assert len(parts) == 7, entry
    codes = [tuple(p.split("^")) for p in parts[1:4]]
    for code in codes:
        assert len(code) == 3, entry
    return parts[0], codes[0], codes[1], codes[2], parts[4:]


@pytest.mark.parametrize("role", [r for r in TERMINOLOGY if r])
def test_table_matches_slicers_own_lists(role):
    term = TERMINOLOGY[role]
    lists = _slicer_lists()
    key = (term.context, (term.category.value, term.category.meaning), (term.type.value, term.type.meaning))
    assert key in lists, f"{role}: {key} is not in Slicer's {term.context}"
    if term.modifier is not None:
        assert lists[key].get(term.modifier.value) == term.modifier.meaning, (role, lists[key])


def test_lung_tumour_and_lungs_codes_with_laterality():
    """The SCT codes Slicer uses: one concept "Lung" with a laterality modifier (not the old "Right lung" concepts)."""
    assert {r: (TERMINOLOGY[r].type.value, TERMINOLOGY[r].modifier.value if TERMINOLOGY[r].modifier else None)
            for r in ("gtv", "lung_right", "lung_left", "lungs")} == {
        "gtv": ("108369006", None), "lung_right": ("39607008", "24028007"), "lung_left": ("39607008", "7771000"),
        "lungs": ("39607008", "51440002")}


@pytest.mark.parametrize("name, role", [("Tumor", "gtv"), ("GTVp", "gtv_primary"), ("Right lung", "lung_right"),
                                        ("Lung_L", "lung_left"), ("Lungs", "lungs"), ("GTV_LN1", "gtv_node")])
def test_slicer_entry_strings_come_from_the_table(name, role):
    entry = slicer_terminology_entry(name)
    term = TERMINOLOGY[role]
    context, category, kind, modifier, region = _parse(entry)
    assert context == term.context
    assert category == ("SCT", term.category.value, term.category.meaning)
    assert kind == ("SCT", term.type.value, term.type.meaning)
    assert modifier == (("SCT", term.modifier.value, term.modifier.meaning) if term.modifier else ("", "", ""))
    assert region == ["Anatomic codes - DICOM master list", "^^", "^^"]


def test_names_without_a_role_get_no_slicer_tag():
    assert slicer_terminology_entry("Heart") is None and slicer_terminology_entry("Lung tumour") is None


def test_seg_segment_codes_come_from_the_table(tmp_path):
    """Every role written to a DICOM SEG carries the table's category / type / modifier."""
    from dicom_helpers import small_phantom

    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct

    phantom = small_phantom(7)
    write_ct_series(phantom.ct, tmp_path / "ct")
    ct = read_ct(tmp_path / "ct")
    roles = [r for r in TERMINOLOGY if r] + [None]
    masks, names = {}, {}
    for i, role in enumerate(roles):
        arr = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
        arr[10 + i, 20:30, 20:30] = 1
        m = sitk.GetImageFromArray(arr)
        m.CopyInformation(ct)
        label = f"segment {i}"
        masks[label], names[label] = m, role
    ds = pydicom.dcmread(write_seg(masks, ct_reference(tmp_path / "ct", image=ct), tmp_path / "all.seg.dcm", roles=names))
    assert len(ds.SegmentSequence) == len(roles)
    for item, role in zip(ds.SegmentSequence, roles):
        term = TERMINOLOGY[role]
        cat, typ = item.SegmentedPropertyCategoryCodeSequence[0], item.SegmentedPropertyTypeCodeSequence[0]
        assert (cat.CodeValue, cat.CodingSchemeDesignator, cat.CodeMeaning) == \
            (term.category.value, term.category.scheme, term.category.meaning), role
        assert (typ.CodeValue, typ.CodingSchemeDesignator, typ.CodeMeaning) == \
            (term.type.value, term.type.scheme, term.type.meaning), role
        mods = [(c.CodeValue, c.CodeMeaning) for c in getattr(typ, "SegmentedPropertyTypeModifierCodeSequence", [])]
        assert mods == ([(term.modifier.value, term.modifier.meaning)] if term.modifier else []), role


def test_mrml_segments_are_tagged_from_the_table(mrml_scene):
    from io_helpers import oblique_image

    from lungai import mrml

    img = oblique_image()
    arr = np.zeros(sitk.GetArrayViewFromImage(img).shape, np.uint8)
    arr[2:4, 2:4, 2:4] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(img)
    volume = mrml.volume_node_from_image(mrml_scene, img, "ct")
    seg = None
    for name, role in (("Tumor", "gtv"), ("Right lung", "lung_right"), ("Left lung", "lung_left"), ("Lungs", "lungs")):
        seg, sid = mrml.mask_to_segment(mrml_scene, mask, name, seg_node=seg, reference_volume_node=volume)
        assert seg.GetSegmentation().GetSegment(sid).GetTerminology() == TERMINOLOGY[role].slicer_entry(), name
    _, other = mrml.mask_to_segment(mrml_scene, mask, "Heart", seg_node=seg)   # no role: Slicer's own default tag
    assert seg.GetSegmentation().GetSegment(other).GetTerminology() not in {t.slicer_entry() for t in TERMINOLOGY.values()}


def test_slicer_tumour_terminology_read_back():
    """A Slicer segment's TerminologyEntry gives its GTV role where its name gives none (QA slicer67: a renamed GTV):
    the table's Neoplasm / Neoplasm, Primary read back; lungs, a lymph node, Tissue, no tag or a malformed one: none."""
    from lungai.terminology import terminology_tumour_role

    assert terminology_tumour_role(slicer_terminology_entry("Tumor")) == "gtv"
    assert terminology_tumour_role(slicer_terminology_entry("GTVp")) == "gtv_primary"
    for name in ("Right lung", "Lungs", "GTV_LN1"):      # a lymph node is no GTV by its code alone
        assert terminology_tumour_role(slicer_terminology_entry(name)) is None, name
    for entry in (None, "", "Neoplasm", TERMINOLOGY[None].slicer_entry(),
                  "ctx~SCT^49755003^Morphologically Altered Structure~99X^108369006^Neoplasm~^^~x~^^~^^"):
        assert terminology_tumour_role(entry) is None, entry
    # SRT, SNOMED's older designator (older Slicer scenes), with the same code value (QA slicerfollow67)
    assert terminology_tumour_role(
        "ctx~SRT^49755003^Morphologically Altered Structure~SRT^108369006^Neoplasm~^^~x~^^~^^") == "gtv"


def test_one_code_table_for_slicer_tags_and_dicom_seg():
    """A Slicer tag and a DICOM SEG read their roles from one table (lungai.terminology.CODE_ROLES): every lungai tag
    of a role in it reads back as that role (lungs too: QA slicerfollow67, a "Segment_1" coded as the right lung)."""
    import lungai.dicom.seg as seg
    from lungai.terminology import CODE_ROLES, terminology_role

    assert not hasattr(seg, "_CODE_ROLES")
    for role in ("gtv", "gtv_primary", "lung_right", "lung_left", "lungs"):
        assert terminology_role(TERMINOLOGY[role].slicer_entry()) == role
        assert role in CODE_ROLES.values()
    assert terminology_role(TERMINOLOGY["gtv_node"].slicer_entry()) is None
