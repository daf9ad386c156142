"""Shared helpers of the stage tests: the ``lungai stage`` command line and a small synthetic cohort."""
from __future__ import annotations


def stage_cli(args) -> int:
    """``lungai stage ARGS`` (each argument as text), its exit status."""
    from lungai.cli import main

    return main(["stage"] + [str(a) for a in args])


def stage_predict(model, ehr, out, capsys):
    """``lungai stage predict`` of ``model`` on the EHR table ``ehr`` into ``out`` (must succeed): (its stderr, its
    predictions.csv as text, every patient's prediction computed)."""
    import pandas as pd

    capsys.readouterr()
    assert stage_cli(["predict", "--model", model, "--ehr", ehr, "-o", out]) == 0
    err = capsys.readouterr().err
    pred = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False)
    assert (pred["status"] == "computed").all()
    return err, pred


def small_stage_cohort(root, n: int) -> dict:
    """The paths (ehr, rna, ...) of a synthetic cohort of ``n`` patients, 20 genes and small CTs: seconds to train."""
    from lungai.fusion.synthetic import make_cohort

    return make_cohort(root, n=n, n_genes=20, module_size=4, ct_shape=(32, 32, 16), ct_spacing=(5.0, 5.0, 5.0))
