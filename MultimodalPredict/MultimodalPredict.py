"""Multimodal Predict: radiation-pneumonitis risk and NSCLC stage, with explanations.

Thin Slicer shell.  RP risk: the patient's features are assembled from the Lung Radiomics tables
(radiomic + dose features) and a clinical form built from the chosen model's card, then
``lungai rp predict`` runs as a child process; the risk, its interval and the top contributing
features are shown.  Stage: ``lungai stage predict`` on EHR / RNA files (and optionally the CT with
its tumour segment), showing class probabilities, top genes and a Grad-CAM overlay.
Importing this file imports nothing heavy.
"""

import json
import pathlib

import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from lungai.scene import nodes, results  # light: numpy / SimpleITK / MRML helpers are imported on use
from LungAICommon import commands
from LungAICommon.panel import PanelJob, PanelWidgetMixin, checkSlicerVersion, needs, require_job_packages, run_job
from LungAICommon.process import BackgroundCall, LungAIProcess, PreparedProcess, background_steps

REQUESTER = "Multimodal Predict"


class MultimodalPredict(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Multimodal Predict"
        self.parent.categories = ["Lung AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLungAI developers"]
        self.parent.helpText = """Radiation-pneumonitis risk from clinical, dosimetric and radiomic features, and NSCLC stage
from EHR, gene expression and CT, each with explanations (top contributions, top genes, Grad-CAM).
Research use only. See the <a href="https://github.com/SlicerLungAI/SlicerLungAI/blob/main/docs/slicer.md">documentation</a>."""
        self.parent.acknowledgementText = "SlicerLungAI, an open-source extension for lung-cancer research."
        checkSlicerVersion(self.parent)


@parameterNodeWrapper
class MultimodalPredictParameterNode:
    rpModelDirectory: pathlib.Path
    radiomicsTable: vtkMRMLTableNode
    doseTable: vtkMRMLTableNode
    clinicalValues: str = "{}"
    rpOutputTable: vtkMRMLTableNode
    stageModelDirectory: pathlib.Path
    ehrFile: pathlib.Path
    rnaFile: pathlib.Path
    stageVolume: vtkMRMLScalarVolumeNode
    stageSegmentation: vtkMRMLSegmentationNode
    stagePatient: str = ""
    stageOutputTable: vtkMRMLTableNode
    gradcamVolume: vtkMRMLScalarVolumeNode


def _number(text):
    """Form values are text; numbers go to the model as numbers, categories stay text."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


class MultimodalPredictWidget(PanelWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    REQUESTER = REQUESTER
    EXTRA_LOCKED = ("clinicalTableWidget",)

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initPanel()
        self.logic = None
        self._formModel = None
        self._fillingForm = False

    def setup(self):
        from LungAICommon.qtjob import QtJobRunner

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MultimodalPredict.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MultimodalPredictLogic()
        self.runner = QtJobRunner(self.ui.progressBar, self.ui.logTextEdit,
                                  lambda running: self._parameterNode is not None and self.updateButtons())
        self.ui.clinicalTableWidget.setHorizontalHeaderLabels(["Clinical feature", "Value"])
        self.ui.clinicalTableWidget.horizontalHeader().setStretchLastSection(True)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.clinicalTableWidget.connect("cellChanged(int,int)", self.onClinicalCellChanged)
        self.ui.rpApplyButton.connect("clicked(bool)", self.onRiskButton)
        self.ui.stageApplyButton.connect("clicked(bool)", self.onStageButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.cancel)
        self.initializeParameterNode()

    def enter(self):
        self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        self.offerOwnSegmentation(self._parameterNode)

    def offerOwnSegmentation(self, p):
        """Once per CT chosen for the stage CT branch: its own segmentation (logic.offerStageSegmentation)."""
        if p is None or p.stageVolume is getattr(self, "_offeredFor", None) or self.busy:
            return
        self._offeredFor = p.stageVolume
        self.logic.offerStageSegmentation(p)

    def observedInputs(self, p):
        """A tumour segment added to / removed from the stage segmentation re-checks the stage inputs."""
        return [p.stageSegmentation]

    def updateButtons(self, caller=None, event=None):
        p = self._parameterNode
        if p is None:
            return
        self.offerOwnSegmentation(p)
        self.updateClinicalForm()
        busy = self.busy
        self.lockInputs(busy)
        rpProblem = self.logic.riskInputProblem(p)
        self.ui.rpApplyButton.enabled = not busy and rpProblem is None
        self.ui.rpApplyButton.toolTip = rpProblem or "Assemble the patient's features and run the model"
        stageProblem = self.logic.stageInputProblem(p)
        self.ui.stageApplyButton.enabled = not busy and stageProblem is None
        self.ui.stageApplyButton.toolTip = stageProblem or "Run the stage model (in the background)"
        self.ui.cancelButton.enabled = busy

    def updateClinicalForm(self):
        """One row per clinical feature of the chosen RP model; values kept in the parameter node."""
        p = self._parameterNode
        model = str(p.rpModelDirectory) if commands.is_set(p.rpModelDirectory) else None
        fields, info = self.logic.clinicalForm(p)
        self.ui.rpModelInfoLabel.text = info
        # a model card's warning (too few events per feature: an unstable model) stands out, as the HIGH RISK flag
        self.ui.rpModelInfoLabel.styleSheet = "color: #c0392b;" if "\nwarning: " in info else ""
        values = json.loads(p.clinicalValues or "{}")
        if model == self._formModel and self.ui.clinicalTableWidget.rowCount == len(fields):
            return
        self._formModel = model
        self._fillingForm = True
        try:
            table = self.ui.clinicalTableWidget
            table.setRowCount(len(fields))
            for row, (name, hint) in enumerate(fields):
                label = qt.QTableWidgetItem(name)
                label.setFlags(qt.Qt.ItemIsEnabled)
                label.setToolTip(hint)
                table.setItem(row, 0, label)
                value = qt.QTableWidgetItem(str(values.get(name, "")))
                value.setToolTip(hint)
                table.setItem(row, 1, value)
        finally:
            self._fillingForm = False

    def onClinicalCellChanged(self, row, column):
        if self._fillingForm or column != 1:
            return
        table = self.ui.clinicalTableWidget
        values = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount)
                  if table.item(r, 0) and table.item(r, 1) and table.item(r, 1).text().strip()}
        self._parameterNode.clinicalValues = json.dumps(values)

    def onRiskButton(self):
        self.startJob("Risk prediction could not start.", self.logic.startRisk, self.onRiskFinished,
                      "RP risk")

    def onStageButton(self):
        self.startJob("Stage prediction could not start.", self.logic.startStage, self.onStageFinished,
                      "stage")

    def onRiskFinished(self, job):
        p = job.parameterNode
        headline, contributions = self.logic.loadRisk(p, job)
        self.ui.riskLabel.text = headline
        self.ui.riskLabel.styleSheet = "color: #c0392b;" if "HIGH RISK" in headline else ""
        self.ui.contributionsLabel.text = contributions
        self.ui.resultsTableView.setMRMLTableNode(p.rpOutputTable)
        self.runner.log(headline + "\n" + contributions)

    def onStageFinished(self, job):
        p = job.parameterNode
        volume = job.input("volume")
        text = self.logic.loadStage(p, job)
        self.ui.stageResultLabel.text = text
        if p.gradcamVolume is not None and volume is not None:
            slicer.util.setSliceViewerLayers(background=volume, foreground=p.gradcamVolume,
                                             foregroundOpacity=0.4, fit=True)
        self.ui.resultsTableView.setMRMLTableNode(p.stageOutputTable)
        self.runner.log(text)


class MultimodalPredictLogic(ScriptedLoadableModuleLogic):
    """Assembles the model inputs, builds ``lungai rp`` / ``lungai stage`` commands, loads the outputs."""

    def getParameterNode(self):
        return MultimodalPredictParameterNode(super().getParameterNode())

    # ---------------------------------------------------------------- RP risk
    def clinicalForm(self, p):
        """([(clinical feature, hint)], model description) for the chosen model folder.  The description is the model
        line (lungai.rp.card.model_summary): its features, what its risk is of, its HIGH RISK threshold and rule, its
        validation and training patients / events and its warnings (too few events per feature ...), as lungai rp
        predict prints them - when the folder is chosen, not first under a computed risk.  A folder rp predict refuses
        (a stage model folder, a model of another lungai version, no model.skops, a card that is no JSON object, a
        threshold outside (0, 1), a hand-edited card field of another type) shows why in place of the form (lungai.rp.card.read_card: its one check).  Read
        without the prediction packages (every panel refresh; they may not be installed yet)."""
        if not commands.is_set(p.rpModelDirectory):
            return [], "Choose a model folder (written by 'lungai rp train')"
        from lungai.errors import InputError
        from lungai.rp.card import model_summary, read_card

        try:
            card = read_card(p.rpModelDirectory)
        except InputError as exc:
            return [], str(exc)
        return results.clinical_fields(card), "\n".join(model_summary(card))

    def patientRow(self, p):
        """The patient's feature row (a one-row DataFrame) from the radiomics table (features x
        segments, long or wide), the dose table and the clinical form, via :mod:`lungai.scene.rp`."""
        from lungai.scene.rp import assemble_patient_row, risk_case

        clinical = {k: _number(v) for k, v in json.loads(p.clinicalValues or "{}").items()}
        case = risk_case(p.radiomicsTable, p.doseTable)   # the patient's CT, not the table's name
        card = results.model_card(p.rpModelDirectory)   # the model's own names (a role file's) are not prefixed
        return assemble_patient_row(p.radiomicsTable, p.doseTable if p.doseTable is not None else {}, clinical, case,
                                    card)

    def riskInputProblem(self, p):
        if not commands.is_set(p.rpModelDirectory):
            return "Choose an RP model folder (with model_card.json)"
        from lungai.errors import InputError
        from lungai.rp.card import read_card

        try:   # a folder rp predict refuses: said on the button, not first when Compute risk fails (clinicalForm)
            read_card(p.rpModelDirectory)
        except InputError as exc:
            return str(exc)
        if p.radiomicsTable is None and p.doseTable is None and p.clinicalValues in ("", "{}"):
            return "Give the patient's features: radiomics table, dose table and/or clinical values"
        if p.radiomicsTable is None or p.doseTable is None:   # nothing to compare (and lungai.scene.rp imports pandas:
            return None                                       # not before the prediction packages are installed)
        # Lung Radiomics links each table to its CT and segmentation: one patient's, one segmentation's row only
        from lungai.scene.rp import risk_tables_problem

        return risk_tables_problem(p.radiomicsTable, p.doseTable)

    @needs("prediction")
    def startRisk(self, p):
        problem = self.riskInputProblem(p)
        if problem:
            raise ValueError(problem)
        card = results.model_card(p.rpModelDirectory)
        form = json.loads(p.clinicalValues or "{}")
        # "12,8" for a number, "M" for one of female / male: said here, in the form's terms (not the command's, for a CSV)
        problems = [results.form_number_problem(card, form), results.form_choice_problem(card, form)]
        if p.doseTable is not None:   # "see plan" typed in a dose cell: the table, row and column, not the CSV's lines
            from lungai.scene.rp import dose_table_text_problem

            problems.append(dose_table_text_problem(p.doseTable, card))
        if any(problems):
            raise ValueError("\n".join(problem for problem in problems if problem))
        row = self.patientRow(p)
        missing = results.describe_missing_features(card, results.missing_features(card, row.iloc[0].to_dict()))
        if missing:
            raise ValueError(f"{missing}. "
                             + results.missing_features_fix(results.missing_features(card, row.iloc[0].to_dict())))
        # other radiomics settings than the model's: refused here, with what to do in this panel (the command's
        # refusal names its command-line flags)
        from lungai.rp.prepare import settings_warnings

        settings_warnings(row, card, "radiomics table", context="patient")
        workDir = nodes.new_work_folder("rp", slicer.app.temporaryPath)
        try:      # the patient's values are written there first: deleted however a later check ends
            return self._riskJob(p, card, row, workDir)
        except BaseException:
            nodes.remove_work_folder(workDir)
            raise

    def _riskJob(self, p, card, row, workDir):
        """The risk job of :meth:`startRisk` in ``workDir`` (its patient CSV, the command, what is said with the
        result)."""
        patients = workDir / "patient.csv"
        row.to_csv(patients, index=False)
        output = workDir / "predictions.csv"
        from lungai.scene.rp import risk_source_volume

        job = PanelJob(LungAIProcess(commands.rp_predict(p.rpModelDirectory, patients, output)), output,
                       workDir=workDir, parameterNode=p,   # the one-row CSV is the panel's: no file or line to name
                       inputs={"volume": risk_source_volume(p.radiomicsTable, p.doseTable)},   # the table's CT
                       fileNames={patients: "the patient's values", " (CSV lines [2])": ""})
        # the radiomics table's segments flagged for expert review (Lung Radiomics records them): said with the risk,
        # and what lungai rp predict warns of the row (lungs cut by the scan, no dose: lungai.rp.prepare.table_warnings,
        # as predict_rp_node says them; the child prints them with a cohort's fix, the panel with the patient's)
        from lungai.rp.prepare import table_warnings

        # and the dose table's recorded warnings (Lung Radiomics: an EFFECTIVE RTDOSE, an RTDOSE unchecked against
        # a NIfTI CT ...), each once
        job.reviewNotes = list(dict.fromkeys(
            [n for table in (p.radiomicsTable, p.doseTable) if table is not None
             for n in nodes.recorded_review_notes(table)] + table_warnings(row, card, context="patient")
            + nodes.stale_table_notes(slicer.mrmlScene, p.radiomicsTable, p.doseTable)))
        from lungai.scene.rp import risk_inputs_note

        job.inputsNote = risk_inputs_note(p.radiomicsTable, p.doseTable)   # which tables (and segmentations)
        # the segments' outlines the tables measured: the risk table says it once one is edited, renamed, replaced or
        # deleted (nodes.refresh_confidence_tables), as the tables do
        job.measuredOutlines = nodes.recorded_measured_outlines(
            *[table for table in (p.radiomicsTable, p.doseTable) if table is not None])
        job.modelDirectory = p.rpModelDirectory                            # recorded in the risk table
        job.modelCard = card                                               # its validation and warnings: shown
        return job

    def loadRisk(self, p, job):
        """The prediction as the table node "<case> RP risk" (lungai.scene.rp.risk_table: patient A's table, or a
        table of the user's picked as output, is never overwritten); returns (headline, contributions).  Deletes
        the job's temporary files."""
        from lungai.scene.rp import add_warnings, risk_table, with_model_columns

        try:
            rows = results.read_csv_rows(job.outputs)
            volume = job.inputs.get("volume")
            if volume is not None and volume.GetScene() is None:
                volume = None                     # the CT was removed during the run: the table is not linked
            # the case as text (CT "001" stays "001", not 1); an empty cell (no warnings) is text "", not NaN
            df = nodes.read_results_csv(job.outputs, keep_default_na=False)
            case = (rows[0].get("case") or "").strip() if rows else ""
            case = case or "patient"
            notes = getattr(job, "reviewNotes", [])   # a tumour flagged for expert review, lungs cut by the scan ...:
            # in the table's warnings too
            if notes:
                df = add_warnings(df, notes)
            model = getattr(job, "modelDirectory", None)   # which model made the risk, and its threshold
            if model:
                df = with_model_columns(df, results.model_card(model), model)
            p.rpOutputTable = risk_table(slicer.mrmlScene, df, case, volume_node=volume, node=p.rpOutputTable)
            nodes.record_measured_outlines(p.rpOutputTable, getattr(job, "measuredOutlines", []))
        finally:
            job.finish()
        headline, details = results.describe_prediction_row(rows[0])
        # the model card's validation and training warnings (too few events per feature ...), as lungai rp predict
        card = getattr(job, "modelCard", None) or {}
        notes = notes + [f"model card: {w}" for w in card.get("warnings") or []]
        if card:
            from lungai.rp.card import validation_text

            details += f"\nModel card: {validation_text(card)}"
        inputs = getattr(job, "inputsNote", "")
        # this patient's risk table edited by the user since: kept, the risk in another table - both named
        edited = nodes.edited_tables_note(p.rpOutputTable)
        notes = notes + ([f"the risk is in the table '{p.rpOutputTable.GetName()}'{edited}"] if edited else [])
        return headline + "".join(f"\nwarning: {note}" for note in notes), details + (f"\n{inputs}" if inputs else "")

    # ---------------------------------------------------------------- stage
    def offerStageSegmentation(self, p):
        """The stage CT's own segmentation when none or another CT's is chosen (nodes.own_segmentation, as Lung
        Radiomics); a segmentation that suits the CT is kept."""
        chosen = nodes.own_segmentation(slicer.mrmlScene, p.stageVolume, p.stageSegmentation)
        if chosen is not p.stageSegmentation:
            p.stageSegmentation = chosen
        return chosen

    def stageInputProblem(self, p):
        if not (commands.is_set(p.stageModelDirectory) and pathlib.Path(p.stageModelDirectory).is_dir()):
            return "Choose a stage model folder"
        from lungai.errors import InputError
        from lungai.fusion.balance import check_stage_model_folder

        try:   # a folder lungai stage predict refuses (no or a damaged stage_model.json): said on the button, not by
            check_stage_model_folder(p.stageModelDirectory)   # the child ~30 s later, after torch (QA slicerfollow71)
        except InputError as exc:
            return str(exc)
        if not any(commands.is_set(f) and pathlib.Path(f).is_file() for f in (p.ehrFile, p.rnaFile)) and p.stageVolume is None:
            return "Give an EHR table, an RNA table and/or a CT"
        if p.stageVolume is not None and p.stageSegmentation is None:
            return "The CT branch needs the tumour segmentation"
        if p.stageVolume is not None and not p.stagePatient.strip():
            return "The CT branch needs the patient id (as in the EHR/RNA tables)"
        if p.stageVolume is not None:   # not another CT's segmentation (measured on this CT's image)
            return (nodes.segmentation_volume_problem(p.stageSegmentation, p.stageVolume)
                    or nodes.tumour_segment_problem(p.stageSegmentation))
        return None

    def stagePatientId(self, p):
        """The typed patient id as the EHR table (else the RNA table) spells it ('lung1-003 ' -> 'LUNG1-003',
        results.match_stage_patient), so that the CT joins the patient's rows (lungai stage joins ids exactly); the
        typed id when no table has such an id or can be read (the command then says so).  The table reader (and
        pandas with it, 1.4 s on the GUI thread the first time) is imported only when a table is given (QA
        slicerfollow70: the first Predict stage of a CT without EHR/RNA took ~3 s, half of it this import)."""
        return self.matchedPatientId(p.stagePatient, p.ehrFile, p.rnaFile)

    @staticmethod
    def matchedPatientId(typed, ehrFile, rnaFile):
        """:meth:`stagePatientId` of an id and tables captured when Predict stage was clicked."""
        typed = typed.strip()
        for path, loader in ((ehrFile, "load_ehr"), (rnaFile, "load_rna")):
            if not (commands.is_set(path) and pathlib.Path(path).is_file()):
                continue
            from lungai.fusion import data

            try:
                ids = getattr(data, loader)(path).index
            except Exception:   # a bad table: lungai stage predict reports it
                continue
            found = results.match_stage_patient(typed, ids)
            if found:
                return found
        return typed

    @needs("prediction")
    def startStage(self, p):
        """The job of Predict stage: its first polls (:meth:`prepareStage`, one step a tick of the progress bar, Cancel
        between two) export the CT and its tumour segment (with a one-row CT manifest), then the stage model runs.
        QA slicerfollow70: the CT and its tumour were exported here, on the GUI thread, before the bar and Cancel
        showed (with the table reader's import ~3 s the first time)."""
        problem = self.stageInputProblem(p)     # said at once; what the export finds, by the job (as its failure)
        if problem:
            raise ValueError(problem)
        workDir = nodes.new_work_folder("stage", slicer.app.temporaryPath)
        job = PanelJob(None, workDir / "output", workDir=workDir, parameterNode=p, inputs={"volume": p.stageVolume})
        job.tumourChoice = ""   # shown with the result: which segment the CT branch used (set by the export)
        from lungai.fusion.balance import read_card, recorded_class_balance

        # the model's training patients per class and its rare classes: shown with the result, as stage predict prints
        job.classBalance = recorded_class_balance(p.stageModelDirectory)
        job.modelCard = read_card(p.stageModelDirectory)   # its training notes: why a CT is not used (the CLI's words)
        self.clearGradCam(p)   # an earlier run's Grad-CAM: not shown with this run's result or failure
        job.process = PreparedProcess(self.prepareStage(p, job, workDir))
        return job

    def prepareStage(self, p, job, workDir):
        """The steps of :meth:`startStage`'s job (:class:`LungAICommon.process.PreparedProcess`), with the inputs as
        they were at the click: exports the CT and its tumour segment, writes the CT manifest; returns the command."""
        from LungAICommon.manifest import write_ct_manifest

        volume, segmentation, model = p.stageVolume, p.stageSegmentation, p.stageModelDirectory
        typed, ehrFile, rnaFile = p.stagePatient, p.ehrFile, p.rnaFile
        ehr = ehrFile if commands.is_set(ehrFile) else None
        rna = rnaFile if commands.is_set(rnaFile) else None
        manifest = None
        if volume is not None:
            yield f"exporting the CT '{volume.GetName()}'"
            job.input("volume")           # removed since the click (the Data module): said, run again
            # its voxels read now (MRML), the file made and written in a background thread (QA slicerfollow71)
            ct = yield from background_steps(nodes.volume_writer(volume, workDir / f"ct{nodes.EXPORT_SUFFIX}"),
                                             f"writing the CT '{volume.GetName()}'", "lungai-export-ct")
            job.fileNames[ct] = volume.GetName()
            segment = nodes.tumour_segment_name(segmentation)
            yield f"exporting segment '{segment}'"
            job.input("volume")
            if segmentation.GetScene() is None:
                raise ValueError(f"The segmentation '{segmentation.GetName()}' was removed from the scene while the "
                                 "job ran; run it again")
            mask = nodes.export_segment(slicer.mrmlScene, segmentation, segment, volume,
                                        workDir / f"tumour{nodes.EXPORT_SUFFIX}")
            job.fileNames[mask] = f"'{segment}' ({segmentation.GetName()})"
            job.tumourChoice = nodes.tumour_segment_choice(segmentation)   # GTV-1 of GTV-1, gtv-2, gtv-3
            # the tables are read (and pandas imported) in a background thread, a tick of the bar per poll until
            # done - not in one poll on the GUI thread (QA slicer71: 1.0-2.3 s, LUNG1-003 with an EHR table);
            # files only, no MRML
            matching = BackgroundCall(lambda: self.matchedPatientId(typed, ehrFile, rnaFile),
                                      name="lungai-stage-patient", in_thread=bool(ehr or rna))
            while not matching.done.wait(0.02):     # at most 20 ms a tick (a script's wait() does not spin)
                yield "matching the patient id to the tables"
            manifest = write_ct_manifest(workDir / "ct_manifest.csv", matching.result(), ct.name, mask.name)
        args = commands.stage_predict(model, workDir / "output", ehr=ehr, rna=rna, ct_manifest=manifest)
        return LungAIProcess(args)

    def loadStage(self, p, job):
        """Predictions table, the patient's class probabilities and top genes, Grad-CAM overlay.
        Deletes the job's temporary files."""
        try:
            return self._loadStage(p, pathlib.Path(job.outputs), job.input("volume"), job)
        finally:
            job.finish()

    def _loadStage(self, p, outputDir, volume, job=None):
        predictions = outputDir / "predictions.csv"
        if not predictions.is_file():
            raise results.ResultError(f"lungai stage predict wrote no predictions.csv in {outputDir}")
        rows = results.read_csv_rows(predictions)
        patient = p.stagePatient.strip()
        given = [m for m, path in (("ehr", p.ehrFile), ("rna", p.rnaFile)) if commands.is_set(path)]
        ids = [r.get("patient_id", "") for r in rows]
        # the command predicts every patient of the EHR/RNA tables: the panel shows the one asked for (the same id,
        # spaces around it and case ignored), never another one in its place
        pid = results.match_stage_patient(patient, ids) if patient else (ids[0] if len(rows) == 1 else None)
        if pid is None:
            # no stale prediction of an earlier run either: its table removed if this panel made it (a table of the
            # user's picked as the output is only dropped from the selector)
            from lungai.scene.stage import remove_made_node

            remove_made_node(slicer.mrmlScene, p.stageOutputTable)
            p.stageOutputTable = None
            self.clearGradCam(p)                 # nor an earlier patient's Grad-CAM
            if patient:
                return results.describe_missing_stage_patient(patient, ids, given)
            return (f"{len(rows)} patients predicted; type a patient id (e.g. {', '.join(ids[:3])}) to see one "
                    "patient's stage. No prediction is shown.")
        row = rows[ids.index(pid)]
        from lungai.scene.stage import link_stage_table, made_node_or_none, mark_stage_node

        # a table of the user's picked as the output, or the panel's renamed or edited since, is never written into
        # (nor tagged, so later removed): a new one.  In the CT's study when the run was for the CT's one patient
        p.stageOutputTable = link_stage_table(mark_stage_node(
            nodes.table_from_csv(slicer.mrmlScene, predictions, "Stage predictions",
                                 node=made_node_or_none(p.stageOutputTable),
                                 where={"patient_id": pid})), volume, pid)
        text = results.describe_stage_row(row, pid)
        tumourChoice = getattr(job, "tumourChoice", "") if job is not None else ""
        if tumourChoice:
            text += "\n" + tumourChoice
        warning = results.describe_unused_stage_inputs(row, pid, given + (["ct"] if volume is not None else []), ids,
                                                       getattr(job, "modelCard", None))
        if warning:
            text += "\n" + warning
        notes = str(row.get("notes") or "").strip()   # EHR values not seen in training, an all-zero Grad-CAM
        if notes and notes.lower() != "nan":
            text += "\nNote: " + notes
        for k, line in enumerate(getattr(job, "classBalance", []) if job is not None else []):
            text += "\n" + (line if k == 0 else f"Note: {line}")   # as lungai stage predict's console
        genes = outputDir / "top_genes_per_patient.csv"
        if genes.is_file():
            text += "\n" + results.describe_top_genes(results.read_csv_rows(genes), pid)
        from lungai.fusion import gradcam_file, no_explanation_text

        model = str(row.get("model") or "").strip()
        if model and model != "fusion":   # a baseline predicted (the panel runs the selected model): said, as the CLI
            text += "\nNote: " + no_explanation_text(model, True, "`lungai stage predict --use fusion --explain` "
                                                                 "predicts and explains with the fusion network")
        # no gene Shapley values (no RNA table the model could use ...) / no Grad-CAM (no CT ...): why, as the command
        # printed it (lungai.scene.results.stage_explanation_notes)
        process = getattr(job, "process", None) if job is not None else None
        for note in results.stage_explanation_notes(getattr(process, "lines", None) or ()):
            text += "\nNote: " + note
        from lungai.scene.stage import patient_grad_cam

        # this patient's Grad-CAM, or none: an earlier run's is removed, never shown beside this patient's result
        p.gradcamVolume = patient_grad_cam(slicer.mrmlScene, outputDir / gradcam_file(pid), pid,
                                           node=p.gradcamVolume, ct_volume_node=volume)
        return text

    def clearGradCam(self, p):
        """Remove the Grad-CAM of an earlier stage run (lungai.scene.stage.patient_grad_cam without a map); a volume
        of the user's picked as the Grad-CAM output is only dropped from the selector, never deleted."""
        from lungai.scene.stage import patient_grad_cam

        p.gradcamVolume = patient_grad_cam(slicer.mrmlScene, None, "", node=p.gradcamVolume)

    def run(self, startJob, p, timeout=1800):
        """Run a job to completion (Python console, self-tests); the panel polls it instead."""
        return run_job(startJob, p, timeout, requester=REQUESTER)


class MultimodalPredictTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_rp_risk_on_synthetic_cohort()

    def test_rp_risk_on_synthetic_cohort(self):
        """Train a fast RP model on the synthetic cohort, then predict one patient through the panel logic."""
        from LungAICommon.process import ProcessChain

        require_job_packages(self, MultimodalPredictLogic.startRisk, requester=REQUESTER)   # rp synth / train too
        work = nodes.new_work_folder("rp-test", slicer.app.temporaryPath)
        self.addCleanup(nodes.remove_work_folder, work)
        self.delayDisplay("Training a small RP model on a synthetic cohort")
        cohort, model = work / "cohort.csv", work / "model"
        chain = ProcessChain([["rp", "synth", "-o", str(cohort), "-n", "120"],
                              ["rp", "train", str(cohort), "--outcome", "rp_grade2", "-o", str(model), "--fast",
                               "--models", "lr"]]).start()
        self.assertEqual(chain.wait(timeout=900), 0, chain.error_message())
        import pandas as pd
        from lungai import mrml

        logic = MultimodalPredictLogic()
        p = logic.getParameterNode()
        p.rpModelDirectory = model
        first = pd.read_csv(cohort).iloc[[0]]
        pick = lambda prefix: first[[c for c in first.columns if c.startswith(prefix)]]  # noqa: E731
        p.radiomicsTable = mrml.table_node_from_dataframe(slicer.mrmlScene, pick("rad_"), "radiomics")
        p.doseTable = mrml.table_node_from_dataframe(slicer.mrmlScene, pick("dose_"), "dose")
        p.clinicalValues = json.dumps({k: str(v) for k, v in pick("clin_").iloc[0].items() if pd.notna(v)})
        output = logic.run(logic.startRisk, p)
        headline, contributions = logic.loadRisk(p, output)
        self.assertIn("Risk", headline)
        self.assertEqual(p.rpOutputTable.GetTable().GetNumberOfRows(), 1)
        self.delayDisplay("Test passed")
