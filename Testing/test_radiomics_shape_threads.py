"""The mesh volume of lungai's shape route (:func:`lungai.radiomics.shape.surface_and_volume`) does not depend on the
number of BLAS threads.  QA radiomics71: its per-cube position term was a BLAS dot product, whose sum order follows
the threads OpenBLAS uses - LUNG1-003's GTVs (gtv=1;gtv=2) gave MeshVolume 81902.16736396294 with
OMP_NUM_THREADS=1 and ...293 with 2, so ``radiomics-batch --workers 2`` (Dask workers run one BLAS thread) and
``lungai radiomics`` / ``--workers 0`` wrote different MeshVolume and SurfaceVolumeRatio (7 values of 642 on
LUNG1-002 / LUNG1-003), and a user's run on another machine differed from the batch's."""

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_mesh_volume_is_the_same_with_one_or_several_blas_threads():
    from lungai.radiomics.shape import surface_and_volume

    rng = np.random.default_rng(71)
    z, y, x = np.mgrid[:60, :160, :160]
    r = np.sqrt(((z - 30) * 2.5) ** 2 + (y - 80) ** 2 + (x - 80) ** 2)
    mask = r < 70 + 6 * rng.standard_normal(r.shape)          # a large ROI with a rough surface: many surface cubes
    spacing = (3.0, 0.977, 0.977)
    results = []
    for threads in (1, 2, 4):
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            results.append(surface_and_volume(mask, spacing))
    assert results[0] == results[1] == results[2], results
