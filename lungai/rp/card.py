"""What an RP model folder's card says, read without the prediction packages.

The Multimodal Predict panel shows a model folder's line (its features, what its risk is of, its HIGH RISK threshold,
its validation and training patients / events, its warnings) as soon as the user chooses the folder - on every panel
refresh, before the prediction packages (scikit-learn, skops, pandas, scipy) may be installed.  So this module imports
only numpy (which Slicer bundles) and lungai's light modules, and holds the one text of each of these for
``lungai rp predict`` / ``rp validate`` (:func:`lungai.rp.model_io.load_model` reads the card with :func:`read_card`),
the panel and ``lungai demo``.  It never opens ``model.skops`` (the model itself: loaded only by
:func:`lungai.rp.model_io.load_model`, with its allow-listed types).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from lungai.errors import InputError, agree
from lungai.rp.uncertainty import NO_INTERVAL, RP_ENDPOINT, uncertainty_text

MODEL_FILE, CARD_FILE = "model.skops", "model_card.json"
FORMAT = "lungai-rp-model/1"
RETRAIN_FIX = "retrain the model with 'lungai rp train'"


def ci_text(ci, digits: int = 3, level: str = "95% CI") -> str:
    """"95% CI lo-hi", or "CI undefined" for an interval :func:`delong_auc_ci` could not compute."""
    if ci is None or ci[0] is None or ci[1] is None:
        return "CI undefined"
    return f"{level} {ci[0]:.{digits}f}-{ci[1]:.{digits}f}"


# the files each rp command writes and the marker (``.lungai-<owner>``) of a folder it wrote: here, light, for the
# output checks the CLI makes with the arguments, before pandas, scikit-learn and torch are imported (QA rpfollow71:
# ``rp train -o`` of a folder holding a model was refused after the loading bar, ~10 s of a shared machine)
METRICS_FILE = "metrics.json"
TRAIN_OWNER = "rp-train"   # the marker .lungai-rp-train: a folder rp train wrote (a re-run may replace its files)
TRAIN_OUTPUTS = (MODEL_FILE, CARD_FILE, "model_card.md", METRICS_FILE, "roc.png", "calibration.png",
                 "cv_predictions.csv")
VALIDATE_OWNER = "rp-validate"   # the marker .lungai-rp-validate: a folder rp validate wrote
VALIDATE_OUTPUTS = ("external_metrics.json", "external_roc.png", "external_calibration.png",
                    "external_predictions.csv")
# `lungai rp predict`'s marker .lungai-rp-predict beside the files it wrote (a re-run replaces them, a user's file is
# never replaced: lungai.io.outputs.check_output_file_owner)
PREDICT_OWNER = "rp-predict"


def written_by_rp_train(model_dir) -> bool:
    """A model folder of an earlier lungai version (no marker): its model card says so."""
    try:
        card = json.loads((Path(model_dir) / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == FORMAT


def check_model_folder(model_dir, overwrite: bool = False, inputs=()) -> None:
    """Refuse (before any work) an input of ``inputs`` (the tables, the role file) that is one of the files the model
    would be written to, a folder holding a model (unless ``overwrite``) and a folder rp train did not write that holds
    files of its output names (a user's metrics.json, roc.png ... are never replaced).  Light (no pandas,
    scikit-learn, torch, SimpleITK): ``lungai rp train`` checks its ``-o`` with the arguments, ``train_rp`` again.
    QA rp71 / rp72: a table lying in ``-o`` under an output name (``rp train out/cv_predictions.csv -o out
    --overwrite``) was refused only after the loading bar (3 s, 7-12 s on a shared machine)."""
    from lungai.io.outputs import check_output_owner

    model_dir = Path(model_dir)
    written = {(model_dir / name).resolve(): name for name in TRAIN_OUTPUTS}
    for given in inputs:
        if given is not None and str(given) and (name := written.get(Path(given).resolve())) is not None:
            raise InputError(f"the input {given} is the file {name} that lungai rp train writes into its output "
                             f"directory {model_dir}: it would be overwritten by the model files",
                             f"copy it out of {model_dir} and give the copy, or choose another output directory "
                             "with -o")
    if (model_dir / MODEL_FILE).exists() and not overwrite:
        raise InputError(f"{model_dir} already holds a model", "choose a new output directory (or --overwrite)")
    if not written_by_rp_train(model_dir):
        check_output_owner(model_dir, TRAIN_OWNER, TRAIN_OUTPUTS)


def validation_text(card: dict) -> str:
    """What an RP model card says of the model's validation and training cohort: "nested-CV AUC 0.62 (95% CI
    0.42-0.79) on 60 training patients (16 events)" (SYNTHETIC for a model of an ``rp synth`` cohort) - how many events
    the model learnt from.  One text for ``lungai rp predict``, the Multimodal Predict panel and ``lungai demo``'s
    report and console (:func:`lungai.demo.pipeline.rp_card_summary`); the card's ``warnings`` (too few events per
    feature ...) go with it."""
    m, td = card.get("metrics_nested_cv") or {}, card.get("training_data") or {}
    auc = m.get("auc")
    return ((f"nested-CV AUC {auc:.2f} ({ci_text(m.get('auc_ci95'), 2)})" if isinstance(auc, (int, float))
             else "no validated AUC recorded")
            + f" on {td.get('n', '?')} {'SYNTHETIC ' if td.get('synthetic') else ''}training patients "
              f"({td.get('events', '?')} events)")


PERCENT_HINT_RANGE = (2.0, 100.0)   # a threshold in [2, 100) reads as a percentage (20 -> "use 0.20")


def check_threshold(threshold, option: str = "--threshold", fix: str = "") -> None:
    """Refuse a risk threshold outside (0, 1) (every patient would be on one side of it).  The rule: a value in
    (0, 1) is a probability and passes; one in [2, 100) looks like a percentage and is refused with the
    fraction to give (20 -> "use 0.20"); one just above 1 (1 < value < 2, e.g. 1.5) is no likely percentage
    (1.5 % is rarely meant) - it is refused as above 1, never turned into 0.015; 0, 1, negatives, 100 and more,
    NaN are refused.  None (the default threshold) passes.  ``fix`` is added to the advice (e.g. for a threshold
    saved in a model card)."""
    if threshold is None:
        return
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"{option} {threshold!r} is not a number",
                         "; ".join(filter(None, ["give a risk between 0 and 1, e.g. 0.20", fix]))) from None
    if 0.0 < value < 1.0:
        return
    hint = ""
    if PERCENT_HINT_RANGE[0] <= value < PERCENT_HINT_RANGE[1]:
        fraction = f"{value / 100:.2f}" if round(value / 100, 2) == value / 100 else f"{value / 100:g}"
        hint = f"{value:g} looks like a percentage: use {fraction}"
    elif 1.0 < value < PERCENT_HINT_RANGE[0]:
        hint = (f"{value:g} is above 1 and is not read as a percentage: give the risk as a probability between 0 "
                "and 1, e.g. 0.15 for 15 %")
    raise InputError(f"{option} {value:g} is not a risk between 0 and 1 (exclusive): every patient would be on one "
                     "side of it", "; ".join(filter(None, [hint or "give a risk between 0 and 1, e.g. 0.20", fix])))


def check_card_threshold(card: dict, card_path) -> float:
    """The threshold saved in an RP model card (``model_card.json`` at ``card_path``), returned as a float: it must
    be there and a real number (a JSON number: not null, not text such as "0.2", not true/false), by the rule of
    :func:`check_threshold` (an older lungai saved ``--threshold 20`` as given).  The one check for ``rp predict`` /
    ``rp validate`` (:func:`lungai.rp.model_io.load_model`) and the Slicer panel's model line alike."""
    option = f"{card_path}: its threshold"
    fix = ("retrain with 'lungai rp train ... --threshold' (a risk such as 0.20), or for 'rp validate' "
           "give --threshold")
    value = card.get("threshold")
    if value is None:
        raise InputError(f"{card_path} has no threshold ({'null' if 'threshold' in card else 'no threshold key'}): "
                         "no patient can be called high or low risk", fix)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{option} {value!r} is not a number (a JSON number such as 0.2, not text or true/false)",
                         "; ".join(["give a risk between 0 and 1, e.g. 0.20", fix]))
    check_threshold(value, option, fix)
    return float(value)


