"""Run 3D Slicer's OWN Python code (not stand-ins) against the extension, without the application.

``../shared/slicer-python/<tag>`` holds Slicer's Python sources of a release tag (see its README):
``slicer/util.py``, ``slicer/parameterNodeWrapper`` (serializers, validators, GUI connectors),
``slicer/ScriptedLoadableModule.py``, ``slicer/packaging.py`` (5.12), the Markups GUI connector
and the SampleData module.  :func:`real_slicer` puts them on top of slicer-core (real MRML, same
classes as the application) and adds stand-ins only for what is C++ in Slicer and cannot exist
headless:

- ``qt`` / ``ctk`` and the widget classes Slicer puts in its ``slicer`` namespace
  (``qMRMLNodeComboBox``, ``qSlicerSimpleMarkupsWidget`` ...): :class:`FakeWidget` classes made by
  name, so Slicer's connectors, which pick a connector by ``type(widget) == qt.QComboBox`` etc.,
  see the class the ``.ui`` file names.  A fake widget keeps attributes, records ``setX(v)`` so
  that ``x()`` returns ``v``, and its signals are :class:`FakeSignal` objects a test can ``emit``.
- ``slicer.app``: :class:`FakeApp` - temporary path, version, testing flag, and a ``coreIOManager``
  that loads volume / segmentation files with MRML storage nodes (what Slicer's IO plugins do).

What this cannot show (PythonQt signal wiring, real widgets, rendering) is in docs/slicer.md's
manual release test.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLICER_PYTHON = REPO.parent / "shared" / "slicer-python"
TAGS = ("v5.10.0", "v5.12.3")
VERSIONS = {"v5.10.0": (5, 10), "v5.12.3": (5, 12)}
MODULES = ("LungAISeg", "LungRadiomics", "MultimodalPredict")


# ---------------------------------------------------------------------------- Qt stand-ins
class FakeSignal:
    def __init__(self):
        self.slots = []

    def connect(self, slot, *args):
        self.slots.append(slot)

    def disconnect(self, slot=None, *args):
        self.slots = [s for s in self.slots if slot is not None and s != slot]

    def emit(self, *args):
        """Call the slots; like PythonQt, a slot taking fewer arguments than the signal gets the first ones."""
        import inspect

        for slot in list(self.slots):
            try:
                params = inspect.signature(slot).parameters.values()
                if not any(p.kind == p.VAR_POSITIONAL for p in params):
                    args = args[:len([p for p in params if p.default is p.empty])]
            except (TypeError, ValueError):
                pass
            slot(*args)

    def __call__(self, *args, **kwargs):       # used as a method that returns nothing
        return None


class _FakeClassAttributes(type):
    """Class-level constants (``qt.Qt.WaitCursor``, ``qt.QMessageBox.Ok`` ...) are their own names."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


class FakeWidget(metaclass=_FakeClassAttributes):
    """Any Qt / CTK / qMRML widget class, by name (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        object.__setattr__(self, "_props", {})
        object.__setattr__(self, "_getters", {})
        object.__setattr__(self, "_signals", {})
        object.__setattr__(self, "enabled", True)

    def property(self, name):
        return self._props.get(name)

    def setProperty(self, name, value):
        self._props[name] = value

    def isWidgetType(self):
        return False

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name.startswith("set") and len(name) > 3 and name[3].isupper():
            key = name[3].lower() + name[4:]

            def setter(value, *args):
                self._getters[key] = value
            return setter
        if name in self._getters:
            value = self._getters[name]
            return lambda *args: value
        if name.endswith(("SelectorComboBox", "ComboBox")) and not name.endswith("Changed"):
            child = FakeWidget()
            object.__setattr__(self, name, lambda *args: child)
            return getattr(self, name)
        return self._signals.setdefault(name, FakeSignal())


class FakeQtModule(types.ModuleType):
    """``qt`` / ``ctk``: every attribute is a FakeWidget subclass of that name (made once)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (FakeWidget,), {})
        setattr(self, name, cls)
        return cls


SLICER_WIDGET_CLASSES = ("qMRMLNodeComboBox", "qSlicerSimpleMarkupsWidget", "qMRMLSubjectHierarchyTreeView",
                         "qMRMLSubjectHierarchyComboBox", "qMRMLWidget", "qMRMLTableView", "qMRMLSegmentsTableView",
                         "qMRMLCheckableNodeComboBox", "qMRMLSliderWidget", "qMRMLSpinBox", "qMRMLRangeWidget")


def widget_class(name: str):
    """The stand-in class for a widget class name of a .ui file (qt, ctk or slicer namespace)."""
    import slicer

    if name.startswith("ctk"):
        return getattr(sys.modules["ctk"], name)
    if name.startswith("qMRML") or name.startswith("qSlicer"):
        cls = getattr(slicer, name, None)
        if cls is None:
            cls = type(name, (FakeWidget,), {})
            setattr(slicer, name, cls)
        return cls
    return getattr(sys.modules["qt"], name)


def ui_widgets(ui_path: Path) -> dict:
    """{name: (class name, SlicerParameterName or None)} of every widget in a Designer .ui file."""
    out = {}
    for w in ET.parse(ui_path).getroot().iter("widget"):
        binding = None
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                binding = (prop.findtext("string") or "").strip()
        out[w.get("name")] = (w.get("class"), binding)
    return out


