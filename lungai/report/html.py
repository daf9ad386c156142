"""The self-contained HTML report (one file, images embedded as data URIs).

Every headline number carries an ``id`` and a ``data-value`` attribute, so that tests (and
scripts) can read exactly what the clinician sees.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from lungai.errors import agree, counted
from lungai.scene.results import method_text, review_digits, threshold_text
from lungai.seg.config import result_value

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1060px;margin:24px auto;color:#1b1f24;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:2px solid #e1e4e8;padding-bottom:4px;margin-top:32px}
.sub{color:#57606a}.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px;margin:12px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;min-width:150px}
.card .v{font-size:1.6em;font-weight:600}.card .l{color:#57606a;font-size:.85em}
.ok{color:#1a7f37}.warn{color:#cf222e}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;font-size:.9em;text-align:left}
th{background:#f6f8fa}img{max-width:100%}.small{font-size:.85em;color:#57606a}
"""


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def readable(value, digits: int = 4) -> str:
    """A feature value as a reader reads it: at most ``digits`` significant digits in plain decimals, trailing
    zeros dropped as %g drops them - a tumour's mesh volume 11985 mm3, not "1.199e+04"; 0.8702; -43.13; 55 -,
    every digit left of the point kept (a lung's 3826764 mm3 in full); powers of ten only below 0.001 or from 1e9,
    where plain decimals would be all zeros or too long to read; 0 never "-0".  The report's key features and the
    RP model's out-of-range features (:func:`lungai.rp.prepare.imputed_and_out_of_range`) say their values so."""
    v = float(value)
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    if magnitude < -3 or magnitude >= 9:
        return f"{v:.{digits}g}"
    text = f"{v:.{max(0, digits - 1 - magnitude)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text      # as %g: 55, not 55.00


# the unit suffixes of the RP table's column names (lungai.rp.columns: clin_age_years, dose_v5_pct, clin_hb_g_dl ...)
UNIT_SUFFIXES = (("_10e9_l", "x10^9/l"), ("_g_dl", "g/dl"), ("_years", "years"), ("_pct", "%"), ("_gy", "Gy"),
                 ("_kg", "kg"), ("_cm", "cm"), ("_mm", "mm"), ("_ml", "ml"))
# words of the clinical columns docs/rp.md explains ("clin_hb_g_dl (haemoglobin)", "clin_tiffeneau_pct (FEV1/VC)")
CLINICAL_WORDS = {"hb": "haemoglobin", "tiffeneau": "Tiffeneau ratio (FEV1/VC)", "durvalumab": "durvalumab (0/1)"}
WHOLE_NAMES = {"clin_pack_years": ("smoking", "pack-years")}     # a unit suffix that is no unit of its own
FEATURE_CLASSES = {"firstorder": "first-order", "shape": "shape", "glcm": "GLCM", "glrlm": "GLRLM",
                   "glszm": "GLSZM", "gldm": "GLDM", "ngtdm": "NGTDM"}


def _words(camel: str) -> str:
    """A pyradiomics feature name in words: JointEntropy -> "joint entropy", Maximum3DDiameter -> "maximum 3D
    diameter"; an IBSI name's underscores as spaces."""
    import re

    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+[A-Z]*", camel.replace("_", " ")) or [camel]
    return " ".join(p if p.isupper() or p[0].isdigit() else p.lower() for p in parts)


def feature_label(name: str) -> tuple[str, str]:
    """(words, unit) of an RP model feature as a clinician reads it: ``dose_v5_pct`` -> ("lung V5 (volume receiving
    at least 5 Gy)", "%"), ``dose_mld_gy`` -> ("mean lung dose (MLD)", "Gy") as the report's dose table names them,
    ``clin_hb_g_dl`` -> ("haemoglobin", "g/dl"), ``rad_lungs_original_firstorder_Kurtosis`` -> the report's key-feature
    label ("lung kurtosis", :data:`lungai.demo.patient.KEY_FEATURES`), others ``rad_lungs_original_glcm_JointEntropy``
    -> ("lungs: GLCM joint entropy", ""); a name of no known scheme as it is."""
    import re

    if name in WHOLE_NAMES:
        return WHOLE_NAMES[name]
    suffix = next((s for s, _ in UNIT_SUFFIXES if name.endswith(s)), "")
    unit = dict(UNIT_SUFFIXES).get(suffix, "")
    stem = name[:-len(suffix)] if suffix else name
    if name.startswith("dose_"):
        m = re.fullmatch(r"dose_([vd])(\d+(?:\.\d+)?)", stem)
        if stem == "dose_mld":
            return "mean lung dose (MLD)", unit
        if m and m.group(1) == "v":
            return f"lung V{m.group(2)} (volume receiving at least {m.group(2)} Gy)", unit
        if m:
            return f"lung D{m.group(2)} (dose to the hottest {m.group(2)} % of the lungs)", unit
        if stem.startswith("dose_gtv_"):
            return f"GTV dose {stem[len('dose_gtv_'):].replace('_', ' ')}", unit
        return stem[len("dose_"):].replace("_", " "), unit
    if name.startswith("clin_"):
        words = stem[len("clin_"):].removesuffix("_cat")
        return CLINICAL_WORDS.get(words, words.replace("_", " ")), unit
    if name.startswith("rad_"):
        from lungai.demo.patient import KEY_FEATURES
        from lungai.radiomics.segments import STANDARD_SEGMENTS

        rest = name[len("rad_"):]
        segment = next((s for s in sorted(STANDARD_SEGMENTS, key=len, reverse=True) if rest.startswith(s + "_")), None)
        if segment is None or rest[len(segment) + 1:].count("_") < 2:
            return name, ""
        feature = rest[len(segment) + 1:]
        where = segment.replace("_", " ")
        for seg, key, label in KEY_FEATURES:       # the report's own label of a key feature
            if seg == segment and key == feature:
                return (label if where.rstrip("s") in label else f"{where} {label}"), ""
        image_type, family, short = feature.split("_", 2)
        kind = FEATURE_CLASSES.get(family, family)
        return (f"{where}: {kind} {_words(short)}" + ("" if image_type == "original" else f" ({image_type} image)"),
                "")
    return name, ""


