"""Manifests for the batch commands: a ``lungai radiomics-batch`` manifest from a folder of cases
(the panel's "folder" batch mode) and the one-patient CT manifest of ``lungai stage``.

Layout: one sub-folder per case (the folder name is the case id) holding the CT as ``ct.*`` or
``image.*`` (any image file lungai reads: .nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd, in any letter case
as ``lungai.seg.dataset.image_suffix`` takes it, e.g. ``ct.NII.GZ``) and either

- ``labels.*`` with ``meta.json`` - a lungai synthetic phantom (``lungai sample`` output):
  the standard tumour / lung segments are built from its label map (``phantom = 1``);
- ``mask.*`` - a label map (every label value is a segment);
- ``tumour.*`` and/or ``lungs.*`` - a tumour mask and a ``lungai lungs`` label map.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lungai.seg.dataset import SUFFIXES, image_suffix   # the one list of image files lungai reads

COLUMNS = ["case", "image", "mask", "phantom", "tumour", "lungs"]


def _find(folder: Path, stems) -> str:
    """The name of the first file ``<stem><image suffix>`` in ``folder`` (stems in order, then the
    suffixes in :data:`SUFFIXES` order); the suffix in any letter case, the stem as written."""
    files = [p for p in folder.iterdir() if p.is_file()]
    for stem in stems:
        for suffix in SUFFIXES:
            for path in sorted(files):
                found = image_suffix(path.name)
                if found.lower() == suffix and path.name[: -len(found)] == stem:
                    return path.name
    return ""


def rows_from_folder(folder: Path) -> list[dict]:
    """Manifest rows (paths relative to ``folder``) for every case sub-folder; raises ValueError
    naming the sub-folders that have a CT but no mask, or when no case is found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    rows, incomplete = [], []
    for case in sorted(p for p in folder.iterdir() if p.is_dir()):
        image = _find(case, ("ct", "image"))
        if not image:
            continue
        row = dict.fromkeys(COLUMNS, "")
        row["case"], row["image"] = case.name, f"{case.name}/{image}"
        labels = _find(case, ("labels",))
        if labels and (case / "meta.json").is_file():
            row["mask"], row["phantom"] = f"{case.name}/{labels}", "1"
        elif _find(case, ("mask",)):
            row["mask"] = f"{case.name}/{_find(case, ('mask',))}"
        else:
            for column, stems in (("tumour", ("tumour", "tumor")), ("lungs", ("lungs",))):
                found = _find(case, stems)
                row[column] = f"{case.name}/{found}" if found else ""
        if not (row["mask"] or row["tumour"] or row["lungs"]):
            incomplete.append(case.name)
            continue
        rows.append(row)
    if incomplete:
        raise ValueError(f"{'case folder' if len(incomplete) == 1 else 'case folders'} without a mask: "
                         f"{', '.join(incomplete[:5])}; add mask.nii.gz "
                         "(or tumour/lungs masks, or labels.nii.gz + meta.json)")
    if not rows:
        raise ValueError(f"no case sub-folder with a ct.* or image.* file in {folder}")
    return rows


def write_manifest(rows: list[dict], path: Path, base: Path) -> Path:
    """Write ``rows`` as a manifest at ``path``; relative paths are rewritten relative to ``base``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (str(Path(base) / v) if k in ("image", "mask", "tumour", "lungs") and v else v)
                             for k, v in row.items()})
    return path


def write_ct_manifest(path: Path, patient_id: str, ct, mask) -> Path:
    """The one-patient CT manifest of ``lungai stage`` (columns id, image, mask; paths relative to it)."""
    from LungAICommon.commands import ct_manifest_rows

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "image", "mask"])
        writer.writeheader()
        writer.writerows(ct_manifest_rows(patient_id, ct, mask))
    return Path(path)
