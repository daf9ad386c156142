"""Every ``lungai ...`` command the docs give, read by the real parser: README.md and docs/*.md (fenced shell lines,
backslash continuations joined, and inline code spans), every parser's own help / description / epilog, and the
strings of lungai/ and the Slicer modules (error fixes, notes, docstrings).  A command a user copies must parse;
an option named beside a command (``lungai segment --label``, ``eval-seg --implant-into``) must be one of that
command's - so a renamed option or command fails here, not on a user's terminal.

QA: docs/stage.md named ``lungai segment ... --label`` and ``--patient 007`` (neither exists), docs/radiomics.md
``eval-seg --implant-into`` (train-seg's), radiomics-batch's ``--segments`` help "tumour alone from --tumour" (a
radiomics option; the batch reads a manifest's ``tumour`` column), and the multi-series fix "lungai CLI: --series
UID" reached radiomics-batch / stage / train-seg users, whose commands have no ``--series``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SOURCES = [p for d in ("lungai", "LungAICommon", "LungAISeg", "LungRadiomics", "MultimodalPredict")
           for p in sorted((REPO / d).rglob("*.py"))]
# commands the docs quote as refused (and say so): they must stay refused
REFUSED = {"rp synth -o c.csv --n 120", "rp synth --n 120"}
OPTION = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")


def _parsers() -> dict:
    from lungai.cli import build_parser

    def walk(p, path=()):
        yield " ".join(path), p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, child in a.choices.items():
                    yield from walk(child, (*path, name))
    return dict(walk(build_parser()))


PARSERS = _parsers()
OPTIONS = {k: {o for a in p._actions for o in a.option_strings} for k, p in PARSERS.items()}
COMMANDS = sorted((k for k in PARSERS if k), key=len, reverse=True)        # "rp train" before "rp"
INVOCATION = re.compile(r"(?<![\w./-])lungai\s+(" + "|".join(map(re.escape, COMMANDS)) + r")(?![\w-])")
BARE = re.compile(r"(" + "|".join(map(re.escape, COMMANDS)) + r")\s+--?[a-z]")   # `eval-seg --patients`
# options of other programs the docs quote (pip's check of the Slicer requirements, Slicer's own)
FOREIGN = {"--dry-run": "pip", "--only-binary": "pip", "--python-version": "pip", "--testing": "Slicer"}


def _parse(tokens: list) -> str | None:
    """argparse's error for ``lungai TOKENS`` (None: parsed)."""
    from lungai.cli import build_parser, join_split_coordinates

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(join_split_coordinates(tokens))
            return None
        except SystemExit as exc:
            return None if exc.code == 0 else (err.getvalue().strip().splitlines() or ["?"])[-1]


def _alternatives(command: str, rest: str) -> tuple[list, str]:
    """``segment / eval-seg / train-seg --label``: (every command named, the text after the last)."""
    commands = [command]
    while m := re.match(r"\s*/\s*(" + "|".join(map(re.escape, COMMANDS)) + r")(?![\w-])", rest):
        commands.append(m.group(1))
        rest = rest[m.end():]
    return commands, rest


def _wrong_options(commands: list, rest: str) -> list:
    """'OPTION is not an option of lungai COMMAND' for each option in ``rest`` that a command of ``commands`` lacks."""
    return [f"{o} is not an option of lungai {c}" for c in commands for o in OPTION.findall(rest)
            if o not in OPTIONS[c]]


def _shell_commands(line: str) -> list:
    """The ``lungai`` commands of one shell line: comments cut, ``&&`` / ``;`` / ``|`` / ``&`` split."""
    line = re.sub(r"(^|\s)#.*$", "", line)
    return [p for p in re.split(r"\s*(?:&&|\|\||;|\||(?<!\S)&(?!\S))\s*", line) if INVOCATION.search(p)]


