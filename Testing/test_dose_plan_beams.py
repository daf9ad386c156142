"""Which RTDOSEs make the treatment dose, checked against the RTPLAN of the export (lungai.dose.read.plan_dose_files,
the one decision of dose-features --dose FOLDER and cohort): a missing beam, a dose split into single-frame files."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import SimpleITK as sitk

from dose_helpers import with_summation_type, write_rtdose, write_rtplan
from lungai.dose import radial_dose, read_dose
from lungai.dose.read import dose_folder_files, plan_dose_files, read_dose_sum
from lungai.errors import InputError

PLAN = "1.2.3.1"


def _beam(src, dst, number, factor, plan=PLAN):
    """A BEAM dose of ``plan`` (ReferencedBeamNumber ``number``), the dose of ``src`` x ``factor``."""
    import pydicom
    from pydicom.dataset import Dataset

    with_summation_type(src, dst, "BEAM", plan=plan, factor=factor)
    ds = pydicom.dcmread(dst)
    beam, group = Dataset(), Dataset()
    beam.ReferencedBeamNumber, group.ReferencedFractionGroupNumber = number, 1
    group.ReferencedBeamSequence = [beam]
    ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = [group]
    ds.save_as(dst)
    return dst


@pytest.fixture
def beams(tmp_path):
    """(the plan dose file, its three BEAM doses 1, 2, 3 in tmp_path/RD) - 0.5, 0.3, 0.2 of it."""
    dose = radial_dose(sitk.Image((10, 10, 6), sitk.sitkInt16), (4.5, 4.5, 2.5), 25.0, 60.0)
    (tmp_path / "RD").mkdir()
    src = write_rtdose(dose, tmp_path / "plan.dcm")
    return src, [_beam(src, tmp_path / "RD" / f"beam{n}.dcm", n, f) for n, f in ((1, 0.5), (2, 0.3), (3, 0.2))]


def test_a_beam_missing_from_the_rtplans_beams_is_refused_naming_it(tmp_path, beams):
    """QA: beam1 + beam2 of a plan whose RTPLAN (in the folder) lists 3 beams: "2 BEAM doses of one plan summed",
    MLD 6.93 instead of 8.66 Gy, exit 0.  The RTPLAN's treatment beams must all have their dose file: refused naming
    beam 3 and the fix (dose-features --dose FOLDER and read_dose_sum alike)."""
    src, files = beams
    rtplan = write_rtplan(tmp_path / "RD" / "RP.dcm", PLAN, [1, 2, 3])
    (tmp_path / "RD" / "beam3.dcm").unlink()
    with pytest.raises(InputError, match=r"RTPLAN RP.dcm lists 3 treatment beams \(1, 2, 3\) but there is no BEAM "
                                         r"RTDOSE for beam 3") as err:
        read_dose(tmp_path / "RD")
    assert "every treatment beam" in err.value.fix and "plan dose" in err.value.fix
    with pytest.raises(InputError, match="no BEAM RTDOSE for beam 3"):
        plan_dose_files(files[:2], rtplans=[rtplan])
    # beam 3 delivers nothing (BeamMeterset 0): not a treatment beam, the two are the plan's dose
    write_rtplan(rtplan, PLAN, [1, 2, (3, 0.0)])
    checks: list = []
    got, note = plan_dose_files(files[:2], rtplans=[rtplan], checks=checks)
    assert got == files[:2] and checks == ["all 2 treatment beams of RTPLAN RP.dcm have their dose"]


def test_all_beams_of_the_rtplan_are_summed_and_without_rtplan_the_note_says_unchecked(tmp_path, beams):
    src, files = beams
    notes: list = []
    total = read_dose(tmp_path / "RD", notes=notes)             # no RTPLAN: summed, said unchecked
    assert np.allclose(sitk.GetArrayFromImage(total), sitk.GetArrayFromImage(read_dose(src)), atol=1e-3)
    assert "3 BEAM doses of one plan summed" in notes[0]
    assert f"could not be checked (no RTPLAN in the --dose folder {tmp_path / 'RD'}; if the export has an" in notes[0]
    write_rtplan(tmp_path / "RD" / "RP.dcm", PLAN, [1, 2, 3])
    got, note = dose_folder_files(tmp_path / "RD")              # the folder's RTPLAN found with its RTDOSEs
    assert got == sorted(files) and "all 3 treatment beams of RTPLAN RP.dcm have their dose" in note
    write_rtplan(tmp_path / "RD" / "RP.dcm", "1.2.3.99", [1, 2, 3])      # another plan's RTPLAN: not this one's
    assert (f"the RTPLAN they reference, 1.2.3.1, is not in the --dose folder {tmp_path / 'RD'}"
            in dose_folder_files(tmp_path / "RD")[1])
    # a dose of a beam the plan does not list
    write_rtplan(tmp_path / "RD" / "RP.dcm", PLAN, [1, 2])
    with pytest.raises(InputError, match="dose of beam 3 too, which the plan does not list"):
        dose_folder_files(tmp_path / "RD")


def test_one_dose_series_split_into_single_frame_files_is_named_as_such(tmp_path):
    """QA: a PLAN dose exported as 126 single-frame files of one series was refused as "126 RTDOSEs share this CT's
    frame of reference (several plans or dose types): RD000.dcm ... RD125.dcm" - every name on one line, a wrong
    reason.  Said what it is, with the fix; at most 5 names then "... and N more"."""
    import pydicom

    dose = radial_dose(sitk.Image((10, 10, 8), sitk.sitkInt16), (4.5, 4.5, 3.5), 25.0, 60.0)
    src = pydicom.dcmread(write_rtdose(dose, tmp_path / "plan.dcm"))
    pixels, series = src.pixel_array, pydicom.uid.generate_uid()
    (tmp_path / "RD").mkdir()
    for k in range(pixels.shape[0]):
        ds = copy.deepcopy(src)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.NumberOfFrames, ds.GridFrameOffsetVector = 1, [0.0]
        z = float(src.ImagePositionPatient[2]) + float(src.GridFrameOffsetVector[k])
        ds.ImagePositionPatient = [src.ImagePositionPatient[0], src.ImagePositionPatient[1], z]
        ds.PixelData = pixels[k].tobytes()
        ds.save_as(tmp_path / "RD" / f"RD{k:03d}.dcm")
    with pytest.raises(InputError, match=r"the 8 RTDOSEs RD000.dcm, RD001.dcm, RD002.dcm, RD003.dcm, RD004.dcm \.\.\. "
                                         r"and 3 more are one dose series .* split into single-frame files") as err:
        read_dose(tmp_path / "RD")
    assert "one multi-frame RTDOSE" in err.value.fix


def test_a_long_list_of_ambiguous_rtdoses_is_cut(tmp_path, beams):
    src, files = beams
    plans = [with_summation_type(src, tmp_path / f"p{i}.dcm", "PLAN", plan=f"1.2.3.{10 + i}") for i in range(7)]
    with pytest.raises(InputError, match=r"7 RTDOSEs share .*p4.dcm \(PLAN\) \.\.\. and 2 more; which one") as err:
        plan_dose_files(plans)
    assert "p5.dcm" not in err.value.problem


def test_read_dose_sum_of_a_cohort_is_refused_as_well(tmp_path, beams):
    """read_dose_sum (cohort's process) decides as plan_dose_files: a beam twice is refused (no plan needed)."""
    src, files = beams
    again = _beam(src, tmp_path / "RD" / "beam2_new.dcm", 2, 0.3)
    with pytest.raises(InputError, match="both the dose of beam 2"):
        read_dose_sum([*files, again])


def _cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])
    return path


