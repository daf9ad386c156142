"""Read the result files the ``lungai`` commands write and turn them into the text the user sees.

Pure Python (json/csv only; no ``slicer``), so the wording the clinician sees is unit-tested.  Used by
:mod:`lungai.scene.nodes` and the Slicer panels.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path, PurePath
from typing import Iterable, Optional

from lungai.errors import counted
from lungai.seg.config import result_value

SEGMENT_FILES = ("tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "result.json")
SEGMENT_KEYS = ("confidence", "needs_review", "review_threshold", "tumour_volume_ml", "method")
_ABSENT = object()


class ResultError(ValueError):
    """A command finished but its outputs are missing or incomplete."""


def read_segment_result(output_dir: Path) -> dict:
    """The ``result.json`` of ``lungai segment``, checked for the files and keys the panel shows."""
    output_dir = Path(output_dir)
    missing = [name for name in SEGMENT_FILES if not (output_dir / name).is_file()]
    if missing:
        raise ResultError(f"lungai segment did not write {', '.join(missing)} in {output_dir}")
    result = json.loads((output_dir / "result.json").read_text(encoding="utf-8"))
    absent = [k for k in SEGMENT_KEYS if result_value(result, k, _ABSENT) is _ABSENT]
    if absent:
        raise ResultError(f"result.json in {output_dir} lacks {', '.join(absent)}")
    return result


def method_text(info: dict) -> str:
    """How a segmentation's uncertainty and confidence were measured, from its result (``method``, ``members``,
    ``mc_passes`` of ``lungai segment``'s result.json): "ensemble of 5", "MC dropout, 8 passes"."""
    method = info.get("method")
    if method == "mc-dropout":
        return f"MC dropout, {int(info['mc_passes'])} passes" if info.get("mc_passes") else "MC dropout"
    if method == "ensemble" and info.get("members"):
        return f"ensemble of {int(info['members'])}"
    return str(method) if method else "method not recorded"


def model_text(info: dict) -> str | None:
    """The segmentation model of a result (its ``model`` folder's name; with a model choice, the model kept), or
    None when not recorded."""
    model = info.get("model")
    if not model:
        return None
    name = PurePath(str(model)).name or str(model)
    kept = (info.get("model_choice") or {}).get("kept")
    return f"{name} (model {kept} kept)" if kept and kept != name else name


def review_digits(result: dict) -> int:
    """The decimals a result's confidence and review threshold are shown with: 2, or as many more (at most 4, the
    confidence's recorded ones) as it takes to show them apart - two decimals showed 0.6402 against 0.644 as
    "confidence 0.64 (review below 0.64: NEEDS REVIEW - confidence below the review threshold)", and 0.6444 as
    "... 0.64 (review below 0.64: ok)" (QA seg68: LUNG1-003, a click 12 mm off GTV-1's centre and a seed on GTV-3).
    Rounding keeps their order: two values shown apart are shown in the order they have.  Every place that shows a
    segmentation's confidence or review threshold uses it: the summary line and banner here, the demo report's cards
    (lungai.report.html), the panels' review note (lungai.scene.nodes.review_note), the demo's console summary."""
    confidence, threshold = result.get("confidence"), result.get("review_threshold")
    if confidence is None or threshold is None:
        return 2
    return digits_apart(confidence, threshold)


def digits_apart(*values) -> int:
    """The decimals that show ``values`` apart: 2, or 3 or 4 where fewer show two different ones as equal (4 at most,
    a result's recorded decimals) - :func:`review_digits`'s rule for any confidences (a model choice's: its models'
    confidences, the kept one the higher)."""
    numbers = [float(v) for v in values]
    for digits in (2, 3):
        if len({f"{v:.{digits}f}" for v in numbers}) == len(set(numbers)):
            return digits
    return 4


def threshold_text(result: dict) -> str:
    """A result's review threshold as the user reads it, with its confidence's decimals (:func:`review_digits`)."""
    return f"{float(result['review_threshold']):.{review_digits(result)}f}"


