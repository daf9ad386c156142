"""Dosimetric features of one case (the column names are a contract, see docs/radiomics.md).

Lung metrics use the lungs minus the GTV, as in radiation-pneumonitis studies, with the lungs as
RT defines them (``lungai.lungs.RT_LUNG_DEFINITION``: the RTSTRUCT lungs or ``lungai lungs``):
``dose_mld_gy`` (mean lung dose), ``dose_v5_pct`` .. ``dose_v30_pct`` (% of lung volume receiving
>= 5/13/20/30 Gy), ``dose_d2_gy``/``dose_d50_gy``/``dose_d98_gy`` (dose to the hottest 2/50/98 % of
the lungs); GTV: ``dose_gtv_mean_gy``/``_min_gy``/``_max_gy`` (NaN without a GTV).  Other V levels
(``lungai dose-features --v-levels``) give ``dose_v<level>_pct`` columns instead (:func:`columns`).

The written dose.csv (``lungai dose-features``, ``lungai demo``) ends with ``masks``: which lungs and GTV the metrics
were computed on (:func:`masks_text`; not a ``dose_`` column, so never taken for a dosimetric feature); ``lungai
dicom-export`` repeats it in the SR's dose group.  Then ``lungs_cut`` (:func:`lungs_cut`): '' or why the metrics are of
a partial lung (the lung mask cut by the scan's first / last slice); no ``dose_`` prefix either.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lungai.dose.dvh import d_gy, mean_dose, v_percent
from lungai.dose.levels import V_LEVELS, parse_v_levels, v_column  # noqa: F401 - parse_v_levels named here too
from lungai.dose.resample import check_coverage, dose_on_grid
from lungai.errors import InputError
from lungai.io import on_grid
from lungai.io.geometry import bounding_box
from lungai.volume import mask_volume_ml

D_LEVELS = (2, 50, 98)


def columns(v_levels=V_LEVELS) -> list[str]:
    """The feature row's columns with the V levels ``v_levels`` (Gy)."""
    return (["case", "dose_mld_gy"] + [v_column(v) for v in v_levels] + [f"dose_d{d}_gy" for d in D_LEVELS]
            + ["dose_gtv_mean_gy", "dose_gtv_min_gy", "dose_gtv_max_gy"])


COLUMNS = columns()
MASKS_COLUMN = "masks"      # the masks of the metrics (masks_text); no dose_ prefix: not a feature (lungai.rp.columns)
LUNGS_CUT_COLUMN = "lungs_cut"   # '' or why the dose metrics are of a partial lung (lungs_cut); no dose_ prefix either
# '' or the RTDOSE's notes that qualify the metrics (DoseType EFFECTIVE; an RTDOSE not checked against a CT that is not
# DICOM), NOTES_SEPARATOR between them (notes_text); no dose_ prefix either.  QA (clidose58): dose.csv of an EFFECTIVE
# RTDOSE on LUNG1-003 had no trace of it, and lungai rp predict on it said nothing, while Multimodal Predict's risk from
# Lung Radiomics' table of the same dose said the note (lungai.rp.prepare.recorded_notes_warnings repeats them)
NOTES_COLUMN = "rtdose_notes"
NOTES_SEPARATOR = " | "
# the lungs cut by the scan's first / last slice (lungs_cut): the dose metrics are flagged as of a partial lung when the
# lung volume estimated left off is at least LUNGS_CUT_FRACTION of the lungs (with the part in view); from
# LUNGS_EDGE_CM2 of lung on an end slice (beyond a few voxels) below that only a note.  The volume left off beyond an end
# slice is estimated as a paraboloid cap (a lung's apex / base dome: cross-section growing linearly from its tip), its
# growth rate from the end slice's area to the lung's largest cross-section (lungs_cut_estimate).  A real planning CT
# often starts at the apex or ends at the costophrenic recesses with a few to tens of cm² of lung on its end slice:
# measured, LUNG1-002 cut at the apex (17 cm² on the end slice) lost 2.3 ml of 3798 ml (0.06 %; MLD 9.840 -> 9.846 Gy),
# no change of the MLD / Vx worth flagging; a series that stops mid-lung or above the base shows tens to hundreds of cm²
# there and loses percents (QA: 40 slices of LUNG1-003, MLD 15.2 vs 11.6 Gy)
LUNGS_CUT_FRACTION = 0.01
LUNGS_EDGE_CM2 = 1.0
# the revision of the lungs_cut rule, recorded in a cohort patient's inputs (lungai.dicom.cohort): a result of an older
# lungai (no check, or another rule) is redone.  1: >= 10 cm² on an end slice (082e117); 2: the estimated volume cut off
LUNGS_CUT_REVISION = 2
AUTOMATIC_LUNGS = "lungai automatic lungs (lungai lungs)"
AUTOMATIC_TUMOUR = "lungai automatic tumour (lungai segment)"


