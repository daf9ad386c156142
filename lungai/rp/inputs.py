"""The input paths of ``lungai rp train / validate / predict`` - the patients table(s), the role file, the model
folder - checked with the arguments, before pandas, scikit-learn and torch are imported and before the model file is
read: this module imports none of them (QA rp71, a shared 2-core machine: ``rp train`` with a mistyped table or role
file imported pandas, scikit-learn, torch and SimpleITK for 12-14 s before "does not exist"; ``rp predict`` /
``rp validate`` of a missing model folder 10-12 s, of a missing patients table 11-13 s, after loading the model file -
a random forest's took 13-49 s).  The readers refuse the same paths the same way (:func:`lungai.rp.checks.read_table`,
:func:`lungai.rp.columns.read_role_file`, :func:`lungai.rp.card.read_card`) for the Python API."""

from __future__ import annotations

import os

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
    check_tables_given(tables, role_file, roles_option=model_dir is None)     # rp train: the one with --roles


ROLE_FILE_COLUMNS = ("column", "role", "type")    # a role file's header (lungai.rp.columns.read_role_file)


def _role_file_header(path) -> str | None:
    """The header line of ``path`` when it is a role file's (the columns column and role, perhaps type, in any case
    or spacing), else None.  Reads the first line only (the csv module: no pandas)."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            first = next(csv.reader([f.readline()]), [])
    except OSError:
        return None                                  # (the reader says why)
    cells = [c.strip().lower() for c in first]
    if {"column", "role"} <= set(cells) and set(cells) <= set(ROLE_FILE_COLUMNS) and len(cells) == len(set(cells)):
        return ",".join(c.strip() for c in first)
    return None


def check_tables_given(tables, role_file=None, roles_option: bool = False) -> None:
    """Refuse a table given twice, a role file given as a table and the role file given as a table too, before any
    table is read (``lungai rp train / validate / predict`` with the arguments, :func:`check_input_paths`; the reader
    :func:`lungai.rp.checks.read_tables` for the Python API).  ``roles_option``: the command takes ``--roles`` (rp
    train), the fix then gives it.  QA rp72 (NSCLC-Radiogenomics' clinical table): ``rp train clinical.csv
    roles.csv`` (--roles forgotten) was refused after the loading bar, 3 s alone, 12.9 s on a shared machine, as
    "roles.csv has no patient id column ... add a column named one of case, patient_id ... to every table";
    ``rp train clinical.csv clinical.csv`` (9.7 s) as "repeats columns [...] of an earlier table", fix "keep each
    column in one table only"."""
    from pathlib import Path

    seen = {}
    for table in tables:
        if not isinstance(table, (str, os.PathLike)):
            continue                                 # a DataFrame (the Python API): nothing to compare
        key = Path(table).resolve()
        if key in seen:
            same = f" (as {seen[key]} and {table})" if str(seen[key]) != str(table) else ""
            raise InputError(f"the table {table} is given twice{same}",
                             "give each table once (several tables are joined on their patient id column)")
        seen[key] = table
        header = _role_file_header(table)
        if header is not None:
            raise InputError(f"the table {table} is a role file (its header: {header}), not a table of patients",
                             (f"give it with --roles {table}" if roles_option and not role_file else
                              "give only the tables of patients as arguments (one row per patient)")
                             + (" and the role file with --roles" if roles_option and role_file else ""))
    if role_file and Path(role_file).resolve() in seen:
        raise InputError(f"the role file {role_file} is also given as a table",
                         "give the tables of patients as arguments and the role file only with --roles")


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