def synthetic_model(card: dict) -> bool:
    """Whether the model card says the model was trained on a synthetic cohort (lungai.rp.make_cohort)."""
    return bool((card.get("training_data") or {}).get("synthetic"))


def rp_endpoint(card: dict) -> tuple[str, str]:
    """What an RP model's risk is the risk of, from its model card: (short, long).  A model trained on a synthetic
    cohort (lungai.rp.make_cohort: the built-in sample's, ``rp synth``'s) - grade >= 2 radiation pneumonitis by that
    cohort's definition; a model trained on a user's table - its outcome column, as the card records it (lungai does
    not know what the column codes: ``rp train --outcome`` takes any 0/1 column).  One rule for ``rp predict`` (its
    header line and its CSV's ``endpoint`` column), Multimodal Predict's headline and ``lungai demo``."""
    outcome = str(card.get("outcome") or "not recorded")
    if synthetic_model(card):
        return (RP_ENDPOINT,
                f"grade >= 2 radiation pneumonitis - the outcome {outcome!r} of the model's synthetic training cohort "
                "(lungai.rp.make_cohort), not of patients")
    return (f"model outcome {outcome!r}",
            f"the model's outcome {outcome!r} (1 = event), as its training table coded it - lungai's RP models are "
            "meant for grade >= 2 radiation pneumonitis; the model card (model_card.md) names the column, not its "
            "definition")


