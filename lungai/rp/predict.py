"""``predict_rp``: risk, interval and top contributing features for new patients."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from lungai.errors import counted
from lungai.io.tables import NEVER_SMOKER_ATTR
from lungai.progress import task, waiting
from lungai.rp import plots
from lungai.rp.cohort import SYNTHETIC_NOTE
from lungai.rp.checks import check_one_row_per_patient, patients_table, table_paths
from lungai.rp.explain import baseline_risk, old_baseline, old_baseline_note, shapley_values, top_contributions
from lungai.rp.inputs import check_output_not_input
from lungai.rp.model_io import load_model
from lungai.rp.prepare import case_ids, imputed_and_out_of_range, model_features, row_table_warnings, \
    settings_warnings, table_warnings, tumour_review_rows, unflagged_caveat_rows
from lungai.rp.uncertainty import NO_INTERVAL, has_interval, risk_with_interval_and_members, widened_rows
# what a card says (light: the Slicer panel's model line says them before the prediction packages are there)
from lungai.rp.card import prediction_header, rp_endpoint, synthetic_model  # noqa: F401
from lungai.rp.card import PREDICT_OWNER
from lungai.rp.card import OLD_BASELINE_ROW   # a row's warning of an older random forest's contributions

# a row's warning of confidence_caveat_warning (lungai.rp.prepare), without its fix
CAVEAT_ROW = ("automatic tumour not flagged for review by a model whose confidence has a known caveat "
              "(tumour_confidence_caveat): it may be partly missed")
OWNER = PREDICT_OWNER   # its marker beside the files it wrote (lungai.rp.card: checked by the CLI before its imports)


def with_threshold(df: pd.DataFrame, card: dict) -> pd.DataFrame:
    """``df`` (risk rows: case, risk, risk_low, risk_high, high_risk ...) with the model's high-risk ``threshold``
    (high_risk = risk >= it) after ``risk_high`` and its ``threshold_rule`` (the model card's: "training prevalence
    (default)", "given" ...; "not recorded" for an older card) after it - the one rule of ``rp predict``'s CSV and
    Multimodal Predict's risk table (:func:`lungai.scene.rp.with_model_columns`): which cut-off called a row HIGH
    RISK travels with it, to ``dicom-export --rp``'s SR (rp_threshold) and any later reader (QA rpcsv63: the CSV had
    high_risk but not the threshold).  Columns of those names already in ``df`` are replaced."""
    df = df.drop(columns=[c for c in ("threshold", "threshold_rule") if c in df.columns])
    at = list(df.columns).index("risk_high") + 1 if "risk_high" in df.columns else len(df.columns)
    df.insert(at, "threshold", float(card["threshold"]))
    df.insert(at + 1, "threshold_rule", str(card.get("threshold_rule") or "not recorded"))
    return df


# the in-sample marks of rp predict (lungai.model_files.in_sample_patients: one rule for stage and rp predict)
RP_IN_SAMPLE = {"fitted": "outcome", "honest": "the nested-CV risk in `lungai rp train`'s cv_predictions.csv",
                "train": "`lungai rp train`", "column": "warnings"}


def in_sample_rows(card: dict, df: pd.DataFrame) -> tuple:
    """(flags, notes per row, warning) of :func:`lungai.model_files.in_sample_patients` for the rows of ``df``
    predicted by the locked model of ``card``: a row is a training patient when any of its IDs (every ID column,
    :func:`lungai.rp.checks.patient_id_rows`) was; it cannot be said for a model whose training table had no ID column
    or a table without one."""
    from lungai.model_files import in_sample_patients
    from lungai.rp.checks import patient_id_rows

    ids = patient_id_rows(df, card["roles"].get("id_column"))
    unchecked = None
    if card.get("training_patients", False) is None:      # recorded as none: the training table had no ID column
        unchecked = "the model's training table had no patient ID column (case / patient_id)"
    elif ids is None:
        unchecked = "the patients table has no patient ID column (case / patient_id)"
    ids = ids if ids is not None else [(f"row{i + 1}",) for i in range(len(df))]
    flags, notes, warning = in_sample_patients(card, ids, unchecked=unchecked, **RP_IN_SAMPLE)
    return flags, [notes.get(i, "") for i in ids], warning


def say_pack_years_note(record, index, card: dict, flags) -> None:
    """The never-smoker pack-years note of the patients table (:func:`lungai.rp.checks.patients_table`'s ``record``
    of the rows ``index``, read with ``say`` False), for the model's features - not said where the model card's
    warning says the same of the same patients: each never-smoker read as 0 is a training patient (``flags``, of
    :func:`in_sample_rows`) and the card's line names the same count, columns and status words (``rp predict`` on
    the training table: QA stagenote67, "note: the patients table T: 20 patients ..." and then "warning: model card:
    the training table T: 20 patients ..."); the card's line, which ``rp predict`` says, then says it once.  Another
    table's note is said beside the card's line."""
    import warnings

    from lungai.errors import InputCheckNote
    from lungai.io.tables import never_smoker_note

    text = never_smoker_note(record, card["features"])
    if text is None:
        return
    used = {str(c) for c in card["features"]}
    rows = [r for col, filled in record["counts"] if str(col) in used for r, _ in filled]
    positions = pd.Index(index).get_indexer(rows)
    # no flags where it cannot be said which rows are training patients (a patients table, or the model's training
    # table, without an ID column: QA rp72, a TypeError traceback): the table's own note is said
    trained = flags is not None and all(p >= 0 and flags[p] is not None and bool(flags[p]) for p in positions)
    body = text[len(record["what"]) + 2:]       # the note without its "the patients table PATH: "
    if trained and any(str(w).endswith(f": {body}") for w in card.get("warnings") or []):
        return
    warnings.warn(InputCheckNote(text))


def predict_rp(model_dir, patients, output=None, top: int = 5, importance_png=None, seed: int = 0,
               protect=(), allow_other_radiomics_settings: bool = False,
               context: str = "cohort", model: tuple | None = None, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict RP risk for ``patients`` (CSV path or DataFrame).  ``model``: the (bundle, card) of
    :func:`~lungai.rp.model_io.load_model` of ``model_dir`` when the caller has loaded it already (``lungai demo``),
    else it is loaded here.

    Returns (predictions, contributions): one row per patient with ``case, risk, risk_low,
    risk_high, threshold, threshold_rule, high_risk`` (the model's threshold and its rule: :func:`with_threshold`;
    high_risk = risk >= threshold), ``endpoint`` (what the risk is of: :func:`rp_endpoint`'s short text), ``imputed``
    (features that were missing and imputed), ``out_of_range``
    (numeric features outside the training range, with the range), ``training_patient`` (True for a patient the
    model was trained on - its risk is in-sample, optimistic -, empty when that cannot be said: :func:`in_sample_rows`,
    said in one :class:`lungai.errors.InputNote`), ``warnings`` (radiomics settings other than the model's or
    unknown; a training patient's in-sample note; a random forest of an older model file's contributions measured
    against the training-mean patient; an interval widened to hold the risk,
    :data:`lungai.rp.uncertainty.WIDENED_INTERVAL`), ``baseline_risk`` (the risk at the mean log-odds of the training
    patients the contributions are measured against, :func:`lungai.rp.explain.baseline_risk`: + raises the risk above it)
    and ``top1_feature, top1_contribution, ...``;
    and the full table of Shapley values (log-odds, one column per feature).  Features computed with other
    radiomics settings than the model's are refused unless ``allow_other_radiomics_settings``.
    Writes ``output`` (CSV) and ``importance_png`` (mean |Shapley value| over these patients; .png, .svg or .pdf) when
    given.  ``pred.attrs["warnings"]``: the warnings about the whole table (:func:`lungai.rp.prepare.table_warnings`);
    ``pred.attrs["row_warnings"]``: per row, the items of its ``warnings`` cell as a list.  ``context``: "cohort" (a
    cohort's patients table), "patient" (one patient's row from Multimodal Predict) or "demo" (``lungai demo``'s
    patient): the fix the lungs-cut / no-dose warnings and the radiomics settings refusal give
    (:func:`lungai.rp.prepare.lungs_cut_warning`, :func:`lungai.rp.prepare.settings_warnings`).  ``progress``: the
    caller's bar (``rp predict``'s, which counted the model's loading) for its two steps, risk and interval and the
    Shapley values, else a bar of its own ("rp predict").
    """
    plots.check_figure_path(importance_png, "--importance-png")   # before any work
    if output is not None:                                        # before the model is read
        check_output_not_input(output, [*protect, *table_paths(patients)])
    bundle, card = model if model is not None else load_model(model_dir)
    id_column = card["roles"].get("id_column")
    # never-smokers: 0 pack-years, as trained (said when the model uses the pack-years)
    # (said below, once the table's training patients are known: not twice with the card's line on the same patients)
    df = patients_table(patients, id_column, "the patients table", used=card["features"], say=False)
    pack_years = df.attrs.get(NEVER_SMOKER_ATTR)
    check_one_row_per_patient(df, id_column, "the patients table", "the predictions are written per patient id, "
                              "so two rows with one id would be ambiguous")
    # the settings first: other settings give other rad_* names, which must not read as misspelt columns
    warnings = settings_warnings(df, card, "patients table", allow_other_radiomics_settings, context=context,
                                 sources=table_paths(patients))
    # a patient whose automatic tumour needs review (lungai cohort's tumour_review): said in its row, and summed up
    # ... or not flagged by a model whose confidence has a known caveat (cohort's tumour_confidence_caveat)
    row_items = [[w for w in (s, r and f"automatic tumour needs review ({r})", u and CAVEAT_ROW) if w]
                 for s, r, u in zip(warnings, tumour_review_rows(df), unflagged_caveat_rows(df))]
    X = model_features(df, card, "patients table")
    table_notes = table_warnings(df, card, context, X)   # for the whole table (printed), and in its rows' warnings
    row_items = [items + r for items, r in zip(row_items, row_table_warnings(df, card, X, joined=False))]
    # the model's own training patients: their risk is in-sample (optimistic), said in their rows and once
    flags, in_sample, in_sample_warning = in_sample_rows(card, df)
    say_pack_years_note(pack_years, df.index, card, flags)
    row_items = [items + [n] if n else items for items, n in zip(row_items, in_sample)]
    # each row's warnings as a list too (pred.attrs["row_warnings"]): a dose note can hold "; " itself (the EFFECTIVE
    # note), so the CSV's cell cannot be split back into them (QA demorisk58: the demo cut the note in two)
    # a random forest of an older lungai explained against the training-mean patient: said in its rows and once
    old_reference = old_baseline(bundle["pipeline"], bundle["baseline"])
    if old_reference:
        row_items = [items + [OLD_BASELINE_ROW] for items in row_items]
    if not has_interval(bundle):   # a model saved without bootstrap members: empty risk_low / risk_high, said why
        row_items = [items + [NO_INTERVAL] for items in row_items]    # and the fix in each row (QA stagefollow66)
    imputed, outside = imputed_and_out_of_range(X, card)
    # each step shown while it runs, its seconds counted (QA rp68: a random forest's Shapley values of 3 patients
    # stood 11 s on a loaded machine; its 30 bootstrap copies' risks too)
    with contextlib.nullcontext(progress) if progress is not None else task("rp predict", 2) as bar:
        risk, low, high, members_low, members_high = waiting(bar, "risk and interval",
                                                             risk_with_interval_and_members, bundle, X)
        bar.update(1, "risk and interval")
        contrib = waiting(bar, f"Shapley values of {counted(len(X), 'patient')}", shapley_values, bundle["pipeline"],
                          X, bundle["baseline"], seed=seed)
        bar.update(1, "Shapley values")
    # an interval widened to hold the risk (outside the bootstrap members' range): said in its row (QA rpfollow69)
    row_items = [items + [w] if w else items for items, w in zip(row_items, widened_rows(risk, members_low,
                                                                                           members_high))]
    warnings = ["; ".join(items) for items in row_items]
    base_risk = baseline_risk(bundle["pipeline"], bundle["baseline"])
    pred = pd.DataFrame({"case": case_ids(df, card["roles"].get("id_column")), "risk": risk,
                         "risk_low": low, "risk_high": high,
                         "high_risk": (risk >= card["threshold"]).astype(int),
                         # what the risk is of, in every row (as `illustrative` says a synthetic model's;
                         # QA rppredict62)
                         "endpoint": rp_endpoint(card)[0], "imputed": imputed,
                         "out_of_range": outside, "training_patient": flags, "warnings": warnings,
                         "baseline_risk": base_risk})
    for i, tops in enumerate(top_contributions(contrib, top)):
        for r, (name, value) in enumerate(tops, start=1):
            pred.loc[i, f"top{r}_feature"] = name
            pred.loc[i, f"top{r}_contribution"] = value
    pred = with_threshold(pred, card)    # the cut-off of high_risk, with its rule, in every row
    contrib.insert(0, "case", pred["case"].to_numpy())
    pred.attrs["warnings"] = table_notes   # for the whole table (rp predict prints them)
    pred.attrs["row_warnings"] = row_items  # each row's warnings cell, item by item
    if synthetic_model(card):        # a model of lungai.rp.make_cohort / rp synth: every risk says so in its row
        pred.insert(1, "illustrative", SYNTHETIC_NOTE)
    import warnings as python_warnings

    if in_sample_warning:
        python_warnings.warn(in_sample_warning)   # an InputNote (lungai.model_files.in_sample_patients)
    if old_reference:
        from lungai.errors import InputNote
        from lungai.rp.model_io import MODEL_FILE

        python_warnings.warn(InputNote(old_baseline_note(Path(model_dir or '') / MODEL_FILE, base_risk)))
    if output is not None:
        from lungai.radiomics.csv_output import write_csv

        write_csv(pred, output, any_suffix=True, float_format="%.5g")    # a full disk leaves no partial file
    if importance_png is not None:
        imp = contrib.drop(columns="case").abs().mean()
        plots.importance_plot(imp[imp > 0], importance_png,
                              f"RP risk: importance over {counted(len(df), 'patient')}")
    return pred, contrib
