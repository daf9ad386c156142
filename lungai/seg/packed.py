"""Training arrays packed into one file, to train on another machine (an accelerator) without the source data.

``train-seg --save-arrays FILE`` writes the train and validation arrays of a run (on the model grid, after the
patient-level split); ``train-seg --from-arrays FILE`` trains the members' checkpoints from it; the same command
without either flag, with ``--resume``, then saves and calibrates the model where the source data is.

Format: an ``.npz`` (zip, LZMA-compressed) of plain arrays (loaded with ``allow_pickle=False``) and one JSON
string. Images are kept as 255 steps of the model's window (uint8: round(x * 255) for the windowed value x in
[0, 1]; 5.5 HU steps for the default -1000..400 HU window, at most 2.75 HU from the floating-point value, below
CT noise), which with LZMA makes the file ~0.4x of 16-bit zlib: transfers to accelerators are size-limited.
``max_whole`` keeps at most that many whole CTs (real CTs first, training split only; the whole CTs are by far
the largest arrays); the left-out case ids are recorded in the file and in the members' checkpoints.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from lungai.errors import InputError

FORMAT = "lungai-seg-arrays-1"
LEVELS = 255
PREPROCESSING_KEYS = ("spacing", "hu_window", "roi_margin_mm")
_INDEX_KEYS = ("hard_idx", "tumour_idx")


def _preprocessing(cfg) -> dict:
    return {k: [float(v) for v in getattr(cfg, k)] if isinstance(getattr(cfg, k), (tuple, list))
            else float(getattr(cfg, k)) for k in PREPROCESSING_KEYS}


def _kept(train_data: list, val_data: list, max_whole: int | None) -> tuple:
    """(train, val, left-out case ids): at most ``max_whole`` whole CTs, real ones first, training split only."""
    if max_whole is None:
        return train_data, val_data, []
    whole = [d for d in train_data if "hard_idx" in d]
    ranked = sorted(whole, key=lambda d: d["case_id"].startswith("chest-"))     # real CTs before synthetic chests
    keep = {id(d) for d in ranked[:max(0, int(max_whole))]}
    left = [d["case_id"] for d in whole if id(d) not in keep] + [d["case_id"] for d in val_data if "hard_idx" in d]
    return ([d for d in train_data if "hard_idx" not in d or id(d) in keep],
            [d for d in val_data if "hard_idx" not in d], left)


def check_target(path) -> Path:
    """The file to write: an .npz name that does not exist yet (nothing the user made is overwritten)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"{path} is not an .npz file name", "give e.g. --save-arrays seg_arrays.npz")
    if path.exists():
        raise InputError(f"{path} already exists", "give a new file name, or move the old file away")
    return path


def kept_case_count(train_data: list, val_data: list, max_whole: int | None = None) -> int:
    """How many cases :func:`save_arrays` writes (for a progress bar)."""
    tr, va, _ = _kept(train_data, val_data, max_whole)
    return len(tr) + len(va)


def save_arrays(path, train_data: list, val_data: list, cfg, split: dict, max_whole: int | None = None,
                progress=None) -> Path:
    """Writes ``path`` (.npz); ``split`` records how the cases were split (seed, fractions, case ids).
    ``progress`` (a :mod:`lungai.progress` bar) advances by one per case written (LZMA takes ~1 min for ~900)."""
    path = check_target(path)
    train_data, val_data, left_out = _kept(train_data, val_data, max_whole)
    arrays, entries = {}, []
    for part, data in (("train", train_data), ("val", val_data)):
        for i, d in enumerate(data):
            key = f"{part}{i}"
            img = np.asarray(d["image"], dtype=np.float32)
            arrays[f"{key}_image"] = np.round(np.clip(img, 0.0, 1.0) * LEVELS).astype(np.uint8)
            arrays[f"{key}_label"] = np.asarray(d["label"], dtype=np.uint8)
            for k in _INDEX_KEYS:
                if k in d:
                    arrays[f"{key}_{k}"] = np.asarray(d[k], dtype=np.int32)
            entries.append({"key": key, "part": part, "case_id": d["case_id"],
                            "implanted": bool(d.get("implanted", False)),
                            "indices": [k for k in _INDEX_KEYS if k in d]})
    doc = {"format": FORMAT, "preprocessing": _preprocessing(cfg), "split": dict(split, left_out=left_out),
           "cases": entries}
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            zf.writestr(name + ".npy", buf.getvalue())
            if progress is not None and name.endswith("_image"):
                progress.update(1, name[: -len("_image")])
    tmp.replace(path)
    return path


def load_arrays(path, cfg) -> tuple:
    """(train_data, val_data, split) from a file of :func:`save_arrays`; refuses a file made for other
    preprocessing than ``cfg``'s."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training arrays {path} not found", "write them with train-seg --save-arrays FILE")
    try:
        z = np.load(path, allow_pickle=False)
        doc = json.loads(bytes(z["__meta__"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path} is not a training-arrays file ({e})",
                         "write it with train-seg --save-arrays FILE") from None
    if doc.get("format") != FORMAT:
        raise InputError(f"{path} has format {doc.get('format')!r}, not {FORMAT}",
                         "write it again with this version's train-seg --save-arrays")
    if doc["preprocessing"] != _preprocessing(cfg):
        raise InputError(f"{path} was made for preprocessing {doc['preprocessing']}, not {_preprocessing(cfg)}",
                         "give the same --spacing as the --save-arrays command, or write the arrays again")
    train_data, val_data = [], []
    for e in doc["cases"]:
        key = e["key"]
        d = {"image": z[f"{key}_image"].astype(np.float32) / np.float32(LEVELS), "label": z[f"{key}_label"],
             "case_id": e["case_id"]}
        if e["indices"]:
            d.update({k: z[f"{key}_{k}"] for k in e["indices"]})
        else:
            d["implanted"] = e["implanted"]
        (train_data if e["part"] == "train" else val_data).append(d)
    return train_data, val_data, doc["split"]
