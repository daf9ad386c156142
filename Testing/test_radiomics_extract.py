"""Radiomics extraction: equality with pyradiomics, segments, wide format, bad input, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from lungai.errors import GeometryError, InputError
from lungai.radiomics import extract, load_params, segments_from_labels, to_wide
from lungai.synthetic import labels as L


@pytest.fixture(scope="module")
def default_result(small_phantom, phantom_segments):
    return extract(small_phantom.ct, phantom_segments, load_params("default"), case="p7")


def _write_soft_tissue_in_air(labels: np.ndarray, ct_path, labels_path) -> sitk.Image:
    """Write a CT of air (-800 HU) with soft tissue (40 HU) where ``labels`` is set, 1 x 1 x 2 mm, and the labels on
    its grid; return the labels' image."""
    arr = np.full(labels.shape, -800, np.int16)
    arr[labels > 0] = 40
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 2.0))
    lab = sitk.GetImageFromArray(labels)
    lab.CopyInformation(ct)
    sitk.WriteImage(ct, str(ct_path))
    sitk.WriteImage(lab, str(labels_path))
    return lab


def test_values_equal_direct_pyradiomics_call(small_phantom, phantom_segments, default_result, tmp_path):
    """The tumour (CT grid) equals pyradiomics on the whole CT; a lung segment equals pyradiomics on
    the prepared (2 mm IBSI-resampled) image and mask - every feature, shape included."""
    from radiomics import featureextractor

    from lungai.radiomics.prepare import prepare, pyradiomics_params

    params = load_params("default")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(pyradiomics_params(params)), encoding="utf-8")
    direct = featureextractor.RadiomicsFeatureExtractor(str(params_file))
    prepared = {p.name: p for p in prepare(small_phantom.ct, phantom_segments, params)}
    feats = default_result.features
    inputs = {"tumour": (small_phantom.ct, phantom_segments["tumour"]),
              "lungs_minus_tumour": (prepared["lungs_minus_tumour"].image, prepared["lungs_minus_tumour"].mask)}
    assert prepared["lungs_minus_tumour"].image.GetSpacing() == (2.0, 2.0, 2.0)
    for seg, (image, mask) in inputs.items():
        ref = direct.execute(image, mask, label=1)
        ref = {k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")}
        ours = feats[feats.segment == seg]
        got = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in ours.itertuples()}
        assert set(got) == set(ref) and len(ref) > 100
        for key, value in ref.items():
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6, nan_ok=True), (seg, key)


def test_segments_partition_lungs(small_phantom, phantom_segments, default_result):
    arr = sitk.GetArrayFromImage(small_phantom.labels)
    seg = {k: sitk.GetArrayFromImage(v).astype(bool) for k, v in phantom_segments.items()}
    assert np.array_equal(seg["tumour"], L.tumour_mask(arr))
    assert np.array_equal(seg["lungs"], seg["right_lung"] | seg["left_lung"])
    assert not (seg["lungs_minus_tumour"] & seg["tumour"]).any()
    assert seg["tumour"].sum() > 0 and (seg["right_lung"] & seg["tumour"]).sum() == seg["tumour"].sum()
    f = default_result.features
    vol = f[f.feature == "VoxelVolume"].set_index("segment")["value"]
    # lung segments are resampled to 2 mm (a linear mask kept at >= 0.5), so sums hold to about 1 %
    assert vol["lungs"] == pytest.approx(vol["lungs_minus_tumour"] + vol["tumour"], rel=0.01)
    assert vol["lungs"] == pytest.approx(vol["right_lung"] + vol["left_lung"], rel=0.01)
    native = {k: float(m.sum()) * np.prod(small_phantom.ct.GetSpacing()) for k, m in seg.items()}
    assert vol["tumour"] == native["tumour"]
    assert vol["lungs"] == pytest.approx(native["lungs"], rel=0.02)  # 3.5 x 3.5 x 5 mm CT -> 2 mm grid
    # Lungs are air, the tumour soft tissue.
    mean = f[(f.feature == "Mean") & (f.feature_class == "firstorder")].set_index("segment")["value"]
    assert mean["lungs_minus_tumour"] < -600 < mean["tumour"]


