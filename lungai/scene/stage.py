"""Stage prediction for the patient loaded in the scene.

EHR/RNA files (paths chosen in the panel), a CT volume node and a tumour segment -> a locked stage
model's class probabilities and the patient's top genes as table nodes, Grad-CAM as a volume node.
"""

from __future__ import annotations

import numpy as np

from lungai import mrml
from lungai.errors import InputError
from lungai.io.validate import check_ct


def remove_node(scene, node) -> None:
    """Remove ``node`` (if any and still in ``scene``) with its display and storage nodes; the slice views showing
    it lose it as their layer."""
    if node is None or scene is None or node.GetScene() is not scene:
        return
    extra = []
    for get_n, get in (("GetNumberOfDisplayNodes", "GetNthDisplayNode"), ("GetNumberOfStorageNodes", "GetNthStorageNode")):
        if hasattr(node, get_n):
            extra += [getattr(node, get)(i) for i in range(getattr(node, get_n)())]
    scene.RemoveNode(node)
    for other in extra:
        if other is not None and other.GetScene() is scene:
            scene.RemoveNode(other)


STAGE_MADE_BY = "lungai stage predict"   # lungai.scene.nodes.MADE_BY_TAG of the nodes a stage run makes


def remove_made_node(scene, node) -> None:
    """:func:`remove_node` for a node a stage run made (lungai.scene.nodes.node_made_by :data:`STAGE_MADE_BY`); the
    user's nodes, and lungai's other results (a CT's radiomics table, a patient's RP risk table), stay."""
    if made_node_or_none(node) is not None:
        remove_node(scene, node)


def made_node_or_none(node):
    """``node`` if a stage run made it (tagged :data:`STAGE_MADE_BY`) and it is still as the run left it - its name
    the one the run gave it and, a table, its cells those the run wrote (:func:`mark_stage_node`) -, else None: an
    output selector may hold a node of the user's, or another result of lungai's (a radiomics or RP risk table: it
    lists every node of the class), and a stage output the user renamed or edited (to keep a patient's result, as
    the other panels' renamed tables are kept: :func:`lungai.scene.nodes.own_table`) is the user's; a run makes a new
    node then, never writes into, renames, tags nor removes it (QA panels64)."""
    from lungai.scene.nodes import MADE_NAME_ATTRIBUTE, node_made_by, table_edited

    if node_made_by(node) != STAGE_MADE_BY:
        return None
    made = node.GetAttribute(MADE_NAME_ATTRIBUTE)      # None: a scene of an older version (cannot be told)
    if made is not None and node.GetName() != made or node.IsA("vtkMRMLTableNode") and table_edited(node):
        return None
    return node


def mark_stage_node(node):
    """Tag ``node`` as a stage run's output (:data:`STAGE_MADE_BY`) and record the name it was given and, a table,
    its cells (:data:`lungai.scene.nodes.MADE_NAME_ATTRIBUTE`, :data:`~lungai.scene.nodes.MADE_CELLS_ATTRIBUTE`), so
    that a later run tells a renamed or edited one (:func:`made_node_or_none`); returns the node."""
    from lungai.scene.nodes import MADE_CELLS_ATTRIBUTE, MADE_NAME_ATTRIBUTE, cells_digest, mark_node_made_by

    node.SetAttribute(MADE_NAME_ATTRIBUTE, node.GetName())
    if node.IsA("vtkMRMLTableNode"):
        node.SetAttribute(MADE_CELLS_ATTRIBUTE, cells_digest(node))
    return mark_node_made_by(node, STAGE_MADE_BY)


def patient_grad_cam(scene, path, patient_id: str, node=None, ct_volume_node=None):
    """The Grad-CAM volume node of ``patient_id`` shown as a heat map: ``path`` (its NIfTI, written by
    ``lungai stage predict --explain``) read into ``node`` - reused, renamed "<patient_id> Grad-CAM".  None when
    there is none for this patient (``path`` None: no prediction shown; no such file; no CT): ``node`` - an earlier
    run's or patient's Grad-CAM - is then removed from the scene, never left shown beside another patient's result;
    only when lungai made it (tagged :data:`STAGE_MADE_BY`): a node of the user's (the CT picked as the Grad-CAM
    output) is only no longer returned.  The Grad-CAM node is tagged."""
    from pathlib import Path

    if path is None or ct_volume_node is None or not Path(path).is_file():
        remove_made_node(scene, node)
        return None
    from lungai.io import read_image

    name = f"{patient_id} Grad-CAM"
    node = grad_cam_node(scene, read_image(path), name, node=made_node_or_none(node))
    if not node.GetName().startswith(name):       # a reused node keeps no earlier patient's name
        node.SetName(scene.GenerateUniqueName(name))
    return show_grad_cam(node, ct_volume_node)


