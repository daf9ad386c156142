"""What the three panels share: background jobs that capture their inputs at start, and observers on the
input nodes the parameter node refers to.  Pure Python + VTK (no Qt): tested headless on real MRML.

Why this exists (each point was a defect, see docs/slicer.md):

- A parameter node does not observe the nodes it refers to: placing a seed point changes the point
  list, not the parameter node, so the Apply button would never be enabled.
  :class:`ReferencedNodeObserver` watches the referenced nodes' own events (points added / moved /
  removed, segments added / renamed / removed) and calls the panel's ``updateButtons``.
- A job belongs to the parameter node it was started with, not to the panel's current one:
  :class:`PanelJob` captures the parameter node and the input nodes at start, so a module switch
  (``exit()`` disconnects the GUI) or a changed selector does not change what is loaded at the end.
- A job's exported patient images are deleted when it ends, however it ends (:meth:`PanelJob.finish`).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Optional

from lungai.scene.nodes import remove_work_folder

SCENE_CLOSED = "cancelled because the scene was closed"


def checkSlicerVersion(moduleParent) -> Optional[str]:
    """On an unsupported Slicer (older than 5.10) log the problem and put it first in the module's help;
    returns the message (None on a supported Slicer)."""
    import slicer

    from LungAICommon.requirements import slicer_version_problem

    app = getattr(slicer, "app", None)
    problem = slicer_version_problem(int(getattr(app, "majorVersion", 99)), int(getattr(app, "minorVersion", 0)))
    if problem:
        logging.error(problem)
        moduleParent.helpText = f"<b>{problem}</b><br><br>" + (moduleParent.helpText or "")
    return problem


def default_ct_volume(scene):
    """The volume a panel selects as the CT when none is chosen: the first scalar volume that is not a
    labelmap (``GetFirstNodeByClass("vtkMRMLScalarVolumeNode")`` returns labelmaps too, a subclass) and not
    hidden from the selectors; None when there is none."""
    nodes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode") if scene is not None else None
    for i in range(nodes.GetNumberOfItems() if nodes is not None else 0):
        node = nodes.GetItemAsObject(i)
        if not node.IsA("vtkMRMLLabelMapVolumeNode") and not node.GetHideFromEditors():
            return node
    return None


def input_node_events(node) -> tuple:
    """The events of ``node`` after which a panel must re-check its inputs (besides ModifiedEvent)."""
    import slicer

    if node is None:
        return ()
    if node.IsA("vtkMRMLMarkupsNode"):
        m = slicer.vtkMRMLMarkupsNode
        return (m.PointAddedEvent, m.PointRemovedEvent, m.PointPositionDefinedEvent,
                m.PointPositionUndefinedEvent, m.PointModifiedEvent)
    if node.IsA("vtkMRMLSegmentationNode"):
        s = slicer.vtkSegmentation
        return (s.SegmentAdded, s.SegmentRemoved, s.SegmentModified)
    return ()


class ReferencedNodeObserver:
    """Calls ``callback()`` when one of the observed nodes changes (its ModifiedEvent and the events of
    :func:`input_node_events`).  :meth:`observe` takes the current nodes and moves the observers."""

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self._tags: dict = {}          # node -> [observer tags]

    def _changed(self, caller=None, event=None):
        self.callback()

    def observe(self, nodes: Iterable) -> None:
        import vtk

        wanted = {n for n in nodes if n is not None}
        for node in [n for n in self._tags if n not in wanted]:
            for tag in self._tags.pop(node):
                node.RemoveObserver(tag)
        for node in wanted - set(self._tags):
            events = (vtk.vtkCommand.ModifiedEvent, *input_node_events(node))
            self._tags[node] = [node.AddObserver(event, self._changed) for event in events]

    @property
    def nodes(self) -> list:
        return list(self._tags)

    def clear(self) -> None:
        self.observe(())


class PanelJob:
    """One background job: the child process (``process``), the outputs it will write, the parameter
    node and input nodes captured when it started, and its work folder (deleted by :meth:`finish`).

    ``run_job`` / the panel's job runner start ``process``; ``load...`` methods read ``inputs`` and
    ``outputs`` and write results into ``parameterNode``.
    """

    def __init__(self, process, outputs=None, inputs: Optional[dict] = None, workDir=None, parameterNode=None,
                 fileNames: Optional[dict] = None, packageNote: str = ""):
        self.process = process
        self.outputs = outputs
        self.inputs = dict(inputs or {})
        self.workDir = workDir
        self.parameterNode = parameterNode
        self.fileNames = dict(fileNames or {})   # {exported temporary file: node / segment name}
        self.cancelReason = ""
        # packages newer than tested, used as they are (LungAICommon.install.last_note when the job started)
        self.packageNote = packageNote

    def errorMessage(self, text: Optional[str] = None) -> str:
        """The process's error (or ``text``) naming the user's nodes instead of the exported temporary files."""
        from LungAICommon.process import name_work_files

        return name_work_files(self.process.error_message() if text is None else text, self.fileNames)

    def failureMessage(self, text: Optional[str] = None) -> str:
        """:meth:`errorMessage` of a job that failed, with the packages newer than tested it ran on
        (:attr:`packageNote`), a likely cause."""
        error = self.errorMessage(text)
        return f"{error}\n\nNote: {self.packageNote}" if self.packageNote else error

    def input(self, name):
        """A captured input node; a clear error when the user removed it from the scene during the run."""
        node = self.inputs.get(name)
        if node is not None and node.GetScene() is None:
            raise ValueError(f"The input '{name}' ({node.GetName()}) was removed from the scene while the job ran; "
                             "run it again")
        return node

    def output(self, name):
        """A captured node the results go into (Segment tumour's / Segment lungs' output segmentation), or None when
        the user removed it from the scene during the run: the results then go to a new node, as when none was chosen
        (:meth:`removedOutputNote` says so).  Before (QA slicer72), such a node was refused as a removed *input* - "run
        it again" - and the run's result was lost (LUNG1-003's tumour: 20-50 s of work)."""
        node = self.inputs.get(name)
        return node if node is not None and node.GetScene() is not None else None

    def removedOutputNote(self, name, node) -> Optional[str]:
        """What the panel says when the output ``name`` captured at the start was removed during the run and the
        results went to ``node`` instead (:meth:`output`); None when it was not removed."""
        chosen = self.inputs.get(name)
        if chosen is None or chosen.GetScene() is not None or node is None:
            return None
        return (f"the output {name} '{chosen.GetName()}' was removed from the scene during the run: the results are "
                f"in the new {name} '{node.GetName()}' (choose it, or another, as the output before the next run)")

    def finish(self) -> None:
        """Delete the work folder (exported inputs and outputs already loaded)."""
        remove_work_folder(self.workDir)
        self.workDir = None