def test_long_and_wide_format(default_result):
    long = default_result.features
    assert list(long.columns) == ["case", "segment", "image_type", "feature_class", "feature", "value",
                                  "radiomics_settings"]
    assert set(long.feature_class) == {"shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    wide = to_wide(long)
    assert len(wide) == 1 and wide.loc[0, "case"] == "p7"
    assert wide.shape[1] == len(long) + 2                                   # + case, radiomics_settings
    assert wide.loc[0, "radiomics_settings"] == long["radiomics_settings"].iloc[0]
    value = long[(long.segment == "tumour") & (long.feature == "Mean") & (long.feature_class == "firstorder")].value
    assert wide.loc[0, "rad_tumour_original_firstorder_Mean"] == value.item()
    assert "rad_lungs_minus_tumour_original_glcm_Contrast" in wide.columns


def test_image_types_selectable(small_phantom, phantom_segments):
    params = load_params("default", image_types=["Original", "LoG", "Wavelet"], feature_classes=["firstorder"],
                         log_sigma=[2.0])
    res = extract(small_phantom.ct, {"tumour": phantom_segments["tumour"]}, params, case="x")
    types = set(res.features.image_type)
    assert {"original", "log-sigma-2-0-mm-3D", "wavelet-LLH", "wavelet-HHH"} <= types
    assert set(res.features.feature_class) == {"firstorder"}


def _thin_ct(slices: int, spacing=(0.7, 0.7, 2.5)):
    """A CT crop of ``slices`` slices (as LIDC's nodule crops: 30 of 2, 107 of 3 slices) with a nodule in it."""
    rng = np.random.default_rng(7)
    arr = rng.integers(-900, -700, (slices, 40, 40)).astype(np.int16)
    m = np.zeros(arr.shape, np.uint8)
    m[:, 15:25, 15:25] = 1
    arr[m > 0] = rng.integers(-50, 80, int(m.sum()))
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing(spacing)
    mask = sitk.GetImageFromArray(m)
    mask.CopyInformation(ct)
    return ct, mask


def test_a_log_sigma_pyradiomics_skips_on_a_thin_ct_is_named(tmp_path, capsys):
    """QA: `lungai radiomics --image-types Original LoG --log-sigma 1 3 5` on LIDC-IDRI-0006_R_4 (43 x 43 x 3 voxels)
    wrote 18 Original values and no LoG row, exit 0, with `image_types` "Original, LoG" in _settings.csv: pyradiomics
    skips a LoG sigma on an image smaller than max(4, ceil(sigma / spacing) + 1) voxels along an axis, with only a log
    line, which lungai silences.  A note names the sigmas left out and why."""
    params = load_params("default", image_types=["Original", "LoG"], feature_classes=["firstorder"],
                         log_sigma=[1.0, 3.0])
    ct, mask = _thin_ct(3)
    res = extract(ct, {"tumour": mask}, params, case="x")
    assert set(res.features.image_type) == {"original"}
    (note,) = res.notes
    assert note.startswith("tumour: no LoG values for sigma 1, 3 mm (no log-sigma-1-0-mm-3D, log-sigma-3-0-mm-3D "
                           "rows): pyradiomics skips a LoG sigma on an image smaller than max(4, ceil(sigma / spacing) "
                           "+ 1) voxels along any axis: the image around segment 'tumour' is ")
    assert "x 3 voxels of 0.7 x 0.7 x 2.5 mm" in note and "at least 4 voxels along every axis" in note
    assert res.settings["notes"].iloc[0] == note.removeprefix("tumour: ")
    # 5 slices of 2.5 mm: sigma 3 computed, sigma 12 (ceil(12 / 2.5) + 1 = 6 slices) left out and named
    params = load_params("default", image_types=["Original", "LoG"], feature_classes=["firstorder"],
                         log_sigma=[3.0, 12.0])
    ct, mask = _thin_ct(5)
    res = extract(ct, {"tumour": mask}, params, case="x")
    assert set(res.features.image_type) == {"original", "log-sigma-3-0-mm-3D"}
    (note,) = res.notes
    assert "no LoG values for sigma 12 mm (no log-sigma-12-0-mm-3D rows)" in note and "sigmas up to 10 mm" in note
    # every sigma computed: no note
    ct, mask = _thin_ct(12)
    assert not extract(ct, {"tumour": mask}, params, case="x").notes
    # the command line prints it
    for name, img in (("ct", _thin_ct(3)[0]), ("mask", _thin_ct(3)[1])):
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    from lungai.cli import main

    main(["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--tumour", str(tmp_path / "mask.nii.gz"),
          "--image-types", "Original", "LoG", "--log-sigma", "2", "--feature-classes", "firstorder",
          "-o", str(tmp_path / "out" / "f.csv")])
    assert "note: tumour: no LoG values for sigma 2 mm" in capsys.readouterr().err


def test_a_segment_of_separate_parts_gets_a_note_on_its_shape(tmp_path, capsys):
    """QA: LUNG1-003's label map through `--mask --label gtv=1 --label gtv=2` (or its label 2, gtv-2 + gtv-3) gave one
    tumour of 4 separate parts - Maximum3DDiameter across the gaps - without a word, while the same GTVs through
    --rtstruct are named ("tumour = union of GTV-1, gtv-3, gtv-2").  A segment of several 26-connected parts gets a
    note with their volumes; one part (also diagonal neighbours) and lung segments (two lungs are two parts) do not."""
    rng = np.random.default_rng(11)
    arr = rng.integers(-900, -700, (20, 40, 40)).astype(np.int16)
    a = np.zeros(arr.shape, np.uint8)
    a[5:10, 5:15, 5:15] = 1             # 500 voxels
    a[12:15, 25:30, 25:30] = 1          # 75 voxels, apart
    a[15, 30, 30] = 1                   # a diagonal neighbour of the second part: the same part
    arr[a > 0] = rng.integers(-50, 80, int(a.sum()))
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 2.0))
    one = np.zeros_like(a)
    one[5:10, 5:15, 5:15] = 1

    def image(x):
        img = sitk.GetImageFromArray(x)
        img.CopyInformation(ct)
        return img

    params = load_params("default", feature_classes=["shape"])
    res = extract(ct, {"tumour": image(a), "gtv1": image(one), "right_lung": image(a)}, params, case="x")
    assert res.errors.empty
    assert res.notes == ["tumour: the segment is 2 separate parts (connected components of 1, 0.152 ml, largest "
                         "first): its shape features (Maximum3DDiameter, Sphericity, axis lengths ...) are of all "
                         "parts as one ROI; for one lesion give its own mask, label or segment, or clean stray "
                         "islands off the contour"]
    notes = dict(zip(res.settings.segment, res.settings.notes))
    assert notes["tumour"] == res.notes[0].removeprefix("tumour: ") and notes["gtv1"] == notes["right_lung"] == ""
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(image(a), str(tmp_path / "gtv.nii.gz"))
    from lungai.cli import main

    main(["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--tumour", str(tmp_path / "gtv.nii.gz"),
          "--feature-classes", "shape", "-o", str(tmp_path / "out" / "f.csv")])
    assert "note: tumour: the segment is 2 separate parts" in capsys.readouterr().err


