"""``--seed-point`` (segment, demo) takes a Slicer point list file (.mrk.json / .fcsv) as well as x,y,z in LPS mm.

QA: ``lungai segment LUNG1-003_ct.nii.gz -o OUT --seed-point F.mrk.json`` (GTV-1's centre placed in Slicer and saved)
was refused "--seed-point 'F.mrk.json' is not 3 comma-separated numbers / e.g. --seed-point -12.5,40,-150" - the
file says its coordinate system (RAS or LPS), which a user copying the numbers by hand gets wrong.  The file's placed
point is read in LPS mm (RAS negated in x and y); a list of several placed points is refused naming each point's LPS
numbers (one tumour per run); unplaced points do not count, as in the Slicer panel."""

from __future__ import annotations

import json

import pytest

from lungai.cli import main
from lungai.cli.seg import seed_point_value
from lungai.errors import InputError

GTV1_LPS = [47.43, -2.46, -127.25]          # LUNG1-003's GTV-1 centre
GTV1_RAS = [-47.43, 2.46, -127.25]


def _mrk_json(path, points, system="RAS", kind="Fiducial"):
    """A .mrk.json as Slicer 5 writes it: [(label, xyz, positionStatus), ...] in ``system``."""
    path.write_text(json.dumps({"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
                                           "Markups/Resources/Schema/markups-schema-v1.0.3.json#",
                                "markups": [{"type": kind, "coordinateSystem": system, "coordinateUnits": "mm",
                                             "controlPoints": [{"id": str(i + 1), "label": label, "position": xyz,
                                                                "positionStatus": status}
                                                               for i, (label, xyz, status) in enumerate(points)]}]}))
    return str(path)


def _fcsv(path, rows, header=("# Markups fiducial file version = 5.6", "# CoordinateSystem = LPS",
                              "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID")):
    path.write_text("\n".join([*header, *rows]) + "\n")
    return str(path)


def test_a_point_list_file_gives_its_placed_point_in_lps(tmp_path):
    assert seed_point_value(_mrk_json(tmp_path / "ras.mrk.json", [("GTV-1", GTV1_RAS, "defined")])) == GTV1_LPS
    assert seed_point_value(_mrk_json(tmp_path / "lps.mrk.json", [("GTV-1", GTV1_LPS, "defined")], "LPS")) == GTV1_LPS
    row = "1,47.43,-2.46,-127.25,0,0,0,1,1,1,0,GTV-1,,,2,0"
    assert seed_point_value(_fcsv(tmp_path / "lps.fcsv", [row])) == GTV1_LPS
    old = ("# Markups fiducial file version = 4.10", "# CoordinateSystem = 0",       # Slicer 4.10: 0 = RAS
           "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID")
    assert seed_point_value(_fcsv(tmp_path / "old.fcsv", ["1,-47.43,2.46,-127.25,0,0,0,1,1,1,0,F-1,,"], old)) == GTV1_LPS
    # an unplaced point (being placed, or marked missing) does not count
    path = _mrk_json(tmp_path / "two.mrk.json", [("GTV-1", GTV1_RAS, "defined"), ("F-2", [1, 2, 3], "undefined")])
    assert seed_point_value(path) == GTV1_LPS
    unplaced = "2,1,2,3,0,0,0,1,1,1,0,F-2,,,0,0"
    assert seed_point_value(_fcsv(tmp_path / "two.fcsv", [row, unplaced])) == GTV1_LPS
    assert seed_point_value("-21.86,-120.54,-611.5") == [-21.86, -120.54, -611.5]        # numbers as before


def test_a_point_list_of_several_points_or_none_or_not_a_point_list_is_refused(tmp_path):
    path = _mrk_json(tmp_path / "F.mrk.json", [("GTV-1", GTV1_RAS, "defined"), ("gtv-2", [-52.5, 50, -75.5], "defined")])
    with pytest.raises(InputError, match="holds 2 placed points") as err:
        seed_point_value(path)
    assert "'GTV-1': --seed-point=47.43,-2.46,-127.25; 'gtv-2': --seed-point=52.5,-50,-75.5" in str(err.value)
    assert "one tumour per run" in str(err.value)
    with pytest.raises(InputError, match="holds no placed point"):
        seed_point_value(_mrk_json(tmp_path / "none.mrk.json", [("F-1", [1, 2, 3], "undefined")]))
    with pytest.raises(InputError, match="not one point list"):
        seed_point_value(_mrk_json(tmp_path / "roi.mrk.json", [("R-1", [1, 2, 3], "defined")], kind="ROI"))
    (tmp_path / "bad.mrk.json").write_text("{")
    with pytest.raises(InputError, match="is not a Slicer markups file"):
        seed_point_value(str(tmp_path / "bad.mrk.json"))
    with pytest.raises(InputError, match="does not exist"):
        seed_point_value(str(tmp_path / "missing.fcsv"))


