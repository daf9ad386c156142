"""Reading model files safely: one policy for every model format of the project.

No pickle anywhere.  The formats a lungai model folder may hold:

* **JSON** (model cards, configs): plain data, read with :func:`read_json`, which turns a truncated or
  edited file (not JSON, or JSON that is not an object) into a clear :class:`~lungai.errors.InputError`.
* **safetensors** (torch weights, gene statistics, graphs): only tensors, no code.  Read with
  :func:`load_safetensors`, which turns a file that is not safetensors (e.g. a pickled
  ``torch.save`` file renamed) into a clear :class:`~lungai.errors.InputError`, and refuses weights
  holding NaN or infinite values (:func:`check_finite`): such a network predicts nothing usable
  (a segmentation would find "no tumour", silently).
* **skops** (scikit-learn pipelines): a zip of a JSON schema and arrays.  Read with
  :func:`load_skops`: every type the file names outside skops' own default-trusted set
  (scikit-learn estimators, numpy/scipy containers) must be on the caller's **explicit list of
  exact type names** (:data:`SKLEARN_EXTRA_TYPES` holds the ones lungai's models need);
  anything else (``builtins.exec``, ``builtins.eval``, ``os.system`` ...) is refused before the
  file is loaded.  Matching is by exact name, never by prefix.  Written with :func:`dump_skops`, which makes the
  file's bytes depend only on the object (the same model gives the same file).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from lungai.errors import InputCheckNote, InputError, InputNote, agree, counted, counted_of

# Types outside skops' default trusted set that lungai's scikit-learn models legitimately contain.
SKLEARN_EXTRA_TYPES = (
    "numpy.dtype",                                                     # every fitted estimator
    "sklearn.feature_selection._univariate_selection.f_classif",      # SelectKBest score function
    "sklearn.tree._tree.Tree",                                         # random forests, extra trees
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # histogram gradient boosting
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",     # MLPClassifier (adam)
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",      # MLPClassifier (sgd)
)


def dump_skops(obj, path, compresslevel: int | None = None) -> Path:
    """Write ``obj`` with ``skops.io.dumps`` into ``path`` (deflated zip), byte-identical for identical objects.

    skops names the arrays' files and the ``__id__`` of shared objects after Python's ``id()`` (memory addresses,
    other in every run) and stamps the zip members with the time: the zip is rewritten with every ``__id__`` and file
    renamed by its first appearance in the schema (``1``, ``2`` ...; the references to them renamed alike, so
    loading is unchanged), the members in that order and a fixed timestamp (1980-01-01); the padding bytes of
    structured arrays (a tree's nodes), left uninitialised by numpy, are zeroed."""
    import io
    import json
    import zipfile

    import skops.io as sio

    with zipfile.ZipFile(io.BytesIO(sio.dumps(obj))) as src:
        members = {name: src.read(name) for name in src.namelist()}
    schema = json.loads(members.pop("schema.json"))
    ids, files = {}, {}

    def rename(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int) and not isinstance(value, bool):
                    node[key] = ids.setdefault(value, len(ids) + 1)       # 0 would not be memoised: from 1
                elif key == "file" and isinstance(value, str) and value in members:
                    node[key] = files.setdefault(value, f"{len(files) + 1}{Path(value).suffix}")
                else:
                    rename(value)
        elif isinstance(node, list):
            for value in node:
                rename(value)

    rename(schema)
    for name in files:
        if name.endswith(".npy"):
            members[name] = _zero_padding(members[name])
    unnamed = sorted(set(members) - set(files))
    if unnamed:   # a file the schema does not name: nothing to rename it after (never so for skops' own files)
        raise RuntimeError(f"skops wrote files its schema does not name: {unnamed[:5]}")
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as out:
        for name, data in [("schema.json", json.dumps(schema, indent=2).encode("utf-8"))] + \
                          [(new, members[old]) for old, new in files.items()]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr, info.create_system = zipfile.ZIP_DEFLATED, 0o644 << 16, 3
            out.writestr(info, data, compresslevel=compresslevel)
    return path


def _zero_padding(npy: bytes) -> bytes:
    """The ``.npy`` bytes of an array of a structured dtype with the padding between its fields zeroed (numpy leaves
    it uninitialised: any bytes, other in every run); other arrays as they are."""
    import io

    import numpy as np

    array = np.load(io.BytesIO(npy), allow_pickle=False)
    if array.dtype.names is None or array.dtype.itemsize == sum(array.dtype.fields[n][0].itemsize
                                                                  for n in array.dtype.names):
        return npy
    clean = np.zeros(array.shape, array.dtype)           # zeroed memory, padding included
    for name in array.dtype.names:
        clean[name] = array[name]
    buffer = io.BytesIO()
    np.save(buffer, clean, allow_pickle=False)
    return buffer.getvalue()


def load_skops(path, trusted=SKLEARN_EXTRA_TYPES, what: str = "model file",
               fix: str = "only load model files written by lungai; retrain the model"):
    """The object in a skops file, after checking every type it names against ``trusted``
    (exact names).  Raises :class:`InputError` naming the refused types."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} is missing", "copy the whole model folder")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad model file
        raise InputError(f"{what} {path} is not a readable skops file ({type(exc).__name__}: {exc})", fix) from exc
    refused = sorted(t for t in untrusted if t not in set(trusted))
    if refused:
        raise InputError(f"{what} {path} contains types that a lungai model never needs and that could run "
                         f"code: {refused}", "do not load model files from unknown sources; " + fix)
    return sio.load(path, trusted=list(untrusted))


WEIGHTS_FIX = "use the model folder exactly as lungai wrote it, or retrain"


def read_json(path, fix: str, what: str = "model description") -> dict:
    """The JSON object in ``path`` (a model folder's model.json / stage_model.json ...); a file that is not
    readable JSON (truncated, edited) or holds JSON that is not an object raises :class:`InputError` naming it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:        # truncated or edited: JSONDecodeError is a ValueError
        raise InputError(f"{path} is not readable JSON ({exc})", fix) from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc})", fix) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path} holds a JSON {type(doc).__name__}, not a {what}", fix)
    return doc


