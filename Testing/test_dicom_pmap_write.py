"""The Parametric Map of a real-size CT series (QA export67: LUNG1-003's uncertainty map, 81 frames of 512 x 512
float32, took 3-5 s behind one message, at a peak of 3.3 times the map's memory): its frames, their order and values
as before, written with fewer copies, each stage named on the bar."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import SimpleITK as sitk

SLICES = (30, 64)          # the map's values on slices 30..63 of a 512 x 512 x 64 CT (the others: its minimum)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A real-size CT series (512 x 512 x 64 slices, 0.98 x 0.98 x 3 mm) and a float map on it: the minimum 0 outside
    slices 30..63, distinct values in every voxel there (any frame out of place, or flipped, changes the pixel data)."""
    from lungai.dicom.export import reference_for
    from lungai.dicom.synthetic import write_ct_series
    from lungai.io import read_ct

    yy, xx = np.mgrid[:512, :512]
    body = np.where((yy - 256) ** 2 + (xx - 256) ** 2 < 200 ** 2, 40, -1000).astype(np.int16)   # air, a body,
    body[((yy - 256) ** 2 / 90 ** 2 + (xx - 170) ** 2 / 60 ** 2 < 1) | ((yy - 256) ** 2 / 90 ** 2
                                                                       + (xx - 342) ** 2 / 60 ** 2 < 1)] = -850  # lungs
    ct = sitk.GetImageFromArray(np.repeat(body[None], 64, axis=0))
    ct.SetSpacing((0.977, 0.977, 3.0))
    ct.SetOrigin((-250.0, -250.0, -300.0))
    folder = tmp_path_factory.mktemp("pmap") / "ct"
    write_ct_series(ct, folder, patient_id="PMAP-1")
    ct = read_ct(folder)
    arr = np.zeros((64, 512, 512), np.float32)
    rng = np.random.default_rng(3)
    arr[SLICES[0]:SLICES[1]] = rng.uniform(0.001, 1.0, (SLICES[1] - SLICES[0], 512, 512)).astype(np.float32)
    arr[SLICES[0]:SLICES[1], 0, 0] = np.arange(SLICES[1] - SLICES[0], dtype=np.float32) + 2.0    # each frame its own
    image = sitk.GetImageFromArray(arr)
    image.CopyInformation(ct)
    return ct, reference_for(folder, ct), image, arr


def test_real_size_map_frames_are_the_maps_slices_in_ascending_order(series, tmp_path):
    """The pixel data is the map's slices 30..63 in ascending order along the slice normal, bit for bit, each frame at
    its slice's position (as written before: highdicom's descending frames put in ascending order)."""
    import pydicom

    from lungai.dicom.pmap import read_parametric_map, write_parametric_map

    ct, reference, image, arr = series
    path = write_parametric_map(image, reference, tmp_path / "uncertainty.pm.dcm")
    ds = pydicom.dcmread(path)
    assert int(ds.NumberOfFrames) == SLICES[1] - SLICES[0] and (int(ds.Rows), int(ds.Columns)) == (512, 512)
    assert ds.FloatPixelData == arr[SLICES[0]:SLICES[1]].tobytes()
    frames = np.frombuffer(ds.FloatPixelData, np.float32).reshape(-1, 512, 512)
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        index = ct.TransformPhysicalPointToIndex([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        assert index[:2] == (0, 0) and index[2] == SLICES[0] + k
        assert frames[k, 0, 0] == k + 2.0
    back = sitk.GetArrayFromImage(read_parametric_map(path, ct))
    assert np.array_equal(back, arr)


def test_real_size_map_write_holds_fewer_copies_of_the_frames(series, tmp_path):
    """QA export67: the kept slices were copied out of the map, highdicom's frames reordered through two further whole
    copies, then deflated by pydicom's writer: a peak of 6.1 times the frames' bytes here (a map of 64 slices, 34 of
    them kept; 3.3 times the map's on LUNG1-003).  Now the kept slices are a view of the map and the frames reordered
    in one copy: 4.25 times."""
    from lungai.dicom.pmap import write_parametric_map

    _, reference, image, arr = series
    frames = arr[SLICES[0]:SLICES[1]].nbytes
    write_parametric_map(image, reference, tmp_path / "warm.pm.dcm")       # imports and caches outside the count
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        write_parametric_map(image, reference, tmp_path / "uncertainty.pm.dcm")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4.5 * frames, f"peak {peak / frames:.2f} x the frames' bytes"


def test_the_map_write_names_its_stages_on_the_bar(series, tmp_path):
    """QA export67: "writing DICOM parametric map" stood 3-5 s on LUNG1-003 (no progress for more than 2 s): the
    frames built, then compressed and saved, are named on the bar while they run - no step counted (the caller's)."""
    from lungai.dicom.pmap import PMAP_FRAMES, PMAP_SAVING, write_parametric_map

    _, reference, image, _ = series
    out = tmp_path / "uncertainty.pm.dcm"

    class Seen:
        def __init__(self):
            self.done, self.log = 0, []

        def update(self, n=1, message=None):
            self.done += n
            self.log.append((message, out.exists()))

    seen = Seen()
    write_parametric_map(image, reference, out, progress=seen)
    frames = SLICES[1] - SLICES[0]
    assert seen.log == [(PMAP_FRAMES.format(n=frames, s="s"), False), (PMAP_SAVING.format(n=frames, s="s"), False)]
    assert seen.done == 0 and "34 frames" in seen.log[0][0] and "compressing" in seen.log[1][0]


def test_export_results_shows_the_maps_stages_between_its_step_messages(tmp_path):
    """``export_results`` hands its bar to the map's writer: its stages come after "writing DICOM parametric map" and
    before "DICOM parametric map written"."""
    from dicom_helpers import small_phantom

    from lungai.dicom.export import export_results, reference_for
    from lungai.dicom.pmap import PMAP_FRAMES, PMAP_SAVING
    from lungai.dicom.synthetic import write_rt_study
    from lungai.io import read_ct

    study = write_rt_study(tmp_path / "dicom", small_phantom(7), "P1", dose=None)
    ct = read_ct(study["ct"])
    tumour = study["masks"]["GTV"]
    sitk.WriteImage(tumour, str(tmp_path / "tumor.nii.gz"))     # beside the export, as lungai segment's results
    messages = []

    class Seen:
        def update(self, n=1, message=None):
            messages.append(message)

    export_results(reference_for(study["ct"], ct), tmp_path / "out", tumour=tumour,
                   uncertainty=sitk.Cast(tumour, sitk.sitkFloat32) * 0.5, progress=Seen())
    start, end = messages.index("writing DICOM parametric map"), messages.index("DICOM parametric map written")
    stages = messages[start + 1:end]
    assert len(stages) == 2 and stages[0].startswith(PMAP_FRAMES.split("{")[0]) \
        and stages[1].startswith(PMAP_SAVING.split("{")[0]), messages