def needs(feature: str):
    """Marks a logic's ``start...`` method with the feature (:data:`LungAICommon.requirements.FEATURES`) whose
    packages its job needs - the one place that says it: the panel buttons (:meth:`PanelWidgetMixin.startJob`),
    :func:`run_job` (Python console) and the self-tests (:func:`require_job_packages`) all read it here."""
    from LungAICommon.requirements import FEATURES

    if feature not in FEATURES:
        raise KeyError(f"unknown feature {feature!r}; known: {sorted(FEATURES)}")

    def mark(start_job):
        start_job.lungai_feature = feature
        return start_job

    return mark


def job_feature(start_job) -> str:
    """The feature a ``start...`` method was marked with by :func:`needs`."""
    feature = getattr(start_job, "lungai_feature", None)
    if feature is None:
        raise TypeError(f"{getattr(start_job, '__qualname__', start_job)!r} does not say which packages its job "
                        "needs: decorate it with @LungAICommon.panel.needs(feature)")
    return feature


def packages_not_ready(feature: str) -> str:
    """Why the packages of ``feature`` are not ready, after :func:`LungAICommon.install.ensure` returned False: the
    packages still missing (with an old version found, if any) and the reason it gave (install failed, declined, an
    old torch, a pydicom Slicer keeps ...)."""
    from LungAICommon import install, requirements

    missing = requirements.explain(feature, requirements.missing(feature))
    listed = f" ({missing})" if missing else ""
    reason = install.last_problem or "see the message shown and Slicer's Python console (View -> Python Console)"
    return f"the Python packages of '{feature}'{listed} are not ready: {reason}"


def require_job_packages(test, *start_jobs, requester: str) -> None:
    """For a module's self-test: install the packages the jobs of ``start_jobs`` need - without asking in Slicer's
    testing mode (``--testing``: the extension build servers), after the usual confirmation when a user runs it
    ("Reload and Test", the Python console: torch is GBs); when they are not ready (offline build server,
    declined, an old torch ...) the test is skipped with the reason instead of failing in the child with ModuleNotFoundError."""
    import slicer

    from LungAICommon import install

    unattended = bool(slicer.app.testingEnabled())
    for feature in dict.fromkeys(job_feature(j) for j in start_jobs):
        if not install.ensure(feature, requester, unattended=unattended):
            test.skipTest(f"{requester} self-test skipped: {packages_not_ready(feature)} Fix that and run the test "
                          "again.")


def run_job(start_job, parameters, timeout: Optional[float] = 1800, requester: str = "Lung AI") -> PanelJob:
    """Start a panel job (``start_job(parameters) -> PanelJob``), wait for it and return it (its outputs
    are then loaded with the logic's ``load...`` method, which deletes the work folder).

    For the Python console and self-tests; the panels poll the same job from a Qt timer instead.  The packages
    the job needs (:func:`needs`) are installed first, as the panel buttons do (after asking); when they are not
    ready, RuntimeError says which and why (:func:`packages_not_ready`).  On failure the work folder is deleted
    and RuntimeError names the command and its error.
    """
    from LungAICommon import install

    feature = job_feature(start_job)
    if not install.ensure(feature, requester):
        raise RuntimeError(f"{requester}: nothing was started - {packages_not_ready(feature)}")
    job = start_job(parameters)
    job.packageNote = install.last_note
    try:
        job.process.start()
        if job.process.wait(timeout=timeout) != 0:
            raise RuntimeError(f"{job.process.describe()} failed: {job.failureMessage()}")
    except BaseException:
        job.process.cancel(block=True)
        job.finish()
        raise
    return job


