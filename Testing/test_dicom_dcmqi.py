"""The DICOM SEG, Parametric Map and SR that `lungai segment` writes for a DICOM CT are readable by dcmqi - the
converter behind Slicer's QuantitativeReporting DICOM plugins (segimage2itkimage, paramap2itkimage,
tid1500reader).  dcmqi is a pinned test dependency (pyproject `test` extra); the test is skipped where it is not
installed.  dcmqi reads only Float Pixel Data maps with a Frame Anatomy group (it crashed on lungai's earlier
uint16 JPEG-LS map and on highdicom's default map without Frame Anatomy)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_helpers import array, rt_export, small_phantom

dcmqi = pytest.importorskip("dcmqi")
BIN = Path(dcmqi.__file__).parent / "bin"


def _run(tool: str, *args) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def test_dcmqi_reads_lungai_seg_map_and_sr(tmp_path):
    from lungai.cli import main
    from lungai.io import read_ct

    st = rt_export(tmp_path / "export")["P1"]
    ct = read_ct(st["ct"])
    centre = small_phantom(7).meta["tumour"]["centre_mm"]
    out = tmp_path / "seg"
    assert main(["segment", str(st["ct"]), "-o", str(out), "--seed-point=" + ",".join(f"{v:.2f}" for v in centre)]) == 0
    tumour = array(sitk.ReadImage(str(out / "tumor.nii.gz"))) > 0
    assert tumour.any()

    # SEG -> dcmqi -> the same voxels on the CT's grid, with lungai's segment label and terminology codes
    seg_dir = tmp_path / "dcmqi_seg"
    seg_dir.mkdir()
    _run("segimage2itkimage", "--inputDICOM", out / "tumor.seg.dcm", "--outputDirectory", seg_dir, "--outputType", "nrrd")
    meta = json.loads((seg_dir / "meta.json").read_text(encoding="utf-8"))
    attrs = meta["segmentAttributes"][0][0]
    assert attrs["SegmentLabel"] == "Tumour"
    assert attrs["SegmentedPropertyTypeCodeSequence"]["CodingSchemeDesignator"] == "SCT"
    img = sitk.ReadImage(str(next(seg_dir.glob("*.nrrd"))))
    on_ct = sitk.Resample(img, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert np.array_equal(array(on_ct) > 0, tumour)

    # Parametric Map (uncertainty) -> dcmqi -> the entropy values on the stored slices
    pm_dir = tmp_path / "dcmqi_pm"
    pm_dir.mkdir()
    _run("paramap2itkimage", "--inputDICOM", out / "uncertainty.pm.dcm", "--outputDirectory", pm_dir)
    pm = sitk.ReadImage(str(next(pm_dir.glob("*.nrrd"))))
    entropy = sitk.ReadImage(str(out / "uncertainty.nii.gz"))
    on_ct = array(sitk.Resample(pm, entropy, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0))
    stored = on_ct >= 0
    assert stored.any() and np.abs(on_ct[stored] - array(entropy)[stored]).max() <= 1e-6
    assert json.loads((pm_dir / "meta.json").read_text(encoding="utf-8"))["MeasurementUnitsCode"]["CodeValue"] == "bit"

    # SR (TID 1500) -> dcmqi: the tumour volume measurement, pointing at the SEG
    sr_json = tmp_path / "sr.json"
    _run("tid1500reader", "--inputDICOM", out / "measurements.sr.dcm", "--outputMetadata", sr_json)
    sr = json.loads(sr_json.read_text(encoding="utf-8"))
    tumour_group = next(m for m in sr["Measurements"] if m.get("TrackingIdentifier") == "Tumour")
    volume = next(i for i in tumour_group["measurementItems"] if i["quantity"]["CodeValue"] == "118565006")
    info = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert float(volume["value"]) == pytest.approx(info["tumor_volume_ml"], rel=1e-3)
    assert volume["units"]["CodeValue"] == "ml"
