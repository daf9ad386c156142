"""The synthetic sample case in Slicer's Sample Data module ("Lung AI" category), registered once.

Nothing is downloaded from the internet.  The entry's URLs use the ``lungai-sample://`` scheme and a
SampleData *URL rewrite rule* (:func:`rewrite_url`) turns them into ``file://`` URLs of files it
makes on first use: ``lungai sample`` generates the case into Slicer's cache folder (a few seconds),
its CT voxels are checked against :data:`CT_SHA256` (the generator is deterministic, so a mismatch
means the generator changed), and the ground truth is written as a ``.seg.nrrd`` with segments
Tumor, Right lung, Left lung.  SampleData then copies and loads them like any sample - so the
button *and* ``SampleData.SampleDataLogic().downloadSample("LungAIPhantom")`` from a script work
(a ``customDownloader`` serves only the button).  Later uses reuse the files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

CATEGORY = "Lung AI"
SAMPLE_NAME = "LungAIPhantom"
CT_NODE_NAME = "LungAI phantom CT"
TRUTH_NODE_NAME = "LungAI phantom ground truth"
# SHA256 of the sample CT (int16 voxels + geometry, see voxel_checksum), for `lungai sample` defaults.
CT_SHA256 = "SHA256:4ce0cb06e0d36825ce07686887fd87d367b4ba37f2c7d04d7aa1cca6e84a792e"


def voxel_checksum(path: Path) -> str:
    """``SHA256:<hex>`` of an image's voxels and geometry (independent of file compression)."""
    import numpy as np
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    h = hashlib.sha256()
    h.update(repr((img.GetSize(), img.GetPixelIDTypeAsString(),
                   tuple(round(v, 6) for v in img.GetSpacing()),
                   tuple(round(v, 6) for v in img.GetOrigin()),
                   tuple(round(v, 6) for v in img.GetDirection()))).encode())
    h.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(img)).tobytes())
    return "SHA256:" + h.hexdigest()


def sample_paths(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    return {"ct": folder / "ct.nii.gz", "labels": folder / "labels.nii.gz", "meta": folder / "meta.json"}


def ensure_sample(folder: Path, expected: Optional[str] = CT_SHA256, timeout: float = 300.0) -> dict[str, Path]:
    """The sample files in ``folder``, generated (``lungai sample``) unless already there and intact.

    Raises ValueError when the generated CT does not match ``expected``.
    """
    from LungAICommon import commands
    from LungAICommon.process import LungAIProcess

    paths = sample_paths(folder)
    if all(p.is_file() for p in paths.values()) and (expected is None or voxel_checksum(paths["ct"]) == expected):
        return paths
    job = LungAIProcess(commands.sample(Path(folder))).start()
    if job.wait(timeout=timeout) != 0:
        raise RuntimeError(f"lungai sample failed: {job.error_message()}")
    if expected is not None:
        got = voxel_checksum(paths["ct"])
        if got != expected:
            raise ValueError(f"the generated sample CT has checksum {got}, expected {expected}: "
                             "the phantom generator changed; update LungAICommon.sampledata.CT_SHA256")
    return paths


def load_ground_truth(scene, labels_path: Path, ct_node):
    """A segmentation node "LungAI phantom ground truth" with Tumor, Right lung, Left lung."""
    import SimpleITK as sitk
    from lungai import mrml
    from lungai.synthetic import labels as L

    labels = sitk.ReadImage(str(labels_path))
    arr = sitk.GetArrayViewFromImage(labels)
    truth = L.lung_truth(arr, None)
    seg_node = None
    for name, mask in (("Tumor", L.tumour_mask(arr)), ("Right lung", truth["right"]), ("Left lung", truth["left"])):
        img = sitk.GetImageFromArray(mask.astype("uint8"))
        img.CopyInformation(labels)
        seg_node, _ = mrml.mask_to_segment(scene, img, name, seg_node=seg_node, reference_volume_node=ct_node)
    seg_node.SetName(scene.GenerateUniqueName(TRUTH_NODE_NAME))
    return seg_node


URL_SCHEME = "lungai-sample://"
# SampleData file name -> the file made in sample_folder()
SAMPLE_FILES = {"LungAIPhantom-ct.nii.gz": "ct.nii.gz", "LungAIPhantom-truth.seg.nrrd": "truth.seg.nrrd"}


def write_truth_segmentation(paths: dict[str, Path], out: Path) -> Path:
    """The ground truth as a ``.seg.nrrd`` (segments Tumor, Right lung, Left lung) on the CT's grid,
    built in a private MRML scene (nothing is added to the user's scene)."""
    import slicer
    from lungai import mrml
    from lungai.io import read_image

    scene = slicer.vtkMRMLScene()
    ct_node = mrml.volume_node_from_image(scene, read_image(paths["ct"]), CT_NODE_NAME, display=False)
    seg_node = load_ground_truth(scene, paths["labels"], ct_node)
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(out))
    if not storage.WriteData(seg_node):
        raise RuntimeError(f"could not write {out}")
    scene.Clear(1)
    return out


