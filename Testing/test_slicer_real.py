"""The panels against 3D Slicer's OWN Python code of each supported release (5.10, 5.12): the real
``parameterNodeWrapper`` (serializers, validators, GUI connectors), ``ScriptedLoadableModule``,
``VTKObservationMixin``, ``SampleData`` and ``slicer.packaging``, on real MRML (slicer-core).
Stand-ins only for the C++ parts (qt / ctk widgets, ``slicer.app``): see slicer_real.py.

Also: the widget behaviour that was broken (seed point never enabling Apply, segment checklist not
refreshing, results lost on module switch / scene close, inputs read at the end, selectors editable
during a run), each through the real wrapper and observers.
"""

from __future__ import annotations

import pathlib
import sys
import types
import typing

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_real import MODULES, REPO, SLICER_PYTHON, TAGS, fake_ui, import_module_file, module_parent, real_slicer

pytestmark = pytest.mark.shared_data


_IMPORTED: dict = {}


@pytest.fixture(params=TAGS)
def env(request, mrml_scene, tmp_path):
    """Slicer's Python of one release.  Python's cyclic garbage collector is paused inside: collecting
    wrapper objects of VTK nodes while MRML runs Python observers (EndModify -> ModifiedEvent) crashed
    the interpreter in long runs; everything is collected after the test instead."""
    import gc

    if not (SLICER_PYTHON / request.param).is_dir():
        pytest.skip(f"needs {SLICER_PYTHON / request.param}")
    gc.collect()
    gc.disable()
    try:
        with real_slicer(request.param, mrml_scene, tmp_path) as slicer:
            _IMPORTED.clear()
            yield types.SimpleNamespace(tag=request.param, slicer=slicer, scene=mrml_scene, tmp=tmp_path)
            _IMPORTED.clear()
    finally:
        gc.enable()
        gc.collect()


def _module(name):
    """The module file, imported once per test with this release's Slicer Python."""
    if name not in _IMPORTED:
        _IMPORTED[name] = import_module_file(name)
    return _IMPORTED[name]


def _parameter_class(m, name):
    return getattr(m, f"{name}ParameterNode")


# ---------------------------------------------------------------------------- parameter nodes
def _valid_value(annotation, scene, tmp_path):
    """A valid, non-default value for a parameter type (and an invalid one for validated types, or None)."""
    from slicer.parameterNodeWrapper import Choice, WithinRange

    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    extras = list(getattr(annotation, "__metadata__", ()))
    choice = next((e for e in extras if isinstance(e, Choice)), None)
    within = next((e for e in extras if isinstance(e, WithinRange)), None)
    if choice is not None:
        return choice.choices[-1], "not-a-choice"
    if within is not None:
        value = within.maximum if base is int else (within.minimum + within.maximum) / 2
        return value, within.maximum + 1
    if base is bool:
        return True, None
    if base is str:
        return "1,2", None
    if base is pathlib.Path:
        return tmp_path / "some folder", None
    if typing.get_origin(base) is list:
        return ["Tumor", "Right lung"], None
    if isinstance(base, type) and base.__name__.startswith("vtkMRML"):
        return scene.AddNewNodeByClass(base.__name__), None
    raise AssertionError(f"no test value for {annotation}")


def test_parameter_nodes_through_real_serializers_and_validators(env):
    """Every field of the three parameter-node classes: default, set, saved in the MRML node, read back
    by a new wrapper (Slicer's serializers); values outside a Choice / WithinRange are refused."""
    for name in MODULES:
        m = _module(name)
        logic = getattr(m, f"{name}Logic")()
        p = logic.getParameterNode()
        cls = _parameter_class(m, name)
        assert type(p) is cls and p.parameterNode.IsA("vtkMRMLScriptedModuleNode")
        hints = typing.get_type_hints(cls.__mro__[0], include_extras=True)
        fields = [f for f in hints if f in cls.allParameters]
        assert fields, name
        expected = {}
        for field in fields:
            value, invalid = _valid_value(p.dataType(field), env.scene, env.tmp)
            setattr(p, field, value)
            expected[field] = value
            if invalid is not None:
                with pytest.raises(ValueError):
                    setattr(p, field, invalid)
        again = cls(p.parameterNode)          # a new wrapper reads what the serializers wrote into the node
        for field, value in expected.items():
            assert getattr(again, field) == value, (name, field)
    # defaults the panels rely on
    seg = _module("LungAISeg").LungAISegLogic().getParameterNode()
    assert seg.parameterNode is not None


def test_parameter_defaults(env):
    m = _module("LungAISeg")
    env.scene.Clear(0)
    p = m.LungAISegLogic().getParameterNode()
    from lungai.cli.seg import segment_parser

    cli = segment_parser().parse_args(["ct.nii.gz", "-o", "out"]).mc_passes     # lungai segment's default passes
    assert cli is None         # not given: the model's calibration passes; the panel's 0 ("model's calibration")
    assert (p.mode, p.method, p.mcPasses, p.model, p.inputVolume) == ("seed", "auto", 0, "default", None)
    p.mcPasses = 1                          # which lungai segment takes too


