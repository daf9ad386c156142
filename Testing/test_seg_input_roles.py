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
