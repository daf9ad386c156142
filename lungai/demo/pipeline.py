"""The demo pipeline: CT -> lungs -> tumour with uncertainty -> radiomics -> dose -> RP risk -> stage -> report.

Each step writes its result into the output folder (NIfTI / CSV / JSON) before the next one
starts; :func:`run_demo` returns the summary that the report and the scene are built from.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lungai import __version__
from lungai.demo.patient import EXAMPLE_CLINICAL, KEY_FEATURES
from lungai.errors import InputError
from lungai.io import read_ct, write_image
from lungai.overlap import dice
from lungai.progress import task

STEPS = ["input", "lungs", "tumour", "radiomics", "dose", "rp", "stage", "report", "scene"]


def _json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, indent=2, default=float))


def _input(out: Path, ct_path, small: bool) -> tuple[sitk.Image, sitk.Image | None, dict]:
    if ct_path is not None:
        ct = read_ct(ct_path)
        write_image(ct, out / "ct.nii.gz", protect=[ct_path])
        return ct, None, {"description": f"CT {Path(ct_path).name}", "source": str(ct_path), "seed_lps": None}
    from lungai.synthetic import PhantomSpec, SAMPLE_SEED, make_phantom, sample_spec, write_phantom

    spec = sample_spec()
    if small:  # a quicker, coarser version of the same case (tests)
        spec = PhantomSpec(shape=(128, 128, 48), spacing=(2.8, 2.8, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    phantom = make_phantom(spec, seed=SAMPLE_SEED)
    write_phantom(phantom, out)
    from lungai.synthetic import labels as L

    truth = sitk.GetImageFromArray(L.tumour_mask(sitk.GetArrayFromImage(phantom.labels)).astype(np.uint8))
    truth.CopyInformation(phantom.ct)
    t = phantom.meta["tumour"]
    desc = (f"built-in sample phantom (seed {SAMPLE_SEED}): {t['diameter_mm']:.0f} mm {t['shape']} "
            f"{t['location'].replace('_', '-')} tumour in the {t['side']} lung")
    # the demo places the seed point where a user would click: on the tumour (its planted centre)
    return phantom.ct, truth, {"description": desc, "source": "lungai.synthetic sample", "seed_lps": t["centre_mm"]}


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


def _radiomics(out: Path, ct, tumour, lungs, params_name: str = "default") -> tuple[pd.DataFrame, dict]:
    from lungai.radiomics import extract, load_params, segments_from_masks, to_wide
    from lungai.radiomics.params import ibsi_config
    from lungai.radiomics.prepare import lung_spacing

    params = load_params(params_name, image_types=["Original"])
    errors: dict = {}
    # lungs minus tumour is left to `lungai radiomics` (the demo's report and RP model do not use it)
    segments = segments_from_masks(ct, tumour=tumour if sitk.GetArrayViewFromImage(tumour).any() else None,
                                   lungs=lungs, names=["tumour", "right_lung", "left_lung", "lungs"], errors=errors)
    result = extract(ct, segments, params, case="demo", segment_errors=errors)
    long = result.features
    long.to_csv(out / "radiomics_long.csv", index=False)
    result.settings.to_csv(out / "radiomics_settings.csv", index=False)
    wide = to_wide(long)
    wide.to_csv(out / "radiomics_wide.csv", index=False)
    key = []
    for segment, name, label in KEY_FEATURES:
        name = _key_feature_name(name, params)
        image_type, feature_class, feature = name.split("_", 2)
        row = long[(long.segment == segment) & (long.image_type == image_type) &
                   (long.feature_class == feature_class) & (long.feature == feature)]
        if len(row):
            key.append({"segment": segment, "feature": name, "label": label, "value": float(row.value.iloc[0])})
    cfg = ibsi_config(params)
    what = ("pyradiomics default settings (bin width 25 HU, no resampling; not IBSI-1 processing)" if cfg is None
            else f"IBSI-1 configuration {cfg.name} (preset {params_name}: the IBSI pipeline of lungai ibsi-check, "
                 "every value an IBSI-1 feature)")
    info = {"n_features": int(len(long)), "key_features": key,
            "params": (f"{what}, Original image; segments tumour, right lung, left lung, lungs" if cfg is not None else
                       "lungai default preset (pyradiomics, bin width 25 HU; not IBSI-1 processing), Original image; "
                       "tumour on the CT's grid, right lung, left lung and lungs "
                       + (f"resampled to {lung_spacing(params):g} mm (IBSI-style)" if lung_spacing(params) else "on the CT's grid")
                       + "; radiomics_settings.csv"),
            "settings": result.settings.drop(columns="case").to_dict("records"),
            "failed_segments": result.errors.to_dict("records")}
    return wide, info


def _dose(out: Path, ct, tumour, lungs) -> tuple[sitk.Image, dict, str]:
    from lungai.dose import dose_features, treatment_dose

    if not sitk.GetArrayViewFromImage(tumour).any():
        raise InputError("no tumour was found, so no synthetic treatment dose can be planned around it",
                         "give a CT with a visible tumour, or run the steps separately (lungai lungs / radiomics)")
    # 60 Gy within 10 mm of the tumour, 60 mm exponential fall-off: on the sample this gives
    # MLD ~15 Gy and V20 ~24 %, typical of (chemo)radiotherapy for locally advanced NSCLC
    dose = treatment_dose(tumour, prescription_gy=60.0, margin_mm=10.0, falloff_mm=60.0)
    write_image(dose, out / "dose.nii.gz")
    row = dose_features(dose, ct, lungs, tumour, case="demo")
    pd.DataFrame([row]).to_csv(out / "dose.csv", index=False)
    source = ("Synthetic treatment dose (not a real plan): 60 Gy to the tumour plus a 10 mm margin, "
              "falling off exponentially (60 mm) outside it.")
    return dose, row, source


def _rp(out: Path, wide: pd.DataFrame, dose_row: dict) -> dict:
    from lungai.rp import RISK_MODEL, make_cohort, predict_rp, train_rp

    cohort = make_cohort(n=400, seed=0)
    cohort.table.to_csv(out / "rp_training_cohort.csv", index=False)
    model_dir = out / "rp_model"
    result = train_rp(cohort.table, cohort.outcome, model_dir, models="lr", fast=True, seed=0, overwrite=True,
                      make_plots=False)
    patient = {c: np.nan for c in cohort.table.columns if c != cohort.outcome}
    patient["case"] = "demo"
    patient.update(EXAMPLE_CLINICAL)
    patient.update({k: v for k, v in dose_row.items() if k in patient})
    # the radiomic features of the cohort's risk model, computed for this patient; the cohort's
    # other (noise) radiomic columns are left missing and imputed by the locked pipeline
    computed = {c: float(wide[c].iloc[0]) for c in RISK_MODEL if c.startswith("rad_") and c in wide.columns}
    patient.update(computed)
    pred, _contrib = predict_rp(model_dir, pd.DataFrame([patient]), output=out / "rp_prediction.csv", top=6)
    p = pred.iloc[0]
    tops = [(str(p[f"top{i}_feature"]), float(p[f"top{i}_contribution"])) for i in range(1, 7)
            if f"top{i}_feature" in p and isinstance(p[f"top{i}_feature"], str)]
    auc = result.metrics.get("chosen_auc") if isinstance(result.metrics, dict) else None
    desc = (f"Model: {result.chosen}, trained with nested cross-validation on a synthetic cohort of "
            f"{len(cohort.table)} patients with a known risk model (lungai.rp.make_cohort), "
            + (f"cross-validated AUC {auc:.2f}. " if isinstance(auc, (int, float)) else "")
            + "Clinical values are an illustrative example profile; radiomic features other than the "
              "lung features the model uses were left missing (imputed).")
    return {"risk": float(p["risk"]), "risk_low": float(p["risk_low"]), "risk_high": float(p["risk_high"]),
            "high_risk": bool(p.get("high_risk", False)), "contributions": tops, "model_description": desc,
            "model": result.chosen}


def _stage(out: Path, ct, tumour) -> dict:
    from lungai.fusion.api import predict_stage, train_stage_model
    from lungai.fusion.pipeline import FusionConfig
    from lungai.fusion.synthetic import make_cohort

    # a small cohort and a short schedule keep this step to seconds; `lungai stage train` is the real thing
    paths = make_cohort(out / "stage_cohort", n=36, seed=0, ct_shape=(48, 48, 24), ct_spacing=(5.0, 5.0, 5.0))
    pipe = train_stage_model(paths["ehr"], paths["rna"], paths["ct"], label="stage",
                             config=FusionConfig(epochs=25, patience=8, min_epochs=10, emb=16, seed=0))
    df = predict_stage(pipe, patient_id="demo", ct_image=ct, mask_image=tumour)
    df.to_csv(out / "stage_probabilities.csv", index=False)
    classes = [str(c) for c in pipe.classes]
    probs = [float(df[f"p_{c}"].iloc[0]) for c in classes]
    desc = ("Intermediate-fusion model (3D CNN on a tumour-centred CT crop, graph attention network on gene "
            "expression, MLP on EHR) trained on a small synthetic multimodal cohort (lungai.fusion.synthetic); "
            "for this patient only the CT is available, so the gene and EHR branches are masked.")
    return {"classes": classes, "probabilities": probs, "predicted": str(df["predicted"].iloc[0]),
            "modalities": "CT only (RNA-seq and EHR masked)", "model_description": desc}


def run_demo(out_dir, ct_path=None, small: bool = False, model_dir=None, seed_lps=None,
             radiomics_params: str = "default") -> dict:
    """Run every step; returns the summary (also written as ``summary.json``).

    ``radiomics_params``: the radiomics preset (``default``, ``ibsi-a`` .. ``ibsi-e``) or YAML file.

    The tumour is segmented around a seed point (LPS mm): ``seed_lps``, or on the sample the
    tumour's position (as a user's click); with neither, in automatic mode (whole lungs).
    """
    from lungai.lungs import segment_lungs
    from lungai.report import figures, write_report
    from lungai.seg.model_io import load_model
    from lungai.seg.infer import segment_tumour
    from lungai.seg.resources import resolve_model_dir

    out = Path(out_dir)
    marker = out / ".lungai-demo"  # marks a folder the demo made (it may be reused, even after a failure)
    if out.is_dir() and any(out.iterdir()) and not marker.is_file():
        raise InputError(f"the output folder {out} is not empty and was not written by lungai demo",
                         "choose a new folder with -o (a previous demo's folder is reused)")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by lungai demo\n")
    timings: dict = {}
    start = time.perf_counter()
    summary: dict = {"case": "demo", "version": __version__,
                     "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}

    def lap(name, t0):
        timings[name] = round(time.perf_counter() - t0, 2)

    with task("demo", len(STEPS)) as bar:
        t0 = time.perf_counter()
        ct, truth, summary["input"] = _input(out, ct_path, small)
        lap("input", t0)
        bar.update(1, "CT ready")

        t0 = time.perf_counter()
        lungs_result = segment_lungs(ct)
        write_image(lungs_result.labels, out / "lungs.nii.gz")
        summary["lungs"] = {"right_lung": float(lungs_result.volumes_ml["right_lung"]),
                            "left_lung": float(lungs_result.volumes_ml["left_lung"]), "notes": lungs_result.notes}
        lap("lungs", t0)
        bar.update(1, "lungs")

        t0 = time.perf_counter()
        mdir = resolve_model_dir(model_dir)
        model = load_model(mdir)
        sample_seed = summary["input"].pop("seed_lps")
        seed_point = seed_lps if seed_lps is not None else sample_seed
        seg = segment_tumour(ct, model, seed_lps=seed_point, method="ensemble", seed=0)
        for name, img in (("tumor", seg.tumour), ("probability", seg.probability), ("uncertainty", seg.entropy)):
            write_image(img, out / f"{name}.nii.gz")
        if seg.mutual_information is not None:
            write_image(seg.mutual_information, out / "mutual_information.nii.gz")
        _json(out / "result.json", seg.info)
        summary["segmentation"] = seg.info
        meta = model[2]
        summary["seg_model"] = {"dir": str(mdir), "validation_r": _fmt_r(meta)}
        if truth is not None:
            write_image(truth, out / "tumor_truth.nii.gz")
            summary["truth_dice"] = round(dice(seg.tumour, truth), 4)
        lap("tumour", t0)
        bar.update(1, f"tumour {seg.info['tumor_volume_ml']:.1f} ml, confidence {seg.info['confidence']:.2f}")

        t0 = time.perf_counter()
        wide, summary["radiomics"] = _radiomics(out, ct, seg.tumour, lungs_result.labels, radiomics_params)
        lap("radiomics", t0)
        bar.update(1, f"{summary['radiomics']['n_features']} features")

        t0 = time.perf_counter()
        dose, summary["dose"], summary["dose_source"] = _dose(out, ct, seg.tumour, lungs_result.labels)
        lap("dose", t0)
        bar.update(1, f"MLD {summary['dose']['dose_mld_gy']:.1f} Gy")

        t0 = time.perf_counter()
        summary["rp"] = _rp(out, wide, summary["dose"])
        lap("rp", t0)
        bar.update(1, f"RP risk {summary['rp']['risk']:.0%}")

        t0 = time.perf_counter()
        summary["stage"] = _stage(out, ct, seg.tumour)
        lap("stage", t0)
        bar.update(1, f"stage {summary['stage']['predicted']}")

        t0 = time.perf_counter()
        summary["methods"], summary["limitations"] = _methods(summary)
        lung_arr = sitk.GetArrayViewFromImage(lungs_result.labels) > 0
        gtv = sitk.GetArrayViewFromImage(seg.tumour) > 0
        figs = {
            "slices": figures.tumour_slices(ct, seg.tumour, seg.entropy, lungs_result.labels, truth),
            "dvh": figures.dvh(dose, {"lungs minus GTV": lung_arr & ~gtv, "GTV": gtv}),
            "rp": figures.contributions([n for n, _ in summary["rp"]["contributions"]],
                                        [v for _, v in summary["rp"]["contributions"]], "RP risk: top contributions"),
            "stage": figures.probabilities(summary["stage"]["classes"], summary["stage"]["probabilities"],
                                           "stage probabilities"),
        }
        timings["total_s"] = round(time.perf_counter() - start, 1)
        summary["timings"] = timings
        write_report(out / "report.html", summary, figs)
        lap("report", t0)
        bar.update(1, "report.html")

        t0 = time.perf_counter()
        from lungai.scene.demo import save_demo_scene

        save_demo_scene(out, out / "scene.mrb")
        lap("scene", t0)
        bar.update(1, "scene.mrb")
    timings["total_s"] = round(time.perf_counter() - start, 1)
    _json(out / "summary.json", summary)
    return summary


def _fmt_r(meta: dict) -> str:
    """Validation Pearson r(confidence, Dice) of the ensemble, as recorded in model.json."""
    r = meta.get("validation", {}).get("ensemble", {}).get("pearson_r_confidence_dice_cv")
    return f"{r:.2f}" if isinstance(r, (int, float)) and np.isfinite(r) else "not recorded"


def _methods(s: dict) -> tuple[list[str], list[str]]:
    methods = [
        "Lungs: classical segmentation without a trained model (HU threshold, outside air and airways removed, "
        "vessels and pleural tumours kept) - lungai.lungs.",
        f"Tumour: deep ensemble of {s['segmentation']['members']} MONAI {s['segmentation'].get('architecture', '')} "
        "networks trained on real LIDC-IDRI nodules and synthetic phantoms; voxel uncertainty = predictive "
        "entropy; case confidence calibrated to predict the Dice on validation cases - lungai.seg.",
        f"Radiomics: {s['radiomics']['params']}. IBSI-1-compliant values come only from the ibsi-a..e presets "
        "(lungai radiomics --params ibsi-c; verified against the IBSI-1 reference, docs/radiomics.md); the default "
        "preset gives pyradiomics values - lungai.radiomics.",
        "Dose: mean lung dose, V5/V13/V20/V30 and D-metrics of the lungs minus the GTV - lungai.dose.",
        "RP risk: scikit-learn logistic regression / random forest with imputation, scaling and feature selection "
        "inside nested cross-validation; Shapley contributions - lungai.rp.",
        "Stage: intermediate fusion of CT (3D CNN), RNA-seq (graph attention network) and EHR (MLP) - lungai.fusion.",
    ]
    limitations = [
        "Research use only; not validated for clinical use.",
        "The RP and stage models in this demo are trained on synthetic cohorts and illustrate the workflow; "
        "train them on your own cohort (lungai rp train, lungai stage train) before interpreting the numbers.",
        "The dose is a synthetic stand-in for a treatment plan; load the real RTDOSE for real dose metrics.",
        "The segmentation model was trained on nodule crops and phantoms; large central tumours, tumours abutting "
        "the mediastinum and post-treatment changes are outside what it has seen - check flagged cases.",
    ]
    return methods, limitations
