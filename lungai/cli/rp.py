"""``lungai rp``: radiation-pneumonitis risk (synth, train, validate, predict)."""

from __future__ import annotations

import json

from lungai.cli.radiomics import seed_number
from lungai.errors import counted


def _bootstrap_count(text: str) -> int:
    """``rp train --bootstrap``: a whole number >= 2 (QA predict66: 0, 1 or -2 were taken - the risk interval of every
    prediction then had no width, "0.37 (0.37-0.37)", and the card spoke of "-2 copies")."""
    from lungai.cli.radiomics import whole_number
    from lungai.rp.uncertainty import BOOTSTRAP_FIX, MIN_BOOTSTRAP    # the rule of the Python API too

    return whole_number(text, MIN_BOOTSTRAP, BOOTSTRAP_FIX)


def _top_count(text: str) -> int:
    """``rp predict --top``: a whole number >= 1 (QA: --top 0 listed no feature, --top -1 all but one)."""
    from lungai.cli.radiomics import whole_number

    return whole_number(text, 1, "give how many contributing features to list per patient (all of them: "
                                 "--contributions FILE)")


def _patient_count(text: str) -> int:
    """``rp synth -n``: a whole number >= 10 (QA predictfollow66: -5 was refused only after parsing, a float said
    Python's "invalid int value")."""
    from lungai.cli.radiomics import whole_number

    return whole_number(text, 10, "ask for at least 10 patients")


def _noise_count(text: str) -> int:
    """``rp synth --noise-features``: a whole number >= 0 (QA predictfollow66: -3 was taken as no noise feature)."""
    from lungai.cli.radiomics import whole_number

    return whole_number(text, 0, "give how many radiomic features without effect to add (0: none)")


def _missing_rate(text: str) -> float:
    """``rp synth --missing-rate``: a fraction in [0, 1) (QA predictfollow66: -0.5 was taken as none, 1.5 blanked
    every clinical and radiomic value, 2 as a percentage was taken as 'all')."""
    from lungai.cli.radiomics import real_number

    return real_number(text, 0.0, 1.0, "give the fraction of clinical / radiomic values to blank, e.g. 0.02 for 2 %",
                       high_open=True)


def _fold_count(text: str) -> int:
    """``rp train --outer-folds / --inner-folds``: a whole number >= 2, refused with the arguments (QA rp71: 0, 1 or -3
    were refused by the nested CV's check 7-12 s later, after pandas, scikit-learn and torch were imported; 2.5 said
    argparse's "invalid int value" without a fix)."""
    from lungai.cli.radiomics import whole_number

    return whole_number(text, 2, "nested CV needs at least 2 outer and 2 inner folds, e.g. --outer-folds 5 "
                                 "--inner-folds 3")


def _threshold(text: str) -> float:
    """``rp train / validate --threshold``: a number (whether a risk in (0, 1) is checked by
    :func:`lungai.rp.card.check_threshold`, which advises on a percentage); text refused with the fix (QA rp71:
    "--threshold abc" said argparse's "invalid float value" without one)."""
    import argparse

    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a risk between 0 and 1, e.g. 0.20") from None


def _load(name: str, modules: tuple, what: str = "scikit-learn and torch") -> None:
    """The modules of ``rp synth / train / validate / predict`` (``modules``: the command's own, with ``what`` under
    them) imported on a bar of their own, after the arguments and input paths are checked
    (:func:`lungai.rp.inputs.check_input_paths`): QA rp71, a shared 2-core machine, ``rp train`` wrote its first line
    21 s after the command, ``rp predict`` 11 s; QA smallfix72, ``rp synth -n 20`` 4.7 s without a line."""
    from lungai.progress import load_modules

    load_modules(f"rp {name}: loading", (("loading pandas", ("pandas",)),
                                        (f"loading {what}", modules)))
    from lungai.cli import freeze_loaded_modules

    freeze_loaded_modules()     # as stage's (QA stagewait72): the end's gc.collect traces the modules' objects no more


