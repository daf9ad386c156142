"""``train_rp``: nested-CV comparison of feature sets x models, then the locked model."""

from __future__ import annotations

import contextlib
import datetime as _dt
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sklearn

from lungai import __version__
from lungai.errors import InputCheckNote, InputError, InputNote, agree, counted
from lungai.io.tables import NEVER_SMOKER_ATTR, never_smoker_note, site_column_text, site_columns
from lungai.progress import task, waiting
from lungai.rp import model_io, plots
from lungai.rp.checks import check_events, check_not_constant, check_threshold, check_one_row_per_patient, \
    id_order, numeric_features, outcome_vector, outcome_words, patients_table, small_cohort_warnings, \
    table_paths, years_since_quitting_features, ROLE_IGNORE_FIX
from lungai.rp.cohort import SYNTHETIC_NOTE, SYNTHETIC_SOURCE, is_synthetic_cohort
from lungai.rp.card import TRAIN_OUTPUTS, TRAIN_OWNER, check_model_folder, final_choice_error, parse_choices, \
    written_by_rp_train
from lungai.rp.columns import CATEGORY_RULES, FEATURE_SETS, PREFIXES, ColumnRoles, abbreviation_warnings, infer_roles, \
    role_file_id
from lungai.rp.explain import EXACT_MAX_PLAYERS, N_PERMUTATIONS, background_rows, baseline_risk
from lungai.rp.metrics import ci_text, evaluate, fmt_calibration, small_sample_warnings
from lungai.rp.pipeline import MODEL_NAMES, MODELS
from lungai.rp.prepare import case_ids, effective_dose_warning, feature_summary, lung_notes_warning, \
    lungs_cut_warning, no_dose_warning, training_radiomics_settings, tumour_notes_warning, tumour_review_warning, \
    confidence_caveat_warning
from lungai.rp.uncertainty import RP_ENDPOINT, check_bootstrap_count, uncertainty_text  # what the interval is: the model card's uncertainty
from lungai.rp.validation import bootstrap_ensemble, fit_final, nested_cv, nested_selection, select_best


SELECTION_RULE = ("the feature set x model (and its hyper-parameters) with the highest inner-CV AUC, chosen "
                  "inside every outer fold from that fold's training patients only; the locked model is chosen "
                  "by the same rule on all patients")
SELECTED = "selected (nested)"

# rp train's output names, its marker and its check of -o (also made by the CLI with the arguments): lungai.rp.card
OUTPUT_FILES, OWNER = TRAIN_OUTPUTS, TRAIN_OWNER


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict
    chosen: str
    lines: list[str]     # what rp train prints; its warnings (metrics["warnings"]) it says as InputNotes


PART_PREFIX = {role: prefix + "*" for prefix, role in PREFIXES.items()}   # 'radiomic' -> 'rad_*'


def _site_text(what: str, sites: dict, outcome: str) -> str:
    """The warning of a site / hospital feature (:func:`lungai.io.tables.site_column_text`, lungai stage's text) with
    rp's fix: the role ignore in a role file."""
    return site_column_text(what, sites, f"the outcome {outcome!r}",
                            ROLE_IGNORE_FIX.format(", ".join(repr(str(c).strip()) for c in sites)))


