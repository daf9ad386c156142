"""lungai.segment_roles: segments are picked by exact role, never by substring."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.segment_roles import (describe_tumour_choice, dose_lung_segments, find_role, primary_tumour, segment_role,
                                  tumour_segments)


def test_roles_are_exact():
    assert [segment_role(n) for n in ("Tumor", "tumour", "GTV", "GTV-1", "gtv_2", "Right lung", "RIGHT-LUNG",
                                      "Left lung", "lung_left", "Lungs", "Lungs minus tumour")] == \
        ["tumour"] * 5 + ["right_lung"] * 2 + ["left_lung"] * 2 + ["lungs", "lungs_minus_tumour"]
    for other in ("Lung tumour", "Tumour of left lung", "Right lung nodule", "lung_tumor", "Heart", "GTV lung"):
        assert segment_role(other) is None, other


def test_dose_lung_segments_skip_tumours_and_derived_masks():
    names = ["Tumor", "Lung tumour", "Right lung", "Left lung", "Lungs minus tumour", "lung_upper_lobe_left",
             "Right lung nodule"]
    assert dose_lung_segments(names) == ["Right lung", "Left lung", "lung_upper_lobe_left"]
    assert find_role(names, "tumour") == "Tumor" and find_role(["Lung tumour"], "tumour") is None


def test_dose_lung_segments_take_a_lungs_gtv_segment_as_dose_lungs_role():
    """QA: a 'Lungs-GTV' segment (an RTSTRUCT's only lung structure, TG-263 style) gave no dose lungs in the panel
    while lungai dose-features --rtstruct takes it; one rule now (lungai.dicom.roles.dose_lungs_role): the whole lungs
    ('Lungs', or a right and a left lung) first, else a lungs-minus-GTV segment, else the lung segments there are."""
    from lungai.dicom.roles import dose_lungs_role

    for names in (["Lungs-GTV"], ["Lung_Total-GTV", "GTV-1"], ["Lungs minus GTV", "GTV"], ["Lung_R", "Lungs-GTV"]):
        assert dose_lungs_role(names) == "lungs_minus_gtv"
        assert dose_lung_segments(names) == [next(n for n in names if segment_role(n) == "lungs_minus_tumour")]
    # whole lungs first when a tumour segment is subtracted; without one (none, or the GTV under a name of no role:
    # 'GTV_60Gy') the clinic's Lungs-GTV, not the lungs with the tumour in them (QA lungsgtv62; dose_lungs_role's gtv)
    assert dose_lung_segments(["Lung_R", "Lung_L", "Lungs-GTV", "GTV-1"]) == ["Lung_R", "Lung_L"]
    assert dose_lung_segments(["Lungs", "Lungs-GTV", "Tumor"]) == ["Lungs"]
    for names in (["Lung_R", "Lung_L", "Lungs-GTV"], ["Lung_R", "Lung_L", "Lungs-GTV", "GTV_60Gy"],
                  ["Lungs", "Lungs-GTV", "iGTV"]):
        assert dose_lung_segments(names) == ["Lungs-GTV"], names
        assert dose_lungs_role(names, gtv=False) == "lungs_minus_gtv" and dose_lungs_role(names) == "lungs"
    assert dose_lung_segments(["lung_upper_lobe_left", "Lungs-GTV"]) == ["lung_upper_lobe_left"]
    assert dose_lung_segments(["Right lung"]) == ["Right lung"] and dose_lung_segments(["GTV", "Heart"]) == []


def test_real_rtstruct_roi_names():
    """The ROI names of the NSCLC-Radiomics RTSTRUCT in ../shared/data (LUNG1-003), as exported."""
    names = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]
    assert [segment_role(n) for n in names] == ["right_lung", "left_lung", None, None, None] + ["tumour"] * 3
    assert dose_lung_segments(names) == ["Lung-Right", "Lung-Left"]


def test_derived_lungs_ignore_a_lung_tumour_segment(small_phantom):
    from lungai.scene.nodes import derived_lung_masks

    arr = sitk.GetArrayFromImage(small_phantom.labels)
    img = lambda m: sitk.Cast(sitk.GetImageFromArray(m.astype(np.uint8)), sitk.sitkUInt8)  # noqa: E731
    masks = {"Lung tumour": img(arr == 9), "Right lung": img(arr == 2), "Left lung": img(arr == 3)}
    for m in masks.values():
        m.CopyInformation(small_phantom.labels)
    out = derived_lung_masks(masks)
    assert set(out) == {"Lungs"}                      # no tumour role -> no "Lungs minus tumour"
    assert (sitk.GetArrayFromImage(out["Lungs"]) > 0).sum() == ((arr == 2) | (arr == 3)).sum()


def test_derived_lungs_never_replace_the_users_own_lungs_segment(small_phantom):
    """QA (slicer55): a ticked "Lungs" segment of the user's (a planning system's, drawn with the tumour) was
    replaced by the derived Right | Left lung under its own name - its column silently another region's features."""
    from lungai.scene.nodes import derived_lung_masks

    arr = sitk.GetArrayFromImage(small_phantom.labels)

    def img(m):
        out = sitk.Cast(sitk.GetImageFromArray(m.astype(np.uint8)), sitk.sitkUInt8)
        out.CopyInformation(small_phantom.labels)
        return out

    base = {"GTV-1": img(arr == 1), "Lung-Right": img(arr == 2), "Lung-Left": img(arr == 3)}
    for own, role in (("Lungs", "lungs"), ("Lung_Total", "lungs"), ("Lungs-GTV", "lungs_minus_tumour"),
                      ("Lungs minus tumour", "lungs_minus_tumour")):
        masks = {**base, own: img((arr == 1) | (arr == 2))}       # not Right | Left: the user's own region
        out = derived_lung_masks(masks)
        masks.update(out)                                          # as the panel and radiomics_table do
        assert np.array_equal(sitk.GetArrayFromImage(masks[own]) > 0, (arr == 1) | (arr == 2)), own
        assert set(out) == ({"Lungs minus tumour"} if role == "lungs" else {"Lungs"}), (own, set(out))