def confidence_text(result: dict, capital: bool = False) -> str:
    """A segmentation's confidence as the user reads it: "confidence 0.83", or "uncalibrated confidence 0.69" when
    its result records ``"calibrated": false`` (the model's confidence was not calibrated: the number is not the
    calibrated probability of a good segmentation); with a third or fourth decimal where two would show it equal to
    the review threshold (:func:`review_digits`).  The one wording of ``lungai segment``'s summary line and the
    panel's banner (:func:`describe_segment_result`); ``capital``: at the start of a sentence."""
    text = (f"{'' if result.get('calibrated', True) else 'uncalibrated '}confidence "
            f"{float(result['confidence']):.{review_digits(result)}f}")
    return text[:1].upper() + text[1:] if capital else text


def describe_segment_result(result: dict) -> tuple[str, str, bool]:
    """(headline, details, needs_review) for the prominent confidence banner."""
    confidence = confidence_text(result)
    threshold = threshold_text(result)      # as many decimals as the confidence: the two shown apart
    review = bool(result["needs_review"])
    reasons = [str(r) for r in result.get("review_reasons") or []]
    if review and reasons:          # why (low confidence, cut by the image edge, models disagree, ...)
        headline = (f"NEEDS EXPERT REVIEW - {'; '.join(reasons)} - {confidence} "
                    f"(review threshold {threshold})")
    elif review:
        headline = f"NEEDS EXPERT REVIEW - {confidence} (below {threshold})"
    else:
        headline = f"{confidence_text(result, capital=True)} (review threshold {threshold})"
    method = method_text(result)
    parts = [f"tumour volume {float(result_value(result, 'tumour_volume_ml')):.1f} ml"]
    if result.get("n_components") is not None:
        parts.append(counted(int(result["n_components"]), "connected component"))
    parts.append(method)
    details = ", ".join(parts)
    if result.get("confidence_caveat"):       # the model's known confidence caveat (lungai.seg.resources)
        details += f"\n- confidence caveat: {result['confidence_caveat']}"
    # what to do about each review reason (lungai.seg.infer.review_actions, one per reason), before the notes
    actions = [str(a) for a in result.get("review_actions") or []]
    if review and actions:
        paired = len(actions) == len(reasons)
        details += "\n" + "\n".join(f"- to do ({reasons[k]}): {a}" if paired else f"- to do: {a}"
                                     for k, a in enumerate(actions))
    notes = [str(n) for n in result.get("notes") or []]
    if notes:                      # e.g. several regions in automatic mode, vessel-like regions left out
        details += "\n" + "\n".join(f"- {n}" for n in notes)
    return headline, details, review


def describe_lungs_result(volumes: dict, cut: Iterable[str] = (), notes: Iterable[str] = ()) -> str:
    """"Right lung N ml, Left lung M ml", a line "warning: ..." per warning (``cut``: ``LungResult.warnings``,
    the warnings ``lungai lungs`` prints - the airways not removed, how the scan cuts the lungs, an uncertain
    right/left label - or those re-derived from its label file), then a line "note: ..." per note it printed
    (``notes``: :func:`printed_notes`, e.g. the airways removed)."""
    return "\n".join([", ".join(f"{name} {ml:.0f} ml" for name, ml in volumes.items()),
                      *(f"warning: {note}" for note in cut), *(f"note: {note}" for note in notes)])


CONTRIBUTION_UNIT = "log-odds"     # the unit of a feature's contribution to the RP risk (Shapley value: lungai.rp.explain)


def contribution_text(value: float, digits: int = 3) -> str:
    """A feature's contribution to the risk with its sign and unit ("+0.101 log-odds"): the one wording of the
    panel's result text (:func:`describe_risk`) and ``lungai rp predict``'s console summary."""
    value = float(value) + 0.0      # + 0.0: a -0.0 reads +0.000
    # a value of 1000 or more as its significant digits (QA: "+483950000.000" of a CSV's 4.8395e+08)
    return f"{value:+.{digits}f} {CONTRIBUTION_UNIT}" if abs(value) < 1e3 else f"{value:+.4g} {CONTRIBUTION_UNIT}"