def test_an_rtplan_cut_short_leaves_the_sum_unchecked_and_said_so(tmp_path, beams):
    """QA: an RTPLAN cut short (its last 30 bytes) beside complete BEAM doses: dose-features exited 2 "cannot access
    None: No tag to read", cohort failed the patient as "RTDOSE could not be read" (pydicom reads the plan's
    sequences lazily, after dcmread).  The doses are summed, the note saying the plan could not be read; cut at 2/3
    (no fraction group left), said too, not "lists no treatment beam"."""
    src, files = beams
    rtplan = _cut(write_rtplan(tmp_path / "RD" / "RP.dcm", PLAN, [1, 2, 3, 4]), lambda n: n - 30)
    checks: list = []
    got, note = plan_dose_files(files, rtplans=[rtplan], checks=checks)
    assert got == files and checks[0].startswith("that every beam of the plan has its dose could not be checked "
                                                 "(RTPLAN RP.dcm could not be read (")
    assert "re-export it" in checks[0]
    assert "RTPLAN RP.dcm could not be read" in dose_folder_files(tmp_path / "RD")[1]
    _cut(write_rtplan(rtplan, PLAN, [1, 2, 3, 4]), lambda n: n * 2 // 3)
    got, note = plan_dose_files(files, rtplans=[rtplan])
    assert got == files and ("lists no fraction group (FractionGroupSequence): cut short?" in note
                             or "could not be read" in note)


def test_setup_beams_of_an_ion_plan_are_no_treatment_beams(tmp_path, beams):
    """QA: an RT Ion plan's SETUP beam (IonBeamSequence) was counted as a treatment beam: its valid proton beam sum
    refused for "no BEAM RTDOSE for beam 4"."""
    import pydicom
    from pydicom.dataset import Dataset

    src, files = beams
    rtplan = write_rtplan(tmp_path / "RP.dcm", PLAN, [1, 2, 3, 4])
    ds = pydicom.dcmread(rtplan)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.8"   # RT Ion Plan
    items = []
    for n in (1, 2, 3, 4):
        beam = Dataset()
        beam.BeamNumber, beam.TreatmentDeliveryType = n, "SETUP" if n == 4 else "TREATMENT"
        items.append(beam)
    ds.IonBeamSequence = items
    del ds.FractionGroupSequence[0].ReferencedBeamSequence[3].BeamMeterset
    ds.save_as(rtplan)
    checks: list = []
    assert plan_dose_files(files, rtplans=[rtplan], checks=checks)[0] == files
    assert checks == ["all 3 treatment beams of RTPLAN RP.dcm have their dose"]


def test_a_fraction_group_missing_from_the_rtplan_takes_all_its_beams(tmp_path, beams):
    """QA: the doses' fraction group 1 not in the RTPLAN (no FractionGroupNumber): "RTPLAN lists no treatment beam",
    summed unchecked although the plan lists a 4th beam.  All its fraction groups' beams are taken, said."""
    import pydicom

    src, files = beams
    rtplan = write_rtplan(tmp_path / "RP.dcm", PLAN, [1, 2, 3, 4])
    ds = pydicom.dcmread(rtplan)
    del ds.FractionGroupSequence[0].FractionGroupNumber
    ds.save_as(rtplan)
    with pytest.raises(InputError, match=r"lists 4 treatment beams \(1, 2, 3, 4\) \(the fraction group 1 that the "
                                         r"doses reference is not in the RTPLAN: the beams of all its fraction "
                                         r"groups taken\) but there is no BEAM RTDOSE for beam 4"):
        plan_dose_files(files, rtplans=[rtplan])
    write_rtplan(rtplan, PLAN, [1, 2, 3])
    ds = pydicom.dcmread(rtplan)
    ds.FractionGroupSequence[0].FractionGroupNumber = 2
    ds.save_as(rtplan)
    checks: list = []
    plan_dose_files(files, rtplans=[rtplan], checks=checks)
    assert checks == ["all 3 treatment beams of RTPLAN RP.dcm have their dose; the fraction group 1 that the doses "
                      "reference is not in the RTPLAN: the beams of all its fraction groups taken"]


def test_a_zero_meterset_beam_with_its_dose_is_a_beam_of_the_plan(tmp_path, beams):
    """QA: beam 3 (BeamMeterset 0) exported with its BEAM dose was refused as a beam "the plan does not treat
    with": it is the plan's."""
    src, files = beams
    rtplan = write_rtplan(tmp_path / "RP.dcm", PLAN, [1, 2, (3, 0.0)])
    checks: list = []
    assert plan_dose_files(files, rtplans=[rtplan], checks=checks)[0] == files
    assert checks == ["all 2 treatment beams of RTPLAN RP.dcm have their dose"]


def test_a_dose_folder_without_the_rtplan_says_where_it_looked(tmp_path, beams):
    """QA: --dose P1/RD (beam1, beam2; the RTPLAN listing 3 beams in P1) summed 2 of 3 saying "no RTPLAN in the
    export": only the --dose folder was searched, and the note says so with how to have the beams checked."""
    src, files = beams
    write_rtplan(tmp_path / "RP.dcm", PLAN, [1, 2, 3])
    files[2].unlink()
    src.unlink()
    got, note = dose_folder_files(tmp_path / "RD")
    assert len(got) == 2 and "no RTPLAN in the export" not in note
    assert (f"no RTPLAN in the --dose folder {tmp_path / 'RD'}; if the export has an RTPLAN, point --dose at the "
            "folder holding it so every beam is checked") in note
    with pytest.raises(InputError, match="no BEAM RTDOSE for beam 3"):
        dose_folder_files(tmp_path)


def _two_group_plan(path, groups=((1, (1, 2, 3)), (2, (4, 5)))):
    """An RTPLAN of fraction groups ``groups`` ((FractionGroupNumber, beam numbers) ...): a plan and its boost."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(write_rtplan(path, PLAN, list(groups[0][1])))
    for number, beams in groups[1:]:
        group = Dataset()
        group.FractionGroupNumber, group.NumberOfFractionsPlanned, group.NumberOfBeams = number, 5, len(beams)
        refs = []
        for n in beams:
            ref = Dataset()
            ref.ReferencedBeamNumber, ref.BeamMeterset = n, 100.0
            refs.append(ref)
        group.ReferencedBeamSequence = refs
        ds.FractionGroupSequence.append(group)
    ds.save_as(path)
    return path


def test_a_dose_of_another_fraction_groups_beam_takes_that_group_in(tmp_path, beams):
    """QA: plan group 1 (beams 1-3) and boost group 2 (beams 4-5); the doses of beams 1-3 and of beam 4 (saying
    group 1, or no group) passed as "all 3 treatment beams of RTPLAN boost.dcm have their dose": neither group 1's
    dose nor the plan's (beam 5 missing).  Beam 4's group is taken in, said, and beam 5 is missing."""
    src, files = beams
    rtplan = _two_group_plan(tmp_path / "boost.dcm")
    four = _beam(src, tmp_path / "RD" / "beam4.dcm", 4, 0.2)           # says fraction group 1, wrongly
    with pytest.raises(InputError, match=r"lists 5 treatment beams \(1, 2, 3, 4, 5\) \(beam 4 with a dose is of "
                                         r"fraction group 2, not of the doses' fraction group 1: the beams of both "
                                         r"groups taken\) but there is no BEAM RTDOSE for beam 5"):
        plan_dose_files(files + [four], rtplans=[rtplan])
    five = _beam(src, tmp_path / "RD" / "beam5.dcm", 5, 0.1)
    checks: list = []
    assert plan_dose_files(files + [four, five], rtplans=[rtplan], checks=checks)[0] == files + [four, five]
    assert checks[0].startswith("all 5 treatment beams of RTPLAN boost.dcm have their dose; beams 4, 5 with a dose")
    # group 1's doses alone are group 1's dose: checked as before
    checks = []
    assert plan_dose_files(files, rtplans=[rtplan], checks=checks)[0] == files
    assert checks == ["all 3 treatment beams of RTPLAN boost.dcm in fraction group 1 of 2 (the plan has 5 treatment "
                      "beams) have their dose"]
    # a beam the plan's BeamSequence lists but no fraction group delivers (and no SETUP beam): refused, said so
    import pydicom
    from pydicom.dataset import Dataset

    write_rtplan(rtplan, PLAN, [1, 2, 3])
    ds = pydicom.dcmread(rtplan)
    items = []
    for n in (1, 2, 3, 4):
        item = Dataset()
        item.BeamNumber, item.TreatmentDeliveryType = n, "TREATMENT"
        items.append(item)
    ds.BeamSequence = items
    ds.save_as(rtplan)
    with pytest.raises(InputError, match="dose of beam 4 too, which no fraction group of the plan delivers"):
        plan_dose_files(files + [four], rtplans=[rtplan])


def test_two_rtplans_of_one_uid_are_both_read(tmp_path, beams):
    """QA: two RTPLAN files of one SOPInstanceUID (a re-export after a beam was added): the first (or, for a plan of
    another PatientID, the last) was used, the other ignored silently.  Both are read: different beams are refused
    naming both files, the same beams are fine."""
    src, files = beams
    a = write_rtplan(tmp_path / "a.dcm", PLAN, [1, 2, 3])
    b = write_rtplan(tmp_path / "b.dcm", PLAN, [1, 2, 3, 4])
    for plans in ([a, b], [b, a]):
        with pytest.raises(InputError, match=r"the RTPLANs (a|b).dcm and (a|b).dcm are both the plan 1.2.3.1 .*list "
                                             r"different beams .*: beam 4 is a treatment beam of b.dcm, not of "
                                             r"a.dcm\)") as err:
            plan_dose_files(files, rtplans=plans)
        assert "keep one RTPLAN per plan" in err.value.fix
    write_rtplan(b, PLAN, [1, 2, 3])
    checks: list = []
    assert plan_dose_files(files, rtplans=[a, b], checks=checks)[0] == files
    assert checks == ["all 3 treatment beams of RTPLAN a.dcm have their dose"]


def test_an_rtplan_that_is_no_dicom_is_named_unreadable(tmp_path, beams):
    """QA: a garbage RTPLAN (dcmread(force=True) gives an empty data set) was reported as "the RTPLAN they
    reference ... is not in the export", not as unreadable."""
    src, files = beams
    garbage = tmp_path / "RP.dcm"
    garbage.write_bytes(b"\x00\x01garbage" * 40)
    checks: list = []
    assert plan_dose_files(files, rtplans=[garbage], checks=checks)[0] == files
    assert "RTPLAN RP.dcm (no SOPInstanceUID" in checks[0] and "could not be read" in checks[0]
    assert "is not in" not in checks[0]


def test_scan_keeps_every_rtplan_file_of_another_patient_id(tmp_path, beams):
    """QA: two RTPLANs of one SOPInstanceUID under another PatientID (anonymised separately): scan kept the last
    one per UID, the other ignored.  Both go with the study, and the beam check compares them."""
    import pydicom

    from lungai.dicom.discover import scan

    src, files = beams
    src.unlink()
    patient = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientID)
    (tmp_path / "X").mkdir()
    (tmp_path / "Y").mkdir()
    a = write_rtplan(tmp_path / "X" / "a.dcm", PLAN, [1, 2, 3], patient_id=patient + "-ANON")
    b = write_rtplan(tmp_path / "Y" / "b.dcm", PLAN, [1, 2, 3, 4], patient_id=patient + "-ANON")
    study = next(st for st in scan(tmp_path) if st.rtdose)
    assert sorted(study.rtplan) == [a, b]
    with pytest.raises(InputError, match="a.dcm and b.dcm are both the plan 1.2.3.1"):
        plan_dose_files(study.rtdose, rtplans=study.rtplan)