def masks_text(lungs: str, gtv: str | None, envelope: str | None = None, envelope_problem: str | None = None,
               lungs_minus_gtv: bool = False, gtv_dose: str | None = None) -> str:
    """The masks the dose metrics were computed on, as dose.csv's ``masks`` column and the DICOM SR say it:
    ``lungs: <lungs>; minus GTV: <gtv>``, e.g. ``lungs: RTSTRUCT structure Lung_R + Lung_L (RS.dcm, as
    contoured); minus GTV: RTSTRUCT structure GTV-1 (RS.dcm, as contoured)`` or ``lungs: lungai automatic lungs
    (lungai lungs); minus GTV: lungai automatic tumour (lungai segment)``; without a GTV but with the tumour's motion
    envelope subtracted (``envelope``, :func:`lungai.dicom.masks.rtstruct_dose_masks`): ``lungs: ...; no GTV, minus
    the tumour's motion envelope: RTSTRUCT structure iGTV (RS.dcm, as contoured)``; an envelope that could not be
    read (``envelope_problem``, :func:`lungai.dicom.masks.motion_envelope_mask`'s why) is said not subtracted:
    ``lungs: ...; no GTV, the tumour's motion envelope 'iGTV' cannot be read (...): not subtracted, the lungs include
    the tumour``.  ``lungs_minus_gtv``: the lungs are a 'Lungs-GTV' structure, the lungs minus the GTV as contoured
    (:func:`lungai.dicom.masks.lungs_minus_gtv_structures`): without a GTV ``lungs: RTSTRUCT structure Lungs-GTV (...);
    no GTV structure (the lung structure excludes the GTV as contoured)`` - not "the lungs include the tumour".
    ``gtv_dose``: the GTV of the GTV dose when it is not all of ``gtv`` (``dose-features --rtstruct RS --gtv
    role:gtv_primary``: the lungs minus every GTV, the GTV dose of one): ``...; minus GTV: RTSTRUCT structure GTV-1 +
    gtv-2 (RS.dcm, as contoured); GTV dose: RTSTRUCT structure GTV-1 (RS.dcm, as contoured)``."""
    if gtv:
        return f"lungs: {lungs}; minus GTV: {gtv}" + (f"; GTV dose: {gtv_dose}" if gtv_dose else "")
    if envelope:
        return f"lungs: {lungs}; no GTV, minus the tumour's motion envelope: {envelope}"
    if lungs_minus_gtv:
        return (f"lungs: {lungs}; no GTV structure (the lung structure excludes the GTV as contoured)"
                + (f"; {envelope_problem}: not subtracted" if envelope_problem else ""))
    if envelope_problem:
        return f"lungs: {lungs}; no GTV, {envelope_problem}: not subtracted, the lungs include the tumour"
    return f"lungs: {lungs}; no GTV (the lungs include the tumour)"