def describe_risk(probability: float, contributions: Iterable[tuple[str, float]] = (), top: int = 5,
                  label: str = "radiation pneumonitis (grade >= 2)") -> str:
    """Plain-text risk summary with the ``top`` contributions by absolute size."""
    p = float(probability)
    if not 0.0 <= p <= 1.0:
        raise ResultError(f"a risk must lie in [0, 1], got {p}")
    lines = [f"Predicted risk of {label}: {100 * p:.0f} %"]
    ranked = sorted(((str(n), float(v)) for n, v in contributions), key=lambda nv: -abs(nv[1]))[:top]
    if ranked:
        lines.append("Top contributions (+ raises, - lowers the risk):")
        lines += [f"  {contribution_text(v)}  {n}" for n, v in ranked]
    return "\n".join(lines)


def dose_csv_warnings(dose_csv) -> list[str]:
    """The warnings ``lungai dose-features`` printed with the dose CSV it wrote, as the Lung Radiomics panel repeats
    them: its ``lungs_cut`` flag (:func:`lungai.dose.features.lungs_cut`: the dose metrics are of the part of the lungs
    in view); [] for none, or a CSV without the column (an older lungai's)."""
    import pandas as pd

    from lungai.dose.features import LUNGS_CUT_COLUMN

    try:
        df = pd.read_csv(dose_csv, keep_default_na=False, dtype=str)
    except (OSError, ValueError):
        return []
    if LUNGS_CUT_COLUMN not in df.columns:
        return []
    return [str(v).strip() for v in df[LUNGS_CUT_COLUMN] if str(v).strip()]


def printed_warnings(lines=(), kind: str = "warning") -> list[str]:
    """The warnings a ``lungai`` command printed (``lines``: its output; its ``warning: ...`` lines, as
    :class:`lungai.errors.InputNote` and the commands print them), without the ``warning: `` prefix, in order.
    ``kind``: another prefix (``"note"``: :func:`printed_notes`)."""
    prefix = f"{kind}: "
    return [str(line)[len(prefix):].strip() for line in lines if str(line).startswith(prefix)]


def printed_notes(lines=()) -> list[str]:
    """The ``note: ...`` lines a ``lungai`` command printed (``lungai lungs``: "trachea, main and lobar bronchi
    removed (...)" ...), without the prefix, each once, in order: what the panel's result text says after its
    warnings (:func:`describe_lungs_result`)."""
    return list(dict.fromkeys(printed_warnings(lines, "note")))


def dose_warnings(dose_csv, lines=()) -> list[str]:
    """Every warning of a ``lungai dose-features`` run, as the Lung Radiomics panel repeats them: the ``warning: ...``
    lines it printed (``lines``: its output, e.g. a lung map of one lung, :func:`lungai.lungs.check.lung_map_notes`)
    and its CSV's ``lungs_cut`` flag (:func:`dose_csv_warnings`), each once, in that order."""
    return list(dict.fromkeys(note for note in printed_warnings(lines) + dose_csv_warnings(dose_csv) if note))


# the line ``lungai lungs`` prints once it has segmented and written the lungs, before its notes
# (lungai.cli.lungs: "right lung 2149 ml, left lung 1720 ml -> lungs.nii.gz"; with --gtv "... 1709 ml (minus the GTV)
# -> lungs.nii.gz")
LUNGS_SUMMARY = re.compile(r"^right lung \d+ ml, left lung \d+ ml(?: \(minus the GTV\))? -> ")


def lungs_run_completed(lines=()) -> bool:
    """Whether a ``lungai lungs`` run's output ``lines`` hold its summary line (:data:`LUNGS_SUMMARY`): it ran to the
    end and printed every warning of its result (``LungResult.warnings``: scan cut, small lung ...)."""
    return any(LUNGS_SUMMARY.match(str(line)) for line in lines)


def lungs_warnings(lines=(), derived=()) -> list[str]:
    """Every warning of a ``lungai lungs`` run, as the Lung AI Segmentation panel says them
    (:func:`describe_lungs_result`): those it printed (``lines``: its output - ``LungResult.warnings``: an uncertain
    right/left label when the body is cut at the side and no trachea is found, which its label file cannot show) and
    those re-derived from its label file (``derived``: :func:`lungai.scene.nodes.import_lung_outputs`), each once,
    in that order."""
    return list(dict.fromkeys(note for note in [*printed_warnings(lines), *derived] if note))