def check_finite(tensors: dict, path, what: str = "model weights", fix: str = WEIGHTS_FIX) -> dict:
    """``tensors`` when every floating-point value is finite; a NaN or infinite value (a diverged training run,
    a damaged file) raises :class:`InputError` naming the file and the tensor."""
    import torch

    for name, t in tensors.items():
        if torch.is_tensor(t) and (t.is_floating_point() or t.is_complex()):
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                raise InputError(f"{what} {path}: {int(bad.sum())} of the {t.numel()} values of {name!r} are NaN or "
                                 "infinite; a network with such weights predicts nothing usable", fix)
    return tensors


def load_safetensors(path, what: str = "model weights", fix: str = WEIGHTS_FIX) -> dict:
    """``{name: torch.Tensor}`` of a safetensors file; a missing or non-safetensors file (for
    example a pickled checkpoint renamed) or one holding NaN / infinite values (:func:`check_finite`) raises
    :class:`InputError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} is missing", "copy the whole model folder")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{what} {path} is not a safetensors file ({exc}); lungai never loads pickled "
                         "weights", fix) from exc
    return check_finite(tensors, path, what, fix)


def save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``{name: torch.Tensor}`` as a safetensors file with the mode of the other files lungai writes (0666
    less the umask; safetensors' own writer leaves 0600).  ``metadata``: ``{str: str}`` kept in the file's header
    (:func:`safetensors_metadata`)."""
    import os

    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def safetensors_metadata(path, what: str = "model weights", fix: str = WEIGHTS_FIX) -> dict:
    """The ``{str: str}`` metadata of a safetensors file's header ({} when it has none); read without the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{what} {path} is not a safetensors file ({exc}); lungai never loads pickled "
                         "weights", fix) from exc


def finite_json(obj):
    """``obj`` with every non-finite float (NaN, +-inf; numpy floats too) replaced by None, so that the JSON
    written is strict (``NaN`` is not JSON); readers take null as "not available"."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None
    return obj


def write_json(path, doc: dict) -> None:
    """Write ``doc`` as strict JSON (non-finite floats as null, :func:`finite_json`), atomically: model.json,
    result.json, summary.json, reports - the one JSON writer of lungai's outputs."""
    from lungai.io.outputs import writing

    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(finite_json(doc), indent=2, default=float, allow_nan=False) + "\n"
    with writing(path):
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


