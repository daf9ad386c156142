"""Lung AI Segmentation: lungs and lung tumours on chest CT, with uncertainty and a case confidence.

Thin Slicer shell over the headless ``lungai`` core.  The widget only collects inputs and shows
results; the logic exports the input nodes to files, runs ``lungai segment`` / ``lungai lungs`` /
``lungai train-seg`` as a child process (progress bar, Cancel, Slicer stays responsive) and loads
the outputs back as nodes.  Importing this file imports nothing heavy (a test checks it).
"""

import logging
import pathlib
import re
from typing import Annotated

import slicer
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from lungai.errors import InputError
from lungai.seg.config import MC_PASSES_MIN
from lungai.seg.resources import PANEL_MODEL_LABELS
from lungai.scene import nodes, results  # light: numpy / SimpleITK / MRML helpers are imported on use
from LungAICommon import commands, sampledata
from LungAICommon.panel import (PanelJob, PanelWidgetMixin, checkSlicerVersion, default_ct_volume, needs,
                               require_job_packages, run_job)
from LungAICommon.process import LungAIProcess, ReadingProcess

REQUESTER = "Lung AI Segmentation"


class LungAISeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Lung AI Segmentation"
        self.parent.categories = ["Lung AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLungAI developers"]
        self.parent.helpText = """Segments the lungs and lung tumours on chest CT, with a voxel uncertainty map and a case
confidence score that flags cases for expert review. Long work runs in the background and can be cancelled.
Research use only. See the <a href="https://github.com/SlicerLungAI/SlicerLungAI/blob/main/docs/slicer.md">documentation</a>."""
        self.parent.acknowledgementText = "SlicerLungAI, an open-source extension for lung-cancer research."
        checkSlicerVersion(self.parent)
        # The extension's one Sample Data entry (the other two modules do not register it).
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    sampledata.register(icon_path=str(pathlib.Path(__file__).parent / "Resources" / "Icons" / "LungAISeg.png"))


_default = commands.train_seg_default   # train-seg's own defaults (its argument parser), not repeated here


def trainField(option):
    """The parameter of a train-seg option: "train" + its CLI name in CamelCase (lr_schedule -> trainLrSchedule)."""
    return "train" + "".join(word.capitalize() for word in option.split("_"))


@parameterNodeWrapper
class LungAISegParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    mode: Annotated[str, Choice(["automatic", "roi", "seed"])] = "seed"  # the shipped model over-detects in automatic mode (README)
    roi: vtkMRMLMarkupsROINode
    seedPoints: vtkMRMLMarkupsFiducialNode
    model: Annotated[str, Choice([*PANEL_MODEL_LABELS.values(), "folder"])] = "default"   # the shipped models, a folder
    modelDirectory: pathlib.Path
    method: Annotated[str, Choice(list(commands.PANEL_SEG_METHODS))] = commands.SEG_METHOD_AUTO
    # lungai segment's --mc-passes default (read from its parser: the panel and the CLI give the same result): not
    # given, 0 here (the spin box says "model's calibration"; no --mc-passes): the passes the model's MC-dropout
    # calibration was fitted with; else 1 (MC_PASSES_MIN, the fewest it accepts) or more, passed as --mc-passes
    mcPasses: Annotated[int, WithinRange(0, 1000)] = commands.segment_default("mc_passes")
    # seed / ROI mode: keep the first box (lungai segment --no-grow; its default: the box grows while the tumour touches
    # its faces) - what the review action of a mask reaching beyond the ROI box says to try (NO_GROW_LABEL)
    noGrow: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    uncertaintyVolume: vtkMRMLScalarVolumeNode
    uncertaintyOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    trainImages: pathlib.Path
    trainMasks: pathlib.Path
    trainOutput: pathlib.Path
    # Advanced: lungai train-seg's options by their CLI names (commands.PANEL_TRAIN_OPTIONS; "train" + the name in
    # CamelCase), defaults read from train-seg's parser; passed only when they differ from it (LungAISegLogic)
    trainLabel: Annotated[int, WithinRange(0, 65535)] = _default("label")   # the tumour's label; 0: any nonzero
    trainArch: Annotated[str, Choice(list(commands.train_seg_choices("arch")))] = _default("arch")
    trainMembers: Annotated[int, WithinRange(1, 20)] = _default("members")
    trainEpochs: Annotated[int, WithinRange(1, 5000)] = _default("epochs")
    trainIters: Annotated[int, WithinRange(1, 100000)] = _default("iters")
    trainBatch: Annotated[int, WithinRange(1, 1024)] = _default("batch")
    trainPatience: Annotated[int, WithinRange(1, 5000)] = _default("patience")
    trainLr: Annotated[float, WithinRange(0.0, 1.0)] = _default("lr")                  # 0: the architecture's
    trainLrSchedule: Annotated[str, Choice(list(commands.train_seg_choices("lr_schedule")))] = _default("lr_schedule")
    trainPatch: str = _default("patch")
    trainSpacing: str = _default("spacing")
    trainChannels: str = _default("channels")
    trainInferPatch: str = _default("infer_patch")
    trainDropout: Annotated[float, WithinRange(0.0, 0.95)] = _default("dropout")
    trainDeepSupervision: bool = _default("deep_supervision")
    trainAugment: Annotated[str, Choice(list(commands.train_seg_choices("augment")))] = _default("augment")
    trainFgFraction: Annotated[float, WithinRange(0.0, 0.99)] = _default("fg_fraction")  # 0: the CLI's mix
    trainTta: bool = _default("tta")
    trainValFraction: Annotated[float, WithinRange(0.0, 0.95)] = _default("val_fraction")
    trainTestFraction: Annotated[float, WithinRange(0.0, 0.95)] = _default("test_fraction")
    trainPatients: pathlib.Path
    trainSynthetic: Annotated[int, WithinRange(0, 100000)] = _default("synthetic")
    trainSyntheticChests: Annotated[int, WithinRange(0, 100000)] = _default("synthetic_chests")
    trainImplant: Annotated[int, WithinRange(0, 100000)] = _default("implant")
    trainImplantInto: pathlib.Path
    trainMcPasses: Annotated[int, WithinRange(MC_PASSES_MIN, 1000)] = _default("mc_passes")
    trainSeed: Annotated[int, WithinRange(0, 2**31 - 1)] = _default("seed")
    trainDevice: str = _default("device")
    trainWorkers: Annotated[int, WithinRange(0, 256)] = _default("workers")


