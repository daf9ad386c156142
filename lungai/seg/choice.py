"""Choosing between segmentation models case by case.

A model-choice folder (``model.json`` of format ``lungai-seg-choice-1``) names two or more models.  Each
segments the case with the same guidance (seed point, ROI or automatic) and the result with the highest
calibrated confidence is kept.  Every model's confidence is its own estimate of the Dice of its result,
fitted on the SAME validation cases (the shipped models share their validation patients), so the values are
on one scale.  Why: the nodule model is the better one on small nodules, the large-tumour model on tumours of
30 mm and more and on real stage III GTVs; a user does not know beforehand which one a case needs.

The kept result then gets the choice's own confidence: a linear map of the kept model's confidence and of
the Dice between the models' masks (two models that disagree are a warning sign), fitted on validation
results of the choice (``calibration`` / ``review`` in its model.json, written by
``benchmarks/seg_select_validation.py --calibrate``), and a disagreement below :data:`MIN_MODEL_AGREEMENT`
is one more reason for review.  ``result.json`` records every model's confidence, the one kept and the
agreement (``model_choice``).  With ``"automatic_mode": "first model"`` automatic mode (the lungs' box) runs
the first model only: on the validation chests the second never won there, and it would double the time of
the longest mode.

A second rule, ``"rule": "second model when the first finds a large tumour"`` (:data:`ROUTE_RULE`), runs the
first model and only when its tumour is larger than ``"route_volume_ml"`` the second one, whose result (with its
own confidence and review threshold) is then kept - unless it finds no tumour.  Why: the default U-Net is the
better-calibrated model on nodules but under-segments or misses large tumours, where the DynUNet is the best model;
the first model's volume says which case is which (a tumour it marks at > 15 ml is a large one: it
under-segments those).  With ``"route_unsure_max_ml"`` the second model also segments the case when the first
model's result is below its review threshold (it is unsure) and marks no more than ``route_volume_ml``: the
second's result is kept only when its tumour is larger than ``route_volume_ml`` and at most ``route_unsure_max_ml``
and its own confidence is at or above its own review threshold - the first model missed most of a large tumour
(a few ml marked of a 50-100 mm tumour), the second is sure of it; a second model's region of more than the cap is
a leak into the mediastinum / diaphragm, not a tumour.  The shipped ``lungai-seg-routed`` (default U-Net, then the
DynUNet) uses the volume trigger only: the second trigger, chosen on validation, missed its test criteria (the
DynUNet's confident leaks on small tumours in an unseen CT lowered r; docs/segmentation.md, "Explored, not adopted:
routing when the default is unsure").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lungai.errors import InputError, agree
from lungai.seg.config import result_value, with_result_aliases
from lungai.seg.model_meta import (CHOICE_FORMAT, CHOICE_MODELS_FIX, ROUTE_RULE, RULE, RULES,  # noqa: F401 - re-exported
                                   check_choice_doc, member_model_dir)
# flag for review when the models' tumour masks overlap less than this (Dice).  Chosen on validation
# (benchmarks/seg_select_validation.py): at 0.1-0.2 it flags 1 more failure of 37 and no good result; from 0.3 on
# it flags good implanted tumours too
MIN_MODEL_AGREEMENT = 0.2

if TYPE_CHECKING:
    import SimpleITK as sitk    # imported where used: lungai segment imports this module before its first bar


@dataclass
class ModelChoice:
    names: list          # as given in model.json
    models: list         # (config, nets, model.json dict) each
    meta: dict           # the choice's own model.json


# the steps lungai.seg.infer.segment_tumour counts on its progress per model run (the box, the maps, mapped to the
# input grid)
STEPS_PER_RUN = 3


def model_runs(model) -> int:
    """How many models ``model`` (a loaded model, or a :class:`ModelChoice`; or the model.json of its folder, as
    :func:`lungai.seg.model_meta.check_model_folder` returns it: counted before torch is imported and any weights are
    loaded) may run: the progress of :func:`lungai.seg.infer.segment_tumour` counts :data:`STEPS_PER_RUN` steps for
    each."""
    if isinstance(model, dict):
        return len(model.get("models") or []) if model.get("format") == CHOICE_FORMAT else 1
    return len(model.models) if isinstance(model, ModelChoice) else 1


def count_models_not_run(progress, model, info: dict) -> None:
    """Count on ``progress`` the steps of the models of a choice that :func:`lungai.seg.infer.segment_tumour` did not
    need (``info``: its result's; a routed choice in automatic mode, a small tumour): the bar ends full."""
    runs, ran = model_runs(model), len(info.get("model_choice", {}).get("models", [])) or 1
    if runs > ran:
        progress.update(STEPS_PER_RUN * (runs - ran), f"{runs - ran} of {runs} models not needed")


def load_choice(model_dir, doc: dict, progress=None, what: str = "loading the model") -> ModelChoice:
    """The choice's models, each loaded with its members counted on ``progress`` (:func:`load_model`): "<what>
    <i>/<n> (<name>): member 1/5"."""
    from lungai.seg.model_io import load_model

    names = check_choice_doc(model_dir, doc)                          # all checked before any is loaded
    return ModelChoice(names, [load_model(member_model_dir(model_dir, name), progress=progress,
                                          what=f"{what} {i}/{len(names)} ({name})")
                               for i, name in enumerate(names, start=1)], doc)


def model_records(model_dir, doc: dict):
    """What :func:`lungai.seg.evaluate.model_seen_patients` and ``model_patients_csvs`` read of a model, from model.json
    alone (no torch, no weights): ``doc`` (the model folder's model.json, as
    :func:`lungai.seg.model_meta.check_model_folder` returns it) for a plain model; for a model choice a
    :class:`ModelChoice` whose models hold their model.json alone ``(None, None, doc)``.  ``lungai eval-seg`` finds the
    cases of training patients and checks every pair with it before it loads the model (QA seg72)."""
    from lungai.seg.model_meta import read_meta

    if doc.get("format") != CHOICE_FORMAT:
        return doc
    names = check_choice_doc(model_dir, doc)
    return ModelChoice(names, [(None, None, read_meta(member_model_dir(model_dir, name))) for name in names], doc)


def model_meta(model) -> dict:
    """model.json of a loaded model or model choice."""
    return model.meta if isinstance(model, ModelChoice) else model[2]


# the case sources of model.json's training record (lungai.seg.ensemble), as a sentence says them.  "user images":
# the user's crops (a model trained before whole CTs were counted apart: all of the user's images)
_SOURCE_WORDS = {"user images": "image crops", "user whole CT": "whole CTs", "synthetic phantom": "synthetic phantoms",
                 "synthetic whole chest": "synthetic whole chests",
                 "implanted into a real CT": "tumours implanted into real CTs"}


def _text(value) -> str:
    """An optional model.json text (``description``, ``training`` as a sentence): '' unless it is text."""
    return value.strip() if isinstance(value, str) else ""


def training_text(model) -> str:
    """What a loaded model (``load_model``) was trained on, from its model.json: "trained on 746 cases of 430
    patients: 617 image crops (lidc_nodules/image), 98 synthetic phantoms, 31 synthetic whole chests"; a model
    choice: its description, then each model's; its description, else "training data not recorded in its
    model.json", for a model.json without a training record.  A user's ``"training"`` given as text is that text;
    fields of another type (a number, a list, a ``train_sources`` that is no mapping ...) are not recorded -
    never an error after the segmentation is done."""
    if isinstance(model, ModelChoice):
        desc = _text(model.meta.get("description"))
        return (desc + " " if desc else "") + "; ".join(
            f"{name}: {training_text(m)}" for name, m in zip(model.names, model.models))
    meta = model[2] if isinstance(model[2], dict) else {}
    t = meta.get("training")
    if isinstance(t, str) and t.strip():
        return t.strip()
    t = t if isinstance(t, dict) else {}
    sources = t.get("train_sources")
    sources = {str(s): n for s, n in sources.items() if isinstance(n, (int, float)) and not isinstance(n, bool)} \
        if isinstance(sources, dict) else {}
    if not sources:
        return _text(meta.get("description")) or "training data not recorded in its model.json"
    case_sources = t.get("case_sources")
    images = case_sources.get("images") if isinstance(case_sources, dict) else None
    words = str(t.get("command") or "").split()
    if not images and "--images" in words[:-1]:
        images = words[words.index("--images") + 1]
    where = "/".join(Path(str(images)).parts[-2:]) if images else None
    # the user's crops and whole CTs: one part, "9 image crops and 1 whole CT (d2/images)", where the first stood
    user = [s for s in sources if s in _USER_SOURCES]
    parts = []
    for s, n in sources.items():
        if s in user[1:]:
            continue
        part = _background_words(n, t.get("implant_background_patients")) if s == BACKGROUND_SOURCE else \
            " and ".join(_count_words(sources[u], u) for u in (user if s in user else [s]))
        parts.append(part + (f" ({where})" if s in user and where else ""))
    head = f"trained on {t['n_train_cases']} cases" if _count(t.get("n_train_cases")) else "trained on"
    if _count(t.get("n_train_patients")):
        head += f" of {t['n_train_patients']} patients"
    return f"{head}: {', '.join(parts)}"


_USER_SOURCES = ("user images", "user whole CT")
BACKGROUND_SOURCE = "real CT (implant background)"


def _background_words(n, patients) -> str:
    """The implant backgrounds' cases (lungai.seg.dataset._background_cases: each background CT whole, and a crop
    of its own tumour), never counted as CTs: "2 cases (whole CT + a crop of its own tumour) of 1 real CT used as
    implant background: LUNG1-002"; without the patients recorded (models trained before they were), "of real CTs
    used as implant backgrounds"."""
    cases = f"{n} case{'' if n == 1 else 's'}"
    patients = [str(p) for p in patients] if isinstance(patients, list) and patients else None
    if patients is None:
        return f"{cases} (each background CT whole + a crop of its own tumour) of real CTs used as implant backgrounds"
    k = len(patients)
    what = ("whole CT + a crop of its own tumour" if k == 1 and n == 2 else "the whole CT" if k == 1 and n == 1
            else "each background CT whole + a crop of its own tumour")
    return f"{cases} ({what}) of {k} real CT{'' if k == 1 else 's'} used as implant background{'' if k == 1 else 's'}" \
           f": {', '.join(patients)}"


def _count_words(n, source: str) -> str:
    """"9 image crops", "1 whole CT" (one of a source in the singular)."""
    words = _SOURCE_WORDS.get(source, source)
    if n == 1 and source in _SOURCE_WORDS:
        words = {"tumours implanted into real CTs": "tumour implanted into a real CT"}.get(words, words[:-1])
    return f"{n} {words}"


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def mask_dice(a: sitk.Image, b: sitk.Image) -> float:
    import SimpleITK as sitk      # here: lungai segment imports this module before its first bar (model_runs)

    from lungai.overlap import dice

    return float(dice(sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0))


CHOICE_FEATURES = ["kept_confidence", "agreement"]     # the kept model's confidence, Dice between the models
DISAGREE = "the models disagree on the tumour"


def choice_confidence(kept_conf: float, agreement: float, calibration: dict | None) -> float:
    """The choice's own confidence: a linear map, fitted on validation, of the kept model's confidence and the
    models' agreement; without a fitted calibration, the kept model's confidence."""
    from lungai.seg.confidence import confidence

    if not (calibration and calibration.get("fitted")):
        return float(kept_conf)
    return confidence({"kept_confidence": kept_conf, "agreement": agreement}, calibration)


def fit_choice_calibration(kept_conf, agreement, dice, seed: int = 0) -> tuple:
    """(calibration, review threshold, how) fitted on validation results of the choice."""
    from lungai.seg.confidence import choose_review_threshold, fit_calibration

    X = np.c_[np.asarray(kept_conf, float), np.asarray(agreement, float)]
    cal = fit_calibration(X, dice, seed, features=CHOICE_FEATURES, signs=[1, 1])
    cal["how"] = ("ridge regression (alpha 0.01, non-negative) of validation Dice on the kept model's confidence "
                  "and the Dice between the models' masks; r from 5-fold cross-validated predictions")
    conf = np.array([choice_confidence(k, a, cal) for k, a in X])
    thr, how = choose_review_threshold(conf, dice)
    return cal, thr, how


def segment_with_choice(ct, choice: ModelChoice, segment, **kwargs):
    """Run ``segment(ct, model, **kwargs)`` for every model of ``choice``; keep the most confident result.

    Its confidence and review flag become the choice's own (:func:`choice_confidence`, the choice's review
    threshold from model.json; no fitted calibration for the method: the kept model's), and a disagreement
    between the models (Dice of their masks < ``min_model_agreement``) is one more reason for review."""
    from lungai.seg.infer import LOW_CONFIDENCE, UNCALIBRATED_REASON

    if choice.meta.get("rule") == ROUTE_RULE:
        return segment_routed(ct, choice, segment, **kwargs)
    best, best_name, tried, masks = None, None, [], []
    first_only = choice.meta.get("automatic_mode") == "first model"
    for i, (name, model) in enumerate(zip(choice.names, choice.models)):
        res = segment(ct, model, **kwargs)
        if i == 0 and first_only and res.info["roi_mode"] == "lungs":
            res.info["model_choice"] = {"rule": "automatic mode: the first model only", "kept": name,
                                        "models": [_tried(name, res)]}
            res.info["notes"].append(f"automatic mode: model {name} only (the other models are for seed / ROI mode)")
            return res
        tried.append(_tried(name, res))
        masks.append(res.tumour)
        if best is None or res.info["confidence"] > best.info["confidence"]:
            best, best_name = res, name
    agreement = min(mask_dice(masks[0], m) for m in masks[1:])
    import SimpleITK as sitk

    if not any(sitk.GetArrayViewFromImage(m).any() for m in masks):
        agreement = 1.0                          # all found nothing: they agree
    info = best.info
    method = info.get("method", "ensemble")
    kept_conf = float(info["confidence"])
    cal = choice.meta.get("calibration", {}).get(method)
    conf = choice_confidence(kept_conf, agreement, cal)
    review = choice.meta.get("review", {}).get(method)
    threshold = float(review["threshold"]) if review and cal and cal.get("fitted") else float(info["review_threshold"])
    min_agreement = float(choice.meta.get("min_model_agreement", MIN_MODEL_AGREEMENT))
    # the choice's own fitted calibration makes its confidence calibrated whatever the kept model's was
    dropped = (LOW_CONFIDENCE, UNCALIBRATED_REASON) if cal and cal.get("fitted") else (LOW_CONFIDENCE,)
    reasons = [r for r in info.get("review_reasons", []) if r not in dropped]
    reasons = ([LOW_CONFIDENCE] if conf < threshold else []) + reasons + ([DISAGREE] if agreement < min_agreement else [])
    info["model_choice"] = {"rule": RULE, "kept": best_name, "models": tried, "kept_confidence": round(kept_conf, 4),
                            "agreement_dice": round(agreement, 4), "min_agreement": min_agreement,
                            "calibrated": bool(cal and cal.get("fitted"))}
    info.update(confidence=round(conf, 4), review_threshold=threshold, needs_review=bool(reasons),
                review_reasons=reasons, calibrated=bool(cal and cal.get("fitted")) or bool(info.get("calibrated")))
    # the confidences with the decimals that show the choice's apart from its review threshold (review_digits, as
    # the summary line shows them) and the models' apart from each other (QA seg69: two decimals everywhere here,
    # "0.64" of a choice's 0.6402 below its threshold 0.644 that the summary line showed as 0.640)
    from lungai.scene.results import digits_apart, review_digits

    d = max(review_digits(info), digits_apart(*(t["confidence"] for t in tried)))
    others = ", ".join(f"{t['model']} {t['confidence']:.{d}f}" for t in tried if t["model"] != best_name)
    info["notes"].append(f"model {best_name} kept (its confidence {kept_conf:.{d}f}; {others}); the models' masks "
                         f"overlap with Dice {agreement:.2f}; confidence of the choice {conf:.{d}f}")
    if agreement < min_agreement:
        info["notes"].append(f"the models disagree on this tumour (Dice {agreement:.2f} between their masks, "
                             f"below {min_agreement:.2f}): check the outline")
    return best


def _tried(name: str, res) -> dict:
    return with_result_aliases({"model": name, "confidence": res.info["confidence"],
                                "needs_review": res.info["needs_review"], "tumour_volume_ml": result_value(res.info, "tumour_volume_ml")})


def segment_routed(ct, choice: ModelChoice, segment, **kwargs):
    """:data:`ROUTE_RULE`: the first model segments the case; in seed / ROI mode, when its tumour is larger than the
    choice's ``route_volume_ml``, the second model segments it with the same guidance and its result - its own
    confidence and review flag - is kept, unless it finds no tumour (then the first's is kept).  With
    ``route_unsure_max_ml``, also when the first model's result is below its review threshold: the second's result
    is then kept only if its tumour is larger than ``route_volume_ml``, at most ``route_unsure_max_ml`` and not
    below its own review threshold.  Automatic mode: the first model only.  ``result.json``'s ``model_choice``
    records both volumes and why."""
    from lungai.seg.infer import LOW_CONFIDENCE

    (first, second), (m1, m2) = choice.names, choice.models
    limit = float(choice.meta["route_volume_ml"])
    cap = choice.meta.get("route_unsure_max_ml")
    res = segment(ct, m1, **kwargs)
    kept, vol = first, float(result_value(res.info, "tumour_volume_ml"))
    tried = [_tried(first, res)]
    unsure = LOW_CONFIDENCE in res.info.get("review_reasons", [])
    if res.info["roi_mode"] == "lungs":
        why = "automatic mode: the first model only"
    elif vol > limit:
        other = segment(ct, m2, **kwargs)
        tried.append(_tried(second, other))
        if result_value(other.info, "tumour_volume_ml") > 0:
            why = f"the first model's tumour ({vol:.1f} ml) is larger than {limit:g} ml: the second model's result kept"
            res, kept = other, second
        else:
            why = (f"the first model's tumour ({vol:.1f} ml) is larger than {limit:g} ml, but the second model found no "
                   "tumour: the first model's result kept")
    elif cap is not None and unsure:
        other = segment(ct, m2, **kwargs)
        tried.append(_tried(second, other))
        vol2 = float(result_value(other.info, "tumour_volume_ml"))
        sure = LOW_CONFIDENCE not in other.info.get("review_reasons", [])
        head = f"the first model is unsure (confidence below its review threshold; {vol:.1f} ml)"
        if limit < vol2 <= float(cap) and sure:
            why = (f"{head} and the second model is sure of a large tumour ({vol2:.1f} ml, {limit:g}-{float(cap):g} "
                   "ml): the second model's result kept")
            res, kept = other, second
        else:
            reason = (f"its tumour ({vol2:.1f} ml) is not larger than {limit:g} ml" if vol2 <= limit else
                      f"its region ({vol2:.1f} ml) is larger than {float(cap):g} ml - a leak, not a tumour"
                      if vol2 > float(cap) else "it is unsure too")
            why = f"{head}; the second model's result not kept: {reason}"
    else:
        why = f"the first model's tumour ({vol:.1f} ml) is not larger than {limit:g} ml"
        if cap is not None:
            why += " and its confidence is not below its review threshold"
    res.info["model_choice"] = {"rule": ROUTE_RULE, "route_volume_ml": limit, "route_unsure_max_ml": cap,
                                "kept": kept, "why": why, "models": tried}
    res.info["notes"].append(f"model {kept} kept: {why}")
    return res


def model_hint(model_dir, info: dict) -> str | None:
    """A note pointing to a better-suited shipped model for a seed / ROI result, or None.

    - the shipped default model alone, a tumour larger than the routed choice's ``route_volume_ml``: the DynUNet
      (alone or through the routed choice) did better on such tumours on validation and test;
    - the default model's result - alone, or kept by the routed choice - below its review threshold and not larger
      than ``route_volume_ml``: the default misses most of many large tumours (marks a few ml of them); if the
      tumour the user marked is larger, the DynUNet segments large tumours better (routing there automatically was
      tried and not adopted: its confidence does not tell its leaks from tumours, docs/segmentation.md).
    Both give :func:`lungai.seg.resources.large_tumour_advice`, the one advice for a large tumour.
    None otherwise (another model or a user's own, automatic mode, a sure small result, an empty one - nothing
    found there is no sign of a large tumour -, no routed choice shipped), and whenever the seed / ROI box itself is
    flagged as lying in bone, far from the lungs or in aerated lung (``lungai.seg.infer.MISPLACED_REASONS``): the
    first fix is to move it onto the tumour, not another model (QA on LUNG1-003: a box in the arm, 0.7 ml found, was
    told the DynUNet segments large tumours better) - or whose numbers may be bounds / voxel indices (``ROI_ORDER_REASON`` /
    ``VOXEL_INDEX_REASON``): the first fix is to run again with the numbers the note gives."""
    import json

    from lungai.seg.infer import LOW_CONFIDENCE, MISPLACED_REASONS, WRONG_NUMBERS_REASONS
    from lungai.seg.model_io import MODEL_JSON
    from lungai.seg.preprocess import reason_key
    from lungai.seg.resources import (DEFAULT_MODEL_NAME, ROUTED_MODEL_NAME, dynunet_gain, large_tumour_advice,
                                      models_root)

    routed = models_root() / ROUTED_MODEL_NAME / MODEL_JSON
    if info.get("roi_mode") not in ("seed", "roi") or not routed.is_file():
        return None
    if set(MISPLACED_REASONS + WRONG_NUMBERS_REASONS) & {reason_key(r) for r in info.get("review_reasons") or ()}:
        return None
    try:
        here = Path(model_dir).resolve()
        alone = here == (models_root() / DEFAULT_MODEL_NAME).resolve() and "model_choice" not in info
        kept_default = (here == (models_root() / ROUTED_MODEL_NAME).resolve()
                        and info.get("model_choice", {}).get("kept") == DEFAULT_MODEL_NAME)
        limit = float(json.loads(routed.read_text(encoding="utf-8"))["route_volume_ml"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    volume = float(result_value(info, "tumour_volume_ml", 0.0))
    if alone and volume > limit:
        return (f"this tumour is larger than {limit:g} ml: the DynUNet did better than the default model on tumours "
                f"that large on validation and test - e.g. lung2 {dynunet_gain('lung2')}; {large_tumour_advice()} "
                "(docs/segmentation.md)")
    if (alone or kept_default) and 0 < volume <= limit and LOW_CONFIDENCE in info.get("review_reasons", []):
        return (f"the default model is unsure of this result ({volume:.1f} ml); if the tumour you marked is larger "
                "(a stage III tumour), the default marks only a few ml of many large tumours, the DynUNet segments them "
                f"better (test: LUNG1-003's 35 ml GTV (62 mm across) {dynunet_gain('LUNG1-003 GTV-1')}) - "
                f"{large_tumour_advice(routed_run=kept_default)}; check its outline, on small tumours it can run on "
                "into the mediastinum "
                "(docs/segmentation.md)")
    return None


# what each part of seen_patients' answer means for a result
_SEEN_WORDS = {"training": "training", "validation": "validation (its calibration and review threshold were fitted "
                                                     "on them)"}


def in_sample_note(model_dir, info: dict, patients) -> tuple[str, dict] | None:
    """(note, record) when the patient of this CT (``patients``: its names - a DICOM PatientID, a NIfTI file's name
    without suffix, a case name) was among the patients the model whose result ``info`` holds was trained or
    validated on - model.json's ``training_patients`` / ``validation_patients`` (salted hashes) and
    ``training.implant_background_patients`` (the real CTs tumours were implanted into), matched as ``eval-seg`` and
    the test reports match them (:func:`lungai.seg.evaluate.seen_patients`: a name, or its text before the first
    '_', letter case ignored: ``LUNG1-002_ct``); of a model choice, the model whose result was kept
    (``info['model_choice']['kept']``).  None when not seen, or when the model records no patients (nothing to
    check).  QA newuser66: the DynUNet on LUNG1-002 - the CT its training tumours were implanted into - gave 264 ml
    at confidence 0.80 without a word that the result is in-sample."""
    from types import SimpleNamespace

    from lungai.seg.evaluate import seen_patients
    from lungai.seg.resources import resolve_model_dir

    ids = list(dict.fromkeys(str(p).strip() for p in (patients or ()) if p is not None and str(p).strip()))
    if not ids:
        return None
    folder = Path(resolve_model_dir(model_dir))
    try:
        doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("format") == CHOICE_FORMAT:
            kept = (info.get("model_choice") or {}).get("kept")
            if not kept:
                return None
            folder = member_model_dir(folder, kept)
            doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, InputError):     # the model was read to segment: nothing more to say here
        return None
    if not isinstance(doc, dict):
        return None
    cases = [SimpleNamespace(case_id=i, patient=i) for i in ids]
    seen, _ = seen_patients(doc, cases)
    loose, _ = seen_patients(doc, cases, loose=True)
    hit = next(((i, s or t, not s) for i, s, t in zip(ids, seen, loose) if s or t), None)
    if hit is None:
        return None
    name, part, near = hit
    patient, cases = _seen_patient_and_cases(folder, doc, name, part, near)
    background = part == "training" and patient.casefold() in {
        str(b).casefold() for b in (doc.get("training") or {}).get("implant_background_patients") or ()}
    how = " (a real CT its training tumours were implanted into)" if background else ""
    was = ("matches, ignoring letter case / leading zeros, a patient" if near else "was") + \
        f" in the {_SEEN_WORDS[part]} data of model {folder.name}{how}"
    mine = [c for c in cases if _same_name(c, name, near)]
    if mine:
        through = f" (this very CT: its case {mine[0]})"
    elif cases:
        through = f" (the model's {agree(len(cases), 'case', 'cases')} {', '.join(cases)} of that patient)"
    else:           # the model's cases of that patient are not known (a shipped model): the patient is said
        through = ""
    of = f" of {name}" if patient != name else ""
    note = (f"this CT's patient ({patient}{of}) {was}{through}: {'if it is that patient, ' if near else ''}this result "
            "is in-sample and shows nothing of how the model does on new patients (its Dice and confidence are likely "
            "better than on a patient it never saw) - judge the model on patients outside its training and "
            "validation data (docs/segmentation.md)")
    return note, {"model": folder.name, "patient": patient, "cases": cases, "part": part}


def _seen_patient_and_cases(folder: Path, doc: dict, name: str, part: str, near: bool) -> tuple[str, list]:
    """(patient, cases) of the name ``name`` that :func:`in_sample_note` found in the ``part`` ("training" /
    "validation") data of the model ``doc`` (in ``folder``): the patient is the text before the name's first '_' when
    that is what the model recorded (a crop LIDC-IDRI-0012_R_2 of a patient trained through its crop R_1), else the
    name; the cases are the model's cases of that part whose patient it is - model.json's ``training.val_cases``, the
    training cases from train-seg's checkpoints/settings.json when the folder keeps it (model.json keeps those only
    as salted hashes) - or [] when they are not known.  QA trainfollow71: ``lungai segment LIDC-IDRI-0012_R_2`` with
    a model validated on LIDC-IDRI-0012_R_1 said "this CT's patient (LIDC-IDRI-0012_R_2) was in the validation data"
    and recorded the file name as ``in_sample.patient``."""
    from types import SimpleNamespace

    from lungai.model_files import loose_id, training_overlap
    from lungai.seg.dataset import patient_of
    from lungai.seg.evaluate import SEEN_RECORDS, seen_patients
    from lungai.seg.settings import CASE_PARTS, SETTINGS_JSON

    first = patient_of(name)
    patient = name
    if first != name:
        one = SimpleNamespace(case_id=first, patient=first)
        if seen_patients(doc, [one], loose=near)[0][0]:
            patient = first
    key = next(k for k, v in CASE_PARTS.items() if v == part)
    listed = (doc.get("training") or {}).get(key)
    if not isinstance(listed, list):
        try:
            listed = json.loads((folder / "checkpoints" / SETTINGS_JSON).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            listed = None
    same = {loose_id(patient) if near else patient.casefold()}
    cases = [c for c in listed or () if isinstance(c, str)
             and ((loose_id(patient_of(c)) if near else patient_of(c).casefold()) in same or _same_name(c, name, near))]
    # this CT's own name among the hashed names of that part: it is one of the model's cases (a patient's ID is not)
    record = next(k for k, v in SEEN_RECORDS if v == part)
    if (patient != name and not any(_same_name(c, name, near) for c in cases)
            and training_overlap({"training_patients": doc.get(record)}, [(name,)], loose=near)):
        cases.append(name)
    return patient, sorted(dict.fromkeys(cases), key=str.casefold)


def _same_name(a: str, b: str, near: bool) -> bool:
    """Whether two case names are one: letter case ignored, and leading zeros too when ``near`` (a loose match)."""
    from lungai.model_files import loose_id

    return loose_id(a) == loose_id(b) if near else a.casefold() == b.casefold()


def add_model_notes(model_dir, info: dict, patients=()) -> None:
    """What a result says of its model, added in place to ``info`` (lungai segment, lungai demo and the panel alike):
    :func:`model_hint` appended to ``notes``, and the model's known confidence caveat
    (:func:`lungai.seg.resources.confidence_caveat`) as ``confidence_caveat`` - said beside the confidence;
    ``model_shipped``: whether the model is one shipped with lungai - if not (a model of the user's own), a note says
    it was not validated by lungai's test sets (:func:`lungai.seg.resources.own_model_note`).  ``patients``: the
    CT's names (PatientID, file name, case): when the model was trained or validated on that patient, a note says the
    result is in-sample and ``in_sample`` records which (:func:`in_sample_note`)."""
    from lungai.seg.resources import confidence_caveat, is_shipped_model, own_model_note, resolve_model_dir

    # a shipped model's name as given (--model lungai-seg-dynunet) is that model (QA newfollow66: the bare name was
    # called "a model of your own, not one shipped")
    model_dir = resolve_model_dir(model_dir)
    hint = model_hint(model_dir, info)
    if hint:
        info.setdefault("notes", []).append(hint)
    seen = in_sample_note(model_dir, info, patients)
    if seen:
        info.setdefault("notes", []).append(seen[0])
        info["in_sample"] = seen[1]
    info["model_shipped"] = is_shipped_model(model_dir)
    if not info["model_shipped"]:
        info.setdefault("notes", []).append(own_model_note(model_dir))
    caveat = confidence_caveat(model_dir)
    if caveat:
        info["confidence_caveat"] = caveat