# ---------------------------------------------------------------------------- .ui bindings
def test_every_ui_binding_has_a_gui_connector(env):
    """Each SlicerParameterName in the .ui files gets a connector of this Slicer release for its widget class
    and type (qSlicerSimpleMarkupsWidget's exists only from 5.10), and connectGui binds the whole panel:
    a widget change reaches the parameter node and a parameter change reaches the widget."""
    from slicer.parameterNodeWrapper import createGuiConnector

    from slicer_real import ui_widgets

    for name in MODULES:
        m = _module(name)
        p = getattr(m, f"{name}Logic")().getParameterNode()
        ui_path = REPO / name / "Resources" / "UI" / f"{name}.ui"
        bindings = {w: b for w, (_, b) in ui_widgets(ui_path).items() if b}
        assert bindings, name
        ui = fake_ui(ui_path)
        for widget_name, parameter in bindings.items():
            connector = createGuiConnector(getattr(ui, widget_name), p.dataType(parameter))
            assert connector is not None, (name, widget_name)
        tag = p.connectGui(ui)
        p.disconnectGui(tag)
    # round trip through the real connectors of LungAISeg
    m = _module("LungAISeg")
    p = m.LungAISegLogic().getParameterNode()
    ui = fake_ui(REPO / "LungAISeg" / "Resources" / "UI" / "LungAISeg.ui")
    tag = p.connectGui(ui)
    assert ui.modeComboBox.currentIndex == ["automatic", "roi", "seed"].index(p.mode)
    ui.modeComboBox.currentIndex = 1
    ui.modeComboBox.currentIndexChanged.emit(1)           # the user picks "roi"
    assert p.mode == "roi"
    p.method = "mc-dropout"
    assert ui.methodComboBox.currentIndex == 2     # auto, ensemble, mc-dropout
    points = env.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    p.seedPoints = points
    assert ui.seedMarkupsWidget.currentNode() is points   # the markups connector wrote the node
    assert p.trainLabel == 0                             # tumour masks: any nonzero voxel
    p.trainLabel = 3
    assert ui.trainLabelSpinBox.value == 3
    p.disconnectGui(tag)


def test_training_advanced_options_through_real_wrapper(env, tmp_path):
    """QA: the Advanced training options in Slicer's own parameterNodeWrapper: defaults are train-seg's (read from
    its parser), saved in the parameter node and read back by a new wrapper, bound both ways to the Advanced
    widgets (each with the CLI's help as tooltip), and a bad combination disables Start training with the reason."""
    from lungai.cli import build_parser

    from LungAICommon import commands

    m = _module("LungAISeg")
    train = build_parser()._subparsers._group_actions[0].choices["train-seg"]
    cli = {a.dest: a.default for a in train._actions if a.option_strings}
    logic = m.LungAISegLogic()
    p = logic.getParameterNode()
    for option, value in logic.trainingOptions(p).items():
        assert commands.train_option_value(option, value) == cli[option], option
    ui = fake_ui(REPO / "LungAISeg" / "Resources" / "UI" / "LungAISeg.ui")
    tag = p.connectGui(ui)
    arch = commands.train_seg_choices("arch")
    assert ui.trainArchComboBox.currentIndex == arch.index("unet")
    p.trainArch, p.trainDeepSupervision, p.trainPatch = "dynunet", True, "64,64,32"
    assert ui.trainArchComboBox.currentIndex == arch.index("dynunet") and ui.trainDeepSupervisionCheckBox.checked
    assert ui.trainPatchLineEdit.text == "64,64,32"
    strong = commands.train_seg_choices("augment").index("strong")
    ui.trainAugmentComboBox.currentIndex = strong
    ui.trainAugmentComboBox.currentIndexChanged.emit(strong)        # the user picks "strong"
    ui.trainFgFractionDoubleSpinBox.value = 0.33
    ui.trainFgFractionDoubleSpinBox.valueChanged.emit(0.33)
    assert (p.trainAugment, p.trainFgFraction) == ("strong", 0.33)
    p.disconnectGui(tag)
    again = type(p)(p.parameterNode)                                # persisted in the MRML parameter node
    assert (again.trainArch, again.trainDeepSupervision, again.trainPatch, again.trainAugment, again.trainFgFraction) \
        == ("dynunet", True, "64,64,32", "strong", 0.33)
    # the panel: tooltips from the CLI; Start training refused with the reason until the combination is valid
    _, w = _widget("LungAISeg", env)
    w.setTrainingToolTips()
    assert w.ui.trainLrScheduleComboBox.toolTip.startswith("lungai train-seg --lr-schedule: poly")
    w.setParameterNode(w.logic.getParameterNode())
    q = w._parameterNode                                            # the module's one parameter node: p
    q.trainArch, q.trainDeepSupervision = "unet", False
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    q.trainImages, q.trainMasks, q.trainOutput = tmp_path / "images", tmp_path / "masks", tmp_path / "model"
    assert w.ui.trainButton.enabled
    q.trainDeepSupervision = True                                   # with --arch unet
    assert not w.ui.trainButton.enabled and "needs --arch dynunet" in w.ui.trainButton.toolTip
    q.trainArch = "dynunet"
    assert w.ui.trainButton.enabled
    assert {"--arch", "--deep-supervision"} <= set(w.logic.trainingCommand(q))
    w.exit()


def test_training_choices_of_a_scene_saved_before_the_rename(env):
    """QA: scenes saved with 'architecture' / 'members' / 'epochs' (before the train* names) loaded the defaults.
    The old values move to the new names once (the old parameters are removed); new names already set win."""
    m = _module("LungAISeg")
    env.scene.Clear(0)
    saved = env.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")         # as read from the old .mrml
    saved.SetAttribute("ModuleName", "LungAISeg")
    saved.SetSingletonTag("LungAISeg")
    for name, value in (("architecture", "dynunet"), ("members", "5"), ("epochs", "40")):
        saved.SetParameter(name, value)
    p = m.LungAISegLogic().getParameterNode()
    assert p.parameterNode is saved
    assert (p.trainArch, p.trainMembers, p.trainEpochs) == ("dynunet", 5, 40)
    assert not any(saved.GetParameter(old) for old in ("architecture", "members", "epochs"))
    p.trainEpochs = 7
    saved.SetParameter("epochs", "99")                                      # both present: the new name wins
    again = m.LungAISegLogic().getParameterNode()
    assert again.trainEpochs == 7 and not saved.GetParameter("epochs")