def run_unverified_note(csvs: dict) -> str | None:
    """The note of an ``ibsi-*`` preset's features that IBSI-1 gives no reference value for (``ivh_auc``), as
    ``lungai radiomics`` prints it (:func:`lungai.radiomics.ibsi.compare.unverified_note`), read from the
    ``ibsi_reference`` of the Lung Radiomics panel's runs' ``<features>.settings.json``; None when none has any."""
    from lungai.radiomics.ibsi.compare import unverified_note
    from lungai.radiomics.settings import sidecar_path

    for path in csvs.values():
        side = sidecar_path(path)
        try:
            record = json.loads(side.read_text(encoding="utf-8")).get("ibsi_reference") or {}
        except (OSError, ValueError):       # no sidecar (a run that failed): the others say it
            continue
        if record.get("without_reference_value"):
            return unverified_note(record["without_reference_value"], record.get("with_reference_value", 0))
    return None


def run_settings_notes(columns: dict, csvs: dict) -> tuple[list, list]:
    """(edge warnings, notes on NaN values) of the Lung Radiomics panel's runs, one per computed segment as
    ``lungai radiomics`` prints them (:func:`lungai.radiomics.extract.edge_notes`, :func:`~lungai.radiomics.extract.
    nan_note_lines`), read from each run's ``<features>_settings.csv`` (``cut_by_image_edge``, ``notes``) and named
    by its Slicer segment name (``columns[key]`` of ``csvs[key]``).  A note on a segment of separate parts says how to
    give one lesion in the words of the segment (:data:`lungai.radiomics.segments.SEGMENT_LESIONS`), not of label 1 of
    the label map the panel exported it as."""
    import pandas as pd

    from lungai.radiomics.extract import edge_notes, nan_note_lines
    from lungai.radiomics.segments import ONE_LABEL_LESIONS, SEGMENT_LESIONS

    frames = []
    for key, path in csvs.items():
        settings = Path(path).with_name(Path(path).stem + "_settings.csv")
        if settings.is_file():
            frame = pd.read_csv(settings, dtype=str, keep_default_na=False).assign(segment=columns[key])
            if "notes" in frame:     # each segment is label 1 of its run's mask (LungRadiomics.featureCommands)
                frame["notes"] = frame["notes"].str.replace(ONE_LABEL_LESIONS.format(label=1),
                                                            SEGMENT_LESIONS.format(name=columns[key]), regex=False)
            frames.append(frame)
    if not frames:
        return [], []
    table = pd.concat(frames, ignore_index=True)
    return edge_notes(table), nan_note_lines(table)


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def features_by_segment(long_rows: Iterable[dict], column_for: dict) -> tuple[list[str], list[dict]]:
    """Long radiomics rows -> the "features as rows" layout of :mod:`lungai.scene.radiomics`.

    Columns ``feature`` (``<image_type>_<feature_class>_<name>``), ``image_type``, ``feature_class``,
    ``name``, then one column per segment, named by ``column_for[segment key]`` (the Slicer segment
    name; in its order, so a segment without rows is a NaN column).  Rows are sorted by ``feature``.
    Returns (columns, rows) with float values (NaN where a segment lacks a feature or its value is empty).
    """
    segments: list[str] = list(dict.fromkeys(column_for.values()))
    table: dict[str, dict] = {}
    for row in long_rows:
        segment = column_for.get(row["segment"], row["segment"])
        if segment not in segments:
            segments.append(segment)
        key = f"{row['image_type']}_{row['feature_class']}_{row['feature']}"
        entry = table.setdefault(key, {"feature": key, "image_type": row["image_type"],
                                       "feature_class": row["feature_class"], "name": row["feature"]})
        # a NaN value (an IBSI configuration's undefined feature) is an empty cell in the CSV pandas writes
        entry[segment] = float(row["value"]) if str(row["value"]).strip() else float("nan")
    columns = ["feature", "image_type", "feature_class", "name", *segments]
    rows = [{c: table[key].get(c, float("nan")) for c in columns} for key in sorted(table)]
    return columns, rows


def model_card(model_dir: Path) -> dict:
    """The ``model_card.json`` of an RP model folder (features, roles, categories, threshold), read and checked by
    :func:`lungai.rp.card.read_card` - the one check ``rp predict`` and the panel's model line use (before, the
    panel's Compute risk read the JSON as it was: a card ``rp predict`` refuses passed here)."""
    from lungai.errors import InputError
    from lungai.rp.card import read_card

    try:
        return read_card(model_dir)
    except InputError as exc:
        raise ResultError(str(exc)) from exc


