"""Voxel uncertainty from several foreground-probability maps (ensemble members or MC passes).

- predictive entropy H[mean p] in bits (0 = certain, 1 = p of 0.5), total uncertainty;
- mutual information H[mean p] - mean H[p_m] (epistemic part: members disagree).
"""

from __future__ import annotations

import contextlib

import numpy as np

_EPS = 1e-6
# what the uncertainty map (uncertainty.nii.gz: the NIfTI description, Slicer's voxel value units, the legend) holds
ENTROPY_MEANING = "predictive entropy of the tumour probability"
ENTROPY_UNIT = "bit"
MI_MEANING = "mutual information (model disagreement) of the tumour probability"
PROBABILITY_MEANING, PROBABILITY_UNIT = "tumour probability", "1"      # probability.nii.gz
# the fixed display range (bits) of each map (uncertainty.nii.gz, mutual_information.nii.gz): the binary entropy is at
# most 1 bit (p = 0.5), the mutual information at most the entropy.  One window for every case, so two cases compare
# (QA: each map was shown over its own min..max, a 0.2-bit case as bright as a 1-bit one)
MAP_RANGES = {"entropy": (0.0, 1.0), "mutual_information": (0.0, 1.0)}
# outside the box the model looked at (result.json roi_lps_mm) the maps hold 0: not evaluated, not "certain"
OUTSIDE_BOX_NOTE = "0 outside the evaluated box (roi_lps_mm): not evaluated there, not certain"


@contextlib.contextmanager
def describe(img, meaning: str = ENTROPY_MEANING, unit: str = ENTROPY_UNIT):
    """``with describe(img, ...) as img: write it``: ``img`` itself (a SimpleITK image) with the NIfTI description
    "<meaning>, <unit>" (ITK writes the ``ITK_FileNotes`` metadata as the header's ``descrip``, 80 characters) for the
    block, its own metadata put back after it.  No copy of its voxels when no other image shares them: the maps
    ``lungai segment`` writes (:func:`described`'s copy of each float32 map, 4 bytes a voxel of the whole CT, set the
    command's peak memory: 3.3 GB on a 512 x 512 x 551 CT)."""
    key = "ITK_FileNotes"
    before = img.GetMetaData(key) if img.HasMetaDataKey(key) else None
    img.SetMetaData(key, f"{meaning}, {unit}"[:79])
    try:
        yield img
    finally:
        if before is None:
            img.EraseMetaData(key)
        else:
            img.SetMetaData(key, before)


def described(img, meaning: str = ENTROPY_MEANING, unit: str = ENTROPY_UNIT):
    """A copy of ``img`` (a SimpleITK image, not changed: SimpleITK copies its voxels on the metadata's change) with
    the NIfTI description "<meaning>, <unit>" (:func:`describe`)."""
    import SimpleITK as sitk

    out = sitk.Image(img)
    out.SetMetaData("ITK_FileNotes", f"{meaning}, {unit}"[:79])
    return out


def description(img) -> str:
    """The NIfTI description a map carries (:func:`described`; '' when none: a map of an older lungai, another tool's,
    a file saved again by Slicer)."""
    for key in ("ITK_FileNotes", "descrip"):
        if img.HasMetaDataKey(key) and img.GetMetaData(key).strip():
            return img.GetMetaData(key).strip()
    return ""


def binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return (-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).astype(np.float32)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """``probs``: (M, ...) foreground probabilities -> entropy of their mean."""
    return binary_entropy(probs.mean(axis=0))


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """BALD mutual information; 0 when all M maps agree (and for M = 1)."""
    mi = predictive_entropy(probs) - np.mean([binary_entropy(p) for p in probs], axis=0)
    return np.maximum(mi, 0.0).astype(np.float32)


def summarize_maps(probs: np.ndarray, slab: int = 8, counter=None) -> tuple:
    """(mean p, predictive entropy, mutual information or None) of (M, z, y, x) maps, computed
    slab by slab along z to keep temporaries small on large CTs; ``counter`` (a :class:`lungai.progress.Counter` of
    the z slices): ticked after each slab (QA: 5.5 s behind one message on LUNG1-003's lungs, 10.2 s DynUNet)."""
    m = len(probs)
    mean = np.empty(probs.shape[1:], np.float32)
    ent = np.empty_like(mean)
    mi = np.empty_like(mean) if m > 1 else None
    for z0 in range(0, probs.shape[1], slab):
        part = probs[:, z0:z0 + slab]
        mean[z0:z0 + slab] = part.mean(axis=0)
        ent[z0:z0 + slab] = predictive_entropy(part)
        if mi is not None:
            mi[z0:z0 + slab] = mutual_information(part)
        if counter is not None:
            counter.tick(part.shape[1])
    return mean, ent, mi
