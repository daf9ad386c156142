"""Python API for scripts, the Slicer logic and the demo.

    from lungai.fusion.api import train_stage_model, predict_stage, synthetic_stage_model
    pipe = synthetic_stage_model("/tmp/stage_demo")            # synthetic cohort + model, ~seconds
    probs = predict_stage(pipe, ct_image=ct, mask_image=tumour_mask, patient_id="sample")
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from lungai.errors import agree, counted
from lungai.fusion.data import Cohort, infinite_status, load_cohort, orient_rna
from lungai.fusion.pipeline import FusionConfig, FusionPipeline


def train_stage_model(ehr=None, rna=None, ct=None, label: str = "stage", out_dir=None,
                      config: Optional[FusionConfig] = None, baselines=("logreg", "forest", "mlp"),
                      inner_folds: int = 3, progress=None, **data_kw) -> FusionPipeline:
    """Fit the fusion model on a whole cohort (files as for the CLI) and return it.  With ``out_dir``,
    lock it as ``lungai stage train`` does: the baselines are fitted too, the model with the best
    inner-CV macro-F1 is recorded as the selected one (:func:`lungai.fusion.cv.fit_selected`).  ``progress``: a
    :class:`lungai.progress.SubProgress` the training's steps are said on (the fits, their epochs)."""
    from lungai.fusion import model_io
    from lungai.fusion.cv import candidates, check_labels, fit_selected
    from lungai.fusion.synthetic import training_data

    if out_dir is not None:
        model_io.check_output_dir(Path(out_dir), "train", [ehr, rna, ct])   # before any work
    cohort = load_cohort(ehr, rna, ct, label=label, **data_kw)
    config = config or FusionConfig()
    if out_dir is None:
        return FusionPipeline(config, check_labels(cohort, 2)).fit(cohort, progress=progress)
    classes = check_labels(cohort, max(2, inner_folds))
    fitted, selection = fit_selected(cohort, classes, candidates(config, tuple(baselines), inner_folds > 1),
                                     inner_folds, config.seed, progress=progress)
    pipe = fitted.pop("fusion")
    with model_io.claimed(out_dir, "train", [ehr, rna, ct]):   # as stage train: a re-run replaces its own files
        model_io.save(out_dir, pipe, fitted, selection["selected"],
                      {"data": {"label": label, "drop": list(data_kw.get("drop_columns", []))},
                       **model_io.cohort_record(cohort), "selection": selection,
                       "training_data": training_data([ehr, rna, ct])})   # as stage train
    return pipe


def synthetic_stage_model(work_dir, n: int = 45, seed: int = 0, epochs: int = 60,
                          ct_shape=(64, 64, 32), ct_spacing=(5.0, 5.0, 5.0)) -> FusionPipeline:
    """Write a small synthetic multimodal cohort into ``work_dir`` and train a model on it (for demos)."""
    from lungai.fusion.synthetic import make_cohort

    paths = make_cohort(Path(work_dir), n=n, seed=seed, ct_shape=ct_shape, ct_spacing=ct_spacing)
    return train_stage_model(paths["ehr"], paths["rna"], paths["ct"], label="stage",
                             config=FusionConfig(epochs=epochs, patience=15, seed=seed))


def single_patient_cohort(patient_id: str, ehr_row: Optional[dict] = None, rna_row=None,
                          ct_image=None, mask_image=None, mask_label: Optional[int] = None) -> Cohort:
    """A one-patient cohort from values in memory (EHR dict, gene -> value mapping, SimpleITK images).
    ``mask_label``: the tumour's label in ``mask_image`` (a mask of several labels is refused without it)."""
    from lungai.fusion.labels import clean_missing
    from lungai.io.tables import never_smoker_pack_years, with_years_since_quitting

    # missing-value words ('Not Collected', '.') are missing, and a never-smoker's pack-years 0, as in a table
    # (lungai.fusion.data.load_ehr)
    ehr = pd.DataFrame([ehr_row or {}], index=pd.Index([patient_id], name="patient_id"))
    ehr = clean_missing(never_smoker_pack_years(ehr, f"the EHR values of {patient_id}"), categories=True)
    # the years since quitting smoking, as a table's (lungai.fusion.data.load_cohort); the quit year kept: a model
    # trained before has it as its feature
    ehr, _ = with_years_since_quitting(ehr, f"the EHR values of {patient_id}")
    rna = None
    if rna_row is not None:
        s = pd.Series(rna_row, dtype=float)
        rna = orient_rna(pd.DataFrame([s.to_numpy()], index=[patient_id], columns=list(s.index)), ids=[patient_id])
    ct = {}
    if ct_image is not None and mask_image is not None:
        from lungai.fusion.ct_crop import binary_mask
        from lungai.io import check_ct

        binary_mask(mask_image, label=mask_label)          # a label map of GTV + lungs is refused here, up front
        check_ct(ct_image, f"the CT image of {patient_id}")    # as read_ct for a file: NaN, spacing, HU
        ct = {patient_id: (ct_image, mask_image) if mask_label is None else (ct_image, mask_image, mask_label)}
    return Cohort([patient_id], ehr, rna, ct)


