"""``--rtstruct FOLDER``: users of a DICOM RT export give the RTSTRUCT's folder (``RTSTRUCT/``, or the patient's folder
mixing CT slices, RTSTRUCT, RTPLAN, RTDOSE, with or without ``.dcm``).  The folder's RTSTRUCT is found by its
headers (lungai.dicom.discover.find_rtstruct, the scan that ``lungai cohort`` uses) and named; of several, the one
matching the CT series when that makes one, else refused naming them; none: refused saying what the folder holds.
On the synthetic export (lungai.dicom.synthetic.write_rt_study, as ``lungai sample --dicom``) and the real LUNG1-003."""

from __future__ import annotations

import shutil

import pandas as pd
import pydicom
import pytest
from dicom_helpers import small_phantom
from pydicom.uid import generate_uid

from lungai.cli import main
from lungai.dicom.discover import find_rtstruct
from lungai.errors import InputError

FEW = ["--segments", "tumour", "--image-types", "Original", "--feature-classes", "shape"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lungai.dicom.synthetic import write_rt_study

    root = tmp_path_factory.mktemp("rs_folder")
    return write_rt_study(root, small_phantom(7), "P1", dose="relative"), \
        write_rt_study(root, small_phantom(8, side="left"), "P2", dose=None)


def _radiomics(ct, rtstruct, out, capsys) -> tuple[pd.DataFrame, str]:
    assert main(["radiomics", "--image", str(ct), "--rtstruct", str(rtstruct), *FEW, "-o", str(out)]) == 0
    return pd.read_csv(out), capsys.readouterr().err


def _copy_rtstruct(src, dst, label: str):
    """Another structure set on the same CT (a new SOPInstanceUID, another label): as a plan revision exports it."""
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StructureSetLabel = label
    ds.StructureSetDate = "20240102"
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)
    return dst


def test_the_rtstruct_folder_gives_the_same_csv_as_its_file_and_is_named(study, tmp_path, capsys):
    p1, _ = study
    by_file, _ = _radiomics(p1["ct"], p1["rtstruct"], tmp_path / "file.csv", capsys)
    by_folder, err = _radiomics(p1["ct"], p1["rtstruct"].parent, tmp_path / "folder.csv", capsys)
    pd.testing.assert_frame_equal(by_file, by_folder)
    assert f"--rtstruct {p1['rtstruct'].parent}: using the RTSTRUCT rtstruct.dcm (the only one there)" in err
    # dose-features records the file used in its masks column, as with the file
    assert main(["dose-features", "--dose", str(p1["dose"]), "--ct", str(p1["ct"]), "--rtstruct",
                 str(p1["root"]), "-o", str(tmp_path / "d.csv")]) == 0
    assert "using the RTSTRUCT RTSTRUCT/rtstruct.dcm" in capsys.readouterr().err
    assert "rtstruct.dcm" in pd.read_csv(tmp_path / "d.csv")["masks"].iloc[0]


def test_a_mixed_flat_export_without_dcm_names(study, tmp_path, capsys):
    """One folder with the CT slices, the RTSTRUCT and the RTDOSE, no .dcm extensions, and a non-DICOM file."""
    p1, _ = study
    flat = tmp_path / "export"
    flat.mkdir()
    for i, f in enumerate(sorted(p1["ct"].iterdir())):
        shutil.copy(f, flat / f"CT{i:04d}")
    shutil.copy(p1["rtstruct"], flat / "RS_plan")
    shutil.copy(p1["dose"], flat / "RD_plan")
    (flat / "README.txt").write_text("exported by the TPS\n")
    (flat / "sub").mkdir()
    assert find_rtstruct(flat) == (flat / "RS_plan", f"--rtstruct {flat}: using the RTSTRUCT RS_plan (the only one "
                                                     "there)")
    by_file, _ = _radiomics(p1["ct"], p1["rtstruct"], tmp_path / "file.csv", capsys)
    by_folder, err = _radiomics(flat, flat, tmp_path / "folder.csv", capsys)
    pd.testing.assert_frame_equal(by_file.drop(columns="case"), by_folder.drop(columns="case"))


