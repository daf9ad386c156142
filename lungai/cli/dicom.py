"""``lungai dicom-scan`` (what a DICOM export holds, per patient) and ``lungai dicom-export`` (results as DICOM)."""

from __future__ import annotations


def register(sub) -> None:
    from lungai.cli import ONE_LUNG_MASK, StoreOnce

    s = sub.add_parser("dicom-scan", help="list the CT series, RTSTRUCT, RTDOSE and SEG files of a DICOM export",
                       description="Groups the files under FOLDER by their UIDs (CT series, frame of reference), not "
                                   "by folder names, and says what each patient has or lacks; with --structures also "
                                   "each RTSTRUCT's structure names and roles.")
    s.add_argument("folder", help="folder holding the DICOM files (any sub-folder layout)")
    s.add_argument("--structures", action="store_true", help="also list each RTSTRUCT's structures and their roles")
    s.add_argument("--structure-map", default=None, metavar="FILE", help="YAML/JSON 'structure name: role' overrides")
    s.add_argument("--json", default=None, metavar="FILE", help="also write the listing as JSON")
    s.set_defaults(func=run_scan)

    e = sub.add_parser("dicom-export", help="write results as DICOM SEG, RTSTRUCT, Parametric Map and SR",
                       description="For a CT given as a DICOM series: tumour and lungs as one DICOM SEG "
                                   "(results.seg.dcm) and an RTSTRUCT (rtstruct.dcm; GTVp, Lung_R, Lung_L) for the "
                                   "planning system, the uncertainty map as a Parametric Map (uncertainty.pm.dcm) "
                                   "and the measurements (volumes, confidence, radiomic features, dose metrics, RP "
                                   "risk) as a DICOM SR TID 1500 (measurements.sr.dcm), all referencing the CT's UIDs.")
    e.add_argument("--ct", required=True, help="the CT's DICOM series folder (a NIfTI CT has no UIDs to reference)")
    e.add_argument("--series", default=None, help="SeriesInstanceUID when the folder holds several series")
    e.add_argument("--results", default=None, metavar="FOLDER",
                   help="take every result found here under its usual name ("
                        + ", ".join(n for names in RESULT_FILES.values() for n in names)
                        + "), as `lungai demo` / `lungai segment` write them or a `lungai cohort` patient folder "
                        "(OUT/patients/P) holds them (its features.csv: the radiomics and dose metrics of the SR); "
                        "the options below override single files (with --tumour the "
                        "folder's result.json and uncertainty.nii.gz, which describe lungai's tumour, are left out "
                        "unless given as --result / --uncertainty; without a tumour its result.json is left out)")
    e.add_argument("--tumour", default=None, help="tumour mask on the CT grid (one label; FILE#N: label N of a label "
                                                  "map, FILE#N,M labels joined: exported as GTV_union; a DICOM SEG "
                                                  "gives its tumour segments, FILE#LABEL one segment: each GTV "
                                                  "segment is exported under its own name)")
    e.add_argument("--lungs", default=None, action=StoreOnce, once_fix=ONE_LUNG_MASK, help="lung label map (1 = right, 2 = left, no other label; FILE#R,L: "
                                                 "labels R and L of another map), or a DICOM SEG (its right and "
                                                 "left lung segments); lungs lungai made (`lungai lungs`' "
                                                 "output, a `lungai demo` folder's, unchanged) are exported as "
                                                 "SlicerLungAI's (AUTOMATIC), any other as the user's (MANUAL)")
    e.add_argument("--uncertainty", default=None, help="uncertainty map (lungai segment's uncertainty.nii.gz)")
    e.add_argument("--result", default=None, help="lungai segment's result.json (confidence, review flag); the "
                                                  "tumour is then labelled as made by SlicerLungAI (AUTOMATIC); "
                                                  "without it, lungai's unchanged tumour file (segment's, the "
                                                  "demo's, a cohort's automatic tumour.nii.gz) is AUTOMATIC "
                                                  "without a confidence, any other the user's (MANUAL); its "
                                                  "tumour_volume_ml must be the tumour's (5 %%): an edited mask "
                                                  "is exported without --result")
    e.add_argument("--radiomics", default=None, help="lungai radiomics CSV (long, or one row of rad_<segment>_<image_type>_<class>_<feature> columns: "
                   "lungai radiomics --wide, a cohort patient's features.csv)")
    e.add_argument("--dose-features", default=None, help="lungai dose-features CSV (its row of this CT's case)")
    e.add_argument("--rp", default=None, help="lungai rp predict CSV (its row of this CT's case, several rows "
                   "allowed: risk, risk_low, risk_high, threshold, high_risk 1/0 or yes/no, true/false)")
    e.add_argument("--case", default=None, metavar="NAME",
                   help="the case name of this CT in the --radiomics / --dose-features / --rp CSVs when it is not "
                        "the CT's PatientID (a --case given to those commands); a CSV of another case is refused")
    e.add_argument("-o", "--output", required=True, help="output folder (not the CT's folder)")
    e.set_defaults(func=run_export)