def feature_value_text(name: str, value) -> str:
    """A patient's value of an RP feature with its unit ("56.8 %", "68 years", "male"); an empty one "missing
    (imputed by the model)"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or str(value).strip() == "":
        return "missing (imputed by the model)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    unit = feature_label(name)[1]
    return readable(number) + (f" {unit}" if unit else "")


def _percent(share: float) -> str:
    """A share (0-1) as the report writes every percentage, a space before the sign as its doses' "56.8 %":
    0.25 -> "25.0 %" (never "25.0%" beside "72.4 %")."""
    return f"{100 * share:.1f} %"


def _rp_interval(r) -> str:
    """The risk interval of an rp predict row; "none" where the model had no bootstrap members (empty risk_low /
    risk_high: lungai.rp.uncertainty.NO_INTERVAL, in the row's warnings) - never "nan %" (QA stagefollow66)."""
    low, high = r.get("risk_low"), r.get("risk_high")
    if any(v is None or (isinstance(v, float) and not math.isfinite(v)) or (isinstance(v, str) and not v.strip())
           for v in (low, high)):
        return "none (the model has no bootstrap members: see the warnings)"
    return f"{_percent(float(low))} - {_percent(float(high))}"


def _num(ident: str, value, fmt="{:.2f}", unit: str = "") -> str:
    """``value`` shown by ``fmt`` (a format string, or a function such as :func:`readable` / :func:`_percent`)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):     # NaN: not "nan"
        return f'<span id="{ident}" data-value="">n/a</span>'
    shown = (fmt(value) if callable(fmt) else fmt.format(value)) + (f" {unit}" if unit else "")
    return f'<span id="{ident}" data-value="{value!r}">{html.escape(shown)}</span>'


def _card(label: str, body: str, cls: str = "") -> str:
    return f'<div class="card"><div class="v {cls}">{body}</div><div class="l">{html.escape(label)}</div></div>'


def _table(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if str(c).startswith('<span') else html.escape(str(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _review_reasons(seg: dict) -> str:
    """This case's review reasons (result.json's ``review_reasons``) with what to do about each (``review_actions``),
    or nothing when it is not flagged."""
    reasons = seg.get("review_reasons") or []
    if not seg.get("needs_review") or not reasons:
        return ""
    actions = list(seg.get("review_actions") or [])          # what to do about each (lungai.seg.infer.review_actions)
    actions += [""] * (len(reasons) - len(actions))
    items = "".join(f"<li>{html.escape(str(r))}" + (f" - <i>to do:</i> {html.escape(str(a))}" if a else "") + "</li>"
                    for r, a in zip(reasons, actions))
    return f'<b>This case is flagged because:</b><ul id="review-reasons">{items}</ul>'


def roi_size_mm(seg: dict) -> list | None:
    """The size (mm, along the CT's voxel axes) of the box the kept tumour came from, as ``lungai segment``
    recorded it (result.json's ``roi_size_mm``; a result written before it was recorded: the kept pass of
    ``roi_passes``); None when not recorded - never derived from ``roi_lps_mm`` (voxel centres: one voxel short,
    and on an oblique CT the corners of a tilted box)."""
    size = seg.get("roi_size_mm")
    if not size:
        kept = [q for q in seg.get("roi_passes") or [] if q.get("kept")]
        size = kept[0].get("roi_size_mm") if kept else None
    return [float(v) for v in size] if size else None


def _roi_text(seg: dict) -> str:
    size = roi_size_mm(seg)
    box = (f'<span id="roi-size-mm" data-value="{",".join(f"{v:g}" for v in size)}">'
           f'{" x ".join(f"{v:.0f}" for v in size)} mm</span> box') if size else "box"
    if seg.get("seed_point_lps_mm"):
        return f" (a {box} around the seed point placed on the tumour, as a click in Slicer would)"
    return f" (a {box})" if size else ""


def _origin_text(s: dict) -> str:
    """Which masks the dose metrics (and the GTV row) were computed on: automatic ones (this run's lungs and
    tumour, a tumour flagged for review said so) or the user's (--rtstruct)."""
    m = s.get("dose_masks") or {}
    return m.get("text", "")


def uses_automatic_tumour(s: dict, ident: str) -> bool:
    """Whether the ``ident`` section's result depends on the automatic tumour: the dose metrics unless computed
    on the RTSTRUCT's contours; the RP risk when its model uses tumour radiomics or such dose metrics."""
    automatic_dose = (s.get("dose_masks") or {}).get("tumour") in (None, "automatic")
    if ident == "dose":
        return automatic_dose
    if ident == "rp":
        r = s.get("rp") or {}
        if "uses_tumour_radiomics" not in r:
            return True
        return bool(r["uses_tumour_radiomics"] or (r.get("uses_dose") and automatic_dose))
    return True


def depending_values(s: dict, ident: str) -> list[str]:
    """The values of the ``ident`` section that depend on the automatic tumour (said with its review flag): the dose
    metrics' GTV dose and lungs minus the tumour only when computed on the automatic masks (not the RTSTRUCT's), the
    tumour radiomics when the RP model uses them, the stage model's CT features."""
    automatic_dose = (s.get("dose_masks") or {}).get("tumour") in (None, "automatic")
    dose = ["GTV dose", "lungs minus the tumour"] if automatic_dose else []
    if ident == "dose":
        return dose
    if ident == "rp":
        r = s.get("rp") or {}
        if "uses_tumour_radiomics" not in r:
            return dose + ["tumour radiomics"]
        if "uses_gtv_dose" in r:            # only the dose metrics the model uses (GTV dose: a dose_gtv_* feature)
            dose = [v for v, used in zip(dose, (r["uses_gtv_dose"], r.get("uses_lung_dose", r.get("uses_dose"))))
                    if used]
        elif not r.get("uses_dose"):
            dose = []
        return dose + (["tumour radiomics"] if r["uses_tumour_radiomics"] else [])
    if ident == "stage":
        return ["the tumour's CT features"]
    return dose + ["tumour radiomics"]


def _review_flag(s: dict, ident: str) -> str:
    """The segmentation's review flag repeated where a result depends on the automatic tumour (the dose section
    not when its masks are the plan's RTSTRUCT contours)."""
    seg = s["segmentation"]
    if not seg.get("needs_review") or not uses_automatic_tumour(s, ident):
        return ""
    reasons = "; ".join(seg.get("review_reasons") or [])
    return (f'<div class="banner" id="{ident}-review" data-value="needs review"><b>The automatic tumour is flagged '
            f"for expert review</b>{' (' + html.escape(reasons) + ')' if reasons else ''}: the values below that "
            f"depend on it ({', '.join(depending_values(s, ident))}) are only as good as that contour."
            "</div>")


ROI_MODES = {"seed": "seed point", "roi": "the box given",      # result.json roi_mode in words
             "lungs": "automatic (the tumour searched in the whole lungs)"}


def _roi_mode(seg: dict) -> str:
    mode = seg.get("roi_mode")
    return ROI_MODES.get(mode, str(mode or "not recorded"))


def _confidence_meaning(seg: dict, model: dict) -> str:
    """What the confidence is computed from - the ensemble members' disagreement, or for MC dropout (a one-member
    model) its dropout passes' -, and whether it is calibrated (result.json ``calibrated``)."""
    if seg.get("method") == "mc-dropout":
        source = (f"how much {seg['mc_passes']} Monte Carlo dropout passes of the network disagree"
                  if seg.get("mc_passes") else "how much the network's Monte Carlo dropout passes disagree")
    else:
        source = f"how much the {seg.get('members', '?')} ensemble members disagree"
    if not seg.get("calibrated", True):
        return ("It is the model's own estimate of the Dice overlap between its contour and an expert's, computed "
                f"from {html.escape(source)}; it is <b>not calibrated</b> (the model has no calibration for this "
                "method), so it is not the expected Dice - read it as a rough score.")
    return ("It is the model's own estimate of the Dice overlap between its contour and an expert's, computed from "
            f"{html.escape(source)}, and calibrated on validation cases where the true Dice was known (validation "
            f"Pearson r between confidence and Dice: {html.escape(str(model.get('validation_r', 'not recorded')))}).")


def _segmentation(s: dict, figs: dict) -> str:
    seg = s["segmentation"]
    review = seg["needs_review"]
    flag = ('<span id="needs-review" data-value="true" class="warn">needs expert review</span>' if review else
            '<span id="needs-review" data-value="false" class="ok">no review flag</span>')
    # the confidence and its review threshold with the decimals that show them apart, as lungai segment's summary
    # and the panel's banner (lungai.scene.results.review_digits; QA segfollow68: "0.64" beside "review threshold
    # 0.64" and "needs expert review" for a confidence of 0.6402 against 0.644)
    digits = review_digits(seg)
    cards = "".join([
        _card("confidence (expected Dice, 0-1)" if seg.get("calibrated", True) else
              "uncalibrated confidence (0-1, not the expected Dice)",
              _num("confidence", seg["confidence"], f"{{:.{digits}f}}")),
        _card(f"review threshold {threshold_text(seg)}", flag, "warn" if review else "ok"),
        _card("tumour volume", _num("tumour-volume-ml", result_value(seg, "tumour_volume_ml"), "{:.1f}", "ml")),
        _card(agree(seg["n_components"], "connected component", "connected components"),
              _num("n-components", seg["n_components"], "{:d}")),
    ])
    truth = ""
    if s.get("truth_dice") is not None:
        truth = (f"<p>The built-in sample is a phantom with a known answer: Dice between the model's tumour and the "
                 f"planted tumour = {_num('truth-dice', s['truth_dice'])} (dashed green contour above).</p>")
    model = s.get("seg_model", {})
    caveat = seg.get("confidence_caveat")      # the model's known confidence caveat (lungai.seg.resources)
    caveat = (f'<div class="banner" id="confidence-caveat"><b>Read this confidence with care</b> - '
              f"{html.escape(str(caveat))}.</div>" if caveat else "")
    return f"""
<h2>Tumour segmentation and how sure the model is</h2>
<div class="cards">{cards}</div>
{caveat}
<p id="seg-model">Model: <b>{html.escape(str(model.get('name') or 'not recorded'))}</b>
({html.escape(str(model.get('training') or 'training data not recorded'))}).</p>
<p><b>What the confidence means.</b> {_confidence_meaning(seg, model)}
Cases below the review threshold ({threshold_text(seg)}) are flagged for expert review, as are
results the checks in the notes below question (a tumour cut by the box or the image edge, a mask away from the seed).
{_review_reasons(seg)}
The coloured overlay shows <i>where</i> the model is undecided: voxels whose predictive entropy is at
least 0.5 bit (mean tumour probability between 0.11 and 0.89); the full map is <code>uncertainty.nii.gz</code>.</p>
{_img(figs.get('slices'), 'axial and coronal slices through the tumour')}
{truth}
<p class="small">Method: {html.escape(method_text(seg))};
region of interest: {html.escape(_roi_mode(seg))}{_roi_text(seg)}. Notes: {html.escape('; '.join(seg.get('notes', [])) or 'none')}.</p>
"""


def _lungs_and_features(s: dict) -> str:
    lungs = s["lungs"]
    rows = [(f["segment"], f["label"], _num(f"feature-{f['segment']}-{f['feature']}", f["value"], readable))
            for f in s["radiomics"]["key_features"]]
    return f"""
<h2>Lungs and key radiomic features</h2>
<div class="cards">{_card('right lung', _num('right-lung-ml', lungs['right_lung'], '{:.0f}', 'ml'))}
{_card('left lung', _num('left-lung-ml', lungs['left_lung'], '{:.0f}', 'ml'))}</div>
{''.join(f'<div class="banner" id="lungs-cut">{html.escape(n)}</div>' for n in lung_warnings(lungs))}
{_lung_notes(lungs)}
{_failed_segments(s['radiomics'])}
{_radiomics_notes(s['radiomics'])}
<p>{_features_text(s['radiomics'])} were computed (all in <code>radiomics_long.csv</code>;
{html.escape(s['radiomics']['params'])}). A selection:</p>
{_table(rows, ('segment', 'feature', 'value'))}
"""


def _features_text(radiomics: dict) -> str:
    """"107 pyradiomics features of each of 5 segments (535 values)", or with an IBSI preset "172 IBSI-1 features
    (IBSI pipeline, configuration C) of each of 3 segments (516 values)": the features counted per segment, apart
    from the segments (QA wording61: the report said "535 pyradiomics features" for 107 features of 5 segments).
    A summary.json of an older lungai (no ``n_segments``: its ``n_features`` counted every segment's values) says
    "535 pyradiomics feature values"."""
    n, cfg = radiomics["n_features"], radiomics.get("ibsi_configuration")
    kind = f"IBSI-1 features (IBSI pipeline, configuration {cfg})" if cfg else "pyradiomics features"
    segments, values = radiomics.get("n_segments"), radiomics.get("n_values")
    if segments is None or values is None:
        return f"{n} {kind.replace('features', 'feature values', 1)}"
    if segments == 1:
        return f"{n} {kind} of 1 segment"
    if values == n * segments:
        return f"{n} {kind} of each of {segments} segments ({values} values)"
    return f"{values} values of {n} {kind} over {segments} segments (not every feature of every segment)"


def features_step_text(radiomics: dict) -> str:
    """The demo's console step of the radiomics: "107 features x 5 segments" (the report's count, short)."""
    segments = radiomics.get("n_segments")
    if segments is None:
        return f"{radiomics['n_features']} feature values"
    return f"{counted(radiomics['n_features'], 'feature')} x {counted(segments, 'segment')}"


def lung_warnings(lungs: dict) -> list[str]:
    """The lung segmentation's warnings (summary.json's ``lungs.warnings``: the airways not removed, the scan's cut, an
    uncertain right/left label, a small lung, an air region left out; an older summary: ``lungs.cut``)."""
    return list(lungs.get("warnings", lungs.get("cut", [])) or [])


def lung_notes(lungs: dict) -> list[str]:
    """The lung segmentation's other notes (summary.json's ``lungs.notes`` less its warnings), as ``lungai lungs``
    prints them with ``note:``: the airways removed, an airway open to the outside air, blank slices left
    out - what the lung volumes and the dose metrics are of."""
    warned = set(lung_warnings(lungs))
    return [str(n) for n in lungs.get("notes") or [] if n not in warned]


def _notes_paragraph(notes: list[str], element_id: str, title: str) -> str:
    """A small paragraph "TITLE: note; note." (id ``element_id``, ``data-value`` the count), or "" without notes."""
    if not notes:
        return ""
    return (f'<p class="small" id="{element_id}" data-value="{len(notes)}">{title}: '
            f"{html.escape('; '.join(notes))}.</p>")


def _lung_notes(lungs: dict) -> str:
    return _notes_paragraph(lung_notes(lungs), "lungs-notes", "Lung segmentation notes")


def failed_segment_texts(radiomics: dict) -> list[str]:
    """"segment: why (how to fix)" for each segment whose radiomics failed (summary.json's
    ``radiomics.failed_segments``: a one-voxel tumour, an empty lung), as the report and the console say them."""
    return [f"{str(f.get('segment', '')).replace('_', ' ')}: " + " ".join(str(f.get("error", "")).split())
            for f in radiomics.get("failed_segments") or []]


def radiomics_notes(radiomics: dict) -> list[str]:
    """The notes of the segments built for the radiomics (summary.json's ``radiomics.notes``: "lungs_minus_tumour: the
    automatic tumour does not overlap the lungs ..."), as the console (``note: radiomics ...``) and the report say
    them."""
    return [str(n) for n in radiomics.get("notes") or []]


def _radiomics_notes(radiomics: dict) -> str:
    return _notes_paragraph(radiomics_notes(radiomics), "radiomics-notes", "Radiomics notes")


def _failed_segments(radiomics: dict) -> str:
    """A banner naming the segments that have no radiomic features, with why (nothing when all were computed)."""
    texts = failed_segment_texts(radiomics)
    if not texts:
        return ""
    items = "".join(f"<li>{html.escape(t)}</li>" for t in texts)
    return (f'<div class="banner" id="radiomics-failed" data-value="{len(texts)}"><b>Radiomics not computed for '
            f"{counted(len(texts), 'segment')}</b> (no features of them in <code>radiomics_long.csv</code>):<ul>{items}</ul></div>")


def _missing(section: dict, ident: str) -> str:
    """A result that was not computed: what is missing and how to give it (no number)."""
    items = "".join(f"<li>missing {html.escape(m['what'])} - {html.escape(m['how'])}.</li>"
                    for m in section.get("missing", []))
    refused = section.get("refused")    # an input the model refused (lungai.demo.pipeline._rp): why, and the fix
    if refused:
        return (f'<div class="banner" id="{ident}-refused" data-value="not computed"><b>Not computed</b> - the model '
                f"refused this patient's inputs: {html.escape(refused['what'])}<br><b>How to fix:</b> "
                f"{html.escape(refused['how'])}{f'<ul>{items}</ul>' if items else ''}</div>")
    return (f'<div class="banner" id="{ident}-missing" data-value="not computed"><b>Not computed</b> - only inputs '
            f"you give are used for a patient result:<ul>{items}</ul></div>")


def _sample(s: dict) -> bool:
    return (s.get("inputs") or {}).get("ct", "built-in sample") == "built-in sample"


def _illustrative(ident: str, sample: bool = True) -> str:
    return (f'<div class="banner" id="{ident}-illustrative" data-value="illustrative"><b>ILLUSTRATIVE, not a patient '
            "result:</b> model trained on a synthetic cohort" + (", built-in sample inputs." if sample else
                                                                 " (its model card says so), not on patients.")
            + "</div>")


def _dose(s: dict, figs: dict) -> str:
    d = s["dose"]
    if d is None:
        return f"""
<h2>Dose to the lungs</h2>
<div class="banner" id="dose-missing" data-value="not computed">{html.escape(s['dose_source'])}</div>
"""
    masks = s.get("dose_masks") or {}
    rows = [("mean lung dose (MLD)", _num("mld-gy", d["dose_mld_gy"], "{:.2f}", "Gy")),
            ("V5 / V13 / V20 / V30", " / ".join(f"{d[f'dose_v{v}_pct']:.1f} %" for v in (5, 13, 20, 30))),
            ("D2 / D50 / D98", " / ".join(f"{d[f'dose_d{x}_gy']:.1f} Gy" for x in (2, 50, 98))),
            (f"{masks.get('gtv_label', 'GTV')} dose mean (min-max)", _gtv_dose(d, masks))]
    origin = _origin_text(s) or "Lung metrics are for the lungs minus the GTV."
    given = s.get("inputs") or {}
    unit = "" if not given.get("dose_unit") else (
        f' <span id="dose-unit" data-value="{html.escape(given["dose_unit"])}">--dose-unit '
        f'{html.escape(given["dose_unit"])} (an image dose in cGy is converted to Gy; an RTDOSE gives its own unit), '
        f'largest accepted dose {given.get("max_dose_gy", 0):g} Gy.</span>')
    return f"""
<h2>Dose to the lungs</h2>
{_review_flag(s, 'dose')}
<p>{html.escape(s['dose_source'])} <span id="dose-masks">{html.escape(origin)}</span>{unit}</p>
{_table(rows, ('metric', 'value'))}
{_img(figs.get('dvh'), 'dose-volume histogram')}
"""


def _gtv_dose(d: dict, masks: dict) -> str:
    """The GTV row's value: mean (min-max) Gy, or - no GTV voxels (an RTSTRUCT without a GTV, no tumour found: the
    dose metrics' NaN) - that there is no GTV dose and why, with no number."""
    mean = d.get("dose_gtv_mean_gy")
    if mean is None or mean != mean:
        why = masks.get("gtv_missing") or "the masks of the dose metrics have no GTV voxels"
        return f'<span id="gtv-dose" data-value="">no GTV dose: {html.escape(why)}</span>'
    return (f'<span id="gtv-dose" data-value="{mean!r}">{mean:.1f} Gy ({d["dose_gtv_min_gy"]:.1f}-'
            f'{d["dose_gtv_max_gy"]:.1f})</span>')


def _rp(s: dict, figs: dict) -> str:
    r = s["rp"]
    if "risk" not in r:
        return f"""
<h2>Radiation pneumonitis (grade &ge; 2) risk</h2>
{_missing(r, 'rp')}
"""
    flag = _illustrative("rp", _sample(s)) if r.get("status") == "illustrative" else ""
    return f"""
<h2>{_rp_heading(r)}{' - illustrative' if flag else ''}</h2>
{flag}
{_rp_endpoint(r)}
{_rp_warnings(r)}
{_review_flag(s, 'rp')}
<div class="cards">{_card('predicted risk', _num('rp-risk', r['risk'], _percent))}
{_card('uncertainty interval', _rp_interval(r))}
{_risk_group(r)}</div>
{_card_text(r.get('card'), 'rp')}
<p>{html.escape(r['model_description'])} The interval shows how much the risk moves between models refitted on
resamples of the training cohort. Table and bars: the features that moved this patient's risk most, with the
patient's value (Shapley values, log-odds; positive / red raises, negative / blue lowers the risk{_rp_baseline(r)}).</p>
{_contributions(r)}
{_img(figs.get('rp'), 'top contributions to the RP risk')}
"""


def _rp_baseline(r: dict) -> str:
    """What the contributions are measured against (summary.json ``rp.baseline_risk``), in the words of the Slicer
    result text (:func:`lungai.rp.card.baseline_text`); nothing for an older summary without it."""
    base = r.get("baseline_risk")
    if base is None or base != base:
        return ""
    from lungai.rp.card import baseline_text

    text = html.escape(baseline_text(base, r.get("warnings")))
    return f', <span id="rp-baseline" data-value="{float(base)!r}">{text}</span>'


def _rp_heading(r: dict) -> str:
    """The RP section's title: grade >= 2 radiation pneumonitis, or - a model trained on a user's table - its outcome
    column (``rp.endpoint_short`` of summary.json: what the risk is of, QA demo62)."""
    short = r.get("endpoint_short")
    if not short or short.startswith("grade >= 2"):      # an older summary: the section's title as before
        return "Radiation pneumonitis (grade &ge; 2) risk"
    return f"Radiation pneumonitis risk ({html.escape(short)})"


def _rp_endpoint(r: dict) -> str:
    """What the risk is the risk of (summary.json ``rp.endpoint``), the console's "RP endpoint:" line."""
    if not r.get("endpoint"):
        return ""
    return (f'<p id="rp-endpoint" data-value="{html.escape(r.get("outcome", ""))}"><b>Risk of:</b> '
            f'{html.escape(r["endpoint"])}.</p>')


def risk_group_text(r: dict) -> str:
    """Whether the risk is at or above the RP model's high-risk threshold (rp_prediction.csv's ``high_risk``), with
    the threshold and how it was chosen: "HIGH RISK - at or above the model's threshold 29 % (training prevalence
    (default))", or "below the model's high-risk threshold 29 % (...)"."""
    threshold = f"{readable(100 * r['threshold'], 3)} % ({r.get('threshold_rule') or 'rule not recorded'})"
    return (f"HIGH RISK - at or above the model's high-risk threshold {threshold}" if r.get("high_risk") else
            f"below the model's high-risk threshold {threshold}")


def _risk_group(r: dict) -> str:
    if r.get("threshold") is None:       # a summary of an older lungai: no threshold recorded
        return ""
    body = (f'<span id="rp-high-risk" data-value="{int(bool(r.get("high_risk")))}">'
            f"{html.escape(risk_group_text(r))}</span>")
    return _card("risk group (rp_prediction.csv high_risk)", body, "warn" if r.get("high_risk") else "")


def _contributions(r: dict) -> str:
    """The top features in words, the patient's value of each and its contribution (the bars' numbers)."""
    rows = [(f'<span class="rp-feature" title="{html.escape(t["feature"])}">{html.escape(t["label"])}</span>',
             f'<span id="rp-value-{html.escape(t["feature"])}">{html.escape(t["value"])}</span>',
             _num(f"rp-contribution-{html.escape(t['feature'])}", t["contribution"], "{:+.3f}"))
            for t in r.get("top_features") or []]
    return _table(rows, ("feature", "this patient's value", "contribution (log-odds)")) if rows else ""


RP_WARNINGS = (("out_of_range", "outside the model's training range"), ("imputed", "missing, imputed by the model"))


def _rp_warnings(r: dict) -> str:
    """Everything ``lungai rp predict`` says with this risk (rp_prediction.csv and the warnings it prints): features
    outside the training range, imputed features - each feature listed -, and one item each for the row's warnings
    (radiomics settings, lungs cut by the scan, no dose, the RTDOSE's notes) and the whole table's (the same with
    their fix for the demo's user) - a banner."""
    parts = [(key, what, r.get(key) or []) for key, what in RP_WARNINGS]
    parts = [p for p in parts if p[2]]
    said = (r.get("warnings") or []) + (r.get("table_warnings") or [])
    if not parts and not said:
        return ""
    items = "".join(f'<li id="rp-{key.replace("_", "-")}" data-value="{len(vals)}"><b>{counted(len(vals), "feature")} '
                    f"{html.escape(what)}:</b> {html.escape('; '.join(vals))}</li>" for key, what, vals in parts)
    items += "".join(f'<li class="rp-warning">{html.escape(w)}</li>' for w in said)
    return (f'<div class="banner" id="rp-warnings"><b>Read this risk with care</b> - the model was applied to '
            f"values it was not trained on or did not get:<ul>{items}</ul></div>")


def _card_text(card: dict | None, ident: str) -> str:
    """What the model card says of the model: validation, training cohort, intended use, training warnings."""
    if not card:
        return ""
    if ident == "rp":
        text = f"Model card: {card['validation']}. Intended use: {card.get('intended_use') or 'not recorded'}."
    else:
        from lungai.fusion.balance import class_counts_text

        f1 = card.get("inner_macro_f1")
        balance = card.get("class_balance") or []     # per class: patients, share, recall; then the rare classes
        counts = "" if balance else class_counts_text(card.get("class_counts"))
        text = (f"Model card: trained on {card.get('n', '?')} patients{f' ({counts})' if counts else ''}; "
                f"{card.get('verdict')}"
                + (f" (inner-CV macro-F1 {f1:.2f} chose it; not a performance estimate)" if isinstance(f1, (int, float))
                   else "") + f". Intended use: {card.get('intended_use')}.")
    warns = "".join(f'<div class="banner" id="{ident}-card-warning">Model card warning: {html.escape(w)}.</div>'
                    for w in card.get("warnings") or [])
    if ident == "stage" and balance:   # as model_card.md and lungai stage predict say them
        rare = "".join(f'<div class="banner" id="stage-rare-classes">{html.escape(w)}</div>' for w in balance[1:])
        return (f'{warns}<p id="{ident}-card">{html.escape(text)}</p>'
                f'<p id="stage-class-balance">{html.escape(balance[0])}.</p>{rare}')
    return f'{warns}<p id="{ident}-card">{html.escape(text)}</p>'


CLOSE_CALL = 0.05     # the top two stage probabilities within this: a close call, said with the predicted stage


def predicted_stage_text(st: dict) -> str:
    """The predicted stage with its probability (3 decimals), e.g. "III (p 0.432)"; when the runner-up is within
    :data:`CLOSE_CALL`, "- close call: II p 0.429" too (rounded to 2 decimals the two can read the same) - the
    report's card, the console and the figure say the same."""
    probs = dict(zip(st["classes"], st["probabilities"]))
    top = str(st["predicted"])
    text = f"{top} (p {probs[top]:.3f})"
    others = sorted(((p, c) for c, p in probs.items() if c != top), reverse=True)
    if others and probs[top] - others[0][0] < CLOSE_CALL:
        text += f" - close call: {others[0][1]} p {others[0][0]:.3f}"
    return text


def _stage(s: dict, figs: dict) -> str:
    st = s["stage"]
    if "probabilities" not in st:
        return f"""
<h2>Stage probabilities</h2>
{_missing(st, 'stage')}
"""
    flag = _illustrative("stage", _sample(s)) if st.get("status") == "illustrative" else ""
    rows = [(c, _num(f"stage-p-{c}", p, "{:.3f}")) for c, p in zip(st["classes"], st["probabilities"])]
    predicted = f'<span id="stage-predicted" data-value="{html.escape(str(st["predicted"]))}">' \
                f'{html.escape(predicted_stage_text(st))}</span>'
    return f"""
<h2>Stage probabilities{' - illustrative' if flag else ''}</h2>
{flag}
{_review_flag(s, 'stage') if 'CT' in ' '.join(st.get('modalities_used') or []) else ''}
<div class="cards">{_card('predicted stage', predicted)}</div>
{_card_text(st.get('card'), 'stage')}
<p>{html.escape(st['model_description'])} Inputs used for this patient: {html.escape(st['modalities'])}.</p>
{_table(rows, ('class', 'probability'))}
{_img(figs.get('stage'), 'stage probabilities')}
"""


def _headline(s: dict) -> str:
    """Under the title: which results are illustrative (built-in sample) or not computed (missing inputs)."""
    names = {"rp": "the RP risk", "stage": "the stage", "dose": "the dose"}
    parts = []
    one = len(s.get("illustrative") or ()) == 1
    verb = "is" if one else "are"
    if s.get("illustrative") and not _sample(s):     # a model trained on a synthetic cohort, on the user's CT
        parts.append(f'<div class="banner" id="illustrative" data-value="{",".join(s["illustrative"])}"><b>'
                     + " and ".join(names[k] for k in s["illustrative"]) + f" below {verb} ILLUSTRATIVE</b> - "
                     + ("from a model trained on a synthetic cohort (its model card says so)" if one else
                        "from models trained on synthetic cohorts (their model cards say so)")
                     + ", not on patients; not results for this patient.</div>")
    elif s.get("illustrative"):
        parts.append(f'<div class="banner" id="illustrative" data-value="{",".join(s["illustrative"])}"><b>Built-in '
                     "sample: " + " and ".join(names[k] for k in s["illustrative"]) + f" below {verb} ILLUSTRATIVE</b> - "
                     "models trained on synthetic cohorts, an example clinical profile and a synthetic dose; they "
                     "show the workflow and are not results for a patient.</div>")
    missing = [k for k in ("dose", "rp", "stage") if (s["dose"] is None if k == "dose" else
                                                        s[k].get("status") == "not computed")]
    if missing:
        parts.append(f'<div class="banner" id="not-computed" data-value="{",".join(missing)}"><b>Not computed for '
                     "this CT: " + ", ".join(names[k] for k in missing) + "</b> - the inputs they need were not "
                     "given (see each section for what is missing and how to give it).</div>")
    return "\n".join(parts)


def write_report(path, summary: dict, figures: dict) -> Path:
    """Write the report; ``figures`` maps 'slices', 'dvh', 'rp', 'stage' to PNG bytes."""
    s = summary
    methods = "".join(f"<li>{html.escape(m)}</li>" for m in s["methods"])
    limits = "".join(f"<li>{html.escape(m)}</li>" for m in s["limitations"])
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>SlicerLungAI report - {html.escape(s['case'])}</title><style>{CSS}</style></head><body>
<h1>SlicerLungAI report</h1>
<div class="sub">case <b id="case">{html.escape(s['case'])}</b> &middot; {html.escape(s['input']['description'])}
&middot; generated {html.escape(s['generated'])} by lungai {html.escape(s['version'])}</div>
<div class="banner"><b>Research use only.</b> Not a medical device; not for diagnosis or treatment decisions.</div>
{_headline(s)}
{_segmentation(s, figures)}
{_lungs_and_features(s)}
{_dose(s, figures)}
{_rp(s, figures)}
{_stage(s, figures)}
<h2>Methods</h2><ul>{methods}</ul>
<h2>Limitations</h2><ul>{limits}</ul>
<p class="small">All intermediate results are next to this file (NIfTI, CSV, JSON) and in <code>scene.mrb</code>,
which opens in 3D Slicer. Total run time {s['timings']['total_s']:.0f} s.</p>
</body></html>
"""
    out = Path(path)
    tmp = out.with_name(".partial-" + out.name)
    from lungai.io.outputs import writing

    with writing(out):          # stamped in a claimed folder's marker once written
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    return out
