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
    """An error raised again from the block is the one first raised, its traceback not growing with each raise."""
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