def run_scan(args) -> int:
    import json

    from lungai.dicom.discover import UNREADABLE, check_root, files_under, scan, unread_images_note
    from lungai.dicom.roles import describe_roles, structure_roles
    from lungai.dicom.rtstruct import list_structures
    from lungai.progress import task
    from pathlib import Path

    from lungai.paths import check_input_paths

    # with the arguments, before the scan (minutes for a cohort's export): a mistyped --structure-map (QA inputs70:
    # refused after the scan and its listing), and the --json file - checked as every lungai output file is: never an
    # input nor a file lungai dicom-scan did not write (QA inputs70: `--json EXPORT/RTSTRUCT/rs.dcm` wrote the listing
    # over the patient's RTSTRUCT it had just scanned, exit 0; a user's label map named as --json was lost the same way)
    check_input_paths([("--structure-map", args.structure_map)])
    if args.json:
        from lungai.io.outputs import prepare_output_file

        prepare_output_file(args.json, inputs=[args.folder, args.structure_map], owner=SCAN_OWNER)
    left_out: dict = {}
    # listed before the bar (none drawn for a path that is no folder), once: its steps and the scan's files
    files = files_under(check_root(args.folder), left_out)
    with task("dicom-scan", max(len(files), 1)) as bar:
        studies = scan(args.folder, progress=bar, files=files, left_out=left_out)
    # NIfTI / NRRD / MHA files there (a converted patient beside the export): named, never passed over without a word
    images = unread_images_note(files, Path(args.folder), "dicom-scan")
    from lungai.dicom.cohort import (ambiguous_rtdoses, ambiguous_rtstructs, ct_cases, ct_series_told,
                                     distinct_ct_labels, several_ct_series_warning)

    # a patient's CT series named as lungai cohort names them: its rows P_1, P_2 and what tells each apart (the
    # folder and the end of the UID of two alike: QA scanfollow67, LUNG1-003 exported twice was two blocks "#1")
    cases, labels = ct_cases(studies), distinct_ct_labels(studies, Path(args.folder))
    several: dict = {}
    doc = []
    for st in studies:
        if len(st.rtstruct) > 1 or len(st.rtdose) > 1:
            # what lungai cohort does with them (a copy left out, the plan dose, why ambiguous), not a question
            from lungai.dicom.cohort import scan_choice_notes

            st.notes = scan_choice_notes(st, Path(args.folder))
        print(st.summary())
        case = cases[st.ct.series_uid] if st.ct else None
        if st.ct and case != st.patient_id:     # one of the patient's CT series: told as cohort's warning tells it
            several.setdefault(st.patient_id, []).append(
                (case, ct_series_told(labels[st.ct.series_uid], bool(st.rtstruct), bool(st.rtdose),
                                      ambiguous_rtstructs(st, Path(args.folder)),
                                      ambiguous_rtdoses(st, Path(args.folder)))))
            print(f"  CT series {st.ct.series_uid}: {labels[st.ct.series_uid]} (lungai cohort row {case})")
        elif st.ct:   # what tells a study's CT series apart, and the UID that --series takes
            print(f"  CT series {st.ct.series_uid}" + (f": {st.ct.description}" if st.ct.description else ""))
        entry = {"patient_id": st.patient_id, "study_uid": st.study_uid,
                 "frame_of_reference_uid": st.frame_of_reference_uid,
                 "ct": {"series_uid": st.ct.series_uid, "folder": str(st.ct.folder), "slices": st.ct.n_slices,
                        "description": st.ct.description, "label": labels[st.ct.series_uid], "cohort_case": case}
                 if st.ct else None,
                 "rtstruct": [str(p) for p in st.rtstruct], "rtdose": [str(p) for p in st.rtdose],
                 "seg": [str(p) for p in st.seg], "missing": st.missing,
                 # an RTSTRUCT / RTDOSE there but cut short: named with its files, not "missing" (re-export it)
                 "truncated": {kind: [str(p) for p in files] for kind, files in st.truncated.items()},
                 "notes": st.notes,
                 "unreadable": [str(p) for p in st.unreadable]}
        for note in st.notes:       # a file that could not be read (an RTSTRUCT missed?) is a warning
            print(f"  {'warning' if UNREADABLE in note else 'note'}: {note}")
        if args.structures:
            # each RTSTRUCT's structure names, and their roles as the text lists them (--structure-map applied; null:
            # no role) - QA dicomfollow71: the JSON had the names only
            entry["structures"], entry["structure_roles"] = {}, {}
            for rs in st.rtstruct:
                names = list_structures(rs)
                entry["structures"][str(rs)] = names
                entry["structure_roles"][str(rs)] = {str(n): r for n, r in
                                                     structure_roles(names, args.structure_map).items()}
                print(f"  {rs.name}: {describe_roles(names, args.structure_map)}")
        doc.append(entry)
    if not studies:        # an error (exit 2), so that a script notices a wrong folder
        from lungai.errors import InputError

        raise InputError(f"no DICOM CT, RTSTRUCT, RTDOSE or SEG files under {args.folder}",
                         "point to the folder of the DICOM export (the one holding the CT slices, RTSTRUCT and "
                         "RTDOSE files, or a folder above them)" + (f"; {images}" if images else ""))
    from lungai.errors import say_notes

    # a patient with several CT series: lungai cohort's warning, word for word, with the fix
    say_notes([several_ct_series_warning(pid, rows) for pid, rows in several.items()] + ([images] if images else []))
    if args.json:
        _write_listing(Path(args.json), json.dumps(doc, indent=2) + "\n")
    return 0


# the marker name of dicom-scan's --json files (lungai.io.outputs.record_output_file): a re-run may replace its own
SCAN_OWNER = "dicom-scan"


def _write_listing(path, text: str) -> None:
    """Write dicom-scan's --json ``text`` to ``path`` whole or not at all (a temporary file renamed; an error said
    with the fix, :func:`lungai.io.outputs.writing`) and record it as dicom-scan's, so that a re-run replaces it and
    never a file of the user's (:func:`lungai.io.outputs.prepare_output_file`)."""
    import os

    from lungai.io.outputs import record_output_file, writing

    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()
    record_output_file(path, SCAN_OWNER)


# the names under which `dicom-export --results FOLDER` takes each result (one place): lungai segment's / demo's
# (tumor.nii.gz ...) and a lungai cohort patient folder's (lungai.dicom.cohort.TUMOUR tumour.nii.gz, LUNGS, RESULT;
# its features.csv is a wide table of all features, taken by cohort_features / cohort_tables, and its
# dose_lungs.nii.gz is a 'Lungs' / 'Lungs-GTV' structure, not a right / left lung label map: not taken)
RESULT_FILES = {"tumour": ("tumor.nii.gz", "tumour.nii.gz"), "lungs": ("lungs.nii.gz",),
                "uncertainty": ("uncertainty.nii.gz",), "result": ("result.json",),
                "radiomics": ("radiomics_long.csv",), "dose": ("dose.csv",), "rp": ("rp_prediction.csv",)}