# parameters a panel fills from code, not from a widget bound to them: the segment checklist, the clinical form
SET_BY_CODE = {"LungAISeg": set(), "LungRadiomics": {"selectedSegments"}, "MultimodalPredict": {"clinicalValues"}}


def test_every_parameter_has_a_ui_binding(env):
    """QA: a parameter the panel's actions require but no widget sets (trainOutput lost its widget) left Start
    training disabled forever.  Every field of each parameter node is bound to a .ui widget (or filled by code)."""
    from slicer_real import ui_widgets

    for name in MODULES:
        m = _module(name)
        cls = _parameter_class(m, name)
        bound = {b for _, b in ui_widgets(REPO / name / "Resources" / "UI" / f"{name}.ui").values() if b}
        fields = set(cls.allParameters)
        assert fields - bound - SET_BY_CODE[name] == set(), name
        assert SET_BY_CODE[name] <= fields, name


def test_start_training_enabled_through_the_widgets(env, tmp_path):
    """QA repro: the user fills images, masks and output folders in their path widgets (not the parameters)."""
    _, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for widget, path in (("trainImagesPathLineEdit", tmp_path / "images"), ("trainMasksPathLineEdit", tmp_path / "masks"),
                         ("trainOutputPathLineEdit", tmp_path / "model")):
        assert not w.ui.trainButton.enabled
        edit = getattr(w.ui, widget)
        edit.currentPath = str(path)
        edit.currentPathChanged.emit(str(path))
    p = w._parameterNode
    assert pathlib.Path(p.trainOutput) == tmp_path / "model"
    assert w.ui.trainButton.enabled, w.ui.trainButton.toolTip
    w.exit()



def test_model_tooltip_gives_the_large_tumour_advice(env):
    """QA: the panel, lungai segment's note and README gave different advice for a large tumour; the Model tooltip
    is now lungai's text, with the one advice, and each Model choice runs the shipped model the advice names."""
    from lungai.seg.resources import (DEFAULT_MODEL_NAME, LARGE_TUMOUR_ADVICE_MODEL, PANEL_MODEL_LABELS,
                                      large_tumour_advice)

    _, w = _widget("LungAISeg", env)
    w.setModelToolTip()
    assert large_tumour_advice(panel=True) in w.ui.modelComboBox.toolTip
    p = w.logic.getParameterNode()
    for name, label in PANEL_MODEL_LABELS.items():
        p.model = label
        assert w.logic.modelChoice(p) == (None if name == DEFAULT_MODEL_NAME else name)
    p.model = PANEL_MODEL_LABELS[LARGE_TUMOUR_ADVICE_MODEL]
    assert w.logic.modelChoice(p) == LARGE_TUMOUR_ADVICE_MODEL


def _saved_seg_parameters(env, **values):
    env.scene.Clear(0)
    saved = env.scene.GetSingletonNode("LungAISeg", "vtkMRMLScriptedModuleNode")
    if saved is None:
        saved = env.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")     # as read from a saved .mrml
        saved.SetAttribute("ModuleName", "LungAISeg")
        saved.SetSingletonTag("LungAISeg")
    for name, value in values.items():
        saved.SetParameter(name, value)
    return saved


def test_a_model_choice_removed_since_the_scene_was_saved_is_an_input_problem(env, small_phantom):
    """QA: a scene saved with a Model no longer offered read back unchecked (the Model combo box could not show it:
    the panel failed to open) and Apply ran the default model.  "small nodules" (removed in 97659617: the model that
    is "default" now) is mapped to "default"; any other unknown Model disables Apply, the tooltip names the stored
    value and the choices, until the user chooses a Model."""
    from lungai import mrml
    from lungai.seg.resources import PANEL_MODEL_LABELS

    _saved_seg_parameters(env, model="small nodules")
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    assert w._parameterNode.model == "default" and w.logic.modelChoice(w._parameterNode) is None
    w.exit()
    saved = _saved_seg_parameters(env, model="tiny nodules")
    ct = mrml.volume_node_from_image(env.scene, small_phantom.ct, "phantom CT")
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    p.inputVolume, p.mode = ct, "automatic"
    tip = w.ui.applyButton.toolTip
    assert not w.ui.applyButton.enabled and '"tiny nodules"' in tip, tip
    assert all(label in tip for label in [*PANEL_MODEL_LABELS.values(), "folder"]) and "choose" in tip
    with pytest.raises(ValueError, match="tiny nodules"):
        w.logic.segmentationCommand(p, env.tmp)
    assert m.LungAISegLogic().getParameterNode().parameterNode is saved      # read again: still said
    assert not w.ui.applyButton.enabled
    w.onModelActivated()                               # the user chooses a Model (even the one shown)
    assert w.ui.applyButton.enabled, w.ui.applyButton.toolTip
    w.exit()


