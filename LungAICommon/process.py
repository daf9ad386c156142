"""Run a ``lungai`` command in a child process, stream its progress, cancel it.

The Slicer panels run long work (training, ensemble inference, batch radiomics) this way so the
GUI thread never blocks: a Qt timer calls :meth:`LungAIProcess.poll` every ~100 ms (see
:mod:`LungAICommon.qtjob`).  The child gets ``LUNGAI_PROGRESS=lines`` so :mod:`lungai.progress`
prints ``LUNGAI_PROGRESS done/total desc: msg`` lines, parsed here into progress events.

Pure Python (no Qt): unit-tested with a real ``python -m lungai`` child.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

# The core's progress lines (``LUNGAI_PROGRESS done/total desc: msg``); lungai.progress imports
# only the standard library at import time, so the panels can use its parser directly.
from lungai.progress import PREFIX as PROGRESS_PREFIX  # noqa: E402
from lungai.progress import parse_line as parse_progress  # noqa: E402


@dataclass
class ProcessEvent:
    """One line from the child: ``kind`` is "progress" (with ``fraction``) or "log"."""

    kind: str
    text: str
    fraction: Optional[float] = None


def lungai_package_parent() -> str:
    """The folder that holds the ``lungai`` package (the extension's scripted-modules folder)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "lungai" / "__init__.py").is_file():
        return str(here)
    import lungai  # light: only the package __init__

    return str(Path(lungai.__file__).resolve().parent.parent)


def _base_environment() -> dict:
    """Inside Slicer the environment Slicer was started with (as ``slicer.util.launchConsoleProcess``
    uses; ``PythonSlicer`` sets up its own paths), else this process's environment."""
    slicer = sys.modules.get("slicer")
    startup = getattr(getattr(slicer, "util", None), "startupEnvironment", None)
    if callable(startup) and getattr(slicer, "app", None) is not None:
        try:
            return dict(startup())
        except Exception:  # noqa: BLE001 - fall back to the current environment
            pass
    return dict(os.environ)


# Windows process-creation flags (values from the Windows API, so that the choice can be tested on Linux,
# where the subprocess module does not define them).
CREATE_NEW_PROCESS_GROUP = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200)
CREATE_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)