def test_segment_and_demo_take_the_point_list_file(tmp_path, capsys):
    """The CLI reads the file before any work: a single placed point passes on to the CT check (here a CT that does
    not exist), several are refused naming them."""
    one = _mrk_json(tmp_path / "one.mrk.json", [("GTV-1", GTV1_RAS, "defined")])
    two = _mrk_json(tmp_path / "two.mrk.json", [("a", GTV1_RAS, "defined"), ("b", [1, 2, 3], "defined")])
    ct = str(tmp_path / "no_ct.nii.gz")
    for argv in (["segment", ct, "-o", str(tmp_path / "out"), "--seed-point", one],
                 ["demo", "--ct", ct, "-o", str(tmp_path / "demo"), "--seed-point", one]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--seed-point" not in err.split("How to fix")[0] and "no_ct.nii.gz" in err, err
    assert main(["segment", ct, "-o", str(tmp_path / "out"), "--seed-point", two]) == 2
    assert "holds 2 placed points ('a': --seed-point=47.43,-2.46,-127.25; 'b'" in capsys.readouterr().err


def test_files_slicer_writes_give_the_panels_point(tmp_path, mrml_scene):
    """Real Slicer storage nodes (slicer-core) writing the point list in RAS and in LPS, .mrk.json and .fcsv: the
    point read is the one the Slicer panel takes (:func:`lungai.scene.nodes.point_to_lps`)."""
    import slicer

    from lungai.mrml import _register_markups_storage
    from lungai.scene.nodes import point_to_lps

    _register_markups_storage(mrml_scene)
    node = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    node.AddControlPoint(*GTV1_RAS, "GTV-1")
    node.AddControlPoint(1.0, 2.0, 3.0, "gone")
    node.UnsetNthControlPointPosition(1)
    for system in ("RAS", "LPS"):
        for suffix, cls in ((".mrk.json", slicer.vtkMRMLMarkupsJsonStorageNode),
                            (".fcsv", slicer.vtkMRMLMarkupsFiducialStorageNode)):
            storage = mrml_scene.AddNewNodeByClass(cls.__name__)
            storage.SetFileName(str(tmp_path / f"F_{system}{suffix}"))
            storage.SetCoordinateSystem(getattr(storage, f"CoordinateSystem{system}"))
            assert storage.WriteData(node)
            assert seed_point_value(str(tmp_path / f"F_{system}{suffix}")) == pytest.approx(point_to_lps(node))


def test_numbers_in_brackets_as_python_prints_them_are_read_as_lps_with_the_ras_reading_named(tmp_path, capsys):
    """QA (points61): ``--seed-point "[-12.3, 45.0, -130.2]"`` - a point pasted from a Python console as a list,
    tuple or numpy array - was refused "is not 3 comma-separated numbers", and the fix named only the comma form.  The
    numbers in brackets are read as LPS mm (as every lungai coordinate) with a note naming the same numbers read as
    Slicer's RAS (x and y negated), which Slicer's console gives; the refusal names the bracket form too."""
    import warnings

    from lungai.cli.seg import roi_value
    from lungai.errors import InputNote

    for text in ("[-12.3, 45.0, -130.2]", "(-12.3, 45.0, -130.2)", "[ -12.3   45.  -130.2]", "[[-12.3, 45.0, -130.2]]"):
        with pytest.warns(InputNote) as notes:
            assert seed_point_value(text) == [-12.3, 45.0, -130.2], text
        said = [str(n.message) for n in notes if issubclass(n.category, InputNote)]
        assert len(said) == 1 and "read as LPS millimetres: --seed-point=-12.3,45,-130.2" in said[0], said
        assert "give --seed-point=12.3,-45,-130.2 instead (x and y negated)" in said[0], said
    with pytest.warns(InputNote) as notes:
        assert roi_value("[0, 10, -150, 40, 60, -110]") == [0, 10, -150, 40, 60, -110]
    assert any("give --roi=0,-10,-150,-40,-60,-110 instead" in str(n.message) for n in notes)
    with warnings.catch_warnings():      # the comma form as before: no note
        warnings.simplefilter("error")
        assert seed_point_value("-12.3, 45.0,-130.2") == [-12.3, 45.0, -130.2]
    # not 3 numbers, or a space inside a number's place (before read as 12,3): refused naming both forms
    for text in ("[1, 2]", "1 2,3", "[1 2, 3]", "[-12.3; 45; -130.2]"):
        with pytest.raises(InputError) as err:
            seed_point_value(text)
        assert "e.g. --seed-point -12.5,40,-150" in str(err.value) and '"[-12.5, 40, -150]"' in str(err.value)
    # pasted unquoted, the shell splits it: the pieces are joined again (segment, demo) - the missing CT is the error
    missing = str(tmp_path / "missing.nii.gz")
    for pasted in (["[-12.3,", "45.0,", "-130.2]"], ["[", "-12.3", "45.", "-130.2]"]):
        for argv in (["segment", missing, "-o", str(tmp_path / "o"), "--seed-point", *pasted],
                     ["demo", "--ct", missing, "-o", str(tmp_path / "d"), "--seed-point", *pasted]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert "does not exist" in err and "read as LPS millimetres: --seed-point=-12.3,45,-130.2" in err, err


def test_a_json_file_of_only_numbers_is_refused_naming_both_readings(tmp_path):
    """QA (points61): ``--seed-point p.json`` holding ``[-12.3, 45.0, -130.2]`` (a point saved from a Python console)
    was refused "is not a Slicer markups file" with the fix "give the point's numbers" - not which numbers, nor that
    such a file cannot say whether they are LPS or Slicer's RAS.  The refusal names both readings to give (a box's
    six numbers for --roi likewise); a file of another count or shape keeps the markups refusal."""
    from lungai.cli.seg import roi_value

    (tmp_path / "p.json").write_text("[-12.3, 45.0, -130.2]")
    with pytest.raises(InputError) as err:
        seed_point_value(str(tmp_path / "p.json"))
    said = str(err.value)
    assert "holds only numbers (-12.3,45,-130.2)" in said and "LPS or RAS" in said, said
    assert "--seed-point=-12.3,45,-130.2 if they are LPS mm" in said and "--seed-point=12.3,-45,-130.2 if they are " \
        "Slicer's RAS" in said, said
    (tmp_path / "r.json").write_text("[[0, 10, -150], [40, 60, -110]]")
    with pytest.raises(InputError) as err:
        roi_value(str(tmp_path / "r.json"))
    assert "--roi=0,10,-150,40,60,-110 if they are LPS mm" in str(err.value), str(err.value)
    assert "--roi=0,-10,-150,-40,-60,-110 if they are Slicer's RAS" in str(err.value), str(err.value)
    for text in ("[1, 2]", '{"x": 1}', "[1, 2, true]"):
        (tmp_path / "o.json").write_text(text)
        with pytest.raises(InputError, match="is not a Slicer markups file"):
            seed_point_value(str(tmp_path / "o.json"))



def test_segment_takes_a_markups_files_numbers_as_scene_coordinates(tmp_path, monkeypatch):
    """QA notesfollow72: ``lungai segment --seed-point F.mrk.json`` (a point list lungai converts from RAS itself) was
    still asked "were Slicer's RAS coordinates given?" / "if they are voxel indices" of a seed that found no tumour,
    as numbers typed by hand are - the panel passes --scene-coordinates for its own.  A markups file as --seed-point /
    --roi (.mrk.json, .fcsv) passes scene_coordinates to segment_tumour; typed numbers do not (unless the option)."""
    import numpy as np
    import SimpleITK as sitk

    import lungai.seg.infer as infer
    import lungai.seg.model_io as model_io

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    arr = np.full((40, 64, 64), -1000, np.int16)          # air round a body of soft tissue round aerated lung
    arr[:, 8:56, 8:56] = 30
    arr[:, 16:48, 16:48] = -800
    ct = sitk.GetImageFromArray(arr)
    ct.SetSpacing((5.0, 5.0, 5.0))
    ct.SetOrigin((0.0, 0.0, -200.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    called = []

    class Segmented(BaseException):
        pass

    def segment_tumour(ct, model, **kw):          # what the CLI passes on, the model's work left out
        called.append(kw)
        raise Segmented

    monkeypatch.setattr(model_io, "load_model", lambda *a, **k: None)
    monkeypatch.setattr(infer, "segment_tumour", segment_tumour)
    ras = [-110.0, -110.0, -100.0]                       # LPS (110, 110, -100): in the lung
    files = [_mrk_json(tmp_path / "one.mrk.json", [("GTV-1", ras, "defined")]),
             _fcsv(tmp_path / "one.fcsv", ["1,110,110,-100,0,0,0,1,1,1,0,GTV-1,,"])]
    for seed in [*files, "110,110,-100"]:
        with pytest.raises(Segmented):
            main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "--seed-point", seed])
    assert [kw["scene_coordinates"] for kw in called] == [True, True, False], called
    assert all(list(kw["seed_lps"]) == [110.0, 110.0, -100.0] for kw in called), called

    def given(*argv):
        from lungai.cli.seg import scene_coordinates, segment_parser

        return scene_coordinates(segment_parser().parse_args(["ct.nii.gz", "-o", "out", *argv]))

    assert given("--roi", str(tmp_path / "box.MRK.JSON")) and not given("--roi", "0,0,0,10,10,10") and not given()
    assert given("--seed-point", "47.43,-2.46,-127.25", "--scene-coordinates")


def test_demo_takes_a_markups_files_numbers_as_scene_coordinates(tmp_path, monkeypatch):
    """QA notesfollow72: as lungai segment, ``lungai demo --seed-point F.mrk.json`` passes its point on as converted
    from a scene (``run_demo(scene_coordinates=True)``, on to segment_tumour); typed numbers do not."""
    import lungai.demo

    called = []

    class Ran(BaseException):
        pass

    def run_demo(out, **kw):
        called.append(kw)
        raise Ran

    monkeypatch.setattr(lungai.demo, "run_demo", run_demo)
    one = _mrk_json(tmp_path / "one.mrk.json", [("GTV-1", GTV1_RAS, "defined")])
    for seed in (one, "47.43,-2.46,-127.25"):
        with pytest.raises(Ran):
            main(["demo", "-o", str(tmp_path / "demo"), "--seed-point", seed])
    assert [kw["scene_coordinates"] for kw in called] == [True, False], called


def test_the_demo_samples_own_seed_point_is_passed_as_scene_coordinates(tmp_path, monkeypatch):
    """QA synthbar72: ``lungai demo`` on the built-in sample passed the sample's seed point (its planted tumour's
    centre, computed by lungai, never typed) to segment_tumour with scene_coordinates=False - as numbers typed by
    hand, open to "were Slicer's RAS coordinates given?" / "if they are voxel indices" of a seed that found no
    tumour.  It is lungai's own, in LPS mm: scene_coordinates=True."""
    from types import SimpleNamespace

    import numpy as np
    import SimpleITK as sitk

    import lungai.lungs as lungs_pkg
    import lungai.seg.infer as infer
    from lungai.demo.pipeline import run_demo

    monkeypatch.setenv("LUNGAI_PROGRESS", "off")
    called = []

    class Segmented(BaseException):
        pass

    def segment_tumour(ct, model, **kw):          # what the demo passes on, the model's work left out
        called.append(kw)
        raise Segmented

    def segment_lungs(ct, progress=None):         # the lungs' work left out: an empty lung map of the CT's grid
        labels = sitk.GetImageFromArray(np.zeros(sitk.GetArrayFromImage(ct).shape, np.uint8))
        labels.CopyInformation(ct)
        return SimpleNamespace(labels=labels, volumes_ml={"right_lung": 0.0, "left_lung": 0.0}, notes=[], cut=None,
                               warnings=[])

    monkeypatch.setattr(lungs_pkg, "segment_lungs", segment_lungs)
    monkeypatch.setattr(infer, "segment_tumour", segment_tumour)
    with pytest.raises(Segmented):
        run_demo(tmp_path / "demo", small=True)
    assert len(called) == 1 and called[0]["seed_lps"] is not None and called[0]["roi_lps"] is None, called
    assert called[0]["scene_coordinates"] is True, called