def test_train_and_apply_disabled_for_folders_the_cli_refuses(env, ct_node, tmp_path):
    """QA: Start training was enabled for an output folder holding a user's file and Apply for a model folder with no
    model.json / an unfinished one ("status": "calibrating"), which the commands then refused: disabled, the tooltip
    says what to do (through the real wrapper and observers)."""
    import json

    _, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    for folder in ("images", "masks", "model", "seg model"):
        (tmp_path / folder).mkdir()
    p.trainImages, p.trainMasks, p.trainOutput = tmp_path / "images", tmp_path / "masks", tmp_path / "model"
    assert w.ui.trainButton.enabled, w.ui.trainButton.toolTip
    (tmp_path / "model" / "notes.txt").write_text("mine", encoding="utf-8")
    w.updateButtons()
    assert not w.ui.trainButton.enabled and "is not empty (notes.txt)" in w.ui.trainButton.toolTip
    p.inputVolume, p.mode, p.model, p.modelDirectory = ct_node, "automatic", "folder", tmp_path / "seg model"
    assert not w.ui.applyButton.enabled and "no model.json" in w.ui.applyButton.toolTip
    (tmp_path / "seg model" / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "status": "calibrating"}),
                                                       encoding="utf-8")
    w.updateButtons()
    assert not w.ui.applyButton.enabled and "press Start training on that folder" in w.ui.applyButton.toolTip
    (tmp_path / "seg model" / "model.json").write_text(json.dumps({"format": "lungai-seg-1", "member_files": [
        "member_0.safetensors"]}), encoding="utf-8")
    w.updateButtons()     # a member file missing: lungai segment's check (lungai.seg.model_meta.check_model_folder)
    assert not w.ui.applyButton.enabled and "member_0.safetensors is missing" in w.ui.applyButton.toolTip
    (tmp_path / "seg model" / "member_0.safetensors").write_bytes(b"")
    w.updateButtons()
    assert w.ui.applyButton.enabled, w.ui.applyButton.toolTip
    p.method = "ensemble"           # 1 member: no ensemble; the fix names the panel's Method choice, not --method
    assert not w.ui.applyButton.enabled and "set Uncertainty method to auto or mc-dropout" in w.ui.applyButton.toolTip
    p.method = "auto"
    (tmp_path / "cancelled" / "checkpoints").mkdir(parents=True)       # a cancelled training: resume it
    p.modelDirectory = tmp_path / "cancelled"
    assert not w.ui.applyButton.enabled and "press Start training on that folder" in w.ui.applyButton.toolTip
    w.exit()


def test_seed_and_roi_warnings_in_the_apply_tooltip(env):
    """Inputs used otherwise than drawn are said in the panel: several placed seeds (the first is the seed), a
    rotated ROI (its axis-aligned bounding box), in Apply's tooltip; an unplaced point is never the seed."""
    import SimpleITK as sitk
    import vtk
    from lungai import mrml

    _, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    p.inputVolume = mrml.volume_node_from_image(env.scene, sitk.Image(40, 40, 20, sitk.sitkInt16), "CT")
    p.mode, p.seedPoints = "seed", env.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    p.seedPoints.AddControlPoint(-10.0, -10.0, 5.0, "F-1")
    p.seedPoints.AddControlPoint(-20.0, -20.0, 5.0, "F-2")
    w.updateButtons()
    assert w.ui.applyButton.enabled and "only the first, 'F-1', is used as the seed" in w.ui.applyButton.toolTip
    p.seedPoints.UnsetNthControlPointPosition(0)
    w.updateButtons()
    assert w.ui.applyButton.enabled and "Warning" not in w.ui.applyButton.toolTip
    p.seedPoints.SetNthControlPointPositionMissing(1)
    w.updateButtons()
    assert not w.ui.applyButton.enabled and "Place a seed point" in w.ui.applyButton.toolTip
    p.mode, p.roi = "roi", env.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "R")
    w.updateButtons()                           # a new ROI never placed: no empty box at (0, 0, 0) is segmented
    assert not w.ui.applyButton.enabled and "place the ROI box on the tumour" in w.ui.applyButton.toolTip
    p.roi.SetXYZ(-20.0, -20.0, 20.0)
    p.roi.SetRadiusXYZ(5.0, 5.0, 5.0)
    rotation = vtk.vtkTransform()
    rotation.RotateX(30.0)
    p.roi.SetAndObserveObjectToNodeMatrix(rotation.GetMatrix())
    w.updateButtons()
    assert w.ui.applyButton.enabled and "a rotated ROI is used as its axis-aligned bounding box" in \
        w.ui.applyButton.toolTip
    p.roi.SetSize(10.0, 10.0, 0.0)              # flat along its own axis: its rotated world bounds are a slab
    w.updateButtons()
    assert not w.ui.applyButton.enabled and "place the ROI box on the tumour" in w.ui.applyButton.toolTip
    w.exit()

# ---------------------------------------------------------------------------- module files
def test_module_files_import_with_real_scripted_loadable_module(env):
    import slicer.ScriptedLoadableModule as slm

    for name in MODULES:
        m = _module(name)
        assert issubclass(getattr(m, name), slm.ScriptedLoadableModule)
        assert issubclass(getattr(m, f"{name}Logic"), slm.ScriptedLoadableModuleLogic)
        assert issubclass(getattr(m, f"{name}Widget"), slm.ScriptedLoadableModuleWidget)
        assert issubclass(getattr(m, f"{name}Test"), slm.ScriptedLoadableModuleTest)
        widget = getattr(m, f"{name}Widget")
        from LungAICommon.panel import PanelWidgetMixin

        for method in ("cleanup", "exit", "setParameterNode", "onSceneStartClose"):   # not hidden by Slicer's base
            assert getattr(widget, method) is getattr(PanelWidgetMixin, method), (name, method)
        parent = module_parent(name)
        getattr(m, name)(parent)
        assert parent.title and parent.categories == ["Lung AI"]
        assert "needs 3D Slicer" not in parent.helpText          # 5.10 and 5.12 are supported
    # only LungAISeg registers the sample (once Slicer has started)
    signals = [s for s, _ in env.slicer.app.connections]
    assert signals == ["startupCompleted()"]


def test_older_slicer_is_told_the_minimum_version(env):
    env.slicer.app.majorVersion, env.slicer.app.minorVersion = 5, 8
    parent = module_parent("LungAISeg")
    _module("LungAISeg").LungAISeg(parent)
    assert parent.helpText.startswith("<b>The LungAI extension needs 3D Slicer 5.10 or newer (this is 5.8)")


