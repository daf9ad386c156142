"""``--roi`` (segment, demo) takes a Slicer markups ROI file (.mrk.json of type ROI) as well as x0,y0,z0,x1,y1,z1 in
LPS mm.

QA: ``lungai segment CT -o OUT --roi R.mrk.json`` (the ROI box drawn round the tumour in Slicer and saved) was refused
"--roi 'R.mrk.json' is not 6 comma-separated numbers" - the file holds the box's centre, size and orientation in the
coordinate system it names (RAS or LPS), which a user copying the box's numbers by hand gets wrong (Slicer shows
RAS, and its bounds order, not corners).  The box is read as the Slicer panel takes a drawn ROI
(:func:`lungai.scene.nodes.roi_to_lps`): its axis-aligned bounding box in LPS, with a warning when it is rotated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungai.cli import main
from lungai.cli.seg import roi_value, seed_point_value
from lungai.errors import InputError, InputNote
from lungai.io.markups import read_roi

# LUNG1-003's GTV-1 box (RTSTRUCT) in LPS: centre (45, -0.95, -128.9), 53 x 80 x 58 mm
GTV1_BOX_LPS = [18.4, -41.1, -157.9, 71.4, 39.2, -99.9]


def _roi_json(path, centre, size, orientation=(1, 0, 0, 0, 1, 0, 0, 0, 1), system="LPS", kind="ROI", **extra):
    """A .mrk.json as Slicer 5 writes an ROI (center, orientation row by row with the box's axes in the columns,
    size), in ``system``."""
    m = {"type": kind, "coordinateSystem": system, "coordinateUnits": "mm", "roiType": "Box",
         "center": list(centre), "orientation": list(orientation), "size": list(size), "insideOut": False,
         "controlPoints": [{"id": "1", "label": "R-1", "position": list(centre), "positionStatus": "defined"}]}
    m.update(extra)
    path.write_text(json.dumps({"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
                                           "Markups/Resources/Schema/markups-schema-v1.0.3.json#", "markups": [m]}))
    return str(path)


def _min_max(corners):
    p = np.array(corners, dtype=float)
    return list(np.minimum(p[:3], p[3:])) + list(np.maximum(p[:3], p[3:]))


def test_an_roi_file_gives_its_box_as_lps_corners(tmp_path, recwarn):
    lps = _roi_json(tmp_path / "lps.mrk.json", (44.9, -0.95, -128.9), (53, 80.3, 58),
                    (-1, 0, 0, 0, -1, 0, 0, 0, 1))                    # as Slicer writes an unrotated ROI in LPS
    assert roi_value(lps) == pytest.approx(GTV1_BOX_LPS)
    ras = _roi_json(tmp_path / "ras.mrk.json", (-44.9, 0.95, -128.9), (53, 80.3, 58), system="RAS")
    assert roi_value(ras) == pytest.approx(GTV1_BOX_LPS)
    # axes swapped (a box turned by 90 degrees about S): still axis-aligned, its sizes along the other axes
    swapped = _roi_json(tmp_path / "swap.mrk.json", (44.9, -0.95, -128.9), (80.3, 53, 58), (0, 1, 0, 1, 0, 0, 0, 0, 1))
    assert roi_value(swapped) == pytest.approx(GTV1_BOX_LPS)
    assert not [w for w in recwarn if issubclass(w.category, InputNote)]
    # no "center" (older writers): the control point's position
    no_center = _roi_json(tmp_path / "nc.mrk.json", (44.9, -0.95, -128.9), (53, 80.3, 58), center=None)
    assert roi_value(no_center) == pytest.approx(GTV1_BOX_LPS)
    assert roi_value("18.4,-41.1,-157.9,71.4,39.2,-99.9") == pytest.approx(GTV1_BOX_LPS)    # numbers as before


def test_a_rotated_roi_file_gives_its_bounding_box_with_a_warning(tmp_path):
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rot = (c, -s, 0, s, c, 0, 0, 0, 1)                                # 30 degrees about S
    path = _roi_json(tmp_path / "rot.mrk.json", (10, 20, -100), (40, 20, 30), rot)
    with pytest.warns(InputNote, match="The ROI 'R-1' is rotated: a rotated ROI is used as its axis-aligned "
                                       r"bounding box, 50\.0 ml instead of 24\.0 ml"):
        corners = roi_value(path)
    hx, hy = (c * 40 + s * 20) / 2, (s * 40 + c * 20) / 2
    assert corners == pytest.approx([10 - hx, 20 - hy, -115, 10 + hx, 20 + hy, -85])


def test_an_roi_file_that_is_no_single_placed_box_is_refused(tmp_path):
    with pytest.raises(InputError, match="not placed"):
        roi_value(_roi_json(tmp_path / "flat.mrk.json", (0, 0, 0), (0, 0, 0)))
    with pytest.raises(InputError, match="inside-out"):
        roi_value(_roi_json(tmp_path / "io.mrk.json", (0, 0, 0), (10, 10, 10), insideOut=True))
    # a point list given as --roi, an ROI given as --seed-point: the option that reads it named
    points = _roi_json(tmp_path / "F.mrk.json", (0, 0, 0), (10, 10, 10), kind="Fiducial")
    with pytest.raises(InputError, match="not one ROI") as err:
        roi_value(points)
    assert "point list files are given as --seed-point FILE" in str(err.value)
    with pytest.raises(InputError, match="not one point list") as err:
        seed_point_value(_roi_json(tmp_path / "R.mrk.json", (0, 0, 0), (10, 10, 10)))
    assert "ROI files are given as --roi FILE" in str(err.value)
    (tmp_path / "F.fcsv").write_text("# CoordinateSystem = LPS\n1,0,0,0\n")
    with pytest.raises(InputError, match="is a point list"):
        roi_value(str(tmp_path / "F.fcsv"))
    with pytest.raises(InputError, match="does not exist"):
        roi_value(str(tmp_path / "missing.mrk.json"))


def test_segment_and_demo_take_the_roi_file(tmp_path, capsys):
    """The CLI reads the file before any work: a placed box passes on to the CT check (here a CT that does not
    exist)."""
    roi = _roi_json(tmp_path / "R.mrk.json", (-44.9, 0.95, -128.9), (53, 80.3, 58), system="RAS")
    ct = str(tmp_path / "no_ct.nii.gz")
    for argv in (["segment", ct, "-o", str(tmp_path / "out"), "--roi", roi],
                 ["demo", "--ct", ct, "-o", str(tmp_path / "demo"), "--roi", roi]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--roi" not in err.split("How to fix")[0] and "no_ct.nii.gz" in err, err


def test_roi_files_slicer_writes_give_the_panels_box(tmp_path, mrml_scene):
    """Real Slicer storage nodes (slicer-core) writing an ROI in RAS and in LPS, unrotated and rotated: the box read is
    the one the Slicer panel takes (:func:`lungai.scene.nodes.roi_to_lps`), the rotation warned as the panel does."""
    import slicer
    import vtk

    from lungai.scene.nodes import roi_rotation_note, roi_to_lps

    mrml_scene.RegisterNodeClass(slicer.vtkMRMLMarkupsROIJsonStorageNode())
    node = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "GTV box")
    node.SetCenter(-44.9, 0.95, -128.9)
    node.SetSize(53, 80.3, 58)
    for rotated in (False, True):
        if rotated:
            t = vtk.vtkTransform()
            t.Translate(-44.9, 0.95, -128.9)                  # the box's centre kept, turned about an oblique axis
            t.RotateWXYZ(25, 0.3, 0.2, 1.0)
            node.GetObjectToNodeMatrix().DeepCopy(t.GetMatrix())
            node.Modified()
        for system in ("RAS", "LPS"):
            storage = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROIJsonStorageNode")
            path = tmp_path / f"R_{system}_{rotated}.mrk.json"
            storage.SetFileName(str(path))
            storage.SetCoordinateSystem(getattr(storage, f"CoordinateSystem{system}"))
            assert storage.WriteData(node)
            corners, note = read_roi(path)
            assert _min_max(corners) == pytest.approx(_min_max(roi_to_lps(node)), abs=1e-3)   # the same box
            panel = roi_rotation_note(node)
            assert (note is None) == (panel is None) == (not rotated)
            if rotated:         # the same ml (the name: the file keeps the control point's label)
                assert note.split(": ", 1)[1].split(" (")[0] == panel.split(": ", 1)[1].split(" (")[0]
