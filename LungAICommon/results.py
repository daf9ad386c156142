"""Read the result files the ``lungai`` commands write and turn them into panel text.

Pure Python (json/csv only), so the wording the clinician sees is unit-tested.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Optional

SEGMENT_FILES = ("tumor.nii.gz", "probability.nii.gz", "uncertainty.nii.gz", "result.json")
SEGMENT_KEYS = ("confidence", "needs_review", "review_threshold", "tumor_volume_ml", "method")


class ResultError(ValueError):
    """A command finished but its outputs are missing or incomplete."""


def read_segment_result(output_dir: Path) -> dict:
    """The ``result.json`` of ``lungai segment``, checked for the files and keys the panel shows."""
    output_dir = Path(output_dir)
    missing = [name for name in SEGMENT_FILES if not (output_dir / name).is_file()]
    if missing:
        raise ResultError(f"lungai segment did not write {', '.join(missing)} in {output_dir}")
    result = json.loads((output_dir / "result.json").read_text())
    absent = [k for k in SEGMENT_KEYS if k not in result]
    if absent:
        raise ResultError(f"result.json in {output_dir} lacks {', '.join(absent)}")
    return result


def describe_segment_result(result: dict) -> tuple[str, str, bool]:
    """(headline, details, needs_review) for the prominent confidence banner."""
    confidence = float(result["confidence"])
    threshold = float(result["review_threshold"])
    review = bool(result["needs_review"])
    if review:
        headline = f"NEEDS EXPERT REVIEW - confidence {confidence:.2f} (below {threshold:.2f})"
    else:
        headline = f"Confidence {confidence:.2f} (review threshold {threshold:.2f})"
    method = result["method"]
    if method == "mc-dropout" and result.get("mc_passes"):
        method = f"MC dropout, {result['mc_passes']} passes"
    elif result.get("members"):
        method = f"ensemble of {result['members']}"
    parts = [f"tumour volume {float(result['tumor_volume_ml']):.1f} ml"]
    if result.get("n_components") is not None:
        parts.append(f"{int(result['n_components'])} connected component(s)")
    parts.append(method)
    return headline, ", ".join(parts), review


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
        lines += [f"  {'+' if v >= 0 else '-'}{abs(v):.3f}  {n}" for n, v in ranked]
    return "\n".join(lines)


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def patient_row(radiomics: Optional[dict] = None, dose: Optional[dict] = None, clinical: Optional[dict] = None,
                case: str = "patient") -> dict:
    """One patient row for the RP model, with the column prefixes it expects (rad_, dose_, clin_).

    Names already carrying one of the prefixes are kept as they are; ids/metadata columns are dropped.
    """
    row = {"case": case}
    for prefix, values in (("rad_", radiomics), ("dose_", dose), ("clin_", clinical)):
        for key, value in (values or {}).items():
            key = str(key)
            if key in ("case", "patient_id", "id", "image", "mask", "label", "segment") \
                    or key.startswith("diagnostics_"):
                continue
            name = key if key.startswith(("rad_", "dose_", "clin_")) else prefix + key
            if name in row:
                raise ResultError(f"the column {name} comes twice; rename one of the inputs")
            row[name] = value
    return row


def write_csv_row(row: dict, path: Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return path


def radiomics_columns(long_rows: Iterable[dict], case: Optional[str] = None) -> dict:
    """Long-format radiomics rows (case, segment, image_type, feature_class, feature, value) as
    one patient's ``rad_<segment>_<image_type>_<feature_class>_<feature>`` values (as in
    :func:`lungai.radiomics.to_wide`, the columns the multimodal models read)."""
    out: dict = {}
    cases = set()
    for row in long_rows:
        cases.add(row["case"])
        if case is not None and row["case"] != case:
            continue
        name = f"rad_{row['segment']}_{row['image_type']}_{row['feature_class']}_{row['feature']}"
        out[name] = float(row["value"])
    if case is None and len(cases) > 1:
        raise ResultError(f"the radiomics table holds {len(cases)} cases; choose one")
    return out


def model_card(model_dir: Path) -> dict:
    """The ``model_card.json`` of an RP model folder (features, roles, categories, threshold)."""
    path = Path(model_dir) / "model_card.json"
    if not path.is_file():
        raise ResultError(f"{model_dir} is not an RP model folder (no model_card.json); "
                          "choose a folder written by 'lungai rp train'")
    return json.loads(path.read_text())


def clinical_fields(card: dict) -> list[tuple[str, str]]:
    """(feature, hint) for every clinical (``clin_``) input of the model, in the model's order."""
    categories = card.get("categories") or {}
    out = []
    for name in card.get("features", []):
        if name.startswith("clin_"):
            choices = categories.get(name)
            out.append((name, "one of: " + ", ".join(map(str, choices)) if choices else "number"))
    return out


def missing_features(card: dict, row: dict) -> list[str]:
    """Model features that the assembled patient row lacks (or leaves empty)."""
    return [f for f in card.get("features", []) if row.get(f) in (None, "")]


def describe_prediction_row(row: dict, top: int = 5) -> tuple[str, str]:
    """(risk headline, contributions text) from one row of ``lungai rp predict`` output."""
    risk = float(row["risk"])
    headline = f"Risk {100 * risk:.0f} %"
    if row.get("risk_low") not in (None, "") and row.get("risk_high") not in (None, ""):
        headline += f" (interval {100 * float(row['risk_low']):.0f}-{100 * float(row['risk_high']):.0f} %)"
    if str(row.get("high_risk", "")).strip() in ("1", "True", "true"):
        headline += " - HIGH RISK"
    pairs = []
    for k in range(1, top + 1):
        name, value = row.get(f"top{k}_feature"), row.get(f"top{k}_contribution")
        if name not in (None, "") and value not in (None, ""):
            pairs.append((name, float(value)))
    text = describe_risk(risk, pairs, top=top).split("\n", 1)
    return headline, text[1] if len(text) > 1 else ""