# ---------------------------------------------------------------------------- sample data
def _sample_cache(env):
    """A fresh download cache folder for Slicer's SampleData (the scene's cache manager)."""
    cache = env.tmp / "cache"
    cache.mkdir()
    manager = env.slicer.vtkCacheManager()
    manager.SetRemoteCacheDirectory(str(cache))
    env.scene.SetCacheManager(manager)
    return cache


def test_sample_registered_once_and_downloadable_from_a_script(env, monkeypatch):
    """Slicer's SampleData logic: one "LungAIPhantom" entry however often registration runs, and
    downloadSample works from a script (the URL rewrite rule generates the files)."""
    cache = _sample_cache(env)
    from LungAICommon import sampledata

    import SampleData

    env.slicer.modules = types.SimpleNamespace()
    for name in MODULES:
        getattr(_module(name), name)(module_parent(name))
    for _, slot in env.slicer.app.connections:        # Slicer emits startupCompleted()
        slot()
    sampledata.register()                              # and a script may call it again
    sources = SampleData.SampleDataLogic.sampleDataSourcesByCategory(sampledata.CATEGORY)
    assert [s.sampleName for s in sources] == [sampledata.SAMPLE_NAME]
    ct = SampleData.SampleDataLogic().downloadSample(sampledata.SAMPLE_NAME)
    assert ct is not None and ct.GetName() == sampledata.CT_NODE_NAME and ct.GetImageData() is not None
    truth = env.scene.GetFirstNodeByName(sampledata.TRUTH_NODE_NAME)
    from lungai import mrml

    assert mrml.segment_names(truth) == ["Tumor", "Right lung", "Left lung"]
    tumour = sitk.GetArrayFromImage(mrml.segment_to_mask(env.scene, truth, "Tumor", ct))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(cache / "LungAIPhantom" / "labels.nii.gz")))
    assert tumour.sum() > 0 and np.array_equal(tumour > 0, (labels == 1) | (labels == 11))
    assert sampledata.voxel_checksum(cache / "LungAIPhantom" / "ct.nii.gz") == sampledata.CT_SHA256
    # other samples' URLs pass the rule unchanged
    assert SampleData.SampleDataLogic.rewriteUrl("https://example.org/x.nrrd") == "https://example.org/x.nrrd"


def test_sample_with_its_packages_declined_asks_once_and_says_why(env, monkeypatch):
    """QA (install58): the sample's packages are installed from SampleData's URL rewrite rule, which raised ValueError
    when they were not ready - and Slicer's SampleData takes a ValueError there for a failed download: it retried 3
    times for each of the sample's 2 files, so a user who declined was asked 6 times, and the reason was lost
    ("Download failed (attempt 1 of 3)...").  Now asked once; downloadSample raises the reason."""
    _sample_cache(env)
    from LungAICommon import install, requirements, sampledata

    import SampleData

    env.slicer.modules = types.SimpleNamespace()
    sampledata.register()
    monkeypatch.setattr(requirements, "missing", lambda feature: [requirements.PINNED["scipy"]])
    monkeypatch.setattr(install, "_packaging_module", lambda: None)           # 5.10's dialog on both releases
    monkeypatch.setattr(env.slicer.app, "testingEnabled", lambda: False, raising=False)
    asked, pip = [], []
    monkeypatch.setattr(env.slicer.util, "confirmOkCancelDisplay", lambda text, **kw: asked.append(text) and False)
    monkeypatch.setattr(env.slicer.util, "pip_install", lambda *a, **k: pip.append(a))
    with pytest.raises(RuntimeError) as err:
        SampleData.SampleDataLogic().downloadSample(sampledata.SAMPLE_NAME)
    assert len(asked) == 1 and not pip
    assert "scipy==1.17.1" in str(err.value) and "was declined" in str(err.value)
    assert env.scene.GetFirstNodeByName(sampledata.CT_NODE_NAME) is None


# ---------------------------------------------------------------------------- widgets (real wrapper + observers)
class FakeRunner:
    """QtJobRunner's interface without a Qt timer: the test ends the job."""

    def __init__(self):
        self.running, self.lines, self.process, self.callback, self.cancelled = False, [], None, None, False

    def start(self, process, on_finished, title=""):
        self.process, self.callback, self.running = process, on_finished, True

    def cancel(self):
        if self.running:
            self.cancelled = True
            self.process.cancelled = True

    def log(self, text):
        self.lines.append(text)

    def end(self):
        self.running = False
        self.callback(self.process)


class FakeProcess:
    def __init__(self):
        self.cancelled, self.succeeded, self.lines = False, True, []

    def error_message(self):
        return "failed"


def _widget(name, env):
    from slicer.util import VTKObservationMixin

    m = _module(name)
    cls = getattr(m, f"{name}Widget")
    w = cls.__new__(cls)                       # not setup(): no Qt; the same attributes setup() makes
    VTKObservationMixin.__init__(w)
    w.initPanel()
    w.parent = types.SimpleNamespace(isEntered=True)
    w.ui = fake_ui(REPO / name / "Resources" / "UI" / f"{name}.ui")
    w.logic = getattr(m, f"{name}Logic")()
    w.runner = FakeRunner()
    return m, w


@pytest.fixture
def ct_node(env, small_phantom):
    from lungai import mrml

    return mrml.volume_node_from_image(env.scene, small_phantom.ct, "phantom CT")