def test_primary_tumour_is_not_the_first_tumour_segment():
    """QA: one tumour needed (stage CT branch) -> the primary GTV (lungai.dicom.roles' gtv_primary names), then a
    plain GTV / Tumor, then the lowest GTV number, nodes last; never the segment order (LUNG1-003: gtv-3 first)."""
    names = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]
    assert find_role(names, "tumour") == "gtv-3"            # the first one, as before
    assert primary_tumour(names) == "GTV-1" and tumour_segments(names) == ["GTV-1", "gtv-2", "gtv-3"]
    assert describe_tumour_choice(names) == "tumour: GTV-1 (primary of 3 GTVs: GTV-1, gtv-2, gtv-3)"
    assert primary_tumour(["GTVn", "GTVp"]) == "GTVp" and primary_tumour(["GTV 2", "GTV 1"]) == "GTV 1"
    assert primary_tumour(["gtv-3", "gtv-2"]) == "gtv-2" and primary_tumour(["GTV_10", "GTV_9"]) == "GTV_9"
    assert primary_tumour(["GTV_node", "gtv-2", "Tumor"]) == "Tumor" and primary_tumour(["GTVn2", "GTVn1"]) == "GTVn1"
    assert primary_tumour(["Heart", "Lung tumour"]) is None and describe_tumour_choice(["Tumor"]) == "tumour: Tumor"


def test_lungs_minus_tumour_needs_an_explicit_minus():
    """Review of d2f4d33: a tumour named 'Lung_GTV' / 'Lung GTV' / 'LungGTV' / 'Lung GTVs' / 'Lung_iGTV' got the role
    lungs_minus_tumour ('_' folded like '-'), so radiomics put it on the 2 mm lung grid and the dose could take it as
    the lungs.  A minus is said by a word or by a '-' before the GTV in the raw name (TG-263's 'Lungs-GTV')."""
    from lungai.dicom.roles import dose_lungs_role, structure_role
    from lungai.errors import InputError
    from lungai.segment_roles import is_lung

    for name in ("Lung_GTV", "Lung GTV", "LungGTV", "Lung GTVs", "Lung_iGTV", "Lungs_GTV", "Lung.GTV"):
        assert segment_role(name) is None and structure_role(name) is None and not is_lung(name), name
        assert dose_lung_segments([name, "GTV-1"]) == [], name
        try:
            dose_lungs_role([name])
            raise AssertionError(name)
        except InputError:
            pass
    for name in ("Lungs-GTV", "Lung_Total-GTV", "Lungs - iGTV", "Lungs-iGTV", "LUNGS-GTV", "Lungs minus GTV",
                 "Lungs_excl_GTV", "Lungs sub GTV", "Lungs minus tumour"):
        assert segment_role(name) == "lungs_minus_tumour" and is_lung(name), name


