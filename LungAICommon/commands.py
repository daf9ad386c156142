"""``lungai`` command lines built from panel values: one function per command the panels run.

These follow the documented CLI contracts (see docs/slicer.md); a test parses every command
built here with the real ``lungai`` argument parser, so a drifting flag is caught.  Coordinates
passed to the CLI are physical LPS millimetres (SimpleITK's convention); the panels convert from
Slicer's RAS with :func:`ras_to_lps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

SEG_METHODS = ("ensemble", "mc-dropout")
SEG_ARCHITECTURES = ("unet", "attention_unet", "unetr")
RADIOMICS_PRESETS = ("default", "ibsi-a", "ibsi-b", "ibsi-c", "ibsi-d", "ibsi-e")
# Same names as lungai.radiomics.params (a test checks they agree).
FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
IMAGE_TYPES = ("Original", "LoG", "Wavelet")


def ras_to_lps(point: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in point)
    return (-x, -y, z)


def _triple(point: Sequence[float]) -> str:
    return ",".join(f"{float(v):.3f}" for v in point)


def _given(path) -> bool:
    return path is not None and str(path) not in ("", ".")


def segment(ct: Path, output_dir: Path, model_dir: Optional[Path] = None, method: str = "ensemble",
            mc_passes: Optional[int] = None, seed_point_lps: Optional[Sequence[float]] = None,
            roi_lps: Optional[tuple[Sequence[float], Sequence[float]]] = None) -> list[str]:
    """``lungai segment CT -o OUT [--model DIR] [--method M] [--mc-passes N] [--seed-point x,y,z | --roi ...]``.

    ``roi_lps`` is (centre, size) in mm; it is passed as ``--roi cx,cy,cz,sx,sy,sz``.
    """
    if method not in SEG_METHODS:
        raise ValueError(f"method must be one of {SEG_METHODS}, not {method!r}")
    if seed_point_lps is not None and roi_lps is not None:
        raise ValueError("give a seed point or an ROI, not both")
    args = ["segment", str(ct), "-o", str(output_dir), "--method", method]
    if _given(model_dir):
        args += ["--model", str(model_dir)]
    if method == "mc-dropout" and mc_passes:
        args += ["--mc-passes", str(int(mc_passes))]
    if seed_point_lps is not None:
        args += ["--seed-point", _triple(seed_point_lps)]
    if roi_lps is not None:
        centre, size = roi_lps
        args += ["--roi", _triple(centre) + "," + _triple(size)]
    return args


def train_segmentation(images_dir: Path, masks_dir: Path, model_dir: Path, architecture: str = "unet",
                       members: int = 5, epochs: Optional[int] = None) -> list[str]:
    """``lungai train-seg --images DIR --masks DIR --arch A --members K -o MODEL_DIR [--epochs N]``."""
    if architecture not in SEG_ARCHITECTURES:
        raise ValueError(f"architecture must be one of {SEG_ARCHITECTURES}, not {architecture!r}")
    args = ["train-seg", "--images", str(images_dir), "--masks", str(masks_dir), "--arch", architecture,
            "--members", str(int(members)), "-o", str(model_dir)]
    if epochs:
        args += ["--epochs", str(int(epochs))]
    return args


def radiomics(image: Path, mask: Path, output_csv: Path, labels: Iterable[int] = (),
              params: str = "default") -> list[str]:
    """``lungai radiomics --image CT --mask MASK [--label N ...] --params P -o features.csv``.

    ``params`` is a preset name or a pyradiomics YAML file (see :func:`radiomics_params`).
    """
    args = ["radiomics", "--image", str(image), "--mask", str(mask), "--params", str(params),
            "-o", str(output_csv)]
    labels = [int(v) for v in labels]
    if labels:
        args += ["--label", *[str(v) for v in labels]]
    return args


def radiomics_params(feature_classes: Iterable[str], image_types: Iterable[str],
                     bin_width: float = 25.0, log_sigma: Sequence[float] = (1.0, 2.0, 3.0)) -> dict:
    """A pyradiomics parameter mapping for a custom choice of feature classes and image types."""
    classes = [c for c in feature_classes]
    types = [t for t in image_types]
    bad = [c for c in classes if c not in FEATURE_CLASSES] + [t for t in types if t not in IMAGE_TYPES]
    if bad:
        raise ValueError(f"unknown feature classes / image types: {bad}")
    if not classes or not types:
        raise ValueError("choose at least one feature class and one image type")
    return {
        "setting": {"binWidth": float(bin_width), "label": 1},
        "imageType": {t: ({"sigma": [float(s) for s in log_sigma]} if t == "LoG" else {}) for t in types},
        "featureClass": {c: [] for c in classes},
    }


def radiomics_batch(manifest: Path, output_csv: Path, workers: Optional[int] = None) -> list[str]:
    """``lungai radiomics-batch MANIFEST -o features.csv [--workers N]``."""
    args = ["radiomics-batch", str(manifest), "-o", str(output_csv)]
    if workers:
        args += ["--workers", str(int(workers))]
    return args


def dose_features(dose: Path, ct: Path, lungs: Path, output_csv: Path, gtv: Optional[Path] = None) -> list[str]:
    """``lungai dose-features --dose DOSE --ct CT --lungs MASK [--gtv MASK] -o dose.csv``."""
    args = ["dose-features", "--dose", str(dose), "--ct", str(ct), "--lungs", str(lungs), "-o", str(output_csv)]
    if _given(gtv):
        args += ["--gtv", str(gtv)]
    return args


def sample(output_dir: Path) -> list[str]:
    """``lungai sample -o DIR``: the built-in synthetic case."""
    return ["sample", "-o", str(output_dir)]