def finish_job(job: PanelJob, onFinished: Callable[[PanelJob], object], showError: Callable[[str, str], None],
               log: Callable[[str], None]) -> Optional[object]:
    """What a panel does when its job's process has ended: report a cancel / failure, else load the
    outputs with ``onFinished(job)``; the work folder is deleted in every case."""
    process = job.process
    try:
        if process.cancelled:
            log(f"Cancelled{' - ' + job.cancelReason if job.cancelReason else ''}.")
            return None
        if not process.succeeded:
            showError(f"Lung AI failed: {job.failureMessage()}", "\n".join(process.lines))
            return None
        return onFinished(job)
    except Exception as exc:  # noqa: BLE001 - shown to the user, never lost
        logging.exception("Lung AI: loading the results failed")
        showError(f"Could not load the results: {job.failureMessage(str(exc))}", "\n".join(process.lines))
        return None
    finally:
        job.finish()


class PanelWidgetMixin:
    """Widget behaviour the three panels share (Slicer only: uses ``slicer.util`` in its methods).

    List it *first* among the widget's base classes: ScriptedLoadableModuleWidget defines ``cleanup``
    (and may define more), which would otherwise hide the versions here.

    The widget class sets ``REQUESTER``, ``self.logic``, ``self.ui``, ``self.runner`` (a
    :class:`LungAICommon.qtjob.QtJobRunner`), calls :meth:`initPanel` in ``__init__`` and defines
    ``updateButtons()`` and ``observedInputs(p)`` (the input nodes whose changes can enable or disable
    a button).  ``EXTRA_LOCKED`` names widgets without a ``SlicerParameterName`` that are locked
    while a job runs, like the bound ones.
    """

    EXTRA_LOCKED: tuple = ()
    REQUESTER = "Lung AI"

    def initPanel(self):
        import slicer

        from lungai import mrml
        from lungai.scene import nodes

        # the tables' exact values follow edits in Slicer's table view, so Slicer's own save keeps them (once)
        mrml.keep_exact_values_current(slicer.mrmlScene)
        # the confidence tables follow their segments (edited, renamed, deleted), wherever the user is (once)
        nodes.keep_confidence_tables_current(slicer.mrmlScene)
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.runner = None
        self.job: Optional[PanelJob] = None
        self.inputObserver = ReferencedNodeObserver(self.updateButtons)

    @property
    def busy(self) -> bool:
        return self.runner is not None and self.runner.running

    # ------------------------------------------------------------ parameter node
    def setParameterNode(self, inputParameterNode):
        import vtk

        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()
        else:
            self.inputObserver.clear()

    def onParameterNodeModified(self, caller=None, event=None):
        p = self._parameterNode
        self.inputObserver.observe(self.observedInputs(p) if p is not None else ())
        self.updateButtons()

    def observedInputs(self, p) -> list:
        return []

    def lockInputs(self, busy: bool) -> None:
        """Every bound widget (and ``EXTRA_LOCKED``) disabled while a job runs: the job's inputs were captured."""
        for name, widget in vars(self.ui).items():
            property_ = getattr(widget, "property", None)
            bound = callable(property_) and bool(property_("SlicerParameterName"))
            if bound or name in self.EXTRA_LOCKED:
                widget.enabled = not busy

    # ------------------------------------------------------------ module / scene events
    def exit(self):
        """Leaving the module disconnects the GUI; a running job goes on and loads its results."""
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        if self.busy and self.job is not None:
            self.job.cancelReason = SCENE_CLOSED
            self.runner.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def cleanup(self):
        if self.busy:
            self.runner.cancel()
        self.inputObserver.clear()
        self.removeObservers()

    # ------------------------------------------------------------ jobs
    def startJob(self, message: str, startJob, onFinished, title: str) -> Optional[PanelJob]:
        """Install the packages the job needs (:func:`needs` on ``startJob``) if needed, capture the inputs
        (``startJob(p)``), start the child."""
        import slicer

        from LungAICommon import install

        job = None
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            if not install.ensure(job_feature(startJob), self.REQUESTER):
                return None
            job = startJob(self._parameterNode)
            job.packageNote = install.last_note
            try:
                self.runner.start(job.process, lambda process: self.onJobEnded(job, onFinished), title=title)
            except BaseException:
                job.finish()
                raise
            self.job = job
            if job.packageNote:
                self.runner.log(f"Note: {job.packageNote}")
        self.updateButtons()
        return job

    def onJobEnded(self, job: PanelJob, onFinished):
        import slicer

        finish_job(job, onFinished, lambda text, details: slicer.util.errorDisplay(text, detailedText=details),
                   self.runner.log)
        self.job = None
        if self._parameterNode is not None:
            self.updateButtons()
