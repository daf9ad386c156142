"""``lungai lungs --gtv``: how much of each GTV lies outside the automatic lung masks, said, and the GTV subtracted
from them (lungs minus GTV, the lungs of the dose metrics).  QA lungs70: ``lungai lungs`` took no GTV, so a GTV lying
outside its lungs could not be reported (LUNG1-003: 66 % of GTV-1 and all of its nodal GTVs outside them, docs/lungs.md)
and the tumour's part inside them (hole filling) stayed lung in the map, its SEG and RTSTRUCT."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk


def _gtv_map(phantom_labels: np.ndarray) -> np.ndarray:
    """Label 1: the phantom's tumour (inside the right lung); label 2: a 'node', a mediastinal block (no lung)."""
    from lungai.synthetic import labels as L

    gtv = np.zeros(phantom_labels.shape, np.uint8)
    gtv[np.isin(phantom_labels, (L.TUMOUR, L.GROUND_GLASS))] = 1
    k, j, i = (int(np.median(a)) for a in np.nonzero(phantom_labels == L.MEDIASTINUM))
    block = (slice(k - 1, k + 2), slice(j - 1, j + 2), slice(i - 1, i + 2))
    node = np.zeros_like(gtv, dtype=bool)
    node[block] = phantom_labels[block] == L.MEDIASTINUM
    gtv[node] = 2
    assert (gtv == 1).any() and (gtv == 2).any()
    return gtv