def test_two_rtplans_of_one_uid_differing_outside_the_treatment_beams_are_accepted(tmp_path, beams):
    """Review: copy a.dcm listing a setup beam 99 in its BeamSequence, copy b.dcm no BeamSequence (doses of beams 1-3)
    were refused "list different beams (treatment beams 1, 2, 3 and 1, 2, 3)".  Refused only when the sum's outcome
    differs under each copy - other treatment beams, or a dose the plan's beam under one copy only -, naming it."""
    import pydicom
    from pydicom.dataset import Dataset

    src, files = beams
    a = write_rtplan(tmp_path / "a.dcm", PLAN, [1, 2, 3])
    ds = pydicom.dcmread(a)
    items = []
    for n in (1, 2, 3, 99):
        item = Dataset()
        item.BeamNumber, item.TreatmentDeliveryType = n, "SETUP" if n == 99 else "TREATMENT"
        items.append(item)
    ds.BeamSequence = items
    ds.save_as(a)
    b = write_rtplan(tmp_path / "b.dcm", PLAN, [1, 2, 3])
    for plans in ([a, b], [b, a]):
        checks: list = []
        assert plan_dose_files(files, rtplans=plans, checks=checks)[0] == files
        assert checks == [f"all 3 treatment beams of RTPLAN {plans[0].name} have their dose"]
    # a dose of beam 4: a zero-meterset beam of a.dcm (the plan's), no beam of b.dcm - the outcome differs
    write_rtplan(a, PLAN, [1, 2, 3, (4, 0.0)])
    four = _beam(src, tmp_path / "RD" / "beam4.dcm", 4, 0.0)
    with pytest.raises(InputError, match=r"list different beams \(treatment beams 1, 2, 3 and 1, 2, 3: beam 4 \(with "
                                         r"a dose\) is a beam of a.dcm, not of b.dcm\)"):
        plan_dose_files(files + [four], rtplans=[a, b])


