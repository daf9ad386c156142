"""Where the shipped default model lives: ``<repo or extension>/Resources/Models/<name>``.

Override with the environment variable ``LUNGAI_SEG_MODEL`` (a model folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import lungai
from lungai.errors import InputError

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
MODEL_HELP = (f"model folder, or a shipped model's name: {DEFAULT_MODEL_NAME} (the default: nodules, automatic "
              f"mode), {LARGE_TUMOUR_MODEL_NAME} (tumours of 30 mm and more), {CHOICE_MODEL_NAME} (both, the more "
              f"confident result kept: seed / ROI mode when the size is not known), {DYNUNET_MODEL_NAME} (DynUNet: "
              f"the best Dice with a seed point or ROI; a weaker confidence), {ROUTED_MODEL_NAME} (the default model first, "
              "then the DynUNet when its tumour is larger than 15 ml)")


def models_root() -> Path:
    return Path(lungai.__file__).resolve().parents[1] / "Resources" / "Models"


def default_model_dir() -> Path:
    env = os.environ.get(ENV)
    path = Path(env) if env else models_root() / DEFAULT_MODEL_NAME
    if not (path / "model.json").is_file():
        raise InputError(f"the default segmentation model is not installed (looked in {path})",
                         f"give --model DIR (from `lungai train-seg`) or set {ENV} to a model folder")
    return path


def shipped_models() -> list:
    """Names of the models shipped in ``Resources/Models`` (each a folder with a model.json)."""
    root = models_root()
    return sorted(p.name for p in root.iterdir() if (p / "model.json").is_file()) if root.is_dir() else []


def resolve_model_dir(model_dir=None) -> Path:
    """A model folder, or the name of a shipped model (``lungai segment --model NAME``), or the default."""
    if not model_dir:
        return default_model_dir()
    path = Path(model_dir)
    if not path.exists() and len(path.parts) == 1 and (models_root() / path / "model.json").is_file():
        return models_root() / path
    return path
