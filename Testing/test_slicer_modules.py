"""Static checks of the Slicer modules (no Slicer application here: parse, never import for real).

- every ``.ui`` is valid Qt Designer XML with unique widget names;
- every ``self.ui.<name>`` in the widget code exists in the module's ``.ui``;
- every ``SlicerParameterName`` in the ``.ui`` is a field of the module's ``@parameterNodeWrapper``
  class, bound to a widget type that Slicer's GUI connectors accept for that field's type;
- every ``.py`` / resource file is listed in its CMakeLists.txt (modules, LungAICommon, lungai);
- importing a module file (with stand-ins for slicer/qt/ctk/vtk) imports no heavy package;
- the Extensions-Index metadata is complete and consistent with the top-level CMakeLists.txt.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("LungAISeg", "LungRadiomics", "MultimodalPredict")
HEAVY = ("torch", "monai", "radiomics", "sklearn", "pandas", "dask", "distributed", "scipy", "skimage",
         "captum", "torch_geometric", "skops", "matplotlib", "SimpleITK", "numpy", "lungai.mrml")

# Widget class -> annotation kinds Slicer's parameterNodeWrapper GUI connectors accept
# (Base/Python/slicer/parameterNodeWrapper/guiConnectors.py; qSlicerSimpleMarkupsWidget from Markups).
CONNECTORS = {
    "QCheckBox": {"bool"}, "QPushButton": {"bool"},
    "QSpinBox": {"int"}, "QSlider": {"int"},
    "QDoubleSpinBox": {"float"}, "ctkSliderWidget": {"float"},
    "QComboBox": {"choice", "enum"},
    "QLineEdit": {"str"}, "QTextEdit": {"str"},
    "ctkPathLineEdit": {"path"}, "ctkDirectoryButton": {"path"},
    "qMRMLNodeComboBox": {"node"}, "qSlicerSimpleMarkupsWidget": {"node"},
}


def ui_path(module: str) -> Path:
    return REPO / module / "Resources" / "UI" / f"{module}.ui"


def ui_widgets(module: str) -> dict[str, ET.Element]:
    root = ET.parse(ui_path(module)).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def module_sources(module: str) -> list[Path]:
    return sorted(p for p in (REPO / module).rglob("*.py") if "Testing" not in p.relative_to(REPO / module).parts)


def cmake_list(path: Path, variable: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{path} has no set({variable} ...)"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.split("#")[0].strip()]


def cmake_value(text: str, variable: str) -> str:
    match = re.search(rf'set\({variable}\s+"([^"]*)"\)', text)
    return match.group(1) if match else ""


# ---------------------------------------------------------------------------- .ui files
@pytest.mark.parametrize("module", MODULES)
def test_ui_is_valid_designer_xml(module):
    root = ET.parse(ui_path(module)).getroot()
    assert root.tag == "ui" and root.findtext("class") == module
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == module
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), f"duplicate widget names in {module}.ui"
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    custom_used = {c for c in used if c.startswith(("ctk", "qMRML", "qSlicer"))}
    assert custom_used <= declared, f"custom widgets not declared: {custom_used - declared}"
    for conn in root.iter("connection"):  # every scene connection targets an existing widget
        assert conn.findtext("receiver") in names


@pytest.mark.parametrize("module", MODULES)
def test_every_ui_attribute_used_in_code_exists(module):
    widgets = set(ui_widgets(module))
    used = {}
    for path in module_sources(module):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"):
                used.setdefault(node.attr, f"{path.name}:{node.lineno}")
    assert used, f"{module} widget code uses no self.ui.<name>"
    missing = {name: where for name, where in used.items() if name not in widgets}
    assert not missing, f"self.ui attributes missing from {module}.ui: {missing}"


def parameter_fields(module: str) -> dict[str, ast.AST]:
    tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", getattr(d, "attr", None)) == "parameterNodeWrapper" for d in node.decorator_list):
            return {s.target.id: s for s in node.body if isinstance(s, ast.AnnAssign)}
    raise AssertionError(f"{module}.py has no @parameterNodeWrapper class")


def annotation_kind(ann: ast.AST) -> str:
    text = ast.unparse(ann)
    if text.startswith("Annotated[") and "Choice(" in text:
        return "choice"
    base = text[len("Annotated["):].split(",")[0] if text.startswith("Annotated[") else text
    base = base.strip()
    if base.startswith("vtkMRML") or "vtkMRML" in base and base.startswith(("Optional[", "Union[")):
        return "node"
    return {"pathlib.Path": "path", "Path": "path"}.get(base, base)


CT_PARAMETERS = {"inputVolume", "doseVolume", "stageVolume"}


@pytest.mark.parametrize("module", MODULES)
def test_ct_selectors_do_not_offer_labelmaps(module):
    """A labelmap is a vtkMRMLScalarVolumeNode too: the CT (and dose) selectors hide it."""
    checked = 0
    for name, widget in ui_widgets(module).items():
        props = {prop.get("name"): prop for prop in widget.findall("property")}
        if "SlicerParameterName" in props and props["SlicerParameterName"].findtext("string") in CT_PARAMETERS:
            hidden = [e.text for e in props["hideChildNodeTypes"].iter("string")] if "hideChildNodeTypes" in props else []
            assert hidden == ["vtkMRMLLabelMapVolumeNode"], f"{module}.ui: {name} offers labelmaps"
            checked += 1
    assert checked


@pytest.mark.parametrize("module", MODULES)
def test_parameter_names_bind_to_typed_fields(module):
    fields = parameter_fields(module)
    bound = {}
    for name, widget in ui_widgets(module).items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[name] = (prop.findtext("string"), widget.get("class"))
    assert bound, f"{module}.ui binds no widget to the parameter node"
    for widget_name, (param, cls) in bound.items():
        assert param in fields, f"{module}.ui: {widget_name} binds unknown parameter {param!r}"
        kind = annotation_kind(fields[param].annotation)
        assert kind in CONNECTORS.get(cls, set()), \
            f"{module}: {widget_name} ({cls}) cannot represent {param}: {ast.unparse(fields[param].annotation)}"
    from LungAICommon import commands                      # choices a panel takes from lungai (one place)
    from lungai.seg.resources import PANEL_MODEL_LABELS

    for param, stmt in fields.items():  # Choice defaults must be among the choices
        calls = [n for n in ast.walk(stmt.annotation) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Choice"]
        if calls and isinstance(stmt.value, ast.Constant):
            choices = eval(compile(ast.Expression(calls[0].args[0]), module, "eval"),
                           {"PANEL_MODEL_LABELS": PANEL_MODEL_LABELS, "commands": commands})
            assert stmt.value.value in choices, f"{module}.{param}: default not among the choices {choices}"


def test_training_options_each_have_a_widget_a_field_and_the_cli_name():
    """QA: every train-seg option the Segmentation panel offers (LungAICommon.commands.PANEL_TRAIN_OPTIONS) has
    its parameter ("train" + the CLI name in CamelCase), one widget bound to it, labelled with the CLI's flag;
    all but the basic ones (label, architecture, members, epochs) sit in the Advanced section of Training;
    no default value is written into the .ui (it comes from train-seg's parser through the parameter node)."""
    from LungAICommon.commands import PANEL_TRAIN_OPTIONS, train_seg_options

    fields = parameter_fields("LungAISeg")
    root = ET.parse(ui_path("LungAISeg")).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    training, advanced = widgets["trainingCollapsibleButton"], widgets["trainAdvancedCollapsibleButton"]
    assert advanced in list(training.iter("widget")) and advanced.find("property[@name='collapsed']/bool").text == "true"
    in_advanced = {w.get("name") for w in advanced.iter("widget")}
    for option in PANEL_TRAIN_OPTIONS:
        field = "train" + "".join(word.capitalize() for word in option.split("_"))
        assert field in fields, option
        bound = [w for w in training.iter("widget")
                 if w.findtext("property[@name='SlicerParameterName']/string") == field]
        assert len(bound) == 1, (option, field)
        name = bound[0].get("name")
        assert name.startswith(field), name
        assert (name in in_advanced) == (option not in ("label", "arch", "members", "epochs")), name
        assert not {p.get("name") for p in bound[0].findall("property")} & {"value", "text", "checked",
                                                                           "currentIndex"}, name
        if option != "label":
            flag = train_seg_options()[option].option_strings[-1]
            assert f"({flag})" in widgets[name + "Label"].findtext("property[@name='text']/string"), name
        stmt = fields[field]                        # the default: train-seg's, read from its parser, or none
        assert stmt.value is None or ast.unparse(stmt.value) == f"_default({option!r})", ast.unparse(stmt)


def test_annotation_kind_rejects_mismatches():
    """The binding check above can fail: a float slider bound to a str, a combo box without Choice."""
    assert annotation_kind(ast.parse("x: str", mode="exec").body[0].annotation) not in CONNECTORS["ctkSliderWidget"]
    assert annotation_kind(ast.parse("x: str").body[0].annotation) not in CONNECTORS["QComboBox"]
    assert annotation_kind(ast.parse("x: Annotated[str, Choice(['a'])]").body[0].annotation) == "choice"
    assert annotation_kind(ast.parse("x: vtkMRMLScalarVolumeNode").body[0].annotation) == "node"
    assert annotation_kind(ast.parse("x: pathlib.Path").body[0].annotation) == "path"


# ---------------------------------------------------------------------------- CMake lists
@pytest.mark.parametrize("module", MODULES)
def test_module_files_listed_in_cmake(module):
    folder = REPO / module
    cmake = folder / "CMakeLists.txt"
    scripts = [s.replace("${MODULE_NAME}", module) for s in cmake_list(cmake, "MODULE_PYTHON_SCRIPTS")]
    resources = [s.replace("${MODULE_NAME}", module) for s in cmake_list(cmake, "MODULE_PYTHON_RESOURCES")]
    on_disk_py = {p.relative_to(folder).as_posix() for p in module_sources(module)}
    on_disk_res = {p.relative_to(folder).as_posix() for p in (folder / "Resources").rglob("*") if p.is_file()}
    assert on_disk_py == set(scripts), f"{module}: .py files vs MODULE_PYTHON_SCRIPTS differ"
    assert on_disk_res == set(resources), f"{module}: Resources/ vs MODULE_PYTHON_RESOURCES differ"
    assert f"{module}.py" in scripts
    assert "slicer_add_python_unittest" in cmake.read_text(encoding="utf-8")  # the self-test runs as a ctest


def test_common_package_listed_in_cmake():
    listed = set(cmake_list(REPO / "LungAICommon" / "CMakeLists.txt", "LUNGAICOMMON_PYTHON_SCRIPTS"))
    on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / "LungAICommon").rglob("*.py")}
    assert listed == on_disk
    assert "add_subdirectory(LungAICommon)" in (REPO / "CMakeLists.txt").read_text(encoding="utf-8")