def form_features(card: dict) -> list[str]:
    """The model features a person types in, in the model's order: the clinical ones (role ``clinical`` in the
    card, as a role file declares them, or named ``clin_*``) and the dosimetric ones not named ``dose_*`` (a role
    file's, e.g. "MLD": the dose tools write only ``dose_*``)."""
    roles = (card.get("roles") or {}).get("roles") or {}
    out = []
    for name in card.get("features", []):
        role = roles.get(name) or ("clinical" if name.startswith("clin_") else None)
        if role == "clinical" or (role == "dosimetric" and not name.startswith("dose_")):
            out.append(name)
    return out


def clinical_fields(card: dict) -> list[tuple[str, str]]:
    """(feature, hint) for every input of the model typed in the clinical form (:func:`form_features`), in the
    model's order, with the model's own names (a role file's are not prefixed); a categorical one's hint lists the
    model's categories (spellings differing only in case merged by ``rp train``: "(any case)")."""
    categories = card.get("categories") or {}
    binary = set((card.get("roles") or {}).get("binary", []))
    any_case = " (any case)" if (card.get("category_rules") or {}).get("case") == "merged" else ""
    out = []
    for name in form_features(card):
        choices = categories.get(name)
        out.append((name, "one of: " + ", ".join(map(str, choices)) + any_case if choices else
                    "yes/no (or 1/0)" if name in binary else "number"))
    return out


def form_number_problem(card: dict, values: dict) -> str | None:
    """The clinical form's values (``values``: field -> text, as the form holds them) that should be numbers
    (:func:`clinical_fields` hint "number") and are text that is not one, each named with what to type; None when
    there are none.  QA: "12,8" (a decimal comma) reached ``lungai rp predict`` and came back with its fix for a CSV
    ("declare it categorical in a role file ...")."""
    from lungai.io.tables import number_hint     # here: the Slicer modules import this file, kept light

    bad = []
    for name, hint in clinical_fields(card):
        text = "" if values.get(name) is None else str(values[name]).strip()
        if hint != "number" or not text or _is_number(text):
            continue
        bad.append(f"{name} = {text!r} is not a number" + number_hint(text))
    return ("The clinical form has values that are not numbers: " + "; ".join(bad) + ". Type each as a number "
            "(e.g. 12.8).") if bad else None


def form_choice_problem(card: dict, values: dict) -> str | None:
    """The clinical form's values (``values``: field -> text) of a categorical field (:func:`clinical_fields` hint
    "one of: ...") that the model does not know, or of a yes/no field that is not yes/no (or 1/0, true/false ...),
    each named with what to type; None when there are none.  Read by the model's own rules (its card's
    ``category_rules``: case merged or not; words meaning "no value" are no value), as ``lungai rp predict`` reads
    them.  QA slicerlogic66: "M" for clin_sex_cat (female / male) was refused at Compute risk in the command line's
    words - "patients table: ... recode this value", "declare it categorical in a role file" - a table the panel user
    never gave.  Imports pandas: call it where the prediction packages are installed (Compute risk)."""
    import math

    import pandas as pd

    from lungai.rp.checks import _binary, categories_as_read, category_text
    from lungai.rp.columns import LEGACY_CATEGORY_RULES, is_missing_word, suggest

    categories = card.get("categories") or {}
    rules = card.get("category_rules", LEGACY_CATEGORY_RULES)
    bad = []
    for name, hint in clinical_fields(card):
        text = "" if values.get(name) is None else str(values[name]).strip()
        if hint == "number" or not text:
            continue
        known = categories.get(name)
        if known:
            if is_missing_word(text, categorical=True, rules=rules):
                continue
            read = categories_as_read(pd.Series([category_text(text, rules)], dtype=object), known, rules).iloc[0]
            if str(read) not in {str(k) for k in known}:
                bad.append(f"{name} = {text!r} is not {hint}{suggest(text, known)}")
        elif not is_missing_word(text) and math.isnan(_binary(text)):
            bad.append(f"{name} = {text!r} is not {hint}")
    return ("The clinical form has values the model does not know: " + "; ".join(bad) + ". Type one of the values "
            "each field's hint lists (the Clinical feature's Value column).") if bad else None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def missing_features(card: dict, row: dict) -> list[str]:
    """Model features that the assembled patient row lacks (NaN values are imputed by the model)."""
    return [f for f in card.get("features", []) if row.get(f) is None or row.get(f) == ""]


