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
  file is loaded.  Matching is by exact name, never by prefix.
"""

from __future__ import annotations

import json
from pathlib import Path

from lungai.errors import InputError

# Types outside skops' default trusted set that lungai's scikit-learn models legitimately contain.
SKLEARN_EXTRA_TYPES = (
    "numpy.dtype",                                                     # every fitted estimator
    "sklearn.feature_selection._univariate_selection.f_classif",      # SelectKBest score function
    "sklearn.tree._tree.Tree",                                         # random forests, extra trees
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # histogram gradient boosting
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",     # MLPClassifier (adam)
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",      # MLPClassifier (sgd)
)


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


def save_safetensors(tensors: dict, path) -> None:
    """Write ``{name: torch.Tensor}`` as a safetensors file with the mode of the other files lungai writes (0666
    less the umask; safetensors' own writer leaves 0600)."""
    import os

    from safetensors.torch import save_file

    save_file(tensors, str(path))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
