"""Drive a :class:`LungAICommon.process.LungAIProcess` from Slicer's event loop (Slicer only).

A ``qt.QTimer`` polls the child every 100 ms, so the GUI never blocks: progress lines move the
progress bar, other lines go to the log box, Cancel interrupts the child, and ``on_finished(job)``
runs in the GUI thread when the child has exited.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import qt

from LungAICommon.process import LungAIProcess, PreparedProcess, ProcessChain

PROGRESS_STEPS = 1000


class QtJobRunner:
    """One job at a time, shown in ``progress_bar`` (QProgressBar) and ``log_box`` (QPlainTextEdit)."""

    def __init__(self, progress_bar, log_box, on_state_changed: Optional[Callable[[bool], None]] = None,
                 interval_ms: int = 100):
        self.progress_bar = progress_bar
        self.log_box = log_box
        self.on_state_changed = on_state_changed
        self.job: Optional[LungAIProcess | ProcessChain | PreparedProcess] = None
        self._on_finished: Optional[Callable[[object], None]] = None
        self._timer = qt.QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.connect("timeout()", self._poll)
        self.progress_bar.setRange(0, PROGRESS_STEPS)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def log(self, text: str) -> None:
        self.log_box.appendPlainText(text)
        logging.info(text)

    def start(self, job, on_finished: Callable[[object], None], title: str = "") -> None:
        if self.running:
            raise RuntimeError("another Lung AI job is still running; wait for it or press Cancel")
        self.job, self._on_finished = job, on_finished
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"{title or 'Running'}: starting")
        self.progress_bar.visible = True
        # a PreparedProcess logs its first command once its inputs are prepared (its first polls)
        command = (job.first_command() if hasattr(job, "first_command")
                   else job.jobs[0].describe() if hasattr(job, "jobs") else job.describe())
        if command:
            self.log("$ " + command)
        job.start()
        self._timer.start()
        self._state(True)

    def cancel(self) -> None:
        if self.running:
            self.log("Cancelling...")
            self.job.cancel(block=False)

    def _state(self, running: bool) -> None:
        if self.on_state_changed:
            self.on_state_changed(running)

    def _poll(self) -> None:
        job = self.job
        if job is None:
            self._timer.stop()
            return
        for event in job.poll():
            if event.kind == "progress":
                self.progress_bar.setValue(int(round(event.fraction * PROGRESS_STEPS)))
                self.progress_bar.setFormat(f"{event.text} (%p%)")
            elif event.text.strip():
                self.log_box.appendPlainText(event.text)
        if job.running:
            return
        self._timer.stop()
        if job.cancelled:
            self.log("Cancelled.")
            self.progress_bar.setFormat("Cancelled")
        elif job.succeeded:
            self.progress_bar.setValue(PROGRESS_STEPS)
            self.progress_bar.setFormat("Done")
        else:
            self.log(f"Failed (exit code {job.returncode}).")
            self.progress_bar.setFormat("Failed")
        callback, self._on_finished = self._on_finished, None
        self._state(False)
        if callback is not None:
            callback(job)