def test_of_two_rtstructs_the_one_of_the_ct_is_used(study, tmp_path, capsys):
    p1, p2 = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "a.dcm")
    shutil.copy(p2["rtstruct"], folder / "b.dcm")
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "a.dcm" and "references the CT series" in note and "left out: b.dcm" in note
    assert find_rtstruct(folder, p2["ct"])[0] == folder / "b.dcm"
    by_file, _ = _radiomics(p1["ct"], p1["rtstruct"], tmp_path / "file.csv", capsys)
    by_folder, err = _radiomics(p1["ct"], folder, tmp_path / "folder.csv", capsys)
    pd.testing.assert_frame_equal(by_file, by_folder)
    assert "using the RTSTRUCT a.dcm" in err


def test_two_rtstructs_of_the_ct_are_refused_naming_them(study, tmp_path, capsys):
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "a.dcm")
    _copy_rtstruct(p1["rtstruct"], folder / "rev2" / "b.dcm", "plan rev2")
    for ct in (p1["ct"], None):
        with pytest.raises(InputError) as exc:
            find_rtstruct(folder, ct)
        said = str(exc.value)
        assert "holds 2 RTSTRUCTs" in said and "ambiguous" in said, said
        assert "a.dcm (label 'synthetic'" in said and "rev2/b.dcm (label 'plan rev2', date 20240102, 3 ROIs)" in said
        assert exc.value.fix.startswith(f"give the RTSTRUCT file itself, e.g. --rtstruct {folder / 'a.dcm'}")
    assert main(["radiomics", "--image", str(p1["ct"]), "--rtstruct", str(folder), *FEW,
                 "-o", str(tmp_path / "o" / "r.csv")]) != 0
    assert "2 reference the CT series" in capsys.readouterr().err and not (tmp_path / "o" / "r.csv").exists()


def test_two_rtstructs_of_the_ct_are_refused_naming_what_each_holds(study, tmp_path):
    """QA dicom72 (LUNG1-003's RTSTRUCT beside lungai's own rtstruct.dcm of it, both referencing the CT, given as
    ``radiomics --rtstruct FOLDER --structure GTV-1``): each was named by its label, date and ROI count only - which
    one holds the structure asked for was not said.  Each is named with its contoured structures too."""
    from lungai.dicom.rtstruct import list_structures

    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "a.dcm")
    names = [str(n) for n in list_structures(p1["rtstruct"])]
    rev = pydicom.dcmread(_copy_rtstruct(p1["rtstruct"], folder / "b.dcm", "plan rev2"))
    rev.StructureSetROISequence[0].ROIName = "GTV_rev2"
    last = rev.StructureSetROISequence[-1].ROINumber
    for roi in rev.ROIContourSequence:
        if roi.ReferencedROINumber == last:
            del roi.ContourSequence     # a template's empty structure: not contoured
    rev.save_as(folder / "b.dcm")
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder, p1["ct"])
    said = exc.value.problem
    assert "a.dcm (label 'synthetic', date " in said and f" - contoured: {', '.join(names)};" in said, said
    assert said.endswith(f"b.dcm (label 'plan rev2', date 20240102, 3 ROIs) - contoured: GTV_rev2, "
                         f"{', '.join(names[1:-1])}"), said


def test_a_folder_without_an_rtstruct_is_refused_saying_what_it_holds(study, tmp_path, capsys):
    p1, _ = study
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=f"--rtstruct {empty}: no DICOM RTSTRUCT .*found no files"):
        find_rtstruct(empty)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="found 1 file, none a DICOM CT, RTSTRUCT, RTDOSE or SEG"):
        find_rtstruct(empty)
    with pytest.raises(InputError, match=r"found \d+ files: P1: CT 36 slices, 0 RTSTRUCT, 0 RTDOSE"):
        find_rtstruct(p1["ct"])
    assert main(["radiomics", "--image", str(p1["ct"]), "--rtstruct", str(empty), *FEW,
                 "-o", str(tmp_path / "r.csv")]) != 0
    assert "no DICOM RTSTRUCT (modality RTSTRUCT) in this folder" in capsys.readouterr().err


@pytest.mark.shared_data
def test_real_lung1_003_rtstruct_folder_and_patient_folder(shared_data, tmp_path, capsys):
    patient = shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003"
    (rs,) = sorted((patient / "RTSTRUCT").iterdir())
    assert find_rtstruct(patient / "RTSTRUCT", patient / "CT")[0] == rs
    assert find_rtstruct(patient, patient / "CT")[0] == rs
    by_file, _ = _radiomics(patient / "CT", rs, tmp_path / "file.csv", capsys)
    for given in (patient / "RTSTRUCT", patient):
        by_folder, err = _radiomics(patient / "CT", given, tmp_path / f"{given.name}.csv", capsys)
        pd.testing.assert_frame_equal(by_file, by_folder)
        assert f"using the RTSTRUCT {rs.relative_to(given)}" in err