# ------------------------------------------------------------------------------ training patients (no plain IDs)
# A locked model records its training patients (``training_patients`` in its JSON card) as salted SHA-256 hashes of
# their IDs, never the IDs themselves: an external validation can then tell a patient the model was trained on, and
# leave it out (`lungai stage validate`, `lungai rp validate`).  A patient may carry several IDs (a lungai cohort
# table: the per-series ``case`` P_1 and the ``patient_id`` P): the hashes of every one are recorded, and a patient
# to validate overlaps when any of its IDs matches.  A second set (``sha256_loose``) hashes a loose form of each ID
# (:func:`loose_id`: case folded, leading zeros of numbers dropped, look-alike dashes as "-", invisible characters
# dropped): a patient matching only there is not left out, a note asks to check its IDs.  The salt is a hash of the
# whole training cohort's IDs: the same cohort gives the same salt (the same seed keeps giving byte-identical model files), two cohorts unrelated salts (a patient in both
# gets unrelated hashes).  It is stored with the hashes, so this is pseudonymisation, not secrecy: whoever holds the
# model can test a guessed ID.  (Other files of a model folder may hold plain IDs: see the docs of each model.)
ID_HASH = "sha256(salt + NUL + patient id)"


def _id_hash(salt: str, pid) -> str:
    return hashlib.sha256(f"{salt}\0{str(pid).strip()}".encode("utf-8")).hexdigest()


def loose_id(pid) -> str:
    """``pid`` without what a spreadsheet or a typist changes: case folded, leading zeros of every run of digits
    dropped ('LUNG1-007' and 'lung1-7' give the same), Unicode composed (:func:`lungai.io.tables.id_text`: a
    decomposed 'Müller' is the precomposed one), a look-alike of '-' written '-'
    (:func:`lungai.io.tables.plain_dashes`: 'LUNG1\u2013007' with an en dash is 'lung1-7'), invisible characters
    dropped (:func:`lungai.io.tables.without_invisible`: a soft hyphen, a zero-width space).  Separators are kept (the
    hashes of models already written were taken of this form: 'lung1-7' must stay 'lung1-7')."""
    from lungai.io.tables import id_text, plain_dashes, without_invisible, without_padding_zeros

    return without_padding_zeros(plain_dashes(id_text(without_invisible(pid))).casefold())


def _id_set(row) -> tuple:
    """The IDs of one patient: a single ID, or a tuple / list of its IDs (blank ones dropped)."""
    values = row if isinstance(row, (tuple, list)) else (row,)
    return tuple(str(v).strip() for v in values if v is not None and str(v).strip() not in ("", "nan", "None"))


def _shown_id(row) -> str:
    ids = _id_set(row)
    return ids[0] if ids else str(row)


def training_patients(ids) -> dict:
    """The ``training_patients`` record of a model trained on ``ids`` (one entry per patient: its ID, or a tuple of
    its IDs): the cohort's salt, the sorted salted SHA-256 hashes of every ID (``sha256``) and of their loose forms
    (``sha256_loose``, :func:`loose_id`); no ID in plain text."""
    every = sorted({i for row in ids for i in _id_set(row)})
    salt = hashlib.sha256(f"lungai training patients\0{chr(0).join(every)}".encode("utf-8")).hexdigest()[:32]
    return {"hash": ID_HASH, "salt": salt, "n": len(ids), "sha256": sorted({_id_hash(salt, i) for i in every}),
            "sha256_loose": sorted({_id_hash(salt, loose_id(i)) for i in every})}


def _hash_set(rec: dict, key: str) -> set:
    return {h for h in rec.get(key) or () if isinstance(h, str)} if isinstance(rec.get(key), list) else set()


def training_overlap(meta: dict, ids, loose: bool = False) -> list | None:
    """The patients of ``ids`` (each an ID or a tuple of its IDs) that were in the model's training cohort - any of
    their IDs recorded - in the order of ``ids``; None when the model records no usable ``training_patients`` (a
    model of a lungai before 2026-12: cannot be checked).  ``loose``: instead the patients not in the cohort whose
    IDs match a training patient's only ignoring case / leading zeros / look-alike dashes (empty for a model without
    ``sha256_loose``)."""
    rec = meta.get("training_patients")
    if not isinstance(rec, dict) or not isinstance(rec.get("salt"), str) or not isinstance(rec.get("sha256"), list):
        return None
    salt, known = rec["salt"], _hash_set(rec, "sha256")
    ids = list(ids)
    exact = [any(_id_hash(salt, i) in known for i in _id_set(row)) for row in ids]
    if not loose:
        return [row for row, hit in zip(ids, exact) if hit]
    near = _hash_set(rec, "sha256_loose")
    return [row for row, hit in zip(ids, exact) if not hit and any(_id_hash(salt, loose_id(i)) in near
                                                                   for i in _id_set(row))]


OVERLAP_EXAMPLES = 5     # patient IDs a note / error names


def _shown(ids) -> str:
    return ", ".join(map(_shown_id, ids[:OVERLAP_EXAMPLES])) + (" ..." if len(ids) > OVERLAP_EXAMPLES else "")


