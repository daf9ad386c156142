"""``write_seg``'s SegmentsOverlap: found from each segment's slices (:func:`lungai.dicom.seg.segments_overlap`), not
by highdicom's sum of the (slices, rows, columns, segments) frames over the segments into a whole-CT int64 array
(QA lungs70: 1.0-2.5 s of a loaded machine on LUNG1-003's two lungs, or its GTV and lungs; 0.04-0.09 s so).  The SEG
written is the same dataset (apart from its creation date and time)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk


def _dated(ds) -> None:
    """Drop the dates and times of writing (the only elements two writes of one SEG differ in), nested ones too."""
    def strip(d):
        for elem in list(d):
            if elem.VR == "SQ":
                for sub in elem.value:
                    strip(sub)
            elif elem.keyword in ("InstanceCreationDate", "InstanceCreationTime", "ContentDate", "ContentTime",
                                  "ContributionDateTime"):
                del d[elem.tag]
    strip(ds)


def _highdicom_overlap(layers: np.ndarray) -> bool:
    import highdicom as hd

    pixels = np.moveaxis(layers, 0, -1)
    _, value = hd.seg.Segmentation._check_and_cast_pixel_array(
        pixels, np.arange(1, len(layers) + 1), hd.seg.SegmentationTypeValues.BINARY, np.uint8)
    return value == hd.seg.SegmentsOverlapValues.YES


def test_segments_overlap_is_what_highdicom_finds():
    from lungai.dicom.seg import mask_slab, segments_overlap

    rng = np.random.default_rng(11)
    shape = (12, 9, 8)
    for trial in range(60):
        n = int(rng.integers(1, 5))
        layers = np.zeros((n,) + shape, dtype=bool)
        for i in range(n):
            k0 = int(rng.integers(0, shape[0]))
            k1 = int(rng.integers(k0, shape[0] + 1))
            layers[i, k0:k1] = rng.random((k1 - k0,) + shape[1:]) < rng.choice([0.0, 0.01, 0.05])
        spans = []
        for layer in layers:
            start, values = mask_slab(layer)
            spans.append((start, start + len(values)))
        assert segments_overlap(layers, spans) == segments_overlap(layers) == _highdicom_overlap(layers), trial


def _study(tmp_path):
    from dicom_helpers import small_phantom

    from lungai.dicom.synthetic import rt_structures, write_ct_series
    from lungai.io import read_ct

    phantom = small_phantom(7)
    reference = write_ct_series(phantom.ct, tmp_path / "P" / "CT", patient_id="P")
    ct = read_ct(tmp_path / "P" / "CT")
    masks = {role: m for role, m in rt_structures(phantom).items()}
    for m in masks.values():
        m.CopyInformation(ct)
    return ct, reference, masks


@pytest.mark.parametrize("case", ["lungs", "tumour inside the lung"])
def test_write_seg_does_not_sum_the_frames_and_writes_the_same_seg(tmp_path, monkeypatch, case):
    """highdicom's overlap check is never run on the SEG's frames (the spy on it sees no array of the segments), and
    the SEG is the one highdicom writes with its own check: SegmentsOverlap NO for two lungs, YES for a tumour inside
    a lung segment (the lung's mask holding the tumour, as lungai lungs' hole filling does)."""
    import highdicom as hd
    import pydicom

    import lungai.dicom.seg as seg_module

    ct, reference, masks = _study(tmp_path)
    right, left, gtv = masks["lung_right"], masks["lung_left"], masks["gtv"]
    if case == "lungs":
        given, roles, expected = {"Right lung": right, "Left lung": left}, None, "NO"
    else:
        holding = sitk.Or(sitk.Cast(right > 0, sitk.sitkUInt8), sitk.Cast(gtv > 0, sitk.sitkUInt8))
        given = {"Tumour": sitk.Cast(gtv > 0, sitk.sitkUInt8), "Right lung": holding, "Left lung": left}
        roles, expected = {"Tumour": "gtv", "Right lung": "lung_right", "Left lung": "lung_left"}, "YES"
    assert all(sitk.GetArrayViewFromImage(m).any() for m in given.values())

    base = hd.seg.Segmentation.__dict__["_check_and_cast_pixel_array"].__func__
    checked = []

    def spy(cls, pixel_array, *args, **kwargs):
        checked.append(getattr(pixel_array, "shape", None))
        return base(cls, pixel_array, *args, **kwargs)

    monkeypatch.setattr(hd.seg.Segmentation, "_check_and_cast_pixel_array", classmethod(spy))
    new = seg_module.write_seg(given, reference, tmp_path / "new.seg.dcm", roles=roles)
    summed = [s for s in checked if s is not None and len(s) == 4 and s[-1] == len(given)]
    assert not summed, f"highdicom summed the {len(given)} segments' frames {summed}"

    # the SEG highdicom writes with its own check
    monkeypatch.setattr(seg_module, "_segmentation_with_overlap", lambda pixels, overlap: hd.seg.Segmentation)
    old = seg_module.write_seg(given, reference, tmp_path / "old.seg.dcm", roles=roles)
    a, b = pydicom.dcmread(new), pydicom.dcmread(old)
    assert a.SegmentsOverlap == b.SegmentsOverlap == expected
    _dated(a)
    _dated(b)
    assert a == b and a.file_meta == b.file_meta and a.PixelData == b.PixelData


@pytest.mark.shared_data
def test_real_seg_of_gtv_and_lungs_is_the_same(shared_data, tmp_path, monkeypatch):
    """LUNG1-003 (DICOM CT): its GTV-1 and the oncologist's lungs, plus the lungs with GTV-1 in them (as lungai
    lungs' mask holds part of it): the SEG is highdicom's own, SegmentsOverlap YES."""
    import highdicom as hd
    import pydicom

    import lungai.dicom.seg as seg_module
    from lungai.dicom.export import reference_for
    from lungai.io import on_grid, read_ct

    root = shared_data / "nsclc_whole_ct"
    folder = root / "dicom" / "LUNG1-003" / "CT"
    ct = read_ct(folder)
    reference = reference_for(folder, ct)
    labels = on_grid(ct, sitk.ReadImage(str(root / "nifti" / "LUNG1-003_labels.nii.gz")), what="labels")
    masks = {"GTV-1": sitk.Cast(labels == 1, sitk.sitkUInt8),
             "Lung-Right": sitk.Cast(sitk.Or(labels == 3, labels == 1), sitk.sitkUInt8),
             "Lung-Left": sitk.Cast(labels == 4, sitk.sitkUInt8)}
    roles = {"GTV-1": "gtv_primary", "Lung-Right": "lung_right", "Lung-Left": "lung_left"}
    new = seg_module.write_seg(masks, reference, tmp_path / "new.seg.dcm", roles=roles)
    monkeypatch.setattr(seg_module, "_segmentation_with_overlap", lambda pixels, overlap: hd.seg.Segmentation)
    old = seg_module.write_seg(masks, reference, tmp_path / "old.seg.dcm", roles=roles)
    a, b = pydicom.dcmread(new), pydicom.dcmread(old)
    assert a.SegmentsOverlap == b.SegmentsOverlap == "YES"
    _dated(a)
    _dated(b)
    assert a == b and a.PixelData == b.PixelData