# a row's warning (rp predict's warnings column) of a random forest of an older model file, whose contributions are
# measured against the training-mean patient (lungai.rp.explain.old_baseline_note says it once, with the file and fix);
# here, in the light module: the Slicer result text (lungai.scene.results.describe_prediction_row) reads it
OLD_BASELINE_ROW = ("contributions measured against the training-mean patient, not the training patients (a model "
                    "file of an older lungai: retrain it with `lungai rp train`)")


def baseline_text(base_risk, warnings="") -> str:
    """What the contributions are measured against, in one wording: "against the training patients: baseline risk
    27 %" (``base_risk``: rp_prediction.csv's / summary.json's ``baseline_risk``), or the training-mean patient where
    the row's ``warnings`` (a cell, or a list) hold :data:`OLD_BASELINE_ROW` - the Slicer result text
    (lungai.scene.results.describe_prediction_row) and the demo's HTML report (QA rpfollow69: the report said
    "positive / red raises" with no baseline) say it."""
    said = "; ".join(map(str, warnings)) if isinstance(warnings, (list, tuple)) else str(warnings or "")
    whom = ("the training-mean patient (an older model file: see the warning)" if OLD_BASELINE_ROW in said
            else "the training patients")
    return f"against {whom}: baseline risk {100 * float(base_risk):.0f} %"


def prediction_header(card: dict) -> list[str]:
    """What ``lungai rp predict``'s risk lines mean, printed above them: what the risk is of (:func:`rp_endpoint`),
    what the interval in brackets is (the model card's ``uncertainty``) and the high-risk threshold with its rule
    (``high_risk`` = risk >= it; the rows at or above it are marked HIGH RISK) - QA rppredict62: the lines said
    "risk 0.47 (0.29-0.67)" with none of these, a model of ``--outcome Recurrence`` the same."""
    # said from the card's endpoint: a card of an older lungai said "chance of RP" of any outcome (QA srhigh62)
    n = card.get("n_bootstrap")
    interval = uncertainty_text("the" if n is None else n, rp_endpoint(card)[0])
    if n is not None and not n:     # a model saved without bootstrap members (QA stagefollow66): none, and the fix
        interval = "none - " + NO_INTERVAL
    rule = card.get("threshold_rule") or "rule not recorded"
    return [f"risk of: {rp_endpoint(card)[1]}",
            f"interval (in brackets): {interval}",
            f"HIGH RISK (high_risk = 1): risk >= {float(card['threshold']):.3g}, the model's threshold ({rule})"]


