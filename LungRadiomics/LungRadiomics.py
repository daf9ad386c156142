"""Lung Radiomics: pyradiomics / IBSI-1 features per segment, dosimetric features, cohort batch.

Thin Slicer shell: the logic exports the CT and the ticked segments to files (one step a tick of the progress bar,
after the click: LungAICommon.process.PreparedProcess), runs
``lungai radiomics`` (one run per segment, so overlapping segments such as tumour and lung are
fine), ``lungai dose-features`` and ``lungai radiomics-batch`` as child processes (progress bar,
Cancel), and loads the CSVs as table nodes.  Importing this file imports nothing heavy.
"""

import pathlib
from typing import Annotated

import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from lungai.scene import nodes  # light: numpy / SimpleITK / MRML helpers are imported on use
from LungAICommon import commands, sampledata
from LungAICommon.panel import (PanelJob, PanelWidgetMixin, checkSlicerVersion, default_ct_volume, needs,
                               require_job_packages, run_job)
from LungAICommon.process import LungAIProcess, PreparedProcess, ProcessChain, ReadingProcess, background_steps, \
    run_steps

REQUESTER = "Lung Radiomics"
# a batch's folder in use (lungai.radiomics.manifest.write_batch_manifest): the CLI's "-o OTHER_FOLDER/table.csv" in
# the panel's words
BATCH_ELSEWHERE = ("choose an Output CSV in another folder: a batch holds the whole folder of its table, not only "
                   "its own file")


