"""Cohort radiomics on Dask distributed: resumable, failure-tolerant, with progress.

Each case is one task (:func:`process_case`, importable by the worker processes).  A finished case
writes ``<output>.parts/<case>.csv`` (atomically); a re-run skips cases whose part exists, so an
interrupted batch resumes.  A case that fails is recorded with its error and the others go on;
failed cases are retried on the next run.  At the end the parts of all manifest cases are
combined into the output CSV (and ``<output>_errors.csv`` lists failed cases and segments,
``<output>_settings.csv`` the grid and settings each segment was computed with).

``workers=0`` runs the same function in a plain loop in this process (the benchmark baseline).  A run holds the lock
``.lungai.lock`` of the output's folder for its whole run (:func:`lungai.io.outputs.locked_output_folder`): a second
batch into that folder meanwhile is refused naming its process; a killed run's lock is taken over and it resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # pandas where a table is read or built: `lungai cohort` draws its first bar before it
    import pandas as pd

from lungai.errors import InputError, LungAIError, agree, counted, counted_of, failure_lines, split_error
from lungai.io.outputs import (forget_stamps, locked_output_folder, prepare_output_file, prepare_output_folder,
                               record_output_file, remove_output_file, recorded_output_files)
from lungai.radiomics.cluster import check_main_guard, check_scheduler_address, run_tasks
from lungai.radiomics.csv_output import check_csv_name, write_csv
from lungai.radiomics.settings import (LUNG_GRID_REASON, SETTINGS_COLUMN, canonical_params, dropped_revisions,
                                      ignored_lung_spacing_key, revision_reasons,
                                      settings_id, value_revisions, with_lung_grid_revision, without_lung_grid_revision,
                                      sidecar_path, unverified_ibsi_note, write_sidecar, written_forms)
from lungai.radiomics.extract import ERROR_COLUMNS, LONG_COLUMNS, to_wide
from lungai.radiomics.manifest import PATH_COLUMNS, ROW_CELLS, ROW_LINE, is_phantom, read_manifest, safe_name
from lungai.radiomics.prepare import SETTINGS_COLUMNS, mixed_spacing_note


# the errors-table text of a segment whose label is simply absent from the case's mask (a manifest label such as
# `other_gtvs=2` that some patients do not have): listed, but not a failure - unless it is absent from every case
# extracted (then it is a wrong label)
ABSENT = "absent: "

INPUTS = ".inputs.json"     # beside a case's part: what it was made of (case_inputs); a re-run redoes a changed case
CASE_COLUMNS = (*PATH_COLUMNS, "label", "phantom")     # the manifest columns a case's values depend on
SEGMENT_NAMES, SEG_NAMES_BY_LABEL = "segment_names", "SegmentLabel"   # in <case>.inputs.json of a DICOM SEG mask
CODED_LUNGS = "coded_lungs"     # ... and its segments that are lungs by their terminology code only


def read_part(path) -> pd.DataFrame:
    """A part file of the resume folder (``<case>.csv``, ``.settings.csv``, ``.errors.csv``): its ``case`` column as
    written - a case id ``NA``, ``None``, ``null``, ``nan`` or ``N/A`` stays that id, never a blank (missing) case -
    the other columns read as usual (an empty value or ``nan`` is NaN)."""
    import pandas as pd
    from pandas._libs.parsers import STR_NA_VALUES

    columns = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(path, dtype={"case": str}, keep_default_na=False,
                       na_values={c: sorted(STR_NA_VALUES) for c in columns if c != "case"})


def _path_digest(value: str):
    """A manifest path's identity: a file's name, size and content hash (:func:`lungai.io.read.file_digest`, as
    ``lungai cohort``), a folder's (a DICOM series') files' names and sizes; a ``FILE#PART`` selector is kept."""
    from lungai.dicom.masks import split_selector
    from lungai.io.read import file_digest

    p, part = split_selector(value)
    if p.is_dir():
        doc = {"folder": p.name, "files": sorted([str(f.relative_to(p)), f.stat().st_size]
                                                 for f in p.rglob("*") if f.is_file())}
    else:
        doc = file_digest(p)
    return {**doc, "part": part} if part else doc


def case_inputs(row: dict) -> dict:
    """What a case's part is made of, recorded beside it (``<case>.inputs.json``): its image and masks (name, size,
    content hash; a folder's files' names and sizes) and its label / phantom columns.  A re-run redoes a case whose
    recorded inputs differ (a mask overwritten, the row pointed at another image); raises OSError when a file cannot
    be read."""
    from lungai.dicom.seg import seg_segment_labels

    doc = {col: (_path_digest(row[col]) if col in PATH_COLUMNS and row[col] else row[col])
           for col in CASE_COLUMNS if col in row}
    labels = seg_segment_labels(row["mask"]) if row.get("mask") else None
    if labels is not None:
        # a DICOM SEG's segments named by their SegmentLabel (lungai.radiomics.segments.segments_from_mask_file,
        # as lungai radiomics --mask; a lung so on the lung grid): a part of an older lungai, which named them
        # label_N on the CT's grid, lacks it and is redone
        doc[SEGMENT_NAMES] = SEG_NAMES_BY_LABEL
        from lungai.radiomics.segments import coded_lungs

        coded = coded_lungs(row["mask"], labels)
        if coded:       # lungs by their terminology code ("Segment_2"), on the lung grid: an older part (on the
            doc[CODED_LUNGS] = coded       # CT's grid) lacks it and is redone
    return doc


def row_paths(row: dict) -> dict:
    """The full path each path column of a case's row names (symbolic links and ``..`` resolved, so that a manifest
    given as a relative path or through a linked folder names the same files), recorded beside its part (``paths``
    in ``<case>.inputs.json``, brought up to date whenever the files are found unchanged elsewhere): a re-run
    compares them when the files cannot be read now (moved, a drive not mounted) - see :func:`_row_changes`."""
    return {col: _resolved(row[col]) for col in PATH_COLUMNS if row.get(col)}


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):       # a loop of links, an unreachable drive: as written
        import os

        return os.path.abspath(path)


def _same_place(then: str, now: str) -> bool:
    """Whether a recorded path and a row's path name the same file as far as can be told without reading it: the
    same path (links resolved), or the same file name in a folder of the same name (a cohort folder moved or
    mounted elsewhere: ``/mnt/a/cohort/p1/ct.nii.gz`` and ``/media/b/cohort/p1/ct.nii.gz``).  Not so another file
    name, nor the same name in another folder (``p1/ct.nii.gz`` and ``p2/ct.nii.gz``: another patient)."""
    if then == now or _resolved(then) == _resolved(now):
        return True
    return Path(then).parts[-2:] == Path(now).parts[-2:]


def _inputs_file(part: Path) -> Path:
    return part.with_name(part.stem + INPUTS)


PART_ROWS = "part_rows"     # in <case>.inputs.json: the rows its part was written with,
PART_BYTES = "part_bytes"   # its size
PART_SHA256 = "part_sha256"     # and its content's hash (a value cut inside the last row keeps the row count)
PART_KEYS = (PART_ROWS, PART_BYTES, PART_SHA256)     # of the part written, not of the case's inputs


def _part_record(path: Path) -> dict:
    """:data:`PART_BYTES` and :data:`PART_SHA256` of a part file."""
    data = path.read_bytes()
    return {PART_BYTES: len(data), PART_SHA256: hashlib.sha256(data).hexdigest()}