def test_the_doses_of_one_fraction_group_say_which(tmp_path, beams):
    """Review: the doses of a plan's boost group alone (group 1: beams 1-3, group 2: beams 4, 5; doses of 4 and 5
    saying group 2) passed as "all 2 treatment beams of RTPLAN boost.dcm have their dose", as if the plan had 2
    beams.  The note (and the provenance) say the fraction group and the plan's treatment beams."""
    import pydicom

    src, files = beams
    rtplan = _two_group_plan(tmp_path / "boost.dcm")
    boost = []
    for n in (4, 5):
        f = _beam(src, tmp_path / "RD" / f"beam{n}.dcm", n, 0.1)
        ds = pydicom.dcmread(f)
        ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence[0].ReferencedFractionGroupNumber = 2
        ds.save_as(f)
        boost.append(f)
    checks: list = []
    assert plan_dose_files(boost, rtplans=[rtplan], checks=checks)[0] == boost
    assert checks == ["all 2 treatment beams of RTPLAN boost.dcm in fraction group 2 of 2 (the plan has 5 treatment "
                      "beams) have their dose"]
    _two_group_plan(rtplan, groups=((1, (1, 2, 3)), (2, (4, 5, 6))))
    with pytest.raises(InputError, match=r"RTPLAN boost.dcm lists 3 treatment beams \(4, 5, 6\) in fraction group 2 "
                                         r"of 2 \(the plan has 6 treatment beams\) but there is no BEAM RTDOSE for "
                                         r"beam 6"):
        plan_dose_files(boost, rtplans=[rtplan])