def test_placing_a_seed_point_enables_segment_tumour(env, ct_node):
    """Defect 1: the point list changes, not the parameter node - the panel must observe the point list."""
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    p.inputVolume, p.mode = ct_node, "seed"
    p.seedPoints = env.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    assert not w.ui.applyButton.enabled and "seed point" in w.ui.applyButton.toolTip
    p.seedPoints.AddControlPoint(-40.0, 0.0, 100.0)          # the user clicks on the tumour
    assert w.ui.applyButton.enabled
    p.seedPoints.RemoveAllControlPoints()
    assert not w.ui.applyButton.enabled
    w.exit()                                                  # observers go with the GUI
    assert w.inputObserver.nodes == []


@pytest.mark.parametrize("name", ["LungRadiomics", "MultimodalPredict"])
def test_any_panel_keeps_the_confidence_tables_true_to_their_segments(env, ct_node, small_phantom, name):
    """QA slicerconf60: a confidence table was refreshed only on entering Lung AI Segmentation (or by a reader of
    the result); a panel loaded installs nodes.keep_confidence_tables_current on the scene, so a segment renamed or
    deleted while the user is in another module (Segment Editor, Lung Radiomics) is said in its table at once."""
    import SimpleITK as sitk

    from lungai.scene import nodes

    m, w = _widget(name, env)
    tumour = sitk.Cast(small_phantom.labels == 1, sitk.sitkUInt8)
    out = nodes.add_tumour_outputs(env.scene, ct_node, tumour, sitk.Cast(tumour, sitk.sitkFloat32),
                                   {"confidence": 0.3, "needs_review": True, "review_threshold": 0.6})
    segmentation = out["segmentation"].GetSegmentation()
    segmentation.GetSegment(out["segment_id"]).SetName("GTV")
    assert nodes.table_rows(out["table"])[0]["segment"] == "GTV"
    segmentation.RemoveSegment(out["segment_id"])
    assert nodes.table_rows(out["table"])[0][nodes.OUTLINE_COLUMN] == nodes.OUTLINE_GONE


@pytest.mark.parametrize("name", ["LungAISeg", "LungRadiomics"])
def test_a_labelmap_loaded_first_is_not_picked_as_the_ct(env, name):
    labels = env.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    assert env.scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode") is labels
    ct = env.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    m, w = _widget(name, env)
    w.updateSegmentList = lambda: None                        # the Qt list itself cannot run here
    w.initializeParameterNode()
    assert w._parameterNode.inputVolume is ct
    w.exit()


def test_segments_added_or_renamed_refresh_the_radiomics_checklist(env, ct_node):
    m, w = _widget("LungRadiomics", env)
    refreshed = []
    w.updateSegmentList = lambda: refreshed.append(True)      # the Qt list itself cannot run here
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    seg = env.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    seg.CreateDefaultDisplayNodes()
    p.inputVolume, p.segmentation, p.selectedSegments = ct_node, seg, ["Tumor"]
    assert not w.ui.applyButton.enabled
    refreshed.clear()
    sid = seg.GetSegmentation().AddEmptySegment("", "Tumour")
    assert refreshed and not w.ui.applyButton.enabled
    refreshed.clear()
    seg.GetSegmentation().GetSegment(sid).SetName("Tumor")     # renamed: now the ticked segment exists
    assert refreshed and w.ui.applyButton.enabled



def test_radiomics_checkboxes_hidden_where_the_preset_or_file_chooses(env, ct_node, tmp_path):
    """QA: an ibsi preset / a parameter file was run with the checkboxes' classes and image types (48 IBSI-1 features,
    a file's LoG image dropped).  They now bring their own (LungAICommon.commands.radiomics_choice): the panel hides
    the checkboxes and says whose classes and image types are computed; Apply does not ask for a ticked class."""
    m, w = _widget("LungRadiomics", env)
    w.updateSegmentList = lambda: None                        # the Qt list itself cannot run here
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    seg = env.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    seg.CreateDefaultDisplayNodes()
    seg.GetSegmentation().AddEmptySegment("", "Tumor")
    p.inputVolume, p.segmentation, p.selectedSegments = ct_node, seg, ["Tumor"]
    boxes = (w.ui.featureClassesBox, w.ui.imageTypesBox, w.ui.logSigmaLineEdit, w.ui.featureClassesBoxLabel)
    assert w.ui.applyButton.enabled and all(b.visible for b in boxes) and not w.ui.selectionNoteLabel.visible
    for c in m.commands.FEATURE_CLASSES:
        setattr(p, f"class_{c}", False)
    assert not w.ui.applyButton.enabled and "feature class" in w.ui.applyButton.toolTip
    p.preset = "ibsi-c"
    assert w.ui.applyButton.enabled and not any(b.visible for b in boxes)
    assert w.ui.selectionNoteLabel.visible and w.ui.selectionNoteLabelLabel.visible
    assert "ibsi-c" in w.ui.selectionNoteLabel.text and "every feature class" in w.ui.selectionNoteLabel.text
    params = tmp_path / "params.yaml"
    params.write_text("imageType: {LoG: {sigma: [2.0]}}\n", encoding="utf-8")
    p.paramsSource, p.paramsFile = "file", params
    assert w.ui.applyButton.enabled and not any(b.visible for b in boxes)
    assert "parameter file" in w.ui.selectionNoteLabel.text
    p.paramsSource, p.preset = "preset", "default"             # the checkboxes choose again, with their values
    assert all(b.visible for b in boxes) and not w.ui.selectionNoteLabel.visible and not w.ui.applyButton.enabled
    w.exit()


