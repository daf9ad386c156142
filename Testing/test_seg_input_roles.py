"""A DICOM SEG given as the lungs / tumour (``--lungs`` / ``--tumour``, a radiomics-batch manifest's ``lungs`` /
``tumour`` columns): its segments as the messages name them, and their roles from the segment terminology.

QA seglungs63 (LUNG1-003's contours as a SEG, "Lung, right" / "Lung, left"):
- the two lung segments named the other way round (the "Lung, right" segment on the patient's left) failed
  right_lung / left_lung naming "label 1 of the lung map, or R of FILE#R,L" - a placeholder, not the SEG's segments -
  with the fix "relabel the lung map", which a SEG has not;
- a SEG whose segments carry the SNOMED CT codes of a primary neoplasm and the right / left lung but generic labels
  ("Segment_1", as many tools export them) was refused: "no segment ... has role 'gtv'; its segments: Segment_1 (no
  role) ..." - the role was taken from the label alone, never from the segment's own terminology."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from dicom_helpers import small_phantom

from lungai.cli import main

FEW = ["--image-types", "Original", "--feature-classes", "shape"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    root = tmp_path_factory.mktemp("seg_roles")
    st = write_rt_study(root, small_phantom(7), "P1", dose=None)
    return st, read_ct(st["ct"]), root


def _seg(study, name, masks, roles):
    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import write_seg

    st, ct, root = study
    return write_seg(masks, ct_reference(st["ct"], image=ct), root / name, roles=roles)


@pytest.fixture(scope="module")
def swapped_seg(study):
    """The right lung's segment is the left lung's contour and the other way round (their labels swapped)."""
    m = study[0]["masks"]
    return _seg(study, "swapped.seg.dcm", {"GTV-1": m["GTV"], "Lung, right": m["Lung_L"], "Lung, left": m["Lung_R"]},
                {"GTV-1": "gtv_primary", "Lung, right": "lung_right", "Lung, left": "lung_left"})


@pytest.fixture(scope="module")
def generic_seg(study):
    """Generic labels, the segments' roles in their terminology codes only."""
    m = study[0]["masks"]
    return _seg(study, "generic.seg.dcm", {"Segment_1": m["GTV"], "Segment_2": m["Lung_R"], "Segment_3": m["Lung_L"]},
                {"Segment_1": "gtv_primary", "Segment_2": "lung_right", "Segment_3": "lung_left"})


def _run(capsys, *args):
    rc = main(list(map(str, args)))
    said = capsys.readouterr()
    return rc, said.out + said.err


def test_swapped_seg_lungs_are_named_by_their_segments(study, swapped_seg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st = study[0]
    rc, text = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", swapped_seg, "--lungs", swapped_seg,
                    "-o", tmp_path / "f.csv", *FEW)
    assert "right and left are swapped" in text, text
    assert "'Lung, right'" in text and "'Lung, left'" in text, text
    assert "R of FILE#R,L" not in text and "label 1 of the lung map" not in text, text
    # the fix takes the segments the other way round, by number (their labels hold commas), as a command word
    assert f"--lungs {swapped_seg}#3,2" in text and "relabel the lung map" not in text, text
    # ... which works: right_lung is then the right lung's contour (the side check passes)
    rc, text = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", swapped_seg, "--lungs", f"{swapped_seg}#3,2",
                    "-o", tmp_path / "g.csv", *FEW)
    assert rc == 0 and "are swapped" not in text, text
    assert {"right_lung", "left_lung"} <= set(pd.read_csv(tmp_path / "g.csv")["segment"])


def test_swapped_seg_lungs_in_a_manifest(study, swapped_seg, tmp_path, capsys, monkeypatch):
    """radiomics-batch's lungs column: the same names, its fix a manifest cell (in double quotes: a comma)."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(study[0]["ct"])], "tumour": [str(swapped_seg)],
                  "lungs": [str(swapped_seg)]}).to_csv(manifest, index=False)
    rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "f.csv", *FEW, "--workers", "0")
    errors = pd.read_csv(tmp_path / "f_errors.csv")
    said = " ".join(errors["error"])
    assert set(errors["segment"]) == {"right_lung", "left_lung"}, errors
    assert "'Lung, right'" in said and "R of FILE#R,L" not in said, said
    assert f'"{swapped_seg}#3,2" in the lungs column' in said, said


def test_seg_roles_from_the_segment_terminology(study, generic_seg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st = study[0]
    rc, text = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", generic_seg, "--lungs", generic_seg,
                    "-o", tmp_path / "f.csv", *FEW)
    assert rc == 0, text
    voxels = pd.read_csv(tmp_path / "f_settings.csv").set_index("segment")["voxels"]
    count = {k: int(sitk.GetArrayViewFromImage(v).sum()) for k, v in st["masks"].items()}
    assert voxels["tumour"] == count["GTV"], (voxels, count)      # the tumour on the CT's grid, voxel for voxel
    assert {"right_lung", "left_lung", "lungs", "lungs_minus_tumour"} <= set(voxels.index), voxels
    # said: the roles came from the terminology, not from the labels
    assert "Segment_2" in text and "terminology" in text, text


def test_seg_roles_from_codes_never_override_a_name_or_the_map(study, tmp_path):
    """A label with a role of its own keeps it; a --structure-map line wins over the code."""
    from lungai.dicom.seg import seg_code_roles, with_code_roles

    m = study[0]["masks"]
    seg = _seg(study, "mixed.seg.dcm", {"GTV": m["GTV"], "Segment_2": m["Lung_R"], "Segment_3": m["Lung_L"]},
               {"GTV": "gtv", "Segment_2": "lung_right", "Segment_3": "lung_left"})
    assert seg_code_roles(seg) == {"GTV": "gtv", "Segment_2": "lung_right", "Segment_3": "lung_left"}
    mapping = with_code_roles(seg, ["GTV", "Segment_2", "Segment_3"], {"Segment_3": "lungs"})
    from lungai.dicom.roles import structure_role

    assert [structure_role(n, mapping) for n in ("GTV", "Segment_2", "Segment_3")] == ["gtv", "lung_right", "lungs"]
    # a segment of no known code ("Tissue"): no role
    seg = _seg(study, "tissue.seg.dcm", {"Segment_9": m["GTV"]}, {"Segment_9": None})
    assert seg_code_roles(seg) == {}


def test_coded_lungs_named_with_a_comma_in_a_manifest(study, tmp_path, capsys, monkeypatch):
    """Lung segments labelled with a comma and no role by name ("Contour, 7"), coded as the right / left lung: chosen
    after '#' by their labels they are refused (the comma separates the lungs), the fix their role - the manifest's
    cell, never an option radiomics-batch has not (before: "--lungs SEG#role:lungs ... has its lung role by name") -,
    which works."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "coded_comma.seg.dcm", {"GTV": m["GTV"], "Contour, 7": m["Lung_R"], "Contour, 8": m["Lung_L"]},
               {"GTV": "gtv", "Contour, 7": "lung_right", "Contour, 8": "lung_left"})
    manifest = tmp_path / "m.csv"

    def batch(lungs):
        pd.DataFrame({"case": ["P1"], "image": [str(study[0]["ct"])], "tumour": [str(seg)],
                      "lungs": [lungs]}).to_csv(manifest, index=False)
        return _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "f.csv", *FEW, "--workers", "0")

    rc, text = batch(f"{seg}#Contour, 7,Contour, 8")
    fix = text.split("how to fix (P1):")[1]
    assert rc != 0 and f"{seg}#role:lungs in the lungs column" in fix and "--lungs" not in fix, fix
    assert "terminology" in fix and "has its lung role by name" not in fix, fix
    rc, text = batch(f"{seg}#role:lungs")
    assert rc == 0 and " 0 failed" in text, text


