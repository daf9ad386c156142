"""What each ``lungai stage`` sub-command does: read inputs, run, write the output folder."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lungai.errors import InputError, InputNote, agree, counted, counted_of, noting_warnings


@contextlib.contextmanager
def _print_warnings(said: set | None = None):
    """The warnings raised inside the block printed at its end, each text once: ``warning: ...`` (``note: ...`` for an
    :class:`lungai.errors.InputCheckNote`).  ``said``: the texts said already by other such blocks of the command (a
    set shared by them, added to here) - not said again (QA stagefollow64: ``stage predict --explain`` said an EHR
    value not a trained level twice, when predicting and when explaining the same forward pass)."""
    from lungai.progress import write

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", message=".*deterministic.*")
        try:
            yield
        finally:
            seen = set() if said is None else said
            for w in caught:
                msg = str(w.message)
                if issubclass(w.category, UserWarning) and msg not in seen and not msg.startswith("Deterministic"):
                    seen.add(msg)      # an InputCheckNote (genes found without their Ensembl version): "note: ..."
                    # on a line of its own beside a bar (lungai.progress.write): said at the end of a block that
                    # may stand inside one (_load_for_new_cohort's "reading")
                    write(f"{getattr(w.category, 'LABEL', 'warning')}: {msg}")


def data_spec(args) -> dict:
    spec = {"label": getattr(args, "label", None), "label_groups": getattr(args, "label_groups", None),
            "stage_from": getattr(args, "stage_from", None), "stage0": getattr(args, "stage0", None),
            "drop": list(getattr(args, "drop", []) or []),
            "id_column": getattr(args, "id_column", None)}
    return spec


def cohort_from_spec(args, spec: dict, require_label: bool = True, check_leaks: bool = True, ehr_used=None):
    """The cohort of the command's tables (:func:`lungai.fusion.data.load_cohort`).  ``ehr_used``: the EHR columns
    its models use (None: all; ``()``: the EHR is no model input), for the never-smoker pack-years note."""
    from lungai.fusion import check_input_given
    from lungai.fusion.data import load_cohort
    from lungai.fusion.labels import parse_groups

    check_input_given(args.ehr, args.rna, args.ct)
    stage_from = [c.strip() for c in spec["stage_from"].split(",")] if spec.get("stage_from") else None
    if stage_from is not None and len(stage_from) != 3:
        raise InputError(f"--stage-from needs three column names (T,N,M), got {stage_from}",
                         "e.g. --stage-from 'Pathological T stage,Pathological N stage,Pathological M stage'")
    return load_cohort(args.ehr, args.rna, args.ct, label=spec.get("label") if require_label else None,
                       id_column=spec.get("id_column"), drop_columns=spec.get("drop") or (),
                       label_groups=parse_groups(spec.get("label_groups")) if require_label else None,
                       stage_from=stage_from if require_label else None, stage0=spec.get("stage0") or "I",
                       require_label=require_label,
                       ct_label=getattr(args, "ct_label", None), check_leaks=check_leaks,
                       keep_columns=getattr(args, "keep_column", None) or (), ehr_used=ehr_used)


def _ehr_used(args):
    """The EHR columns a cv / train run's models use: all (None) with ``ehr`` in --modalities, else none - the
    baselines see the same inputs (the never-smoker pack-years note is said only for a column in use)."""
    return None if "ehr" in modalities_from_args(args) else ()


def _locked_ehr_used(args, pipe, baselines, meta, all_models: bool) -> list:
    """The EHR columns of a locked model that a validate (``all_models``: every model of the folder is scored) or
    predict run (the --use / selected model) uses (:func:`lungai.fusion.api.model_inputs`)."""
    from lungai.fusion.api import model_inputs
    from lungai.fusion.model_io import chosen

    models = ([pipe, *baselines.values()] if all_models
              else [chosen(pipe, baselines, meta, getattr(args, "use", None))[1]])
    return [c for m in models for c in model_inputs(m)["ehr"]]


def modalities_from_args(args) -> tuple:
    """``--modalities``: the inputs the models use (the fusion network's branches; the baselines see the same)."""
    mods = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    bad = [m for m in mods if m not in ("ehr", "rna", "ct")]
    if bad:
        raise InputError(f"unknown modalities {bad}", "use a comma list of ehr, rna, ct")
    return mods


def config_from_args(args):
    from lungai.fusion.pipeline import FusionConfig

    mods = modalities_from_args(args)
    gene_variances = getattr(args, "gene_variances", None)
    if gene_variances:
        from lungai.fusion.preprocess import read_gene_variances

        read_gene_variances(gene_variances)          # an unreadable file fails here, not in fold 3
        gene_variances = str(Path(gene_variances).resolve())
    return FusionConfig(modalities=mods, fusion=args.fusion, top_k=args.top_k, gene_variances=gene_variances,
                        neighbours=args.neighbours,
                        edges=args.edges, epochs=args.epochs, patience=args.patience, lr=args.lr, seed=args.seed,
                        val_fraction=args.val_fraction, stop_on=args.stop_on)


def _jsonable(summary: dict) -> dict:
    return json.loads(json.dumps(summary, default=lambda o: None if o is None else float(o)))


# ---------------------------------------------------------------------------------------- synth
def run_synth(args) -> int:
    from lungai.fusion import COHORT_OUTPUTS
    from lungai.fusion.synthetic import make_cohort
    from lungai.io.outputs import claimed_output_folder, prepare_output_folder

    out = Path(args.output)
    # before any work: nothing is computed in vain, and a user's file of an output name (ehr.csv, rna.csv,
    # manifest.csv, truth.json, ct/) is never replaced; an earlier stage synth's cohort is (marker .lungai-stage-synth)
    prepare_output_folder(out, owner="stage-synth", owns=COHORT_OUTPUTS)
    with claimed_output_folder(out, "stage-synth", COHORT_OUTPUTS):
        paths = make_cohort(out, n=args.patients, seed=args.seed, n_genes=args.genes, biology_seed=args.biology_seed)
    truth = json.loads(Path(paths["truth"]).read_text(encoding="utf-8"))
    print(f"synthetic cohort: {truth['n']} patients (RNA {truth['with_rna']}, CT {truth['with_ct']}) -> {out}")
    print(f"label column 'stage'; planted RNA module: {', '.join(truth['module_genes'])}")
    print(synth_next_step(paths, out, pd.read_csv(paths["ehr"])["stage"].value_counts()))
    return 0


def synth_next_step(paths: dict, out: Path, class_counts: pd.Series) -> str:
    """``stage synth``'s last line: the ``lungai stage cv`` command that runs on the cohort written - with the
    --folds / --inner-folds that fit its smallest class where the defaults do not (QA optsfollow71: ``--patients 6``
    suggested the default 5-fold CV, refused as "too few patients per class") - or why none does (``--patients 3``:
    one patient per class)."""
    from lungai.fusion import CV_FOLDS, CV_INNER_FOLDS, folds_that_fit

    fit = folds_that_fit(class_counts.values)
    fewest = int(class_counts.min())
    rarest = sorted(str(c) for c, n in class_counts.items() if n == fewest)
    smallest = (f"class {rarest[0]} has {counted(fewest, 'patient')}" if len(rarest) == 1 else
                f"classes {', '.join(rarest)} have {counted(fewest, 'patient')} each")
    if fit is None:
        return (f"next: no `lungai stage cv` fits this cohort: {smallest}, and a CV needs at least 2 per class - "
                f"write a cohort of at least 2 per class, e.g. --patients 6 (2 per class: 2 folds) or --patients "
                f"{3 * CV_FOLDS} ({CV_FOLDS} per class: the default {CV_FOLDS} folds)")
    folds, inner = fit
    fitted = (f" --folds {folds}" if folds != CV_FOLDS else "") + (
        f" --inner-folds {inner}" if inner != CV_INNER_FOLDS else "")
    defaults = " / ".join(([f"{CV_FOLDS} outer"] if folds != CV_FOLDS else [])
                          + ([f"{CV_INNER_FOLDS} inner"] if inner != CV_INNER_FOLDS else []))
    why = (f" ({smallest}: too few for the default {defaults} folds"
           + (", 1 = no inner CV" if inner == 1 else "") + ")") if fitted else ""
    return (f"next: lungai stage cv --ehr {paths['ehr']} --rna {paths['rna']} --ct {paths['ct']} --label stage "
            f"-o {out}/cv --single-modality" + fitted + why)


# ---------------------------------------------------------------------------------------- cv
def baseline_kinds(args) -> tuple:
    from lungai.fusion.outputs import KINDS      # light: also read with the EHR labels, before torch

    raw = (getattr(args, "baselines", None) or "none").strip().lower()
    if raw in ("none", ""):
        return ()
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InputError(f"unknown baselines {bad}", f"use a comma list of {', '.join(KINDS)}, or 'none'")
    return kinds


DEFAULT_FUSION_GRID = "concat,weighted"


def fusion_grid(args) -> list:
    """The fusion types the inner CV chooses from (--fusion-grid; not given: :data:`DEFAULT_FUSION_GRID`).  Without
    an inner CV (--inner-folds 1) there is no choice: a grid the user gave is then said to be unused."""
    given = getattr(args, "fusion_grid", None)
    if given is not None and getattr(args, "inner_folds", 2) < 2:
        print(f"warning: --fusion-grid {given} is not used: the fusion type is chosen by the inner CV, and with "
              f"--inner-folds 1 there is none - the network is trained with --fusion {getattr(args, 'fusion', 'concat')} "
              "(give --fusion TYPE, or --inner-folds 2 or more to choose)", file=sys.stderr)
    grid = [g.strip() for g in (given if given is not None else DEFAULT_FUSION_GRID).split(",") if g.strip()]
    bad = [g for g in grid if g not in ("concat", "simple", "weighted")]
    if bad or not grid:
        raise InputError(f"--fusion-grid {getattr(args, 'fusion_grid', '')!r} is not a list of fusion types",
                         "use a comma list of concat, simple, weighted")
    return grid


def run_cv(args) -> int:
    from lungai.fusion.baseline import LABELS, cohort_branches, fusion_label
    from lungai.fusion.cv import SELECTED, candidates, check_labels, cross_validate
    from lungai.fusion.data import availability_text, ehr_missing_text
    from lungai.fusion.metrics import comparison_table, majority_reference
    from lungai.fusion.model_io import check_output_dir, claimed
    from lungai.progress import task

    inputs = [args.ehr, args.rna, args.ct]
    out = check_output_dir(Path(args.output), "cv", inputs)   # before any work: a user's file is never replaced
    warned = []     # the run's warnings on its data, said on the console and written in metrics.json / comparison.md
    with _print_warnings(), noting_warnings(InputNote, warned):
        cohort = cohort_from_spec(args, data_spec(args), ehr_used=_ehr_used(args))
    print(availability_text(cohort, modalities_from_args(args)))     # the EHR's gaps: said when it is used
    classes = check_labels(cohort, args.folds)
    with noting_warnings(InputNote, warned):     # the --gene-variances file is read (and its warnings said) here
        cfg = config_from_args(args)
    kinds = baseline_kinds(args)
    nested = args.inner_folds > 1
    models = candidates(cfg, kinds, nested, fusion_grid(args))
    select = tuple(models) if nested and len(models) > 1 else ()
    scored, single = single_modality_rows(cohort, cfg, models) if args.single_modality else ({}, [])
    with _print_warnings(), task("stage cv", args.folds * len(models)) as bar, noting_warnings(InputNote, warned):
        result = cross_validate(cohort, models, folds=args.folds, inner_folds=args.inner_folds,
                                seed=args.seed, progress=bar, select=select, scored=scored)
    y = result["y"]
    oof = pd.DataFrame({"patient_id": cohort.ids, "label": [classes[k] for k in y], "fold": result["fold_of"]})
    metrics = {"classes": classes, "n_patients": len(cohort.ids), "folds": args.folds,
               "inner_folds": args.inner_folds, "seed": args.seed, "cohort": cohort.report,
               "config": cfg.to_json(), "data": data_spec(args), "baselines": list(kinds), "models": {}}
    labels = {**LABELS, "fusion": fusion_label(cohort_branches(cfg.modalities, cohort), cfg.modalities),
              SELECTED: "selected by nested CV (the honest estimate of picking the best)"}
    for name, r in result["models"].items():
        metrics["models"][name] = {**_jsonable(r["summary"]), "params_per_fold": r["params"],
                                   "inner_macro_f1_per_fold": r["inner_macro_f1"], "n_scored": r["n_scored"]}
        if name in scored:    # a --single-modality row on a subset: that subset's own reference (its warning's)
            metrics["models"][name]["majority_reference"] = majority_reference(y[scored[name]], classes)
        for k, c in enumerate(classes):
            oof[f"{name}_p_{c}"] = r["oof"][:, k]
    reference = majority_reference(y, classes)       # the trivial answer every model must beat: its row, and warned
    table = comparison_table({n: r["summary"] for n, r in result["models"].items()}, labels, reference,
                             {n: metrics["models"][n]["majority_reference"] for n in scored if n in metrics["models"]})
    metrics["majority_reference"] = reference
    with _print_warnings(), noting_warnings(InputNote, warned):
        say_majority_warnings(result["models"], labels, reference, y, classes, scored)
    notes = cv_notes(result, select) + single
    if "ehr" in cfg.modalities and cohort.ehr.shape[1]:
        from lungai.fusion.preprocess import EHREncoder, left_out_text

        left = left_out_text(EHREncoder().fit(cohort.ehr).left_out)    # as each fold's encoder, on all patients
        if left:
            notes.append(left)
    # (a per-gene standardised matrix, all its genes kept, is one of the warnings: lungai.fusion.preprocess.GeneSelector)
    metrics["labels"] = {n: labels.get(n, n) for n in result["models"]}
    metrics["notes"] = notes
    metrics["warnings"] = warned
    with claimed(out, "cv", inputs):          # an earlier stage cv's outputs are replaced, the new ones recorded
        oks = {name: ~np.isnan(r["oof"]).any(axis=1) for name, r in result["models"].items()}   # a single-modality
        # row: the patients with its modality; the table's row names
        write_confusion_pngs("cv", out, classes, [(name, y[ok], result["models"][name]["oof"][ok].argmax(1),
                                                   f"{labels.get(name, name)} ({args.folds}-fold CV)")
                                                  for name, ok in oks.items()])
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
        (out / "comparison.md").write_text(f"{args.folds}-fold CV of {len(cohort.ids)} patients (same outer folds for "
                                           f"every row; inner folds {args.inner_folds}); mean ± SD over folds "
                                           f"[bootstrap 95 % CI]\n\n{table}\n\n" + "\n".join(f"- {n}" for n in notes)
                                           + "".join(f"\n- warning: {w}" for w in warned)
                                           # the EHR values imputed (said on the console with the cohort's counts)
                                           + "".join(f"\n- {t}" for t in [ehr_missing_text(cohort.report,
                                                                                            cfg.modalities)] if t)
                                           + "\n", encoding="utf-8")
        oof.to_csv(out / "oof_predictions.csv", index=False)
    print(table)
    for note in notes:
        print(f"note: {note}")
    print(f"-> {out / 'metrics.json'}, {out / 'comparison.md'}")
    return 0


def write_confusion_pngs(command: str, out: Path, classes, rows) -> None:
    """``rows``: (model name, true classes, predicted classes, title) -> ``out/confusion_<name>.png`` each, on a bar of
    their own (``stage cv: writing the confusion matrices 2/5 [00:03] confusion_forest.png``), each step with its
    seconds while it stands (:func:`lungai.progress.timer_running`: the first imports matplotlib).  QA stage72: the
    PNGs of a 5-model ``stage cv`` took 5.9 s of a shared machine after the bar had ended, without a line."""
    from lungai.fusion import plots
    from lungai.progress import task, timer_running

    with task(f"stage {command}: writing the confusion matrices", len(rows)) as bar:
        for name, y, pred, title in rows:
            bar.update(0, f"confusion_{name}.png")
            with timer_running(bar):
                plots.confusion_png(y, pred, classes, out / f"confusion_{name}.png", title)
            bar.update(1, f"confusion_{name}.png")


def say_majority_warnings(models: dict, labels: dict, reference: dict, y=None, classes=None,
                          scored: dict | None = None) -> None:
    """Warn of each model that does not beat always answering the most common class
    (:func:`lungai.fusion.metrics.majority_warning`).  A ``--single-modality`` row scored on a subset of the
    patients (``scored``: {name: mask}) is compared with that subset's own reference (``y``, ``classes``); before
    (QA stagefollow66), such rows were never warned of."""
    from lungai.fusion.metrics import majority_reference, majority_warning

    for name, r in models.items():
        ref = reference
        if name in (scored or {}):   # scored on the patients with its modality only: their own reference
            ref = majority_reference(np.asarray(y)[scored[name]], classes)
        label = "the 'selected' row (nested model choice)" if name == "selected" else labels.get(name, name)
        if name in (scored or {}):
            label += f" (scored on the {counted(int(np.sum(scored[name])), 'patient')} with its modality)"
        text = majority_warning(label, r["summary"], ref, "cv")
        if text:
            warnings.warn(InputNote(text))


def single_modality_rows(cohort, cfg, models: dict) -> tuple:
    """``--single-modality``: add a ``<m>_only`` network to ``models`` for each modality some patient has; return
    ({name: the patients it is scored on, where not all}, notes).  A network of one branch predicts a patient
    without that input from the branch's masking token alone - one constant answer - so it is scored on the patients
    with its modality, and a modality no patient has gives no row (before: a `ct_only` row of one constant
    prediction on a cohort without CT, and the patients without RNA scored in `rna_only`)."""
    from lungai.fusion.baseline import LABELS
    from lungai.fusion.pipeline import NOT_GIVEN, table_not_given

    have, n = cohort.availability(), len(cohort.ids)
    scored, notes = {}, []
    for m in cfg.modalities:
        k, name, what = int(have[m].sum()), f"{m}_only", m.upper()
        row = LABELS.get(name, name)           # the row's name in the table (its columns: <m>_only_p_<class>)
        if not k:       # no table given is said as such, not as patients lacking it (QA stagefollow65)
            why = NOT_GIVEN[m] if table_not_given(cohort, m) else f"no patient has {what}"
            notes.append(f"--single-modality: {why}: no {row} row (a network without input answers one constant)")
            continue
        models[name] = ("fusion", cfg.replace(modalities=(m,)), None)
        if k < n:
            scored[name] = have[m].to_numpy()
            notes.append(f"{row} is scored on the {counted(k, 'patient')} with {what} only: the other {n - k} "
                         f"{agree(n - k, 'has', 'have')} no {what} input (their {name}_p_* probabilities are left "
                         f"empty in oof_predictions.csv); the other rows on all {n}")
    return scored, notes


def cv_notes(result: dict, select: tuple) -> list:
    """What the comparison says: which model the nested CV picked, and whether a baseline beat the fusion."""
    from lungai.fusion.baseline import LABELS
    from lungai.fusion.cv import SELECTED

    models = result["models"]
    f1 = {n: r["summary"]["macro_f1"]["mean"] for n, r in models.items() if n != SELECTED and not n.endswith("_only")}
    notes = []
    if SELECTED in models:
        picked = [p["model"] for p in models[SELECTED]["params"]]
        counts = ", ".join(f"{n} {picked.count(n)}x" for n in dict.fromkeys(picked))
        notes.append(f"nested model choice per outer fold: {counts}; the 'selected' row is what picking the best by "
                     "inner CV achieves on the outer folds (`lungai stage train` locks a model by the same rule)")
    else:
        notes.append("no nested model choice (--inner-folds 1 or a single model): the best row is the maximum "
                     "over models measured on the same folds, an optimistic figure")
    base = {n: v for n, v in f1.items() if n != "fusion"}
    if "fusion" in f1 and base:
        best = max(base, key=base.get)
        if base[best] > f1["fusion"]:
            notes.append(f"a plain baseline beats the fusion network on the same outer folds: {LABELS.get(best, best)} "
                         f"macro-F1 {base[best]:.3f} vs fusion {f1['fusion']:.3f}")
        else:
            notes.append(f"the fusion network beats every baseline on the same outer folds (macro-F1 "
                         f"{f1['fusion']:.3f} vs {base[best]:.3f} for {LABELS.get(best, best)})")
    return notes


# ---------------------------------------------------------------------------------------- train
def run_train(args) -> int:
    from lungai.fusion import explain, model_io, plots
    from lungai.fusion.baseline import model_labels
    from lungai.fusion.cv import candidates, fit_selected
    from lungai.fusion.data import availability_text
    from lungai.fusion.folds import check_train_labels
    from lungai.fusion.metrics import majority_lines
    from lungai.fusion.synthetic import training_data
    from lungai.progress import task, timer_running

    inputs = [args.ehr, args.rna, args.ct]
    model_io.check_output_dir(Path(args.output), "train", inputs)   # before any work: a user's file is never replaced
    spec = data_spec(args)
    # the run's warnings on its data, said on the console and kept in stage_model.json / model_card.md - those naming
    # patient IDs in their counted form: a locked model keeps no plain patient ID (model_io.cohort_record)
    warned = []
    with _print_warnings(), noting_warnings(InputNote, warned, ids=False):
        cohort = cohort_from_spec(args, spec, ehr_used=_ehr_used(args))
    print(availability_text(cohort, modalities_from_args(args)))
    classes = check_train_labels(cohort, args.inner_folds)
    with noting_warnings(InputNote, warned, ids=False):    # the --gene-variances file is read (and said) here
        cfg = config_from_args(args)
    kinds = baseline_kinds(args)
    models = candidates(cfg, kinds, args.inner_folds > 1, fusion_grid(args))
    steps = (len(models) if args.inner_folds > 1 and len(models) > 1 else 0) + len(models) + 2
    with _print_warnings(), task("stage train", steps) as bar, noting_warnings(InputNote, warned, ids=False):
        fitted, selection = fit_selected(cohort, classes, models, args.inner_folds, cfg.seed, progress=bar)
        pipe = fitted.pop("fusion")
        few = len(cohort.ids) < explain.TSNE_MIN_PATIENTS
        # each its own step, said as it starts and then with its seconds (lungai.progress.timer_running) - the same
        # computation, in this thread: before, the bar stood on "fusion fitted" through the t-SNE (~11 s with 500
        # genes on a loaded machine, QA stagefollow69) and said "t-SNE" once it was done
        points = None
        if not few:
            bar.update(0, "t-SNE of the fused embeddings")
            with timer_running(bar):
                points = explain.tsne_points(pipe, cohort, seed=cfg.seed)
        bar.update(1, "t-SNE done" if not few else "t-SNE skipped (too few patients)")
        if "rna" in pipe.modalities:
            bar.update(0, "Shapley values of the genes")
            with timer_running(bar):
                shap = explain.gene_shapley(pipe, cohort, seed=pipe.config.seed)
            top = explain.top_genes_cohort(shap, 10)
        bar.update(1, "Shapley values")
    names = model_labels(pipe)
    # the trivial answer every candidate must beat, in stage_model.json, model_card.md and the console's comparison
    with _print_warnings():
        for text in train_majority(selection, cohort.y(classes), classes, names):
            warnings.warn(InputNote(text))
    with model_io.claimed(args.output, "train", inputs):   # an earlier stage train's files are replaced, new recorded
        out = model_io.save(args.output, pipe, fitted, selection["selected"],
                            {"data": spec, **model_io.cohort_record(cohort), "selection": selection,
                             "training_data": training_data(inputs), "warnings": warned})   # a stage synth cohort: illustrative
        if points is not None:
            plots.tsne_png(points, cohort.y(classes), classes, out / "tsne.png",
                           "t-SNE of fused embeddings (fusion network), training patients (in-sample)")
            pd.DataFrame({"patient_id": cohort.ids, "label": [classes[k] for k in cohort.y(classes)],
                          "tsne_1": points[:, 0], "tsne_2": points[:, 1]}).to_csv(out / "tsne_points.csv", index=False)
        if "rna" in pipe.modalities:
            top.to_csv(out / "top_genes_cohort.csv", index=False)
            explain.top_genes_per_patient(shap, 10).to_csv(out / "top_genes_per_patient.csv", index=False)
        (out / "model_card.md").write_text(model_io.card_markdown(json.loads((out / model_io.META).read_text(
            encoding="utf-8"))), encoding="utf-8")
    rows = [f"  {names.get(n, n):<48} {c['params']}  inner macro-F1 "
            f"{'n/a' if c['inner_macro_f1'] is None else format(c['inner_macro_f1'], '.3f')}"
            for n, c in selection["candidates"].items()]
    rows += [f"  {line}" for line in majority_lines(selection)]   # the reference every model must beat
    print("models compared:\n" + "\n".join(rows))
    print(f"selected: {selection['selected']} - {selection['verdict']}")
    # the model predict uses, named as the table above names it; the fusion network (its branches as trained: an
    # unfed CT branch masked) is saved beside a baseline that beat it (before: "locked model (ehr, rna, ct; fusion
    # weighted)" after "selected: mlp", naming a CT branch no patient fed as if the locked model used it)
    fusion = f"{names['fusion'][:-1]}; fusion {pipe.config.fusion})"     # fusion_label's "(...)": one parenthesis
    chosen = names.get(selection["selected"], selection["selected"])
    print(f"locked model: {fusion if selection['selected'] == 'fusion' else chosen + ', saved with the ' + fusion} "
          f"-> {out}")
    if training_data(inputs)["synthetic"]:      # its card says so; stage predict and the demo label it
        from lungai.fusion.synthetic import SYNTHETIC_NOTE

        print(f"warning: {SYNTHETIC_NOTE}")
    for note in pipe.notes:
        print(f"note: {note}")
    if few:
        print(f"note: no tsne.png written: t-SNE needs at least {explain.TSNE_MIN_PATIENTS} patients, the training "
              f"cohort has {len(cohort.ids)}")
    if pipe.ehr_encoder is not None and pipe.ehr_encoder.left_out:
        from lungai.fusion.preprocess import left_out_text

        print(f"note: {left_out_text(pipe.ehr_encoder.left_out)}")
    if "rna" in pipe.modalities:
        print("top genes of the fusion network on its training patients (in-sample; mean |Shapley|): "
              + ", ".join(f"{g} {v:.3g}" for g, v in zip(top.gene, top.mean_abs_shapley)))
    return 0


def train_majority(selection: dict, y: np.ndarray, classes, labels: dict) -> list:
    """``stage train``: record in ``selection`` (stage_model.json's, read by model_card.md) the training cohort's
    :func:`lungai.fusion.metrics.majority_reference`, each candidate's inner-CV accuracy and balanced accuracy, and
    the warnings of the candidates whose inner CV does not beat the reference; return those warnings (QA
    stagefollow66: neither the console nor the card showed the trivial answer)."""
    from lungai.fusion.metrics import class_counts, inner_majority_warning, inner_scores, majority_reference

    ref, counts = majority_reference(y, classes), class_counts(y, classes)
    said = []
    for name, c in selection["candidates"].items():
        scores = inner_scores(c.get("inner_recall"), counts)
        c["inner_accuracy"] = None if scores is None else scores["accuracy"]
        c["inner_balanced_accuracy"] = None if scores is None else scores["balanced_accuracy"]
        text = inner_majority_warning(labels.get(name, name), scores, ref)
        if text:
            said.append(text)
    selection["majority_reference"] = ref
    selection["majority_warnings"] = said
    return said


# ---------------------------------------------------------------------------------------- validate / predict
def _keeps_stage_from(args, derived: str, stage_from: str) -> bool:
    """Whether ``--label`` without ``--stage-from`` (validate / predict) still means the model's ``--stage-from``
    label: ``--label`` names the label the model derived (``derived``, e.g. stage_group) - unless the new EHR table
    has that column but not the T/N/M columns - or names no column of the table while the T/N/M columns are there.
    A column of the table other than the derived label is the label itself (scored as it is)."""
    from lungai.fusion.data import read_table
    from lungai.io.tables import name_key

    if not getattr(args, "ehr", None):
        return True                      # no EHR table: the missing label is refused as before
    # headers as load_cohort matches --label / --stage-from (lungai.fusion.data.column_named): case, spaces ignored
    header = {name_key(c) for c in read_table(args.ehr, getattr(args, "id_column", None), nrows=0).columns}
    label_there = name_key(args.label) in header
    tnm_there = all(name_key(c) in header for c in str(stage_from).split(","))
    if name_key(args.label) == name_key(derived):
        return tnm_there or not label_there
    return tnm_there and not label_there


def _new_cohort_spec(args, meta: dict) -> dict:
    """The label and table options of validate / predict: the locked model's (``meta``, its stage_model.json), each
    one given on the command line in its place."""
    spec = dict(meta.get("data") or {})
    for key in ("label", "label_groups", "stage_from", "stage0", "id_column"):
        if getattr(args, key, None):
            spec[key] = getattr(args, key)
    if getattr(args, "drop", None):
        spec["drop"] = args.drop
    if getattr(args, "label", None) and not getattr(args, "stage_from", None) and spec.get("stage_from"):
        model_spec = meta.get("data") or {}
        if not _keeps_stage_from(args, model_spec.get("label") or "stage_group", model_spec["stage_from"]):
            spec["stage_from"] = None    # --label is the label (the model's --stage-from would take priority over it)
    return spec


def check_labels_early(args, command: str) -> None:
    """``stage cv / train / validate``: the EHR table's labels read as the run will read them (pandas only, its
    notes not said: the run says them), before torch and the model are loaded - a table without a labelled patient,
    or a label option it cannot give (a T / N / M column it lacks), is refused at once; so are (``cv`` / ``train``)
    too few patients per class for the folds (:mod:`lungai.fusion.folds`, the run's own checks - the cohort's labelled
    patients are the EHR table's, whatever RNA and CT it has).  QA stage72: ``stage cv --folds 40`` on
    NSCLC-Radiogenomics (smallest class 29) was refused after reading the whole cohort, 10.4 s of an idle shared
    machine (70-79 s of a loaded one); ``--inner-folds 25`` after 22.2 s, ``stage train --inner-folds 30`` 20.2 s.  QA docs71: ``stage validate``
    of NSCLC-Radiogenomics' 49 AMC patients (T / N / M all 'Not Collected') was refused after 48 s of a shared
    machine.  ``validate`` also refuses there a cohort of the model's training patients only (their salted ID
    hashes are in its card; 11 s of imports and loading before).  A model card that cannot be read is left to the
    model's loader (its refusal names the file)."""
    import argparse

    if not getattr(args, "ehr", None):
        return                           # no EHR table: refused by the run itself ("a label needs the EHR table")
    if command == "validate":
        from lungai.fusion.balance import META

        try:
            meta = json.loads((Path(args.model) / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(meta, dict) or not isinstance(meta.get("data") or {}, dict):
            return
        spec = _new_cohort_spec(args, meta)
    else:
        spec = data_spec(args)
    ehr_only = argparse.Namespace(**{**vars(args), "rna": None, "ct": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = cohort_from_spec(ehr_only, spec, check_leaks=False, ehr_used=())
    if command == "validate":
        from lungai.fusion.balance import EXTERNAL_TEXTS
        from lungai.model_files import external_patients

        # the run's rule (lungai.fusion.model_io.external_patients): every patient a training patient is refused
        external_patients(meta, list(cohort.ids), getattr(args, "include_training_patients", False),
                          **EXTERNAL_TEXTS)
    elif command == "cv":
        from lungai.fusion.folds import check_inner_labels, check_labels

        # the run's checks (lungai.fusion.cv.cross_validate), on the same labelled patients: too few per class for
        # the outer folds, or for the inner CV where it runs (a choice of model or of grid point)
        classes = check_labels(cohort, args.folds)
        if args.inner_folds > 1 and (baseline_kinds(args) or len(fusion_grid(args)) > 1):
            check_inner_labels(cohort, classes, args.folds, args.inner_folds, args.seed)
    elif command == "train":
        from lungai.fusion.folds import check_train_labels

        check_train_labels(cohort, args.inner_folds)


def _load_for_new_cohort(args, command: str, require_label: bool, warned: list | None = None,
                         said: set | None = None):
    """(pipe, baselines, meta, cohort) of ``--model`` and the new cohort, read on a bar of their own (``"stage
    <command>: reading"``: the model, then the tables, each with its seconds while it stands); the warnings said on
    reading it are also appended to ``warned`` (:func:`lungai.errors.noting_warnings`) where given.  ``said``: the
    set of texts the command's later blocks share (:func:`_print_warnings`), so that a warning said here is not said
    again there (QA stageoverlap64: before, loading had a block of its own)."""
    from lungai.fusion import model_io
    from lungai.progress import task, timer_running

    tables = ", ".join(what for what, given in (("the EHR table", args.ehr), ("the RNA matrix", args.rna),
                                                 ("the CT manifest", args.ct)) if given)
    # each step said as it starts and then with its seconds (lungai.progress.timer_running): QA stagewait72 - after
    # "stage predict: loading: 3/3 loaded" the console stood ~2.4 s without a line (a loaded machine; NSCLC-
    # Radiogenomics) while the model folder and the tables were read
    with task(f"stage {command}: reading", 2, rate=False) as bar:
        bar.update(0, "reading the model")
        with timer_running(bar):
            pipe, baselines, meta = model_io.load(args.model)
        bar.update(1, f"reading {tables}")
        spec = _new_cohort_spec(args, meta)
        with _print_warnings(said), noting_warnings(InputNote, [] if warned is None else warned):
            with timer_running(bar):
                # a locked model's features are its own: a label copy in the new table is not one of them
                cohort = cohort_from_spec(args, spec, require_label=require_label, check_leaks=False,
                                          ehr_used=_locked_ehr_used(args, pipe, baselines, meta, require_label))
                model_io.check_new_rna(pipe, cohort.rna, args.max_missing_genes)
        bar.update(1, "read")
    # the model's EHR columns the table lacks are said by the prediction itself (console and each patient's notes:
    # lungai.fusion.api.predict_with_notes, the path of the demo and the Slicer panel too)
    return pipe, baselines, meta, cohort


def _input_warnings(name: str, model, cohort, df, pipe) -> None:
    """The warnings of ``predict`` and ``validate`` on a :func:`lungai.fusion.api.predict_frame` result ``df``: CTs
    given to a model trained without CT are not used; patients with none of the model's inputs get no stage.
    :class:`lungai.errors.InputNote`s (printed ``warning: ...`` by :func:`_print_warnings`, kept in validate's
    metrics.json by :func:`lungai.errors.noting_warnings`; before, printed only), each naming patients with its
    ``without_ids`` form (the patients counted).  ``pipe``: the locked model's fusion network (its training notes say
    why its CT is not used: :func:`lungai.fusion.ct_unused_text`)."""
    from lungai.fusion import ct_unused_text
    from lungai.fusion.api import NOT_COMPUTED, describe_inputs, model_inputs

    needs = model_inputs(model)
    if cohort.ct and not needs["ct"]:
        # why, from the fusion network's training notes (no CT manifest given, or no training patient with a CT)
        warnings.warn(InputNote(f"the CTs are not used: {ct_unused_text(name, pipe.notes, pipe.modalities)}"))
    odd = df[(df.status != "computed") & (df.status != NOT_COMPUTED)]
    for status, rows in odd.groupby("status"):
        head = f"{name}: {status}"
        warnings.warn(InputNote(f"{head}: {', '.join(map(str, rows.patient_id[:10]))}"
                                f"{' ...' if len(rows) > 10 else ''}",
                                without_ids=f"{head}: {counted(len(rows), 'patient')}"))
    skipped = df.patient_id[df.status == NOT_COMPUTED].tolist()
    if skipped:
        head = f"no stage for {counted(len(skipped), 'patient')}"
        tail = (f": none of the inputs {name} was trained with - {describe_inputs(needs)} - is there for "
                f"{agree(len(skipped), 'it', 'them')}")
        warnings.warn(InputNote(f"{head} ({', '.join(map(str, skipped[:10]))}{' ...' if len(skipped) > 10 else ''})"
                                + tail, without_ids=head + tail))


def _prediction_frame(cohort, classes, proba, prefix="p_"):
    df = cohort.availability().reset_index()
    for k, c in enumerate(classes):
        df[f"{prefix}{c}"] = proba[:, k]
    df["predicted"] = [classes[k] for k in proba.argmax(1)]
    return df


def run_validate(args) -> int:
    from lungai.fusion.baseline import model_labels
    from lungai.fusion.api import predict_frame
    from lungai.fusion.data import availability_text
    from lungai.fusion.api import describe_inputs, model_inputs
    from lungai.fusion.labels import match_classes
    from lungai.fusion.metrics import (absent_classes, class_counts, format_summary, majority_label,
                                       majority_reference, majority_warning, scores, summarise)
    from lungai.fusion.model_io import check_output_dir, claimed, external_patients

    # the output folder first: nothing is computed in vain, and a user's file is never replaced
    inputs = [args.ehr, args.rna, args.ct, args.model]
    out = check_output_dir(Path(args.output), "validate", inputs)
    # the run's warnings on its data, said on the console and written in metrics.json (a local report: as stage cv's,
    # with the patient IDs they name)
    warned = []
    pipe, baselines, meta, cohort = _load_for_new_cohort(args, "validate", require_label=True, warned=warned)
    # the model's own training patients: left out of an external validation (or kept, labelled not external)
    cohort, overlap, overlap_notes = external_patients(meta, cohort, getattr(args, "include_training_patients", False))
    print(availability_text(cohort, pipe.config.modalities))   # the locked models' inputs (baselines: the same)
    # said ("note: ...", or "warning: ..." when the training patients are scored) and kept in metrics.json with the
    # run's other warnings: InputNotes with their without_ids form (QA stageoverlap64: before, printed only)
    with _print_warnings(), noting_warnings(InputNote, warned):
        for note in overlap_notes:
            warnings.warn(note)
    classes = pipe.classes
    # the model's classes written another way ('Stage I' for 'I', '1' for a class '1.0'): read as those classes
    matched = match_classes(cohort.labels, classes)
    renamed = sorted({(a, b) for a, b in zip(cohort.labels, matched) if isinstance(a, str) and a != b})
    if renamed:      # said, and kept with the run's warnings in metrics.json: the scores read these labels so
        text = ("label values read as the model's classes (the same stage written another way): "
                + ", ".join(f"{a!r} -> {b!r}" for a, b in renamed))
        print(f"note: {text}")
        warned.append(text)
    cohort.labels = matched
    unknown = sorted(set(cohort.labels.dropna()) - set(classes))
    if unknown:
        from lungai.fusion.labels import stage_groups_hint

        hint = stage_groups_hint(cohort.labels.dropna(), classes)   # IIIA / IIIB / IV for the group III-IV
        raise InputError(f"label values {unknown} are not classes of the locked model ({classes})",
                         "use the same label definition (--label, --label-groups / --stage-from) as in training"
                         + (f", e.g. --label-groups \"{hint}\" (the model's stage groups)" if hint else ""))
    if cohort.labels.nunique() < 2:
        from lungai.fusion.labels import late_group_note

        only = sorted(set(cohort.labels.dropna()))
        late = late_group_note(only)
        raise InputError(f"the external cohort's label has only one class ({', '.join(map(str, only))})",
                         "validate on a cohort with several classes" + (
                             f" ({late}: a model of the classes {' / '.join(map(str, classes))} cannot tell them "
                             "apart, nor be validated on such a cohort alone)" if late else ""))
    y = cohort.y(classes)
    frames = {}
    with _print_warnings(), noting_warnings(InputNote, warned):   # EHR values not seen in training: named, as done
        # the path of predict (api.predict_frame): only the inputs each model was trained with, none = not computed
        for name, model in {"fusion": pipe, **baselines}.items():
            frames[name] = predict_frame(name, model, cohort)
    metrics = {"classes": classes, "n_patients": len(y), "cohort": cohort.report, "model": str(args.model),
               "selected": meta["selected"], **overlap, "overlap_notes": list(map(str, overlap_notes)), "models": {}, "warnings": warned}
    # the ehr / rna / ct columns: the inputs the selected model used (as predict's predictions.csv)
    preds = frames.get(meta["selected"], frames["fusion"])[["patient_id", "ehr", "rna", "ct"]].copy()
    preds["label"] = [classes[k] for k in y]
    scored = {}
    for name, df in frames.items():
        model = pipe if name == "fusion" else baselines[name]
        with _print_warnings(), noting_warnings(InputNote, warned):    # said here, and kept in metrics.json
            _input_warnings(name, model, cohort, df, pipe)
        ok = (df.status == "computed").to_numpy()
        proba = df[[f"p_{c}" for c in classes]].to_numpy(dtype=float)
        left_out = df.patient_id[~ok].astype(str).tolist()
        entry = {"n_scored": int(ok.sum()), "n_not_computed": len(left_out), "not_computed": left_out}
        for k, c in enumerate(classes):
            preds[f"{name}_p_{c}"] = proba[:, k]
        preds[f"{name}_status"] = df["status"].to_numpy()
        needs = describe_inputs(model_inputs(model))
        if not ok.any():
            metrics["models"][name] = entry
            print(f"{name:<10} not scored: no patient has any of the inputs it was trained with ({needs})")
            continue
        # the macro averages are over the classes among the SCORED patients (metrics.py): a class none of them has
        # is named, never silently an F1 of 0 (or left out of the AUC only)
        counts, absent = class_counts(y[ok], classes), absent_classes(y[ok], classes)
        entry.update(scored_classes=counts, macro_over=[c for c in classes if str(c) not in absent])
        s = summarise([scores(y[ok], proba[ok], len(classes))], y[ok], proba[ok], len(classes))
        metrics["models"][name] = {**_jsonable(s), **entry}
        scored[name] = (y[ok], proba[ok])
        print(format_summary(name + (" *" if name == meta["selected"] else ""), s)
              + f" (scored: {', '.join(f'{c} {n}' for c, n in counts.items())}"
              + (f"; {counted(len(left_out), 'patient')} not scored: not computed)" if left_out else ")"))
        # the trivial answer on the same scored patients: a model that does not beat it is warned of
        trivial = majority_warning(name, s, majority_reference(y[ok], classes), "validation")
        if trivial:
            with _print_warnings(), noting_warnings(InputNote, warned):
                warnings.warn(InputNote(trivial))
        if absent:
            with _print_warnings(), noting_warnings(InputNote, warned):
                warnings.warn(InputNote(f"no scored {' / '.join(absent)} patient for {name}: its macro-F1, balanced "
                                        f"accuracy and macro-AUC are over {', '.join(entry['macro_over'])} only (the "
                                        "classes among its scored patients), not comparable with a score over all "
                                        "classes"))
    if not scored:
        needs = "; ".join(f"{name}: {describe_inputs(model_inputs(pipe if name == 'fusion' else baselines[name]))}"
                          for name in frames)
        raise InputError(f"no locked model could score any patient of the external cohort: no patient has any of "
                         f"the inputs a model was trained with ({needs})",
                         "give the EHR table / RNA matrix (--ehr, --rna) with the model's columns and genes, and the "
                         "patient ids spelled as in them")
    reference = majority_reference(y, classes)
    metrics["majority_reference"] = reference
    print(f"{'reference':<10} {majority_label(reference)}: "
          + "; ".join(f"{m} {reference[m]:.3f}" for m in ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc"))
          + " (the trivial answer a model must beat)")
    print(f"* the locked model's selected model ({meta['selected']})")
    with claimed(out, "validate", inputs):   # an earlier stage validate's files are replaced, the new ones recorded
        kind = "NOT external: includes training patients" if overlap["external"] is False else "external"
        labels = model_labels(pipe)           # the public names, as train's comparison and cv's plots
        write_confusion_pngs("validate", out, classes, [(name, yy, proba.argmax(1), f"{labels.get(name, name)} ({kind})")
                                                        for name, (yy, proba) in scored.items()])
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
        preds.to_csv(out / "predictions.csv", index=False)
    print(f"-> {out / 'metrics.json'}")
    return 0


def run_predict(args) -> int:
    from lungai.fusion import explain, gradcam_file, no_explanation_text
    from lungai.fusion.api import mark_training_patients, model_inputs, predict_frame, usable_inputs
    from lungai.fusion.balance import class_balance_lines
    from lungai.fusion.model_io import check_output_dir, chosen, claimed
    from lungai.fusion.synthetic import SYNTHETIC_NOTE
    from lungai.io import write_image
    from lungai.rp.predict import synthetic_model
    from lungai.progress import task, timer_running

    # the output folder first: nothing is computed in vain, and a user's file is never replaced
    inputs = [args.ehr, args.rna, args.ct, args.model]
    out = check_output_dir(Path(args.output), "predict", inputs)
    said = set()      # each warning once: loading, predicting and explaining (the predicted forward pass again)
    pipe, baselines, meta, cohort = _load_for_new_cohort(args, "predict", require_label=False, said=said)
    name, model = chosen(pipe, baselines, meta, args.use)
    with _print_warnings(said):       # EHR values not seen in training: named here, and in the notes column
        df = predict_frame(name, model, cohort)
        df = mark_training_patients(df, meta)     # the model's own training patients: in-sample, said
    if synthetic_model(meta):         # a model of a stage synth cohort (its card says so): every row says so
        df.insert(df.columns.get_loc("predicted") + 1, "illustrative", SYNTHETIC_NOTE)
    needs = model_inputs(model)
    with_ct = [i for i in cohort.ids if i in cohort.ct]
    explain_ct = args.explain and name == "fusion" and bool(needs["ct"])
    if explain_ct:     # one Grad-CAM file per patient: two IDs of one file name would overwrite each other
        from lungai.radiomics.manifest import NAME_RULE, name_clashes
        clashes = name_clashes(with_ct)
        if clashes:
            listed = "; ".join(" and ".join(map(repr, g)) + f" (both {gradcam_file(g[0])})" for g in clashes[:5])
            raise InputError(f"patient IDs that give the same Grad-CAM file name: {listed}",
                             f"give each patient an ID that differs in {NAME_RULE}")
    cams = [gradcam_file(pid) for pid in with_ct] if explain_ct else []
    with claimed(out, "predict", inputs, writes=cams):   # an earlier stage predict's files are replaced
        df.to_csv(out / "predictions.csv", index=False)
        with _print_warnings(said):
            _input_warnings(name, model, cohort, df, pipe)
        print(f"model: {name}" + (" (the locked model's selected model)" if name == meta["selected"] else ""))
        print(df.drop(columns=["notes", "illustrative"], errors="ignore").to_string(
            index=False, float_format=lambda v: f"{v:.3f}", max_rows=30))
        if "illustrative" in df.columns:   # as rp predict: a model trained on a synthetic cohort (its card says so)
            print(SYNTHETIC_NOTE)
        # as its card: what the model learnt from, per class, with the inner-CV recall of the model that predicted
        for k, line in enumerate(class_balance_lines(meta, name)):
            print(line if k == 0 else f"note: {line}")
        if args.explain and name != "fusion":
            print("note: " + no_explanation_text(name, name == meta["selected"], "add --use fusion to predict and "
                                                 "explain with the fusion network"), file=sys.stderr)
        elif args.explain:
            # explain exactly the forward pass that was predicted: the cohort reduced to the inputs the model
            # uses (a patient whose model EHR columns are all empty is predicted with the EHR branch masked)
            used, av = usable_inputs(pipe, cohort)
            # each step said as it starts and then with its seconds (lungai.progress.timer_running), each patient's
            # Grad-CAM by name: QA stage72 - before, the bar stood on "stage explain: 0/2 [00:00]" without a word
            # through the Shapley values (10.1 s for NSCLC-Radiogenomics' 130 patients with RNA) and through the
            # Grad-CAM maps, then said each step once it was done
            with _print_warnings(said), task("stage explain", 2) as bar:
                if "rna" in pipe.modalities and av["rna"].any():
                    bar.update(0, f"Shapley values of the genes ({counted(int(av['rna'].sum()), 'patient')} with RNA)")
                    with timer_running(bar):
                        shap = explain.gene_shapley(pipe, used, seed=pipe.config.seed)
                    explain.top_genes_per_patient(shap, 10).to_csv(out / "top_genes_per_patient.csv", index=False)
                else:        # said, as the Grad-CAM's absence below (QA stageuse63: no file and no word)
                    print("note: no gene Shapley values written (top_genes_per_patient.csv): "
                          + ("no patient was given RNA-seq the model could use (--rna: a matrix with the patients "
                             "of the EHR table / CT manifest, spelled as there)" if "rna" in pipe.modalities
                             else "the model was not trained with RNA-seq"), file=sys.stderr)
                bar.update(1, "Shapley values")
                if not needs["ct"] or not with_ct:
                    print("note: no Grad-CAM written: " + ("no patient was given a CT (--ct manifest)" if needs["ct"]
                                                           else "the model's CT branch was not trained"),
                          file=sys.stderr)
                else:
                    (out / "gradcam").mkdir(exist_ok=True)
                    empty = {}
                    for k, pid in enumerate(with_ct, 1):
                        bar.update(0, f"Grad-CAM {pid} ({k}/{len(with_ct)})")
                        with timer_running(bar):
                            cam, cls = explain.grad_cam(pipe, used, pid)
                            write_image(cam, out / gradcam_file(pid), protect=list(cohort.ct[pid][:2]))
                        note = explain.empty_cam_note(cam, cls)
                        if note:
                            empty[pid] = note
                    # each patient's file (the ID's file name, lungai.fusion.gradcam_file) beside its prediction
                    df.insert(df.columns.get_loc("notes"), "gradcam",
                              [gradcam_file(p) if p in cohort.ct else "" for p in df["patient_id"]])
                    df.to_csv(out / "predictions.csv", index=False)
                    if empty:   # a blank volume is said, on the console and in the patient's notes (the panel)
                        print(f"note: {counted_of(len(empty), len(with_ct), 'Grad-CAM map')} "
                              f"{agree(len(empty), 'is', 'are')} 0 everywhere (no positive CT "
                              f"evidence for the predicted class): {', '.join(map(str, list(empty)[:10]))}"
                              f"{' ...' if len(empty) > 10 else ''}", file=sys.stderr)
                        df["notes"] = ["; ".join(filter(None, [n, empty.get(p, "")]))
                                       for n, p in zip(df["notes"], df["patient_id"])]
                        df.to_csv(out / "predictions.csv", index=False)
                bar.update(1, "Grad-CAM")
    print(f"-> {out / 'predictions.csv'}")
    return 0