def external_patients(meta: dict, ids, include_training: bool = False, *, train: str, honest: str,
                      unchecked: str | None = None) -> tuple[list, dict, list[str]]:
    """(kept ids, record, notes) of an external validation of a locked model on the patients ``ids`` (``lungai stage
    validate``, ``lungai rp validate``): the patients the model was trained on (:func:`training_overlap`) are left out
    (their scores are in-sample: the model has seen their labels); with ``include_training`` they are kept and the
    record says the metrics are not external.  ``record`` is the metrics part: ``n_training_overlap`` (None when the
    model cannot tell), ``training_overlap_checked``, ``training_overlap_examples``, ``training_patients_included``,
    ``external`` (whether the metrics are an external validation; None: unknown).  Every patient a training patient,
    and not included: an :class:`InputError`.  ``train``: the command that records the hashes (e.g. "`lungai stage
    train`"); ``honest``: where the honest estimate on the training cohort is; ``unchecked``: why overlap cannot be
    checked when the caller knows better than "no hashes" (e.g. a table without a patient ID column)."""
    ids = list(ids)
    overlap = None if unchecked else training_overlap(meta, ids)
    if overlap is None:
        note = unchecked or ("this model records no training patient hashes (trained by an older lungai); make sure "
                             f"none of these patients was in its training cohort, or retrain with {train} to "
                             "record them")
        return ids, {"n_training_overlap": None, "training_overlap_checked": False, "external": None}, \
            [f"overlap with the training cohort cannot be checked: {note}"]
    near = training_overlap(meta, ids, loose=True)
    record = {"n_training_overlap": len(overlap), "training_overlap_checked": True,
              "training_overlap_examples": [_shown_id(i) for i in overlap[:OVERLAP_EXAMPLES]],
              "training_patients_included": bool(include_training and overlap), "external": True,
              "n_training_loose_match": len(near)}
    k = len(near)
    loose_note = [f"{counted(k, 'patient')} {agree(k, 'matches', 'match')} a training patient ignoring case / leading "
                  f"zeros / look-alike dashes ({_shown(near)}): check the IDs - {agree(k, 'it is', 'they are')} "
                  f"validated as external; write the IDs as at training if "
                  f"{agree(k, 'it is the same patient', 'they are the same patients')}"] if near else []
    if not overlap:
        return ids, record, loose_note
    n = len(ids)
    if include_training:
        record["external"] = False
        return ids, record, loose_note + [
            f"{counted_of(len(overlap), n, 'patient')} {agree(len(overlap), 'was', 'were')} in the model's training "
            f"cohort ({_shown(overlap)}) and {agree(len(overlap), 'is', 'are')} scored as asked (--include-training-patients): these "
                             "metrics are NOT an external validation (in-sample for those patients: optimistic)"]
    if len(overlap) == n:
        raise InputError(f"{counted_of(n, n, 'patient')} of the validation cohort {agree(n, 'was', 'were')} in the "
                         "locked model's training cohort "
                         f"({_shown(overlap)}): their scores would be in-sample (the model has seen their labels), "
                         "not an external validation",
                         f"validate on patients the model never saw (an external cohort); {honest} (add "
                         "--include-training-patients only to see the in-sample fit, labelled as not external)")
    known = set(overlap)
    kept = [i for i in ids if i not in known]
    return kept, record, loose_note + [f"{counted_of(len(overlap), n, 'patient')} {agree(len(overlap), 'was', 'were')} in the "
                          f"model's training cohort ({_shown(overlap)}) and {agree(len(overlap), 'is', 'are')} left out "
                          f"of the external validation (their scores would be in-sample); "
                          f"{counted(len(kept), 'patient')} {agree(len(kept), 'is', 'are')} validated (--include-training-patients scores them "
                          "too, labelled as not external)"]


def external_notes(notes, record: dict, ids) -> list:
    """The ``notes`` of :func:`external_patients` (its ``record``, for the patients ``ids``: each an ID or a tuple of
    its IDs) as the warnings ``lungai stage validate`` and ``lungai rp validate`` say: each an
    :class:`lungai.errors.InputNote` ("warning: ...": the training patients scored, the metrics not external) or an
    :class:`lungai.errors.InputCheckNote` ("note: ...": left out, an ID matching only ignoring case, overlap not
    checked), with its ``without_ids`` form (:func:`without_named_ids`).  (QA stageoverlap64, rpoverlap64: before,
    plain printed texts naming IDs, with no such form.)"""
    kind = InputNote if record.get("external") is False else InputCheckNote
    return [kind(text, without_ids=without_named_ids(text, ids)) for text in notes]