def _part_mismatch(part: Path, recorded) -> str | None:
    """Why a case's part no longer holds what was written (rows deleted or added by hand, a value cut by a truncated
    file, an unreadable file): its row count, size or content hash differs from the one recorded with it; None when
    they match or none is recorded (an older lungai's part: the ones recorded are checked)."""
    if not isinstance(recorded, dict) or not any(k in recorded for k in PART_KEYS):
        return None
    try:
        n = len(read_part(part))
        now = _part_record(part)
    except (OSError, ValueError) as exc:      # pandas' ParserError / EmptyDataError are ValueErrors
        return f"its part {part.name} cannot be read ({type(exc).__name__})"
    if isinstance(recorded.get(PART_ROWS), int) and n != recorded[PART_ROWS]:
        return f"its part {part.name} holds {n} rows of the {recorded[PART_ROWS]} written (edited since?)"
    if isinstance(recorded.get(PART_BYTES), int) and now[PART_BYTES] != recorded[PART_BYTES]:
        return (f"its part {part.name} holds {now[PART_BYTES]} bytes of the {recorded[PART_BYTES]} written "
                "(truncated or edited since?)")
    if isinstance(recorded.get(PART_SHA256), str) and now[PART_SHA256] != recorded[PART_SHA256]:
        return f"its part {part.name} is not the file written: its content differs (edited since?)"
    return None


def manifest_labels(cell) -> list[str]:
    """The items of a manifest ``label`` cell, separated by ``;`` or ``,`` (``tumour=1;lungs=2``, ``1,2``).

    A bare number after a named item - ``tumour=1,2`` (the union of labels 1 and 2, as ``--tumour labels.nii.gz#1,2``
    writes it) or ``tumour=1;2`` - is refused: it read as ``tumour`` = label 1 alone plus a segment ``label_2``
    (LUNG1-003: a 35 ml tumour instead of its 82 ml GTVs), exit 0.  Write ``tumour=1;tumour=2`` for the union,
    ``tumour=1;label_2=2`` for a separate segment.  Bare numbers before any name (``1;2``, ``2;tumour=1``) stay
    segments ``label_N``."""
    for chunk in str(cell or "").split(";"):
        # a name holding a comma ("GTV, primary=1", a SEG's SegmentLabel): read as a non-label 'GTV' and a segment
        # 'primary' = label 1 (QA demo62: "label 'GTV' is not an integer", the segment computed as 'primary')
        pieces = [v.strip() for v in chunk.split(",")]
        for before, after in zip(pieces, pieces[1:]):
            if before and "=" not in before and not before.isdigit() and "=" in after:
                name, _, value = after.rpartition("=")
                raise InputError(
                    f"manifest label {str(cell).strip()!r}: ';' and ',' separate labels here, so a segment name cannot "
                    f"hold a comma: it would read as {before!r} (not a label) and segment {name.strip()!r} = label "
                    f"{value.strip()}",
                    f"name the segment without a comma ({'_'.join((before + ' ' + name).split())}={value.strip()}), "
                    f"or give the label alone ({value.strip()}): a DICOM SEG's segment N is then named by its "
                    f"SegmentLabel ({before}, {name.strip()})")
    items = [v for chunk in str(cell or "").split(";") for v in chunk.split(",") if v.strip()]
    named = None                    # the last name=N item so far
    for i, item in enumerate(items):
        if "=" in item:
            named = item
            continue
        if named is None:
            continue
        name, _, value = (v.strip() for v in named.rpartition("="))
        others = []                 # the bare items after it, up to the next named one
        for v in items[i:]:
            if "=" in v:
                break
            others.append(v.strip())
        raise InputError(
            f"manifest label {str(cell).strip()!r}: ';' and ',' both separate labels here, so it would read as "
            f"{name!r} = label {value} alone and {', '.join(others)} as "
            + ("its own segment" if len(others) == 1 else "their own segments")
            + f" ({', '.join(f'label_{v}' for v in others)})",
            f"for one segment of several labels repeat the name: "
            f"{';'.join(f'{name}={v}' for v in [value, *others])}; for separate segments name each "
            f"({';'.join([f'{name}={value}', *(f'label_{v}={v}' for v in others)])})")
    return items


def _check_row_gives_masks(row: dict) -> None:
    """A row whose mask cells (``mask``, ``tumour``, ``lungs``: those the manifest has) are all empty fails its case
    saying so, before its CT is read (QA: "no segment could be extracted: no segment given", fix "fix the masks")."""
    columns = [c for c in ("mask", "tumour", "lungs") if c in row]
    if not any(str(row.get(c) or "").strip() for c in columns):
        cells = " / ".join(columns) or "mask"
        raise InputError(f"its manifest row names no mask: its {cells} cell{'s are' if len(columns) > 1 else ' is'} "
                         "empty", f"give the case's mask file in the manifest's {cells} column, or remove the row")


def _check_row_files(row: dict, manifest) -> None:
    """A row whose path cell names a missing file fails its case naming the cell's line, column and the cell as
    written, and where the file was looked for (:func:`lungai.io.tables.missing_listed_file`), before its CT is
    read - not by the path it is read from alone (QA radfollow65: "rb/proj/data/nothere.nii.gz does not exist")."""
    from lungai.dicom.masks import value_words
    from lungai.io.tables import missing_listed_file

    cells = row.get(ROW_CELLS) or {}
    for col in PATH_COLUMNS:
        if row.get(col) and col in cells:
            error = missing_listed_file(cells[col], manifest, value_words(col, row[col]), what="manifest")
            if error is not None:
                raise error


def _segments_for(row: dict, image, segments, errors: dict, lung_names: list | None = None,
                  one_lesion: dict | None = None, segment_notes: dict | None = None) -> dict:
    """The case's segments (its mask / tumour / lungs cells); ``lung_names`` gets a DICOM SEG's segments that are
    lungs by their terminology code only (:func:`lungai.radiomics.segments.segments_from_mask_file`); ``one_lesion``
    {segment: how to give one lesion of it}, in the words of the row's cells
    (:func:`lungai.radiomics.extract.parts_note`); ``segment_notes`` {segment: [notes]}: a tumour wholly outside the
    lungs (:func:`lungai.radiomics.segments.tumour_outside_lungs_note`), for the settings' notes column."""
    from lungai.io import read_mask
    from lungai.radiomics import segments as S

    if row.get("mask"):
        if is_phantom(row.get("phantom")):
            mask = read_mask(row["mask"], reference=image)   # as `lungai radiomics --mask`: off the grid names the file
            return S.segments_from_phantom_labels(mask, image, names=segments, errors=errors)
        labels = manifest_labels(row.get("label"))
        absent: set = set()
        # as `lungai radiomics --mask` (one rule): a DICOM SEG's segments named by their SegmentLabel
        segs = S.segments_from_mask_file(row["mask"], image, labels or None, errors=errors, absent=absent,
                                         lung_names=lung_names, one_lesion=one_lesion)
        if segments:    # --segments picks among the mask's segments, the rule of `lungai radiomics --mask`
            segs = S.mask_segments_named(segs, errors, segments, row["mask"], case=row.get("case"), absent=absent)
        for name in absent:         # a requested label this patient's mask lacks: noted, not a failure
            errors[name] = ABSENT + errors[name]
        return segs
    from lungai.dicom.masks import lung_map_input, mask_input   # the rule of `lungai radiomics --tumour / --lungs`

    if segments and not set(segments) & set(S.STANDARD_SEGMENTS):   # --segments applies to every row alike
        raise InputError(f"--segments {' '.join(map(str, segments))}: none is a segment of case {row.get('case')}'s "
                         f"tumour / lungs cells (they give {', '.join(S.STANDARD_SEGMENTS)})",
                         "name one of those in --segments too, or give the case a mask cell (its label cell "
                         "naming the segments), or leave --segments out, or remove the row")

    sides: dict = {}       # a DICOM SEG's right and left lung segments, named if they are swapped
    seg_parts: dict = {}   # a DICOM SEG tumour's segments
    tumour = mask_input(row["tumour"], image, option="tumour", parts=seg_parts) if row.get("tumour") else None
    if tumour is not None and one_lesion is not None:
        one_lesion["tumour"] = S.tumour_one_lesion(row["tumour"], seg_parts, option="tumour")
    segment_notes = segment_notes if segment_notes is not None else {}
    lung_notes: list = []       # one lung absent, a lung segment that looks like no lung
    segs = S.segments_from_masks(image, tumour=tumour,
                                 lungs=lung_map_input(row["lungs"], image, option="lungs",
                                                      consequence=S.LUNG_MAP_CONSEQUENCE, names=sides)
                                 if row.get("lungs") else None,
                                 names=segments, errors=errors, lung_segments=sides, lung_file=row.get("lungs"),
                                 tumour_segments=seg_parts, tumour_file=row.get("tumour"),
                                 notes=segment_notes.setdefault("lungs_minus_tumour", []), lung_notes=lung_notes)
    if lung_notes:
        # in the notes of a lung segment computed, whatever --segments asks: 'lungs' left out, they were said nowhere
        # (QA notesfollow71: --segments tumour right_lung on pyradiomics' lung2 lesion as the lungs)
        lung_first = [n for n in (*S.WHOLE_LUNG_SEGMENTS, "right_lung", "left_lung") if n in segs]
        segment_notes.setdefault((lung_first or list(segs) or ["lungs"])[0], []).extend(lung_notes)
    return segs