MODALITY_NAMES = {"ehr": "EHR", "rna": "RNA", "ct": "CT"}
NOT_COMPUTED = "not computed: the patient has none of the inputs the model was trained with"
NOT_FINITE = "not computed: the model gave no finite probability (a non-finite input value?)"


def model_inputs(model) -> dict:
    """What a fitted stage model (fusion pipeline or tabular baseline) learnt from:
    ``{"ehr": [its EHR columns], "rna": bool, "ct": bool}``.  The fusion network's CT branch counts only
    when training patients had a CT (else it was masked throughout training and never learnt)."""
    from lungai.fusion.ct_crop import IMAGE_FEATURES
    from lungai.fusion.pipeline import ct_untrained

    if isinstance(model, FusionPipeline):
        enc = model.ehr_encoder if "ehr" in model.modalities else None
        return {"ehr": list(enc.numeric + enc.categorical) if enc is not None else [],
                "rna": "rna" in model.modalities and model.genes is not None,
                "ct": "ct" in model.modalities and not ct_untrained(model.notes)}
    cols = list(model.encoder.numeric + model.encoder.categorical) if model.encoder is not None else []
    return {"ehr": [c for c in cols if c not in IMAGE_FEATURES], "rna": model.genes is not None,
            "ct": bool(model.use_image) and any(c in IMAGE_FEATURES for c in cols)}


def describe_inputs(needs: dict) -> str:
    """``model_inputs`` in words: 'EHR (columns a, b, ...), RNA' ."""
    parts = []
    if needs["ehr"]:
        cols = needs["ehr"]
        parts.append(f"EHR (at least one of its {len(cols)} columns: {', '.join(map(str, cols[:12]))}"
                     + (" ..." if len(cols) > 12 else "") + ")")
    if needs["rna"]:
        parts.append("RNA-seq")
    if needs["ct"]:
        parts.append("CT with a tumour mask")
    return ", ".join(parts) or "nothing usable"


def absent_inputs_text(model, absent) -> str:
    """What stands in for the inputs ``absent`` (their names, 'RNA', 'CT') that ``model`` was trained with and a
    patient lacks: the fusion network masks such a branch (its learnt masking token); a plain baseline (logistic
    regression, forest, MLP: one table) imputes those columns as for its training patients without them (EHR and
    image features: the training medians; genes: 0 with rna_available 0).  Before, the demo's report said "the other
    branches masked" whichever model predicted."""
    absent = list(absent)
    named = " and ".join(absent)
    if isinstance(model, FusionPipeline):
        return f"the model's {named} {agree(len(absent), 'branch', 'branches')} masked"
    return (f"the model's {named} {agree(len(absent), 'input', 'inputs')} imputed, as for its training patients "
            f"without {agree(len(absent), 'it', 'them')}")


def inputs_used_text(model, used: dict) -> str:
    """The inputs a prediction of ``model`` used (``used``: {"ehr" / "rna" / "ct": bool}, a :func:`predict_frame`
    row's flags) in words, with what stood in for those the model was trained with and the patient lacked
    (:func:`absent_inputs_text`): 'CT + EHR (the model's RNA branch masked)'."""
    needs = model_inputs(model)
    order = ("ct", "ehr", "rna")
    names = " + ".join(MODALITY_NAMES[m] for m in order if used.get(m)) or "none"
    absent = [MODALITY_NAMES[m] for m in order if needs[m] and not used.get(m)]
    return names + (f" ({absent_inputs_text(model, absent)})" if absent else "")