def train_rp(table, outcome: str, model_dir, models="lr,rf", feature_sets=None, role_file=None,
             outer_folds: int = 5, inner_folds: int = 3, threshold: float | None = None, fast: bool = False,
             n_boot: int | None = None, final: str | None = None, seed: int = 0, overwrite: bool = False,
             make_plots: bool = True) -> TrainResult:
    """Train and validate RP models on ``table`` (CSV path or DataFrame) and lock the best one."""
    check_threshold(threshold)
    check_bootstrap_count(n_boot)      # 0 or 1: risk intervals of no width (the rule of rp train --bootstrap)
    inputs = table_paths(table)
    synthetic = is_synthetic_cohort(table, inputs)     # lungai.rp.make_cohort / rp synth: an illustrative model
    source = SYNTHETIC_SOURCE if synthetic else ", ".join(p.name for p in inputs) or "DataFrame"
    # never-smokers: 0 pack-years; said below, once the features are known (not for a column the run leaves out)
    df = patients_table(table, role_file_id(role_file), "the training table", say=False)
    pack_years = df.attrs.get(NEVER_SMOKER_ATTR)
    model_dir = Path(model_dir)
    given = [*inputs, *([role_file] if role_file else [])]    # none may be a model file (nor in the check again below)
    check_model_folder(model_dir, overwrite, given)
    models = parse_choices(models, MODELS, "model")
    y = outcome_vector(df, outcome)
    roles = infer_roles(df, outcome, role_file)
    # the quit year (empty for current and never-smokers alike) -> the years since quitting, as in lungai stage
    what = " ".join(["the training table", *([", ".join(map(str, inputs))] if inputs else [])])
    df, roles, quit_text = years_since_quitting_features(df, roles, what)
    if quit_text is not None:
        _warnings.warn(InputCheckNote(quit_text))
    repeated = check_one_row_per_patient(df, roles.id_column, f"the training table ({source})",
                              "a patient counted twice would be in the training and the test folds of the "
                              "cross-validation at once, and the figures would be optimistic", every_id=True,
                              columns=list(roles.roles) + [outcome])
    explicit = feature_sets is not None
    sets = parse_choices(feature_sets or list(FEATURE_SETS), FEATURE_SETS, "feature set")
    empty = [s for s in sets if not roles.features(s)]
    if empty and explicit:
        raise InputError(f"{agree(len(empty), 'feature set', 'feature sets')} {empty} "
                         f"{agree(len(empty), 'has', 'have')} no columns in this table",
                         "add clin_/dose_/rad_ columns or drop these sets from --feature-sets")
    sets = [s for s in sets if s not in empty]
    # a set with the same columns as one before it (no radiomic columns: 'all' is 'clinical_dosimetric') is fitted
    # once, under the first name, and said: its rows would repeat the other's and double the candidates
    same = {}
    for s in list(sets):
        twin = next((k for k in sets if k != s and sets.index(k) < sets.index(s)
                     and roles.features(k) == roles.features(s)), None)
        if twin is not None:
            same[s] = twin
            sets.remove(s)
    same_notes = [f"note: feature set {s!r} has the same columns as {twin!r} (no "
                  + "/".join(sorted(set(FEATURE_SETS[s]) - set(FEATURE_SETS[twin]))) + " columns in the table): "
                  f"fitted once, as {twin!r}" for s, twin in same.items()]
    # a set trained without part of its columns ('all' of a table without rad_ columns: the clinical + dosimetric
    # model under the name 'all') is said so, in the output and the metrics / model card
    partial = [f"feature set {s!r} has no {' or '.join(roles.absent_parts(s))} columns in this table: its models "
               f"use only the {' and '.join(r for r in FEATURE_SETS[s] if r not in roles.absent_parts(s))} "
               f"features (add {', '.join(PART_PREFIX[r] for r in roles.absent_parts(s))} columns, or a role file, "
               f"for the full set)" for s in sets if roles.absent_parts(s)]
    # the features in their canonical order (role, then name: lungai.rp.columns.canonical_order, as infer_roles
    # gives them), not the table's: a random forest draws features by position; the card saves this order
    wanted = {c for s in sets for c in roles.features(s)}
    all_features = [c for c in roles.roles if c in wanted]
    if (text := never_smoker_note(pack_years, all_features)) is not None:     # a feature: said, with the fix
        _warnings.warn(InputCheckNote(text))
    if sites := site_columns(df, all_features):      # a site / hospital feature: said as lungai stage says it
        _warnings.warn(InputNote(_site_text(what, sites, outcome)))
    X_all = numeric_features(df, roles, all_features)
    check_events(y, outer_folds, inner_folds)   # before the constant columns: too few patients make every one so
    check_not_constant(X_all)
    training_radiomics_settings(df, all_features, inputs)  # refuses a table mixing radiomics settings early
    order = id_order(df, roles.id_column)   # the folds do not depend on the tables' order or their rows' order
    df, X_all, y = df.iloc[order].reset_index(drop=True), X_all.iloc[order].reset_index(drop=True), y[order]
    warnings = partial + small_cohort_warnings(y, len(all_features)) \
        + abbreviation_warnings(X_all, [c for c in roles.categorical if c in X_all.columns])   # 'M' and 'Male'
    n_review, review = tumour_review_warning(df, roles.id_column, "training table",
                                             "and the model is trained on them as they are")
    _, cut = lungs_cut_warning(df, roles.id_column, "training table", "and the model is trained on them as they are")
    n_lung_notes, lung_notes = lung_notes_warning(df, roles.id_column, "training table",
                                                  "and the model is trained on them as they are")
    n_tumour_notes, tumour_notes = tumour_notes_warning(df, roles.id_column, "training table",
                                                        "and the model is trained on them as they are")
    n_no_dose, no_dose = no_dose_warning(df, X_all, roles.roles, roles.id_column, "training table",
                                         "and the model is trained on them as they are")
    _, effective = effective_dose_warning(df, roles.id_column, "training table",
                                          "and the model is trained on them as they are")
    _, caveat = confidence_caveat_warning(df, roles.id_column, "training table",
                                          "and the model is trained on them as they are")
    warnings += [w for w in (repeated, review, tumour_notes, caveat, cut, lung_notes, no_dose, effective)
                 if w]     # repeated: near-repeated rows
    threshold_rule = "given" if threshold is not None else "training prevalence (default)"
    if threshold is None:
        threshold = round(float(y.mean()), 3)
    n_boot = n_boot if n_boot is not None else (10 if fast else 30)
    combos = [(s, m) for s in sets for m in models]
    if final is not None and final not in {f"{s}/{m}" for s, m in combos}:
        raise final_choice_error(final, combos)

    results, oof, cvs = {}, {}, {}
    candidates = [final] if final else [f"{s}/{m}" for s, m in combos]
    with contextlib.ExitStack() as claim:  # the model folder, claimed once trained (claimed_output_folder)
        # the bar stays open until the model file is written (it is closed after the claim of the folder): model.skops
        # of a random forest took 35 s of CPU (195 s on a loaded machine) after the bar had closed on "plots" (QA rp68)
        bar = claim.enter_context(task("rp train", len(combos) * outer_folds + len(candidates) + n_boot + 2))
        for s, m in combos:
            X = X_all[roles.features(s)]
            cats = [c for c in roles.categorical if c in X.columns]
            key = f"{s}/{m}"
            cvs[key] = nested_cv(X, y, m, cats, outer_folds, inner_folds, seed, fast, progress=bar, label=key)
            oof[key] = cvs[key]["oof"]
            results[key] = evaluate(y, oof[key], threshold, seed=seed) | {"params_per_fold": cvs[key]["params"],
                                                                          "inner_auc_per_fold": cvs[key]["inner_auc"]}
        selection = None
        if final is None:  # the choice itself is cross-validated (nested), so its AUC is not the max over choices
            sel = nested_selection(cvs, y, outer_folds, seed)
            selection = evaluate(y, sel["oof"], threshold, seed=seed) | {
                "rule": SELECTION_RULE, "chosen_per_fold": sel["chosen_per_fold"]}
            oof[SELECTED] = sel["oof"]
        fits = {}
        for key in candidates:  # the locked model: the same rule on all patients
            s, m = key.split("/")
            X = X_all[roles.features(s)]
            fits[key] = fit_final(X, y, m, [c for c in roles.categorical if c in X.columns], inner_folds, seed, fast,
                                  progress=bar, label=f"refit {key} on all patients")
            bar.update(1, f"refit {key} on all patients")
        chosen = final or select_best({k: f[2] for k, f in fits.items()})
        pipe, params, _ = fits[chosen]
        s, m = chosen.split("/")
        X = X_all[roles.features(s)]
        cats = [c for c in roles.categorical if c in X.columns]
        del fits
        ensemble = bootstrap_ensemble(pipe, X, y, n_boot, seed, progress=bar)
        baseline = background_rows(pipe, X, seed)   # the explanation's background: training patients (explain.py)
        base_risk, mean_risk = baseline_risk(pipe, baseline), float(pipe.predict_proba(X)[:, 1].mean())
        from lungai.io.outputs import claimed_output_folder, record_outputs

        check_model_folder(model_dir, overwrite, given)   # again: the folder may have changed while training
        if written_by_rp_train(model_dir):               # an earlier version's model folder: rp train's own
            record_outputs(model_dir, OWNER, [n for n in OUTPUT_FILES if (model_dir / n).is_file()])
        # no stale file of a run before (its recorded ones); another run into the folder is refused meanwhile,
        # each file is stamped as it lands (a killed run's too) and all are recorded when the block ends
        claim.enter_context(claimed_output_folder(model_dir, OWNER, OUTPUT_FILES))
        figures = []
        if make_plots:
            curves = {k: (y, p, f"AUC {(results.get(k) or selection)['auc']:.2f}") for k, p in oof.items()}
            figures.append(plots.roc_plot(curves, model_dir / "roc.png", "Nested-CV ROC").name)
            figures.append(plots.calibration_plot({k: (y, p) for k, p in oof.items()},
                                                  model_dir / "calibration.png", "Nested-CV calibration").name)
        bar.update(1, "plots")

        from lungai.radiomics.csv_output import write_csv

        write_csv(pd.DataFrame({"case": case_ids(df, roles.id_column), "outcome": y}
                               | {f"risk_{k.replace('/', '_')}": p for k, p in oof.items()}),
                  model_dir / "cv_predictions.csv", index=True, index_label="row")   # a full disk leaves no partial file
        # The figure reported for the locked model: the nested selection procedure's (its choice included),
        # or, for a combination fixed in advance with --final, that combination's own nested CV.
        honest = selection if selection is not None else results[chosen]
        warnings += [w for w in honest["warnings"] if w not in small_sample_warnings(y)]
        metrics = {"outcome": outcome, "n": int(len(y)), "events": int(y.sum()), "threshold": threshold,
                   "validation": f"nested stratified CV: {outer_folds} outer x {inner_folds} inner folds, seed {seed}",
                   "results": results, "selection": selection, "chosen": chosen,
                   "chosen_by": "given with --final (its own nested-CV performance)" if final else SELECTION_RULE,
                   "chosen_auc": honest["auc"], "chosen_auc_ci95": honest["auc_ci95"], "figures": figures,
                   "feature_sets_same_as": same, "warnings": warnings}
        card = {
            "format": model_io.FORMAT, "name": "SlicerLungAI radiation-pneumonitis risk model",
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "lungai_version": __version__, "sklearn_version": sklearn.__version__,
            "outcome": outcome, "outcome_read_as": outcome_words(df, outcome) or "0/1",   # words said back
            "feature_set": s, "model": m, "model_name": MODEL_NAMES[m],
            "hyperparameters": params, "features": list(X.columns), "roles": roles.to_json(),
            "categories": {c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in cats},
            "category_rules": dict(CATEGORY_RULES),      # how rp predict / validate read the categories again
            "training_data": {"source": source, "synthetic": synthetic, "n": int(len(y)), "events": int(y.sum()),
                              "prevalence": float(y.mean()), "ignored_columns": roles.ignored,
                              "n_tumour_review": n_review,   # rows whose automatic tumour needs review (cohort)
                              "n_tumour_notes": n_tumour_notes,   # rows whose tumour may leave out a GTV (cohort)
                              "n_lung_notes": n_lung_notes,  # rows whose lungs may not be the whole lungs (cohort)
                              "n_no_dose": n_no_dose,        # rows with every dosimetric feature empty (imputed)
                              "features": feature_summary(X, cats)},
            # the training patients as salted hashes of their IDs (no ID in plain text): rp validate leaves them out
            # of an external validation; None: the table had no patient ID column (nothing to record)
            "training_patients": training_patients_of(df, roles.id_column),
            "metrics_nested_cv": {k: v for k, v in honest.items()
                                  if k not in ("params_per_fold", "inner_auc_per_fold", "chosen_per_fold", "rule")},
            # the run's warnings, each naming patients in its form without their IDs (lungai.errors.PatientsText:
            # the card keeps no plain ID - QA rpvalidate65: "tumour_review, e.g. P1, P2" was kept as it was said)
            "warnings": [getattr(w, "without_ids", None) or w for w in warnings]
            # ... and how the training data were read where the model uses it: a never-smoker's missing pack-years
            # as 0 (rp predict and the Slicer panel show the card's warnings; QA predictfollow67)
            + [t for t in [never_smoker_note(pack_years, X.columns), quit_text] if t]
            # ... and a site / hospital column the locked model uses (rp predict says it)
            + ([_site_text(what, used, outcome)] if (used := site_columns(df, X.columns)) else []),
            "metrics_source": ("nested selection: " + SELECTION_RULE) if selection is not None
                              else f"nested CV of {chosen} (fixed in advance with --final)",
            "comparison_auc": {k: [round(v["auc"], 3)] + [None if x is None else round(x, 3) for x in v["auc_ci95"]]
                               for k, v in results.items()},
            "radiomics_settings": training_radiomics_settings(df, list(X.columns), inputs),
            "threshold": threshold, "threshold_rule": threshold_rule,
            "uncertainty": uncertainty_text(n_boot, RP_ENDPOINT if synthetic else outcome), "n_bootstrap": n_boot,
            "explanation": f"Shapley values in log-odds against {counted(len(baseline), 'training patient')} (the "
                           f"background: one drawn at random, seed {seed}, from each of as many equal strata of the "
                           "training patients' predicted log-odds; the values against each averaged) "
                           + ("(exact, linear model)" if m == "lr" else
                              f"(exact up to {EXACT_MAX_PLAYERS} model columns, else captum ShapleyValueSampling, "
                              f"{N_PERMUTATIONS} permutations)")
                           + f": they add up to the patient's log-odds minus the background's mean log-odds, whose "
                             f"risk (baseline_risk) is {base_risk:.3f} (mean predicted risk of the training patients "
                             f"{mean_risk:.3f}): + raises the risk above the baseline risk, - lowers it",
            "baseline_risk": base_risk,
            "seed": seed, "fast": fast,
            "intended_use": "research: risk of the outcome for patients like the training cohort; not for clinical decisions",
        }
        waiting(bar, f"writing the model file {model_io.MODEL_FILE} (the locked model and its "
                     f"{counted(n_boot, 'bootstrap copy', 'bootstrap copies')})", model_io.save_model, model_dir,
                {"pipeline": pipe, "bootstrap": ensemble, "baseline": baseline}, card, metrics, finish_on_stop=True)
        bar.update(1, f"model written: {model_io.MODEL_FILE}, {model_io.CARD_FILE}, {model_io.METRICS_FILE}")
    used = ColumnRoles(roles={c: r for c, r in roles.roles.items() if c in all_features},
                       categorical=roles.categorical, binary=roles.binary, how=roles.how)
    lines = ([card["outcome_read_as"]] if card["outcome_read_as"] != "0/1" else []) + [
        "features: role, type (how the type was decided; saved in model_card.json):", *used.describe()]
    if roles.ignored:
        lines.append(f"ignored columns: {', '.join(map(str, roles.ignored))}")
    rs = card["radiomics_settings"]
    lines.append(f"radiomics settings: {rs['id']} ({rs['note']})" if rs["id"] else f"radiomics settings: {rs['note']}")
    return TrainResult(model_dir, metrics, chosen, lines + same_notes + summary_lines(metrics)
                       + ([SYNTHETIC_NOTE] if synthetic else []))   # a synthetic cohort's model: illustrative


