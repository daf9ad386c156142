"""What ``lungai stage cv / train / validate / predict`` write into their output folder (``-o``), and the check of
that folder before any work - light (no torch, pandas nor SimpleITK), so that :func:`lungai.cli.stage.check_inputs`
refuses a user's file of one of these names before the heavy imports.  QA stagefollow71: a ``metrics.json`` of the
user's in ``stage cv -o DIR`` was refused after 21.3 s (the list lived in :mod:`lungai.fusion.model_io`, which imports
torch).  :mod:`lungai.fusion.model_io` re-exports these names."""

from __future__ import annotations

from pathlib import Path

from lungai.errors import InputError
from lungai.fusion.balance import META

# the plain baselines (lungai.fusion.baseline, which takes this list): each writes its baseline_<kind>.skops and
# confusion_<kind>.png
KINDS = ("logreg", "forest", "mlp")

# What each command writes into its output folder (-o): a re-run of the command replaces its own earlier outputs
# (marker .lungai-stage-<command>, lungai.io.outputs), a file of the user's of one of these names is refused before
# any work, other files are left alone.
_CONFUSION = ("fusion", "selected", *KINDS, "ehr_only", "rna_only", "ct_only")
OUTPUTS = {
    "cv": ("metrics.json", "comparison.md", "oof_predictions.csv", *(f"confusion_{n}.png" for n in _CONFUSION)),
    "train": (META, "fusion.safetensors", "ehr_encoder.skops", *(f"baseline_{k}.skops" for k in KINDS), "tsne.png",
              "tsne_points.csv", "top_genes_cohort.csv", "top_genes_per_patient.csv", "model_card.md"),
    "validate": ("metrics.json", "predictions.csv", *(f"confusion_{n}.png" for n in ("fusion", *KINDS))),
    "predict": ("predictions.csv", "top_genes_per_patient.csv", "gradcam"),
}


def _owner(command: str) -> str:
    return f"stage-{command}"


def check_output_dir(out: Path, command: str, inputs=()) -> Path:
    """The output folder of ``lungai stage <command>``, checked before any work (nothing is created): not an input,
    writable, and without a file of the command's output names (:data:`OUTPUTS`) that an earlier run of the command
    did not write (:func:`lungai.io.outputs.prepare_output_folder` with its marker): a user's file is never
    replaced.  Write the outputs inside :func:`claimed`."""
    from lungai.io.outputs import prepare_output_folder

    out = Path(out)
    for p in inputs:
        if p and Path(p).resolve() == out.resolve():
            raise InputError(f"the output folder {out} is one of the inputs", "choose a new output folder")
    owner = _owner(command)
    try:
        return prepare_output_folder(out, [p for p in inputs if p], owner=owner, owns=OUTPUTS[command], create=False)
    except InputError as exc:
        if (out / f".lungai-{owner}").exists() or "not written by lungai" not in exc.problem:
            raise
        others = sorted(p.name for p in out.glob(".lungai-*") if p.is_file()) if out.is_dir() else []
        if others:                  # another command's current output (stage validate's folder given to predict)
            names = [n[len(".lungai-"):] for n in others]
            what = " and ".join("lungai " + (n.replace("-", " ", 1) if n.startswith(("stage-", "rp-")) else n)
                                for n in names)
            raise InputError(exc.problem, f"{out} is the output of {what}; choose another folder with -o") from exc
        raise InputError(exc.problem, f"{exc.fix}; a folder written by a lungai older than the marker file "
                                      f".lungai-{owner} is refused the same way: delete its old results yourself, "
                                      "or choose a new folder") from exc


def claimed(out, command: str, inputs=(), writes=()):
    """Context manager around the writing of ``lungai stage <command>``'s outputs into ``out``
    (:func:`lungai.io.outputs.claimed_output_folder`): an earlier run's outputs are removed, the new ones recorded."""
    from lungai.io.outputs import claimed_output_folder

    return claimed_output_folder(Path(out), _owner(command), OUTPUTS[command], inputs=[p for p in inputs if p],
                                 writes=writes)