def test_demo_takes_the_rtstruct_folder(study, tmp_path, monkeypatch, capsys):
    """``lungai demo --rtstruct FOLDER`` (and run_demo): the folder's RTSTRUCT is read for the dose masks before the
    segmentation; a folder without one is refused before any work."""
    import lungai.lungs
    from lungai.demo import run_demo

    def reached(*a, **k):
        raise RuntimeError("segmentation reached")

    monkeypatch.setattr(lungai.lungs, "segment_lungs", reached)
    p1, _ = study
    with pytest.raises(RuntimeError, match="segmentation reached"):
        run_demo(tmp_path / "out", ct_path=p1["ct"], dose=p1["dose"], rtstruct=p1["root"])
    assert f"--rtstruct {p1['root']}: using the RTSTRUCT RTSTRUCT/rtstruct.dcm" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no DICOM RTSTRUCT"):
        run_demo(tmp_path / "out2", ct_path=p1["ct"], dose=p1["dose"], rtstruct=empty)
    assert not (tmp_path / "out2").exists()


def _frame_only(src, dst, label: str, frame: str | None = None):
    """Another structure set that references only the frame of reference (RTReferencedStudySequence is optional and
    left out, as some planning systems export it); ``frame``: another FrameOfReferenceUID."""
    ds = pydicom.dcmread(_copy_rtstruct(src, dst, label))
    for fr in ds.ReferencedFrameOfReferenceSequence:
        if "RTReferencedStudySequence" in fr:
            del fr.RTReferencedStudySequence
        if frame:
            fr.FrameOfReferenceUID = frame
    if frame:
        for roi in ds.StructureSetROISequence:
            roi.ReferencedFrameOfReferenceUID = frame
    ds.save_as(dst)
    return dst


def test_one_referencing_the_series_does_not_win_over_one_of_the_frame_without_series(study, tmp_path):
    """The series reference is optional: an RTSTRUCT in the CT's frame without it may be the clinical set, so the
    one referencing the series is chosen only when no other is in the CT's frame of reference."""
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "RS_auto.dcm")
    _frame_only(p1["rtstruct"], folder / "RS_clin.dcm", "clinical")
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder, p1["ct"])
    said = str(exc.value)
    assert "2 are in the CT's frame of reference" in said and "only 1 references its series" in said, said
    assert "RS_auto.dcm (label 'synthetic'" in said and "RS_clin.dcm (label 'clinical'" in said


def test_one_drawn_on_another_series_of_the_frame_does_not_compete_with_the_cts(study, tmp_path):
    """An RTSTRUCT naming another series of the CT's frame of reference (e.g. a 4D average) was drawn on that
    series: the one naming the CT's series is used, as lungai cohort does."""
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "RS_ct.dcm")
    other = pydicom.dcmread(_copy_rtstruct(p1["rtstruct"], folder / "RS_avg.dcm", "average"))
    for fr in other.ReferencedFrameOfReferenceSequence:
        for st in fr.RTReferencedStudySequence:
            for se in st.RTReferencedSeriesSequence:
                se.SeriesInstanceUID = generate_uid()
    other.save_as(folder / "RS_avg.dcm")
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "RS_ct.dcm" and "it references the CT series" in note and "left out: RS_avg.dcm" in note


