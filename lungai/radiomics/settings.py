"""Which radiomics settings a feature table was computed with, carried with the features.

Radiomics values depend on the settings (bin width / count, resampling, re-segmentation, filters):
a model trained on features from one setting gives wrong risks for features from another.  So every
table lungai writes carries them:

* long and wide CSVs (``lungai radiomics``, ``radiomics-batch``, the demo) have a column
  ``radiomics_settings`` holding the settings id (``sha256:`` + 12 hex digits of the canonical JSON
  of the value-affecting settings: pyradiomics' ``setting`` and ``imageType`` and lungai's own block,
  the IBSI configuration and the lung segments' grid spacing, :func:`value_settings`), and a sidecar ``<csv name>.settings.json`` with the settings in
  full (:func:`write_sidecar`);
* the Slicer radiomics table node has the id and the settings as node attributes.

``rp train`` records the id and (from the sidecar) the settings in the model card; ``rp predict``
refuses features whose id differs (or, with ``--allow-other-radiomics-settings``, warns per patient).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

SETTINGS_COLUMN = "radiomics_settings"
NODE_ATTRIBUTE = "lungai.radiomics_settings"
# Keys that do not change a feature's value (which features / extra output / label bookkeeping).
_NOT_VALUE_AFFECTING = {"additionalInfo", "label", "enableCExtensions"}
# The revision of lungai's pyradiomics resampling: 2 since lungai 0.2.0 (the whole CT is handed to pyradiomics, whose
# grid is aligned with the CT's origin; before, a crop-shifted grid: values up to 60 % off).  Only parameter sets with
# ``resampledPixelSpacing`` carry it (in their settings id, the radiomics-batch resume key and cohort's per-patient
# inputs), so their results from an older lungai are redone and rp models trained on them refused; every other
# parameter set (the presets, IBSI configurations included) keeps its id.
RESAMPLING_REVISION = 2


def resampling_revision(params: dict) -> int | None:
    """:data:`RESAMPLING_REVISION` when ``params`` has pyradiomics resample (``resampledPixelSpacing`` not all 0,
    no IBSI configuration), else None."""
    from lungai.radiomics.prepare import pyradiomics_resampling

    if (params.get("lungai") or {}).get("ibsi") is not None or not pyradiomics_resampling(params):
        return None
    return RESAMPLING_REVISION


# The revision of the image-wide operations of pyradiomics on lungai's crop: 2 since pyradiomics' ``normalize``, the
# Square / SquareRoot / Logarithm / Exponential images and the Wavelet images are computed as pyradiomics computes them
# on the whole CT (:mod:`lungai.radiomics.prepare`: ``normalisation``, ``WHOLE_IMAGE_TYPES``, ``wavelet_whole_axes``);
# before, pyradiomics normalised / scaled / wrapped round the segment's crop (values up to 60 % off, exit 0).  Only such
# parameter sets carry it (not those with pyradiomics' resampling, which always had the whole CT, nor an IBSI
# configuration), so their results from an older lungai are redone and rp models trained on them refused.  The
# filters alone (no normalize) of a parameter set with which pyradiomics crops the image itself before filtering
# (``preCrop``, or ``resampledPixelSpacing`` all 0: the segment's box + ``padDistance``, :func:`pyradiomics_crops`) gave
# the same values on lungai's crop (pyradiomics cropped it again): no revision; an older lungai recorded one for them
# (:func:`dropped_revisions`), accepted as the same values.
WHOLE_CT_REVISION = 2


def pyradiomics_crops(params: dict) -> bool:
    """Whether pyradiomics crops the image to the segment's box + ``padDistance`` itself before any filter
    (its ``loadImage``): ``preCrop``, or ``resampledPixelSpacing`` given (all 0: no resampling, only that crop)."""
    setting = params.get("setting") or {}
    return bool(setting.get("preCrop")) or setting.get("resampledPixelSpacing") is not None


def _whole_ct_revision(params: dict, self_cropped: bool) -> int | None:
    from lungai.radiomics.prepare import pyradiomics_resampling, whole_image_types

    if (params.get("lungai") or {}).get("ibsi") is not None or pyradiomics_resampling(params):
        return None
    if (params.get("setting") or {}).get("normalize"):
        return WHOLE_CT_REVISION
    if (whole_image_types(params) or "Wavelet" in (params.get("imageType") or {})) \
            and (self_cropped or not pyradiomics_crops(params)):
        return WHOLE_CT_REVISION
    return None


def whole_ct_revision(params: dict) -> int | None:
    """:data:`WHOLE_CT_REVISION` when ``params`` has ``normalize``, or a Square-type image
    (:data:`lungai.radiomics.prepare.WHOLE_IMAGE_TYPES`) or a Wavelet image without pyradiomics' own crop
    (:func:`pyradiomics_crops`), no pyradiomics resampling and no IBSI configuration, else None."""
    return _whole_ct_revision(params, self_cropped=False)


def dropped_revisions(params: dict) -> dict[str, int]:
    """The revisions (keys of :data:`VALUE_REVISIONS`) a lungai of the current values recorded for ``params`` that no
    longer apply: the whole-CT revision of a Square-type / Wavelet image with pyradiomics' own crop
    (:func:`pyradiomics_crops`; the same values on the crop and on the whole CT).  Its ids, resume keys and cohort
    inputs are those of the same values."""
    old = _whole_ct_revision(params, self_cropped=True)
    return {"whole_ct_revision": old} if old and not whole_ct_revision(params) else {}


# Every revision of the values of a parameter set (the key it has in the ``lungai`` block of the settings, in
# radiomics-batch's resume key and in cohort's per-patient inputs): the function giving it, and why a result of an
# older lungai (without it) is redone / a model trained on one refused.  A parameter set without one keeps its id.
VALUE_REVISIONS = {
    "resampling_revision": (resampling_revision, "computed with the pyradiomics resampling (resampledPixelSpacing) of "
                                                 "an older lungai (before 0.2.0, a crop-shifted grid; values differ)"),
    "whole_ct_revision": (whole_ct_revision, "computed by an older lungai with normalize or a Square / SquareRoot / "
                                             "Logarithm / Exponential / Wavelet image on the segment's crop (now as "
                                             "pyradiomics on the whole CT; values differ)"),
}


def value_revisions(params: dict) -> dict[str, int]:
    """The revisions (:data:`VALUE_REVISIONS`) of ``params``' values, by key; empty when none applies."""
    return {key: revision for key, (revision_of, _) in VALUE_REVISIONS.items() if (revision := revision_of(params))}


