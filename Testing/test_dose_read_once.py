"""RTDOSEs of LUNG1-003's real DICOM CT grid (../shared/data/nsclc_whole_ct/dicom): a BEAM sum of mixed DoseUnits
checked in Gy naming each file's unit; ``dose-features --dose FOLDER`` reads and classifies the folder once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dose_helpers import lung1_003_plan_dose, with_summation_type, write_rtdose
from lungai.errors import InputError

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def lung1_003(shared_data):
    return lung1_003_plan_dose(shared_data)


def _beam(tmp, dose, name, units, factor, reference, plan="1.2.826.0.1.3680043.8.498.66"):
    """A BEAM RTDOSE ``name`` of ``dose`` x ``factor`` (Gy) stored in ``units``, of the plan ``plan``."""
    base = write_rtdose(dose * factor, tmp / f"base_{name}", reference=reference, units=units)
    beam = with_summation_type(base, tmp / "folder" / name, "BEAM", plan=plan)
    base.unlink()
    return beam


def _mixed_folder(tmp, lung1_003, factors):
    _ct, _rs, reference, dose = lung1_003
    (tmp / "folder").mkdir()
    return [_beam(tmp, dose, name, units, factor, reference)
            for (name, units), factor in zip((("beam1_gy.dcm", "GY"), ("beam2_cgy.dcm", "CGY")), factors)]


def test_a_beam_sum_of_gy_and_cgy_doses_is_in_gy_and_its_refusal_names_each_files_units(lung1_003, tmp_path):
    """QA dosefollow66: a GY and a CGY BEAM dose of LUNG1-003 (the GY one holding cGy values) summed to 2819 Gy were
    refused with "its DoseUnits tag says GY, which is likely wrong (the values look like cGy: 28.19 Gy)" - the units
    "CGY/GY" read as GY, the CGY beam divided by 100 again; a sum too low (a CGY beam holding Gy values) passed with
    no word.  The sum is in Gy, each beam by its own DoseUnits, and an implausible one names each file's unit."""
    from lungai.dose import read_dose

    _ct, _rs, _reference, dose = lung1_003
    top = float(sitk.GetArrayFromImage(dose).max())
    # a plausible mixed sum: each beam converted by its own unit (0.5 + 0.4 of the dose)
    ok = tmp_path / "ok"
    ok.mkdir()
    _mixed_folder(ok, lung1_003, (0.5, 0.4))
    summed = sitk.GetArrayFromImage(read_dose(ok / "folder"))
    assert np.allclose(summed, 0.9 * sitk.GetArrayFromImage(dose), atol=1e-3 * top)
    # the GY beam holds cGy values: too high, the GY file named as the likely wrong one
    high = tmp_path / "high"
    high.mkdir()
    _mixed_folder(high, lung1_003, (50.0, 0.4))
    with pytest.raises(InputError) as err:
        read_dose(high / "folder")
    problem, fix = err.value.problem, err.value.fix
    assert "its DoseUnits tag says GY" not in problem, problem
    assert f"beam1_gy.dcm DoseUnits GY, max {50 * top:.4g} Gy" in problem, problem
    assert f"beam2_cgy.dcm DoseUnits CGY, max {40 * top:.4g} cGy = {0.4 * top:.4g} Gy" in problem, problem
    assert "the DoseUnits GY of beam1_gy.dcm is likely wrong" in problem, problem
    assert "CGY for the values of beam1_gy.dcm" in fix and "--max-dose-gy" in fix, fix
    # the CGY beam holds Gy values: too low (was used: MLD, V20 of a fraction of a Gy)
    low = tmp_path / "low"
    low.mkdir()
    _mixed_folder(low, lung1_003, (0.002, 0.004))
    with pytest.raises(InputError) as err:
        read_dose(low / "folder")
    assert "too low for a treatment dose" in err.value.problem, err.value.problem
    assert "the DoseUnits CGY of beam2_cgy.dcm is likely wrong" in err.value.problem, err.value.problem
    assert "GY for the values of beam2_cgy.dcm" in err.value.fix, err.value.fix


def _folder(tmp, lung1_003, kind) -> Path:
    _ct, _rs, reference, dose = lung1_003
    folder = tmp / "folder"
    folder.mkdir()
    if kind == "copy":       # the plan's RTDOSE and a damaged copy of it (an interrupted copy, cut in its pixels)
        plan = write_rtdose(dose, folder / "plan.dcm", reference=reference)
        (folder / "plan_copy.dcm").write_bytes(plan.read_bytes()[:-5000])
    else:                    # three BEAM doses of one plan without beam numbers (their doses compared, decoded)
        for i, factor in enumerate((0.3, 0.33, 0.37)):
            _beam(tmp, dose, f"beam{i}.dcm", "GY", factor, reference)
    return folder


