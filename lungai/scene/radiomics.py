"""Radiomics (and optional dose) table for a volume node and chosen segments, like SlicerRadiomics.

The table has one row per feature (``feature`` = pyradiomics key such as ``original_firstorder_Mean``,
plus ``image_type``, ``feature_class``, ``name``) and one column per segment.  When a tumour segment
("Tumor"/"Tumour"/"GTV") and lung segments ("Right lung", "Left lung") are among the chosen ones,
the derived "Lungs" and "Lungs minus tumour" columns are added (one chosen segment of both lungs, "Lungs" /
"Lung_Total", gives "Lungs minus tumour" from it: :func:`lungai.scene.nodes.derived_lung_masks`).  Lung segments (any name with a lung role:
"Right lung", "Lung_R" ..., or a segment whose terminology is a lung's: :func:`lungai.segment_roles.lungs_by_role`) are
computed on the preset's isotropic lung grid like the derived ones; the table node's
``LungAI.radiomicsGrid`` attribute names each column's grid and spacing.  With a dose volume, per-segment
dose rows follow (``feature_class`` = ``dose``: mean/min/max, V5-V30 %, D2/D50/D98).
A segment that fails (empty, one voxel, dose not covering it) is reported in ``errors`` and its
column holds NaN; the other segments are computed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai import mrml
from lungai.errors import InputError, InputNote
from lungai.io.validate import check_ct, check_finite
from lungai.radiomics.settings import NODE_ATTRIBUTE, settings_id, with_lung_grid_revision
from lungai.scene.nodes import derived_lung_masks, terminology_roles, tumour_masks
from lungai.segment_roles import lungs_by_role

# on a radiomics table: the grid each segment's column was computed on ("Lung_R: resampled, 2 x 2 x 2 mm; GTV-1:
# native, 0.977 x 0.977 x 3 mm"), the `grid` / `spacing_mm` of `lungai radiomics`' _settings.csv
GRID_ATTRIBUTE = "LungAI.radiomicsGrid"


def grid_text(settings: pd.DataFrame) -> str:
    """``"Lung_R: resampled, 2 x 2 x 2 mm; GTV-1: native, 0.977 x 0.977 x 3 mm"`` from extraction settings."""
    return "; ".join(f"{r.segment}: {r.grid}, {r.spacing_mm} mm" for r in settings.itertuples(index=False))


def _dose_rows(dose_kji: np.ndarray, masks: dict, errors: dict, grid=()) -> pd.DataFrame:
    """The dose rows of the segments ``masks``; ``grid``: (the dose image, the image ``dose_kji`` lies on), for a
    segment the dose grid does not cover, said where (:func:`lungai.dose.resample.check_coverage`)."""
    from lungai.dose.dvh import d_gy, v_percent
    from lungai.dose.resample import check_coverage

    values = {}
    for name, mask in masks.items():
        m = sitk.GetArrayViewFromImage(mask) > 0
        try:
            if not m.any():
                raise InputError(f"segment {name!r} is empty", "leave it out")
            check_coverage(dose_kji, m, f"segment {name!r}", *grid)
        except InputError as exc:
            errors.setdefault(name, str(exc))
            continue
        d = dose_kji[m]
        row = {"dose_mean_gy": float(d.mean()), "dose_min_gy": float(d.min()), "dose_max_gy": float(d.max())}
        row.update({f"dose_v{v}_pct": v_percent(d, v) for v in (5, 13, 20, 30)})
        row.update({f"dose_d{p}_gy": d_gy(d, p) for p in (2, 50, 98)})
        values[name] = row
    frame = pd.DataFrame(values).reindex(columns=list(masks))
    frame.index.name = "name"
    frame = frame.reset_index()
    return frame.assign(feature=frame["name"], image_type="dose", feature_class="dose")


# as lungai.dose.read.read_dose says for a dose file with NaN / infinite voxels
DOSE_NONFINITE_FIX = ("export the dose again from the planning system (every voxel a dose in Gy; 0 outside the "
                      "calculation volume)")


def _console_dose_error(exc: InputError) -> InputError:
    """A dose check's refusal (:func:`lungai.dose.read.check_image_dose_values`, worded for ``lungai dose-features``)
    in the terms of :func:`radiomics_table`: its ``dose_unit`` / ``max_dose_gy`` arguments for the command line's
    ``--dose-unit`` / ``--max-dose-gy``; a dose volume node is not an RTDOSE file to give as --dose."""
    import re

    from lungai.dose.read import RAW_PIXELS_CLI

    def console(text: str) -> str:
        text = text.replace(RAW_PIXELS_CLI, "").replace("leave --dose-unit out (Gy, the default)", "pass dose_unit='Gy'")
        text = re.sub(r"--dose-unit (\w+)", r"dose_unit='\1'", text)
        return re.sub(r"--max-dose-gy (\S+)", r"max_dose_gy=\1", text)

    return InputError(console(exc.problem), console(exc.fix))


# the end of a note of a lung segment that looks like no lung (lungai.lungs.check.lung_role_notes), in the scene's words
SCENE_LUNG_HINT = ("is it really a lung segment, not a tumour or another structure? Choose the lung segments of the "
                   "segmentation (or set their terminology to the lung)")


def radiomics_table(scene, volume_node, seg_node, segments=None, params="default", image_types=None,
                    feature_classes=None, dose_node=None, table_node=None, progress=None, dose_unit=None,
                    max_dose_gy=None):
    """Compute the table; returns (table node, {segment: error message}).

    ``dose_unit`` ("Gy" / "cGy"): the unit of ``dose_node``'s voxels; None: the node's own
    (:func:`lungai.scene.dicom.dose_node_unit`: a SlicerRT RTDOSE's DoseUnits, else Gy).  The dose is checked before
    any work as ``lungai dose-features`` and the Lung Radiomics panel check it: another patient's / frame of
    reference's RTDOSE (:func:`lungai.scene.dicom.check_dose_node_matches_ct`), NaN / negative values, and the Gy / cGy
    plausibility (:func:`lungai.dose.read.check_image_dose_values`: a maximum above ``max_dose_gy``, default 150 Gy,
    is cGy read as Gy - pass ``dose_unit='cGy'``).  An RTDOSE of DoseType EFFECTIVE is computed with the note
    ``lungai dose-features`` prints (an :class:`~lungai.errors.InputNote` warning: not the physical dose).
    A segmentation that is not ``volume_node``'s - another CT's results, drawn on another image or another DICOM
    patient's (:func:`lungai.scene.nodes.segmentation_volume_problem`, the Lung Radiomics panel's check) - raises
    InputError before any work."""
    from lungai.dose.read import IMAGE_DOSE_UNITS, check_image_dose_values
    from lungai.dose.resample import dose_on_grid
    from lungai.radiomics import extract, load_params
    from lungai.scene.dicom import check_dose_node_matches_ct, dose_node_unit

    from lungai.scene.nodes import segmentation_volume_problem

    table_node = _table_to_write(table_node, volume_node)
    image = mrml.image_from_volume_node(volume_node)
    check_ct(image, volume_node.GetName())      # as read_ct for a file: NaN voxels, spacing in mm, HU
    problem = segmentation_volume_problem(seg_node, volume_node)   # another CT's / patient's segments, as the panel
    if problem:
        raise InputError(problem)
    dose_image = None if dose_node is None else mrml.image_from_volume_node(dose_node)
    dose_notes = []
    if dose_image is not None:                  # before any work, as read_dose for a file and the panel
        dose_notes = check_dose_node_matches_ct(dose_node, volume_node)   # an EFFECTIVE RTDOSE: as dose-features
        for note in dose_notes:
            warnings.warn(InputNote(note), stacklevel=2)
        check_finite(dose_image, dose_node.GetName(), "dose", DOSE_NONFINITE_FIX)
        unit = dose_unit or dose_node_unit(dose_node)      # a SlicerRT dose in cGy holds cGy: rows in Gy
        if unit not in IMAGE_DOSE_UNITS:
            raise InputError(f"dose unit {unit!r} is not known", "pass dose_unit='Gy' or dose_unit='cGy'")
        try:    # QA (slicer53): a cGy dose (NRRD, a resampled node) gave dose rows of 6800 "Gy", V20 100 %, silently
            check_image_dose_values(sitk.GetArrayViewFromImage(dose_image), dose_node.GetName(), unit, max_dose_gy)
        except InputError as exc:
            raise _console_dose_error(exc) from None
    names = list(segments or mrml.segment_names(seg_node))
    if not names:
        raise InputError(f"{seg_node.GetName()} has no segments", "add or choose at least one segment")
    masks = {n: mrml.segment_to_mask(scene, seg_node, n, volume_node) for n in names}
    derived = {}        # every tumour empty: "Lungs minus tumour" (the lungs themselves) not computed, and why
    outside = []        # every tumour outside the lungs: "Lungs minus tumour" equals the lungs, said
    masks.update(derived_lung_masks(masks, lambda: tumour_masks(scene, seg_node, volume_node, masks), derived,
                                    volume_node.GetName(), outside, terminology_roles(seg_node)))  # every GTV leaves
    for note in outside:
        warnings.warn(InputNote(note), stacklevel=2)
    # a lung segment that looks like no lung (a tumour ticked as a lung; too small, mostly soft tissue): the rule of
    # lungai radiomics --lungs (lungai.lungs.check.lung_segment_notes; QA radiomicsfollow71)
    from lungai.lungs.check import lung_role_notes

    for note in lung_role_notes(masks, image, terminology_roles(seg_node), hint=SCENE_LUNG_HINT):
        warnings.warn(InputNote(note), stacklevel=2)
    p = params if isinstance(params, dict) else load_params(params, image_types=image_types,
                                                             feature_classes=feature_classes)
    # a lung by its terminology only ("Segment_1" coded as the right lung, as it makes the derived "Lungs"): on the lung
    # grid as a lung named so (QA slicer68: LUNG1-003's renamed right lung on the CT's grid, "Lungs" on 2 mm)
    lung_names = lungs_by_role(masks, terminology_roles(seg_node))
    p = with_lung_grid_revision(p, masks, lung_names)     # Lung_R ... on the lung grid: the id says so
    result = extract(image, masks, p, case=volume_node.GetName(), progress=progress, lung_names=lung_names)
    errors = {**dict(zip(result.errors.segment, result.errors.error)), **derived}
    long = result.features
    table = long.assign(name=long.feature, feature=long.image_type + "_" + long.feature_class + "_" + long.feature
                        ).pivot(index=["feature", "image_type", "feature_class", "name"], columns="segment",
                                values="value")
    table = table.reindex(columns=list(dict.fromkeys([*masks, *derived]))).reset_index()
    table.columns.name = None
    if dose_node is not None:
        dose = dose_on_grid(dose_image, image) * IMAGE_DOSE_UNITS[unit]
        rows = _dose_rows(dose, masks, errors, (dose_image, image))
        table = pd.concat([table, rows.reindex(columns=list(table.columns))], ignore_index=True)
    node = mrml.table_node_from_dataframe(scene, table, f"{volume_node.GetName()} radiomics", node=table_node)
    node.SetAttribute(NODE_ATTRIBUTE, settings_id(p))  # the settings travel with the table (lungai.rp checks them)
    node.SetAttribute(GRID_ATTRIBUTE, grid_text(result.settings))   # which columns are on the 2 mm lung grid
    from lungai.scene.nodes import record_review_notes, review_notes

    # segments flagged for review (the tumours "Lungs minus tumour" subtracts included) and the dose rows' notes (an
    # EFFECTIVE RTDOSE ...): said by the RP risk computed from this table (predict_rp_node)
    record_review_notes(node, review_notes(seg_node, list(masks)) + dose_notes)
    from lungai.scene.nodes import record_segment_roles

    # a renamed GTV (a tumour by its terminology): the RP risk names its features as the tumour's (lungai.scene.rp)
    record_segment_roles(node, terminology_roles(seg_node), list(masks))
    from lungai.scene.nodes import measured_outlines, record_measured_outlines

    # the segments' outlines it measured: once one is edited, renamed, replaced or deleted the table says so
    # (nodes.refresh_confidence_tables)
    record_measured_outlines(node, measured_outlines(seg_node, list(masks)))
    return node, errors


def _table_to_write(table_node, volume_node):
    """The ``table_node`` :func:`radiomics_table` writes into: as given, or None (a new table) when it is a results
    table the panels would keep (warned, :class:`~lungai.errors.InputNote`): one lungai made whose cells the user
    edited since (:func:`lungai.scene.nodes.table_edited`) or another CT's results (its source volume, e.g. "lung1
    radiomics" given for lung2: its name and its link to lung1 stayed, the RP risk of lung1 would have read lung2's
    features).  A node that is not a table raises InputError (QA scenemisc62: an AttributeError after the whole
    extraction, or lung2's features written over the user's edited "lung1 radiomics")."""
    from lungai.scene import nodes

    if table_node is None:
        return None
    if not table_node.IsA("vtkMRMLTableNode"):
        raise InputError(f"table_node {table_node.GetName()!r} is a {table_node.GetClassName()}, not a table",
                         "pass a vtkMRMLTableNode or table_node=None (a new table)")
    source = nodes.source_volume_id(table_node)
    why = ("edited since the run that made it" if nodes.table_edited(table_node)
           else "the results of another CT" if source and source != volume_node.GetID() else "")
    if not why:
        return table_node
    warnings.warn(InputNote(f"table {table_node.GetName()!r} is kept as it is ({why}): the features go to a new "
                            "table (the returned node), as the Lung Radiomics panel does"), stacklevel=3)
    return None


def export_table_csv(table_node, path, protect=()) -> str:
    """Write the table node as CSV (atomically; never onto an input)."""
    from lungai.radiomics.csv_output import write_csv

    return str(write_csv(mrml.dataframe_from_table_node(table_node), path, protect=protect))