def lungs_cut_estimate(areas, spacing_z: float) -> list[tuple[int, float, float]]:
    """For the lung cross-sections ``areas`` (cm², one per slice in storage order, slices ``spacing_z`` mm apart): per
    end slice with lung on it, (index 0 / n-1, its area cm², the lung volume ml estimated beyond it; inf when the
    lungs are not narrowing towards that end).  The part left off is taken as a paraboloid cap whose cross-section
    shrinks from the end slice's area ``a`` at the rate it grows from there to the largest one ``A`` (``d`` cm
    further in): cap height ``h = d a / (A - a)``, volume ``a h / 2``."""
    areas = [float(a) for a in areas]
    n = len(areas)
    big = max(areas, default=0.0)
    out = []
    for k in sorted({0, n - 1}) if n else []:
        a = areas[k]
        if a < LUNGS_EDGE_CM2:
            continue
        peak = [i for i, v in enumerate(areas) if v == big]
        d = min(abs(i - k) for i in peak) * spacing_z / 10.0          # cm from the end slice to the largest section
        ml = a * (d * a / (big - a)) / 2.0 if big > a and d > 0 else float("inf")
        out.append((k, a, ml))
    return out


def lungs_cut(lungs: sitk.Image) -> tuple[str, str]:
    """(flag, note) of a lung mask (any label > 0, on the CT grid) cut by the scan's first / last slice: the dose
    metrics are then of the part of the lungs in view.  ``flag``: '' or, when the lung volume estimated left off
    (:func:`lungs_cut_estimate`) is at least :data:`LUNGS_CUT_FRACTION` of the lungs, e.g. "lungs cut at the bottom of
    the scan: 89 cm² of lung on the first slice (~332 ml, ~10 % of the lungs estimated left off); MLD / Vx / Dx of
    the part in view ... - export the CT series that covers both lungs (or drop this row)"; ``note``: the flag, or for a
    smaller cut (from :data:`LUNGS_EDGE_CM2` on an end slice) that the dose metrics are kept as whole-lung; '' when the
    lungs are inside the scan.  One rule for ``lungai dose-features`` and ``lungai cohort`` (the ``lungs_cut``
    column)."""
    arr = sitk.GetArrayViewFromImage(lungs) > 0
    n = arr.shape[0]
    sx, sy, sz = lungs.GetSpacing()[:3] if lungs.GetDimension() == 3 else (*lungs.GetSpacing(), 1.0)
    z = [lungs.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(k)))[2] for k in (0, n - 1)]
    areas = arr.reshape(n, -1).sum(axis=1) * sx * sy / 100.0
    ends = []   # (top / bottom, first / last, area cm², ml estimated left off)
    for k, area, ml in lungs_cut_estimate(areas, sz):
        top = (z[0] >= z[1]) == (k == 0) if n > 1 else True
        ends.append(("top" if top else "bottom", "first" if k == 0 else "last", area, ml))
    if not ends:
        return "", ""
    ends.sort(key=lambda e: e[0] != "top")     # the top first: "top and bottom"
    where = " and ".join(e[0] for e in ends)
    areas_text = ", ".join(f"{a:.0f} cm² of lung on the {w} slice" for _, w, a, _ in ends)
    lost = sum(e[3] for e in ends)
    in_view = mask_volume_ml(arr, (sx, sy, sz))
    fraction = lost / (in_view + lost) if lost != float("inf") else 1.0
    pct = 100 * fraction
    estimate = ("the lungs still widening there: cut mid-lung" if lost == float("inf") else
                f"~{lost:.0f} ml, ~{pct:.0f} % of the lungs estimated left off" if pct >= 10 else
                f"~{lost:.0f} ml, ~{pct:.1f} % of the lungs estimated left off" if pct >= 1 else
                f"~{lost:.1f} ml, ~{pct:.2f} % of the lungs estimated left off")
    if fraction >= LUNGS_CUT_FRACTION:
        flag = (f"lungs cut at the {where} of the scan: {areas_text} ({estimate}); MLD / Vx / Dx of the part in view, "
                "not of the whole lungs - export the CT series that covers both lungs (or drop this row)")
        return flag, flag
    return "", (f"lungs touch the {where} of the scan: {areas_text} ({estimate}; under {100 * LUNGS_CUT_FRACTION:g} %: "
                "the dose metrics stand for the whole lungs)")