def revision_reasons(keys) -> list[str]:
    """Why results without the revisions ``keys`` (of :data:`VALUE_REVISIONS`, and ``lung_grid_revision``:
    :data:`LUNG_GRID_REASON`) differ, one text each."""
    return [VALUE_REVISIONS[k][1] for k in VALUE_REVISIONS if k in set(keys)] \
        + ([LUNG_GRID_REASON] if "lung_grid_revision" in set(keys) else [])


# The revision of which segments lungai puts on its isotropic lung grid (``lung_spacing_mm``): 2 since lung segments are
# recognised by role (:func:`lungai.segment_roles.is_lung`: "Lung_R", "RT LUNG", "Lungs-GTV", "Lung (R)" ...; before,
# only the exact names of :data:`LUNG_NAMES_REVISION_1` were, the others computed on the CT's grid).  Carried only by
# the parameters of a run one of whose lung segments an older lungai left on the CT's grid
# (:func:`with_lung_grid_revision`: its settings id, sidecar, radiomics-batch resume key), so those parts are redone
# and rp models trained on the old values refused; runs whose lungs are named right_lung ... keep their id.
LUNG_GRID_REVISION = 2
LUNG_NAMES_REVISION_1 = ("right_lung", "left_lung", "lungs", "lungs_minus_tumour")   # case and spaces ignored
# why results of lung segments an older lungai left on the CT's grid differ (radiomics-batch's note, rp's refusals)
LUNG_GRID_REASON = ("their lung segments named otherwise than right_lung / left_lung / lungs / lungs_minus_tumour "
                    "(Lung_R, RT LUNG ...) were on the CT's grid, now on the isotropic lung grid (values differ)")


