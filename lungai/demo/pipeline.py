"""The demo pipeline: CT -> lungs -> tumour with uncertainty -> radiomics -> dose -> RP risk -> stage -> report.

Each step writes its result into the output folder (NIfTI / CSV / JSON) before the next one
starts; :func:`run_demo` returns the summary that the report and the scene are built from.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai import __version__
from lungai.demo.patient import EXAMPLE_CLINICAL, KEY_FEATURES
from lungai.errors import InputError, agree, counted, say_notes
from lungai.io import read_ct, write_image
from lungai.overlap import dice
from lungai.progress import SubProgress, task, timer_running, waiting
from lungai.seg.config import result_value
from lungai.volume import mask_volume_ml


def _to_csv(frame, path, **kwargs) -> None:
    """Write a table of the demo's outputs: a write error is named (no traceback), the file stamped in the folder's
    marker once written (:func:`lungai.io.outputs.writing`: a run killed later leaves it recorded as lungai's)."""
    from lungai.io.outputs import writing

    with writing(path):
        frame.to_csv(path, **kwargs)

STEPS = ["input", "lungs", "tumour", "radiomics", "dose", "rp", "stage", "report", "scene"]


def _json(path: Path, doc) -> None:
    """Strict JSON (a NaN, e.g. an empty radiomics settings column, as null): lungai.model_files.write_json."""
    from lungai.model_files import write_json

    write_json(path, doc)


def _read_input(ct_path, small: bool, series_uid: str | None = None, progress=None) -> tuple:
    """(CT, planted tumour or None, input info, phantom or None), in memory: nothing is written yet, so a
    wrong input (a seed point off the body) fails before the output folder is touched.  ``progress``: the built-in
    sample's steps (:data:`lungai.synthetic.phantom.PHANTOM_STEPS`); a CT read is the caller's step."""
    if ct_path is not None:
        ct = read_ct(ct_path, series_uid=series_uid)
        what = f"DICOM CT series (folder {Path(ct_path).name})" if Path(ct_path).is_dir() else f"CT {Path(ct_path).name}"
        return ct, None, {"description": what, "source": _str(ct_path), "seed_lps": None}, None
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec

    spec = sample_spec()
    if small:  # a quicker, coarser version of the same case (tests)
        spec = PhantomSpec(shape=(128, 128, 48), spacing=(2.8, 2.8, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    phantom = make_phantom(spec, seed=SAMPLE_SEED, progress=progress)
    from lungai.synthetic import labels as L

    truth = sitk.GetImageFromArray(L.tumour_mask(sitk.GetArrayFromImage(phantom.labels)).astype(np.uint8))
    truth.CopyInformation(phantom.ct)
    t = phantom.meta["tumour"]
    desc = (f"built-in sample phantom (seed {SAMPLE_SEED}): {t['diameter_mm']:.0f} mm {t['shape']} "
            f"{t['location'].replace('_', '-')} tumour in the {t['side']} lung")
    # the demo places the seed point where a user would click: on the tumour (its planted centre)
    return (phantom.ct, truth, {"description": desc, "source": "lungai.synthetic sample", "seed_lps": t["centre_mm"]},
            phantom)


def _write_input(out: Path, ct_path, ct: sitk.Image, phantom) -> None:
    if phantom is None:
        write_image(ct, out / "ct.nii.gz", protect=[ct_path])
    else:
        from lungai.synthetic import write_phantom

        write_phantom(phantom, out)


def _key_feature_name(name: str, params: dict) -> str:
    """A KEY_FEATURES name (pyradiomics, ``original_shape_MeshVolume``) as written by ``params``:
    unchanged, or with an IBSI preset the IBSI tag's ``original_<family>_<rest>`` (``original_morph_volume``)."""
    from lungai.radiomics.ibsi import load_mapping
    from lungai.radiomics.ibsi.mapping import dimension
    from lungai.radiomics.params import ibsi_config

    cfg = ibsi_config(params)
    if cfg is None:
        return name
    feature = name.split("_", 1)[1]
    m = load_mapping()
    tags = [t for t, f in zip(m.ibsi_tag, m.pyradiomics_feature) if f == feature
            and dimension(t) in (None, "2_5D" if cfg.force2d else "3D") and not t.endswith("_comb")]
    if not tags:
        return name
    family = tags[0].split("_", 1)[0]
    return f"original_{family}_{tags[0][len(family) + 1:]}"


def _radiomics(out: Path, ct, tumour, lungs, params_name: str = "default", case: str = "demo",
               progress=None) -> tuple[pd.DataFrame, dict]:
    """The standard segments' radiomics; ``progress``: the demo's bar, a message per segment done (its step is the
    caller's)."""
    from lungai.radiomics import STANDARD_SEGMENTS, extract, load_params, segments_from_masks, to_wide
    from lungai.radiomics.params import PRESETS, ibsi_config
    from lungai.radiomics.prepare import settings_text
    from lungai.radiomics.segments import AUTOMATIC_TUMOUR
    from lungai.radiomics.settings import unverified_ibsi_note

    params = load_params(params_name, image_types=["Original"])
    errors: dict = {}
    # the standard segment set, as `lungai cohort` / `lungai radiomics` compute it, so an RP model trained the
    # documented way (its rad_lungs_minus_tumour_* features included) can be applied here
    # a tumour wholly outside the lungs: lungs_minus_tumour equals them, noted as lungai cohort / radiomics note it
    # (the segment's notes in radiomics_settings.csv; summary.json's radiomics.notes: the console and the report)
    outside: list = []
    segments = segments_from_masks(ct, tumour=tumour if sitk.GetArrayViewFromImage(tumour).any() else None,
                                   lungs=lungs, names=list(STANDARD_SEGMENTS), errors=errors, notes=outside,
                                   tumour_named=AUTOMATIC_TUMOUR)
    counting = SubProgress(progress, "radiomics:", total=max(len(segments), 1))
    result = extract(ct, segments, params, case=case, segment_errors=errors, progress=counting,
                     segment_notes={"lungs_minus_tumour": outside})
    long = result.features

    def write_tables():
        _to_csv(long, out / "radiomics_long.csv", index=False)
        _to_csv(result.settings, out / "radiomics_settings.csv", index=False)
        wide = to_wide(long)
        _to_csv(wide, out / "radiomics_wide.csv", index=False)
        return wide

    # the tables' writes said with their seconds, after the segments' count ("radiomics 5/5: writing ..."; QA
    # demofollow68: 2-3 s after "radiomics 5/5" without a line); a Ctrl-C waits for the write under way
    # (lungai.io.outputs.writing: no partial file left unrecorded)
    wide = waiting(counting if progress is not None else None,
                   "writing radiomics_long.csv, radiomics_settings.csv, radiomics_wide.csv", write_tables,
                   finish_on_stop=True)
    key = []
    for segment, name, label in KEY_FEATURES:
        name = _key_feature_name(name, params)
        image_type, feature_class, feature = name.split("_", 2)
        row = long[(long.segment == segment) & (long.image_type == image_type) &
                   (long.feature_class == feature_class) & (long.feature == feature)]
        if len(row):
            key.append({"segment": segment, "feature": name, "label": label, "value": float(row.value.iloc[0])})
    cfg = ibsi_config(params)
    given = (f"preset {params_name}" if str(params_name).lower() in PRESETS
             else f"parameter file {Path(params_name).name}")
    if cfg is not None:
        text = (f"IBSI-1 configuration {cfg.name} ({given}: the IBSI pipeline of lungai ibsi-check, every value an "
                "IBSI-1 feature), Original image; segments tumour, right lung, left lung, lungs, lungs minus tumour")
    else:       # the grid and bins each segment had, as radiomics_settings.csv records them (a parameter file's own)
        text = (("lungai default preset" if given == "preset default" else given) + " (pyradiomics; not IBSI-1 "
                f"processing), Original image; {settings_text(result.settings)}; radiomics_settings.csv")
    # which pipeline computed the values: the report says "N IBSI-1 features (configuration C)" or "N pyradiomics
    # features" (QA reportrp60: an ibsi-c run said "pyradiomics features")
    # the features are counted per segment, apart from the segments (QA wording61: "535 pyradiomics features were
    # computed" counted 107 features of each of 5 segments)
    names = long[["image_type", "feature_class", "feature"]].drop_duplicates()
    info = {"n_features": int(len(names)), "n_segments": int(long["segment"].nunique()), "n_values": int(len(long)),
            "key_features": key, "params": text,
            "ibsi_configuration": cfg.name if cfg is not None else None,
            "settings": result.settings.drop(columns="case").to_dict("records"),
            "failed_segments": result.errors.to_dict("records"),
            "notes": [f"lungs_minus_tumour: {n}" for n in outside]}
    # an IBSI preset's ivh_auc: IBSI-1 gives it no reference value - in the console ("note: radiomics ...") and the
    # report's radiomics notes, as radiomics / radiomics-batch say it (QA radfollow72: --params ibsi-c said nothing)
    if (unverified := unverified_ibsi_note(params)) is not None:
        info["notes"].append(unverified)
    return wide, info


def _dose(out: Path, ct, tumour, lungs, dose_path, sample: bool, case: str = "demo", unit: str = "Gy",
          max_gy: float | None = None, given=None, masks: str | None = None, notes=(), progress=None) -> tuple:
    """(dose image on the CT grid or None, feature row or None, sentence on where the dose came from).  ``given``:
    the dose of ``dose_path`` already read (:func:`lungai.dose.read_dose`, ``unit`` / ``max_gy``); ``masks``: the
    masks ``lungs`` / ``tumour`` are (:func:`dose_masks`' ``masks``), dose.csv's masks column; ``notes``: the
    RTDOSE's notes that qualify the metrics (DoseType EFFECTIVE, not checked against the CT), dose.csv's
    rtdose_notes column (as ``lungai dose-features`` writes it: ``lungai rp predict`` repeats them).  ``progress``:
    the demo's bar, each part (the dose made or resampled, its metrics, dose.nii.gz written) said with its seconds
    (its step is the caller's; QA demofollow68: the synthetic dose and the 18 MB dose.nii.gz, 2.6-5 s without a
    line).  The row has
    dose.csv's columns (:func:`lungai.dose.features.output_columns`: the masks, ``lungs_cut`` of the dose's lungs,
    the notes), so the RP risk's patient row carries the lungs cut by the scan and the notes, as dose.csv would."""
    from lungai.dose import dose_features, read_dose, treatment_dose
    from lungai.dose.features import (LUNGS_CUT_COLUMN, MASKS_COLUMN, NOTES_COLUMN, lungs_cut, notes_text,
                                      output_columns)

    has_tumour = bool(sitk.GetArrayViewFromImage(tumour).any())
    if dose_path is not None:
        if given is None:
            given = waiting(progress, f"dose: reading {Path(dose_path).name}", read_dose, dose_path, unit=unit,
                            max_gy=max_gy)
        row = waiting(progress, "dose: dose metrics (mean lung dose, V5-V30, D2-D98)", dose_features, given, ct,
                      lungs, tumour if has_tumour else None, case=case)
        dose = waiting(progress, "dose: resampling the dose onto the CT grid", sitk.Resample, given, ct,
                       sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        source = f"RT dose {Path(dose_path).name} (given with --dose), resampled onto the CT grid."
    elif sample:
        if not has_tumour:
            raise InputError("no tumour was found, so no synthetic treatment dose can be planned around it",
                             "give a CT with a visible tumour, or run the steps separately (lungai lungs / radiomics)")
        # 60 Gy within 10 mm of the tumour, 60 mm exponential fall-off: on the sample this gives
        # MLD ~15 Gy and V20 ~24 %, typical of (chemo)radiotherapy for locally advanced NSCLC
        dose = waiting(progress, "dose: making the synthetic treatment dose", treatment_dose, tumour,
                       prescription_gy=60.0, margin_mm=10.0, falloff_mm=60.0)
        row = waiting(progress, "dose: dose metrics (mean lung dose, V5-V30, D2-D98)", dose_features, dose, ct,
                      lungs, tumour, case=case)
        source = ("Synthetic treatment dose for the built-in sample (not a real plan): 60 Gy to the tumour plus a "
                  "10 mm margin, falling off exponentially (60 mm) outside it.")
    else:
        return None, None, ("No dose was given, so no dose metrics are computed: "
                            + MISSING["dose"]["how"] + ".")
    # a Ctrl-C waits for the write (write_image's temporary file beside dose.nii.gz removed by its own clean-up)
    waiting(progress, "dose: writing dose.nii.gz", write_image, dose, out / "dose.nii.gz", finish_on_stop=True)
    # as lungai dose-features writes it (QA demorisk58: no lungs_cut column, and the RP risk got neither it nor the
    # notes - an EFFECTIVE RTDOSE's note never reached the risk)
    row = {**row, MASKS_COLUMN: masks, LUNGS_CUT_COLUMN: lungs_cut(lungs)[0], NOTES_COLUMN: notes_text(notes)}
    _to_csv(pd.DataFrame([row], columns=output_columns()), out / "dose.csv", index=False)
    return dose, row, source


# Below this Dice with the plan's GTV (--rtstruct) the automatic tumour is said to disagree with it: the radiomics,
# RP risk and stage, which use the automatic tumour, are then not those of the GTV the oncologist contoured (QA:
# LUNG1-003 with its RTSTRUCT - the automatic tumour 2 ml, flagged, against the 35 ml GTV-1 - gave an RP risk of 90 %
# from the 2 ml tumour's features, the report naming only the review flag).
GTV_AGREEMENT_DICE = 0.5


def tumour_step_text(info: dict) -> str:
    """The demo bar's tumour step: its volume and confidence, the confidence as ``lungai segment``'s summary line
    shows it (:func:`lungai.scene.results.confidence_text`: apart from its review threshold, "uncalibrated" when it
    is) - QA seg69: "tumour 16.9 ml, confidence 0.64" of 0.6402 flagged below the threshold 0.644."""
    from lungai.scene.results import confidence_text

    return f"tumour {result_value(info, 'tumour_volume_ml'):.1f} ml, {confidence_text(info)}"


def gtv_agreement(tumour: sitk.Image, gtv: sitk.Image, gtv_source: str | None = None) -> dict:
    """The automatic tumour against the plan's GTV (the RTSTRUCT's, on the CT grid): {"dice", "tumour_ml", "gtv_ml",
    "gtv_parts", "note"} - the note (else None) when their Dice is below :data:`GTV_AGREEMENT_DICE`, naming both
    volumes and where the GTV's own features come from.  A GTV of several separate parts (a primary and nodes, GTV-1
    + gtv-2 by role) is compared by the parts the automatic tumour overlaps (all of them when it overlaps none): the
    seed marks one tumour, and a node segmented whole is no disagreement."""
    from lungai.overlap import dice

    a = sitk.GetArrayViewFromImage(tumour) > 0
    parts = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.Cast(gtv > 0, sitk.sitkUInt8), True))
    hit = np.unique(parts[a & (parts > 0)])
    b = np.isin(parts, hit) if hit.size else parts > 0
    d = float(dice(a, b))
    n = int(parts.max())
    out = {"dice": round(d, 4), "tumour_ml": round(mask_volume_ml(a, tumour.GetSpacing()), 3),
           "gtv_ml": round(mask_volume_ml(b, tumour.GetSpacing()), 3),
           "gtv_parts": f"{hit.size or n} of {n}", "note": None}
    if d < GTV_AGREEMENT_DICE:
        what = f"the {hit.size} of its {n} parts it overlaps, " if hit.size and hit.size < n else ""
        out["note"] = (f"the automatic tumour ({out['tumour_ml']:.1f} ml) agrees poorly with the plan's GTV "
                       f"({gtv_source or 'RTSTRUCT'}; {what}{out['gtv_ml']:.1f} ml; Dice {d:.2f}): the tumour radiomics, the "
                       "RP risk and the stage use the automatic tumour, the dose metrics the GTV - check the seed point "
                       "(or the model: --model lungai-seg-dynunet for a large tumour); the GTV's own features: lungai "
                       "radiomics --rtstruct (or lungai cohort)")
    return out


def dose_masks(seg_info: dict, rt: dict | None = None, tumour_found: bool = True) -> dict:
    """Which masks the dose metrics were computed on, as the report and console say it: this run's automatic
    lungs (lungai.lungs) minus its automatic tumour (lungai.seg; ``tumour_found`` False: none, the lungs whole),
    the tumour's review flag repeated; or, with ``rt`` (:func:`lungai.dicom.masks.rtstruct_dose_masks` of
    --rtstruct), the plan's contoured structures.  ``masks``: the same as dose.csv's masks column and the DICOM SR
    say it (:func:`lungai.dose.features.masks_text`)."""
    from lungai.dose.features import AUTOMATIC_LUNGS, AUTOMATIC_TUMOUR, masks_text

    if rt is not None:
        gtv, envelope = rt.get("gtv_source"), rt.get("envelope_source")
        minus_gtv = bool(rt.get("lungs_minus_gtv"))       # a 'Lungs-GTV' structure: the tumour already out
        return {"lungs": "rtstruct", "tumour": "rtstruct" if gtv else "none", "flagged": False,
                "lung_source": rt["lung_source"], "gtv_source": gtv, "envelope_source": envelope,
                "masks": masks_text(rt["lung_source"], gtv, envelope, rt.get("envelope_problem"), minus_gtv),
                "lungs_label": ("lungs minus GTV (RTSTRUCT)" if gtv else "lungs minus motion envelope (RTSTRUCT)" if envelope
                                else "lungs minus GTV as contoured (RTSTRUCT)" if minus_gtv else "lungs (RTSTRUCT)"),
                "gtv_label": "GTV (RTSTRUCT)",
                "gtv_missing": None if gtv else "the RTSTRUCT has no GTV",
                "text": f"Dose metrics on the plan's contours given with --rtstruct, not the automatic masks: lungs "
                        f"{rt['lung_source']}" + (f" minus the GTV {gtv}." if gtv else
                                                  f" minus the tumour's motion envelope {envelope}: the RTSTRUCT has no "
                                                  "GTV (Lungs - iGTV; no GTV dose)." if envelope else
                                                  "; the RTSTRUCT has no GTV structure, the lung structure excludes the "
                                                  "GTV as contoured (no GTV dose)." if minus_gtv else
                                                  "; the RTSTRUCT has no GTV, so the lungs include the tumour.")}
    flagged = bool(seg_info.get("needs_review"))
    tumour = "the automatic tumour" + (" (flagged for review)" if flagged else "")
    return {"lungs": "automatic", "tumour": "automatic", "flagged": flagged,
            "masks": masks_text(AUTOMATIC_LUNGS, AUTOMATIC_TUMOUR if tumour_found else None),
            "lungs_label": "automatic lungs minus automatic tumour",
            "gtv_label": "automatic tumour" + (" (flagged for review)" if flagged else "") + " as GTV",
            "gtv_missing": None if tumour_found else "no tumour was found",
            "text": f"Lung metrics are for the automatic lungs (lungai.lungs) minus {tumour} (lungai.seg), not an "
                    f"oncologist's contours; the GTV row is {tumour}."}


def _illustrative_rp_model(out: Path) -> tuple:
    """The built-in sample's RP model: trained on a synthetic cohort with a known risk model."""
    from lungai.rp import make_cohort, train_rp

    cohort = make_cohort(n=400, seed=0)
    _to_csv(cohort.table, out / "rp_training_cohort.csv", index=False)
    result = train_rp(cohort.table, cohort.outcome, out / "rp_model", models="lr", fast=True, seed=0, overwrite=True,
                      make_plots=False)
    auc = result.metrics.get("chosen_auc") if isinstance(result.metrics, dict) else None
    desc = (f"ILLUSTRATIVE model ({result.chosen}) trained with nested cross-validation on a synthetic cohort of "
            f"{len(cohort.table)} patients with a known risk model (lungai.rp.make_cohort)"
            + (f", cross-validated AUC {auc:.2f}" if isinstance(auc, (int, float)) else "") + ".")
    return out / "rp_model", desc


def _rp(out: Path, wide: pd.DataFrame, dose_row, dose_given: bool, clinical, rp_model, sample: bool,
        case: str = "demo", tumour: dict | None = None, loaded: tuple | None = None, pack_years=None) -> dict:
    """RP risk only from what the user gave (--rp-model, --clinical, --dose); on the built-in sample the
    illustrative model, example profile and synthetic dose fill what was not given (labelled as such).

    Inputs the RP model refuses (radiomics computed with other settings than the model's, a --clinical value it
    cannot read, ...: an :class:`~lungai.errors.InputError`) leave the risk not computed, with the reason and its fix
    (``refused``), as a missing input does: the demo goes on, and its report keeps the segmentation, radiomics and
    dose they computed (QA demoseq59: the error ended the demo after the work, with no report).

    ``tumour``: the demo's automatic tumour, ``{"caveat": the segmentation model's confidence caveat ('' if none),
    "needs_review": bool, "dose": whether the dose metrics were computed on it}``: a caveat of a tumour not flagged
    for review is carried in the patient's row (``tumour_confidence_caveat``) when the risk uses that tumour's values,
    so that ``rp predict``'s warnings say it (QA demoseq59: with --model lungai-seg-dynunet the risk said nothing).

    ``loaded``: the --rp-model's (bundle, card), loaded before any work (:func:`check_model_options`): the model is
    read once a run (QA srcodes61: the sample's model was read twice, a --rp-model three times).  ``pack_years``:
    the --clinical row's never-smoker note (:func:`read_clinical`), said if the model has the pack-years feature."""
    try:
        return _rp_risk(out, wide, dose_row, dose_given, clinical, rp_model, sample, case, tumour, loaded, pack_years)
    except InputError as err:
        return _refused("RP model", "rp_model" if rp_model is not None else "clinical", err,
                        "check the --rp-model / --clinical inputs")


def _refused(model: str, key: str, err: InputError, fix: str) -> dict:
    """A result section not computed because ``model`` ("RP model", "stage model") refused this patient's inputs
    (``err``, raised after the demo's work: the demo goes on and its report says why): ``refused`` ``{"input": key,
    "what": the problem, "how": its fix (``fix`` when it names none)}`` - the report's banner, summary.json,
    missing_inputs.csv and the console say them."""
    refused = {"input": key, "what": err.problem, "how": err.fix or fix}
    return {"status": "not computed", "missing": [], "refused": refused,
            "message": f"not computed: the {model} refused this patient's inputs: {refused['what']} - "
                       f"how to fix: {refused['how']}."}


def _rp_risk(out: Path, wide: pd.DataFrame, dose_row, dose_given: bool, clinical, rp_model, sample: bool,
             case: str = "demo", tumour: dict | None = None, loaded: tuple | None = None, pack_years=None) -> dict:
    """:func:`_rp`, an input the RP model refuses raised (:class:`~lungai.errors.InputError`)."""
    from lungai.radiomics.settings import SETTINGS_COLUMN
    from lungai.rp import RISK_MODEL, predict_rp
    from lungai.rp.model_io import load_model
    from lungai.rp.predict import rp_endpoint, synthetic_model
    from lungai.rp.prepare import LUNG_NOTES_COLUMN, REVIEW_COLUMN, TUMOUR_NOTES_COLUMN, demo_params, \
        model_settings_ids, settings_fix_demo
    from lungai.seg.resources import CAVEAT_COLUMN

    if rp_model is None and not sample:
        return _not_computed(["rp_model"] + (["clinical"] if clinical is None else []) +
                             (["dose"] if dose_row is None else []))
    illustrative = sample and (rp_model is None or clinical is None or not dose_given)
    if rp_model is None:
        model_dir, desc = _illustrative_rp_model(out)
    else:
        model_dir, desc = Path(rp_model), f"Model {Path(rp_model).name} (given with --rp-model)."
    model = loaded if loaded is not None and rp_model is not None else load_model(model_dir)   # read once
    card = model[1]
    synthetic = synthetic_model(card)     # trained on a synthetic cohort (the sample's, or rp synth's): illustrative
    illustrative = illustrative or synthetic
    patient = {"case": case}
    if clinical is not None:
        say_row_pack_years(pack_years, card["features"])     # only for a pack-years feature of this model
        patient.update(clinical)
    elif sample:
        patient.update(EXAMPLE_CLINICAL)
    patient.update(dose_row or {})
    computed = {c: float(wide[c].iloc[0]) for c in wide.columns if c.startswith("rad_")}
    withheld = []
    if rp_model is None:
        # the illustrative model's risk features, computed for this patient; its noise radiomic columns
        # are withheld on purpose (imputed by the locked pipeline): not "missing" for this patient
        computed = {c: v for c, v in computed.items() if c in RISK_MODEL}
        withheld = [c for c in card["features"] if c not in patient and c not in computed]
        patient.update({c: np.nan for c in withheld})
    patient.update(computed)
    if computed and SETTINGS_COLUMN in wide:
        # the settings of the radiomics computed here, which the model's are checked against - never those of a
        # --clinical table's own rad_* columns (a cohort's rp_table.csv), which these values replace (QA demorisk59:
        # the check then passed features of --params default as an ibsi-b model's; without it: "settings unknown")
        patient[SETTINGS_COLUMN] = wide[SETTINGS_COLUMN].iloc[0]
    ours = set(computed) | set(dose_row or {})
    sources = rp_sources(card["features"], ours, clinical)
    stale = set()
    if not sources["clinical_row"]:
        # a --clinical cohort row's notes of its own tumour (rp_table.csv's tumour_review, tumour_notes,
        # tumour_confidence_caveat) describe its rad_* / dose_* values, which the model takes from the demo here: not
        # this risk's (the demo says its own tumour's review flag and caveat; QA demorisk59: the risk said "automatic
        # tumour needs review" of the cohort's tumour, with the fix "re-run lungai cohort")
        stale = {REVIEW_COLUMN, TUMOUR_NOTES_COLUMN, CAVEAT_COLUMN}
    if not [f for f in sources["clinical_row"] if not f.startswith(("rad_tumour", "dose_gtv_"))]:
        # ... and its notes of its own lungs (lung_notes: a lung structure that is not a lung, a lung absent) describe
        # its lung radiomics / lung dose metrics: not this risk's when the demo's own lungs give every such value
        # (QA notesfollow72: the row's lung_notes of the cohort's lungs were said of the demo's risk)
        stale.add(LUNG_NOTES_COLUMN)
    patient = {k: v for k, v in patient.items() if str(k).strip().lower() not in stale}
    # the demo's own tumour's confidence caveat (not flagged for review: a flag is said by the demo itself), in the
    # row as lungai cohort writes it, when the values the model takes from this run depend on that tumour
    on_tumour = [f for f in card["features"] if (f in computed and f.startswith(("rad_tumour", "rad_lungs_minus_tumour")))
                 or (f in (dose_row or {}) and (tumour or {}).get("dose"))]
    if tumour and tumour.get("caveat") and not tumour.get("needs_review") and on_tumour:
        patient[CAVEAT_COLUMN] = tumour["caveat"]
    missing = [f for f in card["features"] if f not in patient]
    if missing:
        own = patient.get(SETTINGS_COLUMN)
        preset = demo_params(card) if isinstance(own, str) and own not in model_settings_ids(card) else None
        return _not_computed([], model_features=missing, radiomics_fix=preset and settings_fix_demo(card))
    # the fixes of the whole-table warnings (lungs cut, no dose) said to the demo's user (its --ct / --dose)
    pred, _contrib = predict_rp(model_dir, pd.DataFrame([patient]), top=6, context="demo", model=model)
    if withheld:     # the illustrative model's noise columns, withheld on purpose: not "imputed" in the CSV either
        pred["imputed"] = ["; ".join(f for f in str(v).split("; ") if f and f not in withheld) if isinstance(v, str)
                           else v for v in pred["imputed"]]
        pred.insert(list(pred.columns).index("imputed") + 1, "withheld", "; ".join(withheld))
    _to_csv(pred, out / "rp_prediction.csv", index=False, float_format="%.5g")
    p = pred.iloc[0]
    tops = [(str(p[f"top{i}_feature"]), float(p[f"top{i}_contribution"])) for i in range(1, 7)
            if f"top{i}_feature" in p and isinstance(p[f"top{i}_feature"], str)]
    said = rp_prediction_warnings(p, pred.attrs.get("row_warnings", [None])[0], pred.attrs.get("warnings"))
    if withheld:                # withheld on purpose, not missing: not listed as imputed (nor in the banner)
        said["imputed"] = [f for f in said["imputed"] if f not in withheld]
        desc += (f" Its {counted(len(withheld), 'noise radiomic column')} (no effect on the true risk) "
                 f"{agree(len(withheld), 'is', 'are')} withheld on purpose and imputed by the model.")
    given = [f for f in card["features"] if f in patient and not _missing(patient[f])]   # what the risk used
    # where this run's values came from: the sample fills what was not given with its example profile / synthetic dose
    inputs = rp_inputs_text(card["features"], sources,
                            "--clinical" if clinical is not None else "the illustrative example profile",
                            "--dose" if dose_given or dose_row is None else "the sample's synthetic dose")
    if synthetic and not sample:
        desc += (" ILLUSTRATIVE: its model card says it was trained on a synthetic cohort (lungai.rp.make_cohort), "
                 "not on patients; inputs: " + inputs
                 + ". NOT a result for a patient.")
    elif illustrative:
        # and whether the risk takes the tumour radiomics computed here (QA docsfollow72: the sample's locked model,
        # clinical_dosimetric/lr, uses none - only summary.json's rp.inputs said so, not the report's RP section)
        uses_radiomics = any(f.startswith("rad_") for f in card["features"])
        desc += (" Clinical values: " + ("an illustrative example profile" if clinical is None else "--clinical")
                 + "; dose: " + ("--dose" if dose_given else "the sample's synthetic dose")
                 + ("" if uses_radiomics else "; radiomics: none (the model uses no radiomic features: the "
                                              "radiomics computed here do not enter the risk)")
                 + ". NOT a result for a patient.")
    else:
        desc += " Inputs: " + inputs + "."
    from lungai.report.html import feature_label, feature_value_text

    # each top feature in words with the patient's value (the report's table and bar labels; QA reportrp60: the bars
    # said dose_v5_pct, rad_lungs_original_glcm_JointEntropy, and no value)
    top_features = [{"feature": f, "label": feature_label(f)[0], "contribution": v,
                     "value": feature_value_text(f, None if f in said["imputed"] else patient.get(f))}
                    for f, v in tops]
    return {"status": "illustrative" if illustrative else "computed", "risk": float(p["risk"]),
            "risk_low": float(p["risk_low"]), "risk_high": float(p["risk_high"]),
            # the model's high-risk threshold (its card: rp_prediction.csv's high_risk = risk >= it) and its rule
            "high_risk": bool(p.get("high_risk", False)), "threshold": float(card["threshold"]),
            "threshold_rule": str(card.get("threshold_rule") or "not recorded"),
            "contributions": tops, "top_features": top_features, "model_description": desc,
            # what the risk is the risk of: the model's outcome, in words (QA demo62: the console said "RP risk 25%")
            "outcome": str(card.get("outcome", "")), "endpoint": rp_endpoint(card)[1],
            "endpoint_short": rp_endpoint(card)[0],
            "model": str(card.get("model_name", "")), "synthetic_model": synthetic, **said, "withheld": withheld,
            "card": rp_card_summary(card), "sources": sources, "inputs": inputs,
            # what of this run the risk depends on, of the values given (the report repeats the tumour's review
            # flag only then)
            "uses_tumour_radiomics": any(f.startswith(("rad_tumour", "rad_lungs_minus_tumour")) for f in given),
            "uses_dose": any(f.startswith("dose_") for f in given),
            "uses_gtv_dose": any(f.startswith("dose_gtv_") for f in given),     # the GTV's dose, or the lungs'
            "uses_lung_dose": any(f.startswith("dose_") and not f.startswith("dose_gtv_") for f in given)}


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _items(value) -> list[str]:
    """A '; '-separated cell of rp_prediction.csv (imputed, out_of_range, warnings) as a list; [] when empty."""
    if not isinstance(value, str):
        return []
    return [v.strip() for v in value.split(";") if v.strip()]


def rp_prediction_warnings(p, row_warnings=None, table_warnings=None) -> dict:
    """What ``lungai rp predict`` says with a risk (rp_prediction.csv's row ``p``): ``imputed`` (missing features,
    imputed), ``out_of_range`` (features outside the training range, with it), ``warnings`` (the row's: radiomics
    settings, lungs cut by the scan, no dose, the dose notes - ``row_warnings``, the row's list of
    ``pred.attrs["row_warnings"]``, when given: a note can hold "; " itself, so the cell is split only without it),
    ``table_warnings`` (what rp predict prints of the whole table, ``pred.attrs["warnings"]``, with its fix; those
    the row's warnings already say word for word left out) and ``baseline_risk`` (the reference the contributions
    are measured from) - carried with the risk."""
    out = {key: _items(p.get(key)) for key in ("imputed", "out_of_range", "warnings")}
    if row_warnings is not None:
        out["warnings"] = [str(w) for w in row_warnings if str(w).strip()]
    out["table_warnings"] = [str(w) for w in (table_warnings or []) if w and str(w) not in out["warnings"]]
    base = p.get("baseline_risk")
    if base is not None and not pd.isna(base):
        out["baseline_risk"] = float(base)
    return out


def rp_sources(features, ours, clinical) -> dict:
    """Which of the model's ``rad_*`` / ``dose_*`` features this run gave (``this_run``: its radiomics, its dose
    metrics - ``ours``), which the ``clinical`` row (``clinical_row``: a cohort's rp_table.csv row as --clinical), and
    which of that row's own values this run's replaced (``replaced``) - said with the risk (QA demoseq59: the demo's
    tumour replaced a cohort row's GTV radiomics without a word)."""
    clinical = clinical or {}
    measured = [f for f in features if f.startswith(("rad_", "dose_"))]
    return {"this_run": [f for f in measured if f in ours],
            "clinical_row": [f for f in measured if f not in ours and f in clinical],
            "replaced": [f for f in measured if f in ours and f in clinical and not _missing(clinical[f])]}


def _names(cols: list, n: int = 5) -> str:
    return ", ".join(cols[:n]) + (f" and {len(cols) - n} more" if len(cols) > n else "")


def rp_inputs_text(features, sources: dict | None = None, clinical_from: str = "--clinical",
                   dose_from: str = "--dose") -> str:
    """Where the model's inputs came from in this run: only the kinds of feature the model uses; with ``sources``
    (:func:`rp_sources`), the ``rad_*`` / ``dose_*`` values the --clinical row gave, and those of its own that this
    run's replaced, named.  ``clinical_from`` / ``dose_from``: where the clinical values and the dose metrics came
    from when not from --clinical / --dose (the built-in sample: its example profile, its synthetic dose - QA demo62:
    the sample's rp.inputs said "from --clinical", "from --dose", neither given)."""
    features = list(features)
    row = set((sources or {}).get("clinical_row") or [])
    kinds = [(("clin_",), f"clinical values from {clinical_from}"), (("dose_",), f"dose metrics from {dose_from}"),
             (("rad_",), "radiomics computed here")]
    parts = [what for prefix, what in kinds if any(f.startswith(prefix) and f not in row for f in features)]
    for prefix, what in (("dose_", "dose metrics"), ("rad_", "radiomic features")):
        cols = [f for f in features if f.startswith(prefix) and f in row]
        if cols:
            parts.append(f"{len(cols)} {what} from the --clinical row ({_names(cols)})")
    replaced = (sources or {}).get("replaced") or []
    if replaced:
        parts.append(f"the --clinical row's own values of {counted(len(replaced), 'feature')} replaced by this run's "
                     f"({_names(replaced)})")
    other = [f for f in features if not f.startswith(("clin_", "dose_", "rad_"))]
    if other:
        parts.append("other columns from --clinical (" + ", ".join(other[:5]) + (" ..." if len(other) > 5 else "") + ")")
    return ", ".join(parts) + ("" if any(f.startswith("rad_") for f in features) else
                               " (the model uses no radiomic features)")


def rp_card_summary(card: dict) -> dict:
    """What the RP model card says of its validation (model_card.json): nested-CV AUC with its 95 % CI, training
    patients and events (:func:`lungai.rp.card.validation_text`), intended use and the training warnings."""
    from lungai.rp.card import card_warning_texts, validation_text

    m, td = card.get("metrics_nested_cv") or {}, card.get("training_data") or {}
    # an older card's warnings naming training patients: in their form without the IDs (a patient's report names no
    # other patient: QA idforms66)
    return {"auc": m.get("auc"), "auc_ci95": m.get("auc_ci95"), "validation": validation_text(card),
            "n": td.get("n"), "events": td.get("events"), "intended_use": card.get("intended_use", ""),
            "warnings": [getattr(w, "without_ids", None) or str(w) for w in card_warning_texts(card)]}


def _stage(out: Path, ct, tumour, clinical, stage_model, sample: bool, case: str = "demo", loaded=None,
           progress=None, pack_years=None) -> dict:
    """Stage probabilities only from a locked model the user gave (--stage-model), with the CT + tumour
    and the --clinical row; on the built-in sample an illustrative model trained on a synthetic cohort.

    Only inputs the model was trained with and this case gives are used (lungai.fusion.api.usable_inputs:
    EHR = at least one of the model's EHR columns has a value in --clinical; CT = only if the model's CT
    input was trained); with none of them the stage is not computed and the section says what the model needs.

    ``loaded``: the --stage-model already loaded (:func:`check_model_options`, before any work).  Inputs the model
    refuses (an :class:`~lungai.errors.InputError` after the demo's work) leave the stage not computed with the
    reason and its fix (``refused``, :func:`_refused`), as the RP step does: the demo finishes its report.
    ``progress``: the demo's bar; the illustrative model's training is said on it (a message; its step is the
    caller's).  ``pack_years``: the --clinical row's never-smoker note (:func:`read_clinical`), said if the locked
    model's EHR columns hold the pack-years column."""
    try:
        return _stage_probabilities(out, ct, tumour, clinical, stage_model, sample, case, loaded, progress,
                                    pack_years)
    except InputError as err:
        return _refused("stage model", "stage_model" if stage_model is not None else "clinical", err,
                        "check the --stage-model / --clinical inputs")


def _stage_probabilities(out: Path, ct, tumour, clinical, stage_model, sample: bool, case: str = "demo",
                         loaded=None, progress=None, pack_years=None) -> dict:
    """:func:`_stage`, an input the stage model refuses raised (:class:`~lungai.errors.InputError`)."""
    from lungai.fusion import ct_unused_text
    from lungai.fusion.api import (MODALITY_NAMES, NOT_COMPUTED, describe_inputs, inputs_used_text, model_inputs,
                                   predict_frame, single_patient_cohort, train_stage_model)
    from functools import partial

    from lungai.fusion.pipeline import FusionConfig
    from lungai.rp.predict import synthetic_model

    has_tumour = bool(sitk.GetArrayViewFromImage(tumour).any())
    ehr_row = {k: v for k, v in (clinical or {}).items() if k != "patient_id"} or None
    notes = []       # the inputs given or trained with that this prediction does not use, said plainly
    if stage_model is not None:
        from lungai.fusion import model_io

        pipe, baselines, meta = loaded or model_io.load(stage_model)
        name, model = model_io.chosen(pipe, baselines, meta)
        needs = model_inputs(model)
        if ehr_row is not None:     # the row's 0 pack-years: said only for a pack-years column of the model
            say_row_pack_years(pack_years, needs["ehr"])
        net = (pipe.notes, pipe.modalities)     # the fusion network's training notes: why a CT is not used
        desc = (f"Locked stage model {Path(stage_model).name} (given with --stage-model); predicting with its "
                f"selected model, {name}.")
        # the model's EHR columns not in --clinical: said in the prediction's own notes (predict_frame), below
        if has_tumour and not needs["ct"]:      # why, in the words of `lungai stage predict` and the panel
            notes.append(f"The CT is not used: {ct_unused_text(name, *net)}.")
        if needs["rna"]:     # whatever RNA-seq the patient has: the demo takes none (QA stageuse63)
            notes.append(rna_not_used_text(stage_model))
        illustrative = synthetic_model(meta)     # trained on a stage synth cohort (its card says so), as RP's
        if illustrative:
            desc += (" ILLUSTRATIVE: its model card says it was trained on a synthetic cohort (lungai stage synth), "
                     "not on patients. NOT a result for a patient.")
        card = stage_card_summary(meta)
    elif sample:
        from lungai.fusion.synthetic import make_cohort

        # a small cohort and a short schedule keep this step to seconds; `lungai stage train` is the real thing
        SubProgress(progress, "stage:").update(0, "training the illustrative model on a synthetic cohort")
        paths = make_cohort(out / "stage_cohort", n=36, seed=0, ct_shape=(48, 48, 24), ct_spacing=(5.0, 5.0, 5.0))
        # ~10-15 s (torch's deterministic mode imported, 25 epochs): its seconds said every ~2 s, its epochs as the
        # fusion's training reports them (QA demo68: 13-14 s without a line in a log)
        training = "stage: training the illustrative model"
        train = partial(train_stage_model, paths["ehr"], paths["rna"], paths["ct"], label="stage",
                        config=FusionConfig(epochs=25, patience=8, min_epochs=10, emb=16, seed=0),
                        progress=SubProgress(progress, training + ":"))
        name, model = "fusion", waiting(progress, training, train)
        needs = model_inputs(model)
        ehr_row = None
        desc = ("ILLUSTRATIVE intermediate-fusion model (3D CNN on a tumour-centred CT crop, graph attention network "
                "on gene expression, MLP on EHR) trained on a small synthetic multimodal cohort "
                "(lungai.fusion.synthetic). NOT a result for a patient.")
        illustrative = True
        card = None
        net = (model.notes, model.modalities)
    else:
        return _not_computed(["stage_model"])

    def predict():
        cohort = single_patient_cohort(case, ehr_row, None, ct if has_tumour else None,
                                       tumour if has_tumour else None)
        return predict_frame(name, model, cohort)

    # the patient's inputs prepared (the tumour-centred CT crop) and the model run: 2-5 s, said with their seconds
    # (QA demofollow68: "epoch 25/25" to "stage III" stood 4.9 s, 6 s loaded, without a line)
    df = waiting(progress, f"stage: predicting with the {'illustrative ' if stage_model is None else ''}model "
                           f"({name})", predict)
    row = df.iloc[0]
    if row["status"] not in ("computed", NOT_COMPUTED):
        # a value given that the model cannot use (text in a numeric EHR column, ...): its status names it and the
        # fix - not "missing inputs" (QA stagedemo59: --clinical age "old" said "pass the model's EHR columns")
        problem, sep, fix = str(row["status"]).removeprefix("not computed: ").rpartition(" - ")
        raise InputError(problem if sep else fix, fix if sep else "check the --clinical values the stage model uses")
    if row["status"] != "computed":
        given = [m for m, ok in (("EHR columns " + ", ".join(sorted(ehr_row)) if ehr_row else "", bool(ehr_row)),
                                 ("CT with a tumour", has_tumour)) if ok]
        return _not_computed([], extra=[{
            "input": "stage_inputs",
            "what": f"the inputs the stage model ({name}) was trained with: {describe_inputs(needs)}; given: "
                    + ("; ".join(given) if given else "none")
                    + ("" if needs["ct"] or not has_tumour else f" (the CT is not used: {ct_unused_text(name, *net)})"),
            "how": ("pass the model's EHR columns (named as in its training table) in the --clinical CSV"
                    if needs["ehr"] else "use a stage model trained with CT or EHR")
                   + (f"; {rna_not_used_text(stage_model)}" if needs["rna"] else "")}])
    _to_csv(df, out / "stage_probabilities.csv", index=False)
    classes = [c[2:] for c in df.columns if c.startswith("p_")]
    probs = [float(row[f"p_{c}"]) for c in classes]
    used = [MODALITY_NAMES[m] for m in ("ct", "ehr", "rna") if bool(row[m])]
    # the prediction's own notes (EHR values not seen in training, ...): in the section, as in predictions.csv
    patient_notes = [n.strip() for n in str(row.get("notes") or "").split("; ") if n.strip()]
    return {"status": "illustrative" if illustrative else "computed", "classes": classes, "probabilities": probs,
            "predicted": str(row["predicted"]),
            "model_description": " ".join([desc] + notes + [n.rstrip(".") + "." for n in patient_notes]),
            "notes": patient_notes, "inputs_not_used": notes,
            # the inputs the model lacked: a fusion network's branches masked, a plain baseline's inputs imputed
            "modalities": inputs_used_text(model, {m: bool(row[m]) for m in ("ct", "ehr", "rna")}),
            "modalities_used": used,
            **({"card": card} if card else {})}


def rna_not_used_text(stage_model) -> str:
    """What the demo says of a stage model trained with RNA-seq: the demo takes no RNA-seq, so the model's RNA
    branch is masked whatever the patient has, and the command that predicts with it.  The one text of the stage
    section (report, ``summary.json`` ``stage.inputs_not_used``), the console (``stage note:``) and the missing
    input's fix when the stage is not computed (``stage_model`` None: the built-in sample's model)."""
    import shlex

    folder = "MODEL_DIR" if stage_model is None else shlex.quote(str(stage_model))
    return ("RNA-seq is not used: the demo takes no RNA-seq, so the model predicts without it (it was "
            "trained with RNA-seq); to predict with the patient's RNA-seq, run `lungai stage predict --model "
            f"{folder} --ehr CLINICAL_CSV --rna RNA_CSV -o OUT_DIR`.")


def stage_card_summary(meta: dict) -> dict:
    """What a locked stage model's card says (model.json): training cohort, the selection's verdict (a model
    locked WITHOUT comparison with plain baselines is a warning), the selected model's inner-CV macro-F1 (it
    chose the model; not a performance estimate - ``lungai stage cv`` estimates that) and its training patients per
    class with the rare classes named (``class_balance``: :func:`lungai.fusion.balance.class_balance_lines`, the lines
    of ``model_card.md`` and ``lungai stage predict``)."""
    from lungai.fusion.balance import class_balance_lines
    from lungai.rp.predict import synthetic_model

    sel, cohort = meta.get("selection") or {}, meta.get("training_cohort") or {}
    f1 = ((sel.get("candidates") or {}).get(meta.get("selected")) or {}).get("inner_macro_f1")
    compared = sel.get("inner_folds") is not None and len(sel.get("candidates") or {}) > 1
    return {"n": cohort.get("n_patients"), "class_counts": cohort.get("class_counts"),
            "class_balance": class_balance_lines(meta),
            "verdict": sel.get("verdict", "no comparison recorded"), "inner_macro_f1": f1,
            "compared_with_baselines": bool(compared),
            "synthetic": synthetic_model(meta),      # the stage result is then illustrative (_stage), said there
            "warnings": [] if compared else ["the model was locked WITHOUT comparison with plain baselines: run "
                                             "`lungai stage cv` to see whether a baseline does better"],
            "intended_use": "research use only; not for clinical decisions (no validated performance in the card: "
                            "`lungai stage cv` estimates it)"}


# what a user-CT run needs for each result, and how to give it
MISSING = {
    "rp_model": {"what": "an RP model trained on your cohort",
                 "how": "train one with `lungai rp train` and pass its folder with --rp-model MODEL_DIR"},
    "clinical": {"what": "the patient's clinical values",
                 "how": "pass a CSV with the patient's row (columns as in the model's training table) with "
                        "--clinical CSV (and --patient-id ID if it has several rows)"},
    "dose": {"what": "the patient's RT dose",
             "how": "pass the planning RTDOSE (DICOM file or folder, or a NIfTI/NRRD dose in Gy) with --dose"},
    "stage_model": {"what": "a stage model trained on your cohort",
                    "how": "train one with `lungai stage train` and pass its folder with --stage-model MODEL_DIR"},
}


def _not_computed(keys: list, model_features: list | None = None, extra: list | None = None,
                  radiomics_fix: str | None = None) -> dict:
    """A result section that says what is missing and how to provide it (no number); ``extra``: further
    ``{"input", "what", "how"}`` items; ``radiomics_fix``: how to give the missing radiomic features when known (the
    model's --params: :func:`lungai.rp.prepare.settings_fix_demo`)."""
    missing = [{"input": k, "what": MISSING[k]["what"], "how": MISSING[k]["how"]} for k in keys] + list(extra or [])
    if model_features:
        groups = {"clin_": "clinical", "dose_": "dose", "rad_": "radiomic"}
        for prefix, kind in groups.items():
            cols = [f for f in model_features if f.startswith(prefix)]
            if cols:
                how = {"clinical": "add these columns to the --clinical CSV",
                       "dose": "pass the RT dose with --dose",
                       "radiomic": "the demo computes the features of the --params preset (default: pyradiomics "
                                   "settings) of the tumour, right / left lung, lungs and lungs minus tumour; "
                                   "use a model trained on those, or `lungai rp predict` with your own table"}[kind]
                if kind == "radiomic" and radiomics_fix:      # computed here with other settings than the model's
                    how = f"the model was trained with other radiomics settings: {radiomics_fix}"
                missing.append({"input": kind, "what": f"the model's {kind} features {', '.join(cols[:8])}"
                                + (" ..." if len(cols) > 8 else ""), "how": how})
        other = [f for f in model_features if not f.startswith(tuple(groups))]
        if other:
            missing.append({"input": "clinical", "what": f"the model's features {', '.join(other[:8])}",
                            "how": "add these columns to the --clinical CSV"})
    text = "; ".join(f"missing {m['what']} - {m['how']}" for m in missing)
    return {"status": "not computed", "missing": missing, "message": f"not computed: {text}."}


def ct_patient_id(ct_path, series_uid: str | None = None) -> str | None:
    """The DICOM PatientID of a DICOM CT (series folder or file); None for the built-in sample, a NIfTI / NRRD /
    MHA CT or a DICOM CT without a PatientID (nothing to compare a clinical row or --patient-id with)."""
    if ct_path is None or not Path(ct_path).exists():
        return None
    from lungai.dicom.reference import dicom_ct_header

    ds = dicom_ct_header(ct_path, series_uid)
    patient = str(getattr(ds, "PatientID", "") or "").strip() if ds is not None else ""
    return patient or None


def _same_patient(typed, ct_patient: str) -> bool:
    """``typed`` (--patient-id, a clinical row's id) is the CT's PatientID, spaces around it and case ignored
    (as the Slicer panels match a typed id, lungai.scene.results.match_stage_patient)."""
    from lungai.scene.results import match_stage_patient

    return match_stage_patient(str(typed), [ct_patient]) is not None


def check_patient_id(patient_id, ct_patient: str | None) -> None:
    """--patient-id must be the DICOM CT's PatientID (when the CT carries one): another patient's clinical row
    would otherwise be reported under this CT."""
    if patient_id is not None and ct_patient is not None and not _same_patient(patient_id, ct_patient):
        raise InputError(f"--patient-id {patient_id} is not the patient of the CT: its DICOM PatientID is "
                         f"{ct_patient}",
                         f"give --patient-id {ct_patient} (the CT's patient; leave it out to take that row), or the "
                         f"CT of patient {patient_id}")


def read_clinical(path, patient_id=None, ct_patient: str | None = None, pack_years: list | None = None) -> dict:
    """The patient's row of a clinical CSV as a dict (``patient_id`` included); missing tokens as NaN.

    A never-smoker's missing pack-years are 0 (:func:`lungai.io.tables.never_smoker_pack_years`), said for this row
    only: now (``pack_years`` None), or - ``pack_years`` a list - by the model the row goes to, once its features are
    known (:func:`say_row_pack_years`; QA stagenote67: said for a stage model without a pack-years feature): the
    table's record and the row's id are appended there.

    The row is --patient-id's, else (``ct_patient``: a DICOM CT's PatientID) the CT patient's, else the only row.
    With ``ct_patient`` the row must be that patient's (ids compared ignoring surrounding spaces and case): a
    row or --patient-id of another patient is refused, naming both ids."""
    from lungai.fusion.data import load_ehr, say_pack_years_note
    from lungai.io.tables import NEVER_SMOKER_ATTR
    from lungai.scene.results import match_stage_patient

    check_patient_id(patient_id, ct_patient)
    df = load_ehr(path, say_pack_years=False)     # a never-smoker's 0 pack-years: said below for this row only
    ids = [str(i) for i in df.index]
    listed = f"IDs there: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}"
    wanted = patient_id if patient_id is not None else ct_patient
    key = match_stage_patient(str(wanted), ids) if wanted is not None else None
    if key is not None:
        row = df.loc[key]
    elif patient_id is not None or (ct_patient is not None and len(df) > 1):
        raise InputError(f"patient {wanted!r} is not in {path}"
                         + ("" if patient_id is not None else " (the DICOM PatientID of the CT)"), listed)
    elif len(df) == 1:
        row = df.iloc[0]
    else:
        raise InputError(f"{path} has {len(df)} rows and no --patient-id was given",
                         "pass --patient-id ID (the value of its ID column), or a CSV with only this patient's row")
    if ct_patient is not None and not _same_patient(row.name, ct_patient):
        raise InputError(f"the clinical row in {path} is patient {row.name}, not the patient of the CT (DICOM "
                         f"PatientID {ct_patient})",
                         f"give the clinical CSV row of {ct_patient} (its ID column), or the CT of patient {row.name}")
    if pack_years is None:
        say_pack_years_note(df, row.name)
    elif (record := df.attrs.get(NEVER_SMOKER_ATTR)) is not None:
        pack_years.append((record, row.name))
    return {"patient_id": str(row.name), **{str(k): v for k, v in row.items()}}


def say_row_pack_years(pack_years, features) -> None:
    """The never-smoker pack-years note of the --clinical row (:func:`read_clinical`'s ``pack_years`` list), said
    where ``features``, the features of a model the row goes to (the RP model's, the stage model's EHR columns),
    hold the pack-years column (a note said twice is said once on the console)."""
    from lungai.fusion.data import say_pack_years_note

    for record, patient_id in pack_years or ():
        say_pack_years_note(record, patient_id, list(features))


# every file / folder a demo run may write: a reused demo folder is emptied of those the earlier run wrote (its
# marker lists them) first, so that nothing of it (the sample's truth and illustrative models beside a patient's
# results, an old dose) stays; one of these names that the marker does not list is the user's and refused
DEMO_OUTPUTS = ("ct.nii.gz", "labels.nii.gz", "meta.json", "tumor_truth.nii.gz", "lungs.nii.gz", "tumor.nii.gz",
                "probability.nii.gz", "uncertainty.nii.gz", "mutual_information.nii.gz", "result.json",
                "radiomics_long.csv", "radiomics_wide.csv", "radiomics_settings.csv", "dose.nii.gz", "dose.csv",
                "rp_model", "rp_training_cohort.csv", "rp_prediction.csv", "stage_cohort", "stage_probabilities.csv",
                "missing_inputs.csv", "scene.mrb", "report.html", "summary.json")


# the model folders of the demo's options: the option, the kind of model it takes and the command that writes it
MODEL_OPTIONS = (("--model", "segmentation model", "lungai train-seg"),
                 ("--rp-model", "RP model", "lungai rp train"),
                 ("--stage-model", "stage model", "lungai stage train"))


def _model_kind(folder) -> tuple | None:
    """(option, kind, command, marking file) of the model ``folder`` holds - by the file its loader reads first
    (model.json, model_card.json, stage_model.json) - else None."""
    from lungai.fusion.balance import META       # the light modules of these names (no torch, no scikit-learn)
    from lungai.rp.card import CARD_FILE
    from lungai.seg.settings import MODEL_JSON

    for entry, name in zip(MODEL_OPTIONS, (MODEL_JSON, CARD_FILE, META)):
        if (Path(folder) / name).is_file():
            return (*entry, name)
    return None


def _model_option_error(option: str, folder, err: InputError) -> InputError:
    """``err`` of loading ``folder`` given with ``option``, naming the option, and - a model of another kind (an RP
    model given as --stage-model) - the option that takes it."""
    entry = next(e for e in MODEL_OPTIONS if e[0] == option)
    other = _model_kind(folder)
    if other is not None and other[0] != option:
        def a(what):
            return ("an " if what[0] in "aeiouR" else "a ") + what

        return InputError(f"{option} {folder} is {a(other[1])} folder (it holds {other[3]}), not {a(entry[1])}",
                          f"give it with {other[0]}; for {option} give the folder written by `{entry[2]}`")
    return InputError(f"{option} {folder}: {err.problem}", err.fix or f"give the folder written by `{entry[2]}`")


def check_model_options(model_dir=None, rp_model=None, stage_model=None, light: bool = False,
                        progress=None) -> dict:
    """The demo's model folders loaded with their allow-listed loaders before any work (QA stagedemo59: a wrong
    --stage-model - an RP model's folder, an empty one - was only checked to exist, and refused after the
    segmentation, radiomics and dose, ending the demo with no report): ``{"seg_dir", "seg", "rp", "stage"}`` (the
    segmentation model's folder and model, the loaded RP model's (bundle, card) and stage model or None).  A folder that is not a usable model
    of its option is an :class:`~lungai.errors.InputError` naming the option, the folder and the fix.

    ``light``: only the file each loader reads first (model.json, model_card.json, stage_model.json) is read and
    checked, no heavy import (torch, scikit-learn), nothing loaded: the refusals of a missing, empty or other kind's
    folder come with the options' cheap checks (QA demo67: ``--model`` of a missing folder after 8 s).
    ``progress``: a step counted as each model is loaded."""
    from lungai.seg.resources import resolve_model_dir

    if light:
        from lungai.rp.card import read_card
        from lungai.seg.model_meta import check_complete, read_meta

        loaders = (lambda folder: check_complete(folder, read_meta(folder)), read_card, _stage_meta)
    else:
        from lungai.seg.model_io import load_model as load_seg

        loaders = (load_seg, _load_rp, _load_stage)
    mdir = resolve_model_dir(model_dir)
    loaded: dict = {}
    for (option, folder), load in zip((("--model", mdir), ("--rp-model", rp_model), ("--stage-model", stage_model)),
                                      loaders):
        if folder is None:
            continue
        if progress is not None and option != "--model":
            progress.update(1, {"--rp-model": "RP model", "--stage-model": "stage model"}[option])
        try:
            loaded[option] = load(folder)
        except InputError as err:
            if option == "--model" and not model_dir:    # the default model: its own error (an installation's)
                raise
            raise _model_option_error(option, folder, err) from None
    if progress is not None:
        progress.update(1)
    return {"seg_dir": mdir, "seg": loaded["--model"], "rp": loaded.get("--rp-model"),
            "stage": loaded.get("--stage-model")}


def _stage_meta(folder) -> None:
    """The first check of :func:`lungai.fusion.model_io.load` (a locked stage model's folder holds its
    stage_model.json), without its imports (torch)."""
    from lungai.fusion.balance import check_stage_model_folder

    check_stage_model_folder(folder)


def _load_rp(folder):
    from lungai.rp.model_io import load_model

    return load_model(folder)


def _load_stage(folder):
    from lungai.fusion import model_io

    return model_io.load(folder)


def _dose_read_once(run):
    """``run`` in a :func:`lungai.dose.read.dose_read_once` block: a ``--dose`` folder's RTDOSEs are found, chosen
    and their headers read once - for the check against the CT and for reading the dose."""
    import functools

    @functools.wraps(run)
    def wrapped(*args, **kwargs):
        from lungai.dose.read import dose_read_once

        with dose_read_once():
            return run(*args, **kwargs)
    return wrapped


@_dose_read_once
def placement_notes(ct: sitk.Image, seed_lps=None, roi_lps=None, progress=None) -> list:
    """Where a seed point (or, without one, an ROI box) given on ``ct`` lies, said before the demo's run (a warning
    each, the run goes on): in aerated lung - naming the point / box read as Slicer's RAS (x and y negated) and the
    option to give when that reading lies in soft tissue - or far from the lungs
    (:func:`lungai.seg.preprocess.aerated_seed_note`, :func:`~lungai.seg.preprocess.far_seed_note`: the notes and
    review reasons the tumour's segmentation gives its result, unchanged).  QA demofollow67: LUNG1-003's GTV-1 given
    in Slicer's RAS order, ``--seed-point=-47.4,2.5,-127.2`` (aerated lung, -686 HU; as RAS the tumour, 47 HU), or
    ``--roi=0,0,0,1,1,1`` (91 mm from the lungs) ran the whole demo (145 s) before its result said so.  The lungs
    are found on a coarse grid (1-3 s), under ``progress`` (:func:`lungai.progress.waiting`)."""
    from lungai.seg import preprocess as pp

    if seed_lps is None and roi_lps is None:
        return []
    option = "--seed-point" if seed_lps is not None else "--roi"
    given = [float(v) for v in (seed_lps if seed_lps is not None else roi_lps)]

    def value(numbers) -> str:
        return pp._fmt_option([numbers[i:i + 3] for i in range(0, len(numbers), 3)])
    notes = []
    aerated = pp.aerated_seed_note(ct, seed_lps, None if seed_lps is not None else roi_lps)
    if aerated:
        if "read as RAS" in aerated:      # the reading in soft tissue: the numbers to give for it
            ras = [-v if k % 3 < 2 else v for k, v in enumerate(given)]
            aerated += (f" - if so, stop this run (Ctrl+C) and give {option}={value(ras)} (LPS: negate x and y of "
                        "Slicer's RAS coordinates)")
        notes.append(aerated)
    far = waiting(progress, "where the lungs are", pp.far_seed_note, ct, seed_lps,
                  None if seed_lps is not None else roi_lps)
    if far:
        notes.append(far)
    return [f"{option}={value(given)}: {n}; the demo goes on with it as given (its result will be flagged "
            "for review)" for n in notes]


def _write_scene(out: Path, dose_name: str) -> Path:
    """``scene.mrb`` of the demo's files in ``out`` (Slicer's MRML, slicer-core: imported here, 1-15 s)."""
    from lungai.scene.demo import save_demo_scene

    return save_demo_scene(out, out / "scene.mrb", dose_name=dose_name)


def run_demo(out_dir, ct_path=None, small: bool = False, model_dir=None, seed_lps=None, clinical=None,
             dose=None, rp_model=None, stage_model=None, patient_id=None,
             radiomics_params: str = "default", series_uid: str | None = None, dose_unit: str = "Gy",
             rtstruct=None, rtstruct_lungs: str | list | None = None, structure_map=None, allow_gaps: bool = False,
             max_dose_gy: float | None = None, roi_lps=None, started: float | None = None,
             scene_coordinates: bool = False) -> dict:
    """Run every step; returns the summary (also written as ``summary.json``).

    ``radiomics_params``: the radiomics preset (``default``, ``ibsi-a`` .. ``ibsi-e``) or YAML file.
    ``series_uid``: the series of ``ct_path`` when that DICOM folder holds several.
    ``dose_unit``: the unit of a NIfTI / NRRD / MHA ``dose`` (Gy or cGy; an RTDOSE says its own);
    ``max_dose_gy``: the largest dose ``dose`` may hold, an RTDOSE or such an image (default 150 Gy,
    :func:`lungai.dose.read_dose`).
    The dose is read and checked, and the RTSTRUCT's structures resolved, right after the CT is read: before
    anything is computed or written.
    ``rtstruct``: the plan's DICOM RTSTRUCT: the dose metrics use its lungs and GTV (found by role, as
    ``lungai dose-features --rtstruct``; ``rtstruct_lungs`` a structure name / role:ROLE for the lungs, or a list
    of them (their union),
    ``structure_map`` / ``allow_gaps`` as there) instead of the automatic masks.

    The tumour is segmented around a seed point (LPS mm): ``seed_lps``, or in a box ``roi_lps`` (x0, y0, z0, x1, y1,
    z1 LPS mm, as ``lungai segment --roi``), or on the sample the tumour's position (as a user's click); with none,
    in automatic mode (whole lungs).  ``scene_coordinates``: those numbers were converted from a Slicer markups file
    by lungai itself (``lungai demo --seed-point F.mrk.json``): no RAS / voxel-index question
    (:func:`lungai.seg.infer.segment_tumour`); nor of the sample's own seed point (lungai's, never typed).

    On a user's CT the dose, RP risk and stage are computed only from what is given (``dose``,
    ``clinical`` CSV (+ ``patient_id``), ``rp_model``, ``stage_model``); a missing input leaves its
    section without a number, saying what is missing and how to give it.  The built-in sample uses
    illustrative models, an example clinical profile and a synthetic dose for what is not given,
    labelled as illustrative everywhere.

    ``started``: when the command started (``time.perf_counter()``; ``lungai demo``: its start-up and option checks
    included); the total run time reported counts from it (default: from this call).
    """
    # the run time reported is the time the user waits, reading the CT included - from the command's start (QA
    # demofollow67: "total 75 s" after 80.7 s, the command's imports and checks before run_demo left out)
    start = time.perf_counter() if started is None else float(started)
    from lungai.io.outputs import check_output_owner, claimed_output_folder, prepare_output_folder

    out = Path(out_dir)
    # .lungai-demo marks a folder the demo made (it may be reused, even after a failure); an input in a result of
    # the earlier run (removed before this run writes) is refused
    inputs = [ct_path, clinical, dose, rp_model, stage_model, radiomics_params, rtstruct]
    check_output_owner(out, "demo", DEMO_OUTPUTS, inputs, new_or_own=True)
    from lungai.dicom.reference import one_series_scan

    with one_series_scan():     # a DICOM folder's series found once for the two checks
        if ct_path is not None:     # a missing / unreadable --ct refused before the heavy imports (QA demo67: 5-10 s)
            _check_ct_path(ct_path, series_uid)
        # a --patient-id / clinical row of another patient than the DICOM CT's is refused before any work
        ct_patient = _ct_patient(ct_path, series_uid, patient_id)
    pack_years = []     # a never-smoker's 0 pack-years: said by the model the row goes to, if it uses them
    clinical_row = read_clinical(clinical, patient_id, ct_patient, pack_years) if clinical is not None else None
    for path, what in ((rp_model, "--rp-model"), (stage_model, "--stage-model"), (dose, "--dose")):
        if path is not None and not Path(path).exists():
            raise InputError(f"{what} {path} does not exist", f"check the {what} path")
    # the options' cheap checks before the pipeline's imports and the models' load (QA newfollow66: --rtstruct
    # without --dose was refused ~25 s later, after torch / MONAI were imported and check_model_options)
    if seed_lps is not None and roi_lps is not None:
        raise InputError("a seed point and an ROI were both given", "give one of them: --seed-point or --roi")
    if rtstruct is not None:
        if ct_path is None or dose is None:     # it is used for the dose metrics only (QA: with --ct given and no
            # RTDOSE exported, the fix said "give --ct ... and --dose", which such a patient cannot follow)
            raise InputError("--rtstruct gives the plan's lungs and GTV for the dose metrics of --dose on --ct"
                             + (": no --ct was given (the built-in sample has no RTSTRUCT)" if ct_path is None else
                                ": no --dose was given, so it would not be used"),
                             ("give --ct (the planning CT) and --dose (its RTDOSE) with --rtstruct, or leave "
                              "--rtstruct out" if ct_path is None else
                              "give --dose (the plan's RTDOSE) with --rtstruct, or leave --rtstruct out (the tumour "
                              "radiomics use the automatic tumour either way); the features of the plan's GTV: "
                              "lungai radiomics --image CT --rtstruct RS --structure role:gtv_primary"))
    # the model folders' first files (model.json, model_card.json, stage_model.json) checked as cheaply (QA demo67:
    # --model of a missing folder was refused after 8 s, once torch / MONAI were imported)
    check_model_options(model_dir, rp_model, stage_model, light=True)
    sample = ct_path is None
    if rtstruct is not None:
        from lungai.dicom.rtstruct import rtstruct_option

        rtstruct, _ = rtstruct_option(rtstruct, ct_path, series_uid,   # a folder: its RTSTRUCT, said (stderr)
                                      structures=[rtstruct_lungs] if isinstance(rtstruct_lungs, str)
                                      else rtstruct_lungs or [])
    dose_note = None
    if dose is not None and ct_path is not None:
        from lungai.dose import check_dose_matches_ct

        # before any work: another patient's RTDOSE (or RTSTRUCT) is refused (a note when nothing can be compared)
        dose_note = check_dose_matches_ct(dose, ct_path, series_uid, rtstruct=rtstruct)
    # the CT is read and the seed point checked before anything is written (a bad seed leaves no files); under a bar
    # of its own, the demo's steps beginning once every input is checked (QA progwarn63: making the built-in sample
    # CT, or reading a whole DICOM CT, was 10-25 s without a word before the first bar)
    from lungai.synthetic.phantom import PHANTOM_STEPS

    with task("demo: reading the CT" if ct_path is not None else "demo: making the built-in sample CT",
              1 if ct_path is not None else PHANTOM_STEPS) as reading:     # the sample's own steps
        # what is being done said at once, then its seconds every ~2 s until its first step (QA demo68: the sample's
        # anatomy, 7 s without a line in a log)
        reading.update(0, f"reading {Path(ct_path).name}" if ct_path is not None else "building the anatomy")
        with timer_running(reading):
            ct, truth, input_info, phantom = _read_input(ct_path, small, series_uid,
                                                         progress=reading if ct_path is None else None)
        if ct_path is not None:
            reading.update(1)
    # the checks segment_tumour makes of a seed point / an ROI (off the image, in the air; an ROI with no extent),
    # before the heavy imports (QA demo67: a seed off the CT refused after 30 s)
    from lungai.seg.config import SegConfig
    from lungai.seg.preprocess import check_placement

    check_placement(ct, seed_lps, roi_lps, SegConfig().roi_margin_mm)
    if seed_lps is not None or roi_lps is not None:     # where it lies: said now, not only in the result ~2 min later
        with task("demo: checking the seed point" if seed_lps is not None else "demo: checking the ROI", 1) as where:
            notes = placement_notes(ct, seed_lps, roi_lps, progress=where)
            where.update(1)
        say_notes(notes)
    # the pipeline's modules (torch / MONAI: 10-20 s) imported once the options' own checks passed, on a bar (QA
    # demo67: the first bar came 6-11 s after the command, after these imports and the models' load)
    given_models = 1 + (rp_model is not None) + (stage_model is not None)
    with task("demo: loading the models", 1 + given_models) as loading:
        loading.update(0, "importing torch / MONAI")
        # its seconds said every ~2 s while it runs (QA demo68: 6.5-10.6 s without a line in a log), as lungai segment
        with timer_running(loading):
            from lungai.lungs import segment_lungs
            from lungai.lungs.segment import LUNG_STEPS
            from lungai.report import figures, write_report
            from lungai.report.html import features_step_text
            from lungai.seg.choice import add_model_notes, model_meta
            from lungai.seg.model_meta import model_identity
            from lungai.seg.infer import segment_tumour
        loading.update(1, "segmentation model")
        # each model folder (--model, --rp-model, --stage-model) loaded now: a wrong one fails before any work
        models = check_model_options(model_dir, rp_model, stage_model, progress=loading)
    # the dose (readable, plausible) and the RTSTRUCT's structures (names, --structure-map) before any work: a
    # wrong one fails now, not after segmentation and radiomics
    given_dose = rt = None
    recorded = [dose_note] if dose_note else []     # dose.csv's rtdose_notes (_dose): an RTDOSE not checked, EFFECTIVE
    if dose is not None:
        from lungai.dose import read_dose

        folder_notes: list = []     # --dose FOLDER: which of its RTDOSEs make the dose (the plan's, or beams summed)
        from lungai.dose.read import dose_reference

        given_dose = read_dose(dose, unit=dose_unit, max_gy=max_dose_gy, notes=folder_notes,
                               reference=dose_reference(ct_path, series_uid, rtstruct) if ct_path else None,
                               record=recorded)
        dose_note = "; ".join(n for n in (*folder_notes, dose_note) if n) or None
    if rtstruct is not None:     # the plan's contours for the dose metrics (lungs and GTV by role)
        from lungai.dicom.masks import rtstruct_dose_masks

        # an RTSTRUCT that could not be checked against a non-DICOM CT (its note) is a note on the dose metrics made
        # from its contours: recorded with the dose's notes (summary.json, the report's dose section, the console)
        rt_notes: list = []
        rt = _noting_checks(lambda: rtstruct_dose_masks(rtstruct, ct, rtstruct_lungs, None, structure_map,
                                                        allow_gaps), rt_notes)
        if rt["gtv"] is not None:   # the GTV dose of every GTV (role:gtv, their union): said as dose-features says it,
            # naming the command that takes the primary GTV alone (QA cohortdose69: LUNG1-003's GTV-1 + gtv-3 + gtv-2)
            from lungai.cli.dose import DOSE_FEATURES_GTV, gtv_structures, gtv_union_note

            union = gtv_union_note(gtv_structures(rtstruct, None, structure_map)[0], structure_map,
                                   via=DOSE_FEATURES_GTV, rtstruct=rtstruct)
            if union:
                rt_notes.append(union)
        dose_note = "; ".join(n for n in (dose_note, *rt_notes) if n) or None
    case = demo_case_id(ct_path, patient_id, series_uid)
    prepare_output_folder(out, inputs=[p for p in (ct_path, dose, rtstruct) if p], owner="demo")   # (their folders)
    timings: dict = {}
    summary: dict = {"case": case, "version": __version__,
                     "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}

    def lap(name, t0):
        timings[name] = round(time.perf_counter() - t0, 2)

    # a reused demo folder must not show an earlier run's results: they are removed (only those its marker lists)
    with claimed_output_folder(out, "demo", DEMO_OUTPUTS, inputs, new_or_own=True) as claim, \
            task("demo", len(STEPS)) as bar:
        def step(text):     # each step's outputs are recorded in the marker as it ends: a run killed later (SIGTERM,
            claim.record()  # SIGKILL: no finally runs) leaves a marker listing them, and the re-run replaces them
            bar.update(1, text)

        t0 = time.perf_counter()
        summary["input"] = input_info
        # a long write (LUNG1-003's ct.nii.gz: 5-8 s) said with its seconds (QA demo68: no line through it); a Ctrl-C
        # waits for the writer's own clean-up (its temporary file beside ct.nii.gz)
        waiting(bar, "writing the CT (ct.nii.gz)", _write_input, out, ct_path, ct, phantom, finish_on_stop=True)
        lap("input", t0)
        step("CT ready")

        t0 = time.perf_counter()
        # its steps (air, airways, right / left split, each lung filled) as messages on the demo's bar, as the tumour's
        lungs_result = segment_lungs(ct, progress=SubProgress(bar, "lungs:", total=LUNG_STEPS))
        write_image(lungs_result.labels, out / "lungs.nii.gz")
        summary["lungs"] = {"right_lung": float(lungs_result.volumes_ml["right_lung"]),
                            "left_lung": float(lungs_result.volumes_ml["left_lung"]), "notes": lungs_result.notes,
                            "cut": lungs_result.cut, "warnings": lungs_result.warnings}
        lap("lungs", t0)
        step("lungs")

        t0 = time.perf_counter()
        mdir, model = models["seg_dir"], models["seg"]
        sample_seed = summary["input"].pop("seed_lps")
        placed = seed_lps is not None or roi_lps is not None
        seed_point = seed_lps if placed else sample_seed
        # its steps and network runs as messages on the demo's bar (its step: "tumour", below; before, the bar stood
        # on "lungs" through the whole segmentation).  The built-in sample's seed (its planted tumour's centre, LPS) is
        # lungai's own, as numbers converted from a scene: never asked whether it was RAS or voxel indices (QA
        # synthbar72: it was, as numbers typed by hand)
        seg = segment_tumour(ct, model, seed_lps=seed_point, roi_lps=roi_lps, seed=0,
                             progress=SubProgress(bar, "tumour:"),
                             scene_coordinates=scene_coordinates if placed else sample_seed is not None)
        # as lungai segment: a better-suited model's note, the confidence caveat, a patient the model trained on
        add_model_notes(mdir, seg.info, patients=[case, ct_patient] if ct_path is not None else ())
        if rt is not None and rt["gtv"] is not None:    # the plan's GTV: how the automatic tumour agrees with it
            summary["rtstruct_gtv"] = gtv_agreement(seg.tumour, rt["gtv"], rt.get("gtv_source"))
            if summary["rtstruct_gtv"]["note"]:
                seg.info["notes"].append(summary["rtstruct_gtv"]["note"])
        seg.info["model"] = str(mdir)              # as lungai segment's result.json (dicom-export's SR names it)
        seg.info["model_identity"] = model_identity(mdir)
        from lungai.seg.uncertainty import (ENTROPY_MEANING, ENTROPY_UNIT, MI_MEANING, PROBABILITY_MEANING,
                                            PROBABILITY_UNIT, describe)

        from lungai.dicom.export import result_record

        def write_tumour_files() -> None:
            write_image(seg.tumour, out / "tumor.nii.gz")
            # the maps' descriptions given in place, not on a copy of each (as lungai segment writes them)
            for img, name, meaning, unit in ((seg.probability, "probability", PROBABILITY_MEANING, PROBABILITY_UNIT),
                                             (seg.entropy, "uncertainty", ENTROPY_MEANING, ENTROPY_UNIT),
                                             (seg.mutual_information, "mutual_information", MI_MEANING, ENTROPY_UNIT)):
                if img is not None:
                    with describe(img, meaning, unit) as described_map:
                        write_image(described_map, out / f"{name}.nii.gz")
            # its CT and tumour voxels: dicom-export checks them
            _json(out / "result.json", {**seg.info, **result_record(ct_path, series_uid, seg.tumour)})

        # a CT's maps: 1-4 s of writes, said with their seconds (QA demo68: no line through them)
        waiting(bar, "tumour: writing tumor.nii.gz, its maps and result.json", write_tumour_files,
                finish_on_stop=True)
        summary["segmentation"] = seg.info
        meta = model_meta(model)
        from lungai.scene.results import model_text
        from lungai.seg.choice import training_text

        # the model named and described from its own model.json (the methods, limitations and report say them)
        summary["seg_model"] = {"dir": str(mdir), "name": model_text(seg.info), "training": training_text(model),
                                "validation_r": _fmt_r(meta, seg.info.get("method") or "ensemble")}
        if truth is not None:
            write_image(truth, out / "tumor_truth.nii.gz")
            summary["truth_dice"] = round(dice(seg.tumour, truth), 4)
        lap("tumour", t0)
        step(tumour_step_text(seg.info))

        t0 = time.perf_counter()
        wide, summary["radiomics"] = _radiomics(out, ct, seg.tumour, lungs_result.labels, radiomics_params,
                                               case, progress=bar)
        lap("radiomics", t0)
        step(features_step_text(summary["radiomics"]))

        t0 = time.perf_counter()
        dose_lungs, dose_gtv = lungs_result.labels, seg.tumour
        if rt is not None:           # the RTSTRUCT's lungs and GTV, resolved before any work
            dose_lungs = rt["lungs"]
            dose_gtv = rt["gtv"] if rt["gtv"] is not None else sitk.Image(ct.GetSize(), sitk.sitkUInt8)
            dose_gtv.CopyInformation(ct)
        masks = dose_masks(seg.info, rt, bool(sitk.GetArrayViewFromImage(seg.tumour).any()))
        dose_img, summary["dose"], summary["dose_source"] = _dose(out, ct, dose_gtv, dose_lungs, dose,
                                                                  sample, case, dose_unit, max_dose_gy, given_dose,
                                                                  masks["masks"], recorded, progress=bar)
        if dose_note:
            summary["dose_note"] = dose_note[0].upper() + dose_note[1:] + "."
            summary["dose_source"] += " " + summary["dose_note"]
        summary["dose_status"] = "not computed" if dose_img is None else "synthetic" if dose is None else "computed"
        summary["dose_masks"] = masks
        lap("dose", t0)
        step("no dose given" if dose_img is None else f"MLD {summary['dose']['dose_mld_gy']:.1f} Gy")

        t0 = time.perf_counter()
        from lungai.seg.resources import result_confidence_caveat

        summary["rp"] = _rp(out, wide, summary["dose"], dose is not None, clinical_row, rp_model, sample,
                            case, {"caveat": result_confidence_caveat(seg.info) or "",
                                   "needs_review": bool(seg.info.get("needs_review")),
                                   "dose": masks["tumour"] == "automatic"}, models["rp"], pack_years)
        lap("rp", t0)
        step("RP risk not computed" if "risk" not in summary["rp"] else
             f"RP risk ({summary['rp']['endpoint_short']}) {summary['rp']['risk']:.0%}")

        t0 = time.perf_counter()
        summary["stage"] = _stage(out, ct, seg.tumour, clinical_row, stage_model, sample, case, models["stage"],
                                  progress=bar, pack_years=pack_years)
        lap("stage", t0)
        step(f"stage {summary['stage'].get('predicted', 'not computed')}")
        summary["inputs"] = {"ct": _str(ct_path) if ct_path else "built-in sample", "clinical": _str(clinical),
                             "patient_id": clinical_row["patient_id"] if clinical_row else None,
                             "dose": _str(dose), "rp_model": _str(rp_model), "stage_model": _str(stage_model),
                             "rtstruct": _str(rtstruct)}
        if dose is not None:    # how the dose was read: a cGy image converted to Gy, the plausibility cap
            from lungai.dose.read import MAX_PLAUSIBLE_GY
            summary["inputs"].update(dose_unit=dose_unit,
                                     max_dose_gy=float(max_dose_gy if max_dose_gy is not None else MAX_PLAUSIBLE_GY))
        summary["illustrative"] = [k for k in ("rp", "stage") if summary[k]["status"] == "illustrative"] + \
            (["dose"] if summary["dose_status"] == "synthetic" else [])
        # ... and an input the RP model refused (_rp: its reason and fix), in the scene's "Missing inputs" table too
        missing = [m for k in ("rp", "stage") for m in summary[k].get("missing", []) + [summary[k].get("refused")] if m]
        if summary["dose"] is None:
            missing.insert(0, {"input": "dose", "what": MISSING["dose"]["what"], "how": MISSING["dose"]["how"]})
        if missing:
            _to_csv(pd.DataFrame(missing).drop_duplicates(), out / "missing_inputs.csv", index=False)

        t0 = time.perf_counter()
        # said: seconds of figures and the scene after the stage's step, each figure counted and a long one's seconds
        # said as it is drawn (QA demofollow67: in a log "report figures" stood 5.6 s, "writing scene.mrb" ~11 s)
        n_figures = 1 + (dose_img is not None) + ("risk" in summary["rp"]) + ("probabilities" in summary["stage"])
        drawing = SubProgress(bar, "report figures", total=n_figures)
        summary["methods"], summary["limitations"] = _methods(summary)
        lung_arr = sitk.GetArrayViewFromImage(dose_lungs) > 0
        gtv = sitk.GetArrayViewFromImage(dose_gtv) > 0
        figs = {
            "slices": waiting(drawing, "tumour slices", figures.tumour_slices, ct, seg.tumour, seg.entropy,
                              lungs_result.labels, truth),
        }
        drawing.update(1, "tumour slices")
        if dose_img is not None:
            figs["dvh"] = waiting(drawing, "DVH", figures.dvh, dose_img,
                                  {summary["dose_masks"]["lungs_label"]: lung_arr & ~gtv,
                                   summary["dose_masks"]["gtv_label"]: gtv})
            drawing.update(1, "DVH")
        if "risk" in summary["rp"]:
            figs["rp"] = figures.contributions([f"{t['label']} = {t['value']}" for t in summary["rp"]["top_features"]],
                                               [t["contribution"] for t in summary["rp"]["top_features"]],
                                               "RP risk: top contributions")
            drawing.update(1, "RP contributions")
        if "probabilities" in summary["stage"]:
            from lungai.report.html import predicted_stage_text

            figs["stage"] = figures.probabilities(
                summary["stage"]["classes"], summary["stage"]["probabilities"],
                f"stage probabilities - predicted {predicted_stage_text(summary['stage'])}")
            drawing.update(1, "stage probabilities")
        lap("report", t0)

        t0 = time.perf_counter()
        # its seconds said as it runs, Slicer's MRML imported included (QA demofollow67: 14 s without a line in a log)
        waiting(bar, "writing scene.mrb", _write_scene, out,
                "Synthetic dose (Gy)" if summary["dose_status"] == "synthetic" else "Dose (Gy)", finish_on_stop=True)
        lap("scene", t0)
        step("scene.mrb")
        # one total, taken once: the report and summary.json state the same run time (the page itself is
        # written last, in milliseconds)
        timings["total_s"] = round(time.perf_counter() - start, 1)
        summary["timings"] = timings
        write_report(out / "report.html", summary, figs)
        step("report.html")
        _json(out / "summary.json", summary)
    return summary


def _noting_checks(read, notes: list):
    """``read()``, the input checks it could not make (:class:`lungai.errors.InputCheckNote` warnings: an RTSTRUCT
    read onto a NIfTI / NRRD / MHA CT, :func:`lungai.dicom.rtstruct.unchecked_ct_note`) and the structures read with
    gaps between slices (``--allow-gaps``, :class:`lungai.dicom.rtstruct.GapsAllowedNote`) or with a contour written
    twice on one slice (:class:`lungai.dicom.rtstruct.RepeatedContourNote`) or with open contours left out
    (:class:`lungai.dicom.rtstruct.OpenContourNote`) appended to ``notes`` - to be recorded with
    the results they concern - instead of warned; other warnings are passed on as they came."""
    from lungai.dicom.rtstruct import GapsAllowedNote, OpenContourNote, RepeatedContourNote
    from lungai.errors import InputCheckNote, warnings_as_notes

    with warnings_as_notes((InputCheckNote, GapsAllowedNote, RepeatedContourNote, OpenContourNote), notes):
        return read()


def demo_case_id(ct_path, patient_id=None, series_uid: str | None = None) -> str:
    """The case name of a demo run: a DICOM CT's PatientID (a --patient-id of another patient is refused before,
    :func:`check_patient_id`); else --patient-id if given, else the CT's file name stem (lungai.io.case_id);
    ``demo`` for the built-in sample."""
    ct_patient = ct_patient_id(ct_path, series_uid)
    if ct_patient is not None:
        return ct_patient
    if patient_id is not None:
        return str(patient_id)
    if ct_path is None:
        return "demo"
    from lungai.io import input_case_id

    return input_case_id(ct_path, series_uid)


def _check_ct_path(ct_path, series_uid) -> None:
    """The cheap checks of ``--ct`` that reading it makes first, before the demo's heavy imports: it exists, a file
    lungai reads (:func:`lungai.io.read.check_image_path`), a folder holding a DICOM CT series (found once inside
    :func:`lungai.dicom.reference.one_series_scan`, as :func:`_ct_patient` looks for its PatientID)."""
    from lungai.io.read import check_image_path
    from lungai.paths import check_not_ct_object

    folder = check_image_path(ct_path, series_uid)
    check_not_ct_object(folder)         # a SEG / RTSTRUCT / RTDOSE file said as what it is (QA dicom71: after 6 s)
    if folder.is_dir():
        from lungai.dicom.reference import _series_files

        _series_files(folder, series_uid)


def _ct_patient(ct_path, series_uid, patient_id) -> str | None:
    """The DICOM CT's PatientID, --patient-id checked against it (also when no --clinical is given)."""
    ct_patient = ct_patient_id(ct_path, series_uid)
    check_patient_id(patient_id, ct_patient)
    return ct_patient


def _str(path) -> str | None:
    """An input's path as summary.json records it: absolute (as the model's folder), ``..`` folded but links kept,
    so that it leads to the input from anywhere - a path as typed is relative to the shell's folder of the run."""
    return None if path is None else os.path.abspath(str(path))


def _fmt_r(meta: dict, method: str = "ensemble") -> str:
    """Validation Pearson r(confidence, Dice) of the method that ran (``ensemble`` or ``mc-dropout``: a one-member
    model's confidence is MC dropout's, not the ensemble's), as recorded in model.json."""
    validation = meta.get("validation") if isinstance(meta, dict) else None      # a user's model.json: any type
    ensemble = validation.get(method) if isinstance(validation, dict) else None
    r = ensemble.get("pearson_r_confidence_dice_cv") if isinstance(ensemble, dict) else None
    return f"{r:.2f}" if isinstance(r, (int, float)) and np.isfinite(r) else "not recorded"


def uncertainty_method_text(seg: dict) -> str:
    """The networks of a segmentation and how their disagreement was measured, from its result (``method``,
    ``members``, ``mc_passes``, ``architecture``): "a deep ensemble of 3 MONAI unet networks", or for MC dropout
    (a one-member model) "one MONAI unet network with Monte Carlo dropout (8 passes)" - not "an ensemble of 1"."""
    arch = f"MONAI {seg['architecture']}" if seg.get("architecture") else "MONAI"
    if seg.get("method") == "mc-dropout":
        passes = f" ({int(seg['mc_passes'])} passes)" if seg.get("mc_passes") else ""
        return f"one {arch} network with Monte Carlo dropout{passes}"
    return f"a deep ensemble of {seg.get('members', '?')} {arch} networks"


def _methods(s: dict) -> tuple[list[str], list[str]]:
    model = s.get("seg_model") or {}
    name, training = model.get("name") or "not recorded", model.get("training") or "training data not recorded"
    methods = [
        "Lungs: classical segmentation without a trained model (HU threshold, outside air and airways removed, "
        "vessels and pleural tumours kept) - lungai.lungs.",
        f"Tumour: model {name}, {uncertainty_method_text(s['segmentation'])} ({training}); voxel uncertainty = "
        "predictive entropy; case confidence " + ("calibrated to predict the Dice on validation cases"
                                                 if s["segmentation"].get("calibrated", True) else
                                                 "not calibrated (the model has no calibration for this method)")
        + " - lungai.seg.",
        f"Radiomics: {s['radiomics']['params']}. IBSI-1-compliant values come only from the ibsi-a..e presets "
        "(lungai radiomics --params ibsi-c; verified against the IBSI-1 reference, docs/radiomics.md); the default "
        "preset gives pyradiomics values - lungai.radiomics.",
    ]
    # the dose, RP and stage methods only for a step this run computed (a step not computed says so in Limitations)
    if s.get("dose") is not None:
        methods.append("Dose: mean lung dose, V5/V13/V20/V30 and D-metrics of the lungs minus the tumour ("
                       + ("the RTSTRUCT's contours given with --rtstruct"
                          if (s.get("dose_masks") or {}).get("lungs") == "rtstruct"
                          else "the automatic masks of this run") + ") - lungai.dose.")
    if "risk" in (s.get("rp") or {}):
        methods.append("RP risk: scikit-learn logistic regression / random forest with imputation, scaling and "
                       "feature selection inside nested cross-validation; Shapley contributions - lungai.rp.")
    if "probabilities" in (s.get("stage") or {}):
        if (s.get("inputs") or {}).get("stage_model"):     # --stage-model: a locked model, as its card records
            methods.append("Stage: a locked lungai stage model - intermediate fusion of CT (3D CNN), RNA-seq (graph "
                           "attention network) and EHR (MLP), or the plain scikit-learn baseline that beat it in "
                           "nested cross-validation - lungai.fusion.")
        else:                                               # the built-in sample: trained in this run, not locked
            methods.append("Stage: an illustrative fusion network trained in this run on a small synthetic cohort "
                           "(intermediate fusion of CT (3D CNN), RNA-seq (graph attention network) and EHR (MLP); "
                           "not compared with baselines, not a locked model) - lungai.fusion.")
    limitations = ["Research use only; not validated for clinical use."]
    sample = (s.get("inputs") or {}).get("ct", "built-in sample") == "built-in sample"
    if s.get("illustrative") and not sample:      # --rp-model / --stage-model of a synthetic cohort (card says so)
        given = [{"rp": ("the RP model given with --rp-model", "risk", "lungai rp train"),
                  "stage": ("the stage model given with --stage-model", "stage", "lungai stage train")}[k]
                 for k in s["illustrative"] if k in ("rp", "stage")]
        several = len(given) > 1
        limitations.append("ILLUSTRATIVE: " + " and ".join(g[0] for g in given)
                           + f" {'were' if several else 'was'} trained on a synthetic cohort (the model card"
                           f"{'s say' if several else ' says'} so), not on patients: "
                           + " and ".join(f"its {g[1]}" for g in given)
                           + f" {'are' if several else 'is'} not a result for this patient; train "
                           + ("the models" if several else "the model") + " on your own cohort ("
                           + ", ".join(g[2] for g in given) + ") for one.")
    elif s.get("illustrative"):
        limitations.append("ILLUSTRATIVE results on the built-in sample: " + ", ".join(
            {"rp": "the RP model (trained on a synthetic cohort; example clinical profile)",
             "stage": "the stage model (trained on a synthetic cohort)",
             "dose": "the dose (synthetic)"}[k] for k in s["illustrative"])
            + " illustrate the workflow; train the models on your own cohort (lungai rp train, lungai stage train) "
              "and run `lungai demo --ct` with --clinical, --dose, --rp-model and --stage-model for a patient.")
    if s.get("dose_status") == "synthetic":
        limitations.append("The dose is a synthetic stand-in for a treatment plan; give the real RTDOSE with --dose "
                           "for real dose metrics.")
    if s.get("dose") is None:     # as RP and stage below: the dose metrics not computed, and how to give them
        limitations.append("Dose metrics (mean lung dose, V5-V30, D2-D98, GTV dose) not computed: missing "
                           f"{MISSING['dose']['what']} - {MISSING['dose']['how']}.")
    for key, what in (("rp", "RP risk"), ("stage", "Stage")):
        if s[key]["status"] == "not computed":
            limitations.append(f"{what} {s[key]['message']}")
    limitations.append(f"The segmentation model {name} - {training}. Tumours unlike its training cases (e.g. large "
                       "central tumours, tumours abutting the mediastinum, post-treatment changes) may be segmented "
                       "poorly - check flagged cases.")
    return methods, limitations
