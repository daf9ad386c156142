"""The input paths of ``lungai rp train / validate / predict`` - the patients table(s), the role file, the model
folder - checked with the arguments, before pandas, scikit-learn and torch are imported and before the model file is
read: this module imports none of them (QA rp71, a shared 2-core machine: ``rp train`` with a mistyped table or role
file imported pandas, scikit-learn, torch and SimpleITK for 12-14 s before "does not exist"; ``rp predict`` /
``rp validate`` of a missing model folder 10-12 s, of a missing patients table 11-13 s, after loading the model file -
a random forest's took 13-49 s).  The readers refuse the same paths the same way (:func:`lungai.rp.checks.read_table`,
:func:`lungai.rp.columns.read_role_file`, :func:`lungai.rp.card.read_card`) for the Python API."""

from __future__ import annotations

from lungai.errors import InputError

# what a missing / unreadable table or role file is told to do (the readers' fix too)
TABLE_FIX = "give the path of a comma-separated CSV file with one row per patient"
ROLE_FILE_FIX = "give the path of a CSV with columns column,role[,type]"


def check_input_paths(tables=(), role_file=None, model_dir=None, threshold_given: bool = False) -> None:
    """Refuse, before any heavy import or work, the model folder ``model_dir`` that ``rp predict`` / ``rp validate``
    would refuse (:func:`lungai.rp.card.read_card`: missing, a file, a stage model, no model file or card, a card of
    another format; ``threshold_given``: ``rp validate --threshold`` replaces the card's), then each table of
    ``tables`` and the role file ``role_file`` that is no regular file (missing, a link to nothing, a folder, a named
    pipe ...: :func:`lungai.errors.check_input_file`), each named as its reader names it."""
    from lungai.errors import check_input_file

    if model_dir is not None:
        from lungai.rp.card import read_card

        read_card(model_dir, threshold_given)
    for table in tables:
        check_input_file(table, "table", TABLE_FIX, "a CSV file")
    if role_file:
        check_input_file(role_file, "role file", ROLE_FILE_FIX, "a CSV file")


def check_output_not_input(output, inputs) -> None:
    """Refuse an output file ``output`` that is one of the ``inputs`` (the patients tables, the contributions CSV's
    path ...): writing it would replace the table.  ``lungai rp predict`` checks its ``-o`` with the arguments, before
    the heavy imports and the model's loading, :func:`lungai.rp.predict.predict_rp` again (QA rp72: ``rp predict MODEL
    patients.csv -o patients.csv`` was refused only after pandas, scikit-learn, torch and a random forest's model file
    were loaded, 6-17 s)."""
    from pathlib import Path

    if output is not None and Path(output).resolve() in {Path(p).resolve() for p in inputs}:
        raise InputError(f"the output {output} is an input file and would be overwritten",
                         "choose another output path with -o (the input tables are only read)")
