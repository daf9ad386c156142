"""Checks of the input paths a command names, with the arguments, before any input is read and before the heavy
modules (SimpleITK, pandas) are imported: this module imports neither (QA radfollow69: ``lungai dose-features`` with a
mistyped path imported pandas and SimpleITK, 4-5 s on a shared machine, before refusing it)."""

from __future__ import annotations

import os
from pathlib import Path

from lungai.errors import InputError


def check_input_paths(named) -> None:
    """Each ``(option, value)`` of ``named`` (a value None or '' is skipped) must name a file or folder that is there: a
    CT, a mask file - ``FILE#PART`` (a label map's labels, a SEG's segment) by its file - refused, naming the option,
    with the arguments, before any input is read.  QA rad69 (LUNG1-003's DICOM CT, a typo in a mask's name, a shared
    machine): ``lungai radiomics --tumour gtv_typo.nii.gz`` read the CT for 13 s, ``dose-features --lungs
    lungs_typo.nii.gz`` for 11.7 s, before "does not exist" (minutes on a thin-slice CT)."""
    for option, value in named:
        if not value:
            continue
        text = str(value)
        if Path(text).exists():
            continue
        head, sep, _ = text.rpartition("#")
        if sep and head and Path(head).exists():
            continue
        p = Path(head if sep and head else text)
        if p.is_symlink():
            raise InputError(f"{option} {p} is a link to {os.readlink(p)}, which does not exist",
                             "check the path (and that the drive is mounted)")
        raise InputError(f"{option} {p} does not exist", "check the path (and that the drive is mounted)")