class LungAISegWidget(PanelWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    REQUESTER = REQUESTER

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initPanel()
        self.logic = None

    def setup(self):
        from LungAICommon.qtjob import QtJobRunner

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungAISeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungAISegLogic()
        self.runner = QtJobRunner(self.ui.progressBar, self.ui.logTextEdit, self.onJobStateChanged)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.lungsButton.connect("clicked(bool)", self.onLungsButton)
        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.cancel)
        self.ui.segmentEditorButton.connect("clicked(bool)", self.onSegmentEditorButton)
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicomButton)
        self.ui.uncertaintyOpacitySlider.connect("valueChanged(double)", self.onOpacityChanged)
        self.ui.modelComboBox.connect("activated(int)", self.onModelActivated)
        self.setTrainingToolTips()
        self.setModelToolTip()
        self.initializeParameterNode()

    def setModelToolTip(self):
        """The Model choices and the large-tumour advice lungai segment's note and README give (one text, in lungai)."""
        from lungai.seg.resources import panel_model_tooltip

        self.ui.modelComboBox.toolTip = panel_model_tooltip()

    def setTrainingToolTips(self):
        """Each train-seg option's widget gets the command line's own help and default as its tooltip."""
        fields = {trainField(option): option for option in commands.PANEL_TRAIN_OPTIONS if option != "label"}
        for widget in vars(self.ui).values():
            property_ = getattr(widget, "property", None)
            option = fields.get(property_("SlicerParameterName") if callable(property_) else None)
            if option:
                widget.toolTip = commands.train_seg_help(option)

    def enter(self):
        self.initializeParameterNode()
        # back from the Segment Editor: the confidence tables say whether their segment was edited since
        nodes.refresh_confidence_tables(slicer.mrmlScene)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = default_ct_volume(slicer.mrmlScene)

    def observedInputs(self, p):
        """Placing, moving or deleting a seed point / resizing the ROI enables or disables Apply."""
        return [p.seedPoints, p.roi]

    def updateButtons(self, caller=None, event=None):
        p = self._parameterNode
        busy = self.busy
        self.lockInputs(busy)
        problem = self.logic.segmentationInputProblem(p) if p else "no parameter node"
        self.ui.applyButton.enabled = not busy and problem is None
        notes = self.logic.segmentationInputNotes(p) if p and problem is None else []
        self.ui.applyButton.toolTip = problem or "\n".join(
            ["Run the tumour segmentation (in the background)"] + [f"Warning: {note}" for note in notes])
        self.ui.lungsButton.enabled = not busy and p is not None and p.inputVolume is not None
        trainProblem = self.logic.trainingInputProblem(p) if p else "no parameter node"
        self.ui.trainButton.enabled = not busy and trainProblem is None
        self.ui.trainButton.toolTip = trainProblem or (
            f"Resume the training in {p.trainOutput} (same options as when it started); Cancel stops it"
            if self.logic.trainingResumes(p) else
            "Train in the background; Cancel stops it, and Start training resumes it later in the same folder")
        self.ui.cancelButton.enabled = busy
        self.ui.roiSelector.enabled = not busy and p is not None and p.mode == "roi"
        self.ui.seedMarkupsWidget.enabled = not busy and p is not None and p.mode == "seed"
        self.ui.noGrowCheckBox.enabled = not busy and p is not None and p.mode in ("seed", "roi")
        self.ui.modelPathLineEdit.enabled = not busy and p is not None and p.model == "folder"
        self.ui.mcPassesSpinBox.enabled = not busy and p is not None and p.method != "ensemble"
        self.ui.segmentEditorButton.enabled = p is not None and p.outputSegmentation is not None
        exportProblem = self.logic.exportDicomProblem(p) if p else "no parameter node"
        self.ui.exportDicomButton.enabled = not busy and exportProblem is None
        self.ui.exportDicomButton.toolTip = exportProblem or (
            "Write the result segments as DICOM SEG + RTSTRUCT referencing the CT's DICOM series")

    def onJobStateChanged(self, running):
        if self._parameterNode is not None:
            self.updateButtons()

    def onApplyButton(self):
        job = self.startJob("Tumour segmentation could not start.", self.logic.startSegmentation,
                            self.onSegmentationFinished, "segmentation")
        for note in self.logic.segmentationInputNotes(job.parameterNode) if job is not None else []:
            self.runner.log(f"Warning: {note}")

    def onLungsButton(self):
        self.startJob("Lung segmentation could not start.", self.logic.startLungs, self.onLungsFinished, "lungs")

    def onTrainButton(self):
        job = self.startJob("Training could not start.", self.logic.startTraining,
                            self.onTrainingFinished, "training")
        if job is not None and "--resume" in job.process.args:
            self.runner.log(self.logic.resumeMessage(job.parameterNode.trainOutput))

    def onSegmentationFinished(self, job):
        summary = self.logic.loadSegmentation(job.parameterNode, job)
        headline, details, review = self.logic.resultText(summary)
        self.ui.confidenceLabel.text = headline
        self.ui.confidenceLabel.styleSheet = "color: #c0392b;" if review else "color: #1e8449;"
        self.ui.detailsLabel.text = details
        self.runner.log(headline + " - " + details)
        self.logic.showResults(job.parameterNode, job.input("volume"))

    def onLungsFinished(self, job):
        message = self.logic.loadLungs(job.parameterNode, job)
        self.ui.detailsLabel.text = message
        self.runner.log(message)

    def onTrainingFinished(self, job):
        p = job.parameterNode
        p.model = "folder"
        p.modelDirectory = job.outputs
        self.runner.log(f"Model written to {job.outputs}; it is now the selected model.")

    def onModelActivated(self, index=None):
        """A Model chosen by the user (even the one shown): a saved scene's unknown Model is replaced."""
        self.logic.modelChosen(self._parameterNode)
        self.updateButtons()

    def onOpacityChanged(self, value):
        if self._parameterNode and self._parameterNode.uncertaintyVolume:
            slicer.util.setSliceViewerLayers(foregroundOpacity=value)

    def onSegmentEditorButton(self):
        p = self._parameterNode
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(p.outputSegmentation)
        if p.inputVolume:
            editor.setSourceVolumeNode(p.inputVolume)

    def onExportDicomButton(self):
        import qt

        from LungAICommon import install

        # the packages first: in a Slicer that cannot export (5.10's pydicom) the user is told before choosing a
        # folder (QA: the folder dialog came first, then the refusal), and a restart needed is asked before it too
        with slicer.util.tryWithErrorDisplay("DICOM export failed.", waitCursor=True):
            if not install.ensure("dicom", self.REQUESTER):
                return
        outDir = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Folder for the DICOM SEG + RTSTRUCT")
        if not outDir:
            return
        with slicer.util.tryWithErrorDisplay("DICOM export failed.", waitCursor=True):
            if install.last_note:                         # a newer highdicom than tested, used as it is
                self.runner.log("Note: " + install.last_note)
            paths = self.logic.exportDicom(self._parameterNode, pathlib.Path(outDir))
            for note in self.logic.exportNotes:
                self.runner.log("Note: " + note)
            self.runner.log("Written: " + ", ".join(str(path) for path in paths))