def _check_command(where: str, text: str, whole: bool) -> list:
    """Problems of one ``lungai CMD ...`` text: an unknown option of CMD, a refused command line.  ``whole``: a
    copied command, parsed as written; else a fragment (required arguments may be left out)."""
    m = INVOCATION.search(text)
    commands, rest = _alternatives(m.group(1), text[m.end():])
    body = re.sub(r"\[([^\]]*)\]", r"\1", text[m.start(1):])              # [--clinical clinical.csv]: given
    try:
        tokens = shlex.split(body)
    except ValueError:
        tokens = body.split()
    # "--drop ..." / "--ehr ...": a value left out (X); "--ct E/CT ... -o E": options left out
    tokens = [("X" if i and tokens[i - 1].startswith("-") else None) if t == "..." else
              "X" if re.fullmatch(r"\$\w+|\$\{\w+\}", t) else t for i, t in enumerate(tokens)]
    tokens = [t for t in tokens if t is not None]
    if " ".join(tokens) in REFUSED:
        return [] if _parse(tokens) else [f"{where}: `{text.strip()}` is quoted as refused, but it parses"]
    problems = [f"{where}: `{text.strip()}`: {w}" for w in _wrong_options(commands, rest)]
    if problems or len(commands) > 1 or re.search(r"<[^>]*>", rest):      # <data options>: options checked only
        return problems
    if any(re.search(r"\$\w", t) and not re.match(r"\$\w+/", t) for t in tokens):   # --config $c: a loop's value
        return problems
    error = _parse(tokens)
    if error is None or re.search(r"invalid \w+ value: '[A-Z][A-Z_]*'$", error):    # --member K, --max-dose-gy GY
        return []
    if not whole and ("the following arguments are required" in error
                      or ("expected one argument" in error and tokens[-1].startswith("-"))):
        return []                                          # a fragment: `lungai segment --model` names the option
    return [f"{where}: `{text.strip()}`: {error}"]


def _doc_commands(path: Path):
    """(where, text, whole) of every ``lungai`` command in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(REPO)
    for block in re.finditer(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        first = text[:block.start()].count("\n") + 2
        lines = block.group(1).split("\n")
        i = 0
        while i < len(lines):
            line, j = lines[i], i
            while line.rstrip().endswith("\\") and j + 1 < len(lines):
                j += 1
                line = line.rstrip()[:-1] + " " + lines[j].strip()
            if re.match(r"\s*(\$\s+)?(\S*python\S*\s+-m\s+)?lungai\s|.*(&&|;|\bdo)\s+lungai\s", line):
                for part in _shell_commands(line):
                    yield f"{name}:{first + i}", part, True
            i = j + 1
    prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for span in re.finditer(r"(`+)(.+?)\1", prose, flags=re.S):
        code = " ".join(span.group(2).split())
        if BARE.match(code):                               # `dose-features --rtstruct`: lungai's, as the docs say
            code = "lungai " + code
        if INVOCATION.match(code):
            for part in _shell_commands(code):
                yield f"{name}:{prose[:span.start()].count(chr(10)) + 1}", part, False


def _strings(path: Path):
    """(line, text) of every string in a Python file (f-strings with their fields as X)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)


def _fragments(where: str, text: str) -> list:
    """Options named beside a ``lungai CMD`` in free text: each must be CMD's."""
    problems = []
    for m in INVOCATION.finditer(text):
        commands, rest = _alternatives(m.group(1), text[m.end():])
        tail = re.match(r"[^`'\"();\n]*", rest).group(0)                   # the command, up to its sentence's end
        problems += [f"{where}: `lungai {' / '.join(commands)}{tail.rstrip()}`: {w}"
                     for w in _wrong_options(commands, tail) if f"{' '.join(commands)}{tail}".strip() not in REFUSED]
    return problems


def test_documented_commands_parse():
    """Every ``lungai`` command line of README.md and docs/ parses (placeholders as written: CT, OUT, MODEL are
    paths to the parser), and every option an inline ``lungai CMD ...`` names is CMD's."""
    found, problems = 0, []
    for path in DOCS:
        for where, text, whole in _doc_commands(path):
            found += 1
            problems += _check_command(where, text, whole)
    assert found > 150, f"only {found} lungai commands found in the docs: the extraction broke"
    assert problems == [], "\n".join(problems)


def test_every_option_the_docs_name_exists():
    """An option the docs name anywhere (``--patient 007`` in a sentence) is one of some lungai command, of a
    script in tools/ or benchmarks/ (their own parsers), or of another program the docs quote (FOREIGN)."""
    scripts = {o for p in [*REPO.glob("tools/*.py"), *REPO.glob("benchmarks/*.py")]
               for o in re.findall(r"add_argument\(\s*(?:\"-\w\",\s*)?\"(--[\w-]+)\"", p.read_text(encoding="utf-8"))}
    known = set().union(*OPTIONS.values(), scripts, FOREIGN)
    problems = [f"{path.relative_to(REPO)}:{i}: {o} is no option of lungai (nor of tools/, benchmarks/)"
                for path in DOCS for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                for o in OPTION.findall(line) if o not in known]
    assert scripts and problems == [], "\n".join(problems)