def test_a_seg_on_another_grid_names_both_grids(study, tmp_path, capsys):
    """A SEG of the CT's frame of reference drawn on another series of coarser pixels (a resampled copy of the CT):
    refused naming both grids and the series it was drawn on, with how to resample - not highdicom's bare
    "Non-integer scale factor required."."""
    import copy

    import highdicom as hd
    import pydicom

    from lungai.dicom.seg import read_seg, segment_description
    from lungai.errors import InputError

    st, ct, root = study
    files = sorted(st["ct"].glob("*.dcm"))
    coarse, other = [], hd.UID()
    for f in files:
        ds = pydicom.dcmread(f)
        half = copy.deepcopy(ds)
        pixels = ds.pixel_array[::2, ::2].copy()
        half.Rows, half.Columns = pixels.shape
        half.PixelSpacing = [float(v) * 2 for v in ds.PixelSpacing]
        half.PixelData = pixels.tobytes()
        half.SOPInstanceUID, half.SeriesInstanceUID = hd.UID(), other
        coarse.append(half)
    mask = np.zeros((len(coarse), coarse[0].Rows, coarse[0].Columns, 1), bool)
    mask[len(coarse) // 2, 5:15, 5:15, 0] = True
    seg = hd.seg.Segmentation(
        source_images=coarse, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment_description(1, "GTV", "gtv")], series_instance_uid=hd.UID(), series_number=9,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="x", manufacturer_model_name="x",
        software_versions="1", device_serial_number="1")
    path = tmp_path / "coarse.seg.dcm"
    seg.save_as(path)
    with pytest.raises(InputError) as caught:
        read_seg(path, ct)
    text = str(caught.value)
    size, spacing = ct.GetSize(), ct.GetSpacing()
    assert "Non-integer" not in text, text
    assert (f"its frames are {coarse[0].Columns} x {coarse[0].Rows} pixels of {2 * spacing[0]:.4g} x "
            f"{2 * spacing[1]:.4g} mm, the CT's slices {size[0]} x {size[1]} of {spacing[0]:.4g}") in text, text
    assert f"drawn on the CT series {other}" in text and "resample" in caught.value.fix, text


def test_a_manifest_lungs_cell_refused_names_its_row_and_cell(study, tmp_path, capsys, monkeypatch):
    """QA segfollow63: a manifest lungs cell ``seg.dcm#Lung, right,Lung, left`` was refused with a problem beginning
    "--lungs 'Lung, right,Lung, left'" - an option radiomics-batch has not, naming neither the cell nor its row.  Now
    the manifest's line and its lungs cell as written (double quotes: a comma), as the fix words its cell."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "named_comma.seg.dcm", {"GTV-1": m["GTV"], "Lung, right": m["Lung_R"], "Lung, left": m["Lung_L"]},
               {"GTV-1": "gtv_primary", "Lung, right": "lung_right", "Lung, left": "lung_left"})
    monkeypatch.chdir(seg.parent)
    manifest = Path("sub") / "m.csv"      # the cells relative to the manifest: named as written
    manifest.parent.mkdir(exist_ok=True)
    ct = study[0]["ct"]
    # the case refused on line 3 (after a row that is fine); its lungs cell, then a cell naming one lung only
    for lungs, problem in ((f"../{seg.name}#Lung, right,Lung, left", "hold a comma"),
                           (f"../{seg.name}#GTV-1", "needs the right and the left lung")):
        manifest.write_text(f"case,image,tumour,lungs\nP0,{ct},../{seg.name},\nP1,{ct},../{seg.name},\"{lungs}\"\n")
        rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "f.csv", *FEW, "--workers", "0")
        said = text.split("failed: P1: ")[1].split("how to fix")[0]
        assert rc != 0 and said.startswith(f'manifest m.csv line 3, lungs cell "{lungs}"' if "," in lungs else
                                           f"manifest m.csv line 3, lungs cell {lungs}"), said
        assert problem in said and "--lungs" not in said, said
        error = pd.read_csv(tmp_path / "f_errors.csv").set_index("case").loc["P1", "error"]
        assert error.startswith("manifest m.csv line 3, lungs cell"), error
    # the command line still names its option and value
    rc, text = _run(capsys, "radiomics", "--image", ct, "--lungs", f"{seg}#Lung, right,Lung, left",
                    "-o", tmp_path / "g.csv", *FEW)
    assert rc != 0 and f"--lungs '{seg}#Lung, right,Lung, left': the names" in text, text


def test_mask_seg_lungs_by_their_codes_are_computed_as_lungs(study, tmp_path, capsys, monkeypatch):
    """QA segfollow63: ``radiomics --mask SEG`` whose lung segments are labelled "Segment_2" / "Segment_3" and coded
    as the right / left lung (SNOMED CT) computed them on the CT's grid (4.5 x 4.5 x 5 mm here), while the same
    segments labelled "Lung_R" / "Lung_L" are on the 2 mm lung grid: the role from the codes, as for --lungs, makes
    them lungs here too - the same values as the named lungs', in radiomics and in radiomics-batch's mask column - and
    their sides are checked."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m, ct = study[0]["masks"], study[0]["ct"]
    sides = {"lung_right": m["Lung_R"], "lung_left": m["Lung_L"]}
    named = _seg(study, "lungs_named.seg.dcm", {"Lung_R": sides["lung_right"], "Lung_L": sides["lung_left"]},
                 {"Lung_R": "lung_right", "Lung_L": "lung_left"})
    coded = _seg(study, "lungs_coded.seg.dcm", {"Segment_2": sides["lung_right"], "Segment_3": sides["lung_left"]},
                 {"Segment_2": "lung_right", "Segment_3": "lung_left"})

    def values(out):
        table = pd.read_csv(out).pivot(index="feature", columns="segment", values="value")
        return table, pd.read_csv(out.with_name(out.stem + "_settings.csv")).set_index("segment")

    rc, text = _run(capsys, "radiomics", "--image", ct, "--mask", named, "-o", tmp_path / "n.csv", *FEW)
    assert rc == 0, text
    rc, text = _run(capsys, "radiomics", "--image", ct, "--mask", coded, "-o", tmp_path / "c.csv", *FEW)
    (n, ns), (c, cs) = values(tmp_path / "n.csv"), values(tmp_path / "c.csv")
    assert list(cs.loc[["Segment_2", "Segment_3"], "spacing_mm"]) == ["2 x 2 x 2"] * 2, cs   # not 4.5 x 4.5 x 5
    assert rc == 0 and "'Segment_2' as the right lung" in text and "terminology" in text, text
    assert list(cs["grid"]) == list(ns["grid"]) == ["resampled"] * 2, cs
    np.testing.assert_allclose(c[["Segment_2", "Segment_3"]].to_numpy(), n[["Lung_R", "Lung_L"]].to_numpy())
    # one settings id (the lung grid's revision alike)
    assert set(pd.read_csv(tmp_path / "c.csv")["radiomics_settings"]) == \
        set(pd.read_csv(tmp_path / "n.csv")["radiomics_settings"])
    # radiomics-batch's mask column: the same rule
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(ct)], "mask": [str(coded)]}).to_csv(manifest, index=False)
    rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "b.csv", *FEW, "--workers", "0")
    assert rc == 0, text
    b, bs = values(tmp_path / "b.csv")
    assert list(bs["spacing_mm"]) == ["2 x 2 x 2"] * 2, bs
    np.testing.assert_allclose(b[["Segment_2", "Segment_3"]].to_numpy(), n[["Lung_R", "Lung_L"]].to_numpy())
    assert set(pd.read_csv(tmp_path / "b.csv")["radiomics_settings"]) == \
        set(pd.read_csv(tmp_path / "n.csv")["radiomics_settings"])
    # a part an older lungai computed from it (on the CT's grid: its record lacks the coded lungs) is redone
    import json

    record = tmp_path / "b.csv.parts" / "P1.inputs.json"
    doc = json.loads(record.read_text())
    assert doc.pop("coded_lungs") == ["Segment_2", "Segment_3"], doc
    record.write_text(json.dumps(doc))
    rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "b.csv", *FEW, "--workers", "0")
    assert rc == 0 and "P1: inputs changed since the last run (coded_lungs): redone" in text, text
    # coded the other way round (the right lung's code on the left lung's contour): their sides are checked
    swapped = _seg(study, "lungs_coded_swapped.seg.dcm", {"Segment_2": sides["lung_left"],
                                                          "Segment_3": sides["lung_right"]},
                   {"Segment_2": "lung_right", "Segment_3": "lung_left"})
    rc, text = _run(capsys, "radiomics", "--image", ct, "--mask", swapped, "-o", tmp_path / "s.csv", *FEW)
    assert rc != 0 and "are swapped" in text and "'Segment_2'" in text, text