def ehr_header_renames(model, ehr: pd.DataFrame, warn: bool = False) -> dict:
    """{header of ``ehr``: the model's EHR column it is} for the model's columns spelled there with another case /
    spacing ('Histology' for the model's 'Histology ', :meth:`lungai.fusion.preprocess.EHREncoder.match_columns`);
    ``warn``: say so (a warning)."""
    import warnings

    from lungai.errors import InputNote

    enc = model.ehr_encoder if isinstance(model, FusionPipeline) else model.encoder
    renames = enc.match_columns(ehr) if enc is not None and ehr is not None else {}
    if renames and warn:     # a note on the input: "warning: ..." on the console, as rp's (lungai.rp.prepare)
        warnings.warn(InputNote("EHR " + ", ".join(f"{a!r} read as the model's column {b!r}" for a, b in renames.items())
                                + " (case / spaces differ)"))
    return renames


def absent_ehr_columns(model, ehr: pd.DataFrame) -> list:
    """The model's EHR columns that ``ehr`` lacks, under their own name and under another case / spacing
    (:func:`ehr_header_renames`): every patient's value of these is missing (imputed); none without an EHR table
    (no column at all: the EHR input is not there, :func:`usable_inputs`)."""
    enc = model.ehr_encoder if isinstance(model, FusionPipeline) else model.encoder
    if enc is None or ehr is None or ehr.shape[1] == 0:
        return []
    renamed = set(ehr_header_renames(model, ehr).values())
    return [c for c in model_inputs(model)["ehr"] if c not in ehr.columns and c not in renamed]


def _loose_key(text) -> str:
    """``text`` with case, spaces and punctuation ignored ('Pack Years', 'pack_years', 'PackYears' -> 'packyears')."""
    import re

    return re.sub(r"[\W_]+", "", str(text).casefold())


def look_alike_headers(absent, headers, table: Optional[pd.DataFrame] = None) -> dict:
    """{model column of ``absent``: a header of ``headers`` (the table's, none of them a model column) that looks like
    it} - the same name with case, spaces and punctuation ignored ('pack_years' for 'Pack Years'), else nearly the same
    letters (difflib ratio >= 0.85: 'Weight lbs' for 'Weight (lbs)'), else, for a T / N / M column, a header naming
    the same category in another common spelling (:func:`lungai.fusion.labels.tnm_header`: 'pT', 'AJCC Pathologic T',
    'T stage' for 'Pathological T stage'; one of the same kind - pathological / clinical - first, 'cT' after) whose
    values, where ``table`` (the table of ``headers``) is given, read as that category ('T2a', 'pN0': not a
    prothrombin time 'PT'); each header named for one column at most.  Only named in :func:`absent_ehr_text`'s
    warning and :func:`lungai.fusion.labels.derive_stage`'s refusal - never read as that column: it may be another
    measure."""
    import difflib

    from lungai.fusion.labels import reads_as_tnm, tnm_header

    free = {}
    for h in headers:
        free.setdefault(_loose_key(h), str(h))
    originals = {str(h): h for h in headers}
    hints = {}
    for col in absent:
        key = _loose_key(col)
        hit = key if key in free else next(iter(difflib.get_close_matches(key, list(free), n=1, cutoff=0.85)), None)
        if hit and key:
            hints[col] = free.pop(hit)
            continue
        want = tnm_header(col)
        if want is None:
            continue
        ranked = []
        for k, h in free.items():
            got = tnm_header(h)
            if got is None or got[0] != want[0]:
                continue
            if table is not None and originals.get(h) in table.columns \
                    and not reads_as_tnm(table[originals[h]], want[0]):
                continue
            ranked.append((0 if got[1] == want[1] else 1 if not got[1] or not want[1] else 2, len(ranked), k))
        if ranked:
            hints[col] = free.pop(min(ranked)[2])
    return hints