def without_named_ids(text: str, ids) -> str | None:
    """``text`` less each " (ID, ID ...)" naming patients of ``ids`` (each an ID or a tuple of its IDs; as
    :func:`external_patients` names a few, the count said beside them); None when it names none.  The list is matched
    as the known IDs themselves (longest first), not split at ", ": an ID holding ", " or parentheses ("Smith, J",
    "R01-001 (a)") is dropped too (QA ids65: before, such a note kept its IDs in the form without them)."""
    import re

    known = sorted({i for row in ids for i in _id_set(row)}, key=lambda i: (-len(i), i))
    if not known:
        return None
    one = "(?:" + "|".join(map(re.escape, known)) + ")"
    out = re.sub(rf" \({one}(?:, {one})*(?: \.\.\.)?\)", "", text)
    return out if out != text else None


# a prediction for a patient the locked model was trained on (stage / rp predict: a notes / warnings cell per patient)
IN_SAMPLE_TEMPLATE = ("a training patient of this model: the prediction is in-sample (the model was fitted to this "
                  "patient's {fitted}) - optimistic, not an honest estimate; {honest} gives the out-of-fold one")
LOOSE_MATCH_NOTE = ("the ID matches a training patient's only ignoring case / leading zeros / look-alike dashes: if it "
                    "is that patient, the prediction is in-sample (optimistic) - write the ID as at training to check")


def in_sample_patients(meta: dict, ids, *, fitted: str, honest: str, train: str, column: str,
                       unchecked: str | None = None) -> tuple[list | None, dict, InputNote | None]:
    """(flags, notes, warning) for the predictions of a locked model (``meta``: its model description) for the patients
    ``ids`` (each an ID or a tuple of its IDs) - ``lungai stage predict`` / ``lungai rp predict``, their Python API and
    Slicer paths: ``flags`` per patient True when it was in the model's training cohort (:func:`training_overlap`), None
    when that cannot be said; ``notes`` {id: note}: :data:`IN_SAMPLE_TEMPLATE` (``fitted``: what the model was fitted
    to, "stage"; ``honest``: where the out-of-fold estimate is) or, for an ID matching only loosely,
    :data:`LOOSE_MATCH_NOTE`; ``warning``: one text counting them, naming ``column`` (the output's column of the notes;
    None when there are none), or saying that it cannot be said (a model without hashes - ``train`` records them -, or
    ``unchecked``: the caller's reason) - an :class:`lungai.errors.InputNote` whose ``without_ids`` form counts the
    patients without naming them (QA stagefollow64: before, a plain text, the one ID-naming note of stage predict
    without that form).  Before, a training patient's in-sample prediction read like one of a new patient's."""
    ids = list(ids)
    seen = None if unchecked else training_overlap(meta, ids)
    if seen is None:
        why = unchecked or ("the model records no training patients (trained by an older lungai) - retrain with "
                            f"{train} to record them")
        return None, {}, InputNote("whether a patient was in the model's training cohort (an in-sample, optimistic "
                                   f"prediction) cannot be said: {why}")
    near = training_overlap(meta, ids, loose=True)
    in_sample = IN_SAMPLE_TEMPLATE.format(fitted=fitted, honest=honest)
    notes = {i: in_sample for i in seen} | {i: LOOSE_MATCH_NOTE for i in near}
    texts = []       # (with the IDs named, without them)
    if seen:
        head = (f"{counted_of(len(seen), len(ids), 'patient')} {agree(len(seen), 'was', 'were')} in the model's "
                "training cohort")
        texts.append((head, f" ({_shown(seen)})", f": {agree(len(seen), 'its prediction is', 'their predictions are')} "
                      f"in-sample (the model was fitted to {agree(len(seen), 'its', 'their')} {fitted}) - optimistic, "
                      f"not an honest estimate; marked in the training_patient and {column} columns ({honest} gives "
                      "the out-of-fold estimate)"))
    if near:
        k = len(near)
        those = agree(k, "it is that patient, its prediction is", "they are those patients, their predictions are")
        texts.append((f"{counted(k, 'patient')} {agree(k, 'matches', 'match')} a training patient's ID only ignoring "
                      "case / leading zeros / look-alike dashes", f" ({_shown(near)})",
                      f": if {those} in-sample - write the IDs as at training to check"))
    seen = set(seen)
    warning = InputNote("; ".join(head + named + tail for head, named, tail in texts),
                        without_ids="; ".join(head + tail for head, _, tail in texts)) if texts else None
    return [i in seen for i in ids], notes, warning