def test_dose_features_names_the_seg_segments_used(study, tmp_path, capsys, monkeypatch):
    """QA segfollow63: ``dose-features --lungs seg.dcm --gtv seg.dcm`` said "lungs: seg.dcm (...); minus GTV: seg.dcm"
    in its masks column - which segments gave the MLD, not said.  Now the segments, as an RTSTRUCT's structures are
    named there ("RTSTRUCT structure Lung_R + Lung_L (RS.dcm, as contoured)"), the SEG by its path as given."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    m = st["masks"]
    seg = _seg(study, "dose_named.seg.dcm", {"GTV-1": m["GTV"], "Lung, right": m["Lung_R"], "Lung, left": m["Lung_L"],
                                             "Heart": m["GTV"]},
               {"GTV-1": "gtv_primary", "Lung, right": "lung_right", "Lung, left": "lung_left", "Heart": None})
    dose = sitk.Cast(sitk.GetImageFromArray(np.linspace(0, 60, sitk.GetArrayViewFromImage(ct).size)
                                            .reshape(sitk.GetArrayViewFromImage(ct).shape)), sitk.sitkFloat32)
    dose.CopyInformation(ct)
    sitk.WriteImage(dose, str(tmp_path / "dose.nii.gz"))

    def masks(*args):
        out = tmp_path / "dose.csv"
        rc, text = _run(capsys, "dose-features", "--ct", st["ct"], "--dose", tmp_path / "dose.nii.gz", *args, "-o", out)
        assert rc == 0, text
        return pd.read_csv(out).loc[0, "masks"], text

    said, text = masks("--lungs", seg, "--gtv", seg)
    assert said == (f"lungs: DICOM SEG segment Lung, right + Lung, left ({seg}; lung mask given with --lungs, not made "
                    f"by lungai lungs: its own lung definition); minus GTV: DICOM SEG segment GTV-1 ({seg})"), said
    assert said in text, text           # printed as the column says it
    # chosen after '#' (by number: the labels hold commas): the segments chosen, the SEG's path without the '#'
    said, _ = masks("--lungs", f"{seg}#2,3", "--gtv", f"{seg}#GTV-1")
    assert said.startswith(f"lungs: DICOM SEG segment Lung, right + Lung, left ({seg}; ") and \
        said.endswith(f"minus GTV: DICOM SEG segment GTV-1 ({seg})"), said
    # generic labels, roles from the codes: still the segments used
    said, _ = masks("--lungs", _seg(study, "dose_generic.seg.dcm", {"Segment_2": m["Lung_R"], "Segment_3": m["Lung_L"]},
                                    {"Segment_2": "lung_right", "Segment_3": "lung_left"}))
    assert said.startswith("lungs: DICOM SEG segment Segment_2 + Segment_3 ("), said
    # a label map: by its file name, as before
    lungs = sitk.Cast(m["Lung_R"] > 0, sitk.sitkUInt8) + 2 * sitk.Cast(m["Lung_L"] > 0, sitk.sitkUInt8)
    sitk.WriteImage(lungs, str(tmp_path / "lungs.nii.gz"))
    said, _ = masks("--lungs", tmp_path / "lungs.nii.gz")
    assert said.startswith("lungs: lungs.nii.gz (lung mask given with --lungs"), said


def test_a_refused_seg_value_is_quoted_as_typed(study, tmp_path, capsys, monkeypatch):
    """QA segquote63: (1) a manifest given by its absolute path quoted its relative cell resolved - the lungs cell
    ``../seg.dcm#Lung, right,Lung, left`` of ``/abs/sub/m.csv`` as ``"/abs/sub/../seg.dcm#..."``, not as the user
    searches it in the file; (2) the command line quoted only the part after '#' (``--lungs 'Lung, right,Lung,
    left'``), not the value typed with its SEG.  Now each as typed, one rule for the lungs, tumour and mask inputs
    (the fixes' cells too)."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "quoted_comma.seg.dcm", {"GTV-1": m["GTV"], "Lung, right": m["Lung_R"],
                                                "Lung, left": m["Lung_L"]},
               {"GTV-1": "gtv_primary", "Lung, right": "lung_right", "Lung, left": "lung_left"})
    monkeypatch.chdir(seg.parent)
    manifest = (Path("sub") / "m.csv").absolute()      # given by its absolute path; its cells relative
    manifest.parent.mkdir(exist_ok=True)
    ct = study[0]["ct"]
    lungs = f"../{seg.name}#Lung, right,Lung, left"
    manifest.write_text(f"case,image,tumour,lungs\nP1,{ct},../{seg.name},\"{lungs}\"\n")
    rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "f.csv", *FEW, "--workers", "0")
    said = text.split("failed: P1: ")[1]
    assert rc != 0 and said.startswith(f'manifest m.csv line 2, lungs cell "{lungs}"'), said
    assert f"../{seg.name}#role:lungs in the lungs column" in said and str(seg.parent) not in said, said
    # the tumour and mask columns: their fixes name the cell as written too
    for col in ("tumour", "mask"):
        manifest.write_text(f"case,image,{col}\nP1,{ct},../{seg.name}#Nodule\n")
        rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / f"{col}.csv", *FEW, "--workers", "0")
        said = text.split("failed: P1: ")[1]
        assert rc != 0 and said.startswith(f"../{seg.name} has no segment 'Nodule'"), said
        assert f"e.g. ../{seg.name}#GTV-1" in said and f"/sub/../{seg.name}" not in said, said
    # a label map of several labels in the tumour and lungs columns: named as written (the problem and the fix)
    arr = np.zeros(sitk.GetArrayFromImage(m["GTV"]).shape, np.uint8)
    for k, v in (("Lung_R", 3), ("Lung_L", 4), ("GTV", 1)):      # GTV 1, right lung 3, left lung 4
        arr[sitk.GetArrayFromImage(m[k]) > 0] = v
    labels = sitk.GetImageFromArray(arr)
    labels.CopyInformation(m["GTV"])
    sitk.WriteImage(labels, "labels.nii.gz")
    for col, cell, problem, fix in (
            ("tumour", "", "tumour ../labels.nii.gz holds 3 labels", "e.g. ../labels.nii.gz#1 in"),
            ("lungs", "", "lungs ../labels.nii.gz holds labels 1, 3, 4", '"../labels.nii.gz#R,L"'),
            ("tumour", "#7", "../labels.nii.gz has no label '7'", "e.g. ../labels.nii.gz#1"),
            ("lungs", "#3", "lungs ../labels.nii.gz#3: a lung label map needs", '"../labels.nii.gz#R,L"'),
            ("lungs", "#3,7", "../labels.nii.gz has no label '7'", '"../labels.nii.gz#R,L"')):
        manifest.write_text(f"case,image,{col}\nP1,{ct},\"../labels.nii.gz{cell}\"\n")
        rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / f"l{col}{len(cell)}.csv", *FEW,
                        "--workers", "0")
        said = text.split("failed: P1: ")[1]
        assert rc != 0 and said.startswith(problem) and fix in said and "/sub/.." not in said, said
    # the command line: the whole value as typed, its SEG file with it
    rc, text = _run(capsys, "radiomics", "--image", ct, "--lungs", f"{seg.name}#Lung, right,Lung, left",
                    "-o", tmp_path / "g.csv", *FEW)
    assert rc != 0 and f"--lungs '{seg.name}#Lung, right,Lung, left': the names" in text, text
    rc, text = _run(capsys, "radiomics", "--image", ct, "--lungs", f"{seg.name}#GTV-1", "-o", tmp_path / "h.csv", *FEW)
    assert rc != 0 and f"--lungs '{seg.name}#GTV-1' needs the right and the left lung" in text, text