def absent_ehr_text(absent: list, hints: Optional[dict] = None) -> str:
    """The warning on the model's EHR columns the table lacks (``absent``), naming the first 12, with the fix: give
    the table these columns under the model's names; ``hints`` (:func:`look_alike_headers`): a header of the table
    that looks like one of them, to rename if it is that column."""
    from lungai.fusion.labels import tnm_kind_note
    from lungai.io.tables import QUIT_YEARS

    n = len(absent)
    named = ", ".join(map(repr, absent[:12])) + (" ..." if n > 12 else "")
    hints = {c: h for c, h in (hints or {}).items() if c in absent}
    return (f"EHR {agree(n, 'column', 'columns')} of the model not in the EHR table: {named} - treated "
            "as missing (imputed) for every patient"
            + "".join(f"; the table's {h!r} looks like {c!r}{tnm_kind_note(c, h)}: rename it {c!r} if it is that "
                      "column" for c, h in hints.items())
            + f"; give the table {agree(n, 'this column', 'these columns')} under the model's "
              f"{agree(n, 'name', 'names')} (as at training) for the patients' values to be used"
            + (f" ({QUIT_YEARS!r} is computed from the table's quit-year column, smoking status and a date column - "
               "'CT Date' or 'Date of Diagnosis', as at training: give the table these)" if QUIT_YEARS in absent
               else ""))


def usable_inputs(model, cohort: Cohort) -> tuple:
    """(the cohort reduced to what ``model`` can use, per-patient availability of it).

    The rule, one place for the demo, ``lungai stage predict`` and the Slicer panel: a modality is used for a
    patient only if the model was trained with it AND the patient has it - EHR: at least one of the model's own
    EHR columns has a value (other columns of the table do not count); RNA: the patient is in the RNA matrix;
    CT: a CT with a tumour mask, and only if the model's CT input was trained (:func:`model_inputs`)."""
    needs = model_inputs(model)
    ids = list(cohort.ids)
    absent = absent_ehr_columns(model, cohort.ehr)      # said in the patients' notes (predict_with_notes)
    renames = ehr_header_renames(model, cohort.ehr, warn=True)
    # a header of the table that looks like an absent column ('pack_years' for 'Pack Years'): named in the warning
    hints = look_alike_headers(absent, [h for h in cohort.ehr.columns if h not in renames
                                        and h not in set(needs["ehr"])], cohort.ehr) if absent else {}
    ehr = cohort.ehr.rename(columns=renames)
    ehr = ehr.reindex(index=ids, columns=needs["ehr"])
    reduced = Cohort(ids, ehr, cohort.rna if needs["rna"] else None, dict(cohort.ct) if needs["ct"] else {},
                     cohort.labels, dict(cohort.report, ehr_absent=absent, ehr_absent_hints=hints))
    return reduced, reduced.availability()


def predict_with_notes(model, cohort: Cohort) -> tuple:
    """(``model.predict_proba(cohort)``, {patient id: [notes]}): the notes of the EHR values that are not levels the
    model was trained with (:class:`lungai.fusion.preprocess.UnseenLevelWarning`: read as a level differing only by
    case / spaces, or treated as missing), and of a tumour partly outside the fusion network's CT crop
    (:func:`lungai.fusion.ct_crop.crop_cut_note`), for the per-patient ``notes`` column the panel shows.  The warnings
    themselves are warned again, for the console."""
    import warnings

    from lungai.fusion.preprocess import UnseenLevelWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proba = model.predict_proba(cohort)
    notes: dict = {}
    absent = cohort.report.get("ehr_absent") or []     # the model's EHR columns the table lacks (usable_inputs)
    if absent:
        from lungai.errors import InputNote

        text = absent_ehr_text(absent, cohort.report.get("ehr_absent_hints"))
        warnings.warn(InputNote(text))
        for pid, has_ehr in cohort.availability()["ehr"].items():   # patients predicted with their EHR
            if has_ehr:
                notes.setdefault(str(pid), []).append(text)
    for w in caught:
        if isinstance(w.message, UnseenLevelWarning):
            for pid, texts in w.message.by_patient.items():
                notes.setdefault(str(pid), []).extend(t for t in texts if t not in notes.get(str(pid), []))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if isinstance(model, FusionPipeline) and "ct" in model.modalities and cohort.ct:
        from lungai.errors import InputNote
        from lungai.fusion.ct_crop import crop_cut_note
        from lungai.fusion.pipeline import crop_outside_share

        cut = {}
        for pid, entry in cohort.ct.items():       # a large tumour is partly outside the crop the CNN sees: said
            share = crop_outside_share(*entry)
            if crop_cut_note(share):
                notes.setdefault(str(pid), []).append(crop_cut_note(share))
                cut[str(pid)] = share
        if cut:
            whose = agree(len(cut), "patient's tumour lies", "patients' tumours lie")
            head = f"{len(cut)} {whose} partly outside the CT crop the network sees"
            tail = f" - {agree(len(cut), 'its', 'their')} CT input and Grad-CAM cover only part of the tumour"
            warnings.warn(InputNote(   # its form without the IDs: the patients counted (QA ids65: before, none)
                f"{head} (share outside): "
                + ", ".join(f"{p} {100 * v:.0f} %" for p, v in list(cut.items())[:10]) + (" ..." if len(cut) > 10 else "")
                + tail, without_ids=head + tail))
    return proba, notes