def fake_ui(ui_path: Path):
    """The ``self.ui`` namespace a module gets from ``slicer.util.childWidgetVariables``: one stand-in
    widget per .ui widget, of the .ui's class, carrying its SlicerParameterName property."""
    ns = types.SimpleNamespace()
    for name, (cls_name, binding) in ui_widgets(ui_path).items():
        widget = widget_class(cls_name)()
        if binding:
            widget.setProperty("SlicerParameterName", binding)
        setattr(ns, name, widget)
    return ns


# ---------------------------------------------------------------------------- slicer.app stand-in
class FakeIOManager:
    """What SampleData's loadNode calls: load a file into the scene with MRML storage nodes."""

    def __init__(self, scene):
        self.scene = scene

    def fileType(self, path):
        return "SegmentationFile" if str(path).endswith(".seg.nrrd") else "VolumeFile"

    def loadNodes(self, fileType, properties, loadedNodes=None):
        path, name = properties["fileName"], properties.get("name") or Path(properties["fileName"]).stem
        if fileType == "SegmentationFile":
            node = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
            storage = self.scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
        else:
            node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
            storage = self.scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        node.SetAndObserveStorageNodeID(storage.GetID())
        if not storage.ReadData(node):
            self.scene.RemoveNode(node)
            return False
        node.CreateDefaultDisplayNodes()
        if loadedNodes is not None:
            loadedNodes.AddItem(node)
        return True


class FakeApp:
    def __init__(self, scene, temporary_path: Path, version=(5, 12)):
        self.temporaryPath = str(temporary_path)
        self.majorVersion, self.minorVersion = version
        self._io = FakeIOManager(scene)
        self.connections = []

    def connect(self, signal, slot):
        self.connections.append((signal, slot))

    def testingEnabled(self):
        return False

    def commandOptions(self):
        return types.SimpleNamespace(testingEnabled=False)

    def coreIOManager(self):
        return self._io

    def translate(self, context, text):
        return text

    applicationName = "Slicer"

    def topLevelWidgets(self):          # no main window: Slicer's message boxes only log
        return []

    def setOverrideCursor(self, *args):
        pass

    def restoreOverrideCursor(self):
        pass

    def processEvents(self, *args):
        pass

    def moduleManager(self):
        return types.SimpleNamespace(connect=lambda *a: None)


# ---------------------------------------------------------------------------- the context
_OWNED_PREFIXES = ("qt", "ctk", "slicer.", "SampleData", "MarkupsLib", "SubjectHierarchyLib", *MODULES,
                   "LungAICommon.qtjob")


@contextlib.contextmanager
def real_slicer(tag: str, scene, temporary_path: Path):
    """Slicer's Python files of ``tag`` loaded over slicer-core, with the stand-ins above; everything is
    restored on exit.  Yields the ``slicer`` module."""
    import slicer
    import vtk  # noqa: F401 - loaded before Slicer's files import it

    root = SLICER_PYTHON / tag
    before_modules = dict(sys.modules)
    before_attrs = dict(vars(slicer))
    before_path = list(sys.path)
    try:
        sys.modules["qt"] = FakeQtModule("qt")
        sys.modules["ctk"] = FakeQtModule("ctk")
        for name in SLICER_WIDGET_CLASSES:
            setattr(slicer, name, type(name, (FakeWidget,), {}))
        for name in [m for m in sys.modules if m.startswith("slicer.")]:
            del sys.modules[name]
        slicer.__path__ = [str(root / "Base" / "Python" / "slicer"), *before_attrs["__path__"]]
        slicer.app = FakeApp(scene, temporary_path, VERSIONS[tag])
        slicer.mrmlScene = scene
        slicer.util = importlib.import_module("slicer.util")
        importlib.import_module("slicer.parameterNodeWrapper")
        importlib.import_module("slicer.ScriptedLoadableModule")
        for extra in ("Modules/Loadable/Markups", "Modules/Loadable/SubjectHierarchy", "Modules/Scripted/SampleData",
                      ""):
            sys.path.insert(0, str(root / extra) if extra else str(REPO))
        importlib.import_module("MarkupsLib")               # registers the qSlicerSimpleMarkupsWidget connector
        importlib.import_module("SubjectHierarchyLib")
        for module in MODULES:
            sys.path.insert(0, str(REPO / module))
        yield slicer
    finally:
        for name in list(sys.modules):
            if name.startswith(_OWNED_PREFIXES) or name in ("qt", "ctk"):
                if name in before_modules:
                    sys.modules[name] = before_modules[name]
                else:
                    del sys.modules[name]
        for name in list(vars(slicer)):
            if name not in before_attrs:
                delattr(slicer, name)
        for name, value in before_attrs.items():
            setattr(slicer, name, value)
        sys.path[:] = before_path


def import_module_file(name: str):
    """Import a module file (LungAISeg ...) inside :func:`real_slicer`: Slicer's ScriptedLoadableModule,
    parameterNodeWrapper and util are the real ones."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def module_parent(name: str):
    """The ``parent`` object Slicer's module factory gives a scripted module."""
    return types.SimpleNamespace(path=str(REPO / name / f"{name}.py"), title="", categories=[], dependencies=[],
                                 contributors=[], helpText="", acknowledgementText="", isEntered=False)