def test_a_dose_of_a_zero_meterset_beam_of_another_group_takes_no_group_in(tmp_path, beams):
    """Review: group 1 (beams 1-3) and group 2 (beam 4, and beam 98 with BeamMeterset 0); the doses of beams 1-3
    and 98 were refused for the missing beam 4: beam 98 had taken group 2 in.  A beam delivering nothing is the
    plan's without being needed: group 1's dose."""
    import pydicom
    from pydicom.dataset import Dataset

    src, files = beams
    rtplan = _two_group_plan(tmp_path / "p.dcm", groups=((1, (1, 2, 3)), (2, (4,))))
    ds = pydicom.dcmread(rtplan)
    ref = Dataset()
    ref.ReferencedBeamNumber, ref.BeamMeterset = 98, 0.0
    ds.FractionGroupSequence[1].ReferencedBeamSequence.append(ref)
    ds.save_as(rtplan)
    zero = _beam(src, tmp_path / "RD" / "beam98.dcm", 98, 0.0)
    checks: list = []
    assert plan_dose_files(files + [zero], rtplans=[rtplan], checks=checks)[0] == files + [zero]
    assert checks == ["all 3 treatment beams of RTPLAN p.dcm in fraction group 1 of 2 (the plan has 4 treatment "
                      "beams) have their dose"]