def _found(folder, name):
    from pathlib import Path

    if folder is None:
        return None
    p = Path(folder) / name
    return p if p.is_file() else None


def _json_or_none(path):
    """A result.json's content, or None when it is no readable JSON object (the export's own reading says why)."""
    import json

    try:
        doc = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _result_file(folder, what: str):
    """The file of result ``what`` in a ``--results`` folder (:data:`RESULT_FILES`), or None; a folder holding it
    under two names (tumor.nii.gz and tumour.nii.gz) is refused: which one is the tumour?"""
    from lungai.errors import InputError

    found = [p for p in (_found(folder, n) for n in RESULT_FILES[what]) if p]
    if len(found) > 1:
        raise InputError(f"{folder} holds {' and '.join(p.name for p in found)}: which one is the {what}?",
                         f"give the {what} with --{what} FILE (it overrides the folder's)")
    return found[0] if found else None


def other_radiomics_tables(folder) -> list:
    """The lungai radiomics tables (long format: :data:`lungai.radiomics.LONG_COLUMNS`) in a ``--results`` folder under
    another name than :data:`RESULT_FILES`' ``radiomics_long.csv`` (``lungai radiomics -o out/features.csv``): not
    taken - which run's table is the one to export is not guessed - but named, with the option that exports one.  QA
    on LUNG1-003: segment, radiomics into the same folder, then dicom-export --results wrote an SR of the volumes
    alone without a word."""
    from pathlib import Path

    from lungai.radiomics.extract import LONG_COLUMNS

    found = []
    for path in sorted(Path(folder).glob("*.csv")) if folder is not None else []:
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as fh:
                header = [c.strip().strip('"') for c in fh.readline().rstrip("\r\n").split(",")]
        except OSError:
            continue
        if set(LONG_COLUMNS) <= set(header):
            found.append(path)
    return found


def radiomics_settings_beside(radiomics_csv):
    """The radiomics settings (grid of each segment) written beside a radiomics CSV - ``<name>_settings.csv`` of
    ``lungai radiomics``, ``radiomics_settings.csv`` only beside the demo's ``radiomics_long.csv`` (any other CSV's
    folder may hold another run's) - or None.  Only its rows of the radiomics CSV's case are used
    (:func:`lungai.dicom.export.radiomics_grid_comment`)."""
    from pathlib import Path

    import pandas as pd

    path = Path(radiomics_csv)
    candidates = [path.with_name(path.stem + "_settings.csv")]
    if path.name == "radiomics_long.csv":        # the demo's pair (lungai.demo.pipeline)
        candidates.append(path.with_name("radiomics_settings.csv"))
    for other in candidates:
        if other.is_file():
            try:
                return pd.read_csv(other, dtype=str, keep_default_na=False)
            except (OSError, ValueError):
                return None
    return None


# what `lungai dicom-export` writes into -o (marker .lungai-dicom-export): a user's file of one of these names is
# never replaced, other files are left alone
OWNER = "dicom-export"
DICOM_EXPORT_OUTPUTS = ("results.seg.dcm", "rtstruct.dcm", "uncertainty.pm.dcm", "measurements.sr.dcm")
# what the bar says between "CT read" and "writing DICOM SEG" while the results are read and checked (QA export67:
# a lungai cohort patient of LUNG1-003 - its features.csv, GTVs and lungs - stood 2.4 s, 6.3 s on a loaded machine,
# on "CT read")
READING = "reading the {what}"
# dicom-export's first words on its bar: the checks of the CT series before it is read (its headers: one_series_scan)
CHECKING_CT = "checking the CT series"
CHECKING = "checking the results"     # lungai.dicom.export.RESULTS_CHECKING


# dicom-export's CT must be a DICOM series (its UIDs are referenced): the fix of a CT not found says so
DICOM_CT_FIX = ("point --ct to the folder that holds the CT's DICOM slices (.dcm); dicom-export needs the CT's DICOM "
                "UIDs (study, series, slices), which a NIfTI / NRRD / MHA CT does not have")


def _read_dicom_ct(path, series_uid):
    """The CT of ``--ct`` (a DICOM series); a folder without one is refused with the fix for dicom-export (not
    :func:`lungai.io.read_ct`'s "or a NIfTI / NRRD / MHA file": this command refuses those)."""
    from lungai.errors import InputError
    from lungai.io import read_ct

    try:
        return read_ct(path, series_uid=series_uid)
    except InputError as exc:
        if exc.problem.startswith("no DICOM series found"):
            raise InputError(exc.problem, DICOM_CT_FIX) from None
        raise


def _lung_notes(lungs, ct, spec=None, parts=None) -> list[str]:
    """The plausibility warnings of the exported lungs (:mod:`lungai.lungs.check`): one lung only, too small, a
    segment that is not a lung (labels of another map taken as the lungs).  ``spec``: the --lungs given, whose
    ``FILE#R,L`` labels the hint names (QA on LUNG1-003: ``--lungs labels.nii.gz#2,3`` was asked "are labels 1 and 2
    of --lungs really the right and the left lung?", labels the user had not chosen).  ``parts``: the export's parts
    (:func:`lungai.dicom.export.export_parts`) when made already: the lungs' are taken from them, not split again."""
    from pathlib import Path

    from lungai.dicom.export import lung_parts
    from lungai.dicom.masks import split_selector
    from lungai.lungs.check import lung_map_notes, lung_segment_notes

    chosen = [p.strip() for p in (split_selector(spec)[1] or "").split(",")] if spec is not None else []
    if len(chosen) == 2 and all(chosen):
        what = ("labels " if all(p.isdigit() for p in chosen) else "") + f"{chosen[0]} and {chosen[1]}"
        which = f"are {what} of --lungs ({Path(split_selector(spec)[0]).name}#{','.join(chosen)})"
    else:
        which = "are labels 1 and 2 of --lungs"

    mine = [p for p in parts if p[1] in ("lung_right", "lung_left", "lungs")] if parts is not None else \
        lung_parts(lungs)
    segments = {name: mask for _, _, name, _, mask in mine}    # right_lung / left_lung, or lungs
    if "lungs" in segments:     # a binary mask of both lungs (segment "Lungs"): its volume is checked with its HU
        return lung_segment_notes(segments, ct, hint="is --lungs really a mask of the lungs (not of the body or "
                                                     "another structure)? Give the lung mask, e.g. `lungai lungs`'s")
    return lung_map_notes(lungs) + lung_segment_notes(
        segments, ct, hint=f"{which} really the right and the left lung? Choose the lungs' labels (of another label "
                           "map) with --lungs FILE#R,L")