def grad_cam_node(scene, image, name: str, node=None):
    """A Grad-CAM map (on its CT's grid) as a volume node (``node`` reused): its display node made with the heat map's
    window - the map's own range (:func:`lungai.scene.nodes.show_as_heat_map`) - before its voxels, so no automatic
    window/level is computed over the CT-sized float map only to be replaced (QA slicer70: 0.9-1.5 s of a CT-sized
    map on the GUI thread, as Segment tumour's uncertainty map)."""
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)      # of ``image``, held by the caller
    window = (float(values.min()), float(values.max())) if values.size else None
    return mrml.volume_node_from_image(scene, image, name, node=node, window=window)


def show_grad_cam(node, ct_volume_node):
    """A patient's Grad-CAM volume node as the panel (:func:`patient_grad_cam`) and the console
    (:func:`predict_stage_nodes`) show it: the heat map (:func:`lungai.scene.nodes.show_as_heat_map`), in its CT's
    subject hierarchy folder as the other results, tagged as the stage run's (:func:`mark_stage_node`); returns it.
    QA stagefollow65: the console's node had the default grey display, the panel's the heat map."""
    from lungai.scene.nodes import place_beside_ct, show_as_heat_map

    show_as_heat_map(node)
    place_beside_ct(node, ct_volume_node)
    return mark_stage_node(node)


def link_patient_table(table_node, ct_volume_node, patient_id: str):
    """Link a table of results of the one patient ``patient_id`` to its CT and file it in the CT's subject hierarchy
    study, as the other results (:func:`lungai.scene.nodes.relink_source_volume`), only when a CT was given and it
    sits under no DICOM patient of another id (:func:`lungai.scene.results.match_stage_patient`: case and spaces
    aside); else the table is linked to no CT and stays at the top level (a reused table leaves its earlier CT's
    study).  One the user moved into a folder of their own stays there.  Returns the table."""
    from lungai.scene.dicom import _patient_id
    from lungai.scene.nodes import relink_source_volume
    from lungai.scene.results import match_stage_patient

    if table_node is None:
        return None
    one = ct_volume_node is not None and bool(patient_id)
    dicom_patient = _patient_id(ct_volume_node) if one else ""
    if dicom_patient and match_stage_patient(dicom_patient, [patient_id]) is None:
        one = False                 # the CT is another DICOM patient's: this patient's table is not filed there
    return relink_source_volume(table_node, ct_volume_node if one else None)


def link_stage_table(table_node, ct_volume_node, patient_id: str):
    """Link the stage predictions table to its CT and file it in the CT's subject hierarchy study
    (:func:`link_patient_table`) only when the run was for that CT's one patient: a CT was given (its tumour went into
    the CT branch), every row of the table is ``patient_id``'s, and the CT sits under no DICOM patient of another id.
    A table of several patients, of a run without a CT, or of a patient typed for another patient's CT is linked to no
    CT and stays at the top level (a reused table leaves its earlier CT's study); one the user moved into a folder of
    their own stays there.  Returns the table."""
    from lungai.scene.nodes import table_rows

    if table_node is None:
        return None
    ids = {row.get("patient_id", "") for row in table_rows(table_node)}
    return link_patient_table(table_node, ct_volume_node if ids == {patient_id} else None, patient_id)


def _ehr_row(path, patient_id, used=None):
    """The patient's row of the EHR table ``path`` as a dict; a never-smoker's 0 pack-years said for this patient
    only, and only where ``used`` (the model's EHR columns; None: all) holds the pack-years column."""
    from lungai.fusion.data import load_ehr, say_pack_years_note

    ehr = load_ehr(path, say_pack_years=False)     # a never-smoker's 0 pack-years: said for this patient only
    if patient_id not in ehr.index:
        from lungai.io.tables import id_spelling_hint

        # the table's ids spelt like the typed one (case, zeros, separators, a dash) first in the fix (QA
        # stagefollow65: 'r01-003' on NSCLC-Radiogenomics got "choose one of: AMC-001, ... AMC-015 ...", not R01-003)
        alike = [i for i in map(str, ehr.index) if id_spelling_hint([str(patient_id)], [i])]
        raise InputError(f"patient {patient_id!r} is not in the EHR table {path}"
                         + id_spelling_hint([str(patient_id)], ehr.index),
                         f"use the table's id: {', '.join(alike)}" if alike else
                         f"choose one of: {', '.join(map(str, list(ehr.index)[:15]))}{' ...' if len(ehr) > 15 else ''}")
    say_pack_years_note(ehr, patient_id, used)
    return ehr.loc[patient_id].to_dict()