def segments_text(names, segmentation: str | None = None) -> str:
    """Segments of a Slicer segmentation as :func:`masks_text` names them (the panel's masks, given to
    ``lungai dose-features`` as ``--lungs-name`` / ``--gtv-name``): e.g. ``Slicer segments Right lung + Left lung
    (segmentation 'CT segmentation')``."""
    names = list(names)
    return (f"Slicer segment{'s' if len(names) > 1 else ''} {' + '.join(names)}"
            + (f" (segmentation {segmentation!r})" if segmentation else ""))


def output_columns(v_levels=V_LEVELS) -> list[str]:
    """The columns of a written dose.csv: :func:`columns` then :data:`MASKS_COLUMN`, :data:`LUNGS_CUT_COLUMN`,
    :data:`NOTES_COLUMN`."""
    return columns(v_levels) + [MASKS_COLUMN, LUNGS_CUT_COLUMN, NOTES_COLUMN]


def notes_text(notes) -> str:
    """The :data:`NOTES_COLUMN` cell of ``notes`` (each once, in order; '' for none)."""
    return NOTES_SEPARATOR.join(dict.fromkeys(str(n).strip() for n in notes if n and str(n).strip()))


def record_notes(dose_csv, notes) -> None:
    """Write ``notes`` into the :data:`NOTES_COLUMN` of every row of a written ``dose_csv`` (its other cells as they
    are; nothing to write: unchanged): the Lung Radiomics panel's RTDOSE notes (:func:`lungai.scene.dicom.
    check_dose_node_matches_ct`), which the dose's NRRD copy it gives ``lungai dose-features`` cannot carry."""
    import pandas as pd

    from lungai.radiomics.csv_output import write_csv

    text = notes_text(notes)
    if not text:
        return
    df = pd.read_csv(dose_csv, dtype=str, keep_default_na=False)
    df[NOTES_COLUMN] = text
    write_csv(df, dose_csv)


def notes_of(cell) -> list[str]:
    """The notes of a :data:`NOTES_COLUMN` cell (:func:`notes_text`); [] for an empty cell or a word for "no value"
    (NaN, "NA": :func:`lungai.rp.columns.is_missing_word`)."""
    from lungai.rp.columns import is_missing_word

    if cell is None or is_missing_word(cell):
        return []
    return [n.strip() for n in str(cell).split(NOTES_SEPARATOR.strip()) if n.strip()]


def features_from_arrays(dose_kji: np.ndarray, lungs: np.ndarray, gtv: np.ndarray | None = None,
                         case: str = "case", v_levels=V_LEVELS, grid=None) -> dict:
    """The feature row from a dose array on the mask grid and boolean masks (V at ``v_levels`` Gy).  ``grid``: (the
    dose image, the CT, the box of the CT the arrays are of or None), for a refusal of a dose grid not covering the
    lungs or the GTV that says where (:func:`lungai.dose.resample.check_coverage`)."""
    lungs = lungs.astype(bool)
    gtv = None if gtv is None else gtv.astype(bool)
    region = lungs & ~gtv if gtv is not None else lungs
    if not region.any():
        raise InputError("the lung mask minus the GTV is empty" if gtv is not None else "the lung mask is empty",
                         "give a lung mask (label > 0) on the CT grid")
    check_coverage(dose_kji, region, "lungs", *(grid or ()))
    d = dose_kji[region]
    row = {"case": case, "dose_mld_gy": mean_dose(d)}
    row.update({v_column(v): v_percent(d, v) for v in v_levels})
    row.update({f"dose_d{p}_gy": d_gy(d, p) for p in D_LEVELS})
    if gtv is not None and gtv.any():
        check_coverage(dose_kji, gtv, "GTV", *(grid or ()))
        g = dose_kji[gtv]
        row.update(dose_gtv_mean_gy=float(g.mean()), dose_gtv_min_gy=float(g.min()), dose_gtv_max_gy=float(g.max()))
    elif gtv is not None:
        raise InputError("the GTV mask is empty", "give a GTV mask with the tumour voxels > 0, or leave --gtv out")
    else:
        row.update(dose_gtv_mean_gy=np.nan, dose_gtv_min_gy=np.nan, dose_gtv_max_gy=np.nan)
    return row