# The fields of a card that its readers use (rp predict / validate, the panel's model line, lungai demo), with their
# JSON type: (JSON types, null allowed, what each item of a list / each value of an object must be).  "a.b" is the
# field b of the object a, at any depth; "*" stands for every field of an object ("training_data.features.*.min": the
# training minimum of each feature).  A field not there is left to its reader (unless in CARD_REQUIRED); one of another
# type is refused by read_card (QA rpcard63: a hand-edited card's "training_data": 5 raised AttributeError in the
# panel's refresh and in rp predict, and "warnings": "text" was printed one character per line; QA rpcard64: the
# fields inside them were not checked - a feature's training minimum "7" or null stopped rp predict / validate with
# TypeError, "auc_ci95": ["a", "b"] the panel's model line, and "training_patients": {"sha256": [1, 2]} let rp
# validate score the model's training patients as an external cohort, "external": true).
_OBJECT, _LIST, _TEXT, _NUMBER, _BOOL = dict, list, str, (int, float), bool
# The feature sets ``lungai rp train`` compares (``--feature-sets``): the roles of the features each uses (a set may
# use fewer: ``all`` of a table without rad_ columns, lungai.rp.columns.ColumnRoles.absent_parts).  Here, in the light
# module, for the card's checks; lungai.rp.columns imports it from here.
FEATURE_SETS = {
    "clinical_dosimetric": ("clinical", "dosimetric"),
    "radiomic": ("radiomic",),
    "all": ("clinical", "dosimetric", "radiomic"),
}
# The models ``lungai rp train`` fits (``--models``): here, in the light module, so that rp train refuses a wrong
# --models / --feature-sets / --final with the arguments (:func:`check_training_choices`); lungai.rp.pipeline imports
# them from here.
MODELS = ("lr", "rf")
MODEL_NAMES = {"lr": "logistic regression", "rf": "random forest"}