def _rna_row(path, patient_id):
    """The patient's expression profile, or None when the patient is not in the RNA matrix (the RNA branch is then
    masked, as for a patient without RNA in training); an unreadable or non-numeric matrix is still refused, an
    infinite value only in the patient's own row (another patient's row with one is left out, with a warning)."""
    from lungai.fusion.data import load_rna, read_table

    try:                                    # only the patient's own row must be finite (other rows: left out, said)
        rna = load_rna(path, ids=[patient_id], used=[patient_id])
    except InputError:
        raw = read_table(path, index_col=0)
        if str(patient_id) in {str(v).strip() for v in (*raw.index, *raw.columns)}:
            raise
        load_rna(path, used=())             # not in the matrix: the matrix itself must still be usable
        return None
    return rna.loc[patient_id] if patient_id in rna.index else None


def _rna_id_hint(path, patient_id) -> str:
    """For the note of a patient not in the RNA matrix: the matrix's ids (its row and column names, whichever holds
    the patients) spelt like ``patient_id`` but for leading zeros, padding, case, separators or a look-alike dash
    (:func:`lungai.io.tables.id_spelling_hint`, as ``lungai stage predict`` names them), else ""."""
    from lungai.fusion.data import read_table
    from lungai.io.tables import id_spelling_hint, id_text

    raw = read_table(path, index_col=0)
    return id_spelling_hint([str(patient_id)], {id_text(v) for v in (*raw.index, *raw.columns)})