def register(sub) -> None:
    p = sub.add_parser("rp", help="radiation-pneumonitis risk from clinical + dosimetric + radiomic features",
                       description="Train, validate and apply RP risk models. Columns: clin_*, dose_*, rad_* "
                                   "(suffix _cat = categorical), case/patient_id; see docs/rp.md.")
    rp = p.add_subparsers(dest="rp_command", required=True, metavar="SUBCOMMAND")

    s = rp.add_parser("synth", help="write a synthetic cohort CSV with a known risk model")
    s.add_argument("-o", "--output", required=True, help="output CSV")
    s.add_argument("-n", type=_patient_count, default=300, help="number of patients (>= 10; default 300)")
    s.add_argument("--seed", type=seed_number, default=0, help="random seed of the cohort (0 to 4294967295; default 0)")
    s.add_argument("--noise-features", type=_noise_count, default=16,
                   help="radiomic features without effect (>= 0; default 16)")
    s.add_argument("--missing-rate", type=_missing_rate, default=0.02,
                   help="fraction of blanked clinical/radiomic values (0 to below 1; default 0.02)")
    s.add_argument("--with-true-risk", action="store_true", help="add the true risk as column 'true_risk'")
    s.set_defaults(func=run_synth)

    t = rp.add_parser("train", help="nested-CV comparison of feature sets x models; lock the best model")
    t.add_argument("table", nargs="+", help="CSV, one row per patient (several CSVs are joined on case/patient_id)")
    t.add_argument("--outcome", required=True, help="0/1 outcome column (e.g. grade >= 2 pneumonitis)")
    t.add_argument("-o", "--output", required=True, help="model directory to create")
    t.add_argument("--models", default="lr,rf", help="comma list of lr, rf (default lr,rf)")
    t.add_argument("--feature-sets", default=None,
                   help="comma list of clinical_dosimetric, radiomic, all (default: all three)")
    t.add_argument("--roles", default=None, help="role file: CSV with columns column,role[,type]")
    t.add_argument("--outer-folds", type=_fold_count, default=5, help="outer cross-validation folds (>= 2; default 5)")
    t.add_argument("--inner-folds", type=_fold_count, default=3, help="inner cross-validation folds (>= 2; default 3)")
    t.add_argument("--threshold", type=_threshold, default=None,
                   help="risk threshold (0-1, e.g. 0.20) for sensitivity/specificity (default: training prevalence)")
    t.add_argument("--final", default=None, help="lock this feature_set/model instead of the best AUC, e.g. all/rf")
    t.add_argument("--bootstrap", type=_bootstrap_count, default=None,
                   help="bootstrap models for the risk interval (>= 2; 30, 10 with --fast)")
    t.add_argument("--fast", action="store_true", help="small grids, fewer trees (seconds instead of minutes)")
    t.add_argument("--seed", type=seed_number, default=0,
                   help="random seed of the CV folds, the models and the bootstrap (0 to 4294967295; default 0)")
    t.add_argument("--overwrite", action="store_true", help="replace a model already in the output directory")
    t.set_defaults(func=run_train)

    v = rp.add_parser("validate", help="external validation of a locked model (nothing is refitted)")
    v.add_argument("model_dir", help="the model folder `lungai rp train` wrote")
    v.add_argument("table", nargs="+", help="CSV(s) with the model's feature columns and the outcome")
    v.add_argument("-o", "--output", default=None, help="directory for external_metrics.json and plots")
    v.add_argument("--outcome", default=None, help="outcome column if named differently from training")
    v.add_argument("--threshold", type=_threshold, default=None, help="risk threshold (0-1); default: the model's")
    v.add_argument("--allow-other-radiomics-settings", action="store_true",
                   help="accept radiomic features computed with other settings than the model's (warned per patient)")
    v.add_argument("--include-training-patients", action="store_true",
                   help="also score patients the model was trained on (left out by default: their scores are "
                        "in-sample; the metrics are then labelled as not an external validation)")
    v.set_defaults(func=run_validate)

    q = rp.add_parser("predict", help="risk with uncertainty interval and top contributing features")
    q.add_argument("model_dir", help="the model folder `lungai rp train` wrote")
    q.add_argument("patients", nargs="+", help="CSV(s) with the model's feature columns (one row per patient)")
    q.add_argument("-o", "--output", required=True, help="predictions CSV")
    q.add_argument("--top", type=_top_count, default=5, help="contributing features listed per patient (>= 1)")
    q.add_argument("--contributions", default=None, help="also write all Shapley values to this CSV")
    q.add_argument("--importance-png", default=None, help="cohort-level importance plot (.png, .svg or .pdf)")
    q.add_argument("--seed", type=seed_number, default=0,
                   help="random seed of the Shapley values' sampling (a random forest of many columns; 0 to "
                        "4294967295; default 0)")
    q.add_argument("--allow-other-radiomics-settings", action="store_true",
                   help="accept radiomic features computed with other settings than the model's (warned per patient)")
    q.set_defaults(func=run_predict)