# the messages of a case's input steps (its CT read, its segments built from the mask cells)
INPUT_STEPS = ("reading the CT", "building the segments")


def process_case(row: dict, params: dict, segments, parts_dir: str, manifest: str | None = None) -> dict:
    """Extract one case and write its part files; never raises (errors are returned).  ``manifest``: the manifest
    the row is of: its error's fixes are then worded as its cells (:func:`lungai.dicom.masks.manifest_fixes`:
    ``"seg.dcm#GTV, primary"`` in double quotes, no shell quotes, its columns for the options)."""
    from contextlib import nullcontext

    from lungai.dicom.masks import manifest_fixes

    with manifest_fixes(manifest, row.get(ROW_LINE), row.get(ROW_CELLS)) if manifest else nullcontext():
        return _process_case(row, params, segments, parts_dir, manifest)


def _process_case(row: dict, params: dict, segments, parts_dir: str, manifest=None) -> dict:
    """:func:`process_case` (within the manifest's wording of the fixes)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lungai.io import read_ct
    from lungai.progress import task, timer_running
    from lungai.radiomics.extract import extract

    start = time.perf_counter()
    case = row["case"]
    part = Path(parts_dir) / f"{safe_name(case)}.csv"
    try:
        _check_row_gives_masks(row)
        if manifest:
            _check_row_files(row, manifest)
        errors: dict = {}
        lung_names: list = []       # a SEG's segments that are lungs by their terminology code only
        one_lesion: dict = {}       # segment -> how to give one lesion of it (the row's cells' words)
        seg_notes: dict = {}        # segment -> notes found building it (a tumour outside the lungs)
        # the case's steps, as `lungai cohort` says a patient's: in a Dask worker sent to the cases' bar ("L003:
        # radiomics 2/5: right_lung", lungai.dask_workers.with_progress_forwarded), in the plain loop a bar of its
        # own.  QA rad67: the cases' bar said nothing for the 13 s of LUNG1-003's five segments (minutes with LoG /
        # Wavelet), only "2 Dask workers started" until the case was done
        # Each input step said again with its seconds while it runs, in a Dask worker too (lungai.progress.
        # timer_running; QA radfollow68: "building the segments" stood 2.5 s on LUNG1-003's tumour and both lungs)
        with task(f"radiomics-batch {case}: inputs", len(INPUT_STEPS), rate=False) as bar:
            bar.update(0, INPUT_STEPS[0])
            with timer_running(bar):
                image = read_ct(row["image"])
            bar.update(1, INPUT_STEPS[1])
            with timer_running(bar):
                segs = _segments_for(row, image, segments, errors, lung_names, one_lesion, seg_notes)
            bar.update(1, f"{len(segs)} segment{'' if len(segs) == 1 else 's'} built")
        with task(f"radiomics-batch {case}: radiomics", max(len(segs), 1), rate=False) as bar:  # a step per segment
            result = extract(image, segs, params, case=case, segment_errors=errors, lung_names=lung_names,
                             one_lesion=one_lesion, segment_notes=seg_notes, progress=bar)
        if result.features.empty:
            # the prefix: errors-table only; each segment's own fix said once, after the problems (QA: the label's
            # fix, then a generic "fix the masks")
            said = [split_error(e.removeprefix(ABSENT)) for e in result.errors.error]
            why = "; ".join(problem for problem, _ in said)
            fixes = list(dict.fromkeys(fix for _, fix in said if fix))
            raise InputError("no segment could be extracted: " + (why or "no segment given"),
                             "; ".join(fixes) or "fix the masks")
        inputs = {**case_inputs(row), "paths": row_paths(row)}   # once read (a missing file: read_ct's error)
        if not result.errors.empty:
            write_csv(result.errors, part.with_name(part.stem + ".errors.csv"))
        write_csv(result.settings, part.with_name(part.stem + ".settings.csv"))
        pending = part.with_name(f".{part.name}.{os.getpid()}.pending")    # the part, not yet marking the case done
        try:
            write_csv(result.features, pending, any_suffix=True)
            # its rows, size and hash: a part edited since (rows deleted, a value cut by truncation) is redone
            inputs.update({PART_ROWS: len(result.features), **_part_record(pending)})
            _inputs_file(part).write_text(json.dumps(inputs, sort_keys=True), encoding="utf-8")
            pending.replace(part)       # last: its presence marks the case done
        finally:
            pending.unlink(missing_ok=True)
        return {"case": case, "status": "done", "values": len(result.features),
                "segment_errors": len(result.errors), "seconds": time.perf_counter() - start}
    except LungAIError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken case must not stop the cohort
        message = f"{type(exc).__name__}: {exc}"
    return {"case": case, "status": "failed", "error": message, "seconds": time.perf_counter() - start}


@dataclass
class BatchSummary:
    output: Path
    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)     # (case, error)
    seconds: float = 0.0
    segment_errors: list = field(default_factory=list)   # (case, segment, error) of the cases extracted
    absent: list = field(default_factory=list)   # (case, segment, error): a label absent from that case's mask
    errors_csv: Path | None = None
    cut: list = field(default_factory=list)      # warnings: segments on the image edge (may be cut by the scan)
    nan_notes: list = field(default_factory=list)  # notes: why values are NaN (_settings.csv notes column)
    unverified: str | None = None                # note: an IBSI preset's features without an IBSI-1 reference value
    spacing: str | None = None                   # warning: texture features of mixed voxel spacings
    redone: str | None = None                    # note: the cases done by an older lungai were dropped and redone
    unchecked: str | None = None                 # warning: cases done kept unchecked (their files unreadable now)
    changed: list = field(default_factory=list)  # notes: cases done whose inputs changed since (redone)
    written: bool = True                         # the table (output) written: False when no case has results
    wide: bool = False                           # the table is wide (--wide): a row per case

    def text(self) -> str:
        lines = [f"note: {self.redone}"] if self.redone else []
        lines += [f"warning: {self.unchecked}"] if self.unchecked else []
        lines += [f"note: {note}" for note in self.changed]
        lines += [f"{counted(len(self.done), 'case')} extracted, {len(self.skipped)} already done (skipped), "
                  f"{len(self.failed)} failed; {self.seconds:.1f} s in all "
                  # no case has results: no table written, never "-> out.csv" (QA segcut64: said so, only
                  # out_errors.csv was written)
                  + (f"-> {self.output}" if self.written else
                     f"- no results, so no {self.output} written"
                     + (f" (the failures are listed in {self.errors_csv})" if self.errors_csv else ""))]
        lines += failure_lines(self.failed)
        if self.failed and self.written and self.errors_csv:
            # where they are and how to redo them alone (QA radfollow68: LUNG1-002 failed beside LUNG1-003, --wide:
            # only the failure said, not that the table has no row of it nor where it is recorded)
            n, kept = len(self.failed), len(self.done) + len(self.skipped)
            lines.append(f"{'the failed case is' if n == 1 else f'the {n} failed cases are'} listed in "
                         f"{self.errors_csv} and {agree(n, 'has', 'have')} no {'row' if self.wide else 'rows'} in "
                         f"{self.output}; fix {agree(n, 'it', 'them')} as said above and run the same command again: "
                         f"the {counted(kept, 'case')} done {agree(kept, 'is', 'are')} skipped, only the failed "
                         f"{agree(n, 'one is', 'ones are')} computed")
        if self.segment_errors:     # the case's other segments were extracted; these are NaN / missing
            cases = len({case for case, _, _ in self.segment_errors})
            lines.append(f"{counted(len(self.segment_errors), 'segment')} failed in "
                         f"{counted(cases, 'extracted case')} (the others were computed; listed in {self.errors_csv}):")
            lines += failure_lines(((f"{case} / {segment}", err) for case, segment, err in self.segment_errors),
                                   label="segment failed", most=20)
        if self.absent:             # not failures: those patients do not have that label
            lines.append(f"{counted(len(self.absent), 'segment')} absent: {agree(len(self.absent), 'its', 'their')} "
                         f"label is not in that case's mask (not a failure; listed in {self.errors_csv}):")
            lines += [f"absent: {case} / {segment}" for case, segment, _ in self.absent[:20]]
            if len(self.absent) > 20:
                lines.append(f"... and {len(self.absent) - 20} more")
        lines += [f"warning: {note}" for note in self.cut[:20]]          # recorded in _settings.csv as well
        if len(self.cut) > 20:
            lines.append(f"... and {counted(len(self.cut) - 20, 'more segment')} on the image edge (_settings.csv "
                         "cut_by_image_edge)")
        lines += [f"note: {note}" for note in self.nan_notes[:20]]     # recorded in _settings.csv as well
        if len(self.nan_notes) > 20:
            lines.append(f"... and {len(self.nan_notes) - 20} more notes on NaN values (_settings.csv notes)")
        if self.unverified and self.written:
            lines.append(f"note: {self.unverified}")
        if self.spacing:
            lines.append(f"warning: {self.spacing}")
        return "\n".join(lines)


def _segment_names(rows, segments, lung_names: list | None = None) -> list[str]:
    """The segment names a batch computes: ``segments`` and the names of the manifest's ``label`` items
    (``Lung_R=1;GTV-1=2``, as :func:`_segments_for` reads them).  ``lung_names`` gets a DICOM SEG's segments that
    are lungs by their terminology code only (:func:`lungai.radiomics.segments.coded_lungs`)."""
    from lungai.dicom.seg import seg_segment_labels
    from lungai.radiomics.segments import coded_lungs

    names = [str(n) for n in (segments or [])]
    for row in rows:
        if row.get("mask"):      # a DICOM SEG's segments are named by their SegmentLabel (segments_from_mask_file)
            labels = seg_segment_labels(row["mask"]) or []
            names += labels
            if lung_names is not None and labels:
                lung_names += coded_lungs(row["mask"], labels)
        for item in manifest_labels(row.get("label")):
            name = item.rpartition("=")[0].strip()
            if name:
                names.append(name)
    return names


PARAMS_RECORD = "params.json"    # beside params.key: the parameters it is the key of, to name what a re-run changed


def _flat(doc, prefix: str = "") -> dict:
    """``doc`` (nested dicts) as ``{"setting.binWidth": 25, ...}``; other values (lists ...) as they are."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out = {}
    for name, value in doc.items():
        out.update(_flat(value, f"{prefix}.{name}" if prefix else str(name)))
    return out