def lung_grid_revision(params: dict, names, lung_names=()) -> int | None:
    """:data:`LUNG_GRID_REVISION` when ``params`` put lung segments on lungai's lung grid (a lung spacing, no IBSI
    configuration, no pyradiomics resampling) and one of the segment ``names`` is a lung (by role, or listed in
    ``lung_names``: a structure mapped to a lung role) that a lungai before revision 2 left on the CT's grid (any name
    but :data:`LUNG_NAMES_REVISION_1`); else None."""
    from lungai.radiomics.prepare import is_lung_segment, lung_spacing, pyradiomics_resampling

    if (params.get("lungai") or {}).get("ibsi") is not None or not lung_spacing(params) \
            or pyradiomics_resampling(params):
        return None
    moved = [n for n in names if is_lung_segment(n, lung_names)
             and str(n).strip().lower().replace(" ", "_") not in LUNG_NAMES_REVISION_1]
    return LUNG_GRID_REVISION if moved else None


def with_lung_grid_revision(params: dict, names, lung_names=()) -> dict:
    """``params`` with ``lungai: {lung_grid_revision: 2}`` added when :func:`lung_grid_revision` applies to the segment
    ``names`` (kept when already there: one id for every case of a batch), else ``params`` itself."""
    revision = lung_grid_revision(params, list(names), lung_names)
    if not revision or (params.get("lungai") or {}).get("lung_grid_revision") == revision:
        return params
    return {**params, "lungai": {**(params.get("lungai") or {}), "lung_grid_revision": revision}}


def without_lung_grid_revision(params: dict) -> dict:
    """``params`` as a lungai before :data:`LUNG_GRID_REVISION` recorded them (its resume keys)."""
    block = dict(params.get("lungai") or {})
    if "lung_grid_revision" not in block:
        return params
    block.pop("lung_grid_revision")
    return {**params, "lungai": block}


def lungai_value_settings(params: dict) -> dict:
    """lungai's own block (``params["lungai"]``) as it changes values: the IBSI configuration (upper
    case), the lung segments' spacing and the revisions of its values (:func:`value_revisions`: for a parameter set
    that resamples with pyradiomics, the resampling revision; with normalize, a Square-type or a Wavelet image, the
    whole-CT revision) or, for a run with lung segments an older lungai left on the CT's
    grid, the lung grid revision (:func:`with_lung_grid_revision`); the spacing is left out when it changes nothing (0 / None:
    the CT's grid, as without the block; pyradiomics' resampling, whose grid holds every segment) or when an IBSI
    configuration fixes the grid."""
    block = dict(params.get("lungai") or {})
    if block.get("ibsi") is not None:
        block["ibsi"] = str(block["ibsi"]).upper()
        block.pop("lung_spacing_mm", None)          # the IBSI configuration fixes the grid
    else:
        block.pop("ibsi", None)
    if block.get("lung_spacing_mm") and not resampling_revision(params):
        block["lung_spacing_mm"] = float(block["lung_spacing_mm"])
    else:                   # pyradiomics resampling: its grid holds every segment, the lung spacing changes nothing
        block.pop("lung_spacing_mm", None)
    if not block.get("lung_spacing_mm"):       # no lung grid: nothing moved onto it
        block.pop("lung_grid_revision", None)
    for key in VALUE_REVISIONS:
        block.pop(key, None)
    block.update(value_revisions(params))
    return block


def equivalent_ids(settings: dict | None) -> set[str]:
    """The other id a table of the same values carries, given recorded value settings (a model card's, a sidecar's):
    settings that resample with pyradiomics recorded with a lung spacing (``lungai: {lung_spacing_mm: 2.0}``, from
    ``--lung-spacing`` before lungai refused it there) had an id of their own although the spacing changed nothing
    (pyradiomics' grid holds every segment); their id now leaves the spacing out (:func:`lungai_value_settings`), so
    they are the settings of that id.  Empty for any other settings (legacy ones, those resampled by a lungai before
    0.2.0 - their values differ - or without a lung spacing)."""
    if not isinstance(settings, dict) or not isinstance(settings.get("lungai"), dict):
        return set()
    block = settings["lungai"]
    if not block.get("lung_spacing_mm") or "resampling_revision" not in block or not resampling_revision(settings):
        return set()
    return {settings_id({**settings, "lungai": {k: v for k, v in block.items() if k != "lung_spacing_mm"}})}


