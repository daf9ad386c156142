"""What a segment *is*, from its name: one exact mapping used wherever a segment is picked by name
(dose lung mask and GTV, derived "Lungs" / "Lungs minus tumour" masks, radiomics column names, the
Slicer panels).

Names are compared after :func:`lungai.dicom.roles.normalise` (lower case, every run of characters other than
letters, digits and ``+`` one separator: "Right lung", "right-lung", "RIGHT_LUNG", "Right (lung)" are the same; the
Slicer panel's ``--label`` column names, ``LungAICommon.commands.segment_column_name``, read alike), and then
**exactly**: "Lung tumour" is not a lung and "Tumour of left lung" is not a tumour (no substring matching).  A
lungs-minus-tumour name needs an explicit minus ("Lungs-GTV", "Lungs minus GTV"): "Lung_GTV" / "LungGTV" is none.

The names are those of :mod:`lungai.dicom.roles` (one table, AAPM TG-263 names and common variants,
also used for RTSTRUCT structures): ``tumour`` = any GTV / tumour name (GTV-1, GTVp, GTV_node,
Tumor 2 ...), ``right_lung`` / ``left_lung`` (Right lung, Lung-Right, Lung_R, RT LUNG ...),
``lungs`` (Lungs, Lung, Both lungs ...), ``lungs_minus_tumour`` (Lungs minus tumour, Lungs-GTV ...).

When one tumour is needed (the stage model's CT branch) and several segments are tumours (an RTSTRUCT with
GTV-1, gtv-2, gtv-3), :func:`primary_tumour` picks one by :mod:`lungai.dicom.roles`' primary-GTV rule, never
by segment order: a primary name (GTV-1, GTV_01, GTVp, GTV_primary ...), else a plain unnumbered GTV / Tumor,
else the lowest GTV number (gtv-2 before gtv-3), nodal GTVs (GTVn, GTV_node) last; a segmentation whose only
tumours are nodal GTVs gives no primary tumour for the stage (:func:`nodal_tumour_problem`: refused, not a lymph
node described as the tumour).

Lung lobes as TotalSegmentator names them (``lung_upper_lobe_left`` ...) have no role of their own
but count as lung for the dose (:func:`dose_lung_segments`); so does a lungs-minus-tumour segment ('Lungs-GTV')
when there are no whole lungs or no tumour segment, as for ``lungai dose-features --rtstruct``.
"""

from __future__ import annotations

import re

from lungai.dicom.roles import (GTV_ROLES, ONE_STRUCTURE_ROLES, AmbiguousRole, dose_lungs_role, motion_envelopes,
                               normalise, required_names, structure_role)
from lungai.errors import InputError

ROLES = ("tumour", "right_lung", "left_lung", "lungs", "lungs_minus_tumour")
# the one name table is lungai.dicom.roles (TG-263 names and common variants); its roles in panel terms
_FROM_STRUCTURE = {"gtv": "tumour", "gtv_primary": "tumour", "gtv_node": "tumour", "lung_right": "right_lung",
                   "lung_left": "left_lung", "lungs": "lungs", "lungs_minus_gtv": "lungs_minus_tumour"}
LUNG_LOBES = {"lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right", "lung_middle_lobe_right",
              "lung_lower_lobe_right"}
DOSE_LUNG_ROLES = ("right_lung", "left_lung", "lungs")
# the roles whose segments are lung tissue for radiomics (the isotropic lung grid): never a tumour
LUNG_ROLES = ("right_lung", "left_lung", "lungs", "lungs_minus_tumour")