def _params_changes(parts: Path, params: dict, segments) -> str:
    """What differs between the parameters recorded in ``parts`` (:data:`PARAMS_RECORD`) and these: "params.
    setting.binWidth: 25 then, 10 now; ..." (up to 6), or "" when nothing was recorded (an older lungai's folder) or
    it cannot be read."""
    try:
        then = json.loads((parts / PARAMS_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _shown_changes(parts, params, segments)
    now = json.loads(json.dumps({"params": params, "segments": segments}, sort_keys=True, default=str))
    listed = [{**r, "params": classes_listed(r["params"])} if isinstance(r, dict) and "params" in r else r
              for r in (then, now)]
    return _changes_text(*map(_flat, listed), lambda name: name.removeprefix("params."))


def classes_listed(params):
    """Parameters with their ``featureClass`` as one text, the classes by name ("firstorder, glcm, shape"; a class
    limited to some features "glcm (Contrast, Idmn)"), for :func:`_changes_text`: a change of classes is then said as
    one - "featureClass: firstorder, shape then, firstorder, glcm, shape now", as :func:`_shown_changes` says it - not
    class by class in the dict's terms ("featureClass.glcm: (not set) then, [] now": QA radiomics72,
    `radiomics-batch --feature-classes shape` re-run without it).  ``lungai cohort`` says its changes so too."""
    if not isinstance(params, dict) or not isinstance(params.get("featureClass"), dict):
        return params
    classes = sorted(params["featureClass"].items())
    return {**params, "featureClass": ", ".join(c if not f else f"{c} ({', '.join(map(str, f))})" for c, f in classes)}


def _changes_text(then: dict, now: dict, name=str) -> str:
    """"NAME: A then, B now; ..." for the keys whose values differ (up to 6, then "... N more")."""
    changed = [f"{name(k)}: {then.get(k, '(not set)')} then, {now.get(k, '(not set)')} now"
               for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)]
    return "; ".join(changed[:6]) + (f"; ... {len(changed) - 6} more" if len(changed) > 6 else "")


def _image_type_family(name: str) -> str:
    """An image type as the parts name it (``log-sigma-1-0-mm-3D``, ``wavelet-LLH``, ``lbp-2D``) or as the
    parameters do (``LoG``, ``Wavelet``, ``LBP2D``): ``log``, ``wavelet``, ``lbp``."""
    family = str(name).split("-")[0].lower()
    return "lbp" if family.startswith("lbp") else family


def _shown_changes(parts: Path, params: dict, segments) -> str:
    """For a resume folder of an older lungai, which kept no :data:`PARAMS_RECORD`: what its cases' values show was
    computed differently from these parameters - the settings (their ``radiomics_settings`` id; named setting by
    setting from the table's ``.settings.json`` of that id, :func:`lungai.radiomics.settings.write_sidecar`), the
    image types, the feature classes and (with ``segments`` given) the segments: "setting.binWidth: 25 then, 10
    now; featureClass: firstorder, glcm then, firstorder, shape now" ("" when nothing shows or nothing can be
    read).  (QA: a folder of an older lungai was refused naming no difference, fix "run with the parameters they
    were made with" - which the user could not know.)"""
    import pandas as pd
    from lungai.radiomics.params import FEATURE_CLASSES
    from lungai.radiomics.settings import value_settings

    frames = []
    for p in sorted(parts.glob("*.csv")):
        if p.is_file() and not p.name.endswith((".errors.csv", ".settings.csv")):
            with contextlib.suppress(OSError, ValueError):
                frames.append(read_part(p))
    done = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LONG_COLUMNS)
    done = done.reindex(columns=list(dict.fromkeys([*done.columns, *_SHOWN_COLUMNS])))  # an edited part's lack
    then, now = {}, {}
    ids = set(done[SETTINGS_COLUMN].dropna().astype(str)) if SETTINGS_COLUMN in done else set()
    if ids and settings_id(params) not in ids:
        side = sidecar_path(parts.with_name(parts.name.removesuffix(".parts")))
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        if isinstance(doc, dict) and doc.get("id") in ids and isinstance(doc.get("settings"), dict):
            then.update(_flat(json.loads(json.dumps(doc["settings"], default=str))))
            now.update(_flat(json.loads(json.dumps(value_settings(params), sort_keys=True, default=str))))
        else:
            then[SETTINGS_COLUMN], now[SETTINGS_COLUMN] = ", ".join(sorted(ids)), settings_id(params)
    done_types = {_image_type_family(t) for t in done["image_type"].dropna()}
    if done_types:
        then["imageType"] = ", ".join(sorted(done_types))
        now["imageType"] = ", ".join(sorted({_image_type_family(t) for t in (params.get("imageType") or
                                                                             {"Original": {}})}))
    done_classes = set(done["feature_class"].dropna().astype(str))
    wanted = set(params.get("featureClass") or {})
    if done_classes and wanted and (done_classes | wanted) <= set(FEATURE_CLASSES):
        then["featureClass"], now["featureClass"] = ", ".join(sorted(done_classes)), ", ".join(sorted(wanted))
    if segments and not done.empty:
        then["segments"] = ", ".join(sorted(set(done["segment"].dropna().astype(str))))
        now["segments"] = ", ".join(sorted(map(str, segments)))
    return _changes_text(then, now)


