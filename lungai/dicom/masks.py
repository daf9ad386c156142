"""Masks for the commands that take one: a file (NIfTI / NRRD / MHA label map or DICOM SEG) or an RTSTRUCT structure.

A structure is given by name (``GTV-1``; case does not matter) or by role (``role:gtv``, ``role:lungs``,
``role:lungs_minus_gtv`` ...; see :mod:`lungai.dicom.roles`).  The CLI options: ``--rtstruct FILE`` with
``--structure NAME|role:ROLE``, and every mask option (``--tumour``, ``--lungs``, ``--gtv``) takes a file or,
with ``--rtstruct``, a structure.
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from lungai.errors import InputError

if TYPE_CHECKING:                 # the CLI parser imports this module: SimpleITK only where it is used
    import SimpleITK as sitk

ROLE_PREFIX = "role:"


def parse_spec(spec: str) -> tuple[str | None, str | None]:
    """``"role:gtv"`` -> (None, "gtv"); ``"GTV-1"`` -> ("GTV-1", None)."""
    spec = str(spec).strip()
    if spec.lower().startswith(ROLE_PREFIX):
        return None, spec[len(ROLE_PREFIX):].strip().lower()
    return spec, None


def structure_mask(rtstruct, ct: sitk.Image, spec: str, mapping=None, allow_gaps: bool = False
                   ) -> tuple[sitk.Image, list[str]]:
    """The mask of one structure (by name) or role, and the structure names used."""
    from lungai.dicom.rtstruct import read_rtstruct, read_rtstruct_role

    name, role = parse_spec(spec)
    if role is not None:
        return read_rtstruct_role(rtstruct, ct, role, mapping, allow_gaps=allow_gaps)
    masks = read_rtstruct(rtstruct, ct, names=[name], allow_gaps=allow_gaps)
    (found, mask), = masks.items()
    return mask, [found]


def lung_labels(rtstruct, ct: sitk.Image, spec: str = "role:lungs", mapping=None, allow_gaps: bool = False
                ) -> tuple[sitk.Image, list[str]]:
    """A lung label map (1 = right, 2 = left, as ``lungai lungs`` writes) from the RTSTRUCT's right and left lung.

    ``spec``: ``role:lungs`` (the structures with roles lung_right and lung_left) or ``"RIGHT_NAME,LEFT_NAME"``.
    """
    name, role = parse_spec(spec)
    if role is not None and role != "lungs":
        raise InputError(f"a lung label map is built from the right and left lung, not from role {role!r}",
                         "use role:lungs, or name both structures: --lungs Lung_R,Lung_L")
    if role is None:
        parts = [p.strip() for p in name.split(",")]
        if len(parts) != 2:
            raise InputError(f"--lungs {spec!r} with --rtstruct needs the right and the left lung structure",
                             "give role:lungs, or both names separated by a comma: --lungs Lung_R,Lung_L")
        right_spec, left_spec = parts
    else:
        right_spec, left_spec = "role:lung_right", "role:lung_left"
    right, rn = structure_mask(rtstruct, ct, right_spec, mapping, allow_gaps)
    left, ln = structure_mask(rtstruct, ct, left_spec, mapping, allow_gaps)
    return lung_label_map(right, left), rn + ln


def lung_label_map(right: sitk.Image, left: sitk.Image) -> sitk.Image:
    """Right and left lung masks as one label map: 1 = right, 2 = left (right wins where they overlap)."""
    import SimpleITK as sitk

    from lungai.io import copy_geometry

    r, l = sitk.GetArrayViewFromImage(right) > 0, sitk.GetArrayViewFromImage(left) > 0
    labels = np.zeros(r.shape, dtype=np.uint8)
    labels[r] = 1
    labels[l & ~r] = 2
    return copy_geometry(labels, right)


def mask_input(value, ct: sitk.Image, rtstruct=None, mapping=None, what: str = "mask", lungs: bool = False,
               allow_gaps: bool = False) -> sitk.Image:
    """A mask option's value: a file on the CT grid (label map or DICOM SEG), or with ``rtstruct`` a structure / role.

    ``lungs``: the value is a lung label map (1 right, 2 left); a structure spec then names both lungs.
    """
    from lungai.io import read_mask

    p = Path(str(value))
    if p.is_file() or rtstruct is None:
        return read_mask(p, reference=ct)
    if lungs:
        return lung_labels(rtstruct, ct, value, mapping, allow_gaps)[0]
    return structure_mask(rtstruct, ct, value, mapping, allow_gaps)[0]


def add_rtstruct_options(parser, structure_help: str) -> None:
    """The shared CLI options: --rtstruct, --structure, --structure-map, --allow-gaps."""
    parser.add_argument("--rtstruct", default=None, metavar="FILE",
                        help="DICOM RTSTRUCT of the CT: mask options then take structure names or role:ROLE")
    parser.add_argument("--structure", action="append", default=None, metavar="NAME|role:ROLE", help=structure_help)
    parser.add_argument("--structure-map", default=None, metavar="FILE",
                        help="YAML/JSON 'structure name: role' lines overriding the built-in TG-263 name matching "
                             "(roles: gtv, gtv_primary, gtv_node, lung_right, lung_left, lungs, lungs_minus_gtv)")
    parser.add_argument("--allow-gaps", action="store_true",
                        help="accept RTSTRUCT structures with slices left out between their first and last slice "
                             "(structures made of separate parts); by default such a structure is an error")
