"""Lung AI Segmentation: lungs and lung tumours on chest CT, with uncertainty and a case confidence.

Thin Slicer shell over the headless ``lungai`` core.  The widget only collects inputs and shows
results; the logic exports the input nodes to files, runs ``lungai segment`` / ``lungai lungs`` /
``lungai train-seg`` as a child process (progress bar, Cancel, Slicer stays responsive) and loads
the outputs back as nodes.  Importing this file imports nothing heavy (a test checks it).
"""

import logging
import pathlib
import tempfile
from typing import Annotated

import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LungAICommon import commands, install, results, sampledata
from LungAICommon.process import LungAIProcess, run_job

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
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    sampledata.register(icon_path=str(pathlib.Path(__file__).parent / "Resources" / "Icons" / "LungAISeg.png"))


@parameterNodeWrapper
class LungAISegParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    mode: Annotated[str, Choice(["automatic", "roi", "seed"])] = "seed"  # the shipped model over-detects in automatic mode (README)
    roi: vtkMRMLMarkupsROINode
    seedPoints: vtkMRMLMarkupsFiducialNode
    model: Annotated[str, Choice(["default", "folder"])] = "default"
    modelDirectory: pathlib.Path
    method: Annotated[str, Choice(list(commands.SEG_METHODS))] = "ensemble"
    mcPasses: Annotated[int, WithinRange(2, 100)] = 20
    outputSegmentation: vtkMRMLSegmentationNode
    uncertaintyVolume: vtkMRMLScalarVolumeNode
    uncertaintyOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    trainImages: pathlib.Path
    trainMasks: pathlib.Path
    trainOutput: pathlib.Path
    architecture: Annotated[str, Choice(list(commands.SEG_ARCHITECTURES))] = "unet"
    members: Annotated[int, WithinRange(1, 10)] = 3
    epochs: Annotated[int, WithinRange(1, 2000)] = 20


class LungAISegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.runner = None

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
        self.ui.uncertaintyOpacitySlider.connect("valueChanged(double)", self.onOpacityChanged)
        self.initializeParameterNode()

    def cleanup(self):
        if self.runner is not None:
            self.runner.cancel()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

    def updateButtons(self, caller=None, event=None):
        p = self._parameterNode
        busy = self.runner is not None and self.runner.running
        problem = self.logic.segmentationInputProblem(p) if p else "no parameter node"
        self.ui.applyButton.enabled = not busy and problem is None
        self.ui.applyButton.toolTip = problem or "Run the tumour segmentation (in the background)"
        self.ui.lungsButton.enabled = not busy and p is not None and p.inputVolume is not None
        trainProblem = self.logic.trainingInputProblem(p) if p else "no parameter node"
        self.ui.trainButton.enabled = not busy and trainProblem is None
        self.ui.trainButton.toolTip = trainProblem or "Train in the background; Cancel stops it"
        self.ui.cancelButton.enabled = busy
        self.ui.roiSelector.enabled = p is not None and p.mode == "roi"
        self.ui.seedMarkupsWidget.enabled = p is not None and p.mode == "seed"
        self.ui.modelPathLineEdit.enabled = p is not None and p.model == "folder"
        self.ui.mcPassesSpinBox.enabled = p is not None and p.method == "mc-dropout"
        self.ui.segmentEditorButton.enabled = p is not None and p.outputSegmentation is not None

    def onJobStateChanged(self, running):
        self.updateButtons()

    def _start(self, message, startJob, onFinished, title):
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            if not install.ensure(self.logic.FEATURES[title], REQUESTER):
                return
            job, outputDir = startJob(self._parameterNode)
            self.runner.start(job, lambda finished: self._finish(finished, outputDir, onFinished), title=title)

    def _finish(self, job, outputDir, onFinished):
        if job.cancelled:
            return
        if not job.succeeded:
            slicer.util.errorDisplay(f"Lung AI failed: {job.error_message()}", detailedText="\n".join(job.lines))
            return
        with slicer.util.tryWithErrorDisplay("Could not load the results.", waitCursor=True):
            onFinished(outputDir)

    def onApplyButton(self):
        self._start("Tumour segmentation could not start.", self.logic.startSegmentation,
                    self.onSegmentationFinished, "segmentation")

    def onLungsButton(self):
        self._start("Lung segmentation could not start.", self.logic.startLungs, self.onLungsFinished, "lungs")

    def onTrainButton(self):
        self._start("Training could not start.", self.logic.startTraining, self.onTrainingFinished, "training")

    def onSegmentationFinished(self, outputDir):
        summary = self.logic.loadSegmentation(self._parameterNode, outputDir)
        headline, details, review = results.describe_segment_result(summary)
        self.ui.confidenceLabel.text = headline
        self.ui.confidenceLabel.styleSheet = "color: #c0392b;" if review else "color: #1e8449;"
        self.ui.detailsLabel.text = details
        self.runner.log(headline + " - " + details)
        self.logic.showResults(self._parameterNode)

    def onLungsFinished(self, outputDir):
        message = self.logic.loadLungs(self._parameterNode, outputDir)
        self.ui.detailsLabel.text = message
        self.runner.log(message)

    def onTrainingFinished(self, outputDir):
        self._parameterNode.model = "folder"
        self._parameterNode.modelDirectory = self._parameterNode.trainOutput
        self.runner.log(f"Model written to {self._parameterNode.trainOutput}; it is now the selected model.")

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