_SHOWN_COLUMNS = ("image_type", "feature_class", "segment")    # what _shown_changes reads of a case's part


def _unread_parts(parts: Path) -> list[tuple[Path, str]]:
    """The case parts (``<case>.csv``) of ``parts`` that :func:`_shown_changes` cannot (fully) read, each with why: a part
    without an ``image_type``, ``feature_class`` or ``segment`` column (edited by hand, or not written by lungai).
    (QA radbatch61: such a part crashed a resume with KeyError 'image_type', a traceback naming no file.)"""
    import pandas as pd

    unread = []
    for p in sorted(parts.glob("*.csv")):
        if p.is_file() and not p.name.endswith((".errors.csv", ".settings.csv")):
            try:
                columns = set(pd.read_csv(p, nrows=0).columns)
            except (OSError, ValueError) as err:
                unread.append((p, f"cannot be read: {err}"))
                continue
            missing = [c for c in _SHOWN_COLUMNS if c not in columns]
            if missing:
                unread.append((p, f"has no {', '.join(missing)} column"))
    return unread


def _params_key(params: dict, segments, revision: bool = True, canonical: bool = True) -> str:
    """The resume key of a batch: its parameters (whole numbers as integers:
    :func:`lungai.radiomics.settings.canonical_params`) and segments and the revisions of its values
    (:func:`lungai.radiomics.settings.value_revisions`: pyradiomics' resampling, normalize / Square-type / Wavelet
    images on the whole CT); ``revision=False``: the key an older lungai wrote (without them); ``canonical=False``:
    the parameters as written (``binWidth: 25.0``), as an older lungai hashed them."""
    return _key_of({"params": canonical_params(params) if canonical else params, "segments": segments,
                    **(value_revisions(params) if revision else {})})


