"""What ``write_seg`` does before highdicom: each mask's slices that hold it written into the SEG's frames, each
mask digested without a whole-CT 0/1 copy of it (QA exportfollow67: on a cohort export of LUNG1-003's 3 GTVs and 2
lungs, a 0/1 copy of each whole mask, each digested, then all stacked into one more: seconds of a loaded machine under
"writing DICOM SEG").  The SEG written is the same: its frames, segment order and UIDs."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import SimpleITK as sitk

STRUCTURES = {"GTV-1": "gtv_primary", "gtv-2": "gtv", "gtv-3": "gtv", "Lung-Right": "lung_right",
              "Lung-Left": "lung_left"}


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, bool])
def test_a_slab_digests_as_its_whole_mask(dtype):
    from lungai.dicom.reference import Slab, content_digest
    from lungai.dicom.seg import mask_slab

    rng = np.random.default_rng(3)
    shape = (9, 5, 7)
    cases = {"first slice": [0], "last slice": [8], "middle": [3, 5], "all": list(range(9)), "none": []}
    for what, slices in cases.items():
        mask = np.zeros(shape, dtype=dtype)
        for k in slices:
            mask[k] = rng.integers(0, 2, shape[1:]).astype(dtype)
            mask[k, 0, 0] = 1
        start, values = mask_slab(mask)
        whole = mask > 0
        assert values.dtype == bool and (values == whole[start:start + len(values)]).all(), what
        assert not whole[:start].any() and not whole[start + len(values):].any(), what
        assert len(values) == (max(slices) - min(slices) + 1 if slices else 0), what
        assert content_digest(Slab(values, start, shape)) == content_digest(whole), what


@pytest.mark.parametrize("shape, order", [((4, 5, 6, 3), (3, 0, 1, 2)), ((2, 3), (1, 0)), ((0, 4, 2), (2, 0, 1)),
                                          ((5, 1, 7, 2), (1, 3, 0, 2))])
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_a_view_in_another_order_digests_as_its_copy(shape, order, dtype):
    """``content_digest`` of an array laid out in another order (``write_seg``'s frames: each segment's voxels
    together, seen as (slices, rows, columns, segments)) is that of its C-ordered copy: the SEG's UIDs do not depend
    on how its frames lie in memory."""
    from lungai.dicom.reference import content_digest

    rng = np.random.default_rng(5)
    stored = (rng.random([shape[i] for i in order]) > 0.5).astype(dtype)
    view = np.transpose(stored, np.argsort(order))
    assert view.shape == shape and (view.size == 0 or not view.flags.c_contiguous)
    copy = np.ascontiguousarray(view)
    assert content_digest(view) == content_digest(copy)
    assert content_digest(view, "x") == content_digest(copy, "x") != content_digest(copy, "y")
    if view.size:
        other = copy.copy()
        other.flat[0] = not other.flat[0]
        assert content_digest(view) != content_digest(other)


@pytest.mark.shared_data
def test_write_seg_hands_highdicom_the_same_frames_without_whole_copies(shared_data, monkeypatch, tmp_path):
    """LUNG1-003's 3 GTVs and 2 lungs (its RTSTRUCT's, as the NIfTI label map holds them): highdicom gets the frames
    np.stack of the 0/1 masks made (the same pixel data, the segments in the order given) and each segment's
    TrackingUID is that of the whole mask's digest (the SEG's UIDs unchanged); the work before it holds the frames and
    a lung's slices more, not a 0/1 copy of each mask and a stack of them (2 x 5 whole-CT arrays)."""
    import lungai.dicom.seg as seg_module
    from lungai.dicom.export import reference_for
    from lungai.dicom.reference import content_digest, tracking_uid
    from lungai.dicom.seg import write_seg
    from lungai.io import on_grid, read_ct

    root = shared_data / "nsclc_whole_ct"
    ct_folder = root / "dicom" / "LUNG1-003" / "CT"
    ct = read_ct(ct_folder)
    reference = reference_for(ct_folder, ct)
    labels = sitk.GetArrayFromImage(on_grid(ct, sitk.ReadImage(str(root / "nifti" / "LUNG1-003_labels.nii.gz")),
                                            what="labels"))
    others = sitk.GetArrayFromImage(sitk.RelabelComponent(sitk.ConnectedComponent(
        sitk.GetImageFromArray((labels == 2).astype(np.uint8)))))

    def image(a):
        img = sitk.GetImageFromArray(a.astype(np.uint8))
        img.CopyInformation(ct)
        return img

    arrays = {"GTV-1": labels == 1, "gtv-2": others == 1, "gtv-3": others == 2, "Lung-Right": labels == 3,
              "Lung-Left": labels == 4}
    assert all(a.any() for a in arrays.values())
    masks = {label: image(a) for label, a in arrays.items()}
    del others

    class Stop(Exception):
        pass

    seen = {}

    def segmentation(**kwargs):
        seen["peak"] = tracemalloc.get_traced_memory()[1]
        seen.update(kwargs)
        raise Stop

    # highdicom's Segmentation as write_seg makes it (its overlap found by lungai: _segmentation_with_overlap)
    monkeypatch.setattr(seg_module, "_segmentation_with_overlap", lambda pixels, overlap: segmentation)
    tracemalloc.start()
    try:
        with pytest.raises(Stop):
            write_seg(masks, reference, tmp_path / "seg.dcm", roles=STRUCTURES)
    finally:
        tracemalloc.stop()
    old = np.stack([sitk.GetArrayViewFromImage(m) > 0 for m in masks.values()], axis=-1)
    pixels = seen["pixel_array"]
    assert pixels.dtype == old.dtype and pixels.shape == old.shape
    # each segment's voxels together in memory: highdicom's overlap check sums over the segments (QA export69: 2-4 s
    # of a loaded machine over the last axis of a C-ordered array, 3 bytes wide)
    assert np.moveaxis(pixels, -1, 0).flags.c_contiguous
    assert np.array_equal(pixels, old)
    # the SEG's UID digests the frames as before (the same masks, the same UIDs as an earlier lungai's)
    assert content_digest(pixels, seen["segment_descriptions"]) == content_digest(old, seen["segment_descriptions"])
    assert [d.SegmentLabel for d in seen["segment_descriptions"]] == list(masks)
    assert [d.TrackingUID for d in seen["segment_descriptions"]] == [
        tracking_uid(reference.series_uid, label, content_digest(sitk.GetArrayViewFromImage(m) > 0))
        for label, m in masks.items()]
    whole = old[..., 0].nbytes          # one 0/1 mask of the whole CT
    # the frames (5 masks' worth), a lung's slices as 0/1, the digest's zero bytes: 6.4 masks' worth; was 10
    assert seen["peak"] < (len(masks) + 2.5) * whole, seen["peak"] / whole