def _same_id(a, b) -> bool:
    return str(a).strip().casefold() == str(b).strip().casefold()


def _of_this_ct(text: str, patient: str, case=None) -> bool:
    """Whether a results CSV's case ``text`` is this CT's (:func:`check_table_case`'s rule)."""
    return _same_id(text, patient) or text.casefold().startswith(patient.casefold() + "_") or \
        (case is not None and _same_id(text, case))


def this_cts_row(df, path, what: str, patient_id, case=None):
    """The one row of a results CSV (``--rp``, ``--dose-features``) that :func:`check_table_case` takes for this CT:
    a one-row CSV as it is; of several rows (``lungai rp predict`` of a cohort writes every patient's risk in one
    CSV), the row whose ``case`` is ``case`` (``--case``), else the one of this CT's patient (its PatientID, or the
    PatientID followed by ``_``).  None of them, several (``lungai cohort``'s P_1 and P_2), or no ``case`` column (or
    nothing to compare it with) is refused, naming the cases and the fix - before, any CSV of several rows was
    refused with "give the one-patient CSV of this CT", which no lungai command writes for a cohort (QA rpcsv63)."""
    import pandas as pd

    from lungai.errors import InputError

    n, patient = len(df), str(patient_id or "").strip()
    if n == 1:
        return df
    if "case" not in df.columns or not (patient or case):
        why = "and no case column" if "case" not in df.columns else "and the CT has no PatientID"
        raise InputError(f"the {what} {path} has {n} rows {why} to tell which is this CT's",
                         "give the one-patient CSV of this CT" + (", or pass --case NAME: the case of this CT's row"
                                                                  if "case" in df.columns else ""))
    texts = [str(v).strip() if not (v is None or (isinstance(v, float) and pd.isna(v))) else "" for v in df["case"]]
    rows = [i for i, t in enumerate(texts) if case is not None and t and _same_id(t, case)]
    rows = rows or [i for i, t in enumerate(texts) if t and patient and _of_this_ct(t, patient)]
    this = f"PatientID {patient!r}" if patient else "no PatientID"
    this += f", --case {case!r}" if case is not None else ""
    if not rows:
        shown = ", ".join(repr(t) for t in list(dict.fromkeys(texts))[:10]) + (", ..." if n > 10 else "")
        raise InputError(f"the {what} {path} has {n} rows, none of this CT's patient ({this}): its cases {shown}",
                         f"give the {what} of this CT's patient; if its row is under another name, pass --case NAME "
                         "(the row's case)")
    if len(rows) > 1:
        shown = ", ".join(repr(texts[i]) for i in rows)
        raise InputError(f"the {what} {path} has {len(rows)} rows of this CT's patient ({shown}): which is this "
                         "CT's cannot be told", f"pass --case NAME, one of {shown}, or give the one-patient CSV of "
                                                "this CT")
    return df.iloc[rows]


def check_table_case(df, path, what: str, patient_id, case=None) -> None:
    """A results CSV (``--radiomics``, ``--dose-features``, ``--rp``) must be this CT's: each value of its
    ``case`` column is the CT's PatientID (``patient_id``; the default case of ``lungai radiomics`` /
    ``dose-features`` / ``demo`` on a DICOM CT; spaces around it and letter case ignored), or that id followed by
    ``_`` (``lungai cohort``'s PATIENT_1 for a patient with several CT series, a CT file's name such as
    PATIENT_ct), or ``case`` (``dicom-export --case``: the name the user gave this CT with ``--case``).  Anything
    else is another patient's result, which would go into this patient's SR: refused, naming both and the fix.
    Nothing is compared without a ``case`` column or when the CT has no PatientID."""
    import pandas as pd

    from lungai.errors import InputError

    patient = str(patient_id or "").strip()
    if not patient or "case" not in getattr(df, "columns", ()):
        return
    for value in dict.fromkeys(df["case"].tolist()):
        if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
            continue
        text = str(value).strip()
        if _of_this_ct(text, patient, case):
            continue
        raise InputError(f"the {what} {path} is of case {text!r}, not of this CT's patient (PatientID {patient!r}): "
                         "its values would go into another patient's DICOM SR",
                         f"give the {what} computed on this CT (its case is the CT's PatientID unless --case was "
                         f"given); if {text!r} is the name you gave this CT's results with --case, pass --case "
                         f"{text!r} to dicom-export")


def cohort_features(folder, record_path):
    """The ``features.csv`` (:data:`lungai.dicom.cohort.FEATURES`) of a ``lungai cohort`` patient folder - its result.json
    a cohort record (``provenance``, ``status``) - or None.  It is the folder's radiomics (wide ``rad_*`` columns of
    its segments) and dose metrics (``dose_*``): ``dicom-export --results`` reports them in the SR, as it reports a
    demo folder's radiomics_long.csv / dose.csv (QA on LUNG1-003: the cohort folder's 535 radiomic features went
    nowhere, without a word)."""
    from pathlib import Path

    from lungai.dicom.cohort import FEATURES

    record = _json_or_none(record_path) if folder and record_path else None
    if not (isinstance(record, dict) and "provenance" in record and "status" in record):
        return None
    path = Path(folder) / FEATURES
    return path if path.is_file() else None