def ehr_numeric_text(model, cohort: Cohort) -> dict:
    """{patient id: [(column, value)]}: text in the model's numeric EHR columns ('12,8', '7O') of ``cohort`` (reduced
    to the model's inputs, :func:`usable_inputs`); such a patient gets no stage (:meth:`EHREncoder.numeric_text`)."""
    enc = model.ehr_encoder if isinstance(model, FusionPipeline) else model.encoder
    if enc is None or cohort.ehr is None or cohort.ehr.shape[1] == 0:
        return {}
    return enc.numeric_text(cohort.ehr)


def predict_frame(name: str, model, cohort: Cohort) -> pd.DataFrame:
    """Per patient: the modalities used (``ehr``/``rna``/``ct``, :func:`usable_inputs`), ``model``, ``p_<class>``,
    ``predicted``, ``status`` and ``notes`` (EHR values not seen in training, :func:`predict_with_notes`).  A patient
    with no usable modality gets no probabilities (NaN, empty ``predicted``) and a ``status`` that says so, never the
    model's prior dressed up as a prediction; so does one whose probabilities are not finite (:data:`NOT_FINITE`), or
    whose RNA profile holds an infinite value (the cohort's ``rna_infinite``: status naming gene and value)."""
    reduced, av = usable_inputs(model, cohort)
    textual = ehr_numeric_text(model, reduced)
    if textual:     # no stage read off an imputed value the table does give ('12,8'): said, the others predicted
        import warnings

        from lungai.errors import InputNote
        from lungai.fusion.preprocess import NUMERIC_TEXT_FIX, numeric_text_problem

        head = (f"{counted(len(textual), 'patient')} {agree(len(textual), 'gets', 'get')} no stage: text in a numeric "
                "EHR column of the model: ")
        more = (" ..." if len(textual) > 10 else "") + f" - {NUMERIC_TEXT_FIX}"
        shown = list(textual.items())[:10]
        warnings.warn(InputNote(   # its form without the IDs: the cells' problems alone (QA ids65: before, none)
            head + "; ".join(f"{pid}: {numeric_text_problem(items)}" for pid, items in shown) + more,
            without_ids=head + "; ".join(dict.fromkeys(numeric_text_problem(items) for _, items in shown)) + more))
        ehr = reduced.ehr.copy()        # their text cells missing here, so the encoder does not say "imputed" too
        for pid, items in textual.items():
            for col, _ in items:
                ehr.loc[pid, col] = np.nan
        reduced = Cohort(reduced.ids, ehr, reduced.rna, reduced.ct, reduced.labels, reduced.report)
    proba, notes = predict_with_notes(model, reduced)
    df = av.reset_index()
    df["model"] = name
    for k, c in enumerate(model.classes):
        df[f"p_{c}"] = proba[:, k]
    df["predicted"] = [model.classes[k] for k in np.argmax(proba, axis=1)]
    none = ~av.any(axis=1).to_numpy()
    # a probability that is not a number (a non-finite input the loaders missed) is never written as "computed"
    bad = ~none & ~np.isfinite(np.asarray(proba, dtype=float)).all(axis=1)
    df["status"] = np.where(none, NOT_COMPUTED, np.where(bad, NOT_FINITE, "computed"))
    # a patient whose RNA profile holds an infinite value (lungai.fusion.data.load_cohort left it out): no stage
    infinite = cohort.report.get("rna_infinite") or {}
    inf = df["patient_id"].isin(list(infinite)).to_numpy()
    if inf.any():
        df["status"] = df["status"].astype(object)
        df.loc[inf, "status"] = [infinite_status(infinite[p]) for p in df.loc[inf, "patient_id"]]
    text = df["patient_id"].astype(str).isin(list(textual)).to_numpy()
    if text.any():
        from lungai.fusion.preprocess import numeric_text_status

        df["status"] = df["status"].astype(object)
        df.loc[text, "status"] = [numeric_text_status(textual[str(p)]) for p in df.loc[text, "patient_id"]]
    df["notes"] = ["; ".join(notes.get(str(pid), [])) for pid in df["patient_id"]]
    none = none | bad | inf | text
    if none.any():
        df.loc[none, [f"p_{c}" for c in model.classes]] = np.nan
        df["predicted"] = df["predicted"].astype(object)
        df.loc[none, "predicted"] = None
    return df


