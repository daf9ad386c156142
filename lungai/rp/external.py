"""``validate_rp``: external validation of a locked model on a new cohort (no refitting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lungai.errors import InputError, counted, say_notes
from lungai.rp import model_io, plots
from lungai.rp.card import VALIDATE_OUTPUTS, VALIDATE_OWNER, VALIDATE_REQUIRED, require_card_fields
from lungai.rp.checks import check_one_row_per_patient, check_threshold, id_column_of, outcome_vector, \
    outcome_words, patients_table, table_paths
from lungai.rp.cohort import SYNTHETIC_NOTE
from lungai.rp.metrics import calibration_in_the_large, evaluate
from lungai.rp.model_io import load_model
from lungai.rp.predict import synthetic_model
from lungai.rp.prepare import case_ids, effective_dose_warning, empty_features, empty_features_warning, \
    imputed_and_out_of_range, lung_notes_warning, lungs_cut_warning, model_features, no_dose_warning, settings_warnings, \
    tumour_notes_warning, tumour_review_warning, confidence_caveat_warning
from lungai.rp.uncertainty import NO_INTERVAL, has_interval, risk_with_interval_and_members, widened_rows

OWNER = VALIDATE_OWNER   # its marker and its output names (lungai.rp.card: checked by the CLI before its imports)
HONEST = ("the nested-CV figures of `lungai rp train` (model_card.json metrics_nested_cv) are the honest estimate on "
          "the training cohort itself")


def external_rows(card: dict, df: pd.DataFrame, include_training: bool = False) -> tuple:
    """(mask of the rows to score, record, notes): the rows of patients the locked model was trained on (the salted
    ID hashes of its card, :func:`lungai.model_files.external_patients`) are left out of an external validation.
    Each note an :class:`lungai.errors.InputCheckNote` (:class:`lungai.errors.InputNote` when the training patients
    are scored) with its ``without_ids`` form (:func:`lungai.model_files.external_notes`, as ``stage validate``)."""
    from lungai.model_files import external_notes, external_patients

    col = id_column_of(df, card["roles"].get("id_column"))
    unchecked = None
    if card.get("training_patients", False) is None:      # recorded as none: the training table had no ID column
        unchecked = ("the model's training table had no patient ID column (case / patient_id), so the model records "
                     "no training patients; make sure none of these patients was in its training cohort")
    elif col is None:
        unchecked = ("the validation table has no patient ID column (case / patient_id); make sure none of these "
                     "patients was in the model's training cohort")
    from lungai.rp.checks import patient_id_rows

    ids = patient_id_rows(df, card["roles"].get("id_column")) if col is not None else \
        [(f"row{i + 1}",) for i in range(len(df))]     # every ID column: a row overlaps when any of its IDs does
    kept, record, notes = external_patients(card, ids, include_training, train="`lungai rp train`", honest=HONEST,
                                            unchecked=unchecked)
    keep = set(kept)
    return np.array([i in keep for i in ids], dtype=bool), record, external_notes(notes, record, ids)


def validate_rp(model_dir, table, output_dir=None, outcome: str | None = None, threshold: float | None = None,
                seed: int = 0, allow_other_radiomics_settings: bool = False,
                include_training_patients: bool = False) -> dict:
    """Metrics of the locked model on ``table`` (which must hold the outcome column).

    Nothing is refitted.  With ``output_dir``: external_metrics.json, external_roc.png,
    external_calibration.png and external_predictions.csv (one row per patient, with the same
    ``case`` column as ``predict_rp``) are written there.  The patients the model was trained on (salted ID hashes
    in its card) are left out, with a note (:func:`external_rows`; every patient a training patient: an
    :class:`InputError`); ``include_training_patients`` scores them, and the result says it is not external.  These
    notes are warned (InputNotes: the CLI says them on stderr) and kept in ``overlap_notes`` and ``warnings``; so are
    the run's other warnings (radiomics settings - kept in ``radiomics_settings_warnings`` -, too few events,
    model features empty in every row (also listed in ``features_empty_in_every_row``), calibration in the large,
    near-repeated rows, tumours to review, lungs cut, no dose, EFFECTIVE dose: those naming
    patients with their ``without_ids`` form).  Its steps are shown on a progress bar ("rp validate"), the model
    file's reading and the risks while they run (QA rp68: a random forest's model.skops read for 49 s without a
    word).
    """
    from lungai.progress import task

    with task("rp validate", 3 if output_dir is not None else 2) as bar:
        return _validate(model_dir, table, output_dir, outcome, threshold, seed, allow_other_radiomics_settings,
                         include_training_patients, bar)


def _validate(model_dir, table, output_dir, outcome, threshold, seed, allow_other_radiomics_settings,
              include_training_patients, bar) -> dict:
    """:func:`validate_rp`'s work, its steps on ``bar``."""
    from lungai.io.outputs import check_output_owner, claimed_output_folder
    from lungai.progress import waiting

    check_threshold(threshold)
    if output_dir is not None:
        check_output_owner(output_dir, OWNER, VALIDATE_OUTPUTS)   # before any work: a user's files are never replaced
    bundle, card = load_model(model_dir, threshold_given=threshold is not None, progress=bar)
    bar.update(1, "model loaded")
    require_card_fields(card, Path(model_dir) / model_io.CARD_FILE,   # (read_card: the fields prediction needs)
                        VALIDATE_REQUIRED + (() if outcome else ("outcome",)), "'lungai rp validate' needs it")
    id_column = card["roles"].get("id_column")
    # never-smokers: 0 pack-years, as trained (said when the model uses the pack-years)
    df = patients_table(table, id_column, "the validation table", used=card["features"])
    repeated = check_one_row_per_patient(df, id_column, "the validation table", "a patient counted twice would weigh "
                              "twice in the metrics, and the predictions per patient would be ambiguous", every_id=True,
                              columns=list(card["features"]) + [outcome or card["outcome"]])
    outcome = outcome or card["outcome"]
    y = outcome_vector(df, outcome)
    # the settings first: other settings give other rad_* names, which must not read as misspelt columns
    warnings = [w for w in settings_warnings(df, card, "validation table", allow_other_radiomics_settings,
                                             sources=table_paths(table)) if w]
    X = model_features(df, card, "validation table")
    # the model's own training patients: left out of an external validation (or kept, labelled not external); the
    # table is checked as given first (its row numbers), the rest is scored
    keep, overlap, overlap_notes = external_rows(card, df, include_training_patients)
    import warnings as python_warnings

    for note in overlap_notes:     # said (the CLI: "note: ..." / "warning: ..." on stderr) and kept with the warnings
        python_warnings.warn(note)                                              # of external_metrics.json below
    overlap_notes = [str(note) for note in overlap_notes]
    if not keep.all():
        df, X, y = df[keep], X[keep], y[keep]
    imputed, outside = imputed_and_out_of_range(X, card)
    # a model feature empty in every row: imputed alike for all, the metrics not of the model as trained (said by
    # name; QA rpfollow70: only "200 patients with imputed features")
    empty = empty_features_warning(X, "validation table", "the metrics are those of the model without "
                                   "{it}, not of the model as trained")
    risk, low, high, members_low, members_high = waiting(bar, f"risks of {counted(len(X), 'patient')}",
                                                         risk_with_interval_and_members, bundle, X)
    # an interval widened to hold the risk (outside the bootstrap members' range): said in its row, as rp predict's
    # warnings say it (lungai.rp.uncertainty.WIDENED_INTERVAL; QA rp70: external_predictions.csv said nothing of it)
    widened = widened_rows(risk, members_low, members_high)
    thr = card["threshold"] if threshold is None else float(threshold)
    result = evaluate(y, risk, thr, seed=seed, chance_fix="validation")
    bar.update(1, "risks and metrics")
    n_review, review = tumour_review_warning(df, id_column, "validation table", "and the metrics count them as they are")
    _, cut = lungs_cut_warning(df, id_column, "validation table", "and the metrics count them as they are")
    _, lung_notes = lung_notes_warning(df, id_column, "validation table", "and the metrics count them as they are")
    _, tumour_notes = tumour_notes_warning(df, id_column, "validation table", "and the metrics count them as they are")
    n_no_dose, no_dose = no_dose_warning(df, X, card["roles"]["roles"], id_column, "validation table",
                                         "and the metrics count them as they are")
    _, effective = effective_dose_warning(df, id_column, "validation table", "and the metrics count them as they are")
    _, caveat = confidence_caveat_warning(df, id_column, "validation table", "and the metrics count them as they are")
    rule = card.get("threshold_rule") if threshold is None else "given"
    large, off = calibration_in_the_large(y, risk, f"{thr:g}" + (f" ({rule})" if rule else ""))
    result |= large       # mean predicted risk against the observed rate: a centre with another outcome rate
    # the run's other warnings: said as the overlap notes (InputNotes: the CLI's "warning: ..." on stderr; a note
    # naming patients with its form without their IDs, lungai.errors.PatientsText) - the settings' first - and kept
    # (QA rpvalidate65: printed on stdout, not InputNotes)
    # a model saved without bootstrap members: empty risk_low / risk_high, said why and the fix (as rp predict's
    # NO_INTERVAL; QA predictlast66: external_predictions.csv had empty cells without a word)
    no_interval = None if has_interval(bundle) else NO_INTERVAL
    others = result["warnings"] + [w for w in (empty, off, repeated, review, tumour_notes, caveat, cut, lung_notes,
                                              no_dose, effective,
                                              no_interval)
                                   if w]
    say_notes(sorted(set(warnings)) + others)
    # the overlap notes among the run's warnings (a local report: the IDs named, as stage validate's metrics.json)
    result["warnings"] = overlap_notes + [str(w) for w in others]
    result |= {"model": f"{card['feature_set']}/{card['model']}", "model_dir": str(model_dir),
               "table": ", ".join(str(p) for p in table_paths(table)) or "DataFrame",
               "nested_cv_auc_at_training": card["metrics_nested_cv"]["auc"],
               "n_patients_with_imputed_features": sum(bool(v) for v in imputed),
               "features_empty_in_every_row": empty_features(X),
               "n_patients_out_of_training_range": sum(bool(v) for v in outside),
               "n_patients_tumour_review": n_review,
               "n_patients_no_dose": n_no_dose,
               "n_patients_interval_widened": sum(bool(w) for w in widened),
               "outcome_read_as": outcome_words(df, outcome) or "0/1",    # an outcome in words, said back
               "radiomics_settings_warnings": sorted(set(warnings)),
               "synthetic_model": synthetic_model(card),
               **overlap, "overlap_notes": overlap_notes}   # trained on a synthetic cohort: every risk is illustrative
    if output_dir is not None:
        out = Path(output_dir)
        written = {(out / n).resolve() for n in VALIDATE_OUTPUTS}
        if any(p.resolve() in written for p in table_paths(table)):
            raise InputError(f"an input table is in {out} under a name validate writes", "choose another output directory")
        with claimed_output_folder(out, OWNER, VALIDATE_OUTPUTS, inputs=table_paths(table)):   # + records them
            key = result["model"]
            kind = "External validation" if overlap["external"] is not False else \
                "NOT external (includes training patients):"
            plots.roc_plot({key: (y, risk, f"AUC {result['auc']:.2f}")}, out / "external_roc.png", f"{kind} ROC")
            plots.calibration_plot({key: (y, risk)}, out / "external_calibration.png", f"{kind} calibration")
            pred = pd.DataFrame({"case": case_ids(df, card["roles"].get("id_column")), "outcome": y, "risk": risk,
                                 "risk_low": low, "risk_high": high, "imputed": imputed, "out_of_range": outside})
            if result["synthetic_model"]:      # as rp predict: every risk of such a model says so in its row
                pred.insert(1, "illustrative", SYNTHETIC_NOTE)
            # each row says why its risk_low / risk_high are empty, or that its interval was widened to hold the risk
            notes = [no_interval] * len(pred) if no_interval else widened
            if any(notes):
                pred.insert(pred.columns.get_loc("risk_high") + 1, "interval_note", notes)
            from lungai.radiomics.csv_output import write_csv

            # as rp predict's table: a temporary file, then renamed - a full disk leaves no partial table, and the
            # error names the file (QA rpfollow68: DataFrame.to_csv straight into its name)
            write_csv(pred, out / "external_predictions.csv", index=True, index_label="row", float_format="%.5g")
            model_io.write_json(out / "external_metrics.json", result)
        bar.update(1, "figures and tables written")
    return result