def name_key(name: str) -> str:
    """``"Right  Lung-1"`` -> ``"right_lung_1"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def segment_role(name: str, mapping=None) -> str | None:
    """The role (one of :data:`ROLES`) of a segment name, or None when the name is not one of them
    (exact match against :mod:`lungai.dicom.roles`' table, never a substring; ``mapping``: a ``--structure-map``,
    whose role of the name wins)."""
    return _FROM_STRUCTURE.get(structure_role(name, mapping))


def is_lung(name: str, mapping=None) -> bool:
    """Whether a segment is lung tissue by its role (:data:`LUNG_ROLES`: right / left lung, lungs, lungs minus
    tumour - "Lung_R", "right_lung", "Lungs-GTV" ...; with ``mapping``, a structure mapped to one: "Rt_Lung_Contour:
    lung_right"), the rule radiomics uses for its isotropic lung grid.  A tumour name (GTV-1, "Lung tumour": no role)
    is never a lung: the role is matched exactly, never a substring."""
    return segment_role(name, mapping) in LUNG_ROLES


def lungs_by_role(names, mapping=None) -> list[str]:
    """The ``names`` that are lung tissue (:func:`is_lung`) by the role ``mapping`` gives them, not by their name: a
    ``--structure-map``'s "Rt_Lung_Contour: lung_right", a DICOM SEG's "Segment_2" coded as the right lung, a Slicer
    segment "Segment_1" whose terminology is the right lung (:func:`lungai.scene.nodes.terminology_roles`).  Radiomics
    takes them as lungs (its ``lung_names``: :func:`lungai.radiomics.prepare.is_lung_segment` - the lung grid, the
    lungs' rule of a cut by the scan), as a lung named so; [] without ``mapping``."""
    return [str(n) for n in names if mapping and not is_lung(n) and is_lung(n, mapping)]


def ambiguous_lung(names) -> AmbiguousRole | None:
    """Two segments of one lung role ("RT LUNG" and "Lung_R": right lung; :data:`lungai.dicom.roles.ONE_STRUCTURE_ROLES`)
    among ``names``: the :class:`lungai.dicom.roles.AmbiguousRole` the command line raises for two such structures
    (:func:`lungai.dicom.roles.required_names`, one rule: its ``problem`` names both), else None.  Two whose names
    differ only in letter case ("Lung_R", "lung_r"), which ``required_names`` leaves to the command line's letter-case
    check, are refused by that check (:func:`lungai.dicom.labels.check_case_groups`, its message as for ``--lungs
    seg.dcm``: role:lungs takes one of them), raised as an ``AmbiguousRole``.  Its ``fix`` is the command line's; a
    panel says its own (:func:`ambiguous_lung_problem`)."""
    from lungai.dicom.labels import check_case_groups, name_key as case_key

    names = list(names)
    for role in ONE_STRUCTURE_ROLES:
        try:
            found = required_names(role, names)
        except AmbiguousRole as error:
            return error
        except InputError:
            continue
        try:        # the dose's lungs take one segment of each lung role (role:lungs: a right and a left lung)
            check_case_groups(names, found[:1], "the segmentation", role="lungs" if role != "lungs_minus_gtv" else role,
                              rename="in the Segment Editor")
        except InputError as error:
            key = case_key(found[0])
            return AmbiguousRole(error.problem, error.fix, role=role,
                                 names=[n for n in names if case_key(n) == key])
    return None


def ambiguous_lung_problem(names, untick: bool = False) -> str | None:
    """What a Slicer panel says before Apply when two segments have one lung role (:func:`ambiguous_lung`), with the
    panel user's fix: rename or delete the one not to use (``untick``: or untick it, where the panel measures only
    the ticked segments); None when there are no such two."""
    from lungai.dicom.roles import ROLE_WORDS

    error = ambiguous_lung(names)
    if error is None:
        return None
    # in words (QA slicerconf60: the command line's "role:lungs found 2 segments ... it takes one segment of that
    # kind" for 'Right lung' / 'right lung', "2 segments have role 'lung_right'" - internal role names)
    same = error.names
    case = (" (their names differ only in letter case)"
            if len({n.strip().lower() for n in same}) == 1 else "")
    problem = (f"{len(same)} segments are the {ROLE_WORDS[error.role]}: {', '.join(repr(n) for n in same)}{case} - "
               "which one to use is not clear (one of them may be an old contour or a copy), so none is chosen")
    return (f"{problem}. Rename the segment not to use (to a name without a lung role, e.g. "
            "'old lung') or delete it in the Segment Editor" + (", or untick it" if untick else "") + ", then Apply")


def find_role(names, role: str, mapping=None) -> str | None:
    """The one of ``names`` with ``role``, or None (one tumour of several: :func:`primary_tumour`); two segments of
    one lung role ("RT LUNG" and "Lung_R") raise :class:`lungai.dicom.roles.AmbiguousRole` (:func:`ambiguous_lung`),
    never the first one silently.  ``mapping``: roles of names whose name gives none (a Slicer segment's terminology,
    :func:`lungai.scene.nodes.terminology_roles`)."""
    names = list(names)
    found = [n for n in names if segment_role(n, mapping) == role]
    if role in LUNG_ROLES and len(found) > 1:
        error = ambiguous_lung(found)
        if error is not None:
            raise error
    return found[0] if found else None


def tumour_segments(names, mapping=None) -> list[str]:
    """The names with role tumour, primary first (:func:`primary_tumour`'s order): primary GTV names
    (lungai.dicom.roles' ``gtv_primary``: GTV-1, GTV_01, GTVp, GTV_primary ...), then other GTVs - plain
    unnumbered ones (GTV, Tumor) before numbered ones, lowest number first - then nodal GTVs; ties keep their order.
    ``mapping`` ({name: structure role}, as a ``--structure-map``): roles of names whose name gives none, e.g. those a
    Slicer segment's terminology gives (:func:`lungai.scene.nodes.terminology_roles`)."""
    def rank(item):
        position, name = item
        role = structure_role(name, mapping)
        number = re.search(r"(\d+)$", normalise(name))
        return (GTV_ROLES.index(role), int(number.group(1)) if number else -1, position)

    tumours = [(i, n) for i, n in enumerate(names) if segment_role(n, mapping) == "tumour"]
    return [n for _, n in sorted(tumours, key=rank)]


def primary_tumour(names, mapping=None) -> str | None:
    """The one tumour of ``names`` when one is needed (the stage CT branch): the primary GTV by
    :func:`tumour_segments`' rule (never simply the first tumour segment), or None when no name is a tumour
    (``mapping``: as there)."""
    tumours = tumour_segments(names, mapping)
    return tumours[0] if tumours else None


def nodal_tumour_problem(names, mapping=None) -> str | None:
    """Why ``names`` give no primary tumour when every tumour segment is a nodal GTV ("GTVn", "GTV_LN", "GTV_4R":
    lungai.dicom.roles' gtv_node): :func:`primary_tumour` would give a lymph node, and the stage's CT branch would
    describe it as the tumour; None when a tumour segment is not nodal, or none is a tumour (``mapping``: as in
    :func:`tumour_segments`)."""
    tumours = tumour_segments(names, mapping)
    if not tumours or any(structure_role(n, mapping) != "gtv_node" for n in tumours):
        return None
    return (f"the only tumour segment{'s are nodal GTVs' if len(tumours) > 1 else ' is a nodal GTV'} "
            f"({', '.join(tumours)}): a lymph node is not the primary tumour the stage's CT branch describes; name "
            f"the primary tumour's segment 'GTVp' or 'Tumor' (to use {'a' if len(tumours) > 1 else 'the'} node "
            f"anyway, rename it 'GTV')")


def describe_tumour_choice(names, mapping=None) -> str:
    """``"tumour: GTV-1 (primary of 3 GTVs: GTV-1, gtv-2, gtv-3)"`` - which segment was used as the tumour
    (``mapping``: as in :func:`tumour_segments`)."""
    tumours = tumour_segments(names, mapping)
    if not tumours:
        return "tumour: none"
    if len(tumours) == 1:
        return f"tumour: {tumours[0]}"
    return f"tumour: {tumours[0]} (primary of {len(tumours)} GTVs: {', '.join(tumours)})"


def dose_lung_segments(names, mapping=None) -> list[str]:
    """The segments that make up the lung for dose metrics: right / left lung, lungs, lung lobes (never a tumour);
    without lobes but with a lungs-minus-tumour segment ('Lungs-GTV', 'Lung_Total-GTV', 'Lungs minus GTV': an
    RTSTRUCT loaded by SlicerRT), that segment when there are no whole lungs (a 'Lungs' segment, or a right and a
    left lung) or no tumour segment (nothing to subtract: the clinic's lungs minus the GTV as contoured, not the
    lungs with the tumour in them) - the rule of ``lungai dose-features --rtstruct`` and ``lungai cohort``
    (:func:`lungai.dicom.roles.dose_lungs_role`, one rule) - else the lung segments there are (one lung alone).  Two segments of one lung role ("RT LUNG" and
    "Lung_R") raise :class:`lungai.dicom.roles.AmbiguousRole` (:func:`ambiguous_lung`), never their union.
    ``mapping``: roles of names whose name gives none (a segment's terminology: a tumour, a lung), as in
    :func:`tumour_segments`."""
    names = list(names)
    error = ambiguous_lung(names)
    if error is not None:
        raise error
    lungs = [n for n in names if segment_role(n, mapping) in DOSE_LUNG_ROLES or name_key(n) in LUNG_LOBES]
    if any(name_key(n) in LUNG_LOBES for n in lungs):
        return lungs
    try:        # no tumour segment (none subtracted): a Lungs-GTV segment is the lungs, beside a right + left lung too
        if dose_lungs_role(names, gtv=any(segment_role(n, mapping) == "tumour" for n in names)) == "lungs_minus_gtv":
            return required_names("lungs_minus_gtv", names)
    except InputError:
        pass
    return lungs


# examples of the names :func:`dose_lung_segments` takes, by role: the one source of the wording that tells a user which
# segment names give the dose features' lungs (:func:`dose_lung_names_text`; Testing checks each is taken)
DOSE_LUNG_EXAMPLES = {"right_lung": ("Right lung", "Lung-Right", "Lung_R"),
                      "left_lung": ("Left lung", "Lung-Left", "Lung_L"),
                      "lungs": ("Lungs",), "lungs_minus_tumour": ("Lungs-GTV",)}


def lung_segment_name(structure_role: str) -> str:
    """The segment name a panel asks for where the command line maps a structure to a dose-lung role
    (:data:`DOSE_LUNG_EXAMPLES`' first): "lung_right" -> "Right lung", "lungs_minus_gtv" -> "Lungs-GTV"."""
    return DOSE_LUNG_EXAMPLES[_FROM_STRUCTURE[structure_role]][0]


def dose_lung_names_text() -> str:
    """Which segment names :func:`dose_lung_segments` takes, for a message: "'Right lung' / 'Lung-Right' / 'Lung_R',
    'Left lung' / 'Lung-Left' / 'Lung_L', 'Lungs' or 'Lungs-GTV' (any case or separator), or TotalSegmentator's lobes
    ('lung_upper_lobe_left' ...)"."""
    groups = [" / ".join(f"'{n}'" for n in DOSE_LUNG_EXAMPLES[role]) for role in (*DOSE_LUNG_ROLES, "lungs_minus_tumour")]
    return (f"{', '.join(groups[:-1])} or {groups[-1]} (any case or separator), or TotalSegmentator's lobes "
            f"('{sorted(LUNG_LOBES)[0]}' ...)")


def dose_envelope_segments(names, mapping=None) -> list[str]:
    """The segments subtracted from the lungs for the dose metrics when no segment is a tumour: the tumour's motion
    envelopes (an iGTV / ITV, a GTV_MIP: :func:`lungai.dicom.roles.motion_envelopes`, the rule ``lungai dose-features
    --rtstruct`` applies to an RTSTRUCT without a GTV: Lungs - iGTV, no GTV dose); [] when a segment is a tumour (the
    tumour is subtracted; ``mapping``: as in :func:`tumour_segments`)."""
    names = list(names)
    return [] if tumour_segments(names, mapping) else motion_envelopes(names)
