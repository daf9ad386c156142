"""Write images as NIfTI / NRRD / MHA, refusing to overwrite inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from lungai.errors import InputError

if TYPE_CHECKING:       # SimpleITK imported where an image is written: check_image_name is an argument check, before
    import SimpleITK as sitk    # any heavy import (`lungai lungs`' refusals; QA notesfollow71)

WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def _suffix_of(name: str) -> str | None:
    """The image suffix of ``name`` as written there (``.NII.GZ`` of ``LUNGS.NII.GZ``), or None."""
    for suffix in sorted(WRITE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[-len(suffix):]
    return None


def check_image_name(path: str | Path) -> Path:
    """An output image's name must say its format (one of ``WRITE_SUFFIXES``), in lower case or in capitals (ITK,
    hence lungai and Slicer, reads ``LUNGS.NII.GZ`` back, not ``.Nii.Gz`` / ``.nii.GZ`` nor a ``.MHA``); a command
    checks it before any work, :func:`write_image` again when writing."""
    p = Path(path)
    suffix = _suffix_of(p.name)
    if suffix is None:
        raise InputError(f"cannot write {p.name}: unknown image format",
                         "name the output .nii.gz, .nii, .nrrd or .mha")
    if suffix != suffix.lower() and (suffix != suffix.upper() or suffix.lower() == ".mha"):
        raise InputError(f"cannot write {p.name}: an image named with the suffix {suffix!r} cannot be read back "
                         "(ITK-based programs such as lungai and 3D Slicer do not recognise it)",
                         f"name the output with the suffix {suffix.lower()!r} (lower case)")
    return p


def write_image(img: sitk.Image, path: str | Path, protect: Iterable[str | Path] = (), compress: bool = True) -> Path:
    """Write ``img`` (compressed; ``compress=False``: not, where the format lets the writer choose - a ``.nrrd`` or
    ``.mha``, never a ``.nii.gz``) to ``path``; never onto a path listed in ``protect`` (the inputs).  The image is
    written to a temporary file beside it, checked, then renamed to ``path``: ITK does not report a short write of
    a NIfTI file (a full disk, a file size limit), so a ``.nii`` / ``.nii.gz`` is checked complete
    (:func:`lungai.io.nifti.nifti_incomplete`, the whole gzip stream read) - a cut-off one is removed and refused
    as a write error, never left under ``path`` as a result."""
    from lungai.io.read import SLICE_UIDS_KEY

    p = check_image_name(path)
    for other in protect:
        if Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise InputError(f"refusing to overwrite the input {p}", "choose another output folder or name")

    # a DICOM CT's slice UIDs: for checks while it is read, not a file's header; taken off for the write and put
    # back (SimpleITK: erasing it from a copy of the image erases it from the image too)
    slice_uids = img.GetMetaData(SLICE_UIDS_KEY) if img.HasMetaDataKey(SLICE_UIDS_KEY) else None
    if slice_uids is not None:
        img.EraseMetaData(SLICE_UIDS_KEY)
    try:
        return _write_image(img, p, compress)
    finally:
        if slice_uids is not None:
            img.SetMetaData(SLICE_UIDS_KEY, slice_uids)


def _write_image(img: sitk.Image, p: Path, compress: bool = True) -> Path:
    """:func:`write_image`'s write of ``img`` to ``p`` (checked) through a temporary file."""
    from lungai.io.nifti import nifti_incomplete
    from lungai.io.outputs import file_error, writing

    name = p.name.lower()
    tmp = temp_image_name(p)
    with writing(p):
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)         # a stale one of a killed write (never renamed)
            import SimpleITK as sitk

            sitk.WriteImage(img, str(tmp), useCompression=compress and not name.endswith(".nii"))
            if not tmp.exists():
                raise file_error(OSError(0, "ITK wrote no file under the name given"), p)
            why = nifti_incomplete(tmp, full=True)
            if why:
                raise file_error(OSError(0, f"the file written is incomplete ({why}): the disk may be full, or "
                                            "a file size limit reached"), p)
            tmp.replace(p)
        finally:
            tmp.unlink(missing_ok=True)
    return p


def temp_image_name(path: str | Path) -> Path:
    """The temporary file an image is written to before it takes ``path``'s name: ``.partial-<hash><suffix>``
    beside it, with ``path``'s image suffix in lower case (ITK writes no NIfTI named .NII.GZ).  ``<hash>`` (16 hex
    digits of the SHA-1 of ``path``'s name) is the same on every run: a write killed before its rename leaves one
    file, which the next write of that output replaces - not a new one (tens of MB) per killed run.  Its stem holds
    no dot, so ITK cannot shorten it (ITK writes ``x.nii.nii.gz`` as ``x.nii.gz``: a name built from the output's
    own stem, ``.partial-lungs.nii.nii.gz``, would leave a ``.partial-lungs.nii.gz`` behind)."""
    p = check_image_name(path)
    suffix = _suffix_of(p.name)
    return p.with_name(f".partial-{hashlib.sha1(p.name.encode('utf-8')).hexdigest()[:16]}{suffix.lower()}")


def output_stem(path: str | Path) -> Path:
    """``out/lungs.nii.gz`` -> ``out/lungs`` (the name without its image suffix), for files written beside it."""
    p = Path(path)
    name = p.name
    for suffix in sorted(WRITE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)])
    return p.with_name(name.split(".")[0])