WIDE_FIX = "give the CSV of `lungai radiomics` without --wide"


def long_radiomics(table, path, what: str = "radiomics table", fix: str = WIDE_FIX):
    """``table`` as the long radiomics table (:data:`lungai.radiomics.extract.LONG_COLUMNS`): as it is when long, from
    its ``rad_*`` columns when wide (``lungai radiomics --wide``, a cohort patient's ``features.csv``:
    :func:`lungai.radiomics.extract.from_wide`); a table neither long nor lungai's wide one (a ``rad_`` column that
    names no lungai segment) is refused.  QA: ``dicom-export --radiomics`` refused a wide table as "not a long
    radiomics table", though --results reads a cohort's wide one."""
    from lungai.errors import InputError
    from lungai.radiomics.extract import LONG_COLUMNS, from_wide

    if set(LONG_COLUMNS) - {"case"} <= set(table):
        return table
    radiomics, unsplit = from_wide(table)
    if unsplit:
        raise InputError(f"the {what} {path} has radiomics columns that name no lungai segment: "
                         + ", ".join(unsplit[:3]) + (" ..." if len(unsplit) > 3 else ""), fix)
    if radiomics.empty:
        raise InputError(f"{path} is neither a long radiomics table (segment, image_type, feature_class, feature, "
                         "value) nor a wide one (rad_<segment>_<image_type>_<class>_<feature> columns)", fix)
    return radiomics


def cohort_tables(path, record: dict, case_column):
    """(long radiomics table, its settings, dose row or None) of a cohort patient's ``features.csv`` (``path``):
    the ``rad_*`` columns as the long table (:func:`lungai.radiomics.extract.from_wide`), the grid of each segment
    from the record's ``radiomics_grid`` (as radiomics' ``_settings.csv``), the ``dose_*`` columns as a dose row
    whose ``masks`` say the record's provenance (None without an RTDOSE: every dose value empty)."""
    import pandas as pd

    from lungai.errors import InputError
    from lungai.io.tables import read_table_checked
    fix = ("give the patient's features.csv as it was written (redo the patient: delete its folder, run the cohort "
           "again), or give dicom-export --radiomics with a long radiomics table")
    wide = read_table_checked(path, case_column, what="cohort features table", fix=fix)
    if len(wide) != 1:
        raise InputError(f"the cohort features table {path} has {len(wide)} rows, a patient's has one", fix)
    radiomics = long_radiomics(wide, path, "cohort features table", fix)
    grid = record.get("radiomics_grid") if isinstance(record.get("radiomics_grid"), list) else []
    settings = pd.DataFrame(grid).assign(case=wide["case"].iloc[0] if "case" in wide else None) if grid else None
    return radiomics, settings, wide_dose(wide.iloc[0].to_dict(), record)


def radiomics_table_dose(table, path) -> dict | None:
    """The dose row of a one-row wide ``--radiomics`` table (:func:`wide_dose`), with the cohort record beside it
    when it is a cohort patient's ``features.csv`` (its masks said from the record's provenance); None without dose
    values.  A table of several rows with dose values: said not exported (the --dose-features to give)."""
    from pathlib import Path

    from lungai.dicom.cohort import RESULT
    from lungai.dicom.export import dose_column

    if len(table) != 1:
        if any(dose_column(c) and table[c].notna().any() for c in table.columns):
            print(f"note: the dose_* columns of {path} ({len(table)} rows) were not exported; give this CT's dose "
                  "metrics with --dose-features (a one-patient CSV)")
        return None
    folder = Path(path).parent
    beside = cohort_features(folder, folder / RESULT)
    record = _json_or_none(folder / RESULT) if beside and Path(beside).resolve() == Path(path).resolve() else None
    return wide_dose(table.iloc[0].to_dict(), record)


def wide_dose(row: dict, record: dict | None = None) -> dict | None:
    """The dose row of a wide table's ``row`` (a cohort patient's ``features.csv``): its ``dose_*`` columns, the
    masks they were computed on - the cohort ``record``'s provenance, else the row's own ``masks`` column (none: the
    SR says they are not recorded) - and its ``lungs_cut``; None when no dose value is given (no RTDOSE)."""
    import pandas as pd

    from lungai.dicom.export import dose_column
    from lungai.dose.features import LUNGS_CUT_COLUMN, MASKS_COLUMN

    dose = {k: v for k, v in row.items() if dose_column(k)}
    if not any(pd.api.types.is_number(v) and not isinstance(v, bool) and pd.notna(v) for v in dose.values()):
        return None
    if record is not None:
        prov = record.get("provenance") if isinstance(record.get("provenance"), dict) else {}
        masks = "; ".join(f"{what}: {prov[what]}" for what in ("lungs", "tumour", "dose") if prov.get(what))
        masks = f"{masks} (lungai cohort)"
    else:
        masks = row.get(MASKS_COLUMN)
    cut = row.get(LUNGS_CUT_COLUMN)
    return {**dose, "case": row.get("case"), **({MASKS_COLUMN: masks} if isinstance(masks, str) else {}),
            LUNGS_CUT_COLUMN: cut if isinstance(cut, str) else ""}