def test_core_package_listed_in_cmake():
    """Every lungai/**/*.py and data file is bundled (other helpers add files: green at integration)."""
    cmake = REPO / "lungai" / "CMakeLists.txt"
    listed = set(cmake_list(cmake, "LUNGAI_PYTHON_SCRIPTS")) | set(cmake_list(cmake, "LUNGAI_PYTHON_RESOURCES"))
    pkg = REPO / "lungai"
    on_disk = {p.relative_to(REPO).as_posix() for p in pkg.rglob("*")
               if p.suffix in (".py", ".json", ".yaml", ".yml", ".csv") and "__pycache__" not in p.parts}
    assert not on_disk - listed, f"not listed in lungai/CMakeLists.txt: {sorted(on_disk - listed)}"
    assert not listed - on_disk, f"listed but missing: {sorted(listed - on_disk)}"


# ---------------------------------------------------------------------------- imports
STUB_IMPORT = r"""
import importlib.abc, importlib.machinery, sys, types
class _Any(type):
    def __getattr__(cls, name): return _Dummy
class _Dummy(metaclass=_Any):
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Dummy()
    def __getattr__(self, name): return _Dummy()
    def __class_getitem__(cls, item): return _Dummy
_made = {}
def _stub(name):  # one distinct class per name, so several can be base classes of one class
    return _made.setdefault(name, _Any(name, (_Dummy,), {}))
STUBBED = ("slicer", "qt", "ctk", "vtk", "SampleData", "PyTorchUtils")
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = types.ModuleType(spec.name); m.__path__ = []
        m.__getattr__ = _stub
        return m
    def exec_module(self, module): pass
sys.meta_path.insert(0, _Finder())
sys.path[:0] = [sys.argv[1], sys.argv[2]]
before = set(sys.modules)
importlib = __import__("importlib")
importlib.import_module(sys.argv[3])
print("\n".join(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("module", MODULES)
def test_module_import_loads_no_heavy_package(module):
    """Import the module file for real (slicer/qt/ctk/vtk replaced by stand-ins) and list what it loaded."""
    out = subprocess.run([sys.executable, "-c", STUB_IMPORT, str(REPO), str(REPO / module), module],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert module in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert not heavy, f"importing {module} loaded {heavy}"


def test_import_check_detects_a_heavy_import(tmp_path):
    (tmp_path / "HeavyModule.py").write_text("import slicer\nimport numpy\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", STUB_IMPORT, str(REPO), str(tmp_path), "HeavyModule"],
                         capture_output=True, text=True, timeout=60)
    assert "numpy" in out.stdout.split()


# ---------------------------------------------------------------------------- extension metadata
def test_extension_metadata_complete_and_consistent():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    values = {k: cmake_value(text, f"EXTENSION_{k}") for k in
              ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS")}
    empty = [k for k, v in values.items() if not v.strip()]
    assert not empty, f"empty extension metadata in CMakeLists.txt: {empty}"
    assert len(values["DESCRIPTION"]) > 80
    repo_match = re.match(r"https://github\.com/([^/]+)/([^/#]+)", values["HOMEPAGE"])
    assert repo_match, "EXTENSION_HOMEPAGE must be the GitHub repository page"
    owner, name = repo_match.groups()
    raw = f"https://raw.githubusercontent.com/{owner}/{name}/main/"
    for url in [values["ICONURL"], *values["SCREENSHOTURLS"].split()]:
        assert url.startswith(raw), f"{url} is not a file of {owner}/{name}"
    assert (REPO / values["ICONURL"][len(raw):]).is_file(), f"{values['ICONURL']} is not in the repository"

    # Extensions Index checks (scripts/check_description_files.py of Slicer/ExtensionsIndex): the
    # description file is named after the extension = the CMake project, which may not start with
    # "Slicer"; the repository name contains "slicer"; a license file in the repository root.
    project = re.search(r"^project\(\s*([^\s)]+)", text, re.M).group(1)
    assert not project.lower().startswith("slicer"), f"extension name {project} starts with 'Slicer'"
    assert [p.name for p in (REPO / "ExtensionsIndex").glob("*.json")] == [f"{project}.json"]
    assert "slicer" in name.lower()
    assert "Apache License" in (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "5.10 or newer" in values["DESCRIPTION"]
    assert re.search(r'LUNGAI_MINIMUM_SLICER_VERSION "5\.10"', text) and "FATAL_ERROR" in text
    entry = json.loads((REPO / "ExtensionsIndex" / f"{project}.json").read_text(encoding="utf-8"))
    for key in ("$schema", "category", "scm_url", "scm_revision", "build_dependencies", "tier"):
        assert key in entry, f"Extensions-Index entry lacks {key}"
    # the catalog-entry schema (v1.0.1) has additionalProperties: false
    allowed = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "tier", "enabled"}
    assert set(entry) <= allowed, f"not allowed by the catalog schema: {set(entry) - allowed}"
    assert "slicer-extension-catalog-entry-schema-v1.0" in entry["$schema"]
    assert entry["category"] == values["CATEGORY"]
    assert sorted(entry["build_dependencies"]) == sorted(values["DEPENDS"].split())
    assert entry["scm_url"].rstrip("/").removesuffix(".git") == f"https://github.com/{owner}/{name}"
    assert {"PyTorch", "SlicerRadiomics"} <= set(values["DEPENDS"].split())
    for module in MODULES:
        assert f"add_subdirectory({module})" in text


def test_extension_screenshots_exist():
    """Every EXTENSION_SCREENSHOTURLS file is in the repository (taken from a real Slicer session)."""
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    urls = cmake_value(text, "EXTENSION_SCREENSHOTURLS").split()
    assert urls, "EXTENSION_SCREENSHOTURLS is empty"
    for url in urls:
        path = re.sub(r"^https://raw\.githubusercontent\.com/[^/]+/[^/]+/main/", "", url)
        assert (REPO / path).is_file(), f"{url}: {path} is not in the repository"


# ---------------------------------------------------------------------------- .ui files in a real Qt
QT_LOADER = r'''
import json, sys, xml.etree.ElementTree as ET
from PySide6 import QtWidgets
from PySide6.QtCore import QFile, Signal, Slot, qInstallMessageHandler
from PySide6.QtUiTools import QUiLoader

messages = []
qInstallMessageHandler(lambda mode, context, text: messages.append(text))
app = QtWidgets.QApplication([])
out, made = {}, {}
for path in sys.argv[1:]:
    loader = QUiLoader()
    custom = [(c.findtext("class"), c.findtext("extends")) for c in ET.parse(path).getroot().iter("customwidget")]
    while custom:                       # placeholders named like Slicer's C++ classes (one per name), bases first
        for name, base in list(custom):
            parent = made.get(base) or getattr(QtWidgets, base, None)
            if parent is None:
                continue
            if name not in made:
                slot = Slot("vtkMRMLScene*", name="setMRMLScene")(lambda self, scene: None)
                made[name] = type(name, (parent,), {"mrmlSceneChanged": Signal("vtkMRMLScene*"), "setMRMLScene": slot})
            loader.registerCustomWidget(made[name])
            custom.remove((name, base))
    f = QFile(path)
    f.open(QFile.ReadOnly)
    root = loader.load(f)
    widgets = {root.objectName(): [root.metaObject().className(), None]}
    for w in root.findChildren(QtWidgets.QWidget):
        if w.objectName():
            widgets[w.objectName()] = [w.metaObject().className(), w.property("SlicerParameterName")]
    out[path] = {"widgets": widgets, "error": loader.errorString()}
out["messages"] = messages
print(json.dumps(out))
'''

# ctkPathLineEdit's "filters" is a flags property of the C++ class; a placeholder cannot declare it.
QT_KNOWN_MESSAGES = {"Designer: The set-type property filters could not be read."}


def test_ui_files_load_in_a_real_qt_uiloader():
    """The three .ui files in Qt's own QUiLoader (PySide6, offscreen).  Slicer's C++ widget classes
    (qMRML*, qSlicer*, ctk*) are registered as placeholders with their names and Designer base classes,
    plus the mrmlSceneChanged / setMRMLScene pair the .ui connections use.  This proves that the files
    load in Qt, that every widget the code uses (self.ui.<name>) is there with the class the code and
    Slicer's GUI connectors expect, that every binding property survives loading and that every
    signal/slot connection resolves.  It does not run the real Slicer widgets (docs/slicer.md)."""
    pytest.importorskip("PySide6.QtUiTools")
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    paths = [str(ui_path(m)) for m in MODULES]
    run = subprocess.run([sys.executable, "-c", QT_LOADER, *paths], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(result.pop("messages")) <= QT_KNOWN_MESSAGES
    for module, path in zip(MODULES, paths):
        loaded, error = result[path]["widgets"], result[path]["error"]
        assert not error, f"{module}.ui: {error}"
        declared = ui_widgets(module)
        for name, element in declared.items():
            assert name in loaded, f"{module}.ui: {name} was not created"
            assert loaded[name][0] == element.get("class"), (module, name, loaded[name][0])
            binding = next((p.findtext("string") for p in element.findall("property")
                            if p.get("name") == "SlicerParameterName"), None)
            assert loaded[name][1] == binding, (module, name)
        used = set()
        for source in module_sources(module):
            used |= set(re.findall(r"self\.ui\.(\w+)", source.read_text(encoding="utf-8")))
        assert used and used <= set(loaded), f"{module}: missing after loading: {used - set(loaded)}"