# The lung spacings an older lungai accepted beside pyradiomics' resampledPixelSpacing (``--lung-spacing X``, the file's
# ``lungai: {lung_spacing_mm: X}``) and ignored: its records (ids, resume keys) are matched by trying them, 0.01 to
# 20 mm in steps of 0.01 mm (the spacing itself is recorded nowhere)
IGNORED_LUNG_SPACINGS = tuple(k / 100 for k in range(1, 2001))


def ignored_lung_spacing_ids(settings: dict | None) -> set[str]:
    """Every id a table of these recorded value settings' values may carry when they resample with pyradiomics (at
    the current resampling revision): the current id (without a lung spacing) and the ids an older lungai gave them
    with a lung spacing beside ``resampledPixelSpacing`` (an id of its own although the spacing changed nothing:
    :data:`IGNORED_LUNG_SPACINGS`).  ``settings`` recorded with or without the spacing (a sidecar's, a model card's);
    empty for any other settings (no resampling, legacy ones, those resampled by a lungai before 0.2.0).  Maps ids
    both ways: a model of either id takes tables of the other; rp train takes a table mixing them as one."""
    if not isinstance(settings, dict) or not isinstance(settings.get("lungai"), dict):
        return set()
    block = settings["lungai"]
    if "resampling_revision" not in block or not resampling_revision(settings):
        return set()
    current = value_settings({**settings, "lungai": {k: v for k, v in block.items() if k != "lung_spacing_mm"}})
    return {_hash_id(current)} | {_hash_id({**current, "lungai": {**current["lungai"], "lung_spacing_mm": x}})
                                  for x in IGNORED_LUNG_SPACINGS}


def ignored_lung_spacing_key(params: dict, key_of, recorded: str) -> bool:
    """Whether ``recorded`` (a resume key: radiomics-batch's ``params.key``, cohort's ``settings.key``) is
    ``key_of(params)`` of these parameters given with a lung spacing (``--lung-spacing X`` or the file's ``lungai:
    {lung_spacing_mm: X}``) beside pyradiomics' ``resampledPixelSpacing``: accepted by lungai before it refused the
    spacing there, and ignored (every segment on pyradiomics' grid), so the same values.  The spacing is not
    recorded: :data:`IGNORED_LUNG_SPACINGS` are tried, as given or as a whole number in the file."""
    if not resampling_revision(params):
        return False
    block = params.get("lungai") or {}
    return any(key_of({**params, "lungai": {**block, "lung_spacing_mm": x}}) == recorded
               for x in (None, *IGNORED_LUNG_SPACINGS, *range(1, 21)))


# Settings whose whole numbers lungai itself writes as decimals (``--log-sigma``, the LoG default sigma [1.0, 2.0, 3.0]):
# :func:`canonical_numbers` keeps them decimals, so every id lungai's own parameters had is kept
DECIMAL_SETTINGS = ("sigma",)


