"""The LungAISeg panel's logic on the real CTs, with and without a parent transform on the CT.

What a click on *Segment tumour* (seed mode) does, minus the Qt widgets: the CT is exported through
``lungai.scene.nodes`` (world coordinates), ``lungai segment`` runs as a child process, the outputs
come back as nodes.  The seed is the reference lesion's centre, placed where Slicer shows it (world
coordinates).  With a transform (10 degree turn about S, 25 / -15 / 8 mm shift) the tumour must land on
the lesion as without it: the Dice against the reference label (on the CT's own voxel grid) is printed
for both, with the seconds of the child process.  Also the lung masks (``Segment lungs``).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/slicer_panel_real_ct.py [lung1 lung2]

Needs ../shared/data/pyradiomics_lung.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "pyradiomics_lung"
sys.path.insert(0, str(REPO / "Testing"))
sys.path.insert(0, str(REPO / "benchmarks"))
from _common import bench_temp_dir  # noqa: E402


def run_case(name, transformed, tmp):
    import vtk
    from lungai import mrml
    from lungai.seg.evaluate import dice
    from slicer_module_helpers import headless_scene, import_module_logic, restore

    scene, keep = headless_scene()  # noqa: F841 - keeps the MRML logics alive while the scene is used
    module, handle = import_module_logic("LungAISeg", scene, tmp)
    try:
        ct = sitk.ReadImage(str(REAL / f"{name}_image.nrrd"))
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(REAL / f"{name}_label.nrrd"))) > 0
        node = mrml.volume_node_from_image(scene, ct, name)
        if transformed:
            t = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
            m, a = vtk.vtkMatrix4x4(), math.radians(10)
            m.SetElement(0, 0, math.cos(a)), m.SetElement(0, 1, -math.sin(a))
            m.SetElement(1, 0, math.sin(a)), m.SetElement(1, 1, math.cos(a))
            m.SetElement(0, 3, 25.0), m.SetElement(1, 3, -15.0), m.SetElement(2, 3, 8.0)
            t.SetMatrixTransformToParent(m)
            node.SetAndObserveTransformNodeID(t.GetID())
        k, j, i = np.argwhere(label).mean(axis=0)
        local_ras = (mrml.ijk_to_ras_from_image(ct) @ [i, j, k, 1.0])[:3]
        world_ras = [0.0, 0.0, 0.0]
        node.TransformPointToWorld(list(local_ras), world_ras)       # where Slicer shows the lesion
        logic = module.LungAISegLogic()
        p = logic.getParameterNode()
        p.inputVolume, p.mode, p.method = node, "seed", "ensemble"
        p.seedPoints = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
        p.seedPoints.AddControlPoint(*world_ras)
        t0 = time.perf_counter()
        job = logic.run(logic.startSegmentation, p, timeout=1800)
        seconds = time.perf_counter() - t0
        work = job.workDir
        summary = logic.loadSegmentation(p, job)
        mask = sitk.GetArrayFromImage(mrml.segment_to_mask(scene, p.outputSegmentation, "Tumor", node)) > 0
        t0 = time.perf_counter()
        lungs_job = logic.run(logic.startLungs, p, timeout=1800)
        lung_seconds = time.perf_counter() - t0
        lungs = logic.loadLungs(p, lungs_job)
        return {"dice": dice(mask, label), "confidence": float(summary["confidence"]),
                "review": bool(summary["needs_review"]), "seconds": seconds, "lungs": lungs,
                "lung_seconds": lung_seconds, "work_deleted": not Path(work).exists()}
    finally:
        restore(handle)
        scene.Clear(1)


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["lung1", "lung2"]
    if not REAL.is_dir():
        print(f"needs {REAL}")
        return 1
    with bench_temp_dir() as tmp:   # the exported real CTs are deleted, also on SIGTERM
        for name in names:
            for transformed in (False, True):
                r = run_case(name, transformed, tmp)
                print(f"{name} {'under a transform' if transformed else 'no transform     '}: tumour Dice {r['dice']:.3f} "
                      f"(confidence {r['confidence']:.2f}{', review' if r['review'] else ''}), "
                      f"{r['seconds']:.1f} s; lungs: {r['lungs']} ({r['lung_seconds']:.1f} s); "
                      f"temporary files deleted: {r['work_deleted']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