def test_lungai_lungs_says_each_gtvs_share_outside_the_lungs_and_subtracts_it(tmp_path, capsys):
    """A DICOM CT (the phantom) with a GTV label map on its grid, labels 1 (the tumour, in the right lung) and 2 (a
    node in the mediastinum): each GTV's part outside the lung masks is said with its ml and share, and the map, its
    SEG and its RTSTRUCT hold the lungs minus the GTV - the lungs of the run without --gtv, the GTV's voxels out."""
    from dicom_helpers import small_phantom

    from lungai.cli import main
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.dicom.seg import read_seg
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct
    from lungai.volume import voxel_ml

    phantom = small_phantom(7)
    study = write_rt_study(tmp_path / "dicom", phantom, "P1", dose=None)
    ct = read_ct(study["ct"])
    gtv = _gtv_map(sitk.GetArrayFromImage(phantom.labels))
    gtv_img = sitk.GetImageFromArray(gtv)
    gtv_img.CopyInformation(ct)
    gtv_file = tmp_path / "gtv.nii.gz"
    sitk.WriteImage(gtv_img, str(gtv_file))

    assert main(["lungs", str(study["ct"]), "-o", str(tmp_path / "plain" / "lungs.nii.gz")]) == 0
    capsys.readouterr()
    out = tmp_path / "minus" / "lungs.nii.gz"
    assert main(["lungs", str(study["ct"]), "--gtv", f"{gtv_file}#1,2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()

    plain = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plain" / "lungs.nii.gz")))
    minus = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    # the lungs of the plain run, the GTV's voxels out (labels kept)
    expected = plain.copy()
    expected[gtv > 0] = 0
    assert np.array_equal(minus, expected)
    assert (plain[gtv == 1] > 0).any(), "the tumour was expected partly inside the automatic lungs"
    ml = voxel_ml(ct.GetSpacing())
    inside = int(((plain > 0) & (gtv == 1)).sum())
    total = int((gtv == 1).sum())
    first = [line for line in printed if line.startswith(f"note: GTV {gtv_file}#1: ")]
    assert len(first) == 1, printed
    figures = re.search(r": ([\d.]+) ml, ([\d.]+) ml \((\d+) %\) of it outside the lung masks .*, ([\d.]+) ml inside "
                        r"them subtracted from the lungs$", first[0])
    assert figures, first[0]
    assert float(figures.group(1)) == pytest.approx(total * ml, abs=0.06)
    assert float(figures.group(2)) == pytest.approx((total - inside) * ml, abs=0.06)
    assert int(figures.group(3)) == round(100 * (total - inside) / total)
    assert float(figures.group(4)) == pytest.approx(inside * ml, abs=0.06)
    node = [line for line in printed if line.startswith(f"note: GTV {gtv_file}#2: ")]
    assert len(node) == 1 and "all of it outside the lung masks" in node[0], printed
    # the volumes printed are of the lungs minus the GTV
    said = re.search(r"right lung (\d+) ml, left lung (\d+) ml \(minus the GTV\)", "\n".join(printed))
    assert said and int(said.group(1)) == round((minus == 1).sum() * ml), printed
    # the summary line the Slicer panel looks for (a run completed): that of a run with --gtv too
    from lungai.scene.results import lungs_run_completed

    assert lungs_run_completed(printed), printed

    # the SEG and RTSTRUCT beside the map: the lungs minus the GTV too
    seg = read_seg(out.with_name("lungs.seg.dcm"), ct)
    rt = read_rtstruct(out.with_name("lungs.rtstruct.dcm"), ct)
    for name, value in (("Right lung", 1), ("Left lung", 2)):
        assert np.array_equal(sitk.GetArrayFromImage(seg[name]) > 0, minus == value), name
    assert not (sitk.GetArrayFromImage(rt["Lung_R"])[gtv > 0]).any()


def test_an_empty_gtv_is_refused_before_the_segmentation(small_phantom, tmp_path, capsys):
    """An empty --gtv (no voxel > 0) is refused with what to do, before the lungs are segmented: nothing is written."""
    from lungai.cli import main

    sitk.WriteImage(small_phantom.ct, str(tmp_path / "ct.nii.gz"))
    empty = sitk.Image(small_phantom.ct.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(small_phantom.ct)
    sitk.WriteImage(empty, str(tmp_path / "gtv.nii.gz"))
    assert main(["lungs", str(tmp_path / "ct.nii.gz"), "--gtv", str(tmp_path / "gtv.nii.gz"),
                 "-o", str(tmp_path / "lungs.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "How to fix:" in err, err
    assert "filling the" not in err, err          # the segmentation never ran
    assert not (tmp_path / "lungs.nii.gz").exists()


def test_lungs_minus_envelope_is_the_one_subtraction():
    """The motion envelope's subtraction (dose-features --envelope) is lungai.lungs.check.lungs_minus, its messages
    unchanged."""
    from lungai.dose.features import lungs_minus_envelope
    from lungai.errors import InputError
    from lungai.lungs.check import lungs_minus

    lungs = sitk.GetImageFromArray(np.array([[[1, 1, 2, 2, 0]]], np.uint8))
    env = sitk.GetImageFromArray(np.array([[[0, 1, 1, 0, 0]]], np.uint8))
    a = sitk.GetArrayFromImage(lungs_minus_envelope(lungs, [env]))
    b = sitk.GetArrayFromImage(lungs_minus(lungs, [env]))
    assert a.tolist() == b.tolist() == [[[1, 0, 0, 2, 0]]]
    with pytest.raises(InputError, match=r"the motion envelope mask e\.nii\.gz is empty \(no voxel > 0\)"):
        lungs_minus_envelope(lungs, [env * 0], names=["e.nii.gz"])
    with pytest.raises(InputError, match="the lung mask minus the motion envelope is empty"):
        lungs_minus_envelope(lungs, [lungs])


def test_lungai_lungs_takes_the_gtvs_of_the_rtstruct(tmp_path, capsys):
    """--rtstruct (the patient's folder: its RTSTRUCT found) without --gtv: every GTV contoured (role:gtv), each said
    under its structure name; the lungs written are those of the plain run minus the GTV as the RTSTRUCT holds it."""
    from dicom_helpers import small_phantom

    from lungai.cli import main
    from lungai.dicom.rtstruct import read_rtstruct
    from lungai.io import read_ct

    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    ct = read_ct(study["ct"])
    gtv = sitk.GetArrayFromImage(read_rtstruct(study["rtstruct"], ct, names=["GTV"])["GTV"]) > 0
    assert main(["lungs", str(study["ct"]), "--no-dicom", "-o", str(tmp_path / "plain.nii.gz")]) == 0
    capsys.readouterr()
    out = tmp_path / "minus.nii.gz"
    assert main(["lungs", str(study["ct"]), "--no-dicom", "--rtstruct", str(study["root"]), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plain.nii.gz")))
    assert (expected[gtv] > 0).any()
    expected[gtv] = 0
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), expected)
    notes = [line for line in captured.out.splitlines() if line.startswith("note: GTV 'GTV': ")]
    assert len(notes) == 1 and "subtracted from the lungs" in notes[0], captured.out
    assert "using the RTSTRUCT" in captured.err, captured.err      # the folder's RTSTRUCT named
