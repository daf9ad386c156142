"""Turn a user table into the model's feature matrix (shared by train, validate, predict)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lungai.errors import InputError, PatientsText, agree, counted
from lungai.radiomics.settings import (SETTINGS_COLUMN, current_id, equivalent_ids, ignored_lung_spacing_ids,
                                      is_legacy_settings, lung_grid_revision, read_sidecars, revision_reasons,
                                      settings_differences, settings_id, sidecar_path, value_revisions,
                                      value_settings)
from lungai.rp.checks import check_categories, numeric_features
from lungai.rp.columns import LEGACY_CATEGORY_RULES, ColumnRoles, is_missing_word, require_columns


def feature_summary(X: pd.DataFrame, categorical: list[str]) -> dict:
    """Per-feature summary for the model card (median/IQR and range, or category counts; missing %)."""
    out = {}
    for col in X.columns:
        s = X[col]
        entry = {"missing_pct": round(float(s.isna().mean() * 100), 2)}
        if col in categorical:
            entry["counts"] = {str(k): int(v) for k, v in s.value_counts().items()}
        else:
            q1, med, q3 = np.nanpercentile(s.to_numpy(float), [25, 50, 75])
            entry.update(median=float(med), q1=float(q1), q3=float(q3), min=float(np.nanmin(s)),
                         max=float(np.nanmax(s)))
        out[col] = entry
    return out


def read_as_model_headers(df: pd.DataFrame, features, what: str) -> pd.DataFrame:
    """``df`` with each header that is one of the model's ``features`` spelled with another case / spacing
    ('Histology' for the model's 'Histology ') renamed to the model's name, with a warning
    (:func:`lungai.io.tables.match_headers`, as ``lungai stage`` reads EHR headers; two such headers for one feature
    are refused).  ``df`` itself is not changed."""
    import warnings  # noqa: PLC0415

    from lungai.errors import InputNote  # noqa: PLC0415
    from lungai.io.tables import match_headers  # noqa: PLC0415

    renames = match_headers(features, df.columns, what)
    if not renames:
        return df
    warnings.warn(InputNote(f"{what}: " + ", ".join(f"{a!r} read as the model's column {b!r}" for a, b in renames.items())
                            + " (case / spaces differ)"))
    out = df.rename(columns=renames)
    out.attrs = df.attrs
    return out


def model_features(df: pd.DataFrame, card: dict, what: str) -> pd.DataFrame:
    """The columns the locked model needs (a header differing only in case / spaces read as the model's,
    :func:`read_as_model_headers`), checked (present, numeric, known categories)."""
    roles = ColumnRoles.from_json(card["roles"])
    features = card["features"]
    df = read_as_model_headers(df, features, what)
    try:
        require_columns(df, features, what)
    except InputError as exc:
        from lungai.io.tables import QUIT_YEARS  # noqa: PLC0415

        if QUIT_YEARS in features and QUIT_YEARS not in df.columns:     # rp train computed it (stagefollow68)
            raise InputError(f"{exc.problem} ({QUIT_YEARS!r} is computed from the table's quit-year column, smoking "
                             "status and a date column - 'CT Date' or 'Date of Diagnosis' -, as at training: give "
                             f"the table these, or the column {QUIT_YEARS!r} itself)", exc.fix) from exc
        rad_missing = any(str(f).startswith("rad_") and f not in df.columns for f in features)
        other = _other_settings(df, card) if rad_missing else None
        expected = (card.get("radiomics_settings") or {}).get("id")
        if other is None and rad_missing and expected is not None and SETTINGS_COLUMN not in df:
            # no settings column: no information on the settings, so not blamed on them - the spelling fix stays
            raise InputError(f"{exc.problem} (the table has no {SETTINGS_COLUMN} column, so its radiomics settings "
                             f"are unknown; the model's: {expected})", exc.fix) from exc
        if other is None:
            raise
        raise InputError(f"{what}: the radiomic features were computed with other radiomics settings ({other}) "
                         f"than the model's ({card['radiomics_settings']['id']}), so the model's rad_* columns are "
                         f"not there (other settings give other feature names); {exc.problem.split(': ', 1)[-1]}",
                         "recompute the features with the model's settings (the --params used for training, see "
                         "model_card.json 'radiomics_settings')") from exc
    categories = {c: card["categories"][c] for c in features if c in card["categories"]}
    # the categories read as training read them: a card of an older lungai (no category_rules) by its rules
    X = numeric_features(df, roles, features, categories, card.get("category_rules", LEGACY_CATEGORY_RULES),
                         trained=(card.get("training_data") or {}).get("features"))
    check_categories(X, categories, what)
    return X


def training_radiomics_settings(df: pd.DataFrame, features, sources=()) -> dict:
    """The radiomics settings of a training table (model card entry ``radiomics_settings``): the id
    the table carries (column ``radiomics_settings``) and, from the CSVs' sidecar files, the settings
    in full.  A table mixing settings is refused."""
    if not any(str(f).startswith("rad_") for f in features):
        return {"id": None, "note": "the model uses no radiomic features"}
    if SETTINGS_COLUMN not in df:
        return {"id": None, "note": "not recorded: the table has no radiomics_settings column (features not written "
                                    "by lungai radiomics), so prediction cannot check them"}
    ids = sorted({i for v in df[SETTINGS_COLUMN].dropna().astype(str) for i in v.split(";") if i})
    recorded = read_sidecars(sources)
    # ids that only the id scheme told apart (binWidth 25.0 for 25, a revision that no longer applies): the sidecars'
    # settings give each its current id (lungai.radiomics.settings.current_id); one current id is one settings
    now = {i: current_id(i, recorded.get(i)) or i for i in ids}
    if len(ids) > 1 and len(set(now.values())) == 1:
        current = next(iter(now.values()))
        settings = value_settings(next(recorded[i] for i in ids if now[i] == current and i in recorded))
        older = [x for x in ids if x != current]
        entry = {"id": current, "settings": settings,
                 "note": "features of new patients must be computed with these settings (rows of "
                         f"{agree(len(older), 'id', 'ids')} {', '.join(older)}: the same settings under the id an older "
                         "lungai gave them)"}
        check_current_values(entry, features, sources)
        return entry
    if len(ids) > 1:
        # rows from before and after lungai left an ignored lung spacing beside resampledPixelSpacing out of the id:
        # the same values under two ids, one settings (ignored_lung_spacing_ids, from the sidecars' settings)
        for i in ids:
            family = ignored_lung_spacing_ids(recorded.get(i))
            if set(ids) <= family:
                block = {k: v for k, v in recorded[i]["lungai"].items() if k != "lung_spacing_mm"}
                settings = value_settings({**recorded[i], "lungai": block})
                current = settings_id(settings)
                older = [x for x in ids if x != current]
                return {"id": current, "settings": settings,
                        "note": "features of new patients must be computed with these settings (rows of "
                                f"{agree(len(older), 'id', 'ids')} {', '.join(older)}: the same settings with a lung spacing "
                                "beside resampledPixelSpacing, which changed nothing, counted by an older lungai)"}
        unrecorded = [i for i in ids if i not in recorded]
        raise InputError(f"the training table mixes radiomic features computed with {len(ids)} different settings "
                         f"({', '.join(ids)}; column {SETTINGS_COLUMN})"
                         + (f"; nothing records the settings of {', '.join(unrecorded)} (no .settings.json sidecar "
                            "beside the table: the table itself holds only the id), so rp train cannot tell whether "
                            "they are the same settings written otherwise" if unrecorded else ""),
                         "recompute every patient's radiomics with the same --params (a model cannot learn from "
                         "features whose meaning differs between patients); if the ids differ only in how an older "
                         "lungai wrote the same settings (whole numbers as decimals, binWidth 25.0 for 25; LoG sigmas "
                         "in another order or repeated; a lung spacing given beside resampledPixelSpacing), give "
                         "every row the current id: run `lungai radiomics` again with the same --params, or resume "
                         "`lungai radiomics-batch` / `lungai cohort` with the same --params into the same output "
                         "(they rewrite the ids), then join the tables again; or give rp train the tables lungai "
                         "wrote with their <table>.settings.json sidecars beside them (it then takes them as one)")
    if not ids:
        raise InputError(f"the training table mixes radiomic features computed with 0 different settings "
                         f"(none recorded; column {SETTINGS_COLUMN})",
                         "recompute every patient's radiomics with the same --params (a model cannot learn from "
                         "features whose meaning differs between patients)")
    entry = {"id": ids[0], "settings": recorded.get(ids[0]),
             "note": "features of new patients must be computed with these settings"}
    check_current_values(entry, features, sources)
    return entry


# the fix of a training table whose radiomic features an older lungai computed (:func:`check_current_values`)
OLDER_FEATURES_FIX = ("compute the training patients' radiomic features again with the current lungai and the same "
                      "--params: re-run lungai radiomics-batch (or lungai cohort) into the same output - the results "
                      "of an older lungai are redone and their ids rewritten - or lungai radiomics per patient; then "
                      "train again (or leave the radiomics table out to train on the other features only)")


def feature_segments(features) -> list[str]:
    """The segments of the ``rad_<segment>_<image type>_<class>_<feature>`` columns among ``features``
    (:func:`lungai.radiomics.extract.wide_column`; a segment's name may hold '_', the other parts do not)."""
    return list(dict.fromkeys(str(f)[4:].rsplit("_", 3)[0] for f in features
                              if str(f).startswith("rad_") and str(f)[4:].count("_") >= 3))


def outdated_settings(entry: dict | None, features=()) -> tuple[str | None, list[str]]:
    """Whether radiomics settings ``entry`` (a model card's ``radiomics_settings``, or a training table's: {"id",
    "settings"}) of the radiomic ``features`` were recorded by an older lungai: (why its id is an older lungai's -
    :func:`legacy_settings` -, or None; the revisions its settings should carry and do not - their values were
    computed before them and differ now: the keys of :data:`lungai.radiomics.settings.VALUE_REVISIONS` and
    ``lung_grid_revision`` when a segment of ``features`` is a lung an older lungai left on the CT's grid,
    :func:`lungai.radiomics.settings.lung_grid_revision`).  The one rule of ``rp train`` (refuses such a table) and
    ``rp predict`` / ``rp validate`` (refuse a model trained on one)."""
    entry = entry or {}
    settings = entry.get("settings")
    missing = []
    if isinstance(settings, dict) and isinstance(settings.get("lungai"), dict):
        missing = [k for k in value_revisions(settings) if k not in settings["lungai"]]
        if "lung_grid_revision" not in settings["lungai"] and lung_grid_revision(settings, feature_segments(features)):
            missing.append("lung_grid_revision")
    return legacy_settings(entry), missing


def check_current_values(entry: dict, features, sources=()) -> None:
    """Refuse training on radiomic features recorded (the table's ``radiomics_settings`` id and its sidecar's
    settings, ``entry``) as computed by an older lungai (:func:`outdated_settings`): their values differ from those
    the current lungai computes for the same --params (a revision of the values), or their id is one no current
    table carries - ``rp predict`` would refuse the features of every new patient, so the model could not be used.
    Said before any fitting, with the fix (:data:`OLDER_FEATURES_FIX`)."""
    legacy, missing = outdated_settings(entry, features)
    if not legacy and not missing:
        return
    side = next((str(sidecar_path(p)) for p in sources if read_sidecars([p]).get(entry.get("id")) is not None), None)
    where = f"; recorded in {side}" if side else ""
    if missing:
        why = ("are not the values the current lungai computes for the same --params ("
               + "; ".join(revision_reasons(missing)) + ")")
    else:
        why = (f"carry an id an older lungai wrote ({legacy}), whose ids left out the IBSI configuration and the lung "
               "grid spacing: no table of the current lungai carries it")
    raise InputError(f"the training table's radiomic features (radiomics_settings {entry.get('id')}{where}) {why}, "
                     "so rp predict would refuse the features of every new patient computed now (a model trained on "
                     "them could not be used)", OLDER_FEATURES_FIX)


# The ids older lungai versions wrote for the presets (``--params`` default / ibsi-a .. ibsi-e with
# ``--image-types``; default LoG sigmas), frozen: they hashed pyradiomics' setting and imageType only (up to commit
# 77353a2; the ibsi presets were pyradiomics settings before the IBSI pipeline, then one id for all five), so no
# current table carries them.  A model card with one of these ids (and no settings recorded: a merged table
# without its .settings.json sidecar) is a model of such a version.  Computed with the code of d21feca and 77353a2.
LEGACY_SETTINGS_IDS: dict[str, str] = {
    "sha256:0031f2e85167": "ibsi-b, Original+Wavelet",
    "sha256:06082b372c79": "ibsi-e, LoG+Wavelet",
    "sha256:07024e59daf8": "default, LoG",
    "sha256:070e3cba8c4e": "ibsi-d, Original",
    "sha256:08aebf7aa28d": "ibsi-a, LoG",
    "sha256:0af455a38acf": "ibsi-b, Wavelet",
    "sha256:0bb7dc74db92": "default, Wavelet",
    "sha256:0cbe97eacfd4": "ibsi-e, Original+Wavelet",
    "sha256:2766fef4beeb": "ibsi-c, Original+LoG+Wavelet",
    "sha256:2c592c61ecdb": "ibsi-c, LoG+Wavelet",
    "sha256:30cfbaa13ba9": "default, Original+LoG+Wavelet",
    "sha256:35bb644a475f": "ibsi-d, Wavelet",
    "sha256:394d629c82f8": "ibsi-e, Original+LoG",
    "sha256:3bc2c049f195": "ibsi-b, LoG+Wavelet",
    "sha256:4dd5bad76491": "ibsi-c, Wavelet",
    "sha256:4e182c058c7a": "ibsi-b, Original+LoG",
    "sha256:5cacbf3c0f74": "ibsi-a, Wavelet",
    "sha256:65cf8181102e": "ibsi-d, Original+Wavelet",
    "sha256:667b149710cc": "ibsi-b, LoG",
    "sha256:66ca9069e350": "ibsi-a, Original+LoG+Wavelet",
    "sha256:68eb538a25f6": "ibsi-d, LoG",
    "sha256:753550d21ed5": "ibsi-c, Original",
    "sha256:7ecf13d803ed": "ibsi-c, LoG",
    "sha256:88a9a5890aa4": "ibsi-e, Wavelet",
    "sha256:93a4225a35ae": "ibsi-e, Original",
    "sha256:9a03998401df": "ibsi-c, Original+Wavelet",
    "sha256:9e08b1e31ca4": "ibsi-a, Original+LoG",
    "sha256:9fddfb241670": "ibsi-d, LoG+Wavelet",
    "sha256:ad7b1edc6732": "ibsi-a, Original+Wavelet",
    "sha256:b19e0f16e080": "any of ibsi-a .. ibsi-e, Original",
    "sha256:b39786225af1": "default, Original+LoG",
    "sha256:bcf41c49a260": "ibsi-b, Original",
    "sha256:bd106978b0fa": "ibsi-d, Original+LoG+Wavelet",
    "sha256:c12d8ff0c2aa": "ibsi-e, LoG",
    "sha256:c2d771d45104": "ibsi-e, Original+LoG+Wavelet",
    "sha256:c9f5b1fed2a4": "ibsi-a, LoG+Wavelet",
    "sha256:cb1f636138d4": "ibsi-a, Original",
    "sha256:ccd97b9933c9": "ibsi-d, Original+LoG",
    "sha256:d69045dab1b3": "default, Original",
    "sha256:da1207d696c2": "ibsi-b, Original+LoG+Wavelet",
    "sha256:dc70184ac3ac": "default, LoG+Wavelet",
    "sha256:df5114ab8dd9": "ibsi-c, Original+LoG",
    "sha256:e1143c60fb1b": "default, Original+Wavelet",
}


def legacy_settings(radiomics_settings: dict | None) -> str | None:
    """Why the model card's ``radiomics_settings`` were written by an older lungai (whose ids left out the IBSI
    configuration and the lung grid spacing), or None: its settings, when recorded, lack the ``lungai`` block
    (:func:`lungai.radiomics.settings.is_legacy_settings`); without settings (a merged table without its sidecar)
    its id is one of :data:`LEGACY_SETTINGS_IDS`."""
    entry = radiomics_settings or {}
    if isinstance(entry.get("settings"), dict):      # recorded in full: the settings themselves tell
        return "its recorded settings have no lungai block" if is_legacy_settings(entry["settings"]) else None
    preset = LEGACY_SETTINGS_IDS.get(str(entry.get("id")))
    if preset is not None:
        name, types = preset.split(", ")
        return f"the id of the preset --params {name} (image types {types}) there"
    return None


def _other_settings(df: pd.DataFrame, card: dict) -> str | None:
    """The table's radiomics settings ids other than the model's, or None when they are the model's, the model
    recorded none or the table has no settings column (no information: a missing rad_* column is not put down to
    the settings)."""
    expected = (card.get("radiomics_settings") or {}).get("id")
    if expected is None or SETTINGS_COLUMN not in df:
        return None
    ids = sorted({str(g) for g in df[SETTINGS_COLUMN].dropna()} - model_settings_ids(card))
    return ", ".join(ids) or None


def model_settings_ids(card: dict) -> set[str]:
    """The settings ids of tables whose radiomic features match the model's: its recorded id and the id its recorded
    settings have now (:func:`lungai.radiomics.settings.equivalent_ids`: a lung spacing recorded beside
    pyradiomics' resampling, which it never changed, is left out of current ids)."""
    entry = card.get("radiomics_settings") or {}
    return ({str(entry.get("id"))} | equivalent_ids(entry.get("settings"))
            | ignored_lung_spacing_ids(entry.get("settings"))
            | ({now} if (now := current_id(entry.get("id"), entry.get("settings"))) else set()))


# the fix of a settings mismatch said to one patient's user in Multimodal Predict (``context`` "patient"), who has no
# --params / --allow-other-radiomics-settings: the radiomics table is computed again in Lung Radiomics
SETTINGS_FIX_PATIENT = ("compute the radiomics table again in Lung Radiomics with the model's settings (the preset or "
                        "parameter file, feature classes and image types it was trained with: model_card.json "
                        "'radiomics_settings'), then compute the risk again")
SETTINGS_FIX_PATIENT_RETRAIN = ("the model cannot be used with tables of the current lungai: ask for a model retrained "
                                "on the training patients' features computed again (lungai rp train)")


def demo_params(card: dict) -> str | None:
    """The radiomics preset of ``lungai demo --params`` (its Original image) whose settings are the model's
    (:func:`model_settings_ids`), or None: none of them (a parameter file, filtered image types) or no settings."""
    from lungai.radiomics.params import PRESETS, load_params
    from lungai.radiomics.settings import settings_id

    if not (card.get("radiomics_settings") or {}).get("id"):
        return None
    ids = model_settings_ids(card)
    return next((name for name in PRESETS if settings_id(load_params(name, image_types=["Original"])) in ids), None)


def settings_fix_demo(card: dict) -> str:
    """The fix of a radiomics settings mismatch said to ``lungai demo``'s user, who computes the features with its
    ``--params`` (no --allow-other-radiomics-settings): the model's preset when one of the demo's has its settings."""
    preset = demo_params(card)
    if preset:
        return (f"run lungai demo again with --params {preset} (the radiomics settings the model was trained with: "
                "model_card.json 'radiomics_settings')")
    return ("run lungai demo again with --params set to the pyradiomics parameter file the model was trained with "
            "(model_card.json 'radiomics_settings': none of the demo's presets has them), or compute the patient's "
            "features with lungai radiomics --params of those settings and use lungai rp predict")


def settings_warnings(df: pd.DataFrame, card: dict, what: str, allow_other: bool = False,
                      context: str = "cohort", sources=()) -> list[str]:
    """Per patient: '' or why its radiomic features may not match the model's (other or unknown
    settings).  Other settings raise unless ``allow_other``; the fix names the command line's flags, or with
    ``context`` "patient" (one patient's row in Multimodal Predict, :data:`SETTINGS_FIX_PATIENT`) what to do there,
    with "demo" (``lungai demo``'s patient, :func:`settings_fix_demo`) its --params.
    ``sources``: the table's CSV files; where their ``.settings.json`` sidecars record the other settings and the
    model card records its own, the refusal names the settings that differ
    (:func:`lungai.radiomics.settings.settings_differences`)."""
    expected = (card.get("radiomics_settings") or {}).get("id")
    if expected is None:
        return [""] * len(df)
    if SETTINGS_COLUMN not in df:
        return [f"radiomics settings unknown (the model's: {expected})"] * len(df)
    given = df[SETTINGS_COLUMN].astype(object).where(df[SETTINGS_COLUMN].notna(), None)
    accepted = model_settings_ids(card)
    # a table id whose sidecar's settings have one of those ids now (binWidth 25.0 for 25 ...: current_id)
    accepted |= {i for i, s in read_sidecars(sources).items() if current_id(i, s) in accepted}
    other = [g is not None and str(g) not in accepted for g in given]
    if any(other) and not allow_other:
        cases = case_ids(df, card["roles"].get("id_column"))
        bad = sorted({str(g) for g, o in zip(given, other) if o})
        fix = ("recompute the features with the model's settings (the --params used for training); if the model "
               "predates lungai's settings-id change (ids now include the IBSI configuration and the lung grid "
               "spacing, so an older model's id is carried by no current table), recompute the training patients' "
               "features and retrain (rp train); or pass --allow-other-radiomics-settings to predict anyway with a "
               "warning per patient")
        legacy = legacy_settings(card.get("radiomics_settings"))
        if legacy:
            fix = (f"the model's id was written by an older lungai ({legacy}), whose ids left out the IBSI "
                   "configuration and the lung grid spacing (so no current table carries it): recompute the training "
                   "patients' features with the same --params and retrain (rp train), or pass "
                   "--allow-other-radiomics-settings to predict anyway with a warning per patient")
        settings = (card.get("radiomics_settings") or {}).get("settings")
        # trained on values of a parameter set that an older lungai computed without a revision of its values
        # (pyradiomics' resampling; normalize, Square-type or Wavelet images on the whole CT): they differ now
        _, missing = outdated_settings(card.get("radiomics_settings"), card.get("features") or ())
        old_model = bool(legacy or missing)
        if not legacy and old_model:
            fix = ("the model was trained on features of an older lungai (" + "; ".join(revision_reasons(missing))
                   + "): recompute the "
                   "training patients' features with the same --params and retrain (rp train), or pass "
                   "--allow-other-radiomics-settings to predict anyway with a warning per patient")
        if not legacy and not isinstance(settings, dict):
            fix += ("; the model card records its id only (no settings: trained on a table without its "
                    ".settings.json sidecar), so a table of the same values whose id an older lungai made with a lung "
                    "spacing beside resampledPixelSpacing (ignored) cannot be told: resume that run with the current "
                    "lungai (radiomics-batch / cohort rewrite the ids) or recompute the features")
        if context == "patient":        # no command-line flags for the panel's user (lungs_cut_warning's contexts)
            fix = SETTINGS_FIX_PATIENT_RETRAIN if old_model else SETTINGS_FIX_PATIENT
        elif context == "demo":         # lungai demo computes the features itself: its --params, no rp flags
            fix = SETTINGS_FIX_PATIENT_RETRAIN if old_model else settings_fix_demo(card)
        recorded = read_sidecars(sources)
        differ = [f"{i}: " + "; ".join(d) for i in bad
                  if (d := settings_differences(recorded.get(i), (card.get("radiomics_settings") or {}).get("settings")))]
        raise InputError(f"{what}: radiomic features of {counted(sum(other), 'patient')} (e.g. {[c for c, o in zip(cases, other) if o][:3]}) "
                         f"were computed with radiomics settings {bad}, the model with {expected} "
                         f"(model_card.json 'radiomics_settings'); their values are not comparable"
                         + (f" (the settings that differ from the model's - {' | '.join(differ)})" if differ else ""),
                         fix)
    return [f"radiomics settings {g} differ from the model's {expected}" if o else
            ("" if g is not None else f"radiomics settings unknown (the model's: {expected})")
            for g, o in zip(given, other)]


def imputed_and_out_of_range(X: pd.DataFrame, card: dict) -> tuple[list[str], list[str]]:
    """Per patient: the features that were missing (imputed with the training median / most frequent
    category) and the numeric ones outside the training range, as '; '-separated text."""
    from lungai.report.html import readable     # plain decimals: a mesh volume "1226 (training 16238 to 100220)"

    summary = card["training_data"]["features"]
    imputed, outside = [], []
    for _, row in X.iterrows():
        imputed.append("; ".join(c for c in X.columns if pd.isna(row[c])))
        out = []
        for c in X.columns:
            s = summary.get(c, {})
            if "min" in s and not pd.isna(row[c]) and not (s["min"] <= float(row[c]) <= s["max"]):
                out.append(f"{c}={readable(row[c])} (training {readable(s['min'])} to {readable(s['max'])})")
        outside.append("; ".join(out))
    return imputed, outside


def empty_features(X: pd.DataFrame) -> list[str]:
    """The model features of ``X`` (the model's features of a table's rows, :func:`model_features`) that are empty
    in every row of a table of two or more rows ([] for one row: its ``imputed`` cell names them)."""
    if len(X) < 2:
        return []
    return [str(c) for c in X.columns if X[c].isna().all()]


def empty_features_warning(X: pd.DataFrame, what: str, consequence: str) -> str:
    """'' or the warning naming the model features empty in every row of ``X`` (:func:`empty_features`): each is
    imputed with the same training value (median or most frequent category) for every patient, so it tells no
    patient from another - ``consequence`` (e.g. "the metrics are those of the model without {it}": ``{it}`` is
    "it" / "them"), and the fix (provide the column).  ``rp train`` refuses such a column
    (constant or empty); ``rp validate`` / ``rp predict`` imputed it with only "N patients with imputed features"
    (QA rpfollow70: dose_mld_gy empty in all 200 rows, AUC reported without a word of it)."""
    cols = empty_features(X)
    if not cols:
        return ""
    return (f"{what}: {counted(len(cols), 'model feature')} {cols} {agree(len(cols), 'is', 'are')} empty in every row "
            f"({counted(len(X), 'patient')}): imputed with the same training value (median or most frequent "
            f"category) for every patient, so {agree(len(cols), 'it tells', 'they tell')} no patient from another and "
            f"{consequence.format(it=agree(len(cols), 'it', 'them'))} - provide {agree(len(cols), 'this column', 'these columns')} (the values the model was "
            "trained on, same name and unit) and run again")


def case_ids(df: pd.DataFrame, id_column: str | None) -> list[str]:
    """Patient identifiers: the id column the checks use (:func:`lungai.rp.checks.id_column_of`: the model's or role
    file's id column, spaces around its name ignored, else case / patient_id / id), else the row numbers."""
    from lungai.rp.checks import id_column_of

    col = id_column_of(df, id_column)
    if col is None:
        return [f"row{i + 1}" for i in range(len(df))]
    return df[col].astype(str).tolist()


REVIEW_COLUMN = "tumour_review"   # lungai cohort: why the automatic tumour needs expert review ('' when it does not)
REVIEW_FIX = ("review / correct the tumour in Slicer (or contour it as a GTV in the RTSTRUCT) and re-run lungai "
              "cohort, or drop these rows")


def _column(df: pd.DataFrame, name: str):
    """The column of ``df`` named ``name`` (case and spaces around it ignored), or None."""
    return next((c for c in df.columns if str(c).strip().lower() == name), None)


def _text_rows(df: pd.DataFrame, name: str) -> list[str]:
    """Per row: the text of column ``name`` (:func:`_column`), '' for an empty cell, a word for "no value" ("NA",
    "nan", "None" as other tools write them: :func:`lungai.rp.columns.is_missing_word`) or a table without it."""
    col = _column(df, name)
    return [""] * len(df) if col is None else ["" if is_missing_word(v) else str(v).strip() for v in df[col]]


def tumour_review_rows(df: pd.DataFrame) -> list[str]:
    """Per row: '' or why its automatic tumour needs review (the ``tumour_review`` column ``lungai cohort`` writes;
    :func:`_text_rows`: no column, an empty cell or a missing-value word is no review)."""
    return _text_rows(df, REVIEW_COLUMN)


def tumour_review_warning(df: pd.DataFrame, id_column: str | None, what: str, consequence: str) -> tuple[int, str]:
    """(count, warning) for the rows of ``df`` whose automatic tumour (``lungai cohort`` without a GTV) needs review:
    their tumour radiomic and dose features come from a tumour no expert checked.  The warning ('' when none) names
    the count, the first few patient ids and the fix; the numbers are never changed (rp train / validate / predict
    say it, the model card and external_metrics.json record the count)."""
    reasons = tumour_review_rows(df)
    ids = [c for c, r in zip(case_ids(df, id_column), reasons) if r]
    return _patients_warning(ids, what, "the automatic tumour of {patients} needs review", REVIEW_COLUMN,
                             "their tumour radiomic and dose features come from a tumour no expert checked",
                             consequence, REVIEW_FIX)


CAVEAT_FIX = ("check these tumours on the CT in Slicer (or contour them as GTVs in the RTSTRUCT) and re-run lungai "
              "cohort, or drop these rows")
# ... said to ``lungai demo``'s user (its one patient's risk from the tumour it segmented itself: QA demoseq59)
CAVEAT_FIX_DEMO = ("check the tumour's outline on the CT (scene.mrb in 3D Slicer); if part of it is missed, run lungai "
                   "demo again with a box round it (--roi) or another model (--model), or read this risk as of a "
                   "tumour perhaps partly missed")
CAVEAT_FIXES = {"cohort": CAVEAT_FIX, "patient": CAVEAT_FIX, "demo": CAVEAT_FIX_DEMO}


def confidence_caveat_rows(df: pd.DataFrame) -> list[str]:
    """Per row: '' or the known caveat of the confidence of the model that segmented its automatic tumour (the
    ``tumour_confidence_caveat`` column ``lungai cohort`` writes, :data:`lungai.seg.resources.CAVEAT_COLUMN`)."""
    from lungai.seg.resources import CAVEAT_COLUMN

    return _text_rows(df, CAVEAT_COLUMN)


def unflagged_caveat_rows(df: pd.DataFrame) -> list[bool]:
    """Per row: whether its automatic tumour is not flagged for review (``tumour_review`` empty) by a model whose
    confidence has a known caveat (:func:`confidence_caveat_rows`) - a row flagged for review is said as such."""
    return [bool(c) and not r for c, r in zip(confidence_caveat_rows(df), tumour_review_rows(df))]


def confidence_caveat_warning(df: pd.DataFrame, id_column: str | None, what: str,
                              consequence: str, fix: str = CAVEAT_FIX) -> tuple[int, str]:
    """(count, warning) for the rows whose automatic tumour is not flagged for review by a model whose confidence has
    a known caveat (``--model lungai-seg-dynunet``: failed segmentations passed without a review flag on test): an
    empty ``tumour_review`` does not show their tumour was found whole.  Said as :func:`tumour_review_warning` (count,
    first ids, ``fix``: :data:`CAVEAT_FIXES`); never changed.  QA demorisk59: the rp_table kept no trace of the caveat."""
    from lungai.seg.resources import CAVEAT_COLUMN

    ids = [c for c, u in zip(case_ids(df, id_column), unflagged_caveat_rows(df)) if u]
    return _patients_warning(ids, what, "the automatic tumour of {patients} is not flagged for review by a model "
                             "whose confidence has a known caveat", CAVEAT_COLUMN,
                             "a confidence above the review threshold does not show the tumour was found whole, so "
                             "their tumour radiomic and dose features may come from a tumour partly missed",
                             consequence, fix)


def _patients_warning(ids: list, what: str, subject: str, column: str, detail: str, consequence: str,
                      fix: str) -> tuple[int, str]:
    """(count, warning) of :func:`tumour_review_warning` / :func:`lungs_cut_warning`: "WHAT: SUBJECT (COLUMN, e.g.
    the first 5 ids and N more): DETAIL, CONSEQUENCE - FIX" ('' when ``ids`` is empty; ``subject`` formats
    ``patients``, "1 patient" / "2 patients", and ``have``, the verb agreeing with it) - a
    :class:`~lungai.errors.PatientsText`, whose ``without_ids`` says "(COLUMN)" without the ids."""
    if not ids:
        return 0, ""
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    head = f"{what}: {subject.format(patients=counted(len(ids), 'patient'), have=agree(len(ids), 'has', 'have'))}"
    tail = f": {detail}, {consequence} - {fix}"
    # a str naming the ids, with its form without them (an InputNote of it takes it: rp validate's notes)
    return len(ids), PatientsText(f"{head} ({column}, e.g. {', '.join(ids[:5])}{more}){tail}",
                                  without_ids=f"{head} ({column}){tail}")


CUT_COLUMN = "lungs_cut"   # lungai cohort / dose-features: why the dose metrics are of a partial lung ('' if not)
CUT_FIX = ("export the CT series that covers both lungs for these patients and re-run lungai cohort (or keep one "
           "whole-lung series per patient), or drop these rows")
# the fix said to a single patient's user (Multimodal Predict's risk from Lung Radiomics' dose table), not a cohort's
CUT_FIX_PATIENT = ("load the CT series that covers both lungs (with its RTDOSE) and compute the dose features again "
                   "in Lung Radiomics, or read this risk as of a partial lung")
# ... and to ``lungai demo``'s user (its one patient's risk from the CT and RTDOSE it was given)
CUT_FIX_DEMO = ("give with --ct the CT series that covers both lungs (with its RTDOSE as --dose) and run lungai demo "
                "again, or read this risk as of a partial lung")
CUT_FIXES = {"cohort": CUT_FIX, "patient": CUT_FIX_PATIENT, "demo": CUT_FIX_DEMO}


LUNG_NOTES_COLUMN = "lung_notes"   # lungai cohort: its notes on the lungs given ('' if none; lungai.dicom.cohort's)
LUNG_NOTES_FIX = ("read their lung_notes (or the patient's result.json), correct the lung structures in the RTSTRUCT "
                  "(or map them with --structure-map) and re-run lungai cohort, or drop these rows")


def lung_notes_warning(df: pd.DataFrame, id_column: str | None, what: str, consequence: str) -> tuple[int, str]:
    """(count, warning) for the rows whose ``lung_notes`` column (``lungai cohort``: a lung structure that does not
    look like a lung - a GTV exported as 'Lungs' -, one lung absent, lungs under 1000 ml) is not empty: their lung
    radiomics and dose metrics may not be of both whole lungs.  Said as :func:`lungs_cut_warning` (count, first ids,
    fix); never changed.  QA cohort72: the column's notes were in the table only, rp train said nothing of them."""
    ids = [c for c, r in zip(case_ids(df, id_column), _text_rows(df, LUNG_NOTES_COLUMN)) if r]
    return _patients_warning(ids, what, "the lungs of {patients} may not be the whole lungs", LUNG_NOTES_COLUMN,
                             "their lung radiomics and dose metrics (MLD, Vx, Dx) are of the lungs as given",
                             consequence, LUNG_NOTES_FIX)


TUMOUR_NOTES_COLUMN = "tumour_notes"   # lungai cohort: structures that may be tumour left out of it ('' if none)
TUMOUR_NOTES_FIX = ("read their tumour_notes; if such a structure is tumour, map it with --structure-map (the line "
                    "the note names) and re-run lungai cohort, or drop these rows")


def tumour_notes_warning(df: pd.DataFrame, id_column: str | None, what: str, consequence: str) -> tuple[int, str]:
    """(count, warning) for the rows whose ``tumour_notes`` column (``lungai cohort``: a structure named like a GTV or
    a tumour without a role - a primary GTV renamed 'Tumour_main' -, of RT ROI Interpreted Type GTV beside GTVs by
    name, a GTV the structure mapping hides: :func:`lungai.dicom.roles.left_out_gtv_notes`) is not empty: their
    tumour may lack it.  Said as :func:`lung_notes_warning`; never changed.  QA cohortfollow72: LUNG1-003's GTV-1
    renamed 'Tumour_main' gave a tumour of gtv-3 + gtv-2 (47.6 ml without the 34.8 ml primary), no column said so."""
    ids = [c for c, r in zip(case_ids(df, id_column), _text_rows(df, TUMOUR_NOTES_COLUMN)) if r]
    return _patients_warning(ids, what, "the tumour of {patients} may leave out a GTV", TUMOUR_NOTES_COLUMN,
                             "a structure that may be tumour is not part of it, so their tumour radiomic and GTV dose "
                             "features are of the tumour without it and their lung features keep it",
                             consequence, TUMOUR_NOTES_FIX)


def lungs_cut_rows(df: pd.DataFrame) -> list[str]:
    """Per row of ``df``: why its lungs are cut by the scan (its ``lungs_cut`` cell), '' when they are not or the
    table has no such column."""
    return _text_rows(df, CUT_COLUMN)


def recorded_notes_rows(df: pd.DataFrame) -> list[list[str]]:
    """Per row of ``df``: the notes its dose table recorded with its metrics (dose.csv's ``rtdose_notes`` column,
    :data:`lungai.dose.features.NOTES_COLUMN`), [] when none or the table has no such column."""
    from lungai.dose.features import NOTES_COLUMN, notes_of

    col = _column(df, NOTES_COLUMN)
    return [notes_of(v) for v in df[col]] if col is not None else [[] for _ in range(len(df))]


def lungs_cut_warning(df: pd.DataFrame, id_column: str | None, what: str, consequence: str,
                      context: str = "cohort") -> tuple[int, str]:
    """(count, warning) for the rows whose lungs were cut by the scan's first / last slice (the ``lungs_cut``
    column, :func:`lungai.dose.features.lungs_cut`): their dose_* metrics (MLD, Vx) are of the part of the lungs in
    view, not of the whole lungs.  Said as :func:`tumour_review_warning` (count, first ids, fix); never changed.
    ``context``: who reads the fix (:data:`CUT_FIXES`): "cohort" (``lungai rp`` on a cohort's table: re-run ``lungai
    cohort`` or drop the rows), "patient" (one patient's risk in Multimodal Predict: Lung Radiomics again) or "demo"
    (``lungai demo``'s risk: run it again with the CT that covers both lungs)."""
    fix = CUT_FIXES[context]
    ids = [c for c, r in zip(case_ids(df, id_column), lungs_cut_rows(df)) if r]
    return _patients_warning(ids, what, "the lungs of {patients} are cut by the scan", CUT_COLUMN,
                             "their dose metrics (MLD, Vx, Dx) are of the part of the lungs in view, not of the whole "
                             "lungs", consequence, fix)


NO_DOSE_FIXES = {
    "cohort": ("export each of these patients' planned RTDOSE with the CT it was planned on (the same frame of "
               "reference) and re-run lungai cohort, or drop these rows"),
    # one patient's risk in Multimodal Predict: the dose table of Lung Radiomics
    "patient": "compute the dose features from the patient's RT dose in Lung Radiomics and compute the risk again",
    # one patient's risk in lungai demo: its --dose
    "demo": "give the patient's planned RTDOSE with --dose (the CT it was planned on as --ct) and run lungai demo again",
}


def no_dose_rows(X: pd.DataFrame, roles: dict) -> list[bool]:
    """Per row of ``X`` (the model's features): whether every dosimetric feature is empty (all False for a feature
    set without dosimetric columns)."""
    dose = [c for c in X.columns if roles.get(c) == "dosimetric"]
    return [bool(n) for n in X[dose].isna().all(axis=1)] if dose else [False] * len(X)


def no_dose_warning(df: pd.DataFrame, X: pd.DataFrame, roles: dict, id_column: str | None, what: str,
                    consequence: str, context: str = "cohort") -> tuple[int, str]:
    """(count, warning) for the rows of ``X`` (the model's features of ``df``'s rows) with no dose at all: every
    dosimetric feature (``roles``: column -> role; dose_* columns and those a role file names) empty - a patient
    ``lungai cohort`` found no RTDOSE for (its provenance "no RTDOSE", or one in another frame of reference), or a
    table left empty there.  Their dose features are imputed (the
    training median), so a dose-based risk rests on a dose the patient never had.  Said as
    :func:`tumour_review_warning` (count, first ids, fix; ``context`` as :func:`lungs_cut_warning`); never changed.
    A feature set without dosimetric columns: no warning."""
    if not any(roles.get(c) == "dosimetric" for c in X.columns):
        return 0, ""
    ids = [c for c, n in zip(case_ids(df, id_column), no_dose_rows(X, roles)) if n]
    return _patients_warning(ids, what, "{patients} {have} no dose", "every dosimetric feature empty",
                             "their dose features (MLD, Vx) are imputed with the training median", consequence,
                             NO_DOSE_FIXES[context])


def recorded_notes_warnings(df: pd.DataFrame, id_column: str | None) -> list[str]:
    """The notes the dose table recorded with its metrics (dose.csv's ``rtdose_notes`` column,
    :data:`lungai.dose.features.NOTES_COLUMN`: an RTDOSE of DoseType EFFECTIVE, one not checked against the CT), each
    once: as they are for a one-row table (one patient: the words Multimodal Predict says of the notes Lung Radiomics
    recorded on its dose table, :func:`lungai.scene.nodes.recorded_review_notes`), "<id>: <note>" for several rows -
    a :class:`~lungai.errors.PatientsText` whose ``without_ids`` counts the patients of that note instead ("2
    patients (rtdose_notes): <note>"; ``rp predict`` says them as InputNotes, QA rpfollow65).  A table without the
    column: none.  Never changes a value."""
    from lungai.dose.features import NOTES_COLUMN

    pairs = [(case, note) for case, notes in zip(case_ids(df, id_column), recorded_notes_rows(df)) for note in notes]
    if len(df) <= 1:
        return list(dict.fromkeys(note for _, note in pairs))
    count = {note: len({case for case, n in pairs if n == note}) for _, note in pairs}
    return list(dict.fromkeys(PatientsText(f"{case}: {note}",
                                           without_ids=f"{counted(count[note], 'patient')} ({NOTES_COLUMN}): {note}")
                              for case, note in pairs))


EFFECTIVE_FIX = ("export these patients' PHYSICAL RTDOSE from the planning system and re-run lungai cohort (or "
                 "lungai dose-features), or drop these rows")


def effective_dose_warning(df: pd.DataFrame, id_column: str | None, what: str, consequence: str) -> tuple[int, str]:
    """(count, warning) for the rows whose dose table recorded an RTDOSE of DoseType EFFECTIVE (its
    :data:`lungai.dose.features.NOTES_COLUMN`: :func:`lungai.dose.read.effective_dose_note`): their dose metrics are
    of a biologically weighted dose, which ``lungai rp train`` / ``validate`` would mix with the physical dose of the
    other rows without a word.  Said as :func:`tumour_review_warning` (count, first ids, fix); never changed.
    QA (rpnotes58): a training table with two EFFECTIVE rows said nothing but "ignored columns: rtdose_notes"."""
    from lungai.dose.features import NOTES_COLUMN
    from lungai.dose.read import EFFECTIVE

    mark = f"DoseType {EFFECTIVE}"
    ids = [c for c, notes in zip(case_ids(df, id_column), recorded_notes_rows(df)) if any(mark in n for n in notes)]
    others = len(df) - len(ids)
    return _patients_warning(ids, what, "the RTDOSE of {patients} has DoseType EFFECTIVE", NOTES_COLUMN,
                             "their dose metrics (MLD, Vx, Dx) are of a biologically weighted dose (Gy(RBE), EQD2 / "
                             "BED), not of the physical dose"
                             + (f" of the other {counted(others, 'patient')}" if others else ""), consequence, EFFECTIVE_FIX)


def row_table_warnings(df: pd.DataFrame, card: dict, X: pd.DataFrame, joined: bool = True) -> list:
    """Per row of ``df``: what :func:`table_warnings` says of it, for the row's own ``warnings`` cell of ``rp
    predict``'s CSV ("; " between them, '' for none): its tumour notes (``tumour_notes``), its lungs cut by the scan,
    its lung notes (``lung_notes``; QA cohortfollow72: said of the whole table only), no dose, the dose notes recorded in
    its row (each note as it is).  The facts, without the fix (which depends on who reads it: the printed warnings
    and Multimodal Predict's risk say it).  QA (rpnotes58): the predictions CSV kept none of what rp predict printed
    of the whole table.  ``X``: the model's features of ``df`` (:func:`model_features`).  ``joined`` False: per row
    the list of them (a note can hold "; " itself: the cell cannot be split back)."""
    rows = [[f"the tumour may leave out a GTV ({tumour}): tumour radiomic and GTV dose features without it"]
            * bool(tumour)
            + [f"lungs cut by the scan ({cut}): dose metrics of a partial lung"] * bool(cut)
            + [f"the lungs may not be the whole lungs ({lung}): lung radiomics and dose metrics of the lungs as "
               "given"] * bool(lung)
            + ["no dose (every dosimetric feature empty): dose features imputed"] * none + n
            for tumour, cut, lung, none, n in zip(_text_rows(df, TUMOUR_NOTES_COLUMN), lungs_cut_rows(df),
                                                  _text_rows(df, LUNG_NOTES_COLUMN),
                                                  no_dose_rows(X, card["roles"]["roles"]), recorded_notes_rows(df))]
    return ["; ".join(r) for r in rows] if joined else rows


def table_warnings(df: pd.DataFrame, card: dict, context: str = "cohort",
                   X: pd.DataFrame | None = None) -> list[str]:
    """The warnings about the whole patients table that :func:`lungai.rp.predict.predict_rp` returns
    (``pred.attrs["warnings"]``, printed by ``lungai rp predict``): patients whose automatic tumour needs review
    (:func:`tumour_review_warning`) or is not flagged by a model whose confidence has a known caveat
    (:func:`confidence_caveat_warning`), whose lungs were cut by the scan (the dose table's
    ``lungs_cut``: :func:`lungs_cut_warning`), with no dose at all (:func:`no_dose_warning`), and the dose notes
    recorded in the table (an EFFECTIVE RTDOSE ...: :func:`recorded_notes_warnings`), and first the model features
    empty in every row (:func:`empty_features_warning`).  ``context``: "cohort",
    "patient" (Multimodal Predict's one row, whose fixes name Lung Radiomics: the panel says these under its risk) or
    "demo" (``lungai demo``'s one row, whose fixes name its --ct / --dose: its summary and report say these).
    ``X``: the model's features of ``df`` (:func:`model_features`; computed when not given)."""
    id_column = card["roles"].get("id_column")
    what = "patients table" if context == "cohort" else "dose table"
    _, review = tumour_review_warning(df, id_column, "patients table", "so their risks are too")
    _, caveat = confidence_caveat_warning(df, id_column, "patients table", "so their risks may be too",
                                          CAVEAT_FIXES.get(context, CAVEAT_FIX))
    _, cut = lungs_cut_warning(df, id_column, what, "so their risks are too", context)
    _, lung_notes = lung_notes_warning(df, id_column, what, "so their risks are too")
    _, tumour_notes = tumour_notes_warning(df, id_column, "patients table", "so their risks are too")
    X = model_features(df, card, "patients table") if X is None else X
    _, no_dose = no_dose_warning(df, X, card["roles"]["roles"], id_column, what,
                                 "so their risks do not rest on their own dose", context)
    empty = empty_features_warning(X, "patients table", "the risks are those of the model without {it}, not of the "
                                   "model as trained")      # a table of 2+ rows (one row: its imputed cell says it)
    return [w for w in (empty, review, tumour_notes, caveat, cut, lung_notes, no_dose) if w] \
        + recorded_notes_warnings(df, id_column)
