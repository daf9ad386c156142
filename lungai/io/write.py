"""Write images as NIfTI / NRRD / MHA, refusing to overwrite inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import SimpleITK as sitk

from lungai.errors import InputError

WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def check_image_name(path: str | Path) -> Path:
    """An output image's name must say its format (one of ``WRITE_SUFFIXES``); a command checks it before any work,
    :func:`write_image` again when writing."""
    p = Path(path)
    if not any(p.name.lower().endswith(s) for s in WRITE_SUFFIXES):
        raise InputError(f"cannot write {p.name}: unknown image format",
                         "name the output .nii.gz, .nii, .nrrd or .mha")
    return p


def write_image(img: sitk.Image, path: str | Path, protect: Iterable[str | Path] = ()) -> Path:
    """Write ``img`` (compressed) to ``path``; never onto a path listed in ``protect`` (the inputs)."""
    p = check_image_name(path)
    name = p.name.lower()
    for other in protect:
        if Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output folder or name")
    from lungai.io.outputs import writing

    tmp = p.with_name(".partial-" + p.name)  # same extension, so the same format is written
    with writing(p):
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(img, str(tmp), useCompression=not name.endswith(".nii"))
            tmp.replace(p)
        finally:
            tmp.unlink(missing_ok=True)
    return p


def output_stem(path: str | Path) -> Path:
    """``out/lungs.nii.gz`` -> ``out/lungs`` (the name without its image suffix), for files written beside it."""
    p = Path(path)
    name = p.name
    for suffix in sorted(WRITE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)])
    return p.with_name(name.split(".")[0])