def test_a_beam_sum_unchecked_against_its_rtplan_is_recorded_in_dose_csv(tmp_path, beams, capsys):
    """QA (dosenotes60): 2 of 3 BEAM doses of one plan on LUNG1-003 and no RTPLAN in the --dose folder gave MLD 3.15 Gy
    (the plan's 3.94) with the note "could not be checked" printed only: dose.csv's rtdose_notes - the table the
    user keeps, that lungai rp predict repeats - had no trace of it.  It records it (lungai.dose.read.value_notes);
    a sum checked against its RTPLAN records nothing of the beams."""
    import pandas as pd

    from lungai.cli import main
    from lungai.dose.features import NOTES_COLUMN, notes_of

    src, files = beams
    ct = sitk.Image((10, 10, 6), sitk.sitkInt16) - 800
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct * 0 + 1, sitk.sitkUInt8), str(tmp_path / "lungs.nii.gz"))
    files[2].unlink()                                           # beam 3's dose not exported, no RTPLAN

    def recorded(name):
        out = tmp_path / f"{name}.csv"
        assert main(["dose-features", "--ct", str(tmp_path / "ct.nii.gz"), "--lungs", str(tmp_path / "lungs.nii.gz"),
                     "--dose", str(tmp_path / "RD"), "-o", str(out)]) == 0
        capsys.readouterr()
        return notes_of(pd.read_csv(out, keep_default_na=False)[NOTES_COLUMN].iloc[0])

    said = ("the dose is the sum of the 2 BEAM RTDOSEs beam1.dcm, beam2.dcm; that every beam of the plan has its dose "
            f"could not be checked (no RTPLAN in the --dose folder {tmp_path / 'RD'}")
    notes = recorded("unchecked")
    assert [n for n in notes if n.startswith(said)] and "the MLD, V20 ... are too low" in notes[-1], notes
    record: list = []                                           # the Python API: read_dose's record
    read_dose(tmp_path / "RD", notes=[], record=record)
    assert len(record) == 1 and record[0].startswith(said), record
    _beam(src, tmp_path / "RD" / "beam3.dcm", 3, 0.2)
    write_rtplan(tmp_path / "RD" / "RP.dcm", PLAN, [1, 2, 3])   # all beams, checked against the RTPLAN
    assert not [n for n in recorded("checked") if "BEAM RTDOSEs" in n or "every beam" in n]
    record = []
    read_dose(tmp_path / "RD", notes=[], record=record)
    assert record == []