def test_one_normalisation_for_brackets_and_other_punctuation(small_phantom):
    """Review of d2f4d33: 'Lung (R)' had no role for the CLI / radiomics_table (only space _ - . were folded) while the
    panel's --label 'lung_r' had one, and derived_lung_masks made no 'Lungs' from 'Lung (R)' + 'Lung (L)'."""
    from LungAICommon.commands import segment_column_name
    from lungai.scene.nodes import derived_lung_masks
    from lungai.segment_roles import is_lung

    for name, role in (("Lung (R)", "right_lung"), ("Lung (L)", "left_lung"), ("Lung/R", "right_lung"),
                       ("Lungs (both)", "lungs"), ("GTV (CT)", "tumour"), ("Lungs-GTV", "lungs_minus_tumour"),
                       ("Lung_GTV", None), ("Lungs - GTV", "lungs_minus_tumour")):
        assert segment_role(name) == role, name
        assert segment_role(segment_column_name(name)) == role, (name, segment_column_name(name))
    assert is_lung("Lung (R)") and is_lung(segment_column_name("Lungs-GTV"))
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    masks = {"Lung (R)": arr == 2, "Lung (L)": arr == 3}
    masks = {n: sitk.GetImageFromArray(m.astype(np.uint8)) for n, m in masks.items()}
    assert set(derived_lung_masks(masks)) == {"Lungs"}


def test_a_structure_map_role_counts(tmp_path):
    """Review of d2f4d33: a --structure-map role is a segment's role (Rt_Lung_Contour: lung_right is a lung)."""
    from lungai.segment_roles import is_lung

    assert not is_lung("Rt_Lung_Contour")
    assert is_lung("Rt_Lung_Contour", {"Rt_Lung_Contour": "lung_right"})
    assert not is_lung("GTV-1", {"GTV-1": "gtv"})


def test_a_helper_structure_with_a_symbol_takes_no_role():
    """Review: folding every symbol into a space gave helper structures a role ("~Lung_R" a right lung, "GTV 95%" a
    GTV); `required_names` takes the first of a role in RTSTRUCT order and a role of several structures is their
    union, so "~Lung-Right" (a renamed heart first in the RTSTRUCT) became the dose's right lung (MLD 15.29 instead
    of 20.39 Gy on LUNG1-003).  Only separators fold; Unicode dashes are separators and say minus."""
    from lungai.dicom.roles import find_role, name_role, required_names

    for name in ("~Lung_R", "Lung_R*", "#Lungs", "*Lungs", "GTV*", "~GTV", "GTV!", "GTV 95%", "GTVp*"):
        assert name_role(name) is None, name
        assert segment_role(name) is None, name
    for name, role in (("Lung_R", "lung_right"), ("Lung (R)", "lung_right"), ("Lung [L]", "lung_left"),
                       ("Lungs-GTV", "lungs_minus_gtv"), ("Lungs\u2013GTV", "lungs_minus_gtv"),
                       ("Lungs \u2212 GTV", "lungs_minus_gtv"), ("Lungs\u2014iGTV", "lungs_minus_gtv"),
                       ("Lung_GTV", None), ("GTV", "gtv")):
        assert name_role(name) == role, name
    assert required_names("lungs", ["~Lung-Right", "Lung-Right", "Lung-Left", "GTV"]) == ["Lung-Right", "Lung-Left"]
    # a copy's name - Slicer's "Tumor (2)" for a second run's segment, RayStation's "GTV (1)" - takes no role (with
    # brackets folded it had become a second GTV beside its original: the full suite's panel test)
    for name in ("Tumor (2)", "GTV (1)", "Lung_R (3)", "GTV(12)"):
        assert name_role(name) is None and segment_role(name) is None, name
    assert find_role(["GTV", "GTV (1)"], "gtv") == ["GTV"]
    assert find_role(["Lungs", "GTV", "GTV 95%"], "gtv") == ["GTV"]


def test_lungs_minus_gtv_of_lungs_and_gtvs_gets_no_union_note():
    """Review: `--structure role:lungs_minus_gtv` printed "lungs_minus_gtv = union of Lung-Right, Lung-Left, GTV-1
    ...; give one structure by name" for the lungs minus the GTVs (the mask was right)."""
    from lungai.cli.radiomics import union_notes

    assert union_notes({"lungs_minus_gtv": ["Lung-Right", "Lung-Left", "GTV-1", "gtv-3"]}, ["lungs_minus_gtv"]) == []
    assert union_notes({"tumour": ["GTV-1", "gtv-3"]}, ["tumour"])[0].startswith("tumour = union of GTV-1, gtv-3")


def test_dose_lung_names_text_lists_names_the_dose_lungs_take():
    """The panel's wording of the dose features' lung names comes from one table, each of whose names is taken."""
    from lungai.segment_roles import DOSE_LUNG_EXAMPLES, dose_lung_names_text, dose_lung_segments, segment_role

    text = dose_lung_names_text()
    for role, names in DOSE_LUNG_EXAMPLES.items():
        for name in names:
            assert segment_role(name) == role and dose_lung_segments([name]) == [name], name
            assert f"'{name}'" in text
    assert "'Lung-Left'" in text and "'Lung-Right'" in text


