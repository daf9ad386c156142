"""RP risk for the patient loaded in Slicer: assemble the feature row, predict, show as tables.

Accepted radiomics table node layouts (first match wins):

1. *Features as rows* (what the radiomics module shows): a text column ``feature`` holding
   pyradiomics names such as ``original_firstorder_Mean`` and one numeric column per segment
   (``tumour``, ``right_lung``, ``left_lung``, ``lungs``, ``lungs_minus_tumour``; names are
   lower-cased, spaces/dashes become ``_``, "Tumor" becomes ``tumour``).  Cell (feature F,
   column S) becomes ``rad_S_F``.  Other text columns (e.g. ``image_type``) are ignored.
   Two columns with one segment key (e.g. GTV-1, gtv-2, gtv-3, all ``tumour``) are refused: the
   models' tumour is the union of all GTVs (``lungai cohort``), so merge them into one segment first.
2. *Long*: columns ``segment, image_type, feature_class, feature, value`` (optional ``case``),
   one row per value -> ``rad_<segment>_<image_type>_<feature_class>_<feature>``.
3. *Wide*: one row with ``rad_*`` columns.

Dose rows of a features-as-rows table (``image_type`` = ``dose``, as the Lung Radiomics module
adds with a dose volume) give ``dose_mld_gy``, ``dose_v*_pct``, ``dose_d*_gy`` (lungs minus tumour
column, else lungs) and ``dose_gtv_mean/min/max_gy`` (tumour column).
Dose features: a dict (e.g. the row from ``lungai.dose``), a one-row DataFrame/table node with
``dose_*`` columns, or a two-column table node ``feature, value``.  Clinical values: a dict or a
CSV path (one row, or the row whose ``case``/``patient_id`` - or the model's id column - equals
``case``).  Keys without their ``dose_``/``clin_`` prefix get it added, except the model's own
feature names (a model trained with a role file uses the table's names, e.g. "Age at Histological
Diagnosis"), which are kept as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lungai import mrml
from lungai.errors import InputError
from lungai.radiomics.settings import NODE_ATTRIBUTE, SETTINGS_COLUMN
from lungai.rp.columns import is_id_name, suggest
from lungai.segment_roles import name_key, segment_role

LONG_COLUMNS = ("segment", "image_type", "feature_class", "feature", "value")
TOP_COLUMN = re.compile(r"top\d+_(feature|contribution)")   # rp predict's top features: the contributions table here


def _segment_key(name: str, mapping=None) -> str:
    """The segment part of a feature name: its role (lungai.segment_roles; ``mapping``: roles of names whose name gives
    none, those of the segments' terminology - :func:`_table_roles`) when it has one, else the normalised name with
    "tumor"/"gtv" spelled "tumour"."""
    return segment_role(name, mapping) or re.sub(r"(^|_)(tumor|gtv)(_|$)", r"\1tumour\3", name_key(name))


def _table_roles(node_or_df, mapping=None) -> dict:
    """The roles of a radiomics table's segment columns whose name gives none: ``mapping`` when given, else those the
    table node carries (:func:`lungai.scene.nodes.table_segment_roles`: a GTV renamed "Tumör primär 1" with the tumour
    terminology, QA slicerfollow67: its features were ``rad_tum_r_prim_r_1_*``, none the model's ``rad_tumour_*``)."""
    if mapping is not None or node_or_df is None or isinstance(node_or_df, (pd.DataFrame, dict)):
        return mapping or {}
    from lungai.scene.nodes import table_segment_roles

    return table_segment_roles(node_or_df)


def _segment_keys(names, mapping=None) -> dict:
    """{segment name: its key (:func:`_segment_key`)}; refuses two names with one key (several tumour
    columns - GTV-1, gtv-2 ... - would otherwise silently overwrite each other's ``rad_tumour_*``)."""
    names = list(dict.fromkeys(names))
    keys = {n: _segment_key(n, mapping) for n in names}
    for key in dict.fromkeys(keys.values()):
        same = [n for n in names if keys[n] == key]
        if len(same) < 2:
            continue
        listed = ", ".join(map(repr, same))
        if key == "tumour":  # lungai cohort / radiomics --rtstruct: the tumour is the union of all GTVs (role:gtv)
            raise InputError(f"the radiomics table has {len(same)} tumour segments ({listed}); the RP models take "
                             "one tumour, the union of all GTVs (as 'lungai cohort' makes it from an RTSTRUCT)",
                             "merge them into one segment (Segment Editor > Logical operators > Add, e.g. into "
                             f"{same[0]!r}) and compute the radiomics table again with only that tumour segment ticked")
        raise InputError(f"the radiomics table has {len(same)} segments that are all {key!r} ({listed})",
                         "compute the radiomics table again with only one of them ticked")
    return keys


# the text columns of a features-as-rows table (Lung Radiomics, lungai.scene.radiomics) that are no segment
_NOT_SEGMENTS = ("feature", "image_type", "feature_class", "name", SETTINGS_COLUMN)


def _blank(values: pd.Series) -> pd.Series:
    """Cells with no value: NaN / None, '' (a table read by Slicer's CSV reader, text), 'nan'."""
    return values.isna() | values.astype(str).str.strip().str.lower().isin(("", "nan"))


def _segment_columns(df: pd.DataFrame) -> dict:
    """{column: its values as numbers (NaN where missing)} of the segment columns of a features-as-rows table: the
    columns other than the feature's own (:data:`_NOT_SEGMENTS`) and the patient id holding numbers - as numbers,
    or as text (a table loaded by Slicer's CSV reader) -, or no value at all (a segment not computed: Lung
    Radiomics leaves its column NaN, its features are then imputed)."""
    out = {}
    for column in df.columns:
        if column in _NOT_SEGMENTS or is_id_name(column):
            continue
        values = df[column]
        numbers = pd.to_numeric(values, errors="coerce") if values.dtype.kind not in "fiub" else values.astype(float)
        if values.dtype.kind in "fiu" or numbers.notna().any() or _blank(values).all():
            out[column] = numbers
    return out


def radiomics_features(node_or_df, mapping=None) -> dict[str, float]:
    """``rad_*`` features from a radiomics table node (or DataFrame) in one of the layouts above (``mapping``: roles of
    segment names whose name gives none; by default those the table node carries, :func:`_table_roles`)."""
    mapping = _table_roles(node_or_df, mapping)
    df = node_or_df if isinstance(node_or_df, pd.DataFrame) else mrml.dataframe_from_table_node(node_or_df)
    if df.empty:
        raise InputError("the radiomics table is empty", "compute radiomics features first (LungAI Radiomics)")
    if all(c in df.columns for c in LONG_COLUMNS):
        keys = ("rad_" + df["segment"].map(_segment_keys(df["segment"].astype(str), mapping)) + "_"
                + df["image_type"].astype(str) + "_"
                + df["feature_class"].astype(str) + "_" + df["feature"].astype(str))
        return dict(zip(keys, pd.to_numeric(df["value"], errors="coerce")))
    if "feature" in df.columns:
        if "image_type" in df.columns:
            df = df[df["image_type"].astype(str) != "dose"]  # dose rows: see dose_from_radiomics_table
        out = {}
        columns = _segment_columns(df)
        for col, seg in _segment_keys(columns, mapping).items():
            for feat, value in zip(df["feature"].astype(str), columns[col]):
                out[f"rad_{seg}_{feat}"] = float(value)
        if not out:
            raise InputError("the radiomics table has a 'feature' column but no numeric segment columns",
                             "use a table with one numeric column per segment (tumour, lungs, ...)")
        return out
    rad = [c for c in df.columns if str(c).startswith("rad_")]
    if len(df) == 1 and rad:
        # an empty cell (e.g. of a table read by Slicer's CSV reader, all text) is a missing value: imputed
        return {c: float(pd.to_numeric(df[c], errors="coerce").iloc[0]) for c in rad}
    raise InputError(f"unrecognised radiomics table layout (columns {list(df.columns)[:8]})",
                     "give a table with a 'feature' column and one column per segment, the long layout "
                     "(segment, image_type, feature_class, feature, value) or one row of rad_* columns")


def dose_from_radiomics_table(node_or_df, mapping=None) -> dict:
    """``dose_*`` features from the dose rows (``image_type`` = dose) of a features-as-rows table:
    lung metrics from the "lungs minus tumour" column (else "lungs"), as ``lungai dose`` computes
    them; ``dose_gtv_*`` from the tumour column (columns by role: ``mapping`` as in :func:`radiomics_features`).
    Empty when the table has no dose rows."""
    mapping = _table_roles(node_or_df, mapping)
    df = node_or_df if isinstance(node_or_df, pd.DataFrame) else mrml.dataframe_from_table_node(node_or_df)
    if not {"feature", "image_type"} <= set(df.columns):
        return {}
    rows = df[df["image_type"].astype(str) == "dose"]
    if rows.empty:
        return {}
    values = _segment_columns(rows)
    columns = {key: c for c, key in _segment_keys(values, mapping).items()}
    lung = columns.get("lungs_minus_tumour", columns.get("lungs"))
    out = {}
    nothing = [np.nan] * len(rows)
    for feat, lung_value, tumour_value in zip(rows["feature"].astype(str), values[lung] if lung else nothing,
                                              values[columns["tumour"]] if "tumour" in columns else nothing):
        if lung is not None and np.isfinite(lung_value):
            out["dose_mld_gy" if feat == "dose_mean_gy" else feat] = float(lung_value)
        if feat in ("dose_mean_gy", "dose_min_gy", "dose_max_gy") and np.isfinite(tumour_value):
            out[feat.replace("dose_", "dose_gtv_")] = float(tumour_value)
    return {k: v for k, v in out.items() if k not in ("dose_min_gy", "dose_max_gy")}


def _prefixed(values: dict, prefix: str, names=(), id_column: str | None = None) -> dict:
    """``values`` with ``prefix`` added to each key, except keys that already carry it or are one of ``names``
    (the model's own feature names, e.g. "Age at Histological Diagnosis" of a model trained with a role file;
    leading/trailing spaces ignored); the patient id (case / patient_id / id, or ``id_column``) is dropped."""
    exact = {str(n).strip(): n for n in names}
    skip = str(id_column).strip() if id_column is not None else None
    out = {}
    for k, v in values.items():
        key = str(k).strip()
        if is_id_name(key) or key == skip:
            continue
        out[exact[key] if key in exact else key if key.startswith(prefix) else f"{prefix}{key}"] = v
    return out


def dose_features(dose, names=()) -> dict:
    """``dose_*`` values (and the model's feature ``names`` as they are) from a dict, a one-row DataFrame or a
    table node; the ``masks``, ``lungs_cut``, ``rtdose_notes`` and ``dose`` columns of lungai's dose table (what the
    metrics were computed on, a partial lung, the RTDOSE's notes - DoseType EFFECTIVE ... -, the dose volume's name:
    :data:`lungai.scene.nodes.DOSE_COLUMN`) are no features: a ``lungs_cut`` flag and the ``rtdose_notes`` of a CLI
    dose.csv are carried as they are (rp predict warns of them: :func:`lungai.rp.prepare.table_warnings`)."""
    from lungai.dose.features import LUNGS_CUT_COLUMN, MASKS_COLUMN, NOTES_COLUMN
    from lungai.rp.columns import is_missing_word
    from lungai.scene.nodes import DOSE_COLUMN, OUTLINE_COLUMN

    def features(values: dict) -> dict:     # OUTLINE_COLUMN: a table of segments changed since (nodes.MEASURED_EARLIER)
        out = _prefixed({k: v for k, v in values.items()
                         if str(k).strip() not in (MASKS_COLUMN, LUNGS_CUT_COLUMN, NOTES_COLUMN, DOSE_COLUMN,
                                                   OUTLINE_COLUMN)},
                        "dose_", names)
        for column in (LUNGS_CUT_COLUMN, NOTES_COLUMN):
            value = next((v for k, v in values.items() if str(k).strip() == column), None)
            if value is not None and not is_missing_word(value) and str(value).strip():
                out[column] = str(value).strip()
        return out

    if isinstance(dose, dict):
        return features(dose)
    df = dose if isinstance(dose, pd.DataFrame) else mrml.dataframe_from_table_node(dose)
    if list(df.columns[:2]) == ["feature", "value"]:
        return features(dict(zip(df["feature"].astype(str), df["value"])))
    if len(df) != 1:
        raise InputError(f"the dose table has {len(df)} rows", "give one row of dose_* columns "
                         "(or two columns feature, value)")
    return features(df.iloc[0].to_dict())


def dose_table_text_problem(dose, card: dict | None = None) -> str | None:
    """The dose table's feature cells that hold text that is no number (e.g. "see plan" or "12,5" typed in the Tables
    module), each named by the table, its row (1 = the first row, as the Tables module numbers them) and column, with
    what to type; None when there are none.  Only the model's numeric features are checked (with a ``card``): the
    cells ``lungai rp predict`` would refuse, said in the panel's terms before the patient's row is written (QA
    slicerfollow66: the command's "column ... (numeric) has a value ... (CSV lines [2])" and a role file's fix)."""
    from lungai.dose.features import LUNGS_CUT_COLUMN, MASKS_COLUMN, NOTES_COLUMN
    from lungai.io.tables import number_hint
    from lungai.rp.columns import is_missing_word
    from lungai.scene.nodes import DOSE_COLUMN, OUTLINE_COLUMN

    if dose is None or isinstance(dose, dict):
        return None
    df = dose if isinstance(dose, pd.DataFrame) else mrml.dataframe_from_table_node(dose)
    names = (card or {}).get("features")
    numeric = None if names is None else {str(n).strip() for n in names} - set((card or {}).get("categories") or {})
    not_features = {MASKS_COLUMN, LUNGS_CUT_COLUMN, NOTES_COLUMN, DOSE_COLUMN, OUTLINE_COLUMN}
    if list(df.columns[:2]) == ["feature", "value"]:
        cells = [(i + 1, str(f).strip(), f" ({str(f).strip()}), column 'value'", v)
                 for i, (f, v) in enumerate(zip(df["feature"], df["value"]))]
    elif len(df) == 1:
        cells = [(1, str(c).strip(), f", column '{str(c).strip()}'", v) for c, v in df.iloc[0].items()]
    else:
        return None     # the row count is said by dose_features
    bad = []
    for row, name, where, value in cells:
        if name in not_features or is_id_name(name):
            continue
        key = name if name.startswith("dose_") or (numeric is not None and name in numeric) else f"dose_{name}"
        if numeric is not None and key not in numeric and name not in numeric:
            continue
        if isinstance(value, (int, float, np.number)) or is_missing_word(value):
            continue
        text = str(value).strip()
        try:
            float(text)
            continue
        except ValueError:
            bad.append(f"row {row}{where} = {text!r}{number_hint(text)}")
    if not bad:
        return None
    table = dose.GetName() if hasattr(dose, "GetName") else "dose"
    return (f"The dose table '{table}' has text where the model needs a number: " + "; ".join(bad)
            + ". Type a number in each of these cells (Tables module; e.g. 12.5, no unit), clear a cell for a missing "
              "value, or compute the dose table again (Lung Radiomics: Dose)")


def clinical_features(clinical, case: str | None = None, names=(), id_column: str | None = None) -> dict:
    """``clin_*`` values (and the model's feature ``names`` as they are) from a dict or a CSV (one row, or the row
    of ``case`` in the id column: ``id_column``, e.g. the model's, else case / patient_id / id)."""
    from lungai.rp.checks import read_table

    if isinstance(clinical, dict):
        return _prefixed(clinical, "clin_", names, id_column)
    path = Path(clinical)
    if not path.is_file():
        raise InputError(f"clinical CSV {path} does not exist", "give a dict or the path of a clinical CSV")
    df = read_table(path, id_column)   # as rp predict reads it: the id columns as text ("001" stays "001"), checked
    if len(df) > 1:
        wanted = str(id_column).strip() if id_column is not None else None
        id_col = next((c for c in df.columns if str(c).strip() == wanted), None) or \
            next((c for c in df.columns if is_id_name(c)), None)
        if id_col is None or case is None:
            raise InputError(f"clinical CSV {path} has {len(df)} rows and no way to pick the patient",
                             "give a one-row CSV, or a 'case' column (or the model's id column) and the case name")
        ids = df[id_col].astype(str).str.strip()
        rows = df[ids == str(case).strip()]
        if len(rows) > 1:   # one patient typed twice: which row holds the values cannot be guessed
            raise InputError(f"case {case!r} found {len(rows)} times in column {id_col!r} of {path}",
                             "keep one row per patient in the clinical CSV")
        if rows.empty:
            from lungai.io.tables import id_spelling_hint

            raise InputError(f"case {case!r} found 0 times in column {id_col!r} of {path}{suggest(case, ids)}"
                             + id_spelling_hint({str(case).strip()}, ids),
                             f"give case= the patient's id as written in column {id_col!r} (e.g. "
                             f"{', '.join(repr(i) for i in ids.head(3))}), or a one-row CSV")
        df = rows
    return _prefixed(df.iloc[0].to_dict(), "clin_", names, id_column)


def radiomics_settings_of(node_or_df) -> str | None:
    """The radiomics settings id a radiomics table carries (node attribute or column), or None."""
    if isinstance(node_or_df, pd.DataFrame):
        if SETTINGS_COLUMN not in node_or_df:
            return None
        ids = sorted({str(v) for v in node_or_df[SETTINGS_COLUMN].dropna()})
    else:
        ids = [v for v in str(node_or_df.GetAttribute(NODE_ATTRIBUTE) or "").split(";") if v]
    return ";".join(ids) or None


def assemble_patient_row(radiomics, dose, clinical, case: str = "patient", card: dict | None = None) -> pd.DataFrame:
    """One-row table (``case`` + clin_*, dose_*, rad_* columns) for :func:`lungai.rp.predict_rp`.  With the model's
    ``card`` (model_card.json), the model's own feature names (e.g. of a role file: "Age at Histological
    Diagnosis") are kept as they are, not prefixed, and its id column is not a feature."""
    names = (card or {}).get("features", [])
    id_column = ((card or {}).get("roles") or {}).get("id_column")
    row = {"case": case}
    row.update(clinical_features(clinical, case, names, id_column))
    if radiomics is not None:
        row.update(radiomics_features(radiomics))
        row.update(dose_from_radiomics_table(radiomics))
        settings = radiomics_settings_of(radiomics)
        if settings:
            row[SETTINGS_COLUMN] = settings
    row.update(dose_features(dose, names))  # an explicit dose table wins over the radiomics table's dose rows
    return pd.DataFrame([row])


def add_warnings(df: pd.DataFrame, notes) -> pd.DataFrame:
    """``df`` (prediction rows) with ``notes`` (e.g. the radiomics table's review notes:
    :func:`lungai.scene.nodes.recorded_review_notes`) added to each row's ``warnings`` ("; " between them)."""
    notes = [str(n) for n in notes if n]
    if not notes:
        return df
    df = df.copy()
    old = df["warnings"] if "warnings" in df.columns else pd.Series([""] * len(df), index=df.index)
    # a note the row already says (rp predict's CSV: the dose notes of its row) is not added again
    df["warnings"] = ["; ".join([str(w).strip()] + [n for n in notes if n not in str(w)])
                      if str(w).strip() not in ("", "nan", "None") else "; ".join(notes) for w in old.astype(object)]
    return df


def with_model_columns(df: pd.DataFrame, card: dict, model_dir) -> pd.DataFrame:
    """``df`` (risk rows: case, risk, risk_low, risk_high, high_risk ...) with the model's high-risk ``threshold``
    and its ``threshold_rule`` after ``risk_high`` (as ``rp predict``'s CSV has them:
    :func:`lungai.rp.predict.with_threshold`) and the ``model`` ("feature set/model (folder)") after ``high_risk``:
    which model made a risk (QA: Multimodal Predict's table had neither, and another model's run replaced it without
    a trace)."""
    from lungai.rp.predict import with_threshold  # noqa: PLC0415

    df = with_threshold(df.drop(columns="model", errors="ignore"), card)
    df.insert(list(df.columns).index("high_risk") + 1 if "high_risk" in df.columns else len(df.columns),
              "model", f"{card['feature_set']}/{card['model']} ({Path(model_dir).name})")
    return df


def predict_rp_node(scene, model_dir, radiomics, dose, clinical, case: str = "patient", top: int = 10,
                    table_node=None, contributions_node=None, allow_other_radiomics_settings: bool = False):
    """Predict the patient's RP risk; returns (result table node, contributions table node).

    Result columns: those of ``lungai rp predict``'s CSV row (:func:`lungai.rp.predict.predict_rp`: case,
    illustrative for a synthetic cohort's model, risk ... warnings, baseline_risk), with ``model`` after high_risk
    (:func:`with_model_columns`) and without the top features (:data:`TOP_COLUMN`: the contributions table); its
    warnings also say the tables' review notes.
    Contributions: feature, value, contribution (log-odds), largest |contribution| first, at most ``top`` rows and
    no feature the model does not use (as ``rp predict``'s top features).
    """
    from lungai.rp.model_io import load_model  # noqa: PLC0415
    from lungai.rp.predict import predict_rp  # noqa: PLC0415
    from lungai.scene.results import describe_missing_features  # noqa: PLC0415

    _, card = load_model(model_dir)
    row = assemble_patient_row(radiomics, dose, clinical, case, card)
    # every missing input named at once, as Multimodal Predict's Compute risk says it (an empty value is imputed)
    missing = describe_missing_features(card, [f for f in card.get("features", []) if f not in row.columns])
    if missing:
        raise InputError(missing, "give each: clinical values as keys of the clinical dict or columns of its CSV "
                         "(with or without the clin_ prefix; None / an empty cell is imputed), dose_* in the dose "
                         "table or dict, rad_* from the radiomics table")
    pred, contrib = predict_rp(model_dir, row, top=top, allow_other_radiomics_settings=allow_other_radiomics_settings,
                               context="patient")     # the lungs-cut fix said to this panel's user, not a cohort's
    # rp predict's CSV row (the Multimodal Predict panel's risk table is made from it): the same columns, in its order,
    # with the model after high_risk; its top features are the contributions table (QA docs2_65: the row was built
    # column by column here and lacked baseline_risk)
    result = pred.drop(columns=[c for c in pred.columns if TOP_COLUMN.fullmatch(c)]).reset_index(drop=True)
    result["case"] = [case]
    result = with_model_columns(result, card, model_dir)
    from lungai.scene.nodes import recorded_review_notes, stale_table_notes  # noqa: PLC0415

    # the radiomics table's segments flagged for expert review (Lung Radiomics / radiomics_table record them), and
    # the dose's warnings recorded on the dose table (Lung Radiomics: an EFFECTIVE RTDOSE ...), each once
    # and the warnings about the whole table (rp predict prints them): the dose metrics of lungs cut by the scan, the
    # notes a CLI dose.csv recorded (its rtdose_notes column) - each once
    result = add_warnings(result, list(dict.fromkeys(
        [n for table in (radiomics, dose) if table is not None for n in recorded_review_notes(table)]
        + stale_table_notes(scene, radiomics, dose) + list(pred.attrs.get("warnings", [])))))
    # the top features as rp predict lists them (lungai.rp.explain.top_contributions): largest |value| first, never
    # a column the model does not use (dropped by its selection step: contribution 0) shown as a top contributor
    from lungai.rp.explain import top_contributions  # noqa: PLC0415

    tops = top_contributions(contrib.drop(columns="case").iloc[[0]], top)[0]
    feats = [f for f, _ in tops]
    table = pd.DataFrame({"feature": feats,
                          "value": [str(row[f].iloc[0]) if f in row.columns else "" for f in feats],
                          "contribution": [v for _, v in tops]})
    node = mrml.table_node_from_dataframe(scene, result, f"{case} RP risk", node=table_node)
    cnode = mrml.table_node_from_dataframe(scene, table, f"{case} RP contributions", node=contributions_node)
    from lungai.scene.nodes import record_measured_outlines, recorded_measured_outlines  # noqa: PLC0415

    # the outlines its tables measured: said once a segment is edited ... (nodes.refresh_confidence_tables)
    record_measured_outlines(node, recorded_measured_outlines(*[t for t in (radiomics, dose) if t is not None]))
    return node, cnode


# ---------------------------------------------------------------- the risk table of a panel run (Multimodal Predict)
RP_MADE_BY = "lungai rp predict"     # lungai.scene.nodes.MADE_BY_TAG of the risk tables Multimodal Predict makes
_TABLE_SUFFIXES = (" radiomics", " dose features")   # Lung Radiomics' tables: "<CT> radiomics", "<CT> dose features"


def risk_source_volume(radiomics, dose=None):
    """The CT whose results the radiomics table (else the dose table) holds (Lung Radiomics links them:
    :func:`lungai.scene.nodes.source_volume_id`); None when unknown or no longer in the scene."""
    from lungai.scene.nodes import source_volume_id

    for table in (radiomics, dose):
        if table is None or not hasattr(table, "GetScene"):
            continue
        scene, volume_id = table.GetScene(), source_volume_id(table)
        node = scene.GetNodeByID(volume_id) if scene is not None and volume_id else None
        if node is not None:
            return node
    return None


def _segmentation_name(table) -> str:
    """The name of the segmentation a Lung Radiomics table was computed from
    (:func:`lungai.scene.nodes.source_segmentation_name`: also of one deleted since), "" when unknown."""
    from lungai.scene.nodes import source_segmentation_name

    return source_segmentation_name(table) if table is not None and hasattr(table, "GetAttribute") else ""


def risk_tables_problem(radiomics, dose) -> str | None:
    """Why a radiomics table and a dose table are not one risk row's inputs, else None: Lung Radiomics linked them
    to two different CTs (:func:`lungai.scene.nodes.source_volume_id`), or to two segmentations of the CT (the AI's
    and the clinical contours: each run keeps its own tables, :func:`lungai.scene.nodes.volume_table`) - by their
    node IDs, else, a segmentation deleted since, by their names (:func:`lungai.scene.nodes.source_segmentation_name`)."""
    from lungai.scene.nodes import source_segmentation_id, source_volume_id

    if radiomics is None or dose is None:
        return None
    a, b = (source_volume_id(t) for t in (radiomics, dose))
    if a and b and a != b:
        return (f"The radiomics table '{radiomics.GetName()}' and the dose table '{dose.GetName()}' belong to "
                "different CTs: choose the tables of one patient")
    a, b = (source_segmentation_id(t) for t in (radiomics, dose))
    if not (a and b):   # a segmentation deleted since (MRML dropped the reference): compared by its stored name
        a, b = (_segmentation_name(t) for t in (radiomics, dose))
    if a and b and a != b:
        return (f"The radiomics table '{radiomics.GetName()}' (segmentation '{_segmentation_name(radiomics)}') and "
                f"the dose table '{dose.GetName()}' (segmentation '{_segmentation_name(dose)}') were computed from "
                "different segmentations of the CT: choose the tables of one segmentation")
    return None


def risk_inputs_note(radiomics, dose) -> str:
    """Which tables a risk was computed from, with the segmentation of each (Lung Radiomics makes one table per
    segmentation of a CT): "Inputs: radiomics table 'A radiomics (RTSTRUCT)' (segmentation 'RTSTRUCT'); ...";
    "" with no table."""
    parts = []
    for what, table in (("radiomics table", radiomics), ("dose table", dose)):
        if table is not None and hasattr(table, "GetName"):
            seg = _segmentation_name(table)
            parts.append(f"{what} '{table.GetName()}'" + (f" (segmentation '{seg}')" if seg else ""))
    return "Inputs: " + "; ".join(parts) if parts else ""


def risk_case(radiomics, dose=None) -> str:
    """The ``case`` of a risk row: the patient's CT - its node name (:func:`risk_source_volume`), as the ``case``
    of the dose-feature table - else the table's name without Lung Radiomics' suffix (" radiomics" /
    " dose features", and " (<segmentation>)" after it), else "patient"; never the table's name "LUNG1-002 radiomics".  Spaces around the name are
    stripped: a CT named only spaces gives "patient" (not the table "   RP risk")."""
    from lungai.scene.nodes import NAMED_AFTER_SEGMENTATION_ATTRIBUTE

    volume = risk_source_volume(radiomics, dose)
    if volume is not None:
        return (volume.GetName() or "").strip() or "patient"
    for table in (radiomics, dose):
        name = (table.GetName() or "").strip() if table is not None and hasattr(table, "GetName") else ""
        if name and table.GetAttribute(NAMED_AFTER_SEGMENTATION_ATTRIBUTE) == "1" and name.endswith(")"):
            # "<CT> radiomics (<segmentation>)": a table of another segmentation of the CT (nodes.volume_table)
            cut = max(name.rfind(s + " (") + len(s) if name.rfind(s + " (") > 0 else -1 for s in _TABLE_SUFFIXES)
            name = name[:cut] if cut > 0 else name
        if name:
            suffix = next((s for s in _TABLE_SUFFIXES if name.endswith(s) and len(name) > len(s)), "")
            case = name[:len(name) - len(suffix)].strip()
            if case:
                return case
    return "patient"


def risk_table(scene, df: pd.DataFrame, case: str, volume_node=None, node=None):
    """The table node "<case> RP risk" of a prediction row ``df``, tagged :data:`RP_MADE_BY` and, with the CT
    ``volume_node``, linked to it (:func:`lungai.scene.nodes.volume_table`).  ``node`` (the panel's current output)
    is updated only when a risk run made it (a table of the user's picked as output is never written into), for
    this same patient (same CT; without a CT, the same ``case`` and no CT link) and the user has not renamed it
    (:func:`lungai.scene.nodes.own_table`); otherwise this patient's own risk table in the scene is updated (made
    by a risk run for this CT, or without a CT for this ``case``, not renamed: :func:`lungai.scene.nodes.
    find_volume_table` - back to patient A after B, or with no output chosen, A's table, not another one), else a
    new node is made, so that patient B's risk never overwrites patient A's."""
    from lungai.scene import nodes

    name = f"{case} RP risk"
    if nodes.node_made_by(node) != RP_MADE_BY:
        node = None
    if volume_node is not None:
        return nodes.volume_table(scene, df, name, volume_node, node=node, made_by=RP_MADE_BY)
    if node is not None and (nodes.source_volume_id(node) or
                             [row.get("case") for row in nodes.table_rows(node)] != [str(case)]):
        node = None
    node = nodes.named_table(scene, df, name, node=node or nodes.find_volume_table(scene, None, name, RP_MADE_BY,
                                                                                 case=case))
    return nodes.mark_node_made_by(node, RP_MADE_BY)