class LungAISegLogic(ScriptedLoadableModuleLogic):
    """Exports inputs, builds ``lungai`` commands, loads outputs as nodes."""

    FEATURES = {"segmentation": "segmentation", "lungs": "lungs", "training": "segmentation"}

    def getParameterNode(self):
        return LungAISegParameterNode(super().getParameterNode())

    # ---------------------------------------------------------------- validation
    def segmentationInputProblem(self, p):
        """None when the tumour segmentation can run, else what is missing (shown as tooltip)."""
        if p.inputVolume is None:
            return "Select a CT volume"
        if p.mode == "roi" and p.roi is None:
            return "Select or place an ROI box (mode 'roi')"
        if p.mode == "seed" and (p.seedPoints is None or p.seedPoints.GetNumberOfControlPoints() < 1):
            return "Place a seed point inside the tumour (mode 'seed')"
        if p.model == "folder" and not (commands.is_set(p.modelDirectory) and pathlib.Path(p.modelDirectory).is_dir()):
            return "Choose the model folder (or select the default model)"
        return None

    def trainingInputProblem(self, p):
        for value, what in ((p.trainImages, "images"), (p.trainMasks, "masks")):
            if not (commands.is_set(value) and pathlib.Path(value).is_dir()):
                return f"Choose the training {what} folder"
        if not commands.is_set(p.trainOutput):
            return "Choose an output folder for the model"
        return None

    # ---------------------------------------------------------------- commands
    @staticmethod
    def newWorkDirectory(prefix):
        return pathlib.Path(tempfile.mkdtemp(prefix=f"lungai-{prefix}-", dir=slicer.app.temporaryPath))

    def segmentationCommand(self, p, workDir):
        from LungAICommon.nodes import export_volume

        problem = self.segmentationInputProblem(p)
        if problem:
            raise ValueError(problem)
        ct = export_volume(p.inputVolume, workDir / "ct.nii.gz")
        seed = roi = None
        if p.mode == "seed":
            position = [0.0, 0.0, 0.0]
            p.seedPoints.GetNthControlPointPositionWorld(0, position)
            seed = commands.ras_to_lps(position)
        elif p.mode == "roi":
            bounds = [0.0] * 6
            p.roi.GetRASBounds(bounds)
            roi = commands.ras_bounds_to_lps_corners(bounds)
        return commands.segment(ct, workDir / "output", model_dir=p.modelDirectory if p.model == "folder" else None,
                                method=p.method, mc_passes=p.mcPasses, seed_point_lps=seed, roi_lps=roi)

    def startSegmentation(self, p):
        workDir = self.newWorkDirectory("segment")
        return LungAIProcess(self.segmentationCommand(p, workDir)), workDir / "output"

    def startLungs(self, p):
        from LungAICommon.nodes import export_volume

        workDir = self.newWorkDirectory("lungs")
        ct = export_volume(p.inputVolume, workDir / "ct.nii.gz")
        return LungAIProcess(["lungs", str(ct), "-o", str(workDir / "lungs.nii.gz")]), workDir

    def startTraining(self, p):
        problem = self.trainingInputProblem(p)
        if problem:
            raise ValueError(problem)
        args = commands.train_segmentation(p.trainImages, p.trainMasks, p.trainOutput, p.architecture,
                                           p.members, p.epochs)
        return LungAIProcess(args), pathlib.Path(p.trainOutput)

    # ---------------------------------------------------------------- outputs
    def loadSegmentation(self, p, outputDir):
        """Tumour segment + uncertainty volume into the scene; returns the result.json summary."""
        from LungAICommon.nodes import load_candidates, load_segmentation_outputs

        summary = results.read_segment_result(outputDir)
        segNode, _, uncNode = load_segmentation_outputs(slicer.mrmlScene, outputDir, p.inputVolume,
                                                        seg_node=p.outputSegmentation)
        load_candidates(slicer.mrmlScene, summary, p.inputVolume.GetName())   # automatic mode, > 1 region
        for key in ("confidence", "needs_review", "review_threshold", "tumor_volume_ml", "method"):
            segNode.SetAttribute(f"LungAI.{key}", str(summary[key]))
        p.outputSegmentation, p.uncertaintyVolume = segNode, uncNode
        return summary

    def loadLungs(self, p, outputDir):
        import SimpleITK as sitk
        from lungai import mrml
        from lungai.io import read_mask

        ref = mrml.image_from_volume_node(p.inputVolume)
        labels = read_mask(pathlib.Path(outputDir) / "lungs.nii.gz", reference=ref)
        segNode = p.outputSegmentation
        volumes = {}
        for value, name in ((1, "Right lung"), (2, "Left lung")):
            mask = sitk.Cast(labels == value, sitk.sitkUInt8)
            segNode, _ = mrml.mask_to_segment(slicer.mrmlScene, mask, name, seg_node=segNode,
                                              reference_volume_node=p.inputVolume)
            stats = sitk.StatisticsImageFilter()
            stats.Execute(mask)
            volumes[name] = stats.GetSum() * _voxelMl(mask)
        p.outputSegmentation = segNode
        return ", ".join(f"{name} {ml:.0f} ml" for name, ml in volumes.items())

    def showResults(self, p):
        """CT below, uncertainty as a colour overlay with a legend, segmentation in 2D and 3D."""
        slicer.util.setSliceViewerLayers(background=p.inputVolume, foreground=p.uncertaintyVolume,
                                         foregroundOpacity=p.uncertaintyOpacity, fit=True)
        colorLogic = slicer.modules.colors.logic()
        if p.uncertaintyVolume is not None and hasattr(colorLogic, "AddDefaultColorLegendDisplayNode"):
            legend = colorLogic.AddDefaultColorLegendDisplayNode(p.uncertaintyVolume)
            legend.SetTitleText("Tumour uncertainty")
        if p.outputSegmentation is not None:
            p.outputSegmentation.CreateClosedSurfaceRepresentation()

    # ---------------------------------------------------------------- scripting / self-test
    def run(self, startJob, p, timeout=1800):
        """Run a job to completion (Python console, self-tests); the panel polls it instead."""
        return run_job(startJob, p, timeout)


def _voxelMl(img):
    sx, sy, sz = img.GetSpacing()
    return sx * sy * sz / 1000.0


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
        logic, p = self._sample()
        outputDir = logic.run(logic.startLungs, p)
        message = logic.loadLungs(p, outputDir)
        self.assertIn("Right lung", message)
        names = [p.outputSegmentation.GetSegmentation().GetNthSegment(i).GetName()
                 for i in range(p.outputSegmentation.GetSegmentation().GetNumberOfSegments())]
        self.assertEqual(names, ["Right lung", "Left lung"])
        self.delayDisplay("Lungs: test passed")

    def test_tumour_on_sample(self):
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
        logging.info("LungAISeg self-test: %s", results.describe_segment_result(summary)[0])
        self.delayDisplay("Tumour: test passed")
