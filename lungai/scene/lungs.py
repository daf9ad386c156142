"""Lung masks for a volume node, in Slicer's process: "Right lung" and "Left lung" segments (the same
nodes the LungAISeg panel makes; both go through :mod:`lungai.scene.nodes`)."""

from __future__ import annotations

from lungai import mrml
from lungai.io.validate import check_ct
from lungai.lungs import segment_lungs
from lungai.lungs.check import lung_map_notes
from lungai.lungs.segment import LUNG_STEPS
from lungai.progress import CallbackProgress, NullProgress
from lungai.scene import nodes

LUNGS_TASK = "Segment lungs"


def segment_lungs_node(scene, volume_node, seg_node=None, progress=None):
    """Segment the lungs of ``volume_node``; returns (segmentation node, {"Right lung": ml, "Left lung": ml}, warnings,
    notes): ``warnings`` those ``lungai lungs`` prints as ``warning: ...`` (``LungResult.warnings``: no trachea found
    and the airways not removed - the trachea left in the lungs -, lungs cut by the field of view or the first / last
    slice, an uncertain right/left label, a small lung, an air region without lung tissue left out, and - as the
    panel re-derives it from the label file - a map with one lung label (:func:`lungai.lungs.check.lung_map_notes`);
    [] for both lungs wholly in view), ``notes`` those it prints as ``note: ...`` (the airways removed, blank end
    slices left out ...) - as the LungAISeg panel's *Segment lungs* says them:
    ``lungai.scene.results.describe_lungs_result(volumes, warnings, notes)`` is its text.

    Segments are added to ``seg_node`` (or a new node "<CT> lungs"); an earlier run's "Right lung" / "Left lung" there,
    not edited since, are replaced (``notes`` says so), other segments are never overwritten, and a segment of those
    names that is the user's or was edited since is refused before anything runs
    (:func:`lungai.scene.nodes.lungs_to_replace`); one the user edited while it ran (the progress dialog lets the Segment
    Editor work) is left as it is, the lungs then going to a new node, with a note (:func:`nodes.add_lung_outputs`).

    ``progress``: ``callback(fraction, text)``, called after each sub-step ``lungai lungs`` shows (the body's air, the
    airways removed, the right / left split, each lung filled) and once the segments are added, ``text`` naming the
    sub-step ("Segment lungs: airways removed"); a callback returning True stops the segmentation between two sub-steps
    (:class:`lungai.errors.Cancelled`; nothing is added to the scene).  None: in Slicer's application (main window) a
    progress dialog whose Cancel button does that; elsewhere no progress.
    """
    ct = mrml.image_from_volume_node(volume_node)
    check_ct(ct, volume_node.GetName())
    nodes.lungs_to_replace(seg_node, volume_node)          # refused before the segmentation, not after it
    callback, dialog = (progress, None) if progress is not None else _progress_dialog()
    bar = CallbackProgress(LUNG_STEPS + 1, callback, LUNGS_TASK) if callback is not None else NullProgress()
    try:
        result = segment_lungs(ct, progress=bar)
        notes = [note for note in result.notes if note not in result.warnings]     # as `lungai lungs` prints them
        # and, as the panel re-derives it from the label file (nodes.import_lung_outputs), a map with one lung label
        warnings = list(dict.fromkeys(result.warnings + lung_map_notes(result.labels, check_volume=False)))
        out = (*nodes.add_lung_outputs(scene, volume_node, result.labels, seg_node=seg_node, notes=notes,
                                       checked=True), warnings,
               notes)
        if callback is not None:
            callback(1.0, f"{LUNGS_TASK}: segments added")    # done: too late to cancel
        return out
    finally:
        if dialog is not None:
            dialog.close()


def _progress_dialog():
    """(callback, dialog) of a Slicer progress dialog with a Cancel button for :func:`segment_lungs_node`; (None, None)
    outside Slicer's application (slicer-core, a run without main window)."""
    try:
        import slicer

        app = getattr(slicer, "app", None)
        if app is None or app.commandOptions().noMainWindow:
            return None, None
        dialog = slicer.util.createProgressDialog(windowTitle="Lung AI", labelText=f"{LUNGS_TASK}: starting",
                                                  maximum=100, value=0)
    except Exception:        # no GUI to show it in: the segmentation itself must not fail for that
        return None, None

    def callback(fraction: float, text: str) -> bool:
        dialog.value = int(round(100 * fraction))
        dialog.labelText = text
        slicer.app.processEvents()          # draws it, and lets a click on Cancel through
        return bool(dialog.wasCanceled)

    return callback, dialog