def test_the_one_beam_dose_of_a_one_beam_plan_is_its_dose(tmp_path, beams):
    """QA dose66: a single-arc plan (one treatment beam) exported as its BEAM dose beside its RTPLAN was refused by
    dose-features --dose FOLDER as "has DoseSummationType BEAM ... put the RTDOSE of every beam of the plan in one
    folder and give that folder" - what the user had done - while the BEAM doses of a plan of two or three beams are
    summed once the RTPLAN shows that every treatment beam has its dose.  One BEAM dose is now its plan's dose by the
    same check (the plan's one treatment beam, a 0-MU beam beside it or not); a plan of more beams is refused naming
    the beams without a dose; without the RTPLAN, or given as a file, one BEAM dose is refused as before."""
    import pydicom

    src, _ = beams
    folder = tmp_path / "arc"
    folder.mkdir()
    arc = _beam(src, folder / "RD_arc.dcm", 1, 1.0)
    rtplan = write_rtplan(folder / "RP.dcm", PLAN, [1])
    expected = sitk.GetArrayFromImage(read_dose(src))
    for plan_beams in ([1], [1, (2, 0.0)]):       # a beam of 0 MU (a setup field) has no dose to add
        write_rtplan(rtplan, PLAN, plan_beams)
        notes: list = []
        record: list = []
        assert np.allclose(sitk.GetArrayFromImage(read_dose(folder, notes=notes, record=record)), expected, atol=1e-3)
        assert notes == [f"--dose {folder}: BEAM dose RD_arc.dcm used, the plan's only treatment beam: the one "
                         "treatment beam of RTPLAN RP.dcm has its dose"], notes
        assert record == [], record
        checks: list = []
        files, _ = plan_dose_files([arc], rtplans=[rtplan], checks=checks)
        assert files == [arc] and checks == ["the one treatment beam of RTPLAN RP.dcm has its dose"], checks
        assert np.allclose(sitk.GetArrayFromImage(read_dose_sum(files)), expected, atol=1e-3)   # lungai cohort's read
    write_rtplan(rtplan, PLAN, [1, 2, 3])
    with pytest.raises(InputError, match=r"RTPLAN RP.dcm lists 3 treatment beams \(1, 2, 3\) but there is no BEAM "
                                         r"RTDOSE for beams 2, 3") as err:
        read_dose(folder)
    assert "every treatment beam" in err.value.fix
    ds = pydicom.dcmread(rtplan)            # another plan's RTPLAN: the beam's plan unknown - refused as before
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.99"
    ds.save_as(rtplan)
    for given in (folder, arc):
        with pytest.raises(InputError, match="RD_arc.dcm has DoseSummationType BEAM"):
            read_dose(given)
    rtplan.unlink()
    with pytest.raises(InputError, match="RD_arc.dcm has DoseSummationType BEAM"):
        read_dose(folder)
