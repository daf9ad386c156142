"""Saving and loading an RP model directory, without pickle.

``MODEL_DIR/model.skops``       the fitted pipeline, its bootstrap ensemble and the explanation
                                baseline (skops format: loaded only if every type in the file is on
                                :data:`TRUSTED_TYPES`, so a tampered file cannot run code)
``MODEL_DIR/model_card.json``   what the model is: training data summary, features and roles,
                                hyper-parameters, metrics, threshold, date, versions
``MODEL_DIR/metrics.json``      nested-CV metrics of every feature set x model
"""

from __future__ import annotations

import json
from pathlib import Path


from lungai.errors import InputError, counted
from lungai.io.outputs import writing
from lungai.model_files import dump_skops, load_skops
# the card's file names, format, check and texts: the light module (the Slicer panel's model line reads them too);
# FORMAT (rp train) and validation_text (lungai demo) are imported from here
from lungai.rp.card import CARD_FILE, FORMAT, METRICS_FILE, MODEL_FILE, RETRAIN_FIX, ci_text, read_card  # noqa: F401
from lungai.rp.card import validation_text  # noqa: F401
from lungai.rp.cohort import SYNTHETIC_NOTE
from lungai.rp.metrics import fmt_calibration


# Types outside skops' default trusted set that an RP model legitimately contains (exact names).
TRUSTED_TYPES = [
    "lungai.io.impute.SmokersMedianImputer",     # the numeric median imputer (a smoker's pack-years: smokers')
    "numpy.dtype",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.tree._tree.Tree",
]