def test_a_seg_of_another_series_on_the_ct_voxels_is_noted(study, tmp_path):
    """QA seginput64: a SEG on the CT's exact voxels and frame of reference but drawn on another CT series (its
    ReferencedSeriesSequence: another reconstruction, a later CT registered to it - the user may have paired the wrong
    SEG with the CT) was read without a word.  Now read as it lies, with a note naming both series and what to
    check; the SEG of this CT series reads without it."""
    import warnings

    import pydicom

    from lungai.dicom.seg import read_seg
    from lungai.errors import InputNote

    st, ct, root = study
    m = st["masks"]
    own = _seg(study, "own_series.seg.dcm", {"GTV-1": m["GTV"]}, {"GTV-1": "gtv_primary"})
    ds = pydicom.dcmread(own)
    other = "1.2.826.0.1.3680043.8.498.64064064064"
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = other
    moved = tmp_path / "other_series.seg.dcm"
    ds.save_as(moved)
    series = ct.GetMetaData("0020|000e").strip()
    for path, noted in ((own, False), (moved, True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            masks = read_seg(path, ct)
        notes = [str(w.message) for w in caught if issubclass(w.category, InputNote)]
        assert np.array_equal(sitk.GetArrayFromImage(masks["GTV-1"]) > 0, sitk.GetArrayFromImage(m["GTV"]) > 0)
        said = [n for n in notes if "drawn on CT series" in n]
        assert bool(said) is noted, notes
    text = said[0]
    assert f"{moved} was drawn on CT series {other}" in text and f"the CT given, series {series}" in text, text
    assert "check that it is this CT's SEG" in text and "dicom-scan" in text, text


def test_a_seg_typed_with_dot_slash_is_quoted_as_typed(study, tmp_path, capsys, monkeypatch):
    """QA seginput64: ``--tumour ./seg.dcm#Nodule`` was quoted back as ``seg.dcm has no segment ... e.g.
    seg.dcm#GTV-1`` (the path as Python spells it, not as typed); so were the overlapping segments of ``--mask
    ./seg.dcm`` and the lungs of ``--lungs ./seg.dcm#GTV-1``."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "dot_slash.seg.dcm", {"GTV-1": m["GTV"], "Lung_R": m["Lung_R"], "Lungs": m["Lung_R"]},
               {"GTV-1": "gtv_primary", "Lung_R": "lung_right", "Lungs": "lungs"})
    monkeypatch.chdir(seg.parent)
    ct = study[0]["ct"]
    typed = f"./{seg.name}"
    rc, text = _run(capsys, "radiomics", "--image", ct, "--tumour", f"{typed}#Nodule", "-o", tmp_path / "a.csv", *FEW)
    assert rc != 0 and f"{typed} has no segment 'Nodule'" in text and f"e.g. {typed}#GTV-1" in text, text
    rc, text = _run(capsys, "radiomics", "--image", ct, "--lungs", f"{typed}#GTV-1", "-o", tmp_path / "b.csv", *FEW)
    assert rc != 0 and f"--lungs '{typed}#GTV-1' needs" in text and f"{typed}#RIGHT,LEFT" in text, text
    rc, text = _run(capsys, "radiomics", "--image", ct, "--mask", typed, "-o", tmp_path / "c.csv", *FEW)
    assert rc != 0 and f"segments of {typed} overlap" in text and f"({typed}#GTV-1)" in text, text


def test_a_manifest_mask_cell_refused_by_its_content_is_named_as_written(study, generic_seg, tmp_path, capsys,
                                                                        monkeypatch):
    """QA seginput64: a manifest (given by its absolute path) whose mask cell ``../seg.dcm`` holds overlapping
    segments, ``../frac.nii.gz`` fractions or ``../zero.nii.gz`` no label, failed naming the path it is read from
    (``/abs/sub/../seg.dcm``), not the cell as written in the manifest, as the other problems of its cells do; so
    did the note on a SEG's segments taking their roles from their codes."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "overlap_cell.seg.dcm", {"GTV-1": m["GTV"], "Lung_R": m["Lung_R"], "Lungs": m["Lung_R"]},
               {"GTV-1": "gtv_primary", "Lung_R": "lung_right", "Lungs": "lungs"})
    monkeypatch.chdir(seg.parent)
    sitk.WriteImage(sitk.Cast(m["GTV"], sitk.sitkFloat32) * 0.7, "frac.nii.gz")
    sitk.WriteImage(sitk.Cast(m["GTV"], sitk.sitkUInt8) * 0, "zero.nii.gz")
    manifest = (Path("sub") / "m.csv").absolute()
    manifest.parent.mkdir(exist_ok=True)
    ct = study[0]["ct"]
    manifest.write_text(f"case,image,tumour\nP1,{ct},../{generic_seg.name}\n")
    rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "coded.csv", *FEW, "--workers", "0")
    # the note names the segment the tumour is made of only (segcut64), not the SEG's lungs
    assert rc == 0 and f"../{generic_seg.name}: segment 'Segment_1' as the" in text and "/sub/.." not in text, text
    assert "'Segment_2'" not in text, text
    for cell, problem in ((f"../{seg.name}", f"segments of ../{seg.name} overlap"),
                          ("../frac.nii.gz", "../frac.nii.gz holds non-integer values"),
                          ("../zero.nii.gz", "mask ../zero.nii.gz has no labelled voxel")):
        manifest.write_text(f"case,image,mask\nP1,{ct},{cell}\n")
        rc, text = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / f"{len(cell)}.csv", *FEW,
                        "--workers", "0")
        said = text.split("failed: P1: ")[1]
        assert rc != 0 and said.startswith(problem) and "/sub/.." not in said, said