def test_help_texts_name_only_the_commands_options():
    """``lungai X --help``: a ``lungai CMD --opt`` in any parser's help is CMD's option, and an option named bare
    in a command's help is that command's own (or said to be another command's: ``train-seg --test-fraction``)."""
    problems = []
    for path, parser in PARSERS.items():
        texts = [parser.description or "", parser.epilog or ""] + [a.help or "" for a in parser._actions]
        for text in texts:
            problems += _fragments(f"lungai {path} --help", text)
            bare = re.sub(r"(?<![\w-])(lungai\s+)?(" + "|".join(map(re.escape, COMMANDS)) + r")\s+-[^`'\"();\n]*",
                          "", text)                       # "lungai eval-seg --split test", "train-seg --test-fraction"
            problems += [f"lungai {path} --help: {o} is not an option of lungai {path}"
                         for o in OPTION.findall(bare) if o not in OPTIONS[path]]
    assert problems == [], "\n".join(problems)


def test_messages_name_only_the_commands_options():
    """Error fixes, notes and docstrings in lungai/ and the Slicer modules, and the panels' tooltips (.ui), that
    quote ``lungai CMD ... --opt`` name an option CMD has."""
    import html

    problems = []
    for path in SOURCES:
        for line, text in _strings(path):
            problems += _fragments(f"{path.relative_to(REPO)}:{line}", text)
    panels = sorted(REPO.glob("*/Resources/UI/*.ui"))                    # the panels' tooltips and labels
    assert panels
    for path in panels:
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            problems += _fragments(f"{path.relative_to(REPO)}:{line}", html.unescape(text))
    assert problems == [], "\n".join(problems)


def test_every_argument_has_a_help_text():
    """``lungai X --help`` explains every option and argument it lists.  QA docs71: 23 had no text - ``sample
    --location {free,juxta_pleural,juxta_vascular,central}`` / ``--shape`` / ``--side`` (which choice is the built-in
    sample's?), ``stage cv --folds`` / ``--lr`` / ``--seed``, ``stage synth --patients`` / ``--genes``, ``train-seg
    --epochs`` / ``--batch`` / ``--dropout``, ``eval-seg --max-cases``, ``rp validate`` / ``predict``'s model folder,
    every ``--seed`` of rp and seg - argparse showed no default either."""
    missing = [f"lungai {path}: {'/'.join(a.option_strings) or a.dest}" for path, parser in PARSERS.items()
               for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()]
    assert missing == [], "\n".join(missing)


