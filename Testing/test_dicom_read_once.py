"""An RTSTRUCT read once: by a scan and the planning after it, by a command (however many structures / roles it takes),
and when it cannot be read (its error kept, not read again) - QA dicomread65."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicom_helpers import small_phantom


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lungai.dicom.synthetic import write_rt_study

    root = tmp_path_factory.mktemp("readonce") / "P1"
    return write_rt_study(root, small_phantom(7), "P1", dose=None)


def _counting(monkeypatch, path):
    """The reads of ``path`` (every pydicom parse of it: ``full`` those of the whole file, ``all`` every one)."""
    import pydicom.filereader

    import lungai.dicom.discover as discover

    target = Path(path).resolve()
    reads = {"all": 0, "full": 0}
    read_partial, read_to_end = pydicom.filereader.read_partial, discover.read_to_end

    def counted_partial(fp, *args, **kwargs):
        if Path(str(getattr(fp, "name", ""))).resolve() == target:
            reads["all"] += 1
        return read_partial(fp, *args, **kwargs)

    def counted_to_end(p, *args, **kwargs):
        if Path(p).resolve() == target:
            reads["full"] += 1
        return read_to_end(p, *args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_partial", counted_partial)
    monkeypatch.setattr(discover, "read_to_end", counted_to_end)
    return reads


def test_a_scan_and_the_planning_after_it_read_the_rtstruct_once(study, monkeypatch):
    """QA dicomread65: ``lungai cohort``'s scan and planning (in its read_once block) parsed LUNG1-003's RTSTRUCT 4
    times - the scan's header, its check that the file is whole, its references, then the planning's read of its
    structures (2 of them reads of the whole file; ~0.09 s each).  Now its header and one whole read, shared."""
    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.rtstruct import read_once

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    reads = _counting(monkeypatch, study["rtstruct"])
    with read_once(files=1):
        jobs, inventory = plan_cohort(study["root"])
    (job,) = jobs
    assert Path(job.rtstruct).resolve() == Path(study["rtstruct"]).resolve()
    (row,) = inventory.itertuples(index=False)
    assert row.lungs_from.startswith("RTSTRUCT") and row.tumour_from.startswith("RTSTRUCT"), row
    assert reads == {"all": 2, "full": 1}, reads


def test_a_broken_rtstruct_is_read_once_and_refused_alike_each_time(study, tmp_path, monkeypatch):
    """QA dicomread65: an RTSTRUCT that cannot be read was read again (and its error built again) by each structure /
    role asked of it in a read_once block - 4 full reads in cohort's planning.  Its error is kept: raised again, the
    same words, the file read once; changed on disk, it is read again; outside a block every call reads it."""
    import lungai.dicom.rtstruct as rtstruct
    from lungai.errors import InputError

    ds = pydicom.dcmread(study["rtstruct"])
    del ds.StructureSetROISequence          # a Type 1 sequence gone: refused as cut short
    broken = tmp_path / "broken.dcm"
    ds.save_as(broken)
    reads = _counting(monkeypatch, broken)
    errors = []
    with rtstruct.read_once(files=1):
        for ask in (rtstruct.list_structures, rtstruct.contoured_structures, rtstruct.read_structures,
                    rtstruct.list_structures):
            with pytest.raises(InputError) as exc:
                ask(broken)
            errors.append(str(exc.value))
        assert reads["full"] == 1, reads
        assert len(set(errors)) == 1 and "truncated" in errors[0] and "StructureSetROISequence" in errors[0], errors
        assert "re-export the RTSTRUCT" in errors[0]
        ds.StructureSetLabel = "a new label"     # another size
        ds.save_as(broken)
        with pytest.raises(InputError):
            rtstruct.list_structures(broken)
        assert reads["full"] == 2, reads
    with pytest.raises(InputError):
        rtstruct.list_structures(broken)
    with pytest.raises(InputError):
        rtstruct.list_structures(broken)
    assert reads["full"] == 4, reads


def test_a_kept_error_keeps_its_first_traceback(study, tmp_path):
    """An error raised again from the block is (a copy of) the one first raised, its traceback not growing with each
    raise."""
    import traceback

    import lungai.dicom.rtstruct as rtstruct
    from lungai.errors import InputError

    broken = tmp_path / "notdicom.dcm"
    broken.write_bytes(b"not a DICOM file at all" * 20)
    depths = []
    with rtstruct.read_once():
        for _ in range(3):
            with pytest.raises(InputError) as exc:
                rtstruct.list_structures(broken)
            depths.append(len(traceback.extract_tb(exc.value.__traceback__)))
    assert depths[1] == depths[2] <= depths[0] + 2, depths


def test_a_command_reads_its_rtstruct_once(study, tmp_path, monkeypatch):
    """QA dicomread65: ``lungai radiomics --rtstruct FOLDER`` (lungs and tumour by role) read LUNG1-003's RTSTRUCT in
    full 11 times and in part 8 more (each role, each structure, the series check of each, the folder's scan): ~2.5 s
    of parsing.  ``lungai dicom-scan --structures`` read it whole twice.  Every command now reads an RTSTRUCT once."""
    from lungai.cli import main

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    reads = _counting(monkeypatch, study["rtstruct"])
    out = tmp_path / "features.csv"
    assert main(["radiomics", "--image", str(study["ct"]), "--rtstruct", str(study["root"]),
                 "--feature-classes", "firstorder", "--image-types", "Original", "-o", str(out)]) == 0
    assert out.is_file()
    assert reads["full"] == 1 and reads["all"] <= 4, reads
    reads.update(all=0, full=0)
    assert main(["dicom-scan", str(study["root"]), "--structures"]) == 0
    assert reads == {"all": 2, "full": 1}, reads


def test_a_cohort_of_several_patients_reads_each_rtstruct_once(tmp_path, monkeypatch):
    """QA dicomfollow65: in a read_once block keeping one file (``lungai cohort``'s), the scan's whole read of each
    patient's RTSTRUCT was dropped by the next patient's before the planning reached it: every RTSTRUCT but the
    last was read whole twice (3 parses).  The scan now keeps its contoured structures' names for the planning."""
    from dicom_helpers import rt_export

    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.rtstruct import contoured_structures, read_once

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    studies = rt_export(tmp_path / "export")
    paths = [Path(s["rtstruct"]) for s in studies.values()]
    expected = {p.resolve(): contoured_structures(p) for p in paths}      # outside a block: read on their own
    counted = {p.resolve(): _counting(monkeypatch, p) for p in paths}
    with read_once(files=1):
        jobs, inventory = plan_cohort(tmp_path / "export")
        assert {Path(j.rtstruct).resolve() for j in jobs if j.rtstruct} == set(expected)
        assert all(contoured_structures(p) == expected[p.resolve()] for p in paths)     # the names as read alone
    assert {str(p): r for p, r in counted.items()} == {str(p): {"all": 2, "full": 1} for p in counted}
    assert len(inventory) == 3 and all(r.lungs_from.startswith("RTSTRUCT") for r in inventory.itertuples())


def _undefined_lengths(ds) -> None:
    """Every sequence and item of ``ds`` written with undefined length, as planning systems write them (LUNG1-003's
    RTSTRUCT): pydicom then parses them as it reads the file, ``specific_tags`` or not."""
    for element in ds:
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


@pytest.fixture
def parsed_study(tmp_path):
    """A study whose RTSTRUCT's sequences are of undefined length (:func:`_undefined_lengths`)."""
    from lungai.dicom.synthetic import write_rt_study

    study = write_rt_study(tmp_path / "P1", small_phantom(7), "P1", dose=None)
    ds = pydicom.dcmread(study["rtstruct"])
    _undefined_lengths(ds)
    ds.save_as(study["rtstruct"])
    return study


def _counting_items(monkeypatch, path):
    """The sequence items pydicom parses from ``path`` as it reads it ({"n": count})."""
    import pydicom.filereader

    target = Path(path).resolve()
    items = {"n": 0}
    read_item = pydicom.filereader.read_sequence_item

    def counted(fp, *args, **kwargs):
        if Path(str(getattr(fp, "name", ""))).resolve() == target:
            items["n"] += 1
        return read_item(fp, *args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_sequence_item", counted)
    return items


def test_the_scan_reads_an_rtstructs_contours_once(parsed_study, monkeypatch):
    """QA dicomfollow65: the scan's header read of each file (``specific_tags``) parsed an RTSTRUCT's every contour
    before its Modality was known (pydicom reads every element for ``specific_tags``; ~0.13 s for LUNG1-003's), then
    its whole read parsed them again.  Its header read stops before its structure set (group 3006): the contours
    are parsed once, by the whole read; what the scan finds is unchanged."""
    from lungai.dicom.discover import _TAGS, _header, read_to_end, scan

    target = Path(parsed_study["rtstruct"]).resolve()
    items = _counting_items(monkeypatch, target)
    read_to_end(target)
    whole, items["n"] = items["n"], 0
    assert whole > 20, whole        # its contours' items
    (st,) = scan(parsed_study["root"])
    assert [Path(p).resolve() for p in st.rtstruct] == [target]
    assert whole <= items["n"] <= whole + 2, (items["n"], whole)
    head = _header(target, rtstruct_head=True)
    full = pydicom.dcmread(target, stop_before_pixels=True, specific_tags=_TAGS)
    assert {e.keyword: e.value for e in head} == {e.keyword: e.value for e in full}


def test_a_command_parses_its_rtstructs_contours_once(parsed_study, tmp_path, monkeypatch):
    """QA dicomfollow65: ``lungai radiomics --rtstruct FOLDER`` parsed LUNG1-003's RTSTRUCT's contours 4 times (~0.13 s
    each): the scan's header read, its whole read, the facts of the RTSTRUCT found in the folder (its label, date,
    ROI count) and the output-folder check of the input's Modality - each partial read with ``specific_tags`` parsing
    the whole file.  Now once: the facts from the whole read, the Modality read up to it."""
    from lungai.cli import main
    from lungai.dicom.discover import read_to_end

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    items = _counting_items(monkeypatch, parsed_study["rtstruct"])
    read_to_end(parsed_study["rtstruct"])
    whole, items["n"] = items["n"], 0
    out = tmp_path / "features.csv"
    assert main(["radiomics", "--image", str(parsed_study["ct"]), "--rtstruct", str(parsed_study["root"]),
                 "--feature-classes", "firstorder", "--image-types", "Original", "-o", str(out)]) == 0
    assert out.is_file()
    assert whole <= items["n"] <= whole + 2, (items["n"], whole)
    items["n"] = 0
    assert main(["radiomics", "--image", str(parsed_study["ct"]), "--rtstruct", str(parsed_study["rtstruct"]),
                 "--feature-classes", "firstorder", "--image-types", "Original", "-o", str(tmp_path / "f2.csv")]) == 0
    assert whole <= items["n"] <= whole + 2, (items["n"], whole)


def _chain(exc):
    """``exc`` and the errors it was raised from or during (its ``__cause__`` / ``__context__``)."""
    seen = []
    while exc is not None and all(exc is not s for s in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _kept_errors():
    """The errors the enclosing read_once block keeps (every file, every result)."""
    from lungai.dicom.once import _READ_ONCE

    import types

    cache = _READ_ONCE.get()
    kept = [failed if isinstance(failed, tuple) else (failed,) for kind in ("files", "names")
            for entry in cache[kind].values() for _, failed in entry.values() if failed is not None]
    assert not any(isinstance(part, types.TracebackType) for parts in kept for part in parts), "a traceback kept"
    return [part for parts in kept for part in parts if isinstance(part, BaseException)]


def test_a_kept_error_holds_no_frames(study, tmp_path):
    """QA cohortread66: a kept error held its traceback - the frames of the read that failed, and their locals (the
    data set read up to where the file was cut) - for the whole command, in the results kept for every file: a
    cohort's planning of 6 copies of LUNG1-003's RTSTRUCT cut short held 21.4 MB.  The error is kept without its
    frames (its type, its words, the error it was raised from), and each raise is a copy of it: the caller's
    traceback goes with the caller's error, never into the block."""
    import lungai.dicom.rtstruct as rtstruct
    from lungai.errors import InputError

    data = Path(study["rtstruct"]).read_bytes()
    broken = tmp_path / "cut.dcm"
    broken.write_bytes(data[:len(data) - 200])
    with rtstruct.read_once(files=1):
        raised = []
        for ask in (rtstruct.contoured_structures, rtstruct.list_structures, rtstruct.contoured_structures):
            with pytest.raises(InputError) as exc:
                ask(broken)
            raised.append(exc.value)
        assert exc.value.__traceback__ is not None          # the caller's error keeps the caller's traceback
        kept = _kept_errors()
        assert kept, "the error is kept"
        assert all(e.__traceback__ is None for k in kept for e in _chain(k)), \
            [(type(e).__name__, e.__traceback__) for k in kept for e in _chain(k)]
        assert len({str(e) for e in raised}) == 1 and "truncated" in str(raised[0])
        assert all(type(e) is type(raised[0]) for e in raised)
        assert not any(e is k for e in raised[1:] for k in kept)     # a copy raised, not the kept one


@pytest.mark.shared_data
def test_broken_rtstructs_kept_as_errors_hold_little_memory(shared_data, tmp_path):
    """QA cohortread66: 6 copies of LUNG1-003's RTSTRUCT cut short (an interrupted copy of an export), asked for
    their structures in a read_once block keeping one file (``lungai cohort``'s planning), held 21.4 MB through the
    kept errors' frames (each the data set read up to the cut: all its contours, the file cut inside its last
    element) - 17.8-22.2 MB more than the one file's read the block keeps; the errors alone are a few kB."""
    import gc
    import tracemalloc

    import lungai.dicom.rtstruct as rtstruct
    from lungai.errors import InputError

    (source,) = (shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "RTSTRUCT").glob("*.dcm")
    data = source.read_bytes()
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"rs{i}.dcm")
        paths[-1].write_bytes(data[:len(data) - 1 - i])     # inside its last element
    gc.collect()
    tracemalloc.start()
    try:
        with rtstruct.read_once(files=1):
            held = []
            for p in paths:
                with pytest.raises(InputError, match="truncated"):
                    rtstruct.contoured_structures(p)
                gc.collect()
                held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        for p in paths:             # the copies of a patient's data: not left in pytest's kept temporary folders
            p.unlink(missing_ok=True)
    # the block keeps one file's whole read (the last: ~3.6 MB); the 5 errors before it a few kB
    assert held[-1] - held[0] < 1_000_000, f"{(held[-1] - held[0]) / 1e6:.1f} MB more held by 5 more kept errors"


def test_a_mask_files_modality_is_read_without_its_contours(parsed_study, monkeypatch):
    """QA cohortread66: a mask option's check of a DICOM file's Modality (is it a SEG or an RTSTRUCT?) read it with
    ``specific_tags``, which pydicom reads through every element after: LUNG1-003's RTSTRUCT given as ``--mask``
    was parsed whole (0.11-0.26 s) only to be refused as "an RTSTRUCT (contours), not a mask image".  The file is now
    read up to its Modality."""
    from lungai.errors import InputError
    from lungai.io.read import _dicom_modality, read_mask

    items = _counting_items(monkeypatch, parsed_study["rtstruct"])
    assert _dicom_modality(Path(parsed_study["rtstruct"])) == "RTSTRUCT"
    assert items["n"] == 0, items
    with pytest.raises(InputError, match="is an RTSTRUCT"):
        read_mask(parsed_study["rtstruct"])
    assert items["n"] == 0, items


def test_cohort_and_dicom_scan_list_the_folder_once(tmp_path, monkeypatch, capsys):
    """QA cohortread66: ``lungai cohort``'s planning and ``lungai dicom-scan`` walked the whole export twice - once to
    count the scan bar's steps, once in the scan (every folder listed, every lungai marker read again).  The files
    listed for the bar are the files scanned; lungai's own outputs left out of them are still said."""
    import shutil

    import lungai.dicom.discover as discover
    from dicom_helpers import rt_export

    from lungai.cli import main
    from lungai.dicom.cohort import plan_cohort
    from lungai.io.outputs import record_output_file

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    root = tmp_path / "export"
    studies = rt_export(root)
    own = Path(studies["P1"]["rtstruct"]).parent / "lungai_rtstruct.dcm"     # lungai's own RTSTRUCT in the export
    shutil.copy(studies["P3"]["rtstruct"], own)
    record_output_file(own, "segment")
    walks = []
    files_under = discover.files_under

    def counted(folder, *args, **kwargs):
        walks.append(Path(folder))
        return files_under(folder, *args, **kwargs)

    monkeypatch.setattr(discover, "files_under", counted)
    jobs, inventory = plan_cohort(root)
    assert walks == [root], walks
    assert len(jobs) == 3
    notes = " ".join(str(n) for n in inventory["notes"])
    assert "left out 1 DICOM file lungai wrote in" in notes and ".lungai-segment" in notes, notes
    walks.clear()
    capsys.readouterr()
    assert main(["dicom-scan", str(root)]) == 0
    assert walks == [root], walks
    assert "left out 1 DICOM file lungai wrote in" in capsys.readouterr().out


def test_a_patients_rtstruct_and_its_copy_are_each_parsed_once_in_planning(parsed_study, tmp_path, monkeypatch):
    """QA cohortread66: LUNG1-003 with its RTSTRUCT exported twice (a byte-identical copy in another folder):
    ``lungai cohort``'s planning parsed each copy's contours 5 times (~0.1 s each) - the scan's whole read, the facts
    that name them (label, date, ROI count) read whole again twice (the block keeping one file, the other's read
    dropped), the choice's SOPInstanceUID read with ``specific_tags`` (which reads through every contour) and the
    copy check, which compared the two files' digests with their names (never equal) and then both data sets read in
    full.  Now once each: the facts kept with the names, the UID read up to it, the bytes compared alone."""
    import shutil

    from lungai.dicom.cohort import plan_cohort
    from lungai.dicom.discover import read_to_end
    from lungai.dicom.rtstruct import read_once

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    original = Path(parsed_study["rtstruct"])
    copy = parsed_study["root"] / "RTSTRUCT_copy" / "RS_copy.dcm"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    counts = {p: _counting_items(monkeypatch, p) for p in (original, copy)}
    read_to_end(original)
    whole = counts[original]["n"]
    assert whole > 20, whole
    counts[original]["n"] = 0
    with read_once(files=1):
        jobs, inventory = plan_cohort(parsed_study["root"])
    (job,) = jobs
    (row,) = inventory.itertuples(index=False)
    assert Path(job.rtstruct).resolve() == original.resolve(), job.rtstruct
    assert "left out: a copy of" in row.notes and "RS_copy.dcm" in row.notes, row.notes
    assert {p.name: c["n"] for p, c in counts.items()} == {original.name: whole, copy.name: whole}


def test_the_exports_top_folder_is_found_without_parsing_the_rtstruct(parsed_study, monkeypatch):
    """QA cohortread66: the check that a DICOM-writing command's output folder lies outside the CT's export
    (:func:`lungai.io.outputs.dicom_export_root`) read the first DICOM file of each folder on the way for its
    StudyInstanceUID with ``specific_tags`` - an RTSTRUCT folder's file parsed whole (LUNG1-003's: 0.23-0.56 s of
    the check).  Now read up to the StudyInstanceUID; the top folder found is the same."""
    from lungai.io.outputs import dicom_export_root

    items = _counting_items(monkeypatch, parsed_study["rtstruct"])
    ct_folder = Path(parsed_study["ct"])
    ct_folder = ct_folder if ct_folder.is_dir() else ct_folder.parent
    root = Path(parsed_study["rtstruct"]).resolve().parent.parent
    assert ct_folder.resolve().parent == root
    found = dicom_export_root(ct_folder)
    assert found == root or found in root.parents, (found, root)
    assert items["n"] == 0, items