def training_patients_of(df: pd.DataFrame, id_column: str | None) -> dict | None:
    """The model card's ``training_patients`` (:func:`lungai.model_files.training_patients`: salted SHA-256 hashes of
    the IDs of every patient ID column of the table, :func:`~lungai.rp.checks.patient_id_rows`); None without an ID
    column."""
    from lungai.model_files import training_patients
    from lungai.rp.checks import patient_id_rows

    rows = patient_id_rows(df, id_column)
    return None if rows is None else training_patients(rows)


def summary_lines(metrics: dict) -> list[str]:
    """A printable table of the metrics of every feature set x model."""
    lines = [f"{'feature set/model':32s} {'AUC (95% CI)':20s} {'Brier':>6s} {'slope':>6s} {'int.':>6s} "
             f"{'sens':>5s} {'spec':>5s}"]
    def row(label: str, r: dict) -> str:
        return (f"{label:32s} {r['auc']:.3f} ({ci_text(r['auc_ci95'], 2, '').strip():9s})  "
                f"{r['brier']:6.3f} {fmt_calibration(r['calibration_slope']):>6s} "
                f"{fmt_calibration(r['calibration_intercept']):>6s} "
                f"{r['sensitivity']:5.2f} {r['specificity']:5.2f}")

    for key, r in metrics["results"].items():
        lines.append(row(key + (" *" if key == metrics.get("chosen") else ""), r))
    sel = metrics.get("selection")
    if sel:
        lines.append(row(f"{SELECTED} -> {metrics['chosen']}", sel))
        lines.append(f"  chosen per outer fold: {', '.join(sel['chosen_per_fold'])}")
    lines.append(f"threshold {metrics['threshold']}; n = {metrics['n']}, events = {metrics['events']}"
                 + ("; * = locked model" if metrics.get("chosen") else "")
                 + ("; the locked model's performance is the 'selected (nested)' row (the choice is part of "
                    "what is validated; the best single row is optimistic)" if sel else ""))
    return lines