def test_radiomics_offers_the_selected_cts_own_segmentation(env):
    """Choosing another CT in Lung Radiomics switches a segmentation of another CT to the CT's own one (another CT's
    segmentation is refused: nodes.segmentation_volume_problem); a segmentation of this CT is kept."""
    from lungai import mrml

    segs, cts = [], []
    for name, origin in (("A", (0.0, 0.0, 0.0)), ("B", (100.0, 50.0, -30.0))):
        image = sitk.Image((12, 12, 6), sitk.sitkInt16) - 700
        image.SetOrigin(origin)
        cts.append(mrml.volume_node_from_image(env.scene, image, name))
        seg = env.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name} contours")
        seg.SetReferenceImageGeometryParameterFromVolumeNode(cts[-1])
        segs.append(seg)
    m, w = _widget("LungRadiomics", env)
    w.updateSegmentList = lambda: None                        # the Qt list itself cannot run here
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    p.inputVolume, p.segmentation = cts[0], segs[0]
    p.inputVolume = cts[1]
    assert p.segmentation is segs[1]
    p.inputVolume = cts[0]
    assert p.segmentation is segs[0]
    w.exit()

def test_radiomics_two_tumour_rois_of_one_name_both_leave_the_lungs(env, ct_node, small_phantom):
    """QA defect (review of 3c95b77), on this release's Slicer: an RTSTRUCT with two ROIs "GTV" (SlicerRT: IDs GTV and
    GTV_1), neither ticked, only the lungs: featureCommands raised "2 segments ... have the name 'GTV'".  Both are
    read by ID (mrml.segment_to_mask(by_id=True)) and leave "Lungs minus tumour"; a segmentation drawn on another CT
    of the same grid is refused, one whose reference is a label map on the CT's grid accepted."""
    from lungai import mrml
    from lungai.scene import nodes

    arr = sitk.GetArrayFromImage(small_phantom.labels)

    def image(a):
        out = sitk.GetImageFromArray(a.astype(np.uint8))
        out.CopyInformation(small_phantom.labels)
        return out

    tumour, right = arr == 1, arr == 2
    second = np.zeros_like(right)
    k, j, i = np.argwhere(right)[len(np.argwhere(right)) // 2]
    second[k - 1:k + 2, j - 2:j + 3, i - 2:i + 3] = True
    second &= right
    seg, _ = mrml.mask_to_segment(env.scene, image(tumour), "GTV", reference_volume_node=ct_node)
    for a, name in ((right & ~second, "Lung-Right"), (arr == 3, "Lung-Left")):
        mrml.mask_to_segment(env.scene, image(a), name, seg_node=seg, reference_volume_node=ct_node)
    _, gid = mrml.mask_to_segment(env.scene, image(second), "GTV_1", seg_node=seg, reference_volume_node=ct_node)
    seg.GetSegmentation().GetSegment(gid).SetName("GTV")
    assert [i for i, _ in nodes.tumour_segment_ids(seg)] == ["GTV", gid]
    logic = _module("LungRadiomics").LungRadiomicsLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.segmentation, p.selectedSegments = ct_node, seg, ["Lung-Right", "Lung-Left"]
    assert logic.inputProblem(p) is None
    work = env.tmp / "work"
    work.mkdir()
    _, columns, _, _, _ = logic.featureCommands(p, work)
    key = next(k for k, name in columns.items() if name == "Lungs minus tumour")
    derived = sitk.GetArrayFromImage(sitk.ReadImage(str(work / f"{key}.nrrd"))) > 0
    np.testing.assert_array_equal(derived, (right | (arr == 3)) & ~tumour & ~second)
    # another CT of this grid as the reference: refused; a label map on it: accepted
    other = mrml.volume_node_from_image(env.scene, small_phantom.ct, "other CT")
    label = mrml.volume_node_from_image(env.scene, small_phantom.labels, "CT labels", labelmap=True)
    for reference, problem in ((other, "drawn on another image (other CT)"), (label, None)):
        drawn, _ = mrml.mask_to_segment(env.scene, image(tumour), "GTV", reference_volume_node=reference)
        drawn.SetReferenceImageGeometryParameterFromVolumeNode(reference)
        said = nodes.segmentation_volume_problem(drawn, ct_node)
        assert (said is None) if problem is None else (problem in said), said


def _lungs_job(w, env, ct_node, small_phantom):
    """Start 'Segment lungs' with a stand-in process; the lung labels are what `lungai lungs` writes."""
    from LungAICommon import panel

    p = w._parameterNode
    p.inputVolume = ct_node
    process = FakeProcess()

    @panel.needs("lungs")
    def start(params):
        job = w.logic.startLungs(params)
        job.process = process
        arr = sitk.GetArrayFromImage(small_phantom.labels)
        labels = sitk.GetImageFromArray(np.where(arr == 2, 1, np.where(arr == 3, 2, 0)).astype(np.uint8))
        labels.CopyInformation(small_phantom.labels)
        sitk.WriteImage(labels, str(job.outputs))
        return job

    job = w.startJob("could not start", start, w.onLungsFinished, "lungs")
    assert isinstance(job, panel.PanelJob) and job.workDir.is_dir()
    return job


def test_job_survives_module_switch_and_uses_inputs_captured_at_start(env, ct_node, small_phantom):
    from lungai import mrml

    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    job = _lungs_job(w, env, ct_node, small_phantom)
    workDir = job.workDir
    bound = [n for n, wid in vars(w.ui).items() if wid.property("SlicerParameterName")]
    assert bound and not any(getattr(w.ui, n).enabled for n in bound)      # selectors locked while it runs
    other = mrml.volume_node_from_image(env.scene, small_phantom.ct, "another CT")
    p.inputVolume = other                     # changed during the run (e.g. from the console)
    w.exit()                                  # the user switches module: GUI disconnected
    w.runner.end()                            # the child finishes later
    assert p.outputSegmentation is not None and p.outputSegmentation.GetName() == "phantom CT lungs"
    assert mrml.segment_names(p.outputSegmentation) == ["Right lung", "Left lung"]
    assert "Right lung" in w.runner.lines[-1]
    assert not workDir.exists()               # exported CT and outputs deleted
    w.enter = lambda: None
    w.setParameterNode(w.logic.getParameterNode())
    assert all(getattr(w.ui, n).enabled for n in bound if n not in (
        "roiSelector", "modelPathLineEdit", "mcPassesSpinBox"))              # unlocked after the run


def test_scene_close_cancels_the_job_with_a_clear_message(env, ct_node, small_phantom):
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    job = _lungs_job(w, env, ct_node, small_phantom)
    workDir = job.workDir
    w.onSceneStartClose(None, None)
    assert w.runner.cancelled
    w.runner.end()
    assert w.runner.lines[-1] == "Cancelled - cancelled because the scene was closed."
    assert not workDir.exists()
    assert w.logic.getParameterNode().outputSegmentation is None      # nothing loaded into a closing scene


def test_failed_job_reports_and_deletes_its_files(env, ct_node, small_phantom, monkeypatch):
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    shown = []
    monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, **kw: shown.append(text))
    job = _lungs_job(w, env, ct_node, small_phantom)
    job.process.succeeded = False
    w.runner.end()
    assert shown == ["Lung AI failed: failed"] and not job.workDir


