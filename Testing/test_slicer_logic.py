"""The modules' Logic classes, run headless on real MRML (slicer-core) with real ``lungai`` child
processes: what a click on Apply does, minus the Qt widgets (see slicer_module_helpers.py)."""

from __future__ import annotations

import pathlib
import re
import types

import numpy as np
import pytest
import SimpleITK as sitk

from LungAICommon import commands, sampledata
from dicom_helpers import slicerrt_segmentation
from rp_helpers import rp_roles_model  # noqa: F401  (fixture)
from slicer_module_helpers import import_module_logic, restore, sh_parent as _sh_parent, \
    under_dicom_patient as _under_dicom_patient


@pytest.fixture
def load_module(mrml_scene, tmp_path):
    handles = []

    def load(name):
        module, handle = import_module_logic(name, mrml_scene, tmp_path)
        handles.append(handle)
        return module

    yield load
    for handle in reversed(handles):
        restore(handle)


@pytest.fixture
def phantom_nodes(mrml_scene, small_phantom, tmp_path):
    from lungai import mrml

    ct_node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "phantom CT")
    sitk.WriteImage(small_phantom.labels, str(tmp_path / "labels.nii.gz"))
    truth = sampledata.load_ground_truth(mrml_scene, tmp_path / "labels.nii.gz", ct_node)
    return ct_node, truth


def test_parameter_stand_in_enforces_choices(load_module):
    module = load_module("LungAISeg")
    p = module.LungAISegLogic().getParameterNode()
    # seed mode by default: the shipped model over-detects in automatic mode (README)
    assert (p.mode, p.method, p.model) == ("seed", "auto", "default")
    with pytest.raises(ValueError):
        p.method = "bayesian"
    with pytest.raises(ValueError):
        p.mcPasses = -1
    p.mcPasses = 0                          # not given: the passes of the model's calibration (lungai segment's)
    p.mcPasses = 1                          # lungai segment takes 1 pass: so does the panel


def test_mc_passes_default_is_lungai_segments(load_module):
    """QA: the panel's MC-dropout passes were 20 (always passed), lungai segment's and the console API's 10: with a
    1-member model (auto = MC dropout) panel and CLI gave 57.76 vs 59.08 ml.  One default, read from segment's
    parser by the panel, the same constant for the console API and segment_tumour."""
    import inspect

    from lungai.cli.seg import segment_parser
    from lungai.scene.segment import segment_tumour_node
    from lungai.seg.config import MC_PASSES
    from lungai.seg.infer import segment_tumour

    cli = segment_parser().parse_args(["ct.nii.gz", "-o", "out"]).mc_passes
    p = load_module("LungAISeg").LungAISegLogic().getParameterNode()
    # QA D1: not given (None; the panel's 0, "model's calibration"): the passes the model's MC-dropout calibration
    # was fitted with (lungai.seg.confidence.model_mc_passes), MC_PASSES without one - no hard-coded count
    assert cli is None and p.mcPasses == commands.segment_default("mc_passes") == 0 and MC_PASSES >= 1
    assert inspect.signature(segment_tumour_node).parameters["mc_passes"].default is cli
    assert inspect.signature(segment_tumour).parameters["mc_passes"].default is cli
    assert "--mc-passes" not in commands.segment("ct.nii.gz", "out", method="mc-dropout", mc_passes=p.mcPasses)
    ui = (pathlib.Path(__file__).resolve().parents[1] / "LungAISeg" / "Resources" / "UI" / "LungAISeg.ui").read_text()
    assert "specialValueText" in ui[ui.index('name="mcPassesSpinBox"'):][:600]


def test_lungai_seg_inputs_and_commands(load_module, mrml_scene, phantom_nodes, tmp_path):
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    assert logic.segmentationInputProblem(p) == "Select a CT volume"
    p.inputVolume = phantom_nodes[0]
    assert "seed point" in logic.segmentationInputProblem(p)
    p.mode = "automatic"
    assert logic.segmentationInputProblem(p) is None
    p.mode = "seed"
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(10.0, -20.0, 30.0)
    p.method, p.mcPasses = "mc-dropout", 5
    args = logic.segmentationCommand(p, tmp_path)
    assert args[args.index("--seed-point") + 1] == "-10.000,20.000,30.000"  # RAS -> LPS
    assert args[args.index("--mc-passes") + 1] == "5" and "--model" not in args
    exported = sitk.ReadImage(args[1])
    assert np.array_equal(sitk.GetArrayFromImage(exported), sitk.GetArrayFromImage(
        __import__("lungai").mrml.image_from_volume_node(phantom_nodes[0])))
    p.mode = "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    p.roi.SetXYZ(0.0, 0.0, 0.0)
    p.roi.SetRadiusXYZ(10.0, 20.0, 30.0)
    args = logic.segmentationCommand(p, tmp_path)
    assert [float(v) for v in args[args.index("--roi") + 1].split(",")] == [10, 20, -30, -10, -20, 30]
    from lungai.seg.resources import (CHOICE_MODEL_NAME, DYNUNET_MODEL_NAME, LARGE_TUMOUR_MODEL_NAME,
                                      ROUTED_MODEL_NAME, resolve_model_dir)

    for choice, name in (("large tumours", LARGE_TUMOUR_MODEL_NAME), ("both (more confident)", CHOICE_MODEL_NAME),
                         ("DynUNet (seed / ROI)", DYNUNET_MODEL_NAME), ("default, DynUNet if large", ROUTED_MODEL_NAME)):
        p.model = choice                       # a shipped model, by name
        args = logic.segmentationCommand(p, tmp_path)
        assert args[args.index("--model") + 1] == name
        assert (resolve_model_dir(name) / "model.json").is_file()
    p.model = "folder"
    assert "model folder" in logic.segmentationInputProblem(p)
    assert "training images" in logic.trainingInputProblem(p)


def test_segmentation_panel_does_not_grow_the_box_when_asked(load_module, mrml_scene, phantom_nodes,
                                                            untrained_seg_model, tmp_path):
    """QA slicer69: an ROI result whose mask reaches beyond the box ("the mask reaches more than 20 mm beyond the ROI
    box", lungai.seg.infer.BEYOND_ROI_REASON; LUNG1-003 with the DynUNet, a box inside GTV-1: 57.9 ml at Dice 0.17,
    with --no-grow 0.62) told the panel's user to "run again with the box kept as drawn (lungai segment --no-grow ...)"
    - a command-line option the Lung AI Segmentation panel had no control for.  The panel has it ("Do not grow the
    box", seed / ROI mode: --no-grow) and its banner names the panel's control, not the command line's option."""
    import xml.etree.ElementTree as ET

    from lungai.scene import results
    from lungai.seg import infer

    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    assert p.noGrow is False                             # lungai segment's default: the box grows
    p.inputVolume, p.mode = phantom_nodes[0], "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    p.roi.SetXYZ(-40.0, 0.0, 100.0)
    p.roi.SetRadiusXYZ(15.0, 15.0, 15.0)
    assert "--no-grow" not in logic.segmentationCommand(p, tmp_path)
    p.noGrow = True
    assert "--no-grow" in logic.segmentationCommand(p, tmp_path)
    p.mode = "automatic"                                 # no growing box: lungai segment refuses --no-grow there
    assert "--no-grow" not in logic.segmentationCommand(p, tmp_path)
    # the panel's control, named as the banner names it
    ui = ET.parse(pathlib.Path(module.__file__).parent / "Resources" / "UI" / "LungAISeg.ui")
    box = next(w for w in ui.iter("widget") if w.get("name") == "noGrowCheckBox")
    bound = {q.get("name"): q.findtext("string") for q in box.iter("property")}
    assert box.get("class") == "QCheckBox" and bound["SlicerParameterName"] == "noGrow"
    label = next(w for w in ui.iter("widget") if w.get("name") == "noGrowCheckBoxLabel")
    assert label.find("property").findtext("string") == f"{module.NO_GROW_LABEL}:"
    info = {"roi_mode": "roi", "review_reasons": [infer.BEYOND_ROI_REASON]}
    summary = {"confidence": 0.73, "needs_review": True, "review_threshold": 0.6, "tumor_volume_ml": 161.7,
               "n_components": 1, "method": "ensemble", "members": 2, **info,
               "review_actions": infer.review_actions(info), "notes": [infer.beyond_roi_note({"z-": 72.0})]}
    assert "lungai segment --no-grow" in results.describe_segment_result(summary)[1]     # the command line's words
    headline, details, review = logic.resultText(summary)
    assert review and headline == results.describe_segment_result(summary)[0]
    assert "--no-grow" not in details, details
    assert f"run again with the box kept as drawn (tick '{module.NO_GROW_LABEL}' under Inputs: the mask then" in details
    assert f"run again with '{module.NO_GROW_LABEL}' ticked (the mask then stays within your box" in details
    # a run with it ticked keeps the first box: one pass, no growth (lungai segment accepts it in ROI mode)
    p.mode, p.model, p.modelDirectory, p.method, p.mcPasses = "roi", "folder", untrained_seg_model, "mc-dropout", 2
    job = logic.run(logic.startSegmentation, p, timeout=300)
    assert "--no-grow" in job.process.args
    assert [q["pass"] for q in logic.loadSegmentation(p, job)["roi_passes"]] == [1]


@pytest.mark.parametrize("volume_ml", [1.3, 40.0])
def test_segmentation_banner_names_the_advised_model_as_the_panels_model_choice(load_module, volume_ml):
    """QA slicer72: Segment tumour with the panel's defaults (seed mode, default model) on LUNG1-003's GTV-1 (1.3 ml
    found, confidence 0.35) told the panel's user "... give a seed point or ROI and use --model lungai-seg-dynunet (the
    best Dice on large tumours; --model lungai-seg-routed runs it when ...)" - command-line names no panel control
    has.  The banner gives the advice in the panel's words, as the Model tooltip does (large_tumour_advice(panel=True))."""
    from lungai.scene import results
    from lungai.seg.choice import model_hint
    from lungai.seg.infer import LOW_CONFIDENCE, review_actions
    from lungai.seg.resources import DEFAULT_MODEL_NAME, PANEL_MODEL_LABELS, large_tumour_advice, models_root

    logic = load_module("LungAISeg").LungAISegLogic()
    info = {"roi_mode": "seed", "tumour_volume_ml": volume_ml, "review_reasons": [LOW_CONFIDENCE]}
    hint = model_hint(models_root() / DEFAULT_MODEL_NAME, info)        # lungai segment's own note
    assert large_tumour_advice() in hint
    summary = {"confidence": 0.35, "needs_review": True, "review_threshold": 0.61, "tumor_volume_ml": volume_ml,
               "n_components": 1, "method": "ensemble", "members": 3, **info,
               "review_actions": review_actions(info), "notes": [hint]}
    assert "--model lungai-seg-dynunet" in results.describe_segment_result(summary)[1]   # the command line's words
    details = logic.resultText(summary)[1]
    assert large_tumour_advice(panel=True) in details, details
    assert not any(f"--model {name}" in details for name in PANEL_MODEL_LABELS), details


def test_lungai_seg_lungs_end_to_end(load_module, phantom_nodes):
    """Segment lungs: export, `lungai lungs` child process, segments back in the scene."""
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = phantom_nodes[0]
    output = logic.run(logic.startLungs, p, timeout=120)
    message = logic.loadLungs(p, output)
    seg = p.outputSegmentation.GetSegmentation()
    assert [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())] == ["Right lung", "Left lung"]
    volumes = dict(part.rsplit(" ", 1)[0].rsplit(" ", 1) for part in message.splitlines()[0].split(", "))
    assert 300 < float(volumes["Right lung"]) < 5000 and 300 < float(volumes["Left lung"]) < 5000, message


def test_segment_lungs_twice_replaces_its_own_unedited_lungs_and_refuses_edited_ones(load_module, mrml_scene,
                                                                                       phantom_nodes):
    """QA lungsrerun60 (lung2, a real MRML scene): Segment lungs run twice into the same segmentation added "Right lung
    (2)" / "Left lung (2)" - names with no lung role - and the dose features and the derived "Lungs" quietly went on
    using the first run's lungs (dose_lung_segments gave ['Right lung', 'Left lung']).  Now the second run replaces
    the first run's lungs in place, when nobody edited them, with a note; a "Right lung" edited since (or the
    user's own) is never overwritten and never left beside a "(2)": the run is refused before it starts, naming it
    (nodes.lungs_to_replace)."""
    import sys
    from pathlib import Path

    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes
    from lungai.segment_roles import dose_lung_segments

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    ct = phantom_nodes[0]
    p.inputVolume = ct
    logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    seg = p.outputSegmentation
    ids = [seg.GetSegmentation().GetNthSegmentID(i) for i in range(2)]
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", ct))
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(right.astype(np.uint8)), [2, 2, 1])) > 0
    edit_segment(mrml_scene, seg, mrml.image_from_volume_node(ct), "Right lung", grown)    # then undone:
    edit_segment(mrml_scene, seg, mrml.image_from_volume_node(ct), "Right lung", right)    # the outline made
    message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    assert p.outputSegmentation is seg
    assert mrml.segment_names(seg) == ["Right lung", "Left lung"]
    assert [seg.GetSegmentation().GetNthSegmentID(i) for i in range(2)] == ids      # in place
    assert dose_lung_segments(mrml.segment_names(seg)) == ["Right lung", "Left lung"]
    assert (f"note: 'Right lung' and 'Left lung' of {seg.GetName()} (an earlier Segment lungs run's, not edited "
            "since) replaced by this run's") in message.splitlines(), message
    # the expert corrects the right lung: a new run neither overwrites it nor adds an unused "Right lung (2)"
    edit_segment(mrml_scene, seg, mrml.image_from_volume_node(ct), "Right lung", grown)
    with pytest.raises(InputError, match=r"already has 'Right lung' \(edited since Segment lungs made it\)"):
        logic.startLungs(p)
    assert mrml.segment_names(seg) == ["Right lung", "Left lung"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", ct)) > 0,
                                  grown)
    # kept under another name: the new run makes "Right lung" and replaces the unedited "Left lung"
    seg.GetSegmentation().GetSegment(ids[0]).SetName("Right lung edited")
    message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    assert mrml.segment_names(seg) == ["Right lung edited", "Left lung", "Right lung"]
    assert f"note: 'Left lung' of {seg.GetName()}" in message
    # ... and says that the renamed one, a right lung by its terminology until then, no longer is (QA slicerfollow68)
    assert (f"note: 'Right lung edited' (the right lung by its terminology until now) of {seg.GetName()} is no longer "
            "taken as a lung") in message, message
    # the user's own "Left lung" (not made by Segment lungs) is never replaced
    users = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    mrml.mask_to_segment(mrml_scene, mrml.segment_to_mask(mrml_scene, seg, "Left lung", ct), "Left lung",
                         seg_node=users, reference_volume_node=ct)
    p.outputSegmentation = users
    with pytest.raises(InputError,
                       match=r"(?s)'Left lung' \(not made by Segment lungs\).*rename it \(e\.g\. 'Left lung edited'\)"):
        logic.startLungs(p)
    assert nodes.lungs_to_replace(None, ct) == {}


def test_segment_lungs_edit_during_run_keeps_the_edit_and_the_runs_lungs(load_module, mrml_scene, phantom_nodes):
    """QA scenerun61 (a real MRML scene): Segment lungs checks at its start that the output segmentation's lungs are
    its own to replace (nodes.lungs_to_replace); the user who corrected "Right lung" in the Segment Editor while the
    run went on then got an InputError when it was loaded, and the run's lungs were lost (its work folder deleted).
    Now the edit stays as it is and the run's lungs go to a new "<CT> lungs" node, with a note naming both."""
    import sys
    from pathlib import Path

    from lungai import mrml

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    ct = phantom_nodes[0]
    p.inputVolume = ct
    logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    seg = p.outputSegmentation
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", ct)) > 0
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(right.astype(np.uint8)), [2, 2, 1])) > 0
    job = logic.run(logic.startLungs, p, timeout=120)            # checked at its start: nobody had edited them
    edit_segment(mrml_scene, seg, mrml.image_from_volume_node(ct), "Right lung", grown)    # while it ran
    work = Path(job.workDir)
    message = logic.loadLungs(p, job)
    assert not work.exists()                                     # its temporary files deleted, as after any run
    assert mrml.segment_names(seg) == ["Right lung", "Left lung"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", ct)) > 0,
                                  grown)                         # the edit: neither overwritten nor lost
    new = p.outputSegmentation
    assert new is not seg and new.GetName() == f"{ct.GetName()} lungs_1", new.GetName()
    assert mrml.segment_names(new) == ["Right lung", "Left lung"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, new, "Right lung", ct)) > 0,
                                  right)                         # the run's lungs, kept
    assert (f"note: '{seg.GetName()}' got 'Right lung' (edited since Segment lungs made it) while Segment lungs "
            f"ran: left as it is (nothing overwritten), this run's lungs are in the new segmentation "
            f"'{new.GetName()}'") in message.splitlines(), message


@pytest.mark.parametrize("added", ["Lung-Right", "Segment_1"])
def test_segment_lungs_keeps_its_lungs_when_a_lung_is_added_during_the_run(load_module, mrml_scene, phantom_nodes,
                                                                           added):
    """QA slicer69: a lung of the user's added to the output segmentation while Segment lungs ran - an RTSTRUCT's
    "Lung-Right" copied in, or "Segment_1" coded as the right lung in the Segment Editor - made the run's load refuse
    it ("already has 'Lung-Right', a lung of its own ..."): its lungs were lost (its work folder deleted), as an edit
    during the run once did (QA scenerun61).  The segmentation is left as it is and the run's lungs go to a new
    "<CT> lungs" node, with a note naming the segment."""
    from pathlib import Path

    from lungai import mrml
    from lungai.terminology import TERMINOLOGY

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    ct, truth = phantom_nodes
    p.inputVolume = ct
    logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    seg = p.outputSegmentation
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", ct)) > 0
    job = logic.run(logic.startLungs, p, timeout=120)            # checked at its start: no other lung there
    mask = mrml.segment_to_mask(mrml_scene, truth, "Right lung", ct)
    _, segment_id = mrml.mask_to_segment(mrml_scene, mask, added, seg_node=seg, reference_volume_node=ct)   # meanwhile
    if added == "Segment_1":
        seg.GetSegmentation().GetSegment(segment_id).SetTag("TerminologyEntry",
                                                            TERMINOLOGY["lung_right"].slicer_entry())
    work = Path(job.workDir)
    message = logic.loadLungs(p, job)
    assert not work.exists()
    assert mrml.segment_names(seg) == ["Right lung", "Left lung", added]       # left as it is
    new = p.outputSegmentation
    assert new is not seg and mrml.segment_names(new) == ["Right lung", "Left lung"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, new, "Right lung", ct)) > 0,
                                  right)                         # the run's lungs, kept
    said = f"'{added}'" + (" (the right lung by its terminology)" if added == "Segment_1" else "")
    assert (f"note: '{seg.GetName()}' got {said} while Segment lungs ran: left as it is (nothing overwritten), this "
            f"run's lungs are in the new segmentation '{new.GetName()}'") in message.splitlines(), message


def test_lung_radiomics_end_to_end_equals_scene_logic(load_module, mrml_scene, phantom_nodes, tmp_path):
    """The panel (one child process per segment) gives the table of lungai.scene.radiomics (in-process)."""
    from lungai import mrml
    from lungai.scene.radiomics import radiomics_table

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    assert logic.inputProblem(p) == "Tick at least one segment"
    p.selectedSegments = ["Tumor", "Right lung", "Left lung"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    outputs = logic.run(logic.startFeatures, p, timeout=300)
    message = logic.loadFeatures(p, outputs)
    assert "features x 5 segments -> table" in message  # + derived Lungs, Lungs minus tumour
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    node, errors = radiomics_table(mrml_scene, phantom_nodes[0], phantom_nodes[1], segments=p.selectedSegments,
                                   feature_classes=["firstorder"])
    core = mrml.dataframe_from_table_node(node).set_index("feature")
    assert not errors
    assert list(panel.columns) == list(core.columns)
    assert panel.index.tolist() == core.index.tolist()
    segments = ["Tumor", "Right lung", "Left lung", "Lungs", "Lungs minus tumour"]
    assert np.allclose(panel[segments].to_numpy(float), core[segments].to_numpy(float), rtol=1e-6, equal_nan=True)
    assert not outputs.workDir and not list(tmp_path.glob("lungai-radiomics-*"))   # exported images deleted
    path = logic.exportTable(p.outputTable, tmp_path / "export")
    assert path.suffix == ".csv" and path.read_text(encoding="utf-8").startswith("feature,")


def test_lung_radiomics_results_read_off_the_gui_thread(load_module, phantom_nodes, monkeypatch):
    """QA slicerfollow71: after Apply, loadFeatures read the feature CSVs and built the table with pandas on the GUI
    thread (pandas' import: 0.77 of its 0.92-1.06 s on LUNG1-003).  Now the job reads them (and the settings CSVs'
    notes) in a background thread once its commands have ended, while the runner's polls go on and the bar says
    "reading the results"; loadFeatures takes them and only makes the table node."""
    import threading
    import time

    from LungAICommon.panel import finish_job
    from lungai.scene import results

    reads = []

    def recording(function):
        def call(*args, **kwargs):
            reads.append((function.__name__, threading.current_thread() is threading.main_thread()))
            return function(*args, **kwargs)
        return call

    for name in ("read_csv_rows", "run_settings_notes"):
        monkeypatch.setattr(results, name, recording(getattr(results, name)))
    monkeypatch.setattr(commands, "radiomics", lambda *args, **kwargs: ["--version"])   # a child that succeeds at once
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    p.selectedSegments = ["Tumor"]
    job = logic.startFeatures(p)
    job.process.prepare()                  # the export (the job's first polls in the panel)
    columns, csvs, _, _ = job.outputs
    for path in csvs.values():             # what lungai radiomics writes
        path.write_text("case,image_type,feature_class,feature,value\n"
                        "phantom CT,original,firstorder,Mean,-12.5\nphantom CT,original,shape,VoxelVolume,3000\n",
                        encoding="utf-8")
    process = job.process.start()
    statuses = []
    while process.running:                 # the panel's QtJobRunner: a poll per tick of its 100 ms timer
        statuses += [e.text for e in process.poll() if e.kind == "progress"]
        time.sleep(0.02)
    assert process.succeeded and "reading the results" in statuses, statuses
    message = finish_job(job, lambda j: logic.loadFeatures(p, j), pytest.fail, lambda text: None)
    assert message.startswith("2 features x 1 segment -> table"), message
    assert [name for name, main in reads if main] == [], reads     # nothing of the results read on the GUI thread
    assert sorted(reads) == [("read_csv_rows", False), ("run_settings_notes", False)], reads


def test_the_ct_work_file_is_written_off_the_gui_thread(load_module, phantom_nodes, monkeypatch, tmp_path):
    """QA slicerfollow71: the step "exporting the CT" of Lung Radiomics' and Predict stage's jobs held the GUI thread
    0.6-1.1 s on LUNG1-003 (one poll: the voxels copied, the image made and written).  Its voxels and geometry are
    read on the GUI thread (MRML), the image made and written in a background thread while the polls go on."""
    import threading

    import lungai.io

    writes = []
    write_image = lungai.io.write_image

    def recording_write_image(image, path, *args, **kwargs):
        writes.append((pathlib.Path(path).name, threading.current_thread() is threading.main_thread()))
        return write_image(image, path, *args, **kwargs)

    monkeypatch.setattr(lungai.io, "write_image", recording_write_image)
    ct, truth = phantom_nodes
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = ct, truth, ["Tumor"]
    job = logic.startFeatures(p)
    job.process.prepare()
    assert ("ct.nrrd", False) in writes and ("ct.nrrd", True) not in writes, writes
    written = sitk.ReadImage(str(job.workDir / "ct.nrrd"))
    assert written.GetSize() == ct.GetImageData().GetDimensions() and written.GetPixelIDValue() == sitk.sitkInt16
    job.finish()
    writes.clear()
    stage = load_module("MultimodalPredict").MultimodalPredictLogic()
    q = stage.getParameterNode()
    q.stageModelDirectory, q.stageVolume, q.stageSegmentation, q.stagePatient = _stage_model(tmp_path / "model"), ct, \
        truth, "P1"
    job = stage.startStage(q)
    job.process.prepare()
    assert ("ct.nrrd", False) in writes and ("ct.nrrd", True) not in writes, writes
    job.finish()


def test_lung_radiomics_keeps_the_users_own_lungs_segment(load_module, mrml_scene, phantom_nodes, small_phantom):
    """QA (slicer55): a ticked "Lungs" segment of the user's (a planning system's, here drawn with the tumour, as on
    LUNG1-003) was replaced by the derived Right | Left lung: its column held another region's features, silently."""
    from lungai import mrml
    from lungai.io import copy_geometry

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Right lung", p.inputVolume)) > 0
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)) > 0
    mrml.mask_to_segment(mrml_scene, copy_geometry((right | tumour).astype(np.uint8), small_phantom.ct), "Lungs",
                         seg_node=p.segmentation)
    p.selectedSegments = ["Tumor", "Right lung", "Left lung", "Lungs"]
    for c in ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):
        setattr(p, f"class_{c}", False)
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    table = mrml.dataframe_from_table_node(p.outputTable)
    assert list(table.columns[4:]) == ["Tumor", "Right lung", "Left lung", "Lungs", "Lungs minus tumour"]
    vv = table.set_index("feature").loc["original_shape_VoxelVolume"]
    spacing = np.prod(small_phantom.ct.GetSpacing())
    assert vv["Lungs"] == pytest.approx((right | tumour).sum() * spacing, rel=0.02)     # the user's region
    assert vv["Lungs minus tumour"] == pytest.approx(vv["Right lung"] + vv["Left lung"] - vv["Tumor"], rel=0.02)


def test_lung_radiomics_apply_shows_progress_before_the_export_and_cancel_stops_it(load_module, phantom_nodes):
    """QA slicer70: Apply exported the CT and every ticked segment (and the derived lungs) on the GUI thread before
    the progress bar and Cancel showed - 1.3-2.8 s with LUNG1-002's / LUNG1-003's contours on a loaded machine, more
    with a dose.  The click now only checks the inputs; the job's first polls (one a tick of the bar) export them one
    step at a time, each said on the bar, and Cancel between two steps stops it: nothing more is exported, no child
    runs, the work folder goes.  Run to its end the panel's way, the job gives the table."""
    import time

    from LungAICommon.panel import finish_job
    from lungai.scene import nodes

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    p.selectedSegments = ["Tumor", "Right lung", "Left lung"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)

    def failed(text, details):
        pytest.fail(text)

    job = logic.startFeatures(p)                                  # the click on Apply
    work = job.workDir
    assert work.is_dir() and not any(work.iterdir())             # nothing exported by the click
    job.process.start()                                           # the runner: bar and Cancel shown
    assert job.process.running and not any(work.iterdir())
    ct = work / f"ct{nodes.EXPORT_SUFFIX}"
    texts = []
    while not texts or not texts[-1].startswith("preparing the inputs: reading segment"):   # one step a poll (a tick
        events = job.process.poll()                                                        # of the bar), each said
        assert [e.kind for e in events] == ["progress"], [e.text for e in events]
        texts.append(events[0].text)
    # the outlines measured (recorded on the table) one segment a poll (QA slicerfollow71: LUNG1-003's four in one
    # poll, 0.54-0.72 s), then the CT
    assert texts[:4] == [f"preparing the inputs: the outline of segment {name!r}"
                         for name in ("Tumor", "Right lung", "Left lung")] + [
        "preparing the inputs: exporting the CT 'phantom CT'"] and ct.is_file()
    # the bar names the step that runs next; the CT was exported by the polls that named it until the first segment
    # (written in a background thread: "writing the CT" said a poll until it is written)
    assert [t for t in texts if t != "preparing the inputs: writing the CT 'phantom CT'"][-2:] == [
        "preparing the inputs: exporting the CT 'phantom CT'", "preparing the inputs: reading segment 'Tumor'"]
    assert not list(work.glob("segment_*"))                       # the segments: later steps
    job.process.cancel()                                          # Cancel between two steps
    assert job.process.cancelled and not job.process.running and job.process.poll() == []
    log = []
    assert finish_job(job, lambda j: pytest.fail("loaded a cancelled job"), failed, log.append) is None
    assert log == ["Cancelled."] and not work.exists() and p.outputTable is None

    job = logic.startFeatures(p)                                  # again, to its end, polled as the panel does
    job.process.start()
    events = []
    while job.process.running:
        events += job.process.poll()
        time.sleep(0.02)
    commands = [e.text for e in events if e.text.startswith("$ lungai radiomics ")]
    assert len(commands) == 5                                     # Tumor, both lungs, Lungs, Lungs minus tumour
    message = finish_job(job, lambda j: logic.loadFeatures(p, j), failed, log.append)
    assert "features x 5 segments -> table" in message and p.outputTable is not None

    job = logic.startFeatures(p)                                  # the segmentation deleted between two steps
    work = job.workDir
    job.process.start()
    job.process.poll(), job.process.poll()
    segmentation = p.segmentation
    segmentation.GetScene().RemoveNode(segmentation)
    while job.process.running:
        job.process.poll()
    shown = []
    assert finish_job(job, lambda j: pytest.fail("loaded"), lambda text, details: shown.append(text), log.append) is None
    assert shown == [f"Lung AI failed: The input 'segmentation' ({segmentation.GetName()}) was removed from the scene "
                     "while the job ran; run it again"] and not work.exists()


def test_lung_radiomics_empty_segment_is_a_nan_column(load_module, mrml_scene, phantom_nodes, tmp_path):
    """An empty (or one-voxel) ticked segment does not fail the job: the others are computed, its column is NaN
    and the message says which and why, as lungai.scene.radiomics.radiomics_table (console) does."""
    from lungai import mrml
    from lungai.scene.radiomics import radiomics_table

    vol, seg = phantom_nodes
    seg.GetSegmentation().AddEmptySegment("heart", "Heart")
    dot = np.zeros(sitk.GetArrayFromImage(mrml.image_from_volume_node(vol)).shape, np.uint8)
    dot[10, 20, 20] = 1
    image = sitk.GetImageFromArray(dot)
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "Dot", seg_node=seg, reference_volume_node=vol)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = vol, seg, ["Tumor", "Heart", "Dot"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 1 segment -> table" in message and "Not computed (NaN column): Heart; Dot" in message
    assert "'Heart' is empty (0 voxels) on the grid of the CT" in message and "'Dot' has only 1 voxel" in message
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    node, errors = radiomics_table(mrml_scene, vol, seg, segments=p.selectedSegments, feature_classes=["firstorder"])
    core = mrml.dataframe_from_table_node(node).set_index("feature")
    assert set(errors) == {"Heart", "Dot"} and list(panel.columns) == list(core.columns)
    assert panel[["Heart", "Dot"]].isna().all().all()
    assert np.allclose(panel["Tumor"].to_numpy(float), core["Tumor"].to_numpy(float), rtol=1e-6)
    p.selectedSegments = ["Heart"]
    with pytest.raises(ValueError, match="No features can be computed"):   # found while the inputs are exported
        logic.run(logic.startFeatures, p)        # the console's run: raised as it was, nothing run
    assert not list(tmp_path.glob("lungai-radiomics-*"))
    from LungAICommon.panel import finish_job    # the panel's job (QA slicer70: exported after the click): it fails
    job = logic.startFeatures(p)
    job.process.start()
    while job.process.running:
        job.process.poll()
    shown = []
    finish_job(job, lambda j: pytest.fail("loaded"), lambda text, details: shown.append(text), shown.append)
    assert len(shown) == 1 and shown[0].startswith("Lung AI failed: No features can be computed:\nsegment 'Heart' "
                                                   "is empty (0 voxels)") and "How to fix: " in shown[0], shown
    assert not list(tmp_path.glob("lungai-radiomics-*"))


def test_lung_radiomics_empty_tumour_fails_lungs_minus_tumour_too(load_module, mrml_scene, phantom_nodes):
    """QA panelempty65: with every tumour segment empty (an empty "GTV") and both lungs ticked, the derived "Lungs
    minus tumour" was computed - as the lungs themselves, without a word - while the tumour failed.  As
    ``lungai radiomics`` (lungai.radiomics.segments.EMPTY_TUMOUR_LUNGS) it is not computed and the message says why,
    in the panel and in the console's radiomics_table alike."""
    from lungai import mrml
    from lungai.scene.radiomics import radiomics_table

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    segmentation.AddEmptySegment("gtv", "GTV")
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["GTV", "Right lung", "Left lung"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    why = ("the tumour segment 'GTV' is empty (0 voxels) on the grid of the CT 'phantom CT', so segment 'Lungs minus "
           "tumour' would be the lungs themselves (segment 'Lungs'), no tumour left out: not computed")
    assert "Not computed (NaN column): GTV; Lungs minus tumour" in message and why in message, message
    assert "'Lungs minus tumour' = " not in message, message      # no note on what a column not computed subtracts
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    assert panel["Lungs minus tumour"].isna().all() and panel["Lungs"].notna().all()
    node, errors = radiomics_table(mrml_scene, vol, seg, segments=p.selectedSegments, feature_classes=["firstorder"])
    assert set(errors) == {"GTV", "Lungs minus tumour"} and why in errors["Lungs minus tumour"], errors
    core = mrml.dataframe_from_table_node(node).set_index("feature")
    assert list(core.columns) == list(panel.columns) and core["Lungs minus tumour"].isna().all()
    # a tumour segment with voxels among empty ones: the column is computed, the lungs minus that tumour
    segmentation.AddEmptySegment("gtv2", "gtv-2")
    mrml.mask_to_segment(mrml_scene, _dot(vol), "gtv-3", seg_node=seg, reference_volume_node=vol)
    node, errors = radiomics_table(mrml_scene, vol, seg, segments=p.selectedSegments, feature_classes=["firstorder"])
    assert set(errors) == {"GTV"}, errors
    assert mrml.dataframe_from_table_node(node).set_index("feature")["Lungs minus tumour"].notna().all()


def test_lung_radiomics_tumour_outside_the_lungs_says_lungs_minus_tumour_is_the_lungs(load_module, mrml_scene,
                                                                                       phantom_nodes):
    """QA outsidelungs65: every tumour segment outside the lungs (a nodal GTV, lung contours drawn around the GTV)
    gave "Lungs minus tumour" = the lungs without a word.  It is computed, and the panel's message and the console's
    radiomics_table (an InputNote) say so, in the words of ``lungai radiomics``' note."""
    import warnings

    from lungai import mrml
    from lungai.errors import InputNote
    from lungai.scene.radiomics import radiomics_table

    vol, seg = phantom_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    right = mrml.segment_to_mask(mrml_scene, seg, "Right lung", vol)
    left = mrml.segment_to_mask(mrml_scene, seg, "Left lung", vol)
    assert sitk.GetArrayFromImage(tumour).any() and not sitk.GetArrayFromImage(
        sitk.And(tumour > 0, sitk.Or(right > 0, left > 0))).any()       # the phantom's lung labels leave the tumour out
    segments = ["Tumor", "Right lung", "Left lung"]
    logic, p = _firstorder_radiomics(load_module, (vol, seg), segments)
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    note = ("the tumour segment 'Tumor' does not overlap the lungs (no voxel of it in segments 'Right lung' + "
            "'Left lung'), so segment 'Lungs minus tumour' equals the lungs")
    assert "\nnote: " + note in message, message
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    assert np.allclose(panel["Lungs minus tumour"].to_numpy(float), panel["Lungs"].to_numpy(float))   # still computed

    def console_notes():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            radiomics_table(mrml_scene, vol, seg, segments=segments, feature_classes=["firstorder"])
        return [str(w.message) for w in caught if issubclass(w.category, InputNote)]

    assert any(note in said for said in console_notes()), console_notes()
    # a second tumour segment drawn in a lung: something is left out of the lungs, no such note
    arr = sitk.GetArrayFromImage(right)
    inner = np.zeros_like(arr)
    z = int(np.nonzero(arr.any(axis=(1, 2)))[0].mean())
    inner[z] = arr[z]
    image = sitk.GetImageFromArray(inner)
    image.CopyInformation(right)
    mrml.mask_to_segment(mrml_scene, image, "gtv-2", seg_node=seg, reference_volume_node=vol)
    assert not any("does not overlap the lungs" in said for said in console_notes())


def test_lung_radiomics_one_lungs_segment_gives_lungs_minus_tumour_as_the_cli(load_module, mrml_scene, phantom_nodes,
                                                                                tmp_path):
    """QA panellungs65: with one segment "Lungs" holding both lungs (as many planning exports have) ticked with the
    tumour, the panel (and the console's radiomics_table) made no "Lungs minus tumour" column: derived_lung_masks
    needed a right and a left lung segment, while ``lungai radiomics`` computes lungs_minus_tumour from a one-label
    lung map.  Both now derive it from that segment, with the CLI's values for the same masks."""
    import pandas as pd
    from lungai import mrml
    from lungai.cli import main
    from lungai.scene.radiomics import radiomics_table

    vol, seg = phantom_nodes
    right, left, tumour = (mrml.segment_to_mask(mrml_scene, seg, n, vol) for n in ("Right lung", "Left lung", "Tumor"))
    # a planning export's "Lungs", drawn with the tumour in it (LUNG1-003's): both lungs and the tumour
    lungs = sitk.Cast(sitk.Or(sitk.Or(right > 0, left > 0), tumour > 0), sitk.sitkUInt8)
    segmentation = seg.GetSegmentation()
    for name in ("Right lung", "Left lung"):
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    mrml.mask_to_segment(mrml_scene, lungs, "Lungs", seg_node=seg, reference_volume_node=vol)
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumor", "Lungs"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "'Lungs minus tumour' = Lungs minus Tumor (every tumour segment of" in message, message
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    assert list(panel.columns[-3:]) == ["Tumor", "Lungs", "Lungs minus tumour"], list(panel.columns)
    node, errors = radiomics_table(mrml_scene, vol, seg, segments=p.selectedSegments, feature_classes=["firstorder"])
    assert not errors, errors
    core = mrml.dataframe_from_table_node(node).set_index("feature")["Lungs minus tumour"].astype(float)
    # the CLI on the same masks: the one-label lung map "Lungs" is both lungs
    for name, image in (("ct.nrrd", mrml.image_from_volume_node(vol)), ("t.nrrd", tumour), ("l.nrrd", lungs)):
        sitk.WriteImage(image, str(tmp_path / name))
    assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--tumour", str(tmp_path / "t.nrrd"),
                 "--lungs", str(tmp_path / "l.nrrd"), "--segments", "lungs_minus_tumour", "--feature-classes",
                 "firstorder", "-o", str(tmp_path / "cli.csv")]) in (0, None)
    rows = pd.read_csv(tmp_path / "cli.csv")
    cli = pd.Series(rows["value"].to_numpy(float), index=rows["image_type"] + "_" + rows["feature_class"] + "_"
                    + rows["feature"])
    assert len(cli) > 10 and sorted(cli.index) == sorted(core.index)
    np.testing.assert_allclose(panel["Lungs minus tumour"].astype(float)[cli.index].to_numpy(), cli.to_numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(core[cli.index].to_numpy(), cli.to_numpy(), rtol=1e-6)
    # not the lungs themselves: the tumour left the lungs
    assert not np.allclose(panel["Lungs"].astype(float)[cli.index].to_numpy(), cli.to_numpy(), rtol=1e-6)


def _dot(vol):
    """A 3 x 3 x 3 voxel cube in the middle of ``vol``'s grid (a uint8 mask of it)."""
    from lungai import mrml

    ref = mrml.image_from_volume_node(vol)
    arr = np.zeros(sitk.GetArrayViewFromImage(ref).shape, np.uint8)
    z, y, x = (v // 2 for v in arr.shape)
    arr[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] = 1
    image = sitk.GetImageFromArray(arr)
    image.CopyInformation(ref)
    return image


def test_lung_radiomics_one_segment_failing_in_pyradiomics_does_not_stop_the_others(load_module, mrml_scene,
                                                                                   phantom_nodes, tmp_path):
    """QA: the panel runs one command per segment in a chain that stopped at the first failure: a segment that
    passes the voxel check but fails in pyradiomics (2 voxels in a line: 'too few dimensions') lost every other
    segment's features and showed only an error.  Now that segment is a NaN column with its reason, the others are
    computed."""
    from lungai import mrml

    vol, seg = phantom_nodes
    line = np.zeros(sitk.GetArrayFromImage(mrml.image_from_volume_node(vol)).shape, np.uint8)
    line[10, 20, 20:22] = 1
    image = sitk.GetImageFromArray(line)
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "Line", seg_node=seg, reference_volume_node=vol)
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Line", "Tumor"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 1 segment -> table" in message and "Not computed (NaN column): Line" in message
    assert "Line: no features could be computed" in message and "too few dimensions" in message
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    assert panel["Line"].isna().all() and panel["Tumor"].notna().all()


def test_lung_radiomics_settings_problems(load_module, phantom_nodes, tmp_path):
    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    p.selectedSegments = ["Tumor"]
    assert logic.inputProblem(p) is None
    p.typeOriginal = False
    assert "image type" in logic.inputProblem(p)
    p.typeLoG, p.logSigma = True, "x"
    assert "LoG sigmas" in logic.inputProblem(p)
    p.logSigma = "1, 2"
    assert logic.featureOptions(p) == ("default", list(("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm",
                                                         "ngtdm")), ["LoG"], [1.0, 2.0])
    p.paramsSource = "file"
    assert "parameter file" in logic.inputProblem(p)
    assert "manifest" in logic.batchProblem(p)


def _cli_features(small_phantom, tmp_path, params):
    """{image_type_feature_class_feature: value} of ``lungai radiomics --params P`` (in this process) on the phantom's
    tumour (label 1), keyed as the panel's table rows (lungai.scene.results.features_by_segment)."""
    import pandas as pd
    from lungai.cli import main

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "cli_ct.nii.gz"))
    sitk.WriteImage(small_phantom.labels, str(tmp_path / "cli_labels.nii.gz"))
    assert main(["radiomics", "--image", str(tmp_path / "cli_ct.nii.gz"), "--mask", str(tmp_path / "cli_labels.nii.gz"),
                 "--label", "Tumor=1", "--params", str(params), "-o", str(tmp_path / "cli.csv")]) in (0, None)
    rows = pd.read_csv(tmp_path / "cli.csv")
    return dict(zip(rows["image_type"] + "_" + rows["feature_class"] + "_" + rows["feature"], rows["value"]))


def test_lung_radiomics_ibsi_preset_gives_every_ibsi_feature_as_the_cli(load_module, phantom_nodes, small_phantom,
                                                                          tmp_path):
    """QA: with an ibsi preset the panel passed --feature-classes from its checkboxes (gldzm, intensity histogram,
    ivh, local peaks unticked by default): 163 features where `lungai radiomics --params ibsi-c` gives 211 (every
    IBSI-1 feature, as the help and README say).  Now an ibsi preset brings its own classes and image types
    (LungAICommon.commands.radiomics_choice): the panel's table has the CLI's features, with its values."""
    from lungai import mrml

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = *phantom_nodes, ["Tumor"]
    p.preset = "ibsi-c"                                     # the checkboxes as the panel shows them
    assert logic.featureOptions(p) == ("ibsi-c", [], [], [])
    p.class_shape = p.typeOriginal = False                  # hidden with an ibsi preset: they do not count
    assert logic.inputProblem(p) is None and logic.featureOptions(p) == ("ibsi-c", [], [], [])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")["Tumor"].astype(float)
    cli = _cli_features(small_phantom, tmp_path, "ibsi-c")
    assert f"{len(cli)} features x 1 segment" in message
    assert sorted(panel.index) == sorted(cli)
    assert {"dzm", "ih", "ivh", "loc", "morph"} <= set(mrml.dataframe_from_table_node(p.outputTable)["feature_class"])
    assert np.allclose(panel[sorted(cli)].to_numpy(), [cli[k] for k in sorted(cli)], rtol=1e-6, equal_nan=True)


def test_lung_radiomics_shows_why_an_ibsi_presets_values_are_nan(load_module, mrml_scene, phantom_nodes):
    """QA: the panel showed a segment's edge warnings from its run's _settings.csv but not the notes column (why an
    IBSI configuration's values are NaN), which `lungai radiomics` prints: a flat segment's NaN ellipsoid densities
    were unexplained.  The message has them, named by the Slicer segment (lungai.scene.results.run_settings_notes)."""
    from lungai import mrml

    vol, seg = phantom_nodes
    hu = sitk.GetArrayFromImage(mrml.image_from_volume_node(vol))
    z, y, x = (int(v[0]) for v in np.nonzero((hu[:, :-1, :-1] > -100) & (hu[:, :-1, :-1] < 100)))   # soft tissue
    flat = np.zeros(hu.shape, np.uint8)
    flat[z, y, x] = flat[z, y, x + 1] = flat[z, y + 1, x] = 1            # an L in one slice
    assert ((hu[flat > 0] > -500) & (hu[flat > 0] < 400)).all()          # IBSI's re-segmentation range
    image = sitk.GetImageFromArray(flat)
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "Flat", seg_node=seg, reference_volume_node=vol)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments, p.preset = vol, seg, ["Flat"], "ibsi-a"
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert ("\nnote: Flat: morph_vol_dens_aee and morph_area_dens_aee are NaN: the ROI lies in one plane (flat, or a "
            "line), so its approximate enclosing ellipsoid has a zero-length axis") in message
    # as lungai radiomics (QA radiomics72): which of the preset's features IBSI-1 gives no reference value for
    assert ("\nnote: ivh_auc has no IBSI-1 reference value: computed as IBSI-1 defines it, but not verified by lungai "
            "ibsi-check, unlike the other 346 features of each segment; leave it out") in message


def test_lung_radiomics_says_a_segment_of_separate_parts_in_the_segments_words(load_module, mrml_scene, phantom_nodes):
    """QA segmsg65: a segment of two parts ("gtv-2", LUNG1-003's gtv-2 + gtv-3) was told "for one lesion give each its
    own segment or label in the mask (label 1 holds them all)" - label 1 of the temporary label map the panel exports
    it as.  The panel's note speaks of the user's segment."""
    from lungai import mrml

    vol, seg = phantom_nodes
    hu = sitk.GetArrayFromImage(mrml.image_from_volume_node(vol))
    two = np.zeros(hu.shape, np.uint8)
    z, y, x = (v // 2 for v in hu.shape)
    two[z - 1:z + 2, y - 1:y + 2, 2:5] = two[z - 1:z + 2, y - 1:y + 2, -5:-2] = 1       # two parts, far apart
    image = sitk.GetImageFromArray(two)
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "gtv-2", seg_node=seg, reference_volume_node=vol)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = vol, seg, ["gtv-2"]
    for c in ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):      # shape alone: the note is the same
        setattr(p, f"class_{c}", False)
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "note: gtv-2: the segment is 2 separate parts" in message, message
    assert "for one lesion draw each as its own segment of the segmentation (segment 'gtv-2' holds them all)" in message
    assert "label 1 holds them all" not in message, message


def test_lung_radiomics_parameter_file_keeps_its_image_types_and_classes(load_module, phantom_nodes, small_phantom,
                                                                           tmp_path):
    """QA: with a pyradiomics parameter file the panel always passed --image-types Original and --feature-classes from
    its checkboxes: the file's LoG image (and its featureClass) were silently dropped - 18 features where the CLI
    gives 36 (18 original + 18 LoG sigma 2 mm).  Now the file's own apply, as `lungai radiomics --params FILE`."""
    from lungai import mrml

    params = tmp_path / "params.yaml"
    params.write_text("imageType: {Original: {}, LoG: {sigma: [2.0]}}\nfeatureClass: {firstorder: }\n"
                      "setting: {binWidth: 25}\n", encoding="utf-8")
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = *phantom_nodes, ["Tumor"]
    p.paramsSource, p.paramsFile = "file", params
    assert logic.featureOptions(p) == (str(params), [], [], []) and logic.inputProblem(p) is None
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    table = mrml.dataframe_from_table_node(p.outputTable)
    cli = _cli_features(small_phantom, tmp_path, params)
    assert len(cli) == 36 and "36 features x 1 segment" in message
    assert sorted(table["feature"]) == sorted(cli)
    assert (table["image_type"] == "log-sigma-2-0-mm-3D").sum() == 18 and set(table["feature_class"]) == {"firstorder"}


def test_lung_radiomics_dose_lungs_by_exact_role(load_module, mrml_scene, phantom_nodes, small_phantom, tmp_path):
    """The dose lung mask is Right lung | Left lung, chosen by role: a "Lung tumour" segment does not
    count toward the mean lung dose (it used to: any name containing "lung")."""
    from lungai import mrml
    from lungai.io import copy_geometry

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    outside = np.zeros(arr.shape, np.uint8)
    outside[5:10, 5:15, 5:15] = 1                                  # a region outside both lungs
    mrml.mask_to_segment(mrml_scene, copy_geometry(outside, small_phantom.ct), "Lung tumour", seg_node=p.segmentation)
    node = np.zeros(arr.shape, np.uint8)
    node[30:33, 5:10, 5:10] = 1                                    # a second GTV ("gtv-2", e.g. a node)
    mrml.mask_to_segment(mrml_scene, copy_geometry(node, small_phantom.ct), "gtv-2", seg_node=p.segmentation)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32), "dose")
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert "--gtv" in cmd and str(tmp_path / "gtv.nrrd") in cmd
    assert "--case=phantom CT" in cmd                             # the CT node's name, as in the radiomics table
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lungs.nrrd"))) > 0
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Right lung", p.inputVolume)) > 0
    left = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Left lung", p.inputVolume)) > 0
    np.testing.assert_array_equal(lungs, right | left)
    assert not lungs[outside > 0].any()
    gtv = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "gtv.nrrd"))) > 0
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)) > 0
    np.testing.assert_array_equal(gtv, tumour | (node > 0))        # every GTV, never "Lung tumour"
    # the dose table's masks column names the segments used, not the panel's temporary files
    import pandas as pd

    from lungai.cli import main

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    assert main(cmd) == 0
    masks = pd.read_csv(tmp_path / "dose.csv")["masks"].item()
    seg = p.segmentation.GetName()
    assert masks == (f"lungs: Slicer segments Right lung + Left lung (segmentation {seg!r}); "
                     f"minus GTV: Slicer segments Tumor + gtv-2 (segmentation {seg!r})"), masks
    assert "lungs.nrrd" not in masks and "gtv.nrrd" not in masks


def test_lung_radiomics_two_segments_of_one_name_are_refused(load_module, mrml_scene, phantom_nodes, small_phantom,
                                                            tmp_path):
    """Two segments named "GTV" (an RTSTRUCT's two ROIs of one name): the features were keyed by name (one column
    dropped) and the dose GTV was the first one twice (the second left in the lungs: MLD / V20 too high).  The panel
    now says so before Apply, and the commands refuse them."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.io import copy_geometry

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    arr = np.zeros(sitk.GetArrayViewFromImage(small_phantom.ct).shape, np.uint8)
    arr[30:33, 5:10, 5:10] = 1
    _, second = mrml.mask_to_segment(mrml_scene, copy_geometry(arr, small_phantom.ct), "node", seg_node=p.segmentation)
    p.selectedSegments = ["Right lung"]
    assert logic.inputProblem(p) is None
    p.segmentation.GetSegmentation().GetSegment(second).SetName("Tumor")
    assert logic.inputProblem(p) is None                      # not ticked, no dose: not used
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32),
                                               "dose")
    assert "have the name 'Tumor'" in logic.inputProblem(p)   # the dose features subtract every tumour
    with pytest.raises(InputError, match="have the name 'Tumor'"):
        logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    p.doseVolume = None
    p.selectedSegments = ["Tumor", "Right lung"]
    assert "rename one of them" in logic.inputProblem(p)
    with pytest.raises((InputError, ValueError), match="have the name 'Tumor'"):
        logic.featureCommands(p, tmp_path)


def test_lung_radiomics_dose_without_a_tumour_subtracts_the_igtv_as_the_cli(load_module, mrml_scene, phantom_nodes,
                                                                             small_phantom, tmp_path):
    """Review of 8b25950: with no tumour segment but an iGTV (an RTSTRUCT loaded by SlicerRT), the panel gave the MLD
    of the whole lungs ('no GTV (the lungs include the tumour)', 9.77 Gy) while lungai dose-features --rtstruct gave
    the lungs minus the iGTV (9.03 Gy).  Now one rule (lungai.segment_roles.dose_envelope_segments): the iGTV leaves
    the lungs (--envelope), the masks column says so as the CLI's does, and the MLD is the CLI's."""
    import pandas as pd

    from lungai import mrml
    from lungai.cli import main
    from lungai.dose import treatment_dose
    from lungai.io import copy_geometry

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    envelope = sitk.GetArrayFromImage(tumour)
    envelope[envelope.any(axis=(1, 2)).nonzero()[0][-1] + 3, 40:44, 40:44] = 1      # + a node, slices apart
    segmentation = p.segmentation.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))      # no tumour segment
    mrml.mask_to_segment(mrml_scene, copy_geometry(envelope, small_phantom.ct), "iGTV", seg_node=p.segmentation)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60), "dose")
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert cmd[cmd.index("--envelope") + 1] == str(tmp_path / "envelope.nrrd") and "--gtv" not in cmd
    assert main(cmd) == 0
    row = pd.read_csv(tmp_path / "dose.csv").iloc[0]
    seg = p.segmentation.GetName()
    assert row.masks == (f"lungs: Slicer segments Right lung + Left lung (segmentation {seg!r}); no GTV, minus the "
                         f"tumour's motion envelope: Slicer segment iGTV (segmentation {seg!r})"), row.masks
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lungs.nrrd"))) > 0
    (tmp_path / "cli").mkdir()                 # the CLI's rule on the same masks: the lungs minus the iGTV
    kept = copy_geometry((lungs & ~(envelope > 0)).astype(np.uint8), small_phantom.ct)
    sitk.WriteImage(kept, str(tmp_path / "cli" / "kept.nii.gz"))
    assert main(["dose-features", "--dose", str(tmp_path / "dose.nrrd"), "--ct", str(tmp_path / "ct.nii.gz"),
                 "--lungs", str(tmp_path / "cli" / "kept.nii.gz"), "-o", str(tmp_path / "cli" / "dose.csv")]) == 0
    assert row.dose_mld_gy == pytest.approx(pd.read_csv(tmp_path / "cli" / "dose.csv")["dose_mld_gy"].item())
    assert np.isnan(row.dose_gtv_mean_gy)
    from lungai.segment_roles import dose_envelope_segments

    assert dose_envelope_segments(["Right lung", "iGTV", "ITV_5mm"]) == ["iGTV"]
    assert dose_envelope_segments(["Right lung", "iGTV", "GTV-1"]) == []              # a tumour: it is subtracted


def test_lung_radiomics_dose_takes_a_lungs_gtv_segment_as_the_cli(load_module, mrml_scene, phantom_nodes,
                                                                   small_phantom, tmp_path):
    """QA: an RTSTRUCT whose only lung structure is 'Lungs-GTV' (TG-263 style; also 'Lung_Total-GTV', 'Lungs minus
    GTV'), loaded by SlicerRT, was refused by the panel ("Dose features need lung segments named 'Right lung' ...")
    while lungai dose-features --rtstruct and lungai cohort take it (lungai.dicom.roles.dose_lungs_role).  One rule
    now (lungai.segment_roles.dose_lung_segments calls it): the Lungs-GTV segment is the lungs, the GTV is subtracted
    (again: nothing changes, they do not overlap), the masks column says it as the CLI's and the MLD is the CLI's."""
    import pandas as pd

    from lungai import mrml
    from lungai.cli import main
    from lungai.dose import treatment_dose
    from lungai.io import copy_geometry

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    mask = lambda name: sitk.GetArrayFromImage(  # noqa: E731
        mrml.segment_to_mask(mrml_scene, p.segmentation, name, p.inputVolume)) > 0
    tumour, lungs = mask("Tumor"), mask("Right lung") | mask("Left lung")
    segmentation = p.segmentation.GetSegmentation()
    for name in ("Right lung", "Left lung", "Tumor"):                 # the RTSTRUCT's structures only
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    kept = copy_geometry((lungs & ~tumour).astype(np.uint8), small_phantom.ct)
    mrml.mask_to_segment(mrml_scene, kept, "Lungs-GTV", seg_node=p.segmentation)
    mrml.mask_to_segment(mrml_scene, copy_geometry(tumour.astype(np.uint8), small_phantom.ct), "GTV",
                         seg_node=p.segmentation)
    dose = treatment_dose(copy_geometry(tumour.astype(np.uint8), small_phantom.ct), prescription_gy=60)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, dose, "RTDOSE")
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lungs.nrrd"))) > 0,
                                  mask("Lungs-GTV"))
    assert main(cmd) == 0
    row = pd.read_csv(tmp_path / "dose.csv").iloc[0]
    seg = p.segmentation.GetName()
    assert row.masks == (f"lungs: Slicer segment Lungs-GTV (segmentation {seg!r}); "
                         f"minus GTV: Slicer segment GTV (segmentation {seg!r})"), row.masks
    (tmp_path / "cli").mkdir()              # the CLI on the same masks: Lungs-GTV alone (no GTV subtracted again)
    sitk.WriteImage(kept, str(tmp_path / "cli" / "kept.nii.gz"))
    assert main(["dose-features", "--dose", str(tmp_path / "dose.nrrd"), "--ct", str(tmp_path / "ct.nii.gz"),
                 "--lungs", str(tmp_path / "cli" / "kept.nii.gz"), "-o", str(tmp_path / "cli" / "dose.csv")]) == 0
    cli = pd.read_csv(tmp_path / "cli" / "dose.csv").iloc[0]
    assert 0 < row.dose_mld_gy == pytest.approx(cli.dose_mld_gy) and row.dose_v20_pct == pytest.approx(cli.dose_v20_pct)
    assert row.dose_gtv_mean_gy > 50


def test_lung_radiomics_dose_takes_a_lungs_gtv_segment_without_a_tumour_segment_as_the_cli(
        load_module, mrml_scene, phantom_nodes, small_phantom, tmp_path):
    """QA (lungsgtv62): with Right lung + Left lung + Lungs-GTV and the GTV under a name of no role ('GTV_60Gy'), the
    panel gave the MLD / V20 of the right + left lung with the tumour in them (dose_lung_segments -> the two lungs)
    while lungai dose-features --rtstruct takes the clinic's Lungs-GTV; and a Lungs-GTV segment without a GTV was
    said "no GTV (the lungs include the tumour)".  One rule now (lungai.dicom.roles.dose_lungs_role's gtv): the
    Lungs-GTV segment is the lungs, said to exclude the GTV as contoured (--lungs-exclude-gtv), the CLI's MLD."""
    import pandas as pd

    from lungai import mrml
    from lungai.cli import main
    from lungai.dose import treatment_dose
    from lungai.io import copy_geometry

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    mask = lambda name: sitk.GetArrayFromImage(  # noqa: E731
        mrml.segment_to_mask(mrml_scene, p.segmentation, name, p.inputVolume)) > 0
    tumour, right, left = mask("Tumor"), mask("Right lung"), mask("Left lung")
    segmentation = p.segmentation.GetSegmentation()
    for name in ("Right lung", "Left lung"):         # a clinic's Lung_R / Lung_L: the tumour in them
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    for name, side in (("Lung_R", right | tumour), ("Lung_L", left)):
        mrml.mask_to_segment(mrml_scene, copy_geometry(side.astype(np.uint8), small_phantom.ct), name,
                             seg_node=p.segmentation)
    lungs = mask("Lung_R") | mask("Lung_L")
    assert (tumour & lungs).any()                            # the clinic's lungs hold the tumour
    gtv = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    gtv.SetName("GTV_60Gy")                # no role, and no tumour terminology (a clinic's RTSTRUCT structure)
    gtv.RemoveTag("TerminologyEntry")
    kept = copy_geometry((lungs & ~tumour).astype(np.uint8), small_phantom.ct)
    mrml.mask_to_segment(mrml_scene, kept, "Lungs-GTV", seg_node=p.segmentation)
    dose = treatment_dose(copy_geometry(tumour.astype(np.uint8), small_phantom.ct), prescription_gy=60)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, dose, "RTDOSE")
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lungs.nrrd"))) > 0,
                                  lungs & ~tumour)
    assert "--gtv" not in cmd
    assert main(cmd) == 0
    row = pd.read_csv(tmp_path / "dose.csv").iloc[0]
    seg = p.segmentation.GetName()
    assert row.masks == (f"lungs: Slicer segment Lungs-GTV (segmentation {seg!r}); no GTV structure (the lung "
                         "structure excludes the GTV as contoured)"), row.masks
    (tmp_path / "cli").mkdir()     # the CLI on the same masks: Lungs-GTV; the right + left lung (tumour in) is not it
    sitk.WriteImage(kept, str(tmp_path / "cli" / "kept.nii.gz"))
    sitk.WriteImage(copy_geometry(lungs.astype(np.uint8), small_phantom.ct), str(tmp_path / "cli" / "lungs.nii.gz"))
    for name in ("kept", "lungs"):
        assert main(["dose-features", "--dose", str(tmp_path / "dose.nrrd"), "--ct", str(tmp_path / "ct.nii.gz"),
                     "--lungs", str(tmp_path / "cli" / f"{name}.nii.gz"),
                     "-o", str(tmp_path / "cli" / f"{name}.csv")]) == 0
    cli, whole = (pd.read_csv(tmp_path / "cli" / f"{n}.csv").iloc[0] for n in ("kept", "lungs"))
    assert 0 < row.dose_mld_gy == pytest.approx(cli.dose_mld_gy) and row.dose_v20_pct == pytest.approx(cli.dose_v20_pct)
    assert whole.dose_mld_gy > row.dose_mld_gy + 0.15         # the tumour's 60 Gy in the lungs (8.42 Gy): not this
    assert np.isnan(row.dose_gtv_mean_gy)
    # a lone Lungs-GTV segment (no right / left lung, no GTV): the same words, not "the lungs include the tumour"
    for name in ("Lung_R", "Lung_L"):
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    (tmp_path / "alone").mkdir()
    assert main(logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path / "alone")) == 0
    alone = pd.read_csv(tmp_path / "alone" / "dose.csv").iloc[0]
    assert alone.masks == row.masks and alone.dose_mld_gy == pytest.approx(row.dose_mld_gy)


def test_dose_features_lungs_exclude_gtv_is_for_mask_files(tmp_path, capsys):
    """--lungs-exclude-gtv (the panel's Lungs-GTV segment) describes a --lungs file: with --rtstruct refused, as
    --lungs-name is (the RTSTRUCT's Lungs-GTV is said so by its role)."""
    from lungai.cli import main

    assert main(["dose-features", "--dose", "d.nii.gz", "--ct", "ct.nii.gz", "--rtstruct", "rs.dcm",
                 "--lungs-exclude-gtv", "-o", str(tmp_path / "dose.csv")]) == 2
    assert "leave out --lungs-name / --gtv-name / --lungs-exclude-gtv" in capsys.readouterr().err


def test_lung_radiomics_dose_leaves_an_empty_envelope_segment_out_with_a_note(load_module, mrml_scene,
                                                                              phantom_nodes, small_phantom, tmp_path):
    """Review of 02138d6: an empty 'ITV' segment (no tumour segment) was passed as --envelope, accepted, and the
    masks column said "minus the tumour's motion envelope".  The panel leaves an empty envelope segment out with a
    note (dose-features refuses an empty --envelope); a drawn one beside it is still subtracted."""
    from lungai import mrml
    from lungai.dose import treatment_dose
    from lungai.io import copy_geometry

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    segmentation = p.segmentation.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))      # no tumour segment
    segmentation.AddEmptySegment("ITV", "ITV")                                        # an empty envelope segment
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60), "dose")
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert "--envelope" not in cmd and "--gtv" not in cmd
    assert logic.doseNotes == [f"the motion envelope segment 'ITV' is empty on the CT {p.inputVolume.GetName()!r}: "
                               "not subtracted from the lungs for the dose features"]
    mrml.mask_to_segment(mrml_scene, copy_geometry(sitk.GetArrayFromImage(tumour), small_phantom.ct), "iGTV",
                         seg_node=p.segmentation)
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert cmd[cmd.index("--envelope-name") + 1].startswith("Slicer segment iGTV (")      # the drawn one only
    assert len(logic.doseNotes) == 1


def test_lung_radiomics_dose_in_cgy_passes_its_unit(load_module, mrml_scene, phantom_nodes, small_phantom, tmp_path):
    """Review: a SlicerRT dose node of an RTDOSE in CGY holds cGy (SlicerRT applies DoseGridScaling only; the unit is
    the study item's DicomRtImport.DoseUnitName); exported as it is, lungai dose-features refused it (> 150 Gy) with
    a --dose-unit hint the panel could not follow.  The panel passes --dose-unit cGy: MLD in Gy."""
    import pandas as pd
    from dicom_helpers import as_slicerrt_dose

    from lungai import mrml
    from lungai.cli import main
    from lungai.dose import treatment_dose

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    gy = treatment_dose(tumour, prescription_gy=60)
    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, gy * 100.0, "RTDOSE cGy")
    as_slicerrt_dose(mrml_scene, p.doseVolume, "CGY")
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert cmd[cmd.index("--dose-unit") + 1] == "cGy"
    assert main(cmd) == 0
    mld = pd.read_csv(tmp_path / "dose.csv")["dose_mld_gy"].item()
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, gy, "dose Gy")      # the same dose in Gy, no attribute
    (tmp_path / "gy").mkdir()
    cmd = logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path / "gy")
    assert "--dose-unit" not in cmd and main(cmd) == 0
    assert mld == pytest.approx(pd.read_csv(tmp_path / "gy" / "dose.csv")["dose_mld_gy"].item(), rel=1e-4)


def test_lung_radiomics_warns_of_a_segment_on_the_image_edge(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA: lungai radiomics warns (stderr) of a segment whose mask lies on the CT's image edge (it may be cut by the
    scan; settings CSV column cut_by_image_edge); the panel's per-segment runs dropped it.  The panel's message now
    says it for that segment, by its Slicer name, as the other warnings reach the panel's log."""
    from lungai import mrml

    vol, seg = phantom_nodes
    block = np.zeros(sitk.GetArrayFromImage(mrml.image_from_volume_node(vol)).shape, np.uint8)
    y, x = (n // 2 for n in block.shape[1:])
    block[0:3, y - 3:y + 3, x - 3:x + 3] = 1            # on the CT's first slice (z-)
    image = sitk.GetImageFromArray(block)
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "Edge block", seg_node=seg, reference_volume_node=vol)
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumor", "Edge block"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 2 segments -> table" in message
    warnings = [ln for ln in message.splitlines() if ln.startswith("warning: ")]
    assert warnings == ["warning: segment 'Edge block' touches the image's z- edge: it may be cut by the scan; shape "
                        "and volume features are of the part inside"]


def _firstorder_radiomics(load_module, phantom_nodes, segments=("Tumor",)):
    """Lung Radiomics' logic and parameters for ``segments`` of the phantom's segmentation, first-order features
    only."""
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    p.selectedSegments = list(segments)
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    return logic, p


def test_lung_radiomics_cgy_dose_outside_slicerrt_keeps_the_radiomics(load_module, mrml_scene, phantom_nodes,
                                                                      small_phantom, tmp_path):
    """QA: a cGy dose node not under a SlicerRT study (a resampled / cloned node, an NRRD) was read as Gy, dose-features
    refused it (> 150 Gy) and, the dose command not being optional in the chain, the whole run failed: the computed
    radiomics were discarded and the message named 'dose.nii.gz' and '--dose-unit cGy'.  Now the radiomics table is
    loaded, the message says why the dose features are missing in the panel's terms, and Dose unit cGy computes them."""
    from lungai import mrml
    from lungai.dose import treatment_dose

    logic, p = _firstorder_radiomics(load_module, phantom_nodes)
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60) * 100.0,
                                               "resampled dose")             # cGy, no SlicerRT study above it
    assert p.doseUnit == "Auto" and logic.doseUnit(p) == "Gy"
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.outputTable is not None and "features x 1 segment -> table" in message
    assert p.doseTable is None and "Dose features not computed: resampled dose: the maximum" in message
    assert "choose Dose unit: cGy" in message and "--dose-unit" not in message
    assert "dose.nrrd" not in message and "dose.nii.gz" not in message
    assert "run lungai dose-features with --max-dose-gy" in message, message
    p.doseUnit = "cGy"                                                        # the panel's Dose unit
    assert logic.doseUnit(p) == "cGy"
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "Dose features -> table" in message and p.doseTable is not None
    mld = mrml.dataframe_from_table_node(p.doseTable)["dose_mld_gy"].item()
    assert 0 < mld < 60


def test_lung_radiomics_failed_dose_step_keeps_the_earlier_dose_table(load_module, mrml_scene, phantom_nodes,
                                                                      tmp_path):
    """Review: the dose step is optional; when it failed, the dose table of the previous run (plan A) stayed in the
    panel's selector linked to the same CT.  It was then removed; QA: a failed run must never remove an earlier run's
    results.  Now the table records its dose (plan A, lungai.scene.nodes.source_dose_name), is kept and only dropped
    from the selector, and the message says so; a table of the user's likewise."""
    from lungai import mrml
    from lungai.dose import treatment_dose

    logic, p = _firstorder_radiomics(load_module, phantom_nodes)
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    gy = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60), "plan A")
    cgy = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60) * 100.0, "plan B")
    p.doseVolume = gy
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    first = p.doseTable
    assert "Dose features -> table" in message and first is not None
    p.doseVolume = cgy                                     # cGy read as Gy (unit Auto): the dose step fails
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "Dose features not computed" in message
    assert f"(the dose table '{first.GetName()}' of an earlier run, of dose 'plan A', is kept)" in message, message
    assert p.doseTable is None and first.GetScene() is mrml_scene and p.outputTable is not None
    mine = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "my dose notes")   # the user's, picked
    p.doseTable = mine
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "Dose features not computed" in message and "removed" not in message
    assert p.doseTable is None and mine.GetScene() is mrml_scene


@pytest.fixture(scope="module")
def rp_model(tmp_path_factory):
    """A small locked RP model (all features, logistic regression) on a synthetic cohort (in-process)."""
    from lungai.rp.cohort import make_cohort
    from lungai.rp.training import train_rp

    out = tmp_path_factory.mktemp("rp")
    make_cohort(80, 3).table.to_csv(out / "cohort.csv", index=False)
    train_rp(out / "cohort.csv", "rp_grade2", out / "model", models="lr", outer_folds=3, inner_folds=2,
             fast=True, n_boot=3, final="all/lr", seed=0)
    return out / "cohort.csv", out / "model"


def test_multimodal_risk_end_to_end(load_module, mrml_scene, rp_model):
    """Predict one patient from a radiomics table node, a dose table node and the clinical form."""
    import json

    import pandas as pd
    from lungai import mrml

    cohort, model = rp_model
    module = load_module("MultimodalPredict")
    logic = module.MultimodalPredictLogic()
    p = logic.getParameterNode()
    assert "RP model" in logic.riskInputProblem(p)
    p.rpModelDirectory = model
    fields, info = logic.clinicalForm(p)
    assert fields and all(name.startswith("clin_") for name, _ in fields) and "all/lr" in info
    first = pd.read_csv(cohort).iloc[[0]]
    pick = lambda prefix: first[[c for c in first.columns if c.startswith(prefix)]]  # noqa: E731
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")
    # Lung Radiomics' tables of two different CTs (nodes.SOURCE_VOLUME_ATTRIBUTE) are not one patient's row
    p.radiomicsTable.SetAttribute(module.nodes.SOURCE_VOLUME_ATTRIBUTE, "vtkMRMLScalarVolumeNode1")
    p.doseTable.SetAttribute(module.nodes.SOURCE_VOLUME_ATTRIBUTE, "vtkMRMLScalarVolumeNode2")
    assert "belong to different CTs" in logic.riskInputProblem(p)
    p.doseTable.SetAttribute(module.nodes.SOURCE_VOLUME_ATTRIBUTE, "vtkMRMLScalarVolumeNode1")
    assert logic.riskInputProblem(p) is None
    # nor the tables of two segmentations of the CT (Lung Radiomics keeps one table per segmentation)
    segs = [mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", n) for n in ("AI", "RTSTRUCT")]
    for table, seg in zip((p.radiomicsTable, p.doseTable), segs):
        table.SetNodeReferenceID(module.nodes.SOURCE_SEGMENTATION_REFERENCE, seg.GetID())
    assert "different segmentations" in logic.riskInputProblem(p)
    p.doseTable.SetNodeReferenceID(module.nodes.SOURCE_SEGMENTATION_REFERENCE, segs[0].GetID())
    assert logic.riskInputProblem(p) is None
    with pytest.raises(ValueError, match="clin_"):
        logic.startRisk(p)  # the clinical form is still empty
    p.clinicalValues = json.dumps({k: str(v) for k, v in pick("clin_").iloc[0].items() if pd.notna(v)})
    job = logic.run(logic.startRisk, p, timeout=120)
    risk = float(pd.read_csv(job.outputs)["risk"].iloc[0])
    patient = pd.read_csv(job.workDir / "patient.csv")
    assert any(c.startswith("rad_") for c in patient.columns) and "dose_mld_gy" in patient.columns
    workDir = job.workDir
    headline, contributions = logic.loadRisk(p, job)
    # what the risk is of (the CSV's endpoint column: a model of a copied table - its outcome column; QA rppredict62)
    assert headline.startswith(f"Risk of model outcome 'rp_grade2': {100 * risk:.0f} %")
    assert "Top contributions" in contributions
    assert contributions.endswith("Inputs: radiomics table 'radiomics' (segmentation 'AI'); dose table 'dose' "
                                  "(segmentation 'AI')")
    assert re.search(r"^  [+-]\d\.\d{3} log-odds  \S", contributions, re.M), contributions   # with the unit
    assert p.rpOutputTable.GetTable().GetNumberOfRows() == 1
    case = str(patient["case"].iloc[0])       # lungai rp predict keeps the case: the table is named after it
    assert p.rpOutputTable.GetName() == f"{case} RP risk" and module.nodes.table_rows(p.rpOutputTable)[0]["case"] == case
    assert not workDir.exists()          # the patient's exported features are deleted once loaded
    # QA: the table said neither which model made the risk nor its threshold (predict_rp_node's table does)
    card = json.loads((pathlib.Path(model) / "model_card.json").read_text(encoding="utf-8"))
    row = module.nodes.table_rows(p.rpOutputTable)[0]
    assert row["model"] == f"{card['feature_set']}/{card['model']} ({pathlib.Path(model).name})"
    assert float(row["threshold"]) == pytest.approx(card["threshold"])
    names = [p.rpOutputTable.GetTable().GetColumn(i).GetName() for i in range(p.rpOutputTable.GetTable().GetNumberOfColumns())]
    assert names.index("threshold") == names.index("risk_high") + 1 and names.index("model") == names.index("high_risk") + 1


def test_multimodal_risk_says_the_dose_tables_cut_lungs_as_the_cli(load_module, mrml_scene, rp_model):
    """QA (slicernotes57): Lung Radiomics' dose table of lungs cut by the scan (its ``lungs_cut`` column, from
    ``lungai dose-features``): ``lungai rp predict`` warns "the lungs of 1 patient are cut by the scan ... their dose
    metrics (MLD, Vx, Dx) are of the part of the lungs in view", and so does the console API
    (``lungai.scene.rp.predict_rp_node``: the risk table's ``warnings``), but the panel's risk (the same command as a
    child) showed the risk and HIGH RISK flag without it - in the log box only, with the cohort's fix.  The panel now
    says it under the risk and in its table, with the one-patient fix (Lung Radiomics again)."""
    from lungai import mrml
    from lungai.dose.features import LUNGS_CUT_COLUMN

    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_").assign(
        **{LUNGS_CUT_COLUMN: "lungs cut at the bottom of the scan: 89 cm² of lung on the first slice"}), "dose")
    headline, _ = logic.loadRisk(p, logic.run(logic.startRisk, p, timeout=120))
    said = [ln for ln in headline.splitlines() if ln.startswith("warning: ") and "cut by the scan" in ln]
    assert len(said) == 1 and "compute the dose features again in Lung Radiomics" in said[0], headline
    assert "lungai cohort" not in said[0]
    warnings = str(mrml.dataframe_from_table_node(p.rpOutputTable)["warnings"][0])
    assert "are cut by the scan" in warnings, warnings
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose whole lungs")   # not cut: no word
    headline, _ = logic.loadRisk(p, logic.run(logic.startRisk, p, timeout=120))
    assert "cut by the scan" not in headline


def test_multimodal_risk_says_what_to_do_in_the_panel(load_module, mrml_scene, rp_model, tmp_path):
    """QA: a radiomics settings mismatch was refused with lungai rp predict's flags (--allow-other-radiomics-settings,
    --params: no control of this panel), a missing wavelet feature with the generic 'compute the tables with Lung
    Radiomics' instead of 'tick Wavelet'.  Both are said before the command runs, in the panel's words."""
    import json
    import shutil

    from lungai import mrml
    from lungai.radiomics import load_params
    from lungai.radiomics.settings import NODE_ATTRIBUTE, settings_id

    cohort, model = rp_model
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    card = json.loads((copy / "model_card.json").read_text(encoding="utf-8"))
    card["radiomics_settings"] = {"id": settings_id(load_params("default"))}
    (copy / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    logic, p, pick = _risk_logic(load_module, (cohort, copy))
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    p.radiomicsTable.SetAttribute(NODE_ATTRIBUTE, settings_id(load_params("ibsi-c")))
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")
    with pytest.raises(Exception, match="radiomics settings") as err:
        logic.startRisk(p)
    assert "--allow-other" not in str(err.value) and "--params" not in str(err.value), err.value
    assert "Lung Radiomics" in str(err.value)
    wavelet = "rad_tumour_wavelet-LLH_firstorder_Mean"      # a card as rp train writes it for a wavelet feature
    like = next(f for f in card["features"] if f.startswith("rad_"))
    card["features"] = card["features"] + [wavelet]
    card["roles"]["roles"][wavelet] = card["roles"]["roles"][like]
    card["training_data"]["features"][wavelet] = card["training_data"]["features"][like]
    (copy / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ValueError, match="wavelet-LLH") as err:
        logic.startRisk(p)
    assert "tick Wavelet under Image types" in str(err.value)


def _risk_logic(load_module, rp_model, scene=None):
    """Multimodal Predict's logic with the RP model and the first synthetic patient's clinical values set; pick(prefix)
    gives that patient's columns of a prefix (rad_, dose_).  With ``scene``: that patient's radiomics and dose tables
    made there and chosen too."""
    import json

    import pandas as pd

    from lungai import mrml

    cohort, model = rp_model
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = model
    first = pd.read_csv(cohort).iloc[[0]]
    pick = lambda prefix: first[[c for c in first.columns if c.startswith(prefix)]]  # noqa: E731
    p.clinicalValues = json.dumps({k: str(v) for k, v in pick("clin_").iloc[0].items() if pd.notna(v)})
    if scene is not None:
        p.radiomicsTable = mrml.table_node_from_dataframe(scene, pick("rad_"), "radiomics")
        p.doseTable = mrml.table_node_from_dataframe(scene, pick("dose_"), "dose")
    return logic, p, pick


def test_multimodal_risk_says_what_the_model_learnt_from(load_module, mrml_scene, rp_model):
    """QA balance63: the model card's training patients and events and its warnings (too few events per candidate
    feature: the model is unstable) were in lungai demo's report but not under the panel's risk: a panel user could
    not see that the model learnt from few events.  Shown now as lungai rp predict prints them."""
    import json

    logic, p, pick = _risk_logic(load_module, rp_model, mrml_scene)
    card = json.loads((pathlib.Path(rp_model[1]) / "model_card.json").read_text(encoding="utf-8"))
    assert card["warnings"] and any("events per candidate feature" in w for w in card["warnings"])
    headline, contributions = logic.loadRisk(p, logic.run(logic.startRisk, p, timeout=120))
    for w in card["warnings"]:
        assert f"\nwarning: model card: {w}" in headline, headline
    events = card["training_data"]["events"]
    assert re.search(rf"\nModel card: nested-CV AUC 0\.\d\d \(95% CI [0-9.-]+\) on 80 training patients "
                     rf"\({events} events\)\n", contributions), contributions


def test_risk_from_a_tumour_flagged_for_review_says_so(load_module, mrml_scene, phantom_nodes, rp_model, tmp_path):
    """QA: Lung Radiomics warned that the tumour it measured is flagged for expert review (low confidence), but the RP
    risk computed from its table said nothing - neither Multimodal Predict's headline nor the risk table's warnings
    (the stage CT branch warns).  Lung Radiomics now records the measured segments' review notes on its features table
    (nodes.record_review_notes: saved with the scene; removed when a later run measures no flagged segment) and the
    risk says them: in the headline and in the risk table's warnings."""
    import pandas as pd
    from lungai import mrml
    from lungai.scene import nodes, results

    vol, seg = phantom_nodes
    gid = seg.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    nodes.set_tumour_result(seg, gid, {"confidence": 0.31, "needs_review": True, "review_reasons": ["low confidence"],
                                       "review_threshold": 0.5})
    rad, r = _firstorder_radiomics(load_module, phantom_nodes, ["Tumor"])
    message = rad.loadFeatures(r, rad.run(rad.startFeatures, r, timeout=300))
    note = nodes.review_note(seg, "Tumor")
    assert "flagged for expert review" in note and "(low confidence, confidence 0.31)" in note
    assert f"warning: {note}" in message
    assert nodes.recorded_review_notes(r.outputTable) == [note]
    # saved and reloaded with the scene
    again = mrml.load_scene(mrml.save_scene(mrml_scene, tmp_path / "scene.mrb"), tmp_path / "unpacked")
    assert nodes.recorded_review_notes(again.GetFirstNodeByName(r.outputTable.GetName())) == [note]

    # the risk from that table (the cohort's features for the model; the run's recorded notes): the headline and the
    # table's warnings say it, next to lungai rp predict's own warnings
    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = nodes.record_review_notes(nodes.set_source_volume(mrml.table_node_from_dataframe(
        mrml_scene, pick("rad_"), "risk radiomics"), vol), nodes.recorded_review_notes(r.outputTable))
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")
    job = logic.startRisk(p)                # the command is not run: its prediction is written here
    pd.DataFrame({"case": ["phantom CT"], "risk": [0.4], "risk_low": [0.2], "risk_high": [0.6], "high_risk": [1],
                  "warnings": ["radiomics settings unknown"]}).to_csv(job.outputs, index=False)
    headline, details = logic.loadRisk(p, job)
    # then the model card's own warnings (too few events per feature: QA balance63), as lungai rp predict prints them
    card_warnings = [f"warning: model card: {w}" for w in results.model_card(rp_model[1]).get("warnings") or []]
    assert headline.splitlines() == ["Risk 40 % (uncertainty interval 20-60 %) - HIGH RISK", f"warning: {note}",
                                     *card_warnings]
    assert nodes.table_rows(p.rpOutputTable)[0]["warnings"] == f"radiomics settings unknown; {note}"

    # measured again after the expert's review (no flag): no note recorded, none said with the risk
    nodes.set_tumour_result(seg, gid, {"confidence": 0.31, "needs_review": False, "review_threshold": 0.5})
    message = rad.loadFeatures(r, rad.run(rad.startFeatures, r, timeout=300))
    assert "expert review" not in message and nodes.recorded_review_notes(r.outputTable) == []
    p.radiomicsTable = nodes.record_review_notes(p.radiomicsTable, nodes.recorded_review_notes(r.outputTable))
    job = logic.startRisk(p)
    pd.DataFrame({"case": ["phantom CT"], "risk": [0.4], "risk_low": [0.2], "risk_high": [0.6], "high_risk": [1],
                  "warnings": [""]}).to_csv(job.outputs, index=False)
    headline, _ = logic.loadRisk(p, job)
    assert headline.splitlines()[1:] == card_warnings and nodes.table_rows(p.rpOutputTable)[0]["warnings"] == ""


def test_multimodal_risk_table_per_patient_never_the_users(load_module, mrml_scene, rp_model):
    """Patient B's risk never overwrites patient A's table, nor a table of the user's picked as the output: each is
    "<CT> RP risk", linked to the CT of the radiomics table, its case the CT (not "LUNG1-001 radiomics"); the same
    patient again updates its own table (lungai.scene.rp.risk_table)."""
    import pandas as pd
    from lungai import mrml
    from lungai.scene import nodes

    logic, p, pick = _risk_logic(load_module, rp_model)
    cts, radiomics, dose = {}, {}, {}
    for i, name in enumerate(("LUNG1-001", "LUNG1-002")):
        cts[name] = _small_ct(mrml_scene, name, (8, 8, 4), (100.0 * i, 0.0, 0.0))
        radiomics[name], dose[name] = (nodes.set_source_volume(mrml.table_node_from_dataframe(
            mrml_scene, pick(prefix), f"{name} {what}"), cts[name]) for prefix, what in (("rad_", "radiomics"),
                                                                                       ("dose_", "dose features")))
    users = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame({"note": ["keep me"]}), "my notes")

    def risk(name, risk_value, output):
        p.radiomicsTable, p.doseTable, p.rpOutputTable = radiomics[name], dose[name], output
        job = logic.startRisk(p)                # the command is not run: its prediction is written here
        patient = pd.read_csv(job.workDir / "patient.csv")
        assert patient["case"].tolist() == [name]          # the CT, not the table's name
        pd.DataFrame({"case": patient["case"], "risk": [risk_value], "risk_low": [0.1], "risk_high": [0.9],
                      "high_risk": [0]}).to_csv(job.outputs, index=False)
        logic.loadRisk(p, job)
        return p.rpOutputTable

    a = risk("LUNG1-001", 0.2, users)                       # the user's table picked as the output: a new one
    assert a is not users and nodes.table_rows(users) == [{"note": "keep me"}] and users.GetName() == "my notes"
    assert a.GetName() == "LUNG1-001 RP risk" and nodes.source_volume_id(a) == cts["LUNG1-001"].GetID()
    b = risk("LUNG1-002", 0.7, a)                           # another patient: A's table is kept
    assert b is not a and b.GetName() == "LUNG1-002 RP risk" and nodes.source_volume_id(b) == cts["LUNG1-002"].GetID()
    assert nodes.table_rows(a)[0]["case"] == "LUNG1-001" and float(nodes.table_rows(a)[0]["risk"]) == 0.2
    assert nodes.table_rows(b)[0]["case"] == "LUNG1-002"
    assert risk("LUNG1-002", 0.6, b) is b and float(nodes.table_rows(b)[0]["risk"]) == 0.6   # the same patient
    b.SetName("LUNG1-002 before RT")                        # renamed by the user: theirs, kept
    c = risk("LUNG1-002", 0.5, b)
    assert c is not b and c.GetName() == "LUNG1-002 RP risk" and float(nodes.table_rows(b)[0]["risk"]) == 0.6
    assert mrml_scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 8   # 2 radiomics, 2 dose, notes, 3 risk


def test_multimodal_risk_table_keeps_the_case_as_text_and_finds_the_patients_table(load_module, mrml_scene,
                                                                                   rp_model):
    """A CT named like a number keeps its leading zeros: "001" -> table "001 RP risk" whose case is "001" (it was
    1, "0012345" 12345).  Back to patient A after B (the output selector holding B's table), or with no output
    chosen, A's own risk table is updated, not a new "001 RP risk_1"; the same for a table with no CT link (its
    case compared as text).  A CT named only spaces: the case is "patient" (not the table "   RP risk")."""
    import pandas as pd
    from lungai import mrml
    from lungai.scene import nodes

    logic, p, pick = _risk_logic(load_module, rp_model)
    radiomics = {}
    for i, name in enumerate(("001", "0012345", "   ")):
        ct = _small_ct(mrml_scene, name, (8, 8, 4), (100.0 * i, 0.0, 0.0))
        radiomics[name] = nodes.set_source_volume(mrml.table_node_from_dataframe(
            mrml_scene, pick("rad_"), f"{name.strip() or 'blank'} radiomics"), ct)
    radiomics["unlinked"] = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "007 radiomics")   # no CT
    dose = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")        # no CT: the radiomics' CT counts

    def risk(name, risk_value, output):
        p.radiomicsTable, p.doseTable, p.rpOutputTable = radiomics[name], dose, output
        job = logic.startRisk(p)                # the command is not run: its prediction is written here
        patient = pd.read_csv(job.workDir / "patient.csv", dtype={"case": str})
        pd.DataFrame({"case": patient["case"], "risk": [risk_value], "risk_low": [0.1], "risk_high": [0.9],
                      "high_risk": [0], "warnings": [""]}).to_csv(job.outputs, index=False)
        logic.loadRisk(p, job)
        return p.rpOutputTable

    a = risk("001", 0.2, None)
    assert a.GetName() == "001 RP risk" and nodes.table_rows(a)[0]["case"] == "001"
    assert nodes.table_rows(a)[0]["warnings"] == ""                 # an empty text cell, not "nan"
    b = risk("0012345", 0.7, a)
    assert b is not a and b.GetName() == "0012345 RP risk" and nodes.table_rows(b)[0]["case"] == "0012345"
    assert risk("001", 0.3, b) is a and float(nodes.table_rows(a)[0]["risk"]) == 0.3    # A -> B -> A: A's table
    assert risk("001", 0.4, None) is a and float(nodes.table_rows(a)[0]["risk"]) == 0.4  # no output chosen
    assert risk("0012345", 0.6, None) is b and float(nodes.table_rows(b)[0]["risk"]) == 0.6
    blank = risk("   ", 0.5, None)
    assert blank.GetName() == "patient RP risk" and nodes.table_rows(blank)[0]["case"] == "patient"
    u = risk("unlinked", 0.1, None)
    assert u.GetName() == "007 RP risk" and nodes.table_rows(u)[0]["case"] == "007" and not nodes.source_volume_id(u)
    assert risk("unlinked", 0.2, a) is u and risk("unlinked", 0.3, None) is u     # the same case: its table
    assert float(nodes.table_rows(u)[0]["risk"]) == 0.3
    a.SetName("001 before RT")                              # renamed by the user: theirs, a new table
    assert risk("001", 0.5, None) is not a and float(nodes.table_rows(a)[0]["risk"]) == 0.4
    names = [mrml_scene.GetNthNodeByClass(i, "vtkMRMLTableNode").GetName()
             for i in range(mrml_scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))]
    assert sorted(n for n in names if "RP risk" in n) == sorted(["001 RP risk", "0012345 RP risk", "007 RP risk",
                                                                 "patient RP risk"])


def test_multimodal_risk_form_of_a_role_file_model(load_module, mrml_scene, rp_roles_model):
    """A model trained with a role file: the clinical form lists its own names (clinical, and dosimetric not named
    dose_*), and the patient row keeps them, so the model gets every value the form gives."""
    import json

    import pandas as pd
    from lungai import mrml
    from lungai.scene import results

    table, model = rp_roles_model
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = model
    fields, _ = logic.clinicalForm(p)
    names = [n for n, _ in fields]
    assert {"Age at diagnosis", "Sex ", "Pack Years", "MLD"} <= set(names)
    first = pd.read_csv(table).iloc[[0]]
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, first[[c for c in first.columns
                                                                    if c.startswith("dose_")]], "dose")
    p.clinicalValues = json.dumps({n: str(first[n].iloc[0]) for n in names})
    row = logic.patientRow(p).iloc[0].to_dict()
    assert results.missing_features(results.model_card(model), row) == []
    assert row["Age at diagnosis"] == first["Age at diagnosis"].iloc[0] and row["Sex "] == first["Sex "].iloc[0]


def _hand_made_card(threshold) -> dict:
    """A small model card of one feature with every field rp predict needs (lungai.rp.card.CARD_REQUIRED), as
    'lungai rp train' writes them, and ``threshold``."""
    return {"format": "lungai-rp-model/1", "feature_set": "all", "model": "lr", "threshold": threshold,
            "outcome": "rp_grade2", "features": ["clin_age"],
            "roles": {"roles": {"clin_age": "clinical"}, "categorical": [], "binary": [], "id_column": None},
            "categories": {},
            "training_data": {"n": 60, "events": 16, "features": {"clin_age": {"min": 40, "max": 85}}},
            "metrics_nested_cv": {"auc": 0.62}}


@pytest.mark.parametrize("threshold, says", [(20, "use 0.20"), (1.5, "1.5 is above 1")])
def test_multimodal_model_line_says_a_saved_threshold_outside_0_1(load_module, tmp_path, threshold, says):
    """QA: the panel's model line showed "threshold 1.5" (or 20) of an older model card without a word; Compute risk
    failed only later.  The card's threshold is checked by the one rule of ``rp predict`` (lungai.rp.card)."""
    import json

    (tmp_path / "model_card.json").write_text(json.dumps(_hand_made_card(threshold)), encoding="utf-8")
    (tmp_path / "model.skops").write_bytes(b"")    # the folder as rp train writes it (the line never opens it)
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = tmp_path
    fields, info = logic.clinicalForm(p)
    assert fields == [] and f"its threshold {threshold:g} is not a risk between 0 and 1" in info and says in info
    assert "0.015" not in info


@pytest.mark.parametrize("threshold, says", [(None, "has no threshold (null)"), ("drop", "has no threshold (no threshold key)"),
                                             ("0.2", "its threshold '0.2' is not a number")])
def test_multimodal_model_line_says_a_saved_threshold_missing_or_text(load_module, tmp_path, threshold, says):
    """Review: the model line showed "threshold None" / "?" / "0.2" with the form enabled (Compute risk then crashed).
    The card's threshold must be there and a number (lungai.rp.card.check_card_threshold)."""
    import json

    card = _hand_made_card(threshold)
    if threshold == "drop":
        del card["threshold"]
    (tmp_path / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    (tmp_path / "model.skops").write_bytes(b"")    # the folder as rp train writes it (the line never opens it)
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = tmp_path
    fields, info = logic.clinicalForm(p)
    assert fields == [] and says in info and "retrain" in info


def test_multimodal_model_line_says_what_the_model_learnt_from_when_chosen(load_module, rp_model):
    """QA panelrp63: the model line shown when a model folder is chosen said only "Model all/lr: N features, threshold
    T": its training patients and events, the too-few-events warning, what its risk is of and the threshold's rule
    came first under a computed risk (or never, the user not computing one), so a model that learnt from few events
    was chosen without a word.  The line says them now, in lungai rp predict's words (lungai.rp.card: one text)."""
    import json

    from lungai.rp.model_io import validation_text   # (their one text: lungai.rp.card)
    from lungai.rp.predict import prediction_header

    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = rp_model[1]
    fields, info = logic.clinicalForm(p)
    card = json.loads((pathlib.Path(rp_model[1]) / "model_card.json").read_text(encoding="utf-8"))
    lines = info.splitlines()
    assert fields and lines[0] == f"Model all/lr: {len(card['features'])} features", info
    events = card["training_data"]["events"]
    assert f"model card: {validation_text(card)}" in lines, info
    assert f"on 80 training patients ({events} events)" in info
    assert card["warnings"] and all(f"warning: model card: {w}" in lines for w in card["warnings"]), info
    assert any("events per candidate feature" in w for w in card["warnings"])
    header = prediction_header(card)         # what the risk is of, and the HIGH RISK threshold with its rule
    assert header[0] in lines and header[2] in lines and "(training prevalence (default))" in header[2], info
    assert header[0].startswith("risk of: the model's outcome 'rp_grade2' (1 = event)")   # a user's table's column


def test_multimodal_model_line_without_the_prediction_packages(load_module, rp_model, monkeypatch):
    """The model line is read on every panel refresh, before the prediction packages may be installed: it imports
    none of them (QA panelrp63: it imported lungai.rp.checks, so pandas - not bundled by Slicer - and choosing a
    model folder raised ModuleNotFoundError in the panel's refresh; validation_text was in lungai.rp.model_io, so
    scikit-learn; Compute risk's tooltip, with a value typed in the form, imported lungai.scene.rp - pandas).  Every such
    package is made unimportable here, as in a Slicer where none is installed yet."""
    import importlib.abc
    import sys

    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = rp_model[1]
    _, said = logic.clinicalForm(p)
    absent = ("pandas", "sklearn", "scipy", "skops", "torch", "matplotlib")

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in absent:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    import lungai
    import lungai.rp

    # the package attribute lungai.rp too: a re-import here binds a new lungai.rp to it, which later tests' dotted
    # monkeypatch paths ("lungai.rp.external.load_model") would then resolve through (without its submodules)
    monkeypatch.setattr(lungai, "rp", lungai.rp)
    for name in [m for m in sys.modules if m.split(".")[0] in absent or m.startswith("lungai.rp")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NotInstalled(), *sys.meta_path])
    fields, info = logic.clinicalForm(p)
    assert info == said and fields and "events)" in info
    assert logic.riskInputProblem(p).startswith("Give the patient's features")   # the folder is no problem
    p.clinicalValues = '{"clin_age_years": "64"}'     # typed in the form: Compute risk's tooltip is no error either
    assert logic.riskInputProblem(p) is None
    assert not [m for m in sys.modules if m.split(".")[0] in absent]


def test_segment_checks_of_the_panels_do_not_import_pydicom(load_module, phantom_nodes, tmp_path, monkeypatch):
    """QA slicer71: Multimodal Predict's stage inputs check (its button refresh, and Predict stage's click) imported
    pydicom (~0.6 s on the GUI thread, LUNG1-003) to compare segment names (lungai.dicom.labels.dicom_name's
    isinstance test of pydicom's MultiValue); Lung Radiomics' inputs check too.  pydicom is no longer imported for
    that; a name pydicom read as several values (a backslash) is still joined back by it."""
    import importlib.abc
    import sys

    from pydicom.multival import MultiValue

    from lungai.dicom.labels import dicom_name, label_key

    assert dicom_name(MultiValue(str, ["GTV", "node"])) == "GTV\\node" and label_key(["GTV ", "b"]) == "GTV \\b"
    assert label_key(" GTV-1 ") == "GTV-1"

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "pydicom":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [m for m in sys.modules if m.split(".")[0] == "pydicom"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NotInstalled(), *sys.meta_path])
    ct, truth = phantom_nodes
    stage = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = stage.getParameterNode()
    p.stageModelDirectory = _stage_model(tmp_path)
    p.stageVolume, p.stageSegmentation, p.stagePatient = ct, truth, "P1"
    assert stage.stageInputProblem(p) is None
    radiomics = load_module("LungRadiomics").LungRadiomicsLogic()
    q = radiomics.getParameterNode()
    q.inputVolume, q.segmentation, q.selectedSegments = ct, truth, ["Tumor", "Right lung"]
    assert radiomics.inputProblem(q) is None
    assert not [m for m in sys.modules if m.split(".")[0] == "pydicom"]


def _model_copy(rp_model, tmp_path, change):
    import json
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(rp_model[1], copy)
    card = json.loads((copy / "model_card.json").read_text(encoding="utf-8"))
    change(copy, card)
    return copy


def _stage_folder(copy, card):
    import shutil

    shutil.rmtree(copy)
    copy.mkdir()
    (copy / "stage_model.json").write_text('{"format": "lungai-stage-model", "version": 2}', encoding="utf-8")
    (copy / "model_card.md").write_text("# stage model\n", encoding="utf-8")


def _write(text):
    return lambda copy, card: (copy / "model_card.json").write_text(text(card), encoding="utf-8")


@pytest.mark.parametrize("change, says", [
    (_stage_folder, r"is a stage model folder \(stage_model\.json, written by 'lungai stage train'\), not an RP model "
                    r"folder.*'lungai stage predict' \(in Slicer: the model folder of the Stage section\)"),
    (_write(lambda c: __import__("json").dumps({**c, "format": "lungai-rp-model/2"})),
     r"model_card\.json has format 'lungai-rp-model/2', expected 'lungai-rp-model/1' \(a model of lungai .*\).*retrain "
     r"the model with this version of lungai"),
    (lambda copy, card: (copy / "model.skops").unlink(), r"is not an RP model directory .*model\.skops missing"),
    (_write(lambda c: "[1, 2]"), r"model_card\.json holds a JSON list, not a model card.*retrain"),
    (_write(lambda c: '{"format": '), r"model_card\.json is not readable JSON .*retrain"),
    (_write(lambda c: __import__("json").dumps({**c, "training_data": 5})),
     r"model_card\.json: its field 'training_data' is a number \(5\), not a JSON object, as .*restore the "
     r"model_card\.json that 'lungai rp train' wrote with this model .*or retrain"),
    (_write(lambda c: __import__("json").dumps({**c, "warnings": "few events"})),
     r"model_card\.json: its field 'warnings' is text \(\"few events\"\), not a JSON list or null.*retrain"),
    (_write(lambda c: __import__("json").dumps({**c, "roles": {**c["roles"], "roles": ["clinical"]}})),
     r"model_card\.json: its field 'roles\.roles' is a JSON list .*, not a JSON object.*retrain"),
    (_write(lambda c: __import__("json").dumps({k: v for k, v in c.items() if k != "roles"})),
     r"model_card\.json has no field 'roles' \('lungai rp train' writes it; 'lungai rp predict' needs it\).*restore"
     r" the model_card\.json that 'lungai rp train' wrote with this model .*or retrain"),
], ids=["stage folder", "other version", "no model file", "json list", "truncated", "training_data number",
        "warnings text", "roles list", "no roles"])
def test_multimodal_model_line_says_a_folder_rp_predict_refuses(load_module, rp_model, tmp_path, change, says):
    """QA panelrp63: a model folder lungai rp predict refuses was shown as a model (a card of another lungai version,
    a folder without its model.skops: the form and "Model all/lr ..." - Compute risk failed only later), a card
    holding a JSON list raised AttributeError in the panel's refresh, a truncated card showed the JSON error without
    the file, and a stage model folder chosen by mistake was "not an RP model folder" without saying what it is.  The
    line and Compute risk's tooltip now say rp predict's refusal (lungai.rp.card.read_card: its one check).  QA
    rpcard63: a hand-edited card's field of another type ("training_data": 5) raised AttributeError in the refresh,
    "warnings": "text" was shown one character per line: refused, naming the field, its type and the fix.  QA
    rpkeys63: a card without "roles" was shown as a model (rp predict: KeyError): refused, naming the field."""
    model = _model_copy(rp_model, tmp_path, change)
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.rpModelDirectory = model
    fields, info = logic.clinicalForm(p)
    assert fields == [] and re.search(says, info, re.S), info
    assert str(model) in info and logic.riskInputProblem(p) == info


def test_lung_radiomics_batch_from_folder(load_module, small_phantom, tmp_path):
    """Folder batch: manifest written next to the output, `lungai radiomics-batch` run, table loaded."""
    from lungai.radiomics.manifest import read_manifest
    from lungai.synthetic import write_phantom

    cases = tmp_path / "cases"
    write_phantom(small_phantom, cases / "P1")
    (cases / "P2").mkdir()
    sitk.WriteImage(small_phantom.ct, str(cases / "P2" / "image.nrrd"))
    sitk.WriteImage(small_phantom.labels == 1, str(cases / "P2" / "mask.nii.gz"))
    (cases / "notes").mkdir()  # no image: ignored
    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.batchSource, p.batchFolder, p.batchOutput, p.workers = "folder", cases, tmp_path / "out" / "features.csv", 0
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    assert logic.batchProblem(p) is None
    job = logic.run(logic.startBatch, p, timeout=300)
    rows = read_manifest(tmp_path / "out" / "features_manifest.csv")
    assert [(r["case"], r["phantom"]) for r in rows] == [("P1", "1"), ("P2", "")]
    message = logic.loadBatch(p, job)
    import pandas as pd

    table = pd.read_csv(job.outputs)   # the user's output file is kept
    assert set(table["case"]) == {"P1", "P2"} and "table" in message
    assert {"tumour", "right_lung", "lungs_minus_tumour"} <= set(table.loc[table["case"] == "P1", "segment"])
    assert p.outputTable.GetTable().GetNumberOfRows() == len(table)


def test_a_batch_never_overwrites_a_users_table_chosen_as_output(load_module, mrml_scene, tmp_path):
    """QA (slicerdose59): the Batch's table went into whatever table the Output table selector held unless it was one
    CT's features table: a user's table picked there (the selector lists every table: an EHR table, a table of
    measurements) was overwritten by the batch's features, keeping its name.  The batch now updates only its own
    table of the same output CSV (nodes.batch_table); another table is kept, said, and a new one made."""
    import types

    import pandas as pd

    from lungai import mrml
    from lungai.scene import nodes

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    clinical = pd.DataFrame({"patient_id": ["A"], "age": [71.0]})
    mine = mrml.table_node_from_dataframe(mrml_scene, clinical, "my clinical")
    p.outputTable = mine
    csv = tmp_path / "features.csv"
    pd.DataFrame({"case": ["c1"], "feature": ["f"], "value": [1.0]}).to_csv(csv, index=False)
    message = logic.loadBatch(p, types.SimpleNamespace(outputs=str(csv)))
    assert mrml.dataframe_from_table_node(mine).to_dict() == clinical.to_dict() and mine.GetName() == "my clinical"
    assert p.outputTable is not mine and p.outputTable.GetName() == "features"
    assert "the table 'my clinical' chosen as output is kept" in message, message
    first = p.outputTable
    pd.DataFrame({"case": ["c1", "c2"], "feature": ["f", "f"], "value": [1.0, 2.0]}).to_csv(csv, index=False)
    message = logic.loadBatch(p, types.SimpleNamespace(outputs=str(csv)))       # the same batch run again: updated
    assert p.outputTable is first and first.GetTable().GetNumberOfRows() == 2 and "kept" not in message
    other = tmp_path / "other.csv"                                              # another batch: its own table
    pd.DataFrame({"case": ["c9"], "feature": ["f"], "value": [9.0]}).to_csv(other, index=False)
    logic.loadBatch(p, types.SimpleNamespace(outputs=str(other)))
    assert p.outputTable is not first and first.GetTable().GetNumberOfRows() == 2
    assert nodes.node_made_by(p.outputTable) == nodes.BATCH_MADE_BY

def test_lung_radiomics_folder_batch_never_rewrites_a_running_batchs_manifest_nor_a_users_file(
        load_module, small_phantom, tmp_path):
    """Review: the folder batch wrote <stem>_manifest.csv with a plain overwrite (and made its folder) before
    `lungai radiomics-batch` took the folder's lock: a second batch started while one ran rewrote the running
    batch's manifest before being refused, and a user's file of that name was overwritten silently.  The manifest
    is written by lungai.radiomics.manifest.write_batch_manifest: refused, nothing written, while another lungai run
    holds the folder, and over a file lungai did not write (the same text: kept); an earlier batch's is replaced."""
    import subprocess
    import sys

    from lungai.errors import InputError
    from lungai.io.outputs import _host, _process_started
    from lungai.synthetic import write_phantom

    cases = tmp_path / "cases"
    write_phantom(small_phantom, cases / "P1")
    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    out = tmp_path / "out"
    p.batchSource, p.batchFolder, p.batchOutput, p.workers = "folder", cases, out / "features.csv", 0
    manifest = out / "features_manifest.csv"
    # a user's file of the manifest's name: refused, kept as it was
    out.mkdir()
    manifest.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(InputError, match="features_manifest.csv beside the table features.csv") as refused:
        logic.startBatch(p)
    assert "choose another table name" in refused.value.fix
    assert manifest.read_text(encoding="utf-8") == "my own notes\n"
    assert sorted(f.name for f in out.iterdir()) == ["features_manifest.csv"]
    manifest.unlink()
    out.rmdir()
    # written by a batch: recorded, so that the next run may replace it
    from LungAICommon.manifest import rows_from_folder, write_manifest
    from lungai.radiomics.manifest import write_batch_manifest

    write_batch_manifest(p.batchOutput, lambda f: write_manifest(rows_from_folder(cases), f, base=cases))
    first = manifest.read_text(encoding="utf-8")
    # a batch running in the folder (its lock): the manifest it reads is not rewritten, no folder is made
    write_phantom(small_phantom, cases / "P2")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".lungai.lock").write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} "
                                          "radiomics-batch\n", encoding="utf-8")
        with pytest.raises(InputError, match="in use by another lungai radiomics-batch run") as refused:
            logic.startBatch(p)
        assert manifest.read_text(encoding="utf-8") == first
        # QA: the panel's fix names its own field, not the CLI's "-o OTHER_FOLDER/table.csv"
        assert "choose an Output CSV in another folder" in refused.value.fix
        assert "OTHER_FOLDER" not in str(refused.value)
        p.batchOutput = tmp_path / "new" / "features.csv"
        (tmp_path / "new").mkdir()
        (tmp_path / "new" / ".lungai.lock").write_text((out / ".lungai.lock").read_text(), encoding="utf-8")
        with pytest.raises(InputError, match="in use by another lungai radiomics-batch run"):
            logic.startBatch(p)
        assert sorted(f.name for f in (tmp_path / "new").iterdir()) == [".lungai.lock"]
    finally:
        other.kill()
        other.wait()
    (out / ".lungai.lock").unlink()
    p.batchOutput = out / "features.csv"
    logic.startBatch(p)            # the earlier batch's manifest: replaced (P2 added); the job is not started
    assert "P2" in manifest.read_text(encoding="utf-8") and manifest.read_text(encoding="utf-8") != first


def test_multimodal_stage_inputs_and_outputs(load_module, mrml_scene, phantom_nodes, tmp_path):
    """Stage: CT + tumour exported with a one-row manifest; outputs (format of `lungai stage predict
    --explain`) shown as text, table and Grad-CAM volume.  The full child-process run takes ~1 min
    here and is documented in docs/slicer.md instead of being repeated in the suite."""
    import csv

    module = load_module("MultimodalPredict")
    logic = module.MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.stageModelDirectory = _stage_model(tmp_path / "model")
    assert "EHR table" in logic.stageInputProblem(p)
    p.stageVolume, p.stageSegmentation = phantom_nodes
    assert "patient id" in logic.stageInputProblem(p)
    p.stagePatient = "P1"
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    output, args = job.outputs, job.process.args
    manifest = args[args.index("--ct") + 1]
    with open(manifest, newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == [{"id": "P1", "image": "ct.nrrd", "mask": "tumour.nrrd"}]
    assert args[:4] == ["stage", "predict", "--model", str(tmp_path / "model")] and args[-1] == "--explain"
    mask = sitk.ReadImage(str(output.parent / "tumour.nrrd"))
    assert sitk.GetArrayFromImage(mask).sum() > 0
    (output / "gradcam").mkdir(parents=True)
    (output / "predictions.csv").write_text("patient_id,ehr,rna,ct,p_I,p_II,predicted\n"
                                            "P0,True,True,True,0.9,0.1,I\nP1,True,False,True,0.25,0.75,II\n", encoding="utf-8")
    (output / "top_genes_per_patient.csv").write_text("patient_id,class,rank,gene,shapley_value\nP0,I,1,KRAS,0.2\n", encoding="utf-8")
    cam = sitk.Cast(mask, sitk.sitkFloat32) * 0.8
    sitk.WriteImage(cam, str(output / "gradcam" / "P1_gradcam.nii.gz"))
    text = logic.loadStage(p, job)
    assert not output.parent.exists()          # exported CT, mask and outputs deleted once loaded
    assert text.splitlines()[:3] == ["P1: predicted II", "  P(II) = 75 %", "  P(I) = 25 %"]
    assert "none for this patient" in text
    assert p.stageOutputTable.GetTable().GetNumberOfRows() == 1   # the patient asked for, not P0
    assert p.gradcamVolume is not None and p.gradcamVolume.GetDisplayNode().GetWindow() == pytest.approx(0.8)


def test_stage_click_exports_nothing_and_imports_no_table_reader(load_module, mrml_scene, phantom_nodes, tmp_path,
                                                                 monkeypatch):
    """QA slicerfollow70: the first Predict stage click took ~3 s on the GUI thread before the bar and Cancel showed:
    1.35-1.5 s importing lungai.fusion.data (and pandas) to match the typed id to the EHR/RNA tables - with no table
    given - and 0.88 s exporting the CT.  The click now only checks the inputs: the job's first polls (one a tick of
    the bar) export the CT and the tumour, each step said, Cancel between two stops it (nothing more exported, no
    child, the work folder gone); without a table neither the table reader nor pandas is imported (an import of
    either fails here); with an EHR table the id is matched to its spelling as before."""
    import csv

    from LungAICommon.panel import finish_job
    from lungai.scene import nodes

    logic, p = _stage_logic(load_module, tmp_path, ct_nodes=phantom_nodes, patient=" lung1-003 ")
    monkeypatch.setitem(__import__("sys").modules, "lungai.fusion.data", None)   # importing it: ImportError
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    job = logic.startStage(p)                                     # the click on Predict stage
    work = job.workDir
    assert work.is_dir() and not any(work.iterdir())             # nothing exported by the click
    job.process.start()                                           # the runner: bar and Cancel shown
    assert job.process.running and not any(work.iterdir()) and job.process.args == []
    events = job.process.poll()
    assert [(e.kind, e.text) for e in events] == [("progress", "preparing the inputs: exporting the CT 'phantom CT'")]
    assert not any(work.iterdir())                                # the bar names the step that runs next
    events = job.process.poll()
    while [e.text for e in events] == ["preparing the inputs: writing the CT 'phantom CT'"]:   # a poll until written
        events = job.process.poll()                                                        # (a background thread)
    assert [(e.kind, e.text) for e in events] == [("progress", "preparing the inputs: exporting segment 'Tumor'")]
    assert sorted(f.name for f in work.iterdir()) == [f"ct{nodes.EXPORT_SUFFIX}"]
    job.process.cancel()                                          # Cancel between two steps
    assert job.process.cancelled and not job.process.running and job.process.poll() == []
    log = []
    assert finish_job(job, lambda j: pytest.fail("loaded a cancelled job"), lambda t, d: pytest.fail(t),
                      log.append) is None
    assert log == ["Cancelled."] and not work.exists()

    job = logic.startStage(p)
    args = job.process.prepare().args                             # every step at once (a script): not started
    with open(args[args.index("--ct") + 1], newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["lung1-003"]      # the typed id (stripped): no table
    job.finish()
    monkeypatch.undo()
    (tmp_path / "ehr.csv").write_text("patient_id,age\nLUNG1-003,60\n", encoding="utf-8")
    p.ehrFile = tmp_path / "ehr.csv"
    assert logic.stagePatientId(p) == "LUNG1-003"                         # the table's spelling, as before


def test_stage_patient_id_matched_to_the_tables_off_the_gui_thread(load_module, mrml_scene, phantom_nodes, tmp_path,
                                                                  monkeypatch):
    """QA slicer71: with an EHR / RNA table, Predict stage's step "matching the patient id to the tables" read the
    tables (and imported pandas) in one poll on the GUI thread: 1.0 s (Slicer 5.12.3's Python) and 2.3 s (5.10.0's),
    LUNG1-003 on a loaded machine - the bar and Cancel frozen.  The tables are now read in a background thread, the
    step said a tick of the bar per poll while it takes longer than 20 ms; the id is matched to the table's spelling
    as before."""
    import csv
    import threading
    import time

    from lungai.fusion import data

    logic, p = _stage_logic(load_module, tmp_path, ehr_rows="LUNG1-003,60\nLUNG1-002,70\n", ct_nodes=phantom_nodes,
                            patient=" lung1-003 ")
    read_on = []
    load_ehr = data.load_ehr

    def recording_load_ehr(*args, **kwargs):
        read_on.append(threading.current_thread() is threading.main_thread())
        return load_ehr(*args, **kwargs)

    monkeypatch.setattr(data, "load_ehr", recording_load_ehr)
    monkeypatch.setattr(commands, "stage_predict", lambda *args, **kwargs: ["--version", *map(str, args),
                                                                            str(kwargs["ct_manifest"])])
    job = logic.startStage(p)
    process = job.process.start()
    statuses = []
    while process.preparing:                  # the panel's QtJobRunner: a poll per tick of its timer
        statuses += [e.text for e in process.poll() if e.kind == "progress"]
        time.sleep(0.02)
    assert read_on == [False], read_on        # the EHR table read by the job's thread, never on the GUI thread
    # each poll of the step waited at most 20 ms for the read (said while it takes longer: a first import of pandas)
    assert set(statuses) <= {"preparing the inputs: exporting the CT 'phantom CT'",
                             "preparing the inputs: writing the CT 'phantom CT'",
                             "preparing the inputs: exporting segment 'Tumor'",
                             "preparing the inputs: matching the patient id to the tables"}
    with open(process.args[-1], newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["LUNG1-003"]     # the table's spelling
    process.wait()
    job.finish()
    job = logic.startStage(p)                 # a script: every step at once (the table read in its thread)
    with open(job.process.prepare().args[-1], newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["LUNG1-003"]
    job.finish()


def test_stage_apply_needs_a_stage_models_card(load_module, mrml_scene, tmp_path):
    """QA slicerfollow71: Predict stage was enabled for any folder as the stage model (no stage_model.json, a truncated
    one), refused by the child 28-30 s later, after torch was loaded.  The panel checks the folder as lungai stage
    predict first does (lungai.fusion.balance.check_stage_model_folder, light): the problem and the fix on the
    button, as the RP risk button's model card check."""
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    (tmp_path / "ehr.csv").write_text("patient_id,age\nP1,70\n", encoding="utf-8")
    p.ehrFile = tmp_path / "ehr.csv"
    (tmp_path / "empty").mkdir()
    p.stageModelDirectory = tmp_path / "empty"
    problem = logic.stageInputProblem(p)
    assert problem is not None and "is not a locked stage model (no stage_model.json)" in problem, problem
    assert "How to fix: pass the folder written by `lungai stage train`" in problem, problem
    model = _stage_model(tmp_path / "model")
    (model / "stage_model.json").write_text('{"format": "lungai-stage-model", "vers', encoding="utf-8")
    p.stageModelDirectory = model
    problem = logic.stageInputProblem(p)
    assert problem is not None and "stage_model.json is not readable JSON" in problem, problem
    assert "How to fix: retrain with `lungai stage train`" in problem, problem
    (model / "stage_model.json").write_text("[1, 2]", encoding="utf-8")
    assert "holds a JSON list, not a stage model description" in logic.stageInputProblem(p)
    _stage_model(model)
    assert logic.stageInputProblem(p) is None


def test_stage_apply_needs_a_non_empty_tumour_segment(load_module, mrml_scene, phantom_nodes, tmp_path):
    """Apply stays off without a segment named as a tumour (any GTV name is one) or with an empty one."""
    from lungai import mrml

    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    vol, seg = phantom_nodes
    p.stageModelDirectory, p.stageVolume, p.stageSegmentation, p.stagePatient = _stage_model(tmp_path / "model"), vol, \
        seg, "P1"
    assert logic.stageInputProblem(p) is None
    segmentation = seg.GetSegmentation()
    tumour = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    tumour.SetName("Lesion")
    tumour.RemoveTag("TerminologyEntry")      # no tumour terminology either (lungai's tag: a tumour whatever its name)
    problem = logic.stageInputProblem(p)
    assert "has no tumour segment" in problem and "'GTV-1'" in problem and "Lesion" in problem
    with pytest.raises(ValueError, match="no tumour segment"):
        logic.startStage(p)
    tumour.SetName("GTV-1")
    assert logic.stageInputProblem(p) is None
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("GTV-1"))
    segmentation.AddEmptySegment("t", "Tumor")
    assert logic.stageInputProblem(p) == "The tumour segment 'Tumor' is empty; draw the tumour (or run Lung AI Segmentation)"
    assert not mrml.segment_is_empty(seg, "Right lung")   # another segment of the shared labelmap
    assert not list(tmp_path.glob("lungai-stage-*"))


STAGE_HEADER = "patient_id,ehr,rna,ct,model,p_I,p_II,predicted,status\n"


def _stage_model(folder):
    """``folder`` made a stub stage model folder: a stage_model.json card, what the panel checks before enabling
    Predict stage (the job's child, which loads the model, is not run)."""
    folder.mkdir(exist_ok=True)
    (folder / "stage_model.json").write_text('{"format": "lungai-stage-model", "version": 2}', encoding="utf-8")
    return folder


def _stage_logic(load_module, tmp_path, ehr_rows=None, ct_nodes=None, patient=None):
    """Multimodal Predict's logic and parameter node with a (stub) stage model folder, an EHR table
    (``patient_id,age`` + ``ehr_rows``), the CT + segmentation nodes and the typed patient id, as given."""
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.stageModelDirectory = _stage_model(tmp_path / "model")
    if ehr_rows is not None:
        (tmp_path / "ehr.csv").write_text("patient_id,age\n" + ehr_rows, encoding="utf-8")
        p.ehrFile = tmp_path / "ehr.csv"
    if ct_nodes is not None:
        p.stageVolume, p.stageSegmentation = ct_nodes
    if patient is not None:
        p.stagePatient = patient
    return logic, p


def _stage_result(logic, p, rows):
    """Start the stage job, give it ``rows`` of predictions.csv (after the header) and load them: the panel text."""
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    job.outputs.mkdir(parents=True)
    (job.outputs / "predictions.csv").write_text(STAGE_HEADER + rows, encoding="utf-8")
    return logic.loadStage(p, job)


def test_stage_patient_missing_from_the_tables_is_warned(load_module, mrml_scene, phantom_nodes, tmp_path):
    """An id not in the EHR/RNA tables: predicted from the CT alone, said so; the panel's table shows that patient
    only (the command predicts every patient of the tables); a patient not predicted gets the status text."""
    logic, p = _stage_logic(load_module, tmp_path, "P0,60\n", phantom_nodes, "LUNG1-003")
    for rows, expected in (("LUNG1-003,False,False,True,fusion,0.3,0.7,II,computed\n",
                            "Warning: LUNG1-003 is not in the EHR table (or has none of the values the model uses "
                            "there), so it was not used: predicted from the CT alone."),
                           ("LUNG1-003,True,False,True,fusion,0.3,0.7,II,computed\n", None)):
        text = _stage_result(logic, p, "P0,True,False,False,fusion,0.9,0.1,I,computed\n" + rows)
        assert text.startswith("LUNG1-003: predicted II\n  P(II) = 70 %")
        assert (expected in text) if expected else "Warning" not in text
        table = p.stageOutputTable.GetTable()
        assert table.GetNumberOfRows() == 1 and table.GetValue(0, 0).ToString() == "LUNG1-003"
    from lungai.scene import results

    row = {"patient_id": "X", "ehr": "False", "rna": "False", "ct": "False", "p_I": "", "predicted": "",
           "status": "not computed: the patient has none of the inputs the model was trained with"}
    assert results.describe_stage_row(row, "X") == f"X: {row['status']}"
    assert "EHR / RNA tables" in results.describe_unused_stage_inputs(row, "X", ["ehr", "rna"])


def test_stage_patient_differing_by_leading_zeros_is_named(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA: docs/stage.md says ids differing only by leading zeros (EHR 007, panel patient 7) are named as such; the
    panel's messages did not: patient not predicted, and a patient predicted from the CT alone."""
    logic, p = _stage_logic(load_module, tmp_path, "007,60\n", phantom_nodes, "7")
    ehr = "007,True,False,False,fusion,0.9,0.1,I,computed\n"
    text = _stage_result(logic, p, ehr + "7,False,False,True,fusion,0.3,0.7,II,computed\n")   # 7 from the CT
    assert "Warning: 7 is not in the EHR table" in text and "1 id differs only by leading zeros (7 vs 007)" in text
    p.stageVolume = p.stageSegmentation = None
    text = _stage_result(logic, p, ehr)                                                       # no CT: not predicted
    assert text.startswith("7 is not in the EHR table") and "1 id differs only by leading zeros (7 vs 007)" in text
    assert text.endswith("No prediction is shown.")
    assert "leading zeros" not in _stage_result(logic, p, "008,True,False,False,fusion,0.9,0.1,I,computed\n")


def test_stage_patient_spelt_otherwise_is_named_as_the_cli_names_it(load_module, mrml_scene, phantom_nodes,
                                                                     tmp_path):
    """QA: the panel's messages named only ids differing by leading zeros (leading_zero_hint), while lungai stage
    predict names case, separators, padding and look-alike dashes too (lungai.io.tables.id_spelling_hint): a patient
    typed R01_001 (the NSCLC-Radiogenomics EHR writes R01-001) got "check the patient id" and no hint."""
    logic, p = _stage_logic(load_module, tmp_path, "R01-001,60\nAMC-001,70\n", phantom_nodes, "R01_001")
    ehr = "R01-001,True,False,False,fusion,0.9,0.1,I,computed\nAMC-001,True,False,False,fusion,0.9,0.1,I,computed\n"
    text = _stage_result(logic, p, ehr + "R01_001,False,False,True,fusion,0.3,0.7,II,computed\n")   # CT alone
    assert "Warning: R01_001 is not in the EHR table" in text
    assert "1 id differs only in letter case or separators (R01_001 vs R01-001)" in text
    p.stageVolume = p.stageSegmentation = None
    for typed, hint in (("R01_001", "1 id differs only in letter case or separators (R01_001 vs R01-001)"),
                        ("r01_1", "1 id differs only in separators, letter case or the zeros padding their numbers "
                                  "(r01_1 vs R01-001)"),
                        ("R01-1", "1 id differs only in the zeros padding their numbers (R01-1 vs R01-001)"),
                        ("AMC\u2013001", "1 id differs only in its dash (AMC\u2013001 (U+2013) vs AMC-001)")):
        p.stagePatient = typed
        text = _stage_result(logic, p, ehr)                                                  # not predicted
        assert text.startswith(f"{typed} is not in the EHR table") and hint in text, text
        assert text.endswith("No prediction is shown.")


def test_stage_notes_of_the_patient_are_shown(load_module, mrml_scene, phantom_nodes, tmp_path):
    """predictions.csv's notes (EHR values not seen in training, an all-zero Grad-CAM) are shown with the result."""
    logic, p = _stage_logic(load_module, tmp_path, "P0,60\n", phantom_nodes, "P0")
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    job.outputs.mkdir(parents=True)
    note = ("EHR 'smoking' = 'Heavy' not a trained level: treated as missing; "
            "Grad-CAM: no positive CT evidence for class I")
    (job.outputs / "predictions.csv").write_text(STAGE_HEADER.rstrip("\n") + ",notes\n"
                                                 + f"P0,True,False,True,fusion,0.9,0.1,I,computed,{note}\n",
                                                 encoding="utf-8")
    text = logic.loadStage(p, job)
    assert text.startswith("P0: predicted I") and f"Note: {note}" in text
    assert "Note:" not in _stage_result(logic, p, "P0,True,False,True,fusion,0.9,0.1,I,computed\n")


# a locked stage model's card as `lungai stage train` records it: 10 stage I, 4 stage II, 4 stage III training patients
# and the selected model's inner-CV recall per class (stage_model.json's training_cohort / selection)
IMBALANCED_STAGE_CARD = {"classes": ["I", "II", "III"], "selected": "logreg",
                         "training_cohort": {"n_patients": 18, "class_counts": {"I": 10, "II": 4, "III": 4}},
                         "selection": {"candidates": {"logreg": {"inner_recall": {"I": 0.9, "II": 0.25,
                                                                                  "III": 0.5}}}}}


def test_stage_result_says_the_models_training_class_balance(load_module, mrml_scene, tmp_path):
    """QA balance63: lungai stage predict prints the model's training patients per class (with the selected model's
    inner-CV recall) and names its rare classes (lungai.fusion.balance.class_balance_lines), but the panel's result
    showed neither: a panel user could not see that a stage III patient's model learnt stage III from 4 patients."""
    import json

    logic, p = _stage_logic(load_module, tmp_path, "P0,60\n", patient="P0")
    (tmp_path / "model" / "stage_model.json").write_text(json.dumps(IMBALANCED_STAGE_CARD), encoding="utf-8")
    text = _stage_result(logic, p, "P0,True,False,False,logreg,0.9,0.1,I,computed\n")
    assert text.startswith("P0: predicted I")
    assert ("\nTraining patients per class (share; the selected model's recall in the inner CV: the share of the "
            "class's patients it predicted right): I 10 (56 %, recall 0.90), II 4 (22 %, recall 0.25), III 4 (22 %, "
            "recall 0.50)\n") in text
    assert ("\nNote: Rare in training: II (4 patients, recall 0.25), III (4 patients, recall 0.50), against 10 of I. "
            "The model learnt these classes from few patients and may lean towards I") in text
    balanced = {**IMBALANCED_STAGE_CARD, "training_cohort": {"class_counts": {"I": 10, "II": 9, "III": 8}}}
    (tmp_path / "model" / "stage_model.json").write_text(json.dumps(balanced), encoding="utf-8")
    text = _stage_result(logic, p, "P0,True,False,False,logreg,0.9,0.1,I,computed\n")
    assert "I 10 (37 %, recall 0.90), II 9 (33 %, recall 0.25), III 8 (30 %, recall 0.50)" in text
    assert "Rare in training" not in text


def test_stage_result_says_why_a_baseline_has_no_top_genes_nor_grad_cam(load_module, mrml_scene, tmp_path):
    """QA balance63: a locked model whose selected model is a plain baseline (NSCLC-Radiogenomics: logreg / MLP beat
    the fusion) predicts without gene Shapley values or Grad-CAM - they explain the fusion network; lungai stage
    predict --explain says so on the console (the panel's log box), but the panel's result showed no genes, no
    Grad-CAM and no word why."""
    logic, p = _stage_logic(load_module, tmp_path, "P0,60\n", patient="P0")
    text = _stage_result(logic, p, "P0,True,False,False,mlp,0.9,0.1,I,computed\n")
    assert ("\nNote: no explanations written: gene Shapley values and Grad-CAM explain the fusion network, but the "
            "predictions come from mlp (the locked model's selected model: it beat the fusion in the inner CV); "
            "`lungai stage predict --use fusion --explain` predicts and explains with the fusion network") in text
    assert p.gradcamVolume is None
    assert "no explanations" not in _stage_result(logic, p, "P0,True,False,False,fusion,0.9,0.1,I,computed\n")


def test_stage_result_says_why_the_fusion_wrote_no_top_genes_nor_grad_cam(load_module, mrml_scene, tmp_path):
    """QA panels64: a locked model whose selected model is the fusion network (EHR + RNA), given only an EHR table:
    lungai stage predict --explain writes no top_genes_per_patient.csv and no Grad-CAM and says why on the console
    (the panel's log box only); the panel's result showed neither and no word why.  Now it repeats the command's
    notes, in the panel's words (lungai.scene.results.stage_explanation_notes).  A real child process."""
    import json

    import pandas as pd
    from lungai.fusion.synthetic import make_cohort
    from stage_helpers import stage_cli

    paths = make_cohort(tmp_path / "cohort", n=30, seed=5, n_genes=20, module_size=5, ct_shape=(16, 16, 16),
                        ct_spacing=(8.0, 8.0, 5.0))
    model = tmp_path / "model"
    assert stage_cli(["train", "--ehr", paths["ehr"], "--rna", paths["rna"], "--label", "stage", "-o", model,
                      "--epochs", 2, "--top-k", 10, "--neighbours", 3, "--inner-folds", 2, "--baselines", "logreg",
                      "--modalities", "ehr,rna"]) == 0
    card = json.loads((model / "stage_model.json").read_text(encoding="utf-8"))
    card["selected"] = "fusion"           # as on a cohort where the fusion beat the baselines: the panel runs it
    (model / "stage_model.json").write_text(json.dumps(card), encoding="utf-8")
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.stageModelDirectory, p.ehrFile = model, paths["ehr"]
    p.stagePatient = str(pd.read_csv(paths["ehr"], dtype=str).iloc[0, 0])
    job = logic.run(logic.startStage, p, timeout=600)
    printed = [line for line in job.process.lines if line.startswith("note: no ")]
    text = logic.loadStage(p, job)
    assert text.startswith(f"{p.stagePatient}: predicted ") and "Top genes" not in text and p.gradcamVolume is None
    assert ("\nNote: no gene Shapley values written (top_genes_per_patient.csv): no patient was given RNA-seq the "
            "model could use (RNA table: a matrix with the patients of the EHR table / patient id, spelled as there)"
            in text), (printed, text)
    assert "\nNote: no Grad-CAM written: the model's CT branch was not trained" in text, (printed, text)
    assert "--rna" not in text and "manifest" not in text
    assert len(printed) == 2            # the command's two notes, no more, no fewer (each said once)


LUNG1_003_ROIS = ["Lung-Right", "Lung-Left", "Heart", "Esophagus", "Spinal-Cord", "gtv-3", "gtv-2", "GTV-1"]


def test_stage_ct_branch_uses_the_primary_gtv_whatever_the_segment_order(load_module, mrml_scene, small_phantom,
                                                                         tmp_path):
    """QA: the stage CT branch exported the FIRST tumour segment; LUNG1-003's RTSTRUCT (as SlicerRT loads it) has
    gtv-3, gtv-2 before GTV-1, so gtv-3 (9 ml) was the tumour.  Segments named in that real ROI order: GTV-1 (the
    primary) is exported and the result text says so."""
    from lungai import mrml
    from lungai.synthetic import labels as L

    vol = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "phantom CT")
    lab = sitk.GetArrayFromImage(small_phantom.labels)
    gtv1 = L.tumour_mask(lab)
    boxes = {}
    for k, name in enumerate(LUNG1_003_ROIS):
        mask = np.zeros(lab.shape, np.uint8)
        if name == "GTV-1":
            mask[gtv1] = 1
        else:   # a small box of its own elsewhere
            mask[2 + k:4 + k, 2:5, 2:5] = 1
        boxes[name] = mask > 0
        img = sitk.GetImageFromArray(mask)
        img.CopyInformation(small_phantom.labels)
        seg = mrml.mask_to_segment(mrml_scene, img, name, seg_node=None if k == 0 else seg,
                                   reference_volume_node=vol)[0]
    assert mrml.segment_names(seg) == LUNG1_003_ROIS
    logic = load_module("MultimodalPredict").MultimodalPredictLogic()
    p = logic.getParameterNode()
    p.stageModelDirectory, p.stageVolume, p.stageSegmentation, p.stagePatient = _stage_model(tmp_path / "model"), vol, \
        seg, "P1"
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    assert list(job.fileNames.values()) == ["phantom CT", f"'GTV-1' ({seg.GetName()})"]
    exported = sitk.GetArrayFromImage(sitk.ReadImage(str(job.outputs.parent / "tumour.nrrd"))) > 0
    np.testing.assert_array_equal(exported, boxes["GTV-1"])
    job.outputs.mkdir()
    (job.outputs / "predictions.csv").write_text("patient_id,ehr,rna,ct,model,p_I,p_II,predicted,status\n"
                                                 "P1,False,False,True,fusion,0.2,0.8,II,computed\n", encoding="utf-8")
    text = logic.loadStage(p, job)
    assert "tumour: GTV-1 (primary of 3 GTVs: GTV-1, gtv-2, gtv-3)" in text.splitlines()


def test_stage_typed_patient_not_predicted_shows_no_other_patient(load_module, mrml_scene, tmp_path):
    """QA: a typed id not among the predicted patients (typo, absent) showed the FIRST patient's prediction and a
    table of every patient.  Now: a message naming the id and example ids, no prediction, no table; an id that
    differs only by case / surrounding spaces is that patient (also in the CT manifest: the EHR's spelling)."""
    logic, p = _stage_logic(load_module, tmp_path, "R01-001,60\nR01-002,70\n")
    rows = "R01-001,True,False,False,fusion,0.9,0.1,I,computed\nR01-002,True,False,False,fusion,0.3,0.7,II,computed\n"

    def load(patient):
        p.stagePatient = patient
        return _stage_result(logic, p, rows)

    assert load("R01-002").startswith("R01-002: predicted II")
    assert p.stageOutputTable.GetTable().GetNumberOfRows() == 1
    text = load("R01-999")
    assert text == ("R01-999 is not in the EHR table: check the id; ids are e.g. R01-001, R01-002. "
                    "No prediction is shown.")
    assert p.stageOutputTable is None and "R01-001: predicted" not in text
    assert load("  r01-002 ").startswith("R01-002: predicted II\n  P(II) = 70 %")
    table = p.stageOutputTable.GetTable()
    assert table.GetNumberOfRows() == 1 and table.GetValue(0, 0).ToString() == "R01-002"
    assert load("").startswith("2 patients predicted; type a patient id") and p.stageOutputTable is None
    from lungai.scene import results

    assert results.match_stage_patient("lung1-003", ["LUNG1-003", "Lung1-003"]) is None   # ambiguous: no guess
    assert results.match_stage_patient(" P1 ", ["P1", "p1"]) == "P1"


def test_stage_grad_cam_of_an_earlier_run_is_never_shown_with_another_result(load_module, mrml_scene, phantom_nodes,
                                                                             tmp_path):
    """QA: the Grad-CAM volume of an earlier stage run stayed in the scene (and in the slice views, named for the
    earlier patient) when the current run showed no prediction (patient not found), had no Grad-CAM for its
    patient, or failed.  Now it is removed; a new patient's map reuses the node under the new patient's name."""
    logic, p = _stage_logic(load_module, tmp_path, "P0,60\nP1,70\n", phantom_nodes, "P1")
    rows = "P0,True,False,True,fusion,0.9,0.1,I,computed\nP1,True,False,True,fusion,0.3,0.7,II,computed\n"

    def run(patient, cams=("P0", "P1"), fail=False):
        p.stagePatient = patient
        job = logic.startStage(p)
        job.process.prepare()                 # the export: the job's first polls in the panel
        if fail:                              # the command failed: the panel loads nothing
            job.finish()
            return None
        (job.outputs / "gradcam").mkdir(parents=True)
        (job.outputs / "predictions.csv").write_text(STAGE_HEADER + rows, encoding="utf-8")
        for pid in cams:
            cam = sitk.Cast(sitk.ReadImage(str(job.outputs.parent / "tumour.nrrd")), sitk.sitkFloat32) * 0.5
            sitk.WriteImage(cam, str(job.outputs / "gradcam" / f"{pid}_gradcam.nii.gz"))
        return logic.loadStage(p, job)

    def grad_cams():
        return [n.GetName() for n in mrml_scene.GetNodesByClass("vtkMRMLScalarVolumeNode") if "Grad-CAM" in n.GetName()]

    run("P1")
    assert p.gradcamVolume is not None and grad_cams() == ["P1 Grad-CAM"]
    first = p.gradcamVolume
    assert run("P9").startswith("P9 is not in the EHR table")          # no prediction shown: no Grad-CAM either
    assert p.gradcamVolume is None and grad_cams() == [] and first.GetScene() is None
    run("P1")
    assert run("P0", cams=("P1",)).startswith("P0: predicted I")      # none for this patient: the old one goes
    assert p.gradcamVolume is None and grad_cams() == []
    run("P1")
    run("P0")                                                          # another patient's map: renamed
    assert grad_cams() == ["P0 Grad-CAM"] and p.gradcamVolume.GetName() == "P0 Grad-CAM"
    run("P1", fail=True)                                               # a new run that fails shows no old map
    assert p.gradcamVolume is None and grad_cams() == []


def test_stage_run_never_deletes_the_users_nodes_picked_as_outputs(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA: the Grad-CAM selector lists every scalar volume and the output table selector every table: a run removed
    whatever they held (the CT picked as Grad-CAM output; the user's table when the typed patient was not found).
    Only nodes the panel made (tagged LungAI.madeBy) are removed; the user's are dropped from the selector."""
    from lungai.scene.nodes import MADE_BY_TAG

    logic, p = _stage_logic(load_module, tmp_path, "P0,60\nP1,70\n", phantom_nodes, "P1")
    ct = phantom_nodes[0]
    rows = "P0,True,False,True,fusion,0.9,0.1,I,computed\nP1,True,False,True,fusion,0.3,0.7,II,computed\n"
    mine = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "my notes")
    p.gradcamVolume, p.stageOutputTable = ct, mine        # picked in the output selectors
    p.stagePatient = "P9"
    assert _stage_result(logic, p, rows).startswith("P9 is not in the EHR table")
    assert ct.GetScene() is mrml_scene and mine.GetScene() is mrml_scene        # kept
    assert p.gradcamVolume is None and p.stageOutputTable is None                 # no longer the outputs
    p.stagePatient = "P1"
    _stage_result(logic, p, rows)                                 # the panel's own table: tagged, then removed
    made = p.stageOutputTable
    assert made is not None and made is not mine and made.GetAttribute(MADE_BY_TAG) == "lungai stage predict"
    p.stagePatient = "P9"
    _stage_result(logic, p, rows)
    assert made.GetScene() is None and p.stageOutputTable is None and mine.GetScene() is mrml_scene


def test_stage_run_never_writes_into_the_users_nodes_picked_as_outputs(load_module, mrml_scene, phantom_nodes,
                                                                       tmp_path):
    """Review: a table of the user's picked as the stage output was overwritten with the predictions and tagged
    LungAI.madeBy, so the next run whose patient was not found deleted it; likewise the CT picked as the Grad-CAM
    output.  A run makes its own nodes instead; the user's stay untouched and in the scene."""
    from lungai.scene.nodes import MADE_BY_TAG

    logic, p = _stage_logic(load_module, tmp_path, "P0,60\nP1,70\n", phantom_nodes, "P1")
    rows = "P0,True,False,True,fusion,0.9,0.1,I,computed\nP1,True,False,True,fusion,0.3,0.7,II,computed\n"
    mine = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "my notes")
    mine.AddColumn().SetName("my_column")
    p.stageOutputTable = mine
    _stage_result(logic, p, rows)
    made = p.stageOutputTable
    assert made is not mine and made.GetAttribute(MADE_BY_TAG) == "lungai stage predict"
    assert mine.GetAttribute(MADE_BY_TAG) is None and mine.GetName() == "my notes"
    assert mine.GetTable().GetNumberOfColumns() == 1 and mine.GetTable().GetColumnName(0) == "my_column"
    p.stagePatient = "P9"
    _stage_result(logic, p, rows)
    assert mine.GetScene() is mrml_scene and made.GetScene() is None
    import SimpleITK as sitk

    ct = phantom_nodes[0]
    ct_name, ct_range = ct.GetName(), ct.GetImageData().GetScalarRange()
    p.stagePatient, p.gradcamVolume = "P1", ct           # the CT picked as the Grad-CAM output
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    (job.outputs / "gradcam").mkdir(parents=True)
    (job.outputs / "predictions.csv").write_text(STAGE_HEADER + rows, encoding="utf-8")
    cam = sitk.Cast(sitk.ReadImage(str(job.outputs.parent / "tumour.nrrd")), sitk.sitkFloat32) * 0.5
    sitk.WriteImage(cam, str(job.outputs / "gradcam" / "P1_gradcam.nii.gz"))
    logic.loadStage(p, job)
    assert p.gradcamVolume is not ct and p.gradcamVolume.GetName() == "P1 Grad-CAM"
    assert ct.GetName() == ct_name and ct.GetAttribute(MADE_BY_TAG) is None
    assert ct.GetImageData().GetScalarRange() == ct_range


def test_stage_run_keeps_the_outputs_the_user_renamed_or_edited(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA panels64: the user keeps patient P0's stage result by renaming the panel's "Stage predictions" table
    ("P0 stage") and "P0 Grad-CAM" volume (as the other panels' renamed outputs are kept): the next run for P1 wrote
    P1's prediction into "P0 stage" and P1's map into the renamed Grad-CAM (renaming it back), and a run whose
    patient was not found deleted both from the scene.  A renamed or edited stage output is the user's now
    (lungai.scene.stage.made_node_or_none): never written into, renamed nor removed."""
    import SimpleITK as sitk

    logic, p = _stage_logic(load_module, tmp_path, "P0,60\nP1,70\n", phantom_nodes, "P0")
    rows = "P0,True,False,True,fusion,0.9,0.1,I,computed\nP1,True,False,True,fusion,0.3,0.7,II,computed\n"

    def run(patient):
        p.stagePatient = patient
        job = logic.startStage(p)
        job.process.prepare()                 # the export: the job's first polls in the panel
        (job.outputs / "gradcam").mkdir(parents=True)
        (job.outputs / "predictions.csv").write_text(STAGE_HEADER + rows, encoding="utf-8")
        cam = sitk.Cast(sitk.ReadImage(str(job.outputs.parent / "tumour.nrrd")), sitk.sitkFloat32) * 0.5
        for pid in ("P0", "P1"):
            sitk.WriteImage(cam, str(job.outputs / "gradcam" / f"{pid}_gradcam.nii.gz"))
        return logic.loadStage(p, job)

    run("P0")
    table, cam = p.stageOutputTable, p.gradcamVolume
    assert table.GetTable().GetValue(0, 0).ToString() == "P0" and cam.GetName() == "P0 Grad-CAM"
    table.SetName("P0 stage")
    cam.SetName("P0 Grad-CAM (kept)")
    run("P1")
    assert p.stageOutputTable is not table and p.gradcamVolume is not cam
    assert p.stageOutputTable.GetTable().GetValue(0, 0).ToString() == "P1" and p.gradcamVolume.GetName() == "P1 Grad-CAM"
    assert table.GetName() == "P0 stage" and table.GetTable().GetValue(0, 0).ToString() == "P0"
    assert cam.GetName() == "P0 Grad-CAM (kept)"
    edited = p.stageOutputTable                    # the user corrects a cell of P1's table: theirs too
    edited.GetTable().GetColumn(edited.GetTable().GetNumberOfColumns() - 1).SetValue(0, "checked by Dr X")
    edited.Modified()
    run("P9")                                      # not found: the panel's own outputs removed, never the user's
    assert p.stageOutputTable is None and p.gradcamVolume is None
    assert all(node.GetScene() is mrml_scene for node in (table, cam, edited))
    assert table.GetTable().GetValue(0, 0).ToString() == "P0"


def test_stage_patient_case_joins_the_ehr_in_the_ct_manifest(load_module, mrml_scene, phantom_nodes, tmp_path):
    """With a CT the typed id goes into the CT manifest as the EHR table spells it, so the CLI (exact ids) joins
    the CT with the patient's EHR row."""
    import csv

    logic, p = _stage_logic(load_module, tmp_path, "LUNG1-003,60\n", phantom_nodes, " lung1-003")
    job = logic.startStage(p)
    job.process.prepare()                 # the export: the job's first polls in the panel
    try:
        args = job.process.args
        with open(args[args.index("--ct") + 1], newline="", encoding="utf-8") as f:
            assert [r["id"] for r in csv.DictReader(f)] == ["LUNG1-003"]
    finally:
        job.finish()
    # no EHR table: the RNA table's spelling (genes x patients, as the CLI reads it)
    (tmp_path / "rna.csv").write_text("gene,R01-001,R01-002\n" + "".join(f"G{i},0.{i},0.{i + 1}\n" for i in range(5)),
                                      encoding="utf-8")
    p.ehrFile, p.rnaFile, p.stagePatient = None, tmp_path / "rna.csv", "r01-001"
    assert logic.stagePatientId(p) == "R01-001"


def test_stage_ct_given_but_model_without_ct_is_warned(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA: the CLI warns 'the CTs are not used' (model trained without CT); the panel said nothing."""
    logic, p = _stage_logic(load_module, tmp_path, "P1,60\n", phantom_nodes, "P1")
    for ct_used, warned in (("False", True), ("True", False)):
        text = _stage_result(logic, p, f"P1,True,False,{ct_used},logreg,0.3,0.7,II,computed\n")
        assert ("Warning: the CT is not used: logreg was not trained with CT" in text) == warned, text
        assert "is not in the" not in text


def test_lungai_seg_training_resumes_an_interrupted_run_on_label_maps(load_module, tmp_path, capsys):
    """QA: a training killed or cancelled in the panel could not be resumed (train-seg refuses the folder of an
    interrupted run without --resume, which the panel never passed: the training was lost), and masks that are
    label maps (1 = GTV, 3 = lungs) could not be trained on (no --label).  The panel's commands, run by the real
    CLI (tiny sizes set in the Advanced options): --label from *Tumour label*, --resume on a folder left by an
    interrupted run."""
    import json

    from lungai.cli import main
    from seg_helpers import TINY_CLI, tiny_cases, write_cases

    images, masks = write_cases(tiny_cases(6, seed=500), tmp_path / "data")
    for f in sorted(masks.iterdir())[:2]:                         # GTV + lungs label maps
        m = sitk.ReadImage(str(f))
        arr = sitk.GetArrayFromImage(m)
        arr[(arr == 0) & (np.arange(arr.shape[2]) < 5)] = 3
        lab = sitk.GetImageFromArray(arr)
        lab.CopyInformation(m)
        sitk.WriteImage(lab, str(f))
    tiny = [a if TINY_CLI[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(TINY_CLI)]
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    for flag, value in zip(tiny[::2], tiny[1::2]):                # tiny sizes set in the panel (Advanced)
        field = module.trainField(flag[2:].replace("-", "_"))
        setattr(p, field, type(getattr(p, field))(value))
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, tmp_path / "model"
    assert p.trainLabel == 0 and logic.trainingInputProblem(p) is None and not logic.trainingResumes(p)
    args = logic.startTraining(p).process.args
    assert "--label" not in args and "--resume" not in args
    assert main(args) == 2 and "--label 1" in capsys.readouterr().err      # several labels: say which
    p.trainLabel = 1
    first = logic.startTraining(p).process.args
    assert first[first.index("--label") + 1] == "1" and "--resume" not in first
    assert main(first + ["--member", "0"]) == 0       # stops after member 0, as a killed run: checkpoints only
    assert not (tmp_path / "model" / "model.json").exists()
    p.trainLabel = 0                  # QA D4: the panel's words for the label, not the CLI's "--label None"
    problem = logic.trainingInputProblem(p)
    assert problem.startswith("Cannot resume:") and "--label" not in problem and "None" not in problem, problem
    assert "Tumour label 1 then, 0 (any nonzero voxel) now" in problem, problem
    p.trainLabel = 1
    assert main(first) == 2 and "add --resume" in capsys.readouterr().err   # what the panel used to run
    assert logic.trainingInputProblem(p) is None and logic.trainingResumes(p)
    assert str(tmp_path / "model") in logic.resumeMessage(p.trainOutput)
    resumed = logic.startTraining(p).process.args
    assert resumed == first + ["--resume"]
    assert main(resumed) == 0
    doc = json.loads((tmp_path / "model" / "model.json").read_text(encoding="utf-8"))
    assert doc["training"]["case_sources"]["label"] == 1 and "calibration" in doc
    assert logic.trainingResumes(p) and "nothing to do" in logic.trainingInputProblem(p)    # train-seg's rule
    with pytest.raises(ValueError, match="nothing to do"):
        logic.startTraining(p)


def test_start_training_refuses_an_output_folder_train_seg_refuses(load_module, tmp_path, capsys):
    """QA: Start training was enabled for an output folder holding a user's file, which train-seg then refused
    ("-o ... is not empty ... holds no train-seg model or checkpoints"): the panel asks train-seg's own check
    (lungai.cli.seg.check_train_output) and says what to do."""
    from lungai.cli import main

    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    for folder in (images, masks, out):
        folder.mkdir()
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, out
    assert logic.trainingInputProblem(p) is None                   # an empty folder: fine
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    problem = logic.trainingInputProblem(p)                        # the panel refuses before launching ...
    assert problem == (f"The output folder {out} is not empty (notes.txt) and holds no train-seg model or "
                       "checkpoints: choose a new (or empty) output folder for the model"), problem
    with pytest.raises(ValueError, match="is not empty"):
        logic.startTraining(p)
    assert main(logic.trainingCommand(p)) == 2                     # ... what train-seg refuses (its own check)
    assert "is not empty (notes.txt) and holds no train-seg model" in capsys.readouterr().err


def test_unreadable_folders_are_said_not_raised(load_module, mrml_scene, tmp_path, monkeypatch):
    """QA: an output / model folder that cannot be read (permissions) raised PermissionError from
    trainingInputProblem / modelFolderProblem, i.e. from updateButtons on every scene event: said instead."""
    import os

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    images, masks, out, model = (tmp_path / n for n in ("images", "masks", "out", "model"))
    for folder in (images, masks, out, model):
        folder.mkdir()
    (model / "model.json").write_text("{}", encoding="utf-8")
    denied = (out, model / "model.json")

    def refuse(real):
        def call(self_or_path, *args, **kwargs):
            if pathlib.Path(self_or_path) in denied:
                raise PermissionError(13, "Permission denied", str(self_or_path))
            return real(self_or_path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "scandir", refuse(os.scandir))                      # as root, chmod denies nothing
    monkeypatch.setattr(pathlib.Path, "iterdir", refuse(pathlib.Path.iterdir))
    monkeypatch.setattr(pathlib.Path, "read_text", refuse(pathlib.Path.read_text))
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, out
    assert logic.trainingInputProblem(p) == f"cannot read {out}: Permission denied"
    p.model, p.mode, p.modelDirectory = "folder", "automatic", model
    p.inputVolume = _small_ct(mrml_scene, "CT", (8, 8, 4), (0.0, 0.0, 0.0))
    # model.json is read by lungai.model_files.read_json (one JSON policy): its OSError is an InputError naming it
    said = f"{model / 'model.json'} cannot be read (Permission denied)"
    assert logic.modelFolderProblem(model).startswith(said)
    assert logic.segmentationInputProblem(p).startswith(said)


def test_the_output_folder_check_reads_a_few_entries_only(tmp_path, monkeypatch):
    """QA: check_train_output resolved every entry of -o (20,000 files: 1.5 s), on every point moved in the panel:
    it stops at the few entries it names, resolves only links; a folder of arrays files train-seg keeps stays
    accepted."""
    from lungai.cli.seg import check_train_output
    from lungai.errors import InputError

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.npz").write_bytes(b"")
    outside = tmp_path / "b.npz"
    outside.write_bytes(b"")
    (out / "link.npz").symlink_to(outside)
    (out / ".hidden").write_bytes(b"")
    check_train_output(out, keep=(out / "a.npz", outside))               # only train-seg's arrays files: fine
    for i in range(3000):
        (out / f"f{i:04d}").write_bytes(b"")
    calls = []
    real = pathlib.Path.resolve
    monkeypatch.setattr(pathlib.Path, "resolve", lambda self, *a, **k: calls.append(self) or real(self, *a, **k))
    with pytest.raises(InputError) as e:
        check_train_output(out, keep=(out / "a.npz", outside))
    assert len(calls) <= 4, len(calls)
    assert re.fullmatch(rf"-o {re.escape(str(out))} is not empty \(((f\d{{4}}|a\.npz|link\.npz), ){{4}}\S+ and more\) "
                        "and holds no train-seg model or checkpoints", e.value.problem), e.value.problem
    assert "a.npz" not in e.value.problem and "link.npz" not in e.value.problem


def test_apply_refuses_a_model_folder_lungai_segment_refuses(load_module, mrml_scene, tmp_path):
    """QA: Apply was enabled for a model folder with no model.json, or with one of an unfinished training ("status":
    "calibrating"), which lungai segment then refused: the panel asks its checks (lungai.seg.model_meta)."""
    import json

    from lungai.errors import InputError
    from lungai.seg.model_io import load_model
    from lungai.seg.model_meta import check_model_folder

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.model, p.mode = "folder", "automatic"
    p.inputVolume = _small_ct(mrml_scene, "CT", (8, 8, 4), (0.0, 0.0, 0.0))
    model = tmp_path / "model"
    model.mkdir()
    p.modelDirectory = model
    problem = logic.segmentationInputProblem(p)
    assert problem.startswith(f"{model} is not a LungAI segmentation model (no model.json): choose a folder written "
                              "by Start training"), problem
    (model / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "status": "calibrating"}), encoding="utf-8")
    problem = logic.segmentationInputProblem(p)
    assert problem.startswith(f"the model in {model} is incomplete (model.json status 'calibrating')"), problem
    assert "press Start training on that folder to resume" in problem
    with pytest.raises(InputError, match="is incomplete"):        # what lungai segment says
        load_model(model)
    # QA: a member file missing, or method "ensemble" for a 1-member model: lungai segment refused them at once, Apply
    # was enabled.  The panel asks segment's own check (lungai.seg.model_meta.check_model_folder, no weights loaded),
    # naming its Method choice where the CLI names --method
    one = {"format": "lungai-seg-1", "calibration": {}, "member_files": ["member_0.safetensors"],
           "config": {"dropout": 0.1}}
    (model / "model.json").write_text(json.dumps(one), encoding="utf-8")
    problem = logic.segmentationInputProblem(p)
    assert problem == (f"segmentation member weights {model / 'member_0.safetensors'} is missing: copy the whole model "
                       "folder"), problem
    (model / "member_0.safetensors").write_bytes(b"")       # present (its contents are read by lungai segment)
    assert logic.segmentationInputProblem(p) is None          # method auto: MC dropout for a 1-member model
    p.method = "ensemble"
    problem = logic.segmentationInputProblem(p)
    assert problem.startswith("the model has 1 member, so the ensemble method gives no meaningful confidence"), problem
    assert "set Uncertainty method to auto or mc-dropout" in problem and "--method" not in problem
    with pytest.raises(InputError, match="1 member") as err:         # what lungai segment says, before reading the CT
        check_model_folder(model, "ensemble")
    assert "--method mc-dropout" in err.value.fix
    p.method = "mc-dropout"
    assert logic.segmentationInputProblem(p) is None
    (model / "model.json").write_text(json.dumps(dict(one, config={"dropout": 0.0})), encoding="utf-8")
    p.method = "auto"
    problem = logic.segmentationInputProblem(p)
    assert "no dropout" in problem and "Dropout (--dropout, Training: Advanced) above 0" in problem, problem
    assert "Ensemble members (--members) 2 or more" in problem and "Members 2" not in problem, problem
    # QA: a cancelled training (only checkpoints/) chosen as the model said "not a LungAI segmentation model (no
    # model.json)": it is a training to resume, as the "calibrating" one
    cancelled = tmp_path / "cancelled"
    (cancelled / "checkpoints").mkdir(parents=True)
    p.modelDirectory = cancelled
    problem = logic.segmentationInputProblem(p)
    assert problem.startswith(f"{cancelled} holds a training that was stopped (cancelled or killed) before it saved a "
                              "model: to finish it, choose"), problem
    assert "press Start training on that folder to resume" in problem and "no model.json" not in problem


def test_apply_refuses_a_model_choice_lungai_segment_refuses(load_module, mrml_scene, tmp_path):
    """QA (review of 5d1a136): Apply was enabled for a model-choice folder lungai segment refused (one model, "models"
    not a list, an unknown rule, a bad route_volume_ml); a choice's 1-member model with method ensemble was not named
    and got the CLI's fix (its text did not match the panel's lookup): the panel names the model and its own
    Uncertainty method choice."""
    import json

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.model, p.mode = "folder", "automatic"
    p.inputVolume = _small_ct(mrml_scene, "CT", (8, 8, 4), (0.0, 0.0, 0.0))
    for name, members in (("two", 2), ("one", 1)):
        (tmp_path / name).mkdir()
        files = [f"member_{k}.safetensors" for k in range(members)]
        (tmp_path / name / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "member_files": files,
                                                                "config": {"dropout": 0.1}}), encoding="utf-8")
        for f in files:
            (tmp_path / name / f).write_bytes(b"")
    choice = tmp_path / "choice"
    choice.mkdir()
    p.modelDirectory = choice

    def with_doc(**doc):
        (choice / "model.json").write_text(json.dumps({"format": "lungai-seg-choice-1", **doc}), encoding="utf-8")
        return logic.segmentationInputProblem(p)

    assert with_doc(models=["two", "one"]) is None
    p.method = "ensemble"
    problem = with_doc(models=["two", "one"])
    assert problem.startswith(f"the model 'one' of the model choice in {choice} ({tmp_path / 'one'}): the model has 1 "
                              "member"), problem
    assert "set Uncertainty method to auto or mc-dropout" in problem and "--method" not in problem, problem
    p.method = "auto"
    for doc, said in (({"models": ["two"]}, "a model choice needs two or more"),
                      ({"models": "two, one"}, "not a list of model names"),
                      ({"models": ["two", "one"], "rule": "the nicest"}, "unknown rule"),
                      ({"models": ["two", "one"], "rule": "second model when the first finds a large tumour",
                        "route_volume_ml": "15"}, "route_volume_ml"),
                      ({"models": ["two", "one"], "rule": "second model when the first finds a large tumour",
                        "route_volume_ml": 15, "route_unsure_max_ml": 5}, "route_unsure_max_ml")):
        problem = with_doc(**doc)
        assert problem is not None and said in problem, (doc, problem)


def test_lungai_seg_training_advanced_options(load_module, tmp_path, capsys, monkeypatch):
    """QA: the panel could set only architecture, members and epochs of train-seg's recipe.  Its Advanced options
    have train-seg's own defaults (nothing passed while unchanged), a changed option is passed, bad combinations
    are refused before launching (train-seg's own checks, named with the fix), and a resume whose options differ
    from those the interrupted run recorded is refused with each difference named."""
    from lungai.cli import main

    from LungAICommon import commands

    images, masks = tmp_path / "images", tmp_path / "masks"       # 6 small CTs with a cube tumour each
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        ct = rng.normal(-800, 50, (12, 32, 32)).astype(np.int16)
        mask = np.zeros(ct.shape, np.uint8)
        mask[4:8, 12:20, 12:20] = 1
        ct[mask > 0] = 40
        for arr, folder in ((ct, images), (mask, masks)):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing((1.0, 1.0, 2.0))
            sitk.WriteImage(img, str(folder / f"P{i}_ct.nii.gz"))
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, tmp_path / "model"
    defaults = logic.trainingOptions(p)
    assert set(defaults) == set(commands.PANEL_TRAIN_OPTIONS)
    cli = commands.train_seg_options()
    assert {o: commands.train_option_value(o, v) for o, v in defaults.items()} == {o: cli[o].default for o in defaults}
    initial = {module.trainField(o): v for o, v in defaults.items()}
    assert (p.trainArch, p.trainMembers, p.trainEpochs, p.trainLrSchedule, p.trainAugment) == (
        "unet", 3, 20, "constant", "basic")                          # as `lungai train-seg --help` says
    assert logic.trainingInputProblem(p) is None
    assert logic.trainingCommand(p) == ["train-seg", "--images", str(images), "--masks", str(masks),
                                        "-o", str(tmp_path / "model")]
    # bad combinations: refused with train-seg's own message, the Train button's tooltip
    bad = [(dict(trainDeepSupervision=True), "deep supervision needs --arch dynunet"),
           (dict(trainPatch="50,48,16"), "is not divisible by 8"),
           (dict(trainPatch="48,48"), "is not 3 comma-separated numbers"),
           # QA: each list option's own example (not the seed point's); a negative list reaches train-seg's check
           # as one token --spacing=-1,1,2 (two tokens: argparse's "expected one argument")
           (dict(trainSpacing="1,1"), "e.g. --spacing 1,1,2"),
           (dict(trainPatch="48,48"), "e.g. --patch 48,48,16"),
           (dict(trainInferPatch="96,96"), "e.g. --infer-patch 96,96,48"),
           (dict(trainSpacing="-1,1,2"), "every voxel spacing must be positive"),
           (dict(trainArch="unetr", trainPatch="48,48,24"), "not divisible by 16 for unetr"),
           (dict(trainImplant=5), "--implant needs --implant-into"),
           (dict(trainImplant=5, trainImplantInto=tmp_path / "no.nii.gz"), "does not exist"),
           (dict(trainValFraction=0.5, trainTestFraction=0.5), "leaves no patients to train on"),
           (dict(trainDevice="gpu"), "unknown --device 'gpu'"),
           (dict(trainPatients=tmp_path / "none.csv"), "--patients"),
           (dict(trainArch="attention_unet", trainDeepSupervision=True), "deep supervision needs --arch dynunet")]
    for changes, message in bad:
        for field, value in changes.items():
            setattr(p, field, value)
        assert message in (logic.trainingInputProblem(p) or ""), changes
        with pytest.raises(ValueError, match="."):
            logic.startTraining(p)
        for field in changes:
            setattr(p, field, initial[field])
        assert logic.trainingInputProblem(p) is None, changes
    # a recipe (tiny sizes)
    p.trainArch, p.trainLrSchedule, p.trainAugment = "attention_unet", "poly", "strong"
    p.trainMembers, p.trainEpochs, p.trainIters, p.trainBatch = 1, 1, 1, 2
    p.trainPatch, p.trainFgFraction, p.trainSeed, p.trainMcPasses, p.trainValFraction = "16, 16, 8", 0.33, 3, 2, 0.34
    assert logic.trainingInputProblem(p) is None
    first = logic.startTraining(p).process.args
    given = {a.split("=")[0] for a in first if a.startswith("--")}
    assert given == {"--images", "--masks", "--arch", "--lr-schedule", "--augment", "--members",
                     "--epochs", "--iters", "--batch", "--patch", "--fg-fraction", "--seed", "--mc-passes",
                     "--val-fraction"}
    assert "--patch=16,16,8" in first
    import json

    from lungai.seg import ensemble

    def cancelled(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ensemble, "_train_members", cancelled)     # Cancel once the run recorded its settings
    assert main(first) == 130 and "cancelled" in capsys.readouterr().err
    # before any member finished an epoch nothing was trained: not resumed, other options start anew
    assert not logic.trainingResumes(p) and logic.trainingInputProblem(p) is None
    p.trainArch, p.trainAugment, p.trainSeed, p.trainPatch = "unet", "basic", 4, "16,16,16"
    assert logic.trainingInputProblem(p) is None and "--resume" not in logic.trainingCommand(p, False)
    p.trainArch, p.trainAugment, p.trainSeed, p.trainPatch = "attention_unet", "strong", 3, "16,16,8"
    ckpt = pathlib.Path(p.trainOutput) / "checkpoints"                # member 0 after its first epoch
    (ckpt / "member_0.state.json").write_text(json.dumps({"epoch": 1, "done": False, "epochs": 1, "iters_per_epoch": 1,
                                                          "patience": 5}), encoding="utf-8")
    (ckpt / "member_0.last.safetensors").write_bytes(b"")
    assert logic.trainingResumes(p) and logic.trainingInputProblem(p) is None
    p.trainArch, p.trainAugment, p.trainSeed, p.trainPatch = "unet", "basic", 4, "16,16,16"
    problem = logic.trainingInputProblem(p)
    assert problem.startswith("Cannot resume:") and "new output folder" in problem, problem
    for said in ("--arch attention_unet then, unet now", "--patch 16,16,8 then, 16,16,16 now",
                 "--augment strong then, basic now", "--seed 3 then, 4 now", "--lr 0.0005 then, 0.002 now"):
        assert said in problem, (said, problem)
    assert "--lr-schedule" not in problem and "--members" not in problem
    with pytest.raises(ValueError, match="Cannot resume"):
        logic.startTraining(p)
    p.trainArch, p.trainAugment, p.trainSeed, p.trainPatch = "attention_unet", "strong", 3, "16,16,8"
    p.trainEpochs = 2              # (--lr-schedule poly: its epochs are fixed once a member ran one)
    assert "--epochs 1 then with --lr-schedule poly" in (logic.trainingInputProblem(p) or "")
    p.trainEpochs = 1
    assert logic.trainingInputProblem(p) is None
    resumed = logic.startTraining(p).process.args
    assert resumed[-1] == "--resume" and resumed[:-1] == first


@pytest.fixture(scope="module")
def untrained_seg_model(tmp_path_factory):
    """A tiny *untrained* 2-member U-Net in the `lungai train-seg` format: it exercises the whole
    segment path (files, child process, outputs, nodes); its masks mean nothing."""
    import torch
    from lungai.seg.config import SegConfig
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = SegConfig(arch="unet", channels=(4, 8, 16, 32), members=2)
    return save_model(tmp_path_factory.mktemp("seg") / "model", cfg,
                      [build_network(cfg).state_dict() for _ in range(cfg.members)], {})


def test_lungai_seg_tumour_end_to_end(load_module, mrml_scene, phantom_nodes, untrained_seg_model):
    """Seed-point mode with an imported model folder and MC dropout, as the panel runs it."""
    from lungai import mrml

    from lungai.scene import nodes, results

    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = phantom_nodes[0]
    p.model, p.modelDirectory, p.method, p.mcPasses = "folder", untrained_seg_model, "mc-dropout", 2
    p.mode = "seed"
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(-40.0, 0.0, 100.0)
    p.outputSegmentation = phantom_nodes[1]  # the tumour is added next to the existing segments
    job = logic.run(logic.startSegmentation, p, timeout=300)
    workDir = job.workDir
    summary = logic.loadSegmentation(p, job)
    assert not workDir.exists()                # the exported CT is deleted once the outputs are loaded
    assert summary["method"] == "mc-dropout" and summary["mc_passes"] == 2
    assert mrml.segment_names(p.outputSegmentation) == ["Tumor", "Right lung", "Left lung", "Tumor (2)"]
    assert nodes.tumour_result(p.outputSegmentation, "Tumor (2)")["confidence"] == summary["confidence"]
    unc = sitk.GetArrayFromImage(mrml.image_from_volume_node(p.uncertaintyVolume))
    assert unc.shape == sitk.GetArrayFromImage(mrml.image_from_volume_node(phantom_nodes[0])).shape
    headline, details, review = results.describe_segment_result(summary)
    assert review == bool(summary["needs_review"]) and "MC dropout, 2 passes" in details
    # one path: the console API (in-process) gives the same nodes as the panel (child process)
    from lungai.scene.segment import segment_tumour_node

    panel_unc = p.uncertaintyVolume
    console = segment_tumour_node(mrml_scene, phantom_nodes[0], point_node=p.seedPoints, model_dir=untrained_seg_model,
                                  method="mc-dropout", mc_passes=2)
    assert panel_unc.GetName() == "phantom CT Tumor (2) uncertainty"     # named after its segment (the user's is "Tumor")
    assert console["uncertainty"].GetName().startswith("phantom CT tumour uncertainty")
    assert console["segmentation"].GetName() == "phantom CT tumour"
    assert (console["uncertainty"].GetDisplayNode().GetColorNodeID() == panel_unc.GetDisplayNode().GetColorNodeID()
            == "vtkMRMLPETProceduralColorNodePET-Heat")
    a = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, console["segmentation"], console["segment_id"], phantom_nodes[0]))
    b = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.outputSegmentation, "Tumor (2)", phantom_nodes[0]))
    assert np.array_equal(a, b)
    assert mrml_scene.GetFirstNodeByName("phantom CT tumour confidence") is not None
    assert mrml_scene.GetFirstNodeByName("phantom CT Tumor (2) confidence") is not None


def test_an_output_segmentation_removed_during_the_run_keeps_the_result(load_module, mrml_scene, phantom_nodes,
                                                                        untrained_seg_model):
    """QA slicer72: the user deleted the output segmentation (Data module) while Segment tumour / Segment lungs ran
    (LUNG1-003's tumour: 20-50 s): the result was refused - "The input 'segmentation' (...) was removed from the scene
    while the job ran; run it again" - and lost.  The output is no input: the result goes to a new segmentation, as
    when none was chosen, and the panel says where."""
    from lungai import mrml

    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = phantom_nodes[0]
    p.model, p.modelDirectory, p.method, p.mcPasses = "folder", untrained_seg_model, "mc-dropout", 2
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(-40.0, 0.0, 100.0)
    p.outputSegmentation, chosen = phantom_nodes[1], phantom_nodes[1].GetName()
    job = logic.run(logic.startSegmentation, p, timeout=300)
    workDir = job.workDir
    mrml_scene.RemoveNode(phantom_nodes[1])            # deleted by the user before the run ended
    summary = logic.loadSegmentation(p, job)
    assert not workDir.exists()
    assert p.outputSegmentation.GetScene() is mrml_scene and p.outputSegmentation.GetName() == "phantom CT tumour"
    assert mrml.segment_names(p.outputSegmentation) == ["Tumor"] and p.uncertaintyVolume.GetScene() is mrml_scene
    details = logic.resultText(summary)[1]
    assert (f"the output segmentation '{chosen}' was removed from the scene during the run: the results are in "
            "the new segmentation 'phantom CT tumour'") in details, details
    # Segment lungs alike: its second run's output removed during the run
    p.outputSegmentation = None
    logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    first = p.outputSegmentation
    job = logic.run(logic.startLungs, p, timeout=120)
    mrml_scene.RemoveNode(first)
    message = logic.loadLungs(p, job)
    assert p.outputSegmentation.GetScene() is mrml_scene and p.outputSegmentation is not first
    assert mrml.segment_names(p.outputSegmentation) == ["Right lung", "Left lung"]
    assert (f"the output segmentation '{first.GetName()}' was removed from the scene during the run: the results are "
            f"in the new segmentation '{p.outputSegmentation.GetName()}'") in message, message


def test_panel_defaults_run_a_one_member_model(load_module, mrml_scene, phantom_nodes, tmp_path):
    """A model the user trained with 1 member: the panel's default method leaves --method out, so the run uses
    MC dropout (as the CLI without --method) instead of stopping on "ensemble"; an explicit ensemble is refused
    by the CLI with its fix."""
    import torch
    from lungai.seg.config import SegConfig
    from lungai.seg.model_io import save_model
    from lungai.seg.networks import build_network

    torch.manual_seed(0)
    cfg = SegConfig(arch="unet", channels=(4, 8, 16, 32), members=1)
    model = save_model(tmp_path / "one", cfg, [build_network(cfg).state_dict()], {})
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = phantom_nodes[0]
    p.model, p.modelDirectory, p.mcPasses = "folder", model, 2   # method left at the panel's default
    p.mode = "seed"
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(-40.0, 0.0, 100.0)
    args = logic.segmentationCommand(p, tmp_path / "cmd")
    assert "--method" not in args and args[args.index("--mc-passes") + 1] == "2"
    summary = logic.loadSegmentation(p, logic.run(logic.startSegmentation, p, timeout=300))
    assert summary["method"] == "mc-dropout" and summary["mc_passes"] == 2
    assert any("1 member" in n for n in summary["notes"])


# ---------------------------------------------------------------- DICOM RT in the panels
SLICERRT_NAMES = {"gtv": "GTV-1", "lung_right": "Lung-Right", "lung_left": "Lung-Left"}


@pytest.fixture(scope="module")
def rt_study(tmp_path_factory):
    """A CT written as a DICOM series + an RTSTRUCT with the ROI names of a real RT export, in a folder of the user's
    (one holding a file of theirs besides the export, so that the export is P1/).

    Without that file the export's top folder (``lungai.io.outputs.dicom_export_root``: the highest folder holding
    only this study's DICOM, empty folders not counting) was pytest's base temporary folder whenever the other tests'
    folders in it were still empty - as when ``test_lungai_seg_export_dicom_seg_and_rtstruct`` ran alone - and every
    ``tmp_path`` output lay "inside the DICOM export" and was refused (docs/dicom.md: an empty folder beside a lone
    export is part of it)."""
    from dicom_helpers import small_phantom
    from lungai.dicom.synthetic import write_rt_study

    folder = tmp_path_factory.mktemp("rt")
    (folder / "cases.csv").write_text("patient,stage\nP1,IIIA\n", encoding="utf-8")
    return write_rt_study(folder, small_phantom(7), "P1", dose=None, names=SLICERRT_NAMES)


def _mask(scene, seg, name, vol):
    from lungai import mrml

    return sitk.GetArrayFromImage(mrml.segment_to_mask(scene, seg, name, vol)) > 0


def test_slicerrt_rtstruct_segmentation_as_panel_input(load_module, mrml_scene, rt_study, tmp_path):
    """Segments "GTV-1", "Lung-Right", "Lung-Left" (SlicerRT) are the tumour / lungs of the three panels."""
    ct, vol, seg = slicerrt_segmentation(mrml_scene, rt_study)
    gtv, right, left = (_mask(mrml_scene, seg, n, vol) for n in ("GTV-1", "Lung-Right", "Lung-Left"))
    assert gtv.any() and right.any() and left.any()
    # LungRadiomics: the ticked lungs give the derived "Lungs" / "Lungs minus tumour"; the dose lungs / GTV by role
    rad = load_module("LungRadiomics").LungRadiomicsLogic()
    p = rad.getParameterNode()
    p.inputVolume, p.segmentation = vol, seg
    assert rad.segmentNames(seg) == ["GTV-1", "Lung-Right", "Lung-Left"]
    p.selectedSegments = ["GTV-1", "Lung-Right", "Lung-Left"]
    (tmp_path / "rad").mkdir()
    cmds, columns, _, _, _ = rad.featureCommands(p, tmp_path / "rad")
    assert list(columns.values()) == ["GTV-1", "Lung-Right", "Lung-Left", "Lungs", "Lungs minus tumour"]
    derived = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "rad" / "segment_4.nrrd"))) > 0
    np.testing.assert_array_equal(derived, (right | left) & ~gtv)
    from lungai import mrml

    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(ct > -2000, sitk.sitkFloat32), "dose")
    rad.doseCommand(p, tmp_path / "rad" / "ct.nii.gz", tmp_path / "rad")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "rad" / "lungs.nrrd"))) > 0,
                                  right | left)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "rad" / "gtv.nrrd"))) > 0, gtv)
    # MultimodalPredict: the stage CT branch exports GTV-1 as the tumour
    mm = load_module("MultimodalPredict").MultimodalPredictLogic()
    q = mm.getParameterNode()
    q.stageModelDirectory, q.stageVolume, q.stageSegmentation, q.stagePatient = _stage_model(tmp_path / "model"), vol, \
        seg, "P1"
    job = mm.startStage(q)
    job.process.prepare()                 # the export: the job's first polls in the panel
    try:
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(job.outputs.parent / "tumour.nrrd"))) > 0, gtv)
    finally:
        job.finish()
    # LungAISeg: lungai's lungs into the RTSTRUCT segmentation, which has lungs of its own, are refused (a second right
    # and left lung there would make Lung Radiomics refuse both; QA slicerfollow66); its segments stay as they were
    from lungai.errors import InputError
    from lungai.scene import nodes

    labels = sitk.Cast(sitk.GetImageFromArray((right * 1 + left * 2).astype(np.uint8)), sitk.sitkUInt8)
    labels.CopyInformation(ct)
    with pytest.raises(InputError, match="already has 'Lung-Right' and 'Lung-Left', lungs of its own"):
        nodes.add_lung_outputs(mrml_scene, vol, labels, seg_node=seg)
    assert mrml.segment_names(seg) == ["GTV-1", "Lung-Right", "Lung-Left"]
    np.testing.assert_array_equal(_mask(mrml_scene, seg, "GTV-1", vol), gtv)
    np.testing.assert_array_equal(_mask(mrml_scene, seg, "Lung-Right", vol), right)


def test_lungai_seg_export_dicom_seg_and_rtstruct(load_module, mrml_scene, rt_study, tmp_path, monkeypatch):
    """"Export as DICOM SEG + RTSTRUCT": the result segments read back from both files as the same masks,
    referencing the CT series; a CT not loaded from DICOM gets a clear message."""
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.errors import InputError

    ct, vol, seg = slicerrt_segmentation(mrml_scene, rt_study)
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = vol
    assert "segment the lungs or the tumour first" in logic.exportDicomProblem(p)
    with pytest.raises(ValueError, match="No result segmentation"):
        logic.exportDicom(p, tmp_path)
    p.outputSegmentation = seg
    assert logic.exportDicomProblem(p) is None
    with pytest.raises(InputError, match="not loaded from DICOM") as error:
        logic.exportDicom(p, tmp_path / "out")                      # a CT from a NIfTI / NRRD file
    assert "DICOM module" in str(error.value)
    paths = logic.exportDicom(p, tmp_path / "out", ctSource=rt_study["ct"])
    assert sorted(path.name for path in paths) == ["RTSTRUCT.rtstruct.dcm", "RTSTRUCT.seg.dcm"]
    before = [path.read_bytes() for path in paths]
    with pytest.raises(InputError, match="already has RTSTRUCT.seg.dcm, RTSTRUCT.rtstruct.dcm; it is not overwritten"):
        logic.exportDicom(p, tmp_path / "out", ctSource=rt_study["ct"])     # a second export into the same folder
    assert [path.read_bytes() for path in paths] == before
    assert logic.exportNotes == []
    empty = seg.GetSegmentation().AddEmptySegment("", "Left lung")       # left out, said in the panel's log
    logic.exportDicom(p, tmp_path / "with_empty", ctSource=rt_study["ct"])
    assert logic.exportNotes == ["empty segment 'Left lung' not written to the DICOM SEG / RTSTRUCT (no voxel on "
                                 "the CT)"]
    seg.GetSegmentation().RemoveSegment(empty)
    seg_path = next(path for path in paths if path.name.endswith(".seg.dcm"))
    rt_path = next(path for path in paths if path.name.endswith(".rtstruct.dcm"))
    for back in (read_seg(seg_path, ct), read_rtstruct(rt_path, ct)):
        assert list(back) == ["GTV-1", "Lung-Right", "Lung-Left"]
        for name, mask in back.items():
            np.testing.assert_array_equal(sitk.GetArrayFromImage(mask) > 0, _mask(mrml_scene, seg, name, vol))
            np.testing.assert_array_equal(sitk.GetArrayFromImage(mask) > 0,
                                          sitk.GetArrayFromImage(rt_study["masks"][name]) > 0)
    # as in Slicer: the CT loaded through the DICOM module -> its files come from the DICOM database
    import sys

    import pydicom

    files = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: str(f)
             for f in sorted(pathlib.Path(rt_study["ct"]).rglob("*.dcm"))}
    vol.SetAttribute("DICOM.instanceUIDs", " ".join(files))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", types.SimpleNamespace(fileForInstance=files.get),
                        raising=False)
    again = logic.exportDicom(p, tmp_path / "from_database")
    assert [path.read_bytes()[128:132] for path in again] == [b"DICM", b"DICM"]
    assert list(read_seg(next(x for x in again if x.name.endswith(".seg.dcm")), ct)) == ["GTV-1", "Lung-Right", "Lung-Left"]


def test_lungai_seg_export_dicom_refuses_two_segments_of_one_name(load_module, mrml_scene, rt_study, tmp_path):
    """Two result segments named "GTV-1" (a user's rename): the export dropped the second from SEG and RTSTRUCT without a
    word; now the panel's "DICOM export failed." dialog (tryWithErrorDisplay shows the error's text) says which name
    and how to fix it, and nothing is written."""
    from lungai.errors import InputError

    ct, vol, seg = slicerrt_segmentation(mrml_scene, rt_study)
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Lung-Left")).SetName("GTV-1")
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.outputSegmentation = vol, seg
    with pytest.raises(InputError) as error:
        logic.exportDicom(p, tmp_path / "out", ctSource=rt_study["ct"])
    assert str(error.value).startswith("2 segments of RTSTRUCT have the name 'GTV-1'")
    assert "How to fix: rename one of the segments in the Segment Editor" in str(error.value)
    assert not (tmp_path / "out").exists()


def _slicer_export(scene, seg, name, vol):
    """The segment ``name`` as Slicer's own export puts it on ``vol``'s grid (ExportSegmentsToLabelmapNode), > 0."""
    import slicer
    import vtk

    label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(seg.GetSegmentation().GetSegmentIdBySegmentName(name))
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg, ids, label, vol)
        return slicer.util.arrayFromVolume(label) > 0
    finally:
        scene.RemoveNode(label)


@pytest.mark.shared_data
def test_real_rtstruct_through_the_panels_and_back(load_module, mrml_scene, shared_data, tmp_path):
    """LUNG1-003 (real DICOM RT export): its RTSTRUCT as SlicerRT loads it -> tumour / lungs of the panels, and the
    LungAISeg export writes SEG + RTSTRUCT that read back to the same masks."""
    from lungai import mrml
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg

    dicom = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    study = {"ct": dicom / "CT", "rtstruct": sorted((dicom / "RTSTRUCT").rglob("*.dcm"))[0]}
    ct, vol, seg = slicerrt_segmentation(mrml_scene, study)
    rad = load_module("LungRadiomics").LungRadiomicsLogic()
    p = rad.getParameterNode()
    p.inputVolume, p.segmentation = vol, seg
    p.selectedSegments = ["GTV-1", "Lung-Right", "Lung-Left"]
    (tmp_path / "rad").mkdir()
    _, columns, _, _, _ = rad.featureCommands(p, tmp_path / "rad")
    assert list(columns.values()) == ["GTV-1", "Lung-Right", "Lung-Left", "Lungs", "Lungs minus tumour"]
    # the masks handed to the radiomics runs are Slicer's own export of the segments, and the derived ones their union
    # and difference (every GTV subtracted) - QA slicerfollow68 made them cheaper, the same voxels
    exported = {name: _slicer_export(mrml_scene, seg, name, vol) for name in mrml.segment_names(seg)}
    lungs = exported["Lung-Right"] | exported["Lung-Left"]
    expected = [exported["GTV-1"], exported["Lung-Right"], exported["Lung-Left"], lungs,
                lungs & ~(exported["GTV-1"] | exported["gtv-2"] | exported["gtv-3"])]
    for i, mask in enumerate(expected):
        written = sitk.ReadImage(str(tmp_path / "rad" / f"segment_{i}.nrrd"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(written), mask.astype(np.uint8), err_msg=str(i))
    logic = load_module("LungAISeg").LungAISegLogic()
    q = logic.getParameterNode()
    q.inputVolume, q.outputSegmentation = vol, seg
    names = mrml.segment_names(seg)
    paths = logic.exportDicom(q, tmp_path / "out", ctSource=study["ct"])
    assert len(paths) == 2
    for back in (read_seg(paths[0], ct), read_rtstruct(paths[1], ct, allow_gaps=True)):
        assert list(back) == names
        for name in names:
            np.testing.assert_array_equal(sitk.GetArrayFromImage(back[name]) > 0, _mask(mrml_scene, seg, name, vol),
                                          err_msg=name)                 # exact (Dice 1.0) for all 8 structures


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory):
    """P1: CT + RTSTRUCT + RTDOSE; P3: another patient's CT + RTDOSE (another FrameOfReferenceUID too)."""
    from dicom_helpers import small_phantom
    from lungai.dicom.synthetic import write_rt_study

    root = tmp_path_factory.mktemp("two_patients")
    return {"P1": write_rt_study(root, small_phantom(7), "P1"), "P3": write_rt_study(root, small_phantom(9), "P3")}


def _as_slicer_loads_it(scene, node, path, instance_uids: bool):
    """What Slicer's DICOM module (CT: ``DICOM.instanceUIDs``) / SlicerRT (RTDOSE: only the subject hierarchy
    item's "DICOM" UID = its SeriesInstanceUID) set on a loaded node: the item under its patient / study."""
    import pydicom
    import slicer

    files = sorted(pathlib.Path(path).rglob("*.dcm")) if pathlib.Path(path).is_dir() else [pathlib.Path(path)]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    if instance_uids:
        node.SetAttribute("DICOM.instanceUIDs", " ".join(h.SOPInstanceUID for h in headers))
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    series = headers[0].SeriesInstanceUID
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    sh.SetItemUID(item, "DICOM", series)
    slicer.vtkSlicerSubjectHierarchyModuleLogic.InsertDicomSeriesInHierarchy(
        sh, headers[0].PatientID, headers[0].StudyInstanceUID, series)
    return {h.SOPInstanceUID: str(f) for h, f in zip(headers, files)}, {series: [str(f) for f in files]}


def test_lung_radiomics_refuses_a_dose_of_another_patient(load_module, mrml_scene, two_patients, tmp_path,
                                                          monkeypatch):
    """CT of P1 + RTDOSE of P3 loaded through the DICOM module (SlicerRT): the panel refuses the dose with both
    PatientIDs named (lungai.dose.check_dose_matches_ct on the nodes' DICOM files, or the subject hierarchy
    patients without a database), another FrameOfReferenceUID too; NIfTI-loaded nodes have nothing to compare."""
    import sys

    import pydicom

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.errors import InputError

    p1, p3 = two_patients["P1"], two_patients["P3"]
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    _, p.inputVolume, p.segmentation = slicerrt_segmentation(mrml_scene, p1)
    p.selectedSegments = ["Lung_R"]
    own = mrml.volume_node_from_image(mrml_scene, read_dose(p1["dose"]), "RTDOSE P1")
    other = mrml.volume_node_from_image(mrml_scene, read_dose(p3["dose"]), "RTDOSE P3")
    (tmp_path / "w").mkdir()
    p.doseVolume = other                                           # NIfTI / NRRD loaded: no UIDs, no error
    assert "--dose" in logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")

    instances, series = _as_slicer_loads_it(mrml_scene, p.inputVolume, p1["ct"], instance_uids=True)
    for node, dose in ((own, p1["dose"]), (other, p3["dose"])):
        more_instances, more_series = _as_slicer_loads_it(mrml_scene, node, dose, instance_uids=False)
        instances.update(more_instances)
        series.update(more_series)
    ds = pydicom.dcmread(p1["dose"])                               # P1's dose in another frame of reference
    ds.FrameOfReferenceUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.1", "1.2.3.4.2"
    ds.save_as(tmp_path / "other_frame.dcm")
    frame = mrml.volume_node_from_image(mrml_scene, read_dose(p1["dose"]), "RTDOSE other frame")
    more_instances, _ = _as_slicer_loads_it(mrml_scene, frame, tmp_path / "other_frame.dcm", instance_uids=True)
    instances.update(more_instances)
    database = types.SimpleNamespace(fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, []))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)

    p.doseVolume = own                                             # the same patient: the dose command is built
    assert "--dose" in logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    p.doseVolume = other                                           # as the panel runs it: refused, no command run
    with pytest.raises(InputError, match="the RTDOSE RTDOSE P3 does not belong to the CT CT: PatientID P3 "
                                         "\\(RTDOSE\\) is not the CT's P1; FrameOfReferenceUID") as err:
        logic.run(logic.startFeatures, p)
    assert "give the RTDOSE exported with this CT" in err.value.fix
    assert not list(tmp_path.glob("lungai-radiomics-*"))           # the work folder went with the refusal
    p.doseVolume = frame
    with pytest.raises(InputError) as err:
        logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert err.value.problem.endswith(
        f": FrameOfReferenceUID 1.2.3.4 (RTDOSE) is not the CT's {p1['reference'].frame_of_reference_uid}")

    monkeypatch.delattr(sys.modules["slicer"], "dicomDatabase")    # no database: the subject hierarchy patients
    p.doseVolume = other
    with pytest.raises(InputError, match="the RTDOSE RTDOSE P3 does not belong to the CT CT: "
                                         "PatientID P3 \\(RTDOSE\\) is not the CT's P1\\n"):
        logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    p.doseVolume = own
    assert "--dose" in logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")


def test_lung_radiomics_says_an_effective_rtdose_as_the_cli(load_module, mrml_scene, two_patients, tmp_path,
                                                           monkeypatch):
    """QA (slicernotes57): an RTDOSE of DoseType EFFECTIVE (an RBE-weighted proton dose, an EQD2 / BED map) loaded by
    SlicerRT gave the panel's MLD, V20 ... with no word, while ``lungai dose-features`` on the same file says "...
    has DoseType EFFECTIVE: a biologically weighted dose ... not the physical dose" (the panel exports the node to
    NRRD, which carries no DoseType).  The node's RTDOSE header is read where its patient / frame are checked
    (lungai.scene.dicom.check_dose_node_matches_ct): the panel's dose warnings and the console API say the CLI's note;
    a PHYSICAL dose gets none."""
    import warnings

    from lungai.dose.read import effective_dose_note
    from lungai.errors import InputNote
    from lungai.scene.radiomics import radiomics_table

    p1 = two_patients["P1"]
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    _, p.inputVolume, p.segmentation = slicerrt_segmentation(mrml_scene, p1)
    p.selectedSegments = ["Lung_R"]
    ds, physical, effective = _physical_and_effective_doses(mrml_scene, monkeypatch, tmp_path, p1, p.inputVolume)
    said = effective_dose_note(ds, "RTDOSE effective")      # the CLI's note, naming the dose node
    (tmp_path / "w").mkdir()

    p.doseVolume = physical
    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert not any("EFFECTIVE" in n for n in logic.doseNotes), logic.doseNotes
    p.doseVolume = effective
    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert said in logic.doseNotes, logic.doseNotes          # shown as "warning: ..." under the dose table

    with warnings.catch_warnings(record=True) as caught:     # the console API (lungai.scene.radiomics)
        warnings.simplefilter("always")
        radiomics_table(mrml_scene, p.inputVolume, p.segmentation, segments=["Lung_R"],
                        feature_classes=["firstorder"], dose_node=effective)
    assert [str(w.message) for w in caught if issubclass(w.category, InputNote)
            and "EFFECTIVE" in str(w.message)] == [said]


def test_lung_radiomics_says_an_rtdose_unchecked_against_a_nifti_ct_as_the_cli(load_module, mrml_scene, two_patients,
                                                                              tmp_path, monkeypatch):
    """QA (slicerb57): an RTDOSE loaded from DICOM (SlicerRT) with a CT loaded from NIfTI / NRRD (no DICOM files, no
    subject hierarchy patient) was used with no word, while ``lungai dose-features`` on the same files says "the
    RTDOSE ... could not be checked against the CT ...: the CT is not DICOM ..." (lungai.dose.read
    .check_dose_matches_ct).  check_dose_node_matches_ct returns that note: the panel's dose warnings and the
    console API say it; a DICOM-loaded CT (checked) gets none."""
    import sys
    import warnings

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.dose.read import check_dose_matches_ct
    from lungai.errors import InputNote
    from lungai.io import write_image
    from lungai.scene.radiomics import radiomics_table

    p1 = two_patients["P1"]
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    ct, p.inputVolume, p.segmentation = slicerrt_segmentation(mrml_scene, p1)   # "CT": as loaded from a NIfTI
    p.selectedSegments = ["Lung_R"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, read_dose(p1["dose"]), "RTDOSE P1")
    instances, series = _as_slicer_loads_it(mrml_scene, p.doseVolume, p1["dose"], instance_uids=False)
    database = types.SimpleNamespace(fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, []))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
    nifti = write_image(ct, tmp_path / "ct.nii.gz")
    said = check_dose_matches_ct(p1["dose"], nifti, names=("RTDOSE P1", "CT"))   # the CLI's note, naming the nodes
    assert said and "could not be checked against the CT CT: the CT is not DICOM" in said
    (tmp_path / "w").mkdir()

    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert said in logic.doseNotes, logic.doseNotes          # shown as "warning: ..." under the dose table
    with warnings.catch_warnings(record=True) as caught:     # the console API (lungai.scene.radiomics)
        warnings.simplefilter("always")
        radiomics_table(mrml_scene, p.inputVolume, p.segmentation, segments=["Lung_R"],
                        feature_classes=["firstorder"], dose_node=p.doseVolume)
    assert [str(w.message) for w in caught if issubclass(w.category, InputNote)
            and "could not be checked" in str(w.message)] == [said]

    more_instances, more_series = _as_slicer_loads_it(mrml_scene, p.inputVolume, p1["ct"], instance_uids=True)
    instances.update(more_instances)                         # the CT loaded from DICOM: checked, no note
    series.update(more_series)
    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert not any("could not be checked" in n for n in logic.doseNotes), logic.doseNotes


def test_an_rtdose_with_a_ct_known_only_by_its_patient_says_its_frame_is_unchecked(load_module, mrml_scene,
                                                                                    two_patients, tmp_path, monkeypatch):
    """QA defect: a CT node under a DICOM patient but without DICOM files in Slicer's database (not loaded from DICOM,
    or its files gone) let an RTDOSE of that patient be used with no word - only the PatientIDs were compared, and
    the "could not be checked" note was given only when the CT had no patient at all - so the dose of a replan on
    another CT (another FrameOfReferenceUID) passed silently.  The note now says that its frame of reference could
    not be checked (the PatientIDs compared); another patient's RTDOSE is still refused."""
    import sys

    import pydicom

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.errors import InputError
    from lungai.io import read_ct
    from lungai.scene.dicom import check_dose_node_matches_ct

    p1 = two_patients["P1"]
    ct_image = read_ct(p1["ct"])
    ct = mrml.volume_node_from_image(mrml_scene, ct_image, "CT")
    _under_dicom_patient(mrml_scene, ct, "P1")                # its series is not in the database: no files
    replan = pydicom.dcmread(p1["dose"])                      # P1's dose computed on another planning CT
    replan.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.99.1"
    replan.save_as(tmp_path / "rd_replan.dcm")
    dose = mrml.volume_node_from_image(mrml_scene, read_dose(tmp_path / "rd_replan.dcm"), "RTDOSE replan")
    instances, series = _as_slicer_loads_it(mrml_scene, dose, tmp_path / "rd_replan.dcm", instance_uids=False)
    database = types.SimpleNamespace(fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, []))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
    notes = check_dose_node_matches_ct(dose, ct)
    assert notes == ["the RTDOSE RTDOSE replan could not be checked against the frame of reference of the CT CT: "
                     "the CT's DICOM files are not in Slicer's DICOM database (only its patient, P1, is known), so its "
                     "FrameOfReferenceUID is not known; make sure the dose was planned on this CT (a CT loaded "
                     "through the DICOM module lets lungai check it)"], notes
    p3 = two_patients["P3"]                                   # another patient's RTDOSE: refused, as before
    other = mrml.volume_node_from_image(mrml_scene, read_dose(p3["dose"]), "RTDOSE P3")
    more_instances, more_series = _as_slicer_loads_it(mrml_scene, other, p3["dose"], instance_uids=False)
    instances.update(more_instances)
    series.update(more_series)
    with pytest.raises(InputError, match="P3"):
        check_dose_node_matches_ct(other, ct)


def test_risk_from_an_effective_rtdose_table_says_its_note(load_module, mrml_scene, two_patients, rp_model, tmp_path,
                                                           monkeypatch):
    """QA (slicerb57): Lung Radiomics said an EFFECTIVE RTDOSE's note under its dose table, but did not record it on
    the table (the dose CSV carries no DoseType): the RP risk Multimodal Predict computed later from that table said
    nothing.  The dose's warnings are recorded on the dose table (nodes.record_review_notes, as a features table's
    review notes; removed when a later run has none) and the risk says them, as predict_rp_node does for a dose table
    and radiomics_table's table of dose rows."""
    import pandas as pd

    from lungai import mrml
    from lungai.dose.read import effective_dose_note
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table
    from lungai.scene.rp import predict_rp_node

    p1 = two_patients["P1"]
    rad = load_module("LungRadiomics").LungRadiomicsLogic()
    r = rad.getParameterNode()
    _, r.inputVolume, r.segmentation = slicerrt_segmentation(mrml_scene, p1)
    r.selectedSegments = ["Lung_R"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(r, f"class_{c}", False)
    ds, physical, effective = _physical_and_effective_doses(mrml_scene, monkeypatch, tmp_path, p1, r.inputVolume)
    said = effective_dose_note(ds, "RTDOSE effective")

    r.doseVolume = effective
    message = rad.loadFeatures(r, rad.run(rad.startFeatures, r, timeout=300))
    assert f"warning: {said}" in message and r.doseTable is not None, message
    assert said in nodes.recorded_review_notes(r.doseTable)
    # and in the table's rtdose_notes column, as lungai dose-features writes it for the RTDOSE file (clidose58): the
    # table saved as CSV and given to lungai rp predict says it too
    from lungai.dose.features import NOTES_COLUMN, notes_of
    from lungai.rp.prepare import recorded_notes_warnings

    saved = mrml.dataframe_from_table_node(r.doseTable)
    assert notes_of(saved[NOTES_COLUMN].iloc[0]) == [said]
    assert recorded_notes_warnings(saved, None) == [said]
    # the risk from that dose table (the cohort's features for the model; the run's recorded notes): said
    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "risk radiomics")
    p.doseTable = nodes.record_review_notes(mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "risk dose"),
                                            nodes.recorded_review_notes(r.doseTable))
    job = logic.startRisk(p)                # the command is not run: its prediction is written here
    pd.DataFrame({"case": ["CT"], "risk": [0.4], "risk_low": [0.2], "risk_high": [0.6], "high_risk": [1],
                  "warnings": [""]}).to_csv(job.outputs, index=False)
    headline, _ = logic.loadRisk(p, job)
    assert f"warning: {said}" in headline.splitlines(), headline
    assert said in nodes.table_rows(p.rpOutputTable)[0]["warnings"]
    clinical = {k[len("clin_"):]: v for k, v in pick("clin_").iloc[0].items()}     # the console API: the same
    result, _ = predict_rp_node(mrml_scene, p.rpModelDirectory, p.radiomicsTable, p.doseTable, clinical)
    assert said in mrml.dataframe_from_table_node(result)["warnings"].iloc[0]
    table, _ = radiomics_table(mrml_scene, r.inputVolume, r.segmentation, segments=["Lung_R"],
                               feature_classes=["firstorder"], dose_node=effective)
    assert said in nodes.recorded_review_notes(table)

    r.doseVolume = physical                 # the physical dose: its table records no EFFECTIVE note
    rad.loadFeatures(r, rad.run(rad.startFeatures, r, timeout=300))
    assert not any("EFFECTIVE" in n for n in nodes.recorded_review_notes(r.doseTable))
    assert not notes_of(mrml.dataframe_from_table_node(r.doseTable)[NOTES_COLUMN].iloc[0])
    # QA staletab60: the dose table records the segments its rows measured (its lungs ...); one renamed: it says so
    nodes.keep_confidence_tables_current(mrml_scene)
    measured = [record["name"] for record in nodes.recorded_measured_outlines(r.doseTable)]
    assert "Lung_R" in measured and nodes.OUTLINE_COLUMN not in nodes.table_rows(r.doseTable)[0]
    segmentation = r.segmentation.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Lung_R")).SetName("Lung_R old")
    assert "segment 'Lung_R' renamed 'Lung_R old'" in nodes.table_rows(r.doseTable)[0][nodes.OUTLINE_COLUMN]


def test_seed_or_roi_outside_the_ct_is_said_before_the_run(load_module, mrml_scene, phantom_nodes):
    """A click outside the CT: Apply stays disabled with the point in RAS (as Slicer shows it) and the node
    names, not a failed child run with the point in LPS.  The CT's parent transform counts."""
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = phantom_nodes[0]        # RAS x, y within +-168 mm, z 0 .. 195 mm
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(10.0, -20.0, 30.0, "F-1")
    assert logic.segmentationInputProblem(p) is None
    p.seedPoints.AddControlPoint(400.0, -3.0, 40.0, "F-2")     # a second point is not used: it does not block
    assert logic.segmentationInputProblem(p) is None
    p.seedPoints.SetNthControlPointPosition(0, 400.0, -3.0, 40.0)   # the seed itself outside does
    assert logic.segmentationInputProblem(p) == ("The seed point 'F-1' (R 400.0, A -3.0, S 40.0) lies outside "
                                                 "phantom CT: place it on the CT")
    with pytest.raises(ValueError, match="lies outside"):
        logic.segmentationCommand(p, pathlib.Path("/nonexistent"))
    p.seedPoints.SetNthControlPointPosition(0, 10.0, -20.0, 500.0)
    assert "'F-1' (R 10.0, A -20.0, S 500.0) lies outside" in logic.segmentationInputProblem(p)
    p.seedPoints.RemoveNthControlPoint(1)
    p.seedPoints.SetNthControlPointPosition(0, 10.0, -20.0, 30.0)
    shift = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = shift.GetMatrixTransformToParent()
    matrix.SetElement(0, 3, 300.0)
    shift.SetMatrixTransformToParent(matrix)
    p.inputVolume.SetAndObserveTransformNodeID(shift.GetID())   # the CT is shown 300 mm to the right
    assert "lies outside" in logic.segmentationInputProblem(p)
    p.seedPoints.SetNthControlPointPosition(0, 310.0, -20.0, 30.0)
    assert logic.segmentationInputProblem(p) is None
    p.inputVolume.SetAndObserveTransformNodeID(None)
    p.mode = "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    p.roi.SetXYZ(0.0, 0.0, -100.0)
    p.roi.SetRadiusXYZ(10.0, 10.0, 10.0)
    assert logic.segmentationInputProblem(p) == "The ROI 'R' does not overlap phantom CT: place it on the CT"
    p.roi.SetXYZ(0.0, 0.0, -5.0)                                # overlaps the first slices
    assert logic.segmentationInputProblem(p) is None


def test_an_roi_box_never_placed_keeps_apply_disabled(load_module, mrml_scene, phantom_nodes):
    """QA: a new ROI node never placed (Slicer reports zero size, all-zero bounds at 0, 0, 0) enabled Apply, and the run
    segmented an empty box at (0, 0, 0) ("NEEDS EXPERT REVIEW ... no tumour found in the region of interest").  No
    defined control point or a zero size along an axis is "not placed": Apply stays disabled saying to place the box,
    and the ROI conversion refuses it."""
    from lungai.errors import InputError
    from lungai.scene import nodes

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "roi")
    expected = "The ROI 'roi' is not placed (it has no box with a size yet): place the ROI box on the tumour"
    assert logic.segmentationInputProblem(p) == expected
    with pytest.raises(ValueError, match="is not placed"):
        logic.segmentationCommand(p, pathlib.Path("/nonexistent"))
    with pytest.raises(InputError, match="is not placed"):
        nodes.roi_to_lps(p.roi)
    assert nodes.roi_outside_problem(p.inputVolume, p.roi) is None and nodes.roi_rotation_note(p.roi) is None
    p.roi.SetXYZ(0.0, 0.0, 50.0)                                    # a centre, no size yet
    assert logic.segmentationInputProblem(p) == expected
    p.roi.SetRadiusXYZ(10.0, 10.0, 0.0)                             # flat along S
    assert logic.segmentationInputProblem(p) == expected
    p.roi.SetRadiusXYZ(10.0, 10.0, 10.0)
    assert logic.segmentationInputProblem(p) is None
    assert nodes.roi_to_lps(p.roi) == [10.0, 10.0, 40.0, -10.0, -10.0, 60.0]


def test_an_roi_flat_along_its_own_axis_keeps_apply_disabled_when_rotated(load_module, mrml_scene, phantom_nodes):
    """QA: an ROI of size 40 x 40 x 0 rotated 10 degrees about R (its own rotation or its parent transform's) has
    world bounds about 7 mm thick: Apply was enabled and segmented a slab.  The ROI's own size counts: still
    "not placed" (Apply disabled, the ROI conversion refuses it)."""
    import vtk
    from lungai.errors import InputError
    from lungai.scene import nodes

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    p.roi.SetCenter(0.0, 0.0, 50.0)
    p.roi.SetSize(40.0, 40.0, 0.0)
    rotation = vtk.vtkTransform()
    rotation.RotateX(10.0)
    expected = "The ROI 'R' is not placed (it has no box with a size yet): place the ROI box on the tumour"
    p.roi.SetAndObserveObjectToNodeMatrix(rotation.GetMatrix())         # the ROI's own rotation
    b = [0.0] * 6
    p.roi.GetRASBounds(b)
    assert b[5] - b[4] > 5.0                                           # a slab in world coordinates
    assert logic.segmentationInputProblem(p) == expected
    with pytest.raises(InputError, match="is not placed"):
        nodes.roi_to_lps(p.roi)
    p.roi.SetAndObserveObjectToNodeMatrix(vtk.vtkTransform().GetMatrix())
    tilt = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")   # its parent transform's rotation
    tilt.SetMatrixTransformToParent(rotation.GetMatrix())
    p.roi.SetAndObserveTransformNodeID(tilt.GetID())
    p.roi.GetRASBounds(b)
    assert b[5] - b[4] > 5.0
    assert logic.segmentationInputProblem(p) == expected
    assert nodes.placed_roi_bounds(p.roi) is None
    p.roi.SetSize(40.0, 40.0, 20.0)                                    # a box: placed
    assert logic.segmentationInputProblem(p) is None and nodes.placed_roi_bounds(p.roi) is not None


def _seeded_patient_a(load_module, mrml_scene):
    """(CT "patient A" 20 x 20 x 10, LungAISeg logic, its parameter node in seed mode with a seed at A's centre)."""
    a = _small_ct(mrml_scene, "patient A", (20, 20, 10), (0.0, 0.0, 0.0))
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.mode, p.seedPoints = "seed", mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(-40.0, -40.0, 25.0)                 # LPS (40, 40, 25): A's centre
    p.inputVolume = a
    return a, logic, p


def _fake_segment_run(logic, p, confidence, tmp_path, **result):
    """Start the panel's tumour job (inputs captured, CT exported) and write what `lungai segment` writes for it
    (a 3-voxel-cube tumour around the CT's centre, the given confidence; ``result``: other result.json values)
    instead of running the child."""
    job = logic.startSegmentation(p)
    _write_fake_segment_outputs(logic, job, confidence, **result)
    return logic.loadSegmentation(p, job)


def _write_fake_segment_outputs(logic, job, confidence, **result):
    """What `lungai segment` writes for the panel's tumour job ``job`` (see :func:`_fake_segment_run`)."""
    import json

    ct = sitk.ReadImage(str(logic.ctWorkFile(job.workDir)))
    tumour = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    tumour.CopyInformation(ct)
    centre = [n // 2 for n in ct.GetSize()]
    tumour[centre[0] - 1:centre[0] + 2, centre[1] - 1:centre[1] + 2, centre[2] - 1:centre[2] + 2] = 1
    job.outputs.mkdir(parents=True, exist_ok=True)
    for name, image in (("tumor", tumour), ("probability", sitk.Cast(tumour, sitk.sitkFloat32)),
                        ("uncertainty", sitk.Cast(tumour, sitk.sitkFloat32) * 0.1)):
        sitk.WriteImage(image, str(job.outputs / f"{name}.nii.gz"))
    (job.outputs / "result.json").write_text(json.dumps(
        {"confidence": confidence, "needs_review": False, "review_threshold": 0.5, "tumor_volume_ml": 1.0,
         "method": "mc-dropout", "notes": [], **result}), encoding="utf-8")


def test_segmentation_result_maps_read_off_the_gui_thread(load_module, mrml_scene, tmp_path, monkeypatch):
    """QA slicer71: after Segment tumour, the panel read the uncertainty map (a float image of the CT's size;
    0.55-0.75 s of gzip for LUNG1-003) and result.json on the GUI thread, in loadSegmentation.  Now the job reads
    them in a background thread once its command has succeeded, while the runner's polls go on; loadSegmentation
    takes them."""
    import threading
    import time

    import lungai.io
    from LungAICommon.panel import finish_job

    reads = []
    read_image = lungai.io.read_image

    def recording_read_image(path, *args, **kwargs):
        reads.append((pathlib.Path(path).name, threading.current_thread() is threading.main_thread()))
        return read_image(path, *args, **kwargs)

    monkeypatch.setattr(lungai.io, "read_image", recording_read_image)
    monkeypatch.setattr(commands, "segment", lambda *args, **kwargs: ["--version"])   # a child that succeeds at once
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = _small_ct(mrml_scene, "patient A", (20, 20, 10), (0.0, 0.0, 0.0))
    p.mode, p.seedPoints = "seed", mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(-40.0, -40.0, 25.0)
    job = logic.startSegmentation(p)
    _write_fake_segment_outputs(logic, job, 0.8)
    process = job.process.start()
    statuses = []
    while process.running:                    # the panel's QtJobRunner: a poll per tick of its 100 ms timer
        statuses += [e.text for e in process.poll() if e.kind == "progress"]
        time.sleep(0.02)
    assert process.succeeded
    loaded = finish_job(job, lambda j: logic.loadSegmentation(j.parameterNode, j), pytest.fail, lambda text: None)
    assert loaded["confidence"] == 0.8 and p.uncertaintyVolume is not None
    assert [name for name, main in reads if main] == [], reads   # nothing of the map read on the GUI thread
    assert reads == [("uncertainty.nii.gz", False)] and "reading the results" in statuses   # by the job, once
    assert not tmp_path.joinpath(job.outputs.parent.name).exists() and not job.outputs.exists()   # work folder gone


def test_cancel_while_the_results_are_read_ends_after_the_read(tmp_path):
    """Cancel pressed while a finished job's results are read in the background: the job stays running until the read
    is over (its work folder is deleted after it, not under it), then ends cancelled - no result is loaded."""
    import threading
    import time

    from LungAICommon.process import LungAIProcess, ReadingProcess

    started, release = threading.Event(), threading.Event()

    def read():
        started.set()
        release.wait(30)
        return "maps"

    process = ReadingProcess(LungAIProcess(["--version"]), read).start()
    process.inner.wait()
    process.poll()                            # the command has succeeded: the read starts
    assert started.wait(30)
    process.cancel()
    assert process.running and process.cancelled and process.returncode is None
    release.set()
    while process.running:                    # the read ends (the panel's timer polls)
        process.poll()
        time.sleep(0.02)
    assert process.cancelled and not process.succeeded and process.returncode == 130
    # a job cancelled before its read began reads nothing
    never = ReadingProcess(LungAIProcess(["--version"]), lambda: pytest.fail("read after a cancel")).start()
    never.inner.wait()
    never.cancel()
    never.poll()
    assert not never.running and never.cancelled and never.returncode == 130


def _small_ct(scene, name, size, origin):
    from lungai import mrml

    image = sitk.Image(size, sitk.sitkInt16) - 700
    image.SetSpacing((4.0, 4.0, 5.0))
    image.SetOrigin(origin)
    return mrml.volume_node_from_image(scene, image, name)


def test_second_ct_gets_its_own_segmentation(load_module, mrml_scene, tmp_path):
    """A second patient's tumour goes to a new node "<CT B> tumour", never into the first patient's node (where it
    was "Tumor (2)" next to A's "Tumor", overwriting A's confidence, while A's "Tumor" stayed the primary tumour);
    the same CT again adds to its own node.  Lungs follow the same rule, and a user's segmentation of another CT
    picked as output is not written into either."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "patient A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "patient B", (24, 16, 12), (100.0, 50.0, -30.0))
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.mode, p.seedPoints = "seed", mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(-40.0, -40.0, 25.0)                 # LPS (40, 40, 25): A's centre
    p.inputVolume = a
    _fake_segment_run(logic, p, 0.8, tmp_path)
    seg_a = p.outputSegmentation
    assert seg_a.GetName() == "patient A tumour" and mrml.segment_names(seg_a) == ["Tumor"]
    p.inputVolume = b
    p.seedPoints.SetNthControlPointPosition(0, -148.0, -82.0, 0.0)    # B's centre
    _fake_segment_run(logic, p, 0.3, tmp_path)
    seg_b = p.outputSegmentation
    assert seg_b is not seg_a and seg_b.GetName() == "patient B tumour" and mrml.segment_names(seg_b) == ["Tumor"]
    assert mrml.segment_names(seg_a) == ["Tumor"] and nodes.tumour_result(seg_a, "Tumor")["confidence"] == 0.8
    assert nodes.tumour_result(seg_b, "Tumor")["confidence"] == 0.3
    assert nodes.source_volume_id(seg_a) == a.GetID()     # the tables' rule: linked to its CT (a node reference)
    _fake_segment_run(logic, p, 0.4, tmp_path)                       # the same CT again: its own node
    assert p.outputSegmentation is seg_b and mrml.segment_names(seg_b) == ["Tumor", "Tumor (2)"]
    # lungs of A with B's node as output: a new node "patient A lungs"
    p.inputVolume = a
    job = logic.startLungs(p)
    labels = sitk.Image(20, 20, 10, sitk.sitkUInt8)
    labels.CopyInformation(sitk.ReadImage(str(logic.ctWorkFile(job.workDir))))
    labels[2:8, 2:18, 1:9], labels[12:18, 2:18, 1:9] = 1, 2
    sitk.WriteImage(labels, str(job.outputs))
    logic.loadLungs(p, job)
    assert p.outputSegmentation.GetName() == "patient A lungs" and mrml.segment_names(seg_b) == ["Tumor", "Tumor (2)"]
    # a user's segmentation drawn on A (no lungai tag: its reference geometry says A) picked as output for B
    users = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my contours")
    users.SetReferenceImageGeometryParameterFromVolumeNode(a)
    users.GetSegmentation().AddEmptySegment("GTV", "GTV")
    p.inputVolume, p.outputSegmentation = b, users
    _fake_segment_run(logic, p, 0.5, tmp_path)
    assert p.outputSegmentation is not users and mrml.segment_names(users) == ["GTV"]
    assert users.GetNodeReferenceID("referenceImageGeometryRef") == a.GetID()
    p.inputVolume, p.outputSegmentation = a, users                   # the user's node of this CT: used
    p.seedPoints.SetNthControlPointPosition(0, -40.0, -40.0, 25.0)
    _fake_segment_run(logic, p, 0.5, tmp_path)
    assert p.outputSegmentation is users and mrml.segment_names(users) == ["GTV", "Tumor"]
    with pytest.raises(InputError, match="another CT"):              # never a segment of another CT replaced
        nodes.add_tumour_outputs(mrml_scene, b, labels, labels, {}, seg_node=seg_a, replace_segment="Tumor")


def _surface_segmentation(scene, volume_node, name="RTSTRUCT"):
    """A user's segmentation of ``volume_node`` whose source representation is the closed surface (as SlicerRT loads
    an RTSTRUCT: contours, a surface made from them) holding a 'GTV' sphere in the CT."""
    import vtk

    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    seg.GetSegmentation().SetSourceRepresentationName("Closed surface")
    bounds = [0.0] * 6
    volume_node.GetRASBounds(bounds)
    sphere = vtk.vtkSphereSource()
    sphere.SetCenter(*[(bounds[2 * k] + bounds[2 * k + 1]) / 2 for k in range(3)])
    sphere.SetRadius(12.0)
    sphere.Update()
    seg.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "GTV", [1.0, 0.0, 0.0])
    return seg


def test_results_never_go_into_a_segmentation_of_surfaces(load_module, mrml_scene, tmp_path):
    """QA: an RTSTRUCT loaded by SlicerRT (source representation: contours / closed surface) picked as the output
    segmentation received the tumour as a segment that Slicer turned into a smoothed surface: its voxels were not the
    result's (LUNG1 lung1's 837-voxel tumour came back as 777, Dice 0.94; the recorded volume kept the original's) and
    the user's RTSTRUCT node was changed.  Such a node is now left alone: the results go to a new node "<CT> tumour",
    voxel for voxel; replacing one of its segments is refused with what to do."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    users = _surface_segmentation(mrml_scene, a)
    p.outputSegmentation = users
    _fake_segment_run(logic, p, 0.7, tmp_path)
    assert p.outputSegmentation is not users and p.outputSegmentation.GetName() == "patient A tumour"
    assert mrml.segment_names(users) == ["GTV"] and mrml.source_representation(users) == "Closed surface"
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.outputSegmentation, "Tumor", a))
    expected = np.zeros(tumour.shape, np.uint8)
    expected[4:7, 9:12, 9:12] = 1                       # _fake_segment_run's 3-voxel cube, as written
    np.testing.assert_array_equal(tumour, expected)
    assert nodes.tumour_result(p.outputSegmentation, "Tumor")["confidence"] == 0.7
    with pytest.raises(InputError, match="binary labelmap") as error:
        nodes.add_tumour_outputs(mrml_scene, a, mrml.segment_to_mask(mrml_scene, p.outputSegmentation, "Tumor", a),
                                 None, {}, seg_node=users, replace_segment="GTV")
    assert "Make source" in error.value.fix
    # the lungs likewise; the same node once its source is the binary labelmap (the user converted it): used
    lungs, _ = nodes.add_lung_outputs(mrml_scene, a, mrml.segment_to_mask(mrml_scene, p.outputSegmentation, "Tumor", a),
                                      seg_node=users)
    assert lungs is not users and mrml.segment_names(users) == ["GTV"] and not mrml.stores_labelmaps(users)
    users.GetSegmentation().CreateRepresentation("Binary labelmap")
    users.GetSegmentation().SetSourceRepresentationName("Binary labelmap")
    p.outputSegmentation = users
    _fake_segment_run(logic, p, 0.6, tmp_path)
    assert p.outputSegmentation is users and mrml.segment_names(users) == ["GTV", "Tumor"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, users, "Tumor", a)), expected)


def test_each_tumour_segment_keeps_its_own_confidence(load_module, mrml_scene, tmp_path):
    """QA: a second run on the same CT (another model) adds "Tumor (2)" to "<CT> tumour", and the node's attributes
    LungAI.confidence / needs_review / tumor_volume_ml then carried run 2's values: "Tumor"'s own were nowhere,
    while downstream modules measure "Tumor"; run 2's table / uncertainty were linked to no CT nor segment.  Each
    segment carries its own result as tags (saved in the .mrb), the node none; the outputs name and link their
    segment and CT; the panels warn when the tumour used is flagged for review and say which of several is used."""
    from lungai import mrml
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path, needs_review=True, review_reasons=["low confidence"],
                      tumor_volume_ml=1.29, model="/models/lungai-seg-default")
    seg, first = p.outputSegmentation, (p.uncertaintyVolume, mrml_scene.GetFirstNodeByName("patient A tumour confidence"))
    p.model = "DynUNet (seed / ROI)"
    _fake_segment_run(logic, p, 0.71, tmp_path, tumor_volume_ml=26.6, model="/models/lungai-seg-dynunet")
    assert p.outputSegmentation is seg and mrml.segment_names(seg) == ["Tumor", "Tumor (2)"]
    assert [mrml.segment_tag(seg, name, "LungAI.confidence") for name in ("Tumor", "Tumor (2)")] == ["0.35", "0.71"]
    assert [seg.GetAttribute(f"LungAI.{k}") for k in ("confidence", "needs_review", "tumor_volume_ml")] == [None] * 3
    table2 = mrml_scene.GetFirstNodeByName("patient A Tumor (2) confidence")
    assert table2 is not None and nodes.source_volume_id(table2) == a.GetID()
    assert nodes.tumour_result(seg, "Tumor") == {
        "confidence": 0.35, "needs_review": True, "review_reasons": ["low confidence"], "review_threshold": 0.5,
        "tumor_volume_ml": 1.29, "method": "mc-dropout", "model": "lungai-seg-default"}
    assert nodes.tumour_result(seg, "Tumor (2)") == {
        "confidence": 0.71, "needs_review": False, "review_threshold": 0.5, "tumor_volume_ml": 26.6,
        "method": "mc-dropout", "model": "lungai-seg-dynunet"}
    assert [seg.GetAttribute(f"LungAI.{k}") for k in ("confidence", "needs_review", "tumor_volume_ml")] == [None] * 3
    # each run's table and uncertainty: named after and linked to its segment and the CT
    second = (p.uncertaintyVolume, mrml_scene.GetFirstNodeByName("patient A Tumor (2) confidence"))
    assert second[0].GetName() == "patient A Tumor (2) uncertainty" and second[1] is not None
    for outputs, name in ((first, "Tumor"), (second, "Tumor (2)")):
        for node in outputs:
            linked, segment_id = nodes.linked_segment(node)
            assert linked is seg and seg.GetSegmentation().GetSegment(segment_id).GetName() == name, node.GetName()
            assert nodes.source_volume_id(node) == a.GetID(), node.GetName()
    assert nodes.table_rows(second[1])[0]["segment"] == "Tumor (2)"
    # downstream: the tumour used is named, the other is said unused, its review flag is a warning
    choice = nodes.tumour_segment_choice(seg)
    # ("Tumor (2)" has no tumour name but lungai's tumour terminology: a tumour segment, not the primary one)
    assert choice.splitlines()[:2] == [
        "tumour: Tumor (primary of 2 GTVs: Tumor, Tumor (2))", "the other tumour segment 'Tumor (2)' is not used (to "
        "use one of them instead, rename 'Tumor' and name that one 'Tumor')"], choice
    assert "warning: the segment 'Tumor' of patient A tumour is flagged for expert review" in choice
    assert "(low confidence, confidence 0.35)" in choice
    radiomics = load_module("LungRadiomics").LungRadiomicsLogic
    notes = radiomics.reviewNotes(seg, ["Tumor", "Tumor (2)", "Lungs"])
    assert len(notes) == 1 and "'Tumor'" in notes[0] and "expert review" in notes[0]
    # saved and reloaded (.mrb): the tags and links stay
    path = mrml.save_scene(mrml_scene, tmp_path / "scene.mrb")
    again = mrml.load_scene(path, tmp_path / "unpacked")
    seg2 = again.GetFirstNodeByName("patient A tumour")
    assert nodes.tumour_result(seg2, "Tumor")["confidence"] == 0.35 and nodes.tumour_result(seg2, "Tumor")["needs_review"]
    assert nodes.tumour_result(seg2, "Tumor (2)")["tumor_volume_ml"] == 26.6
    table2 = again.GetFirstNodeByName("patient A Tumor (2) confidence")
    linked, segment_id = nodes.linked_segment(table2)
    assert linked is seg2 and seg2.GetSegmentation().GetSegment(segment_id).GetName() == "Tumor (2)"
    assert nodes.source_volume_id(table2) == again.GetFirstNodeByName("patient A").GetID()


def test_outputs_are_named_after_their_segments_current_names(load_module, mrml_scene, tmp_path):
    """QA: the user renamed "Tumor" to "My GTV" and segmented again (new "Tumor", ID Tumor_1): the earlier run's
    table, "patient A tumour confidence", still said segment=Tumor and the new one was "... tumour confidence_1", so
    "Tumor" pointed at the old run's numbers.  When outputs are added, the earlier outputs linked to segments of that
    segmentation take their segment's current name (node name and ``segment`` cell); outputs the user renamed are
    left as they are."""
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path)
    seg, unc1 = p.outputSegmentation, p.uncertaintyVolume
    table1 = mrml_scene.GetFirstNodeByName("patient A tumour confidence")
    for node in (table1, unc1):        # a scene saved before the name attribute: its segment cell tells lungai's name
        node.RemoveAttribute(nodes.MADE_NAME_ATTRIBUTE)
    seg.GetSegmentation().GetSegment(nodes.linked_segment(table1)[1]).SetName("My GTV")
    _fake_segment_run(logic, p, 0.71, tmp_path)
    assert (table1.GetName(), unc1.GetName()) == ("patient A My GTV confidence", "patient A My GTV uncertainty")
    assert nodes.table_rows(table1)[0]["segment"] == "My GTV" and nodes.table_rows(table1)[0]["confidence"] == "0.35"
    table2, unc2 = mrml_scene.GetFirstNodeByName("patient A tumour confidence"), p.uncertaintyVolume
    assert table2 is not None and table2 is not table1 and unc2.GetName() == "patient A tumour uncertainty"
    assert nodes.table_rows(table2)[0]["segment"] == "Tumor" and nodes.table_rows(table2)[0]["confidence"] == "0.71"
    for node, name in ((table1, "My GTV"), (unc1, "My GTV"), (table2, "Tumor"), (unc2, "Tumor")):
        linked, segment_id = nodes.linked_segment(node)
        assert linked is seg and seg.GetSegmentation().GetSegment(segment_id).GetName() == name, node.GetName()
    # an output the user renamed is theirs: kept (name and cells); the others follow the segments again
    table2.SetName("my notes")
    seg.GetSegmentation().GetSegment(nodes.linked_segment(table2)[1]).SetName("second")
    _fake_segment_run(logic, p, 0.5, tmp_path)
    assert table2.GetName() == "my notes" and nodes.table_rows(table2)[0]["segment"] == "Tumor"
    assert unc2.GetName() == "patient A second uncertainty" and table1.GetName() == "patient A My GTV confidence"
    assert mrml_scene.GetFirstNodeByName("patient A tumour confidence") is not None


def test_outputs_of_a_deleted_segment_never_follow_a_later_segment_of_its_id(load_module, mrml_scene, tmp_path):
    """QA: outputs were linked to their segment by its ID only, and Slicer gives a new segment the ID of a deleted
    one: "Tumor" deleted, run again (new "Tumor", ID Tumor), renamed "GTV-1", run again - the deleted run's table
    became "patient A GTV-1 confidence" (its 0.35, segment=GTV-1) and GTV-1's own (0.71) "..._1"; the uncertainty
    volumes likewise.  A run's token (segment tag, output attribute) links them: the deleted run's outputs are
    linked to no segment and never renamed; saved and reloaded, the same.  Outputs and segments of a scene saved
    before the token (neither has one) stay linked by ID."""
    from lungai import mrml
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path)
    seg, unc1 = p.outputSegmentation, p.uncertaintyVolume
    table1 = mrml_scene.GetFirstNodeByName("patient A tumour confidence")
    seg.GetSegmentation().RemoveSegment("Tumor")
    assert nodes.linked_segment(table1) == (None, None)
    _fake_segment_run(logic, p, 0.71, tmp_path)
    unc2 = p.uncertaintyVolume
    table2 = next(node for node in nodes.segment_outputs(mrml_scene, seg) if node.IsA("vtkMRMLTableNode"))
    assert nodes.linked_segment(table2) == (seg, "Tumor") and nodes.linked_segment(unc2) == (seg, "Tumor")
    assert nodes.linked_segment(table1) == (None, None) and nodes.linked_segment(unc1) == (None, None)
    seg.GetSegmentation().GetSegment("Tumor").SetName("GTV-1")
    _fake_segment_run(logic, p, 0.50, tmp_path)
    assert mrml.segment_names(seg) == ["GTV-1", "Tumor"]
    gtv = mrml_scene.GetFirstNodeByName("patient A GTV-1 confidence")
    assert gtv is table2 and nodes.table_rows(gtv)[0]["confidence"] == "0.71"
    assert nodes.table_rows(gtv)[0]["segment"] == "GTV-1"
    assert unc2.GetName() == "patient A GTV-1 uncertainty"
    # the deleted run's outputs: their values as they were, linked to nothing, said gone (lungsrerun60: the next
    # run's outputs take the standard names, retire_segment_outputs)
    assert (table1.GetName(), unc1.GetName()) == ("patient A tumour confidence (segment gone)",
                                                  "patient A tumour uncertainty (segment gone)")
    assert nodes.table_rows(table1)[0]["segment"] == "Tumor" and nodes.table_rows(table1)[0]["confidence"] == "0.35"
    assert nodes.linked_segment(table1) == (None, None) and nodes.linked_segment(unc1) == (None, None)
    assert len(nodes.segment_outputs(mrml_scene, seg)) == 4           # GTV-1's and the new Tumor's
    # saved and reloaded: the tokens stay (segment tags, node attributes)
    path = mrml.save_scene(mrml_scene, tmp_path / "scene.mrb")
    again = mrml.load_scene(path, tmp_path / "unpacked")
    seg2 = again.GetFirstNodeByName("patient A tumour")
    assert nodes.linked_segment(again.GetFirstNodeByName("patient A tumour confidence (segment gone)")) == (None, None)
    linked, segment_id = nodes.linked_segment(again.GetFirstNodeByName("patient A tumour confidence"))
    assert linked is seg2 and seg2.GetSegmentation().GetSegment(segment_id).GetName() == "Tumor"   # the new run's
    linked, segment_id = nodes.linked_segment(again.GetFirstNodeByName("patient A GTV-1 confidence"))
    assert linked is seg2 and seg2.GetSegmentation().GetSegment(segment_id).GetName() == "GTV-1"
    # a scene saved before the token: neither the segment nor its outputs have one - linked by ID
    for node in (gtv, unc2):
        node.RemoveAttribute(nodes.RUN_TAG)
    assert nodes.linked_segment(gtv) == (None, None)                  # the segment has a token, the output none
    seg.GetSegmentation().GetSegment("Tumor").RemoveTag(nodes.RUN_TAG)
    assert nodes.linked_segment(gtv) == (seg, "Tumor") and nodes.linked_segment(unc2) == (seg, "Tumor")


def _old_scene_segment(load_module, mrml_scene, tmp_path, **attributes):
    """A tumour segment made by a run (3x3x3 voxels of 4 x 4 x 5 mm: 2.16 ml) whose result is saved as an older version
    saved it: node attributes ``attributes``, no tags.  Returns (logic, parameter node, segmentation)."""
    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path)
    seg = p.outputSegmentation
    segment = seg.GetSegmentation().GetNthSegment(0)
    for key in ("confidence", "needs_review", "review_threshold", "tumor_volume_ml", "method", "model", "outline"):
        segment.RemoveTag(f"LungAI.{key}")                         # as an older version saved it
    for key, value in attributes.items():
        seg.SetAttribute(f"LungAI.{key}", value)
    return logic, p, seg


def test_a_scene_of_an_older_version_moves_its_node_confidence_to_the_segment(load_module, mrml_scene, tmp_path):
    """A node saved with the old node attributes: they describe its one lungai tumour segment (its volume is still
    their tumor_volume_ml), read so before any run (QA: an old scene just opened warned of nothing), and on the next
    run they move onto it, never stay on the node to be read as the new segment's."""
    from lungai import mrml
    from lungai.scene import nodes

    logic, p, seg = _old_scene_segment(load_module, mrml_scene, tmp_path, confidence="0.35", needs_review="True",
                                       review_threshold="0.5", tumor_volume_ml="2.16")
    old = {"confidence": 0.35, "needs_review": True, "review_threshold": 0.5, "tumor_volume_ml": 2.16}
    assert nodes.tumour_result(seg, "Tumor") == old                 # read-only: the node keeps them until a run
    assert seg.GetAttribute("LungAI.confidence") == "0.35"
    assert "flagged for expert review by Lung AI Segmentation (low confidence, confidence 0.35)" in \
        nodes.tumour_segment_choice(seg)
    _fake_segment_run(logic, p, 0.71, tmp_path)
    assert seg.GetAttribute("LungAI.confidence") is None and mrml.segment_tag(seg, "Tumor", "LungAI.confidence") == "0.35"
    assert nodes.tumour_result(seg, "Tumor") == old
    assert nodes.tumour_result(seg, "Tumor (2)")["confidence"] == 0.71
    assert seg.GetAttribute("LungAI.confidence") is None and seg.GetAttribute("LungAI.needs_review") is None


def test_old_node_attributes_of_a_deleted_run_never_describe_another_segment(load_module, mrml_scene, tmp_path):
    """QA: an older scene's node attributes are the LAST run's ("Tumor (2)", 26.6 ml, confidence 0.71); the user
    deleted "Tumor (2)", and they were then moved onto run 1's "Tumor" (2.16 ml) as its confidence.  They describe
    the one lungai tumour only when its volume is still theirs, else they are dropped (nor read before a run)."""
    from lungai import mrml
    from lungai.scene import nodes

    logic, p, seg = _old_scene_segment(load_module, mrml_scene, tmp_path, confidence="0.71", needs_review="False",
                                       review_threshold="0.5", tumor_volume_ml="26.6")
    assert nodes.tumour_result(seg, "Tumor") == {}
    _fake_segment_run(logic, p, 0.9, tmp_path)
    assert nodes.tumour_result(seg, "Tumor") == {} and mrml.segment_tag(seg, "Tumor", "LungAI.confidence") is None
    assert seg.GetAttribute("LungAI.confidence") is None and seg.GetAttribute("LungAI.tumor_volume_ml") is None
    assert nodes.tumour_result(seg, "Tumor (2)")["confidence"] == 0.9


def test_an_old_flag_without_reasons_says_low_confidence_only_below_the_threshold(load_module, mrml_scene, tmp_path):
    """QA: an older scene's review flag has no reasons recorded; "(low confidence, confidence 0.80)" was said with a
    threshold of 0.5 (another reason flagged it: a tumour cut by the scan, an incomplete model ...)."""
    from lungai.scene import nodes

    _, _, seg = _old_scene_segment(load_module, mrml_scene, tmp_path)
    segment = seg.GetSegmentation().GetNthSegment(0)
    for key, value in (("confidence", "0.80"), ("needs_review", "True"), ("review_threshold", "0.5")):
        segment.SetTag(f"LungAI.{key}", value)                      # as the previous version migrated them
    note = nodes.review_note(seg, "Tumor")      # ... without the outline: the flag is of lungai's outline (tumourflag59)
    assert "(reason not recorded (scene of an older version), confidence 0.80)" in note, note
    assert "low confidence" not in note and "the flag and confidence describe that outline" in note, note
    for key in ("confidence", "needs_review", "review_threshold"):
        segment.RemoveTag(f"LungAI.{key}")
    for key, value in (("confidence", "0.80"), ("needs_review", "True"), ("review_threshold", "0.5"),
                       ("tumor_volume_ml", "2.16")):
        seg.SetAttribute(f"LungAI.{key}", value)                     # an old scene just opened: read as they are
    note = nodes.review_note(seg, "Tumor")
    assert "(reason not recorded (scene of an older version), confidence 0.80): check and correct it" in note, note
    assert "low confidence" not in note
    seg.SetAttribute("LungAI.confidence", "0.35")
    assert "(low confidence, confidence 0.35): check and correct it" in nodes.review_note(seg, "Tumor")


def _set_box(seg_node, segment_id, volume_node, half):
    """Overwrite the segment's labelmap in place (as Segment Editor does: its tags stay) with a cube of side
    2 * half + 1 voxels around the CT's centre."""
    import slicer

    from lungai import mrml

    ct = mrml.image_from_volume_node(volume_node)
    mask = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(ct)
    c = [n // 2 for n in ct.GetSize()]
    mask[c[0] - half:c[0] + half + 1, c[1] - half:c[1] + half + 1, c[2] - half:c[2] + half + 1] = 1
    scene = volume_node.GetScene()
    label = mrml.volume_node_from_image(scene, mask, "__box", labelmap=True, display=False)
    try:
        image = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(label)
        slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            image, seg_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    finally:
        scene.RemoveNode(label)


def test_a_flagged_segment_corrected_by_the_expert_is_no_longer_flagged(load_module, mrml_scene, tmp_path):
    """QA: a tumour flagged for review that the expert corrected in Segment Editor (27 -> 125 voxels) still warned
    "flagged for expert review ... check and correct it" forever, its tags saying 1.29 ml.  The tags record the outline
    they describe; a segment edited since says so ("edited after Lung AI Segmentation ..."), no longer flagged.  The
    same outline in Slicer's other storage (a shared labelmap, a saved and reloaded .seg.nrrd) is no edit."""
    from lungai import mrml
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path, needs_review=True, review_reasons=["low confidence"],
                      tumor_volume_ml=1.29)
    seg = p.outputSegmentation
    radiomics = load_module("LungRadiomics").LungRadiomicsLogic
    assert "check and correct it" in nodes.review_note(seg, "Tumor")
    # the same outline, stored otherwise: another segment sharing its labelmap, saved and reloaded
    other = sitk.Image(_tumour_mask(a))
    other[1:4, 1:4, 1:3] = 1
    other[8:13, 8:13, 4:7] = 0
    mrml.mask_to_segment(mrml_scene, other, "Right lung", seg_node=seg)
    segmentation = seg.GetSegmentation()
    tumour_id = segmentation.GetSegmentIdBySegmentName("Tumor")
    segmentation.CollapseBinaryLabelmaps(False)
    assert segmentation.GetNumberOfLayers() == 1 and segmentation.GetSegment(tumour_id).GetLabelValue() != 0
    assert "check and correct it" in nodes.review_note(seg, "Tumor")
    assert "edited" not in nodes.tumour_result(seg, "Tumor")
    path = mrml.save_scene(mrml_scene, tmp_path / "scene.mrb")
    again = mrml.load_scene(path, tmp_path / "unpacked")
    seg2 = again.GetFirstNodeByName("patient A tumour")
    assert "check and correct it" in nodes.review_note(seg2, "Tumor")
    # the expert's correction
    segment_id = seg2.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    _set_box(seg2, segment_id, again.GetFirstNodeByName("patient A"), 2)
    result = nodes.tumour_result(seg2, "Tumor")
    assert result["edited"] is True and result["confidence"] == 0.35 and result["tumor_volume_ml"] == 1.29
    note = nodes.review_note(seg2, "Tumor")
    assert note == ("the segment 'Tumor' of patient A tumour was edited after Lung AI Segmentation (its confidence "
                    "0.35 described the original outline)"), note
    assert "check and correct it" not in nodes.tumour_segment_choice(seg2)
    assert "edited after Lung AI Segmentation" in nodes.tumour_segment_choice(seg2)
    assert not any("check and correct it" in n for n in radiomics.reviewNotes(seg2, ["Tumor"]))


def test_a_bar_in_a_tag_value_survives_a_saved_scene(load_module, mrml_scene, tmp_path):
    """QA: a .seg.nrrd stores a segment's tags as "key:value|key:value": a model folder named "lungai|v2" came back
    as "lungai" after a reload.  Tag values are written with "|" escaped."""
    from lungai import mrml
    from lungai.scene import nodes

    a, logic, p = _seeded_patient_a(load_module, mrml_scene)
    _fake_segment_run(logic, p, 0.35, tmp_path, needs_review=True, review_reasons=["a|b 50%7C", "cut: top"],
                      model="/models/lungai|v2 100%")
    path = mrml.save_scene(mrml_scene, tmp_path / "scene.mrb")
    seg2 = mrml.load_scene(path, tmp_path / "unpacked").GetFirstNodeByName("patient A tumour")
    result = nodes.tumour_result(seg2, "Tumor")
    assert result["model"] == "lungai|v2 100%" and result["review_reasons"] == ["a|b 50%7C", "cut: top"], result
    assert result["needs_review"] and result["confidence"] == 0.35 and "edited" not in result


def _tumour_mask(volume_node):
    from lungai import mrml

    ct = mrml.image_from_volume_node(volume_node)
    mask = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(ct)
    centre = [n // 2 for n in ct.GetSize()]
    mask[centre[0] - 1:centre[0] + 2, centre[1] - 1:centre[1] + 2, centre[2] - 1:centre[2] + 2] = 1
    return mask


def _add_tumour(scene, volume_node, seg_node=None, replace_segment=None):
    from lungai.scene import nodes

    mask = _tumour_mask(volume_node)
    return nodes.add_tumour_outputs(scene, volume_node, mask, sitk.Cast(mask, sitk.sitkFloat32), {},
                                    seg_node=seg_node, replace_segment=replace_segment)["segmentation"]


def test_imported_scene_keeps_each_result_with_its_ct(mrml_scene, tmp_path):
    """A saved scene imported into a scene that already has a CT (Add Data of a .mrml / .mrb): MRML renames the
    clashing node IDs and updates node references, never attributes - the CT link is a reference
    (nodes.SOURCE_VOLUME_ATTRIBUTE), so the imported "A tumour" / "A radiomics" still belong to A, not to the CT B
    that now has A's old ID (B's tumour went into "A tumour", A's re-run made "A tumour_1")."""
    import pandas as pd
    from lungai import mrml
    from lungai.scene import nodes
    from slicer_module_helpers import headless_scene, restore_headless_scene

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    seg_a = _add_tumour(mrml_scene, a)
    table_a = nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [1.0]}), "A radiomics", a)
    for node, name in ((a, "a.nrrd"), (seg_a, "a.seg.nrrd"), (table_a, "a.csv")):
        node.AddDefaultStorageNode()
        node.GetStorageNode().SetFileName(str(tmp_path / name))
        assert node.GetStorageNode().WriteData(node)
    mrml_scene.SetURL(str(tmp_path / "s.mrml"))
    assert mrml_scene.Commit()
    scene, token = headless_scene()
    try:
        b = _small_ct(scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
        assert b.GetID() == a.GetID()                       # the clash
        scene.SetURL(str(tmp_path / "s.mrml"))
        assert scene.Import()
        a2, seg, table = (scene.GetFirstNodeByName(n) for n in ("A", "A tumour", "A radiomics"))
        assert a2.GetID() != b.GetID()
        assert nodes.source_volume_id(seg) == a2.GetID() and nodes.source_volume_id(table) == a2.GetID()
        seg_b = _add_tumour(scene, b, seg_node=seg)          # B's tumour: a new node, "A tumour" untouched
        assert seg_b is not seg and seg_b.GetName() == "B tumour" and mrml.segment_names(seg) == ["Tumor"]
        assert _add_tumour(scene, a2, seg_node=seg) is seg and mrml.segment_names(seg) == ["Tumor", "Tumor (2)"]
        frame = pd.DataFrame({"feature": ["f"], "Tumor": [2.0]})
        assert nodes.volume_table(scene, frame, "B radiomics", b, node=table) is not table
        assert nodes.volume_table(scene, frame, "A radiomics", a2, node=table) is table
    finally:
        restore_headless_scene(scene, token)


def test_old_scene_source_attribute_is_read_with_care(mrml_scene):
    """A scene saved before the CT link was a reference: the attribute LungAI.sourceVolume is read when no
    reference exists - for a segmentation only when its reference geometry agrees (an imported scene's stale
    attribute names another CT); a table's as it is."""
    from lungai import mrml
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
    seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "old A tumour")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(a)
    seg.SetAttribute(nodes.SOURCE_VOLUME_ATTRIBUTE, a.GetID())
    assert nodes.source_volume_id(seg) == a.GetID() and nodes.volume_segmentation(seg, b) is None
    seg.SetAttribute(nodes.SOURCE_VOLUME_ATTRIBUTE, b.GetID())          # stale: the geometry says A
    assert nodes.source_volume_id(seg) == ""
    table = mrml.table_node_from_dataframe(mrml_scene, __import__("pandas").DataFrame({"x": [1]}), "old table")
    table.SetAttribute(nodes.SOURCE_VOLUME_ATTRIBUTE, b.GetID())
    assert nodes.source_volume_id(table) == b.GetID()
    nodes.set_source_volume(table, a)                                    # rewritten as a reference
    assert nodes.source_volume_id(table) == a.GetID() and table.GetAttribute(nodes.SOURCE_VOLUME_ATTRIBUTE) is None


def test_old_scene_node_with_two_runs_tumours_is_not_reused(mrml_scene):
    """A node saved when every CT's tumour went into one node ("A tumour" with A's Tumor and B's Tumor (2),
    reference geometry moved to B, no CT link) is reused for neither CT: B's re-run no longer adds "Tumor (3)"
    to it (tagging A's node as B's)."""
    from lungai import mrml
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
    old = None
    for ct in (a, b):
        old, segment_id = mrml.mask_to_segment(mrml_scene, _tumour_mask(ct), "Tumor", seg_node=old,
                                               reference_volume_node=ct)
        nodes.mark_made_by(old, segment_id, "lungai segment")
    assert mrml.segment_names(old) == ["Tumor", "Tumor (2)"] and nodes.source_volume_id(old) == ""
    for ct in (b, a):
        assert _add_tumour(mrml_scene, ct, seg_node=old) is not old
    assert mrml.segment_names(old) == ["Tumor", "Tumor (2)"] and nodes.source_volume_id(old) == ""


def test_radiomics_and_stage_refuse_another_cts_segmentation(load_module, mrml_scene, tmp_path):
    """Lung Radiomics / Multimodal Predict's CT branch refuse a segmentation of another CT (lungai's results of
    another CT, or a user's drawn on another image): A's tumour was measured on B's image and filed as B's row.
    The panel offers the CT's own segmentation."""
    from lungai import mrml
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
    seg_a, seg_b = _add_tumour(mrml_scene, a), _add_tumour(mrml_scene, b)
    users = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my contours")
    users.SetReferenceImageGeometryParameterFromVolumeNode(a)
    mrml.mask_to_segment(mrml_scene, _tumour_mask(a), "GTV", seg_node=users, reference_volume_node=a)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = b, seg_a, ["Tumor"]
    assert "holds the results of another CT (A), not of B" in logic.inputProblem(p)
    p.segmentation, p.selectedSegments = users, ["GTV"]
    assert "drawn on another image (A), not on B" in logic.inputProblem(p)
    p.segmentation, p.selectedSegments = seg_b, ["Tumor"]
    assert logic.inputProblem(p) is None
    assert nodes.volume_segmentation_default(mrml_scene, b) is seg_b
    assert nodes.volume_segmentation_default(mrml_scene, a) is seg_a
    stage = load_module("MultimodalPredict").MultimodalPredictLogic()
    q = stage.getParameterNode()
    q.stageModelDirectory, q.stageVolume, q.stagePatient, q.stageSegmentation = str(_stage_model(tmp_path)), b, "P1", \
        seg_a
    assert "holds the results of another CT (A)" in stage.stageInputProblem(q)
    q.stageSegmentation = seg_b
    assert stage.stageInputProblem(q) is None


def test_stage_ct_branch_selects_the_cts_own_segmentation(load_module, mrml_scene, tmp_path):
    """QA defect: Multimodal Predict's CT branch refused another CT's segmentation but did not select the CT's own
    one, as Lung Radiomics does: the same default now (nodes.own_segmentation over volume_segmentation_default),
    in the logic, so the widget only calls it when the CT changes."""
    from lungai import mrml
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
    seg_a, seg_b = _add_tumour(mrml_scene, a), _add_tumour(mrml_scene, b)
    stage = load_module("MultimodalPredict").MultimodalPredictLogic()
    q = stage.getParameterNode()
    q.stageModelDirectory, q.stagePatient, q.stageVolume = str(_stage_model(tmp_path)), "P1", b
    assert stage.offerStageSegmentation(q) is seg_b and q.stageSegmentation is seg_b    # none chosen: B's own
    q.stageVolume = a                                                                 # another CT: its own one
    assert stage.offerStageSegmentation(q) is seg_a and q.stageSegmentation is seg_a
    assert stage.stageInputProblem(q) is None
    users = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my contours")    # a user's of A: kept
    users.SetReferenceImageGeometryParameterFromVolumeNode(a)
    mrml.mask_to_segment(mrml_scene, _tumour_mask(a), "GTV", seg_node=users, reference_volume_node=a)
    q.stageSegmentation = users
    assert stage.offerStageSegmentation(q) is users and q.stageSegmentation is users
    q.stageVolume = b                                                  # drawn on A: B's own one instead
    assert stage.offerStageSegmentation(q) is seg_b
    c = _small_ct(mrml_scene, "C", (10, 10, 10), (-300.0, 0.0, 0.0))  # a CT without a segmentation of its own
    q.stageVolume = c
    assert stage.offerStageSegmentation(q) is seg_b and "holds the results of another CT" in stage.stageInputProblem(q)
    # the one rule of both panels
    assert nodes.own_segmentation(mrml_scene, a, None) is nodes.volume_segmentation_default(mrml_scene, a)


def test_console_segment_refuses_another_cts_node_before_inference(mrml_scene, monkeypatch):
    """lungai.scene.segment.segment_tumour_node(seg_node=<another CT's node>, replace_segment="Tumor") is refused
    before the model is loaded and run (minutes on a real CT), not after."""
    from lungai.errors import InputError
    from lungai.scene import segment

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (24, 16, 12), (100.0, 50.0, -30.0))
    seg_a = _add_tumour(mrml_scene, a)

    def no_inference(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(segment, "load_model", no_inference)
    with pytest.raises(InputError, match="another CT"):
        segment.segment_tumour_node(mrml_scene, b, seg_node=seg_a, replace_segment="Tumor")


def test_seed_is_the_first_placed_point(load_module, mrml_scene, phantom_nodes, tmp_path):
    """An unplaced (undefined) or missing control point is never the seed (its stored position is stale): the
    first placed point is; none placed is refused; several placed points are said (one seed is used)."""
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "seed"
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(50.0, 60.0, 70.0, "F-1")
    p.seedPoints.AddControlPoint(10.0, -20.0, 30.0, "F-2")
    for unplace in (p.seedPoints.UnsetNthControlPointPosition, p.seedPoints.SetNthControlPointPositionMissing):
        unplace(0)
        assert logic.segmentationInputProblem(p) is None
        args = logic.segmentationCommand(p, tmp_path)
        assert args[args.index("--seed-point") + 1] == "-10.000,20.000,30.000"      # F-2, not F-1's stale position
        assert logic.segmentationInputNotes(p) == []
        p.seedPoints.SetNthControlPointPosition(0, 50.0, 60.0, 70.0)
    notes = logic.segmentationInputNotes(p)
    assert notes == ["F has 2 placed points: only the first, 'F-1', is used as the seed (not 'F-2'); "
                     "delete the others to avoid doubt"]
    args = logic.segmentationCommand(p, tmp_path)
    assert args[args.index("--seed-point") + 1] == "-50.000,-60.000,70.000"
    p.seedPoints.UnsetNthControlPointPosition(0)
    p.seedPoints.SetNthControlPointPositionMissing(1)
    assert "Place a seed point" in logic.segmentationInputProblem(p)
    from lungai.errors import InputError
    from lungai.scene import nodes

    with pytest.raises(InputError, match="no placed point"):
        nodes.point_to_lps(p.seedPoints)


def test_rotated_roi_is_said_to_be_its_bounding_box(load_module, mrml_scene, phantom_nodes, tmp_path):
    """A rotated ROI is segmented in its axis-aligned bounding box: the panel says so with both volumes."""
    import vtk

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    p.roi.SetXYZ(0.0, 0.0, 50.0)
    p.roi.SetRadiusXYZ(10.0, 10.0, 10.0)
    assert logic.segmentationInputNotes(p) == []
    for degrees in (90.0, 45.0):
        rotation = vtk.vtkTransform()
        rotation.RotateZ(degrees)
        p.roi.SetAndObserveObjectToNodeMatrix(rotation.GetMatrix())
        if degrees == 90.0:
            assert logic.segmentationInputNotes(p) == []                   # still axis-aligned
    assert logic.segmentationInputProblem(p) is None
    assert logic.segmentationInputNotes(p) == [
        "The ROI 'R' is rotated: a rotated ROI is used as its axis-aligned bounding box, 16.0 ml instead of 8.0 ml "
        "(reset the ROI's rotation to segment in the drawn box)"]


def test_failure_names_nodes_not_temporary_files(load_module, mrml_scene, phantom_nodes, rp_model, tmp_path):
    """A child's error on an exported file names the node / segment (real `lungai lungs` run for the CT);
    the fix line comes with it."""
    import json

    import pandas as pd
    from lungai import mrml

    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = mrml.volume_node_from_image(mrml_scene, sitk.Image(20, 20, 10, sitk.sitkInt16) + 500, "MR-like")
    with pytest.raises(RuntimeError) as failed:
        logic.run(logic.startLungs, p, timeout=120)
    shown = str(failed.value).split(" failed: ", 1)[1]
    assert shown.startswith("MR-like does not look like a CT in Hounsfield units") and "ct." not in shown
    assert "How to fix: give a chest CT in HU" in shown

    stage = load_module("MultimodalPredict")
    slogic = stage.MultimodalPredictLogic()
    s = slogic.getParameterNode()
    s.stageModelDirectory = _stage_model(tmp_path / "model")  # a stage model's card: the job is not started
    s.stageVolume, s.stageSegmentation, s.stagePatient = phantom_nodes[0], phantom_nodes[1], "P1"
    job = slogic.startStage(s)
    job.process.prepare().lines = [f"lungai stage predict: error: the tumour mask {job.workDir / 'tumour.nrrd'} "
                                   "is empty"]
    assert job.errorMessage() == f"the tumour mask 'Tumor' ({phantom_nodes[1].GetName()}) is empty"
    job.finish()

    first = pd.read_csv(rp_model[0]).iloc[[0]]                 # the patient's values
    pick = lambda prefix: first[[c for c in first.columns if c.startswith(prefix)]]  # noqa: E731
    s.rpModelDirectory = rp_model[1]
    s.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    s.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")
    # (a form value that is not a number is said before the run: results.form_number_problem; the child's error on
    # its one-row CSV is simulated here, as such a value in a table would give it)
    s.clinicalValues = json.dumps({k: str(v) for k, v in pick("clin_").iloc[0].items() if pd.notna(v)})
    job = slogic.startRisk(s)
    job.process.lines = ["lungai rp predict: error: column 'clin_age_years' (numeric) has a value ['sixty'] that "
                         "is not a number (CSV lines [2])", "  How to fix: give numbers"]
    assert job.errorMessage() == ("column 'clin_age_years' (numeric) has a value ['sixty'] that is not a number\n"
                                  "How to fix: give numbers")
    job.finish()


def test_lungai_seg_lungs_cut_by_the_scan_warns(load_module, mrml_scene, small_phantom):
    """A CT of 5 slices through the lungs: the panel's message after 'Segment lungs' (a `lungai lungs` child
    process) and the console API (lungai.scene.lungs, in-process) carry the warning `lungai lungs` prints."""
    from lungai import mrml
    from lungai.lungs.airways import NO_TRACHEA_NOTE
    from lungai.lungs.segment import SLICE_CUT_NOTE
    from lungai.scene.lungs import segment_lungs_node

    ct = small_phantom.ct[:, :, 18:23]
    node = mrml.volume_node_from_image(mrml_scene, ct, "5 slices")
    warning = "warning: " + SLICE_CUT_NOTE.format("top and bottom slices")
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = node
    message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    lines = message.splitlines()            # no trachea in 5 slices: airways not removed, a warning (QA lungsfollow69)
    assert lines[0].startswith("Right lung ") and lines[1:3] == ["warning: " + NO_TRACHEA_NOTE, warning], message
    assert all(line.startswith("note: ") for line in lines[3:]), message
    _, volumes, cut, _ = segment_lungs_node(mrml_scene, node)
    assert cut == [NO_TRACHEA_NOTE, SLICE_CUT_NOTE.format("top and bottom slices")] and volumes["Right lung"] > 50


def test_lungai_seg_lungs_says_an_uncertain_right_left_as_the_cli(load_module, mrml_scene, small_phantom):
    """QA (slicernotes57): a CT cropped through both lungs with no trachea in view (a scan field of view cut at the
    sides, airways not found) - `lungai lungs` warns "the body is cut by the image's right or left border and no
    trachea was found: the midline, and so which lung is right (1) or left (2), is uncertain", and so does the console
    API, but the panel's message after 'Segment lungs' said only "Right lung N ml, Left lung M ml" and the cut: the
    warning cannot be re-derived from the label file it loads.  The panel's message now carries every warning the
    command printed."""
    from lungai import mrml
    from lungai.lungs.segment import FOV_CUT_NOTE
    from lungai.scene.lungs import segment_lungs_node
    from lungai.synthetic import labels as L

    hu = sitk.GetArrayFromImage(small_phantom.ct)
    hu[sitk.GetArrayViewFromImage(small_phantom.labels) == L.AIRWAYS] = 40     # no trachea to find the midline by
    ct = sitk.GetImageFromArray(hu)
    ct.CopyInformation(small_phantom.ct)
    node = mrml.volume_node_from_image(mrml_scene, ct[16:80, :, :], "cropped")  # the sides cut through both lungs
    side = ("the body is cut by the image's right or left border and no trachea was found: the midline, and so which "
            "lung is right (1) or left (2), is uncertain")
    _, _, warnings, _ = segment_lungs_node(mrml_scene, node)                     # the console API says it
    assert side in warnings
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = node
    message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    lines = message.splitlines()
    assert lines[0].startswith("Right lung ") and "warning: " + side in lines[1:], message
    assert lines.count("warning: " + FOV_CUT_NOTE) == 1, message                # printed and re-derived: said once


def test_lungai_seg_lungs_says_the_notes_of_the_cli(load_module, mrml_scene, small_phantom):
    """QA (slicerb57): `lungai lungs` prints "note: ..." lines (its LungResult.notes that are not warnings: the airways
    removed ...) and the Segment lungs panel showed them only in its log box, not in its result text (which said the
    warnings only).  The result text now says every note the command printed, after the warnings, each once.  QA
    lungsfollow69: "no trachea found in the upper slices; airways not removed" (the trachea left in the lungs) is a
    warning with its fix now, said among the warnings, on a CT whose trachea is found a note says the airways
    removed."""
    from lungai import mrml
    from lungai.lungs import segment_lungs
    from lungai.synthetic import labels as L

    hu = sitk.GetArrayFromImage(small_phantom.ct)
    hu[sitk.GetArrayViewFromImage(small_phantom.labels) == L.AIRWAYS] = 40     # no trachea to remove the airways by
    ct = sitk.GetImageFromArray(hu)
    ct.CopyInformation(small_phantom.ct)
    for image, name in ((ct, "no trachea"), (small_phantom.ct, "trachea")):
        result = segment_lungs(image)                                           # what `lungai lungs` prints as notes
        notes = [n for n in result.notes if n not in result.warnings]
        if name == "no trachea":
            assert any("airways not removed" in w and "above the carina" in w for w in result.warnings), result.notes
        else:
            assert any("bronchi removed" in n for n in notes), result.notes
        logic = load_module("LungAISeg").LungAISegLogic()
        p = logic.getParameterNode()
        p.inputVolume = mrml.volume_node_from_image(mrml_scene, image, name)
        message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
        lines = message.splitlines()
        assert lines[0].startswith("Right lung ") and lines[1:] == [f"warning: {w}" for w in result.warnings] + [
            f"note: {n}" for n in notes], message


@pytest.mark.parametrize("case", ["no trachea", "right half"])
def test_lungs_console_api_says_what_the_panel_says(load_module, mrml_scene, small_phantom, case):
    """QA (lungs58): the console API ``segment_lungs_node`` returned the warnings only, not the notes ``lungai lungs``
    prints and the Segment lungs panel says ("no trachea found in the upper slices; airways not removed": the trachea
    then in the lung volume), nor the panel's warning for a map with one lung label.  It returns both now: its
    ``describe_lungs_result`` text is the panel's message on the same CT."""
    from lungai import mrml
    from lungai.scene.lungs import segment_lungs_node
    from lungai.scene.results import describe_lungs_result
    from lungai.synthetic import labels as L

    hu = sitk.GetArrayFromImage(small_phantom.ct)
    if case == "no trachea":
        hu[sitk.GetArrayViewFromImage(small_phantom.labels) == L.AIRWAYS] = 40
    ct = sitk.GetImageFromArray(hu)
    ct.CopyInformation(small_phantom.ct)
    if case == "right half":
        ct = ct[:48, :, :]                                  # the patient's right half: one lung label
    node = mrml.volume_node_from_image(mrml_scene, ct, case)
    _, volumes, warnings, notes = segment_lungs_node(mrml_scene, node)
    # no trachea: its airways-not-removed warning (QA lungsfollow69: a note before); right half: the one-label warning
    assert warnings and (notes or case == "no trachea"), (warnings, notes)
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = node
    message = logic.loadLungs(p, logic.run(logic.startLungs, p, timeout=120))
    assert describe_lungs_result(volumes, warnings, notes) == message


def test_lungs_of_a_ct_showing_one_lung_warn_that_the_side_is_uncertain(mrml_scene, small_phantom, tmp_path):
    """A CT cut through the midline (one lung): the console API (in-process) and the panel's loading of the label
    file of `lungai lungs` (nodes.import_lung_outputs, what loadLungs shows) carry the right/left warning."""
    from lungai import mrml
    from lungai.scene import nodes
    from lungai.scene.lungs import segment_lungs_node
    from lungai.scene.results import describe_lungs_result

    ct = small_phantom.ct[:48, :, :]                  # the patient's right half
    node = mrml.volume_node_from_image(mrml_scene, ct, "right half")
    _, volumes, warnings, _ = segment_lungs_node(mrml_scene, node)
    assert volumes["Right lung"] > 50 and volumes["Left lung"] == 0
    assert any("right/left label is uncertain" in w for w in warnings), warnings
    labels = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(ct)
    labels[10:30, 30:60, 10:30] = 1
    sitk.WriteImage(labels, str(tmp_path / "lungs.nii.gz"))
    _, volumes, warnings = nodes.import_lung_outputs(mrml_scene, tmp_path / "lungs.nii.gz", node)
    message = describe_lungs_result(volumes, warnings)
    assert "warning: the lung map holds only the right lung (label 1), no left lung (label 2)" in message


def test_lungs_with_one_small_lung_warn_in_the_panel(mrml_scene, small_phantom, tmp_path):
    """A lung map whose left lung holds under 15 % of the right (its aerated apex left by a large effusion): the
    panel's loading of the label file of `lungai lungs` (nodes.import_lung_outputs, what loadLungs shows) says so, as
    the command does (its warning was printed only)."""
    from lungai import mrml
    from lungai.lungs.segment import small_lung_notes
    from lungai.scene import nodes
    from lungai.scene.results import describe_lungs_result

    node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "ct")
    labels = sitk.Image(small_phantom.ct.GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(small_phantom.ct)
    labels[10:40, 20:70, 5:35] = 1
    labels[60:70, 30:50, 30:35] = 2                  # 1000 voxels against 45000
    sitk.WriteImage(labels, str(tmp_path / "lungs.nii.gz"))
    _, volumes, warnings = nodes.import_lung_outputs(mrml_scene, tmp_path / "lungs.nii.gz", node)
    message = describe_lungs_result(volumes, warnings)
    assert "warning: the left lung is small (61 ml, under 15 % of the other lung" in message, message
    assert small_lung_notes(labels) and not small_lung_notes(labels[:, :, :30])     # both lungs, one small: only then


def test_lung_radiomics_segment_names_with_one_column_name(load_module, mrml_scene, phantom_nodes):
    """"Tumor" and "Tumour" (or "GTV-1" / "GTV 1") have one feature column name ("tumour"): each ticked segment
    is still its own run and its own column, with radiomics_table's layout and values (one used to be dropped)."""
    from lungai import mrml
    from lungai.scene.radiomics import radiomics_table

    vol, seg = phantom_nodes
    tumour = mrml.segment_to_mask(mrml_scene, seg, "Tumor", vol)
    mrml.mask_to_segment(mrml_scene, sitk.BinaryDilate(sitk.Cast(tumour, sitk.sitkUInt8), [2, 2, 1]), "Tumour",
                         seg_node=seg, reference_volume_node=vol)
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumor", "Tumour"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 2 segments -> table" in message
    panel = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    node, errors = radiomics_table(mrml_scene, vol, seg, segments=p.selectedSegments, feature_classes=["firstorder"])
    core = mrml.dataframe_from_table_node(node).set_index("feature")
    assert not errors and list(panel.columns) == list(core.columns)
    assert panel.index.tolist() == core.index.tolist()
    assert np.allclose(panel[["Tumor", "Tumour"]].to_numpy(float), core[["Tumor", "Tumour"]].to_numpy(float),
                       rtol=1e-6)
    assert panel.loc["original_firstorder_Mean", "Tumor"] != panel.loc["original_firstorder_Mean", "Tumour"]


def test_lung_radiomics_second_ct_gets_its_own_table(load_module, mrml_scene, phantom_nodes, small_phantom, tmp_path):
    """A second CT's features go to a new table named after it (they used to overwrite the first CT's table,
    which kept the first CT's name: the case of a risk prediction); the same CT again updates its table."""
    from lungai import mrml
    from lungai.scene import nodes

    vol, seg = phantom_nodes
    other = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct, sitk.sitkFloat32) + 100.0, "patient B")
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.segmentation, p.selectedSegments = seg, ["Tumor"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)

    def mean(table):
        return mrml.dataframe_from_table_node(table).set_index("feature").loc["original_firstorder_Mean", "Tumor"]

    tables = []
    # B's own ground truth (the same masks): A's segmentation is not measured on B (nodes.segmentation_volume_problem)
    other_seg = sampledata.load_ground_truth(mrml_scene, tmp_path / "labels.nii.gz", other)
    for ct, ct_seg in ((vol, seg), (other, other_seg), (other, other_seg)):
        p.inputVolume, p.segmentation = ct, ct_seg
        logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
        tables.append(p.outputTable)
    first, second, again = tables
    assert first is not second and second is again     # the same CT: its table updated, not a third one
    assert first.GetName() == "phantom CT radiomics" and second.GetName() == "patient B radiomics"
    assert mean(second) == pytest.approx(mean(first) + 100.0, rel=1e-6)   # each table keeps its own CT's values
    assert nodes.source_volume_id(first) == vol.GetID()
    assert mrml_scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 2
    import types

    import pandas as pd

    pd.DataFrame({"case": ["P1"], "value": [1.0]}).to_csv(tmp_path / "cohort.csv", index=False)
    logic.loadBatch(p, types.SimpleNamespace(outputs=tmp_path / "cohort.csv"))   # a batch: a new table too
    assert p.outputTable is not second and second.GetName() == "patient B radiomics" and mean(second) == mean(again)


def test_volume_table_reuses_only_the_same_ct_table(mrml_scene, phantom_nodes, small_phantom, tmp_path):
    """The dose table (nodes.table_from_csv with the CT) follows the same rule: another CT -> a new table, the
    same CT -> the table updated and renamed after the CT's current name."""
    import pandas as pd
    from lungai import mrml
    from lungai.scene import nodes

    vol, _ = phantom_nodes
    other = mrml.volume_node_from_image(mrml_scene, small_phantom.ct, "patient B")
    pd.DataFrame({"case": ["phantom CT"], "dose_mld_gy": [12.0]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"case": ["patient B"], "dose_mld_gy": [7.0]}).to_csv(tmp_path / "b.csv", index=False)
    a = nodes.table_from_csv(mrml_scene, tmp_path / "a.csv", "phantom CT dose features", volume_node=vol)
    b = nodes.table_from_csv(mrml_scene, tmp_path / "b.csv", "patient B dose features", node=a, volume_node=other)
    assert b is not a and b.GetName() == "patient B dose features"
    assert nodes.table_rows(a) == [{"case": "phantom CT", "dose_mld_gy": "12"}]
    other.SetName("patient B (2)")
    again = nodes.table_from_csv(mrml_scene, tmp_path / "b.csv", "patient B (2) dose features", node=b,
                                 volume_node=other)
    assert again is b and b.GetName() == "patient B (2) dose features"
    assert nodes.table_rows(b)[0]["dose_mld_gy"] == "7"


def test_volume_table_finds_the_cts_own_table_and_keeps_ids_as_text(mrml_scene, tmp_path):
    """Back to CT A after CT B (the selector holding B's table), or with no output chosen, A's own table of that
    kind (nodes.find_volume_table: linked to A, tagged by the same kind of run, not renamed) is updated, not a new
    "A dose features_1"; A's radiomics table is never taken for its dose table.  Case / patient ids stay text
    ("001", not 1: nodes.read_results_csv), also in the rows a ``where`` keeps.  The stage output never takes a
    CT's tagged radiomics / dose table for its own (lungai.scene.stage.made_node_or_none: tagged by a stage run)."""
    import pandas as pd
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "001", (8, 8, 4), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "002", (8, 8, 4), (100.0, 0.0, 0.0))
    for name, case, mld in (("a", "001", 12.0), ("b", "002", 7.0), ("a2", "001", 3.0), ("a3", "001", 2.0)):
        pd.DataFrame({"case": [case], "dose_mld_gy": [mld]}).to_csv(tmp_path / f"{name}.csv", index=False)
    dose = nodes.DOSE_MADE_BY
    rad_a = nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [1.0]}), "001 radiomics", a,
                               made_by=nodes.RADIOMICS_MADE_BY)
    dose_a = nodes.table_from_csv(mrml_scene, tmp_path / "a.csv", "001 dose features", volume_node=a, made_by=dose)
    assert dose_a is not rad_a and nodes.table_rows(dose_a) == [{"case": "001", "dose_mld_gy": "12"}]
    dose_b = nodes.table_from_csv(mrml_scene, tmp_path / "b.csv", "002 dose features", node=dose_a, volume_node=b,
                                  made_by=dose)
    assert dose_b is not dose_a and nodes.table_rows(dose_b)[0]["case"] == "002"
    again = nodes.table_from_csv(mrml_scene, tmp_path / "a2.csv", "001 dose features", node=dose_b, volume_node=a,
                                 made_by=dose)
    assert again is dose_a and dose_a.GetName() == "001 dose features"
    assert nodes.table_rows(dose_a)[0]["dose_mld_gy"] == "3" and nodes.table_rows(dose_b)[0]["dose_mld_gy"] == "7"
    assert nodes.table_from_csv(mrml_scene, tmp_path / "a3.csv", "001 dose features", volume_node=a,
                                made_by=dose) is dose_a                 # no output chosen
    assert nodes.table_rows(rad_a) == [{"feature": "f", "Tumor": "1"}]   # A's radiomics table untouched
    assert nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["g"], "Tumor": [2.0]}), "001 radiomics", a,
                              node=dose_a, made_by=nodes.RADIOMICS_MADE_BY) is rad_a   # not A's dose table
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 3
    from lungai.scene.stage import made_node_or_none, remove_made_node

    assert made_node_or_none(rad_a) is None          # now tagged, still not a stage run's table to write into
    remove_made_node(mrml_scene, dose_a)
    assert dose_a.GetScene() is mrml_scene
    pd.DataFrame({"patient_id": ["007", "7"], "stage": ["I", "II"]}).to_csv(tmp_path / "s.csv", index=False)
    stage = nodes.table_from_csv(mrml_scene, tmp_path / "s.csv", "Stage predictions", where={"patient_id": "007"})
    assert nodes.table_rows(stage) == [{"patient_id": "007", "stage": "I"}]


def test_volume_table_renamed_by_the_user_is_kept(mrml_scene, tmp_path):
    """A results table the user renamed ("LUNG1-001 dose plan A") is theirs: a run on the same CT makes a new table
    "<CT> dose features" and leaves it (values and name) alone (nodes.own_table, attribute LungAI.madeName); the
    panel's own table is renamed only when the CT was renamed.  A table of a scene saved before the attribute is
    reused under the name the run gives."""
    import pandas as pd
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "LUNG1-001", (8, 8, 4), (0.0, 0.0, 0.0))
    for name, mld in (("a", 12.0), ("b", 7.0), ("c", 3.0)):
        pd.DataFrame({"case": ["LUNG1-001"], "dose_mld_gy": [mld]}).to_csv(tmp_path / f"{name}.csv", index=False)
    users = nodes.table_from_csv(mrml_scene, tmp_path / "a.csv", "LUNG1-001 dose features", volume_node=ct)
    users.SetName("LUNG1-001 dose plan A")
    panel = nodes.table_from_csv(mrml_scene, tmp_path / "b.csv", "LUNG1-001 dose features", node=users, volume_node=ct)
    assert panel is not users and panel.GetName() == "LUNG1-001 dose features"
    assert users.GetName() == "LUNG1-001 dose plan A" and nodes.table_rows(users)[0]["dose_mld_gy"] == "12"
    assert nodes.own_volume_table(users, ct, "LUNG1-001 dose features") is None
    ct.SetName("LUNG1-001 CT")                               # the CT renamed: the panel's table follows it
    again = nodes.table_from_csv(mrml_scene, tmp_path / "c.csv", "LUNG1-001 CT dose features", node=panel,
                                 volume_node=ct)
    assert again is panel and panel.GetName() == "LUNG1-001 CT dose features"
    assert nodes.table_rows(panel)[0]["dose_mld_gy"] == "3" and nodes.table_rows(users)[0]["dose_mld_gy"] == "12"
    panel.RemoveAttribute(nodes.MADE_NAME_ATTRIBUTE)         # a scene saved before the attribute
    assert nodes.volume_table(mrml_scene, pd.DataFrame({"x": [1]}), "LUNG1-001 CT dose features", ct,
                              node=panel) is panel


def test_volume_table_edited_by_the_user_is_kept_and_a_reload_is_no_edit(mrml_scene, tmp_path):
    """QA scene62: a results table whose cells the user edited (a value corrected, a row deleted in Slicer's table
    view) was overwritten by the next run on the same CT, silently.  It is now the user's, as a renamed one: the run
    makes a new table (and updates that one from then on), the edited table is kept and named
    (nodes.edited_tables_note).  What is no edit: Slicer's own save and reload (its table file holds 6 digits; the
    exact values are read back), lungai's outline column (nodes.OUTLINE_COLUMN, written when measured segments change),
    a rerun (the table updated in place)."""
    import sys
    from pathlib import Path

    import pandas as pd
    from lungai.scene import nodes

    sys.path.insert(0, str(Path(__file__).parent))
    from test_mrml_bridge import _saved_and_reloaded_by_slicer

    def frame(value):
        return pd.DataFrame({"feature": ["original_shape_VoxelVolume", "original_firstorder_Mean", "dose_mld_gy"],
                             "voxels": [837, 12, 0], "Tumor": [value, -245.41234567, float("nan")],
                             "note": ["", "a", ""]})

    made = nodes.RADIOMICS_MADE_BY
    ct = _small_ct(mrml_scene, "lung1", (8, 8, 4), (0.0, 0.0, 0.0))
    first = nodes.volume_table(mrml_scene, frame(233096758.123), "lung1 radiomics", ct, made_by=made)
    assert not nodes.table_edited(first) and nodes.edited_tables_note(first) == ""
    again = nodes.volume_table(mrml_scene, frame(1.5), "lung1 radiomics", ct, node=first, made_by=made)
    assert again is first and not nodes.table_edited(first)                      # a rerun: updated in place
    nodes._set_text_cells(first, nodes.OUTLINE_COLUMN, nodes.MEASURED_EARLIER.format("segment 'Tumor' deleted"))
    assert not nodes.table_edited(first)                                         # lungai's own column
    first = nodes.volume_table(mrml_scene, frame(233096758.123), "lung1 radiomics", ct, node=first, made_by=made)
    # saved by Slicer (6 digits in the file) and reloaded: no edit, the next run updates it
    back, _ = _saved_and_reloaded_by_slicer(mrml_scene, tmp_path / "slicer")
    table, ct_back = back.GetFirstNodeByName("lung1 radiomics"), back.GetFirstNodeByName("lung1")
    assert table.GetCellText(0, 2) != "233096758.123" and not nodes.table_edited(table)
    assert nodes.volume_table(back, frame(2.5), "lung1 radiomics", ct_back, made_by=made) is table
    # the user corrects a value in the table view: kept as it is, the run's results go to a new table
    table.SetCellText(1, 2, "-240")
    assert nodes.table_edited(table)
    new = nodes.volume_table(back, frame(3.5), "lung1 radiomics", ct_back, node=table, made_by=made)
    assert new is not table and new.GetName() == "lung1 radiomics_1"
    assert table.GetName() == "lung1 radiomics" and table.GetCellText(1, 2) == "-240"
    assert table.GetCellText(0, 2) == "2.5"
    assert nodes.edited_tables_note(new) == (" (kept as it is: 'lung1 radiomics', edited since the run that made it - "
                                             "a run never writes over a table the user changed)")
    # the next run (no output chosen, or the edited one chosen) updates the new table: no third one
    for chosen in (None, table):
        assert nodes.volume_table(back, frame(4.5), "lung1 radiomics", ct_back, node=chosen, made_by=made) is new
    assert back.GetNumberOfNodesByClass("vtkMRMLTableNode") == 2
    # a row deleted is an edit too; the note names every edited table of this CT's kind
    new.GetTable().RemoveRow(2)
    new.Modified()
    third = nodes.volume_table(back, frame(5.5), "lung1 radiomics", ct_back, made_by=made)
    assert third not in (table, new) and nodes.table_rows(new)[0]["Tumor"] == "4.5"
    assert "'lung1 radiomics', 'lung1 radiomics_1', edited since the run that made them" in \
        nodes.edited_tables_note(third)


@pytest.mark.shared_data
def test_results_table_with_quotes_saved_and_reloaded_is_no_edit(load_module, mrml_scene, shared_data, tmp_path):
    """QA scenemisc62 (lung1, real MRML, the Lung Radiomics panel's logic): lungai.mrml.save_scene saves '"' as two
    apostrophes and a line break as a space (Slicer's table reader cannot read them back); a segment named
    'GTV "primary"' (a column of the features table) or a note holding a quote or a line break made the table
    "edited" after a plain save and reload (nodes.table_edited), so the next run wrote a new table beside it.  The
    digest compares text as saved: a save and reload is no edit; a real edit still is."""
    import warnings

    import pandas as pd

    from lungai import mrml
    from lungai.io import read_ct, read_mask
    from lungai.scene import nodes

    data = shared_data / "pyradiomics_lung"
    ct = read_ct(data / "lung1_image.nrrd")
    tumour = sitk.Cast(read_mask(data / "lung1_label.nrrd", reference=ct) > 0, sitk.sitkUInt8)
    vol = mrml.volume_node_from_image(mrml_scene, ct, "lung1_image")
    segment = 'GTV "primary"'
    seg, _ = mrml.mask_to_segment(mrml_scene, tumour, segment, reference_volume_node=vol)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = vol, seg
    p.selectedSegments = [segment]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    features = p.outputTable
    assert segment in [features.GetColumnName(c) for c in range(features.GetNumberOfColumns())]
    frame = mrml.dataframe_from_table_node(features)
    # a results table with notes holding a quote and line breaks (as a run's notes may)
    notes = pd.DataFrame({"feature": ["a", "b"], "Tumor": [1.25, 2.5],
                          "note": ['segment "GTV" cut by the image edge', "line one\nline two\r\nthree"]})
    noted = nodes.volume_table(mrml_scene, notes, "lung1_image notes", vol, made_by=nodes.DOSE_MADE_BY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                      # the InputNote on the replaced text
        path = mrml.save_scene(mrml_scene, tmp_path / "quotes.mrb")
    back = mrml.load_scene(path, tmp_path / "x")
    ct_back = back.GetFirstNodeByName("lung1_image")
    for name in ("lung1_image radiomics", "lung1_image notes"):
        table = back.GetFirstNodeByName(name)
        assert not nodes.table_edited(table), name
        assert nodes.edited_tables_note(table) == ""
    table = back.GetFirstNodeByName("lung1_image radiomics")
    assert nodes.volume_table(back, frame, "lung1_image radiomics", ct_back, node=table,
                              made_by=nodes.RADIOMICS_MADE_BY) is table      # the next run updates it
    assert back.GetNumberOfNodesByClass("vtkMRMLTableNode") == 2
    noted_back = back.GetFirstNodeByName("lung1_image notes")
    noted_back.SetCellText(0, 2, "checked by hand")            # a real edit is still one
    assert nodes.table_edited(noted_back)
    assert not nodes.table_edited(noted)                       # the table in this process: as made


@pytest.mark.shared_data
def test_console_radiomics_table_keeps_an_edited_or_other_cts_table(mrml_scene, shared_data):
    """QA scenemisc62 (lung1 / lung2, real MRML, the console API): radiomics_table(..., table_node=X) wrote into any
    node given: lung2's features over the user's edited "lung1 radiomics" (its name and its link to lung1 kept: the RP
    risk of lung1 would read lung2's features), and a volume node raised AttributeError after the whole extraction.
    Like the panels, an edited table or another CT's is kept and the features go to a new table; a non-table is
    refused before any work; the caller's own plain table is still written into."""
    import pandas as pd

    from lungai import mrml
    from lungai.errors import InputError, InputNote
    from lungai.io import read_ct, read_mask
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    data = shared_data / "pyradiomics_lung"
    cases = {}
    for case in ("lung1", "lung2"):
        ct = read_ct(data / f"{case}_image.nrrd")
        tumour = sitk.Cast(read_mask(data / f"{case}_label.nrrd", reference=ct) > 0, sitk.sitkUInt8)
        vol = mrml.volume_node_from_image(mrml_scene, ct, case)
        cases[case] = (vol, mrml.mask_to_segment(mrml_scene, tumour, "Tumor", reference_volume_node=vol)[0])
    (v1, s1), (v2, s2) = cases["lung1"], cases["lung2"]

    def run(vol, seg, table_node):
        return radiomics_table(mrml_scene, vol, seg, segments=["Tumor"], feature_classes=["firstorder"],
                               table_node=table_node)[0]

    with pytest.raises(InputError, match="not a table"):
        run(v2, s2, v1)
    users = nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [1.0]}), "lung1 radiomics", v1,
                               made_by=nodes.RADIOMICS_MADE_BY)
    with pytest.warns(InputNote, match="'lung1 radiomics' is kept as it is \\(the results of another CT\\)"):
        table = run(v2, s2, users)                                  # another CT's, not edited
    assert table is not users and nodes.table_rows(users) == [{"feature": "f", "Tumor": "1"}]
    users.SetCellText(0, 1, "7")                                    # the user's correction
    with pytest.warns(InputNote, match="kept as it is \\(edited since the run that made it\\)"):
        again = run(v1, s1, users)                                  # its own CT, edited
    assert again is not users and users.GetCellText(0, 1) == "7" and users.GetName() == "lung1 radiomics"
    assert run(v2, s2, table) is table                              # the console's own table: written into


def _interrupted_training(load_module, tmp_path):
    """(logic, parameter node, checkpoints folder) of an interrupted LungAISeg training as train-seg writes it:
    its settings.json for 2 members, 1 epoch, 1 iteration, patience 5 (the members' states: the caller's)."""
    from lungai.cli.seg import resume_settings, train_seg_parser
    from lungai.seg.settings import record_settings

    images, masks = tmp_path / "images", tmp_path / "masks"
    for folder in (images, masks):
        folder.mkdir()
        (folder / "P0_ct.nii.gz").write_bytes(b"")
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, tmp_path / "model"
    p.trainMembers, p.trainEpochs, p.trainIters, p.trainPatience = 2, 1, 1, 5
    ckpt = tmp_path / "model" / "checkpoints"
    record_settings(ckpt, resume_settings(train_seg_parser().parse_args(logic.trainingCommand(p)[1:])))
    return logic, p, ckpt


def test_lungai_seg_resume_refuses_a_length_train_seg_refuses(load_module, tmp_path):
    """QA: the panel resumed an interrupted training whose iterations (Advanced) had changed, while its log said
    changed options are refused: train-seg's one rule (lungai.seg.settings.check_settings) refuses another
    --iters once a member has run an epoch, and the panel names it before the start.  (The interrupted run is
    written as train-seg writes it: its settings.json and member 0's state after one epoch; light, no torch.)"""
    import json

    logic, p, ckpt = _interrupted_training(load_module, tmp_path)
    state = {"epoch": 1, "best_dice": 0.5, "best_epoch": 0, "history": [], "done": False, "epochs": 1,
             "iters_per_epoch": 1, "patience": 5, "param_groups": []}
    (ckpt / "member_0.state.json").write_text(json.dumps(state), encoding="utf-8")
    (ckpt / "member_0.last.safetensors").write_bytes(b"")
    assert logic.trainingResumes(p) and logic.trainingInputProblem(p) is None
    p.trainIters = 2
    problem = logic.trainingInputProblem(p) or ""
    assert problem.startswith("Cannot resume:") and "--iters 1 then (member 0 ran 1 epoch with it), 2 now" in problem
    with pytest.raises(ValueError, match="Cannot resume"):
        logic.startTraining(p)
    p.trainIters, p.trainPatience = 1, 6
    assert "--patience 5 then (member 0 ran 1 epoch with it), 6 now" in (logic.trainingInputProblem(p) or "")
    p.trainPatience, p.trainEpochs = 5, 3                         # constant learning rate: more epochs resume
    assert logic.trainingInputProblem(p) is None
    p.trainLrSchedule = "poly"                      # (another schedule: refused as a recipe option, as before)
    assert "--lr-schedule constant then, poly now" in (logic.trainingInputProblem(p) or "")
    assert "epochs no fewer than the members have run" in logic.resumeMessage(p.trainOutput)


def test_lungai_seg_training_still_running_is_not_resumed(load_module, tmp_path):
    """QA: the panel called a folder a train-seg run still trains "interrupted" (logged "Resuming the interrupted
    training", then train-seg refused the folder in use), and its model "stopped ... resume": both name the running
    process and say to wait."""
    import json
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started

    logic, p, ckpt = _interrupted_training(load_module, tmp_path)
    model = tmp_path / "model"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (model / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} train-seg\n")
        busy = f"{model} is being trained by process {other.pid}"
        assert not logic.trainingResumes(p)
        problem = logic.trainingInputProblem(p) or ""
        assert busy in problem and "wait until it ends" in problem
        with pytest.raises(ValueError, match="wait until it ends"):
            logic.startTraining(p)
        assert busy in logic.modelFolderProblem(str(model)) and "wait until that training ends" in \
            logic.modelFolderProblem(str(model))
        (model / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "status": "calibrating"}))
        assert busy in logic.modelFolderProblem(str(model))
    finally:
        other.kill()
        other.wait()
    assert logic.trainingResumes(p) and "resume" in logic.modelFolderProblem(str(model))


def test_lungai_seg_training_of_a_member_or_another_computer_is_not_resumed(load_module, tmp_path):
    """QA: a `train-seg --member K` process still training (its lock in OUT/.member_K.lock) was "interrupted" in the
    panel (Start training resumed it, train-seg refused); a training killed on another computer (a cluster job on a
    shared file system) was "being trained ... wait until it ends" forever: the member is named, and the lock of
    another computer's run is named in full with how to clear it, in the panel's words."""
    import subprocess
    import sys

    from lungai.io.outputs import LOCK, _host, _process_started

    logic, p, ckpt = _interrupted_training(load_module, tmp_path)
    model = tmp_path / "model"
    member = model / ".member_1.lock"
    member.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (member / LOCK).write_text(f"{other.pid} {_host()} {_process_started(other.pid):.2f} train-seg\n")
        busy = f"{model}: member 1 is being trained by process {other.pid}"
        assert not logic.trainingResumes(p)
        problem = logic.trainingInputProblem(p) or ""
        assert busy in problem and "wait until it ends, or choose another output folder" in problem
        assert busy in logic.modelFolderProblem(str(model)) and "resume" not in logic.modelFolderProblem(str(model))
    finally:
        other.kill()
        other.wait()
    assert logic.trainingResumes(p)                                 # its process gone: resumed
    member.joinpath(LOCK).unlink()
    (model / LOCK).write_text("4242 node123 1764600000.00 train-seg\n")
    clear = (f"; if no lungai run is going on on node123 any more (e.g. its container or cluster job has ended), "
             f"delete the lock file {model / LOCK} - only that file - and run again")
    assert not logic.trainingResumes(p)
    assert (logic.trainingInputProblem(p) or "").endswith("wait until it ends, or choose another output folder" + clear)
    assert logic.modelFolderProblem(str(model)).endswith("wait until that training ends, or select another model"
                                                         + clear)


def test_lungai_seg_resume_names_members_that_ran_with_different_lengths(load_module, tmp_path):
    """QA: members trained apart (--member K processes) with different --iters: the panel's message, as
    train-seg's, suggested one member's value, then the other's.  It lists each member's value and says how
    to fix it (retrain the members that differ), not "set these options back"."""
    import json

    logic, p, ckpt = _interrupted_training(load_module, tmp_path)
    for k, iters in enumerate((1, 2)):
        state = {"epoch": 1, "best_dice": 0.5, "best_epoch": 0, "history": [], "done": True, "epochs": 1,
                 "iters_per_epoch": iters, "patience": 5, "param_groups": []}
        (ckpt / f"member_{k}.state.json").write_text(json.dumps(state), encoding="utf-8")
        (ckpt / f"member_{k}.last.safetensors").write_bytes(b"")
    for iters in (1, 2):
        p.trainIters = iters
        problem = logic.trainingInputProblem(p) or ""
        assert problem.startswith("Cannot resume:") and "member 0 ran with 1, member 1 with 2" in problem, problem
        assert "retrain the members that differ" in problem and "back to the interrupted run's" not in problem


def test_lungs_minus_tumour_leaves_out_every_tumour_segment_ticked_or_not(load_module, mrml_scene, phantom_nodes,
                                                                           small_phantom, tmp_path):
    """QA defect: with GTV-1 ticked and gtv-2 not, the panel's (and radiomics_table's) "Lungs minus tumour" kept
    gtv-2's voxels (LUNG1-003: 16,622 of them) while the dose features' lungs and ``--rtstruct`` leave out every GTV.
    Both now subtract every tumour segment of the segmentation (lungai.scene.nodes.tumour_masks, one rule)."""
    from lungai import mrml
    from lungai.io import copy_geometry
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Right lung", p.inputVolume)) > 0
    node = np.zeros(right.shape, np.uint8)
    k, j, i = np.argwhere(right)[len(np.argwhere(right)) // 2]
    node[k - 1:k + 2, j - 2:j + 3, i - 2:i + 3] = 1
    node &= right                                                  # a second GTV inside the right lung, not ticked
    assert node.sum() > 10
    mrml.mask_to_segment(mrml_scene, copy_geometry(node, small_phantom.ct), "gtv-2", seg_node=p.segmentation)
    p.selectedSegments = ["Tumor", "Right lung", "Left lung"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    _, columns, _, _, _ = logic.featureCommands(p, tmp_path)
    key = next(k for k, name in columns.items() if name == "Lungs minus tumour")
    derived = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{key}.nrrd"))) > 0
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)) > 0
    left = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, p.segmentation, "Left lung", p.inputVolume)) > 0
    np.testing.assert_array_equal(derived, (right | left) & ~tumour & ~(node > 0))
    # the dose features' lung minus GTV: the same tumour segments (doseCommand)
    assert [n for n, _ in nodes.tumour_masks(mrml_scene, p.segmentation, p.inputVolume)] == ["Tumor", "gtv-2"]
    # the console API: the same derived mask
    masks = {n: mrml.segment_to_mask(mrml_scene, p.segmentation, n, p.inputVolume) for n in p.selectedSegments}
    out = nodes.derived_lung_masks(masks, lambda: nodes.tumour_masks(mrml_scene, p.segmentation, p.inputVolume, masks))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out["Lungs minus tumour"]) > 0, derived)
    # the console API (radiomics_table): "Lungs minus tumour" is the same whether gtv-2 is chosen or not
    columns = []
    for chosen in (["Tumor", "Right lung", "Left lung"], ["Tumor", "gtv-2", "Right lung", "Left lung"]):
        table, errors = radiomics_table(mrml_scene, p.inputVolume, p.segmentation, segments=chosen,
                                        feature_classes=["firstorder"], image_types=["Original"])
        assert not errors
        columns.append(mrml.dataframe_from_table_node(table).set_index("feature")["Lungs minus tumour"].astype(float))
    np.testing.assert_allclose(columns[0].to_numpy(), columns[1].to_numpy(), rtol=1e-9)


def test_lungs_minus_tumour_subtracts_two_tumour_segments_of_one_name(load_module, mrml_scene, phantom_nodes,
                                                                       small_phantom, tmp_path):
    """QA defect (review of 3c95b77): an RTSTRUCT with two ROIs "GTV" (SlicerRT: IDs GTV and GTV_1), neither ticked,
    only the lungs: Apply was enabled, then featureCommands / radiomics_table raised "2 segments ... have the name
    'GTV'" (tumour_masks resolved each segment's ID as a name).  Both are read by ID and leave the lungs; the result
    names the subtracted segments, and an unticked tumour flagged for expert review is warned of and recorded."""
    from lungai import mrml
    from lungai.io import copy_geometry
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    logic, p = _firstorder_radiomics(load_module, phantom_nodes, ["Right lung", "Left lung"])
    seg = p.segmentation
    first = mrml.segment_to_mask(mrml_scene, seg, "Tumor", p.inputVolume)
    seg.GetSegmentation().RemoveSegment(seg.GetSegmentation().GetSegmentIdBySegmentName("Tumor"))
    mrml.mask_to_segment(mrml_scene, first, "GTV", seg_node=seg)     # the ID GTV: an ID that is also the name
    right = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Right lung", p.inputVolume)) > 0
    second = np.zeros(right.shape, np.uint8)
    k, j, i = np.argwhere(right)[len(np.argwhere(right)) // 2]
    second[k - 1:k + 2, j - 2:j + 3, i - 2:i + 3] = 1
    second &= right
    assert second.sum() > 10
    _, gid = mrml.mask_to_segment(mrml_scene, copy_geometry(second, small_phantom.ct), "GTV_1", seg_node=seg)
    seg.GetSegmentation().GetSegment(gid).SetName("GTV")      # SlicerRT: a second ROI "GTV", its ID GTV_1
    ids = [gid_ for gid_, name in nodes.tumour_segment_ids(seg)]
    assert [name for _, name in nodes.tumour_segment_ids(seg)] == ["GTV", "GTV"] and ids == ["GTV", gid] != [gid] * 2
    nodes.set_tumour_result(seg, gid, {"confidence": 0.31, "needs_review": True, "review_reasons": ["low confidence"],
                                       "review_threshold": 0.5})
    assert logic.inputProblem(p) is None
    _, columns, _, _, _ = logic.featureCommands(p, tmp_path)
    key = next(k for k, name in columns.items() if name == "Lungs minus tumour")
    derived = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{key}.nrrd"))) > 0
    tumours = [sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, i, p.inputVolume, by_id=True)) > 0
               for i in ids]
    left = sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, "Left lung", p.inputVolume)) > 0
    np.testing.assert_array_equal(derived, (right | left) & ~tumours[0] & ~tumours[1])
    assert (tumours[1] == (second > 0)).all() and not (derived & (second > 0)).any()
    # the result says which segments were subtracted, and warns of the unticked flagged one
    note = nodes.review_note(seg, gid, by_id=True)
    assert note.startswith("the segment 'GTV' of") and "flagged for expert review" in note
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    said = (f"note: 'Lungs minus tumour' = Right lung+Left lung minus GTV+GTV (every tumour segment of "
            f"{seg.GetName()}, ticked or not)")
    assert f"warning: {note}" in message and said in message, message
    assert nodes.recorded_review_notes(p.outputTable) == [note]
    # the console API: the same, no error; the flagged unticked tumour recorded on its table
    table, errors = radiomics_table(mrml_scene, p.inputVolume, seg, segments=["Right lung", "Left lung"],
                                    feature_classes=["firstorder"], image_types=["Original"])
    assert not errors and "Lungs minus tumour" in mrml.dataframe_from_table_node(table).columns
    assert nodes.recorded_review_notes(table) == [note]
    # no "Lungs minus tumour" measured: no note, no warning of an unmeasured tumour
    assert nodes.lungs_minus_tumour_note(seg, ["Right lung"]) is None and nodes.review_notes(seg, ["Right lung"]) == []


def test_dose_without_lung_segments_is_said_before_apply(load_module, mrml_scene, phantom_nodes, small_phantom):
    """QA defect: a dose volume with no lung segment passed inputProblem (Apply enabled), then startFeatures raised
    and no radiomics were computed.  inputProblem says it, naming the lung names the dose features take
    (lungai.segment_roles.dose_lung_names_text: also 'Lung-Right' / 'Lung-Left' of an RTSTRUCT)."""
    from lungai import mrml

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    ct, truth = phantom_nodes
    seg, _ = mrml.mask_to_segment(mrml_scene, mrml.segment_to_mask(mrml_scene, truth, "Tumor", ct), "GTV-1",
                                  reference_volume_node=ct)
    p.inputVolume, p.segmentation, p.selectedSegments = ct, seg, ["GTV-1"]
    assert logic.inputProblem(p) is None                           # no dose: the radiomics alone
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32), "dose")
    problem = logic.inputProblem(p)
    assert problem is not None and "Dose features need lung segments" in problem, problem
    for name in ("'Right lung'", "'Left lung'", "'Lungs'", "'Lung-Right'", "'Lung-Left'", "'Lungs-GTV'"):
        assert name in problem, (name, problem)
    assert "clear the dose volume" in problem
    p.segmentation, p.selectedSegments = truth, ["Tumor"]          # Right lung + Left lung: fine
    assert logic.inputProblem(p) is None


def test_segmentation_referencing_a_labelmap_on_the_cts_grid_is_accepted(load_module, mrml_scene, tmp_path):
    """QA defect: a segmentation imported from a label map of this CT (ImportLabelmapToSegmentationNode, reference
    geometry set from the label map node - Slicer's Data module does so) was refused as "drawn on another image".
    Its reference volume has the CT's voxel grid: accepted; a label map on another grid is still refused."""
    import slicer
    from lungai import mrml
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "CT", (20, 20, 10), (10.0, -20.0, 30.0))
    mask = _tumour_mask(ct)

    def imported(image, name):
        label = mrml.volume_node_from_image(mrml_scene, image, name, labelmap=True)
        seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name}-segmentation")
        seg.CreateDefaultDisplayNodes()
        assert slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(label, seg)
        seg.SetReferenceImageGeometryParameterFromVolumeNode(label)
        return seg, mrml.segment_names(seg)

    same, names = imported(mask, "CT label")
    assert nodes.segmentation_volume_problem(same, ct) is None
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = ct, same, names
    assert logic.inputProblem(p) is None
    coarse = sitk.Resample(mask, [s // 2 for s in mask.GetSize()], sitk.Transform(), sitk.sitkNearestNeighbor,
                           mask.GetOrigin(), [s * 2 for s in mask.GetSpacing()], mask.GetDirection())
    other, _ = imported(coarse, "coarse label")
    assert "drawn on another image (coarse label), not on CT" in nodes.segmentation_volume_problem(other, ct)
    shifted = sitk.Image(mask)
    shifted.SetOrigin([o + 2.0 for o in mask.GetOrigin()])
    moved, _ = imported(shifted, "shifted label")
    assert "drawn on another image (shifted label)" in nodes.segmentation_volume_problem(moved, ct)


def test_segmentation_referencing_a_label_map_cropped_from_the_ct_is_accepted(load_module, mrml_scene):
    """QA defect (slicer56): a label map holding a part of the CT's voxels (cropped to the tumour's box: what Slicer's
    export without a reference volume, Crop Volume and other tools write), converted to a segmentation (reference
    geometry: the label map node), was refused by Lung Radiomics and Multimodal Predict as "drawn on another image",
    while ``lungai radiomics --mask`` measures that same file on the CT (lung1's crop: VoxelVolume 1361.2 mm3, as the
    full label map).  A crop on the CT's voxels (also flipped, or under the CT's transform) is accepted and measured
    voxel for voxel; a crop off the voxels (half a voxel), of another voxel size or reaching outside the CT is still
    refused."""
    import slicer
    import vtk
    from lungai import mrml
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "CT", (20, 20, 10), (10.0, -20.0, 30.0))
    mask = _tumour_mask(ct)
    full = sitk.GetArrayFromImage(mask)

    def imported(image, name, transform=None):
        label = mrml.volume_node_from_image(mrml_scene, image, name, labelmap=True)
        if transform is not None:
            label.SetAndObserveTransformNodeID(transform.GetID())
        seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name}-segmentation")
        seg.CreateDefaultDisplayNodes()
        assert slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(label, seg)
        seg.SetReferenceImageGeometryParameterFromVolumeNode(label)
        if transform is not None:
            seg.SetAndObserveTransformNodeID(transform.GetID())
        return seg

    crop = mask[7:13, 8:12, 3:8]                           # the tumour's box, on the CT's voxels
    seg = imported(crop, "cropped label")
    assert nodes.segmentation_volume_problem(seg, ct) is None
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = ct, seg, mrml.segment_names(seg)
    assert logic.inputProblem(p) is None
    back = mrml.segment_to_mask(mrml_scene, seg, mrml.segment_names(seg)[0], ct)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), full)
    flipped = sitk.Flip(crop, [True, False, False])          # the crop stored with its i axis reversed
    assert nodes.segmentation_volume_problem(imported(flipped, "flipped crop"), ct) is None
    # the CT under a transform, the crop (saved from the CT's file) under the same one
    t = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    m = vtk.vtkMatrix4x4()
    m.SetElement(0, 3, 12.5), m.SetElement(1, 3, -3.0)
    t.SetMatrixTransformToParent(m)
    moved_ct = _small_ct(mrml_scene, "moved CT", (20, 20, 10), (10.0, -20.0, 30.0))
    moved_ct.SetAndObserveTransformNodeID(t.GetID())
    assert nodes.segmentation_volume_problem(imported(crop, "crop of the moved CT", t), moved_ct) is None
    assert "drawn on another image (cropped label)" in nodes.segmentation_volume_problem(seg, moved_ct)
    # still refused: half a voxel off the CT's voxels, another voxel size, a box reaching out of the CT
    off = sitk.Image(crop)
    off.SetOrigin([o + 0.5 * s for o, s in zip(crop.GetOrigin(), crop.GetSpacing())])
    assert "drawn on another image (off label)" in nodes.segmentation_volume_problem(imported(off, "off label"), ct)
    fine = sitk.Image(crop)
    fine.SetSpacing([s / 2 for s in crop.GetSpacing()])
    assert "drawn on another image (fine label)" in nodes.segmentation_volume_problem(imported(fine, "fine label"), ct)
    out = sitk.Image(crop)
    out.SetOrigin(mask.TransformIndexToPhysicalPoint((17, 8, 3)))     # 6 voxels wide from i = 17 of 20
    assert "drawn on another image (outside label)" in nodes.segmentation_volume_problem(
        imported(out, "outside label"), ct)


def test_segmentation_of_another_ct_on_the_same_grid_is_refused(load_module, mrml_scene):
    """QA defect (review of 3c95b77): a segmentation whose reference is another CT on this CT's voxel grid (another
    patient; a cohort resampled to one grid) was accepted by the same-grid rule.  That rule now takes a label map
    node only (a scalar CT on the grid is refused as before), and two different DICOM patients are refused whatever
    the grid (named); the same patient's image stays accepted."""
    from lungai import mrml
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "CT", (20, 20, 10), (10.0, -20.0, 30.0))
    mask = _tumour_mask(ct)

    def drawn_on(reference):
        seg, _ = mrml.mask_to_segment(mrml_scene, mask, "GTV", reference_volume_node=reference)
        seg.SetReferenceImageGeometryParameterFromVolumeNode(reference)
        return seg

    other_ct = _small_ct(mrml_scene, "other CT", (20, 20, 10), (10.0, -20.0, 30.0))   # the same grid
    assert nodes.same_voxel_grid(other_ct, ct)
    assert "drawn on another image (other CT), not on CT" in nodes.segmentation_volume_problem(drawn_on(other_ct), ct)
    label = mrml.volume_node_from_image(mrml_scene, mask, "CT label", labelmap=True)
    on_label = drawn_on(label)
    assert nodes.segmentation_volume_problem(on_label, ct) is None
    # DICOM patients: another patient's label map on the grid is refused, naming both; the same patient's accepted
    _under_dicom_patient(mrml_scene, ct, "P1")
    _under_dicom_patient(mrml_scene, label, "P2")
    problem = nodes.segmentation_volume_problem(on_label, ct)
    assert problem and "another patient's image (CT label, patient P2), not on CT (patient P1)" in problem, problem
    _under_dicom_patient(mrml_scene, other_ct, "P1")
    assert nodes.segmentation_volume_problem(drawn_on(other_ct), ct) is None


def test_a_segmentation_opened_from_a_file_on_another_grid_is_refused(load_module, mrml_scene, tmp_path):
    """QA defect: lung2's tumour saved as .seg.nrrd and opened with LUNG1-003's CT (no link to an image: a file keeps
    its reference geometry as text) was resampled onto LUNG1-003 and filed as its radiomics without a word.  Its
    stored geometry is now compared with the CT's voxels (nodes.on_ct_lattice): another grid is refused with the fix;
    the CT's own grid, an oversampled geometry of it (Segment Editor) and a label map cropped from it are not; the
    fix (the reference geometry set to the CT) is accepted."""
    import slicer
    import vtk

    from lungai import mrml
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "CT", (20, 20, 10), (10.0, -20.0, 30.0))
    mask = _tumour_mask(ct)
    converter = slicer.vtkSegmentationConverter
    geometry = converter.GetReferenceImageGeometryParameterName()

    def from_file(image, name, with_text=True):
        """A segmentation of ``image`` saved as .seg.nrrd and opened again (no reference geometry link; the geometry
        as text unless ``with_text`` is False)."""
        label = mrml.volume_node_from_image(mrml_scene, image, f"{name} label", labelmap=True)
        seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name} made")
        if with_text:          # as Slicer's Data module converts a label map: its geometry is the reference
            seg.SetReferenceImageGeometryParameterFromVolumeNode(label)
        assert slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(label, seg)
        writer = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
        writer.SetFileName(str(tmp_path / f"{name}.seg.nrrd"))
        assert writer.WriteData(seg)
        opened = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        reader = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
        reader.SetFileName(str(tmp_path / f"{name}.seg.nrrd"))
        opened.SetAndObserveStorageNodeID(reader.GetID())
        assert reader.ReadData(opened)
        assert not opened.GetNodeReferenceID(opened.GetReferenceImageGeometryReferenceRole())
        assert bool(opened.GetSegmentation().GetConversionParameter(geometry)) == with_text
        return opened

    assert nodes.segmentation_volume_problem(from_file(mask, "own"), ct) is None
    # another patient's grid (spacing and origin of another scan), the tumour inside this CT's box
    other = sitk.Resample(mask, [27, 27, 17], sitk.Transform(), sitk.sitkNearestNeighbor,
                          [o - 10.0 for o in mask.GetOrigin()], (3.1, 3.1, 3.0), mask.GetDirection())
    assert sitk.GetArrayViewFromImage(other).sum() > 0
    foreign = from_file(other, "lung2")
    problem = nodes.segmentation_volume_problem(foreign, ct)
    assert problem and problem.startswith("The segmentation 'lung2' is linked to no image and was drawn on another "
                                          "grid (3.1 x 3.1 x 3 mm, 27 x 27 x 17 voxels) than CT's (4 x 4 x 5 mm, "
                                          "20 x 20 x 10 voxels)"), problem
    assert "set this one's reference geometry to CT in Segment Editor" in problem
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = ct, foreign, mrml.segment_names(foreign)
    assert logic.inputProblem(p) == problem
    assert nodes.volume_segmentation_default(mrml_scene, ct) is not foreign
    plain = nodes.segmentation_volume_problem(from_file(other, "lung2 plain", with_text=False), ct)
    assert plain and "'lung2 plain' is linked to no image and was drawn on another grid (3.1 x 3.1 x 3 mm" in plain
    assert nodes.segmentation_volume_problem(from_file(mask, "own plain", with_text=False), ct) is None
    foreign_text = foreign.GetSegmentation().GetConversionParameter(geometry)
    foreign.SetReferenceImageGeometryParameterFromVolumeNode(ct)      # the fix: this patient's after all
    assert nodes.segmentation_volume_problem(foreign, ct) is None and logic.inputProblem(p) is None
    # a label map cropped from the CT (its voxels) and the CT's geometry oversampled 2 x 3 x 1 (Segment Editor)
    cropped = from_file(mask[6:14, 5:15, 3:8], "cropped")
    assert nodes.segmentation_volume_problem(cropped, ct) is None
    # the CT's voxels stored in another order (a label map written RAS of an LPS CT, axes swapped): the same voxels
    for order in ("RAS", "PLS", "LPI"):
        assert nodes.segmentation_volume_problem(from_file(sitk.DICOMOrient(mask, order), order), ct) is None, order
    # review: Segment Editor's "Specify geometry" (Slicer's own logic) - isotropic, oversampled 1.5 / 0.5 - is this
    # CT's box at another spacing; a segmentation with no segment has nothing to compare
    for name, factor, isotropic in (("isotropic", 1.0, True), ("x1.5", 1.5, False), ("x0.5", 0.5, False)):
        editor = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name} made")
        editor.SetReferenceImageGeometryParameterFromVolumeNode(ct)
        editor.GetSegmentation().AddEmptySegment("Tumor")
        logic = slicer.vtkSlicerSegmentationGeometryLogic()
        logic.SetInputSegmentationNode(editor)
        logic.SetSourceGeometryNode(ct)
        logic.SetOversamplingFactor(factor)
        logic.SetIsotropicSpacing(isotropic)
        assert not logic.CalculateOutputGeometry()
        logic.SetReferenceImageGeometryInSegmentationNode()
        editor.RemoveNodeReferenceIDs(editor.GetReferenceImageGeometryReferenceRole())    # as opened from a file
        assert nodes.segmentation_volume_problem(editor, ct) is None, name
    none = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "no segment")
    none.GetSegmentation().SetConversionParameter(geometry, foreign_text)
    assert nodes.segmentation_volume_problem(none, ct) is None
    oversampled = from_file(mask, "oversampled")
    image = slicer.vtkOrientedImageData()
    assert converter.DeserializeImageGeometry(oversampled.GetSegmentation().GetConversionParameter(geometry), image)
    to_world = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(to_world)
    fine = [0.5, 1 / 3, 1.0]
    corner = to_world.MultiplyPoint([-0.5 + f / 2 for f in fine] + [1.0])[:3]   # the first fine voxel's centre
    image.SetOrigin(corner)
    image.SetSpacing([s * f for s, f in zip(image.GetSpacing(), fine)])
    image.SetExtent(0, 39, 0, 59, 0, 9)
    oversampled.GetSegmentation().SetConversionParameter(geometry, converter.SerializeImageGeometry(image))
    assert nodes.segmentation_volume_problem(oversampled, ct) is None
    image.SetOrigin([v + 10.0 for v in corner])       # 10 mm off: neither the CT's box nor on its voxels
    oversampled.GetSegmentation().SetConversionParameter(geometry, converter.SerializeImageGeometry(image))
    assert "drawn on another grid" in nodes.segmentation_volume_problem(oversampled, ct)
    # review: the CT and its segmentation under one transform (a registration) compare in their own frame
    own = from_file(mask, "own again")
    moved = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 12.5)
    shift.SetElement(1, 3, -4.0)
    moved.SetMatrixTransformToParent(shift)
    for node in (ct, own):
        node.SetAndObserveTransformNodeID(moved.GetID())
    assert nodes.segmentation_volume_problem(own, ct) is None


@pytest.mark.shared_data
def test_another_patients_unlinked_segmentation_is_refused_whatever_its_grid(load_module, mrml_scene, shared_data,
                                                                             tmp_path):
    """QA defect: a segmentation linked to no image was judged by its grid only - another DICOM patient's was taken
    for this CT without a word when it lay on the CT's voxels (LUNG1-002's GTV resampled onto LUNG1-003's grid, a
    cohort on one grid, opened as .seg.nrrd) or had no grid at all (LUNG1-002's RTSTRUCT as SlicerRT loads it without
    its CT: contours, no reference geometry; 120448 voxels of it measured on LUNG1-003's CT).  Two different DICOM
    patients are now refused whatever the grid or representation, as for a segmentation drawn on another patient's
    image; the same patient's (or one not under a patient) is judged as before."""
    import slicer

    from lungai import mrml
    from lungai.scene import nodes

    folder = shared_data / "nsclc_whole_ct" / "nifti"
    ct_image = sitk.ReadImage(str(folder / "LUNG1-003_ct.nii.gz"))
    gtv2 = sitk.ReadImage(str(folder / "LUNG1-002_labels.nii.gz")) == 1
    ct = mrml.volume_node_from_image(mrml_scene, ct_image, "LUNG1-003 CT")
    _under_dicom_patient(mrml_scene, ct, "LUNG1-003")
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()

    def imported(image, name):
        label = mrml.volume_node_from_image(mrml_scene, image, f"{name} label", labelmap=True)
        seg = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name} made")
        seg.SetReferenceImageGeometryParameterFromVolumeNode(label)
        assert slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(label, seg)
        return seg

    # LUNG1-002's GTV on LUNG1-003's grid, saved and opened (its geometry as text: the CT's voxels)
    on_grid = sitk.Resample(gtv2, ct_image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    writer = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    writer.SetFileName(str(tmp_path / "gtv2.seg.nrrd"))
    assert writer.WriteData(imported(on_grid, "gtv2"))
    opened = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "LUNG1-002 GTV")
    reader = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    reader.SetFileName(str(tmp_path / "gtv2.seg.nrrd"))
    opened.SetAndObserveStorageNodeID(reader.GetID())
    assert reader.ReadData(opened)
    assert not opened.GetNodeReferenceID(opened.GetReferenceImageGeometryReferenceRole())
    assert nodes.segmentation_volume_problem(opened, ct) is None     # on the CT's voxels, no patient: as before
    # LUNG1-002's RTSTRUCT as SlicerRT loads it without its CT: closed surfaces / contours, no reference geometry
    contours = imported(gtv2, "LUNG1-002 RTSTRUCT")
    contours.SetName("LUNG1-002 RTSTRUCT")
    contours.CreateClosedSurfaceRepresentation()
    contours.GetSegmentation().SetSourceRepresentationName(
        slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName())
    contours.GetSegmentation().RemoveRepresentation(
        slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())
    contours.GetSegmentation().SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), "")
    contours.RemoveNodeReferenceIDs(contours.GetReferenceImageGeometryReferenceRole())
    assert not mrml.has_reference_geometry(contours) and not mrml.stores_labelmaps(contours)
    assert nodes.segmentation_volume_problem(contours, ct) is None   # nothing to compare, no patient: as before
    for seg in (opened, contours):
        _under_dicom_patient(mrml_scene, seg, "LUNG1-002")
        problem = nodes.segmentation_volume_problem(seg, ct)
        assert problem == (f"The segmentation '{seg.GetName()}' belongs to another patient (patient LUNG1-002) than "
                           "LUNG1-003 CT (patient LUNG1-003): choose LUNG1-003 CT's segmentation"), problem
        p.inputVolume, p.segmentation, p.selectedSegments = ct, seg, mrml.segment_names(seg)
        assert logic.inputProblem(p) == problem
    # the same patient's segmentation (a GTV of LUNG1-003 on its own grid) stays accepted
    own = imported(on_grid, "LUNG1-003 GTV")
    own.RemoveNodeReferenceIDs(own.GetReferenceImageGeometryReferenceRole())
    _under_dicom_patient(mrml_scene, own, "LUNG1-003")
    assert nodes.segmentation_volume_problem(own, ct) is None


def test_a_segmentation_of_another_patient_is_not_an_output_for_this_ct(load_module, mrml_scene):
    """QA defect: a segmentation linked to no image (opened from a .seg.nrrd, its geometry that of this CT's grid)
    under another DICOM patient than the CT was reused as Lung AI Segmentation's output: this patient's tumour was
    added to the other patient's node, and a segment of it chosen to replace was overwritten.  It is now another
    CT's (nodes.other_patient): the result goes to a new node, replacing one of its segments is refused."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes

    a = _small_ct(mrml_scene, "A", (20, 20, 10), (0.0, 0.0, 0.0))
    b = _small_ct(mrml_scene, "B", (20, 20, 10), (0.0, 0.0, 0.0))       # a cohort on one grid
    seg, _ = mrml.mask_to_segment(mrml_scene, _tumour_mask(b), "GTV B", reference_volume_node=b)
    seg.RemoveNodeReferenceIDs(seg.GetReferenceImageGeometryReferenceRole())     # as opened from a .seg.nrrd
    assert mrml.has_reference_geometry(seg)
    assert nodes.volume_segmentation(seg, a) is seg           # no patient known: the same grid is this CT's
    _under_dicom_patient(mrml_scene, a, "PA")
    _under_dicom_patient(mrml_scene, seg, "PB")
    assert nodes.volume_segmentation(seg, a) is None
    with pytest.raises(InputError, match="holds segments of another CT"):
        nodes.volume_segmentation(seg, a, replace_segment="GTV B")
    before = mrml.segment_names(seg)
    out = _add_tumour(mrml_scene, a, seg_node=seg)
    assert out is not seg and mrml.segment_names(seg) == before
    _under_dicom_patient(mrml_scene, seg, "PA")               # the same patient's: reused as before
    assert nodes.volume_segmentation(seg, a) is seg


def test_radiomics_table_refuses_a_segmentation_of_another_ct_as_the_panel(load_module, mrml_scene):
    """QA defect: the console API lungai.scene.radiomics.radiomics_table measured a segmentation drawn on another CT (or
    another DICOM patient's) on this CT without a word, while the Lung Radiomics panel refuses it
    (nodes.segmentation_volume_problem).  It now raises that refusal before any work; the CT's own segmentation is
    computed as before."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    ct = _small_ct(mrml_scene, "CT", (20, 20, 10), (10.0, -20.0, 30.0))
    other_ct = _small_ct(mrml_scene, "other CT", (20, 20, 10), (12.0, -20.0, 30.0))
    mask = _tumour_mask(ct)
    foreign, _ = mrml.mask_to_segment(mrml_scene, mask, "GTV", reference_volume_node=other_ct)
    problem = nodes.segmentation_volume_problem(foreign, ct)
    assert problem and "drawn on another image (other CT), not on CT" in problem
    with pytest.raises(InputError) as caught:
        radiomics_table(mrml_scene, ct, foreign, segments=["GTV"], feature_classes=["shape"])
    assert caught.value.problem == problem
    own, _ = mrml.mask_to_segment(mrml_scene, mask, "GTV", reference_volume_node=ct)
    table, errors = radiomics_table(mrml_scene, ct, own, segments=["GTV"], feature_classes=["shape"])
    assert not errors and table.GetTable().GetNumberOfRows() > 0


def test_lung_radiomics_exports_keep_the_cts_geometry_in_double_precision(load_module, mrml_scene, small_phantom,
                                                                          tmp_path):
    """QA defect: the panel exported the CT and masks as NIfTI (float32 spacing / origin): a DICOM / NRRD CT whose
    spacing is not exact in float32 gave features ~1e-7 (relative) off the command line's on the same CT.  The files
    handed to lungai (lungai.scene.nodes.EXPORT_SUFFIX, NRRD) keep the node's geometry exactly."""
    from lungai import mrml

    ct = sitk.Image(small_phantom.ct)
    ct.SetSpacing((0.703125123456789, 0.9765625000000001, 2.4999999999))
    ct.SetOrigin((-249.51171875123, -120.3333333333333, -300.1234567890123))
    labels = sitk.Image(small_phantom.labels)
    labels.CopyInformation(ct)
    node = mrml.volume_node_from_image(mrml_scene, ct, "CT")
    seg, _ = mrml.mask_to_segment(mrml_scene, labels > 0, "GTV", reference_volume_node=node)
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = node, seg, ["GTV"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(ct > -2000, sitk.sitkFloat32), "dose")
    with pytest.raises(ValueError):
        logic.featureCommands(p, tmp_path)                          # no lung segment for the dose: said first
    p.doseVolume = None
    cmds, columns, _, _, _ = logic.featureCommands(p, tmp_path)
    expected = mrml.image_from_volume_node(node)
    for name in ["ct", *columns]:
        written = sitk.ReadImage(str(next(tmp_path.glob(f"{name}.*"))))
        for what in ("GetSpacing", "GetOrigin", "GetDirection"):    # float32 NIfTI: spacing 4e-9, origin 1e-5 mm off
            np.testing.assert_allclose(getattr(written, what)(), getattr(expected, what)(), rtol=0, atol=1e-12,
                                       err_msg=f"{name} {what}")


def test_results_csv_text_columns_empty_in_every_row_stay_text(mrml_scene, tmp_path):
    """A text column of lungai's results empty in every row (the stage predictions' ``notes``, the dose table's
    ``lungs_cut``, the RP risk's ``warnings``) is a text column of empty cells in the table node, not a double
    column shown "nan" (nodes.read_results_csv); a number column stays numbers, an empty one NaN (a feature not
    computed: a double column, as the radiomics tables show it)."""
    import pandas as pd
    import vtk
    from lungai.dose.features import LUNGS_CUT_COLUMN
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "001", (8, 8, 4), (0.0, 0.0, 0.0))
    pd.DataFrame({"case": ["001"], "dose_mld_gy": [12.5], "dose_gtv_mean_gy": [float("nan")], "masks": ["lungs"],
                  LUNGS_CUT_COLUMN: [""]}).to_csv(tmp_path / "dose.csv", index=False)
    pd.DataFrame({"patient_id": ["007", "008"], "ehr": [1, 1], "model": ["m", "m"], "p_I": [0.7, float("nan")],
                  "predicted": ["I", ""], "status": ["computed", "not computed"], "notes": ["", ""]}
                 ).to_csv(tmp_path / "predictions.csv", index=False)
    dose = nodes.table_from_csv(mrml_scene, tmp_path / "dose.csv", "001 dose features", volume_node=ct,
                                made_by=nodes.DOSE_MADE_BY)
    stage = nodes.table_from_csv(mrml_scene, tmp_path / "predictions.csv", "Stage predictions",
                                 where={"patient_id": "007"})
    allstage = nodes.table_from_csv(mrml_scene, tmp_path / "predictions.csv", "all")

    def column(node, name):
        return node.GetTable().GetColumnByName(name)

    for node, name in ((dose, LUNGS_CUT_COLUMN), (stage, "notes"), (allstage, "notes")):
        arr = column(node, name)
        assert isinstance(arr, vtk.vtkStringArray), (name, arr.GetClassName())
        assert {arr.GetValue(i) for i in range(arr.GetNumberOfValues())} == {""}, name
    assert column(allstage, "predicted").GetValue(1) == ""          # a patient not computed: '', not "nan"
    assert nodes.table_rows(stage)[0]["notes"] == "" and nodes.table_rows(dose)[0][LUNGS_CUT_COLUMN] == ""
    for node, name in ((dose, "dose_mld_gy"), (dose, "dose_gtv_mean_gy"), (allstage, "p_I")):
        assert isinstance(column(node, name), vtk.vtkDoubleArray), name
    assert np.isnan(column(dose, "dose_gtv_mean_gy").GetValue(0)) and column(dose, "dose_mld_gy").GetValue(0) == 12.5
    assert np.isnan(column(allstage, "p_I").GetValue(1))


def test_a_run_with_another_segmentation_keeps_the_first_runs_tables(mrml_scene, tmp_path):
    """QA: a second Lung Radiomics run on the same CT with another segmentation (the AI's contours, then the
    clinical ones) replaced the first run's radiomics and dose tables.  A table is linked to its segmentation
    (nodes.SOURCE_SEGMENTATION_REFERENCE): another segmentation gets a new table "<CT> radiomics (<segmentation>)",
    the first is kept; the same segmentation again updates its own table (as before); a table of an older version
    (no segmentation link) is reused."""
    import pandas as pd
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "LUNG1-003", (8, 8, 4), (0.0, 0.0, 0.0))
    ai = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "AI tumour")
    clinical = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "RTSTRUCT")
    rad = nodes.RADIOMICS_MADE_BY

    def radiomics(value, seg, node=None):
        return nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [value]}),
                                  "LUNG1-003 radiomics", ct, node=node, made_by=rad, segmentation_node=seg)

    first = radiomics(1.0, ai)
    second = radiomics(2.0, clinical, node=first)              # the panel's output still the first table
    assert second is not first and second.GetName() == "LUNG1-003 radiomics (RTSTRUCT)"
    assert first.GetName() == "LUNG1-003 radiomics" and nodes.table_rows(first)[0]["Tumor"] == "1"
    assert nodes.source_segmentation_id(first) == ai.GetID()
    assert nodes.source_segmentation_id(second) == clinical.GetID()
    assert nodes.other_segmentation_tables(second) == [first] and nodes.other_segmentation_tables(first) == [second]
    assert radiomics(3.0, ai, node=second) is first and nodes.table_rows(first)[0]["Tumor"] == "3"
    assert radiomics(4.0, clinical) is second and second.GetName() == "LUNG1-003 radiomics (RTSTRUCT)"
    assert nodes.table_rows(second)[0]["Tumor"] == "4"
    # the dose table likewise (table_from_csv)
    pd.DataFrame({"case": ["LUNG1-003"], "dose_mld_gy": [12.0]}).to_csv(tmp_path / "d.csv", index=False)
    dose_ai = nodes.table_from_csv(mrml_scene, tmp_path / "d.csv", "LUNG1-003 dose features", volume_node=ct,
                                   made_by=nodes.DOSE_MADE_BY, segmentation_node=ai)
    dose_clinical = nodes.table_from_csv(mrml_scene, tmp_path / "d.csv", "LUNG1-003 dose features", node=dose_ai,
                                         volume_node=ct, made_by=nodes.DOSE_MADE_BY, segmentation_node=clinical)
    assert dose_clinical is not dose_ai and dose_clinical.GetName() == "LUNG1-003 dose features (RTSTRUCT)"
    assert nodes.own_volume_table(dose_ai, ct, "LUNG1-003 dose features", nodes.DOSE_MADE_BY, clinical) is None
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 4
    # a table of an older version (no segmentation link) is the CT's table, reused by any segmentation
    old = nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [1.0]}), "other radiomics",
                             _small_ct(mrml_scene, "other", (8, 8, 4), (50.0, 0.0, 0.0)), made_by=rad)
    other_ct = mrml_scene.GetFirstNodeByName("other")
    assert nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [2.0]}), "other radiomics",
                              other_ct, made_by=rad, segmentation_node=clinical) is old
    assert old.GetName() == "other radiomics" and nodes.source_segmentation_id(old) == clinical.GetID()
    # Multimodal Predict: the radiomics and dose tables of one segmentation make a risk row, and it says which
    from lungai.scene.rp import risk_inputs_note, risk_tables_problem

    assert risk_tables_problem(first, dose_ai) is None and risk_tables_problem(second, dose_clinical) is None
    assert "different segmentations" in risk_tables_problem(first, dose_clinical)
    assert "(segmentation 'AI tumour')" in risk_tables_problem(first, dose_clinical)
    assert "different CTs" in risk_tables_problem(old, dose_ai)
    from lungai.scene.rp import risk_case

    assert risk_case(second) == "LUNG1-003"
    mrml_scene.RemoveNode(ct)                        # the CT gone: the case from the table's name, without "(...)"
    assert risk_case(second) == "LUNG1-003" and risk_case(first) == "LUNG1-003"
    assert risk_inputs_note(second, dose_clinical) == (
        "Inputs: radiomics table 'LUNG1-003 radiomics (RTSTRUCT)' (segmentation 'RTSTRUCT'); "
        "dose table 'LUNG1-003 dose features (RTSTRUCT)' (segmentation 'RTSTRUCT')")


def test_a_table_of_a_deleted_segmentation_stays_another_segmentations(mrml_scene):
    """QA: with its segmentation node deleted, MRML dropped a radiomics table's segmentation reference and the table
    counted as an older version's (reusable): the next run with another segmentation overwrote and renamed it, and
    Multimodal Predict took it with that other segmentation's dose table.  The segmentation's name (and ID) is
    stored with the table: it stays another segmentation's table, kept, and compared by that name."""
    import pandas as pd
    from lungai.scene import nodes
    from lungai.scene.rp import risk_inputs_note, risk_tables_problem

    ct = _small_ct(mrml_scene, "LUNG1-003", (8, 8, 4), (0.0, 0.0, 0.0))
    clinical = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "RTSTRUCT")
    ai = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "AI tumour")

    def table(value, seg, name="LUNG1-003 radiomics", made_by=nodes.RADIOMICS_MADE_BY, volume=ct):
        return nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [value]}), name, volume,
                                  made_by=made_by, segmentation_node=seg)

    first = table(1.0, clinical)
    assert first.GetAttribute(nodes.SOURCE_SEGMENTATION_NAME_ATTRIBUTE) == "RTSTRUCT"
    assert first.GetAttribute(nodes.SOURCE_SEGMENTATION_ID_ATTRIBUTE) == clinical.GetID()
    mrml_scene.RemoveNode(clinical)
    assert nodes.source_segmentation_id(first) == ""                   # MRML dropped the reference
    assert nodes.source_segmentation_name(first) == "RTSTRUCT"
    second = table(2.0, ai)
    assert second is not first and second.GetName() == "LUNG1-003 radiomics (AI tumour)"
    assert first.GetName() == "LUNG1-003 radiomics" and nodes.table_rows(first)[0]["Tumor"] == "1"
    assert nodes.other_segmentation_tables(second) == [first]
    dose = table(3.0, ai, "LUNG1-003 dose features", nodes.DOSE_MADE_BY)
    assert dose.GetName() == "LUNG1-003 dose features (AI tumour)"
    problem = risk_tables_problem(first, dose)
    assert problem and "different segmentations" in problem and "(segmentation 'RTSTRUCT')" in problem
    assert risk_tables_problem(second, dose) is None
    assert "(segmentation 'RTSTRUCT')" in risk_inputs_note(first, None)
    # a table of an older version (no reference, no stored name) is still the CT's table, reused
    other = _small_ct(mrml_scene, "other", (8, 8, 4), (50.0, 0.0, 0.0))
    old = table(4.0, None, "other radiomics", volume=other)
    for key in (nodes.SOURCE_SEGMENTATION_NAME_ATTRIBUTE, nodes.SOURCE_SEGMENTATION_ID_ATTRIBUTE):
        assert old.GetAttribute(key) is None
    assert table(5.0, ai, "other radiomics", volume=other) is old and old.GetName() == "other radiomics"


def test_radiomics_and_dose_tables_of_one_segmentation_get_one_suffix(mrml_scene):
    """QA: the "(<segmentation>)" suffix was decided per kind of table: a CT with a clinical-contours radiomics table
    (no dose) and then an AI run with dose gave 'CT radiomics (AI)' but 'CT dose features'.  One decision per CT:
    a new table is suffixed when the CT has a radiomics or dose table of another segmentation, as its segmentation's
    table of the other kind is."""
    import pandas as pd
    from lungai.scene import nodes

    ct = _small_ct(mrml_scene, "CT", (8, 8, 4), (0.0, 0.0, 0.0))
    clinical = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "RTSTRUCT")
    ai = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "AI")

    def table(seg, kind):
        name, made_by = {"rad": ("CT radiomics", nodes.RADIOMICS_MADE_BY),
                         "dose": ("CT dose features", nodes.DOSE_MADE_BY)}[kind]
        return nodes.volume_table(mrml_scene, pd.DataFrame({"feature": ["f"], "Tumor": [1.0]}), name, ct,
                                  made_by=made_by, segmentation_node=seg)

    assert table(clinical, "rad").GetName() == "CT radiomics"
    assert table(ai, "rad").GetName() == "CT radiomics (AI)"
    assert table(ai, "dose").GetName() == "CT dose features (AI)"
    # the clinical contours' dose table later: unsuffixed, as their radiomics table
    assert table(clinical, "dose").GetName() == "CT dose features"
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 4
    # a table of this kind of another segmentation holding the plain name: suffixed (no 'CT radiomics_1')
    ct2 = _small_ct(mrml_scene, "CT2", (8, 8, 4), (50.0, 0.0, 0.0))
    dose_clinical = nodes.volume_table(mrml_scene, pd.DataFrame({"f": [1.0]}), "CT2 dose features", ct2,
                                       made_by=nodes.DOSE_MADE_BY, segmentation_node=clinical)
    rad_ai = nodes.volume_table(mrml_scene, pd.DataFrame({"f": [1.0]}), "CT2 radiomics", ct2,
                                made_by=nodes.RADIOMICS_MADE_BY, segmentation_node=ai)
    assert (dose_clinical.GetName(), rad_ai.GetName()) == ("CT2 dose features", "CT2 radiomics (AI)")
    rad_clinical = nodes.volume_table(mrml_scene, pd.DataFrame({"f": [1.0]}), "CT2 radiomics", ct2,
                                      made_by=nodes.RADIOMICS_MADE_BY, segmentation_node=clinical)
    assert rad_clinical.GetName() == "CT2 radiomics"
    # an older version's radiomics table reused by the AI's run holds the plain name: the clinical one is suffixed
    ct3 = _small_ct(mrml_scene, "CT3", (8, 8, 4), (100.0, 0.0, 0.0))

    def table3(kind, seg):
        return nodes.volume_table(mrml_scene, pd.DataFrame({"f": [1.0]}), f"CT3 {kind}", ct3, segmentation_node=seg,
                                  made_by=nodes.RADIOMICS_MADE_BY if kind == "radiomics" else nodes.DOSE_MADE_BY)

    old = table3("radiomics", None)
    assert table3("dose features", clinical).GetName() == "CT3 dose features"
    assert table3("radiomics", ai) is old and old.GetName() == "CT3 radiomics"
    assert table3("radiomics", clinical).GetName() == "CT3 radiomics (RTSTRUCT)"


def test_lung_radiomics_panel_keeps_the_table_of_another_segmentation(load_module, mrml_scene, phantom_nodes):
    """QA: the panel run a second time on the same CT with another segmentation (AI vs clinical contours) replaced
    the first run's radiomics table.  Now it makes "<CT> radiomics (<segmentation>)" and its message names the
    segmentation and the table kept."""
    from lungai.scene import nodes

    vol, seg = phantom_nodes
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumor"])
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    first = p.outputTable
    other = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "clinical")
    other.Copy(seg)
    other.SetName("clinical")
    p.segmentation, p.selectedSegments = other, ["Tumor"]
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.outputTable is not first and first.GetScene() is mrml_scene
    assert p.outputTable.GetName() == f"{vol.GetName()} radiomics (clinical)"
    assert f"-> table '{vol.GetName()} radiomics (clinical)' (of segmentation 'clinical'; kept: " \
           f"'{first.GetName()}' of another segmentation)" in message
    assert nodes.source_segmentation_id(first) == seg.GetID()


def _dose_run(logic, p, name="plan A", scale=1.0, on="Tumor"):
    """Lung Radiomics' run of ``p`` with a new dose volume ``name`` (60 Gy on the segment ``on``, times ``scale``):
    the message."""
    from lungai import mrml
    from lungai.dose import treatment_dose

    scene = p.inputVolume.GetScene()
    tumour = mrml.segment_to_mask(scene, p.segmentation, on, p.inputVolume)
    p.doseVolume = mrml.volume_node_from_image(scene, treatment_dose(tumour, prescription_gy=60) * scale, name)
    return logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))


def test_lung_radiomics_dose_warns_of_a_gtv_name_without_a_role(load_module, mrml_scene, phantom_nodes, small_phantom):
    """QA (LUNG1-003, segments 'GTV_primary+nodes', 'GTV+nodes', 'Primary tumour' and a 'Lungs' segment holding the
    tumour): the dose table said "no GTV (the lungs include the tumour)" and the MLD was of the lungs with the GTV, with
    no word, while lungai dose-features --rtstruct warns (lungai.dicom.roles.role_notes).  The panel now says the same
    notes in its terms (rename the segment, no --structure-map), and of a ticked segment with no tumour name that lies
    in the lungs: it is not subtracted (roles come from names, as on the command line)."""
    from lungai import mrml
    from lungai.io import copy_geometry

    vol, seg = phantom_nodes
    mask = lambda name: sitk.GetArrayFromImage(mrml.segment_to_mask(mrml_scene, seg, name, vol)) > 0  # noqa: E731
    tumour, lungs = mask("Tumor"), mask("Right lung") | mask("Left lung")
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetName("GTV+nodes")
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("GTV+nodes")).RemoveTag("TerminologyEntry")
    for name in ("Right lung", "Left lung"):
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    mrml.mask_to_segment(mrml_scene, copy_geometry((lungs | tumour).astype(np.uint8), small_phantom.ct), "Lungs",
                         seg_node=seg)
    mrml.mask_to_segment(mrml_scene, copy_geometry(tumour.astype(np.uint8), small_phantom.ct), "Primary tumour",
                         seg_node=seg)
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Primary tumour"])
    message = _dose_run(logic, p, on="GTV+nodes")
    assert p.doseTable is not None, message
    warnings = [ln for ln in message.splitlines() if ln.startswith("warning: ")]
    assert any("segment 'GTV+nodes' begins with GTV but its name has no role" in w and "rename" in w
               for w in warnings), message
    assert any("'Primary tumour'" in w and "not subtracted from the lungs" in w and "rename" in w
               for w in warnings), message
    assert "--structure-map" not in message
    masks = mrml.dataframe_from_table_node(p.doseTable)["masks"].item()
    assert "no GTV" in masks                      # not subtracted: the roles are the names', as the command line's


def test_lung_radiomics_dose_warns_of_an_unticked_tumour_name_without_a_gtv_prefix(load_module, mrml_scene,
                                                                                    phantom_nodes):
    """QA: an unticked segment named like a tumour without a GTV prefix ('Primary tumour') was not subtracted from
    the lungs for the dose features, with no word (an unticked 'GTV+nodes' is warned: lungai.dicom.roles.role_notes,
    the rule the command line shares); the lung segments get no such note."""
    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetName("Primary tumour")
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Primary tumour")).RemoveTag("TerminologyEntry")
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Right lung"])
    message = _dose_run(logic, p, on="Primary tumour")
    assert p.doseTable is not None, message
    warnings = [ln for ln in message.splitlines() if ln.startswith("warning: ")]
    assert any("segment 'Primary tumour'" in w and "not used as a GTV" in w and "rename" in w
               for w in warnings), message
    assert not any("Right lung" in w or "Left lung" in w for w in warnings), message
    assert "--structure-map" not in message


def test_lung_radiomics_second_dose_gets_its_own_table_and_a_failed_run_keeps_them(load_module, mrml_scene,
                                                                                   phantom_nodes):
    """QA: a second dose ('Plan B dose') on the same CT and segmentation overwrote plan A's dose table, no table said
    which dose it was of, and a failed run with another dose removed the earlier table.  Now the dose table records
    its dose node (attribute, reference and a 'dose' column), another dose gets its own table (plan A's kept, said),
    the same dose again updates its own, and a failed run removes nothing."""
    from lungai import mrml
    from lungai.scene import nodes

    logic, p = _firstorder_radiomics(load_module, phantom_nodes)
    message = _dose_run(logic, p, "plan A")
    first = p.doseTable
    assert first is not None and mrml.dataframe_from_table_node(first)["dose"].item() == "plan A", message
    assert first.GetAttribute(nodes.SOURCE_DOSE_NAME_ATTRIBUTE) == "plan A"
    mld_a = mrml.dataframe_from_table_node(first)["dose_mld_gy"].item()
    message = _dose_run(logic, p, "Plan B dose", scale=0.5)
    second = p.doseTable
    assert second is not first and first.GetScene() is mrml_scene, message
    assert mrml.dataframe_from_table_node(first)["dose_mld_gy"].item() == mld_a       # plan A's values kept
    assert mrml.dataframe_from_table_node(second)["dose"].item() == "Plan B dose"
    assert "Plan B dose" in second.GetName() and f"kept: '{first.GetName()}' of dose 'plan A'" in message
    assert mrml.dataframe_from_table_node(second)["dose_mld_gy"].item() == pytest.approx(mld_a * 0.5, rel=1e-3)
    message = _dose_run(logic, p, "plan C", scale=100.0)        # cGy read as Gy: the dose step fails
    assert "Dose features not computed" in message and "removed" not in message
    assert first.GetScene() is mrml_scene and second.GetScene() is mrml_scene and p.doseTable is None
    p.doseTable = first                                          # plan A again: its own table is updated
    dose_a = mrml_scene.GetFirstNodeByName("plan A")
    p.doseVolume = dose_a
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.doseTable is first


def test_lung_radiomics_dose_warns_when_the_dose_is_under_another_transform(load_module, mrml_scene, phantom_nodes,
                                                                            tmp_path):
    """QA: the CT and segmentation under a transform while the dose is not (or the reverse) gave shifted dose metrics
    without a word.  The inputs are read where Slicer shows them (world coordinates), the convention of the panels: so
    a registration transform is honoured, but the panel warns that the dose sits under another transform."""
    import vtk

    from lungai import mrml
    from lungai.dose import treatment_dose

    logic, p = _firstorder_radiomics(load_module, phantom_nodes)
    tumour = mrml.segment_to_mask(mrml_scene, p.segmentation, "Tumor", p.inputVolume)
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, treatment_dose(tumour, prescription_gy=60), "dose")
    logic.doseCommand(p, tmp_path / "ct.nrrd", tmp_path)
    assert not any("transform" in n for n in logic.doseNotes)
    shift = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    m = vtk.vtkMatrix4x4()
    m.SetElement(0, 3, 15.0)
    shift.SetMatrixTransformToParent(m)
    for node in (p.inputVolume, p.segmentation):
        node.SetAndObserveTransformNodeID(shift.GetID())
    logic.doseCommand(p, tmp_path / "ct.nrrd", tmp_path)
    notes = [n for n in logic.doseNotes if "transform" in n]
    assert len(notes) == 1 and "'shift'" in notes[0] and "'dose'" in notes[0], logic.doseNotes
    p.doseVolume.SetAndObserveTransformNodeID(shift.GetID())    # the dose moved with them: nothing to say
    logic.doseCommand(p, tmp_path / "ct.nrrd", tmp_path)
    assert not any("transform" in n for n in logic.doseNotes)
    for node in (p.inputVolume, p.segmentation):                 # only the dose under a transform: said too
        node.SetAndObserveTransformNodeID(None)
    logic.doseCommand(p, tmp_path / "ct.nrrd", tmp_path)
    assert any("transform" in n and "'shift'" in n for n in logic.doseNotes)


def test_lung_radiomics_says_every_dose_features_warning(load_module, mrml_scene, phantom_nodes):
    """QA: lungai dose-features warned "the lung map holds only the right lung ... dose metrics are of one lung" but
    the panel's message repeated only the lungs_cut warnings.  Every warning the dose step prints reaches it."""
    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Left lung"))
    logic, p = _firstorder_radiomics(load_module, (vol, seg))
    message = _dose_run(logic, p)
    assert p.doseTable is not None, message
    assert any(ln.startswith("warning: ") and "one lung" in ln for ln in message.splitlines()), message


def test_lung_radiomics_raw_rtdose_pixels_name_dose_grid_scaling(load_module, mrml_scene, phantom_nodes):
    """QA: a dose volume of raw RTDOSE pixel values (DoseGridScaling not applied: 60 Gy stored as 60000) got "choose
    Dose unit: cGy", implausible too (600 Gy).  The panel now names DoseGridScaling and loading the RTDOSE through the
    DICOM module with SlicerRT (lungai.dose.read's message, without its command-line part)."""
    logic, p = _firstorder_radiomics(load_module, phantom_nodes)
    message = _dose_run(logic, p, "RTDOSE raw pixels", scale=1000.0)
    assert "Dose features not computed: RTDOSE raw pixels: the maximum" in message, message
    assert "DoseGridScaling" in message and "DICOM module with SlicerRT" in message
    assert "Dose unit: cGy" not in message and "--dose " not in message and p.doseTable is None


def test_multimodal_risk_form_number_with_a_decimal_comma_is_said_in_the_panels_terms(load_module, mrml_scene,
                                                                                        rp_model):
    """QA: a clinical value typed "12,8" went to lungai rp predict, whose fix was for a CSV ("declare it categorical
    in a role file ... or end its name with _cat") after a command line with temporary paths.  The panel says it
    before anything runs: the field, the value and what to type; nothing is started."""
    import json

    logic, p, pick = _risk_logic(load_module, rp_model, mrml_scene)
    values = json.loads(p.clinicalValues)
    values["clin_hb_g_dl"] = "12,8"
    values["clin_age_years"] = "sixty"
    p.clinicalValues = json.dumps(values)
    with pytest.raises(ValueError) as err:
        logic.startRisk(p)
    text = str(err.value)
    assert "clin_hb_g_dl = '12,8' is not a number (type 12.8: a decimal point, not a comma)" in text
    assert "clin_age_years = 'sixty' is not a number" in text and "role file" not in text
    values["clin_hb_g_dl"], values["clin_age_years"] = "12.8", "66"
    p.clinicalValues = json.dumps(values)
    job = logic.startRisk(p)                    # the command is built, not run
    assert job is not None
    job.finish()


def test_lungai_seg_training_on_a_finished_model_follows_train_seg_resume(load_module, tmp_path, capsys):
    """QA: Start training refused an output folder holding a finished model ("already holds a trained model: choose
    a new output folder") where ``train-seg --resume`` on it says "already trained to N epochs ... nothing to do",
    or with a larger --epochs trains the model on.  The panel follows train-seg's rule
    (lungai.cli.seg.finished_model_note): the same epochs disable the button with that note; more epochs resume."""
    import json

    from lungai.cli import main
    from seg_helpers import TINY_CLI, tiny_cases, write_cases

    images, masks = write_cases(tiny_cases(6, seed=501), tmp_path / "data")
    tiny = [a if TINY_CLI[i - 1] not in ("--epochs", "--iters") else "1" for i, a in enumerate(TINY_CLI)]
    module = load_module("LungAISeg")
    logic = module.LungAISegLogic()
    p = logic.getParameterNode()
    for flag, value in zip(tiny[::2], tiny[1::2]):                # tiny sizes set in the panel (Advanced)
        field = module.trainField(flag[2:].replace("-", "_"))
        setattr(p, field, type(getattr(p, field))(value))
    p.trainImages, p.trainMasks, p.trainOutput = images, masks, tmp_path / "model"
    first = logic.startTraining(p).process.args
    assert main(first) == 0                                        # a finished model, trained to 1 epoch
    capsys.readouterr()
    model_json = tmp_path / "model" / "model.json"
    before = model_json.read_text(encoding="utf-8")
    assert main(first + ["--resume"]) == 0 and "nothing to do" in capsys.readouterr().out   # the CLI's rule
    problem = logic.trainingInputProblem(p)
    assert problem is not None and "already trained to 1 epoch (" in problem and "nothing to do" in problem, problem
    assert "choose a new output folder" not in problem.split("nothing to do")[0], problem
    with pytest.raises(ValueError, match="nothing to do"):
        logic.startTraining(p)
    p.trainSeed = p.trainSeed + 1                                  # other options than the finished run's: named
    assert logic.trainingInputProblem(p).startswith("Cannot resume:")
    p.trainSeed = p.trainSeed - 1
    p.trainEpochs = 2                                              # a larger --epochs: trains on, as train-seg does
    assert logic.trainingInputProblem(p) is None and logic.trainingResumes(p)
    resumed = logic.startTraining(p).process.args
    assert "--resume" in resumed and resumed[resumed.index("--epochs") + 1] == "2"
    assert model_json.read_text(encoding="utf-8") == before       # the check changed nothing
    assert main(resumed) == 0
    doc = json.loads(model_json.read_text(encoding="utf-8"))
    assert doc["training"]["epochs"] == 2 and "calibration" in doc


def test_lung_radiomics_a_lung_minus_the_gtv_is_told_as_a_lung_not_a_tumour(load_module, mrml_scene, phantom_nodes,
                                                                             small_phantom, tmp_path):
    """QA (TG-263 'Lung_R-GTV' beside 'Left lung'): the dose lungs were the left lung alone and the panel's note
    said "segment 'Lung_R-GTV' is named like a tumour ... rename the segment to a tumour name" - followed, the whole
    right lung would have been subtracted as a GTV.  It now says what the segment is and to rename it to 'Right
    lung'; with no lung segment left ('Lung_L-GTV' too), the refusal before Apply says the same of both."""
    from lungai import mrml

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    segmentation = p.segmentation.GetSegmentation()
    right = mrml.segment_to_mask(mrml_scene, p.segmentation, "Right lung", p.inputVolume)
    mrml.mask_to_segment(mrml_scene, right, "Lung_R-GTV", seg_node=p.segmentation)     # ticked, beside the lungs
    p.selectedSegments = ["Tumor", "Lung_R-GTV"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32),
                                               "dose")
    logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    assert not any("Lung_R-GTV" in n for n in logic.doseRoleNotes), logic.doseRoleNotes   # the lungs are there
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Right lung"))
    logic.doseCommand(p, tmp_path / "ct.nii.gz", tmp_path)
    notes = " ".join(logic.doseRoleNotes)
    assert "segment 'Lung_R-GTV' is the right lung minus the GTV" in notes, notes
    assert "rename the segment to 'Right lung'" in notes and "tumour name" not in notes, notes
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Left lung")).SetName("Lung_L-GTV")
    problem = logic.inputProblem(p)
    assert problem.startswith("Dose features need lung segments"), problem
    assert "'Lung_R-GTV' is the right lung minus the GTV" in problem and "rename the segment to 'Right lung'" in problem
    assert "'Lung_L-GTV' is the left lung minus the GTV" in problem and "rename the segment to 'Left lung'" in problem


def _physical_and_effective_doses(mrml_scene, monkeypatch, tmp_path, p1, ct_node):
    """The RT study ``p1``'s RTDOSE as two dose nodes - as read ("RTDOSE physical") and as a copy of DoseType
    EFFECTIVE ("RTDOSE effective", rd_eff.dcm) - loaded as Slicer's DICOM database holds them with the CT node
    ``ct_node``: (the EFFECTIVE copy's dataset, physical node, effective node)."""
    import sys

    import pydicom

    from lungai import mrml
    from lungai.dose import read_dose

    ds = pydicom.dcmread(p1["dose"])
    ds.DoseType, ds.SOPInstanceUID, ds.SeriesInstanceUID = "EFFECTIVE", "1.2.3.9.1", "1.2.3.9.2"
    ds.save_as(tmp_path / "rd_eff.dcm")
    physical = mrml.volume_node_from_image(mrml_scene, read_dose(p1["dose"]), "RTDOSE physical")
    effective = mrml.volume_node_from_image(mrml_scene, read_dose(tmp_path / "rd_eff.dcm"), "RTDOSE effective")
    instances, series = _as_slicer_loads_it(mrml_scene, ct_node, p1["ct"], instance_uids=True)
    for node, dose in ((physical, p1["dose"]), (effective, tmp_path / "rd_eff.dcm")):
        more_instances, more_series = _as_slicer_loads_it(mrml_scene, node, dose, instance_uids=False)
        instances.update(more_instances)
        series.update(more_series)
    database = types.SimpleNamespace(fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, []))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
    return ds, physical, effective


def _moved_under_patient(scene, node, patient):
    """``node`` dragged under the subject hierarchy patient ``patient`` (a study of it) in the Data module: its item
    gets that parent, no DICOM UID of its own (unlike :func:`_under_dicom_patient`, a series loaded from DICOM)."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    subject = sh.GetItemByUID("DICOM", patient)
    if not subject:
        subject = sh.CreateSubjectItem(sh.GetSceneItemID(), patient)
        sh.SetItemUID(subject, "DICOM", patient)
    children = vtk_id_list(sh, subject)
    study = children[0] if children else sh.CreateStudyItem(subject, f"{patient} study")
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    sh.SetItemParent(item, study)


def vtk_id_list(sh, item) -> list:
    """The direct children of a subject hierarchy item."""
    import vtk

    ids = vtk.vtkIdList()
    sh.GetItemChildren(item, ids)
    return [ids.GetId(i) for i in range(ids.GetNumberOfIds())]


def test_a_nifti_dose_moved_under_the_ct_patient_says_its_frame_is_unchecked(mrml_scene, two_patients, tmp_path,
                                                                             monkeypatch):
    """QA (fornotes2_58): a dose loaded from NIfTI, moved under the CT's patient in the subject hierarchy, had only its
    PatientID compared with the CT's and no word said that its frame of reference went unchecked (the note was given
    only to a dose under no patient): it is now the CLI's note for an NRRD dose carrying the CT's PatientID
    (lungai.dose.read.unchecked_dose_note); one under another patient is refused naming both."""
    import sys

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.dose.read import unchecked_dose_note
    from lungai.errors import InputError
    from lungai.io import read_ct, write_image
    from lungai.scene.dicom import check_dose_node_matches_ct

    p1 = two_patients["P1"]
    ct = mrml.volume_node_from_image(mrml_scene, read_ct(p1["ct"]), "CT")
    _under_dicom_patient(mrml_scene, ct, "P1")
    nifti = write_image(read_dose(p1["dose"]), tmp_path / "dose.nii.gz")
    dose = mrml.volume_node_from_image(mrml_scene, read_dose(nifti), "dose")             # as loaded from NIfTI
    database = types.SimpleNamespace(fileForInstance=lambda uid: "", filesForSeries=lambda uid: [])
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
    assert check_dose_node_matches_ct(dose, ct) == [unchecked_dose_note("dose", "CT", dose_dicom=False)]
    _moved_under_patient(mrml_scene, dose, "P1")                                          # moved under P1
    notes = check_dose_node_matches_ct(dose, ct)
    assert notes == ["the dose dose could not be checked against the CT CT: the dose is not DICOM: its PatientID is "
                     "P1 (the CT's) but it carries no FrameOfReferenceUID; make sure the dose was planned on this "
                     "CT (the plan's DICOM RTDOSE lets lungai check it)"], notes
    other = mrml.volume_node_from_image(mrml_scene, read_dose(nifti), "dose P3")
    _moved_under_patient(mrml_scene, other, "P3")
    with pytest.raises(InputError, match=r"dose P3 does not belong to the CT CT: PatientID P3 \(RTDOSE\) is "
                                         r"not the CT's P1"):
        check_dose_node_matches_ct(other, ct)


def test_an_rtdose_of_a_scene_opened_from_a_file_is_not_called_not_dicom(load_module, mrml_scene, two_patients,
                                                                          tmp_path, monkeypatch):
    """QA (slicerdose59): a CT and its RTDOSE loaded from DICOM (SlicerRT), the scene saved and opened again where
    Slicer's DICOM database does not hold their files (another computer, the database cleared; or no DICOM module),
    gave the panel's warning "the dose RTDOSE could not be checked against the CT CT: the dose is not DICOM: its
    PatientID is P1 (the CT's) but it carries no FrameOfReferenceUID; make sure ... (the plan's DICOM RTDOSE lets
    lungai check it)" - untrue of an RTDOSE, and the fix named what the user had given.  The note now says what
    happened (its file is not in the DICOM database: DoseType, DoseSummationType and FrameOfReferenceUID unread, the
    patient compared) and the fix (load CT and RTDOSE from the DICOM database); the CT's frame note no longer says a
    DICOM CT was "not loaded from DICOM files".  A NIfTI dose moved under the CT's patient keeps its note."""
    import sys

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.dose.read import unchecked_dose_note
    from lungai.errors import InputError
    from lungai.io import read_ct, write_image
    from lungai.scene.dicom import check_dose_node_matches_ct

    p1 = two_patients["P1"]
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    _, p.inputVolume, p.segmentation = slicerrt_segmentation(mrml_scene, p1)
    p.selectedSegments = ["Lung_R"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, read_dose(p1["dose"]), "RTDOSE")
    _as_slicer_loads_it(mrml_scene, p.inputVolume, p1["ct"], instance_uids=True)
    _as_slicer_loads_it(mrml_scene, p.doseVolume, p1["dose"], instance_uids=False)
    unread = ("the RTDOSE RTDOSE was loaded from DICOM, but its file is not in Slicer's DICOM database (a scene opened "
              "from a file, or the database moved or cleared), so its DoseType, DoseSummationType and "
              "FrameOfReferenceUID could not be read: only its patient, P1, was compared with the CT CT's; make sure "
              "it is the plan's total physical dose, planned on this CT (import the DICOM folder of the CT and the "
              "RTDOSE into the DICOM database and load them from there to let lungai check it)")
    empty = types.SimpleNamespace(fileForInstance=lambda uid: "", filesForSeries=lambda uid: [])
    for database in (None, empty):                   # no DICOM module; a database without these files
        monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
        notes = check_dose_node_matches_ct(p.doseVolume, p.inputVolume)
        assert notes == [unread], notes
        assert not any("not DICOM" in n for n in notes)
    (tmp_path / "w").mkdir()
    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert unread in logic.doseNotes and not any("not DICOM" in n for n in logic.doseNotes), logic.doseNotes
    # the RTDOSE with a CT loaded from NIfTI (no patient): nothing compared, said so - before: no word at all
    nifti_ct = mrml.volume_node_from_image(mrml_scene, read_ct(p1["ct"]), "CT nifti")
    assert check_dose_node_matches_ct(p.doseVolume, nifti_ct) == [unread.replace(
        "only its patient, P1, was compared with the CT CT's", "nothing was compared with the CT CT nifti")]
    # the CT of that scene (DICOM-loaded, its files not in the database) with an RTDOSE whose file is: not "not
    # loaded from DICOM files"
    instances, series = _as_slicer_loads_it(mrml_scene, p.doseVolume, p1["dose"], instance_uids=False)
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", types.SimpleNamespace(
        fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, [])), raising=False)
    notes = check_dose_node_matches_ct(p.doseVolume, p.inputVolume)
    assert len(notes) == 1 and "the CT's DICOM files are not in Slicer's DICOM database" in notes[0], notes
    assert "not loaded from DICOM" not in notes[0]
    # a NIfTI dose moved under the CT's patient: still "the dose is not DICOM" (true), another patient's refused
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", empty, raising=False)
    nifti = mrml.volume_node_from_image(mrml_scene, read_dose(write_image(read_dose(p1["dose"]),
                                                                          tmp_path / "dose.nii.gz")), "dose")
    _moved_under_patient(mrml_scene, nifti, "P1")
    assert check_dose_node_matches_ct(nifti, p.inputVolume) == [
        unchecked_dose_note("dose", "CT", dose_dicom=False, patient="P1")]
    other = mrml.volume_node_from_image(mrml_scene, read_dose(two_patients["P3"]["dose"]), "RTDOSE P3")
    _as_slicer_loads_it(mrml_scene, other, two_patients["P3"]["dose"], instance_uids=False)
    with pytest.raises(InputError, match="P3"):
        check_dose_node_matches_ct(other, p.inputVolume)


def test_a_nifti_dose_with_a_dicom_ct_is_said_unchecked_as_the_cli(load_module, mrml_scene, two_patients, tmp_path,
                                                                  monkeypatch):
    """QA (fornotes58): a dose loaded from NIfTI / NRRD (no DICOM files, no subject hierarchy patient) with a CT loaded
    from DICOM was used with no word, by the panel as by ``lungai dose-features``: the dose could not be checked
    against the CT.  check_dose_node_matches_ct returns the CLI's note (lungai.dose.read.unchecked_dose_note, the
    reverse case's text: "the dose is not DICOM")."""
    import sys

    from lungai import mrml
    from lungai.dose import read_dose
    from lungai.dose.read import check_dose_matches_ct
    from lungai.io import write_image
    from lungai.scene.dicom import check_dose_node_matches_ct

    p1 = two_patients["P1"]
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    ct, p.inputVolume, p.segmentation = slicerrt_segmentation(mrml_scene, p1)
    p.selectedSegments = ["Lung_R"]
    nifti_dose = write_image(read_dose(p1["dose"]), tmp_path / "dose.nii.gz")
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, read_dose(nifti_dose), "dose")   # as loaded from NIfTI
    instances, series = _as_slicer_loads_it(mrml_scene, p.inputVolume, p1["ct"], instance_uids=True)
    database = types.SimpleNamespace(fileForInstance=instances.get, filesForSeries=lambda uid: series.get(uid, []))
    monkeypatch.setattr(sys.modules["slicer"], "dicomDatabase", database, raising=False)
    said = check_dose_matches_ct(nifti_dose, p1["ct"], names=("dose", "CT"))   # the CLI's note, naming the nodes
    assert said and "the dose dose could not be checked against the CT CT: the dose is not DICOM" in said
    assert check_dose_node_matches_ct(p.doseVolume, p.inputVolume) == [said]
    (tmp_path / "w").mkdir()
    logic.doseCommand(p, tmp_path / "w" / "ct.nii.gz", tmp_path / "w")
    assert said in logic.doseNotes, logic.doseNotes


def test_two_segments_of_one_lung_role_are_refused_by_the_panel_before_apply(load_module, mrml_scene, phantom_nodes,
                                                                             small_phantom):
    """QA (panelroles59): the command line refuses two structures of one lung role (lungai.dicom.roles.AmbiguousRole),
    the panel did not: with 'RT LUNG' (an old copy) beside 'Right lung', dose_lung_segments took the union of both
    (the MLD over a doubled right lung), find_role / derived_lung_masks the first one, no word.  The panel now refuses
    before Apply, naming both segments and the panel's fix (rename or delete one, or untick it); the core refuses too."""
    from lungai import mrml
    from lungai.dicom.roles import AmbiguousRole
    from lungai.scene import nodes
    from lungai.segment_roles import dose_lung_segments, find_role

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    ct, truth = phantom_nodes
    _, copy_id = mrml.mask_to_segment(mrml_scene, mrml.segment_to_mask(mrml_scene, truth, "Right lung", ct), "RT LUNG",
                                      seg_node=truth)
    names = mrml.segment_names(truth)
    assert "RT LUNG" in names and "Right lung" in names and "Left lung" in names
    with pytest.raises(AmbiguousRole, match="'lung_right'"):
        dose_lung_segments(names)
    with pytest.raises(AmbiguousRole):
        find_role(names, "right_lung")
    masks = {n: mrml.segment_to_mask(mrml_scene, truth, n, ct) for n in ("RT LUNG", "Right lung", "Left lung")}
    with pytest.raises(AmbiguousRole):
        nodes.derived_lung_masks(masks)
    p.inputVolume, p.segmentation, p.selectedSegments = ct, truth, ["Tumor"]
    assert logic.inputProblem(p) is None                   # no dose, the lungs not ticked: the tumour's radiomics
    p.selectedSegments = ["Tumor", "RT LUNG", "Right lung"]
    problem = logic.inputProblem(p)
    assert problem is not None and "2 segments are the right lung: " in problem and "'RT LUNG'" in problem and "'Right lung'" in problem and "untick" in problem, problem
    assert "'lung_right'" not in problem                   # words, not the role's internal name (QA slicerconf60)
    p.selectedSegments = ["Tumor"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32), "dose")
    problem = logic.inputProblem(p)                       # the dose takes every lung segment, ticked or not
    assert problem is not None and "2 segments are the right lung: " in problem and "'RT LUNG'" in problem and "'Right lung'" in problem, problem
    assert "Rename" in problem and "delete" in problem and "Segment Editor" in problem and "untick" not in problem
    # the fix works: the copy renamed to a name without a lung role
    truth.GetSegmentation().GetSegment(copy_id).SetName("old lung")
    assert logic.inputProblem(p) is None
    assert dose_lung_segments(mrml.segment_names(truth)) == ["Right lung", "Left lung"]


def test_two_lung_segments_differing_only_in_letter_case_are_refused_by_the_panel_before_apply(
        load_module, mrml_scene, phantom_nodes, small_phantom):
    """QA (panelcase59): 'Right lung' beside 'right lung' (an old copy) was not refused by the panel: the one-lung-role
    rule (lungai.dicom.roles._check_one) leaves names differing only in letter case to the command line's
    check_case_groups, which the panel never ran, and repeated_names_error ignores only spaces around a name - the
    dose took both (the MLD over a doubled right lung), the derived "Lungs" the first.  The panel now refuses before
    Apply, in its own words (which lung, both names) and with its own fix; two tumours 'Tumor' /
    'tumor' stay a union (role:gtv, as on the command line)."""
    from lungai import mrml
    from lungai.dicom.roles import AmbiguousRole
    from lungai.scene import nodes
    from lungai.segment_roles import dose_lung_segments

    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    ct, truth = phantom_nodes
    _, copy_id = mrml.mask_to_segment(mrml_scene, mrml.segment_to_mask(mrml_scene, truth, "Right lung", ct),
                                      "right lung", seg_node=truth)
    names = mrml.segment_names(truth)
    assert "right lung" in names and "Right lung" in names and mrml.repeated_names_error(truth) is None
    with pytest.raises(AmbiguousRole, match="apart from letter case"):
        dose_lung_segments(names)
    masks = {n: mrml.segment_to_mask(mrml_scene, truth, n, ct) for n in ("Right lung", "right lung", "Left lung")}
    with pytest.raises(AmbiguousRole):
        nodes.derived_lung_masks(masks)
    p.inputVolume, p.segmentation, p.selectedSegments = ct, truth, ["Tumor"]
    assert logic.inputProblem(p) is None                   # no dose, the lungs not ticked: the tumour's radiomics
    p.selectedSegments = ["Tumor", "Right lung", "right lung", "Left lung"]
    problem = logic.inputProblem(p)
    # in words (QA slicerconf60: it said the command line's "role:lungs found 2 segments ... of that kind")
    expected = ("2 segments are the right lung: 'Right lung', 'right lung' (their names differ only in letter case) - "
                "which one to use is not clear")
    assert problem is not None and problem.startswith(expected) and "untick" in problem, problem
    p.selectedSegments = ["Tumor"]
    p.doseVolume = mrml.volume_node_from_image(mrml_scene, sitk.Cast(small_phantom.ct > -2000, sitk.sitkFloat32), "dose")
    problem = logic.inputProblem(p)                       # the dose takes every lung segment, ticked or not
    assert problem is not None and problem.startswith(expected), problem
    assert "Rename" in problem and "delete" in problem and "Segment Editor" in problem and "untick" not in problem
    # a tumour written twice in another case: both are subtracted from the lungs (role:gtv's union), not refused
    _, gtv_id = mrml.mask_to_segment(mrml_scene, mrml.segment_to_mask(mrml_scene, truth, "Tumor", ct), "tumor",
                                     seg_node=truth)
    truth.GetSegmentation().GetSegment(copy_id).SetName("old lung")        # the panel's fix
    assert logic.inputProblem(p) is None
    assert dose_lung_segments(mrml.segment_names(truth)) == ["Right lung", "Left lung"]
    assert [n for n, _ in nodes.tumour_masks(mrml_scene, truth, ct)] == ["Tumor", "tumor"]


def test_feature_tables_say_when_their_segments_changed_since(load_module, mrml_scene, phantom_nodes):
    """QA staletab60 (lung2 in a real MRML scene, and the Lung Radiomics panel): a features table (and the dose table,
    and the RP risk computed from them) still read as current after the segments it measured were edited in the
    Segment Editor, renamed, replaced or deleted - exported later, it gave the features of an outline that no longer
    exists.  The confidence tables' refresh (nodes.keep_confidence_tables_current, one observer) now marks such a
    table's rows (nodes.OUTLINE_COLUMN: nodes.MEASURED_EARLIER naming what changed); values kept, never recomputed."""
    import sys
    from pathlib import Path

    from lungai import mrml
    from lungai.io import read_ct, read_mask
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    nodes.keep_confidence_tables_current(mrml_scene)

    def outline(table):
        return {row.get(nodes.OUTLINE_COLUMN) for row in nodes.table_rows(table)}

    # lung2 (pyradiomics' sample): its tumour outline as a segmentation, features by the console API
    data = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pyradiomics_lung"
    ct = read_ct(data / "lung2_image.nrrd")
    tumour = sitk.Cast(read_mask(data / "lung2_label.nrrd", reference=ct) > 0, sitk.sitkUInt8)
    vol = mrml.volume_node_from_image(mrml_scene, ct, "lung2_image")
    seg, _ = mrml.mask_to_segment(mrml_scene, tumour, "Tumor", reference_volume_node=vol)
    table, errors = radiomics_table(mrml_scene, vol, seg, segments=["Tumor"], feature_classes=["firstorder"])
    assert not errors and outline(table) == {None}             # current: no column added
    before = mrml.dataframe_from_table_node(table)
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(tumour, [1, 1, 1]))
    edit_segment(mrml_scene, seg, ct, "Tumor", grown)
    (text,) = outline(table)
    assert text.startswith("earlier outline: segment 'Tumor' edited") and "compute them again" in text
    after = mrml.dataframe_from_table_node(table)
    assert np.allclose(after["Tumor"].to_numpy(float), before["Tumor"].to_numpy(float))   # kept, not recomputed
    # the RP inputs read from it: the same features (the column is no segment's)
    from lungai.scene.rp import radiomics_features
    assert radiomics_features(table) == radiomics_features(before)
    seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName("Tumor")).SetName("GTV old")
    assert "segment 'Tumor' renamed 'GTV old'" in next(iter(outline(table)))
    mrml_scene.RemoveNode(seg)
    assert "segment 'Tumor' gone (segmentation" in next(iter(outline(table)))

    # the panel's features table and dose table (phantom, real child processes); a segment deleted / renamed
    module = load_module("LungRadiomics")
    logic = module.LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = phantom_nodes
    p.selectedSegments = ["Tumor"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert outline(p.outputTable) == {None}
    segmentation = p.segmentation.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Left lung")).SetName("L lung")
    assert outline(p.outputTable) == {None}                    # a segment it did not measure
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    assert "segment 'Tumor' deleted" in next(iter(outline(p.outputTable)))


@pytest.mark.shared_data
def test_feature_table_record_follows_its_segmentation_into_a_scene_with_clashing_ids(mrml_scene, shared_data,
                                                                                       tmp_path):
    """QA scenerun61 (lung1, real MRML, an .mrb added to an open scene - Slicer's Add Data, ReadFromMRB without
    clearing): the features table's record of the segments it measured (nodes.MEASURED_OUTLINES_ATTRIBUTE) named its
    segmentation by the ID written in an attribute; MRML gives the added scene's nodes new IDs when they clash and
    renames references only, so the record then named the open scene's segmentation: the table read "as the segments
    are now" after its own tumour was edited (and "edited" when the other one was).  The segmentation is now a node
    reference (nodes.MEASURED_SEGMENTATION_REFERENCE), checked as the confidence tables' is."""
    import sys
    from pathlib import Path

    import slicer

    from lungai import mrml
    from lungai.io import read_ct, read_mask
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dicom_scene import edit_segment

    data = shared_data / "pyradiomics_lung"
    ct = read_ct(data / "lung1_image.nrrd")
    tumour = sitk.Cast(read_mask(data / "lung1_label.nrrd", reference=ct) > 0, sitk.sitkUInt8)
    vol = mrml.volume_node_from_image(mrml_scene, ct, "lung1_image")
    seg, _ = mrml.mask_to_segment(mrml_scene, tumour, "Tumor", reference_volume_node=vol)
    table, errors = radiomics_table(mrml_scene, vol, seg, segments=["Tumor"], feature_classes=["firstorder"])
    assert not errors
    bundle = tmp_path / "lung1.mrb"
    assert mrml_scene.WriteToMRB(str(bundle))
    # the scene open when the .mrb is added: its own segmentation of the same outline takes the IDs first
    open_scene = mrml.new_scene()
    nodes.keep_confidence_tables_current(open_scene)
    other_ct = mrml.volume_node_from_image(open_scene, ct, "open CT")
    other, _ = mrml.mask_to_segment(open_scene, tumour, "Tumor", reference_volume_node=other_ct)
    io, cache = slicer.vtkDataIOManager(), slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(str(tmp_path / "cache"))
    io.SetCacheManager(cache)
    open_scene.SetDataIOManager(io)
    open_scene.SetCacheManager(cache)
    assert open_scene.ReadFromMRB(str(bundle), False)
    added = [node for node in (open_scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
                               for i in range(open_scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")))
             if node is not other]
    assert len(added) == 1 and added[0].GetID() != seg.GetID()               # the clash: a new ID
    added = added[0]
    loaded = open_scene.GetFirstNodeByName(table.GetName())
    assert [r["segmentation"] for r in nodes.recorded_measured_outlines(loaded)] == [added.GetID()]
    assert nodes.measured_outline_changes(open_scene, loaded) == []
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(tumour, [2, 2, 1])) > 0
    edit_segment(open_scene, other, ct, "Tumor", grown)                 # the open scene's tumour: not this table's
    assert nodes.measured_outline_changes(open_scene, loaded) == []
    edit_segment(open_scene, added, ct, "Tumor", grown)                 # the table's own tumour, edited
    assert nodes.measured_outline_changes(open_scene, loaded) == ["segment 'Tumor' edited (or made again) since"]
    assert nodes.stale_table_notes(open_scene, loaded)
    assert {row.get(nodes.OUTLINE_COLUMN) for row in nodes.table_rows(loaded)} == {
        nodes.MEASURED_EARLIER.format("segment 'Tumor' edited (or made again) since")}
    # re-recorded on a table computed from it (the RP risk): the reference goes with the record
    risk = nodes.record_measured_outlines(open_scene.AddNewNodeByClass("vtkMRMLTableNode", "risk"),
                                          nodes.recorded_measured_outlines(loaded))
    assert risk.GetNodeReferenceID(f"{nodes.MEASURED_SEGMENTATION_REFERENCE}0") == added.GetID()
    open_scene.RemoveNode(added)
    assert nodes.measured_outline_changes(open_scene, loaded) == [
        "segment 'Tumor' gone (segmentation 'Tumor segmentation' deleted)"]


def test_rp_risk_table_says_when_its_tables_segments_changed_since(load_module, mrml_scene, rp_model,
                                                                  phantom_nodes):
    """QA staletab60: Multimodal Predict's RP risk table, computed from a features table of segments, still read as
    current after a measured segment was edited or deleted.  It carries the outlines its tables measured and the one
    refresh path marks it (nodes.OUTLINE_COLUMN), its risk kept."""
    from lungai import mrml
    from lungai.scene import nodes

    nodes.keep_confidence_tables_current(mrml_scene)
    seg = phantom_nodes[1]
    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = nodes.record_measured_outlines(mrml.table_node_from_dataframe(mrml_scene, pick("rad_"),
                                                                                     "radiomics"),
                                                      nodes.measured_outlines(seg, ["Tumor"]))
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, pick("dose_"), "dose")
    logic.loadRisk(p, logic.run(logic.startRisk, p, timeout=120))
    risk = nodes.table_rows(p.rpOutputTable)[0]
    assert nodes.OUTLINE_COLUMN not in risk
    segmentation = seg.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    row = nodes.table_rows(p.rpOutputTable)[0]
    assert row[nodes.OUTLINE_COLUMN].startswith("earlier outline: segment 'Tumor' deleted")
    assert row["risk"] == risk["risk"]
    # a risk computed from the table now says it is of an earlier outline
    headline, _ = logic.loadRisk(p, logic.run(logic.startRisk, p, timeout=120))
    assert "warning: the table 'radiomics' is of an earlier outline (segment 'Tumor' deleted)" in headline
    row = nodes.table_rows(p.rpOutputTable)[0]
    assert "is of an earlier outline" in row["warnings"] and row[nodes.OUTLINE_COLUMN].startswith("earlier outline")


def _lung1_first_order_run(load_module, mrml_scene, shared_data):
    """The Lung Radiomics panel's logic run once on pyradiomics' lung1 (real MRML: its CT, its lesion as segment
    'Tumor'), first-order features only; (logic, its parameter node)."""
    from lungai import mrml
    from lungai.io import read_ct, read_mask

    data = shared_data / "pyradiomics_lung"
    ct = read_ct(data / "lung1_image.nrrd")
    tumour = sitk.Cast(read_mask(data / "lung1_label.nrrd", reference=ct) > 0, sitk.sitkUInt8)
    vol = mrml.volume_node_from_image(mrml_scene, ct, "lung1_image")
    seg, _ = mrml.mask_to_segment(mrml_scene, tumour, "Tumor", reference_volume_node=vol)
    mrml.keep_exact_values_current(mrml_scene)              # as the panels install it in Slicer
    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation = vol, seg
    p.selectedSegments = ["Tumor"]
    for c in ("glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape"):
        setattr(p, f"class_{c}", False)
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    return logic, p


@pytest.mark.shared_data
def test_lung_radiomics_rerun_keeps_a_features_table_the_user_edited(load_module, mrml_scene, shared_data):
    """QA scene62 (lung1, real MRML, the Lung Radiomics panel's logic): the user corrected a value in the features
    table ('lung1_image radiomics', Tumor's first-order Energy) and ran the panel again: the run wrote its values over
    the correction and the message named the table as if it were new.  The edited table is now kept as it is and named
    in the message; the results go to a new table, which later runs update (no third table)."""
    logic, p = _lung1_first_order_run(load_module, mrml_scene, shared_data)
    edited = p.outputTable
    assert edited.GetName() == "lung1_image radiomics"
    names = [edited.GetCellText(r, 0) for r in range(edited.GetNumberOfRows())]
    row, column = names.index("original_firstorder_Energy"), edited.GetColumnIndex("Tumor")
    computed = float(edited.GetCellText(row, column))
    edited.SetCellText(row, column, "123.5")                 # the user's correction in the table view
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.outputTable is not edited and p.outputTable.GetName() == "lung1_image radiomics_1"
    assert edited.GetName() == "lung1_image radiomics" and edited.GetCellText(row, column) == "123.5"
    assert float(p.outputTable.GetCellText(row, column)) == pytest.approx(computed)
    assert message.splitlines()[0] == (
        "18 features x 1 segment -> table 'lung1_image radiomics_1' (of segmentation 'Tumor segmentation') (kept as "
        "it is: 'lung1_image radiomics', edited since the run that made it - a run never writes over a table the "
        "user changed)")
    results = p.outputTable
    p.outputTable = edited                                   # the edited table chosen as output again
    logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.outputTable is results and edited.GetCellText(row, column) == "123.5"
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 2


@pytest.mark.shared_data
def test_results_go_to_the_cts_subject_hierarchy_study(load_module, mrml_scene, shared_data, tmp_path):
    """QA panels64: a real CT (pyradiomics lung2) loaded as Slicer's DICOM module loads a series (under its patient's
    study): every panel result - the tumour segmentation, its uncertainty volume and confidence table, the radiomics
    table (a real lungai radiomics run), a Grad-CAM - sat at the top level of the Data module, away from the patient,
    and the segmentation was not under the CT's study, where docs/slicer.md sends the user to *Export to DICOM*.  Now
    each goes to the CT's study (lungai.scene.nodes.place_beside_ct); a table the user moved into a folder of their
    own stays there when a later run updates it."""
    import slicer
    from lungai import mrml

    ct = mrml.volume_node_from_image(mrml_scene, sitk.ReadImage(str(shared_data / "pyradiomics_lung" /
                                                                    "lung2_image.nrrd")), "lung2")
    _under_dicom_patient(mrml_scene, ct, "LUNG2")
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    study = _sh_parent(mrml_scene, ct)
    assert study and sh.GetItemLevel(study) == "Study"
    seg_logic = load_module("LungAISeg").LungAISegLogic()
    p = seg_logic.getParameterNode()
    p.mode, p.seedPoints = "seed", mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
    bounds = [0.0] * 6
    ct.GetRASBounds(bounds)
    p.seedPoints.AddControlPoint(*[(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)])
    p.inputVolume = ct
    _fake_segment_run(seg_logic, p, 0.8, tmp_path)
    outputs = {"segmentation": p.outputSegmentation, "uncertainty": p.uncertaintyVolume,
               "confidence": mrml_scene.GetFirstNodeByName("lung2 tumour confidence")}
    assert all(node is not None for node in outputs.values()), outputs
    assert {what: _sh_parent(mrml_scene, node) for what, node in outputs.items()} == dict.fromkeys(outputs, study)
    radiomics = load_module("LungRadiomics").LungRadiomicsLogic()
    r = radiomics.getParameterNode()
    r.inputVolume, r.segmentation, r.selectedSegments = ct, p.outputSegmentation, ["Tumor"]
    for c in ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):
        setattr(r, f"class_{c}", False)
    radiomics.loadFeatures(r, radiomics.run(radiomics.startFeatures, r, timeout=300))
    table = r.outputTable
    assert _sh_parent(mrml_scene, table) == study
    mine = sh.CreateFolderItem(sh.GetSceneItemID(), "my tables")        # the user files the table away
    sh.SetItemParent(sh.GetItemByDataNode(table), mine)
    radiomics.loadFeatures(r, radiomics.run(radiomics.startFeatures, r, timeout=300))
    assert r.outputTable is table and _sh_parent(mrml_scene, table) == mine
    from lungai.scene.stage import patient_grad_cam

    cam = tmp_path / "cam.nii.gz"
    sitk.WriteImage(sitk.Cast(mrml.image_from_volume_node(ct) * 0, sitk.sitkFloat32), str(cam))
    assert _sh_parent(mrml_scene, patient_grad_cam(mrml_scene, cam, "LUNG2", ct_volume_node=ct)) == study
    other = _small_ct(mrml_scene, "no study", (20, 20, 10), (0.0, 0.0, 0.0))    # a CT at the top level: its
    sh.CreateItem(sh.GetSceneItemID(), other)                                   # results stay there too
    p.inputVolume, p.outputSegmentation, p.uncertaintyVolume = other, None, None
    p.seedPoints.SetNthControlPointPosition(0, -40.0, -40.0, 25.0)
    _fake_segment_run(seg_logic, p, 0.8, tmp_path)
    assert _sh_parent(mrml_scene, p.outputSegmentation) in (0, sh.GetSceneItemID())


def test_stage_table_goes_to_its_cts_study_for_the_cts_one_patient(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA stagetable64: the stage predictions table (p.stageOutputTable) was linked to no CT, so with a CT under a
    DICOM study it stayed at the top level of the Data module while the Grad-CAM went into the study.  Now
    (lungai.scene.stage.link_stage_table) it is linked to the CT and filed in its study when the run was for that CT's
    one patient; a run of the same CT for another patient's id, a table of several patients and a run without a CT
    are linked to no CT and stay at the top level (a reused table leaves the earlier study); a table the user moved
    into a folder of their own stays there."""
    import slicer
    from lungai.scene import nodes

    ct = phantom_nodes[0]
    _under_dicom_patient(mrml_scene, ct, "P1")
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    study, top = _sh_parent(mrml_scene, ct), sh.GetSceneItemID()
    assert study and sh.GetItemLevel(study) == "Study"
    logic, p = _stage_logic(load_module, tmp_path, "P0,60\nP1,70\n", phantom_nodes, "p1 ")
    rows = "P0,True,False,True,fusion,0.9,0.1,I,computed\nP1,True,False,True,fusion,0.3,0.7,II,computed\n"
    _stage_result(logic, p, rows)
    table = p.stageOutputTable
    assert [r["patient_id"] for r in nodes.table_rows(table)] == ["P1"]
    assert _sh_parent(mrml_scene, table) == study and nodes.source_volume_id(table) == ct.GetID()
    p.stagePatient = "P0"                  # P0's id typed for P1's CT: P0's row is not filed under P1's study
    _stage_result(logic, p, rows)
    assert p.stageOutputTable is table and [r["patient_id"] for r in nodes.table_rows(table)] == ["P0"]
    assert _sh_parent(mrml_scene, table) == top and nodes.source_volume_id(table) == ""
    p.stagePatient = "P1"
    _stage_result(logic, p, rows)
    assert _sh_parent(mrml_scene, table) == study and nodes.source_volume_id(table) == ct.GetID()
    mine = sh.CreateFolderItem(top, "my tables")           # the user files the table away
    sh.SetItemParent(sh.GetItemByDataNode(table), mine)
    _stage_result(logic, p, rows)
    assert p.stageOutputTable is table and _sh_parent(mrml_scene, table) == mine
    p.stageVolume = p.stageSegmentation = None             # no CT: EHR only, linked to no CT, still in the user's folder
    _stage_result(logic, p, rows)
    assert p.stageOutputTable is table and _sh_parent(mrml_scene, table) == mine and not nodes.source_volume_id(table)
    from lungai.scene.stage import link_stage_table

    (tmp_path / "all.csv").write_text(STAGE_HEADER + rows, encoding="utf-8")
    cohort = nodes.table_from_csv(mrml_scene, tmp_path / "all.csv", "Stage predictions")
    assert link_stage_table(cohort, ct, "P1") is cohort          # P0 and P1: many patients stay at the top level
    assert _sh_parent(mrml_scene, cohort) in (0, top) and not nodes.source_volume_id(cohort)


def test_multimodal_risk_form_category_the_model_does_not_know_is_said_in_the_panels_terms(load_module, mrml_scene,
                                                                                            rp_model):
    """QA slicerlogic66: on LUNG1-003's tables a clinical value typed "M" for clin_sex_cat (the form's hint: one of
    female, male) or "maybe" for clin_durvalumab (yes/no) was refused at Compute risk with the command line's words:
    "patients table: 1 column with unknown categories ... recode this value", a table the panel user never gave, and
    for the yes/no field "declare it categorical in a role file".  The panel says it before anything runs, in the
    form's terms: the field, the value, what to type; a known value in another case is taken (the model merges case),
    and a number typed with a decimal comma is said with them (one message)."""
    import json

    logic, p, pick = _risk_logic(load_module, rp_model, mrml_scene)
    values = json.loads(p.clinicalValues)
    values["clin_sex_cat"] = "M"
    values["clin_durvalumab"] = "maybe"
    values["clin_hb_g_dl"] = "12,8"
    p.clinicalValues = json.dumps(values)
    with pytest.raises(ValueError) as err:
        logic.startRisk(p)
    text = str(err.value)
    assert "clin_sex_cat = 'M' is not one of: female, male" in text, text
    assert "clin_durvalumab = 'maybe' is not yes/no (or 1/0)" in text, text
    assert "patients table" not in text and "role file" not in text and "recode" not in text, text
    assert "clin_hb_g_dl = '12,8' is not a number" in text, text
    assert "clinical form" in text and "Type one of the values" in text, text
    values["clin_sex_cat"], values["clin_durvalumab"], values["clin_hb_g_dl"] = "Male", "yes", "12.8"   # any case
    p.clinicalValues = json.dumps(values)
    job = logic.startRisk(p)                    # the command is built, not run
    assert job is not None
    job.finish()


def test_lung_radiomics_export_without_csv_ending_never_replaces_another_file(load_module, mrml_scene, tmp_path):
    """QA slicerlogic66: Export CSV to a path typed without ".csv" wrote another file than the one chosen, replacing
    it silently: "features" -> an existing features.csv (the user's, not chosen) overwritten; "LUNG1-003.v2" ->
    LUNG1-003.csv (the name's ".v2" replaced).  Now ".csv" is added to the name as typed, and a file of that name
    that exists is never replaced: the error says which file and what to do; a chosen .csv path is written."""
    import pandas as pd

    from lungai import mrml
    from lungai.errors import InputError

    logic = load_module("LungRadiomics").LungRadiomicsLogic()
    table = mrml.table_node_from_dataframe(mrml_scene, pd.DataFrame({"feature": ["a"], "GTV-1": [1.5]}), "t")
    users = tmp_path / "features.csv"
    users.write_text("the user's own table\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        logic.exportTable(table, tmp_path / "features")
    assert users.read_text(encoding="utf-8") == "the user's own table\n"          # not replaced
    assert str(users) in str(err.value) and "How to fix" in str(err.value), str(err.value)
    path = logic.exportTable(table, tmp_path / "LUNG1-003.v2")
    assert path == tmp_path / "LUNG1-003.v2.csv" and not (tmp_path / "LUNG1-003.csv").exists()
    assert path.read_text(encoding="utf-8").startswith("feature,")
    assert logic.exportTable(table, users) == users                              # chosen: written
    assert users.read_text(encoding="utf-8").startswith("feature,")
    assert logic.exportTable(table, tmp_path / "UPPER.CSV") == tmp_path / "UPPER.CSV"


def test_multimodal_risk_refused_after_its_patient_file_is_written_leaves_no_copy(load_module, mrml_scene, rp_model,
                                                                                  tmp_path):
    """QA slicerlogic66: Compute risk refused by a check made after the patient's one-row CSV was written in the
    temporary folder (lungai.rp.prepare.table_warnings reading the row: a dose table cell edited to text) raised and
    left that folder - a copy of the patient's values - in Slicer's temporary folder.  Deleted however it ends."""
    from lungai import mrml

    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    dose = pick("dose_").astype(object)
    dose.iloc[0, 0] = "see plan"                    # a cell edited by hand in the Tables module
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, dose, "dose")
    with pytest.raises(Exception):
        logic.startRisk(p)
    assert not list(tmp_path.glob("lungai-rp-*")), list(tmp_path.rglob("*"))


@pytest.mark.parametrize("layout", ["row", "feature-value"])
def test_multimodal_risk_names_the_dose_table_cell_that_is_text(load_module, mrml_scene, rp_model, tmp_path, layout):
    """QA slicerfollow66: text in a dose table cell ("see plan", edited in the Tables module) was refused at Compute
    risk in the command line's words - "column ... (numeric) has a value ... (CSV lines [2])" with a role file's fix -
    for a CSV the panel user never gave.  Said now in the panel's terms: the dose table, its row and column, the
    value, and to type a number; refused before the patient's values are written."""
    import pandas as pd

    from lungai import mrml

    logic, p, pick = _risk_logic(load_module, rp_model)
    p.radiomicsTable = mrml.table_node_from_dataframe(mrml_scene, pick("rad_"), "radiomics")
    dose = pick("dose_").astype(object)
    name = dose.columns[1]
    dose.iloc[0, 1] = "see plan"                    # a cell edited by hand in the Tables module
    dose.iloc[0, 0] = "12,5"                        # a decimal comma
    if layout == "feature-value":
        dose = pd.DataFrame({"feature": list(dose.columns), "value": list(dose.iloc[0])})
    p.doseTable = mrml.table_node_from_dataframe(mrml_scene, dose, "plan dose")
    with pytest.raises(ValueError) as refused:
        logic.startRisk(p)
    text = str(refused.value)
    assert "'plan dose'" in text and "'see plan'" in text and "type a number" in text.lower(), text
    where = (f"row 1, column '{name}'" if layout == "row" else f"row 2 ({name}), column 'value'")
    assert where in text, text
    assert "decimal" in text or "12.5" in text, text
    assert "CSV" not in text and "role file" not in text, text
    assert not list(tmp_path.glob("lungai-rp-*")), list(tmp_path.rglob("*"))


def test_segment_lungs_into_a_segmentation_with_the_users_lungs_is_refused_before_the_run(load_module, mrml_scene,
                                                                                           phantom_nodes):
    """QA slicerfollow66: Segment lungs with LUNG1-003's RTSTRUCT segmentation (Lung-Right, Lung-Left: SlicerRT's
    names) as output added "Right lung" / "Left lung" beside them with no word; Lung Radiomics then refused ("2
    segments are the right lung").  Refused before the run, naming the user's lungs and what to do; nothing added."""
    from lungai import mrml
    from lungai.errors import InputError

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    ct = phantom_nodes[0]
    image = mrml.image_from_volume_node(ct)
    rtstruct = None
    for k, name in enumerate(LUNG1_003_ROIS):          # the real ROI names, in the RTSTRUCT's order
        mask = np.zeros(sitk.GetArrayFromImage(image).shape, np.uint8)
        mask[2 + k:4 + k, 2:5, 2:5] = 1
        box = sitk.GetImageFromArray(mask)
        box.CopyInformation(image)
        rtstruct = mrml.mask_to_segment(mrml_scene, box, name, seg_node=rtstruct, reference_volume_node=ct)[0]
    p.inputVolume, p.outputSegmentation = ct, rtstruct
    with pytest.raises(InputError) as refused:
        logic.startLungs(p)
    text = str(refused.value)
    assert "'Lung-Right'" in text and "'Lung-Left'" in text and rtstruct.GetName() in text, text
    assert "choose another output segmentation" in text, text
    assert mrml.segment_names(rtstruct) == LUNG1_003_ROIS


@pytest.mark.shared_data
def test_lung_radiomics_rerun_names_the_features_table_the_user_renamed(load_module, mrml_scene, shared_data):
    """QA slicerfollow66 (lung1, real MRML): after the user renamed the features table ('lung1_image radiomics' ->
    'lung1 before surgery'), a rerun kept it and wrote a new table, but the message said only the new table: the user
    could think the renamed one was updated.  The message names the kept table and why."""
    logic, p = _lung1_first_order_run(load_module, mrml_scene, shared_data)
    renamed = p.outputTable
    renamed.SetName("lung1 before surgery")                   # the user's name: their table now
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert p.outputTable is not renamed and renamed.GetName() == "lung1 before surgery"
    first = message.splitlines()[0]
    assert f"-> table '{p.outputTable.GetName()}'" in first, first
    assert ("'lung1 before surgery' (renamed since the run that made it) is kept as it is - a run never writes over a "
            "table the user changed") in first, first


@pytest.mark.parametrize("renamed", ["Tumör primär 1", "GTV-1 primary"])
def test_a_renamed_gtv_with_the_tumour_terminology_still_leaves_the_lungs(load_module, mrml_scene, phantom_nodes,
                                                                          tmp_path, renamed):
    """QA slicer67: the tumour segment renamed in the Segment Editor ("Tumör primär 1", "GTV-1 primary"; LUNG1-003's
    GTV-1) keeps its terminology (Neoplasm, Primary / Neoplasm: lungai's tag, or the Segment Editor's), but was no
    tumour any more: "Lungs minus tumour" kept it inside the lungs (the note named only gtv-2 + gtv-3) and the stage's
    primary tumour became gtv-2.  A segment whose name has no role is a tumour by its tumour terminology, as the
    command line reads a DICOM SEG segment's codes; a segment without it (the Segment Editor's Tissue) is not."""
    from lungai import mrml
    from lungai.scene import nodes
    import dataclasses

    from lungai.terminology import GENERAL_ANATOMY, TERMINOLOGY, slicer_terminology_entry

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    tumour_id = segmentation.GetSegmentIdBySegmentName("Tumor")
    assert mrml.segment_tag(seg, "Tumor", "TerminologyEntry") == TERMINOLOGY["gtv"].slicer_entry()   # lungai's tag
    tumour = _mask(mrml_scene, seg, "Tumor", vol)
    # the lungs drawn with the tumour in them (a planning export's "Lungs")
    lungs = _mask(mrml_scene, seg, "Right lung", vol) | _mask(mrml_scene, seg, "Left lung", vol) | tumour
    for name in ("Right lung", "Left lung"):
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    image = sitk.GetImageFromArray(lungs.astype(np.uint8))
    image.CopyInformation(mrml.image_from_volume_node(vol))
    mrml.mask_to_segment(mrml_scene, image, "Lungs", seg_node=seg, reference_volume_node=vol)
    segmentation.GetSegment(tumour_id).SetName(renamed)             # renamed: the terminology tag stays
    # a second, nodal-looking segment without a tumour terminology is no tumour (the Segment Editor's default Tissue)
    _, other_id = mrml.mask_to_segment(mrml_scene, _dot(vol), "Lymfkörtel", seg_node=seg, reference_volume_node=vol)
    segmentation.GetSegment(other_id).SetTag("TerminologyEntry",
                                             dataclasses.replace(TERMINOLOGY[None], context=GENERAL_ANATOMY).slicer_entry())
    assert nodes.tumour_segment_ids(seg) == [(tumour_id, renamed)]
    assert nodes.tumour_segment_name(seg) == renamed
    assert nodes.tumour_segment_choice(seg).startswith(f"tumour: {renamed}")
    assert nodes.tumour_segment_problem(seg) is None
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Lungs"])
    (tmp_path / "w").mkdir()
    _, columns, _, _, failed = logic.featureCommands(p, tmp_path / "w")
    assert not failed and list(columns.values()) == ["Lungs", "Lungs minus tumour"]
    key = next(k for k, name in columns.items() if name == "Lungs minus tumour")
    exported = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "w" / f"{key}{nodes.EXPORT_SUFFIX}"))) > 0
    np.testing.assert_array_equal(exported, lungs & ~tumour)        # the tumour left the lungs
    assert nodes.lungs_minus_tumour_note(seg, columns.values()).startswith(
        f"'Lungs minus tumour' = Lungs minus {renamed} (every tumour segment")
    # the dose features' GTV is that segment too (never "has no tumour name and lies in the lungs")
    assert logic.doseSegmentNames(mrml.segment_names(seg), nodes.terminology_roles(seg)) == \
        ["Lungs", renamed]
    # a name with a role keeps it: a lung tagged Neoplasm (a copied tag) is still a lung, not a tumour
    right_id = segmentation.GetSegmentIdBySegmentName("Lungs")
    segmentation.GetSegment(right_id).SetTag("TerminologyEntry", slicer_terminology_entry("GTV"))
    assert nodes.tumour_segment_ids(seg) == [(tumour_id, renamed)]


def test_lung_radiomics_hands_its_children_an_uncompressed_ct_and_the_same_masks(load_module, mrml_scene,
                                                                                   phantom_nodes, tmp_path):
    """QA slicer67 (LUNG1-003 from its DICOM CT + RTSTRUCT, 8 segments ticked): Lung Radiomics' start spent 7.2 s on
    the GUI thread - 1.8 s gzipping the CT, 1.1 s in SimpleITK's ``> 0`` / Or / And / Not for the derived lungs - and
    each of its child processes (one per segment) 1.2 s reading the gzipped CT back.  The CT goes to the work folder
    uncompressed (the same voxels and geometry) and the derived masks are made in numpy: the same masks as
    SimpleITK's filters give."""
    from io_helpers import nrrd_encoding

    from lungai import mrml

    vol, seg = phantom_nodes
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumor", "Right lung", "Left lung"])
    (tmp_path / "w").mkdir()
    cmds, columns, _, _, failed = logic.featureCommands(p, tmp_path / "w")
    assert not failed and list(columns.values()) == ["Tumor", "Right lung", "Left lung", "Lungs",
                                                     "Lungs minus tumour"]
    ct = cmds[0][cmds[0].index("--image") + 1]
    assert {c[c.index("--image") + 1] for c in cmds} == {ct}          # one CT file for every child
    assert nrrd_encoding(ct) == "raw"
    back, node = sitk.ReadImage(ct), mrml.image_from_volume_node(vol)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(node))
    assert back.GetSpacing() == node.GetSpacing() and back.GetOrigin() == node.GetOrigin()
    masks = {name: sitk.ReadImage(str(tmp_path / "w" / f"{key}.nrrd")) for key, name in columns.items()}
    assert all(nrrd_encoding(tmp_path / "w" / f"{key}.nrrd") == "gzip" for key in columns)   # small: kept packed
    right, left, tumour = (mrml.segment_to_mask(mrml_scene, seg, n, vol) for n in ("Right lung", "Left lung", "Tumor"))
    lungs = sitk.Cast(sitk.Or(right > 0, left > 0), sitk.sitkUInt8)          # what SimpleITK's filters gave
    minus = sitk.Cast(sitk.And(lungs, sitk.Not(tumour > 0)), sitk.sitkUInt8)
    for name, expected in (("Lungs", lungs), ("Lungs minus tumour", minus)):
        got = masks[name]
        assert got.GetPixelID() == sitk.sitkUInt8 and got.GetSpacing() == expected.GetSpacing()
        assert got.GetOrigin() == expected.GetOrigin() and got.GetDirection() == expected.GetDirection()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(expected), err_msg=name)


def test_lungai_seg_lungs_loaded_without_re_deriving_the_warnings_the_run_printed(load_module, mrml_scene,
                                                                                small_phantom, monkeypatch, tmp_path):
    """QA slicer67 (LUNG1-003): after Segment lungs' bar reached 100 %, loadLungs spent 9 s on the GUI thread, 4.8 s of
    it re-deriving from the label file the scan-cut warning `lungai lungs` had just printed (scan_cut_notes, and
    small_lung_notes).  A completed run's printed warnings are used: the same message, the same warning (a CT of
    5 slices: lungs cut at the top and bottom); a run whose output shows no completed run still re-derives them."""
    import lungai.lungs.segment as lungs_segment
    from lungai import mrml
    from lungai.lungs.airways import NO_TRACHEA_NOTE
    from lungai.lungs.segment import SLICE_CUT_NOTE
    from lungai.scene import nodes, results

    node = mrml.volume_node_from_image(mrml_scene, small_phantom.ct[:, :, 18:23], "5 slices")
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume = node
    job = logic.run(logic.startLungs, p, timeout=120)
    labels = pathlib.Path(job.outputs).read_bytes()
    derived = []
    real = lungs_segment.scan_cut_notes
    monkeypatch.setattr(lungs_segment, "scan_cut_notes", lambda *a: derived.append(1) or real(*a))
    message = logic.loadLungs(p, job)
    assert not derived                                       # not re-derived: printed by the run
    assert results.lungs_run_completed(job.process.lines)    # its summary line
    # after "no trachea found ...; airways not removed ...", a warning too (QA lungsfollow69)
    assert message.splitlines()[1:3] == ["warning: " + NO_TRACHEA_NOTE,
                                         "warning: " + SLICE_CUT_NOTE.format("top and bottom slices")], message
    # without the run's output (or of one cut short) the label file's warnings are derived, as before
    again = tmp_path / "lungs.nii.gz"
    again.write_bytes(labels)
    _, _, cut = nodes.import_lung_outputs(mrml_scene, again, node, printed=["note: something else"])
    assert derived and cut[:1] == [SLICE_CUT_NOTE.format("top and bottom slices")]


def test_rp_names_a_renamed_gtvs_features_as_the_tumours(load_module, mrml_scene, phantom_nodes):
    """QA slicerfollow67: the GTV renamed in the Segment Editor ("Tumör primär 1", keeping lungai's tumour
    terminology) was the tumour for Lung Radiomics' "Lungs minus tumour" (lungai.scene.nodes.terminology_roles), but the RP risk
    named its features ``rad_tum_r_prim_r_1_*``: none of the model's ``rad_tumour_*``, so every tumour feature was
    imputed.  The features table records the roles of its columns by their terminology; the RP row names the
    renamed GTV's features as the tumour's (panel and in-process table alike); a segment without that terminology
    keeps its own name."""
    from lungai import mrml
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table
    from lungai.scene.rp import assemble_patient_row, radiomics_features

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetName("Tumör primär 1")
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Tumör primär 1", "Right lung", "Left lung"])
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 5 segments -> table" in message, message
    node, _ = radiomics_table(mrml_scene, vol, seg, segments=["Tumör primär 1"], feature_classes=["firstorder"])
    for table in (p.outputTable, node):
        features = radiomics_features(table)
        assert "rad_tumour_original_firstorder_Mean" in features, sorted(features)[:5]
        assert not [k for k in features if "prim" in k], sorted(features)[:5]
        assert assemble_patient_row(table, {}, {}).filter(like="rad_tumour_").shape[1] > 10
    # the panel's table: the value is the renamed GTV's column
    df = mrml.dataframe_from_table_node(p.outputTable).set_index("feature")
    assert features_value(radiomics_features(p.outputTable), df, "Tumör primär 1")
    assert nodes.table_segment_roles(p.outputTable) == {"Tumör primär 1": "gtv"}
    # the tag removed (no tumour terminology, an older table's attribute gone): its own name again
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumör primär 1")).RemoveTag("TerminologyEntry")
    node, _ = radiomics_table(mrml_scene, vol, seg, segments=["Tumör primär 1"], feature_classes=["firstorder"],
                              table_node=node)
    assert not [k for k in radiomics_features(node) if k.startswith("rad_tumour_")]


def features_value(features, df, column) -> bool:
    name = "original_firstorder_Mean"
    return np.isclose(features[f"rad_tumour_{name}"], float(df.loc[name, column]))


def test_a_segment_coded_as_a_lung_is_a_lung_in_the_panels(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA slicerfollow67: a segment whose name gives no role but whose terminology is the right / left lung
    ("Segment_1", "Höger lunga": SCT 39607008 Lung with laterality Right / Left, as the Segment Editor or an imported
    DICOM SEG sets it) was no lung in the Slicer panels - Lung Radiomics made no "Lungs" / "Lungs minus tumour", the
    dose had no lungs - while ``lungai radiomics`` takes these codes from a DICOM SEG (one code table,
    lungai.terminology.CODE_ROLES).  A second segment of one lung role by its code is not guessed between."""
    from lungai.scene import nodes
    from lungai.segment_roles import dose_lung_segments
    from lungai.terminology import TERMINOLOGY

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    for old, new in (("Right lung", "Segment_1"), ("Left lung", "Vänster lunga")):
        segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(old)).SetName(new)
    assert nodes.terminology_roles(seg) == {"Segment_1": "lung_right", "Vänster lunga": "lung_left"}
    names = ["Tumor", "Segment_1", "Vänster lunga"]
    assert dose_lung_segments(names, nodes.terminology_roles(seg)) == ["Segment_1", "Vänster lunga"]
    logic, p = _firstorder_radiomics(load_module, (vol, seg), names)
    (tmp_path / "w").mkdir()
    _, columns, _, _, failed = logic.featureCommands(p, tmp_path / "w")
    assert not failed and list(columns.values()) == [*names, "Lungs", "Lungs minus tumour"]
    assert nodes.lungs_minus_tumour_note(seg, columns.values()).startswith(
        "'Lungs minus tumour' = Segment_1+Vänster lunga minus Tumor")
    # the RP features of the derived columns are the lungs' (their names); the coded lungs' own columns (on the lung
    # grid as a lung named so: test_a_segment_coded_as_a_lung_is_measured_on_the_lung_grid_by_the_panel) are the
    # model's right / left lung (test_rp_names_a_coded_lungs_features_as_the_lungs)
    from lungai.scene.radiomics import radiomics_table
    from lungai.scene.rp import radiomics_features

    node, _ = radiomics_table(mrml_scene, vol, seg, segments=names, feature_classes=["firstorder"])
    keys = {k.split("_original_")[0] for k in radiomics_features(node)}
    assert keys == {"rad_tumour", "rad_right_lung", "rad_left_lung", "rad_lungs", "rad_lungs_minus_tumour"}, keys
    assert nodes.table_segment_roles(node) == {"Segment_1": "lung_right", "Vänster lunga": "lung_left"}
    # a second right lung by its code: neither is taken as the right lung
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetTag(
        "TerminologyEntry", TERMINOLOGY["lung_right"].slicer_entry())
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetName("Copy")
    assert nodes.terminology_roles(seg) == {"Vänster lunga": "lung_left"}


def test_rp_names_a_coded_lungs_features_as_the_lungs(load_module, mrml_scene, phantom_nodes):
    """QA slicerfollow68 (LUNG1-003, its right lung renamed "Segment_1", the right-lung terminology kept): Lung
    Radiomics measured it as the right lung (on the lung grid), but the features table recorded only tumour roles, so
    the RP risk named its features ``rad_segment_1_*`` - none of the model's ``rad_right_lung_*``, every right-lung
    feature imputed.  The table records the lung roles of its columns too: the RP row names the coded lung's features
    as the right lung's (panel and in-process table alike), with the coded column's values."""
    from lungai import mrml
    from lungai.scene import nodes
    from lungai.scene.radiomics import radiomics_table
    from lungai.scene.rp import assemble_patient_row, radiomics_features

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Right lung")).SetName("Segment_1")
    names = ["Tumor", "Segment_1", "Left lung"]
    logic, p = _firstorder_radiomics(load_module, (vol, seg), names)
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    assert "features x 5 segments -> table" in message, message
    node, _ = radiomics_table(mrml_scene, vol, seg, segments=["Segment_1"], feature_classes=["firstorder"])
    name = "original_firstorder_Mean"
    for table in (p.outputTable, node):
        features = radiomics_features(table)
        assert f"rad_right_lung_{name}" in features, sorted(features)[:5]
        assert not [k for k in features if k.startswith("rad_segment_1")], sorted(features)[:5]
        assert assemble_patient_row(table, {}, {}).filter(like="rad_right_lung_").shape[1] > 10
        df = mrml.dataframe_from_table_node(table).set_index("feature")
        assert np.isclose(features[f"rad_right_lung_{name}"], float(df.loc[name, "Segment_1"]))
        assert nodes.table_segment_roles(table) == {"Segment_1": "lung_right"}
    # a second right lung by its name: the code gives no role, the column keeps its own name
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor")).SetName("Lung_R")
    node, _ = radiomics_table(mrml_scene, vol, seg, segments=["Segment_1"], feature_classes=["firstorder"],
                              table_node=node)
    assert nodes.table_segment_roles(node) == {}
    assert f"rad_segment_1_{name}" in radiomics_features(node)


def test_segment_lungs_refuses_a_segmentation_with_a_lung_coded_by_its_terminology(load_module, mrml_scene,
                                                                                   phantom_nodes, small_phantom):
    """QA slicerfollow68 (LUNG1-003, its right lung renamed "Segment_1", the right-lung terminology kept): Segment lungs
    into that segmentation checked its lungs by name only - it added "Right lung" without a word, and "Segment_1",
    the right lung for Lung Radiomics and the dose until then, silently stopped being one (two right lungs: neither
    is guessed).  A lung by its terminology is refused as a lung named so, the panel's Apply too, before anything
    runs; its segments stay as they were."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Right lung")).SetName("Segment_1")
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Left lung"))
    assert nodes.terminology_roles(seg) == {"Segment_1": "lung_right"}
    before = mrml.segment_names(seg)
    says = "already has 'Segment_1' (the right lung by its terminology), a lung of its own"
    with pytest.raises(InputError, match=re.escape(says)):
        nodes.add_lung_outputs(mrml_scene, vol, small_phantom.labels, seg_node=seg)
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.outputSegmentation = vol, seg
    with pytest.raises(InputError, match=re.escape(says)):
        logic.startLungs(p)
    assert mrml.segment_names(seg) == before and nodes.terminology_roles(seg) == {"Segment_1": "lung_right"}
    # without its lung terminology it is no lung: lungai's lungs are added beside it, as before
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Segment_1")).RemoveTag("TerminologyEntry")
    nodes.add_lung_outputs(mrml_scene, vol, small_phantom.labels, seg_node=seg)
    assert mrml.segment_names(seg) == [*before, "Right lung", "Left lung"]


def _own_lungs_and_a_coded_right_lung(scene, phantom_nodes, labels):
    """Segment lungs' "Right lung" / "Left lung" (a new node "<CT> lungs") and the user's "Segment_1" beside them: the
    right lung drawn again, coded as the right lung in the Segment Editor (its terminology, no lung name)."""
    from lungai import mrml
    from lungai.scene import nodes
    from lungai.terminology import TERMINOLOGY

    vol, truth = phantom_nodes
    seg, _ = nodes.add_lung_outputs(scene, vol, labels)
    mask = mrml.segment_to_mask(scene, truth, "Right lung", vol)
    _, segment_id = mrml.mask_to_segment(scene, mask, "Segment_1", seg_node=seg, reference_volume_node=vol)
    seg.GetSegmentation().GetSegment(segment_id).SetTag("TerminologyEntry", TERMINOLOGY["lung_right"].slicer_entry())
    return vol, seg


def test_segment_lungs_names_a_coded_lung_beside_its_own_lungs(load_module, mrml_scene, phantom_nodes,
                                                               small_phantom):
    """QA slicer69 (LUNG1-003 from its DICOM CT + RTSTRUCT: Segment lungs into a new "CT lungs", then the user's
    "Segment_1" - its RTSTRUCT's Lung-Right - coded as the right lung there): "Right lung" by its name is the right
    lung, "Segment_1" none (which of two is not guessed: the name wins), and a second Segment lungs run replaced
    "Right lung" and "Left lung" with the note "'Right lung' and 'Left lung' of CT lungs ... replaced by this run's" -
    no word of "Segment_1", the user's right lung, left no lung.  It is refused as a coded lung alone is, before
    anything runs, naming both segments, which one is the right lung, and how to take the user's or keep both."""
    from lungai import mrml
    from lungai.errors import InputError
    from lungai.scene import nodes

    vol, seg = _own_lungs_and_a_coded_right_lung(mrml_scene, phantom_nodes, small_phantom.labels)
    assert nodes.terminology_roles(seg) == {}             # "Right lung" is the right lung, by its name
    before = {name: _mask(mrml_scene, seg, name, vol) for name in mrml.segment_names(seg)}
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.outputSegmentation = vol, seg
    for start in (lambda: logic.startLungs(p),
                  lambda: nodes.add_lung_outputs(mrml_scene, vol, small_phantom.labels, seg_node=seg)):
        with pytest.raises(InputError) as caught:
            start()
        problem, fix = caught.value.problem, caught.value.fix
        assert "'Segment_1' (the right lung by its terminology)" in problem and "'Right lung'" in problem, problem
        assert "take 'Right lung' (by its name) as the right lung" in problem, problem
        assert "to take 'Segment_1' as the right lung, delete 'Right lung'" in fix, fix
        assert "to keep both" in fix and "another output segmentation" in fix, fix
    assert list(before) == mrml.segment_names(seg) == ["Right lung", "Left lung", "Segment_1"]
    for name, mask in before.items():
        np.testing.assert_array_equal(_mask(mrml_scene, seg, name, vol), mask, err_msg=name)
    # its terminology cleared, "Segment_1" is no lung: Segment lungs replaces its own lungs, as before
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Segment_1")).RemoveTag("TerminologyEntry")
    notes = []
    nodes.add_lung_outputs(mrml_scene, vol, small_phantom.labels, seg_node=seg, notes=notes)
    assert mrml.segment_names(seg) == ["Right lung", "Left lung", "Segment_1"] and "replaced" in notes[0], notes


def test_lung_radiomics_says_a_coded_lung_is_not_taken_beside_a_lung_named_so(load_module, mrml_scene, phantom_nodes,
                                                                             small_phantom):
    """QA slicer69 (LUNG1-003, Segment lungs' "Right lung" and the user's "Segment_1" coded as the right lung in one
    segmentation): Lung Radiomics took "Right lung" as the right lung ("Lungs" = Right lung + Left lung) and measured
    "Segment_1" as a segment of its own, on the CT's grid, without a word.  The result says so, and how to take
    "Segment_1" as the right lung; without the second right lung nothing is said."""
    from lungai import mrml

    vol, seg = _own_lungs_and_a_coded_right_lung(mrml_scene, phantom_nodes, small_phantom.labels)
    names = ["Right lung", "Left lung", "Segment_1"]
    logic, p = _firstorder_radiomics(load_module, (vol, seg), names)
    message = logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    says = ("note: 'Segment_1' is the right lung by its terminology, but Lung Radiomics and the dose features take "
            "'Right lung' (by its name) as the right lung")
    assert says in message, message
    assert "to take 'Segment_1' as the right lung, delete 'Right lung'" in message, message
    columns = list(mrml.dataframe_from_table_node(p.outputTable).columns)
    assert columns[columns.index("Right lung"):][:4] == [*names, "Lungs"], columns       # the columns as before
    # "Segment_1" not ticked, nor a lung of its role: not said; nor once it is the only right lung
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Left lung"])
    assert "Segment_1" not in logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))
    segmentation = seg.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("Right lung"))
    logic, p = _firstorder_radiomics(load_module, (vol, seg), ["Left lung", "Segment_1"])
    assert "by its terminology" not in logic.loadFeatures(p, logic.run(logic.startFeatures, p, timeout=300))


def test_a_segment_coded_as_a_lung_is_measured_on_the_lung_grid_by_the_panel(load_module, mrml_scene, phantom_nodes,
                                                                             tmp_path):
    """QA slicer68 (LUNG1-003, the right lung renamed "Segment_1", its right-lung terminology kept): Lung Radiomics ran
    ``lungai radiomics --label segment_1=1`` for it, and the command line, which reads the lung role from the label
    name, measured it on the CT's grid - the derived "Lungs" made from it on the 2 mm lung grid.  Its run now gives
    the command line its lung role (the label of a right lung); its column is still "Segment_1"."""
    import pandas as pd

    from lungai.cli import main

    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Right lung")).SetName("Segment_1")
    names = ["Tumor", "Segment_1", "Left lung"]
    logic, p = _firstorder_radiomics(load_module, (vol, seg), names)
    (tmp_path / "w").mkdir()
    cmds, columns, csvs, _, failed = logic.featureCommands(p, tmp_path / "w")
    assert not failed and list(columns.values()) == [*names, "Lungs", "Lungs minus tumour"]
    key = next(k for k, n in columns.items() if n == "Segment_1")
    cmd = next(c for c in cmds if str(csvs[key]) in c)
    assert main(cmd) == 0
    settings = pd.read_csv(csvs[key].with_name(csvs[key].stem + "_settings.csv")).iloc[0]
    assert (settings.grid, settings.spacing_mm) == ("resampled", "2 x 2 x 2"), settings
    tumour = next(c for c in cmds if str(csvs[next(k for k, n in columns.items() if n == "Tumor")]) in c)
    assert main(tumour) == 0        # the tumour stays on the CT's grid
    csv = next(v for k, v in csvs.items() if columns[k] == "Tumor")
    assert pd.read_csv(csv.with_name(csv.stem + "_settings.csv")).grid[0] == "native"


@pytest.mark.parametrize("entry, role", [
    # Slicer 4.x scenes: the DICOM master list with SNOMED's older designator, the same code values
    ("Segmentation category and type - DICOM master list~SRT^49755003^Morphologically Altered Structure"
     "~SRT^86049000^Neoplasm, Primary~^^~Anatomic codes - DICOM master list~^^~^^", "gtv_primary"),
    ("Segmentation category and type - DICOM master list~SRT^49755003^Morphologically Altered Structure"
     "~SRT^108369006^Neoplasm~^^~Anatomic codes - DICOM master list~^^~^^", "gtv"),
    # SNOMED RT values (SRT^M-80003: pydicom's table), as lungai.dicom.seg reads a DICOM SEG's
    ("ctx~SRT^M-01000^Morphologically Altered Structure~SRT^M-80003^Neoplasm, Primary~^^~x~^^~^^", "gtv_primary"),
    ("ctx~SRT^T-D000A^Anatomical Structure~SRT^T-28000^Lung~SRT^G-A100^Right~x~^^~^^", "lung_right"),
    ("ctx~SCT^123037004^Anatomical Structure~SCT^39607008^Lung~SRT^7771000^Left~x~^^~^^", "lung_left"),
    ("ctx~SCT^123037004^Anatomical Structure~SCT^39607008^Lung~SCT^51440002^Right and left~x~^^~^^", "lungs"),
    ("ctx~SCT^85756007^Tissue~SRT^59441001^Lymph node~^^~x~^^~^^", None),
    ("ctx~X^1^y~99SLICER^108369006^Neoplasm~^^~x~^^~^^", None),
])
def test_an_older_scenes_srt_terminology_gives_the_role(load_module, mrml_scene, phantom_nodes, entry, role):
    """QA slicerfollow67: a scene saved by an older Slicer stores SNOMED codes under "SRT" (SNOMED's older coding
    scheme designator) - a renamed GTV tagged "SRT^86049000^Neoplasm, Primary" was no tumour.  SRT is read as SCT (the
    same code value, or an SNOMED RT value through pydicom's table, as a DICOM SEG's codes are read)."""
    from lungai.scene import nodes
    from lungai.terminology import terminology_tumour_role

    assert terminology_tumour_role(entry) == (role if role in ("gtv", "gtv_primary") else None)
    vol, seg = phantom_nodes
    segmentation = seg.GetSegmentation()
    tumour_id = segmentation.GetSegmentIdBySegmentName("Tumor")
    segmentation.GetSegment(tumour_id).SetName("Tumör primär 1")
    segmentation.GetSegment(tumour_id).SetTag("TerminologyEntry", entry)
    if role in ("gtv", "gtv_primary"):
        assert nodes.tumour_segment_ids(seg) == [(tumour_id, "Tumör primär 1")]
    else:
        assert nodes.tumour_segment_ids(seg) == []
    from lungai.terminology import terminology_role     # lungs too (the one code table)

    assert terminology_role(entry) == role


def test_lungai_seg_hands_its_children_an_uncompressed_ct(load_module, mrml_scene, phantom_nodes, tmp_path):
    """QA slicerfollow67 (LUNG1-003): Segment tumour and Segment lungs exported the CT as a gzipped ct.nii.gz on the
    GUI thread (1.8-3.5 s) and each child read it back as slowly.  The CT goes to the work folder uncompressed, in
    the file Lung Radiomics uses (NRRD: the same voxels and geometry, the spacing in double precision); an error of the
    child naming that file names the CT volume (the job's fileNames)."""
    from io_helpers import nrrd_encoding

    from lungai import mrml
    from lungai.scene import nodes

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "automatic"
    node = mrml.image_from_volume_node(phantom_nodes[0])
    segment = logic.segmentationCommand(p, tmp_path)[1]
    job = logic.startLungs(p)
    try:
        lungs = job.process.args[1]
        for ct in (segment, lungs):
            assert nrrd_encoding(ct) == "raw", ct       # a NRRD, not gzipped (a .nii.gz is not an NRRD at all)
            back = sitk.ReadImage(ct)
            np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(node))
            assert back.GetSpacing() == node.GetSpacing() and back.GetOrigin() == node.GetOrigin()
            assert np.allclose(back.GetDirection(), node.GetDirection())
        assert job.fileNames == {pathlib.Path(lungs): phantom_nodes[0].GetName()}
        assert phantom_nodes[0].GetName() in job.errorMessage(f"cannot read {lungs}: truncated")
    finally:
        nodes.remove_work_folder(job.workDir)


def _bare_options(text: str) -> list:
    """The command-line options (``--flag``) of ``text`` named without the panel's control: neither the innermost
    bracket round the option nor the rest of its clause (to the next . ; or line end) says "panel"."""
    bare = []
    for m in re.finditer(r"(?<![\w-])--[a-z][\w-]*", text):
        depth, start = 0, None
        for k in range(m.start() - 1, -1, -1):      # the innermost open bracket before it
            depth += (text[k] == ")") - (text[k] == "(")
            if depth < 0:
                start = k
                break
        if start is not None:
            close, depth = m.end(), 0
            while close < len(text) and (text[close] != ")" or depth):
                depth += (text[close] == "(") - (text[close] == ")")
                close += 1
            if "panel" in text[start:close]:
                continue
        if "panel" in re.split(r"[.;\n]", text[m.end():], maxsplit=1)[0]:
            continue
        bare.append(text[max(0, m.start() - 60):m.end() + 20])
    return bare


def test_segmentation_banner_names_the_panel_control_of_every_option(load_module, small_phantom):
    """QA slicerfollow72: the panel's banner named only the command-line option in several review actions - "draw an
    ROI box round the whole tumour (--roi)" for a tumour larger than its box, one running on, a seed in aerated lung or
    bone - while others gave both ("--roi; Segmentation panel: mode ROI").  Every review action lungai segment gives
    (each reason in each mode, a misplaced seed / box, numbers flagged, a mask cut flat at its box, a DynUNet's
    result) and the notes naming options: no option without the panel's control in the banner.  Nor a word on typed
    numbers in Slicer's RAS ("(LPS mm; Slicer shows RAS: negate x and y)" of a seed / box far from the lungs, an ROI
    cut to the image): the panel's seed / ROI come from its nodes."""
    from lungai.scene import results
    from lungai.seg import infer
    from lungai.seg import preprocess as pp

    logic = load_module("LungAISeg").LungAISegLogic()
    reasons = list(dict.fromkeys([*infer.REVIEW_ACTIONS, *(r for m in infer.MODE_ACTIONS.values() for r in m)]))
    cut_flat = [{"pass": 1, "kept": True, "mask_touches": ["x-", "z+"], "box_at_image_edge": []}]
    infos = []
    for mode in ("seed", "roi", "lungs", "whole"):
        for arch in ("unet", "dynunet"):
            base = {"roi_mode": mode, "architecture": arch, "n_components": 1}
            infos += [{**base, "review_reasons": [r]} for r in reasons]
            infos += [{**base, "review_reasons": [infer.LOW_CONFIDENCE], "n_components": 0},
                      {**base, "review_reasons": [infer.RAN_ON], "roi_passes": cut_flat},
                      {**base, "review_reasons": [infer.LOW_CONFIDENCE, infer.INCOMPLETE_REASON, pp.DENSE_REASON]},
                      {**base, "review_reasons": [infer.LOW_CONFIDENCE, pp.VOXEL_INDEX_REASON, pp.ROI_ORDER_REASON]}]
    notes = [infer.ANOTHER_CANDIDATE_HINT, infer.MC_PASSES_NOTE.format(cal=10, n=4)]
    # a seed / box far from the lungs and an ROI cut to the image (their notes name the CLI's LPS / RAS rule)
    ct = small_phantom.ct
    notes += [pp.far_seed_note(ct, (0.0, 150.0, 100.0)), pp.far_seed_note(ct, None, (-10, 140, 90, 10, 160, 110)),
              pp.roi_outside_note(ct, (-10, -10, 50, 10, 10, 400))]
    assert all(n and "negate x and y" in n for n in notes[2:]), notes
    shown_bare_before, checked = 0, 0
    for info in infos:
        info["review_reasons"] = [pp.reason_in_mode(r, info["roi_mode"]) for r in info["review_reasons"]]  # as worded
        summary = {"confidence": 0.3, "needs_review": True, "review_threshold": 0.6, "tumor_volume_ml": 4.7,
                   "method": "ensemble", "members": 3, **info, "review_actions": infer.review_actions(info),
                   "notes": notes}
        shown_bare_before += bool(_bare_options("\n".join(results.describe_segment_result(summary)[:2])))
        headline, details, review = logic.resultText(summary)
        assert review
        assert not _bare_options(f"{headline}\n{details}"), (info, _bare_options(f"{headline}\n{details}"))
        # the panel's seed / ROI come from its nodes: no word on typed numbers in the wrong convention
        assert "negate x and y" not in details and "RAS" not in details, details
        checked += 1
    assert shown_bare_before and checked == len(infos)     # the command line's words name bare options
    # the panel's words for the options named bare before
    details = logic.resultText({"confidence": 0.3, "needs_review": True, "review_threshold": 0.6,
                                "tumor_volume_ml": 4.7, "roi_mode": "seed", "review_reasons": [infer.INCOMPLETE_REASON],
                                "review_actions": infer.review_actions({"roi_mode": "seed", "review_reasons": [
                                    infer.INCOMPLETE_REASON]}), "notes": [infer.ANOTHER_CANDIDATE_HINT]})[1]
    assert "round the whole tumour (--roi; panel: mode ROI) and run again" in details, details
    assert "run again with --seed-point (panel: mode seed) at its centre" in details, details


def test_segmentation_panel_passes_its_seed_and_roi_as_scene_coordinates(load_module, mrml_scene, phantom_nodes,
                                                                        tmp_path):
    """QA slicerfollow72: the panel's seed at LUNG1-002's GTV centroid (default model: 4.7 ml, confidence 0.22) was
    asked "negate x and y only if the seed was copied from Slicer's RAS display (lungai takes LPS)" - the panel
    converts its point list / ROI to LPS itself.  Its command says so (--scene-coordinates, which lungai segment takes
    and hands to segment_tumour: no RAS question, Testing/test_seg_grow.py); automatic mode has no numbers to say
    it of."""
    from lungai.cli import build_parser

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.mode = phantom_nodes[0], "seed"
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(-40.0, 0.0, 100.0)
    seed = logic.segmentationCommand(p, tmp_path)
    p.mode = "roi"
    p.roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    p.roi.SetXYZ(-40.0, 0.0, 100.0)
    p.roi.SetRadiusXYZ(15.0, 15.0, 15.0)
    roi = logic.segmentationCommand(p, tmp_path)
    p.mode = "automatic"
    automatic = logic.segmentationCommand(p, tmp_path)
    assert "--scene-coordinates" in seed and "--scene-coordinates" in roi, (seed, roi)
    assert "--scene-coordinates" not in automatic, automatic
    for args in (seed, roi, automatic):
        assert build_parser().parse_args(args).scene_coordinates == ("--scene-coordinates" in args)
    assert build_parser().parse_args(["segment", "ct.nii.gz", "-o", "out"]).scene_coordinates is False


@pytest.mark.shared_data
def test_segmentation_panel_seed_on_lung1_002_gets_no_ras_question(load_module, mrml_scene, shared_data):
    """The QA case: the panel's seed at LUNG1-002's GTV centroid (RAS 74.47,-16.356,-18.735), its defaults (seed mode,
    default model): the mask lies 31 mm away (4.7 ml, confidence 0.22) and the banner said "negate x and y only if
    the seed was copied from Slicer's RAS display (lungai takes LPS)".  Now it says the mask lies away, not that."""
    from lungai import mrml

    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    ct = sitk.ReadImage(str(shared_data / "nsclc_whole_ct" / "nifti" / "LUNG1-002_ct.nii.gz"))
    p.inputVolume = mrml.volume_node_from_image(mrml_scene, ct, "LUNG1-002")
    p.seedPoints = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints.AddControlPoint(74.47, -16.356, -18.735)
    job = logic.run(logic.startSegmentation, p, timeout=400)
    assert "--scene-coordinates" in job.process.args
    headline, details, review = logic.resultText(logic.loadSegmentation(p, job))
    assert review and "the tumour mask does not hold the seed point" in details, details
    assert "RAS" not in details and "negate x and y" not in details, details