def test_the_note_names_each_rtstruct_why_it_was_left_out_and_how_to_choose_it(study, tmp_path):
    """QA dicom72 (LUNG1-003's RTSTRUCT and a replan of it drawn on another series of its frame of reference in one
    folder): the note said "using the RTSTRUCT RS_a.dcm (it references the CT series X, no other is in its frame of
    reference without a series of its own; left out: RS_b.dcm)" - which plan each file is, why the other was left
    out and how to use it were not said.  Each is named as the refusals name it (label, date, ROI count), the one
    left out with why, and the fix: its file given as --rtstruct."""
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "RS_ct.dcm")
    other = pydicom.dcmread(_copy_rtstruct(p1["rtstruct"], folder / "RS_avg.dcm", "average"))
    drawn_on = generate_uid()
    for fr in other.ReferencedFrameOfReferenceSequence:
        for st in fr.RTReferencedStudySequence:
            for se in st.RTReferencedSeriesSequence:
                se.SeriesInstanceUID = drawn_on
    other.save_as(folder / "RS_avg.dcm")
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "RS_ct.dcm", note
    assert f"--rtstruct {folder} holds 2 RTSTRUCTs: using the RTSTRUCT RS_ct.dcm (label 'synthetic', date " in note
    assert "no other is in its frame of reference without a series of its own" not in note, note
    assert ("left out: RS_avg.dcm (label 'average', date " in note and f"drawn on series {drawn_on}, another series "
            "of the CT's frame of reference)" in note), note
    assert note.endswith(f"to use another, give its file: --rtstruct {folder / 'RS_avg.dcm'}"), note
    # one of another frame of reference: said so
    _frame_only(p1["rtstruct"], folder / "RS_avg.dcm", "other frame", frame=(frame := generate_uid()))
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "RS_ct.dcm" and "(label 'other frame', date " in note, note
    assert f"in frame of reference {frame}, not the CT's)" in note, note


def test_of_two_rtstructs_without_series_the_one_in_the_cts_frame_is_used(study, tmp_path):
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    _frame_only(p1["rtstruct"], folder / "a.dcm", "in frame")
    _frame_only(p1["rtstruct"], folder / "b.dcm", "other frame", frame=generate_uid())
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "a.dcm" and "it is the only one in the CT's frame of reference" in note and "left out: b.dcm" in note
    _frame_only(p1["rtstruct"], folder / "b.dcm", "also in frame")
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder, p1["ct"])
    said = str(exc.value)
    assert "holds 2 RTSTRUCTs and 2 are in the CT's frame of reference" in said and \
        "none references its series" in said, said
    assert "a.dcm (label 'in frame'" in said and "b.dcm (label 'also in frame'" in said


def test_lungais_own_rtstruct_in_the_folder_is_said(study, tmp_path):
    from lungai.io.outputs import record_output_file

    p1, _ = study
    folder = tmp_path / "out"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "rtstruct.dcm")
    record_output_file(folder / "rtstruct.dcm", "segment")
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder, p1["ct"])
    said = str(exc.value)
    assert "found no files" not in said and "left out 1 DICOM file lungai wrote in" in said, said
    assert ".lungai-segment" in said
    _copy_rtstruct(p1["rtstruct"], folder / "RS_plan.dcm", "plan")
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "RS_plan.dcm" and "(the only one there)" in note
    assert "left out 1 DICOM file lungai wrote in" in note, note


def test_a_truncated_rtstruct_is_said_unreadable(study, tmp_path):
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "a.dcm")
    (folder / "b.dcm").write_bytes(p1["rtstruct"].read_bytes()[:600])
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "a.dcm" and "left out: b.dcm (unreadable (truncated?))" in note, note
    # an RTSTRUCT cut short in its header is no RTSTRUCT to choose (spacing63): without a CT the readable one is used,
    # the other said left out - never passed over in silence (before this fix the note named only a.dcm)
    file, note = find_rtstruct(folder)
    assert file == folder / "a.dcm" and "the only one there; left out: b.dcm (unreadable (truncated?))" in note, note


def test_unreadable_files_are_named_when_no_rtstruct_is_found(tmp_path, study):
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    (folder / "RS.dcm").write_bytes(p1["rtstruct"].read_bytes()[:100])
    (folder / "RS_link.dcm").symlink_to(tmp_path / "gone.dcm")
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder)
    said = str(exc.value)
    assert "RS.dcm" in said and "RS_link.dcm" in said and "dangling link" in said, said
    assert f"--rtstruct {folder / 'RS.dcm'}" in exc.value.fix, exc.value.fix


def test_byte_identical_copies_are_one_rtstruct(study, tmp_path):
    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    shutil.copy(p1["rtstruct"], folder / "a.dcm")
    (folder / "copy").mkdir()
    shutil.copy(p1["rtstruct"], folder / "copy" / "a.dcm")
    file, note = find_rtstruct(folder, p1["ct"])
    assert file == folder / "a.dcm" and "byte-identical copy" in note and "copy/a.dcm" in note, note
    ds = pydicom.dcmread(p1["rtstruct"])       # same SOPInstanceUID, other contents: still ambiguous
    ds.StructureSetLabel = "edited"
    ds.save_as(folder / "copy" / "a.dcm")
    with pytest.raises(InputError, match="ambiguous"):
        find_rtstruct(folder, p1["ct"])


