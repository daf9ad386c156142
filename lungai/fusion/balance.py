"""A locked stage model's training class balance in words, from its recorded numbers (``stage_model.json``): the one
text of ``model_card.md``, ``lungai stage predict``'s console, ``lungai demo``'s report / console and the Multimodal
Predict panel.  Light (json only: no torch), so the Slicer panel may import it."""

from __future__ import annotations

import json
from pathlib import Path

META = "stage_model.json"   # a locked stage model's card (lungai.fusion.model_io)
# what stage validate's refusal of a cohort of training patients names (lungai.model_files.external_patients)
EXTERNAL_TEXTS = {"train": "`lungai stage train`",
                  "honest": "`lungai stage cv` gives the honest estimate on the training cohort itself"}


STAGE_FIX = "retrain with `lungai stage train`, or restore the model folder exactly as lungai wrote it"


def check_stage_model_folder(folder, option: str = "") -> dict:
    """The first check of :func:`lungai.fusion.model_io.load`: a locked stage model's folder holds its
    stage_model.json, a readable JSON object - light (no torch), so that ``lungai stage validate / predict --model``,
    ``lungai demo --stage-model`` and the Multimodal Predict panel (before Predict stage is enabled) refuse a wrong
    folder before the heavy imports.  ``option``: the option that named the folder, said with it.  Returns the card
    (QA slicerfollow71: a folder with a truncated stage_model.json enabled the panel's Predict stage, refused by the
    child 28-30 s later, after torch was loaded)."""
    from lungai.errors import InputError
    from lungai.model_files import read_json

    if not (Path(folder) / META).is_file():
        raise InputError(f"{option + ' ' if option else ''}{folder} is not a locked stage model (no {META})",
                         "pass the folder written by `lungai stage train`")
    return read_json(Path(folder) / META, STAGE_FIX, "stage model description")


def class_counts_text(counts) -> str:
    """A training cohort's patients per class, e.g. "I 14, II 14, III 12" (never a raw dict); "" when not recorded."""
    if not isinstance(counts, dict) or not counts:
        return ""
    return ", ".join(f"{c} {n}" for c, n in counts.items())


# a class with fewer training patients than this share of the largest class's is "rare" (said on the card and by
# stage predict: a model learns it from few examples and predicts it less often)
RARE_CLASS_SHARE = 0.5


def class_balance_lines(meta: dict, model=None) -> list:
    """What the locked model's training cohort held of each class and what that means for new patients, from its
    recorded numbers: each class's patients and share, with the inner-CV recall (the share of that class's patients
    it predicted right, :func:`lungai.fusion.cv.class_recall`) of the model that predicts - ``model``, one of the
    folder's models (``stage predict --use``), else the selected one - where recorded, then a plain sentence naming
    the rare classes (fewer than :data:`RARE_CLASS_SHARE` of the largest class's patients).  A model other than the
    selected one is named in the line, with its own recall or none: never the selected model's recall beside
    another model's predictions (QA stageuse63: ``--use fusion`` printed the selected forest's recall of III, 0.50,
    for a fusion whose inner-CV recall of III was 0.00).  [] when no class counts are recorded.  For model_card.md,
    ``lungai stage predict``, the demo report and the Multimodal Predict panel."""
    counts = (meta.get("training_cohort") or {}).get("class_counts")
    if not isinstance(counts, dict) or not counts:
        return []
    sel = meta.get("selection") or {}
    cands = sel.get("candidates") or {}
    selected = meta.get("selected")
    used = model or selected
    recall = (cands.get(used) or {}).get("inner_recall") or {}
    total = sum(int(n) for n in counts.values()) or 1
    fmt = lambda c: "n/a" if recall.get(str(c)) is None else f"{recall[str(c)]:.2f}"  # noqa: E731
    parts = [f"{c} {n} ({100 * int(n) / total:.0f} %" + (f", recall {fmt(c)})" if recall else ")")
             for c, n in counts.items()]
    whose = ("the selected model's recall in the inner CV" if used == selected else
             f"the inner-CV recall of {used}, the model used here, not the selected {selected}'s")
    lines = ["Training patients per class (share" + (f"; {whose}: the share of the class's patients it predicted "
                                                      "right" if recall else "") + f"): {', '.join(parts)}"]
    if not recall:
        ran = any((c or {}).get("inner_recall") for c in cands.values())
        lines[0] += (f" (recall per class of {used}, the model that predicted here, not recorded in its model card; "
                     if ran and used != selected else " (recall per class not recorded: no inner CV ran; ") + \
            "the confusion matrices of `lungai stage cv` show it)"
    largest = max(counts, key=lambda c: int(counts[c]))
    rare = [c for c, n in counts.items() if int(n) < RARE_CLASS_SHARE * int(counts[largest])]
    if rare:
        named = ", ".join(f"{c} ({counts[c]} patients" + (f", recall {fmt(c)})" if recall else ")") for c in rare)
        lines.append(f"Rare in training: {named}, against {counts[largest]} of {largest}. The model learnt "
                     f"{'this class' if len(rare) == 1 else 'these classes'} from few patients and may lean towards "
                     f"{largest}: where most of your patients are {' or '.join(map(str, rare))}, many of them may be "
                     f"predicted {largest} wrongly. Check it on labelled patients of your own "
                     "(`lungai stage validate`) before relying on it.")
    return lines



def recorded_class_balance(model_dir) -> list:
    """:func:`class_balance_lines` of the locked stage model in ``model_dir`` (its ``stage_model.json``), for a
    reader that shows a prediction of it without loading it (the Slicer panel: ``lungai stage predict`` loads and
    checks the folder); [] when the folder has no readable card (the command then refuses the folder, saying why)."""
    meta = read_card(model_dir)
    return class_balance_lines(meta) if meta else []


def read_card(model_dir) -> dict:
    """The locked stage model's card in ``model_dir`` (its ``stage_model.json``: "notes", "modalities", ...) read
    without loading the model (the Slicer panel); {} when the folder has no readable card."""
    try:
        meta = json.loads((Path(model_dir) / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