def popen_options(os_name: str = os.name) -> dict:
    """``subprocess.Popen`` options for a child that shows no console window and can be stopped with
    everything it started (``PythonSlicer`` is a launcher that starts the real Python as its child).

    Windows: no console window (CREATE_NO_WINDOW) and its own process group.  Elsewhere: its own
    session, so one signal to the group reaches the launcher, the Python child and its workers.
    """
    if os_name == "nt":
        return {"creationflags": CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_tree(pid: int, os_name: str = os.name, run=subprocess.run) -> None:
    """Stop ``pid`` and every process it started.

    Windows: ``taskkill /F /T`` (the tree, by parent process id; ``Popen.kill`` would stop only the
    launcher and leave the real Python running).  Elsewhere: SIGKILL to the child's process group.
    """
    if os_name == "nt":
        result = run(["taskkill", "/F", "/T", "/PID", str(pid)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL, creationflags=CREATE_NO_WINDOW)
        if getattr(result, "returncode", 0) not in (0, 128):     # 128: the process had already exited
            logging.warning("taskkill could not stop process %s: %s", pid, getattr(result, "stdout", ""))
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def interrupt(pid: int, os_name: str = os.name) -> bool:
    """Ask the child to stop cleanly (Ctrl-C: the CLI exits with 130, writing nothing half-done).

    Returns False when that is not possible - on Windows a child without a console cannot receive
    Ctrl-C / Ctrl-Break - and the caller then stops the process tree at once.
    """
    if os_name == "nt":
        return False
    try:
        os.killpg(pid, signal.SIGINT)
    except ProcessLookupError:
        return True          # already gone
    except OSError as exc:
        logging.warning("could not interrupt process group %s (%s); stopping it", pid, exc)
        return False
    return True


def python_executable() -> str:
    """The interpreter for the child: ``PythonSlicer`` inside Slicer, else this Python."""
    import sysconfig

    name = "PythonSlicer.exe" if os.name == "nt" else "PythonSlicer"
    candidate = Path(sysconfig.get_path("scripts")) / name
    return str(candidate) if candidate.is_file() else sys.executable


class LungAIProcess:
    """A ``lungai <args>`` child process (see :attr:`command`) with non-blocking line events.

    >>> job = LungAIProcess(["sample", "-o", "/tmp/s"]); job.start()
    >>> while job.running: events = job.poll()  # from a timer, not a busy loop
    """

    def __init__(self, args: Sequence[str], python: Optional[str] = None, env: Optional[dict] = None,
                 cwd: Optional[str] = None):
        self.args = [str(a) for a in args]
        self.python = python or python_executable()
        self.extra_env = dict(env or {})
        self.cwd = cwd
        self.lines: list[str] = []          # every non-progress line, for the log box / error text
        self.fraction = 0.0
        self.status = ""
        self.cancelled = False
        self._proc: Optional[subprocess.Popen] = None
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader: Optional[threading.Thread] = None
        self._eof = False
        self._kill_at: Optional[float] = None

    @property
    def command(self) -> list[str]:
        """``python -c <bootstrap> <args>``: the bootstrap puts the folder holding ``lungai`` first on
        ``sys.path`` (inside Slicer an extension's folder is not on the child's path otherwise) and
        turns Ctrl-C back on: a parent started in the background (``cmd &``, nohup, some launchers)
        passes SIGINT on as *ignored*, and Python then never raises KeyboardInterrupt - Cancel would
        do nothing until the kill after the grace period.  A Cancel while it imports ``lungai.cli`` ends it as one
        later (``lungai.cli.main`` says the rest): "lungai: cancelled", exit status 130 - not a KeyboardInterrupt
        traceback in the panel's log and -2 (QA slicerfollow71: Cancel in the first seconds of Predict stage)."""
        bootstrap = ("import sys\n"
                     "try:\n"
                     "    import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                     f"    sys.path.insert(0, {lungai_package_parent()!r}); from lungai.cli import main\n"
                     "except KeyboardInterrupt:\n"
                     "    print('lungai: cancelled', file=sys.stderr); raise SystemExit(130)\n"
                     "raise SystemExit(main())")
        return [self.python, "-c", bootstrap, *self.args]

    def describe(self) -> str:
        return "lungai " + " ".join(self.args)

    def environment(self) -> dict:
        env = _base_environment()
        env.update(self.extra_env)
        env["LUNGAI_PROGRESS"] = "lines"
        env["PYTHONUNBUFFERED"] = "1"
        # the child writes what this process reads (start: encoding="utf-8"): a pipe's encoding is otherwise the
        # system's ANSI code page on Windows (cp1252 ...: Slicer 5.10's launcher sets no PYTHONUTF8, 5.12's does),
        # and a CT, segment or folder name outside it crashed the child with UnicodeEncodeError as it printed the
        # result ("Łukasz", "病人"); one inside it ("José") came back as "Jos\ufffd", so the temporary files named
        # in a message were not replaced by the user's names
        env["PYTHONIOENCODING"] = "utf-8"
        parent = lungai_package_parent()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
        return env

    def start(self) -> "LungAIProcess":
        if self._proc is not None:
            raise RuntimeError("this process was already started; create a new LungAIProcess")
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=self.environment(), cwd=self.cwd,
                                      text=True, encoding="utf-8", errors="replace", bufsize=1, **popen_options())
        self._reader = threading.Thread(target=self._read, name="lungai-output", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._queue.put(line.rstrip("\r\n"))
        self._queue.put(None)

    # ------------------------------------------------------------------ state
    @property
    def started(self) -> bool:
        return self._proc is not None

    @property
    def running(self) -> bool:
        """True until the child has exited *and* all its output was polled."""
        return self._proc is not None and not (self._eof and self._proc.poll() is not None)

    @property
    def returncode(self) -> Optional[int]:
        return None if self._proc is None or self.running else self._proc.returncode

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.cancelled

    def error_message(self) -> str:
        """The CLI's error (``lungai <cmd>: error: problem`` and the ``How to fix: ...`` line that
        :class:`lungai.errors.LungAIError` prints after it) or the last output lines."""
        for i in range(len(self.lines) - 1, -1, -1):
            line = self.lines[i]
            if ": error:" in line:
                # the CLI exits right after printing the error: every line after it belongs to it
                rest = [text.strip() for text in self.lines[i + 1:] if text.strip()]
                return "\n".join([line.split(": error:", 1)[1].strip(), *rest])
        tail = [line for line in self.lines[-5:] if line.strip()]
        return "\n".join(tail) or f"the command exited with code {self.returncode}"

    # ------------------------------------------------------------------ events
    def poll(self) -> list[ProcessEvent]:
        """Events for the lines printed since the last call; never blocks."""
        if self._kill_at is not None and time.monotonic() > self._kill_at:
            self._kill()
        events = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._eof = True
                if self._proc is not None:
                    self._proc.wait()
                break
            parsed = parse_progress(line)
            if parsed is not None:
                self.fraction, self.status = parsed
                events.append(ProcessEvent("progress", parsed[1], parsed[0]))
            else:
                self.lines.append(line)
                events.append(ProcessEvent("log", line))
        return events

    def wait(self, timeout: Optional[float] = None) -> int:
        """Block until the child exits (for scripts and self-tests; the GUI uses :meth:`poll`)."""
        if self._proc is None:
            raise RuntimeError("the process was not started")
        self._proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        while self.running:
            self.poll()
        return self._proc.returncode

    def cancel(self, grace_seconds: float = 5.0, block: bool = False) -> None:
        """Interrupt the child (as Ctrl-C: the CLI stops cleanly and exits with 130).

        If it has not exited after ``grace_seconds`` the whole process tree is killed - by the next
        :meth:`poll` (``block=False``, for the GUI) or right here (``block=True``).  Where a clean
        interrupt is impossible (Windows: the child has no console) the tree is killed at once.
        """
        if self._proc is None or self._proc.poll() is not None:
            return
        self.cancelled = True
        if not interrupt(self._proc.pid):
            self._kill()
            return
        self._kill_at = time.monotonic() + grace_seconds
        if block:
            try:
                self._proc.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                self._kill()

    def _kill(self) -> None:
        self._kill_at = None
        if self._proc is None:
            return
        kill_tree(self._proc.pid)     # also when the launcher has exited: its children may still run
        self._proc.wait()


def name_work_files(text: str, names: Optional[dict] = None) -> str:
    """``text`` (a command's error) with the temporary files the panel exported replaced by what the user
    knows them as: ``names`` is {temporary path or other text: node / segment name}, e.g.
    {".../lungai-segment-x/ct.nrrd": "LUNG1-003"}.  A path is matched as given and resolved."""
    pairs = []
    for key, name in (names or {}).items():
        for variant in {str(key), str(Path(key).resolve()) if isinstance(key, Path) else str(key)}:
            pairs.append((variant, str(name)))
    for key, name in sorted(pairs, key=lambda pair: -len(pair[0])):   # a longer path before a shorter one
        if key:
            text = text.replace(key, name)
    return text


class ProcessChain:
    """Several ``lungai`` commands run one after the other, with the interface of one process.

    The progress fraction spans the whole chain; the chain stops at the first failure or on cancel - except for
    the ``optional`` commands (their indices): one of them failing (not cancelled) is recorded
    (:meth:`failed_optional`) and the chain goes on, e.g. one segment's features among others.
    """

    def __init__(self, commands: Sequence[Sequence[str]], optional: Sequence[int] = (), **kwargs):
        if not commands:
            raise ValueError("a process chain needs at least one command")
        self.jobs = [LungAIProcess(args, **kwargs) for args in commands]
        self.optional = frozenset(int(i) for i in optional)
        self.index = 0
        self.fraction = 0.0
        self.status = ""

    @property
    def current(self) -> LungAIProcess:
        return self.jobs[self.index]

    @property
    def args(self) -> list[str]:
        return self.jobs[0].args

    def describe(self) -> str:
        return "; ".join(job.describe() for job in self.jobs)

    @property
    def lines(self) -> list[str]:
        return [line for job in self.jobs for line in job.lines]

    @property
    def cancelled(self) -> bool:
        return any(job.cancelled for job in self.jobs)

    def start(self) -> "ProcessChain":
        self.current.start()
        return self

    @property
    def started(self) -> bool:
        return self.jobs[0].started

    def _goes_on(self, index: int) -> bool:
        """Job ``index`` has ended so that the chain may go on: it succeeded, or it is optional and failed
        (not cancelled)."""
        job = self.jobs[index]
        return job.succeeded or (index in self.optional and job.returncode is not None and not job.cancelled)

    def failed_optional(self) -> list[int]:
        """The indices of the optional commands that ran and failed."""
        return [i for i in sorted(self.optional) if i < len(self.jobs) and self.jobs[i].returncode not in (None, 0)
                and not self.jobs[i].cancelled]

    def _advance(self) -> Optional[ProcessEvent]:
        job = self.current
        if job.running or not self._goes_on(self.index) or self.index + 1 >= len(self.jobs):
            return None
        self.index += 1
        self.current.start()
        return ProcessEvent("log", "$ " + self.current.describe())

    @property
    def running(self) -> bool:
        job = self.current
        if job.running:
            return True
        return self._goes_on(self.index) and self.index + 1 < len(self.jobs)

    @property
    def returncode(self) -> Optional[int]:
        if self.running:
            return None
        return 0 if self.succeeded else self.current.returncode

    @property
    def succeeded(self) -> bool:
        return not self.running and all(self._goes_on(i) for i in range(len(self.jobs)))

    def error_message(self) -> str:
        return self.current.error_message()

    def poll(self) -> list[ProcessEvent]:
        n = len(self.jobs)
        events = []
        for event in self.current.poll():
            if event.kind == "progress":
                event = ProcessEvent("progress", f"step {self.index + 1}/{n}: {event.text}",
                                     (self.index + (event.fraction or 0.0)) / n)
                self.fraction, self.status = event.fraction, event.text
            events.append(event)
        advanced = self._advance()
        if advanced is not None:
            events.append(advanced)
        return events

    def wait(self, timeout: Optional[float] = None) -> int:
        while True:
            code = self.current.wait(timeout=timeout)
            if self._advance() is None:
                return code if self.running else self.returncode

    def cancel(self, grace_seconds: float = 5.0, block: bool = False) -> None:
        self.current.cancel(grace_seconds=grace_seconds, block=block)


PREPARING = "preparing the inputs"


def run_steps(steps):
    """Run a preparation generator (:class:`PreparedProcess`'s ``steps``) to its end at once; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


class _InnerJobs:
    """``jobs``: the commands' processes of the wrapped :class:`ProcessChain` (``self.inner``; Lung Radiomics: one per
    segment) - AttributeError while there is none (not prepared yet) or it is one process, as for that process."""

    @property
    def jobs(self) -> list:
        jobs = getattr(self.inner, "jobs", None)
        if jobs is None:
            raise AttributeError("jobs")
        return jobs


class PreparedProcess(_InnerJobs):
    """Python preparation (a panel exporting its inputs from MRML, which lives on the GUI thread) run one step per
    :meth:`poll`, then the process it builds - with the interface of one process, so that the panel's progress bar
    and Cancel are there from the click on Apply.

    ``steps`` is a generator: each ``yield "text"`` ends a step and names the next one (shown as
    ``"preparing the inputs: text"`` while it runs, fraction 0); its ``return`` value is the process to run
    (:class:`LungAIProcess` / :class:`ProcessChain`), started by the same poll and logged as ``$ lungai ...``.
    :meth:`cancel` during the preparation closes the generator (its ``finally`` blocks run) and starts nothing.  An
    error of the preparation ends the job as failed, its text as :meth:`error_message` (the panel's failure dialog:
    the problem and its fix); :meth:`wait` (scripts, self-tests) runs every step at once and raises it as it was.
    QA slicer70: Lung Radiomics' start exported the CT and every segment on the GUI thread before its progress bar
    and Cancel showed (1.3-2.8 s with 3-4 segments of LUNG1-002 / LUNG1-003 on a loaded machine, more with a dose).
    """

    def __init__(self, steps, label: str = PREPARING):
        self._steps = steps
        self.label = label
        self.inner = None
        self.error: Optional[BaseException] = None
        self._cancelled = False
        self.fraction = 0.0
        self.status = label
        self._started = False
        self._prepared_lines: list[str] = []

    # ------------------------------------------------------------------ state
    @property
    def started(self) -> bool:
        return self._started

    @property
    def cancelled(self) -> bool:
        return self._cancelled or (self.inner is not None and bool(self.inner.cancelled))

    @property
    def preparing(self) -> bool:
        """Started, the process not built yet, and neither cancelled nor failed."""
        return self._started and self.inner is None and self.error is None and not self._cancelled

    @property
    def running(self) -> bool:
        return self.preparing or (self.inner is not None and self.inner.running)

    @property
    def returncode(self) -> Optional[int]:
        if self.running or not self._started:
            return None
        if self.inner is not None:
            return self.inner.returncode
        return 130 if self._cancelled else 1        # as the CLI: 130 interrupted, 1 an error

    @property
    def succeeded(self) -> bool:
        return self.inner is not None and not self.cancelled and self.inner.succeeded


    @property
    def args(self) -> list[str]:
        return self.inner.args if self.inner is not None else []

    @property
    def lines(self) -> list[str]:
        return self._prepared_lines + (list(self.inner.lines) if self.inner is not None else [])

    def describe(self) -> str:
        return self.inner.describe() if self.inner is not None else f"lungai ({self.label})"

    def first_command(self) -> Optional[str]:
        """The first command's ``lungai ...`` once prepared, else None (the runner logs it when it starts)."""
        if self.inner is None:
            return None
        return self.inner.jobs[0].describe() if hasattr(self.inner, "jobs") else self.inner.describe()

    def error_message(self) -> str:
        if self.inner is not None:
            return self.inner.error_message()
        if self.error is not None:
            from lungai.errors import LungAIError

            if isinstance(self.error, (LungAIError, ValueError)):     # the problem and its fix, as the panel said them
                return str(self.error)
            return f"{type(self.error).__name__}: {self.error} (while {self.label})"
        return "cancelled while preparing the inputs" if self.cancelled else ""

    def failed_optional(self) -> list[int]:
        return self.inner.failed_optional() if self.inner is not None and hasattr(self.inner, "failed_optional") \
            else []

    # ------------------------------------------------------------------ running
    def start(self) -> "PreparedProcess":
        if self._started:
            raise RuntimeError("this process was already started; create a new one")
        self._started = True
        if self.inner is not None:     # prepared already (:meth:`prepare`): its process starts now
            self.inner.start()
        return self

    def prepare(self):
        """Run every preparation step at once and build the process without starting it - for a script or self-test
        that looks at the commands (:attr:`args`) or the prepared inputs before (or instead of) running them; an error
        of the preparation is raised as it was.  :meth:`start` then starts the process.  Returns the process."""
        if self._started:
            raise RuntimeError("prepare() before start(): the panel's polls prepare a started process")
        if self.inner is None and self.error is None and not self._cancelled:
            try:
                self.inner = run_steps(self._steps)
            except BaseException as exc:  # noqa: BLE001 - kept for error_message, raised as it was
                self.error = exc
                raise
        if self.error is not None:
            raise self.error
        return self.inner

    def _step(self) -> list[ProcessEvent]:
        """One preparation step; the process started when the preparation is done."""
        try:
            text = next(self._steps)
        except StopIteration as done:
            self.inner = done.value
            self.inner.start()
            command = self.first_command()
            return [ProcessEvent("log", "$ " + command)] if command else []
        except BaseException as exc:  # noqa: BLE001 - the job fails with it (error_message); wait() re-raises it
            self.error = exc
            if not isinstance(exc, (ValueError, KeyboardInterrupt)):
                logging.getLogger(__name__).warning("Lung AI: %s failed", self.label, exc_info=True)
            self._prepared_lines.append(f"error: {self.error_message()}")
            return [ProcessEvent("log", f"error: {self.error_message()}")]
        self.status = f"{self.label}: {text}" if text else self.label
        return [ProcessEvent("progress", self.status, 0.0)]

    def poll(self) -> list[ProcessEvent]:
        """While preparing: run one step (a progress event naming the next); then the process's events."""
        if self.preparing:
            return self._step()
        if self.inner is not None:
            events = self.inner.poll()
            self.fraction, self.status = getattr(self.inner, "fraction", 0.0), getattr(self.inner, "status", "")
            return events
        return []

    def wait(self, timeout: Optional[float] = None) -> int:
        """Prepare at once (an error of the preparation is raised as it was), then wait for the process."""
        if not self._started:
            raise RuntimeError("the process was not started")
        while self.preparing:
            self._step()
        if self.error is not None:
            raise self.error
        if self.inner is None:
            return self.returncode
        return self.inner.wait(timeout=timeout)

    def cancel(self, grace_seconds: float = 5.0, block: bool = False) -> None:
        if self.inner is not None:
            self.inner.cancel(grace_seconds=grace_seconds, block=block)
            return
        if self.preparing or not self._started:
            self._cancelled = True
            self._steps.close()         # its finally blocks run; nothing more is exported, no child started


class BackgroundCall:
    """``function()`` (files only - never MRML, which lives on the GUI thread) run in a daemon thread, so that a
    panel's timer polls on while it reads: :attr:`done` is set when it has ended, :meth:`result` is its value or raises
    its error as it was.  ``in_thread=False`` runs it at once in the caller's thread (scripts, self-tests)."""

    def __init__(self, function, name: str = "lungai-background", in_thread: bool = True):
        self.done = threading.Event()
        self._value = None
        self._error: Optional[BaseException] = None
        if in_thread:
            threading.Thread(target=self._run, args=(function,), name=name, daemon=True).start()
        else:
            self._run(function)

    def _run(self, function) -> None:
        try:
            self._value = function()
        except BaseException as exc:  # noqa: BLE001 - raised by result(), in the caller's thread
            self._error = exc
        finally:
            self.done.set()

    def result(self):
        self.done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def background_steps(function, text: str, name: str = "lungai-background"):
    """Steps of a :class:`PreparedProcess` (``result = yield from background_steps(...)``) that run ``function``
    (files only, no MRML) in a :class:`BackgroundCall`, ``text`` said a tick of the bar per poll until it has ended
    (at most 20 ms a poll; a script's ``run_steps`` / ``wait()`` just waits); returns its value or raises its error.
    Closed early (Cancel) it still waits for ``function`` to end, so that the work folder is deleted after it, not
    under it."""
    call = BackgroundCall(function, name=name)
    try:
        while not call.done.wait(0.02):
            yield text
    finally:
        call.done.wait()
    return call.result()


READING = "reading the results"


class ReadingProcess(_InnerJobs):
    """A process whose result files are read in a background thread once it has succeeded - with the interface of one
    process, so that the panel's runner keeps polling (the progress bar says :attr:`label`, the GUI stays live) until
    the files are read, and its ``load...`` method then gets them from :meth:`read_result` instead of reading them on
    the GUI thread.  ``read`` takes no argument and reads files only (no MRML, which lives on the GUI thread): e.g.
    the uncertainty map of a segmentation, a float image of the CT's size whose gzip alone took 0.55-0.75 s on the
    GUI thread (QA slicer71, LUNG1-003).

    An error of ``read`` does not fail the job: :meth:`read_result` raises it where the outputs are loaded (the
    panel's "Could not load the results").  Cancel while reading: the job ends as cancelled once the read is over (the
    work folder is deleted after it, not under it).  :meth:`wait` (scripts, self-tests) reads in the caller's thread.
    """

    def __init__(self, process, read, label: str = READING):
        self.inner = process
        self._read = read
        self.label = label
        self._call: Optional[BackgroundCall] = None
        self._cancelled = False

    # ------------------------------------------------------------------ state
    @property
    def started(self) -> bool:
        return self.inner.started

    @property
    def read_done(self) -> bool:
        """The read has ended (its result or error kept)."""
        return self._call is not None and self._call.done.is_set()

    @property
    def reading(self) -> bool:
        return self._call is not None and not self._call.done.is_set()

    @property
    def running(self) -> bool:
        """The command runs, or it has succeeded and its results are not read yet (being read, or to be read by the
        next :meth:`poll`)."""
        if self.inner.running:
            return True
        if self._cancelled:
            return self.reading
        return self.inner.succeeded and not self.read_done

    @property
    def cancelled(self) -> bool:
        return self._cancelled or bool(self.inner.cancelled)

    @property
    def returncode(self) -> Optional[int]:
        if self.running:
            return None
        return 130 if self._cancelled else self.inner.returncode

    @property
    def succeeded(self) -> bool:
        return not self.running and not self.cancelled and self.inner.succeeded

    @property
    def fraction(self) -> float:
        return getattr(self.inner, "fraction", 0.0)

    @property
    def status(self) -> str:
        return self.label if self.reading else getattr(self.inner, "status", "")

    @property
    def args(self) -> list[str]:
        return self.inner.args


    @property
    def lines(self) -> list[str]:
        return self.inner.lines

    def describe(self) -> str:
        return self.inner.describe()

    def error_message(self) -> str:
        return self.inner.error_message()

    def failed_optional(self) -> list[int]:
        return self.inner.failed_optional() if hasattr(self.inner, "failed_optional") else []

    # ------------------------------------------------------------------ running
    def start(self) -> "ReadingProcess":
        self.inner.start()
        return self

    def _start_reading(self) -> bool:
        """Start the background read once the process has succeeded (once); True when it started now."""
        if self._call is not None or self._cancelled or self.inner.running or not self.inner.succeeded:
            return False
        self._call = BackgroundCall(self._read, name="lungai-read-results")
        return True

    def poll(self) -> list[ProcessEvent]:
        events = self.inner.poll()
        if self._start_reading():
            events.append(ProcessEvent("progress", self.label, self.fraction))
        return events

    def wait(self, timeout: Optional[float] = None) -> int:
        code = self.inner.wait(timeout=timeout)
        if self._call is None and not self._cancelled and self.inner.succeeded:
            self._call = BackgroundCall(self._read, in_thread=False)
        elif self._call is not None:
            self._call.done.wait(timeout)
        return self.returncode if self.returncode is not None else code

    def cancel(self, grace_seconds: float = 5.0, block: bool = False) -> None:
        if self._call is not None or (self.inner.started and not self.inner.running):
            self._cancelled = True          # being read (the job ends with the read, as cancelled) or not read at all
            return
        self.inner.cancel(grace_seconds=grace_seconds, block=block)

    def read_result(self):
        """What ``read`` returned: read in the background after the process, else (a process not run by this object,
        e.g. outputs written by a script) read now.  An error of ``read`` is raised here, as it was."""
        if self._call is None:
            self._call = BackgroundCall(self._read, in_thread=False)
        return self._call.result()
