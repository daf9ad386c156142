"""Helpers for I/O tests: oblique anisotropic images, DICOM series written with SimpleITK, the sample phantom's CT with
its tumour and lung masks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def oblique_image(shape_kji=(9, 11, 13), dtype=np.int16, seed=0) -> sitk.Image:
    """A CT-like image on an oblique, anisotropic grid."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(-300, 400, shape_kji).clip(-1024, 2000).astype(dtype)
    arr.flat[0] = -1000
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.71, 1.37, 3.3))
    img.SetOrigin((-120.5, 33.25, -401.0))
    a, b = 0.31, -0.17
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    img.SetDirection(tuple((rz @ rx).ravel()))
    return img


def write_dicom_series(img: sitk.Image, folder: Path, series_uid: str, modality: str = "CT") -> list[Path]:
    """Write ``img`` (HU, int16) as one DICOM file per slice (oblique geometry kept in the tags).  The process's
    locale is restored afterwards: SimpleITK's GDCM writer leaves LC_CTYPE at "C", and a later test's subprocess
    output (tqdm's UTF-8 bars) then failed to decode as ASCII (test_feature_requirements after test_docs_commands)."""
    import locale

    ctype = locale.setlocale(locale.LC_CTYPE)
    try:
        return _write_dicom_series(img, folder, series_uid, modality)
    finally:
        locale.setlocale(locale.LC_CTYPE, ctype)


def _write_dicom_series(img: sitk.Image, folder: Path, series_uid: str, modality: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stored = sitk.Cast(img, sitk.sitkInt16)
    direction = img.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(img.GetDepth()):
        sl = stored[:, :, k]
        tags = {
            "0008|0060": modality, "0010|0010": "Phantom^Test", "0010|0020": "LUNGAI-TEST",
            "0020|000d": "1.2.826.0.1.3680043.8.498.1", "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}", "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6],
                                                        direction[1], direction[4], direction[7])),
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        path = folder / f"{series_uid[-6:]}_{k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(sl)
        paths.append(path)
    return paths


def nrrd_encoding(path) -> str:
    """The ``encoding:`` field of an NRRD file's header ("raw", "gzip" ...)."""
    header = open(path, "rb").read(4096).split(b"\n\n")[0].decode("latin-1")
    return re.search(r"^encoding: (\w+)$", header, re.M).group(1)


def sample_phantom_images(shape_kji=(96, 96, 40)):
    """The built-in sample's phantom on a small grid: its CT, tumour mask and lung label map (lungai lungs convention:
    1 right, 2 left) and the phantom's metadata, as the demo's step tests take them."""
    from lungai.synthetic import SAMPLE_SEED, PhantomSpec, make_phantom, sample_spec
    from lungai.synthetic import labels as L

    spec = sample_spec()
    spec = PhantomSpec(shape=shape_kji, spacing=(3.5, 3.5, 5.0), noise_hu=spec.noise_hu, tumour=spec.tumour)
    ph = make_phantom(spec, seed=SAMPLE_SEED)
    arr = sitk.GetArrayFromImage(ph.labels)
    tumour = sitk.GetImageFromArray(L.tumour_mask(arr).astype(np.uint8))
    tumour.CopyInformation(ph.ct)
    lungs_arr = np.zeros(arr.shape, np.uint8)
    lungs_arr[arr == L.RIGHT_LUNG] = 1
    lungs_arr[arr == L.LEFT_LUNG] = 2
    lungs = sitk.GetImageFromArray(lungs_arr)
    lungs.CopyInformation(ph.ct)
    return ph.ct, tumour, lungs, ph.meta
