"""The Lung AI Segmentation panel (and the console's segment_tumour_node) says when the model was trained / validated
on the CT's patient, as ``lungai segment``, the demo and the cohort do (QA seginsample68).

Before, the panel ran ``lungai segment`` on its work file ``ct.nrrd`` - no patient in its name, no PatientID in it -
and segment_tumour_node called ``add_model_notes`` without the CT's names: the DynUNet on LUNG1-002 (the real CT its
training tumours were implanted into) gave its result in Slicer without the in-sample note or ``in_sample``."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from seg_helpers import stub_segment_on_input
from slicer_module_helpers import under_dicom_patient
from test_slicer_logic import load_module  # noqa: F401  (fixture)

LUNG1_002 = Path(__file__).resolve().parents[1] / "../shared/data/nsclc_whole_ct/nifti/LUNG1-002_ct.nii.gz"
DYNUNET = "DynUNet (seed / ROI)"


@pytest.fixture(scope="module")
def lung1_002_crop():
    """160 x 130 x 26 voxels of LUNG1-002's CT around its GTV, with lung (the model is stubbed: any grid does)."""
    if not LUNG1_002.is_file():
        pytest.skip("the real data (../shared/data/nsclc_whole_ct) is not here")
    return sitk.ReadImage(str(LUNG1_002))[100:260, 200:330, 28:54]


def _ct_node(scene, image, name, tmp_path, file_name=None):
    """A volume node of ``image`` named ``name``; ``file_name``: the file it was loaded from (its storage node)."""
    from lungai import mrml

    node = mrml.volume_node_from_image(scene, image, name)
    if file_name:
        path = tmp_path / file_name
        sitk.WriteImage(image, str(path))
        storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def _panel_segment(load_module, scene, node, monkeypatch):
    """The panel's tumour job on ``node`` with the DynUNet, a seed at the CT's centre; ``lungai segment`` run
    in-process on the job's command (its network stubbed); the result the panel loads."""
    from lungai import mrml
    from lungai.cli import main

    stub_segment_on_input(monkeypatch)
    logic = load_module("LungAISeg").LungAISegLogic()
    p = logic.getParameterNode()
    p.inputVolume, p.model, p.mode = node, DYNUNET, "seed"
    p.seedPoints = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    image = mrml.image_from_volume_node(node)
    lps = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    p.seedPoints.AddControlPoint(-lps[0], -lps[1], lps[2])
    job = logic.startSegmentation(p)
    assert main(job.process.args) in (0, None)
    return logic.loadSegmentation(p, job)


def _in_sample(summary: dict) -> list[str]:
    return [n for n in summary.get("notes") or [] if "in-sample" in n]


def test_panel_says_a_training_patients_ct_loaded_from_its_file_is_in_sample(load_module, mrml_scene, lung1_002_crop,
                                                                               tmp_path, monkeypatch):
    """LUNG1-002_ct.nii.gz loaded in Slicer (node "LUNG1-002_ct"), and the same file's node renamed by the user: the
    panel's result says it is in-sample and records ``in_sample`` (its banner's details show the note)."""
    from lungai.scene.results import describe_segment_result

    for name in ("LUNG1-002_ct", "planning CT"):
        node = _ct_node(mrml_scene, lung1_002_crop, name, tmp_path, file_name="LUNG1-002_ct.nii.gz")
        summary = _panel_segment(load_module, mrml_scene, node, monkeypatch)
        said = _in_sample(summary)
        assert len(said) == 1 and "lungai-seg-dynunet" in said[0], (name, summary.get("notes"))
        assert summary["in_sample"]["model"] == "lungai-seg-dynunet", name
        assert summary["in_sample"]["part"] == "training", name
        assert said[0] in describe_segment_result(summary)[1]


def test_panel_says_a_dicom_ct_of_a_training_patient_is_in_sample(load_module, mrml_scene, lung1_002_crop, tmp_path,
                                                                  monkeypatch):
    """A CT loaded by Slicer's DICOM module (node "2: CT", no file name, under its patient in the subject hierarchy):
    its PatientID LUNG1-002 is a training patient of the DynUNet - said; LUNG1-003 (never trained on) - not."""
    node = _ct_node(mrml_scene, lung1_002_crop, "2: CT", tmp_path)
    under_dicom_patient(mrml_scene, node, "LUNG1-002")
    summary = _panel_segment(load_module, mrml_scene, node, monkeypatch)
    assert len(_in_sample(summary)) == 1 and "(LUNG1-002)" in _in_sample(summary)[0], summary.get("notes")
    assert summary["in_sample"] == {"model": "lungai-seg-dynunet", "patient": "LUNG1-002", "cases": [],
                                    "part": "training"}
    other = _ct_node(mrml_scene, lung1_002_crop, "3: CT", tmp_path)
    under_dicom_patient(mrml_scene, other, "LUNG1-003")
    summary = _panel_segment(load_module, mrml_scene, other, monkeypatch)
    assert not _in_sample(summary) and "in_sample" not in summary, summary.get("notes")


def test_console_segment_tumour_node_says_it_too(mrml_scene, lung1_002_crop, tmp_path, monkeypatch):
    """segment_tumour_node (the Python console's way, in Slicer's process) passes the node's names as the panel."""
    from lungai.scene import segment

    monkeypatch.setattr(segment, "segment_tumour", stub_segment_on_input(monkeypatch))
    node = _ct_node(mrml_scene, lung1_002_crop, "2: CT", tmp_path)
    under_dicom_patient(mrml_scene, node, "LUNG1-002")
    out = segment.segment_tumour_node(mrml_scene, node, model_dir="lungai-seg-dynunet")
    assert out["result"]["in_sample"]["patient"] == "LUNG1-002", out["result"].get("notes")
    assert _in_sample(out["result"])


def test_the_panels_patient_names_reach_lungai_segment(tmp_path):
    """commands.segment's ``patients``: a ``--patient`` each, parsed by lungai segment (a name starting with "-" too)."""
    from LungAICommon import commands
    from lungai.cli import build_parser

    args = commands.segment(tmp_path / "ct.nrrd", tmp_path / "out", patients=["LUNG1-002", "-anon 7"])
    assert build_parser().parse_args(args).patient == ["LUNG1-002", "-anon 7"]
    assert build_parser().parse_args(commands.segment(tmp_path / "ct.nrrd", tmp_path / "out")).patient is None