def test_a_labelmap_seg_is_read_segment_by_segment_without_its_background(study):
    """QA seginput64: a LABELMAP SEG (DICOM's label map segmentation type, as highdicom writes it: pixel value N =
    segment N, segment 0 the "Background") of the GTV and lungs was refused, "segment 'Background' (number 0) ...
    could not be read as a volume ... export it again as a BINARY SEG".  Now its segments are read as a BINARY SEG's,
    the background left out (also of the labels its segments are chosen by)."""
    import highdicom as hd

    from lungai.dicom.reference import ct_reference
    from lungai.dicom.seg import read_seg, seg_segment_labels, segment_description
    from lungai.io import read_mask

    st, ct, root = study
    m = st["masks"]
    arr = {k: sitk.GetArrayFromImage(m[k]) > 0 for k in ("GTV", "Lung_R", "Lung_L")}
    pixels = np.zeros(arr["GTV"].shape, np.uint8)
    pixels[arr["Lung_R"]], pixels[arr["Lung_L"]], pixels[arr["GTV"]] = 2, 3, 1
    seg = hd.seg.Segmentation(
        source_images=ct_reference(st["ct"], image=ct).datasets, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
        segment_descriptions=[segment_description(1, "GTV-1", "gtv_primary"),
                              segment_description(2, "Lung_R", "lung_right"),
                              segment_description(3, "Lung_L", "lung_left")],
        series_instance_uid=hd.UID(), series_number=9, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="x", manufacturer_model_name="x", software_versions="1", device_serial_number="1")
    path = root / "labelmap.seg.dcm"
    seg.save_as(path)
    assert [int(d.SegmentNumber) for d in seg.SegmentSequence][0] == 0      # highdicom's background segment
    masks = read_seg(path, ct)
    assert list(masks) == ["GTV-1", "Lung_R", "Lung_L"] and seg_segment_labels(path) == list(masks)
    for label, value in (("GTV-1", 1), ("Lung_R", 2), ("Lung_L", 3)):
        assert np.array_equal(sitk.GetArrayFromImage(masks[label]) > 0, pixels == value), label
    lungs = read_mask(path, reference=ct, select="role:lungs", lungs=True)
    got = sitk.GetArrayFromImage(lungs)
    assert np.array_equal(got == 1, pixels == 2) and np.array_equal(got == 2, pixels == 3)
    assert np.array_equal(sitk.GetArrayFromImage(read_mask(f"{path}#1", reference=ct)) > 0, pixels == 1)


def test_an_empty_segment_of_a_seg_is_said_to_be_empty(study, tmp_path, capsys):
    """QA maskinput64: `radiomics --mask seg.dcm` with a SEG of GTV-1 and an all-0 segment "Empty" failed that segment
    with "label 2 is not in the mask (labels present: 1)" and the fix "use --label 1" - a label the user never gave,
    of a label map they never had.  The segment is named as in the SEG and said to be empty; the others go on."""
    m = study[0]["masks"]
    empty = sitk.Image(m["GTV"]) * 0
    seg = _seg(study, "empty.seg.dcm", {"GTV-1": m["GTV"], "Empty": empty}, {"GTV-1": "gtv_primary", "Empty": "gtv"})
    st = study[0]
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--mask", seg, *FEW, "-o", tmp_path / "a" / "f.csv")
    assert rc == 1 and set(pd.read_csv(tmp_path / "a" / "f.csv").segment) == {"GTV-1"}
    errors = pd.read_csv(tmp_path / "a" / "f_errors.csv").set_index("segment")["error"]
    assert list(errors.index) == ["Empty"]
    assert errors["Empty"].startswith(f"segment 'Empty' of the SEG {seg} is empty (no voxel)\n"), errors["Empty"]
    assert "not in the mask" not in said and "--label 1 for 'GTV-1'" in errors["Empty"]
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--mask", seg, "--label", "tumour=2", *FEW,
                    "-o", tmp_path / "b" / "f.csv")
    assert rc == 2 and f"segment 'Empty' of the SEG {seg} is empty (no voxel), so segment 'tumour' is empty" in said
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--mask", f"{seg}#Empty", *FEW,
                    "-o", tmp_path / "c" / "f.csv")
    assert rc == 2 and f"error: segment 'Empty' of the SEG {seg} is empty (no voxel)" in said, said


def test_a_seg_or_rtstruct_named_dot_dicom_is_read_by_its_content(study, generic_seg, tmp_path, capsys):
    """QA maskinput64: a SEG named `seg.dicom` (as some PACS exports name their files) was refused "unsupported file
    type '.dicom'" with a fix listing NIfTI, NRRD, MHA and DICOM folders only.  A DICOM file is read by its content
    whatever its suffix: the SEG as the mask, an RTSTRUCT pointed to --rtstruct."""
    import shutil

    st = study[0]
    seg = tmp_path / "seg.dicom"
    shutil.copy(generic_seg, seg)
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", f"{seg}#Segment_1", *FEW,
                    "-o", tmp_path / "a" / "f.csv")
    assert rc == 0, said
    assert set(pd.read_csv(tmp_path / "a" / "f.csv").segment) == {"tumour"}
    rt = tmp_path / "rt.dicom"
    shutil.copy(st["rtstruct"], rt)
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", rt, *FEW, "-o", tmp_path / "b" / "f.csv")
    assert rc == 2 and "is an RTSTRUCT (contours), not a mask image" in said and "unsupported" not in said, said


def test_the_note_on_a_seg_tumour_of_separate_parts_names_its_segments(study, tmp_path, capsys):
    """QA maskinput64: `radiomics --tumour seg.dcm` with a SEG of GTV-1 and gtv-2 (the tumour = both, by role) noted
    the separate parts with "e.g. --tumour labels.nii.gz#1" - a label map the user never had.  It names the SEG's
    segment to choose, as the user gave the SEG."""
    m = study[0]["masks"]
    gtv = sitk.GetArrayFromImage(m["GTV"])
    second = sitk.GetImageFromArray(np.roll(gtv, 12, axis=2))
    second.CopyInformation(m["GTV"])
    seg = _seg(study, "two_gtvs.seg.dcm", {"GTV-1": m["GTV"], "gtv-2": second},
               {"GTV-1": "gtv_primary", "gtv-2": "gtv"})
    st = study[0]
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", seg, *FEW, "-o", tmp_path / "a" / "f.csv")
    assert rc == 0, said
    (note,) = [n for n in said.splitlines() if "separate parts" in n]
    assert f"for one lesion choose one of its segments (--tumour {seg}#GTV-1), or clean" in note, note
    assert "labels.nii.gz" not in note
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--mask", seg, "--label", "gtv=1", "--label", "gtv=2",
                    *FEW, "-o", tmp_path / "b" / "f.csv")
    (note,) = [n for n in said.splitlines() if "separate parts" in n]
    assert "for one lesion name each of its labels on its own (--label gtv_1=1 --label gtv_2=2)" in note, note