def lungs_minus_envelope(lungs: sitk.Image, envelopes, names=None) -> sitk.Image:
    """The lungs of the dose metrics when there is no GTV but the tumour's motion envelope (an iGTV / ITV, a GTV_MIP:
    :func:`lungai.dicom.roles.motion_envelopes`, :func:`lungai.segment_roles.dose_envelope_segments`): the lungs (any
    label > 0; a label map keeps its labels) minus the union of ``envelopes`` (masks on the lungs' grid, label > 0)
    ("Lungs - iGTV", as clinics report the MLD of a 4D-CT plan).  One rule for ``dose-features`` (``--rtstruct`` or ``--envelope``),
    ``demo --rtstruct``, ``cohort`` and the Lung Radiomics panel.
    An empty envelope (no voxel > 0: ``names``, what each is, say which) is refused rather than taken as subtracted
    (the masks column would say "minus the tumour's motion envelope" of the whole lungs); so are lungs the envelope
    empties.  The subtraction is :func:`lungai.lungs.check.lungs_minus`, ``lungai lungs --gtv``'s too."""
    from lungai.lungs.check import lungs_minus

    return lungs_minus(lungs, envelopes, names, what="motion envelope",
                       empty_fix="give the iGTV / ITV mask with the envelope's voxels > 0 on the CT grid, or leave "
                                 "--envelope out (the dose metrics of the whole lungs)",
                       emptied_fix="check the lung and motion envelope masks: the envelope must not cover the whole "
                                   "lungs")


def dose_features(dose: sitk.Image, ct: sitk.Image, lungs: sitk.Image, gtv: sitk.Image | None = None,
                  case: str = "case", v_levels=V_LEVELS, other_gtvs: sitk.Image | None = None) -> dict:
    """Resample ``dose`` onto the CT grid and compute the features (lungs = any label > 0).  Only the box round the
    lungs and the GTV is resampled: the features see no other voxel.  ``other_gtvs``: GTVs (label > 0) subtracted
    from the lungs too but not in the GTV dose (``dose-features --rtstruct RS --gtv role:gtv_primary``: the GTV dose
    of the primary, the lungs minus every GTV)."""
    lungs = on_grid(ct, lungs, "lung mask")          # the same voxels in another stored order: reoriented
    if gtv is not None:
        gtv = on_grid(ct, gtv, "GTV mask")
    lung_arr = sitk.GetArrayViewFromImage(lungs) > 0
    if other_gtvs is not None:
        lung_arr &= ~(sitk.GetArrayFromImage(on_grid(ct, other_gtvs, "GTV mask")) > 0)
    gtv_arr = None if gtv is None else sitk.GetArrayViewFromImage(gtv) > 0
    box = bounding_box(lung_arr if gtv_arr is None else lung_arr | gtv_arr)
    if box is not None:        # (empty masks: features_from_arrays says so)
        (x0, y0, z0), (x1, y1, z1) = box
        crop = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
        lung_arr = lung_arr[crop]
        gtv_arr = None if gtv_arr is None else gtv_arr[crop]
    dose_kji = dose_on_grid(dose, ct, box)
    return features_from_arrays(dose_kji, lung_arr, gtv_arr, case, v_levels, grid=(dose, ct, box))
