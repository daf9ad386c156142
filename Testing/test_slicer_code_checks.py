"""Static checks of the Slicer-side *code* that cannot run here (no Slicer application):
widget -> logic calls and connected slots exist, every ``.ui`` property exists on its widget
class, and no undefined names (a pyflakes-like AST check)."""

from __future__ import annotations

import ast

import pytest

from test_slicer_modules import MODULES, REPO, ui_widgets


def _class(tree, name):
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _defined(cls) -> set:
    names = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
    names |= {t.id for s in cls.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("module", MODULES)
def test_widget_calls_exist(module):
    """Every self.logic.<name> the widget uses is defined by the Logic class, and every slot given to
    connect(...) is a method of the widget (typos would only show in Slicer)."""
    tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
    widget, logic = _class(tree, f"{module}Widget"), _class(tree, f"{module}Logic")
    logic_names = _defined(logic) | {"getParameterNode"}
    widget_names = _defined(widget)
    used_logic, slots = set(), set()
    for node in ast.walk(widget):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "logic"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            used_logic.add(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
            for arg in node.args[1:]:
                if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self":
                    slots.add(arg.attr)
    assert used_logic and not used_logic - logic_names, f"{module}: logic lacks {used_logic - logic_names}"
    assert slots and not slots - widget_names, f"{module}: widget lacks slots {slots - widget_names}"


@pytest.mark.parametrize("module", MODULES)
def test_self_test_runs_every_test_method(module):
    """The ScriptedLoadableModuleTest (run by ctest / the Reload-and-Test button) calls all its tests."""
    tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{module}Test")
    assert any(getattr(b, "id", None) == "ScriptedLoadableModuleTest" for b in cls.bases)
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    tests = {name for name in methods if name.startswith("test_")}
    called = {n.func.attr for n in ast.walk(methods["runTest"]) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Attribute)}
    assert tests and tests <= called, f"{module}Test.runTest does not call {tests - called}"
    logic = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{module}Logic")
    assert "getParameterNode" in {f.name for f in logic.body if isinstance(f, ast.FunctionDef)}


# Designer properties used in the panels, per widget class (Qt / CTK / MRML widget properties);
# a misspelt property is silently ignored by Slicer's UI loader, so list what is allowed.
COMMON_PROPERTIES = {"toolTip", "enabled", "minimumHeight", "maximumHeight", "visible", "SlicerParameterName"}
PROPERTIES = {
    "qMRMLWidget": set(), "QWidget": set(),
    "ctkCollapsibleButton": {"text", "collapsed"},
    "qMRMLNodeComboBox": {"nodeTypes", "hideChildNodeTypes", "addEnabled", "removeEnabled", "noneEnabled", "showHidden",
                          "selectNodeUponCreation"},
    "qSlicerSimpleMarkupsWidget": {"enterPlaceModeOnNodeChange", "jumpToSliceEnabled"},
    "ctkPathLineEdit": {"filters", "nameFilters"},
    "ctkSliderWidget": {"singleStep", "decimals", "minimum", "maximum"},
    "QComboBox": set(), "QSpinBox": {"minimum", "maximum", "specialValueText"},
    "QDoubleSpinBox": {"minimum", "maximum", "decimals", "singleStep", "specialValueText"},
    "QLineEdit": {"text", "placeholderText"},
    "QCheckBox": {"text", "checked"}, "QPushButton": {"text", "checkable"},
    "QLabel": {"text", "wordWrap", "font", "textInteractionFlags"},
    "QListWidget": set(), "QTableWidget": {"columnCount", "rowCount"}, "qMRMLTableView": set(),
    "QProgressBar": {"value", "textVisible"},
    "QPlainTextEdit": {"readOnly", "maximumBlockCount", "placeholderText"},
}


@pytest.mark.parametrize("module", MODULES)
def test_ui_properties_exist_on_their_widgets(module):
    unknown = []
    for name, widget in ui_widgets(module).items():
        cls = widget.get("class")
        assert cls in PROPERTIES, f"{module}.ui: widget class {cls} ({name}) not reviewed in PROPERTIES"
        for prop in widget.findall("property"):
            if prop.get("name") not in PROPERTIES[cls] | COMMON_PROPERTIES:
                unknown.append(f"{name}.{prop.get('name')}")
    assert not unknown, f"{module}.ui: properties not known for their widget: {unknown}"


# ---------------------------------------------------------------------------- undefined names
def undefined_names(source: str) -> list[str]:
    """Names read but never bound (module, enclosing functions, builtins) - what pyflakes reports
    as "undefined name", for code that cannot be imported here."""
    import builtins

    tree = ast.parse(source)

    def bound_in(node) -> set:
        names = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                names.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, ast.arg):
                names.add(n.arg)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in n.names}
            elif isinstance(n, ast.ExceptHandler) and n.name:
                names.add(n.name)
        return names

    module_level = set(dir(builtins)) | {"__file__", "__name__"}
    for stmt in tree.body:
        module_level |= bound_in(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else {stmt.name}
    problems = []

    def visit(node, scope: set):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, scope | bound_in(child))
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id not in scope:
                problems.append(f"line {child.lineno}: {child.id}")
            else:
                visit(child, scope)

    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(item, module_level | bound_in(item))
                else:
                    visit(item, module_level | bound_in(stmt))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(stmt, module_level | bound_in(stmt))
        else:
            visit(stmt, module_level)
    return problems


SLICER_SIDE_FILES = [REPO / m / f"{m}.py" for m in MODULES] + sorted((REPO / "LungAICommon").glob("*.py"))


@pytest.mark.parametrize("path", SLICER_SIDE_FILES, ids=lambda p: p.name)
def test_no_undefined_names(path):
    assert undefined_names(path.read_text(encoding="utf-8")) == []


def test_undefined_name_check_finds_typos():
    code = "import os\ndef f(a):\n    b = a + 1\n    return [c for c in range(b)] + [outputDir, os.sep]\n"
    assert undefined_names(code) == ["line 4: outputDir"]