def _cut_inside(src: Path, dst: Path, keyword: str) -> Path:
    """``src`` cut short halfway into the value of its top-level element ``keyword`` (an interrupted copy)."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.filereader import read_partial

    seen = {}
    with open(src, "rb") as fh:
        def mark(tag, vr, length):
            seen[int(tag)] = (fh.tell(), length)
            return False
        read_partial(fh, stop_when=mark)
    at, length = seen[tag_for_keyword(keyword)]
    dst.write_bytes(src.read_bytes()[:at + max(length // 2, 1)])
    return dst


@pytest.mark.parametrize("keyword", ["DimensionIndexSequence", "SharedFunctionalGroupsSequence", "PixelData"])
def test_a_cut_seg_is_refused_as_truncated(study, tmp_path, capsys, keyword):
    """QA segcut64: LUNG1-003's SEG cut short (an interrupted copy) and given by name was "not a readable DICOM SEG
    ('Segmentation' object has no attribute 'SharedFunctionalGroupsSequence')", fix "give a DICOM Segmentation" (cut
    inside its DimensionIndexSequence), a traceback (inside its SharedFunctionalGroupsSequence: "'DSfloat' object
    is not iterable", or "cannot access None: No tag to read"), or "could not be read as a volume (cannot reshape
    array ...)", fix "export it again as a BINARY SEG" (inside its PixelData).  Each: truncated, where, re-export."""
    from lungai.dicom.seg import read_seg
    from lungai.errors import InputError

    m = study[0]["masks"]
    whole = _seg(study, "whole_for_cut.seg.dcm", {"GTV-1": m["GTV"]}, {"GTV-1": "gtv_primary"})
    cut = _cut_inside(whole, tmp_path / "cut.seg.dcm", keyword)
    with pytest.raises(InputError) as exc:
        read_seg(cut, study[1])
    size = cut.stat().st_size
    assert f"the SEG {cut} is truncated: it ends after {size} bytes, inside its {keyword}" in exc.value.problem
    assert "export the SEG again" in exc.value.fix and "BINARY" not in exc.value.fix, exc.value.fix
    rc, said = _run(capsys, "radiomics", "--image", study[0]["ct"], "--tumour", f"{cut}#GTV-1", *FEW,
                    "-o", tmp_path / "o" / "f.csv")
    assert rc == 2 and f"error: the SEG {cut} is truncated" in said and "Traceback" not in said, said
    assert not (tmp_path / "o" / "f.csv").exists()


def test_an_empty_seg_tumour_names_its_segment_of_the_seg(study, tmp_path, capsys, monkeypatch):
    """QA segcut64: `radiomics --tumour seg.dcm#Empty` (an all-0 segment) failed with "segment 'tumour' is empty (0
    voxels)", fix "check the mask/label value" - not the SEG's segment the user chose; radiomics-batch's tumour
    column the same.  Both name segment 'Empty' of that SEG, as `--mask seg.dcm#Empty` does."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "empty_tumour.seg.dcm", {"GTV-1": m["GTV"], "Empty": sitk.Image(m["GTV"]) * 0},
               {"GTV-1": "gtv_primary", "Empty": "gtv"})
    st = study[0]
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", f"{seg}#Empty", *FEW,
                    "-o", tmp_path / "a" / "f.csv")
    assert rc == 2 and f"segment 'Empty' of the SEG {seg} is empty (no voxel), so segment 'tumour' is empty" in said
    assert "(0 voxels)" not in said and "draw the segment in the SEG" in said, said
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": [f"{seg}#Empty"]}).to_csv(manifest, index=False)
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "b" / "f.csv", *FEW, "--workers", "0")
    assert rc == 1 and f"segment 'Empty' of the SEG {seg} is empty (no voxel)" in said, said


def test_a_seg_segment_chosen_notes_no_other_segment_role(study, tmp_path, capsys, monkeypatch):
    """QA segcut64: `radiomics --mask seg.dcm#GTV-1` warned "segment 'Empty' as the tumour (GTV), by its segment
    terminology" - of a segment the user did not choose.  The note is of the segments used only."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    m = study[0]["masks"]
    seg = _seg(study, "chosen_note.seg.dcm", {"GTV-1": m["GTV"], "Other": m["GTV"], "Segment_3": m["Lung_R"]},
               {"GTV-1": "gtv_primary", "Other": "gtv", "Segment_3": "lung_right"})
    st = study[0]
    for option in ("--mask", "--tumour"):
        rc, said = _run(capsys, "radiomics", "--image", st["ct"], option, f"{seg}#GTV-1", *FEW,
                        "-o", tmp_path / option.strip("-") / "f.csv")
        assert rc == 0 and "'Other'" not in said and "'Segment_3'" not in said and "terminology" not in said, said
    # a segment chosen whose role is its code's: still said
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--mask", f"{seg}#Segment_3", *FEW,
                    "-o", tmp_path / "l" / "f.csv")
    assert rc == 0 and "segment 'Segment_3' as the" in said and "terminology" in said and "'Other'" not in said, said


def test_a_batch_without_results_says_no_table_written(study, tmp_path, capsys, monkeypatch):
    """QA segcut64: radiomics-batch with no case extracted said "0 cases extracted ... -> out.csv", though no out.csv
    was written (only out_errors.csv)."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    manifest = tmp_path / "m.csv"
    missing = tmp_path / "no_such_mask.nii.gz"
    pd.DataFrame({"case": ["P1"], "image": [str(study[0]["ct"])], "tumour": [str(missing)]}).to_csv(manifest,
                                                                                                     index=False)
    out = tmp_path / "out.csv"
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", out, *FEW, "--workers", "0")
    assert rc == 1 and not out.exists() and (tmp_path / "out_errors.csv").exists(), said
    assert f"-> {out}" not in said and f"no results, so no {out} written" in said, said
    assert "out_errors.csv" in said.split("no results")[1].splitlines()[0], said


def test_an_empty_tumour_leaves_lungs_minus_tumour_uncomputed_and_said(study, tmp_path, capsys, monkeypatch):
    """QA segmsg65: `radiomics --tumour empty.nii.gz --lungs lungs.nii.gz` on LUNG1-003 (and `--tumour seg.dcm#Empty`)
    failed segment 'tumour' only: lungs_minus_tumour was computed without a word, its values those of the lungs (no
    tumour left out).  It fails too, saying why, naming the empty mask the user gave; radiomics-batch's the same."""
    from lungai.io import write_image

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    m = st["masks"]
    lungs = write_image(sitk.Cast(m["Lung_R"] > 0, sitk.sitkUInt8) + 2 * sitk.Cast(m["Lung_L"] > 0, sitk.sitkUInt8),
                        tmp_path / "lungs.nii.gz")
    empty = write_image(sitk.Cast(m["GTV"] > 0, sitk.sitkUInt8) * 0, tmp_path / "empty.nii.gz")
    seg = _seg(study, "empty_for_lungs.seg.dcm", {"GTV-1": m["GTV"], "Empty": sitk.Image(m["GTV"]) * 0},
               {"GTV-1": "gtv_primary", "Empty": "gtv"})
    for k, (tumour, why) in enumerate(((empty, f"the tumour mask {empty} is empty (no voxel)"),
                                       (f"{seg}#Empty", f"segment 'Empty' of the SEG {seg} is empty (no voxel)"))):
        out = tmp_path / str(k) / "f.csv"
        rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", tumour, "--lungs", lungs, *FEW, "-o", out)
        assert rc == 1 and set(pd.read_csv(out).segment) == {"right_lung", "left_lung", "lungs"}, said
        errors = pd.read_csv(out.with_name("f_errors.csv")).set_index("segment")["error"]
        assert set(errors.index) == {"tumour", "lungs_minus_tumour"}, errors
        assert errors["lungs_minus_tumour"].startswith(
            f"{why}, so segment 'lungs_minus_tumour' would be the lungs themselves (segment 'lungs')"), errors
        assert "segment 'lungs'" in errors["lungs_minus_tumour"].split("How to fix:")[1], errors
    # a tumour that holds voxels: lungs_minus_tumour is computed as before
    gtv = write_image(sitk.Cast(m["GTV"] > 0, sitk.sitkUInt8), tmp_path / "gtv.nii.gz")
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", gtv, "--lungs", lungs, *FEW,
                    "-o", tmp_path / "ok" / "f.csv")
    assert rc == 0 and "lungs_minus_tumour" in set(pd.read_csv(tmp_path / "ok" / "f.csv").segment), said
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": [str(empty)], "lungs": [str(lungs)]}).to_csv(
        manifest, index=False)
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "b" / "f.csv", *FEW, "--workers", "0")
    assert "so segment 'lungs_minus_tumour' would be the lungs themselves" in said, said
    assert "lungs_minus_tumour" not in set(pd.read_csv(tmp_path / "b" / "f.csv").segment)


