"""Import a Slicer module file headless: real MRML (slicer-core), minimal stand-ins for the parts
that only exist in the Slicer application (ScriptedLoadableModule bases, parameterNodeWrapper,
qt/ctk, ``slicer.app``), so the modules' *Logic* classes run in pytest.

The parameter-node stand-in keeps the typed fields and their defaults and rejects values outside
a ``Choice`` or ``WithinRange`` like the real wrapper; GUI binding is checked statically in
test_slicer_modules.py.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import types
import typing
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Choice:
    def __init__(self, choices):
        self.choices = list(choices)

    def check(self, name, value):
        if value not in self.choices:
            raise ValueError(f"{name}: {value!r} is not one of {self.choices}")


class WithinRange:
    def __init__(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum

    def check(self, name, value):
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"{name}: {value!r} is outside [{self.minimum}, {self.maximum}]")


def _default_for(tp):
    base = typing.get_origin(tp) or tp
    if base in (list,):
        return []
    if base is pathlib.Path:
        return pathlib.Path()
    if isinstance(base, type) and base.__name__.startswith("vtkMRML"):
        return None
    return base() if base in (str, int, float, bool) else None


def parameterNodeWrapper(cls):
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {}
    for name, tp in hints.items():
        validators = list(getattr(tp, "__metadata__", ()))
        raw = typing.get_args(tp)[0] if validators else tp
        default = cls.__dict__.get(name, _default_for(raw))
        fields[name] = (validators, default)

    class Wrapper:
        _fields = fields

        def __init__(self, node):
            object.__setattr__(self, "parameterNode", node)
            for key, (_, default) in fields.items():
                object.__setattr__(self, key, list(default) if isinstance(default, list) else default)

        def __setattr__(self, key, value):
            if key not in fields:
                raise AttributeError(f"{cls.__name__} has no parameter {key!r}")
            for validator in fields[key][0]:
                validator.check(key, value)
            object.__setattr__(self, key, value)

    Wrapper.__name__ = cls.__name__
    return Wrapper


def headless_scene():
    """A real MRML scene with what the Slicer application normally sets up (Colors, Segmentations and
    Volumes logics, ``slicer.mrmlScene``, ``slicer.modules``); returns (scene, token) - keep the token
    while the scene is used (it holds the logics: MRML logics keep only raw pointers to the application
    logic) and give it to :func:`restore_headless_scene`."""
    import slicer

    scene = slicer.vtkMRMLScene()
    previous = (getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None))
    slicer.mrmlScene = scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    colors = app_logic.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", colors)
    seg_logic = slicer.vtkSlicerSegmentationsModuleLogic()
    seg_logic.SetMRMLScene(scene)
    seg_logic.SetMRMLApplicationLogic(app_logic)
    vol_logic = slicer.vtkSlicerVolumesLogic()
    vol_logic.SetMRMLScene(scene)
    vol_logic.SetMRMLApplicationLogic(app_logic)
    slicer.modules = types.SimpleNamespace(
        segmentations=types.SimpleNamespace(logic=lambda: seg_logic),
        volumes=types.SimpleNamespace(logic=lambda: vol_logic))
    return scene, (previous, (app_logic, colors, seg_logic, vol_logic))


def restore_headless_scene(scene, token) -> None:
    import slicer

    scene.Clear(1)
    slicer.mrmlScene, slicer.modules = token[0]


def under_dicom_patient(scene, node, patient):
    """``node`` under the subject hierarchy patient ``patient`` (as Slicer's DICOM module loads a series)."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    series = f"1.2.826.0.1.3680043.10.{abs(hash((patient, node.GetID()))) % 10**8}"
    sh.SetItemUID(item, "DICOM", series)
    slicer.vtkSlicerSubjectHierarchyModuleLogic.InsertDicomSeriesInHierarchy(sh, patient, f"{series}.1", series)


def sh_parent(scene, node):
    """The subject hierarchy item ``node`` sits under (0: none, or no item)."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item = sh.GetItemByDataNode(node)
    return sh.GetItemParent(item) if item else 0


def _install_stubs(scene, temporary_path: Path):
    import slicer
    import slicer.util

    slm = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def getParameterNode(self):
            return scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=None):
            pass

    for c in (ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleWidget,
              ScriptedLoadableModuleTest):
        setattr(slm, c.__name__, c)
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper, pnw.Choice, pnw.WithinRange = parameterNodeWrapper, Choice, WithinRange
    stubs = {"slicer.ScriptedLoadableModule": slm, "slicer.parameterNodeWrapper": pnw,
             "qt": types.ModuleType("qt"), "ctk": types.ModuleType("ctk")}
    previous = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    old_app = getattr(slicer, "app", None)
    slicer.app = types.SimpleNamespace(temporaryPath=str(temporary_path), connect=lambda *a, **k: None)
    return previous, old_app


def import_module_logic(module: str, scene, temporary_path: Path):
    """The module file imported with the stand-ins; call :func:`restore` with the returned token."""
    token = _install_stubs(scene, temporary_path)
    path = str(REPO / module)
    sys.path.insert(0, path)
    sys.modules.pop(module, None)
    try:
        return importlib.import_module(module), (token, path, module)
    except Exception:
        restore((token, path, module))
        raise


def restore(handle) -> None:
    import slicer

    (previous, old_app), path, module = handle
    for name, mod in previous.items():
        if mod is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = mod
    sys.modules.pop(module, None)
    if path in sys.path:
        sys.path.remove(path)
    if old_app is None:
        if hasattr(slicer, "app"):
            del slicer.app
    else:
        slicer.app = old_app