def predict_stage_nodes(scene, model, patient_id: str, ct_volume_node=None, seg_node=None,
                        segment: str | None = None, ehr_path=None, rna_path=None, top_k: int = 10) -> dict:
    """Predict the stage of ``patient_id``; returns {"predicted", "probabilities" (table node),
    "top_genes" (table node or None), "gradcam" (volume node or None), "notes"}.

    ``segment``: the tumour segment of ``seg_node`` (default: its primary tumour segment,
    :func:`lungai.segment_roles.primary_tumour`, named in ``notes``).
    ``model`` is a locked-model folder (its selected model predicts, see ``stage_model.json``) or a
    fitted :class:`~lungai.fusion.pipeline.FusionPipeline`.  Top genes and Grad-CAM explain the fusion
    network, so they are given only when it is the model that predicts.  Missing modalities (no
    file, no CT node) are masked, as in training.
    """
    from lungai.fusion import explain, model_io
    from lungai.fusion.data import INFINITE_FIX
    from lungai.fusion.api import (absent_inputs_text, describe_inputs, ehr_numeric_text, model_inputs,
                                   predict_with_notes, single_patient_cohort, usable_inputs)
    from lungai.fusion.pipeline import FusionPipeline
    from lungai.io.tables import id_text

    patient_id = id_text(patient_id)     # as the EHR / RNA ids are read: 'R01-001 ', a decomposed 'Müller' too
    notes = []
    if isinstance(model, FusionPipeline):
        name, predictor, pipe = "fusion", model, model
    else:
        pipe, baselines, meta = model_io.load(model)
        name, predictor = model_io.chosen(pipe, baselines, meta)
        if name != "fusion":
            notes.append(f"predicted by the locked model's selected model, {name} (it beat the fusion network in "
                         "the inner CV); top genes and Grad-CAM explain the fusion network and are not shown")
    # the never-smoker pack-years note only for a pack-years column the predicting model uses
    ehr_row = _ehr_row(ehr_path, patient_id, model_inputs(predictor)["ehr"]) if ehr_path else None
    rna_row = _rna_row(rna_path, patient_id) if rna_path else None
    if rna_path and rna_row is None:     # a plain baseline imputes the RNA input, the fusion network masks it
        stands_in = (absent_inputs_text(predictor, ["RNA"]) if model_inputs(predictor)["rna"]
                     else "the model does not use RNA-seq")
        notes.append(f"patient {patient_id} is not in the RNA matrix (or every value of the profile is empty): "
                     + stands_in + _rna_id_hint(rna_path, patient_id))
    import pandas as pd   # here: the panel's click imports this module (its Grad-CAM helpers), not pandas

    if rna_row is not None and pipe.genes is not None:
        check = model_io.rna_gene_check(pipe, pd.DataFrame([rna_row]))
        if check["version_matched"]:
            notes.append(model_io.version_matched_text(check))
        if check["missing"]:
            notes.append(f"{len(check['missing'])} of {check['n_model_genes']} model genes missing, imputed as the mean"
                         + model_io.case_text(model_io.case_variants(check["missing"], rna_row.index)))
        if check["sparse"]:
            notes.append(model_io.sparse_rna_text(check))
        if check["off_scale"]:
            notes.append(model_io.off_scale_text(check))
    ct = mask = None
    if ct_volume_node is not None:
        if seg_node is None:
            raise InputError("a CT volume was chosen without a tumour segmentation",
                             "choose the segmentation that holds the tumour segment")
        if segment is None:   # the primary tumour segment (GTV-1 of GTV-1, gtv-2, gtv-3), as the panel
            from lungai.scene.nodes import terminology_roles, tumour_segment_choice, tumour_segment_name

            from lungai.segment_roles import nodal_tumour_problem

            segment = tumour_segment_name(seg_node)
            if segment is None:
                raise InputError(f"the segmentation {seg_node.GetName()!r} has no tumour segment",
                                 "name the tumour segment 'Tumor', 'GTV' or 'GTV-1'")
            nodal = nodal_tumour_problem(mrml.segment_names(seg_node), terminology_roles(seg_node))  # never a node
            if nodal is not None:
                problem, _, fix = nodal.partition("; ")
                raise InputError(f"the segmentation {seg_node.GetName()!r}: {problem}",
                                 fix + " - or give segment= explicitly")
            notes.append(tumour_segment_choice(seg_node))
        ct = mrml.image_from_volume_node(ct_volume_node)
        check_ct(ct, ct_volume_node.GetName())      # as read_ct for a file (NaN voxels would hang the features)
        mask = mrml.segment_to_mask(scene, seg_node, segment, ct_volume_node)
    cohort = single_patient_cohort(patient_id, ehr_row, rna_row, ct, mask)
    used, av = usable_inputs(predictor, cohort)     # only what the model was trained with
    if not av.iloc[0].any():
        raise InputError(f"no stage for {patient_id}: none of the inputs the model was trained with is there",
                         f"the model needs {describe_inputs(model_inputs(predictor))}")
    textual = ehr_numeric_text(predictor, used).get(str(patient_id))
    if textual:         # never a stage read off an imputed value the table does give ('12,8')
        from lungai.fusion.preprocess import NUMERIC_TEXT_FIX, numeric_text_problem

        raise InputError(f"no stage for {patient_id}: {numeric_text_problem(textual)}", NUMERIC_TEXT_FIX)
    if ct is not None and not av["ct"].iloc[0]:
        from lungai.fusion import ct_unused_text

        notes.append(f"the CT is not used: {ct_unused_text(name, pipe.notes, pipe.modalities)}")
    proba, level_notes = predict_with_notes(predictor, used)     # EHR values not seen in training: said
    proba = proba[0]
    if not np.isfinite(proba).all():    # never a class read off NaN probabilities (argmax: the first class)
        from lungai.fusion.api import NOT_FINITE

        raise InputError(f"no stage for {patient_id}: {NOT_FINITE}", INFINITE_FIX)
    notes += level_notes.get(str(patient_id), [])
    if not isinstance(model, FusionPipeline):     # a patient of the model's training cohort: in-sample, said
        notes += list(model_io.training_patient_flags(meta, [str(patient_id)])[1].values())
    predicted = pipe.classes[int(proba.argmax())]
    probs = pd.DataFrame({"class": pipe.classes, "probability": proba.astype(float)})
    # the patient's tables in the CT's study when the CT is this patient's, the Grad-CAM (on the CT's grid) beside
    # the CT, as the panel files them (link_patient_table, lungai.scene.nodes.place_beside_ct)
    # each node tagged as the panel's (mark_stage_node: a later run, the panel's, tells it from the user's nodes;
    # QA ids65: before, the console's nodes carried no tag and read as the user's own)
    out = {"predicted": predicted, "model": name, "notes": notes, "top_genes": None, "gradcam": None,
           "probabilities": link_patient_table(mark_stage_node(mrml.table_node_from_dataframe(
               scene, probs, f"{patient_id} stage probabilities")), ct_volume_node, patient_id)}
    if name == "fusion" and rna_row is not None and "rna" in pipe.modalities:
        top = explain.top_genes_per_patient(explain.gene_shapley(pipe, used, seed=pipe.config.seed), top_k)
        out["top_genes"] = link_patient_table(mark_stage_node(mrml.table_node_from_dataframe(
            scene, top[["rank", "gene", "shapley_value"]], f"{patient_id} top genes ({predicted})")),
            ct_volume_node, patient_id)
    if name == "fusion" and bool(av["ct"].iloc[0]):
        cam, cls = explain.grad_cam(pipe, used, patient_id)
        if explain.empty_cam_note(cam, cls):            # a blank map is said, not shown silently
            notes.append(explain.empty_cam_note(cam, cls))
        out["gradcam"] = show_grad_cam(grad_cam_node(scene, cam, scene.GenerateUniqueName(f"{patient_id} Grad-CAM")),
                                       ct_volume_node)
    return out