def test_the_folder_note_goes_to_stderr_in_every_command(study, tmp_path, capsys):
    from lungai.dicom.rtstruct import rtstruct_option

    p1, _ = study
    assert main(["dose-features", "--dose", str(p1["dose"]), "--ct", str(p1["ct"]), "--rtstruct",
                 str(p1["root"]), "-o", str(tmp_path / "d.csv")]) == 0
    out, err = capsys.readouterr()
    assert "using the RTSTRUCT RTSTRUCT/rtstruct.dcm" in err and "using the RTSTRUCT" not in out
    rtstruct_option(p1["root"], p1["ct"])
    out, err = capsys.readouterr()
    assert "note: --rtstruct" in err and not out


def _with_second_series(ct, folder):
    """``folder``: the CT's slices and a second reconstruction of them (own SeriesInstanceUID, same frame of
    reference), as a planning system exports a patient's CT series side by side; returns (planning UID, other UID)."""
    folder.mkdir(parents=True)
    other = generate_uid()
    planning = None
    for i, f in enumerate(sorted(p for p in ct.iterdir() if p.is_file())):
        shutil.copy(f, folder / f"a_{i:03d}.dcm")
        ds = pydicom.dcmread(f)
        planning = str(ds.SeriesInstanceUID)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = other, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber, ds.SeriesDescription = 3, "lung kernel"
        ds.save_as(folder / f"b_{i:03d}.dcm")
    return planning, other


def _drawn_on(path, series: str):
    ds = pydicom.dcmread(path)
    for fr in ds.ReferencedFrameOfReferenceSequence:
        for st in fr.RTReferencedStudySequence:
            for se in st.RTReferencedSeriesSequence:
                se.SeriesInstanceUID = series
    ds.save_as(path)


@pytest.mark.parametrize("revision_on", ["planning", "other"])
def test_rtstructs_with_a_ct_folder_of_several_series_none_chosen_name_each_ones_series(study, tmp_path, capsys,
                                                                                         revision_on):
    """QA (rtfolder60: LUNG1-003's CT + a second reconstruction in one folder with two RTSTRUCTs, plan versions):
    the RTSTRUCTs were matched against the series of the folder's first file, one the user never chose - refused as
    "2 reference the CT series X" with the fix "--rtstruct RS_1.dcm" (then the CT read refused the folder), or, with
    the revision drawn on the other series, one was used ("using RS_1.dcm (it references the CT series X ...)").  Both
    are refused naming the series each was drawn on, and the fix gives --series and the RTSTRUCT; with --series the
    one drawn on that series is used."""
    p1, _ = study
    folder = tmp_path / "patient"
    planning, other = _with_second_series(p1["ct"], folder)
    shutil.copy(p1["rtstruct"], folder / "RS_1.dcm")
    _copy_rtstruct(p1["rtstruct"], folder / "RS_2.dcm", "plan rev2")
    if revision_on == "other":
        _drawn_on(folder / "RS_2.dcm", other)
    rev2 = planning if revision_on == "planning" else other
    with pytest.raises(InputError) as exc:
        find_rtstruct(folder, folder)
    problem, fix = exc.value.problem, exc.value.fix
    assert "the CT" in problem and "holds 2 CT series, none chosen with --series" in problem, problem
    assert "RS_1.dcm (label 'synthetic', date " in problem and f"drawn on CT series {planning})" in problem
    assert f"RS_2.dcm (label 'plan rev2', date 20240102, 3 ROIs, drawn on CT series {rev2})" in problem
    assert f"--series {planning} --rtstruct {folder / 'RS_1.dcm'}" in fix, fix
    # the fix works: with the series chosen, its RTSTRUCT (or, both on it, the refusal naming the two)
    if revision_on == "other":
        assert find_rtstruct(folder, folder, series_uid=other)[0] == folder / "RS_2.dcm"
        assert find_rtstruct(folder, folder, series_uid=planning)[0] == folder / "RS_1.dcm"
    assert main(["radiomics", "--image", str(folder), "--series", planning, "--rtstruct", str(folder / "RS_1.dcm"),
                 *FEW, "-o", str(tmp_path / "r.csv")]) == 0
    capsys.readouterr()
    # one RTSTRUCT in the folder: used as before (the CT read names the series it was drawn on)
    (folder / "RS_2.dcm").unlink()
    assert find_rtstruct(folder, folder)[0] == folder / "RS_1.dcm"