# the panel's control for lungai segment --no-grow (its .ui label, and the words its result banner gives for the option:
# panelSegmentWords) - QA slicer69: the banner told the panel's user to run "lungai segment --no-grow"
NO_GROW_LABEL = "Do not grow the box"


def panelSegmentWords(text: str) -> str:
    """``lungai segment``'s words for ``--no-grow`` in a result's review actions and notes as the panel's control
    (:data:`NO_GROW_LABEL`): "(lungai segment --no-grow: ..." as "(tick 'Do not grow the box' under Inputs: ...",
    "run again with --no-grow" as "run again with 'Do not grow the box' ticked"; a shipped model as its Model choice:
    "use --model lungai-seg-dynunet" as 'use Model "DynUNet (seed / ROI)"' (the large-tumour advice in the panel's
    words, :func:`lungai.seg.resources.large_tumour_advice` ``panel=True``, as the Model tooltip gives it).  QA
    slicer72: the default model's result of LUNG1-003's GTV (seed mode, the panel's defaults) told the panel's user to
    "use --model lungai-seg-dynunet (...; --model lungai-seg-routed runs it ...)", names no panel control has.  The
    words on typed coordinates (:data:`lungai.seg.preprocess.LPS_MM_RAS`, "(LPS mm; Slicer shows RAS: negate x and y)")
    are left out: the panel's seed / ROI come from its nodes (QA slicerfollow72)."""
    import re

    from lungai.seg.resources import PANEL_MODEL_LABELS

    from lungai.seg.preprocess import LPS_MM_RAS

    # the panel's seed / ROI come from its nodes (--scene-coordinates): never typed in the wrong convention
    text = text.replace(f" {LPS_MM_RAS}", "")
    text = text.replace("lungai segment --no-grow", f"tick '{NO_GROW_LABEL}' under Inputs")
    text = text.replace("--no-grow", f"'{NO_GROW_LABEL}' ticked")
    for name, label in PANEL_MODEL_LABELS.items():
        text = re.sub(rf"--model {re.escape(name)}(?![\w-])", f'Model "{label}"', text)
    return panelOptionWords(text)


# lungai segment's options that its review actions and notes name, as the panel's controls (PANEL_OPTION_WORDS):
# :func:`panelOptionWords` adds them where an option is named without them
PANEL_OPTION_WORDS = {"--roi": "mode ROI", "--seed-point": "mode seed", "--model": "Model",
                      "--mc-passes": "MC dropout passes", "--method": "Uncertainty method",
                      "--val-fraction": "Validation fraction under Training, Advanced"}
_PANEL_OPTION = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, PANEL_OPTION_WORDS)) + r")(?![\w-])")