def _key_of(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _same_values_keys(params: dict, segments) -> set[str]:
    """The resume keys a lungai of the current values wrote for ``params`` and ``segments`` other than
    :func:`_params_key`: the parameters hashed as written (whole numbers as decimals, ``binWidth: 25.0``, or as
    integers, before :func:`lungai.radiomics.settings.canonical_params`: every
    :func:`lungai.radiomics.settings.written_forms`) and with the revisions that no longer apply
    (:func:`lungai.radiomics.settings.dropped_revisions`)."""
    keys = {_key_of({"params": p, "segments": segments, **value_revisions(params), **extra})
            for p in (params, *written_forms(params)) for extra in ({}, dropped_revisions(params))}
    return keys - {_params_key(params, segments)}


def _same_values(parts: Path, params: dict, segments, recorded: str) -> bool:
    """Whether ``recorded`` (the parts folder's ``params.key``) is the key of these parameters' values under another
    key: :func:`_same_values_keys` of these parameters, or of those the folder's :data:`PARAMS_RECORD` holds when
    they are these written otherwise (``binWidth: 25`` then, ``25.0`` now)."""
    if recorded in _same_values_keys(params, segments):
        return True
    try:
        record = json.loads((parts / PARAMS_RECORD).read_text(encoding="utf-8"))
        then, now = (json.dumps(canonical_params(p), sort_keys=True, default=str)
                     for p in (record["params"], json.loads(json.dumps(params, default=str))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return then == now and record.get("segments") == json.loads(json.dumps(segments, default=str)) \
        and recorded in _same_values_keys(record["params"], segments) | {_params_key(record["params"], segments)}


def _rewrite_part_ids(parts: Path, current: str) -> None:
    """The settings id of every case done in ``parts`` set to ``current`` (the same values under an older id), and
    the record of a part that matched it (rows, size, hash: :func:`_part_mismatch`) brought up to date (a part edited
    since is still told: redone)."""
    for p in parts.iterdir():
        if p.suffix == ".csv" and p.is_file() and not p.name.endswith((".errors.csv", ".settings.csv")):
            try:
                recorded = json.loads(_inputs_file(p).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                recorded = None
            matched = _part_mismatch(p, recorded) is None
            frame = read_part(p)
            if SETTINGS_COLUMN in frame and (frame[SETTINGS_COLUMN].astype(str) != current).any():
                frame[SETTINGS_COLUMN] = current
                frame.to_csv(p, index=False)
                if matched and isinstance(recorded, dict) and any(k in recorded for k in PART_KEYS):
                    recorded.update({PART_ROWS: len(frame), **_part_record(p)})
                    _inputs_file(p).write_text(json.dumps(recorded, sort_keys=True), encoding="utf-8")


def _older_keys(params: dict, segments) -> dict[str, list[str]]:
    """The resume keys an older lungai wrote for ``params`` and ``segments`` whose values differ from the current
    ones, each with why: without the revisions of the values (:func:`lungai.radiomics.settings.value_revisions`),
    without the lung grid revision (lung segments Lung_R, RT LUNG ... an older lungai computed on the CT's grid:
    :data:`lungai.radiomics.settings.LUNG_GRID_REVISION`), or without both."""
    revisions = revision_reasons(value_revisions(params))
    older: dict[str, list[str]] = {}
    for canonical in (False, True):     # the parameters as written (an older lungai's key) and with integers
        if revisions:
            older[_params_key(params, segments, revision=False, canonical=canonical)] = revisions
        if without_lung_grid_revision(params) is not params:
            lung = [LUNG_GRID_REASON]
            older[_params_key(without_lung_grid_revision(params), segments, canonical=canonical)] = lung
            if revisions:
                older[_params_key(without_lung_grid_revision(params), segments, revision=False,
                                  canonical=canonical)] = lung + revisions
    return older


def _lung_spacing_key(params: dict, segments, recorded: str) -> bool:
    """Whether ``recorded`` is the resume key of these parameters given with an ignored lung spacing beside
    pyradiomics' ``resampledPixelSpacing`` (:func:`lungai.radiomics.settings.ignored_lung_spacing_key`)."""
    return ignored_lung_spacing_key(params, lambda p: _params_key(p, segments), recorded)


def _prepare_parts(output: Path, params: dict, segments) -> tuple[Path, str | None]:
    """The resume folder (``<output>.parts``) and a note when the cases done there were dropped to be redone."""
    parts = prepare_output_folder(output.with_name(output.name + ".parts"))   # resumed: no owner check
    stamp, key = parts / "params.key", _params_key(params, segments)
    if not stamp.exists() and any(parts.iterdir()):      # not a batch's resume state: a folder of the user's
        raise InputError(f"{parts} (where radiomics-batch keeps the cases done, to resume) holds files it did not "
                         "write", "use another output name, or move that folder away")
    _remove_unfinished_writes(parts)
    note = None
    recorded = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else key
    if not any(p.suffix == ".csv" and p.is_file() for p in parts.iterdir()):
        recorded = key          # no case done yet (a run stopped before any finished): new settings start afresh
    # the keys an older lungai wrote for these parameters, and why its values differ: never mixed with new values
    older = _older_keys(params, segments)
    if recorded != key and recorded in older:
        done = [p for p in parts.iterdir() if p.suffix == ".csv" and p.is_file() and not p.is_symlink()]
        for p in done:
            p.unlink()
        cases = sum(not p.name.endswith((".errors.csv", ".settings.csv")) for p in done)
        note = (f"{counted(cases, 'case')} done by an older lungai {agree(cases, 'is', 'are')} redone: "
                + "; ".join(older[recorded]))
    elif recorded != key and _lung_spacing_key(params, segments, recorded):
        # made with --lung-spacing (or the file's lung_spacing_mm) beside resampledPixelSpacing, now refused: the spacing
        # was ignored (pyradiomics' grid holds every segment), so the values are these; their settings id is now
        # the one without the spacing (lungai.radiomics.settings.lungai_value_settings)
        current = settings_id(params)
        _rewrite_part_ids(parts, current)
        note = (f"resumed a batch run with a lung spacing beside resampledPixelSpacing (ignored then, refused now: "
                f"the values are the same); its settings id is now {current}")
    elif recorded != key and _same_values(parts, params, segments, recorded):
        # the same values, keyed otherwise by an older lungai (binWidth 25.0 for 25, a revision that no longer
        # applies): resumed, the cases' ids the current one
        current = settings_id(params)
        _rewrite_part_ids(parts, current)
        note = (f"resumed a batch run of the same settings keyed otherwise by an older lungai (whole numbers written "
                f"as decimals, e.g. binWidth 25.0 for 25, LoG sigmas in another order or repeated, or a Square / "
                f"Wavelet image with preCrop or resampledPixelSpacing all 0); its settings id is now {current}")
    elif recorded != key:
        changes = _params_changes(parts, params, segments)
        done = sum(p.suffix == ".csv" and p.is_file() and not p.name.endswith((".errors.csv", ".settings.csv"))
                   for p in parts.iterdir())
        older = "" if (parts / PARAMS_RECORD).is_file() else (
            "; an older lungai wrote that folder without a record of its parameters (params.json)" + (
                f", its cases show: {changes}" if changes else
                ": its cases show no difference in settings, image types, feature classes or segments"))
        side = sidecar_path(output)
        kept = f" (their settings: {side.name})" if older and side.is_file() else ""
        unread = _unread_parts(parts) if older else []
        bad = [str(p) for p, _ in unread[:5]] + ([f"... {len(unread) - 5} more"] if len(unread) > 5 else [])
        raise InputError(f"{parts} holds {counted(done, 'case')} done with other parameters or segments"
                         + (f" ({changes})" if changes and not older else older)
                         + (f"; {agree(len(unread), 'a case file', 'case files')} edited, or not written by "
                            "lungai: " + ", ".join(f"{p} {why}" for p, why in unread[:5])
                            + (f", ... and {len(unread) - 5} more" if len(unread) > 5 else "") if unread else ""),
                         (f"restore {agree(len(unread), 'that case file', 'those case files')} as lungai wrote "
                          f"{agree(len(unread), 'it', 'them')}, or delete {agree(len(unread), 'it', 'them')} "
                          f"({agree(len(unread), 'its case is', 'their cases are')} computed again): {', '.join(bad)}; " if unread else "")
                         + f"to resume them, run with the parameters they were made with{kept}; to compute these "
                         "parameters too, write them into another table (-o OTHER.csv: its own folder of cases); or "
                         "delete that folder to start over (its finished cases are lost)")
    stamp.write_text(key, encoding="utf-8")
    (parts / PARAMS_RECORD).write_text(json.dumps({"params": params, "segments": segments}, sort_keys=True,
                                                  default=str, indent=1), encoding="utf-8")
    return parts, note


# a write a run did not finish: process_case's ".<case>.csv.<pid>.pending" part, write_csv's ".<name>.<pid>.part"
_UNFINISHED = re.compile(r"^\..+\.\d+\.(pending|part)$")


def _remove_unfinished_writes(parts: Path) -> None:
    """Remove the files a killed run left half-written in the parts folder (``.<case>.csv.<pid>.pending``,
    ``.<name>.<pid>.part``): never a case done (a part is renamed to ``<case>.csv`` only once whole).  Called with
    the output folder's lock held and before any case runs, so no run of this batch writes there now; all are
    removed, whatever their process id (a process of that id running now is another program: ids are reused)."""
    for p in parts.iterdir():
        if _UNFINISHED.match(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)


def _drop_ibsi_parts_without_notes(parts: Path, rows: list[dict], params: dict) -> str | None:
    """With an IBSI configuration (``--params ibsi-a`` .. ``ibsi-e``, a file's ``lungai: {ibsi: ...}``), the cases
    done by a lungai that did not say why values are NaN (a part whose ``.settings.csv`` has no ``notes`` column, or
    none that can be read) are dropped, to be redone: one such lungai made more values NaN than they are (pyradiomics'
    2.5D texture of any ROI with one voxel per axial slice; 242 NaN of 347 on LIDC-IDRI-0852_R_1 with ibsi-b, 174
    now), and none recorded notes.  (A note when any was dropped.)"""
    import pandas as pd
    from lungai.radiomics.settings import ibsi_configuration

    if ibsi_configuration(params) is None:
        return None
    dropped = 0
    for row in rows:
        part = parts / f"{safe_name(row['case'])}.csv"
        side = part.with_name(part.stem + ".settings.csv")
        if not part.is_file():
            continue
        try:
            if "notes" in pd.read_csv(side, nrows=0).columns:
                continue
        except (OSError, ValueError):        # none, or not a table (cut short): redone as well
            pass
        for p in (part, side, part.with_name(part.stem + ".errors.csv"), _inputs_file(part)):
            p.unlink(missing_ok=True)
        dropped += 1
    return (f"{counted(dropped, 'case')} done with an IBSI configuration by an older lungai (no notes on NaN values; "
            f"some values NaN that are computed now) {agree(dropped, 'is', 'are')} redone") if dropped else None


def _stored_orientation(image) -> str | None:
    """The order the case's image is stored in ("LPS", "SAR", ...: :func:`lungai.io.read.stored_orientation`, from
    one file's header); None when it cannot be read now (a moved file, an unmounted drive)."""
    from lungai.io.read import stored_orientation

    try:
        return stored_orientation(image)
    except Exception:  # noqa: BLE001 - unreadable now: not known (the part is kept; the check runs again)
        return None


def _drop_parts_of_other_orientations(parts: Path, rows: list[dict]) -> tuple[str | None, str | None]:
    """Cases done by a lungai that computed features on the array as stored (parts whose ``.settings.csv`` has no
    ``orientation`` column) whose image is stored in another order than LPS are dropped, to be redone in LPS axial
    order (the values differ); those of LPS-stored images are the same values: kept, and their ``.settings.csv``
    given the ``orientation`` column (checked once).  A case whose image cannot be read now (moved, a drive not
    mounted) is kept unchecked - never a finished result dropped on a guess - and checked on the next run.  (A note
    when any was dropped, a warning when any could not be checked.)"""
    import pandas as pd
    from lungai.radiomics.prepare import COMPUTED_ORIENTATION

    dropped, unchecked = 0, []
    for row in rows:
        part = parts / f"{safe_name(row['case'])}.csv"
        side = part.with_name(part.stem + ".settings.csv")
        if not part.is_file() or (side.is_file() and "orientation" in pd.read_csv(side, nrows=0).columns):
            continue
        stored = _stored_orientation(row["image"])
        if stored is None:
            unchecked.append(row["case"])
        elif stored != "LPS":
            for p in (part, side, part.with_name(part.stem + ".errors.csv"), _inputs_file(part)):
                p.unlink(missing_ok=True)
            dropped += 1
        elif side.is_file():            # recorded: the next resume does not read the image again
            settings = read_part(side)
            settings["orientation"] = COMPUTED_ORIENTATION
            write_csv(settings, side)
    note = (f"{counted(dropped, 'case')} stored in another order than LPS and done by an older lungai (features of "
            f"the array as stored: values differ) {agree(dropped, 'is', 'are')} redone in LPS axial order"
            ) if dropped else None
    warning = (f"{counted(len(unchecked), 'case')} done by an older lungai could not be checked for the order "
               "their image is "
               f"stored in (not readable now: {', '.join(unchecked[:5])}{' ...' if len(unchecked) > 5 else ''}): "
               "kept as they are; if an image is stored in another order than LPS its values differ - make it "
               "readable and run again (it is then redone)") if unchecked else None
    return note, warning


def _row_changes(row: dict, recorded) -> list[str]:
    """The columns of ``row`` (paths, label, phantom) that differ from those ``recorded`` with its part, compared
    without reading the files: label and phantom as written; a path column by :func:`_same_place` against the
    recorded full path (or, recorded by an older lungai without full paths, by its file name).  A cohort moved as a
    whole (file and patient folder names kept) is not a change."""
    if not isinstance(recorded, dict):
        return []
    paths = recorded.get("paths")
    now_paths = row_paths(row)
    changed = []
    for col in CASE_COLUMNS:
        now, then = row.get(col) or "", recorded.get(col)
        if col not in PATH_COLUMNS:
            if (then or "") != now:
                changed.append(col)
        elif isinstance(paths, dict):
            if bool(paths.get(col)) != bool(now) or (now and not _same_place(paths[col], now_paths[col])):
                changed.append(col)
        elif bool(now) != bool(then) or (now and isinstance(then, dict)
                                         and then.get("file", then.get("folder")) != Path(now.split("#")[0]).name):
            changed.append(col)
    return changed


def _drop_parts_of_changed_inputs(parts: Path, rows: list[dict]) -> tuple[list[str], str | None]:
    """Cases done whose inputs changed since (:func:`case_inputs` differs from the ``<case>.inputs.json`` recorded
    with the part, or none is recorded: a part of an older lungai, as ``lungai cohort``) are dropped, to be redone.
    A part whose rows differ in number from those recorded with it (rows deleted by hand, a truncated file:
    :func:`_part_mismatch`) is dropped and redone too.
    A case found unchanged at another path (the cohort moved, a linked folder) gets its new paths recorded.  A case
    whose files cannot be read now (moved, a drive not mounted) is compared by its row (:func:`_row_changes`): one
    now naming other files (another file name, or the same name in another folder) or another label / phantom is
    dropped too - it cannot be computed now, so it fails (listed in
    ``_errors.csv``) rather than keep results of what the row named before; one whose row is unchanged is kept
    unchecked (a finished result is never dropped on a guess).  (One note per case dropped, and a warning naming
    the cases kept unchecked.)"""
    notes, unchecked = [], []
    for row in rows:
        part = parts / f"{safe_name(row['case'])}.csv"
        if not part.is_file():
            continue
        try:
            recorded = json.loads(_inputs_file(part).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        edited = _part_mismatch(part, recorded)
        if edited:
            for suffix in (".csv", ".settings.csv", ".errors.csv", INPUTS):
                part.with_name(part.stem + suffix).unlink(missing_ok=True)
            notes.append(f"{row['case']}: {edited}: redone")
            continue
        try:
            current = case_inputs(row)
        except OSError:        # unreadable now: compared by its row's paths and labels
            changed = _row_changes(row, recorded)
            if not changed:
                unchecked.append(row["case"])
                continue
            for suffix in (".csv", ".settings.csv", ".errors.csv", INPUTS):
                part.with_name(part.stem + suffix).unlink(missing_ok=True)
            notes.append(f"{row['case']}: its row changed since the last run ({', '.join(changed)}) and its files "
                         "cannot be read now: its old results are dropped (the case is tried again)")
            continue
        paths = recorded.get("paths") if isinstance(recorded, dict) else None
        kept = {k: v for k, v in recorded.items() if k in PART_KEYS} if isinstance(recorded, dict) else {}
        if isinstance(recorded, dict):       # a moved copy is the same input; the part's rows, size, hash are no input
            recorded = {k: v for k, v in recorded.items() if k != "paths" and k not in PART_KEYS}
        if recorded == current:
            if paths != row_paths(row):      # found elsewhere (moved, another link): where it is now is recorded,
                                             # what a later run compares
                with contextlib.suppress(OSError):     # when the files are offline
                    _inputs_file(part).write_text(json.dumps({**current, "paths": row_paths(row), **kept},
                                                             sort_keys=True), encoding="utf-8")
            continue
        if not isinstance(recorded, dict):
            change = "its part records no inputs (written by an older lungai)"
        else:
            change = ", ".join(c for c in sorted(set(recorded) | set(current)) if recorded.get(c) != current.get(c))
        for suffix in (".csv", ".settings.csv", ".errors.csv", INPUTS):
            part.with_name(part.stem + suffix).unlink(missing_ok=True)
        notes.append(f"{row['case']}: inputs changed since the last run ({change}): redone")
    warning = (f"{counted(len(unchecked), 'case')} done before could not be checked for changed inputs ("
               f"{agree(len(unchecked), 'its', 'their')} files are not readable now: {', '.join(unchecked[:5])}"
               f"{' ...' if len(unchecked) > 5 else ''}): {agree(len(unchecked), 'its', 'their')} results are "
               "kept as they are - make the files readable and run again to check them") if unchecked else None
    return notes, warning


def combine(rows: list[dict], parts: Path, failed: list, wide: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(features long or wide, errors, per-segment settings) of every manifest case done so far."""
    import pandas as pd

    frames, settings = [], []
    errors = [pd.DataFrame(failed, columns=["case", "error"]).assign(segment="(case)")]
    for row in rows:
        part = parts / f"{safe_name(row['case'])}.csv"
        if part.exists():
            frames.append(read_part(part))
            for suffix, into in ((".errors.csv", errors), (".settings.csv", settings)):
                extra = part.with_name(part.stem + suffix)
                if extra.exists():
                    into.append(read_part(extra))
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LONG_COLUMNS)
    settings = pd.concat(settings, ignore_index=True) if settings else pd.DataFrame(columns=SETTINGS_COLUMNS)
    return (to_wide(long) if wide else long), pd.concat(errors, ignore_index=True)[ERROR_COLUMNS], settings


def run_batch(manifest, output, params: dict, workers: int = 2, scheduler: str | None = None, segments=None,
              wide: bool = False) -> BatchSummary:
    """Extract every manifest case not done yet; write the combined CSV; return a summary."""
    start = time.perf_counter()
    if scheduler:
        check_scheduler_address(scheduler)       # a bad --scheduler before any work
    check_main_guard(workers, scheduler)         # a script without its __main__ guard: before any work
    rows = read_manifest(manifest)
    output = check_csv_name(output)
    if output.exists() and output.resolve() == Path(manifest).resolve():
        raise InputError(f"refusing to overwrite the manifest {output}", "choose another output name")
    # one run per folder for the whole run (the folder's lock .lungai.lock, as the commands that claim theirs): two
    # batches there at once would mix the parts and the tables; a killed run's lock is taken over (resumed)
    with locked_output_folder(output.absolute().parent, OWNER):     # named in full when refused (not ".")
        return _run_batch_locked(manifest, output, params, rows, workers, scheduler, segments, wide, start)


def _run_batch_locked(manifest, output: Path, params: dict, rows: list[dict], workers: int, scheduler, segments,
                      wide: bool, start: float) -> BatchSummary:
    """:func:`run_batch` once this process holds the lock of the output's folder."""
    # before any work: nothing is computed in vain, and a user's file of the table's or a sidecar's name is never
    # replaced (an earlier batch's are: recorded in .lungai-radiomics-batch beside them)
    outputs = [output, *batch_sidecars(output)]
    _adopt_legacy_outputs(output, outputs)
    prepare_output_file(output, inputs=[manifest], owner=OWNER, sidecars=outputs[1:])
    forget_stamps(output.parent, OWNER, [p.name for p in outputs])    # a killed run still resumes (this table's
                                                                        # files only: other tables keep their stamps)
    # lung segments named Lung_R, RT LUNG ... (on the CT's grid in an older lungai): their revision in the id and key
    coded: list = []       # a SEG's lungs by their terminology code: on the lung grid as their named ones
    params = with_lung_grid_revision(params, _segment_names(rows, segments, coded), coded)
    made_parts = not output.with_name(output.name + ".parts").exists()     # this run's: removed if refused below
    parts, redone = _prepare_parts(output, params, segments)
    unnoted = _drop_ibsi_parts_without_notes(parts, rows, params)
    dropped, unchecked = _drop_parts_of_other_orientations(parts, rows)
    redone = "; ".join(n for n in (redone, unnoted, dropped) if n) or None
    changed, unreadable = _drop_parts_of_changed_inputs(parts, rows)
    unchecked = "; ".join(n for n in (unchecked, unreadable) if n) or None
    summary = BatchSummary(output, redone=redone, unchecked=unchecked, changed=changed, wide=wide)
    # the cases not done whose files are missing: all said now, before any work, not each as its turn came after
    # the others (QA cohortfollow70); they are not run, recorded as failed, and the others go on (as `lungai cohort`
    # records a failed patient and goes on) - a re-run once the paths are corrected computes only them
    is_done = lambda row: (parts / f"{safe_name(row['case'])}.csv").exists()     # noqa: E731
    absent = _rows_missing_files([row for row in rows if not is_done(row)], manifest)
    if absent:
        _say_missing_files(absent, len(rows), manifest)
    todo = [row for row in rows if row["case"] not in absent]
    # the manifest: each case's fixes worded as its cells (process_case)
    try:
        run_tasks("radiomics-batch", process_case, todo, [row["case"] for row in todo],
                  (params, segments, str(parts), str(manifest)), is_done, summary, workers, scheduler)
    except InputError:
        # refused before any case (an unreachable --scheduler): the resume folder this run made is removed again,
        # never one of an earlier run or the user's (QA cohortfollow70: out.csv.parts/params.* were left behind)
        if made_parts and {p.name for p in parts.iterdir()} <= {"params.key", PARAMS_RECORD}:
            for name in ("params.key", PARAMS_RECORD):
                (parts / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                parts.rmdir()
        raise
    if absent:
        summary.failed.extend(absent.items())
        order = {row["case"]: i for i, row in enumerate(rows)}
        summary.failed.sort(key=lambda entry: order.get(entry[0], len(order)))
    table, errors, settings = combine(rows, parts, summary.failed, wide)
    from lungai.radiomics.extract import edge_notes, nan_note_lines

    # as `lungai radiomics` warns of a segment cut by the scan and says why values are NaN; each naming its case, also
    # in a one-case batch (before, "warning: segment 'label_1' touches ...": which case's, not said)
    summary.cut = edge_notes(settings, cases=True)
    summary.nan_notes = nan_note_lines(settings, cases=True)
    summary.spacing = mixed_spacing_note(settings, params)
    summary.unverified = unverified_ibsi_note(params, output)    # an IBSI preset's ivh_auc: no IBSI-1 reference value
    with recorded_output_files(outputs, OWNER):         # each recorded once written, a failure included
        _write_results(output, manifest, params, table, errors, settings, rows, parts, summary)
    summary.seconds = time.perf_counter() - start
    return summary


OWNER = "radiomics-batch"


def _rows_missing_files(rows: list[dict], manifest) -> dict[str, str]:
    """The rows (of cases not done) whose image or mask file does not exist: case -> the error its case fails with
    (its manifest line, column and cell, :func:`_check_row_files`)."""
    from lungai.dicom.masks import manifest_fixes

    absent = {}
    for row in rows:
        try:
            with manifest_fixes(manifest, row.get(ROW_LINE), row.get(ROW_CELLS)):     # its line, as process_case
                _check_row_files(row, manifest)
        except InputError as exc:
            absent[row["case"]] = str(exc)
    return absent


def _say_missing_files(absent: dict[str, str], total: int, manifest) -> None:
    """Warn, before any work, of every case whose files are missing (:func:`_rows_missing_files`), with the fix."""
    import sys

    n = len(absent)
    problems = [split_error(error)[0] for error in absent.values()]
    lines = [f"radiomics-batch: warning: {counted_of(n, total, 'case')} of the manifest "
             f"{agree(n, 'names a file', 'name files')} that {agree(n, 'does', 'do')} not exist: "
             f"{agree(n, 'it is', 'they are')} not computed (recorded as failed)"
             + (", the other cases go on" if n < total else "")]
    lines += [f"  {case}: {problem}" for case, problem in zip(list(absent)[:20], problems[:20])]
    lines += [f"  ... and {n - 20} more"] if n > 20 else []
    lines.append(f"  how to fix: correct the path{'s' if n > 1 else ''} in {Path(manifest).name} (and check that the "
                 "drive is mounted), then run the same command again: the cases done are skipped, only the failed "
                 "ones are computed")
    print("\n".join(lines), file=sys.stderr, flush=True)


def batch_sidecars(output: Path) -> list[Path]:
    """The files radiomics-batch writes beside its table: ``_settings.csv``, ``_errors.csv``, ``.settings.json``."""
    return [output.with_name(output.stem + n) for n in ("_settings.csv", "_errors.csv")] + [sidecar_path(output)]


def _adopt_legacy_outputs(output: Path, outputs) -> None:
    """A batch of an older lungai recorded nothing beside its table; its ``<output>.parts/params.key`` (written
    before the table) shows that the table and sidecars there are its own: they are recorded, so that a re-run
    replaces them.  Per batch: the marker is shared by all batches of the folder, so another batch recorded there
    does not stop this one's adoption; only this table's own entry does (it was recorded: nothing to adopt)."""
    from lungai.io.outputs import _recorded

    parts = output.with_name(output.name + ".parts")
    if (parts / "params.key").is_file() and output.name not in _recorded(output.parent, OWNER):
        for p in outputs:
            if p.is_file() and not p.is_symlink():
                record_output_file(p, OWNER)


def _write_results(output, manifest, params, table, errors, settings, rows, parts, summary) -> None:
    summary.written = not table.empty
    if not table.empty:
        write_csv(table, output, protect=[manifest])
        write_sidecar(output, params)  # the settings in full; the CSV's radiomics_settings column holds their id
        write_csv(settings, output.with_name(output.stem + "_settings.csv"), protect=[manifest])
    else:       # no case has results now (all failed, old ones dropped): an earlier batch's table would contradict
        stale = [p for p in (output, output.with_name(output.stem + "_settings.csv"), sidecar_path(output))
                 if p.is_file()]     # _errors.csv (below); a user's file of these names was refused up front
        for p in stale:
            remove_output_file(p, OWNER)
        if stale:
            summary.changed.append(f"no case has results now: the earlier {', '.join(p.name for p in stale)} "
                                   "(results of cases no longer done) removed - see the failures below")
    err_path = output.with_name(output.stem + "_errors.csv")
    extracted = {row["case"] for row in rows if (parts / f"{safe_name(row['case'])}.csv").exists()}
    segment_errors = [(r.case, r.segment, str(r.error)) for r in errors.itertuples(index=False)
                      if r.segment != "(case)"]
    absent_in = {}
    for case, segment, err in segment_errors:
        if err.startswith(ABSENT):
            absent_in.setdefault(segment, set()).add(case)
    # a label absent from every extracted case is a wrong label, not a patient without that structure
    wrong = {segment for segment, cases in absent_in.items() if cases >= extracted}
    summary.absent = [e for e in segment_errors if e[2].startswith(ABSENT) and e[1] not in wrong]
    summary.segment_errors = [e for e in segment_errors if e not in summary.absent]
    if not errors.empty:
        write_csv(errors, err_path)
        summary.errors_csv = err_path
    elif err_path.exists():                             # an earlier batch's (a user's is refused up front)
        remove_output_file(err_path, OWNER)             # and its marker entry: a later file of that name is yours