class LungRadiomics(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Lung Radiomics"
        self.parent.categories = ["Lung AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLungAI developers"]
        self.parent.helpText = """pyradiomics features of the tumour and lungs (the ibsi-a..e presets give every IBSI-1 feature, IBSI-1-compliant),
dosimetric lung features (MLD, V5, V20 ...) and cohort batches. Results are table nodes, exportable to CSV.
The feature class and image type checkboxes choose with the default preset; an ibsi preset (every class, Original image)
or a parameter file (its featureClass and imageType) brings its own, as lungai radiomics --params does.
Research use only. See the <a href="https://github.com/SlicerLungAI/SlicerLungAI/blob/main/docs/slicer.md">documentation</a>."""
        self.parent.acknowledgementText = "Features are computed with pyradiomics (van Griethuysen et al., Cancer Research 2017)."
        checkSlicerVersion(self.parent)


@parameterNodeWrapper
class LungRadiomicsParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    selectedSegments: list[str]
    doseVolume: vtkMRMLScalarVolumeNode
    # the unit of the dose node's voxels: Auto = SlicerRT's (study attribute / the RTDOSE's DoseUnits), else Gy
    doseUnit: Annotated[str, Choice(["Auto", "Gy", "cGy"])] = "Auto"
    paramsSource: Annotated[str, Choice(["preset", "file"])] = "preset"
    preset: Annotated[str, Choice(list(commands.RADIOMICS_PRESETS))] = "default"
    paramsFile: pathlib.Path
    class_shape: bool = True
    class_firstorder: bool = True
    class_glcm: bool = True
    class_glrlm: bool = True
    class_glszm: bool = True
    class_gldm: bool = True
    class_ngtdm: bool = True
    # IBSI-1 families pyradiomics lacks (lungai.radiomics.features); off by default like the CLI's default preset
    class_gldzm: bool = False
    class_intensityhistogram: bool = False
    class_intensityvolume: bool = False
    class_localintensity: bool = False
    typeOriginal: bool = True
    typeLoG: bool = False
    typeWavelet: bool = False
    logSigma: str = "1,2,3"
    outputTable: vtkMRMLTableNode
    doseTable: vtkMRMLTableNode
    exportPath: pathlib.Path
    batchSource: Annotated[str, Choice(["manifest", "folder"])] = "manifest"
    batchFolder: pathlib.Path
    batchManifest: pathlib.Path
    batchOutput: pathlib.Path
    workers: Annotated[int, WithinRange(0, 16)] = 2
    batchWide: bool = False


class LungRadiomicsWidget(PanelWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    REQUESTER = REQUESTER
    EXTRA_LOCKED = ("segmentsListWidget",)

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initPanel()
        self.logic = None
        self._updatingList = False

    def setup(self):
        from LungAICommon.qtjob import QtJobRunner

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungRadiomics.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungRadiomicsLogic()
        self.runner = QtJobRunner(self.ui.progressBar, self.ui.logTextEdit,
                                  lambda running: self._parameterNode is not None and self.updateButtons())

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.segmentsListWidget.connect("itemChanged(QListWidgetItem*)", self.onSegmentItemChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.batchButton.connect("clicked(bool)", self.onBatchButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.cancel)
        self.initializeParameterNode()

    def enter(self):
        self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        p = self._parameterNode
        if not p.inputVolume:
            p.inputVolume = default_ct_volume(slicer.mrmlScene)
        if not p.segmentation:   # the CT's own segmentation (nodes.volume_segmentation_default)
            p.segmentation = nodes.volume_segmentation_default(slicer.mrmlScene, p.inputVolume)

    def offerOwnSegmentation(self, p):
        """When the CT changes and the chosen segmentation is not this CT's (nodes.segmentation_volume_problem), pick
        the CT's own one when there is one (nodes.volume_segmentation_default)."""
        volume = p.inputVolume
        if volume is getattr(self, "_offeredFor", None) or self.busy:
            return
        self._offeredFor = volume
        if volume is not None and (p.segmentation is None
                                   or nodes.segmentation_volume_problem(p.segmentation, volume)):
            own = nodes.volume_segmentation_default(slicer.mrmlScene, volume)
            if own is not None and own is not p.segmentation:
                p.segmentation = own

    def observedInputs(self, p):
        """Segments added, renamed or removed refresh the checklist and the Apply button."""
        return [p.segmentation]

    def updateButtons(self, caller=None, event=None):
        p = self._parameterNode
        if p is None:
            return
        self.offerOwnSegmentation(p)
        self.updateSegmentList()
        busy = self.busy
        self.lockInputs(busy)
        problem = self.logic.inputProblem(p)
        self.ui.applyButton.enabled = not busy and problem is None
        self.ui.applyButton.toolTip = problem or "Run pyradiomics (in the background)"
        batchProblem = self.logic.batchProblem(p)
        self.ui.batchButton.enabled = not busy and batchProblem is None
        self.ui.batchButton.toolTip = batchProblem or "Finished cases are skipped on a re-run"
        self.ui.cancelButton.enabled = busy
        self.ui.presetComboBox.enabled = not busy and p.paramsSource == "preset"
        self.ui.paramsFilePathLineEdit.enabled = not busy and p.paramsSource == "file"
        # the checkboxes choose with the default preset; an ibsi preset / a parameter file brings its own classes and
        # image types (LungAICommon.commands.radiomics_choice): the note says which, the checkboxes are hidden
        choice = self.logic.featureChoice(p)
        for widget in (self.ui.featureClassesBoxLabel, self.ui.featureClassesBox, self.ui.imageTypesBoxLabel,
                       self.ui.imageTypesBox, self.ui.logSigmaLineEditLabel, self.ui.logSigmaLineEdit):
            widget.visible = choice.ticked
        self.ui.selectionNoteLabelLabel.visible = self.ui.selectionNoteLabel.visible = not choice.ticked
        self.ui.selectionNoteLabel.text = choice.note
        self.ui.logSigmaLineEdit.enabled = not busy and p.typeLoG
        self.ui.exportButton.enabled = p.outputTable is not None and commands.is_set(p.exportPath)
        self.ui.batchFolderPathLineEdit.enabled = not busy and p.batchSource == "folder"
        self.ui.batchManifestPathLineEdit.enabled = not busy and p.batchSource == "manifest"
        self.ui.resultsTableView.setMRMLTableNode(p.outputTable)

    def updateSegmentList(self):
        """The checklist shows the segments of the selected segmentation, ticked as saved in the parameter node."""
        p = self._parameterNode
        names = self.logic.segmentNames(p.segmentation)
        current = [self.ui.segmentsListWidget.item(i).text() for i in range(self.ui.segmentsListWidget.count)]
        self._updatingList = True
        try:
            if names != current:
                self.ui.segmentsListWidget.clear()
                for name in names:
                    item = qt.QListWidgetItem(name)
                    item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                    self.ui.segmentsListWidget.addItem(item)
            selected = set(p.selectedSegments)
            for i in range(self.ui.segmentsListWidget.count):
                item = self.ui.segmentsListWidget.item(i)
                item.setCheckState(qt.Qt.Checked if item.text() in selected else qt.Qt.Unchecked)
        finally:
            self._updatingList = False

    def onSegmentItemChanged(self, item):
        if self._updatingList or self._parameterNode is None:
            return
        items = [self.ui.segmentsListWidget.item(i) for i in range(self.ui.segmentsListWidget.count)]
        self._parameterNode.selectedSegments = [it.text() for it in items if it.checkState() == qt.Qt.Checked]

    def onApplyButton(self):
        self.startJob("Feature extraction could not start.", self.logic.startFeatures,
                      lambda job: self.runner.log(self.logic.loadFeatures(job.parameterNode, job)), "radiomics")

    def onBatchButton(self):
        self.startJob("The batch could not start.", self.logic.startBatch,
                      lambda job: self.runner.log(self.logic.loadBatch(job.parameterNode, job)), "batch")

    def onExportButton(self):
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            path = self.logic.exportTable(self._parameterNode.outputTable, self._parameterNode.exportPath)
            self.runner.log(f"Features written to {path}")


class LungRadiomicsLogic(ScriptedLoadableModuleLogic):
    """Exports inputs, builds ``lungai`` commands, loads the CSV outputs as table nodes (through
    :mod:`lungai.scene.nodes`, the same path as the console API :mod:`lungai.scene.radiomics`)."""

    def getParameterNode(self):
        return LungRadiomicsParameterNode(super().getParameterNode())

    @staticmethod
    def segmentNames(segmentation):
        from lungai import mrml

        return mrml.segment_names(segmentation)

    @staticmethod
    def doseSegmentNames(names, coded=None):
        """The segments :meth:`doseCommand` takes: the lungs, every tumour (by name, or ``coded``: by its tumour
        terminology, :func:`lungai.scene.nodes.terminology_roles`), the motion envelopes."""
        from lungai.segment_roles import dose_envelope_segments, dose_lung_segments, segment_role

        return [*dose_lung_segments(names, coded), *[n for n in names if segment_role(n, coded) == "tumour"],
                *dose_envelope_segments(names, coded)]

    @staticmethod
    def featureChoice(p):
        """What is passed for the panel's choices (:func:`LungAICommon.commands.radiomics_choice`): the ticked
        classes / image types with the default preset; with an ibsi preset or a parameter file none, so that the
        preset's / file's own apply (as ``lungai radiomics --params P``) - ``ticked`` False, ``note`` says which."""
        classes = [c for c in commands.FEATURE_CLASSES if getattr(p, f"class_{c}")]
        types = [t for t, on in (("Original", p.typeOriginal), ("LoG", p.typeLoG), ("Wavelet", p.typeWavelet)) if on]
        return commands.radiomics_choice(p.paramsSource, p.preset, p.paramsFile, classes, types, p.logSigma)

    def featureOptions(self, p):
        """(--params, --feature-classes, --image-types, --log-sigma) of the panel's choices (:meth:`featureChoice`)."""
        choice = self.featureChoice(p)
        return choice.params, choice.feature_classes, choice.image_types, choice.log_sigma

    def inputProblem(self, p):
        if p.inputVolume is None:
            return "Select a CT volume"
        if p.segmentation is None:
            return "Select a segmentation"
        problem = nodes.segmentation_volume_problem(p.segmentation, p.inputVolume)   # another CT's segments
        if problem:
            return problem
        from lungai import mrml
        from lungai.segment_roles import ambiguous_lung_problem, dose_lung_segments

        names = self.segmentNames(p.segmentation)
        ticked = [s for s in p.selectedSegments if s in names]
        if not ticked:
            return "Tick at least one segment"
        # two segments of one lung role ("RT LUNG" and "Lung_R"): with a dose among all segments (doseCommand takes every
        # lung segment), else among the ticked ones (the derived "Lungs"); refused as the command line does
        # (lungai.dicom.roles.AmbiguousRole), never the first one or their union
        ambiguous = ambiguous_lung_problem(names if p.doseVolume is not None else ticked,
                                           untick=p.doseVolume is None)
        if ambiguous is not None:
            return ambiguous
        # two segments of one name among the ticked ones (with a dose also the lung / tumour / envelope segments
        # doseCommand takes): which one is meant is not known, a column would be dropped (lungai.mrml.resolve_segment)
        repeated = mrml.repeated_names_error(p.segmentation, ticked + (
            self.doseSegmentNames(names, nodes.terminology_roles(p.segmentation)) if p.doseVolume is not None else []))
        if repeated is not None:
            return str(repeated)
        if p.doseVolume is not None and not dose_lung_segments(names, nodes.terminology_roles(p.segmentation)):
            return self.doseLungProblem(p.segmentation)     # before Apply, not after the radiomics were skipped
        return self._settingsProblem(p)

    @staticmethod
    def doseLungProblem(segmentation) -> str:
        """What to do when a dose volume is chosen but no segment gives the dose features' lungs
        (:func:`lungai.segment_roles.dose_lung_segments`; its accepted names: ``dose_lung_names_text``)."""
        from lungai import mrml
        from lungai.dicom.roles import lung_minus_note, lung_minus_unused
        from lungai.segment_roles import dose_lung_names_text

        # a lung minus a target ('Lungs-ITV', 'Lung_R-GTV'): said what it is and which name takes it
        hints = [LungRadiomicsLogic.doseMessage(lung_minus_note(n))
                 for n in lung_minus_unused(mrml.segment_names(segmentation))]
        return (f"Dose features need lung segments; the segmentation '{segmentation.GetName()}' has none. Lung "
                f"segments are named {dose_lung_names_text()}: run 'Segment lungs' in Lung AI Segmentation, rename "
                "them, or clear the dose volume" + "".join(f"\n{h}" for h in hints))

    def _settingsProblem(self, p):
        choice = self.featureChoice(p)
        if p.paramsSource == "file" and not (commands.is_set(p.paramsFile) and pathlib.Path(p.paramsFile).is_file()):
            return "Choose the pyradiomics parameter file"
        if not choice.ticked:      # the ibsi preset's / the parameter file's classes and image types
            return None
        if not choice.feature_classes or not choice.image_types:
            return "Tick at least one feature class and one image type"
        if "LoG" in choice.image_types and not choice.log_sigma:
            return "Give the LoG sigmas in mm, e.g. 1,2,3"
        return None

    def batchProblem(self, p):
        if p.batchSource == "folder":
            if not (commands.is_set(p.batchFolder) and pathlib.Path(p.batchFolder).is_dir()):
                return "Choose the folder of cases"
        elif not (commands.is_set(p.batchManifest) and pathlib.Path(p.batchManifest).is_file()):
            return "Choose the manifest CSV"
        if not commands.is_set(p.batchOutput):
            return "Choose the output CSV"
        return self._settingsProblem(p)

    # ---------------------------------------------------------------- commands
    def featureCommands(self, p, workDir):
        """:meth:`featureSteps` at once (scripts, tests): (commands, columns, CSVs, dose CSV, not computed)."""
        return run_steps(self.featureSteps(p, workDir))

    def featureSteps(self, p, workDir):
        """Export the CT and each ticked segment (plus the derived "Lungs" / "Lungs minus tumour" when
        both lungs are ticked, "Lungs minus tumour" from one ticked segment of both lungs too); one ``lungai radiomics`` run per mask, so overlapping segments are fine.

        A segment that cannot be computed on the CT grid (empty, one voxel, drawn outside this CT) gets
        no command: the others are computed, its column is NaN and the message says why (as
        :func:`lungai.scene.radiomics.radiomics_table`).

        A generator of the steps (:class:`LungAICommon.process.PreparedProcess`: the panel runs one per tick of its
        progress bar, Cancel between two); returns (commands, {run key: Slicer segment name}, {run key: its feature
        CSV}, dose CSV or None, {segment name: why it is not computed}).  A run is keyed by its own files (``segment_0``: mask
        ``segment_0.nrrd``, CSV ``features_0.csv``), never by the ``--label`` name: two segment names may
        have one feature column name ("Tumor" / "Tumour", "GTV-1" / "GTV 1", case only) and are still two
        columns.  The ``--label`` stays :func:`commands.segment_column_name` of the segment (the core reads
        the lung role from it, as ``radiomics_table`` does from the segment name); a segment that is a lung by its
        terminology only ("Segment_1" coded as the right lung: :func:`lungai.segment_roles.lungs_by_role`, as
        ``radiomics_table`` takes it) is labelled by its role's name ("right_lung"), so that the command line puts it on
        its lung grid as a lung named so - its column keeps the segment's name.
        """
        from lungai import mrml
        from lungai.errors import InputError
        from lungai.io import write_image
        from lungai.radiomics.extract import check_segment

        problem = self.inputProblem(p)
        if problem:
            raise ValueError(problem)
        params, classes, types, sigmas = self.featureOptions(p)
        # the dose first: a dose of another patient is refused before anything is exported
        self.doseNotes, self.doseRoleNotes, self.rtdoseNotes = [], [], []
        ctPath = workDir / f"ct{nodes.EXPORT_SUFFIX}"     # NRRD: the CT's spacing in double precision
        doseCmd = (yield from self.doseSteps(p, ctPath, workDir)) if p.doseVolume is not None else None
        yield f"exporting the CT {p.inputVolume.GetName()!r}"
        # its voxels read now (MRML), the file made and written in a background thread, the polls going on (QA
        # slicerfollow71: 0.6-1.1 s of the GUI thread in one poll on LUNG1-003)
        ct = yield from background_steps(nodes.volume_writer(p.inputVolume, ctPath),
                                         f"writing the CT {p.inputVolume.GetName()!r}", "lungai-export-ct")
        names = [s for s in p.selectedSegments if s in self.segmentNames(p.segmentation)]
        masks = {}
        for name in names:
            yield f"reading segment {name!r}"
            masks[name] = mrml.segment_to_mask(slicer.mrmlScene, p.segmentation, name, p.inputVolume)
        # every tumour segment of the segmentation leaves the lungs (ticked or not), as in doseCommand; every one
        # empty: "Lungs minus tumour" (the lungs themselves) is not computed, ``derived`` says why
        derived = {}
        # every tumour outside the lungs: "Lungs minus tumour" equals the lungs, said with the result (job.notes)
        self.outsideLungsNotes = []
        coded = nodes.terminology_roles(p.segmentation)     # roles by terminology: a renamed GTV, a coded lung
        yield "the derived lungs"
        masks.update(nodes.derived_lung_masks(
            masks, lambda: nodes.tumour_masks(slicer.mrmlScene, p.segmentation, p.inputVolume, masks), derived,
            p.inputVolume.GetName(), self.outsideLungsNotes, coded))
        cmds, csvs, columns, failed = [], {}, {}, {}
        # QA slicer68: LUNG1-003's right lung renamed "Segment_1" (its terminology kept) ran as --label segment_1=1: on
        # the CT's grid, the derived "Lungs" made from it on the 2 mm lung grid
        from lungai.segment_roles import lung_segment_name, lungs_by_role

        lungsByRole = set(lungs_by_role(masks, coded))
        for i, name in enumerate([*masks, *derived]):
            key = f"segment_{i}"   # the run's key: unique, where two names may have one column name
            columns[key] = name
            if name in derived:
                failed[name] = derived[name]
                continue
            mask = masks[name]
            try:
                check_segment(mask, name)  # the core's rule (lungai.radiomics.extract)
            except InputError as exc:
                failed[name] = str(InputError(f"{exc.problem} on the grid of the CT {p.inputVolume.GetName()!r} "
                                              "(nothing drawn, or drawn outside this CT)", exc.fix))
                continue
            yield f"writing segment {name!r}"
            path = write_image(mask, workDir / f"{key}{nodes.EXPORT_SUFFIX}")
            csvs[key] = workDir / f"features_{i}.csv"
            label = lung_segment_name(coded[name]) if name in lungsByRole else name   # the lung role the CLI reads
            cmds.append(commands.radiomics(ct, path, csvs[key], [(label, 1)], params=params, feature_classes=classes,
                                           image_types=types, log_sigma=sigmas or (), case=p.inputVolume.GetName()))
        if not csvs:
            raise ValueError("No features can be computed:\n" + "\n".join(failed.values()))
        doseCsv = None
        if doseCmd is not None:
            cmds.append(doseCmd)
            doseCsv = workDir / "dose.csv"
        return cmds, columns, csvs, doseCsv, failed

    def doseCommand(self, p, ct, workDir):
        """:meth:`doseSteps` at once (scripts, tests): the ``lungai dose-features`` command."""
        return run_steps(self.doseSteps(p, ct, workDir))

    def doseSteps(self, p, ct, workDir):
        """A generator of the steps of the dose command (:meth:`featureSteps`), which it returns.
        Lungs = the segments whose role is a lung (Right lung, Left lung, Lungs, lung lobes; exact names,
        lungai.segment_roles - never "Lung tumour"), or without the whole lungs or without a tumour segment a
        'Lungs-GTV' segment (the rule of lungai dose-features --rtstruct: lungai.segment_roles.dose_lung_segments;
        passed with --lungs-exclude-gtv, said to exclude the GTV as contoured); GTV = every segment whose role
        is tumour (Tumor/Tumour/GTV, GTV-1, gtv-2 ...);
        without one, the tumour's motion envelopes (iGTV / ITV: lungai.segment_roles.dose_envelope_segments) are
        subtracted from the lungs (--envelope), as lungai dose-features --rtstruct does.
        A dose of another patient / frame of reference than the CT (DICOM, subject hierarchy) is refused first.
        The exported dose keeps the node's voxels: their unit (:meth:`doseUnit`) is passed as --dose-unit."""
        import SimpleITK as sitk

        from lungai import mrml
        from lungai.dicom.masks import lungs_minus_gtv_structures
        from lungai.dose.features import segments_text
        from lungai.io import write_image
        from lungai.scene.dicom import check_dose_node_matches_ct
        from lungai.segment_roles import dose_envelope_segments, dose_lung_segments

        # the NIfTI copies below carry no UIDs; the RTDOSE's notes (DoseType EFFECTIVE) no DoseType: said here
        rtdoseNotes = check_dose_node_matches_ct(p.doseVolume, p.inputVolume)
        self.rtdoseNotes = rtdoseNotes     # the dose CSV's rtdose_notes (loadFeatures), as dose-features of the RTDOSE
        unit = self.doseUnit(p)                                   # before any export: an unknown unit stops here
        names = self.segmentNames(p.segmentation)
        coded = nodes.terminology_roles(p.segmentation)     # a renamed GTV, a tumour by its terminology
        lungs = dose_lung_segments(names, coded)
        if not lungs:
            raise ValueError(self.doseLungProblem(p.segmentation))
        # two segments of one name among those taken (inputProblem says it before Apply): refused, as there; the
        # tumour masks are read by ID (nodes.tumour_masks), so this is said here, not left to a name's resolution
        repeated = mrml.repeated_names_error(p.segmentation, self.doseSegmentNames(names, coded))
        if repeated is not None:
            raise repeated
        ext = nodes.EXPORT_SUFFIX   # NRRD: the geometry in double precision, as the CT's
        yield "the dose features' lungs"
        lungMask = write_image(nodes.union_mask([mrml.segment_to_mask(slicer.mrmlScene, p.segmentation, n, p.inputVolume)
                                                 for n in lungs]), workDir / f"lungs{ext}")
        yield "the dose features' tumours"
        tumours = nodes.tumour_masks(slicer.mrmlScene, p.segmentation, p.inputVolume)  # every GTV leaves the lung
        gtvs = [n for n, _ in tumours]
        gtvMask = write_image(nodes.union_mask([m for _, m in tumours]), workDir / f"gtv{ext}") if gtvs else None
        # no tumour segment: an iGTV / ITV (motion envelope) leaves the lungs, as dose-features --rtstruct does; an
        # empty one (nothing drawn on this CT) is left out with a note (dose-features refuses an empty --envelope)
        envelopeMasks = {n: mrml.segment_to_mask(slicer.mrmlScene, p.segmentation, n, p.inputVolume)
                         for n in dose_envelope_segments(names, coded)}
        envelopes = [n for n, m in envelopeMasks.items() if sitk.GetArrayViewFromImage(m).any()]
        self.doseNotes = rtdoseNotes + [
            f"the motion envelope segment {n!r} is empty on the CT {p.inputVolume.GetName()!r}: not subtracted from "
            "the lungs for the dose features" for n in envelopeMasks if n not in envelopes]
        # the dose under another parent transform than the CT: said (read in world coordinates, as every input)
        self.doseNotes += [n for n in [nodes.transform_mismatch_note(p.doseVolume, p.inputVolume)] if n]
        # what lungai dose-features --rtstruct says of the names' GTV roles (lungai.dicom.roles.role_notes), in the
        # panel's terms, and of a ticked segment with no tumour name lying in the lungs (not subtracted either)
        yield "the segments' tumour roles"
        self.doseRoleNotes = self.roleNotes(p, names, lungMask, [n for n in envelopeMasks if n not in envelopes])
        envelopeMask = write_image(nodes.union_mask([envelopeMasks[n] for n in envelopes]),
                                   workDir / f"envelope{ext}") if envelopes else None
        yield f"exporting the dose {p.doseVolume.GetName()!r}"
        dose = nodes.export_volume(p.doseVolume, workDir / f"dose{ext}")
        segmentation = p.segmentation.GetName()      # the masks column names the segments, not the files
        return commands.dose_features(dose, ct, lungMask, workDir / "dose.csv", gtv=gtvMask,
                                      case=p.inputVolume.GetName(), dose_unit=unit,
                                      lungs_name=segments_text(lungs, segmentation),
                                      gtv_name=segments_text(gtvs, segmentation) if gtvs else None,
                                      envelope=envelopeMask,
                                      envelope_name=segments_text(envelopes, segmentation) if envelopes else None,
                                      lungs_exclude_gtv=lungs_minus_gtv_structures(lungs))

    def roleNotes(self, p, names, lungMask, unread=()) -> list:
        """The dose features' notes on the segments' tumour roles: :func:`lungai.dicom.roles.role_notes` (what
        ``lungai dose-features --rtstruct`` warns: a name beginning with GTV with no role, an iGTV / ITV not taken
        as the tumour ...) in the panel's terms (:meth:`doseMessage`: rename the segment, not --structure-map), and
        for each ticked segment with no role that lies in the dose lungs (``lungMask``): it is not subtracted -
        roles come from names, as on the command line, never from the ticks (a ticked segment may be any region)."""
        import SimpleITK as sitk

        from lungai import mrml
        from lungai.dicom.roles import lung_minus_target, role_notes
        from lungai.segment_roles import LUNG_LOBES, motion_envelopes, name_key, segment_role

        coded = nodes.terminology_roles(p.segmentation)     # tumours by their terminology: the user's choice, no note
        notes = [self.doseMessage(note) for note in role_notes(names, coded, unread=unread)]
        lungs = sitk.GetArrayViewFromImage(sitk.ReadImage(str(lungMask))) > 0
        envelopes = set(motion_envelopes(names))
        for name in dict.fromkeys(s for s in p.selectedSegments if s in names):
            # a lung minus a target ('Lung_R-GTV') is lung, never "rename it to a tumour name"
            if segment_role(name, coded) is not None or name in envelopes or name_key(name) in LUNG_LOBES \
                    or lung_minus_target(name) or any(repr(name) in note for note in notes):
                continue
            mask = sitk.GetArrayViewFromImage(mrml.segment_to_mask(slicer.mrmlScene, p.segmentation, name,
                                                                   p.inputVolume)) > 0
            if (mask & lungs).any():
                notes.append(f"segment {name!r} (ticked) has no tumour name and lies in the lungs: it is not "
                             "subtracted from the lungs for the dose features (MLD, V20 ... include it; the tumour "
                             "is taken by name, as on the command line); if it is the tumour, rename it to a "
                             f"tumour name ({nodes.TUMOUR_NAMES})")
        return notes

    @staticmethod
    def doseUnit(p) -> str:
        """The unit of the dose node's voxels (Gy / cGy): the panel's Dose unit, or with Auto the node's own - a
        SlicerRT RTDOSE in cGy holds cGy (lungai.scene.dicom.dose_node_unit; Gy for a NIfTI / NRRD dose or a node
        outside a SlicerRT study, e.g. a resampled copy)."""
        from lungai.scene.dicom import dose_node_unit

        return dose_node_unit(p.doseVolume) if p.doseUnit == "Auto" else p.doseUnit

    @staticmethod
    def doseMessage(text: str) -> str:
        """A ``lungai dose-features`` error in the panel's terms: its --dose-unit hints name the Dose unit choice;
        --max-dose-gy (an EQD2 / BED map, summed courses) is the command line's only."""
        import re

        from lungai.dose.read import RAW_PIXELS_CLI
        from lungai.segment_roles import lung_segment_name

        text = text.replace(RAW_PIXELS_CLI, "")       # raw RTDOSE pixels: the panel loads the RTDOSE via SlicerRT
        # lungai.dicom.roles.role_notes' fix: a segment is renamed where the command line maps a structure
        text = re.sub(r"^structure ", "segment ", text)
        text = text.replace("the RTSTRUCT has no GTV", "the segmentation has no GTV")
        text = re.sub(r"map it with --structure-map \('[^\n]*?: gtv'\)",
                      f"rename the segment to a tumour name ({nodes.TUMOUR_NAMES})", text)
        # a lung minus a target ('Lung_R-GTV', 'Lungs-ITV': lungai.dicom.roles.lung_minus_note) is renamed to the lung
        text = re.sub(r"map it with --structure-map \('[^\n]*?: (lung_right|lung_left|lungs_minus_gtv)'\)",
                      lambda m: f"rename the segment to '{lung_segment_name(m.group(1))}'", text)
        text = text.replace("leave --dose-unit out (Gy, the default)", "choose Dose unit: Gy")
        text = re.sub(r"(?:pass|give) --dose-unit (\w+)", r"choose Dose unit: \1", text)
        text = re.sub(r"--dose-unit (\w+)", r"Dose unit: \1", text)
        return re.sub(r"pass (--max-dose-gy \S+)", r"run lungai dose-features with \1 (command line only)", text)

    @needs("radiomics")
    def startFeatures(self, p):
        """The job of Apply: its inputs are exported by its first polls (:meth:`prepareFeatures`, one step a tick of
        the progress bar, Cancel between two), then the commands run.  QA slicer70: the CT and every segment were
        exported here, on the GUI thread, before the bar and Cancel showed (1.3-2.8 s on LUNG1-002 / LUNG1-003)."""
        problem = self.inputProblem(p)          # said at once; what the export finds, by the job (as its failure)
        if problem:
            raise ValueError(problem)
        workDir = nodes.new_work_folder("radiomics", slicer.app.temporaryPath)
        job = PanelJob(None, None, workDir=workDir, parameterNode=p,
                       inputs={"volume": p.inputVolume, "segmentation": p.segmentation, "dose": p.doseVolume})
        job.process = PreparedProcess(self.prepareFeatures(p, job, workDir))
        return job

    def prepareFeatures(self, p, job, workDir):
        """The steps of :meth:`startFeatures`' job (:class:`LungAICommon.process.PreparedProcess`): exports the
        inputs (:meth:`featureSteps`), fills in the job's outputs, file names and notes; returns its commands' chain."""
        # the outlines measured, as they are at the start (recorded on the tables: once a segment is edited, renamed,
        # replaced or deleted they say so, nodes.refresh_confidence_tables): read before any segment is exported
        def inputsThere():
            for name in job.inputs:     # a node removed between two steps (the Data module): said, run again
                job.input(name)

        outlineSteps = nodes.measured_outline_steps(p.segmentation)     # one segment a tick (QA slicerfollow71)
        while True:
            try:
                name = next(outlineSteps)
            except StopIteration as done:
                outlines = done.value
                break
            yield f"the outline of segment {name!r}"
            inputsThere()
        steps = self.featureSteps(p, workDir)
        while True:
            try:
                text = next(steps)
            except StopIteration as done:
                cmds, columns, csvs, doseCsv, failed = done.value
                break
            yield text
            inputsThere()
        yield "notes"
        job.outputs = (columns, csvs, doseCsv, failed)
        job.fileNames = self.exportedFileNames(p, columns, workDir)
        # said with the result, and recorded on the features table (what is computed from it says them too)
        job.segmentReviewNotes = self.reviewNotes(p.segmentation, columns.values())
        # the roles of segments by their terminology (a renamed GTV: the tumour), recorded on the features table: the
        # RP risk names their features as the tumour's / a lung's (lungai.scene.rp)
        job.segmentRoles = nodes.terminology_roles(p.segmentation)
        job.reviewNotes = job.segmentReviewNotes
        # said with the dose result (or its failure): an empty envelope segment left out, the dose under another
        # transform, the dose features' notes on the segments' tumour roles
        job.doseNotes = getattr(self, "doseNotes", []) + getattr(self, "doseRoleNotes", []) if doseCsv else []
        job.rtdoseNotes = getattr(self, "rtdoseNotes", []) if doseCsv else []
        # which segments "Lungs minus tumour" subtracts (every tumour segment, ticked or not): said with the result
        # (not of a column not computed); a tumour wholly outside the lungs: the column is the lungs
        job.notes = [n for n in [nodes.lungs_minus_tumour_note(
            p.segmentation, [c for c in columns.values() if c not in failed])] if n]
        job.notes += getattr(self, "outsideLungsNotes", [])
        # a segment coded as a lung beside a lung of that role by its name ("Segment_1" beside "Right lung"): which one
        # is the lung, and how to take the other (QA slicer69: measured as a segment of its own, without a word)
        measured = [c for c in columns.values() if c not in failed]
        if doseCsv:
            measured += self.doseSegmentNames(self.segmentNames(p.segmentation), job.segmentRoles)
        job.notes += nodes.coded_lungs_not_taken_notes(p.segmentation, measured)
        # the dose rows: its lungs and tumours
        job.measuredOutlines = nodes.measured_outlines(p.segmentation, list(columns.values()), records=outlines)
        job.doseOutlines = (nodes.measured_outlines(p.segmentation,
                                                    self.doseSegmentNames(self.segmentNames(p.segmentation),
                                                                          nodes.terminology_roles(p.segmentation)),
                                                    records=outlines)
                            if doseCsv else [])
        # one segment's command failing (pyradiomics on that region) leaves the others running: a NaN column; the
        # dose command (last) failing keeps the radiomics too, the message says why
        chain = ProcessChain(cmds, optional=range(len(cmds)))
        # the result files read (pandas imported) in a background thread once the commands have ended, not by
        # loadFeatures on the GUI thread (QA slicerfollow71: 0.77 of its 0.92-1.06 s on LUNG1-003 was pandas' import)
        rtdoseNotes = job.rtdoseNotes
        return ReadingProcess(chain, lambda: self.readFeatureFiles(columns, csvs, doseCsv, rtdoseNotes,
                                                                   chain.jobs[-1].lines if doseCsv else ()))

    @staticmethod
    def readFeatureFiles(columns, csvs, doseCsv, rtdoseNotes=(), doseLines=()):
        """What :meth:`loadFeatures` shows, read from the job's files only (no MRML: a background thread may read
        them, :class:`LungAICommon.process.ReadingProcess`): {"rows": the long rows of the feature CSVs written,
        "names", "table": the features-as-rows table (a DataFrame), "settingsNotes": (edge warnings, NaN notes),
        "unverifiedNote": an IBSI preset's features without an IBSI-1 reference value (ivh_auc) or None,
        "dose": the dose table (its CSV given the RTDOSE's ``rtdoseNotes`` first) or None, "doseWarnings": what
        dose-features warned (its ``doseLines`` and CSV)}."""
        import pandas as pd

        from lungai.scene import results

        written = {key: path for key, path in csvs.items() if pathlib.Path(path).is_file()}
        # each run's rows keyed by the run (its CSV), not by the label name two segments may share
        longRows = [dict(row, segment=key) for key, path in written.items() for row in results.read_csv_rows(path)]
        names, rows = results.features_by_segment(longRows, columns)
        files = {"rows": longRows, "names": names, "table": pd.DataFrame(rows, columns=names),
                 "settingsNotes": results.run_settings_notes(columns, written),
                 "unverifiedNote": results.run_unverified_note(written), "dose": None, "doseWarnings": []}
        if doseCsv is not None and pathlib.Path(doseCsv).is_file():
            # the RTDOSE's notes (EFFECTIVE, unchecked against a NIfTI CT) in the CSV's rtdose_notes column, as
            # lungai dose-features writes them for the RTDOSE file (its NRRD copy carries no DoseType): the table
            # saved as CSV and given to lungai rp predict still says them
            from lungai.dose.features import record_notes

            record_notes(doseCsv, rtdoseNotes)
            files["dose"] = nodes.read_results_csv(doseCsv)
            files["doseWarnings"] = results.dose_warnings(doseCsv, doseLines)
        return files

    @staticmethod
    def reviewNotes(segmentation, names):
        """A warning per measured segment that Lung AI Segmentation flagged for expert review (its segment tags:
        :func:`lungai.scene.nodes.review_note`); with "Lungs minus tumour" measured, per tumour segment it subtracts
        too (ticked or not: :func:`lungai.scene.nodes.review_notes`)."""
        return nodes.review_notes(segmentation, names)

    @staticmethod
    def exportedFileNames(p, columns, workDir):
        """{exported temporary file: what the user knows it as}, so that an error names nodes and segments."""
        ext = nodes.EXPORT_SUFFIX
        names = {workDir / f"ct{ext}": p.inputVolume.GetName(), workDir / f"lungs{ext}": "the lung segments",
                 workDir / f"gtv{ext}": "the tumour segments",
                 workDir / f"envelope{ext}": "the motion envelope segments"}
        if p.doseVolume is not None:   # dose-features names the file alone too ("dose.nrrd: the maximum ...")
            names[workDir / f"dose{ext}"] = names[f"dose{ext}"] = p.doseVolume.GetName()
        for key, name in columns.items():   # `lungai radiomics ... --mask segment_i.nrrd` (featureCommands)
            names[workDir / f"{key}{ext}"] = f"segment '{name}'"
        return names

    @needs("radiomics")
    def startBatch(self, p):
        problem = self.batchProblem(p)
        if problem:
            raise ValueError(problem)
        params, classes, types, sigmas = self.featureOptions(p)
        manifest = p.batchManifest
        if p.batchSource == "folder":  # written next to the output, so that a re-run resumes
            from LungAICommon.manifest import rows_from_folder, write_manifest
            from lungai.radiomics.manifest import write_batch_manifest

            rows = rows_from_folder(p.batchFolder)
            # not while a batch runs in that folder, never over a file of the user's (lungai checks, then writes)
            manifest = write_batch_manifest(p.batchOutput, lambda path: write_manifest(
                rows, path, base=pathlib.Path(p.batchFolder)), elsewhere=BATCH_ELSEWHERE)
        args = commands.radiomics_batch(manifest, p.batchOutput, workers=p.workers, params=params,
                                        feature_classes=classes, image_types=types, log_sigma=sigmas or (),
                                        wide=p.batchWide)
        return PanelJob(LungAIProcess(args), pathlib.Path(p.batchOutput), parameterNode=p)  # the user's files: kept

    # ---------------------------------------------------------------- outputs
    def loadFeatures(self, p, job):
        """Per-segment CSVs -> one table, features as rows and one column per segment (as
        SlicerRadiomics and :mod:`lungai.scene.radiomics`; a segment not computed is a NaN column and
        the message says why); the dose CSV -> the dose table.  Deletes the job's temporary files.  The files are
        read by the job in a background thread (:meth:`readFeatureFiles`), else here."""
        from lungai.radiomics.settings import NODE_ATTRIBUTE, SETTINGS_COLUMN

        try:
            columns, csvs, doseCsv, failed = job.outputs
            failed, csvs = dict(failed), dict(csvs)
            volume = job.input("volume")
            # the segmentation the features are of (its tables; another segmentation's are kept): none when removed
            segmentation = job.inputs.get("segmentation")
            segmentation = segmentation if segmentation is not None and segmentation.GetScene() is not None else None
            # a segment whose command failed (the chain went on): its column is NaN and the message says why
            for i, key in enumerate(list(csvs)):
                if not pathlib.Path(csvs[key]).is_file():
                    jobs = getattr(job.process, "jobs", None)
                    why = job.errorMessage(jobs[i].error_message()) if jobs else "no features were written"
                    failed[columns[key]] = f"{columns[key]}: {why}"
                    del csvs[key]
            if not csvs:
                raise ValueError("No features could be computed:\n" + "\n".join(failed.values()))
            read = getattr(getattr(job.process, "inner", None), "read_result", None)   # read in the background
            jobs = getattr(job.process, "jobs", None)
            files = read() if read else self.readFeatureFiles(columns, csvs, doseCsv, getattr(job, "rtdoseNotes", []),
                                                               jobs[-1].lines if jobs and doseCsv else ())
            longRows, names, frame = files["rows"], files["names"], files["table"]
            # the table of another CT, or of another segmentation of this CT, is kept (a new one is made):
            # nodes.volume_table; a table the user renamed is kept too, and said (nodes.renamed_table_note)
            previous = p.outputTable
            p.outputTable = nodes.volume_table(slicer.mrmlScene, frame, f"{volume.GetName()} radiomics", volume,
                                               node=p.outputTable, made_by=nodes.RADIOMICS_MADE_BY,
                                               segmentation_node=segmentation)
            ids = sorted({row.get(SETTINGS_COLUMN) for row in longRows if row.get(SETTINGS_COLUMN)})
            p.outputTable.SetAttribute(NODE_ATTRIBUTE, ";".join(ids))  # the settings travel with the table
            # and the measured segments flagged for expert review (Multimodal Predict's risk warns of them)
            nodes.record_review_notes(p.outputTable, getattr(job, "segmentReviewNotes", []))
            nodes.record_measured_outlines(p.outputTable, getattr(job, "measuredOutlines", []))
            nodes.record_segment_roles(p.outputTable, getattr(job, "segmentRoles", {}), names)
            from lungai.errors import counted
            segments = counted(len(names) - 4 - len(failed), 'segment')
            message = (f"{counted(len(frame), 'feature')} x {segments} -> table '{p.outputTable.GetName()}'"
                       + nodes.segmentation_table_note(p.outputTable, segmentation)
                       + nodes.edited_tables_note(p.outputTable)       # a table the user edited: kept, named
                       + nodes.renamed_table_note(previous, p.outputTable))   # or renamed
            if failed:
                message += ("\nNot computed (NaN column): " + "; ".join(failed)
                            + "\n" + "\n".join(failed.values()))
            edgeNotes, nanNotes = files["settingsNotes"]   # as lungai radiomics says on stderr
            for note in edgeNotes:
                message += "\nwarning: " + note
            for note in getattr(job, "reviewNotes", []):
                message += "\nwarning: " + note
            for note in getattr(job, "notes", []):
                message += "\nnote: " + note
            for note in nanNotes:                         # why values are NaN (an IBSI configuration's notes)
                message += "\nnote: " + note
            if files.get("unverifiedNote"):               # an IBSI preset's ivh_auc: no IBSI-1 reference value
                message += "\nnote: " + files["unverifiedNote"]
            message += self.pyradiomicsNote()
            if doseCsv is not None and not pathlib.Path(doseCsv).is_file():   # dose-features failed (optional)
                jobs = getattr(job.process, "jobs", None)
                why = job.errorMessage(jobs[-1].error_message()) if jobs else "no dose features were written"
                message += "\nDose features not computed: " + self.doseMessage(why)
                # an earlier run's dose table (of another dose, or of this one) is kept as it was - it names its dose
                # (nodes.source_dose_name) - and only dropped from the selector: nothing takes it for this run's
                if p.doseTable is not None:
                    dose = nodes.source_dose_name(p.doseTable)
                    message += (f" (the dose table '{p.doseTable.GetName()}' of an earlier run"
                                + (f", of dose '{dose}'," if dose else "") + " is kept)")
                p.doseTable = None
            elif doseCsv is not None:
                # the dose volume's table: another dose (plan B after plan A) gets its own, the other kept
                doseNode = job.inputs.get("dose")
                doseNode = doseNode if doseNode is not None and doseNode.GetScene() is not None else None
                # its CSV (with the RTDOSE's notes: readFeatureFiles) as nodes.table_from_csv makes it
                p.doseTable = nodes.volume_table(slicer.mrmlScene, files["dose"], f"{volume.GetName()} dose features",
                                                 volume, node=p.doseTable, made_by=nodes.DOSE_MADE_BY,
                                                 segmentation_node=segmentation, dose_node=doseNode)
                # the dose's warnings its CSV cannot carry (an EFFECTIVE RTDOSE, an RTDOSE unchecked against a NIfTI
                # CT ...): recorded on the table, so the RP risk computed from it says them (Multimodal Predict)
                nodes.record_review_notes(p.doseTable, getattr(job, "doseNotes", []))
                nodes.record_measured_outlines(p.doseTable, getattr(job, "doseOutlines", []))
                message += (f"\nDose features -> table '{p.doseTable.GetName()}'"
                            + nodes.segmentation_table_note(p.doseTable, segmentation)
                            + nodes.dose_table_note(p.doseTable) + nodes.edited_tables_note(p.doseTable))
                # every warning dose-features printed (one lung, lungs cut by the scan ...), as it says them
                for note in files["doseWarnings"]:
                    message += "\nwarning: " + self.doseMessage(job.errorMessage(note))
            for note in getattr(job, "doseNotes", []):
                message += "\nwarning: " + note
        finally:
            job.finish()
        return message

    def loadBatch(self, p, job):
        outputCsv = job.outputs
        chosen = p.outputTable
        # only this CSV's earlier batch table is updated; one CT's features table, a user's table: kept, a new table
        p.outputTable = nodes.record_review_notes(   # many cases' features: no segment of this scene's measured
            nodes.batch_table(slicer.mrmlScene, outputCsv, node=chosen), [])
        kept = nodes.edited_tables_note(p.outputTable)     # this CSV's table, edited by the user since: kept, named
        if chosen is not None and chosen is not p.outputTable and f"'{chosen.GetName()}'" not in kept:
            kept += f" (the table '{chosen.GetName()}' chosen as output is kept: it does not hold this batch's results)"
        return (f"Batch features written to {outputCsv} and shown in table '{p.outputTable.GetName()}'" + kept
                + self.pyradiomicsNote())

    _pyradiomicsNoted = False      # the note below is said once per Slicer session

    @classmethod
    def pyradiomicsNote(cls) -> str:
        """A ``note: ...`` line (after a newline) the first time features are loaded when this pyradiomics is not
        the distribution / version the IBSI-1 figures were verified with (SlicerRadiomics ships upstream
        pyradiomics); else ``""``.  The values are used all the same; the distribution is recorded in each run's
        settings."""
        from lungai.radiomics.settings import pyradiomics_note

        if cls._pyradiomicsNoted:
            return ""
        note = pyradiomics_note()
        if not note:
            return ""
        LungRadiomicsLogic._pyradiomicsNoted = True
        return "\nnote: " + note

    @staticmethod
    def exportTable(tableNode, path):
        """Write a table node as CSV; never onto an existing file the user did not choose: a path without ``.csv``
        gets it added to its name as typed ("LUNG1-003.v2" -> "LUNG1-003.v2.csv", not "LUNG1-003.csv"), and a file of
        that name that exists is refused (InputError), not replaced (QA slicerlogic66: "features" replaced the
        user's features.csv silently)."""
        from lungai.errors import InputError
        from lungai.scene.radiomics import export_table_csv

        chosen = pathlib.Path(path)
        path = chosen if chosen.suffix.lower() == ".csv" else chosen.with_name(chosen.name + ".csv")
        if path != chosen and path.exists():
            raise InputError(f"{path} exists, and the export path {chosen} does not end in .csv: the table would "
                             "replace that file, which was not chosen",
                             f"choose {path} as the export path to replace it, or another name ending in .csv")
        return pathlib.Path(export_table_csv(tableNode, path))

    def run(self, startJob, p, timeout=1800):
        """Run a job to completion (Python console, self-tests); the panel polls it instead."""
        return run_job(startJob, p, timeout, requester=REQUESTER)


class LungRadiomicsTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_tumour_features_on_sample()

    def test_tumour_features_on_sample(self):
        require_job_packages(self, LungRadiomicsLogic.startFeatures, requester=REQUESTER)   # testing mode: installs too
        self.delayDisplay("Loading the Lung AI sample (generated on first use)")
        ctNode = sampledata.load_into_slicer()
        logic = LungRadiomicsLogic()
        p = logic.getParameterNode()
        p.inputVolume = ctNode
        p.segmentation = slicer.mrmlScene.GetFirstNodeByName(sampledata.TRUTH_NODE_NAME)
        p.selectedSegments = ["Tumor"]
        p.class_glcm = p.class_glrlm = p.class_glszm = p.class_gldm = p.class_ngtdm = False
        outputs = logic.run(logic.startFeatures, p)
        message = logic.loadFeatures(p, outputs)
        self.assertIn("x 1 segment", message)
        table = p.outputTable.GetTable()
        self.assertGreater(table.GetNumberOfRows(), 10)  # shape + first-order features
        self.assertIsNotNone(table.GetColumnByName("Tumor"))
        self.delayDisplay("Test passed")