def panelOptionWords(text: str) -> str:
    """A ``lungai segment`` option that a result's review action or note names without the panel's control (its
    words, :data:`PANEL_OPTION_WORDS`) gets them, in the style of the actions that give both ("(--roi; Segmentation
    panel: mode ROI)"): "(... --roi)" as "(... --roi; panel: mode ROI)"; an option outside brackets gets
    " (panel: ...)" after it (and its numbers) unless its clause names the panel already.  QA slicerfollow72: the
    banner's actions for a box too small / running on / in aerated lung or bone named only "(--roi)"."""
    def words(flags):
        return ", ".join(dict.fromkeys(PANEL_OPTION_WORDS[f] for f in flags))

    def inside(m):          # an innermost bracket naming options and no panel control
        body = m[1]
        flags = _PANEL_OPTION.findall(body)
        return f"({body}; panel: {words(flags)})" if flags and "panel" not in body else m[0]

    text = re.sub(r"\(([^()]*)\)", inside, text)
    bracket = [0] * (len(text) + 1)            # depth of brackets before each character
    for k, c in enumerate(text):
        bracket[k + 1] = bracket[k] + (c == "(") - (c == ")")
    out, last = [], 0
    for m in _PANEL_OPTION.finditer(text):
        if bracket[m.start()] > 0:
            continue
        end = m.end() + len(re.match(r"(?:[= ][-\d.,]*\d)?", text[m.end():])[0])   # its numbers
        clause = re.split(r"[.;\n]", text[m.end():], maxsplit=1)[0]
        if "panel" in clause:
            continue
        out += [text[last:end], f" (panel: {words([m[1]])})"]
        last = end
    return "".join(out) + text[last:]


def panelLabelWords(text: str) -> str:
    """train-seg's words for the tumour label in the panel's (its *Tumour label* field): "--label None" (no --label:
    any nonzero voxel is tumour) as "Tumour label 0 (any nonzero voxel)", "--label N" as "Tumour label N"; e.g. a
    resume's "--label 1 then, not given (any nonzero voxel) now" as "Tumour label 1 then, 0 (any nonzero voxel) now"."""
    import re

    def value(v):
        return v if v.isdigit() else "0 (any nonzero voxel)"

    given = r"(None|not given \(any nonzero voxel\)|\d+)"
    text = re.sub(rf"--label {given} then, {given} now",
                  lambda m: f"Tumour label {value(m[1])} then, {value(m[2])} now", text)
    text = re.sub(r"--label None\b", "Tumour label 0 (any nonzero voxel)", text)
    return re.sub(r"--label (\d+)", r"Tumour label \1", text)


def panelTrainWords(text: str) -> str:
    """train-seg's words for its options in the panel's: "--resume with a larger --epochs (e.g. --epochs N" as
    "Start training with a larger Epochs (Advanced; e.g. N", "-o folder" as "output folder"."""
    import re

    text = re.sub(r"--resume with a larger --epochs \(e\.g\. --epochs (\d+)",
                  r"Start training with a larger Epochs (Advanced; e.g. \1", text)
    text = re.sub(r"--epochs (\d+)", r"Epochs \1", text)
    return text.replace("-o folder", "output folder")