def save_model(model_dir, bundle: dict, card: dict, metrics: dict) -> Path:
    """Write the three files into ``model_dir`` (created if needed)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (MODEL_FILE + ".tmp")
    dump_skops(bundle, tmp)   # byte-identical for the same model (seed and table)
    with writing(model_dir / MODEL_FILE):      # each file stamped in a claimed folder's marker once written
        tmp.replace(model_dir / MODEL_FILE)
    write_json(model_dir / CARD_FILE, card)
    write_json(model_dir / METRICS_FILE, metrics)
    with writing(model_dir / "model_card.md"):
        (model_dir / "model_card.md").write_text(card_markdown(card), encoding="utf-8")
    return model_dir


def _outcome_mapping(card: dict) -> str:
    """The words-to-0/1 part of the card's ``outcome_read_as`` ("'Yes' read as 1 (event), ..."), without the
    "outcome 'NAME': " it begins with (a name may hold ": " itself)."""
    text, prefix = card["outcome_read_as"], f"outcome {card['outcome']!r}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def card_markdown(card: dict) -> str:
    """A human-readable rendering of the model card (model_card.md)."""
    m, td = card["metrics_nested_cv"], card["training_data"]
    lines = [f"# {card['name']}", "",
             f"*Created {card['created_utc']} with lungai {card['lungai_version']}, "
             f"scikit-learn {card['sklearn_version']}. {card['intended_use']}.*", "",
             *([f"**Warning: {SYNTHETIC_NOTE}.**", ""] if td.get("synthetic") else []),   # every risk illustrative
             *[f"**Warning: {w}.**" for w in card.get("warnings", [])], *([""] if card.get("warnings") else []),
             f"- Outcome: `{card['outcome']}`"
             + (f" ({_outcome_mapping(card)})" if card.get("outcome_read_as", "0/1") != "0/1" else "")
             + f"; model: {card['model_name']} on the `{card['feature_set']}` "
             f"feature set; hyper-parameters {card['hyperparameters']}",
             f"- Training data: {td['source']}, {td['n']} patients, {td['events']} events "
             f"(prevalence {td['prevalence']:.1%}); ignored columns: {td['ignored_columns'] or 'none'}"
             + (f"; {counted(td['n_tumour_review'], 'patient')} whose automatic tumour needs review (tumour_review)"
                if td.get("n_tumour_review") else "")
             + (f"; {counted(td['n_tumour_notes'], 'patient')} whose tumour may leave out a GTV (tumour_notes)"
                if td.get("n_tumour_notes") else "")
             + (f"; {counted(td['n_lung_notes'], 'patient')} whose lungs may not be the whole lungs (lung_notes)"
                if td.get("n_lung_notes") else "")
             + (f"; {counted(td['n_no_dose'], 'patient')} with no dose (every dosimetric feature empty, imputed)"
                if td.get("n_no_dose") else ""),
             training_patients_line(card),
             f"- Nested-CV performance ({card.get('metrics_source', 'nested CV')}): AUC {m['auc']:.3f} ({ci_text(m['auc_ci95'])}), "
             f"Brier {m['brier']:.3f}, calibration slope {fmt_calibration(m['calibration_slope'])} / intercept "
             f"{fmt_calibration(m['calibration_intercept'])}, sensitivity {m['sensitivity']:.2f} / specificity "
             f"{m['specificity']:.2f} at threshold {card['threshold']} ({card['threshold_rule']})",
             f"- Risk interval: {card['uncertainty']}", f"- Contributions: {card['explanation']}", "",
             "| feature set/model | AUC | 95 % CI |", "|---|---|---|"]
    lines += [f"| {k} | {v[0]:.3f} | {ci_text(v[1:], 3, '').strip()} |" for k, v in card["comparison_auc"].items()]
    lines += ["", "| feature | role | type (how decided) | training median [IQR] or counts | missing % |",
              "|---|---|---|---|---|"]
    types, how = card["roles"].get("types", {}), card["roles"].get("how", {})
    for f in card["features"]:
        s = td["features"][f]
        summary = (", ".join(f"{k}: {v}" for k, v in s["counts"].items()) if "counts" in s
                   else f"{s['median']:.4g} [{s['q1']:.4g}-{s['q3']:.4g}]")
        lines.append(f"| `{f}` | {card['roles']['roles'][f]} | {types.get(f, 'numeric')} ({how.get(f, 'declared')}) "
                     f"| {summary} | {s['missing_pct']} |")
    return "\n".join(lines) + "\n"


def training_patients_line(card: dict) -> str:
    """The model card's line on its training patients (``training_patients``, salted ID hashes)."""
    rec = card.get("training_patients", False)
    if isinstance(rec, dict):
        return (f"- Training patients: {rec.get('n')} recorded as salted SHA-256 hashes of their IDs (no ID in plain "
                "text): `lungai rp validate` leaves them out of an external validation")
    if rec is None:
        return ("- Training patients: not recorded (the training table had no patient ID column): `lungai rp "
                "validate` cannot tell them")
    return "- Training patients: not recorded (a model of an older lungai): `lungai rp validate` cannot tell them"


def write_json(path, obj) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with writing(path):
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n", encoding="utf-8")
        tmp.replace(path)