def describe_missing_features(card: dict, missing) -> str | None:
    """What the model needs that the patient's inputs do not give (``missing``: model features, e.g.
    :func:`missing_features`), every clinical field (:func:`form_features`) named, then the radiomics / dose
    features (the first 8); None when nothing is missing.  Said by Multimodal Predict's Compute risk and by
    :func:`lungai.scene.rp.predict_rp_node`, each with its own way to give them."""
    missing = list(missing)
    if not missing:
        return None
    typed = set(form_features(card))
    clinical = [f for f in missing if f in typed]
    other = [f for f in missing if f not in typed]
    parts = [f"clinical {', '.join(map(repr, clinical))}"] if clinical else []
    if other:
        parts.append(f"{counted(len(other), 'radiomics/dose feature')} {', '.join(map(repr, other[:8]))}"
                     + (f" and {len(other) - 8} more" if len(other) > 8 else ""))
    return f"The model needs {counted(len(missing), 'value')} the inputs do not give: {'; '.join(parts)}"


# Lung Radiomics' image-type checkboxes (LungRadiomics.ui, "Image types:"), by the feature-name part pyradiomics
# gives their features ("rad_tumour_wavelet-LLH_firstorder_Mean", "rad_lungs_log-sigma-3-0-mm-3D_glcm_Idm")
_IMAGE_TYPE_BOXES = (("_wavelet-", "Wavelet"), ("_log-sigma-", "LoG (with the model's LoG sigmas (mm))"))


def missing_features_fix(missing) -> str:
    """What Multimodal Predict's user does for the model features the patient's inputs lack (``missing``, as
    :func:`describe_missing_features`): fill the clinical form or compute the tables with Lung Radiomics - and, for
    a filtered image type's features (wavelet, LoG), tick that image type there (a table computed without it has
    none of them)."""
    missing = [str(f) for f in missing]
    boxes = [box for part, box in _IMAGE_TYPE_BOXES if any(part in f for f in missing)]
    other = [f for f in missing if not any(part in f for part, _ in _IMAGE_TYPE_BOXES)]
    generic = "Fill the clinical form, or compute the radiomics/dose tables with Lung Radiomics."
    if not boxes:
        return generic
    return (f"The radiomics table has no {' / '.join(b.split(' ')[0] for b in boxes)} features: in Lung "
            f"Radiomics tick {' and '.join(boxes)} under Image types (with the default preset; a preset or "
            "parameter file must include that image type) and compute the radiomics table again."
            + (f" {generic}" if other else ""))


def describe_prediction_row(row: dict, top: int = 5) -> tuple[str, str]:
    """(risk headline, contributions text) from one row of ``lungai rp predict`` output."""
    risk = float(row["risk"])
    # what the risk is of (the CSV's endpoint column, lungai.rp.predict.rp_endpoint; an older CSV has none)
    endpoint = str(row.get("endpoint") or "").strip()
    headline = (f"Risk of {endpoint}: " if endpoint not in ("", "nan") else "Risk ") + f"{100 * risk:.0f} %"
    # no interval where empty or NaN (a model without bootstrap members: its warnings say why; QA stagefollow66)
    if all(str(row.get(k) if row.get(k) is not None else "").strip().lower() not in ("", "nan")
           for k in ("risk_low", "risk_high")):
        headline += (f" (uncertainty interval {100 * float(row['risk_low']):.0f}-{100 * float(row['risk_high']):.0f}"
                     " %)")
    if str(row.get("high_risk", "")).strip() in ("1", "True", "true"):
        headline += " - HIGH RISK"
    if str(row.get("illustrative") or "").strip() not in ("", "nan"):   # a model of a synthetic cohort (its card)
        headline += " - ILLUSTRATIVE (model trained on a synthetic cohort; not a result for a patient)"
    pairs = []
    for k in range(1, top + 1):
        name, value = row.get(f"top{k}_feature"), row.get(f"top{k}_contribution")
        if name not in (None, "") and value not in (None, ""):
            pairs.append((name, float(value)))
    text = describe_risk(risk, pairs, top=top).split("\n", 1)
    details = text[1] if len(text) > 1 else ""
    if pairs and str(row.get("baseline_risk") or "").strip() not in ("", "nan"):   # what + / - is measured against
        # the training patients (the background of lungai.rp.explain), or an older random forest file's one patient
        from lungai.rp.card import baseline_text   # (its row's warning says so, and the fix)

        details += f"\n({baseline_text(row['baseline_risk'], row.get('warnings'))})"
    for key, what in (("imputed", "Imputed (missing) features"), ("out_of_range", "Outside the training range"),
                      ("warnings", "Warning")):
        if str(row.get(key) or "").strip() and str(row.get(key)).strip().lower() != "nan":
            details += f"\n{what}: {row[key]}"
    return headline, details


