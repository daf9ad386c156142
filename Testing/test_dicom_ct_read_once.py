"""The CT reader parses each DICOM slice once (QA export68: ``read_ct`` of LUNG1-003's 107 slices parsed each file 3
times - the series scan's header, the slice-copy check's header, then the pixel-data check's header again with the
pixel data deferred; ``lungai dicom-export``, whose checks share the headers, still 2 times:
Testing/test_dicom_export_reads_once.py), with the same image, geometry and refusals as before."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_helpers import small_phantom


def _parses(monkeypatch) -> Counter:
    """Every pydicom parse of a file's header (``pydicom.filereader.read_partial``: ``dcmread`` and lungai's partial
    reads alike), counted by the file's resolved path; a read of one element only, up to it
    (:func:`lungai.dicom.pixeldata.header_value`: the output-folder check's StudyInstanceUID of a series' first file,
    a few hundred bytes) is not counted."""
    import pydicom.filereader

    counts: Counter = Counter()
    real = pydicom.filereader.read_partial

    def counted(fp, *args, **kwargs):
        name = getattr(fp, "name", None)
        if isinstance(name, (str, Path)) and len(kwargs.get("specific_tags") or ()) != 1:
            counts[Path(name).resolve()] += 1
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(pydicom.filereader, "read_partial", counted)
    return counts


def _lung1_003_ct(shared_data) -> Path:
    return shared_data / "nsclc_whole_ct" / "dicom" / "LUNG1-003" / "CT"


def _plain_itk(folder: Path) -> sitk.Image:
    """The series as ITK alone reads it (GDCM's file order), no lungai check."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.mark.shared_data
def test_read_ct_parses_each_real_ct_slice_once_with_the_same_image(shared_data, monkeypatch):
    from lungai.io.read import SLICE_UIDS_KEY, read_ct

    folder = _lung1_003_ct(shared_data)
    files = sorted(p.resolve() for p in folder.iterdir() if p.is_file())
    counts = _parses(monkeypatch)
    ct = read_ct(str(folder))
    assert set(counts) == set(files), set(counts) ^ set(files)
    assert max(counts.values()) == 1, Counter(counts.values())      # was 3 a slice
    plain = _plain_itk(folder)
    assert ct.GetSize() == plain.GetSize() == (512, 512, 107)
    assert (ct.GetOrigin(), ct.GetSpacing(), ct.GetDirection()) == (plain.GetOrigin(), plain.GetSpacing(),
                                                                      plain.GetDirection())
    assert ct.GetPixelID() == plain.GetPixelID()
    assert np.array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(plain))
    import pydicom

    monkeypatch.undo()
    by_position = sorted((float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]),
                          str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)) for f in files)
    assert ct.GetMetaData(SLICE_UIDS_KEY).split("\\") == [uid for _, uid in by_position]


def _cut_copy(folder: Path, dst: Path, keep: int, tail: bytes = b"") -> tuple[Path, Path]:
    """A copy of the CT series, its middle slice cut to ``keep`` bytes short of its end (``tail`` appended instead
    when ``keep`` is 0; ``keep`` -1: its header saying one row more than its whole pixel data holds)."""
    shutil.copytree(folder, dst)
    files = sorted(p for p in dst.iterdir() if p.is_file())
    victim = files[len(files) // 2]
    if keep < 0:
        import pydicom

        ds = pydicom.dcmread(victim)
        ds.Rows += 1
        ds.save_as(victim)
        return dst, victim
    data = victim.read_bytes()
    victim.write_bytes(data[:len(data) - keep] + tail if keep else data + tail)
    return dst, victim


@pytest.mark.parametrize("keep, tail", [(5000, b""), (-1, b""), (0, b"\x00" * 6), (0, b"")])
def test_the_pixel_check_says_the_same_with_the_headers_read_once(tmp_path, keep, tail):
    """check_pixel_data from the header read once (inside headers_once) refuses and passes as the file's own read
    (outside it) does: a slice cut short in its pixel data, one whose header needs more pixel data than it holds, one
    with bytes after its pixel data, an intact one."""
    from lungai.dicom.pixeldata import CT_FIX, check_ct_files, check_pixel_data, headers_once
    from lungai.dicom.synthetic import write_rt_study
    from lungai.errors import InputError

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    folder, victim = _cut_copy(Path(study["ct"]), tmp_path / "cut", keep, tail)

    def said(check):
        try:
            check()
        except InputError as exc:
            return exc.problem, exc.fix
        return None

    outside = said(lambda: check_pixel_data(victim, CT_FIX))
    with headers_once():
        inside = said(lambda: check_pixel_data(victim, CT_FIX))
        series_inside = said(lambda: check_ct_files(sorted(folder.iterdir())))
    assert inside == outside
    assert series_inside == said(lambda: check_ct_files(sorted(folder.iterdir())))
    if keep:
        assert outside is not None and "is truncated or corrupt: its pixel data holds" in outside[0], outside
    else:
        assert outside is None


@pytest.mark.shared_data
def test_a_real_slice_cut_short_is_refused_by_read_ct_naming_it(shared_data, patient_scratch):
    from lungai.errors import InputError
    from lungai.io.read import read_ct

    folder, victim = _cut_copy(_lung1_003_ct(shared_data), patient_scratch / "CT", 100_000)
    with pytest.raises(InputError) as err:
        read_ct(str(folder))
    assert f"CT slice {victim.name} is truncated or corrupt: its pixel data holds" in err.value.problem
    assert "of the 524288 bytes its header needs" in err.value.problem