def run_export(args) -> int:
    import json

    from pathlib import Path

    from lungai.paths import check_input_paths

    # the input files named are there, a mask option not given a folder: with the arguments, before the CT is read and
    # SimpleITK imported (QA inputs70, LUNG1-003: `--lungs lungs_typo.nii.gz` said "lungs_typo.nii.gz does not exist"
    # after 6.3 s, `--tumour nifti/` "is a folder where a mask file was expected" after 6 s, `--results missing/`
    # "nothing to export")
    check_input_paths([("--ct", args.ct), ("--results", args.results), ("--tumour", args.tumour),
                       ("--lungs", args.lungs), ("--uncertainty", args.uncertainty), ("--result", args.result),
                       ("--radiomics", args.radiomics), ("--dose-features", args.dose_features), ("--rp", args.rp)],
                      masks=("--tumour", "--lungs"), cts=("--ct",))
    # nor an output folder among the inputs' DICOM folders (an RTSTRUCT's, a SEG's, the CT's), with the arguments
    # (light: lungai.io.outputs; QA dicomfollow71: refused only once the CT series was checked, after the imports); the
    # CT's export and the folder's owner are checked on the bar, before the CT is read
    from lungai.io.outputs import prepare_output_folder

    prepare_output_folder(args.output, create=False,
                          inputs=[args.ct, args.tumour, args.lungs, args.uncertainty, args.result, args.radiomics,
                                  args.dose_features, args.rp])

    from lungai.dicom.export import (check_lungai_result, check_result_for_tumour, check_table_numbers,
                                     contoured_tumour_record, dose_column, export_notes, export_results,
                                     reference_for, rp_row, uncertainty_input)
    from lungai.errors import InputError
    from lungai.dicom.export import JOINED_GTVS, contoured_gtvs
    from lungai.dicom.masks import lung_map_input, mask_input, split_selector
    from lungai.io import on_grid, read_image
    from lungai.io.outputs import claimed_output_folder, prepare_output_folder
    from lungai.io.tables import read_table_checked
    from lungai.progress import task, timer_running

    r = args.results
    found = {what: _result_file(r, what) for what in RESULT_FILES}
    # --tumour replaces the folder's tumour: the folder's result.json (lungai's confidence, review flag) and
    # uncertainty map describe lungai's tumour, not this one, so they are taken only when given explicitly
    skipped = [found[what].name for what, explicit in (("result", args.result), ("uncertainty", args.uncertainty))
               if args.tumour and not explicit and found[what]]
    paths = {"tumour": args.tumour or found["tumour"], "lungs": args.lungs or found["lungs"],
             "uncertainty": args.uncertainty or (None if args.tumour else found["uncertainty"]),
             "result": args.result or (None if args.tumour else found["result"]),
             "radiomics": args.radiomics or found["radiomics"],
             "dose": args.dose_features or found["dose"], "rp": args.rp or found["rp"]}
    # a folder's result.json without a tumour mask (neither in the folder nor given): its confidence, review flag and
    # method describe a tumour that is not exported, so it is left out (said below); --result given so is refused
    # (lungai.dicom.export.check_result_for_tumour)
    no_tumour_record = found["result"] if paths["result"] and not paths["tumour"] and not args.result else None
    if no_tumour_record:
        paths["result"] = None
    # a lungai cohort patient folder whose tumour is the RTSTRUCT's GTV: its result.json holds no lungai confidence,
    # so the folder's tumour is exported as the user's contour (MANUAL) and the record left out (said below); given
    # with --result it is refused (lungai.dicom.export.check_lungai_result)
    contoured = None
    if paths["result"] and not args.result:
        contoured = contoured_tumour_record(_json_or_none(paths["result"]))
        if contoured:
            contoured_record, paths["result"] = paths["result"], None
    # a lungai cohort patient folder's features.csv: its radiomics and dose metrics, unless given otherwise (with
    # --tumour: they are of the folder's tumour, left out and said below)
    cohort = cohort_features(r, found["result"]) if not (paths["radiomics"] and paths["dose"]) else None
    cohort_skipped = cohort if cohort and args.tumour else None
    cohort = cohort if cohort and not args.tumour else None
    if not any(paths.values()):
        raise InputError("nothing to export" + (f": {r} holds a result.json but no tumour mask "
                                                f"({' / '.join(RESULT_FILES['tumour'])}) nor any other result"
                                                if no_tumour_record else ""),
                         "give --results FOLDER (a lungai demo / segment output, a lungai cohort patient folder) or "
                         "result files")
    from lungai.dicom.export import RESULTS_STEPS, on_ct_grid
    from lungai.dicom.reference import MULTIFRAME_NO_DICOM, multiframe_ct, one_series_scan

    # the bar first: the checks and the CT read below read the series' headers, each file's once in this block
    # (one_series_scan; QA exportfollow67: 858 header reads of LUNG1-003's 107 slices, ~2 s before the first bar)
    with task("dicom-export", 1 + RESULTS_STEPS) as bar:       # the CT read, each DICOM object written
        with one_series_scan():
            bar.update(0, CHECKING_CT)
            if multiframe_ct(args.ct, args.series):     # before any work: its results cannot reference its slices
                raise InputError(MULTIFRAME_NO_DICOM.format(ct=args.ct), "export the results of a CT given as a "
                                 "classic series (one file per slice; e.g. converted by the scanner / PACS or "
                                 "dicom3tools); the NIfTI results stay valid as they are")
            # before any work: a results folder of another patient / CT series (its result.json records them) is
            # refused
            from lungai.dicom.export import check_result_ct
            from lungai.dicom.reference import dicom_ct_header

            head = dicom_ct_header(args.ct, args.series)
            unchecked = [rec for rec in dict.fromkeys(p for p in (found["result"], args.result) if p)
                         if head is not None and not check_result_ct(
                             _json_or_none(rec), rec, getattr(head, "PatientID", ""),
                             getattr(head, "SeriesInstanceUID", ""))]
            # before reading: never the CT's own folder, nor a user's file of an output name (the marker
            # .lungai-dicom-export lists what an earlier export wrote: a re-run replaces those)
            inputs = [args.ct, *(p for p in paths.values() if p), *([cohort] if cohort else [])]
            # checked, then made when the results are written: a refused export leaves no empty folder behind
            from lungai.dicom.reference import check_output_folder

            check_output_folder(args.output, args.ct, args.series)   # nor inside the DICOM export (before the owner
            prepare_output_folder(args.output, inputs=inputs, owner=OWNER, owns=DICOM_EXPORT_OUTPUTS,   # check)
                                  create=False)
            bar.update(0, READING.format(what="CT"))
            with timer_running(bar):    # said again with its seconds while it runs (as the masks below)
                ct = _read_dicom_ct(args.ct, args.series)
                reference = reference_for(args.ct, ct, args.series)
        bar.update(1, "CT read")

        patient_id = getattr(reference.first, "PatientID", "")
        case_column = lambda names: [c for c in names if c == "case"]  # noqa: E731  (ids as text: "007")

        def table_row(path, what, numbers):
            if not path:
                return None
            df = read_table_checked(path, case_column, what=what, fix="give the one-patient CSV of this CT")
            df = this_cts_row(df, path, what, patient_id, args.case)   # a cohort's CSV (rp predict): this CT's row
            check_table_case(df, path, what, patient_id, args.case)
            check_table_numbers(df, path, what, numbers)     # before any DICOM object is written
            return df.iloc[0].to_dict()

        # a wide table (lungai radiomics --wide, a cohort patient's features.csv) as the long one: long_radiomics
        if paths["radiomics"] or cohort:
            bar.update(0, READING.format(what="radiomics table"))
        rad_table = read_table_checked(paths["radiomics"], case_column, what="radiomics table", fix=WIDE_FIX) \
            if paths["radiomics"] else None
        radiomics = long_radiomics(rad_table, paths["radiomics"]) if rad_table is not None else None
        radiomics_settings = radiomics_settings_beside(paths["radiomics"]) if radiomics is not None else None
        cohort_dose = None
        import pandas as pd

        if cohort:
            rad, settings, cohort_dose = cohort_tables(cohort, _json_or_none(found["result"]), case_column)
            if radiomics is None:
                radiomics, radiomics_settings, paths["radiomics"] = rad, settings, cohort
            cohort_dose = cohort_dose if not paths["dose"] else None
            if cohort_dose is not None:
                check_table_case(pd.DataFrame([cohort_dose]), cohort, "cohort features table",
                                 patient_id, args.case)
                check_table_numbers(cohort_dose, cohort, "cohort features table", dose_column)
        if rad_table is not None and not paths["dose"] and cohort_dose is None and args.radiomics:
            # a wide --radiomics table's dose_* columns (a cohort patient's features.csv): taken as --results takes
            # them (cohort_tables), when no --dose-features is given; never left out without a word
            cohort_dose = radiomics_table_dose(rad_table, args.radiomics)
            if cohort_dose is not None:
                check_table_case(pd.DataFrame([cohort_dose]), args.radiomics, "radiomics table", patient_id, args.case)
                check_table_numbers(cohort_dose, args.radiomics, "radiomics table", dose_column)
        if radiomics is not None:
            check_table_case(radiomics, paths["radiomics"], "radiomics table", patient_id, args.case)
        if radiomics is not None:
            check_table_numbers(radiomics, paths["radiomics"], "radiomics table", ("value",))
        # the uncertainty map is lungai's predictive entropy: the Parametric Map says so (its description checked)
        if paths["uncertainty"]:
            bar.update(0, READING.format(what="uncertainty map"))
        uncertainty_map = read_image(paths["uncertainty"]) if paths["uncertainty"] else None
        uncertainty_note = uncertainty_input(uncertainty_map, Path(paths["uncertainty"]).name) \
            if uncertainty_map is not None else ""
        gtvs: dict = {}     # a SEG's GTV segments: each exported under its own name (export.tumour_parts)
        # lungai's tumour: it comes with its result.json (both from --results, or --result given with --tumour), or
        # its file is lungai's automatic tumour unchanged (tumour_made_by: `lungai segment`'s / the demo's
        # tumor.nii.gz, a cohort patient folder's automatic tumour.nii.gz, dicom-export's AUTOMATIC SEG of it) -
        # exported then without a confidence; the lungs are lungai's (AUTOMATIC) when lungai made their file (`lungai
        # lungs`', `lungai demo`'s: its marker lists it unchanged; a cohort patient folder's automatic lungs: its
        # record says so and holds the file's digest); else the user's (MANUAL: edited since, or another file),
        # however the file was given (--tumour / --lungs or --results).  QA: the demo's automatic lungs were exported
        # as MANUAL, a clinician's contours; QA (cohortdose62): so was a cohort's automatic tumour given as --tumour
        # without --result.  Told while each mask is read, on the bar (QA export69: before the bar, a cohort tumour's
        # voxels read and digested, a user's file looked into as a DICOM SEG - pydicom imported: 0.2-1 s of a shared
        # machine with no bar)
        from lungai.dicom.export import lungs_made_by, tumour_made_by
        from lungai.dicom.seg import AUTOMATIC, generation_by

        if paths["tumour"]:
            bar.update(0, READING.format(what="tumour mask"))
        generation = {"tumour": AUTOMATIC if paths["result"] and (args.result or not args.tumour) else
                      generation_by(paths["tumour"] and tumour_made_by(paths["tumour"]))}     # by the file only
        # each mask's reading said again with its seconds while it runs (QA dicom72: LUNG1-003's 3-segment SEG given
        # as --tumour and --lungs stood 3-4 s on each "reading the ... mask", no line)
        with timer_running(bar):
            tumour = mask_input(paths["tumour"], ct, parts=gtvs) if paths["tumour"] else None
        if paths["lungs"]:
            bar.update(0, READING.format(what="lung mask"))
        generation["lungs"] = generation_by(paths["lungs"] and lungs_made_by(paths["lungs"]))    # by the file only
        with timer_running(bar):
            lungs = lung_map_input(paths["lungs"], ct) if paths["lungs"] else None
        # on the DICOM CT's exact grid (a NIfTI file holds its spacing as float32): the SR's volumes are those lungai
        # segment wrote of the same mask (lungai.dicom.export.mask_volume_ml; QA exportfollow68)
        tumour, lungs = on_ct_grid(tumour, ct), on_ct_grid(lungs, ct)
        gtvs.update({name: on_ct_grid(mask, ct) for name, mask in gtvs.items()})
        given = dict(  # every input read before the earlier export's files are replaced
            tumour=tumour, gtvs=gtvs, lungs=lungs,
            # the map on the CT's grid in the CT's stored order (a RAS / PLS NIfTI of an LPS CT reoriented, lossless):
            # its frames are written as the CT's slices, rows and columns
            uncertainty=on_grid(ct, uncertainty_map, what=f"uncertainty map "
                                f"{Path(paths['uncertainty']).name}") if paths["uncertainty"] else None,
            info=json.loads(open(paths["result"], encoding="utf-8").read()) if paths["result"] else None,
            radiomics=radiomics, dose=table_row(paths["dose"], "dose CSV", dose_column) or cohort_dose,
            # its high_risk in words read as 1 / 0, its risks checked (rp_row checks RP_COLUMNS' numbers)
            rp=rp_row(table_row(paths["rp"], "RP prediction CSV", ()), paths["rp"]), generation=generation,
            radiomics_settings=radiomics_settings,
            # the radiomics a --results folder holds (not a --radiomics table): a mismatch's fix names --radiomics
            radiomics_source=str(paths["radiomics"]) if radiomics is not None and not args.radiomics else None)
        bar.update(0, CHECKING)      # the results against each other and the CT (volumes, radiomics), their notes
        if given["tumour"] is not None and not gtvs and "," in (split_selector(paths["tumour"])[1] or ""):
            gtvs[JOINED_GTVS] = given["tumour"]     # labels joined (FILE#1,2): GTVs without names, never "GTVp"
        if contoured and not args.tumour:   # a cohort folder's RTSTRUCT GTV(s): named so, never "GTVp" for nodes
            gtvs.update(contoured_gtvs(contoured, given["tumour"]))
        if given["info"] is not None:       # lungai segment's record, not a cohort's (an RTSTRUCT GTV); the record
            check_lungai_result(given["info"], Path(paths["result"]).name)      # of the exported tumour, and
            check_result_for_tumour(given["info"], given["tumour"], Path(paths["result"]).name)   # not without it
        # each sub-step named, its seconds said while it runs, the masks split into their segments once for the notes
        # and the export (QA exportfollow68: "checking the results" stood 2 s, up to 7 s on a loaded machine,
        # LUNG1-003's lung map split three times)
        from lungai.dicom.export import export_parts
        from lungai.progress import waiting

        parts = waiting(bar, f"{CHECKING}: the masks' segments", export_parts, given["tumour"], given["lungs"], gtvs)
        notes = [f"note: {n}" for n in waiting(bar, f"{CHECKING}: what the export leaves out", export_notes,
                                               given["tumour"], gtvs, given["lungs"], given["radiomics"], parts=parts)
                 + [uncertainty_note] if n] + \
            [f"warning: {n}" for n in (waiting(bar, f"{CHECKING}: the lungs", _lung_notes, given["lungs"], ct,
                                               paths["lungs"], parts=parts) if given["lungs"] is not None else [])]
        with claimed_output_folder(args.output, OWNER, DICOM_EXPORT_OUTPUTS, inputs=inputs):
            written = export_results(reference, args.output, **given, progress=bar, parts=parts)
    for p in written:
        print(f"DICOM: {p}")
    for note in notes:
        print(note)
    for rec in unchecked:
        print(f"note: {rec} records no CT (PatientID, series UID: written by an older lungai, or for a NIfTI CT), so "
              "that its results are this CT's could not be checked")
    if no_tumour_record:
        print(f"note: {no_tumour_record} was not exported: its confidence and review flag describe lungai's tumour, "
              f"and {r} holds no tumour mask ({' / '.join(RESULT_FILES['tumour'])}); give the tumour with --tumour "
              "and --result to export them")
    if contoured:
        print(f"note: {contoured_record} is a lungai cohort patient record whose tumour is {contoured}, not a lungai "
              "segmentation: the tumour is exported as the user's contour (MANUAL, no confidence) and the record is "
              "not exported")
    if cohort and (paths["radiomics"] == cohort or cohort_dose is not None):
        taken = [f"radiomics ({len(radiomics)} features of {', '.join(dict.fromkeys(radiomics['segment']))})"
                 ] * (paths["radiomics"] == cohort) + ["dose metrics"] * (cohort_dose is not None)
        print(f"note: {cohort}: the lungai cohort patient's {' and '.join(taken)} exported in the SR")
    if cohort_skipped:
        print(f"note: --tumour replaces the tumour of {r}, so its {cohort_skipped.name} (the cohort's radiomics and "
              "dose metrics of its own tumour) was not exported; give --radiomics / --dose-features computed on this "
              "tumour to export them")
    if r is not None and not paths["radiomics"]:
        tables = other_radiomics_tables(r)
        if tables:
            names = ", ".join(p.name for p in tables)
            print(f"note: no radiomic features were exported: {r} holds the radiomics table"
                  f"{'s' if len(tables) > 1 else ''} {names}, and --results takes one only as "
                  f"{RESULT_FILES['radiomics'][0]} (lungai demo's name); give it with --radiomics "
                  f"{tables[0] if len(tables) == 1 else 'FILE'} to put its features into the SR")
    if skipped:
        what = {"result.json": "confidence and review flag", "uncertainty.nii.gz": "uncertainty map"}
        options = {"result.json": "--result", "uncertainty.nii.gz": "--uncertainty"}
        two = len(skipped) == 2
        print(f"note: --tumour replaces the tumour of {r}, so its {' and '.join(skipped)} (lungai's "
              f"{', '.join(what[n] for n in skipped)}: they describe lungai's tumour, not this one) "
              f"{'were' if two else 'was'} not exported; give {' / '.join(options[n] for n in skipped)} to export "
              f"{'them' if two else 'it'} anyway")
    return 0