def parse_choices(value, allowed, what: str) -> list[str]:
    """``value`` (a comma list, or a list) as a list of names of ``allowed``; an unknown name or none refused, naming
    the choices (``what``: "model", "feature set")."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    bad = [v for v in items if v not in allowed]
    if not items:
        raise InputError(f"no {what} given", f"choose from {', '.join(allowed)}")
    if bad:
        raise InputError(f"unknown {agree(len(bad), what, what + 's')}: {bad}", f"choose from {', '.join(allowed)}")
    return items


def final_choice_error(final: str, combos) -> InputError:
    """``rp train --final`` that is not one of the combinations ``combos`` ((feature set, model) pairs) trained."""
    return InputError(f"--final {final!r} is not one of the trained combinations",
                      f"use one of {', '.join(f'{s}/{m}' for s, m in combos)}")


def check_training_choices(models, feature_sets=None, final: str | None = None) -> None:
    """``rp train``'s ``--models``, ``--feature-sets`` (None: all) and ``--final`` (one of their combinations) refused
    before the table is read and the prediction packages are imported (QA rp71: ``--models lr,svm`` 6.6 s, ``--final
    all/xx`` 9.7 s after the command).  :func:`lungai.rp.training.train_rp` checks ``--final`` again against the sets
    the table has columns for."""
    models = parse_choices(models, MODELS, "model")
    sets = parse_choices(feature_sets or list(FEATURE_SETS), FEATURE_SETS, "feature set")
    combos = [(s, m) for s in sets for m in models]
    if final is not None and final not in {f"{s}/{m}" for s, m in combos}:
        raise final_choice_error(final, combos)


_NUMBER_OR_NULL = (int, float, type(None))        # an item that may be null (an undefined confidence limit)
CARD_FIELDS = {
    "features": (_LIST, False, _TEXT), "roles": (_OBJECT, False, None),
    "roles.roles": (_OBJECT, False, _TEXT), "roles.binary": (_LIST, True, _TEXT),
    "roles.categorical": (_LIST, False, _TEXT), "roles.types": (_OBJECT, True, _TEXT),
    "roles.how": (_OBJECT, True, _TEXT), "roles.id_column": (_TEXT, True, None),
    "categories": (_OBJECT, False, _LIST), "category_rules": (_OBJECT, True, None),
    "category_rules.case": (_TEXT, False, None), "category_rules.none": (_TEXT, False, None),
    "training_data": (_OBJECT, False, None), "training_data.n": (_NUMBER, True, None),
    "training_data.events": (_NUMBER, True, None), "training_data.synthetic": (_BOOL, True, None),
    "training_data.features": (_OBJECT, False, _OBJECT),
    **{f"training_data.features.*.{k}": (_NUMBER, False, None) for k in ("min", "max", "median", "q1", "q3",
                                                                          "missing_pct")},
    "training_data.features.*.counts": (_OBJECT, False, _NUMBER),
    "training_patients": (_OBJECT, True, None), "training_patients.salt": (_TEXT, False, None),
    "training_patients.n": (_NUMBER, True, None), "training_patients.sha256": (_LIST, False, _TEXT),
    "training_patients.sha256_loose": (_LIST, False, _TEXT),
    "metrics_nested_cv": (_OBJECT, True, None), "metrics_nested_cv.auc": (_NUMBER, True, None),
    "metrics_nested_cv.auc_ci95": (_LIST, True, _NUMBER_OR_NULL), "radiomics_settings": (_OBJECT, True, None),
    "radiomics_settings.id": (_TEXT, True, None), "radiomics_settings.settings": (_OBJECT, True, None),
    **{f"radiomics_settings.settings.{k}": (_OBJECT, True, None) for k in ("setting", "imageType", "lungai")},
    "warnings": (_LIST, True, _TEXT), "outcome": (_TEXT, True, None), "feature_set": (_TEXT, True, None),
    "model": (_TEXT, True, None), "threshold_rule": (_TEXT, True, None), "n_bootstrap": (_NUMBER, True, None),
}
# The values a text field may hold: category_rules' are lungai.rp.columns.CATEGORY_RULES' and LEGACY_CATEGORY_RULES'
# (not imported: that module needs pandas; Testing/test_rp_model.py checks they agree) - another value ("Merged") was
# read as the other rule, silently.
# roles.roles' (each feature's role) are the roles of FEATURE_SETS, the only ones a model's feature
# has - another ("foo", "dose") was taken for none: a patient with every dose feature empty was predicted without the
# warning "no dose" (lungai.rp.prepare.no_dose_warning), and a clinical feature of a role file left out of the
# panel's clinical form (lungai.scene.results.form_features), silently (QA rpfollow64).
# feature_set's are those of FEATURE_SETS - another ("foo") was shown as the model's feature set, silently (QA
# rpvalidate65; its features' roles must be of that set: check_card_features).
CARD_VALUES = {"category_rules.case": ("merged", "exact"), "category_rules.none": ("category", "missing"),
               "roles.roles": tuple(dict.fromkeys(r for roles in FEATURE_SETS.values() for r in roles)),
               "feature_set": tuple(FEATURE_SETS)}
# The fields every card 'lungai rp train' writes that rp predict (and the panel's Compute risk) cannot do without:
# the model's inputs - its features, their roles, categories and training ranges.  A card without one (or with null)
# is refused by read_card (QA rpkeys63: a card without "roles" or "features" stopped rp predict with KeyError, and the
# panel showed its folder as a model); the other fields are optional for prediction (a card's "outcome": "not
# recorded").  Each is non-null in CARD_FIELDS.  A field inside an optional object is required only where that object
# is there: "training_patients" (null: the training table had no id column; not there: an older lungai) holds the
# salt and hashes rp predict / validate tell the training patients by (QA rpcard64: without them the model's training
# patients were validated as external, said to be "a model of an older lungai").
CARD_REQUIRED = ("features", "roles", "roles.roles", "roles.categorical", "categories", "training_data",
                 "training_data.features", "training_patients.salt", "training_patients.sha256")
# and those rp validate needs besides (lungai.rp.external.validate_rp; "outcome" where --outcome is not given)
VALIDATE_REQUIRED = ("feature_set", "model", "metrics_nested_cv", "metrics_nested_cv.auc")
CARD_FIX = ("restore the model_card.json that 'lungai rp train' wrote with this model (the card was edited), or "
            "retrain the model with 'lungai rp train'")


def json_type(value) -> str:
    """What JSON calls a value's type: "a JSON object", "a JSON list", "text", "a number", "true/false", "null"."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true/false"
    for kind, name in ((dict, "a JSON object"), (list, "a JSON list"), (str, "text"),
                       ((int, float, np.integer, np.floating), "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _is(value, kinds) -> bool:
    if isinstance(value, (bool, np.bool_)):   # true/false is no number (bool is an int in Python)
        return kinds is _BOOL
    return isinstance(value, kinds)


def _objects_at(card: dict, path: str) -> list[tuple[str, dict]]:
    """(name, object) of each JSON object at ``path`` of ``card`` ("a.b": the field b of the object a; "*": every
    field of an object; "": the card itself), its name as the card spells it ("training_data.features.dose_v20_pct");
    a path through something that is not an object, or not there, gives none."""
    found = [("", card)]
    for part in filter(None, path.split(".")):
        found = [(f"{name}.{key}" if name else str(key), obj[key]) for name, obj in found if isinstance(obj, dict)
                 for key in (list(obj) if part == "*" else [part] if part in obj else [])]
    return [(name, obj) for name, obj in found if isinstance(obj, dict)]


def _field_name(holder_name: str, inner: str) -> str:
    return f"{holder_name}.{inner}" if holder_name else inner


def check_card_fields(card: dict, card_path) -> None:
    """Refuse a card whose fields (:data:`CARD_FIELDS`, at any depth) are of another JSON type than ``lungai rp
    train`` writes (a hand-edited card: ``"training_data": 5``, ``"warnings": "text"``, a feature's training
    ``"min": "7"``) or hold another value than it writes (:data:`CARD_VALUES`: a field's, or each item's of a list
    or object - a feature's role ``"foo"``): :class:`~lungai.errors.InputError`
    naming the file, the field, its type and the fix - and one without a field of :data:`CARD_REQUIRED`
    (:func:`require_card_fields`)."""
    for field, (kinds, nullable, items) in CARD_FIELDS.items():
        outer, _, inner = field.rpartition(".")
        for holder_name, holder in _objects_at(card, outer):
            if inner not in holder:
                continue
            value, where = holder[inner], f"its field {_field_name(holder_name, inner)!r}"
            if value is None and nullable:
                continue
            if not _is(value, kinds):
                raise InputError(f"{card_path}: {where} is {json_type(value)} ({_shown(value)}), not "
                                 f"{_type_name(kinds)}{' or null' if nullable else ''}, as 'lungai rp train' writes it",
                                 CARD_FIX)
            if field in CARD_VALUES and items is None and value not in CARD_VALUES[field]:
                raise InputError(f"{card_path}: {where} is {_shown(value)}, not one of "
                                 f"{', '.join(map(_shown, CARD_VALUES[field]))}, as 'lungai rp train' writes it",
                                 CARD_FIX)
            if items is None:
                continue
            for key, item in (value.items() if isinstance(value, dict) else enumerate(value, 1)):
                if not _is(item, items):
                    what = f"({key!r})" if isinstance(value, dict) else f"(item {key})"
                    raise InputError(f"{card_path}: {where} {what} is {json_type(item)} ({_shown(item)}), not "
                                     f"{_type_name(items)}, as 'lungai rp train' writes it", CARD_FIX)
                if field in CARD_VALUES and item not in CARD_VALUES[field]:   # (each item's value: roles.roles)
                    what = f"({key!r})" if isinstance(value, dict) else f"(item {key})"
                    raise InputError(f"{card_path}: {where} {what} is {_shown(item)}, not one of "
                                     f"{', '.join(map(_shown, CARD_VALUES[field]))}, as 'lungai rp train' writes it",
                                     CARD_FIX)
    # (after the types: a field of CARD_REQUIRED set to null is refused by its type, as any other, above)
    require_card_fields(card, card_path, CARD_REQUIRED, "'lungai rp predict' needs it")


def require_card_fields(card: dict, card_path, fields, needs: str) -> None:
    """Refuse a card without one of ``fields`` ("a.b": the field b of the object a, at any depth; required only where
    the object a is there), or with null there: :class:`~lungai.errors.InputError` naming the file, the field and who
    ``needs`` it, with :data:`CARD_FIX`.  An object holding a field that is not a JSON object is left to
    :func:`check_card_fields`'s type check."""
    for field in fields:
        outer, _, inner = field.rpartition(".")
        for holder_name, holder in _objects_at(card, outer):   # (an outer one missing: named in its own turn)
            if holder.get(inner) is None:
                raise InputError(f"{card_path} has no field {_field_name(holder_name, inner)!r}"
                                 f"{' (null)' if inner in holder else ''} ('lungai rp train' writes it; {needs})",
                                 CARD_FIX)


def check_card_features(card: dict, card_path) -> None:
    """Refuse a card (its fields' types checked, :func:`check_card_fields`) whose fields disagree on the model's
    inputs: each of its ``features`` has a role (``roles.roles``) and a training summary (``training_data.features``:
    its range, read by the unit and out-of-range checks) and each categorical one (``roles.categorical``) its
    categories, and each role is one of the card's ``feature_set`` (:data:`FEATURE_SETS`), as ``lungai rp train``
    writes them (QA rpcard64: a feature left out of ``categories`` was predicted without the check of unknown
    categories - a new category one-hot encoded as none, silently - and one left out of ``training_data.features``
    without the unit and range checks; QA rpvalidate65: "feature_set": "radiomic" on a model of clinical and dose
    features was shown as "Model radiomic/lr" by the panel and rp validate)."""
    features, categorical = card["features"], set(card["roles"]["categorical"])
    for field, held, names in (("roles.roles", card["roles"]["roles"], features),
                               ("training_data.features", card["training_data"]["features"], features),
                               ("categories", card["categories"], [f for f in features if f in categorical])):
        missing = [f for f in names if f not in held]
        if missing:
            raise InputError(f"{card_path}: its field {field!r} has no entry for {len(missing)} of the model's "
                             f"features ({', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}; its "
                             "field 'features' lists them, and 'lungai rp train' writes one for each)", CARD_FIX)
    # the feature set the card names (shown as the model's: "Model radiomic/lr", external_metrics.json's "model") is
    # of the roles of its features (QA rpvalidate65: "radiomic" on a model of clinical and dose features passed)
    feature_set = card.get("feature_set")
    if feature_set is not None:     # (one of FEATURE_SETS: check_card_fields)
        roles = card["roles"]["roles"]
        other = [f for f in features if roles[f] not in FEATURE_SETS[feature_set]]
        if other:
            raise InputError(f"{card_path}: its field 'feature_set' is {feature_set!r} (features of the roles "
                             f"{', '.join(FEATURE_SETS[feature_set])}), but {len(other)} of the model's features have "
                             f"another role in its field 'roles.roles' ("
                             + ", ".join(f"{f!r}: {roles[f]}" for f in other[:5]) + (" ..." if len(other) > 5 else "")
                             + "; 'lungai rp train' names the feature set of the model's features)", CARD_FIX)


def _shown(value) -> str:
    return json.dumps(value, default=str)[:60]


def _type_name(kinds) -> str:
    return {_NUMBER: "a number", _NUMBER_OR_NULL: "a number or null"}.get(kinds) or json_type(kinds())


def read_card(model_dir, threshold_given: bool = False) -> dict:
    """The model card (``model_card.json``) of an RP model folder written by ``lungai rp train``, checked as
    ``rp predict`` needs it, without opening the model file: the folder holds both files (a stage model folder -
    ``stage_model.json``, ``lungai stage train`` - is named so), the card is readable JSON of this lungai's format
    (:data:`FORMAT`: a model of another version is refused, not used half-understood) and its threshold a risk in
    (0, 1), returned as a float (:func:`check_card_threshold`), unless the caller replaces it (``threshold_given``:
    ``rp validate --threshold``), and the fields prediction needs there (:data:`CARD_REQUIRED`) and the fields its
    readers use of the JSON type ``rp train`` writes (:func:`check_card_fields`), agreeing on the model's features
    (:func:`check_card_features`).  :class:`~lungai.errors.InputError` naming the folder or file otherwise."""
    from lungai.fusion.balance import META as STAGE_META
    from lungai.model_files import read_json

    model_dir = Path(model_dir)
    path, card_path = model_dir / MODEL_FILE, model_dir / CARD_FILE
    if not model_dir.exists():     # QA rpfollow70: "model.skops and model_card.json missing" for a mistyped path
        raise InputError(f"the RP model folder {model_dir} does not exist",
                         "check the path: give the folder written by 'lungai rp train -o MODEL_DIR'")
    if not model_dir.is_dir():
        raise InputError(f"{model_dir} is a file, not an RP model folder (needs {MODEL_FILE} and {CARD_FILE})",
                         f"give the folder that holds it ({model_dir.parent})" if model_dir.name in
                         (MODEL_FILE, CARD_FILE) else "give the folder written by 'lungai rp train -o MODEL_DIR' "
                         "(the folder, not a file in it)")
    if (model_dir / STAGE_META).is_file() and not card_path.is_file():
        raise InputError(f"{model_dir} is a stage model folder ({STAGE_META}, written by 'lungai stage train'), not an "
                         f"RP model folder (needs {MODEL_FILE} and {CARD_FILE})",
                         "give the folder written by 'lungai rp train -o MODEL_DIR'; a stage model folder is for "
                         "'lungai stage predict' (in Slicer: the model folder of the Stage section)")
    if not path.is_file() or not card_path.is_file():
        missing = " and ".join(f for f in (MODEL_FILE, CARD_FILE) if not (model_dir / f).is_file())
        pickles = sorted(p.name for p in model_dir.glob("*.pkl")) + sorted(p.name for p in model_dir.glob("*.pickle"))
        # a model saved with pickle (joblib, an older tool): never loaded - it can run any code (one model-file policy)
        never = (f"; its pickle {agree(len(pickles), 'file', 'files')} {pickles[:3]} {agree(len(pickles), 'is', 'are')} "
                 f"never loaded (pickle can run arbitrary code: only {MODEL_FILE}, skops with an explicit trusted "
                 "list, is read)") if pickles else ""
        raise InputError(f"{model_dir} is not an RP model directory (needs {MODEL_FILE} and {CARD_FILE}; "
                         f"{missing} missing{never})",
                         "give the directory written by 'lungai rp train -o MODEL_DIR'"
                         + ("; a pickled model cannot be converted safely: retrain it with 'lungai rp train'"
                            if pickles else ""))
    card = read_json(card_path, RETRAIN_FIX, "model card")
    if card.get("format") != FORMAT:
        raise InputError(f"{card_path} has format {card.get('format')!r}, expected {FORMAT!r}"
                         + (f" (a model of lungai {card['lungai_version']})" if card.get("lungai_version") else ""),
                         "retrain the model with this version of lungai")
    check_card_fields(card, card_path)   # a hand-edited card: its fields of the types its readers use
    check_card_features(card, card_path)   # ... and agreeing on the model's features
    if not threshold_given:   # the card's threshold as a float: every reader (predict, validate, the scene) uses it
        card["threshold"] = check_card_threshold(card, card_path)
    return card


def validation_lines(card: dict) -> list[str]:
    """The card's validation and training patients / events (:func:`validation_text`) and its warnings (too few
    events per candidate feature: the model is unstable ...), as the Multimodal Predict panel's model line says them
    when the folder is chosen (``lungai rp predict`` prints the first below its header and says the warnings on
    stderr: :func:`card_warnings`)."""
    return [f"model card: {validation_text(card)}", *(f"warning: {w}" for w in card_warnings(card))]


# an older card's warning on patients, kept as rp train said it (before QA rpvalidate65 the card kept them so):
# "WHAT: SUBJECT (COLUMN, e.g. ID, ID and N more): DETAIL" (lungai.rp.prepare._patients_warning); the IDs end at
# the "): " before its detail (an ID holding ", " or parentheses, "Smith, J (2)", is in the list)
_NAMED_PATIENTS = re.compile(r" \(([^(),]+), e\.g\. .*?\)(?=: )")


def card_warning_texts(card: dict) -> list[str]:
    """The card's warnings, each a :class:`lungai.errors.PatientsText` with its form without the patients' IDs where
    an older card names them ("(tumour_review, e.g. P1, P2)": "(tumour_review)", the form the card keeps now) - QA
    idforms66: rp predict said them with no such form, and the demo's report copied the training patients' IDs."""
    from lungai.errors import PatientsText

    out = []
    for w in card.get("warnings") or []:
        w = str(w)
        without = _NAMED_PATIENTS.sub(r" (\1)", w)
        out.append(PatientsText(w, without_ids=without) if without != w else w)
    return out


def card_warnings(card: dict) -> list[str]:
    """The card's warnings as said: "model card: WARNING" (:func:`validation_lines`; ``lungai rp predict`` says them
    as InputNotes on stderr, QA rpfollow65), those naming patients with their form without the IDs
    (:func:`card_warning_texts`)."""
    from lungai.errors import PatientsText

    return [PatientsText(f"model card: {w}", without_ids=f"model card: {w.without_ids}")
            if getattr(w, "without_ids", None) else f"model card: {w}" for w in card_warning_texts(card)]


def model_summary(card: dict) -> list[str]:
    """The Multimodal Predict panel's line of a chosen model folder (a card :func:`read_card` read): "Model
    all/lr: 13 features", what its risk is of and its HIGH RISK threshold with its rule (:func:`prediction_header`,
    as ``rp predict`` prints them), then :func:`validation_lines` - before Compute risk, so that a model that learnt
    from few events is said when it is chosen (QA panelrp63: it was said only under a computed risk)."""
    header = prediction_header(card)
    return ([f"Model {card.get('feature_set', '?')}/{card.get('model', '?')}: "
             f"{len(card.get('features') or [])} features"]
            + [line for line in header if not line.startswith("interval")] + validation_lines(card))