def canonical_numbers(value, key: str | None = None):
    """``value`` with every whole number written as a decimal (``binWidth: 25.0``, ``[2.0, 2.0, 2.0]``) as the integer
    (``25``, ``[2, 2, 2]``) - but for :data:`DECIMAL_SETTINGS` (LoG ``sigma: [1, 3]`` as ``[1.0, 3.0]``) -, in nested
    mappings and lists (booleans kept; ``key``: the setting ``value`` is of).  pyradiomics takes them as the same
    numbers, so ``binWidth: 25`` and ``binWidth: 25.0`` are the same settings (one settings id, one resume key)."""
    if isinstance(value, dict):
        return {k: canonical_numbers(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_numbers(v, key) for v in value]
    if key in DECIMAL_SETTINGS and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if key not in DECIMAL_SETTINGS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_params(params: dict, sigma_set: bool = True) -> dict:
    """``params`` with pyradiomics' blocks (``setting``, ``imageType``, ``voxelSetting``) in
    :func:`canonical_numbers` and the LoG sigmas as a set (:func:`canonical_sigma`; ``sigma_set=False``: in the order
    given, as an older lungai hashed them): what the resume keys of radiomics-batch and cohort hash (lungai's own
    block as given)."""
    out = {k: canonical_numbers(v) if k in ("setting", "imageType", "voxelSetting") else v for k, v in params.items()}
    if sigma_set:
        for block, key in (("setting", None), ("imageType", "LoG")):
            if isinstance(out.get(block), dict):
                out[block] = _with_canonical_sigma(out[block], key)
    return out


def _numbers(value, whole_as):
    """``value`` (nested lists) with its whole numbers as ``whole_as`` (int or float); booleans kept."""
    if isinstance(value, (list, tuple)):
        return [_numbers(v, whole_as) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return whole_as(value)
    return value


def written_forms(params: dict, limit: int = 10):
    """``params`` with the whole numbers of each setting of pyradiomics' blocks written as integers or as decimals,
    every combination (the first ``limit`` such settings): the parameters as an older lungai hashed them into a
    resume key, numbers as written (before :func:`canonical_params`), whichever way the file wrote them, and the LoG
    sigmas in the order given as well as a set (:func:`canonical_sigma`)."""
    forms = [canonical_params(params), canonical_params(params, sigma_set=False)]
    for canon in forms[: 1 if forms[0] == forms[1] else 2]:
        yield from _written_forms(canon, limit)


def _written_forms(canon: dict, limit: int):
    import copy
    import itertools

    slots = [(block, None, key) for block in ("setting", "voxelSetting") for key, v in (canon.get(block) or {}).items()
             if _numbers(v, str) != v]
    slots += [("imageType", name, key) for name, own in (canon.get("imageType") or {}).items()
              if isinstance(own, dict) for key, v in own.items() if _numbers(v, str) != v]
    slots = slots[:limit]
    for combo in itertools.product((int, float), repeat=len(slots)):
        out = copy.deepcopy(canon)
        for (block, name, key), whole_as in zip(slots, combo):
            where = out[block] if name is None else out[block][name]
            where[key] = _numbers(where[key], whole_as)
        yield out


def canonical_sigma(value):
    """A LoG ``sigma`` list (pyradiomics' ``setting`` or ``imageType: {LoG: ...}``) as one set of sigmas: sorted, each
    once (``[3.0, 1.0]`` and ``[1.0, 1.0, 3.0]`` are ``[1.0, 3.0]``: pyradiomics computes one image per sigma, named
    by the sigma, and lungai's crop margin is the largest sigma's, so the same values); anything else as given."""
    if not isinstance(value, (list, tuple)) \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return value
    return sorted(dict.fromkeys(float(v) for v in value))


def _with_canonical_sigma(block, key: str | None):
    """``block`` (``setting``, or the ``imageType`` block with ``key`` "LoG") with its ``sigma``
    :func:`canonical_sigma`."""
    where = block.get(key) if key else block
    if not isinstance(where, dict) or "sigma" not in where:
        return block
    fixed = {**where, "sigma": canonical_sigma(where["sigma"])}
    return {**block, key: fixed} if key else fixed


def value_settings(params: dict) -> dict:
    """The part of a parameter dict that changes feature values: pyradiomics' ``setting`` (without
    label / bookkeeping keys) and ``imageType`` (whole numbers as integers: :func:`canonical_numbers`; LoG sigmas as
    a set: :func:`canonical_sigma`), and lungai's ``lungai`` block (:func:`lungai_value_settings`, always present,
    possibly empty)."""
    setting = {k: v for k, v in (params.get("setting") or {}).items() if k not in _NOT_VALUE_AFFECTING}
    return {"setting": _with_canonical_sigma(canonical_numbers(setting), None),
            "imageType": _with_canonical_sigma(canonical_numbers(params.get("imageType") or {"Original": {}}), "LoG"),
            "lungai": lungai_value_settings(params)}


def current_id(recorded_id, settings: dict | None) -> str | None:
    """The id a table carries now whose recorded id and value settings (its sidecar's, a model card's) are
    ``recorded_id`` and ``settings``, when its values are the current ones: the settings hash to that id (recorded
    by a lungai of the current id scheme, not a legacy one) and carry every revision of the values that applies
    (:func:`value_revisions`).  It differs from ``recorded_id`` where only the id changed: whole numbers written as
    decimals (``binWidth: 25.0``, :func:`canonical_numbers`), a revision that no longer applies
    (:func:`dropped_revisions`).  None otherwise (legacy settings, values of an older lungai, unknown settings)."""
    if not isinstance(settings, dict) or not isinstance(settings.get("lungai"), dict) \
            or _hash_id(settings) != str(recorded_id):
        return None
    if any(key not in settings["lungai"] for key in value_revisions(settings)):
        return None
    return settings_id(settings)


def is_legacy_settings(settings: dict | None) -> bool:
    """Settings recorded by a lungai whose ids left out the ``lungai`` block (IBSI configuration, lung
    grid spacing): sidecars / model cards without the ``lungai`` key.  Their ids never equal a current id."""
    return isinstance(settings, dict) and "setting" in settings and "lungai" not in settings


def settings_id(params: dict) -> str:
    """``sha256:<12 hex>`` of the canonical JSON of :func:`value_settings`."""
    return _hash_id(value_settings(params))


def _hash_id(values: dict) -> str:
    blob = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def sidecar_path(csv_path) -> Path:
    p = Path(csv_path)
    return p.with_name(p.name[: -len(p.suffix)] + ".settings.json") if p.suffix else p.with_name(p.name + ".settings.json")


# The pyradiomics distribution and version with which the IBSI-1 compliance was verified (docs/radiomics.md).
# SlicerRadiomics (an EXTENSION_DEPENDS of the Slicer extension) ships upstream ``pyradiomics``, another
# distribution of the same ``radiomics`` module: its values are used, recorded, and noted (:func:`pyradiomics_note`).
VERIFIED_PYRADIOMICS = ("pyradiomics-bhklab", "3.1.4")
UNKNOWN_PYRADIOMICS_DISTRIBUTION = "unknown distribution (no package metadata)"
# the distributions known to provide the ``radiomics`` module, looked up by name before any other
KNOWN_PYRADIOMICS_DISTRIBUTIONS = (VERIFIED_PYRADIOMICS[0], "pyradiomics")


def pyradiomics_distribution() -> tuple[str, str] | None:
    """(distribution name, version) of the installed package that provides the ``radiomics`` module (the one
    ``import radiomics`` loads), e.g. ("pyradiomics-bhklab", "3.1.4") or ("pyradiomics", "3.0.1"); None when no
    ``radiomics`` module is installed; (:data:`UNKNOWN_PYRADIOMICS_DISTRIBUTION`, the module's ``__version__``) when
    no installed distribution's files are the module imported (a source checkout or a copied folder on PYTHONPATH).
    Nothing is imported but in that last case; looked up once per process (:func:`versions` is recorded per segment):
    the known distributions (:data:`KNOWN_PYRADIOMICS_DISTRIBUTIONS`) by name, else every installed distribution's
    file list (0.4-1.2 s)."""
    return _pyradiomics_distribution()


@functools.lru_cache(maxsize=1)
def _pyradiomics_distribution() -> tuple[str, str] | None:
    import importlib.util
    from importlib import metadata

    try:
        spec = importlib.util.find_spec("radiomics")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None

    def providing(names):
        for name, d in ((n, d) for n in names for d in metadata.distributions(name=n)):
            try:   # only the distribution whose files are the module imported (several may be installed)
                if spec.origin and Path(d.locate_file("radiomics/__init__.py")).resolve() == Path(spec.origin).resolve():
                    return (d.metadata["Name"] or name, d.version)
            except (OSError, TypeError, ValueError):
                pass
        return None

    # the known names first, found by name (0.01 s); then every installed distribution's top-level modules (a fork
    # of another name: 0.4-1.2 s of the start of `lungai radiomics` when it was the only lookup, QA startfollow65)
    found = (providing(KNOWN_PYRADIOMICS_DISTRIBUTIONS)
             or providing(dict.fromkeys(metadata.packages_distributions().get("radiomics", []))))
    if found:
        return found
    # a source checkout / copied folder on PYTHONPATH (no distribution's files): not one that happens to be installed
    # elsewhere - the module's own version, imported here only in this case
    try:
        import radiomics

        version = str(getattr(radiomics, "__version__", "unknown version"))
    except Exception:              # noqa: BLE001 - a broken copy: still recorded as unknown
        version = "unknown version"
    return (UNKNOWN_PYRADIOMICS_DISTRIBUTION, version)


def pyradiomics_note() -> str | None:
    """A note when the installed pyradiomics is not the distribution / version the IBSI-1 figures were verified
    with (None when it is, or when none is installed): the values are computed all the same."""
    found = pyradiomics_distribution()
    if found is None or tuple(found) == VERIFIED_PYRADIOMICS:
        return None
    dist, version = VERIFIED_PYRADIOMICS
    return (f"IBSI figures were verified with {dist} {version}; this is {found[0]} {found[1]}: "
            "run `lungai ibsi-check` to verify")


def versions() -> dict:
    """The versions of the software the values depend on: lungai, pyradiomics (its module version, and the
    distribution that provides it with that distribution's version), SimpleITK, numpy."""
    import numpy
    import SimpleITK

    import lungai

    try:
        import radiomics

        rad = str(radiomics.__version__)
    except ImportError:               # the IBSI presets alone need no pyradiomics
        rad = "not installed"
    dist = pyradiomics_distribution()
    return {"lungai": lungai.__version__, "pyradiomics": rad,
            "pyradiomics_distribution": " ".join(dist) if dist else "not installed",
            "SimpleITK": SimpleITK.Version_VersionString(), "numpy": numpy.__version__}


def versions_text() -> str:
    """:func:`versions` in one cell (the ``versions`` column of ``_settings.csv``): ``lungai 0.2.0; pyradiomics ...``."""
    return "; ".join(f"{k} {v}" for k, v in versions().items())


def ibsi_configuration(params: dict) -> dict | None:
    """The explicit values of the IBSI configuration a parameter set names (grid spacing, interpolator, re-segmentation,
    discretisation ...: :mod:`lungai.radiomics.ibsi.configs`), else None."""
    import dataclasses

    from lungai.radiomics.params import ibsi_config

    cfg = ibsi_config(params)
    if cfg is None:
        return None
    out = dataclasses.asdict(cfg)
    out["spacing_mm"] = out.pop("spacing")       # z None: the CT's own slice spacing (2D configuration B)
    out["dims"] = list(cfg.dims)
    return out


def ibsi_tags(params: dict) -> list[str]:
    """The IBSI tags an IBSI parameter set writes per segment (its configuration's, of its feature classes: the
    classes :class:`lungai.radiomics.features.extractor.IBSIExtractor` computes), else []."""
    from lungai.radiomics.features import CLASS_FAMILY
    from lungai.radiomics.ibsi.run import select_tags
    from lungai.radiomics.params import ibsi_config

    cfg = ibsi_config(params)
    return [] if cfg is None else select_tags(cfg, list(params.get("featureClass") or CLASS_FAMILY))


def ibsi_reference(params: dict) -> dict:
    """The sidecar's ``ibsi_reference`` of an IBSI parameter set: how many of its features per segment have an IBSI-1
    reference value (verified by ``lungai ibsi-check``), and those that have none (``ivh_auc``:
    :func:`lungai.radiomics.ibsi.run.reference_record`)."""
    from lungai.radiomics.ibsi.run import reference_record

    return reference_record(ibsi_tags(params))


def unverified_ibsi_note(params: dict, csv_path=None) -> str | None:
    """The ``note:`` of an IBSI parameter set some of whose features have no IBSI-1 reference value (``ivh_auc``:
    :func:`lungai.radiomics.ibsi.compare.unverified_note`), naming the sidecar of the table ``csv_path`` that records
    them; else None.  ``lungai radiomics`` and ``radiomics-batch`` print it with their result."""
    from lungai.radiomics.ibsi.compare import unverified_note

    if not ibsi_tags(params):
        return None
    record = ibsi_reference(params)
    return unverified_note(record["without_reference_value"], record["with_reference_value"],
                           sidecar_path(csv_path).name if csv_path is not None else None)


def write_sidecar(csv_path, params: dict) -> Path:
    """``<csv>.settings.json``: {"id": ..., "settings": ..., "versions": ..., "orientation": ...} next to a feature
    table (and for an IBSI preset, ``ibsi_configuration``: its explicit values, and ``ibsi_reference``: which of its
    features have an IBSI-1 reference value, :func:`ibsi_reference`; the id is that of ``settings`` alone;
    ``orientation``: the features are computed in LPS axial order, :func:`lungai.radiomics.prepare.in_lps`)."""
    from lungai.radiomics.prepare import COMPUTED_ORIENTATION

    path = sidecar_path(csv_path)
    # the orientation is not in the id: images stored in LPS order give the values they gave before (other orders,
    # computed on the array as stored before, are redone by radiomics-batch / cohort)
    doc = {"id": settings_id(params), "settings": value_settings(params), "versions": versions(),
           "orientation": COMPUTED_ORIENTATION + ": the image and masks reoriented to LPS before extraction"}
    if ibsi_configuration(params) is not None:
        doc["ibsi_configuration"] = ibsi_configuration(params)
        doc["ibsi_reference"] = ibsi_reference(params)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def _flat(settings: dict) -> dict:
    """Recorded value settings as {``block.key``: value}; an image type's own settings one level down
    (``imageType.LoG.sigma``), an image type without settings as ``imageType.Original`` = {}."""
    out = {}
    for block in ("setting", "imageType", "lungai"):
        for key, value in ((settings or {}).get(block) or {}).items():
            if block == "imageType" and isinstance(value, dict) and value:
                out.update({f"imageType.{key}.{k}": v for k, v in value.items()})
            else:
                out[f"{block}.{key}"] = value
    return out


def _same_number(a, b) -> bool:
    """``a`` and ``b`` the same number(s) written otherwise (25 and 25.0, [2, 2, 2] and [2.0, 2.0, 2.0])."""
    def numbers(v):
        v = v if isinstance(v, (list, tuple)) else [v]
        return [float(x) for x in v] if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) else None

    return numbers(a) is not None and numbers(a) == numbers(b)


def settings_differences(given: dict | None, expected: dict | None) -> list[str]:
    """Where recorded value settings ``given`` (a table's sidecar) differ from ``expected`` (a model card's), one text
    each: ``setting.binWidth 10 (here), 25 (the model's)``, ``imageType.Wavelet (here only)``; the same number written
    otherwise (25.0 for 25, recorded by a lungai whose ids counted it as other settings) is said to be the same.  Empty when either is unknown."""
    if not isinstance(given, dict) or not isinstance(expected, dict):
        return []
    a, b = _flat(given), _flat(expected)
    out = []
    for key in dict.fromkeys([*b, *a]):
        if key not in a:
            out.append(f"{key} (the model's only: {json.dumps(b[key], default=str)})")
        elif key not in b:
            out.append(f"{key} (here only: {json.dumps(a[key], default=str)})")
        elif json.dumps(a[key], sort_keys=True, default=str) != json.dumps(b[key], sort_keys=True, default=str):
            same = (" - the same number written otherwise (the same setting)"
                    if _same_number(a[key], b[key]) else "")
            out.append(f"{key} {json.dumps(a[key], default=str)} (here), {json.dumps(b[key], default=str)} "
                       f"(the model's){same}")
    return out


def read_sidecars(csv_paths) -> dict:
    """{id: settings} from the sidecars of ``csv_paths`` that have one."""
    out = {}
    for p in csv_paths:
        side = sidecar_path(p)
        if side.is_file():
            doc = json.loads(side.read_text(encoding="utf-8"))
            out[doc["id"]] = doc["settings"]
    return out