def test_a_package_newer_than_tested_is_said_in_the_panel_log_and_the_failure(env, ct_node, small_phantom,
                                                                                monkeypatch):
    """QA (install58): pandas 4 (newer than the tested series) installed by another extension: the panel's log says
    so when the job starts, and a failed job's error ends with it (before: not a word anywhere)."""
    from LungAICommon import requirements

    real = requirements.installed_version
    monkeypatch.setattr(requirements, "installed_version", lambda d: "4.0.0" if d == "pandas" else real(d))
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    shown = []
    monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, **kw: shown.append(text))
    job = _lungs_job(w, env, ct_node, small_phantom)
    said = [line for line in w.runner.lines if line.startswith("Note: Lung AI Segmentation: pandas 4.0.0 (tested: "
                                                                 "pandas 3.1.1)")]
    assert len(said) == 1 and "slicer.util.pip_install('pandas==3.1.1')" in said[0], w.runner.lines
    job.process.succeeded = False
    w.runner.end()
    assert shown == ["Lung AI failed: failed\n\n" + said[0]]


def test_slicer_packaging_is_imported_when_this_slicer_has_it(env):
    """5.12 has slicer.packaging (a submodule: it must be imported, not looked up); 5.10 does not."""
    import inspect

    from LungAICommon import install

    packaging = install._packaging_module()
    if env.tag == "v5.10.0":
        assert packaging is None
    else:
        assert packaging is not None and packaging.__file__.startswith(str(SLICER_PYTHON))
        params = inspect.signature(packaging.pip_ensure).parameters
        assert {"constraints", "requester"} <= set(params)
    params = inspect.signature(env.slicer.util.pip_install).parameters
    assert "requirements" in params          # accepts a list of arguments on both releases


def test_module_unload_cancels_a_running_job(env, ct_node, small_phantom):
    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    job = _lungs_job(w, env, ct_node, small_phantom)
    w.cleanup()                               # Slicer calls it when the module is unloaded / Slicer exits
    assert w.runner.cancelled and w.inputObserver.nodes == []
    w.runner.end()
    assert not job.workDir


def test_export_dicom_button(env, ct_node, small_phantom, tmp_path, monkeypatch):
    """Enabled once a result segmentation exists; asks for a folder; a CT not loaded from DICOM -> a clear message."""
    from lungai import mrml
    from lungai.errors import InputError

    m, w = _widget("LungAISeg", env)
    w.setParameterNode(w.logic.getParameterNode())
    p = w._parameterNode
    p.inputVolume = ct_node
    assert not w.ui.exportDicomButton.enabled and "segment the lungs" in w.ui.exportDicomButton.toolTip
    p.outputSegmentation, _ = mrml.mask_to_segment(env.scene, small_phantom.labels == 1, "Tumor",
                                                   reference_volume_node=ct_node)
    assert w.ui.exportDicomButton.enabled
    shown, asked = [], []
    monkeypatch.setattr(env.slicer.util, "errorDisplay", lambda text, **kw: shown.append(text))
    qt = sys.modules["qt"]
    monkeypatch.setattr(qt.QFileDialog, "getExistingDirectory", lambda *a: asked.append(a) or str(tmp_path / "out"),
                        raising=False)
    with pytest.raises(InputError):                           # shown, then re-raised into the console (Slicer's way)
        w.onExportDicomButton()
    assert asked and len(shown) == 1 and shown[0].startswith("DICOM export failed.")
    assert "not loaded from DICOM" in shown[0] and "DICOM module" in shown[0] and not (tmp_path / "out").exists()
    monkeypatch.setattr(qt.QFileDialog, "getExistingDirectory", lambda *a: "", raising=False)
    shown.clear()
    w.onExportDicomButton()                                   # dialog cancelled: nothing happens
    assert not shown
    # a Slicer keeping a pydicom too old for the export (5.10's 2.4.4): refused before any folder is asked for
    # (QA slicerdcm58: the folder dialog came first, then the refusal), the refusal naming what works there
    from LungAICommon import requirements

    real_version = requirements.installed_version
    monkeypatch.setattr(requirements, "installed_version", lambda d: "2.4.4" if d == "pydicom" else real_version(d))
    asked.clear()
    monkeypatch.setattr(qt.QFileDialog, "getExistingDirectory", lambda *a: asked.append(a) or str(tmp_path / "out"),
                        raising=False)
    w.onExportDicomButton()
    assert not asked and len(shown) == 1 and "pydicom 3.0.1 or newer (this Slicer has 2.4.4)" in shown[0]
    assert "QuantitativeReporting" in shown[0] and not (tmp_path / "out").exists()