def test_rtstruct_with_a_tumour_file_names_that_file(study, tmp_path, capsys, monkeypatch):
    """QA segmsg65: `radiomics --rtstruct RS --tumour gtv23.nii.gz` (LUNG1-003's gtv-2 + gtv-3, three parts) was told
    "for one lesion give its own mask, label or segment" - generic, where without --rtstruct the note names the file
    and how to choose a label of it; an empty tumour file's error named no file.  Both name the file given."""
    from lungai.io import write_image

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    gtv = sitk.Cast(st["masks"]["GTV"] > 0, sitk.sitkUInt8)
    arr = sitk.GetArrayFromImage(gtv)
    z, y, x = np.argwhere(arr).min(0)
    two = arr.copy()
    two[max(z - 4, 0):max(z - 2, 1), max(y - 4, 0):max(y - 2, 1), max(x - 4, 0):max(x - 2, 1)] = 1    # an island
    two_img = sitk.GetImageFromArray(two)
    two_img.CopyInformation(gtv)
    parts = write_image(two_img, tmp_path / "two_parts.nii.gz")
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--tumour", parts,
                    "--segments", "tumour", *FEW, "-o", tmp_path / "a" / "f.csv")
    assert rc == 0 and "the segment is 2 separate parts" in said, said
    assert f"for one lesion give each its own label in the mask and choose it after '#' (--tumour {parts}#1)" in said
    assert "give its own mask, label or segment" not in said, said
    empty = write_image(gtv * 0, tmp_path / "empty.nii.gz")
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--tumour", empty,
                    *FEW, "-o", tmp_path / "b" / "f.csv")
    errors = pd.read_csv(tmp_path / "b" / "f_errors.csv").set_index("segment")["error"]
    assert errors["lungs_minus_tumour"].startswith(f"the tumour mask {empty} is empty (no voxel)"), errors


def test_a_tumour_outside_the_lungs_says_lungs_minus_tumour_equals_the_lungs(study, tmp_path, capsys, monkeypatch):
    """QA outsidelungs65: `radiomics --tumour gtv.nii.gz --lungs lungs.nii.gz` with a tumour lying wholly outside the
    lungs (a nodal / mediastinal GTV; lung contours drawn to exclude the GTV, as LUNG1-003's labels) gave
    lungs_minus_tumour equal to the lungs without a word.  Still computed (nothing to subtract), now said in a note."""
    from lungai.io import write_image

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    m = st["masks"]
    gtv = sitk.Cast(m["GTV"] > 0, sitk.sitkUInt8)
    right, left = sitk.Cast(m["Lung_R"] > 0, sitk.sitkUInt8), sitk.Cast(m["Lung_L"] > 0, sitk.sitkUInt8)
    tumour = write_image(gtv, tmp_path / "gtv.nii.gz")
    outside = write_image((right & (1 - gtv)) + 2 * (left & (1 - gtv)), tmp_path / "lungs_without_gtv.nii.gz")
    out = tmp_path / "out" / "f.csv"
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", tumour, "--lungs", outside, *FEW, "-o", out)
    assert rc == 0, said
    table = pd.read_csv(out)
    volume = table[table.feature == "VoxelVolume"].set_index("segment")["value"]
    assert volume["lungs_minus_tumour"] == volume["lungs"], volume      # computed: the lungs themselves
    assert (f"note: the tumour mask {tumour} does not overlap the lungs (no voxel of it in segment 'lungs'), so "
            "segment 'lungs_minus_tumour' equals the lungs") in said, said
    # a tumour inside the lungs: no such note
    inside = write_image((right | gtv) + 2 * (left & (1 - gtv)), tmp_path / "lungs_with_gtv.nii.gz")
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", tumour, "--lungs", inside, *FEW,
                    "-o", tmp_path / "in" / "f.csv")
    assert rc == 0 and "does not overlap the lungs" not in said, said


def test_an_empty_tumour_label_is_named_with_its_label(study, tmp_path):
    """QA emptysel65: segments_from_masks' tumour ``labels.nii.gz#1`` (lungs ``labels.nii.gz#3,4``) with label 1
    empty said "the tumour mask labels.nii.gz is empty" - the file, not the label of it that is empty - where the note
    of a tumour outside the lungs names labels.nii.gz#1: both name it alike (``radiomics`` refuses a label the file
    lacks before: "labels.nii.gz has no label '1'")."""
    from lungai.io import write_image
    from lungai.radiomics import STANDARD_SEGMENTS, segments_from_masks

    st, ct, root = study
    outside, gtv = _lungs_without_gtv(st, tmp_path / "lungs_without_gtv.nii.gz")
    lungs, tumour = sitk.ReadImage(str(outside)), sitk.ReadImage(str(gtv))
    both = write_image(3 * sitk.Cast(lungs > 0, sitk.sitkUInt8) + sitk.Cast(lungs == 2, sitk.sitkUInt8) + tumour,
                       tmp_path / "labels.nii.gz")
    errors: dict = {}
    segments_from_masks(ct, tumour=tumour * 0, lungs=lungs, names=list(STANDARD_SEGMENTS), errors=errors,
                        tumour_file=f"{both}#1")
    assert errors["lungs_minus_tumour"].startswith(f"the tumour mask {both}#1 is empty (no voxel), so segment "
                                                   "'lungs_minus_tumour' would be the lungs themselves"), errors
    # the same words as the note of the same tumour outside the lungs
    notes: list = []
    segments_from_masks(ct, tumour=tumour, lungs=lungs, names=list(STANDARD_SEGMENTS), errors={}, notes=notes,
                        tumour_file=f"{both}#1")
    assert notes and notes[0].startswith(f"the tumour mask {both}#1 does not overlap the lungs"), notes


def _lungs_without_gtv(st, path):
    """The phantom's lung map (1 right, 2 left) with every GTV voxel left out (as LUNG1-003's lung contours)."""
    from lungai.io import write_image

    m = st["masks"]
    gtv = sitk.Cast(m["GTV"] > 0, sitk.sitkUInt8)
    right, left = sitk.Cast(m["Lung_R"] > 0, sitk.sitkUInt8), sitk.Cast(m["Lung_L"] > 0, sitk.sitkUInt8)
    return write_image((right & (1 - gtv)) + 2 * (left & (1 - gtv)), path), write_image(gtv, path.with_name("gtv.nii.gz"))