def run_synth(args) -> int:
    from lungai.io.outputs import prepare_output_file, record_output_file
    from lungai.progress import task, timer_running

    prepare_output_file(args.output, owner="rp-synth")    # before any work; a user's file is never replaced
    # pandas and scikit-learn on a bar of their own, the cohort on another (QA smallfix72, a shared 2-core machine:
    # ``rp synth -n 20`` 4.7 s without a line, -n 200000 16 s)
    _load("synth", ("lungai.rp.cohort", "lungai.radiomics.csv_output"), "scikit-learn")
    from lungai.radiomics.csv_output import write_csv
    from lungai.rp.cohort import make_cohort, oracle_auc

    with task("rp synth", 2, rate=False) as bar:
        bar.update(0, f"drawing {counted(args.n, 'patient')}")
        with timer_running(bar):
            cohort = make_cohort(args.n, args.seed, n_noise=args.noise_features, missing_rate=args.missing_rate)
            auc = oracle_auc(cohort)
        table = cohort.table
        if args.with_true_risk:
            table = table.assign(true_risk=cohort.risk)
        bar.update(1, f"writing {args.output}")
        with timer_running(bar):
            write_csv(table, args.output, any_suffix=True)    # a full disk leaves no partial file
        record_output_file(args.output, "rp-synth")           # a re-run may replace it
        bar.update(1, "written")
    print(f"{args.n} patients, {int(table[cohort.outcome].sum())} events ({cohort.outcome}), "
          f"oracle AUC {auc:.3f} -> {args.output}")
    return 0


def run_train(args) -> int:
    from lungai.io.outputs import prepare_output_folder
    from lungai.rp.card import check_model_folder, check_threshold, check_training_choices
    from lungai.rp.inputs import check_input_paths

    check_threshold(args.threshold)                       # before any work and the heavy imports
    check_training_choices(args.models, args.feature_sets, args.final)
    check_input_paths(args.table, args.roles)             # (a mistyped path: at once, QA rp71)
    # -o too (QA rpfollow71: a folder holding a model, -o naming a file: refused after the loading bar, ~10 s), and a
    # table or role file that is one of its model files (QA rp72: after the loading bar, 3-12 s)
    check_model_folder(args.output, args.overwrite, [*args.table, args.roles])   # a user's files are never replaced
    # before any work: nothing is computed in vain; the folder is made when the model is written (a run refused
    # for its inputs leaves no empty folder)
    prepare_output_folder(args.output, create=False)
    _load("train", ("lungai.rp.training",))
    from lungai.rp.training import train_rp

    result = train_rp(args.table, args.outcome, args.output, models=args.models, feature_sets=args.feature_sets,
                      role_file=args.roles, outer_folds=args.outer_folds, inner_folds=args.inner_folds,
                      threshold=args.threshold, fast=args.fast, n_boot=args.bootstrap, final=args.final,
                      seed=args.seed, overwrite=args.overwrite)
    print("\n".join(result.lines))
    from lungai.errors import say_notes

    # the run's warnings (too few events, tumours to review, no dose ...): InputNotes, each said once on stderr
    # ("warning: ...": one naming patients with its form without their IDs, lungai.errors.PatientsText), as rp
    # validate's; kept in metrics.json and the model card (QA rpfollow65: "warning: ..." lines on stdout)
    say_notes(result.metrics["warnings"])
    print(f"model ({result.chosen}), model_card.json, metrics.json, roc.png, calibration.png -> {result.model_dir}")
    return 0