def test_dose_features_says_the_rtstruct_used_on_a_line_of_its_own_beside_its_bar(study, tmp_path, capsys,
                                                                                  monkeypatch):
    """QA rad67 (``lungai dose-features --rtstruct LUNG1-003/RTSTRUCT`` into a log): the note naming the RTSTRUCT of
    the folder was glued to the end of the bar's record, ``dose-features:   0%|          | 0/5 [00:00<?, ?it/s]note:
    --rtstruct ...: using the RTSTRUCT ...`` (in a terminal to the bar's line): dose-features draws its bar before the
    folder is searched, and the note was printed past it.  It goes through lungai.progress.write now."""
    p1, _ = study
    monkeypatch.setenv("LUNGAI_PROGRESS", "bar")       # stderr no terminal here: a log's records
    capsys.readouterr()
    assert main(["dose-features", "--dose", str(p1["dose"]), "--ct", str(p1["ct"]), "--rtstruct",
                 str(p1["rtstruct"].parent), "-o", str(tmp_path / "d.csv")]) == 0
    err = capsys.readouterr().err
    said = [r for r in err.replace("\r", "\n").splitlines() if "using the RTSTRUCT rtstruct.dcm" in r]
    assert said == [f"note: --rtstruct {p1['rtstruct'].parent}: using the RTSTRUCT rtstruct.dcm (the only one "
                    "there)"], err


def test_an_ambiguous_folders_fix_gives_the_rtstruct_that_holds_the_structure_asked(study, tmp_path, capsys):
    """QA smallfix72 (LUNG1-003's RTSTRUCT beside a copy of it without its GTVs, ``--rtstruct FOLDER --structure
    GTV-1``): refused as ambiguous (right), but the fix always gave the first file - the copy, which does not hold
    GTV-1.  It gives the file(s) contouring the structure(s) asked now; a role or nothing asked: the first file."""
    from lungai.dicom.rtstruct import list_structures

    p1, _ = study
    folder = tmp_path / "RTSTRUCT"
    folder.mkdir()
    gtv = str(list_structures(p1["rtstruct"])[0])
    assert gtv.lower().startswith("gtv"), gtv
    copy = pydicom.dcmread(_copy_rtstruct(p1["rtstruct"], folder / "a.dcm", "no GTV"))
    number = copy.StructureSetROISequence[0].ROINumber
    for roi in copy.ROIContourSequence:
        if roi.ReferencedROINumber == number:
            del roi.ContourSequence     # the GTV left empty: the copy does not contour it
    copy.save_as(folder / "a.dcm")
    shutil.copy(p1["rtstruct"], folder / "b.dcm")
    for asked in ([gtv], [gtv.upper()]):            # a name chooses ignoring letter case, as the reader's
        with pytest.raises(InputError) as exc:
            find_rtstruct(folder, p1["ct"], structures=asked)
        assert "ambiguous" in exc.value.problem and " - contoured: " in exc.value.problem
        assert exc.value.fix == f"give the RTSTRUCT file that contours {asked[0]}: --rtstruct {folder / 'b.dcm'}"
    for asked in ((), ["role:gtv"], [None], ["no_such_structure"]):   # nothing chooses: the first file, as before
        with pytest.raises(InputError) as exc:
            find_rtstruct(folder, p1["ct"], structures=asked)
        assert exc.value.fix == f"give the RTSTRUCT file itself, e.g. --rtstruct {folder / 'a.dcm'}", asked
    # the commands pass what they ask for: radiomics --structure, lungs --gtv
    for command in (["radiomics", "--image", str(p1["ct"]), "--rtstruct", str(folder), "--structure", gtv, *FEW,
                     "-o", str(tmp_path / "o" / "r.csv")],
                    ["lungs", str(p1["ct"]), "--rtstruct", str(folder), "--gtv", gtv,
                     "-o", str(tmp_path / "o" / "lungs.nii.gz")]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert f"give the RTSTRUCT file that contours {gtv}: --rtstruct {folder / 'b.dcm'}" in err, (command, err)
    assert not (tmp_path / "o").exists()