def mark_training_patients(df: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """``df`` (:func:`predict_frame`) with a ``training_patient`` column (True / False; empty when the model records
    no training patients) and :data:`lungai.fusion.model_io.IN_SAMPLE_NOTE` in the ``notes`` of each patient the
    locked model (``meta``) was trained on, said in one :class:`lungai.errors.InputNote` (``stage predict``, the
    Python API).  Before, such a patient's in-sample prediction read like one of a new patient."""
    import warnings

    from lungai.fusion.model_io import training_patient_flags

    ids = [str(p) for p in df["patient_id"]]
    flags, notes, warning = training_patient_flags(meta, ids)
    df = df.copy()
    df.insert(df.columns.get_loc("status"), "training_patient", flags)
    df["notes"] = ["; ".join(filter(None, [n, notes.get(p, "")])) for n, p in zip(df["notes"], ids)]
    if warning:      # an InputNote, with its form without the IDs
        warnings.warn(warning)
    return df


def predict_stage(model: Union[str, Path, FusionPipeline], ehr=None, rna=None, ct=None, *,
                  patient_id: str = "patient", ehr_row: Optional[dict] = None, rna_row=None,
                  ct_image=None, mask_image=None, mask_label: Optional[int] = None, ct_label: Optional[int] = None,
                  use: Optional[str] = None, max_missing_genes: float = 0.5) -> pd.DataFrame:
    """Class probabilities per patient: from files (``ehr``/``rna``/``ct`` manifest) or from one
    patient's values in memory.  ``model`` is a locked-model folder (predicting with its selected
    model, or ``use``) or a fitted pipeline; the ``model`` column says which one.  Only the inputs the model
    was trained with are used (:func:`usable_inputs`; the ``ehr``/``rna``/``ct`` columns say which);
    a patient with none of them gets no probabilities (``status``).  The tumour mask must hold one label, or the
    tumour's label is given: ``mask_label`` for ``mask_image``, ``ct_label`` (or the manifest's ``label`` column)
    for the ``ct`` manifest's masks (:func:`lungai.fusion.ct_crop.binary_mask`).  The RNA matrix (or ``rna_row``) is
    checked as ``stage predict`` checks it (:func:`lungai.fusion.model_io.check_new_rna`): more than
    ``max_missing_genes`` of the model's genes missing, or values on another scale than the training matrix for
    most patients, is refused; fewer is a warning."""
    from lungai.fusion import model_io

    if isinstance(model, FusionPipeline):
        name, pipe = "fusion", model
    else:
        pipe, baselines, meta = model_io.load(model)
        name, pipe = model_io.chosen(pipe, baselines, meta, use=use)
    if ehr is not None or rna is not None or ct is not None:
        cohort = load_cohort(ehr, rna, ct, require_label=False, ct_label=ct_label)
    else:
        cohort = single_patient_cohort(patient_id, ehr_row, rna_row, ct_image, mask_image, mask_label)
    # the checks of stage predict: a matrix lacking most genes, or on another scale, is refused; gaps are said
    model_io.check_new_rna(pipe, cohort.rna, max_missing_genes)
    df = predict_frame(name, pipe, cohort)
    # a locked model's own training patients are marked (in-sample); a bare pipeline records none
    return df if isinstance(model, FusionPipeline) else mark_training_patients(df, meta)
