"""Per-case evaluation: Dice, 95 % Hausdorff distance, volumes, confidence, review flag."""

from __future__ import annotations

import warnings

import numpy as np
import SimpleITK as sitk

from lungai.errors import agree, counted
from lungai.overlap import dice  # noqa: F401 - the project's one Dice, re-exported
from lungai.progress import NullProgress, SubProgress
from lungai.seg.config import result_value
from lungai.volume import mask_volume_ml


def hd95(a: np.ndarray, b: np.ndarray, spacing_zyx) -> float:
    """95th-percentile symmetric Hausdorff distance in mm (MONAI); NaN when either mask is empty."""
    import torch      # here, not at the module's top: eval-seg's bar comes before torch is imported
    from monai.metrics import compute_hausdorff_distance

    a, b = a.astype(bool), b.astype(bool)
    if not a.any() or not b.any():
        return float("nan")
    idx = np.argwhere(a | b)
    lo, hi = np.maximum(idx.min(0) - 1, 0), idx.max(0) + 2
    sl = tuple(slice(l, h) for l, h in zip(lo, hi))
    ta = torch.from_numpy(a[sl][None, None])
    tb = torch.from_numpy(b[sl][None, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # MONAI-internal deprecation notice
        hd = compute_hausdorff_distance(ta, tb, include_background=True, percentile=95,
                                        spacing=[float(s) for s in spacing_zyx])
    return float(hd[0, 0])


SIZE_BANDS = ((0.0, 10.0, "< 10 mm"), (10.0, 30.0, "10-30 mm"), (30.0, 60.0, "30-60 mm"), (60.0, float("inf"), "> 60 mm"))
LARGE_TUMOUR_MM = 30.0      # "a large tumour" (>= 30 mm): the lower edge of the "30-60 mm" band, so band counts add up
HARD_CASES = ("atelectasis", "pleural_effusion", "mediastinal_contact", "small_tumour")


def size_mm(mask: np.ndarray, spacing_zyx) -> float:
    """Largest extent (mm) of a (z, y, x) mask along the image axes (0 when empty)."""
    if not mask.any():
        return 0.0
    idx = np.argwhere(mask)
    return float(((idx.max(0) - idx.min(0) + 1) * np.asarray(spacing_zyx, float)).max())


def size_band(mm: float) -> str:
    return next(name for lo, hi, name in SIZE_BANDS if lo <= mm < hi)


def is_large(mm):
    """A tumour of :data:`LARGE_TUMOUR_MM` (30 mm) or more - the "30-60 mm" and "> 60 mm" bands together (a case
    of exactly 30.0 mm is in both; a "> 30 mm" group would leave it out).  Works on a number or an array."""
    return np.asarray(mm, float) >= LARGE_TUMOUR_MM


def hd95_stats(hd) -> dict:
    """Mean HD95 over the cases where it is finite, and how many those are: HD95 is NaN for a missed tumour (an
    empty prediction), so a mean without the count would silently leave the misses out."""
    hd = np.asarray(hd, float)
    ok = np.isfinite(hd)
    return {"mean_hd95_mm": round(float(hd[ok].mean()), 3) if ok.any() else None, "n_hd95": int(ok.sum())}


def hd95_text(s: dict, n: int) -> str:
    """'HD95 2.0 mm (1 of 2 cases; 1 without a tumour found)' from a summary with ``n_hd95`` ("" without it: a
    model.json written before the count was kept)."""
    if "n_hd95" not in s or not n:
        return ""
    k = s["n_hd95"]
    text = f"HD95 {fmt_num(s.get('mean_hd95_mm'), '.1f')} mm ({k} of {counted(n, 'case')}"
    return text + (f"; {n - k} without a tumour found)" if n > k else ")")


def _flat_meta(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if isinstance(v, dict):
            out.update({f"meta_{kk}": vv for kk, vv in v.items()})
        else:
            out[f"meta_{k}"] = v
    return out


def seed_point_of(ct: sitk.Image, ref: np.ndarray) -> list:
    """A user's click on the reference lesion ``ref`` (z, y, x bool on ``ct``'s grid): its centre of mass, or
    the lesion's voxel nearest to it when the centre falls outside (a curved lesion); LPS mm."""
    from scipy import ndimage

    com = np.array(ndimage.center_of_mass(ref))
    idx = np.round(com).astype(int)
    if not ref[tuple(idx)]:
        pts = np.argwhere(ref)
        idx = pts[np.argmin(((pts - com) ** 2).sum(1))]
    return list(ct.TransformContinuousIndexToPhysicalPoint([float(idx[2]), float(idx[1]), float(idx[0])]))


def reference_tumour(mask: sitk.Image, label: int | None = None) -> np.ndarray:
    """The reference tumour (z, y, x bool) of a mask: its voxels of ``label``, or without one every nonzero voxel
    (:func:`check_cases` refuses a mask with several labels then)."""
    arr = sitk.GetArrayViewFromImage(mask)
    return arr == label if label is not None else arr > 0


SEEN_RECORDS = (("training_patients", "training"), ("validation_patients", "validation"))


def seen_patients(meta: dict, cases, loose: bool = False) -> tuple[list, bool]:
    """(seen, checked) of ``cases`` against the patients a segmentation model was trained and validated on
    (model.json's ``training_patients`` / ``validation_patients``, salted hashes: :mod:`lungai.model_files`; and
    ``training.implant_background_patients``): per case "training", "validation" or "" (not seen); ``checked`` False
    when the model records no patient hashes (the shipped models, models of a lungai before 2026-12): the overlap
    cannot be checked.  A case matches by its name, its patient or the text before its first '_'.  The one check
    of eval-seg and the test reports (benchmarks/seg_test_report.py).  ``loose``: instead the part of the cases that
    match a recorded patient only ignoring letter case / leading zeros (``lidc-idri-0001_R_1`` against a model
    trained on ``LIDC-IDRI-0001``: :func:`lungai.model_files.loose_id`, as ``stage`` / ``rp validate`` note them)."""
    from lungai.model_files import loose_id, training_overlap
    from lungai.seg.dataset import patient_of

    rows = [tuple(dict.fromkeys((str(c.case_id), str(c.patient), patient_of(str(c.case_id))))) for c in cases]
    seen = [""] * len(rows)
    checked = False
    for key, part in SEEN_RECORDS:
        hits = training_overlap({"training_patients": meta.get(key)}, rows, loose=loose)
        if hits is None:
            continue
        checked = True
        hit = set(hits)
        seen = [s or (part if r in hit else "") for s, r in zip(seen, rows)]
    backgrounds = set((meta.get("training") or {}).get("implant_background_patients") or [])
    if loose:
        exact = seen_patients(meta, cases)[0]
        folded = {loose_id(b) for b in backgrounds}
        seen = [s or ("training" if folded & {loose_id(i) for i in r} else "") for s, r in zip(seen, rows)]
        return [s if not e else "" for s, e in zip(seen, exact)], checked
    seen = [s or ("training" if backgrounds & set(r) else "") for s, r in zip(seen, rows)]
    return seen, checked


def model_seen_patients(model, cases, loose: bool = False) -> tuple[list, list]:
    """:func:`seen_patients` of a loaded model (``load_model``), model choice or model.json dict: a choice folder
    records no patients of its own, so a case is seen when any of its models saw it (the first model's part first).
    Returns (seen, unrecorded): ``unrecorded`` names the models whose overlap cannot be checked (no patient hashes;
    [None] for a plain model without them) - [] when every model was checked.  The one check of eval-seg and
    benchmarks/seg_test_report.py.  ``loose``: the cases matching only ignoring case / leading zeros
    (:func:`seen_patients`)."""
    from lungai.seg.choice import ModelChoice

    members = (list(zip(model.names, (m[2] for m in model.models))) if isinstance(model, ModelChoice)
               else [(None, model if isinstance(model, dict) else model[2])])
    seen, unrecorded = [""] * len(cases), []
    for name, meta in members:
        part, checked = seen_patients(meta if isinstance(meta, dict) else {}, cases, loose)
        seen = [s or p for s, p in zip(seen, part)]
        if not checked:
            unrecorded.append(name)
    return seen, unrecorded


def model_patients_csvs(model) -> list:
    """The ``--patients`` CSV files (model.json ``training.case_sources.patients``) a loaded model, model choice or
    model.json dict was trained with - each of a choice's models - in order, once each; [] when none was."""
    from lungai.seg.choice import ModelChoice

    metas = ([m[2] for m in model.models] if isinstance(model, ModelChoice)
             else [model if isinstance(model, dict) else model[2]])
    found = [((m.get("training") or {}).get("case_sources") or {}).get("patients") if isinstance(m, dict) else None
             for m in metas]
    return list(dict.fromkeys(f for f in found if f))


def check_cases(cases, label: int | None = None, progress=None) -> str | None:
    """Every (image, mask) pair of an evaluation checked before any model runs: the CT (spacing in mm, HU), the mask
    on the CT's grid, and the tumour's label - ``label`` (found in at least one mask; a mask without it is a
    tumour-free case), or without it one label per mask, as ``--tumour`` / ``--gtv`` take a mask
    (:func:`lungai.dicom.masks.check_one_label`).  One :class:`InputError` names every unusable pair: a test set
    silently made smaller would not be the test set.  Returns the note on the masks' other labels with ``label``
    (:func:`lungai.seg.dataset.other_labels_note`: they count as background), or None."""
    from collections import Counter

    from lungai.dicom.masks import check_one_label
    from lungai.errors import InputError
    from lungai.seg.dataset import (BINARY_255_FIX, CORNERS_FIX, LUNG_LIKE_FIX, binary_255_problem, check_label_found,
                                    choose_label, corners_problem, load_images, lung_like_problem, other_labels_note,
                                    sub_step, swapped_folders, whole_ct_progress)

    bar = progress or NullProgress()
    bad, seen, counts, digests = [], set(), Counter(), {}
    for c in cases:
        # a whole CT's checks said in sub-steps (QA train68: LUNG1-003 stood 5 s on "checking inputs: 0/1"); a crop's
        # none (a line each in a log)
        sub = whole_ct_progress(c, progress)
        try:
            image, mask = sub_step(sub, "reading the CT and mask", load_images, c)
            if sub is not None:
                sub.update(0, "checking the mask's labels")
            digests.setdefault(_voxels_digest(image), []).append(c.case_id)
            if label is None:
                check_one_label(mask, f"mask {c.case_id}", "tumour", choose_label)
            labels = {int(v) for v in np.unique(sitk.GetArrayViewFromImage(mask)) if v}
            seen |= labels
            counts.update(labels)
            binary = binary_255_problem(c.case_id, labels, label)
            if binary:     # a 0/255 tumour mask scored as tumour-free: every voxel found a false tumour
                raise InputError(binary, BINARY_255_FIX)
            # the tumour judged: with --label its voxels alone (QA train67: eval-seg pairs the files without the
            # label, and LUNG1-003's label map with --label 1 was refused as "looks like the lungs", 3988 ml); a case
            # paired with its label holds that label's 0/1 mask already (load_images)
            tumour = mask if label is None or c.label is not None else sitk.Cast(mask == int(label), sitk.sitkUInt8)
            inverted = corners_problem(c.case_id, sitk.GetArrayViewFromImage(tumour) != 0)   # ``tumour`` kept alive
            if inverted:   # an inverted mask scored as the tumour (first: a whole CT's would look like the lungs)
                raise InputError(inverted, CORNERS_FIX)
            lungs = sub_step(sub, "checking the tumour mask", lung_like_problem, c.case_id, image, tumour)
            if lungs:      # a lung mask scored as the tumour: the Dice of a tumour model against the lungs
                raise InputError(lungs, LUNG_LIKE_FIX)
        except InputError as exc:
            bad.append(f"{c.case_id}: {exc.problem} (fix: {exc.fix})" if exc.fix else f"{c.case_id}: {exc.problem}")
        bar.update(1, c.case_id)
    swapped = swapped_folders(cases) if bad and len(bad) == len(cases) else None
    if swapped:
        raise InputError(swapped.problem, swapped.fix + " (nothing was evaluated)")
    if bad:
        raise InputError(f"{len(bad)} of {len(cases)} image / mask pairs cannot be evaluated - " + "; ".join(bad),
                         "fix these pairs or move them out of --images / --masks, then run again (nothing was "
                         "evaluated: a silently smaller test set would not be comparable)")
    check_label_found(label, seen, len(cases))
    notes = [other_labels_note(label, counts, len(cases), evaluating=True), duplicate_cases_note(digests)]
    return "; ".join(n for n in notes if n) or None


def _voxels_digest(image: sitk.Image) -> str:
    """A fingerprint of a CT's voxels and grid (two files of one scan, whatever their format or compression)."""
    import hashlib

    h = hashlib.sha256(sitk.GetArrayViewFromImage(image).tobytes())
    h.update(repr((image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())).encode())
    return h.hexdigest()


def duplicate_cases_note(digests: dict) -> str | None:
    """The cases whose CTs are the same scan (identical voxels and grid; ``digests``: fingerprint -> case ids), or
    None.  QA: one crop under two names was evaluated twice and counted twice in every mean, without a word."""
    groups = [ids for ids in digests.values() if len(ids) > 1]
    if not groups:
        return None
    return (f"{sum(len(g) for g in groups)} cases hold the same CT as another case (identical voxels: "
            + "; ".join(" = ".join(g) for g in groups) + "): each is evaluated and counted in the means - remove "
            "the copies from --images / --masks for a mean over distinct scans")


def evaluate_case(model, case, method: str | None = None, mc_passes: int | None = None, seed: int = 0,
                  seeded: bool = False, tta: bool | None = None, flip_check: bool | None = None,
                  label: int | None = None, point=None, progress=None) -> dict:
    """One case: Dice, HD95, volumes, confidence.  ``progress``: the segmentation's steps shown as messages
    (:class:`lungai.progress.SubProgress`: the step count is the caller's, one per case).  ``seeded``: seed-point mode with the click at the reference
    lesion (:func:`seed_point_of`, growing box) instead of the whole crop / automatic mode; ``point``: seed-point mode
    with this click (LPS mm) instead.  ``tta``: mirrored
    test-time augmentation on / off (None: as the model's config says); ``flip_check``: the confidence feature
    ``flip_consistency`` also when the model's calibration does not use it.  ``label``: the reference tumour is
    this label of the mask (default: every nonzero voxel; :func:`reference_tumour`)."""
    from lungai.seg.dataset import load_images, sub_step, whole_ct_progress
    from lungai.seg.infer import segment_tumour

    # a whole CT's reading said (QA train68: LUNG1-003 stood 4 s on its name before its lungs' search was said)
    img, mask = sub_step(whole_ct_progress(case, progress, prefix=False), "reading the CT and mask", load_images, case)
    truth = reference_tumour(mask, label)
    if point is None:
        point = seed_point_of(img, truth) if seeded and truth.any() else None
    res = segment_tumour(img, model, method=method, mc_passes=mc_passes, seed=seed, source=case.case_id,
                         seed_lps=point, whole=False if point is not None else None, tta=tta, flip_check=flip_check,
                         progress=progress)
    pred = sitk.GetArrayViewFromImage(res.tumour) > 0
    info = res.info
    # said, its seconds shown (QA train69: LUNG1-003 stood 5.5 s on "mapped to input grid" - MONAI's Hausdorff
    # distance over the box of both masks)
    score, hd = sub_step(progress, "Dice and HD95 against the reference mask",
                         lambda: (dice(pred, truth), hd95(pred, truth, img.GetSpacing()[::-1])))
    row = {"case": case.case_id, "patient": case.patient, "dice": round(score, 4), "hd95_mm": round(hd, 3),
           "volume_true_ml": round(mask_volume_ml(truth, img.GetSpacing()), 4),
           "volume_pred_ml": result_value(info, "tumour_volume_ml"),
           "false_volume_ml": round(mask_volume_ml(np.logical_and(pred, ~truth), img.GetSpacing()), 4),
           "n_components": info["n_components"],
           "confidence": info["confidence"], "needs_review": info["needs_review"],
           "review_reasons": "; ".join(info.get("review_reasons", [])), "method": info["method"],
           "mc_passes": info.get("mc_passes", 0), "calibration_mc_passes": info.get("calibration_mc_passes"),
           "roi_mode": info["roi_mode"], "n_passes": len(info.get("roi_passes") or []), "grid_scale": next((p["scale"] for p in info.get("roi_passes", [])
                                                              if p["kept"]), 1)}
    row.update({f"f_{k}": v for k, v in info["features"].items()})
    row["size_mm"] = round(size_mm(truth, img.GetSpacing()[::-1]), 1)
    row["size_band"] = size_band(row["size_mm"])
    if "model_choice" in info:          # a model choice: which model was kept, each one's confidence, agreement
        mc = info["model_choice"]
        row["model_kept"] = mc["kept"]
        row["model_agreement_dice"] = mc.get("agreement_dice")
        row["model_kept_confidence"] = mc.get("kept_confidence", info["confidence"])
        row.update({f"confidence_{t['model']}": t["confidence"] for t in mc["models"]})
    row.update(_flat_meta(case.meta))
    return row


def evaluate_cases(model, cases, method: str | None = None, mc_passes: int | None = None, seed: int = 0, progress=None,
                   seeded: bool = False, tta: bool | None = None, flip_check: bool | None = None,
                   label: int | None = None, keep_going: bool = True):
    """One row per case (:func:`evaluate_case`).  A case that stops with an :class:`InputError` mid-run (e.g. no
    lungs found in automatic mode) does not lose the run: with ``keep_going`` it becomes a row with its ``error``
    (Dice NaN; :func:`failed` rows are left out of :func:`summarize`'s figures, which count them) and the other
    cases run on; without it the error is raised, naming the case."""
    import pandas as pd

    from lungai.errors import InputError

    bar = progress or NullProgress()
    rows = []
    for c in cases:
        # the case named as it starts, its segmentation's steps as messages (QA train67: LUNG1-003, a whole CT, stood
        # 44 s on "eval-seg: 0/1" without a word, the case named only once done)
        bar.update(0, c.case_id)
        steps = SubProgress(bar, f"{c.case_id}:")
        try:
            rows.append(evaluate_case(model, c, method, mc_passes, seed, seeded, tta, flip_check, label,
                                      progress=steps))
        except InputError as exc:
            if not keep_going:
                raise InputError(f"case {c.case_id}: {exc.problem}", exc.fix) from exc
            text = f"{exc.problem} (fix: {exc.fix})" if exc.fix else exc.problem
            rows.append({"case": c.case_id, "patient": c.patient, "dice": float("nan"), "error": text,
                         **_flat_meta(c.meta)})
        bar.update(1, c.case_id)
    df = pd.DataFrame(rows)
    if "error" in df:
        df["error"] = df["error"].fillna("")
    return df


def failed(df):
    """Rows of cases that stopped with an error (:func:`evaluate_cases`' ``error`` column)."""
    if "error" not in df:
        return np.zeros(len(df), bool)
    return df["error"].fillna("").astype(str).to_numpy() != ""


def sample_sd(values):
    """The sample standard deviation (ddof=1) of ``values`` - the SD of "mean +- SD" in every report - or None
    when fewer than 2 values (one case has no spread to report)."""
    v = np.asarray(values, float)
    return float(np.std(v, ddof=1)) if len(v) > 1 else None


def _round_sd(values, digits: int = 4):
    sd = sample_sd(values)
    return round(sd, digits) if sd is not None else None


def has_tumour(df):
    """Rows whose reference mask holds a tumour (Dice is only informative there); none when no case was computed
    (every row an error row: no ``volume_true_ml`` column)."""
    if "volume_true_ml" not in df:
        return np.zeros(len(df), bool)
    return df["volume_true_ml"].to_numpy(float) > 0


def summarize(df) -> dict:
    """Dice and r(confidence, Dice) over the cases with a reference tumour; tumour-free cases (if any)
    are summarised by how often the model still finds a tumour (false-positive rate)."""
    from scipy.stats import pearsonr

    bad = failed(df)
    n_failed = int(bad.sum())
    df = df[~bad]
    if "volume_true_ml" not in df:         # every case failed
        return {"n_cases": 0, "mean_dice": float("nan"), "std_dice": None, "median_dice": float("nan"),
                "mean_hd95_mm": None, "n_hd95": 0, "pearson_r_confidence_dice": float("nan"), "n_needs_review": 0,
                "n_failed": n_failed}
    free = df[~has_tumour(df)]
    auto = df[has_tumour(df) & (df["roi_mode"] == "lungs")] if "roi_mode" in df else df.iloc[:0]
    df = df[has_tumour(df)]
    d, c = df["dice"].to_numpy(float), df["confidence"].to_numpy(float)
    r = float(pearsonr(c, d)[0]) if len(d) > 2 and np.std(c) > 0 and np.std(d) > 0 else float("nan")
    out = {"n_cases": int(len(df)), "mean_dice": round(float(d.mean()), 4) if len(d) else float("nan"),
           "std_dice": _round_sd(d),
           "median_dice": round(float(np.median(d)), 4) if len(d) else float("nan"),
           **hd95_stats(df["hd95_mm"]),
           "pearson_r_confidence_dice": round(r, 4),
           "n_needs_review": int(df["needs_review"].sum()) if "needs_review" in df else 0}
    if n_failed:
        out["n_failed"] = n_failed
    if len(free):
        fp = free["volume_pred_ml"].to_numpy(float) > 0
        vol = free["volume_pred_ml"].to_numpy(float)
        # two different means: over every tumour-free case (0 where nothing was found) and per false tumour
        out["tumour_free"] = {"n_cases": int(len(free)), "false_positive_rate": round(float(fp.mean()), 4),
                              "mean_false_volume_ml": round(float(vol.mean()), 4),
                              "mean_volume_per_false_tumour_ml": round(float(vol[fp].mean()), 4) if fp.any() else None}
    if len(auto):
        a = auto["dice"].to_numpy(float)
        out["automatic_mode"] = {"n_cases": int(len(auto)), "mean_dice": round(float(a.mean()), 4),
                                 "median_dice": round(float(np.median(a)), 4),
                                 "mean_false_volume_ml": round(float(auto["false_volume_ml"].mean()), 4)
                                 if "false_volume_ml" in auto else None,
                                 "n_needs_review": int(auto["needs_review"].sum())}
    return out


def fmt_num(value, spec: str = ".3f") -> str:
    """``value`` formatted, or "n/a" when it is not available (None / null in model.json, NaN)."""
    from lungai.seg.model_io import is_number

    return format(value, spec) if is_number(value) else "n/a"


def summary_text(s: dict) -> str:
    text = (f"{counted(s['n_cases'], 'case')} with a tumour: Dice mean {fmt_num(s['mean_dice'])} "
            f"+- {fmt_num(s['std_dice'])}, "
            f"median {fmt_num(s['median_dice'])}; r(confidence, Dice) = {fmt_num(s['pearson_r_confidence_dice'])}; "
            f"{s['n_needs_review']} flagged for review")
    hd = hd95_text(s, s["n_cases"])
    if hd:
        text += f"; {hd}"
    if "tumour_free" in s:
        f = s["tumour_free"]
        per = f.get("mean_volume_per_false_tumour_ml")
        text += (f"; {counted(f['n_cases'], 'tumour-free case')}: a tumour found in "
                 f"{100 * f['false_positive_rate']:.0f} % (mean {f['mean_false_volume_ml']:.2f} ml over "
                 f"{agree(f['n_cases'], 'it', 'all ' + str(f['n_cases']))}"
                 + (f", {per:.2f} ml per false tumour)" if per is not None else ")"))
    if s.get("n_failed"):
        text += (f"; {counted(s['n_failed'], 'case')} failed and {agree(s['n_failed'], 'is', 'are')} left out "
                 "(see the 'error' column)")
    if "automatic_mode" in s:
        a = s["automatic_mode"]
        text += (f"; of them {counted(a['n_cases'], 'whole CT')} in automatic mode: Dice mean "
                 f"{a['mean_dice']:.3f}, median "
                 f"{a['median_dice']:.3f}, false volume {a['mean_false_volume_ml'] or 0:.1f} ml on average, "
                 f"{a['n_needs_review']} flagged")
    return text


def _dice_stats(d: np.ndarray, hd) -> dict:
    return {"n": int(len(d)), "mean_dice": round(float(d.mean()), 4), "std_dice": _round_sd(d),
            "median_dice": round(float(np.median(d)), 4), **hd95_stats(hd)}


def test_report(frames: dict) -> dict:
    """The final report on the TEST split: per method the summary (mean +- SD, median Dice, HD95,
    r(confidence, Dice)), and per size band, size group (">= 30 mm": :func:`is_large`; overlaps the bands) and hard case
    the Dice of each method."""
    out = {}
    for method, df in frames.items():
        tum = df[has_tumour(df) & ~failed(df)]
        rep = {"summary": summarize(df), "size_bands": {}, "size_groups": {}, "hard_cases": {}}
        if tum.empty:          # every case failed (error rows: case, patient, dice, error only)
            out[method] = rep
            continue
        for _, _, band in SIZE_BANDS:
            sub = tum[tum["size_band"] == band]
            if len(sub):
                rep["size_bands"][band] = _dice_stats(sub["dice"].to_numpy(float), sub["hd95_mm"].to_numpy(float))
        sub = tum[is_large(tum["size_mm"])] if "size_mm" in tum else tum.iloc[:0]
        if len(sub):        # the ">= 30 mm" group of issue #13's target, = the "30-60 mm" and "> 60 mm" bands
            rep["size_groups"][f">= {LARGE_TUMOUR_MM:.0f} mm"] = _dice_stats(sub["dice"].to_numpy(float),
                                                                           sub["hd95_mm"].to_numpy(float))
        for flag in HARD_CASES:
            col = f"meta_{flag}"
            if col in tum:
                sub = tum[tum[col].fillna(False).astype(bool)]
                if len(sub):
                    rep["hard_cases"][flag] = _dice_stats(sub["dice"].to_numpy(float), sub["hd95_mm"].to_numpy(float))
        out[method] = rep
    return out


def report_text(rep: dict, summary: bool = True) -> str:
    """The console text of :func:`test_report`'s report: per method its summary line (``summary`` False: left out,
    eval-seg's folder mode prints its own) and a line per size band, size group and hard case."""
    lines = []
    for method, r in rep.items():
        if summary:
            lines.append(f"{method}: {summary_text(r['summary'])}")
        for group in ("size_bands", "size_groups", "hard_cases"):
            for name, st in r.get(group, {}).items():
                lines.append(f"  {name}: n={st['n']}, Dice {st['mean_dice']:.3f} +- {fmt_num(st['std_dice'])}, "
                             f"median {st['median_dice']:.3f}, {hd95_text(st, st['n'])}")
    return "\n".join(lines)