def _reads(monkeypatch, run) -> Counter:
    """How many times ``run()`` has pydicom read each file (pydicom's read_partial: every dcmread too)."""
    import pydicom.filereader

    counts: Counter = Counter()
    real = pydicom.filereader.read_partial

    def counted(fileobj, *args, **kwargs):
        counts[Path(getattr(fileobj, "name", "?")).name] += 1
        return real(fileobj, *args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_partial", counted)
    try:
        run()
    finally:
        monkeypatch.setattr(pydicom.filereader, "read_partial", real)
    return counts


@pytest.mark.parametrize("kind", ["copy", "beams"])
def test_dose_features_reads_a_dose_folder_once(lung1_003, tmp_path, monkeypatch, capsys, kind):
    """QA dosefollow66: ``lungai dose-features --dose FOLDER`` chose the folder's RTDOSEs twice (the check against
    the CT, then the reading of the dose): on LUNG1-003 with the plan's RTDOSE and a damaged copy, each file was read
    twice as often as one choice needs, the damaged copy's pixels checked twice; three BEAM doses without beam
    numbers were decoded twice to be compared.  Now the choice is made once: the command reads each RTDOSE as often
    as one dose_folder_files does, plus the one read of the dose itself."""
    from lungai.cli import main
    from lungai.dose.read import dose_folder_files, dose_reference

    ct, rtstruct, _reference, _dose = lung1_003
    folder = _folder(tmp_path, lung1_003, kind)
    reference = dose_reference(ct, None, rtstruct)
    choice = _reads(monkeypatch, lambda: dose_folder_files(folder, reference))
    used = dose_folder_files(folder, reference)[0]
    out = tmp_path / "out" / "dose.csv"
    command = _reads(monkeypatch, lambda: main(["dose-features", "--ct", str(ct), "--rtstruct", str(rtstruct),
                                                "--dose", str(folder), "-o", str(out)]))
    printed = capsys.readouterr()
    assert out.exists(), printed.err
    for f in sorted(folder.iterdir()):
        expected = choice[f.name] + (1 if f in used else 0)         # + the dose read (read_rtdose)
        assert command[f.name] <= expected, (f.name, dict(command), dict(choice))
    if kind == "copy":
        assert "plan_copy.dcm left out: a damaged copy of plan.dcm" in printed.out, printed.out


def _two_beams(tmp, lung1_003, second_units, second_factor) -> Path:
    """A folder of two BEAM doses of LUNG1-003 without beam numbers: 0.5 of the dose in GY and ``second_factor``
    of it stored in ``second_units``."""
    _ct, _rs, reference, dose = lung1_003
    tmp.mkdir()
    (tmp / "folder").mkdir()
    _beam(tmp, dose, "beam1_gy.dcm", "GY", 0.5, reference)
    _beam(tmp, dose, f"beam2_{second_units.lower()}.dcm", second_units, second_factor, reference)
    return tmp / "folder"


def test_unnumbered_beams_are_compared_in_gy_by_their_dose_units(lung1_003, tmp_path):
    """QA doseunits66: two BEAM doses of LUNG1-003 without ReferencedBeamNumber, one GY (max 30 Gy) and one CGY
    holding the same raw numbers (max 30 cGy = 0.3 Gy: a different beam), were refused by ``lungai dose-features
    --dose FOLDER`` as "hold the same dose ... most likely one beam exported twice" - pixels x DoseGridScaling compared
    without DoseUnits; and a true copy re-exported in cGy (the same dose in Gy, 100x the numbers) was summed twice
    with no word.  The doses are compared in Gy, each by its own DoseUnits."""
    from lungai.dose import read_dose

    _ct, _rs, _reference, dose = lung1_003
    gy = sitk.GetArrayFromImage(dose)
    top = float(gy.max())
    # the same numbers in GY and CGY: two different beams (30 Gy and 0.3 Gy), summed
    differ = _two_beams(tmp_path / "differ", lung1_003, "CGY", 0.005)
    summed = sitk.GetArrayFromImage(read_dose(differ))
    assert np.allclose(summed, 0.505 * gy, atol=1e-3 * top)
    # the same dose in Gy, stored once in GY and once in CGY: one beam exported twice, refused
    for units in ("CGY", "GY"):
        copies = _two_beams(tmp_path / f"copy_{units}", lung1_003, units, 0.5)
        with pytest.raises(InputError, match="hold the same dose and do not say which beam each is") as err:
            read_dose(copies)
        assert "beam1_gy.dcm and beam2_" in err.value.problem, err.value.problem


@pytest.mark.parametrize("offsets, reverse", [("absolute", False), ("relative", True)])
def test_beams_on_one_grid_written_differently_are_summed(lung1_003, tmp_path, offsets, reverse):
    """QA doseunits66: two BEAM doses of one plan on LUNG1-003's one dose grid, one with the absolute
    GridFrameOffsetVector (the frames' z, allowed for an axial grid) or its frames listed from the top, were refused by
    ``lungai dose-features --dose FOLDER`` as "2 RTDOSEs share this CT's frame of reference (different dose grids)
    ... ambiguous", fix "keep ... the BEAM doses of one plan only" - which the folder held: the grids were compared
    as written, not as frame positions.  Now they are summed; a beam on a really shifted grid is still refused."""
    from lungai.dose import read_dose

    _ct, _rs, reference, dose = lung1_003
    plan = "1.2.826.0.1.3680043.8.498.77"
    (tmp_path / "folder").mkdir()
    _beam(tmp_path, dose, "beam1.dcm", "GY", 0.5, reference, plan=plan)
    base = write_rtdose(dose * 0.4, tmp_path / "base2", reference=reference, offsets=offsets, reverse_frames=reverse)
    with_summation_type(base, tmp_path / "folder" / "beam2.dcm", "BEAM", plan=plan)
    gy = sitk.GetArrayFromImage(dose)
    summed = sitk.GetArrayFromImage(read_dose(tmp_path / "folder"))
    assert np.allclose(summed, 0.9 * gy, atol=1e-3 * float(gy.max()))
    shifted = dose * 0.4
    shifted.SetOrigin(tuple(o + (8.0 if i == 2 else 0.0) for i, o in enumerate(dose.GetOrigin())))
    write_rtdose(shifted, tmp_path / "base3", reference=reference, offsets=offsets, reverse_frames=reverse)
    with_summation_type(tmp_path / "base3", tmp_path / "folder" / "beam2.dcm", "BEAM", plan=plan)
    with pytest.raises(InputError, match="different dose grids"):
        read_dose(tmp_path / "folder")
    # the same dose as beam1 (no beam numbers), written differently: one beam exported twice, refused
    write_rtdose(dose * 0.5, tmp_path / "base4", reference=reference, offsets=offsets, reverse_frames=reverse)
    with_summation_type(tmp_path / "base4", tmp_path / "folder" / "beam2.dcm", "BEAM", plan=plan)
    with pytest.raises(InputError, match="hold the same dose and do not say which beam each is"):
        read_dose(tmp_path / "folder")


def test_a_dose_grid_cut_short_at_the_lung_base_is_refused_saying_where(lung1_003, tmp_path, capsys):
    """QA radfollow67: LUNG1-003's plan-like dose with its grid cut 40 mm short at the lung base (the lungs of its
    RTSTRUCT) was refused with "61053 of 1363865 voxels (4.5 %) lie outside it": not where, nor a fix beyond
    re-export.  The refusal names the side (inferior), how far the lungs reach beyond the grid, both extents, and
    the fix: the full calculation grid, down to the lungs' base."""
    from lungai.cli import main

    ct, rtstruct, reference, dose = lung1_003
    cut = dose[:, :, 10:]                                     # ten 4 mm planes: 40 mm off the grid's lower end
    edge = cut.GetOrigin()[2] - cut.GetSpacing()[2] / 2
    (tmp_path / "RD").mkdir()
    f = write_rtdose(cut, tmp_path / "RD" / "RD.cut.dcm", reference=reference)
    capsys.readouterr()
    rc = main(["dose-features", "--ct", str(ct), "--rtstruct", str(rtstruct), "--dose", str(f),
               "-o", str(tmp_path / "out" / "dose.csv")])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "out" / "dose.csv").exists(), err
    assert "the dose grid does not cover the lungs: " in err, err
    assert (f"beyond its edge on the inferior side (towards the feet) by up to 32.0 mm (farthest voxel of the lungs "
            f"at z = -299.9 mm, the dose grid's edge at z = {edge:.1f} mm)") in err, err
    assert not any(s in err for s in ("superior side", "right side", "left side", "anterior side", "posterior side"))
    assert f"z {edge:.1f} .. " in err and "the lungs x " in err and "(patient coordinates, LPS" in err, err
    assert "full calculation grid" in err and "at least to z = -299.9 mm inferiorly" in err, err