STAGE_INPUTS = {"ehr": "EHR", "rna": "RNA", "ct": "CT"}   # the modality columns of lungai stage predict


def describe_stage_row(row: dict, patient: str) -> str:
    """Predicted stage and class probabilities (``p_<class>`` columns of ``lungai stage predict``); a patient
    the command did not predict gets its ``status`` (lungai.fusion.api.predict_frame)."""
    if row.get("status") not in (None, "", "computed"):
        return f"{patient}: {row['status']}"
    probs = sorted(((k[2:], float(v)) for k, v in row.items() if k.startswith("p_") and v not in ("", None)),
                   key=lambda kv: -kv[1])
    if not probs:
        raise ResultError("the stage predictions have no p_<class> columns")
    predicted = row.get("predicted") or probs[0][0]
    lines = [f"{patient}: predicted {predicted}"
             + (" - ILLUSTRATIVE (model trained on a synthetic cohort; not a result for a patient)"   # as the RP row
                if str(row.get("illustrative") or "").strip() not in ("", "nan") else "")]
    lines += [f"  P({name}) = {100 * prob:.0f} %" for name, prob in probs]
    return "\n".join(lines)


def describe_unused_stage_inputs(row: dict, patient: str, given: Iterable[str], ids: Iterable[str] = (),
                                 card: dict | None = None) -> str:
    """A warning when an input given (``given``: "ehr", "rna", "ct") was not used for the patient (its
    ``ehr`` / ``rna`` / ``ct`` column of ``lungai stage predict`` is false, lungai.fusion.api.usable_inputs), else "".
    A CT given but not used means the model was not trained with CT: why, from ``card`` (the locked model's
    ``stage_model.json``, :func:`lungai.fusion.balance.read_card`; :func:`lungai.fusion.ct_unused_text`, the words
    of the CLI's 'the CTs are not used' warning).
    ``ids``: the predicted patients (every patient of the tables): one differing from ``patient`` only by leading
    zeros, padding, case, separators or a look-alike dash is named (:func:`lungai.io.tables.id_spelling_hint`, as
    ``lungai stage predict`` names it)."""
    from lungai.fusion import ct_unused_text
    from lungai.io.tables import id_spelling_hint

    used = lambda m: str(row.get(m, "")).strip().lower() in ("true", "1")  # noqa: E731
    given = list(given)
    lines = []
    unused = [STAGE_INPUTS[m] for m in given if m != "ct" and not used(m)]
    if unused:
        others = [str(i).strip() for i in ids if str(i).strip() != str(patient).strip()]   # the tables' patients
        rest = [STAGE_INPUTS[m] for m in STAGE_INPUTS if used(m)]
        lines.append(f"Warning: {patient} is not in the {' / '.join(unused)} table{'s' if len(unused) > 1 else ''} "
                     "(or has none of the values the model uses there), so "
                     f"{'they were' if len(unused) > 1 else 'it was'} not used" + (f": predicted from the {' + '.join(rest)} alone" if rest else "")
                     + ". Check the patient id (as in the tables)"
                     + id_spelling_hint([str(patient).strip()], others) + ".")
    if "ct" in given and not used("ct"):
        model = str(row.get("model") or "").strip() or "the model"
        card = card or {}
        lines.append(f"Warning: the CT is not used: {ct_unused_text(model, card.get('notes'), card.get('modalities'))}"
                     "; the stage comes from the EHR / RNA tables only.")
    return "\n".join(lines)