def run_validate(args) -> int:
    from lungai.io.outputs import prepare_output_folder
    from lungai.rp.card import VALIDATE_OUTPUTS, VALIDATE_OWNER, check_threshold
    from lungai.rp.inputs import check_input_paths

    check_threshold(args.threshold)                       # before any work and the heavy imports
    check_input_paths(args.table, model_dir=args.model_dir, threshold_given=args.threshold is not None)
    # -o before any work and the heavy imports: nothing is computed in vain, a user's files are never replaced; the
    # folder is made when the results are written (a run refused for its table leaves no empty folder)
    if args.output:
        prepare_output_folder(args.output, owner=VALIDATE_OWNER, owns=VALIDATE_OUTPUTS, create=False)
    _load("validate", ("lungai.rp.external", "lungai.rp.metrics"))
    from lungai.rp.external import validate_rp
    from lungai.rp.metrics import ci_text, fmt_calibration

    r = validate_rp(args.model_dir, args.table, args.output, outcome=args.outcome, threshold=args.threshold,
                    allow_other_radiomics_settings=args.allow_other_radiomics_settings,
                    include_training_patients=args.include_training_patients)
    # the notes on the model's own training patients (left out, or scored as asked) and the run's other warnings
    # (radiomics settings, too few events, calibration, tumours to review, no dose ...) were said by validate_rp
    # (InputNotes: "note: ..." / "warning: ..." on stderr, as stage validate), and are kept in its warnings
    not_external = r["external"] is False
    print(f"{'validation (NOT external: includes training patients)' if not_external else 'external validation'} "
          f"of {r['model']} on {counted(r['n'], 'patient')} ({counted(r['events'], 'event')})"
          + (" (overlap not checked)" if r.get("training_overlap_checked") is False else ""))
    if r.get("outcome_read_as", "0/1") != "0/1":      # an outcome in words: which word counted as the event
        print(r["outcome_read_as"])
    print(f"AUC {r['auc']:.3f} ({ci_text(r['auc_ci95'])}); "
          f"nested-CV AUC at training {r['nested_cv_auc_at_training']:.3f}")
    # separated classes: the fitted slope is arbitrary (QA rpfollow70: "-279.07 (not estimable ...)"), not printed
    slope = ("not estimable (the risks separate the classes)" if r.get("calibration_separable") else
             fmt_calibration(r["calibration_slope"]))
    print(f"Brier {r['brier']:.3f}; calibration slope {slope}, "
          f"intercept {fmt_calibration(r['calibration_intercept'])}"
          + (" (risks saturated/constant)" if r.get("calibration_note") else ""))
    print(f"mean predicted risk {100 * r['mean_predicted_risk']:.1f} %, observed event rate "
          f"{100 * r['observed_event_rate']:.1f} % (observed/expected "
          f"{fmt_calibration(r['observed_expected_ratio'])})")
    print(f"threshold {r['threshold']}: sensitivity {r['sensitivity']:.2f}, specificity {r['specificity']:.2f}")
    print(f"{counted(r['n_patients_with_imputed_features'], 'patient')} with imputed features"
          # a model feature empty in every row (warned above, QA rpfollow70): named here too
          + (f" ({r['features_empty_in_every_row']} empty in every row)" if r.get("features_empty_in_every_row")
             else "") + ", "
          f"{r['n_patients_out_of_training_range']} with features outside the training range"
          # the risk interval widened to hold the risk, as rp predict marks it (QA rp70: said nowhere by validate)
          + (f", {r['n_patients_interval_widened']} with the risk interval widened to hold the risk (outside the "
             "bootstrap models' 95 % range" + (": interval_note of external_predictions.csv" if args.output else "")
             + ")" if r.get("n_patients_interval_widened") else ""))
    if r.get("synthetic_model"):             # a model trained on a synthetic cohort (its card says so)
        from lungai.rp.cohort import SYNTHETIC_NOTE

        print(SYNTHETIC_NOTE)
    if args.output:
        print(f"-> {args.output}/{', '.join(VALIDATE_OUTPUTS)}")
    else:
        print(json.dumps({k: r[k] for k in ("auc", "auc_ci95", "brier")}))
    return 0