class LungAISegLogic(ScriptedLoadableModuleLogic):
    """Exports inputs, builds ``lungai`` commands, loads outputs as nodes (through :mod:`lungai.scene.nodes`,
    the same path as the console API :mod:`lungai.scene.segment`)."""

    # parameters renamed with the Advanced training options (d5b61e2): {name in older saved scenes: name now}
    RENAMED_PARAMETERS = {"architecture": "trainArch", "members": "trainMembers", "epochs": "trainEpochs"}
    # Model choices of older saved scenes: {label then: label now of the same shipped model} ("small nodules",
    # lungai-seg-unet-ensemble, is "default" since 97659617)
    RENAMED_MODELS = {"small nodules": "default"}
    # where a saved Model that is no choice now is kept (the Model combo box cannot show it) until the user chooses one
    UNKNOWN_MODEL_PARAMETER = "modelNotAvailable"
    exportNotes = ()        # what the last exportDicom said (an empty segment left out), for the panel's log

    def getParameterNode(self):
        node = super().getParameterNode()
        self.migrateParameters(node)
        return LungAISegParameterNode(node)

    @classmethod
    def migrateParameters(cls, node):
        """A scene saved before the rename keeps its training choices: an old parameter's value moves to the new
        name (when that one is not set yet and the value is valid there); the old parameter is removed."""
        for old, new in cls.RENAMED_PARAMETERS.items():
            value = node.GetParameter(old)
            if not value:
                continue
            valid = value in commands.train_seg_choices("arch") if new == "trainArch" else value.strip().isdigit()
            if valid and not node.GetParameter(new):
                node.SetParameter(new, value)
            node.UnsetParameter(old)
        model = node.GetParameter("model")
        if model and model not in cls.modelLabels():
            if model in cls.RENAMED_MODELS:
                logging.info(f'LungAISeg: Model "{model}" of the saved scene is now "{cls.RENAMED_MODELS[model]}"')
                node.SetParameter("model", cls.RENAMED_MODELS[model])
            else:   # not run as some other model: said by segmentationInputProblem until a Model is chosen
                node.SetParameter(cls.UNKNOWN_MODEL_PARAMETER, model)
                node.SetParameter("model", "default")

    @staticmethod
    def modelLabels():
        """The Model choices: the shipped models' labels and "folder"."""
        from lungai.seg.resources import PANEL_MODEL_LABELS

        return [*PANEL_MODEL_LABELS.values(), "folder"]

    def unknownModelProblem(self, p):
        """A saved scene's Model that this version does not have (not run as another model), else None."""
        unknown = p.parameterNode.GetParameter(self.UNKNOWN_MODEL_PARAMETER) if p.parameterNode else ""
        if not unknown:
            return None
        choices = ", ".join(f'"{label}"' for label in self.modelLabels())
        return (f'Model "{unknown}" of the saved scene is not a model of this version of LungAI: choose one in '
                f"Model ({choices}; its tooltip says which to use)")

    @classmethod
    def modelChosen(cls, p):
        """The user chose a Model: a saved scene's unknown Model no longer stops Apply."""
        if p is not None and p.parameterNode and p.parameterNode.GetParameter(cls.UNKNOWN_MODEL_PARAMETER):
            p.parameterNode.UnsetParameter(cls.UNKNOWN_MODEL_PARAMETER)

    # ---------------------------------------------------------------- validation
    def segmentationInputProblem(self, p):
        """None when the tumour segmentation can run, else what is missing (shown as tooltip)."""
        if p.inputVolume is None:
            return "Select a CT volume"
        if p.mode == "roi" and p.roi is None:
            return "Select or place an ROI box (mode 'roi')"
        if p.mode == "roi":
            try:    # a new ROI never placed (all-zero bounds at 0, 0, 0) would segment an empty box
                nodes.check_roi_placed(p.roi)
            except InputError as exc:
                return f"{exc.problem}: {exc.fix}"
        if p.mode == "seed" and (p.seedPoints is None or p.seedPoints.GetNumberOfDefinedControlPoints() < 1):
            return "Place a seed point inside the tumour (mode 'seed')"
        problem = self.unknownModelProblem(p)
        if problem:
            return problem
        if p.model == "folder":
            problem = self.modelFolderProblem(p.modelDirectory, p.method)
            if problem:
                return problem
        try:  # a click outside the CT: said here in RAS, not by the child in LPS
            if p.mode == "seed":
                return nodes.seed_outside_problem(p.inputVolume, p.seedPoints)
            if p.mode == "roi":
                return nodes.roi_outside_problem(p.inputVolume, p.roi)
        except InputError as exc:   # a non-linear transform on the CT
            return f"{exc.problem}: {exc.fix}"
        return None

    @staticmethod
    def modelFolderProblem(folder, method=commands.SEG_METHOD_AUTO):
        """None when ``lungai segment --model FOLDER [--method M]`` accepts the model folder (the CLI's own check,
        without loading weights: lungai.seg.model_meta.check_model_folder - model.json, a finished training, the
        member files, the method for its members), else what is wrong and what to do in the panel."""
        from lungai.seg import model_meta

        resume = (f"to finish it, choose {folder} as the Output model folder (Training) and press Start training on "
                  "that folder to resume (the same options as its first run)")
        # the CLI's fixes name its flags: the panel names its own controls (by the problem's key, not its text)
        fixes = {model_meta.STOPPED_TRAINING: resume, model_meta.INCOMPLETE: resume,
                 model_meta.IN_TRAINING: "wait until that training ends, or select another model",
                 model_meta.ONE_MEMBER_ENSEMBLE_KEY: "set Uncertainty method to auto or mc-dropout, or train a model "
                                                     "with Ensemble members (--members) 2 or more",
                 model_meta.ONE_MEMBER_NO_DROPOUT_KEY: "train the model again with Ensemble members (--members) 2 or "
                                                       "more, or with Dropout (--dropout, Training: Advanced) above 0"}
        try:    # an unreadable folder / model.json: said, never raised from updateButtons (every scene event)
            if not (commands.is_set(folder) and pathlib.Path(folder).is_dir()):
                return "Choose the model folder (or select the default model)"
            model_meta.read_meta(folder)
        except InputError as exc:
            key = getattr(exc, "key", None)
            if key == model_meta.IN_TRAINING:   # its fix goes on: how to clear the lock of a run on another computer
                return f"{exc.problem}: " + exc.fix.replace(model_meta.TRAINING_WAIT, fixes[key], 1)
            return f"{exc.problem}: " + fixes.get(key, "choose a folder written by Start "
                                                  "training (lungai train-seg), or select one of the shipped models")
        except OSError as exc:
            return f"cannot read {folder}: {exc.strerror or exc}"
        try:
            model_meta.check_model_folder(folder, None if method == commands.SEG_METHOD_AUTO else method)
        except InputError as exc:
            return f"{exc.problem}: {fixes.get(getattr(exc, 'key', None), exc.fix)}"
        except OSError as exc:
            return f"cannot read {folder}: {exc.strerror or exc}"
        return None

    def segmentationInputNotes(self, p):
        """Warnings on inputs the segmentation runs with, but not as drawn (Apply's tooltip, the log): several
        placed seed points (the first placed one is the seed), a rotated ROI (its axis-aligned bounding box)."""
        if p.mode == "seed":
            note = nodes.seed_note(p.seedPoints)
        elif p.mode == "roi":
            note = nodes.roi_rotation_note(p.roi)
        else:
            note = None
        return [note] if note else []

    def trainingInputProblem(self, p):
        """None when Start training can run, else what is missing or wrong (shown as tooltip): the folders, then
        the Advanced options as train-seg checks them, then for a resume the options the interrupted run recorded.
        A folder that cannot be read is said ("cannot read FOLDER: Permission denied"), never raised from
        updateButtons (every scene event)."""
        try:
            return self._trainingInputProblem(p)
        except OSError as exc:
            return f"cannot read {exc.filename or p.trainOutput}: {exc.strerror or exc}"

    def _trainingInputProblem(self, p):
        for value, what in ((p.trainImages, "images"), (p.trainMasks, "masks")):
            if not (commands.is_set(value) and pathlib.Path(value).is_dir()):
                return f"Choose the training {what} folder"
        if not commands.is_set(p.trainOutput):
            return "Choose an output folder for the model"
        busy = commands.training_busy(p.trainOutput)
        if busy:
            from lungai.seg.model_meta import TRAINING_WAIT

            return f"{busy.problem}: " + busy.fix.replace(TRAINING_WAIT, "wait until it ends, or choose another "
                                                          "output folder", 1)
        from lungai.cli.seg import check_train_output

        try:   # train-seg's own check of -o: a new or empty folder, or its own model / checkpoints there
            check_train_output(pathlib.Path(p.trainOutput))
        except InputError as exc:
            problem = exc.problem.replace(f"-o {pathlib.Path(p.trainOutput)}", f"The output folder {p.trainOutput}", 1)
            return f"{problem}: choose a new (or empty) output folder for the model"
        return self.trainingOptionsProblem(p)

    @staticmethod
    def trainingOptions(p):
        """{train-seg option (its CLI name): the panel's value} of the training section (Advanced included)."""
        return {option: getattr(p, trainField(option)) for option in commands.PANEL_TRAIN_OPTIONS}

    def trainingCommand(self, p, resume=False):
        """The ``lungai train-seg`` command of the panel: an option only where it differs from the CLI's default."""
        return commands.train_segmentation(p.trainImages, p.trainMasks, p.trainOutput, self.trainingOptions(p),
                                           resume=resume)

    def trainingOptionsProblem(self, p):
        """None when train-seg accepts the options (checked as train-seg checks them, before it reads any data:
        :func:`lungai.cli.seg.train_config`), else the problem and its fix.  For a resume (:meth:`trainingResumes`),
        also the options that differ from those the interrupted run recorded, each named with both values."""
        import contextlib
        import io

        from lungai.cli.seg import finished_model_note, resume_settings, train_config, train_seg_parser
        from lungai.seg.settings import MEMBERS_DISAGREE, check_settings

        try:
            args = self.trainingCommand(p, resume=self.trainingResumes(p))
        except ValueError as exc:
            return str(exc)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                parsed = train_seg_parser().parse_args(args[1:])
        except SystemExit:
            return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else "invalid options"
        try:
            train_config(parsed)
            if parsed.resume:
                check_settings(pathlib.Path(p.trainOutput) / commands.TRAIN_CHECKPOINTS, resume_settings(parsed))
                done = finished_model_note(pathlib.Path(p.trainOutput), parsed)   # train-seg --resume's own rule
                if done:
                    return panelTrainWords(done)
        except InputError as exc:
            problem, fix = panelLabelWords(exc.problem), panelLabelWords(exc.fix)
            if self.trainingResumes(p) and MEMBERS_DISAGREE in problem:     # no options resume it
                return f"Cannot resume: {problem}: {fix}"
            if self.trainingResumes(p) and "--resume" in problem:
                return (f"Cannot resume: {problem}. Set these options (Advanced) back to the interrupted run's, "
                        "or choose a new output folder to start anew")
            return f"{problem}: {fix}"
        except (OSError, ValueError) as exc:      # an unreadable checkpoints/settings.json or --patients file
            return f"Cannot check the options: {exc}"
        return None

    @staticmethod
    def trainingResumes(p):
        """The output folder holds an interrupted (killed, cancelled) training, or a finished model: Start training
        resumes it (``--resume``; train-seg refuses it when the options differ from those it started with; on a
        finished model it trains on only with a larger Epochs, else "nothing to do":
        :func:`lungai.cli.seg.finished_model_note`, which :meth:`trainingOptionsProblem` asks)."""
        return commands.interrupted_training(p.trainOutput) or (
            commands.trained_model_complete(p.trainOutput) and commands.training_busy(p.trainOutput) is None)

    @staticmethod
    def resumeMessage(folder):
        return (f"Resuming the training in {folder} (to start anew, choose a new output folder; "
                "changed options are refused, except members, MC passes, and - with a constant learning rate - "
                "epochs no fewer than the members have run)")

    # ---------------------------------------------------------------- commands
    @staticmethod
    def newWorkDirectory(prefix):
        return nodes.new_work_folder(prefix, slicer.app.temporaryPath)

    @staticmethod
    def modelChoice(p):
        """What ``--model`` gets: None (the default model), a shipped model's name (the large-tumour model, the
        choice between both, the DynUNet model, the default routed to the DynUNet on large tumours), or the folder."""
        from lungai.seg.resources import DEFAULT_MODEL_NAME, PANEL_MODEL_LABELS

        shipped = {label: None if name == DEFAULT_MODEL_NAME else name for name, label in PANEL_MODEL_LABELS.items()}
        if p.model == "folder":
            return p.modelDirectory
        if p.model not in shipped:     # never some other model than the one chosen
            raise ValueError(f'Model "{p.model}" is not a model of this version of LungAI: choose one in Model')
        return shipped[p.model]

    def segmentationCommand(self, p, workDir):
        """Export the CT (world coordinates, as the seed / ROI) and build the ``lungai segment`` command; the CT node's
        patient names (PatientID, file / node name) as ``--patient``: a model trained / validated on that patient says
        its result is in-sample (the work file ``ct.nrrd`` names no patient)."""
        from lungai.scene.dicom import volume_patient_names

        problem = self.segmentationInputProblem(p)
        if problem:
            raise ValueError(problem)
        for note in self.segmentationInputNotes(p):
            logging.warning(note)
        ct = nodes.export_volume(p.inputVolume, self.ctWorkFile(workDir))
        seed = nodes.point_to_lps(p.seedPoints) if p.mode == "seed" else None
        roi = nodes.roi_to_lps(p.roi) if p.mode == "roi" else None
        return commands.segment(ct, workDir / "output", model_dir=self.modelChoice(p),
                                method=p.method, mc_passes=p.mcPasses, seed_point_lps=seed, roi_lps=roi,
                                patients=volume_patient_names(p.inputVolume),
                                no_grow=p.noGrow and p.mode in ("seed", "roi"),   # automatic: no box to grow
                                scene_coordinates=True)     # the seed / ROI converted from its nodes here

    @staticmethod
    def ctWorkFile(workDir):
        """The CT's file in a job's work folder for its ``lungai segment`` / ``lungai lungs`` child: an uncompressed
        NRRD (:func:`lungai.scene.nodes.export_volume`, as Lung Radiomics'; a ``.nii.gz`` is gzipped by its name).
        QA slicerfollow67: gzipping LUNG1-003's CT took 1.8-3.5 s on the GUI thread before the job started, and the
        child as long again to read it back; the same voxels and geometry (spacing in double precision)."""
        return pathlib.Path(workDir) / f"ct{nodes.EXPORT_SUFFIX}"

    def _job(self, p, prefix, build, outputs, process=lambda args, output: LungAIProcess(args)):
        workDir = self.newWorkDirectory(prefix)
        try:
            args = build(workDir)
        except BaseException:
            nodes.remove_work_folder(workDir)
            raise
        return PanelJob(process(args, outputs(workDir)), outputs(workDir), workDir=workDir, parameterNode=p,
                        inputs={"volume": p.inputVolume, "segmentation": p.outputSegmentation},
                        fileNames={self.ctWorkFile(workDir): p.inputVolume.GetName()})

    @needs("segmentation")
    def startSegmentation(self, p):
        # the uncertainty map (a float image of the CT's size) and result.json read in the background once the
        # command has finished, not by loadSegmentation on the GUI thread (QA slicer71: 0.55-0.75 s, LUNG1-003)
        return self._job(p, "segment", lambda d: self.segmentationCommand(p, d), lambda d: d / "output",
                         lambda args, output: ReadingProcess(LungAIProcess(args),
                                                             lambda: nodes.read_segment_files(output)))

    @needs("lungs")
    def startLungs(self, p):
        if p.inputVolume is None:
            raise ValueError("Select a CT volume")
        # the output segmentation's lungs that a new run may not replace (the user's, edited since) are said before
        # it runs, never a "Right lung (2)" that nothing uses (nodes.lungs_to_replace)
        nodes.lungs_to_replace(p.outputSegmentation, p.inputVolume)
        return self._job(p, "lungs", lambda d: ["lungs", str(nodes.export_volume(p.inputVolume, self.ctWorkFile(d))),
                                                 "-o", str(d / "lungs.nii.gz")], lambda d: d / "lungs.nii.gz")

    @needs("segmentation")
    def startTraining(self, p):
        problem = self.trainingInputProblem(p)
        if problem:
            raise ValueError(problem)
        resume = self.trainingResumes(p)
        if resume:
            logging.info(self.resumeMessage(p.trainOutput))
        args = self.trainingCommand(p, resume=resume)
        return PanelJob(LungAIProcess(args), pathlib.Path(p.trainOutput), parameterNode=p)  # the user's folder: kept

    # ---------------------------------------------------------------- outputs
    def loadSegmentation(self, p, job):
        """Tumour segment + uncertainty volume (+ candidates) into the scene for the inputs captured when the
        job started; returns the result.json summary.  Deletes the job's temporary files.  The output
        segmentation is reused only when it belongs to the job's CT (:func:`lungai.scene.nodes.volume_segmentation`),
        else a new node "<CT> tumour" becomes the output."""
        try:
            read = getattr(job.process, "read_result", None)   # read in the background (ReadingProcess)
            # an output segmentation removed during the run: the tumour goes to a new "<CT> tumour" (job.output)
            out = nodes.import_segment_outputs(slicer.mrmlScene, job.outputs, job.input("volume"),
                                               seg_node=job.output("segmentation"), files=read() if read else None)
        finally:
            job.finish()
        p.outputSegmentation, p.uncertaintyVolume = out["segmentation"], out["uncertainty"]
        removed = job.removedOutputNote("segmentation", out["segmentation"])
        if removed:         # said in the banner with the result's notes (result.json's, and the tags, unchanged)
            return {**out["result"], "notes": [*(out["result"].get("notes") or []), removed]}
        return out["result"]

    @staticmethod
    def resultText(summary):
        """(headline, details, needs review) of a tumour result for the panel's banner
        (:func:`lungai.scene.results.describe_segment_result`), ``lungai segment``'s options named as the panel's
        controls (:func:`panelSegmentWords`)."""
        headline, details, review = results.describe_segment_result(summary)
        return panelSegmentWords(headline), panelSegmentWords(details), review

    def loadLungs(self, p, job):
        """"Right lung" / "Left lung" segments; returns "Right lung N ml, Left lung M ml" and a line "warning: ..."
        per warning ``lungai lungs`` printed (an uncertain right/left label: the body cut at the side with no trachea
        found; no trachea found: airways not removed) and per way the scan cuts the lungs (field of view, first / last slice), and for a map with one lung
        label missing (right/left label uncertain), re-derived from its label file (:func:`results.lungs_warnings`),
        then a line "note: ..." per note it printed (:func:`results.printed_notes`) and a note when it replaced an earlier run's lungs in the output segmentation
        (:func:`nodes.lungs_to_replace`)."""
        replaced = []
        try:
            printed = [job.errorMessage(line) for line in getattr(job.process, "lines", ())]   # the user's node names
            # its printed warnings are not re-derived from the label file (nodes.import_lung_outputs' printed)
            segNode, volumes, cut = nodes.import_lung_outputs(slicer.mrmlScene, job.outputs, job.input("volume"),
                                                              seg_node=job.output("segmentation"), notes=replaced,
                                                              checked=True, printed=printed)   # checked by startLungs
        finally:
            job.finish()
        replaced += [note for note in [job.removedOutputNote("segmentation", segNode)] if note]
        p.outputSegmentation = segNode
        return results.describe_lungs_result(volumes, results.lungs_warnings(printed, cut),
                                             results.printed_notes(printed) + replaced)

    def exportDicomProblem(self, p):
        """None when the results can be exported as DICOM, else what is missing (shown as tooltip)."""
        if p.outputSegmentation is None:
            return "No result segmentation yet: segment the lungs or the tumour first"
        if p.inputVolume is None:
            return "Select the CT volume the result belongs to"
        return None

    def exportDicom(self, p, outDir, ctSource=None):
        """The result segments as ``<name>.seg.dcm`` + ``<name>.rtstruct.dcm`` in ``outDir``, referencing the CT's
        DICOM series (from Slicer's DICOM database, or ``ctSource``: its DICOM folder / files).  A CT not loaded
        from DICOM raises InputError with what to do.  Returns the written paths; ``self.exportNotes``: what the
        export said (an empty segment left out), for the panel's log."""
        import warnings

        from lungai.errors import InputNote
        from lungai.scene.dicom import export_segments_dicom

        self.exportNotes = []
        problem = self.exportDicomProblem(p)
        if problem:
            raise ValueError(problem)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputNote)
            paths = export_segments_dicom(slicer.mrmlScene, p.inputVolume, p.outputSegmentation, pathlib.Path(outDir),
                                          ct_source=ctSource)
        self.exportNotes = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
        for w in caught:            # any other warning: as it was raised
            if not issubclass(w.category, InputNote):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return paths

    def showResults(self, p, volume=None):
        """CT below, uncertainty as a colour overlay with a legend, segmentation in 2D and 3D."""
        slicer.util.setSliceViewerLayers(background=volume or p.inputVolume, foreground=p.uncertaintyVolume,
                                         foregroundOpacity=p.uncertaintyOpacity, fit=True)
        colorLogic = slicer.modules.colors.logic()
        if p.uncertaintyVolume is not None and hasattr(colorLogic, "AddDefaultColorLegendDisplayNode"):
            legend = colorLogic.AddDefaultColorLegendDisplayNode(p.uncertaintyVolume)
            legend.SetTitleText(nodes.UNCERTAINTY_LEGEND)
        if p.outputSegmentation is not None:
            p.outputSegmentation.CreateClosedSurfaceRepresentation()

    # ---------------------------------------------------------------- scripting / self-test
    def run(self, startJob, p, timeout=1800):
        """Run a job to completion (Python console, self-tests); the panel polls it instead."""
        return run_job(startJob, p, timeout, requester=REQUESTER)


class LungAISegTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_lungs_on_sample()
        self.setUp()
        self.test_tumour_on_sample()

    def _sample(self):
        self.delayDisplay("Loading the Lung AI sample (generated on first use)")
        ctNode = sampledata.load_into_slicer()
        self.assertIsNotNone(ctNode)
        logic = LungAISegLogic()
        p = logic.getParameterNode()
        p.inputVolume = ctNode
        return logic, p

    def test_lungs_on_sample(self):
        require_job_packages(self, LungAISegLogic.startLungs, requester=REQUESTER)   # testing mode: installs too
        logic, p = self._sample()
        outputDir = logic.run(logic.startLungs, p)
        message = logic.loadLungs(p, outputDir)
        self.assertIn("Right lung", message)
        names = [p.outputSegmentation.GetSegmentation().GetNthSegment(i).GetName()
                 for i in range(p.outputSegmentation.GetSegmentation().GetNumberOfSegments())]
        self.assertEqual(names, ["Right lung", "Left lung"])
        self.delayDisplay("Lungs: test passed")

    def test_tumour_on_sample(self):
        require_job_packages(self, LungAISegLogic.startSegmentation, requester=REQUESTER)
        logic, p = self._sample()
        p.mode = "seed"  # a click on the tumour, as a user would place it
        p.seedPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Tumour seed")
        p.seedPoints.AddControlPoint(*sampledata.tumour_seed_ras(sampledata.sample_folder()))
        p.method = "mc-dropout"
        p.mcPasses = 4
        outputDir = logic.run(logic.startSegmentation, p)
        summary = logic.loadSegmentation(p, outputDir)
        self.assertTrue(0.0 <= float(summary["confidence"]) <= 1.0)
        self.assertEqual(p.outputSegmentation.GetSegmentation().GetNthSegment(0).GetName(), "Tumor")
        self.assertIsNotNone(p.uncertaintyVolume.GetImageData())
        logging.info("LungAISeg self-test: %s", LungAISegLogic.resultText(summary)[0])
        self.delayDisplay("Tumour: test passed")