def _jsonable(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def load_model(model_dir, threshold_given: bool = False, progress=None) -> tuple[dict, dict]:
    """(bundle, card) of a model directory written by :func:`save_model`.  The card is read and checked by
    :func:`lungai.rp.card.read_card` (the one check of the Slicer panel's model line too): both files there, this
    lungai's format, its threshold a number and a risk in (0, 1) (an older lungai saved ``--threshold 20`` as given:
    every patient "low risk"), unless the caller replaces it (``threshold_given``: ``rp validate --threshold``).
    ``progress``: the model file's reading is shown on it while it runs (:func:`loading_message`, its seconds counted;
    no step counted): a random forest's model.skops took 13 s of CPU, 49 s on a loaded machine (QA rp68)."""
    from lungai.progress import waiting

    card = read_card(model_dir, threshold_given)   # the folder, the card's format and threshold (light)
    path = Path(model_dir) / MODEL_FILE
    bundle = waiting(progress, loading_message(path), load_skops, path, TRUSTED_TYPES, "RP model file", RETRAIN_FIX)
    check_bundle(bundle, path)
    check_card_matches_model(card, bundle, Path(model_dir) / CARD_FILE, path)
    return bundle, card


def loading_message(path) -> str:
    """What the progress bar says while the model file ``path`` is read (:func:`load_model`)."""
    return f"loading the model {path}"


def check_card_matches_model(card: dict, bundle: dict, card_path, path) -> None:
    """Refuse a card whose ``features`` are not the inputs the model file's pipeline was fitted on (their names and
    order: what ``rp predict`` gives it), naming the features that differ (QA rpcard64: a card whose feature list was
    edited stopped ``rp predict`` / ``rp validate`` with scikit-learn's ValueError "columns are missing")."""
    from lungai.rp.card import CARD_FIX

    fitted = getattr(bundle["pipeline"], "feature_names_in_", None)
    if fitted is None or [str(f) for f in fitted] == list(card["features"]):
        return
    fitted = [str(f) for f in fitted]
    def names(these) -> str:
        return ", ".join(map(repr, these[:5])) + (" ..." if len(these) > 5 else "")

    only_model = [f for f in fitted if f not in card["features"]]
    only_card = [f for f in card["features"] if f not in fitted]
    what = "; ".join(filter(None, [only_model and f"the model's inputs not in the card: {names(only_model)}",
                                   only_card and f"in the card, not inputs of the model: {names(only_card)}"])) \
        or "the same names in another order"
    raise InputError(f"{card_path}: its field 'features' ({len(card['features'])}) is not the list of inputs the model "
                     f"in {path} was fitted on ({len(fitted)}): {what}", CARD_FIX)


BUNDLE_KEYS = ("pipeline", "bootstrap", "baseline")      # what save_model writes (lungai.rp.training.train_rp)


def _is_pipeline(obj) -> bool:
    from sklearn.pipeline import Pipeline

    clf = obj.named_steps.get("clf") if isinstance(obj, Pipeline) else None
    return clf is not None and hasattr(clf, "predict_proba")


def check_bundle(bundle, path) -> None:
    """InputError naming ``path`` unless ``bundle`` is what :func:`save_model` writes: a dict of a fitted scikit-learn
    pipeline (a ``clf`` step that predicts a risk), a list of such pipelines (the bootstrap ensemble) and the
    explanation baseline (background rows: a 2-D array of finite numbers, one per model input in each row; an older
    lungai's file: one such row, 1-D - :func:`lungai.rp.explain.as_background`).  A skops file holds only trusted
    types, yet any structure of them (a list, another dict): predict / validate would stop with a traceback."""
    import numpy as np

    fix = "re-train the model (or re-save it) with 'lungai rp train'; use the model folder exactly as it wrote it"
    what = f"RP model file {path}"
    if not isinstance(bundle, dict) or set(bundle) != set(BUNDLE_KEYS):
        held = f"a dict with the keys {sorted(map(str, bundle))}" if isinstance(bundle, dict) else \
            f"a {type(bundle).__name__}"
        raise InputError(f"{what} holds {held}, not the model lungai saves (a dict of {', '.join(BUNDLE_KEYS)})", fix)
    if not _is_pipeline(bundle["pipeline"]):
        raise InputError(f"{what}: its pipeline is a {type(bundle['pipeline']).__name__}, not a fitted scikit-learn "
                         "pipeline with a classifier step 'clf'", fix)
    boot = bundle["bootstrap"]
    if not isinstance(boot, list) or not all(_is_pipeline(m) for m in boot):
        raise InputError(f"{what}: its bootstrap ensemble is not a list of such pipelines", fix)
    base = bundle["baseline"]
    n_inputs = getattr(bundle["pipeline"].named_steps["clf"], "n_features_in_", None)
    # the background rows (2-D: training patients' model inputs) or an older file's one reference patient (1-D)
    ok = (isinstance(base, np.ndarray) and base.ndim in (1, 2) and base.size > 0
          and np.issubdtype(base.dtype, np.number) and bool(np.isfinite(base).all())
          and (n_inputs is None or base.shape[-1] == n_inputs))
    if not ok:
        shape = getattr(base, "shape", None)
        raise InputError(f"{what}: its explanation baseline ({type(base).__name__}, shape {shape}) is not an array "
                         f"of finite numbers, one per model input ({n_inputs}) in each row", fix)
