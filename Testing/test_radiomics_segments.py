"""Segments of ``lungai radiomics``: repeated label names, the default segment choice, stale error
tables, empty masks, label values beyond 16 bits, segments lost on the lung grid, implausible lungs."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.radiomics import extract, load_params, segments_from_labels
from lungai.radiomics import segments as S


def _image(arr, spacing=(1.0, 1.0, 1.0), like=None):
    img = sitk.GetImageFromArray(arr)
    if like is not None:
        img.CopyInformation(like)
    else:
        img.SetSpacing(spacing)
    return img


@pytest.fixture
def ct_and_labels():
    """A 30^3 CT (1 mm, air and soft tissue) with a 2-label map: two separate 'GTVs' (labels 1 and 2)."""
    arr = np.random.default_rng(0).normal(0, 20, (30, 30, 30))
    arr[:, :, :12] -= 900                                            # some air: a CT in HU
    ct = _image(arr.astype(np.int16))
    lab = np.zeros((30, 30, 30), np.uint8)
    lab[5:10, 5:10, 5:10] = 1
    lab[18:25, 18:25, 18:25] = 2
    return ct, _image(lab, like=ct)


def test_repeated_label_name_is_the_union(ct_and_labels):
    ct, lab = ct_and_labels
    errors = {}
    segs = segments_from_labels(lab, ct, ["gtv=1", "gtv=2", "two=2"], errors=errors)
    assert errors == {} and set(segs) == {"gtv", "two"}
    arr = sitk.GetArrayFromImage(lab)
    assert np.array_equal(sitk.GetArrayFromImage(segs["gtv"]) > 0, arr > 0)      # both labels, not the last one
    segs = segments_from_labels(lab, ct, ["gtv=1", "gtv=7"], errors=errors)
    assert segs == {} and "label 7 is not in the mask" in errors["gtv"]


def test_label_0_is_the_background_and_an_empty_name_is_refused(ct_and_labels):
    """QA: --label 0 said "label 0 is not in the mask (labels present: 1, 2)"; --label =1 silently became label_1.
    Label 0 is named the background (also with other labels under its name); an empty name is refused with the fix."""
    ct, lab = ct_and_labels
    errors = {}
    segs = segments_from_labels(lab, ct, ["0", "=1", "bg=0", "bg=2", "two=2"], errors=errors)
    assert set(segs) == {"two"}
    assert errors["label_0"] == ("label 0 is the background (0 = outside every structure), not a segment; use the "
                                 "structures' labels (present: 1, 2)")
    assert errors["bg"] == errors["label_0"]
    assert errors["=1"] == ("label '=1' has an empty segment name before '='; give the name (name=1), or 1 alone for "
                            "segment label_1")


def test_all_zero_mask_says_so(ct_and_labels):
    ct, _ = ct_and_labels
    empty = _image(np.zeros((30, 30, 30), np.uint8), like=ct)
    with pytest.raises(InputError, match=r"mask m.nii.gz has no labelled voxel \(all 0\)"):
        segments_from_labels(empty, ct, None, what="mask m.nii.gz")


def test_default_segments_are_those_the_masks_can_build(ct_and_labels):
    ct, lab = ct_and_labels
    errors = {}
    segs = S.segments_from_masks(ct, tumour=lab, errors=errors)
    assert set(segs) == {"tumour"} and errors == {}
    segs = S.segments_from_masks(ct, tumour=lab, names=["tumour", "lungs"], errors=errors)   # asked for: an error
    assert set(segs) == {"tumour"} and "needs a mask that was not given" in errors["lungs"]


def test_cli_tumour_only_exit_0_and_stale_errors_removed(ct_and_labels, tmp_path):
    from lungai.cli import main

    ct, lab = ct_and_labels
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(lab, str(tmp_path / "lab.nrrd"))
    out, err = tmp_path / "t.csv", tmp_path / "t_errors.csv"
    base = ["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--feature-classes", "firstorder", "-o", str(out)]
    # an explicitly requested segment that cannot be built: an error row and exit 1
    assert main(base + ["--tumour", str(tmp_path / "lab.nrrd") + "#1", "--segments", "tumour", "lungs"]) == 1
    assert "lungs" in err.read_text(encoding="utf-8")
    # no --segments: the tumour alone (what --tumour builds), no error, exit 0, the old errors table gone
    assert main(base + ["--tumour", str(tmp_path / "lab.nrrd") + "#1"]) == 0
    assert out.exists() and not err.exists()
    # a file of that name saved by the user afterwards is the user's: the removed table left the marker too, so
    # the run (which may have to write errors there) is refused before any work and the file left alone
    marker = tmp_path / ".lungai-radiomics"
    assert "t_errors.csv" not in marker.read_text(encoding="utf-8")
    err.write_text("my notes\n", encoding="utf-8")
    assert main(base + ["--tumour", str(tmp_path / "lab.nrrd") + "#1"]) == 2
    assert err.read_text(encoding="utf-8") == "my notes\n"


@pytest.mark.parametrize("value", [65537, -1])
def test_read_mask_refuses_labels_beyond_16_bits(tmp_path, value):
    from lungai.io import read_mask

    arr = np.zeros((4, 5, 6), np.int32)
    arr[1, 1, 1], arr[2, 2, 2] = 1, value
    sitk.WriteImage(_image(arr), str(tmp_path / "m.nrrd"))
    with pytest.raises(InputError, match=r"label values must be 0 \.\. 65535"):
        read_mask(tmp_path / "m.nrrd")
    arr[2, 2, 2] = 65535                                            # the largest 16-bit label is kept
    sitk.WriteImage(_image(arr), str(tmp_path / "ok.nrrd"))
    assert int(sitk.GetArrayFromImage(read_mask(tmp_path / "ok.nrrd")).max()) == 65535


def test_lung_segment_lost_on_the_lung_grid_says_so():
    ct = _image(np.full((40, 40, 40), -800, np.int16), spacing=(0.6, 0.6, 0.6))
    lab = np.zeros((40, 40, 40), np.uint8)
    lab[20, 20, 20:22] = 1                                          # 2 voxels of 0.6 mm: nothing on a 2 mm grid
    segs = segments_from_labels(_image(lab, like=ct), ct, ["right_lung=1"])
    res = extract(ct, segs, load_params("default", feature_classes=["firstorder"]), case="c")
    msg = res.errors.set_index("segment")["error"]["right_lung"]
    assert "0 voxels left on the (2,2,2) mm lung grid (of 2 on the CT's grid)" in msg
    assert "--lung-spacing 0" in msg and "check the mask/label value" not in msg


def test_implausible_phantom_lungs_noted(small_phantom, phantom_segments):
    from lungai.lungs.check import lung_segment_notes

    assert lung_segment_notes(phantom_segments, small_phantom.ct) == []     # a real phantom: no note
    ct = _image(np.full((20, 20, 20), 30, np.int16), spacing=(1.0, 1.0, 1.0))       # soft tissue, 8 ml
    lung = _image(np.ones((20, 20, 20), np.uint8), like=ct)
    notes = lung_segment_notes({"right_lung": lung}, ct)
    assert len(notes) == 1 and "does not look like a lung (8 ml, mean 30 HU" in notes[0] and "--label" in notes[0]


def _gtv_and_lung_map(ct):
    """A label map of several structures, as the NSCLC-Radiomics exports: 1 GTV, 2 other GTVs, 3 / 4 lungs."""
    lab = np.zeros((30, 30, 30), np.uint8)
    lab[2:28, 2:28, 2:14] = 3
    lab[2:28, 2:28, 16:28] = 4
    lab[5:10, 5:10, 5:10] = 1
    lab[18:25, 18:25, 18:25] = 2
    return _image(lab, like=ct)


def test_lungs_label_map_of_other_structures_is_refused_not_read_as_right_and_left(ct_and_labels, tmp_path):
    """QA: `lungai radiomics --lungs LUNG1-003_labels.nii.gz` (1 GTV-1, 2 other GTVs, 3 / 4 lungs) computed
    'right_lung' on the GTV (35 ml) and 'left_lung' on the other GTVs, dropped the lungs, exit 0 without a word
    (radiomics-batch's lungs column alike).  Refused as dose-features / dicom-export refuse it; FILE#3,4 chooses
    the lungs."""
    from lungai.cli import main
    from lungai.radiomics.batch import process_case

    ct, _ = ct_and_labels
    lab = _gtv_and_lung_map(ct)
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(lab, str(tmp_path / "lab.nrrd"))
    out = tmp_path / "t.csv"
    base = ["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--feature-classes", "shape", "-o", str(out)]
    assert main(base + ["--lungs", str(tmp_path / "lab.nrrd")]) == 2
    assert not out.exists()
    # the lungs chosen: right = 3, left = 4, on the lungs' voxels
    assert main(base + ["--lungs", str(tmp_path / "lab.nrrd") + "#3,4", "--lung-spacing", "0"]) == 0
    import pandas as pd

    vol = pd.read_csv(out).query("feature == 'VoxelVolume'").set_index("segment")["value"]
    arr = sitk.GetArrayFromImage(lab)
    assert vol["right_lung"] == pytest.approx((arr == 3).sum()) and vol["left_lung"] == pytest.approx((arr == 4).sum())
    # radiomics-batch's lungs column: the case fails, naming the labels and the fix
    row = {"case": "p1", "image": str(tmp_path / "ct.nrrd"), "lungs": str(tmp_path / "lab.nrrd")}
    parts = tmp_path / "parts"
    parts.mkdir()
    res = process_case(row, load_params("default", feature_classes=["shape"]), None, str(parts))
    text = str(res)
    assert "holds labels 1, 2, 3, 4" in text and "lab.nrrd#3,4" in text, text
    assert not (parts / "p1.csv").exists()


def test_several_gtv_labels_joined_as_one_tumour_with_file_hash_n_m(ct_and_labels, tmp_path):
    """QA: a patient's GTVs in two labels (NSCLC-Radiomics: 1 GTV-1, 2 the other GTVs) could be joined only with
    --mask ... --label or a manifest; `--tumour labels#1,2` said "has no label '1,2'".  FILE#N,M is now the union
    of the labels as one structure (the tumour, the lungs minus it), with --lungs FILE#3,4 beside it; a label the
    map lacks is named."""
    import pandas as pd

    from lungai.cli import main
    from lungai.errors import InputError
    from lungai.io import read_mask

    ct, _ = ct_and_labels
    lab = _gtv_and_lung_map(ct)
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(lab, str(tmp_path / "lab.nrrd"))
    arr = sitk.GetArrayFromImage(lab)
    union = read_mask(str(tmp_path / "lab.nrrd") + "#1,2", reference=ct)
    assert np.array_equal(sitk.GetArrayFromImage(union), np.isin(arr, [1, 2]).astype(np.uint8))
    with pytest.raises(InputError, match="has no label '7'") as err:
        read_mask(str(tmp_path / "lab.nrrd") + "#1,7", reference=ct)
    # the example takes the labels asked for only (the map's first two could be a GTV and a lung: QA lungsfollow71)
    assert "e.g. " + str(tmp_path / "lab.nrrd") + "#1, " in err.value.fix and "#1,2" not in err.value.fix
    assert "lab.nrrd#N,M for its labels N and M" in err.value.fix, err.value.fix
    with pytest.raises(InputError, match="has no label '7'") as err:
        read_mask(str(tmp_path / "lab.nrrd") + "#2,1,7", reference=ct)
    assert err.value.fix.endswith("e.g. " + str(tmp_path / "lab.nrrd") + "#2,1"), err.value.fix
    one = sitk.Cast(lab == 1, sitk.sitkUInt8)                  # a map of one label: nothing to join
    sitk.WriteImage(one, str(tmp_path / "one.nrrd"))
    with pytest.raises(InputError, match="has no label '2'; its labels: 1\n") as err:
        read_mask(str(tmp_path / "one.nrrd") + "#2", reference=ct)
    assert err.value.fix.endswith("one.nrrd#1") and "joined as one structure" not in err.value.fix, err.value.fix
    out = tmp_path / "t.csv"
    assert main(["radiomics", "--image", str(tmp_path / "ct.nrrd"), "--feature-classes", "shape", "-o", str(out),
                 "--tumour", str(tmp_path / "lab.nrrd") + "#1,2", "--lungs", str(tmp_path / "lab.nrrd") + "#3,4",
                 "--lung-spacing", "0", "--segments", "tumour", "lungs_minus_tumour"]) == 0
    vol = pd.read_csv(out).query("feature == 'VoxelVolume'").set_index("segment")["value"]
    assert vol["tumour"] == pytest.approx(np.isin(arr, [1, 2]).sum())
    assert vol["lungs_minus_tumour"] == pytest.approx(np.isin(arr, [3, 4]).sum())   # the GTVs lie outside 3 / 4 here


def test_binary_mask_of_both_lungs_is_the_lungs_not_the_right_lung(small_phantom, phantom_segments, tmp_path):
    """QA: `lungai radiomics --lungs lungs.nii.gz` with a binary lung mask (label 1 = both lungs; LUNG1-003's
    lungs, 3.9 L) wrote 'right_lung' features computed on both lungs (and an error for an empty 'left_lung').  A
    map of label 1 as wide as both lungs (`lungai.lungs.check.one_label_is_both_lungs`, the rule of dicom-export)
    is both lungs: segments lungs / lungs_minus_tumour; right_lung / left_lung asked for fail saying why."""
    from lungai.cli import main

    ct, tumour, lungs = small_phantom.ct, phantom_segments["tumour"], phantom_segments["lungs"]
    errors = {}
    segs = S.segments_from_masks(ct, tumour=tumour, lungs=lungs, errors=errors)
    assert set(segs) == {"tumour", "lungs", "lungs_minus_tumour"} and errors == {}
    assert np.array_equal(sitk.GetArrayFromImage(segs["lungs"]), sitk.GetArrayFromImage(lungs))
    segs = S.segments_from_masks(ct, lungs=lungs, names=["right_lung", "lungs"], errors=errors)
    assert set(segs) == {"lungs"} and "binary mask of both lungs" in errors["right_lung"]
    # the command line: no right_lung row, exit 0
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(lungs, str(tmp_path / "lungs.nii.gz"))
    out = tmp_path / "t.csv"
    assert main(["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz"),
                 "--feature-classes", "shape", "-o", str(out)]) == 0
    import pandas as pd

    assert set(pd.read_csv(out)["segment"]) == {"lungs"}
    # a map of the right lung alone (label 1, one side) stays the right lung
    right = phantom_segments["right_lung"]
    segs = S.segments_from_masks(ct, lungs=right, names=["right_lung"], errors={})
    assert set(segs) == {"right_lung"}


@pytest.mark.parametrize("value", [255, 2])
def test_binary_mask_of_both_lungs_of_any_value_is_the_lungs(small_phantom, phantom_segments, tmp_path, value):
    """QA rad53: a binary mask of both lungs whose foreground is 255 (dcmrtstruct2nii's and many tools' value) was
    refused by `lungai radiomics --lungs` as "holds labels 255, not only 1 (right lung) and 2 (left lung)" with a
    fix that cannot be followed (FILE#R,L: the mask has one label; FILE#255 is refused as one lung), while
    dose-features took it.  One label of any value as wide as both lungs is both lungs (the label-1 rule); a
    narrower one (one lung, side unknown) is still refused."""
    from lungai.cli import main
    from lungai.dicom.masks import lung_map_input

    ct, tumour, lungs = small_phantom.ct, phantom_segments["tumour"], phantom_segments["lungs"]
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(lungs, sitk.sitkUInt8) * value, str(tmp_path / "lungs.nii.gz"))
    sitk.WriteImage(tumour, str(tmp_path / "gtv.nii.gz"))
    read = lung_map_input(str(tmp_path / "lungs.nii.gz"), ct)
    assert np.array_equal(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(lungs) > 0)
    out = tmp_path / "t.csv"
    assert main(["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz"),
                 "--tumour", str(tmp_path / "gtv.nii.gz"), "--feature-classes", "firstorder", "-o", str(out)]) == 0
    import pandas as pd

    assert set(pd.read_csv(out)["segment"]) == {"tumour", "lungs", "lungs_minus_tumour"}
    right = sitk.Cast(phantom_segments["right_lung"], sitk.sitkUInt8) * 255      # one lung of value 255: no side
    sitk.WriteImage(right, str(tmp_path / "right.nii.gz"))
    with pytest.raises(InputError, match="holds labels 255, not only 1"):
        lung_map_input(str(tmp_path / "right.nii.gz"), ct)


def test_spaces_around_a_label_name_are_not_part_of_the_segment(ct_and_labels):
    """QA: a manifest label cell ' tumour = 255 ' (or --label 'gtv =2') named the segment ' tumour ' (long table
    ' tumour ', wide columns 'rad_ tumour _...', which MultimodalPredict's rad_tumour_* does not find; ' right_lung'
    was no lung and so not on the lung grid) and 'gtv=1' + 'gtv =2' gave two segments instead of their union."""
    from lungai.radiomics.batch import _segment_names

    ct, lab = ct_and_labels
    errors = {}
    segs = segments_from_labels(lab, ct, [" gtv = 1", "gtv =2 ", " tumour = 1 "], errors=errors)
    assert errors == {} and set(segs) == {"gtv", "tumour"}
    assert np.array_equal(sitk.GetArrayFromImage(segs["gtv"]) > 0, sitk.GetArrayFromImage(lab) > 0)
    assert _segment_names([{"label": " right_lung = 3 ; gtv =1"}], None) == ["right_lung", "gtv"]


@pytest.mark.parametrize("block, left", [((slice(20, 21), slice(20, 21), slice(20, 22)), "0 voxels"),
                                         ((slice(20, 22), slice(20, 22), slice(20, 24)), "1 voxel")])
def test_voxels_left_on_the_lung_grid_count_in_the_singular_and_the_plural(block, left):
    """QA pluralseg62: "segment 'right_lung' has 1 voxel(s) left on the (2,2,2) mm lung grid": the count's own
    number now (lungai.errors.counted)."""
    ct = _image(np.full((40, 40, 40), -800, np.int16), spacing=(0.6, 0.6, 0.6))
    lab = np.zeros((40, 40, 40), np.uint8)
    lab[block] = 1
    segs = segments_from_labels(_image(lab, like=ct), ct, ["right_lung=1"])
    res = extract(ct, segs, load_params("default", feature_classes=["firstorder"]), case="c")
    msg = res.errors.set_index("segment")["error"]["right_lung"]
    assert msg.startswith(f"segment 'right_lung' has {left} left on the (2,2,2) mm lung grid (of {int(lab.sum())} on")
