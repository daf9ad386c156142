"""Lung Radiomics: 3D Slicer scripted module (thin shell over the headless ``lungai`` core).

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


class LungRadiomics(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Lung Radiomics"
        self.parent.categories = ["Lung AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLungAI developers"]
        self.parent.helpText = """IBSI-checked radiomic features of the tumour and lungs, and dosimetric features (mean lung dose, V5/V13/V20) from an RT dose.
Research use only. See the <a href="https://github.com/SlicerLungAI/SlicerLungAI">documentation</a>."""
        self.parent.acknowledgementText = "SlicerLungAI, an open-source extension for lung-cancer research."


class LungRadiomicsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungRadiomics.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungRadiomicsLogic()
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.updateButtons()

    def updateButtons(self, *_):
        self.ui.applyButton.enabled = self.ui.inputVolumeSelector.currentNode() is not None

    def onApplyButton(self):
        with slicer.util.tryWithErrorDisplay("Lung Radiomics failed.", waitCursor=True):
            message = self.logic.process(self.ui.inputVolumeSelector.currentNode())
            self.ui.statusLabel.text = message


class LungRadiomicsLogic(ScriptedLoadableModuleLogic):
    """Adapter between MRML nodes and the headless core."""

    def process(self, volumeNode):
        from lungai.scene.lungs import segment_lungs_node

        segNode, volumes = segment_lungs_node(slicer.mrmlScene, volumeNode)
        logging.info(f"LungRadiomics: lungs segmented: %s", volumes)
        return f"Right lung {volumes['right_lung']:.0f} ml, left lung {volumes['left_lung']:.0f} ml"


class LungRadiomicsTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_LungRadiomics_lungs_on_sample()

    def test_LungRadiomics_lungs_on_sample(self):
        from lungai import mrml
        from lungai.synthetic import make_phantom, sample_spec

        self.delayDisplay("Generating the sample phantom")
        phantom = make_phantom(sample_spec())
        volumeNode = mrml.volume_node_from_image(slicer.mrmlScene, phantom.ct, "LungAI sample CT")
        message = LungRadiomicsLogic().process(volumeNode)
        self.assertIn("Right lung", message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"), 1)
        self.delayDisplay("Test passed")
