"""Multimodal Predict: 3D Slicer scripted module (thin shell over the headless ``lungai`` core).

The widget only collects inputs and shows results; the logic converts MRML nodes to core
objects through :mod:`lungai.mrml` and calls :mod:`lungai`.  Nothing heavy is imported at
module import time.
"""

import logging

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class MultimodalPredict(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Multimodal Predict"
        self.parent.categories = ["Lung AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLungAI developers"]
        self.parent.helpText = """Radiation-pneumonitis risk from clinical, dosimetric and radiomic features, and NSCLC stage classification by fusion of CT, RNA-seq and EHR, with explanations.
Research use only. See the <a href="https://github.com/SlicerLungAI/SlicerLungAI">documentation</a>."""
        self.parent.acknowledgementText = "SlicerLungAI, an open-source extension for lung-cancer research."


class MultimodalPredictWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MultimodalPredict.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MultimodalPredictLogic()
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.updateButtons()

    def updateButtons(self, *_):
        self.ui.applyButton.enabled = self.ui.inputVolumeSelector.currentNode() is not None

    def onApplyButton(self):
        with slicer.util.tryWithErrorDisplay("Multimodal Predict failed.", waitCursor=True):
            message = self.logic.process(self.ui.inputVolumeSelector.currentNode())
            self.ui.statusLabel.text = message


class MultimodalPredictLogic(ScriptedLoadableModuleLogic):
    """Adapter between MRML nodes and the headless core."""

    def process(self, volumeNode):
        from lungai.scene.lungs import segment_lungs_node

        segNode, volumes = segment_lungs_node(slicer.mrmlScene, volumeNode)
        logging.info(f"MultimodalPredict: lungs segmented: %s", volumes)
        return f"Right lung {volumes['right_lung']:.0f} ml, left lung {volumes['left_lung']:.0f} ml"


class MultimodalPredictTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_MultimodalPredict_lungs_on_sample()

    def test_MultimodalPredict_lungs_on_sample(self):
        from lungai import mrml
        from lungai.synthetic import make_phantom, sample_spec

        self.delayDisplay("Generating the sample phantom")
        phantom = make_phantom(sample_spec())
        volumeNode = mrml.volume_node_from_image(slicer.mrmlScene, phantom.ct, "LungAI sample CT")
        message = MultimodalPredictLogic().process(volumeNode)
        self.assertIn("Right lung", message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"), 1)
        self.delayDisplay("Test passed")