def run_predict(args) -> int:
    from pathlib import Path

    from lungai.errors import InputError
    from lungai.rp.inputs import check_input_paths, check_output_not_input
    from lungai.rp.plots import check_figure_path

    check_figure_path(args.importance_png, "--importance-png")             # before any work
    if args.contributions and Path(args.contributions).resolve() in {Path(p).resolve()
                                                                     for p in [*args.patients, args.output]}:
        raise InputError(f"--contributions {args.contributions} is the patients table or the output",
                         "choose another path for the contributions CSV")
    for option, path, what in (("-o", args.output, "predictions"), ("--contributions", args.contributions,
                                                                     "contributions")):
        # one path for the figure and a table: the one written last replaced the other (QA rp68: -o risk.png
        # --importance-png risk.png, the predictions lost under the figure with exit status 0)
        if args.importance_png and path and Path(path).resolve() == Path(args.importance_png).resolve():
            raise InputError(f"--importance-png {args.importance_png} is also the {option} file: the figure and the "
                             f"{what} would overwrite each other", "choose another path for one of them")
    # the model folder (its card: without reading the model file) and the tables, before the heavy imports (QA rp71:
    # a missing patients table was refused after the model file was read, 11-13 s)
    check_input_paths(args.patients, model_dir=args.model_dir)
    # a patients table as -o (QA rp72: refused by predict_rp after the heavy imports and the model's loading, 6-17 s)
    check_output_not_input(args.output, args.patients)
    from lungai.io.outputs import check_output_file_owner, prepare_output_file, recorded_output_files
    from lungai.rp.card import PREDICT_OWNER as OWNER

    outputs = [p for p in (args.output, args.contributions, args.importance_png) if p]
    for path in outputs:                                                   # before any work and the heavy imports
        prepare_output_file(path)
        check_output_file_owner(path, OWNER)                               # a user's file is never replaced
    _load("predict", ("lungai.rp.model_io", "lungai.rp.predict"))
    from lungai.radiomics.csv_output import write_csv
    from lungai.rp.model_io import load_model
    from lungai.rp.predict import predict_rp
    from lungai.progress import task

    # one bar: the model shown while it is read (QA rp68: 49 s without a word, a random forest's), then predict_rp's
    # two steps (risk and interval, Shapley values)
    with task("rp predict", 3) as bar:
        model = load_model(args.model_dir, progress=bar)   # its card also for the header line (what the risk is of)
        bar.update(1, "model loaded")
        with recorded_output_files(outputs, OWNER):                        # once written, a failure included:
            pred, contrib = predict_rp(args.model_dir, args.patients, output=args.output, top=args.top,   # a re-run
                                       importance_png=args.importance_png, seed=args.seed,                # may replace
                                       protect=[args.contributions] if args.contributions else [],        # them
                                       allow_other_radiomics_settings=args.allow_other_radiomics_settings,
                                       model=model, progress=bar)
            if args.contributions:
                write_csv(contrib, args.contributions, any_suffix=True, float_format="%.5g")
    import math

    from pandas import isna as pd_isna

    from lungai.rp.predict import prediction_header
    from lungai.scene.results import contribution_text

    for line in prediction_header(model[1]):   # what the risk, its interval and the flag mean
        print(line)
    if len(pred) and not pd_isna(pred["baseline_risk"].iloc[0]):   # ... and what a top feature's value is measured
        from lungai.rp.card import baseline_text                    # against (QA rp69: the CSV's baseline_risk only)

        # in the one wording of the Slicer result text and the demo's report (the training patients, or an older
        # random forest file's training-mean patient: its rows' warnings say so; QA rp70: a second wording here)
        print(f"top feature (its contribution, in log-odds): + raises the risk, - lowers it "
              f"({baseline_text(pred['baseline_risk'].iloc[0], pred['warnings'].iloc[0])})")
    from lungai.errors import say_notes
    from lungai.rp.card import card_warnings, validation_text
    from lungai.rp.uncertainty import WIDENED_INTERVAL, WIDENED_MARK

    # what the model learnt from (its training patients and events); the card's warnings (too few events ...) and
    # those on the whole table (patients whose automatic tumour needs review, no dose ...) are InputNotes, said once
    # on stderr (QA rpfollow65: "warning: ..." lines on stdout, among the risks)
    print(f"model card: {validation_text(model[1])}")
    say_notes(card_warnings(model[1]) + list(pred.attrs.get("warnings", [])))
    for _, row in pred.head(10).iterrows():
        top = row.get("top1_feature")
        interval = ("no interval" if math.isnan(row["risk_low"]) or math.isnan(row["risk_high"])   # see its warning
                    else f"{row['risk_low']:.2f}-{row['risk_high']:.2f}")
        if WIDENED_INTERVAL.split(":", 1)[0] in str(row.get("warnings") or ""):   # its warning says why (QA
            interval += f" {WIDENED_MARK}"                                        # rpfollow69)
        print(f"{row['case']}: risk {row['risk']:.2f} ({interval})"
              + (" HIGH RISK" if row.get("high_risk") else "")
              + (f", top feature {top} ({contribution_text(row['top1_contribution'], 2)})" if isinstance(top, str)
                 else ""))
        for key, what in (("imputed", "imputed (missing)"), ("out_of_range", "outside the training range"),
                          ("warnings", "warning")):
            if row.get(key):
                print(f"  {what}: {row[key]}")
    if len(pred) > 10:
        print(f"... {len(pred) - 10} more")
    if len(pred) > 1:
        from lungai.errors import counted

        print(f"HIGH RISK: {int(pred['high_risk'].sum())} of {counted(len(pred), 'patient')}")
    if "illustrative" in pred.columns:       # a model trained on a synthetic cohort (its card says so)
        print(pred["illustrative"].iloc[0])
    print(f"-> {args.output}")
    return 0