def stage_id_key(patient_id) -> str:
    """How a typed patient id is compared with the ids of the stage tables: surrounding spaces dropped (as
    ``lungai stage`` reads every id, lungai.fusion.data: :func:`lungai.io.tables.id_text`, Unicode composed too) and,
    for the panel only, case ignored."""
    from lungai.io.tables import id_text

    return id_text(patient_id).casefold()


def match_stage_patient(patient: str, ids: Iterable[str]) -> str | None:
    """The id of ``ids`` that the typed ``patient`` means: the same id (spaces around it dropped), else the one id
    equal ignoring case ("lung1-003" -> "LUNG1-003"); None when there is none (or several differ only by case)."""
    from lungai.io.tables import id_text

    ids = [str(i) for i in ids]
    typed = id_text(patient)
    if typed in [id_text(i) for i in ids]:
        return next(i for i in ids if id_text(i) == typed)
    same = [i for i in ids if stage_id_key(i) == stage_id_key(typed)]
    return same[0] if len(set(same)) == 1 else None


def describe_missing_stage_patient(patient: str, ids: Iterable[str], given: Iterable[str]) -> str:
    """The panel's text when the typed patient id is not among the predicted ones: no prediction is shown.  An id
    spelt alike (leading zeros, padding, case, separators, a look-alike dash) is named
    (:func:`lungai.io.tables.id_spelling_hint`, as ``lungai stage predict`` names it)."""
    from lungai.io.tables import id_spelling_hint

    ids = [str(i) for i in ids]
    tables = [STAGE_INPUTS[m] for m in given if m in ("ehr", "rna")]
    where = (f"the {' / '.join(tables)} table{'s' if len(tables) > 1 else ''}" if tables else "the predictions")
    return (f"{patient.strip()} is not in {where}: check the id; ids are e.g. {', '.join(ids[:5])}"
            f"{' ...' if len(ids) > 5 else ''}" + id_spelling_hint([patient.strip()], [i.strip() for i in ids])
            + ". No prediction is shown.")


# the notes of ``lungai stage predict --explain`` on an explanation it did not write (lungai.fusion.workflows.run_predict:
# no RNA-seq the model could use, a model without RNA; no CT given, a model without a CT branch), by how they begin
STAGE_EXPLANATION_NOTES = ("no gene Shapley values written", "no Grad-CAM written")
# its option names in the Multimodal Predict panel's words (the panel writes the CT manifest from its CT and patient id)
_STAGE_PANEL_WORDS = (("(--rna: ", "(RNA table: "), ("(--ct manifest)", "(CT)"), ("CT manifest", "patient id"))


def stage_explanation_notes(lines=()) -> list[str]:
    """Why ``lungai stage predict --explain`` wrote no gene Shapley values / no Grad-CAM, as it printed it (its
    ``note: ...`` lines among ``lines``, its output: :data:`STAGE_EXPLANATION_NOTES`) in the panel's words, each once:
    the command says why in one place, the Multimodal Predict panel's stage result repeats it (QA panels64: the
    panel showed no top genes and no word why)."""
    notes = [note for note in printed_notes(lines) if note.startswith(STAGE_EXPLANATION_NOTES)]
    for cli, panel in _STAGE_PANEL_WORDS:
        notes = [note.replace(cli, panel) for note in notes]
    return notes


def describe_top_genes(rows: Iterable[dict], patient: str, top: int = 5) -> str:
    """The patient's top genes (``top_genes_per_patient.csv``: patient_id, class, rank, gene, shapley_value)."""
    mine = sorted((r for r in rows if str(r.get("patient_id")) == str(patient)), key=lambda r: int(r["rank"]))[:top]
    if not mine:
        return "Top genes: none for this patient (no RNA data)"
    return "Top genes (Shapley, towards " + str(mine[0].get("class")) + "): " + ", ".join(
        f"{r['gene']} ({float(r['shapley_value']):+.3f})" for r in mine)