def test_the_note_on_a_segment_of_separate_parts_names_the_option_given(tmp_path, capsys):
    """QA maskinput64: the note on a tumour of several parts always said "for one lesion give its own mask or label
    (e.g. --tumour labels.nii.gz#1)" - a file and an option the user had not given (a --mask --label union, a
    manifest's row).  It names what the user gave: its file and option, its labels, the manifest's cells."""
    from lungai.cli import main

    labels = np.zeros((20, 40, 40), np.uint8)
    labels[5:10, 5:15, 5:15] = 1
    labels[12:15, 25:30, 25:30] = 2
    labels[3:6, 30:35, 5:10] = 2                  # label 2: two parts by itself
    lab = _write_soft_tissue_in_air(labels, tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz")
    ct_, labels_ = str(tmp_path / "ct.nii.gz"), str(tmp_path / "labels.nii.gz")
    few = ["--feature-classes", "shape"]

    def note(*args):
        main(["radiomics", "--image", ct_, *args, *few, "-o", str(tmp_path / "o" / f"{len(args)}.csv")])
        return [n for n in capsys.readouterr().err.splitlines() if "separate parts" in n]

    (said,) = note("--tumour", f"{labels_}#1,2")
    assert f"for one lesion choose one of its labels (--tumour {labels_}#1), or clean" in said
    assert "labels.nii.gz#1)" in said and "e.g. --tumour labels.nii.gz#1" not in said
    binary = str(tmp_path / "gtv.nii.gz")
    sitk.WriteImage(sitk.Cast(lab > 0, sitk.sitkUInt8), binary)
    (said,) = note("--tumour", binary)
    assert f"for one lesion give each its own label in the mask and choose it after '#' (--tumour {binary}#1)" in said
    (said,) = note("--tumour", f"{labels_}#2")
    assert "for one lesion give each its own label in the mask (label 2 holds them all)" in said
    union, two = note("--mask", labels_, "--label", "gtv=1", "--label", "gtv=2", "--label", "2")
    assert union.startswith("note: gtv: ") and "for one lesion name each of its labels on its own (--label gtv_1=1 " \
        "--label gtv_2=2)" in union and "--tumour" not in union
    assert two.startswith("note: label_2: ") and "(label 2 holds them all)" in two
    (tmp_path / "m.csv").write_text('case,image,tumour\nc1,ct.nii.gz,"labels.nii.gz#1,2"\n')
    (tmp_path / "n.csv").write_text("case,image,mask,label\nc1,ct.nii.gz,labels.nii.gz,gtv=1;gtv=2\n")

    for manifest, words in (("m.csv", "choose one of its labels (labels.nii.gz#1 in the tumour column)"),
                            ("n.csv", "name each of its labels on its own (the label cell gtv_1=1;gtv_2=2)")):
        main(["radiomics-batch", str(tmp_path / manifest), "--workers", "0", *few,
              "-o", str(tmp_path / f"{manifest}.out.csv")])
        capsys.readouterr()
        settings = pd.read_csv(tmp_path / f"{manifest}.out_settings.csv")
        (notes,) = settings.notes.dropna()
        assert f"for one lesion {words}, or clean" in notes and "--" not in notes, (manifest, notes)


def test_the_lung_radiomics_panels_note_on_separate_parts_speaks_of_the_users_segment(tmp_path, capsys):
    """QA segmsg65: the Lung Radiomics panel exports each segment as label 1 of a temporary label map and runs
    `lungai radiomics --mask segment_0.nrrd --label NAME=1` (LungRadiomics.featureCommands); a segment of separate
    parts (LUNG1-003's gtv-2 + gtv-3) was then told "for one lesion give each its own segment or label in the mask
    (label 1 holds them all)" - a label map and a label the user never saw.  The panel's notes
    (lungai.scene.results.run_settings_notes) say it of the user's segment; the CLI's own words are unchanged."""
    from LungAICommon import commands

    from lungai.cli import main
    from lungai.scene.results import run_settings_notes

    mask = np.zeros((20, 40, 40), np.uint8)
    mask[12:15, 25:30, 25:30] = mask[3:6, 30:35, 5:10] = 1          # one segment, two parts
    _write_soft_tissue_in_air(mask, tmp_path / "ct.nrrd", tmp_path / "segment_0.nrrd")
    csv = tmp_path / "features_0.csv"
    args = commands.radiomics(tmp_path / "ct.nrrd", tmp_path / "segment_0.nrrd", csv, [("gtv-2", 1)],
                              feature_classes=["shape"], image_types=["Original"])
    assert main(args) == 0
    assert "(label 1 holds them all)" in capsys.readouterr().err        # the CLI: the label of its mask
    edges, notes = run_settings_notes({"segment_0": "gtv-2"}, {"segment_0": csv})
    (note,) = [n for n in notes if "separate parts" in n]
    assert note.startswith("gtv-2: the segment is 2 separate parts"), note
    assert "for one lesion draw each as its own segment of the segmentation (segment 'gtv-2' holds them all)" in note
    assert "label" not in note, note


def test_params_presets_and_yaml(tmp_path):
    c = load_params("ibsi-c")
    assert c["lungai"] == {"ibsi": "C"} and "setting" not in c
    assert "gldzm" in c["featureClass"] and "gldzm" not in load_params("default")["featureClass"]
    with pytest.raises(InputError, match="original image only"):
        load_params("ibsi-c", image_types=["LoG"])
    f = tmp_path / "p.yaml"
    f.write_text("lungai: {ibsi: d}\nfeatureClass: {glcm: [], gldzm: []}\n", encoding="utf-8")
    assert load_params(str(f))["lungai"]["ibsi"] == "d"
    f.write_text("lungai: {ibsi: F}\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown IBSI configuration"):
        load_params(str(f))
    f.write_text("lungai: {ibsi: C}\nsetting: {binWidth: 10}\n", encoding="utf-8")
    with pytest.raises(InputError, match="fixes every setting"):
        load_params(str(f))
    with pytest.raises(InputError, match="unknown feature class"):
        load_params("default", feature_classes=["glzm"])
    f.write_text("setting: {binWidth: 10}\nimageType: {Original: {}}\nfeatureClass: {glcm: []}\n", encoding="utf-8")
    assert load_params(str(f))["setting"]["binWidth"] == 10
    with pytest.raises(InputError, match="neither a preset"):
        load_params("ibsi-z")
    f.write_text("settings: {binWidth: 10}\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown top-level"):
        load_params(str(f))
    with pytest.raises(InputError, match="unknown image type"):
        load_params("default", image_types=["Gradient2"])


def test_params_path_that_is_not_a_file_says_what_it_is(tmp_path):
    """QA inputfollow65: ``--params /dev/null`` (or a folder) said "is neither a preset nor an existing file" although
    the path exists: it says what the path is (a device, a folder, a link to nothing); a path that is not there at all
    keeps the preset wording."""
    with pytest.raises(InputError, match=r"/dev/null is a device, not a parameter file") as err:
        load_params("/dev/null")
    assert "ibsi-a" in err.value.fix
    with pytest.raises(InputError, match=r"is a folder, not a parameter file"):
        load_params(str(tmp_path))
    link = tmp_path / "gone.yaml"
    link.symlink_to(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match=r"is a link to .*missing.yaml, which does not exist"):
        load_params(str(link))
    with pytest.raises(InputError, match="neither a preset nor an existing file"):
        load_params(str(tmp_path / "absent.yaml"))


def test_params_file_with_an_empty_block(small_phantom, tmp_path, capsys):
    """Review (D2): a YAML whose featureClass: / imageType: block is empty (every class commented out: YAML null) or
    a list reached pyradiomics' schema check - `lungai radiomics --params nullfc.yaml` and the Lung Radiomics panel
    (the file alone since fe0265c) ended in a raw pykwalify traceback (rc 1).  Now an InputError naming the file and
    the key; with --feature-classes / --image-types (they replace the block) the file is accepted as before."""
    from lungai.cli import main

    f = tmp_path / "nullfc.yaml"
    for text, key in (("featureClass:\n#  shape:\nsetting: {binWidth: 25}\n", "featureClass"),
                      ("imageType:\nsetting: {binWidth: 25}\n", "imageType"),
                      ("featureClass: [shape, firstorder]\n", "featureClass"),
                      ("setting:\nfeatureClass: {shape: []}\n", "setting")):
        f.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=f"the {key} block of the parameter file .*nullfc.yaml is") as info:
            load_params(str(f))
        assert "list at least one" in info.value.fix and f"remove the key {key}" in info.value.fix
    f.write_text("featureClass:\n#  shape:\nimageType:\nsetting: {binWidth: 25}\n", encoding="utf-8")
    params = load_params(str(f), feature_classes=["shape"], image_types=["Original"])
    assert list(params["featureClass"]) == ["shape"] and list(params["imageType"]) == ["Original"]
    assert params["setting"]["binWidth"] == 25
    f.write_text("featureClass: {}\n", encoding="utf-8")          # pyradiomics' "every class": accepted as before
    assert load_params(str(f))["featureClass"] == {}
    f.write_text("featureClass:\n#  shape:\nsetting: {binWidth: 25}\n", encoding="utf-8")
    ct, lab = tmp_path / "ct.nii.gz", tmp_path / "lab.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(lab))
    assert main(["radiomics", "--image", str(ct), "--mask", str(lab), "--label", "1", "--params", str(f),
                 "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "the featureClass block of the parameter file" in err and "Traceback" not in err


def test_params_file_with_an_empty_image_type_or_voxel_setting(small_phantom, tmp_path, capsys):
    """Review (fix_casepair 3): an empty block one level down - an image type with nothing after it ('Original:',
    'LoG:' under imageType: YAML null, refused by pyradiomics' own schema: "Value 'None' is not a dict") - and an
    empty voxelSetting: block still reached pykwalify (raw traceback, rc 1).  Now an InputError naming the file and
    the image type / block; a null feature class ('firstorder:', pyradiomics' "every feature of the class") stays
    accepted, and --image-types (it replaces the block) still takes the file."""
    from lungai.cli import main

    f = tmp_path / "nested.yaml"
    for text, match in (("imageType:\n  Original:\nfeatureClass:\n  firstorder:\n", "image type Original in the imageType block"),
                        ("imageType:\n  Original: {}\n  LoG:\n", "image type LoG in the imageType block"),
                        ("imageType:\n  LoG: [1, 2]\n", "image type LoG in the imageType block"),
                        ("voxelSetting:\nfeatureClass: {shape: []}\n", "the voxelSetting block")):
        f.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=f"{match} of the parameter file .*nested.yaml is") as info:
            load_params(str(f))
        assert "remove" in info.value.fix and ("[1, 2]" not in text or "a list, not a mapping" in info.value.problem)
    f.write_text("imageType:\n  Original:\nfeatureClass:\n  firstorder:\n", encoding="utf-8")
    assert list(load_params(str(f), image_types=["Original"])["imageType"]) == ["Original"]
    f.write_text("imageType: {Original: {}}\nfeatureClass:\n  firstorder:\n", encoding="utf-8")
    assert load_params(str(f))["featureClass"] == {"firstorder": None}     # every first-order feature: valid
    ct, lab = tmp_path / "ct.nii.gz", tmp_path / "lab.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(lab))
    f.write_text("imageType:\n  Original: {}\n  LoG:\n", encoding="utf-8")
    assert main(["radiomics", "--image", str(ct), "--mask", str(lab), "--label", "1", "--params", str(f),
                 "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "image type LoG" in err and "Traceback" not in err


def test_bad_segments_reported_others_continue(small_phantom):
    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(small_phantom.labels).astype(np.uint8)
    arr[arr == L.EFFUSION] = 0
    arr[0, 0, 0] = 12  # a one-voxel "structure"
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(ct)
    errors = {}
    segs = segments_from_labels(mask, ct, ["tumour=1", "effusion=4", "dot=12"], errors=errors)
    assert "label 4 is not in the mask" in errors["effusion"]
    empty = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(ct)
    segs["empty"] = empty
    params = load_params("default", feature_classes=["firstorder"])
    res = extract(ct, segs, params, case="c", segment_errors=errors)
    assert set(res.features.segment) == {"tumour"}
    err = res.errors.set_index("segment")["error"]
    assert "empty" in err["empty"] and "only 1 voxel" in err["dot"] and "not in the mask" in err["effusion"]


def test_an_unforeseen_pyradiomics_failure_on_one_region_fails_that_region_only(small_phantom, tmp_path,
                                                                                monkeypatch, capsys):
    """QA: a pyradiomics exception other than ValueError / RuntimeError / IndexError on one region (a MemoryError,
    a ZeroDivisionError ...) stopped the whole run: no segment written.  Now that region is named with the reason,
    the others are written and the exit status is 1 (some segments failed)."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from lungai.cli import main

    arr = sitk.GetArrayFromImage(small_phantom.labels).astype(np.uint8)
    tumour = arr == L.TUMOUR
    arr[:] = 0
    arr[tumour] = 1
    arr[2:5, 3:6, 3:6] = 2                     # a small region
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(small_phantom.ct)
    real = RadiomicsFeatureExtractor.execute

    def execute(self, image, roi, label=None, **kw):
        if int(np.count_nonzero(sitk.GetArrayViewFromImage(roi))) < 100:
            raise ZeroDivisionError("float division by zero")
        return real(self, image, roi, label=label, **kw)

    monkeypatch.setattr(RadiomicsFeatureExtractor, "execute", execute)
    ct, lab, out = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz", tmp_path / "f.csv"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(mask, str(lab))
    rc = main(["radiomics", "--image", str(ct), "--mask", str(lab), "--label", "small=2", "--label", "tumour=1",
               "--feature-classes", "firstorder", "-o", str(out)])
    assert rc == 1
    assert set(pd.read_csv(out).segment) == {"tumour"}
    errors = pd.read_csv(tmp_path / "f_errors.csv").set_index("segment")["error"]
    assert list(errors.index) == ["small"] and "ZeroDivisionError: float division by zero" in errors["small"]
    assert "error: ct / small: pyradiomics failed on segment 'small'" in capsys.readouterr().err


def test_geometry_mismatch_tells_how_to_resample(small_phantom):
    shifted = sitk.Image(small_phantom.labels)
    shifted.SetOrigin(tuple(o + 7.0 for o in shifted.GetOrigin()))
    with pytest.raises(GeometryError, match="sitk.Resample"):
        segments_from_labels(shifted, small_phantom.ct, ["1"])


def test_cli_radiomics(small_phantom, tmp_path):
    from lungai.cli import main

    ct, lab = tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(lab))
    out = tmp_path / "f.csv"
    rc = main(["radiomics", "--image", str(ct), "--mask", str(lab), "--phantom-labels", "--segments", "tumour",
               "lungs", "--feature-classes", "firstorder", "shape", "--wide", "-o", str(out)])
    assert rc == 0
    wide = pd.read_csv(out)
    assert wide.loc[0, "case"] == "ct" and "rad_lungs_original_shape_VoxelVolume" in wide.columns
    # Every segment failing: error exit, nothing written.
    out2 = tmp_path / "none.csv"
    rc = main(["radiomics", "--image", str(ct), "--mask", str(lab), "--label", "42", "-o", str(out2)])
    assert rc == 2 and not out2.exists()
    # Only CSV outputs: an image path (e.g. the input CT) is refused, the CT is untouched.
    before = ct.read_bytes()
    assert main(["radiomics", "--image", str(ct), "--mask", str(lab), "--label", "1", "-o", str(ct)]) == 2
    assert ct.read_bytes() == before


def test_csv_written_atomically(tmp_path, monkeypatch):
    from lungai.radiomics.csv_output import write_csv

    out = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"a": [1]}), out)
    before = out.read_text(encoding="utf-8")

    def boom(self, path, **kw):
        open(path, "w", encoding="utf-8").write("half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(InputError, match="cannot write .*t.csv: disk full"):   # the path, no traceback
        write_csv(pd.DataFrame({"a": [2]}), out)
    assert out.read_text(encoding="utf-8") == before and [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.shared_data
def test_real_lung_ct_equals_pyradiomics(shared_data):
    """pyradiomics' own lung1 test case (real CT, 1.4 cm3 lesion): CLI-level path equals a direct call."""
    from radiomics import featureextractor

    from lungai.io import read_ct, read_mask
    from lungai.radiomics.prepare import pyradiomics_params

    d = shared_data / "pyradiomics_lung"
    image = read_ct(d / "lung1_image.nrrd")
    mask = read_mask(d / "lung1_label.nrrd", reference=image)
    segs = segments_from_labels(mask, image, ["lesion=1"])
    params = load_params("default")
    ours = extract(image, segs, params, case="lung1").features
    direct = featureextractor.RadiomicsFeatureExtractor(pyradiomics_params(params)).execute(image, segs["lesion"])
    direct = {k: float(v) for k, v in direct.items() if not k.startswith("diagnostics_")}
    got = {f"{r.image_type}_{r.feature_class}_{r.feature}": r.value for r in ours.itertuples()}
    assert got.keys() == direct.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-6, abs=1e-6) for k, v in direct.items())
    assert got["original_shape_VoxelVolume"] == pytest.approx(1400, rel=0.2)  # README: 1.4 cm3 lesion


def test_cli_radiomics_warns_of_a_tumour_cut_by_the_image_edge(small_phantom, tmp_path, capsys):
    """QA: a tumour mask touching the CT's first slice (cut by the field of view: 18.8 ml of 34.8) was measured without
    a word.  Each segment on the image edge is warned of (lungai.seg.preprocess.cut_by_image_edge, the concept of
    `lungai segment`'s cut_by_image_edge) and recorded in the settings CSV's cut_by_image_edge column; the features
    table keeps its columns."""
    from lungai.cli import main

    tumour = sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8)
    zs = np.nonzero(sitk.GetArrayViewFromImage(tumour).any(axis=(1, 2)))[0]
    mid = int(zs[len(zs) // 2])
    outs = {}
    for name, (ct, mask) in {"whole": (small_phantom.ct, tumour),
                             "cut": (small_phantom.ct[:, :, mid:], tumour[:, :, mid:])}.items():
        ct_p, m_p, out = tmp_path / f"{name}_ct.nii.gz", tmp_path / f"{name}_t.nii.gz", tmp_path / f"{name}.csv"
        sitk.WriteImage(ct, str(ct_p))
        sitk.WriteImage(mask, str(m_p))
        assert main(["radiomics", "--image", str(ct_p), "--tumour", str(m_p), "--feature-classes", "shape",
                     "-o", str(out)]) == 0
        outs[name] = (pd.read_csv(out), pd.read_csv(tmp_path / f"{name}_settings.csv", keep_default_na=False),
                      capsys.readouterr().err)
    (whole, s_whole, err_whole), (cut, s_cut, err_cut) = outs["whole"], outs["cut"]
    assert "image's" not in err_whole and list(s_whole.cut_by_image_edge) == [""]
    assert ("warning: segment 'tumour' touches the image's z- edge: it may be cut by the scan; shape and volume "
            "features are of the part inside") in err_cut
    assert list(s_cut.cut_by_image_edge) == ["z-"]
    assert list(cut.columns) == list(whole.columns)


def test_radiomics_batch_warns_of_a_segment_cut_by_the_image_edge(small_phantom, tmp_path, capsys):
    """Review: radiomics-batch recorded a cut tumour in its settings CSV but printed nothing (lungai radiomics warns).
    It names the case, also in this one-case batch."""
    from lungai.cli import main

    tumour = sitk.Cast(small_phantom.labels == L.TUMOUR, sitk.sitkUInt8)
    zs = np.nonzero(sitk.GetArrayViewFromImage(tumour).any(axis=(1, 2)))[0]
    mid = int(zs[len(zs) // 2])
    sitk.WriteImage(small_phantom.ct[:, :, mid:], str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(tumour[:, :, mid:], str(tmp_path / "t.nii.gz"))
    (tmp_path / "m.csv").write_text(f"case,image,mask\ncut,{tmp_path / 'ct.nii.gz'},{tmp_path / 't.nii.gz'}\n",
                                    encoding="utf-8")
    assert main(["radiomics-batch", str(tmp_path / "m.csv"), "--workers", "0", "--feature-classes", "shape",
                 "-o", str(tmp_path / "b.csv")]) == 0
    assert "warning: cut / segment 'label_1' touches the image's z- edge: it may be cut by the scan" in \
        capsys.readouterr().out


def test_lung_cut_flag_leaves_out_the_ct_s_blank_end_slices(small_phantom):
    """QA: on a CT padded with blank slices (resampling), `lungai lungs` / cohort said the lungs touch the top and
    bottom slices while radiomics' cut_by_image_edge (the mask alone) had no z- / z+: the lung segments are judged on
    the CT's slices between its blank end slices now (lungai.lungs.segment.lung_cut_faces); the values unchanged."""
    box = (slice(None), slice(None), slice(15, 20))
    ct, lab = small_phantom.ct[box], small_phantom.labels[box]
    lungs = sitk.Cast((lab == L.RIGHT_LUNG) | (lab == L.LEFT_LUNG), sitk.sitkUInt8)

    def padded(img, value):
        arr = sitk.GetArrayFromImage(img)
        blank = np.full((1,) + arr.shape[1:], value, arr.dtype)
        out = sitk.GetImageFromArray(np.concatenate([blank, arr, blank, blank]))
        out.SetSpacing(img.GetSpacing())
        out.SetDirection(img.GetDirection())
        out.SetOrigin(img.TransformIndexToPhysicalPoint((0, 0, -1)))
        return out

    params = load_params("default", feature_classes=["shape", "firstorder"], lung_spacing_mm=0)
    plain = extract(ct, {"lungs": lungs}, params, case="c")
    pad = extract(padded(ct, -1024), {"lungs": padded(lungs, 0)}, params, case="c")
    assert list(plain.settings.cut_by_image_edge) == list(pad.settings.cut_by_image_edge) == ["z-;z+"]
    assert pad.features.value.tolist() == pytest.approx(plain.features.value.tolist(), rel=1e-9)


def test_padding_outside_the_field_of_view_is_left_out_of_every_segment(small_phantom, tmp_path, capsys):
    """QA: LUNG1-003 with every voxel beyond 150 px of the centre at -3024 (the reconstruction circle's padding) and
    its label map reaching past it gave a lung minimum of -3024 (-1023 without padding), mean -744 (-646), variance
    7-9 x, without a word.  Padding (lungai.io.validate.padding_mask) and the voxels next to it (the lung grid's
    linear resampling blends them: a minimum of -1780) are left out of every segment on the CT's grid; each such
    segment is warned of, noted with the count and marked 'fov' in cut_by_image_edge.  A CT without padding gives the
    same values as before (QA: lung1 / lung2 / LUNG1-003 byte-identical)."""
    from lungai.cli import main
    from lungai.io.validate import PADDING_HU

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(ct)
    lab = small_phantom.labels
    lungs = sitk.Cast((lab == L.RIGHT_LUNG) | (lab == L.LEFT_LUNG), sitk.sitkUInt8)
    tumour = sitk.Cast(lab == L.TUMOUR, sitk.sitkUInt8)
    m = sitk.GetArrayViewFromImage(lungs) > 0
    ny, nx = arr.shape[1:]
    yy, xx = np.mgrid[:ny, :nx]
    ys, xs = np.nonzero(m.any(axis=0))
    r = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    radius = 0.8 * float(r[ys, xs].max())      # the circle cuts the lungs
    padded = arr.copy()
    padded[:, r > radius] = -3024
    assert (m & (padded <= PADDING_HU)).sum() > 50 and not (sitk.GetArrayViewFromImage(tumour)[:, r > radius - 2]).any()
    pad_ct = sitk.GetImageFromArray(padded)
    pad_ct.CopyInformation(ct)
    params = load_params("default", feature_classes=["firstorder"])
    segs = {"tumour": tumour, "lungs": lungs}
    before = extract(pad_ct, segs, params, case="c")
    mins = before.features[before.features.feature == "Minimum"].set_index("segment").value
    assert mins["lungs"] > PADDING_HU, "padding counted as lung"
    assert list(before.settings.cut_by_image_edge.str.contains("fov")) == [False, True]
    (note,) = [n for n in before.notes if "padding" in n]
    assert note.startswith("lungs: ") and "of padding outside the scanner's field of view" in note
    assert "left out of 'lungs'" in note and "fov" not in before.settings.notes.iloc[0]
    # the tumour, inside the field of view, as on the CT without padding
    plain = extract(ct, {"tumour": tumour}, params, case="c")
    assert plain.settings.cut_by_image_edge.tolist() == [""]
    t = before.features[before.features.segment == "tumour"].value.tolist()
    assert t == pytest.approx(plain.features.value.tolist(), rel=1e-12)
    # the CLI warns (and the settings CSV records it)
    for name, img in {"ct": pad_ct, "lungs": lungs}.items():
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    assert main(["radiomics", "--image", str(tmp_path / "ct.nii.gz"), "--mask", str(tmp_path / "lungs.nii.gz"),
                 "--label", "lungs=1", "--feature-classes", "firstorder", "-o", str(tmp_path / "f.csv")]) == 0
    err = capsys.readouterr().err
    assert "warning: segment 'lungs' reaches past the scanner's field of view" in err
    assert "note: lungs: " in err and "of padding outside the scanner's field of view" in err
    assert pd.read_csv(tmp_path / "f_settings.csv", keep_default_na=False).cut_by_image_edge.tolist() == ["fov"]


def test_overshoot_below_padding_hu_inside_the_body_is_no_padding(small_phantom, monkeypatch):
    """Review: LUNG1-003 resampled with a B-spline (rounded to int16) overshoots the -1024 air floor: a few isolated
    voxels <= -1100 HU deep inside the lungs were taken for the field of view's padding - a warning, 'fov' in
    cut_by_image_edge, the voxels and their 26 neighbours dropped (196 / 428 values changed, LDLGLE +17 %).  Padding
    is only what reaches the slice's border (lungai.io.validate.reaching_border): such a CT gives no 'fov' and the
    values of the extraction without any padding pass; a lone padding voxel reads '1 voxel'."""
    import sys

    from scipy import ndimage

    ex = sys.modules["lungai.radiomics.extract"]       # the module (lungai.radiomics.extract is also the function)
    from lungai.io.validate import reaching_border

    ct = small_phantom.ct
    arr = sitk.GetArrayFromImage(ct)
    lab = small_phantom.labels
    lungs = sitk.Cast((lab == L.RIGHT_LUNG) | (lab == L.LEFT_LUNG), sitk.sitkUInt8)
    m = sitk.GetArrayFromImage(lungs) > 0
    inner = ndimage.binary_erosion(m, iterations=3)
    zs, ys, xs = np.nonzero(inner)
    pick = np.linspace(0, len(zs) - 1, 6).astype(int)
    shot = arr.copy()
    shot[zs[pick], ys[pick], xs[pick]] = -1150          # isolated overshoot, deep inside the lungs
    assert not reaching_border(shot <= -1100).any()
    shot_ct = sitk.GetImageFromArray(shot)
    shot_ct.CopyInformation(ct)
    params = load_params("default", feature_classes=["firstorder", "glcm"])
    got = extract(shot_ct, {"lungs": lungs}, params, case="c")
    assert got.settings.cut_by_image_edge.str.contains("fov").tolist() == [False]
    assert not [n for n in got.notes if "padding" in n]
    monkeypatch.setattr(ex, "without_padding_voxels", lambda image, segments: (segments, {}))
    old = extract(shot_ct, {"lungs": lungs}, params, case="c")
    monkeypatch.undo()
    assert got.features.value.tolist() == pytest.approx(old.features.value.tolist(), rel=1e-12, nan_ok=True)
    # real padding in a corner (reaching the border) still counts, and one voxel of it reads in the singular
    corner = arr.copy()
    corner[5, 0, 0] = -3024
    one = np.zeros_like(m, np.uint8)
    one[5, :3, :3] = 1
    corner_ct, one_mask = sitk.GetImageFromArray(corner), sitk.GetImageFromArray(one)
    corner_ct.CopyInformation(ct)
    one_mask.CopyInformation(ct)
    _, notes = ex.without_padding_voxels(corner_ct, {"s": one_mask})
    assert notes["s"].startswith("1 voxel (") and " 3 next to it" in notes["s"]


def test_a_parameter_files_label_setting_is_not_silently_ignored(small_phantom, tmp_path, capsys):
    """QA: `setting: {label: 2}` in a parameter file was ignored: every label of the mask was computed (lungai takes
    the labels from --label / the manifest / the segments, and gives pyradiomics one binary segment at a time).
    Another label than pyradiomics' default 1 is now refused, naming the option that selects labels; `label: 1` (the
    pyradiomics example files carry it) is accepted as before."""
    from lungai.cli import main

    f = tmp_path / "p.yaml"
    f.write_text("setting: {binWidth: 25, label: 2}\nfeatureClass: {firstorder: []}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"label: 2") as info:
        load_params(str(f))
    assert "--label 2" in info.value.fix and "remove" in info.value.fix
    ct, lab = tmp_path / "ct.nii.gz", tmp_path / "lab.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(small_phantom.labels, str(lab))
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", str(ct), "--mask", str(lab), "--params", str(f), "-o", str(out)]) == 2
    assert "label: 2" in capsys.readouterr().err and not out.exists()
    f.write_text("setting: {binWidth: 25, label: 1}\nfeatureClass: {firstorder: []}\n", encoding="utf-8")
    assert load_params(str(f))["setting"]["label"] == 1


def test_a_run_with_no_features_gives_one_fix_the_segments_own(small_phantom, tmp_path, capsys):
    """QA: a 1-voxel mask printed the segment's fix inside the problem's parentheses and then a generic second
    "How to fix: fix the masks listed above"; a label missing from the mask got only the generic fix."""
    from lungai.cli import main

    ct, dot = tmp_path / "ct.nii.gz", tmp_path / "dot.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    arr = np.zeros(sitk.GetArrayViewFromImage(small_phantom.ct).shape, np.uint8)
    arr[20, 48, 30] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(small_phantom.ct)
    sitk.WriteImage(mask, str(dot))
    out = tmp_path / "out.csv"
    assert main(["radiomics", "--image", str(ct), "--mask", str(dot), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("How to fix") == 1 and "How to fix: draw a larger segment" in err and "only 1 voxel" in err
    assert main(["radiomics", "--image", str(ct), "--mask", str(dot), "--label", "7", "--label", "8",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("How to fix") == 1 and "--label 1" in err and "label 8 is not in the mask" in err
    assert not out.exists()


def _flat_mask(ref: sitk.Image, where) -> sitk.Image:
    arr = np.zeros(sitk.GetArrayFromImage(ref).shape, np.uint8)
    arr[where] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(ref)
    return mask


def test_a_line_of_voxels_is_said_to_be_a_line_with_the_fix(small_phantom, tmp_path, capsys):
    """QA radfollow68: ``lungai radiomics --image lung1_image.nrrd --mask <2 adjacent voxels>`` said pyradiomics' own
    "mask has too few dimensions (number of dimensions 1, minimum required 2)" with the generic fix "check that the
    segment is a solid region of at least a few voxels".  Now: what the segment is (2 voxels in a line, along which
    axis) and that radiomics needs an area - better a 3D region -, with how to draw it."""
    from lungai.cli import main

    ct, mask = tmp_path / "ct.nii.gz", tmp_path / "line.nii.gz"
    sitk.WriteImage(small_phantom.ct, str(ct))
    sitk.WriteImage(_flat_mask(small_phantom.ct, (20, 40, slice(40, 42))), str(mask))
    capsys.readouterr()
    rc = main(["radiomics", "--image", str(ct), "--mask", str(mask), "--feature-classes", "firstorder",
               "-o", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "f.csv").exists(), err
    assert "segment 'label_1' is 2 voxels in a line (one row of voxels along x, left-right, in one slice): " \
           "radiomics needs a region over at least 2 dimensions - an area in a slice, better a 3D region over " \
           "several slices" in err, err
    assert "(pyradiomics: mask has too few dimensions (number of dimensions 1, minimum required 2))" in err, err
    assert "draw the segment as the structure's region over several rows of voxels and slices, not a line" in err
    assert "check that the segment is a solid region" not in err, err


def test_a_segment_in_one_slice_is_said_to_be_flat_when_the_settings_need_3d(small_phantom):
    """A 3 x 3 segment in one slice with pyradiomics' minimumROIDimensions 3: said to lie in one axial slice, with the
    fix (over several slices, or the setting)."""
    from lungai.radiomics.extract import extract_segment, make_extractor

    params = load_params("default", feature_classes=["firstorder"])
    params["setting"]["minimumROIDimensions"] = 3
    mask = _flat_mask(small_phantom.ct, (20, slice(40, 43), slice(40, 43)))
    with pytest.raises(InputError) as exc:
        extract_segment(make_extractor(params), small_phantom.ct, mask, "c", "flat")
    assert exc.value.problem.startswith("segment 'flat' is 9 voxels in one plane (one axial slice): radiomics with "
                                        "these settings (minimumROIDimensions 3) needs a 3D region over several "
                                        "slices"), exc.value.problem
    assert "draw the segment over several slices" in exc.value.fix and "minimumROIDimensions" in exc.value.fix


def test_the_note_on_a_segment_of_separate_parts_names_an_ibsi_presets_shape_features_by_their_tags():
    """QA radiomics72: with --params ibsi-c (LUNG1-003's label 2, gtv-2 + gtv-3) the note said its shape features
    "(Maximum3DDiameter, Sphericity, axis lengths ...)" are of all parts as one ROI - names the table, keyed by IBSI tag,
    does not hold (morph_diam, morph_sphericity ...).  It names them as the table does."""
    from lungai.radiomics import extract, load_params

    arr = np.full((20, 40, 40), -800, np.int16)
    a = np.zeros(arr.shape, np.uint8)
    a[5:10, 5:15, 5:15] = a[12:15, 25:30, 25:30] = 1     # two parts, apart
    arr[a > 0] = 40
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((1.0, 1.0, 2.0))
    mask = sitk.GetImageFromArray(a)
    mask.CopyInformation(ct)
    res = extract(ct, {"tumour": mask}, load_params("ibsi-c", feature_classes=["shape"]), case="x")
    (note,) = res.notes
    assert "its shape features (morph_diam, morph_sphericity, morph_pca_maj_axis ...) are of all parts" in note, note
    tags = set(res.features.feature_class + "_" + res.features.feature)
    assert {"morph_diam", "morph_sphericity", "morph_pca_maj_axis"} <= tags
    res = extract(ct, {"tumour": mask}, load_params("default", feature_classes=["shape"]), case="x")
    assert "its shape features (Maximum3DDiameter, Sphericity, axis lengths ...) are of all parts" in res.notes[0]
    assert {"Maximum3DDiameter", "Sphericity"} <= set(res.features.feature)