def prepare_sample(folder: Path) -> dict[str, Path]:
    """The sample's CT and ground-truth files in ``folder`` (generated and checked on first use)."""
    paths = ensure_sample(folder)
    truth = Path(folder) / "truth.seg.nrrd"
    if not truth.is_file():
        write_truth_segmentation(paths, truth)
    return {**paths, "truth": truth}


def rewrite_url(url: str) -> str:
    """SampleData URL rewrite rule: ``lungai-sample://<file>`` -> ``file://`` URL of the generated file.
    Other URLs pass unchanged (the rule sees every sample's URLs)."""
    if not str(url).startswith(URL_SCHEME):
        return url
    name = str(url)[len(URL_SCHEME):]
    if name not in SAMPLE_FILES:
        raise ValueError(f"unknown Lung AI sample file {name!r}")
    from LungAICommon import install
    from LungAICommon.panel import packages_not_ready

    if not install.ensure("lungs", "Lung AI sample data"):
        # not ValueError: Slicer's SampleData takes that for a failed download and retries (3 times for each of the
        # sample's files: a user who declined was asked 6 times, and this reason was lost - QA install58)
        raise RuntimeError(f"Lung AI sample data: nothing was loaded - {packages_not_ready('lungs')}")
    folder = sample_folder()
    prepare_sample(folder)
    return (folder / SAMPLE_FILES[name]).resolve().as_uri()


def is_registered() -> bool:
    import slicer

    sources = getattr(getattr(slicer, "modules", None), "sampleDataSources", {}) or {}
    return any(getattr(s, "sampleName", None) == SAMPLE_NAME for group in sources.values() for s in group)


def register(icon_path: Optional[str] = None) -> None:
    """Add the one "LungAIPhantom" entry to Slicer's Sample Data module (call on ``startupCompleted``);
    calling it again does nothing."""
    import SampleData

    logic = SampleData.SampleDataLogic
    logic.registerUrlRewriteRule(SAMPLE_NAME, rewrite_url)
    if is_registered():
        return
    logic.registerCustomSampleDataSource(
        category=CATEGORY, sampleName=SAMPLE_NAME,
        uris=[URL_SCHEME + name for name in SAMPLE_FILES], fileNames=list(SAMPLE_FILES),
        nodeNames=[CT_NODE_NAME, TRUTH_NODE_NAME], loadFileTypes=["VolumeFile", "SegmentationFile"],
        thumbnailFileName=icon_path)


def tumour_seed_ras(folder: Path) -> tuple[float, float, float]:
    """The sample's planted tumour centre in RAS (meta.json stores LPS), e.g. for a seed point."""
    import json

    x, y, z = json.loads(sample_paths(folder)["meta"].read_text(encoding="utf-8"))["tumour"]["centre_mm"]
    return (-float(x), -float(y), float(z))


def sample_folder() -> Path:
    """Where the sample is generated in Slicer (its cache folder)."""
    import slicer

    return Path(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory()) / "LungAIPhantom"


def load_into_slicer(source=None):
    """Load the sample through Slicer's SampleData logic (the same path as the button); returns the CT node."""
    import SampleData

    register()
    return SampleData.SampleDataLogic().downloadSample(SAMPLE_NAME)