def test_every_option_is_named_in_the_docs():
    """Every option of every ``lungai`` command is named in README.md or docs/ (one of its spellings: ``-o`` for
    ``--output``): an option only ``--help`` knows is one a reader of the docs never learns of.  QA docs71: ``sample
    --location`` / ``--shape`` / ``--side`` / ``--ground-glass`` / ``--no-tumour``, ``demo --small`` and ``rp predict
    --top`` were in no doc."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    named = set(OPTION.findall(text)) | set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", text))
    missing = [f"lungai {path}: {'/'.join(a.option_strings)}" for path, parser in PARSERS.items()
               for a in parser._actions
               if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
               and not named & set(a.option_strings)]
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("text, problem", [
    ("`lungai segment CT -o OUT --label 1`", "--label is not an option of lungai segment"),
    ("`lungai segment / eval-seg --label`", "--label is not an option of lungai segment"),
    ("`lungai stage train --ehr e.csv --label stage --folds 5 -o m`", "--folds is not an option"),
])
def test_the_check_finds_a_wrong_option(text, problem):
    """The checks themselves find an option named beside the wrong command."""
    code = text.strip("`")
    assert problem in "\n".join(_check_command("x", code, False) + _fragments("x", code))


def test_the_check_finds_a_refused_value():
    assert "invalid choice" in "\n".join(_check_command("x", "lungai segment ct.nii.gz -o out --method mc", True))


def test_several_series_fix_names_the_commands_with_series(tmp_path):
    """QA: a radiomics-batch manifest row whose image is a DICOM folder of two CT series (a planning CT and its
    4D average exported together) failed with "choose one series by its SeriesInstanceUID (lungai CLI: --series
    UID)" - radiomics-batch has no --series ("unrecognized arguments"), nor have stage's --ct manifest or train-seg's
    --implant-into CSV.  The fix says to give one series' folder (a manifest's row too) and names the commands that
    take --series: those whose parser has it."""
    import pandas as pd
    import SimpleITK as sitk
    from io_helpers import oblique_image, write_dicom_series

    from lungai.cli import main

    with_series = {c for c, opts in OPTIONS.items() if "--series" in opts}
    assert "radiomics-batch" not in with_series and "lungs" in with_series
    folder = tmp_path / "export" / "CT"
    write_dicom_series(oblique_image(shape_kji=(6, 16, 12)), folder, "1.2.826.0.1.3680043.8.498.301")
    write_dicom_series(oblique_image(shape_kji=(5, 16, 12), seed=1), folder, "1.2.826.0.1.3680043.8.498.302")
    mask = tmp_path / "mask.nii.gz"
    sitk.WriteImage(sitk.Image(12, 16, 6, sitk.sitkUInt8), str(mask))
    pd.DataFrame({"case": ["P1"], "image": [str(folder)], "mask": [str(mask)]}).to_csv(tmp_path / "m.csv", index=False)
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out" / "f.csv"),
                 "--workers", "0"]) != 0
    error = pd.read_csv(tmp_path / "out" / "f_errors.csv")["error"].iloc[0]
    assert "2 different DICOM series" in error and "a manifest's row too" in error, error
    named = re.search(r"--series UID of lungai ([\w /-]+)", error)
    assert named and {c.strip() for c in named.group(1).split("/")} == with_series, error

    from lungai.io.read import SERIES_OPTION_COMMANDS
    assert set(SERIES_OPTION_COMMANDS) == with_series


def _shown_actions(command: str) -> list:
    """The segmentation's review actions (lungai.seg.infer.REVIEW_ACTIONS, MODE_ACTIONS, EMPTY_ACTIONS, the ran-on
    one) as ``lungai COMMAND`` writes / prints them: cohort's own for a cohort patient (lungai.dicom.cohort)."""
    from lungai.seg.infer import EMPTY_ACTIONS, MODE_ACTIONS, REVIEW_ACTIONS, ran_on_action

    actions = [*REVIEW_ACTIONS.values(), *(a for m in MODE_ACTIONS.values() for a in m.values()),
               *EMPTY_ACTIONS.values(), ran_on_action(["left"]), ran_on_action(["left"], "roi")]
    if command == "cohort":
        from lungai.dicom.cohort import CohortJob, cohort_review_action

        job = CohortJob("P1", "P1", "/data/P1/CT", "1.2.3")
        return [cohort_review_action(a, job) for a in actions]
    return actions


@pytest.mark.parametrize("command", ["segment", "demo", "cohort"])
def test_review_actions_name_only_the_showing_commands_options(command):
    """QA: ``lungai cohort`` (LUNG1-like patients without a GTV, automatic tumour) wrote into each patient's
    result.json "draw an ROI box round the tumour (--roi ...)" and "run again with a seed point (--seed-point ...)":
    lungai cohort has neither.  Every option an action names bare is one of the command that shows it; one named
    beside ``lungai CMD`` is CMD's."""
    problems = []
    for text in _shown_actions(command):
        problems += _fragments(f"lungai {command}", text)
        bare = re.sub(r"(?<![\w-])lungai\s+(" + "|".join(map(re.escape, COMMANDS)) + r")\s+[^`'\"();\n]*", "", text)
        problems += [f"lungai {command}: {o} is not an option of lungai {command}: {text}"
                     for o in OPTION.findall(bare) if o not in OPTIONS[command] and o != "--val-fraction"]
    assert problems == [], "\n".join(problems)    # --val-fraction: named as train-seg's ("train-seg again with ...")


def test_stage_snippet_ehr_row_gives_every_synthetic_ehr_column(tmp_path):
    """docs/stage.md's Python example predicts with ``synthetic_stage_model`` from an ``ehr_row``: it must give every
    EHR column that cohort (and so the model) has, or the copied example prints "EHR column(s) of the model not in
    the EHR table: 'pack_years' - treated as missing" (QA docsrun61: the row left out pack_years)."""
    from lungai.fusion.synthetic import make_cohort

    text = (REPO / "docs" / "stage.md").read_text(encoding="utf-8")
    rows = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        if "synthetic_stage_model(" not in block:
            continue
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.keyword) and node.arg == "ehr_row":
                rows.append(ast.literal_eval(node.value))
    assert rows, "docs/stage.md's synthetic_stage_model example passes no ehr_row"
    ehr = make_cohort(tmp_path, n=12, seed=0, n_genes=20, module_size=5, ct_shape=(16, 16, 16))["ehr"]
    columns = set(Path(ehr).read_text(encoding="utf-8").splitlines()[0].split(",")) - {"patient_id", "stage"}
    for row in rows:
        assert set(row) == columns, (sorted(row), sorted(columns))