def test_two_segments_of_one_lung_role_raise_the_command_lines_ambiguous_role():
    """QA (panelroles59): dose_lung_segments took the union of 'RT LUNG' and 'Lung_R' (a doubled right lung), find_role
    the first; both now raise lungai.dicom.roles.AmbiguousRole, the command line's refusal; tumours stay a union."""
    import pytest

    from lungai.dicom.roles import ROLE_WORDS, AmbiguousRole
    from lungai.segment_roles import ambiguous_lung_problem

    for names, role in ((["RT LUNG", "Lung_R", "Lung_L"], "lung_right"), (["Lungs", "Lung_Total", "GTV"], "lungs"),
                        (["Lungs-GTV", "Lungs minus GTV"], "lungs_minus_gtv")):
        with pytest.raises(AmbiguousRole, match=f"2 structures have role '{role}'"):
            dose_lung_segments(names)
        problem = ambiguous_lung_problem(names)            # in words, not the role's internal name
        assert f"2 segments are the {ROLE_WORDS[role]}: " in problem and f"'{role}'" not in problem, problem
    with pytest.raises(AmbiguousRole):
        find_role(["RT LUNG", "Lung_R"], "right_lung")
    assert find_role(["GTV-1", "GTV-2", "Lung_R"], "tumour") == "GTV-1" and ambiguous_lung_problem(["GTV", "GTV-2"]) is None
    assert dose_lung_segments(["Lung_R", "Lung_L", "GTV-1"]) == ["Lung_R", "Lung_L"]


def test_segments_differing_only_in_letter_case_of_one_lung_role_are_refused_as_on_the_command_line():
    """QA (panelcase59): 'Lung_R' and 'lung_r' (one right lung twice, or an old copy) were not refused by the panel's
    rule: lungai.dicom.roles._check_one leaves case-only pairs to the command line's check_case_groups, which the panel
    never ran, so dose_lung_segments took both (the MLD over a doubled right lung) and find_role the first.  They now
    raise AmbiguousRole with check_case_groups' message (that of ``--lungs seg.dcm``, role:lungs); a GTV pair stays a
    union (role:gtv takes every GTV, as on the command line)."""
    import pytest

    from lungai.dicom.roles import AmbiguousRole
    from lungai.segment_roles import ambiguous_lung_problem

    for names, first, shown, words in ((["Lung_R", "lung_r", "Lung_L"], "Lung_R", "'Lung_R', 'lung_r'", "right lung"),
                                       (["GTV", "Lungs", "LUNGS"], "Lungs", "'Lungs', 'LUNGS'", "lungs (both lungs)"),
                                       (["Right lung", "right lung"], "Right lung", "'Right lung', 'right lung'",
                                        "right lung")):
        with pytest.raises(AmbiguousRole, match=f"role:lungs found 2 segments of the segmentation named '{first}' "
                                                f"apart from letter case") as info:
            dose_lung_segments(names)
        assert f"({shown})" in info.value.problem and "rename one of them" in info.value.fix
        assert "export again" not in info.value.fix          # nothing is exported in the panel
        problem = ambiguous_lung_problem(names, untick=True)
        # QA slicerconf60: the panel said the command line's "role:lungs found 2 segments ... it takes one segment
        # of that kind" (an option's syntax the panel user never typed); now in words: which lung, both names
        assert problem.startswith(f"2 segments are the {words}: {shown} (their names differ only in letter case) - "
                                  "which one to use is not clear"), problem
        assert "role:" not in problem and "of that kind" not in problem
        assert "Rename the segment not to use" in problem and "delete it in the Segment Editor, or untick it" in problem
    with pytest.raises(AmbiguousRole, match="role:lungs_minus_gtv found 2 segments"):
        dose_lung_segments(["Lungs-GTV", "lungs-gtv"])
    with pytest.raises(AmbiguousRole, match="apart from letter case"):
        find_role(["Lung_R", "lung_r"], "right_lung")
    # a tumour written twice ('GTV', 'gtv') is no lung: the dose subtracts both, as role:gtv (their union) does
    assert ambiguous_lung_problem(["GTV", "gtv", "Lung_R", "Lung_L"]) is None
    assert dose_lung_segments(["GTV", "gtv", "Lung_R", "Lung_L"]) == ["Lung_R", "Lung_L"]
    assert tumour_segments(["GTV", "gtv", "Lung_R"]) == ["GTV", "gtv"]
    assert dose_lung_segments(["Lung_R", "Lung_L"]) == ["Lung_R", "Lung_L"]
