"""Where the shipped default model lives: ``<repo or extension>/Resources/Models/<name>``.

Override with the environment variable ``LUNGAI_SEG_MODEL`` (a model folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import lungai
from lungai.errors import InputError, counted

# the default (nodules; automatic mode), unchanged: issue #13's rule for a new default is not met by the others
DEFAULT_MODEL_NAME = "lungai-seg-unet-ensemble"
# seed / ROI mode on tumours of 30 mm and more (stage III GTVs): trained with tumours implanted into a real CT;
# weaker on small nodules and in automatic mode
LARGE_TUMOUR_MODEL_NAME = "lungai-seg-unet-large"
# both models above segment the case, the more confident result is kept (lungai/seg/choice.py): seed / ROI mode
# when the tumour's size is not known beforehand
CHOICE_MODEL_NAME = "lungai-seg-choice"
# DynUNet + deep supervision trained on an accelerator: the best Dice in seed / ROI mode (validation and test), a
# weaker confidence-Dice correlation and more false tumour in automatic mode than the default (docs/segmentation.md)
DYNUNET_MODEL_NAME = "lungai-seg-dynunet"
# seed / ROI mode: the default U-Net, then the DynUNet when the U-Net's tumour is larger than 15 ml (large tumours);
# automatic mode: the default U-Net only (lungai/seg/choice.py, docs/segmentation.md)
ROUTED_MODEL_NAME = "lungai-seg-routed"
ENV = "LUNGAI_SEG_MODEL"
# the Lung AI Segmentation panel's Model choices ("folder": a model folder of the user's)
PANEL_MODEL_LABELS = {DEFAULT_MODEL_NAME: "default", LARGE_TUMOUR_MODEL_NAME: "large tumours",
                      CHOICE_MODEL_NAME: "both (more confident)", DYNUNET_MODEL_NAME: "DynUNet (seed / ROI)",
                      ROUTED_MODEL_NAME: "default, DynUNet if large"}
# THE shipped model advised for a tumour of 30 mm or more (seed point / ROI): the DynUNet has the best seeded Dice on
# large tumours (test: implants >= 30 mm 0.824, the large U-Net 0.647; lung2 0.800 vs 0.51; docs/segmentation.md).
# lungai segment's note (lungai.seg.choice.model_hint), --model's help, the panel's Model tooltip and README give
# large_tumour_advice(), nothing else (Testing/test_seg_choice.py).
LARGE_TUMOUR_ADVICE_MODEL = DYNUNET_MODEL_NAME
# THE figures quoted for the shipped lungai-seg-dynunet on real large tumours, seeded: {case: (the default model's
# Dice, the DynUNet's)} - the DynUNet's from docs/segmentation.md "The DynUNet retrained", test row (3) (the shipped
# retrained weights; the first weights had 0.856 / 0.605), the default's from its own test (README).  lungai segment's
# notes (lungai.seg.choice.model_hint) quote dynunet_gain(); Testing/test_seg_choice.py checks them against the docs.
DYNUNET_TEST_DICE = {"lung2": ("0.36", "0.800"), "LUNG1-003 GTV-1": ("0.07", "0.597")}


# THE known caveat of a shipped model's confidence score, keyed by the model's name (figures: docs/segmentation.md
# "The DynUNet retrained", test (1) r and (2) / (3) flags; the default's r 0.770 on the same split).  Said where the
# confidence is read: result.json / summary.json "confidence_caveat", lungai segment's and lungai demo's summary, the
# panel's banner, the demo's report, a lungai cohort patient's result.json / notes and its terminal, dicom-export's SR
# Case comment (lungai.seg.choice.add_model_notes sets it, result_confidence_caveat reads it;
# Testing/test_report_confidence_caveat.py, test_cohort.py, test_dicom_export_inputs.py)
CONFIDENCE_CAVEATS = {
    DYNUNET_MODEL_NAME: ("this model's confidence tracks the Dice less well than the default model's (test r 0.721 "
                         "against 0.770) and passed failed segmentations without a review flag on test (an implant at "
                         "Dice 0.34 with confidence 0.87, LUNG1-003's GTV-3 at Dice 0.04 with 0.65): a confidence "
                         "above the review threshold does not show the tumour is found whole - check the outline on "
                         "the CT (docs/segmentation.md, \"The DynUNet retrained\")"),
}


# lungai cohort's rp_table.csv column holding the automatic tumour's model's caveat (result_confidence_caveat; '' for a
# contoured GTV or a model without): lungai rp train / validate / predict warn of its rows (lungai.rp.prepare)
CAVEAT_COLUMN = "tumour_confidence_caveat"


def confidence_caveat(model_dir) -> str | None:
    """The known caveat of a shipped model's confidence (:data:`CONFIDENCE_CAVEATS`), or None: for the shipped model
    folder of that name only (a user's folder of the same name is not the shipped model)."""
    if not model_dir:
        return None
    try:
        here = Path(str(model_dir)).resolve()
    except (OSError, RuntimeError):
        return None
    for name, caveat in CONFIDENCE_CAVEATS.items():
        if here == (models_root() / name).resolve():
            return caveat
    return None


def result_confidence_caveat(info: dict | None) -> str | None:
    """The confidence caveat of a result.json (lungai segment's, demo's, a lungai cohort patient's): its
    ``confidence_caveat``, else - one written before it was recorded - the caveat of the shipped model its ``model``
    names (:func:`confidence_caveat`); None for a record without a confidence (an RTSTRUCT GTV's) or a model without."""
    if not isinstance(info, dict) or info.get("confidence") is None:
        return None
    return info.get("confidence_caveat") or confidence_caveat(info.get("model"))


def dynunet_gain(case: str) -> str:
    """``Dice 0.36 -> 0.800``: the default model's and the shipped DynUNet's test Dice on ``case``
    (:data:`DYNUNET_TEST_DICE`)."""
    default, dynunet = DYNUNET_TEST_DICE[case]
    return f"Dice {default} -> {dynunet}"


def large_tumour_advice(panel: bool = False, routed_run: bool = False) -> str:
    """The one advice for a large tumour: the command line's words, or the Slicer panel's (``panel``).
    ``routed_run``: said of a result of the routed choice itself (it kept the default model's result), so the routed
    choice is not advised to a user already running it (QA newfollow66: LUNG1-002 with --model lungai-seg-routed was
    told "--model lungai-seg-routed runs it when ...")."""
    model = LARGE_TUMOUR_ADVICE_MODEL
    how = f'Model "{PANEL_MODEL_LABELS[model]}"' if panel else f"--model {model}"
    routed = (f'Model "{PANEL_MODEL_LABELS[ROUTED_MODEL_NAME]}"' if panel else f"--model {ROUTED_MODEL_NAME}")
    if routed_run:
        return (f"for a tumour of 30 mm or more, give a seed point or ROI and use {how} (the best Dice on large "
                f"tumours; {routed}, run here, kept the default model's result because it found no more than 15 ml)")
    return (f"for a tumour of 30 mm or more, give a seed point or ROI and use {how} (the best Dice on large tumours; "
            f"{routed} runs it when the default model finds more than 15 ml)")


MODEL_HELP = (f"model folder, or a shipped model's name: {DEFAULT_MODEL_NAME} (the default: nodules, automatic "
              f"mode), {LARGE_TUMOUR_MODEL_NAME} (the large-tumour U-Net: tumours of 30 mm and more, below the "
              f"DynUNet there), {CHOICE_MODEL_NAME} (both, the more "
              f"confident result kept: seed / ROI mode when the size is not known), {DYNUNET_MODEL_NAME} (DynUNet: "
              f"the best Dice with a seed point or ROI; a weaker confidence), {ROUTED_MODEL_NAME} (the default model first, "
              f"then the DynUNet when its tumour is larger than 15 ml); {large_tumour_advice()}")


def panel_model_tooltip() -> str:
    """Lung AI Segmentation's Model tooltip: each choice, then the large-tumour advice."""
    return (f"default: the model shipped with the extension (nodules; automatic mode); large tumours: the shipped "
            f"large-tumour U-Net ({LARGE_TUMOUR_MODEL_NAME}: tumours of 30 mm and more with a seed point or ROI, stage "
            "III GTVs; weaker on small nodules; the DynUNet does better on large tumours); both (more confident): both "
            "shipped U-Nets segment the tumour and the more confident result is kept (seed point / ROI when the size is "
            "not known; twice the time); DynUNet (seed / ROI): the shipped DynUNet ensemble, the best Dice with a seed "
            "point or ROI at every size, a weaker confidence score (about 3x the time of the default); default, DynUNet "
            "if large: the default model, and when it finds a tumour larger than 15 ml the DynUNet segments it again and "
            "its result is kept (seed point / ROI; automatic mode: the default); folder: a model you trained or "
            f"imported.\nAdvice: {large_tumour_advice(panel=True)}.")


def models_root() -> Path:
    return Path(lungai.__file__).resolve().parents[1] / "Resources" / "Models"


def missing_models_fix() -> str:
    """The start of a fix when the shipped models are not next to the lungai package (a wheel or ``pip install .``
    copies only the package, not the repository's Resources/Models), else ""."""
    root = models_root()
    if root.is_dir():
        return ""
    return (f"the shipped models are not installed (no {root}: a wheel or `pip install .` copies only the lungai "
            "package) - install lungai from a clone of the repository with `bash tools/setup.sh` (an editable install "
            "that keeps Resources/Models next to it); or ")


def default_model_dir() -> Path:
    env = os.environ.get(ENV)
    path = Path(env) if env else models_root() / DEFAULT_MODEL_NAME
    if not (path / "model.json").is_file():
        raise InputError(f"the default segmentation model is not installed (looked in {path})",
                         f"{'' if env else missing_models_fix()}give --model DIR (from `lungai train-seg`) or set "
                         f"{ENV} to a model folder")
    return path


def shipped_models() -> list:
    """Names of the models shipped in ``Resources/Models`` (each a folder with a model.json)."""
    root = models_root()
    return sorted(p.name for p in root.iterdir() if (p / "model.json").is_file()) if root.is_dir() else []


def is_shipped_model(model_dir) -> bool:
    """``model_dir`` is one of the models shipped in ``Resources/Models`` (:func:`shipped_models`; a user's folder of
    the same name elsewhere, or a copy, is not)."""
    try:
        here = Path(str(model_dir)).resolve()
    except (OSError, RuntimeError):
        return False
    return any(here == (models_root() / name).resolve() for name in shipped_models())


def own_model_note(model_dir) -> str:
    """What a result of a model that is not shipped (:func:`is_shipped_model`: one trained with train-seg, or
    imported) says of it: not validated by lungai's test sets, its own validation split's Dice as model.json records
    it, and how to test it on patients it never saw (its held-out test split if it has one)."""
    import json

    try:
        doc = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    scores = [(method, s) for method, s in (doc.get("validation") or {}).items()
              if isinstance(s, dict) and isinstance(s.get("mean_dice"), (int, float)) and s.get("n_cases")]
    if scores:
        method, s = scores[0]
        own = f"its own validation split: {method} Dice mean {s['mean_dice']:.3f} on {counted(s['n_cases'], 'case')}, model.json"
    else:
        own = "model.json records no validation of it"
    test = (doc.get("training") or {}).get("n_test_cases") if isinstance(doc.get("training"), dict) else None
    how = (f"lungai eval-seg --model {model_dir} --split test (its held-out test split)" if test else
           f"lungai eval-seg --model {model_dir} --images IMGS --masks MASKS on patients it was not trained on")
    return (f"the model {model_dir} is a model of your own, not one shipped with lungai: no test set of lungai's "
            f"validated it ({own}); test it before relying on its results: {how}")


def resolve_model_dir(model_dir=None) -> Path:
    """A model folder, or the name of a shipped model (``lungai segment --model NAME``), or the default."""
    if not model_dir:
        return default_model_dir()
    path = Path(model_dir)
    if not path.exists() and len(path.parts) == 1 and (models_root() / path / "model.json").is_file():
        return models_root() / path
    return path