def test_a_tumour_outside_the_lungs_is_noted_by_radiomics_batch(study, tmp_path, capsys, monkeypatch):
    """QA outsidefollow65: radiomics-batch (manifest tumour / lungs cells) gave lungs_minus_tumour equal to the lungs
    without a word where `radiomics --tumour --lungs` notes it: now in the settings' notes column and the summary."""
    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    outside, gtv = _lungs_without_gtv(st, tmp_path / "lungs_without_gtv.nii.gz")
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": [str(gtv)], "lungs": [str(outside)]}).to_csv(
        manifest, index=False)
    out = tmp_path / "b" / "f.csv"
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", out, *FEW, "--workers", "0")
    assert rc == 0, said
    table = pd.read_csv(out)
    volume = table[table.feature == "VoxelVolume"].set_index("segment")["value"]
    assert volume["lungs_minus_tumour"] == volume["lungs"], volume      # still computed
    settings = pd.read_csv(out.with_name("f_settings.csv")).set_index("segment")["notes"]
    text = (f"the tumour mask {gtv} does not overlap the lungs (no voxel of it in segment 'lungs'), so segment "
            "'lungs_minus_tumour' equals the lungs")
    assert text in str(settings["lungs_minus_tumour"]), settings
    assert all(text not in str(settings[s]) for s in settings.index if s != "lungs_minus_tumour"), settings
    assert f"note: P1 / lungs_minus_tumour: {text}" in said, said
    # one label map of both (LUNG1-003's labels: 1 the GTV, 3 / 4 the lungs without it): the note names the label
    from lungai.io import write_image

    both = write_image(sitk.ReadImage(str(gtv)) + 3 * (sitk.ReadImage(str(outside)) > 0)
                       + sitk.Cast(sitk.ReadImage(str(outside)) == 2, sitk.sitkUInt8), tmp_path / "labels.nii.gz")
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": [f"{both}#1"],
                  "lungs": [f"{both}#3,4"]}).to_csv(manifest, index=False)
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "map" / "f.csv", *FEW, "--workers", "0")
    assert rc == 0 and f"note: P1 / lungs_minus_tumour: the tumour mask {both}#1 does not overlap the lungs" in said, \
        said
    # the tumour inside the lungs: no such note
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": [str(gtv)],
                  "lungs": [str(_lungs_inside(st, tmp_path))]}).to_csv(manifest, index=False)
    rc, said = _run(capsys, "radiomics-batch", manifest, "-o", tmp_path / "in" / "f.csv", *FEW, "--workers", "0")
    assert rc == 0 and "does not overlap the lungs" not in said, said
    assert "does not overlap" not in pd.read_csv(tmp_path / "in" / "f_settings.csv")["notes"].fillna("").str.cat()


def _lungs_inside(st, tmp_path):
    from lungai.io import write_image

    m = st["masks"]
    gtv = sitk.Cast(m["GTV"] > 0, sitk.sitkUInt8)
    right, left = sitk.Cast(m["Lung_R"] > 0, sitk.sitkUInt8), sitk.Cast(m["Lung_L"] > 0, sitk.sitkUInt8)
    return write_image((right | gtv) + 2 * (left & (1 - gtv)), tmp_path / "lungs_with_gtv.nii.gz")


def test_a_tumour_outside_the_lungs_is_noted_with_rtstruct(study, tmp_path, capsys, monkeypatch):
    """QA outsidefollow65: `radiomics --rtstruct RS` with lungs that exclude the GTV said nothing of lungs_minus_tumour
    equal to the lungs; now a note as without --rtstruct, naming the RTSTRUCT's tumour structure (or the tumour file
    given)."""
    from lungai.dicom.rtstruct import list_structures

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    outside, gtv = _lungs_without_gtv(st, tmp_path / "lungs_without_gtv.nii.gz")
    gtv_names = [n for n in list_structures(st["rtstruct"]) if "gtv" in n.lower()]
    assert len(gtv_names) == 1, gtv_names
    out = tmp_path / "a" / "f.csv"
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--lungs", outside,
                    *FEW, "-o", out)
    assert rc == 0, said
    volume = pd.read_csv(out).query("feature == 'VoxelVolume'").set_index("segment")["value"]
    assert volume["lungs_minus_tumour"] == volume["lungs"], volume
    assert (f"note: the tumour structure {gtv_names[0]!r} does not overlap the lungs (no voxel of it in segment "
            "'lungs'), so segment 'lungs_minus_tumour' equals the lungs") in said, said
    # a tumour file with the RTSTRUCT's lungs, which hold the GTV: no note
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--rtstruct", st["rtstruct"], "--tumour", gtv,
                    *FEW, "-o", tmp_path / "b" / "f.csv")
    assert rc == 0 and "does not overlap the lungs" not in said, said


def test_an_empty_tumour_mask_fails_segment_tumour_naming_the_mask_with_a_fix_that_gives_one(study, tmp_path, capsys,
                                                                                             monkeypatch):
    """QA idforms66: `radiomics --tumour empty.nii.gz` (and radiomics-batch's tumour cell; pyradiomics' lung1 with an
    all-0 mask) failed segment 'tumour' with "segment 'tumour' is empty (0 voxels)", fix "check the mask/label value,
    or leave this segment out" - the mask not named (segment 'lungs_minus_tumour' of the same run named it), and a
    fix with no label to check and, the tumour the only segment, nothing left to compute.  Segment 'tumour' now says
    the mask it is empty of, as a SEG's segment is said, and how to give one that holds the tumour."""
    from lungai.io import write_image
    from lungai.radiomics import STANDARD_SEGMENTS, segments_from_masks
    from lungai.radiomics.segments import AUTOMATIC_TUMOUR

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    st, ct, root = study
    empty = write_image(sitk.Cast(st["masks"]["GTV"] > 0, sitk.sitkUInt8) * 0, tmp_path / "empty.nii.gz")
    rc, said = _run(capsys, "radiomics", "--image", st["ct"], "--tumour", empty, *FEW, "-o", tmp_path / "a" / "f.csv")
    assert rc == 2 and f"the tumour mask {empty} is empty (no voxel), so segment 'tumour' is empty" in said, said
    assert "(0 voxels)" not in said and "leave this segment out" not in said, said
    assert "How to fix: give the mask that holds the tumour" in said, said
    data = tmp_path / "proj" / "data"
    data.mkdir(parents=True)
    write_image(sitk.ReadImage(str(empty)), data / "empty.nii.gz")
    pd.DataFrame({"case": ["P1"], "image": [str(st["ct"])], "tumour": ["data/empty.nii.gz"]}).to_csv(
        tmp_path / "proj" / "m.csv", index=False)
    rc, said = _run(capsys, "radiomics-batch", tmp_path / "proj" / "m.csv", "-o", tmp_path / "b" / "f.csv", *FEW,
                    "--workers", "0")
    assert rc == 1 and "failed: P1: " in said and "empty.nii.gz is empty (no voxel), so segment 'tumour'" in said, said
    assert "(0 voxels)" not in said and "leave this segment out" not in said, said
    # a tumour of RTSTRUCT structures, or cohort's automatic tumour: named so, with the fix of that input
    for kw, words, fix in (({"tumour_structures": ["GTV-1"]}, "the tumour structure 'GTV-1' is empty", "GTV-1"),
                           ({"tumour_named": AUTOMATIC_TUMOUR}, "the automatic tumour is empty", "RTSTRUCT")):
        errors: dict = {}
        out = segments_from_masks(ct, tumour=sitk.ReadImage(str(empty)), names=list(STANDARD_SEGMENTS),
                                  errors=errors, **kw)
        assert "tumour" not in out and errors["tumour"].startswith(f"{words} (no voxel), so segment 'tumour' is "
                                                                   "empty"), errors
        assert fix in errors["tumour"].split("How to fix:")[1] and "mask/label" not in errors["tumour"], errors
